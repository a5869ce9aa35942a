/*
 * pgcarrier.h - the pgcarrier extension: built-in pooling on a stock
 * PostgreSQL (docs/builtin.md).
 *
 * The extension is loaded by shared_preload_libraries. In the postmaster,
 * _PG_init (pgcarrier.c) defines the pgcarrier.* settings, installs the
 * in-backend reporter (report.c) and registers the supervisor, a background
 * worker (supervisor.c). The supervisor writes the daemon's configuration
 * file from the settings and runs the installed pgcarrier daemon as its own
 * child process (fork and exec): nothing of the engine is ever loaded into
 * a PostgreSQL process (the engine links libpg_query, whose symbols clash
 * with the server's), and a crash of the pooler is the crash of a process
 * the postmaster does not know, so it never starts crash recovery.
 */
#ifndef PGCARRIER_EXT_H
#define PGCARRIER_EXT_H

#include "postgres.h"

/* pool_mode and session_pinning, as the daemon spells them */
enum
{
	PGC_EXT_POOL_SESSION = 0,
	PGC_EXT_POOL_TRANSACTION = 1,
	PGC_EXT_POOL_STATEMENT = 2
};
enum
{
	PGC_EXT_SSL_DISABLE = 0,
	PGC_EXT_SSL_PREFER = 1,
	PGC_EXT_SSL_REQUIRE = 2
};
enum
{
	PGC_EXT_PIN_ALLOW = 0,
	PGC_EXT_PIN_ERROR = 1
};

/* The pgcarrier.* settings (pgcarrier.c). Times are in milliseconds. */
typedef struct pgc_settings
{
	bool		enabled;
	int			port;
	char	   *listen_addresses;	/* "": the server's listen_addresses */
	char	   *unix_socket_directories;	/* "": the server's first one */
	int			workers;
	int			pool_mode;
	int			default_pool_size;
	int			min_pool_size;
	int			reserve_pool_size;
	int			max_client_conn;
	int			query_wait_timeout;
	int			server_idle_timeout;
	int			server_lifetime;
	int			idle_transaction_timeout;
	int			max_prepared_statements;
	int			server_pipeline_depth;	/* units in flight on a backend connection; 0: off */
	int			server_pipeline_max_wait;	/* ms */
	int			session_pinning;
	int			stats_listen_port;
	char	   *databases;		/* "": every database */
	char	   *auth_user;		/* "": the server's OS user name */
	int			auth_query_cache_lifetime;	/* ms */
	char	   *server_host;	/* where backend logins go; "": loopback TCP if the server listens there */
	char	   *ssl_cert_file;	/* TLS with clients; "": the server's when ssl = on */
	char	   *ssl_key_file;
	char	   *ssl_ca_file;	/* client certificates; "": the server's ssl_ca_file */
	int			server_sslmode;	/* the pooler's backend connections: disable, prefer, require */
	char	   *daemon_path;	/* "": pgcarrier in the server's bindir */
	bool		log_connections;
} pgc_settings;

extern pgc_settings pgc_set;

/*
 * Whether a pgcarrier.* line of postgresql.conf had a value PostgreSQL
 * refused at start (it then logged "invalid value for parameter"): the
 * pooler does not start with a setting the DBA did not ask for. A reload
 * that sets it to a good value lifts this (pgc_settings_refused()).
 */
extern bool pgc_settings_refused(char *name, size_t len);

/*
 * The directory of the pooler's Unix socket (pgcarrier.unix_socket_directories,
 * else the server's first), palloc'd; NULL when there is none (supervisor.c).
 */
extern char *pgc_pooler_socket_dir(void);

/* The supervisor background worker's entry point (supervisor.c). */
extern PGDLLEXPORT void pgc_supervisor_main(Datum arg);

#endif
