/*
 * engine.h - the pooling engine as a whole: what the daemon (and, later, the
 * PostgreSQL extension's supervisor) calls.
 *
 * Contract:
 *  - pgc_engine_start() opens the listeners (failing early, with a message,
 *    if it cannot) and starts cfg->workers threads (0 = number of cores).
 *    The engine keeps cfg; the caller must not free it.
 *  - pgc_engine_reload() swaps in a new config (the engine takes it) and
 *    refreshes every pool; listeners are not reopened.
 *  - pgc_engine_shutdown() asks for a graceful stop: no new clients, clients
 *    leave at their next transaction boundary. pgc_engine_running() turns
 *    false when all workers have finished; pgc_engine_free() joins and frees.
 */
#ifndef PGC_ENGINE_H
#define PGC_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

int pgc_engine_start(pgc_config *cfg, char *err, size_t errlen);
void pgc_engine_reload(pgc_config *cfg);
void pgc_engine_shutdown(void);
bool pgc_engine_running(void);
void pgc_engine_free(void);
/* Remove the Unix socket file (also on an immediate exit). */
void pgc_engine_unlink_socket(void);

#endif
