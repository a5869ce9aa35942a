/*
 * state_report.c - the built-in way of knowing that session state may have
 * changed: the backend says so itself (see state.h and
 * src/extension/report.c).
 */
#include "state.h"

static bool
report_after_statement(const pgc_client *c, uint32_t flags)
{
	/* The text does not decide: the backend reports whatever it did, in functions too. */
	(void) c;
	(void) flags;
	return false;
}

static bool
report_after_report(const pgc_client *c, const char *value)
{
	(void) c;
	(void) value;
	return true;
}

const pgc_state_source pgc_state_report = {
	.name = "backend report",
	.after_statement = report_after_statement,
	.after_report = report_after_report,
};
