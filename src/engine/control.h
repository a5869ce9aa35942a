/*
 * control.h - what a DBA can ask of a running engine: the admin console's
 * commands (PAUSE, RESUME, DISABLE, ENABLE, RECONNECT, KILL, KILL_CLIENT,
 * WAIT_CLOSE, SHUTDOWN), and later the extension's SQL functions.
 *
 * Contract:
 *  - Every function may be called from any thread (a worker running the
 *    console, the metrics thread, the daemon's main thread); none blocks or
 *    waits for another worker. What takes time (a PAUSE waits for running
 *    transactions to end) is started here and polled with the *_done()
 *    functions, which the caller asks again on its own schedule (the
 *    console asks on each tick of its worker).
 *  - db is a client-visible database name, or NULL for every database.
 *    Functions that take one return -1 with a message in err (e.g.
 *    `no such database: "x"`) when it names no database of the config,
 *    PGC_CONTROL_WRONG_STATE (with a message) when the command cannot
 *    apply in the present state, else 0.
 *  - The state is per database and survives a reload; a database removed
 *    from the config loses it.
 */
#ifndef PGC_CONTROL_H
#define PGC_CONTROL_H

#define PGC_CONTROL_WRONG_STATE (-2)

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgc_engine;

/*
 * PAUSE: clients get no server connection from now on (their requests wait,
 * up to query_wait_timeout); transactions running now finish; then every
 * server connection of the database is closed, so that PostgreSQL can be
 * restarted. Idle clients keep their connections, prepared statements and
 * settings.
 */
int pgc_control_pause(struct pgc_engine *e, const char *db, char *err, size_t errlen);
/* PAUSE is complete: no server connection of those databases is left. */
bool pgc_control_pause_done(struct pgc_engine *e, const char *db);
/*
 * RESUME: waiting and new requests are served again (after PAUSE or KILL).
 * RESUME db while every database is paused is PGC_CONTROL_WRONG_STATE.
 */
int pgc_control_resume(struct pgc_engine *e, const char *db, char *err, size_t errlen);

/* DISABLE: new client connections to db are refused (FATAL); connected ones go on. ENABLE undoes it. */
int pgc_control_disable(struct pgc_engine *e, const char *db, char *err, size_t errlen);
int pgc_control_enable(struct pgc_engine *e, const char *db, char *err, size_t errlen);

/*
 * RECONNECT: every server connection of db is closed as soon as it is idle
 * (none in a transaction is touched), and new ones replace them as needed;
 * no client notices. WAIT_CLOSE (console.c) is complete when no server of
 * db is to be closed when released: none of those open at the last
 * RECONNECT, or made by a database line a reload changed, remains.
 */
int pgc_control_reconnect(struct pgc_engine *e, const char *db, char *err, size_t errlen);

/*
 * RECONNECT of every database, for a reason pgcarrier learnt itself (why,
 * logged): the role or database defaults changed (the built-in pooler's
 * supervisor or backend said so; src/extension/defaults.h), and backends
 * logged in before have the old ones. Any thread.
 */
void pgc_control_reconnect_all(struct pgc_engine *e, const char *why);

/*
 * KILL: every client and server connection of db is dropped at once
 * (clients get FATAL 57P01 "terminating connection due to administrator
 * command"), and the database is paused until RESUME.
 */
int pgc_control_kill(struct pgc_engine *e, const char *db, char *err, size_t errlen);
/* KILL_CLIENT: drop one client by its id (pgc_client.serial, SHOW CLIENTS' id). -1 if there is none. */
int pgc_control_kill_client(struct pgc_engine *e, uint64_t id, char *err, size_t errlen);

/*
 * SHUTDOWN: as SIGINT (stop accepting, let transactions end, then exit);
 * with wait_for_clients, as PgBouncer's SHUTDOWN WAIT_FOR_CLIENTS: stop
 * accepting and exit once every client has left by itself.
 */
void pgc_control_shutdown(struct pgc_engine *e, bool wait_for_clients);

/* The per-database state, for SHOW DATABASES and SHOW STATE. */
typedef struct pgc_db_control {
	bool paused;                  /* PAUSE or KILL until RESUME */
	bool disabled;                /* DISABLE until ENABLE */
} pgc_db_control;

/* The state of db (not NULL); false if it names no database. */
bool pgc_control_state(struct pgc_engine *e, const char *db, pgc_db_control *out);

#endif
