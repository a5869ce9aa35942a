/*
 * census.c - listings collected from the workers that own what they list;
 * see census.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "census.h"
#include "log.h"
#include "pshare.h"
#include "tls.h"

/* A request for one worker's slot, on that worker's inbox (inbox lock). */
struct pgc_census_ask {
	pgc_census *census;
	int slot;
	struct pgc_census_ask *next;
};

struct pgc_census {
	atomic_int refs;              /* the requester, and each worker still to answer */
	atomic_int pending;           /* slots still to fill */
	int n;
	pgc_census_slot *slots;
	struct pgc_census_ask *asks;  /* one per worker */
	pgc_engine *engine;
	pgc_worker *home;             /* the requester's worker, or NULL */
	void (*done)(void *arg);
	void *arg;
	int notify_fd;
	bool listed;                  /* on home->census_mine (home's thread only) */
	pgc_census *next_mine;
};

static void
census_free(pgc_census *c)
{
	for (int i = 0; i < c->n; i++)
	{
		free(c->slots[i].clients);
		free(c->slots[i].servers);
	}
	free(c->slots);
	free(c->asks);
	free(c);
}

static void
unref(pgc_census *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		census_free(c);
}

/* A slot is filled: the last one announces the census. */
static void
slot_done(pgc_census *c)
{
	if (atomic_fetch_sub_explicit(&c->pending, 1, memory_order_acq_rel) == 1)
	{
		/* Servers may change worker again; those that could not meanwhile go now. */
		pgc_engine *e = c->engine;

		if (atomic_fetch_sub(&e->census_freeze, 1) == 1)
			pgc_pool_kick_waiters(e);
		if (c->home)
			pgc_worker_wake(c->home);   /* its own thread polls after this drain anyway */
		else if (c->notify_fd >= 0)
		{
			uint64_t one = 1;

			if (write(c->notify_fd, &one, sizeof(one)) < 0)
				(void) errno;           /* the counter is full: the reader is woken already */
		}
	}
	unref(c);
}

pgc_census *
pgc_census_start(pgc_engine *e, pgc_worker *home, void (*done)(void *arg), void *arg, int notify_fd)
{
	pgc_census *c = calloc(1, sizeof(*c));
	int n = e->n_workers;

	if (c == NULL)
		return NULL;
	c->n = n;
	c->slots = calloc((size_t) n, sizeof(*c->slots));
	c->asks = calloc((size_t) n, sizeof(*c->asks));
	if (c->slots == NULL || c->asks == NULL)
	{
		census_free(c);
		return NULL;
	}
	atomic_init(&c->refs, n + 1);
	atomic_init(&c->pending, n);
	c->engine = e;
	c->home = home;
	c->done = done;
	c->arg = arg;
	c->notify_fd = notify_fd;
	if (home)
	{
		/* Before any worker can complete it: its poll must find it. */
		c->next_mine = home->census_mine;
		home->census_mine = c;
		c->listed = true;
	}
	/*
	 * From now on no server changes worker (pool.c, next_waiter). One that
	 * a worker decided to move before is in its new worker's inbox once the
	 * pool's lock is free (the move is made under it): taking each pool's
	 * lock once makes sure that every such move is complete, and the
	 * inboxes are listed too (fill_slot).
	 */
	atomic_fetch_add(&e->census_freeze, 1);
	for (pgc_pool *p = pgc_pool_first(e); p; p = p->next)
	{
		pthread_mutex_lock(&p->lock);
		pthread_mutex_unlock(&p->lock);
	}
	for (int i = 0; i < n; i++)
	{
		pgc_worker *w = &e->workers[i];
		bool closed;

		c->asks[i].census = c;
		c->asks[i].slot = i;
		if (w == pgc_current_worker)
		{
			/* The calling thread is that worker: it describes its own objects now. */
			pgc_census_serve(w, &c->asks[i]);
			continue;
		}
		pthread_mutex_lock(&w->inbox_lock);
		closed = w->census_closed;
		if (!closed)
		{
			c->asks[i].next = w->census_asks;
			w->census_asks = &c->asks[i];
		}
		pthread_mutex_unlock(&w->inbox_lock);
		if (closed)
			slot_done(c);               /* a worker that has stopped has nothing to list */
		else
			pgc_worker_wake(w);
	}
	return c;
}

bool
pgc_census_complete(const pgc_census *c)
{
	return atomic_load_explicit(&((pgc_census *) c)->pending, memory_order_acquire) == 0;
}

int
pgc_census_workers(const pgc_census *c)
{
	return c->n;
}

const pgc_census_slot *
pgc_census_part(const pgc_census *c, int i)
{
	return i >= 0 && i < c->n ? &c->slots[i] : NULL;
}

void
pgc_census_release(pgc_census *c)
{
	if (c == NULL)
		return;
	if (c->listed)
	{
		for (pgc_census **pp = &c->home->census_mine; *pp; pp = &(*pp)->next_mine)
			if (*pp == c)
			{
				*pp = c->next_mine;
				break;
			}
		c->listed = false;
	}
	unref(c);
}

void
pgc_census_poll(pgc_worker *w)
{
	bool again = true;

	/* A callback may start or release censuses: look from the head again after each. */
	while (again)
	{
		again = false;
		for (pgc_census **pp = &w->census_mine; *pp; pp = &(*pp)->next_mine)
		{
			pgc_census *c = *pp;

			if (!pgc_census_complete(c))
				continue;
			*pp = c->next_mine;
			c->listed = false;
			c->done(c->arg);
			again = true;
			break;
		}
	}
}

/* -------------------------------------------------------------- pools -- */

static int
pool_ptr_cmp(const void *a, const void *b)
{
	const pgc_pool *x = ((const pgc_census_pool *) a)->p, *y = ((const pgc_census_pool *) b)->p;

	return x < y ? -1 : x > y;
}

static int
pool_name_cmp(const void *a, const void *b)
{
	const pgc_census_pool *x = a, *y = b;
	int c = strcmp(x->p->dbname, y->p->dbname);

	return c ? c : strcmp(x->p->user, y->p->user);
}

static pgc_census_pool *
find_pool(pgc_census_pool *rows, int n, const pgc_pool *p)
{
	pgc_census_pool key = {.p = (pgc_pool *) p};

	return p ? bsearch(&key, rows, (size_t) n, sizeof(*rows), pool_ptr_cmp) : NULL;
}

int
pgc_census_pools(pgc_engine *e, const pgc_census *census, pgc_census_pool **out)
{
	int n = 0, i = 0;
	pgc_census_pool *rows;
	const pgc_config *cfg = pgc_engine_config();
	bool check = cfg->server_check_query != NULL;
	double now = pgc_now();

	pthread_mutex_lock(&e->cfg_lock);
	for (pgc_pool *p = e->pools; p; p = p->next)
		n++;
	rows = calloc((size_t) n + 1, sizeof(*rows));
	for (pgc_pool *p = e->pools; rows && p; p = p->next)
		rows[i++].p = p;
	pthread_mutex_unlock(&e->cfg_lock);
	if (rows == NULL)
		return -1;
	for (i = 0; i < n; i++)
	{
		pgc_pool *p = rows[i].p;

		pthread_mutex_lock(&p->lock);
		rows[i].total = p->total;
		rows[i].pool_size = p->pool_size;
		pthread_mutex_unlock(&p->lock);
		rows[i].mode = pgc_pool_mode_of(p);
	}
	qsort(rows, (size_t) n, sizeof(*rows), pool_ptr_cmp);
	for (int w = 0; census && w < pgc_census_workers(census); w++)
	{
		const pgc_census_slot *sl = pgc_census_part(census, w);

		for (int k = 0; k < sl->n_clients; k++)
		{
			const pgc_census_client *c = &sl->clients[k];
			pgc_census_pool *r = c->console ? NULL : find_pool(rows, n, c->pool);

			if (r == NULL)
				continue;
			if (c->state == CL_WAITING || c->state == CL_LOGIN)
			{
				r->cl_waiting++;
				if (c->wait_since > 0 && (r->oldest_wait == 0 || c->wait_since < r->oldest_wait))
					r->oldest_wait = c->wait_since;
			}
			else
				r->cl_active++;
			if (c->pinned)
				r->cl_pinned++;
		}
		for (int k = 0; k < sl->n_servers; k++)
		{
			const pgc_census_server *s = &sl->servers[k];
			pgc_census_pool *r = find_pool(rows, n, s->pool);

			if (r == NULL)
				continue;
			r->sv_rows++;
			if (s->state == SV_LINKED)
				r->sv_active++;
			else if (s->state == SV_IDLE && check && now - s->request_at >= cfg->server_check_delay)
				r->sv_used++;       /* server_check_query runs before it serves again (compat.h) */
			else if (s->state == SV_IDLE)
				r->sv_idle++;
			else if (s->state == SV_RESETTING)
				r->sv_tested++;
			else if (PGC_SV_STARTING(s->state))
				r->sv_login++;
		}
	}
	qsort(rows, (size_t) n, sizeof(*rows), pool_name_cmp);
	*out = rows;
	return n;
}

/* ------------------------------------------------------------ filling -- */

/* Room for one more row in *rows (*n used); NULL when out of memory. */
static void *
grow_rows(void **rows, int n, size_t size)
{
	if ((n & (n - 1)) == 0)
	{
		void *r = realloc(*rows, size * (size_t) (n ? n * 2 : 16));

		if (r == NULL)
			return NULL;
		*rows = r;
	}
	return (char *) *rows + size * (size_t) n;
}

/* Address text and port of sa ("unix", 0 for a Unix socket). */
static void
addr_text(const struct sockaddr_storage *sa, char *buf, size_t len, int *port)
{
	*port = 0;
	buf[0] = '\0';
	if (sa->ss_family == AF_INET)
	{
		const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

		inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t) len);
		*port = ntohs(in->sin_port);
	}
	else if (sa->ss_family == AF_INET6)
	{
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t) len);
		*port = ntohs(in6->sin6_port);
	}
	else if (sa->ss_family == AF_UNIX)
		snprintf(buf, len, "unix");
}

static void
local_text(int fd, char *buf, size_t len, int *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (fd < 0 || getsockname(fd, (struct sockaddr *) &ss, &sl) < 0)
	{
		buf[0] = '\0';
		*port = 0;
		return;
	}
	addr_text(&ss, buf, len, port);
}

static void
fill_client(pgc_worker *w, pgc_client *cl, pgc_census_client *r)
{
	const char *app = pgc_client_param(cl, "application_name");

	memset(r, 0, sizeof(*r));
	r->id = cl->cancel_pid;
	r->pool = cl->pool;
	r->console = cl->console != NULL;
	snprintf(r->user, sizeof(r->user), "%s", cl->user ? cl->user : "");
	snprintf(r->database, sizeof(r->database), "%s", cl->dbname ? cl->dbname : "");
	{
		struct sockaddr_storage peer = pgc_peer_storage(&cl->peer);

		addr_text(&peer, r->addr, sizeof(r->addr), &r->port);
	}
	local_text(cl->fd, r->local_addr, sizeof(r->local_addr), &r->local_port);
	if (cl->is_unix)
	{
		struct ucred cred;
		socklen_t cl_len = sizeof(cred);

		if (getsockopt(cl->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl_len) == 0)
			r->remote_pid = (int) cred.pid;
		snprintf(r->addr, sizeof(r->addr), "unix");
	}
	r->state = (uint8_t) cl->state;
	if (cl->tls)
		pgc_tls_describe(cl->tls, r->tls, sizeof(r->tls));
	snprintf(r->application_name, sizeof(r->application_name), "%s", app ? app : "");
	r->connected_at = cl->st_logged_in_at;
	r->request_at = cl->state_since;
	/* wait_since is written by this worker (pool.c, under the pool lock, for its own client). */
	if (cl->state == CL_WAITING || cl->state == CL_LOGIN)
		r->wait_since = cl->wait_since;
	r->worker = w->id;
	r->pinned = cl->guard.pinned;
	r->pinned_since = cl->st_pinned_since;
	r->prepared = cl->guard.stmts.count;
	/* Only a linked client's server is its worker's to read; a waiting one may be handed one any moment. */
	if (cl->state == CL_LINKED && cl->server)
	{
		r->server = cl->server->serial;
		r->backend_pid = cl->server->backend_pid;
	}
}

/* s belongs to w, or is on w's idle list (pool lock held then). */
static void
fill_server(pgc_worker *w, pgc_server *s, pgc_census_server *r, bool pool_locked)
{
	pgc_pool *p = s->pool;
	const char *app = NULL;

	memset(r, 0, sizeof(*r));
	r->id = s->serial;
	r->pool = p;
	r->state = (uint8_t) s->state;
	local_text(s->fd, r->local_addr, sizeof(r->local_addr), &r->local_port);
	r->connected_at = s->created_at;
	r->request_at = s->state_since;
	if (!pool_locked)
		pthread_mutex_lock(&p->lock);
	snprintf(r->addr, sizeof(r->addr), "%s", p->host ? p->host : "");
	r->port = p->port;
	r->close_needed = s->dirty_close || s->confused || s->config_generation != p->config_generation ||
		s->reconnect_gen != atomic_load(&p->reconnect_gen);
	if (!pool_locked)
		pthread_mutex_unlock(&p->lock);
	if (s->client && s->state == SV_LINKED)
	{
		r->client_id = s->client->cancel_pid;
		app = pgc_client_param(s->client, "application_name");
	}
	snprintf(r->application_name, sizeof(r->application_name), "%s", app ? app : "");
	r->backend_pid = s->backend_pid;
	if (s->tls && !PGC_SV_STARTING(s->state))
		pgc_tls_describe(s->tls, r->tls, sizeof(r->tls));
	r->prepared = s->stmts.count;
	r->txn_status = s->txn_status;
	r->worker = w->id;
}


static void
fill_slot(pgc_worker *w, pgc_census_slot *slot)
{
	struct timespec ts;
	pgc_link *n;
	int in_inbox_listed = 0;

	for (n = w->clients.next; n != &w->clients; n = n->next)
	{
		pgc_client *cl = pgc_container_of(n, pgc_client, node);
		pgc_census_client *r;

		if (cl->in)
			slot->used_buffers++;
		if (cl->state == CL_STARTUP || cl->state == CL_TLS || cl->state == CL_AUTH)
		{
			slot->login_clients++;
			continue;
		}
		if (cl->state == CL_CLOSING)
			continue;
		if ((r = grow_rows((void **) &slot->clients, slot->n_clients, sizeof(*r))) == NULL)
		{
			slot->incomplete = true;
			break;
		}
		fill_client(w, cl, r);
		slot->n_clients++;
	}
	for (n = w->servers.next; n != &w->servers; n = n->next)
	{
		pgc_server *s = pgc_container_of(n, pgc_server, node);
		pgc_census_server *r;

		if (s->in)
			slot->used_buffers++;
		if ((r = grow_rows((void **) &slot->servers, slot->n_servers, sizeof(*r))) == NULL)
		{
			slot->incomplete = true;
			break;
		}
		fill_server(w, s, r, false);
		slot->n_servers++;
	}
	/*
	 * Servers handed to w's clients and not yet taken in (its inbox): w's
	 * now. The sender wrote them before posting, under the inbox lock; only
	 * w takes clients off its inbox, so they stay there while w lists them
	 * (after the inbox lock is let go: the pool lock comes before it).
	 */
	for (;;)
	{
		pgc_server *batch[64];
		int nb = 0, skip = 0;

		pthread_mutex_lock(&w->inbox_lock);
		for (pgc_client *cl = w->inbox; cl && nb < 64; cl = cl->inbox_next)
		{
			pgc_server *s = cl->server;

			if (s == NULL || s->client != cl || s->state != SV_LINKED || skip++ < in_inbox_listed)
				continue;
			batch[nb++] = s;
		}
		pthread_mutex_unlock(&w->inbox_lock);
		for (int b = 0; b < nb; b++)
		{
			pgc_census_server *r;

			if ((r = grow_rows((void **) &slot->servers, slot->n_servers, sizeof(*r))) == NULL)
			{
				slot->incomplete = true;
				break;
			}
			fill_server(w, batch[b], r, false);
			slot->n_servers++;
		}
		in_inbox_listed += nb;
		if (nb < 64 || slot->incomplete)
			break;
	}
	for (pgc_pool *p = pgc_pool_first(w->engine); p; p = p->next)
	{
		pthread_mutex_lock(&p->lock);
		for (n = p->idle[w->id].next; n != &p->idle[w->id]; n = n->next)
		{
			pgc_server *s = pgc_container_of(n, pgc_server, node);
			pgc_census_server *r;

			if ((r = grow_rows((void **) &slot->servers, slot->n_servers, sizeof(*r))) == NULL)
			{
				slot->incomplete = true;
				break;
			}
			fill_server(w, s, r, true);
			slot->n_servers++;
		}
		pthread_mutex_unlock(&p->lock);
	}
	slot->free_buffers = w->n_free_bufs;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
		slot->cpu_seconds = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

void
pgc_census_serve(pgc_worker *w, struct pgc_census_ask *asks)
{
	while (asks)
	{
		struct pgc_census_ask *a = asks;
		pgc_census *c = a->census;

		asks = a->next;
		fill_slot(w, &c->slots[a->slot]);
		c->slots[a->slot].answered = true;
		slot_done(c);
	}
}

void
pgc_census_worker_exit(pgc_worker *w)
{
	struct pgc_census_ask *asks;

	pthread_mutex_lock(&w->inbox_lock);
	w->census_closed = true;
	asks = w->census_asks;
	w->census_asks = NULL;
	pthread_mutex_unlock(&w->inbox_lock);
	/* Its clients and servers are gone: what it lists now is what it has, nothing. */
	pgc_census_serve(w, asks);
	while (w->census_mine)
	{
		pgc_census *c = w->census_mine;

		w->census_mine = c->next_mine;
		c->listed = false;
	}
}
