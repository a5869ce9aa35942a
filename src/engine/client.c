/*
 * client.c - client connections: accept, startup and login, the welcome,
 * waiting for a server, timeouts and closing. Forwarding between a linked
 * client and server is relay.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <unistd.h>

#include "accept.h"
#include "cauth.h"
#include "console.h"
#include "compat.h"
#include "core.h"
#include "pshare.h"
#include "guard.h"
#include "log.h"
#include "pipeline.h"
#include "relay.h"
#include "stats.h"
#include "tls.h"

static void client_logged_in(pgc_client *c);
static void client_auth_result(pgc_client *c, int rc);

/* ---------------------------------------------------------------- events -- */

void
pgc_client_update_events(pgc_client *c)
{
	uint32_t ev = 0;
	pgc_iobuf *b = c->in;

	if (c->fd < 0)
		return;
	/* Stop reading when the buffer is full and cannot be compacted: the peer is slower. */
	if (!(b && b->end == b->cap && b->start == 0) && !c->terminate_seen)
		ev |= EPOLLIN;
	if (c->want_write)
		ev |= EPOLLOUT;
	if ((ev & EPOLLIN) && c->tls && pgc_tls_pending(c->tls))
		pgc_worker_ready(c->worker, c, c->tls);
	if (!c->registered)
	{
		if (pgc_worker_watch(c->worker, c->fd, c, ev) == 0)
			c->registered = true;
		c->epoll_events = ev;
	}
	else if (ev != c->epoll_events)
	{
		pgc_worker_rewatch(c->worker, c->fd, c, ev);
		c->epoll_events = ev;
	}
}

/* Write what pgcarrier composed for the client. 1 done, 0 blocked, -1 error. */
int
pgc_client_flush_out(pgc_client *c)
{
	int rc;

	if ((c->out == NULL || c->out->len == 0) && !(c->tls && pgc_tls_wants_write(c->tls)))
		return 1;
	rc = pgc_msgbuf_write(c->fd, c->tls, c->out);
	if (rc == 0)
		c->want_write = true;
	if (rc == 1)
		pgc_msgbuf_release(&c->out);
	return rc;
}

/* Give back buffers an idle client does not need, so that idle clients cost little memory. */
void
pgc_client_trim(pgc_client *c)
{
	if (c->in && c->in->start == c->in->end)
	{
		pgc_worker_put_buf(c->worker, c->in);
		c->in = NULL;
	}
}

/* --------------------------------------------------------------- closing -- */

void
pgc_client_close(pgc_client *c, const char *reason)
{
	pgc_worker *w = c->worker;
	const pgc_config *cfg = pgc_engine_config();
	pgc_server *s;

	if (c->state == CL_CLOSING)
		return;
	pgc_accept_client_gone(c);
	if (c->user && cfg->log_disconnections)
		pgc_log(PGC_LOG, "closing client %s (%s/%s): %s", pgc_client_addr(c), c->dbname, c->user, reason);
	pgc_cancel_unregister(c);
	/* Out of the queue; a server handed to us meanwhile comes back here. */
	/*
	 * A waiting client may be handed a server by another worker at any
	 * moment: only under the pool lock can we tell.  A linked client's server
	 * is ours.
	 */
	/*
	 * A client waiting for auth_query: first cancel the request (after this
	 * the auth_query thread cannot post it), then take it off the inbox in
	 * case it was posted already.
	 */
	if (c->state == CL_AUTH)
		pgc_cauth_abandon(c);
	if (c->state == CL_PIPELINED)
		pgc_pipeline_leave(c);
	pgc_pipeline_forget_client(c);
	if (c->state == CL_WAITING || c->state == CL_LOGIN || c->state == CL_AUTH)
		s = pgc_pool_cancel_wait(c);
	else
		s = c->server;
	if (s)
	{
		/*
		 * A message the server got only part of, or a COPY left open, makes
		 * the server unusable. Answers still to come are read and dropped
		 * if they are pgcarrier's own; if the client's, the server is closed
		 * (pgc_server_release).
		 */
		if ((c->in && c->in->start != c->in->scan) || c->fe.skip || c->fe_state != PGC_FE_READY)
			s->dirty_close = true;
		pgc_server_adopt(s, w);
		pgc_guard_detach(c, s);
		pgc_server_release(s);
	}
	c->state = CL_CLOSING;
	/*
	 * With epoll, no EPOLL_CTL_DEL: close() below takes the descriptor out
	 * of the epoll set (nothing else holds it: no dup, no fork), one system
	 * call less per connection; io_uring cancels its poll request (poller.h).
	 * Events of this batch for it are forgotten here.
	 */
	if (c->registered && c->fd >= 0)
		pgc_worker_unwatch_closing(w, c->fd);
	c->registered = false;
	pgc_worker_forget(w, c);
	pgc_tls_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	pgc_list_remove(&c->node);
	w->n_clients--;
	if (c->counted)
		atomic_fetch_sub(&w->engine->clients_total, 1);
	if (c->in)
		pgc_worker_put_buf(w, c->in);
	pgc_msgbuf_release(&c->out);
	pgc_msgbuf_release(&c->handoff_error);
	pgc_shared_params_release(c->worker, &c->params);
	pgc_shared_params_release(w, &c->startup);
	pgc_shared_params_release(w, &c->reported);
	pgc_guard_client_free(c);
	pgc_cauth_free(c);
	pgc_console_free(c);
	if (c->pool == NULL || c->user != c->pool->client_user)
		free(c->user);
	if (c->pool == NULL || c->dbname != c->pool->dbname)
		free(c->dbname);
	free(c);
}

void
pgc_client_fatal(pgc_client *c, const char *sqlstate, const char *fmt, ...)
{
	char msg[512];
	pgc_msgbuf *out;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	out = pgc_msgbuf_ensure(&c->out);
	if (out)
	{
		pgc_msgbuf_error(out, PGC_BE_ERROR, "FATAL", sqlstate, msg, NULL, NULL);
		/* Best effort: a client that does not read does not hold us up. */
		(void) pgc_msgbuf_write(c->fd, c->tls, out);
	}
	if (pgc_engine_config()->log_pooler_errors)
		pgc_log(PGC_LOG, "client %s: %s: %s", pgc_client_addr(c), sqlstate, msg);
	pgc_stats_error(c, sqlstate);
	pgc_client_close(c, msg);
}

/* ------------------------------------------------------------------ login -- */

/*
 * Whether the server's spelling of every reported parameter the client sent
 * at startup is known ("utf-8" is reported as "UTF8", "German" as "German,
 * DMY"), and if so, use it: the welcome must show what PostgreSQL itself
 * would. Pool lock held.
 */
static bool
canonical_known(pgc_client *c)
{
	pgc_pool *p = c->pool;
	size_t pos = 0;
	const char *k, *v;
	pgc_params spelled = {0};
	pgc_params mine = pgc_client_params(c);
	bool all = true;

	while (pgc_params_next(&mine, &pos, &k, &v))
	{
		const char *w, *canon;
		char key[512];

		if (!pgc_param_is_reported(k))
			continue;
		w = pgc_params_get(&p->welcome, k);
		if (w && strcmp(w, v) == 0)
			continue;
		snprintf(key, sizeof(key), "%s=%s", k, v);
		canon = pgc_params_get(&p->canon, key);
		if (canon == NULL)
		{
			all = false;
			break;
		}
		pgc_params_set(&spelled, k, canon);
	}
	pos = 0;
	while (all && pgc_params_next(&spelled, &pos, &k, &v))
		pgc_client_param_set(c, k, v);
	pgc_params_free(&spelled);
	return all;
}

/* Remember how the server spelled the client's startup values, for the next clients. */
static void
learn_canonical(pgc_client *c)
{
	pgc_pool *p = c->pool;
	size_t pos = 0;
	const char *k, *v;

	pgc_params startup = pgc_shared_params_view(c->startup);

	pthread_mutex_lock(&p->lock);
	while (pgc_params_next(&startup, &pos, &k, &v))
	{
		const char *now = pgc_client_param(c, k);
		char key[512];

		if (!pgc_param_is_reported(k) || now == NULL || p->canon.len > 64 * 1024)
			continue;
		snprintf(key, sizeof(key), "%s=%s", k, v);
		pgc_params_set(&p->canon, key, now);
	}
	pthread_mutex_unlock(&p->lock);
}

static void
send_welcome(pgc_client *c)
{
	pgc_msgbuf *out = pgc_msgbuf_ensure(&c->out);
	pgc_pool *p = c->pool;
	size_t pos = 0;
	const char *k, *v;

	if (out == NULL)
		return;
	pgc_msgbuf_begin(out, PGC_BE_AUTHENTICATION);
	pgc_msgbuf_u32(out, PGC_AUTHREQ_OK);
	pgc_msgbuf_end(out);
	/* From now on the startup values are known in the server's spelling. */
	{
		pgc_params view = pgc_shared_params_view(c->startup);
		pgc_params spelled = {0}, startup = {0};

		while (pgc_params_next(&view, &pos, &k, &v))
		{
			const char *now = pgc_client_param(c, k);

			if (pgc_param_is_reported(k) && now && strcmp(now, v) != 0)
				pgc_params_set(&spelled, k, now);
		}
		if (spelled.len)
		{
			pgc_params_copy(&startup, &view);
			pos = 0;
			while (pgc_params_next(&spelled, &pos, &k, &v))
				pgc_params_set(&startup, k, v);
			pgc_shared_params_replace(c->worker, &c->startup, &startup);
			pgc_params_free(&startup);
		}
		pgc_params_free(&spelled);
		pos = 0;
	}
	/* The server's parameters as learned at the first login, with this client's own values. */
	pthread_mutex_lock(&p->lock);
	c->server_wide_gen = __atomic_load_n(&p->server_wide_gen, __ATOMIC_RELAXED);
	{
		pgc_params told = {0};

		while (pgc_params_next(&p->welcome, &pos, &k, &v))
		{
			const char *mine = pgc_client_param(c, k);

			pgc_msgbuf_param(out, k, mine ? mine : v);
			pgc_params_set(&told, k, mine ? mine : v);
		}
		pthread_mutex_unlock(&p->lock);
		pgc_relay_told(c, &told);   /* most clients of a pool are told the same: shared */
		pgc_params_free(&told);
	}
	pgc_msgbuf_begin(out, PGC_BE_BACKEND_KEY_DATA);
	pgc_msgbuf_u32(out, c->cancel_pid);
	pgc_msgbuf_u32(out, c->cancel_key);
	pgc_msgbuf_end(out);
	pgc_msgbuf_ready(out, PGC_TXN_IDLE);
}

/* The startup parameters are applied on a server: welcome the client with the server's spelling. */
void
pgc_client_finish_welcome(pgc_client *c)
{
	pgc_server *s = c->server;
	size_t pos = 0;
	const char *k, *v;
	pgc_params spelled = {0};
	pgc_params mine = pgc_client_params(c);

	c->welcome_pending = false;
	/* No ParameterStatus means no change: the server's value is the client's, spelled its way. */
	while (s && pgc_params_next(&mine, &pos, &k, &v))
	{
		const char *have = pgc_params_get(&s->params, k);

		if (pgc_param_is_reported(k) && have)
			pgc_params_set(&spelled, k, have);
	}
	pos = 0;
	while (pgc_params_next(&spelled, &pos, &k, &v))
		pgc_client_param_set(c, k, v);
	pgc_params_free(&spelled);
	learn_canonical(c);
	send_welcome(c);
}

/* Startup parameter "options": take the "-c name=value" / "--name=value" settings. */
static void
parse_options(pgc_params *params, const char *opts)
{
	char *copy = strdup(opts);
	char *save = NULL;
	bool expect_c = false;

	if (copy == NULL)
		return;
	for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
	{
		char *setting = NULL;
		char *eq;

		if (expect_c)
			setting = tok;
		else if (strcmp(tok, "-c") == 0)
		{
			expect_c = true;
			continue;
		}
		else if (strncmp(tok, "-c", 2) == 0)
			setting = tok + 2;
		else if (strncmp(tok, "--", 2) == 0)
			setting = tok + 2;
		expect_c = false;
		if (setting && (eq = strchr(setting, '=')) != NULL)
		{
			*eq = '\0';
			for (char *q = setting; *q; q++)
				if (*q == '-')
					*q = '_';
			pgc_params_set(params, setting, eq + 1);
		}
	}
	free(copy);
}

/*
 * A secret for a new client's BackendKeyData: the kernel's randomness, 64
 * keys at a time per worker (one system call instead of one per login).
 */
static uint32_t
cancel_key(pgc_worker *w)
{
	if (w->n_random == 0)
	{
		if (getrandom(w->random, sizeof(w->random), 0) != (ssize_t) sizeof(w->random))
			return (uint32_t) rand();
		w->n_random = (int) (sizeof(w->random) / sizeof(w->random[0]));
	}
	return w->random[--w->n_random];
}

static void
client_login(pgc_client *c, const pgc_startup *st)
{
	pgc_engine *e = c->worker->engine;
	const pgc_config *cfg = pgc_engine_config();
	const char *user = pgc_startup_get(st, "user");
	const char *db = pgc_startup_get(st, "database");
	char err[256];
	pgc_params params = {0};      /* its settings as the startup packet gives them */
	pgc_msgbuf unknown;
	int n_unknown = 0;

	if (user == NULL || user[0] == '\0')
	{
		pgc_client_fatal(c, "28000", "no PostgreSQL user name specified in startup packet");
		return;
	}
	if (db == NULL || db[0] == '\0')
		db = user;
	if (pgc_startup_get(st, "replication"))
	{
		pgc_client_fatal(c, "0A000", "replication connections are not supported by pgcarrier");
		return;
	}
	if (atomic_load(&e->shutting_down) || atomic_load(&e->draining))
	{
		pgc_client_fatal(c, "57P03", "the connection pooler is shutting down");
		return;
	}
	if (!pgc_accept_room_for_client(e, cfg))
	{
		pgc_client_fatal(c, "53300", "sorry, too many clients already");
		return;
	}
	if (pgc_console_db(db) && (c->pool = pgc_console_attach(c)) == NULL)
	{
		/* The admin console: a pool that never has a server. */
		pgc_client_fatal(c, "53200", "out of memory");
		return;
	}
	if (c->pool == NULL && (c->pool = pgc_pool_get(e, db, user, err, sizeof(err))) == NULL)
	{
		pgc_client_fatal(c, "3D000", "%s", err);
		return;
	}
	if (atomic_load(&c->pool->db_count->disabled))
	{
		/* PostgreSQL's words for a database with datallowconn off. */
		pgc_client_fatal(c, "55000", "database \"%s\" is not currently accepting connections", db);
		return;
	}
	c->kill_gen = atomic_load(&c->pool->db_count->kill_gen);
	pgc_stats_login(c);
	/*
	 * The pool outlives its clients and usually holds the same names: point
	 * at its copies rather than make one per client (pgc_client_close frees
	 * only a name that is not the pool's).
	 */
	c->user = strcmp(c->pool->client_user, user) == 0 ? c->pool->client_user : strdup(user);
	c->dbname = strcmp(c->pool->dbname, db) == 0 ? c->pool->dbname : strdup(db);
	pgc_msgbuf_init(&unknown);
	for (int i = 0; i < st->nparams; i++)
	{
		const char *k = st->keys[i];

		if (strcmp(k, "user") == 0 || strcmp(k, "database") == 0 || pgc_compat_ignored_param(cfg, k))
			continue;
		if (strncmp(k, "_pq_.", 5) == 0)
		{
			pgc_msgbuf_str(&unknown, k);
			n_unknown++;
		}
		else if (strcmp(k, "options") == 0)
			parse_options(&params, st->values[i]);
		else
			pgc_params_set(&params, k, st->values[i]);
	}
	pgc_compat_startup_params(c, &params, cfg);     /* ignore_startup_parameters, application_name_add_host */
	/* clients of an application share theirs */
	pgc_shared_params_replace(c->worker, &c->startup, &params);
	pgc_client_params_replace(c, &params);
	pgc_params_free(&params);
	if (PGC_PROTO_MINOR(st->code) > 0 || n_unknown > 0)
	{
		pgc_msgbuf *out = pgc_msgbuf_ensure(&c->out);

		/* We speak 3.0 and no protocol options; say so, and go on, as PostgreSQL does. */
		if (out)
		{
			pgc_msgbuf_begin(out, PGC_BE_NEGOTIATE_VERSION);
			pgc_msgbuf_u32(out, PGC_PROTO_V3);
			pgc_msgbuf_u32(out, (uint32_t) n_unknown);
			pgc_msgbuf_bytes(out, unknown.data, unknown.len);
			pgc_msgbuf_end(out);
		}
	}
	pgc_msgbuf_free(&unknown);
	client_auth_result(c, pgc_cauth_begin(c));
}

/* Act on what cauth said: -1 refused (and closed), 0 waits for the client or auth_query, 1 logged in. */
static void
client_auth_result(pgc_client *c, int rc)
{
	switch (rc)
	{
		case -1:
			return;
		case 0:
			if (pgc_client_flush_out(c) < 0)
				pgc_client_close(c, "client went away");
			else
				pgc_client_update_events(c);
			return;
		default:
			pgc_cauth_free(c);
			c->state = CL_STARTUP;  /* until logged in */
			client_logged_in(c);
			return;
	}
}

/* The client is who it says: give it its cancel key and welcome it. */
static void
client_logged_in(pgc_client *c)
{
	pgc_engine *e = c->worker->engine;
	const pgc_config *cfg = pgc_engine_config();
	bool have_welcome;

	if (!pgc_accept_logged_in(c))
		return;
	pgc_stats_logged_in(c);
	c->cancel_pid = atomic_fetch_add(&e->next_pid, 1);
	c->cancel_key = cancel_key(c->worker);
	pgc_cancel_register(c);
	if (cfg->log_connections)
		pgc_log(PGC_LOG, "client %s connected to %s as %s", pgc_client_addr(c), c->dbname, c->user);
	if (c->console)
	{
		pgc_console_welcome(c);
		return;
	}

	pthread_mutex_lock(&c->pool->lock);
	have_welcome = c->pool->have_welcome && canonical_known(c);
	pthread_mutex_unlock(&c->pool->lock);
	c->state_since = c->worker->now;
	if (have_welcome)
	{
		c->state = CL_IDLE;
		send_welcome(c);
		if (pgc_client_flush_out(c) < 0)
		{
			pgc_client_close(c, "client went away");
			return;
		}
		if (pgc_pool_mode_of(c->pool) == PGC_POOL_SESSION)
		{
			c->state = CL_WAITING;
			if (pgc_pool_request(c))
				pgc_relay_link(c, c->server);
		}
		else if (c->in && c->in->start < c->in->end)
			pgc_client_begin_request(c);    /* pipelined right after the startup packet */
		else
		{
			pgc_client_trim(c);
			pgc_client_update_events(c);
		}
		return;
	}
	/* First client of this pool: a server login tells us what to report. */
	c->state = CL_LOGIN;
	if (pgc_pool_request(c))
		pgc_client_handoff(c);
}

/* --------------------------------------------------------- startup phase -- */

/*
 * Startup-phase packets: an int32 length (itself included), an int32 code
 * (protocol version or request code), and a body. PostgreSQL bounds the
 * packet without its length word by MAX_STARTUP_PACKET_LENGTH.
 */
#define STARTUP_CODE_SIZE       4
#define STARTUP_MIN_LENGTH      (PGC_MSG_LENGTH_SIZE + STARTUP_CODE_SIZE)
#define STARTUP_MAX_LENGTH      (PGC_MAX_STARTUP_PACKET + PGC_MSG_LENGTH_SIZE)
#define CANCEL_REQUEST_LENGTH   16          /* length, code, pid, key */
/* Before protocol 3.0, an error was 'E' and a C string: PostgreSQL answers such clients so. */
#define PROTO_V2_ERROR          'E'

/*
 * A startup-phase fault that PostgreSQL only logs (COMMERROR) and answers
 * by closing the connection without a word: an incomplete or invalid
 * length, a malformed CancelRequest. Clients that send Terminate instead of
 * a startup packet (node-postgres closing at once) end up here too.
 */
static void
startup_drop(pgc_client *c, const char *why)
{
	if (pgc_engine_config()->log_pooler_errors)
		pgc_log_limited(PGC_LOG, "client %s: %s", pgc_client_addr(c), why);
	pgc_client_close(c, why);
}

/* FATAL in the pre-3.0 format, for a client that asked for protocol 1.x or 2.x. */
static void
startup_fatal_v2(pgc_client *c, const char *msg)
{
	pgc_msgbuf *out = pgc_msgbuf_ensure(&c->out);

	if (out)
	{
		pgc_msgbuf_byte(out, PROTO_V2_ERROR);
		pgc_msgbuf_text(out, "FATAL:  ");
		pgc_msgbuf_text(out, msg);
		pgc_msgbuf_str(out, "\n");
		(void) pgc_msgbuf_write(c->fd, c->tls, out);
	}
	if (pgc_engine_config()->log_pooler_errors)
		pgc_log_limited(PGC_LOG, "client %s: 0A000: %s", pgc_client_addr(c), msg);
	pgc_client_close(c, msg);
}

/* Protocol major version other than 3 (a repeated SSLRequest or GSSENCRequest reads as one, as in PG). */
static void
startup_bad_version(pgc_client *c, uint32_t code)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
			 PGC_PROTO_MAJOR(code), PGC_PROTO_MINOR(code));
	if (PGC_PROTO_MAJOR(code) < PGC_PROTO_MAJOR(PGC_PROTO_V3))
		startup_fatal_v2(c, msg);
	else
		pgc_client_fatal(c, "0A000", "%s", msg);
}

/* An SSLRequest or GSSENCRequest that may still be answered (once each, as PostgreSQL). */
static bool
startup_is_encryption_request(const pgc_client *c, uint32_t code)
{
	return (code == PGC_SSL_REQUEST_CODE && !c->ssl_done) || (code == PGC_GSSENC_REQUEST_CODE && !c->gss_done);
}

/*
 * Answer the SSLRequest or GSSENCRequest of len bytes at the head of c->in
 * as PostgreSQL does (whatever its length, once each; TLS done means GSS
 * done too). True when the next startup packet may follow in clear text;
 * false when c was closed or its TLS handshake begins.
 */
static bool
startup_encryption_request(pgc_client *c, uint32_t code, uint32_t len)
{
	const pgc_config *cfg = pgc_engine_config();
	pgc_iobuf *b = c->in;
	bool ssl = code == PGC_SSL_REQUEST_CODE;
	/* As PostgreSQL: TLS over TCP only; no GSSAPI encryption; and no handshake for a client refused anyway. */
	bool tls = ssl && !c->is_unix && !c->refusal && pgc_tls_client_enabled(cfg);
	uint8_t answer = tls ? PGC_SSL_ACCEPT : PGC_SSL_REFUSE;
	/* Bytes sent before encryption was settled could have been injected by a man in the middle. */
	const char *injected = ssl ? "received unencrypted data after SSL request"
		: "received unencrypted data after GSSAPI encryption request";

	b->start += len;
	b->scan = b->start;
	if (tls && b->start != b->end)
	{
		pgc_client_fatal(c, "08P01", "%s", injected);
		return false;
	}
	if (write(c->fd, &answer, 1) != 1)
	{
		pgc_client_close(c, "client went away");
		return false;
	}
	c->gss_done = c->gss_done || !ssl || tls;
	c->ssl_done = c->ssl_done || ssl;
	if (b->start != b->end)
	{
		/* PostgreSQL refuses them after its 'N' too. */
		pgc_client_fatal(c, "08P01", "%s", injected);
		return false;
	}
	if (!tls)
		return true;
	c->tls = pgc_tls_accept(cfg, c->fd);
	if (c->tls == NULL)
	{
		pgc_client_close(c, "could not set up TLS");
		return false;
	}
	c->state = CL_TLS;
	pgc_client_trim(c);
	return false;
}

/* A CancelRequest of len bytes: hand the connection to the cancel forward, which closes it when done. */
static void
startup_cancel(pgc_client *c, uint32_t len)
{
	pgc_iobuf *b = c->in;
	char err[200];
	pgc_startup st;
	int fd = c->fd;

	if (len != CANCEL_REQUEST_LENGTH ||
		pgc_parse_startup(b->data + b->start, len, &st, err, sizeof(err)) < 0)
	{
		startup_drop(c, "invalid length of startup packet");
		return;
	}
	pgc_tls_free(c->tls);
	c->tls = NULL;
	if (c->registered)
		pgc_worker_unwatch(c->worker, fd);
	c->registered = false;
	c->fd = -1;
	pgc_client_close(c, "cancel request");
	pgc_cancel_forward(pgc_current_worker, st.cancel_pid, st.cancel_key, fd);
}

/*
 * Read startup-phase packets until a login starts, following PostgreSQL's
 * ProcessStartupPacket: which faults close silently and which get a FATAL.
 */
static void
client_startup(pgc_client *c)
{
	for (;;)
	{
		pgc_iobuf *b = c->in;
		size_t avail;
		uint32_t len, code;
		char err[200];
		pgc_startup st;

		if (b == NULL)
			return;
		avail = b->end - b->start;
		if (avail < PGC_MSG_LENGTH_SIZE)
			return;
		len = pgc_get_u32(b->data + b->start);
		if (len < STARTUP_MIN_LENGTH || len > STARTUP_MAX_LENGTH)
		{
			startup_drop(c, "invalid length of startup packet");
			return;
		}
		if (avail < len)
			return;
		code = pgc_get_u32(b->data + b->start + PGC_MSG_LENGTH_SIZE);
		if (startup_is_encryption_request(c, code))
		{
			if (!startup_encryption_request(c, code, len))
				return;
			continue;
		}
		if (c->refusal && pgc_accept_refuse(c))
			return;             /* told now, as PostgreSQL tells "too many clients" */
		if (code == PGC_CANCEL_REQUEST_CODE)
		{
			startup_cancel(c, len);
			return;
		}
		if (PGC_PROTO_MAJOR(code) != PGC_PROTO_MAJOR(PGC_PROTO_V3))
		{
			startup_bad_version(c, code);
			return;
		}
		if (pgc_parse_startup(b->data + b->start, len, &st, err, sizeof(err)) < 0)
		{
			pgc_client_fatal(c, "08P01", "%s", err);
			return;
		}
		if (!c->tls && !c->is_unix && pgc_engine_config()->client_tls_sslmode >= PGC_SSLMODE_REQUIRE)
		{
			pgc_client_fatal(c, "28000", "this connection requires TLS (client_tls_sslmode = %s)",
							 pgc_sslmode_name(pgc_engine_config()->client_tls_sslmode));
			return;
		}
		b->start += len;
		b->scan = b->start;
		/* st points into b, which stays put until login is done with it. */
		client_login(c, &st);
		return;
	}
}

/* ------------------------------------------------------------ requests -- */

/* The first message of a client without a server: check it, then queue for a server. */
void
pgc_client_begin_request(pgc_client *c)
{
	pgc_iobuf *b = c->in;
	uint8_t type;
	uint32_t len;

	if (b == NULL || !pgc_msg_header(b->data + b->start, b->end - b->start, &type, &len))
		return;
	if (!pgc_relay_header_ok(c, type, len))
		return;
	if (type == PGC_FE_TERMINATE)
	{
		pgc_client_close(c, "client terminated");
		return;
	}
	/* No idle server: behind another client's unit on a busy one, if it may (pipeline.h). */
	if (pgc_pipeline_offer(c))
		return;
	c->state = CL_WAITING;
	c->state_since = c->worker->now;
	if (pgc_pool_request(c))
		pgc_relay_link(c, c->server);
	else
		pgc_client_update_events(c);
}

/* Drive the TLS handshake that follows SSLRequest; then read the startup packet through it. */
static void
client_tls_handshake(pgc_client *c)
{
	char err[256];
	int r;

	/* Enough signatures this round: the socket is level-triggered, epoll reports it again. */
	if (c->worker->tls_steps >= PGC_TLS_STEPS_PER_ROUND)
		return;
	c->worker->tls_steps++;
	r = pgc_tls_handshake(c->tls, err, sizeof(err));
	if (r < 0)
	{
		if (pgc_engine_config()->log_pooler_errors)
			pgc_log(PGC_LOG, "client %s: TLS handshake failed: %s", pgc_client_addr(c), err);
		pgc_client_close(c, "TLS handshake failed");
		return;
	}
	c->want_write = pgc_tls_wants_write(c->tls);
	if (r == 1)
	{
		c->state = CL_STARTUP;
		pgc_client_update_events(c);
		pgc_client_event(c, EPOLLIN);   /* the startup packet may have come with the handshake */
		return;
	}
	pgc_client_update_events(c);
}

void
pgc_client_event(pgc_client *c, uint32_t events)
{
	if (events & EPOLLOUT)
		c->want_write = false;
	if (c->state == CL_TLS)
	{
		client_tls_handshake(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
	{
		ssize_t n = pgc_iobuf_read(c->worker, c->fd, c->tls, &c->in);

		if (n == 0 || n == -1)
		{
			pgc_client_close(c, n == 0 ? "client closed the connection" : "client connection error");
			return;
		}
		if (n > 0 && c->state != CL_STARTUP)
			c->state_since = c->worker->now;
		pgc_stats_recv(c, n);
	}
	switch (c->state)
	{
		case CL_STARTUP:
			client_startup(c);
			return;
		case CL_AUTH:
			client_auth_result(c, pgc_cauth_step(c));
			return;
		case CL_LINKED:
			pgc_relay_pump(c);
			return;
		case CL_IDLE:
			if (c->console)
			{
				pgc_console_input(c);
				return;
			}
			if (pgc_client_flush_out(c) < 0)
			{
				pgc_client_close(c, "client went away");
				return;
			}
			if (c->in && c->in->start < c->in->end)
				pgc_client_begin_request(c);
			else
			{
				pgc_client_trim(c);
				pgc_client_update_events(c);
			}
			return;
		default:
			if (pgc_client_flush_out(c) < 0)
			{
				pgc_client_close(c, "client went away");
				return;
			}
			pgc_client_update_events(c);
			return;
	}
}

void
pgc_client_handoff(pgc_client *c)
{
	pgc_server *s;

	if (c->state == CL_AUTH)
	{
		/* auth_query answered: ask the client for its password, or refuse it. */
		client_auth_result(c, pgc_cauth_resume(c));
		return;
	}
	if (c->handoff_error)
	{
		pgc_msgbuf *err = c->handoff_error;

		c->handoff_error = NULL;
		pgc_stats_error_msg(c, err);
		(void) pgc_msgbuf_write(c->fd, c->tls, err);
		pgc_msgbuf_free(err);
		free(err);
		pgc_client_close(c, "no server connection could be had");
		return;
	}
	s = c->server;
	if (s == NULL)
		return;
	if (c->state == CL_LOGIN)
	{
		bool known;

		pthread_mutex_lock(&c->pool->lock);
		known = canonical_known(c);
		pthread_mutex_unlock(&c->pool->lock);
		if (!known)
		{
			/* Apply the startup parameters first; the server's ParameterStatus gives the spelling. */
			c->welcome_pending = true;
			pgc_relay_link(c, s);
			return;
		}
		send_welcome(c);
		if (pgc_client_flush_out(c) < 0)
		{
			pgc_client_close(c, "client went away");
			return;
		}
	}
	pgc_relay_link(c, s);
}

/* Has a query run (or waited) longer than query_timeout? */
static bool
query_timed_out(const pgc_config *cfg, double seconds)
{
	return cfg->query_timeout > 0 && seconds > cfg->query_timeout;
}

void
pgc_client_tick(pgc_client *c, double now)
{
	const pgc_config *cfg = pgc_engine_config();
	double idle = now - c->state_since;

	if (c->console && c->state == CL_IDLE && pgc_console_tick(c, now))
		return;
	/* KILL of its database, or KILL_CLIENT: the DBA ends it, whatever it is doing. */
	if (c->pool && c->state != CL_CLOSING &&
		(atomic_load(&c->kill_requested) || c->kill_gen != atomic_load(&c->pool->db_count->kill_gen)))
	{
		if (c->server)
			c->server->dirty_close = true;     /* whatever runs on it is cut off */
		pgc_client_fatal(c, "57P01", "terminating connection due to administrator command");
		return;
	}

	switch (c->state)
	{
		case CL_STARTUP:
		case CL_TLS:
		case CL_AUTH:
			/* Not logged in yet, so nothing to finish: a shutdown turns it away, as PostgreSQL's. */
			if (atomic_load(&c->worker->engine->shutting_down))
			{
				if (c->state == CL_TLS)
					pgc_client_close(c, "shutting down");
				else
					pgc_client_fatal(c, "57P03", "the database system is shutting down");
			}
			else if (cfg->client_login_timeout > 0 && idle > cfg->client_login_timeout)
				pgc_client_close(c, "client_login_timeout");
			break;
		case CL_IDLE:
			if (atomic_load(&c->worker->engine->shutting_down))
				pgc_client_fatal(c, "57P01", "terminating connection due to administrator command");
			else if (cfg->client_idle_timeout > 0 && idle > cfg->client_idle_timeout &&
					 !pgc_console_waiting(c))
				pgc_client_fatal(c, "57P05", "terminating connection due to idle-session timeout "
								 "(client_idle_timeout)");
			break;
		case CL_WAITING:
		case CL_LOGIN:
		case CL_PIPELINED:
			if (atomic_load(&c->worker->engine->shutting_down))
				pgc_client_fatal(c, "57P01", "terminating connection due to administrator command");
			else if (c->state == CL_WAITING && query_timed_out(cfg, now - c->wait_since))
				pgc_client_fatal(c, "57014", "canceling statement due to query_timeout: no server "
								 "connection became free within %g s", cfg->query_timeout);
			break;
		case CL_LINKED:
		{
			pgc_server *s = c->server;

			if (s == NULL)
				break;
			/*
			 * query_timeout, PgBouncer's meaning: the server has worked on the
			 * client's request for that long since the client last sent
			 * anything. The backend's query is cancelled, and the server
			 * connection and the client are closed.
			 */
			if (pgc_relay_in_flight(s) > 0 && query_timed_out(cfg, idle))
			{
				pgc_log(PGC_LOG, "client %s: query_timeout (%g s): cancelling its query and closing it",
						pgc_client_addr(c), cfg->query_timeout);
				pgc_cancel_backend(c->worker, s);
				s->dirty_close = true;
				pgc_client_fatal(c, "57014", "canceling statement due to query_timeout (%g s)",
								 cfg->query_timeout);
				break;
			}
			/* server_fast_close: a stale server ends its session-mode client between transactions. */
			if (cfg->server_fast_close && pgc_pool_mode_of(c->pool) == PGC_POOL_SESSION &&
				pgc_relay_idle(c, s) && pgc_compat_server_stale(s))
			{
				pgc_log(PGC_LOG, "client %s: its server connection is out of date (server_fast_close): "
						"closing it", pgc_client_addr(c));
				s->dirty_close = true;
				pgc_client_fatal(c, "57P01", "terminating connection because the server connection's "
								 "configuration changed (server_fast_close)");
				break;
			}
			if (pgc_relay_in_flight(s) == 0 && !s->unsynced &&
				(s->txn_status == PGC_TXN_BLOCK || s->txn_status == PGC_TXN_FAILED) &&
				cfg->idle_transaction_timeout > 0 && idle > cfg->idle_transaction_timeout)
			{
				pgc_client_fatal(c, "25P03", "terminating connection due to idle-in-transaction timeout "
								 "(idle_transaction_timeout)");
			}
			else if (pgc_relay_idle(c, s) &&
					 (atomic_load(&c->worker->engine->shutting_down) ||
					  (cfg->client_idle_timeout > 0 && idle > cfg->client_idle_timeout)))
			{
				if (atomic_load(&c->worker->engine->shutting_down))
					pgc_client_fatal(c, "57P01", "terminating connection due to administrator command");
				else
					pgc_client_fatal(c, "57P05", "terminating connection due to idle-session timeout "
									 "(client_idle_timeout)");
			}
			break;
		}
		default:
			break;
	}
}
