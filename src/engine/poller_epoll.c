/*
 * poller_epoll.c - poller.h over epoll: level-triggered registrations,
 * one epoll_ctl per change, one epoll_wait per loop round.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core.h"
#include "log.h"
#include "poller.h"

typedef struct epoll_poller {
	pgc_poller base;
	int epfd;
	struct epoll_event *batch;    /* epoll_wait's array, as long as the largest max asked for */
	int batch_cap;
} epoll_poller;

static int
epoll_watch(pgc_poller *p, int fd, void *ptr, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = ptr};

	if (epoll_ctl(((epoll_poller *) p)->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
	{
		int saved = errno;

		pgc_log(PGC_WARNING, "epoll_ctl(ADD) failed: %s", strerror(saved));
		errno = saved;
		return -1;
	}
	return 0;
}

static int
epoll_rewatch(pgc_poller *p, int fd, void *ptr, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = ptr};

	return epoll_ctl(((epoll_poller *) p)->epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void
epoll_unwatch(pgc_poller *p, int fd)
{
	epoll_ctl(((epoll_poller *) p)->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* The close() that follows takes fd out of the set: one system call less per connection. */
static void
epoll_unwatch_closing(pgc_poller *p, int fd)
{
	(void) p;
	(void) fd;
}

static int
epoll_wait_events(pgc_poller *p, pgc_poll_event *out, int max, int timeout_ms)
{
	epoll_poller *ep = (epoll_poller *) p;
	int n;

	if (max > ep->batch_cap)
	{
		struct epoll_event *b = realloc(ep->batch, sizeof(*b) * (size_t) max);

		if (b == NULL)
			return errno = ENOMEM, -1;
		ep->batch = b;
		ep->batch_cap = max;
	}
	n = epoll_wait(ep->epfd, ep->batch, max, timeout_ms);
	for (int i = 0; i < n; i++)
	{
		out[i].ptr = ep->batch[i].data.ptr;
		out[i].events = ep->batch[i].events;
	}
	return n;
}

/* epoll_ctl and close() act at once: nothing is queued. */
static void
epoll_flush(pgc_poller *p)
{
	(void) p;
}

static void
epoll_destroy(pgc_poller *p)
{
	epoll_poller *ep = (epoll_poller *) p;

	close(ep->epfd);
	free(ep->batch);
	free(ep);
}

static const pgc_poller_ops epoll_ops = {
	.watch = epoll_watch,
	.rewatch = epoll_rewatch,
	.unwatch = epoll_unwatch,
	.unwatch_closing = epoll_unwatch_closing,
	.wait = epoll_wait_events,
	.flush = epoll_flush,
	.destroy = epoll_destroy,
};

pgc_poller *
pgc_poller_epoll_create(char *err, size_t errlen)
{
	epoll_poller *ep = calloc(1, sizeof(*ep));

	if (ep == NULL)
	{
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	ep->base.ops = &epoll_ops;
	ep->base.backend = PGC_IO_EPOLL;
	ep->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ep->epfd < 0)
	{
		int saved = errno;

		snprintf(err, errlen, "epoll_create1: %s", strerror(saved));
		free(ep);
		errno = saved;
		return NULL;
	}
	return &ep->base;
}
