/*
 * census.h - listings of clients, servers and workers (SHOW CLIENTS,
 * SERVERS, POOLS, PINS, WORKERS, ... and the gauges of /metrics),
 * collected from the threads that own them.
 *
 * Why it is asynchronous: a client belongs to one worker for life and only
 * that worker may read it; so does a linked server; an idle server sits on
 * the idle list of one worker in its pool, and only that worker takes it
 * off (pool.c). So a census asks every worker, through its inbox, to
 * describe its own clients and servers (its idle ones, under their pool
 * locks) into the census' slot for it, between two batches of its events,
 * and to count the census down. Nobody waits for a worker: a census asked
 * for by a client of worker W (the admin console) is announced on W, which
 * calls the requester's callback after draining its inbox (pgc_census_poll);
 * one asked for by another thread (the metrics thread) is announced by a
 * write to an eventfd it polls.
 *
 * What it shows: each worker's part is exact at the moment it was filled,
 * and the parts are filled one after the other. So that every server is
 * listed exactly once, no server changes worker while a census is being
 * filled (engine->census_freeze: a released server serves a waiter of its
 * own worker or goes idle, and waiters elsewhere are served when the census
 * is complete, pgc_pool_kick_waiters); a server already on its way to a
 * client of w (in w's inbox) is listed by w. A server running
 * server_check_query is not listed. A worker whose loop has ended answers
 * with nothing, at once.
 *
 * Lifetime: reference counted (the requester and each worker that still
 * has to fill its slot). pgc_census_release drops the requester's
 * reference, whether the census is complete or not: the callback is then
 * never called.
 */
#ifndef PGC_CENSUS_H
#define PGC_CENSUS_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"

#define PGC_CENSUS_NAME 128           /* user and database names (PostgreSQL's are 63 bytes) */

/* A logged-in client (or one of the admin console). */
typedef struct pgc_census_client {
	uint32_t id;                      /* its cancel pid: SHOW CLIENTS' id, KILL_CLIENT's argument */
	const pgc_pool *pool;             /* NULL for the console's clients */
	char user[PGC_CENSUS_NAME];
	char database[PGC_CENSUS_NAME];
	char addr[64];                    /* peer address without the port; "unix" for the Unix socket */
	int port;
	char local_addr[64];
	int local_port;
	int remote_pid;                   /* the peer process on the Unix socket, else 0 */
	uint8_t state;                    /* pgc_client_state */
	bool console;
	char tls[96];                     /* pgc_tls_describe, "" without TLS */
	char application_name[64];
	double connected_at;              /* monotonic seconds */
	double request_at;                /* its last message or change of state */
	double wait_since;                /* CL_WAITING/CL_LOGIN: since when it waits, else 0 */
	int worker;
	uint32_t pinned;                  /* sqlclass flags of the state that pins it, 0 if none */
	double pinned_since;
	uint32_t prepared;                /* named prepared statements it holds (the guard's) */
	uint64_t server;                  /* serial of the server linked to it, 0 if none */
	uint32_t backend_pid;             /* ... and that server's backend */
} pgc_census_client;

/* A server connection. */
typedef struct pgc_census_server {
	uint64_t id;                      /* its serial */
	const pgc_pool *pool;
	uint8_t state;                    /* pgc_server_state */
	char addr[128];                   /* the pool's host (or socket directory) */
	int port;
	char local_addr[64];
	int local_port;
	double connected_at;
	double request_at;                /* its last change of state */
	bool close_needed;                /* a RECONNECT, reload or fault: closed when released */
	uint32_t client_id;               /* the linked client's id, 0 if none */
	uint32_t backend_pid;
	char tls[96];
	char application_name[64];        /* the linked client's */
	uint32_t prepared;                /* statements pgcarrier prepared on it */
	char txn_status;                  /* its last ReadyForQuery status */
	int worker;                       /* its owner, or the worker whose idle list it is on */
} pgc_census_server;

/* One worker's part. */
typedef struct pgc_census_slot {
	pgc_census_client *clients;
	int n_clients;
	pgc_census_server *servers;
	int n_servers;
	int login_clients;                /* connected, not logged in yet */
	int free_buffers;                 /* I/O buffers kept for reuse */
	int used_buffers;                 /* I/O buffers held by its connections */
	double cpu_seconds;               /* the thread's CPU time */
	bool answered;                    /* filled by the worker (not: its loop had ended) */
	bool incomplete;                  /* out of memory: rows are missing */
} pgc_census_slot;

typedef struct pgc_census pgc_census;
struct pgc_census_ask;

/*
 * Ask every worker of e. home: the worker of the requester (done(arg) is
 * called there once complete, from pgc_census_poll), or NULL: then
 * notify_fd (an eventfd) is written once complete. NULL when out of memory.
 */
pgc_census *pgc_census_start(pgc_engine *e, pgc_worker *home, void (*done)(void *arg), void *arg,
							 int notify_fd);
/* Every slot is filled (any thread). */
bool pgc_census_complete(const pgc_census *c);
int pgc_census_workers(const pgc_census *c);
/* Worker i's part; only once complete. */
const pgc_census_slot *pgc_census_part(const pgc_census *c, int i);
/* The requester is done with it (complete or not). On home's thread when home was given. */
void pgc_census_release(pgc_census *c);

/* A pool, with its clients and servers counted from a census (SHOW POOLS, /metrics). */
typedef struct pgc_census_pool {
	pgc_pool *p;
	int cl_active, cl_waiting, cl_pinned;
	int sv_active, sv_idle, sv_used, sv_tested, sv_login, sv_rows;  /* sv_used: idle, due for server_check_query */
	double oldest_wait;           /* monotonic: since when the longest waiter waits; 0 none */
	/* Under the pool lock, copied. */
	int total, pool_size, mode;
} pgc_census_pool;

/*
 * Every pool of e, with census' clients and servers counted (census may be
 * NULL: no counts), into a malloc'd array sorted by database and user. The
 * count, or -1 (out of memory).
 */
int pgc_census_pools(pgc_engine *e, const pgc_census *census, pgc_census_pool **out);

/* ---- for worker.c ---- */

/* Fill the slots asked of w (taken off its inbox with the inbox lock). */
void pgc_census_serve(pgc_worker *w, struct pgc_census_ask *asks);
/* Call the callbacks of w's complete censuses (after each drain of its inbox). */
void pgc_census_poll(pgc_worker *w);
/* w's loop has ended: answer what is asked of it from now on at once, with nothing. */
void pgc_census_worker_exit(pgc_worker *w);

#endif
