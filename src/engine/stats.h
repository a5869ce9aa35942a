/*
 * stats.h - what pgcarrier's clients did, counted where it happens; read
 * by the admin console (show.c), /metrics (metrics.c) and, later, the
 * extension's SQL views. Listings of clients and servers are census.h's.
 *
 * Data model. Counters are kept per database (the client-visible name)
 * and, within a database, per worker thread: a block of 64-bit counters,
 * cache-line aligned, for each worker. A worker writes only its own block,
 * with a relaxed atomic load and store (plain moves on x86: no locked
 * instruction, no lock, no cache line another thread writes), so counting
 * on the forwarding path costs a few stores into lines the worker owns. A
 * reader sums the blocks of every worker with relaxed loads: a total may
 * miss the last moment's increments, but never tears and never goes back.
 * Each database has one more block for counts made off a worker thread,
 * updated with atomic adds (nothing on the forwarding path uses it).
 * Databases are added on first use and never freed nor reset while the
 * engine runs.
 *
 * What is counted, per database (PgBouncer's SHOW STATS meanings where it
 * has them):
 *   assignments   a server connection was assigned to a client
 *   xacts         transactions: a ReadyForQuery with status idle that ends
 *                 the client's own statements (pgcarrier's are not counted)
 *   queries       ReadyForQuery answers to the client's own statements (a
 *                 simple Query, a Sync, a FunctionCall: one each)
 *   recv, sent    bytes read from its clients / from servers for them
 *   xact_us       time from a transaction's first message reaching its
 *                 server to its end; query_us the same for each query
 *   wait_us       time clients waited for a server connection (0 for a
 *                 client that got one at once), and a histogram of it
 *   client_parses, binds  Parse and Bind messages from clients;
 *   server_parses Parse messages pgcarrier sent to servers (the guard's
 *                 own included)
 *   swaps         a client was assigned another server than last time
 *   pins          a client was pinned (and, per reason, each kind of state
 *                 that pinned it)
 *   errors        ErrorResponses clients got, per SQLSTATE class (from the
 *                 server, or made by pgcarrier)
 *   servers_lost  server connections that died while in use
 *   exhausted     a client had to wait because every server was busy and
 *                 the pool was at pool_size (one per episode)
 *   logins        clients that logged in
 * Errors of clients that never named a known database are counted under
 * the pseudo-database "(none)", which SHOW STATS does not list.
 *
 * Averages are over the last complete window of stats_period seconds:
 * worker 0 takes a snapshot of every database's totals at the end of each
 * window (pgc_stats_tick), and the averages are the increase over it, per
 * second, or per transaction/query/assignment for times. log_stats writes
 * them once per window. Wait-time percentiles come from the increase of
 * the histogram over the same window.
 *
 * Threading: the inline hooks below run on the client's worker (c->stat
 * is its worker's block). Readers may run on any thread; they take the
 * stats lock (the list of databases, the window snapshots), which nests
 * inside the engine's config lock and the pool locks, and never wait for
 * a worker. With stats = off, clients get no block (c->stat is NULL) and
 * every hook returns at its first test.
 */
#ifndef PGC_STATS_H
#define PGC_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core.h"

enum pgc_stat_counter {
	PGC_STAT_ASSIGNMENTS = 0,
	PGC_STAT_XACTS,
	PGC_STAT_QUERIES,
	PGC_STAT_RECV,
	PGC_STAT_SENT,
	PGC_STAT_XACT_US,
	PGC_STAT_QUERY_US,
	PGC_STAT_WAIT_US,
	PGC_STAT_CLIENT_PARSES,
	PGC_STAT_SERVER_PARSES,
	PGC_STAT_BINDS,
	PGC_STAT_SWAPS,
	PGC_STAT_PINS,
	PGC_STAT_ERRORS,
	PGC_STAT_SERVERS_LOST,
	PGC_STAT_EXHAUSTED,
	PGC_STAT_LOGINS,
	PGC_STAT_N
};

/* The wait histogram: bucket i counts waits <= pgc_stat_wait_bounds_us[i]; the last is +Inf. */
#define PGC_STAT_WAIT_BUCKETS 20
extern const uint64_t pgc_stat_wait_bounds_us[PGC_STAT_WAIT_BUCKETS - 1];

/* SQLSTATE classes (PostgreSQL's, "00" ... "XX"), and one for anything else. */
#define PGC_STAT_SQLSTATE_CLASSES 44
/* Kinds of pinned state (sqlclass.h's PGC_SQL_PINNED bits). */
#define PGC_STAT_PIN_REASONS 7

typedef struct pgc_stat_block {
	_Alignas(64) _Atomic uint64_t n[PGC_STAT_N];
	_Atomic uint64_t wait_hist[PGC_STAT_WAIT_BUCKETS];
	_Atomic uint64_t errors[PGC_STAT_SQLSTATE_CLASSES];
	_Atomic uint64_t pins[PGC_STAT_PIN_REASONS];
} pgc_stat_block;

/* The same counters as plain numbers: a sum of blocks, or a difference of two sums. */
typedef struct pgc_stat_values {
	uint64_t n[PGC_STAT_N];
	uint64_t wait_hist[PGC_STAT_WAIT_BUCKETS];
	uint64_t errors[PGC_STAT_SQLSTATE_CLASSES];
	uint64_t pins[PGC_STAT_PIN_REASONS];
} pgc_stat_values;

/* One database's counters. */
typedef struct pgc_dbstats pgc_dbstats;

/* Per worker thread: its event loop's work, written by that worker only. */
typedef struct pgc_worker_stats {
	_Alignas(64) _Atomic uint64_t loops;    /* returns of its wait for events (poller.h) */
	_Atomic uint64_t events;                /* events handled */
	_Atomic uint64_t pipelined;             /* units sent behind another client's (pipeline.h) */
	_Atomic uint64_t pipeline_reruns;       /* ... whose answers were dropped and that ran again */
} pgc_worker_stats;

/* ---- the engine's side ---- */

/* Set up e->stats for e->n_workers workers. 0, or -1 (out of memory). */
int pgc_stats_init(pgc_engine *e);
void pgc_stats_free(pgc_engine *e);
/* The counters of database name, made on first use. Any thread. NULL when out of memory. */
pgc_dbstats *pgc_stats_db(pgc_engine *e, const char *name);
/* Worker 0, every tick: close the window when stats_period is over, and write log_stats. */
void pgc_stats_tick(pgc_engine *e, double now);

/* ---- hooks, on the thread that owns what they count ---- */

static inline void
pgc_stat_add(pgc_stat_block *b, int i, uint64_t by)
{
	/* One writer per block: a relaxed load and store, no read-modify-write. */
	atomic_store_explicit(&b->n[i], atomic_load_explicit(&b->n[i], memory_order_relaxed) + by,
						  memory_order_relaxed);
}

/* c logged in (or began to, its database known): it counts from now on. */
void pgc_stats_login(pgc_client *c);
/* c logged in: its credentials were good. */
static inline void
pgc_stats_logged_in(pgc_client *c)
{
	if (c->stat)
		pgc_stat_add(c->stat, PGC_STAT_LOGINS, 1);
}

/* Bytes read from the client / from its server. */
static inline void
pgc_stats_recv(pgc_client *c, long n)
{
	if (c->stat && n > 0)
		pgc_stat_add(c->stat, PGC_STAT_RECV, (uint64_t) n);
}

static inline void
pgc_stats_sent(pgc_client *c, long n)
{
	if (c->stat && n > 0)
		pgc_stat_add(c->stat, PGC_STAT_SENT, (uint64_t) n);
}

/* A message of the client's goes to its server (relay.c): a query and a transaction may begin. */
static inline void
pgc_stats_client_msg(pgc_client *c, uint8_t type)
{
	pgc_stat_block *b = c->stat;

	if (b == NULL)
		return;
	if (c->st_query_start == 0)
		c->st_query_start = c->worker->now;
	if (c->st_xact_start == 0)
		c->st_xact_start = c->worker->now;
	if (type == PGC_FE_PARSE)
		pgc_stat_add(b, PGC_STAT_CLIENT_PARSES, 1);
	else if (type == PGC_FE_BIND)
		pgc_stat_add(b, PGC_STAT_BINDS, 1);
}

/* The server answered one of the client's statements with ReadyForQuery(status). */
void pgc_stats_ready(pgc_client *c, pgc_server *s, char status);
/* s is assigned to c (relay.c, before c's state changes): wait time, swaps. */
void pgc_stats_link(pgc_client *c, pgc_server *s);
/* A Parse goes to server s (relay.c). */
static inline void
pgc_stats_server_parse(pgc_server *s)
{
	if (s->client && s->client->stat)
		pgc_stat_add(s->client->stat, PGC_STAT_SERVER_PARSES, 1);
}

/*
 * An ErrorResponse from s at the cursor (relay.c): counted by its SQLSTATE
 * class if it goes to the client. False when its first bytes, which hold
 * the SQLSTATE, have not all arrived: the relay waits for them.
 */
struct pgc_cursor;
bool pgc_stats_server_error(pgc_client *c, pgc_server *s, struct pgc_cursor *cur);
/* pgcarrier itself sent c an error with this SQLSTATE, or this whole ErrorResponse. */
void pgc_stats_error(pgc_client *c, const char *sqlstate);
void pgc_stats_error_msg(pgc_client *c, const pgc_msgbuf *err);
/* The guard's view of what pins c changes from was to now (sqlclass flags). */
void pgc_stats_pin(pgc_client *c, uint32_t was, uint32_t now);
/* s died while serving c (c may be NULL: while being reset): count it and log one line (rate-limited). */
void pgc_stats_server_lost(pgc_client *c, pgc_server *s, const char *why);
/* p made a client wait with every server busy; first of an episode. After p's lock is let go. */
void pgc_stats_pool_exhausted(pgc_pool *p, int servers, int pool_size);
/* Worker w's event loop woke with n events. */
static inline void
pgc_stats_loop(pgc_worker *w, int n)
{
	pgc_worker_stats *ws = w->stats;

	if (ws == NULL)
		return;
	atomic_store_explicit(&ws->loops, atomic_load_explicit(&ws->loops, memory_order_relaxed) + 1,
						  memory_order_relaxed);
	if (n > 0)
		atomic_store_explicit(&ws->events, atomic_load_explicit(&ws->events, memory_order_relaxed) +
							  (uint64_t) n, memory_order_relaxed);
}

/* Add one to a counter of w's (written by w only: no read-modify-write needed). */
static inline void
pgc_stats_worker_add(pgc_worker *w, _Atomic uint64_t *counter)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* ---- readers, any thread ---- */

/* One database as the console and /metrics see it. */
typedef struct pgc_stat_row {
	const char *name;             /* lives as long as the engine */
	pgc_stat_values total;        /* since start, now */
	pgc_stat_values window;       /* the increase over the last complete window */
	double window_seconds;        /* its length; 0 before the first window is complete */
} pgc_stat_row;

/*
 * Every database with counters, sorted by name, into a malloc'd array
 * (*rows, to free); with_none adds "(none)" last. The count, or -1 (out
 * of memory).
 */
int pgc_stats_rows(pgc_engine *e, bool with_none, pgc_stat_row **rows);
/* Sum of rows (for totals): name "total", the same windows. */
void pgc_stats_sum_rows(const pgc_stat_row *rows, int n, pgc_stat_row *out);
/* Worker i's loop counters. */
void pgc_stats_worker(pgc_engine *e, int i, uint64_t *loops, uint64_t *events);
/* Worker i's pipelining counters. */
void pgc_stats_worker_pipeline(pgc_engine *e, int i, uint64_t *pipelined, uint64_t *reruns);

/* The q-quantile (0..1) of a wait histogram, in microseconds (interpolated in its bucket); 0 if empty. */
double pgc_stats_wait_quantile(const uint64_t *hist, double q);
/* "08", "23", ... for class i; "other" for the last. */
const char *pgc_stats_class_name(int i);
/* The pin reason i: a label ("temp_table", ...) and its sqlclass flag. */
const char *pgc_stats_pin_reason(int i, uint32_t *flag);

#endif
