/*
 * sauth.h - the client side of PostgreSQL password authentication, used by
 * pgcarrier to log in to servers: md5 and SCRAM-SHA-256 (RFC 5802/7677,
 * without channel binding: "n,," GS2 header). Crypto comes from OpenSSL.
 * The server side (pgcarrier verifying its own clients) and SCRAM
 * pass-through are in the second half of this file.
 *
 * Contract:
 *  - Pure functions over bytes: no I/O, no logging, never prints a secret.
 *  - A "secret" may be a clear-text password, or a stored md5 hash
 *    ("md5" + 32 hex digits), which md5 authentication can use directly.
 *    SCRAM needs the clear-text password (pass-through comes later).
 *  - Passwords are used as given (no SASLprep): exact for ASCII passwords,
 *    which is what PostgreSQL does too when SASLprep changes nothing.
 */
#ifndef PGC_SAUTH_H
#define PGC_SAUTH_H

#include <stddef.h>
#include <stdint.h>

/* True if secret looks like a stored md5 hash: "md5" + 32 lowercase hex digits. */
int pgc_secret_is_md5(const char *secret);

/* True if secret looks like a stored SCRAM secret ("SCRAM-SHA-256$..."). */
int pgc_secret_is_scram(const char *secret);

/*
 * The answer to AuthenticationMD5Password: "md5" + hex(md5(inner + salt)),
 * where inner = hex(md5(password + user)), or inner = secret+3 when the secret
 * is already a stored md5 hash. out receives 35 characters and a NUL.
 */
void pgc_md5_response(const char *secret, const char *user, const uint8_t salt[4], char out[36]);

typedef struct pgc_scram_client pgc_scram_client;

/* Start an exchange for this clear-text password. NULL on allocation failure. */
pgc_scram_client *pgc_scram_client_new(const char *password);

/* Test hook: use this client nonce (printable, no ',') instead of a random one. Call before _first. */
void pgc_scram_client_set_nonce(pgc_scram_client *sc, const char *nonce);

/*
 * client-first-message ("n,,n=,r=<nonce>"), to be sent in SASLInitialResponse
 * with mechanism "SCRAM-SHA-256". Returns its length, or -1 if cap is too small.
 */
int pgc_scram_client_first(pgc_scram_client *sc, char *out, size_t cap);

/*
 * Given server-first-message (from AuthenticationSASLContinue), write
 * client-final-message (for SASLResponse). Returns its length, or -1 with a
 * reason in err (bad message, nonce mismatch, iteration count invalid, ...).
 */
int pgc_scram_client_final(pgc_scram_client *sc, const char *server_first, size_t len,
						   char *out, size_t cap, char *err, size_t errlen);

/*
 * Check server-final-message (from AuthenticationSASLFinal): "v=<signature>".
 * Returns 0 if the server proved it knows the password, -1 with err otherwise.
 */
int pgc_scram_client_verify(pgc_scram_client *sc, const char *server_final, size_t len,
							char *err, size_t errlen);

/* Wipe and free. NULL is fine. */
void pgc_scram_client_free(pgc_scram_client *sc);

/* ===================================================================== */
/*
 * Server side: pgcarrier verifying its own clients (md5, clear-text
 * password, SCRAM-SHA-256 and SCRAM-SHA-256-PLUS with tls-server-end-point
 * channel binding), behaving as PostgreSQL 15's auth.c / auth-scram.c.
 *
 * Secrets, as in an auth file or from auth_query: clear text, "md5" + 32
 * hex digits, or "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>".
 * A string that is neither of the last two is a clear-text password (as
 * PostgreSQL's get_password_type). An empty secret never authenticates.
 * No SASLprep: clear-text passwords are used as given (exact for ASCII).
 * Comparisons of anything derived from a secret are constant-time.
 * ===================================================================== */

#define PGC_SCRAM_KEY_LEN            32
#define PGC_SCRAM_MECH               "SCRAM-SHA-256"
#define PGC_SCRAM_MECH_PLUS          "SCRAM-SHA-256-PLUS"
#define PGC_SCRAM_DEFAULT_ITERATIONS 4096
#define PGC_SCRAM_SALT_B64_MAX       256     /* longest base64 salt in a stored secret */
#define PGC_SCRAM_SECRET_BUF         512     /* room for any secret pgc_scram_secret_build* writes */

/* A parsed stored SCRAM secret. */
typedef struct pgc_scram_secret {
	int iterations;
	char salt[PGC_SCRAM_SALT_B64_MAX + 1];      /* base64, exactly as stored */
	uint8_t stored_key[PGC_SCRAM_KEY_LEN];
	uint8_t server_key[PGC_SCRAM_KEY_LEN];
} pgc_scram_secret;

/* Parse "SCRAM-SHA-256$..." into out. 0 ok, -1 not a valid SCRAM secret. */
int pgc_scram_secret_parse(const char *secret, pgc_scram_secret *out);

/*
 * Build a stored secret from a clear-text password: 16 random salt bytes,
 * 4096 iterations (PostgreSQL's defaults). Returns its length, -1 on error
 * (cap too small, no randomness). PGC_SCRAM_SECRET_BUF is always enough.
 */
int pgc_scram_secret_build(const char *password, char *out, size_t cap);

/* Same with a given salt (1 to 192 bytes) and iteration count (1 to 10000000). */
int pgc_scram_secret_build_salt(const char *password, const uint8_t *salt, size_t salt_len,
								int iterations, char *out, size_t cap);

/*
 * Does this clear-text password match this SCRAM secret? 0 yes, -1 no (or an
 * invalid secret, or more than 10000000 iterations: that would stall us).
 */
int pgc_scram_verify_plain(const char *secret, const char *password);

/*
 * "password" authentication: the client sent password in clear text.
 * Works with any kind of secret (for an md5 secret, user is mixed in as
 * PostgreSQL does). 0 match, -1 no match. An empty password never matches
 * (PostgreSQL answers "empty password returned by client", 28P01).
 */
int pgc_password_verify(const char *secret, const char *user, const char *password);

/*
 * "md5" authentication: response (len bytes, from PasswordMessage, without
 * its NUL) answers AuthenticationMD5Password with this salt. secret is a
 * clear-text password or an md5 secret. 0 match, -1 no match; always -1 for
 * a SCRAM secret (PostgreSQL then does SCRAM instead of md5: the caller
 * should check pgc_secret_is_scram() before choosing md5).
 */
int pgc_md5_verify(const char *secret, const char *user, const uint8_t salt[4],
				   const char *response, size_t len);

/*
 * Why a server-side step failed, in PostgreSQL's words, ready for an
 * ErrorResponse (severity FATAL): S=sqlstate, M=message, D=detail (when
 * not empty). log_detail, when not empty, is for pgcarrier's log only
 * (PostgreSQL's logdetail); none of these ever holds a secret.
 */
typedef enum pgc_sauth_rc {
	PGC_SAUTH_PROTOCOL = -1,      /* 08P01: malformed SCRAM message, nonce mismatch, ... */
	PGC_SAUTH_FAILED = -2,        /* 28P01: password authentication failed for user "..." */
	PGC_SAUTH_CHANNEL = -3,       /* 28000: channel binding check / negotiation failed */
	PGC_SAUTH_UNSUPPORTED = -4,   /* 0A000: authzid, mandatory extension */
	PGC_SAUTH_INTERNAL = -5       /* XX000 / 53200: wrong call order, output too small, OpenSSL, memory */
} pgc_sauth_rc;

typedef struct pgc_sauth_error {
	char sqlstate[6];
	char message[256];
	char detail[256];
	char log_detail[256];
} pgc_sauth_error;

typedef struct pgc_scram_server pgc_scram_server;

/*
 * Start verifying a client that logs in as user with this stored secret.
 *  - secret NULL (unknown user), empty, an md5 secret or a broken SCRAM
 *    secret: a "mock" exchange, as PostgreSQL does to not reveal which users
 *    exist: a plausible salt (the same for the same user in this process)
 *    and 4096 iterations, and failure (28P01) at the end whatever the client
 *    proves.
 *  - a clear-text password: a SCRAM secret is built for it on the fly (random
 *    salt, 4096 iterations). Pass-through (pgc_scram_server_keys) then gives
 *    keys for that salt, which the real server won't accept: log in to it
 *    with the clear-text password instead.
 *  - cb_data/cb_len: the tls-server-end-point hash of pgcarrier's certificate
 *    (pgc_tls_server_end_point) when the client connection uses TLS, else
 *    NULL/0. With it, the caller should advertise PGC_SCRAM_MECH_PLUS first,
 *    then PGC_SCRAM_MECH; without it, only PGC_SCRAM_MECH.
 * NULL on allocation failure (or cb_len > 1024).
 */
pgc_scram_server *pgc_scram_server_new(const char *user, const char *secret,
									   const uint8_t *cb_data, size_t cb_len);

/* Test hook: the server's part of the nonce (printable, no ','), instead of 18 random bytes in base64. */
void pgc_scram_server_set_nonce(pgc_scram_server *ss, const char *nonce);

/*
 * mechanism and client_first come from SASLInitialResponse (if its data
 * length was -1, send an empty AuthenticationSASLContinue first, and pass
 * the data of the next SASLResponse here). Writes server-first-message
 * (for AuthenticationSASLContinue) and returns its length, or a
 * pgc_sauth_rc (< 0) with err filled.
 */
int pgc_scram_server_first(pgc_scram_server *ss, const char *mechanism,
						   const char *client_first, size_t len,
						   char *out, size_t cap, pgc_sauth_error *err);

/*
 * client_final comes from SASLResponse. On success writes server-final-message
 * ("v=...", for AuthenticationSASLFinal) and returns its length; then send
 * AuthenticationOk. Else a pgc_sauth_rc (< 0) with err filled (for a wrong
 * proof: PGC_SAUTH_FAILED; PostgreSQL sends no e= message, just the error).
 */
int pgc_scram_server_final(pgc_scram_server *ss, const char *client_final, size_t len,
						   char *out, size_t cap, pgc_sauth_error *err);

/*
 * After a successful pgc_scram_server_final: the client's ClientKey
 * (ClientProof XOR ClientSignature, checked against StoredKey) and the
 * secret's ServerKey, for logging in to PostgreSQL with the same secret
 * (pgc_scram_client_new_keys). 0 ok, -1 if the exchange did not succeed.
 */
int pgc_scram_server_keys(const pgc_scram_server *ss, uint8_t client_key[PGC_SCRAM_KEY_LEN],
						  uint8_t server_key[PGC_SCRAM_KEY_LEN]);

/* Wipe and free. NULL is fine. */
void pgc_scram_server_free(pgc_scram_server *ss);

/*
 * tls-server-end-point channel binding data (RFC 5929) of a DER certificate:
 * its hash with the hash function of its signature algorithm, SHA-256 when
 * that is MD5 or SHA-1 (as PostgreSQL's be_tls_get_certificate_hash).
 * Returns the hash length, or -1 (not a certificate, no single hash in its
 * signature algorithm such as Ed25519 or RSA-PSS, or cap too small;
 * EVP_MAX_MD_SIZE = 64 is always enough).
 */
int pgc_tls_server_end_point(const uint8_t *der, size_t der_len, uint8_t *out, size_t cap);

/*
 * SCRAM pass-through, client side: log in to PostgreSQL with a ClientKey and
 * ServerKey (from pgc_scram_server_keys) instead of a password. Use it as a
 * client from pgc_scram_client_new (set_nonce, first, verify, free work the
 * same), but answer server-first with pgc_scram_client_final_keys.
 * (pgc_scram_client_final on such a client computes a proof no server
 * accepts.) The server's salt and iteration count are not needed: it accepts
 * the proof only if its secret has the same StoredKey, and
 * pgc_scram_client_verify still checks that it knows the same ServerKey.
 */
pgc_scram_client *pgc_scram_client_new_keys(const uint8_t client_key[PGC_SCRAM_KEY_LEN],
											const uint8_t server_key[PGC_SCRAM_KEY_LEN]);

/* As pgc_scram_client_final, for a client from pgc_scram_client_new_keys (-1 for any other). */
int pgc_scram_client_final_keys(pgc_scram_client *sc, const char *server_first, size_t len,
								char *out, size_t cap, char *err, size_t errlen);

#endif
