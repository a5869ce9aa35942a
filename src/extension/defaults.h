/*
 * defaults.h - watching the role and database defaults (ALTER ROLE ... SET,
 * ALTER DATABASE ... SET) for the built-in pooler (PostgreSQL conventions).
 *
 * A new session starts with the defaults pg_db_role_setting holds when it
 * logs in. A pooled backend was logged in earlier: after a change, a new
 * client given it would run with the old defaults, which a direct
 * connection never does. So every backend (direct clients' too) notes when
 * a transaction that ran ALTER ROLE/DATABASE ... SET (or RESET) commits:
 *
 *  - it increments a generation counter in shared memory and sets the
 *    supervisor's latch; the supervisor then tells the pooler (one byte on
 *    the pipe the daemon watches), which replaces every server connection
 *    as it becomes idle (RECONNECT): clients that come afterwards get
 *    backends logged in after the change. The pooler reads the pipe every
 *    200 ms, so a change made on a direct connection reaches it within
 *    that; an idle client's next transaction is affected as soon as it has.
 *  - in a backend of the pooler's own (report.h), it also reports
 *    pgcarrier.defaults_changed right before its ReadyForQuery: the pooler
 *    replaces its servers before the client that made the change hears
 *    that it is done, so nothing the client does next can get a backend
 *    with the old defaults.
 *
 * A change undone (ROLLBACK) changes nothing; one in a subtransaction
 * rolled back later still counts (a needless reconnect, never a missed one).
 */
#ifndef PGCARRIER_DEFAULTS_H
#define PGCARRIER_DEFAULTS_H

/* What the pooler reads (src/engine/state.h, src/daemon/main.c). */
#define PGC_DEFAULTS_PARAM "pgcarrier.defaults_changed"
#define PGC_PARENT_DEFAULTS_CHANGED 'D'		/* a byte on the --parent-fd pipe */

/* Ask for the shared memory and install the hooks; from _PG_init, in the postmaster. */
extern void pgc_defaults_init(void);

/*
 * In the supervisor: whether the defaults changed since the last call
 * (the first call answers false and sets its starting point). It also
 * makes the supervisor's latch the one a change sets.
 */
extern bool pgc_defaults_changed(void);

/* In the supervisor, on exit: no backend sets its latch any more. */
extern void pgc_defaults_forget_supervisor(void);

/*
 * In a backend: whether a committed transaction of its own changed the
 * defaults since the last call (report.c then tells the pooler).
 */
extern bool pgc_defaults_take_report(void);

#endif
