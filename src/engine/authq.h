/*
 * authq.h - auth_query: secrets of users the auth file does not know, asked
 * from the server itself (as PgBouncer's auth_user / auth_query), with a
 * cache.
 *
 * Contract:
 *  - One background thread runs every query, so that workers never block:
 *    pgc_authq_lookup() answers at once from the cache, or queues a request
 *    and the client waits (CL_AUTH). When the answer is there, the thread
 *    posts the client to its worker's inbox (pool lock, pgc_worker_post);
 *    the worker's pgc_client_handoff() then goes on with cauth, which takes
 *    the answer with pgc_authq_take().
 *  - The query runs as cfg->auth_user (its secret from the auth file: clear
 *    text, or the server trusts it), with $1 = the client's user name, on
 *    the server of the client's database entry (pool host, port and
 *    server_dbname), through libpq. One connection per (host, port,
 *    dbname) is kept open and reused (closed after server_idle_timeout), and
 *    a broken one is reconnected once. Requests for the same (host, port,
 *    dbname, user) that wait at the same time share one query.
 *  - Answers (a secret, or "no such user": no row or a NULL secret) are
 *    cached for auth_query_cache_lifetime seconds (0: no cache); failures
 *    are not. A change of auth_user or auth_query empties the cache.
 *  - A client that stops waiting (closed for any reason) calls
 *    pgc_authq_cancel() before anything else that could see it in its
 *    worker's inbox: from then on the thread never touches it.
 *  - Lock order: authq -> pool -> worker inbox.
 *  - Nothing secret is ever logged: failures are logged with libpq's or the
 *    server's message, and the client only learns that auth_query failed.
 */
#ifndef PGC_AUTHQ_H
#define PGC_AUTHQ_H

#include "core.h"

typedef struct pgc_authq_wait pgc_authq_wait;

typedef enum pgc_authq_status {
	PGC_AUTHQ_PENDING = 0,        /* the query runs; the client is posted when it is answered */
	PGC_AUTHQ_FOUND,              /* answered: *secret, NULL when there is no such user */
	PGC_AUTHQ_CONN_FAILED,        /* no connection: server down, auth_user could not log in (logged) */
	PGC_AUTHQ_QUERY_FAILED,       /* the query failed or answered nonsense (logged) */
	PGC_AUTHQ_STOPPING,           /* pgcarrier is shutting down */
	PGC_AUTHQ_NOMEM
} pgc_authq_status;

/*
 * Start the thread (at engine start), and authwork.h's helper thread with
 * it: the engine starts and stops client authentication's helpers with one
 * call each. 0, or -1 with a message in err.
 */
int pgc_authq_start(char *err, size_t errlen);
/*
 * Graceful shutdown began: requests in flight are answered STOPPING at once
 * (their queries abandoned) and new ones are refused.
 */
void pgc_authq_shutdown(void);
/*
 * Stop and join the thread, close its connections, empty the cache (after
 * the workers are gone); authwork.h's helper thread too.
 */
void pgc_authq_stop(void);

/*
 * The secret of c->user for c's pool's server (runs on c's worker).
 * FOUND: *secret is a malloc'd copy, or NULL for no such user. PENDING:
 * *wait is set; c is posted to its worker when the answer is there. Any
 * other status: the request could not even be queued.
 */
int pgc_authq_lookup(pgc_client *c, char **secret, pgc_authq_wait **wait);

/*
 * The answer to a pending lookup (on c's worker, after the post). PENDING
 * if there is none yet (wait stays valid); otherwise wait is freed and,
 * with FOUND, *secret is the malloc'd secret or NULL.
 */
int pgc_authq_take(pgc_authq_wait *wait, char **secret);

/* The client stops waiting (any state of the request): wait is freed; the thread forgets the client. */
void pgc_authq_cancel(pgc_authq_wait *wait);

#endif
