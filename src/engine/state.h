/*
 * state.h - how the session-state guard knows what session state a
 * client holds on its server. One interface, two implementations:
 *
 *  - the classifier (state_lexer.c): the standalone daemon's view. The text
 *    of each statement tells whether it may change session state; whatever
 *    cannot be told counts as a change, and the server is then asked what
 *    is there (the probe, guard.c).
 *  - the backend's own report (state_report.c): for servers with the
 *    pgcarrier extension loaded (src/extension/report.c). Nothing is
 *    guessed and nothing is probed:
 *      - settings: every setting a session can change is a reported one in
 *        such a backend, so PostgreSQL itself sends a ParameterStatus with
 *        the new value of each one that changed, however it changed (SET,
 *        set_config() anywhere, a DO block, a trigger), right before
 *        ReadyForQuery; the backend adds pgcarrier.reset = name when the
 *        value is no longer a session-level one (RESET, a function's SET
 *        clause undone). Only the usual reported parameters reach clients.
 *      - pinned state: right before each ReadyForQuery with the session
 *        idle, pgcarrier.session_state = "serial letters" when the session
 *        holds temp objects (t), session advisory locks (a), LISTEN (l),
 *        holdable cursors (c) or SQL prepared statements (p). No such
 *        report before an idle ReadyForQuery means none of them.
 *      - role and database defaults: pgcarrier.defaults_changed right
 *        before the ReadyForQuery of a transaction that committed ALTER
 *        ROLE/DATABASE ... SET: every server is replaced as it becomes
 *        idle (pgc_control_reconnect_all), before the client hears.
 *
 * The guard picks the implementation per server connection: a server that
 * announced reporting at login (pgcarrier.report = on) is never probed.
 */
#ifndef PGC_STATE_H
#define PGC_STATE_H

#include "core.h"

/* The ParameterStatus names of the in-backend reporter (src/extension/report.c). */
#define PGC_REPORT_REQUEST    "pgcarrier.report"         /* startup parameter asking for reports */
#define PGC_REPORTING_PARAM   PGC_REPORT_REQUEST         /* reported "on" at login: this backend reports */
#define PGC_STATE_PARAM       "pgcarrier.session_state"  /* "serial letters": pinned state the session holds */
#define PGC_RESET_PARAM       "pgcarrier.reset"          /* value: a setting no longer set at session level */
#define PGC_DEFAULTS_PARAM    "pgcarrier.defaults_changed" /* the role or database defaults changed */

typedef struct pgc_state_source {
	const char *name;
	/* A statement with these sqlclass flags runs: does the session need a look afterwards? */
	bool (*after_statement)(const pgc_client *c, uint32_t flags);
	/* The server reported that its session state may have changed: does it need a look? */
	bool (*after_report)(const pgc_client *c, const char *value);
} pgc_state_source;

/* The pinned state (sqlclass flags) in the value of a pgcarrier.session_state report. */
uint32_t pgc_state_report_pins(const char *value);

extern const pgc_state_source pgc_state_lexer;
extern const pgc_state_source pgc_state_report;

/* The implementation for server s. */
static inline const pgc_state_source *
pgc_state_source_of(const pgc_server *s)
{
	return s->reports ? &pgc_state_report : &pgc_state_lexer;
}

#endif
