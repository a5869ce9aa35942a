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

/*
 * syslog = 1: every record also goes, as one RFC 3164 datagram
 * ("<PRI>Mmm dd hh:mm:ss IDENT[PID]: LEVEL: message"), to the datagram
 * socket at socket_path (/dev/log normally; a test gives its own), with
 * facility (a <syslog.h> LOG_* facility) and the record's level as its
 * severity. It is sent with sendto() each time, so a syslog daemon that
 * restarts loses nothing after it is back. on = false stops it. Call from
 * one thread (start, reload); records from any thread.
 */
void pgc_log_syslog(int on, const char *ident, int facility, const char *socket_path);

/*
 * Rate-limited logging for messages that a fault can repeat without end (a
 * server that refuses every login, accept() out of descriptors, a flood of
 * bad logins): per call site, at most PGC_LOG_BURST records per
 * PGC_LOG_WINDOW seconds; the rest are counted, and the first record let
 * through after them says how many were left out. Lock-free; any thread.
 */
#define PGC_LOG_BURST  5
#define PGC_LOG_WINDOW 10

typedef struct pgc_log_limiter {
	_Atomic long long window;       /* which window the counts are for */
	_Atomic unsigned count;         /* records in that window */
	_Atomic unsigned suppressed;    /* left out since the last one written */
} pgc_log_limiter;

void pgc_log_limited_at(pgc_log_limiter *lim, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define pgc_log_limited(level, ...) \
	do { \
		static pgc_log_limiter pgc_lim_; \
		pgc_log_limited_at(&pgc_lim_, (level), __VA_ARGS__); \
	} while (0)

#endif
