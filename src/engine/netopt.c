/*
 * netopt.c - see netopt.h.
 */
#include "netopt.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* Seconds TCP_DEFER_ACCEPT waits for the first data: PgBouncer's fixed value. */
#define DEFER_ACCEPT_SECONDS 45

static void
set_int(int fd, int level, int name, int value)
{
	/* best effort: an option the kernel refuses leaves the OS's behaviour */
	(void) setsockopt(fd, level, name, &value, sizeof(value));
}

void
pgc_netopt_tcp(int fd, const pgc_config *cfg)
{
	set_int(fd, SOL_SOCKET, SO_KEEPALIVE, cfg->tcp_keepalive ? 1 : 0);
	if (cfg->tcp_keepalive)
	{
		if (cfg->tcp_keepcnt > 0)
			set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, cfg->tcp_keepcnt);
		if (cfg->tcp_keepidle > 0)
			set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, cfg->tcp_keepidle);
		if (cfg->tcp_keepintvl > 0)
			set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, cfg->tcp_keepintvl);
	}
	if (cfg->tcp_user_timeout > 0)
		set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, cfg->tcp_user_timeout);
	if (cfg->tcp_socket_buffer > 0)
	{
		set_int(fd, SOL_SOCKET, SO_SNDBUF, cfg->tcp_socket_buffer);
		set_int(fd, SOL_SOCKET, SO_RCVBUF, cfg->tcp_socket_buffer);
	}
}

void
pgc_netopt_listener(int fd, const pgc_config *cfg)
{
	if (cfg->tcp_defer_accept)
		set_int(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS);
	/* Linux gives an accepted socket its listener's options: set once here, not per client. */
	set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	pgc_netopt_tcp(fd, cfg);
}

bool
pgc_netopt_same(const pgc_config *a, const pgc_config *b)
{
	return a->tcp_keepalive == b->tcp_keepalive && a->tcp_keepcnt == b->tcp_keepcnt &&
		a->tcp_keepidle == b->tcp_keepidle && a->tcp_keepintvl == b->tcp_keepintvl &&
		a->tcp_user_timeout == b->tcp_user_timeout && a->tcp_socket_buffer == b->tcp_socket_buffer;
}
