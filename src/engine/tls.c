/*
 * tls.c - TLS on nonblocking sockets (see tls.h).
 *
 * Why a BIO of our own: with OpenSSL's socket BIO, an SSL_write that could
 * not finish must be repeated with the same bytes, which does not fit
 * buffers that pgcarrier appends to and writes in pieces. Our BIO reads from
 * the socket directly, but collects what OpenSSL writes; we then send that
 * ourselves. So SSL_write always succeeds at once, and a full socket only
 * means ciphertext waits here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "sauth.h"
#include "tls.h"

/* What a configuration holds for one side. */
typedef struct pgc_tls_ctx {
	SSL_CTX *ctx;
	int sslmode;
	uint8_t cb[EVP_MAX_MD_SIZE];  /* tls-server-end-point of our certificate */
	int cb_len;                   /* -1: none */
} pgc_tls_ctx;

struct pgc_tls {
	SSL *ssl;
	int fd;
	const pgc_tls_ctx *ctx;
	uint8_t *out;                 /* ciphertext not yet on the socket: out[out_start, out_len) */
	size_t out_start, out_len, out_cap;
	size_t out_used;              /* the most of out ever written: what to wipe at the end */
	unsigned long writes;         /* OpenSSL's writes into out, ever (did a step send anything?) */
	bool failed;                  /* out of memory in the BIO */
	bool ready_queued;            /* on its worker's ready list */
};

/* Encrypt at most this much before trying the socket: bounds what waits here. */
#define WRITE_CHUNK (64 * 1024)

/* ------------------------------------------------------------------ BIO -- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int
bio_write(BIO *bio, const char *data, int len)
{
	pgc_tls *t = BIO_get_data(bio);
	size_t need;

	BIO_clear_retry_flags(bio);
	if (len <= 0)
		return 0;
	if (t->out_start == t->out_len)
		t->out_start = t->out_len = 0;
	need = t->out_len + (size_t) len;
	if (need > t->out_cap)
	{
		size_t cap = t->out_cap ? t->out_cap : 16 * 1024;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		p = realloc(t->out, cap);
		if (p == NULL)
		{
			t->failed = true;
			return -1;
		}
		t->out = p;
		t->out_cap = cap;
	}
	memcpy(t->out + t->out_len, data, (size_t) len);
	t->out_len += (size_t) len;
	t->writes++;
	if (t->out_len > t->out_used)
		t->out_used = t->out_len;
	return len;
}

static int
bio_read(BIO *bio, char *buf, int len)
{
	pgc_tls *t = BIO_get_data(bio);
	ssize_t n;

	BIO_clear_retry_flags(bio);
	do
		n = read(t->fd, buf, (size_t) len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_read(bio);
	return (int) n;
}

static long
bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	(void) bio;
	(void) num;
	(void) ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
bio_create(BIO *bio)
{
	BIO_set_init(bio, 1);
	return 1;
}

static void
bio_method_init(void)
{
	bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pgcarrier");
	if (bio_method)
	{
		BIO_meth_set_write(bio_method, bio_write);
		BIO_meth_set_read(bio_method, bio_read);
		BIO_meth_set_ctrl(bio_method, bio_ctrl);
		BIO_meth_set_create(bio_method, bio_create);
	}
}

/* ------------------------------------------------------------- contexts -- */

int
pgc_sslmode_parse(const char *s)
{
	static const char *const names[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};

	for (int i = 0; i < 6; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

const char *
pgc_sslmode_name(int mode)
{
	static const char *const names[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};

	return mode >= 0 && mode < 6 ? names[mode] : "?";
}

/* A file setting relative to dir, in buf. */
static const char *
resolve(const char *dir, const char *file, char *buf, size_t cap)
{
	if (file[0] == '/' || dir == NULL)
		return file;
	snprintf(buf, cap, "%s/%s", dir, file);
	return buf;
}

/* OpenSSL's reason for the last failure. */
static const char *
ssl_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	if (e == 0)
		return "no further detail";
	snprintf(buf, cap, "%s", ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown error");
	return buf;
}

/* "secure", "all", "legacy" or a list of tlsv1.0 ... tlsv1.3: the lowest and highest version. */
static int
parse_protocols(const char *s, int *min, int *max)
{
	static const struct { const char *name; int version; } v[] = {
		{"tlsv1.0", TLS1_VERSION}, {"tlsv1", TLS1_VERSION}, {"tlsv1.1", TLS1_1_VERSION},
		{"tlsv1.2", TLS1_2_VERSION}, {"tlsv1.3", TLS1_3_VERSION}
	};
	char buf[256];
	char *save = NULL;

	*min = *max = 0;
	if (s == NULL || strcasecmp(s, "secure") == 0)
		s = "tlsv1.2,tlsv1.3";
	else if (strcasecmp(s, "all") == 0 || strcasecmp(s, "legacy") == 0)
		s = "tlsv1.0,tlsv1.3";
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save))
	{
		int found = 0;

		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			if (strcasecmp(tok, v[i].name) == 0)
			{
				found = v[i].version;
				break;
			}
		if (!found)
			return -1;
		if (*min == 0 || found < *min)
			*min = found;
		if (found > *max)
			*max = found;
	}
	return *min ? 0 : -1;
}

typedef struct side_settings {
	const char *prefix;          /* "client_tls_" or "server_tls_", for messages */
	int sslmode;
	const char *cert, *key, *ca, *protocols, *ciphers;
	bool is_server;              /* we are the TLS server (towards clients) */
} side_settings;

static int
build_ctx(const side_settings *st, const char *dir, pgc_tls_ctx **out, char *err, size_t errlen)
{
	pgc_tls_ctx *c;
	char path[4096], why[256];
	int min, max;
	const char *ciphers = st->ciphers;

	*out = NULL;
	if (st->sslmode == PGC_SSLMODE_DISABLE)
		return 0;
	if (st->is_server && (st->cert == NULL || st->key == NULL))
		return snprintf(err, errlen, "%ssslmode = %s needs %scert_file and %skey_file", st->prefix,
						pgc_sslmode_name(st->sslmode), st->prefix, st->prefix), -1;
	if (st->sslmode >= PGC_SSLMODE_VERIFY_CA && st->ca == NULL)
		return snprintf(err, errlen, "%ssslmode = %s needs %sca_file", st->prefix,
						pgc_sslmode_name(st->sslmode), st->prefix), -1;
	if ((st->cert == NULL) != (st->key == NULL))
		return snprintf(err, errlen, "%scert_file and %skey_file go together", st->prefix, st->prefix), -1;
	if (parse_protocols(st->protocols, &min, &max) < 0)
		return snprintf(err, errlen, "invalid value \"%s\" for %sprotocols: expected secure, all, legacy "
						"or a list of tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3", st->protocols, st->prefix), -1;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	c->sslmode = st->sslmode;
	c->cb_len = -1;
	c->ctx = SSL_CTX_new(st->is_server ? TLS_server_method() : TLS_client_method());
	if (c->ctx == NULL)
	{
		free(c);
		return snprintf(err, errlen, "could not create a TLS context: %s", ssl_reason(why, sizeof(why))), -1;
	}
	*out = c;
	SSL_CTX_set_min_proto_version(c->ctx, min);
	SSL_CTX_set_max_proto_version(c->ctx, max);
	/* A peer that just closes the socket ends the stream; no renegotiation. */
	SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* Read whole socket chunks, not a record header and then its body: fewer system calls. */
	SSL_CTX_set_read_ahead(c->ctx, 1);
	if (st->is_server)
	{
		/*
		 * Resumption for clients that keep a session (TLS 1.3 PSK, TLS 1.2
		 * tickets): a resumed handshake skips the certificate and its
		 * signature, in TLS 1.2 the key exchange too (TLS 1.3 clients ask
		 * for psk_dhe_ke, a fresh X25519 exchange, also when resuming).
		 * Stateless tickets, so that no server memory grows with churn: the
		 * ticket keys are this context's own (random, made with it), so a
		 * reload, which builds new contexts, ends every ticket issued
		 * before it, and with it any client certificate a ticket carries
		 * that the new client_tls_ca_file might not accept. TLS 1.2 only:
		 * a TLS 1.3 ticket costs every full handshake its making and a
		 * write (pgbench -S -C over TLS, 8 clients: about 70-90 us of
		 * 900 per connection), which libpq, keeping no session, never
		 * repays, and a TLS 1.3 resumption saves next to nothing here
		 * (the fresh X25519 exchange stays; a Python client measured the
		 * same pooler CPU per resumed and per full login), while a TLS
		 * 1.2 one skips the key exchange (about 30 % less).
		 */
		SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(c->ctx, 0);
		/* Needed to resume a session whose client certificate was verified (OpenSSL refuses otherwise). */
		SSL_CTX_set_session_id_context(c->ctx, (const unsigned char *) "pgcarrier", 9);
	}
	else
	{
		/* Towards PostgreSQL: it resumes nothing (its server turns tickets and its cache off). */
		SSL_CTX_set_options(c->ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_OFF);
	}
	if (ciphers == NULL || strcasecmp(ciphers, "default") == 0 || strcasecmp(ciphers, "secure") == 0)
		ciphers = "HIGH:MEDIUM:+3DES:!aNULL";   /* PostgreSQL's default ssl_ciphers */
	else if (strcasecmp(ciphers, "all") == 0)
		ciphers = "ALL";
	if (SSL_CTX_set_cipher_list(c->ctx, ciphers) != 1)
		return snprintf(err, errlen, "invalid value \"%s\" for %sciphers: %s", st->ciphers, st->prefix,
						ssl_reason(why, sizeof(why))), -1;
	if (st->cert)
	{
		const char *p = resolve(dir, st->cert, path, sizeof(path));

		if (SSL_CTX_use_certificate_chain_file(c->ctx, p) != 1)
			return snprintf(err, errlen, "could not load %scert_file \"%s\": %s", st->prefix, p,
							ssl_reason(why, sizeof(why))), -1;
		p = resolve(dir, st->key, path, sizeof(path));
		if (SSL_CTX_use_PrivateKey_file(c->ctx, p, SSL_FILETYPE_PEM) != 1)
			return snprintf(err, errlen, "could not load %skey_file \"%s\": %s", st->prefix, p,
							ssl_reason(why, sizeof(why))), -1;
		if (SSL_CTX_check_private_key(c->ctx) != 1)
			return snprintf(err, errlen, "%skey_file does not match %scert_file: %s", st->prefix, st->prefix,
							ssl_reason(why, sizeof(why))), -1;
		if (st->is_server)
		{
			X509 *x = SSL_CTX_get0_certificate(c->ctx);
			unsigned char *der = NULL;
			int len = x ? i2d_X509(x, &der) : -1;

			if (len > 0)
				c->cb_len = pgc_tls_server_end_point(der, (size_t) len, c->cb, sizeof(c->cb));
			OPENSSL_free(der);
		}
	}
	if (st->ca)
	{
		const char *p = resolve(dir, st->ca, path, sizeof(path));

		if (SSL_CTX_load_verify_locations(c->ctx, p, NULL) != 1)
			return snprintf(err, errlen, "could not load %sca_file \"%s\": %s", st->prefix, p,
							ssl_reason(why, sizeof(why))), -1;
		if (st->is_server)
		{
			STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(p);

			if (names)
				SSL_CTX_set_client_CA_list(c->ctx, names);
		}
	}
	if (st->is_server && st->cert)
	{
		STACK_OF(X509) *chain = NULL;

		/*
		 * A certificate file without intermediates makes OpenSSL look for
		 * them in the CA store at every handshake (a chain build, with
		 * its allocations and lookups, per connection). Build that chain
		 * once, now that the store is loaded: the same certificates go
		 * out, without the work. Errors are expected (a self-signed or
		 * leaf-only certificate has no chain to find) and are not fatal,
		 * as they are not at handshake time.
		 */
		if (SSL_CTX_get0_chain_certs(c->ctx, &chain) == 1 && sk_X509_num(chain) <= 0)
			(void) SSL_CTX_build_cert_chain(c->ctx, SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
											SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR);
		ERR_clear_error();
	}
	if (st->is_server)
	{
		/*
		 * As PostgreSQL with ssl_ca_file: ask for a client certificate and
		 * check one that is presented; verify-ca and verify-full insist on one.
		 */
		if (st->ca)
			SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE |
							   (st->sslmode >= PGC_SSLMODE_VERIFY_CA ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
	}
	else
		SSL_CTX_set_verify(c->ctx, st->sslmode >= PGC_SSLMODE_VERIFY_CA ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return 0;
}

static void
free_ctx(pgc_tls_ctx *c)
{
	if (c)
	{
		SSL_CTX_free(c->ctx);
		free(c);
	}
}

int
pgc_tls_config_prepare(pgc_config *cfg, const char *dir, char *err, size_t errlen)
{
	side_settings client = {"client_tls_", cfg->client_tls_sslmode, cfg->client_tls_cert_file,
							cfg->client_tls_key_file, cfg->client_tls_ca_file, cfg->client_tls_protocols,
							cfg->client_tls_ciphers, true};
	side_settings server = {"server_tls_", cfg->server_tls_sslmode, cfg->server_tls_cert_file,
							cfg->server_tls_key_file, cfg->server_tls_ca_file, cfg->server_tls_protocols,
							cfg->server_tls_ciphers, false};
	pgc_tls_ctx *c = NULL, *s = NULL;

	pthread_once(&bio_once, bio_method_init);
	if (bio_method == NULL)
		return snprintf(err, errlen, "could not set up TLS"), -1;
	if (build_ctx(&client, dir, &c, err, errlen) < 0 || build_ctx(&server, dir, &s, err, errlen) < 0)
	{
		free_ctx(c);
		free_ctx(s);
		return -1;
	}
	cfg->tls_client = c;
	cfg->tls_server = s;
	return 0;
}

void
pgc_tls_config_release(pgc_config *cfg)
{
	free_ctx(cfg->tls_client);
	free_ctx(cfg->tls_server);
	cfg->tls_client = cfg->tls_server = NULL;
}

bool
pgc_tls_client_enabled(const pgc_config *cfg)
{
	return cfg->tls_client != NULL;
}

bool
pgc_tls_server_enabled(const pgc_config *cfg)
{
	return cfg->tls_server != NULL;
}

/* ---------------------------------------------------------- connections -- */

static pgc_tls *
tls_new(const pgc_tls_ctx *c, int fd)
{
	pgc_tls *t;
	BIO *bio;

	if (c == NULL || bio_method == NULL)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->fd = fd;
	t->ctx = c;
	t->ssl = SSL_new(c->ctx);
	bio = BIO_new(bio_method);
	if (t->ssl == NULL || bio == NULL)
	{
		BIO_free(bio);
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	BIO_set_data(bio, t);
	SSL_set_bio(t->ssl, bio, bio);
	return t;
}

pgc_tls *
pgc_tls_accept(const pgc_config *cfg, int fd)
{
	pgc_tls *t = tls_new(cfg->tls_client, fd);

	if (t)
		SSL_set_accept_state(t->ssl);
	return t;
}

pgc_tls *
pgc_tls_connect(const pgc_config *cfg, int fd, const char *host)
{
	pgc_tls *t = tls_new(cfg->tls_server, fd);
	unsigned char ip[16];
	bool is_ip;

	if (t == NULL)
		return NULL;
	is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
	/* As libpq: the host name goes into SNI, addresses do not. */
	if (!is_ip)
		SSL_set_tlsext_host_name(t->ssl, host);
	if (t->ctx->sslmode == PGC_SSLMODE_VERIFY_FULL)
	{
		int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host)
					   : SSL_set1_host(t->ssl, host);

		if (ok != 1)
		{
			pgc_tls_free(t);
			return NULL;
		}
	}
	SSL_set_connect_state(t->ssl);
	return t;
}

int
pgc_tls_flush(pgc_tls *t)
{
	while (t->out_start < t->out_len)
	{
		ssize_t n = write(t->fd, t->out + t->out_start, t->out_len - t->out_start);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
		}
		t->out_start += (size_t) n;
	}
	t->out_start = t->out_len = 0;
	return 1;
}

bool
pgc_tls_wants_write(const pgc_tls *t)
{
	return t->out_start < t->out_len;
}

bool
pgc_tls_pending(const pgc_tls *t)
{
	return SSL_has_pending(t->ssl) != 0;
}

bool *
pgc_tls_ready_flag(pgc_tls *t)
{
	return &t->ready_queued;
}

int
pgc_tls_handshake(pgc_tls *t, char *err, size_t errlen)
{
	int r, e;
	char why[256];
	unsigned long writes = t->writes;

	ERR_clear_error();
	r = SSL_do_handshake(t->ssl);
	if (t->failed)
		return snprintf(err, errlen, "out of memory"), -1;
	/*
	 * A handshake that ends on the client's flight with nothing of ours to
	 * send (TLS 1.3 without tickets; TLS 1.2 resumption: our Finished went
	 * first) leaves that flight unacknowledged until the delayed ACK, and
	 * a client with Nagle's algorithm on holds its startup packet until
	 * then: 40 ms. Acknowledge it now. (Otherwise what we send does it:
	 * the TLS 1.2 Finished.)
	 */
	if (r == 1 && t->writes == writes && SSL_is_server(t->ssl))
	{
		int one = 1;

		(void) setsockopt(t->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	}
	/* Sent at once, also when the handshake just ended: it acknowledges the client's flight (see above). */
	if (pgc_tls_flush(t) < 0)
		return snprintf(err, errlen, "could not send: %s", strerror(errno)), -1;
	if (r == 1)
		return 1;
	e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
	{
		if (ERR_peek_error() == 0)
			return snprintf(err, errlen, "the connection was closed during the TLS handshake"), -1;
	}
	{
		long vr = SSL_get_verify_result(t->ssl);

		if (vr != X509_V_OK)
		{
			ERR_clear_error();
			return snprintf(err, errlen, "certificate verify failed: %s", X509_verify_cert_error_string(vr)), -1;
		}
	}
	return snprintf(err, errlen, "%s", ssl_reason(why, sizeof(why))), -1;
}

ssize_t
pgc_tls_read(pgc_tls *t, void *buf, size_t cap)
{
	size_t n = 0;
	int r, e;

	ERR_clear_error();
	r = SSL_read_ex(t->ssl, buf, cap, &n);
	/* Reading may have produced something to send (a TLS 1.3 key update answer). */
	if (t->out_start < t->out_len && pgc_tls_flush(t) < 0)
		return -1;
	if (r == 1)
		return (ssize_t) n;
	e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return -2;
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)
		return 0;
	ERR_clear_error();
	return -1;
}

ssize_t
pgc_tls_write(pgc_tls *t, const void *data, size_t len)
{
	size_t taken = 0;

	/*
	 * Ciphertext collects here and goes to the socket once WRITE_CHUNK of
	 * it waits, the rest at the caller's pgc_tls_flush: what a caller
	 * writes in several calls (messages of its own, then relayed ones)
	 * leaves in one system call.
	 */
	while (taken < len)
	{
		size_t chunk = len - taken < WRITE_CHUNK ? len - taken : WRITE_CHUNK;
		size_t w = 0;

		if (t->out_len - t->out_start >= WRITE_CHUNK)
		{
			int f = pgc_tls_flush(t);

			if (f < 0)
				return -1;
			if (f == 0)
				break;
		}
		ERR_clear_error();
		if (SSL_write_ex(t->ssl, (const uint8_t *) data + taken, chunk, &w) != 1 || t->failed)
		{
			ERR_clear_error();
			return -1;
		}
		taken += w;
	}
	return (ssize_t) taken;
}

void
pgc_tls_free(pgc_tls *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	if (t->out)
	{
		/* Only what was written: most connections never touch most of the 16 kB. */
		OPENSSL_cleanse(t->out, t->out_used);
		free(t->out);
	}
	free(t);
}

int
pgc_tls_peer_cn(pgc_tls *t, char *cn, size_t cap)
{
	X509 *x = SSL_get0_peer_certificate(t->ssl);
	X509_NAME *name;
	int idx;
	ASN1_STRING *data;
	const unsigned char *bytes;
	int len;

	cn[0] = '\0';
	if (x == NULL)
		return 0;
	if (SSL_get_verify_result(t->ssl) != X509_V_OK)
	{
		snprintf(cn, cap, "%s", X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
		return -1;
	}
	name = X509_get_subject_name(x);
	idx = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	if (idx < 0)
	{
		snprintf(cn, cap, "the certificate has no common name");
		return -1;
	}
	data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
	bytes = ASN1_STRING_get0_data(data);
	len = ASN1_STRING_length(data);
	/* As PostgreSQL: a name with a NUL inside is refused, not cut short. */
	if (len < 0 || (size_t) len >= cap || memchr(bytes, 0, (size_t) len))
	{
		snprintf(cn, cap, "the certificate's common name is invalid");
		return -1;
	}
	memcpy(cn, bytes, (size_t) len);
	cn[len] = '\0';
	return 1;
}

int
pgc_tls_channel_binding(const pgc_tls *t, const uint8_t **data)
{
	*data = t->ctx->cb;
	return t->ctx->cb_len;
}

void
pgc_tls_describe(const pgc_tls *t, char *out, size_t cap)
{
	snprintf(out, cap, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
}
