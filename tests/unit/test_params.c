/*
 * Unit tests for the parameter lists of util.c (startup and session
 * parameters that follow a client from server to server).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "core.h"

static void
test_set_get_case_insensitive(void **state)
{
	pgc_params p = {0};

	(void) state;
	assert_null(pgc_params_get(&p, "TimeZone"));
	pgc_params_set(&p, "TimeZone", "UTC");
	pgc_params_set(&p, "application_name", "psql");
	assert_string_equal(pgc_params_get(&p, "timezone"), "UTC");
	assert_string_equal(pgc_params_get(&p, "APPLICATION_NAME"), "psql");
	/* Setting again replaces, under the name given last. */
	pgc_params_set(&p, "timezone", "Europe/Paris");
	assert_string_equal(pgc_params_get(&p, "TimeZone"), "Europe/Paris");
	pgc_params_free(&p);
	assert_null(p.blob);
	assert_int_equal(p.len, 0);
}

static void
test_remove_and_iterate(void **state)
{
	pgc_params p = {0};
	const char *k, *v;
	size_t pos = 0;
	int n = 0;

	(void) state;
	pgc_params_set(&p, "a", "1");
	pgc_params_set(&p, "b", "");
	pgc_params_set(&p, "c", "3");
	pgc_params_remove(&p, "B");
	pgc_params_remove(&p, "missing");
	while (pgc_params_next(&p, &pos, &k, &v))
	{
		assert_true(strcmp(k, "a") == 0 || strcmp(k, "c") == 0);
		n++;
	}
	assert_int_equal(n, 2);
	assert_null(pgc_params_get(&p, "b"));
	assert_string_equal(pgc_params_get(&p, "c"), "3");
	pgc_params_remove(&p, "a");
	pgc_params_remove(&p, "c");
	pos = 0;
	assert_false(pgc_params_next(&p, &pos, &k, &v));
	pgc_params_free(&p);
}

static void
test_empty_value_is_kept(void **state)
{
	pgc_params p = {0};

	(void) state;
	pgc_params_set(&p, "application_name", "");
	assert_non_null(pgc_params_get(&p, "application_name"));
	assert_string_equal(pgc_params_get(&p, "application_name"), "");
	pgc_params_free(&p);
}

static void
test_reported_parameters(void **state)
{
	(void) state;
	assert_true(pgc_param_is_reported("TimeZone"));
	assert_true(pgc_param_is_reported("datestyle"));
	assert_true(pgc_param_is_reported("application_name"));
	assert_true(pgc_param_is_reported("client_encoding"));
	assert_false(pgc_param_is_reported("search_path"));
	assert_false(pgc_param_is_reported("statement_timeout"));
	assert_false(pgc_param_is_reported(""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_get_case_insensitive),
		cmocka_unit_test(test_remove_and_iterate),
		cmocka_unit_test(test_empty_value_is_kept),
		cmocka_unit_test(test_reported_parameters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
