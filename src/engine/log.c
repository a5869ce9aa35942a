/*
 * log.c - see log.h.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_fd = 2;
static atomic_int min_level = PGC_LOG;

/* syslog: the socket, where to and as whom; the lock keeps a reload from changing them under a sender. */
static pthread_mutex_t syslog_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool syslog_on;
static int syslog_fd = -1;
static struct sockaddr_un syslog_addr;
static char syslog_ident[64];
static int syslog_facility = LOG_DAEMON;

void
pgc_log_syslog(int on, const char *ident, int facility, const char *socket_path)
{
	pthread_mutex_lock(&syslog_lock);
	if (on && syslog_fd < 0)
		syslog_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (on && syslog_fd >= 0)
	{
		memset(&syslog_addr, 0, sizeof(syslog_addr));
		syslog_addr.sun_family = AF_UNIX;
		snprintf(syslog_addr.sun_path, sizeof(syslog_addr.sun_path), "%s",
				 socket_path && socket_path[0] ? socket_path : "/dev/log");
		snprintf(syslog_ident, sizeof(syslog_ident), "%s", ident && ident[0] ? ident : "pgcarrier");
		syslog_facility = facility;
	}
	atomic_store(&syslog_on, on && syslog_fd >= 0);
	pthread_mutex_unlock(&syslog_lock);
}

/* One record to syslog; text is "LEVEL: message" without a newline. */
static void
send_syslog(int level, const char *text, size_t len)
{
	static const int severity[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT};
	char		msg[2200];
	time_t		now = time(NULL);
	struct tm	tm;
	int			n;

	localtime_r(&now, &tm);
	pthread_mutex_lock(&syslog_lock);
	n = snprintf(msg, sizeof(msg), "<%d>", syslog_facility | severity[level]);
	n += (int) strftime(msg + n, sizeof(msg) - (size_t) n, "%b %e %H:%M:%S ", &tm);
	n += snprintf(msg + n, sizeof(msg) - (size_t) n, "%s[%d]: %.*s", syslog_ident, (int) getpid(),
				  (int) len, text);
	if (n > (int) sizeof(msg) - 1)
		n = (int) sizeof(msg) - 1;
	/* A syslog daemon that is down or slow loses the record; logging never blocks on it. */
	if (sendto(syslog_fd, msg, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL,
			   (const struct sockaddr *) &syslog_addr, sizeof(syslog_addr)) < 0)
		(void) errno;
	pthread_mutex_unlock(&syslog_lock);
}

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
	if (atomic_load(&syslog_on))
	{
		/* Without the time stamp and pid: syslog records carry their own. */
		const char *text = strstr(line, "] ");

		text = text ? text + 2 : line;
		send_syslog(level, text, n - (size_t) (text - line));
	}
	line[n++] = '\n';
	/* One write per record keeps lines whole across threads. */
	if (write(atomic_load(&log_fd), line, n) < 0)
		(void) errno;
}
