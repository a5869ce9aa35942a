/*
 * guard.h - the session-state guard: transaction pooling that keeps session
 * semantics (see DESIGN.md, "The session-state guard").
 *
 * It acts on the messages of a guarded client (transaction or statement
 * mode with session_guard on) through the relay's cursor API (relay.h); it
 * never moves bytes itself. What it does:
 *
 *  - Prepared statements. The client's named statements are renamed to
 *    pgcarrier's per-pool names (stmt.h), prepared again in front of a Bind
 *    or Describe on a server that lacks them, and answered by pgcarrier when
 *    the server already has them. A statement is shared by the clients of a
 *    pool only where it means the same for all of them: the key holds the
 *    role, search_path and the DDL epoch of the database; a client whose
 *    session may make the text mean something else (temporary objects,
 *    pg_temp in search_path, settings changed in the transaction) gets
 *    statements of its own. The unnamed statement is tracked too, and
 *    parsed again wherever the client's next Bind or Describe lands.
 *  - Statement text. Each simple Query and Parse goes through the SQL
 *    classifier (sqlclass.h). Statements that may change session state set
 *    flags; with session_pinning = error, statements that would pin the
 *    client are replaced by one that raises 0A000 on the server, so that
 *    the transaction fails exactly as any error would fail it, and after a
 *    statement whose effect cannot be told the client's next message waits
 *    until the server has been asked (the barrier).
 *  - The probe. At the end of a transaction whose statements set a flag,
 *    the guard asks the server, with one query, which session state really
 *    is there (session-level settings, the role; temp tables, advisory
 *    locks, LISTEN, holdable cursors, SQL prepared statements, a changed
 *    session authorization). Settings become the client's, to be replayed
 *    on its next server; any of the others pins the client to this server
 *    until a later probe finds them gone.
 *  - Sequences. currval() and lastval() read state of the backend: a client
 *    never reads one that another client left (the server's sequence state
 *    is discarded first), and a read whose value is on another server
 *    connection is refused with a clear error.
 *
 * All functions run on the client's worker with the server linked to it.
 */
#ifndef PGC_GUARD_H
#define PGC_GUARD_H

#include "core.h"
#include "relay.h"

typedef enum pgc_guard_result {
	PGC_GUARD_PASS,           /* the relay does its default with the message */
	PGC_GUARD_DONE,           /* the guard dealt with the message; go on with the next */
	PGC_GUARD_WAIT,           /* more bytes, or room to write, are needed first */
	PGC_GUARD_FAIL,           /* the server misbehaved: it must be closed */
	PGC_GUARD_CLOSED          /* the client was closed: touch nothing */
} pgc_guard_result;

/* Whether a client of pool p is guarded under the current configuration. */
bool pgc_guard_wanted(const pgc_pool *p);
/*
 * Pipelining (pipeline.h): may c's unit, the whole messages m[0..n) (one
 * Query, or Parse of the unnamed statement, Bind, Describe of a portal
 * and Execute ending in Sync), be sent behind another client's unit? Only
 * reads that touch no session state, of statements c has, from a client
 * with nothing pending in the guard.
 */
bool pgc_guard_pipelinable(const pgc_client *c, const uint8_t *m, size_t n);
/* c was linked to s. */
void pgc_guard_attach(pgc_client *c, pgc_server *s);
/* A client message (outside COPY) is at the cursor. */
pgc_guard_result pgc_guard_client_msg(pgc_client *c, pgc_server *s, pgc_cursor *cur);
/*
 * A simple Query of a client that is not guarded (session mode): RESET and
 * DISCARD ALL still go back to the client's startup values.
 */
pgc_guard_result pgc_guard_unguarded_query(pgc_client *c, pgc_server *s, pgc_cursor *cur);
/* A server answer to the client's entry p is at the cursor (not ReadyForQuery). */
pgc_guard_result pgc_guard_server_msg(pgc_client *c, pgc_server *s, pgc_pending *p, pgc_cursor *cur);
/* A server answer to the guard's own entry p (the probe), ReadyForQuery included. */
pgc_guard_result pgc_guard_pooler_msg(pgc_client *c, pgc_server *s, pgc_pending *p, pgc_cursor *cur);
/* Entry p leaves the in-flight queue; failed: the server did not do it. */
void pgc_guard_entry_done(pgc_client *c, pgc_server *s, pgc_pending *p, bool failed);
/* The backend of s reported that its session state may have changed (state.h). */
void pgc_guard_backend_report(pgc_client *c, pgc_server *s, const char *value);
/* A ReadyForQuery with this status is about to reach the client. */
void pgc_guard_ready(pgc_client *c, pgc_server *s, char status);

typedef enum pgc_guard_hold {
	PGC_HOLD_RELEASE,         /* s may go back to the pool (at a barrier: go on) */
	PGC_HOLD_PROBING,         /* a probe is on its way to s: write it, keep s */
	PGC_HOLD_KEEP,            /* the client is pinned: keep s */
	PGC_HOLD_CLOSED           /* the client was refused and closed */
} pgc_guard_hold;

/* The transaction is over and nothing is in flight: may s go back? */
pgc_guard_hold pgc_guard_keep_server(pgc_client *c, pgc_server *s);
/* Nothing is in flight and the barrier is up: look at the session now. */
pgc_guard_hold pgc_guard_at_barrier(pgc_client *c, pgc_server *s);
/* s leaves c other than by a clean release (client gone, refusal): make sure it is cleaned. */
void pgc_guard_detach(pgc_client *c, pgc_server *s);
void pgc_guard_client_free(pgc_client *c);

#endif
