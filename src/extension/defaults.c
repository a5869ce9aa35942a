/*
 * defaults.c - watching the role and database defaults; see defaults.h.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"

#include "defaults.h"

typedef struct defaults_shared
{
	pg_atomic_uint64 generation;	/* committed changes of the defaults */
	Latch	   *supervisor_latch;	/* set at each; NULL while there is no supervisor */
} defaults_shared;

static defaults_shared *shared = NULL;

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* This backend's transaction ran ALTER ROLE/DATABASE ... SET. */
static bool changed_in_xact = false;
/* A committed change of this backend's not yet reported to the pooler. */
static bool report_pending = false;
/* The supervisor's view: the generation it last told the pooler about. */
static uint64 supervisor_seen = 0;
static bool supervisor_started = false;

static void
defaults_shmem_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(MAXALIGN(sizeof(defaults_shared)));
}

static void
defaults_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pgcarrier defaults", sizeof(defaults_shared), &found);
	if (!found)
	{
		pg_atomic_init_u64(&shared->generation, 0);
		shared->supervisor_latch = NULL;
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
defaults_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						 ProcessUtilityContext context, ParamListInfo params,
						 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	/* Done without an error: it counts if its transaction commits. */
	if (IsA(stmt, AlterRoleSetStmt) || IsA(stmt, AlterDatabaseSetStmt))
		changed_in_xact = true;
}

static void
defaults_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (changed_in_xact && shared != NULL)
			{
				Latch	   *latch;

				pg_atomic_fetch_add_u64(&shared->generation, 1);
				/* A stale pointer after the supervisor left only wakes a latch for nothing. */
				latch = shared->supervisor_latch;
				if (latch != NULL)
					SetLatch(latch);
				report_pending = true;
			}
			changed_in_xact = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			changed_in_xact = false;
			break;
		default:
			break;
	}
}

void
pgc_defaults_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = defaults_shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = defaults_shmem_startup;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = defaults_process_utility;
	RegisterXactCallback(defaults_xact_callback, NULL);
}

bool
pgc_defaults_changed(void)
{
	uint64		now;

	if (shared == NULL)
		return false;
	if (!supervisor_started)
	{
		shared->supervisor_latch = MyLatch;
		pg_memory_barrier();
		supervisor_seen = pg_atomic_read_u64(&shared->generation);
		supervisor_started = true;
		return false;
	}
	now = pg_atomic_read_u64(&shared->generation);
	if (now == supervisor_seen)
		return false;
	supervisor_seen = now;
	return true;
}

void
pgc_defaults_forget_supervisor(void)
{
	if (shared != NULL && supervisor_started)
		shared->supervisor_latch = NULL;
}

bool
pgc_defaults_take_report(void)
{
	bool		r = report_pending;

	report_pending = false;
	return r;
}
