/*
 * netopt.h - socket options from PgBouncer's low-level network settings.
 *
 * Contract: pgc_netopt_tcp() sets, on a connected TCP socket (a client's
 * or a server connection), what the config asks: SO_KEEPALIVE
 * (tcp_keepalive) with TCP_KEEPCNT/TCP_KEEPIDLE/TCP_KEEPINTVL when they
 * are not 0, TCP_USER_TIMEOUT (tcp_user_timeout, ms), SO_SNDBUF and
 * SO_RCVBUF (tcp_socket_buffer). pgc_netopt_listener() sets
 * TCP_DEFER_ACCEPT on a TCP listener (tcp_defer_accept), and TCP_NODELAY
 * and what pgc_netopt_tcp() sets, which the sockets accepted from it then
 * have already (Linux copies a listener's options to them): a client's
 * socket needs pgc_netopt_tcp() only when the config has changed them
 * since (pgc_netopt_same). A setting the kernel refuses is skipped: the
 * connection still works with the OS's.
 */
#ifndef PGC_NETOPT_H
#define PGC_NETOPT_H

#include <stdbool.h>

#include "config.h"

void pgc_netopt_tcp(int fd, const pgc_config *cfg);
void pgc_netopt_listener(int fd, const pgc_config *cfg);
/* Whether a and b ask for the same pgc_netopt_tcp() options. */
bool pgc_netopt_same(const pgc_config *a, const pgc_config *b);

#endif
