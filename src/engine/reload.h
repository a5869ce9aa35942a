/*
 * reload.h - the reloads the admin console asks for: RELOAD, and SET of a
 * setting.
 *
 * The engine reads no file on a worker thread: the embedding program (the
 * daemon) sets a hook (pgc_engine_set_reload_hook, engine.h) that makes its
 * own thread reload soon, as for SIGHUP, and reports a file it could not
 * load (pgc_engine_reload_failed). A reload then applies, on top of the
 * file, every value SET since the last RELOAD, in order; a RELOAD, or a
 * SIGHUP nobody on the console asked for, drops them (the file's values
 * win, as with PgBouncer). So SET also takes in what was changed in the
 * file since the last reload.
 *
 * Each request gets a ticket; the console polls pgc_reload_status on its
 * worker's tick and answers the client when the reload that served it is
 * done. Any thread; nothing here waits.
 */
#ifndef PGC_RELOAD_H
#define PGC_RELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/*
 * Ask for a reload: RELOAD when key is NULL, else SET key = value (value
 * as the file would say it). 0 with *ticket, -1 with err when nobody can
 * reload (no hook).
 */
int pgc_reload_ask(const char *key, const char *value, uint64_t *ticket, char *err, size_t errlen);
/* 1 done, 0 not yet, -1 failed (the reason in err). */
int pgc_reload_status(uint64_t ticket, char *err, size_t errlen);

/* engine.c: cfg is about to replace the running config: apply the SET values to it. */
void pgc_reload_prepare(pgc_config *cfg);
/* engine.c: cfg is running now. */
void pgc_reload_finish(const pgc_config *cfg);

#endif
