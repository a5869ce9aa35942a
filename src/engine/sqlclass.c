/*
 * sqlclass.c - see sqlclass.h.
 *
 * The lexer follows PostgreSQL 15's scan.l closely enough never to mistake
 * the inside of a literal or a comment for SQL: -- and nested slash-star
 * comments, 'standard' strings (standard_conforming_strings assumed on),
 * E'' strings with backslash escapes, B'' X'' N'' U&'' strings, "quoted"
 * and U&"quoted" identifiers, $$ and $tag$ dollar quoting ('$' continues an
 * identifier, so a$b is one name; $1 is a parameter), and numbers lexed as
 * PG15 does (1into is 1 and then INTO).
 *
 * On top of it a per-statement state machine looks at what matters:
 *  - the first keyword (SET, RESET, LISTEN, DISCARD, ...), and for CREATE,
 *    DECLARE, PREPARE and EXPLAIN a few words after it, EXPLAIN, PREPARE ...
 *    AS and DECLARE ... FOR carrying on with the statement they wrap;
 *  - in statements that run expressions now (DML, COPY, EXECUTE, CREATE TABLE
 *    AS, CREATE INDEX, ALTER TABLE, ...), every name followed by '(' that
 *    is not plainly something else (a type modifier after '::', an alias or
 *    CTE column list, INSERT INTO t (cols), a keyword such as IN or OVER).
 *    A built-in known to be harmless costs a binary search; set_config and
 *    the advisory lock functions set their flags; anything else is left to
 *    the real grammar.  Definitions (CREATE FUNCTION, CREATE VIEW, CREATE
 *    TABLE's column list, ...) are not looked into: nothing in them runs now.
 *
 * The slow path hands one statement to libpg-query and reads the FuncCall
 * nodes' names from its JSON output.  That is rare and cached, but it is not
 * cheap, and it has two sharp edges dealt with here:
 *  - pg_query_parse() swaps the process's file descriptor 2 for a pipe while
 *    it runs, so two threads parsing at once could leave stderr pointing at a
 *    closed pipe.  Parses are therefore serialised by parser_lock.  A log
 *    line another thread writes to stderr during a parse is still lost; the
 *    parse takes microseconds and happens once per new statement text.
 *  - Neither the parser nor its JSON writer checks stack depth, and the
 *    writer recurses once per nesting level (1+1+...+1 nests as deep as it is
 *    long).  Statements nested deeper than the limits below are not parsed
 *    but reported as PGC_SQL_UNKNOWN.
 * libpg-query keeps a memory context per thread and frees it when the thread
 * exits; pg_query_exit() must not be called, since it leaves that per-thread
 * state half torn down (the next parse in the thread would crash, and the
 * thread-exit destructor would free the context twice).
 */
#include "sqlclass.h"

#include <pg_query.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Beyond these a statement is not handed to libpg-query (see above). */
#define MAX_PARSE_DEPTH     100     /* parentheses */
#define MAX_PARSE_OPS       2000    /* operators, '::', NOT, AT, ... (< 0.5 MB of stack) */

#define CACHE_SIZE          256     /* per thread, a power of 2 */
#define KIND_MAX            96
#define KIND_SLOTS          64      /* distinct parser-made kinds kept per thread */

/* ---------------------------------------------------------------- lexer */

typedef enum toktype {
	T_EOF,
	T_ERROR,        /* unterminated literal or comment */
	T_WORD,         /* unquoted identifier or keyword */
	T_QIDENT,       /* "quoted" or U&"quoted" identifier */
	T_STRING,       /* any string literal, dollar-quoted included */
	T_NUMBER,
	T_PARAM,        /* $1 */
	T_LPAREN,
	T_RPAREN,
	T_COMMA,
	T_SEMI,
	T_DOT,
	T_DCOLON,
	T_OP            /* operators and other punctuation */
} toktype;

typedef struct token {
	const char *p;
	uint32_t len;
	uint32_t type;      /* toktype */
} token;

typedef struct lexer {
	const char *s;
	size_t len;
	size_t pos;
} lexer;

/* Character classes of scan.l, one table look-up each. */
#define CC_IDSTART  1   /* ident_start [A-Za-z\200-\377_] */
#define CC_IDCONT   2   /* ident_cont adds [0-9\$] */
#define CC_DIGIT    4
#define CC_SPACE    8
#define CC_OP       16  /* op_chars [~!@#^&|`?+\-*\/%<>=] */

static const uint8_t cclass[256] = {
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  8,  8,  8,  8,  8,  0,  0,
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
	 8, 16,  0, 16,  2, 16, 16,  0,  0,  0, 16, 16,  0, 16,  0, 16,
	 6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  0,  0, 16, 16, 16, 16,
	16,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  0,  0,  0, 16,  3,
	16,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  0, 16,  0, 16,  0,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
};

static inline bool
is_digit(unsigned char c)
{
	return cclass[c] & CC_DIGIT;
}

static inline bool
is_ident_start(unsigned char c)
{
	return cclass[c] & CC_IDSTART;
}

static inline bool
is_ident_cont(unsigned char c)
{
	return cclass[c] & CC_IDCONT;
}

static inline bool
is_space(unsigned char c)
{
	return cclass[c] & CC_SPACE;
}

static inline bool
is_op_char(unsigned char c)
{
	return cclass[c] & CC_OP;
}

static void
lex_init(lexer *lx, const char *sql, size_t len)
{
	const char *nul = sql ? memchr(sql, '\0', len) : NULL;

	lx->s = sql ? sql : "";
	lx->len = sql ? (nul ? (size_t) (nul - sql) : len) : 0;
	lx->pos = 0;
}

/* Skip white space and comments; false if a comment is not closed. */
static bool
skip_space(lexer *lx)
{
	const char *s = lx->s;
	size_t n = lx->len;
	size_t p = lx->pos;

	for (;;)
	{
		while (p < n && is_space((unsigned char) s[p]))
			p++;
		if (p + 1 < n && s[p] == '-' && s[p + 1] == '-')
		{
			p += 2;
			while (p < n && s[p] != '\n' && s[p] != '\r')
				p++;
			continue;
		}
		if (p + 1 < n && s[p] == '/' && s[p + 1] == '*')
		{
			int depth = 1;

			p += 2;
			while (depth > 0)
			{
				if (p + 1 >= n)
				{
					lx->pos = n;
					return false;
				}
				if (s[p] == '/' && s[p + 1] == '*')
				{
					depth++;
					p += 2;
				}
				else if (s[p] == '*' && s[p + 1] == '/')
				{
					depth--;
					p += 2;
				}
				else
					p++;
			}
			continue;
		}
		break;
	}
	lx->pos = p;
	return true;
}

/*
 * s[*pp] is the opening quote qc; move *pp past the closing one, a doubled
 * quote standing for itself.  With backslash, \ escapes the next byte (E'').
 */
static bool
scan_quoted(const char *s, size_t n, size_t *pp, char qc, bool backslash)
{
	size_t p = *pp + 1;

	for (;;)
	{
		if (!backslash)
		{
			const char *e = memchr(s + p, qc, n - p);

			if (!e)
				return false;
			p = (size_t) (e - s);
		}
		else
		{
			while (p < n && s[p] != qc)
				p += s[p] == '\\' ? 2 : 1;
			if (p >= n)
				return false;
		}
		p++;
		if (p < n && s[p] == qc)
		{
			p++;
			continue;
		}
		*pp = p;
		return true;
	}
}

static inline void
lex_next(lexer *lx, token *t)
{
	const char *s = lx->s;
	size_t n = lx->len;
	size_t p, q;
	unsigned char c;
	toktype type;

	if (!skip_space(lx))
	{
		*t = (token) {s + n, 0, T_ERROR};
		return;
	}
	p = lx->pos;
	if (p >= n)
	{
		*t = (token) {s + n, 0, T_EOF};
		return;
	}
	c = (unsigned char) s[p];
	q = p + 1;

	if (is_ident_start(c))
	{
		while (q < n && is_ident_cont((unsigned char) s[q]))
			q++;
		type = T_WORD;
		/* A one-letter word right before a quote may prefix a literal. */
		if (q - p == 1 && q < n)
		{
			unsigned char lc = c | 0x20;

			if (s[q] == '\'' && (lc == 'e' || lc == 'b' || lc == 'x' || lc == 'n'))
			{
				type = scan_quoted(s, n, &q, '\'', lc == 'e') ? T_STRING : T_ERROR;
				if (type == T_ERROR)
					q = n;
			}
			else if (lc == 'u' && s[q] == '&' && q + 1 < n && (s[q + 1] == '\'' || s[q + 1] == '"'))
			{
				char qc = s[q + 1];

				q++;
				if (scan_quoted(s, n, &q, qc, false))
					type = qc == '"' ? T_QIDENT : T_STRING;
				else
				{
					type = T_ERROR;
					q = n;
				}
			}
		}
	}
	else if (is_digit(c) || (c == '.' && q < n && is_digit((unsigned char) s[q])))
	{
		/* PG15's integer, decimal and real; anything after is a new token. */
		q = p;
		while (q < n && is_digit((unsigned char) s[q]))
			q++;
		if (q < n && s[q] == '.' && !(q + 1 < n && s[q + 1] == '.'))
		{
			q++;
			while (q < n && is_digit((unsigned char) s[q]))
				q++;
		}
		if (q < n && (s[q] | 0x20) == 'e')
		{
			size_t r = q + 1;

			if (r < n && (s[r] == '+' || s[r] == '-'))
				r++;
			if (r < n && is_digit((unsigned char) s[r]))
			{
				q = r;
				while (q < n && is_digit((unsigned char) s[q]))
					q++;
			}
		}
		type = T_NUMBER;
	}
	else
	{
		switch (c)
		{
			case '(':
				type = T_LPAREN;
				break;
			case ')':
				type = T_RPAREN;
				break;
			case ',':
				type = T_COMMA;
				break;
			case ';':
				type = T_SEMI;
				break;
			case '.':
				type = T_DOT;
				break;
			case ':':
				type = T_OP;
				if (q < n && s[q] == ':')
				{
					type = T_DCOLON;
					q++;
				}
				break;
			case '\'':
			case '"':
				q = p;
				if (scan_quoted(s, n, &q, (char) c, false))
					type = c == '"' ? T_QIDENT : T_STRING;
				else
				{
					type = T_ERROR;
					q = n;
				}
				break;
			case '$':
				if (q < n && is_digit((unsigned char) s[q]))
				{
					while (q < n && is_digit((unsigned char) s[q]))
						q++;
					type = T_PARAM;
					break;
				}
				/* scan.l: dolqdelim \$({dolq_start}{dolq_cont}*)?\$ */
				if (q < n && is_ident_start((unsigned char) s[q]))
				{
					while (q < n && (is_ident_start((unsigned char) s[q]) || is_digit((unsigned char) s[q])))
						q++;
				}
				if (q < n && s[q] == '$')
				{
					size_t taglen = q + 1 - p;
					const char *end = memmem(s + q + 1, n - q - 1, s + p, taglen);

					if (end)
					{
						q = (size_t) (end - s) + taglen;
						type = T_STRING;
					}
					else
					{
						type = T_ERROR;
						q = n;
					}
				}
				else
				{
					q = p + 1;
					type = T_OP;
				}
				break;
			default:
				type = T_OP;
				if (is_op_char(c))
				{
					while (q < n && is_op_char((unsigned char) s[q]) &&
						   !(q + 1 < n && ((s[q] == '-' && s[q + 1] == '-') ||
										   (s[q] == '/' && s[q + 1] == '*'))))
						q++;
				}
				break;
		}
	}
	*t = (token) {s + p, (uint32_t) (q - p), type};
	lx->pos = q;
}

/* ------------------------------------------------------ word look-ups */

static inline char
lower_ascii(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c + ('a' - 'A')) : c;
}

/* Is t the unquoted keyword w (lower case, wlen bytes)? */
static inline bool
kw_eq(const token *t, const char *w, size_t wlen)
{
	if (t->type != T_WORD || t->len != wlen)
		return false;
	for (size_t i = 0; i < wlen; i++)
		if (lower_ascii(t->p[i]) != w[i])
			return false;
	return true;
}

#define KW(t, lit) kw_eq((t), lit, sizeof(lit) - 1)

/*
 * The name a word or quoted identifier stands for, as the server would
 * look it up, into buf (NUL-terminated); false if it cannot be one of our
 * table's names (too long, a doubled quote, U&"").
 */
static bool
name_key(const token *t, char *buf, size_t bufsize)
{
	if (t->type == T_WORD)
	{
		if (t->len >= bufsize)
			return false;
		for (size_t i = 0; i < t->len; i++)
			buf[i] = lower_ascii(t->p[i]);
		buf[t->len] = '\0';
		return true;
	}
	if (t->type == T_QIDENT && t->p[0] == '"' && t->len >= 2 && t->len - 2 < bufsize &&
		memchr(t->p + 1, '"', t->len - 2) == NULL)
	{
		memcpy(buf, t->p + 1, t->len - 2);
		buf[t->len - 2] = '\0';
		return t->len > 2;
	}
	return false;
}

/* Classes of the names in name_table. */
#define SQLK_NONE       0   /* a keyword that may also name a user's function */
#define SQLK_NOCALL     1   /* syntax, never a function: IN (...), ROW (...) */
#define SQLK_SAFE       2   /* a built-in that leaves no session state */
#define SQLK_SETTING    3   /* set_config */
#define SQLK_ADVISORY   4   /* session-level advisory lock */
#define SQLK_RELEASE    5   /* advisory unlock */
#define SQLK_CTX        6   /* syntax after certain words only: ORDER BY (...) */
#define SQLK_SEQ_READ   7   /* currval, lastval: read the session's sequence state */
#define SQLK_SEQ_WRITE  8   /* nextval, setval: write it */
#define SQLK_CLASS      0x0f
#define SQLK_RESERVED   0x10 /* a reserved or type_func_name keyword: not a ColId */

typedef struct name_entry {
	const char *name;
	uint8_t cls;
} name_entry;

/*
 * Sorted by strcmp (pgc_sql_tables_ok() checks).  All reserved, col_name
 * and type_func_name keywords of PostgreSQL 15, and the built-in functions
 * that leave nothing behind in the session.
 *
 * Only reserved and col_name keywords can never name a function, so only
 * they are NOCALL.  type_func_name keywords (LIKE, JOIN, ...) and unreserved
 * ones (SET, CONFLICT, FILTER, ...) can, and are taken for syntax only in
 * the few places where an expression cannot start: after ')' (OVER, FILTER),
 * or in their own context (CTX: ORDER BY (, PRIMARY KEY (, AS MATERIALIZED
 * (, GROUPING SETS (, CHARACTER VARYING ().  Elsewhere the grammar decides.
 *
 * nextval/setval/currval/lastval do not pin: their only session state is
 * the currval cache, and pinning every ORM that fetches ids from a
 * sequence would defeat transaction pooling. They are flagged instead
 * (PGC_SQL_SEQ_*), so that the guard never lets one client read another's
 * values and refuses a read whose value is on another server connection.  A few
 * names are not in PostgreSQL 15's pg_catalog but harmless wherever they
 * exist: any_value, array_sample, array_shuffle, erf, erfc, random_normal
 * (PostgreSQL 16+) and uuid_generate_v4 (uuid-ossp).
 */
static const name_entry name_table[] = {
	{"abbrev", SQLK_SAFE},
	{"abs", SQLK_SAFE},
	{"acos", SQLK_SAFE},
	{"acosd", SQLK_SAFE},
	{"acosh", SQLK_SAFE},
	{"age", SQLK_SAFE},
	{"all", SQLK_NOCALL | SQLK_RESERVED},
	{"analyse", SQLK_NOCALL | SQLK_RESERVED},
	{"analyze", SQLK_NOCALL | SQLK_RESERVED},
	{"and", SQLK_NOCALL | SQLK_RESERVED},
	{"any", SQLK_NOCALL | SQLK_RESERVED},
	{"any_value", SQLK_SAFE},
	{"array", SQLK_NOCALL | SQLK_RESERVED},
	{"array_agg", SQLK_SAFE},
	{"array_append", SQLK_SAFE},
	{"array_cat", SQLK_SAFE},
	{"array_dims", SQLK_SAFE},
	{"array_fill", SQLK_SAFE},
	{"array_length", SQLK_SAFE},
	{"array_lower", SQLK_SAFE},
	{"array_ndims", SQLK_SAFE},
	{"array_position", SQLK_SAFE},
	{"array_positions", SQLK_SAFE},
	{"array_prepend", SQLK_SAFE},
	{"array_remove", SQLK_SAFE},
	{"array_replace", SQLK_SAFE},
	{"array_sample", SQLK_SAFE},
	{"array_shuffle", SQLK_SAFE},
	{"array_to_json", SQLK_SAFE},
	{"array_to_string", SQLK_SAFE},
	{"array_to_tsvector", SQLK_SAFE},
	{"array_upper", SQLK_SAFE},
	{"as", SQLK_NOCALL | SQLK_RESERVED},
	{"asc", SQLK_NOCALL | SQLK_RESERVED},
	{"ascii", SQLK_SAFE},
	{"asin", SQLK_SAFE},
	{"asind", SQLK_SAFE},
	{"asinh", SQLK_SAFE},
	{"asymmetric", SQLK_NOCALL | SQLK_RESERVED},
	{"atan", SQLK_SAFE},
	{"atan2", SQLK_SAFE},
	{"atan2d", SQLK_SAFE},
	{"atand", SQLK_SAFE},
	{"atanh", SQLK_SAFE},
	{"authorization", SQLK_NONE | SQLK_RESERVED},
	{"avg", SQLK_SAFE},
	{"between", SQLK_NOCALL},
	{"bigint", SQLK_NOCALL},
	{"binary", SQLK_NONE | SQLK_RESERVED},
	{"bit", SQLK_SAFE},
	{"bit_and", SQLK_SAFE},
	{"bit_count", SQLK_SAFE},
	{"bit_length", SQLK_SAFE},
	{"bit_or", SQLK_SAFE},
	{"bit_xor", SQLK_SAFE},
	{"bool", SQLK_SAFE},
	{"bool_and", SQLK_SAFE},
	{"bool_or", SQLK_SAFE},
	{"boolean", SQLK_NOCALL},
	{"both", SQLK_NOCALL | SQLK_RESERVED},
	{"bpchar", SQLK_SAFE},
	{"broadcast", SQLK_SAFE},
	{"btrim", SQLK_SAFE},
	{"by", SQLK_CTX},
	{"cardinality", SQLK_SAFE},
	{"case", SQLK_NOCALL | SQLK_RESERVED},
	{"cast", SQLK_NOCALL | SQLK_RESERVED},
	{"cbrt", SQLK_SAFE},
	{"ceil", SQLK_SAFE},
	{"ceiling", SQLK_SAFE},
	{"char", SQLK_SAFE},
	{"char_length", SQLK_SAFE},
	{"character", SQLK_NOCALL},
	{"character_length", SQLK_SAFE},
	{"check", SQLK_NOCALL | SQLK_RESERVED},
	{"chr", SQLK_SAFE},
	{"cidr", SQLK_SAFE},
	{"clock_timestamp", SQLK_SAFE},
	{"coalesce", SQLK_NOCALL},
	{"col_description", SQLK_SAFE},
	{"collate", SQLK_NOCALL | SQLK_RESERVED},
	{"collation", SQLK_NONE | SQLK_RESERVED},
	{"column", SQLK_NOCALL | SQLK_RESERVED},
	{"concat", SQLK_SAFE},
	{"concat_ws", SQLK_SAFE},
	{"concurrently", SQLK_NONE | SQLK_RESERVED},
	{"constraint", SQLK_NOCALL | SQLK_RESERVED},
	{"convert", SQLK_SAFE},
	{"convert_from", SQLK_SAFE},
	{"convert_to", SQLK_SAFE},
	{"corr", SQLK_SAFE},
	{"cos", SQLK_SAFE},
	{"cosd", SQLK_SAFE},
	{"cosh", SQLK_SAFE},
	{"cot", SQLK_SAFE},
	{"cotd", SQLK_SAFE},
	{"count", SQLK_SAFE},
	{"covar_pop", SQLK_SAFE},
	{"covar_samp", SQLK_SAFE},
	{"create", SQLK_NOCALL | SQLK_RESERVED},
	{"cross", SQLK_NONE | SQLK_RESERVED},
	{"cume_dist", SQLK_SAFE},
	{"current_catalog", SQLK_NOCALL | SQLK_RESERVED},
	{"current_database", SQLK_SAFE},
	{"current_date", SQLK_NOCALL | SQLK_RESERVED},
	{"current_query", SQLK_SAFE},
	{"current_role", SQLK_NOCALL | SQLK_RESERVED},
	{"current_schema", SQLK_SAFE | SQLK_RESERVED},
	{"current_schemas", SQLK_SAFE},
	{"current_setting", SQLK_SAFE},
	{"current_time", SQLK_NOCALL | SQLK_RESERVED},
	{"current_timestamp", SQLK_NOCALL | SQLK_RESERVED},
	{"current_user", SQLK_NOCALL | SQLK_RESERVED},
	{"currval", SQLK_SEQ_READ},
	{"date", SQLK_SAFE},
	{"date_bin", SQLK_SAFE},
	{"date_part", SQLK_SAFE},
	{"date_trunc", SQLK_SAFE},
	{"datemultirange", SQLK_SAFE},
	{"daterange", SQLK_SAFE},
	{"dec", SQLK_NOCALL},
	{"decimal", SQLK_NOCALL},
	{"decode", SQLK_SAFE},
	{"default", SQLK_NOCALL | SQLK_RESERVED},
	{"deferrable", SQLK_NOCALL | SQLK_RESERVED},
	{"degrees", SQLK_SAFE},
	{"dense_rank", SQLK_SAFE},
	{"desc", SQLK_NOCALL | SQLK_RESERVED},
	{"distinct", SQLK_NOCALL | SQLK_RESERVED},
	{"div", SQLK_SAFE},
	{"do", SQLK_NOCALL | SQLK_RESERVED},
	{"else", SQLK_NOCALL | SQLK_RESERVED},
	{"encode", SQLK_SAFE},
	{"end", SQLK_NOCALL | SQLK_RESERVED},
	{"erf", SQLK_SAFE},
	{"erfc", SQLK_SAFE},
	{"every", SQLK_SAFE},
	{"except", SQLK_NOCALL | SQLK_RESERVED},
	{"exists", SQLK_NOCALL},
	{"exp", SQLK_SAFE},
	{"extract", SQLK_SAFE},
	{"factorial", SQLK_SAFE},
	{"false", SQLK_NOCALL | SQLK_RESERVED},
	{"family", SQLK_SAFE},
	{"fetch", SQLK_NOCALL | SQLK_RESERVED},
	{"first_value", SQLK_SAFE},
	{"float", SQLK_NOCALL},
	{"float4", SQLK_SAFE},
	{"float8", SQLK_SAFE},
	{"floor", SQLK_SAFE},
	{"for", SQLK_NOCALL | SQLK_RESERVED},
	{"foreign", SQLK_NOCALL | SQLK_RESERVED},
	{"format", SQLK_SAFE},
	{"format_type", SQLK_SAFE},
	{"freeze", SQLK_NONE | SQLK_RESERVED},
	{"from", SQLK_NOCALL | SQLK_RESERVED},
	{"full", SQLK_NONE | SQLK_RESERVED},
	{"gcd", SQLK_SAFE},
	{"gen_random_uuid", SQLK_SAFE},
	{"generate_series", SQLK_SAFE},
	{"generate_subscripts", SQLK_SAFE},
	{"get_bit", SQLK_SAFE},
	{"get_byte", SQLK_SAFE},
	{"grant", SQLK_NOCALL | SQLK_RESERVED},
	{"greatest", SQLK_NOCALL},
	{"group", SQLK_NOCALL | SQLK_RESERVED},
	{"grouping", SQLK_NOCALL},
	{"has_any_column_privilege", SQLK_SAFE},
	{"has_column_privilege", SQLK_SAFE},
	{"has_database_privilege", SQLK_SAFE},
	{"has_foreign_data_wrapper_privilege", SQLK_SAFE},
	{"has_function_privilege", SQLK_SAFE},
	{"has_language_privilege", SQLK_SAFE},
	{"has_parameter_privilege", SQLK_SAFE},
	{"has_schema_privilege", SQLK_SAFE},
	{"has_sequence_privilege", SQLK_SAFE},
	{"has_server_privilege", SQLK_SAFE},
	{"has_table_privilege", SQLK_SAFE},
	{"has_tablespace_privilege", SQLK_SAFE},
	{"has_type_privilege", SQLK_SAFE},
	{"having", SQLK_NOCALL | SQLK_RESERVED},
	{"host", SQLK_SAFE},
	{"hostmask", SQLK_SAFE},
	{"ilike", SQLK_NONE | SQLK_RESERVED},
	{"in", SQLK_NOCALL | SQLK_RESERVED},
	{"inet_client_addr", SQLK_SAFE},
	{"inet_client_port", SQLK_SAFE},
	{"inet_merge", SQLK_SAFE},
	{"inet_same_family", SQLK_SAFE},
	{"inet_server_addr", SQLK_SAFE},
	{"inet_server_port", SQLK_SAFE},
	{"initcap", SQLK_SAFE},
	{"initially", SQLK_NOCALL | SQLK_RESERVED},
	{"inner", SQLK_NONE | SQLK_RESERVED},
	{"inout", SQLK_NOCALL},
	{"int", SQLK_NOCALL},
	{"int2", SQLK_SAFE},
	{"int4", SQLK_SAFE},
	{"int4multirange", SQLK_SAFE},
	{"int4range", SQLK_SAFE},
	{"int8", SQLK_SAFE},
	{"int8multirange", SQLK_SAFE},
	{"int8range", SQLK_SAFE},
	{"integer", SQLK_NOCALL},
	{"intersect", SQLK_NOCALL | SQLK_RESERVED},
	{"interval", SQLK_SAFE},
	{"into", SQLK_NOCALL | SQLK_RESERVED},
	{"is", SQLK_NONE | SQLK_RESERVED},
	{"is_normalized", SQLK_SAFE},
	{"isempty", SQLK_SAFE},
	{"isfinite", SQLK_SAFE},
	{"isnull", SQLK_NONE | SQLK_RESERVED},
	{"join", SQLK_NONE | SQLK_RESERVED},
	{"json_agg", SQLK_SAFE},
	{"json_array_elements", SQLK_SAFE},
	{"json_array_elements_text", SQLK_SAFE},
	{"json_array_length", SQLK_SAFE},
	{"json_build_array", SQLK_SAFE},
	{"json_build_object", SQLK_SAFE},
	{"json_each", SQLK_SAFE},
	{"json_each_text", SQLK_SAFE},
	{"json_extract_path", SQLK_SAFE},
	{"json_extract_path_text", SQLK_SAFE},
	{"json_object", SQLK_SAFE},
	{"json_object_agg", SQLK_SAFE},
	{"json_object_keys", SQLK_SAFE},
	{"json_populate_record", SQLK_SAFE},
	{"json_populate_recordset", SQLK_SAFE},
	{"json_strip_nulls", SQLK_SAFE},
	{"json_to_record", SQLK_SAFE},
	{"json_to_recordset", SQLK_SAFE},
	{"json_typeof", SQLK_SAFE},
	{"jsonb_agg", SQLK_SAFE},
	{"jsonb_array_elements", SQLK_SAFE},
	{"jsonb_array_elements_text", SQLK_SAFE},
	{"jsonb_array_length", SQLK_SAFE},
	{"jsonb_build_array", SQLK_SAFE},
	{"jsonb_build_object", SQLK_SAFE},
	{"jsonb_each", SQLK_SAFE},
	{"jsonb_each_text", SQLK_SAFE},
	{"jsonb_extract_path", SQLK_SAFE},
	{"jsonb_extract_path_text", SQLK_SAFE},
	{"jsonb_insert", SQLK_SAFE},
	{"jsonb_object", SQLK_SAFE},
	{"jsonb_object_agg", SQLK_SAFE},
	{"jsonb_object_keys", SQLK_SAFE},
	{"jsonb_path_exists", SQLK_SAFE},
	{"jsonb_path_exists_tz", SQLK_SAFE},
	{"jsonb_path_match", SQLK_SAFE},
	{"jsonb_path_match_tz", SQLK_SAFE},
	{"jsonb_path_query", SQLK_SAFE},
	{"jsonb_path_query_array", SQLK_SAFE},
	{"jsonb_path_query_array_tz", SQLK_SAFE},
	{"jsonb_path_query_first", SQLK_SAFE},
	{"jsonb_path_query_first_tz", SQLK_SAFE},
	{"jsonb_path_query_tz", SQLK_SAFE},
	{"jsonb_populate_record", SQLK_SAFE},
	{"jsonb_populate_recordset", SQLK_SAFE},
	{"jsonb_pretty", SQLK_SAFE},
	{"jsonb_set", SQLK_SAFE},
	{"jsonb_set_lax", SQLK_SAFE},
	{"jsonb_strip_nulls", SQLK_SAFE},
	{"jsonb_to_record", SQLK_SAFE},
	{"jsonb_to_recordset", SQLK_SAFE},
	{"jsonb_typeof", SQLK_SAFE},
	{"justify_days", SQLK_SAFE},
	{"justify_hours", SQLK_SAFE},
	{"justify_interval", SQLK_SAFE},
	{"key", SQLK_CTX},
	{"lag", SQLK_SAFE},
	{"last_value", SQLK_SAFE},
	{"lastval", SQLK_SEQ_READ},
	{"lateral", SQLK_NOCALL | SQLK_RESERVED},
	{"lcm", SQLK_SAFE},
	{"lead", SQLK_SAFE},
	{"leading", SQLK_NOCALL | SQLK_RESERVED},
	{"least", SQLK_NOCALL},
	{"left", SQLK_SAFE | SQLK_RESERVED},
	{"length", SQLK_SAFE},
	{"like", SQLK_NONE | SQLK_RESERVED},
	{"like_escape", SQLK_SAFE},
	{"limit", SQLK_NOCALL | SQLK_RESERVED},
	{"ln", SQLK_SAFE},
	{"localtime", SQLK_NOCALL | SQLK_RESERVED},
	{"localtimestamp", SQLK_NOCALL | SQLK_RESERVED},
	{"log", SQLK_SAFE},
	{"log10", SQLK_SAFE},
	{"lower", SQLK_SAFE},
	{"lower_inc", SQLK_SAFE},
	{"lower_inf", SQLK_SAFE},
	{"lpad", SQLK_SAFE},
	{"ltrim", SQLK_SAFE},
	{"make_date", SQLK_SAFE},
	{"make_interval", SQLK_SAFE},
	{"make_time", SQLK_SAFE},
	{"make_timestamp", SQLK_SAFE},
	{"make_timestamptz", SQLK_SAFE},
	{"masklen", SQLK_SAFE},
	{"materialized", SQLK_CTX},
	{"max", SQLK_SAFE},
	{"md5", SQLK_SAFE},
	{"min", SQLK_SAFE},
	{"min_scale", SQLK_SAFE},
	{"mod", SQLK_SAFE},
	{"mode", SQLK_SAFE},
	{"multirange", SQLK_SAFE},
	{"name", SQLK_SAFE},
	{"national", SQLK_NOCALL},
	{"natural", SQLK_NONE | SQLK_RESERVED},
	{"nchar", SQLK_NOCALL},
	{"netmask", SQLK_SAFE},
	{"network", SQLK_SAFE},
	{"nextval", SQLK_SEQ_WRITE},
	{"none", SQLK_NOCALL},
	{"normalize", SQLK_SAFE},
	{"not", SQLK_NOCALL | SQLK_RESERVED},
	{"notnull", SQLK_NONE | SQLK_RESERVED},
	{"now", SQLK_SAFE},
	{"nth_value", SQLK_SAFE},
	{"ntile", SQLK_SAFE},
	{"null", SQLK_NOCALL | SQLK_RESERVED},
	{"nullif", SQLK_NOCALL},
	{"num_nonnulls", SQLK_SAFE},
	{"num_nulls", SQLK_SAFE},
	{"numeric", SQLK_SAFE},
	{"nummultirange", SQLK_SAFE},
	{"numnode", SQLK_SAFE},
	{"numrange", SQLK_SAFE},
	{"obj_description", SQLK_SAFE},
	{"octet_length", SQLK_SAFE},
	{"offset", SQLK_NOCALL | SQLK_RESERVED},
	{"oid", SQLK_SAFE},
	{"on", SQLK_NOCALL | SQLK_RESERVED},
	{"only", SQLK_NOCALL | SQLK_RESERVED},
	{"or", SQLK_NOCALL | SQLK_RESERVED},
	{"order", SQLK_NOCALL | SQLK_RESERVED},
	{"out", SQLK_NOCALL},
	{"outer", SQLK_NONE | SQLK_RESERVED},
	{"overlaps", SQLK_SAFE | SQLK_RESERVED},
	{"overlay", SQLK_SAFE},
	{"parse_ident", SQLK_SAFE},
	{"percent_rank", SQLK_SAFE},
	{"percentile_cont", SQLK_SAFE},
	{"percentile_disc", SQLK_SAFE},
	{"pg_advisory_lock", SQLK_ADVISORY},
	{"pg_advisory_lock_shared", SQLK_ADVISORY},
	{"pg_advisory_unlock", SQLK_RELEASE},
	{"pg_advisory_unlock_all", SQLK_RELEASE},
	{"pg_advisory_unlock_shared", SQLK_RELEASE},
	{"pg_advisory_xact_lock", SQLK_SAFE},
	{"pg_advisory_xact_lock_shared", SQLK_SAFE},
	{"pg_backend_pid", SQLK_SAFE},
	{"pg_blocking_pids", SQLK_SAFE},
	{"pg_char_to_encoding", SQLK_SAFE},
	{"pg_client_encoding", SQLK_SAFE},
	{"pg_collation_for", SQLK_SAFE},
	{"pg_column_size", SQLK_SAFE},
	{"pg_conf_load_time", SQLK_SAFE},
	{"pg_current_logfile", SQLK_SAFE},
	{"pg_current_snapshot", SQLK_SAFE},
	{"pg_current_wal_lsn", SQLK_SAFE},
	{"pg_current_xact_id", SQLK_SAFE},
	{"pg_current_xact_id_if_assigned", SQLK_SAFE},
	{"pg_database_size", SQLK_SAFE},
	{"pg_describe_object", SQLK_SAFE},
	{"pg_encoding_to_char", SQLK_SAFE},
	{"pg_function_is_visible", SQLK_SAFE},
	{"pg_get_constraintdef", SQLK_SAFE},
	{"pg_get_expr", SQLK_SAFE},
	{"pg_get_function_arguments", SQLK_SAFE},
	{"pg_get_function_identity_arguments", SQLK_SAFE},
	{"pg_get_function_result", SQLK_SAFE},
	{"pg_get_functiondef", SQLK_SAFE},
	{"pg_get_indexdef", SQLK_SAFE},
	{"pg_get_keywords", SQLK_SAFE},
	{"pg_get_partkeydef", SQLK_SAFE},
	{"pg_get_ruledef", SQLK_SAFE},
	{"pg_get_serial_sequence", SQLK_SAFE},
	{"pg_get_statisticsobjdef", SQLK_SAFE},
	{"pg_get_triggerdef", SQLK_SAFE},
	{"pg_get_userbyid", SQLK_SAFE},
	{"pg_get_viewdef", SQLK_SAFE},
	{"pg_has_role", SQLK_SAFE},
	{"pg_identify_object", SQLK_SAFE},
	{"pg_indexes_size", SQLK_SAFE},
	{"pg_is_in_recovery", SQLK_SAFE},
	{"pg_is_other_temp_schema", SQLK_SAFE},
	{"pg_jit_available", SQLK_SAFE},
	{"pg_last_wal_receive_lsn", SQLK_SAFE},
	{"pg_last_wal_replay_lsn", SQLK_SAFE},
	{"pg_last_xact_replay_timestamp", SQLK_SAFE},
	{"pg_listening_channels", SQLK_SAFE},
	{"pg_my_temp_schema", SQLK_SAFE},
	{"pg_notification_queue_usage", SQLK_SAFE},
	{"pg_notify", SQLK_SAFE},
	{"pg_postmaster_start_time", SQLK_SAFE},
	{"pg_relation_filenode", SQLK_SAFE},
	{"pg_relation_filepath", SQLK_SAFE},
	{"pg_relation_size", SQLK_SAFE},
	{"pg_safe_snapshot_blocking_pids", SQLK_SAFE},
	{"pg_size_bytes", SQLK_SAFE},
	{"pg_size_pretty", SQLK_SAFE},
	{"pg_sleep", SQLK_SAFE},
	{"pg_sleep_for", SQLK_SAFE},
	{"pg_sleep_until", SQLK_SAFE},
	{"pg_snapshot_xmax", SQLK_SAFE},
	{"pg_snapshot_xmin", SQLK_SAFE},
	{"pg_table_is_visible", SQLK_SAFE},
	{"pg_table_size", SQLK_SAFE},
	{"pg_tablespace_size", SQLK_SAFE},
	{"pg_total_relation_size", SQLK_SAFE},
	{"pg_trigger_depth", SQLK_SAFE},
	{"pg_try_advisory_lock", SQLK_ADVISORY},
	{"pg_try_advisory_lock_shared", SQLK_ADVISORY},
	{"pg_try_advisory_xact_lock", SQLK_SAFE},
	{"pg_try_advisory_xact_lock_shared", SQLK_SAFE},
	{"pg_type_is_visible", SQLK_SAFE},
	{"pg_typeof", SQLK_SAFE},
	{"pg_wal_lsn_diff", SQLK_SAFE},
	{"pg_xact_commit_timestamp", SQLK_SAFE},
	{"pg_xact_status", SQLK_SAFE},
	{"phraseto_tsquery", SQLK_SAFE},
	{"pi", SQLK_SAFE},
	{"placing", SQLK_NOCALL | SQLK_RESERVED},
	{"plainto_tsquery", SQLK_SAFE},
	{"position", SQLK_SAFE},
	{"pow", SQLK_SAFE},
	{"power", SQLK_SAFE},
	{"precision", SQLK_NOCALL},
	{"primary", SQLK_NOCALL | SQLK_RESERVED},
	{"querytree", SQLK_SAFE},
	{"quote_ident", SQLK_SAFE},
	{"quote_literal", SQLK_SAFE},
	{"quote_nullable", SQLK_SAFE},
	{"radians", SQLK_SAFE},
	{"random", SQLK_SAFE},
	{"random_normal", SQLK_SAFE},
	{"range_agg", SQLK_SAFE},
	{"range_intersect_agg", SQLK_SAFE},
	{"range_merge", SQLK_SAFE},
	{"rank", SQLK_SAFE},
	{"real", SQLK_NOCALL},
	{"references", SQLK_NOCALL | SQLK_RESERVED},
	{"regclass", SQLK_SAFE},
	{"regexp_count", SQLK_SAFE},
	{"regexp_instr", SQLK_SAFE},
	{"regexp_like", SQLK_SAFE},
	{"regexp_match", SQLK_SAFE},
	{"regexp_matches", SQLK_SAFE},
	{"regexp_replace", SQLK_SAFE},
	{"regexp_split_to_array", SQLK_SAFE},
	{"regexp_split_to_table", SQLK_SAFE},
	{"regexp_substr", SQLK_SAFE},
	{"regr_avgx", SQLK_SAFE},
	{"regr_avgy", SQLK_SAFE},
	{"regr_count", SQLK_SAFE},
	{"regr_intercept", SQLK_SAFE},
	{"regr_r2", SQLK_SAFE},
	{"regr_slope", SQLK_SAFE},
	{"regr_sxx", SQLK_SAFE},
	{"regr_sxy", SQLK_SAFE},
	{"regr_syy", SQLK_SAFE},
	{"repeat", SQLK_SAFE},
	{"replace", SQLK_SAFE},
	{"returning", SQLK_NOCALL | SQLK_RESERVED},
	{"reverse", SQLK_SAFE},
	{"right", SQLK_SAFE | SQLK_RESERVED},
	{"round", SQLK_SAFE},
	{"row", SQLK_NOCALL},
	{"row_number", SQLK_SAFE},
	{"row_security_active", SQLK_SAFE},
	{"row_to_json", SQLK_SAFE},
	{"rpad", SQLK_SAFE},
	{"rtrim", SQLK_SAFE},
	{"scale", SQLK_SAFE},
	{"select", SQLK_NOCALL | SQLK_RESERVED},
	{"session_user", SQLK_NOCALL | SQLK_RESERVED},
	{"set_bit", SQLK_SAFE},
	{"set_byte", SQLK_SAFE},
	{"set_config", SQLK_SETTING},
	{"set_masklen", SQLK_SAFE},
	{"setof", SQLK_NOCALL},
	{"sets", SQLK_CTX},
	{"setval", SQLK_SEQ_WRITE},
	{"setweight", SQLK_SAFE},
	{"sha224", SQLK_SAFE},
	{"sha256", SQLK_SAFE},
	{"sha384", SQLK_SAFE},
	{"sha512", SQLK_SAFE},
	{"shobj_description", SQLK_SAFE},
	{"sign", SQLK_SAFE},
	{"similar", SQLK_NONE | SQLK_RESERVED},
	{"similar_escape", SQLK_SAFE},
	{"similar_to_escape", SQLK_SAFE},
	{"sin", SQLK_SAFE},
	{"sind", SQLK_SAFE},
	{"sinh", SQLK_SAFE},
	{"smallint", SQLK_NOCALL},
	{"some", SQLK_NOCALL | SQLK_RESERVED},
	{"split_part", SQLK_SAFE},
	{"sqrt", SQLK_SAFE},
	{"starts_with", SQLK_SAFE},
	{"statement_timestamp", SQLK_SAFE},
	{"stddev", SQLK_SAFE},
	{"stddev_pop", SQLK_SAFE},
	{"stddev_samp", SQLK_SAFE},
	{"string_agg", SQLK_SAFE},
	{"string_to_array", SQLK_SAFE},
	{"string_to_table", SQLK_SAFE},
	{"strip", SQLK_SAFE},
	{"strpos", SQLK_SAFE},
	{"substr", SQLK_SAFE},
	{"substring", SQLK_SAFE},
	{"sum", SQLK_SAFE},
	{"symmetric", SQLK_NOCALL | SQLK_RESERVED},
	{"table", SQLK_NOCALL | SQLK_RESERVED},
	{"tablesample", SQLK_NONE | SQLK_RESERVED},
	{"tan", SQLK_SAFE},
	{"tand", SQLK_SAFE},
	{"tanh", SQLK_SAFE},
	{"text", SQLK_SAFE},
	{"then", SQLK_NOCALL | SQLK_RESERVED},
	{"time", SQLK_SAFE},
	{"timeofday", SQLK_SAFE},
	{"timestamp", SQLK_SAFE},
	{"timestamptz", SQLK_SAFE},
	{"timetz", SQLK_SAFE},
	{"timezone", SQLK_SAFE},
	{"to", SQLK_NOCALL | SQLK_RESERVED},
	{"to_ascii", SQLK_SAFE},
	{"to_char", SQLK_SAFE},
	{"to_date", SQLK_SAFE},
	{"to_hex", SQLK_SAFE},
	{"to_json", SQLK_SAFE},
	{"to_jsonb", SQLK_SAFE},
	{"to_number", SQLK_SAFE},
	{"to_regclass", SQLK_SAFE},
	{"to_regcollation", SQLK_SAFE},
	{"to_regnamespace", SQLK_SAFE},
	{"to_regoper", SQLK_SAFE},
	{"to_regoperator", SQLK_SAFE},
	{"to_regproc", SQLK_SAFE},
	{"to_regprocedure", SQLK_SAFE},
	{"to_regrole", SQLK_SAFE},
	{"to_regtype", SQLK_SAFE},
	{"to_timestamp", SQLK_SAFE},
	{"to_tsquery", SQLK_SAFE},
	{"to_tsvector", SQLK_SAFE},
	{"trailing", SQLK_NOCALL | SQLK_RESERVED},
	{"transaction_timestamp", SQLK_SAFE},
	{"translate", SQLK_SAFE},
	{"treat", SQLK_NOCALL},
	{"trim", SQLK_NOCALL},
	{"trim_array", SQLK_SAFE},
	{"trim_scale", SQLK_SAFE},
	{"true", SQLK_NOCALL | SQLK_RESERVED},
	{"trunc", SQLK_SAFE},
	{"ts_headline", SQLK_SAFE},
	{"ts_lexize", SQLK_SAFE},
	{"ts_rank", SQLK_SAFE},
	{"ts_rank_cd", SQLK_SAFE},
	{"ts_rewrite", SQLK_SAFE},
	{"tsmultirange", SQLK_SAFE},
	{"tsrange", SQLK_SAFE},
	{"tstzmultirange", SQLK_SAFE},
	{"tstzrange", SQLK_SAFE},
	{"tsvector_to_array", SQLK_SAFE},
	{"txid_current", SQLK_SAFE},
	{"txid_current_if_assigned", SQLK_SAFE},
	{"txid_current_snapshot", SQLK_SAFE},
	{"txid_snapshot_xmax", SQLK_SAFE},
	{"txid_snapshot_xmin", SQLK_SAFE},
	{"txid_status", SQLK_SAFE},
	{"txid_visible_in_snapshot", SQLK_SAFE},
	{"union", SQLK_NOCALL | SQLK_RESERVED},
	{"unique", SQLK_NOCALL | SQLK_RESERVED},
	{"unistr", SQLK_SAFE},
	{"unnest", SQLK_SAFE},
	{"upper", SQLK_SAFE},
	{"upper_inc", SQLK_SAFE},
	{"upper_inf", SQLK_SAFE},
	{"user", SQLK_NOCALL | SQLK_RESERVED},
	{"using", SQLK_NOCALL | SQLK_RESERVED},
	{"uuid_generate_v4", SQLK_SAFE},
	{"values", SQLK_NOCALL},
	{"var_pop", SQLK_SAFE},
	{"var_samp", SQLK_SAFE},
	{"varbit", SQLK_SAFE},
	{"varchar", SQLK_SAFE},
	{"variadic", SQLK_NOCALL | SQLK_RESERVED},
	{"variance", SQLK_SAFE},
	{"varying", SQLK_CTX},
	{"verbose", SQLK_NONE | SQLK_RESERVED},
	{"version", SQLK_SAFE},
	{"websearch_to_tsquery", SQLK_SAFE},
	{"when", SQLK_NOCALL | SQLK_RESERVED},
	{"where", SQLK_NOCALL | SQLK_RESERVED},
	{"width_bucket", SQLK_SAFE},
	{"window", SQLK_NOCALL | SQLK_RESERVED},
	{"with", SQLK_NOCALL | SQLK_RESERVED},
	{"xml", SQLK_SAFE},
	{"xml_is_well_formed", SQLK_SAFE},
	{"xml_is_well_formed_content", SQLK_SAFE},
	{"xml_is_well_formed_document", SQLK_SAFE},
	{"xmlagg", SQLK_SAFE},
	{"xmlattributes", SQLK_NOCALL},
	{"xmlcomment", SQLK_SAFE},
	{"xmlconcat", SQLK_NOCALL},
	{"xmlelement", SQLK_NOCALL},
	{"xmlexists", SQLK_SAFE},
	{"xmlforest", SQLK_NOCALL},
	{"xmlnamespaces", SQLK_NOCALL},
	{"xmlparse", SQLK_NOCALL},
	{"xmlpi", SQLK_NOCALL},
	{"xmlroot", SQLK_NOCALL},
	{"xmlserialize", SQLK_NOCALL},
	{"xmltable", SQLK_NOCALL},
	{"xpath", SQLK_SAFE},
	{"xpath_exists", SQLK_SAFE},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* strcmp, inlined: keys are short and usually differ in the first byte. */
static inline int
key_cmp(const char *a, const char *b)
{
	while (*a && *a == *b)
	{
		a++;
		b++;
	}
	return (unsigned char) *a - (unsigned char) *b;
}

static const name_entry *
lookup_name(const char *key)
{
	size_t lo = 0, hi = NELEM(name_table);

	while (lo < hi)
	{
		size_t mid = (lo + hi) / 2;
		int c = key_cmp(key, name_table[mid].name);

		if (c == 0)
			return &name_table[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

enum cmd {
	C_NONE,
	C_OTHER,            /* known, changes nothing in the session */
	C_SELECT,
	C_INSERT,
	C_UPDATE,
	C_DELETE,
	C_MERGE,
	C_VALUES,
	C_TABLE,
	C_WITH,
	C_COPY,
	C_EXECUTE,
	C_SET,
	C_RESET,
	C_ALTER,
	C_CREATE,
	C_DROP,
	C_DISCARD,
	C_DEALLOCATE,
	C_CLOSE,
	C_LISTEN,
	C_UNLISTEN,
	C_DECLARE,
	C_PREPARE,
	C_EXPLAIN,
	C_DO,
	C_CALL,
	C_LOAD
};

typedef struct cmd_entry {
	const char *name;
	uint8_t cmd;
} cmd_entry;

/* Every statement-initial keyword of PostgreSQL 15; sorted. */
static const cmd_entry cmd_table[] = {
	{"abort", C_OTHER},
	{"alter", C_ALTER},
	{"analyse", C_OTHER},
	{"analyze", C_OTHER},
	{"begin", C_OTHER},
	{"call", C_CALL},
	{"checkpoint", C_OTHER},
	{"close", C_CLOSE},
	{"cluster", C_OTHER},
	{"comment", C_OTHER},
	{"commit", C_OTHER},
	{"copy", C_COPY},
	{"create", C_CREATE},
	{"deallocate", C_DEALLOCATE},
	{"declare", C_DECLARE},
	{"delete", C_DELETE},
	{"discard", C_DISCARD},
	{"do", C_DO},
	{"drop", C_DROP},
	{"end", C_OTHER},
	{"execute", C_EXECUTE},
	{"explain", C_EXPLAIN},
	{"fetch", C_OTHER},
	{"grant", C_OTHER},
	{"import", C_OTHER},
	{"insert", C_INSERT},
	{"listen", C_LISTEN},
	{"load", C_LOAD},
	{"lock", C_OTHER},
	{"merge", C_MERGE},
	{"move", C_OTHER},
	{"notify", C_OTHER},
	{"prepare", C_PREPARE},
	{"reassign", C_OTHER},
	{"refresh", C_OTHER},
	{"reindex", C_OTHER},
	{"release", C_OTHER},
	{"reset", C_RESET},
	{"revoke", C_OTHER},
	{"rollback", C_OTHER},
	{"savepoint", C_OTHER},
	{"security", C_OTHER},
	{"select", C_SELECT},
	{"set", C_SET},
	{"show", C_OTHER},
	{"start", C_OTHER},
	{"table", C_TABLE},
	{"truncate", C_OTHER},
	{"unlisten", C_UNLISTEN},
	{"update", C_UPDATE},
	{"vacuum", C_OTHER},
	{"values", C_VALUES},
	{"with", C_WITH},
};

static int
lookup_cmd(const token *t)
{
	char key[16];
	size_t lo = 0, hi = NELEM(cmd_table);

	if (t->type != T_WORD || !name_key(t, key, sizeof(key)))
		return C_NONE;
	while (lo < hi)
	{
		size_t mid = (lo + hi) / 2;
		int c = key_cmp(key, cmd_table[mid].name);

		if (c == 0)
			return cmd_table[mid].cmd;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return C_NONE;
}

bool
pgc_sql_tables_ok(void)
{
	for (size_t i = 1; i < NELEM(name_table); i++)
		if (strcmp(name_table[i - 1].name, name_table[i].name) >= 0)
			return false;
	for (size_t i = 1; i < NELEM(cmd_table); i++)
		if (strcmp(cmd_table[i - 1].name, cmd_table[i].name) >= 0)
			return false;
	return true;
}

/* pg_temp or pg_temp_NNN: the session's temporary schema. */
static bool
is_pg_temp(const token *t)
{
	char key[64];
	size_t i;

	if (!name_key(t, key, sizeof(key)) || strncmp(key, "pg_temp", 7) != 0)
		return false;
	if (key[7] == '\0')
		return true;
	if (key[7] != '_' || key[8] == '\0')
		return false;
	for (i = 8; key[i]; i++)
		if (!is_digit((unsigned char) key[i]))
			return false;
	return true;
}

static bool
is_pg_catalog(const token *t)
{
	char key[16];

	return name_key(t, key, sizeof(key)) && strcmp(key, "pg_catalog") == 0;
}

/* ------------------------------------------------------ the statement */

enum obj {
	O_NONE,
	O_TABLE,
	O_VIEW,
	O_MATVIEW,
	O_SEQUENCE,
	O_INDEX,
	O_ROUTINE,
	O_OTHER
};

/*
 * The statement refers to recent tokens by their index in the classifier's
 * ring rather than by copies: a token stored in pieces by the lexer and
 * copied whole right after costs a store-forwarding stall, which was half
 * the time of the fast path.
 */
#define RING        16
#define NO_TOK      UINT32_MAX

typedef struct stmt {
	const token *ring;          /* the last RING tokens, by index % RING */
	uint32_t cur;               /* index of the token being fed */
	const char *start;          /* text of the statement */
	const char *end;
	int ntok;
	int depth;                  /* parentheses */
	int max_depth;
	int begin_depth;            /* BEGIN ATOMIC ... END of CREATE FUNCTION */
	unsigned ops;
	uint32_t flags;
	const char *kind;
	uint8_t cmd;
	uint8_t obj;
	uint8_t phase;              /* per-command progress */
	bool expect_cmd;            /* next word starts a (wrapped) statement */
	bool scan;                  /* look for function calls */
	bool need_parser;
	bool error;
	bool funcdef;
	int nargs;                  /* words at depth 0 after the command word */
	uint32_t prev_i;            /* the previous token */
	uint32_t prev_type;

	/* the name being read: word ('.' word)* */
	bool in_name;
	int name_parts;
	uint32_t pre_i, first_i, last_i;    /* token before it, first and last part */

	/* WITH list */
	bool in_cte;
	int cte_depth;

	/* SELECT ... INTO */
	bool main_select;
	uint8_t into_state;

	/* CREATE */
	bool temp_kw, matview, in_pg_temp, on_commit_drop;
	uint8_t oc_state;
	bool cname_pending;         /* next token '.' after cname: schema-qualified */
	bool cname_into;            /* cname is a SELECT INTO target */
	uint32_t cname_i;

	/* DECLARE */
	bool seen_cursor;

	/* a word that may mean more than reading: INSERT, UPDATE, DELETE, MERGE, INTO, SHARE */
	bool write_word;
} stmt;

static void
stmt_reset(stmt *st, const token *ring)
{
	memset(st, 0, sizeof(*st));
	st->ring = ring;
	st->expect_cmd = true;
	st->prev_type = T_EOF;
	st->prev_i = st->pre_i = st->first_i = st->last_i = st->cname_i = NO_TOK;
}

/* Token i, or an EOF token if it is gone from the ring (or none). */
static inline const token *
tok_at(const stmt *st, uint32_t i)
{
	static const token none = {"", 0, T_EOF};

	return (i != NO_TOK && st->cur - i < RING) ? &st->ring[i % RING] : &none;
}

static inline void
mark(stmt *st, uint32_t flag, const char *kind)
{
	st->flags |= flag;
	if (!st->kind)
		st->kind = kind;
}

static void
start_cmd(stmt *st, int cmd)
{
	st->cmd = (uint8_t) cmd;
	st->expect_cmd = false;
	st->phase = 0;
	st->nargs = 0;
	st->main_select = false;
	switch (cmd)
	{
		case C_SELECT:
			st->scan = true;
			st->main_select = st->depth == 0;
			break;
		case C_WITH:
			st->scan = true;
			st->in_cte = true;
			st->cte_depth = st->depth;
			break;
		case C_INSERT:
		case C_MERGE:
		case C_COPY:
			/* Column defaults may call nextval(). */
			st->flags |= PGC_SQL_SEQ_WRITE;
			st->scan = true;
			break;
		case C_UPDATE:
		case C_DELETE:
		case C_VALUES:
		case C_TABLE:
		case C_EXECUTE:
			st->scan = true;
			break;
		case C_DO:
			mark(st, PGC_SQL_UNKNOWN, "DO");
			break;
		case C_CALL:
			mark(st, PGC_SQL_UNKNOWN, "CALL");
			break;
		case C_LOAD:
			mark(st, PGC_SQL_UNKNOWN, "LOAD");
			break;
		case C_LISTEN:
			mark(st, PGC_SQL_LISTEN, "LISTEN");
			break;
		case C_UNLISTEN:
			mark(st, PGC_SQL_RELEASE, "UNLISTEN");
			break;
		case C_DROP:
			mark(st, PGC_SQL_RELEASE, "DROP");
			st->flags |= PGC_SQL_DDL;
			break;
		case C_CREATE:
		case C_ALTER:
			st->flags |= PGC_SQL_DDL;
			break;
		case C_CLOSE:
			mark(st, PGC_SQL_RELEASE, "CLOSE");
			break;
		case C_DEALLOCATE:
			mark(st, PGC_SQL_RELEASE, "DEALLOCATE");
			break;
		case C_NONE:
			mark(st, PGC_SQL_UNKNOWN, "unrecognized statement");
			st->cmd = C_OTHER;
			break;
		default:
			break;
	}
}

/* Does the entry stand for a built-in function (rather than a keyword)? */
static inline bool
is_function_class(const name_entry *e)
{
	int c = e->cls & SQLK_CLASS;

	return c == SQLK_SAFE || c == SQLK_SETTING || c == SQLK_ADVISORY || c == SQLK_RELEASE ||
		c == SQLK_SEQ_READ || c == SQLK_SEQ_WRITE;
}

/* Is the CTX keyword w, followed by '(', syntax here? */
static bool
ctx_syntax(const stmt *st, const char *w)
{
	const token *pre = tok_at(st, st->pre_i);

	if (strcmp(w, "by") == 0)
		return KW(pre, "order") || KW(pre, "group") || KW(pre, "partition");
	if (strcmp(w, "key") == 0)
		return KW(pre, "primary") || KW(pre, "foreign");
	if (strcmp(w, "materialized") == 0)
		return st->in_cte && st->depth == st->cte_depth;
	if (strcmp(w, "sets") == 0)
		return KW(pre, "grouping");
	if (strcmp(w, "varying") == 0)
		return KW(pre, "character") || KW(pre, "char") || KW(pre, "bit") ||
			KW(pre, "nchar") || KW(pre, "national");
	return false;
}

/* '(' follows the name just read: is it a call, and of what? */
static void
check_call(stmt *st)
{
	const token *pre = tok_at(st, st->pre_i);
	const token *first = tok_at(st, st->first_i);
	const token *last = tok_at(st, st->last_i);
	const name_entry *e = NULL;
	char key[40];

	/* x::numeric(10,2), x::myschema.mytype(3) */
	if (pre->type == T_DCOLON)
		return;
	/* f(x) AS t(a, b), generate_series(1, 3) g(i), count(*) FILTER (...) */
	if (pre->type == T_RPAREN)
		return;
	if (pre->type == T_WORD &&
		(KW(pre, "as") || KW(pre, "into") || KW(pre, "table") || KW(pre, "function") ||
		 KW(pre, "procedure") || KW(pre, "routine") || KW(pre, "aggregate") ||
		 KW(pre, "view") || KW(pre, "references") || KW(pre, "prepare") ||
		 KW(pre, "execute") || KW(pre, "copy") || KW(pre, "exists") ||
		 KW(pre, "with") || KW(pre, "recursive")))
		return;
	/* t TABLESAMPLE method (...) */
	if (KW(pre, "tablesample"))
		return;
	/* CREATE INDEX ... ON [ONLY] t USING m (...) */
	if (st->cmd == C_CREATE && st->obj == O_INDEX && pre->type == T_WORD &&
		(KW(pre, "on") || KW(pre, "only") || KW(pre, "using")))
		return;
	/* WITH a AS (...), b (x, y) AS (...) */
	if (st->in_cte && st->depth == st->cte_depth && pre->type == T_COMMA)
		return;

	if (st->name_parts == 1)
	{
		if (name_key(last, key, sizeof(key)))
			e = lookup_name(key);
		/* A quoted name is never a keyword. */
		if (e && last->type == T_QIDENT && !is_function_class(e))
			e = NULL;
	}
	else if (st->name_parts == 2 && is_pg_catalog(first))
	{
		if (name_key(last, key, sizeof(key)))
			e = lookup_name(key);
		if (e && !is_function_class(e))
			e = NULL;
	}

	switch (e ? e->cls & SQLK_CLASS : 0)
	{
		case SQLK_NOCALL:
		case SQLK_SAFE:
			break;
		case SQLK_CTX:
			if (!ctx_syntax(st, e->name))
				st->need_parser = true;
			break;
		case SQLK_SETTING:
			mark(st, PGC_SQL_SETTING, e->name);
			break;
		case SQLK_ADVISORY:
			mark(st, PGC_SQL_ADVISORY, e->name);
			break;
		case SQLK_RELEASE:
			mark(st, PGC_SQL_RELEASE, e->name);
			break;
		case SQLK_SEQ_READ:
			st->flags |= PGC_SQL_SEQ_READ;
			break;
		case SQLK_SEQ_WRITE:
			st->flags |= PGC_SQL_SEQ_WRITE;
			break;
		default:
			st->need_parser = true;
			break;
	}
}

/*
 * Keywords that, like operators, may nest expressions one level each in the
 * parse tree (NOT NOT ..., x AT TIME ZONE a AT TIME ZONE b ...): counted
 * against MAX_PARSE_OPS.
 */
static bool
nesting_kw(const token *t)
{
	if (t->type != T_WORD || t->len < 2 || t->len > 8)
		return false;
	switch (lower_ascii(t->p[0]))
	{
		case 'a':
			return KW(t, "and") || KW(t, "at");
		case 'b':
			return KW(t, "between");
		case 'c':
			return KW(t, "case") || KW(t, "collate");
		case 'e':
			return KW(t, "escape");
		case 'i':
			return KW(t, "is") || KW(t, "in") || KW(t, "ilike") || KW(t, "isnull");
		case 'l':
			return KW(t, "like");
		case 'n':
			return KW(t, "not") || KW(t, "notnull");
		case 'o':
			return KW(t, "or") || KW(t, "overlaps");
		case 's':
			return KW(t, "similar");
		default:
			return false;
	}
}

/* A word (or quoted identifier) in the statement. */
static void
on_word(stmt *st, const token *t)
{
	bool q = t->type == T_QIDENT;

	if (st->prev_type == T_DOT && st->in_name)
	{
		st->last_i = st->cur;
		st->name_parts++;
	}
	else
	{
		st->in_name = true;
		st->pre_i = st->prev_i;
		st->first_i = st->last_i = st->cur;
		st->name_parts = 1;
	}

	if (st->expect_cmd)
	{
		if (q)
		{
			mark(st, PGC_SQL_UNKNOWN, "unrecognized statement");
			st->expect_cmd = false;
			st->cmd = C_OTHER;
		}
		else
			start_cmd(st, lookup_cmd(t));
		st->in_name = false;
		return;
	}
	if (st->depth == 0)
		st->nargs++;
	if (st->scan && nesting_kw(t))
		st->ops++;

	/* A WITH list ends where its statement begins. */
	if (st->in_cte && st->depth == st->cte_depth && !q)
	{
		if (KW(t, "select"))
		{
			st->in_cte = false;
			st->main_select = st->depth == 0;
			return;
		}
		if (KW(t, "insert") || KW(t, "update") || KW(t, "delete") || KW(t, "merge") ||
			KW(t, "values") || KW(t, "table"))
		{
			st->in_cte = false;
			return;
		}
	}
	/* (WITH ...) */
	if (st->scan && KW(t, "with") && st->prev_type == T_LPAREN)
	{
		st->in_cte = true;
		st->cte_depth = st->depth;
		return;
	}

	/* SELECT ... INTO [GLOBAL|LOCAL] TEMP|TEMPORARY [TABLE] x, or INTO pg_temp.x */
	if (st->main_select && st->depth == 0)
	{
		if (st->into_state == 0)
		{
			if (KW(t, "into"))
				st->into_state = 1;
			return;
		}
		if (st->into_state == 1)
		{
			if (KW(t, "global") || KW(t, "local") || KW(t, "unlogged") || KW(t, "table"))
				return;
			st->into_state = 2;
			if (KW(t, "temp") || KW(t, "temporary"))
				mark(st, PGC_SQL_TEMP, "SELECT INTO TEMP");
			else
			{
				st->cname_i = st->cur;
				st->cname_pending = true;
				st->cname_into = true;
			}
			return;
		}
	}

	switch (st->cmd)
	{
		case C_SET:
			if (st->phase == 0)
			{
				st->phase = 2;
				if (KW(t, "local") || KW(t, "transaction"))
					st->flags |= PGC_SQL_LOCAL_SETTING;
				else if (KW(t, "constraints"))
					;
				else if (KW(t, "session"))
					st->phase = 1;
				else
					mark(st, PGC_SQL_SETTING, "SET");
			}
			else if (st->phase == 1)
			{
				st->phase = 2;
				if (KW(t, "characteristics"))
					mark(st, PGC_SQL_SETTING, "SET SESSION CHARACTERISTICS");  /* default_transaction_* */
				else if (KW(t, "authorization"))
					mark(st, PGC_SQL_SESSION_AUTH | PGC_SQL_RELEASE, "SET SESSION AUTHORIZATION");
				else
					mark(st, PGC_SQL_SETTING, "SET");
			}
			break;

		case C_RESET:
			if (st->phase == 0)
			{
				st->phase = 2;
				if (KW(t, "all"))
					mark(st, PGC_SQL_SETTING | PGC_SQL_RELEASE, "RESET ALL");
				else if (KW(t, "session"))
					mark(st, PGC_SQL_SETTING | PGC_SQL_RELEASE, "RESET SESSION AUTHORIZATION");
				else
					mark(st, PGC_SQL_SETTING, "RESET");
			}
			break;

		case C_DISCARD:
			if (st->phase == 0)
			{
				st->phase = 2;
				if (KW(t, "all"))
					mark(st, PGC_SQL_RELEASE | PGC_SQL_DISCARD_ALL, "DISCARD ALL");
				else
					mark(st, PGC_SQL_RELEASE, "DISCARD");
			}
			break;

		case C_EXPLAIN:
			/* EXPLAIN [ANALYZE] [VERBOSE] stmt, EXPLAIN (options) stmt */
			if (st->depth == 0 && !KW(t, "analyze") && !KW(t, "analyse") && !KW(t, "verbose"))
			{
				start_cmd(st, q ? C_NONE : lookup_cmd(t));
				st->in_name = false;
			}
			break;

		case C_DECLARE:
			/* DECLARE name [options] CURSOR [WITH[OUT] HOLD] FOR query */
			if (st->depth != 0)
				break;
			if (KW(t, "cursor"))
				st->seen_cursor = true;
			else if (KW(t, "hold") && st->seen_cursor && KW(tok_at(st, st->prev_i), "with"))
				mark(st, PGC_SQL_HOLD_CURSOR, "DECLARE WITH HOLD");
			else if (KW(t, "for") && st->seen_cursor)
				st->expect_cmd = true;
			break;

		case C_PREPARE:
			/* PREPARE name [(types)] AS stmt; PREPARE TRANSACTION 'gid' */
			if (st->phase == 0)
			{
				st->phase = 1;
				if (KW(t, "transaction"))
					st->phase = 2;
				else
					mark(st, PGC_SQL_PREPARE, "PREPARE");
			}
			else if (st->phase == 1 && st->depth == 0 && KW(t, "as"))
			{
				st->phase = 2;
				st->expect_cmd = true;
			}
			break;

		case C_ALTER:
			if (st->nargs == 1 && KW(t, "table"))
				st->scan = true;
			break;

		case C_CREATE:
			if (st->phase == 0)
			{
				/* CREATE [OR REPLACE] [GLOBAL|LOCAL] [TEMP|TEMPORARY] [UNLOGGED] ... object */
				if (KW(t, "temp") || KW(t, "temporary"))
					st->temp_kw = true;
				else if (KW(t, "materialized"))
					st->matview = true;
				else if (KW(t, "or") || KW(t, "replace") || KW(t, "global") || KW(t, "local") ||
						 KW(t, "unlogged") || KW(t, "unique") || KW(t, "recursive") ||
						 KW(t, "trusted") || KW(t, "procedural") || KW(t, "default") ||
						 KW(t, "constraint"))
					;
				else
				{
					st->phase = 1;
					if (KW(t, "table"))
						st->obj = O_TABLE;
					else if (KW(t, "view"))
						st->obj = st->matview ? O_MATVIEW : O_VIEW;
					else if (KW(t, "sequence"))
						st->obj = O_SEQUENCE;
					else if (KW(t, "index"))
					{
						st->obj = O_INDEX;
						st->scan = true;        /* index expressions run now */
					}
					else if (KW(t, "function") || KW(t, "procedure"))
					{
						st->obj = O_ROUTINE;
						st->funcdef = true;
					}
					else
						st->obj = O_OTHER;
				}
				break;
			}
			if (st->phase == 1)
			{
				if (KW(t, "if") || KW(t, "not") || KW(t, "exists") || KW(t, "concurrently"))
					break;
				st->phase = 2;
				st->cname_i = st->cur;
				st->cname_pending = true;
				st->cname_into = false;
				break;
			}
			if (st->funcdef && st->depth == 0)
			{
				/* as psql does: BEGIN ATOMIC ... END may hold ';' */
				if (KW(t, "begin"))
					st->begin_depth++;
				else if (KW(t, "case") && st->begin_depth > 0)
					st->begin_depth++;
				else if (KW(t, "end") && st->begin_depth > 0)
					st->begin_depth--;
			}
			if (st->depth == 0 && (st->obj == O_TABLE || st->obj == O_MATVIEW) && KW(t, "as"))
				st->scan = true;        /* CREATE TABLE AS, CREATE MATERIALIZED VIEW AS */
			if (st->depth == 0 && st->obj == O_TABLE)
			{
				/* ON COMMIT DROP */
				if (KW(t, "on"))
					st->oc_state = 1;
				else if (st->oc_state == 1 && KW(t, "commit"))
					st->oc_state = 2;
				else
				{
					if (st->oc_state == 2 && KW(t, "drop"))
						st->on_commit_drop = true;
					st->oc_state = 0;
				}
			}
			break;

		default:
			break;
	}
}

/* Token number i (in the ring) of the statement. */
/*
 * Words that make a statement more than a read: a data-modifying WITH,
 * SELECT INTO, FOR UPDATE / FOR [KEY] SHARE. Anywhere in the statement,
 * so a column of that name makes it count too: that only ever costs a
 * pipelining chance (pipeline.h), never correctness.
 */
static bool
is_write_word(const token *t)
{
	switch (t->len ? lower_ascii(t->p[0]) : 0)
	{
		case 'i':
			return kw_eq(t, "insert", 6) || kw_eq(t, "into", 4);
		case 'u':
			return kw_eq(t, "update", 6);
		case 'd':
			return kw_eq(t, "delete", 6);
		case 'm':
			return kw_eq(t, "merge", 5);
		case 's':
			return kw_eq(t, "share", 5);
		default:
			return false;
	}
}

static void
feed(stmt *st, uint32_t i)
{
	const token *t = &st->ring[i % RING];

	st->cur = i;
	if (st->ntok++ == 0)
		st->start = t->p;
	st->end = t->p + t->len;

	if (st->expect_cmd && t->type != T_WORD && t->type != T_QIDENT && t->type != T_LPAREN)
	{
		/* "42;" or "PREPARE p AS 42": nothing the server would take */
		mark(st, PGC_SQL_UNKNOWN, "unrecognized statement");
		st->expect_cmd = false;
		if (st->cmd == C_NONE)
			st->cmd = C_OTHER;
	}

	if (st->cname_pending)
	{
		st->cname_pending = false;
		if (t->type == T_DOT && is_pg_temp(tok_at(st, st->cname_i)))
		{
			if (st->cname_into)
				mark(st, PGC_SQL_TEMP, "SELECT INTO TEMP");
			else
				st->in_pg_temp = true;
		}
	}

	switch (t->type)
	{
		case T_LPAREN:
			if (st->expect_cmd)
				start_cmd(st, C_SELECT);        /* (SELECT ...) */
			else if (st->scan && st->in_name &&
					 (st->prev_type == T_WORD || st->prev_type == T_QIDENT))
				check_call(st);
			if (++st->depth > st->max_depth)
				st->max_depth = st->depth;
			break;
		case T_RPAREN:
			if (--st->depth < 0)
			{
				st->error = true;
				st->depth = 0;
			}
			if (st->in_cte && st->depth < st->cte_depth)
				st->in_cte = false;
			break;
		case T_WORD:
			if (is_write_word(t))
				st->write_word = true;
			on_word(st, t);
			break;
		case T_QIDENT:
			on_word(st, t);
			break;
		case T_OP:
		case T_DCOLON:
			st->ops++;
			break;
		default:
			break;
	}
	if (t->type == T_DOT)
	{
		if (!(st->in_name && (st->prev_type == T_WORD || st->prev_type == T_QIDENT)))
			st->in_name = false;
	}
	else if (t->type != T_WORD && t->type != T_QIDENT)
		st->in_name = false;
	st->prev_i = i;
	st->prev_type = t->type;
}

/* ------------------------------------------------------ the slow path */

typedef struct cache_entry {
	uint64_t hash;
	char *text;                 /* NULL: free slot */
	size_t len;
	uint32_t flags;
	const char *kind;           /* interned in kinds[] */
} cache_entry;

/*
 * Callers keep the kind of a statement as long as they keep the statement,
 * so a kind made from a parse ("function my_func") must not change under
 * them: it is interned here, for the life of the thread.  Past KIND_SLOTS
 * distinct ones a generic kind is given instead.
 */
typedef struct parse_cache {
	cache_entry e[CACHE_SIZE];
	int nkinds;
	char kinds[KIND_SLOTS][KIND_MAX];
} parse_cache;

static _Thread_local parse_cache *tl_cache;
static _Thread_local unsigned long tl_parser_calls;

static pthread_mutex_t parser_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static bool cache_key_ok;

static void
cache_free(void *arg)
{
	parse_cache *c = arg;

	if (!c)
		return;
	for (size_t i = 0; i < CACHE_SIZE; i++)
		free(c->e[i].text);
	free(c);
}

static void
cache_key_init(void)
{
	cache_key_ok = pthread_key_create(&cache_key, cache_free) == 0;
}

static parse_cache *
get_cache(void)
{
	if (tl_cache)
		return tl_cache;
	pthread_once(&cache_key_once, cache_key_init);
	if (!cache_key_ok)
		return NULL;
	tl_cache = calloc(1, sizeof(*tl_cache));
	if (tl_cache && pthread_setspecific(cache_key, tl_cache) != 0)
	{
		free(tl_cache);
		tl_cache = NULL;
	}
	return tl_cache;
}

void
pgc_sql_thread_cleanup(void)
{
	if (!tl_cache)
		return;
	if (cache_key_ok)
		pthread_setspecific(cache_key, NULL);
	cache_free(tl_cache);
	tl_cache = NULL;
}

unsigned long
pgc_sql_parser_calls(void)
{
	return tl_parser_calls;
}

/* A cache key: 8 bytes a step (a multiply-xorshift mix; not for adversaries). */
static uint64_t
hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0x9E3779B97F4A7C15ULL ^ len;
	uint64_t w;

	for (; len >= 8; s += 8, len -= 8)
	{
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, s, len);
	h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
	return h ^ (h >> 29);
}

/*
 * Decode the JSON string at *pp (just past its opening quote) into buf,
 * truncating; leave *pp past the closing quote.  False on malformed input.
 */
static bool
json_string(const char **pp, char *buf, size_t bufsize)
{
	const char *p = *pp;
	size_t n = 0;

	for (;;)
	{
		char c = *p++;

		if (c == '\0')
			return false;
		if (c == '"')
			break;
		if (c == '\\')
		{
			c = *p++;
			switch (c)
			{
				case 'b': c = '\b'; break;
				case 'f': c = '\f'; break;
				case 'n': c = '\n'; break;
				case 'r': c = '\r'; break;
				case 't': c = '\t'; break;
				case 'u':
					for (int i = 0; i < 4; i++)
						if (*p++ == '\0')
							return false;
					c = '?';        /* a control character: in no table */
					break;
				case '\0':
					return false;
				default:
					break;          /* \" \\ \/ */
			}
		}
		if (n + 1 < bufsize)
			buf[n++] = c;
	}
	buf[n] = '\0';
	*pp = p;
	return true;
}

/* Flags for the function calls in a libpg-query JSON parse tree. */
static uint32_t
funccalls_flags(const char *json, char *kind, size_t kindsize)
{
	static const char fc[] = "\"FuncCall\":{\"funcname\":[";
	static const char str[] = "{\"String\":{\"sval\":\"";
	uint32_t flags = 0;
	const char *p = json;

	/*
	 * Inside a JSON string every '"' is escaped, so the pattern cannot
	 * match text the client wrote.
	 */
	while ((p = strstr(p, fc)) != NULL)
	{
		char part[80], first[80] = "", last[80] = "", full[KIND_MAX - 16] = "";
		int nparts = 0;
		const name_entry *e = NULL;
		uint32_t f;

		p += sizeof(fc) - 1;
		for (;;)
		{
			if (strncmp(p, str, sizeof(str) - 1) != 0)
				goto malformed;
			p += sizeof(str) - 1;
			if (!json_string(&p, part, sizeof(part)) || strncmp(p, "}}", 2) != 0)
				goto malformed;
			p += 2;
			if (nparts++ == 0)
				strcpy(first, part);
			strcpy(last, part);
			if (full[0])
				strncat(full, ".", sizeof(full) - strlen(full) - 1);
			strncat(full, part, sizeof(full) - strlen(full) - 1);
			if (*p == ',')
				p++;
			else if (*p == ']')
				break;
			else
				goto malformed;
		}
		if (nparts == 1 || (nparts == 2 && strcmp(first, "pg_catalog") == 0))
			e = lookup_name(last);
		if (e && !is_function_class(e))
			e = NULL;
		switch (e ? e->cls & SQLK_CLASS : 0)
		{
			case SQLK_SAFE:
				continue;
			case SQLK_SETTING:
				f = PGC_SQL_SETTING;
				break;
			case SQLK_ADVISORY:
				f = PGC_SQL_ADVISORY;
				break;
			case SQLK_RELEASE:
				f = PGC_SQL_RELEASE;
				break;
			case SQLK_SEQ_READ:
				flags |= PGC_SQL_SEQ_READ;
				continue;
			case SQLK_SEQ_WRITE:
				flags |= PGC_SQL_SEQ_WRITE;
				continue;
			default:
				f = PGC_SQL_UNKNOWN;
				e = NULL;
				break;
		}
		flags |= f;
		if (!kind[0])
		{
			if (e)
				snprintf(kind, kindsize, "%s", e->name);
			else
				snprintf(kind, kindsize, "function %s", full);
		}
	}
	return flags;

malformed:
	if (!kind[0])
		snprintf(kind, kindsize, "unparseable statement");
	return flags | PGC_SQL_UNKNOWN;
}

/* What libpg-query says the calls in this one statement do. */
static uint32_t
run_parser(const char *text, size_t len, char *kind, size_t kindsize)
{
	PgQueryParseResult r;
	uint32_t flags;
	char *buf = malloc(len + 1);

	kind[0] = '\0';
	if (!buf)
	{
		snprintf(kind, kindsize, "statement too large to classify");
		return PGC_SQL_UNKNOWN;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';

	/* pg_query_parse() dup2()s over fd 2 while it runs: one at a time. */
	pthread_mutex_lock(&parser_lock);
	r = pg_query_parse(buf);
	pthread_mutex_unlock(&parser_lock);
	tl_parser_calls++;

	if (r.error || !r.parse_tree)
	{
		snprintf(kind, kindsize, "unparseable statement");
		flags = PGC_SQL_UNKNOWN;
	}
	else
		flags = funccalls_flags(r.parse_tree, kind, kindsize);
	pg_query_free_parse_result(r);
	free(buf);
	return flags;
}

/* A kind made by the parser path, as a string that stays put (see parse_cache). */
static const char *
intern_kind(parse_cache *c, const char *kind)
{
	if (!c)
		return "function call";
	for (int i = 0; i < c->nkinds; i++)
		if (strcmp(c->kinds[i], kind) == 0)
			return c->kinds[i];
	if (c->nkinds == KIND_SLOTS)
		return "function call";
	snprintf(c->kinds[c->nkinds], KIND_MAX, "%s", kind);
	return c->kinds[c->nkinds++];
}

/* run_parser(), through this thread's cache of decisions by statement text. */
static uint32_t
parser_flags(const char *text, size_t len, const char **kind)
{
	uint64_t h = hash_bytes(text, len);
	parse_cache *c = get_cache();
	cache_entry *e = c ? &c->e[h & (CACHE_SIZE - 1)] : NULL;
	char buf[KIND_MAX];
	uint32_t flags;

	if (e && e->text && e->hash == h && e->len == len && memcmp(e->text, text, len) == 0)
	{
		*kind = e->kind;
		return e->flags;
	}
	flags = run_parser(text, len, buf, sizeof(buf));
	*kind = (flags & ~PGC_SQL_INFO) ? intern_kind(c, buf) : NULL;
	if (e)
	{
		char *copy = malloc(len ? len : 1);

		if (copy)
		{
			free(e->text);
			memcpy(copy, text, len);
			e->text = copy;
			e->hash = h;
			e->len = len;
			e->flags = flags;
			e->kind = *kind;
		}
	}
	return flags;
}

/* ------------------------------------------------------ entry points */

/* The statement is complete: settle what was left open. */
static void
finish_stmt(stmt *st)
{
	if (st->error || st->depth != 0)
	{
		mark(st, PGC_SQL_UNKNOWN, "unparseable statement");
		return;
	}
	if (st->write_word || (st->cmd != C_SELECT && st->cmd != C_VALUES && st->cmd != C_TABLE && st->cmd != C_WITH))
		st->flags |= PGC_SQL_WRITE;
	switch (st->cmd)
	{
		case C_SET:
			if (st->phase != 2)
				mark(st, PGC_SQL_SETTING, "SET");
			break;
		case C_RESET:
			if (st->phase != 2)
				mark(st, PGC_SQL_SETTING, "RESET");
			break;
		case C_DISCARD:
			if (st->phase != 2)
				mark(st, PGC_SQL_RELEASE, "DISCARD");
			break;
		case C_CREATE:
			{
				bool temp = st->in_pg_temp ||
					(st->temp_kw && (st->obj == O_TABLE || st->obj == O_VIEW || st->obj == O_SEQUENCE));

				/* ON COMMIT DROP: gone when the transaction ends */
				if (temp && !(st->obj == O_TABLE && st->on_commit_drop))
					mark(st, PGC_SQL_TEMP,
						 st->obj == O_TABLE ? (st->temp_kw ? "CREATE TEMP TABLE" : "CREATE TABLE pg_temp") :
						 st->obj == O_VIEW && st->temp_kw ? "CREATE TEMP VIEW" :
						 st->obj == O_SEQUENCE && st->temp_kw ? "CREATE TEMP SEQUENCE" :
						 "CREATE in pg_temp");
			}
			break;
		default:
			break;
	}
	if (st->need_parser && !(st->flags & PGC_SQL_UNKNOWN))
	{
		if (st->max_depth > MAX_PARSE_DEPTH || st->ops > MAX_PARSE_OPS)
			mark(st, PGC_SQL_UNKNOWN, "statement too complex to classify");
		else
		{
			const char *kind;

			st->flags |= parser_flags(st->start, (size_t) (st->end - st->start), &kind);
			if (!st->kind)
				st->kind = kind;
		}
	}
}

static bool dealloc_parse(const char *sql, size_t len, char *name, size_t namelen, bool *all);

uint32_t
pgc_sql_classify(const char *sql, size_t len, const char **kind)
{
	lexer lx;
	token ring[RING];
	uint32_t ti = 0;
	stmt st;
	uint32_t flags = 0;
	const char *k = NULL;
	int nstmts = 0;
	int first_cmd = C_NONE;
	bool fresh = false;         /* st is to be reset before its next token */

	lex_init(&lx, sql, len);
	stmt_reset(&st, ring);
	for (;; ti++)
	{
		token *t = &ring[ti % RING];

		lex_next(&lx, t);
		if (fresh && t->type != T_EOF && t->type != T_SEMI)
		{
			stmt_reset(&st, ring);
			fresh = false;
		}
		if (t->type == T_ERROR)
			st.error = true;
		if (t->type == T_EOF || t->type == T_ERROR ||
			(t->type == T_SEMI && st.depth == 0 && st.begin_depth == 0))
		{
			if (!fresh && (st.ntok > 0 || st.error))
			{
				if (nstmts++ == 0)
					first_cmd = st.cmd;
				finish_stmt(&st);
				flags |= st.flags;
				if (!k)
					k = st.kind;
			}
			if (t->type != T_SEMI)
				break;
			/* Reset lazily: most strings end with ';'. */
			fresh = true;
			continue;
		}
		feed(&st, ti);
	}

	if (nstmts == 1 && first_cmd == C_DEALLOCATE)
	{
		bool all;

		if (dealloc_parse(sql, len, NULL, 0, &all))
			flags |= PGC_SQL_DEALLOCATE;
	}
	if (kind)
		*kind = (flags & ~PGC_SQL_INFO) ? k : NULL;
	return flags;
}

static bool
put_utf8(char *name, size_t namelen, size_t *n, unsigned long cp)
{
	unsigned char b[4];
	size_t m;

	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return false;
	if (cp < 0x80)
	{
		b[0] = (unsigned char) cp;
		m = 1;
	}
	else if (cp < 0x800)
	{
		b[0] = (unsigned char) (0xC0 | (cp >> 6));
		b[1] = (unsigned char) (0x80 | (cp & 0x3F));
		m = 2;
	}
	else if (cp < 0x10000)
	{
		b[0] = (unsigned char) (0xE0 | (cp >> 12));
		b[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
		b[2] = (unsigned char) (0x80 | (cp & 0x3F));
		m = 3;
	}
	else
	{
		b[0] = (unsigned char) (0xF0 | (cp >> 18));
		b[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
		b[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
		b[3] = (unsigned char) (0x80 | (cp & 0x3F));
		m = 4;
	}
	if (name)
	{
		if (*n + m >= namelen)
			return false;
		memcpy(name + *n, b, m);
	}
	*n += m;
	return true;
}

static inline bool
put_byte(char *name, size_t namelen, size_t *n, char c)
{
	if (name)
	{
		if (*n + 1 >= namelen)
			return false;
		name[*n] = c;
	}
	(*n)++;
	return true;
}

static int
hexval(char c)
{
	if (is_digit((unsigned char) c))
		return c - '0';
	c = (char) (c | 0x20);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* The name an identifier token stands for; name NULL: only check it. */
static bool
ident_value(const token *t, char *name, size_t namelen)
{
	size_t n = 0;

	if (t->type == T_WORD)
	{
		for (size_t i = 0; i < t->len; i++)
			if (!put_byte(name, namelen, &n, lower_ascii(t->p[i])))
				return false;
	}
	else if (t->type == T_QIDENT && t->p[0] == '"')
	{
		const char *p = t->p + 1, *end = t->p + t->len - 1;

		for (; p < end; p++)
		{
			if (*p == '"')
				p++;            /* "" */
			if (!put_byte(name, namelen, &n, *p))
				return false;
		}
	}
	else if (t->type == T_QIDENT)
	{
		/* U&"...": \XXXX, \+XXXXXX and \\ (no UESCAPE: the caller saw no more tokens) */
		const char *p = t->p + 3, *end = t->p + t->len - 1;

		while (p < end)
		{
			if (*p == '"')
			{
				if (!put_byte(name, namelen, &n, '"'))
					return false;
				p += 2;
			}
			else if (*p == '\\')
			{
				unsigned long cp = 0;
				int nd = 4;

				if (p + 1 < end && p[1] == '\\')
				{
					if (!put_byte(name, namelen, &n, '\\'))
						return false;
					p += 2;
					continue;
				}
				p++;
				if (p < end && *p == '+')
				{
					nd = 6;
					p++;
				}
				for (int i = 0; i < nd; i++, p++)
				{
					int v = p < end ? hexval(*p) : -1;

					if (v < 0)
						return false;
					cp = cp * 16 + (unsigned long) v;
				}
				if (!put_utf8(name, namelen, &n, cp))
					return false;
			}
			else if (!put_byte(name, namelen, &n, *p++))
				return false;
		}
	}
	else
		return false;
	if (n == 0)
		return false;           /* zero-length delimited identifier */
	if (name)
		name[n] = '\0';
	return true;
}

static bool
dealloc_parse(const char *sql, size_t len, char *name, size_t namelen, bool *all)
{
	lexer lx;
	token tk[3], t;
	int n = 0, i = 1;
	char key[40];
	const name_entry *e;

	lex_init(&lx, sql, len);
	for (;;)
	{
		lex_next(&lx, &t);
		if (t.type == T_ERROR)
			return false;
		if (t.type == T_EOF || t.type == T_SEMI)
			break;
		if (n == 3)
			return false;
		tk[n++] = t;
	}
	while (t.type == T_SEMI)
		lex_next(&lx, &t);
	if (t.type != T_EOF)
		return false;

	if (n < 2 || !KW(&tk[0], "deallocate"))
		return false;
	if (n == 3 && KW(&tk[1], "prepare"))
		i = 2;
	if (i != n - 1)
		return false;

	if (KW(&tk[i], "all"))
	{
		if (name)
		{
			if (namelen < 1)
				return false;
			name[0] = '\0';
		}
		*all = true;
		return true;
	}
	/* An unquoted reserved keyword is no name. */
	if (tk[i].type == T_WORD && name_key(&tk[i], key, sizeof(key)) &&
		(e = lookup_name(key)) != NULL && (e->cls & SQLK_RESERVED))
		return false;
	if (!ident_value(&tk[i], name, namelen))
		return false;
	*all = false;
	return true;
}

bool
pgc_sql_deallocate(const char *sql, size_t len, char *name, size_t namelen, bool *all)
{
	bool a = false;

	if (!name || namelen == 0 || !all)
		return false;
	if (!dealloc_parse(sql, len, name, namelen, &a))
	{
		name[0] = '\0';
		return false;
	}
	*all = a;
	return true;
}

const char *
pgc_sql_feature_name(uint32_t flags)
{
	if (flags & PGC_SQL_TEMP)
		return "temporary tables";
	if (flags & PGC_SQL_ADVISORY)
		return "session-level advisory locks";
	if (flags & PGC_SQL_LISTEN)
		return "LISTEN";
	if (flags & PGC_SQL_HOLD_CURSOR)
		return "WITH HOLD cursors";
	if (flags & PGC_SQL_PREPARE)
		return "SQL-level PREPARE";
	if (flags & PGC_SQL_SESSION_AUTH)
		return "SET SESSION AUTHORIZATION";
	if (flags & PGC_SQL_UNKNOWN)
		return "statements pgcarrier cannot classify";
	return NULL;
}
