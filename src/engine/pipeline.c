/*
 * pipeline.c - pipelined multiplexing; see pipeline.h for what is sent
 * where, and why the answers are always those of a server of one's own.
 *
 * Bookkeeping. A server's followers are a FIFO (s->pipe_first, via
 * c->pipe_next), oldest first, in the order their units were appended to
 * the server's output. Their units go through the guard as they are sent
 * (pgc_relay_send_unit), so that what it injects (a Parse of a statement
 * the server lacks, say) and what it notes about the server are right for
 * the place of each message in the server's stream; every in-flight entry
 * they add is marked with the follower (pgc_pending.follower), and the
 * relay stops reading answers when such an entry comes to the head
 * (relay.c). So a follower's answers wait in the server's input buffer
 * until the server is handed to it, and then the relay goes on with that
 * pair as with any other. A follower keeps a copy of its unit as it sent
 * it: if the pipeline breaks, the copy goes back to the front of its input
 * and is sent again through the ordinary path.
 */
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "log.h"
#include "pipeline.h"
#include "relay.h"
#include "stats.h"

/* Units in flight on one server at once; below 2 nothing is pipelined. */
static int
depth_setting(void)
{
	return pgc_engine_config()->server_pipeline_depth;
}

/* May a unit have this message (not the first of a simple Query unit)? */
static bool
extended_unit_type(uint8_t type)
{
	return type == PGC_FE_PARSE || type == PGC_FE_BIND || type == PGC_FE_DESCRIBE || type == PGC_FE_EXECUTE;
}

/*
 * The length of the unit at the start of c's input: one whole Query, or
 * whole extended-protocol messages up to and with a Sync; 0 if there is
 * none there that could be pipelined.
 */
static size_t
unit_length(const pgc_client *c)
{
	const pgc_iobuf *b = c->in;
	size_t pos, avail;

	if (b == NULL || b->start != b->scan || c->fe.skip || c->fe.discard || c->fe_state != PGC_FE_READY)
		return 0;
	avail = b->end - b->start;
	if (avail > PGC_PIPELINE_UNIT_LIMIT)
		avail = PGC_PIPELINE_UNIT_LIMIT;
	for (pos = 0;;)
	{
		uint8_t type;
		uint32_t len;

		if (!pgc_msg_header(b->data + b->start + pos, avail - pos, &type, &len) ||
			len < PGC_MSG_LENGTH_SIZE || pos + len + 1 > avail)
			return 0;
		pos += (size_t) len + 1;
		if (type == PGC_FE_SYNC || (type == PGC_FE_QUERY && pos == (size_t) len + 1))
			return pos;
		if (!extended_unit_type(type))
			return 0;
	}
}

/*
 * Follower f's in-flight entries are no longer its own: the linked
 * client's (f is linked now), or, dropped, nobody's: their answers are
 * read and dropped, as those of pgcarrier's own messages.
 */
static void
release_entries_of(pgc_server *s, const pgc_client *f, bool drop)
{
	pgc_pending *p;

	for (uint32_t i = 0; (p = pgc_relay_entry(s, i)) != NULL; i++)
	{
		if (p->follower != f)
			continue;
		p->follower = NULL;
		if (!drop)
			continue;
		p->owner = PGC_OWNER_POOLER;
		p->on_answer = PGC_ANSWER_DROP;
		p->made_up = PGC_MADE_UP_NONE;
		p->dropped = true;
		s->pipe_broken = true;
	}
}

/* Its unit will not be sent again. */
static void
forget_copy(pgc_client *c)
{
	free(c->pipe_copy);
	c->pipe_copy = NULL;
	c->pipe_copy_len = 0;
}

/*
 * Put c's copy of its unit back at the front of its input, to be sent
 * again. False when out of memory: c cannot go on.
 */
static bool
restore_unit(pgc_client *c)
{
	pgc_iobuf *b = c->in;
	size_t n = c->pipe_copy_len, have;

	if (c->pipe_copy == NULL)
		return true;
	if (b == NULL && (b = c->in = pgc_worker_get_buf(c->worker)) == NULL)
		return false;
	have = b->end - b->start;
	if (b->start >= n)
		b->start -= n;
	else
	{
		if (have + n > b->cap)
		{
			pgc_iobuf *nb = pgc_iobuf_grow(b, have + n);

			if (nb == NULL)
				return false;
			b = c->in = nb;
			have = b->end - b->start;
		}
		memmove(b->data + n, b->data + b->start, have);
		b->start = 0;
		b->end = have + n;
	}
	memcpy(b->data + b->start, c->pipe_copy, n);
	b->scan = b->start;
	forget_copy(c);
	return true;
}

static bool has_room(const pgc_server *s, int depth, double max_wait, double now);

/* The busy server of c's worker with the fewest followers that may take c's unit; NULL if none. */
static pgc_server *
pick_server(const pgc_client *c, int depth, double max_wait)
{
	pgc_worker *w = c->worker;
	pgc_server *best = NULL;

	for (pgc_link *n = w->servers.next; n != &w->servers; n = n->next)
	{
		pgc_server *s = pgc_container_of(n, pgc_server, node);

		if (s->pool != c->pool || !has_room(s, depth, max_wait, w->now))
			continue;
		if (best == NULL || s->pipe_len < best->pipe_len)
			best = s;
		if (best->pipe_len == 0)
			break;
	}
	return best;
}

/* s has followers' bytes to write: once, at the end of this round, for all of them together. */
static void
want_flush(pgc_worker *w, pgc_server *s)
{
	if (s->pipe_dirty)
		return;
	if (w->n_pipe_flush == w->cap_pipe_flush)
	{
		int cap = w->cap_pipe_flush ? w->cap_pipe_flush * 2 : 16;
		pgc_server **f = realloc(w->pipe_flush, sizeof(*f) * (size_t) cap);

		if (f == NULL)
		{
			/* Written now, then. */
			if (s->client)
				pgc_relay_pump(s->client);
			return;
		}
		w->pipe_flush = f;
		w->cap_pipe_flush = cap;
	}
	w->pipe_flush[w->n_pipe_flush++] = s;
	s->pipe_dirty = true;
}

/* c's unit may run behind s's: it reads only, and c's settings are those of s's session. */
static bool
eligible(pgc_client *c, pgc_server *s, size_t n)
{
	return pgc_guard_pipelinable(c, c->in->data + c->in->start, n) && pgc_server_params_match(s, c);
}

/* May s take one more follower now? */
static bool
has_room(const pgc_server *s, int depth, double max_wait, double now)
{
	return s->state == SV_LINKED && s->client && s->pipe_ok && (int) s->pipe_len + 1 < depth &&
		now - s->pipe_since <= max_wait && !s->dirty_close && !s->confused && !atomic_load(&s->pipe_cancel);
}

/* Take c off the list of s's followers. */
static void
unlink_follower(pgc_server *s, pgc_client *c)
{
	pgc_client *prev = NULL;

	for (pgc_client *f = s->pipe_first; f; prev = f, f = f->pipe_next)
	{
		if (f != c)
			continue;
		if (prev)
			prev->pipe_next = c->pipe_next;
		else
			s->pipe_first = c->pipe_next;
		if (s->pipe_last == c)
			s->pipe_last = prev;
		c->pipe_next = NULL;
		s->pipe_len--;
		return;
	}
}

/*
 * Send c's unit (the first n bytes of its input) to s as a follower;
 * c->pipe_server is s already. False if it was not sent (c goes on as if
 * nothing happened), or c was closed (*closed).
 */
static bool
enqueue(pgc_client *c, pgc_server *s, size_t n, bool *closed)
{
	pgc_worker *w = c->worker;
	int rc;

	*closed = false;
	if ((c->pipe_copy = malloc(n)) == NULL)
	{
		pthread_mutex_lock(&s->pool->lock);
		c->pipe_server = NULL;
		pthread_mutex_unlock(&s->pool->lock);
		return false;
	}
	memcpy(c->pipe_copy, c->in->data + c->in->start, n);
	c->pipe_copy_len = (uint32_t) n;
	c->pipe_next = NULL;
	if (s->pipe_last)
		s->pipe_last->pipe_next = c;
	else
		s->pipe_first = c;
	s->pipe_last = c;
	s->pipe_len++;
	c->state = CL_PIPELINED;
	c->state_since = w->now;
	rc = pgc_relay_send_unit(c, s, n);
	if (rc < 0)
	{
		*closed = true;         /* pgc_pipeline_leave dropped what it had sent */
		return false;
	}
	if (rc == 0)
	{
		/* Part of it may be on its way: the server's stream cannot be trusted now. */
		s->dirty_close = true;
		pgc_pipeline_break(s, "a unit could not be sent whole");
		return false;
	}
	if (w->stats)
		pgc_stats_worker_add(w, &w->stats->pipelined);
	want_flush(w, s);
	pgc_client_update_events(c);
	return true;
}

bool
pgc_pipeline_offer(pgc_client *c)
{
	const pgc_config *cfg = pgc_engine_config();
	pgc_pool *p = c->pool;
	pgc_worker *w = c->worker;
	pgc_server *s;
	size_t n;
	bool ok, closed;

	if (depth_setting() < 2 || p == NULL || c->console || c->welcome_pending ||
		pgc_pool_mode_of(p) != PGC_POOL_TRANSACTION || !pgc_guard_wanted(p))
		return false;
	if ((n = unit_length(c)) == 0)
		return false;
	if ((s = pick_server(c, cfg->server_pipeline_depth, cfg->server_pipeline_max_wait)) == NULL)
		return false;
	if (!eligible(c, s, n))
		return false;
	/* Idle servers first, and never ahead of clients that wait for one (refill serves those). */
	pthread_mutex_lock(&p->lock);
	ok = pgc_pool_all_busy_unlocked(p, w->engine);
	if (ok)
		c->pipe_server = s;     /* under the lock: cancel requests look here */
	pthread_mutex_unlock(&p->lock);
	if (!ok)
		return false;
	c->wait_since = w->now;
	if (enqueue(c, s, n, &closed))
		return true;
	/* Not sent, or sent in part and to run again: either way through the ordinary path (or gone). */
	return closed || c->pipe_redo;
}

/*
 * s has room for followers: take them from its pool's queue, oldest
 * first, while the oldest is a client of s's worker whose unit may be
 * pipelined. One that may not stops it: s then comes back to the pool at
 * its next boundary and goes to that client, so no client waits for ever
 * behind pipelined ones.
 */
static void
refill(pgc_server *s)
{
	const pgc_config *cfg = pgc_engine_config();
	pgc_pool *p = s->pool;
	pgc_worker *w = s->worker;

	while (has_room(s, cfg->server_pipeline_depth, cfg->server_pipeline_max_wait, w->now))
	{
		pgc_client *c;
		size_t n = 0;
		bool closed;

		pthread_mutex_lock(&p->lock);
		c = pgc_pool_oldest_waiter_unlocked(p);
		/* A waiter of ours: only we touch its input (core.h); the lock keeps it from being served meanwhile. */
		if (c == NULL || c->worker != w || c->server || (n = unit_length(c)) == 0 || !eligible(c, s, n))
		{
			pthread_mutex_unlock(&p->lock);
			return;
		}
		pgc_pool_unqueue_unlocked(p, c);
		c->pipe_server = s;
		pthread_mutex_unlock(&p->lock);
		if (!enqueue(c, s, n, &closed))
		{
			if (!closed && !c->pipe_redo)
				pgc_client_begin_request(c);    /* back in the queue, at its end */
			return;
		}
	}
}

void
pgc_pipeline_note_unit(pgc_client *c, pgc_server *s, bool pipelinable, uint32_t unit_entries)
{
	if (s->client != c)
		return;                 /* a follower's unit being sent (pgc_relay_send_unit) */
	/* A cancel request that came before this unit was sent is not about it. */
	atomic_store(&s->pipe_cancel, false);
	/* Nothing but this unit in flight: entries are answered in order, so none of an earlier one is left. */
	s->pipe_ok = pipelinable && depth_setting() >= 2 && pgc_relay_in_flight(s) <= unit_entries &&
		s->pipe_len == 0 && s->txn_status == PGC_TXN_IDLE && !s->unsynced && c->in && c->in->scan == c->in->end;
	s->pipe_since = c->worker->now;
	if (s->pipe_ok)
		refill(s);
}

/* Take the first follower off s's list. */
static pgc_client *
pop_follower(pgc_server *s)
{
	pgc_client *f = s->pipe_first;

	unlink_follower(s, f);
	return f;
}

/* c's unit is to be sent again: through the ordinary path, at the end of this round. */
static void
redo_later(pgc_client *c)
{
	pgc_worker *w = c->worker;

	c->state = CL_IDLE;
	c->state_since = w->now;
	c->pipe_next = w->pipe_redo;
	w->pipe_redo = c;
	c->pipe_redo = true;
	if (w->stats)
		pgc_stats_worker_add(w, &w->stats->pipeline_reruns);
}

/*
 * A follower whose cancel request came before its unit ran, and whose
 * unit will not run as pipelined: it gets what a cancelled query gives
 * (an error, then ReadyForQuery), and its unit is not sent again.
 */
static void
answer_cancelled(pgc_client *c)
{
	pgc_msgbuf *out = pgc_msgbuf_ensure(&c->out);

	if (out == NULL)
		return;                 /* it runs again instead, as if the cancel came too late */
	pgc_msgbuf_error(out, PGC_BE_ERROR, "ERROR", "57014", "canceling statement due to user request", NULL, NULL);
	pgc_msgbuf_ready(out, PGC_TXN_IDLE);
	pgc_stats_error(c, "57014");
	c->st_query_start = c->st_xact_start = 0;
	forget_copy(c);
}

void
pgc_pipeline_break(pgc_server *s, const char *why)
{
	pgc_pool *p = s->pool;
	pgc_client *f;

	s->pipe_ok = false;
	if (s->pipe_len == 0)
		return;
	pgc_log(PGC_DEBUG, "server %s/%s: %u pipelined unit%s will run again: %s", p->dbname, p->user,
			s->pipe_len, s->pipe_len == 1 ? "" : "s", why);
	pthread_mutex_lock(&p->lock);
	for (f = s->pipe_first; f; f = f->pipe_next)
		f->pipe_server = NULL;
	pthread_mutex_unlock(&p->lock);
	while (s->pipe_len)
	{
		f = pop_follower(s);
		release_entries_of(s, f, true);
		if (atomic_exchange(&f->pipe_cancel, false))
			answer_cancelled(f);
		else if (!restore_unit(f))
			f->kill_requested = true;       /* no memory to send it again: its worker ends it at the next tick */
		redo_later(f);
	}
}

void
pgc_pipeline_leave(pgc_client *c)
{
	pgc_server *s = c->pipe_server;

	forget_copy(c);
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->pool->lock);
	c->pipe_server = NULL;
	pthread_mutex_unlock(&s->pool->lock);
	release_entries_of(s, c, true);
	unlink_follower(s, c);
}

void
pgc_pipeline_server_gone(pgc_server *s)
{
	pgc_worker *w = s->worker;

	pgc_pipeline_break(s, "the server connection ended");
	s->pipe_broken = false;     /* whoever gets it next is synced at its link */
	if (s->pipe_dirty && w)
	{
		for (int i = 0; i < w->n_pipe_flush; i++)
			if (w->pipe_flush[i] == s)
				w->pipe_flush[i] = NULL;
		s->pipe_dirty = false;
	}
}

bool
pgc_pipeline_cancel_requested(pgc_client *c)
{
	if (c->server)
	{
		/*
		 * No handoff and no new follower now: the signal could reach a
		 * follower's unit. Forwarded as usual. The flag is read back by
		 * s's worker (pgc_pipeline_boundary, under this lock in hand_over).
		 */
		atomic_store(&c->server->pipe_cancel, true);
		return false;
	}
	if (c->pipe_server)
	{
		atomic_store(&c->pipe_cancel, true);
		return true;
	}
	return false;
}

void
pgc_pipeline_forget_client(pgc_client *c)
{
	pgc_worker *w = c->worker;

	if (!c->pipe_redo)
		return;
	for (pgc_client **pp = &w->pipe_redo; *pp; pp = &(*pp)->pipe_next)
	{
		if (*pp == c)
		{
			*pp = c->pipe_next;
			break;
		}
	}
	c->pipe_next = NULL;
	c->pipe_redo = false;
}

/*
 * Hand s from its linked client c to its first follower, whose unit
 * already runs there. False (nothing changed) if a cancel request for c
 * came meanwhile.
 */
static bool
hand_over(pgc_client *c, pgc_server *s)
{
	pgc_worker *w = c->worker;
	pgc_pool *p = s->pool;
	pgc_client *f = s->pipe_first;
	bool cancel;

	pthread_mutex_lock(&p->lock);
	/* Under the lock that cancel requests take to find c's server (cancel.c). */
	if (atomic_load(&s->pipe_cancel))
	{
		pthread_mutex_unlock(&p->lock);
		return false;
	}
	(void) pop_follower(s);
	c->server = NULL;
	s->client = f;
	f->server = s;
	f->pipe_server = NULL;
	pthread_mutex_unlock(&p->lock);
	c->state = CL_IDLE;
	c->state_since = w->now;
	pgc_stats_link(f, s);       /* before f's state changes: it tells how long f waited */
	f->state = CL_LINKED;
	f->state_since = w->now;
	s->state_since = w->now;
	s->last_type = 0;
	s->report_pending = true;
	pgc_guard_attach(f, s);
	release_entries_of(s, f, false);
	forget_copy(f);
	/* Its unit was sent as one that others may queue behind. */
	s->pipe_ok = true;
	s->pipe_since = w->now;
	cancel = atomic_exchange(&f->pipe_cancel, false);
	if (cancel)
	{
		pgc_pipeline_break(s, "a cancel request");
		pgc_cancel_backend(w, s);
	}
	/* c may have sent more meanwhile: that waits for a server as usual. */
	if (c->in && c->in->start < c->in->end)
	{
		c->pipe_next = w->pipe_redo;
		w->pipe_redo = c;
		c->pipe_redo = true;
	}
	else
		pgc_client_trim(c);
	refill(s);
	pgc_relay_pump(f);
	return true;
}

int
pgc_pipeline_boundary(pgc_client *c, pgc_server *s)
{
	pgc_guard_hold h = PGC_HOLD_RELEASE;

	if (atomic_exchange(&s->pipe_cancel, false))
	{
		pgc_pipeline_break(s, "a cancel request");
		return 1;
	}
	if (atomic_load(&c->worker->engine->shutting_down))
	{
		pgc_pipeline_break(s, "shutting down");
		return 1;
	}
	if (c->guard.on)
		h = pgc_guard_keep_server(c, s);
	if (h == PGC_HOLD_CLOSED)
		return -1;
	if (h != PGC_HOLD_RELEASE)
	{
		/* A probe runs after the followers' units (their answers are dropped), or c keeps s. */
		pgc_pipeline_break(s, h == PGC_HOLD_PROBING ? "the session is probed" : "the client keeps its server");
		return 1;
	}
	if (!hand_over(c, s))
	{
		atomic_store(&s->pipe_cancel, false);
		pgc_pipeline_break(s, "a cancel request");
		return 1;
	}
	return 0;
}

void
pgc_pipeline_round(pgc_worker *w)
{
	while (w->n_pipe_flush > 0 || w->pipe_redo)
	{
		int n = w->n_pipe_flush;

		for (int i = 0; i < n; i++)
		{
			pgc_server *s = w->pipe_flush[i];

			if (s == NULL)
				continue;
			w->pipe_flush[i] = NULL;
			s->pipe_dirty = false;
			if (s->client && s->state == SV_LINKED)
				pgc_relay_pump(s->client);
		}
		/* Pumps may have queued more (a handoff's follower offering its next unit, say). */
		memmove(w->pipe_flush, w->pipe_flush + n, sizeof(*w->pipe_flush) * (size_t) (w->n_pipe_flush - n));
		w->n_pipe_flush -= n;
		while (w->pipe_redo)
		{
			pgc_client *c = w->pipe_redo;

			w->pipe_redo = c->pipe_next;
			c->pipe_next = NULL;
			c->pipe_redo = false;
			if (pgc_client_flush_out(c) < 0)
				pgc_client_close(c, "client went away");
			else if (c->state == CL_IDLE && c->in && c->in->start < c->in->end)
				pgc_client_begin_request(c);
			else if (c->state == CL_IDLE)
			{
				pgc_client_trim(c);
				pgc_client_update_events(c);
			}
		}
	}
}
