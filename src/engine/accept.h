/*
 * accept.h - admitting new clients: the accept loop of each worker, and the
 * bounds that keep clients still logging in from crowding out logged-in ones.
 *
 * Contract:
 *  - A client is "in the login phase" from accept() until it is logged in
 *    (pgc_accept_logged_in) or closed (pgc_accept_client_gone): reading its
 *    startup packet, in its TLS handshake, authenticating. Only logged-in
 *    clients count against max_client_conn.
 *  - Clients in the login phase count against max_login_clients, shared out
 *    evenly among the workers: a worker at its share stops accepting (new
 *    connections wait in the kernel's backlog) until one of its own clients
 *    leaves the login phase. Each worker can only be resumed by its own
 *    clients, so none waits for an event that another worker would have to
 *    send it.
 *  - They also count against max_login_clients_per_addr for their source
 *    address (all workers together; Unix-socket clients have no address and
 *    are exempt): a connection over it is refused with FATAL 53300. At the
 *    limit, the worker first closes its clients from there whose peer has
 *    already hung up, and a refused client is looked at again when its
 *    startup packet comes.
 *  - Out of descriptors (EMFILE, ENFILE), a worker refuses what waits in its
 *    backlog with FATAL 53300, one connection at a time, in the slot of a
 *    descriptor it keeps in reserve; its listeners turn edge-triggered:
 *    accept() is tried again when a new connection arrives or one of its
 *    clients closes, never in a loop. The first accept that succeeds turns
 *    them back to normal.
 *  - A refused connection is told why (FATAL 53300) after its startup
 *    packet, as PostgreSQL tells it; encryption requests before it are
 *    answered 'N' (client_startup calls pgc_accept_refuse). At most a few
 *    wait so per worker, for a second; past that, the error is sent at
 *    once.
 *  - Repeated faults are logged through pgc_log_limited(), so no log floods.
 *  - Everything runs on the worker that owns the listener or the client,
 *    except the per-address counts, which have their own lock.
 */
#ifndef PGC_ACCEPT_H
#define PGC_ACCEPT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct pgc_worker;
struct pgc_client;
struct pgc_engine;

/* Why a worker's listeners are edge-triggered (pgc_worker.accept_paused). */
#define PGC_ACCEPT_PAUSED_LOGIN_FULL  0x1u   /* its share of max_login_clients is taken */
#define PGC_ACCEPT_PAUSED_NO_FD       0x2u   /* accept() failed for want of descriptors or memory */

/* Why a client is refused (pgc_client.refusal). */
enum {
	PGC_REFUSAL_NONE = 0,
	PGC_REFUSAL_ADDR,           /* over max_login_clients_per_addr */
	PGC_REFUSAL_NO_FD           /* out of descriptors: it holds the spare descriptor's slot */
};

/* The engine-wide state (per-address counts). 0, or -1 with a message. */
int pgc_accept_init(struct pgc_engine *e, char *err, size_t errlen);
void pgc_accept_free(struct pgc_engine *e);

/* A worker's state (its spare descriptor). 0, or -1 with a message. */
int pgc_accept_worker_init(struct pgc_worker *w, char *err, size_t errlen);
void pgc_accept_worker_free(struct pgc_worker *w);

/* Accept what waits on listen_fd (a listener of w), within the bounds above. */
void pgc_client_accept(struct pgc_worker *w, int listen_fd);

/* Whether one more client may log in under max_client_conn. */
bool pgc_accept_room_for_client(const struct pgc_engine *e, const pgc_config *cfg);

/*
 * c has authenticated: it leaves the login phase and counts against
 * max_client_conn. False when that is full: c got FATAL 53300 and is closed.
 */
bool pgc_accept_logged_in(struct pgc_client *c);

/*
 * c (refused) sent its startup packet: FATAL 53300 saying why, and close
 * it; true. False when c is admitted after all (refused for its address,
 * which has room now): its login goes on.
 */
bool pgc_accept_refuse(struct pgc_client *c);

/* c is being closed (called once, first thing): give back what it counted. */
void pgc_accept_client_gone(struct pgc_client *c);

/*
 * Warn (log) when RLIMIT_NOFILE is too low for max_client_conn and the
 * server connections the databases may open, with n_workers workers.
 */
void pgc_accept_check_fd_limit(const pgc_config *cfg, int n_workers);

#endif
