/*
 * metrics.c - the Prometheus endpoint's thread; see metrics.h.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "census.h"
#include "control.h"
#include "core.h"
#include "log.h"
#include "metrics.h"
#include "stats.h"
#include "version.h"

#define MAX_LISTEN 4
#define US_PER_S 1e6
/*
 * After the response, the connection is half-closed and what the client
 * still sends is read and dropped for at most this long: closing with
 * unread bytes would reset the connection, and the client might lose the
 * response (a 431 for a head it is still sending, say).
 */
#define LINGER_SECONDS 2.0

typedef struct conn {
	int fd;                       /* -1: slot free */
	double deadline;
	char in[PGC_METRICS_HEADER_MAX];
	size_t in_len;
	bool head;                    /* HEAD: the headers only */
	pgc_census *census;           /* GET /metrics: the listing it waits for */
	pgc_msgbuf out;               /* the response */
	size_t out_pos;
	bool writing;
	bool lingering;               /* the response is sent: dropping what comes until the client closes */
} conn;

static struct {
	pgc_engine *e;
	int listen_fds[MAX_LISTEN];
	int n_listen;
	int stop_fd;                  /* eventfd: stop */
	int census_fd;                /* eventfd: a census is complete */
	pthread_t thread;
	bool running;
	conn conns[PGC_METRICS_MAX_CONNS];
} m = {.stop_fd = -1, .census_fd = -1};

/* --------------------------------------------------------- rendering -- */

/* A label value, escaped as the exposition format wants. */
static void
label_value(pgc_msgbuf *b, const char *v)
{
	pgc_msgbuf_byte(b, '"');
	for (; *v; v++)
	{
		if (*v == '\\' || *v == '"')
		{
			pgc_msgbuf_byte(b, '\\');
			pgc_msgbuf_byte(b, (uint8_t) *v);
		}
		else if (*v == '\n')
			pgc_msgbuf_text(b, "\\n");
		else
			pgc_msgbuf_byte(b, (uint8_t) *v);
	}
	pgc_msgbuf_byte(b, '"');
}

static void
family(pgc_msgbuf *b, const char *name, const char *type, const char *help)
{
	pgc_msgbuf_text(b, "# HELP ");
	pgc_msgbuf_text(b, name);
	pgc_msgbuf_byte(b, ' ');
	pgc_msgbuf_text(b, help);
	pgc_msgbuf_text(b, "\n# TYPE ");
	pgc_msgbuf_text(b, name);
	pgc_msgbuf_byte(b, ' ');
	pgc_msgbuf_text(b, type);
	pgc_msgbuf_byte(b, '\n');
}

/* One sample: name{k1="v1",k2="v2"} value; labels NULL-terminated pairs. */
static void
sample(pgc_msgbuf *b, const char *name, const char *const *labels, double value)
{
	char num[64];

	pgc_msgbuf_text(b, name);
	if (labels && labels[0])
	{
		pgc_msgbuf_byte(b, '{');
		for (int i = 0; labels[i]; i += 2)
		{
			if (i)
				pgc_msgbuf_byte(b, ',');
			pgc_msgbuf_text(b, labels[i]);
			pgc_msgbuf_byte(b, '=');
			label_value(b, labels[i + 1]);
		}
		pgc_msgbuf_byte(b, '}');
	}
	/* Integers exactly (counters past 2^53 are far off), fractions with enough digits. */
	if (value == (double) (long long) value && value < 9e15 && value > -9e15)
		snprintf(num, sizeof(num), " %lld\n", (long long) value);
	else
		snprintf(num, sizeof(num), " %.9g\n", value);
	pgc_msgbuf_text(b, num);
}

/* A counter per database. */
static void
db_counter(pgc_msgbuf *b, const pgc_stat_row *rows, int n, const char *name, const char *help, int counter,
		   double scale)
{
	family(b, name, "counter", help);
	for (int i = 0; i < n; i++)
	{
		const char *labels[] = {"database", rows[i].name, NULL};

		sample(b, name, labels, (double) rows[i].total.n[counter] / scale);
	}
}

static void
render_stats(pgc_msgbuf *b, const pgc_stat_row *rows, int n)
{
	static const struct {
		const char *name, *help;
		int counter;
		double scale;
	} counters[] = {
		{"pgcarrier_transactions_total", "Transactions of clients (ReadyForQuery idle after their statements).",
		 PGC_STAT_XACTS, 1},
		{"pgcarrier_queries_total", "Queries of clients (Query, Sync or FunctionCall answered).", PGC_STAT_QUERIES, 1},
		{"pgcarrier_server_assignments_total", "Server connections assigned to clients.", PGC_STAT_ASSIGNMENTS, 1},
		{"pgcarrier_swaps_total", "Assignments of another server connection than the client's last one.",
		 PGC_STAT_SWAPS, 1},
		{"pgcarrier_received_bytes_total", "Bytes read from clients.", PGC_STAT_RECV, 1},
		{"pgcarrier_sent_bytes_total", "Bytes read from server connections for clients.", PGC_STAT_SENT, 1},
		{"pgcarrier_transaction_seconds_total", "Time from a transaction's first message at its server to its end.",
		 PGC_STAT_XACT_US, US_PER_S},
		{"pgcarrier_query_seconds_total", "Time from a query's first message at its server to its ReadyForQuery.",
		 PGC_STAT_QUERY_US, US_PER_S},
		{"pgcarrier_client_parses_total", "Parse messages from clients.", PGC_STAT_CLIENT_PARSES, 1},
		{"pgcarrier_server_parses_total", "Parse messages sent to servers (the session-state guard's included).",
		 PGC_STAT_SERVER_PARSES, 1},
		{"pgcarrier_binds_total", "Bind messages from clients.", PGC_STAT_BINDS, 1},
		{"pgcarrier_servers_lost_total", "Server connections that died while in use.", PGC_STAT_SERVERS_LOST, 1},
		{"pgcarrier_pool_exhaustions_total", "Times clients had to wait with every server connection of a pool busy.",
		 PGC_STAT_EXHAUSTED, 1},
		{"pgcarrier_logins_total", "Clients logged in.", PGC_STAT_LOGINS, 1},
	};

	for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++)
		db_counter(b, rows, n, counters[k].name, counters[k].help, counters[k].counter, counters[k].scale);

	family(b, "pgcarrier_client_wait_seconds", "histogram", "Time clients waited for a server connection.");
	for (int i = 0; i < n; i++)
	{
		uint64_t cum = 0;

		for (int k = 0; k < PGC_STAT_WAIT_BUCKETS; k++)
		{
			char le[32];
			const char *labels[] = {"database", rows[i].name, "le", le, NULL};

			cum += rows[i].total.wait_hist[k];
			if (k == PGC_STAT_WAIT_BUCKETS - 1)
				snprintf(le, sizeof(le), "+Inf");
			else
				snprintf(le, sizeof(le), "%g", (double) pgc_stat_wait_bounds_us[k] / US_PER_S);
			sample(b, "pgcarrier_client_wait_seconds_bucket", labels, (double) cum);
		}
		{
			const char *labels[] = {"database", rows[i].name, NULL};

			sample(b, "pgcarrier_client_wait_seconds_sum", labels,
				   (double) rows[i].total.n[PGC_STAT_WAIT_US] / US_PER_S);
			sample(b, "pgcarrier_client_wait_seconds_count", labels, (double) cum);
		}
	}

	family(b, "pgcarrier_pins_total", "counter", "Clients pinned to their server connection, by the state that did.");
	for (int i = 0; i < n; i++)
		for (int k = 0; k < PGC_STAT_PIN_REASONS; k++)
		{
			const char *labels[] = {"database", rows[i].name, "reason", pgc_stats_pin_reason(k, NULL), NULL};

			sample(b, "pgcarrier_pins_total", labels, (double) rows[i].total.pins[k]);
		}
}

/* Errors: every database and "(none)", only classes that occurred. */
static void
render_errors(pgc_msgbuf *b, const pgc_stat_row *rows, int n)
{
	family(b, "pgcarrier_errors_total", "counter", "Errors clients got, by SQLSTATE class.");
	for (int i = 0; i < n; i++)
		for (int k = 0; k < PGC_STAT_SQLSTATE_CLASSES; k++)
		{
			const char *labels[] = {"database", rows[i].name, "class", pgc_stats_class_name(k), NULL};

			if (rows[i].total.errors[k])
				sample(b, "pgcarrier_errors_total", labels, (double) rows[i].total.errors[k]);
		}
}

static void
render_pools(pgc_msgbuf *b, pgc_engine *e, const pgc_census *census)
{
	pgc_census_pool *pools;
	int n = pgc_census_pools(e, census, &pools);
	double now = pgc_now();

	if (n < 0)
	{
		b->failed = 1;
		return;
	}
	family(b, "pgcarrier_pool_clients", "gauge", "Clients of a pool: active (linked or idle) or waiting for a server.");
	for (int i = 0; i < n; i++)
	{
		const char *active[] = {"database", pools[i].p->dbname, "user", pools[i].p->user, "state", "active", NULL};
		const char *waiting[] = {"database", pools[i].p->dbname, "user", pools[i].p->user, "state", "waiting", NULL};

		sample(b, "pgcarrier_pool_clients", active, pools[i].cl_active);
		sample(b, "pgcarrier_pool_clients", waiting, pools[i].cl_waiting);
	}
	family(b, "pgcarrier_pool_servers", "gauge",
		   "Server connections of a pool: active (linked), idle, used, tested (being reset), login.");
	for (int i = 0; i < n; i++)
	{
		static const char *const states[] = {"active", "idle", "used", "tested", "login"};
		int v[] = {pools[i].sv_active, pools[i].sv_idle, pools[i].sv_used, pools[i].sv_tested, pools[i].sv_login};

		for (int k = 0; k < 5; k++)
		{
			const char *labels[] = {"database", pools[i].p->dbname, "user", pools[i].p->user, "state", states[k], NULL};

			sample(b, "pgcarrier_pool_servers", labels, v[k]);
		}
	}
	family(b, "pgcarrier_pool_pinned_clients", "gauge", "Clients of a pool pinned to their server connection now.");
	for (int i = 0; i < n; i++)
	{
		const char *labels[] = {"database", pools[i].p->dbname, "user", pools[i].p->user, NULL};

		sample(b, "pgcarrier_pool_pinned_clients", labels, pools[i].cl_pinned);
	}
	family(b, "pgcarrier_pool_maxwait_seconds", "gauge", "How long the oldest waiting client of a pool has waited.");
	for (int i = 0; i < n; i++)
	{
		const char *labels[] = {"database", pools[i].p->dbname, "user", pools[i].p->user, NULL};
		double w = pools[i].oldest_wait > 0 && now > pools[i].oldest_wait ? now - pools[i].oldest_wait : 0;

		sample(b, "pgcarrier_pool_maxwait_seconds", labels, w);
	}
	family(b, "pgcarrier_pool_size", "gauge", "A pool's pool_size.");
	for (int i = 0; i < n; i++)
	{
		const char *labels[] = {"database", pools[i].p->dbname, "user", pools[i].p->user, NULL};

		sample(b, "pgcarrier_pool_size", labels, pools[i].pool_size);
	}
	free(pools);
}

/* Totals over the census: clients and servers by state, pinned clients by reason, per worker. */

/* What a per-worker family shows of worker w. */
enum worker_value
{
	WV_CLIENTS, WV_SERVERS, WV_CPU, WV_EVENTS, WV_LOOPS
};

static double
worker_value(pgc_engine *e, const pgc_census *census, int w, enum worker_value what)
{
	const pgc_census_slot *sl = pgc_census_part(census, w);
	uint64_t loops, events;

	switch (what)
	{
		case WV_CLIENTS:
			return sl->n_clients + sl->login_clients;
		case WV_SERVERS:
			return sl->n_servers;
		case WV_CPU:
			return sl->cpu_seconds;
		case WV_EVENTS:
		case WV_LOOPS:
			pgc_stats_worker(e, w, &loops, &events);
			return (double) (what == WV_EVENTS ? events : loops);
	}
	return 0;
}

static void
render_census(pgc_msgbuf *b, pgc_engine *e, const pgc_census *census)
{
	int clients[5] = {0}, servers[4] = {0};
	static const char *const cl_states[] = {"active", "idle", "waiting", "login", "console"};
	static const char *const sv_states[] = {"active", "idle", "tested", "login"};

	for (int w = 0; w < pgc_census_workers(census); w++)
	{
		const pgc_census_slot *sl = pgc_census_part(census, w);

		clients[3] += sl->login_clients;
		for (int k = 0; k < sl->n_clients; k++)
		{
			const pgc_census_client *c = &sl->clients[k];

			if (c->console)
				clients[4]++;
			else if (c->state == CL_LINKED || c->state == CL_PIPELINED)
				clients[0]++;
			else if (c->state == CL_WAITING || c->state == CL_LOGIN)
				clients[2]++;
			else
				clients[1]++;
		}
		for (int k = 0; k < sl->n_servers; k++)
		{
			uint8_t st = sl->servers[k].state;

			servers[st == SV_LINKED ? 0 : st == SV_IDLE ? 1 : st == SV_RESETTING ? 2 : 3]++;
		}
	}
	family(b, "pgcarrier_clients", "gauge",
		   "Client connections: active (linked), idle, waiting, login (not logged in yet), console.");
	for (int k = 0; k < 5; k++)
	{
		const char *labels[] = {"state", cl_states[k], NULL};

		sample(b, "pgcarrier_clients", labels, clients[k]);
	}
	family(b, "pgcarrier_servers", "gauge", "Server connections: active (linked), idle, tested (being reset), login.");
	for (int k = 0; k < 4; k++)
	{
		const char *labels[] = {"state", sv_states[k], NULL};

		sample(b, "pgcarrier_servers", labels, servers[k]);
	}

	family(b, "pgcarrier_pinned_clients", "gauge", "Clients pinned to their server connection now, by the state that pins them.");
	for (int r = 0; r < PGC_STAT_PIN_REASONS; r++)
	{
		uint32_t flag;
		const char *reason = pgc_stats_pin_reason(r, &flag);
		int count = 0;

		for (int w = 0; w < pgc_census_workers(census); w++)
		{
			const pgc_census_slot *sl = pgc_census_part(census, w);

			for (int k = 0; k < sl->n_clients; k++)
				if (sl->clients[k].pinned & flag)
					count++;
		}
		{
			const char *labels[] = {"reason", reason, NULL};

			sample(b, "pgcarrier_pinned_clients", labels, count);
		}
	}

	static const struct
	{
		enum worker_value what;
		const char *name, *type, *help;
	}			per_worker[] = {
		{WV_CLIENTS, "pgcarrier_worker_clients", "gauge", "Client connections of a worker thread (logged in or not)."},
		{WV_SERVERS, "pgcarrier_worker_servers", "gauge", "Server connections a worker thread owns or keeps idle."},
		{WV_CPU, "pgcarrier_worker_cpu_seconds_total", "counter", "CPU time of a worker thread."},
		{WV_EVENTS, "pgcarrier_worker_events_total", "counter", "Events a worker thread's loop handled."},
		{WV_LOOPS, "pgcarrier_worker_loops_total", "counter", "Times a worker thread's loop woke up."},
	};

	for (size_t f = 0; f < sizeof(per_worker) / sizeof(per_worker[0]); f++)
	{
		family(b, per_worker[f].name, per_worker[f].type, per_worker[f].help);
		for (int w = 0; w < pgc_census_workers(census); w++)
		{
			char id[16];
			const char *labels[] = {"worker", id, NULL};

			snprintf(id, sizeof(id), "%d", w);
			sample(b, per_worker[f].name, labels, worker_value(e, census, w, per_worker[f].what));
		}
	}
}

static void
render_databases(pgc_msgbuf *b, pgc_engine *e)
{
	const pgc_config *cfg = pgc_engine_config();

	family(b, "pgcarrier_database_paused", "gauge", "1 while a database is paused (PAUSE, KILL) until RESUME.");
	for (int i = 0; i < cfg->n_databases; i++)
	{
		pgc_db_control st;
		const char *labels[] = {"database", cfg->databases[i].name, NULL};

		if (strcmp(cfg->databases[i].name, "*") == 0 || !pgc_control_state(e, cfg->databases[i].name, &st))
			continue;
		sample(b, "pgcarrier_database_paused", labels, st.paused);
	}
	family(b, "pgcarrier_database_disabled", "gauge", "1 while a database refuses new clients (DISABLE) until ENABLE.");
	for (int i = 0; i < cfg->n_databases; i++)
	{
		pgc_db_control st;
		const char *labels[] = {"database", cfg->databases[i].name, NULL};

		if (strcmp(cfg->databases[i].name, "*") == 0 || !pgc_control_state(e, cfg->databases[i].name, &st))
			continue;
		sample(b, "pgcarrier_database_disabled", labels, st.disabled);
	}
}

/* The whole exposition, from a complete census. */
static void
render(pgc_msgbuf *b, pgc_engine *e, const pgc_census *census)
{
	pgc_stat_row *rows;
	int n = pgc_stats_rows(e, true, &rows);
	const char *build[] = {"version", PGCARRIER_VERSION, NULL};

	family(b, "pgcarrier_build_info", "gauge", "pgcarrier's version.");
	sample(b, "pgcarrier_build_info", build, 1);
	family(b, "pgcarrier_workers", "gauge", "Worker threads.");
	sample(b, "pgcarrier_workers", NULL, e->n_workers);
	if (n < 0)
	{
		b->failed = 1;
		return;
	}
	/* "(none)" is last: it has errors only. */
	render_stats(b, rows, n > 0 ? n - 1 : 0);
	render_errors(b, rows, n);
	free(rows);
	render_pools(b, e, census);
	render_census(b, e, census);
	render_databases(b, e);
}

/* ---------------------------------------------------------------- HTTP -- */

static void
conn_close(conn *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	pgc_census_release(c->census);
	c->census = NULL;
	pgc_msgbuf_free(&c->out);
	c->out_pos = 0;
	c->in_len = 0;
	c->writing = false;
	c->lingering = false;
}

/* Queue a whole response: status line, headers, body (not for HEAD). */
static void
respond(conn *c, const char *status, const char *type, const char *extra, const void *body, size_t len)
{
	char head[512];

	pgc_msgbuf_reset(&c->out);
	snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
			 status, type, len, extra ? extra : "");
	pgc_msgbuf_text(&c->out, head);
	if (!c->head)
		pgc_msgbuf_bytes(&c->out, body, len);
	c->out_pos = 0;
	c->writing = true;
}

static void
respond_text(conn *c, const char *status, const char *text)
{
	respond(c, status, "text/plain; charset=utf-8", NULL, text, strlen(text));
}

/* The head is complete (it ends at head_len): answer it, or start the census /metrics needs. */
static void
handle_request(conn *c)
{
	char method[16], target[1024], version[16];
	char *path_end;

	c->in[c->in_len < sizeof(c->in) ? c->in_len : sizeof(c->in) - 1] = '\0';
	if (sscanf(c->in, "%15s %1023s %15s", method, target, version) != 3 || strncmp(version, "HTTP/1.", 7) != 0 ||
		target[0] != '/')
	{
		respond_text(c, "400 Bad Request", "bad request: expected GET /metrics HTTP/1.1\n");
		return;
	}
	c->head = strcmp(method, "HEAD") == 0;
	if (strcmp(method, "GET") != 0 && !c->head)
	{
		static const char body[] = "only GET and HEAD\n";

		respond(c, "405 Method Not Allowed", "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
				body, sizeof(body) - 1);
		return;
	}
	if ((path_end = strchr(target, '?')) != NULL)
		*path_end = '\0';
	if (strcmp(target, "/metrics") == 0)
	{
		c->census = pgc_census_start(m.e, NULL, NULL, NULL, m.census_fd);
		if (c->census == NULL)
			respond_text(c, "503 Service Unavailable", "out of memory\n");
		return;
	}
	if (strcmp(target, "/") == 0)
	{
		respond_text(c, "200 OK", "pgcarrier " PGCARRIER_VERSION ": Prometheus metrics at /metrics\n");
		return;
	}
	respond_text(c, "404 Not Found", "not found: the metrics are at /metrics\n");
}

static bool
head_complete(const conn *c)
{
	/* A blank line ends the head (bare LF tolerated, as most servers do). */
	for (size_t i = 0; i + 1 < c->in_len; i++)
		if ((c->in[i] == '\n' && c->in[i + 1] == '\n') ||
			(i + 3 < c->in_len && memcmp(c->in + i, "\r\n\r\n", 4) == 0))
			return true;
	return false;
}

static void
conn_read(conn *c)
{
	ssize_t n;

	if (c->writing || c->census || c->lingering)
	{
		/* Anything after the head is not read: one request per connection. */
		char sink[512];

		n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			conn_close(c);
		return;
	}
	n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
	{
		conn_close(c);
		return;
	}
	if (n < 0)
		return;
	c->in_len += (size_t) n;
	if (head_complete(c))
		handle_request(c);
	else if (c->in_len == sizeof(c->in))
		respond_text(c, "431 Request Header Fields Too Large", "request head too large\n");
}

static void
conn_write(conn *c)
{
	while (c->out_pos < c->out.len)
	{
		ssize_t n = send(c->fd, c->out.data + c->out_pos, c->out.len - c->out_pos, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
		{
			conn_close(c);
			return;
		}
		c->out_pos += (size_t) n;
	}
	/* All sent: half-close, and let the client close first (see LINGER_SECONDS). */
	shutdown(c->fd, SHUT_WR);
	c->writing = false;
	c->lingering = true;
	if (c->deadline > pgc_now() + LINGER_SECONDS)
		c->deadline = pgc_now() + LINGER_SECONDS;
}

/* Censuses complete: render for the connections that waited. */
static void
censuses_done(void)
{
	uint64_t v;

	if (read(m.census_fd, &v, sizeof(v)) < 0)
		(void) errno;
	for (int i = 0; i < PGC_METRICS_MAX_CONNS; i++)
	{
		conn *c = &m.conns[i];
		pgc_msgbuf body;

		if (c->fd < 0 || c->census == NULL || !pgc_census_complete(c->census))
			continue;
		pgc_msgbuf_init(&body);
		render(&body, m.e, c->census);
		pgc_census_release(c->census);
		c->census = NULL;
		if (body.failed)
			respond_text(c, "503 Service Unavailable", "out of memory\n");
		else
			respond(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", NULL, body.data, body.len);
		pgc_msgbuf_free(&body);
		conn_write(c);
	}
}

static void
accept_conns(int lfd, double now)
{
	for (int i = 0; i < PGC_METRICS_MAX_CONNS; i++)
	{
		conn *c = &m.conns[i];
		int fd;

		if (c->fd >= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
		{
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				pgc_log_limited(PGC_WARNING, "metrics endpoint: accept failed: %s", strerror(errno));
			return;
		}
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->deadline = now + PGC_METRICS_TIMEOUT;
		pgc_msgbuf_init(&c->out);
	}
}

static void *
metrics_main(void *arg)
{
	struct pollfd pfd[MAX_LISTEN + 2 + PGC_METRICS_MAX_CONNS];
	int slot_of[MAX_LISTEN + 2 + PGC_METRICS_MAX_CONNS];

	(void) arg;
	for (;;)
	{
		int n = 0, free_slots = 0, timeout_ms = 1000;
		double now = pgc_now();

		/* Slow or silent clients are closed at their deadline. */
		for (int i = 0; i < PGC_METRICS_MAX_CONNS; i++)
		{
			conn *c = &m.conns[i];

			if (c->fd >= 0 && now >= c->deadline)
				conn_close(c);
			if (c->fd < 0)
				free_slots++;
			else if ((int) ((c->deadline - now) * 1000) + 1 < timeout_ms)
				timeout_ms = (int) ((c->deadline - now) * 1000) + 1;
		}
		pfd[n] = (struct pollfd) {.fd = m.stop_fd, .events = POLLIN};
		slot_of[n++] = -1;
		pfd[n] = (struct pollfd) {.fd = m.census_fd, .events = POLLIN};
		slot_of[n++] = -2;
		/* No free slot: new connections wait in the backlog. */
		for (int i = 0; free_slots > 0 && i < m.n_listen; i++)
		{
			pfd[n] = (struct pollfd) {.fd = m.listen_fds[i], .events = POLLIN};
			slot_of[n++] = -3 - i;
		}
		for (int i = 0; i < PGC_METRICS_MAX_CONNS; i++)
		{
			conn *c = &m.conns[i];

			if (c->fd < 0)
				continue;
			pfd[n] = (struct pollfd) {.fd = c->fd, .events = (short) (c->writing ? POLLOUT : POLLIN)};
			slot_of[n++] = i;
		}
		if (poll(pfd, (nfds_t) n, timeout_ms < 0 ? 0 : timeout_ms) < 0)
		{
			if (errno == EINTR)
				continue;
			pgc_log(PGC_WARNING, "metrics endpoint: poll failed: %s", strerror(errno));
			break;
		}
		now = pgc_now();
		if (pfd[0].revents)
			break;
		for (int k = 1; k < n; k++)
		{
			if (pfd[k].revents == 0)
				continue;
			if (slot_of[k] == -2)
				censuses_done();
			else if (slot_of[k] <= -3)
				accept_conns(m.listen_fds[-3 - slot_of[k]], now);
			else if (slot_of[k] >= 0 && m.conns[slot_of[k]].fd >= 0)
			{
				conn *c = &m.conns[slot_of[k]];

				if (c->writing && (pfd[k].revents & POLLOUT))
					conn_write(c);
				else if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
				{
					conn_read(c);
					if (c->fd >= 0 && c->writing)
						conn_write(c);
				}
			}
		}
	}
	for (int i = 0; i < PGC_METRICS_MAX_CONNS; i++)
		conn_close(&m.conns[i]);
	return NULL;
}

/* ------------------------------------------------------------ set-up -- */

int
pgc_metrics_open(pgc_engine *e, const pgc_config *cfg, char *err, size_t errlen)
{
	struct addrinfo hints = {0}, *res = NULL;
	const char *host = cfg->stats_listen_addr;
	char port[16];
	int rc;

	m.e = e;
	for (int i = 0; i < PGC_METRICS_MAX_CONNS; i++)
		m.conns[i].fd = -1;
	if (cfg->stats_listen_port == 0)
		return 0;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", cfg->stats_listen_port);
	rc = getaddrinfo(host == NULL || strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res);
	if (rc != 0)
	{
		snprintf(err, errlen, "could not resolve stats_listen_addr \"%s\": %s", host ? host : "*", gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = res; ai && m.n_listen < MAX_LISTEN; ai = ai->ai_next)
	{
		int one = 1;
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0)
		{
			snprintf(err, errlen, "could not listen on stats_listen_addr %s port %d (the metrics endpoint): %s",
					 host ? host : "*", cfg->stats_listen_port, strerror(errno));
			close(fd);
			freeaddrinfo(res);
			return -1;
		}
		m.listen_fds[m.n_listen++] = fd;
	}
	freeaddrinfo(res);
	if (m.n_listen == 0)
	{
		snprintf(err, errlen, "could not listen on stats_listen_addr %s port %d", host ? host : "*",
				 cfg->stats_listen_port);
		return -1;
	}
	m.stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	m.census_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (m.stop_fd < 0 || m.census_fd < 0)
	{
		snprintf(err, errlen, "could not create an eventfd: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
pgc_metrics_start(char *err, size_t errlen)
{
	if (m.n_listen == 0)
		return 0;
	if (pthread_create(&m.thread, NULL, metrics_main, NULL) != 0)
	{
		snprintf(err, errlen, "could not start the metrics thread");
		return -1;
	}
	m.running = true;
	pgc_log(PGC_LOG, "metrics endpoint: http://%s:%d/metrics", pgc_engine_config()->stats_listen_addr,
			pgc_engine_config()->stats_listen_port);
	return 0;
}

void
pgc_metrics_stop(void)
{
	if (m.running)
	{
		uint64_t one = 1;

		if (write(m.stop_fd, &one, sizeof(one)) < 0)
			(void) errno;
		pthread_join(m.thread, NULL);
		m.running = false;
	}
	for (int i = 0; i < m.n_listen; i++)
		close(m.listen_fds[i]);
	m.n_listen = 0;
	if (m.stop_fd >= 0)
		close(m.stop_fd);
	if (m.census_fd >= 0)
		close(m.census_fd);
	m.stop_fd = m.census_fd = -1;
}
