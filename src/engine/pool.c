/*
 * pool.c - pools of server connections, shared by all workers.
 *
 * A pool is one (database, user) pair. Its limits hold exactly across
 * workers because every change of its counts happens under its lock, and
 * its waiting clients form one FIFO whatever worker they are on. A server
 * released on one worker goes straight to the oldest waiter; if that waiter
 * lives on another worker, the server travels there through that worker's
 * inbox (see worker.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core.h"
#include "log.h"

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
	p->pool_mode = mode;
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
	if (db == NULL)
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
	return p->pool_mode;
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
 * Reserve a slot for a new server connection. Caller holds p->lock.
 * *by_limit (may be NULL) tells whether max_db/max_user_connections said no.
 */
static bool
pool_reserve_slot_why(pgc_pool *p, bool use_reserve, bool *by_limit)
{
	int limit = p->pool_size + (use_reserve ? p->reserve_pool : 0);

	if (by_limit)
		*by_limit = false;
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
pool_reserve_slot(pgc_pool *p, bool use_reserve)
{
	return pool_reserve_slot_why(p, use_reserve, NULL);
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

/* May an idle server be handed out again? Called with the pool lock held. */
static bool
idle_server_usable(pgc_server *s, const pgc_config *cfg, double now)
{
	if (s->dirty_close || s->config_generation != s->pool->config_generation)
		return false;
	if (cfg->server_lifetime > 0 && now - s->created_at > cfg->server_lifetime)
		return false;
	return true;
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
 * Take the most recently used usable idle server of worker w off p's list,
 * or NULL. Unusable ones met on the way give their slot back and are
 * chained on *dead, to be closed after the lock is let go. Caller holds
 * p->lock.
 */
static pgc_server *
take_idle(pgc_pool *p, pgc_worker *w, const pgc_config *cfg, double now, pgc_server **dead)
{
	while (!pgc_list_empty(&p->idle[w->id]))
	{
		pgc_server *s = pgc_container_of(p->idle[w->id].next, pgc_server, node);

		pgc_list_remove(&s->node);
		if (idle_server_usable(s, cfg, now))
			return s;
		pool_release_slot(p, false);
		s->node.next = (pgc_link *) *dead;
		*dead = s;
	}
	return NULL;
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
	pgc_worker *donor = NULL;
	bool launch = false;

	pthread_mutex_lock(&p->lock);
	s = take_idle(p, w, cfg, now, &dead);
	if (s)
	{
		s->state = SV_LINKED;
		s->client = c;
		c->server = s;
	}
	else
	{
		c->queued = true;
		c->wait_since = now;
		pgc_list_push_tail(&p->waiters, &c->wait_node);
		p->n_waiters++;
		if (p->n_waiters > p->connecting)
		{
			/* An idle server on another worker is cheaper than a new one. */
			donor = find_donor(p, w->engine, w);
			if (donor && p->donate_asked[donor->id])
				;
			else if (donor)
				p->donate_asked[donor->id] = true;
			else if (!others_starving(p))
				launch = pool_reserve_slot(p, false);
		}
	}
	pthread_mutex_unlock(&p->lock);

	discard_chain(dead);
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

	pgc_list_remove(&s->node);  /* off w->servers: it is the pool's now */
	pthread_mutex_lock(&p->lock);
	if (s->client)
	{
		s->client->server = NULL;
		s->client = NULL;
	}
	if (was_connecting)
		p->connecting--;
	close_it = !idle_server_usable(s, cfg, now) ||
		atomic_load(&w->engine->shutting_down) || pool_should_yield(p) ||
		p->total > p->pool_size + p->reserve_pool;
	if (close_it)
	{
		pool_release_slot(p, false);
		if (p->n_waiters > p->connecting && !others_starving(p))
			launch = pool_reserve_slot(p, false);
	}
	else if (!give_to_waiter(p, s, w))
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

	if (close_it)
	{
		pgc_log(PGC_DEBUG, "closing server connection to %s/%s: not reusable", p->dbname, p->user);
		s->node.next = NULL;
		pgc_server_destroy(s);
		if (launch)
			pgc_server_launch(w, p);    /* goes to whoever waits first */
	}
}

void
pgc_pool_donate(pgc_worker *w, pgc_pool *p)
{
	const pgc_config *cfg = pgc_engine_config();
	pgc_server *dead = NULL;

	pthread_mutex_lock(&p->lock);
	p->donate_asked[w->id] = false;
	while (p->n_waiters > 0)
	{
		pgc_server *s = take_idle(p, w, cfg, w->now, &dead);

		if (s == NULL)
			break;
		give_to_waiter(p, s, w);
	}
	pthread_mutex_unlock(&p->lock);
	discard_chain(dead);
}

void
pgc_pool_idle_event(pgc_server *s)
{
	pgc_pool *p = s->pool;

	/* Only this worker takes servers off its own idle list, so s is still there. */
	pthread_mutex_lock(&p->lock);
	pgc_list_remove(&s->node);
	pool_release_slot(p, false);
	pthread_mutex_unlock(&p->lock);
	{
		char byte;
		ssize_t n = recv(s->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

		/* Data from an idle server is a notification for an earlier client's LISTEN, or a FATAL. */
		pgc_log(PGC_LOG, "idle server connection %s/%s %s; closing it", p->dbname, p->user,
				n == 0 ? "was closed by the server" :
				n > 0 ? "sent a message while idle" : "failed");
	}
	s->node.next = NULL;
	pgc_server_destroy(s);
}

void
pgc_pool_server_gone(pgc_pool *p, bool was_connecting, const pgc_msgbuf *err)
{
	bool launch = false;

	pthread_mutex_lock(&p->lock);
	pool_release_slot(p, was_connecting);
	if (err && p->total == 0)
	{
		/* Nothing can serve the waiters now: they get the error, as a direct connection would. */
		while (!pgc_list_empty(&p->waiters))
		{
			pgc_client *c = pgc_container_of(p->waiters.next, pgc_client, wait_node);

			pgc_list_remove(&c->wait_node);
			p->n_waiters--;
			c->queued = false;
			c->handoff_error = calloc(1, sizeof(pgc_msgbuf));
			if (c->handoff_error)
				pgc_msgbuf_bytes(c->handoff_error, err->data, err->len);
			pgc_worker_post(c);
		}
	}
	else if (p->n_waiters > p->connecting && !others_starving(p))
		launch = pool_reserve_slot(p, false);
	pthread_mutex_unlock(&p->lock);

	if (launch)
		pgc_server_launch(pgc_current_worker, p);
}

static void
fail_waiter(pgc_pool *p, pgc_client *c, const char *sqlstate, const char *msg)
{
	pgc_list_remove(&c->wait_node);
	p->n_waiters--;
	c->queued = false;
	c->handoff_error = calloc(1, sizeof(pgc_msgbuf));
	if (c->handoff_error)
		pgc_msgbuf_error(c->handoff_error, PGC_BE_ERROR, "FATAL", sqlstate, msg, NULL, NULL);
	pgc_worker_post(c);
}

static pgc_pool *
pools_head(pgc_engine *e)
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

	for (pgc_pool *p = pools_head(e); p; p = p->next)
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
	for (pgc_pool *p = pools_head(e); p; p = p->next)
	{
		int launches = 0;
		pgc_worker *donor = NULL;
		pgc_link *n, *next;

		pthread_mutex_lock(&p->lock);
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

			if (!pool_reserve_slot_why(p, reserve, &p->starving))
				break;
			if (p->total > p->pool_size)
				pgc_log(PGC_LOG, "pool %s/%s: using reserve pool (%d servers)", p->dbname, p->user, p->total);
			launches++;
		}
		while (!p->db_removed && !atomic_load(&e->shutting_down) && p->total < p->min_pool_size &&
			   pool_reserve_slot(p, false))
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
