/*
 * sauth.h - the client side of PostgreSQL password authentication, used by
 * pgcarrier to log in to servers: md5 and SCRAM-SHA-256 (RFC 5802/7677,
 * without channel binding: "n,," GS2 header). Crypto comes from OpenSSL.
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

#endif
