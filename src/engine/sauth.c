/*
 * sauth.c - PostgreSQL password authentication (md5, SCRAM-SHA-256): the
 * client side (without channel binding), then the server side (with
 * tls-server-end-point channel binding) and SCRAM pass-through; see sauth.h.
 *
 * SCRAM-SHA-256 in brief (RFC 5802, RFC 7677), as computed here:
 *   SaltedPassword  = PBKDF2-HMAC-SHA-256(password, salt, iterations)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key")
 *   StoredKey       = SHA-256(ClientKey)
 *   AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
 *   ClientSignature = HMAC(StoredKey, AuthMessage)
 *   ClientProof     = ClientKey XOR ClientSignature
 *   ServerKey       = HMAC(SaltedPassword, "Server Key")
 *   ServerSignature = HMAC(ServerKey, AuthMessage)
 */
#include "sauth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRAM_KEY_LEN        32          /* SHA-256 output */
#define SCRAM_NONCE_RAW_LEN  18          /* random bytes in our nonce */
#define SCRAM_MAX_ITERATIONS 10000000L   /* refuse more: it would stall us */
#define SCRAM_MAX_MESSAGE    16384       /* no sane server message is longer */
#define SCRAM_MAX_NONCE      1024        /* longest nonce accepted from the test hook */

/* Base64-encoded length of n bytes, without the NUL. */
#define B64_LEN(n)           (((size_t) (n) + 2) / 3 * 4)

/* "biws" is base64("n,,"): the GS2 header, sent back in c= of client-final. */
#define SCRAM_GS2_HEADER     "n,,"
#define SCRAM_GS2_B64        "biws"

enum scram_state {
	SCRAM_INIT,         /* nothing sent yet */
	SCRAM_FIRST_SENT,   /* client-first produced, waiting for server-first */
	SCRAM_FINAL_SENT,   /* client-final produced, waiting for server-final */
	SCRAM_DONE,         /* server verified */
	SCRAM_FAILED        /* something went wrong; the exchange is over */
};

struct pgc_scram_client {
	enum scram_state state;
	char *password;
	char *nonce;                                /* our client nonce */
	uint8_t server_signature[SCRAM_KEY_LEN];    /* expected in server-final */
	/* pass-through (pgc_scram_client_new_keys): keys instead of the password */
	int use_keys;
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

/* ---------------------------------------------------------------- helpers */

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Wipe and free a NUL-terminated string. */
static void
free_secret_str(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

static char *
dup_str(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(n + 1);

	if (p != NULL)
		memcpy(p, s, n + 1);
	return p;
}

static void
to_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/* A nonce (or nonce part) character: printable ASCII except ','. */
static int
is_nonce_char(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != ',';
}

static int
is_b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * Strictly check that s[0..n) is padded base64: a non-zero multiple of 4
 * characters of the alphabet, with at most two '=' and only at the very end.
 * Returns the number of bytes it decodes to, or -1.
 */
static long
b64_check(const char *s, size_t n)
{
	size_t pad = 0;

	if (n == 0 || n % 4 != 0 || n > SCRAM_MAX_MESSAGE)
		return -1;
	if (s[n - 1] == '=')
	{
		pad++;
		if (s[n - 2] == '=')
			pad++;
	}
	for (size_t i = 0; i < n - pad; i++)
		if (!is_b64_char((unsigned char) s[i]))
			return -1;
	return (long) (n / 4 * 3 - pad);
}

/*
 * Decode checked base64 into out (room for n/4*3 bytes). Returns the real
 * number of bytes (EVP_DecodeBlock counts the padding as zero bytes), or -1.
 */
static long
b64_decode(const char *s, size_t n, uint8_t *out)
{
	long want = b64_check(s, n);
	int got;

	if (want < 0)
		return -1;
	got = EVP_DecodeBlock(out, (const unsigned char *) s, (int) n);
	if (got < 0 || (size_t) got != n / 4 * 3)
		return -1;
	return want;
}


static int
sha256(const void *data, size_t n, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int outlen = 0;

	if (!EVP_Digest(data, n, out, &outlen, EVP_sha256(), NULL) || outlen != SCRAM_KEY_LEN)
		return -1;
	return 0;
}

static int
hmac_sha256(const uint8_t key[SCRAM_KEY_LEN], const void *data, size_t n, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int outlen = 0;

	if (HMAC(EVP_sha256(), key, SCRAM_KEY_LEN, data, n, out, &outlen) == NULL ||
		outlen != SCRAM_KEY_LEN)
		return -1;
	return 0;
}

/* -------------------------------------------------------------- secrets */

int
pgc_secret_is_md5(const char *secret)
{
	if (secret == NULL || strncmp(secret, "md5", 3) != 0)
		return 0;
	for (int i = 0; i < 32; i++)
	{
		char c = secret[3 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return secret[35] == '\0';
}

/*
 * The stored form is "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>",
 * salt and keys in base64, each key 32 bytes.
 */
int
pgc_secret_is_scram(const char *secret)
{
	static const char prefix[] = "SCRAM-SHA-256$";
	const char *p;
	const char *colon;
	const char *dollar;
	long iter = 0;

	if (secret == NULL || strncmp(secret, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	p = secret + sizeof(prefix) - 1;

	/* iterations */
	if (*p < '0' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9')
	{
		iter = iter * 10 + (*p - '0');
		if (iter > SCRAM_MAX_ITERATIONS * 100)
			return 0;
		p++;
	}
	if (iter <= 0 || *p != ':')
		return 0;
	p++;

	/* salt */
	dollar = strchr(p, '$');
	if (dollar == NULL || b64_check(p, (size_t) (dollar - p)) <= 0)
		return 0;
	p = dollar + 1;

	/* StoredKey:ServerKey */
	colon = strchr(p, ':');
	if (colon == NULL || b64_check(p, (size_t) (colon - p)) != SCRAM_KEY_LEN)
		return 0;
	p = colon + 1;
	return b64_check(p, strlen(p)) == SCRAM_KEY_LEN;
}

/* ------------------------------------------------------------------ md5 */

void
pgc_md5_response(const char *secret, const char *user, const uint8_t salt[4], char out[36])
{
	uint8_t digest[16];
	unsigned int dlen = 0;
	char inner[33];
	uint8_t outer_in[32 + 4];
	int ok = 1;

	out[0] = '\0';
	if (pgc_secret_is_md5(secret))
		memcpy(inner, secret + 3, 33);
	else
	{
		size_t plen = strlen(secret);
		size_t ulen = strlen(user);
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		ok = ctx != NULL &&
			EVP_DigestInit_ex(ctx, EVP_md5(), NULL) &&
			EVP_DigestUpdate(ctx, secret, plen) &&
			EVP_DigestUpdate(ctx, user, ulen) &&
			EVP_DigestFinal_ex(ctx, digest, &dlen) &&
			dlen == sizeof(digest);
		EVP_MD_CTX_free(ctx);
		if (!ok)
			goto done;
		to_hex(digest, sizeof(digest), inner);
	}

	memcpy(outer_in, inner, 32);
	memcpy(outer_in + 32, salt, 4);
	if (!EVP_Digest(outer_in, sizeof(outer_in), digest, &dlen, EVP_md5(), NULL) ||
		dlen != sizeof(digest))
		goto done;
	memcpy(out, "md5", 3);
	to_hex(digest, sizeof(digest), out + 3);

done:
	/* On failure out stays "", which no server accepts. */
	OPENSSL_cleanse(digest, sizeof(digest));
	OPENSSL_cleanse(inner, sizeof(inner));
	OPENSSL_cleanse(outer_in, sizeof(outer_in));
}

/* ---------------------------------------------------------------- SCRAM */

pgc_scram_client *
pgc_scram_client_new(const char *password)
{
	pgc_scram_client *sc;
	uint8_t raw[SCRAM_NONCE_RAW_LEN];

	if (password == NULL)
		return NULL;
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return NULL;
	sc->state = SCRAM_INIT;
	sc->password = dup_str(password);
	sc->nonce = malloc(B64_LEN(sizeof(raw)) + 1);
	if (sc->password == NULL || sc->nonce == NULL ||
		RAND_bytes(raw, sizeof(raw)) != 1)
	{
		pgc_scram_client_free(sc);
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *) sc->nonce, raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	return sc;
}

/* A copy of a nonce given by a test hook, or NULL when it is not a valid one. */
static char *
test_nonce_copy(const char *nonce)
{
	size_t n;

	if (nonce == NULL)
		return NULL;
	n = strlen(nonce);
	if (n == 0 || n > SCRAM_MAX_NONCE)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!is_nonce_char((unsigned char) nonce[i]))
			return NULL;
	return dup_str(nonce);
}

void
pgc_scram_client_set_nonce(pgc_scram_client *sc, const char *nonce)
{
	char *copy;

	if (sc == NULL || sc->state != SCRAM_INIT || (copy = test_nonce_copy(nonce)) == NULL)
		return;
	free_secret_str(sc->nonce);
	sc->nonce = copy;
}

int
pgc_scram_client_first(pgc_scram_client *sc, char *out, size_t cap)
{
	int n;

	if (sc == NULL || out == NULL || sc->state != SCRAM_INIT)
		return -1;
	n = snprintf(out, cap, SCRAM_GS2_HEADER "n=,r=%s", sc->nonce);
	if (n < 0 || (size_t) n >= cap)
		return -1;
	sc->state = SCRAM_FIRST_SENT;
	return n;
}

/*
 * Take "<c>=<value>" at *p (ending at ',' or the end of s), advance *p past
 * it and its ','. Returns the value's length, or -1 if the attribute isn't there.
 */
static long
take_attr(const char **p, const char *end, char c, const char **value)
{
	const char *q = *p;
	const char *comma;

	if (end - q < 2 || q[0] != c || q[1] != '=')
		return -1;
	q += 2;
	comma = memchr(q, ',', (size_t) (end - q));
	if (comma == NULL)
		comma = end;
	*value = q;
	*p = comma < end ? comma + 1 : end;
	/* a ',' right at the end leaves nothing after it: that is malformed */
	if (comma + 1 == end)
		return -1;
	return comma - q;
}

int
pgc_scram_client_final(pgc_scram_client *sc, const char *server_first, size_t len,
					   char *out, size_t cap, char *err, size_t errlen)
{
	const char *p = server_first;
	const char *end;
	const char *rnonce;
	const char *salt_b64;
	const char *iter_s;
	long rnonce_len;
	long salt_b64_len;
	long iter_len;
	long salt_len;
	long iterations = 0;
	size_t nonce_len;
	uint8_t *salt = NULL;
	uint8_t salted[SCRAM_KEY_LEN];
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t client_sig[SCRAM_KEY_LEN];
	uint8_t proof[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
	char proof_b64[B64_LEN(SCRAM_KEY_LEN) + 1];
	char *authmsg = NULL;
	size_t authlen = 0;
	size_t without_proof_len;
	size_t final_len;
	int ret = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (sc == NULL || sc->state != SCRAM_FIRST_SENT)
	{
		set_err(err, errlen, "SCRAM exchange is not waiting for server-first-message");
		return -1;
	}
	sc->state = SCRAM_FAILED;   /* until proven otherwise */

	if (server_first == NULL || len == 0)
	{
		set_err(err, errlen, "malformed SCRAM message (empty server-first-message)");
		goto out;
	}
	if (len > SCRAM_MAX_MESSAGE)
	{
		set_err(err, errlen, "malformed SCRAM message (server-first-message too long)");
		goto out;
	}
	if (memchr(server_first, '\0', len) != NULL)
	{
		set_err(err, errlen, "malformed SCRAM message (NUL byte in server-first-message)");
		goto out;
	}
	end = server_first + len;

	if (len >= 2 && p[0] == 'm' && p[1] == '=')
	{
		set_err(err, errlen, "SCRAM server requires an unsupported extension");
		goto out;
	}

	/* r=<client nonce><server nonce> */
	rnonce_len = take_attr(&p, end, 'r', &rnonce);
	if (rnonce_len < 0)
	{
		set_err(err, errlen, "malformed SCRAM message (nonce expected in server-first-message)");
		goto out;
	}
	nonce_len = strlen(sc->nonce);
	if ((size_t) rnonce_len <= nonce_len || memcmp(rnonce, sc->nonce, nonce_len) != 0)
	{
		set_err(err, errlen, "invalid SCRAM server nonce: it does not extend the client nonce");
		goto out;
	}
	for (long i = 0; i < rnonce_len; i++)
		if (!is_nonce_char((unsigned char) rnonce[i]))
		{
			set_err(err, errlen, "malformed SCRAM message (invalid character in server nonce)");
			goto out;
		}

	/* s=<base64 salt> */
	salt_b64_len = take_attr(&p, end, 's', &salt_b64);
	if (salt_b64_len < 0)
	{
		set_err(err, errlen, "malformed SCRAM message (salt expected in server-first-message)");
		goto out;
	}
	salt = malloc((size_t) salt_b64_len / 4 * 3 + 3);
	if (salt == NULL)
	{
		set_err(err, errlen, "out of memory");
		goto out;
	}
	salt_len = b64_decode(salt_b64, (size_t) salt_b64_len, salt);
	if (salt_len <= 0)
	{
		set_err(err, errlen, "malformed SCRAM message (invalid salt)");
		goto out;
	}

	/* i=<iterations> */
	iter_len = take_attr(&p, end, 'i', &iter_s);
	if (iter_len <= 0)
	{
		set_err(err, errlen, "malformed SCRAM message (iteration count expected in server-first-message)");
		goto out;
	}
	for (long i = 0; i < iter_len; i++)
	{
		if (iter_s[i] < '0' || iter_s[i] > '9')
		{
			set_err(err, errlen, "malformed SCRAM message (invalid iteration count)");
			goto out;
		}
		iterations = iterations * 10 + (iter_s[i] - '0');
		if (iterations > SCRAM_MAX_ITERATIONS)
			break;
	}
	if (iterations <= 0 || iterations > SCRAM_MAX_ITERATIONS)
	{
		set_err(err, errlen, "invalid SCRAM iteration count (must be 1 to %ld)", SCRAM_MAX_ITERATIONS);
		goto out;
	}
	if (p != end)
	{
		set_err(err, errlen, "malformed SCRAM message (unexpected data after iteration count)");
		goto out;
	}

	/* the output: client-final-message-without-proof ",p=" proof */
	without_proof_len = strlen("c=" SCRAM_GS2_B64 ",r=") + (size_t) rnonce_len;
	final_len = without_proof_len + strlen(",p=") + B64_LEN(SCRAM_KEY_LEN);
	if (out == NULL || cap <= final_len)
	{
		set_err(err, errlen, "SCRAM output buffer too small");
		goto out;
	}

	/* AuthMessage */
	authlen = strlen("n=,r=") + nonce_len + 1 + len + 1 + without_proof_len;
	authmsg = malloc(authlen + 1);
	if (authmsg == NULL)
	{
		set_err(err, errlen, "out of memory");
		goto out;
	}
	snprintf(authmsg, authlen + 1, "n=,r=%s,%.*s,c=" SCRAM_GS2_B64 ",r=%.*s",
			 sc->nonce, (int) len, server_first, (int) rnonce_len, rnonce);

	if (PKCS5_PBKDF2_HMAC(sc->password, (int) strlen(sc->password), salt, (int) salt_len,
						  (int) iterations, EVP_sha256(), SCRAM_KEY_LEN, salted) != 1 ||
		hmac_sha256(salted, "Client Key", 10, client_key) < 0 ||
		sha256(client_key, SCRAM_KEY_LEN, stored_key) < 0 ||
		hmac_sha256(stored_key, authmsg, authlen, client_sig) < 0 ||
		hmac_sha256(salted, "Server Key", 10, server_key) < 0 ||
		hmac_sha256(server_key, authmsg, authlen, sc->server_signature) < 0)
	{
		set_err(err, errlen, "SCRAM computation failed in OpenSSL");
		goto out;
	}
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		proof[i] = client_key[i] ^ client_sig[i];
	EVP_EncodeBlock((unsigned char *) proof_b64, proof, SCRAM_KEY_LEN);

	memcpy(out, authmsg + authlen - without_proof_len, without_proof_len);
	memcpy(out + without_proof_len, ",p=", 3);
	memcpy(out + without_proof_len + 3, proof_b64, B64_LEN(SCRAM_KEY_LEN));
	out[final_len] = '\0';
	sc->state = SCRAM_FINAL_SENT;
	ret = (int) final_len;

out:
	if (ret < 0)
		OPENSSL_cleanse(sc->server_signature, sizeof(sc->server_signature));
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(stored_key, sizeof(stored_key));
	OPENSSL_cleanse(client_sig, sizeof(client_sig));
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(server_key, sizeof(server_key));
	OPENSSL_cleanse(proof_b64, sizeof(proof_b64));
	if (authmsg != NULL)
	{
		OPENSSL_cleanse(authmsg, authlen);
		free(authmsg);
	}
	free(salt);
	return ret;
}

int
pgc_scram_client_verify(pgc_scram_client *sc, const char *server_final, size_t len,
						char *err, size_t errlen)
{
	uint8_t sig[B64_LEN(SCRAM_KEY_LEN) / 4 * 3];
	const char *p = server_final;
	const char *end;
	const char *value;
	long vlen;
	int ret = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (sc == NULL || sc->state != SCRAM_FINAL_SENT)
	{
		set_err(err, errlen, "SCRAM exchange is not waiting for server-final-message");
		return -1;
	}
	sc->state = SCRAM_FAILED;

	if (server_final == NULL || len == 0 || len > SCRAM_MAX_MESSAGE ||
		memchr(server_final, '\0', len) != NULL)
	{
		set_err(err, errlen, "malformed SCRAM message (invalid server-final-message)");
		goto out;
	}
	end = server_final + len;

	if (len >= 2 && p[0] == 'e' && p[1] == '=')
	{
		/* Report the server's reason, keeping only printable characters. */
		char reason[128];
		size_t n = 0;

		for (size_t i = 2; i < len && server_final[i] != ',' && n < sizeof(reason) - 1; i++)
		{
			unsigned char c = (unsigned char) server_final[i];

			reason[n++] = (c >= 0x20 && c <= 0x7e) ? (char) c : '?';
		}
		reason[n] = '\0';
		set_err(err, errlen, "SCRAM authentication failed: server reported error: %s", reason);
		goto out;
	}

	vlen = take_attr(&p, end, 'v', &value);
	if (vlen < 0)
	{
		set_err(err, errlen, "malformed SCRAM message (server signature expected in server-final-message)");
		goto out;
	}
	if (p != end)
	{
		set_err(err, errlen, "malformed SCRAM message (unexpected data after server signature)");
		goto out;
	}
	if (b64_check(value, (size_t) vlen) != SCRAM_KEY_LEN ||
		b64_decode(value, (size_t) vlen, sig) != SCRAM_KEY_LEN)
	{
		set_err(err, errlen, "malformed SCRAM message (invalid server signature)");
		goto out;
	}
	if (CRYPTO_memcmp(sig, sc->server_signature, SCRAM_KEY_LEN) != 0)
	{
		set_err(err, errlen, "incorrect server signature: the server does not know the password");
		goto out;
	}
	sc->state = SCRAM_DONE;
	ret = 0;

out:
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(sc->server_signature, sizeof(sc->server_signature));
	return ret;
}

void
pgc_scram_client_free(pgc_scram_client *sc)
{
	if (sc == NULL)
		return;
	free_secret_str(sc->password);
	free_secret_str(sc->nonce);
	OPENSSL_cleanse(sc, sizeof(*sc));
	free(sc);
}

/* ===================================================================== */
/* Server side (pgcarrier verifying its clients), and SCRAM pass-through. */
/* ===================================================================== */

#define SCRAM_DEFAULT_SALT_LEN  16
#define SCRAM_MAX_SALT_LEN      (PGC_SCRAM_SALT_B64_MAX / 4 * 3)
#define SCRAM_CB_NAME           "tls-server-end-point"
#define SCRAM_CB_HEADER         "p=tls-server-end-point,,"
#define SCRAM_MAX_CB_DATA       1024

/* Base64 of n bytes into out (room for B64_LEN(n) + 1). */
static void
b64_encode(const uint8_t *in, size_t n, char *out)
{
	if (n == 0)
	{
		out[0] = '\0';
		return;
	}
	EVP_EncodeBlock((unsigned char *) out, in, (int) n);
}

/* ------------------------------------------------------------ secrets */

int
pgc_scram_secret_parse(const char *secret, pgc_scram_secret *out)
{
	const char *p;
	const char *dollar;
	const char *colon;
	long iter = 0;
	uint8_t key[B64_LEN(SCRAM_KEY_LEN) / 4 * 3];
	int ret = -1;

	if (out == NULL || !pgc_secret_is_scram(secret))
		return -1;
	memset(out, 0, sizeof(*out));
	p = secret + strlen("SCRAM-SHA-256$");
	while (*p >= '0' && *p <= '9')
		iter = iter * 10 + (*p++ - '0');
	if (iter <= 0 || iter > 0x7fffffffL)
		return -1;
	out->iterations = (int) iter;
	p++;                        /* ':' */
	dollar = strchr(p, '$');
	if ((size_t) (dollar - p) > PGC_SCRAM_SALT_B64_MAX)
		goto done;
	memcpy(out->salt, p, (size_t) (dollar - p));
	out->salt[dollar - p] = '\0';
	p = dollar + 1;
	colon = strchr(p, ':');
	if (b64_decode(p, (size_t) (colon - p), key) != SCRAM_KEY_LEN)
		goto done;
	memcpy(out->stored_key, key, SCRAM_KEY_LEN);
	p = colon + 1;
	if (b64_decode(p, strlen(p), key) != SCRAM_KEY_LEN)
		goto done;
	memcpy(out->server_key, key, SCRAM_KEY_LEN);
	ret = 0;

done:
	OPENSSL_cleanse(key, sizeof(key));
	if (ret < 0)
		OPENSSL_cleanse(out, sizeof(*out));
	return ret;
}

/* SaltedPassword, then ClientKey / StoredKey / ServerKey (each may be NULL). */
static int
scram_keys(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
		   uint8_t *client_key, uint8_t *stored_key, uint8_t *server_key)
{
	uint8_t salted[SCRAM_KEY_LEN];
	uint8_t ck[SCRAM_KEY_LEN];
	int ret = -1;

	if (PKCS5_PBKDF2_HMAC(password, (int) strlen(password), salt, (int) salt_len,
						  iterations, EVP_sha256(), SCRAM_KEY_LEN, salted) != 1 ||
		hmac_sha256(salted, "Client Key", 10, ck) < 0 ||
		(stored_key != NULL && sha256(ck, SCRAM_KEY_LEN, stored_key) < 0) ||
		(server_key != NULL && hmac_sha256(salted, "Server Key", 10, server_key) < 0))
		goto done;
	if (client_key != NULL)
		memcpy(client_key, ck, SCRAM_KEY_LEN);
	ret = 0;

done:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ck, sizeof(ck));
	return ret;
}

int
pgc_scram_secret_build_salt(const char *password, const uint8_t *salt, size_t salt_len,
							int iterations, char *out, size_t cap)
{
	uint8_t stored[SCRAM_KEY_LEN];
	uint8_t server[SCRAM_KEY_LEN];
	char salt_b64[PGC_SCRAM_SALT_B64_MAX + 1];
	char stored_b64[B64_LEN(SCRAM_KEY_LEN) + 1];
	char server_b64[B64_LEN(SCRAM_KEY_LEN) + 1];
	int n = -1;

	if (password == NULL || salt == NULL || salt_len == 0 || salt_len > SCRAM_MAX_SALT_LEN ||
		iterations <= 0 || iterations > SCRAM_MAX_ITERATIONS || out == NULL)
		return -1;
	if (scram_keys(password, salt, salt_len, iterations, NULL, stored, server) == 0)
	{
		b64_encode(salt, salt_len, salt_b64);
		b64_encode(stored, SCRAM_KEY_LEN, stored_b64);
		b64_encode(server, SCRAM_KEY_LEN, server_b64);
		n = snprintf(out, cap, "SCRAM-SHA-256$%d:%s$%s:%s", iterations, salt_b64, stored_b64, server_b64);
		if (n < 0 || (size_t) n >= cap)
		{
			if (cap > 0)
				OPENSSL_cleanse(out, cap);
			n = -1;
		}
	}
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(server, sizeof(server));
	OPENSSL_cleanse(stored_b64, sizeof(stored_b64));
	OPENSSL_cleanse(server_b64, sizeof(server_b64));
	return n;
}

int
pgc_scram_secret_build(const char *password, char *out, size_t cap)
{
	uint8_t salt[SCRAM_DEFAULT_SALT_LEN];

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -1;
	return pgc_scram_secret_build_salt(password, salt, sizeof(salt), PGC_SCRAM_DEFAULT_ITERATIONS, out, cap);
}

int
pgc_scram_verify_plain(const char *secret, const char *password)
{
	pgc_scram_secret sec;
	uint8_t salt[SCRAM_MAX_SALT_LEN + 3];
	uint8_t server[SCRAM_KEY_LEN];
	long salt_len;
	int ret = -1;

	if (password == NULL || pgc_scram_secret_parse(secret, &sec) < 0)
		return -1;
	salt_len = b64_decode(sec.salt, strlen(sec.salt), salt);
	if (salt_len > 0 && sec.iterations <= SCRAM_MAX_ITERATIONS &&
		scram_keys(password, salt, (size_t) salt_len, sec.iterations, NULL, NULL, server) == 0 &&
		CRYPTO_memcmp(server, sec.server_key, SCRAM_KEY_LEN) == 0)
		ret = 0;
	OPENSSL_cleanse(&sec, sizeof(sec));
	OPENSSL_cleanse(server, sizeof(server));
	return ret;
}

int
pgc_password_verify(const char *secret, const char *user, const char *password)
{
	uint8_t a[SCRAM_KEY_LEN];
	uint8_t b[SCRAM_KEY_LEN];
	int ret = -1;

	if (secret == NULL || user == NULL || password == NULL || secret[0] == '\0' || password[0] == '\0')
		return -1;
	if (pgc_secret_is_scram(secret))
		return pgc_scram_verify_plain(secret, password);
	if (pgc_secret_is_md5(secret))
	{
		uint8_t digest[16];
		unsigned int dlen = 0;
		char hex[36];
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		if (ctx != NULL &&
			EVP_DigestInit_ex(ctx, EVP_md5(), NULL) &&
			EVP_DigestUpdate(ctx, password, strlen(password)) &&
			EVP_DigestUpdate(ctx, user, strlen(user)) &&
			EVP_DigestFinal_ex(ctx, digest, &dlen) && dlen == sizeof(digest))
		{
			memcpy(hex, "md5", 3);
			to_hex(digest, sizeof(digest), hex + 3);
			if (CRYPTO_memcmp(hex, secret, 35) == 0)
				ret = 0;
		}
		EVP_MD_CTX_free(ctx);
		OPENSSL_cleanse(digest, sizeof(digest));
		OPENSSL_cleanse(hex, sizeof(hex));
		return ret;
	}
	/* clear text: compare hashes, so that the time does not depend on lengths */
	if (sha256(secret, strlen(secret), a) == 0 && sha256(password, strlen(password), b) == 0 &&
		CRYPTO_memcmp(a, b, SCRAM_KEY_LEN) == 0)
		ret = 0;
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return ret;
}

int
pgc_md5_verify(const char *secret, const char *user, const uint8_t salt[4],
			   const char *response, size_t len)
{
	char expect[36];
	int ret = -1;

	if (secret == NULL || user == NULL || salt == NULL || response == NULL ||
		secret[0] == '\0' || pgc_secret_is_scram(secret))
		return -1;
	pgc_md5_response(secret, user, salt, expect);
	if (expect[0] != '\0' && len == 35 && CRYPTO_memcmp(expect, response, 35) == 0)
		ret = 0;
	OPENSSL_cleanse(expect, sizeof(expect));
	return ret;
}

/* ------------------------------------------------------------ errors */

static int
sauth_fail(pgc_sauth_error *e, int rc, const char *sqlstate, const char *message,
		   const char *detail_fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return rc;
	memset(e, 0, sizeof(*e));
	snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", sqlstate);
	snprintf(e->message, sizeof(e->message), "%s", message);
	if (detail_fmt != NULL)
	{
		va_start(ap, detail_fmt);
		vsnprintf(e->detail, sizeof(e->detail), detail_fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* 08P01 "malformed SCRAM message", with PostgreSQL's detail. */
#define MALFORMED(e, ...) \
	sauth_fail((e), PGC_SAUTH_PROTOCOL, "08P01", "malformed SCRAM message", __VA_ARGS__)

/* PostgreSQL's sanitize_char: 'c' if printable, else 0xNN. */
static const char *
sanitize_char(char c, char buf[8])
{
	if (c >= 0x21 && c <= 0x7e)
		snprintf(buf, 8, "'%c'", c);
	else
		snprintf(buf, 8, "0x%02x", (unsigned char) c);
	return buf;
}

/* PostgreSQL's sanitize_str: at most 30 characters, non-printables as '?'. */
static const char *
sanitize_str(const char *s, char buf[31])
{
	int i;

	for (i = 0; i < 30 && s[i] != '\0'; i++)
		buf[i] = (s[i] >= 0x21 && s[i] <= 0x7e) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* The value starting at begin, cut at the next ','; *input moves past it. */
static char *
cut_value(char **input, char *begin)
{
	char *end = begin;

	while (*end != '\0' && *end != ',')
		end++;
	if (*end != '\0')
	{
		*end = '\0';
		*input = end + 1;
	}
	else
		*input = end;
	return begin;
}

/*
 * PostgreSQL's read_attr_value: "<attr>=<value>" at *input, NUL-terminated in
 * place; *input moves past the ','. NULL (with e filled) if not there.
 */
static char *
read_attr_value(char **input, char attr, pgc_sauth_error *e)
{
	char *begin = *input;
	char cb[8];

	if (*begin != attr)
	{
		MALFORMED(e, "Expected attribute \"%c\" but found \"%s\".", attr, sanitize_char(*begin, cb));
		return NULL;
	}
	begin++;
	if (*begin != '=')
	{
		MALFORMED(e, "Expected character \"=\" for attribute \"%c\".", attr);
		return NULL;
	}
	return cut_value(input, begin + 1);
}

/* PostgreSQL's read_any_attr: any "<ALPHA>=<value>". */
static char *
read_any_attr(char **input, char *attr_p, pgc_sauth_error *e)
{
	char *begin = *input;
	char attr = *begin;
	char cb[8];

	if (attr == '\0')
	{
		MALFORMED(e, "Attribute expected, but found end of string.");
		return NULL;
	}
	if (!((attr >= 'A' && attr <= 'Z') || (attr >= 'a' && attr <= 'z')))
	{
		MALFORMED(e, "Attribute expected, but found invalid character \"%s\".", sanitize_char(attr, cb));
		return NULL;
	}
	*attr_p = attr;
	begin++;
	if (*begin != '=')
	{
		MALFORMED(e, "Expected character \"=\" for attribute \"%c\".", attr);
		return NULL;
	}
	return cut_value(input, begin + 1);
}

/* Copy a client message into a NUL-terminated buffer, after PostgreSQL's checks. */
static char *
copy_client_message(const char *input, size_t len, pgc_sauth_error *e, int *rc)
{
	char *buf;

	if (input == NULL || len == 0)
	{
		*rc = MALFORMED(e, "The message is empty.");
		return NULL;
	}
	if (memchr(input, '\0', len) != NULL)
	{
		*rc = MALFORMED(e, "Message length does not match input length.");
		return NULL;
	}
	if (len > SCRAM_MAX_MESSAGE)
	{
		*rc = MALFORMED(e, "The message is too long.");
		return NULL;
	}
	buf = malloc(len + 1);
	if (buf == NULL)
	{
		*rc = sauth_fail(e, PGC_SAUTH_INTERNAL, "53200", "out of memory", NULL);
		return NULL;
	}
	memcpy(buf, input, len);
	buf[len] = '\0';
	return buf;
}

/* ------------------------------------------------------------ SCRAM server */

enum scram_server_state {
	SS_INIT,                    /* waiting for client-first-message */
	SS_SALT_SENT,               /* server-first sent, waiting for client-final */
	SS_DONE,                    /* the client proved it knows the password */
	SS_FAILED                   /* the exchange is over */
};

struct pgc_scram_server {
	enum scram_server_state state;
	char *user;
	int doomed;                 /* mock exchange: fails at the end whatever happens */
	char log_detail[256];       /* why it is doomed, for the log */
	int iterations;
	char salt[PGC_SCRAM_SALT_B64_MAX + 1];
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
	uint8_t *cb_data;           /* tls-server-end-point hash, if TLS */
	size_t cb_len;
	int cb_in_use;              /* the client chose SCRAM-SHA-256-PLUS */
	char cbind_flag;            /* 'n', 'y' or 'p' */
	char *client_first_bare;
	char *client_nonce;
	char *server_nonce;
	char *server_first;
	uint8_t client_key[SCRAM_KEY_LEN];  /* recovered from the proof, after success */
};

/* A process-wide random key for mock salts: stable per user name, unguessable. */
static pthread_once_t mock_once = PTHREAD_ONCE_INIT;
static uint8_t mock_key[SCRAM_KEY_LEN];

static void
mock_key_init(void)
{
	if (RAND_bytes(mock_key, sizeof(mock_key)) != 1)
		memset(mock_key, 0x5a, sizeof(mock_key));
}

/* PostgreSQL's mock_scram_secret: a plausible salt, default iterations, no keys. */
static void
mock_secret(pgc_scram_server *ss)
{
	uint8_t h[SCRAM_KEY_LEN];

	pthread_once(&mock_once, mock_key_init);
	if (hmac_sha256(mock_key, ss->user, strlen(ss->user), h) < 0)
		memset(h, 0, sizeof(h));
	b64_encode(h, SCRAM_DEFAULT_SALT_LEN, ss->salt);
	ss->iterations = PGC_SCRAM_DEFAULT_ITERATIONS;
	memset(ss->stored_key, 0, SCRAM_KEY_LEN);
	memset(ss->server_key, 0, SCRAM_KEY_LEN);
	ss->doomed = 1;
	OPENSSL_cleanse(h, sizeof(h));
}

/* Take the salt, iterations and keys of a parsed secret. */
static void
use_secret(pgc_scram_server *ss, const pgc_scram_secret *sec)
{
	ss->iterations = sec->iterations;
	memcpy(ss->salt, sec->salt, sizeof(ss->salt));
	memcpy(ss->stored_key, sec->stored_key, SCRAM_KEY_LEN);
	memcpy(ss->server_key, sec->server_key, SCRAM_KEY_LEN);
}

pgc_scram_server *
pgc_scram_server_new(const char *user, const char *secret, const uint8_t *cb_data, size_t cb_len)
{
	pgc_scram_server *ss = calloc(1, sizeof(*ss));
	pgc_scram_secret sec;

	if (ss == NULL)
		return NULL;
	ss->state = SS_INIT;
	ss->user = dup_str(user != NULL ? user : "");
	if (ss->user == NULL)
		goto fail;
	if (cb_data != NULL && cb_len > 0)
	{
		if (cb_len > SCRAM_MAX_CB_DATA)
			goto fail;
		ss->cb_data = malloc(cb_len);
		if (ss->cb_data == NULL)
			goto fail;
		memcpy(ss->cb_data, cb_data, cb_len);
		ss->cb_len = cb_len;
	}

	if (secret == NULL)
		mock_secret(ss);        /* the caller asked for it: nothing to log */
	else if (pgc_secret_is_scram(secret))
	{
		if (pgc_scram_secret_parse(secret, &sec) == 0)
			use_secret(ss, &sec);
		else
		{
			mock_secret(ss);
			snprintf(ss->log_detail, sizeof(ss->log_detail), "invalid SCRAM secret for user \"%s\"", ss->user);
		}
	}
	else if (pgc_secret_is_md5(secret) || secret[0] == '\0')
	{
		mock_secret(ss);
		snprintf(ss->log_detail, sizeof(ss->log_detail),
				 "User \"%s\" does not have a valid SCRAM secret.", ss->user);
	}
	else
	{
		/* a clear-text password: build a secret for this exchange */
		char built[PGC_SCRAM_SECRET_BUF];
		int ok = pgc_scram_secret_build(secret, built, sizeof(built)) > 0 &&
			pgc_scram_secret_parse(built, &sec) == 0;

		OPENSSL_cleanse(built, sizeof(built));
		if (!ok)
		{
			OPENSSL_cleanse(&sec, sizeof(sec));
			goto fail;
		}
		use_secret(ss, &sec);
	}
	OPENSSL_cleanse(&sec, sizeof(sec));
	return ss;

fail:
	pgc_scram_server_free(ss);
	return NULL;
}

void
pgc_scram_server_set_nonce(pgc_scram_server *ss, const char *nonce)
{
	char *copy;

	if (ss == NULL || ss->state != SS_INIT || (copy = test_nonce_copy(nonce)) == NULL)
		return;
	free(ss->server_nonce);
	ss->server_nonce = copy;
}

/* PostgreSQL's read_client_first_message, on a NUL-terminated copy. */
static int
read_client_first(pgc_scram_server *ss, char *p, pgc_sauth_error *e)
{
	char cb[8];
	char sb[31];
	char attr;
	char *type;

	ss->cbind_flag = *p;
	switch (*p)
	{
		case 'n':
		case 'y':
			if (ss->cb_in_use)
				return MALFORMED(e, "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does "
								 "not include channel binding data.");
			if (*p == 'y' && ss->cb_data != NULL)
				return sauth_fail(e, PGC_SAUTH_CHANNEL, "28000", "SCRAM channel binding negotiation error",
								  "The client supports SCRAM channel binding but thinks the server does "
								  "not.  However, this server does support channel binding.");
			p++;
			if (*p != ',')
				return MALFORMED(e, "Comma expected, but found character \"%s\".", sanitize_char(*p, cb));
			p++;
			break;
		case 'p':
			if (!ss->cb_in_use)
				return MALFORMED(e, "The client selected SCRAM-SHA-256 without channel binding, but the "
								 "SCRAM message includes channel binding data.");
			type = read_attr_value(&p, 'p', e);
			if (type == NULL)
				return PGC_SAUTH_PROTOCOL;
			if (strcmp(type, SCRAM_CB_NAME) != 0)
			{
				char msg[96];

				snprintf(msg, sizeof(msg), "unsupported SCRAM channel-binding type \"%s\"", sanitize_str(type, sb));
				return sauth_fail(e, PGC_SAUTH_PROTOCOL, "08P01", msg, NULL);
			}
			break;
		default:
			return MALFORMED(e, "Unexpected channel-binding flag \"%s\".", sanitize_char(*p, cb));
	}

	/* no authorization identity */
	if (*p == 'a')
		return sauth_fail(e, PGC_SAUTH_UNSUPPORTED, "0A000",
						  "client uses authorization identity, but it is not supported", NULL);
	if (*p != ',')
		return MALFORMED(e, "Unexpected attribute \"%s\" in client-first-message.", sanitize_char(*p, cb));
	p++;

	ss->client_first_bare = dup_str(p);
	if (ss->client_first_bare == NULL)
		return sauth_fail(e, PGC_SAUTH_INTERNAL, "53200", "out of memory", NULL);

	/* no mandatory extension */
	if (*p == 'm')
		return sauth_fail(e, PGC_SAUTH_UNSUPPORTED, "0A000", "client requires an unsupported SCRAM extension", NULL);

	/* the user name is ignored: it is the one of the startup packet */
	if (read_attr_value(&p, 'n', e) == NULL)
		return PGC_SAUTH_PROTOCOL;

	type = read_attr_value(&p, 'r', e);
	if (type == NULL)
		return PGC_SAUTH_PROTOCOL;
	for (const char *q = type; *q; q++)
		if (!is_nonce_char((unsigned char) *q))
			return sauth_fail(e, PGC_SAUTH_PROTOCOL, "08P01", "non-printable characters in SCRAM nonce", NULL);
	ss->client_nonce = dup_str(type);
	if (ss->client_nonce == NULL)
		return sauth_fail(e, PGC_SAUTH_INTERNAL, "53200", "out of memory", NULL);

	/* optional extensions: ignored */
	while (*p != '\0')
		if (read_any_attr(&p, &attr, e) == NULL)
			return PGC_SAUTH_PROTOCOL;
	return 0;
}

int
pgc_scram_server_first(pgc_scram_server *ss, const char *mechanism,
					   const char *client_first, size_t len,
					   char *out, size_t cap, pgc_sauth_error *err)
{
	char *buf = NULL;
	int rc = 0;
	int n;

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (ss == NULL || ss->state != SS_INIT)
		return sauth_fail(err, PGC_SAUTH_INTERNAL, "XX000", "invalid SCRAM exchange state", NULL);
	ss->state = SS_FAILED;      /* until proven otherwise */

	if (mechanism != NULL && strcmp(mechanism, PGC_SCRAM_MECH_PLUS) == 0 && ss->cb_data != NULL)
		ss->cb_in_use = 1;
	else if (mechanism == NULL || strcmp(mechanism, PGC_SCRAM_MECH) != 0)
		return sauth_fail(err, PGC_SAUTH_PROTOCOL, "08P01",
						  "client selected an invalid SASL authentication mechanism", NULL);

	buf = copy_client_message(client_first, len, err, &rc);
	if (buf == NULL)
		return rc;
	rc = read_client_first(ss, buf, err);
	free(buf);
	if (rc < 0)
		return rc;

	if (ss->server_nonce == NULL)
	{
		uint8_t raw[SCRAM_NONCE_RAW_LEN];

		ss->server_nonce = malloc(B64_LEN(sizeof(raw)) + 1);
		if (ss->server_nonce == NULL)
			return sauth_fail(err, PGC_SAUTH_INTERNAL, "53200", "out of memory", NULL);
		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return sauth_fail(err, PGC_SAUTH_INTERNAL, "XX000", "could not generate random nonce", NULL);
		b64_encode(raw, sizeof(raw), ss->server_nonce);
	}

	n = snprintf(NULL, 0, "r=%s%s,s=%s,i=%d", ss->client_nonce, ss->server_nonce, ss->salt, ss->iterations);
	ss->server_first = malloc((size_t) n + 1);
	if (ss->server_first == NULL)
		return sauth_fail(err, PGC_SAUTH_INTERNAL, "53200", "out of memory", NULL);
	snprintf(ss->server_first, (size_t) n + 1, "r=%s%s,s=%s,i=%d",
			 ss->client_nonce, ss->server_nonce, ss->salt, ss->iterations);
	if (out == NULL || cap <= (size_t) n)
		return sauth_fail(err, PGC_SAUTH_INTERNAL, "XX000", "SCRAM output buffer too small", NULL);
	memcpy(out, ss->server_first, (size_t) n + 1);
	ss->state = SS_SALT_SENT;
	return n;
}

/* HMAC(key, AuthMessage), AuthMessage = client-first-bare "," server-first "," without_proof */
static int
scram_auth_hmac(const pgc_scram_server *ss, const uint8_t key[SCRAM_KEY_LEN],
				const char *without_proof, size_t wlen, uint8_t out[SCRAM_KEY_LEN])
{
	size_t l1 = strlen(ss->client_first_bare);
	size_t l2 = strlen(ss->server_first);
	size_t total = l1 + 1 + l2 + 1 + wlen;
	char *msg = malloc(total);
	int rc;

	if (msg == NULL)
		return -1;
	memcpy(msg, ss->client_first_bare, l1);
	msg[l1] = ',';
	memcpy(msg + l1 + 1, ss->server_first, l2);
	msg[l1 + 1 + l2] = ',';
	memcpy(msg + l1 + 2 + l2, without_proof, wlen);
	rc = hmac_sha256(key, msg, total, out);
	OPENSSL_cleanse(msg, total);
	free(msg);
	return rc;
}

/* PostgreSQL's read_client_final_message and the checks that follow it. */
static int
check_client_final(pgc_scram_server *ss, char *buf, char *out, size_t cap, pgc_sauth_error *e)
{
	char *p = buf;
	char *value;
	char *proof_at;
	char attr = 0;
	uint8_t proof[B64_LEN(SCRAM_KEY_LEN) / 4 * 3];
	uint8_t sig[SCRAM_KEY_LEN];
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t stored[SCRAM_KEY_LEN];
	char v64[B64_LEN(SCRAM_KEY_LEN) + 1];
	size_t cn;
	size_t sn;
	int ok;
	int rc = PGC_SAUTH_PROTOCOL;

	/* c=: the GS2 header again, and the channel binding data */
	value = read_attr_value(&p, 'c', e);
	if (value == NULL)
		return PGC_SAUTH_PROTOCOL;
	if (ss->cb_in_use)
	{
		size_t hlen = strlen(SCRAM_CB_HEADER);
		size_t ilen = hlen + ss->cb_len;
		uint8_t *input = malloc(ilen);
		char *expect = malloc(B64_LEN(ilen) + 1);
		int same;

		if (input == NULL || expect == NULL)
		{
			free(input);
			free(expect);
			return sauth_fail(e, PGC_SAUTH_INTERNAL, "53200", "out of memory", NULL);
		}
		memcpy(input, SCRAM_CB_HEADER, hlen);
		memcpy(input + hlen, ss->cb_data, ss->cb_len);
		b64_encode(input, ilen, expect);
		same = strlen(value) == strlen(expect) && CRYPTO_memcmp(value, expect, strlen(expect)) == 0;
		free(input);
		free(expect);
		if (!same)
			return sauth_fail(e, PGC_SAUTH_CHANNEL, "28000", "SCRAM channel binding check failed", NULL);
	}
	else if (!(strcmp(value, "biws") == 0 && ss->cbind_flag == 'n') &&
			 !(strcmp(value, "eSws") == 0 && ss->cbind_flag == 'y'))
		return sauth_fail(e, PGC_SAUTH_PROTOCOL, "08P01",
						  "unexpected SCRAM channel-binding attribute in client-final-message", NULL);

	/* r=: the whole nonce */
	value = read_attr_value(&p, 'r', e);
	if (value == NULL)
		return PGC_SAUTH_PROTOCOL;
	cn = strlen(ss->client_nonce);
	sn = strlen(ss->server_nonce);
	ok = strlen(value) == cn + sn && memcmp(value, ss->client_nonce, cn) == 0 &&
		memcmp(value + cn, ss->server_nonce, sn) == 0;

	/* extensions are skipped up to p= */
	do
	{
		proof_at = p - 1;
		value = read_any_attr(&p, &attr, e);
		if (value == NULL)
			return PGC_SAUTH_PROTOCOL;
	} while (attr != 'p');
	if (b64_check(value, strlen(value)) != SCRAM_KEY_LEN ||
		b64_decode(value, strlen(value), proof) != SCRAM_KEY_LEN)
		return MALFORMED(e, "Malformed proof in client-final-message.");
	if (*p != '\0')
		return MALFORMED(e, "Garbage found at the end of client-final-message.");
	/* the message without ",p=...": the NULs written by the parsing don't matter, it is rebuilt */
	for (char *q = buf; q < proof_at; q++)
		if (*q == '\0')
			*q = ',';

	if (!ok)
		return sauth_fail(e, PGC_SAUTH_PROTOCOL, "08P01", "invalid SCRAM response", "Nonce does not match.");

	/* the proof: even for a doomed exchange, so that it takes the same time */
	if (scram_auth_hmac(ss, ss->stored_key, buf, (size_t) (proof_at - buf), sig) < 0)
	{
		rc = sauth_fail(e, PGC_SAUTH_INTERNAL, "XX000", "could not calculate client signature", NULL);
		goto out;
	}
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ sig[i];
	if (sha256(client_key, SCRAM_KEY_LEN, stored) < 0)
	{
		rc = sauth_fail(e, PGC_SAUTH_INTERNAL, "XX000", "could not hash stored key", NULL);
		goto out;
	}
	if (CRYPTO_memcmp(stored, ss->stored_key, SCRAM_KEY_LEN) != 0 || ss->doomed)
	{
		char msg[256];

		snprintf(msg, sizeof(msg), "password authentication failed for user \"%s\"", ss->user);
		rc = sauth_fail(e, PGC_SAUTH_FAILED, "28P01", msg, NULL);
		if (e != NULL)
			snprintf(e->log_detail, sizeof(e->log_detail), "%s", ss->log_detail);
		goto out;
	}

	/* server-final-message */
	if (scram_auth_hmac(ss, ss->server_key, buf, (size_t) (proof_at - buf), sig) < 0)
	{
		rc = sauth_fail(e, PGC_SAUTH_INTERNAL, "XX000", "could not calculate server signature", NULL);
		goto out;
	}
	b64_encode(sig, SCRAM_KEY_LEN, v64);
	if (out == NULL || cap <= 2 + strlen(v64))
	{
		rc = sauth_fail(e, PGC_SAUTH_INTERNAL, "XX000", "SCRAM output buffer too small", NULL);
		goto out;
	}
	snprintf(out, cap, "v=%s", v64);
	memcpy(ss->client_key, client_key, SCRAM_KEY_LEN);
	rc = (int) (2 + strlen(v64));

out:
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(stored, sizeof(stored));
	return rc;
}

int
pgc_scram_server_final(pgc_scram_server *ss, const char *client_final, size_t len,
					   char *out, size_t cap, pgc_sauth_error *err)
{
	char *buf;
	int rc = 0;

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (ss == NULL || ss->state != SS_SALT_SENT)
		return sauth_fail(err, PGC_SAUTH_INTERNAL, "XX000", "invalid SCRAM exchange state", NULL);
	ss->state = SS_FAILED;
	buf = copy_client_message(client_final, len, err, &rc);
	if (buf == NULL)
		return rc;
	rc = check_client_final(ss, buf, out, cap, err);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (rc >= 0)
		ss->state = SS_DONE;
	return rc;
}

int
pgc_scram_server_keys(const pgc_scram_server *ss, uint8_t client_key[PGC_SCRAM_KEY_LEN],
					  uint8_t server_key[PGC_SCRAM_KEY_LEN])
{
	if (ss == NULL || ss->state != SS_DONE || ss->doomed || client_key == NULL || server_key == NULL)
		return -1;
	memcpy(client_key, ss->client_key, SCRAM_KEY_LEN);
	memcpy(server_key, ss->server_key, SCRAM_KEY_LEN);
	return 0;
}

void
pgc_scram_server_free(pgc_scram_server *ss)
{
	if (ss == NULL)
		return;
	free_secret_str(ss->user);
	free_secret_str(ss->client_first_bare);
	free_secret_str(ss->client_nonce);
	free_secret_str(ss->server_nonce);
	free_secret_str(ss->server_first);
	if (ss->cb_data != NULL)
	{
		OPENSSL_cleanse(ss->cb_data, ss->cb_len);
		free(ss->cb_data);
	}
	OPENSSL_cleanse(ss, sizeof(*ss));
	free(ss);
}

/* ------------------------------------------------------------ channel binding */

int
pgc_tls_server_end_point(const uint8_t *der, size_t der_len, uint8_t *out, size_t cap)
{
	const unsigned char *p = der;
	X509 *cert;
	int algo_nid = NID_undef;
	const EVP_MD *md;
	unsigned char hash[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int ret = -1;

	if (der == NULL || der_len == 0 || der_len > 0x7fffffff || out == NULL)
		return -1;
	cert = d2i_X509(NULL, &p, (long) der_len);
	if (cert == NULL)
		return -1;
	if (p != der + der_len)
		goto done;              /* trailing bytes: not exactly one certificate */
	if (!OBJ_find_sigid_algs(X509_get_signature_nid(cert), &algo_nid, NULL))
		goto done;
	switch (algo_nid)
	{
		case NID_md5:
		case NID_sha1:
			md = EVP_sha256();
			break;
		default:
			md = EVP_get_digestbynid(algo_nid);
			break;
	}
	if (md == NULL || !X509_digest(cert, md, hash, &n) || n > cap)
		goto done;
	memcpy(out, hash, n);
	ret = (int) n;

done:
	X509_free(cert);
	return ret;
}

/* ------------------------------------------------------------ pass-through client */

pgc_scram_client *
pgc_scram_client_new_keys(const uint8_t client_key[PGC_SCRAM_KEY_LEN],
						  const uint8_t server_key[PGC_SCRAM_KEY_LEN])
{
	pgc_scram_client *sc;

	if (client_key == NULL || server_key == NULL)
		return NULL;
	sc = pgc_scram_client_new("");  /* an empty password: never used by _final_keys */
	if (sc == NULL)
		return NULL;
	sc->use_keys = 1;
	memcpy(sc->client_key, client_key, SCRAM_KEY_LEN);
	memcpy(sc->server_key, server_key, SCRAM_KEY_LEN);
	return sc;
}

/*
 * Check server-first-message as pgc_scram_client_final does (same messages);
 * on success (*rnonce, *rnonce_len) is the combined nonce.
 */
static int
parse_server_first(const char *nonce, const char *server_first, size_t len,
				   const char **rnonce, long *rnonce_len, char *err, size_t errlen)
{
	const char *p = server_first;
	const char *end;
	const char *salt_b64;
	const char *iter_s;
	long salt_b64_len;
	long iter_len;
	long iterations = 0;
	size_t nonce_len = strlen(nonce);

	if (server_first == NULL || len == 0)
		return set_err(err, errlen, "malformed SCRAM message (empty server-first-message)"), -1;
	if (len > SCRAM_MAX_MESSAGE)
		return set_err(err, errlen, "malformed SCRAM message (server-first-message too long)"), -1;
	if (memchr(server_first, '\0', len) != NULL)
		return set_err(err, errlen, "malformed SCRAM message (NUL byte in server-first-message)"), -1;
	end = server_first + len;
	if (len >= 2 && p[0] == 'm' && p[1] == '=')
		return set_err(err, errlen, "SCRAM server requires an unsupported extension"), -1;

	*rnonce_len = take_attr(&p, end, 'r', rnonce);
	if (*rnonce_len < 0)
		return set_err(err, errlen, "malformed SCRAM message (nonce expected in server-first-message)"), -1;
	if ((size_t) *rnonce_len <= nonce_len || memcmp(*rnonce, nonce, nonce_len) != 0)
		return set_err(err, errlen, "invalid SCRAM server nonce: it does not extend the client nonce"), -1;
	for (long i = 0; i < *rnonce_len; i++)
		if (!is_nonce_char((unsigned char) (*rnonce)[i]))
			return set_err(err, errlen, "malformed SCRAM message (invalid character in server nonce)"), -1;

	salt_b64_len = take_attr(&p, end, 's', &salt_b64);
	if (salt_b64_len < 0)
		return set_err(err, errlen, "malformed SCRAM message (salt expected in server-first-message)"), -1;
	if (b64_check(salt_b64, (size_t) salt_b64_len) <= 0)
		return set_err(err, errlen, "malformed SCRAM message (invalid salt)"), -1;

	iter_len = take_attr(&p, end, 'i', &iter_s);
	if (iter_len <= 0)
		return set_err(err, errlen, "malformed SCRAM message (iteration count expected in server-first-message)"), -1;
	for (long i = 0; i < iter_len; i++)
	{
		if (iter_s[i] < '0' || iter_s[i] > '9')
			return set_err(err, errlen, "malformed SCRAM message (invalid iteration count)"), -1;
		iterations = iterations * 10 + (iter_s[i] - '0');
		if (iterations > SCRAM_MAX_ITERATIONS)
			break;
	}
	if (iterations <= 0 || iterations > SCRAM_MAX_ITERATIONS)
		return set_err(err, errlen, "invalid SCRAM iteration count (must be 1 to %ld)", SCRAM_MAX_ITERATIONS), -1;
	if (p != end)
		return set_err(err, errlen, "malformed SCRAM message (unexpected data after iteration count)"), -1;
	return 0;
}

int
pgc_scram_client_final_keys(pgc_scram_client *sc, const char *server_first, size_t len,
							char *out, size_t cap, char *err, size_t errlen)
{
	const char *rnonce = NULL;
	long rnonce_len = 0;
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t client_sig[SCRAM_KEY_LEN];
	uint8_t proof[SCRAM_KEY_LEN];
	char proof_b64[B64_LEN(SCRAM_KEY_LEN) + 1];
	char *authmsg = NULL;
	size_t authlen = 0;
	size_t without_proof_len;
	size_t final_len;
	int ret = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (sc == NULL || !sc->use_keys || sc->state != SCRAM_FIRST_SENT)
	{
		set_err(err, errlen, "SCRAM exchange is not waiting for server-first-message (with keys)");
		return -1;
	}
	sc->state = SCRAM_FAILED;   /* until proven otherwise */
	if (parse_server_first(sc->nonce, server_first, len, &rnonce, &rnonce_len, err, errlen) < 0)
		goto out;

	without_proof_len = strlen("c=" SCRAM_GS2_B64 ",r=") + (size_t) rnonce_len;
	final_len = without_proof_len + strlen(",p=") + B64_LEN(SCRAM_KEY_LEN);
	if (out == NULL || cap <= final_len)
	{
		set_err(err, errlen, "SCRAM output buffer too small");
		goto out;
	}
	authlen = strlen("n=,r=") + strlen(sc->nonce) + 1 + len + 1 + without_proof_len;
	authmsg = malloc(authlen + 1);
	if (authmsg == NULL)
	{
		set_err(err, errlen, "out of memory");
		goto out;
	}
	snprintf(authmsg, authlen + 1, "n=,r=%s,%.*s,c=" SCRAM_GS2_B64 ",r=%.*s",
			 sc->nonce, (int) len, server_first, (int) rnonce_len, rnonce);

	if (sha256(sc->client_key, SCRAM_KEY_LEN, stored_key) < 0 ||
		hmac_sha256(stored_key, authmsg, authlen, client_sig) < 0 ||
		hmac_sha256(sc->server_key, authmsg, authlen, sc->server_signature) < 0)
	{
		set_err(err, errlen, "SCRAM computation failed in OpenSSL");
		goto out;
	}
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		proof[i] = sc->client_key[i] ^ client_sig[i];
	b64_encode(proof, SCRAM_KEY_LEN, proof_b64);

	memcpy(out, authmsg + authlen - without_proof_len, without_proof_len);
	memcpy(out + without_proof_len, ",p=", 3);
	memcpy(out + without_proof_len + 3, proof_b64, B64_LEN(SCRAM_KEY_LEN));
	out[final_len] = '\0';
	sc->state = SCRAM_FINAL_SENT;
	ret = (int) final_len;

out:
	if (ret < 0)
		OPENSSL_cleanse(sc->server_signature, sizeof(sc->server_signature));
	OPENSSL_cleanse(stored_key, sizeof(stored_key));
	OPENSSL_cleanse(client_sig, sizeof(client_sig));
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(proof_b64, sizeof(proof_b64));
	if (authmsg != NULL)
	{
		OPENSSL_cleanse(authmsg, authlen);
		free(authmsg);
	}
	return ret;
}
