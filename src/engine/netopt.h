/*
 * netopt.h - socket options from PgBouncer's low-level network settings.
 *
 * Contract: pgc_netopt_tcp() sets, on a connected TCP socket (a client's
 * or a server connection), what the config asks: SO_KEEPALIVE
 * (tcp_keepalive) with TCP_KEEPCNT/TCP_KEEPIDLE/TCP_KEEPINTVL when they
 * are not 0, TCP_USER_TIMEOUT (tcp_user_timeout, ms), SO_SNDBUF and
 * SO_RCVBUF (tcp_socket_buffer). pgc_netopt_listener() sets
 * TCP_DEFER_ACCEPT on a TCP listener (tcp_defer_accept). A setting the
 * kernel refuses is skipped: the connection still works with the OS's.
 */
#ifndef PGC_NETOPT_H
#define PGC_NETOPT_H

#include "config.h"

void pgc_netopt_tcp(int fd, const pgc_config *cfg);
void pgc_netopt_listener(int fd, const pgc_config *cfg);

#endif
