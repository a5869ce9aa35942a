/*
 * stats.c - counters per database and per worker, their windows, log_stats;
 * see stats.h for the data model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "relay.h"
#include "sqlclass.h"
#include "stats.h"

/* Upper bounds of the wait histogram's buckets, in microseconds (the last bucket is +Inf). */
const uint64_t pgc_stat_wait_bounds_us[PGC_STAT_WAIT_BUCKETS - 1] = {
	0, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 30000000, 60000000, 120000000
};

/* PostgreSQL's SQLSTATE classes (errcodes.txt); anything else counts as "other". */
static const char sqlstate_classes[PGC_STAT_SQLSTATE_CLASSES - 1][3] = {
	"00", "01", "02", "03", "08", "09", "0A", "0B", "0F", "0L", "0P", "0Z",
	"20", "21", "22", "23", "24", "25", "26", "27", "28", "2B", "2D", "2F",
	"34", "38", "39", "3B", "3D", "3F", "40", "42", "44", "53", "54", "55",
	"57", "58", "72", "F0", "HV", "P0", "XX"
};

/* The kinds of state that pin a client, as labels. */
static const struct {
	uint32_t flag;
	const char *label;
} pin_reasons[PGC_STAT_PIN_REASONS] = {
	{PGC_SQL_TEMP, "temp_table"},
	{PGC_SQL_ADVISORY, "advisory_lock"},
	{PGC_SQL_LISTEN, "listen"},
	{PGC_SQL_HOLD_CURSOR, "hold_cursor"},
	{PGC_SQL_PREPARE, "sql_prepare"},
	{PGC_SQL_SESSION_AUTH, "session_authorization"},
	{PGC_SQL_UNKNOWN, "unclassified"},
};

/* An ErrorResponse's SQLSTATE is among its first fields (severity twice, then the code). */
#define ERROR_PREFIX 64
#define US_PER_S 1e6

struct pgc_dbstats {
	char *name;
	pgc_stat_block *blocks;       /* one per worker, then the one for other threads */
	/* The totals at the end of the last two windows (stats lock). */
	pgc_stat_values last, prev;
	pgc_dbstats *next;            /* the engine's databases, newest first (stats lock) */
};

struct pgc_stats {
	pthread_mutex_t lock;
	int n_workers;
	pgc_dbstats *dbs;             /* (lock) */
	pgc_dbstats *none;            /* errors of clients without a known database */
	pgc_worker_stats *workers;
	/* Windows (lock): when the last two ended, and how many have. */
	double last_at, prev_at;
	unsigned windows;
	double window_start;          /* worker 0 only */
};

/* ------------------------------------------------------------ set-up -- */

static pgc_dbstats *
dbstats_new(struct pgc_stats *st, const char *name)
{
	pgc_dbstats *d = calloc(1, sizeof(*d));
	size_t size = sizeof(pgc_stat_block) * (size_t) (st->n_workers + 1);

	if (d == NULL)
		return NULL;
	d->name = strdup(name);
	/* Cache-line aligned: a worker's block shares no line with another's. */
	d->blocks = aligned_alloc(_Alignof(pgc_stat_block), size);
	if (d->name == NULL || d->blocks == NULL)
	{
		free(d->name);
		free(d->blocks);
		free(d);
		return NULL;
	}
	memset(d->blocks, 0, size);
	return d;
}

static void
dbstats_free(pgc_dbstats *d)
{
	if (d == NULL)
		return;
	free(d->name);
	free(d->blocks);
	free(d);
}

int
pgc_stats_init(pgc_engine *e)
{
	struct pgc_stats *st = calloc(1, sizeof(*st));
	size_t wsize = sizeof(pgc_worker_stats) * (size_t) e->n_workers;

	if (st == NULL)
		return -1;
	pthread_mutex_init(&st->lock, NULL);
	st->n_workers = e->n_workers;
	st->workers = aligned_alloc(_Alignof(pgc_worker_stats), wsize);
	st->none = dbstats_new(st, "(none)");
	if (st->workers == NULL || st->none == NULL)
	{
		free(st->workers);
		dbstats_free(st->none);
		free(st);
		return -1;
	}
	memset(st->workers, 0, wsize);
	for (int i = 0; i < e->n_workers; i++)
		e->workers[i].stats = &st->workers[i];
	e->stats = st;
	return 0;
}

void
pgc_stats_free(pgc_engine *e)
{
	struct pgc_stats *st = e->stats;

	if (st == NULL)
		return;
	while (st->dbs)
	{
		pgc_dbstats *d = st->dbs;

		st->dbs = d->next;
		dbstats_free(d);
	}
	dbstats_free(st->none);
	for (int i = 0; i < e->n_workers; i++)
		e->workers[i].stats = NULL;
	free(st->workers);
	pthread_mutex_destroy(&st->lock);
	free(st);
	e->stats = NULL;
}

pgc_dbstats *
pgc_stats_db(pgc_engine *e, const char *name)
{
	struct pgc_stats *st = e->stats;
	pgc_dbstats *d;

	if (st == NULL)
		return NULL;
	pthread_mutex_lock(&st->lock);
	for (d = st->dbs; d; d = d->next)
		if (strcmp(d->name, name) == 0)
			break;
	if (d == NULL && (d = dbstats_new(st, name)) != NULL)
	{
		d->next = st->dbs;
		st->dbs = d;
	}
	pthread_mutex_unlock(&st->lock);
	return d;
}

/* ------------------------------------------------------------- writes -- */

/*
 * The block the calling thread writes for d: its worker's, or (another
 * thread) the shared one, which takes atomic adds (*shared).
 */
static pgc_stat_block *
my_block(const pgc_dbstats *d, bool *shared)
{
	pgc_worker *w = pgc_current_worker;
	struct pgc_stats *st = pgc_the_engine->stats;

	*shared = w == NULL || w->id >= st->n_workers;
	return &d->blocks[*shared ? st->n_workers : w->id];
}

static void
bump(_Atomic uint64_t *v, bool shared, uint64_t by)
{
	if (shared)
		atomic_fetch_add_explicit(v, by, memory_order_relaxed);
	else
		atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + by, memory_order_relaxed);
}

static int
class_index(const char *sqlstate)
{
	if (sqlstate && strlen(sqlstate) == 5)
		for (int i = 0; i < PGC_STAT_SQLSTATE_CLASSES - 1; i++)
			if (sqlstate[0] == sqlstate_classes[i][0] && sqlstate[1] == sqlstate_classes[i][1])
				return i;
	return PGC_STAT_SQLSTATE_CLASSES - 1;
}

static uint64_t
to_us(double seconds)
{
	return seconds > 0 ? (uint64_t) (seconds * US_PER_S + 0.5) : 0;
}

static int
wait_bucket(uint64_t us)
{
	int i = 0;

	while (i < PGC_STAT_WAIT_BUCKETS - 1 && us > pgc_stat_wait_bounds_us[i])
		i++;
	return i;
}

void
pgc_stats_login(pgc_client *c)
{
	const pgc_config *cfg = pgc_engine_config();

	c->st_logged_in_at = c->worker->now;
	c->stat = cfg->stats && c->pool && c->pool->stats ? &c->pool->stats->blocks[c->worker->id] : NULL;
}

void
pgc_stats_ready(pgc_client *c, pgc_server *s, char status)
{
	pgc_stat_block *b = c->stat;
	double now;
	bool more;

	if (b == NULL)
		return;
	now = c->worker->now;
	more = pgc_relay_in_flight(s) > 0;     /* the client's pipeline goes on: the next query runs from now */
	pgc_stat_add(b, PGC_STAT_QUERIES, 1);
	if (c->st_query_start > 0)
		pgc_stat_add(b, PGC_STAT_QUERY_US, to_us(now - c->st_query_start));
	c->st_query_start = more ? now : 0;
	if (status == PGC_TXN_IDLE)
	{
		pgc_stat_add(b, PGC_STAT_XACTS, 1);
		if (c->st_xact_start > 0)
			pgc_stat_add(b, PGC_STAT_XACT_US, to_us(now - c->st_xact_start));
		c->st_xact_start = more ? now : 0;
	}
}

void
pgc_stats_link(pgc_client *c, pgc_server *s)
{
	pgc_stat_block *b = c->stat;
	uint64_t waited = 0;
	int i;

	if (b == NULL)
		return;
	/*
	 * The first client of a pool is linked once just to learn the server's
	 * parameters for its welcome, before it sent anything: not an
	 * assignment, except in session mode, where it keeps that server.
	 */
	if (c->state == CL_LOGIN && pgc_pool_mode_of(c->pool) != PGC_POOL_SESSION)
		return;
	/* wait_since: when it asked its pool for a server (pool.c), whether it had to queue or not. */
	if (c->state == CL_WAITING || c->state == CL_LOGIN || c->state == CL_PIPELINED)
		waited = to_us(c->worker->now - c->wait_since);
	pgc_stat_add(b, PGC_STAT_ASSIGNMENTS, 1);
	pgc_stat_add(b, PGC_STAT_WAIT_US, waited);
	i = wait_bucket(waited);
	atomic_store_explicit(&b->wait_hist[i], atomic_load_explicit(&b->wait_hist[i], memory_order_relaxed) + 1,
						  memory_order_relaxed);
	if (c->st_last_server != 0 && c->st_last_server != s->serial)
		pgc_stat_add(b, PGC_STAT_SWAPS, 1);
	c->st_last_server = s->serial;
}

/* Count an error of class i in block b (written by this thread alone unless shared). */
static void
count_error(pgc_stat_block *b, bool shared, int i)
{
	bump(&b->errors[i], shared, 1);
	bump(&b->n[PGC_STAT_ERRORS], shared, 1);
}

bool
pgc_stats_server_error(pgc_client *c, pgc_server *s, pgc_cursor *cur)
{
	const pgc_pending *p = pgc_relay_entry(s, 0);
	const char *code = NULL;
	int r;

	if (c->stat == NULL)
		return true;
	/* pgcarrier's own statements fail for pgcarrier; the client hears (and is counted) only if told. */
	if (p && p->owner == PGC_OWNER_POOLER && (p->kind == PGC_FE_QUERY || p->kind == PGC_FE_SYNC))
		return true;
	r = pgc_relay_prefix(c, s, PGC_DIR_TO_CLIENT, cur, ERROR_PREFIX);
	if (r == 0)
		return false;
	if (r > 0)
		code = pgc_error_field(cur->body, cur->have, PGC_ERRF_SQLSTATE);
	count_error(c->stat, false, class_index(code));
	return true;
}

void
pgc_stats_error(pgc_client *c, const char *sqlstate)
{
	struct pgc_stats *st = pgc_the_engine->stats;
	bool shared = false;
	pgc_stat_block *b = c->stat;

	if (b == NULL)
	{
		if (st == NULL || !pgc_engine_config()->stats)
			return;
		b = c->pool && c->pool->stats ? my_block(c->pool->stats, &shared) : my_block(st->none, &shared);
	}
	count_error(b, shared, class_index(sqlstate));
}

void
pgc_stats_error_msg(pgc_client *c, const pgc_msgbuf *err)
{
	const char *code = NULL;

	if (err->len > PGC_MSG_HEADER_SIZE)
		code = pgc_error_field(err->data + PGC_MSG_HEADER_SIZE, err->len - PGC_MSG_HEADER_SIZE, PGC_ERRF_SQLSTATE);
	pgc_stats_error(c, code);
}

void
pgc_stats_pin(pgc_client *c, uint32_t was, uint32_t now)
{
	pgc_stat_block *b = c->stat;
	uint32_t added = now & ~was;

	if (now && !was)
		c->st_pinned_since = c->worker->now;
	else if (!now)
		c->st_pinned_since = 0;
	if (b == NULL)
		return;
	if (now && !was)
		pgc_stat_add(b, PGC_STAT_PINS, 1);
	for (int i = 0; i < PGC_STAT_PIN_REASONS; i++)
		if (added & pin_reasons[i].flag)
			atomic_store_explicit(&b->pins[i], atomic_load_explicit(&b->pins[i], memory_order_relaxed) + 1,
								  memory_order_relaxed);
}

void
pgc_stats_server_lost(pgc_client *c, pgc_server *s, const char *why)
{
	pgc_pool *p = s->pool;
	bool shared = false;

	if (p->stats && pgc_engine_config()->stats)
	{
		/* The client's block when there is one (it is this worker's), else this thread's. */
		pgc_stat_block *b = c && c->stat ? c->stat : my_block(p->stats, &shared);

		bump(&b->n[PGC_STAT_SERVERS_LOST], shared, 1);
	}
	/* A server restart takes every connection at once: rate-limited. */
	if (c)
		pgc_log_limited(PGC_LOG, "server connection %s/%s (backend %u) lost while serving client %s (%s): %s",
						p->dbname, p->user, s->backend_pid, pgc_client_addr(c), c->user ? c->user : "?", why);
	else
		pgc_log_limited(PGC_LOG, "server connection %s/%s (backend %u) lost: %s",
						p->dbname, p->user, s->backend_pid, why);
}

void
pgc_stats_pool_exhausted(pgc_pool *p, int servers, int pool_size)
{
	bool shared = false;

	if (p->stats && pgc_engine_config()->stats)
	{
		pgc_stat_block *b = my_block(p->stats, &shared);

		bump(&b->n[PGC_STAT_EXHAUSTED], shared, 1);
	}
	pgc_log_limited(PGC_LOG, "pool %s/%s exhausted: all %d server connections are in use (pool_size %d); "
					"clients wait for one", p->dbname, p->user, servers, pool_size);
}

/* -------------------------------------------------------------- reads -- */

static void
sum_blocks(const pgc_dbstats *d, int n_blocks, pgc_stat_values *out)
{
	memset(out, 0, sizeof(*out));
	for (int w = 0; w < n_blocks; w++)
	{
		const pgc_stat_block *b = &d->blocks[w];

		for (int i = 0; i < PGC_STAT_N; i++)
			out->n[i] += atomic_load_explicit(&b->n[i], memory_order_relaxed);
		for (int i = 0; i < PGC_STAT_WAIT_BUCKETS; i++)
			out->wait_hist[i] += atomic_load_explicit(&b->wait_hist[i], memory_order_relaxed);
		for (int i = 0; i < PGC_STAT_SQLSTATE_CLASSES; i++)
			out->errors[i] += atomic_load_explicit(&b->errors[i], memory_order_relaxed);
		for (int i = 0; i < PGC_STAT_PIN_REASONS; i++)
			out->pins[i] += atomic_load_explicit(&b->pins[i], memory_order_relaxed);
	}
}

/* out = a - b, counter by counter. */
static void
values_diff(const pgc_stat_values *a, const pgc_stat_values *b, pgc_stat_values *out)
{
	const uint64_t *pa = (const uint64_t *) a, *pb = (const uint64_t *) b;
	uint64_t *po = (uint64_t *) out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		po[i] = pa[i] >= pb[i] ? pa[i] - pb[i] : 0;
}

static void
values_add(pgc_stat_values *acc, const pgc_stat_values *v)
{
	const uint64_t *pv = (const uint64_t *) v;
	uint64_t *pa = (uint64_t *) acc;

	for (size_t i = 0; i < sizeof(*acc) / sizeof(uint64_t); i++)
		pa[i] += pv[i];
}

/* One row for d. Stats lock held. */
static void
fill_row(const struct pgc_stats *st, const pgc_dbstats *d, pgc_stat_row *r)
{
	r->name = d->name;
	sum_blocks(d, st->n_workers + 1, &r->total);
	values_diff(&d->last, &d->prev, &r->window);
	r->window_seconds = st->windows > 0 ? st->last_at - st->prev_at : 0;
}

static int
row_cmp(const void *a, const void *b)
{
	return strcmp(((const pgc_stat_row *) a)->name, ((const pgc_stat_row *) b)->name);
}

int
pgc_stats_rows(pgc_engine *e, bool with_none, pgc_stat_row **rows)
{
	struct pgc_stats *st = e->stats;
	pgc_stat_row *r;
	int n = 0, i = 0;

	*rows = NULL;
	if (st == NULL)
		return 0;
	pthread_mutex_lock(&st->lock);
	for (pgc_dbstats *d = st->dbs; d; d = d->next)
		n++;
	r = calloc((size_t) n + 1, sizeof(*r));
	if (r == NULL)
	{
		pthread_mutex_unlock(&st->lock);
		return -1;
	}
	for (pgc_dbstats *d = st->dbs; d; d = d->next)
		fill_row(st, d, &r[i++]);
	qsort(r, (size_t) n, sizeof(*r), row_cmp);
	if (with_none)
		fill_row(st, st->none, &r[n++]);
	pthread_mutex_unlock(&st->lock);
	*rows = r;
	return n;
}

void
pgc_stats_sum_rows(const pgc_stat_row *rows, int n, pgc_stat_row *out)
{
	memset(out, 0, sizeof(*out));
	out->name = "total";
	for (int i = 0; i < n; i++)
	{
		values_add(&out->total, &rows[i].total);
		values_add(&out->window, &rows[i].window);
		if (rows[i].window_seconds > out->window_seconds)
			out->window_seconds = rows[i].window_seconds;
	}
}

void
pgc_stats_worker(pgc_engine *e, int i, uint64_t *loops, uint64_t *events)
{
	struct pgc_stats *st = e->stats;

	*loops = *events = 0;
	if (st == NULL || i < 0 || i >= st->n_workers)
		return;
	*loops = atomic_load_explicit(&st->workers[i].loops, memory_order_relaxed);
	*events = atomic_load_explicit(&st->workers[i].events, memory_order_relaxed);
}

void
pgc_stats_worker_pipeline(pgc_engine *e, int i, uint64_t *pipelined, uint64_t *reruns)
{
	struct pgc_stats *st = e->stats;

	*pipelined = *reruns = 0;
	if (st == NULL || i < 0 || i >= st->n_workers)
		return;
	*pipelined = atomic_load_explicit(&st->workers[i].pipelined, memory_order_relaxed);
	*reruns = atomic_load_explicit(&st->workers[i].pipeline_reruns, memory_order_relaxed);
}

double
pgc_stats_wait_quantile(const uint64_t *hist, double q)
{
	uint64_t total = 0, seen = 0;
	double rank;

	for (int i = 0; i < PGC_STAT_WAIT_BUCKETS; i++)
		total += hist[i];
	if (total == 0)
		return 0;
	rank = q * (double) total;
	for (int i = 0; i < PGC_STAT_WAIT_BUCKETS; i++)
	{
		double lo = i == 0 ? 0 : (double) pgc_stat_wait_bounds_us[i - 1];
		double hi;

		if (hist[i] == 0 || (double) (seen + hist[i]) < rank)
		{
			seen += hist[i];
			continue;
		}
		/* The +Inf bucket has no upper bound: its lower one is all that is known. */
		if (i == PGC_STAT_WAIT_BUCKETS - 1)
			return lo;
		hi = (double) pgc_stat_wait_bounds_us[i];
		return lo + (hi - lo) * (rank - (double) seen) / (double) hist[i];
	}
	return (double) pgc_stat_wait_bounds_us[PGC_STAT_WAIT_BUCKETS - 2];
}

const char *
pgc_stats_class_name(int i)
{
	if (i >= 0 && i < PGC_STAT_SQLSTATE_CLASSES - 1)
		return sqlstate_classes[i];
	return "other";
}

const char *
pgc_stats_pin_reason(int i, uint32_t *flag)
{
	if (i < 0 || i >= PGC_STAT_PIN_REASONS)
		return NULL;
	if (flag)
		*flag = pin_reasons[i].flag;
	return pin_reasons[i].label;
}

/* ----------------------------------------------------------- windows -- */

/* One log_stats line for a database's last window. */
static void
log_window(const char *name, const pgc_stat_values *v, double seconds)
{
	uint64_t xacts = v->n[PGC_STAT_XACTS], queries = v->n[PGC_STAT_QUERIES];
	uint64_t assigned = v->n[PGC_STAT_ASSIGNMENTS];

	if (xacts == 0 && queries == 0 && assigned == 0 && v->n[PGC_STAT_ERRORS] == 0)
		return;                 /* nothing happened: no line (a '*' database may have many) */
	pgc_log(PGC_LOG, "stats: database %s: %.0f xacts/s, %.0f queries/s, %.0f assignments/s, in %.0f B/s, "
			"out %.0f B/s; per xact %llu us, per query %llu us; wait %llu us (p99 %.0f us); "
			"%llu errors, %llu pins, %llu swaps in %.0f s", name,
			(double) xacts / seconds, (double) queries / seconds, (double) assigned / seconds,
			(double) v->n[PGC_STAT_RECV] / seconds, (double) v->n[PGC_STAT_SENT] / seconds,
			(unsigned long long) (xacts ? v->n[PGC_STAT_XACT_US] / xacts : 0),
			(unsigned long long) (queries ? v->n[PGC_STAT_QUERY_US] / queries : 0),
			(unsigned long long) (assigned ? v->n[PGC_STAT_WAIT_US] / assigned : 0),
			pgc_stats_wait_quantile(v->wait_hist, 0.99),
			(unsigned long long) v->n[PGC_STAT_ERRORS], (unsigned long long) v->n[PGC_STAT_PINS],
			(unsigned long long) v->n[PGC_STAT_SWAPS], seconds);
}

void
pgc_stats_tick(pgc_engine *e, double now)
{
	struct pgc_stats *st = e->stats;
	const pgc_config *cfg = pgc_engine_config();
	double period = cfg->stats_period >= 1 ? cfg->stats_period : 1;

	if (st == NULL)
		return;
	if (st->window_start == 0)
	{
		/* The first window starts now; every total is zero at its start. */
		st->window_start = now;
		pthread_mutex_lock(&st->lock);
		st->last_at = now;
		pthread_mutex_unlock(&st->lock);
		return;
	}
	if (now - st->window_start < period)
		return;
	st->window_start = now;
	pthread_mutex_lock(&st->lock);
	st->prev_at = st->last_at;
	st->last_at = now;
	st->windows++;
	for (pgc_dbstats *d = st->dbs; d; d = d->next)
	{
		d->prev = d->last;
		sum_blocks(d, st->n_workers + 1, &d->last);
		if (cfg->log_stats)
		{
			pgc_stat_values w;

			values_diff(&d->last, &d->prev, &w);
			log_window(d->name, &w, st->last_at - st->prev_at);
		}
	}
	pthread_mutex_unlock(&st->lock);
}
