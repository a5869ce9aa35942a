/*
 * config.c - the INI file and the auth file; see config.h.
 *
 * The parser works line by line on a private copy of each line. Every
 * error is reported as "file:line: message"; values of password= and
 * auth file secrets are never copied into a message.
 */
#include "config.h"
#include "hba.h"
#include "poller.h"
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
#include <syslog.h>

#define MAX_TIME_SECONDS 1e9	/* about 31 years: keeps ms conversions sane */
#define PGC_MAX_PACKET_SIZE 1073741823	/* 1 GB - 1: PostgreSQL's largest message */
#define MAX_INCLUDE_DEPTH 10	/* %include nesting; also what stops a file including itself */

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
	K_STR, K_INT, K_TIME, K_BOOL, K_MODE, K_AUTH, K_PINNING, K_SSLMODE,
	K_IOBACKEND,				/* io_backend: epoll, io_uring or auto (poller.h) */
	K_OCTAL,					/* a file mode: 0777 (octal with a leading 0), or decimal */
	K_VERBOSE,					/* a boolean, or PgBouncer's level 0..3 */
	K_FACILITY,					/* a syslog facility name */
	K_CHECKQ,					/* server_check_query: "" = off, "<empty>" = the empty query */
	K_PACKET,					/* max_packet_size: larger than PostgreSQL takes is lowered, with a warning */
	K_PREPARED,					/* max_prepared_statements: PgBouncer's 0 (off) is warned about */
	K_PQEXEC,					/* disable_pqexec: 0 is what pgcarrier does, 1 is refused */
	K_IGNORED					/* a PgBouncer key with no meaning here: accepted, one warning */
} key_kind;

typedef struct key_def
{
	const char *name;
	key_kind	kind;
	size_t		off;
	long		min, max;
	const char *why;			/* K_IGNORED: what pgcarrier does instead */
} key_def;

#define KSTR(f)			{#f, K_STR, offsetof(pgc_config, f), 0, 0, NULL}
#define KINT(f, lo, hi)	{#f, K_INT, offsetof(pgc_config, f), lo, hi, NULL}
#define KTIME(f)		{#f, K_TIME, offsetof(pgc_config, f), 0, 0, NULL}
#define KBOOL(f)		{#f, K_BOOL, offsetof(pgc_config, f), 0, 0, NULL}
#define KKIND(f, k)		{#f, k, offsetof(pgc_config, f), 0, 0, NULL}
#define KIGN(name, why)	{name, K_IGNORED, 0, 0, 0, why}

static const key_def main_keys[] = {
	KSTR(listen_addr),
	KINT(listen_port, 1, 65535),
	KSTR(unix_socket_dir),
	KINT(workers, 0, 256),
	KKIND(io_backend, K_IOBACKEND),
	KKIND(pool_mode, K_MODE),
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
	KKIND(auth_type, K_AUTH),
	KSTR(auth_file),
	KSTR(auth_hba_file),
	KSTR(logfile),
	KSTR(pidfile),
	KSTR(admin_users),
	KBOOL(admin_peer_same_uid),
	KKIND(max_packet_size, K_PACKET),
	KBOOL(log_connections),
	KBOOL(log_disconnections),
	KBOOL(log_pooler_errors),
	KKIND(verbose, K_VERBOSE),
	KBOOL(session_guard),
	KBOOL(server_session_report),
	KKIND(max_prepared_statements, K_PREPARED),
	KKIND(session_pinning, K_PINNING),
	KSTR(auth_query),
	KSTR(auth_user),
	KTIME(auth_query_cache_lifetime),
	KKIND(client_tls_sslmode, K_SSLMODE),
	KSTR(client_tls_cert_file),
	KSTR(client_tls_key_file),
	KSTR(client_tls_ca_file),
	KSTR(client_tls_protocols),
	KSTR(client_tls_ciphers),
	KKIND(server_tls_sslmode, K_SSLMODE),
	KSTR(server_tls_cert_file),
	KSTR(server_tls_key_file),
	KSTR(server_tls_ca_file),
	KSTR(server_tls_protocols),
	KSTR(server_tls_ciphers),
	KSTR(user),
	KINT(max_login_clients, 0, INT_MAX),
	KINT(max_login_clients_per_addr, 0, INT_MAX),
	/* statistics, the admin console and /metrics */
	KSTR(stats_users),
	KTIME(stats_period),
	KBOOL(log_stats),
	KBOOL(stats),
	KSTR(stats_listen_addr),
	KINT(stats_listen_port, 0, 65535),
	/* PgBouncer's keys that pgcarrier honours (docs/migrating-from-pgbouncer.md) */
	KSTR(ignore_startup_parameters),
	KSTR(track_extra_parameters),
	KBOOL(application_name_add_host),
	KTIME(query_timeout),
	KTIME(cancel_wait_timeout),
	KKIND(server_check_query, K_CHECKQ),
	KTIME(server_check_delay),
	KBOOL(server_round_robin),
	KINT(server_pipeline_depth, 0, 64),
	KTIME(server_pipeline_max_wait),
	KBOOL(server_reset_query_always),
	KBOOL(server_fast_close),
	KSTR(auth_dbname),
	KINT(listen_backlog, 1, 65535),
	KBOOL(so_reuseport),
	KBOOL(tcp_defer_accept),
	KINT(tcp_socket_buffer, 0, INT_MAX),
	KBOOL(tcp_keepalive),
	KINT(tcp_keepcnt, 0, 127),
	KINT(tcp_keepidle, 0, 32767),
	KINT(tcp_keepintvl, 0, 32767),
	KINT(tcp_user_timeout, 0, INT_MAX),
	KKIND(unix_socket_mode, K_OCTAL),
	KSTR(unix_socket_group),
	KBOOL(syslog),
	KSTR(syslog_ident),
	KKIND(syslog_facility, K_FACILITY),
	KSTR(syslog_socket),
	{"disable_pqexec", K_PQEXEC, 0, 0, 0, NULL},
	/*
	 * PgBouncer's keys with no meaning in pgcarrier: accepted, and the
	 * load warns once, saying why, so that nothing is dropped silently.
	 */
	KIGN("auth_ident_file", "user name maps (map=) are not supported; HBA lines with map= are refused"),
	KIGN("auth_ldap_options", "LDAP authentication is not supported"),
	KIGN("autodb_idle_timeout", "pools are kept for the life of the process"),
	KIGN("client_tls13_ciphers", "TLS 1.3 uses OpenSSL's default cipher suites"),
	KIGN("client_tls_dheparams", "only ECDHE key exchange is offered"),
	KIGN("client_tls_ecdhcurve", "OpenSSL's default groups are used"),
	KIGN("server_tls13_ciphers", "TLS 1.3 uses OpenSSL's default cipher suites"),
	KIGN("conffile", "the configuration file is the one named on the command line"),
	KIGN("dns_max_ttl", "host names are looked up at each new server connection, never cached"),
	KIGN("dns_nxdomain_ttl", "host names are looked up at each new server connection, never cached"),
	KIGN("dns_zone_check_period", "host names are looked up at each new server connection, never cached"),
	KIGN("resolv_conf", "host names are looked up with the system's resolver"),
	KIGN("job_name", "Windows service names do not apply"),
	KIGN("service_name", "Windows service names do not apply"),
	KIGN("max_db_client_connections", "not enforced: max_client_conn bounds all clients"),
	KIGN("max_user_client_connections", "not enforced: max_client_conn bounds all clients"),
	KIGN("peer_id", "peering is not supported: one pgcarrier process uses all cores"),
	KIGN("pkt_buf", "buffers are sized by pgcarrier"),
	KIGN("sbuf_loopcnt", "every worker thread serves its clients in turn"),
	KIGN("query_wait_notify", "waiting clients get no NOTICE"),
	KIGN("scram_iterations", "SCRAM secrets derived from clear-text passwords use 4096 iterations"),
	KIGN("suspend_timeout", "there is no SUSPEND or online restart"),
	KIGN("transaction_timeout", "not supported; use PostgreSQL's transaction_timeout or idle_transaction_timeout"),
};

#define N_MAIN_KEYS ((int) (sizeof(main_keys) / sizeof(main_keys[0])))

/* State of one INI parse. */
typedef struct ini_state
{
	pgc_config *cfg;
	const char *file;			/* of the line being read */
	int			line;
	char	   *err;
	size_t		errlen;
	int			dialect;		/* pgc_dialect */
	int			seen[N_MAIN_KEYS];	/* line where each key was set, 0 = not yet */
	const char *seen_file[N_MAIN_KEYS];
	char	  **warned;			/* keys already warned about (one warning each) */
	int			n_warned;
} ini_state;

/*
 * One warning about key, "FILE:LINE: key: why", unless key had one in this
 * load already. Out of memory loses the warning, never the load.
 */
static void
warn_key(ini_state *st, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
warn_key(ini_state *st, const char *key, const char *fmt, ...)
{
	pgc_config *cfg = st->cfg;
	char		msg[600];
	int			n;
	va_list		ap;

	for (int i = 0; i < st->n_warned; i++)
		if (strcasecmp(st->warned[i], key) == 0)
			return;
	if (grow((void **) &st->warned, st->n_warned, sizeof(char *)) < 0 ||
		(st->warned[st->n_warned] = strdup(key)) == NULL)
		return;
	st->n_warned++;
	n = snprintf(msg, sizeof(msg), "%s:%d: %s: ", st->file, st->line, key);
	if (n < 0 || (size_t) n >= sizeof(msg))
		return;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	va_end(ap);
	if (grow((void **) &cfg->warnings, cfg->n_warnings, sizeof(char *)) < 0 ||
		(cfg->warnings[cfg->n_warnings] = strdup(msg)) == NULL)
		return;
	cfg->n_warnings++;
}

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

/* syslog facilities, as PgBouncer and syslog.conf spell them. */
static const struct
{
	const char *name;
	int			value;
}			facility_names[] = {
	{"auth", LOG_AUTH}, {"authpriv", LOG_AUTHPRIV}, {"daemon", LOG_DAEMON}, {"user", LOG_USER},
	{"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
	{"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

/* A syslog facility by name; -1 if unknown. */
static int
parse_facility(const char *s)
{
	for (size_t i = 0; i < sizeof(facility_names) / sizeof(facility_names[0]); i++)
		if (strcasecmp(s, facility_names[i].name) == 0)
			return facility_names[i].value;
	return -1;
}

/* The name of a syslog facility value; "?" if unknown. */
static const char *
facility_name(int value)
{
	for (size_t i = 0; i < sizeof(facility_names) / sizeof(facility_names[0]); i++)
		if (facility_names[i].value == value)
			return facility_names[i].name;
	return "?";
}

/* The kinds PgBouncer's keys brought (see key_kind). */
static int
set_compat_key(ini_state *st, const key_def *k, char *base, const char *val)
{
	int			v;

	switch (k->kind)
	{
		case K_OCTAL:
			{
				char	   *end;
				long		m;

				errno = 0;
				m = strtol(val, &end, val[0] == '0' ? 8 : 10);
				if (*val == '\0' || *end != '\0' || errno != 0 || m < 0 || m > 07777)
					return pgc_file_error(st->err, st->errlen, st->file, st->line,
								"invalid value \"%s\" for %s: expected a file mode such as 0777 or 0770",
								val, k->name);
				*(int *) (base + k->off) = (int) m;
				return 0;
			}
		case K_VERBOSE:
			if (parse_bool(val, &v) < 0 && parse_int(val, 0, 3, &v) < 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected a boolean or a level from 0 to 3",
							val, k->name);
			*(int *) (base + k->off) = v;
			return 0;
		case K_FACILITY:
			if ((v = parse_facility(val)) < 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected auth, authpriv, daemon, user or "
							"local0 to local7", val, k->name);
			*(int *) (base + k->off) = v;
			return 0;
		case K_CHECKQ:
			{
				char	  **field = (char **) (base + k->off);
				const char *q = strcmp(val, "<empty>") == 0 ? "" : val;
				char	   *copy = NULL;

				/* "" turns the check off; "<empty>" sends an empty query, as PgBouncer. */
				if (*val != '\0' && (copy = strdup(q)) == NULL)
					return pgc_file_error(st->err, st->errlen, st->file, st->line, "out of memory");
				free(*field);
				*field = copy;
				return 0;
			}
		case K_PACKET:
			{
				char	   *end;
				unsigned long long n;

				errno = 0;
				n = strtoull(val, &end, 10);
				if (!isdigit((unsigned char) *val) || *end != '\0' || errno != 0 || n < 1 || n > UINT32_MAX)
					return pgc_file_error(st->err, st->errlen, st->file, st->line,
								"invalid value \"%s\" for %s: expected an integer from 1 to %u",
								val, k->name, UINT32_MAX);
				if (n > PGC_MAX_PACKET_SIZE)
				{
					/* PgBouncer's default is 2^31 - 1; PostgreSQL takes no message past 1 GB - 1. */
					warn_key(st, k->name, "%llu is more than PostgreSQL accepts; using %d", n,
							 PGC_MAX_PACKET_SIZE);
					n = PGC_MAX_PACKET_SIZE;
				}
				*(int *) (base + k->off) = (int) n;
				return 0;
			}
		case K_PREPARED:
			if (parse_int(val, 0, 100000, &v) < 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected an integer from 0 to 100000",
							val, k->name);
			if (v == 0)
			{
				/* PgBouncer's 0 turns its tracking off; the guard always tracks them. */
				warn_key(st, k->name, "0 does not turn prepared statement tracking off in pgcarrier "
						 "(session_guard does); keeping %d per server connection",
						 *(int *) (base + k->off));
				return 0;
			}
			*(int *) (base + k->off) = v;
			return 0;
		case K_PQEXEC:
			if (parse_bool(val, &v) < 0 && parse_int(val, 0, INT_MAX, &v) < 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected 0 or 1", val, k->name);
			if (v != 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"disable_pqexec = %s is not supported by pgcarrier: the simple query "
							"protocol cannot be turned off", val);
			warn_key(st, k->name, "has no effect in pgcarrier (the simple query protocol is always on, "
					 "as with disable_pqexec = 0)");
			return 0;
		case K_IGNORED:
			warn_key(st, k->name, "has no effect in pgcarrier: %s", k->why);
			return 0;
		default:
			break;
	}
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
	if (st->seen[i] && strcmp(st->seen_file[i], st->file) == 0)
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"duplicate key \"%s\" (already set on line %d)", k->name, st->seen[i]);
	if (st->seen[i])
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"duplicate key \"%s\" (already set on %s:%d)", k->name,
					st->seen_file[i], st->seen[i]);
	st->seen[i] = st->line;
	st->seen_file[i] = st->file;
	/* PgBouncer takes the rest of the line as it is: no comment, no quotes. */
	if (st->dialect == PGC_DIALECT_PGBOUNCER)
		val = trim(text);
	else if (ini_value(st, k->name, text, &val) < 0)
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
			/* The averages are per second of a window: a window shorter than that means nothing. */
			if (k->off == offsetof(pgc_config, stats_period) && *(double *) (base + k->off) < 1)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for stats_period: it must be at least 1 s", val);
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
			else if (strcasecmp(val, "any") == 0)
				*(int *) (base + k->off) = PGC_AUTH_ANY;
			else if (strcasecmp(val, "pam") == 0 || strcasecmp(val, "ldap") == 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"auth_type = %s is not supported by pgcarrier (use md5, scram-sha-256, "
							"cert or an HBA file)", val);
			else
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for auth_type: expected trust, password, md5, "
							"scram-sha-256, cert, hba or any", val);
			return 0;
		case K_IOBACKEND:
			if ((*(int *) (base + k->off) = pgc_io_backend_parse(val)) < 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected epoll, io_uring or auto", val, k->name);
			return 0;
		case K_SSLMODE:
			if ((*(int *) (base + k->off) = pgc_sslmode_parse(val)) < 0)
				return pgc_file_error(st->err, st->errlen, st->file, st->line,
							"invalid value \"%s\" for %s: expected disable, allow, prefer, require, "
							"verify-ca or verify-full", val, k->name);
			return 0;
		default:
			return set_compat_key(st, k, base, val);
	}
	return 0;
}

/* -------------------------------------------------- connection strings */

/*
 * Next key=value pair of a libpq-style string. Values may be single-quoted,
 * with \' and \\ (any \x) escapes inside the quotes. A ';' or '#' after
 * whitespace, where a key or a value would start, begins a comment that
 * ends the string; inside a quoted value, or within a word ("ab#c"), it is
 * an ordinary character, as libpq reads it. In a PgBouncer file (dialect)
 * there are no comments, and a quote inside quotes is written twice ('')
 * while a backslash is an ordinary character, as PgBouncer reads it.
 * Returns 1 with *key and *val malloc'd, 0 at the end, -1 on error with
 * *why set (and *key set if it was read).
 */
static int
next_pair(const char **pp, char **key, char **val, const char **why, int dialect)
{
	const char *p = skip_space(*pp),
			   *start;
	char	   *out;
	bool		comments = dialect != PGC_DIALECT_PGBOUNCER;

	*key = *val = NULL;
	if (*p == '\0' || (comments && comment_at(*pp, p)))
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

	if (comments && comment_at(start, p))
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
		for (p++; *p; p++)
		{
			if (comments && *p == '\\' && p[1])
				p++;
			else if (!comments && *p == '\'' && p[1] == '\'')
				p++;
			else if (*p == '\'')
				break;
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
	"min_pool_size", "reserve_pool", "max_db_connections", "pool_mode",
	"auth_dbname", "reserve_pool_size", "auth_only"
};
static const char *const user_keys[] = {"pool_mode", "max_user_connections"};

/* Keys of PgBouncer's [databases] and [users] lines with no meaning here: one warning each. */
typedef struct ignored_key
{
	const char *name;
	const char *why;
} ignored_key;

static const ignored_key db_ignored[] = {
	{"auth_user", "a database's own auth_user is not supported; the global auth_user is used"},
	{"auth_query", "a database's own auth_query is not supported; the global auth_query is used"},
	{"connect_query", "not supported: new server connections run no query of their own"},
	{"load_balance_hosts", "host lists are not supported"},
	{"max_db_client_connections", "not enforced: max_client_conn bounds all clients"},
	{"server_lifetime", "a database's own server_lifetime is not supported; the global one applies"},
	{"client_encoding", "not sent to the server: clients' own settings follow them"},
	{"datestyle", "not sent to the server: clients' own settings follow them"},
	{"timezone", "not sent to the server: clients' own settings follow them"},
	{"application_name", "not sent to the server: clients' own settings follow them"},
};
static const ignored_key user_ignored[] = {
	{"pool_size", "a user's own pool_size is not supported; the database's applies"},
	{"reserve_pool_size", "a user's own reserve_pool_size is not supported; the database's applies"},
	{"query_timeout", "a user's own query_timeout is not supported; the global one applies"},
	{"idle_transaction_timeout", "a user's own idle_transaction_timeout is not supported; the global one applies"},
	{"transaction_timeout", "not supported"},
	{"client_idle_timeout", "a user's own client_idle_timeout is not supported; the global one applies"},
	{"max_user_client_connections", "not enforced: max_client_conn bounds all clients"},
};

static const ignored_key *
find_ignored(const ignored_key *list, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].name, key) == 0)
			return &list[i];
	return NULL;
}

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
	if (strcmp(key, "auth_dbname") == 0)
		return set_str(&db->auth_dbname, val);
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
	else if (strcmp(key, "reserve_pool") == 0 || strcmp(key, "reserve_pool_size") == 0)
		ifield = &db->reserve_pool;     /* PgBouncer's name, and its older one */
	else if (strcmp(key, "max_db_connections") == 0)
		ifield = &db->max_db_connections;
	else if (strcmp(key, "auth_only") == 0)
		ifield = &db->auth_only, max = 1;
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

	while ((r = next_pair(&p, &key, &val, &why, st->dialect)) == 1)
	{
		char		expected[64];
		const ignored_key *ign;

		for (i = 0; i < nkeys && strcmp(key, keys[i]) != 0; i++)
			;
		if (i == nkeys && (ign = db ? find_ignored(db_ignored, sizeof(db_ignored) / sizeof(db_ignored[0]), key)
						   : find_ignored(user_ignored, sizeof(user_ignored) / sizeof(user_ignored[0]), key)))
		{
			warn_key(st, key, "has no effect in pgcarrier: %s", ign->why);
			r = 0;
		}
		else if (i == nkeys && quiet)
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
	if (parse_conn_string(st, what, db, NULL, val) < 0)
		return -1;
	if (db->host && strchr(db->host, ','))
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"%s: host=%s: a list of hosts is not supported", what, db->host);
	return 0;
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
	SEC_NONE, SEC_MAIN, SEC_DATABASES, SEC_USERS, SEC_PEERS
};

/* The section a header names; -1 if none. [pgbouncer] is the main section of a PgBouncer file. */
static int
section_named(const char *name, int dialect)
{
	if (strcasecmp(name, dialect == PGC_DIALECT_PGBOUNCER ? "pgbouncer" : "pgcarrier") == 0)
		return SEC_MAIN;
	if (strcasecmp(name, "databases") == 0)
		return SEC_DATABASES;
	if (strcasecmp(name, "users") == 0)
		return SEC_USERS;
	if (strcasecmp(name, "peers") == 0)
		return SEC_PEERS;
	return -1;
}

/* "[name]", optionally followed by a comment. */
static int
parse_section_header(ini_state *st, char *s, enum section *sec)
{
	char	   *close = strchr(s, ']'),
			   *name;
	const char *rest;
	int			which;

	if (close == NULL)
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"malformed section header (missing ']')");
	rest = skip_space(close + 1);
	/* PgBouncer reads what follows ']' as a new line: only a comment may be there. */
	if (*rest != '\0' && !comment_at(close + 1, rest) &&
		!(st->dialect == PGC_DIALECT_PGBOUNCER && (*rest == ';' || *rest == '#')))
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"unexpected text after the section header");
	*close = '\0';
	name = trim(s + 1);
	if ((which = section_named(name, st->dialect)) < 0)
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"unknown section [%s]", name);
	*sec = (enum section) which;
	if (*sec == SEC_PEERS)
		warn_key(st, "[peers]", "has no effect in pgcarrier: peering is not supported (one pgcarrier "
				 "process uses all cores); its lines are ignored");
	return 0;
}

/*
 * A [databases] or [users] name in a PgBouncer file may be quoted, 'x' as
 * its INI reader allows, or "x" as an SQL identifier ("" for a quote).
 */
static char *
unquote_name(char *key)
{
	size_t		n = strlen(key);
	char	   *o;

	if (n >= 2 && key[0] == '\'' && key[n - 1] == '\'')
	{
		key[n - 1] = '\0';
		return key + 1;
	}
	if (n >= 2 && key[0] == '"' && key[n - 1] == '"')
	{
		key[n - 1] = '\0';
		o = key;
		for (char *p = key + 1; *p; p++)
		{
			if (*p == '"' && p[1] == '"')
				p++;
			*o++ = *p;
		}
		*o = '\0';
	}
	return key;
}

static int
parse_line(ini_state *st, char *line, enum section *sec)
{
	char	   *s = trim(line),
			   *eq,
			   *key;
	bool		bouncer = st->dialect == PGC_DIALECT_PGBOUNCER;

	if (*s == '\0' || *s == ';' || *s == '#')
		return 0;
	if (*s == '[')
		return parse_section_header(st, s, sec);
	/* an '=' inside a comment does not count: "listen_port ; = 5" has none (not in a PgBouncer file) */
	if ((eq = strchr(s, '=')) == NULL || (!bouncer && find_comment(s, eq) != NULL))
		return pgc_file_error(st->err, st->errlen, st->file, st->line,
					"expected \"key = value\"");
	*eq = '\0';
	key = trim(s);
	if (bouncer && *sec != SEC_MAIN)
		key = unquote_name(key);
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
		case SEC_PEERS:
			return 0;			/* warned about at the header */
	}
	return 0;
}

/* ----------------------------------------------- lines and %include files */

/* One line of the configuration: from the file given, or from a file it includes. */
typedef struct src_line
{
	const char *file;			/* owned by src_lines.files */
	int			line;
	char	   *text;
} src_line;

typedef struct src_lines
{
	src_line   *v;
	int			n;
	char	  **files;
	int			n_files;
} src_lines;

static void
src_lines_free(src_lines *L)
{
	for (int i = 0; i < L->n; i++)
		free(L->v[i].text);
	free(L->v);
	for (int i = 0; i < L->n_files; i++)
		free(L->files[i]);
	free(L->files);
	memset(L, 0, sizeof(*L));
}

/* "%include FILE" (PgBouncer's directive, at the start of a line): FILE, or NULL. */
static char *
include_target(char *line)
{
	char	   *s = (char *) skip_space(line);

	if (strncmp(s, "%include", 8) != 0 || (s[8] != ' ' && s[8] != '\t'))
		return NULL;
	return trim(s + 8);
}

/* The directory part of path ("." when it has none); malloc'd, NULL when out of memory. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	return strndup(path, slash == path ? 1 : (size_t) (slash - path));
}

static int collect_file(src_lines *L, const char *path, const char *from, int from_line,
						int depth, char *err, size_t errlen);

/*
 * Split text (of file, whose %include names are relative to dir; NULL: the
 * current directory) into L, reading included files in their place.
 */
static int
collect_text(src_lines *L, const char *text, const char *file, const char *dir, int depth,
			 char *err, size_t errlen)
{
	const char *p = text;
	int			lineno = 0;

	while (*p)
	{
		const char *nl = strchr(p, '\n');
		char	   *line,
				   *inc;

		if (nl == NULL)
			nl = p + strlen(p);
		lineno++;
		if ((line = strndup(p, nl - p)) == NULL)
			return pgc_file_error(err, errlen, file, lineno, "out of memory");
		p = *nl ? nl + 1 : nl;
		if ((inc = include_target(line)) != NULL)
		{
			char	   *path;
			int			r;

			if (*inc == '\0')
				r = pgc_file_error(err, errlen, file, lineno, "%%include needs a file name");
			else if (depth >= MAX_INCLUDE_DEPTH)
				r = pgc_file_error(err, errlen, file, lineno,
								   "%%include nested more than %d deep (does a file include itself?)",
								   MAX_INCLUDE_DEPTH);
			else if (inc[0] != '/' && dir != NULL && asprintf(&path, "%s/%s", dir, inc) < 0)
				r = pgc_file_error(err, errlen, file, lineno, "out of memory");
			else
			{
				if (inc[0] == '/' || dir == NULL)
					path = strdup(inc);
				r = path ? collect_file(L, path, file, lineno, depth + 1, err, errlen)
					: pgc_file_error(err, errlen, file, lineno, "out of memory");
				free(path);
			}
			free(line);
			if (r < 0)
				return -1;
			continue;
		}
		if (grow((void **) &L->v, L->n, sizeof(src_line)) < 0)
		{
			free(line);
			return pgc_file_error(err, errlen, file, lineno, "out of memory");
		}
		L->v[L->n].file = file;
		L->v[L->n].line = lineno;
		L->v[L->n].text = line;
		L->n++;
	}
	return 0;
}

/* Read path (included from from:from_line, or the main file when from is NULL) into L. */
static int
collect_file(src_lines *L, const char *path, const char *from, int from_line, int depth,
			 char *err, size_t errlen)
{
	char	   *text,
			   *name,
			   *dir;
	size_t		len;
	int			r;

	if ((text = pgc_read_file(path, &len)) == NULL)
	{
		if (from)
			return pgc_file_error(err, errlen, from, from_line, "cannot read %%include file \"%s\": %s",
								  path, strerror(errno));
		return pgc_file_error(err, errlen, path, 0, "cannot read: %s", strerror(errno));
	}
	if (strlen(text) != len)
	{
		free(text);
		return pgc_file_error(err, errlen, path, 0, "file contains a NUL byte");
	}
	if (grow((void **) &L->files, L->n_files, sizeof(char *)) < 0 || (name = strdup(path)) == NULL)
	{
		free(text);
		return pgc_file_error(err, errlen, path, 0, "out of memory");
	}
	L->files[L->n_files++] = name;
	if ((dir = dir_of(path)) == NULL)
		r = pgc_file_error(err, errlen, path, 0, "out of memory");
	else
		r = collect_text(L, text, name, dir, depth, err, errlen);
	free(dir);
	free(text);
	return r;
}

/*
 * Which dialect the lines are in: PgBouncer's when the main section is
 * [pgbouncer]. Looked at before any line is read, as the [databases]
 * section often comes first. -1 with a message when both main sections
 * are there.
 */
static int
detect_dialect(const src_lines *L, char *err, size_t errlen)
{
	int			bouncer = -1,
				carrier = -1;

	for (int i = 0; i < L->n; i++)
	{
		const char *s = skip_space(L->v[i].text);
		const char *close;
		char		name[32];
		size_t		n;

		if (*s != '[' || (close = strchr(s, ']')) == NULL)
			continue;
		s = skip_space(s + 1);
		n = (size_t) (close - s);
		while (n > 0 && isspace((unsigned char) s[n - 1]))
			n--;
		if (n >= sizeof(name))
			continue;
		memcpy(name, s, n);
		name[n] = '\0';
		if (strcasecmp(name, "pgbouncer") == 0 && bouncer < 0)
			bouncer = i;
		else if (strcasecmp(name, "pgcarrier") == 0 && carrier < 0)
			carrier = i;
	}
	if (bouncer >= 0 && carrier >= 0)
	{
		int			later = bouncer > carrier ? bouncer : carrier;

		return pgc_file_error(err, errlen, L->v[later].file, L->v[later].line,
							  "a configuration has a [pgcarrier] or a [pgbouncer] section, not both "
							  "(the other is at %s:%d)", L->v[bouncer + carrier - later].file,
							  L->v[bouncer + carrier - later].line);
	}
	return bouncer >= 0 ? PGC_DIALECT_PGBOUNCER : PGC_DIALECT_PGCARRIER;
}

/*
 * PgBouncer's default auth_query, in our words: the role's secret, none
 * once the password has expired (VALID UNTIL), as PgBouncer 1.24.1 and
 * later do; pg_shadow lists only roles that can log in.
 */
#define PGBOUNCER_AUTH_QUERY \
	"SELECT usename, CASE WHEN valuntil < pg_catalog.now() THEN NULL ELSE passwd END " \
	"FROM pg_catalog.pg_shadow WHERE usename = $1"

static pgc_config *
config_new(int dialect)
{
	pgc_config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	cfg->dialect = dialect;
	cfg->listen_addr = strdup("127.0.0.1");
	cfg->listen_port = 6432;
	cfg->unix_socket_dir = strdup("/tmp");
	cfg->workers = 0;
	cfg->io_backend = PGC_IO_EPOLL;   /* io_uring's re-armed polls cost more CPU than epoll_ctl saves (docs/behaviour.md) */
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
	cfg->max_packet_size = PGC_MAX_PACKET_SIZE;
	cfg->log_connections = 1;
	cfg->log_disconnections = 1;
	cfg->log_pooler_errors = 1;
	cfg->verbose = 0;
	cfg->session_guard = 1;
	cfg->server_session_report = 0;
	cfg->admin_peer_same_uid = 0;
	cfg->max_prepared_statements = 200;
	cfg->session_pinning = PGC_PIN_ALLOW;
	cfg->auth_query = strdup("SELECT usename, passwd FROM pg_shadow WHERE usename=$1");
	cfg->auth_query_cache_lifetime = 15;
	cfg->max_login_clients = 1000;
	cfg->max_login_clients_per_addr = 200;
	cfg->stats_period = 60;
	cfg->log_stats = 1;
	cfg->stats = 1;
	cfg->stats_listen_addr = strdup("127.0.0.1");
	cfg->stats_listen_port = 0;
	/* PgBouncer's keys, with PgBouncer's defaults */
	cfg->cancel_wait_timeout = 10;
	cfg->server_check_query = strdup("");     /* PgBouncer's "<empty>" */
	cfg->server_check_delay = 30;
	cfg->server_pipeline_max_wait = 0.002;
	cfg->listen_backlog = 4096;                 /* pgbench -c 1000 connects at once; PgBouncer says 128 */
	cfg->tcp_keepalive = 1;
	cfg->unix_socket_mode = 0777;
	cfg->syslog_ident = strdup("pgcarrier");
	cfg->syslog_facility = LOG_DAEMON;
	cfg->syslog_socket = strdup("/dev/log");
	if (dialect == PGC_DIALECT_PGBOUNCER)
	{
		/*
		 * A PgBouncer file that leaves these out expects PgBouncer's
		 * defaults: they change what clients get (session pooling) and who
		 * may log in (md5, not trust; no TCP unless listen_addr is set).
		 */
		cfg->pool_mode = PGC_POOL_SESSION;
		cfg->auth_type = PGC_AUTH_MD5;
		free(cfg->listen_addr);
		cfg->listen_addr = NULL;
		cfg->server_tls_sslmode = PGC_SSLMODE_PREFER;
		free(cfg->auth_query);
		cfg->auth_query = strdup(PGBOUNCER_AUTH_QUERY);
	}
	if (!cfg->stats_listen_addr || (dialect != PGC_DIALECT_PGBOUNCER && !cfg->listen_addr) || !cfg->unix_socket_dir ||
		!cfg->server_reset_query || !cfg->auth_query || !cfg->server_check_query ||
		!cfg->syslog_ident || !cfg->syslog_socket)
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
		return pgc_file_error(st->err, st->errlen, st->seen_file[find_main_key("auth_type")],
					st->seen[find_main_key("auth_type")],
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

/* What only the whole file can tell: names that must be [databases] entries, auth_type = any. */
static int
check_whole(ini_state *st)
{
	pgc_config *cfg = st->cfg;
	int			k = find_main_key("auth_dbname");

	if (cfg->auth_dbname && pgc_config_find_db(cfg, cfg->auth_dbname) == NULL)
		return pgc_file_error(st->err, st->errlen, st->seen_file[k], st->seen[k],
					"auth_dbname = %s: no such database in [databases]", cfg->auth_dbname);
	for (int i = 0; i < cfg->n_databases; i++)
	{
		const pgc_database *db = &cfg->databases[i];

		if (db->auth_dbname && pgc_config_find_db(cfg, db->auth_dbname) == NULL)
			return pgc_file_error(st->err, st->errlen, cfg->path, 0,
						"database \"%s\" (line %d): auth_dbname=%s: no such database in [databases]",
						db->name, db->line, db->auth_dbname);
	}
	if (cfg->auth_type == PGC_AUTH_ANY)
	{
		k = find_main_key("auth_type");
		st->file = st->seen_file[k];
		st->line = st->seen[k];
		for (int i = 0; i < cfg->n_databases; i++)
			if (cfg->databases[i].user == NULL)
			{
				warn_key(st, "auth_type", "auth_type = any expects every database to log in as its "
						 "user=; database \"%s\" has none, so its clients log in to the server as the "
						 "user they name", cfg->databases[i].name);
				break;
			}
	}
	return 0;
}

/* dir: where a relative auth_file lives, NULL for the current directory. */
static pgc_config *
parse_ini(const src_lines *L, const char *name, const char *dir, char *err, size_t errlen)
{
	ini_state	st;
	enum section sec = SEC_NONE;
	int			dialect;

	memset(&st, 0, sizeof(st));
	st.file = name;
	st.err = err;
	st.errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	if ((dialect = detect_dialect(L, err, errlen)) < 0)
		return NULL;
	st.dialect = dialect;
	if ((st.cfg = config_new(dialect)) == NULL || (st.cfg->path = strdup(name)) == NULL)
	{
		pgc_config_free(st.cfg);
		pgc_file_error(err, errlen, name, 0, "out of memory");
		return NULL;
	}

	for (int i = 0; i < L->n; i++)
	{
		char	   *line;
		int			r;

		st.file = L->v[i].file;
		st.line = L->v[i].line;
		/* As in PgBouncer, an included file goes on in the section it was included from. */
		if ((line = strdup(L->v[i].text)) == NULL)
			r = pgc_file_error(err, errlen, st.file, st.line, "out of memory");
		else
			r = parse_line(&st, line, &sec);
		free(line);
		if (r < 0)
			goto error;
	}
	st.file = name;
	st.line = 0;

	if (check_whole(&st) < 0)
		goto error;
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
		pgc_file_error(err, errlen, st.seen_file[find_main_key("auth_type")], st.seen[find_main_key("auth_type")],
					   "auth_type = cert needs TLS with clients: client_tls_sslmode, client_tls_cert_file, "
					   "client_tls_key_file and client_tls_ca_file");
		goto error;
	}
	for (int i = 0; i < st.n_warned; i++)
		free(st.warned[i]);
	free(st.warned);
	return st.cfg;

error:
	for (int i = 0; i < st.n_warned; i++)
		free(st.warned[i]);
	free(st.warned);
	pgc_config_free(st.cfg);
	return NULL;
}

/* ------------------------------------------------------------- public API */

pgc_config *
pgc_config_parse(const char *text, const char *name, char *err, size_t errlen)
{
	src_lines	L;
	pgc_config *cfg = NULL;

	memset(&L, 0, sizeof(L));
	if (collect_text(&L, text, name, NULL, 0, err, errlen) == 0)
		cfg = parse_ini(&L, name, NULL, err, errlen);
	src_lines_free(&L);
	return cfg;
}

pgc_config *
pgc_config_load(const char *path, char *err, size_t errlen)
{
	pgc_config *cfg = NULL;
	const char *slash = strrchr(path, '/');
	char	   *dir = NULL;
	src_lines	L;

	memset(&L, 0, sizeof(L));
	if (collect_file(&L, path, NULL, 0, 0, err, errlen) < 0)
		;
	else if (slash && (dir = strndup(path, slash == path ? 1 : slash - path)) == NULL)
		pgc_file_error(err, errlen, path, 0, "out of memory");
	else
		cfg = parse_ini(&L, path, dir, err, errlen);
	free(dir);
	src_lines_free(&L);
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
	free(cfg->stats_users);
	free(cfg->stats_listen_addr);
	free(cfg->user);
	free(cfg->ignore_startup_parameters);
	free(cfg->track_extra_parameters);
	free(cfg->server_check_query);
	free(cfg->auth_dbname);
	free(cfg->unix_socket_group);
	free(cfg->syslog_ident);
	free(cfg->syslog_socket);
	for (i = 0; i < cfg->n_warnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	for (i = 0; i < cfg->n_databases; i++)
	{
		pgc_database *db = &cfg->databases[i];

		free(db->name);
		free(db->host);
		free(db->dbname);
		free(db->user);
		free(db->password);
		free(db->auth_dbname);
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

/* ------------------------------------------------ SET and SHOW CONFIG */

int
pgc_config_set(pgc_config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
	ini_state	st;
	char	   *text;
	int			i = find_main_key(key),
				rc;

	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	st.file = "SET";
	st.err = err;
	st.errlen = errlen;
	if (i < 0)
		return pgc_file_error(err, errlen, "SET", 0, "unknown setting \"%s\"", key);
	/* A file named here would have to be read, as a reload does: not from SET. */
	if (main_keys[i].kind == K_STR && strlen(key) > 5 && strcmp(key + strlen(key) - 5, "_file") == 0)
		return pgc_file_error(err, errlen, "SET", 0, "%s names a file: change it in the configuration "
					"file and RELOAD", main_keys[i].name);
	if ((text = strdup(value)) == NULL)
		return pgc_file_error(err, errlen, "SET", 0, "out of memory");
	rc = set_main_key(&st, main_keys[i].name, text);
	free(text);
	if (rc == 0 && cfg->auth_type == PGC_AUTH_HBA && cfg->hba == NULL)
		return pgc_file_error(err, errlen, "SET", 0, "auth_type = hba needs auth_hba_file, loaded from "
					"the configuration file: set it there and RELOAD");
	if (rc == 0 && cfg->auth_type == PGC_AUTH_CERT && (cfg->tls_client == NULL || cfg->client_tls_ca_file == NULL))
		return pgc_file_error(err, errlen, "SET", 0, "auth_type = cert needs TLS with clients and "
					"client_tls_ca_file");
	return rc;
}

/*
 * The i-th key SHOW CONFIG lists: every key but PgBouncer's that mean nothing
 * here (they have no value to show).
 */
static const key_def *
shown_key(int i)
{
	for (int j = 0; j < N_MAIN_KEYS; j++)
		if (main_keys[j].kind != K_IGNORED && i-- == 0)
			return &main_keys[j];
	return NULL;
}

const char *
pgc_config_key(int i)
{
	const key_def *k = i >= 0 ? shown_key(i) : NULL;

	return k ? k->name : NULL;
}

void
pgc_config_value(const pgc_config *cfg, int i, char *buf, size_t len)
{
	const key_def *k = i >= 0 ? shown_key(i) : NULL;
	const char *base = (const char *) cfg;
	int			v;

	buf[0] = '\0';
	if (k == NULL || k->kind == K_IGNORED || k->kind == K_PQEXEC)
	{
		if (k && k->kind == K_PQEXEC)
			snprintf(buf, len, "0");
		return;
	}
	v = k->kind == K_STR || k->kind == K_TIME || k->kind == K_CHECKQ ? 0 : *(const int *) (base + k->off);
	switch (k->kind)
	{
		case K_STR:
			{
				const char *str = *(char *const *) (base + k->off);

				snprintf(buf, len, "%s", str ? str : "");
				return;
			}
		case K_INT:
		case K_BOOL:
			snprintf(buf, len, "%d", v);
			return;
		case K_TIME:
			snprintf(buf, len, "%g", *(const double *) (base + k->off));
			return;
		case K_MODE:
			snprintf(buf, len, "%s", pgc_pool_mode_name(v));
			return;
		case K_AUTH:
			{
				static const char *const names[] = {"trust", "password", "md5", "scram-sha-256", "cert", "hba"};

				snprintf(buf, len, "%s", v >= 0 && v < (int) (sizeof(names) / sizeof(names[0])) ? names[v] : "?");
				return;
			}
		case K_PINNING:
			snprintf(buf, len, "%s", v == PGC_PIN_ERROR ? "error" : "pin");
			return;
		case K_SSLMODE:
			snprintf(buf, len, "%s", pgc_sslmode_name(v));
			return;
		case K_IOBACKEND:
			snprintf(buf, len, "%s", pgc_io_backend_name(v));
			return;
		case K_OCTAL:
			snprintf(buf, len, "0%o", (unsigned) v);
			return;
		case K_VERBOSE:
		case K_PACKET:
		case K_PREPARED:
			snprintf(buf, len, "%d", v);
			return;
		case K_FACILITY:
			snprintf(buf, len, "%s", facility_name(v));
			return;
		case K_CHECKQ:
			{
				const char *q = *(char *const *) (base + k->off);

				snprintf(buf, len, "%s", q == NULL ? "" : q[0] == '\0' ? "<empty>" : q);
				return;
			}
		case K_PQEXEC:
		case K_IGNORED:
			return;
	}
}
