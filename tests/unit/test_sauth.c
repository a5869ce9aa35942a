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

#include <openssl/evp.h>

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

/* ===================================================================== */
/* Server side. Expected values computed independently with Python's      */
/* hashlib/hmac/base64, and certificates hashed with openssl + hashlib.   */
/* ===================================================================== */

/* RFC 7677 section 3, exactly (n=user): what a server must accept. */
#define RFC7677_CFIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC7677_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC7677_CFINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
	"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC7677_SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* ClientKey and ServerKey of "pencil" with the RFC salt and 4096 iterations */
#define PENCIL_CLIENT_KEY "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos="
#define PENCIL_SERVER_KEY "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

/* Channel binding: cb data = SHA-256("pretend certificate"). */
static const char CB_HEX[] = "fd65f8f639f9eaa08969ff87237689cbb8ea60866aeacc58dd2e9fba8b7bb847";
#define CB_CFIRST "p=tls-server-end-point,,n=,r=cbClientNonce"
#define CB_SFIRST "r=cbClientNoncecbServerNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define CB_CFINAL "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws/WX49jn56qCJaf+HI3aJy7jqYIZq6sxY3S6fuot7uEc=," \
	"r=cbClientNoncecbServerNonce,p=XuLKUUa6Gl2Ipund8AjisVDS7HOnlzZHSlygLFzulIg="
#define CB_SFINAL "v=3u9ONJx6EyFUqmzHHFWTDnp3FIRnGmH9anVHZ4PYKwQ="

/* The client supports channel binding but thinks the server does not ("y"). */
#define Y_CFIRST "y,,n=,r=yClient"
#define Y_SFIRST "r=yClientyServer,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define Y_CFINAL "c=eSws,r=yClientyServer,p=Ih/0bhQmF5QCnzX/vfRCmEs0ulw85ws4JSPl+daguCE="
#define Y_SFINAL "v=AobMpkc3Nrn8nBG5BjhXtQ1wWOe/BU9k3TbUvWs3uEw="

static size_t
unhex(const char *hex, uint8_t *out)
{
	size_t n = strlen(hex) / 2;

	for (size_t i = 0; i < n; i++)
	{
		unsigned int v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t) v;
	}
	return n;
}

/* Decode padded base64 (test data only). */
static size_t
unb64(const char *b64, uint8_t *out)
{
	size_t n = strlen(b64);
	int got = EVP_DecodeBlock(out, (const unsigned char *) b64, (int) n);

	assert_true(got >= 0);
	if (n >= 1 && b64[n - 1] == '=')
		got--;
	if (n >= 2 && b64[n - 2] == '=')
		got--;
	return (size_t) got;
}

static void
test_scram_secret_parse(void **state)
{
	pgc_scram_secret sec;
	uint8_t key[64];

	(void) state;
	assert_int_equal(pgc_scram_secret_parse(SCRAM_PENCIL, &sec), 0);
	assert_int_equal(sec.iterations, 4096);
	assert_string_equal(sec.salt, "W22ZaJ0SNY7soEsUEjb6gQ==");
	assert_int_equal(unb64("WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=", key), 32);
	assert_memory_equal(sec.stored_key, key, 32);
	assert_int_equal(unb64(PENCIL_SERVER_KEY, key), 32);
	assert_memory_equal(sec.server_key, key, 32);

	assert_int_equal(pgc_scram_secret_parse("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
											"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=", &sec), -1);
	assert_int_equal(pgc_scram_secret_parse("md54a0a68b43b6cd5cf266fa02f196e2371", &sec), -1);
	assert_int_equal(pgc_scram_secret_parse("pencil", &sec), -1);
	assert_int_equal(pgc_scram_secret_parse(NULL, &sec), -1);
	assert_int_equal(pgc_scram_secret_parse(SCRAM_PENCIL, NULL), -1);
}

static void
test_scram_secret_build(void **state)
{
	char out[PGC_SCRAM_SECRET_BUF];
	char out2[PGC_SCRAM_SECRET_BUF];
	uint8_t salt[64];
	size_t salt_len = unb64("W22ZaJ0SNY7soEsUEjb6gQ==", salt);
	const uint8_t salt2[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	const uint8_t salt3[5] = {0xff, 0xff, 0xff, 0xff, 0xff};
	pgc_scram_secret sec;
	int n;

	(void) state;
	n = pgc_scram_secret_build_salt("pencil", salt, salt_len, 4096, out, sizeof(out));
	assert_string_equal(out, SCRAM_PENCIL);
	assert_int_equal(n, (int) strlen(SCRAM_PENCIL));
	pgc_scram_secret_build_salt("correct horse", salt2, sizeof(salt2), 4096, out, sizeof(out));
	assert_string_equal(out, "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$"
						"yERwYmHlx0VrpoYfOn54hMTjBUKWnmK42IDjnWgQWkk=:RQZr9F8QCYmmp35tAVzp0VB/kDwY283N+s24jDDliG4=");
	pgc_scram_secret_build_salt("x", salt3, sizeof(salt3), 1, out, sizeof(out));
	assert_string_equal(out, "SCRAM-SHA-256$1://////8=$"
						"ngenO6amUkDW/Zt9iPH+30B+1X3BtEqIyEtK6f303RU=:eVfMcrnStYeku4omyJ7OI/6OYcF5uXlw9JiJt9NECew=");

	/* refused: no room, bad salt, bad iterations */
	assert_int_equal(pgc_scram_secret_build_salt("pencil", salt, salt_len, 4096, out, strlen(SCRAM_PENCIL)), -1);
	assert_int_equal(pgc_scram_secret_build_salt("pencil", salt, 0, 4096, out, sizeof(out)), -1);
	assert_int_equal(pgc_scram_secret_build_salt("pencil", salt, salt_len, 0, out, sizeof(out)), -1);
	assert_int_equal(pgc_scram_secret_build_salt("pencil", salt, salt_len, 10000001, out, sizeof(out)), -1);
	assert_int_equal(pgc_scram_secret_build_salt(NULL, salt, salt_len, 4096, out, sizeof(out)), -1);

	/* random salt: 16 bytes (24 base64 characters), 4096 iterations, a new salt each time */
	n = pgc_scram_secret_build("pencil", out, sizeof(out));
	assert_true(n > 0);
	assert_true(pgc_secret_is_scram(out));
	assert_int_equal(pgc_scram_secret_parse(out, &sec), 0);
	assert_int_equal(sec.iterations, 4096);
	assert_int_equal(strlen(sec.salt), 24);
	assert_int_equal(pgc_scram_verify_plain(out, "pencil"), 0);
	assert_int_equal(pgc_scram_verify_plain(out, "pencil2"), -1);
	assert_true(pgc_scram_secret_build("pencil", out2, sizeof(out2)) > 0);
	assert_string_not_equal(out, out2);
}

static void
test_password_verify(void **state)
{
	(void) state;
	/* SCRAM secret */
	assert_int_equal(pgc_scram_verify_plain(SCRAM_PENCIL, "pencil"), 0);
	assert_int_equal(pgc_scram_verify_plain(SCRAM_PENCIL, "Pencil"), -1);
	assert_int_equal(pgc_scram_verify_plain("pencil", "pencil"), -1);   /* not a SCRAM secret */
	assert_int_equal(pgc_password_verify(SCRAM_PENCIL, "anyone", "pencil"), 0);
	assert_int_equal(pgc_password_verify(SCRAM_PENCIL, "anyone", "pencil "), -1);
	/* md5 secret: md5("pencil" + "bob"); the user name counts */
	assert_int_equal(pgc_password_verify("md5e4f70fb0b8f2745aa7a69557c80cbd0c", "bob", "pencil"), 0);
	assert_int_equal(pgc_password_verify("md5e4f70fb0b8f2745aa7a69557c80cbd0c", "alice", "pencil"), -1);
	assert_int_equal(pgc_password_verify("md5e4f70fb0b8f2745aa7a69557c80cbd0c", "bob", "pencil2"), -1);
	/* clear text */
	assert_int_equal(pgc_password_verify("pencil", "bob", "pencil"), 0);
	assert_int_equal(pgc_password_verify("pencil", "bob", "pencil2"), -1);
	assert_int_equal(pgc_password_verify("pencil", "bob", "pencil\n"), -1);
	assert_int_equal(pgc_password_verify("pencil", "bob", "pen"), -1);
	/* empty passwords and secrets never match */
	assert_int_equal(pgc_password_verify("", "bob", ""), -1);
	assert_int_equal(pgc_password_verify("pencil", "bob", ""), -1);
	assert_int_equal(pgc_password_verify(NULL, "bob", "pencil"), -1);
}

static void
test_md5_verify(void **state)
{
	const uint8_t salt1[4] = {0x01, 0x02, 0x03, 0x04};
	const uint8_t salt2[4] = {0x00, 0xff, 0x7f, 0x80};
	const uint8_t salt3[4] = {0x04, 0x03, 0x02, 0x01};
	static const char r1[] = "md598a0412b9c31436fc53776e863350083";

	(void) state;
	/* clear-text secret, and the stored md5 of the same password */
	assert_int_equal(pgc_md5_verify("secret", "alice", salt1, r1, 35), 0);
	assert_int_equal(pgc_md5_verify("md54a0a68b43b6cd5cf266fa02f196e2371", "alice", salt1, r1, 35), 0);
	assert_int_equal(pgc_md5_verify("pencil", "bob", salt2, "md5f7b1fc968e31a6e1e81bd4cfdabc8e18", 35), 0);
	assert_int_equal(pgc_md5_verify("md5e4f70fb0b8f2745aa7a69557c80cbd0c", "bob", salt2,
									"md5f7b1fc968e31a6e1e81bd4cfdabc8e18", 35), 0);
	/* another salt, password, user, or a damaged response */
	assert_int_equal(pgc_md5_verify("secret", "alice", salt3, r1, 35), -1);
	assert_int_equal(pgc_md5_verify("secret", "alice", salt3, "md5ef37fb32a62e84c6e9ff8f03974cbb5d", 35), 0);
	assert_int_equal(pgc_md5_verify("secret2", "alice", salt1, r1, 35), -1);
	assert_int_equal(pgc_md5_verify("secret", "alicia", salt1, r1, 35), -1);
	assert_int_equal(pgc_md5_verify("secret", "alice", salt1, "md598a0412b9c31436fc53776e863350084", 35), -1);
	assert_int_equal(pgc_md5_verify("secret", "alice", salt1, "MD598a0412b9c31436fc53776e863350083", 35), -1);
	assert_int_equal(pgc_md5_verify("secret", "alice", salt1, r1, 34), -1);
	assert_int_equal(pgc_md5_verify("secret", "alice", salt1, "md598a0412b9c31436fc53776e8633500830", 36), -1);
	/* SCRAM and empty secrets can't do md5 */
	assert_int_equal(pgc_md5_verify(SCRAM_PENCIL, "alice", salt1, r1, 35), -1);
	assert_int_equal(pgc_md5_verify("", "alice", salt1, r1, 35), -1);
}

/* A server given client-first, checked against the expected server-first. */
static pgc_scram_server *
srv_first(const char *user, const char *secret, const uint8_t *cb, size_t cblen, const char *mech,
		  const char *cfirst, const char *snonce, const char *expect_sfirst)
{
	char out[512];
	pgc_sauth_error e;
	pgc_scram_server *ss = pgc_scram_server_new(user, secret, cb, cblen);
	int n;

	assert_non_null(ss);
	if (snonce != NULL)
		pgc_scram_server_set_nonce(ss, snonce);
	n = pgc_scram_server_first(ss, mech, cfirst, strlen(cfirst), out, sizeof(out), &e);
	if (n < 0)
		fail_msg("server_first failed: %s %s / %s", e.sqlstate, e.message, e.detail);
	assert_int_equal(n, (int) strlen(out));
	if (expect_sfirst != NULL)
		assert_string_equal(out, expect_sfirst);
	return ss;
}

static void
test_scram_server_rfc7677(void **state)
{
	char out[512];
	pgc_sauth_error e;
	uint8_t ck[32];
	uint8_t sk[32];
	uint8_t want[64];
	pgc_scram_server *ss;

	(void) state;
	ss = srv_first("user", SCRAM_PENCIL, NULL, 0, "SCRAM-SHA-256", RFC7677_CFIRST, RFC7677_SNONCE, RFC_SFIRST);
	assert_int_equal(pgc_scram_server_keys(ss, ck, sk), -1);    /* not yet */
	assert_int_equal(pgc_scram_server_final(ss, RFC7677_CFINAL, strlen(RFC7677_CFINAL), out, sizeof(out), &e),
					 (int) strlen(RFC7677_SFINAL));
	assert_string_equal(out, RFC7677_SFINAL);
	assert_string_equal(e.sqlstate, "");
	/* pass-through keys: ClientKey recovered from the proof, ServerKey from the secret */
	assert_int_equal(pgc_scram_server_keys(ss, ck, sk), 0);
	unb64(PENCIL_CLIENT_KEY, want);
	assert_memory_equal(ck, want, 32);
	unb64(PENCIL_SERVER_KEY, want);
	assert_memory_equal(sk, want, 32);
	/* over: nothing more is accepted */
	assert_int_equal(pgc_scram_server_final(ss, RFC7677_CFINAL, strlen(RFC7677_CFINAL), out, sizeof(out), &e),
					 PGC_SAUTH_INTERNAL);
	pgc_scram_server_free(ss);

	/* the same exchange with libpq's empty n= (the password client in this file) */
	ss = srv_first("user", SCRAM_PENCIL, NULL, 0, "SCRAM-SHA-256", "n,,n=,r=" RFC_NONCE, RFC7677_SNONCE, RFC_SFIRST);
	assert_int_equal(pgc_scram_server_final(ss, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out), &e),
					 (int) strlen(RFC_SFINAL));
	assert_string_equal(out, RFC_SFINAL);
	pgc_scram_server_free(ss);
}

/* Run first (must pass) then final (must fail with rc/sqlstate/message/detail). */
static void
srv_final_fails(const char *secret, const uint8_t *cb, size_t cblen, const char *mech,
				const char *cfirst, const char *snonce, const char *cfinal,
				int rc, const char *sqlstate, const char *message, const char *detail)
{
	char out[512];
	pgc_sauth_error e;
	uint8_t ck[32];
	uint8_t sk[32];
	pgc_scram_server *ss = srv_first("user", secret, cb, cblen, mech, cfirst, snonce, NULL);

	memset(out, 0, sizeof(out));
	assert_int_equal(pgc_scram_server_final(ss, cfinal, strlen(cfinal), out, sizeof(out), &e), rc);
	assert_string_equal(e.sqlstate, sqlstate);
	assert_string_equal(e.message, message);
	assert_string_equal(e.detail, detail);
	assert_string_equal(out, "");
	assert_int_equal(pgc_scram_server_keys(ss, ck, sk), -1);
	pgc_scram_server_free(ss);
}

#define RFC_FINAL_FAILS(cfinal, rc, st, msg, det) \
	srv_final_fails(SCRAM_PENCIL, NULL, 0, "SCRAM-SHA-256", RFC7677_CFIRST, RFC7677_SNONCE, cfinal, rc, st, msg, det)

static void
test_scram_server_wrong_proof(void **state)
{
	char buf[512];
	char err[256];
	char out[512];
	pgc_sauth_error e;
	pgc_scram_server *ss;
	pgc_scram_client *sc;
	int n;

	(void) state;
	/* one character of the proof changed */
	RFC_FINAL_FAILS("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
					"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=",
					PGC_SAUTH_FAILED, "28P01", "password authentication failed for user \"user\"", "");
	/* the right proof for another secret */
	srv_final_fails("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
					"yERwYmHlx0VrpoYfOn54hMTjBUKWnmK42IDjnWgQWkk=:RQZr9F8QCYmmp35tAVzp0VB/kDwY283N+s24jDDliG4=",
					NULL, 0, "SCRAM-SHA-256", RFC7677_CFIRST, RFC7677_SNONCE, RFC7677_CFINAL,
					PGC_SAUTH_FAILED, "28P01", "password authentication failed for user \"user\"", "");

	/* a real client with the wrong password */
	sc = pgc_scram_client_new("pencil2");
	ss = pgc_scram_server_new("alice", SCRAM_PENCIL, NULL, 0);
	n = pgc_scram_client_first(sc, buf, sizeof(buf));
	n = pgc_scram_server_first(ss, "SCRAM-SHA-256", buf, (size_t) n, out, sizeof(out), &e);
	assert_true(n > 0);
	n = pgc_scram_client_final(sc, out, (size_t) n, buf, sizeof(buf), err, sizeof(err));
	assert_true(n > 0);
	assert_int_equal(pgc_scram_server_final(ss, buf, (size_t) n, out, sizeof(out), &e), PGC_SAUTH_FAILED);
	assert_string_equal(e.message, "password authentication failed for user \"alice\"");
	assert_string_equal(e.log_detail, "");
	pgc_scram_server_free(ss);
	pgc_scram_client_free(sc);
}

static void
test_scram_server_nonce(void **state)
{
	(void) state;
	/* the server part changed, cut, or extended; the client part changed */
	RFC_FINAL_FAILS("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
					"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
					PGC_SAUTH_PROTOCOL, "08P01", "invalid SCRAM response", "Nonce does not match.");
	RFC_FINAL_FAILS("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k,"
					"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
					PGC_SAUTH_PROTOCOL, "08P01", "invalid SCRAM response", "Nonce does not match.");
	RFC_FINAL_FAILS("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k00,"
					"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
					PGC_SAUTH_PROTOCOL, "08P01", "invalid SCRAM response", "Nonce does not match.");
	RFC_FINAL_FAILS("c=biws,r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
					"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
					PGC_SAUTH_PROTOCOL, "08P01", "invalid SCRAM response", "Nonce does not match.");
	RFC_FINAL_FAILS("c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
					PGC_SAUTH_PROTOCOL, "08P01", "invalid SCRAM response", "Nonce does not match.");
}

static void
test_scram_server_malformed_final(void **state)
{
	(void) state;
#define MAL(cfinal, detail) RFC_FINAL_FAILS(cfinal, PGC_SAUTH_PROTOCOL, "08P01", "malformed SCRAM message", detail)
	MAL("", "The message is empty.");
	MAL("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"Expected attribute \"c\" but found \"'r'\".");
	MAL("c:biws", "Expected character \"=\" for attribute \"c\".");
	MAL("c=biws", "Expected attribute \"r\" but found \"0x00\".");
	MAL("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "Attribute expected, but found end of string.");
	MAL("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,1=x",
		"Attribute expected, but found invalid character \"'1'\".");
	MAL("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
		"Malformed proof in client-final-message.");
	MAL("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ==",
		"Malformed proof in client-final-message.");
	MAL("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=",
		"Malformed proof in client-final-message.");
	MAL("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1",
		"Garbage found at the end of client-final-message.");
#undef MAL
	/* c= must repeat the GS2 header: "n,," is biws, "y,," is eSws */
	RFC_FINAL_FAILS("c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
					"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
					PGC_SAUTH_PROTOCOL, "08P01",
					"unexpected SCRAM channel-binding attribute in client-final-message", "");
	/* a NUL inside */
	{
		static const char with_nul[] = "c=biws,r=x\0y";
		char out[512];
		pgc_sauth_error e;
		pgc_scram_server *ss = srv_first("user", SCRAM_PENCIL, NULL, 0, "SCRAM-SHA-256", RFC7677_CFIRST, NULL, NULL);

		assert_int_equal(pgc_scram_server_final(ss, with_nul, sizeof(with_nul) - 1, out, sizeof(out), &e),
						 PGC_SAUTH_PROTOCOL);
		assert_string_equal(e.detail, "Message length does not match input length.");
		pgc_scram_server_free(ss);
	}
	/* extensions before p= are skipped, but they are part of the signed message */
	RFC_FINAL_FAILS("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,x=ext,"
					"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
					PGC_SAUTH_FAILED, "28P01", "password authentication failed for user \"user\"", "");
}

/* Expect server_first to refuse cfirst. */
static void
srv_first_fails(const uint8_t *cb, size_t cblen, const char *mech, const char *cfirst, size_t len,
				int rc, const char *sqlstate, const char *message, const char *detail)
{
	char out[512];
	pgc_sauth_error e;
	pgc_scram_server *ss = pgc_scram_server_new("user", SCRAM_PENCIL, cb, cblen);

	assert_non_null(ss);
	assert_int_equal(pgc_scram_server_first(ss, mech, cfirst, len, out, sizeof(out), &e), rc);
	assert_string_equal(e.sqlstate, sqlstate);
	assert_string_equal(e.message, message);
	assert_string_equal(e.detail, detail);
	/* no second chance */
	assert_int_equal(pgc_scram_server_first(ss, "SCRAM-SHA-256", RFC7677_CFIRST, strlen(RFC7677_CFIRST),
											out, sizeof(out), &e), PGC_SAUTH_INTERNAL);
	assert_int_equal(pgc_scram_server_final(ss, RFC7677_CFINAL, strlen(RFC7677_CFINAL), out, sizeof(out), &e),
					 PGC_SAUTH_INTERNAL);
	pgc_scram_server_free(ss);
}

#define FIRST_FAILS(cfirst, rc, st, msg, det) \
	srv_first_fails(NULL, 0, "SCRAM-SHA-256", cfirst, strlen(cfirst), rc, st, msg, det)
#define FIRST_MAL(cfirst, det) \
	FIRST_FAILS(cfirst, PGC_SAUTH_PROTOCOL, "08P01", "malformed SCRAM message", det)

static void
test_scram_server_malformed_first(void **state)
{
	static const char with_nul[] = "n,,n=,r=abc\0def";

	(void) state;
	FIRST_MAL("", "The message is empty.");
	srv_first_fails(NULL, 0, "SCRAM-SHA-256", with_nul, sizeof(with_nul) - 1, PGC_SAUTH_PROTOCOL, "08P01",
					"malformed SCRAM message", "Message length does not match input length.");
	FIRST_MAL("x,,n=,r=abc", "Unexpected channel-binding flag \"'x'\".");
	FIRST_MAL("\x01,,n=,r=abc", "Unexpected channel-binding flag \"0x01\".");
	FIRST_MAL("n;,n=,r=abc", "Comma expected, but found character \"';'\".");
	FIRST_MAL("n", "Comma expected, but found character \"0x00\".");
	FIRST_MAL("n,x,n=,r=abc", "Unexpected attribute \"'x'\" in client-first-message.");
	FIRST_MAL("n,,r=abc", "Expected attribute \"n\" but found \"'r'\".");
	FIRST_MAL("n,,n,r=abc", "Expected character \"=\" for attribute \"n\".");
	FIRST_MAL("n,,n=", "Expected attribute \"r\" but found \"0x00\".");
	FIRST_MAL("n,,n=,r=abc,9", "Attribute expected, but found invalid character \"'9'\".");
	FIRST_MAL("n,,n=,r=abc,x", "Expected character \"=\" for attribute \"x\".");
	FIRST_FAILS("n,,n=,r=ab\x7f" "c", PGC_SAUTH_PROTOCOL, "08P01", "non-printable characters in SCRAM nonce", "");
	FIRST_FAILS("n,,n=,r=ab c", PGC_SAUTH_PROTOCOL, "08P01", "non-printable characters in SCRAM nonce", "");
	FIRST_FAILS("n,a=alice,n=,r=abc", PGC_SAUTH_UNSUPPORTED, "0A000",
				"client uses authorization identity, but it is not supported", "");
	FIRST_FAILS("n,,m=ext,n=,r=abc", PGC_SAUTH_UNSUPPORTED, "0A000",
				"client requires an unsupported SCRAM extension", "");
	/* mechanisms */
	srv_first_fails(NULL, 0, "SCRAM-SHA-1", RFC7677_CFIRST, strlen(RFC7677_CFIRST), PGC_SAUTH_PROTOCOL, "08P01",
					"client selected an invalid SASL authentication mechanism", "");
	srv_first_fails(NULL, 0, NULL, RFC7677_CFIRST, strlen(RFC7677_CFIRST), PGC_SAUTH_PROTOCOL, "08P01",
					"client selected an invalid SASL authentication mechanism", "");
	/* PLUS is only valid when channel binding data is there (TLS) */
	srv_first_fails(NULL, 0, "SCRAM-SHA-256-PLUS", CB_CFIRST, strlen(CB_CFIRST), PGC_SAUTH_PROTOCOL, "08P01",
					"client selected an invalid SASL authentication mechanism", "");
}

static void
test_scram_server_extensions_ok(void **state)
{
	char out[512];
	pgc_sauth_error e;
	pgc_scram_server *ss;

	(void) state;
	/* the user name in the exchange is ignored, extensions after the nonce too */
	ss = srv_first("someone", SCRAM_PENCIL, NULL, 0, "SCRAM-SHA-256", RFC7677_CFIRST ",x=y,z=", RFC7677_SNONCE, RFC_SFIRST);
	/* ... but they are in client-first-bare, so the RFC proof no longer holds */
	assert_int_equal(pgc_scram_server_final(ss, RFC7677_CFINAL, strlen(RFC7677_CFINAL), out, sizeof(out), &e),
					 PGC_SAUTH_FAILED);
	pgc_scram_server_free(ss);
}

static void
test_scram_server_channel_binding(void **state)
{
	uint8_t cb[32];
	uint8_t other[32];
	char out[512];
	pgc_sauth_error e;
	pgc_scram_server *ss;

	(void) state;
	unhex(CB_HEX, cb);
	memcpy(other, cb, sizeof(other));
	other[31] ^= 1;

	/* SCRAM-SHA-256-PLUS with the right certificate hash */
	ss = srv_first("user", SCRAM_PENCIL, cb, sizeof(cb), "SCRAM-SHA-256-PLUS", CB_CFIRST, "cbServerNonce", CB_SFIRST);
	assert_int_equal(pgc_scram_server_final(ss, CB_CFINAL, strlen(CB_CFINAL), out, sizeof(out), &e),
					 (int) strlen(CB_SFINAL));
	assert_string_equal(out, CB_SFINAL);
	pgc_scram_server_free(ss);

	/* the client saw another certificate (a man in the middle) */
	srv_final_fails(SCRAM_PENCIL, other, sizeof(other), "SCRAM-SHA-256-PLUS", CB_CFIRST, "cbServerNonce", CB_CFINAL,
					PGC_SAUTH_CHANNEL, "28000", "SCRAM channel binding check failed", "");
	/* PLUS, but the client sends "biws" */
	srv_final_fails(SCRAM_PENCIL, cb, sizeof(cb), "SCRAM-SHA-256-PLUS", CB_CFIRST, "cbServerNonce",
					"c=biws,r=cbClientNoncecbServerNonce,p=XuLKUUa6Gl2Ipund8AjisVDS7HOnlzZHSlygLFzulIg=",
					PGC_SAUTH_CHANNEL, "28000", "SCRAM channel binding check failed", "");

	/* PLUS chosen but no binding in the GS2 header, and the reverse */
	srv_first_fails(cb, sizeof(cb), "SCRAM-SHA-256-PLUS", RFC7677_CFIRST, strlen(RFC7677_CFIRST),
					PGC_SAUTH_PROTOCOL, "08P01", "malformed SCRAM message",
					"The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data.");
	srv_first_fails(cb, sizeof(cb), "SCRAM-SHA-256-PLUS", Y_CFIRST, strlen(Y_CFIRST),
					PGC_SAUTH_PROTOCOL, "08P01", "malformed SCRAM message",
					"The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data.");
	srv_first_fails(cb, sizeof(cb), "SCRAM-SHA-256", CB_CFIRST, strlen(CB_CFIRST),
					PGC_SAUTH_PROTOCOL, "08P01", "malformed SCRAM message",
					"The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.");
	srv_first_fails(cb, sizeof(cb), "SCRAM-SHA-256-PLUS", "p=tls-unique,,n=,r=abc", strlen("p=tls-unique,,n=,r=abc"),
					PGC_SAUTH_PROTOCOL, "08P01", "unsupported SCRAM channel-binding type \"tls-unique\"", "");

	/* "y" (client could bind, thinks we can't): refused when we can (downgrade), fine when we can't */
	srv_first_fails(cb, sizeof(cb), "SCRAM-SHA-256", Y_CFIRST, strlen(Y_CFIRST),
					PGC_SAUTH_CHANNEL, "28000", "SCRAM channel binding negotiation error",
					"The client supports SCRAM channel binding but thinks the server does not.  "
					"However, this server does support channel binding.");
	ss = srv_first("user", SCRAM_PENCIL, NULL, 0, "SCRAM-SHA-256", Y_CFIRST, "yServer", Y_SFIRST);
	assert_int_equal(pgc_scram_server_final(ss, Y_CFINAL, strlen(Y_CFINAL), out, sizeof(out), &e),
					 (int) strlen(Y_SFINAL));
	assert_string_equal(out, Y_SFINAL);
	pgc_scram_server_free(ss);
	/* "y" then "biws" in client-final: the flag must be the same */
	srv_final_fails(SCRAM_PENCIL, NULL, 0, "SCRAM-SHA-256", Y_CFIRST, "yServer",
					"c=biws,r=yClientyServer,p=Ih/0bhQmF5QCnzX/vfRCmEs0ulw85ws4JSPl+daguCE=",
					PGC_SAUTH_PROTOCOL, "08P01",
					"unexpected SCRAM channel-binding attribute in client-final-message", "");

	/* with TLS, a client that doesn't bind ("n", SCRAM-SHA-256) is still fine, as in PostgreSQL */
	ss = srv_first("user", SCRAM_PENCIL, cb, sizeof(cb), "SCRAM-SHA-256", RFC7677_CFIRST, RFC7677_SNONCE, RFC_SFIRST);
	assert_int_equal(pgc_scram_server_final(ss, RFC7677_CFINAL, strlen(RFC7677_CFINAL), out, sizeof(out), &e),
					 (int) strlen(RFC7677_SFINAL));
	pgc_scram_server_free(ss);
}

static void
test_scram_server_mock(void **state)
{
	char a[512];
	char b[512];
	char c[512];
	pgc_sauth_error e;
	pgc_scram_server *s1 = pgc_scram_server_new("ghost", NULL, NULL, 0);
	pgc_scram_server *s2 = pgc_scram_server_new("ghost", NULL, NULL, 0);
	pgc_scram_server *s3 = pgc_scram_server_new("phantom", NULL, NULL, 0);
	uint8_t ck[32];
	uint8_t sk[32];
	int n;

	(void) state;
	n = pgc_scram_server_first(s1, "SCRAM-SHA-256", RFC7677_CFIRST, strlen(RFC7677_CFIRST), a, sizeof(a), &e);
	assert_int_equal(n, (int) strlen(a));
	n = pgc_scram_server_first(s2, "SCRAM-SHA-256", RFC7677_CFIRST, strlen(RFC7677_CFIRST), b, sizeof(b), &e);
	assert_int_equal(n, (int) strlen(b));
	n = pgc_scram_server_first(s3, "SCRAM-SHA-256", RFC7677_CFIRST, strlen(RFC7677_CFIRST), c, sizeof(c), &e);
	assert_int_equal(n, (int) strlen(c));
	/* r=<client nonce><24 random chars>,s=<24 chars>,i=4096: the salt is stable per user */
	assert_int_equal(strlen(a), strlen("r=rOprNGfwEbeRWgbNEkqO") + 24 + strlen(",s=") + 24 + strlen(",i=4096"));
	assert_string_equal(a + strlen(a) - 7, ",i=4096");
	assert_memory_equal(a + 2 + 20 + 24, b + 2 + 20 + 24, 3 + 24);
	assert_memory_not_equal(a + 2 + 20 + 24, c + 2 + 20 + 24, 3 + 24);
	assert_memory_not_equal(a, b, 2 + 20 + 24);     /* the nonces differ */
	/* whatever the client says, it fails like a wrong password */
	snprintf(c, sizeof(c), "c=biws,r=%.*s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", 20 + 24, a + 2);
	assert_int_equal(pgc_scram_server_final(s1, c, strlen(c), b, sizeof(b), &e), PGC_SAUTH_FAILED);
	assert_string_equal(e.sqlstate, "28P01");
	assert_string_equal(e.message, "password authentication failed for user \"ghost\"");
	assert_string_equal(e.log_detail, "");
	assert_int_equal(pgc_scram_server_keys(s1, ck, sk), -1);
	pgc_scram_server_free(s1);
	pgc_scram_server_free(s2);
	pgc_scram_server_free(s3);

	/* an md5 secret: mock too, with PostgreSQL's log detail */
	s1 = srv_first("bob", "md5e4f70fb0b8f2745aa7a69557c80cbd0c", NULL, 0, "SCRAM-SHA-256",
				   RFC7677_CFIRST, RFC7677_SNONCE, NULL);
	assert_int_equal(pgc_scram_server_final(s1, RFC7677_CFINAL, strlen(RFC7677_CFINAL), b, sizeof(b), &e),
					 PGC_SAUTH_FAILED);
	assert_string_equal(e.log_detail, "User \"bob\" does not have a valid SCRAM secret.");
	pgc_scram_server_free(s1);
	/* an empty secret: never a success */
	srv_final_fails("", NULL, 0, "SCRAM-SHA-256", RFC7677_CFIRST, RFC7677_SNONCE, RFC7677_CFINAL,
					PGC_SAUTH_FAILED, "28P01", "password authentication failed for user \"user\"", "");
}

/* A complete exchange between this file's client and server; returns server_final's result. */
static int
loop_exchange(pgc_scram_client *sc, pgc_scram_server *ss, int *client_ok)
{
	char c1[512];
	char s1[512];
	char c2[512];
	char s2[512];
	char err[256];
	pgc_sauth_error e;
	int n;
	int rc;

	n = pgc_scram_client_first(sc, c1, sizeof(c1));
	assert_true(n > 0);
	n = pgc_scram_server_first(ss, "SCRAM-SHA-256", c1, (size_t) n, s1, sizeof(s1), &e);
	assert_true(n > 0);
	n = pgc_scram_client_final_keys(sc, s1, (size_t) n, c2, sizeof(c2), err, sizeof(err));
	if (n < 0)
		n = pgc_scram_client_final(sc, s1, strlen(s1), c2, sizeof(c2), err, sizeof(err));
	assert_true(n > 0);
	rc = pgc_scram_server_final(ss, c2, (size_t) n, s2, sizeof(s2), &e);
	*client_ok = rc > 0 && pgc_scram_client_verify(sc, s2, (size_t) rc, err, sizeof(err)) == 0;
	return rc;
}

static void
test_scram_server_clear_password(void **state)
{
	pgc_scram_client *sc;
	pgc_scram_server *ss;
	int ok = 0;

	(void) state;
	/* the auth file holds the clear password: a secret is made for the exchange */
	sc = pgc_scram_client_new("correct horse");
	ss = pgc_scram_server_new("alice", "correct horse", NULL, 0);
	assert_true(loop_exchange(sc, ss, &ok) > 0);
	assert_true(ok);
	pgc_scram_client_free(sc);
	pgc_scram_server_free(ss);

	sc = pgc_scram_client_new("correct horse!");
	ss = pgc_scram_server_new("alice", "correct horse", NULL, 0);
	assert_int_equal(loop_exchange(sc, ss, &ok), PGC_SAUTH_FAILED);
	assert_false(ok);
	pgc_scram_client_free(sc);
	pgc_scram_server_free(ss);
}

static void
test_scram_passthrough(void **state)
{
	char buf[512];
	char err[256];
	char out[512];
	pgc_sauth_error e;
	uint8_t ck[32];
	uint8_t sk[32];
	pgc_scram_server *ss;
	pgc_scram_client *sc;
	int ok = 0;
	int n;

	(void) state;
	/* 1. a client logs in to pgcarrier (RFC 7677 exchange): pgcarrier learns ClientKey */
	ss = srv_first("user", SCRAM_PENCIL, NULL, 0, "SCRAM-SHA-256", RFC7677_CFIRST, RFC7677_SNONCE, RFC_SFIRST);
	assert_true(pgc_scram_server_final(ss, RFC7677_CFINAL, strlen(RFC7677_CFINAL), out, sizeof(out), &e) > 0);
	assert_int_equal(pgc_scram_server_keys(ss, ck, sk), 0);
	pgc_scram_server_free(ss);

	/* 2. with those keys, it answers a server exactly as the password would have */
	sc = pgc_scram_client_new_keys(ck, sk);
	assert_non_null(sc);
	pgc_scram_client_set_nonce(sc, RFC_NONCE);
	assert_int_equal(pgc_scram_client_first(sc, buf, sizeof(buf)), 28);
	n = pgc_scram_client_final_keys(sc, RFC_SFIRST, strlen(RFC_SFIRST), buf, sizeof(buf), err, sizeof(err));
	assert_int_equal(n, (int) strlen(RFC_CFINAL));
	assert_string_equal(buf, RFC_CFINAL);
	assert_int_equal(pgc_scram_client_verify(sc, RFC_SFINAL, strlen(RFC_SFINAL), err, sizeof(err)), 0);
	pgc_scram_client_free(sc);

	/* 3. and a server holding the same secret accepts it, random nonces and all */
	sc = pgc_scram_client_new_keys(ck, sk);
	ss = pgc_scram_server_new("user", SCRAM_PENCIL, NULL, 0);
	assert_true(loop_exchange(sc, ss, &ok) > 0);
	assert_true(ok);
	pgc_scram_client_free(sc);
	pgc_scram_server_free(ss);

	/* 4. a server with another secret refuses it */
	sc = pgc_scram_client_new_keys(ck, sk);
	ss = pgc_scram_server_new("user", "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$"
							  "yERwYmHlx0VrpoYfOn54hMTjBUKWnmK42IDjnWgQWkk=:RQZr9F8QCYmmp35tAVzp0VB/kDwY283N+s24jDDliG4=",
							  NULL, 0);
	assert_int_equal(loop_exchange(sc, ss, &ok), PGC_SAUTH_FAILED);
	assert_false(ok);
	pgc_scram_client_free(sc);
	pgc_scram_server_free(ss);

	/* 5. the right ClientKey with a wrong ServerKey: the server accepts, but the client sees it's an impostor */
	sk[0] ^= 1;
	sc = pgc_scram_client_new_keys(ck, sk);
	ss = pgc_scram_server_new("user", SCRAM_PENCIL, NULL, 0);
	assert_true(loop_exchange(sc, ss, &ok) > 0);
	assert_false(ok);
	pgc_scram_client_free(sc);
	pgc_scram_server_free(ss);

	/* _final_keys only for key clients, and it checks server-first like _final */
	sc = pgc_scram_client_new("pencil");
	assert_int_equal(pgc_scram_client_first(sc, buf, sizeof(buf)), 8 + 24);
	assert_int_equal(pgc_scram_client_final_keys(sc, RFC_SFIRST, strlen(RFC_SFIRST), buf, sizeof(buf), err, sizeof(err)), -1);
	pgc_scram_client_free(sc);
	sc = pgc_scram_client_new_keys(ck, sk);
	pgc_scram_client_set_nonce(sc, RFC_NONCE);
	assert_int_equal(pgc_scram_client_first(sc, buf, sizeof(buf)), 28);
	assert_int_equal(pgc_scram_client_final_keys(sc, "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", 56,
												 buf, sizeof(buf), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "iteration"));
	pgc_scram_client_free(sc);
	sc = pgc_scram_client_new_keys(ck, sk);
	pgc_scram_client_set_nonce(sc, RFC_NONCE);
	pgc_scram_client_first(sc, buf, sizeof(buf));
	assert_int_equal(pgc_scram_client_final_keys(sc, "r=XOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1", 56,
												 buf, sizeof(buf), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nonce"));
	pgc_scram_client_free(sc);
	sc = pgc_scram_client_new_keys(ck, sk);
	pgc_scram_client_set_nonce(sc, RFC_NONCE);
	pgc_scram_client_first(sc, buf, sizeof(buf));
	assert_int_equal(pgc_scram_client_final_keys(sc, "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22Za!0SNY7soEsUEjb6gQ==,i=1", 56,
												 buf, sizeof(buf), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "salt"));
	pgc_scram_client_free(sc);
	assert_null(pgc_scram_client_new_keys(NULL, sk));
}

static void
test_scram_server_misc(void **state)
{
	char out[512];
	pgc_sauth_error e;
	pgc_scram_server *ss;

	(void) state;
	/* final before first */
	ss = pgc_scram_server_new("user", SCRAM_PENCIL, NULL, 0);
	assert_int_equal(pgc_scram_server_final(ss, RFC7677_CFINAL, strlen(RFC7677_CFINAL), out, sizeof(out), &e),
					 PGC_SAUTH_INTERNAL);
	assert_string_equal(e.sqlstate, "XX000");
	pgc_scram_server_free(ss);

	/* output buffers too small */
	ss = pgc_scram_server_new("user", SCRAM_PENCIL, NULL, 0);
	pgc_scram_server_set_nonce(ss, RFC7677_SNONCE);
	assert_int_equal(pgc_scram_server_first(ss, "SCRAM-SHA-256", RFC7677_CFIRST, strlen(RFC7677_CFIRST),
											out, strlen(RFC_SFIRST), &e), PGC_SAUTH_INTERNAL);
	pgc_scram_server_free(ss);
	ss = srv_first("user", SCRAM_PENCIL, NULL, 0, "SCRAM-SHA-256", RFC7677_CFIRST, RFC7677_SNONCE, RFC_SFIRST);
	assert_int_equal(pgc_scram_server_final(ss, RFC7677_CFINAL, strlen(RFC7677_CFINAL), out, strlen(RFC7677_SFINAL), &e),
					 PGC_SAUTH_INTERNAL);
	pgc_scram_server_free(ss);

	/* random server nonce: 18 bytes, 24 base64 characters */
	ss = srv_first("user", SCRAM_PENCIL, NULL, 0, "SCRAM-SHA-256", RFC7677_CFIRST, NULL, NULL);
	pgc_scram_server_free(ss);
	ss = pgc_scram_server_new("user", SCRAM_PENCIL, NULL, 0);
	pgc_scram_server_set_nonce(ss, "bad,nonce");    /* ignored */
	assert_int_equal(pgc_scram_server_first(ss, "SCRAM-SHA-256", RFC7677_CFIRST, strlen(RFC7677_CFIRST),
											out, sizeof(out), NULL),
					 (int) strlen("r=rOprNGfwEbeRWgbNEkqO") + 24 + (int) strlen(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
	/* the server part of the nonce: no '=' padding, no ',' */
	assert_null(memchr(out + 2 + 20, '=', 24));
	assert_null(memchr(out + 2 + 20, ',', 24));
	assert_memory_equal(out + 2 + 20 + 24, ",s=", 3);
	pgc_scram_server_free(ss);
	pgc_scram_server_free(NULL);
	assert_int_equal(pgc_scram_server_first(NULL, "SCRAM-SHA-256", "n,,n=,r=a", 9, out, sizeof(out), &e),
					 PGC_SAUTH_INTERNAL);
}

/* ------------------------------------------------- tls-server-end-point */

/* EC P-256 self-signed certificates, signed with ecdsa-with-SHA1/256/384, and Ed25519. */
static const char CERT_SHA1[] =
	"MIIBeTCCASCgAwIBAgIUIA8X80ACP7ee5NxudVra0cCNmckwCQYHKoZIzj0EATATMREwDwYDVQQD"
	"DAhwZ2Mtc2hhMTAeFw0yNjExMjIwNzQ5NThaFw0zNjExMTkwNzQ5NThaMBMxETAPBgNVBAMMCHBn"
	"Yy1zaGExMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAET+0oGxATHUhrQdMoDae9wkpNyJy5woAs"
	"ORxQXFHl9gaL7RyfsEl88RcEao/wujOdPkJ4GKsRjjmKuP6rIS48XaNTMFEwHQYDVR0OBBYEFNOw"
	"4o9jIYdH19/MKrHXn44Yq5xjMB8GA1UdIwQYMBaAFNOw4o9jIYdH19/MKrHXn44Yq5xjMA8GA1Ud"
	"EwEB/wQFMAMBAf8wCQYHKoZIzj0EAQNIADBFAiEA2rH0oPqQDEO3tdXhpLtyypX0QwFRdsy/exhl"
	"2qrmN3sCIHABa3UYmt1RjnOGav1RTCXcuaOroB/OBckLVmPeKy0d";
static const char CERT_SHA256[] =
	"MIIBfzCCASWgAwIBAgIUDxc8Hr5Jru3vuHShjwSdKZ/FCiIwCgYIKoZIzj0EAwIwFTETMBEGA1UE"
	"AwwKcGdjLXNoYTI1NjAeFw0yNjExMjIwNzQ5NThaFw0zNjExMTkwNzQ5NThaMBUxEzARBgNVBAMM"
	"CnBnYy1zaGEyNTYwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARP7SgbEBMdSGtB0ygNp73CSk3I"
	"nLnCgCw5HFBcUeX2BovtHJ+wSXzxFwRqj/C6M50+QngYqxGOOYq4/qshLjxdo1MwUTAdBgNVHQ4E"
	"FgQU07Dij2Mhh0fX38wqsdefjhirnGMwHwYDVR0jBBgwFoAU07Dij2Mhh0fX38wqsdefjhirnGMw"
	"DwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiAxs0wCmb5f5YD456noO8PNrWmR5LrF"
	"8xSsDvC8xd1xPAIhAOPqrlSj+zUVeF/QxGDApvgvIffAwYkfcjTMVaWQxtWK";
static const char CERT_SHA384[] =
	"MIIBfjCCASWgAwIBAgIUbIg54GDI9GJJUoSOL8f443JnzZ8wCgYIKoZIzj0EAwMwFTETMBEGA1UE"
	"AwwKcGdjLXNoYTM4NDAeFw0yNjExMjIwNzQ5NThaFw0zNjExMTkwNzQ5NThaMBUxEzARBgNVBAMM"
	"CnBnYy1zaGEzODQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARP7SgbEBMdSGtB0ygNp73CSk3I"
	"nLnCgCw5HFBcUeX2BovtHJ+wSXzxFwRqj/C6M50+QngYqxGOOYq4/qshLjxdo1MwUTAdBgNVHQ4E"
	"FgQU07Dij2Mhh0fX38wqsdefjhirnGMwHwYDVR0jBBgwFoAU07Dij2Mhh0fX38wqsdefjhirnGMw"
	"DwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAwNHADBEAiADYlrNIWqDNFo9dl/X8m77rwKSiDwg"
	"ocx/RTqhz/IoHAIgPdv8hig/XOlu5QV0aAdiMFAPrDCpVgl7VfsgQ4iLix0=";
static const char CERT_ED25519[] =
	"MIIBQDCB86ADAgECAhQ8sev5cgaEmD9y2/oZQTv12SCHJzAFBgMrZXAwFjEUMBIGA1UEAwwLcGdj"
	"LWVkMjU1MTkwHhcNMjYxMTIyMDc0OTU5WhcNMzYxMTE5MDc0OTU5WjAWMRQwEgYDVQQDDAtwZ2Mt"
	"ZWQyNTUxOTAqMAUGAytlcAMhACtIzbHtUB4ZTXx3JFOUb/cmOBWbR0gFZSzawE34NmVao1MwUTAd"
	"BgNVHQ4EFgQUSDHiGSee+dUZfQimUBTIGHvWL8QwHwYDVR0jBBgwFoAUSDHiGSee+dUZfQimUBTI"
	"GHvWL8QwDwYDVR0TAQH/BAUwAwEB/zAFBgMrZXADQQB9Av5etyN+/fSVqM5WTf1xefTWGp7BGu0I"
	"hozySIYKDANI8UO1D124TIJvy3VLsp/NhMS3yax/WSAAe6y9DTIJ";

static void
end_point_is(const char *cert_b64, const char *hex)
{
	uint8_t der[1024];
	uint8_t want[64];
	uint8_t got[64];
	size_t n = unb64(cert_b64, der);
	size_t wn = unhex(hex, want);

	assert_int_equal(pgc_tls_server_end_point(der, n, got, sizeof(got)), (int) wn);
	assert_memory_equal(got, want, wn);
	/* too small an output, or trailing bytes after the certificate */
	assert_int_equal(pgc_tls_server_end_point(der, n, got, wn - 1), -1);
	assert_int_equal(pgc_tls_server_end_point(der, n + 1, got, sizeof(got)), -1);
}

static void
test_tls_server_end_point(void **state)
{
	uint8_t der[1024];
	uint8_t got[64];
	size_t n;

	(void) state;
	/* SHA-1 signature: SHA-256 hash (RFC 5929) */
	end_point_is(CERT_SHA1, "58a65e35955739ac8170cd1d7c85b116f3f13828c010efad2164caa3389d3ad9");
	end_point_is(CERT_SHA256, "ddb0812525f836fe4521a1794b64fd10b64f065867cc75566dd0515cd1237b4b");
	end_point_is(CERT_SHA384, "0ce4324814a59b517ddd747e6800206c869ac6f4327a86285effb34d5cafd859"
				 "03beabaad833ee6969c3b59d30d8bc3e");
	/* Ed25519 has no separate hash: undefined, refused (as PostgreSQL) */
	n = unb64(CERT_ED25519, der);
	assert_int_equal(pgc_tls_server_end_point(der, n, got, sizeof(got)), -1);
	/* not a certificate */
	assert_int_equal(pgc_tls_server_end_point((const uint8_t *) "hello", 5, got, sizeof(got)), -1);
	n = unb64(CERT_SHA256, der);
	assert_int_equal(pgc_tls_server_end_point(der, n - 1, got, sizeof(got)), -1);
	assert_int_equal(pgc_tls_server_end_point(NULL, 0, got, sizeof(got)), -1);
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
		cmocka_unit_test(test_scram_secret_parse),
		cmocka_unit_test(test_scram_secret_build),
		cmocka_unit_test(test_password_verify),
		cmocka_unit_test(test_md5_verify),
		cmocka_unit_test(test_scram_server_rfc7677),
		cmocka_unit_test(test_scram_server_wrong_proof),
		cmocka_unit_test(test_scram_server_nonce),
		cmocka_unit_test(test_scram_server_malformed_final),
		cmocka_unit_test(test_scram_server_malformed_first),
		cmocka_unit_test(test_scram_server_extensions_ok),
		cmocka_unit_test(test_scram_server_channel_binding),
		cmocka_unit_test(test_scram_server_mock),
		cmocka_unit_test(test_scram_server_clear_password),
		cmocka_unit_test(test_scram_passthrough),
		cmocka_unit_test(test_scram_server_misc),
		cmocka_unit_test(test_tls_server_end_point),
	};

	return cmocka_run_group_tests_name("sauth", tests, NULL, NULL);
}
