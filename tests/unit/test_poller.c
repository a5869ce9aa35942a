/*
 * test_poller.c - unit tests for poller.h's contract, run on both backends
 * (src/engine/poller_epoll.c, poller_uring.c) over Unix socket pairs.
 *
 * "Nothing is reported" is checked by timing: a wait of WAIT_MS with no
 * event must last about that long (a loop that spins returns at once).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "poller.h"

#define WAIT_MS 100
#define MAX_EVENTS 16

typedef struct fixture {
	pgc_poller *p;
	int a, b;                     /* a socket pair: a is watched, b is its peer */
	pgc_poll_event ev[MAX_EVENTS];
} fixture;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void
socket_pair(int *a, int *b)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	*a = sv[0];
	*b = sv[1];
}

static int
setup(void **state, pgc_io_backend backend)
{
	fixture *f = calloc(1, sizeof(*f));
	char err[200];

	f->p = pgc_poller_create(backend, err, sizeof(err));
	if (f->p == NULL)
	{
		fprintf(stderr, "test_poller: no %s here (%s): its tests are skipped\n", pgc_io_backend_name(backend), err);
		free(f);
		*state = NULL;
		return 0;
	}
	socket_pair(&f->a, &f->b);
	*state = f;
	return 0;
}

static int setup_epoll(void **state) { return setup(state, PGC_IO_EPOLL); }
static int setup_uring(void **state) { return setup(state, PGC_IO_URING); }

static int
teardown(void **state)
{
	fixture *f = *state;

	if (f == NULL)
		return 0;
	pgc_poller_destroy(f->p);
	if (f->a >= 0)
		close(f->a);
	close(f->b);
	free(f);
	return 0;
}

#define NEED_BACKEND(f) do { if ((f) == NULL) { skip(); } } while (0)

/*
 * pgc_poller_wait, failing the test on an error but EINTR (which the worker
 * takes as a round without events: a ring torn down by the test before
 * leaves task work that interrupts the next system call).
 */
static int
wait_once(fixture *f, int max, int timeout_ms)
{
	int n = pgc_poller_wait(f->p, f->ev, max, timeout_ms);

	if (n < 0 && errno != EINTR)
		fail_msg("wait failed: %s", strerror(errno));
	return n < 0 ? 0 : n;
}

/* One wait: the number of events, and the event for ptr (0 if none). */
static int
wait_for(fixture *f, int timeout_ms, void *ptr, uint32_t *events)
{
	int n = wait_once(f, MAX_EVENTS, timeout_ms);

	*events = 0;
	for (int i = 0; i < n; i++)
		if (f->ev[i].ptr == ptr)
			*events |= f->ev[i].events;
	return n;
}

/*
 * Waits for WAIT_MS that must report nothing, and must wait: a few early
 * returns with no event are allowed (io_uring's wait returns for a stale
 * completion it drops), a loop that spins is not.
 */
static void
assert_quiet(fixture *f)
{
	double t0 = now_ms(), left;
	int returns = 0;

	while ((left = WAIT_MS - (now_ms() - t0)) > 1)
	{
		assert_int_equal(wait_once(f, MAX_EVENTS, (int) left), 0);
		returns++;
	}
	if (returns > 4)
		fail_msg("%d returns without an event in %d ms: the loop spins", returns, WAIT_MS);
}

/* Wait until ptr gets an event (some waits may see others first); its events. */
static uint32_t
event_of(fixture *f, void *ptr)
{
	uint32_t events = 0;

	for (int i = 0; i < 10 && events == 0; i++)
		wait_for(f, 1000, ptr, &events);
	assert_true(events != 0);
	return events;
}

/* The next waits report ptr with events (level-triggered: in most of them), and nothing else. */
static void
assert_only(fixture *f, void *ptr, uint32_t events)
{
	int told = 0;

	for (int round = 0; round < 5; round++)
	{
		int n = wait_once(f, MAX_EVENTS, 1000);

		for (int i = 0; i < n; i++)
		{
			assert_ptr_equal(f->ev[i].ptr, ptr);
			assert_int_equal(f->ev[i].events, events);
			told++;
		}
	}
	assert_true(told >= 3);
}

static void
write_byte(int fd)
{
	assert_int_equal(write(fd, "x", 1), 1);
}

/* Level-triggered: a socket left readable is reported by every wait. */
static void
test_level_triggered(void **state)
{
	fixture *f = *state;
	int me;

	NEED_BACKEND(f);
	assert_int_equal(pgc_poller_watch(f->p, f->a, &me, EPOLLIN), 0);
	assert_quiet(f);
	write_byte(f->b);
	for (int i = 0; i < 3; i++)
		assert_int_equal(event_of(f, &me), EPOLLIN);
	{
		char c;

		assert_int_equal(read(f->a, &c, 1), 1);
	}
	assert_quiet(f);
}

/* Watching twice, or rewatching what is not watched, fails as epoll_ctl does. */
static void
test_watch_errors(void **state)
{
	fixture *f = *state;
	int me;

	NEED_BACKEND(f);
	assert_int_equal(pgc_poller_rewatch(f->p, f->a, &me, EPOLLIN), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(pgc_poller_watch(f->p, f->a, &me, EPOLLIN), 0);
	assert_int_equal(pgc_poller_watch(f->p, f->a, &me, EPOLLIN), -1);
	assert_int_equal(errno, EEXIST);
}

/*
 * After unwatch, the old pointer is never reported, even when its request
 * had already completed in the kernel (the data came after the request was
 * armed), and the same descriptor number watched again reports the new one.
 */
static void
test_no_event_after_unwatch(void **state)
{
	fixture *f = *state;
	int old_obj, new_obj;
	uint32_t events;

	NEED_BACKEND(f);
	assert_int_equal(pgc_poller_watch(f->p, f->a, &old_obj, EPOLLIN), 0);
	assert_int_equal(wait_for(f, 0, &old_obj, &events), 0);   /* armed, nothing yet */
	write_byte(f->b);                                         /* completes the armed request */
	pgc_poller_unwatch(f->p, f->a);
	assert_quiet(f);
	/* a new object on the same descriptor, while the old request's completion may still be queued */
	assert_int_equal(pgc_poller_watch(f->p, f->a, &new_obj, EPOLLIN), 0);
	assert_only(f, &new_obj, EPOLLIN);
}

/* A closed descriptor's number comes back with the next socket: only its new owner hears of it. */
static void
test_descriptor_reused(void **state)
{
	fixture *f = *state;
	int old_obj, new_obj, fd = f->a;

	NEED_BACKEND(f);
	assert_int_equal(pgc_poller_watch(f->p, f->a, &old_obj, EPOLLIN), 0);
	write_byte(f->b);
	assert_int_equal(event_of(f, &old_obj), EPOLLIN);        /* and re-armed by the next wait */
	pgc_poller_unwatch_closing(f->p, f->a);
	close(f->a);
	close(f->b);
	socket_pair(&f->a, &f->b);
	assert_int_equal(f->a, fd);
	assert_int_equal(pgc_poller_watch(f->p, f->a, &new_obj, EPOLLIN), 0);
	assert_quiet(f);
	write_byte(f->b);
	assert_only(f, &new_obj, EPOLLIN);
}

/* Socket a, watched and armed, is unwatched as closing and closed. */
static void
watch_then_close(fixture *f, int *me)
{
	uint32_t events;

	assert_int_equal(pgc_poller_watch(f->p, f->a, me, EPOLLIN), 0);
	assert_int_equal(wait_for(f, 0, me, &events), 0);        /* armed */
	pgc_poller_unwatch_closing(f->p, f->a);
	close(f->a);
	f->a = -1;
}

/* unwatch_closing then close(): the peer sees the end (io_uring's request must not hold the socket open). */
static void
test_close_releases_socket(void **state)
{
	fixture *f = *state;
	int me;
	uint32_t events;
	char c;

	NEED_BACKEND(f);
	watch_then_close(f, &me);
	assert_int_equal(wait_for(f, 0, &me, &events), 0);       /* the loop's next round */
	assert_int_equal(read(f->b, &c, 1), 0);                  /* EOF, not EAGAIN */
}

/* The same when the loop ends instead: flush hands the cancellation to the kernel. */
static void
test_flush_releases_socket(void **state)
{
	fixture *f = *state;
	int me;
	char c;

	NEED_BACKEND(f);
	watch_then_close(f, &me);
	pgc_poller_flush(f->p);
	assert_int_equal(read(f->b, &c, 1), 0);
}

/* rewatch changes the interest and the pointer; only the current interest is reported. */
static void
test_rewatch(void **state)
{
	fixture *f = *state;
	int first, second;

	NEED_BACKEND(f);
	assert_int_equal(pgc_poller_watch(f->p, f->a, &first, EPOLLIN), 0);
	write_byte(f->b);
	assert_int_equal(event_of(f, &first), EPOLLIN);
	assert_int_equal(pgc_poller_rewatch(f->p, f->a, &second, EPOLLOUT), 0);
	assert_int_equal(event_of(f, &second), EPOLLOUT);        /* writable; the byte to read is not told */
	assert_int_equal(pgc_poller_rewatch(f->p, f->a, &second, 0), 0);
	assert_quiet(f);
	assert_int_equal(pgc_poller_rewatch(f->p, f->a, &first, EPOLLIN | EPOLLOUT), 0);
	assert_int_equal(event_of(f, &first), EPOLLIN | EPOLLOUT);
}

/* EPOLLET: told once per arrival, not again while the data stays. */
static void
test_edge_triggered(void **state)
{
	fixture *f = *state;
	int me;

	NEED_BACKEND(f);
	assert_int_equal(pgc_poller_watch(f->p, f->a, &me, EPOLLIN | EPOLLET), 0);
	write_byte(f->b);
	assert_int_equal(event_of(f, &me), EPOLLIN);
	assert_quiet(f);
	write_byte(f->b);
	assert_int_equal(event_of(f, &me), EPOLLIN);
	assert_quiet(f);
}

/*
 * The peer shut down its side while we do not read (no EPOLLIN): nothing is
 * reported, and the wait waits (io_uring always polls for EPOLLRDHUP, which
 * is ready now: a re-armed one-shot request would complete at once, forever).
 * Asking for EPOLLIN again reports the end at once.
 */
static void
test_peer_shutdown_unread(void **state)
{
	fixture *f = *state;
	int me;

	NEED_BACKEND(f);
	assert_int_equal(pgc_poller_watch(f->p, f->a, &me, 0), 0);
	assert_int_equal(shutdown(f->b, SHUT_WR), 0);
	for (int i = 0; i < 3; i++)
		assert_quiet(f);
	assert_int_equal(pgc_poller_rewatch(f->p, f->a, &me, EPOLLIN), 0);
	assert_int_equal(event_of(f, &me), EPOLLIN);
	assert_int_equal(event_of(f, &me), EPOLLIN);             /* level: still there */
}

/* The same with EPOLLOUT wanted on a full socket: quiet until the peer reads, then level-triggered again. */
static void
test_peer_shutdown_then_writable(void **state)
{
	fixture *f = *state;
	char buf[65536];
	int me, n = 0;

	NEED_BACKEND(f);
	memset(buf, 'x', sizeof(buf));
	while (write(f->a, buf, sizeof(buf)) > 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
		n++;
	assert_true(n > 0);
	assert_int_equal(shutdown(f->b, SHUT_WR), 0);
	assert_int_equal(pgc_poller_watch(f->p, f->a, &me, EPOLLOUT), 0);
	for (int i = 0; i < 3; i++)
		assert_quiet(f);
	while (read(f->b, buf, sizeof(buf)) > 0)
		;
	assert_int_equal(event_of(f, &me), EPOLLOUT);
	assert_int_equal(event_of(f, &me), EPOLLOUT);
	assert_int_equal(event_of(f, &me), EPOLLOUT);
}

/* More ready descriptors than one wait takes: the rest come with the next. */
static void
test_more_than_max(void **state)
{
	fixture *f = *state;
	enum { N = 5 };
	int a[N], b[N], obj[N], seen[N] = {0};

	NEED_BACKEND(f);
	for (int i = 0; i < N; i++)
	{
		socket_pair(&a[i], &b[i]);
		assert_int_equal(pgc_poller_watch(f->p, a[i], &obj[i], EPOLLIN), 0);
		write_byte(b[i]);
	}
	for (int round = 0; round < 4; round++)
	{
		int n = wait_once(f, 2, 1000);

		assert_true(n <= 2);
		for (int j = 0; j < n; j++)
			for (int i = 0; i < N; i++)
				if (f->ev[j].ptr == &obj[i])
					seen[i]++;
	}
	for (int i = 0; i < N; i++)
	{
		assert_true(seen[i] > 0);
		pgc_poller_unwatch_closing(f->p, a[i]);
		close(a[i]);
		close(b[i]);
	}
}

static void
test_backend_names(void **state)
{
	(void) state;
	assert_int_equal(pgc_io_backend_parse("epoll"), PGC_IO_EPOLL);
	assert_int_equal(pgc_io_backend_parse("IO_URING"), PGC_IO_URING);
	assert_int_equal(pgc_io_backend_parse("auto"), PGC_IO_AUTO);
	assert_int_equal(pgc_io_backend_parse("kqueue"), -1);
	assert_string_equal(pgc_io_backend_name(PGC_IO_URING), "io_uring");
}

#define BOTH(t) \
	cmocka_unit_test_setup_teardown(t, setup_epoll, teardown), \
	cmocka_unit_test_setup_teardown(t, setup_uring, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend_names),
		BOTH(test_level_triggered),
		BOTH(test_watch_errors),
		BOTH(test_no_event_after_unwatch),
		BOTH(test_descriptor_reused),
		BOTH(test_close_releases_socket),
		BOTH(test_flush_releases_socket),
		BOTH(test_rewatch),
		BOTH(test_edge_triggered),
		BOTH(test_peer_shutdown_unread),
		BOTH(test_peer_shutdown_then_writable),
		BOTH(test_more_than_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
