/*
 * poller.c - the backend-neutral part of poller.h: names, and the calls
 * that go through the backend's table.
 */
#include <strings.h>

#include "poller.h"

const char *
pgc_io_backend_name(int backend)
{
	switch (backend)
	{
		case PGC_IO_EPOLL:
			return "epoll";
		case PGC_IO_URING:
			return "io_uring";
		case PGC_IO_AUTO:
			return "auto";
	}
	return "?";
}

int
pgc_io_backend_parse(const char *name)
{
	for (int b = PGC_IO_EPOLL; b <= PGC_IO_AUTO; b++)
		if (strcasecmp(name, pgc_io_backend_name(b)) == 0)
			return b;
	return -1;
}

pgc_poller *
pgc_poller_create(pgc_io_backend backend, char *err, size_t errlen)
{
	return backend == PGC_IO_URING ? pgc_poller_uring_create(err, errlen) : pgc_poller_epoll_create(err, errlen);
}

pgc_io_backend
pgc_poller_backend(const pgc_poller *p)
{
	return p->backend;
}

int
pgc_poller_watch(pgc_poller *p, int fd, void *ptr, uint32_t events)
{
	return p->ops->watch(p, fd, ptr, events);
}

int
pgc_poller_rewatch(pgc_poller *p, int fd, void *ptr, uint32_t events)
{
	return p->ops->rewatch(p, fd, ptr, events);
}

void
pgc_poller_unwatch(pgc_poller *p, int fd)
{
	p->ops->unwatch(p, fd);
}

void
pgc_poller_unwatch_closing(pgc_poller *p, int fd)
{
	p->ops->unwatch_closing(p, fd);
}

int
pgc_poller_wait(pgc_poller *p, pgc_poll_event *out, int max, int timeout_ms)
{
	return p->ops->wait(p, out, max, timeout_ms);
}

void
pgc_poller_flush(pgc_poller *p)
{
	p->ops->flush(p);
}

void
pgc_poller_destroy(pgc_poller *p)
{
	if (p)
		p->ops->destroy(p);
}
