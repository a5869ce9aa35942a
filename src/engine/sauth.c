/*
 * sauth.c - client side of PostgreSQL password authentication (md5 and
 * SCRAM-SHA-256 without channel binding); see sauth.h.
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
#include <openssl/rand.h>

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

void
pgc_scram_client_set_nonce(pgc_scram_client *sc, const char *nonce)
{
	size_t n;
	char *copy;

	if (sc == NULL || nonce == NULL || sc->state != SCRAM_INIT)
		return;
	n = strlen(nonce);
	if (n == 0 || n > SCRAM_MAX_NONCE)
		return;
	for (size_t i = 0; i < n; i++)
		if (!is_nonce_char((unsigned char) nonce[i]))
			return;
	copy = dup_str(nonce);
	if (copy == NULL)
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
