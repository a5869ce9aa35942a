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

void
pgc_log(int level, const char *fmt, ...)
{
	static const char *names[] = {"DEBUG", "LOG", "WARNING", "ERROR", "FATAL"};
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int len;
	va_list ap;

	if (level < atomic_load(&min_level))
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	len = snprintf(line + n, sizeof(line) - n, ".%03d UTC [%d] %s: ",
				   (int) (tv.tv_usec / 1000), (int) getpid(), names[level]);
	if (len > 0)
		n += (size_t) len;
	va_start(ap, fmt);
	len = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (len > 0)
		n += (size_t) len < sizeof(line) - n - 1 ? (size_t) len : sizeof(line) - n - 2;
	line[n++] = '\n';
	/* One write per record keeps lines whole across threads. */
	if (write(atomic_load(&log_fd), line, n) < 0)
		(void) errno;
}
