/*
 * authwork.h - client authentication work too slow for an event loop, done
 * on one helper thread, and a cache of SCRAM secrets built from clear-text
 * passwords.
 *
 * Why: PBKDF2 with PostgreSQL's 4096 iterations costs milliseconds. Done on
 * a worker, every login attempt that needs it stalls every other client of
 * that worker; a flood of wrong passwords made them wait hundreds of ms.
 *
 * Contract:
 *  - SCRAM against a clear-text secret (auth file or auth_query): the SCRAM
 *    secret (random salt, 4096 iterations) is derived once per user and
 *    password and cached, so that every later exchange (right password or
 *    wrong) presents the same salt, as PostgreSQL does with its stored
 *    secret, and costs only a few HMACs. A cache entry is keyed by the
 *    configuration in force (a reload, and so a changed auth file, makes
 *    every entry stale) and by an HMAC of user and password under a key
 *    made at random at start (a changed password, e.g. from auth_query,
 *    misses). Nothing of it is ever logged; entries are wiped when dropped.
 *  - "password" authentication against a stored SCRAM secret: the client's
 *    clear-text password is checked (PBKDF2 at the secret's iteration count)
 *    on the helper thread. Its answer is not cached: the password is the
 *    client's, and may be different each time.
 *  - A request that cannot be answered at once returns PENDING with a
 *    request; the client waits in CL_AUTH, and the thread posts it to its
 *    worker's inbox (under its pool lock, pgc_worker_post) when the answer
 *    is there; the worker's pgc_client_handoff() then resumes cauth, which
 *    calls pgc_authwork_take(). Requests are answered in the order made.
 *  - A client that stops waiting calls pgc_authwork_cancel() before
 *    anything that could see it in its worker's inbox: from then on the
 *    thread never touches it (a derivation in progress still fills the
 *    cache for the next client).
 *  - Lock order: authwork -> pool -> worker inbox.
 *  - The thread is started and stopped with the auth_query thread
 *    (pgc_authq_start / pgc_authq_stop, which the engine calls).
 */
#ifndef PGC_AUTHWORK_H
#define PGC_AUTHWORK_H

#include "core.h"

typedef struct pgc_authwork pgc_authwork;

typedef enum pgc_authwork_status {
	PGC_AUTHWORK_PENDING = 0,     /* on the thread; the client is posted when it is answered */
	PGC_AUTHWORK_DONE,            /* the answer is there */
	PGC_AUTHWORK_FAILED           /* could not be asked (out of memory, no thread) */
} pgc_authwork_status;

/*
 * The SCRAM secret for c->user with the clear-text password clear. DONE:
 * out (PGC_SCRAM_SECRET_BUF bytes) has it, from the cache. PENDING: *req is
 * set; c is posted when it is derived. FAILED: neither.
 */
int pgc_authwork_scram_secret(pgc_client *c, const char *clear, char *out, pgc_authwork **req);

/*
 * Check password (sent in clear by c) against the stored SCRAM secret
 * secret, on the thread: PENDING with *req set, or FAILED.
 */
int pgc_authwork_verify_plain(pgc_client *c, const char *secret, const char *password, pgc_authwork **req);

/*
 * The answer to a request (on the client's worker, after the post).
 * PENDING: none yet, req stays valid. DONE: req is freed, *result is 0 (a
 * secret was derived into out / the password matches) or -1 (could not be
 * derived / no match).
 */
int pgc_authwork_take(pgc_authwork *req, int *result, char *out);

/* The client stops waiting (any state of the request); req is freed or left to the thread. */
void pgc_authwork_cancel(pgc_authwork *req);

/* Start the thread. 0, or -1 with a message in err. */
int pgc_authwork_start(char *err, size_t errlen);

/*
 * Stop and join the thread (no client waits any more), empty the cache, and
 * log how much work it did ("stats: ..."), for operators and tests.
 */
void pgc_authwork_stop(void);

#endif
