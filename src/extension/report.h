/*
 * report.h - the in-backend session-state reporter of the pgcarrier
 * extension (PostgreSQL conventions; loaded into every backend through
 * shared_preload_libraries).
 *
 * A backend that pgcarrier connects as a server connection asks for it
 * with the startup parameter pgcarrier.report = on (its assign hook runs in
 * that backend only: direct clients' backends get nothing of what follows,
 * beyond a flag test in two hooks). Such a backend wraps its protocol
 * output (PqCommMethods, as parallel workers redirect theirs) and:
 *
 *  - at its first ReadyForQuery (after login's own reports), gives every
 *    setting a session can change (user and superuser settings, extension
 *    placeholders; not transaction_*) the GUC_REPORT flag, again for new
 *    ones when modules define more. PostgreSQL then itself sends a
 *    ParameterStatus for each setting whose value changed, however it was
 *    changed, right before ReadyForQuery; a transaction that changes none
 *    sends nothing and costs nothing. After each such message whose
 *    setting is no longer set at session level (RESET, SET LOCAL over, a
 *    function's SET clause undone), it adds pgcarrier.reset = name.
 *  - right before each ReadyForQuery with the session idle, sends
 *    pgcarrier.session_state = "serial letters" if the session holds temp
 *    objects (t), session advisory locks (a), LISTEN channels (l),
 *    holdable cursors (c) or SQL prepared statements (p); nothing when it
 *    holds none. The tests are exact and cheap: the advisory locks are the
 *    only locks left in MyProc's lock lists after a transaction (16 list
 *    heads to look at); holdable cursors are the only portals left
 *    (ThereAreNoReadyPortals); LISTEN is read (pg_listening_channels) only
 *    after a transaction that ran LISTEN, UNLISTEN or DISCARD; temp
 *    objects are counted (pg_depend on the temp namespace, ON COMMIT drops
 *    taken off) only at the commit of a transaction that created or
 *    dropped an object while the session has a temp namespace; SQL
 *    prepared statements are those PREPARE made that still exist.
 *  - right before a ReadyForQuery after its transaction changed the role
 *    or database defaults, pgcarrier.defaults_changed = on (defaults.h).
 *
 * pgcarrier consumes all of these (src/engine/state.h) and forwards only
 * the usual reported parameters to its clients. pgcarrier.report is itself
 * a reported parameter, so pgcarrier learns at login that this backend
 * reports. A client that sets it itself only gets ParameterStatus messages
 * it does not know: no harm.
 */
#ifndef PGCARRIER_REPORT_H
#define PGCARRIER_REPORT_H

/*
 * pgcarrier.session_report (sighup, default on): the pooler asks its new
 * server connections for reports. Off, its guard falls back to the
 * standalone daemon's classifier and probe (for measuring what the report
 * costs).
 */
extern bool pgc_session_report;

/* Define the GUCs and install the hooks; from _PG_init, in the postmaster. */
extern void pgc_report_init(void);

#endif
