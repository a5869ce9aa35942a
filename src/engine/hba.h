/*
 * hba.h - pg_hba.conf for pgcarrier's own client authentication: a parser
 * for PostgreSQL 15's file format and a first-match-wins matcher.
 *
 * Contract:
 *  - pgc_hba_load() reads the file (and its @file includes) once; the result
 *    is immutable, so one object can be shared by all workers and replaced
 *    whole on reload. No other I/O, no logging.
 *  - Any line pgcarrier could not enforce exactly as PostgreSQL would is a
 *    load error, never silently ignored: the whole file is refused with
 *    err = "FILE:LINE: message" (PostgreSQL's wording where it has one).
 *
 * Format (as PostgreSQL 15):
 *    local      DATABASE USER          METHOD [OPTIONS]
 *    host       DATABASE USER ADDRESS  METHOD [OPTIONS]
 *    hostssl    DATABASE USER ADDRESS  METHOD [OPTIONS]
 *    hostnossl  DATABASE USER ADDRESS  METHOD [OPTIONS]
 *    host...    DATABASE USER IP-ADDRESS IP-MASK METHOD [OPTIONS]
 *  - '#' starts a comment; a '\' at the very end of a line continues the
 *    record on the next line (even in a comment, as in PostgreSQL); errors
 *    name the record's first line.
 *  - Tokens are separated by blanks; DATABASE and USER are comma-separated
 *    lists ("a,b" or "a, b"); "..." quotes a token (keeps blanks, commas and
 *    '#'; "" inside quotes is a literal '"'). A quoted keyword is a plain
 *    name: "all" is the database called all. An unterminated quote is an
 *    error (PostgreSQL silently runs it to the end of the line).
 *  - @file in DATABASE or USER is replaced by the names in that file
 *    (relative to the directory of the file that names it; names separated
 *    by blanks, commas or newlines; '#' comments; nested @file allowed up to
 *    10 levels). An @file with no name in it gives a list that matches
 *    nothing (PostgreSQL drops the column instead, shifting the others).
 *  - DATABASE keywords: all, sameuser (database name = user name),
 *    replication (never matches: pgcarrier refuses replication connections).
 *    samerole / samegroup are refused (pgcarrier knows no role membership).
 *  - USER keywords: all. "+group" is refused (role membership).
 *  - ADDRESS: all, a.b.c.d/len, x:y::z/len, or an address and a separate
 *    mask column (255.255.0.0, ffff:ffff::); numeric only. samehost,
 *    samenet and host names are refused.
 *  - METHOD: trust, reject, md5, password, scram-sha-256, cert (hostssl
 *    only), peer (local only; "ident" on a local line means peer, as in
 *    PostgreSQL). Other PostgreSQL methods (gss, sspi, ident on host, pam,
 *    ldap, radius, bsd) are refused as not supported by pgcarrier.
 *  - OPTIONS (name=value), hostssl lines only: clientcert=verify-ca (a
 *    client certificate that verifies) or verify-full (and its CN is the
 *    user name) on top of any method; with cert only verify-full, and
 *    clientname=CN (what cert does anyway). Any other option is an error
 *    naming it.
 *  - hostnogssenc is taken as host (pgcarrier never has GSSAPI encryption);
 *    hostgssenc is refused.
 *  - A file with no rule is refused, as PostgreSQL does.
 *
 * Matching (as PostgreSQL 15's check_hba): lines are tried in order, the
 * first one whose connection type, address, database and user all match
 * decides; "reject" is a decision like any other. Names compare exactly
 * (case-sensitive).
 *
 * IPv4-mapped IPv6 peers: PostgreSQL 15 compares addresses only within the
 * same family (an IPv4 rule never matches an IPv6 peer; the old promotion
 * of IPv4 rules to IPv6 was removed in PostgreSQL 12), and it listens with
 * IPV6_V6ONLY, so an IPv4 client always reaches it as AF_INET. pgcarrier
 * may accept IPv4 clients on a dual-stack IPv6 socket, where they show up
 * as ::ffff:a.b.c.d; to behave as PostgreSQL would for the same client,
 * such a peer is converted to the IPv4 address a.b.c.d before matching
 * (and in the messages below). So "host all all 10.0.0.0/8" matches
 * ::ffff:10.1.2.3, and an IPv6 rule such as ::ffff:0:0/96 does not.
 *
 * For md5 lines, PostgreSQL does SCRAM instead when the user's secret is a
 * SCRAM secret; that choice belongs to the caller (see sauth.h).
 */
#ifndef PGC_HBA_H
#define PGC_HBA_H

#include <stddef.h>
#include <sys/socket.h>

typedef enum pgc_hba_method {
	PGC_HBA_NO_MATCH = 0,       /* no line matched: implicit reject */
	PGC_HBA_TRUST,
	PGC_HBA_REJECT,             /* an explicit "reject" line matched */
	PGC_HBA_MD5,
	PGC_HBA_SCRAM,              /* scram-sha-256 */
	PGC_HBA_PASSWORD,           /* clear-text password */
	PGC_HBA_CERT,               /* client certificate, CN = user name */
	PGC_HBA_PEER                /* Unix socket peer credentials = user name */
} pgc_hba_method;

/* The connection to decide about. */
typedef struct pgc_hba_conn {
	int is_unix;                    /* arrived on a Unix socket: only "local" lines apply */
	int is_tls;                     /* TLS in use (hostssl / hostnossl); ignored if is_unix */
	struct sockaddr_storage addr;   /* peer address (AF_INET or AF_INET6); ignored if is_unix */
	const char *database;           /* from the startup packet */
	const char *user;               /* from the startup packet */
} pgc_hba_conn;

typedef struct pgc_hba pgc_hba;

/* clientcert= of a line: a client certificate is needed on top of the method. */
typedef enum pgc_hba_clientcert {
	PGC_CLIENTCERT_OFF = 0,
	PGC_CLIENTCERT_CA,          /* verify-ca: it must verify */
	PGC_CLIENTCERT_FULL         /* verify-full: and its CN must be the user name */
} pgc_hba_clientcert;

/* Load and check the file at path. NULL on error, "FILE:LINE: message" in err. */
pgc_hba *pgc_hba_load(const char *path, char *err, size_t errlen);

/*
 * The method of the first line matching conn, or PGC_HBA_NO_MATCH.
 * matched_line_desc (may be NULL) receives "FILE:LINE" of the matching line,
 * a string owned by hba, or NULL when nothing matched.
 */
pgc_hba_method pgc_hba_match(const pgc_hba *hba, const pgc_hba_conn *conn,
							 const char **matched_line_desc);

/* Same as pgc_hba_match, and *line (may be NULL) receives the line number (0: no match). */
pgc_hba_method pgc_hba_match_line(const pgc_hba *hba, const pgc_hba_conn *conn, int *line);

/* Same, and *clientcert (may be NULL) receives the line's clientcert option. */
pgc_hba_method pgc_hba_match_rule(const pgc_hba *hba, const pgc_hba_conn *conn, int *line,
								  pgc_hba_clientcert *clientcert);

/* Number of rules loaded. */
int pgc_hba_count(const pgc_hba *hba);

/*
 * Line of the first hostssl rule, or 0. PostgreSQL logs "hostssl record
 * cannot match because SSL is disabled" for such a line when ssl is off;
 * the caller can do the same when pgcarrier has no TLS for clients.
 */
int pgc_hba_hostssl_line(const pgc_hba *hba);

void pgc_hba_free(pgc_hba *hba);

/* "trust", "reject", "md5", "scram-sha-256", "password", "cert", "peer"; "no match". */
const char *pgc_hba_method_name(pgc_hba_method method);

/*
 * The peer as PostgreSQL 15 shows it in these messages: "[local]" for a
 * Unix socket, else the numeric address (IPv4-mapped IPv6 shown as IPv4).
 */
void pgc_hba_host_string(const pgc_hba_conn *conn, char *out, size_t cap);

/*
 * PostgreSQL 15's FATAL messages (SQLSTATE 28000, invalid_authorization_specification):
 *   no match: no pg_hba.conf entry for host "H", user "U", database "D", no encryption
 *   reject:   pg_hba.conf rejects connection for host "H", user "U", database "D", SSL encryption
 * Return the length snprintf would have written.
 */
int pgc_hba_no_match_message(const pgc_hba_conn *conn, char *out, size_t cap);
int pgc_hba_reject_message(const pgc_hba_conn *conn, char *out, size_t cap);

#endif
