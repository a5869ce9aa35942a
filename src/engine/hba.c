/*
 * hba.c - pg_hba.conf parser and matcher; see hba.h.
 *
 * The file is read whole, cut into records (physical lines joined by a
 * trailing backslash), each record into fields, each field into tokens,
 * as PostgreSQL 15's tokenize_auth_file / next_field_expand / next_token
 * do. Then each record is checked and turned into a rule (parse_hba_line).
 * Error messages use PostgreSQL's wording where it has one.
 */
#include "config.h"
#include "hba.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HBA_MAX_DEPTH     10            /* @file nesting */

/* ---------------------------------------------------------------- types */

typedef struct hba_token {
	char *s;
	int quoted;                 /* the token began with a '"': never a keyword */
} hba_token;

/* The tokens of one field (one column, or one list). */
typedef struct hba_field {
	hba_token *tok;
	int n;
	int cap;
} hba_field;

/* One record (a line, with its continuations): its fields. */
typedef struct hba_record {
	hba_field *fields;
	int n;
	int cap;
} hba_record;

enum conn_type {
	CT_LOCAL,
	CT_HOST,                    /* host, hostnogssenc */
	CT_HOSTSSL,
	CT_HOSTNOSSL
};

typedef struct hba_rule {
	int line;
	char *desc;                 /* "FILE:LINE" */
	enum conn_type type;
	hba_field dbs;
	hba_field users;
	int addr_all;               /* address "all" */
	struct sockaddr_storage addr;
	struct sockaddr_storage mask;
	pgc_hba_method method;
	pgc_hba_clientcert clientcert;  /* clientcert= on a hostssl line */
} hba_rule;

struct pgc_hba {
	hba_rule *rules;
	int n;
	int cap;
};

/* ---------------------------------------------------------------- helpers */


/* Make room for one more element; *cap doubles. */
static int
grow(void **arr, int n, int *cap, size_t elsize)
{
	void *p;
	int ncap;

	if (n < *cap)
		return 0;
	ncap = *cap == 0 ? 4 : *cap * 2;
	p = realloc(*arr, (size_t) ncap * elsize);
	if (p == NULL)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

static void
field_free(hba_field *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->tok[i].s);
	free(f->tok);
	f->tok = NULL;
	f->n = f->cap = 0;
}

static void
record_free(hba_record *r)
{
	for (int i = 0; i < r->n; i++)
		field_free(&r->fields[i]);
	free(r->fields);
	r->fields = NULL;
	r->n = r->cap = 0;
}

static int
field_add(hba_field *f, const char *s, size_t len, int quoted)
{
	char *copy;

	if (grow((void **) &f->tok, f->n, &f->cap, sizeof(*f->tok)) < 0)
		return -1;
	copy = malloc(len + 1);
	if (copy == NULL)
		return -1;
	/* An empty quoted token ("") may come with s == NULL: memcpy must not see it. */
	if (len > 0)
		memcpy(copy, s, len);
	copy[len] = '\0';
	f->tok[f->n].s = copy;
	f->tok[f->n].quoted = quoted;
	f->n++;
	return 0;
}

/* A growing byte buffer for one token. */
typedef struct tokbuf {
	char *s;
	size_t len;
	size_t cap;
} tokbuf;

static int
tokbuf_put(tokbuf *b, char c)
{
	if (b->len + 1 >= b->cap)
	{
		size_t ncap = b->cap == 0 ? 64 : b->cap * 2;
		char *p = realloc(b->s, ncap);

		if (p == NULL)
			return -1;
		b->s = p;
		b->cap = ncap;
	}
	b->s[b->len++] = c;
	b->s[b->len] = '\0';
	return 0;
}


/* ---------------------------------------------------------------- tokenizer */

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* What next_token found. */
enum tok_result {
	TOK_NONE,                   /* end of record (or only a comment left) */
	TOK_OK,
	TOK_UNTERMINATED,           /* a quote was not closed */
	TOK_NOMEM
};

/*
 * PostgreSQL's next_token: skip blanks and commas, then collect characters up
 * to an unquoted blank, an unquoted ',' (reported in *comma), an unquoted '#'
 * (which ends the record) or the end. '"' toggles quoting and is dropped;
 * "" inside quotes is a literal '"'. *quoted: the token began with a quote.
 */
static enum tok_result
next_token(const char **pp, tokbuf *b, int *quoted, int *comma)
{
	const char *p = *pp;
	int in_quote = 0;
	int was_quote = 0;
	int saw_quote = 0;

	b->len = 0;
	if (b->s != NULL)
		b->s[0] = '\0';
	*quoted = 0;
	*comma = 0;

	while (*p != '\0' && (is_blank(*p) || *p == ','))
		p++;

	while (*p != '\0' && (!is_blank(*p) || in_quote))
	{
		char c = *p;

		if (c == '#' && !in_quote)
		{
			p += strlen(p);     /* comment: the rest of the record is gone */
			break;
		}
		if (c == ',' && !in_quote)
		{
			*comma = 1;
			p++;
			break;
		}
		if ((c != '"' || was_quote) && tokbuf_put(b, c) < 0)
			return TOK_NOMEM;
		/* a literal '"' is two '"' inside quotes */
		if (in_quote && c == '"')
			was_quote = !was_quote;
		else
			was_quote = 0;
		if (c == '"')
		{
			in_quote = !in_quote;
			saw_quote = 1;
			if (b->len == 0)
				*quoted = 1;
		}
		p++;
	}
	*pp = p;
	if (in_quote)
		return TOK_UNTERMINATED;
	return (saw_quote || b->len > 0) ? TOK_OK : TOK_NONE;
}

/*
 * Split a file's text in place into records (joining backslash
 * continuations) and call cb for each, with its first line number.
 */
typedef int (*record_cb)(void *arg, char *record, int line);

static int
for_each_record(char *text, size_t len, record_cb cb, void *arg,
				const char *file, char *err, size_t errlen)
{
	char *p = text;
	char *end = text + len;
	int line = 1;

	if (memchr(text, '\0', len) != NULL)
	{
		char *nul = memchr(text, '\0', len);
		int nl = 1;

		for (char *q = text; q < nul; q++)
			if (*q == '\n')
				nl++;
		return pgc_file_error(err, errlen, file, nl, "invalid NUL byte");
	}

	while (p < end)
	{
		int first = line;
		char *out = p;          /* the joined record is written over the text */
		char *rec = p;
		size_t last_bs = 0;     /* as PostgreSQL: a continuation only after the previous one */

		for (;;)
		{
			char *nl = memchr(p, '\n', (size_t) (end - p));
			char *eol = nl != NULL ? nl : end;
			size_t n = (size_t) (eol - p);

			/* strip the trailing \r of CRLF */
			if (n > 0 && p[n - 1] == '\r')
				n--;
			memmove(out, p, n);
			out += n;
			p = nl != NULL ? nl + 1 : end;
			line++;
			if ((size_t) (out - rec) > last_bs && out > rec && out[-1] == '\\' && p < end)
			{
				out--;          /* continuation: drop the backslash, keep reading */
				last_bs = (size_t) (out - rec);
				continue;
			}
			if (out > rec && out[-1] == '\\' && p >= end)
				out--;          /* a final backslash with nothing after it */
			break;
		}
		*out = '\0';
		if (cb(arg, rec, first) < 0)
			return -1;
	}
	return 0;
}

/* Tokenizing state for one file. */
typedef struct tok_ctx {
	const char *file;
	int depth;                  /* @file nesting level */
	char *err;
	size_t errlen;
	hba_field *flat;            /* in an @file: where all its tokens go */
} tok_ctx;

static int tokenize_record(tok_ctx *ctx, char *text, int line, hba_record *rec);

/* The directory part of path joined with name (unless name is absolute). */
static char *
include_path(const char *outer, const char *name)
{
	const char *slash = strrchr(outer, '/');
	size_t dlen = slash != NULL ? (size_t) (slash - outer) + 1 : 0;
	size_t nlen = strlen(name);
	char *full;

	if (name[0] == '/')
		dlen = 0;
	full = malloc(dlen + nlen + 1);
	if (full == NULL)
		return NULL;
	memcpy(full, outer, dlen);
	memcpy(full + dlen, name, nlen + 1);
	return full;
}

static int
inc_record(void *arg, char *text, int line)
{
	tok_ctx *ctx = arg;
	hba_record rec = {0};
	int rc = tokenize_record(ctx, text, line, &rec);

	if (rc == 0)
	{
		/* every token of every field joins the including field */
		for (int i = 0; i < rec.n && rc == 0; i++)
			for (int j = 0; j < rec.fields[i].n && rc == 0; j++)
				if (field_add(ctx->flat, rec.fields[i].tok[j].s, strlen(rec.fields[i].tok[j].s),
							  rec.fields[i].tok[j].quoted) < 0)
					rc = pgc_file_error(ctx->err, ctx->errlen, ctx->file, line, "out of memory");
	}
	record_free(&rec);
	return rc;
}

/* Append the names of @name (seen in outer at line) to field. */
static int
expand_include(tok_ctx *ctx, const char *name, int line, hba_field *field)
{
	char *full;
	char *text;
	size_t len = 0;
	tok_ctx sub;
	int rc;

	if (ctx->depth >= HBA_MAX_DEPTH)
		return pgc_file_error(ctx->err, ctx->errlen, ctx->file, line,
					"could not open secondary authentication file \"@%s\": more than %d levels of @file",
					name, HBA_MAX_DEPTH);
	full = include_path(ctx->file, name);
	if (full == NULL)
		return pgc_file_error(ctx->err, ctx->errlen, ctx->file, line, "out of memory");
	text = pgc_read_file(full, &len);
	if (text == NULL)
	{
		rc = pgc_file_error(ctx->err, ctx->errlen, ctx->file, line,
				  "could not open secondary authentication file \"@%s\" as \"%s\": %s",
				  name, full, strerror(errno));
		free(full);
		return rc;
	}
	memset(&sub, 0, sizeof(sub));
	sub.file = full;
	sub.depth = ctx->depth + 1;
	sub.err = ctx->err;
	sub.errlen = ctx->errlen;
	sub.flat = field;
	rc = for_each_record(text, len, inc_record, &sub, full, ctx->err, ctx->errlen);
	free(text);
	free(full);
	return rc;
}

/* Split one record into fields (PostgreSQL's next_field_expand per field). */
static int
tokenize_record(tok_ctx *ctx, char *text, int line, hba_record *rec)
{
	const char *p = text;
	tokbuf b = {0};
	int rc = 0;

	while (*p != '\0' && rc == 0)
	{
		hba_field field = {0};
		int got_any = 0;
		int comma;

		do
		{
			int quoted;
			enum tok_result t = next_token(&p, &b, &quoted, &comma);

			if (t == TOK_NONE)
				break;
			if (t == TOK_NOMEM)
			{
				rc = pgc_file_error(ctx->err, ctx->errlen, ctx->file, line, "out of memory");
				break;
			}
			if (t == TOK_UNTERMINATED)
			{
				rc = pgc_file_error(ctx->err, ctx->errlen, ctx->file, line, "unterminated quoted string");
				break;
			}
			got_any = 1;
			if (!quoted && b.len > 1 && b.s[0] == '@')
				rc = expand_include(ctx, b.s + 1, line, &field);
			else if (field_add(&field, b.s, b.len, quoted) < 0)
				rc = pgc_file_error(ctx->err, ctx->errlen, ctx->file, line, "out of memory");
		} while (comma && rc == 0);

		/*
		 * Keep a field even when an @file made it empty (PostgreSQL drops
		 * it, shifting the next columns left; an empty list that matches
		 * nothing is the safer reading).
		 */
		if (rc == 0 && got_any)
		{
			if (grow((void **) &rec->fields, rec->n, &rec->cap, sizeof(*rec->fields)) < 0)
				rc = pgc_file_error(ctx->err, ctx->errlen, ctx->file, line, "out of memory");
			else
			{
				rec->fields[rec->n++] = field;
				continue;
			}
		}
		field_free(&field);
	}
	free(b.s);
	return rc;
}

/* ---------------------------------------------------------------- rules */

static int
is_keyword(const hba_token *t, const char *kw)
{
	return !t->quoted && strcmp(t->s, kw) == 0;
}

/* PostgreSQL 15's authentication options (parse_hba_auth_opt), for messages. */
static const char *const pg_options[] = {
	"map", "clientcert", "clientname", "pamservice", "pam_use_hostname",
	"ldapurl", "ldaptls", "ldapscheme", "ldapserver", "ldapport", "ldapbinddn",
	"ldapbindpasswd", "ldapsearchattribute", "ldapsearchfilter", "ldapbasedn",
	"ldapprefix", "ldapsuffix", "krb_realm", "include_realm", "compat_realm",
	"upn_username", "radiusservers", "radiussecrets", "radiusidentifiers",
	"radiusports", NULL
};

static int
parse_option(const char *file, int line, hba_rule *r, const char *tok, char *err, size_t errlen)
{
	const char *eq = strchr(tok, '=');
	char name[64];
	const char *val;
	size_t nlen;

	if (eq == NULL)
		return pgc_file_error(err, errlen, file, line, "authentication option not in name=value format: %s", tok);
	nlen = (size_t) (eq - tok);
	if (nlen >= sizeof(name))
		nlen = sizeof(name) - 1;
	memcpy(name, tok, nlen);
	name[nlen] = '\0';
	val = eq + 1;

	if (strcmp(name, "clientcert") == 0 || strcmp(name, "clientname") == 0)
	{
		if (r->type != CT_HOSTSSL)
			return pgc_file_error(err, errlen, file, line, "%s can only be configured for \"hostssl\" rows", name);
		if (strcmp(name, "clientname") == 0 && r->method != PGC_HBA_CERT)
			return pgc_file_error(err, errlen, file, line,
						"authentication option \"%s\" is not supported by pgcarrier for method \"%s\" "
						"(only with \"cert\")", name, pgc_hba_method_name(r->method));
		if (strcmp(name, "clientcert") == 0)
		{
			if (strcmp(val, "verify-full") == 0)
			{
				/* With cert, what it does anyway. */
				r->clientcert = r->method == PGC_HBA_CERT ? PGC_CLIENTCERT_OFF : PGC_CLIENTCERT_FULL;
				return 0;
			}
			if (strcmp(val, "verify-ca") == 0 && r->method == PGC_HBA_CERT)
				return pgc_file_error(err, errlen, file, line,
							"clientcert only accepts \"verify-full\" when using \"cert\" authentication");
			if (strcmp(val, "verify-ca") == 0)
			{
				r->clientcert = PGC_CLIENTCERT_CA;
				return 0;
			}
			return pgc_file_error(err, errlen, file, line, "invalid value for clientcert: \"%s\"", val);
		}
		if (strcmp(val, "CN") == 0)
			return 0;           /* the default: the certificate's CN is the user name */
		if (strcmp(val, "DN") == 0)
			return pgc_file_error(err, errlen, file, line, "authentication option \"clientname=DN\" is not supported by pgcarrier");
		return pgc_file_error(err, errlen, file, line, "invalid value for clientname: \"%s\"", val);
	}
	for (int i = 0; pg_options[i] != NULL; i++)
		if (strcmp(name, pg_options[i]) == 0)
			return pgc_file_error(err, errlen, file, line,
						"authentication option \"%s\" is not supported by pgcarrier", name);
	return pgc_file_error(err, errlen, file, line, "unrecognized authentication option name: \"%s\"", name);
}

/* Numeric IPv4 or IPv6 address into ss. 0 ok, -1 not an address. */
static int
parse_ip(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *) ss)->sin_addr) == 1)
	{
		ss->ss_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *) ss)->sin6_addr) == 1)
	{
		ss->ss_family = AF_INET6;
		return 0;
	}
	return -1;
}

/* Does s look like an attempt at a numeric address (rather than a host name)? */
static int
looks_numeric(const char *s)
{
	int colon = strchr(s, ':') != NULL;

	for (; *s; s++)
	{
		char c = *s;

		if (!((c >= '0' && c <= '9') || c == '.' || c == ':' || c == '%' ||
			  (colon && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))))
			return 0;
	}
	return 1;
}

/* The mask of a /bits prefix. */
static int
cidr_mask(const char *bits_s, int family, struct sockaddr_storage *mask)
{
	int maxbits = family == AF_INET ? 32 : 128;
	int bits = 0;
	uint8_t *b;

	if (*bits_s == '\0' || strlen(bits_s) > 3)
		return -1;
	for (const char *p = bits_s; *p; p++)
	{
		if (*p < '0' || *p > '9')
			return -1;
		bits = bits * 10 + (*p - '0');
	}
	if (bits > maxbits)
		return -1;
	memset(mask, 0, sizeof(*mask));
	mask->ss_family = (sa_family_t) family;
	b = family == AF_INET ? (uint8_t *) &((struct sockaddr_in *) mask)->sin_addr
		: (uint8_t *) &((struct sockaddr_in6 *) mask)->sin6_addr;
	for (int i = 0; bits > 0; i++, bits -= 8)
		b[i] = bits >= 8 ? 0xff : (uint8_t) (0xff << (8 - bits));
	return 0;
}

static int
parse_address(const char *file, int line, hba_rule *r, const hba_record *rec, int *fi,
			  char *err, size_t errlen)
{
	const hba_field *f;
	const hba_token *t;
	char *copy;
	char *slash;
	int rc = 0;

	if (*fi >= rec->n)
		return pgc_file_error(err, errlen, file, line, "end-of-line before IP address specification");
	f = &rec->fields[(*fi)++];
	if (f->n != 1)
		return pgc_file_error(err, errlen, file, line, f->n == 0
					? "no host address (empty @file)"
					: "multiple values specified for host address");
	t = &f->tok[0];
	if (is_keyword(t, "all"))
	{
		r->addr_all = 1;
		return 0;
	}
	if (is_keyword(t, "samehost") || is_keyword(t, "samenet"))
		return pgc_file_error(err, errlen, file, line, "\"%s\" is not supported by pgcarrier: write the addresses "
					"in CIDR notation", t->s);

	copy = strdup(t->s);
	if (copy == NULL)
		return pgc_file_error(err, errlen, file, line, "out of memory");
	slash = strchr(copy, '/');
	if (slash != NULL)
		*slash = '\0';
	if (parse_ip(copy, &r->addr) < 0)
	{
		if (looks_numeric(copy))
			rc = pgc_file_error(err, errlen, file, line, "invalid IP address \"%s\"", copy);
		else if (slash != NULL)
			rc = pgc_file_error(err, errlen, file, line, "specifying both host name and CIDR mask is invalid: \"%s\"", t->s);
		else
			rc = pgc_file_error(err, errlen, file, line, "host names are not supported by pgcarrier: \"%s\"", t->s);
		free(copy);
		return rc;
	}
	if (slash != NULL)
	{
		if (cidr_mask(slash + 1, r->addr.ss_family, &r->mask) < 0)
			rc = pgc_file_error(err, errlen, file, line, "invalid CIDR mask in address \"%s\"", t->s);
		free(copy);
		return rc;
	}
	free(copy);

	/* a separate netmask column */
	if (*fi >= rec->n)
		return pgc_file_error(err, errlen, file, line, "end-of-line before netmask specification "
					"(specify an address range in CIDR notation, or provide a separate netmask)");
	f = &rec->fields[(*fi)++];
	if (f->n == 0)
		return pgc_file_error(err, errlen, file, line, "no netmask (empty @file)");
	if (f->n != 1)
		return pgc_file_error(err, errlen, file, line, "multiple values specified for netmask");
	if (parse_ip(f->tok[0].s, &r->mask) < 0)
		return pgc_file_error(err, errlen, file, line, "invalid IP mask \"%s\"", f->tok[0].s);
	if (r->mask.ss_family != r->addr.ss_family)
		return pgc_file_error(err, errlen, file, line, "IP address and mask do not match");
	return 0;
}

static const struct {
	const char *name;
	pgc_hba_method method;      /* PGC_HBA_NO_MATCH: a PostgreSQL method pgcarrier lacks */
} methods[] = {
	{"trust", PGC_HBA_TRUST},
	{"reject", PGC_HBA_REJECT},
	{"md5", PGC_HBA_MD5},
	{"password", PGC_HBA_PASSWORD},
	{"scram-sha-256", PGC_HBA_SCRAM},
	{"cert", PGC_HBA_CERT},
	{"peer", PGC_HBA_PEER},
	{"ident", PGC_HBA_NO_MATCH},
	{"gss", PGC_HBA_NO_MATCH},
	{"sspi", PGC_HBA_NO_MATCH},
	{"pam", PGC_HBA_NO_MATCH},
	{"bsd", PGC_HBA_NO_MATCH},
	{"ldap", PGC_HBA_NO_MATCH},
	{"radius", PGC_HBA_NO_MATCH},
	{NULL, PGC_HBA_NO_MATCH}
};

/* Check the DATABASE or USER list for keywords pgcarrier can't honour. */
static int
check_names(const char *file, int line, const hba_field *f, int is_db, char *err, size_t errlen)
{
	for (int i = 0; i < f->n; i++)
	{
		const hba_token *t = &f->tok[i];

		if (is_db && (is_keyword(t, "samerole") || is_keyword(t, "samegroup")))
			return pgc_file_error(err, errlen, file, line, "database keyword \"%s\" is not supported by pgcarrier "
						"(it needs role membership)", t->s);
		if (!is_db && !t->quoted && t->s[0] == '+')
			return pgc_file_error(err, errlen, file, line, "group membership (\"%s\") is not supported by pgcarrier",
						t->s);
	}
	return 0;
}

/* PostgreSQL's parse_hba_line: one record into r. */
static int
parse_rule(const char *file, int line, const hba_record *rec, hba_rule *r, char *err, size_t errlen)
{
	const hba_field *f;
	const char *s;
	int fi = 0;
	int found = 0;

	/* connection type */
	f = &rec->fields[fi++];
	if (f->n == 0)
		return pgc_file_error(err, errlen, file, line, "no connection type (empty @file)");
	if (f->n != 1)
		return pgc_file_error(err, errlen, file, line, "multiple values specified for connection type");
	s = f->tok[0].s;
	if (strcmp(s, "local") == 0)
		r->type = CT_LOCAL;
	else if (strcmp(s, "host") == 0 || strcmp(s, "hostnogssenc") == 0)
		r->type = CT_HOST;
	else if (strcmp(s, "hostssl") == 0)
		r->type = CT_HOSTSSL;
	else if (strcmp(s, "hostnossl") == 0)
		r->type = CT_HOSTNOSSL;
	else if (strcmp(s, "hostgssenc") == 0)
		return pgc_file_error(err, errlen, file, line, "connection type \"hostgssenc\" is not supported by pgcarrier "
					"(no GSSAPI encryption)");
	else
		return pgc_file_error(err, errlen, file, line, "invalid connection type \"%s\"", s);

	/* databases */
	if (fi >= rec->n)
		return pgc_file_error(err, errlen, file, line, "end-of-line before database specification");
	if (check_names(file, line, &rec->fields[fi], 1, err, errlen) < 0)
		return -1;
	r->dbs = rec->fields[fi++];

	/* users */
	if (fi >= rec->n)
		return pgc_file_error(err, errlen, file, line, "end-of-line before role specification");
	if (check_names(file, line, &rec->fields[fi], 0, err, errlen) < 0)
		return -1;
	r->users = rec->fields[fi++];

	/* address */
	if (r->type != CT_LOCAL && parse_address(file, line, r, rec, &fi, err, errlen) < 0)
		return -1;

	/* method */
	if (fi >= rec->n)
		return pgc_file_error(err, errlen, file, line, "end-of-line before authentication method");
	f = &rec->fields[fi++];
	if (f->n == 0)
		return pgc_file_error(err, errlen, file, line, "no authentication method (empty @file)");
	if (f->n != 1)
		return pgc_file_error(err, errlen, file, line, "multiple values specified for authentication type");
	s = f->tok[0].s;
	for (int i = 0; methods[i].name != NULL; i++)
		if (strcmp(s, methods[i].name) == 0)
		{
			r->method = methods[i].method;
			found = 1;
			break;
		}
	if (!found)
		return pgc_file_error(err, errlen, file, line, "invalid authentication method \"%s\"", s);
	if (strcmp(s, "ident") == 0 && r->type == CT_LOCAL)
		r->method = PGC_HBA_PEER;       /* as PostgreSQL: ident on a local socket is peer */
	if (r->method == PGC_HBA_NO_MATCH)
		return pgc_file_error(err, errlen, file, line, "invalid authentication method \"%s\": not supported by pgcarrier", s);
	if (r->method == PGC_HBA_PEER && r->type != CT_LOCAL)
		return pgc_file_error(err, errlen, file, line, "peer authentication is only supported on local sockets");
	if (r->method == PGC_HBA_CERT && r->type != CT_HOSTSSL)
		return pgc_file_error(err, errlen, file, line, "cert authentication is only supported on hostssl connections");

	/* options */
	for (; fi < rec->n; fi++)
		for (int i = 0; i < rec->fields[fi].n; i++)
			if (parse_option(file, line, r, rec->fields[fi].tok[i].s, err, errlen) < 0)
				return -1;
	return 0;
}

typedef struct load_ctx {
	pgc_hba *hba;
	tok_ctx tok;
} load_ctx;

static int
top_record(void *arg, char *text, int line)
{
	load_ctx *lc = arg;
	tok_ctx *ctx = &lc->tok;
	hba_record rec = {0};
	hba_rule r;
	char desc[32];
	size_t dlen;
	int rc;

	rc = tokenize_record(ctx, text, line, &rec);
	if (rc < 0 || rec.n == 0)
	{
		record_free(&rec);
		return rc;
	}
	memset(&r, 0, sizeof(r));
	r.line = line;
	rc = parse_rule(ctx->file, line, &rec, &r, ctx->err, ctx->errlen);
	if (rc == 0)
	{
		snprintf(desc, sizeof(desc), ":%d", line);
		dlen = strlen(ctx->file) + strlen(desc);
		r.desc = malloc(dlen + 1);
		if (r.desc == NULL ||
			grow((void **) &lc->hba->rules, lc->hba->n, &lc->hba->cap, sizeof(*lc->hba->rules)) < 0)
		{
			free(r.desc);
			rc = pgc_file_error(ctx->err, ctx->errlen, ctx->file, line, "out of memory");
		}
		else
		{
			snprintf(r.desc, dlen + 1, "%s%s", ctx->file, desc);
			/* the rule takes over the DATABASE and USER fields */
			for (int i = 0; i < rec.n; i++)
				if (rec.fields[i].tok == r.dbs.tok || rec.fields[i].tok == r.users.tok)
					memset(&rec.fields[i], 0, sizeof(rec.fields[i]));
			lc->hba->rules[lc->hba->n++] = r;
		}
	}
	record_free(&rec);
	return rc;
}

pgc_hba *
pgc_hba_load(const char *path, char *err, size_t errlen)
{
	load_ctx lc;
	char *text;
	size_t len = 0;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (path == NULL)
	{
		pgc_file_error(err, errlen, "(null)", 0, "no file name");
		return NULL;
	}
	text = pgc_read_file(path, &len);
	if (text == NULL)
	{
		pgc_file_error(err, errlen, path, 0, "could not open configuration file \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	memset(&lc, 0, sizeof(lc));
	lc.hba = calloc(1, sizeof(*lc.hba));
	if (lc.hba == NULL)
	{
		free(text);
		pgc_file_error(err, errlen, path, 0, "out of memory");
		return NULL;
	}
	lc.tok.file = path;
	lc.tok.err = err;
	lc.tok.errlen = errlen;
	rc = for_each_record(text, len, top_record, &lc, path, err, errlen);
	free(text);
	if (rc == 0 && lc.hba->n == 0)
		rc = pgc_file_error(err, errlen, path, 0, "configuration file \"%s\" contains no entries", path);
	if (rc < 0)
	{
		pgc_hba_free(lc.hba);
		return NULL;
	}
	return lc.hba;
}

void
pgc_hba_free(pgc_hba *hba)
{
	if (hba == NULL)
		return;
	for (int i = 0; i < hba->n; i++)
	{
		field_free(&hba->rules[i].dbs);
		field_free(&hba->rules[i].users);
		free(hba->rules[i].desc);
	}
	free(hba->rules);
	free(hba);
}

int
pgc_hba_count(const pgc_hba *hba)
{
	return hba != NULL ? hba->n : 0;
}

int
pgc_hba_hostssl_line(const pgc_hba *hba)
{
	for (int i = 0; hba != NULL && i < hba->n; i++)
		if (hba->rules[i].type == CT_HOSTSSL)
			return hba->rules[i].line;
	return 0;
}

/* ---------------------------------------------------------------- matching */

/* The peer address, with an IPv4-mapped IPv6 address turned into IPv4. */
static void
peer_addr(const pgc_hba_conn *conn, struct sockaddr_storage *out)
{
	*out = conn->addr;
	if (conn->addr.ss_family == AF_INET6)
	{
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *) &conn->addr;

		if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
		{
			struct sockaddr_in *a4 = (struct sockaddr_in *) out;

			memset(out, 0, sizeof(*out));
			a4->sin_family = AF_INET;
			a4->sin_port = a6->sin6_port;
			memcpy(&a4->sin_addr, &a6->sin6_addr.s6_addr[12], 4);
		}
	}
}

static int
ip_matches(const struct sockaddr_storage *peer, const hba_rule *r)
{
	const uint8_t *p;
	const uint8_t *a;
	const uint8_t *m;
	int n;

	if (peer->ss_family != r->addr.ss_family)
		return 0;
	if (peer->ss_family == AF_INET)
	{
		p = (const uint8_t *) &((const struct sockaddr_in *) peer)->sin_addr;
		a = (const uint8_t *) &((const struct sockaddr_in *) &r->addr)->sin_addr;
		m = (const uint8_t *) &((const struct sockaddr_in *) &r->mask)->sin_addr;
		n = 4;
	}
	else if (peer->ss_family == AF_INET6)
	{
		p = ((const struct sockaddr_in6 *) peer)->sin6_addr.s6_addr;
		a = ((const struct sockaddr_in6 *) &r->addr)->sin6_addr.s6_addr;
		m = ((const struct sockaddr_in6 *) &r->mask)->sin6_addr.s6_addr;
		n = 16;
	}
	else
		return 0;
	for (int i = 0; i < n; i++)
		if (((p[i] ^ a[i]) & m[i]) != 0)
			return 0;
	return 1;
}

static int
db_matches(const hba_field *f, const char *db, const char *user)
{
	for (int i = 0; i < f->n; i++)
	{
		const hba_token *t = &f->tok[i];

		if (is_keyword(t, "all"))
			return 1;
		if (is_keyword(t, "sameuser"))
		{
			if (strcmp(db, user) == 0)
				return 1;
			continue;
		}
		if (is_keyword(t, "replication"))
			continue;           /* only replication connections, which pgcarrier refuses */
		if (strcmp(t->s, db) == 0)
			return 1;
	}
	return 0;
}

static int
user_matches(const hba_field *f, const char *user)
{
	for (int i = 0; i < f->n; i++)
		if (is_keyword(&f->tok[i], "all") || strcmp(f->tok[i].s, user) == 0)
			return 1;
	return 0;
}

static const hba_rule *
find_rule(const pgc_hba *hba, const pgc_hba_conn *conn)
{
	struct sockaddr_storage peer;
	const char *db;
	const char *user;

	if (hba == NULL || conn == NULL)
		return NULL;
	db = conn->database != NULL ? conn->database : "";
	user = conn->user != NULL ? conn->user : "";
	if (!conn->is_unix)
		peer_addr(conn, &peer);
	for (int i = 0; i < hba->n; i++)
	{
		const hba_rule *r = &hba->rules[i];

		if (r->type == CT_LOCAL)
		{
			if (!conn->is_unix)
				continue;
		}
		else
		{
			if (conn->is_unix)
				continue;
			if (conn->is_tls ? r->type == CT_HOSTNOSSL : r->type == CT_HOSTSSL)
				continue;
			if (!r->addr_all && !ip_matches(&peer, r))
				continue;
		}
		if (!db_matches(&r->dbs, db, user) || !user_matches(&r->users, user))
			continue;
		return r;
	}
	return NULL;
}

pgc_hba_method
pgc_hba_match(const pgc_hba *hba, const pgc_hba_conn *conn, const char **matched_line_desc)
{
	const hba_rule *r = find_rule(hba, conn);

	if (matched_line_desc != NULL)
		*matched_line_desc = r != NULL ? r->desc : NULL;
	return r != NULL ? r->method : PGC_HBA_NO_MATCH;
}

pgc_hba_method
pgc_hba_match_line(const pgc_hba *hba, const pgc_hba_conn *conn, int *line)
{
	return pgc_hba_match_rule(hba, conn, line, NULL);
}

pgc_hba_method
pgc_hba_match_rule(const pgc_hba *hba, const pgc_hba_conn *conn, int *line, pgc_hba_clientcert *clientcert)
{
	const hba_rule *r = find_rule(hba, conn);

	if (line != NULL)
		*line = r != NULL ? r->line : 0;
	if (clientcert != NULL)
		*clientcert = r != NULL ? r->clientcert : PGC_CLIENTCERT_OFF;
	return r != NULL ? r->method : PGC_HBA_NO_MATCH;
}

const char *
pgc_hba_method_name(pgc_hba_method method)
{
	switch (method)
	{
		case PGC_HBA_TRUST:
			return "trust";
		case PGC_HBA_REJECT:
			return "reject";
		case PGC_HBA_MD5:
			return "md5";
		case PGC_HBA_SCRAM:
			return "scram-sha-256";
		case PGC_HBA_PASSWORD:
			return "password";
		case PGC_HBA_CERT:
			return "cert";
		case PGC_HBA_PEER:
			return "peer";
		case PGC_HBA_NO_MATCH:
			break;
	}
	return "no match";
}

/* ---------------------------------------------------------------- messages */

void
pgc_hba_host_string(const pgc_hba_conn *conn, char *out, size_t cap)
{
	struct sockaddr_storage peer;
	socklen_t salen;

	if (cap == 0)
		return;
	if (conn == NULL || conn->is_unix)
	{
		snprintf(out, cap, "[local]");
		return;
	}
	peer_addr(conn, &peer);
	if (peer.ss_family == AF_INET)
		salen = sizeof(struct sockaddr_in);
	else if (peer.ss_family == AF_INET6)
		salen = sizeof(struct sockaddr_in6);
	else
	{
		snprintf(out, cap, "???");
		return;
	}
	if (getnameinfo((const struct sockaddr *) &peer, salen, out, (socklen_t) (cap > 1025 ? 1025 : cap),
					NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(out, cap, "???");
}

static int
auth_message(const char *fmt, const pgc_hba_conn *conn, char *out, size_t cap)
{
	char host[NI_MAXHOST];

	pgc_hba_host_string(conn, host, sizeof(host));
	return snprintf(out, cap, fmt, host,
					conn != NULL && conn->user != NULL ? conn->user : "",
					conn != NULL && conn->database != NULL ? conn->database : "",
					conn != NULL && conn->is_tls ? "SSL encryption" : "no encryption");
}

int
pgc_hba_no_match_message(const pgc_hba_conn *conn, char *out, size_t cap)
{
	return auth_message("no pg_hba.conf entry for host \"%s\", user \"%s\", database \"%s\", %s",
						conn, out, cap);
}

int
pgc_hba_reject_message(const pgc_hba_conn *conn, char *out, size_t cap)
{
	return auth_message("pg_hba.conf rejects connection for host \"%s\", user \"%s\", database \"%s\", %s",
						conn, out, cap);
}
