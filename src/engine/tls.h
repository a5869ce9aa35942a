/*
 * tls.h - TLS on a nonblocking socket (OpenSSL), for clients and servers.
 *
 * Contract:
 *  - Contexts are built once per configuration (pgc_tls_config_prepare, at
 *    load and reload) from the client_tls_* and server_tls_* settings; a
 *    missing or unreadable certificate, key or CA file, or a key that does
 *    not match its certificate, refuses the configuration with a message.
 *    The contexts live as long as their configuration.
 *  - A pgc_tls wraps one socket. It reads from the socket itself, but what
 *    it encrypts goes into its own buffer first and then to the socket, so
 *    pgc_tls_write() always takes whole plaintext and never asks to be
 *    called again with the same bytes (OpenSSL's retry rule): callers keep
 *    their plain buffers as they are. Ciphertext collects in the pgc_tls
 *    and leaves at pgc_tls_flush() (or once 64 kB wait), so that a batch
 *    of writes ends with one flush and costs one system call. When the
 *    socket is full, ciphertext waits in the pgc_tls (pgc_tls_wants_write)
 *    and the caller waits for EPOLLOUT, then calls pgc_tls_flush() or any
 *    write again.
 *  - Decrypted bytes that did not fit into the caller's buffer stay inside
 *    (pgc_tls_pending): the socket is no longer readable for them, so the
 *    caller must come back without waiting for epoll (pgc_worker_ready).
 *  - No renegotiation. Towards clients: TLS 1.2 session resumption with
 *    stateless tickets (keys per context, so a reload ends them); no TLS
 *    1.3 tickets, no server-side session cache. Towards servers: no
 *    resumption (PostgreSQL has none).
 *  - Nothing here logs; errors come back as text for the caller's message.
 */
#ifndef PGC_TLS_H
#define PGC_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pgc_config;

/* sslmode values, libpq's names, in increasing strictness. */
typedef enum pgc_sslmode {
	PGC_SSLMODE_DISABLE = 0,
	PGC_SSLMODE_ALLOW,
	PGC_SSLMODE_PREFER,
	PGC_SSLMODE_REQUIRE,
	PGC_SSLMODE_VERIFY_CA,
	PGC_SSLMODE_VERIFY_FULL
} pgc_sslmode;

/* "disable" ... "verify-full" to a pgc_sslmode; -1 if none of them. */
int pgc_sslmode_parse(const char *s);
const char *pgc_sslmode_name(int mode);

/*
 * Build cfg's TLS contexts from its settings; relative file names are taken
 * relative to dir (NULL: the current directory). 0 ok, -1 with a message in
 * err naming the setting and the file.
 */
int pgc_tls_config_prepare(struct pgc_config *cfg, const char *dir, char *err, size_t errlen);
void pgc_tls_config_release(struct pgc_config *cfg);

/* Whether cfg accepts TLS from clients / uses it towards servers. */
bool pgc_tls_client_enabled(const struct pgc_config *cfg);
bool pgc_tls_server_enabled(const struct pgc_config *cfg);

typedef struct pgc_tls pgc_tls;

/* TLS as the server, for a client that sent SSLRequest and got 'S'. NULL on failure. */
pgc_tls *pgc_tls_accept(const struct pgc_config *cfg, int fd);
/*
 * TLS as the client, towards PostgreSQL at host (a name or address, for SNI
 * and, with verify-full, the certificate check). NULL on failure.
 */
pgc_tls *pgc_tls_connect(const struct pgc_config *cfg, int fd, const char *host);

/* Drive the handshake: 1 done, 0 call again when the socket is ready, -1 failed (reason in err). */
int pgc_tls_handshake(pgc_tls *t, char *err, size_t errlen);

/* Decrypt into buf: bytes, 0 at the end of the stream, -1 on error, -2 nothing now. */
ssize_t pgc_tls_read(pgc_tls *t, void *buf, size_t cap);

/*
 * Encrypt data; the ciphertext goes to the socket at pgc_tls_flush(), or
 * here once 64 kB of it wait. Returns how many plaintext bytes were taken
 * (all of them unless that much ciphertext was waiting for a full socket),
 * or -1 on error. Call pgc_tls_flush() after the last write of a batch,
 * then check pgc_tls_wants_write().
 */
ssize_t pgc_tls_write(pgc_tls *t, const void *data, size_t len);

/* Send waiting ciphertext: 1 nothing left, 0 socket full, -1 error. */
int pgc_tls_flush(pgc_tls *t);
bool pgc_tls_wants_write(const pgc_tls *t);
/* Decrypted bytes are waiting inside: read again without waiting for the socket. */
bool pgc_tls_pending(const pgc_tls *t);

/* Free (the socket stays open; no close_notify: the peer sees the socket close). */
void pgc_tls_free(pgc_tls *t);

/*
 * The client's certificate: 1 a certificate was presented and verified
 * against client_tls_ca_file, its CN copied into cn; 0 none presented;
 * -1 presented but not verified, or without a CN (reason in cn).
 */
int pgc_tls_peer_cn(pgc_tls *t, char *cn, size_t cap);

/* tls-server-end-point data of our own certificate, for SCRAM-SHA-256-PLUS: length, or -1. */
int pgc_tls_channel_binding(const pgc_tls *t, const uint8_t **data);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for logs. */
void pgc_tls_describe(const pgc_tls *t, char *out, size_t cap);

/* Mark for the worker's ready list (pgc_worker_ready): avoids adding twice. */
bool *pgc_tls_ready_flag(pgc_tls *t);

#endif
