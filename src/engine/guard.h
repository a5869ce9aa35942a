/*
 * guard.h - the session-state guard: transaction pooling that keeps session
 * semantics (see DESIGN.md, "The session-state guard").
 *
 * It sits in the forwarding path of a guarded client (transaction or
 * statement mode with session_guard on) and does three things:
 *
 *  - Prepared statements: the client's named statements are renamed to
 *    pgcarrier's per-pool names (stmt.h), prepared again in front of a Bind
 *    or Describe on a server that lacks them, and answered by pgcarrier when
 *    the server already has them. To put made-up answers in the right place
 *    and drop the answers to messages pgcarrier added, the guard keeps a
 *    queue of the client messages in flight (pgc_guard.q) and matches the
 *    server's answers to it.
 *  - Statement text: each simple Query and Parse goes through the SQL
 *    classifier (sqlclass.h). Statements that may change session state set
 *    flags; with session_pinning = error, statements that would pin the
 *    client are replaced by one that raises 0A000 on the server, so that the
 *    transaction fails exactly as any error would fail it.
 *  - The probe: at the end of a transaction whose statements set a flag, the
 *    guard asks the server, with one query, which session state really is
 *    there (session-level settings; temp tables, advisory locks, LISTEN,
 *    holdable cursors, SQL prepared statements). Settings become the
 *    client's, to be replayed on its next server; any of the others pins the
 *    client to this server until a later probe finds them gone. The server's
 *    own answer is the truth, so a function that sets state behind the
 *    classifier's back is still caught, as long as its statement set a flag
 *    (calls of unknown functions do).
 *
 * All functions run on the client's worker with the server linked to it.
 */
#ifndef PGC_GUARD_H
#define PGC_GUARD_H

#include "core.h"

/* What to do with the answer to a message in flight (pgc_pending.action). */
enum {
	PGC_PEND_FORWARD = 0,     /* the client's message went to the server: pass the answer on */
	PGC_PEND_SWALLOW,         /* pgcarrier's own message: drop the answer */
	PGC_PEND_OK,              /* not sent: make up the success answer (ParseComplete) */
	PGC_PEND_ERROR,           /* not sent: make up an ErrorResponse (sqlstate, text) */
	PGC_PEND_QUERY            /* a simple Query answered by pgcarrier: CommandComplete text + ReadyForQuery */
};

typedef enum pgc_guard_result {
	PGC_GUARD_PASS,           /* forward the message as it is (the guard has noted it) */
	PGC_GUARD_DONE,           /* the guard dealt with the message; go on with the next */
	PGC_GUARD_WAIT,           /* more bytes, or room to write, are needed first */
	PGC_GUARD_FAIL            /* the connection was closed (client) or must be (server) */
} pgc_guard_result;

/* Whether a client of pool p is guarded under the current configuration. */
bool pgc_guard_wanted(const pgc_pool *p);
/* c was linked to s. */
void pgc_guard_attach(pgc_client *c, pgc_server *s);
/* Bytes the guard must still drop from the client before the next message. */
pgc_guard_result pgc_guard_client_discard(pgc_client *c, pgc_server *s);
/* A client message of this header is at c->in->scan. */
pgc_guard_result pgc_guard_client_msg(pgc_client *c, pgc_server *s, uint8_t type, uint32_t len);
/* A server message of this header is at s->in->scan. */
pgc_guard_result pgc_guard_server_msg(pgc_client *c, pgc_server *s, uint8_t type, uint32_t len);
/* Write the made-up answers that are due now. False if there is no room now. */
bool pgc_guard_flush_made_up(pgc_client *c, pgc_server *s);
typedef enum pgc_guard_hold {
	PGC_HOLD_RELEASE,         /* s may go back to the pool */
	PGC_HOLD_PROBING,         /* a probe was queued in s->out: write it, keep s */
	PGC_HOLD_KEEP,            /* the client is pinned: keep s */
	PGC_HOLD_CLOSED           /* the client was refused and closed */
} pgc_guard_hold;

/* The transaction is over and nothing is in flight: may s go back? */
pgc_guard_hold pgc_guard_keep_server(pgc_client *c, pgc_server *s);
/* s leaves c other than by a clean release (client gone, refusal): make sure it is cleaned. */
void pgc_guard_detach(pgc_client *c, pgc_server *s);
void pgc_guard_client_free(pgc_client *c);

#endif
