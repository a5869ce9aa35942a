/*
 * show.h - the admin console's SHOW commands as PostgreSQL result sets.
 *
 * Columns follow PgBouncer 1.25's SHOW output (names, order and types, as
 * it sends them: text, int4, int8 or numeric) wherever the meaning is the
 * same, so that programs written for PgBouncer parse them; pgcarrier's own
 * columns come after PgBouncer's. The commands that list clients or
 * servers need a census (census.h) first; the others are answered from
 * the statistics (stats.h), the pools and the configuration at once.
 *
 * Runs on the console client's worker; reads what other threads own only
 * under their locks, or from a complete census.
 */
#ifndef PGC_SHOW_H
#define PGC_SHOW_H

#include <stdbool.h>
#include <stddef.h>

#include "census.h"
#include "core.h"

/* Which SHOW, or -1 for a name that is none; *needs_census says whether it lists clients or servers. */
int pgc_show_lookup(const char *name, bool *needs_census);

/*
 * Write SHOW what's result set (RowDescription, DataRows, CommandComplete
 * "SHOW") into out, from census when it needs one. 0, or -1 with a
 * SQLSTATE and a message (SHOW FDS is not supported).
 */
int pgc_show(pgc_engine *e, int what, const pgc_census *census, pgc_msgbuf *out, char sqlstate[6],
			 char *err, size_t errlen);

#endif
