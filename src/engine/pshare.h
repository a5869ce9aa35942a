/*
 * pshare.h - parameter lists shared by the clients of one worker.
 *
 * Thousands of clients of a pool usually hold the very same list of
 * parameters (what the pool's welcome told them, their startup
 * parameters): a copy each is most of what an idle client costs. A shared
 * list is an immutable, reference-counted copy of a pgc_params, interned
 * per worker: equal lists are one allocation.
 *
 * Contract:
 *  - One worker's, and only its thread uses it (a client stays on its
 *    worker for life); no lock.
 *  - Never modified once made: to change a client's list, build a
 *    pgc_params (pgc_shared_params_view + pgc_params_copy), change that, and
 *    intern it in place of the old one (pgc_shared_params_replace).
 *  - NULL is the empty list; every function takes it. Out of memory, a
 *    list is NULL too: callers treat it as "nothing known".
 *  - Not for the forwarding path: interning hashes and compares the whole
 *    list, which is for logins and parameter changes.
 */
#ifndef PGC_PSHARE_H
#define PGC_PSHARE_H

#include "core.h"

typedef struct pgc_shared_params pgc_shared_params;

/* *slot := the shared list equal to p (NULL when p is empty), the old one released. */
void pgc_shared_params_replace(pgc_worker *w, pgc_shared_params **slot, const pgc_params *p);
/* Drop *slot's reference; *slot := NULL. */
void pgc_shared_params_release(pgc_worker *w, pgc_shared_params **slot);
/* A read-only pgc_params over s, for pgc_params_get/next/copy (valid while s is held). */
pgc_params pgc_shared_params_view(const pgc_shared_params *s);
/* The value of key in s, NULL if none. */
const char *pgc_shared_params_get(const pgc_shared_params *s, const char *key);
/*
 * A client's own settings (pgc_client.params) as such a list: read through
 * a view or pgc_client_param; each change makes the list anew (copy, change,
 * intern), which is for SET and logins, not for every message.
 */
static inline pgc_params
pgc_client_params(const pgc_client *c)
{
	return pgc_shared_params_view(c->params);
}

static inline const char *
pgc_client_param(const pgc_client *c, const char *key)
{
	return pgc_shared_params_get(c->params, key);
}

/* c's settings with key = value; value NULL: without key. */
void pgc_client_param_set(pgc_client *c, const char *key, const char *value);
/* c's settings := p. */
void pgc_client_params_replace(pgc_client *c, const pgc_params *p);

/* At the worker's end: free its table (every list must have been released). */
void pgc_shared_params_worker_free(pgc_worker *w);

#endif
