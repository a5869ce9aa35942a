/*
 * Unit tests for stmt.c: the per-pool statement registry, the client's
 * name map and the per-server LRU cache of the session-state guard.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "stmt.h"

/* The Parse body after the statement name: query \0 int16 n, n * int32. */
static size_t
parse_rest(uint8_t *buf, const char *query, int ntypes)
{
	size_t ql = strlen(query) + 1;

	memcpy(buf, query, ql);
	buf[ql] = 0;
	buf[ql + 1] = (uint8_t) ntypes;
	memset(buf + ql + 2, 0, (size_t) ntypes * 4);
	for (int i = 0; i < ntypes; i++)
		buf[ql + 2 + i * 4 + 3] = 23;      /* int4 */
	return ql + 2 + (size_t) ntypes * 4;
}

static void
test_intern_shares_equal_statements(void **state)
{
	pgc_stmt_registry r;
	uint8_t a[128], b[128];
	size_t al = parse_rest(a, "SELECT $1", 1), bl = parse_rest(b, "SELECT $1", 0);
	pgc_stmt *s1, *s2, *s3, *s4;

	(void) state;
	pgc_stmt_registry_init(&r);
	s1 = pgc_stmt_intern(&r, "public", a, al);
	s2 = pgc_stmt_intern(&r, "public", a, al);
	s3 = pgc_stmt_intern(&r, "public", b, bl);       /* other parameter types */
	s4 = pgc_stmt_intern(&r, "app, public", a, al);  /* other search_path */
	assert_non_null(s1);
	assert_ptr_equal(s1, s2);
	assert_ptr_not_equal(s1, s3);
	assert_ptr_not_equal(s1, s4);
	assert_string_equal(pgc_stmt_query(s1), "SELECT $1");
	assert_int_equal(strncmp(s1->name, "pgc_", 4), 0);
	assert_string_not_equal(s1->name, s3->name);
	/* The ready-made Parse carries the server-side name and the same tail. */
	assert_int_equal(s1->parse_msg[0], 'P');
	assert_string_equal((const char *) s1->parse_msg + 5, s1->name);
	assert_memory_equal(s1->parse_msg + 5 + strlen(s1->name) + 1, a, al);
	assert_int_equal(r.count, 3);
	pgc_stmt_unref(&r, s1);
	assert_int_equal(r.count, 3);
	pgc_stmt_unref(&r, s2);
	assert_int_equal(r.count, 2);                  /* last reference gone */
	pgc_stmt_unref(&r, s3);
	pgc_stmt_unref(&r, s4);
	assert_int_equal(r.count, 0);
	pgc_stmt_registry_destroy(&r);
}

static void
test_intern_rejects_malformed(void **state)
{
	pgc_stmt_registry r;
	uint8_t a[64];
	size_t al = parse_rest(a, "SELECT 1", 2);

	(void) state;
	pgc_stmt_registry_init(&r);
	assert_null(pgc_stmt_intern(&r, "", a, al - 1));   /* a type cut short */
	assert_null(pgc_stmt_intern(&r, "", a, 4));        /* no terminator */
	assert_null(pgc_stmt_intern(&r, "", a, al + 1));   /* trailing garbage */
	pgc_stmt_registry_destroy(&r);
}

static void
test_map_put_get_take(void **state)
{
	pgc_stmt_registry r;
	pgc_stmt_map m = {0};
	uint8_t a[64];
	size_t al = parse_rest(a, "SELECT 1", 0);
	char name[32];
	pgc_stmt *st;

	(void) state;
	pgc_stmt_registry_init(&r);
	for (int i = 0; i < 100; i++)
	{
		snprintf(name, sizeof(name), "S_%d", i);
		assert_true(pgc_stmt_map_put(&m, &r, name, pgc_stmt_intern(&r, "", a, al)));
	}
	assert_int_equal(m.count, 100);
	assert_int_equal(r.count, 1);
	assert_non_null(pgc_stmt_map_get(&m, "S_42"));
	assert_null(pgc_stmt_map_get(&m, "S_100"));
	st = pgc_stmt_map_take(&m, "S_42");
	assert_non_null(st);
	pgc_stmt_unref(&r, st);
	assert_null(pgc_stmt_map_get(&m, "S_42"));
	assert_null(pgc_stmt_map_take(&m, "S_42"));
	assert_int_equal(m.count, 99);
	pgc_stmt_map_clear(&m, &r);
	assert_int_equal(m.count, 0);
	assert_int_equal(r.count, 0);
	pgc_stmt_registry_destroy(&r);
}

static void
test_cache_lru_order(void **state)
{
	pgc_stmt_registry r;
	pgc_stmt_cache c = {0};
	pgc_stmt *st[4];
	uint8_t a[64];
	char q[32];

	(void) state;
	pgc_stmt_registry_init(&r);
	for (int i = 0; i < 4; i++)
	{
		snprintf(q, sizeof(q), "SELECT %d", i);
		st[i] = pgc_stmt_intern(&r, "", a, parse_rest(a, q, 0));
		assert_false(pgc_stmt_cache_touch(&c, st[i]));
		assert_true(pgc_stmt_cache_add(&c, st[i]));
	}
	assert_int_equal(c.count, 4);
	/* Using 0 makes 1 the least recently used. */
	assert_true(pgc_stmt_cache_touch(&c, st[0]));
	assert_ptr_equal(pgc_stmt_cache_pop_lru(&c), st[1]);
	pgc_stmt_unref(&r, st[1]);
	pgc_stmt_cache_remove(&c, &r, st[2]);
	assert_false(pgc_stmt_cache_touch(&c, st[2]));
	assert_ptr_equal(pgc_stmt_cache_pop_lru(&c), st[3]);
	pgc_stmt_unref(&r, st[3]);
	assert_ptr_equal(pgc_stmt_cache_pop_lru(&c), st[0]);
	pgc_stmt_unref(&r, st[0]);
	assert_null(pgc_stmt_cache_pop_lru(&c));
	/* The cache held references of its own: the callers' are still there. */
	assert_int_equal(r.count, 4);
	for (int i = 0; i < 4; i++)
		pgc_stmt_unref(&r, st[i]);
	assert_int_equal(r.count, 0);
	pgc_stmt_cache_clear(&c, &r);
	pgc_stmt_registry_destroy(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intern_shares_equal_statements),
		cmocka_unit_test(test_intern_rejects_malformed),
		cmocka_unit_test(test_map_put_get_take),
		cmocka_unit_test(test_cache_lru_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
