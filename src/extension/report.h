/*
 * report.h - the in-backend session-state reporter of the pgcarrier
 * extension (PostgreSQL conventions; loaded into every backend through
 * shared_preload_libraries).
 *
 * A backend that pgcarrier connects as a server connection asks for it
 * with the startup parameter pgcarrier.report = on. Such a backend then
 * tells pgcarrier, at the end of each top-level transaction that ran
 * anything able to change its session state, with a ParameterStatus
 * message pgcarrier.session_state (pgcarrier consumes it; no client sees
 * it). "Able to change" is decided by the backend itself, wherever it
 * happens: a utility statement other than the few that cannot (BEGIN,
 * SHOW, FETCH, COPY, ...) and SET LOCAL, run from a client, a function, a
 * trigger or a DO block; set_config(); a session-level advisory lock or
 * unlock function. pgcarrier then reads the state itself from the
 * server's catalogs (its probe); a transaction that does none of these
 * costs one flag test.
 *
 * pgcarrier.report is also a reported parameter, so pgcarrier learns at
 * login that this backend reports (a direct client sees
 * pgcarrier.report = off among its ParameterStatus messages, and ignores
 * it as it ignores any it does not know). A client that sets it itself
 * only gets ParameterStatus messages it does not know: no harm.
 */
#ifndef PGCARRIER_REPORT_H
#define PGCARRIER_REPORT_H

/* Define the GUC and install the hooks; from _PG_init, in the postmaster. */
extern void pgc_report_init(void);

#endif
