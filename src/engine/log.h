/*
 * log.h - one-line log records, safe from any thread.
 *
 * Contract: each record is written with a single write(2) to the log file
 * (O_APPEND) or stderr, so lines from several threads never interleave.
 * Callers must never pass a secret (password, SCRAM key) into a record.
 */
#ifndef PGC_LOG_H
#define PGC_LOG_H

enum pgc_log_level { PGC_DEBUG = 0, PGC_LOG = 1, PGC_WARNING = 2, PGC_ERROR = 3, PGC_FATAL = 4 };

/* Open path for appending (NULL: stderr). Returns 0, or -1 with errno. Reopens on each call. */
int pgc_log_open(const char *path);
/* Lowest level written; PGC_DEBUG when verbose. */
void pgc_log_set_min_level(int level);
void pgc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pgc_log_close(void);

#endif
