/*
 * Unit tests for the SQL classifier of the session-state guard (sqlclass.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <cmocka.h>

#include "sqlclass.h"

/* The session-state bits (the informational ones are tested on their own). */
static uint32_t
cls(const char *sql)
{
	return pgc_sql_classify(sql, strlen(sql), NULL) & ~PGC_SQL_INFO;
}

static uint32_t
info(const char *sql)
{
	return pgc_sql_classify(sql, strlen(sql), NULL) & PGC_SQL_INFO & ~PGC_SQL_WRITE;
}

/* More than a read (PGC_SQL_WRITE), as far as the text tells. */
static bool
writes(const char *sql)
{
	return (pgc_sql_classify(sql, strlen(sql), NULL) & PGC_SQL_WRITE) != 0;
}

/* Only SELECT, VALUES, TABLE and a WITH that only reads are reads; what pipelining may run twice. */
static void
test_write_flag(void **state)
{
	(void) state;
	assert_false(writes("SELECT abalance FROM pgbench_accounts WHERE aid = 1"));
	assert_false(writes("select 1; VALUES (2); TABLE t"));
	assert_false(writes("WITH x AS (SELECT 1) SELECT * FROM x"));
	assert_false(writes("(SELECT 1)"));
	assert_true(writes("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x"));
	assert_true(writes("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"));
	assert_true(writes("SELECT 1 INTO t"));
	assert_true(writes("SELECT * FROM t FOR UPDATE"));
	assert_true(writes("SELECT * FROM t FOR KEY SHARE"));
	assert_true(writes("INSERT INTO t VALUES (1)"));
	assert_true(writes("UPDATE t SET a = 1"));
	assert_true(writes("BEGIN"));
	assert_true(writes("SELECT 1; BEGIN"));
	assert_true(writes("select 1; commit"));
	assert_true(writes("SHOW work_mem"));
	assert_false(writes("EXPLAIN ANALYZE SELECT 1"));   /* runs the SELECT: a read */
	assert_true(writes("EXPLAIN ANALYZE INSERT INTO t VALUES (1)"));
	assert_true(writes("CALL p()"));
	assert_true(writes("VACUUM"));
	assert_true(writes("SET x = 1"));
}

static const char *
kind_of(const char *sql)
{
	const char *kind = "unset";

	(void) pgc_sql_classify(sql, strlen(sql), &kind);
	return kind;
}

/* Classified as expected without running libpg-query. */
#define assert_fast(sql, expected) do { \
	unsigned long before_ = pgc_sql_parser_calls(); \
	assert_int_equal(cls(sql), (expected)); \
	assert_int_equal(pgc_sql_parser_calls(), before_); \
} while (0)

static void
test_tables_sorted(void **state)
{
	(void) state;
	assert_true(pgc_sql_tables_ok());
}

static void
test_info_bits(void **state)
{
	(void) state;
	assert_int_equal(info("SELECT currval('s')"), PGC_SQL_SEQ_READ);
	assert_int_equal(info("SELECT pg_catalog.lastval()"), PGC_SQL_SEQ_READ);
	assert_int_equal(info("SELECT nextval('s'), 1"), PGC_SQL_SEQ_WRITE);
	assert_int_equal(info("SELECT setval('s', 5)"), PGC_SQL_SEQ_WRITE);
	assert_int_equal(info("INSERT INTO t VALUES (1)"), PGC_SQL_SEQ_WRITE);
	assert_int_equal(info("COPY t FROM STDIN"), PGC_SQL_SEQ_WRITE);
	assert_int_equal(info("SELECT 1; SELECT currval('s')"), PGC_SQL_SEQ_READ);
	assert_int_equal(info("SELECT a FROM t"), 0);
	assert_int_equal(info("UPDATE t SET a = 1"), 0);
	assert_int_equal(info("CREATE TABLE t (a int)"), PGC_SQL_DDL);
	assert_int_equal(info("ALTER TABLE t ADD b int"), PGC_SQL_DDL);
	assert_int_equal(info("DROP TABLE t"), PGC_SQL_DDL);
	assert_int_equal(info("SET LOCAL search_path = x"), PGC_SQL_LOCAL_SETTING);
	assert_int_equal(info("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"), PGC_SQL_LOCAL_SETTING);
	assert_int_equal(info("SET search_path = x"), 0);
	/* Found by the parser path too. */
	assert_int_equal(info("SELECT currval(x) FROM t x(a)"), PGC_SQL_SEQ_READ);
	/* The informational bits never make a kind for the pin log. */
	assert_null(kind_of("SELECT nextval('s')"));
}

static void
test_settings(void **state)
{
	(void) state;
	assert_fast("SET work_mem = '64MB'", PGC_SQL_SETTING);
	assert_fast("set search_path to a, \"B\"", PGC_SQL_SETTING);
	assert_fast("SET SESSION timezone = 'UTC'", PGC_SQL_SETTING);
	assert_fast("SET TIME ZONE 'UTC'", PGC_SQL_SETTING);
	assert_fast("SET NAMES 'UTF8'", PGC_SQL_SETTING);
	assert_fast("SET ROLE app", PGC_SQL_SETTING);
	assert_fast("SET SESSION ROLE app", PGC_SQL_SETTING);
	assert_fast("SET SCHEMA 'x'", PGC_SQL_SETTING);
	assert_fast("RESET work_mem", PGC_SQL_SETTING);
	assert_fast("RESET ROLE", PGC_SQL_SETTING);
	assert_fast("RESET ALL", PGC_SQL_SETTING | PGC_SQL_RELEASE);
	assert_string_equal(kind_of("SET work_mem = 1"), "SET");
	assert_string_equal(kind_of("reset all"), "RESET ALL");

	/* Transaction-scoped, or not a session setting at all. */
	assert_fast("SET LOCAL work_mem = '1MB'", 0);
	assert_fast("set local search_path = x", 0);
	assert_fast("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", 0);
	assert_fast("SET CONSTRAINTS ALL DEFERRED", 0);
	assert_fast("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", PGC_SQL_SETTING);  /* default_transaction_read_only */
	assert_fast("UPDATE t SET a = 1 WHERE b = 2", 0);
	assert_fast("ALTER ROLE r SET search_path = x", 0);
	assert_fast("ALTER DATABASE d SET work_mem = '1MB'", 0);
	assert_fast("CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = x AS 'select 1'", 0);
	assert_fast("SHOW work_mem", 0);
	assert_fast("SELECT current_setting('work_mem')", 0);

	/* SET SESSION AUTHORIZATION pins (it is not replayed). */
	assert_fast("SET SESSION AUTHORIZATION bob", PGC_SQL_SESSION_AUTH | PGC_SQL_RELEASE);
	assert_string_equal(kind_of("SET SESSION AUTHORIZATION bob"), "SET SESSION AUTHORIZATION");
	assert_fast("SET LOCAL SESSION AUTHORIZATION bob", 0);
}

static void
test_set_config(void **state)
{
	(void) state;
	assert_fast("SELECT set_config('a.b', 'c', false)", PGC_SQL_SETTING);
	assert_fast("SELECT set_config('a.b', 'c', true)", PGC_SQL_SETTING);
	assert_fast("select PG_CATALOG.SET_CONFIG('a.b', $1, $2)", PGC_SQL_SETTING);
	assert_fast("WITH x AS (SELECT set_config('a', 'b', false)) SELECT * FROM x", PGC_SQL_SETTING);
	assert_fast("UPDATE t SET a = (SELECT set_config('x.y', 'z', false))", PGC_SQL_SETTING);
	assert_string_equal(kind_of("SELECT 1, set_config('a', 'b', false)"), "set_config");
	assert_fast("SELECT 'set_config(1)', \"set_config\" FROM t", 0);
}

static void
test_temp(void **state)
{
	(void) state;
	assert_fast("CREATE TEMP TABLE t (a int)", PGC_SQL_TEMP);
	assert_string_equal(kind_of("CREATE TEMP TABLE t (a int)"), "CREATE TEMP TABLE");
	assert_fast("CREATE TEMPORARY TABLE t (a int)", PGC_SQL_TEMP);
	assert_fast("create local temporary table if not exists t(a int)", PGC_SQL_TEMP);
	assert_fast("CREATE GLOBAL TEMP TABLE t (a int)", PGC_SQL_TEMP);
	assert_fast("CREATE TEMP VIEW v AS SELECT 1", PGC_SQL_TEMP);
	assert_fast("CREATE OR REPLACE TEMP VIEW v AS SELECT 1", PGC_SQL_TEMP);
	assert_fast("CREATE TEMP SEQUENCE s", PGC_SQL_TEMP);
	assert_fast("CREATE TEMP TABLE t AS SELECT 1 AS a", PGC_SQL_TEMP);
	assert_fast("CREATE TEMP TABLE t (a int) ON COMMIT DELETE ROWS", PGC_SQL_TEMP);
	assert_fast("SELECT * INTO TEMP t FROM u", PGC_SQL_TEMP);
	assert_fast("SELECT a, b INTO TEMPORARY TABLE t FROM u WHERE a > 1", PGC_SQL_TEMP);
	assert_fast("SELECT a INTO LOCAL TEMP t FROM u", PGC_SQL_TEMP);
	assert_fast("WITH q AS (SELECT 1 AS a) SELECT a INTO TEMP t FROM q", PGC_SQL_TEMP);
	assert_fast("SELECT 1 INTO pg_temp.t", PGC_SQL_TEMP);
	assert_fast("CREATE TABLE pg_temp.x (a int)", PGC_SQL_TEMP);
	assert_fast("CREATE TABLE \"pg_temp\".x (a int)", PGC_SQL_TEMP);
	assert_fast("CREATE TABLE IF NOT EXISTS pg_temp_3.x (a int)", PGC_SQL_TEMP);
	assert_fast("CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'select 1'", PGC_SQL_TEMP);
	/* PG15 lexes 1into as 1 INTO. */
	assert_fast("SELECT 1into temp t", PGC_SQL_TEMP);

	/* Gone at commit: nothing outlives the transaction. */
	assert_fast("CREATE TEMP TABLE t (a int) ON COMMIT DROP", 0);
	assert_fast("CREATE TEMP TABLE t ON COMMIT DROP AS SELECT 1", 0);

	assert_fast("CREATE TABLE t (a int)", 0);
	assert_fast("CREATE TABLE pg_temp (a int)", 0);
	assert_fast("CREATE TABLE pg_temporary.x (a int)", 0);
	assert_fast("CREATE UNLOGGED TABLE t (a int)", 0);
	assert_fast("SELECT 1 INTO t", 0);
	assert_fast("INSERT INTO temp VALUES (1)", 0);
	assert_fast("INSERT INTO temp (a) SELECT 1", 0);
	assert_fast("SELECT * FROM temp", 0);
	assert_fast("SELECT 'CREATE TEMP TABLE x (a int)'", 0);
}

static void
test_advisory(void **state)
{
	(void) state;
	assert_fast("select pg_advisory_lock(1)", PGC_SQL_ADVISORY);
	assert_string_equal(kind_of("select pg_advisory_lock(1)"), "pg_advisory_lock");
	assert_fast("SELECT * FROM pg_catalog.pg_advisory_lock(5)", PGC_SQL_ADVISORY);
	assert_fast("SELECT PG_ADVISORY_LOCK_SHARED(1, 2)", PGC_SQL_ADVISORY);
	assert_fast("SELECT pg_try_advisory_lock(1)", PGC_SQL_ADVISORY);
	assert_fast("SELECT pg_try_advisory_lock_shared(1)", PGC_SQL_ADVISORY);
	assert_fast("SELECT \"pg_advisory_lock\"(1)", PGC_SQL_ADVISORY);
	assert_fast("SELECT pg_catalog . pg_advisory_lock (1)", PGC_SQL_ADVISORY);
	assert_fast("EXPLAIN ANALYZE SELECT pg_advisory_lock(1)", PGC_SQL_ADVISORY);

	assert_fast("SELECT pg_advisory_xact_lock(1)", 0);
	assert_fast("SELECT pg_advisory_xact_lock_shared(1)", 0);
	assert_fast("SELECT pg_try_advisory_xact_lock(1)", 0);
	assert_fast("SELECT pg_try_advisory_xact_lock_shared(1, 2)", 0);
	assert_fast("SELECT 'pg_advisory_lock(1)'", 0);
	assert_fast("SELECT pg_advisory_lock FROM t", 0);

	assert_fast("SELECT pg_advisory_unlock(1)", PGC_SQL_RELEASE);
	assert_fast("SELECT pg_advisory_unlock_shared(1)", PGC_SQL_RELEASE);
	assert_fast("SELECT pg_advisory_unlock_all()", PGC_SQL_RELEASE);
}

static void
test_listen(void **state)
{
	(void) state;
	assert_fast("LISTEN ch", PGC_SQL_LISTEN);
	assert_fast("listen \"Ch\";", PGC_SQL_LISTEN);
	assert_string_equal(kind_of("LISTEN ch"), "LISTEN");
	assert_fast("UNLISTEN *", PGC_SQL_RELEASE);
	assert_fast("UNLISTEN ch", PGC_SQL_RELEASE);
	assert_fast("NOTIFY ch, 'x'", 0);
	assert_fast("SELECT pg_notify('ch', 'x')", 0);
	assert_fast("SELECT \"listen\" FROM t", 0);
	assert_fast("SELECT listen FROM t", 0);
}

static void
test_cursors(void **state)
{
	(void) state;
	assert_fast("DECLARE c CURSOR WITH HOLD FOR SELECT 1", PGC_SQL_HOLD_CURSOR);
	assert_fast("DECLARE c BINARY NO SCROLL CURSOR WITH HOLD FOR SELECT * FROM t", PGC_SQL_HOLD_CURSOR);
	assert_string_equal(kind_of("DECLARE c CURSOR WITH HOLD FOR SELECT 1"), "DECLARE WITH HOLD");
	assert_fast("DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", 0);
	assert_fast("DECLARE c CURSOR FOR SELECT 1", 0);
	assert_fast("DECLARE c SCROLL CURSOR FOR WITH q AS (SELECT 1) SELECT * FROM q", 0);
	assert_fast("DECLARE c CURSOR FOR SELECT pg_advisory_lock(1)", PGC_SQL_ADVISORY);
	assert_fast("FETCH 10 FROM c", 0);
	assert_fast("MOVE NEXT IN c", 0);
	assert_fast("CLOSE c", PGC_SQL_RELEASE);
	assert_fast("CLOSE ALL", PGC_SQL_RELEASE);
}

static void
test_prepare(void **state)
{
	(void) state;
	assert_fast("PREPARE p AS SELECT 1", PGC_SQL_PREPARE);
	assert_string_equal(kind_of("PREPARE p AS SELECT 1"), "PREPARE");
	assert_fast("PREPARE p (int, numeric(10,2)) AS SELECT $1 + $2", PGC_SQL_PREPARE);
	assert_fast("prepare p as insert into t (a) values ($1)", PGC_SQL_PREPARE);
	/* What EXECUTE will run later is judged now. */
	assert_fast("PREPARE p AS SELECT set_config('a', 'b', false)", PGC_SQL_PREPARE | PGC_SQL_SETTING);
	assert_fast("PREPARE TRANSACTION 'gid'", 0);
	assert_fast("COMMIT PREPARED 'gid'", 0);
	assert_fast("EXECUTE p(1, 'x')", 0);
	assert_fast("EXECUTE p (pg_advisory_lock(1))", PGC_SQL_ADVISORY);
}

static void
test_deallocate_flag(void **state)
{
	(void) state;
	assert_fast("DEALLOCATE p", PGC_SQL_RELEASE | PGC_SQL_DEALLOCATE);
	assert_fast("deallocate prepare p;", PGC_SQL_RELEASE | PGC_SQL_DEALLOCATE);
	assert_fast("DEALLOCATE ALL", PGC_SQL_RELEASE | PGC_SQL_DEALLOCATE);
	assert_fast("DEALLOCATE \"My Stmt\" ; -- done", PGC_SQL_RELEASE | PGC_SQL_DEALLOCATE);
	/* Not exactly one DEALLOCATE statement: only "may release". */
	assert_fast("DEALLOCATE p; SELECT 1", PGC_SQL_RELEASE);
	assert_fast("SELECT 1; DEALLOCATE p", PGC_SQL_RELEASE);
	assert_fast("DEALLOCATE p q", PGC_SQL_RELEASE);
	assert_string_equal(kind_of("DEALLOCATE p"), "DEALLOCATE");
}

static void
test_deallocate_name(void **state)
{
	char name[64];
	bool all = true;

	(void) state;
	assert_true(pgc_sql_deallocate("DEALLOCATE Foo_Bar", strlen("DEALLOCATE Foo_Bar"), name, sizeof(name), &all));
	assert_false(all);
	assert_string_equal(name, "foo_bar");

	assert_true(pgc_sql_deallocate("deallocate prepare \"My\"\"Stmt\" ;  -- bye", strlen("deallocate prepare \"My\"\"Stmt\" ;  -- bye"), name, sizeof(name), &all));
	assert_false(all);
	assert_string_equal(name, "My\"Stmt");

	assert_true(pgc_sql_deallocate("/* c */ DEALLOCATE ALL", strlen("/* c */ DEALLOCATE ALL"), name, sizeof(name), &all));
	assert_true(all);
	assert_string_equal(name, "");

	all = false;
	assert_true(pgc_sql_deallocate("DEALLOCATE PREPARE ALL;", strlen("DEALLOCATE PREPARE ALL;"), name, sizeof(name), &all));
	assert_true(all);

	/* "ALL" quoted is a name; PREPARE alone is a name too. */
	assert_true(pgc_sql_deallocate("DEALLOCATE \"ALL\"", strlen("DEALLOCATE \"ALL\""), name, sizeof(name), &all));
	assert_false(all);
	assert_string_equal(name, "ALL");
	assert_true(pgc_sql_deallocate("DEALLOCATE PREPARE", strlen("DEALLOCATE PREPARE"), name, sizeof(name), &all));
	assert_string_equal(name, "prepare");

	assert_true(pgc_sql_deallocate("DEALLOCATE U&\"d\\0061t\\+000061\"", strlen("DEALLOCATE U&\"d\\0061t\\+000061\""), name, sizeof(name), &all));
	assert_string_equal(name, "data");

	/* len is honoured: the rest is not part of the string. */
	assert_true(pgc_sql_deallocate("DEALLOCATE abcXYZ", 14, name, sizeof(name), &all));
	assert_string_equal(name, "abc");

	assert_false(pgc_sql_deallocate("DEALLOCATE x; SELECT 1", strlen("DEALLOCATE x; SELECT 1"), name, sizeof(name), &all));
	assert_false(pgc_sql_deallocate("DEALLOCATE", strlen("DEALLOCATE"), name, sizeof(name), &all));
	assert_false(pgc_sql_deallocate("DEALLOCATE select", strlen("DEALLOCATE select"), name, sizeof(name), &all));
	assert_false(pgc_sql_deallocate("DEALLOCATE \"\"", strlen("DEALLOCATE \"\""), name, sizeof(name), &all));
	assert_false(pgc_sql_deallocate("DEALLOCATE 'x'", strlen("DEALLOCATE 'x'"), name, sizeof(name), &all));
	assert_false(pgc_sql_deallocate("DISCARD ALL", strlen("DISCARD ALL"), name, sizeof(name), &all));
	assert_false(pgc_sql_deallocate("DEALLOCATE \"abc", strlen("DEALLOCATE \"abc"), name, sizeof(name), &all));
	/* Does not fit: 4 bytes and the NUL in 4. */
	assert_false(pgc_sql_deallocate("DEALLOCATE abcd", strlen("DEALLOCATE abcd"), name, 4, &all));
	assert_true(pgc_sql_deallocate("DEALLOCATE abc", strlen("DEALLOCATE abc"), name, 4, &all));
	assert_string_equal(name, "abc");
}

static void
test_discard_drop(void **state)
{
	(void) state;
	assert_fast("DISCARD ALL", PGC_SQL_RELEASE | PGC_SQL_DISCARD_ALL);
	assert_string_equal(kind_of("discard all"), "DISCARD ALL");
	assert_fast("DISCARD TEMP", PGC_SQL_RELEASE);
	assert_fast("DISCARD TEMPORARY", PGC_SQL_RELEASE);
	assert_fast("DISCARD PLANS", PGC_SQL_RELEASE);
	assert_fast("DISCARD SEQUENCES", PGC_SQL_RELEASE);
	assert_fast("SELECT 1; DISCARD ALL", PGC_SQL_RELEASE | PGC_SQL_DISCARD_ALL);
	assert_fast("/* DISCARD ALL */ SELECT 1", 0);
	assert_fast("DROP TABLE t", PGC_SQL_RELEASE);
	assert_fast("DROP TABLE IF EXISTS pg_temp.t", PGC_SQL_RELEASE);
	assert_fast("DROP FUNCTION f(int), g(text)", PGC_SQL_RELEASE);
	assert_string_equal(kind_of("DROP TABLE t"), "DROP");
}

static void
test_unknown(void **state)
{
	unsigned long before;

	(void) state;
	assert_fast("DO $$BEGIN PERFORM pg_advisory_lock(1); END$$", PGC_SQL_UNKNOWN);
	assert_string_equal(kind_of("DO $$BEGIN NULL; END$$"), "DO");
	assert_fast("DO LANGUAGE plpgsql $x$ BEGIN NULL; END $x$", PGC_SQL_UNKNOWN);
	assert_fast("CALL p()", PGC_SQL_UNKNOWN);
	assert_string_equal(kind_of("call s.p(1)"), "CALL");
	assert_fast("LOAD 'auto_explain'", PGC_SQL_UNKNOWN);
	assert_fast("SELEC 1", PGC_SQL_UNKNOWN);
	assert_fast("42", PGC_SQL_UNKNOWN);
	assert_fast("\"select\" 1", PGC_SQL_UNKNOWN);

	/* Cannot even be lexed. */
	assert_fast("SELECT 'abc", PGC_SQL_UNKNOWN);
	assert_fast("SELECT E'abc\\'", PGC_SQL_UNKNOWN);
	assert_fast("SELECT \"abc", PGC_SQL_UNKNOWN);
	assert_fast("SELECT $$abc", PGC_SQL_UNKNOWN);
	assert_fast("SELECT $a$ abc $b$", PGC_SQL_UNKNOWN);
	assert_fast("SELECT 1 /* /* */", PGC_SQL_UNKNOWN);
	assert_fast("SELECT (1", PGC_SQL_UNKNOWN);
	assert_fast("SELECT 1)", PGC_SQL_UNKNOWN);
	assert_string_equal(kind_of("SELECT 'abc"), "unparseable statement");

	/* A call of something that is not a known built-in. */
	before = pgc_sql_parser_calls();
	assert_int_equal(cls("SELECT my_func(1)"), PGC_SQL_UNKNOWN);
	assert_int_equal(pgc_sql_parser_calls(), before + 1);
	/* Same text again: the cache answers, kind included. */
	assert_string_equal(kind_of("SELECT my_func(1)"), "function my_func");
	assert_int_equal(pgc_sql_parser_calls(), before + 1);

	assert_int_equal(cls("SELECT * FROM t WHERE x = 1 AND my_check(x)"), PGC_SQL_UNKNOWN);
	assert_string_equal(kind_of("SELECT myschema.now()"), "function myschema.now");
	assert_int_equal(cls("SELECT \"Now\"()"), PGC_SQL_UNKNOWN);
	assert_int_equal(cls("SELECT * FROM my_srf(1) AS f(a int)"), PGC_SQL_UNKNOWN);
	assert_int_equal(cls("INSERT INTO t SELECT do_things()"), PGC_SQL_UNKNOWN);
	assert_int_equal(cls("CREATE INDEX i ON t (my_immutable(a))"), PGC_SQL_UNKNOWN);
	assert_int_equal(cls("SELECT 1 FROM t WHERE a LIKE 'x' ESCAPE '!' AND mine()"), PGC_SQL_UNKNOWN);
	/* The grammar rejects it. */
	assert_int_equal(cls("SELECT foo( FROM )"), PGC_SQL_UNKNOWN);
	assert_string_equal(kind_of("SELECT foo( FROM )"), "unparseable statement");
	/* Kind of the first statement that matters. */
	assert_string_equal(kind_of("SELECT 1; SELECT my_func(2); LISTEN x"), "function my_func");
	assert_string_equal(kind_of("LISTEN x; SELECT my_func(2)"), "LISTEN");
	assert_string_equal(kind_of("SELECT my_func(1); SELECT other_func(2)"), "function my_func");
	/* A kind from the parser stays put: callers keep it with the statement. */
	{
		const char *k1 = kind_of("SELECT my_func(1)");

		assert_string_equal(kind_of("SELECT yet_another_func(3)"), "function yet_another_func");
		assert_string_equal(k1, "function my_func");
		assert_ptr_equal(kind_of("SELECT my_func(1) -- again"), k1);
	}
}

static void
test_parser_says_no_call(void **state)
{
	unsigned long before = pgc_sql_parser_calls();

	(void) state;
	/* The lexer cannot rule these out; the grammar finds no call. */
	assert_int_equal(cls("SELECT * FROM t x(a)"), 0);
	assert_int_equal(cls("CREATE INDEX i ON t (my_opclass_fn(a)) WHERE (c > 0)"), PGC_SQL_UNKNOWN);
	assert_int_equal(cls("SELECT * FROM t x(a)"), 0);
	assert_int_equal(pgc_sql_parser_calls(), before + 2);
	/* Built-ins reached through SQL syntax are harmless. */
	assert_int_equal(cls("SELECT trim(a), a AT TIME ZONE 'UTC', overlay(a placing 'b' from 1), x FROM t x(a)"), 0);
	assert_int_equal(pgc_sql_parser_calls(), before + 3);

	/*
	 * Unreserved and type_func_name keywords may name a user's function:
	 * the lexer takes them for syntax only where no expression can start.
	 */
	assert_int_equal(cls("SELECT set('t')"), PGC_SQL_UNKNOWN);
	assert_int_equal(cls("SELECT x FROM t WHERE like(1) OR join(2)"), PGC_SQL_UNKNOWN);
	assert_int_equal(cls("SELECT conflict(1), filter(2)"), PGC_SQL_UNKNOWN);
	assert_int_equal(cls("SELECT \"coalesce\"(1)"), PGC_SQL_UNKNOWN);
	assert_int_equal(cls("SELECT a FROM t ORDER BY a, by(1)"), PGC_SQL_UNKNOWN);
	before = pgc_sql_parser_calls();
	assert_int_equal(cls("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = excluded.a"), 0);
	assert_int_equal(cls("UPDATE t SET (a, b) = (1, 2) WHERE c = 3"), 0);
	assert_int_equal(cls("SELECT a, b, count(*) FROM t GROUP BY ROLLUP (a), CUBE (b)"), 0);
	assert_int_equal(cls("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)"), 0);
	assert_int_equal(cls("SELECT * FROM a JOIN (SELECT 1 AS x) b ON true WHERE c LIKE ('x%')"), 0);
	assert_int_equal(pgc_sql_parser_calls(), before + 5);
}

static void
test_hidden_by_quoting(void **state)
{
	(void) state;
	assert_fast("SELECT 'SET x'", 0);
	assert_fast("SELECT $$LISTEN a$$", 0);
	assert_fast("SELECT $tag$ DISCARD ALL; LISTEN x; $$ $tag$", 0);
	assert_fast("SELECT $a$ $b$ LISTEN x $b$ $a$", 0);
	assert_fast("/* DISCARD ALL */ SELECT 1", 0);
	assert_fast("/* outer /* inner */ LISTEN x; */ SELECT 1", 0);
	assert_fast("-- LISTEN x;\nSELECT 1", 0);
	assert_fast("SELECT 1 -- ; LISTEN x", 0);
	assert_fast("SELECT 1 --; LISTEN x\r; SELECT 2", 0);
	assert_fast("SELECT \"listen\" FROM t", 0);
	assert_fast("SELECT \"a\"\";listen x\" FROM t", 0);
	assert_fast("SELECT 'it''s; LISTEN x'", 0);
	assert_fast("SELECT E'it\\'s; LISTEN x'", 0);
	assert_fast("SELECT e'\\\\'; SELECT 1", 0);
	assert_fast("SELECT U&'d\\0061t; LISTEN x'", 0);
	assert_fast("SELECT U&\"a;listen\" FROM t", 0);
	assert_fast("SELECT N'; LISTEN x', B'101', X'1F'", 0);
	assert_fast("SELECT 'a' 'b'; SELECT '\\'", 0);
	assert_fast("SELECT 'pg_advisory_lock(1)', $$set_config('a','b',false)$$", 0);
	assert_fast("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ SELECT pg_advisory_lock(1); LISTEN x $$", 0);
	assert_fast("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS 'BEGIN PERFORM set_config(''a'', ''b'', false); END'", 0);
	assert_fast("COMMENT ON TABLE t IS 'DISCARD ALL; LISTEN x'", 0);
	/* '$' inside a name is not a dollar quote: LISTEN is a statement here. */
	assert_fast("SELECT 1 AS a$$; LISTEN x; SELECT 2 AS b$$", PGC_SQL_LISTEN);
	assert_fast("SELECT 1 AS a$$; LISTEN x; $$", PGC_SQL_LISTEN | PGC_SQL_UNKNOWN);
	assert_fast("SELECT a$b, $1, $2::text FROM t", 0);
	/* A comment in an operator ends it. */
	assert_fast("SELECT 1 +-- ; LISTEN x\n 2", 0);
	assert_fast("SELECT 1 -/* ; LISTEN x */ 2", 0);
	assert_fast("SELECT 1.5e3, .5, 1e-3, 1.; SELECT 2", 0);
}

static void
test_multi_statement(void **state)
{
	(void) state;
	assert_fast("SELECT 1; SET work_mem = '64MB'", PGC_SQL_SETTING);
	assert_fast("SET work_mem = '64MB'; LISTEN x; CREATE TEMP TABLE t (a int);",
				PGC_SQL_SETTING | PGC_SQL_LISTEN | PGC_SQL_TEMP);
	assert_fast("BEGIN; SET LOCAL work_mem = '1MB'; SELECT 1; COMMIT;", 0);
	assert_fast(";;; SELECT 1;;", 0);
	assert_fast("", 0);
	assert_fast("  -- nothing\n /* at all */ ", 0);
	/* BEGIN ATOMIC bodies hold ';' (as psql sees them). */
	assert_fast("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT pg_advisory_lock(1); "
				"SELECT CASE WHEN true THEN 1 END; END; LISTEN x", PGC_SQL_LISTEN);
	assert_fast("CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT pg_advisory_lock(1); END", 0);
	/* Elsewhere BEGIN/END are just words. */
	assert_fast("SELECT 1 AS begin; LISTEN x", PGC_SQL_LISTEN);
	/* A NUL byte ends the string, as for the server. */
	assert_int_equal(pgc_sql_classify("SELECT 1\0; LISTEN x", 19, NULL), 0);
}

static void
test_plain_statements_stay_fast(void **state)
{
	unsigned long before = pgc_sql_parser_calls();
	const char *kind = "unset";

	(void) state;
	assert_int_equal(pgc_sql_classify("SELECT abalance FROM pgbench_accounts WHERE aid = 123;", 54, &kind), 0);
	assert_null(kind);
	assert_int_equal(cls("UPDATE pgbench_accounts SET abalance = abalance + -1 WHERE aid = 5;"), 0);
	assert_int_equal(cls("UPDATE pgbench_tellers SET tbalance = tbalance + 2 WHERE tid = 3;"), 0);
	assert_int_equal(cls("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
						 "VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP);"), 0);
	assert_int_equal(cls("BEGIN;"), 0);
	assert_int_equal(cls("END;"), 0);
	assert_int_equal(cls("COMMIT"), 0);
	assert_int_equal(cls("ROLLBACK"), 0);
	assert_int_equal(cls("START TRANSACTION ISOLATION LEVEL REPEATABLE READ"), 0);
	assert_int_equal(cls("SELECT 1"), 0);
	assert_int_equal(cls("SELECT $1::int + 1"), 0);
	assert_int_equal(cls("SELECT now()"), 0);
	assert_int_equal(cls("SELECT count(*) FROM t"), 0);
	assert_int_equal(cls("select nextval('s'), currval('s')"), 0);
	assert_int_equal(cls("SELECT x::numeric(10,2), y::character varying(20), CAST(z AS varchar(3)), "
						 "w::timestamp(3) with time zone FROM t AS q(a, b)"), 0);
	assert_int_equal(cls("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING RETURNING (a)"), 0);
	assert_int_equal(cls("INSERT INTO s.t AS x (a) SELECT 1"), 0);
	assert_int_equal(cls("WITH q(a) AS (SELECT 1), r (b) AS MATERIALIZED (SELECT 2) SELECT * FROM q, r"), 0);
	assert_int_equal(cls("WITH RECURSIVE q(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM q) SELECT * FROM q"), 0);
	assert_int_equal(cls("SELECT count(*) FILTER (WHERE a > 1) OVER (PARTITION BY b), rank() OVER w "
						 "FROM t WINDOW w AS (ORDER BY a)"), 0);
	assert_int_equal(cls("SELECT string_agg(a, ',') WITHIN GROUP (ORDER BY a) FROM t GROUP BY GROUPING SETS ((a), (b))"), 0);
	assert_int_equal(cls("SELECT a FROM t ORDER BY (a + 1)"), 0);
	assert_int_equal(cls("SELECT * FROM generate_series(1, 3) g(i), unnest($1::int[]) WITH ORDINALITY AS u(x, n)"), 0);
	assert_int_equal(cls("SELECT * FROM t WHERE a IN (1, 2) AND EXISTS (SELECT 1) AND b = ANY ($1) AND NOT (c)"), 0);
	assert_int_equal(cls("SELECT coalesce(a, 0), greatest(1, 2), extract(epoch FROM now()), lower(b), "
						 "pg_catalog.upper(b), json_build_object('a', 1)::jsonb, ARRAY(SELECT 1), ROW(1, 2) FROM t"), 0);
	assert_int_equal(cls("DELETE FROM t USING u WHERE t.a = u.a"), 0);
	assert_int_equal(cls("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v "
						 "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)"), 0);
	assert_int_equal(cls("COPY t (a, b) FROM STDIN WITH (FORMAT csv)"), 0);
	assert_int_equal(cls("COPY (SELECT 1) TO STDOUT"), 0);
	assert_int_equal(cls("CREATE TABLE t (a numeric(10,2) DEFAULT my_default(), b int REFERENCES u (id), "
						 "CHECK (a > 0), PRIMARY KEY (a))"), 0);
	assert_int_equal(cls("CREATE TABLE IF NOT EXISTS t (a int)"), 0);
	assert_int_equal(cls("CREATE INDEX i ON t (lower(a))"), 0);
	assert_int_equal(cls("CREATE VIEW v (a) AS SELECT my_func(1)"), 0);
	assert_int_equal(cls("CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION trg()"), 0);
	assert_int_equal(cls("ALTER TABLE t ADD COLUMN c numeric(5,1), ADD FOREIGN KEY (a) REFERENCES u(b), "
						 "ADD PRIMARY KEY (c)"), 0);
	assert_int_equal(cls("EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM t"), 0);
	assert_int_equal(cls("VACUUM (VERBOSE) t (a)"), 0);
	assert_int_equal(cls("GRANT EXECUTE ON FUNCTION f(int) TO r"), 0);
	assert_int_equal(cls("TRUNCATE t; LOCK TABLE t IN SHARE MODE; ANALYZE t (a)"), 0);
	assert_int_equal(pgc_sql_parser_calls(), before);
}

static void
test_too_complex_for_parser(void **state)
{
	size_t n = 80000;
	char *sql = malloc(n + 64);
	size_t len;
	unsigned long before = pgc_sql_parser_calls();

	(void) state;
	assert_non_null(sql);
	/* 1+1+...: the JSON writer would recurse once per '+'. */
	len = (size_t) sprintf(sql, "SELECT my_func(1)");
	while (len + 2 < n)
	{
		sql[len++] = '+';
		sql[len++] = '1';
	}
	sql[len] = '\0';
	assert_int_equal(cls(sql), PGC_SQL_UNKNOWN);
	assert_string_equal(kind_of(sql), "statement too complex to classify");

	/* Deep parentheses. */
	len = (size_t) sprintf(sql, "SELECT my_func(");
	for (int i = 0; i < 200; i++)
		sql[len++] = '(';
	sql[len++] = '1';
	for (int i = 0; i < 201; i++)
		sql[len++] = ')';
	sql[len] = '\0';
	assert_int_equal(cls(sql), PGC_SQL_UNKNOWN);
	assert_int_equal(pgc_sql_parser_calls(), before);

	/* Keywords nest too: x AT TIME ZONE a AT TIME ZONE b ..., NOT NOT ... */
	len = (size_t) sprintf(sql, "SELECT my_func(1) FROM t WHERE x");
	while (len + 32 < n)
		len += (size_t) sprintf(sql + len, " AT TIME ZONE 'UTC'");
	sql[len] = '\0';
	assert_int_equal(cls(sql), PGC_SQL_UNKNOWN);
	len = (size_t) sprintf(sql, "SELECT my_func(1) FROM t WHERE");
	while (len + 8 < n)
		len += (size_t) sprintf(sql + len, " NOT");
	len += (size_t) sprintf(sql + len, " x");
	assert_int_equal(cls(sql), PGC_SQL_UNKNOWN);
	assert_int_equal(pgc_sql_parser_calls(), before);

	/* Long, but flat: parsed. */
	len = (size_t) sprintf(sql, "SELECT my_func(1) FROM t WHERE a IN (");
	for (int i = 0; i < 5000; i++)
		len += (size_t) sprintf(sql + len, "%s%d", i ? "," : "", i);
	sql[len++] = ')';
	sql[len] = '\0';
	assert_int_equal(cls(sql), PGC_SQL_UNKNOWN);
	assert_int_equal(pgc_sql_parser_calls(), before + 1);
	free(sql);
}

static void
test_feature_names(void **state)
{
	(void) state;
	assert_string_equal(pgc_sql_feature_name(PGC_SQL_TEMP | PGC_SQL_LISTEN), "temporary tables");
	assert_string_equal(pgc_sql_feature_name(PGC_SQL_ADVISORY), "session-level advisory locks");
	assert_string_equal(pgc_sql_feature_name(PGC_SQL_LISTEN | PGC_SQL_SETTING), "LISTEN");
	assert_string_equal(pgc_sql_feature_name(PGC_SQL_HOLD_CURSOR), "WITH HOLD cursors");
	assert_string_equal(pgc_sql_feature_name(PGC_SQL_PREPARE | PGC_SQL_UNKNOWN), "SQL-level PREPARE");
	assert_string_equal(pgc_sql_feature_name(PGC_SQL_UNKNOWN), "statements pgcarrier cannot classify");
	assert_null(pgc_sql_feature_name(PGC_SQL_SETTING | PGC_SQL_RELEASE | PGC_SQL_DISCARD_ALL));
	assert_null(pgc_sql_feature_name(0));
}

/* Several threads at once, each with its own cache; each frees it at exit. */
static void *
worker(void *arg)
{
	static const char *const sqls[] = {
		"SELECT my_func(1)", "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
		"SELECT other_func()", "SET work_mem = '1MB'", "SELECT broken(", "LISTEN x",
		"SELECT * FROM t x(a)",
	};
	static const uint32_t want[] = {
		PGC_SQL_UNKNOWN, 0, PGC_SQL_UNKNOWN, PGC_SQL_SETTING, PGC_SQL_UNKNOWN, PGC_SQL_LISTEN, 0,
	};
	long bad = 0;

	(void) arg;
	for (int i = 0; i < 2000; i++)
	{
		int j = i % 7;

		if (cls(sqls[j]) != want[j])
			bad++;
		if (i % 97 == 0)
		{
			char buf[64];

			snprintf(buf, sizeof(buf), "SELECT f_%d(%d)", i, i);
			if (cls(buf) != PGC_SQL_UNKNOWN)
				bad++;
		}
	}
	/* The parser ran once per distinct text, not once per call. */
	if (pgc_sql_parser_calls() > 3 + 2000 / 97 + 1)
		bad++;
	return (void *) bad;
}

static void
test_threads(void **state)
{
	pthread_t th[4];

	(void) state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, NULL), 0);
	for (int i = 0; i < 4; i++)
	{
		void *bad;

		assert_int_equal(pthread_join(th[i], &bad), 0);
		assert_int_equal((long) bad, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables_sorted),
		cmocka_unit_test(test_info_bits),
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_set_config),
		cmocka_unit_test(test_temp),
		cmocka_unit_test(test_advisory),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_cursors),
		cmocka_unit_test(test_prepare),
		cmocka_unit_test(test_deallocate_flag),
		cmocka_unit_test(test_deallocate_name),
		cmocka_unit_test(test_discard_drop),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_parser_says_no_call),
		cmocka_unit_test(test_hidden_by_quoting),
		cmocka_unit_test(test_multi_statement),
		cmocka_unit_test(test_write_flag),
		cmocka_unit_test(test_plain_statements_stay_fast),
		cmocka_unit_test(test_too_complex_for_parser),
		cmocka_unit_test(test_feature_names),
		cmocka_unit_test(test_threads),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	pgc_sql_thread_cleanup();
	return rc;
}
