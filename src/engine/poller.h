/*
 * poller.h - how a worker learns which of its descriptors are ready.
 *
 * One poller per worker, used by that worker's thread only (the engine may
 * watch descriptors before the thread starts). Two backends:
 *  - epoll: epoll_ctl per change, epoll_wait per loop round;
 *  - io_uring: one-shot poll requests that the wait re-arms, so that
 *    arming, re-arming, cancelling and waiting are one io_uring_enter per
 *    loop round (poller_uring.c).
 *
 * The contract, the same for both (the engine relies on it):
 *  - Interest masks are epoll's: EPOLLIN, EPOLLOUT, and EPOLLET and
 *    EPOLLEXCLUSIVE for listeners. Events come back as epoll's EPOLLIN,
 *    EPOLLOUT, EPOLLERR, EPOLLHUP, only those of the current interest
 *    (EPOLLERR and EPOLLHUP always).
 *  - Level-triggered unless EPOLLET: a descriptor still ready after its
 *    event was handled is reported again by the next wait.
 *  - After unwatch (or unwatch_closing) returns, no wait reports the
 *    descriptor's old ptr: the object it points at may be freed at once,
 *    and the descriptor number reused for a new watch.
 *  - unwatch_closing: the caller closes fd right after, and fd has no
 *    other copy (no dup, no fork). epoll lets the close() take it out of
 *    the set (no system call); io_uring must cancel its poll request, which
 *    holds the socket open until cancelled.
 *  - Events of one wait are a batch: ptr values stay as they were when the
 *    wait returned (the worker clears those of objects it frees meanwhile,
 *    pgc_worker_forget).
 */
#ifndef PGC_POLLER_H
#define PGC_POLLER_H

#include <stddef.h>
#include <stdint.h>

typedef enum pgc_io_backend {
	PGC_IO_EPOLL = 0,
	PGC_IO_URING,
	PGC_IO_AUTO                   /* io_uring where the kernel allows it, else epoll */
} pgc_io_backend;

/* "epoll", "io_uring", "auto"; the parse gives -1 for anything else. */
const char *pgc_io_backend_name(int backend);
int pgc_io_backend_parse(const char *name);

typedef struct pgc_poll_event {
	void *ptr;                    /* as given to watch; NULL once forgotten */
	uint32_t events;
} pgc_poll_event;

typedef struct pgc_poller pgc_poller;

/*
 * A poller of backend (PGC_IO_EPOLL or PGC_IO_URING); NULL with the reason
 * in err when the kernel refuses (errno set: ENOSYS, EPERM, ...).
 */
pgc_poller *pgc_poller_create(pgc_io_backend backend, char *err, size_t errlen);
pgc_io_backend pgc_poller_backend(const pgc_poller *p);
/* 0, or -1 with errno set (and a warning logged). */
int pgc_poller_watch(pgc_poller *p, int fd, void *ptr, uint32_t events);
/* Change what fd (watched) waits for, and what it points at. 0 or -1. */
int pgc_poller_rewatch(pgc_poller *p, int fd, void *ptr, uint32_t events);
void pgc_poller_unwatch(pgc_poller *p, int fd);
void pgc_poller_unwatch_closing(pgc_poller *p, int fd);
/*
 * Wait up to timeout_ms (0: do not wait; -1: no limit) and fill out with
 * at most max events. The count, or -1 with errno set (EINTR: try again).
 */
int pgc_poller_wait(pgc_poller *p, pgc_poll_event *out, int max, int timeout_ms);
/*
 * Hand the kernel what is queued (cancellations) without waiting for
 * events: a worker that leaves its loop calls it, so that the sockets it
 * closed on the way out are closed now, not when the poller is destroyed.
 */
void pgc_poller_flush(pgc_poller *p);
void pgc_poller_destroy(pgc_poller *p);

/* ---- the backends' tables (poller.c dispatches through them) ---- */
typedef struct pgc_poller_ops {
	int (*watch)(pgc_poller *p, int fd, void *ptr, uint32_t events);
	int (*rewatch)(pgc_poller *p, int fd, void *ptr, uint32_t events);
	void (*unwatch)(pgc_poller *p, int fd);
	void (*unwatch_closing)(pgc_poller *p, int fd);
	int (*wait)(pgc_poller *p, pgc_poll_event *out, int max, int timeout_ms);
	void (*flush)(pgc_poller *p);
	void (*destroy)(pgc_poller *p);
} pgc_poller_ops;

/* Every backend's poller starts with this. */
struct pgc_poller {
	const pgc_poller_ops *ops;
	pgc_io_backend backend;
};

pgc_poller *pgc_poller_epoll_create(char *err, size_t errlen);
pgc_poller *pgc_poller_uring_create(char *err, size_t errlen);

#endif
