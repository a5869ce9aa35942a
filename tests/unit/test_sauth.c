/*
 * test_sauth.c - unit tests for src/engine/sauth.c.
 *
 * Every expected value below was computed independently with Python's
 * hashlib/hmac/base64 (not with this code), and pasted here as a literal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sauth.h"

/* ------------------------------------------------------------ secrets */

static void
test_secret_is_md5(void **state)
{
	(void) state;
	assert_true(pgc_secret_is_md5("md54a0a68b43b6cd5cf266fa02f196e2371"));
	assert_false(pgc_secret_is_md5("md54a0a68b43b6cd5cf266fa02f196e237"));     /* 31 digits */
	assert_false(pgc_secret_is_md5("md54a0a68b43b6cd5cf266fa02f196e23711"));   /* 33 digits */
	assert_false(pgc_secret_is_md5("md54A0A68B43B6CD5CF266FA02F196E2371"));    /* uppercase */
	assert_false(pgc_secret_is_md5("md54a0a68b43b6cd5cf266fa02f196e237g"));
	assert_false(pgc_secret_is_md5("MD54a0a68b43b6cd5cf266fa02f196e2371"));
	assert_false(pgc_secret_is_md5("secret"));
	assert_false(pgc_secret_is_md5(""));
	assert_false(pgc_secret_is_md5(NULL));
}

#define SCRAM_PENCIL "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" \
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

static void
test_secret_is_scram(void **state)
{
	(void) state;
	assert_true(pgc_secret_is_scram(SCRAM_PENCIL));
	assert_false(pgc_secret_is_scram("SCRAM-SHA-256$"));
	assert_false(pgc_secret_is_scram("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
									 "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="));  /* no ServerKey */
	assert_false(pgc_secret_is_scram("SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$"
									 "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="));
	assert_false(pgc_secret_is_scram("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
									 "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="));  /* short key */
	assert_false(pgc_secret_is_scram("SCRAM-SHA-256$4096:W22Za!0SNY7soEsUEjb6gQ==$"
									 "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="));  /* bad salt */
	assert_false(pgc_secret_is_scram("md54a0a68b43b6cd5cf266fa02f196e2371"));
	assert_false(pgc_secret_is_scram("pencil"));
	assert_false(pgc_secret_is_scram(NULL));
}

/* ---------------------------------------------------------------- md5 */

static void
test_md5_plain(void **state)
{
	char out[36];
	const uint8_t salt1[4] = {0x01, 0x02, 0x03, 0x04};
	const uint8_t salt2[4] = {0x00, 0xff, 0x7f, 0x80};

	(void) state;
	memset(out, 'x', sizeof(out));
	pgc_md5_response("secret", "alice", salt1, out);
	assert_string_equal(out, "md598a0412b9c31436fc53776e863350083");
	assert_int_equal(strlen(out), 35);

	pgc_md5_response("pencil", "bob", salt2, out);
	assert_string_equal(out, "md5f7b1fc968e31a6e1e81bd4cfdabc8e18");
}

static void
test_md5_stored(void **state)
{
	char out[36];
	const uint8_t salt1[4] = {0x01, 0x02, 0x03, 0x04};
	const uint8_t salt2[4] = {0x00, 0xff, 0x7f, 0x80};

	(void) state;
	/* md5("secret" + "alice") stored: the user name is not mixed in again */
	pgc_md5_response("md54a0a68b43b6cd5cf266fa02f196e2371", "alice", salt1, out);
	assert_string_equal(out, "md598a0412b9c31436fc53776e863350083");
	pgc_md5_response("md54a0a68b43b6cd5cf266fa02f196e2371", "someone-else", salt1, out);
	assert_string_equal(out, "md598a0412b9c31436fc53776e863350083");
	pgc_md5_response("md5e4f70fb0b8f2745aa7a69557c80cbd0c", "bob", salt2, out);
	assert_string_equal(out, "md5f7b1fc968e31a6e1e81bd4cfdabc8e18");
}

/* -------------------------------------------------------------- SCRAM */

/* RFC 7677 section 3 data, but with "n=" instead of "n=user" (see sauth.h). */
#define RFC_NONCE  "rOprNGfwEbeRWgbNEkqO"
#define RFC_SFIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CFINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k="
#define RFC_SFINAL "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg="

/* Start an exchange with a fixed nonce and check client-first. */
static pgc_scram_client *
start(const char *password, const char *nonce)
{
	char buf[256];
	char expect[256];
	pgc_scram_client *sc = pgc_scram_client_new(password);
	int n;

	assert_non_null(sc);
	pgc_scram_client_set_nonce(sc, nonce);
	n = pgc_scram_client_first(sc, buf, sizeof(buf));
	snprintf(expect, sizeof(expect), "n,,n=,r=%s", nonce);
	assert_int_equal(n, (int) strlen(expect));
	assert_string_equal(buf, expect);
	return sc;
}

/* Full exchange; returns verify's result. */
static void
exchange_ok(const char *password, const char *nonce, const char *sfirst,
			const char *cfinal, const char *sfinal)
{
	char buf[512];
	char err[256];
	pgc_scram_client *sc = start(password, nonce);
	int n;

	err[0] = '\0';
	n = pgc_scram_client_final(sc, sfirst, strlen(sfirst), buf, sizeof(buf), err, sizeof(err));
	assert_string_equal(err, "");
	assert_int_equal(n, (int) strlen(cfinal));
	assert_string_equal(buf, cfinal);
	assert_int_equal(pgc_scram_client_verify(sc, sfinal, strlen(sfinal), err, sizeof(err)), 0);
	pgc_scram_client_free(sc);
}

static void
test_scram_rfc7677_data(void **state)
{
	(void) state;
	exchange_ok("pencil", RFC_NONCE, RFC_SFIRST, RFC_CFINAL, RFC_SFINAL);
}

static void
test_scram_one_pad_salt_one_iteration(void **state)
{
	(void) state;
	/* salt is 17 bytes (one '='), i=1, password with a space */
	exchange_ok("correct horse", "fyko+d2lbbFgONRv9qkxdawL",
				"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=oKGio6SlpqeoqaqrrK2ur7A=,i=1",
				"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=3WYmNk33gFAHz+oQswtQNdD7mA7/yJnRvwmO1ksIUMM=",
				"v=fc60P5lfd2eZF6axOB4Uk9y37SGqsm5bVawW1qc9BNs=");
}

static void
test_scram_two_pad_salt(void **state)
{
	(void) state;
	/* salt is 13 bytes with 0x00 and 0xff in it (two '=') */
	exchange_ok("p@ss w0rd!", "abc",
				"r=abcdef,s=AAFzYWx0c2FsdP7/IQ==,i=10",
				"c=biws,r=abcdef,p=0Vsao/MNLOwDW+QDAk7T/3DiAVzLyU27DKkgtWAf908=",
				"v=i8cIedYEUIAd+D6ycRuj0sIA/tBHqaBVkqdqmjJQDW0=");
}

/* Messages passed with an explicit length need not be NUL-terminated. */
static void
test_scram_not_nul_terminated(void **state)
{
	char sfirst[sizeof(RFC_SFIRST) + 8];
	char sfinal[sizeof(RFC_SFINAL) + 8];
	char buf[512];
	char err[256];
	pgc_scram_client *sc;

	(void) state;
	memset(sfirst, 'Z', sizeof(sfirst));
	memcpy(sfirst, RFC_SFIRST, strlen(RFC_SFIRST));
	memset(sfinal, 'Z', sizeof(sfinal));
	memcpy(sfinal, RFC_SFINAL, strlen(RFC_SFINAL));
	sc = start("pencil", RFC_NONCE);
	assert_int_equal(pgc_scram_client_final(sc, sfirst, strlen(RFC_SFIRST), buf, sizeof(buf), err, sizeof(err)),
					 (int) strlen(RFC_CFINAL));
	assert_string_equal(buf, RFC_CFINAL);
	assert_int_equal(pgc_scram_client_verify(sc, sfinal, strlen(RFC_SFINAL), err, sizeof(err)), 0);
	pgc_scram_client_free(sc);
}

static void
test_scram_random_nonce(void **state)
{
	char a[128];
	char b[128];
	pgc_scram_client *sa = pgc_scram_client_new("pw");
	pgc_scram_client *sb = pgc_scram_client_new("pw");

	(void) state;
	assert_non_null(sa);
	assert_non_null(sb);
	/* 18 random bytes -> 24 base64 characters */
	assert_int_equal(pgc_scram_client_first(sa, a, sizeof(a)), 8 + 24);
	assert_int_equal(pgc_scram_client_first(sb, b, sizeof(b)), 8 + 24);
	assert_memory_equal(a, "n,,n=,r=", 8);
	assert_null(strchr(a + 8, ','));
	assert_null(strchr(a + 8, '='));
	assert_string_not_equal(a, b);
	pgc_scram_client_free(sa);
	pgc_scram_client_free(sb);
}

static void
test_scram_first_cap(void **state)
{
	char buf[64];
	pgc_scram_client *sc = pgc_scram_client_new("pencil");

	(void) state;
	pgc_scram_client_set_nonce(sc, RFC_NONCE);
	/* "n,,n=,r=" + 20 = 28 characters, plus the NUL */
	assert_int_equal(pgc_scram_client_first(sc, buf, 28), -1);
	assert_int_equal(pgc_scram_client_first(sc, buf, 29), 28);
	pgc_scram_client_free(sc);
}

static void
test_scram_final_cap(void **state)
{
	char buf[512];
	char err[256];
	pgc_scram_client *sc = start("pencil", RFC_NONCE);

	(void) state;
	assert_int_equal(pgc_scram_client_final(sc, RFC_SFIRST, strlen(RFC_SFIRST), buf,
											strlen(RFC_CFINAL), err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	pgc_scram_client_free(sc);
}

/* Expect client_final to refuse sfirst, with err containing what. */
static void
final_fails(const char *sfirst, size_t len, const char *what)
{
	char buf[512];
	char err[256];
	pgc_scram_client *sc = start("pencil", RFC_NONCE);

	err[0] = '\0';
	assert_int_equal(pgc_scram_client_final(sc, sfirst, len, buf, sizeof(buf), err, sizeof(err)), -1);
	if (strstr(err, what) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\" for %.*s", err, what, (int) len, sfirst);
	/* the exchange is over: a second try and a verify are refused */
	assert_int_equal(pgc_scram_client_final(sc, RFC_SFIRST, strlen(RFC_SFIRST), buf, sizeof(buf), err, sizeof(err)), -1);
	assert_int_equal(pgc_scram_client_verify(sc, RFC_SFINAL, strlen(RFC_SFINAL), err, sizeof(err)), -1);
	pgc_scram_client_free(sc);
}

#define FAILS(s, what) final_fails(s, strlen(s), what)

static void
test_scram_reject_nonce(void **state)
{
	(void) state;
	/* not prefixed by ours */
	FAILS("r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce");
	FAILS("r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce");
	/* only our nonce, nothing from the server */
	FAILS("r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce");
	/* our nonce truncated */
	FAILS("r=rOprNGfwEbeRWgbNEkq,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce");
	/* non-printable character in the server part */
	FAILS("r=rOprNGfwEbeRWgbNEkqOab\x01" "cd,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce");
	/* no r= at all, or not first */
	FAILS("s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOxyz,i=4096", "nonce");
}

static void
test_scram_reject_salt(void **state)
{
	(void) state;
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", "salt");      /* length */
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6g*==,i=4096", "salt");     /* alphabet */
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0S=Y7soEsUEjb6gQ==,i=4096", "salt");     /* '=' inside */
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6g===,i=4096", "salt");     /* three '=' */
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096", "salt");                             /* empty */
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ== ,i=4096", "salt");    /* space */
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,i=4096", "salt");                                /* missing */
}

static void
test_scram_reject_iterations(void **state)
{
	(void) state;
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", "iteration");
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1", "iteration");
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=", "iteration");
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4x", "iteration");
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001", "iteration");
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999999999999999", "iteration");
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==", "iteration");
}

static void
test_scram_reject_malformed(void **state)
{
	static const char with_nul[] = "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096\0";

	(void) state;
	FAILS("m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "extension");
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,", "");
	FAILS("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x=1", "");
	FAILS("", "");
	final_fails(with_nul, sizeof(with_nul) - 1, "");
}

/* Run a full exchange with the RFC data up to verify, and feed sfinal. */
static void
verify_fails(const char *sfinal, const char *what)
{
	char buf[512];
	char err[256];
	pgc_scram_client *sc = start("pencil", RFC_NONCE);

	assert_int_equal(pgc_scram_client_final(sc, RFC_SFIRST, strlen(RFC_SFIRST), buf, sizeof(buf), err, sizeof(err)),
					 (int) strlen(RFC_CFINAL));
	err[0] = '\0';
	assert_int_equal(pgc_scram_client_verify(sc, sfinal, strlen(sfinal), err, sizeof(err)), -1);
	if (strstr(err, what) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\" for %s", err, what, sfinal);
	/* no second chance */
	assert_int_equal(pgc_scram_client_verify(sc, RFC_SFINAL, strlen(RFC_SFINAL), err, sizeof(err)), -1);
	pgc_scram_client_free(sc);
}

static void
test_scram_verify_rejects(void **state)
{
	(void) state;
	/* the RFC's own signature (for n=user) is a valid-looking but wrong one */
	verify_fails("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", "signature");
	/* one bit off */
	verify_fails("v=3HO7Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=", "signature");
	/* wrong length, bad base64 */
	verify_fails("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBt", "signature");
	verify_fails("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSO*=", "signature");
	verify_fails("v=", "signature");
	verify_fails("x=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=", "signature");
	verify_fails("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=,x=1", "");
	verify_fails("", "");
	/* server-reported errors come back with their text */
	verify_fails("e=invalid-proof", "invalid-proof");
	verify_fails("e=other-error", "other-error");
}

static void
test_scram_wrong_password(void **state)
{
	char buf[512];
	char err[256];
	pgc_scram_client *sc = start("pencil2", RFC_NONCE);

	(void) state;
	assert_int_equal(pgc_scram_client_final(sc, RFC_SFIRST, strlen(RFC_SFIRST), buf, sizeof(buf), err, sizeof(err)),
					 (int) strlen(RFC_CFINAL));
	assert_string_not_equal(buf, RFC_CFINAL);
	assert_int_equal(pgc_scram_client_verify(sc, RFC_SFINAL, strlen(RFC_SFINAL), err, sizeof(err)), -1);
	pgc_scram_client_free(sc);
}

static void
test_scram_out_of_order(void **state)
{
	char buf[512];
	char err[256];
	pgc_scram_client *sc = pgc_scram_client_new("pencil");

	(void) state;
	pgc_scram_client_set_nonce(sc, RFC_NONCE);
	/* final and verify before first */
	assert_int_equal(pgc_scram_client_final(sc, RFC_SFIRST, strlen(RFC_SFIRST), buf, sizeof(buf), err, sizeof(err)), -1);
	assert_int_equal(pgc_scram_client_verify(sc, RFC_SFINAL, strlen(RFC_SFINAL), err, sizeof(err)), -1);
	assert_int_equal(pgc_scram_client_first(sc, buf, sizeof(buf)), 28);
	/* set_nonce after first is ignored; first twice is refused */
	pgc_scram_client_set_nonce(sc, "other");
	assert_int_equal(pgc_scram_client_first(sc, buf, sizeof(buf)), -1);
	/* verify before final */
	assert_int_equal(pgc_scram_client_verify(sc, RFC_SFINAL, strlen(RFC_SFINAL), err, sizeof(err)), -1);
	pgc_scram_client_free(sc);

	/* the whole exchange still works with the original nonce */
	exchange_ok("pencil", RFC_NONCE, RFC_SFIRST, RFC_CFINAL, RFC_SFINAL);
	/* NULL err is allowed */
	sc = start("pencil", RFC_NONCE);
	assert_int_equal(pgc_scram_client_final(sc, "r=x", 3, buf, sizeof(buf), NULL, 0), -1);
	pgc_scram_client_free(sc);
	pgc_scram_client_free(NULL);
}

static void
test_scram_set_nonce_invalid(void **state)
{
	char buf[128];
	pgc_scram_client *sc = pgc_scram_client_new("pencil");

	(void) state;
	/* nonces with ',' or non-printables, or empty, are ignored */
	pgc_scram_client_set_nonce(sc, "a,b");
	pgc_scram_client_set_nonce(sc, "a b");
	pgc_scram_client_set_nonce(sc, "");
	assert_int_equal(pgc_scram_client_first(sc, buf, sizeof(buf)), 8 + 24);
	pgc_scram_client_free(sc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_is_md5),
		cmocka_unit_test(test_secret_is_scram),
		cmocka_unit_test(test_md5_plain),
		cmocka_unit_test(test_md5_stored),
		cmocka_unit_test(test_scram_rfc7677_data),
		cmocka_unit_test(test_scram_one_pad_salt_one_iteration),
		cmocka_unit_test(test_scram_two_pad_salt),
		cmocka_unit_test(test_scram_not_nul_terminated),
		cmocka_unit_test(test_scram_random_nonce),
		cmocka_unit_test(test_scram_first_cap),
		cmocka_unit_test(test_scram_final_cap),
		cmocka_unit_test(test_scram_reject_nonce),
		cmocka_unit_test(test_scram_reject_salt),
		cmocka_unit_test(test_scram_reject_iterations),
		cmocka_unit_test(test_scram_reject_malformed),
		cmocka_unit_test(test_scram_verify_rejects),
		cmocka_unit_test(test_scram_wrong_password),
		cmocka_unit_test(test_scram_out_of_order),
		cmocka_unit_test(test_scram_set_nonce_invalid),
	};

	return cmocka_run_group_tests_name("sauth", tests, NULL, NULL);
}
