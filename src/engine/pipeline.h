/*
 * pipeline.h - pipelined multiplexing: other clients' units of work sent to
 * a server connection that is still busy with its client's.
 *
 * In transaction pooling, when no server is idle, a client's unit may be
 * written to a busy server right behind the unit running there, instead of
 * waiting for the server to come back to the pool (server_pipeline_depth:
 * how many units may be in flight on one server at once; 0 or 1 is off).
 * PostgreSQL reads the next unit as soon as it has answered the one before,
 * without the round trip through pgcarrier and the backend's sleep and
 * wake-up in between.
 *
 * What may be pipelined. A unit here is one whole simple Query (at most
 * PGC_PIPELINE_UNIT_LIMIT bytes) that the guard classifies as reading only
 * and touching no session state (sqlclass.h: no flag at all, not even
 * PGC_SQL_WRITE), from a client with no transaction open, no server, no
 * pinned state and exactly the settings of the server's session (so that
 * nothing needs replaying before it). It queues only behind a unit of the
 * same kind (the server's pipe_ok), that has run for less than
 * server_pipeline_max_wait, on a server of the client's own worker, and
 * only when its pool has no idle server and no client waiting (pipelining
 * must never hold servers back from the clients it cannot serve).
 *
 * Why a unit behind another gets exactly the answers it would have had on
 * a server of its own. Each simple Query is its own transaction, and an
 * error ends only the Query it is in (PostgreSQL's rule for the simple
 * protocol): the unit ahead cannot make the next one fail. What the unit
 * ahead can do, though the guard saw nothing in its text, is change the
 * session (a trigger or a view calling set_config(), say). Every sign of
 * that is watched: a ParameterStatus, a backend state report, a
 * ReadyForQuery whose status is not idle, the guard wanting to probe or to
 * keep the server, a cancel request on its way. Then the pipeline breaks
 * (pgc_pipeline_break): the answers of every unit queued behind are read
 * and dropped, and each of those clients sends its unit again, through the
 * ordinary path, as if it had never been pipelined. This is sound because
 * a pipelined unit only reads, as far as its text tells: running it a
 * second time is running it once, as far as any client can see (a
 * function with side effects behind a view is the guard's known blind
 * spot; docs/behaviour.md says so). A dropped unit may still change the
 * session: relay.c keeps that out of every client's settings, and syncs
 * the linked client's again before it goes on. Its answers are never forwarded
 * before the unit ahead has answered in full and was found to be as
 * assumed; then the server is handed to the follower at once (no trip
 * through the pool) and the relay goes on with that pair as with any other.
 *
 * Cancel requests. A cancel for the client whose unit runs breaks the
 * pipeline first (the signal could reach the backend when it is already
 * on a follower's unit, whose answers are then dropped and which runs
 * again). A cancel for a follower is held until its unit is the one
 * running, and sent then; if the pipeline breaks first, the follower gets
 * PostgreSQL's 57014 error for that unit without it running again, which
 * is what a cancel that reaches a running query gives.
 *
 * All functions run on the worker that owns the server and its followers
 * (followers are always of that worker).
 */
#ifndef PGC_PIPELINE_H
#define PGC_PIPELINE_H

#include "core.h"

/* A Query longer than this is not pipelined: its bytes are copied into the server's output. */
#define PGC_PIPELINE_UNIT_LIMIT 8192

/*
 * c (no server, not in a transaction) has a message at the start of its
 * input: if it is a unit that may be pipelined and a busy server may take
 * it, send it there. True when it was: c is CL_PIPELINED until the server
 * is handed to it. False: c asks its pool for a server as usual.
 */
bool pgc_pipeline_offer(pgc_client *c);

/*
 * The guard forwarded the end of a unit of c's (a Query, or a Sync) to s;
 * pipelinable: the unit reads only and touches no session state;
 * unit_entries: in-flight entries it added. Others may queue behind it if
 * it is all that is in flight.
 */
void pgc_pipeline_note_unit(pgc_client *c, pgc_server *s, bool pipelinable, uint32_t unit_entries);

/* Followers are queued on s behind its linked client's unit. */
static inline bool
pgc_pipeline_has_followers(const pgc_server *s)
{
	return s->pipe_len > 0;
}

/*
 * s's linked client c is at a transaction boundary (nothing of its own in
 * flight, ReadyForQuery idle) and followers are queued: hand s to the
 * first of them, or break the pipeline if anything is not as assumed.
 * Returns 1 to go on pumping c, 0 to stop (c has no server now), -1 when c
 * was closed.
 */
int pgc_pipeline_boundary(pgc_client *c, pgc_server *s);

/*
 * Something the followers of s assumed does not hold (why, for the log):
 * the answers to their units are dropped and each runs its unit again.
 */
void pgc_pipeline_break(pgc_server *s, const char *why);

/* Follower c is closed: its unit's answers are dropped. */
void pgc_pipeline_leave(pgc_client *c);

/* s ends, or leaves its worker (back to the pool): its followers run their units again elsewhere. */
void pgc_pipeline_server_gone(pgc_server *s);

/* A cancel request came for c (its pool lock held): true if pipelining takes care of it. */
bool pgc_pipeline_cancel_requested(pgc_client *c);

/* The end of worker w's event-loop round: write the followers' units, one write per server; rerun units. */
void pgc_pipeline_round(pgc_worker *w);

/* c leaves the worker's list of clients to run again (it is closed). */
void pgc_pipeline_forget_client(pgc_client *c);

#endif
