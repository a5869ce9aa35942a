/*
 * report.c - the in-backend session-state reporter; see report.h.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "storage/ipc.h"
#include "libpq/pqformat.h"
#include "nodes/parsenodes.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"

#include "report.h"

/* What pgcarrier reads (src/engine/state.h). */
#define REPORT_GUC "pgcarrier.report"
#define STATE_PARAM "pgcarrier.session_state"

static bool report_on = false;
/* Something able to change the session state ran in the current transaction. */
static bool state_dirty = false;
/* Counts the reports sent: the value changes each time. */
static uint64 report_serial = 0;

static ProcessUtility_hook_type prev_process_utility = NULL;
static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;

/* Utility statements that leave no session state behind. */
static bool
utility_is_harmless(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_TransactionStmt:
		case T_VariableShowStmt:
		case T_FetchStmt:
		case T_CopyStmt:
		case T_ExplainStmt:
		case T_NotifyStmt:
		case T_LockStmt:
		case T_CheckPointStmt:
		case T_VacuumStmt:
		case T_ConstraintsSetStmt:
		case T_ExecuteStmt:
			return true;
		case T_VariableSetStmt:
			/* SET LOCAL ends with the transaction. */
			return ((VariableSetStmt *) stmt)->is_local;
		default:
			return false;
	}
}

static void
report_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (report_on && !utility_is_harmless(pstmt->utilityStmt))
		state_dirty = true;
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/* Built-in functions that change session state outside any utility statement. */
static bool
function_changes_session(Oid fn_oid)
{
	switch (fn_oid)
	{
		case F_SET_CONFIG:
		case F_PG_ADVISORY_LOCK_INT8:
		case F_PG_ADVISORY_LOCK_SHARED_INT8:
		case F_PG_TRY_ADVISORY_LOCK_INT8:
		case F_PG_TRY_ADVISORY_LOCK_SHARED_INT8:
		case F_PG_ADVISORY_UNLOCK_INT8:
		case F_PG_ADVISORY_UNLOCK_SHARED_INT8:
		case F_PG_ADVISORY_LOCK_INT4_INT4:
		case F_PG_ADVISORY_LOCK_SHARED_INT4_INT4:
		case F_PG_TRY_ADVISORY_LOCK_INT4_INT4:
		case F_PG_TRY_ADVISORY_LOCK_SHARED_INT4_INT4:
		case F_PG_ADVISORY_UNLOCK_INT4_INT4:
		case F_PG_ADVISORY_UNLOCK_SHARED_INT4_INT4:
		case F_PG_ADVISORY_UNLOCK_ALL:
			return true;
		default:
			return false;
	}
}

static bool
report_needs_fmgr_hook(Oid fn_oid)
{
	/* Only in backends that report: elsewhere no function call pays for the hook. */
	if (report_on && function_changes_session(fn_oid))
		return true;
	return prev_needs_fmgr_hook ? prev_needs_fmgr_hook(fn_oid) : false;
}

static void
report_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (event == FHET_START && report_on && function_changes_session(flinfo->fn_oid))
		state_dirty = true;
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, private);
}

/*
 * ParameterStatus pgcarrier.session_state, into the output buffer before the
 * transaction's ReadyForQuery: a new serial, then the names of the custom
 * settings (a.b) this session set that no loaded module defines. Those are
 * in no catalog view, so pgcarrier could not find them by itself.
 */
static void
send_report(void)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	StringInfoData value;
	StringInfoData buf;

	initStringInfo(&value);
	appendStringInfo(&value, UINT64_FORMAT, ++report_serial);
	for (int i = 0; i < n; i++)
	{
		struct config_generic *v = vars[i];

		if ((v->flags & GUC_CUSTOM_PLACEHOLDER) && v->source == PGC_S_SESSION && value.len < 8192)
			appendStringInfo(&value, " %s", v->name);
	}
	pq_beginmessage(&buf, 'S');
	pq_sendstring(&buf, STATE_PARAM);
	pq_sendstring(&buf, value.data);
	pq_endmessage(&buf);
	pfree(value.data);
}

static void
report_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			/* Even an aborted transaction keeps session-level advisory locks it took. */
			if (report_on && state_dirty && whereToSendOutput == DestRemote && !proc_exit_inprogress)
				send_report();
			state_dirty = false;
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
							 NULL, NULL, NULL);
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = report_process_utility;
	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = report_needs_fmgr_hook;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = report_fmgr_hook;
	RegisterXactCallback(report_xact_callback, NULL);
}
