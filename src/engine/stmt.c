/*
 * stmt.c - the prepared-statement registry, client maps and server caches
 * described in stmt.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "sqlclass.h"
#include "stmt.h"

struct pgc_stmt_name {
	struct pgc_stmt_name *next;
	pgc_stmt *st;
	char name[];
};

struct pgc_stmt_slot {
	struct pgc_stmt_slot *next;       /* bucket chain */
	struct pgc_stmt_slot *newer, *older;
	pgc_stmt *st;
};

static uint64_t
hash_bytes(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
	{
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

#define HASH_SEED 14695981039346656037ull

static uint64_t
hash_ptr(const void *p)
{
	uint64_t x = (uint64_t) (uintptr_t) p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

/* ------------------------------------------------------------- registry -- */

void
pgc_stmt_registry_init(pgc_stmt_registry *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->next_id = 1;
}

static void
stmt_free(pgc_stmt *st)
{
	free(st->parse_msg);
	free(st);
}

void
pgc_stmt_registry_destroy(pgc_stmt_registry *r)
{
	for (uint32_t i = 0; i < r->nbuckets; i++)
	{
		pgc_stmt *st = r->buckets[i];

		while (st)
		{
			pgc_stmt *next = st->next;

			stmt_free(st);
			st = next;
		}
	}
	free(r->buckets);
	pthread_mutex_destroy(&r->lock);
	memset(r, 0, sizeof(*r));
}

static bool
registry_grow(pgc_stmt_registry *r)
{
	uint32_t n = r->nbuckets ? r->nbuckets * 2 : 64;
	pgc_stmt **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return false;
	for (uint32_t i = 0; i < r->nbuckets; i++)
	{
		pgc_stmt *st = r->buckets[i];

		while (st)
		{
			pgc_stmt *next = st->next;

			st->next = b[st->hash & (n - 1)];
			b[st->hash & (n - 1)] = st;
			st = next;
		}
	}
	free(r->buckets);
	r->buckets = b;
	r->nbuckets = n;
	return true;
}

/* Length of a well-formed Parse tail (query \0 int16 n, n int32), or 0. */
static size_t
parse_rest_length(const uint8_t *rest, size_t restlen)
{
	size_t ql = strnlen((const char *) rest, restlen);
	uint16_t n;

	if (ql == restlen || restlen - ql - 1 < 2)
		return 0;
	n = pgc_get_u16(rest + ql + 1);
	if (restlen != ql + 1 + 2 + (size_t) n * 4)
		return 0;
	return restlen;
}

static pgc_stmt *
stmt_new(const char *search_path, const uint8_t *rest, size_t restlen, uint64_t hash, uint64_t id)
{
	size_t spl = strlen(search_path) + 1;
	pgc_stmt *st = calloc(1, sizeof(*st) + spl + restlen);
	size_t namelen;

	if (st == NULL)
		return NULL;
	atomic_init(&st->refs, 1);
	st->hash = hash;
	st->key_len = spl + restlen;
	memcpy(st->key, search_path, spl);
	memcpy(st->key + spl, rest, restlen);
	snprintf(st->name, sizeof(st->name), "pgc_%llu", (unsigned long long) id);
	namelen = strlen(st->name) + 1;
	st->parse_len = 5 + namelen + restlen;
	st->parse_msg = malloc(st->parse_len);
	if (st->parse_msg == NULL)
	{
		free(st);
		return NULL;
	}
	st->parse_msg[0] = 'P';
	pgc_put_u32(st->parse_msg + 1, (uint32_t) (st->parse_len - 1));
	memcpy(st->parse_msg + 5, st->name, namelen);
	memcpy(st->parse_msg + 5 + namelen, rest, restlen);
	st->flags = pgc_sql_classify((const char *) rest, strlen((const char *) rest), &st->kind);
	st->own = strncmp(search_path, PGC_STMT_OWN_PREFIX, strlen(PGC_STMT_OWN_PREFIX)) == 0;
	return st;
}

pgc_stmt *
pgc_stmt_intern(pgc_stmt_registry *r, const char *search_path, const uint8_t *rest, size_t restlen)
{
	uint64_t h;
	size_t spl = strlen(search_path) + 1;
	pgc_stmt *st;

	if (parse_rest_length(rest, restlen) == 0)
		return NULL;
	h = hash_bytes(rest, restlen, hash_bytes(search_path, spl, HASH_SEED));
	pthread_mutex_lock(&r->lock);
	if (r->nbuckets)
	{
		for (st = r->buckets[h & (r->nbuckets - 1)]; st; st = st->next)
		{
			if (st->hash == h && st->key_len == spl + restlen &&
				memcmp(st->key, search_path, spl) == 0 && memcmp(st->key + spl, rest, restlen) == 0)
			{
				atomic_fetch_add(&st->refs, 1);
				pthread_mutex_unlock(&r->lock);
				return st;
			}
		}
	}
	if (r->count >= r->nbuckets && !registry_grow(r))
	{
		pthread_mutex_unlock(&r->lock);
		return NULL;
	}
	st = stmt_new(search_path, rest, restlen, h, r->next_id);
	if (st)
	{
		r->next_id++;
		st->next = r->buckets[h & (r->nbuckets - 1)];
		r->buckets[h & (r->nbuckets - 1)] = st;
		r->count++;
	}
	pthread_mutex_unlock(&r->lock);
	return st;
}

void
pgc_stmt_ref(pgc_stmt *st)
{
	atomic_fetch_add(&st->refs, 1);
}

void
pgc_stmt_unref(pgc_stmt_registry *r, pgc_stmt *st)
{
	pgc_stmt **pp;

	pthread_mutex_lock(&r->lock);
	if (atomic_fetch_sub(&st->refs, 1) == 1)
	{
		for (pp = &r->buckets[st->hash & (r->nbuckets - 1)]; *pp; pp = &(*pp)->next)
		{
			if (*pp == st)
			{
				*pp = st->next;
				break;
			}
		}
		r->count--;
		stmt_free(st);
	}
	pthread_mutex_unlock(&r->lock);
}

/* ----------------------------------------------------------- client map -- */

static uint64_t
hash_name(const char *name)
{
	return hash_bytes(name, strlen(name), HASH_SEED);
}

pgc_stmt *
pgc_stmt_map_get(const pgc_stmt_map *m, const char *name)
{
	struct pgc_stmt_name *e;

	if (m->nbuckets == 0)
		return NULL;
	for (e = m->buckets[hash_name(name) & (m->nbuckets - 1)]; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e->st;
	return NULL;
}

static bool
map_grow(pgc_stmt_map *m)
{
	uint32_t n = m->nbuckets ? m->nbuckets * 2 : 16;
	struct pgc_stmt_name **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return false;
	for (uint32_t i = 0; i < m->nbuckets; i++)
	{
		struct pgc_stmt_name *e = m->buckets[i];

		while (e)
		{
			struct pgc_stmt_name *next = e->next;
			uint64_t h = hash_name(e->name);

			e->next = b[h & (n - 1)];
			b[h & (n - 1)] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
	return true;
}

bool
pgc_stmt_map_put(pgc_stmt_map *m, pgc_stmt_registry *r, const char *name, pgc_stmt *st)
{
	size_t nl = strlen(name) + 1;
	struct pgc_stmt_name *e;
	uint64_t h;

	if ((m->count >= m->nbuckets && !map_grow(m)) || (e = malloc(sizeof(*e) + nl)) == NULL)
	{
		pgc_stmt_unref(r, st);
		return false;
	}
	memcpy(e->name, name, nl);
	e->st = st;
	h = hash_name(name);
	e->next = m->buckets[h & (m->nbuckets - 1)];
	m->buckets[h & (m->nbuckets - 1)] = e;
	m->count++;
	return true;
}

pgc_stmt *
pgc_stmt_map_take(pgc_stmt_map *m, const char *name)
{
	struct pgc_stmt_name **pp;

	if (m->nbuckets == 0)
		return NULL;
	for (pp = &m->buckets[hash_name(name) & (m->nbuckets - 1)]; *pp; pp = &(*pp)->next)
	{
		if (strcmp((*pp)->name, name) == 0)
		{
			struct pgc_stmt_name *e = *pp;
			pgc_stmt *st = e->st;

			*pp = e->next;
			free(e);
			m->count--;
			return st;
		}
	}
	return NULL;
}

void
pgc_stmt_map_clear(pgc_stmt_map *m, pgc_stmt_registry *r)
{
	for (uint32_t i = 0; i < m->nbuckets; i++)
	{
		struct pgc_stmt_name *e = m->buckets[i];

		while (e)
		{
			struct pgc_stmt_name *next = e->next;

			pgc_stmt_unref(r, e->st);
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	memset(m, 0, sizeof(*m));
}

/* --------------------------------------------------------- server cache -- */

static struct pgc_stmt_slot **
cache_find(const pgc_stmt_cache *c, const pgc_stmt *st)
{
	struct pgc_stmt_slot **pp;

	if (c->nbuckets == 0)
		return NULL;
	for (pp = &c->buckets[hash_ptr(st) & (c->nbuckets - 1)]; *pp; pp = &(*pp)->next)
		if ((*pp)->st == st)
			return pp;
	return NULL;
}

static void
lru_unlink(pgc_stmt_cache *c, struct pgc_stmt_slot *s)
{
	if (s->newer)
		s->newer->older = s->older;
	else
		c->lru_head = s->older;
	if (s->older)
		s->older->newer = s->newer;
	else
		c->lru_tail = s->newer;
	s->newer = s->older = NULL;
}

static void
lru_push_head(pgc_stmt_cache *c, struct pgc_stmt_slot *s)
{
	s->newer = NULL;
	s->older = c->lru_head;
	if (c->lru_head)
		c->lru_head->newer = s;
	c->lru_head = s;
	if (c->lru_tail == NULL)
		c->lru_tail = s;
}

bool
pgc_stmt_cache_touch(pgc_stmt_cache *c, const pgc_stmt *st)
{
	struct pgc_stmt_slot **pp = cache_find(c, st);

	if (pp == NULL)
		return false;
	if (c->lru_head != *pp)
	{
		lru_unlink(c, *pp);
		lru_push_head(c, *pp);
	}
	return true;
}

static bool
cache_grow(pgc_stmt_cache *c)
{
	uint32_t n = c->nbuckets ? c->nbuckets * 2 : 16;
	struct pgc_stmt_slot **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return false;
	for (uint32_t i = 0; i < c->nbuckets; i++)
	{
		struct pgc_stmt_slot *s = c->buckets[i];

		while (s)
		{
			struct pgc_stmt_slot *next = s->next;

			s->next = b[hash_ptr(s->st) & (n - 1)];
			b[hash_ptr(s->st) & (n - 1)] = s;
			s = next;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
	return true;
}

bool
pgc_stmt_cache_add(pgc_stmt_cache *c, pgc_stmt *st)
{
	struct pgc_stmt_slot *s;

	if (pgc_stmt_cache_touch(c, st))
		return true;
	if ((c->count >= c->nbuckets && !cache_grow(c)) || (s = calloc(1, sizeof(*s))) == NULL)
		return false;
	pgc_stmt_ref(st);
	s->st = st;
	s->next = c->buckets[hash_ptr(st) & (c->nbuckets - 1)];
	c->buckets[hash_ptr(st) & (c->nbuckets - 1)] = s;
	lru_push_head(c, s);
	c->count++;
	return true;
}

static pgc_stmt *
cache_unlink(pgc_stmt_cache *c, struct pgc_stmt_slot **pp)
{
	struct pgc_stmt_slot *s = *pp;
	pgc_stmt *st = s->st;

	*pp = s->next;
	lru_unlink(c, s);
	free(s);
	c->count--;
	return st;
}

void
pgc_stmt_cache_remove(pgc_stmt_cache *c, pgc_stmt_registry *r, const pgc_stmt *st)
{
	struct pgc_stmt_slot **pp = cache_find(c, st);

	if (pp)
		pgc_stmt_unref(r, cache_unlink(c, pp));
}

pgc_stmt *
pgc_stmt_cache_pop_lru(pgc_stmt_cache *c)
{
	if (c->lru_tail == NULL)
		return NULL;
	return cache_unlink(c, cache_find(c, c->lru_tail->st));
}

void
pgc_stmt_cache_clear(pgc_stmt_cache *c, pgc_stmt_registry *r)
{
	pgc_stmt *st;

	while ((st = pgc_stmt_cache_pop_lru(c)) != NULL)
		pgc_stmt_unref(r, st);
	free(c->buckets);
	memset(c, 0, sizeof(*c));
}
