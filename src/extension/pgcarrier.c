/*
 * pgcarrier.c - _PG_init: the pgcarrier.* settings, the in-backend
 * reporter, the supervisor background worker. See pgcarrier.h.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/varlena.h"

#include "defaults.h"
#include "pgcarrier.h"
#include "report.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

pgc_settings pgc_set;

static const struct config_enum_entry pool_mode_options[] = {
	{"session", PGC_EXT_POOL_SESSION, false},
	{"transaction", PGC_EXT_POOL_TRANSACTION, false},
	{"statement", PGC_EXT_POOL_STATEMENT, false},
	{NULL, 0, false}
};

static const struct config_enum_entry pinning_options[] = {
	{"pin", PGC_EXT_PIN_ALLOW, false},
	{"error", PGC_EXT_PIN_ERROR, false},
	{NULL, 0, false}
};

static const struct config_enum_entry sslmode_options[] = {
	{"disable", PGC_EXT_SSL_DISABLE, false},
	{"prefer", PGC_EXT_SSL_PREFER, false},
	{"require", PGC_EXT_SSL_REQUIRE, false},
	{NULL, 0, false}
};

/* Names of pgcarrier.* settings whose postgresql.conf value PostgreSQL refused at start. */
#define MAX_REFUSED 32
static char *refused[MAX_REFUSED];
static int	n_refused;

/*
 * Values go into the daemon's INI file in double quotes: a line break
 * could add lines of its own there.
 */
static bool
check_one_line(char **newval, void **extra, GucSource source)
{
	if (*newval && strpbrk(*newval, "\r\n") != NULL)
	{
		GUC_check_errdetail("The value must not contain a line break.");
		return false;
	}
	return true;
}

/* One directory (the daemon listens on one Unix socket), absolute. */
static bool
check_socket_dir(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;

	if (!check_one_line(newval, extra, source))
		return false;
	if (v == NULL || v[0] == '\0')
		return true;
	if (strchr(v, ',') != NULL)
	{
		GUC_check_errdetail("pgcarrier listens on one Unix socket directory; name only one.");
		return false;
	}
	if (!is_absolute_path(v))
	{
		GUC_check_errdetail("The directory must be an absolute path.");
		return false;
	}
	return true;
}

/* A comma-separated list of database names (as in postgresql.conf lists). */
static bool
check_databases(char **newval, void **extra, GucSource source)
{
	char	   *raw;
	List	   *names;
	bool		ok;

	if (!check_one_line(newval, extra, source))
		return false;
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	raw = pstrdup(*newval);
	ok = SplitIdentifierString(raw, ',', &names);
	if (!ok)
		GUC_check_errdetail("List syntax is invalid.");
	else
	{
		ListCell   *lc;

		foreach(lc, names)
		{
			const char *n = (const char *) lfirst(lc);

			if (strpbrk(n, " ='\"\\;#") != NULL || strcmp(n, "pgcarrier") == 0)
			{
				GUC_check_errdetail("Database name \"%s\" cannot be pooled by pgcarrier.", n);
				ok = false;
				break;
			}
		}
		list_free(names);
	}
	pfree(raw);
	return ok;
}

static void
define_int(const char *name, const char *desc, int *var, int boot, int min, int max,
		   GucContext ctx, int flags)
{
	DefineCustomIntVariable(name, desc, NULL, var, boot, min, max, ctx, flags, NULL, NULL, NULL);
}

static void
define_settings(void)
{
	DefineCustomBoolVariable("pgcarrier.enabled",
							 "Runs the built-in connection pooler.",
							 "Off stops the pooler at the next reload; on starts it again.",
							 &pgc_set.enabled, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
	define_int("pgcarrier.port", "TCP port (and Unix socket number) the pooler listens on.",
			   &pgc_set.port, 6432, 1, 65535, PGC_POSTMASTER, 0);
	DefineCustomStringVariable("pgcarrier.listen_addresses",
							   "Addresses the pooler listens on; empty: the same as listen_addresses.",
							   NULL, &pgc_set.listen_addresses, "", PGC_POSTMASTER, GUC_LIST_INPUT,
							   check_one_line, NULL, NULL);
	DefineCustomStringVariable("pgcarrier.unix_socket_directories",
							   "Directory of the pooler's Unix socket; empty: the first of unix_socket_directories.",
							   NULL, &pgc_set.unix_socket_directories, "", PGC_POSTMASTER, 0,
							   check_socket_dir, NULL, NULL);
	define_int("pgcarrier.workers", "Worker threads of the pooler; 0: one per core.",
			   &pgc_set.workers, 0, 0, 256, PGC_POSTMASTER, 0);
	DefineCustomEnumVariable("pgcarrier.pool_mode",
							 "When a server connection goes back to the pool: session, transaction or statement.",
							 NULL, &pgc_set.pool_mode, PGC_EXT_POOL_TRANSACTION, pool_mode_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	define_int("pgcarrier.default_pool_size", "Server connections per database and role.",
			   &pgc_set.default_pool_size, 20, 1, 10000, PGC_SIGHUP, 0);
	define_int("pgcarrier.min_pool_size", "Server connections kept open per pool even when idle.",
			   &pgc_set.min_pool_size, 0, 0, 10000, PGC_SIGHUP, 0);
	define_int("pgcarrier.reserve_pool_size", "Extra server connections for a pool whose clients wait.",
			   &pgc_set.reserve_pool_size, 0, 0, 10000, PGC_SIGHUP, 0);
	define_int("pgcarrier.max_client_conn", "Client connections the pooler accepts in all.",
			   &pgc_set.max_client_conn, 100, 1, 1000000, PGC_SIGHUP, 0);
	define_int("pgcarrier.query_wait_timeout", "How long a client waits for a server connection; 0: forever.",
			   &pgc_set.query_wait_timeout, 120 * 1000, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS);
	define_int("pgcarrier.server_idle_timeout", "An idle server connection is closed after this long; 0: never.",
			   &pgc_set.server_idle_timeout, 600 * 1000, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS);
	define_int("pgcarrier.server_lifetime", "A server connection is closed after this long, once free; 0: never.",
			   &pgc_set.server_lifetime, 3600 * 1000, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS);
	define_int("pgcarrier.idle_transaction_timeout",
			   "A client idle in a transaction longer than this is disconnected; 0: never.",
			   &pgc_set.idle_transaction_timeout, 0, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS);
	define_int("pgcarrier.max_prepared_statements",
			   "Protocol-level prepared statements cached per server connection.",
			   &pgc_set.max_prepared_statements, 200, 1, 100000, PGC_SIGHUP, 0);
	define_int("pgcarrier.server_pipeline_depth",
			   "Units of work of different clients in flight on one backend connection at once; 0: off.",
			   &pgc_set.server_pipeline_depth, 0, 0, 64, PGC_SIGHUP, 0);
	define_int("pgcarrier.server_pipeline_max_wait",
			   "A unit is never queued behind one that has run longer than this.",
			   &pgc_set.server_pipeline_max_wait, 2, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS);
	DefineCustomEnumVariable("pgcarrier.session_pinning",
							 "What state that cannot move between server connections does: pin or error.",
							 NULL, &pgc_set.session_pinning, PGC_EXT_PIN_ALLOW, pinning_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	define_int("pgcarrier.stats_listen_port", "Port of the pooler's Prometheus /metrics endpoint; 0: none.",
			   &pgc_set.stats_listen_port, 0, 0, 65535, PGC_POSTMASTER, 0);
	DefineCustomStringVariable("pgcarrier.databases",
							   "Databases the pooler serves (comma-separated); empty: every database.",
							   NULL, &pgc_set.databases, "", PGC_SIGHUP, GUC_LIST_INPUT,
							   check_databases, NULL, NULL);
	DefineCustomStringVariable("pgcarrier.auth_user",
							   "Role the pooler reads role secrets (pg_authid) as; empty: the server's OS user name.",
							   NULL, &pgc_set.auth_user, "", PGC_SIGHUP, 0,
							   check_one_line, NULL, NULL);
	define_int("pgcarrier.auth_query_cache_lifetime",
			   "How long the pooler reuses a role's secret read from pg_authid; 0: read it at each login.",
			   &pgc_set.auth_query_cache_lifetime, 15 * 1000, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS);
	DefineCustomStringVariable("pgcarrier.server_host",
							   "Where the pooler logs in to the server: an address, or a Unix socket directory; "
							   "empty: the loopback address the server listens on, else its Unix socket.",
							   NULL, &pgc_set.server_host, "", PGC_SIGHUP, 0,
							   check_one_line, NULL, NULL);
	DefineCustomStringVariable("pgcarrier.ssl_cert_file",
							   "Certificate the pooler offers TLS clients; empty: the server's ssl_cert_file when ssl is on.",
							   NULL, &pgc_set.ssl_cert_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   check_one_line, NULL, NULL);
	DefineCustomStringVariable("pgcarrier.ssl_key_file",
							   "Private key of pgcarrier.ssl_cert_file; empty: the server's ssl_key_file when ssl is on.",
							   NULL, &pgc_set.ssl_key_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   check_one_line, NULL, NULL);
	DefineCustomStringVariable("pgcarrier.ssl_ca_file",
							   "CA certificates that client certificates must verify against; empty: the server's ssl_ca_file.",
							   NULL, &pgc_set.ssl_ca_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   check_one_line, NULL, NULL);
	DefineCustomEnumVariable("pgcarrier.server_sslmode",
							 "TLS on the pooler's own connections to the server: disable, prefer or require.",
							 "Needed only when pg_hba.conf admits the pooler's backend logins by hostssl lines alone.",
							 &pgc_set.server_sslmode, PGC_EXT_SSL_DISABLE, sslmode_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("pgcarrier.daemon_path",
							   "The pooler's program; empty: pgcarrier in the server's bin directory.",
							   NULL, &pgc_set.daemon_path, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   check_one_line, NULL, NULL);
	DefineCustomBoolVariable("pgcarrier.log_connections",
							 "Logs each client connection and disconnection of the pooler.",
							 NULL, &pgc_set.log_connections, false, PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/* The pgcarrier.* settings of postgresql.conf, as PostgreSQL holds them before we define them. */
static void
note_placeholders(char **names, int *n)
{
	struct config_generic **vars = get_guc_variables();
	int			nvars = GetNumConfigOptions();

	*n = 0;
	for (int i = 0; i < nvars && *n < MAX_REFUSED; i++)
		if ((vars[i]->flags & GUC_CUSTOM_PLACEHOLDER) && strncmp(vars[i]->name, "pgcarrier.", 10) == 0 &&
			vars[i]->source != PGC_S_DEFAULT)
			names[(*n)++] = pstrdup(vars[i]->name);
}

static struct config_generic *
find_setting(const char *name)
{
	struct config_generic **vars = get_guc_variables();
	int			nvars = GetNumConfigOptions();

	for (int i = 0; i < nvars; i++)
		if (strcmp(vars[i]->name, name) == 0)
			return vars[i];
	return NULL;
}

/*
 * A placeholder that is still at its default once defined was refused
 * (PostgreSQL said "invalid value for parameter" as a WARNING). Unknown
 * names (a typo, pgcarrier.prot) stay placeholders: PostgreSQL warns about
 * them itself (MarkGUCPrefixReserved).
 */
static void
note_refused(char **names, int n)
{
	for (int i = 0; i < n; i++)
	{
		struct config_generic *v = find_setting(names[i]);

		if (v && !(v->flags & GUC_CUSTOM_PLACEHOLDER) && v->source == PGC_S_DEFAULT)
		{
			ereport(WARNING,
					(errmsg("pgcarrier: the pooler will not start: postgresql.conf sets \"%s\" to a value PostgreSQL refused",
							names[i]),
					 errhint("Correct it; a reload applies it, or a restart for a setting that needs one.")));
			refused[n_refused++] = names[i];
		}
	}
}

bool
pgc_settings_refused(char *name, size_t len)
{
	int			kept = 0;

	/* A reload that applied a value (from the file, ALTER SYSTEM...) lifts the refusal. */
	for (int i = 0; i < n_refused; i++)
	{
		struct config_generic *v = find_setting(refused[i]);

		if (v && v->source == PGC_S_DEFAULT)
			refused[kept++] = refused[i];
	}
	n_refused = kept;
	if (n_refused > 0 && name)
		strlcpy(name, refused[0], len);
	return n_refused > 0;
}

void
_PG_init(void)
{
	BackgroundWorker worker;
	char	   *placeholders[MAX_REFUSED];
	int			n_placeholders;

	/*
	 * Loaded any other way (LOAD, session_preload_libraries), it does
	 * nothing: a warning, not an error, so that a misplaced line in
	 * session_preload_libraries cannot refuse every login.
	 */
	if (!process_shared_preload_libraries_in_progress)
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgcarrier must be loaded with shared_preload_libraries; loaded otherwise, it does nothing"),
				 errhint("Add pgcarrier to shared_preload_libraries in postgresql.conf and restart the server.")));
		return;
	}

	note_placeholders(placeholders, &n_placeholders);
	define_settings();
	pgc_report_init();
	pgc_defaults_init();
	MarkGUCPrefixReserved("pgcarrier");
	note_refused(placeholders, n_placeholders);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	/* A standby in hot standby serves read-only clients through the pooler too. */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	/* The supervisor itself only exits on a stop, or if something went very wrong. */
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pgcarrier");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pgc_supervisor_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pgcarrier supervisor");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pgcarrier supervisor");
	RegisterBackgroundWorker(&worker);
}
