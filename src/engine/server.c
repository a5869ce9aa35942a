/*
 * server.c - server connections: connect, log in (trust, cleartext, md5,
 * SCRAM-SHA-256), reset before reuse, close.
 *
 * Forwarding while a server is linked to a client lives in client.c; this
 * file owns everything a server does on its own.
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core.h"
#include "pshare.h"
#include "log.h"
#include "pipeline.h"
#include "netopt.h"
#include "relay.h"
#include "sauth.h"
#include "stats.h"
#include "state.h"
#include "tls.h"

static void
wipe_password(pgc_server *s)
{
	if (s->login_password)
	{
		OPENSSL_cleanse(s->login_password, strlen(s->login_password));
		free(s->login_password);
		s->login_password = NULL;
	}
	pgc_scram_client_free(s->scram);
	s->scram = NULL;
	OPENSSL_cleanse(s->scram_keys, sizeof(s->scram_keys));
	s->have_scram_keys = false;
}

void
pgc_server_set_events(pgc_server *s, uint32_t events)
{
	if ((events & EPOLLIN) && s->tls && pgc_tls_pending(s->tls))
		pgc_worker_ready(s->worker, s, s->tls);
	if (!s->registered)
	{
		if (pgc_worker_watch(s->worker, s->fd, s, events) == 0)
		{
			s->registered = true;
			s->epoll_events = events;
		}
		return;
	}
	if (events != s->epoll_events)
	{
		pgc_worker_rewatch(s->worker, s->fd, s, events);
		s->epoll_events = events;
	}
}

void
pgc_server_update_events(pgc_server *s)
{
	uint32_t ev = 0;
	pgc_iobuf *b = s->in;

	/* Stop reading when the buffer is full and cannot be compacted: the client is slower. */
	if (!(b && b->end == b->cap && b->start == 0))
		ev |= EPOLLIN;
	if (s->want_write)
		ev |= EPOLLOUT;
	pgc_server_set_events(s, ev);
}

static void
server_unwatch(pgc_server *s)
{
	if (s->registered)
	{
		pgc_worker_unwatch(s->worker, s->fd);
		s->registered = false;
		s->epoll_events = 0;
	}
	pgc_worker_forget(s->worker, s);
	pgc_list_remove(&s->node);
}

void
pgc_server_destroy(pgc_server *s)
{
	if (s->pipe_len || s->pipe_dirty)
		pgc_pipeline_server_gone(s);
	if (s->worker)
		server_unwatch(s);
	pgc_tls_free(s->tls);
	pgc_tls_free(s->tls_offer);
	s->tls = s->tls_offer = NULL;
	if (s->fd >= 0)
		close(s->fd);
	wipe_password(s);
	if (s->in && s->worker)
		pgc_worker_put_buf(s->worker, s->in);
	else if (s->in)
		pgc_iobuf_free(s->in);
	pgc_params_free(&s->params);
	pgc_params_memo_free(&s->synced);
	pgc_params_memo_free(&s->told);
	pgc_relay_server_free(s);
	pgc_stmt_cache_clear(&s->stmts, &s->pool->stmts);
	pgc_msgbuf_release(&s->out);
	free(s);
}

void
pgc_server_close(pgc_server *s, const char *reason)
{
	pgc_pool *p = s->pool;
	bool was_connecting = PGC_SV_STARTING(s->state);

	if (reason)
		pgc_log(PGC_DEBUG, "server connection %s/%s closed: %s", p->dbname, p->user, reason);
	if (s->client)
	{
		pthread_mutex_lock(&p->lock);
		s->client->server = NULL;
		s->client = NULL;
		pthread_mutex_unlock(&p->lock);
	}
	s->state = SV_CLOSED;
	pgc_server_destroy(s);
	pgc_pool_server_gone(p, was_connecting, NULL);
}

/*
 * Login failed with err (an ErrorResponse): close s. The pool logs it,
 * waits before its next login (server_login_retry) and gives err to the
 * clients nothing else can serve (pgc_pool_server_gone).
 */
static void
server_login_failed(pgc_server *s, const pgc_msgbuf *err)
{
	pgc_pool *p = s->pool;

	s->state = SV_CLOSED;
	pgc_server_destroy(s);
	pgc_pool_server_gone(p, true, err);
}

static void
server_login_failed_msg(pgc_server *s, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
server_login_failed_msg(pgc_server *s, const char *sqlstate, const char *fmt, ...)
{
	char msg[512];
	pgc_msgbuf err;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pgc_msgbuf_init(&err);
	pgc_msgbuf_error(&err, PGC_BE_ERROR, "FATAL", sqlstate, msg, NULL, NULL);
	server_login_failed(s, &err);
	pgc_msgbuf_free(&err);
}

/* Write what pgcarrier queued for the server: 1 all written, 0 socket full, -1 error. */
static int
server_flush_out(pgc_server *s)
{
	return pgc_msgbuf_write(s->fd, s->tls, s->out);
}

/* The startup packet for s's pool. Pool lock held. */
static void
queue_startup(pgc_server *s, pgc_msgbuf *out)
{
	pgc_msgbuf_begin(out, 0);
	pgc_msgbuf_u32(out, PGC_PROTO_V3);
	pgc_msgbuf_str(out, "user");
	pgc_msgbuf_str(out, s->pool->user);
	pgc_msgbuf_str(out, "database");
	pgc_msgbuf_str(out, s->pool->server_dbname);
	if (pgc_engine_config()->server_session_report)
	{
		/* The pgcarrier extension in the backend reports session state changes (state.h). */
		pgc_msgbuf_str(out, PGC_REPORT_REQUEST);
		pgc_msgbuf_str(out, "on");
	}
	pgc_msgbuf_byte(out, 0);
	pgc_msgbuf_end(out);
}

/* TLS is up, or will not be used: log in. False if s was closed. */
static bool
server_start_login(pgc_server *s)
{
	pgc_msgbuf *out = pgc_msgbuf_ensure(&s->out);

	s->state = SV_LOGIN;
	if (out == NULL)
	{
		server_login_failed_msg(s, "53200", "out of memory");
		return false;
	}
	pthread_mutex_lock(&s->pool->lock);
	queue_startup(s, out);
	pthread_mutex_unlock(&s->pool->lock);
	if (server_flush_out(s) < 0)
	{
		server_login_failed_msg(s, "08006", "could not send data to server: %s", strerror(errno));
		return false;
	}
	return true;
}

/* The server's one-byte answer to SSLRequest is in s->in. False if s was closed. */
static bool
server_tls_answer(pgc_server *s)
{
	pgc_iobuf *b = s->in;
	const pgc_config *cfg = pgc_engine_config();
	uint8_t answer = b->data[b->start];

	b->start++;
	b->scan = b->start;
	if (answer == PGC_SSL_ACCEPT)
	{
		if (b->start != b->end)
		{
			server_login_failed_msg(s, "08P01", "received unencrypted data after SSL response");
			return false;
		}
		s->tls = s->tls_offer;
		s->tls_offer = NULL;
		s->state = SV_TLS;
		return true;
	}
	if (answer == PGC_SSL_REFUSE && cfg->server_tls_sslmode < PGC_SSLMODE_REQUIRE)
	{
		pgc_tls_free(s->tls_offer);
		s->tls_offer = NULL;
		return server_start_login(s);
	}
	if (answer == PGC_SSL_REFUSE)
		server_login_failed_msg(s, "08001", "server does not support SSL, but SSL was required "
								"(server_tls_sslmode = %s)", pgc_sslmode_name(cfg->server_tls_sslmode));
	else
		server_login_failed_msg(s, "08P01", "received invalid response to SSL negotiation: %c", answer);
	return false;
}

/* Drive the handshake with the server. False if s was closed. */
static bool
server_tls_step(pgc_server *s)
{
	char err[256];
	int r = pgc_tls_handshake(s->tls, err, sizeof(err));

	if (r < 0)
	{
		server_login_failed_msg(s, "08006", "TLS with the server failed: %s", err);
		return false;
	}
	if (r == 0)
	{
		pgc_server_set_events(s, EPOLLIN | (pgc_tls_wants_write(s->tls) ? EPOLLOUT : 0));
		return false;
	}
	return server_start_login(s);
}

/*
 * Open s's socket to its (resolved) address and queue what to send first:
 * SSLRequest when tls, else the startup packet. False if s was closed.
 */
static bool
server_connect(pgc_server *s, bool tls)
{
	pgc_pool *p = s->pool;
	const pgc_config *cfg = pgc_engine_config();
	char host[256];
	pgc_msgbuf *out = pgc_msgbuf_ensure(&s->out);
	int fd;

	pthread_mutex_lock(&p->lock);
	snprintf(host, sizeof(host), "%s", p->host);
	if (out && tls)
	{
		/* SSLRequest first; the startup packet follows the handshake. */
		pgc_msgbuf_begin(out, 0);
		pgc_msgbuf_u32(out, PGC_SSL_REQUEST_CODE);
		pgc_msgbuf_end(out);
	}
	else if (out)
		queue_startup(s, out);
	pthread_mutex_unlock(&p->lock);
	if (out == NULL || out->failed)
	{
		server_login_failed_msg(s, "53200", "out of memory");
		return false;
	}
	fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		server_login_failed_msg(s, "08001", "could not create socket: %s", strerror(errno));
		return false;
	}
	s->fd = fd;
	if (tls && (s->tls_offer = pgc_tls_connect(cfg, fd, host)) == NULL)
	{
		server_login_failed_msg(s, "08001", "could not set up TLS for the server connection");
		return false;
	}
	if (s->addr.ss_family != AF_UNIX)
	{
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pgc_netopt_tcp(fd, cfg);	/* tcp_keepalive, tcp_user_timeout, ... */
	}
	s->state = SV_CONNECTING;
	if (connect(fd, (struct sockaddr *) &s->addr, s->addrlen) < 0 && errno != EINPROGRESS)
	{
		if (s->addr.ss_family == AF_UNIX)
			server_login_failed_msg(s, "08001", "could not connect to server on socket \"%s/.s.PGSQL.%d\": %s",
									host, p->port, strerror(errno));
		else
			server_login_failed_msg(s, "08001", "could not connect to server at \"%s\", port %d: %s",
									host, p->port, strerror(errno));
		return false;
	}
	pgc_server_set_events(s, EPOLLOUT);
	return true;
}

/*
 * server_tls_sslmode = allow, as libpq: the plain login was refused, so try
 * once more over TLS. False if that is not the case (s is untouched).
 */
static bool
server_retry_with_tls(pgc_server *s)
{
	const pgc_config *cfg = pgc_engine_config();

	if (cfg->server_tls_sslmode != PGC_SSLMODE_ALLOW || !pgc_tls_server_enabled(cfg) || s->tls ||
		s->tls_retried || s->addr.ss_family == AF_UNIX)
		return false;
	s->tls_retried = true;
	server_unwatch(s);
	pgc_list_push_tail(&s->worker->servers, &s->node);
	close(s->fd);
	s->fd = -1;
	pgc_scram_client_free(s->scram);
	s->scram = NULL;
	pgc_params_free(&s->params);
	if (s->in)
		s->in->start = s->in->scan = s->in->end = 0;
	if (s->out)
		s->out->len = 0;
	(void) server_connect(s, true);
	return true;
}

void
pgc_server_launch(pgc_worker *w, pgc_pool *p)
{
	pgc_server *s = calloc(1, sizeof(*s));
	const pgc_config *cfg = pgc_engine_config();
	char port[16];
	bool want_tls;

	if (s == NULL)
	{
		pgc_pool_server_gone(p, true, NULL);
		return;
	}
	s->kind = PGC_KIND_SERVER;
	s->fd = -1;
	s->serial = atomic_fetch_add(&w->engine->next_serial, 1) + 1;
	s->pool = p;
	s->worker = w;
	s->state = SV_CONNECTING;
	s->txn_status = PGC_TXN_IDLE;
	s->created_at = s->state_since = w->now;
	pgc_list_push_tail(&w->servers, &s->node);

	pthread_mutex_lock(&p->lock);
	s->config_generation = p->config_generation;
	s->reconnect_gen = atomic_load(&p->reconnect_gen);
	if (p->password)
		s->login_password = strdup(p->password);
	else if (p->learned_secret)
		s->login_password = strdup(p->learned_secret);
	if (p->have_scram_keys)
	{
		memcpy(s->scram_keys, p->scram_keys, sizeof(s->scram_keys));
		s->have_scram_keys = true;
	}
	/* allow tries plain first (server_retry_with_tls); Unix sockets never use TLS, as in libpq. */
	want_tls = p->host[0] != '/' && cfg->server_tls_sslmode >= PGC_SSLMODE_PREFER && pgc_tls_server_enabled(cfg);
	if (p->host[0] == '/')
	{
		struct sockaddr_un *un = (struct sockaddr_un *) &s->addr;

		un->sun_family = AF_UNIX;
		snprintf(un->sun_path, sizeof(un->sun_path), "%s/.s.PGSQL.%d", p->host, p->port);
		s->addrlen = sizeof(*un);
	}
	else
	{
		struct addrinfo hints = {0}, *res = NULL;

		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICSERV;
		snprintf(port, sizeof(port), "%d", p->port);
		/* Numeric addresses resolve without blocking; names are looked up here (rare). */
		if (getaddrinfo(p->host, port, &hints, &res) == 0 && res)
		{
			memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
			s->addrlen = res->ai_addrlen;
		}
		if (res)
			freeaddrinfo(res);
	}
	pthread_mutex_unlock(&p->lock);

	if (s->addrlen == 0)
	{
		server_login_failed_msg(s, "08001", "could not translate host name \"%s\" to address", p->host);
		return;
	}
	(void) server_connect(s, want_tls);
}

/*
 * Server-wide parameters (in_hot_standby: a standby promoted) as a server
 * has them now: the pool's welcome follows them, so that new clients are
 * told what the server is, and its generation moves on, so that clients
 * told the old value hear the new one at their next ReadyForQuery
 * (relay.c, tell_changes). Pool lock held.
 */
void
pgc_pool_server_wide_params(pgc_pool *p, const pgc_params *params)
{
	size_t pos = 0;
	const char *k, *v;

	while (pgc_params_next(params, &pos, &k, &v))
	{
		const char *had;

		if (!pgc_param_is_server_wide(k))
			continue;
		had = pgc_params_get(&p->welcome, k);
		if (had != NULL && strcmp(had, v) == 0)
			continue;
		pgc_params_set(&p->welcome, k, v);
		__atomic_fetch_add(&p->server_wide_gen, 1, __ATOMIC_RELEASE);
	}
}

/* Record a ParameterStatus body ("name\0value\0") in params. */
static void
record_param(pgc_params *params, const uint8_t *body, size_t len)
{
	const char *name = (const char *) body;
	size_t nl = strnlen(name, len);
	const char *value;

	if (nl + 1 >= len)
		return;
	value = name + nl + 1;
	if (strnlen(value, len - nl - 1) == len - nl - 1)
		return;
	/* A reporting backend's setting that is no longer set at session level (state.h). */
	if (strcmp(name, PGC_RESET_PARAM) == 0)
	{
		if (!pgc_param_is_reported(value))
			pgc_params_remove(params, value);
		return;
	}
	if (strncmp(name, "pgcarrier.", 10) == 0)
		return;
	pgc_params_set(params, name, value);
}

/*
 * A ParameterStatus at login: the server's value, or (pgcarrier.reporting)
 * whether its backend reports its own session state, which is pgcarrier's
 * to know and not a parameter any client is told.
 */
static void
login_param(pgc_server *s, const uint8_t *body, size_t len)
{
	const char *name = (const char *) body;
	size_t nl = strnlen(name, len);

	if (nl + 1 < len && strcmp(name, PGC_REPORTING_PARAM) == 0)
	{
		const char *value = name + nl + 1;

		s->reports = strnlen(value, len - nl - 1) == 2 && strcmp(value, "on") == 0;
		return;
	}
	record_param(&s->params, body, len);
}

/* Handle one complete message during login. Returns false if s was closed. */
static bool
login_message(pgc_server *s, uint8_t type, const uint8_t *body, size_t len)
{
	pgc_pool *p = s->pool;
	pgc_msgbuf *out = pgc_msgbuf_ensure(&s->out);

	switch (type)
	{
		case PGC_BE_AUTHENTICATION:
		{
			uint32_t code;

			if (len < 4)
				break;
			code = pgc_get_u32(body);
			if (code == PGC_AUTHREQ_OK)
				return true;
			if ((code == PGC_AUTHREQ_CLEARTEXT || code == PGC_AUTHREQ_MD5 || (code == PGC_AUTHREQ_SASL && !s->have_scram_keys)) && s->login_password == NULL)
			{
				server_login_failed_msg(s, "28P01",
										"pgcarrier has no password to log in to the server as user \"%s\"",
										p->user);
				return false;
			}
			if (code == PGC_AUTHREQ_CLEARTEXT && (pgc_secret_is_md5(s->login_password) || pgc_secret_is_scram(s->login_password)))
			{
				/* A hash sent as a password would travel in clear, and an md5 hash would even work. */
				server_login_failed_msg(s, "28P01",
										"server asks for a clear-text password, but pgcarrier has only a hashed "
										"password for user \"%s\"", p->user);
				return false;
			}
			if (code == PGC_AUTHREQ_CLEARTEXT)
			{
				pgc_msgbuf_begin(out, PGC_FE_PASSWORD);
				pgc_msgbuf_str(out, s->login_password);
				pgc_msgbuf_end(out);
			}
			else if (code == PGC_AUTHREQ_MD5 && len >= 8)
			{
				char resp[36];

				pgc_md5_response(s->login_password, p->user, body + 4, resp);
				pgc_msgbuf_begin(out, PGC_FE_PASSWORD);
				pgc_msgbuf_str(out, resp);
				pgc_msgbuf_end(out);
				OPENSSL_cleanse(resp, sizeof(resp));
			}
			else if (code == PGC_AUTHREQ_SASL)
			{
				char first[256];
				int n;
				bool have_scram = false;

				for (size_t pos = 4; pos < len && body[pos]; pos += strnlen((const char *) body + pos, len - pos) + 1)
					if (strncmp((const char *) body + pos, "SCRAM-SHA-256", len - pos) == 0)
						have_scram = true;
				if (!have_scram)
				{
					server_login_failed_msg(s, "28000", "server offers no SASL mechanism pgcarrier supports");
					return false;
				}
				if (s->login_password == NULL || pgc_secret_is_md5(s->login_password) ||
					pgc_secret_is_scram(s->login_password))
				{
					/* Pass-through: the keys a client proved are as good as the password. */
					if (s->have_scram_keys)
						s->scram = pgc_scram_client_new_keys(s->scram_keys, s->scram_keys + 32);
					else
					{
						server_login_failed_msg(s, "28P01",
												"server asks for SCRAM-SHA-256, but pgcarrier has only a hashed "
												"password for user \"%s\"; give it the clear-text password, or "
												"let a client log in with SCRAM first (pass-through)", p->user);
						return false;
					}
				}
				else
				{
					s->have_scram_keys = false;     /* the password it is */
					s->scram = pgc_scram_client_new(s->login_password);
				}
				n = s->scram ? pgc_scram_client_first(s->scram, first, sizeof(first)) : -1;
				if (n < 0)
				{
					server_login_failed_msg(s, "53200", "out of memory");
					return false;
				}
				pgc_msgbuf_begin(out, PGC_FE_PASSWORD);
				pgc_msgbuf_str(out, "SCRAM-SHA-256");
				pgc_msgbuf_u32(out, (uint32_t) n);
				pgc_msgbuf_bytes(out, first, (size_t) n);
				pgc_msgbuf_end(out);
			}
			else if (code == PGC_AUTHREQ_SASL_CONTINUE && s->scram)
			{
				char final[512];
				char err[200];
				int n = s->have_scram_keys
					? pgc_scram_client_final_keys(s->scram, (const char *) body + 4, len - 4,
												  final, sizeof(final), err, sizeof(err))
					: pgc_scram_client_final(s->scram, (const char *) body + 4, len - 4,
											 final, sizeof(final), err, sizeof(err));

				if (n < 0)
				{
					server_login_failed_msg(s, "08006", "SCRAM authentication with the server failed: %s", err);
					return false;
				}
				pgc_msgbuf_begin(out, PGC_FE_PASSWORD);
				pgc_msgbuf_bytes(out, final, (size_t) n);
				pgc_msgbuf_end(out);
				OPENSSL_cleanse(final, sizeof(final));
			}
			else if (code == PGC_AUTHREQ_SASL_FINAL && s->scram)
			{
				char err[200];

				if (pgc_scram_client_verify(s->scram, (const char *) body + 4, len - 4, err, sizeof(err)) < 0)
				{
					server_login_failed_msg(s, "08006", "the server failed SCRAM verification: %s", err);
					return false;
				}
			}
			else
			{
				server_login_failed_msg(s, "28000", "server asks for an authentication method pgcarrier does not support (%u)",
										code);
				return false;
			}
			return true;
		}
		case PGC_BE_PARAMETER_STATUS:
			login_param(s, body, len);
			return true;
		case PGC_BE_BACKEND_KEY_DATA:
			if (len >= 8)
			{
				s->backend_pid = pgc_get_u32(body);
				s->backend_key = pgc_get_u32(body + 4);
			}
			return true;
		case PGC_BE_ERROR:
		{
			pgc_msgbuf err;

			if (server_retry_with_tls(s))
				return false;
			/* The server's own error goes to the clients that were waiting, as it would directly. */
			pgc_msgbuf_init(&err);
			pgc_msgbuf_bytes(&err, body - 5, len + 5);
			server_login_failed(s, &err);
			pgc_msgbuf_free(&err);
			return false;
		}
		case PGC_BE_READY_FOR_QUERY:
		{
			wipe_password(s);
			s->txn_status = len >= 1 ? (char) body[0] : PGC_TXN_IDLE;
			pthread_mutex_lock(&p->lock);
			if (!p->have_welcome)
			{
				size_t pos = 0;
				const char *k, *v;

				while (pgc_params_next(&s->params, &pos, &k, &v))
					pgc_params_set(&p->welcome, k, v);
				p->have_welcome = true;
			}
			else
				pgc_pool_server_wide_params(p, &s->params);
			pthread_mutex_unlock(&p->lock);
			if (s->in && s->in->start == s->in->end)
			{
				pgc_worker_put_buf(s->worker, s->in);
				s->in = NULL;
			}
			pgc_log(PGC_DEBUG, "new server connection %s/%s (backend %u)", p->dbname, p->user, s->backend_pid);
			pgc_pool_put(s);
			return false;       /* s now belongs to the pool */
		}
		case PGC_BE_NOTICE:
		case PGC_BE_NEGOTIATE_VERSION:
			return true;
		default:
			server_login_failed_msg(s, "08P01", "unexpected message type '%c' from server during login", type);
			return false;
	}
	server_login_failed_msg(s, "08P01", "invalid authentication request from server");
	return false;
}

/*
 * Messages of our own queries (login or reset): handle whole messages,
 * consume them. Returns false when s is gone (closed, or handed to the pool).
 */
static bool
server_consume(pgc_server *s)
{
	pgc_iobuf *b = s->in;

	while (b && b->end - b->start >= 5)
	{
		uint8_t type;
		uint32_t len;

		pgc_msg_header(b->data + b->start, b->end - b->start, &type, &len);
		if (len < 4 || len > PGC_IOBUF_SIZE - 5)
		{
			if (s->state == SV_LOGIN)
				server_login_failed_msg(s, "08P01", "invalid message length from server");
			else
				pgc_server_close(s, "invalid message length");
			return false;
		}
		if (b->end - b->start < (size_t) len + 1)
			return true;
		{
			const uint8_t *body = b->data + b->start + 5;
			size_t blen = len - 4;

			b->start += (size_t) len + 1;
			b->scan = b->start;
			if (s->state == SV_LOGIN)
			{
				if (!login_message(s, type, body, blen))
					return false;
			}
			else if (s->state == SV_RESETTING)
			{
				if (type == PGC_BE_PARAMETER_STATUS)
					record_param(&s->params, body, blen);
				else if (type == PGC_BE_ERROR)
				{
					const char *m = pgc_error_field(body, blen, PGC_ERRF_MESSAGE);

					pgc_log(PGC_WARNING, "reset of server connection %s/%s failed: %s",
							s->pool->dbname, s->pool->user, m ? m : "?");
					s->dirty_close = true;
				}
				else if (type == PGC_BE_READY_FOR_QUERY)
				{
					s->txn_status = blen >= 1 ? (char) body[0] : PGC_TXN_IDLE;
					if (--s->reset_pending <= 0)
					{
						s->reset_pending = 0;
						if (s->dirty_close || s->txn_status != PGC_TXN_IDLE || b->start != b->end)
						{
							pgc_server_close(s, "reset did not leave it clean");
							return false;
						}
						if (s->reset_ran)
						{
							/* The reset query discarded what we had SET; keep only reported values. */
							pgc_params p2 = {0};
							size_t pos = 0;
							const char *k, *v;

							while (pgc_params_next(&s->params, &pos, &k, &v))
								if (pgc_param_is_reported(k))
									pgc_params_set(&p2, k, v);
							pgc_params_free(&s->params);
							s->params = p2;
							s->reset_ran = false;
							/* and, for all we know, the prepared statements, the unnamed one and sequence state */
							pgc_stmt_cache_clear(&s->stmts, &s->pool->stmts);
							s->unnamed_owner = 0;
							s->seq_owner = 0;
						}
						pgc_worker_put_buf(s->worker, s->in);
						s->in = NULL;
						pgc_pool_put(s);
						return false;
					}
				}
			}
		}
	}
	if (b && b->start == b->end)
		b->start = b->scan = b->end = 0;
	return true;
}

void
pgc_server_event(pgc_server *s, uint32_t events)
{
	if (s->state == SV_LINKED && s->client)
	{
		pgc_relay_server_event(s->client, s, events);
		return;
	}
	if (s->state == SV_IDLE)
	{
		pgc_pool_idle_event(s);
		return;
	}
	if (s->state == SV_CONNECTING)
	{
		int err = 0;
		socklen_t el = sizeof(err);

		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err)
		{
			if (s->pool->host[0] == '/')
				server_login_failed_msg(s, "08001", "could not connect to server on socket \"%s/.s.PGSQL.%d\": %s",
										s->pool->host, s->pool->port, strerror(err));
			else
				server_login_failed_msg(s, "08001", "could not connect to server at \"%s\", port %d: %s",
										s->pool->host, s->pool->port, strerror(err));
			return;
		}
		s->state = s->tls_offer ? SV_TLS_ASK : SV_LOGIN;
	}
	if (s->state == SV_TLS)
	{
		if (server_tls_step(s))
			pgc_server_set_events(s, EPOLLIN | (s->out && s->out->len ? EPOLLOUT : 0));
		return;
	}
	if (events & EPOLLOUT || (s->out && s->out->len))
	{
		int r = server_flush_out(s);

		if (r < 0)
		{
			if (PGC_SV_STARTING(s->state))
				server_login_failed_msg(s, "08006", "could not send data to server: %s", strerror(errno));
			else
				pgc_server_close(s, "write failed");
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
	{
		for (;;)
		{
			ssize_t n = pgc_iobuf_read(s->worker, s->fd, s->tls, &s->in);

			if (n == -2)
				break;
			if (n <= 0)
			{
				if (PGC_SV_STARTING(s->state))
					server_login_failed_msg(s, "08006", "server closed the connection unexpectedly during login");
				else
				{
					pgc_stats_server_lost(NULL, s, "the connection was closed while pgcarrier reset it");
					pgc_server_close(s, "server closed the connection");
				}
				return;
			}
			if (s->state == SV_TLS_ASK)
			{
				if (server_tls_answer(s))
					pgc_server_event(s, EPOLLOUT);  /* start the handshake, or go on with the login */
				return;
			}
			if (!server_consume(s))
				return;
		}
	}
	if (s->state == SV_LOGIN || s->state == SV_RESETTING || s->state == SV_TLS_ASK)
		pgc_server_set_events(s, EPOLLIN | (s->out && s->out->len ? EPOLLOUT : 0));
}

void
pgc_server_adopt(pgc_server *s, pgc_worker *w)
{
	s->worker = w;
	if (s->node.next == NULL)
		pgc_list_push_tail(&w->servers, &s->node);
}

void
pgc_server_release(pgc_server *s)
{
	pgc_pool *p = s->pool;
	bool session = pgc_pool_mode_of(p) == PGC_POOL_SESSION;
	const pgc_config *cfg = pgc_engine_config();
	bool need_rollback, need_reset;
	int draining = 0;
	pgc_msgbuf *out;

	/* pgcarrier's own Queries still running (a probe, say) are read to their end; anything else is not. */
	if (pgc_relay_in_flight(s) > 0 && !s->dirty_close && !s->confused)
		draining = pgc_relay_drain(s);
	if (draining < 0 || (s->in && s->in->start != s->in->end && draining == 0) || s->be.skip || s->be.discard ||
		s->unsynced || s->be_state != PGC_BE_READY || s->confused || s->dirty_close)
	{
		pgc_server_close(s, "released while busy");
		return;
	}
	pgc_server_adopt(s, s->worker);
	need_rollback = s->txn_status != PGC_TXN_IDLE;
	/* server_reset_query_always: in transaction and statement mode too (PgBouncer's meaning). */
	need_reset = ((session || cfg->server_reset_query_always) && cfg->server_reset_query &&
				  cfg->server_reset_query[0]) || s->needs_discard;
	s->reset_pending += draining;
	if (!need_rollback && !need_reset && draining == 0)
	{
		if (s->in)
		{
			pgc_worker_put_buf(s->worker, s->in);
			s->in = NULL;
		}
		pgc_pool_put(s);
		return;
	}
	/* Unlink first, so that a cancel request can no longer reach this backend for the old client. */
	if (s->client)
	{
		pthread_mutex_lock(&p->lock);
		s->client->server = NULL;
		s->client = NULL;
		pthread_mutex_unlock(&p->lock);
	}
	out = pgc_msgbuf_ensure(&s->out);
	if (out == NULL)
	{
		pgc_server_close(s, "out of memory");
		return;
	}
	if (need_rollback)
	{
		pgc_msgbuf_query(out, "ROLLBACK");
		s->reset_pending++;
	}
	if (need_reset)
	{
		/* A guarded client's session state may be on it: only DISCARD ALL surely clears that. */
		pgc_msgbuf_query(out, s->needs_discard ? "DISCARD ALL" : cfg->server_reset_query);
		s->needs_discard = false;
		s->reset_pending++;
		s->reset_ran = true;
	}
	s->state = SV_RESETTING;
	s->state_since = s->worker->now;
	if (server_flush_out(s) < 0)
	{
		pgc_server_close(s, "write failed");
		return;
	}
	pgc_server_set_events(s, EPOLLIN | (out->len ? EPOLLOUT : 0));
	/* Answers already read (of a probe still being drained) are not announced again. */
	if (s->in && s->in->start < s->in->end)
		(void) server_consume(s);
}

void
pgc_server_check(pgc_server *s, pgc_worker *w)
{
	const pgc_config *cfg = pgc_engine_config();
	pgc_msgbuf *out = pgc_msgbuf_ensure(&s->out);

	/*
	 * It runs as a reset does: its answers are read and dropped, an error
	 * or anything but an idle ReadyForQuery closes it, and the pool gets
	 * it back (for the client waiting, most likely) when it has answered.
	 */
	pgc_server_adopt(s, w);
	if (out == NULL)
	{
		pgc_server_close(s, "out of memory");
		return;
	}
	pgc_msgbuf_query(out, cfg->server_check_query ? cfg->server_check_query : "");
	s->reset_pending = 1;
	s->state = SV_RESETTING;
	s->state_since = w->now;
	if (server_flush_out(s) < 0)
	{
		pgc_server_close(s, "server_check_query could not be sent");
		return;
	}
	pgc_server_set_events(s, EPOLLIN | (out->len ? EPOLLOUT : 0));
}

static bool
valid_guc_name(const char *k)
{
	if (!*k)
		return false;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
			  *k == '_' || *k == '.'))
			return false;
	return true;
}

/* Start the next statement of a multi-statement Query being built. */
static void
next_statement(pgc_msgbuf *sql)
{
	if (sql->len)
		pgc_msgbuf_text(sql, "; ");
}

static void
append_reset(pgc_msgbuf *sql, const char *name)
{
	next_statement(sql);
	pgc_msgbuf_text(sql, "RESET \"");
	pgc_msgbuf_text(sql, name);
	pgc_msgbuf_byte(sql, '"');
}

/*
 * Settings an earlier client left on s that c does not have: RESET. The
 * role goes first, so that the others are reset with the login user's own
 * rights. Non-reported ones are forgotten from s->params.
 */
static void
reset_leftovers(pgc_server *s, pgc_client *c, pgc_msgbuf *sql)
{
	pgc_params keep = {0};
	size_t pos = 0;
	const char *k, *v;

	if (pgc_params_get(&s->params, "role") && !pgc_client_param(c, "role"))
		append_reset(sql, "role");
	while (pgc_params_next(&s->params, &pos, &k, &v))
	{
		const char *dflt;

		if (pgc_client_param(c, k) || !valid_guc_name(k) || strcasecmp(k, "role") == 0 ||
			pgc_param_is_read_only(k))
			continue;
		dflt = pgc_params_get(&c->pool->welcome, k);
		if (dflt && strcmp(dflt, v) == 0)
			continue;
		if (dflt == NULL && pgc_param_is_reported(k))
			continue;
		append_reset(sql, k);
	}
	pos = 0;
	while (pgc_params_next(&s->params, &pos, &k, &v))
		if (pgc_param_is_reported(k) || pgc_client_param(c, k))
			pgc_params_set(&keep, k, v);
	pgc_params_free(&s->params);
	s->params = keep;
}

/*
 * What c wants and s does not have, as set_config() calls: it parses values
 * as the startup packet and pg_settings spell them, which SET would not for
 * list settings such as search_path. The role comes last, so that settings
 * only the login user may change are set first, as the client did.
 */
static void
set_wanted(pgc_server *s, pgc_client *c, pgc_msgbuf *sql)
{
	pgc_msgbuf calls;
	size_t pos = 0;
	const char *k, *v;
	const char *role = pgc_client_param(c, "role");
	pgc_params mine = pgc_client_params(c);

	pgc_msgbuf_init(&calls);
	while (pgc_params_next(&mine, &pos, &k, &v))
	{
		const char *have = pgc_params_get(&s->params, k);

		if (!valid_guc_name(k) || pgc_param_is_read_only(k) || strcasecmp(k, "role") == 0 ||
			strcasecmp(k, "exit_on_error") == 0 || (have && strcmp(have, v) == 0))
			continue;
		pgc_msgbuf_text(&calls, calls.len ? ", " : "SELECT ");
		pgc_msgbuf_set_config(&calls, k, v);
		/* A reported one is recorded from the server's ParameterStatus, in its spelling. */
		if (!pgc_param_is_reported(k))
			pgc_params_set(&s->params, k, v);
	}
	if (calls.len)
	{
		next_statement(sql);
		pgc_msgbuf_bytes(sql, calls.data, calls.len);
	}
	pgc_msgbuf_free(&calls);
	if (role && !(pgc_params_get(&s->params, "role") && strcmp(pgc_params_get(&s->params, "role"), role) == 0))
	{
		next_statement(sql);
		pgc_msgbuf_text(sql, "SELECT ");
		pgc_msgbuf_set_config(sql, "role", role);
		pgc_params_set(&s->params, "role", role);
	}
}

/*
 * What reset_leftovers and set_wanted do is a function of the client's
 * params, the server's and the pool's welcome only, and once they have
 * nothing to send they change nothing more (each leaves what the other
 * kept). So when those are byte for byte what they were after a sync that
 * sent nothing, there is nothing to send again: the usual link, where the
 * clients of a pool connect with the same parameters, costs two memcmp
 * calls instead of a comparison of every setting with every other.
 */
bool
pgc_server_params_match(pgc_server *s, pgc_client *c)
{
	unsigned wide_gen = __atomic_load_n(&s->pool->server_wide_gen, __ATOMIC_ACQUIRE);
	pgc_params mine = pgc_client_params(c);

	return pgc_params_memo_holds(&s->synced, &mine, &s->params, wide_gen);
}

void
pgc_server_sync_params(pgc_server *s, pgc_client *c)
{
	pgc_msgbuf sql;
	pgc_msgbuf *out;
	pgc_pending *p;
	const char *eoe;
	unsigned wide_gen = __atomic_load_n(&s->pool->server_wide_gen, __ATOMIC_ACQUIRE);
	pgc_params mine = pgc_client_params(c);

	if (pgc_params_memo_holds(&s->synced, &mine, &s->params, wide_gen))
		return;
	eoe = pgc_client_param(c, "exit_on_error");
	pgc_msgbuf_init(&sql);
	reset_leftovers(s, c, &sql);
	set_wanted(s, c, &sql);
	if (sql.len == 0 || sql.failed)
	{
		if (sql.len == 0 && !sql.failed)
			pgc_params_memo_keep(&s->synced, &mine, &s->params, wide_gen);
		pgc_msgbuf_free(&sql);
		return;
	}
	out = pgc_msgbuf_ensure(&s->out);
	if (out)
	{
		/*
		 * One Query, sent with the client's first message. If any of it
		 * fails (the client's role was dropped, say), exit_on_error makes
		 * the backend end at once, before it reads the client's message:
		 * nothing of the client ever runs with an earlier client's
		 * settings, and the client is told (relay.c).
		 */
		pgc_msgbuf_begin(out, PGC_FE_QUERY);
		pgc_msgbuf_text(out, "SET exit_on_error = on; ");
		pgc_msgbuf_bytes(out, sql.data, sql.len);
		if (eoe)
		{
			pgc_msgbuf_text(out, "; SELECT ");
			pgc_msgbuf_set_config(out, "exit_on_error", eoe);
		}
		else
			pgc_msgbuf_text(out, "; RESET exit_on_error");
		pgc_msgbuf_byte(out, 0);
		pgc_msgbuf_end(out);
		p = out->failed ? NULL : pgc_relay_expect(s, PGC_FE_QUERY, PGC_OWNER_POOLER);
		if (p)
			p->on_answer = PGC_ANSWER_RESTORE;
		else
			s->dirty_close = true;
	}
	pgc_msgbuf_free(&sql);
}

void
pgc_server_tick(pgc_server *s, double now)
{
	const pgc_config *cfg = pgc_engine_config();

	if ((PGC_SV_STARTING(s->state)) && cfg->server_connect_timeout > 0 &&
		now - s->created_at > cfg->server_connect_timeout)
		server_login_failed_msg(s, "08001", "could not connect to server: timeout after %g s",
								cfg->server_connect_timeout);
	else if (s->state == SV_RESETTING && now - s->state_since > 60)
		pgc_server_close(s, "reset took too long");
}
