/*
 * accept.c - admitting new clients; see accept.h.
 *
 * Why a paused listener is edge-triggered rather than removed: a level-
 * triggered listener with connections waiting that accept() cannot take
 * (out of descriptors) wakes its worker without end, a hot loop; a removed
 * one would need a timer to come back. Edge-triggered, it wakes the worker
 * once per new connection, which is work proportional to what clients send.
 *
 * Why a refused connection is told why only after its startup packet: a
 * libpq client sends SSLRequest first, and libpq (since the fix for
 * CVE-2024-10977) shows nothing of an error that comes instead of the
 * answer to it. So a refused connection gets a client struct that answers
 * 'N' to encryption requests and FATAL 53300 to its startup packet, as
 * PostgreSQL's "too many clients" comes; such clients are few (a bound per
 * worker), and are closed after REFUSAL_GRACE if they say nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accept.h"
#include "core.h"
#include "log.h"
#include "netopt.h"

/* Connections taken per listener per event, so that one listener cannot starve the loop. */
#define ACCEPT_BATCH            64
/* Buckets of the per-address table; it holds only addresses with clients logging in. */
#define LOGIN_ADDR_BUCKETS      1024
/* What is read and dropped from a refused connection, so that close() sends FIN, not RST. */
#define REFUSE_DRAIN_BYTES      16384
/* Descriptors the daemon needs besides its connections: stdio, log, epoll, eventfds, listeners... */
#define FD_OVERHEAD_FIXED       32
#define FD_OVERHEAD_PER_WORKER  4

/* Refused clients per worker waiting for their startup packet; past that, refused at once. */
#define REFUSALS_PENDING_MAX    16
/* Seconds a refused client has to send its startup packet. */
#define REFUSAL_GRACE           1.0

/* The newest clients looked at for ones that vanished while logging in (one poll() call). */
#define VANISHED_SCAN_MAX       256

#define SQLSTATE_TOO_MANY_CONNECTIONS "53300"

/* ------------------------------------------------ per-address login counts -- */

/* An IP address as a key: family and the address bytes. */
typedef struct addr_key {
	int family;                 /* AF_INET or AF_INET6 */
	uint8_t bytes[16];          /* 4 used for AF_INET */
} addr_key;

typedef struct login_addr {
	struct login_addr *next;
	addr_key key;
	int count;                  /* clients from it in the login phase */
} login_addr;

typedef struct pgc_login_addrs {
	pthread_mutex_t lock;
	login_addr *buckets[LOGIN_ADDR_BUCKETS];
} pgc_login_addrs;

/* The key of an IP peer; false for a peer without one (Unix socket). */
static bool
addr_key_of(const struct sockaddr_storage *ss, addr_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = ss->ss_family;
	if (ss->ss_family == AF_INET)
		memcpy(k->bytes, &((const struct sockaddr_in *) ss)->sin_addr, 4);
	else if (ss->ss_family == AF_INET6)
		memcpy(k->bytes, &((const struct sockaddr_in6 *) ss)->sin6_addr, 16);
	else
		return false;
	return true;
}

static unsigned
addr_hash(const addr_key *k)
{
	uint32_t h = 2166136261u;   /* FNV-1a */

	for (size_t i = 0; i < sizeof(k->bytes); i++)
		h = (h ^ k->bytes[i]) * 16777619u;
	return (h ^ (uint32_t) k->family) % LOGIN_ADDR_BUCKETS;
}

/* The entry for k in its bucket, and the link pointing at it. Lock held. */
static login_addr **
addr_find(pgc_login_addrs *t, const addr_key *k)
{
	login_addr **pp = &t->buckets[addr_hash(k)];

	while (*pp && memcmp(&(*pp)->key, k, sizeof(*k)) != 0)
		pp = &(*pp)->next;
	return pp;
}

/*
 * Count one more client logging in from ss, unless limit (0 = none) is
 * reached. False when refused (or out of memory); a peer without an IP
 * address is always admitted and not counted.
 */
static bool
addr_enter(pgc_login_addrs *t, const struct sockaddr_storage *ss, int limit)
{
	addr_key k;
	login_addr **pp;
	bool ok = true;

	if (!addr_key_of(ss, &k))
		return true;
	pthread_mutex_lock(&t->lock);
	pp = addr_find(t, &k);
	if (*pp == NULL)
	{
		*pp = calloc(1, sizeof(**pp));
		if (*pp)
			(*pp)->key = k;
	}
	if (*pp == NULL || (limit > 0 && (*pp)->count >= limit))
		ok = false;
	else
		(*pp)->count++;
	pthread_mutex_unlock(&t->lock);
	return ok;
}

/* One client from ss left the login phase; entries that reach zero go. */
static void
addr_leave(pgc_login_addrs *t, const struct sockaddr_storage *ss)
{
	addr_key k;
	login_addr **pp;

	if (!addr_key_of(ss, &k))
		return;
	pthread_mutex_lock(&t->lock);
	pp = addr_find(t, &k);
	if (*pp && --(*pp)->count <= 0)
	{
		login_addr *gone = *pp;

		*pp = gone->next;
		free(gone);
	}
	pthread_mutex_unlock(&t->lock);
}

int
pgc_accept_init(pgc_engine *e, char *err, size_t errlen)
{
	e->login_addrs = calloc(1, sizeof(*e->login_addrs));
	if (e->login_addrs == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&e->login_addrs->lock, NULL);
	return 0;
}

void
pgc_accept_free(pgc_engine *e)
{
	pgc_login_addrs *t = e->login_addrs;

	if (t == NULL)
		return;
	for (int i = 0; i < LOGIN_ADDR_BUCKETS; i++)
		while (t->buckets[i])
		{
			login_addr *a = t->buckets[i];

			t->buckets[i] = a->next;
			free(a);
		}
	pthread_mutex_destroy(&t->lock);
	free(t);
	e->login_addrs = NULL;
}

/* ----------------------------------------------------- the spare descriptor -- */

static int
spare_open(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int
pgc_accept_worker_init(pgc_worker *w, char *err, size_t errlen)
{
	w->spare_fd = spare_open();
	if (w->spare_fd < 0)
	{
		snprintf(err, errlen, "could not open /dev/null: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void
pgc_accept_worker_free(pgc_worker *w)
{
	if (w->spare_fd >= 0)
		close(w->spare_fd);
	w->spare_fd = -1;
}

/* Free the spare descriptor for one accept(); false if there is none (lost to a race earlier). */
static bool
spare_release(pgc_worker *w)
{
	if (w->spare_fd < 0)
		w->spare_fd = spare_open();
	if (w->spare_fd < 0)
		return false;
	close(w->spare_fd);
	w->spare_fd = -1;
	return true;
}

/* Take the spare back, unless a refused client holds its slot (another thread may have taken the descriptor: then later). */
static void
spare_restore(pgc_worker *w)
{
	if (w->spare_fd < 0 && !w->spare_lent)
		w->spare_fd = spare_open();
}

/* ---------------------------------------------------------------- refusing -- */

/*
 * Send a connection that gets no client struct FATAL sqlstate at once, and
 * close it (the fallback when refused clients are too many to wait for;
 * see the top of the file). What it sent is read first, so that close()
 * ends the connection with FIN after the error rather than with RST, which
 * could make the client lose the error.
 */
static void
refuse(int fd, const char *sqlstate, const char *message, const char *detail)
{
	pgc_msgbuf m;
	char sink[1024];
	size_t drained = 0;
	ssize_t n;

	pgc_msgbuf_init(&m);
	pgc_msgbuf_error(&m, PGC_BE_ERROR, "FATAL", sqlstate, message, detail, NULL);
	if (!m.failed && send(fd, m.data, m.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		(void) errno;           /* it went away: nothing to tell */
	pgc_msgbuf_free(&m);
	shutdown(fd, SHUT_WR);
	while (drained < REFUSE_DRAIN_BYTES && (n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
		drained += (size_t) n;
	close(fd);
}

/* "host" of an IP peer, "unix" for the Unix socket. */
static void
peer_host(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
	const void *a = NULL;

	if (ss->ss_family == AF_INET)
		a = &((const struct sockaddr_in *) ss)->sin_addr;
	else if (ss->ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *) ss)->sin6_addr;
	if (a == NULL || inet_ntop(ss->ss_family, a, out, (socklen_t) outlen) == NULL)
		snprintf(out, outlen, "unix");
}

/* ------------------------------------------------------- pausing listeners -- */

/* Register w's listeners anew, edge-triggered or not. */
static void
listeners_arm(pgc_worker *w, bool edge)
{
	for (int i = 0; i < w->n_listen; i++)
	{
		int fd = w->listen_fds[i];
		uint32_t ev = EPOLLIN | (edge ? EPOLLET : 0u) | (fd == w->engine->unix_fd ? EPOLLEXCLUSIVE : 0u);

		/* EPOLLEXCLUSIVE registrations cannot be modified, only removed and added. */
		pgc_worker_unwatch(w, fd);
		(void) pgc_worker_watch(w, fd, &w->listener_kind, ev);
	}
}

static void
accept_pause(pgc_worker *w, unsigned why)
{
	if (w->accept_paused == 0)
		listeners_arm(w, true);
	w->accept_paused |= why;
}

static void
accept_resume(pgc_worker *w, unsigned why)
{
	if ((w->accept_paused & why) == 0)
		return;
	w->accept_paused &= ~why;
	if (w->accept_paused == 0)
		listeners_arm(w, false);    /* level-triggered: what waits is reported at once */
}

/* w holds its share of max_login_clients. */
static bool
login_share_full(const pgc_worker *w, const pgc_config *cfg)
{
	int n = w->engine->n_workers;
	int share;

	if (cfg->max_login_clients <= 0)
		return false;
	share = cfg->max_login_clients / n + (cfg->max_login_clients % n != 0);
	return w->n_login >= share;
}

/* ------------------------------------------------------------- accepting -- */

static long
nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return -1;
	return (long) rl.rlim_cur;
}

/* A new client struct for fd on w: in the login phase, or refused (refusal). */
static pgc_client *
client_new(pgc_worker *w, int fd, const struct sockaddr_storage *ss, uint8_t refusal)
{
	const pgc_config *cfg = pgc_engine_config();
	pgc_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->kind = PGC_KIND_CLIENT;
	c->fd = fd;
	c->worker = w;
	c->serial = atomic_fetch_add(&w->engine->next_serial, 1) + 1;
	c->state = CL_STARTUP;
	c->state_since = w->now;
	pgc_peer_set(&c->peer, ss);
	c->is_unix = ss->ss_family == AF_UNIX;
	c->refusal = refusal;
	if (refusal == PGC_REFUSAL_NONE)
	{
		c->in_login = true;
		w->n_login++;
	}
	else
	{
		w->n_refusing++;
		/*
		 * The tick closes a client that has been in the startup phase for
		 * client_login_timeout: starting the clock earlier gives it
		 * REFUSAL_GRACE.
		 */
		if (cfg->client_login_timeout > REFUSAL_GRACE)
			c->state_since = w->now - (cfg->client_login_timeout - REFUSAL_GRACE);
	}
	/* TCP_NODELAY and the rest come from the listener (netopt.h), unless a reload changed them. */
	if (!c->is_unix && !pgc_netopt_same(cfg, w->engine->listener_cfg))
		pgc_netopt_tcp(fd, cfg);	/* tcp_keepalive, tcp_user_timeout, ... */
	pgc_list_push_tail(&w->clients, &c->node);
	w->n_clients++;
	return c;
}

/* Start watching a new client: it wants its startup packet (client.c takes over from here). */
static void
client_watch(pgc_client *c)
{
	if (pgc_worker_watch(c->worker, c->fd, c, EPOLLIN) < 0)
	{
		pgc_client_close(c, "could not watch the connection");
		return;
	}
	c->registered = true;
	c->epoll_events = EPOLLIN;
}

/* The message a client from peer refused for reason (PGC_REFUSAL_*) gets. */
static void
refusal_text(uint8_t reason, const struct sockaddr_storage *peer, char *msg, size_t msglen,
			 const char **detail)
{
	char host[INET6_ADDRSTRLEN];

	*detail = NULL;
	if (reason == PGC_REFUSAL_ADDR)
	{
		peer_host(peer, host, sizeof(host));
		snprintf(msg, msglen, "too many connections from host \"%s\" still logging in", host);
	}
	else
	{
		snprintf(msg, msglen, "sorry, too many clients already");
		if (reason == PGC_REFUSAL_NO_FD)
			*detail = "pgcarrier is out of file descriptors.";
	}
}

/*
 * Refuse fd, accepted from ss, for reason: as a client that is told after
 * its startup packet, or at once when too many such wait already.
 */
static void
refuse_client(pgc_worker *w, int fd, const struct sockaddr_storage *ss, uint8_t reason)
{
	pgc_client *c = NULL;
	const char *detail;
	char msg[160];

	if (w->n_refusing < REFUSALS_PENDING_MAX)
		c = client_new(w, fd, ss, reason);
	if (c != NULL)
	{
		client_watch(c);
		return;
	}
	if (reason == PGC_REFUSAL_NO_FD)
		w->spare_lent = false;  /* closed below: the slot is free again */
	refusal_text(reason, ss, msg, sizeof(msg), &detail);
	refuse(fd, SQLSTATE_TOO_MANY_CONNECTIONS, msg, detail);
}

/*
 * accept() on listen_fd failed for want of descriptors: take one waiting
 * connection in the spare descriptor's slot and refuse it (one at a time:
 * the slot comes back when that client is gone), then wait edge-triggered
 * for the next connection or a client of ours to close.
 */
static void
out_of_descriptors(pgc_worker *w, int listen_fd, int error)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd;

	pgc_log_limited(PGC_WARNING, "out of file descriptors (accept: %s; RLIMIT_NOFILE is %ld): "
					"refusing new clients until some close; raise the limit (ulimit -n) or lower "
					"max_client_conn", strerror(error), nofile_limit());
	accept_pause(w, PGC_ACCEPT_PAUSED_NO_FD);
	if (w->spare_lent || !spare_release(w))
		return;
	fd = accept4(listen_fd, (struct sockaddr *) &ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
	{
		spare_restore(w);       /* nothing waits any more, or another thread took the descriptor */
		return;
	}
	w->spare_lent = true;
	refuse_client(w, fd, &ss, PGC_REFUSAL_NO_FD);
}

static bool
same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	addr_key ka, kb;

	return addr_key_of(a, &ka) && addr_key_of(b, &kb) && memcmp(&ka, &kb, sizeof(ka)) == 0;
}

/*
 * Close w's clients from ss's host that are still logging in but whose peer
 * has hung up or reset the connection before w read it. A burst of
 * connections opened and dropped at once counts against
 * max_login_clients_per_addr until each one's end is read; without this,
 * the live client right behind such a burst would be refused for the dead
 * ones. Only on the refusing path, and only when there are new clients
 * since the last look or time has moved on; it looks at the newest clients
 * (new ones are at the tail) with one poll() call. A peer
 * that shut down its sending side cannot go on with its login either.
 * Clients of other workers are left to their own loops.
 */
static void
reap_vanished(pgc_worker *w, const struct sockaddr_storage *ss)
{
	struct pollfd pfd[VANISHED_SCAN_MAX];
	pgc_client *who[VANISHED_SCAN_MAX];
	int n = 0;

	uint64_t newest = pgc_list_empty(&w->clients) ? 0 :
		pgc_container_of(w->clients.prev, pgc_client, node)->serial;

	/* Nothing new since the last look in this loop iteration: nothing to find. */
	if (w->vanished_reaped_at == w->now && w->vanished_reaped_upto == newest)
		return;
	w->vanished_reaped_at = w->now;
	w->vanished_reaped_upto = newest;
	for (pgc_link *l = w->clients.prev; l != &w->clients && n < VANISHED_SCAN_MAX; l = l->prev)
	{
		pgc_client *c = pgc_container_of(l, pgc_client, node);

		struct sockaddr_storage peer = pgc_peer_storage(&c->peer);

		if (!c->in_login || c->fd < 0 || !same_host(&peer, ss))
			continue;
		pfd[n].fd = c->fd;
		pfd[n].events = POLLRDHUP;
		pfd[n].revents = 0;
		who[n++] = c;
	}
	if (n == 0 || poll(pfd, (nfds_t) n, 0) <= 0)
		return;
	for (int i = 0; i < n; i++)
		if (pfd[i].revents & (POLLRDHUP | POLLHUP | POLLERR))
			pgc_client_close(who[i], "the client hung up while logging in");
}

/*
 * Count a client from ss against max_login_clients_per_addr; at the limit,
 * first close the ones from there that have vanished (reap_vanished).
 */
static bool
addr_admit(pgc_worker *w, const struct sockaddr_storage *ss, const pgc_config *cfg)
{
	pgc_login_addrs *t = w->engine->login_addrs;

	if (addr_enter(t, ss, cfg->max_login_clients_per_addr))
		return true;
	reap_vanished(w, ss);
	return addr_enter(t, ss, cfg->max_login_clients_per_addr);
}

/* fd was accepted from a peer at ss: admit it as a client, or refuse it. */
static void
admit(pgc_worker *w, int fd, const struct sockaddr_storage *ss, const pgc_config *cfg)
{
	pgc_client *c;

	if (!addr_admit(w, ss, cfg))
	{
		char host[INET6_ADDRSTRLEN];

		peer_host(ss, host, sizeof(host));
		pgc_log_limited(PGC_LOG, "refused a client from %s: %d clients from there are logging in "
						"already (max_login_clients_per_addr)", host, cfg->max_login_clients_per_addr);
		refuse_client(w, fd, ss, PGC_REFUSAL_ADDR);
		return;
	}
	c = client_new(w, fd, ss, PGC_REFUSAL_NONE);
	if (c == NULL)
	{
		addr_leave(w->engine->login_addrs, ss);
		pgc_log_limited(PGC_WARNING, "out of memory for a new client");
		refuse(fd, SQLSTATE_TOO_MANY_CONNECTIONS, "sorry, too many clients already", NULL);
		return;
	}
	client_watch(c);
}

/* Errors of accept() that concern one connection only: take the next. */
static bool
accept_error_is_transient(int error)
{
	switch (error)
	{
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case EPERM:             /* refused by a firewall rule */
		case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN: case ENONET:
		case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
			return true;
		default:
			return false;
	}
}

void
pgc_client_accept(pgc_worker *w, int listen_fd)
{
	const pgc_config *cfg = pgc_engine_config();

	for (int i = 0; i < ACCEPT_BATCH; i++)
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd;

		if (login_share_full(w, cfg))
		{
			/* Leave them in the backlog: one of our own clients logging in or leaving resumes us. */
			accept_pause(w, PGC_ACCEPT_PAUSED_LOGIN_FULL);
			return;
		}
		spare_restore(w);       /* a descriptor that came back goes to the reserve first */
		fd = accept4(listen_fd, (struct sockaddr *) &ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
		{
			int error = errno;

			if (error == EAGAIN || error == EWOULDBLOCK)
				return;
			if (accept_error_is_transient(error))
				continue;
			if (error == EMFILE || error == ENFILE)
				out_of_descriptors(w, listen_fd, error);
			else
			{
				/* ENOBUFS, ENOMEM and the unforeseen: no hot loop either. */
				pgc_log_limited(PGC_WARNING, "accept failed: %s", strerror(error));
				accept_pause(w, PGC_ACCEPT_PAUSED_NO_FD);
			}
			return;
		}
		accept_resume(w, PGC_ACCEPT_PAUSED_NO_FD);
		admit(w, fd, &ss, cfg);
	}
}

/* --------------------------------------------------------- client hooks -- */

/* c leaves the login phase (logged in or closing): give back its slots. */
static void
login_phase_end(pgc_client *c)
{
	pgc_worker *w = c->worker;

	if (!c->in_login)
		return;
	c->in_login = false;
	w->n_login--;
	{
		struct sockaddr_storage peer = pgc_peer_storage(&c->peer);

		addr_leave(w->engine->login_addrs, &peer);
	}
	accept_resume(w, PGC_ACCEPT_PAUSED_LOGIN_FULL);
}

bool
pgc_accept_room_for_client(const pgc_engine *e, const pgc_config *cfg)
{
	return atomic_load(&e->clients_total) < cfg->max_client_conn;
}

bool
pgc_accept_logged_in(pgc_client *c)
{
	pgc_engine *e = c->worker->engine;

	login_phase_end(c);
	/* Counted first, checked after: two clients logging in at once cannot both take the last slot. */
	c->counted = true;
	if (atomic_fetch_add(&e->clients_total, 1) >= pgc_engine_config()->max_client_conn)
	{
		pgc_client_fatal(c, SQLSTATE_TOO_MANY_CONNECTIONS, "sorry, too many clients already");
		return false;
	}
	return true;
}

/*
 * c, refused for its address, has sent its startup packet: if clients from
 * there have left the login phase since, it is admitted after all.
 */
static bool
admit_late(pgc_client *c)
{
	pgc_worker *w = c->worker;
	const pgc_config *cfg = pgc_engine_config();

	struct sockaddr_storage peer = pgc_peer_storage(&c->peer);

	if (c->refusal != PGC_REFUSAL_ADDR || login_share_full(w, cfg) || !addr_admit(w, &peer, cfg))
		return false;
	c->refusal = PGC_REFUSAL_NONE;
	w->n_refusing--;
	c->in_login = true;
	w->n_login++;
	c->state_since = w->now;	/* client_login_timeout, in full */
	return true;
}

bool
pgc_accept_refuse(pgc_client *c)
{
	pgc_msgbuf *out;
	struct sockaddr_storage peer;
	const char *detail;
	char msg[160];

	if (admit_late(c))
		return false;
	out = pgc_msgbuf_ensure(&c->out);
	peer = pgc_peer_storage(&c->peer);
	refusal_text(c->refusal, &peer, msg, sizeof(msg), &detail);
	if (out)
	{
		pgc_msgbuf_error(out, PGC_BE_ERROR, "FATAL", SQLSTATE_TOO_MANY_CONNECTIONS, msg, detail, NULL);
		(void) pgc_msgbuf_write(c->fd, c->tls, out);
	}
	pgc_client_close(c, msg);
	return true;
}

void
pgc_accept_client_gone(pgc_client *c)
{
	pgc_worker *w = c->worker;

	if (c->refusal != PGC_REFUSAL_NONE)
		w->n_refusing--;
	if (c->refusal == PGC_REFUSAL_NO_FD)
		w->spare_lent = false;  /* its descriptor is the spare's again once closed */
	login_phase_end(c);
	/* Its descriptor is about to be free: a worker out of them may accept again. */
	accept_resume(c->worker, PGC_ACCEPT_PAUSED_NO_FD);
}

/* ------------------------------------------------------ descriptor budget -- */

/* Server connections the [databases] lines allow at least (one pool per line). */
static long
server_connections_possible(const pgc_config *cfg)
{
	long total = 0;

	for (int i = 0; i < cfg->n_databases; i++)
	{
		const pgc_database *db = &cfg->databases[i];
		long size = db->pool_size >= 0 ? db->pool_size : cfg->default_pool_size;
		long reserve = db->reserve_pool >= 0 ? db->reserve_pool : cfg->reserve_pool_size;
		long cap = db->max_db_connections >= 0 ? db->max_db_connections : cfg->max_db_connections;

		size += reserve;
		total += cap > 0 && cap < size ? cap : size;
	}
	return total;
}

void
pgc_accept_check_fd_limit(const pgc_config *cfg, int n_workers)
{
	long limit = nofile_limit();
	long servers = server_connections_possible(cfg);
	long need = (long) cfg->max_client_conn + servers + FD_OVERHEAD_FIXED +
		(long) n_workers * FD_OVERHEAD_PER_WORKER;

	if (limit < 0 || need <= limit)
		return;
	pgc_log(PGC_WARNING, "RLIMIT_NOFILE is %ld, too low for max_client_conn = %d plus %ld server "
			"connections (about %ld descriptors): clients past the limit will be refused (53300); "
			"raise it (ulimit -n, LimitNOFILE=) or lower max_client_conn",
			limit, cfg->max_client_conn, servers, need);
}
