/*
 * util.c - small helpers for the engine: clock, intrusive lists, parameter lists.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core.h"

double
pgc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

void
pgc_list_init(pgc_link *l)
{
	l->prev = l->next = l;
}

bool
pgc_list_empty(const pgc_link *l)
{
	return l->next == l;
}

void
pgc_list_push_head(pgc_link *l, pgc_link *n)
{
	n->next = l->next;
	n->prev = l;
	l->next->prev = n;
	l->next = n;
}

void
pgc_list_push_tail(pgc_link *l, pgc_link *n)
{
	n->prev = l->prev;
	n->next = l;
	l->prev->next = n;
	l->prev = n;
}

void
pgc_list_remove(pgc_link *n)
{
	if (n->next == NULL)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}

/* Parameter lists: "key\0value\0key\0value\0". Keys compare case-insensitively, as GUC names do. */

int
pgc_params_next(const pgc_params *p, size_t *pos, const char **key, const char **value)
{
	if (p->blob == NULL || *pos >= p->len)
		return 0;
	*key = p->blob + *pos;
	*pos += strlen(*key) + 1;
	*value = p->blob + *pos;
	*pos += strlen(*value) + 1;
	return 1;
}

/*
 * Whether a and b may be equal ignoring ASCII case, by their first bytes:
 * a cheap test before strcasecmp in the loops over every parameter. For
 * letters, x | 0x20 is the lower case; two bytes it tells apart are never
 * equal ignoring case.
 */
static inline bool
may_equal_ignoring_case(const char *a, const char *b)
{
	return (a[0] | 0x20) == (b[0] | 0x20);
}

const char *
pgc_params_get(const pgc_params *p, const char *key)
{
	size_t pos = 0;
	const char *k, *v;

	while (pgc_params_next(p, &pos, &k, &v))
		if (may_equal_ignoring_case(k, key) && strcasecmp(k, key) == 0)
			return v;
	return NULL;
}

void
pgc_params_remove(pgc_params *p, const char *key)
{
	size_t pos = 0;
	const char *k, *v;

	while (pgc_params_next(p, &pos, &k, &v))
	{
		if (may_equal_ignoring_case(k, key) && strcasecmp(k, key) == 0)
		{
			size_t from = (size_t) (k - p->blob);

			memmove(p->blob + from, p->blob + pos, p->len - pos);
			p->len -= pos - from;
			return;
		}
	}
}

void
pgc_params_set(pgc_params *p, const char *key, const char *value)
{
	size_t kl = strlen(key) + 1;
	size_t vl = strlen(value) + 1;
	const char *old = pgc_params_get(p, key);
	char *blob;

	if (old && strcmp(old, value) == 0)
		return;
	if (p->blob && ((key >= p->blob && key < p->blob + p->len) || (value >= p->blob && value < p->blob + p->len)))
	{
		/* key or value lives in the blob about to change: set from copies. */
		char *k2 = strdup(key), *v2 = strdup(value);

		if (k2 && v2)
			pgc_params_set(p, k2, v2);
		free(k2);
		free(v2);
		return;
	}
	pgc_params_remove(p, key);
	blob = realloc(p->blob, p->len + kl + vl);
	if (blob == NULL)
		return;                 /* keeps the old list; the setting is simply not tracked */
	memcpy(blob + p->len, key, kl);
	memcpy(blob + p->len + kl, value, vl);
	p->blob = blob;
	p->len += kl + vl;
}

void
pgc_params_copy(pgc_params *dst, const pgc_params *src)
{
	pgc_params_free(dst);
	if (src->len && (dst->blob = malloc(src->len)) != NULL)
	{
		memcpy(dst->blob, src->blob, src->len);
		dst->len = src->len;
	}
}

bool
pgc_params_equal(const pgc_params *a, const pgc_params *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->blob, b->blob, a->len) == 0);
}

bool
pgc_params_memo_holds(const pgc_params_memo *m, const pgc_params *client, const pgc_params *server, unsigned gen)
{
	return m->server.blob != NULL && m->gen == gen && pgc_params_equal(&m->server, server) &&
		pgc_params_equal(&m->client, client);
}

void
pgc_params_memo_keep(pgc_params_memo *m, const pgc_params *client, const pgc_params *server, unsigned gen)
{
	pgc_params_copy(&m->client, client);
	pgc_params_copy(&m->server, server);
	m->gen = gen;
}

void
pgc_params_memo_free(pgc_params_memo *m)
{
	pgc_params_free(&m->client);
	pgc_params_free(&m->server);
}

void
pgc_params_free(pgc_params *p)
{
	free(p->blob);
	p->blob = NULL;
	p->len = 0;
}

/* A name in a short list, by length first: these tests run for every parameter at every link. */
typedef struct param_name {
	const char *name;
	size_t len;
} param_name;

#define PARAM_NAME(s) {s, sizeof(s) - 1}

static bool
in_names(const param_name *names, const char *key)
{
	size_t len = strlen(key);

	for (; names->name; names++)
		if (names->len == len && may_equal_ignoring_case(names->name, key) &&
			strcasecmp(names->name, key) == 0)
			return true;
	return false;
}

bool
pgc_param_is_reported(const char *key)
{
	/* PostgreSQL 15's GUC_REPORT parameters. */
	static const param_name reported[] = {
		PARAM_NAME("application_name"), PARAM_NAME("client_encoding"), PARAM_NAME("DateStyle"),
		PARAM_NAME("default_transaction_read_only"), PARAM_NAME("in_hot_standby"),
		PARAM_NAME("integer_datetimes"), PARAM_NAME("IntervalStyle"), PARAM_NAME("is_superuser"),
		PARAM_NAME("server_encoding"), PARAM_NAME("server_version"), PARAM_NAME("session_authorization"),
		PARAM_NAME("standard_conforming_strings"), PARAM_NAME("TimeZone"), {NULL, 0}
	};

	return in_names(reported, key);
}

bool
pgc_param_is_server_wide(const char *key)
{
	return strcasecmp(key, "in_hot_standby") == 0;
}

bool
pgc_param_is_read_only(const char *key)
{
	static const param_name read_only[] = {
		PARAM_NAME("in_hot_standby"), PARAM_NAME("integer_datetimes"), PARAM_NAME("is_superuser"),
		PARAM_NAME("server_encoding"), PARAM_NAME("server_version"), PARAM_NAME("session_authorization"),
		{NULL, 0}
	};

	return in_names(read_only, key);
}

/* ------------------------------------------------------ client address -- */

void
pgc_peer_set(pgc_peer *p, const struct sockaddr_storage *ss)
{
	memset(p, 0, sizeof(*p));
	if (ss->ss_family == AF_INET)
		memcpy(&p->in4, ss, sizeof(p->in4));
	else if (ss->ss_family == AF_INET6)
		memcpy(&p->in6, ss, sizeof(p->in6));
	else
		p->sa.sa_family = ss->ss_family;
}

struct sockaddr_storage
pgc_peer_storage(const pgc_peer *p)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (p->sa.sa_family == AF_INET)
		memcpy(&ss, &p->in4, sizeof(p->in4));
	else if (p->sa.sa_family == AF_INET6)
		memcpy(&ss, &p->in6, sizeof(p->in6));
	else
		ss.ss_family = p->sa.sa_family;
	return ss;
}

const char *
pgc_client_addr(const pgc_client *c)
{
	static _Thread_local char bufs[PGC_ADDR_BUFS][INET6_ADDRSTRLEN + 8];
	static _Thread_local unsigned next;
	char *buf = bufs[next++ % PGC_ADDR_BUFS];
	char host[INET6_ADDRSTRLEN];
	const pgc_peer *p = &c->peer;

	if (p->sa.sa_family == AF_INET && inet_ntop(AF_INET, &p->in4.sin_addr, host, sizeof(host)))
		snprintf(buf, sizeof(bufs[0]), "%s:%d", host, ntohs(p->in4.sin_port));
	else if (p->sa.sa_family == AF_INET6 && inet_ntop(AF_INET6, &p->in6.sin6_addr, host, sizeof(host)))
		snprintf(buf, sizeof(bufs[0]), "%s:%d", host, ntohs(p->in6.sin6_port));
	else
		snprintf(buf, sizeof(bufs[0]), "unix:%d", c->fd);
	return buf;
}
