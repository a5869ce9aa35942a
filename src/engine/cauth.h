/*
 * cauth.h - authenticating clients: pgcarrier is a second front door to the
 * database and must be at least as hard to get through as PostgreSQL's own.
 *
 * The method comes from auth_type, or with auth_type = hba from the first
 * matching line of auth_hba_file, exactly as PostgreSQL reads pg_hba.conf.
 * Secrets come from the auth file (clear, md5 or SCRAM-SHA-256 secrets), or,
 * for users it does not have, from auth_query (authq.h) when auth_user is
 * set: the client then waits in CL_AUTH until the answer comes back.
 * The exchanges and their errors are PostgreSQL 15's (see sauth.h); wrong
 * passwords, unknown users and missing secrets all look the same to the
 * client (28P01), and nothing secret is ever logged.
 *
 * Runs on the client's worker between the startup packet and the welcome.
 * What costs PBKDF2 (the SCRAM secret of a clear-text password, derived
 * once and cached; a clear-text password checked against a SCRAM secret)
 * runs on authwork.h's helper thread instead, the client waiting in
 * CL_AUTH as for auth_query.
 */
#ifndef PGC_CAUTH_H
#define PGC_CAUTH_H

#include "core.h"

/*
 * Start authenticating c (startup packet read, user and database known).
 * 1: c may log in now; 0: an authentication request was sent, feed the
 * client's answers to pgc_cauth_step; -1: c was refused and closed.
 */
int pgc_cauth_begin(pgc_client *c);
/* The client sent something while authenticating: same return values. */
int pgc_cauth_step(pgc_client *c);
/*
 * auth_query or the helper thread answered (c was posted to its worker in
 * CL_AUTH): go on. Same return values (0 also when there is no answer yet).
 */
int pgc_cauth_resume(pgc_client *c);
/*
 * c is closing: cancel its auth_query or helper request, so that no helper
 * thread posts it again. Call before pgc_pool_cancel_wait (which takes it
 * off its worker's inbox if it was posted already).
 */
void pgc_cauth_abandon(pgc_client *c);
void pgc_cauth_free(pgc_client *c);

#endif
