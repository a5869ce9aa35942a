/*
 * proto.c - wire protocol framing; see proto.h.
 */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
pgc_startup_length(const uint8_t *buf, size_t avail, uint32_t *len, char *err, size_t errlen)
{
	uint32_t n;

	if (avail < 4)
		return 0;
	n = pgc_get_u32(buf);
	/* Same bounds as PostgreSQL's ProcessStartupPacket. */
	if (n < 8 || n > PGC_MAX_STARTUP_PACKET)
	{
		snprintf(err, errlen, "invalid length of startup packet");
		return -1;
	}
	*len = n;
	return 1;
}

int
pgc_parse_startup(const uint8_t *pkt, size_t len, pgc_startup *out, char *err, size_t errlen)
{
	size_t pos;

	memset(out, 0, sizeof(*out));
	if (len < 8)
	{
		snprintf(err, errlen, "invalid length of startup packet");
		return -1;
	}
	out->code = pgc_get_u32(pkt + 4);

	if (out->code == PGC_CANCEL_REQUEST_CODE)
	{
		if (len != 16)
		{
			snprintf(err, errlen, "invalid length of cancel request packet");
			return -1;
		}
		out->cancel_pid = pgc_get_u32(pkt + 8);
		out->cancel_key = pgc_get_u32(pkt + 12);
		return 0;
	}
	if (out->code == PGC_SSL_REQUEST_CODE || out->code == PGC_GSSENC_REQUEST_CODE)
	{
		if (len != 8)
		{
			snprintf(err, errlen, "invalid length of startup packet");
			return -1;
		}
		return 0;
	}
	if (PGC_PROTO_MAJOR(out->code) != 3)
		return 0;               /* the caller refuses the version */

	/* name\0value\0 ... \0 */
	pos = 8;
	for (;;)
	{
		const char *key;
		const char *value;
		const void *nul;

		if (pos >= len)
		{
			snprintf(err, errlen, "invalid startup packet layout: expected terminator as last byte");
			return -1;
		}
		if (pkt[pos] == '\0')
		{
			if (pos != len - 1)
			{
				snprintf(err, errlen, "invalid startup packet layout: expected terminator as last byte");
				return -1;
			}
			break;
		}
		key = (const char *) pkt + pos;
		nul = memchr(pkt + pos, '\0', len - pos);
		if (nul == NULL)
		{
			snprintf(err, errlen, "invalid startup packet layout: expected terminator as last byte");
			return -1;
		}
		pos = (size_t) ((const uint8_t *) nul - pkt) + 1;
		value = (const char *) pkt + pos;
		nul = pos < len ? memchr(pkt + pos, '\0', len - pos) : NULL;
		if (nul == NULL)
		{
			snprintf(err, errlen, "invalid startup packet layout: expected terminator as last byte");
			return -1;
		}
		pos = (size_t) ((const uint8_t *) nul - pkt) + 1;
		if (out->nparams >= PGC_MAX_STARTUP_PARAMS)
		{
			snprintf(err, errlen, "too many parameters in startup packet");
			return -1;
		}
		out->keys[out->nparams] = key;
		out->values[out->nparams] = value;
		out->nparams++;
	}
	return 0;
}

const char *
pgc_startup_get(const pgc_startup *s, const char *key)
{
	for (int i = 0; i < s->nparams; i++)
		if (strcmp(s->keys[i], key) == 0)
			return s->values[i];
	return NULL;
}

const char *
pgc_error_field(const uint8_t *body, size_t bodylen, char code)
{
	size_t pos = 0;

	while (pos < bodylen && body[pos] != '\0')
	{
		char c = (char) body[pos++];
		const uint8_t *nul = memchr(body + pos, '\0', bodylen - pos);

		if (nul == NULL)
			return NULL;
		if (c == code)
			return (const char *) body + pos;
		pos = (size_t) (nul - body) + 1;
	}
	return NULL;
}

void
pgc_msgbuf_init(pgc_msgbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void
pgc_msgbuf_free(pgc_msgbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void
pgc_msgbuf_reset(pgc_msgbuf *b)
{
	b->len = 0;
	b->msg_start = 0;
	b->failed = 0;
}

static int
msgbuf_reserve(pgc_msgbuf *b, size_t n)
{
	size_t need;
	size_t cap;
	uint8_t *p;

	if (b->failed)
		return 0;
	need = b->len + n;
	if (need <= b->cap)
		return 1;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
	{
		b->failed = 1;
		return 0;
	}
	b->data = p;
	b->cap = cap;
	return 1;
}

void
pgc_msgbuf_bytes(pgc_msgbuf *b, const void *p, size_t n)
{
	if (n == 0 || !msgbuf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void
pgc_msgbuf_byte(pgc_msgbuf *b, uint8_t v)
{
	pgc_msgbuf_bytes(b, &v, 1);
}

void
pgc_msgbuf_u16(pgc_msgbuf *b, uint16_t v)
{
	uint8_t p[2] = {(uint8_t) (v >> 8), (uint8_t) v};

	pgc_msgbuf_bytes(b, p, 2);
}

void
pgc_msgbuf_u32(pgc_msgbuf *b, uint32_t v)
{
	uint8_t p[4];

	pgc_put_u32(p, v);
	pgc_msgbuf_bytes(b, p, 4);
}

void
pgc_msgbuf_str(pgc_msgbuf *b, const char *s)
{
	pgc_msgbuf_bytes(b, s, strlen(s) + 1);
}

void
pgc_msgbuf_begin(pgc_msgbuf *b, char type)
{
	b->msg_start = b->len;
	b->msg_typed = type != 0;
	if (type)
		pgc_msgbuf_byte(b, (uint8_t) type);
	pgc_msgbuf_u32(b, 0);
}

void
pgc_msgbuf_end(pgc_msgbuf *b)
{
	/* The length word counts itself and the body, not the type byte. */
	size_t lenpos = b->msg_start + (b->msg_typed ? 1 : 0);

	if (b->failed)
		return;
	pgc_put_u32(b->data + lenpos, (uint32_t) (b->len - lenpos));
}

void
pgc_msgbuf_error(pgc_msgbuf *b, char type, const char *severity, const char *sqlstate,
				 const char *message, const char *detail, const char *hint)
{
	pgc_msgbuf_begin(b, type);
	pgc_msgbuf_byte(b, PGC_ERRF_SEVERITY);
	pgc_msgbuf_str(b, severity);
	pgc_msgbuf_byte(b, PGC_ERRF_SEVERITY_NONLOCALIZED);
	pgc_msgbuf_str(b, severity);
	pgc_msgbuf_byte(b, PGC_ERRF_SQLSTATE);
	pgc_msgbuf_str(b, sqlstate);
	pgc_msgbuf_byte(b, PGC_ERRF_MESSAGE);
	pgc_msgbuf_str(b, message);
	if (detail)
	{
		pgc_msgbuf_byte(b, PGC_ERRF_DETAIL);
		pgc_msgbuf_str(b, detail);
	}
	if (hint)
	{
		pgc_msgbuf_byte(b, PGC_ERRF_HINT);
		pgc_msgbuf_str(b, hint);
	}
	pgc_msgbuf_byte(b, 0);
	pgc_msgbuf_end(b);
}

void
pgc_msgbuf_param(pgc_msgbuf *b, const char *name, const char *value)
{
	pgc_msgbuf_begin(b, PGC_BE_PARAMETER_STATUS);
	pgc_msgbuf_str(b, name);
	pgc_msgbuf_str(b, value);
	pgc_msgbuf_end(b);
}

void
pgc_msgbuf_ready(pgc_msgbuf *b, char status)
{
	pgc_msgbuf_begin(b, PGC_BE_READY_FOR_QUERY);
	pgc_msgbuf_byte(b, (uint8_t) status);
	pgc_msgbuf_end(b);
}

void
pgc_msgbuf_query(pgc_msgbuf *b, const char *sql)
{
	pgc_msgbuf_begin(b, PGC_FE_QUERY);
	pgc_msgbuf_str(b, sql);
	pgc_msgbuf_end(b);
}

void
pgc_msgbuf_text(pgc_msgbuf *b, const char *s)
{
	pgc_msgbuf_bytes(b, s, strlen(s));
}

void
pgc_msgbuf_literal(pgc_msgbuf *b, const char *v)
{
	pgc_msgbuf_byte(b, '\'');
	for (; *v; v++)
	{
		if (*v == '\'')
			pgc_msgbuf_byte(b, '\'');
		pgc_msgbuf_byte(b, (uint8_t) *v);
	}
	pgc_msgbuf_byte(b, '\'');
}

void
pgc_msgbuf_set_config(pgc_msgbuf *b, const char *name, const char *value)
{
	pgc_msgbuf_text(b, "pg_catalog.set_config(");
	pgc_msgbuf_literal(b, name);
	pgc_msgbuf_text(b, ", ");
	pgc_msgbuf_literal(b, value);
	pgc_msgbuf_text(b, ", false)");
}
