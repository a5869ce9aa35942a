/*
 * test_hba.c - unit tests for src/engine/hba.c.
 *
 * Each test writes its pg_hba.conf (and @files) into a fresh temporary
 * directory, loads it, and asks the matcher about connections.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hba.h"

/* ------------------------------------------------------------ fixtures */

static char tmpdir[256];
static char hba_path[512];

static int
setup(void **state)
{
	(void) state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pgc_test_hba.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(hba_path, sizeof(hba_path), "%s/pg_hba.conf", tmpdir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[600];

	(void) state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write text to tmpdir/name (name may contain a subdirectory that exists). */
static void
write_file(const char *name, const char *text)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

/* Load text as pg_hba.conf; must succeed. */
static pgc_hba *
load(const char *text)
{
	char err[512];
	pgc_hba *hba;

	write_file("pg_hba.conf", text);
	err[0] = '\0';
	hba = pgc_hba_load(hba_path, err, sizeof(err));
	if (hba == NULL)
		fail_msg("load failed: %s", err);
	assert_string_equal(err, "");
	return hba;
}

/* Load text as pg_hba.conf; must fail with "PATH:LINE: " + a message containing what. */
static void
load_fails(const char *text, int line, const char *what)
{
	char err[512];
	char prefix[600];
	pgc_hba *hba;

	write_file("pg_hba.conf", text);
	err[0] = '\0';
	hba = pgc_hba_load(hba_path, err, sizeof(err));
	if (hba != NULL)
	{
		pgc_hba_free(hba);
		fail_msg("load of \"%s\" should have failed (%s)", text, what);
	}
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", hba_path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", hba_path);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err + strlen(prefix), what) == NULL)
		fail_msg("error \"%s\" is not \"%s...%s...\"", err, prefix, what);
}

/* Connections. */
static pgc_hba_conn
tcp(const char *ip, int tls, const char *db, const char *user)
{
	pgc_hba_conn c;

	memset(&c, 0, sizeof(c));
	if (strchr(ip, ':') != NULL)
	{
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *) &c.addr;

		a6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
	}
	else
	{
		struct sockaddr_in *a4 = (struct sockaddr_in *) &c.addr;

		a4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &a4->sin_addr), 1);
	}
	c.is_tls = tls;
	c.database = db;
	c.user = user;
	return c;
}

static pgc_hba_conn
unix_conn(const char *db, const char *user)
{
	pgc_hba_conn c;

	memset(&c, 0, sizeof(c));
	c.is_unix = 1;
	c.database = db;
	c.user = user;
	return c;
}

/* The method and the matched line for c. */
static pgc_hba_method
match(const pgc_hba *hba, pgc_hba_conn c, int *line)
{
	return pgc_hba_match_line(hba, &c, line);
}

/* Expect method m from line l. */
static void
expect(const pgc_hba *hba, pgc_hba_conn c, pgc_hba_method m, int l)
{
	int line = -1;
	pgc_hba_method got = match(hba, c, &line);

	if (got != m || line != l)
		fail_msg("expected %s at line %d, got %s at line %d (db %s user %s)",
				 pgc_hba_method_name(m), l, pgc_hba_method_name(got), line, c.database, c.user);
}

/* ------------------------------------------------------------ connection types */

static void
test_connection_types(void **state)
{
	pgc_hba *hba;

	(void) state;
	hba = load("# a comment\n"
			   "\n"
			   "local     all  all                 peer\n"            /* 3 */
			   "hostssl   all  all  10.0.0.0/8     scram-sha-256\n"   /* 4 */
			   "hostnossl all  all  10.0.0.0/8     md5\n"             /* 5 */
			   "host      all  all  192.168.0.0/16 password   # trailing comment\n"  /* 6 */
			   "hostssl   all  all  0.0.0.0/0      cert clientcert=verify-full\n"    /* 7 */
			   "   \t\n");
	assert_int_equal(pgc_hba_count(hba), 5);
	assert_int_equal(pgc_hba_hostssl_line(hba), 4);
	expect(hba, unix_conn("db", "u"), PGC_HBA_PEER, 3);
	expect(hba, tcp("10.1.2.3", 1, "db", "u"), PGC_HBA_SCRAM, 4);
	expect(hba, tcp("10.1.2.3", 0, "db", "u"), PGC_HBA_MD5, 5);
	/* host matches with and without TLS */
	expect(hba, tcp("192.168.7.7", 0, "db", "u"), PGC_HBA_PASSWORD, 6);
	expect(hba, tcp("192.168.7.7", 1, "db", "u"), PGC_HBA_PASSWORD, 6);
	expect(hba, tcp("8.8.8.8", 1, "db", "u"), PGC_HBA_CERT, 7);
	/* nothing for a plain connection from elsewhere, nor for IPv6 */
	expect(hba, tcp("8.8.8.8", 0, "db", "u"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("2001:db8::1", 1, "db", "u"), PGC_HBA_NO_MATCH, 0);
	pgc_hba_free(hba);

	/* a Unix socket connection matches no host line, and TCP no local line */
	hba = load("host all all all trust\n");
	assert_int_equal(pgc_hba_hostssl_line(hba), 0);
	expect(hba, unix_conn("db", "u"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("2001:db8::1", 0, "db", "u"), PGC_HBA_TRUST, 1);
	pgc_hba_free(hba);
	hba = load("local all all trust\n");
	expect(hba, tcp("127.0.0.1", 0, "db", "u"), PGC_HBA_NO_MATCH, 0);
	expect(hba, unix_conn("db", "u"), PGC_HBA_TRUST, 1);
	pgc_hba_free(hba);

	/* hostnogssenc is host; ident on a local line is peer */
	hba = load("hostnogssenc all all 127.0.0.1/32 trust\nlocal all all ident\n");
	expect(hba, tcp("127.0.0.1", 1, "db", "u"), PGC_HBA_TRUST, 1);
	expect(hba, unix_conn("db", "u"), PGC_HBA_PEER, 2);
	pgc_hba_free(hba);
}

static void
test_match_desc(void **state)
{
	char want[600];
	const char *desc = "x";
	pgc_hba *hba = load("local all all trust\n\nhost all all all reject\n");
	pgc_hba_conn c = tcp("1.2.3.4", 0, "db", "u");

	(void) state;
	assert_int_equal(pgc_hba_match(hba, &c, &desc), PGC_HBA_REJECT);
	snprintf(want, sizeof(want), "%s:3", hba_path);
	assert_string_equal(desc, want);
	c = unix_conn("db", "u");
	assert_int_equal(pgc_hba_match(hba, &c, NULL), PGC_HBA_TRUST);
	pgc_hba_free(hba);

	hba = load("local all all trust\n");
	c = tcp("1.2.3.4", 0, "db", "u");
	assert_int_equal(pgc_hba_match(hba, &c, &desc), PGC_HBA_NO_MATCH);
	assert_null(desc);
	pgc_hba_free(hba);
	assert_int_equal(pgc_hba_match(NULL, &c, &desc), PGC_HBA_NO_MATCH);
	pgc_hba_free(NULL);
}

/* ------------------------------------------------------------ names */

static void
test_lists_keywords_match(void **state)
{
	pgc_hba *hba;

	(void) state;
	hba = load("host db1,db2   alice,bob  0.0.0.0/0 md5\n"            /* 1 */
			   "host db3, db4  carol, dave 0.0.0.0/0 password\n"      /* 2 */
			   "host sameuser  all        0.0.0.0/0 scram-sha-256\n"  /* 3 */
			   "host replication all      0.0.0.0/0 trust\n"          /* 4 */
			   "host all       Erin       0.0.0.0/0 reject\n");       /* 5 */
	expect(hba, tcp("1.1.1.1", 0, "db1", "alice"), PGC_HBA_MD5, 1);
	expect(hba, tcp("1.1.1.1", 0, "db2", "bob"), PGC_HBA_MD5, 1);
	expect(hba, tcp("1.1.1.1", 0, "db4", "carol"), PGC_HBA_PASSWORD, 2);
	expect(hba, tcp("1.1.1.1", 0, "db3", "dave"), PGC_HBA_PASSWORD, 2);
	/* alice on db3 is not on line 1 nor 2 */
	expect(hba, tcp("1.1.1.1", 0, "db3", "alice"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("1.1.1.1", 0, "frank", "frank"), PGC_HBA_SCRAM, 3);
	/* replication matches nothing, even a database called replication */
	expect(hba, tcp("1.1.1.1", 0, "replication", "frank"), PGC_HBA_NO_MATCH, 0);
	/* names are case-sensitive */
	expect(hba, tcp("1.1.1.1", 0, "x", "Erin"), PGC_HBA_REJECT, 5);
	expect(hba, tcp("1.1.1.1", 0, "x", "erin"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("1.1.1.1", 0, "DB1", "alice"), PGC_HBA_NO_MATCH, 0);
	pgc_hba_free(hba);
}

static void
test_quoting(void **state)
{
	pgc_hba *hba;

	(void) state;
	hba = load("host \"all\"       all          0.0.0.0/0 trust\n"     /* 1: the database "all" */
			   "host \"my db\",x   \"a,b\"      0.0.0.0/0 md5\n"       /* 2 */
			   "host y             \"q\"\"uote\" 0.0.0.0/0 password\n" /* 3: q"uote */
			   "host \"sameuser\"  \"+grp\"     0.0.0.0/0 reject\n"    /* 4: literal names */
			   "host z             \"#hash\"    0.0.0.0/0 scram-sha-256\n" /* 5 */
			   "host w             \"\"         0.0.0.0/0 trust\n");   /* 6: empty name */
	expect(hba, tcp("1.1.1.1", 0, "all", "anyone"), PGC_HBA_TRUST, 1);
	expect(hba, tcp("1.1.1.1", 0, "other", "anyone"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("1.1.1.1", 0, "my db", "a,b"), PGC_HBA_MD5, 2);
	expect(hba, tcp("1.1.1.1", 0, "x", "a,b"), PGC_HBA_MD5, 2);
	expect(hba, tcp("1.1.1.1", 0, "x", "a"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("1.1.1.1", 0, "y", "q\"uote"), PGC_HBA_PASSWORD, 3);
	expect(hba, tcp("1.1.1.1", 0, "sameuser", "+grp"), PGC_HBA_REJECT, 4);
	expect(hba, tcp("1.1.1.1", 0, "grp", "grp"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("1.1.1.1", 0, "z", "#hash"), PGC_HBA_SCRAM, 5);
	expect(hba, tcp("1.1.1.1", 0, "w", ""), PGC_HBA_TRUST, 6);
	pgc_hba_free(hba);
}

/*
 * Empty quoted tokens as the very first tokens of the file: the tokenizer's
 * buffer has never held a byte then (its pointer is still NULL), which once
 * made field_add memcpy() from NULL (UBSan: "null pointer passed as argument").
 */
static void
test_empty_quoted_first(void **state)
{
	pgc_hba *hba;

	(void) state;
	load_fails("\"\" \"\" \"\"\n", 1, "invalid connection type \"\"");
	hba = load("local \"\" \"\" trust\n");
	expect(hba, unix_conn("", ""), PGC_HBA_TRUST, 1);
	expect(hba, unix_conn("db", ""), PGC_HBA_NO_MATCH, 0);
	pgc_hba_free(hba);
}

static void
test_continuation(void **state)
{
	pgc_hba *hba;

	(void) state;
	hba = load("host all \\\n"
			   "     alice \\\r\n"
			   "     0.0.0.0/0 md5\n"
			   "host all bob 0.0.0.0/0 trust\n");
	expect(hba, tcp("1.1.1.1", 0, "db", "alice"), PGC_HBA_MD5, 1);
	expect(hba, tcp("1.1.1.1", 0, "db", "bob"), PGC_HBA_TRUST, 4);
	pgc_hba_free(hba);
	/* the error names the record's first line */
	load_fails("local all all trust\nhost all \\\nall \\\n0.0.0.0/0 bogus\n", 2, "invalid authentication method \"bogus\"");
}

/* ------------------------------------------------------------ @file */

static void
test_include(void **state)
{
	char err[512];
	char want[700];
	pgc_hba *hba;
	pgc_hba_conn c;

	(void) state;
	write_file("users.txt", "# staff\nalice, bob\n  carol # and nobody else\n\"dan d\" @more.txt\n");
	write_file("more.txt", "erin\n");
	write_file("dbs", "db1 db2\n");
	hba = load("host @dbs @users.txt 0.0.0.0/0 md5\n"
			   "host all \"@users.txt\" 0.0.0.0/0 trust\n"     /* quoted: a user called @users.txt */
			   "host all @ 0.0.0.0/0 password\n");             /* a lone @ is a name */
	expect(hba, tcp("1.1.1.1", 0, "db1", "alice"), PGC_HBA_MD5, 1);
	expect(hba, tcp("1.1.1.1", 0, "db2", "bob"), PGC_HBA_MD5, 1);
	expect(hba, tcp("1.1.1.1", 0, "db2", "carol"), PGC_HBA_MD5, 1);
	expect(hba, tcp("1.1.1.1", 0, "db1", "dan d"), PGC_HBA_MD5, 1);
	expect(hba, tcp("1.1.1.1", 0, "db1", "erin"), PGC_HBA_MD5, 1);  /* nested */
	expect(hba, tcp("1.1.1.1", 0, "db3", "alice"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("1.1.1.1", 0, "db1", "nobody"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("1.1.1.1", 0, "db3", "@users.txt"), PGC_HBA_TRUST, 2);
	expect(hba, tcp("1.1.1.1", 0, "db3", "@"), PGC_HBA_PASSWORD, 3);
	pgc_hba_free(hba);

	/* relative to the HBA file's directory, not to the current one */
	assert_int_equal(mkdir(strcat(strcpy(want, tmpdir), "/sub"), 0700), 0);
	write_file("sub/hba", "host all @names 0.0.0.0/0 trust\n");
	write_file("sub/names", "zed\n");
	snprintf(want, sizeof(want), "%s/sub/hba", tmpdir);
	hba = pgc_hba_load(want, err, sizeof(err));
	assert_non_null(hba);
	c = tcp("1.1.1.1", 0, "x", "zed");
	assert_int_equal(pgc_hba_match(hba, &c, NULL), PGC_HBA_TRUST);
	pgc_hba_free(hba);

	/* an empty @file: a list that matches nothing (the columns don't shift) */
	write_file("empty", "# nobody\n");
	hba = load("host all @empty 0.0.0.0/0 trust\nhost all all 0.0.0.0/0 reject\n");
	expect(hba, tcp("1.1.1.1", 0, "x", "all"), PGC_HBA_REJECT, 2);
	pgc_hba_free(hba);

	/* a missing @file: the error names the line and the file */
	snprintf(want, sizeof(want), "could not open secondary authentication file \"@nope\" as \"%s/nope\"", tmpdir);
	load_fails("local all all trust\nhost all @nope 0.0.0.0/0 md5\n", 2, want);
	/* an @file including itself: refused, the message names the deepest file */
	write_file("loop", "a @loop\n");
	write_file("pg_hba.conf", "host all @loop 0.0.0.0/0 md5\n");
	assert_null(pgc_hba_load(hba_path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s/loop:1: could not open secondary authentication file \"@loop\": more than 10 levels", tmpdir);
	assert_memory_equal(err, want, strlen(want));
}

/* ------------------------------------------------------------ addresses */

static void
test_cidr_v4(void **state)
{
	pgc_hba *hba;

	(void) state;
	hba = load("host all a 10.1.2.3/32 trust\n"      /* 1 */
			   "host all a 10.1.0.0/16 md5\n"        /* 2 */
			   "host all a 10.1.2.3/8  password\n"   /* 3: host bits are ignored */
			   "host all a 0.0.0.0/0   reject\n"     /* 4 */
			   "host all b 192.168.1.0 255.255.255.0 trust\n"  /* 5: netmask column */
			   "host all c 172.16.0.1/31 trust\n");  /* 6 */
	expect(hba, tcp("10.1.2.3", 0, "d", "a"), PGC_HBA_TRUST, 1);
	expect(hba, tcp("10.1.2.4", 0, "d", "a"), PGC_HBA_MD5, 2);
	expect(hba, tcp("10.1.255.255", 0, "d", "a"), PGC_HBA_MD5, 2);
	expect(hba, tcp("10.2.0.0", 0, "d", "a"), PGC_HBA_PASSWORD, 3);
	expect(hba, tcp("11.0.0.0", 0, "d", "a"), PGC_HBA_REJECT, 4);
	expect(hba, tcp("255.255.255.255", 0, "d", "a"), PGC_HBA_REJECT, 4);
	expect(hba, tcp("192.168.1.255", 0, "d", "b"), PGC_HBA_TRUST, 5);
	expect(hba, tcp("192.168.2.1", 0, "d", "b"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("172.16.0.0", 0, "d", "c"), PGC_HBA_TRUST, 6);
	expect(hba, tcp("172.16.0.2", 0, "d", "c"), PGC_HBA_NO_MATCH, 0);
	/* an IPv4 rule, even /0, never matches a real IPv6 peer */
	expect(hba, tcp("2001:db8::1", 0, "d", "a"), PGC_HBA_NO_MATCH, 0);
	pgc_hba_free(hba);
}

static void
test_cidr_v6(void **state)
{
	pgc_hba *hba;

	(void) state;
	hba = load("host all a ::1/128 trust\n"                  /* 1 */
			   "host all a 2001:db8::/32 md5\n"              /* 2 */
			   "host all a fe80::/10 password\n"             /* 3 */
			   "host all a ::/0 reject\n"                    /* 4 */
			   "host all b 2001:db8:: ffff:ffff:ffff:ffff:: trust\n"  /* 5: /64 as a mask */
			   "host all c 2001:db8::1/127 trust\n");        /* 6: odd prefix */
	expect(hba, tcp("::1", 0, "d", "a"), PGC_HBA_TRUST, 1);
	expect(hba, tcp("::2", 0, "d", "a"), PGC_HBA_REJECT, 4);
	expect(hba, tcp("2001:db8:ffff::1", 0, "d", "a"), PGC_HBA_MD5, 2);
	expect(hba, tcp("2001:db9::1", 0, "d", "a"), PGC_HBA_REJECT, 4);
	expect(hba, tcp("febf::1", 0, "d", "a"), PGC_HBA_PASSWORD, 3);
	expect(hba, tcp("fec0::1", 0, "d", "a"), PGC_HBA_REJECT, 4);
	expect(hba, tcp("2001:db8::ffff:1", 0, "d", "b"), PGC_HBA_TRUST, 5);
	expect(hba, tcp("2001:db8:0:1::1", 0, "d", "b"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("2001:db8::0", 0, "d", "c"), PGC_HBA_TRUST, 6);
	expect(hba, tcp("2001:db8::2", 0, "d", "c"), PGC_HBA_NO_MATCH, 0);
	/* an IPv6 rule, even ::/0, never matches an IPv4 peer */
	expect(hba, tcp("127.0.0.1", 0, "d", "a"), PGC_HBA_NO_MATCH, 0);
	pgc_hba_free(hba);
}

static void
test_v4_mapped(void **state)
{
	pgc_hba *hba;

	(void) state;
	/* a mapped peer is its IPv4 address: IPv4 rules apply, IPv6 ones don't */
	hba = load("host all a ::ffff:0:0/96 reject\n"
			   "host all a 10.0.0.0/8 md5\n"
			   "host all b ::/0 trust\n");
	expect(hba, tcp("::ffff:10.9.8.7", 0, "d", "a"), PGC_HBA_MD5, 2);
	expect(hba, tcp("::ffff:11.9.8.7", 0, "d", "a"), PGC_HBA_NO_MATCH, 0);
	expect(hba, tcp("::ffff:10.9.8.7", 0, "d", "b"), PGC_HBA_NO_MATCH, 0);
	/* IPv4-compatible or other addresses stay IPv6 */
	expect(hba, tcp("::10.9.8.7", 0, "d", "b"), PGC_HBA_TRUST, 3);
	pgc_hba_free(hba);
}

/* ------------------------------------------------------------ ordering */

static void
test_first_match_wins(void **state)
{
	pgc_hba *hba;

	(void) state;
	hba = load("host all  mallory 0.0.0.0/0 reject\n"
			   "host all  all     10.0.0.0/8 trust\n"
			   "host all  all     0.0.0.0/0 scram-sha-256\n"
			   "host all  all     10.0.0.0/8 reject\n");
	expect(hba, tcp("10.0.0.1", 0, "d", "mallory"), PGC_HBA_REJECT, 1);
	expect(hba, tcp("10.0.0.1", 0, "d", "alice"), PGC_HBA_TRUST, 2);
	expect(hba, tcp("9.0.0.1", 0, "d", "alice"), PGC_HBA_SCRAM, 3);
	pgc_hba_free(hba);

	/* a later reject does not undo an earlier trust, and vice versa */
	hba = load("host all all 0.0.0.0/0 trust\nhost all all 0.0.0.0/0 reject\n");
	expect(hba, tcp("1.2.3.4", 0, "d", "u"), PGC_HBA_TRUST, 1);
	pgc_hba_free(hba);
}

/* ------------------------------------------------------------ options */

static void
test_cert_options(void **state)
{
	pgc_hba *hba;

	(void) state;
	hba = load("hostssl all all 0.0.0.0/0 cert clientcert=verify-full clientname=CN\n"
			   "hostssl all all ::/0 cert clientcert=verify-full,clientname=CN\n");
	expect(hba, tcp("1.2.3.4", 1, "d", "u"), PGC_HBA_CERT, 1);
	expect(hba, tcp("::5", 1, "d", "u"), PGC_HBA_CERT, 2);
	expect(hba, tcp("1.2.3.4", 0, "d", "u"), PGC_HBA_NO_MATCH, 0);
	pgc_hba_free(hba);

	/* clientcert on other methods: a certificate on top of the method */
	hba = load("hostssl all a 0.0.0.0/0 md5 clientcert=verify-ca\n"
			   "hostssl all all 0.0.0.0/0 scram-sha-256 clientcert=verify-full\n"
			   "hostssl all all ::/0 trust\n"
			   "hostssl all all ::/0 cert clientcert=verify-full\n");
	{
		static const struct { const char *ip, *user; pgc_hba_method m; pgc_hba_clientcert cc; } want[] = {
			{"1.2.3.4", "a", PGC_HBA_MD5, PGC_CLIENTCERT_CA},
			{"1.2.3.4", "b", PGC_HBA_SCRAM, PGC_CLIENTCERT_FULL},
			{"::1", "a", PGC_HBA_TRUST, PGC_CLIENTCERT_OFF},
		};

		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		{
			pgc_hba_conn conn = tcp(want[i].ip, 1, "d", want[i].user);
			pgc_hba_clientcert cc = PGC_CLIENTCERT_CA;
			int line = 0;

			assert_int_equal(pgc_hba_match_rule(hba, &conn, &line, &cc), want[i].m);
			assert_int_equal(cc, want[i].cc);
		}
	}
	pgc_hba_free(hba);
}

/* ------------------------------------------------------------ errors */

static void
test_errors_columns(void **state)
{
	(void) state;
	load_fails("local all all trust\nhots all all 0.0.0.0/0 md5\n", 2, "invalid connection type \"hots\"");
	load_fails("local,host all all trust\n", 1, "multiple values specified for connection type");
	load_fails("hostgssenc all all 0.0.0.0/0 md5\n", 1, "not supported by pgcarrier");
	load_fails("\n\nlocal\n", 3, "end-of-line before database specification");
	load_fails("local all\n", 1, "end-of-line before role specification");
	load_fails("local all all\n", 1, "end-of-line before authentication method");
	load_fails("host all all\n", 1, "end-of-line before IP address specification");
	load_fails("host all all 0.0.0.0/0\n", 1, "end-of-line before authentication method");
	load_fails("host all all 1.2.3.4,5.6.7.8 md5\n", 1, "multiple values specified for host address");
	load_fails("local all all md5,trust\n", 1, "multiple values specified for authentication type");
	load_fails("local all all \"unterminated\n", 1, "unterminated quoted string");
	load_fails("# nothing\n\n", 0, "contains no entries");
	load_fails("", 0, "contains no entries");
}

static void
test_errors_addresses(void **state)
{
	(void) state;
	load_fails("host all all 10.0.0.0/33 md5\n", 1, "invalid CIDR mask in address \"10.0.0.0/33\"");
	load_fails("host all all ::/129 md5\n", 1, "invalid CIDR mask in address \"::/129\"");
	load_fails("host all all 10.0.0.0/ md5\n", 1, "invalid CIDR mask");
	load_fails("host all all 10.0.0.0/-1 md5\n", 1, "invalid CIDR mask");
	load_fails("host all all 10.0.0.0/8x md5\n", 1, "invalid CIDR mask");
	load_fails("host all all 10.0.0.256/32 md5\n", 1, "invalid IP address \"10.0.0.256\"");
	load_fails("host all all 1:2:3:4:5:6:7:8:9/64 md5\n", 1, "invalid IP address");
	load_fails("host all all db.example.com md5\n", 1, "host names are not supported by pgcarrier");
	load_fails("host all all example.com/24 md5\n", 1, "specifying both host name and CIDR mask is invalid");
	load_fails("host all all samehost md5\n", 1, "\"samehost\" is not supported by pgcarrier");
	load_fails("host all all samenet md5\n", 1, "\"samenet\" is not supported by pgcarrier");
	load_fails("host all all 10.0.0.1 md5\n", 1, "invalid IP mask \"md5\"");
	load_fails("host all all 10.0.0.1\n", 1, "end-of-line before netmask specification");
	load_fails("host all all 10.0.0.1 ffff:: md5\n", 1, "IP address and mask do not match");
	load_fails("host all all ::1 255.0.0.0 md5\n", 1, "IP address and mask do not match");
}

static void
test_errors_methods(void **state)
{
	(void) state;
	load_fails("host all all 0.0.0.0/0 md6\n", 1, "invalid authentication method \"md6\"");
	load_fails("host all all 0.0.0.0/0 ldap ldapserver=x\n", 1,
			   "invalid authentication method \"ldap\": not supported by pgcarrier");
	load_fails("host all all 0.0.0.0/0 ident\n", 1, "invalid authentication method \"ident\": not supported by pgcarrier");
	load_fails("host all all 0.0.0.0/0 gss\n", 1, "not supported by pgcarrier");
	load_fails("host all all 0.0.0.0/0 peer\n", 1, "peer authentication is only supported on local sockets");
	load_fails("hostssl all all 0.0.0.0/0 peer\n", 1, "peer authentication is only supported on local sockets");
	load_fails("host all all 0.0.0.0/0 cert\n", 1, "cert authentication is only supported on hostssl connections");
	load_fails("local all all cert\n", 1, "cert authentication is only supported on hostssl connections");
}

static void
test_errors_options(void **state)
{
	(void) state;
	load_fails("local all all md5 clientcert\n", 1, "authentication option not in name=value format: clientcert");
	load_fails("local all all md5 frobnicate=1\n", 1, "unrecognized authentication option name: \"frobnicate\"");
	load_fails("local all all peer map=omicron\n", 1, "authentication option \"map\" is not supported by pgcarrier");
	load_fails("hostssl all all 0.0.0.0/0 cert map=x\n", 1, "\"map\" is not supported by pgcarrier");
	load_fails("hostssl all all 0.0.0.0/0 md5 clientname=CN\n", 1,
			   "authentication option \"clientname\" is not supported by pgcarrier for method \"md5\"");
	load_fails("hostssl all all 0.0.0.0/0 md5 clientcert=maybe\n", 1, "invalid value for clientcert: \"maybe\"");
	load_fails("host all all 0.0.0.0/0 md5 clientcert=verify-ca\n", 1,
			   "clientcert can only be configured for \"hostssl\" rows");
	load_fails("hostssl all all 0.0.0.0/0 cert clientcert=verify-ca\n", 1,
			   "clientcert only accepts \"verify-full\" when using \"cert\" authentication");
	load_fails("hostssl all all 0.0.0.0/0 cert clientcert=yes\n", 1, "invalid value for clientcert: \"yes\"");
	load_fails("hostssl all all 0.0.0.0/0 cert clientname=DN\n", 1, "\"clientname=DN\" is not supported by pgcarrier");
	load_fails("hostssl all all 0.0.0.0/0 cert clientname=xx\n", 1, "invalid value for clientname: \"xx\"");
	load_fails("hostssl all all 0.0.0.0/0 trust clientname=CN\n", 1, "not supported by pgcarrier");
}

static void
test_errors_names(void **state)
{
	(void) state;
	load_fails("local all all trust\nlocal samerole all md5\n", 2, "\"samerole\" is not supported by pgcarrier");
	load_fails("local db,samegroup all md5\n", 1, "\"samegroup\" is not supported by pgcarrier");
	load_fails("local all alice,+admins md5\n", 1, "group membership (\"+admins\") is not supported by pgcarrier");
	write_file("grp", "+admins\n");
	load_fails("local all @grp md5\n", 1, "group membership");
	load_fails("local all all trust\n\n\nlocal all all md5 x\n", 4, "not in name=value format");
}

static void
test_missing_file(void **state)
{
	char err[512];
	char path[600];

	(void) state;
	snprintf(path, sizeof(path), "%s/absent.conf", tmpdir);
	assert_null(pgc_hba_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "could not open configuration file"));
	assert_non_null(strstr(err, "No such file"));
	/* NULL err is fine */
	assert_null(pgc_hba_load(path, NULL, 0));
	/* NUL bytes are refused */
	{
		FILE *f = fopen(hba_path, "w");

		assert_non_null(f);
		fwrite("local all all trust\nlocal all\0 all trust\n", 1, 41, f);
		fclose(f);
		assert_null(pgc_hba_load(hba_path, err, sizeof(err)));
		assert_non_null(strstr(err, ":2: invalid NUL byte"));
	}
}

/* ------------------------------------------------------------ messages */

static void
test_messages(void **state)
{
	char buf[512];
	pgc_hba_conn c;
	int n;

	(void) state;
	c = tcp("192.0.2.10", 0, "appdb", "app");
	n = pgc_hba_no_match_message(&c, buf, sizeof(buf));
	assert_string_equal(buf, "no pg_hba.conf entry for host \"192.0.2.10\", user \"app\", database \"appdb\", no encryption");
	assert_int_equal(n, (int) strlen(buf));
	c.is_tls = 1;
	pgc_hba_no_match_message(&c, buf, sizeof(buf));
	assert_string_equal(buf, "no pg_hba.conf entry for host \"192.0.2.10\", user \"app\", database \"appdb\", SSL encryption");
	pgc_hba_reject_message(&c, buf, sizeof(buf));
	assert_string_equal(buf, "pg_hba.conf rejects connection for host \"192.0.2.10\", user \"app\", database \"appdb\", SSL encryption");

	c = unix_conn("postgres", "bob");
	pgc_hba_no_match_message(&c, buf, sizeof(buf));
	assert_string_equal(buf, "no pg_hba.conf entry for host \"[local]\", user \"bob\", database \"postgres\", no encryption");

	c = tcp("2001:db8::7", 0, "d", "u");
	pgc_hba_host_string(&c, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8::7");
	c = tcp("::ffff:192.0.2.1", 0, "d", "u");
	pgc_hba_host_string(&c, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1");

	/* truncation is safe and the full length is returned */
	c = tcp("192.0.2.10", 0, "appdb", "app");
	n = pgc_hba_no_match_message(&c, buf, 10);
	assert_int_equal(strlen(buf), 9);
	assert_int_equal(n, (int) strlen("no pg_hba.conf entry for host \"192.0.2.10\", user \"app\", database \"appdb\", no encryption"));

	assert_string_equal(pgc_hba_method_name(PGC_HBA_SCRAM), "scram-sha-256");
	assert_string_equal(pgc_hba_method_name(PGC_HBA_NO_MATCH), "no match");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connection_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_desc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lists_keywords_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quoting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_quoted_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_continuation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_include, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cidr_v4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cidr_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v4_mapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_match_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_columns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_methods, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
	};

	return cmocka_run_group_tests_name("hba", tests, NULL, NULL);
}
