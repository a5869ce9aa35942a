/*
 * log.c - see log.h.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_fd = 2;
static atomic_int min_level = PGC_LOG;

int
pgc_log_open(const char *path)
{
	int fd = 2;
	int old;

	if (path && path[0])
	{
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0)
			return -1;
	}
	old = atomic_exchange(&log_fd, fd);
	if (old != 2 && old != fd)
		close(old);
	return 0;
}

void
pgc_log_set_min_level(int level)
{
	atomic_store(&min_level, level);
}

void
pgc_log_close(void)
{
	int old = atomic_exchange(&log_fd, 2);

	if (old != 2)
		close(old);
}

static void log_va(int level, const char *suffix, const char *fmt, va_list ap);

void
pgc_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_va(level, NULL, fmt, ap);
	va_end(ap);
}

void
pgc_log_limited_at(pgc_log_limiter *lim, int level, const char *fmt, ...)
{
	struct timespec ts;
	long long window;
	long long seen;
	unsigned left_out;
	char suffix[96];
	va_list ap;

	if (level < atomic_load(&min_level))
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	window = (long long) ts.tv_sec / PGC_LOG_WINDOW;
	seen = atomic_load(&lim->window);
	if (seen != window && atomic_compare_exchange_strong(&lim->window, &seen, window))
		atomic_store(&lim->count, 0);
	if (atomic_fetch_add(&lim->count, 1) >= PGC_LOG_BURST)
	{
		atomic_fetch_add(&lim->suppressed, 1);
		return;
	}
	left_out = atomic_exchange(&lim->suppressed, 0);
	suffix[0] = '\0';
	if (left_out > 0)
		snprintf(suffix, sizeof(suffix), " (and %u more like it since the last one logged)", left_out);
	va_start(ap, fmt);
	log_va(level, suffix, fmt, ap);
	va_end(ap);
}

static void
log_va(int level, const char *suffix, const char *fmt, va_list ap)
{
	static const char *names[] = {"DEBUG", "LOG", "WARNING", "ERROR", "FATAL"};
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int len;

	if (level < atomic_load(&min_level))
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	len = snprintf(line + n, sizeof(line) - n, ".%03d UTC [%d] %s: ",
				   (int) (tv.tv_usec / 1000), (int) getpid(), names[level]);
	if (len > 0)
		n += (size_t) len;
	len = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (len > 0)
		n += (size_t) len < sizeof(line) - n - 1 ? (size_t) len : sizeof(line) - n - 2;
	if (suffix && suffix[0])
	{
		len = snprintf(line + n, sizeof(line) - n - 1, "%s", suffix);
		if (len > 0)
			n += (size_t) len < sizeof(line) - n - 1 ? (size_t) len : sizeof(line) - n - 2;
	}
	line[n++] = '\n';
	/* One write per record keeps lines whole across threads. */
	if (write(atomic_load(&log_fd), line, n) < 0)
		(void) errno;
}
