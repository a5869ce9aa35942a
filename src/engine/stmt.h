/*
 * stmt.h - protocol-level prepared statements in transaction pooling.
 *
 * A client names its statements ("S_1", "__asyncpg_stmt_3__", ...) but runs
 * them on whichever server connection it holds at the moment, and another
 * client may use the same names for other queries. So pgcarrier prepares
 * statements on servers under names of its own, and keeps three things:
 *
 *  - a registry per pool: every distinct (search_path, query text, parameter
 *    types) any client of the pool prepared, with its server-side name
 *    "pgc_<n>" and a ready-made Parse message. Clients of one pool (one
 *    database and role) that prepare the same query share one server-side
 *    statement, so a server prepares it once however many clients use it.
 *    search_path is part of the key because it decides what the query means
 *    when it is first analysed.
 *  - a map per client: the client's statement name -> registry entry.
 *  - a cache per server connection: which registry entries are prepared on
 *    it, bounded (max_prepared_statements), least recently used first out.
 *
 * Threading: registry entries are reference counted; a reference is held by
 * each client map entry and each server cache entry. Taking a reference
 * needs the registry lock or another reference already held; dropping one
 * always goes through pgc_stmt_unref (which takes the lock). Maps and caches
 * belong to one client or one server and are touched only by its owner.
 */
#ifndef PGC_STMT_H
#define PGC_STMT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct pgc_stmt {
	atomic_int refs;
	uint32_t flags;               /* sqlclass flags of the query text */
	bool own;                     /* one client's own (its context names the client), never shared */
	const char *kind;             /* sqlclass description, for pin log lines */
	uint64_t hash;
	struct pgc_stmt *next;        /* registry chain (registry lock) */
	char name[24];                /* server-side name, "pgc_<n>" */
	uint8_t *parse_msg;           /* a complete Parse message under that name */
	size_t parse_len;
	size_t key_len;
	uint8_t key[];                /* search_path \0 query \0 int16 n, n * int32 types */
} pgc_stmt;

typedef struct pgc_stmt_registry {
	pthread_mutex_t lock;
	pgc_stmt **buckets;
	uint32_t nbuckets;
	uint32_t count;
	uint64_t next_id;
} pgc_stmt_registry;

/* A client's statement names. */
typedef struct pgc_stmt_map {
	struct pgc_stmt_name **buckets;
	uint32_t nbuckets;
	uint32_t count;
} pgc_stmt_map;

/* What one server connection has prepared, in least-recently-used order. */
typedef struct pgc_stmt_cache {
	struct pgc_stmt_slot **buckets;
	uint32_t nbuckets;
	uint32_t count;
	struct pgc_stmt_slot *lru_head;   /* most recently used */
	struct pgc_stmt_slot *lru_tail;
} pgc_stmt_cache;

void pgc_stmt_registry_init(pgc_stmt_registry *r);
void pgc_stmt_registry_destroy(pgc_stmt_registry *r);

/* Contexts that start with this are one client's own statements (see guard.c). */
#define PGC_STMT_OWN_PREFIX "client "

/*
 * The entry for a Parse: rest is the Parse body after the statement name
 * (query \0, int16 count, int32 type OIDs), restlen its length. Returns a new
 * reference, or NULL when out of memory or rest is malformed.
 */
pgc_stmt *pgc_stmt_intern(pgc_stmt_registry *r, const char *search_path,
						  const uint8_t *rest, size_t restlen);
/* The query text of an entry. */
static inline const char *pgc_stmt_query(const pgc_stmt *st)
{
	return (const char *) st->key + strlen((const char *) st->key) + 1;
}
void pgc_stmt_ref(pgc_stmt *st);
void pgc_stmt_unref(pgc_stmt_registry *r, pgc_stmt *st);

/* Lookup by client name (NUL-terminated). NULL if unknown. */
pgc_stmt *pgc_stmt_map_get(const pgc_stmt_map *m, const char *name);
/* Add name -> st, taking over the caller's reference. False when out of memory (reference dropped). */
bool pgc_stmt_map_put(pgc_stmt_map *m, pgc_stmt_registry *r, const char *name, pgc_stmt *st);
/* Remove name; returns its entry (the caller now owns that reference) or NULL. */
pgc_stmt *pgc_stmt_map_take(pgc_stmt_map *m, const char *name);
void pgc_stmt_map_clear(pgc_stmt_map *m, pgc_stmt_registry *r);

/* True if st is prepared on the server; marks it most recently used. */
bool pgc_stmt_cache_touch(pgc_stmt_cache *c, const pgc_stmt *st);
/* Record st as prepared (takes a reference of its own). False when out of memory. */
bool pgc_stmt_cache_add(pgc_stmt_cache *c, pgc_stmt *st);
/* Forget st (it failed to prepare, or was closed). */
void pgc_stmt_cache_remove(pgc_stmt_cache *c, pgc_stmt_registry *r, const pgc_stmt *st);
/* Take the least recently used entry out; the caller owns the returned reference. NULL if empty. */
pgc_stmt *pgc_stmt_cache_pop_lru(pgc_stmt_cache *c);
void pgc_stmt_cache_clear(pgc_stmt_cache *c, pgc_stmt_registry *r);

#endif
