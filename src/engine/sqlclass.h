/*
 * sqlclass.h - what a SQL string may do to the session it runs in.
 *
 * In transaction pooling a client's statements run on whatever server
 * connection is free.  That is only sound while nothing the client does
 * outlives its transaction, so the session-state guard (see DESIGN.md, "The
 * session-state guard") must look at every SQL string pgcarrier forwards --
 * simple Query text and the text of a protocol Parse alike -- and learn
 * whether it may create or drop state that stays with the server backend.
 *
 * This runs on the forwarding path of every client, so the common case must
 * cost next to nothing: a hand-written lexer reads the string once, without
 * allocating, and decides from the statement's first keywords and from the
 * names it sees called.  Only when a name followed by '(' is neither a known
 * side-effect-free built-in nor syntax the lexer recognises does it ask the
 * real PostgreSQL 15 grammar (libpg-query) what is called; that answer is
 * cached per thread by the exact statement text, since applications send
 * the same texts over and over.
 *
 * The answer is conservative: whatever cannot be told is PGC_SQL_UNKNOWN,
 * and the guard pins the client to its server connection rather than guess.
 * It is not complete either: functions called by triggers, defaults, views,
 * rules, user-defined operators and casts are invisible in the text; the
 * built-in mode (the extension reporting the backend's own view) is the
 * exact answer, this is the standalone approximation.
 *
 * Every function here may be called from several threads at once.  The only
 * state is per thread (the cache, freed when the thread exits); the parser
 * itself is run under a process-wide lock because libpg-query redirects
 * file descriptor 2 around each parse (see sqlclass.c).
 */
#ifndef PGC_SQLCLASS_H
#define PGC_SQLCLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Portable state: a SET or RESET at session level, or a set_config() call
 * (whatever its third argument: the guard re-checks on the server).  Not SET
 * LOCAL, SET TRANSACTION or SET CONSTRAINTS, which end with the transaction.
 * SET SESSION CHARACTERISTICS counts: it sets default_transaction_*.  Only a statement that starts with SET or
 * RESET counts: UPDATE ... SET, ALTER ... SET and CREATE FUNCTION ... SET
 * change no session setting.
 */
#define PGC_SQL_SETTING      (1u << 0)

/*
 * Pinned state.  A temporary table, view or sequence (CREATE TEMP ..., SELECT
 * ... INTO TEMP, an object created in schema pg_temp); session-level advisory
 * locks (pg_advisory_lock and friends, not the _xact_ ones); LISTEN; a WITH
 * HOLD cursor; a SQL-level PREPARE (whose statement is classified too, since
 * EXECUTE later runs it unseen).
 */
#define PGC_SQL_TEMP         (1u << 1)
#define PGC_SQL_ADVISORY     (1u << 2)
#define PGC_SQL_LISTEN       (1u << 3)
#define PGC_SQL_HOLD_CURSOR  (1u << 4)
#define PGC_SQL_PREPARE      (1u << 5)

/*
 * What it does to the session cannot be told from the text: DO, CALL, LOAD,
 * SET SESSION AUTHORIZATION, a call of anything but a known side-effect-free
 * built-in, a statement the lexer or the parser rejects, or one too deeply
 * nested to hand to the parser safely.
 */
#define PGC_SQL_UNKNOWN      (1u << 6)

/*
 * May release pinned state, so the guard should look again: DISCARD (any),
 * UNLISTEN, pg_advisory_unlock*, DEALLOCATE, DROP (any), CLOSE, RESET ALL.
 */
#define PGC_SQL_RELEASE      (1u << 7)

/* The whole string is one DEALLOCATE [PREPARE] name|ALL: see pgc_sql_deallocate(). */
#define PGC_SQL_DEALLOCATE   (1u << 8)

/* DISCARD ALL somewhere in the string. */
#define PGC_SQL_DISCARD_ALL  (1u << 9)

/*
 * Sequence state of the session: currval() and lastval() read it (SEQ_READ);
 * nextval() and setval() write it, and so may INSERT, COPY FROM and MERGE,
 * through column defaults (SEQ_WRITE). A statement that calls something
 * unknown may do either; the guard takes PGC_SQL_UNKNOWN for both.
 */
#define PGC_SQL_SEQ_READ     (1u << 10)
#define PGC_SQL_SEQ_WRITE    (1u << 11)

/* CREATE, ALTER or DROP: what later statements of every session mean may change. */
#define PGC_SQL_DDL          (1u << 12)

/* SET LOCAL (and SET TRANSACTION ...): settings that last until the transaction ends. */
#define PGC_SQL_LOCAL_SETTING (1u << 13)

/*
 * More than a read: any statement but SELECT, VALUES, TABLE or WITH, and
 * those with INSERT, UPDATE, DELETE, MERGE, INTO or SHARE among their words
 * (a data-modifying WITH, SELECT INTO, FOR UPDATE/SHARE). A statement
 * without it only reads, as far as its text tells: running it twice is
 * running it once (pipeline.h relies on this).
 */
#define PGC_SQL_WRITE        (1u << 15)

/* The bits that only inform (no session state of their own). */
#define PGC_SQL_INFO    (PGC_SQL_SEQ_READ | PGC_SQL_SEQ_WRITE | PGC_SQL_DDL | PGC_SQL_LOCAL_SETTING | \
						 PGC_SQL_WRITE)

/*
 * SET SESSION AUTHORIZATION: the session runs as another user. Pinned, not
 * replayed: it takes a superuser login, and it is rare.
 */
#define PGC_SQL_SESSION_AUTH (1u << 14)

#define PGC_SQL_PINNED  (PGC_SQL_TEMP | PGC_SQL_ADVISORY | PGC_SQL_LISTEN | \
						 PGC_SQL_HOLD_CURSOR | PGC_SQL_PREPARE | PGC_SQL_SESSION_AUTH | PGC_SQL_UNKNOWN)

/*
 * Classify len bytes of SQL (not necessarily NUL-terminated; a NUL byte ends
 * the string, as it does for the server; several ';'-separated statements
 * are classified one by one and their flags OR-ed).  0, or only
 * PGC_SQL_INFO bits, means plain statements with no effect on the session
 * beyond the transaction.
 *
 * If kind is not NULL it receives a short description of the first statement
 * that set a flag, for log lines ("SET", "CREATE TEMP TABLE", "LISTEN",
 * "pg_advisory_lock", "DO", "function my_func", ...), or NULL when the result
 * is 0.  The string is static, or (names found by the parser) owned by the
 * calling thread: it never changes, and stays valid until that thread exits
 * or calls pgc_sql_thread_cleanup(), so it may be kept with the statement.
 */
uint32_t pgc_sql_classify(const char *sql, size_t len, const char **kind);

/*
 * If sql is exactly one statement DEALLOCATE [PREPARE] name or DEALLOCATE
 * [PREPARE] ALL (trailing ';', whitespace and comments allowed), return true,
 * set *all, and copy the name with the server's identifier rules (unquoted:
 * ASCII folded to lower case; "quoted" or U&"quoted": exact, escapes undone)
 * into name, NUL-terminated ("" for ALL).  False otherwise, and also when the
 * name does not fit in namelen bytes.  Names are not truncated to
 * NAMEDATALEN-1 as the server would.
 */
bool pgc_sql_deallocate(const char *sql, size_t len, char *name, size_t namelen, bool *all);

/*
 * A human name for the first pinned-state flag in flags, for errors when
 * pinning is forbidden: "temporary tables", "session-level advisory locks",
 * "LISTEN", "WITH HOLD cursors", "SQL-level PREPARE" or "statements pgcarrier
 * cannot classify"; NULL if flags hold none of them.
 */
const char *pgc_sql_feature_name(uint32_t flags);

/*
 * Free this thread's parser cache (and the kinds it made) now rather than at
 * thread exit; for the main thread, which runs no thread-exit destructors.
 */
void pgc_sql_thread_cleanup(void);

/* For tests: how many times this thread has run libpg-query. */
unsigned long pgc_sql_parser_calls(void);

/* For tests: the built-in name tables are sorted (they are binary-searched). */
bool pgc_sql_tables_ok(void);

#endif
