/*
 * compat.c - see compat.h.
 */
#include "compat.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Room for the name and the place; PostgreSQL cuts application_name at 63 bytes anyway. */
#define NAMEDATALEN_MAX 2048

bool
pgc_compat_listed(const char *list, const char *name)
{
	size_t		n = strlen(name);

	if (list == NULL)
		return false;
	for (const char *p = list; *p;)
	{
		size_t		len;

		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == n && len > 0 && strncasecmp(p, name, n) == 0)
			return true;
		p += len;
	}
	return false;
}

bool
pgc_compat_ignored_param(const pgc_config *cfg, const char *name)
{
	return pgc_compat_listed(cfg->ignore_startup_parameters, name);
}

/* "ADDR:PORT" of the client as PgBouncer shows it: [v6]:port, unix(pid@host):port. */
static void
client_place(const pgc_client *c, char *out, size_t outlen)
{
	char		host[NI_MAXHOST], port[NI_MAXSERV];

	if (c->is_unix)
	{
		struct ucred cred;
		socklen_t	cl = sizeof(cred);
		char		me[256];

		if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
			cred.pid = 0;
		if (gethostname(me, sizeof(me)) < 0)
			snprintf(me, sizeof(me), "localhost");
		me[sizeof(me) - 1] = '\0';
		snprintf(out, outlen, "unix(%d@%s):%d", (int) cred.pid, me, pgc_engine_config()->listen_port);
		return;
	}
	if (getnameinfo(&c->peer.sa, c->peer.sa.sa_family == AF_INET6 ? sizeof(c->peer.in6) : sizeof(c->peer.in4),
					host, sizeof(host), port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
	{
		snprintf(out, outlen, "%s", pgc_client_addr(c));
		return;
	}
	snprintf(out, outlen, c->peer.sa.sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

void
pgc_compat_startup_params(pgc_client *c, pgc_params *params, const pgc_config *cfg)
{
	if (cfg->ignore_startup_parameters)
	{
		pgc_params keep = {0};
		size_t		pos = 0;
		const char *k, *v;

		while (pgc_params_next(params, &pos, &k, &v))
			if (!pgc_compat_ignored_param(cfg, k))
				pgc_params_set(&keep, k, v);
		pgc_params_free(params);
		*params = keep;
	}
	if (cfg->application_name_add_host)
	{
		const char *app = pgc_params_get(params, "application_name");
		char		place[NI_MAXHOST + 300], name[NAMEDATALEN_MAX];

		client_place(c, place, sizeof(place));
		snprintf(name, sizeof(name), "%.500s - %s", app && app[0] ? app : "app", place);
		pgc_params_set(params, "application_name", name);
	}
}

const pgc_database *
pgc_compat_auth_db(const pgc_config *cfg, const char *client_db, const char **dbname)
{
	const pgc_database *mine = pgc_config_find_db(cfg, client_db);
	const char *name = mine && mine->auth_dbname ? mine->auth_dbname : cfg->auth_dbname;
	const pgc_database *db;

	if (name == NULL || (db = pgc_config_find_db(cfg, name)) == NULL)
		return NULL;
	/* The "*" entry stands for any name: the server database is the name asked for. */
	*dbname = db->dbname ? db->dbname : name;
	return db;
}

bool
pgc_compat_needs_check(const pgc_config *cfg, const pgc_server *s, double now)
{
	return cfg->server_check_query != NULL && now - s->state_since >= cfg->server_check_delay;
}

bool
pgc_compat_server_stale(const pgc_server *s)
{
	pgc_pool   *p = s->pool;
	bool		stale;

	/* A reload changes the pool's generation under its lock, from the main thread. */
	pthread_mutex_lock(&p->lock);
	stale = s->config_generation != p->config_generation;
	pthread_mutex_unlock(&p->lock);
	return stale || s->reconnect_gen != atomic_load(&p->reconnect_gen);
}
