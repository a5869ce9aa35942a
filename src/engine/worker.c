/*
 * worker.c - one event loop per thread.
 *
 * Each worker owns its clients for life, and the server connections linked
 * to them. Another worker that hands one of our clients a server (or an
 * error) puts the client on our inbox and wakes us with an eventfd.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "census.h"
#include "core.h"
#include "log.h"
#include "pipeline.h"
#include "poller.h"
#include "stats.h"
#include "tls.h"

__thread pgc_worker *pgc_current_worker;

static void wake(pgc_worker *w);

/*
 * The free list of I/O buffers absorbs the churn of busy clients (a client
 * takes a buffer when it sends something and gives it back when it is idle
 * again), so it may grow to MAX_FREE_BUFS; what it has not needed during a
 * whole tick is given back to the system at the tick, half of it per tick
 * down to MIN_FREE_BUFS (trim_free_bufs), so that a burst of logins or
 * queries leaves no memory behind once its clients are idle.
 */
#define MAX_FREE_BUFS 256
#define MIN_FREE_BUFS 8
#define TICK_INTERVAL 0.2

pgc_iobuf *
pgc_worker_get_buf(pgc_worker *w)
{
	pgc_iobuf *b = w->free_bufs;

	if (b)
	{
		w->free_bufs = b->next_free;
		if (--w->n_free_bufs < w->free_bufs_low)
			w->free_bufs_low = w->n_free_bufs;
	}
	else if ((b = pgc_iobuf_new()) == NULL)
		return NULL;
	b->next_free = NULL;
	b->start = b->scan = b->end = 0;
	return b;
}

void
pgc_worker_put_buf(pgc_worker *w, pgc_iobuf *b)
{
	if (b == NULL)
		return;
	/* Big buffers (a large message read whole) are not kept. */
	if (w->n_free_bufs >= MAX_FREE_BUFS || b->cap != PGC_IOBUF_SIZE)
	{
		pgc_iobuf_free(b);
		return;
	}
	b->next_free = w->free_bufs;
	w->free_bufs = b;
	w->n_free_bufs++;
}

/* At the tick: give back half of the free buffers that no client took since the last one. */
static void
trim_free_bufs(pgc_worker *w)
{
	int spare = w->free_bufs_low - MIN_FREE_BUFS;

	for (int i = 0; i < (spare + 1) / 2 && w->free_bufs; i++)
	{
		pgc_iobuf *b = w->free_bufs;

		w->free_bufs = b->next_free;
		w->n_free_bufs--;
		pgc_iobuf_free(b);
	}
	w->free_bufs_low = w->n_free_bufs;
}

/* ptr left the ready list: pgc_worker_ready may add it again (on this or another worker). */
static void
clear_ready_flag(void *ptr)
{
	pgc_tls *tls = *(pgc_kind *) ptr == PGC_KIND_CLIENT ? ((pgc_client *) ptr)->tls : ((pgc_server *) ptr)->tls;

	if (tls)
		*pgc_tls_ready_flag(tls) = false;
}

void
pgc_worker_forget(pgc_worker *w, void *ptr)
{
	/* Events of this batch not yet handled must not reach a closed or departed object. */
	if (w != pgc_current_worker)
		return;
	for (int i = 0; i < w->n_events; i++)
		if (w->events[i].ptr == ptr)
			w->events[i].ptr = NULL;
	for (int i = 0; i < w->n_ready; i++)
		if (w->ready[i] == ptr)
		{
			w->ready[i] = NULL;
			clear_ready_flag(ptr);
		}
}

void
pgc_worker_ready(pgc_worker *w, void *ptr, pgc_tls *tls)
{
	bool *queued = pgc_tls_ready_flag(tls);

	if (*queued)
		return;
	if (w->n_ready == w->cap_ready)
	{
		int cap = w->cap_ready ? w->cap_ready * 2 : 16;
		void **r = realloc(w->ready, sizeof(*r) * (size_t) cap);

		if (r == NULL)
			return;             /* the bytes wait for the next read the socket announces */
		w->ready = r;
		w->cap_ready = cap;
	}
	w->ready[w->n_ready++] = ptr;
	*queued = true;
}

static void
dispatch(pgc_worker *w, void *ptr, uint32_t events)
{
	switch (*(pgc_kind *) ptr)
	{
		case PGC_KIND_LISTENER:
			for (int j = 0; j < w->n_listen; j++)
				pgc_client_accept(w, w->listen_fds[j]);
			break;
		case PGC_KIND_CLIENT:
			pgc_client_event(ptr, events);
			break;
		case PGC_KIND_SERVER:
			pgc_server_event(ptr, events);
			break;
		case PGC_KIND_WAKEUP:
		{
			uint64_t v;

			if (read(w->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				pgc_log(PGC_WARNING, "eventfd read failed: %s", strerror(errno));
			break;
		}
		case PGC_KIND_CANCEL:
			pgc_cancel_event(ptr, events);
			break;
	}
}

/* Give the objects with waiting TLS bytes their read (those queued meanwhile wait for the next round). */
static void
run_ready(pgc_worker *w)
{
	int n = w->n_ready;

	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
	{
		void *ptr = w->ready[i];

		if (ptr == NULL)
			continue;
		w->ready[i] = NULL;
		clear_ready_flag(ptr);
		dispatch(w, ptr, EPOLLIN);
	}
	memmove(w->ready, w->ready + n, sizeof(void *) * (size_t) (w->n_ready - n));
	w->n_ready -= n;
}

int
pgc_worker_watch(pgc_worker *w, int fd, void *ptr, uint32_t events)
{
	return pgc_poller_watch(w->poller, fd, ptr, events);
}

int
pgc_worker_rewatch(pgc_worker *w, int fd, void *ptr, uint32_t events)
{
	return pgc_poller_rewatch(w->poller, fd, ptr, events);
}

void
pgc_worker_unwatch(pgc_worker *w, int fd)
{
	pgc_poller_unwatch(w->poller, fd);
}

void
pgc_worker_unwatch_closing(pgc_worker *w, int fd)
{
	pgc_poller_unwatch_closing(w->poller, fd);
}

void
pgc_worker_post(pgc_client *c)
{
	pgc_worker *w = c->worker;

	pthread_mutex_lock(&w->inbox_lock);
	c->inbox_next = w->inbox;
	w->inbox = c;
	c->in_inbox = true;
	pthread_mutex_unlock(&w->inbox_lock);
	/* Our own inbox is drained after every batch; others need a wake-up, one per batch. */
	wake(w);
}

void
pgc_worker_wake(pgc_worker *w)
{
	wake(w);
}

/*
 * Make w drain its inbox soon. A worker that is not waiting for events
 * drains after its batch, and looks at wake_pending before it waits again:
 * only a waiting one needs the eventfd's wake-up (a write, an epoll event
 * and a read saved for each post to a busy worker). The two flags are
 * sequentially consistent: either the poster sees in_wait, or the worker
 * sees wake_pending before it waits (pgc_worker_main).
 */
static void
wake(pgc_worker *w)
{
	if (w != pgc_current_worker && !atomic_exchange(&w->wake_pending, true) && atomic_load(&w->in_wait))
	{
		uint64_t one = 1;

		if (write(w->wakefd, &one, sizeof(one)) < 0)
			pgc_log(PGC_WARNING, "could not wake worker %d: %s", w->id, strerror(errno));
	}
}

void
pgc_worker_ask_donation(pgc_worker *w, pgc_pool *p)
{
	pthread_mutex_lock(&w->inbox_lock);
	if (w->n_donate == w->cap_donate)
	{
		int cap = w->cap_donate ? w->cap_donate * 2 : 8;
		pgc_pool **d = realloc(w->donate, sizeof(*d) * (size_t) cap);

		if (d == NULL)
		{
			pthread_mutex_unlock(&w->inbox_lock);
			return;             /* worker 0's maintenance asks again */
		}
		w->donate = d;
		w->cap_donate = cap;
	}
	w->donate[w->n_donate++] = p;
	pthread_mutex_unlock(&w->inbox_lock);
	wake(w);
}

static void
drain_inbox(pgc_worker *w)
{
	for (;;)
	{
		pgc_client *list;
		pgc_pool *donate[16];
		int n_donate;
		struct pgc_census_ask *asks;

		atomic_store(&w->wake_pending, false);
		pthread_mutex_lock(&w->inbox_lock);
		list = w->inbox;
		w->inbox = NULL;
		asks = w->census_asks;      /* listings asked of us (census.h) */
		w->census_asks = NULL;
		for (pgc_client *c = list; c; c = c->inbox_next)
			c->in_inbox = false;
		n_donate = w->n_donate < 16 ? w->n_donate : 16;
		if (n_donate > 0)
			memcpy(donate, w->donate + w->n_donate - n_donate, sizeof(pgc_pool *) * (size_t) n_donate);
		w->n_donate -= n_donate;
		pthread_mutex_unlock(&w->inbox_lock);
		for (int i = 0; i < n_donate; i++)
			pgc_pool_donate(w, donate[i]);
		if (list == NULL && n_donate == 0 && asks == NULL)
			return;
		while (list)
		{
			pgc_client *c = list;

			list = c->inbox_next;
			pgc_client_handoff(c);
		}
		/* After the handoffs: the servers they brought are listed as ours (census.h). */
		pgc_census_serve(w, asks);
	}
}

static void
tick(pgc_worker *w)
{
	pgc_link *n, *next;

	for (n = w->clients.next; n != &w->clients; n = next)
	{
		next = n->next;
		pgc_client_tick(pgc_container_of(n, pgc_client, node), w->now);
	}
	for (n = w->servers.next; n != &w->servers; n = next)
	{
		next = n->next;
		pgc_server_tick(pgc_container_of(n, pgc_server, node), w->now);
	}
	pgc_cancel_tick(w, w->now);
	trim_free_bufs(w);
	/* Draining (SHUTDOWN WAIT_FOR_CLIENTS) keeps serving the clients that stay. */
	pgc_pool_maintain_idle(w->engine, w, w->now, w->stopping && atomic_load(&w->engine->shutting_down));
	if (w->id == 0)
	{
		pgc_pool_maintain(w->engine, w, w->now);
		pgc_stats_tick(w->engine, w->now);
	}
}

static void
stop_listening(pgc_worker *w)
{
	for (int i = 0; i < w->n_listen; i++)
	{
		pgc_worker_unwatch(w, w->listen_fds[i]);
		if (w->listen_fds[i] != w->engine->unix_fd)
			close(w->listen_fds[i]);
	}
	w->n_listen = 0;
}

void *
pgc_worker_main(void *arg)
{
	pgc_worker *w = arg;
	pgc_poll_event events[PGC_MAX_EVENTS];

	pgc_current_worker = w;
	w->now = pgc_now();
	w->next_tick = w->now + TICK_INTERVAL;
	for (;;)
	{
		int timeout_ms = (int) ((w->next_tick - w->now) * 1000) + 1;
		int n;

		if (timeout_ms < 0 || w->n_ready > 0)
			timeout_ms = 0;
		atomic_store(&w->in_wait, true);
		if (atomic_load(&w->wake_pending))
			timeout_ms = 0;     /* posted while we were busy: nobody wrote the eventfd (wake) */
		n = pgc_poller_wait(w->poller, events, PGC_MAX_EVENTS, timeout_ms);
		atomic_store(&w->in_wait, false);
		if (n < 0 && errno != EINTR)
		{
			pgc_log(PGC_ERROR, "waiting for events (%s) failed: %s",
					pgc_io_backend_name(pgc_poller_backend(w->poller)), strerror(errno));
			break;
		}
		w->now = pgc_now();
		pgc_stats_loop(w, n);
		w->events = events;
		w->n_events = n > 0 ? n : 0;
		w->tls_steps = 0;
		for (int i = 0; i < w->n_events; i++)
		{
			void *ptr = events[i].ptr;

			if (ptr != NULL)
				dispatch(w, ptr, events[i].events);
		}
		w->n_events = 0;
		run_ready(w);
		pgc_pipeline_round(w);
		drain_inbox(w);
		pgc_census_poll(w);
		if (w->now >= w->next_tick)
		{
			if ((atomic_load(&w->engine->shutting_down) || atomic_load(&w->engine->draining)) && !w->stopping)
			{
				w->stopping = true;
				stop_listening(w);
			}
			tick(w);
			drain_inbox(w);
			pgc_census_poll(w);
			w->next_tick = w->now + TICK_INTERVAL;
		}
		if (w->stopping && pgc_list_empty(&w->clients) && pgc_list_empty(&w->servers))
			break;
	}
	pgc_pool_maintain_idle(w->engine, w, w->now, true);
	pgc_census_worker_exit(w);
	pgc_cancel_drop_all(w);
	/* Our listeners and the servers closed above: closed in the kernel now, not at the engine's exit (io_uring). */
	pgc_poller_flush(w->poller);
	free(w->donate);
	free(w->ready);
	free(w->pipe_flush);
	return NULL;
}
