/*
 * test_proto.c - unit tests for src/engine/proto.c.
 *
 * Packets handed to the parsers are copied into heap buffers of exactly
 * their length, so that ASan (make SAN=1 unit) catches any read past it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* An exact-size heap copy of a startup packet: length word + code + body. */
static uint8_t *
make_packet(uint32_t code, const void *body, size_t bodylen, size_t *len)
{
	uint8_t *p = malloc(8 + bodylen);

	assert_non_null(p);
	pgc_put_u32(p, (uint32_t) (8 + bodylen));
	pgc_put_u32(p + 4, code);
	if (bodylen)
		memcpy(p + 8, body, bodylen);
	*len = 8 + bodylen;
	return p;
}

/* Parse code+body (bodylen bytes, literal NULs included); expect failure with msg. */
static void
parse_fails(uint32_t code, const void *body, size_t bodylen, const char *msg)
{
	size_t len;
	uint8_t *p = make_packet(code, body, bodylen, &len);
	pgc_startup st;
	char err[256] = "";

	assert_int_equal(pgc_parse_startup(p, len, &st, err, sizeof(err)), -1);
	assert_string_equal(err, msg);
	free(p);
}

#define LAYOUT_ERR "invalid startup packet layout: expected terminator as last byte"
/* sizeof of a literal minus its implicit NUL */
#define LIT(s) s, sizeof(s) - 1

/* ---------------------------------------------------------- startup length */

static void
test_startup_length(void **state)
{
	uint8_t b[4];
	uint32_t len = 12345;
	char err[128] = "";

	(void) state;
	/* fewer than 4 bytes: not known yet */
	pgc_put_u32(b, 8);
	assert_int_equal(pgc_startup_length(b, 0, &len, err, sizeof(err)), 0);
	assert_int_equal(pgc_startup_length(b, 3, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 12345);

	assert_int_equal(pgc_startup_length(b, 4, &len, err, sizeof(err)), 1);
	assert_int_equal(len, 8);
	pgc_put_u32(b, PGC_MAX_STARTUP_PACKET);
	assert_int_equal(pgc_startup_length(b, 4, &len, err, sizeof(err)), 1);
	assert_int_equal(len, PGC_MAX_STARTUP_PACKET);

	static const uint32_t bad[] = {0, 4, 7, PGC_MAX_STARTUP_PACKET + 1, 0x7fffffffu, 0xffffffffu};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		err[0] = '\0';
		pgc_put_u32(b, bad[i]);
		assert_int_equal(pgc_startup_length(b, 4, &len, err, sizeof(err)), -1);
		assert_string_equal(err, "invalid length of startup packet");
	}
}

/* ------------------------------------------------------------ startup parse */

static void
test_parse_normal(void **state)
{
	static const char body[] = "user\0alice\0database\0db1\0application_name\0\0options\0-c x=1\0";
	size_t len;
	uint8_t *p = make_packet(PGC_PROTO_V3, body, sizeof(body), &len);   /* final NUL included */
	pgc_startup st;
	char err[256] = "";

	(void) state;
	assert_int_equal(pgc_parse_startup(p, len, &st, err, sizeof(err)), 0);
	assert_int_equal(st.code, PGC_PROTO_V3);
	assert_int_equal(PGC_PROTO_MAJOR(st.code), 3);
	assert_int_equal(PGC_PROTO_MINOR(st.code), 0);
	assert_int_equal(st.nparams, 4);
	assert_string_equal(st.keys[0], "user");
	assert_string_equal(st.values[0], "alice");
	assert_string_equal(st.keys[1], "database");
	assert_string_equal(st.values[1], "db1");
	assert_string_equal(st.keys[2], "application_name");
	assert_string_equal(st.values[2], "");
	assert_string_equal(st.keys[3], "options");
	assert_string_equal(st.values[3], "-c x=1");
	/* strings point into the packet */
	assert_ptr_equal(st.keys[0], (const char *) p + 8);
	assert_string_equal(pgc_startup_get(&st, "user"), "alice");
	assert_string_equal(pgc_startup_get(&st, "database"), "db1");
	assert_string_equal(pgc_startup_get(&st, "application_name"), "");
	assert_null(pgc_startup_get(&st, "nosuch"));
	assert_null(pgc_startup_get(&st, "USER"));
	free(p);
}

static void
test_parse_minor_version_and_empty(void **state)
{
	size_t len;
	uint8_t *p;
	pgc_startup st;
	char err[256] = "";

	(void) state;
	/* 3.2: still parsed; the caller decides about the minor version */
	p = make_packet(PGC_PROTO_V3 + 2, LIT("user\0bob\0\0"), &len);
	assert_int_equal(pgc_parse_startup(p, len, &st, err, sizeof(err)), 0);
	assert_int_equal(PGC_PROTO_MINOR(st.code), 2);
	assert_int_equal(st.nparams, 1);
	assert_string_equal(pgc_startup_get(&st, "user"), "bob");
	free(p);

	/* just the terminator: valid, no parameters */
	p = make_packet(PGC_PROTO_V3, LIT("\0"), &len);
	assert_int_equal(pgc_parse_startup(p, len, &st, err, sizeof(err)), 0);
	assert_int_equal(st.nparams, 0);
	assert_null(pgc_startup_get(&st, "user"));
	free(p);
}

static void
test_parse_missing_terminator(void **state)
{
	(void) state;
	/* no final NUL after the last pair */
	parse_fails(PGC_PROTO_V3, LIT("user\0alice\0"), LAYOUT_ERR);
	/* no body at all */
	parse_fails(PGC_PROTO_V3, NULL, 0, LAYOUT_ERR);
	/* terminator, then more bytes */
	parse_fails(PGC_PROTO_V3, LIT("user\0alice\0\0x"), LAYOUT_ERR);
	parse_fails(PGC_PROTO_V3, LIT("\0\0"), LAYOUT_ERR);
	parse_fails(PGC_PROTO_V3, LIT("user\0alice\0\0\0"), LAYOUT_ERR);
}

static void
test_parse_unterminated(void **state)
{
	(void) state;
	/* key without its NUL */
	parse_fails(PGC_PROTO_V3, LIT("user"), LAYOUT_ERR);
	parse_fails(PGC_PROTO_V3, LIT("user\0alice\0database"), LAYOUT_ERR);
	/* key with no value at all */
	parse_fails(PGC_PROTO_V3, LIT("user\0"), LAYOUT_ERR);
	/* value without its NUL */
	parse_fails(PGC_PROTO_V3, LIT("user\0ali"), LAYOUT_ERR);
	/* key, then the final NUL taken as an empty value: the terminator is missing */
	parse_fails(PGC_PROTO_V3, LIT("user\0alice\0database\0"), LAYOUT_ERR);
}

static void
test_parse_too_many_params(void **state)
{
	char body[PGC_MAX_STARTUP_PARAMS * 16 + 32];
	size_t n = 0;
	size_t len;
	uint8_t *p;
	pgc_startup st;
	char err[256] = "";

	(void) state;
	/* exactly the maximum is fine */
	for (int i = 0; i < PGC_MAX_STARTUP_PARAMS; i++)
	{
		n += (size_t) sprintf(body + n, "k%d", i) + 1;
		n += (size_t) sprintf(body + n, "v%d", i) + 1;
	}
	body[n++] = '\0';
	p = make_packet(PGC_PROTO_V3, body, n, &len);
	assert_int_equal(pgc_parse_startup(p, len, &st, err, sizeof(err)), 0);
	assert_int_equal(st.nparams, PGC_MAX_STARTUP_PARAMS);
	assert_string_equal(pgc_startup_get(&st, "k63"), "v63");
	free(p);

	/* one more is refused */
	n--;
	n += (size_t) sprintf(body + n, "one") + 1;
	n += (size_t) sprintf(body + n, "more") + 1;
	body[n++] = '\0';
	parse_fails(PGC_PROTO_V3, body, n, "too many parameters in startup packet");
}

static void
test_parse_cancel(void **state)
{
	uint8_t body[8];
	size_t len;
	uint8_t *p;
	pgc_startup st;
	char err[256] = "";

	(void) state;
	pgc_put_u32(body, 4242);
	pgc_put_u32(body + 4, 0xdeadbeefu);
	p = make_packet(PGC_CANCEL_REQUEST_CODE, body, 8, &len);
	assert_int_equal(len, 16);
	assert_int_equal(pgc_parse_startup(p, len, &st, err, sizeof(err)), 0);
	assert_int_equal(st.code, PGC_CANCEL_REQUEST_CODE);
	assert_int_equal(st.cancel_pid, 4242);
	assert_int_equal(st.cancel_key, 0xdeadbeefu);
	assert_int_equal(st.nparams, 0);
	free(p);

	parse_fails(PGC_CANCEL_REQUEST_CODE, NULL, 0, "invalid length of cancel request packet");
	parse_fails(PGC_CANCEL_REQUEST_CODE, body, 4, "invalid length of cancel request packet");
	parse_fails(PGC_CANCEL_REQUEST_CODE, body, 7, "invalid length of cancel request packet");
	parse_fails(PGC_CANCEL_REQUEST_CODE, LIT("0123456789"), "invalid length of cancel request packet");
}

static void
test_parse_ssl_gss(void **state)
{
	size_t len;
	uint8_t *p;
	pgc_startup st;
	char err[256] = "";

	(void) state;
	p = make_packet(PGC_SSL_REQUEST_CODE, NULL, 0, &len);
	assert_int_equal(pgc_parse_startup(p, len, &st, err, sizeof(err)), 0);
	assert_int_equal(st.code, PGC_SSL_REQUEST_CODE);
	assert_int_equal(st.nparams, 0);
	free(p);

	p = make_packet(PGC_GSSENC_REQUEST_CODE, NULL, 0, &len);
	assert_int_equal(pgc_parse_startup(p, len, &st, err, sizeof(err)), 0);
	assert_int_equal(st.code, PGC_GSSENC_REQUEST_CODE);
	free(p);

	parse_fails(PGC_SSL_REQUEST_CODE, LIT("\0\0\0\0"), "invalid length of startup packet");
	parse_fails(PGC_GSSENC_REQUEST_CODE, LIT("\0"), "invalid length of startup packet");
}

static void
test_parse_other_versions(void **state)
{
	static const uint32_t codes[] = {
		0x00020000u,        /* 2.0 */
		0x00040000u,        /* 4.0 */
		0x00000003u,        /* 0.3 */
		(1234u << 16) | 5677u,
	};
	size_t len;
	uint8_t *p;
	pgc_startup st;
	char err[256] = "";

	(void) state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
	{
		/* the body is not looked at: even garbage returns 0 */
		p = make_packet(codes[i], LIT("user\0x"), &len);
		err[0] = '\0';
		assert_int_equal(pgc_parse_startup(p, len, &st, err, sizeof(err)), 0);
		assert_int_equal(st.code, codes[i]);
		assert_int_equal(st.nparams, 0);
		assert_string_equal(err, "");
		free(p);
	}
}

static void
test_parse_short(void **state)
{
	uint8_t *p = malloc(7);
	pgc_startup st;
	char err[256] = "";

	(void) state;
	assert_non_null(p);
	memcpy(p, "\0\0\0\x07\0\x03\0", 7);
	assert_int_equal(pgc_parse_startup(p, 7, &st, err, sizeof(err)), -1);
	assert_string_equal(err, "invalid length of startup packet");
	assert_int_equal(pgc_parse_startup(p, 0, &st, err, sizeof(err)), -1);
	free(p);
}

/* -------------------------------------------------------------- error field */

static void
test_error_field(void **state)
{
	static const char body[] = "SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"x\"\0\0";
	uint8_t *b = malloc(sizeof(body) - 1);
	uint8_t *t;

	(void) state;
	assert_non_null(b);
	memcpy(b, body, sizeof(body) - 1);
	assert_string_equal(pgc_error_field(b, sizeof(body) - 1, 'S'), "FATAL");
	assert_string_equal(pgc_error_field(b, sizeof(body) - 1, 'C'), "28P01");
	assert_string_equal(pgc_error_field(b, sizeof(body) - 1, 'M'),
						"password authentication failed for user \"x\"");
	assert_null(pgc_error_field(b, sizeof(body) - 1, 'D'));
	/* the NUL field code is the terminator, never a field */
	assert_null(pgc_error_field(b, sizeof(body) - 1, '\0'));
	/* same body without the final terminator still works */
	assert_string_equal(pgc_error_field(b, sizeof(body) - 2, 'M'),
						"password authentication failed for user \"x\"");
	/* cut inside the message: M's value is not terminated, so not found */
	assert_string_equal(pgc_error_field(b, 30, 'C'), "28P01");
	assert_null(pgc_error_field(b, 30, 'M'));
	/* cut right after the code byte */
	assert_null(pgc_error_field(b, 22, 'M'));
	assert_null(pgc_error_field(b, 0, 'S'));
	free(b);

	/* fields after the terminator are not looked at */
	t = malloc(8);
	assert_non_null(t);
	memcpy(t, "Sx\0\0Cy\0", 8);
	assert_string_equal(pgc_error_field(t, 8, 'S'), "x");
	assert_null(pgc_error_field(t, 8, 'C'));
	free(t);
}

/* ------------------------------------------------------------------ msgbuf */

#define assert_buf(b, lit) do { \
		assert_false((b)->failed); \
		assert_int_equal((b)->len, sizeof(lit) - 1); \
		assert_memory_equal((b)->data, lit, sizeof(lit) - 1); \
	} while (0)

static void
test_msgbuf_error(void **state)
{
	pgc_msgbuf b;

	(void) state;
	pgc_msgbuf_init(&b);
	pgc_msgbuf_error(&b, 'E', "FATAL", "28P01", "bad", NULL, NULL);
	assert_buf(&b, "E\0\0\0\x1f" "SFATAL\0VFATAL\0C28P01\0Mbad\0\0");

	pgc_msgbuf_reset(&b);
	pgc_msgbuf_error(&b, 'N', "WARNING", "01000", "msg", "det", "hint");
	assert_buf(&b, "N\0\0\0\x2e" "SWARNING\0VWARNING\0C01000\0Mmsg\0Ddet\0Hhint\0\0");

	/* and the field finder reads back what was built */
	assert_string_equal(pgc_error_field(b.data + 5, b.len - 5, 'H'), "hint");
	assert_string_equal(pgc_error_field(b.data + 5, b.len - 5, 'D'), "det");
	pgc_msgbuf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void
test_msgbuf_param_ready_query(void **state)
{
	pgc_msgbuf b;

	(void) state;
	pgc_msgbuf_init(&b);
	pgc_msgbuf_param(&b, "client_encoding", "UTF8");
	assert_buf(&b, "S\0\0\0\x19" "client_encoding\0UTF8\0");

	pgc_msgbuf_reset(&b);
	pgc_msgbuf_ready(&b, 'I');
	assert_buf(&b, "Z\0\0\0\x05I");

	pgc_msgbuf_reset(&b);
	pgc_msgbuf_query(&b, "SELECT 1");
	assert_buf(&b, "Q\0\0\0\x0dSELECT 1\0");

	/* several messages back to back, each with its own length */
	pgc_msgbuf_reset(&b);
	pgc_msgbuf_ready(&b, 'T');
	pgc_msgbuf_query(&b, "SELECT 1");
	pgc_msgbuf_param(&b, "a", "");
	pgc_msgbuf_ready(&b, 'E');
	assert_buf(&b, "Z\0\0\0\x05T" "Q\0\0\0\x0dSELECT 1\0" "S\0\0\0\x07" "a\0\0" "Z\0\0\0\x05" "E");
	pgc_msgbuf_free(&b);
}

static void
test_msgbuf_untyped_startup(void **state)
{
	pgc_msgbuf b;
	pgc_startup st;
	char err[256] = "";
	uint8_t *copy;

	(void) state;
	pgc_msgbuf_init(&b);
	/* something before it, to check msg_start is honoured */
	pgc_msgbuf_ready(&b, 'I');
	pgc_msgbuf_begin(&b, 0);
	pgc_msgbuf_u32(&b, PGC_PROTO_V3);
	pgc_msgbuf_str(&b, "user");
	pgc_msgbuf_str(&b, "bob");
	pgc_msgbuf_str(&b, "database");
	pgc_msgbuf_str(&b, "db");
	pgc_msgbuf_byte(&b, 0);
	pgc_msgbuf_end(&b);
	assert_buf(&b, "Z\0\0\0\x05I" "\0\0\0\x1e" "\0\x03\0\0" "user\0bob\0database\0db\0\0");
	assert_int_equal(pgc_get_u32(b.data + 6), b.len - 6);

	copy = malloc(b.len - 6);
	assert_non_null(copy);
	memcpy(copy, b.data + 6, b.len - 6);
	assert_int_equal(pgc_parse_startup(copy, b.len - 6, &st, err, sizeof(err)), 0);
	assert_int_equal(st.nparams, 2);
	assert_string_equal(pgc_startup_get(&st, "user"), "bob");
	assert_string_equal(pgc_startup_get(&st, "database"), "db");
	free(copy);

	/* an untyped message alone: the length word is at offset 0 */
	pgc_msgbuf_reset(&b);
	pgc_msgbuf_begin(&b, 0);
	pgc_msgbuf_u32(&b, PGC_SSL_REQUEST_CODE);
	pgc_msgbuf_end(&b);
	assert_buf(&b, "\0\0\0\x08\x04\xd2\x16\x2f");
	pgc_msgbuf_free(&b);
}

static void
test_msgbuf_primitives_and_growth(void **state)
{
	pgc_msgbuf b;
	char *sql = malloc(5001);
	uint8_t hdr[5];

	(void) state;
	assert_non_null(sql);
	pgc_msgbuf_init(&b);
	pgc_msgbuf_begin(&b, 'X');
	pgc_msgbuf_u16(&b, 0x0102);
	pgc_msgbuf_u32(&b, 0x03040506u);
	pgc_msgbuf_bytes(&b, "ab", 2);
	pgc_msgbuf_bytes(&b, NULL, 0);
	pgc_msgbuf_byte(&b, 0xff);
	pgc_msgbuf_end(&b);
	assert_buf(&b, "X\0\0\0\x0d\x01\x02\x03\x04\x05\x06" "ab\xff");

	/* well past the initial capacity */
	memset(sql, 'x', 5000);
	sql[5000] = '\0';
	pgc_msgbuf_reset(&b);
	pgc_msgbuf_query(&b, sql);
	assert_false(b.failed);
	assert_int_equal(b.len, 1 + 4 + 5001);
	assert_true(b.cap >= b.len);
	memcpy(hdr, b.data, 5);
	{
		uint8_t type;
		uint32_t len;

		assert_int_equal(pgc_msg_header(hdr, 5, &type, &len), 1);
		assert_int_equal(type, 'Q');
		assert_int_equal(len, 4 + 5001);
		assert_int_equal(pgc_msg_header(hdr, 4, &type, &len), 0);
	}
	assert_memory_equal(b.data + 5, sql, 5001);
	pgc_msgbuf_free(&b);
	free(sql);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_startup_length),
		cmocka_unit_test(test_parse_normal),
		cmocka_unit_test(test_parse_minor_version_and_empty),
		cmocka_unit_test(test_parse_missing_terminator),
		cmocka_unit_test(test_parse_unterminated),
		cmocka_unit_test(test_parse_too_many_params),
		cmocka_unit_test(test_parse_cancel),
		cmocka_unit_test(test_parse_ssl_gss),
		cmocka_unit_test(test_parse_other_versions),
		cmocka_unit_test(test_parse_short),
		cmocka_unit_test(test_error_field),
		cmocka_unit_test(test_msgbuf_error),
		cmocka_unit_test(test_msgbuf_param_ready_query),
		cmocka_unit_test(test_msgbuf_untyped_startup),
		cmocka_unit_test(test_msgbuf_primitives_and_growth),
	};

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
