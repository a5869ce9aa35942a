/*
 * engine.c - start and stop the workers, open the listeners, swap configs.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "accept.h"
#include "authq.h"
#include "core.h"
#include "engine.h"
#include "log.h"

pgc_engine *pgc_the_engine;
static atomic_int workers_running;

const pgc_config *
pgc_engine_config(void)
{
	return atomic_load(&pgc_the_engine->cfg);
}

static int
add_listen_fd(pgc_worker *w, int fd)
{
	int *fds = realloc(w->listen_fds, sizeof(int) * (size_t) (w->n_listen + 1));

	if (fds == NULL)
		return -1;
	w->listen_fds = fds;
	w->listen_fds[w->n_listen++] = fd;
	return 0;
}

/* One SO_REUSEPORT socket per worker and address, so the kernel spreads connections. */
static int
open_tcp(pgc_engine *e, const char *host, int port, char *err, size_t errlen)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	char portstr[16];
	int rc;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, portstr, &hints, &res);
	if (rc != 0)
	{
		snprintf(err, errlen, "could not resolve listen_addr \"%s\": %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next)
	{
		for (int i = 0; i < e->n_workers; i++)
		{
			int one = 1;
			int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

			if (fd < 0)
				continue;
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
			if (ai->ai_family == AF_INET6)
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0)
			{
				snprintf(err, errlen, "could not listen on %s port %d: %s", host, port, strerror(errno));
				close(fd);
				freeaddrinfo(res);
				return -1;
			}
			add_listen_fd(&e->workers[i], fd);
		}
	}
	freeaddrinfo(res);
	return 0;
}

static int
open_unix(pgc_engine *e, const char *dir, int port, char *err, size_t errlen)
{
	struct sockaddr_un un = {0};
	int fd;

	un.sun_family = AF_UNIX;
	if ((size_t) snprintf(un.sun_path, sizeof(un.sun_path), "%s/.s.PGSQL.%d", dir, port) >= sizeof(un.sun_path))
	{
		snprintf(err, errlen, "unix_socket_dir \"%s\" is too long", dir);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		snprintf(err, errlen, "could not create Unix socket: %s", strerror(errno));
		return -1;
	}
	unlink(un.sun_path);
	if (bind(fd, (struct sockaddr *) &un, sizeof(un)) < 0 || listen(fd, 4096) < 0)
	{
		snprintf(err, errlen, "could not listen on Unix socket \"%s\": %s", un.sun_path, strerror(errno));
		close(fd);
		return -1;
	}
	chmod(un.sun_path, 0777);
	snprintf(e->unix_path, sizeof(e->unix_path), "%s", un.sun_path);
	e->unix_fd = fd;
	for (int i = 0; i < e->n_workers; i++)
		add_listen_fd(&e->workers[i], fd);
	return 0;
}

static int
open_listeners(pgc_engine *e, const pgc_config *cfg, char *err, size_t errlen)
{
	if (cfg->listen_addr && cfg->listen_addr[0])
	{
		char *list = strdup(cfg->listen_addr);
		char *save = NULL;

		for (char *h = strtok_r(list, ", ", &save); h; h = strtok_r(NULL, ", ", &save))
		{
			if (open_tcp(e, h, cfg->listen_port, err, errlen) < 0)
			{
				free(list);
				return -1;
			}
		}
		free(list);
	}
	if (cfg->unix_socket_dir && cfg->unix_socket_dir[0] &&
		open_unix(e, cfg->unix_socket_dir, cfg->listen_port, err, errlen) < 0)
		return -1;
	if (e->workers[0].n_listen == 0)
	{
		snprintf(err, errlen, "nothing to listen on: set listen_addr or unix_socket_dir");
		return -1;
	}
	return 0;
}

static void *
worker_thread(void *arg)
{
	void *r = pgc_worker_main(arg);

	atomic_fetch_sub(&workers_running, 1);
	return r;
}

int
pgc_engine_start(pgc_config *cfg, char *err, size_t errlen)
{
	pgc_engine *e = calloc(1, sizeof(*e));
	int n = cfg->workers > 0 ? cfg->workers : (int) sysconf(_SC_NPROCESSORS_ONLN);

	if (e == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (n < 1)
		n = 1;
	atomic_init(&e->cfg, cfg);
	pthread_mutex_init(&e->cfg_lock, NULL);
	atomic_init(&e->next_pid, 1000 + (unsigned) (getpid() % 1000) * 1000);
	e->unix_fd = -1;
	e->n_workers = n;
	e->workers = calloc((size_t) n, sizeof(pgc_worker));
	pgc_the_engine = e;
	if (e->workers == NULL || pgc_accept_init(e, err, errlen) < 0)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++)
	{
		pgc_worker *w = &e->workers[i];

		w->kind = PGC_KIND_WAKEUP;
		w->listener_kind = PGC_KIND_LISTENER;
		w->id = i;
		w->engine = e;
		w->spare_fd = -1;
		pgc_list_init(&w->clients);
		pgc_list_init(&w->servers);
		pgc_list_init(&w->cancels);
		pthread_mutex_init(&w->inbox_lock, NULL);
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->epfd < 0 || w->wakefd < 0)
		{
			snprintf(err, errlen, "could not create event loop: %s", strerror(errno));
			return -1;
		}
		pgc_worker_watch(w, w->wakefd, w, EPOLLIN);
		if (pgc_accept_worker_init(w, err, errlen) < 0)
			return -1;
	}
	if (open_listeners(e, cfg, err, errlen) < 0)
		return -1;
	for (int i = 0; i < n; i++)
	{
		pgc_worker *w = &e->workers[i];

		for (int j = 0; j < w->n_listen; j++)
			pgc_worker_watch(w, w->listen_fds[j], &w->listener_kind,
							 EPOLLIN | (w->listen_fds[j] == e->unix_fd ? EPOLLEXCLUSIVE : 0));
	}
	pgc_accept_check_fd_limit(cfg, n);
	if (pgc_authq_start(err, errlen) < 0)
		return -1;
	atomic_store(&workers_running, n);
	for (int i = 0; i < n; i++)
	{
		if (pthread_create(&e->workers[i].thread, NULL, worker_thread, &e->workers[i]) != 0)
		{
			snprintf(err, errlen, "could not start worker thread");
			return -1;
		}
	}
	pgc_log(PGC_LOG, "pgcarrier started: %d workers, port %d, pool_mode %s", n, cfg->listen_port,
			pgc_pool_mode_name(cfg->pool_mode));
	return 0;
}

void
pgc_engine_reload(pgc_config *cfg)
{
	pgc_engine *e = pgc_the_engine;
	pgc_config **old = realloc(e->old_cfgs, sizeof(*old) * (size_t) (e->n_old_cfgs + 1));

	if (old == NULL)
		return;
	e->old_cfgs = old;
	pthread_mutex_lock(&e->cfg_lock);
	/* Workers may still be reading the old one: it is freed at exit, not now. */
	e->old_cfgs[e->n_old_cfgs++] = (pgc_config *) atomic_load(&e->cfg);
	e->generation++;
	atomic_store(&e->cfg, cfg);
	pthread_mutex_unlock(&e->cfg_lock);
	pgc_pool_reconfigure(e);
	pgc_log(PGC_LOG, "configuration reloaded from %s", cfg->path ? cfg->path : "?");
	pgc_accept_check_fd_limit(cfg, e->n_workers);
}

void
pgc_engine_shutdown(void)
{
	atomic_store(&pgc_the_engine->shutting_down, true);
	pgc_authq_shutdown();       /* clients waiting for auth_query leave now */
	for (int i = 0; i < pgc_the_engine->n_workers; i++)
	{
		uint64_t one = 1;

		if (write(pgc_the_engine->workers[i].wakefd, &one, sizeof(one)) < 0)
			(void) errno;
	}
}

bool
pgc_engine_running(void)
{
	return atomic_load(&workers_running) > 0;
}

void
pgc_engine_unlink_socket(void)
{
	if (pgc_the_engine && pgc_the_engine->unix_path[0])
		unlink(pgc_the_engine->unix_path);
}

void
pgc_engine_free(void)
{
	pgc_engine *e = pgc_the_engine;

	if (e == NULL)
		return;
	pgc_log(PGC_LOG, "stats: %lu clients pinned to a server connection by the session-state guard",
			(unsigned long) atomic_load(&e->pins_total));
	for (int i = 0; i < e->n_workers; i++)
		pthread_join(e->workers[i].thread, NULL);
	pgc_authq_stop();           /* no client waits for it any more */
	pgc_engine_unlink_socket();
	if (e->unix_fd >= 0)
		close(e->unix_fd);
	pgc_pool_free_all(e);
	for (int i = 0; i < e->n_workers; i++)
	{
		pgc_worker *w = &e->workers[i];

		while (w->free_bufs)
		{
			pgc_iobuf *b = w->free_bufs;

			w->free_bufs = b->next_free;
			free(b);
		}
		close(w->epfd);
		close(w->wakefd);
		pgc_accept_worker_free(w);
		free(w->listen_fds);
		pthread_mutex_destroy(&w->inbox_lock);
	}
	free(e->workers);
	pgc_accept_free(e);
	for (int i = 0; i < e->n_old_cfgs; i++)
		pgc_config_free(e->old_cfgs[i]);
	free(e->old_cfgs);
	pgc_config_free((pgc_config *) atomic_load(&e->cfg));
	pthread_mutex_destroy(&e->cfg_lock);
	free(e);
	pgc_the_engine = NULL;
}
