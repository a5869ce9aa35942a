/*
 * compat.h - what PgBouncer's settings mean for clients and servers, kept
 * out of the modules that move bytes: each function is one small decision
 * that client.c, pool.c, authq.c or the tick asks for
 * (docs/migrating-from-pgbouncer.md has the keys).
 *
 * Contract: every function reads the config it is given and the client or
 * server it is given, and only what the calling worker owns.
 */
#ifndef PGC_COMPAT_H
#define PGC_COMPAT_H

#include <stdbool.h>

#include "core.h"

/* name is in list (comma- or space-separated, case-insensitive), as in ignore_startup_parameters. */
bool pgc_compat_listed(const char *list, const char *name);

/* A startup parameter the client sent that ignore_startup_parameters says to drop. */
bool pgc_compat_ignored_param(const pgc_config *cfg, const char *name);

/*
 * After client c's startup parameters were read into params: drop those
 * ignore_startup_parameters names (they may have come inside options),
 * and with application_name_add_host append " - ADDR:PORT" to the
 * client's application_name ("app" when it gave none), as PgBouncer
 * does, before they become the client's startup values.
 */
void pgc_compat_startup_params(pgc_client *c, pgc_params *params, const pgc_config *cfg);

/*
 * The [databases] entry auth_query runs on for a client of client_db: its
 * line's auth_dbname, else the global auth_dbname; NULL: the client's own
 * database. *dbname is the server database it names.
 */
const pgc_database *pgc_compat_auth_db(const pgc_config *cfg, const char *client_db, const char **dbname);

/*
 * An idle server taken for a client must first run server_check_query:
 * it has been idle for server_check_delay or longer. Pool lock held.
 */
bool pgc_compat_needs_check(const pgc_config *cfg, const pgc_server *s, double now);

/*
 * Its pool's configuration or a RECONNECT has made s stale (a new login
 * would differ): server_fast_close ends a session-mode client between its
 * transactions rather than at its end. Takes s's pool lock.
 */
bool pgc_compat_server_stale(const pgc_server *s);

#endif
