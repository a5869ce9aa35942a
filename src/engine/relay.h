/*
 * relay.h - the one owner of the bytes between a linked client and server.
 *
 * Everything that moves protocol messages of a linked pair goes through
 * here: framing, the protocol state of each direction, which server answer
 * belongs to which client message, and when the pair may part. The
 * session-state guard (guard.h) and, later, statistics act through the small
 * cursor API below; they never move bytes themselves.
 *
 * Streams. Each direction reads from its source buffer (the client's or the
 * server's "in") and writes to the other peer: first what pgcarrier composed
 * (the peer's "out"), then the source bytes [start, scan) that were framed
 * and passed. The message at scan is "the current message". The cursor API
 * acts on it:
 *
 *   pgc_relay_pass     forward it as it is (its rest streams through later,
 *                      when it is larger than what has arrived)
 *   pgc_relay_drop     discard it (its rest is discarded as it arrives)
 *   pgc_relay_inject   a buffer to compose messages into that reach the peer
 *                      before the current message (and after everything
 *                      passed before it)
 *   pgc_relay_whole    make the whole current message readable in the
 *                      buffer, growing the buffer when the message is larger
 *
 * Protocol state. The client side is READY or COPY_IN (the server takes
 * CopyData/CopyDone/CopyFail); the server side is READY, COPY_OUT, COPY_IN
 * or SKIPPING (it discards extended-protocol messages until Sync after an
 * error). Messages that are invalid in the client's state never reach the
 * server: the client gets PostgreSQL's FATAL error for them, as it would
 * directly.
 *
 * In flight. Every client message a server answers, and every message
 * pgcarrier sends on its own, has an entry in the server's in-flight queue
 * (pgc_pending), oldest first. Server answers are matched to entries with
 * PostgreSQL's rules (ParseComplete answers Parse, an error in the extended
 * protocol skips to Sync, a Sync received during COPY FROM STDIN is ignored,
 * ReadyForQuery ends a Query, FunctionCall or Sync). An entry owned by the
 * client has its answers forwarded; one owned by pgcarrier has them
 * dropped, or handed to the guard. Entries made up by pgcarrier (it answers
 * in the server's place) are written to the client when they reach the
 * head.
 *
 * Asynchronous messages always reach the client, in order:
 * NotificationResponse (with the pid of the client's own backend rewritten
 * to the pid the client knows) and NoticeResponse. ParameterStatus messages
 * update pgcarrier's view of the server; right before each ReadyForQuery
 * the client sees, it is told what differs from what it was last told,
 * which is when PostgreSQL itself reports changes.
 *
 * All functions run on the client's worker, with the server linked to it.
 */
#ifndef PGC_RELAY_H
#define PGC_RELAY_H

#include "core.h"

/* ---- cursor API (for the guard) ---------------------------------------- */

/* The current message of one direction, as far as it has arrived. */
typedef struct pgc_cursor {
	uint8_t type;
	uint32_t len;                 /* the length word: body + 4 */
	size_t total;                 /* whole message: len + 1 */
	const uint8_t *body;          /* the body's first byte */
	size_t have;                  /* body bytes in the buffer now (<= len - 4) */
	bool whole;                   /* have == len - 4 */
} pgc_cursor;

typedef enum pgc_dir {
	PGC_DIR_TO_SERVER,            /* the client's message at c->in->scan */
	PGC_DIR_TO_CLIENT             /* the server's message at s->in->scan */
} pgc_dir;

void pgc_relay_pass(pgc_client *c, pgc_server *s, pgc_dir dir, const pgc_cursor *cur);
void pgc_relay_drop(pgc_client *c, pgc_server *s, pgc_dir dir, const pgc_cursor *cur);
/*
 * The buffer whose contents reach the peer right before the current
 * message; NULL when out of memory. Compose whole messages into it.
 */
pgc_msgbuf *pgc_relay_inject(pgc_client *c, pgc_server *s, pgc_dir dir);
/*
 * Make the whole current message readable: 1 when it is (cur is refreshed),
 * 0 when more bytes must arrive first (the buffer has grown to hold it if
 * it had to), -1 when it cannot be: it is larger than limit, or there is no
 * memory for it.
 */
int pgc_relay_whole(pgc_client *c, pgc_server *s, pgc_dir dir, pgc_cursor *cur, size_t limit);
/*
 * The same for at least the first n body bytes of the current message (or
 * all of it, if shorter): 1, 0 or -1 (no memory).
 */
int pgc_relay_prefix(pgc_client *c, pgc_server *s, pgc_dir dir, pgc_cursor *cur, size_t n);
/*
 * Drop the first n bytes of the current message (all in the buffer) and
 * pass the rest on: after a rewritten start was injected in their place.
 */
void pgc_relay_pass_tail(pgc_client *c, pgc_server *s, pgc_dir dir, const pgc_cursor *cur, size_t n);

/* ---- in-flight queue --------------------------------------------------- */

/* Who the answers to an in-flight entry are for (pgc_pending.owner). */
enum {
	PGC_OWNER_CLIENT = 0,         /* the client's message: answers are forwarded */
	PGC_OWNER_POOLER              /* pgcarrier's own: answers dropped, or given to the guard */
};

/* What pgcarrier does with the answers to its own message (pgc_pending.on_answer). */
enum {
	PGC_ANSWER_DROP = 0,
	PGC_ANSWER_PROBE,             /* the guard's session-state probe: rows go to the guard */
	PGC_ANSWER_RESTORE            /* settings replayed for the client: an error ends the client */
};

/* Answers pgcarrier makes up in the server's place (pgc_pending.made_up); nothing was sent. */
enum {
	PGC_MADE_UP_NONE = 0,
	PGC_MADE_UP_PARSE_COMPLETE,   /* ParseComplete */
	PGC_MADE_UP_ERROR,            /* ErrorResponse (sqlstate, text); the client then skips to Sync */
	PGC_MADE_UP_QUERY             /* a simple Query: CommandComplete text (or error) and ReadyForQuery */
};

/*
 * Add an entry for a message of this kind being sent to s, and note what
 * sending it does to the server's state (a Query drops the unnamed
 * statement; extended-protocol messages need a Sync). NULL when out of
 * memory.
 */
pgc_pending *pgc_relay_expect(pgc_server *s, uint8_t kind, uint8_t owner);
/* An entry for a client message pgcarrier answers itself (nothing is sent). */
pgc_pending *pgc_relay_made_up(pgc_server *s, uint8_t kind, uint8_t made_up);
/*
 * Pass the current client message on as it is, with its entry (a Query,
 * Parse, Bind, Describe, Execute, Close, Sync or FunctionCall). NULL when
 * out of memory: the client was closed.
 */
pgc_pending *pgc_relay_forward(pgc_client *c, pgc_server *s, const pgc_cursor *cur);
/* Number of entries in flight. */
static inline uint32_t pgc_relay_in_flight(const pgc_server *s)
{
	return s->inflight.len;
}
/* The i-th oldest entry. */
pgc_pending *pgc_relay_entry(pgc_server *s, uint32_t i);

/* ---- the pair ---------------------------------------------------------- */

/* Link s (owned by c's worker now) to c and start forwarding. */
void pgc_relay_link(pgc_client *c, pgc_server *s);
/* An event on the server linked to c. */
void pgc_relay_server_event(pgc_client *c, pgc_server *s, uint32_t events);
/* The client linked to a server has bytes to forward, or room to take more. */
void pgc_relay_pump(pgc_client *c);
/* Nothing of a transaction is in flight either way: s could part from c. */
bool pgc_relay_idle(const pgc_client *c, pgc_server *s);
/*
 * Pipelining (pipeline.h): send c's unit, the whole messages that are the
 * first n bytes of its input, to s, behind everything s has been sent (s is
 * linked to another client, or to none). The guard sees each message as it
 * would on c's own server; every entry they add is marked as c's
 * (pgc_pending.follower, through s->pipe_scanning). 1 when sent, and c's
 * input is past them; 0 when it could not be, and s must not be reused; -1
 * when c was closed.
 */
int pgc_relay_send_unit(pgc_client *c, pgc_server *s, size_t n);
/* Forget s's in-flight entries (it is closed or reset, not reused as it is). */
void pgc_relay_forget(pgc_client *c, pgc_server *s);
/*
 * s parts from its client with only pgcarrier's own Queries in flight: drop
 * their entries and return how many ReadyForQuery are still to come, for
 * the server to read on its own; -1 (nothing changed) if anything else is
 * in flight.
 */
int pgc_relay_drain(pgc_server *s);
/* Free what the relay keeps for s (at its end). */
void pgc_relay_server_free(pgc_server *s);
/*
 * The first message of a client without a server: is it one PostgreSQL
 * accepts now? If not, the client gets PostgreSQL's FATAL and is closed.
 */
bool pgc_relay_header_ok(pgc_client *c, uint8_t type, uint32_t len);

/* The client's view of reported parameters: what it was last told (for the welcome). */
void pgc_relay_told(pgc_client *c, const pgc_params *told);

#endif
