/*
 * authwork.c - slow client authentication work on a helper thread, and the
 * cache of SCRAM secrets built from clear-text passwords (see authwork.h).
 *
 * Shared state (aw.lock): the queue of requests, the cache and the
 * counters. A request is made by the client's worker and freed by it (take
 * or cancel), except one cancelled while the thread works on it, which the
 * thread frees when it is done. The thread computes without the lock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "authwork.h"
#include "log.h"
#include "sauth.h"

#define FP_LEN          32          /* HMAC-SHA-256 */
#define CACHE_BUCKETS   256
#define CACHE_MAX       4096        /* entries; past this the cache starts over */

typedef enum aw_kind {
	AW_DERIVE,                      /* build a SCRAM secret from a clear-text password */
	AW_VERIFY                       /* check a clear-text password against a SCRAM secret */
} aw_kind;

typedef enum aw_state {
	AW_QUEUED,                      /* on aw.queue */
	AW_RUNNING,                     /* the thread works on it */
	AW_DONE                         /* answered; the client was posted */
} aw_state;

struct pgc_authwork {
	pgc_authwork *next;             /* aw.queue (lock) */
	aw_kind kind;
	aw_state state;                 /* lock */
	pgc_client *client;             /* NULL once cancelled (lock) */
	const pgc_config *cfg;          /* AW_DERIVE: the configuration the cache entry belongs to */
	uint8_t fp[FP_LEN];             /* AW_DERIVE: the cache key */
	char *user;                     /* for the log */
	char *password;                 /* the clear-text password (wiped) */
	char *secret;                   /* AW_VERIFY: the stored SCRAM secret (wiped) */
	int result;                     /* 0 ok / match, -1 not */
	char built[PGC_SCRAM_SECRET_BUF];   /* AW_DERIVE: the answer (wiped) */
};

typedef struct aw_entry {
	struct aw_entry *next;
	const pgc_config *cfg;
	uint8_t fp[FP_LEN];
	char secret[PGC_SCRAM_SECRET_BUF];
} aw_entry;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started;
	bool stopping;                  /* lock */
	pgc_authwork *head, **tail;     /* the queue (lock) */
	aw_entry *cache[CACHE_BUCKETS]; /* lock */
	int cache_n;
	unsigned long derived;          /* SCRAM secrets built (lock) */
	unsigned long verified;         /* clear-text passwords checked against SCRAM secrets (lock) */
} aw = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* The key of the cache fingerprints: random, made once, never leaves the process. */
static pthread_once_t fp_once = PTHREAD_ONCE_INIT;
static uint8_t fp_key[32];
static bool fp_key_ok;

static void
fp_key_init(void)
{
	fp_key_ok = RAND_bytes(fp_key, sizeof(fp_key)) == 1;
}

/* HMAC(fp_key, user NUL password): 0, or -1 (no key, out of memory). */
static int
fingerprint(const char *user, const char *password, uint8_t out[FP_LEN])
{
	size_t ul = strlen(user) + 1, pl = strlen(password);
	unsigned char *msg;
	unsigned int len = 0;
	bool ok;

	pthread_once(&fp_once, fp_key_init);
	if (!fp_key_ok || (msg = malloc(ul + pl)) == NULL)
		return -1;
	memcpy(msg, user, ul);
	memcpy(msg + ul, password, pl);
	ok = HMAC(EVP_sha256(), fp_key, sizeof(fp_key), msg, ul + pl, out, &len) != NULL && len == FP_LEN;
	OPENSSL_cleanse(msg, ul + pl);
	free(msg);
	return ok ? 0 : -1;
}

static void
free_str(char *s)
{
	if (s)
	{
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static void
request_free(pgc_authwork *r)
{
	if (r == NULL)
		return;
	free(r->user);
	free_str(r->password);
	free_str(r->secret);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

/* ---------------------------------------------------------------- cache -- */

static void
entry_free(aw_entry *e)
{
	OPENSSL_cleanse(e, sizeof(*e));
	free(e);
}

static void
cache_flush(void)
{
	for (int i = 0; i < CACHE_BUCKETS; i++)
	{
		while (aw.cache[i])
		{
			aw_entry *e = aw.cache[i];

			aw.cache[i] = e->next;
			entry_free(e);
		}
	}
	aw.cache_n = 0;
}

/*
 * The cached secret for fp under cfg, copied to out: true if there is one.
 * Entries of another configuration met on the way are dropped. Lock held.
 */
static bool
cache_get(const pgc_config *cfg, const uint8_t fp[FP_LEN], char *out)
{
	for (aw_entry **ep = &aw.cache[fp[0]]; *ep;)
	{
		aw_entry *e = *ep;

		if (e->cfg != cfg)
		{
			*ep = e->next;
			entry_free(e);
			aw.cache_n--;
			continue;
		}
		if (memcmp(e->fp, fp, FP_LEN) == 0)
		{
			memcpy(out, e->secret, PGC_SCRAM_SECRET_BUF);
			return true;
		}
		ep = &e->next;
	}
	return false;
}

/* Remember secret for fp under cfg (it is not there: callers looked). Lock held. */
static void
cache_put(const pgc_config *cfg, const uint8_t fp[FP_LEN], const char *secret)
{
	aw_entry *e;

	if (aw.cache_n >= CACHE_MAX)
		cache_flush();          /* many users or many reloads: start over rather than grow */
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return;                 /* not cached: the next client derives it again */
	e->cfg = cfg;
	memcpy(e->fp, fp, FP_LEN);
	snprintf(e->secret, sizeof(e->secret), "%s", secret);
	e->next = aw.cache[fp[0]];
	aw.cache[fp[0]] = e;
	aw.cache_n++;
}

/* -------------------------------------------------------- the worker side -- */

/* Queue r for the thread. FAILED (r freed) if the thread is not running. */
static int
submit(pgc_authwork *r, pgc_authwork **req)
{
	pthread_mutex_lock(&aw.lock);
	if (!aw.started || aw.stopping)
	{
		pthread_mutex_unlock(&aw.lock);
		request_free(r);
		return PGC_AUTHWORK_FAILED;
	}
	r->state = AW_QUEUED;
	r->next = NULL;
	*aw.tail = r;
	aw.tail = &r->next;
	pthread_cond_signal(&aw.cond);
	pthread_mutex_unlock(&aw.lock);
	*req = r;
	return PGC_AUTHWORK_PENDING;
}

static pgc_authwork *
request_new(pgc_client *c, aw_kind kind, const char *password)
{
	pgc_authwork *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->kind = kind;
	r->client = c;
	r->user = strdup(c->user);
	r->password = strdup(password);
	if (r->user == NULL || r->password == NULL)
	{
		request_free(r);
		return NULL;
	}
	return r;
}

int
pgc_authwork_scram_secret(pgc_client *c, const char *clear, char *out, pgc_authwork **req)
{
	const pgc_config *cfg = pgc_engine_config();
	uint8_t fp[FP_LEN];
	pgc_authwork *r;
	bool hit;

	*req = NULL;
	if (fingerprint(c->user, clear, fp) < 0)
		return PGC_AUTHWORK_FAILED;
	pthread_mutex_lock(&aw.lock);
	hit = cache_get(cfg, fp, out);
	pthread_mutex_unlock(&aw.lock);
	if (hit)
	{
		OPENSSL_cleanse(fp, sizeof(fp));
		return PGC_AUTHWORK_DONE;
	}
	r = request_new(c, AW_DERIVE, clear);
	if (r == NULL)
		return PGC_AUTHWORK_FAILED;
	r->cfg = cfg;
	memcpy(r->fp, fp, FP_LEN);
	OPENSSL_cleanse(fp, sizeof(fp));
	return submit(r, req);
}

int
pgc_authwork_verify_plain(pgc_client *c, const char *secret, const char *password, pgc_authwork **req)
{
	pgc_authwork *r = request_new(c, AW_VERIFY, password);

	*req = NULL;
	if (r == NULL || (r->secret = strdup(secret)) == NULL)
	{
		request_free(r);
		return PGC_AUTHWORK_FAILED;
	}
	return submit(r, req);
}

int
pgc_authwork_take(pgc_authwork *r, int *result, char *out)
{
	bool done;

	pthread_mutex_lock(&aw.lock);
	done = r->state == AW_DONE;
	pthread_mutex_unlock(&aw.lock);
	if (!done)
		return PGC_AUTHWORK_PENDING;
	/* Done: the thread no longer touches it. */
	*result = r->result;
	if (r->kind == AW_DERIVE && out)
		memcpy(out, r->built, PGC_SCRAM_SECRET_BUF);
	request_free(r);
	return PGC_AUTHWORK_DONE;
}

void
pgc_authwork_cancel(pgc_authwork *r)
{
	bool mine = true;

	if (r == NULL)
		return;
	pthread_mutex_lock(&aw.lock);
	if (r->state == AW_QUEUED)
	{
		for (pgc_authwork **pp = &aw.head; *pp; pp = &(*pp)->next)
		{
			if (*pp == r)
			{
				*pp = r->next;
				if (aw.tail == &r->next)
					aw.tail = pp;
				break;
			}
		}
	}
	else if (r->state == AW_RUNNING)
	{
		r->client = NULL;       /* the thread frees it when it is done */
		mine = false;
	}
	pthread_mutex_unlock(&aw.lock);
	if (mine)
		request_free(r);
}

/* ------------------------------------------------------- the thread's side -- */

/* Do r's work (without the lock). */
static void
run(pgc_authwork *r)
{
	bool hit;

	if (r->kind == AW_VERIFY)
	{
		r->result = pgc_scram_verify_plain(r->secret, r->password) == 0 ? 0 : -1;
		pthread_mutex_lock(&aw.lock);
		aw.verified++;
		pthread_mutex_unlock(&aw.lock);
		return;
	}
	/* A request queued before the first one for the same user was answered finds it here. */
	pthread_mutex_lock(&aw.lock);
	hit = cache_get(r->cfg, r->fp, r->built);
	pthread_mutex_unlock(&aw.lock);
	if (hit)
	{
		r->result = 0;
		return;
	}
	r->result = pgc_scram_secret_build(r->password, r->built, sizeof(r->built)) > 0 ? 0 : -1;
	pthread_mutex_lock(&aw.lock);
	if (r->result == 0)
	{
		cache_put(r->cfg, r->fp, r->built);
		aw.derived++;
	}
	pthread_mutex_unlock(&aw.lock);
	if (r->result == 0)
		pgc_log(PGC_DEBUG, "derived the SCRAM secret of user \"%s\" from its clear-text password "
				"(kept until the next reload)", r->user);
}

/* r is done: post its client, or free it if the client left meanwhile. Lock held. */
static void
finish(pgc_authwork *r)
{
	pgc_client *c = r->client;

	free_str(r->password);
	free_str(r->secret);
	r->password = r->secret = NULL;
	if (c == NULL)
	{
		request_free(r);
		return;
	}
	r->state = AW_DONE;
	pthread_mutex_lock(&c->pool->lock);
	pgc_worker_post(c);
	pthread_mutex_unlock(&c->pool->lock);
}

static void *
authwork_main(void *arg)
{
	(void) arg;
	pthread_mutex_lock(&aw.lock);
	for (;;)
	{
		pgc_authwork *r;

		while (!aw.stopping && aw.head == NULL)
			pthread_cond_wait(&aw.cond, &aw.lock);
		if (aw.stopping)
			break;
		r = aw.head;
		aw.head = r->next;
		if (aw.head == NULL)
			aw.tail = &aw.head;
		r->next = NULL;
		r->state = AW_RUNNING;
		pthread_mutex_unlock(&aw.lock);
		run(r);
		pthread_mutex_lock(&aw.lock);
		finish(r);
	}
	pthread_mutex_unlock(&aw.lock);
	return NULL;
}

/* --------------------------------------------------------- start / stop -- */

int
pgc_authwork_start(char *err, size_t errlen)
{
	pthread_mutex_lock(&aw.lock);
	aw.head = NULL;
	aw.tail = &aw.head;
	aw.stopping = false;
	aw.derived = aw.verified = 0;
	if (pthread_create(&aw.thread, NULL, authwork_main, NULL) != 0)
	{
		pthread_mutex_unlock(&aw.lock);
		snprintf(err, errlen, "could not start the authentication helper thread");
		return -1;
	}
	aw.started = true;
	pthread_mutex_unlock(&aw.lock);
	return 0;
}

void
pgc_authwork_stop(void)
{
	bool started;
	unsigned long derived, verified;

	pthread_mutex_lock(&aw.lock);
	started = aw.started;
	aw.stopping = true;
	pthread_cond_signal(&aw.cond);
	pthread_mutex_unlock(&aw.lock);
	if (!started)
		return;
	pthread_join(aw.thread, NULL);
	pthread_mutex_lock(&aw.lock);
	aw.started = false;
	/* Every client is gone, so nothing is queued; a request left would be a client's to free. */
	cache_flush();
	derived = aw.derived;
	verified = aw.verified;
	pthread_mutex_unlock(&aw.lock);
	pgc_log(PGC_LOG, "stats: %lu SCRAM secrets derived from clear-text passwords, %lu clear-text "
			"passwords checked against SCRAM secrets (off the event loops)", derived, verified);
}
