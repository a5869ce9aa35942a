/*
 * state_lexer.c - the standalone daemon's way of knowing that session state
 * may have changed: the SQL classifier's flags (see state.h).
 */
#include "sqlclass.h"
#include "state.h"

/* Flags after which the server is asked what session state it holds. */
#define PROBE_FLAGS (PGC_SQL_PINNED | PGC_SQL_SETTING | PGC_SQL_DISCARD_ALL)

static bool
lexer_after_statement(const pgc_client *c, uint32_t flags)
{
	/* A pinned client is looked at again after anything that may release its state. */
	return (flags & PROBE_FLAGS) || (c->guard.pinned && (flags & ~PGC_SQL_INFO));
}

static bool
lexer_after_report(const pgc_client *c, const char *value)
{
	(void) c;
	(void) value;
	return false;               /* this server does not report */
}

const pgc_state_source pgc_state_lexer = {
	.name = "classifier",
	.after_statement = lexer_after_statement,
	.after_report = lexer_after_report,
};
