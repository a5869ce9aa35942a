/*
 * relay.c - forwarding between a linked client and server; see relay.h.
 *
 * The hot path of a linked pair: read, frame headers, note what the server
 * will answer, write. Bodies are only looked at for the few messages that
 * change what pgcarrier must do (ReadyForQuery, ParameterStatus,
 * NotificationResponse, and what the guard asks to see).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "control.h"
#include "guard.h"
#include "log.h"
#include "pipeline.h"
#include "pshare.h"
#include "relay.h"
#include "stats.h"
#include "state.h"
#include "tls.h"

/*
 * PostgreSQL's PQ_SMALL_MESSAGE_LIMIT: the longest Describe, Close,
 * Execute, Flush, Sync, Terminate, CopyDone or CopyFail it accepts.
 */
#define SMALL_MESSAGE_LIMIT 10000
/* pgcarrier's own bytes wait while this much is already queued for a slow peer. */
#define MAX_QUEUED (4 * PGC_IOBUF_SIZE)
/* Server messages read whole (ParameterStatus, NotificationResponse heads, tags, the probe's rows). */
#define SERVER_WHOLE_LIMIT (1024 * 1024)

/* What handling a message came to (internal). */
typedef enum step {
	STEP_NEXT,                    /* go on with the next message */
	STEP_WAIT,                    /* more bytes, or room to write, first */
	STEP_SERVER_BAD,              /* the server broke the protocol or died: close it */
	STEP_GONE                     /* the client was closed: touch nothing */
} step;

static void ready_release_held(pgc_client *c, pgc_server *s);

/* ------------------------------------------------------------ streams -- */

static pgc_iobuf **
source_of(pgc_client *c, pgc_server *s, pgc_dir dir)
{
	return dir == PGC_DIR_TO_SERVER ? &c->in : &s->in;
}

static pgc_stream *
stream_of(pgc_client *c, pgc_server *s, pgc_dir dir)
{
	return dir == PGC_DIR_TO_SERVER ? &c->fe : &s->be;
}

/* pgcarrier's bytes for the peer of dir: written before the passed source bytes. */
static pgc_msgbuf **
out_of(pgc_client *c, pgc_server *s, pgc_dir dir)
{
	return dir == PGC_DIR_TO_SERVER ? &s->out : &c->out;
}

static void
cursor_at(const pgc_iobuf *b, pgc_cursor *cur)
{
	size_t avail = b->end - b->scan;
	size_t body;

	cur->type = b->data[b->scan];
	cur->len = pgc_get_u32(b->data + b->scan + 1);
	body = (size_t) cur->len - PGC_MSG_LENGTH_SIZE;
	cur->total = (size_t) cur->len + 1;
	cur->body = b->data + b->scan + PGC_MSG_HEADER_SIZE;
	cur->have = avail - PGC_MSG_HEADER_SIZE < body ? avail - PGC_MSG_HEADER_SIZE : body;
	cur->whole = avail >= cur->total;
}

/*
 * Move the passed but unwritten bytes of b into *slot, so that what is
 * appended to it next follows them in the stream. False when out of memory.
 */
static bool
move_passed_out(pgc_iobuf *b, pgc_msgbuf **slot)
{
	pgc_msgbuf *out = pgc_msgbuf_ensure(slot);

	if (out == NULL)
		return false;
	if (b->scan > b->start)
	{
		pgc_msgbuf_bytes(out, b->data + b->start, b->scan - b->start);
		b->start = b->scan;
	}
	return !out->failed;
}

void
pgc_relay_pass(pgc_client *c, pgc_server *s, pgc_dir dir, const pgc_cursor *cur)
{
	pgc_iobuf_pass(*source_of(c, s, dir), cur->total, &stream_of(c, s, dir)->skip);
}

void
pgc_relay_drop(pgc_client *c, pgc_server *s, pgc_dir dir, const pgc_cursor *cur)
{
	pgc_iobuf *b = *source_of(c, s, dir);
	size_t avail = b->end - b->scan;
	size_t n = avail < cur->total ? avail : cur->total;

	if (b->start != b->scan && !move_passed_out(b, out_of(c, s, dir)))
	{
		/* No memory to move what was passed: close the gap instead. */
		memmove(b->data + b->scan, b->data + b->scan + n, b->end - b->scan - n);
		b->end -= n;
	}
	else
		b->start = b->scan = b->scan + n;
	stream_of(c, s, dir)->discard = (uint32_t) (cur->total - n);
}

pgc_msgbuf *
pgc_relay_inject(pgc_client *c, pgc_server *s, pgc_dir dir)
{
	pgc_iobuf *b = *source_of(c, s, dir);
	pgc_msgbuf **slot = out_of(c, s, dir);

	if (b && !move_passed_out(b, slot))
		return NULL;
	return pgc_msgbuf_ensure(slot);
}

int
pgc_relay_whole(pgc_client *c, pgc_server *s, pgc_dir dir, pgc_cursor *cur, size_t limit)
{
	pgc_iobuf **bp = source_of(c, s, dir);
	pgc_iobuf *nb;

	if (cur->whole)
		return 1;
	if (cur->total > limit)
		return -1;
	if ((*bp)->scan + cur->total > (*bp)->cap)
	{
		/* Room is needed: what was passed goes ahead, so that only the message is copied. */
		(void) move_passed_out(*bp, out_of(c, s, dir));
		nb = pgc_iobuf_grow(*bp, cur->total);
		if (nb == NULL)
			return -1;
		*bp = nb;
	}
	cursor_at(*bp, cur);
	return cur->whole ? 1 : 0;
}

int
pgc_relay_prefix(pgc_client *c, pgc_server *s, pgc_dir dir, pgc_cursor *cur, size_t n)
{
	pgc_iobuf **bp = source_of(c, s, dir);
	size_t want = PGC_MSG_HEADER_SIZE + n;
	pgc_iobuf *nb;

	if (cur->whole || cur->have >= n)
		return 1;
	if ((*bp)->scan + want > (*bp)->cap)
	{
		(void) move_passed_out(*bp, out_of(c, s, dir));
		nb = pgc_iobuf_grow(*bp, want < cur->total ? want : cur->total);
		if (nb == NULL)
			return -1;
		*bp = nb;
	}
	cursor_at(*bp, cur);
	return (cur->whole || cur->have >= n) ? 1 : 0;
}

void
pgc_relay_pass_tail(pgc_client *c, pgc_server *s, pgc_dir dir, const pgc_cursor *cur, size_t n)
{
	pgc_iobuf *b = *source_of(c, s, dir);

	/* pgc_relay_inject moved everything passed before into the out buffer: start == scan. */
	b->start = b->scan = b->scan + n;
	pgc_iobuf_pass(b, cur->total - n, &stream_of(c, s, dir)->skip);
}

/* Drop or pass on what is still to come of the current message; true when it is done. */
static bool
finish_current(pgc_client *c, pgc_server *s, pgc_dir dir)
{
	pgc_iobuf *b = *source_of(c, s, dir);
	pgc_stream *st = stream_of(c, s, dir);

	if (st->discard)
	{
		size_t avail = b->end - b->scan;
		size_t n = avail < st->discard ? avail : st->discard;

		if (b->start != b->scan && !move_passed_out(b, out_of(c, s, dir)))
		{
			memmove(b->data + b->scan, b->data + b->scan + n, b->end - b->scan - n);
			b->end -= n;
		}
		else
			b->start = b->scan = b->scan + n;
		st->discard -= (uint32_t) n;
		return st->discard == 0;
	}
	return pgc_iobuf_pass_rest(b, &st->skip);
}

static bool
queue_full(const pgc_msgbuf *m)
{
	return m && m->len >= MAX_QUEUED;
}

/* ----------------------------------------------------------- in flight -- */

static pgc_pending *
q_at(pgc_inflight *f, uint32_t i)
{
	return &f->q[(f->head + i) & (f->cap - 1)];
}

static pgc_pending *
q_push(pgc_server *s, uint8_t kind, uint8_t owner)
{
	pgc_inflight *f = &s->inflight;
	pgc_pending *p;

	if (f->len == f->cap)
	{
		uint32_t ncap = f->cap ? f->cap * 2 : 16;
		pgc_pending *nq = malloc(ncap * sizeof(*nq));

		if (nq == NULL)
			return NULL;
		for (uint32_t i = 0; i < f->len; i++)
			nq[i] = *q_at(f, i);
		free(f->q);
		f->q = nq;
		f->cap = ncap;
		f->head = 0;
	}
	p = q_at(f, f->len++);
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->owner = owner;
	p->follower = s->pipe_scanning;
	s->pushes++;
	return p;
}

pgc_pending *
pgc_relay_expect(pgc_server *s, uint8_t kind, uint8_t owner)
{
	pgc_pending *p = q_push(s, kind, owner);

	if (p == NULL)
		return NULL;
	if (kind == PGC_FE_PARSE)
		pgc_stats_server_parse(s);
	switch (kind)
	{
		case PGC_FE_QUERY:
			s->unnamed_owner = 0;   /* a simple Query drops the unnamed statement */
			break;
		case PGC_FE_SYNC:
			s->unsynced = false;
			break;
		case PGC_FE_FUNCTION_CALL:
			break;
		default:
			s->unsynced = true;
			break;
	}
	return p;
}

pgc_pending *
pgc_relay_made_up(pgc_server *s, uint8_t kind, uint8_t made_up)
{
	pgc_pending *p = q_push(s, kind, PGC_OWNER_CLIENT);

	if (p)
		p->made_up = made_up;
	return p;
}

pgc_pending *
pgc_relay_entry(pgc_server *s, uint32_t i)
{
	return i < s->inflight.len ? q_at(&s->inflight, i) : NULL;
}

static pgc_pending *
head_of(pgc_server *s)
{
	return s->inflight.len ? q_at(&s->inflight, 0) : NULL;
}

static bool
is_copy_end(uint8_t kind)
{
	return kind == PGC_FE_COPY_DONE || kind == PGC_FE_COPY_FAIL;
}

/*
 * Take the oldest entry off. failed: the server did not do it (an error,
 * or skipped after one); the guard undoes what it noted in advance.
 */
static void
q_pop(pgc_client *c, pgc_server *s, bool failed)
{
	pgc_inflight *f = &s->inflight;
	pgc_pending *p = q_at(f, 0);

	if (c && c->guard.on)
		pgc_guard_entry_done(c, s, p, failed);
	if (p->st)
		pgc_stmt_unref(&s->pool->stmts, p->st);
	free(p->text);
	f->head = (f->head + 1) & (f->cap - 1);
	f->len--;
	/* A CopyDone or CopyFail gets no answer of its own: gone once everything before it is. */
	while (f->len && is_copy_end(q_at(f, 0)->kind))
	{
		f->head = (f->head + 1) & (f->cap - 1);
		f->len--;
	}
}

void
pgc_relay_forget(pgc_client *c, pgc_server *s)
{
	while (s->inflight.len)
		q_pop(c, s, true);
}

int
pgc_relay_drain(pgc_server *s)
{
	int ready = 0;

	if (s->unsynced || s->be_state != PGC_BE_READY || s->be.skip || s->be.discard)
		return -1;
	for (uint32_t i = 0; i < s->inflight.len; i++)
	{
		pgc_pending *p = q_at(&s->inflight, i);

		if (p->owner != PGC_OWNER_POOLER || p->kind != PGC_FE_QUERY)
			return -1;
	}
	ready = (int) s->inflight.len;
	pgc_relay_forget(NULL, s);
	/* Bytes passed for the client that left are not for anyone now. */
	if (s->in)
		s->in->start = s->in->scan;
	return ready;
}

void
pgc_relay_server_free(pgc_server *s)
{
	pgc_relay_forget(NULL, s);
	free(s->inflight.q);
	s->inflight.q = NULL;
	s->inflight.cap = 0;
}

static bool
kind_is_extended(uint8_t k)
{
	return k == PGC_FE_PARSE || k == PGC_FE_BIND || k == PGC_FE_DESCRIBE || k == PGC_FE_EXECUTE ||
		k == PGC_FE_CLOSE;
}

/* PostgreSQL answers this entry with a ReadyForQuery. */
static bool
gets_ready(const pgc_pending *p)
{
	if (p->made_up)
		return false;
	return p->kind == PGC_FE_QUERY || p->kind == PGC_FE_FUNCTION_CALL ||
		(p->kind == PGC_FE_SYNC && !p->sync_ignored);
}

/* ------------------------------------------------ reported parameters -- */

void
pgc_relay_told(pgc_client *c, const pgc_params *told)
{
	pgc_shared_params_replace(c->worker, &c->reported, told);
}

/*
 * Before a ReadyForQuery reaches the client: the reported parameters whose
 * value on the server is not what the client was last told, as
 * ParameterStatus messages. A change is the client's setting from then on
 * (it is replayed on its next server) unless the parameter cannot be set.
 */
static bool
tell_changes(pgc_client *c, pgc_server *s)
{
	pgc_params changed = {0};
	pgc_params reported;
	size_t pos = 0;
	const char *k, *v;
	pgc_msgbuf *out;
	unsigned gen = __atomic_load_n(&s->pool->server_wide_gen, __ATOMIC_ACQUIRE);

	/* Nothing reported in this transaction, and nothing server-wide changed since the client was told. */
	if (!s->report_pending && gen == c->server_wide_gen)
		return true;
	c->server_wide_gen = gen;
	/*
	 * At every link: a client told what the last one on s was told, with
	 * s's parameters unchanged since, has nothing new to hear (two memcmp
	 * calls, not a lookup of every parameter).
	 */
	reported = pgc_shared_params_view(c->reported);
	if (pgc_params_memo_holds(&s->told, &reported, &s->params, gen))
	{
		s->report_pending = false;
		return true;
	}
	while (pgc_params_next(&s->params, &pos, &k, &v))
	{
		const char *told;

		if (!pgc_param_is_reported(k))
			continue;
		told = pgc_shared_params_get(c->reported, k);
		if (told == NULL || strcmp(told, v) != 0)
			pgc_params_set(&changed, k, v);
	}
	s->report_pending = false;
	if (changed.len == 0)
	{
		pgc_params_memo_keep(&s->told, &reported, &s->params, gen);
		return true;
	}
	out = pgc_relay_inject(c, s, PGC_DIR_TO_CLIENT);
	if (out)
	{
		pgc_params view = pgc_shared_params_view(c->reported);
		pgc_params told = {0};

		pgc_params_copy(&told, &view);
		pos = 0;
		while (pgc_params_next(&changed, &pos, &k, &v))
		{
			pgc_msgbuf_param(out, k, v);
			pgc_params_set(&told, k, v);
			if (!pgc_param_is_read_only(k))
				pgc_client_param_set(c, k, v);
		}
		pgc_relay_told(c, &told);
		pgc_params_free(&told);
	}
	pgc_params_free(&changed);
	return out != NULL && !out->failed;
}

/*
 * ParameterStatus from the server: pgcarrier's view of it; the client hears
 * at ReadyForQuery. One answering a dropped unit (pipeline.h) is nobody's:
 * the server's session changed, no client's settings did (the linked
 * client's server is synced to them again before it sends more,
 * pgc_relay_pump; whoever gets the server next is synced at its link).
 */
static step
parameter_status(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	const char *name = (const char *) cur->body;
	size_t blen = (size_t) cur->len - PGC_MSG_LENGTH_SIZE;
	size_t nl;
	bool nobody;

	int w = pgc_relay_whole(c, s, PGC_DIR_TO_CLIENT, cur, SERVER_WHOLE_LIMIT);

	if (w <= 0)
		return w < 0 ? STEP_SERVER_BAD : STEP_WAIT;
	/* The session changed under the units queued behind: they run again. */
	if (pgc_pipeline_has_followers(s))
		pgc_pipeline_break(s, "the server reported a parameter change");
	nobody = head_of(s) && head_of(s)->dropped;
	name = (const char *) cur->body;
	nl = strnlen(name, blen);
	if (nl + 1 < blen && strnlen(name + nl + 1, blen - nl - 1) < blen - nl - 1)
	{
		if (strcmp(name, PGC_STATE_PARAM) == 0)
		{
			/* The backend's report of its own session state: pgcarrier's, never the client's. */
			uint32_t pins = pgc_state_report_pins(name + nl + 1);

			if (nobody)
				s->needs_discard |= pins != 0;  /* state nobody will ever see: only DISCARD ALL clears it */
			else
			{
				s->report_cycle |= pins;
				if (c->guard.on)
					pgc_guard_backend_report(c, s, name + nl + 1);
			}
		}
		else if (strcmp(name, PGC_REPORTING_PARAM) == 0)
			s->reports = strcmp(name + nl + 1, "on") == 0;
		else if (strcmp(name, PGC_DEFAULTS_PARAM) == 0)
			pgc_control_reconnect_all(c->worker->engine, "the role or database defaults changed "
									  "(ALTER ROLE/DATABASE ... SET)");
		else if (strcmp(name, PGC_RESET_PARAM) == 0)
		{
			/* The setting is back to its default (RESET, SET LOCAL or a function's SET clause undone). */
			const char *k = name + nl + 1;

			if (!pgc_param_is_reported(k))
			{
				pgc_params_remove(&s->params, k);
				if (s->reports && !nobody)
					pgc_client_param_set(c, k, NULL);
			}
		}
		else if (strncmp(name, "pgcarrier.", 10) != 0)
		{
			pgc_params_set(&s->params, name, name + nl + 1);
			s->report_pending |= !nobody;
			if (pgc_param_is_server_wide(name))
			{
				pthread_mutex_lock(&s->pool->lock);
				pgc_pool_server_wide_params(s->pool, &s->params);
				pthread_mutex_unlock(&s->pool->lock);
			}
			/*
			 * A reporting backend reports every setting whose value changed:
			 * it is the client's session setting, replayed on its next
			 * server. The usual reported ones are the client's when it is
			 * told (tell_changes); no other one is ever forwarded.
			 */
			if (s->reports && !pgc_param_is_reported(name) && !nobody)
				pgc_client_param_set(c, name, name + nl + 1);
		}
	}
	pgc_relay_drop(c, s, PGC_DIR_TO_CLIENT, cur);
	return STEP_NEXT;
}

/*
 * NotificationResponse: to the client, whoever's message is in flight. The
 * client knows its backend by the pid pgcarrier gave it, so a notification
 * its own server sent carries that pid, as it would directly.
 */
static step
notification(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	if (cur->have < 4)
		return STEP_WAIT;
	if (pgc_get_u32(cur->body) == s->backend_pid)
		pgc_put_u32((uint8_t *) cur->body, c->cancel_pid);
	s->last_type = cur->type;
	pgc_relay_pass(c, s, PGC_DIR_TO_CLIENT, cur);
	return STEP_NEXT;
}

/* -------------------------------------------------------- made up -- */

/* Write the answers pgcarrier makes up that are due now (at the head). False when blocked. */
static bool
emit_made_up(pgc_client *c, pgc_server *s)
{
	pgc_pending *p;

	while ((p = head_of(s)) != NULL && p->made_up)
	{
		pgc_msgbuf *out;

		if (s->be_state == PGC_BE_SKIPPING && kind_is_extended(p->kind))
		{
			/* The server skips to Sync after an error: PostgreSQL would not answer this either. */
			q_pop(c, s, true);
			continue;
		}
		if (queue_full(c->out))
		{
			c->blocked = true;
			return false;
		}
		if (p->made_up == PGC_MADE_UP_QUERY && !tell_changes(c, s))
			return false;
		if ((out = pgc_relay_inject(c, s, PGC_DIR_TO_CLIENT)) == NULL)
			return false;
		switch (p->made_up)
		{
			case PGC_MADE_UP_PARSE_COMPLETE:
				pgc_msgbuf_begin(out, PGC_BE_PARSE_COMPLETE);
				pgc_msgbuf_end(out);
				break;
			case PGC_MADE_UP_ERROR:
				pgc_msgbuf_error(out, PGC_BE_ERROR, "ERROR", p->sqlstate, p->text, NULL, NULL);
				pgc_stats_error(c, p->sqlstate);
				break;
			case PGC_MADE_UP_QUERY:
				if (p->sqlstate[0])
					pgc_msgbuf_error(out, PGC_BE_ERROR, "ERROR", p->sqlstate, p->text, NULL, NULL);
				else if (s->txn_status == PGC_TXN_FAILED)
					pgc_msgbuf_error(out, PGC_BE_ERROR, "ERROR", "25P02", "current transaction is aborted, "
									 "commands ignored until end of transaction block", NULL, NULL);
				else
				{
					pgc_msgbuf_begin(out, PGC_BE_COMMAND_COMPLETE);
					pgc_msgbuf_str(out, p->text);
					pgc_msgbuf_end(out);
				}
				pgc_msgbuf_ready(out, s->txn_status ? s->txn_status : PGC_TXN_IDLE);
				break;
		}
		q_pop(c, s, false);
	}
	return true;
}

/* ------------------------------------------------------ client side -- */

/* Longest message of this type PostgreSQL accepts; 0 if it is not one a client may send now. */
static uint32_t
fe_type_limit(const pgc_client *c, uint8_t type)
{
	uint32_t large = (uint32_t) pgc_engine_config()->max_packet_size;

	switch (type)
	{
		case PGC_FE_QUERY:
		case PGC_FE_PARSE:
		case PGC_FE_BIND:
		case PGC_FE_FUNCTION_CALL:
		case PGC_FE_COPY_DATA:
			return large;
		case PGC_FE_CLOSE:
		case PGC_FE_DESCRIBE:
		case PGC_FE_EXECUTE:
		case PGC_FE_FLUSH:
		case PGC_FE_SYNC:
		case PGC_FE_TERMINATE:
		case PGC_FE_COPY_DONE:
		case PGC_FE_COPY_FAIL:
			return SMALL_MESSAGE_LIMIT < large ? SMALL_MESSAGE_LIMIT : large;
		default:
			/* PasswordMessage after login among them: PostgreSQL's FATAL, for the sender only. */
			(void) c;
			return 0;
	}
}

bool
pgc_relay_header_ok(pgc_client *c, uint8_t type, uint32_t len)
{
	uint32_t limit = fe_type_limit(c, type);

	if (limit == 0)
	{
		pgc_client_fatal(c, "08P01", "invalid frontend message type %d", type);
		return false;
	}
	if (len < PGC_MSG_LENGTH_SIZE || len > limit)
	{
		pgc_client_fatal(c, "08P01", "invalid message length");
		return false;
	}
	return true;
}

/* Terminate: for pgcarrier; the server connection lives on. Nothing after it counts. */
static void
client_terminate(pgc_client *c)
{
	c->terminate_seen = true;
	c->in->end = c->in->scan;
}

pgc_pending *
pgc_relay_forward(pgc_client *c, pgc_server *s, const pgc_cursor *cur)
{
	pgc_pending *p = pgc_relay_expect(s, cur->type, PGC_OWNER_CLIENT);

	/* Nothing may queue behind this unless the guard says so (pgc_pipeline_note_unit); followers' units may. */
	if (s->client == c)
		s->pipe_ok = false;

	if (p == NULL)
	{
		pgc_client_fatal(c, "53200", "out of memory");
		return NULL;
	}
	if (cur->type == PGC_FE_PARSE && cur->have >= 1 && cur->body[0] == '\0')
		s->unnamed_owner = 0;   /* the server's unnamed statement is one nobody tracks now */
	pgc_relay_pass(c, s, PGC_DIR_TO_SERVER, cur);
	return p;
}

/* The default for a client message outside COPY: pass it on, noting the answer to come. */
static step
client_msg(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	switch (cur->type)
	{
		case PGC_FE_TERMINATE:
			client_terminate(c);
			return STEP_NEXT;
		case PGC_FE_COPY_DONE:
		case PGC_FE_COPY_FAIL:
			/*
			 * Before the server's CopyInResponse: a client may send its COPY
			 * data right behind the COPY statement (asyncpg does). The entry
			 * marks where the copy ends among the Syncs.
			 */
			if (q_push(s, cur->type, PGC_OWNER_CLIENT) == NULL)
			{
				pgc_client_fatal(c, "53200", "out of memory");
				return STEP_GONE;
			}
			pgc_relay_pass(c, s, PGC_DIR_TO_SERVER, cur);
			return STEP_NEXT;
		case PGC_FE_COPY_DATA:
			/* COPY data sent ahead, or after a failed COPY (the server ignores it then). */
		case PGC_FE_FLUSH:
			pgc_relay_pass(c, s, PGC_DIR_TO_SERVER, cur);
			return STEP_NEXT;
		default:
			return pgc_relay_forward(c, s, cur) ? STEP_NEXT : STEP_GONE;
	}
}

/* A client message while the server takes COPY data: PostgreSQL's CopyGetData rules. */
static step
copy_in_msg(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	pgc_pending *p;

	switch (cur->type)
	{
		case PGC_FE_COPY_DONE:
		case PGC_FE_COPY_FAIL:
			c->fe_state = PGC_FE_READY;
			if (q_push(s, cur->type, PGC_OWNER_CLIENT) == NULL)
			{
				pgc_client_fatal(c, "53200", "out of memory");
				return STEP_GONE;
			}
			break;
		case PGC_FE_COPY_DATA:
		case PGC_FE_FLUSH:
			break;
		case PGC_FE_SYNC:
			/* Ignored by the server during COPY FROM STDIN: it gets no ReadyForQuery. */
			if ((p = pgc_relay_forward(c, s, cur)) == NULL)
				return STEP_GONE;
			p->sync_ignored = true;
			return STEP_NEXT;
		case PGC_FE_TERMINATE:
			client_terminate(c);
			return STEP_NEXT;
		default:
			/*
			 * PostgreSQL ends the COPY with an error and swallows this
			 * message, so what follows can no longer be matched to what was
			 * sent: the client keeps this server until it leaves, and then
			 * the server is closed.
			 */
			s->confused = true;
			s->dirty_close = true;
			break;
	}
	pgc_relay_pass(c, s, PGC_DIR_TO_SERVER, cur);
	return STEP_NEXT;
}

/*
 * Frame what the client sent and pass it on, noting what the server will
 * answer. False if the client was closed.
 */
static bool
scan_client(pgc_client *c, pgc_server *s)
{
	for (;;)
	{
		pgc_iobuf *b = c->in;
		pgc_cursor cur;
		uint8_t type;
		uint32_t len;
		step r;

		if (b == NULL || !finish_current(c, s, PGC_DIR_TO_SERVER))
			return true;
		if (!pgc_msg_header(b->data + b->scan, b->end - b->scan, &type, &len))
			return true;
		if (!pgc_relay_header_ok(c, type, len))
			return false;
		if (c->guard.barrier)
			return true;        /* the guard looks at the session before more of the client runs */
		if (queue_full(s->out))
		{
			c->blocked = true;
			return true;
		}
		cursor_at(b, &cur);
		pgc_stats_client_msg(c, type);
		if (c->fe_state == PGC_FE_COPY_IN)
			r = copy_in_msg(c, s, &cur);
		else
		{
			r = STEP_NEXT;
			if (c->guard.on || type == PGC_FE_QUERY)
			{
				pgc_guard_result g = c->guard.on ? pgc_guard_client_msg(c, s, &cur)
					: pgc_guard_unguarded_query(c, s, &cur);

				if (g == PGC_GUARD_WAIT)
					return true;
				if (g == PGC_GUARD_CLOSED)
					return false;
				if (g == PGC_GUARD_DONE)
					continue;
			}
			r = client_msg(c, s, &cur);
		}
		if (r == STEP_GONE)
			return false;
	}
}

int
pgc_relay_send_unit(pgc_client *c, pgc_server *s, size_t n)
{
	size_t end = c->in->start + n;
	int rc = 1;

	/* What the linked client passed, but was not written yet, goes first. */
	if (s->client && pgc_relay_inject(s->client, s, PGC_DIR_TO_SERVER) == NULL)
		return 0;
	c->guard.on = pgc_guard_wanted(c->pool);
	s->pipe_scanning = c;
	while (c->in->scan < end)
	{
		pgc_cursor cur;
		pgc_guard_result g;

		/* Whole messages only (pipeline.c checked): nothing here waits for more bytes. */
		cursor_at(c->in, &cur);
		pgc_stats_client_msg(c, cur.type);
		g = pgc_guard_client_msg(c, s, &cur);
		if (g == PGC_GUARD_CLOSED)
		{
			rc = -1;
			break;
		}
		if (g == PGC_GUARD_WAIT)
		{
			rc = 0;
			break;
		}
		if (g == PGC_GUARD_PASS && client_msg(c, s, &cur) == STEP_GONE)
		{
			rc = -1;
			break;
		}
	}
	s->pipe_scanning = NULL;
	if (rc == 1 && !move_passed_out(c->in, &s->out))
		rc = 0;
	if (rc == 0)
		c->in->start = c->in->scan = end;   /* the unit goes again from its copy (pipeline.c) */
	return rc;
}

/* ------------------------------------------------------ server side -- */

/* An ErrorResponse answering entry p: the server's protocol state, and what it skips. */
static void
error_answer(pgc_client *c, pgc_server *s, pgc_pending *p)
{
	if (s->be_state == PGC_BE_COPY_IN || s->be_state == PGC_BE_COPY_OUT)
		s->be_state = PGC_BE_READY;
	if (!kind_is_extended(p->kind))
		return;
	/* The server skips the rest up to Sync; so does the queue, undoing what was noted. */
	s->be_state = PGC_BE_SKIPPING;
	while ((p = head_of(s)) != NULL && kind_is_extended(p->kind))
		q_pop(c, s, true);
}

/*
 * CopyInResponse to the head entry: the server takes the client's COPY data
 * now. The Syncs a client sent right after the Execute (as libpq does)
 * reached the server during COPY FROM STDIN, which ignores them: they get
 * no ReadyForQuery. The client may also have sent all its data and the
 * CopyDone already (asyncpg does not wait): then its stream is past the
 * COPY.
 */
static void
copy_in_started(pgc_client *c, pgc_server *s)
{
	uint32_t i = 1;

	s->be_state = PGC_BE_COPY_IN;
	while (i < s->inflight.len && q_at(&s->inflight, i)->kind == PGC_FE_SYNC)
		q_at(&s->inflight, i++)->sync_ignored = true;
	if (i == s->inflight.len || !is_copy_end(q_at(&s->inflight, i)->kind))
		c->fe_state = PGC_FE_COPY_IN;
}

/* What an answer (other than ReadyForQuery) to the head entry p changes, and whether p is done. */
static void
track_answer(pgc_client *c, pgc_server *s, pgc_pending *p, uint8_t type)
{
	bool done = false;

	switch (type)
	{
		case PGC_BE_PARSE_COMPLETE:
			done = p->kind == PGC_FE_PARSE;
			break;
		case PGC_BE_BIND_COMPLETE:
			done = p->kind == PGC_FE_BIND;
			break;
		case PGC_BE_CLOSE_COMPLETE:
			done = p->kind == PGC_FE_CLOSE;
			break;
		case PGC_BE_ROW_DESCRIPTION:
		case PGC_BE_NO_DATA:
			done = p->kind == PGC_FE_DESCRIBE;
			break;
		case PGC_BE_COMMAND_COMPLETE:
		case PGC_BE_EMPTY_QUERY:
		case PGC_BE_PORTAL_SUSPENDED:
			if (s->be_state == PGC_BE_COPY_IN || s->be_state == PGC_BE_COPY_OUT)
				s->be_state = PGC_BE_READY;
			done = p->kind == PGC_FE_EXECUTE;
			break;
		case PGC_BE_COPY_IN_RESPONSE:
			copy_in_started(c, s);
			break;
		case PGC_BE_COPY_OUT_RESPONSE:
			s->be_state = PGC_BE_COPY_OUT;
			break;
		case PGC_BE_COPY_DONE:
			s->be_state = PGC_BE_READY;
			break;
		case PGC_BE_ERROR:
			error_answer(c, s, p);
			return;
		default:
			break;
	}
	if (done)
		q_pop(c, s, false);
}

/*
 * ReadyForQuery: the answers to everything up to the first Query,
 * FunctionCall or (heeded) Sync in flight are complete. Extended-protocol
 * entries that got no answer were skipped after an error.
 */
static step
ready_for_query(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	pgc_pending *p;
	uint8_t owner = PGC_OWNER_CLIENT;
	bool holds = false, found = false;
	char status;

	int w = pgc_relay_whole(c, s, PGC_DIR_TO_CLIENT, cur, SMALL_MESSAGE_LIMIT);

	if (w <= 0)
		return w < 0 ? STEP_SERVER_BAD : STEP_WAIT;
	status = cur->len > PGC_MSG_LENGTH_SIZE ? (char) cur->body[0] : PGC_TXN_IDLE;
	while ((p = head_of(s)) != NULL)
	{
		bool last = gets_ready(p);

		owner = p->owner;
		holds = p->holds_ready;
		if (last && owner == PGC_OWNER_POOLER && p->on_answer != PGC_ANSWER_DROP && c->guard.on)
		{
			pgc_guard_result g = pgc_guard_pooler_msg(c, s, p, cur);

			if (g == PGC_GUARD_CLOSED)
				return STEP_GONE;
		}
		q_pop(c, s, !last && kind_is_extended(p->kind));
		if (last)
		{
			found = true;
			break;
		}
	}
	s->txn_status = status;
	s->be_state = PGC_BE_READY;
	if (status != PGC_TXN_IDLE && pgc_pipeline_has_followers(s))
		pgc_pipeline_break(s, "a unit left a transaction open");
	if (status == PGC_TXN_IDLE)
	{
		/* A reporting backend reports pinned state before every idle ReadyForQuery that has some. */
		s->report_pinned = s->report_cycle;
		s->report_cycle = 0;
	}
	if (!found)
	{
		pgc_log(PGC_WARNING, "client %s: ReadyForQuery from the server answers nothing in flight", pgc_client_addr(c));
		return STEP_SERVER_BAD;
	}
	if (owner == PGC_OWNER_POOLER)
	{
		pgc_relay_drop(c, s, PGC_DIR_TO_CLIENT, cur);
		if (c->welcome_pending && (head_of(s) == NULL || head_of(s)->owner == PGC_OWNER_CLIENT))
			pgc_client_finish_welcome(c);
		ready_release_held(c, s);
		return STEP_NEXT;
	}
	pgc_stats_ready(c, s, status);
	if (holds)
	{
		/* pgcarrier's follow-up runs first; the client hears when it is done. */
		c->held_ready = true;
		c->held_status = status;
		pgc_relay_drop(c, s, PGC_DIR_TO_CLIENT, cur);
		return STEP_NEXT;
	}
	if (pgc_pool_mode_of(c->pool) == PGC_POOL_STATEMENT && status != PGC_TXN_IDLE)
	{
		/* The client sees the refusal instead of this ReadyForQuery; see pgc_relay_pump(). */
		if (c->stmt_violation < UINT8_MAX)
			c->stmt_violation++;
		pgc_relay_drop(c, s, PGC_DIR_TO_CLIENT, cur);
		return STEP_NEXT;
	}
	if (c->guard.on)
		pgc_guard_ready(c, s, status);
	if (!tell_changes(c, s))
	{
		pgc_client_fatal(c, "53200", "out of memory");
		return STEP_GONE;
	}
	s->last_type = cur->type;
	pgc_relay_pass(c, s, PGC_DIR_TO_CLIENT, cur);
	return STEP_NEXT;
}

/* A held ReadyForQuery goes to the client once pgcarrier's follow-up is done. */
static void
ready_release_held(pgc_client *c, pgc_server *s)
{
	pgc_pending *p = head_of(s);
	pgc_msgbuf *out;

	if (!c->held_ready || (p && p->owner == PGC_OWNER_POOLER))
		return;
	c->held_ready = false;
	if (!tell_changes(c, s) || (out = pgc_relay_inject(c, s, PGC_DIR_TO_CLIENT)) == NULL)
		return;
	pgc_msgbuf_ready(out, c->held_status);
}

/*
 * The settings replayed for the client failed on this server (its role was
 * dropped, say). Running the client's statements with whatever the server
 * had instead would be wrong, so the client is told and disconnected; the
 * replay ran with exit_on_error, so the server ends too.
 */
static step
restore_failed(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	const char *msg = NULL, *code = NULL;
	char m[256], st[6] = "08006";

	int w = pgc_relay_whole(c, s, PGC_DIR_TO_CLIENT, cur, SERVER_WHOLE_LIMIT);

	if (w == 0)
		return STEP_WAIT;
	if (w > 0)
	{
		msg = pgc_error_field(cur->body, cur->len - PGC_MSG_LENGTH_SIZE, PGC_ERRF_MESSAGE);
		code = pgc_error_field(cur->body, cur->len - PGC_MSG_LENGTH_SIZE, PGC_ERRF_SQLSTATE);
	}
	snprintf(m, sizeof(m), "%s", msg ? msg : "unknown error");
	if (code && strlen(code) == 5)
		memcpy(st, code, 6);
	s->dirty_close = true;
	pgc_client_fatal(c, st, "pgcarrier could not restore this session's settings on a server connection: %s", m);
	return STEP_GONE;
}

/* One server message, with a header, at s->in->scan. */
static step
server_msg(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	pgc_pending *p = head_of(s);
	bool forward;

	if (cur->type == PGC_BE_ERROR && !pgc_stats_server_error(c, s, cur))
		return STEP_WAIT;       /* its SQLSTATE is still to come */
	switch (cur->type)
	{
		case PGC_BE_NOTIFICATION:
			return notification(c, s, cur);
		case PGC_BE_PARAMETER_STATUS:
			return parameter_status(c, s, cur);
		case PGC_BE_NOTICE:
			/* Notices about pgcarrier's own statements are not the client's. */
			if (p && p->owner == PGC_OWNER_POOLER)
				pgc_relay_drop(c, s, PGC_DIR_TO_CLIENT, cur);
			else
			{
				s->last_type = cur->type;
				pgc_relay_pass(c, s, PGC_DIR_TO_CLIENT, cur);
			}
			return STEP_NEXT;
		case PGC_BE_READY_FOR_QUERY:
			return ready_for_query(c, s, cur);
		case PGC_BE_AUTHENTICATION:
		case PGC_BE_BACKEND_KEY_DATA:
		case PGC_BE_NEGOTIATE_VERSION:
		case PGC_BE_COPY_BOTH_RESPONSE:
			pgc_log(PGC_WARNING, "server %s/%s sent message type %d after login; closing it",
					s->pool->dbname, s->pool->user, cur->type);
			return STEP_SERVER_BAD;
		default:
			break;
	}
	if (p == NULL)
	{
		/* Nothing in flight: only an error (a FATAL, say, when the server shuts down) makes sense. */
		if (cur->type != PGC_BE_ERROR)
		{
			pgc_log(PGC_WARNING, "server %s/%s sent message type %d with nothing in flight; closing it",
					s->pool->dbname, s->pool->user, cur->type);
			return STEP_SERVER_BAD;
		}
		s->last_type = cur->type;
		pgc_relay_pass(c, s, PGC_DIR_TO_CLIENT, cur);
		return STEP_NEXT;
	}
	forward = p->owner == PGC_OWNER_CLIENT;
	if (!forward && p->on_answer == PGC_ANSWER_RESTORE && cur->type == PGC_BE_ERROR)
		return restore_failed(c, s, cur);
	/*
	 * pgcarrier's Parse or Close for the client's next message failed: the
	 * server skips that message, so the error is the client's.
	 */
	if (!forward && cur->type == PGC_BE_ERROR && kind_is_extended(p->kind))
		forward = true;
	if (c->guard.on || p->trailing)
	{
		/* An unguarded client's RESET may have had the startup values put back behind it, too. */
		pgc_guard_result g = forward && p->owner == PGC_OWNER_CLIENT
			? pgc_guard_server_msg(c, s, p, cur)
			: (!forward && p->on_answer != PGC_ANSWER_DROP ? pgc_guard_pooler_msg(c, s, p, cur) : PGC_GUARD_PASS);

		if (g == PGC_GUARD_WAIT)
			return STEP_WAIT;
		if (g == PGC_GUARD_FAIL)
			return STEP_SERVER_BAD;
		if (g == PGC_GUARD_CLOSED)
			return STEP_GONE;
		if (g == PGC_GUARD_DONE)
			return STEP_NEXT;
	}
	track_answer(c, s, p, cur->type);
	if (forward)
	{
		s->last_type = cur->type;
		pgc_relay_pass(c, s, PGC_DIR_TO_CLIENT, cur);
	}
	else
		pgc_relay_drop(c, s, PGC_DIR_TO_CLIENT, cur);
	return STEP_NEXT;
}

/* Frame what the server sent. */
static step
scan_server(pgc_client *c, pgc_server *s)
{
	for (;;)
	{
		pgc_iobuf *b = s->in;
		pgc_cursor cur;
		uint8_t type;
		uint32_t len;
		step r;

		if (b == NULL || !finish_current(c, s, PGC_DIR_TO_CLIENT))
			return STEP_NEXT;
		/* The answers from here on are a follower's: they wait until s is handed to it. */
		if (s->pipe_len && head_of(s) && head_of(s)->follower)
			return STEP_NEXT;
		if (!emit_made_up(c, s))
			return STEP_WAIT;
		if (!pgc_msg_header(b->data + b->scan, b->end - b->scan, &type, &len))
			return STEP_NEXT;
		if (len < PGC_MSG_LENGTH_SIZE)
			return STEP_SERVER_BAD;
		cursor_at(b, &cur);
		r = server_msg(c, s, &cur);
		if (r == STEP_WAIT)
			return STEP_NEXT;
		if (r != STEP_NEXT)
			return r;
	}
}

/* ------------------------------------------------------------ the pair -- */

/* The server linked to c died: tell the client unless the server already did. */
static void
server_died(pgc_client *c, pgc_server *s)
{
	bool told;

	if (s->in && s->in->start < s->in->scan)
		(void) pgc_iobuf_write(c->fd, c->tls, s->in);
	/* An ErrorResponse last (FATAL, on a server shutdown) already told the client why. */
	told = s->last_type == PGC_BE_ERROR;
	pgc_stats_server_lost(c, s, told ? "it sent an error and closed" : "the connection was closed unexpectedly");
	s->dirty_close = true;
	pgc_server_close(s, "server closed the connection unexpectedly");
	if (told)
		pgc_client_close(c, "server connection lost");
	else
		pgc_client_fatal(c, "08006", "server closed the connection unexpectedly");
}

/* Entries of dropped units in flight (pipeline.h). */
static bool
dropped_in_flight(pgc_server *s)
{
	for (uint32_t i = 0; i < s->inflight.len; i++)
		if (q_at(&s->inflight, i)->dropped)
			return true;
	return false;
}

/* In-flight entries of followers (pipeline.h). */
static uint32_t
followers_in_flight(pgc_server *s)
{
	uint32_t n = 0;

	if (s->pipe_len == 0)
		return 0;
	for (uint32_t i = 0; i < s->inflight.len; i++)
		if (q_at(&s->inflight, i)->follower)
			n++;
	return n;
}

/*
 * Nothing of c's is in flight either way, whatever the transaction status.
 * What follows in s's input is its followers' (pipeline.h), if it has any.
 */
static bool
relay_quiet(const pgc_client *c, pgc_server *s)
{
	size_t answered = s->in ? (s->pipe_len ? s->in->scan : s->in->end) : 0;

	return s->inflight.len == followers_in_flight(s) && !s->unsynced && c->fe_state == PGC_FE_READY && !c->held_ready &&
		s->be.skip == 0 && s->be.discard == 0 && (s->in == NULL || s->in->start == answered) &&
		(s->out == NULL || s->out->len == 0) && c->fe.skip == 0 && c->fe.discard == 0 &&
		(c->in == NULL || c->in->start == c->in->scan) && !s->confused;
}

bool
pgc_relay_idle(const pgc_client *c, pgc_server *s)
{
	return relay_quiet(c, s) && s->txn_status == PGC_TXN_IDLE;
}

/* Ciphertext waits for the socket. */
static bool
tls_waiting(pgc_tls *tls)
{
	return tls && pgc_tls_wants_write(tls);
}

/* A big buffer (a large message was read whole) that has emptied goes back. */
static void
trim_big(pgc_worker *w, pgc_iobuf **bp)
{
	pgc_iobuf *b = *bp;

	if (b && b->cap != PGC_IOBUF_SIZE && b->start == b->end)
	{
		pgc_worker_put_buf(w, b);
		*bp = NULL;
	}
}

/* Statement mode: a transaction block was refused; the server is rolled back and given back. */
static bool
refuse_transaction_block(pgc_client *c, pgc_server *s)
{
	pgc_msgbuf *out;

	if (s->inflight.len > 0 || s->unsynced || c->stmt_violation > 1)
	{
		/* More was pipelined behind the BEGIN: it ran inside the block. No way to undo that quietly. */
		s->dirty_close = true;
		pgc_server_close(s, "transaction block in statement mode");
		pgc_client_fatal(c, "0A000", "transaction blocks are not allowed in statement pooling mode");
		return false;
	}
	out = pgc_msgbuf_ensure(&c->out);
	c->stmt_violation = 0;
	if (out)
	{
		pgc_msgbuf_error(out, PGC_BE_ERROR, "ERROR", "0A000",
						 "transaction blocks are not allowed in statement pooling mode", NULL,
						 "Use pool_mode = transaction for this database or user.");
		pgc_msgbuf_ready(out, PGC_TXN_IDLE);
	}
	c->state = CL_IDLE;
	pgc_guard_detach(c, s);
	pgc_server_release(s);      /* rolls the transaction back before reuse */
	return true;
}

/*
 * The transaction is over and nothing is in flight: give the server back,
 * unless the client keeps it. Returns 1 to go on pumping, 0 to stop, -1
 * when the client was closed.
 */
static int
part_at_boundary(pgc_client *c, pgc_server *s)
{
	pgc_engine *e = c->worker->engine;
	bool session = pgc_pool_mode_of(c->pool) == PGC_POOL_SESSION;
	bool stopping = atomic_load(&e->shutting_down);

	if (session && !stopping)
		return 0;
	if (c->guard.on && !stopping)
	{
		pgc_guard_hold h = pgc_guard_keep_server(c, s);

		if (h == PGC_HOLD_PROBING)
			return 1;
		if (h == PGC_HOLD_CLOSED)
			return -1;
		if (h == PGC_HOLD_KEEP)
			return 0;
	}
	if (stopping)
		pgc_guard_detach(c, s);
	c->state = CL_IDLE;
	c->state_since = c->worker->now;
	pgc_server_release(s);
	if (stopping)
	{
		pgc_client_fatal(c, "57P01", "terminating connection due to administrator command");
		return -1;
	}
	pgc_client_trim(c);
	return 0;
}

void
pgc_relay_pump(pgc_client *c)
{
	pgc_server *s;
	int rc;

	for (;;)
	{
		s = c->server;
		if (s == NULL)
			break;
		/*
		 * client -> server: pgcarrier's own messages first, in the same
		 * write when possible. Not while followers are queued: what c sends
		 * next waits for a server of its own (pipeline.h).
		 */
		if (s->pipe_broken && !dropped_in_flight(s))
		{
			/* The dropped units are done: whatever they did to the session, c's settings again. */
			s->pipe_broken = false;
			pgc_server_sync_params(s, c);
		}
		if (c->in && (c->in->scan < c->in->end || c->fe.skip || c->fe.discard) && s->pipe_len == 0 &&
			!s->pipe_broken)
		{
			if (!scan_client(c, s))
				return;
		}
		(void) emit_made_up(c, s);     /* no room now: once the client took some */
		if (!s->want_write && ((s->out && s->out->len) || (c->in && c->in->start < c->in->scan) ||
							   tls_waiting(s->tls)))
		{
			rc = pgc_write_both(s->fd, s->tls, s->out, c->in);
			if (rc < 0)
			{
				server_died(c, s);
				return;
			}
			s->want_write = rc == 0;
		}
		/* server -> client */
		if (s->in && (s->in->scan < s->in->end || s->be.skip || s->be.discard))
		{
			step r = scan_server(c, s);

			if (r == STEP_GONE)
				return;
			if (r == STEP_SERVER_BAD)
			{
				server_died(c, s);
				return;
			}
		}
		if (!c->want_write && ((c->out && c->out->len) || (s->in && s->in->start < s->in->scan) ||
							   tls_waiting(c->tls)))
		{
			rc = pgc_write_both(c->fd, c->tls, c->out, s->in);
			if (rc < 0)
			{
				pgc_client_close(c, "client went away");
				return;
			}
			c->want_write = rc == 0;
			if (rc == 1)
				pgc_msgbuf_release(&c->out);
		}
		if (c->stmt_violation && !c->want_write && (s->in == NULL || s->in->start == s->in->end))
		{
			if (!refuse_transaction_block(c, s))
				return;
			continue;
		}
		if (c->terminate_seen && !s->want_write && (c->in == NULL || c->in->start == c->in->scan))
		{
			pgc_client_close(c, "client terminated");
			return;
		}
		if (relay_quiet(c, s))
		{
			bool more = c->in && c->in->start < c->in->end;

			if (c->guard.on && c->guard.barrier)
			{
				/* session_pinning = error: the guard looks before the client's next message runs. */
				pgc_guard_hold h = pgc_guard_at_barrier(c, s);

				if (h == PGC_HOLD_CLOSED)
					return;
				if (h == PGC_HOLD_PROBING || !c->guard.barrier)
					continue;
			}
			/*
			 * With followers queued, s goes to the first of them, whose unit
			 * runs there now (if c's was as assumed). Otherwise a client that
			 * already sent more keeps its server: no release in the middle of
			 * a pipeline of its own.
			 */
			else if (pgc_pipeline_has_followers(s) || (s->txn_status == PGC_TXN_IDLE && !more))
			{
				int r = pgc_pipeline_has_followers(s) ? pgc_pipeline_boundary(c, s) : part_at_boundary(c, s);

				if (r < 0)
					return;
				if (r > 0)
					continue;
				break;
			}
		}
		if (c->blocked && !s->want_write && !c->want_write)
		{
			/* Waited for room that is there now. */
			c->blocked = false;
			continue;
		}
		/* The last dropped unit was answered: c may go on (synced first, above). */
		if (s->pipe_broken && !dropped_in_flight(s))
			continue;
		break;
	}
	if (c->server)
	{
		trim_big(c->worker, &c->server->in);
		pgc_server_update_events(c->server);
	}
	trim_big(c->worker, &c->in);
	if (pgc_client_flush_out(c) < 0)
	{
		pgc_client_close(c, "client went away");
		return;
	}
	pgc_client_update_events(c);
}

void
pgc_relay_server_event(pgc_client *c, pgc_server *s, uint32_t events)
{
	if (events & EPOLLOUT)
		s->want_write = false;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
	{
		ssize_t n = pgc_iobuf_read(c->worker, s->fd, s->tls, &s->in);

		pgc_stats_sent(c, n);
		if (n == 0 || n == -1)
		{
			/* Forward what was complete before the end, then report. */
			if (s->in)
			{
				step r = scan_server(c, s);

				if (r == STEP_GONE)
					return;
			}
			server_died(c, s);
			return;
		}
	}
	pgc_relay_pump(c);
}

void
pgc_relay_link(pgc_client *c, pgc_server *s)
{
	pgc_stats_link(c, s);       /* before c's state changes: it tells how long c waited */
	pgc_server_adopt(s, c->worker);
	c->state = CL_LINKED;
	c->state_since = c->worker->now;
	s->last_type = 0;
	s->state_since = c->worker->now;
	/* Its parameters may differ from what the client was told. */
	s->report_pending = true;
	pgc_guard_attach(c, s);
	if ((c->in && c->in->start < c->in->end) || pgc_pool_mode_of(c->pool) == PGC_POOL_SESSION ||
		c->welcome_pending)
		pgc_server_sync_params(s, c);
	if (c->welcome_pending && s->inflight.len == 0)
		pgc_client_finish_welcome(c);
	pgc_relay_pump(c);
}
