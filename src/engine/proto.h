/*
 * proto.h - PostgreSQL wire protocol 3.0 framing: reading headers and the
 * startup packet, building the few messages pgcarrier writes itself.
 *
 * Contract:
 *  - Nothing here does I/O or allocates, except pgc_msgbuf, which grows with
 *    realloc and records failure instead of aborting (check ->failed).
 *  - Parsers never read past the length they are given, and reject what
 *    PostgreSQL itself would reject, with PostgreSQL's own wording where one
 *    exists.
 */
#ifndef PGC_PROTO_H
#define PGC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PGC_PROTO_MAJOR(v)      ((v) >> 16)
#define PGC_PROTO_MINOR(v)      ((v) & 0xffff)
#define PGC_PROTO_V3            196608u     /* 3.0 */
#define PGC_CANCEL_REQUEST_CODE 80877102u
#define PGC_SSL_REQUEST_CODE    80877103u
#define PGC_GSSENC_REQUEST_CODE 80877104u
#define PGC_MAX_STARTUP_PACKET  10000u      /* PostgreSQL's MAX_STARTUP_PACKET_LENGTH */
#define PGC_MAX_STARTUP_PARAMS  64

/*
 * Message type bytes, named by direction: the same byte means different
 * messages each way ('S' is Sync from a client and ParameterStatus from a
 * server), so code never compares a type with a bare character.
 */
typedef enum pgc_fe_type {          /* frontend: client -> server */
	PGC_FE_BIND = 'B',
	PGC_FE_CLOSE = 'C',
	PGC_FE_COPY_DATA = 'd',
	PGC_FE_COPY_DONE = 'c',
	PGC_FE_COPY_FAIL = 'f',
	PGC_FE_DESCRIBE = 'D',
	PGC_FE_EXECUTE = 'E',
	PGC_FE_FLUSH = 'H',
	PGC_FE_FUNCTION_CALL = 'F',
	PGC_FE_PARSE = 'P',
	PGC_FE_PASSWORD = 'p',          /* also SASLInitialResponse, SASLResponse */
	PGC_FE_QUERY = 'Q',
	PGC_FE_SYNC = 'S',
	PGC_FE_TERMINATE = 'X'
} pgc_fe_type;

typedef enum pgc_be_type {          /* backend: server -> client */
	PGC_BE_AUTHENTICATION = 'R',
	PGC_BE_BACKEND_KEY_DATA = 'K',
	PGC_BE_BIND_COMPLETE = '2',
	PGC_BE_CLOSE_COMPLETE = '3',
	PGC_BE_COMMAND_COMPLETE = 'C',
	PGC_BE_COPY_BOTH_RESPONSE = 'W',
	PGC_BE_COPY_DATA = 'd',
	PGC_BE_COPY_DONE = 'c',
	PGC_BE_COPY_IN_RESPONSE = 'G',
	PGC_BE_COPY_OUT_RESPONSE = 'H',
	PGC_BE_DATA_ROW = 'D',
	PGC_BE_EMPTY_QUERY = 'I',
	PGC_BE_ERROR = 'E',
	PGC_BE_FUNCTION_RESULT = 'V',
	PGC_BE_NEGOTIATE_VERSION = 'v',
	PGC_BE_NO_DATA = 'n',
	PGC_BE_NOTICE = 'N',
	PGC_BE_NOTIFICATION = 'A',
	PGC_BE_PARAMETER_DESCRIPTION = 't',
	PGC_BE_PARAMETER_STATUS = 'S',
	PGC_BE_PARSE_COMPLETE = '1',
	PGC_BE_PORTAL_SUSPENDED = 's',
	PGC_BE_READY_FOR_QUERY = 'Z',
	PGC_BE_ROW_DESCRIPTION = 'T'
} pgc_be_type;

/* Authentication request codes (the int32 after an 'R'). */
typedef enum pgc_auth_code {
	PGC_AUTHREQ_OK = 0,
	PGC_AUTHREQ_CLEARTEXT = 3,
	PGC_AUTHREQ_MD5 = 5,
	PGC_AUTHREQ_SASL = 10,
	PGC_AUTHREQ_SASL_CONTINUE = 11,
	PGC_AUTHREQ_SASL_FINAL = 12
} pgc_auth_code;

/* Transaction status in ReadyForQuery. */
typedef enum pgc_txn_status {
	PGC_TXN_IDLE = 'I',
	PGC_TXN_BLOCK = 'T',
	PGC_TXN_FAILED = 'E'
} pgc_txn_status;

/* Fields of ErrorResponse and NoticeResponse. */
typedef enum pgc_err_field {
	PGC_ERRF_SEVERITY = 'S',
	PGC_ERRF_SEVERITY_NONLOCALIZED = 'V',
	PGC_ERRF_SQLSTATE = 'C',
	PGC_ERRF_MESSAGE = 'M',
	PGC_ERRF_DETAIL = 'D',
	PGC_ERRF_HINT = 'H'
} pgc_err_field;

/* Describe and Close target a prepared statement or a portal. */
typedef enum pgc_target {
	PGC_TARGET_STATEMENT = 'S',
	PGC_TARGET_PORTAL = 'P'
} pgc_target;

/* The one-byte answers to SSLRequest and GSSENCRequest. */
#define PGC_SSL_ACCEPT  'S'
#define PGC_SSL_REFUSE  'N'

/* Fixed sizes on the wire, so that no length is counted by hand. */
#define PGC_MSG_HEADER_SIZE   5         /* type byte + int32 length */
#define PGC_MSG_LENGTH_SIZE   4

static inline uint32_t pgc_get_u32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

static inline uint16_t pgc_get_u16(const uint8_t *p)
{
	return (uint16_t) (((uint16_t) p[0] << 8) | p[1]);
}

static inline void pgc_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

/* A parsed startup-phase packet. Strings point into the packet buffer. */
typedef struct pgc_startup {
	uint32_t code;                /* protocol version, or one of the *_CODE values */
	uint32_t cancel_pid;          /* CancelRequest only */
	uint32_t cancel_key;          /* CancelRequest only */
	int nparams;
	const char *keys[PGC_MAX_STARTUP_PARAMS];
	const char *values[PGC_MAX_STARTUP_PARAMS];
} pgc_startup;

/*
 * Look at the first bytes of a startup-phase packet (length word first).
 * Returns 1 and sets *len (whole packet, length word included) when the
 * length is known and valid, 0 when fewer than 4 bytes are there, -1 with a
 * message in err when the length is impossible.
 */
int pgc_startup_length(const uint8_t *buf, size_t avail, uint32_t *len, char *err, size_t errlen);

/*
 * Parse a whole startup-phase packet of len bytes (length word included).
 * The packet is modified in place only in that it must already be
 * NUL-terminated where the protocol says; nothing is written. Returns 0, or
 * -1 with a message in err ("invalid startup packet layout: ...").
 */
int pgc_parse_startup(const uint8_t *pkt, size_t len, pgc_startup *out, char *err, size_t errlen);

/* Value of a startup parameter, or NULL. */
const char *pgc_startup_get(const pgc_startup *s, const char *key);

/*
 * Header of a regular message: 1 type byte, 4 length bytes (self-inclusive).
 * Returns 1 with *type and *len (length word value) when 5 bytes are there,
 * 0 when fewer. The caller checks *len >= 4 and any size limit.
 */
static inline int pgc_msg_header(const uint8_t *p, size_t avail, uint8_t *type, uint32_t *len)
{
	if (avail < 5)
		return 0;
	*type = p[0];
	*len = pgc_get_u32(p + 1);
	return 1;
}

/*
 * Find a field of an ErrorResponse/NoticeResponse body (the bytes after the
 * length word). Returns a pointer to the NUL-terminated value, or NULL.
 */
const char *pgc_error_field(const uint8_t *body, size_t bodylen, char code);

/* A growable buffer for messages pgcarrier composes itself. */
typedef struct pgc_msgbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t msg_start;   /* where the current message begins */
	int msg_typed;      /* the current message has a type byte */
	int failed;         /* an allocation failed; contents are unusable */
} pgc_msgbuf;

void pgc_msgbuf_init(pgc_msgbuf *b);
void pgc_msgbuf_free(pgc_msgbuf *b);
void pgc_msgbuf_reset(pgc_msgbuf *b);
/* Start a message of this type; type 0 starts an untyped (startup) packet. */
void pgc_msgbuf_begin(pgc_msgbuf *b, char type);
void pgc_msgbuf_byte(pgc_msgbuf *b, uint8_t v);
void pgc_msgbuf_u16(pgc_msgbuf *b, uint16_t v);
void pgc_msgbuf_u32(pgc_msgbuf *b, uint32_t v);
void pgc_msgbuf_bytes(pgc_msgbuf *b, const void *p, size_t n);
void pgc_msgbuf_str(pgc_msgbuf *b, const char *s);   /* with its NUL */
/* Patch the length word of the current message. */
void pgc_msgbuf_end(pgc_msgbuf *b);

/* ErrorResponse ('E') or NoticeResponse ('N') with severity, SQLSTATE, message, optional detail/hint. */
void pgc_msgbuf_error(pgc_msgbuf *b, char type, const char *severity, const char *sqlstate,
					  const char *message, const char *detail, const char *hint);
/* ParameterStatus ('S'). */
void pgc_msgbuf_param(pgc_msgbuf *b, const char *name, const char *value);
/* ReadyForQuery ('Z'). */
void pgc_msgbuf_ready(pgc_msgbuf *b, char status);
/* A simple Query ('Q'). */
void pgc_msgbuf_query(pgc_msgbuf *b, const char *sql);
/* Text without its NUL (its length is computed, never counted by hand). */
void pgc_msgbuf_text(pgc_msgbuf *b, const char *s);
/* A SQL string literal: 'v' with quotes doubled (standard_conforming_strings on). */
void pgc_msgbuf_literal(pgc_msgbuf *b, const char *v);
/* pg_catalog.set_config('name', 'value', false): sets a session-level value as the startup packet would. */
void pgc_msgbuf_set_config(pgc_msgbuf *b, const char *name, const char *value);

#endif
