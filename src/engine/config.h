/*
 * config.h - pgcarrier's configuration: the INI file and the auth file.
 *
 * Contract:
 *  - pgc_config_load() reads an INI file in PgBouncer's shape (sections
 *    [pgcarrier], [databases], [users]) and, if auth_file is set, the auth
 *    file it names. On any problem it returns NULL and writes
 *    "file:line: what is wrong" into err. Unknown keys, bad values, duplicate
 *    keys and duplicate database/user names are all errors.
 *  - The returned object is immutable once loaded; a reload builds a new one.
 *    Strings inside it are owned by it and freed by pgc_config_free().
 *  - Time values are in seconds (a double); the file may say "1.5", "500ms",
 *    "2s", "3min", "1h". Zero means "disabled" where PgBouncer says so.
 *  - Integer fields of pgc_database/pgc_user that are -1 mean "not set on
 *    this line: use the global default".
 *  - Two dialects, chosen per load (docs/migrating-from-pgbouncer.md): a
 *    configuration whose main section is [pgbouncer] (in the file or in a
 *    file it includes) is read as PgBouncer reads it: ';' and '#' begin a
 *    comment only at the start of a line, a [pgbouncer] value is the rest
 *    of the line as it is, connection strings quote with '...' and ''
 *    inside, and the defaults that change what clients get or how they
 *    log in are PgBouncer's (pool_mode, auth_type, listen_addr,
 *    server_tls_sslmode, auth_query). A [pgcarrier] file is read with
 *    pgcarrier's rules (comments after a value, quoted values). Both may
 *    "%include FILE" (relative to the including file's directory), and
 *    both take either program's keys.
 *  - A key pgcarrier knows but cannot act on is accepted and adds one
 *    entry to warnings ("FILE:LINE: key: why"), once per key and load;
 *    the caller logs them. Values that ask for something pgcarrier cannot
 *    do safely (auth_type = pam or ldap, disable_pqexec = 1) are errors.
 */
#ifndef PGC_CONFIG_H
#define PGC_CONFIG_H

#include <stddef.h>

typedef enum pgc_pool_mode {
	PGC_POOL_SESSION = 0,
	PGC_POOL_TRANSACTION = 1,
	PGC_POOL_STATEMENT = 2
} pgc_pool_mode;

typedef enum pgc_auth_type {
	PGC_AUTH_TRUST = 0,
	PGC_AUTH_PASSWORD,
	PGC_AUTH_MD5,
	PGC_AUTH_SCRAM,
	PGC_AUTH_CERT,
	PGC_AUTH_HBA,
	PGC_AUTH_ANY               /* PgBouncer's "any": trust, and the user name does not matter */
} pgc_auth_type;

/* How the file was read (see the contract above). */
typedef enum pgc_dialect {
	PGC_DIALECT_PGCARRIER = 0,
	PGC_DIALECT_PGBOUNCER = 1
} pgc_dialect;

/* One line of [databases]. */
typedef struct pgc_database {
	char *name;                /* client-visible name; "*" is the fallback */
	char *host;                /* NULL: /var/run/postgresql; a leading '/' means a Unix socket dir */
	int port;                  /* default 5432 */
	char *dbname;              /* NULL: same as the client's database name */
	char *user;                /* forced server user, or NULL (use the client's) */
	char *password;            /* password for the server login, or NULL */
	int pool_size;             /* -1: default_pool_size */
	int min_pool_size;         /* -1: min_pool_size */
	int reserve_pool;          /* -1: reserve_pool_size */
	int max_db_connections;    /* -1: max_db_connections */
	int pool_mode;             /* -1: global pool_mode, else pgc_pool_mode */
	char *auth_dbname;         /* auth_query runs on this [databases] entry's server; NULL: global */
	int auth_only;             /* 1: only for auth_query (auth_dbname); no client may connect to it */
	int line;                  /* line number in the file, for messages */
} pgc_database;

/* One line of [users]. */
typedef struct pgc_user {
	char *name;
	int pool_mode;             /* -1: not set */
	int max_user_connections;  /* -1: not set */
	int line;
} pgc_user;

/* One line of the auth file: "user" "secret". */
typedef struct pgc_auth_entry {
	char *user;
	char *secret;              /* clear text, "md5<32 hex>" or "SCRAM-SHA-256$..." */
} pgc_auth_entry;

/* What the guard does with session state that cannot move between servers. */
enum {
	PGC_PIN_ALLOW = 0,         /* the client keeps its server connection while it holds it */
	PGC_PIN_ERROR = 1          /* such statements fail with 0A000 */
};

typedef struct pgc_config {
	char *path;                /* the file this was loaded from */

	/* [pgcarrier] */
	char *listen_addr;         /* comma-separated addresses; "*" = all IPv4+IPv6; NULL/"" = no TCP */
	int listen_port;           /* 6432 */
	char *unix_socket_dir;     /* "/tmp"; NULL/"" = no Unix socket */
	int workers;               /* 0 = number of cores */
	int io_backend;            /* pgc_io_backend (poller.h), epoll; PGCARRIER_IO_BACKEND overrides it (engine.c) */
	int pool_mode;             /* pgc_pool_mode, default transaction */
	int default_pool_size;     /* 20 */
	int min_pool_size;         /* 0 */
	int reserve_pool_size;     /* 0 */
	double reserve_pool_timeout;   /* 5 s */
	int max_client_conn;       /* 100 */
	int max_db_connections;    /* 0 = unlimited */
	int max_user_connections;  /* 0 = unlimited */
	double server_lifetime;        /* 3600 s, 0 = unlimited */
	double server_idle_timeout;    /* 600 s, 0 = never */
	double server_connect_timeout; /* 15 s */
	double server_login_retry;     /* 15 s: after a failed server login, fail new clients fast for this long */
	double client_idle_timeout;    /* 0 = off */
	double client_login_timeout;   /* 60 s */
	double query_wait_timeout;     /* 120 s, 0 = wait forever */
	double idle_transaction_timeout; /* 0 = off */
	char *server_reset_query;  /* "DISCARD ALL"; "" = none. Session mode only. */
	int auth_type;             /* pgc_auth_type */
	char *auth_file;           /* NULL = none */
	char *auth_hba_file;       /* pg_hba.conf format; required by auth_type = hba */
	struct pgc_hba *hba;       /* auth_hba_file, loaded */
	char *logfile;             /* NULL = stderr */
	char *pidfile;             /* NULL = none */
	char *admin_users;         /* comma-separated, kept for the admin console */
	int admin_peer_same_uid;   /* bool 0: a console login on the Unix socket from our own OS uid is an admin, no password */
	int max_packet_size;       /* 1 GB - 1: largest message accepted from a client */
	int log_connections;       /* bool, 1 */
	int log_disconnections;    /* bool, 1 */
	int log_pooler_errors;     /* bool, 1 */
	int verbose;               /* 0; 1 to 3 (PgBouncer's levels) log DEBUG records */
	/* the session-state guard (transaction and statement modes) */
	int session_guard;         /* bool, 1: track session state; 0: forward as is */
	int server_session_report; /* bool, 0: servers are asked for the pgcarrier extension's session reports (state.h) */
	int max_prepared_statements; /* 200: per server connection, least recently used out */
	int session_pinning;       /* PGC_PIN_ALLOW (default) or PGC_PIN_ERROR */
	/* secrets from the server: auth_query run as auth_user, answers cached */
	char *auth_query;          /* "SELECT usename, passwd FROM pg_shadow WHERE usename=$1" */
	char *auth_user;           /* NULL: no auth_query */
	double auth_query_cache_lifetime; /* 15 s; 0 = ask every time */
	/* TLS (tls.h); sslmode values are pgc_sslmode, file names relative to the config file */
	int client_tls_sslmode;    /* disable */
	char *client_tls_cert_file, *client_tls_key_file, *client_tls_ca_file;
	char *client_tls_protocols; /* NULL = "secure" (TLS 1.2 and 1.3) */
	char *client_tls_ciphers;   /* NULL = "default" */
	int server_tls_sslmode;    /* disable */
	char *server_tls_cert_file, *server_tls_key_file, *server_tls_ca_file;
	char *server_tls_protocols;
	char *server_tls_ciphers;
	struct pgc_tls_ctx *tls_client, *tls_server;  /* built at load (tls.c), NULL when disabled */
	/* the daemon's account and the bounds on clients still logging in (accept.c) */
	char *user;                /* NULL: stay who we are (refused as root); else the account to become */
	int max_login_clients;     /* 1000: clients connected but not yet logged in, all workers; 0 = no bound */
	int max_login_clients_per_addr; /* 200: of those, from one source address; 0 = no bound */
	/* ---- statistics, the admin console and /metrics (stats.c, console.c, metrics.c) ---- */
	char *stats_users;         /* comma-separated: may log in to the admin console and run SHOW */
	double stats_period;       /* 60 s: the window of SHOW STATS' averages and of log_stats */
	int log_stats;             /* bool, 1: a summary line per active database every stats_period */
	int stats;                 /* bool, 1: count; 0 only to measure what counting costs (bench) */
	char *stats_listen_addr;   /* the /metrics endpoint's address: "127.0.0.1" */
	int stats_listen_port;     /* its port; 0 (default): no endpoint */
	/* ---- PgBouncer's keys that need engine behaviour (compat.h, netopt.h) ---- */
	char *ignore_startup_parameters;  /* comma-separated names the client may send and that are dropped */
	char *track_extra_parameters;     /* accepted: pgcarrier tracks every parameter anyway */
	int application_name_add_host;    /* bool 0: append " - addr:port" to the client's application_name */
	double query_timeout;             /* 0 = off: a query running (or waiting) longer ends the client */
	double cancel_wait_timeout;       /* 10 s: a cancel request forwarded longer ago is given up; 0 = never */
	char *server_check_query;         /* NULL: no check; "": an empty query (PgBouncer's "<empty>") */
	double server_check_delay;        /* 30 s: idle longer than this: checked before reuse */
	int server_round_robin;           /* bool 0: idle servers reused oldest first instead of newest */
	/* pipelined multiplexing (pipeline.h) */
	int server_pipeline_depth;        /* 0 = off: units of work in flight on one server at once */
	double server_pipeline_max_wait;  /* 0.002 s: never queue behind a unit running longer than this */
	int server_reset_query_always;    /* bool 0: server_reset_query in every pool mode */
	int server_fast_close;            /* bool 0: session mode: a stale server closes at the next transaction end */
	char *auth_dbname;                /* auth_query runs on this [databases] entry's server; NULL: the client's */
	/* listeners and sockets (engine.c, netopt.c) */
	int listen_backlog;               /* 4096 */
	int so_reuseport;                 /* bool 0: let other processes share our TCP port */
	int tcp_defer_accept;             /* bool 0: TCP_DEFER_ACCEPT on listeners */
	int tcp_socket_buffer;            /* bytes, 0 = the OS's: SO_SNDBUF and SO_RCVBUF */
	int tcp_keepalive;                /* bool 1 */
	int tcp_keepcnt, tcp_keepidle, tcp_keepintvl; /* 0 = the OS's */
	int tcp_user_timeout;             /* ms, 0 = the OS's */
	int unix_socket_mode;             /* 0777 */
	char *unix_socket_group;          /* NULL: ours */
	/* syslog (log.c) */
	int syslog;                       /* bool 0 */
	char *syslog_ident;               /* "pgcarrier" */
	int syslog_facility;              /* LOG_DAEMON (a <syslog.h> facility value) */
	char *syslog_socket;              /* "/dev/log": where syslog records are sent */
	/* how the file was read, and what pgcarrier says about it */
	int dialect;                      /* pgc_dialect */
	char **warnings;                  /* "FILE:LINE: key: why", one per key */
	int n_warnings;

	pgc_database *databases;
	int n_databases;
	pgc_user *users;
	int n_users;
	pgc_auth_entry *auth;
	int n_auth;
} pgc_config;

/* Load the file at path (and its auth_file). NULL on error, message in err. */
pgc_config *pgc_config_load(const char *path, char *err, size_t errlen);

/*
 * Parse INI text held in memory; name is used in messages ("name:line: ...").
 * auth_file, if set in the text, is read from disk relative to the current
 * directory. Used by pgc_config_load and by unit tests.
 */
pgc_config *pgc_config_parse(const char *text, const char *name, char *err, size_t errlen);

/* Parse an auth file's text into cfg->auth (replacing it). 0 ok, -1 error in err. */
int pgc_config_parse_auth(pgc_config *cfg, const char *text, const char *name, char *err, size_t errlen);

void pgc_config_free(pgc_config *cfg);

/* The [databases] entry for a client-visible name: exact match, else "*", else NULL. */
const pgc_database *pgc_config_find_db(const pgc_config *cfg, const char *name);

/* The [users] entry for a user name, or NULL. */
const pgc_user *pgc_config_find_user(const pgc_config *cfg, const char *name);

/* The auth file secret for a user, or NULL. */
const char *pgc_config_find_secret(const pgc_config *cfg, const char *user);

/*
 * "FILE:LINE: message" (or "FILE: message" when line is 0) into err; returns
 * -1, for "return pgc_file_error(...)". Shared by the config and HBA parsers.
 */
int pgc_file_error(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* A whole file in a NUL-terminated buffer (malloc'd); NULL with errno set. */
char *pgc_read_file(const char *path, size_t *lenp);

/*
 * Set one [pgcarrier] key of cfg as if its line were in the file (same
 * syntax, quotes and checks): the admin console's SET. Keys that name a
 * file to read are refused (they need a reload). 0, or -1 with a message.
 */
int pgc_config_set(pgc_config *cfg, const char *key, const char *value, char *err, size_t errlen);

/*
 * The [pgcarrier] keys in file order, for SHOW CONFIG: the i-th key's name
 * (NULL past the last one), and its value in cfg as the file would say it
 * ("" when unset).
 */
const char *pgc_config_key(int i);
void pgc_config_value(const pgc_config *cfg, int i, char *buf, size_t len);

/* "session" / "transaction" / "statement" */
const char *pgc_pool_mode_name(int mode);

#endif
