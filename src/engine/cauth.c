/*
 * cauth.c - client authentication (see cauth.h).
 *
 * Every log line about a refused login goes through pgc_log_limited: a
 * flood of bad logins would otherwise write one or two lines per attempt.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authq.h"
#include "authwork.h"
#include "cauth.h"
#include "console.h"
#include "hba.h"
#include "log.h"
#include "sauth.h"
#include "tls.h"

typedef enum auth_stage {
	WAIT_PASSWORD,            /* AuthenticationCleartextPassword sent */
	WAIT_MD5,                 /* AuthenticationMD5Password sent */
	WAIT_SASL_INITIAL,        /* AuthenticationSASL sent */
	WAIT_SASL_FINAL,          /* AuthenticationSASLContinue sent */
	WAIT_QUERY,               /* auth_query runs for the secret; nothing sent yet */
	WAIT_SECRET,              /* the SCRAM secret of a clear-text one is derived (authwork); nothing sent yet */
	WAIT_CHECK                /* the clear-text password the client sent is checked (authwork) */
} auth_stage;

/* The stages in which cauth waits for a helper thread, not for the client. */
#define WAITS_OFF_LOOP(stage) ((stage) == WAIT_QUERY || (stage) == WAIT_SECRET || (stage) == WAIT_CHECK)

typedef struct pgc_cauth {
	auth_stage stage;
	uint8_t salt[4];
	pgc_scram_server *scram;
	char *secret;             /* the user's secret (NULL: none known) */
	int method;               /* PGC_HBA_PASSWORD, _MD5 or _SCRAM */
	bool from_query;          /* secret came from auth_query */
	pgc_authq_wait *wait;     /* WAIT_QUERY: the request in flight */
	pgc_authwork *work;       /* WAIT_SECRET / WAIT_CHECK: the request in flight */
	char *sent;               /* WAIT_CHECK: the password the client sent (wiped) */
} pgc_cauth;

/*
 * New credentials for p's server logins (caller holds p->lock): whatever
 * made earlier logins fail (none to offer, or old ones), the next login is
 * tried at once rather than after server_login_retry (see core.h).
 */
static void
retry_logins_now(pgc_pool *p)
{
	p->login_failures = 0;
	p->login_retry_at = 0;
}

/*
 * SCRAM pass-through: a client proved the keys of a stored SCRAM secret of
 * the pool's server login user; the pool's servers may log in with them.
 */
static void
remember_scram_keys(pgc_client *c, const pgc_cauth *a)
{
	pgc_pool *p = c->pool;
	uint8_t keys[64];

	if (p == NULL || a->secret == NULL || !pgc_secret_is_scram(a->secret) ||
		pgc_scram_server_keys(a->scram, keys, keys + 32) < 0)
		return;
	pthread_mutex_lock(&p->lock);
	if (strcmp(p->user, c->user) == 0)
	{
		if (!p->have_scram_keys || CRYPTO_memcmp(p->scram_keys, keys, sizeof(keys)) != 0)
			retry_logins_now(p);
		memcpy(p->scram_keys, keys, sizeof(keys));
		p->have_scram_keys = true;
	}
	pthread_mutex_unlock(&p->lock);
	OPENSSL_cleanse(keys, sizeof(keys));
}

/*
 * Pass-through with a secret from auth_query: a client proved a secret that
 * auth_query gave for the pool's server login user, and the pool has no
 * password of its own. Its servers then log in with that secret, as with
 * one from the auth file: md5 works with the hash itself, and with a SCRAM
 * secret the server login uses the keys remember_scram_keys kept. With the
 * password method the client sent the clear-text password itself (clear):
 * that one is kept instead, as it serves every method the server may ask.
 */
static void
remember_secret(pgc_client *c, const pgc_cauth *a, const char *clear)
{
	pgc_pool *p = c->pool;
	const char *keep = clear ? clear : a->secret;
	char *copy = NULL, *old = NULL;

	if (p == NULL || !a->from_query || keep == NULL)
		return;
	if ((copy = strdup(keep)) == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	if (strcmp(p->user, c->user) == 0 && p->password == NULL)
	{
		if (p->learned_secret == NULL || strcmp(p->learned_secret, copy) != 0)
			retry_logins_now(p);
		old = p->learned_secret;
		p->learned_secret = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	if (old)
	{
		OPENSSL_cleanse(old, strlen(old));
		free(old);
	}
	if (copy)
	{
		OPENSSL_cleanse(copy, strlen(copy));
		free(copy);
	}
}

static void
send_auth_request(pgc_client *c, uint32_t code, const void *data, size_t len)
{
	pgc_msgbuf *out = pgc_msgbuf_ensure(&c->out);

	if (out == NULL)
		return;
	pgc_msgbuf_begin(out, PGC_BE_AUTHENTICATION);
	pgc_msgbuf_u32(out, code);
	pgc_msgbuf_bytes(out, data, len);
	pgc_msgbuf_end(out);
}

static int
refuse_password(pgc_client *c)
{
	pgc_log_limited(PGC_LOG, "login failed: client %s, user \"%s\", database \"%s\": wrong password or no secret",
					pgc_client_addr(c), c->user, c->dbname);
	pgc_client_fatal(c, "28P01", "password authentication failed for user \"%s\"", c->user);
	return -1;
}

/* SO_PEERCRED's uid must be the OS user of the requested name. */
static int
peer_check(pgc_client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
	{
		pgc_client_fatal(c, "28000", "could not get peer credentials: peer authentication failed for user \"%s\"",
						 c->user);
		return -1;
	}
	if (strcmp(pw.pw_name, c->user) != 0)
	{
		pgc_log_limited(PGC_LOG, "client %s: provided user name (%s) and authenticated user name (%s) do not match",
				pgc_client_addr(c), c->user, pw.pw_name);
		pgc_client_fatal(c, "28000", "Peer authentication failed for user \"%s\"", c->user);
		return -1;
	}
	return 1;
}

/*
 * The client's certificate, as PostgreSQL checks it for the cert method and
 * for clientcert=verify-ca / verify-full on the line of another method. (A
 * certificate that does not verify already failed the TLS handshake.)
 * 1 fine, -1 refused and closed.
 */
static int
cert_check(pgc_client *c, int method, pgc_hba_clientcert level)
{
	char cn[256];
	int r = c->tls ? pgc_tls_peer_cn(c->tls, cn, sizeof(cn)) : 0;

	if (r == 0)
	{
		pgc_client_fatal(c, "28000", "connection requires a valid client certificate");
		return -1;
	}
	if (method != PGC_HBA_CERT && level == PGC_CLIENTCERT_CA)
		return 1;
	if (r > 0 && strcmp(cn, c->user) == 0)
		return 1;
	if (r < 0)
		pgc_log_limited(PGC_LOG, "login failed: client %s, user \"%s\", database \"%s\": certificate: %s",
						pgc_client_addr(c), c->user, c->dbname, cn);
	else if (method == PGC_HBA_CERT)
		pgc_log_limited(PGC_LOG, "login failed: client %s, user \"%s\", database \"%s\": provided user name (%s) "
						"and authenticated user name (%s) do not match", pgc_client_addr(c), c->user, c->dbname, c->user, cn);
	else
		pgc_log_limited(PGC_LOG, "login failed: client %s, user \"%s\", database \"%s\": certificate validation "
						"(clientcert=verify-full): CN mismatch", pgc_client_addr(c), c->user, c->dbname);
	/* The client hears what the method's own failure says, as from PostgreSQL. */
	if (method == PGC_HBA_CERT)
		pgc_client_fatal(c, "28000", "certificate authentication failed for user \"%s\"", c->user);
	else if (method == PGC_HBA_TRUST)
		pgc_client_fatal(c, "28000", "authentication failed for user \"%s\": invalid authentication method",
						 c->user);
	else
		pgc_client_fatal(c, "28P01", "password authentication failed for user \"%s\"", c->user);
	return -1;
}

/* auth_query could not give an answer: the client learns only that (the log has why). */
static int
authq_failed(pgc_client *c, int status)
{
	switch (status)
	{
		case PGC_AUTHQ_STOPPING:
			/* Not logged in yet: as PostgreSQL answers a connection during shutdown. */
			pgc_client_fatal(c, "57P03", "the database system is shutting down");
			break;
		case PGC_AUTHQ_NOMEM:
			pgc_client_fatal(c, "53200", "out of memory");
			break;
		default:
			pgc_client_fatal(c, status == PGC_AUTHQ_CONN_FAILED ? "08006" : "28000",
							 "authentication failed for user \"%s\": auth_query could not be run "
							 "(see pgcarrier's log)", c->user);
			break;
	}
	return -1;
}

static int challenge(pgc_client *c, pgc_cauth *a);

static void
free_str(char **s)
{
	if (*s)
	{
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

/* Is secret a clear-text password (not a stored md5 or SCRAM secret, not empty)? */
static bool
is_clear_text(const char *secret)
{
	return secret && secret[0] && !pgc_secret_is_scram(secret) && !pgc_secret_is_md5(secret);
}

/*
 * Send AuthenticationSASL for an exchange against secret: a stored SCRAM
 * secret, or anything else for a mock exchange (never a clear-text one:
 * deriving it costs PBKDF2, see start_scram).
 */
static int
send_sasl(pgc_client *c, pgc_cauth *a, const char *secret)
{
	static const char mechs[] = PGC_SCRAM_MECH "\0";
	/* On TLS, channel binding is offered first, as PostgreSQL does. */
	static const char mechs_plus[] = PGC_SCRAM_MECH_PLUS "\0" PGC_SCRAM_MECH "\0";
	const uint8_t *cb = NULL;
	int cb_len = c->tls ? pgc_tls_channel_binding(c->tls, &cb) : -1;

	a->scram = pgc_scram_server_new(c->user, secret, cb_len > 0 ? cb : NULL, cb_len > 0 ? (size_t) cb_len : 0);
	if (a->scram == NULL)
	{
		pgc_client_fatal(c, "53200", "out of memory");
		return -1;
	}
	a->stage = WAIT_SASL_INITIAL;
	if (cb_len > 0)
		send_auth_request(c, PGC_AUTHREQ_SASL, mechs_plus, sizeof(mechs_plus));
	else
		send_auth_request(c, PGC_AUTHREQ_SASL, mechs, sizeof(mechs));
	return 0;
}

/*
 * SCRAM against secret. A clear-text secret needs its SCRAM secret, which
 * costs 4096 PBKDF2 iterations: derived once on the helper thread and cached
 * (authwork.h), so that neither a flood of attempts nor the first one stalls
 * the worker; the client waits in WAIT_SECRET until it is there.
 */
static int
start_scram(pgc_client *c, pgc_cauth *a, const char *secret)
{
	char built[PGC_SCRAM_SECRET_BUF];
	int rc;

	if (!is_clear_text(secret))
		return send_sasl(c, a, secret);
	switch (pgc_authwork_scram_secret(c, secret, built, &a->work))
	{
		case PGC_AUTHWORK_PENDING:
			a->stage = WAIT_SECRET;
			return 0;
		case PGC_AUTHWORK_DONE:
			rc = send_sasl(c, a, built);
			OPENSSL_cleanse(built, sizeof(built));
			return rc;
		default:
			pgc_client_fatal(c, "53200", "out of memory");
			return -1;
	}
}

/* The helper thread derived the SCRAM secret of a clear-text one (WAIT_SECRET): start the exchange. */
static int
resume_secret(pgc_client *c, pgc_cauth *a)
{
	char built[PGC_SCRAM_SECRET_BUF];
	int result = -1;
	int rc;

	if (pgc_authwork_take(a->work, &result, built) == PGC_AUTHWORK_PENDING)
		return 0;
	a->work = NULL;
	if (result != 0)
	{
		pgc_client_fatal(c, "XX000", "could not build a SCRAM secret for user \"%s\"", c->user);
		return -1;
	}
	rc = send_sasl(c, a, built);
	OPENSSL_cleanse(built, sizeof(built));
	return rc;
}

/*
 * "password" authentication against a stored SCRAM secret: checking the
 * password costs PBKDF2 at the secret's iteration count, so it is done on
 * the helper thread; the client waits in WAIT_CHECK. password: what it sent.
 */
static int
start_check(pgc_client *c, pgc_cauth *a, const char *password)
{
	if ((a->sent = strdup(password)) == NULL ||
		pgc_authwork_verify_plain(c, a->secret, password, &a->work) != PGC_AUTHWORK_PENDING)
	{
		free_str(&a->sent);
		pgc_client_fatal(c, "53200", "out of memory");
		return -1;
	}
	a->stage = WAIT_CHECK;
	return 0;
}

/* The helper thread checked the password (WAIT_CHECK): in, or refused. */
static int
resume_check(pgc_client *c, pgc_cauth *a)
{
	int result = -1;

	if (pgc_authwork_take(a->work, &result, NULL) == PGC_AUTHWORK_PENDING)
		return 0;
	a->work = NULL;
	if (result != 0)
	{
		free_str(&a->sent);
		return refuse_password(c);
	}
	remember_secret(c, a, a->sent);
	free_str(&a->sent);
	return 1;
}

int
pgc_cauth_begin(pgc_client *c)
{
	const pgc_config *cfg = pgc_engine_config();
	int method;
	const char *secret;
	pgc_cauth *a;

	/* admin_peer_same_uid: the kernel vouches for the console's peer (console.h). */
	if (pgc_console_trusted_peer(c))
		return 1;
	switch (cfg->auth_type)
	{
		case PGC_AUTH_TRUST:
		case PGC_AUTH_ANY:      /* PgBouncer's "any": trust; the database line's user= logs in */
			return 1;
		case PGC_AUTH_PASSWORD:
			method = PGC_HBA_PASSWORD;
			break;
		case PGC_AUTH_MD5:
			method = PGC_HBA_MD5;
			break;
		case PGC_AUTH_SCRAM:
			method = PGC_HBA_SCRAM;
			break;
		case PGC_AUTH_CERT:
			return cert_check(c, PGC_HBA_CERT, PGC_CLIENTCERT_FULL);
		default:
			{
				pgc_hba_conn conn;
				char msg[512];
				int line = 0;
				pgc_hba_clientcert clientcert;

				memset(&conn, 0, sizeof(conn));
				conn.is_unix = c->is_unix;
				conn.is_tls = c->tls != NULL;
				conn.addr = pgc_peer_storage(&c->peer);
				conn.database = c->dbname;
				conn.user = c->user;
				method = pgc_hba_match_rule(cfg->hba, &conn, &line, &clientcert);
				if (method == PGC_HBA_NO_MATCH || method == PGC_HBA_REJECT)
				{
					if (method == PGC_HBA_NO_MATCH)
						pgc_hba_no_match_message(&conn, msg, sizeof(msg));
					else
						pgc_hba_reject_message(&conn, msg, sizeof(msg));
					pgc_log_limited(PGC_LOG, "client %s: %s", pgc_client_addr(c), msg);
					pgc_client_fatal(c, "28000", "%s", msg);
					return -1;
				}
				if (method == PGC_HBA_CERT)
					return cert_check(c, method, PGC_CLIENTCERT_FULL);
				if (clientcert != PGC_CLIENTCERT_OFF && cert_check(c, method, clientcert) < 0)
					return -1;
				if (method == PGC_HBA_TRUST)
					return 1;
				if (method == PGC_HBA_PEER)
					return peer_check(c);
			}
			break;
	}
	secret = pgc_config_find_secret(cfg, c->user);
	a = calloc(1, sizeof(*a));
	if (a == NULL || (secret && (a->secret = strdup(secret)) == NULL))
	{
		free(a);
		pgc_client_fatal(c, "53200", "out of memory");
		return -1;
	}
	c->auth = a;
	a->method = method;
	c->state = CL_AUTH;
	/* auth_query runs on a server of the client's database: the admin console has none. */
	if (secret == NULL && cfg->auth_user && c->console == NULL)
	{
		/* Not in the auth file: ask the server (at once from the cache, or the client waits). */
		char *found = NULL;
		int st = pgc_authq_lookup(c, &found, &a->wait);

		if (st == PGC_AUTHQ_PENDING)
		{
			a->stage = WAIT_QUERY;
			return 0;
		}
		if (st != PGC_AUTHQ_FOUND)
			return authq_failed(c, st);
		a->secret = found;
		a->from_query = true;
	}
	return challenge(c, a);
}

/* The secret is known (or known to be missing): send the authentication request. */
static int
challenge(pgc_client *c, pgc_cauth *a)
{
	const char *secret = a->secret;
	int method = a->method;

	/* As PostgreSQL: md5 with a SCRAM secret (or none) is done as SCRAM. */
	if (method == PGC_HBA_SCRAM || (method == PGC_HBA_MD5 && (secret == NULL || pgc_scram_secret_parse(secret, &(pgc_scram_secret){0}) == 0)))
		return start_scram(c, a, secret);
	if (method == PGC_HBA_MD5)
	{
		if (getrandom(a->salt, sizeof(a->salt), 0) != sizeof(a->salt))
		{
			pgc_client_fatal(c, "XX000", "could not generate random salt");
			return -1;
		}
		a->stage = WAIT_MD5;
		send_auth_request(c, PGC_AUTHREQ_MD5, a->salt, sizeof(a->salt));
		return 0;
	}
	a->stage = WAIT_PASSWORD;
	send_auth_request(c, PGC_AUTHREQ_CLEARTEXT, NULL, 0);
	return 0;
}

static int
sauth_failed(pgc_client *c, const pgc_sauth_error *err)
{
	if (err->log_detail[0])
		pgc_log_limited(PGC_LOG, "login failed: client %s, user \"%s\", database \"%s\": %s",
						pgc_client_addr(c), c->user, c->dbname, err->log_detail);
	else
		pgc_log_limited(PGC_LOG, "login failed: client %s, user \"%s\", database \"%s\": %s",
						pgc_client_addr(c), c->user, c->dbname, err->message);
	if (err->detail[0])
	{
		pgc_msgbuf *out = pgc_msgbuf_ensure(&c->out);

		if (out)
		{
			pgc_msgbuf_error(out, PGC_BE_ERROR, "FATAL", err->sqlstate, err->message, err->detail, NULL);
			/* Best effort, as pgc_client_fatal: a client that does not read does not hold us up. */
			(void) pgc_msgbuf_write(c->fd, c->tls, out);
		}
		pgc_client_close(c, "authentication failed");
		return -1;
	}
	pgc_client_fatal(c, err->sqlstate, "%s", err->message);
	return -1;
}

int
pgc_cauth_step(pgc_client *c)
{
	pgc_cauth *a = c->auth;
	pgc_iobuf *b = c->in;
	uint8_t type;
	uint32_t len;
	const uint8_t *body;
	size_t blen;
	char out[512];
	pgc_sauth_error err;
	int rc;

	if (b == NULL || !pgc_msg_header(b->data + b->start, b->end - b->start, &type, &len))
		return 0;
	if (WAITS_OFF_LOOP(a->stage))
		return 0;               /* not asked for anything now: it waits in the buffer */
	if (type != PGC_FE_PASSWORD)
	{
		pgc_client_fatal(c, "08P01", "expected password response, got message type %d", type);
		return -1;
	}
	if (len < 4 || len > 16384)
	{
		pgc_client_fatal(c, "08P01", "invalid message length");
		return -1;
	}
	if (b->end - b->start < (size_t) len + 1)
		return 0;
	body = b->data + b->start + 5;
	blen = len - 4;
	b->start += (size_t) len + 1;
	b->scan = b->start;
	switch (a->stage)
	{
		case WAIT_QUERY:
		case WAIT_SECRET:
		case WAIT_CHECK:
			return 0;           /* not reached: checked before reading */
		case WAIT_PASSWORD:
		case WAIT_MD5:
			{
				const char *secret = a->secret;
				size_t pl = strnlen((const char *) body, blen);

				if (pl + 1 != blen)
				{
					pgc_client_fatal(c, "08P01", "invalid password packet size");
					return -1;
				}
				if (pl == 0)
				{
					pgc_client_fatal(c, "28P01", "empty password returned by client");
					return -1;
				}
				if (secret == NULL)
					return refuse_password(c);
				if (a->stage == WAIT_PASSWORD && pgc_secret_is_scram(secret))
					return start_check(c, a, (const char *) body);
				if (a->stage == WAIT_PASSWORD)
					rc = pgc_password_verify(secret, c->user, (const char *) body);
				else
					rc = pgc_md5_verify(secret, c->user, a->salt, (const char *) body, pl);
				if (rc != 0)
					return refuse_password(c);
				remember_secret(c, a, a->stage == WAIT_PASSWORD ? (const char *) body : NULL);
				return 1;
			}
		case WAIT_SASL_INITIAL:
			{
				size_t ml = strnlen((const char *) body, blen);
				int32_t dl;

				if (ml + 1 + 4 > blen)
				{
					pgc_client_fatal(c, "08P01", "malformed SASL initial response");
					return -1;
				}
				dl = (int32_t) pgc_get_u32(body + ml + 1);
				if (dl < 0 || (size_t) dl != blen - ml - 1 - 4)
				{
					pgc_client_fatal(c, "08P01", "malformed SASL initial response");
					return -1;
				}
				rc = pgc_scram_server_first(a->scram, (const char *) body, (const char *) body + ml + 5,
											(size_t) dl, out, sizeof(out), &err);
				if (rc < 0)
					return sauth_failed(c, &err);
				a->stage = WAIT_SASL_FINAL;
				send_auth_request(c, PGC_AUTHREQ_SASL_CONTINUE, out, (size_t) rc);
				return 0;
			}
		case WAIT_SASL_FINAL:
			rc = pgc_scram_server_final(a->scram, (const char *) body, blen, out, sizeof(out), &err);
			if (rc < 0)
				return sauth_failed(c, &err);
			send_auth_request(c, PGC_AUTHREQ_SASL_FINAL, out, (size_t) rc);
			remember_scram_keys(c, a);
			remember_secret(c, a, NULL);
			return 1;
	}
	return -1;
}

/* auth_query answered (WAIT_QUERY): go on with the secret it gave. */
static int
resume_query(pgc_client *c, pgc_cauth *a)
{
	char *found = NULL;
	int st;

	if (a->wait == NULL)
		return 0;
	st = pgc_authq_take(a->wait, &found);
	if (st == PGC_AUTHQ_PENDING)
		return 0;
	a->wait = NULL;
	if (st != PGC_AUTHQ_FOUND)
		return authq_failed(c, st);
	a->secret = found;
	a->from_query = true;
	return challenge(c, a);
}

int
pgc_cauth_resume(pgc_client *c)
{
	pgc_cauth *a = c->auth;

	if (a == NULL)
		return 0;
	switch (a->stage)
	{
		case WAIT_QUERY:
			return resume_query(c, a);
		case WAIT_SECRET:
			return a->work ? resume_secret(c, a) : 0;
		case WAIT_CHECK:
			return a->work ? resume_check(c, a) : 0;
		default:
			return 0;
	}
}

void
pgc_cauth_abandon(pgc_client *c)
{
	pgc_cauth *a = c->auth;

	if (a == NULL)
		return;
	if (a->wait)
	{
		pgc_authq_cancel(a->wait);
		a->wait = NULL;
	}
	if (a->work)
	{
		pgc_authwork_cancel(a->work);
		a->work = NULL;
	}
}

void
pgc_cauth_free(pgc_client *c)
{
	pgc_cauth *a = c->auth;

	if (a == NULL)
		return;
	pgc_cauth_abandon(c);
	pgc_scram_server_free(a->scram);
	free_str(&a->secret);
	free_str(&a->sent);
	free(a);
	c->auth = NULL;
}
