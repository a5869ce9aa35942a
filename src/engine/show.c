/*
 * show.c - the admin console's SHOW result sets; see show.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "control.h"
#include "show.h"
#include "sqlclass.h"
#include "stats.h"
#include "version.h"

/* PostgreSQL's type OIDs and lengths, for RowDescription. */
enum coltype { T_TEXT, T_INT4, T_INT8, T_NUMERIC };

static const struct {
	uint32_t oid;
	int16_t len;
} types[] = {
	[T_TEXT] = {25, -1},
	[T_INT4] = {23, 4},
	[T_INT8] = {20, 8},
	[T_NUMERIC] = {1700, -1},
};

typedef struct col {
	const char *name;
	enum coltype type;
} col;

#define NCOLS(a) ((int) (sizeof(a) / sizeof((a)[0])))
/* RowDescription's "no table, no column, text format, no typmod". */
#define NO_TYPMOD 0xffffffffu
#define NULL_CELL 0xffffffffu
#define US_PER_S 1000000.0

typedef struct result {
	pgc_msgbuf *out;
	bool row_open;
} result;

enum {
	SHOW_POOLS, SHOW_CLIENTS, SHOW_SERVERS, SHOW_STATS, SHOW_STATS_TOTALS, SHOW_STATS_AVERAGES,
	SHOW_TOTALS, SHOW_DATABASES, SHOW_USERS, SHOW_CONFIG, SHOW_LISTS, SHOW_MEM, SHOW_FDS, SHOW_STATE,
	SHOW_VERSION, SHOW_PINS, SHOW_WORKERS, SHOW_ERRORS, SHOW_HELP
};

static const struct {
	const char *name;
	bool census;
	const char *help;
} shows[] = {
	[SHOW_POOLS] = {"POOLS", true, "clients and servers of each pool"},
	[SHOW_CLIENTS] = {"CLIENTS", true, "client connections"},
	[SHOW_SERVERS] = {"SERVERS", true, "server connections"},
	[SHOW_STATS] = {"STATS", false, "statistics per database: totals and averages"},
	[SHOW_STATS_TOTALS] = {"STATS_TOTALS", false, "statistics per database: totals"},
	[SHOW_STATS_AVERAGES] = {"STATS_AVERAGES", false, "statistics per database: averages over stats_period"},
	[SHOW_TOTALS] = {"TOTALS", false, "statistics of all databases together"},
	[SHOW_DATABASES] = {"DATABASES", true, "databases and their settings"},
	[SHOW_USERS] = {"USERS", true, "users and their connections"},
	[SHOW_CONFIG] = {"CONFIG", false, "settings: value, default, whether a reload changes it"},
	[SHOW_LISTS] = {"LISTS", true, "counts of databases, users, pools, clients, servers"},
	[SHOW_MEM] = {"MEM", true, "memory held by connections and buffers"},
	[SHOW_FDS] = {"FDS", false, "not supported (PgBouncer's online restart)"},
	[SHOW_STATE] = {"STATE", false, "paused, shutting down"},
	[SHOW_VERSION] = {"VERSION", false, "pgcarrier's version"},
	[SHOW_PINS] = {"PINS", true, "clients pinned to their server connection, why and since when"},
	[SHOW_WORKERS] = {"WORKERS", true, "worker threads: clients, servers, events, CPU"},
	[SHOW_ERRORS] = {"ERRORS", false, "errors clients got, per database and SQLSTATE class"},
	[SHOW_HELP] = {"HELP", false, "this list"},
};

int
pgc_show_lookup(const char *name, bool *needs_census)
{
	for (int i = 0; i < NCOLS(shows); i++)
		if (strcasecmp(name, shows[i].name) == 0)
		{
			*needs_census = shows[i].census;
			return i;
		}
	return -1;
}

/* ---------------------------------------------------------- result sets -- */

static void
res_begin(result *r, pgc_msgbuf *out, const col *cols, int n)
{
	r->out = out;
	r->row_open = false;
	pgc_msgbuf_begin(out, PGC_BE_ROW_DESCRIPTION);
	pgc_msgbuf_u16(out, (uint16_t) n);
	for (int i = 0; i < n; i++)
	{
		pgc_msgbuf_str(out, cols[i].name);
		pgc_msgbuf_u32(out, 0);                 /* no table */
		pgc_msgbuf_u16(out, 0);                 /* no column number */
		pgc_msgbuf_u32(out, types[cols[i].type].oid);
		pgc_msgbuf_u16(out, (uint16_t) types[cols[i].type].len);
		pgc_msgbuf_u32(out, NO_TYPMOD);
		pgc_msgbuf_u16(out, 0);                 /* text */
	}
	pgc_msgbuf_end(out);
}

static void
res_row(result *r, int ncols)
{
	if (r->row_open)
		pgc_msgbuf_end(r->out);
	pgc_msgbuf_begin(r->out, PGC_BE_DATA_ROW);
	pgc_msgbuf_u16(r->out, (uint16_t) ncols);
	r->row_open = true;
}

static void
res_text(result *r, const char *s)
{
	if (s == NULL)
	{
		pgc_msgbuf_u32(r->out, NULL_CELL);
		return;
	}
	pgc_msgbuf_u32(r->out, (uint32_t) strlen(s));
	pgc_msgbuf_text(r->out, s);
}

static void
res_int(result *r, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	res_text(r, buf);
}

static void
res_u64(result *r, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long) v);
	res_text(r, buf);
}

static void
res_num(result *r, double v, int decimals)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	res_text(r, buf);
}

static void
res_end(result *r)
{
	if (r->row_open)
		pgc_msgbuf_end(r->out);
	r->row_open = false;
	pgc_msgbuf_begin(r->out, PGC_BE_COMMAND_COMPLETE);
	pgc_msgbuf_str(r->out, "SHOW");
	pgc_msgbuf_end(r->out);
}

/* A monotonic instant as wall-clock text ("2025-01-31 12:00:00 UTC"); NULL for 0. */
static const char *
wall_text(double mono, char *buf, size_t len)
{
	time_t t;
	struct tm tm;

	if (mono <= 0)
		return NULL;
	t = time(NULL) - (time_t) (pgc_now() - mono + 0.5);
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
	return buf;
}

/* The kinds of state in pinned, as a list ("temporary tables, LISTEN"); NULL if none. */
static const char *
pinned_text(uint32_t pinned, char *buf, size_t len)
{
	size_t used = 0;

	if (pinned == 0)
		return NULL;
	buf[0] = '\0';
	for (int i = 0; i < PGC_STAT_PIN_REASONS; i++)
	{
		uint32_t flag;

		pgc_stats_pin_reason(i, &flag);
		if ((pinned & flag) && used < len)
			used += (size_t) snprintf(buf + used, len - used, "%s%s", used ? ", " : "", pgc_sql_feature_name(flag));
	}
	return buf;
}

/* ----------------------------------------------------- census helpers -- */

/* Every client row of a census, in one array (not to be freed row by row). */
static int
all_clients(const pgc_census *census, const pgc_census_client ***out)
{
	int n = 0, i = 0;
	const pgc_census_client **v;

	for (int w = 0; w < pgc_census_workers(census); w++)
		n += pgc_census_part(census, w)->n_clients;
	v = calloc((size_t) n + 1, sizeof(*v));
	if (v == NULL)
		return -1;
	for (int w = 0; w < pgc_census_workers(census); w++)
	{
		const pgc_census_slot *sl = pgc_census_part(census, w);

		for (int k = 0; k < sl->n_clients; k++)
			v[i++] = &sl->clients[k];
	}
	*out = v;
	return n;
}

static int
client_id_cmp(const void *a, const void *b)
{
	uint32_t x = (*(const pgc_census_client *const *) a)->id, y = (*(const pgc_census_client *const *) b)->id;

	return x < y ? -1 : x > y;
}

static int
all_servers(const pgc_census *census, const pgc_census_server ***out)
{
	int n = 0, i = 0;
	const pgc_census_server **v;

	for (int w = 0; w < pgc_census_workers(census); w++)
		n += pgc_census_part(census, w)->n_servers;
	v = calloc((size_t) n + 1, sizeof(*v));
	if (v == NULL)
		return -1;
	for (int w = 0; w < pgc_census_workers(census); w++)
	{
		const pgc_census_slot *sl = pgc_census_part(census, w);

		for (int k = 0; k < sl->n_servers; k++)
			v[i++] = &sl->servers[k];
	}
	*out = v;
	return n;
}

static int
server_id_cmp(const void *a, const void *b)
{
	uint64_t x = (*(const pgc_census_server *const *) a)->id, y = (*(const pgc_census_server *const *) b)->id;

	return x < y ? -1 : x > y;
}

/* Clients of database db (NULL: any) and user (NULL: any), the console's not counted. */
static int
count_clients(const pgc_census *census, const char *db, const char *user)
{
	int n = 0;

	for (int w = 0; w < pgc_census_workers(census); w++)
	{
		const pgc_census_slot *sl = pgc_census_part(census, w);

		for (int k = 0; k < sl->n_clients; k++)
		{
			const pgc_census_client *c = &sl->clients[k];

			if (!c->console && (db == NULL || strcmp(c->database, db) == 0) &&
				(user == NULL || strcmp(c->user, user) == 0))
				n++;
		}
	}
	return n;
}

/* ------------------------------------------------------- the commands -- */

static int
show_pools(pgc_engine *e, const pgc_census *census, result *r)
{
	static const col cols[] = {
		{"database", T_TEXT}, {"user", T_TEXT}, {"cl_active", T_INT4}, {"cl_waiting", T_INT4},
		{"cl_active_cancel_req", T_INT4}, {"cl_waiting_cancel_req", T_INT4}, {"sv_active", T_INT4},
		{"sv_active_cancel", T_INT4}, {"sv_being_canceled", T_INT4}, {"sv_idle", T_INT4},
		{"sv_used", T_INT4}, {"sv_tested", T_INT4}, {"sv_login", T_INT4}, {"maxwait", T_INT4},
		{"maxwait_us", T_INT4}, {"pool_mode", T_TEXT}, {"load_balance_hosts", T_TEXT},
		/* pgcarrier's */
		{"cl_pinned", T_INT4}, {"sv_total", T_INT4}, {"pool_size", T_INT4},
	};
	pgc_census_pool *rows;
	int n = pgc_census_pools(e, census, &rows);
	double now = pgc_now();

	if (n < 0)
		return -1;
	res_begin(r, r->out, cols, NCOLS(cols));
	for (int i = 0; i < n; i++)
	{
		pgc_census_pool *p = &rows[i];
		double wait = p->oldest_wait > 0 && now > p->oldest_wait ? now - p->oldest_wait : 0;

		res_row(r, NCOLS(cols));
		res_text(r, p->p->dbname);
		res_text(r, p->p->user);
		res_int(r, p->cl_active);
		res_int(r, p->cl_waiting);
		res_int(r, 0);              /* cancel requests are forwarded at once, not queued in a pool */
		res_int(r, 0);
		res_int(r, p->sv_active);
		res_int(r, 0);
		res_int(r, 0);
		res_int(r, p->sv_idle);
		res_int(r, p->sv_used);
		res_int(r, p->sv_tested);
		res_int(r, p->sv_login);
		res_int(r, (long long) wait);
		res_int(r, (long long) ((wait - (double) (long long) wait) * US_PER_S));
		res_text(r, pgc_pool_mode_name(p->mode));
		res_text(r, NULL);
		res_int(r, p->cl_pinned);
		res_int(r, p->total);
		res_int(r, p->pool_size);
	}
	res_end(r);
	free(rows);
	return 0;
}

/* The columns SHOW CLIENTS and SHOW SERVERS share (PgBouncer's), then pgcarrier's. */
static const col socket_cols[] = {
	{"type", T_TEXT}, {"user", T_TEXT}, {"database", T_TEXT}, {"replication", T_TEXT},
	{"state", T_TEXT}, {"addr", T_TEXT}, {"port", T_INT4}, {"local_addr", T_TEXT},
	{"local_port", T_INT4}, {"connect_time", T_TEXT}, {"request_time", T_TEXT}, {"wait", T_INT4},
	{"wait_us", T_INT4}, {"close_needed", T_INT4}, {"ptr", T_TEXT}, {"link", T_TEXT},
	{"remote_pid", T_INT4}, {"tls", T_TEXT}, {"application_name", T_TEXT},
	{"prepared_statements", T_INT4}, {"id", T_INT4},
	/* pgcarrier's */
	{"worker", T_INT4},
};
#define N_SOCKET_COLS NCOLS(socket_cols)

static const char *
client_state_name(const pgc_census_client *c)
{
	if (c->console)
		return "active";
	switch (c->state)
	{
		case CL_LINKED:
		case CL_PIPELINED:
			return "active";
		case CL_WAITING:
		case CL_LOGIN:
			return "waiting";
		default:
			return "idle";
	}
}

static int
show_clients(const pgc_census *census, result *r)
{
	col cols[N_SOCKET_COLS + 2];
	const pgc_census_client **v;
	int n = all_clients(census, &v);
	double now = pgc_now();

	if (n < 0)
		return -1;
	memcpy(cols, socket_cols, sizeof(socket_cols));
	cols[N_SOCKET_COLS] = (col) {"pinned_by", T_TEXT};
	cols[N_SOCKET_COLS + 1] = (col) {"pinned_since", T_TEXT};
	qsort(v, (size_t) n, sizeof(*v), client_id_cmp);
	res_begin(r, r->out, cols, NCOLS(cols));
	for (int i = 0; i < n; i++)
	{
		const pgc_census_client *c = v[i];
		char t1[40], t2[40], t3[40], ptr[32], link[32], why[256];
		double wait = c->wait_since > 0 && now > c->wait_since ? now - c->wait_since : 0;

		snprintf(ptr, sizeof(ptr), "C%u", c->id);
		snprintf(link, sizeof(link), "S%llu", (unsigned long long) c->server);
		res_row(r, NCOLS(cols));
		res_text(r, "C");
		res_text(r, c->user);
		res_text(r, c->database);
		res_text(r, "none");
		res_text(r, client_state_name(c));
		res_text(r, c->addr);
		res_int(r, c->port);
		res_text(r, c->local_addr);
		res_int(r, c->local_port);
		res_text(r, wall_text(c->connected_at, t1, sizeof(t1)));
		res_text(r, wall_text(c->request_at, t2, sizeof(t2)));
		res_int(r, (long long) wait);
		res_int(r, (long long) ((wait - (double) (long long) wait) * US_PER_S));
		res_int(r, 0);
		res_text(r, ptr);
		res_text(r, c->server ? link : "");
		res_int(r, c->remote_pid);
		res_text(r, c->tls);
		res_text(r, c->application_name);
		res_int(r, c->prepared);
		res_int(r, c->id);
		res_int(r, c->worker);
		res_text(r, pinned_text(c->pinned, why, sizeof(why)));
		res_text(r, c->pinned ? wall_text(c->pinned_since, t3, sizeof(t3)) : NULL);
	}
	res_end(r);
	free(v);
	return 0;
}

static const char *
server_state_name(uint8_t state)
{
	switch (state)
	{
		case SV_LINKED:
			return "active";
		case SV_IDLE:
			return "idle";
		case SV_RESETTING:
			return "tested";
		default:
			return "new";
	}
}

static int
show_servers(const pgc_census *census, result *r)
{
	const pgc_census_server **v;
	int n = all_servers(census, &v);

	if (n < 0)
		return -1;
	qsort(v, (size_t) n, sizeof(*v), server_id_cmp);
	res_begin(r, r->out, socket_cols, N_SOCKET_COLS);
	for (int i = 0; i < n; i++)
	{
		const pgc_census_server *s = v[i];
		char t1[40], t2[40], ptr[32], link[32];

		snprintf(ptr, sizeof(ptr), "S%llu", (unsigned long long) s->id);
		snprintf(link, sizeof(link), "C%u", s->client_id);
		res_row(r, N_SOCKET_COLS);
		res_text(r, "S");
		res_text(r, s->pool->user);
		res_text(r, s->pool->dbname);
		res_text(r, "none");
		res_text(r, server_state_name(s->state));
		res_text(r, s->addr);
		res_int(r, s->port);
		res_text(r, s->local_addr);
		res_int(r, s->local_port);
		res_text(r, wall_text(s->connected_at, t1, sizeof(t1)));
		res_text(r, wall_text(s->request_at, t2, sizeof(t2)));
		res_int(r, 0);
		res_int(r, 0);
		res_int(r, s->close_needed ? 1 : 0);
		res_text(r, ptr);
		res_text(r, s->client_id ? link : "");
		res_int(r, (long long) s->backend_pid);
		res_text(r, s->tls);
		res_text(r, s->application_name);
		res_int(r, s->prepared);
		res_int(r, (long long) s->id);
		res_int(r, s->worker);
	}
	res_end(r);
	free(v);
	return 0;
}

/* Per second over a window of secs (0: none yet). */
static double
per_second(uint64_t n, double secs)
{
	return secs > 0 ? (double) n / secs : 0;
}

static double
per_item(uint64_t total, uint64_t items)
{
	return items ? (double) total / (double) items : 0;
}

/* The averages of SHOW STATS and STATS_AVERAGES, in PgBouncer's order, as whole numbers. */
static void
averages(result *r, const pgc_stat_row *s)
{
	const uint64_t *w = s->window.n;
	double secs = s->window_seconds;

	res_num(r, per_second(w[PGC_STAT_ASSIGNMENTS], secs), 0);
	res_num(r, per_second(w[PGC_STAT_XACTS], secs), 0);
	res_num(r, per_second(w[PGC_STAT_QUERIES], secs), 0);
	res_num(r, per_second(w[PGC_STAT_RECV], secs), 0);
	res_num(r, per_second(w[PGC_STAT_SENT], secs), 0);
	res_num(r, per_item(w[PGC_STAT_XACT_US], w[PGC_STAT_XACTS]), 0);
	res_num(r, per_item(w[PGC_STAT_QUERY_US], w[PGC_STAT_QUERIES]), 0);
	res_num(r, per_item(w[PGC_STAT_WAIT_US], w[PGC_STAT_ASSIGNMENTS]), 0);
	res_num(r, per_second(w[PGC_STAT_CLIENT_PARSES], secs), 0);
	res_num(r, per_second(w[PGC_STAT_SERVER_PARSES], secs), 0);
	res_num(r, per_second(w[PGC_STAT_BINDS], secs), 0);
}

static void
totals(result *r, const pgc_stat_row *s)
{
	static const int order[] = {
		PGC_STAT_ASSIGNMENTS, PGC_STAT_XACTS, PGC_STAT_QUERIES, PGC_STAT_RECV, PGC_STAT_SENT,
		PGC_STAT_XACT_US, PGC_STAT_QUERY_US, PGC_STAT_WAIT_US, PGC_STAT_CLIENT_PARSES,
		PGC_STAT_SERVER_PARSES, PGC_STAT_BINDS
	};

	for (int i = 0; i < NCOLS(order); i++)
		res_u64(r, s->total.n[order[i]]);
}

static int
show_stats(pgc_engine *e, int what, result *r)
{
	static const col full[] = {
		{"database", T_TEXT}, {"total_server_assignment_count", T_NUMERIC}, {"total_xact_count", T_NUMERIC},
		{"total_query_count", T_NUMERIC}, {"total_received", T_NUMERIC}, {"total_sent", T_NUMERIC},
		{"total_xact_time", T_NUMERIC}, {"total_query_time", T_NUMERIC}, {"total_wait_time", T_NUMERIC},
		{"total_client_parse_count", T_NUMERIC}, {"total_server_parse_count", T_NUMERIC},
		{"total_bind_count", T_NUMERIC}, {"avg_server_assignment_count", T_NUMERIC},
		{"avg_xact_count", T_NUMERIC}, {"avg_query_count", T_NUMERIC}, {"avg_recv", T_NUMERIC},
		{"avg_sent", T_NUMERIC}, {"avg_xact_time", T_NUMERIC}, {"avg_query_time", T_NUMERIC},
		{"avg_wait_time", T_NUMERIC}, {"avg_client_parse_count", T_NUMERIC},
		{"avg_server_parse_count", T_NUMERIC}, {"avg_bind_count", T_NUMERIC},
		/* pgcarrier's */
		{"total_swap_count", T_NUMERIC}, {"total_pin_count", T_NUMERIC}, {"total_error_count", T_NUMERIC},
		{"total_server_lost_count", T_NUMERIC}, {"total_exhausted_count", T_NUMERIC},
		{"total_login_count", T_NUMERIC}, {"avg_wait_p50_us", T_NUMERIC}, {"avg_wait_p99_us", T_NUMERIC},
		{"total_pins_temp_table", T_NUMERIC}, {"total_pins_advisory_lock", T_NUMERIC},
		{"total_pins_listen", T_NUMERIC}, {"total_pins_hold_cursor", T_NUMERIC},
		{"total_pins_sql_prepare", T_NUMERIC}, {"total_pins_session_authorization", T_NUMERIC},
		{"total_pins_unclassified", T_NUMERIC},
		/* PgBouncer before 1.8 called total_query_count so; tools written then still read it. */
		{"total_requests", T_NUMERIC},
	};
	static const col tot[] = {
		{"database", T_TEXT}, {"server_assignment_count", T_NUMERIC}, {"xact_count", T_NUMERIC},
		{"query_count", T_NUMERIC}, {"bytes_received", T_NUMERIC}, {"bytes_sent", T_NUMERIC},
		{"xact_time", T_NUMERIC}, {"query_time", T_NUMERIC}, {"wait_time", T_NUMERIC},
		{"client_parse_count", T_NUMERIC}, {"server_parse_count", T_NUMERIC}, {"bind_count", T_NUMERIC},
	};
	/* PgBouncer's own names, avg_ prefix on the last three included. */
	static const col avg[] = {
		{"database", T_TEXT}, {"server_assignment_count", T_NUMERIC}, {"xact_count", T_NUMERIC},
		{"query_count", T_NUMERIC}, {"bytes_received", T_NUMERIC}, {"bytes_sent", T_NUMERIC},
		{"xact_time", T_NUMERIC}, {"query_time", T_NUMERIC}, {"wait_time", T_NUMERIC},
		{"avg_client_parse_count", T_NUMERIC}, {"avg_server_parse_count", T_NUMERIC},
		{"avg_bind_count", T_NUMERIC},
	};
	pgc_stat_row *rows;
	int n = pgc_stats_rows(e, false, &rows);

	if (n < 0)
		return -1;
	if (what == SHOW_STATS)
		res_begin(r, r->out, full, NCOLS(full));
	else if (what == SHOW_STATS_TOTALS)
		res_begin(r, r->out, tot, NCOLS(tot));
	else
		res_begin(r, r->out, avg, NCOLS(avg));
	for (int i = 0; i < n; i++)
	{
		const pgc_stat_row *s = &rows[i];

		if (what == SHOW_STATS)
			res_row(r, NCOLS(full));
		else
			res_row(r, NCOLS(tot));
		res_text(r, s->name);
		if (what != SHOW_STATS_AVERAGES)
			totals(r, s);
		if (what != SHOW_STATS_TOTALS)
			averages(r, s);
		if (what != SHOW_STATS)
			continue;
		res_u64(r, s->total.n[PGC_STAT_SWAPS]);
		res_u64(r, s->total.n[PGC_STAT_PINS]);
		res_u64(r, s->total.n[PGC_STAT_ERRORS]);
		res_u64(r, s->total.n[PGC_STAT_SERVERS_LOST]);
		res_u64(r, s->total.n[PGC_STAT_EXHAUSTED]);
		res_u64(r, s->total.n[PGC_STAT_LOGINS]);
		res_num(r, pgc_stats_wait_quantile(s->window.wait_hist, 0.5), 0);
		res_num(r, pgc_stats_wait_quantile(s->window.wait_hist, 0.99), 0);
		for (int k = 0; k < PGC_STAT_PIN_REASONS; k++)
			res_u64(r, s->total.pins[k]);
		res_u64(r, s->total.n[PGC_STAT_QUERIES]);
	}
	res_end(r);
	free(rows);
	return 0;
}

static int
show_totals(pgc_engine *e, result *r)
{
	static const col cols[] = {{"name", T_TEXT}, {"value", T_NUMERIC}};
	static const char *const names[] = {
		"server_assignment_count", "xact_count", "query_count", "client_bytes", "server_bytes",
		"xact_time", "query_time", "wait_time", "ps_client_parse_count", "ps_server_parse_count",
		"ps_bind_count"
	};
	static const int counters[] = {
		PGC_STAT_ASSIGNMENTS, PGC_STAT_XACTS, PGC_STAT_QUERIES, PGC_STAT_RECV, PGC_STAT_SENT,
		PGC_STAT_XACT_US, PGC_STAT_QUERY_US, PGC_STAT_WAIT_US, PGC_STAT_CLIENT_PARSES,
		PGC_STAT_SERVER_PARSES, PGC_STAT_BINDS
	};
	pgc_stat_row *rows, sum;
	int n = pgc_stats_rows(e, false, &rows);

	if (n < 0)
		return -1;
	pgc_stats_sum_rows(rows, n, &sum);
	res_begin(r, r->out, cols, NCOLS(cols));
	for (int i = 0; i < NCOLS(names); i++)
	{
		char name[64];

		snprintf(name, sizeof(name), "total_%s", names[i]);
		res_row(r, 2);
		res_text(r, name);
		res_u64(r, sum.total.n[counters[i]]);
	}
	for (int i = 0; i < NCOLS(names); i++)
	{
		const uint64_t *w = sum.window.n;
		int k = counters[i];
		double v;
		char name[64];

		if (k == PGC_STAT_XACT_US)
			v = per_item(w[k], w[PGC_STAT_XACTS]);
		else if (k == PGC_STAT_QUERY_US)
			v = per_item(w[k], w[PGC_STAT_QUERIES]);
		else if (k == PGC_STAT_WAIT_US)
			v = per_item(w[k], w[PGC_STAT_ASSIGNMENTS]);
		else
			v = per_second(w[k], sum.window_seconds);
		snprintf(name, sizeof(name), "avg_%s", names[i]);
		res_row(r, 2);
		res_text(r, name);
		res_num(r, v, 0);
	}
	res_end(r);
	free(rows);
	return 0;
}

/* A database name for SHOW DATABASES: the config's lines, and those '*' made. */
typedef struct db_row {
	const char *name;
	const pgc_database *db;
} db_row;

static int
db_row_cmp(const void *a, const void *b)
{
	return strcmp(((const db_row *) a)->name, ((const db_row *) b)->name);
}

/* Server connections of database name, all pools (the engine's counter), 0 if none yet. */
static int
db_connections(pgc_engine *e, const char *name, bool user)
{
	int n = 0;

	pthread_mutex_lock(&e->cfg_lock);
	for (struct pgc_counter *d = user ? e->user_counters : e->db_counters; d; d = d->next)
		if (strcmp(d->name, name) == 0)
			n = atomic_load(&d->count);
	pthread_mutex_unlock(&e->cfg_lock);
	return n;
}

static int
show_databases(pgc_engine *e, const pgc_census *census, result *r)
{
	static const col cols[] = {
		{"name", T_TEXT}, {"host", T_TEXT}, {"port", T_INT4}, {"database", T_TEXT},
		{"force_user", T_TEXT}, {"pool_size", T_INT4}, {"min_pool_size", T_INT4},
		{"reserve_pool_size", T_INT4}, {"server_lifetime", T_INT4}, {"pool_mode", T_TEXT},
		{"load_balance_hosts", T_TEXT}, {"max_connections", T_INT4}, {"current_connections", T_INT4},
		{"max_client_connections", T_INT4}, {"current_client_connections", T_INT4},
		{"paused", T_INT4}, {"disabled", T_INT4},
		/* PgBouncer before 1.24 called reserve_pool_size so; tools written then still read it. */
		{"reserve_pool", T_INT4},
	};
	const pgc_config *cfg = pgc_engine_config();
	db_row *rows;
	int n = 0, cap = cfg->n_databases + 1;

	pthread_mutex_lock(&e->cfg_lock);
	for (pgc_pool *p = e->pools; p; p = p->next)
		cap++;
	rows = calloc((size_t) cap, sizeof(*rows));
	for (int i = 0; rows && i < cfg->n_databases; i++)
		if (strcmp(cfg->databases[i].name, "*") != 0)
			rows[n++] = (db_row) {cfg->databases[i].name, &cfg->databases[i]};
	/* Databases that came in through '*' have pools, and the '*' line's settings. */
	for (pgc_pool *p = e->pools; rows && p; p = p->next)
	{
		const pgc_database *db = pgc_config_find_db(cfg, p->dbname);
		bool seen = false;

		for (int i = 0; i < n && !seen; i++)
			seen = strcmp(rows[i].name, p->dbname) == 0;
		if (!seen && db)
			rows[n++] = (db_row) {p->dbname, db};
	}
	pthread_mutex_unlock(&e->cfg_lock);
	if (rows == NULL)
		return -1;
	qsort(rows, (size_t) n, sizeof(*rows), db_row_cmp);
	res_begin(r, r->out, cols, NCOLS(cols));
	for (int i = 0; i < n; i++)
	{
		const pgc_database *db = rows[i].db;
		pgc_db_control st;
		int reserve = db->reserve_pool >= 0 ? db->reserve_pool : cfg->reserve_pool_size;

		pgc_control_state(e, rows[i].name, &st);
		res_row(r, NCOLS(cols));
		res_text(r, rows[i].name);
		res_text(r, db->host ? db->host : "/var/run/postgresql");
		res_int(r, db->port > 0 ? db->port : 5432);
		res_text(r, db->dbname ? db->dbname : rows[i].name);
		res_text(r, db->user);
		res_int(r, db->pool_size >= 0 ? db->pool_size : cfg->default_pool_size);
		res_int(r, db->min_pool_size >= 0 ? db->min_pool_size : cfg->min_pool_size);
		res_int(r, reserve);
		res_int(r, (long long) cfg->server_lifetime);
		res_text(r, db->pool_mode >= 0 ? pgc_pool_mode_name(db->pool_mode) : NULL);
		res_text(r, NULL);
		res_int(r, db->max_db_connections >= 0 ? db->max_db_connections : cfg->max_db_connections);
		res_int(r, db_connections(e, rows[i].name, false));
		res_int(r, 0);              /* no per-database bound on clients */
		res_int(r, count_clients(census, rows[i].name, NULL));
		res_int(r, st.paused ? 1 : 0);
		res_int(r, st.disabled ? 1 : 0);
		res_int(r, reserve);
	}
	res_end(r);
	free(rows);
	return 0;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Names in v[0..n) made unique (v sorted). The new count. */
static int
uniq(const char **v, int n)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		if (k == 0 || strcmp(v[k - 1], v[i]) != 0)
			v[k++] = v[i];
	return k;
}

static int
show_users(pgc_engine *e, const pgc_census *census, result *r)
{
	static const col cols[] = {
		{"name", T_TEXT}, {"pool_size", T_TEXT}, {"reserve_pool_size", T_TEXT}, {"pool_mode", T_TEXT},
		{"max_user_connections", T_INT4}, {"current_connections", T_INT4},
		{"max_user_client_connections", T_INT4}, {"current_client_connections", T_INT4},
	};
	const pgc_config *cfg = pgc_engine_config();
	const char **names;
	int n = 0, cap = cfg->n_users + 1;

	for (int w = 0; w < pgc_census_workers(census); w++)
		cap += pgc_census_part(census, w)->n_clients;
	pthread_mutex_lock(&e->cfg_lock);
	for (struct pgc_counter *u = e->user_counters; u; u = u->next)
		cap++;
	names = calloc((size_t) cap, sizeof(*names));
	for (struct pgc_counter *u = e->user_counters; names && u; u = u->next)
		names[n++] = u->name;
	pthread_mutex_unlock(&e->cfg_lock);
	if (names == NULL)
		return -1;
	for (int i = 0; i < cfg->n_users; i++)
		names[n++] = cfg->users[i].name;
	for (int w = 0; w < pgc_census_workers(census); w++)
	{
		const pgc_census_slot *sl = pgc_census_part(census, w);

		for (int k = 0; k < sl->n_clients; k++)
			if (!sl->clients[k].console)
				names[n++] = sl->clients[k].user;
	}
	qsort(names, (size_t) n, sizeof(*names), str_cmp);
	n = uniq(names, n);
	res_begin(r, r->out, cols, NCOLS(cols));
	for (int i = 0; i < n; i++)
	{
		const pgc_user *u = pgc_config_find_user(cfg, names[i]);

		res_row(r, NCOLS(cols));
		res_text(r, names[i]);
		res_text(r, NULL);
		res_text(r, NULL);
		res_text(r, u && u->pool_mode >= 0 ? pgc_pool_mode_name(u->pool_mode) : NULL);
		res_int(r, u && u->max_user_connections >= 0 ? u->max_user_connections : cfg->max_user_connections);
		res_int(r, db_connections(e, names[i], true));
		res_int(r, 0);
		res_int(r, count_clients(census, NULL, names[i]));
	}
	res_end(r);
	free(names);
	return 0;
}

/* Settings a reload does not change (they need a restart). */
static bool
needs_restart(const char *key)
{
	static const char *const keys[] = {
		"listen_addr", "listen_port", "unix_socket_dir", "workers", "io_backend", "user", "pidfile",
		"stats_listen_addr", "stats_listen_port"
	};

	for (int i = 0; i < NCOLS(keys); i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

static int
show_config(result *r)
{
	static const col cols[] = {{"key", T_TEXT}, {"value", T_TEXT}, {"default", T_TEXT}, {"changeable", T_TEXT}};
	const pgc_config *cfg = pgc_engine_config();
	char err[256];
	pgc_config *dflt = pgc_config_parse("", "defaults", err, sizeof(err));
	const char *key;

	if (dflt == NULL)
		return -1;
	res_begin(r, r->out, cols, NCOLS(cols));
	for (int i = 0; (key = pgc_config_key(i)) != NULL; i++)
	{
		char value[1024], def[1024];

		pgc_config_value(cfg, i, value, sizeof(value));
		pgc_config_value(dflt, i, def, sizeof(def));
		res_row(r, NCOLS(cols));
		res_text(r, key);
		res_text(r, value);
		res_text(r, def);
		res_text(r, needs_restart(key) ? "no" : "yes");
	}
	res_end(r);
	pgc_config_free(dflt);
	return 0;
}

static int
show_lists(pgc_engine *e, const pgc_census *census, result *r)
{
	static const col cols[] = {{"list", T_TEXT}, {"items", T_INT4}};
	const pgc_config *cfg = pgc_engine_config();
	int pools = 0, users = 0, clients = 0, login = 0, servers = 0;

	pthread_mutex_lock(&e->cfg_lock);
	for (pgc_pool *p = e->pools; p; p = p->next)
		pools++;
	for (struct pgc_counter *u = e->user_counters; u; u = u->next)
		users++;
	pthread_mutex_unlock(&e->cfg_lock);
	for (int w = 0; w < pgc_census_workers(census); w++)
	{
		const pgc_census_slot *sl = pgc_census_part(census, w);

		clients += sl->n_clients + sl->login_clients;
		login += sl->login_clients;
		servers += sl->n_servers;
	}
	res_begin(r, r->out, cols, NCOLS(cols));
#define LIST_ROW(name, v) do { res_row(r, 2); res_text(r, (name)); res_int(r, (v)); } while (0)
	LIST_ROW("databases", cfg->n_databases);
	LIST_ROW("users", users);
	LIST_ROW("peers", 0);
	LIST_ROW("pools", pools);
	LIST_ROW("peer_pools", 0);
	LIST_ROW("free_clients", 0);        /* clients are freed when they go, not kept */
	LIST_ROW("used_clients", clients);
	LIST_ROW("login_clients", login);
	LIST_ROW("free_servers", 0);
	LIST_ROW("used_servers", servers);
	LIST_ROW("dns_names", 0);           /* names are resolved when a server connection is made, not cached */
	LIST_ROW("dns_zones", 0);
	LIST_ROW("dns_queries", 0);
	LIST_ROW("dns_pending", 0);
#undef LIST_ROW
	res_end(r);
	return 0;
}

static int
show_mem(const pgc_census *census, result *r)
{
	static const col cols[] = {
		{"name", T_TEXT}, {"size", T_INT4}, {"used", T_INT4}, {"free", T_INT4}, {"memtotal", T_INT4}
	};
	long clients = 0, servers = 0, used_bufs = 0, free_bufs = 0;
	long bufsize = (long) (sizeof(pgc_iobuf) + PGC_IOBUF_SIZE);

	for (int w = 0; w < pgc_census_workers(census); w++)
	{
		const pgc_census_slot *sl = pgc_census_part(census, w);

		clients += sl->n_clients + sl->login_clients;
		servers += sl->n_servers;
		used_bufs += sl->used_buffers;
		free_bufs += sl->free_buffers;
	}
	res_begin(r, r->out, cols, NCOLS(cols));
	res_row(r, 5);
	res_text(r, "client");
	res_int(r, (long long) sizeof(pgc_client));
	res_int(r, clients);
	res_int(r, 0);
	res_int(r, clients * (long) sizeof(pgc_client));
	res_row(r, 5);
	res_text(r, "server");
	res_int(r, (long long) sizeof(pgc_server));
	res_int(r, servers);
	res_int(r, 0);
	res_int(r, servers * (long) sizeof(pgc_server));
	res_row(r, 5);
	res_text(r, "iobuf");
	res_int(r, bufsize);
	res_int(r, used_bufs);
	res_int(r, free_bufs);
	res_int(r, (used_bufs + free_bufs) * bufsize);
	res_end(r);
	return 0;
}

static int
show_state(pgc_engine *e, result *r)
{
	static const col cols[] = {{"key", T_TEXT}, {"value", T_TEXT}};
	bool paused = atomic_load(&e->paused_all);

	res_begin(r, r->out, cols, NCOLS(cols));
	res_row(r, 2);
	res_text(r, "active");
	res_text(r, paused ? "no" : "yes");
	res_row(r, 2);
	res_text(r, "paused");
	res_text(r, paused ? "yes" : "no");
	res_row(r, 2);
	res_text(r, "suspended");
	res_text(r, "no");
	res_row(r, 2);
	res_text(r, "shutting_down");
	res_text(r, atomic_load(&e->shutting_down) ? "yes" : atomic_load(&e->draining) ? "wait_for_clients" : "no");
	res_end(r);
	return 0;
}

static int
show_version(result *r)
{
	static const col cols[] = {{"version", T_TEXT}};

	res_begin(r, r->out, cols, 1);
	res_row(r, 1);
	res_text(r, "pgcarrier " PGCARRIER_VERSION);
	res_end(r);
	return 0;
}

static int
show_pins(const pgc_census *census, result *r)
{
	static const col cols[] = {
		{"id", T_INT4}, {"user", T_TEXT}, {"database", T_TEXT}, {"addr", T_TEXT}, {"port", T_INT4},
		{"worker", T_INT4}, {"pinned_by", T_TEXT}, {"pinned_since", T_TEXT}, {"pinned_seconds", T_NUMERIC},
		{"server_id", T_INT4}, {"remote_pid", T_INT4},
	};
	const pgc_census_client **v;
	int n = all_clients(census, &v);
	double now = pgc_now();

	if (n < 0)
		return -1;
	qsort(v, (size_t) n, sizeof(*v), client_id_cmp);
	res_begin(r, r->out, cols, NCOLS(cols));
	for (int i = 0; i < n; i++)
	{
		const pgc_census_client *c = v[i];
		char why[256], since[40];

		if (c->pinned == 0)
			continue;
		res_row(r, NCOLS(cols));
		res_int(r, c->id);
		res_text(r, c->user);
		res_text(r, c->database);
		res_text(r, c->addr);
		res_int(r, c->port);
		res_int(r, c->worker);
		res_text(r, pinned_text(c->pinned, why, sizeof(why)));
		res_text(r, wall_text(c->pinned_since, since, sizeof(since)));
		if (c->pinned_since > 0)
			res_num(r, now - c->pinned_since, 1);
		else
			res_text(r, NULL);
		if (c->server)
			res_int(r, (long long) c->server);
		else
			res_text(r, NULL);
		res_int(r, (long long) c->backend_pid);
	}
	res_end(r);
	free(v);
	return 0;
}

static int
show_workers(pgc_engine *e, const pgc_census *census, result *r)
{
	static const col cols[] = {
		{"worker", T_INT4}, {"clients", T_INT4}, {"login_clients", T_INT4}, {"servers", T_INT4},
		{"idle_servers", T_INT4}, {"events", T_INT8}, {"loops", T_INT8}, {"cpu_seconds", T_NUMERIC},
		{"free_buffers", T_INT4}, {"used_buffers", T_INT4}, {"pipelined", T_INT8},
		{"pipeline_reruns", T_INT8},
	};

	res_begin(r, r->out, cols, NCOLS(cols));
	for (int w = 0; w < pgc_census_workers(census); w++)
	{
		const pgc_census_slot *sl = pgc_census_part(census, w);
		uint64_t loops, events, pipelined, reruns;
		int idle = 0;

		for (int k = 0; k < sl->n_servers; k++)
			if (sl->servers[k].state == SV_IDLE)
				idle++;
		pgc_stats_worker(e, w, &loops, &events);
		pgc_stats_worker_pipeline(e, w, &pipelined, &reruns);
		res_row(r, NCOLS(cols));
		res_int(r, w);
		res_int(r, sl->n_clients);
		res_int(r, sl->login_clients);
		res_int(r, sl->n_servers - idle);
		res_int(r, idle);
		res_u64(r, events);
		res_u64(r, loops);
		res_num(r, sl->cpu_seconds, 3);
		res_int(r, sl->free_buffers);
		res_int(r, sl->used_buffers);
		res_u64(r, pipelined);
		res_u64(r, reruns);
	}
	res_end(r);
	return 0;
}

static int
show_errors(pgc_engine *e, result *r)
{
	static const col cols[] = {{"database", T_TEXT}, {"sqlstate_class", T_TEXT}, {"count", T_INT8}};
	pgc_stat_row *rows;
	int n = pgc_stats_rows(e, true, &rows);

	if (n < 0)
		return -1;
	res_begin(r, r->out, cols, NCOLS(cols));
	for (int i = 0; i < n; i++)
		for (int k = 0; k < PGC_STAT_SQLSTATE_CLASSES; k++)
		{
			if (rows[i].total.errors[k] == 0)
				continue;
			res_row(r, 3);
			res_text(r, rows[i].name);
			res_text(r, pgc_stats_class_name(k));
			res_u64(r, rows[i].total.errors[k]);
		}
	res_end(r);
	free(rows);
	return 0;
}

static int
show_help(result *r)
{
	static const col cols[] = {{"command", T_TEXT}, {"description", T_TEXT}};
	static const char *const commands[][2] = {
		{"PAUSE [db]", "finish running transactions, then close the server connections (admin)"},
		{"RESUME [db]", "serve again after PAUSE or KILL (admin)"},
		{"DISABLE db / ENABLE db", "refuse / accept new clients of db (admin)"},
		{"RECONNECT [db]", "replace the server connections as they become idle (admin)"},
		{"WAIT_CLOSE [db]", "wait until the connections older than the last RECONNECT are gone (admin)"},
		{"KILL [db]", "drop every client and server connection of db, pause it (admin)"},
		{"KILL_CLIENT id", "drop the client with this id (SHOW CLIENTS) (admin)"},
		{"RELOAD", "reload the configuration file (admin)"},
		{"SET key = value", "change a setting until the next RELOAD (admin)"},
		{"SHUTDOWN [WAIT_FOR_CLIENTS]", "stop after running transactions / once every client has left (admin)"},
	};

	res_begin(r, r->out, cols, 2);
	for (int i = 0; i < NCOLS(shows); i++)
	{
		char name[64];

		snprintf(name, sizeof(name), "SHOW %s", shows[i].name);
		res_row(r, 2);
		res_text(r, name);
		res_text(r, shows[i].help);
	}
	for (int i = 0; i < NCOLS(commands); i++)
	{
		res_row(r, 2);
		res_text(r, commands[i][0]);
		res_text(r, commands[i][1]);
	}
	res_end(r);
	return 0;
}

int
pgc_show(pgc_engine *e, int what, const pgc_census *census, pgc_msgbuf *out, char sqlstate[6],
		 char *err, size_t errlen)
{
	result r = {.out = out};
	int rc = -1;

	if (what < 0 || what >= NCOLS(shows) || (shows[what].census && census == NULL))
	{
		snprintf(sqlstate, 6, "XX000");
		snprintf(err, errlen, "internal error: SHOW without its listing");
		return -1;
	}
	switch (what)
	{
		case SHOW_POOLS:
			rc = show_pools(e, census, &r);
			break;
		case SHOW_CLIENTS:
			rc = show_clients(census, &r);
			break;
		case SHOW_SERVERS:
			rc = show_servers(census, &r);
			break;
		case SHOW_STATS:
		case SHOW_STATS_TOTALS:
		case SHOW_STATS_AVERAGES:
			rc = show_stats(e, what, &r);
			break;
		case SHOW_TOTALS:
			rc = show_totals(e, &r);
			break;
		case SHOW_DATABASES:
			rc = show_databases(e, census, &r);
			break;
		case SHOW_USERS:
			rc = show_users(e, census, &r);
			break;
		case SHOW_CONFIG:
			rc = show_config(&r);
			break;
		case SHOW_LISTS:
			rc = show_lists(e, census, &r);
			break;
		case SHOW_MEM:
			rc = show_mem(census, &r);
			break;
		case SHOW_FDS:
			snprintf(sqlstate, 6, "0A000");
			snprintf(err, errlen, "SHOW FDS is not supported: pgcarrier has no online restart by passing "
					 "descriptors (SHOW CLIENTS and SHOW SERVERS list the connections)");
			return -1;
		case SHOW_STATE:
			rc = show_state(e, &r);
			break;
		case SHOW_VERSION:
			rc = show_version(&r);
			break;
		case SHOW_PINS:
			rc = show_pins(census, &r);
			break;
		case SHOW_WORKERS:
			rc = show_workers(e, census, &r);
			break;
		case SHOW_ERRORS:
			rc = show_errors(e, &r);
			break;
		case SHOW_HELP:
			rc = show_help(&r);
			break;
	}
	if (rc < 0 || out->failed)
	{
		snprintf(sqlstate, 6, "53200");
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}
