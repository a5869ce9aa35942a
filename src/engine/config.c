/*
 * config.c - the INI file and the auth file; see config.h.
 *
 * The parser works line by line on a private copy of each line. Every
 * error is reported as "file:line: message"; values of password= and
 * auth file secrets are never copied into a message.
 */
#include "config.h"
#include "hba.h"
#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TIME_SECONDS 1e9	/* about 31 years: keeps ms conversions sane */

/* ---------------------------------------------------------------- helpers */

int
pgc_file_error(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
{
	va_list		ap;
	int			n;

	if (err == NULL || errlen == 0)
		return -1;
	if (line > 0)
		n = snprintf(err, errlen, "%s:%d: ", file, line);
	else
		n = snprintf(err, errlen, "%s: ", file);
	if (n < 0 || (size_t) n >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

static char *
trim(char *s)
{
	char	   *end;

	while (isspace((unsigned char) *s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char) end[-1]))
		end--;
	*end = '\0';
	return s;
}

static const char *
skip_space(const char *p)
{
	while (isspace((unsigned char) *p))
		p++;
	return p;
}

/*
 * Whether a ';' or '#' at p begins a comment: it must follow whitespace
 * (base is where the text being scanned starts, so p[-1] is readable when
 * p > base). A line that starts with one is a comment line, handled before
 * this. Requiring the space keeps "RESET ALL; SET x = 1" and passwords
 * such as "ab#c" whole, while "workers = 0 ; one per core" is a comment.
 */
static bool
comment_at(const char *base, const char *p)
{
	return (*p == ';' || *p == '#') && p > base && isspace((unsigned char) p[-1]);
}

/* The first comment start in [s, end), or NULL. */
static const char *
find_comment(const char *s, const char *end)
{
	const char *p;

	for (p = s; p < end; p++)
		if (comment_at(s, p))
			return p;
	return NULL;
}

/* Make room for one more element in a growing array. */
static int
grow(void **arr, int n, size_t elsize)
{
	void	   *p;

	if (n & (n - 1))			/* not a power of two: there is room */
		return 0;
	p = realloc(*arr, (n == 0 ? 4 : (size_t) n * 2) * elsize);
	if (p == NULL)
		return -1;
	*arr = p;
	return 0;
}

/* Digits only, within [min, max]. */
static int
parse_int(const char *s, long min, long max, int *out)
{
	const char *p;
	long		v;

	if (*s == '\0')
		return -1;
	for (p = s; *p; p++)
		if (!isdigit((unsigned char) *p))
			return -1;
	errno = 0;
	v = strtol(s, NULL, 10);
	if (errno != 0 || v < min || v > max)
		return -1;
	*out = (int) v;
	return 0;
}

/* "1.5", "500ms", "2s", "3 min", "1h"; no unit means seconds. */
static int
parse_time(const char *s, double *out)
{
	const char *p = s;
	double		v = 0,
				scale = 0.1,
				mult;
	int			ndigits = 0;

	for (; isdigit((unsigned char) *p); p++, ndigits++)
		v = v * 10 + (*p - '0');
	if (*p == '.')
		for (p++; isdigit((unsigned char) *p); p++, ndigits++, scale /= 10)
			v += (*p - '0') * scale;
	if (ndigits == 0)
		return -1;
	p = skip_space(p);
	if (*p == '\0' || strcmp(p, "s") == 0)
		mult = 1;
	else if (strcmp(p, "ms") == 0)
		mult = 0.001;
	else if (strcmp(p, "min") == 0)
		mult = 60;
	else if (strcmp(p, "h") == 0)
		mult = 3600;
	else
		return -1;
	v *= mult;
	if (!(v <= MAX_TIME_SECONDS))
		return -1;
	*out = v;
	return 0;
}

static int
parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"1", "on", "true", "yes"};
	static const char *const no[] = {"0", "off", "false", "no"};
	size_t		i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
	{
		if (strcasecmp(s, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

static int
parse_pool_mode(const char *s, int *out)
{
	int			m;

	for (m = PGC_POOL_SESSION; m <= PGC_POOL_STATEMENT; m++)
		if (strcasecmp(s, pgc_pool_mode_name(m)) == 0)
			return *out = m, 0;
	return -1;
}

char *
pgc_read_file(const char *path, size_t *lenp)
{
	FILE	   *f = fopen(path, "r");
	char	   *buf = NULL,
			   *p;
	size_t		len = 0,
				cap = 0,
				n;
	int			saved;

	if (f == NULL)
		return NULL;
	for (;;)
	{
		if (cap - len < 4096)
		{
			cap = cap ? cap * 2 : 8192;
			if ((p = realloc(buf, cap)) == NULL)
				break;
			buf = p;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
		{
			if (ferror(f))
				break;
			fclose(f);
			buf[len] = '\0';
			*lenp = len;
			return buf;
		}
	}
	saved = errno ? errno : EIO;
	free(buf);
	fclose(f);
	errno = saved;
	return NULL;
}

/* ------------------------------------------------------------- [pgcarrier] */

typedef enum key_kind
{
	K_STR, K_INT, K_TIME, K_BOOL, K_MODE, K_AUTH, K_PINNING, K_SSLMODE
} key_kind;

typedef struct key_def
{
	const char *name;
	key_kind	kind;
	size_t		off;
	long		min, max;
} key_def;

#define KSTR(f)			{#f, K_STR, offsetof(pgc_config, f), 0, 0}
#define KINT(f, lo, hi)	{#f, K_INT, offsetof(pgc_config, f), lo, hi}
#define KTIME(f)		{#f, K_TIME, offsetof(pgc_config, f), 0, 0}
#define KBOOL(f)		{#f, K_BOOL, offsetof(pgc_config, f), 0, 0}

static const key_def main_keys[] = {
	KSTR(listen_addr),
	KINT(listen_port, 1, 65535),
	KSTR(unix_socket_dir),
	KINT(workers, 0, 256),
	{"pool_mode", K_MODE, offsetof(pgc_config, pool_mode), 0, 0},
	KINT(default_pool_size, 0, INT_MAX),
	KINT(min_pool_size, 0, INT_MAX),
	KINT(reserve_pool_size, 0, INT_MAX),
	KTIME(reserve_pool_timeout),
	KINT(max_client_conn, 0, INT_MAX),
	KINT(max_db_connections, 0, INT_MAX),
	KINT(max_user_connections, 0, INT_MAX),
	KTIME(server_lifetime),
	KTIME(server_idle_timeout),
	KTIME(server_connect_timeout),
	KTIME(server_login_retry),
	KTIME(client_idle_timeout),
	KTIME(client_login_timeout),
	KTIME(query_wait_timeout),
	KTIME(idle_transaction_timeout),
	KSTR(server_reset_query),
	{"auth_type", K_AUTH, offsetof(pgc_config, auth_type), 0, 0},
	KSTR(auth_file),
	KSTR(auth_hba_file),
	KSTR(logfile),
	KSTR(pidfile),
	KSTR(admin_users),
	KINT(max_packet_size, 1, 1073741823),
	KBOOL(log_connections),
	KBOOL(log_disconnections),
	KBOOL(log_pooler_errors),
	KBOOL(verbose),
	KBOOL(session_guard),
	KBOOL(server_session_report),
	KINT(max_prepared_statements, 1, 100000),
	{"session_pinning", K_PINNING, offsetof(pgc_config, session_pinning), 0, 0},
	KSTR(auth_query),
	KSTR(auth_user),
	KTIME(auth_query_cache_lifetime),
	{"client_tls_sslmode", K_SSLMODE, offsetof(pgc_config, client_tls_sslmode), 0, 0},
	KSTR(client_tls_cert_file),
	KSTR(client_tls_key_file),
	KSTR(client_tls_ca_file),
	KSTR(client_tls_protocols),
	KSTR(client_tls_ciphers),
	{"server_tls_sslmode", K_SSLMODE, offsetof(pgc_config, server_tls_sslmode), 0, 0},
	KSTR(server_tls_cert_file),
	KSTR(server_tls_key_file),
	KSTR(server_tls_ca_file),
	KSTR(server_tls_protocols),
	KSTR(server_tls_ciphers),
	KSTR(user),
	KINT(max_login_clients, 0, INT_MAX),
	KINT(max_login_clients_per_addr, 0, INT_MAX),
};

#define N_MAIN_KEYS ((int) (sizeof(main_keys) / sizeof(main_keys[0])))

/* State of one INI parse. */
typedef struct ini_state
{
	pgc_config *cfg;
	const char *file;
	int			line;
	char	   *err;
	size_t		errlen;
	int			seen[N_MAIN_KEYS];	/* line where each key was set, 0 = not yet */
} ini_state;

static int
find_main_key(const char *key)
{
	int			i;

	for (i = 0; i < N_MAIN_KEYS; i++)
		if (strcasecmp(key, main_keys[i].name) == 0)
			return i;
	return -1;
}

/*
 * A [pgcarrier] value that is one quoted string, starting at the quote q
 * points to: the quotes go, a doubled quote inside stands for one, and
 * only whitespace and a comment may follow. Unquoted in place.
 */
static int
ini_quoted_value(ini_state *st, const char *key, char *q, char **out)
{
	char		quote = *q,
			   *p,
			   *o = q;
	const char *rest;

	for (p = q + 1;; p++)
	{
		if (*p == '\0')
			return pgc_file_error(st->err, st->errlen, st->file, st->line,
						"unterminated quoted value for %s", key);
		if (*p == quote && p[1] == quote)
			p++;
		else if (*p == quote)
			break;
		*o++ = *p;
	}
	/* o is behind p, so this never touches what follows the closing quote */
	*o = '\0';
	rest = skip_space(p + 1);
	if (*rest != '\0' && !comment_at(p + 1, rest))
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"unexpected text after the quoted value for %s "
					"(a comment needs whitespace before its ';' or '#')", key);
	*out = q;
	return 0;
}

/*
 * The value of a [pgcarrier] line, from the text after '=': without the
 * trailing comment and surrounding whitespace, and without its quotes if
 * it is one quoted string. In an unquoted value (SQL such as auth_query),
 * quotes are kept but what they enclose is never a comment, and a quote
 * left open is an error: otherwise a comment after it would silently
 * become part of the value.
 */
static int
ini_value(ini_state *st, const char *key, char *text, char **out)
{
	char	   *v = (char *) skip_space(text),
			   *p;
	char		quote = 0;

	if (*v == '\'' || *v == '"')
		return ini_quoted_value(st, key, v, out);
	for (p = v; *p; p++)
	{
		if (quote)
			quote = *p == quote ? 0 : quote;
		else if (*p == '\'' || *p == '"')
			quote = *p;
		else if (comment_at(text, p))
			break;
	}
	if (quote)
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"unterminated %c quote in the value for %s (to keep it as it is, "
					"put the whole value in %s quotes)",
					quote, key, quote == '\'' ? "double" : "single");
	*p = '\0';
	*out = trim(v);
	return 0;
}

/* key = text (the raw text after '=', see ini_value) of a [pgcarrier] line */
static int
set_main_key(ini_state *st, const char *key, char *text)
{
	const key_def *k;
	char	   *base = (char *) st->cfg,
			   *val = NULL;
	int			i = find_main_key(key);

	if (i < 0)
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"unknown key \"%s\" in [pgcarrier]", key);
	k = &main_keys[i];
	if (st->seen[i])
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"duplicate key \"%s\" (already set on line %d)", k->name, st->seen[i]);
	st->seen[i] = st->line;
	if (ini_value(st, k->name, text, &val) < 0)
		return -1;

	switch (k->kind)
	{
		case K_STR:
			{
				char	  **field = (char **) (base + k->off);
				char	   *copy = NULL;

				/* Empty means "none"; server_reset_query keeps "" (= no reset). */
				if (*val != '\0' || k->off == offsetof(pgc_config, server_reset_query))
					if ((copy = strdup(val)) == NULL)
						return pgc_file_error(st->err, st->errlen, st->file, st->line, "out of memory");
				free(*field);
				*field = copy;
				return 0;
			}
		case K_INT:
			if (parse_int(val, k->min, k->max, (int *) (base + k->off)) < 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected an integer from %ld to %ld",
							val, k->name, k->min, k->max);
			return 0;
		case K_TIME:
			if (parse_time(val, (double *) (base + k->off)) < 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected a non-negative time "
							"with an optional unit ms, s, min or h", val, k->name);
			return 0;
		case K_BOOL:
			if (parse_bool(val, (int *) (base + k->off)) < 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected a boolean "
							"(on/off, true/false, yes/no, 1/0)", val, k->name);
			return 0;
		case K_MODE:
			if (parse_pool_mode(val, (int *) (base + k->off)) < 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected session, transaction or statement",
							val, k->name);
			return 0;
		case K_PINNING:
			if (strcasecmp(val, "pin") == 0)
				*(int *) (base + k->off) = PGC_PIN_ALLOW;
			else if (strcasecmp(val, "error") == 0)
				*(int *) (base + k->off) = PGC_PIN_ERROR;
			else
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected pin or error", val, k->name);
			return 0;
		case K_AUTH:
			if (strcasecmp(val, "trust") == 0)
				*(int *) (base + k->off) = PGC_AUTH_TRUST;
			else if (strcasecmp(val, "password") == 0 || strcasecmp(val, "plain") == 0)
				*(int *) (base + k->off) = PGC_AUTH_PASSWORD;
			else if (strcasecmp(val, "md5") == 0)
				*(int *) (base + k->off) = PGC_AUTH_MD5;
			else if (strcasecmp(val, "scram-sha-256") == 0)
				*(int *) (base + k->off) = PGC_AUTH_SCRAM;
			else if (strcasecmp(val, "hba") == 0)
				*(int *) (base + k->off) = PGC_AUTH_HBA;
			else if (strcasecmp(val, "cert") == 0)
				*(int *) (base + k->off) = PGC_AUTH_CERT;
			else
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for auth_type: expected trust, password, md5, "
							"scram-sha-256, cert or hba", val);
			return 0;
		case K_SSLMODE:
			if ((*(int *) (base + k->off) = pgc_sslmode_parse(val)) < 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected disable, allow, prefer, require, "
							"verify-ca or verify-full", val, k->name);
			return 0;
	}
	return 0;
}

/* -------------------------------------------------- connection strings */

/*
 * Next key=value pair of a libpq-style string. Values may be single-quoted,
 * with \' and \\ (any \x) escapes inside the quotes. A ';' or '#' after
 * whitespace, where a key or a value would start, begins a comment that
 * ends the string; inside a quoted value, or within a word ("ab#c"), it is
 * an ordinary character, as libpq reads it. Returns 1 with *key and *val
 * malloc'd, 0 at the end, -1 on error with *why set (and *key set if it
 * was read).
 */
static int
next_pair(const char **pp, char **key, char **val, const char **why)
{
	const char *p = skip_space(*pp),
			   *start;
	char	   *out;

	*key = *val = NULL;
	if (*p == '\0' || comment_at(*pp, p))
		return 0;
	for (start = p; *p && *p != '=' && !isspace((unsigned char) *p); p++)
		;
	if (p == start)
		return *why = "missing key before '='", -1;
	if ((*key = strndup(start, p - start)) == NULL)
		return *why = "out of memory", -1;
	p = skip_space(p);
	if (*p != '=')
		return *why = "missing '='", -1;
	start = p + 1;
	p = skip_space(start);

	if (comment_at(start, p))
	{
		/* "key= ; comment": an empty value, and the rest is a comment */
		if ((*val = strdup("")) == NULL)
			return *why = "out of memory", -1;
		*pp = p + strlen(p);
		return 1;
	}
	if (*p == '\'')
	{
		if ((out = *val = malloc(strlen(p))) == NULL)
			return *why = "out of memory", -1;
		for (p++; *p && *p != '\''; p++)
		{
			if (*p == '\\' && p[1])
				p++;
			*out++ = *p;
		}
		*out = '\0';
		if (*p != '\'')
			return *why = "unterminated quote", -1;
		p++;
		if (*p && !isspace((unsigned char) *p))
			return *why = "unexpected text after the closing quote", -1;
	}
	else
	{
		for (start = p; *p && !isspace((unsigned char) *p); p++)
			;
		if ((*val = strndup(start, p - start)) == NULL)
			return *why = "out of memory", -1;
	}
	*pp = p;
	return 1;
}

static const char *const db_keys[] = {
	"host", "port", "dbname", "user", "password", "pool_size",
	"min_pool_size", "reserve_pool", "max_db_connections", "pool_mode"
};
static const char *const user_keys[] = {"pool_mode", "max_user_connections"};

/* Copy of val, or NULL for "" (= not set). -1 if out of memory. */
static int
set_str(char **field, const char *val)
{
	free(*field);
	*field = NULL;
	return (*val && (*field = strdup(val)) == NULL) ? -1 : 0;
}

/*
 * Store one known key=value of a [databases] (db != NULL) or [users] line.
 * On a bad value returns -1 with *expected saying what was wanted; on
 * running out of memory, -1 with *expected NULL.
 */
static int
apply_pair(pgc_database *db, pgc_user *u, const char *key, const char *val,
		   char *expected, size_t explen)
{
	int		   *ifield;
	long		max = INT_MAX,
				min = 0;

	expected[0] = '\0';
	if (strcmp(key, "host") == 0)
		return set_str(&db->host, val);
	if (strcmp(key, "dbname") == 0)
		return set_str(&db->dbname, val);
	if (strcmp(key, "user") == 0)
		return set_str(&db->user, val);
	if (strcmp(key, "password") == 0)
		return set_str(&db->password, val);
	if (strcmp(key, "pool_mode") == 0)
	{
		snprintf(expected, explen, "session, transaction or statement");
		return parse_pool_mode(val, db ? &db->pool_mode : &u->pool_mode);
	}

	if (strcmp(key, "port") == 0)
		ifield = &db->port, min = 1, max = 65535;
	else if (strcmp(key, "pool_size") == 0)
		ifield = &db->pool_size;
	else if (strcmp(key, "min_pool_size") == 0)
		ifield = &db->min_pool_size;
	else if (strcmp(key, "reserve_pool") == 0)
		ifield = &db->reserve_pool;
	else if (strcmp(key, "max_db_connections") == 0)
		ifield = &db->max_db_connections;
	else
		ifield = &u->max_user_connections;
	snprintf(expected, explen, "an integer from %ld to %ld", min, max);
	return parse_int(val, min, max, ifield);
}

/*
 * Parse the connection string of a [databases] or [users] line. Once a
 * password= pair has been read, nothing more of the line is quoted in a
 * message: an unquoted password with a space would spill into later words.
 */
static int
parse_conn_string(ini_state *st, const char *what, pgc_database *db, pgc_user *u,
				  const char *text)
{
	const char *const *keys = db ? db_keys : user_keys;
	int			nkeys = db ? (int) (sizeof(db_keys) / sizeof(db_keys[0]))
		: (int) (sizeof(user_keys) / sizeof(user_keys[0]));
	const char *p = text,
			   *why = NULL;
	char	   *key,
			   *val;
	unsigned	seen = 0;
	int			quiet = 0,
				r,
				i;

	while ((r = next_pair(&p, &key, &val, &why)) == 1)
	{
		char		expected[64];

		for (i = 0; i < nkeys && strcmp(key, keys[i]) != 0; i++)
			;
		if (i == nkeys && quiet)
			r = pgc_file_error(st->err, st->errlen, st->file, st->line,
					 "%s: unknown key after password=... (not shown)", what);
		else if (i == nkeys)
			r = pgc_file_error(st->err, st->errlen, st->file, st->line,
					 "%s: unknown key \"%s\"", what, key);
		else if (seen & (1u << i))
			r = pgc_file_error(st->err, st->errlen, st->file, st->line,
					 "%s: duplicate key \"%s\"", what, key);
		else if (apply_pair(db, u, key, val, expected, sizeof(expected)) == 0)
			r = 0;
		else if (expected[0] == '\0')
			r = pgc_file_error(st->err, st->errlen, st->file, st->line, "out of memory");
		else if (quiet)
			r = pgc_file_error(st->err, st->errlen, st->file, st->line,
					 "%s: invalid value for %s after password=... (not shown): expected %s",
					 what, key, expected);
		else
			r = pgc_file_error(st->err, st->errlen, st->file, st->line,
					 "%s: invalid value \"%s\" for %s: expected %s",
					 what, val, key, expected);
		if (i < nkeys)
		{
			seen |= 1u << i;
			quiet |= strcmp(keys[i], "password") == 0;
		}
		free(key);
		free(val);
		if (r < 0)
			return -1;
	}
	if (r < 0)
	{
		if (key && strcmp(key, "password") == 0)
			pgc_file_error(st->err, st->errlen, st->file, st->line,
				 "%s: password=... is malformed: %s", what, why);
		else if (quiet)
			pgc_file_error(st->err, st->errlen, st->file, st->line,
				 "%s: malformed connection string after password=...: %s", what, why);
		else if (key)
			pgc_file_error(st->err, st->errlen, st->file, st->line,
				 "%s: malformed connection string at \"%s\": %s", what, key, why);
		else
			pgc_file_error(st->err, st->errlen, st->file, st->line,
				 "%s: malformed connection string: %s", what, why);
		free(key);
		free(val);
		return -1;
	}
	return 0;
}

static int
add_database(ini_state *st, const char *name, const char *val)
{
	pgc_config *cfg = st->cfg;
	pgc_database *db;
	char		what[300];
	int			i;

	for (i = 0; i < cfg->n_databases; i++)
		if (strcmp(cfg->databases[i].name, name) == 0)
			return pgc_file_error(st->err, st->errlen, st->file, st->line,
						"duplicate database \"%s\" (already defined on line %d)",
						name, cfg->databases[i].line);
	if (grow((void **) &cfg->databases, cfg->n_databases, sizeof(*db)) < 0)
		return pgc_file_error(st->err, st->errlen, st->file, st->line, "out of memory");
	db = &cfg->databases[cfg->n_databases];
	memset(db, 0, sizeof(*db));
	if ((db->name = strdup(name)) == NULL)
		return pgc_file_error(st->err, st->errlen, st->file, st->line, "out of memory");
	cfg->n_databases++;
	db->port = 5432;
	db->pool_size = db->min_pool_size = db->reserve_pool = -1;
	db->max_db_connections = db->pool_mode = -1;
	db->line = st->line;
	snprintf(what, sizeof(what), "database \"%.250s\"", name);
	return parse_conn_string(st, what, db, NULL, val);
}

static int
add_user(ini_state *st, const char *name, const char *val)
{
	pgc_config *cfg = st->cfg;
	pgc_user   *u;
	char		what[300];
	int			i;

	for (i = 0; i < cfg->n_users; i++)
		if (strcmp(cfg->users[i].name, name) == 0)
			return pgc_file_error(st->err, st->errlen, st->file, st->line,
						"duplicate user \"%s\" (already defined on line %d)",
						name, cfg->users[i].line);
	if (grow((void **) &cfg->users, cfg->n_users, sizeof(*u)) < 0)
		return pgc_file_error(st->err, st->errlen, st->file, st->line, "out of memory");
	u = &cfg->users[cfg->n_users];
	memset(u, 0, sizeof(*u));
	if ((u->name = strdup(name)) == NULL)
		return pgc_file_error(st->err, st->errlen, st->file, st->line, "out of memory");
	cfg->n_users++;
	u->pool_mode = u->max_user_connections = -1;
	u->line = st->line;
	snprintf(what, sizeof(what), "user \"%.250s\"", name);
	return parse_conn_string(st, what, NULL, u, val);
}

/* ------------------------------------------------------------- INI file */

enum section
{
	SEC_NONE, SEC_MAIN, SEC_DATABASES, SEC_USERS
};

/* "[name]", optionally followed by a comment. */
static int
parse_section_header(ini_state *st, char *s, enum section *sec)
{
	char	   *close = strchr(s, ']'),
			   *name;
	const char *rest;

	if (close == NULL)
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"malformed section header (missing ']')");
	rest = skip_space(close + 1);
	if (*rest != '\0' && !comment_at(close + 1, rest))
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"unexpected text after the section header");
	*close = '\0';
	name = trim(s + 1);
	if (strcasecmp(name, "pgcarrier") == 0)
		*sec = SEC_MAIN;
	else if (strcasecmp(name, "databases") == 0)
		*sec = SEC_DATABASES;
	else if (strcasecmp(name, "users") == 0)
		*sec = SEC_USERS;
	else
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"unknown section [%s]", name);
	return 0;
}

static int
parse_line(ini_state *st, char *line, enum section *sec)
{
	char	   *s = trim(line),
			   *eq,
			   *key;

	if (*s == '\0' || *s == ';' || *s == '#')
		return 0;
	if (*s == '[')
		return parse_section_header(st, s, sec);
	/* an '=' inside a comment does not count: "listen_port ; = 5" has none */
	if ((eq = strchr(s, '=')) == NULL || find_comment(s, eq) != NULL)
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"expected \"key = value\"");
	*eq = '\0';
	key = trim(s);
	if (*key == '\0')
		return pgc_file_error(st->err, st->errlen, st->file, st->line, "missing key before '='");

	/*
	 * The value keeps the whitespace after '=' so that a comment right
	 * there ("logfile = ; none") is seen as one.
	 */
	switch (*sec)
	{
		case SEC_NONE:
			return pgc_file_error(st->err, st->errlen, st->file, st->line,
						"key \"%s\" is outside any section", key);
		case SEC_MAIN:
			return set_main_key(st, key, eq + 1);
		case SEC_DATABASES:
			return add_database(st, key, eq + 1);
		case SEC_USERS:
			return add_user(st, key, eq + 1);
	}
	return 0;
}

static pgc_config *
config_new(void)
{
	pgc_config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	cfg->listen_addr = strdup("127.0.0.1");
	cfg->listen_port = 6432;
	cfg->unix_socket_dir = strdup("/tmp");
	cfg->workers = 0;
	cfg->pool_mode = PGC_POOL_TRANSACTION;
	cfg->default_pool_size = 20;
	cfg->min_pool_size = 0;
	cfg->reserve_pool_size = 0;
	cfg->reserve_pool_timeout = 5;
	cfg->max_client_conn = 100;
	cfg->max_db_connections = 0;
	cfg->max_user_connections = 0;
	cfg->server_lifetime = 3600;
	cfg->server_idle_timeout = 600;
	cfg->server_connect_timeout = 15;
	cfg->server_login_retry = 15;
	cfg->client_idle_timeout = 0;
	cfg->client_login_timeout = 60;
	cfg->query_wait_timeout = 120;
	cfg->idle_transaction_timeout = 0;
	cfg->server_reset_query = strdup("DISCARD ALL");
	cfg->auth_type = PGC_AUTH_TRUST;
	cfg->max_packet_size = 1073741823;
	cfg->log_connections = 1;
	cfg->log_disconnections = 1;
	cfg->log_pooler_errors = 1;
	cfg->verbose = 0;
	cfg->session_guard = 1;
	cfg->server_session_report = 0;
	cfg->max_prepared_statements = 200;
	cfg->session_pinning = PGC_PIN_ALLOW;
	cfg->auth_query = strdup("SELECT usename, passwd FROM pg_shadow WHERE usename=$1");
	cfg->auth_query_cache_lifetime = 15;
	cfg->max_login_clients = 1000;
	cfg->max_login_clients_per_addr = 200;
	if (!cfg->listen_addr || !cfg->unix_socket_dir || !cfg->server_reset_query || !cfg->auth_query)
	{
		pgc_config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Read cfg->auth_file, relative to dir (NULL: the current directory). */
static int
load_auth_file(ini_state *st, const char *dir, int auth_line)
{
	const char *af = st->cfg->auth_file;
	char	   *path,
			   *text;
	size_t		len;
	int			ret;

	if (af[0] != '/' && dir != NULL)
	{
		if ((path = malloc(strlen(dir) + strlen(af) + 2)) == NULL)
			return pgc_file_error(st->err, st->errlen, st->file, auth_line, "out of memory");
		sprintf(path, "%s/%s", dir, af);
	}
	else if ((path = strdup(af)) == NULL)
		return pgc_file_error(st->err, st->errlen, st->file, auth_line, "out of memory");

	if ((text = pgc_read_file(path, &len)) == NULL)
		ret = pgc_file_error(st->err, st->errlen, st->file, auth_line,
				   "cannot read auth_file \"%s\": %s", path, strerror(errno));
	else if (strlen(text) != len)
		ret = pgc_file_error(st->err, st->errlen, path, 0, "file contains a NUL byte");
	else
		ret = pgc_config_parse_auth(st->cfg, text, path, st->err, st->errlen);
	free(text);
	free(path);
	return ret;
}

/* Load auth_hba_file (relative to dir), required with auth_type = hba. */
static int
load_hba_file(ini_state *st, const char *dir)
{
	const char *hf = st->cfg->auth_hba_file;
	char	   *path;

	if (hf == NULL)
		return pgc_file_error(st->err, st->errlen, st->file, st->seen[find_main_key("auth_type")],
					"auth_type = hba needs auth_hba_file");
	if (hf[0] != '/' && dir != NULL)
	{
		if ((path = malloc(strlen(dir) + strlen(hf) + 2)) == NULL)
			return pgc_file_error(st->err, st->errlen, st->file, 0, "out of memory");
		sprintf(path, "%s/%s", dir, hf);
	}
	else if ((path = strdup(hf)) == NULL)
		return pgc_file_error(st->err, st->errlen, st->file, 0, "out of memory");
	/* pgc_hba_load's own messages already say FILE:LINE. */
	st->cfg->hba = pgc_hba_load(path, st->err, st->errlen);
	free(path);
	return st->cfg->hba ? 0 : -1;
}

/* dir: where a relative auth_file lives, NULL for the current directory. */
static pgc_config *
parse_ini(const char *text, const char *name, const char *dir, char *err, size_t errlen)
{
	ini_state	st;
	enum section sec = SEC_NONE;
	const char *p = text,
			   *nl;

	memset(&st, 0, sizeof(st));
	st.file = name;
	st.err = err;
	st.errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	if ((st.cfg = config_new()) == NULL || (st.cfg->path = strdup(name)) == NULL)
	{
		pgc_config_free(st.cfg);
		pgc_file_error(err, errlen, name, 0, "out of memory");
		return NULL;
	}

	while (*p)
	{
		char	   *line;
		int			r;

		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		st.line++;
		if ((line = strndup(p, nl - p)) == NULL)
			r = pgc_file_error(err, errlen, name, st.line, "out of memory");
		else
			r = parse_line(&st, line, &sec);
		free(line);
		if (r < 0)
			goto error;
		p = *nl ? nl + 1 : nl;
	}

	if (st.cfg->auth_file &&
		load_auth_file(&st, dir, st.seen[find_main_key("auth_file")]) < 0)
		goto error;
	if (st.cfg->auth_type == PGC_AUTH_HBA && load_hba_file(&st, dir) < 0)
		goto error;
	{
		char why[512];

		if (pgc_tls_config_prepare(st.cfg, dir, why, sizeof(why)) < 0)
		{
			pgc_file_error(err, errlen, name, 0, "%s", why);
			goto error;
		}
	}
	if (st.cfg->auth_type == PGC_AUTH_CERT && (st.cfg->tls_client == NULL || st.cfg->client_tls_ca_file == NULL))
	{
		pgc_file_error(err, errlen, name, st.seen[find_main_key("auth_type")],
					   "auth_type = cert needs TLS with clients: client_tls_sslmode, client_tls_cert_file, "
					   "client_tls_key_file and client_tls_ca_file");
		goto error;
	}
	return st.cfg;

error:
	pgc_config_free(st.cfg);
	return NULL;
}

/* ------------------------------------------------------------- public API */

pgc_config *
pgc_config_parse(const char *text, const char *name, char *err, size_t errlen)
{
	return parse_ini(text, name, NULL, err, errlen);
}

pgc_config *
pgc_config_load(const char *path, char *err, size_t errlen)
{
	pgc_config *cfg = NULL;
	const char *slash = strrchr(path, '/');
	char	   *dir = NULL,
			   *text;
	size_t		len;

	if ((text = pgc_read_file(path, &len)) == NULL)
	{
		pgc_file_error(err, errlen, path, 0, "cannot read: %s", strerror(errno));
		return NULL;
	}
	if (strlen(text) != len)
		pgc_file_error(err, errlen, path, 0, "file contains a NUL byte");
	else if (slash && (dir = strndup(path, slash == path ? 1 : slash - path)) == NULL)
		pgc_file_error(err, errlen, path, 0, "out of memory");
	else
		cfg = parse_ini(text, path, dir, err, errlen);
	free(dir);
	free(text);
	return cfg;
}

/*
 * Read one "..." field of the auth file ("" inside stands for one quote)
 * into *out and move *pp past it. 0 ok, -1 no opening quote, -2 no closing
 * quote, -3 out of memory.
 */
static int
auth_field(const char **pp, char **out)
{
	const char *p = *pp;
	char	   *o;

	if (*p != '"')
		return -1;
	if ((*out = o = malloc(strlen(p))) == NULL)
		return -3;
	for (p++; *p && (*p != '"' || p[1] == '"'); p++)
	{
		if (*p == '"')
			p++;				/* "" -> " */
		*o++ = *p;
	}
	*o = '\0';
	if (*p != '"')
	{
		free(*out);
		*out = NULL;
		return -2;
	}
	*pp = p + 1;
	return 0;
}

/* One non-comment line: "user" "secret". NULL, or what is wrong. */
static const char *
auth_line(const char *p, char **user, char **secret)
{
	static const char *const user_err[] = {
		"expected a double-quoted user name", "unterminated user name", "out of memory"
	};
	static const char *const secret_err[] = {
		"expected a double-quoted secret after the user name", "unterminated secret", "out of memory"
	};
	int			r;

	*user = *secret = NULL;
	if ((r = auth_field(&p, user)) < 0)
		return user_err[-r - 1];
	if (**user == '\0')
		return "empty user name";
	p = skip_space(p);
	if ((r = auth_field(&p, secret)) < 0)
		return secret_err[-r - 1];
	if (*skip_space(p) != '\0')
		return "unexpected text after the secret";
	return NULL;
}

static void
free_auth(pgc_auth_entry *arr, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		free(arr[i].user);
		free(arr[i].secret);
	}
	free(arr);
}

int
pgc_config_parse_auth(pgc_config *cfg, const char *text, const char *name, char *err, size_t errlen)
{
	pgc_auth_entry *arr = NULL;
	int			n = 0,
				lineno = 0,
				i;
	const char *p = text;

	while (*p)
	{
		const char *nl = strchr(p, '\n'),
				   *why = NULL;
		char	   *line,
				   *s,
				   *user = NULL,
				   *secret = NULL;

		if (nl == NULL)
			nl = p + strlen(p);
		lineno++;
		line = strndup(p, nl - p);
		p = *nl ? nl + 1 : nl;
		if (line == NULL)
			why = "out of memory";
		else if (*(s = trim(line)) == '\0' || *s == ';' || *s == '#')
		{
			free(line);
			continue;
		}
		else
			why = auth_line(s, &user, &secret);
		free(line);
		for (i = 0; why == NULL && i < n; i++)
			if (strcmp(arr[i].user, user) == 0)
				why = "duplicate user";
		if (why == NULL && grow((void **) &arr, n, sizeof(*arr)) < 0)
			why = "out of memory";
		if (why)
		{
			if (strcmp(why, "duplicate user") == 0)
				pgc_file_error(err, errlen, name, lineno, "duplicate user \"%s\"", user);
			else
				pgc_file_error(err, errlen, name, lineno, "%s", why);
			free(user);
			free(secret);
			free_auth(arr, n);
			return -1;
		}
		arr[n].user = user;
		arr[n].secret = secret;
		n++;
	}

	free_auth(cfg->auth, cfg->n_auth);
	cfg->auth = arr;
	cfg->n_auth = n;
	return 0;
}

void
pgc_config_free(pgc_config *cfg)
{
	int			i;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->listen_addr);
	free(cfg->unix_socket_dir);
	free(cfg->server_reset_query);
	free(cfg->auth_file);
	free(cfg->auth_hba_file);
	pgc_hba_free(cfg->hba);
	pgc_tls_config_release(cfg);
	free(cfg->auth_query);
	free(cfg->auth_user);
	free(cfg->client_tls_cert_file);
	free(cfg->client_tls_key_file);
	free(cfg->client_tls_ca_file);
	free(cfg->client_tls_protocols);
	free(cfg->client_tls_ciphers);
	free(cfg->server_tls_cert_file);
	free(cfg->server_tls_key_file);
	free(cfg->server_tls_ca_file);
	free(cfg->server_tls_protocols);
	free(cfg->server_tls_ciphers);
	free(cfg->logfile);
	free(cfg->pidfile);
	free(cfg->admin_users);
	free(cfg->user);
	for (i = 0; i < cfg->n_databases; i++)
	{
		pgc_database *db = &cfg->databases[i];

		free(db->name);
		free(db->host);
		free(db->dbname);
		free(db->user);
		free(db->password);
	}
	free(cfg->databases);
	for (i = 0; i < cfg->n_users; i++)
		free(cfg->users[i].name);
	free(cfg->users);
	free_auth(cfg->auth, cfg->n_auth);
	free(cfg);
}

const pgc_database *
pgc_config_find_db(const pgc_config *cfg, const char *name)
{
	const pgc_database *fallback = NULL;
	int			i;

	for (i = 0; i < cfg->n_databases; i++)
	{
		if (strcmp(cfg->databases[i].name, name) == 0)
			return &cfg->databases[i];
		if (strcmp(cfg->databases[i].name, "*") == 0)
			fallback = &cfg->databases[i];
	}
	return fallback;
}

const pgc_user *
pgc_config_find_user(const pgc_config *cfg, const char *name)
{
	int			i;

	for (i = 0; i < cfg->n_users; i++)
		if (strcmp(cfg->users[i].name, name) == 0)
			return &cfg->users[i];
	return NULL;
}

const char *
pgc_config_find_secret(const pgc_config *cfg, const char *user)
{
	int			i;

	for (i = 0; i < cfg->n_auth; i++)
		if (strcmp(cfg->auth[i].user, user) == 0)
			return cfg->auth[i].secret;
	return NULL;
}

const char *
pgc_pool_mode_name(int mode)
{
	switch (mode)
	{
		case PGC_POOL_SESSION:
			return "session";
		case PGC_POOL_TRANSACTION:
			return "transaction";
		case PGC_POOL_STATEMENT:
			return "statement";
	}
	return "unknown";
}
