/*
 * control.c - the DBA's commands on a running engine; see control.h.
 *
 * The state lives where the forwarding path already looks: per database in
 * the engine's database counter (paused, disabled, a kill generation), per
 * pool (a reconnect generation and how many servers are older than it).
 * The pools act on it (pool.c: no server handed out while paused, idle and
 * released servers of an old generation closed); workers act on it at
 * their tick (client.c: clients of a killed database end). Nothing here
 * waits for a worker.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "control.h"
#include "core.h"
#include "engine.h"
#include "log.h"

/* Whether db names a database of the current config; err says why not. */
static bool
known_db(pgc_engine *e, const char *db, char *err, size_t errlen)
{
	if (db == NULL || pgc_config_find_db(pgc_engine_config(), db) != NULL)
		return true;
	snprintf(err, errlen, "no such database: \"%s\"", db);
	(void) e;
	return false;
}

/* Apply fn to the counter of db (NULL: every database). Engine config lock held. */
static void
each_db(pgc_engine *e, const char *db, void (*fn)(struct pgc_counter *, void *), void *arg)
{
	for (struct pgc_counter *d = e->db_counters; d; d = d->next)
		if (db == NULL || strcmp(d->name, db) == 0)
			fn(d, arg);
}

/* The counter of db, made if no client has used it yet. Engine config lock held. */
static struct pgc_counter *
db_state(pgc_engine *e, const char *db)
{
	for (struct pgc_counter *d = e->db_counters; d; d = d->next)
		if (strcmp(d->name, db) == 0)
			return d;
	return pgc_pool_db_counter(e, db);
}

static void
set_paused(struct pgc_counter *d, void *arg)
{
	atomic_store(&d->paused, *(bool *) arg);
}

static void
set_disabled(struct pgc_counter *d, void *arg)
{
	atomic_store(&d->disabled, *(bool *) arg);
}

static void
bump_kill(struct pgc_counter *d, void *arg)
{
	(void) arg;
	atomic_store(&d->paused, true);
	atomic_fetch_add(&d->kill_gen, 1);
}

/* Set a flag on db, or on every database and on the engine (for those to come). */
static int
set_flag(pgc_engine *e, const char *db, void (*fn)(struct pgc_counter *, void *), bool on,
		 atomic_bool *all, char *err, size_t errlen)
{
	if (!known_db(e, db, err, errlen))
		return -1;
	pthread_mutex_lock(&e->cfg_lock);
	if (db == NULL)
	{
		if (all)
			atomic_store(all, on);
		each_db(e, NULL, fn, &on);
	}
	else
	{
		struct pgc_counter *d = db_state(e, db);

		if (d)
			fn(d, &on);
	}
	pthread_mutex_unlock(&e->cfg_lock);
	return 0;
}

int
pgc_control_pause(pgc_engine *e, const char *db, char *err, size_t errlen)
{
	int rc = set_flag(e, db, set_paused, true, &e->paused_all, err, errlen);

	if (rc == 0)
		pgc_log(PGC_LOG, "PAUSE %s: no new server assignments; closing servers once their transactions end",
				db ? db : "(all databases)");
	return rc;
}

int
pgc_control_resume(pgc_engine *e, const char *db, char *err, size_t errlen)
{
	int rc;

	/*
	 * PAUSE without a database holds every database, those to come too: one
	 * of them cannot be let go alone (PgBouncer refuses it as well). Saying
	 * RESUME and doing nothing would leave its clients waiting.
	 */
	if (db && atomic_load(&e->paused_all))
	{
		snprintf(err, errlen, "database \"%s\" cannot be resumed alone: every database is paused "
				 "(PAUSE without a database); RESUME without a database resumes them all", db);
		return PGC_CONTROL_WRONG_STATE;
	}
	rc = set_flag(e, db, set_paused, false, &e->paused_all, err, errlen);

	if (rc == 0)
	{
		pgc_log(PGC_LOG, "RESUME %s", db ? db : "(all databases)");
		pgc_engine_wake_all(e);     /* waiting clients are served at the next maintenance */
	}
	return rc;
}

int
pgc_control_disable(pgc_engine *e, const char *db, char *err, size_t errlen)
{
	if (db == NULL)
	{
		snprintf(err, errlen, "DISABLE needs a database name");
		return -1;
	}
	return set_flag(e, db, set_disabled, true, NULL, err, errlen);
}

int
pgc_control_enable(pgc_engine *e, const char *db, char *err, size_t errlen)
{
	if (db == NULL)
	{
		snprintf(err, errlen, "ENABLE needs a database name");
		return -1;
	}
	return set_flag(e, db, set_disabled, false, NULL, err, errlen);
}

/* Every pool of db (NULL: all), with its lock held around fn. */
static void
each_pool(pgc_engine *e, const char *db, void (*fn)(pgc_pool *, void *), void *arg)
{
	pthread_mutex_lock(&e->cfg_lock);
	for (pgc_pool *p = e->pools; p; p = p->next)
	{
		if (db && strcmp(p->dbname, db) != 0)
			continue;
		pthread_mutex_lock(&p->lock);
		fn(p, arg);
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_unlock(&e->cfg_lock);
}

static void
pool_reconnect(pgc_pool *p, void *arg)
{
	(void) arg;
	atomic_fetch_add(&p->reconnect_gen, 1);
}

int
pgc_control_reconnect(pgc_engine *e, const char *db, char *err, size_t errlen)
{
	if (!known_db(e, db, err, errlen))
		return -1;
	each_pool(e, db, pool_reconnect, NULL);
	pgc_log(PGC_LOG, "RECONNECT %s: server connections are replaced as they become idle",
			db ? db : "(all databases)");
	return 0;
}

void
pgc_control_reconnect_all(pgc_engine *e, const char *why)
{
	each_pool(e, NULL, pool_reconnect, NULL);
	pgc_log(PGC_LOG, "%s: server connections are replaced as they become idle", why);
}

static void
pool_count_servers(pgc_pool *p, void *arg)
{
	*(int *) arg += p->total;
}

bool
pgc_control_pause_done(pgc_engine *e, const char *db)
{
	int n = 0;

	each_pool(e, db, pool_count_servers, &n);
	return n == 0;
}

int
pgc_control_kill(pgc_engine *e, const char *db, char *err, size_t errlen)
{
	int rc = set_flag(e, db, bump_kill, true, &e->paused_all, err, errlen);

	if (rc == 0)
	{
		pgc_log(PGC_LOG, "KILL %s: all its client and server connections are dropped; paused until RESUME",
				db ? db : "(all databases)");
		pgc_engine_wake_all(e);
	}
	return rc;
}

int
pgc_control_kill_client(pgc_engine *e, uint64_t id, char *err, size_t errlen)
{
	if (id > UINT32_MAX || !pgc_cancel_kill((uint32_t) id))
	{
		snprintf(err, errlen, "no such client: %llu", (unsigned long long) id);
		return -1;
	}
	pgc_log(PGC_LOG, "KILL_CLIENT %llu", (unsigned long long) id);
	(void) e;
	return 0;
}

void
pgc_control_shutdown(pgc_engine *e, bool wait_for_clients)
{
	if (wait_for_clients)
	{
		pgc_log(PGC_LOG, "SHUTDOWN WAIT_FOR_CLIENTS: no new clients; exiting once every client has left");
		atomic_store(&e->draining, true);
		pgc_engine_wake_all(e);
	}
	else
	{
		pgc_log(PGC_LOG, "SHUTDOWN: shutting down once running transactions are done");
		pgc_engine_shutdown();
	}
}

bool
pgc_control_state(pgc_engine *e, const char *db, pgc_db_control *out)
{
	struct pgc_counter *d;

	memset(out, 0, sizeof(*out));
	if (pgc_config_find_db(pgc_engine_config(), db) == NULL)
		return false;
	pthread_mutex_lock(&e->cfg_lock);
	for (d = e->db_counters; d; d = d->next)
		if (strcmp(d->name, db) == 0)
			break;
	out->paused = atomic_load(&e->paused_all) || (d && atomic_load(&d->paused));
	out->disabled = d && atomic_load(&d->disabled);
	pthread_mutex_unlock(&e->cfg_lock);
	return true;
}
