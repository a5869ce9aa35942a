/*
 * sqlapi.c - the SQL interface of the built-in pooler (docs/builtin.md,
 * "SQL interface"): pgcarrier.show(what) and the views on it, and
 * pgcarrier.pause/resume/reconnect/kill_client.
 *
 * Each call connects with libpq to the pooler's own admin console, on its
 * Unix socket (the daemon runs with admin_peer_same_uid = 1: a peer whose
 * SO_PEERCRED uid is the daemon's, which a backend's is, is an admin), runs
 * one console command, and closes the connection. The privileges are
 * checked here, in the backend, before connecting: superusers and members
 * of pgcarrier_admin may do everything, members of pg_monitor may read
 * (show). Only libpq is linked, as dblink and postgres_fdw do; nothing of
 * the engine (it links libpg_query, whose symbols clash with the server's).
 *
 * libpq is driven asynchronously, waiting on the backend's latch, so that
 * a cancel, statement_timeout or the postmaster's death interrupt a wait
 * (a PAUSE waits for running transactions); the connection is closed on
 * every path (PG_FINALLY).
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"

#include "pgcarrier.h"

#define ADMIN_ROLE "pgcarrier_admin"
/* How long the console's login may take (a local socket: normally at once). */
#define CONNECT_TIMEOUT_MS 10000

PG_FUNCTION_INFO_V1(pgcarrier_show);
PG_FUNCTION_INFO_V1(pgcarrier_pause);
PG_FUNCTION_INFO_V1(pgcarrier_wait_close);
PG_FUNCTION_INFO_V1(pgcarrier_disable);
PG_FUNCTION_INFO_V1(pgcarrier_enable);
PG_FUNCTION_INFO_V1(pgcarrier_kill);
PG_FUNCTION_INFO_V1(pgcarrier_resume);
PG_FUNCTION_INFO_V1(pgcarrier_reconnect);
PG_FUNCTION_INFO_V1(pgcarrier_kill_client);

/*
 * Superusers and members of pgcarrier_admin (with its privileges: INHERIT)
 * may do everything; for reading, members of pg_monitor too. Checked even
 * though EXECUTE is granted only to those roles, so that a GRANT to PUBLIC
 * by mistake gives nobody the pooler.
 */
static void
check_privilege(const char *what, bool read_only)
{
	Oid			me = GetUserId();
	Oid			admin = get_role_oid(ADMIN_ROLE, true);

	if (superuser_arg(me))
		return;
	if (OidIsValid(admin) && has_privs_of_role(me, admin))
		return;
	if (read_only && has_privs_of_role(me, ROLE_PG_MONITOR))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for %s", what),
			 read_only ?
			 errdetail("Only superusers and members of roles pgcarrier_admin or pg_monitor may read the pooler's state.") :
			 errdetail("Only superusers and members of role pgcarrier_admin may control the pooler.")));
}

/*
 * Wait for the socket, as long as the backend is not interrupted
 * (CHECK_FOR_INTERRUPTS may not return); timeout_ms -1: no timeout. False
 * when the time ran out.
 */
static bool
wait_socket(PGconn *conn, bool write, long timeout_ms)
{
	int			rc = WaitLatchOrSocket(MyLatch,
									   WL_LATCH_SET | WL_EXIT_ON_PM_DEATH |
									   (timeout_ms >= 0 ? WL_TIMEOUT : 0) |
									   (write ? WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE),
									   PQsocket(conn), timeout_ms, PG_WAIT_EXTENSION);

	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	return !(rc & WL_TIMEOUT);
}

static void
connect_failed(PGconn *conn)
{
	char	   *msg = pchomp(PQerrorMessage(conn));

	ereport(ERROR,
			(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
			 errmsg("pgcarrier: could not connect to the pooler's admin console"),
			 errdetail_internal("%s", msg),
			 errhint("Is the pooler running? The server log says why it is not (its lines start with \"pgcarrier:\").")));
}

/* Log in to the console; *conn is set at once, so that the caller closes it on every path. */
static void
console_connect(PGconn *volatile *conn)
{
	const char *keys[8];
	const char *vals[8];
	char		port[16];
	char	   *dir;
	TimestampTz deadline;

	/* The settings are defined only where shared_preload_libraries loaded us (pgcarrier.port >= 1). */
	if (pgc_set.port == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgcarrier: the pooler is not running: pgcarrier is not in shared_preload_libraries"),
				 errhint("Add pgcarrier to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (!pgc_set.enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgcarrier: the pooler is not running: pgcarrier.enabled is off")));
	dir = pgc_pooler_socket_dir();
	if (dir == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgcarrier: the pooler has no Unix socket, and the SQL interface reaches it there"),
				 errhint("Set pgcarrier.unix_socket_directories, or the server's unix_socket_directories.")));
	snprintf(port, sizeof(port), "%d", pgc_set.port);
	keys[0] = "host", vals[0] = dir;
	keys[1] = "port", vals[1] = port;
	keys[2] = "dbname", vals[2] = "pgcarrier";
	/* who asks: the console's log and SHOW CLIENTS name the role */
	keys[3] = "user", vals[3] = GetUserNameFromId(GetUserId(), false);
	keys[4] = "application_name", vals[4] = "pgcarrier SQL interface";
	keys[5] = "gssencmode", vals[5] = "disable";
	keys[6] = NULL, vals[6] = NULL;

	*conn = PQconnectStartParams(keys, vals, 0);
	if (*conn == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (PQstatus(*conn) == CONNECTION_BAD)
		connect_failed(*conn);
	/* libpq's connect_timeout is for its blocking calls: ours is the deadline here */
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), CONNECT_TIMEOUT_MS);
	for (PostgresPollingStatusType st = PGRES_POLLING_WRITING; st != PGRES_POLLING_OK;)
	{
		long		left = (long) ((deadline - GetCurrentTimestamp()) / 1000);

		if (left <= 0 || !wait_socket(*conn, st == PGRES_POLLING_WRITING, left))
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("pgcarrier: could not connect to the pooler's admin console"),
					 errdetail("The pooler did not answer within %d s.", CONNECT_TIMEOUT_MS / 1000)));
		st = PQconnectPoll(*conn);
		if (st == PGRES_POLLING_FAILED)
			connect_failed(*conn);
	}
}

/* The console's error, passed on with its SQLSTATE. */
static void
console_error(const PGresult *res, const char *command)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	int			code = ERRCODE_CONNECTION_FAILURE;

	if (state && strlen(state) == 5)
		code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
	ereport(ERROR,
			(errcode(code),
			 errmsg("%s", msg ? msg : pchomp(PQresultErrorMessage(res))),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 errcontext("pgcarrier admin console command: %s", command)));
}

/*
 * Run one console command and return its result (PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK) through *res; errors are raised. *conn and *res are the
 * caller's to free on every path.
 */
static void
console_run(PGconn *volatile *conn, PGresult *volatile *res, const char *command)
{
	PGresult   *r;

	console_connect(conn);
	if (!PQsendQuery(*conn, command))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("pgcarrier: could not send a command to the pooler's admin console"),
				 errdetail_internal("%s", pchomp(PQerrorMessage(*conn)))));
	for (;;)
	{
		while (PQisBusy(*conn))
		{
			(void) wait_socket(*conn, false, -1L);
			if (!PQconsumeInput(*conn))
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("pgcarrier: lost the connection to the pooler's admin console"),
						 errdetail_internal("%s", pchomp(PQerrorMessage(*conn))),
						 errcontext("pgcarrier admin console command: %s", command)));
		}
		r = PQgetResult(*conn);
		if (r == NULL)
			break;
		if (*res == NULL)
			*res = r;
		else
			PQclear(r);			/* one command, one result: nothing else is expected */
	}
	if (*res == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("pgcarrier: the pooler's admin console sent no result"),
				 errcontext("pgcarrier admin console command: %s", command)));
	if (PQresultStatus(*res) == PGRES_FATAL_ERROR)
		console_error(*res, command);
	if (PQresultStatus(*res) != PGRES_COMMAND_OK && PQresultStatus(*res) != PGRES_TUPLES_OK)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("pgcarrier: unexpected result from the pooler's admin console: %s",
						PQresStatus(PQresultStatus(*res))),
				 errcontext("pgcarrier admin console command: %s", command)));
}

/* The result's rows into the SRF's tuplestore, columns matched by name (the console's order may grow). */
static void
store_rows(ReturnSetInfo *rsinfo, const PGresult *res, const char *what)
{
	TupleDesc	desc = rsinfo->setDesc;
	AttInMetadata *meta = TupleDescGetAttInMetadata(desc);
	int		   *src = palloc(sizeof(int) * desc->natts);
	char	  **values = palloc(sizeof(char *) * desc->natts);
	int			nfields = PQnfields(res);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		src[i] = -1;
		if (att->attisdropped)
			continue;
		for (int f = 0; f < nfields; f++)
			if (strcmp(PQfname(res, f), NameStr(att->attname)) == 0)
				src[i] = f;
		if (src[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("pgcarrier: the pooler's SHOW %s has no column \"%s\"", what, NameStr(att->attname))));
	}
	for (int row = 0; row < PQntuples(res); row++)
	{
		HeapTuple	tuple;

		for (int i = 0; i < desc->natts; i++)
		{
			const char *v;

			if (src[i] < 0 || PQgetisnull(res, row, src[i]))
			{
				values[i] = NULL;
				continue;
			}
			v = PQgetvalue(res, row, src[i]);
			/* the console speaks UTF8 */
			values[i] = pg_any_to_server(v, PQgetlength(res, row, src[i]), PG_UTF8);
		}
		tuple = BuildTupleFromCStrings(meta, values);
		tuplestore_puttuple(rsinfo->setResult, tuple);
		heap_freetuple(tuple);
	}
}

/*
 * pgcarrier.show(what text) RETURNS SETOF record: the console's SHOW what,
 * with a column definition list naming the columns wanted (the views).
 */
Datum
pgcarrier_show(PG_FUNCTION_ARGS)
{
	char	   *what = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PGconn	   *volatile conn = NULL;
	PGresult   *volatile res = NULL;
	char	   *command;

	check_privilege("pgcarrier.show", true);
	/* one word: nothing else reaches the console (no ';', no second command) */
	if (what[0] == '\0' || strlen(what) > 32 || strspn(what, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_") != strlen(what))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid SHOW name: \"%s\"", what),
				 errhint("A name that SHOW HELP lists, such as POOLS.")));
	command = psprintf("SHOW %s", what);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	PG_TRY();
	{
		console_run(&conn, &res, command);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("pgcarrier: the pooler's SHOW %s returned no rows", what)));
		store_rows(rsinfo, res, what);
	}
	PG_FINALLY();
	{
		if (res)
			PQclear(res);
		if (conn)
			PQfinish(conn);
	}
	PG_END_TRY();
	return (Datum) 0;
}

/* A console command that returns no rows. */
static void
control(const char *fname, const char *command)
{
	PGconn	   *volatile conn = NULL;
	PGresult   *volatile res = NULL;

	check_privilege(fname, false);
	PG_TRY();
	{
		console_run(&conn, &res, command);
	}
	PG_FINALLY();
	{
		if (res)
			PQclear(res);
		if (conn)
			PQfinish(conn);
	}
	PG_END_TRY();
}

/* CMD, or CMD "db" (a quoted identifier for the console: any name, and nothing after it). */
static char *
db_command(const char *cmd, FunctionCallInfo fcinfo)
{
	StringInfoData b;
	char	   *db;

	if (PG_ARGISNULL(0))
		return pstrdup(cmd);
	db = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (db[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the database name must not be empty"),
				 errhint("NULL (the default) means every database.")));
	initStringInfo(&b);
	appendStringInfo(&b, "%s \"", cmd);
	for (const char *p = db; *p; p++)
	{
		if (*p == '"')
			appendStringInfoChar(&b, '"');
		appendStringInfoChar(&b, *p);
	}
	appendStringInfoChar(&b, '"');
	return b.data;
}

/*
 * A command that waits for server connections to be released or closed
 * cannot run in a backend of the pooler's (its server connections set
 * pgcarrier.report, report.h): it would wait for this very transaction to
 * end, and that ends only when the command is done.
 */
static void
refuse_through_the_pooler(const char *fname, const char *command)
{
	const char *report = GetConfigOption("pgcarrier.report", true, false);

	if (report && strcmp(report, "on") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s() cannot run through the pooler", fname),
				 errdetail("This session is one of the pooler's server connections: %s would wait for it.",
						   command),
				 errhint("Connect to the server's own port for this.")));
}

Datum
pgcarrier_pause(PG_FUNCTION_ARGS)
{
	refuse_through_the_pooler("pgcarrier.pause", "PAUSE");
	control("pgcarrier.pause", db_command("PAUSE", fcinfo));
	PG_RETURN_VOID();
}

Datum
pgcarrier_wait_close(PG_FUNCTION_ARGS)
{
	refuse_through_the_pooler("pgcarrier.wait_close", "WAIT_CLOSE");
	control("pgcarrier.wait_close", db_command("WAIT_CLOSE", fcinfo));
	PG_RETURN_VOID();
}

/*
 * pgcarrier.name(db text): the console's CMD [db] (db NULL: every database
 * where the function allows NULL), for commands that need no more checks.
 */
#define DB_COMMAND_FUNCTION(name, CMD) \
	Datum \
	pgcarrier_##name(PG_FUNCTION_ARGS) \
	{ \
		control("pgcarrier." #name, db_command(#CMD, fcinfo)); \
		PG_RETURN_VOID(); \
	}

DB_COMMAND_FUNCTION(disable, DISABLE)

DB_COMMAND_FUNCTION(enable, ENABLE)

DB_COMMAND_FUNCTION(kill, KILL)

DB_COMMAND_FUNCTION(resume, RESUME)

DB_COMMAND_FUNCTION(reconnect, RECONNECT)

Datum
pgcarrier_kill_client(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);

	if (id < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid client id: " INT64_FORMAT, id),
				 errhint("The id is pgcarrier.clients' id column.")));
	control("pgcarrier.kill_client", psprintf("KILL_CLIENT " INT64_FORMAT, id));
	PG_RETURN_VOID();
}
