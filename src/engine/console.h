/*
 * console.h - the admin console: the virtual database "pgcarrier", which
 * also answers to "pgbouncer", so that tools written for PgBouncer work.
 *
 * Who: a client logs in to it as to any database (auth_type, the auth file,
 * the HBA file with the database named "pgcarrier" or "pgbouncer"; not
 * auth_query, which needs a server), over TCP or the Unix socket, with or
 * without TLS. Then users in admin_users may run every command, users in
 * stats_users only SHOW; anyone else gets FATAL 42501 and nothing else, and
 * a stats user's other command gets ERROR 42501.
 *
 * What: the simple query protocol, one or more commands per Query (split at
 * semicolons), each with its own result; an error ends the Query, as in
 * PostgreSQL. SHOW (show.h), PAUSE, RESUME, DISABLE, ENABLE, RECONNECT,
 * KILL, KILL_CLIENT, WAIT_CLOSE, RELOAD, SET, SHUTDOWN (control.h,
 * reload.h). The extended query protocol, FunctionCall and unknown
 * commands get an ERROR with a SQLSTATE and touch nothing; CopyData and
 * the like outside COPY are ignored, as by PostgreSQL; a message PostgreSQL
 * would refuse gets its FATAL.
 *
 * How it waits: SHOWs that list clients or servers wait for a census, on
 * the console client's own worker; PAUSE, WAIT_CLOSE, RELOAD and SET poll
 * their *_done on each tick of that worker. The console client stays
 * CL_IDLE meanwhile and reads nothing more of its client; no worker is
 * blocked.
 *
 * Console clients belong to a pool of their own that never has a server,
 * so that the code every client goes through (cancel, KILL_CLIENT, posting
 * to the inbox) finds a pool lock and a database counter.
 */
#ifndef PGC_CONSOLE_H
#define PGC_CONSOLE_H

#include <stdbool.h>

#include "core.h"

/* dbname is the console's ("pgcarrier" or "pgbouncer"). */
bool pgc_console_db(const char *dbname);
/* c asked for the console: its session; returns the console's pool, NULL when out of memory. */
pgc_pool *pgc_console_attach(pgc_client *c);
/*
 * admin_peer_same_uid: c asked for the console on the Unix socket, and the
 * peer's SO_PEERCRED uid is the daemon's own: it is an admin, authenticated
 * by the kernel (no password, the HBA file not consulted). False otherwise.
 */
bool pgc_console_trusted_peer(pgc_client *c);
/* c authenticated: welcome it (admin_users, stats_users), or refuse it with FATAL 42501. */
void pgc_console_welcome(pgc_client *c);
/* Bytes arrived, or room to write: read and answer its messages (CL_IDLE). */
void pgc_console_input(pgc_client *c);
/* c's worker's tick: what waits (PAUSE, WAIT_CLOSE, RELOAD, SET). True when c was closed. */
bool pgc_console_tick(pgc_client *c, double now);
/* c is a console client waiting for its own command to be done (not idle: client_idle_timeout spares it). */
bool pgc_console_waiting(const pgc_client *c);
void pgc_console_free(pgc_client *c);

#endif
