/*
 * authq.c - auth_query (see authq.h).
 *
 * Shared state (aq.lock): the list of unanswered jobs (one per host, port,
 * dbname and user, each with the clients waiting for it), the cache, and the
 * shutdown flags. Everything else (the connections, "targets") belongs to
 * the thread alone.
 *
 * A pgc_authq_wait is made by the client's worker (lookup) and freed by it
 * (take or cancel). While it is on a job's waiter list the thread may fill
 * it in and post its client, always under aq.lock; the client's cancel takes
 * it off the list under the same lock, so a closed client is never posted.
 *
 * The thread drives libpq's nonblocking API (PQconnectStartParams and
 * PQconnectPoll, PQsendQueryParams, PQconsumeInput) for all targets at once
 * with poll(), plus an eventfd that says "new jobs" or "stop": a dead server
 * holds up only the clients of its own database, and shutdown never waits
 * for a query.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "authq.h"
#include "compat.h"
#include "authwork.h"
#include "log.h"
#include "sauth.h"
#include "tls.h"

#define CACHE_BUCKETS   256
#define CACHE_MAX       10000     /* entries; past this, expired ones go, then all */
#define QUERY_TIMEOUT   30.0      /* seconds, when client_login_timeout does not say less */

typedef struct aq_job aq_job;

struct pgc_authq_wait {
	pgc_authq_wait *prev, *next;  /* job->waiters while unanswered (lock) */
	aq_job *job;                  /* NULL once answered (lock) */
	pgc_client *client;
	int status;                   /* pgc_authq_status (lock) */
	char *secret;                 /* the answer, owned here (lock) */
};

struct aq_job {
	aq_job *next;                 /* aq.jobs (lock) */
	aq_job *tnext;                /* its target's queue (thread) */
	char *key;                    /* host, port, dbname, user (see make_key) */
	char *tkey;                   /* host, port, dbname */
	char *host;
	int port;
	char *dbname;
	char *user;
	pgc_authq_wait *waiters;      /* lock */
	bool assigned;                /* the thread has it (lock) */
	bool retried;                 /* ran again on a new connection (thread) */
};

typedef struct aq_entry {
	struct aq_entry *next;
	char *key;
	char *secret;                 /* NULL: no such user */
	double at;
} aq_entry;

static struct {
	pthread_mutex_t lock;
	bool started;
	pthread_t thread;
	int wakefd;
	bool shutting_down;           /* lock */
	bool stopping;                /* lock */
	aq_job *jobs, **jobs_tail;    /* lock */
	aq_entry *cache[CACHE_BUCKETS];   /* lock */
	int cache_n;
	char *cache_user, *cache_query;   /* what the cache was filled with (lock) */
} aq = {.lock = PTHREAD_MUTEX_INITIALIZER, .wakefd = -1};

/* ------------------------------------------------------------- helpers -- */

static void
free_secret(char *s)
{
	if (s)
	{
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* An unambiguous key: every name with its length in front. */
static char *
make_key(const char *host, int port, const char *dbname, const char *user)
{
	char *k = NULL;
	int n;

	if (user)
		n = asprintf(&k, "%zu:%s|%d|%zu:%s|%zu:%s", strlen(host), host, port, strlen(dbname), dbname,
					 strlen(user), user);
	else
		n = asprintf(&k, "%zu:%s|%d|%zu:%s", strlen(host), host, port, strlen(dbname), dbname);
	return n < 0 ? NULL : k;
}

static void
wake_thread(void)
{
	uint64_t one = 1;

	if (aq.wakefd >= 0 && write(aq.wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pgc_log(PGC_WARNING, "auth_query: could not wake its thread: %s", strerror(errno));
}

/* One line for the log: libpq's messages end with a newline and may have several lines. */
static void
one_line(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (; src && *src && n + 1 < cap; src++)
		dst[n++] = (*src == '\n' || *src == '\r' || *src == '\t') ? ' ' : *src;
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* --------------------------------------------------------------- cache -- */

static unsigned
hash_key(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return h % CACHE_BUCKETS;
}

static void
entry_free(aq_entry *e)
{
	free(e->key);
	free_secret(e->secret);
	free(e);
}

static void
cache_flush(void)
{
	for (int i = 0; i < CACHE_BUCKETS; i++)
	{
		while (aq.cache[i])
		{
			aq_entry *e = aq.cache[i];

			aq.cache[i] = e->next;
			entry_free(e);
		}
	}
	aq.cache_n = 0;
}

/* Drop entries older than lifetime (all of them when lifetime <= 0). Lock held. */
static void
cache_expire(double now, double lifetime)
{
	for (int i = 0; i < CACHE_BUCKETS; i++)
	{
		for (aq_entry **pp = &aq.cache[i]; *pp;)
		{
			aq_entry *e = *pp;

			if (lifetime <= 0 || now - e->at >= lifetime)
			{
				*pp = e->next;
				entry_free(e);
				aq.cache_n--;
			}
			else
				pp = &e->next;
		}
	}
}

/* A fresh entry for key, or NULL. Lock held. */
static aq_entry *
cache_get(const char *key, double now, double lifetime)
{
	for (aq_entry **pp = &aq.cache[hash_key(key)]; *pp; pp = &(*pp)->next)
	{
		aq_entry *e = *pp;

		if (strcmp(e->key, key) != 0)
			continue;
		if (now - e->at < lifetime)
			return e;
		*pp = e->next;
		entry_free(e);
		aq.cache_n--;
		return NULL;
	}
	return NULL;
}

/* Remember an answer. Lock held; out of memory just means no cache. */
static void
cache_put(const char *key, const char *secret, double now, double lifetime)
{
	unsigned b = hash_key(key);
	aq_entry *e;

	for (aq_entry **pp = &aq.cache[b]; *pp; pp = &(*pp)->next)
	{
		if (strcmp((*pp)->key, key) == 0)
		{
			e = *pp;
			*pp = e->next;
			entry_free(e);
			aq.cache_n--;
			break;
		}
	}
	if (aq.cache_n >= CACHE_MAX)
		cache_expire(now, lifetime);
	if (aq.cache_n >= CACHE_MAX)
		cache_flush();
	e = calloc(1, sizeof(*e));
	if (e == NULL || (e->key = strdup(key)) == NULL || (secret && (e->secret = strdup(secret)) == NULL))
	{
		if (e)
			entry_free(e);
		return;
	}
	e->at = now;
	e->next = aq.cache[b];
	aq.cache[b] = e;
	aq.cache_n++;
}

/* Answers found with another auth_user or auth_query are not answers any more. Lock held. */
static void
cache_check_config(const pgc_config *cfg)
{
	if (same_str(cfg->auth_user, aq.cache_user) && same_str(cfg->auth_query, aq.cache_query))
		return;
	cache_flush();
	free(aq.cache_user);
	free(aq.cache_query);
	aq.cache_user = cfg->auth_user ? strdup(cfg->auth_user) : NULL;
	aq.cache_query = cfg->auth_query ? strdup(cfg->auth_query) : NULL;
	if ((cfg->auth_user && !aq.cache_user) || (cfg->auth_query && !aq.cache_query))
	{
		/* Out of memory: forget what we compare with, so the next call flushes again. */
		free(aq.cache_user);
		free(aq.cache_query);
		aq.cache_user = aq.cache_query = NULL;
	}
}

/* ------------------------------------------------------ client's side -- */

static void
job_free(aq_job *j)
{
	free(j->key);
	free(j->tkey);
	free(j->host);
	free(j->dbname);
	free(j->user);
	free(j);
}

int
pgc_authq_lookup(pgc_client *c, char **secret, pgc_authq_wait **waitp)
{
	const pgc_config *cfg = pgc_engine_config();
	pgc_pool *p = c->pool;
	char *key, *tkey, *host;
	char *dbname;
	int port;
	int st = PGC_AUTHQ_PENDING;
	aq_job *j;
	pgc_authq_wait *w;
	bool fresh = false;
	const pgc_database *adb;
	const char *adbname = NULL;

	*secret = NULL;
	*waitp = NULL;
	adb = pgc_compat_auth_db(cfg, c->dbname, &adbname);
	if (adb)
	{
		/* auth_dbname: the query runs on that [databases] entry's server and database. */
		const char *ahost = adb->host ? adb->host : "/var/run/postgresql";

		key = make_key(ahost, adb->port, adbname, c->user);
		tkey = make_key(ahost, adb->port, adbname, NULL);
		host = strdup(ahost);
		dbname = strdup(adbname);
		port = adb->port;
	}
	else
	{
		pthread_mutex_lock(&p->lock);
		key = make_key(p->host, p->port, p->server_dbname, c->user);
		tkey = make_key(p->host, p->port, p->server_dbname, NULL);
		host = strdup(p->host);
		dbname = strdup(p->server_dbname);
		port = p->port;
		pthread_mutex_unlock(&p->lock);
	}
	w = calloc(1, sizeof(*w));
	if (key == NULL || tkey == NULL || host == NULL || dbname == NULL || w == NULL)
	{
		st = PGC_AUTHQ_NOMEM;
		goto done;
	}
	pthread_mutex_lock(&aq.lock);
	if (!aq.started || aq.shutting_down || aq.stopping)
	{
		st = PGC_AUTHQ_STOPPING;
		goto done_locked;
	}
	cache_check_config(cfg);
	if (cfg->auth_query_cache_lifetime > 0)
	{
		aq_entry *e = cache_get(key, pgc_now(), cfg->auth_query_cache_lifetime);

		if (e)
		{
			st = PGC_AUTHQ_FOUND;
			if (e->secret && (*secret = strdup(e->secret)) == NULL)
				st = PGC_AUTHQ_NOMEM;
			goto done_locked;
		}
	}
	for (j = aq.jobs; j; j = j->next)
		if (strcmp(j->key, key) == 0)
			break;
	if (j == NULL)
	{
		j = calloc(1, sizeof(*j));
		if (j == NULL || (j->user = strdup(c->user)) == NULL)
		{
			free(j);
			st = PGC_AUTHQ_NOMEM;
			goto done_locked;
		}
		j->key = key;
		j->tkey = tkey;
		j->host = host;
		j->dbname = dbname;
		j->port = port;
		key = tkey = host = dbname = NULL;
		*aq.jobs_tail = j;
		aq.jobs_tail = &j->next;
		fresh = true;
	}
	w->client = c;
	w->job = j;
	w->next = j->waiters;
	if (j->waiters)
		j->waiters->prev = w;
	j->waiters = w;
	*waitp = w;
	w = NULL;
done_locked:
	pthread_mutex_unlock(&aq.lock);
done:
	free(key);
	free(tkey);
	free(host);
	free(dbname);
	free(w);
	if (fresh)
		wake_thread();
	return st;
}

int
pgc_authq_take(pgc_authq_wait *w, char **secret)
{
	int st;

	*secret = NULL;
	pthread_mutex_lock(&aq.lock);
	st = w->status;
	if (st != PGC_AUTHQ_PENDING)
	{
		*secret = w->secret;
		w->secret = NULL;
	}
	pthread_mutex_unlock(&aq.lock);
	if (st != PGC_AUTHQ_PENDING)
		free(w);
	return st;
}

void
pgc_authq_cancel(pgc_authq_wait *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&aq.lock);
	if (w->job)
	{
		/* The query goes on (its answer is cached for the next client); w is off its list. */
		if (w->prev)
			w->prev->next = w->next;
		else
			w->job->waiters = w->next;
		if (w->next)
			w->next->prev = w->prev;
		w->job = NULL;
	}
	pthread_mutex_unlock(&aq.lock);
	free_secret(w->secret);
	free(w);
}

/* ------------------------------------------------------ thread's side -- */

typedef enum tstate {
	T_CLOSED,         /* no connection */
	T_CONNECTING,     /* PQconnectPoll until OK */
	T_IDLE,           /* connected, no query */
	T_BUSY            /* the current job's query runs */
} tstate;

/* A server auth_query runs on: one connection, a queue of jobs. Thread only. */
typedef struct aq_target {
	struct aq_target *next;
	char *tkey;
	char *host;
	int port;
	char *dbname;
	char *sig;                    /* the connection's parameters (has the password) */
	char *login_user;             /* auth_user it is logged in as, for logs */
	PGconn *pg;
	tstate state;
	PostgresPollingStatusType want;   /* T_CONNECTING: what PQconnectPoll waits for */
	bool flushing;                /* T_BUSY: the query is not all sent yet */
	bool reused;                  /* the current job runs on a connection made before it */
	double deadline;              /* T_CONNECTING / T_BUSY */
	double idle_since;
	aq_job *head, *tail;          /* waiting jobs */
	aq_job *current;              /* the job being run */
	/* the current query's answer */
	int ans;                      /* PGC_AUTHQ_PENDING while none */
	char *ans_secret;
	char ans_error[512];
} aq_target;

static aq_target *targets;

/* Take j off aq.jobs. Lock held. */
static void
unlink_job(aq_job *j)
{
	for (aq_job **pp = &aq.jobs; *pp; pp = &(*pp)->next)
	{
		if (*pp == j)
		{
			*pp = j->next;
			if (aq.jobs_tail == &j->next)
				aq.jobs_tail = pp;
			return;
		}
	}
}

/*
 * Answer job j: fill in and post its waiters, cache the answer, free j.
 * post false: only forget the waiters (the workers are gone).
 */
static void
finish_job(aq_job *j, int status, const char *secret, bool post)
{
	const pgc_config *cfg = pgc_engine_config();

	pthread_mutex_lock(&aq.lock);
	if (status == PGC_AUTHQ_FOUND && cfg->auth_query_cache_lifetime > 0 &&
		same_str(cfg->auth_user, aq.cache_user) && same_str(cfg->auth_query, aq.cache_query))
		cache_put(j->key, secret, pgc_now(), cfg->auth_query_cache_lifetime);
	while (j->waiters)
	{
		pgc_authq_wait *w = j->waiters;
		pgc_client *c = w->client;

		j->waiters = w->next;
		w->next = w->prev = NULL;
		w->job = NULL;
		w->status = status;
		if (status == PGC_AUTHQ_FOUND && secret && (w->secret = strdup(secret)) == NULL)
			w->status = PGC_AUTHQ_NOMEM;
		if (!post)
			continue;
		pthread_mutex_lock(&c->pool->lock);
		pgc_worker_post(c);
		pthread_mutex_unlock(&c->pool->lock);
	}
	unlink_job(j);
	pthread_mutex_unlock(&aq.lock);
	job_free(j);
}

/* Nobody waits for j any more (they all left before it ran): forget it without running it. */
static bool
drop_if_orphan(aq_job *j)
{
	bool orphan;

	pthread_mutex_lock(&aq.lock);
	orphan = j->waiters == NULL;
	if (orphan)
		unlink_job(j);
	pthread_mutex_unlock(&aq.lock);
	if (orphan)
		job_free(j);
	return orphan;
}

static void
close_conn(aq_target *t)
{
	if (t->pg)
		PQfinish(t->pg);
	t->pg = NULL;
	t->state = T_CLOSED;
	t->flushing = false;
	free_secret(t->sig);
	t->sig = NULL;
	free(t->login_user);
	t->login_user = NULL;
}

static void
target_free(aq_target *t)
{
	close_conn(t);
	free_secret(t->ans_secret);
	free(t->tkey);
	free(t->host);
	free(t->dbname);
	free(t);
}

static aq_target *
target_for(aq_job *j)
{
	aq_target *t;

	for (t = targets; t; t = t->next)
		if (strcmp(t->tkey, j->tkey) == 0)
			return t;
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->tkey = strdup(j->tkey)) == NULL || (t->host = strdup(j->host)) == NULL ||
		(t->dbname = strdup(j->dbname)) == NULL)
	{
		if (t)
		{
			free(t->tkey);
			free(t->host);
			free(t);
		}
		return NULL;
	}
	t->port = j->port;
	t->next = targets;
	targets = t;
	return t;
}

static void
ignore_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

/* A file setting relative to the config file's directory (as tls.c reads it). */
static const char *
config_file_path(const pgc_config *cfg, const char *file, char *buf, size_t cap)
{
	const char *slash = cfg->path ? strrchr(cfg->path, '/') : NULL;

	if (file[0] == '/' || slash == NULL)
		return file;
	snprintf(buf, cap, "%.*s/%s", slash == cfg->path ? 1 : (int) (slash - cfg->path), cfg->path, file);
	return buf;
}

#define MAX_PARAMS 16

typedef struct conn_params {
	const char *keys[MAX_PARAMS + 1];
	const char *vals[MAX_PARAMS + 1];
	int n;
	char port[16], timeout[16];
	char rootcert[4096], cert[4096], key[4096];
} conn_params;

static void
add_param(conn_params *cp, const char *k, const char *v)
{
	if (v == NULL || cp->n >= MAX_PARAMS)
		return;
	cp->keys[cp->n] = k;
	cp->vals[cp->n] = v;
	cp->n++;
	cp->keys[cp->n] = cp->vals[cp->n] = NULL;
}

static void
build_params(conn_params *cp, const pgc_config *cfg, const aq_target *t)
{
	double ct = cfg->server_connect_timeout;

	memset(cp, 0, sizeof(*cp));
	snprintf(cp->port, sizeof(cp->port), "%d", t->port);
	/* libpq counts whole seconds (at least 2); our own deadline is the exact one. */
	snprintf(cp->timeout, sizeof(cp->timeout), "%d", ct > 0 ? (int) ct + (ct > (int) ct) : 0);
	add_param(cp, "host", t->host);
	add_param(cp, "port", cp->port);
	add_param(cp, "dbname", t->dbname);
	add_param(cp, "user", cfg->auth_user);
	add_param(cp, "password", pgc_config_find_secret(cfg, cfg->auth_user));
	add_param(cp, "connect_timeout", cp->timeout);
	add_param(cp, "application_name", "pgcarrier-auth_query");
	add_param(cp, "sslmode", pgc_sslmode_name(cfg->server_tls_sslmode));
	add_param(cp, "gssencmode", "disable");
	if (cfg->server_tls_ca_file)
		add_param(cp, "sslrootcert", config_file_path(cfg, cfg->server_tls_ca_file, cp->rootcert, sizeof(cp->rootcert)));
	if (cfg->server_tls_cert_file)
		add_param(cp, "sslcert", config_file_path(cfg, cfg->server_tls_cert_file, cp->cert, sizeof(cp->cert)));
	if (cfg->server_tls_key_file)
		add_param(cp, "sslkey", config_file_path(cfg, cfg->server_tls_key_file, cp->key, sizeof(cp->key)));
}

/* All parameters in one string, to see whether a kept connection still matches the config. */
static char *
params_signature(const conn_params *cp)
{
	size_t len = 1;
	char *s, *p;

	for (int i = 0; i < cp->n; i++)
		len += strlen(cp->keys[i]) + strlen(cp->vals[i]) + 2;
	s = p = malloc(len);
	if (s == NULL)
		return NULL;
	for (int i = 0; i < cp->n; i++)
		p += sprintf(p, "%s=%s\n", cp->keys[i], cp->vals[i]);
	*p = '\0';
	return s;
}

/*
 * Log why job j's query could not run (never a secret: libpq's and the
 * server's messages name none). Rate-limited: with the server down, every
 * client that needs auth_query repeats it.
 */
static void
log_failure(const aq_target *t, const aq_job *j, const char *what, const char *why)
{
	char line[1024];

	one_line(line, sizeof(line), why);
	pgc_log_limited(PGC_WARNING, "auth_query for user \"%s\" on %s:%d/%s: %s: %s", j->user, t->host, t->port, t->dbname,
					what, line);
}

/* The current job failed: answer its clients, go on with the next. */
static void
fail_current(aq_target *t, int status, const char *what, const char *why)
{
	aq_job *j = t->current;

	t->current = NULL;
	if (j == NULL)
		return;
	log_failure(t, j, what, why);
	finish_job(j, status, NULL, true);
}

/* Start connecting for the current job. false: failed at once (current job answered). */
static bool
start_connect(aq_target *t, const pgc_config *cfg, double now)
{
	conn_params cp;

	if (cfg->auth_user == NULL)
	{
		fail_current(t, PGC_AUTHQ_QUERY_FAILED, "cannot run", "auth_user is not set");
		return false;
	}
	build_params(&cp, cfg, t);
	{
		const char *pw = pgc_config_find_secret(cfg, cfg->auth_user);

		if (pw && (pgc_secret_is_md5(pw) || pgc_secret_is_scram(pw)))
			pgc_log_limited(PGC_WARNING, "auth_query: the auth file's secret for auth_user \"%s\" is a hash; "
							"logging in to the server needs the clear-text password (or trust)", cfg->auth_user);
	}
	t->sig = params_signature(&cp);
	t->login_user = strdup(cfg->auth_user);
	t->pg = PQconnectStartParams(cp.keys, cp.vals, 0);
	if (t->pg == NULL || t->sig == NULL || t->login_user == NULL)
	{
		close_conn(t);
		fail_current(t, PGC_AUTHQ_NOMEM, "cannot connect", "out of memory");
		return false;
	}
	if (PQstatus(t->pg) == CONNECTION_BAD)
	{
		char why[1024];

		snprintf(why, sizeof(why), "%s", PQerrorMessage(t->pg));
		close_conn(t);
		fail_current(t, PGC_AUTHQ_CONN_FAILED, "could not connect", why);
		return false;
	}
	PQsetNoticeProcessor(t->pg, ignore_notice, NULL);
	t->state = T_CONNECTING;
	t->want = PGRES_POLLING_WRITING;
	t->deadline = cfg->server_connect_timeout > 0 ? now + cfg->server_connect_timeout : 1e300;
	t->reused = false;
	return true;
}

/* The connection broke under the current job: once on a reused connection, retry on a new one. */
static void
conn_broken(aq_target *t, const char *why)
{
	aq_job *j = t->current;
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", why && why[0] ? why : (t->pg ? PQerrorMessage(t->pg) : "connection lost"));
	close_conn(t);
	if (j && t->reused && !j->retried)
	{
		j->retried = true;
		pgc_log(PGC_DEBUG, "auth_query: connection to %s:%d/%s lost, reconnecting", t->host, t->port, t->dbname);
		return;                 /* stays current; the next step connects again */
	}
	fail_current(t, PGC_AUTHQ_CONN_FAILED, "connection failed", msg);
}

static bool
send_query(aq_target *t, const pgc_config *cfg, double now)
{
	const char *params[1] = {t->current->user};
	double limit = cfg->client_login_timeout > 0 && cfg->client_login_timeout < QUERY_TIMEOUT
		? cfg->client_login_timeout : QUERY_TIMEOUT;

	if (!PQsendQueryParams(t->pg, cfg->auth_query, 1, NULL, params, NULL, NULL, 0))
		return false;
	t->state = T_BUSY;
	t->flushing = true;
	t->deadline = now + limit;
	t->ans = PGC_AUTHQ_PENDING;
	free_secret(t->ans_secret);
	t->ans_secret = NULL;
	t->ans_error[0] = '\0';
	return true;
}

/* One result of the current query. */
static void
take_result(aq_target *t, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	if (t->ans != PGC_AUTHQ_PENDING)
		return;                 /* the first answer counts */
	if (st == PGRES_TUPLES_OK)
	{
		if (PQnfields(res) < 2)
		{
			t->ans = PGC_AUTHQ_QUERY_FAILED;
			snprintf(t->ans_error, sizeof(t->ans_error), "auth_query must return two columns (user name, secret)");
		}
		else if (PQntuples(res) > 1)
		{
			t->ans = PGC_AUTHQ_QUERY_FAILED;
			snprintf(t->ans_error, sizeof(t->ans_error), "auth_query returned %d rows, not one", PQntuples(res));
		}
		else if (PQntuples(res) == 0 || PQgetisnull(res, 0, 1))
			t->ans = PGC_AUTHQ_FOUND;       /* no such user */
		else if ((t->ans_secret = strdup(PQgetvalue(res, 0, 1))) == NULL)
			t->ans = PGC_AUTHQ_NOMEM;
		else
			t->ans = PGC_AUTHQ_FOUND;
		/* Do not leave the secret lying around in libpq's result memory. */
		for (int r = 0; r < PQntuples(res); r++)
			for (int f = 0; f < PQnfields(res); f++)
				if (!PQgetisnull(res, r, f))
					OPENSSL_cleanse(PQgetvalue(res, r, f), (size_t) PQgetlength(res, r, f));
	}
	else
	{
		const char *m = PQresultErrorMessage(res);

		t->ans = PGC_AUTHQ_QUERY_FAILED;
		snprintf(t->ans_error, sizeof(t->ans_error), "%s", m && m[0] ? m : PQresStatus(st));
	}
}

/* The query of the current job came back whole. */
static void
query_done(aq_target *t, double now)
{
	aq_job *j = t->current;

	if (PQstatus(t->pg) == CONNECTION_BAD)
	{
		conn_broken(t, t->ans == PGC_AUTHQ_QUERY_FAILED ? t->ans_error : NULL);
		return;
	}
	t->state = T_IDLE;
	t->idle_since = now;
	t->current = NULL;
	if (t->ans == PGC_AUTHQ_PENDING)
	{
		t->ans = PGC_AUTHQ_QUERY_FAILED;
		snprintf(t->ans_error, sizeof(t->ans_error), "no result");
	}
	if (t->ans == PGC_AUTHQ_QUERY_FAILED)
		log_failure(t, j, "query failed", t->ans_error);
	finish_job(j, t->ans, t->ans_secret, true);
	free_secret(t->ans_secret);
	t->ans_secret = NULL;
}

/* Read what the server sent for the current query. */
static void
busy_input(aq_target *t, double now)
{
	if (!PQconsumeInput(t->pg))
	{
		conn_broken(t, NULL);
		return;
	}
	while (!PQisBusy(t->pg))
	{
		PGresult *res = PQgetResult(t->pg);

		if (res == NULL)
		{
			query_done(t, now);
			return;
		}
		take_result(t, res);
		PQclear(res);
	}
}

static void
connect_poll(aq_target *t, double now)
{
	PostgresPollingStatusType ps = PQconnectPoll(t->pg);

	if (ps == PGRES_POLLING_FAILED)
	{
		char why[1024];

		snprintf(why, sizeof(why), "%s", PQerrorMessage(t->pg));
		close_conn(t);
		fail_current(t, PGC_AUTHQ_CONN_FAILED, "could not connect", why);
		return;
	}
	if (ps != PGRES_POLLING_OK)
	{
		t->want = ps;
		return;
	}
	if (PQsetnonblocking(t->pg, 1) != 0)
	{
		conn_broken(t, "could not make the connection nonblocking");
		return;
	}
	pgc_log(PGC_DEBUG, "auth_query: connected to %s:%d/%s as \"%s\"", t->host, t->port, t->dbname, t->login_user);
	t->state = T_IDLE;
	t->idle_since = now;
}

/* Move t along as far as it goes without waiting. */
static void
target_step(aq_target *t, double now)
{
	const pgc_config *cfg = pgc_engine_config();

	for (;;)
	{
		if (t->current == NULL && t->head && t->state != T_CONNECTING && t->state != T_BUSY)
		{
			aq_job *j = t->head;

			t->head = j->tnext;
			if (t->head == NULL)
				t->tail = NULL;
			j->tnext = NULL;
			if (drop_if_orphan(j))
				continue;
			t->current = j;
			/* A connection made for an earlier job may have died meanwhile: worth one retry. */
			t->reused = t->state == T_IDLE;
		}
		switch (t->state)
		{
			case T_CLOSED:
				if (t->current == NULL)
					return;
				(void) start_connect(t, cfg, now);
				continue;
			case T_CONNECTING:
				if (PQsocket(t->pg) < 0)
				{
					/* No socket (yet): libpq has something to say without waiting. */
					connect_poll(t, now);
					if (t->state == T_CONNECTING && PQsocket(t->pg) < 0)
					{
						char why[1024];

						snprintf(why, sizeof(why), "%s", PQerrorMessage(t->pg));
						close_conn(t);
						fail_current(t, PGC_AUTHQ_CONN_FAILED, "could not connect", why);
					}
					continue;
				}
				if (now >= t->deadline)
				{
					close_conn(t);
					fail_current(t, PGC_AUTHQ_CONN_FAILED, "could not connect", "timeout (server_connect_timeout)");
					continue;
				}
				return;
			case T_IDLE:
				if (t->current == NULL)
				{
					if (cfg->server_idle_timeout > 0 && now - t->idle_since > cfg->server_idle_timeout)
						close_conn(t);
					return;
				}
				{
					conn_params cp;
					char *sig;
					bool same;

					build_params(&cp, cfg, t);
					sig = params_signature(&cp);
					same = sig && t->sig && strcmp(sig, t->sig) == 0;
					free_secret(sig);
					if (!same || cfg->auth_user == NULL)
					{
						/* auth_user, its password or the TLS settings changed: a new connection. */
						close_conn(t);
						continue;
					}
				}
				if (cfg->auth_query == NULL || cfg->auth_query[0] == '\0')
				{
					fail_current(t, PGC_AUTHQ_QUERY_FAILED, "cannot run", "auth_query is empty");
					continue;
				}
				if (!send_query(t, cfg, now))
				{
					conn_broken(t, NULL);
					continue;
				}
				return;
			case T_BUSY:
				if (now >= t->deadline)
				{
					/* Closing the connection is how the server learns to stop. */
					close_conn(t);
					fail_current(t, PGC_AUTHQ_QUERY_FAILED, "query failed", "timeout");
					continue;
				}
				return;
		}
	}
}

/* Events on t's socket. */
static void
target_io(aq_target *t, short revents, double now)
{
	switch (t->state)
	{
		case T_CONNECTING:
			connect_poll(t, now);
			break;
		case T_IDLE:
			/* Nothing is expected: the server closed it, or said why it will. */
			if (!PQconsumeInput(t->pg) || PQstatus(t->pg) == CONNECTION_BAD)
			{
				pgc_log(PGC_DEBUG, "auth_query: connection to %s:%d/%s closed by the server", t->host, t->port,
						t->dbname);
				close_conn(t);
			}
			else
			{
				PGnotify *n;

				while ((n = PQnotifies(t->pg)) != NULL)
					PQfreemem(n);
			}
			break;
		case T_BUSY:
			if (t->flushing)
			{
				int r = PQflush(t->pg);

				if (r < 0)
				{
					conn_broken(t, NULL);
					break;
				}
				t->flushing = r > 0;
			}
			if (revents & (POLLIN | POLLERR | POLLHUP))
				busy_input(t, now);
			break;
		case T_CLOSED:
			break;
	}
}

/* Let go of every job (shutdown, or the end of the thread). */
static void
abort_all(bool post)
{
	for (aq_target *t = targets; t; t = t->next)
	{
		close_conn(t);
		t->current = t->head = t->tail = NULL;
	}
	for (;;)
	{
		aq_job *j;

		pthread_mutex_lock(&aq.lock);
		j = aq.jobs;
		pthread_mutex_unlock(&aq.lock);
		if (j == NULL)
			break;
		finish_job(j, PGC_AUTHQ_STOPPING, NULL, post);     /* takes j off aq.jobs */
	}
}

static void *
authq_main(void *arg)
{
	struct pollfd *pfds = NULL;
	aq_target **owners = NULL;
	int cap = 0;
	bool aborted = false;

	(void) arg;
	for (;;)
	{
		aq_job *fresh = NULL, **fresh_tail = &fresh;
		bool stop, shut;
		double now, next;
		int n, nt = 0, timeout;

		pthread_mutex_lock(&aq.lock);
		stop = aq.stopping;
		shut = aq.shutting_down;
		if (!stop && !shut)
		{
			for (aq_job *j = aq.jobs; j; j = j->next)
			{
				if (!j->assigned)
				{
					j->assigned = true;
					*fresh_tail = j;
					fresh_tail = &j->tnext;
				}
			}
		}
		pthread_mutex_unlock(&aq.lock);
		if (stop)
			break;
		if (shut && !aborted)
		{
			abort_all(true);
			aborted = true;
		}
		while (fresh)
		{
			aq_job *j = fresh;
			aq_target *t;

			fresh = j->tnext;
			j->tnext = NULL;
			t = target_for(j);
			if (t == NULL)
			{
				finish_job(j, PGC_AUTHQ_NOMEM, NULL, true);
				continue;
			}
			if (t->tail)
				t->tail->tnext = j;
			else
				t->head = j;
			t->tail = j;
		}

		now = pgc_now();
		next = now + 1.0;
		for (aq_target **tp = &targets; *tp;)
		{
			aq_target *t = *tp;

			target_step(t, now);
			if (t->state == T_CLOSED && t->current == NULL && t->head == NULL)
			{
				*tp = t->next;
				target_free(t);
				continue;
			}
			if ((t->state == T_CONNECTING || t->state == T_BUSY) && t->deadline < next)
				next = t->deadline;
			nt++;
			tp = &t->next;
		}
		if (nt + 1 > cap)
		{
			int ncap = (nt + 1) * 2;
			struct pollfd *np = realloc(pfds, sizeof(*np) * (size_t) ncap);
			aq_target **no;

			if (np)
				pfds = np;
			no = realloc(owners, sizeof(*no) * (size_t) ncap);
			if (no)
				owners = no;
			if (np == NULL || no == NULL)
			{
				/* Out of memory: try again shortly. */
				usleep(100 * 1000);
				continue;
			}
			cap = ncap;
		}
		n = 0;
		pfds[n].fd = aq.wakefd;
		pfds[n].events = POLLIN;
		owners[n++] = NULL;
		for (aq_target *t = targets; t; t = t->next)
		{
			short ev = 0;

			if (t->pg == NULL || PQsocket(t->pg) < 0)
				continue;
			if (t->state == T_CONNECTING)
				ev = t->want == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			else if (t->state == T_BUSY)
				ev = POLLIN | (t->flushing ? POLLOUT : 0);
			else if (t->state == T_IDLE)
				ev = POLLIN;
			if (ev == 0)
				continue;
			pfds[n].fd = PQsocket(t->pg);
			pfds[n].events = ev;
			owners[n++] = t;
		}
		timeout = (int) ((next - now) * 1000) + 1;
		if (timeout < 0)
			timeout = 0;
		if (targets == NULL)
			timeout = -1;       /* nothing to do until a job comes */
		if (poll(pfds, (nfds_t) n, timeout) < 0 && errno != EINTR)
		{
			pgc_log(PGC_WARNING, "auth_query: poll failed: %s", strerror(errno));
			usleep(100 * 1000);
			continue;
		}
		if (pfds[0].revents & POLLIN)
		{
			uint64_t v;

			if (read(aq.wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				pgc_log(PGC_WARNING, "auth_query: eventfd read failed: %s", strerror(errno));
		}
		now = pgc_now();
		for (int i = 1; i < n; i++)
			if (pfds[i].revents)
				target_io(owners[i], pfds[i].revents, now);
	}
	abort_all(false);
	while (targets)
	{
		aq_target *t = targets;

		targets = t->next;
		target_free(t);
	}
	free(pfds);
	free(owners);
	return NULL;
}

/* ------------------------------------------------------- start / stop -- */

int
pgc_authq_start(char *err, size_t errlen)
{
	/* The other helper thread of client authentication shares this lifecycle (see authq.h). */
	if (pgc_authwork_start(err, errlen) < 0)
		return -1;
	pthread_mutex_lock(&aq.lock);
	aq.jobs = NULL;
	aq.jobs_tail = &aq.jobs;
	aq.shutting_down = aq.stopping = false;
	aq.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (aq.wakefd < 0)
	{
		pthread_mutex_unlock(&aq.lock);
		snprintf(err, errlen, "could not create the auth_query thread's eventfd: %s", strerror(errno));
		return -1;
	}
	if (pthread_create(&aq.thread, NULL, authq_main, NULL) != 0)
	{
		close(aq.wakefd);
		aq.wakefd = -1;
		pthread_mutex_unlock(&aq.lock);
		snprintf(err, errlen, "could not start the auth_query thread");
		return -1;
	}
	aq.started = true;
	pthread_mutex_unlock(&aq.lock);
	return 0;
}

void
pgc_authq_shutdown(void)
{
	pthread_mutex_lock(&aq.lock);
	aq.shutting_down = true;
	pthread_mutex_unlock(&aq.lock);
	wake_thread();
}

void
pgc_authq_stop(void)
{
	bool started;

	pthread_mutex_lock(&aq.lock);
	started = aq.started;
	aq.stopping = true;
	pthread_mutex_unlock(&aq.lock);
	pgc_authwork_stop();
	if (!started)
		return;
	wake_thread();
	pthread_join(aq.thread, NULL);
	pthread_mutex_lock(&aq.lock);
	aq.started = false;
	close(aq.wakefd);
	aq.wakefd = -1;
	cache_flush();
	free(aq.cache_user);
	free(aq.cache_query);
	aq.cache_user = aq.cache_query = NULL;
	pthread_mutex_unlock(&aq.lock);
}
