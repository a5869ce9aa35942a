/*
 * engine.h - the pooling engine as a whole: what the daemon (and, later, the
 * PostgreSQL extension's supervisor) calls.
 *
 * Contract:
 *  - pgc_engine_open() opens the listeners (failing early, with a message,
 *    if it cannot) and prepares cfg->workers event loops (0 = number of
 *    cores); no thread runs yet, so the caller may still drop privileges.
 *    It refuses a Unix socket or TCP port that someone else uses: the Unix
 *    socket gets a lock file next to it (".s.PGSQL.<port>.lock", the pid on
 *    its first line, as PostgreSQL's), one of a live process refuses the
 *    start, one of a dead process is replaced; a socket file someone
 *    listens on, or a file that is not a socket, is refused too; a TCP
 *    address someone listens on is refused (our SO_REUSEPORT sockets
 *    would share it silently). The engine keeps cfg; the caller must not
 *    free it. pgc_engine_run() starts the threads.
 *    pgc_engine_start() is both, for callers with nothing to do between.
 *  - After a failed open, pgc_engine_unlink_socket() removes what open made.
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
#include <sys/types.h>

#include "config.h"

int pgc_engine_open(pgc_config *cfg, char *err, size_t errlen);
int pgc_engine_run(char *err, size_t errlen);
int pgc_engine_start(pgc_config *cfg, char *err, size_t errlen);
void pgc_engine_reload(pgc_config *cfg);
void pgc_engine_shutdown(void);
bool pgc_engine_running(void);
void pgc_engine_free(void);
/*
 * Remove the Unix socket and its lock file, if they are still the ones we
 * made (also on an immediate exit, and after a failed open).
 */
void pgc_engine_unlink_socket(void);
/*
 * An immediate exit: stop listening now (shutdown(2) of every listening
 * socket). With io_uring, the kernel lets go of the files a ring's requests
 * hold only after the process is gone, asynchronously: without this the
 * port would still be taken, for a moment, when a restart binds it.
 */
void pgc_engine_stop_listening_now(void);
/* Give the Unix socket and its lock file to uid/gid (before dropping root). 0, or -1 with err. */
int pgc_engine_give_files(uid_t uid, gid_t gid, char *err, size_t errlen);
/* Touch the lock file, so that cleaners of old files in /tmp leave it alone; call now and then. */
void pgc_engine_touch_files(void);

/*
 * Lock files and pidfiles. pgc_lockfile_create() makes path (mode) holding
 * our pid on its first line, then text (may be NULL). One that holds the pid
 * of a dead process (or our own or our parent's: left from before a reboot
 * that reused the number) is replaced. One of a running process is left
 * alone: -1 with *owner = that pid and a message naming the file and the
 * pid; other failures (unreadable, no pid in it) are -1 with *owner = 0.
 * pgc_lockfile_remove() removes path only while it holds our pid.
 */
int pgc_lockfile_create(const char *path, mode_t mode, const char *text, pid_t *owner,
						char *err, size_t errlen);
void pgc_lockfile_remove(const char *path);

/*
 * Reloads the admin console asks for (reload.h). The embedding program
 * sets a hook that makes its own thread reload the configuration soon, as
 * for SIGHUP (then calls pgc_engine_reload), and tells the engine when
 * the file could not be loaded, with the message. Without a hook the
 * console's RELOAD and SET fail with a clear error.
 */
void pgc_engine_set_reload_hook(void (*hook)(void));
void pgc_engine_reload_failed(const char *err);

/*
 * The role or database defaults changed (the extension's supervisor says so
 * on the --parent-fd pipe): every server connection is replaced as it
 * becomes idle (control.h, pgc_control_reconnect_all).
 */
void pgc_engine_defaults_changed(void);

/* Wake every worker now (their tick acts on what the DBA asked, control.c). */
struct pgc_engine;
void pgc_engine_wake_all(struct pgc_engine *e);

#endif
