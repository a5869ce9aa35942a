/*
 * state_report.c - the built-in way of knowing that session state may have
 * changed: the backend says so itself (see state.h and
 * src/extension/report.c).
 */
#include <string.h>

#include "sqlclass.h"
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
	/* The report says what is there: nothing to ask. */
	(void) c;
	(void) value;
	return false;
}

uint32_t
pgc_state_report_pins(const char *value)
{
	const char *p = strchr(value, ' ');
	uint32_t pins = 0;

	if (p == NULL)
		return PGC_SQL_UNKNOWN;     /* not the report's form: be safe */
	for (p++; *p; p++)
		switch (*p)
		{
			case 't': pins |= PGC_SQL_TEMP; break;
			case 'a': pins |= PGC_SQL_ADVISORY; break;
			case 'l': pins |= PGC_SQL_LISTEN; break;
			case 'c': pins |= PGC_SQL_HOLD_CURSOR; break;
			case 'p': pins |= PGC_SQL_PREPARE; break;
			default: pins |= PGC_SQL_UNKNOWN; break;
		}
	return pins;
}

const pgc_state_source pgc_state_report = {
	.name = "backend report",
	.after_statement = report_after_statement,
	.after_report = report_after_report,
};
