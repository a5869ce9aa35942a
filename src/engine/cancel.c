/*
 * cancel.c - cancel requests.
 *
 * Every client gets a (pid, key) pair made up by pgcarrier. A CancelRequest
 * may arrive on any worker: the registry maps the pair to the client, the
 * client's pool lock tells which server it is linked to right now, and a new
 * connection carries that backend's own key to the server.
 *
 * The requesting connection stays open until the server has closed ours, as
 * PostgreSQL's own does: a client that waits for that knows the cancel has
 * been acted on before it sends its next query, which it could otherwise
 * cancel by accident.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "log.h"
#include "pipeline.h"

#define CANCEL_BUCKETS 4096

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pgc_client *registry[CANCEL_BUCKETS];

typedef struct cancel_conn {
	pgc_kind kind;              /* PGC_KIND_CANCEL */
	int fd;                     /* to the server */
	int client_fd;              /* the requesting connection, closed last */
	bool sent;
	double started;
	pgc_worker *worker;
	pgc_link node;
	uint8_t packet[16];
} cancel_conn;

void
pgc_cancel_register(pgc_client *c)
{
	unsigned b = c->cancel_pid % CANCEL_BUCKETS;

	pthread_mutex_lock(&registry_lock);
	c->cancel_next = registry[b];
	registry[b] = c;
	pthread_mutex_unlock(&registry_lock);
}

void
pgc_cancel_unregister(pgc_client *c)
{
	unsigned b = c->cancel_pid % CANCEL_BUCKETS;

	if (c->cancel_pid == 0)
		return;                 /* never registered: login did not complete */
	pthread_mutex_lock(&registry_lock);
	for (pgc_client **pp = &registry[b]; *pp; pp = &(*pp)->cancel_next)
	{
		if (*pp == c)
		{
			*pp = c->cancel_next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
}

bool
pgc_cancel_kill(uint32_t pid)
{
	bool found = false;

	pthread_mutex_lock(&registry_lock);
	for (pgc_client *c = registry[pid % CANCEL_BUCKETS]; c; c = c->cancel_next)
	{
		if (c->cancel_pid == pid)
		{
			/* Registered clients are freed only after they leave the registry, under its lock. */
			atomic_store(&c->kill_requested, true);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return found;
}

static void
cancel_conn_free(cancel_conn *cc)
{
	pgc_worker_unwatch(cc->worker, cc->fd);
	pgc_worker_forget(cc->worker, cc);
	close(cc->fd);
	if (cc->client_fd >= 0)
		close(cc->client_fd);
	pgc_list_remove(&cc->node);
	free(cc);
}

/*
 * Open a connection to the server at addr and send it a CancelRequest for
 * (backend_pid, backend_key); client_fd (or -1) is closed once the server
 * has closed ours.
 */
static void
cancel_send(pgc_worker *w, const struct sockaddr_storage *addr, socklen_t addrlen, uint32_t backend_pid,
			uint32_t backend_key, int client_fd)
{
	cancel_conn *cc = calloc(1, sizeof(*cc));

	if (cc == NULL)
	{
		if (client_fd >= 0)
			close(client_fd);
		return;
	}
	cc->kind = PGC_KIND_CANCEL;
	cc->worker = w;
	cc->client_fd = client_fd;
	cc->started = w->now;
	pgc_put_u32(cc->packet, 16);
	pgc_put_u32(cc->packet + 4, PGC_CANCEL_REQUEST_CODE);
	pgc_put_u32(cc->packet + 8, backend_pid);
	pgc_put_u32(cc->packet + 12, backend_key);
	cc->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cc->fd < 0 || (connect(cc->fd, (const struct sockaddr *) addr, addrlen) < 0 && errno != EINPROGRESS))
	{
		pgc_log(PGC_WARNING, "could not forward cancel request: %s", strerror(errno));
		if (cc->fd >= 0)
			close(cc->fd);
		if (client_fd >= 0)
			close(client_fd);
		free(cc);
		return;
	}
	pgc_list_push_tail(&w->cancels, &cc->node);
	pgc_worker_watch(w, cc->fd, cc, EPOLLOUT);
}

void
pgc_cancel_backend(pgc_worker *w, const pgc_server *s)
{
	if (s->addrlen > 0 && s->backend_pid != 0)
		cancel_send(w, &s->addr, s->addrlen, s->backend_pid, s->backend_key, -1);
}

void
pgc_cancel_forward(pgc_worker *w, uint32_t pid, uint32_t key, int client_fd)
{
	struct sockaddr_storage addr;
	socklen_t addrlen = 0;
	uint32_t backend_pid = 0, backend_key = 0;
	bool held = false;

	pthread_mutex_lock(&registry_lock);
	for (pgc_client *c = registry[pid % CANCEL_BUCKETS]; c; c = c->cancel_next)
	{
		if (c->cancel_pid == pid && c->cancel_key == key)
		{
			pgc_pool *p = c->pool;

			pthread_mutex_lock(&p->lock);
			/* A pipelined client's unit is not running yet: its cancel is sent when it is. */
			if (pgc_pipeline_cancel_requested(c))
				held = true;
			else if (c->server && c->server->state == SV_LINKED)
			{
				memcpy(&addr, &c->server->addr, sizeof(addr));
				addrlen = c->server->addrlen;
				backend_pid = c->server->backend_pid;
				backend_key = c->server->backend_key;
			}
			pthread_mutex_unlock(&p->lock);
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	if (addrlen == 0 || held)
	{
		close(client_fd);       /* unknown key, or nothing running: nothing to cancel */
		return;
	}
	cancel_send(w, &addr, addrlen, backend_pid, backend_key, client_fd);
}

void
pgc_cancel_event(void *conn, uint32_t events)
{
	cancel_conn *cc = conn;
	char byte;

	if (!cc->sent && (events & EPOLLOUT))
	{
		/* 16 bytes fit in any socket buffer. */
		if (write(cc->fd, cc->packet, sizeof(cc->packet)) != (ssize_t) sizeof(cc->packet))
		{
			pgc_log(PGC_WARNING, "could not forward cancel request: %s", strerror(errno));
			cancel_conn_free(cc);
			return;
		}
		cc->sent = true;
		pgc_worker_rewatch(cc->worker, cc->fd, cc, EPOLLIN);
		return;
	}
	/* The server closes the connection once it has signalled the backend. */
	if (read(cc->fd, &byte, 1) > 0)
		return;
	cancel_conn_free(cc);
}

void
pgc_cancel_tick(pgc_worker *w, double now)
{
	pgc_link *n, *next;
	double		limit = pgc_engine_config()->cancel_wait_timeout;

	for (n = w->cancels.next; n != &w->cancels; n = next)
	{
		cancel_conn *cc = pgc_container_of(n, cancel_conn, node);

		next = n->next;
		/* cancel_wait_timeout: a server that does not act on it in time is not waited for. */
		if (limit > 0 && now - cc->started > limit)
			cancel_conn_free(cc);
	}
}

void
pgc_cancel_drop_all(pgc_worker *w)
{
	while (!pgc_list_empty(&w->cancels))
		cancel_conn_free(pgc_container_of(w->cancels.next, cancel_conn, node));
}
