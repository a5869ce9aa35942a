/*
 * pool.c - pools of server connections, shared by all workers.
 *
 * A pool is one (database, user) pair. Its limits hold exactly across
 * workers because every change of its counts happens under its lock, and
 * its waiting clients form one FIFO whatever worker they are on. A server
 * released on one worker goes straight to the oldest waiter; if that waiter
 * lives on another worker, the server travels there through that worker's
 * inbox (see worker.c).
 *
 * A server that cannot be logged in to (down, refusing, wrong password)
 * must not be asked again and again: after a failed login the pool waits
 * (server_login_retry, doubled for each further failure in a row, at most
 * PGC_LOGIN_RETRY_MAX_FACTOR times it), then tries one login at a time
 * until one works. While it waits and has no server left, clients that need
 * one get the last login error at once (PgBouncer's meaning of
 * server_login_retry). No failure path starts a login itself: a login that
 * fails at once (connect() to a missing Unix socket) would otherwise start
 * the next one from inside itself, without end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "compat.h"
#include "core.h"
#include "log.h"
#include "pipeline.h"
#include "stats.h"

/* The retry delay after failed server logins grows to at most this many times server_login_retry. */
#define PGC_LOGIN_RETRY_MAX_FACTOR 4

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void
replace_str(char **dst, const char *src)
{
	free(*dst);
	*dst = dup_or_null(src);
}

static struct pgc_counter *
counter_for(struct pgc_counter **list, const char *name)
{
	struct pgc_counter *c;

	for (c = *list; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->name = strdup(name);
	atomic_init(&c->count, 0);
	atomic_init(&c->starving, 0);
	c->next = *list;
	*list = c;
	return c;
}

/* ---- failed server logins: the retry delay ---- */

/* The calling worker's clock (monotonic seconds). */
static double
pool_now(void)
{
	return pgc_current_worker ? pgc_current_worker->now : pgc_now();
}

/*
 * Seconds to wait after the n-th failed server login in a row (n >= 1):
 * base (server_login_retry), doubled for each further failure, at most
 * PGC_LOGIN_RETRY_MAX_FACTOR times base.
 */
static double
login_retry_delay(double base, int n)
{
	double cap = base * PGC_LOGIN_RETRY_MAX_FACTOR;
	double d = base;

	for (int i = 1; i < n && d < cap; i++)
		d *= 2;
	return d < cap ? d : cap;
}

/*
 * A server login of p failed with err (an ErrorResponse): count it, set
 * when the next may start and keep err for the clients that come
 * meanwhile. Returns the seconds until the next login. Caller holds p->lock.
 */
static double
record_login_failure(pgc_pool *p, const pgc_msgbuf *err, double now, double base)
{
	pgc_msgbuf *copy = calloc(1, sizeof(*copy));
	double next;

	/*
	 * Logins started before an earlier failure was known fail for the same
	 * reason: only a login started after the wait makes the wait longer.
	 */
	if (p->login_failures == 0 || now >= p->login_retry_at)
		p->login_failures++;
	next = now + login_retry_delay(base, p->login_failures);
	if (next > p->login_retry_at)
		p->login_retry_at = next;
	if (copy)
		pgc_msgbuf_bytes(copy, err->data, err->len);
	if (copy && !copy->failed)
	{
		pgc_msgbuf_release(&p->login_error);
		p->login_error = copy;
	}
	else if (copy)
		pgc_msgbuf_release(&copy);  /* out of memory: the older error, if any, stays */
	return p->login_retry_at - now;
}

/*
 * A server login of p worked: forget earlier failures. Returns how many
 * there were in a row (0: none). Caller holds p->lock.
 */
static int
forget_login_failures(pgc_pool *p)
{
	int failures = p->login_failures;

	p->login_failures = 0;
	p->login_retry_at = 0;
	pgc_msgbuf_release(&p->login_error);
	return failures;
}

/*
 * May p start a server login at now? Not while it waits after a failed
 * login; after the wait, one at a time until one works, so that a server
 * still down costs one attempt per delay, however many clients wait.
 * Caller holds p->lock.
 */
static bool
login_may_start(const pgc_pool *p, double now)
{
	return p->login_failures == 0 || (now >= p->login_retry_at && p->connecting == 0);
}

/*
 * Is the server known to be failing? The pool waits after a failed login
 * and has the error to give. Caller holds p->lock.
 */
static bool
pool_known_down(const pgc_pool *p, double now)
{
	return p->login_failures > 0 && p->login_error != NULL && now < p->login_retry_at;
}

/* ---- configuration ---- */

struct pgc_counter *
pgc_pool_db_counter(pgc_engine *e, const char *name)
{
	return counter_for(&e->db_counters, name);
}

bool
pgc_pool_paused(const pgc_pool *p)
{
	return atomic_load(&pgc_the_engine->paused_all) || atomic_load(&p->db_count->paused);
}

/* Fill p's settings from cfg. Caller holds p->lock (or p is new). */
static void
pool_apply_config(pgc_pool *p, const pgc_config *cfg, uint64_t generation)
{
	const pgc_database *db = pgc_config_find_db(cfg, p->dbname);
	const pgc_user *u = pgc_config_find_user(cfg, p->client_user);
	const char *password;
	int mode;

	if (db == NULL)
	{
		p->db_removed = true;
		return;
	}
	p->db_removed = false;

	/* A change of where or how we log in makes existing servers stale. */
	password = db->password ? db->password : pgc_config_find_secret(cfg, p->user);
	if (p->host == NULL || strcmp(p->host, db->host ? db->host : "/var/run/postgresql") != 0 ||
		p->port != db->port ||
		strcmp(p->server_dbname ? p->server_dbname : "", db->dbname ? db->dbname : p->dbname) != 0 ||
		(p->password == NULL) != (password == NULL) ||
		(password && strcmp(p->password, password) != 0))
		p->config_generation = generation;

	replace_str(&p->host, db->host ? db->host : "/var/run/postgresql");
	p->port = db->port > 0 ? db->port : 5432;
	replace_str(&p->server_dbname, db->dbname ? db->dbname : p->dbname);
	replace_str(&p->password, password);
	p->pool_size = db->pool_size >= 0 ? db->pool_size : cfg->default_pool_size;
	p->min_pool_size = db->min_pool_size >= 0 ? db->min_pool_size : cfg->min_pool_size;
	p->reserve_pool = db->reserve_pool >= 0 ? db->reserve_pool : cfg->reserve_pool_size;
	p->max_db_connections = db->max_db_connections >= 0 ? db->max_db_connections : cfg->max_db_connections;
	p->max_user_connections = (u && u->max_user_connections >= 0) ? u->max_user_connections : cfg->max_user_connections;
	mode = cfg->pool_mode;
	if (db->pool_mode >= 0)
		mode = db->pool_mode;
	if (u && u->pool_mode >= 0)
		mode = u->pool_mode;
	atomic_store_explicit(&p->pool_mode, mode, memory_order_relaxed);
}

pgc_pool *
pgc_pool_get(pgc_engine *e, const char *dbname, const char *user, char *err, size_t errlen)
{
	const pgc_config *cfg;
	const pgc_database *db;
	const char *server_user;
	pgc_pool *p;

	pthread_mutex_lock(&e->cfg_lock);
	cfg = atomic_load(&e->cfg);
	db = pgc_config_find_db(cfg, dbname);
	/* an auth_only entry serves auth_query alone: to clients it does not exist */
	if (db == NULL || db->auth_only)
	{
		pthread_mutex_unlock(&e->cfg_lock);
		snprintf(err, errlen, "database \"%s\" does not exist", dbname);
		return NULL;
	}
	server_user = db->user ? db->user : user;
	for (p = e->pools; p; p = p->next)
		if (strcmp(p->dbname, dbname) == 0 && strcmp(p->user, server_user) == 0)
			break;
	if (p == NULL)
	{
		p = calloc(1, sizeof(*p));
		if (p == NULL)
		{
			pthread_mutex_unlock(&e->cfg_lock);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		pthread_mutex_init(&p->lock, NULL);
		pgc_stmt_registry_init(&p->stmts);
		p->dbname = strdup(dbname);
		p->user = strdup(server_user);
		p->client_user = strdup(user);
		p->idle = calloc((size_t) e->n_workers, sizeof(pgc_link));
		p->donate_asked = calloc((size_t) e->n_workers, sizeof(bool));
		if (p->idle == NULL || p->donate_asked == NULL)
		{
			pthread_mutex_unlock(&e->cfg_lock);
			snprintf(err, errlen, "out of memory");
			free(p->idle);
			free(p->donate_asked);
			free(p);
			return NULL;
		}
		for (int i = 0; i < e->n_workers; i++)
			pgc_list_init(&p->idle[i]);
		pgc_list_init(&p->waiters);
		p->db_count = counter_for(&e->db_counters, dbname);
		p->user_count = counter_for(&e->user_counters, server_user);
		p->stats = pgc_stats_db(e, dbname);
		pool_apply_config(p, cfg, e->generation);
		p->config_generation = e->generation;
		p->next = e->pools;
		e->pools = p;
	}
	pthread_mutex_unlock(&e->cfg_lock);
	return p;
}

int
pgc_pool_mode_of(const pgc_pool *p)
{
	return atomic_load_explicit(&p->pool_mode, memory_order_relaxed);
}

void
pgc_pool_reconfigure(pgc_engine *e)
{
	const pgc_config *cfg;

	pthread_mutex_lock(&e->cfg_lock);
	cfg = atomic_load(&e->cfg);
	for (pgc_pool *p = e->pools; p; p = p->next)
	{
		pthread_mutex_lock(&p->lock);
		pool_apply_config(p, cfg, e->generation);
		/* A reload may have fixed what made logins fail: the next one goes at once. */
		(void) forget_login_failures(p);
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_unlock(&e->cfg_lock);
}

/* Increment *counter unless it would pass max (0 = no limit). */
static bool
counter_try_inc(atomic_int *counter, int max)
{
	int v = atomic_load(counter);

	do
	{
		if (max > 0 && v >= max)
			return false;
	} while (!atomic_compare_exchange_weak(counter, &v, v + 1));
	return true;
}

/*
 * Reserve a slot for a new server connection, to be launched at once.
 * Caller holds p->lock. *by_limit (may be NULL) tells whether
 * max_db/max_user_connections said no.
 */
static bool
pool_reserve_slot_why(pgc_pool *p, bool use_reserve, double now, bool *by_limit)
{
	int limit = p->pool_size + (use_reserve ? p->reserve_pool : 0);

	if (by_limit)
		*by_limit = false;
	/* PAUSE and KILL: no new server connection until RESUME. */
	if (pgc_pool_paused(p))
		return false;
	if (!login_may_start(p, now))
		return false;
	/* A removed database still serves the clients it has; it just takes no new ones. */
	if (p->total >= limit)
		return false;
	if (!counter_try_inc(&p->db_count->count, p->max_db_connections))
	{
		if (by_limit)
			*by_limit = true;
		return false;
	}
	if (!counter_try_inc(&p->user_count->count, p->max_user_connections))
	{
		atomic_fetch_sub(&p->db_count->count, 1);
		if (by_limit)
			*by_limit = true;
		return false;
	}
	p->total++;
	p->connecting++;
	return true;
}

static bool
pool_reserve_slot(pgc_pool *p, bool use_reserve, double now)
{
	return pool_reserve_slot_why(p, use_reserve, now, NULL);
}

/* Does another pool of the same database or user wait for a slot under its limit? Caller holds p->lock. */
static bool
others_starving(const pgc_pool *p)
{
	int mine = p->starving ? 1 : 0;

	return (p->max_db_connections > 0 && atomic_load(&p->db_count->starving) > mine) ||
		(p->max_user_connections > 0 && atomic_load(&p->user_count->starving) > mine);
}

/*
 * Then this pool gives up a server it no longer needs, or keeps just one;
 * and it opens none on its own initiative (worker 0's maintenance hands out
 * free slots, pools without any server first). Caller holds p->lock.
 */
static bool
pool_should_yield(const pgc_pool *p)
{
	return others_starving(p) && (p->n_waiters == 0 || p->total > 1);
}

/* Forget a server's slot. Caller holds p->lock. */
static void
pool_release_slot(pgc_pool *p, bool was_connecting)
{
	p->total--;
	if (was_connecting)
		p->connecting--;
	atomic_fetch_sub(&p->db_count->count, 1);
	atomic_fetch_sub(&p->user_count->count, 1);
}

/* Take c off p's queue. Caller holds p->lock. */
static void
dequeue(pgc_pool *p, pgc_client *c)
{
	pgc_list_remove(&c->wait_node);
	p->n_waiters--;
	c->queued = false;
}

/*
 * Give c (not on the queue) the ErrorResponse err and wake its worker,
 * which sends it and closes c. Caller holds c's pool lock.
 */
static void
hand_error(pgc_client *c, const pgc_msgbuf *err)
{
	c->handoff_error = calloc(1, sizeof(pgc_msgbuf));
	if (c->handoff_error)
		pgc_msgbuf_bytes(c->handoff_error, err->data, err->len);
	pgc_worker_post(c);
}

/* Every client waiting in p gets err. Caller holds p->lock. */
static void
fail_all_waiters(pgc_pool *p, const pgc_msgbuf *err)
{
	while (!pgc_list_empty(&p->waiters))
	{
		pgc_client *c = pgc_container_of(p->waiters.next, pgc_client, wait_node);

		dequeue(p, c);
		hand_error(c, err);
	}
}

/*
 * While the server is known to be failing, a pool with no server left
 * cannot serve its waiters before the next retry: they get the error now,
 * as a direct connection would. Caller holds p->lock.
 */
static void
fail_waiters_if_down(pgc_pool *p, double now)
{
	if (p->total == 0 && pool_known_down(p, now))
		fail_all_waiters(p, p->login_error);
}

/* May an idle server be handed out again? Called with the pool lock held. */
static bool
idle_server_usable(pgc_server *s, const pgc_config *cfg, double now)
{
	if (s->dirty_close || s->config_generation != s->pool->config_generation ||
		s->reconnect_gen != atomic_load(&s->pool->reconnect_gen) || pgc_pool_paused(s->pool))
		return false;
	if (cfg->server_lifetime > 0 && now - s->created_at > cfg->server_lifetime)
		return false;
	return true;
}

/* Start server_check_query on the servers chained on check (off every list, slots kept), on w. */
static void
start_checks(pgc_server *check, pgc_worker *w)
{
	while (check)
	{
		pgc_server *next = (pgc_server *) check->node.next;

		check->node.next = check->node.prev = NULL;
		pgc_server_check(check, w);
		check = next;
	}
}

/* Close servers that nobody else can see any more (off every list, slots given back), chained by node.next. */
static void
discard_chain(pgc_server *dead)
{
	while (dead)
	{
		pgc_server *next = (pgc_server *) dead->node.next;

		dead->node.next = dead->node.prev = NULL;
		pgc_server_destroy(dead);
		dead = next;
	}
}

/* A worker other than exclude (may be NULL) with idle servers in p, or NULL. Caller holds p->lock. */
static pgc_worker *
find_donor(pgc_pool *p, pgc_engine *e, pgc_worker *exclude)
{
	for (int i = 0; i < e->n_workers; i++)
		if (&e->workers[i] != exclude && !pgc_list_empty(&p->idle[i]))
			return &e->workers[i];
	return NULL;
}

/*
 * Take the most recently used usable idle server of worker w off p's list
 * (the least recently used with server_round_robin), or NULL. Unusable ones
 * met on the way give their slot back and are chained on *dead, to be
 * closed after the lock is let go. One that must run server_check_query
 * first (compat.h) keeps its slot and goes on *check, for the caller to
 * start the check after the lock is let go; the search stops there, as the
 * check gives that server back to the waiters. Caller holds p->lock.
 */
static pgc_server *
take_idle(pgc_pool *p, pgc_worker *w, const pgc_config *cfg, double now, pgc_server **dead,
		  pgc_server **check)
{
	while (!pgc_list_empty(&p->idle[w->id]))
	{
		pgc_link   *l = cfg->server_round_robin ? p->idle[w->id].prev : p->idle[w->id].next;
		pgc_server *s = pgc_container_of(l, pgc_server, node);

		pgc_list_remove(&s->node);
		if (idle_server_usable(s, cfg, now) && pgc_compat_needs_check(cfg, s, now))
		{
			s->node.next = (pgc_link *) *check;
			*check = s;
			return NULL;
		}
		if (idle_server_usable(s, cfg, now))
			return s;
		pool_release_slot(p, false);
		s->node.next = (pgc_link *) *dead;
		*dead = s;
	}
	return NULL;
}

pgc_client *
pgc_pool_oldest_waiter_unlocked(pgc_pool *p)
{
	return pgc_list_empty(&p->waiters) ? NULL : pgc_container_of(p->waiters.next, pgc_client, wait_node);
}

void
pgc_pool_unqueue_unlocked(pgc_pool *p, pgc_client *c)
{
	dequeue(p, c);
}

bool
pgc_pool_all_busy_unlocked(const pgc_pool *p, const pgc_engine *e)
{
	if (p->n_waiters > 0 || p->total < p->pool_size || p->connecting > 0 || pgc_pool_paused(p))
		return false;
	for (int i = 0; i < e->n_workers; i++)
		if (!pgc_list_empty(&p->idle[i]))
			return false;
	return true;
}

bool
pgc_pool_request(pgc_client *c)
{
	pgc_pool *p = c->pool;
	pgc_worker *w = c->worker;
	const pgc_config *cfg = pgc_engine_config();
	double now = w->now;
	pgc_server *s = NULL;
	pgc_server *dead = NULL;
	pgc_server *check = NULL;
	pgc_worker *donor = NULL;
	bool launch = false;
	int exhausted = 0, pool_size = 0;

	pthread_mutex_lock(&p->lock);
	s = take_idle(p, w, cfg, now, &dead, &check);
	if (s)
	{
		s->state = SV_LINKED;
		s->client = c;
		c->server = s;
		c->wait_since = now;    /* statistics: it waited for nothing */
	}
	else if (p->total == 0 && pool_known_down(p, now))
		hand_error(c, p->login_error);  /* nothing can serve it before the next retry */
	else
	{
		c->queued = true;
		c->wait_since = now;
		pgc_list_push_tail(&p->waiters, &c->wait_node);
		p->n_waiters++;
		/* A server being checked comes back to the waiters: no new one for this client. */
		if (check == NULL && p->n_waiters > p->connecting)
		{
			/* An idle server on another worker is cheaper than a new one. */
			donor = find_donor(p, w->engine, w);
			if (donor && p->donate_asked[donor->id])
				;
			else if (donor)
				p->donate_asked[donor->id] = true;
			else if (!others_starving(p))
				launch = pool_reserve_slot(p, false, now);
		}
		/* Every server busy and no room for another: say so once per episode (the queue emptied since). */
		if (p->n_waiters == 1)
			p->exhaustion_logged = false;
		if (!launch && donor == NULL && !p->exhaustion_logged && p->total >= p->pool_size &&
			p->n_waiters > p->connecting && !pgc_pool_paused(p))
		{
			p->exhaustion_logged = true;
			exhausted = p->total;
			pool_size = p->pool_size;
		}
	}
	pthread_mutex_unlock(&p->lock);

	if (exhausted)
		pgc_stats_pool_exhausted(p, exhausted, pool_size);
	discard_chain(dead);
	start_checks(check, w);
	if (donor)
		pgc_worker_ask_donation(donor, p);
	if (launch)
		pgc_server_launch(w, p);
	return s != NULL;
}

pgc_server *
pgc_pool_cancel_wait(pgc_client *c)
{
	pgc_pool *p = c->pool;
	pgc_server *s;

	if (p == NULL)
		return NULL;
	pthread_mutex_lock(&p->lock);
	if (c->queued)
	{
		pgc_list_remove(&c->wait_node);
		p->n_waiters--;
		c->queued = false;
	}
	if (c->in_inbox)
	{
		pgc_worker *w = c->worker;

		pthread_mutex_lock(&w->inbox_lock);
		for (pgc_client **pp = &w->inbox; *pp; pp = &(*pp)->inbox_next)
		{
			if (*pp == c)
			{
				*pp = c->inbox_next;
				break;
			}
		}
		c->in_inbox = false;
		pthread_mutex_unlock(&w->inbox_lock);
	}
	s = c->server;
	pgc_msgbuf_release(&c->handoff_error);
	pthread_mutex_unlock(&p->lock);
	return s;
}

/*
 * The waiter to serve next from worker w: the oldest, unless one of w's own
 * waiters is nearly as old (within 2 ms): moving a server to another worker
 * costs two epoll_ctl calls and a wake-up, and 2 ms of unfairness is far
 * below what a client waiting for a pool notices.
 */
static pgc_client *
next_waiter(pgc_pool *p, pgc_worker *w)
{
	pgc_client *head;
	pgc_link *n;
	int scanned = 0;

	if (pgc_list_empty(&p->waiters))
		return NULL;
	head = pgc_container_of(p->waiters.next, pgc_client, wait_node);
	if (head->worker == w)
		return head;
	if (atomic_load(&w->engine->census_freeze) > 0)
	{
		/*
		 * A listing is being collected: a server may not change worker
		 * now, or it could be listed by neither (census.h). Only w's own
		 * waiters; the others are served when the listing ends
		 * (pgc_pool_kick_waiters).
		 */
		for (n = p->waiters.next; n != &p->waiters; n = n->next)
		{
			pgc_client *c = pgc_container_of(n, pgc_client, wait_node);

			if (c->worker == w)
				return c;
		}
		return NULL;
	}
	for (n = head->wait_node.next; n != &p->waiters && scanned < 16; n = n->next, scanned++)
	{
		pgc_client *c = pgc_container_of(n, pgc_client, wait_node);

		if (c->wait_since - head->wait_since > 0.002)
			break;
		if (c->worker == w)
			return c;
	}
	return head;
}

/*
 * Hand s (owned by worker w) to a waiter, if any. Caller holds p->lock.
 * A server that changes worker leaves w's epoll set here, before the other
 * worker can see it.
 */
static bool
give_to_waiter(pgc_pool *p, pgc_server *s, pgc_worker *w)
{
	pgc_client *c = next_waiter(p, w);

	if (c == NULL)
		return false;
	pgc_list_remove(&c->wait_node);
	p->n_waiters--;
	c->queued = false;
	if (c->worker != w)
	{
		if (s->registered)
		{
			pgc_worker_unwatch(w, s->fd);
			s->registered = false;
			s->epoll_events = 0;
		}
		pgc_worker_forget(w, s);
	}
	s->state = SV_LINKED;
	s->worker = c->worker;
	s->client = c;
	c->server = s;
	pgc_worker_post(c);
	return true;
}

void
pgc_pool_put(pgc_server *s)
{
	pgc_pool *p = s->pool;
	pgc_worker *w = s->worker;
	const pgc_config *cfg = pgc_engine_config();
	double now = w->now;
	bool close_it;
	bool launch = false;
	bool was_connecting = PGC_SV_STARTING(s->state);
	int failures = 0;

	if (s->pipe_dirty || s->pipe_len || s->pipe_broken)
		pgc_pipeline_server_gone(s);    /* not w's to write to any more */
	pgc_list_remove(&s->node);  /* off w->servers: it is the pool's now */
	pthread_mutex_lock(&p->lock);
	if (s->client)
	{
		s->client->server = NULL;
		s->client = NULL;
	}
	if (was_connecting)
	{
		p->connecting--;
		failures = forget_login_failures(p);     /* a login worked */
	}
	close_it = !idle_server_usable(s, cfg, now) ||
		atomic_load(&w->engine->shutting_down) || pool_should_yield(p) ||
		p->total > p->pool_size + p->reserve_pool;
	if (close_it)
	{
		pool_release_slot(p, false);
		fail_waiters_if_down(p, now);
		if (p->n_waiters > p->connecting && !others_starving(p))
			launch = pool_reserve_slot(p, false, now);
	}
	else if (give_to_waiter(p, s, w))
	{
		/* The first login after failures: the clients that queued meanwhile need more. */
		if (failures > 0 && p->n_waiters > p->connecting && !others_starving(p))
			launch = pool_reserve_slot(p, false, now);
	}
	else
	{
		s->state = SV_IDLE;
		s->state_since = now;
		if (!s->registered)
		{
			/* Idle servers are watched by their worker, which notices when they close. */
			if (pgc_worker_watch(w, s->fd, s, EPOLLIN) == 0)
			{
				s->registered = true;
				s->epoll_events = EPOLLIN;
			}
		}
		else if (s->epoll_events != EPOLLIN)
		{
			pgc_worker_rewatch(w, s->fd, s, EPOLLIN);
			s->epoll_events = EPOLLIN;
		}
		pgc_list_push_head(&p->idle[w->id], &s->node);
	}
	pthread_mutex_unlock(&p->lock);

	if (failures > 0)
		pgc_log_limited(PGC_LOG, "server login for %s/%s works again after %d failed attempt%s",
						p->dbname, p->user, failures, failures == 1 ? "" : "s");
	if (close_it)
	{
		pgc_log(PGC_DEBUG, "closing server connection to %s/%s: not reusable", p->dbname, p->user);
		s->node.next = NULL;
		pgc_server_destroy(s);
	}
	if (launch)
		pgc_server_launch(w, p);    /* goes to whoever waits first */
}

void
pgc_pool_donate(pgc_worker *w, pgc_pool *p)
{
	const pgc_config *cfg = pgc_engine_config();
	pgc_server *dead = NULL;
	pgc_server *check = NULL;

	pthread_mutex_lock(&p->lock);
	p->donate_asked[w->id] = false;
	while (p->n_waiters > 0)
	{
		pgc_server *s = take_idle(p, w, cfg, w->now, &dead, &check);

		if (s == NULL)
			break;
		if (!give_to_waiter(p, s, w))
		{
			/* Its waiters are on other workers, and a listing holds servers where they are. */
			pgc_list_push_head(&p->idle[w->id], &s->node);
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	discard_chain(dead);
	start_checks(check, w);     /* checked here, then given to a waiter wherever it is */
}

void
pgc_pool_kick_waiters(pgc_engine *e)
{
	pgc_pool *p;

	for (p = pgc_pool_first(e); p; p = p->next)
	{
		pgc_worker *donor = NULL;

		pthread_mutex_lock(&p->lock);
		if (p->n_waiters > 0)
		{
			donor = find_donor(p, e, NULL);
			if (donor && p->donate_asked[donor->id])
				donor = NULL;   /* asked already */
			else if (donor)
				p->donate_asked[donor->id] = true;
		}
		pthread_mutex_unlock(&p->lock);
		if (donor)
			pgc_worker_ask_donation(donor, p);
	}
}

void
pgc_pool_idle_event(pgc_server *s)
{
	pgc_pool *p = s->pool;

	/* Only this worker takes servers off its own idle list, so s is still there. */
	pthread_mutex_lock(&p->lock);
	pgc_list_remove(&s->node);
	pool_release_slot(p, false);
	fail_waiters_if_down(p, pool_now());
	pthread_mutex_unlock(&p->lock);
	{
		char byte;
		ssize_t n = recv(s->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

		/*
		 * Data from an idle server is a notification for an earlier client's
		 * LISTEN, or a FATAL. A server restart closes every idle server at
		 * once: rate-limited.
		 */
		pgc_log_limited(PGC_LOG, "idle server connection %s/%s %s; closing it", p->dbname, p->user,
						n == 0 ? "was closed by the server" :
						n > 0 ? "sent a message while idle" : "failed");
	}
	s->node.next = NULL;
	pgc_server_destroy(s);
}

/*
 * err set: a login failed. The pool waits before the next (see
 * login_may_start), and starts none from here: a login that fails at once
 * would start the next from inside itself. The log line is rate-limited,
 * as a server that stays down repeats it.
 */
void
pgc_pool_server_gone(pgc_pool *p, bool was_connecting, const pgc_msgbuf *err)
{
	const pgc_config *cfg = pgc_engine_config();
	double now = pool_now();
	double delay = 0;
	char where[300];
	bool launch = false;

	pthread_mutex_lock(&p->lock);
	pool_release_slot(p, was_connecting);
	if (err)
	{
		delay = record_login_failure(p, err, now, cfg->server_login_retry);
		snprintf(where, sizeof(where), "%s:%d", p->host, p->port);
		if (p->total == 0)
			fail_all_waiters(p, err);   /* nothing can serve them now */
	}
	else
	{
		fail_waiters_if_down(p, now);
		if (p->n_waiters > p->connecting && !others_starving(p))
			launch = pool_reserve_slot(p, false, now);
	}
	pthread_mutex_unlock(&p->lock);

	if (err)
	{
		const char *m = err->len > 5 ? pgc_error_field(err->data + 5, err->len - 5, PGC_ERRF_MESSAGE) : NULL;

		pgc_log_limited(PGC_WARNING, "could not log in to server for %s/%s (%s): %s; next attempt in %g s "
						"(server_login_retry)", p->dbname, p->user, where, m ? m : "error", delay);
	}
	if (launch)
		pgc_server_launch(pgc_current_worker, p);
}

/* A waiter gets a FATAL error made here. Caller holds p->lock. */
static void
fail_waiter(pgc_pool *p, pgc_client *c, const char *sqlstate, const char *msg)
{
	pgc_msgbuf err;

	pgc_msgbuf_init(&err);
	pgc_msgbuf_error(&err, PGC_BE_ERROR, "FATAL", sqlstate, msg, NULL, NULL);
	dequeue(p, c);
	hand_error(c, &err);
	pgc_msgbuf_free(&err);
}

pgc_pool *
pgc_pool_first(pgc_engine *e)
{
	pgc_pool *p;

	/* Pools are only ever prepended, so walking from a snapshot of the head is safe. */
	pthread_mutex_lock(&e->cfg_lock);
	p = e->pools;
	pthread_mutex_unlock(&e->cfg_lock);
	return p;
}

void
pgc_pool_maintain_idle(pgc_engine *e, pgc_worker *w, double now, bool closing_all)
{
	const pgc_config *cfg = pgc_engine_config();

	for (pgc_pool *p = pgc_pool_first(e); p; p = p->next)
	{
		pgc_server *dead = NULL;
		pgc_link *list = &p->idle[w->id];
		pgc_link *n, *next;

		pthread_mutex_lock(&p->lock);
		/* Oldest at the tail. */
		for (n = list->prev; n != list; n = next)
		{
			pgc_server *s = pgc_container_of(n, pgc_server, node);
			bool too_idle = cfg->server_idle_timeout > 0 &&
				now - s->state_since > cfg->server_idle_timeout && p->total > p->min_pool_size;

			next = n->prev;
			if (closing_all || too_idle || !idle_server_usable(s, cfg, now) || pool_should_yield(p))
			{
				pgc_list_remove(&s->node);
				pool_release_slot(p, false);
				s->node.next = (pgc_link *) dead;
				dead = s;
			}
		}
		pthread_mutex_unlock(&p->lock);
		discard_chain(dead);
	}
}

void
pgc_pool_maintain(pgc_engine *e, pgc_worker *w, double now)
{
	const pgc_config *cfg = pgc_engine_config();

	/* Two passes: pools without any server first, so that a limit shared by pools cannot starve one. */
	for (int pass = 0; pass < 2; pass++)
	for (pgc_pool *p = pgc_pool_first(e); p; p = p->next)
	{
		int launches = 0;
		pgc_worker *donor = NULL;
		pgc_link *n, *next;

		pthread_mutex_lock(&p->lock);
		fail_waiters_if_down(p, now);
		if ((pass == 0) != (p->total == 0 && p->n_waiters > 0))
		{
			pthread_mutex_unlock(&p->lock);
			continue;
		}
		/* Waiters: query_wait_timeout, then the reserve pool. */
		if (cfg->query_wait_timeout > 0)
		{
			for (n = p->waiters.next; n != &p->waiters; n = next)
			{
				pgc_client *c = pgc_container_of(n, pgc_client, wait_node);
				char msg[200];

				next = n->next;
				if (now - c->wait_since <= cfg->query_wait_timeout)
					continue;
				snprintf(msg, sizeof(msg),
						 "canceling statement due to query_wait_timeout: no server connection "
						 "became free within %g s (pool %s/%s, pool_size %d)",
						 cfg->query_wait_timeout, p->dbname, p->user, p->pool_size);
				pgc_log(PGC_LOG, "pool %s/%s exhausted: client waited %.1f s", p->dbname, p->user,
						now - c->wait_since);
				fail_waiter(p, c, "57014", msg);
			}
		}
		if (p->n_waiters > p->connecting)
		{
			donor = find_donor(p, e, NULL);
			if (donor)
				p->donate_asked[donor->id] = true;
		}
		p->starving = false;
		while (donor == NULL && p->n_waiters > p->connecting)
		{
			pgc_client *head = pgc_container_of(p->waiters.next, pgc_client, wait_node);
			bool reserve = cfg->reserve_pool_timeout >= 0 &&
				now - head->wait_since > cfg->reserve_pool_timeout;

			if (!pool_reserve_slot_why(p, reserve, now, &p->starving))
				break;
			if (p->total > p->pool_size)
				pgc_log(PGC_LOG, "pool %s/%s: using reserve pool (%d servers)", p->dbname, p->user, p->total);
			launches++;
		}
		while (!p->db_removed && !atomic_load(&e->shutting_down) && p->total < p->min_pool_size &&
			   pool_reserve_slot(p, false, now))
			launches++;
		pthread_mutex_unlock(&p->lock);

		if (donor == w)
			pgc_pool_donate(w, p);
		else if (donor)
			pgc_worker_ask_donation(donor, p);
		while (launches-- > 0)
			pgc_server_launch(w, p);
	}

	/* Tell the other pools which limits someone is waiting on (read by pool_should_yield). */
	pthread_mutex_lock(&e->cfg_lock);
	for (struct pgc_counter *c = e->db_counters; c; c = c->next)
		atomic_store(&c->starving, 0);
	for (struct pgc_counter *c = e->user_counters; c; c = c->next)
		atomic_store(&c->starving, 0);
	for (pgc_pool *p = e->pools; p; p = p->next)
	{
		if (p->starving)
		{
			atomic_fetch_add(&p->db_count->starving, 1);
			atomic_fetch_add(&p->user_count->starving, 1);
		}
	}
	pthread_mutex_unlock(&e->cfg_lock);
}

void
pgc_pool_free_all(pgc_engine *e)
{
	pgc_pool *p = e->pools;

	while (p)
	{
		pgc_pool *next = p->next;

		for (int i = 0; i < e->n_workers; i++)
		{
			while (!pgc_list_empty(&p->idle[i]))
			{
				pgc_server *s = pgc_container_of(p->idle[i].next, pgc_server, node);

				pgc_list_remove(&s->node);
				s->registered = false;      /* the event loops are gone */
				pgc_server_destroy(s);
			}
		}
		free(p->idle);
		free(p->donate_asked);
		pgc_params_free(&p->welcome);
		pgc_params_free(&p->canon);
		pgc_msgbuf_release(&p->login_error);
		pgc_stmt_registry_destroy(&p->stmts);
		free(p->dbname);
		free(p->user);
		free(p->client_user);
		free(p->host);
		free(p->server_dbname);
		free(p->password);
		if (p->learned_secret)
			OPENSSL_cleanse(p->learned_secret, strlen(p->learned_secret));
		free(p->learned_secret);
		OPENSSL_cleanse(p->scram_keys, sizeof(p->scram_keys));
		pthread_mutex_destroy(&p->lock);
		free(p);
		p = next;
	}
	e->pools = NULL;
	for (int i = 0; i < 2; i++)
	{
		struct pgc_counter *c = i ? e->db_counters : e->user_counters;

		while (c)
		{
			struct pgc_counter *next = c->next;

			free(c->name);
			free(c);
			c = next;
		}
	}
	e->db_counters = e->user_counters = NULL;
}
