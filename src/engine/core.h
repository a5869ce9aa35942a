/*
 * core.h - the pooling engine's internal data structures, shared by its
 * modules (engine.c, worker.c, client.c, server.c, pool.c, cancel.c).
 *
 * Ownership and threading rules (the reason this header exists):
 *  - A client belongs to one worker for life; only that worker touches it,
 *    except the fields marked "pool lock", which other workers change while
 *    holding the lock of the client's pool (handing it a server or an error).
 *  - A server connection is owned by exactly one worker while it is linked,
 *    connecting or resetting, and is then registered in that worker's epoll.
 *    While idle in its pool it is owned by nobody, is in no epoll set, and all
 *    of its fields are protected by the pool lock.
 *  - Pools are created on first use and never freed while the engine runs, so
 *    a pool pointer stays valid everywhere.
 *  - Lock order: cancel registry -> auth_query (authq.c) -> pool -> worker
 *    inbox; engine config lock -> statistics (stats.c). The forwarding path
 *    of a linked pair takes no lock: its counters are per worker (stats.h).
 */
#ifndef PGC_CORE_H
#define PGC_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"
#include "proto.h"
#include "stmt.h"

#define PGC_IOBUF_SIZE      (32 * 1024)
#define PGC_MAX_EVENTS      128
/*
 * At most this many TLS handshake steps with clients per event-loop round:
 * a storm of new TLS connections (each costing a signature) then delays the
 * clients already connected on that worker by a few milliseconds at most.
 */
#define PGC_TLS_STEPS_PER_ROUND 8

typedef struct pgc_worker pgc_worker;
typedef struct pgc_pool pgc_pool;
typedef struct pgc_client pgc_client;
typedef struct pgc_server pgc_server;
typedef struct pgc_engine pgc_engine;

/* What an epoll registration points at; every such struct starts with it. */
typedef enum pgc_kind {
	PGC_KIND_LISTENER = 1,
	PGC_KIND_CLIENT,
	PGC_KIND_SERVER,
	PGC_KIND_WAKEUP,
	PGC_KIND_CANCEL
} pgc_kind;

/*
 * Bytes read from a socket and not yet written to the peer. A buffer holds
 * PGC_IOBUF_SIZE bytes, or more while a message that must be read whole is
 * larger than that (relay.h, pgc_relay_whole); such a big buffer is freed,
 * not kept for reuse, once it is empty.
 */
typedef struct pgc_iobuf {
	struct pgc_iobuf *next_free;
	size_t start;     /* first byte not yet written to the peer */
	size_t scan;      /* bytes before this were framed and may be forwarded */
	size_t end;       /* first free byte */
	size_t cap;       /* bytes data holds */
	uint8_t data[];
} pgc_iobuf;

/* One direction's framing state: what is left of the current message (relay.c). */
typedef struct pgc_stream {
	uint32_t skip;    /* bytes of a message being passed on that are still to come */
	uint32_t discard; /* bytes of a message being dropped that are still to come */
} pgc_stream;

/* What a client may send now (relay.c). */
typedef enum pgc_fe_state {
	PGC_FE_READY = 0,             /* queries, the extended protocol, function calls */
	PGC_FE_COPY_IN                /* the server takes CopyData, CopyDone, CopyFail */
} pgc_fe_state;

/* What a linked server is doing (relay.c). */
typedef enum pgc_be_state {
	PGC_BE_READY = 0,
	PGC_BE_COPY_OUT,              /* CopyOutResponse sent, CopyDone not yet */
	PGC_BE_COPY_IN,               /* CopyInResponse sent: it waits for the client's data */
	PGC_BE_SKIPPING               /* an error in the extended protocol: it discards messages until Sync */
} pgc_be_state;

/*
 * A client's address: IPv4, IPv6, or a Unix socket (family AF_UNIX, nothing
 * more). 28 bytes where a sockaddr_storage takes 128: every connected
 * client keeps one.
 */
typedef union pgc_peer {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
} pgc_peer;

void pgc_peer_set(pgc_peer *p, const struct sockaddr_storage *ss);
/* The address as a sockaddr_storage, for what takes one (HBA, the login bounds). */
struct sockaddr_storage pgc_peer_storage(const pgc_peer *p);

/* Doubly linked intrusive list. */
typedef struct pgc_link {
	struct pgc_link *prev, *next;
} pgc_link;

/* A list of "key\0value\0" pairs in one allocation, for startup/session parameters. */
typedef struct pgc_params {
	char *blob;       /* NULL when empty */
	size_t len;       /* bytes used, pairs only */
} pgc_params;

/*
 * What a pure function of two parameter lists (a client's, a server's) and
 * a generation found to have nothing to do, the last time it had nothing
 * to do: given the same inputs byte for byte, it has nothing to do again
 * (server.c's sync, relay.c's tell_changes).
 */
typedef struct pgc_params_memo {
	pgc_params client, server;    /* copies of the inputs; server.blob NULL: nothing kept */
	unsigned gen;
} pgc_params_memo;

/*
 * A message in flight on a server: what its answers are and what to do with
 * them (relay.h). The guard adds what it needs to know about its messages.
 */
typedef struct pgc_pending {
	uint8_t kind;                 /* pgc_fe_type of the message */
	uint8_t owner;                /* PGC_OWNER_* */
	uint8_t on_answer;            /* PGC_ANSWER_*: pgcarrier's own message */
	uint8_t made_up;              /* PGC_MADE_UP_*: not sent; pgcarrier answers in the server's place */
	bool sync_ignored;            /* a Sync the server gets during COPY FROM STDIN: no answer */
	bool holds_ready;             /* the client's ReadyForQuery waits until pgcarrier's follow-up is done */
	bool trailing;                /* Query: pgcarrier appended a SELECT; drop its rows */
	bool seen_complete;           /* Query: the client's own CommandComplete went by */
	bool unnamed;                 /* Parse of the client's unnamed statement */
	bool dropped;                 /* a follower's, whose pipeline broke: its answers are nobody's (pipeline.h) */
	char sqlstate[6];             /* made up: the error's SQLSTATE */
	pgc_stmt *st;                 /* Parse: the statement prepared (a reference) */
	char *text;                   /* Parse: the client's name; made up: message or command tag */
	pgc_client *follower;         /* a pipelined unit of this client, queued behind the linked one's (pipeline.h) */
} pgc_pending;

/* The in-flight entries of a server, oldest at q[head] (a ring). */
typedef struct pgc_inflight {
	pgc_pending *q;
	uint32_t head, len, cap;
} pgc_inflight;

/* Per-client state of the session-state guard (guard.c). */
typedef struct pgc_guard {
	pgc_stmt_map stmts;           /* the client's named prepared statements */
	pgc_stmt *unnamed;            /* the client's unnamed statement (a reference), NULL if none */
	uint32_t unnamed_gen;         /* counts the client's Parses of the unnamed statement */
	uint32_t flags;               /* sqlclass flags seen since the server was last probed */
	const char *kind;             /* the statement kind that set the first of flags, for logs */
	uint32_t pinned;              /* pinned state the client holds (sqlclass flags), 0 if none */
	bool on;                      /* guarding this client (transaction/statement mode, session_guard) */
	bool drop_until_sync;         /* an error was made up for the client: drop until Sync */
	bool blocked;                 /* waits for a peer to take what is queued for it */
	bool watch_tags;              /* look for DISCARD ALL / DEALLOCATE ALL command tags */
	bool discard_at_sync;         /* an extended-protocol DISCARD ALL runs before the next Sync */
	bool barrier;                 /* session_pinning = error: hold the client's next message until probed */
	bool txn_ddl;                 /* the transaction ran DDL: shared statements get a new epoch at its end */
	bool seq_written;             /* may have set currval()/lastval() state on some server */
	bool probing;                 /* the probe is in flight on the linked server */
	bool probe_due;               /* the session state may have changed: look at the next boundary (state.h) */
	bool probe_failed;
	bool unit_clean;              /* the unit being sent so far only reads, touching no session state (pipeline.h) */
	uint32_t unit_mark;           /* its server's pushes when the unit began */
	uint64_t unsure_parses;       /* Parses made while the session state was not known (statement_context) */
	struct pgc_guard_probe *probe; /* what the probe in flight found so far (guard.c); NULL when none was sent */
	pgc_params custom;            /* names of extension settings (x.y) the client SET: the probe asks for them */
} pgc_guard;

typedef enum pgc_client_state {
	CL_STARTUP,       /* reading SSLRequest / startup packet */
	CL_TLS,           /* TLS handshake after SSLRequest */
	CL_AUTH,          /* authenticating (cauth.c) */
	CL_LOGIN,         /* waiting for a first server login to learn the server's parameters */
	CL_IDLE,          /* logged in, no server */
	CL_WAITING,       /* has a request, waits in its pool's queue */
	CL_LINKED,        /* a server connection is linked to it */
	CL_PIPELINED,     /* its unit was sent to a server busy with another client's (pipeline.h) */
	CL_CLOSING
} pgc_client_state;

/*
 * One client connection. Thousands of them sit idle, so its size is its
 * cost: fields are ordered so that the compiler leaves (almost) no padding
 * (bench/idle_memory.sh measures it); keep small fields together.
 */
struct pgc_client {
	pgc_kind kind;                /* PGC_KIND_CLIENT */
	int fd;
	pgc_client_state state;
	uint32_t epoll_events;        /* what is registered now */
	pgc_worker *worker;
	pgc_pool *pool;
	pgc_server *server;           /* pool lock when set by another worker */
	pgc_iobuf *in;                /* from the client */
	pgc_stream fe;                /* framing of the client's messages (relay.c) */
	uint8_t fe_state;             /* pgc_fe_state */
	bool held_ready;              /* a ReadyForQuery waits for pgcarrier's follow-up (relay.c) */
	bool blocked;                 /* the relay waits for a peer to take what is queued for it */
	char held_status;             /* its transaction status */
	bool want_write;              /* waiting for EPOLLOUT */
	bool registered;              /* fd is in its worker's epoll set */
	bool terminate_seen;          /* got 'X' */
	uint8_t stmt_violation;       /* statement mode: ReadyForQuery answers kept from the client in a refused block */
	pgc_msgbuf *out;              /* bytes pgcarrier itself must still write to the client */
	bool counted;                 /* counted in engine->clients_total */
	bool welcome_pending;         /* welcome waits for the server's spelling of the startup parameters */
	bool in_inbox;                /* on its worker's inbox (pool/inbox locks) */
	bool queued;                  /* in pool->waiters (pool lock) */
	atomic_bool kill_requested;   /* KILL_CLIENT: its worker ends it at the next tick */
	bool is_unix;                 /* came in on the Unix socket */
	pgc_msgbuf *handoff_error;    /* an ErrorResponse from another worker (pool lock) */
	uint32_t cancel_pid, cancel_key;
	char *user;                   /* client-visible user and database (usually its pool's strings) */
	char *dbname;
	uint64_t serial;              /* unique for the life of the engine, never reused */
	/* settings to apply on servers: startup parameters, then what it SET (shared, pshare.h; pgc_client_param_set) */
	struct pgc_shared_params *params;
	struct pgc_shared_params *startup; /* the startup parameters as given, for RESET (shared, pshare.h) */
	/* reported parameters as the client was last told them: shared with the worker's other clients told the same (pshare.h) */
	struct pgc_shared_params *reported;
	unsigned server_wide_gen;     /* pool->server_wide_gen when it was last told (relay.c) */
	unsigned kill_gen;            /* of its database when it logged in (KILL) */
	pgc_guard guard;
	double state_since;           /* monotonic seconds: when state last changed */
	double wait_since;            /* when it joined the queue */
	pgc_link node;                /* worker->clients */
	pgc_link wait_node;           /* pool->waiters (pool lock) */
	pgc_client *inbox_next;       /* worker->inbox (inbox lock) */
	pgc_client *cancel_next;      /* cancel registry chain (registry lock) */
	struct pgc_tls *tls;          /* TLS with the client, NULL for plain */
	pgc_peer peer;                /* its address (HBA, logs: pgc_client_addr) */
	/* ---- the startup phase and login admission (client_startup, accept.c); after peer: no padding ---- */
	bool in_login;                /* counted in its worker's and its address's login-phase bounds */
	bool ssl_done;                /* SSLRequest answered: another one is a protocol violation, as in PG */
	bool gss_done;                /* GSSENCRequest answered, or TLS is on: likewise */
	uint8_t refusal;              /* PGC_REFUSAL_* (accept.h): refused, told why after its startup packet */
	void *auth;                   /* pgc_cauth while authenticating */
	/* ---- statistics (stats.h) and the admin console (console.h); the client's worker only ---- */
	struct pgc_stat_block *stat;  /* its database's counters for its worker; NULL: not counted */
	double st_query_start;        /* when its query in progress reached a server; 0: none */
	double st_xact_start;         /* ... its transaction in progress; 0: none */
	double st_logged_in_at;       /* when it named a known database (SHOW CLIENTS' connect_time) */
	double st_pinned_since;       /* when the guard pinned it; 0: not pinned */
	uint64_t st_last_server;      /* serial of its last server connection (swaps); 0: none */
	struct pgc_console *console;  /* the admin console's session; NULL for a pooled client */
	/* ---- pipelining (pipeline.h); the client's worker only, pipe_server also under the pool lock ---- */
	pgc_server *pipe_server;      /* CL_PIPELINED: the server its unit was sent to */
	uint8_t *pipe_copy;           /* CL_PIPELINED: its unit as it sent it, to send again if the pipeline breaks */
	pgc_client *pipe_next;        /* the next follower on pipe_server, or the next one to run again */
	uint32_t pipe_copy_len;
	atomic_bool pipe_cancel;      /* CL_PIPELINED: a cancel request came; sent once its unit runs */
	bool pipe_redo;               /* on its worker's list of clients whose unit runs again */
};

typedef enum pgc_server_state {
	SV_CONNECTING,
	SV_TLS_ASK,       /* SSLRequest sent, waiting for 'S' or 'N' */
	SV_TLS,           /* TLS handshake */
	SV_LOGIN,
	SV_IDLE,          /* in pool->idle */
	SV_LINKED,
	SV_RESETTING,     /* rollback / reset query running, responses swallowed */
	SV_CLOSED
} pgc_server_state;

/* Not logged in yet: connecting, TLS or login. */
#define PGC_SV_STARTING(state) ((state) <= SV_LOGIN)

struct pgc_server {
	pgc_kind kind;                /* PGC_KIND_SERVER */
	int fd;
	struct pgc_tls *tls;          /* TLS with the server, NULL for plain */
	struct pgc_tls *tls_offer;    /* SV_TLS_ASK: TLS to use if the server answers 'S' */
	bool tls_retried;             /* server_tls_sslmode = allow: the plain login failed, TLS tried */
	pgc_server_state state;
	pgc_worker *worker;           /* owner, NULL while idle */
	pgc_pool *pool;
	pgc_client *client;
	pgc_iobuf *in;                /* from the server */
	pgc_stream be;                /* framing of the server's messages (relay.c) */
	uint8_t be_state;             /* pgc_be_state */
	pgc_inflight inflight;        /* messages it has not answered yet (relay.h) */
	pgc_msgbuf *out;              /* bytes pgcarrier composed for the server (login, preamble, reset) */
	uint32_t epoll_events;
	bool want_write;
	int reset_pending;            /* SV_RESETTING: our queries still to be answered */
	bool unsynced;                /* extended-protocol messages sent since the last Sync */
	bool confused;                /* the message flow cannot be followed (a client broke COPY): never reuse */
	bool report_pending;          /* params may hold reported values the client was not told (relay.c) */
	bool reports;                 /* its backend reports its own session state (state.h) */
	uint32_t report_cycle;        /* pinned state reported since its last idle ReadyForQuery (sqlclass flags) */
	uint32_t report_pinned;       /* what it reported before its last idle ReadyForQuery: none when it did not */
	char txn_status;              /* last ReadyForQuery status: pgc_txn_status */
	bool dirty_close;             /* must not be reused */
	bool registered;              /* fd is in its worker's epoll set */
	bool reset_ran;               /* RESETTING ran server_reset_query */
	uint8_t last_type;            /* type of the last message forwarded to the client */
	char *login_password;         /* during login only; wiped after */
	uint32_t backend_pid, backend_key;
	pgc_params params;            /* reported parameters and the ones pgcarrier SET */
	/* The last pgc_server_sync_params that had nothing to send (server.c); gen: the pool's server_wide_gen. */
	pgc_params_memo synced;
	/* The last tell_changes that had nothing to tell (relay.c): what the client was told, s->params. */
	pgc_params_memo told;
	struct sockaddr_storage addr; /* for cancel requests */
	socklen_t addrlen;
	void *scram;                  /* pgc_scram_client during login */
	uint8_t scram_keys[64];       /* during login: the pool's pass-through keys, if any */
	bool have_scram_keys;
	pgc_stmt_cache stmts;         /* prepared statements pgcarrier made on it */
	uint64_t unnamed_owner;       /* serial of the client whose unnamed statement it holds, 0: none known */
	uint32_t unnamed_gen;         /* ... and which of that client's Parses it was */
	uint64_t seq_owner;           /* serial of the last client that may have set currval()/lastval() on it */
	bool needs_discard;           /* may hold a client's session state: DISCARD ALL before reuse */
	double created_at;
	double state_since;
	uint64_t config_generation;   /* of the database entry it was made with */
	uint64_t reconnect_gen;       /* of its pool when it was made */
	pgc_link node;                /* pool->idle (pool lock) or worker->servers */
	/* ---- listings (census.h) ---- */
	uint64_t serial;              /* unique for the life of the engine: SHOW SERVERS' id */
	/* ---- pipelining (pipeline.h): followers queued behind the linked client's unit ---- */
	pgc_client *pipe_first, *pipe_last;
	uint32_t pipe_len;            /* followers */
	uint32_t pushes;              /* in-flight entries ever added (relay.c): where a unit's entries begin */
	pgc_client *pipe_scanning;    /* the follower whose unit is being added: its entries are marked so */
	bool pipe_ok;                 /* the linked client's unit in flight is one others may queue behind */
	bool pipe_broken;             /* dropped units in flight: the linked client sends nothing until they are done */
	bool pipe_dirty;              /* on its worker's list of servers with followers' bytes to write */
	atomic_bool pipe_cancel;      /* a cancel request for the linked client is on its way: no handoff */
	double pipe_since;            /* when the unit now running was sent */
};

/* A pool: one (database, user) pair. */
struct pgc_pool {
	pthread_mutex_t lock;
	char *dbname;                 /* client-visible database name */
	char *user;                   /* server login user */
	char *client_user;            /* for messages */
	/* Settings from the config, refreshed on reload (lock). */
	char *host;
	int port;
	char *server_dbname;
	char *password;
	int pool_size;
	int min_pool_size;
	int reserve_pool;
	int max_db_connections;
	int max_user_connections;
	atomic_int pool_mode;           /* read without the lock on the forwarding path: atomic */
	bool db_removed;
	uint64_t config_generation;
	/* RECONNECT (control.c): servers made before the last one are replaced when idle (lock). */
	atomic_ullong reconnect_gen;
	/* State (lock). */
	int total;                    /* all server connections: connecting + idle + linked + resetting */
	int connecting;
	/*
	 * Idle servers, one list per worker, most recently used at the head. An
	 * idle server stays registered in the epoll set of the worker whose list
	 * it is on, and only that worker takes it off: so a server that stays on
	 * one worker costs no epoll_ctl per transaction, and a server that closes
	 * while idle is noticed at once.
	 */
	pgc_link *idle;
	bool *donate_asked;           /* per worker: asked to give an idle server to a waiter elsewhere */
	pgc_link waiters;             /* FIFO of clients */
	int n_waiters;
	pgc_params welcome;           /* server parameters learned at the first login, server-wide ones kept current */
	unsigned server_wide_gen;     /* +1 when a server-wide parameter changed (atomic): clients look again */
	pgc_stmt_registry stmts;      /* prepared statements of its clients (own lock) */
	bool have_welcome;
	/*
	 * SCRAM pass-through (lock): the ClientKey and ServerKey a client of this
	 * pool proved with SCRAM against a stored secret of the server login
	 * user; servers then log in with them, so no clear password is needed.
	 */
	uint8_t scram_keys[64];
	bool have_scram_keys;
	char *learned_secret;         /* the login user's secret from auth_query, for md5 pass-through (lock) */
	pgc_params canon;             /* "name=value as a client sent it" -> the server's spelling (lock) */
	struct pgc_counter *db_count;   /* server connections to this database, all pools */
	struct pgc_counter *user_count; /* server connections of this user, all pools */
	bool starving;                /* waiters blocked by max_db/max_user_connections (lock) */
	/*
	 * Failed server logins (pool.c; all under the pool lock). A failed
	 * login (pgc_pool_server_gone with an error) makes the pool wait
	 * before the next one: server_login_retry after the first failure,
	 * doubled after each further one in a row, at most four times
	 * server_login_retry; after the wait, one login at a time until one
	 * works. Meanwhile, when the pool has no server left, every client
	 * that needs one gets login_error at once instead of waiting. The
	 * first login that works (pgc_pool_put of a starting server) clears
	 * this; so do a reload and new pass-through credentials (cauth.c),
	 * which retry at once.
	 */
	int login_failures;           /* failed logins in a row; 0: none */
	double login_retry_at;        /* monotonic seconds: no new login before this */
	pgc_msgbuf *login_error;      /* ErrorResponse of the last failure, NULL if none */
	/* ---- statistics (stats.h) ---- */
	struct pgc_dbstats *stats;    /* its database's counters (never freed) */
	bool exhaustion_logged;       /* this episode of clients waiting with every server busy was logged (lock) */
	pgc_pool *next;               /* engine->pools list */
};

/* A per-worker message queue: clients handed a server or an error by another worker. */
struct pgc_worker {
	pgc_kind kind;                /* PGC_KIND_WAKEUP, for the eventfd registration */
	int id;
	struct pgc_poller *poller;    /* its event loop's readiness (poller.h: epoll or io_uring) */
	int wakefd;                   /* eventfd */
	pthread_t thread;
	pgc_engine *engine;
	int *listen_fds;
	int n_listen;
	pgc_kind listener_kind;       /* epoll data for listeners points here */
	pthread_mutex_t inbox_lock;
	pgc_client *inbox;            /* LIFO; order within one wake-up does not matter */
	atomic_bool wake_pending;     /* something was posted since its last drain (worker.c) */
	atomic_bool in_wait;          /* it is in (or about to enter) its wait for events: a post must wake it */
	pgc_pool **donate;            /* pools whose waiters want one of our idle servers (inbox lock) */
	int n_donate, cap_donate;
	pgc_link clients;
	pgc_link servers;             /* owned servers */
	pgc_link cancels;             /* cancel requests being forwarded */
	int n_clients;
	pgc_iobuf *free_bufs;
	int n_free_bufs;
	int free_bufs_low;            /* fewest free buffers since the last tick: the rest were not needed */
	struct pgc_shared_params **share_buckets; /* its clients' shared parameter lists (pshare.c) */
	uint32_t share_nbuckets, share_count;
	struct pgc_poll_event *events; /* current batch, so closed objects can be forgotten */
	int n_events;
	int tls_steps;                /* TLS handshake steps with clients in this round */
	void **ready;                 /* objects with decrypted TLS bytes waiting (pgc_worker_ready) */
	int n_ready, cap_ready;
	double now;
	double next_tick;
	bool stopping;
	/* ---- accept.c: admission of new clients ---- */
	int spare_fd;                 /* held in reserve to accept-and-refuse a client when out of descriptors; -1 if lost */
	int n_login;                  /* its clients in the login phase (max_login_clients is shared out among workers) */
	unsigned accept_paused;       /* PGC_ACCEPT_PAUSED_* bits: why its listeners are edge-triggered now */
	int n_refusing;               /* its refused clients waiting for their startup packet to hear why */
	bool spare_lent;              /* spare_fd's slot is the connection of a refused client now */
	double vanished_reaped_at;    /* w->now of its last look for vanished clients (accept.c) */
	uint64_t vanished_reaped_upto; /* serial of its newest client then */
	uint32_t random[64];          /* cancel keys to hand out (one getrandom() per 64 logins, client.c) */
	int n_random;                 /* how many of them are left */
	/* ---- statistics and listings (stats.h, census.h) ---- */
	struct pgc_worker_stats *stats;      /* its event loop's counters (written by this worker only) */
	struct pgc_census_ask *census_asks;  /* listings to describe its objects into (inbox lock) */
	bool census_closed;           /* its loop has ended: listings get an empty answer at once (inbox lock) */
	struct pgc_census *census_mine;      /* listings its own clients asked for (this worker only) */
	/* ---- pipelining (pipeline.h) ---- */
	pgc_server **pipe_flush;      /* servers with followers' units to write at the end of the round */
	int n_pipe_flush, cap_pipe_flush;
	pgc_client *pipe_redo;        /* clients whose pipelined unit is to run again (a list via pipe_next) */
};

struct pgc_engine {
	_Atomic(const pgc_config *) cfg;  /* current config; replaced on reload */
	pthread_mutex_t cfg_lock;     /* protects cfg pointer swap and pool registry */
	pgc_config **old_cfgs;        /* kept until exit: workers may still read them */
	int n_old_cfgs;
	uint64_t generation;
	pgc_worker *workers;
	int n_workers;
	int unix_fd;                  /* shared by all workers; -1 if none */
	char unix_path[256];
	pgc_pool *pools;
	atomic_int clients_total;
	atomic_bool shutting_down;    /* SIGINT: graceful */
	atomic_uint next_pid;
	atomic_ullong next_serial;    /* pgc_client.serial */
	const pgc_config *listener_cfg; /* the config its TCP listeners' socket options came from (netopt.h) */
	atomic_ulong pins_total;      /* clients pinned to a server by the guard, ever */
	atomic_bool paused_all;       /* PAUSE or KILL of every database (control.c) */
	atomic_bool draining;         /* SHUTDOWN WAIT_FOR_CLIENTS: no new clients, exit when none is left */
	/*
	 * Listings in progress (census.h): while non-zero, no server changes
	 * worker (pool.c), so that each is listed by exactly one worker.
	 */
	atomic_int census_freeze;
	/* counters keyed by name, never freed */
	/*
	 * Server connections per database and per user across pools, for
	 * max_db_connections / max_user_connections; "starving" counts the pools
	 * that wait on that limit, so that other pools give up idle servers.
	 */
	struct pgc_counter {
		char *name;
		atomic_int count;
		atomic_int starving;
		/*
		 * Databases only: counts the DDL pgcarrier has seen its clients run,
		 * so that shared prepared statements parsed before it are not
		 * handed to clients that parse after it (guard.c).
		 */
		atomic_ullong ddl_epoch;
		/* Databases only: the DBA's commands (control.c). */
		atomic_bool paused;       /* PAUSE / KILL until RESUME */
		atomic_bool disabled;     /* DISABLE until ENABLE */
		atomic_uint kill_gen;     /* KILL: clients logged in before it end */
		struct pgc_counter *next;
	} *db_counters, *user_counters;
	/* ---- engine.c: the Unix socket's lock file; only what is still ours is removed at exit ---- */
	char unix_lock_path[256];     /* unix_path + ".lock" (a socket path fits in sun_path, 108 bytes) */
	bool unix_lock_held;          /* we created unix_lock_path (it holds our pid) */
	dev_t unix_dev;               /* the socket file we bound, to recognise it at exit */
	ino_t unix_ino;
	/* ---- accept.c ---- */
	struct pgc_login_addrs *login_addrs;  /* clients in the login phase per source address (own lock) */
	/* ---- stats.c: counters per database and per worker ---- */
	struct pgc_stats *stats;
};

/* ---- util ---- */
double pgc_now(void);
void pgc_list_init(pgc_link *l);
void pgc_list_push_head(pgc_link *l, pgc_link *n);
void pgc_list_push_tail(pgc_link *l, pgc_link *n);
void pgc_list_remove(pgc_link *n);
bool pgc_list_empty(const pgc_link *l);
#define pgc_container_of(ptr, type, member) ((type *) ((char *) (ptr) - offsetof(type, member)))

/*
 * "host:port" of client c, or "unix:fd", for log lines. Made when asked (a
 * client does not keep it): one of PGC_ADDR_BUFS buffers of the calling
 * thread, valid until as many more calls have been made there.
 */
#define PGC_ADDR_BUFS 4
const char *pgc_client_addr(const pgc_client *c);

void pgc_params_set(pgc_params *p, const char *key, const char *value);
const char *pgc_params_get(const pgc_params *p, const char *key);
void pgc_params_remove(pgc_params *p, const char *key);
void pgc_params_free(pgc_params *p);
/* Replace dst with a copy of src (dst left empty when out of memory). */
void pgc_params_copy(pgc_params *dst, const pgc_params *src);
/* Byte for byte the same list (the same pairs in the same order). */
bool pgc_params_equal(const pgc_params *a, const pgc_params *b);
/* Whether m holds these inputs; keep them in m; free m. */
bool pgc_params_memo_holds(const pgc_params_memo *m, const pgc_params *client, const pgc_params *server,
						   unsigned gen);
void pgc_params_memo_keep(pgc_params_memo *m, const pgc_params *client, const pgc_params *server, unsigned gen);
void pgc_params_memo_free(pgc_params_memo *m);
/* Iterate: pos starts at 0; returns 0 at the end. */
int pgc_params_next(const pgc_params *p, size_t *pos, const char **key, const char **value);
/* True for parameters PostgreSQL reports with ParameterStatus (GUC_REPORT). */
bool pgc_param_is_reported(const char *key);
/*
 * Reported parameters a session cannot SET (server_version, is_superuser,
 * ...), and session_authorization, which the guard pins rather than
 * replays: never replayed on another server connection.
 */
bool pgc_param_is_read_only(const char *key);
/* A reported parameter that is the server's, not the session's (in_hot_standby: a promotion changes it). */
bool pgc_param_is_server_wide(const char *key);
/* Keep the pool's welcome current for the server-wide parameters in params (pool lock held). */
void pgc_pool_server_wide_params(pgc_pool *p, const pgc_params *params);

/* ---- iobuf.c ---- */
/* A new empty buffer of PGC_IOBUF_SIZE (NULL when out of memory), and how any buffer is freed (mapped or malloc'd). */
pgc_iobuf *pgc_iobuf_new(void);
void pgc_iobuf_free(pgc_iobuf *b);
/* Read once into *bufp (taken from w's free list if NULL). Bytes read, 0 on EOF, -1 on error, -2 if nothing now. */
/*
 * All of these take the connection's TLS (NULL for a plain socket). With TLS,
 * "all written" also means no ciphertext waits for the socket.
 */
ssize_t pgc_iobuf_read(pgc_worker *w, int fd, struct pgc_tls *tls, pgc_iobuf **bufp);
/* Write b[start, scan) to fd. 1 when all is written, 0 when the socket is full, -1 on error. */
int pgc_iobuf_write(int fd, struct pgc_tls *tls, pgc_iobuf *b);
/* Write m (NULL is fine) and drop what was written. 1 all written, 0 socket full, -1 error. */
int pgc_msgbuf_write(int fd, struct pgc_tls *tls, pgc_msgbuf *m);
/*
 * Write m, then b[start, scan), with one system call when the socket takes
 * it all: what pgcarrier composed goes first. Either may be NULL. 1 all
 * written, 0 socket full, -1 error.
 */
int pgc_write_both(int fd, struct pgc_tls *tls, pgc_msgbuf *m, pgc_iobuf *b);
/*
 * Framing helpers: a message of total bytes starts at b->scan. pass() lets
 * it through (all of it that is there; *skip counts what is still to come);
 * pass_rest() lets through what is still to come of one, true when done.
 */
void pgc_iobuf_pass(pgc_iobuf *b, size_t total, uint32_t *skip);
/*
 * A buffer holding b's bytes [start, end) with room for the whole message
 * of total bytes at scan: b itself when it has that room (compacted if need
 * be), else a bigger copy, and b is freed. NULL when out of memory (b is
 * untouched).
 */
pgc_iobuf *pgc_iobuf_grow(pgc_iobuf *b, size_t total);
bool pgc_iobuf_pass_rest(pgc_iobuf *b, uint32_t *skip);
/* The message buffer in *slot, allocated on first use (NULL if out of memory). */
pgc_msgbuf *pgc_msgbuf_ensure(pgc_msgbuf **slot);
/* Free the message buffer in *slot, if any, and clear the slot. */
void pgc_msgbuf_release(pgc_msgbuf **slot);

/* ---- worker.c ---- */
extern __thread pgc_worker *pgc_current_worker;
pgc_iobuf *pgc_worker_get_buf(pgc_worker *w);
void pgc_worker_put_buf(pgc_worker *w, pgc_iobuf *b);
void pgc_worker_forget(pgc_worker *w, void *ptr);
/*
 * ptr (a client or server) has decrypted TLS bytes waiting that the socket
 * will not announce: give it an EPOLLIN event after this batch. tls is its
 * connection (marks it queued, so it is added once).
 */
void pgc_worker_ready(pgc_worker *w, void *ptr, struct pgc_tls *tls);
int pgc_worker_watch(pgc_worker *w, int fd, void *ptr, uint32_t events);
int pgc_worker_rewatch(pgc_worker *w, int fd, void *ptr, uint32_t events);
void pgc_worker_unwatch(pgc_worker *w, int fd);
/*
 * fd leaves w's watch because the caller closes it right after (no other
 * copy of it exists): free with epoll, a cancellation with io_uring.
 */
void pgc_worker_unwatch_closing(pgc_worker *w, int fd);
/* Put c on its worker's inbox and wake that worker. Caller holds c's pool lock. */
void pgc_worker_post(pgc_client *c);
/* Wake worker w (nothing happens if it is the calling thread's: its inbox is drained after every batch). */
void pgc_worker_wake(pgc_worker *w);
/* Ask worker w to give idle servers of p to p's waiters. */
void pgc_worker_ask_donation(pgc_worker *w, pgc_pool *p);
void *pgc_worker_main(void *arg);

/* ---- client.c ---- */
void pgc_client_accept(pgc_worker *w, int listen_fd);
void pgc_client_event(pgc_client *c, uint32_t events);
/* The pool gave c a server (s) or an error; runs on c's worker. */
void pgc_client_handoff(pgc_client *c);
void pgc_client_fatal(pgc_client *c, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void pgc_client_close(pgc_client *c, const char *reason);
void pgc_client_tick(pgc_client *c, double now);
/* A client without a server has sent its first message: queue for a server. */
void pgc_client_begin_request(pgc_client *c);
/* Set the epoll interest of c from its state. */
void pgc_client_update_events(pgc_client *c);
/* Write what pgcarrier composed for c: 1 done, 0 blocked, -1 error. */
int pgc_client_flush_out(pgc_client *c);
/* Give back buffers an idle client does not need. */
void pgc_client_trim(pgc_client *c);
/* The startup parameters were applied on the first server: welcome the client. */
void pgc_client_finish_welcome(pgc_client *c);

/* ---- server.c ---- */
/* Start a new server connection for pool p on worker w (counted in p->total by the caller). */
void pgc_server_launch(pgc_worker *w, pgc_pool *p);
void pgc_server_event(pgc_server *s, uint32_t events);
/* s now belongs to worker w (it came from the pool or another worker). */
void pgc_server_adopt(pgc_server *s, pgc_worker *w);
/* Give s back: reset if needed, then idle in the pool or straight to a waiter. */
void pgc_server_release(pgc_server *s);
/* Free s and everything it holds; its pool slot must already be given back. */
void pgc_server_destroy(pgc_server *s);
/* Close and free s, fixing the pool's counts. */
void pgc_server_close(pgc_server *s, const char *reason);
/* Set the epoll interest of an owned server (registering it if needed). */
void pgc_server_set_events(pgc_server *s, uint32_t events);
void pgc_server_tick(pgc_server *s, double now);
/* Queue the parameter sync for c's settings in front of c's first message. */
void pgc_server_sync_params(pgc_server *s, pgc_client *c);
/* pgc_server_sync_params(s, c) would send nothing, as far as its memo tells (pipeline.c). */
bool pgc_server_params_match(pgc_server *s, pgc_client *c);
/* Set the epoll interest of a linked server from its buffers. */
void pgc_server_update_events(pgc_server *s);
/*
 * s, taken idle from its pool (slot kept), runs server_check_query on w
 * first; the pool gets it back when the check has answered, or loses it
 * if the check fails (server_check_delay, compat.h).
 */
void pgc_server_check(pgc_server *s, pgc_worker *w);

/* ---- pool.c ---- */
/* Find or create the pool for a client; NULL with a message when the database is unknown. */
pgc_pool *pgc_pool_get(pgc_engine *e, const char *dbname, const char *user, char *err, size_t errlen);
/* Ask for a server for c: links at once (returns true) or queues c. */
bool pgc_pool_request(pgc_client *c);
/* c leaves the pool queue (closing); returns a server handed to it in the meantime, if any. */
pgc_server *pgc_pool_cancel_wait(pgc_client *c);
/* Server s (owned by the calling worker, unregistered) is ready for the next client. */
void pgc_pool_put(pgc_server *s);
/* A server of p is gone (closed or failed to log in); err: the error to give waiters if no server remains. */
void pgc_pool_server_gone(pgc_pool *p, bool was_connecting, const pgc_msgbuf *err);
/* Periodic work of worker 0: waiter timeouts, reserve pool, min_pool_size. */
void pgc_pool_maintain(pgc_engine *e, pgc_worker *w, double now);
/* Periodic work of every worker on its own idle servers: timeouts, lifetimes; all of them when closing_all. */
void pgc_pool_maintain_idle(pgc_engine *e, pgc_worker *w, double now, bool closing_all);
/* Give our idle servers of the pools that asked to their waiters (runs on w). */
void pgc_pool_donate(pgc_worker *w, pgc_pool *p);
/* The newest pool; ->next walks them all (pools are only prepended, never freed while the engine runs). Any thread. */
pgc_pool *pgc_pool_first(pgc_engine *e);
/* Servers may change worker again (a listing ended): ask donors for every pool's waiters. Any thread. */
void pgc_pool_kick_waiters(pgc_engine *e);
/* An idle server of ours said something or closed: drop it. */
void pgc_pool_idle_event(pgc_server *s);
/* The engine's counter of database name (made if new); caller holds engine->cfg_lock. */
struct pgc_counter *pgc_pool_db_counter(pgc_engine *e, const char *name);
/* PAUSE or KILL holds the pool's database (control.c). */
bool pgc_pool_paused(const pgc_pool *p);
/*
 * No server of p is idle on any worker, none can be added, no client
 * waits and p is not paused: a unit may be pipelined (pipeline.h).
 * Caller holds p->lock.
 */
bool pgc_pool_all_busy_unlocked(const pgc_pool *p, const pgc_engine *e);
/* The client that has waited longest for a server of p, or NULL; and taking it off the queue. Lock held. */
pgc_client *pgc_pool_oldest_waiter_unlocked(pgc_pool *p);
void pgc_pool_unqueue_unlocked(pgc_pool *p, pgc_client *c);
/* Refresh every pool's settings from the current config. */
void pgc_pool_reconfigure(pgc_engine *e);
void pgc_pool_free_all(pgc_engine *e);
int pgc_pool_mode_of(const pgc_pool *p);

/* ---- cancel.c ---- */
/* KILL_CLIENT: mark the logged-in client with this pid (its id) to be ended by its worker. False if none. */
bool pgc_cancel_kill(uint32_t pid);
void pgc_cancel_register(pgc_client *c);
void pgc_cancel_unregister(pgc_client *c);
/*
 * Forward a CancelRequest for (pid, key) from worker w. Takes client_fd (the
 * requesting connection) and closes it once the server has closed ours.
 */
void pgc_cancel_forward(pgc_worker *w, uint32_t pid, uint32_t key, int client_fd);
/* Give up on cancel forwards that take too long. */
void pgc_cancel_tick(pgc_worker *w, double now);
void pgc_cancel_event(void *conn, uint32_t events);
void pgc_cancel_drop_all(pgc_worker *w);
/* Send a CancelRequest for what s's backend runs now (query_timeout); nothing waits for it. */
void pgc_cancel_backend(pgc_worker *w, const pgc_server *s);

/* ---- engine.c ---- */
extern pgc_engine *pgc_the_engine;
const pgc_config *pgc_engine_config(void);

#endif
