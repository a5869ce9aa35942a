/*
 * state.h - how the session-state guard learns that a client's session
 * state on its server may have changed, so that it asks the server what is
 * there now (the probe, guard.c). One interface, two implementations:
 *
 *  - the classifier (state_lexer.c): the standalone daemon's view. The text
 *    of each statement tells whether it may change session state; whatever
 *    cannot be told counts as a change.
 *  - the backend's own report (state_report.c): for servers with the
 *    pgcarrier extension loaded. The backend sends, at the end of each
 *    top-level transaction that ran anything able to change session state
 *    (a utility statement, set_config(), an advisory lock function, from
 *    any function, trigger or DO block), a ParameterStatus that pgcarrier
 *    consumes. Nothing is guessed: no report, no change.
 *
 * The guard picks the implementation per server connection: a server that
 * announced reporting at login is asked only when it reports.
 */
#ifndef PGC_STATE_H
#define PGC_STATE_H

#include "core.h"

/* The ParameterStatus names of the in-backend reporter (src/extension/report.c). */
#define PGC_REPORT_REQUEST    "pgcarrier.report"         /* startup parameter asking for reports */
#define PGC_REPORTING_PARAM   PGC_REPORT_REQUEST         /* reported "on" at login: this backend reports */
#define PGC_STATE_PARAM       "pgcarrier.session_state"  /* a report: its value changes each time */

typedef struct pgc_state_source {
	const char *name;
	/* A statement with these sqlclass flags runs: does the session need a look afterwards? */
	bool (*after_statement)(const pgc_client *c, uint32_t flags);
	/* The server reported that its session state may have changed: does it need a look? */
	bool (*after_report)(const pgc_client *c, const char *value);
} pgc_state_source;

extern const pgc_state_source pgc_state_lexer;
extern const pgc_state_source pgc_state_report;

/* The implementation for server s. */
static inline const pgc_state_source *
pgc_state_source_of(const pgc_server *s)
{
	return s->reports ? &pgc_state_report : &pgc_state_lexer;
}

#endif
