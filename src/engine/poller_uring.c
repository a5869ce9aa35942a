/*
 * poller_uring.c - poller.h over io_uring poll requests.
 *
 * Why: with epoll, every change of interest is an epoll_ctl of its own.
 * Here a change only queues a submission entry; the entries queued during a
 * loop round and the wait for the next events go to the kernel in one
 * io_uring_enter.
 *
 * How the contract of poller.h is kept:
 *  - Level-triggered: a watched descriptor has one one-shot poll request in
 *    the kernel. Its completion is an event; the next wait arms a new
 *    request, which completes at once if the descriptor is still ready
 *    (the kernel polls the file when the request is armed). EPOLLET
 *    (listeners whose accepting is paused) takes a multishot request
 *    instead: it completes once per wake-up of the socket, as epoll's edge
 *    does, and stays armed.
 *  - Parked: io_uring always polls for EPOLLRDHUP too. A socket whose peer
 *    has shut down its side, watched without EPOLLIN (a client after its
 *    Terminate, a full buffer), would complete every one-shot request at
 *    once with nothing the engine asked for: the loop would spin. Such a
 *    slot is parked on a multishot request, which completes only when the
 *    socket is woken again; the first completion that carries an event the
 *    engine wants brings it back to one-shot requests (so that it is told
 *    again while it stays ready), as does any change of interest.
 *  - Stale completions: each descriptor's slot has a generation, carried in
 *    the request's user_data with the descriptor. Unwatching, and changing
 *    the interest of a request in flight, cancel the request and bump the
 *    generation, so a completion of the old request (already in the
 *    completion queue, or racing with the cancellation) is recognised and
 *    dropped without looking at the object it was for, which may be freed.
 *  - Closing: a poll request holds a reference to the file, so close()
 *    alone would keep the socket open (no FIN) and the request armed; hence
 *    unwatch_closing cancels like unwatch. The cancellation reaches the
 *    kernel with the next wait, at most one loop round after the close().
 *  - One thread: the slots and the rings are the worker's (poller.h). With
 *    IORING_SETUP_SINGLE_ISSUER and DEFER_TASKRUN, the kernel runs our
 *    completions' work only when we enter to wait (no interruptions); the
 *    ring starts disabled and is enabled by the worker thread at its first
 *    wait, which makes that thread its single issuer.
 */
#include <errno.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "poller.h"

/* Submission entries: more changes than this in one round are submitted early (one more system call). */
#define SQ_ENTRIES 1024
/* Completions: one per ready descriptor per round; the kernel keeps an overflow (IORING_FEAT_NODROP). */
#define CQ_ENTRIES 8192
/* user_data of cancellations: only their failures (the request had completed) post a completion, ignored. */
#define CONTROL_TAG UINT64_MAX

/* The flags that are the engine's wishes about the request, not poll events. */
#define REGISTRATION_FLAGS (EPOLLET | EPOLLEXCLUSIVE)

typedef struct uring_slot {
	void *ptr;                    /* what events of this descriptor point at */
	uint32_t want;                /* the interest the engine asked for */
	uint32_t gen;                 /* requests tagged with another generation are stale */
	bool watched;
	bool in_flight;               /* a request of generation gen is queued or armed */
	bool dirty;                   /* on the dirty list: looked at before the next wait */
	bool parked;                  /* only EPOLLRDHUP is ready: a multishot request waits for a wake-up */
} uring_slot;

typedef struct uring_poller {
	pgc_poller base;
	struct io_uring ring;
	bool enabled;                 /* the ring started disabled (R_DISABLED): enabled at the first wait */
	bool skip_success;            /* IORING_FEAT_CQE_SKIP: successful cancellations post nothing */
	uring_slot *slots;            /* by descriptor number */
	int n_slots;
	int *dirty;                   /* descriptors whose request may need arming */
	int n_dirty, cap_dirty;
} uring_poller;

static uint64_t
tag_of(int fd, uint32_t gen)
{
	return (uint64_t) gen << 32 | (uint32_t) fd;
}

/* The slot of fd, the table grown to hold it; NULL when out of memory. */
static uring_slot *
slot_for(uring_poller *up, int fd)
{
	if (fd < 0)
		return NULL;
	if (fd >= up->n_slots)
	{
		int n = up->n_slots ? up->n_slots : 64;
		uring_slot *s;

		while (n <= fd)
			n *= 2;
		if ((s = realloc(up->slots, sizeof(*s) * (size_t) n)) == NULL)
			return NULL;
		memset(s + up->n_slots, 0, sizeof(*s) * (size_t) (n - up->n_slots));
		up->slots = s;
		up->n_slots = n;
	}
	return &up->slots[fd];
}

/* The slot of a watched fd, or NULL. */
static uring_slot *
watched_slot(uring_poller *up, int fd)
{
	return fd >= 0 && fd < up->n_slots && up->slots[fd].watched ? &up->slots[fd] : NULL;
}

static int
mark_dirty(uring_poller *up, int fd)
{
	uring_slot *s = &up->slots[fd];

	if (s->dirty)
		return 0;
	if (up->n_dirty == up->cap_dirty)
	{
		int cap = up->cap_dirty ? up->cap_dirty * 2 : 64;
		int *d = realloc(up->dirty, sizeof(*d) * (size_t) cap);

		if (d == NULL)
			return -1;
		up->dirty = d;
		up->cap_dirty = cap;
	}
	up->dirty[up->n_dirty++] = fd;
	s->dirty = true;
	return 0;
}

/* A free submission entry; a full queue is submitted first. NULL if the kernel takes none. */
static struct io_uring_sqe *
next_sqe(uring_poller *up)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&up->ring);

	if (sqe == NULL && up->enabled && io_uring_submit(&up->ring) >= 0)
		sqe = io_uring_get_sqe(&up->ring);
	if (sqe == NULL)
		pgc_log(PGC_WARNING, "io_uring: submission queue full");
	return sqe;
}

/* Queue the poll request for fd's interest. */
static void
arm(uring_poller *up, int fd, uring_slot *s)
{
	struct io_uring_sqe *sqe = next_sqe(up);
	unsigned mask = s->want & ~(uint32_t) EPOLLET;

	if (sqe == NULL)
	{
		(void) mark_dirty(up, fd);   /* tried again at the next wait */
		return;
	}
	if ((s->want & EPOLLET) || s->parked)
		io_uring_prep_poll_multishot(sqe, fd, mask);
	else
		io_uring_prep_poll_add(sqe, fd, mask);
	io_uring_sqe_set_data64(sqe, tag_of(fd, s->gen));
	s->in_flight = true;
}

/* Make any request of s stale, cancelling the one in flight. */
static void
retire(uring_poller *up, int fd, uring_slot *s)
{
	if (s->in_flight)
	{
		struct io_uring_sqe *sqe = next_sqe(up);

		if (sqe)
		{
			io_uring_prep_poll_remove(sqe, tag_of(fd, s->gen));
			io_uring_sqe_set_data64(sqe, CONTROL_TAG);
			if (up->skip_success)
				sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		}
		/* Without an entry the request stays armed until it fires; its completion is stale. */
		s->in_flight = false;
	}
	s->gen++;
	s->parked = false;
}

static int
uring_watch(pgc_poller *p, int fd, void *ptr, uint32_t events)
{
	uring_poller *up = (uring_poller *) p;
	uring_slot *s = slot_for(up, fd);

	if (s == NULL)
		return errno = fd < 0 ? EBADF : ENOMEM, -1;
	if (s->watched)
		return errno = EEXIST, -1;
	s->ptr = ptr;
	s->want = events;
	s->watched = true;
	s->parked = false;
	s->gen++;
	if (mark_dirty(up, fd) < 0)
	{
		s->watched = false;
		pgc_log(PGC_WARNING, "io_uring: could not watch a descriptor: out of memory");
		return errno = ENOMEM, -1;
	}
	return 0;
}

static int
uring_rewatch(pgc_poller *p, int fd, void *ptr, uint32_t events)
{
	uring_poller *up = (uring_poller *) p;
	uring_slot *s = watched_slot(up, fd);

	if (s == NULL)
		return errno = ENOENT, -1;
	s->ptr = ptr;               /* completions look the pointer up here: no request to change */
	if (events == s->want)
		return 0;
	retire(up, fd, s);
	s->want = events;
	return mark_dirty(up, fd) < 0 ? (errno = ENOMEM, -1) : 0;
}

static void
uring_unwatch(pgc_poller *p, int fd)
{
	uring_poller *up = (uring_poller *) p;
	uring_slot *s = watched_slot(up, fd);

	if (s == NULL)
		return;
	retire(up, fd, s);
	s->watched = false;
	s->ptr = NULL;
	s->want = 0;
}

/* Queue a request for every watched descriptor that has none. */
static void
arm_dirty(uring_poller *up)
{
	int n = up->n_dirty;

	/* arm() may add to the list again (no entry free): those wait for the next round */
	for (int i = 0; i < n; i++)
	{
		int fd = up->dirty[i];
		uring_slot *s = &up->slots[fd];

		s->dirty = false;
		if (s->watched && !s->in_flight)
			arm(up, fd, s);
	}
	memmove(up->dirty, up->dirty + n, sizeof(int) * (size_t) (up->n_dirty - n));
	up->n_dirty -= n;
}

/* The event a completion stands for (0: none to report); updates its slot. */
static uint32_t
completion_event(uring_poller *up, const struct io_uring_cqe *cqe, void **ptr)
{
	uint64_t tag = io_uring_cqe_get_data64(cqe);
	int fd = (int) (uint32_t) tag;
	uring_slot *s;
	uint32_t ev;

	if (tag == CONTROL_TAG || (s = watched_slot(up, fd)) == NULL || s->gen != (uint32_t) (tag >> 32))
		return 0;               /* a cancellation's, or of a request made stale */
	if (!(cqe->flags & IORING_CQE_F_MORE))
	{
		s->in_flight = false;   /* one-shot, or a multishot request the kernel ended */
		(void) mark_dirty(up, fd);
	}
	if (cqe->res < 0)
	{
		/* The kernel could not poll it (EBADF: closed without unwatch, a bug): its owner closes it. */
		pgc_log_limited(PGC_WARNING, "io_uring: poll of descriptor %d failed: %s", fd, strerror(-cqe->res));
		ev = EPOLLERR;
	}
	else
		ev = (uint32_t) cqe->res & (s->want | EPOLLERR | EPOLLHUP) & ~(uint32_t) REGISTRATION_FLAGS;
	if (s->parked && ev != 0)
	{
		retire(up, fd, s);      /* back to one-shot requests, armed by the next wait */
		(void) mark_dirty(up, fd);
	}
	else if (ev == 0 && cqe->res > 0 && !(s->want & EPOLLET))
		s->parked = true;       /* ready with nothing asked for (poller.h's level-triggering would spin) */
	*ptr = s->ptr;
	return ev;
}

/* Enter the kernel once: submit what is queued, wait for a completion unless timeout_ms is 0. */
static int
submit_and_wait(uring_poller *up, int timeout_ms)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts;
	int ret;

	if (timeout_ms == 0)
		ret = io_uring_submit_and_get_events(&up->ring);
	else
	{
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long long) (timeout_ms % 1000) * 1000000;
		ret = io_uring_submit_and_wait_timeout(&up->ring, &cqe, 1, timeout_ms < 0 ? NULL : &ts, NULL);
	}
	if (ret == -ETIME || ret == -EAGAIN || ret == -EBUSY)
		return 0;               /* timed out; or completions are waiting to be reaped first */
	return ret < 0 ? (errno = -ret, -1) : 0;
}

static int
uring_wait(pgc_poller *p, pgc_poll_event *out, int max, int timeout_ms)
{
	uring_poller *up = (uring_poller *) p;
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	int n = 0;

	if (!up->enabled)
	{
		/* io_uring_enable_rings() is not in every liburing 2.x's library: the register call itself */
		if (syscall(__NR_io_uring_register, up->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
			return -1;
		up->enabled = true;
	}
	arm_dirty(up);
	if (submit_and_wait(up, timeout_ms) < 0)
		return -1;
	io_uring_for_each_cqe(&up->ring, head, cqe)
	{
		void *ptr = NULL;
		uint32_t ev;

		if (n == max)
			break;              /* the rest are reaped by the next wait */
		seen++;
		if ((ev = completion_event(up, cqe, &ptr)) != 0)
		{
			out[n].ptr = ptr;
			out[n].events = ev;
			n++;
		}
	}
	io_uring_cq_advance(&up->ring, seen);
	return n;
}

/*
 * Submit the queued cancellations, and run the work that completes them
 * (GETEVENTS: with DEFER_TASKRUN it runs only then), which lets go of their
 * files. Their completions are left in the queue: nobody reads them now.
 */
static void
uring_flush(pgc_poller *p)
{
	uring_poller *up = (uring_poller *) p;

	if (up->enabled)
		(void) io_uring_submit_and_get_events(&up->ring);
}

static void
uring_destroy(pgc_poller *p)
{
	uring_poller *up = (uring_poller *) p;

	io_uring_queue_exit(&up->ring);
	free(up->slots);
	free(up->dirty);
	free(up);
}

static const pgc_poller_ops uring_ops = {
	.watch = uring_watch,
	.rewatch = uring_rewatch,
	.unwatch = uring_unwatch,
	.unwatch_closing = uring_unwatch,
	.wait = uring_wait,
	.flush = uring_flush,
	.destroy = uring_destroy,
};

/*
 * The ring, with the flags that spare us interruptions (5.19 and later,
 * 6.1 for DEFER_TASKRUN); a kernel that knows none of them gets a plain
 * ring. -errno on failure.
 */
static int
ring_init(uring_poller *up)
{
	struct io_uring_params params = {
		.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
			IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
		.cq_entries = CQ_ENTRIES,
	};
	int ret = io_uring_queue_init_params(SQ_ENTRIES, &up->ring, &params);

	if (ret == -EINVAL)
	{
		memset(&params, 0, sizeof(params));
		params.flags = IORING_SETUP_CQSIZE;
		params.cq_entries = CQ_ENTRIES;
		ret = io_uring_queue_init_params(SQ_ENTRIES, &up->ring, &params);
	}
	if (ret < 0)
		return ret;
	up->enabled = !(params.flags & IORING_SETUP_R_DISABLED);
	up->skip_success = (params.features & IORING_FEAT_CQE_SKIP) != 0;
	if (!(params.features & IORING_FEAT_NODROP))
	{
		/* A dropped completion would be a descriptor never heard of again. */
		io_uring_queue_exit(&up->ring);
		return -EOPNOTSUPP;
	}
	return 0;
}

pgc_poller *
pgc_poller_uring_create(char *err, size_t errlen)
{
	uring_poller *up = calloc(1, sizeof(*up));
	int ret;

	if (up == NULL)
	{
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	up->base.ops = &uring_ops;
	up->base.backend = PGC_IO_URING;
	if ((ret = ring_init(up)) < 0)
	{
		snprintf(err, errlen, "io_uring_queue_init: %s",
				 ret == -EOPNOTSUPP ? "the kernel may drop completions (no IORING_FEAT_NODROP)" : strerror(-ret));
		free(up);
		errno = -ret;
		return NULL;
	}
	return &up->base;
}
