/*
 * report.c - the in-backend session-state reporter; see report.h.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_namespace.h"
#include "commands/prepare.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/memutils.h"
#include "utils/portal.h"

#include "defaults.h"
#include "report.h"

/*
 * PostgreSQL 15's libpq/libpq.h, whose include of libpq-be.h needs the
 * GSSAPI headers: the two declarations used here, as that header has them.
 */
typedef struct
{
	void		(*comm_reset) (void);
	int			(*flush) (void);
	int			(*flush_if_writable) (void);
	bool		(*is_send_pending) (void);
	int			(*putmessage) (char msgtype, const char *s, size_t len);
	void		(*putmessage_noblock) (char msgtype, const char *s, size_t len);
} PQcommMethods;
extern PGDLLIMPORT const PQcommMethods *PqCommMethods;

/* What pgcarrier reads (src/engine/state.h). */
#define REPORT_GUC "pgcarrier.report"
#define STATE_PARAM "pgcarrier.session_state"
#define RESET_PARAM "pgcarrier.reset"

static bool report_on = false;
bool		pgc_session_report = true;
/* Installed in this backend: the wrapper around its protocol output. */
static const PQcommMethods *prev_comm = NULL;
static PQcommMethods report_comm;
/* Every settable GUC carries GUC_REPORT in this backend (from its first ReadyForQuery on). */
static bool gucs_flagged = false;
static int	gucs_seen = 0;
static uint64 report_serial = 0;

/* Temporary objects: the committed count, and whether this transaction created or dropped anything. */
static int	temp_objects = 0;
static bool temp_dirty = false;
/* Between PRE_COMMIT and COMMIT: the temp namespace's objects, minus ON COMMIT drops. */
typedef struct temp_obj
{
	Oid			classid;
	Oid			objid;
} temp_obj;
static temp_obj *commit_objs = NULL;
static int	commit_nobjs = -1;

/* LISTEN: known state, and whether a LISTEN, UNLISTEN or DISCARD ran since it was read. */
static bool listening = false;
static bool listen_dirty = false;

/* Names of the statements SQL PREPARE made (protocol-level ones are pgcarrier's). */
static List *sql_prepared = NIL;

static ProcessUtility_hook_type prev_process_utility = NULL;
static object_access_hook_type prev_object_access = NULL;

/* ------------------------------------------------------------ settings -- */

/*
 * Give every setting a session can change the GUC_REPORT flag, so that
 * PostgreSQL itself sends a ParameterStatus for each one whose value
 * changed, however it was changed, right before ReadyForQuery. Called at
 * this backend's first ReadyForQuery (after BeginReportingGUCOptions, so
 * the login reports only the usual parameters), and again when modules
 * define new settings. A newly flagged setting that is already set at
 * session level (a placeholder created by SET myapp.x) is reported here.
 */
static void
flag_gucs(bool report_set)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();

	for (int i = 0; i < n; i++)
	{
		struct config_generic *v = vars[i];

		/* Hidden ones (seed, is_superuser...) are not session settings; extension placeholders are. */
		if ((v->flags & GUC_REPORT) || ((v->flags & GUC_NO_SHOW_ALL) && !(v->flags & GUC_CUSTOM_PLACEHOLDER)))
			continue;
		if (v->context != PGC_USERSET && v->context != PGC_SUSET)
			continue;
		/* They describe the current transaction, not the session. */
		if (strncmp(v->name, "transaction_", 12) == 0)
			continue;
		v->flags |= GUC_REPORT;
		if (report_set && v->source == PGC_S_SESSION)
		{
			const char *val = GetConfigOptionByName(v->name, NULL, true);
			StringInfoData buf;

			if (val == NULL)
				continue;
			initStringInfo(&buf);
			pq_sendstring(&buf, v->name);
			pq_sendstring(&buf, val);
			prev_comm->putmessage('S', buf.data, buf.len);
			pfree(buf.data);
		}
	}
	gucs_seen = n;
}

/* ASCII case-insensitive, as guc.c orders its array. */
static int
guc_name_cmp(const char *a, const char *b)
{
	for (;; a++, b++)
	{
		unsigned char ca = (unsigned char) *a, cb = (unsigned char) *b;

		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb)
			return ca - cb;
		if (ca == 0)
			return 0;
	}
}

static struct config_generic *
find_guc(const char *name)
{
	struct config_generic **vars = get_guc_variables();
	int			lo = 0, hi = GetNumConfigOptions() - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = guc_name_cmp(name, vars[mid]->name);

		if (c == 0)
			return vars[mid];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return NULL;
}

/*
 * A ParameterStatus that PostgreSQL sends: a setting's new value. When the
 * value is no longer a session-level one (RESET, the end of SET LOCAL, a
 * function's SET clause undone), pgcarrier is told so right after it:
 * pgcarrier.reset = name.
 */
static void
after_param(const char *body, size_t len)
{
	struct config_generic *v;
	StringInfoData buf;

	if (len == 0 || memchr(body, 0, len) == NULL || strncmp(body, "pgcarrier.", 10) == 0)
		return;
	v = find_guc(body);
	if (v == NULL || v->source == PGC_S_SESSION)
		return;
	initStringInfo(&buf);
	pq_sendstring(&buf, RESET_PARAM);
	pq_sendstring(&buf, body);
	prev_comm->putmessage('S', buf.data, buf.len);
	pfree(buf.data);
}

/* ------------------------------------------------------ pinned state -- */

/* Session-level advisory locks: after the transaction, the only locks left in this backend's lists. */
static bool
holds_advisory_locks(void)
{
	for (int i = 0; i < NUM_LOCK_PARTITIONS; i++)
	{
		SHM_QUEUE  *q = &MyProc->myProcLocks[i];
		SHM_QUEUE  *e;

		if (q->next == q)
			continue;
		for (e = q->next; e != q; e = e->next)
		{
			PROCLOCK   *pl = (PROCLOCK *) ((char *) e - offsetof(PROCLOCK, procLink));

			if (pl->holdMask != 0 && pl->tag.myLock->tag.locktag_type == LOCKTAG_ADVISORY)
				return true;
		}
	}
	return false;
}

/* pg_listening_channels(), called as a set-returning function: does it return a row? */
static bool
listening_now(void)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "pgcarrier report", ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	LOCAL_FCINFO(fcinfo, 0);
	FmgrInfo	flinfo;
	ReturnSetInfo rsi;
	ExprContext *econtext = CreateStandaloneExprContext();
	bool		any;

	fmgr_info(F_PG_LISTENING_CHANNELS, &flinfo);
	memset(&rsi, 0, sizeof(rsi));
	rsi.type = T_ReturnSetInfo;
	rsi.econtext = econtext;
	rsi.allowedModes = SFRM_ValuePerCall;
	rsi.returnMode = SFRM_ValuePerCall;
	rsi.isDone = ExprSingleResult;
	InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, NULL, (Node *) &rsi);
	(void) FunctionCallInvoke(fcinfo);
	any = rsi.isDone != ExprEndResult;
	FreeExprContext(econtext, true);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return any;
}

static int
prepared_count(void)
{
	ListCell   *lc;

	foreach(lc, sql_prepared)
	{
		char	   *name = lfirst(lc);

		if (FetchPreparedStatement(name, false) == NULL)
		{
			sql_prepared = foreach_delete_current(sql_prepared, lc);
			pfree(name);
		}
	}
	return list_length(sql_prepared);
}

static void
forget_prepared(const char *name)
{
	ListCell   *lc;

	foreach(lc, sql_prepared)
	{
		char	   *n = lfirst(lc);

		if (name == NULL || strcmp(n, name) == 0)
		{
			sql_prepared = foreach_delete_current(sql_prepared, lc);
			pfree(n);
		}
	}
}

/*
 * Right before a ReadyForQuery with the session idle: what session state
 * the backend holds, as letters (t temp objects, a advisory locks, l
 * LISTEN, c holdable cursors, p SQL prepared statements). Sent only when
 * there is some: no report means none.
 */
static void
report_state(void)
{
	char		bits[8];
	int			nb = 0;
	char		value[48];
	StringInfoData buf;

	if (temp_objects > 0)
		bits[nb++] = 't';
	if (holds_advisory_locks())
		bits[nb++] = 'a';
	if (listen_dirty)
	{
		listening = listening_now();
		listen_dirty = false;
	}
	if (listening)
		bits[nb++] = 'l';
	if (!ThereAreNoReadyPortals())
		bits[nb++] = 'c';
	if (sql_prepared != NIL && prepared_count() > 0)
		bits[nb++] = 'p';
	if (nb == 0)
		return;
	bits[nb] = 0;
	snprintf(value, sizeof(value), UINT64_FORMAT " %s", ++report_serial, bits);
	initStringInfo(&buf);
	pq_sendstring(&buf, STATE_PARAM);
	pq_sendstring(&buf, value);
	prev_comm->putmessage('S', buf.data, buf.len);
	pfree(buf.data);
}

/* ------------------------------------------------------ the output -- */

static int
report_putmessage(char msgtype, const char *s, size_t len)
{
	if (msgtype == 'S' && gucs_flagged)
	{
		int			r = prev_comm->putmessage(msgtype, s, len);

		after_param(s, len);
		return r;
	}
	if (msgtype == 'Z' && len == 1 && s[0] == 'I')
	{
		if (!gucs_flagged)
		{
			flag_gucs(false);
			gucs_flagged = true;
		}
		else
		{
			if (GetNumConfigOptions() != gucs_seen)
				flag_gucs(true);
			report_state();
			if (pgc_defaults_take_report())
				prev_comm->putmessage('S', PGC_DEFAULTS_PARAM "\0" "on", sizeof(PGC_DEFAULTS_PARAM "\0" "on"));
		}
	}
	return prev_comm->putmessage(msgtype, s, len);
}

static void
report_assign(bool newval, void *extra)
{
	/* Only in a backend that pgcarrier opened (the startup packet), never in direct clients'. */
	if (!newval || prev_comm != NULL || MyBackendType != B_BACKEND || !IsUnderPostmaster)
		return;
	prev_comm = PqCommMethods;
	report_comm = *prev_comm;
	report_comm.putmessage = report_putmessage;
	PqCommMethods = &report_comm;
}

/* ----------------------------------------------------------- hooks -- */

static void
report_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	/* LISTEN, UNLISTEN and DISCARD: the state is read again at the end (an abort undoes them). */
	if (report_on && (IsA(stmt, ListenStmt) || IsA(stmt, UnlistenStmt) || IsA(stmt, DiscardStmt)))
		listen_dirty = true;
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	if (!report_on)
		return;
	/* Done: prepared statements are not transactional. */
	switch (nodeTag(stmt))
	{
		case T_PrepareStmt:
			sql_prepared = lappend(sql_prepared,
								   MemoryContextStrdup(TopMemoryContext, ((PrepareStmt *) stmt)->name));
			break;
		case T_DeallocateStmt:
			forget_prepared(((DeallocateStmt *) stmt)->name);
			break;
		case T_DiscardStmt:
			if (((DiscardStmt *) stmt)->target == DISCARD_ALL || ((DiscardStmt *) stmt)->target == DISCARD_PLANS)
				forget_prepared(NULL);
			break;
		default:
			break;
	}
}

static void
report_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg)
{
	if (report_on && (access == OAT_POST_CREATE || access == OAT_DROP))
	{
		temp_dirty = true;
		if (access == OAT_DROP && commit_nobjs > 0 && subId == 0)
		{
			/* ON COMMIT DROP, after the count. */
			for (int i = 0; i < commit_nobjs; i++)
				if (commit_objs[i].classid == classId && commit_objs[i].objid == objectId)
				{
					commit_objs[i] = commit_objs[--commit_nobjs];
					break;
				}
		}
	}
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
}

/* The objects of this backend's temp namespace, which all depend on it, as they stand before ON COMMIT actions. */
static void
count_temp_objects(void)
{
	Oid			ns, toastns;
	Relation	dep;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	int			cap = 16;

	GetTempNamespaceState(&ns, &toastns);
	commit_nobjs = 0;
	if (!OidIsValid(ns))
		return;
	commit_objs = MemoryContextAlloc(TopTransactionContext, cap * sizeof(temp_obj));
	dep = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(NamespaceRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ns));
	scan = systable_beginscan(dep, DependReferenceIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);

		if (commit_nobjs == cap)
		{
			cap *= 2;
			commit_objs = repalloc(commit_objs, cap * sizeof(temp_obj));
		}
		commit_objs[commit_nobjs].classid = d->classid;
		commit_objs[commit_nobjs].objid = d->objid;
		commit_nobjs++;
	}
	systable_endscan(scan);
	table_close(dep, AccessShareLock);
}

static void
report_xact_callback(XactEvent event, void *arg)
{
	if (!report_on)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (temp_dirty)
				count_temp_objects();
			break;
		case XACT_EVENT_COMMIT:
			if (commit_nobjs >= 0)
				temp_objects = commit_nobjs;
			commit_nobjs = -1;
			commit_objs = NULL;
			temp_dirty = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			/* Catalog changes are undone: the committed count stands. */
			commit_nobjs = -1;
			commit_objs = NULL;
			temp_dirty = false;
			break;
		default:
			break;
	}
}

void
pgc_report_init(void)
{
	DefineCustomBoolVariable(REPORT_GUC,
							 "Report session state changes to the pgcarrier pooler.",
							 "Set by pgcarrier in the startup packet of its server connections.",
							 &report_on,
							 false,
							 PGC_BACKEND,
							 GUC_REPORT | GUC_NOT_IN_SAMPLE,
							 NULL, report_assign, NULL);
	DefineCustomBoolVariable("pgcarrier.session_report",
							 "The pooler's server connections report their own session state.",
							 "Off: the pooler's guard reads the statements and asks the server instead, "
							 "as the standalone daemon does. Applies to new server connections.",
							 &pgc_session_report,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = report_process_utility;
	prev_object_access = object_access_hook;
	object_access_hook = report_object_access;
	RegisterXactCallback(report_xact_callback, NULL);
}
