/*
 * test_config.c - unit tests for src/engine/config.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "tls.h"

static char err[512];

static pgc_config *
parse_ok(const char *text)
{
	pgc_config *cfg;

	err[0] = '\0';
	cfg = pgc_config_parse(text, "t.ini", err, sizeof(err));
	if (cfg == NULL)
		fail_msg("unexpected error: %s", err);
	return cfg;
}

/* Parsing must fail; err must start with prefix and contain want. */
static void
expect_error(const char *text, const char *prefix, const char *want)
{
	pgc_config *cfg;

	err[0] = '\0';
	cfg = pgc_config_parse(text, "t.ini", err, sizeof(err));
	if (cfg != NULL)
	{
		pgc_config_free(cfg);
		fail_msg("expected an error for: %s", text);
	}
	if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, want) == NULL)
		fail_msg("for %s\n  got:  %s\n  want: %s...%s", text, err, prefix, want);
}

static void
write_file(const char *path, const char *text)
{
	FILE	   *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
test_defaults(void **state)
{
	pgc_config *cfg = parse_ok("");

	assert_string_equal(cfg->path, "t.ini");
	assert_string_equal(cfg->listen_addr, "127.0.0.1");
	assert_int_equal(cfg->listen_port, 6432);
	assert_string_equal(cfg->unix_socket_dir, "/tmp");
	assert_int_equal(cfg->workers, 0);
	assert_int_equal(cfg->pool_mode, PGC_POOL_TRANSACTION);
	assert_int_equal(cfg->default_pool_size, 20);
	assert_int_equal(cfg->min_pool_size, 0);
	assert_int_equal(cfg->reserve_pool_size, 0);
	assert_true(cfg->reserve_pool_timeout == 5);
	assert_int_equal(cfg->max_client_conn, 100);
	assert_int_equal(cfg->max_db_connections, 0);
	assert_int_equal(cfg->max_user_connections, 0);
	assert_true(cfg->server_lifetime == 3600);
	assert_true(cfg->server_idle_timeout == 600);
	assert_true(cfg->server_connect_timeout == 15);
	assert_true(cfg->server_login_retry == 15);
	assert_true(cfg->client_idle_timeout == 0);
	assert_true(cfg->client_login_timeout == 60);
	assert_true(cfg->query_wait_timeout == 120);
	assert_true(cfg->idle_transaction_timeout == 0);
	assert_string_equal(cfg->server_reset_query, "DISCARD ALL");
	assert_int_equal(cfg->auth_type, PGC_AUTH_TRUST);
	assert_null(cfg->auth_file);
	assert_null(cfg->logfile);
	assert_null(cfg->pidfile);
	assert_null(cfg->admin_users);
	assert_int_equal(cfg->max_packet_size, 1073741823);
	assert_int_equal(cfg->log_connections, 1);
	assert_int_equal(cfg->log_disconnections, 1);
	assert_int_equal(cfg->log_pooler_errors, 1);
	assert_int_equal(cfg->verbose, 0);
	assert_int_equal(cfg->n_databases, 0);
	assert_int_equal(cfg->n_users, 0);
	assert_int_equal(cfg->n_auth, 0);
	assert_null(pgc_config_find_db(cfg, "x"));
	assert_null(pgc_config_find_user(cfg, "x"));
	assert_null(pgc_config_find_secret(cfg, "x"));
	pgc_config_free(cfg);
	pgc_config_free(NULL);
}

static void
test_all_keys(void **state)
{
	pgc_config *cfg = parse_ok(
		"; a comment\n"
		"# another comment\n"
		"\n"
		"  [ PgCarrier ]  \n"
		"listen_addr = 0.0.0.0, ::1\n"
		"listen_port=7000\n"
		"unix_socket_dir = /var/run/pgc\n"
		"workers = 8\n"
		"pool_mode = session\n"
		"default_pool_size = 30\n"
		"min_pool_size = 2\n"
		"reserve_pool_size = 3\n"
		"reserve_pool_timeout = 2.5\n"
		"max_client_conn = 5000\n"
		"max_db_connections = 40\n"
		"max_user_connections = 50\n"
		"server_lifetime = 1h\n"
		"server_idle_timeout = 10min\n"
		"server_connect_timeout = 500ms\n"
		"server_login_retry = 3s\n"
		"client_idle_timeout = 7\n"
		"client_login_timeout = 8\n"
		"query_wait_timeout = 0\n"
		"idle_transaction_timeout = 9\n"
		"server_reset_query = RESET ALL; SET x = 1\n"
		"auth_type = trust\n"
		"logfile = /var/log/pgc.log\n"
		"pidfile = /run/pgc.pid\n"
		"admin_users = alice, bob\n"
		"max_packet_size = 65536\n"
		"log_connections = off\n"
		"log_disconnections = no\n"
		"log_pooler_errors = false\n"
		"VERBOSE = 1\r\n");

	assert_string_equal(cfg->listen_addr, "0.0.0.0, ::1");
	assert_int_equal(cfg->listen_port, 7000);
	assert_string_equal(cfg->unix_socket_dir, "/var/run/pgc");
	assert_int_equal(cfg->workers, 8);
	assert_int_equal(cfg->pool_mode, PGC_POOL_SESSION);
	assert_int_equal(cfg->default_pool_size, 30);
	assert_int_equal(cfg->min_pool_size, 2);
	assert_int_equal(cfg->reserve_pool_size, 3);
	assert_true(cfg->reserve_pool_timeout == 2.5);
	assert_int_equal(cfg->max_client_conn, 5000);
	assert_int_equal(cfg->max_db_connections, 40);
	assert_int_equal(cfg->max_user_connections, 50);
	assert_true(cfg->server_lifetime == 3600);
	assert_true(cfg->server_idle_timeout == 600);
	assert_true(cfg->server_connect_timeout == 0.5);
	assert_true(cfg->server_login_retry == 3);
	assert_true(cfg->client_idle_timeout == 7);
	assert_true(cfg->client_login_timeout == 8);
	assert_true(cfg->query_wait_timeout == 0);
	assert_true(cfg->idle_transaction_timeout == 9);
	assert_string_equal(cfg->server_reset_query, "RESET ALL; SET x = 1");
	assert_int_equal(cfg->auth_type, PGC_AUTH_TRUST);
	assert_string_equal(cfg->logfile, "/var/log/pgc.log");
	assert_string_equal(cfg->pidfile, "/run/pgc.pid");
	assert_string_equal(cfg->admin_users, "alice, bob");
	assert_int_equal(cfg->max_packet_size, 65536);
	assert_int_equal(cfg->log_connections, 0);
	assert_int_equal(cfg->log_disconnections, 0);
	assert_int_equal(cfg->log_pooler_errors, 0);
	assert_int_equal(cfg->verbose, 1);
	pgc_config_free(cfg);
}

static void
test_empty_strings(void **state)
{
	pgc_config *cfg = parse_ok(
		"[pgcarrier]\n"
		"listen_addr =\n"
		"unix_socket_dir =   \n"
		"server_reset_query =\n"
		"logfile =\n");

	assert_null(cfg->listen_addr);
	assert_null(cfg->unix_socket_dir);
	assert_non_null(cfg->server_reset_query);
	assert_string_equal(cfg->server_reset_query, "");
	assert_null(cfg->logfile);
	pgc_config_free(cfg);
}

static void
test_pool_modes(void **state)
{
	static const char *const names[] = {"session", "transaction", "statement"};
	char		text[128];
	int			m;

	for (m = 0; m < 3; m++)
	{
		pgc_config *cfg;

		snprintf(text, sizeof(text), "[pgcarrier]\npool_mode = %s\n", names[m]);
		cfg = parse_ok(text);
		assert_int_equal(cfg->pool_mode, m);
		assert_string_equal(pgc_pool_mode_name(m), names[m]);
		pgc_config_free(cfg);
	}
	assert_string_equal(pgc_pool_mode_name(-1), "unknown");
	assert_string_equal(pgc_pool_mode_name(3), "unknown");
}

static void
test_time_units(void **state)
{
	static const struct
	{
		const char *text;
		double		secs;
	}			ok[] = {
		{"0", 0}, {"15", 15}, {"1.5", 1.5}, {".25", 0.25}, {"500ms", 0.5},
		{"2s", 2}, {"3min", 180}, {"1h", 3600}, {"0.5h", 1800},
		{"250 ms", 0.25}, {"1.", 1}, {"1000000000", 1e9},
	};
	static const char *const bad[] = {
		"-1", "abc", "5x", "1.5.2", "ms", "1 m", "1sec", "1e3", "inf", "nan",
		"0x10", "+5", "2000000000", "",
	};
	char		text[128];
	size_t		i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
	{
		pgc_config *cfg;

		snprintf(text, sizeof(text), "[pgcarrier]\nquery_wait_timeout = %s\n", ok[i].text);
		cfg = parse_ok(text);
		if (cfg->query_wait_timeout < ok[i].secs - 1e-9 ||
			cfg->query_wait_timeout > ok[i].secs + 1e-9)
			fail_msg("%s parsed as %g", ok[i].text, cfg->query_wait_timeout);
		pgc_config_free(cfg);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		char		want[64];

		snprintf(text, sizeof(text), "[pgcarrier]\nquery_wait_timeout = %s\n", bad[i]);
		snprintf(want, sizeof(want), "\"%s\" for query_wait_timeout", bad[i]);
		expect_error(text, "t.ini:2: ", want);
		assert_non_null(strstr(err, "ms, s, min or h"));
	}
}

static void
test_booleans(void **state)
{
	static const char *const yes[] = {"1", "on", "true", "yes", "ON", "True", "YES"};
	static const char *const no[] = {"0", "off", "false", "no", "Off", "FALSE", "No"};
	static const char *const bad[] = {"2", "y", "n", "enabled", "", "t"};
	char		text[128];
	size_t		i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
	{
		pgc_config *cfg;

		snprintf(text, sizeof(text), "[pgcarrier]\nverbose = %s\nlog_connections = %s\n",
				 yes[i], no[i]);
		cfg = parse_ok(text);
		assert_int_equal(cfg->verbose, 1);
		assert_int_equal(cfg->log_connections, 0);
		pgc_config_free(cfg);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		snprintf(text, sizeof(text), "\n[pgcarrier]\nlog_connections = %s\n", bad[i]);
		expect_error(text, "t.ini:3: ", "for log_connections: expected a boolean");
	}
}

static void
test_integers(void **state)
{
	pgc_config *cfg = parse_ok(
		"[pgcarrier]\nlisten_port = 65535\nworkers = 256\nmax_packet_size = 1073741823\n");

	assert_int_equal(cfg->listen_port, 65535);
	assert_int_equal(cfg->workers, 256);
	pgc_config_free(cfg);

	expect_error("[pgcarrier]\nlisten_port = 0\n", "t.ini:2: ",
				 "invalid value \"0\" for listen_port: expected an integer from 1 to 65535");
	expect_error("[pgcarrier]\nlisten_port = 65536\n", "t.ini:2: ", "listen_port");
	expect_error("[pgcarrier]\nlisten_port = 64x\n", "t.ini:2: ", "\"64x\"");
	expect_error("[pgcarrier]\nlisten_port = -5\n", "t.ini:2: ", "\"-5\"");
	expect_error("[pgcarrier]\nlisten_port = 1 2\n", "t.ini:2: ", "\"1 2\"");
	expect_error("[pgcarrier]\nworkers = 257\n", "t.ini:2: ", "from 0 to 256");
	expect_error("[pgcarrier]\ndefault_pool_size = -1\n", "t.ini:2: ", "default_pool_size");
	expect_error("[pgcarrier]\nmax_client_conn = 99999999999999999999\n", "t.ini:2: ",
				 "max_client_conn");
	expect_error("[pgcarrier]\nmax_packet_size = 4294967296\n", "t.ini:2: ", "max_packet_size");
	expect_error("[pgcarrier]\nmax_packet_size = 0\n", "t.ini:2: ", "max_packet_size");
	expect_error("[pgcarrier]\nmin_pool_size =\n", "t.ini:2: ", "\"\" for min_pool_size");
}

static void
test_databases(void **state)
{
	pgc_config *cfg = parse_ok(
		"[databases]\n"
		"app = host=db1 port=5433 dbname=appdb user=svc password=s3cret\n"
		"quoted = host='/var/run/postgresql' password='it\\'s a \\\\ pass' dbname = 'my db'\n"
		"limits = pool_size=5 min_pool_size=1 reserve_pool=2 max_db_connections=9 pool_mode=statement\n"
		"empty =\n"
		"emptyq = password='' host=\n"
		"* = host=fallback\n");
	const pgc_database *db;

	assert_int_equal(cfg->n_databases, 6);

	db = pgc_config_find_db(cfg, "app");
	assert_non_null(db);
	assert_string_equal(db->name, "app");
	assert_string_equal(db->host, "db1");
	assert_int_equal(db->port, 5433);
	assert_string_equal(db->dbname, "appdb");
	assert_string_equal(db->user, "svc");
	assert_string_equal(db->password, "s3cret");
	assert_int_equal(db->pool_size, -1);
	assert_int_equal(db->min_pool_size, -1);
	assert_int_equal(db->reserve_pool, -1);
	assert_int_equal(db->max_db_connections, -1);
	assert_int_equal(db->pool_mode, -1);
	assert_int_equal(db->line, 2);

	db = pgc_config_find_db(cfg, "quoted");
	assert_string_equal(db->host, "/var/run/postgresql");
	assert_string_equal(db->password, "it's a \\ pass");
	assert_string_equal(db->dbname, "my db");
	assert_int_equal(db->port, 5432);

	db = pgc_config_find_db(cfg, "limits");
	assert_int_equal(db->pool_size, 5);
	assert_int_equal(db->min_pool_size, 1);
	assert_int_equal(db->reserve_pool, 2);
	assert_int_equal(db->max_db_connections, 9);
	assert_int_equal(db->pool_mode, PGC_POOL_STATEMENT);
	assert_null(db->host);

	db = pgc_config_find_db(cfg, "empty");
	assert_string_equal(db->name, "empty");
	assert_null(db->host);
	assert_null(db->dbname);
	assert_null(db->user);
	assert_null(db->password);
	assert_int_equal(db->port, 5432);
	assert_int_equal(db->pool_size, -1);

	db = pgc_config_find_db(cfg, "emptyq");
	assert_null(db->password);
	assert_null(db->host);

	/* fallback */
	db = pgc_config_find_db(cfg, "nosuchdb");
	assert_non_null(db);
	assert_string_equal(db->name, "*");
	assert_string_equal(db->host, "fallback");
	db = pgc_config_find_db(cfg, "*");
	assert_string_equal(db->name, "*");
	/* names are case-sensitive */
	assert_string_equal(pgc_config_find_db(cfg, "APP")->name, "*");
	pgc_config_free(cfg);

	/* without "*" an unknown name finds nothing; "*" before exact still loses */
	cfg = parse_ok("[databases]\n* = host=a\nx = host=b\n");
	assert_string_equal(pgc_config_find_db(cfg, "x")->host, "b");
	assert_string_equal(pgc_config_find_db(cfg, "y")->host, "a");
	pgc_config_free(cfg);
	cfg = parse_ok("[databases]\nx = host=b\n");
	assert_null(pgc_config_find_db(cfg, "y"));
	pgc_config_free(cfg);
}

static void
test_many_databases(void **state)
{
	char	   *text = malloc(64 * 1000 + 32);
	char	   *p = text;
	pgc_config *cfg;
	int			i;

	assert_non_null(text);
	p += sprintf(p, "[databases]\n");
	for (i = 0; i < 1000; i++)
		p += sprintf(p, "db%d = port=%d\n", i, 1000 + i);
	cfg = parse_ok(text);
	assert_int_equal(cfg->n_databases, 1000);
	assert_int_equal(pgc_config_find_db(cfg, "db777")->port, 1777);
	pgc_config_free(cfg);
	free(text);
}

static void
test_users(void **state)
{
	pgc_config *cfg = parse_ok(
		"[Users]\n"
		"alice = pool_mode=session max_user_connections=3\n"
		"bob = max_user_connections = 7\n"
		"carol =\n");
	const pgc_user *u;

	assert_int_equal(cfg->n_users, 3);
	u = pgc_config_find_user(cfg, "alice");
	assert_non_null(u);
	assert_int_equal(u->pool_mode, PGC_POOL_SESSION);
	assert_int_equal(u->max_user_connections, 3);
	assert_int_equal(u->line, 2);
	u = pgc_config_find_user(cfg, "bob");
	assert_int_equal(u->pool_mode, -1);
	assert_int_equal(u->max_user_connections, 7);
	u = pgc_config_find_user(cfg, "carol");
	assert_int_equal(u->pool_mode, -1);
	assert_int_equal(u->max_user_connections, -1);
	assert_null(pgc_config_find_user(cfg, "dave"));
	pgc_config_free(cfg);

	expect_error("[users]\nalice = host=x\n", "t.ini:2: ", "unknown key \"host\"");
	expect_error("[users]\nalice = pool_mode=bogus\n", "t.ini:2: ",
				 "invalid value \"bogus\" for pool_mode");
	expect_error("[users]\nalice = max_user_connections=-1\n", "t.ini:2: ",
				 "max_user_connections");
	expect_error("[users]\nalice =\n\nalice = pool_mode=session\n", "t.ini:4: ",
				 "duplicate user \"alice\"");
}

static void
test_sections_and_syntax_errors(void **state)
{
	expect_error("[pgcarrier]\n[bogus]\n", "t.ini:2: ", "unknown section [bogus]");
	expect_error("[pgcarrier\n", "t.ini:1: ", "malformed section header");
	expect_error("; comment\nlisten_port = 1\n", "t.ini:2: ",
				 "\"listen_port\" is outside any section");
	expect_error("[pgcarrier]\nfoo = 1\n", "t.ini:2: ", "unknown key \"foo\"");
	expect_error("[pgcarrier]\nlisten_port\n", "t.ini:2: ", "expected \"key = value\"");
	expect_error("[databases]\nappdb\n", "t.ini:2: ", "expected \"key = value\"");
	expect_error("[pgcarrier]\n= 5\n", "t.ini:2: ", "missing key");
	expect_error("[pgcarrier]\nworkers = 1\nlisten_port = 1\nWorkers = 2\n", "t.ini:4: ",
				 "duplicate key \"workers\" (already set on line 2)");
	expect_error("[pgcarrier]\npool_mode = txn\n", "t.ini:2: ",
				 "invalid value \"txn\" for pool_mode: expected session, transaction or statement");
	expect_error("[pgcarrier]\nauth_type = kerberos\n", "t.ini:2: ",
				 "invalid value \"kerberos\" for auth_type: expected trust, password, md5, "
				 "scram-sha-256, cert, hba or any");
	expect_error("[pgcarrier]\nauth_type = cert\n", "t.ini:2: ", "needs TLS with clients");
	expect_error("[pgcarrier]\nclient_tls_sslmode = maybe\n", "t.ini:2: ",
				 "invalid value \"maybe\" for client_tls_sslmode: expected disable, allow, prefer, require, "
				 "verify-ca or verify-full");
	expect_error("[pgcarrier]\nclient_tls_sslmode = require\n", "t.ini: ",
				 "client_tls_sslmode = require needs client_tls_cert_file and client_tls_key_file");
	expect_error("[pgcarrier]\nserver_tls_sslmode = verify-full\n", "t.ini: ",
				 "server_tls_sslmode = verify-full needs server_tls_ca_file");
	expect_error("[pgcarrier]\nserver_tls_sslmode = require\nserver_tls_protocols = tlsv9\n", "t.ini: ",
				 "invalid value \"tlsv9\" for server_tls_protocols");
	expect_error("[pgcarrier]\nclient_tls_sslmode = prefer\nclient_tls_cert_file = /nonexistent.crt\n"
				 "client_tls_key_file = /nonexistent.key\n", "t.ini: ",
				 "could not load client_tls_cert_file \"/nonexistent.crt\"");
	expect_error("[pgcarrier]\nauth_type = hba\n", "t.ini:2: ", "auth_type = hba needs auth_hba_file");
}

static void
test_database_errors(void **state)
{
	expect_error("[databases]\na = host=x\nb =\na = port=1\n", "t.ini:4: ",
				 "duplicate database \"a\" (already defined on line 2)");
	expect_error("[databases]\na = hostx\n", "t.ini:2: ", "\"hostx\": missing '='");
	expect_error("[databases]\na = host='x\n", "t.ini:2: ", "unterminated quote");
	expect_error("[databases]\na = host='x'y\n", "t.ini:2: ", "after the closing quote");
	expect_error("[databases]\na = =x\n", "t.ini:2: ", "missing key before '='");
	expect_error("[databases]\na = hots=x\n", "t.ini:2: ", "unknown key \"hots\"");
	expect_error("[databases]\na = host=x host=y\n", "t.ini:2: ", "duplicate key \"host\"");
	expect_error("[databases]\na = port=abc\n", "t.ini:2: ",
				 "database \"a\": invalid value \"abc\" for port: expected an integer from 1 to 65535");
	expect_error("[databases]\na = port=70000\n", "t.ini:2: ", "\"70000\" for port");
	expect_error("[databases]\na = pool_size=-1\n", "t.ini:2: ", "pool_size");
	expect_error("[databases]\na = pool_mode=sess\n", "t.ini:2: ", "\"sess\" for pool_mode");
	expect_error("[databases]\na = max_db_connections=1.5\n", "t.ini:2: ", "max_db_connections");
}

/*
 * Comments after values: a ';' or '#' that follows whitespace, outside
 * quotes, begins one, in every section. The README's minimal config has
 * "workers = 0   ; 0 = one per core".
 */
static void
test_trailing_comments(void **state)
{
	pgc_config *cfg = parse_ok(
		"[pgcarrier]   ; the main section\n"
		"workers = 0                  ; 0 = one per core\n"
		"logfile = x.log ; default stderr\n"
		"pidfile = x.pid\t# tab, then a comment\n"
		"listen_port = 7000 # port\n"
		"verbose = on ; yes\n"
		"query_wait_timeout = 2s ; two seconds\n"
		"pool_mode = session ;\n"
		"unix_socket_dir = ; none: no Unix socket\n"
		"server_reset_query = RESET ALL; SET x = 1   ; resets both\n"
		"auth_query = SELECT u, p FROM t WHERE x = ' ; ' AND \"a #b\" = $1 ; comment\n"
		"admin_users = a;b#c\n"
		"[databases]  # the databases\n"
		"appdb = host=/run/pg port=5433 dbname=app ; the app, port=1 is not read\n"
		"q = host=x password='a ; b # c' # a comment\n"
		"w = password=ab#c;d host=y\n"
		"semi = host=x;y\n"
		"later = ; nothing yet\n"
		"emptyhost = host= ; none\n"
		"[users] ; per user\n"
		"alice = pool_mode=session ; alice's own\n"
		"bob = max_user_connections=3 #three\n");
	const pgc_database *db;

	assert_int_equal(cfg->workers, 0);
	assert_string_equal(cfg->logfile, "x.log");
	assert_string_equal(cfg->pidfile, "x.pid");
	assert_int_equal(cfg->listen_port, 7000);
	assert_int_equal(cfg->verbose, 1);
	assert_true(cfg->query_wait_timeout == 2);
	assert_int_equal(cfg->pool_mode, PGC_POOL_SESSION);
	assert_null(cfg->unix_socket_dir);
	assert_string_equal(cfg->server_reset_query, "RESET ALL; SET x = 1");
	assert_string_equal(cfg->auth_query, "SELECT u, p FROM t WHERE x = ' ; ' AND \"a #b\" = $1");
	/* without whitespace before them, ';' and '#' are part of the value */
	assert_string_equal(cfg->admin_users, "a;b#c");

	db = pgc_config_find_db(cfg, "appdb");
	assert_string_equal(db->host, "/run/pg");
	assert_int_equal(db->port, 5433);
	assert_string_equal(db->dbname, "app");
	db = pgc_config_find_db(cfg, "q");
	assert_string_equal(db->password, "a ; b # c");
	db = pgc_config_find_db(cfg, "w");
	assert_string_equal(db->password, "ab#c;d");
	assert_string_equal(db->host, "y");
	assert_string_equal(pgc_config_find_db(cfg, "semi")->host, "x;y");
	db = pgc_config_find_db(cfg, "later");
	assert_null(db->host);
	assert_null(db->dbname);
	assert_null(pgc_config_find_db(cfg, "emptyhost")->host);
	assert_int_equal(pgc_config_find_user(cfg, "alice")->pool_mode, PGC_POOL_SESSION);
	assert_int_equal(pgc_config_find_user(cfg, "bob")->max_user_connections, 3);
	pgc_config_free(cfg);
}

/* A [pgcarrier] value that is one quoted string loses its quotes. */
static void
test_quoted_values(void **state)
{
	pgc_config *cfg = parse_ok(
		"[pgcarrier]\n"
		"logfile = \"/tmp/a ; b.log\" ; the file has a ';' in its name\n"
		"pidfile = '/tmp/it''s.pid'\n"
		"admin_users = \"/tmp/bob's\"\n"
		"listen_addr = \"say \"\"hi\"\"\"\t#doubled quotes\n"
		"unix_socket_dir = \"\"   ; empty: none\n"
		"server_reset_query = '' ; empty: no reset\n"
		"listen_port = \"7001\"\n");

	assert_string_equal(cfg->logfile, "/tmp/a ; b.log");
	assert_string_equal(cfg->pidfile, "/tmp/it's.pid");
	assert_string_equal(cfg->admin_users, "/tmp/bob's");
	assert_string_equal(cfg->listen_addr, "say \"hi\"");
	assert_null(cfg->unix_socket_dir);
	assert_string_equal(cfg->server_reset_query, "");
	assert_int_equal(cfg->listen_port, 7001);
	pgc_config_free(cfg);
}

/* Nothing that looks like a comment may silently become part of a value. */
static void
test_comment_errors(void **state)
{
	expect_error("[pgcarrier]\nlogfile = /tmp/bob's.log ; default stderr\n", "t.ini:2: ",
				 "unterminated ' quote in the value for logfile (to keep it as it is, "
				 "put the whole value in double quotes)");
	expect_error("[pgcarrier]\nauth_query = SELECT \"x FROM t # c\n", "t.ini:2: ",
				 "unterminated \" quote in the value for auth_query");
	expect_error("[pgcarrier]\nlogfile = \"x.log ; c\n", "t.ini:2: ",
				 "unterminated quoted value for logfile");
	expect_error("[pgcarrier]\nlogfile = \"x.log\" y\n", "t.ini:2: ",
				 "unexpected text after the quoted value for logfile");
	expect_error("[pgcarrier]\nlogfile = 'x.log';c\n", "t.ini:2: ",
				 "(a comment needs whitespace before its ';' or '#')");
	expect_error("[pgcarrier]\nworkers = 0;one per core\n", "t.ini:2: ",
				 "invalid value \"0;one per core\" for workers");
	expect_error("[pgcarrier];x\n", "t.ini:1: ", "unexpected text after the section header");
	expect_error("[pgcarrier] x\n", "t.ini:1: ", "unexpected text after the section header");
	expect_error("[pgcarrier]\nlisten_port ; = 5\n", "t.ini:2: ", "expected \"key = value\"");
	expect_error("[pgcarrier]\nbogus = 'x ; y\n", "t.ini:2: ", "unknown key \"bogus\"");
	/* in a connection string a quote opens only at the start of a value */
	expect_error("[databases]\na = host='x ; y\n", "t.ini:2: ", "unterminated quote");
	expect_error("[databases]\na = host='x';y\n", "t.ini:2: ", "after the closing quote");
	expect_error("[databases]\na ; = host=x\n", "t.ini:2: ", "expected \"key = value\"");
	expect_error("[databases]\na = host ;x\n", "t.ini:2: ", "\"host\": missing '='");
	expect_error("[users]\nalice = pool_mode=session;x\n", "t.ini:2: ",
				 "invalid value \"session;x\" for pool_mode");
}

/* Whatever goes wrong on a line with a password, the secret stays out of err. */
static void
test_no_password_leak(void **state)
{
	static const char *const cases[] = {
		"[databases]\na = password='Hunter2Secret\n",
		"[databases]\na = password='Hunter2Secret'x\n",
		"[databases]\na = password=Hunter2 Secret\n",
		"[databases]\na = password=Hunter2 Secret=1\n",
		"[databases]\na = password=Hunter2 port=Secret\n",
		"[databases]\na = password='Hunter2' Secret'\n",
		"[databases]\na = password=Hunter2Secret password=Hunter2Secret\n",
		"[databases]\na = user=u password=Hunter2Secret bogus\n",
		"[databases]\na = password = Hunter2Secret pool_mode=Secret\n",
	};
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		expect_error(cases[i], "t.ini:2: ", "database \"a\"");
		if (strstr(err, "Hunter2") || strstr(err, "Secret"))
			fail_msg("secret leaked: %s", err);
	}
	expect_error(cases[0], "t.ini:2: ", "password=... is malformed: unterminated quote");
}

static void
test_auth_parse(void **state)
{
	pgc_config *cfg = parse_ok("");

	assert_int_equal(pgc_config_parse_auth(cfg,
										   "; comment\n"
										   "# comment\n"
										   "\n"
										   "\"alice\" \"md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n"
										   "  \"bo\"\"b\"\t\"pa\"\"ss\"\"\"  \r\n"
										   "\"carol\" \"SCRAM-SHA-256$4096:abc$def:ghi\"\n"
										   "\"dave\" \"\"",
										   "userlist.txt", err, sizeof(err)), 0);
	assert_int_equal(cfg->n_auth, 4);
	assert_string_equal(pgc_config_find_secret(cfg, "alice"), "md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_string_equal(pgc_config_find_secret(cfg, "bo\"b"), "pa\"ss\"");
	assert_string_equal(pgc_config_find_secret(cfg, "carol"), "SCRAM-SHA-256$4096:abc$def:ghi");
	assert_null(pgc_config_find_secret(cfg, "bob"));
	assert_string_equal(pgc_config_find_secret(cfg, "dave"), "");

	/* a second parse replaces the list */
	assert_int_equal(pgc_config_parse_auth(cfg, "\"eve\" \"x\"\n", "u2", err, sizeof(err)), 0);
	assert_int_equal(cfg->n_auth, 1);
	assert_null(pgc_config_find_secret(cfg, "alice"));
	assert_string_equal(pgc_config_find_secret(cfg, "eve"), "x");

	/* a failed parse leaves it as it was */
	assert_int_equal(pgc_config_parse_auth(cfg, "\"a\" \"b\"\nbad\n", "u3", err, sizeof(err)), -1);
	assert_int_equal(cfg->n_auth, 1);
	assert_string_equal(pgc_config_find_secret(cfg, "eve"), "x");
	pgc_config_free(cfg);
}

static void
test_auth_errors(void **state)
{
	static const struct
	{
		const char *text;
		const char *want;
	}			cases[] = {
		{"\"a\" \"TopSecret1\"\nalice \"TopSecret1\"\n", "authf:2: expected a double-quoted user name"},
		{"\"alice \"TopSecret1\"\n", "authf:1: expected a double-quoted secret after the user name"},
		{"\"alice\" TopSecret1\n", "authf:1: expected a double-quoted secret after the user name"},
		{"\"alice\"\n", "authf:1: expected a double-quoted secret"},
		{"\"alice\" \"TopSecret1\n", "authf:1: unterminated secret"},
		{"\"alice\" \"TopSecret1\" junk\n", "authf:1: unexpected text after the secret"},
		{"\"\" \"TopSecret1\"\n", "authf:1: empty user name"},
		{"\n\n\"alice\" \"TopSecret1\"\n\"alice\" \"TopSecret1\"\n", "authf:4: duplicate user \"alice\""},
		{"\"alic", "authf:1: unterminated user name"},
	};
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		pgc_config *cfg = parse_ok("");

		err[0] = '\0';
		assert_int_equal(pgc_config_parse_auth(cfg, cases[i].text, "authf", err, sizeof(err)), -1);
		if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
		assert_null(strstr(err, "TopSecret1"));
		assert_int_equal(cfg->n_auth, 0);
		pgc_config_free(cfg);
	}
}

static void
test_small_err_buffer(void **state)
{
	char		small[8];
	pgc_config *cfg;

	cfg = pgc_config_parse("[nope]\n", "a-rather-long-file-name.ini", small, sizeof(small));
	assert_null(cfg);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	cfg = pgc_config_parse("[nope]\n", "t.ini", NULL, 0);
	assert_null(cfg);
}

static void
test_load_file(void **state)
{
	char		dir[] = "/tmp/pgc_test_config_XXXXXX";
	char		ini[128],
				sub[128],
				auth[160],
				want[512];
	pgc_config *cfg;

	assert_non_null(mkdtemp(dir));
	snprintf(ini, sizeof(ini), "%s/pgcarrier.ini", dir);
	snprintf(sub, sizeof(sub), "%s/etc", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(auth, sizeof(auth), "%s/etc/userlist.txt", dir);

	write_file(auth, "\"alice\" \"secret1\"\n\"bob\" \"md5bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"\n");
	write_file(ini,
			   "[pgcarrier]\n"
			   "listen_port = 6555\n"
			   "auth_file = etc/userlist.txt\n"
			   "[databases]\n"
			   "* = host=/var/run/postgresql\n");

	cfg = pgc_config_load(ini, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("%s", err);
	assert_string_equal(cfg->path, ini);
	assert_int_equal(cfg->listen_port, 6555);
	assert_string_equal(cfg->auth_file, "etc/userlist.txt");
	assert_int_equal(cfg->n_auth, 2);
	assert_string_equal(pgc_config_find_secret(cfg, "alice"), "secret1");
	assert_string_equal(pgc_config_find_db(cfg, "x")->host, "/var/run/postgresql");
	pgc_config_free(cfg);

	/* an error inside the auth file is reported against the auth file */
	write_file(auth, "\"alice\" \"secret1\"\n\"bob\" secret2\n");
	assert_null(pgc_config_load(ini, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2: expected a double-quoted secret", auth);
	assert_int_equal(strncmp(err, want, strlen(want)), 0);
	assert_null(strstr(err, "secret2"));

	/* a missing auth file is reported at the auth_file line of the INI */
	assert_int_equal(unlink(auth), 0);
	assert_null(pgc_config_load(ini, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:3: cannot read auth_file \"%s\"", ini, auth);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got %s", err);

	/* errors in the INI itself carry the INI path */
	write_file(ini, "[pgcarrier]\n\nworkers = many\n");
	assert_null(pgc_config_load(ini, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:3: invalid value \"many\" for workers", ini);
	assert_int_equal(strncmp(err, want, strlen(want)), 0);

	/* a missing INI file */
	assert_int_equal(unlink(ini), 0);
	assert_null(pgc_config_load(ini, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot read", ini);
	assert_int_equal(strncmp(err, want, strlen(want)), 0);

	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* pgc_config_parse reads a relative auth_file from the current directory. */
static void
test_parse_auth_file_cwd(void **state)
{
	char		dir[] = "/tmp/pgc_test_config_XXXXXX";
	char		old[4096];
	pgc_config *cfg;

	assert_non_null(getcwd(old, sizeof(old)));
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chdir(dir), 0);
	write_file("users.txt", "\"u\" \"p\"\n");
	cfg = pgc_config_parse("[pgcarrier]\nauth_file = users.txt\n", "mem", err, sizeof(err));
	if (cfg == NULL)
		fail_msg("%s", err);
	assert_string_equal(pgc_config_find_secret(cfg, "u"), "p");
	pgc_config_free(cfg);

	/* also: pgc_config_load of a bare file name, relative to the cwd */
	write_file("p.ini", "[pgcarrier]\nauth_file = users.txt\n");
	cfg = pgc_config_load("p.ini", err, sizeof(err));
	if (cfg == NULL)
		fail_msg("%s", err);
	assert_int_equal(cfg->n_auth, 1);
	pgc_config_free(cfg);

	assert_int_equal(unlink("users.txt"), 0);
	assert_int_equal(unlink("p.ini"), 0);
	assert_int_equal(chdir(old), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* The warning that names key, or NULL. */
static const char *
warning_for(const pgc_config *cfg, const char *key)
{
	char		want[128];

	snprintf(want, sizeof(want), ": %s: ", key);
	for (int i = 0; i < cfg->n_warnings; i++)
		if (strstr(cfg->warnings[i], want))
			return cfg->warnings[i];
	return NULL;
}

/* A [pgbouncer] file is read as PgBouncer reads it (config.h). */
static void
test_pgbouncer_dialect(void **state)
{
	pgc_config *cfg;

	/* the [databases] section first, as PgBouncer's examples have it */
	cfg = parse_ok("[databases]\n"
				   "appdb = host=127.0.0.1 dbname=app password='it''s ; # x' user=u\n"
				   "'odd name' = host=/tmp\n"
				   "\"quoted \"\"db\"\"\" = host=/tmp\n"
				   "\n"
				   "[pgbouncer]\n"
				   "  ; a comment line, after blanks\n"
				   "# another\n"
				   "logfile = /var/log/pgb ; not a comment.log\n"
				   "server_reset_query = DISCARD ALL # still the query\n"
				   "auth_query = SELECT 'x ; y'\n"
				   "admin_users = \"quoted\"\n");
	assert_int_equal(cfg->dialect, PGC_DIALECT_PGBOUNCER);
	assert_string_equal(cfg->logfile, "/var/log/pgb ; not a comment.log");
	assert_string_equal(cfg->server_reset_query, "DISCARD ALL # still the query");
	assert_string_equal(cfg->auth_query, "SELECT 'x ; y'");
	assert_string_equal(cfg->admin_users, "\"quoted\"");	/* PgBouncer keeps quotes as they are */
	assert_int_equal(cfg->n_databases, 3);
	assert_string_equal(cfg->databases[0].password, "it's ; # x");
	assert_string_equal(cfg->databases[1].name, "odd name");
	assert_string_equal(cfg->databases[2].name, "quoted \"db\"");
	/* PgBouncer's defaults where they change what clients get or who logs in */
	assert_int_equal(cfg->pool_mode, PGC_POOL_SESSION);
	assert_int_equal(cfg->auth_type, PGC_AUTH_MD5);
	assert_null(cfg->listen_addr);
	assert_int_equal(cfg->server_tls_sslmode, PGC_SSLMODE_PREFER);
	assert_non_null(strstr(cfg->auth_query, "x ; y"));
	pgc_config_free(cfg);

	cfg = parse_ok("[pgbouncer]\nlisten_port = 7000\n");
	assert_non_null(strstr(cfg->auth_query, "valuntil"));	/* expired passwords give no secret */
	assert_int_equal(cfg->n_warnings, 0);
	pgc_config_free(cfg);

	/* a backslash is an ordinary character in PgBouncer's connection strings */
	cfg = parse_ok("[pgbouncer]\n[databases]\nd = password='a\\b' host=/tmp\n");
	assert_string_equal(cfg->databases[0].password, "a\\b");
	pgc_config_free(cfg);

	/* a section header may be followed by a comment, without a blank */
	cfg = parse_ok("[pgbouncer];main\n[databases]#dbs\nd = host=/tmp\n");
	assert_int_equal(cfg->n_databases, 1);
	pgc_config_free(cfg);

	/* one main section per configuration */
	expect_error("[pgcarrier]\nworkers = 1\n[pgbouncer]\n", "t.ini:3: ", "not both");
	/* pgcarrier files keep pgcarrier's rules and defaults */
	cfg = parse_ok("[pgcarrier]\nlogfile = /tmp/a.log ; comment\n");
	assert_int_equal(cfg->dialect, PGC_DIALECT_PGCARRIER);
	assert_string_equal(cfg->logfile, "/tmp/a.log");
	assert_int_equal(cfg->pool_mode, PGC_POOL_TRANSACTION);
	pgc_config_free(cfg);
	expect_error("[pgbouncer]\n[databases]\nd = host=a,b\n", "t.ini:3: ", "a list of hosts is not supported");
}

static void
test_compat_keys(void **state)
{
	pgc_config *cfg = parse_ok("[pgbouncer]\n"
							   "ignore_startup_parameters = extra_float_digits, options\n"
							   "track_extra_parameters = IntervalStyle\n"
							   "application_name_add_host = 1\n"
							   "query_timeout = 2.5\n"
							   "cancel_wait_timeout = 3\n"
							   "server_check_query = select 1\n"
							   "server_check_delay = 0\n"
							   "server_round_robin = 1\n"
							   "server_reset_query_always = 1\n"
							   "server_fast_close = 1\n"
							   "listen_backlog = 77\n"
							   "so_reuseport = 1\n"
							   "tcp_defer_accept = 0\n"
							   "tcp_socket_buffer = 65536\n"
							   "tcp_keepalive = 0\n"
							   "tcp_keepcnt = 3\n"
							   "tcp_keepidle = 30\n"
							   "tcp_keepintvl = 5\n"
							   "tcp_user_timeout = 9000\n"
							   "unix_socket_mode = 0770\n"
							   "unix_socket_group = postgres\n"
							   "syslog = 1\n"
							   "syslog_ident = pgb\n"
							   "syslog_facility = local3\n"
							   "verbose = 2\n"
							   "max_packet_size = 2147483647\n"
							   "auth_type = any\n"
							   "auth_dbname = authdb\n"
							   "[databases]\n"
							   "authdb = host=/tmp user=x\n"
							   "d = host=/tmp auth_dbname=authdb reserve_pool_size=3 user=y\n");

	assert_string_equal(cfg->ignore_startup_parameters, "extra_float_digits, options");
	assert_string_equal(cfg->track_extra_parameters, "IntervalStyle");
	assert_int_equal(cfg->application_name_add_host, 1);
	assert_true(cfg->query_timeout == 2.5);
	assert_true(cfg->cancel_wait_timeout == 3);
	assert_string_equal(cfg->server_check_query, "select 1");
	assert_true(cfg->server_check_delay == 0);
	assert_int_equal(cfg->server_round_robin, 1);
	assert_int_equal(cfg->server_reset_query_always, 1);
	assert_int_equal(cfg->server_fast_close, 1);
	assert_int_equal(cfg->listen_backlog, 77);
	assert_int_equal(cfg->so_reuseport, 1);
	assert_int_equal(cfg->tcp_socket_buffer, 65536);
	assert_int_equal(cfg->tcp_keepalive, 0);
	assert_int_equal(cfg->tcp_keepcnt, 3);
	assert_int_equal(cfg->tcp_keepidle, 30);
	assert_int_equal(cfg->tcp_keepintvl, 5);
	assert_int_equal(cfg->tcp_user_timeout, 9000);
	assert_int_equal(cfg->unix_socket_mode, 0770);
	assert_string_equal(cfg->unix_socket_group, "postgres");
	assert_int_equal(cfg->syslog, 1);
	assert_string_equal(cfg->syslog_ident, "pgb");
	assert_int_equal(cfg->syslog_facility, 19 << 3);	/* LOG_LOCAL3 */
	assert_int_equal(cfg->verbose, 2);
	assert_int_equal(cfg->max_packet_size, 1073741823);
	assert_non_null(warning_for(cfg, "max_packet_size"));
	assert_int_equal(cfg->auth_type, PGC_AUTH_ANY);
	assert_string_equal(cfg->auth_dbname, "authdb");
	assert_string_equal(cfg->databases[1].auth_dbname, "authdb");
	assert_int_equal(cfg->databases[1].reserve_pool, 3);
	assert_int_equal(cfg->n_warnings, 1);
	pgc_config_free(cfg);

	/* defaults */
	cfg = parse_ok("");
	assert_string_equal(cfg->server_check_query, "");	/* PgBouncer's <empty> */
	assert_true(cfg->server_check_delay == 30);
	assert_true(cfg->cancel_wait_timeout == 10);
	assert_int_equal(cfg->tcp_keepalive, 1);
	assert_int_equal(cfg->listen_backlog, 4096);
	assert_int_equal(cfg->unix_socket_mode, 0777);
	assert_string_equal(cfg->syslog_ident, "pgcarrier");
	assert_string_equal(cfg->syslog_socket, "/dev/log");
	pgc_config_free(cfg);

	cfg = parse_ok("[pgcarrier]\nserver_check_query =\nunix_socket_mode = 511\n");
	assert_null(cfg->server_check_query);		/* "" turns the check off */
	assert_int_equal(cfg->unix_socket_mode, 0777);
	pgc_config_free(cfg);
	cfg = parse_ok("[pgbouncer]\nserver_check_query = <empty>\n");
	assert_string_equal(cfg->server_check_query, "");
	pgc_config_free(cfg);

	expect_error("[pgcarrier]\nunix_socket_mode = 0778\n", "t.ini:2: ", "file mode");
	expect_error("[pgcarrier]\nsyslog_facility = kern\n", "t.ini:2: ", "local0 to local7");
	expect_error("[pgcarrier]\nverbose = 4\n", "t.ini:2: ", "level from 0 to 3");
	expect_error("[pgbouncer]\nauth_type = pam\n", "t.ini:2: ", "auth_type = pam is not supported");
	expect_error("[pgbouncer]\nauth_type = ldap\n", "t.ini:2: ", "auth_type = ldap is not supported");
	expect_error("[pgbouncer]\ndisable_pqexec = 1\n", "t.ini:2: ", "disable_pqexec = 1 is not supported");
	expect_error("[pgbouncer]\nauth_dbname = nope\n[databases]\nd = host=/tmp\n", "t.ini:2: ",
				 "auth_dbname = nope: no such database");
	expect_error("[pgbouncer]\n[databases]\nd = host=/tmp auth_dbname=nope\n", "t.ini: ",
				 "auth_dbname=nope: no such database");
}

/* Keys with no meaning here: accepted, one warning each, naming the key. */
static void
test_ignored_keys_warn(void **state)
{
	pgc_config *cfg = parse_ok("[pgbouncer]\n"
							   "pkt_buf = 8192\n"
							   "peer_id = 0\n"
							   "dns_max_ttl = 15\n"
							   "disable_pqexec = 0\n"
							   "max_prepared_statements = 0\n"
							   "auth_type = any\n"
							   "[databases]\n"
							   "a = host=/tmp connect_query='SELECT 1' client_encoding=UTF8\n"
							   "b = host=/tmp connect_query='SELECT 2'\n"
							   "[users]\n"
							   "u = pool_size=3 pool_mode=session\n"
							   "[peers]\n"
							   "1 = host=/tmp/p1\n");
	static const char *const keys[] = {
		"pkt_buf", "peer_id", "dns_max_ttl", "disable_pqexec", "max_prepared_statements",
		"connect_query", "client_encoding", "pool_size", "[peers]", "auth_type"
	};

	assert_int_equal(cfg->n_warnings, (int) (sizeof(keys) / sizeof(keys[0])));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (warning_for(cfg, keys[i]) == NULL)
			fail_msg("no warning names %s", keys[i]);
	assert_non_null(strstr(warning_for(cfg, "pkt_buf"), "t.ini:2: pkt_buf: has no effect"));
	assert_non_null(strstr(warning_for(cfg, "connect_query"), "t.ini:9: "));	/* the first, once */
	assert_int_equal(cfg->max_prepared_statements, 200);
	assert_int_equal(cfg->users[0].pool_mode, PGC_POOL_SESSION);
	pgc_config_free(cfg);
}

/* %include: in both dialects, relative to the including file, nested, never endless. */
static void
test_include(void **state)
{
	char		dir[] = "/tmp/pgc-include-XXXXXX";
	char		path[256], sub[256];
	pgc_config *cfg;

	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/conf.d", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/conf.d/dbs.ini", dir);
	write_file(path, "appdb = host=/tmp dbname=app\n%include more.ini\n");
	snprintf(path, sizeof(path), "%s/conf.d/more.ini", dir);
	write_file(path, "[pgbouncer]\nlisten_port = 7001\n");
	snprintf(path, sizeof(path), "%s/main.ini", dir);
	write_file(path, "[databases]\nother = host=/tmp\n  %include conf.d/dbs.ini\n");
	cfg = pgc_config_load(path, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("%s", err);
	/* [pgbouncer] in an included file makes it a PgBouncer configuration */
	assert_int_equal(cfg->dialect, PGC_DIALECT_PGBOUNCER);
	assert_int_equal(cfg->listen_port, 7001);
	assert_int_equal(cfg->n_databases, 2);	/* the included lines went on in [databases] */
	pgc_config_free(cfg);

	/* an error in an included file names that file and line */
	snprintf(path, sizeof(path), "%s/conf.d/more.ini", dir);
	write_file(path, "[pgbouncer]\nlisten_port = x\n");
	snprintf(path, sizeof(path), "%s/main.ini", dir);
	cfg = pgc_config_load(path, err, sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "conf.d/more.ini:2: invalid value \"x\" for listen_port"));

	/* a file that includes itself */
	write_file(path, "[pgcarrier]\n%include main.ini\n");
	cfg = pgc_config_load(path, err, sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "nested more than 10 deep"));
	/* a missing one */
	write_file(path, "[pgcarrier]\n%include nothere.ini\n");
	cfg = pgc_config_load(path, err, sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "main.ini:2: cannot read %include file"));

	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_empty_strings),
		cmocka_unit_test(test_pool_modes),
		cmocka_unit_test(test_time_units),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_databases),
		cmocka_unit_test(test_many_databases),
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_sections_and_syntax_errors),
		cmocka_unit_test(test_database_errors),
		cmocka_unit_test(test_trailing_comments),
		cmocka_unit_test(test_quoted_values),
		cmocka_unit_test(test_comment_errors),
		cmocka_unit_test(test_no_password_leak),
		cmocka_unit_test(test_auth_parse),
		cmocka_unit_test(test_auth_errors),
		cmocka_unit_test(test_small_err_buffer),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_parse_auth_file_cwd),
		cmocka_unit_test(test_pgbouncer_dialect),
		cmocka_unit_test(test_compat_keys),
		cmocka_unit_test(test_ignored_keys_warn),
		cmocka_unit_test(test_include),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
