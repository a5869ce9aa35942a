/*
 * pshare.c - parameter lists shared by the clients of one worker (pshare.h).
 *
 * A hash table per worker of reference-counted immutable lists, chained,
 * doubled when it holds more lists than buckets.
 */
#include <stdlib.h>
#include <string.h>

#include "pshare.h"

struct pgc_shared_params {
	pgc_shared_params *next;      /* hash chain */
	uint32_t refs;
	uint32_t hash;
	size_t len;
	char blob[];
};

static uint32_t
hash_bytes(const char *p, size_t n)
{
	uint32_t h = 2166136261u;     /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t) p[i]) * 16777619u;
	return h;
}

static bool
grow(pgc_worker *w)
{
	uint32_t n = w->share_nbuckets ? w->share_nbuckets * 2 : 64;
	pgc_shared_params **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return false;
	for (uint32_t i = 0; i < w->share_nbuckets; i++)
		for (pgc_shared_params *s = w->share_buckets[i], *next; s; s = next)
		{
			next = s->next;
			s->next = b[s->hash & (n - 1)];
			b[s->hash & (n - 1)] = s;
		}
	free(w->share_buckets);
	w->share_buckets = b;
	w->share_nbuckets = n;
	return true;
}

static pgc_shared_params *
intern(pgc_worker *w, const pgc_params *p)
{
	uint32_t h;
	pgc_shared_params *s;

	if (p->len == 0)
		return NULL;
	if (w->share_count >= w->share_nbuckets && !grow(w) && w->share_nbuckets == 0)
		return NULL;
	h = hash_bytes(p->blob, p->len);
	for (s = w->share_buckets[h & (w->share_nbuckets - 1)]; s; s = s->next)
		if (s->hash == h && s->len == p->len && memcmp(s->blob, p->blob, p->len) == 0)
		{
			s->refs++;
			return s;
		}
	s = malloc(sizeof(*s) + p->len);
	if (s == NULL)
		return NULL;
	s->refs = 1;
	s->hash = h;
	s->len = p->len;
	memcpy(s->blob, p->blob, p->len);
	s->next = w->share_buckets[h & (w->share_nbuckets - 1)];
	w->share_buckets[h & (w->share_nbuckets - 1)] = s;
	w->share_count++;
	return s;
}

void
pgc_shared_params_release(pgc_worker *w, pgc_shared_params **slot)
{
	pgc_shared_params *s = *slot;
	pgc_shared_params **pp;

	*slot = NULL;
	if (s == NULL || --s->refs > 0)
		return;
	for (pp = &w->share_buckets[s->hash & (w->share_nbuckets - 1)]; *pp; pp = &(*pp)->next)
		if (*pp == s)
		{
			*pp = s->next;
			break;
		}
	w->share_count--;
	free(s);
}

void
pgc_shared_params_replace(pgc_worker *w, pgc_shared_params **slot, const pgc_params *p)
{
	pgc_shared_params *s = intern(w, p);     /* first: p may be a view of *slot */

	pgc_shared_params_release(w, slot);
	*slot = s;
}

pgc_params
pgc_shared_params_view(const pgc_shared_params *s)
{
	pgc_params v = {0};

	if (s)
	{
		v.blob = (char *) s->blob;   /* read only: callers never change a view */
		v.len = s->len;
	}
	return v;
}

const char *
pgc_shared_params_get(const pgc_shared_params *s, const char *key)
{
	pgc_params v = pgc_shared_params_view(s);

	return pgc_params_get(&v, key);
}

void
pgc_shared_params_worker_free(pgc_worker *w)
{
	free(w->share_buckets);
	w->share_buckets = NULL;
	w->share_nbuckets = w->share_count = 0;
}

void
pgc_client_param_set(pgc_client *c, const char *key, const char *value)
{
	pgc_params view = pgc_shared_params_view(c->params);
	pgc_params p = {0};
	const char *now = pgc_params_get(&view, key);

	if (value ? (now && strcmp(now, value) == 0) : now == NULL)
		return;
	pgc_params_copy(&p, &view);
	if (value)
		pgc_params_set(&p, key, value);
	else
		pgc_params_remove(&p, key);
	pgc_shared_params_replace(c->worker, &c->params, &p);
	pgc_params_free(&p);
}

void
pgc_client_params_replace(pgc_client *c, const pgc_params *p)
{
	pgc_shared_params_replace(c->worker, &c->params, p);
}
