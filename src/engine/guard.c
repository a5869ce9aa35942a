/*
 * guard.c - the session-state guard (see guard.h for what and why).
 *
 * Byte movement: client bytes are forwarded in place from c->in, and what
 * pgcarrier writes itself goes to s->out, which is written first. To put a
 * rewritten or added message at the right place in the stream, the scanned
 * but unwritten bytes before it are moved to s->out first, then the new
 * bytes appended, and the original message skipped. The same holds the other
 * way with s->in and c->out. Every byte is copied at most once that way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "guard.h"
#include "log.h"
#include "sqlclass.h"

/* Flags after which the server is asked what session state it holds. */
#define PROBE_FLAGS (PGC_SQL_PINNED | PGC_SQL_SETTING | PGC_SQL_DISCARD_ALL)
/* State the classifier knows pins a client (what session_pinning = error refuses). */
#define PIN_FLAGS (PGC_SQL_PINNED & ~PGC_SQL_UNKNOWN)
/* A statement name that never exists on a server: Close of it answers CloseComplete. */
#define NEVER_PREPARED "pgc_0"
/* Made-up bytes wait while this much is already queued for a slow peer. */
#define MAX_QUEUED (4 * PGC_IOBUF_SIZE)

/*
 * Everything is fully qualified, so that a client's search_path or objects
 * cannot change what the probe sees.
 */
static const char probe_sql[] =
	"SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class"
	" WHERE relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()),"
	" (SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks WHERE locktype OPERATOR(pg_catalog.=) 'advisory'"
	" AND pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()),"
	" (SELECT pg_catalog.count(*) FROM pg_catalog.pg_listening_channels()),"
	" (SELECT pg_catalog.count(*) FROM pg_catalog.pg_cursors WHERE is_holdable),"
	" (SELECT pg_catalog.count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql);"
	" SELECT name, setting FROM pg_catalog.pg_settings WHERE source OPERATOR(pg_catalog.=) 'session'";

static const uint32_t probe_pin_bits[5] = {
	PGC_SQL_TEMP, PGC_SQL_ADVISORY, PGC_SQL_LISTEN, PGC_SQL_HOLD_CURSOR, PGC_SQL_PREPARE
};

bool
pgc_guard_wanted(const pgc_pool *p)
{
	return pgc_pool_mode_of(p) != PGC_POOL_SESSION && pgc_engine_config()->session_guard;
}

/* ---------------------------------------------------------- byte moving -- */

/*
 * The buffer *slot (pgcarrier's own bytes for a peer, written first), after
 * the bytes of b scanned so far have been moved into it: whatever is
 * appended then comes next in the stream.
 */
static pgc_msgbuf *
out_after_scanned(pgc_msgbuf **slot, pgc_iobuf *b)
{
	pgc_msgbuf *out = pgc_msgbuf_ensure(slot);

	if (out && b && b->scan > b->start)
	{
		pgc_msgbuf_bytes(out, b->data + b->start, b->scan - b->start);
		b->start = b->scan;
	}
	return out;
}

/* Toward the server, after the client bytes scanned so far. */
static pgc_msgbuf *
server_out_here(pgc_client *c, pgc_server *s)
{
	return out_after_scanned(&s->out, c->in);
}

/* Toward the client, after the server bytes scanned so far. */
static pgc_msgbuf *
client_out_here(pgc_client *c, pgc_server *s)
{
	return out_after_scanned(&c->out, s->in);
}

static bool
queue_full(const pgc_msgbuf *m)
{
	return m && m->len >= MAX_QUEUED;
}

/* Skip n bytes of the message at c->in->scan (after server_out_here: nothing is pending before it). */
static void
skip_client_bytes(pgc_client *c, size_t n)
{
	pgc_iobuf *b = c->in;
	size_t avail = b->end - b->scan;

	if (n <= avail)
		b->start = b->scan = b->scan + n;
	else
	{
		b->start = b->scan = b->end;
		c->guard.discard = (uint32_t) (n - avail);
	}
}

/* Drop the whole server message of total bytes at s->in->scan. */
static void
skip_server_message(pgc_client *c, pgc_server *s, size_t total)
{
	pgc_iobuf *b = s->in;

	if (b->start == b->scan)
		b->start = b->scan = b->scan + total;
	else
	{
		memmove(b->data + b->scan, b->data + b->scan + total, b->end - b->scan - total);
		b->end -= total;
	}
	(void) c;
}

/* ---------------------------------------------------------------- queue -- */

static pgc_pending *
q_at(pgc_guard *g, uint32_t i)
{
	return &g->q[(g->q_head + i) & (g->q_cap - 1)];
}

static pgc_pending *
q_push(pgc_guard *g, uint8_t kind, uint8_t action)
{
	pgc_pending *p;

	if (g->q_len == g->q_cap)
	{
		uint32_t ncap = g->q_cap ? g->q_cap * 2 : 16;
		pgc_pending *nq = malloc(ncap * sizeof(*nq));

		if (nq == NULL)
			return NULL;
		for (uint32_t i = 0; i < g->q_len; i++)
			nq[i] = *q_at(g, i);
		free(g->q);
		g->q = nq;
		g->q_cap = ncap;
		g->q_head = 0;
	}
	p = q_at(g, g->q_len++);
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->action = action;
	return p;
}

/*
 * Take the oldest entry off. failed: the server did not do it (an error, or
 * skipped after one), so what pgcarrier noted in advance is undone.
 */
static void
q_pop(pgc_client *c, pgc_server *s, bool failed)
{
	pgc_guard *g = &c->guard;
	pgc_pending *p = q_at(g, 0);
	pgc_stmt_registry *r = &c->pool->stmts;

	if (failed && p->kind == 'P' && p->st)
	{
		if (p->action != PGC_PEND_OK)
			pgc_stmt_cache_remove(&s->stmts, r, p->st);
		if (p->text && pgc_stmt_map_get(&g->stmts, p->text) == p->st)
			pgc_stmt_unref(r, pgc_stmt_map_take(&g->stmts, p->text));
	}
	if (p->st)
		pgc_stmt_unref(r, p->st);
	free(p->text);
	g->q_head = (g->q_head + 1) & (g->q_cap - 1);
	g->q_len--;
}

static void
q_clear(pgc_client *c, pgc_server *s)
{
	while (c->guard.q_len)
		q_pop(c, s, s != NULL);
}

/* ------------------------------------------------------ made-up answers -- */

static void
made_up_error(pgc_msgbuf *out, const char *sqlstate, const char *msg)
{
	pgc_msgbuf_error(out, PGC_BE_ERROR, "ERROR", sqlstate, msg, NULL, NULL);
}

bool
pgc_guard_flush_made_up(pgc_client *c, pgc_server *s)
{
	pgc_guard *g = &c->guard;

	while (g->q_len && q_at(g, 0)->action >= PGC_PEND_OK)
	{
		pgc_pending *p = q_at(g, 0);
		pgc_msgbuf *out;

		if (g->server_skipping)
		{
			/* The server is skipping to Sync after an error: PostgreSQL would not answer this either. */
			q_pop(c, s, true);
			continue;
		}
		if (queue_full(c->out) || (out = client_out_here(c, s)) == NULL)
		{
			g->blocked = true;
			return false;
		}
		switch (p->action)
		{
			case PGC_PEND_OK:
				pgc_msgbuf_begin(out, '1');
				pgc_msgbuf_end(out);
				break;
			case PGC_PEND_ERROR:
				made_up_error(out, p->sqlstate, p->text);
				break;
			case PGC_PEND_QUERY:
				if (p->sqlstate[0])
					made_up_error(out, p->sqlstate, p->text);
				else if (s->txn_status == 'E')
				{
					made_up_error(out, "25P02", "current transaction is aborted, "
								  "commands ignored until end of transaction block");
				}
				else
				{
					pgc_msgbuf_begin(out, 'C');
					pgc_msgbuf_str(out, p->text);
					pgc_msgbuf_end(out);
				}
				pgc_msgbuf_ready(out, s->txn_status ? s->txn_status : 'I');
				break;
		}
		q_pop(c, s, false);
	}
	return true;
}

/* ------------------------------------------------------- client side -- */

/* A NUL-terminated string at p within n bytes: its length, or -1. */
static long
cstr_len(const uint8_t *p, size_t n)
{
	const uint8_t *z = memchr(p, 0, n);

	return z ? (long) (z - p) : -1;
}

/*
 * With pg_temp in search_path, a plain CREATE TABLE makes a temporary
 * table, which the text does not show: every statement is then checked.
 */
static uint32_t
search_path_flags(const pgc_client *c, uint32_t flags, const char **kind)
{
	const char *sp = pgc_params_get(&c->params, "search_path");

	if (sp && strstr(sp, "pg_temp"))
	{
		if (flags == 0)
			*kind = "statement with pg_temp in search_path";
		return flags | PGC_SQL_UNKNOWN;
	}
	return flags;
}

static void
note_flags(pgc_guard *g, uint32_t flags, const char *kind)
{
	if (flags && g->kind == NULL)
		g->kind = kind;
	g->flags |= flags;
	if (flags & PGC_SQL_DISCARD_ALL)
		g->discard_at_sync = true;  /* extended protocol; a simple Query clears it at once */
	if (flags & (PGC_SQL_DISCARD_ALL | PGC_SQL_DEALLOCATE))
		g->watch_tags = true;
}

/* Refuse pinning statements when session_pinning = error: the text that fails in their place. */
static bool
refusal_needed(uint32_t flags)
{
	return (flags & PIN_FLAGS) && pgc_engine_config()->session_pinning == PGC_PIN_ERROR;
}

static void
refusal_sql(char *buf, size_t len, uint32_t flags)
{
	snprintf(buf, len,
			 "DO $pgcarrier$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', "
			 "MESSAGE = '%s cannot be used in transaction pooling (session_pinning = error)', "
			 "HINT = 'Use pool_mode = session for this database or user, or session_pinning = pin.'; "
			 "END$pgcarrier$", pgc_sql_feature_name(flags));
}

/* A message that pgcarrier answers itself: drop it, queue the made-up answer. */
static pgc_guard_result
answer_instead(pgc_client *c, pgc_server *s, size_t total, uint8_t kind, uint8_t action,
			   const char *sqlstate, char *text)
{
	pgc_pending *p;

	if (server_out_here(c, s) == NULL || (p = q_push(&c->guard, kind, action)) == NULL)
	{
		free(text);
		pgc_client_fatal(c, "53200", "out of memory");
		return PGC_GUARD_FAIL;
	}
	if (sqlstate)
		memcpy(p->sqlstate, sqlstate, 6);
	p->text = text;
	skip_client_bytes(c, total);
	if (action == PGC_PEND_ERROR)
		c->guard.drop_until_sync = true;
	return PGC_GUARD_DONE;
}

static char *
fmt_dup(const char *fmt, const char *arg)
{
	size_t n = strlen(fmt) + strlen(arg) + 1;
	char *t = malloc(n);

	if (t)
		snprintf(t, n, fmt, arg);
	return t;
}

/* Make room in s's cache for one more statement, closing the least recently used one. */
static bool
cache_make_room(pgc_client *c, pgc_server *s, pgc_msgbuf *out)
{
	int max = pgc_engine_config()->max_prepared_statements;

	while (s->stmts.count >= (uint32_t) max)
	{
		pgc_stmt *old = pgc_stmt_cache_pop_lru(&s->stmts);
		pgc_pending *p;

		if (old == NULL)
			break;
		pgc_msgbuf_begin(out, 'C');
		pgc_msgbuf_byte(out, 'S');
		pgc_msgbuf_str(out, old->name);
		pgc_msgbuf_end(out);
		if ((p = q_push(&c->guard, 'C', PGC_PEND_SWALLOW)) == NULL)
		{
			pgc_stmt_unref(&c->pool->stmts, old);
			return false;
		}
		pgc_stmt_unref(&c->pool->stmts, old);
	}
	return true;
}

/* Make sure s has st prepared, adding a Parse to out if not. */
static bool
ensure_prepared(pgc_client *c, pgc_server *s, pgc_msgbuf *out, pgc_stmt *st)
{
	pgc_pending *p;

	if (pgc_stmt_cache_touch(&s->stmts, st))
		return true;
	if (!cache_make_room(c, s, out))
		return false;
	pgc_msgbuf_bytes(out, st->parse_msg, st->parse_len);
	if (!pgc_stmt_cache_add(&s->stmts, st) || (p = q_push(&c->guard, 'P', PGC_PEND_SWALLOW)) == NULL)
		return false;
	pgc_stmt_ref(st);
	p->st = st;
	return true;
}

static const char *
client_search_path(const pgc_client *c)
{
	const char *sp = pgc_params_get(&c->params, "search_path");

	return sp ? sp : "";
}

static pgc_guard_result
out_of_memory(pgc_client *c)
{
	pgc_client_fatal(c, "53200", "out of memory");
	return PGC_GUARD_FAIL;
}

/*
 * DEALLOCATE name of one of the client's protocol-level statements, sent as
 * an extended-protocol statement (psycopg does): the server does not know
 * the client's name, so a statement of pgcarrier's own is prepared in front
 * and deallocated in its place, which gives the client the answers it
 * expects, CommandComplete "DEALLOCATE" included.
 */
static bool
deallocate_unnamed(pgc_client *c, pgc_server *s, const uint8_t *query, size_t qlen, size_t total)
{
	static const char dummy[] = "pgc_deallocated";
	char name[128];
	bool all;
	pgc_stmt *st;
	pgc_msgbuf *out;

	if (!pgc_sql_deallocate((const char *) query, qlen, name, sizeof(name), &all) || all ||
		(st = pgc_stmt_map_take(&c->guard.stmts, name)) == NULL)
		return false;
	pgc_stmt_unref(&c->pool->stmts, st);
	if ((out = server_out_here(c, s)) == NULL ||
		q_push(&c->guard, 'P', PGC_PEND_SWALLOW) == NULL || q_push(&c->guard, 'P', PGC_PEND_FORWARD) == NULL)
		return false;
	pgc_msgbuf_begin(out, 'P');
	pgc_msgbuf_str(out, dummy);
	pgc_msgbuf_str(out, "SELECT 1");
	pgc_msgbuf_u16(out, 0);
	pgc_msgbuf_end(out);
	pgc_msgbuf_begin(out, 'P');
	pgc_msgbuf_str(out, "");
	pgc_msgbuf_str(out, "DEALLOCATE pgc_deallocated");
	pgc_msgbuf_u16(out, 0);
	pgc_msgbuf_end(out);
	skip_client_bytes(c, total);
	return true;
}

/* Parse: name \0 query \0 int16 n, n * int32. The whole message is at scan. */
static pgc_guard_result
client_parse(pgc_client *c, pgc_server *s, const uint8_t *body, size_t blen, size_t total)
{
	pgc_guard *g = &c->guard;
	long nl = cstr_len(body, blen), ql;
	const uint8_t *rest;
	size_t restlen;
	uint8_t *rewritten = NULL;
	pgc_stmt *st;
	pgc_pending *p;
	pgc_msgbuf *out;
	const char *kind = NULL;
	uint32_t flags;
	char refusal[400];

	if (nl < 0 || (ql = cstr_len(body + nl + 1, blen - (size_t) nl - 1)) < 0)
		return q_push(g, 'P', PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);  /* malformed: the server says so */
	rest = body + nl + 1;
	restlen = blen - (size_t) nl - 1;
	s->unsynced = true;
	if (nl == 0)
	{
		flags = pgc_sql_classify((const char *) rest, (size_t) ql, &kind);
		g->unnamed_ok = true;
		if ((flags & PGC_SQL_DEALLOCATE) && deallocate_unnamed(c, s, rest, (size_t) ql, total))
			return PGC_GUARD_DONE;
		if (!refusal_needed(flags))
		{
			note_flags(g, search_path_flags(c, flags, &kind), kind);
			return q_push(g, 'P', PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);
		}
	}
	else
	{
		if (pgc_stmt_map_get(&g->stmts, (const char *) body))
			return answer_instead(c, s, total, 'P', PGC_PEND_ERROR, "42P05",
								  fmt_dup("prepared statement \"%s\" already exists", (const char *) body));
		flags = pgc_sql_classify((const char *) rest, (size_t) ql, &kind);
	}
	if (refusal_needed(flags))
	{
		size_t tl;

		refusal_sql(refusal, sizeof(refusal), flags);
		tl = strlen(refusal) + 1;
		restlen = tl + (restlen - (size_t) ql - 1);
		if ((rewritten = malloc(restlen)) == NULL)
			return out_of_memory(c);
		memcpy(rewritten, refusal, tl);
		memcpy(rewritten + tl, rest + ql + 1, restlen - tl);
		rest = rewritten;
		if (nl == 0)
		{
			/* The unnamed statement: forward the refusal in its place. */
			out = server_out_here(c, s);
			if (out == NULL || q_push(g, 'P', PGC_PEND_FORWARD) == NULL)
			{
				free(rewritten);
				return out_of_memory(c);
			}
			pgc_msgbuf_begin(out, 'P');
			pgc_msgbuf_byte(out, 0);
			pgc_msgbuf_bytes(out, rest, restlen);
			pgc_msgbuf_end(out);
			free(rewritten);
			skip_client_bytes(c, total);
			return PGC_GUARD_DONE;
		}
	}
	st = pgc_stmt_intern(&c->pool->stmts, client_search_path(c), rest, restlen);
	free(rewritten);
	if (st == NULL)                 /* malformed: let the server say so */
		return q_push(g, 'P', PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);
	pgc_stmt_ref(st);
	if (!pgc_stmt_map_put(&g->stmts, &c->pool->stmts, (const char *) body, st))
	{
		pgc_stmt_unref(&c->pool->stmts, st);
		return out_of_memory(c);
	}
	if ((out = server_out_here(c, s)) == NULL)
		return out_of_memory(c);
	if (pgc_stmt_cache_touch(&s->stmts, st))
		p = q_push(g, 'P', PGC_PEND_OK);
	else
	{
		if (!cache_make_room(c, s, out))
			return out_of_memory(c);
		pgc_msgbuf_bytes(out, st->parse_msg, st->parse_len);
		if (!pgc_stmt_cache_add(&s->stmts, st))
			return out_of_memory(c);
		p = q_push(g, 'P', PGC_PEND_FORWARD);
	}
	if (p == NULL)
		return out_of_memory(c);
	p->st = st;                     /* the reference taken above */
	p->text = strdup((const char *) body);
	skip_client_bytes(c, total);
	return PGC_GUARD_DONE;
}

/*
 * The statement a Bind or Describe names, ready on s; NULL with an error
 * answer queued when the client has no such statement.
 */
static pgc_stmt *
statement_for(pgc_client *c, pgc_server *s, const char *name, size_t total, pgc_guard_result *res)
{
	pgc_stmt *st = pgc_stmt_map_get(&c->guard.stmts, name);

	if (st == NULL)
		*res = answer_instead(c, s, total, 'B', PGC_PEND_ERROR, "26000",
							  fmt_dup("prepared statement \"%s\" does not exist", name));
	return st;
}

static pgc_guard_result
unnamed_missing(pgc_client *c, pgc_server *s, size_t total)
{
	return answer_instead(c, s, total, 'B', PGC_PEND_ERROR, "26000",
						  strdup("unnamed prepared statement does not exist"));
}

/* Bind: portal \0 statement \0 rest. Only the start needs to be here. */
static pgc_guard_result
client_bind(pgc_client *c, pgc_server *s, const uint8_t *body, size_t have, size_t total)
{
	pgc_guard *g = &c->guard;
	long pl = cstr_len(body, have), sl;
	pgc_guard_result res = PGC_GUARD_DONE;
	pgc_stmt *st;
	pgc_msgbuf *out;
	size_t prefix, newlen;

	if (pl < 0 || (sl = cstr_len(body + pl + 1, have - (size_t) pl - 1)) < 0)
	{
		/* Malformed, or absurdly long names: the server will say what is wrong. */
		if (have + 5 < total && have < PGC_IOBUF_SIZE / 2)
			return PGC_GUARD_WAIT;
		return q_push(g, 'B', PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);
	}
	s->unsynced = true;
	if (sl == 0)
	{
		if (!g->unnamed_ok)
			return unnamed_missing(c, s, total);
		return q_push(g, 'B', PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);
	}
	if ((st = statement_for(c, s, (const char *) body + pl + 1, total, &res)) == NULL)
		return res;
	{
		const char *kind = st->kind;

		note_flags(g, search_path_flags(c, st->flags, &kind), kind);
	}
	if ((out = server_out_here(c, s)) == NULL || !ensure_prepared(c, s, out, st))
		return out_of_memory(c);
	/* The Bind with pgcarrier's name: new start here, the rest streams from c->in. */
	prefix = 5 + (size_t) pl + 1 + (size_t) sl + 1;
	newlen = total - 1 - (size_t) sl + strlen(st->name);
	pgc_msgbuf_byte(out, 'B');
	pgc_msgbuf_u32(out, (uint32_t) newlen);
	pgc_msgbuf_bytes(out, body, (size_t) pl + 1);
	pgc_msgbuf_str(out, st->name);
	if (out->failed || q_push(g, 'B', PGC_PEND_FORWARD) == NULL)
		return out_of_memory(c);
	c->in->start = c->in->scan = c->in->scan + prefix;
	pgc_iobuf_pass(c->in, total - prefix, &c->skip);
	return PGC_GUARD_DONE;
}

/* Describe or Close: 'S'|'P' name \0. The whole message is here. */
static pgc_guard_result
client_describe_close(pgc_client *c, pgc_server *s, uint8_t type, const uint8_t *body, size_t blen,
					  size_t total)
{
	pgc_guard *g = &c->guard;
	long nl = blen >= 1 ? cstr_len(body + 1, blen - 1) : -1;
	const char *name = (const char *) body + 1;
	pgc_guard_result res = PGC_GUARD_DONE;
	pgc_stmt *st;
	pgc_msgbuf *out;

	s->unsynced = true;
	if (nl < 0 || body[0] != 'S')
		return q_push(g, type, PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);
	if (nl == 0)
	{
		if (type == 'C')
			g->unnamed_ok = false;
		else if (!g->unnamed_ok)
			return unnamed_missing(c, s, total);
		return q_push(g, type, PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);
	}
	if (type == 'C')
	{
		/* The server keeps it for others; the client's name is gone. */
		st = pgc_stmt_map_take(&g->stmts, name);
		if (st)
			pgc_stmt_unref(&c->pool->stmts, st);
		if ((out = server_out_here(c, s)) == NULL)
			return out_of_memory(c);
		pgc_msgbuf_begin(out, 'C');
		pgc_msgbuf_byte(out, 'S');
		pgc_msgbuf_str(out, NEVER_PREPARED);
		pgc_msgbuf_end(out);
	}
	else
	{
		if ((st = statement_for(c, s, name, total, &res)) == NULL)
			return res;
		if ((out = server_out_here(c, s)) == NULL || !ensure_prepared(c, s, out, st))
			return out_of_memory(c);
		pgc_msgbuf_begin(out, 'D');
		pgc_msgbuf_byte(out, 'S');
		pgc_msgbuf_str(out, st->name);
		pgc_msgbuf_end(out);
	}
	if (out->failed || q_push(g, type, PGC_PEND_FORWARD) == NULL)
		return out_of_memory(c);
	skip_client_bytes(c, total);
	return PGC_GUARD_DONE;
}

/* Next word of a simple statement: letters, digits, _ . $ folded to lower case, or one of "=;". */
static const char *
next_word(const char *p, const char *end, char *w, size_t wlen)
{
	size_t n = 0;

	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	if (p < end && (*p == '=' || *p == ';'))
	{
		w[0] = *p;
		w[1] = 0;
		return p + 1;
	}
	while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
					   *p == '_' || *p == '.' || *p == '$'))
	{
		if (n + 1 < wlen)
			w[n++] = (char) ((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
		p++;
	}
	w[n] = 0;
	return p;
}

/*
 * Whether sql is exactly one RESET name, RESET ALL or SET name TO DEFAULT:
 * 2 for ALL, 1 with the name, 0 otherwise. Anything fancier (comments,
 * quoted names) is left alone.
 */
static int
reset_target(const char *sql, size_t len, char *name, size_t namelen)
{
	const char *p = sql, *end = sql + len;
	char w[64];
	int kind;

	p = next_word(p, end, w, sizeof(w));
	if (strcmp(w, "reset") == 0)
	{
		p = next_word(p, end, name, namelen);
		kind = strcmp(name, "all") == 0 ? 2 : 1;
	}
	else if (strcmp(w, "set") == 0)
	{
		p = next_word(p, end, name, namelen);
		if (strcmp(name, "session") == 0)
			p = next_word(p, end, name, namelen);
		p = next_word(p, end, w, sizeof(w));
		if (strcmp(w, "to") != 0 && strcmp(w, "=") != 0)
			return 0;
		p = next_word(p, end, w, sizeof(w));
		if (strcmp(w, "default") != 0)
			return 0;
		kind = 1;
	}
	else
		return 0;
	if (name[0] == 0 || strcmp(name, "local") == 0 || strcmp(name, "session") == 0)
		return 0;
	p = next_word(p, end, w, sizeof(w));
	if (strcmp(w, ";") == 0)
		p = next_word(p, end, w, sizeof(w));
	return (w[0] == 0 && p == end) ? kind : 0;
}

/*
 * RESET goes back to the value the session started with, and for a client
 * that is the value of its startup packet, which the server connection
 * never saw. So a RESET of such a parameter is followed, in the same Query,
 * by a set_config to the startup value. PostgreSQL reports changed
 * parameters once, at the end of the Query, so the client sees exactly the
 * ParameterStatus a direct connection would show. Returns true if the Query
 * was rewritten into out.
 */
static bool
rewrite_reset(pgc_client *c, pgc_msgbuf *out, const uint8_t *body, size_t blen)
{
	char name[64];
	int kind = reset_target((const char *) body, blen - 1, name, sizeof(name));
	size_t pos = 0, n = 0;
	const char *k, *v;

	if (kind == 0 || (kind == 1 && pgc_params_get(&c->startup, name) == NULL))
		return false;
	pgc_msgbuf_begin(out, 'Q');
	pgc_msgbuf_bytes(out, body, blen - 1);
	pgc_msgbuf_text(out, "\n; SELECT ");
	while (pgc_params_next(&c->startup, &pos, &k, &v))
	{
		if (kind == 1 && strcasecmp(k, name) != 0)
			continue;
		if (n++)
			pgc_msgbuf_text(out, ", ");
		pgc_msgbuf_set_config(out, k, v);
	}
	pgc_msgbuf_byte(out, 0);
	pgc_msgbuf_end(out);
	return true;
}

/*
 * Extension settings ("myapp.tenant") that were never defined are not in
 * pg_settings, so the probe cannot find them by itself: remember the names
 * of the ones a plain "SET [SESSION] a.b ..." sets and ask for them by name.
 */
static void
note_custom_setting(pgc_guard *g, const char *sql, size_t len)
{
	const char *p = sql, *end = sql + len;
	char w[64], name[128];

	p = next_word(p, end, w, sizeof(w));
	if (strcmp(w, "set") != 0)
		return;
	p = next_word(p, end, name, sizeof(name));
	if (strcmp(name, "session") == 0)
		p = next_word(p, end, name, sizeof(name));
	if (strchr(name, '.') && name[0] != '.' && g->custom.len < 16 * 1024)
		pgc_params_set(&g->custom, name, "");
}

static bool
is_discard_all(const char *sql, size_t len)
{
	const char *p = sql, *end = sql + len;
	char w[64];

	p = next_word(p, end, w, sizeof(w));
	if (strcmp(w, "discard") != 0)
		return false;
	p = next_word(p, end, w, sizeof(w));
	if (strcmp(w, "all") != 0)
		return false;
	p = next_word(p, end, w, sizeof(w));
	if (strcmp(w, ";") == 0)
		p = next_word(p, end, w, sizeof(w));
	return w[0] == 0 && p == end;
}

/*
 * DISCARD ALL resets every setting to the session's start, which for the
 * client means its startup packet. It cannot share a Query with anything,
 * so a Query of pgcarrier's own follows it and restores the startup
 * values; the ParameterStatus messages of both are kept from the client,
 * which is told instead what a direct connection would have said.
 */
static pgc_guard_result
discard_all_then_restore(pgc_client *c, pgc_server *s, uint8_t type, const uint8_t *body, size_t blen,
						 size_t total)
{
	pgc_msgbuf *out = server_out_here(c, s);
	pgc_pending *p;
	size_t pos = 0, n = 0;
	const char *k, *v;

	if (out == NULL || (p = q_push(&c->guard, type, PGC_PEND_FORWARD)) == NULL)
		return out_of_memory(c);
	p->discard_all = true;
	if (q_push(&c->guard, 'Q', PGC_PEND_SWALLOW) == NULL)
		return out_of_memory(c);
	/* The client's message (a Query, or the Sync after an extended DISCARD ALL), then ours. */
	pgc_msgbuf_begin(out, (char) type);
	pgc_msgbuf_bytes(out, body, blen);
	pgc_msgbuf_end(out);
	if (type == 'S')
		s->unsynced = false;
	pgc_msgbuf_begin(out, 'Q');
	pgc_msgbuf_text(out, "SELECT ");
	while (pgc_params_next(&c->startup, &pos, &k, &v))
	{
		if (n++)
			pgc_msgbuf_text(out, ", ");
		pgc_msgbuf_set_config(out, k, v);
	}
	pgc_msgbuf_byte(out, 0);
	pgc_msgbuf_end(out);
	s->pending_rfq += 2;
	skip_client_bytes(c, total);
	return PGC_GUARD_DONE;
}

/* Simple Query. The whole message is here unless it is bigger than a buffer. */
static pgc_guard_result
client_query(pgc_client *c, pgc_server *s, const uint8_t *body, size_t blen, size_t total, bool whole)
{
	pgc_guard *g = &c->guard;
	const char *kind = NULL;
	uint32_t flags;
	char name[128];
	bool all;
	pgc_msgbuf *out;

	g->unnamed_ok = false;
	if (!whole)
	{
		note_flags(g, PGC_SQL_UNKNOWN, "long query");
		return q_push(g, 'Q', PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);
	}
	flags = pgc_sql_classify((const char *) body, blen ? blen - 1 : 0, &kind);
	if ((flags & PGC_SQL_DEALLOCATE) &&
		pgc_sql_deallocate((const char *) body, blen ? blen - 1 : 0, name, sizeof(name), &all) && !all)
	{
		pgc_stmt *st = pgc_stmt_map_take(&g->stmts, name);

		if (st)
		{
			pgc_stmt_unref(&c->pool->stmts, st);
			return answer_instead(c, s, total, 'Q', PGC_PEND_QUERY, NULL, strdup("DEALLOCATE"));
		}
		if (strncmp(name, "pgc_", 4) == 0)
		{
			/* Never let a client reach the statements pgcarrier keeps for everyone. */
			return answer_instead(c, s, total, 'Q', PGC_PEND_QUERY, "26000",
								  fmt_dup("prepared statement \"%s\" does not exist", name));
		}
	}
	if (refusal_needed(flags))
	{
		s->pending_rfq++;
		char sql[400];

		refusal_sql(sql, sizeof(sql), flags);
		if ((out = server_out_here(c, s)) == NULL || q_push(g, 'Q', PGC_PEND_FORWARD) == NULL)
			return out_of_memory(c);
		pgc_msgbuf_query(out, sql);
		skip_client_bytes(c, total);
		return PGC_GUARD_DONE;
	}
	note_flags(g, search_path_flags(c, flags, &kind), kind);
	if (flags & PGC_SQL_SETTING)
		note_custom_setting(g, (const char *) body, blen ? blen - 1 : 0);
	g->discard_at_sync = false;
	if ((flags & PGC_SQL_DISCARD_ALL) && c->startup.len && blen > 0 &&
		is_discard_all((const char *) body, blen - 1))
		return discard_all_then_restore(c, s, 'Q', body, blen, total);
	if ((flags & PGC_SQL_SETTING) && c->startup.len && blen > 0)
	{
		pgc_pending *p;

		if ((out = server_out_here(c, s)) == NULL)
			return out_of_memory(c);
		if (rewrite_reset(c, out, body, blen))
		{
			if ((p = q_push(g, 'Q', PGC_PEND_FORWARD)) == NULL)
				return out_of_memory(c);
			p->trailing = true;
			s->pending_rfq++;
			skip_client_bytes(c, total);
			return PGC_GUARD_DONE;
		}
	}
	return q_push(g, 'Q', PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);
}

pgc_guard_result
pgc_guard_client_discard(pgc_client *c, pgc_server *s)
{
	pgc_iobuf *b = c->in;
	size_t n;

	if (server_out_here(c, s) == NULL)
		return out_of_memory(c);
	n = b->end - b->scan < c->guard.discard ? b->end - b->scan : c->guard.discard;
	b->start = b->scan = b->scan + n;
	c->guard.discard -= (uint32_t) n;
	return c->guard.discard ? PGC_GUARD_WAIT : PGC_GUARD_DONE;
}

pgc_guard_result
pgc_guard_client_msg(pgc_client *c, pgc_server *s, uint8_t type, uint32_t len)
{
	pgc_guard *g = &c->guard;
	pgc_iobuf *b = c->in;
	size_t total = (size_t) len + 1;
	size_t avail = b->end - b->scan;
	const uint8_t *body = b->data + b->scan + 5;
	bool whole = avail >= total;

	if (type == 'X')
		return PGC_GUARD_PASS;
	if (queue_full(s->out))
	{
		g->blocked = true;
		return PGC_GUARD_WAIT;
	}
	if (g->drop_until_sync && type != 'S')
	{
		/* As PostgreSQL does after an error in an extended-query message. */
		if (server_out_here(c, s) == NULL)
			return out_of_memory(c);
		skip_client_bytes(c, total);
		return PGC_GUARD_DONE;
	}
	switch (type)
	{
		case 'S':
			g->drop_until_sync = false;
			if (g->discard_at_sync)
			{
				g->discard_at_sync = false;
				if (c->startup.len && whole)
					return discard_all_then_restore(c, s, 'S', body, len - 4, total);
			}
			return q_push(g, 'S', PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);
		case 'E':
			return q_push(g, 'E', PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);
		case 'F':
			note_flags(g, PGC_SQL_UNKNOWN, "function call message");
			return q_push(g, 'F', PGC_PEND_FORWARD) ? PGC_GUARD_PASS : out_of_memory(c);
		case 'Q':
			if (!whole && total <= PGC_IOBUF_SIZE)
				return PGC_GUARD_WAIT;
			return client_query(c, s, body, len - 4, total, whole);
		case 'P':
			if (!whole)
			{
				if (total <= PGC_IOBUF_SIZE)
					return PGC_GUARD_WAIT;
				pgc_client_fatal(c, "54000", "statement too long: pgcarrier prepares statements of up to %d bytes",
								 PGC_IOBUF_SIZE - 6);
				return PGC_GUARD_FAIL;
			}
			return client_parse(c, s, body, len - 4, total);
		case 'B':
			if (!whole && avail < PGC_IOBUF_SIZE / 2)
				return PGC_GUARD_WAIT;
			return client_bind(c, s, body, avail - 5, total);
		case 'D':
		case 'C':
			if (!whole)
				return total <= PGC_IOBUF_SIZE ? PGC_GUARD_WAIT : PGC_GUARD_PASS;
			return client_describe_close(c, s, type, body, len - 4, total);
		default:
			return PGC_GUARD_PASS;
	}
}

/* ------------------------------------------------------- server side -- */

/* A DataRow's column i as a string (NULL for SQL NULL or when malformed). */
static const char *
datarow_col(const uint8_t *body, size_t blen, int i, size_t *vlen)
{
	size_t pos = 2;
	int n;

	if (blen < 2)
		return NULL;
	n = pgc_get_u16(body);
	for (int k = 0; k < n; k++)
	{
		int32_t l;

		if (pos + 4 > blen)
			return NULL;
		l = (int32_t) pgc_get_u32(body + pos);
		pos += 4;
		if (l < 0)
		{
			if (k == i)
				return NULL;
			continue;
		}
		if (pos + (size_t) l > blen)
			return NULL;
		if (k == i)
		{
			*vlen = (size_t) l;
			return (const char *) body + pos;
		}
		pos += (size_t) l;
	}
	return NULL;
}

static void
probe_row(pgc_server *s, const uint8_t *body, size_t blen)
{
	char key[128], val[1024];
	const char *k, *v;
	size_t kl = 0, vl = 0;

	if (s->probe_set == 0)
	{
		for (int i = 0; i < 5; i++)
		{
			v = datarow_col(body, blen, i, &vl);
			if (v == NULL)
				s->probe_failed = true;
			else if (!(vl == 1 && v[0] == '0'))
				s->probe_pinned |= probe_pin_bits[i];
		}
		return;
	}
	k = datarow_col(body, blen, 0, &kl);
	v = datarow_col(body, blen, 1, &vl);
	if (k && v == NULL && s->probe_set == 2)
		return;                     /* an extension setting that does not exist (any more) */
	if (k == NULL || v == NULL || kl >= sizeof(key) || vl >= sizeof(val))
	{
		s->probe_failed = true;
		return;
	}
	memcpy(key, k, kl);
	key[kl] = 0;
	memcpy(val, v, vl);
	val[vl] = 0;
	/*
	 * transaction_isolation and friends show the probe's own transaction;
	 * replaying them would fail ("must be called before any query").
	 */
	if (strncmp(key, "transaction_", 12) == 0)
		return;
	pgc_params_set(&s->probe_settings, key, val);
}

/* What the probe found becomes the client's and the server's view. */
static void
probe_apply(pgc_client *c, pgc_server *s)
{
	pgc_guard *g = &c->guard;
	uint32_t pinned = s->probe_failed ? PGC_SQL_UNKNOWN : s->probe_pinned;

	if (!s->probe_failed)
	{
		pgc_params nc = {0}, ns = {0};
		size_t pos = 0;
		const char *k, *v;

		while (pgc_params_next(&c->params, &pos, &k, &v))
			if (pgc_param_is_reported(k))
				pgc_params_set(&nc, k, v);
		pos = 0;
		while (pgc_params_next(&s->params, &pos, &k, &v))
			if (pgc_param_is_reported(k))
				pgc_params_set(&ns, k, v);
		pos = 0;
		while (pgc_params_next(&s->probe_settings, &pos, &k, &v))
		{
			if (pgc_param_is_reported(k))
				continue;
			pgc_params_set(&nc, k, v);
			pgc_params_set(&ns, k, v);
		}
		/* RESET of a startup parameter goes back to the startup value, as with PostgreSQL. */
		pos = 0;
		while (pgc_params_next(&c->startup, &pos, &k, &v))
			if (!pgc_param_is_reported(k) && !pgc_params_get(&s->probe_settings, k))
				pgc_params_set(&nc, k, v);
		pgc_params_free(&c->params);
		pgc_params_free(&s->params);
		c->params = nc;
		s->params = ns;
	}
	pgc_params_free(&s->probe_settings);
	if (pinned && !g->pinned)
	{
		atomic_fetch_add(&c->worker->engine->pins_total, 1);
		pgc_log(PGC_LOG, "client %s (%s/%s) pinned to its server connection: %s (%s)",
				c->addr, c->dbname, c->user, pgc_sql_feature_name(pinned), g->kind ? g->kind : "statement");
	}
	else if (!pinned && g->pinned)
		pgc_log(PGC_LOG, "client %s (%s/%s) unpinned: its session state is gone",
				c->addr, c->dbname, c->user);
	g->pinned = pinned;
	g->kind = NULL;
}

static pgc_guard_result
probe_message(pgc_client *c, pgc_server *s, uint8_t type, uint32_t len)
{
	pgc_iobuf *b = s->in;
	size_t total = (size_t) len + 1;
	const uint8_t *body = b->data + b->scan + 5;

	if (total > PGC_IOBUF_SIZE)
		return PGC_GUARD_FAIL;
	if (b->end - b->scan < total)
		return PGC_GUARD_WAIT;
	switch (type)
	{
		case 'D':
			probe_row(s, body, len - 4);
			break;
		case 'C':
			s->probe_set++;
			break;
		case 'E':
			{
				const char *m = pgc_error_field(body, len - 4, PGC_ERRF_MESSAGE);

				pgc_log(PGC_WARNING, "client %s: the session-state probe failed: %s", c->addr, m ? m : "?");
				s->probe_failed = true;
			}
			break;
		case 'Z':
			s->txn_status = len >= 5 ? (char) body[0] : 'I';
			if (s->pending_rfq > 0)
				s->pending_rfq--;
			s->probing = false;
			probe_apply(c, s);
			break;
		default:
			break;
	}
	skip_server_message(c, s, total);
	return PGC_GUARD_DONE;
}

static bool
kind_is_extended(uint8_t k)
{
	return k == 'P' || k == 'B' || k == 'D' || k == 'E' || k == 'C';
}

/* A CommandComplete: DISCARD ALL and DEALLOCATE ALL take the client's statements with them. */
static void
watch_tag(pgc_client *c, pgc_server *s, const uint8_t *body, size_t blen)
{
	if (blen == 0 || body[blen - 1] != 0)
		return;
	if (strcmp((const char *) body, "DISCARD ALL") == 0 || strcmp((const char *) body, "DEALLOCATE ALL") == 0)
	{
		pgc_stmt_map_clear(&c->guard.stmts, &c->pool->stmts);
		pgc_stmt_cache_clear(&s->stmts, &c->pool->stmts);
	}
}

/* Keep the server's view of its reported parameters, from a ParameterStatus the client will not see. */
static void
note_server_param(pgc_server *s, const uint8_t *body, size_t blen)
{
	long nl = cstr_len(body, blen);

	if (nl > 0 && cstr_len(body + nl + 1, blen - (size_t) nl - 1) >= 0)
		pgc_params_set(&s->params, (const char *) body, (const char *) body + nl + 1);
}

/* Answers to DISCARD ALL and to the restore that follows it; see discard_all_then_restore(). */
static pgc_guard_result
discard_all_message(pgc_client *c, pgc_server *s, pgc_pending *head, uint8_t type, size_t total)
{
	pgc_iobuf *b = s->in;
	const uint8_t *body = b->data + b->scan + 5;

	if (total > PGC_IOBUF_SIZE)
		return PGC_GUARD_FAIL;
	if (b->end - b->scan < total)
		return PGC_GUARD_WAIT;
	if (type == 'S')
	{
		long nl = cstr_len(body, total - 5);

		note_server_param(s, body, total - 5);
		if (head->action != PGC_PEND_SWALLOW && nl > 0 && !pgc_params_get(&c->startup, (const char *) body))
			return PGC_GUARD_PASS;  /* not a startup parameter: reset to the server's default, as shown */
		skip_server_message(c, s, total);
		return PGC_GUARD_DONE;
	}
	if (type == 'Z' && head->action != PGC_PEND_SWALLOW)
	{
		/* The client's own ReadyForQuery: first what changed, as PostgreSQL would report it. */
		pgc_msgbuf *out = client_out_here(c, s);
		size_t pos = 0;
		const char *k, *v;
		pgc_params changed = {0};

		if (out == NULL)
			return PGC_GUARD_FAIL;
		while (pgc_params_next(&c->startup, &pos, &k, &v))
		{
			const char *seen = pgc_params_get(&c->params, k);

			if (pgc_param_is_reported(k) && (seen == NULL || strcmp(seen, v) != 0))
			{
				pgc_msgbuf_param(out, k, v);
				pgc_params_set(&changed, k, v);
			}
		}
		pos = 0;
		while (pgc_params_next(&changed, &pos, &k, &v))
			pgc_params_set(&c->params, k, v);
		pgc_params_free(&changed);
		q_pop(c, s, false);
		return PGC_GUARD_PASS;
	}
	if (type == 'Z')
	{
		s->txn_status = total >= 6 ? (char) body[0] : 'I';
		if (s->pending_rfq > 0)
			s->pending_rfq--;
		q_pop(c, s, false);
	}
	skip_server_message(c, s, total);
	return PGC_GUARD_DONE;
}

pgc_guard_result
pgc_guard_server_msg(pgc_client *c, pgc_server *s, uint8_t type, uint32_t len)
{
	pgc_guard *g = &c->guard;
	pgc_pending *head;
	size_t total = (size_t) len + 1;

	if (s->probing)
		return probe_message(c, s, type, len);
	if (g->q_len == 0)
		return PGC_GUARD_PASS;
	head = q_at(g, 0);
	if ((head->kind == 'Q' && head->action == PGC_PEND_SWALLOW) || (head->discard_all && (type == 'S' || type == 'Z')))
		return discard_all_message(c, s, head, type, total);
	if (head->kind == 'Q' && head->trailing && (type == 'T' || type == 'D' || type == 'C'))
	{
		/* The client's own statement completes first; what follows is pgcarrier's SELECT. */
		if (type == 'C' && !head->seen_complete)
		{
			head->seen_complete = true;
			return PGC_GUARD_PASS;
		}
		if (head->seen_complete)
		{
			if (s->in->end - s->in->scan < total)
				return total > PGC_IOBUF_SIZE ? PGC_GUARD_FAIL : PGC_GUARD_WAIT;
			skip_server_message(c, s, total);
			return PGC_GUARD_DONE;
		}
	}
	switch (type)
	{
		case '1':
		case '3':
			if (head->kind == (type == '1' ? 'P' : 'C'))
			{
				bool swallow = head->action == PGC_PEND_SWALLOW;

				if (swallow && s->in->end - s->in->scan < total)
					return PGC_GUARD_WAIT;
				q_pop(c, s, false);
				if (swallow)
				{
					skip_server_message(c, s, total);
					return PGC_GUARD_DONE;
				}
			}
			return PGC_GUARD_PASS;
		case '2':
			if (head->kind == 'B')
				q_pop(c, s, false);
			return PGC_GUARD_PASS;
		case 'T':
		case 'n':
			if (head->kind == 'D')
				q_pop(c, s, false);
			return PGC_GUARD_PASS;
		case 'C':
			if (g->watch_tags)
			{
				if (s->in->end - s->in->scan < total)
					return PGC_GUARD_WAIT;
				watch_tag(c, s, s->in->data + s->in->scan + 5, len - 4);
			}
			if (head->kind == 'E')
				q_pop(c, s, false);
			return PGC_GUARD_PASS;
		case 'I':
		case 's':
			if (head->kind == 'E')
				q_pop(c, s, false);
			return PGC_GUARD_PASS;
		case 'E':
			/* The server skips the rest up to Sync: so does the queue, undoing what it noted. */
			if (kind_is_extended(head->kind))
				g->server_skipping = true;
			while (g->q_len && kind_is_extended(q_at(g, 0)->kind))
				q_pop(c, s, true);
			return PGC_GUARD_PASS;
		case 'Z':
			while (g->q_len)
			{
				uint8_t k = q_at(g, 0)->kind;

				q_pop(c, s, kind_is_extended(k));
				if (k == 'S' || k == 'Q' || k == 'F')
					break;
			}
			g->server_skipping = false;
			if (g->q_len == 0)
				g->watch_tags = false;
			return PGC_GUARD_PASS;
		default:
			return PGC_GUARD_PASS;
	}
}

/* ------------------------------------------------------ release points -- */

void
pgc_guard_attach(pgc_client *c, pgc_server *s)
{
	c->guard.on = pgc_guard_wanted(c->pool);
	c->guard.unnamed_ok = false;
	c->guard.drop_until_sync = false;
	(void) s;
}

pgc_guard_hold
pgc_guard_keep_server(pgc_client *c, pgc_server *s)
{
	pgc_guard *g = &c->guard;
	pgc_msgbuf *out;

	if (g->pinned && pgc_engine_config()->session_pinning == PGC_PIN_ERROR)
	{
		/* State the classifier could not see coming; it cannot be undone quietly. */
		pgc_client_fatal(c, "0A000", "%s cannot be used in transaction pooling (session_pinning = error)",
						 pgc_sql_feature_name(g->pinned));
		return PGC_HOLD_CLOSED;
	}

	if ((g->flags & PROBE_FLAGS) || (g->pinned && g->flags))
	{
		g->flags = 0;
		if ((out = pgc_msgbuf_ensure(&s->out)) == NULL)
		{
			/* Cannot look: treat as pinned, which is always safe. */
			g->pinned |= PGC_SQL_UNKNOWN;
			return PGC_HOLD_KEEP;
		}
		if (g->custom.len == 0)
			pgc_msgbuf_query(out, probe_sql);
		else
		{
			size_t pos = 0, n = 0;
			const char *k, *v;

			pgc_msgbuf_begin(out, 'Q');
			pgc_msgbuf_bytes(out, probe_sql, sizeof(probe_sql) - 1);
			pgc_msgbuf_text(out, "; SELECT n, pg_catalog.current_setting(n, true) FROM (VALUES ");
			while (pgc_params_next(&g->custom, &pos, &k, &v))
			{
				if (n++)
					pgc_msgbuf_text(out, ", ");
				pgc_msgbuf_byte(out, '(');
				pgc_msgbuf_literal(out, k);
				pgc_msgbuf_byte(out, ')');
			}
			pgc_msgbuf_text(out, ") v(n)");
			pgc_msgbuf_byte(out, 0);
			pgc_msgbuf_end(out);
		}
		s->pending_rfq++;
		s->probing = true;
		s->probe_failed = false;
		s->probe_set = 0;
		s->probe_pinned = 0;
		pgc_params_free(&s->probe_settings);
		return PGC_HOLD_PROBING;
	}
	g->flags = 0;
	g->kind = NULL;
	return g->pinned ? PGC_HOLD_KEEP : PGC_HOLD_RELEASE;
}

void
pgc_guard_detach(pgc_client *c, pgc_server *s)
{
	pgc_guard *g = &c->guard;

	if (!g->on)
		return;
	if (g->pinned || g->flags || s->probing || g->q_len)
		s->needs_discard = true;
	q_clear(c, s);
	g->pinned = 0;
	g->flags = 0;
	g->kind = NULL;
	g->drop_until_sync = false;
	g->server_skipping = false;
	g->discard = 0;
}

void
pgc_guard_client_free(pgc_client *c)
{
	pgc_guard *g = &c->guard;

	if (c->pool == NULL)
		return;                     /* never logged in: nothing was made */
	q_clear(c, NULL);
	free(g->q);
	g->q = NULL;
	g->q_cap = 0;
	pgc_params_free(&g->custom);
	pgc_stmt_map_clear(&g->stmts, &c->pool->stmts);
}
