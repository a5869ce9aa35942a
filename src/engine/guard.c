/*
 * guard.c - the session-state guard (see guard.h for what and why).
 *
 * Every byte moves through the relay's cursor API: a message the guard
 * rewrites is dropped and its new form injected in its place; a message
 * pgcarrier answers itself gets a made-up entry in the in-flight queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "guard.h"
#include "pshare.h"
#include "log.h"
#include "pipeline.h"
#include "sqlclass.h"
#include "stats.h"
#include "state.h"

/* State the classifier knows pins a client (what session_pinning = error refuses up front). */
#define PIN_FLAGS (PGC_SQL_PINNED & ~PGC_SQL_UNKNOWN)
/*
 * What may make a statement's text mean something else for this client
 * than for the other clients of its pool: its statements are its own then.
 */
#define PRIVATE_FLAGS (PGC_SQL_SETTING | PGC_SQL_LOCAL_SETTING | PGC_SQL_UNKNOWN | PGC_SQL_TEMP | \
					   PGC_SQL_DISCARD_ALL | PGC_SQL_SESSION_AUTH)
/* A statement name that never exists on a server: Close of it answers CloseComplete. */
#define NEVER_PREPARED "pgc_0"
/* A simple Query is classified whole up to this size; a longer one counts as unknown. */
#define CLASSIFY_LIMIT (1024 * 1024)
/* Bind: the portal and statement names must lie within its first bytes. */
#define BIND_NAMES_LIMIT (16 * 1024)
/* Describe and Close are small (PostgreSQL's PQ_SMALL_MESSAGE_LIMIT). */
#define SMALL_LIMIT 10000

/*
 * What the session-state probe found so far. Only a client whose probe is
 * in flight needs it, and idle clients are many: allocated when a probe is
 * sent (queue_probe), freed when its answer is applied (probe_apply).
 */
typedef struct pgc_guard_probe {
	int set;                      /* which result set of the probe is arriving */
	uint32_t pinned;              /* pinned state the probe found */
	pgc_params settings;          /* session-level settings the probe found */
} pgc_guard_probe;

static void
probe_free(pgc_guard *g)
{
	if (g->probe)
	{
		pgc_params_free(&g->probe->settings);
		free(g->probe);
		g->probe = NULL;
	}
}

/*
 * The probe. Everything is fully qualified, so that a client's search_path
 * or objects cannot change what it sees. The first result has one row: the
 * counts of pinned state, then the role and the session user.
 */
static const char probe_state_sql[] =
	"SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class"
	" WHERE relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()),"
	" (SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks WHERE locktype OPERATOR(pg_catalog.=) 'advisory'"
	" AND pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()),"
	" (SELECT pg_catalog.count(*) FROM pg_catalog.pg_listening_channels()),"
	" (SELECT pg_catalog.count(*) FROM pg_catalog.pg_cursors WHERE is_holdable),"
	" (SELECT pg_catalog.count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql),"
	" pg_catalog.current_setting('role'), SESSION_USER";
static const char probe_settings_sql[] =
	"; SELECT name, setting FROM pg_catalog.pg_settings WHERE source OPERATOR(pg_catalog.=) 'session'";
static const char probe_custom_sql[] =
	"; SELECT n, pg_catalog.current_setting(n, true) FROM (VALUES ";

#define PROBE_COUNTS 5
#define PROBE_ROLE_COL 5
#define PROBE_SESSION_USER_COL 6

static const uint32_t probe_pin_bits[PROBE_COUNTS] = {
	PGC_SQL_TEMP, PGC_SQL_ADVISORY, PGC_SQL_LISTEN, PGC_SQL_HOLD_CURSOR, PGC_SQL_PREPARE
};

bool
pgc_guard_wanted(const pgc_pool *p)
{
	return pgc_pool_mode_of(p) != PGC_POOL_SESSION && pgc_engine_config()->session_guard;
}

static pgc_guard_result
out_of_memory(pgc_client *c)
{
	pgc_client_fatal(c, "53200", "out of memory");
	return PGC_GUARD_CLOSED;
}

/* A NUL-terminated string at p within n bytes: its length, or -1. */
static long
cstr_len(const uint8_t *p, size_t n)
{
	const uint8_t *z = memchr(p, 0, n);

	return z ? (long) (z - p) : -1;
}

static size_t
body_len(const pgc_cursor *cur)
{
	return (size_t) cur->len - PGC_MSG_LENGTH_SIZE;
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

/* --------------------------------------------------- answers and refusals -- */

/* A client message pgcarrier answers itself: drop it, queue the made-up answer. */
static pgc_guard_result
answer_instead(pgc_client *c, pgc_server *s, pgc_cursor *cur, uint8_t made_up, const char *sqlstate, char *text)
{
	pgc_pending *p = pgc_relay_made_up(s, cur->type, made_up);

	if (p == NULL)
	{
		free(text);
		return out_of_memory(c);
	}
	if (sqlstate)
		memcpy(p->sqlstate, sqlstate, 6);
	p->text = text;
	pgc_relay_drop(c, s, PGC_DIR_TO_SERVER, cur);
	if (made_up == PGC_MADE_UP_ERROR)
		c->guard.drop_until_sync = true;    /* as PostgreSQL does after an error in the extended protocol */
	return PGC_GUARD_DONE;
}

/* A DO block that raises 0A000 with this message and hint, on the server. */
static void
refusal_sql(pgc_msgbuf *out, const char *message, const char *hint)
{
	pgc_msgbuf_text(out, "DO $pgcarrier$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = ");
	pgc_msgbuf_literal(out, message);
	pgc_msgbuf_text(out, ", HINT = ");
	pgc_msgbuf_literal(out, hint);
	pgc_msgbuf_text(out, "; END$pgcarrier$");
}

static void
pinning_refusal_text(char *buf, size_t len, uint32_t flags)
{
	snprintf(buf, len, "%s cannot be used in transaction pooling (session_pinning = error)",
			 pgc_sql_feature_name(flags));
}

static const char pinning_hint[] =
	"Use pool_mode = session for this database or user, or session_pinning = pin.";
static const char sequence_refusal[] =
	"currval() and lastval() cannot be used here in transaction pooling: this session's last nextval() "
	"ran on another server connection";
static const char sequence_hint[] =
	"Call currval() or lastval() in the same transaction as nextval(), use INSERT ... RETURNING, "
	"or use pool_mode = session for this database or user.";

/*
 * Refuse the current message on the server, so that the transaction fails
 * exactly as any error fails it: a Query becomes the raising DO block; any
 * other message is replaced by an extended-protocol run of it, whose error
 * makes the server skip the rest of the client's messages up to Sync.
 */
static pgc_guard_result
refuse_on_server(pgc_client *c, pgc_server *s, pgc_cursor *cur, const char *message, const char *hint)
{
	pgc_msgbuf *out = pgc_relay_inject(c, s, PGC_DIR_TO_SERVER);

	if (out == NULL)
		return out_of_memory(c);
	if (cur->type == PGC_FE_QUERY)
	{
		pgc_msgbuf_begin(out, PGC_FE_QUERY);
		refusal_sql(out, message, hint);
		pgc_msgbuf_byte(out, 0);
		pgc_msgbuf_end(out);
		if (pgc_relay_expect(s, PGC_FE_QUERY, PGC_OWNER_CLIENT) == NULL)
			return out_of_memory(c);
	}
	else
	{
		pgc_msgbuf_begin(out, PGC_FE_PARSE);
		pgc_msgbuf_str(out, "");
		refusal_sql(out, message, hint);
		pgc_msgbuf_byte(out, 0);
		pgc_msgbuf_u16(out, 0);
		pgc_msgbuf_end(out);
		pgc_msgbuf_begin(out, PGC_FE_BIND);
		pgc_msgbuf_str(out, "");
		pgc_msgbuf_str(out, "");
		pgc_msgbuf_u16(out, 0);
		pgc_msgbuf_u16(out, 0);
		pgc_msgbuf_u16(out, 0);
		pgc_msgbuf_end(out);
		pgc_msgbuf_begin(out, PGC_FE_EXECUTE);
		pgc_msgbuf_str(out, "");
		pgc_msgbuf_u32(out, 0);
		pgc_msgbuf_end(out);
		/* Their successes are pgcarrier's; the error is the client's (relay.c forwards it). */
		if (pgc_relay_expect(s, PGC_FE_PARSE, PGC_OWNER_POOLER) == NULL ||
			pgc_relay_expect(s, PGC_FE_BIND, PGC_OWNER_POOLER) == NULL ||
			pgc_relay_expect(s, PGC_FE_EXECUTE, PGC_OWNER_POOLER) == NULL)
			return out_of_memory(c);
	}
	if (out->failed)
		return out_of_memory(c);
	pgc_relay_drop(c, s, PGC_DIR_TO_SERVER, cur);
	return PGC_GUARD_DONE;
}

/* ------------------------------------------------------------- flags -- */

/*
 * With pg_temp in search_path, a plain CREATE TABLE makes a temporary
 * table, which the text does not show: every statement is then checked.
 */
static bool
temp_in_path(const pgc_client *c)
{
	const char *sp = pgc_client_param(c, "search_path");

	return sp && strstr(sp, "pg_temp");
}

static uint32_t
search_path_flags(const pgc_client *c, uint32_t flags, const char **kind)
{
	if (temp_in_path(c))
	{
		if ((flags & ~PGC_SQL_INFO) == 0)
			*kind = "statement with pg_temp in search_path";
		return flags | PGC_SQL_UNKNOWN;
	}
	return flags;
}

/* Statements of this database parsed from now on may mean something else than those parsed before. */
static void
new_ddl_epoch(pgc_client *c)
{
	atomic_fetch_add(&c->pool->db_count->ddl_epoch, 1);
}

static void
note_flags(pgc_client *c, pgc_server *s, uint32_t flags, const char *kind)
{
	pgc_guard *g = &c->guard;

	if (pgc_state_source_of(s)->after_statement(c, flags))
		g->probe_due = true;
	if ((flags & ~PGC_SQL_INFO) && g->kind == NULL)
		g->kind = kind;
	g->flags |= flags;
	if (flags & PGC_SQL_DISCARD_ALL)
		g->discard_at_sync = true;  /* extended protocol; a simple Query clears it at once */
	if (flags & (PGC_SQL_DISCARD_ALL | PGC_SQL_DEALLOCATE | PGC_SQL_RELEASE))
		g->watch_tags = true;
	if (flags & PGC_SQL_DDL)
	{
		/* Now, and again when the transaction ends (a concurrent Parse may see the old catalog). */
		g->txn_ddl = true;
		new_ddl_epoch(c);
	}
}

/* Refuse pinning statements when session_pinning = error. */
static bool
refusal_needed(uint32_t flags)
{
	return (flags & PIN_FLAGS) && pgc_engine_config()->session_pinning == PGC_PIN_ERROR;
}

/* A Query, Sync or FunctionCall of the client ends a unit the server answers with ReadyForQuery. */
static void
unit_sent(pgc_client *c)
{
	pgc_guard *g = &c->guard;

	/* session_pinning = error: what the text did not tell is looked at before anything else runs. */
	if ((g->flags & PGC_SQL_UNKNOWN) && pgc_engine_config()->session_pinning == PGC_PIN_ERROR)
		g->barrier = true;
}

/* Forward the current message as it is, as the end of a unit. */
static pgc_guard_result
forward_unit(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	pgc_guard *g = &c->guard;

	if (pgc_relay_forward(c, s, cur) == NULL)
		return PGC_GUARD_CLOSED;
	unit_sent(c);
	/* A unit that only read, touching no session state: other clients' units may queue behind it. */
	pgc_pipeline_note_unit(c, s, g->unit_clean && !g->pinned && !g->probe_due && !g->barrier,
						   s->pushes - g->unit_mark);
	g->unit_clean = true;
	g->unit_mark = s->pushes;
	return PGC_GUARD_DONE;
}

/* ---------------------------------------------------------- sequences -- */

/* DISCARD SEQUENCES on s, right before the current client message. */
static bool
discard_sequences(pgc_client *c, pgc_server *s)
{
	static const char sql[] = "DISCARD SEQUENCES";
	pgc_msgbuf *out = pgc_relay_inject(c, s, PGC_DIR_TO_SERVER);

	if (out == NULL)
		return false;
	if (!s->unsynced)
	{
		pgc_msgbuf_query(out, sql);
		if (pgc_relay_expect(s, PGC_FE_QUERY, PGC_OWNER_POOLER) == NULL)
			return false;
	}
	else
	{
		/* In the middle of an extended-protocol batch: a Query there would end the batch's transaction. */
		pgc_msgbuf_begin(out, PGC_FE_PARSE);
		pgc_msgbuf_str(out, "");
		pgc_msgbuf_str(out, sql);
		pgc_msgbuf_u16(out, 0);
		pgc_msgbuf_end(out);
		pgc_msgbuf_begin(out, PGC_FE_BIND);
		pgc_msgbuf_str(out, "");
		pgc_msgbuf_str(out, "");
		pgc_msgbuf_u16(out, 0);
		pgc_msgbuf_u16(out, 0);
		pgc_msgbuf_u16(out, 0);
		pgc_msgbuf_end(out);
		pgc_msgbuf_begin(out, PGC_FE_EXECUTE);
		pgc_msgbuf_str(out, "");
		pgc_msgbuf_u32(out, 0);
		pgc_msgbuf_end(out);
		if (pgc_relay_expect(s, PGC_FE_PARSE, PGC_OWNER_POOLER) == NULL ||
			pgc_relay_expect(s, PGC_FE_BIND, PGC_OWNER_POOLER) == NULL ||
			pgc_relay_expect(s, PGC_FE_EXECUTE, PGC_OWNER_POOLER) == NULL)
			return false;
		s->unnamed_owner = 0;
	}
	s->seq_owner = 0;
	return !out->failed;
}

/*
 * Before a statement with these flags runs on s. currval() and lastval()
 * read the backend's sequence state: another client's values on s are
 * discarded first, and a read of this client's own values, which are on
 * another server connection, is refused. Returns PASS to go on.
 */
static pgc_guard_result
sequence_check(pgc_client *c, pgc_server *s, pgc_cursor *cur, uint32_t flags)
{
	pgc_guard *g = &c->guard;
	bool reads = (flags & (PGC_SQL_SEQ_READ | PGC_SQL_UNKNOWN)) != 0;
	bool writes = (flags & (PGC_SQL_SEQ_WRITE | PGC_SQL_UNKNOWN)) != 0;

	if ((flags & PGC_SQL_SEQ_READ) && !(flags & PGC_SQL_SEQ_WRITE) && g->seq_written &&
		s->seq_owner != c->serial)
		return refuse_on_server(c, s, cur, sequence_refusal, sequence_hint);
	if (reads && s->seq_owner != 0 && s->seq_owner != c->serial && !discard_sequences(c, s))
		return out_of_memory(c);
	if (writes)
	{
		s->seq_owner = c->serial;
		g->seq_written = true;
	}
	return PGC_GUARD_PASS;
}

/* --------------------------------------------------------- statements -- */

/*
 * The key part that decides what a statement's text means: shared by the
 * clients of a pool with the same role and search_path, in the database's
 * current DDL epoch; or the client's own.
 */
static bool
client_private(const pgc_client *c)
{
	const pgc_guard *g = &c->guard;

	return g->pinned || (g->flags & PRIVATE_FLAGS) || temp_in_path(c);
}

/*
 * A search_path as it goes into a statement's context: itself when short,
 * else a 64-bit FNV-1a hash of it, so that a long path is never cut to
 * look like another.
 */
static void
path_in_context(const char *sp, char *buf, size_t len)
{
	uint64_t h = 14695981039346656037ULL;

	if (strlen(sp) < 64)
	{
		snprintf(buf, len, "%s", sp);
		return;
	}
	for (const unsigned char *p = (const unsigned char *) sp; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	snprintf(buf, len, "#%016llx", (unsigned long long) h);
}

/*
 * What decides what a text means, and who may share it: the role and the
 * search_path always (the same client parsing the same text under another
 * path needs another statement, as on a direct connection), and either the
 * database's DDL epoch (shared by the pool's clients) or the client itself.
 * While the session state may have changed and the probe has not said how
 * (a SET just before, in the same pipeline or with its answer still on the
 * way), the role and path known here may be stale: the statement is then
 * the client's alone and matches no other Parse.
 */
static void
statement_context(pgc_client *c, char *buf, size_t len)
{
	const char *role = pgc_client_param(c, "role");
	const char *sp = pgc_client_param(c, "search_path");
	char path[80];

	if (c->guard.probe_due || c->guard.probing)
	{
		snprintf(buf, len, PGC_STMT_OWN_PREFIX "%llu unsure %llu", (unsigned long long) c->serial,
				 (unsigned long long) ++c->guard.unsure_parses);
		return;
	}
	path_in_context(sp ? sp : "", path, sizeof(path));
	if (client_private(c))
		snprintf(buf, len, PGC_STMT_OWN_PREFIX "%llu role %s path %s", (unsigned long long) c->serial,
				 role ? role : "", path);
	else
		snprintf(buf, len, "epoch %llu role %s path %s",
				 (unsigned long long) atomic_load(&c->pool->db_count->ddl_epoch), role ? role : "", path);
}

static void note_custom_setting(pgc_guard *g, const char *sql, size_t len);

/*
 * A shared statement the client binds or describes while its session may
 * give the text another meaning (it created a temp table since it prepared
 * it, say): the client's name moves to a copy of its own, prepared fresh,
 * as a direct connection's statement would be analysed again in its new
 * namespace. NULL when out of memory.
 */
static pgc_stmt *
statement_for_now(pgc_client *c, const char *name, pgc_stmt *st)
{
	pgc_stmt_registry *r = &c->pool->stmts;
	size_t cl = strlen((const char *) st->key) + 1;
	char context[200];
	pgc_stmt *mine;

	if (st->own || !client_private(c))
		return st;
	statement_context(c, context, sizeof(context));
	mine = pgc_stmt_intern(r, context, st->key + cl, st->key_len - cl);
	if (mine == NULL)
		return NULL;
	pgc_stmt_unref(r, pgc_stmt_map_take(&c->guard.stmts, name));
	if (!pgc_stmt_map_put(&c->guard.stmts, r, name, mine))
		return NULL;
	return mine;
}

/* Make room in s's cache for one more statement, closing the least recently used one. */
static bool
cache_make_room(pgc_client *c, pgc_server *s, pgc_msgbuf *out)
{
	int max = pgc_engine_config()->max_prepared_statements;

	while (s->stmts.count >= (uint32_t) max)
	{
		pgc_stmt *old = pgc_stmt_cache_pop_lru(&s->stmts);

		if (old == NULL)
			break;
		pgc_msgbuf_begin(out, PGC_FE_CLOSE);
		pgc_msgbuf_byte(out, PGC_TARGET_STATEMENT);
		pgc_msgbuf_str(out, old->name);
		pgc_msgbuf_end(out);
		pgc_stmt_unref(&c->pool->stmts, old);
		if (pgc_relay_expect(s, PGC_FE_CLOSE, PGC_OWNER_POOLER) == NULL)
			return false;
	}
	return true;
}

/* Make sure s has st prepared, injecting a Parse (of pgcarrier's) if not. */
static bool
ensure_prepared(pgc_client *c, pgc_server *s, pgc_stmt *st)
{
	pgc_msgbuf *out;
	pgc_pending *p;

	if (pgc_stmt_cache_touch(&s->stmts, st))
		return true;
	if ((out = pgc_relay_inject(c, s, PGC_DIR_TO_SERVER)) == NULL || !cache_make_room(c, s, out))
		return false;
	pgc_msgbuf_bytes(out, st->parse_msg, st->parse_len);
	if (out->failed || !pgc_stmt_cache_add(&s->stmts, st) ||
		(p = pgc_relay_expect(s, PGC_FE_PARSE, PGC_OWNER_POOLER)) == NULL)
		return false;
	pgc_stmt_ref(st);
	p->st = st;
	return true;
}

/* Make sure s holds the client's unnamed statement, injecting its Parse if not. */
static bool
ensure_unnamed(pgc_client *c, pgc_server *s)
{
	pgc_guard *g = &c->guard;
	const pgc_stmt *st = g->unnamed;
	size_t restlen = st->key_len - strlen((const char *) st->key) - 1;
	pgc_msgbuf *out;
	pgc_pending *p;

	if (s->unnamed_owner == c->serial && s->unnamed_gen == g->unnamed_gen)
		return true;
	if ((out = pgc_relay_inject(c, s, PGC_DIR_TO_SERVER)) == NULL)
		return false;
	pgc_msgbuf_begin(out, PGC_FE_PARSE);
	pgc_msgbuf_str(out, "");
	pgc_msgbuf_bytes(out, pgc_stmt_query(st), restlen);
	pgc_msgbuf_end(out);
	if (out->failed || (p = pgc_relay_expect(s, PGC_FE_PARSE, PGC_OWNER_POOLER)) == NULL)
		return false;
	p->unnamed = true;
	s->unnamed_owner = c->serial;
	s->unnamed_gen = g->unnamed_gen;
	return true;
}

static void
forget_unnamed(pgc_client *c)
{
	pgc_guard *g = &c->guard;

	if (g->unnamed)
		pgc_stmt_unref(&c->pool->stmts, g->unnamed);
	g->unnamed = NULL;
}

/*
 * DEALLOCATE name of one of the client's protocol-level statements, sent as
 * an extended-protocol statement (psycopg does): the server does not know
 * the client's name, so a statement of pgcarrier's own is prepared in front
 * and deallocated in its place, which gives the client the answers it
 * expects, CommandComplete "DEALLOCATE" included.
 */
static bool
deallocate_unnamed(pgc_client *c, pgc_server *s, const uint8_t *query, size_t qlen, pgc_cursor *cur)
{
	static const char dummy[] = "pgc_deallocated";
	/* The Parse tail of the unnamed statement in the client's place: query \0, no parameter types. */
	static const uint8_t replacement[] = "DEALLOCATE pgc_deallocated\0\0\0";
	pgc_guard *g = &c->guard;
	char name[128];
	bool all;
	pgc_stmt *st;
	pgc_msgbuf *out;
	pgc_pending *p;

	if (!pgc_sql_deallocate((const char *) query, qlen, name, sizeof(name), &all) || all ||
		(st = pgc_stmt_map_take(&g->stmts, name)) == NULL)
		return false;
	pgc_stmt_unref(&c->pool->stmts, st);
	forget_unnamed(c);
	st = pgc_stmt_intern(&c->pool->stmts, "unnamed", replacement, sizeof(replacement) - 1);
	if (st == NULL || (out = pgc_relay_inject(c, s, PGC_DIR_TO_SERVER)) == NULL ||
		pgc_relay_expect(s, PGC_FE_PARSE, PGC_OWNER_POOLER) == NULL ||
		(p = pgc_relay_expect(s, PGC_FE_PARSE, PGC_OWNER_CLIENT)) == NULL)
	{
		if (st)
			pgc_stmt_unref(&c->pool->stmts, st);
		return false;
	}
	pgc_msgbuf_begin(out, PGC_FE_PARSE);
	pgc_msgbuf_str(out, dummy);
	pgc_msgbuf_str(out, "SELECT 1");
	pgc_msgbuf_u16(out, 0);
	pgc_msgbuf_end(out);
	pgc_msgbuf_begin(out, PGC_FE_PARSE);
	pgc_msgbuf_str(out, "");
	pgc_msgbuf_bytes(out, replacement, sizeof(replacement) - 1);
	pgc_msgbuf_end(out);
	g->unnamed = st;
	g->unnamed_gen++;
	pgc_stmt_ref(st);
	p->st = st;
	p->unnamed = true;
	s->unnamed_owner = c->serial;
	s->unnamed_gen = g->unnamed_gen;
	pgc_relay_drop(c, s, PGC_DIR_TO_SERVER, cur);
	return true;
}

/* Parse of the unnamed statement: forwarded as it is, and remembered for the client's next server. */
static pgc_guard_result
parse_unnamed(pgc_client *c, pgc_server *s, pgc_cursor *cur, const uint8_t *rest, size_t restlen, long ql)
{
	pgc_guard *g = &c->guard;
	const char *kind = NULL;
	uint32_t flags = pgc_sql_classify((const char *) rest, (size_t) ql, &kind);
	pgc_stmt *st;
	pgc_pending *p;

	if (flags != 0)
		g->unit_clean = false;
	if ((flags & PGC_SQL_DEALLOCATE) && deallocate_unnamed(c, s, rest, (size_t) ql, cur))
		return PGC_GUARD_DONE;
	if (refusal_needed(flags))
	{
		char msg[200];

		pinning_refusal_text(msg, sizeof(msg), flags);
		forget_unnamed(c);
		return refuse_on_server(c, s, cur, msg, pinning_hint);
	}
	if (flags & PGC_SQL_SETTING)
		note_custom_setting(g, (const char *) rest, (size_t) ql);
	st = pgc_stmt_intern(&c->pool->stmts, "unnamed", rest, restlen);
	forget_unnamed(c);
	if (st == NULL)
	{
		/* Malformed: the server says so. */
		return pgc_relay_forward(c, s, cur) ? PGC_GUARD_DONE : PGC_GUARD_CLOSED;
	}
	g->unnamed = st;
	g->unnamed_gen++;
	if ((p = pgc_relay_forward(c, s, cur)) == NULL)
		return PGC_GUARD_CLOSED;
	p->unnamed = true;
	pgc_stmt_ref(st);
	p->st = st;
	s->unnamed_owner = c->serial;
	s->unnamed_gen = g->unnamed_gen;
	return PGC_GUARD_DONE;
}

/* Parse: name \0 query \0 int16 n, n * int32. */
static pgc_guard_result
client_parse(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	pgc_guard *g = &c->guard;
	long nl, ql;
	const uint8_t *body, *rest;
	size_t blen, restlen;
	pgc_msgbuf *out = NULL, rewritten;
	pgc_stmt *st;
	pgc_pending *p;
	const char *kind = NULL;
	uint32_t flags;
	char context[200];

	switch (pgc_relay_whole(c, s, PGC_DIR_TO_SERVER, cur, (size_t) pgc_engine_config()->max_packet_size + 1))
	{
		case 0:
			return PGC_GUARD_WAIT;
		case -1:
			return out_of_memory(c);
	}
	body = cur->body;
	blen = body_len(cur);
	if ((nl = cstr_len(body, blen)) < 0 || (ql = cstr_len(body + nl + 1, blen - (size_t) nl - 1)) < 0)
		return PGC_GUARD_PASS;      /* malformed: the server says so */
	rest = body + nl + 1;
	restlen = blen - (size_t) nl - 1;
	if (nl == 0)
		return parse_unnamed(c, s, cur, rest, restlen, ql);
	if (pgc_stmt_map_get(&g->stmts, (const char *) body))
		return answer_instead(c, s, cur, PGC_MADE_UP_ERROR, "42P05",
							  fmt_dup("prepared statement \"%s\" already exists", (const char *) body));
	flags = pgc_sql_classify((const char *) rest, (size_t) ql, &kind);
	if (flags & PGC_SQL_SETTING)
		note_custom_setting(g, (const char *) rest, (size_t) ql);
	pgc_msgbuf_init(&rewritten);
	if (refusal_needed(flags))
	{
		/* The statement itself becomes the refusal: every Bind of it fails on the server. */
		char msg[200];

		pinning_refusal_text(msg, sizeof(msg), flags);
		refusal_sql(&rewritten, msg, pinning_hint);
		pgc_msgbuf_byte(&rewritten, 0);
		pgc_msgbuf_bytes(&rewritten, rest + ql + 1, restlen - (size_t) ql - 1);
		if (rewritten.failed)
		{
			pgc_msgbuf_free(&rewritten);
			return out_of_memory(c);
		}
		rest = rewritten.data;
		restlen = rewritten.len;
	}
	statement_context(c, context, sizeof(context));
	st = pgc_stmt_intern(&c->pool->stmts, context, rest, restlen);
	pgc_msgbuf_free(&rewritten);
	if (st == NULL)                 /* malformed: let the server say so */
		return PGC_GUARD_PASS;
	pgc_stmt_ref(st);
	if (!pgc_stmt_map_put(&g->stmts, &c->pool->stmts, (const char *) body, st))
	{
		pgc_stmt_unref(&c->pool->stmts, st);
		return out_of_memory(c);
	}
	if (pgc_stmt_cache_touch(&s->stmts, st))
		p = pgc_relay_made_up(s, PGC_FE_PARSE, PGC_MADE_UP_PARSE_COMPLETE);
	else
	{
		if ((out = pgc_relay_inject(c, s, PGC_DIR_TO_SERVER)) == NULL || !cache_make_room(c, s, out))
			return out_of_memory(c);
		pgc_msgbuf_bytes(out, st->parse_msg, st->parse_len);
		if (out->failed || !pgc_stmt_cache_add(&s->stmts, st))
			return out_of_memory(c);
		p = pgc_relay_expect(s, PGC_FE_PARSE, PGC_OWNER_CLIENT);
	}
	if (p == NULL)
		return out_of_memory(c);
	p->st = st;                     /* the reference taken above */
	p->text = strdup((const char *) body);
	pgc_relay_drop(c, s, PGC_DIR_TO_SERVER, cur);
	return PGC_GUARD_DONE;
}

/* The flags of a statement about to be bound: noted, and its sequence use checked. */
static pgc_guard_result
statement_used(pgc_client *c, pgc_server *s, pgc_cursor *cur, const pgc_stmt *st)
{
	const char *kind = st->kind;
	uint32_t flags = search_path_flags(c, st->flags, &kind);

	if (flags != 0)
		c->guard.unit_clean = false;
	note_flags(c, s, flags, kind);
	return sequence_check(c, s, cur, flags);
}

/* Bind: portal \0 statement \0 rest. Only the names need to be here. */
static pgc_guard_result
client_bind(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	pgc_guard *g = &c->guard;
	long pl = -1, sl = -1;
	pgc_guard_result res;
	pgc_stmt *st;
	pgc_msgbuf *out;
	size_t prefix, newlen;

	switch (pgc_relay_prefix(c, s, PGC_DIR_TO_SERVER, cur, BIND_NAMES_LIMIT))
	{
		case 0:
			return PGC_GUARD_WAIT;
		case -1:
			return out_of_memory(c);
	}
	pl = cstr_len(cur->body, cur->have);
	if (pl >= 0)
		sl = cstr_len(cur->body + pl + 1, cur->have - (size_t) pl - 1);
	if (pl < 0 || sl < 0)
	{
		if (cur->whole)
			return PGC_GUARD_PASS;  /* malformed: the server says what is wrong */
		/* Names longer than anything PostgreSQL keeps: never let them reach another client's statements. */
		pgc_client_fatal(c, "08P01", "invalid Bind message: statement name too long");
		return PGC_GUARD_CLOSED;
	}
	if (sl == 0)
	{
		if (g->unnamed == NULL)
			return answer_instead(c, s, cur, PGC_MADE_UP_ERROR, "26000",
								  strdup("unnamed prepared statement does not exist"));
		if ((res = statement_used(c, s, cur, g->unnamed)) != PGC_GUARD_PASS)
			return res;
		if (!ensure_unnamed(c, s))
			return out_of_memory(c);
		return PGC_GUARD_PASS;
	}
	st = pgc_stmt_map_get(&g->stmts, (const char *) cur->body + pl + 1);
	if (st == NULL)
		return answer_instead(c, s, cur, PGC_MADE_UP_ERROR, "26000",
							  fmt_dup("prepared statement \"%s\" does not exist", (const char *) cur->body + pl + 1));
	if ((st = statement_for_now(c, (const char *) cur->body + pl + 1, st)) == NULL)
		return out_of_memory(c);
	if ((res = statement_used(c, s, cur, st)) != PGC_GUARD_PASS)
		return res;
	if (!ensure_prepared(c, s, st) || (out = pgc_relay_inject(c, s, PGC_DIR_TO_SERVER)) == NULL)
		return out_of_memory(c);
	/* The Bind with pgcarrier's name: a new start here, the rest streams from the client. */
	prefix = PGC_MSG_HEADER_SIZE + (size_t) pl + 1 + (size_t) sl + 1;
	newlen = cur->len - (size_t) sl + strlen(st->name);
	pgc_msgbuf_byte(out, PGC_FE_BIND);
	pgc_msgbuf_u32(out, (uint32_t) newlen);
	pgc_msgbuf_bytes(out, cur->body, (size_t) pl + 1);
	pgc_msgbuf_str(out, st->name);
	if (out->failed || pgc_relay_expect(s, PGC_FE_BIND, PGC_OWNER_CLIENT) == NULL)
		return out_of_memory(c);
	pgc_relay_pass_tail(c, s, PGC_DIR_TO_SERVER, cur, prefix);
	return PGC_GUARD_DONE;
}

/* Describe or Close of a statement: 'S' name \0. */
static pgc_guard_result
client_describe_close(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	pgc_guard *g = &c->guard;
	const char *name;
	long nl;
	pgc_stmt *st;
	pgc_msgbuf *out;

	switch (pgc_relay_whole(c, s, PGC_DIR_TO_SERVER, cur, SMALL_LIMIT))
	{
		case 0:
			return PGC_GUARD_WAIT;
		case -1:
			return out_of_memory(c);
	}
	nl = body_len(cur) >= 1 ? cstr_len(cur->body + 1, body_len(cur) - 1) : -1;
	if (nl < 0 || cur->body[0] != PGC_TARGET_STATEMENT)
		return PGC_GUARD_PASS;      /* a portal, or malformed */
	name = (const char *) cur->body + 1;
	if (nl == 0)
	{
		if (cur->type == PGC_FE_CLOSE)
		{
			forget_unnamed(c);
			if (s->unnamed_owner == c->serial)
				s->unnamed_owner = 0;
			return PGC_GUARD_PASS;
		}
		if (g->unnamed == NULL)
			return answer_instead(c, s, cur, PGC_MADE_UP_ERROR, "26000",
								  strdup("unnamed prepared statement does not exist"));
		if (!ensure_unnamed(c, s))
			return out_of_memory(c);
		return PGC_GUARD_PASS;
	}
	if (cur->type == PGC_FE_CLOSE)
	{
		/* The server keeps it for others; the client's name is gone. */
		st = pgc_stmt_map_take(&g->stmts, name);
		if (st)
			pgc_stmt_unref(&c->pool->stmts, st);
		if ((out = pgc_relay_inject(c, s, PGC_DIR_TO_SERVER)) == NULL)
			return out_of_memory(c);
		pgc_msgbuf_begin(out, PGC_FE_CLOSE);
		pgc_msgbuf_byte(out, PGC_TARGET_STATEMENT);
		pgc_msgbuf_str(out, NEVER_PREPARED);
		pgc_msgbuf_end(out);
	}
	else
	{
		if ((st = pgc_stmt_map_get(&g->stmts, name)) == NULL)
			return answer_instead(c, s, cur, PGC_MADE_UP_ERROR, "26000",
								  fmt_dup("prepared statement \"%s\" does not exist", name));
		if ((st = statement_for_now(c, name, st)) == NULL)
			return out_of_memory(c);
		if (!ensure_prepared(c, s, st) || (out = pgc_relay_inject(c, s, PGC_DIR_TO_SERVER)) == NULL)
			return out_of_memory(c);
		pgc_msgbuf_begin(out, PGC_FE_DESCRIBE);
		pgc_msgbuf_byte(out, PGC_TARGET_STATEMENT);
		pgc_msgbuf_str(out, st->name);
		pgc_msgbuf_end(out);
	}
	if (out->failed || pgc_relay_expect(s, cur->type, PGC_OWNER_CLIENT) == NULL)
		return out_of_memory(c);
	pgc_relay_drop(c, s, PGC_DIR_TO_SERVER, cur);
	return PGC_GUARD_DONE;
}

/* ------------------------------------------------------- simple Query -- */

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
 * Whether sql is exactly one RESET name, RESET ALL, SET name TO DEFAULT, or
 * RESET TIME ZONE / SET TIME ZONE DEFAULT|LOCAL (TimeZone): 2 for ALL, 1
 * with the name, 0 otherwise. Anything fancier (comments, quoted names) is
 * left alone.
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
		if (strcmp(name, "time") == 0)
		{
			p = next_word(p, end, w, sizeof(w));
			if (strcmp(w, "zone") != 0)
				return 0;
			snprintf(name, namelen, "timezone");
		}
	}
	else if (strcmp(w, "set") == 0)
	{
		p = next_word(p, end, name, namelen);
		if (strcmp(name, "session") == 0)
			p = next_word(p, end, name, namelen);
		p = next_word(p, end, w, sizeof(w));
		if (strcmp(name, "time") == 0 && strcmp(w, "zone") == 0)
		{
			/* SET TIME ZONE DEFAULT and SET TIME ZONE LOCAL both mean the session's default. */
			p = next_word(p, end, w, sizeof(w));
			if (strcmp(w, "default") != 0 && strcmp(w, "local") != 0)
				return 0;
			snprintf(name, namelen, "timezone");
		}
		else
		{
			if (strcmp(w, "to") != 0 && strcmp(w, "=") != 0)
				return 0;
			p = next_word(p, end, w, sizeof(w));
			if (strcmp(w, "default") != 0)
				return 0;
		}
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
	pgc_params startup = pgc_shared_params_view(c->startup);

	if (kind == 0 || (kind == 1 && pgc_params_get(&startup, name) == NULL))
		return false;
	pgc_msgbuf_begin(out, PGC_FE_QUERY);
	pgc_msgbuf_bytes(out, body, blen - 1);
	pgc_msgbuf_text(out, "\n; SELECT ");
	while (pgc_params_next(&startup, &pos, &k, &v))
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
 * so a Query of pgcarrier's own follows it and restores the startup values;
 * the client's ReadyForQuery waits until that is done, and the client is
 * then told what changed, as a direct connection would tell it.
 */
static pgc_guard_result
discard_all_then_restore(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	pgc_pending *p;
	pgc_msgbuf *out;
	size_t pos = 0, n = 0;
	const char *k, *v;
	pgc_params startup;

	if ((p = pgc_relay_forward(c, s, cur)) == NULL)
		return PGC_GUARD_CLOSED;
	p->holds_ready = true;
	if ((out = pgc_relay_inject(c, s, PGC_DIR_TO_SERVER)) == NULL)
		return out_of_memory(c);
	pgc_msgbuf_begin(out, PGC_FE_QUERY);
	pgc_msgbuf_text(out, "SELECT ");
	startup = pgc_shared_params_view(c->startup);
	while (pgc_params_next(&startup, &pos, &k, &v))
	{
		if (n++)
			pgc_msgbuf_text(out, ", ");
		pgc_msgbuf_set_config(out, k, v);
	}
	pgc_msgbuf_byte(out, 0);
	pgc_msgbuf_end(out);
	if (out->failed || (p = pgc_relay_expect(s, PGC_FE_QUERY, PGC_OWNER_POOLER)) == NULL)
		return out_of_memory(c);
	p->on_answer = PGC_ANSWER_RESTORE;
	unit_sent(c);
	return PGC_GUARD_DONE;
}

/*
 * A Query that may reset settings to the session's start (RESET, SET ...
 * TO DEFAULT, DISCARD ALL): for the client, that start is its startup
 * packet, which the server's own session never saw, so pgcarrier puts the
 * startup values back in the same unit. PASS when there is nothing to do.
 */
static pgc_guard_result
restore_startup_values(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	const char *sql = (const char *) cur->body;
	size_t sqllen = body_len(cur) ? body_len(cur) - 1 : 0;
	pgc_msgbuf *out;
	pgc_pending *p;

	if (c->startup == NULL || body_len(cur) == 0)
		return PGC_GUARD_PASS;
	if (is_discard_all(sql, sqllen))
		return discard_all_then_restore(c, s, cur);
	if ((out = pgc_relay_inject(c, s, PGC_DIR_TO_SERVER)) == NULL)
		return out_of_memory(c);
	if (!rewrite_reset(c, out, cur->body, body_len(cur)))
		return PGC_GUARD_PASS;
	if (out->failed || (p = pgc_relay_expect(s, PGC_FE_QUERY, PGC_OWNER_CLIENT)) == NULL)
		return out_of_memory(c);
	p->trailing = true;
	pgc_relay_drop(c, s, PGC_DIR_TO_SERVER, cur);
	unit_sent(c);
	return PGC_GUARD_DONE;
}

/* Simple Query. */
static pgc_guard_result
client_query(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	pgc_guard *g = &c->guard;
	const char *kind = NULL;
	const char *sql;
	size_t sqllen;
	uint32_t flags;
	char name[128];
	bool all;
	pgc_guard_result res;

	/* A simple Query drops the unnamed statement, on a direct connection too. */
	forget_unnamed(c);
	g->discard_at_sync = false;
	switch (pgc_relay_whole(c, s, PGC_DIR_TO_SERVER, cur, CLASSIFY_LIMIT))
	{
		case 0:
			return PGC_GUARD_WAIT;
		case -1:
			if (cur->total <= CLASSIFY_LIMIT)
				return out_of_memory(c);
			break;
		default:
			break;
	}
	if (!cur->whole)
	{
		g->unit_clean = false;
		note_flags(c, s, PGC_SQL_UNKNOWN, "long query");
		if ((res = sequence_check(c, s, cur, PGC_SQL_UNKNOWN)) != PGC_GUARD_PASS)
			return res;
		return forward_unit(c, s, cur);
	}
	sql = (const char *) cur->body;
	sqllen = body_len(cur) ? body_len(cur) - 1 : 0;
	flags = pgc_sql_classify(sql, sqllen, &kind);
	if (flags != 0)
		g->unit_clean = false;
	if ((flags & PGC_SQL_DEALLOCATE) && pgc_sql_deallocate(sql, sqllen, name, sizeof(name), &all) && !all)
	{
		pgc_stmt *st = pgc_stmt_map_take(&g->stmts, name);

		if (st)
		{
			pgc_stmt_unref(&c->pool->stmts, st);
			return answer_instead(c, s, cur, PGC_MADE_UP_QUERY, NULL, strdup("DEALLOCATE"));
		}
		if (strncmp(name, "pgc_", 4) == 0)
		{
			/* Never let a client reach the statements pgcarrier keeps for everyone. */
			return answer_instead(c, s, cur, PGC_MADE_UP_QUERY, "26000",
								  fmt_dup("prepared statement \"%s\" does not exist", name));
		}
	}
	if (refusal_needed(flags))
	{
		char msg[200];

		pinning_refusal_text(msg, sizeof(msg), flags);
		return refuse_on_server(c, s, cur, msg, pinning_hint);
	}
	flags = search_path_flags(c, flags, &kind);
	if (flags != 0)
		g->unit_clean = false;
	note_flags(c, s, flags, kind);
	if ((res = sequence_check(c, s, cur, flags)) != PGC_GUARD_PASS)
		return res;
	if (flags & PGC_SQL_SETTING)
		note_custom_setting(g, sql, sqllen);
	if (flags & (PGC_SQL_DISCARD_ALL | PGC_SQL_SETTING))
	{
		res = restore_startup_values(c, s, cur);
		if (res != PGC_GUARD_PASS)
			return res;
	}
	return forward_unit(c, s, cur);
}

/* The flags of SQL text (len bytes, not NUL-terminated) as the guard sees them for c. */
static uint32_t
text_flags(const pgc_client *c, const uint8_t *sql, size_t len)
{
	const char *kind;

	return search_path_flags(c, pgc_sql_classify((const char *) sql, len, &kind), &kind);
}

/* A statement that reads only, for c (its search_path may make any statement unknown). */
static bool
stmt_reads_only(const pgc_client *c, const pgc_stmt *st)
{
	const char *kind = st->kind;

	return search_path_flags(c, st->flags, &kind) == 0;
}

bool
pgc_guard_pipelinable(const pgc_client *c, const uint8_t *m, size_t n)
{
	const pgc_guard *g = &c->guard;
	bool unnamed_ok = g->unnamed && stmt_reads_only(c, g->unnamed);

	if (g->pinned || g->probe_due || g->probing || g->barrier || g->drop_until_sync || g->discard_at_sync ||
		c->held_ready)
		return false;
	for (size_t pos = 0; pos < n;)
	{
		uint8_t type = m[pos];
		size_t blen = pgc_get_u32(m + pos + 1) - PGC_MSG_LENGTH_SIZE;
		const uint8_t *body = m + pos + PGC_MSG_HEADER_SIZE;
		long nl, ql;
		const pgc_stmt *st;

		switch (type)
		{
			case PGC_FE_QUERY:
				if (blen == 0 || body[blen - 1] != '\0' || text_flags(c, body, blen - 1) != 0)
					return false;
				break;
			case PGC_FE_PARSE:
				/* Only the unnamed statement: a named one would exist twice if the unit ran again. */
				if ((nl = cstr_len(body, blen)) != 0 || (ql = cstr_len(body + 1, blen - 1)) < 0 ||
					text_flags(c, body + 1, (size_t) ql) != 0)
					return false;
				unnamed_ok = true;
				break;
			case PGC_FE_BIND:
				if ((nl = cstr_len(body, blen)) < 0 || (ql = cstr_len(body + nl + 1, blen - (size_t) nl - 1)) < 0)
					return false;
				if (ql == 0 ? !unnamed_ok
					: ((st = pgc_stmt_map_get(&g->stmts, (const char *) body + nl + 1)) == NULL ||
					   !stmt_reads_only(c, st)))
					return false;
				break;
			case PGC_FE_DESCRIBE:
				if (blen < 1 || body[0] != PGC_TARGET_PORTAL)
					return false;
				break;
			case PGC_FE_EXECUTE:
				break;
			case PGC_FE_SYNC:
				if (pos + blen + PGC_MSG_HEADER_SIZE != n)
					return false;
				break;
			default:
				return false;
		}
		pos += blen + PGC_MSG_HEADER_SIZE;
	}
	return true;
}


/* The first word of a Query, if it is one that may need the startup values back. */
static bool
may_reset(pgc_client *c, pgc_server *s, pgc_cursor *cur, int *ready)
{
	static const char *const words[] = {"reset", "set", "discard"};
	const char *p, *end;
	char w[16];

	*ready = pgc_relay_prefix(c, s, PGC_DIR_TO_SERVER, cur, 64);
	if (*ready <= 0)
		return false;
	p = (const char *) cur->body;
	end = p + cur->have;
	next_word(p, end, w, sizeof(w));
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(w, words[i]) == 0)
			return true;
	return false;
}

pgc_guard_result
pgc_guard_unguarded_query(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	int ready;

	if (c->startup == NULL)
		return PGC_GUARD_PASS;
	if (!may_reset(c, s, cur, &ready))
		return ready == 0 ? PGC_GUARD_WAIT : PGC_GUARD_PASS;
	switch (pgc_relay_whole(c, s, PGC_DIR_TO_SERVER, cur, CLASSIFY_LIMIT))
	{
		case 0:
			return PGC_GUARD_WAIT;
		case -1:
			return PGC_GUARD_PASS;
	}
	return restore_startup_values(c, s, cur);
}

pgc_guard_result
pgc_guard_client_msg(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	pgc_guard *g = &c->guard;

	if (cur->type == PGC_FE_TERMINATE)
		return PGC_GUARD_PASS;
	if (g->drop_until_sync && cur->type != PGC_FE_SYNC)
	{
		/* As PostgreSQL does after an error in an extended-query message. */
		pgc_relay_drop(c, s, PGC_DIR_TO_SERVER, cur);
		g->unit_clean = false;
		return PGC_GUARD_DONE;
	}
	/* What may be more than a read, as far as pipelining goes (pipeline.h). */
	switch (cur->type)
	{
		case PGC_FE_QUERY:
		case PGC_FE_BIND:
		case PGC_FE_DESCRIBE:
		case PGC_FE_EXECUTE:
		case PGC_FE_SYNC:
			break;
		case PGC_FE_PARSE:
			if (cur->have < 1 || cur->body[0] != '\0')
				g->unit_clean = false;      /* a named statement: made once only */
			break;
		default:
			g->unit_clean = false;
			break;
	}
	switch (cur->type)
	{
		case PGC_FE_SYNC:
			g->drop_until_sync = false;
			if (g->discard_at_sync)
			{
				g->unit_clean = false;
				g->discard_at_sync = false;
				if (c->startup)
					return discard_all_then_restore(c, s, cur);
			}
			return forward_unit(c, s, cur);
		case PGC_FE_FUNCTION_CALL:
		{
			pgc_guard_result res;

			note_flags(c, s, PGC_SQL_UNKNOWN, "function call message");
			if ((res = sequence_check(c, s, cur, PGC_SQL_UNKNOWN)) != PGC_GUARD_PASS)
				return res;
			return forward_unit(c, s, cur);
		}
		case PGC_FE_QUERY:
			return client_query(c, s, cur);
		case PGC_FE_PARSE:
			return client_parse(c, s, cur);
		case PGC_FE_BIND:
			return client_bind(c, s, cur);
		case PGC_FE_DESCRIBE:
		case PGC_FE_CLOSE:
			return client_describe_close(c, s, cur);
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

/* Column i of a DataRow copied into buf as a C string; false when NULL, missing or too long. */
static bool
datarow_str(const uint8_t *body, size_t blen, int i, char *buf, size_t buflen)
{
	size_t vl = 0;
	const char *v = datarow_col(body, blen, i, &vl);

	if (v == NULL || vl >= buflen)
		return false;
	memcpy(buf, v, vl);
	buf[vl] = 0;
	return true;
}

/* The probe's first row: pinned state, the role, the session user. */
static void
probe_state_row(pgc_client *c, pgc_server *s, const uint8_t *body, size_t blen)
{
	pgc_guard *g = &c->guard;
	pgc_guard_probe *pr = g->probe;
	char v[256];

	for (int i = 0; i < PROBE_COUNTS; i++)
	{
		if (!datarow_str(body, blen, i, v, sizeof(v)))
			g->probe_failed = true;
		else if (strcmp(v, "0") != 0)
			pr->pinned |= probe_pin_bits[i];
	}
	if (!datarow_str(body, blen, PROBE_ROLE_COL, v, sizeof(v)))
		g->probe_failed = true;
	else if (strcmp(v, "none") != 0)
		pgc_params_set(&pr->settings, "role", v);
	if (!datarow_str(body, blen, PROBE_SESSION_USER_COL, v, sizeof(v)))
		g->probe_failed = true;
	else if (strcmp(v, s->pool->user) != 0)
		pr->pinned |= PGC_SQL_SESSION_AUTH;
}

static void
probe_row(pgc_client *c, pgc_server *s, const uint8_t *body, size_t blen)
{
	pgc_guard *g = &c->guard;
	pgc_guard_probe *pr = g->probe;
	char key[128], val[1024];
	size_t vl;

	if (pr == NULL)
	{
		g->probe_failed = true;     /* cannot happen: a probe is sent with its record */
		return;
	}
	if (pr->set == 0)
	{
		probe_state_row(c, s, body, blen);
		return;
	}
	if (!datarow_str(body, blen, 0, key, sizeof(key)))
	{
		g->probe_failed = true;
		return;
	}
	if (datarow_col(body, blen, 1, &vl) == NULL && pr->set == 2)
		return;                     /* an extension setting that does not exist (any more) */
	if (!datarow_str(body, blen, 1, val, sizeof(val)))
	{
		g->probe_failed = true;
		return;
	}
	/*
	 * transaction_isolation and friends show the probe's own transaction;
	 * replaying them would fail ("must be called before any query").
	 */
	if (strncmp(key, "transaction_", 12) == 0)
		return;
	pgc_params_set(&pr->settings, key, val);
}

static void set_pinned(pgc_client *c, uint32_t pinned);

/* What the probe found becomes the client's and the server's view. */
static void
probe_apply(pgc_client *c, pgc_server *s)
{
	pgc_guard *g = &c->guard;
	pgc_guard_probe *pr = g->probe;
	uint32_t pinned = g->probe_failed || pr == NULL ? PGC_SQL_UNKNOWN : pr->pinned;

	if (!g->probe_failed && pr)
	{
		pgc_params nc = {0}, ns = {0};
		pgc_params mine = pgc_client_params(c);
		size_t pos = 0;
		const char *k, *v;

		while (pgc_params_next(&mine, &pos, &k, &v))
			if (pgc_param_is_reported(k))
				pgc_params_set(&nc, k, v);
		pos = 0;
		while (pgc_params_next(&s->params, &pos, &k, &v))
			if (pgc_param_is_reported(k))
				pgc_params_set(&ns, k, v);
		pos = 0;
		while (pgc_params_next(&pr->settings, &pos, &k, &v))
		{
			if (pgc_param_is_reported(k))
				continue;
			pgc_params_set(&nc, k, v);
			pgc_params_set(&ns, k, v);
		}
		/* RESET of a startup parameter goes back to the startup value, as with PostgreSQL. */
		pos = 0;
		pgc_params startup = pgc_shared_params_view(c->startup);
		while (pgc_params_next(&startup, &pos, &k, &v))
			if (!pgc_param_is_reported(k) && !pgc_params_get(&pr->settings, k))
				pgc_params_set(&nc, k, v);
		pgc_client_params_replace(c, &nc);
		pgc_params_free(&nc);
		pgc_params_free(&s->params);
		s->params = ns;
	}
	probe_free(g);
	set_pinned(c, pinned);
}

/* The client holds this pinned state now (sqlclass flags; 0: none). */
static void
set_pinned(pgc_client *c, uint32_t pinned)
{
	pgc_guard *g = &c->guard;

	if (pinned && !g->pinned)
	{
		atomic_fetch_add(&c->worker->engine->pins_total, 1);
		pgc_log(PGC_LOG, "client %s (%s/%s) pinned to its server connection: %s (%s)",
				pgc_client_addr(c), c->dbname, c->user, pgc_sql_feature_name(pinned), g->kind ? g->kind : "statement");
	}
	else if (!pinned && g->pinned)
		pgc_log(PGC_LOG, "client %s (%s/%s) unpinned: its session state is gone",
				pgc_client_addr(c), c->dbname, c->user);
	pgc_stats_pin(c, g->pinned, pinned);
	g->pinned = pinned;
	g->kind = NULL;
}

pgc_guard_result
pgc_guard_pooler_msg(pgc_client *c, pgc_server *s, pgc_pending *p, pgc_cursor *cur)
{
	pgc_guard *g = &c->guard;

	if (p->on_answer != PGC_ANSWER_PROBE)
		return PGC_GUARD_PASS;
	switch (pgc_relay_whole(c, s, PGC_DIR_TO_CLIENT, cur, CLASSIFY_LIMIT))
	{
		case 0:
			return PGC_GUARD_WAIT;
		case -1:
			return PGC_GUARD_FAIL;
	}
	switch (cur->type)
	{
		case PGC_BE_DATA_ROW:
			probe_row(c, s, cur->body, body_len(cur));
			break;
		case PGC_BE_COMMAND_COMPLETE:
			if (g->probe)
				g->probe->set++;
			break;
		case PGC_BE_ERROR:
			{
				const char *m = pgc_error_field(cur->body, body_len(cur), PGC_ERRF_MESSAGE);

				pgc_log(PGC_WARNING, "client %s: the session-state probe failed: %s", pgc_client_addr(c), m ? m : "?");
				g->probe_failed = true;
			}
			break;
		case PGC_BE_READY_FOR_QUERY:
			g->probing = false;
			g->barrier = false;
			probe_apply(c, s);
			if (g->pinned && pgc_engine_config()->session_pinning == PGC_PIN_ERROR)
			{
				/* State the classifier could not see coming; it cannot be undone quietly. */
				s->needs_discard = true;
				pgc_client_fatal(c, "0A000", "%s cannot be used in transaction pooling (session_pinning = error)",
								 pgc_sql_feature_name(g->pinned));
				return PGC_GUARD_CLOSED;
			}
			break;
		default:
			break;
	}
	return PGC_GUARD_PASS;
}

/* A CommandComplete: DISCARD and DEALLOCATE ALL take session state with them. */
static void
watch_tag(pgc_client *c, pgc_server *s, const uint8_t *body, size_t blen)
{
	const char *tag = (const char *) body;

	if (blen == 0 || body[blen - 1] != 0)
		return;
	if (strcmp(tag, "DISCARD ALL") == 0 || strcmp(tag, "DEALLOCATE ALL") == 0)
	{
		pgc_stmt_map_clear(&c->guard.stmts, &c->pool->stmts);
		pgc_stmt_cache_clear(&s->stmts, &c->pool->stmts);
	}
	if (strcmp(tag, "DISCARD ALL") == 0 || strcmp(tag, "DISCARD SEQUENCES") == 0)
	{
		s->seq_owner = 0;
		c->guard.seq_written = false;
	}
}

pgc_guard_result
pgc_guard_server_msg(pgc_client *c, pgc_server *s, pgc_pending *p, pgc_cursor *cur)
{
	pgc_guard *g = &c->guard;

	if (p->kind == PGC_FE_QUERY && p->trailing &&
		(cur->type == PGC_BE_ROW_DESCRIPTION || cur->type == PGC_BE_DATA_ROW ||
		 cur->type == PGC_BE_COMMAND_COMPLETE))
	{
		/* The client's own statement completes first; what follows is pgcarrier's SELECT. */
		if (cur->type == PGC_BE_COMMAND_COMPLETE && !p->seen_complete)
		{
			p->seen_complete = true;
			return PGC_GUARD_PASS;
		}
		if (p->seen_complete)
		{
			pgc_relay_drop(c, s, PGC_DIR_TO_CLIENT, cur);
			return PGC_GUARD_DONE;
		}
	}
	if (cur->type == PGC_BE_COMMAND_COMPLETE && g->watch_tags)
	{
		int w = pgc_relay_whole(c, s, PGC_DIR_TO_CLIENT, cur, SMALL_LIMIT);

		if (w == 0)
			return PGC_GUARD_WAIT;
		if (w > 0)
			watch_tag(c, s, cur->body, body_len(cur));
	}
	return PGC_GUARD_PASS;
}

void
pgc_guard_entry_done(pgc_client *c, pgc_server *s, pgc_pending *p, bool failed)
{
	pgc_guard *g = &c->guard;
	pgc_stmt_registry *r = &c->pool->stmts;

	if (!failed || p->kind != PGC_FE_PARSE)
		return;
	if (p->unnamed)
	{
		/* The server has no unnamed statement now, nor does the client (it was dropped first). */
		if (p->owner == PGC_OWNER_CLIENT && g->unnamed && g->unnamed == p->st)
			forget_unnamed(c);
		s->unnamed_owner = 0;
		return;
	}
	if (p->st == NULL)
		return;
	if (!p->made_up)
		pgc_stmt_cache_remove(&s->stmts, r, p->st);
	if (p->text && pgc_stmt_map_get(&g->stmts, p->text) == p->st)
		pgc_stmt_unref(r, pgc_stmt_map_take(&g->stmts, p->text));
}

void
pgc_guard_backend_report(pgc_client *c, pgc_server *s, const char *value)
{
	/* relay.c keeps what it says in s->report_cycle; the lexer's servers never report. */
	if (pgc_state_source_of(s)->after_report(c, value))
		c->guard.probe_due = true;
}

void
pgc_guard_ready(pgc_client *c, pgc_server *s, char status)
{
	pgc_guard *g = &c->guard;

	if (status != PGC_TXN_IDLE)
		return;
	if (g->txn_ddl)
	{
		g->txn_ddl = false;
		new_ddl_epoch(c);
	}
	if (pgc_relay_in_flight(s) == 0)
		g->watch_tags = false;
}

/* ------------------------------------------------------ release points -- */

void
pgc_guard_attach(pgc_client *c, pgc_server *s)
{
	c->guard.on = pgc_guard_wanted(c->pool);
	c->guard.drop_until_sync = false;
	c->guard.unit_clean = true;
	c->guard.unit_mark = s->pushes;
	s->report_cycle = 0;
}

/* Ask s what session state it holds: one Query, pgcarrier's. */
static pgc_guard_hold
queue_probe(pgc_client *c, pgc_server *s)
{
	pgc_guard *g = &c->guard;
	pgc_msgbuf *out = pgc_msgbuf_ensure(&s->out);
	pgc_pending *p;

	g->flags = 0;
	g->probe_due = false;
	probe_free(g);                  /* one left by a probe that never finished (its server was lost) */
	if (out == NULL || (g->probe = calloc(1, sizeof(*g->probe))) == NULL)
	{
		/* Cannot look: treat as pinned, which is always safe. */
		g->pinned |= PGC_SQL_UNKNOWN;
		g->barrier = false;
		return PGC_HOLD_KEEP;
	}
	pgc_msgbuf_begin(out, PGC_FE_QUERY);
	pgc_msgbuf_text(out, probe_state_sql);
	pgc_msgbuf_text(out, probe_settings_sql);
	if (g->custom.len)
	{
		size_t pos = 0, n = 0;
		const char *k, *v;

		pgc_msgbuf_text(out, probe_custom_sql);
		while (pgc_params_next(&g->custom, &pos, &k, &v))
		{
			if (n++)
				pgc_msgbuf_text(out, ", ");
			pgc_msgbuf_byte(out, '(');
			pgc_msgbuf_literal(out, k);
			pgc_msgbuf_byte(out, ')');
		}
		pgc_msgbuf_text(out, ") v(n)");
	}
	pgc_msgbuf_byte(out, 0);
	pgc_msgbuf_end(out);
	if (out->failed || (p = pgc_relay_expect(s, PGC_FE_QUERY, PGC_OWNER_POOLER)) == NULL)
	{
		g->pinned |= PGC_SQL_UNKNOWN;
		g->barrier = false;
		return PGC_HOLD_KEEP;
	}
	p->on_answer = PGC_ANSWER_PROBE;
	g->probing = true;
	g->probe_failed = false;
	return PGC_HOLD_PROBING;
}

/*
 * A reporting backend said, before its last idle ReadyForQuery, what
 * pinned state the session holds (state.h); a changed session
 * authorization is in its session_authorization.
 */
static pgc_guard_hold
apply_report(pgc_client *c, pgc_server *s)
{
	pgc_guard *g = &c->guard;
	uint32_t pinned = s->report_pinned;
	const char *sa = pgc_params_get(&s->params, "session_authorization");

	if (sa && strcmp(sa, s->pool->user) != 0)
		pinned |= PGC_SQL_SESSION_AUTH;
	if (pinned && g->kind == NULL)
		g->kind = "reported by the server";
	set_pinned(c, pinned);
	g->flags = 0;
	g->kind = NULL;
	if (g->pinned && pgc_engine_config()->session_pinning == PGC_PIN_ERROR)
	{
		s->needs_discard = true;
		pgc_client_fatal(c, "0A000", "%s cannot be used in transaction pooling (session_pinning = error)",
						 pgc_sql_feature_name(g->pinned));
		return PGC_HOLD_CLOSED;
	}
	return g->pinned ? PGC_HOLD_KEEP : PGC_HOLD_RELEASE;
}

pgc_guard_hold
pgc_guard_keep_server(pgc_client *c, pgc_server *s)
{
	pgc_guard *g = &c->guard;

	if (g->probe_due)
		return queue_probe(c, s);
	if (s->reports)
		return apply_report(c, s);
	g->flags = 0;
	g->kind = NULL;
	return g->pinned ? PGC_HOLD_KEEP : PGC_HOLD_RELEASE;
}

pgc_guard_hold
pgc_guard_at_barrier(pgc_client *c, pgc_server *s)
{
	pgc_guard *g = &c->guard;

	/*
	 * Inside a transaction block the state is not final (ON COMMIT DROP,
	 * transaction-level locks): the client goes on, and is looked at when
	 * the block ends, before its next transaction.
	 */
	if (s->txn_status != PGC_TXN_IDLE)
	{
		g->barrier = false;
		return PGC_HOLD_RELEASE;
	}
	return queue_probe(c, s);
}

void
pgc_guard_detach(pgc_client *c, pgc_server *s)
{
	pgc_guard *g = &c->guard;

	if (!g->on)
		return;
	if (g->pinned || (g->flags & ~PGC_SQL_INFO) || g->probe_due || g->probing || pgc_relay_in_flight(s))
		s->needs_discard = true;
	g->pinned = 0;
	g->flags = 0;
	g->probe_due = false;
	g->kind = NULL;
	g->drop_until_sync = false;
	g->barrier = false;
	g->probing = false;
}

void
pgc_guard_client_free(pgc_client *c)
{
	pgc_guard *g = &c->guard;

	if (c->pool == NULL)
		return;                     /* never logged in: nothing was made */
	pgc_params_free(&g->custom);
	probe_free(g);
	forget_unnamed(c);
	pgc_stmt_map_clear(&g->stmts, &c->pool->stmts);
}
