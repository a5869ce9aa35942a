/*
 * engine.c - start and stop the workers, open the listeners, swap configs.
 *
 * Listeners never take over someone else's: a lock file next to the Unix
 * socket (PostgreSQL's convention, so that PostgreSQL and pgcarrier respect
 * each other's), a check that nobody listens on a TCP port before our
 * SO_REUSEPORT sockets join it, and at exit only the files that are still
 * ours are removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "accept.h"
#include "authq.h"
#include "control.h"
#include "core.h"
#include "pshare.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "stats.h"
#include "netopt.h"
#include "poller.h"

pgc_engine *pgc_the_engine;
static atomic_int workers_running;

const pgc_config *
pgc_engine_config(void)
{
	return atomic_load(&pgc_the_engine->cfg);
}

/* ------------------------------------------------------------ lock files -- */

/* Tries before giving up on a lock file that keeps being replaced under us. */
#define LOCKFILE_TRIES          10
#define LOCK_SUFFIX             ".lock"
#define UNIX_LOCK_MODE          0600        /* as PostgreSQL's: other users cannot read it, so leave it alone */

/* What lockfile_pid() found. */
enum { LOCK_GONE = -2, LOCK_UNREADABLE = -1, LOCK_NO_PID = 0 };

/* The pid on the first line of path (a PostgreSQL lock file may hold it negated), or a LOCK_* value. */
static long
lockfile_pid(const char *path)
{
	char buf[64];
	char *end;
	long pid;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? LOCK_GONE : LOCK_UNREADABLE;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return LOCK_UNREADABLE;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	if (end == buf || pid == 0 || (*end != '\n' && *end != '\0'))
		return LOCK_NO_PID;
	return pid < 0 ? -pid : pid;
}

/* Whether pid is a running process (a zombie is not: it holds no socket any more). */
static bool
process_alive(pid_t pid)
{
	char path[64], line[512];
	const char *close_paren;
	FILE *f;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	f = fopen(path, "r");
	if (f == NULL)
		return true;            /* no /proc: kill() said it exists */
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	/* "pid (comm) state ...", and comm may hold spaces and parentheses. */
	close_paren = strrchr(line, ')');
	return close_paren == NULL || close_paren[1] != ' ' || close_paren[2] != 'Z';
}

static int
lockfile_write(int fd, const char *path, const char *text, char *err, size_t errlen)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%d\n%s", (int) getpid(), text ? text : "");

	if (n < 0 || (size_t) n >= sizeof(buf) || write(fd, buf, (size_t) n) != n)
	{
		int saved = errno;

		close(fd);
		unlink(path);
		snprintf(err, errlen, "could not write \"%s\": %s", path, strerror(saved ? saved : ENOSPC));
		return -1;
	}
	if (close(fd) < 0)
	{
		snprintf(err, errlen, "could not write \"%s\": %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

int
pgc_lockfile_create(const char *path, mode_t mode, const char *text, pid_t *owner,
					char *err, size_t errlen)
{
	*owner = 0;
	for (int tries = 0; tries < LOCKFILE_TRIES; tries++)
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		long pid;

		if (fd >= 0)
			return lockfile_write(fd, path, text, err, errlen);
		if (errno != EEXIST)
		{
			snprintf(err, errlen, "could not create \"%s\": %s", path, strerror(errno));
			return -1;
		}
		pid = lockfile_pid(path);
		if (pid == LOCK_GONE)
			continue;           /* removed since: try again */
		if (pid == LOCK_UNREADABLE)
		{
			snprintf(err, errlen, "\"%s\" exists and cannot be read: %s", path, strerror(errno));
			return -1;
		}
		if (pid == LOCK_NO_PID)
		{
			snprintf(err, errlen, "\"%s\" exists but holds no process id (a server may be starting); "
					 "remove it if none is", path);
			return -1;
		}
		/*
		 * Our own pid or our parent's cannot be a competitor: such a file is
		 * left over from before a reboot that reused the number (PostgreSQL's
		 * reasoning).
		 */
		if ((pid_t) pid != getpid() && (pid_t) pid != getppid() && process_alive((pid_t) pid))
		{
			*owner = (pid_t) pid;
			snprintf(err, errlen, "\"%s\" belongs to process %ld, which is running", path, pid);
			return -1;
		}
		if (unlink(path) < 0 && errno != ENOENT)
		{
			snprintf(err, errlen, "could not remove the stale \"%s\" (of process %ld, which is gone): %s",
					 path, pid, strerror(errno));
			return -1;
		}
	}
	snprintf(err, errlen, "could not create \"%s\": it keeps coming back", path);
	return -1;
}

void
pgc_lockfile_remove(const char *path)
{
	if (path && path[0] && lockfile_pid(path) == (long) getpid())
		unlink(path);
}

/* ------------------------------------------------------------- listeners -- */

static int
add_listen_fd(pgc_worker *w, int fd)
{
	int *fds = realloc(w->listen_fds, sizeof(int) * (size_t) (w->n_listen + 1));

	if (fds == NULL)
		return -1;
	w->listen_fds = fds;
	w->listen_fds[w->n_listen++] = fd;
	return 0;
}

/* Sockets in /proc/net/tcp{,6}: the state of a listening one. */
#define TCP_STATE_LISTEN        0x0A

/* The inode of a socket in table (/proc/net/tcp or tcp6) listening on port, 0 if none. */
static unsigned long
tcp_listener_inode(const char *table, int port)
{
	char line[512];
	unsigned long found = 0;
	FILE *f = fopen(table, "r");

	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL)   /* the header */
		line[0] = '\0';
	while (found == 0 && fgets(line, sizeof(line), f))
	{
		char local[80];
		unsigned state;
		unsigned long inode;
		const char *colon;

		if (sscanf(line, "%*d: %79s %*s %x %*s %*s %*s %*u %*u %lu", local, &state, &inode) != 3)
			continue;
		colon = strrchr(local, ':');
		if (colon && state == TCP_STATE_LISTEN && strtol(colon + 1, NULL, 16) == port)
			found = inode;
	}
	fclose(f);
	return found;
}

/* The pid of a process holding socket inode, 0 if none we may look at. */
static pid_t
socket_owner(unsigned long inode)
{
	char want[64];
	pid_t owner = 0;
	struct dirent *p;
	DIR *procs = opendir("/proc");

	if (procs == NULL)
		return 0;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	while (owner == 0 && (p = readdir(procs)) != NULL)
	{
		char fddir[300];
		struct dirent *fd;
		DIR *fds;

		if (p->d_name[0] < '1' || p->d_name[0] > '9')
			continue;
		snprintf(fddir, sizeof(fddir), "/proc/%s/fd", p->d_name);
		if ((fds = opendir(fddir)) == NULL)
			continue;           /* gone, or not ours to see */
		while (owner == 0 && (fd = readdir(fds)) != NULL)
		{
			char link[600], target[64];
			ssize_t n;

			snprintf(link, sizeof(link), "%s/%s", fddir, fd->d_name);
			n = readlink(link, target, sizeof(target) - 1);
			if (n > 0 && (target[n] = '\0', strcmp(target, want) == 0))
				owner = (pid_t) atoi(p->d_name);
		}
		closedir(fds);
	}
	closedir(procs);
	return owner;
}

/* Best effort: who listens on TCP port (0 when unknown). Only on the error path. */
static pid_t
tcp_port_owner(int port)
{
	unsigned long inode = tcp_listener_inode("/proc/net/tcp", port);

	if (inode == 0)
		inode = tcp_listener_inode("/proc/net/tcp6", port);
	return inode ? socket_owner(inode) : 0;
}

/* A TCP socket for ai, bound and (listen) listening; SO_REUSEPORT or not. -1 with errno. */
static int
tcp_socket(const struct addrinfo *ai, bool reuseport, bool listening)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	/* SO_REUSEADDR: a port left in TIME_WAIT by our own last run is nobody's. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (listening)
		pgc_netopt_listener(fd, pgc_engine_config());
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		(listening && listen(fd, pgc_engine_config()->listen_backlog) < 0))
	{
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * Nobody may listen on ai's address already. The SO_REUSEPORT sockets that
 * follow would otherwise silently share the port with another pgcarrier of
 * the same user, which would take half of the clients; so bind it once
 * without SO_REUSEPORT first. (Two instances starting at the same moment
 * can still both pass; this is not a lock.) 0 free, 1 the address family
 * is not supported here, -1 with a message.
 */
static int
tcp_check_free(const struct addrinfo *ai, const char *host, int port, char *err, size_t errlen)
{
	int fd = tcp_socket(ai, false, false);
	pid_t owner;

	if (fd >= 0)
	{
		close(fd);
		return 0;
	}
	if (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)
		return 1;               /* no IPv6 here, say: skip the address */
	if (errno != EADDRINUSE)
	{
		snprintf(err, errlen, "could not listen on %s port %d: %s", host, port, strerror(errno));
		return -1;
	}
	owner = tcp_port_owner(port);
	if (owner > 0)
		snprintf(err, errlen, "could not listen on %s port %d: it is in use by process %d "
				 "(another pgcarrier, or PostgreSQL?)", host, port, (int) owner);
	else
		snprintf(err, errlen, "could not listen on %s port %d: it is in use "
				 "(by another pgcarrier, or PostgreSQL?)", host, port);
	return -1;
}

/* One SO_REUSEPORT socket per worker and address, so the kernel spreads connections. */
static int
open_tcp(pgc_engine *e, const char *host, int port, char *err, size_t errlen)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	char portstr[16];
	int rc;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, portstr, &hints, &res);
	if (rc != 0)
	{
		snprintf(err, errlen, "could not resolve listen_addr \"%s\": %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next)
	{
		/* so_reuseport: other processes may share the port on purpose (PgBouncer's meaning). */
		rc = pgc_engine_config()->so_reuseport ? 0 : tcp_check_free(ai, host, port, err, errlen);
		if (rc < 0)
		{
			freeaddrinfo(res);
			return -1;
		}
		for (int i = 0; rc == 0 && i < e->n_workers; i++)
		{
			int fd = tcp_socket(ai, true, true);

			if (fd < 0)
			{
				snprintf(err, errlen, "could not listen on %s port %d: %s", host, port, strerror(errno));
				freeaddrinfo(res);
				return -1;
			}
			add_listen_fd(&e->workers[i], fd);
		}
	}
	freeaddrinfo(res);
	return 0;
}

/*
 * The socket file at path must be free to bind: nothing there, or a socket
 * nobody listens on any more (left by a process that died), which is
 * removed. Someone listening, or another kind of file, is refused: we hold
 * the lock file, but not every server writes one.
 */
static int
unix_path_claim(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, rc, saved;

	if (lstat(path, &st) < 0)
	{
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "could not check Unix socket \"%s\": %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode))
	{
		snprintf(err, errlen, "could not listen on Unix socket \"%s\": the file exists and is not a socket", path);
		return -1;
	}
	if ((size_t) snprintf(un.sun_path, sizeof(un.sun_path), "%s", path) >= sizeof(un.sun_path))
	{
		snprintf(err, errlen, "Unix socket path \"%s\" is too long", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		snprintf(err, errlen, "could not create Unix socket: %s", strerror(errno));
		return -1;
	}
	rc = connect(fd, (struct sockaddr *) &un, sizeof(un));
	saved = errno;
	if (rc == 0 || saved == EAGAIN)
	{
		struct ucred cred;
		socklen_t cl = sizeof(cred);

		/* Connected: SO_PEERCRED names the process that called listen(). */
		if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.pid > 0)
			snprintf(err, errlen, "could not listen on Unix socket \"%s\": process %d is listening on it "
					 "(another pgcarrier, or PostgreSQL?)", path, (int) cred.pid);
		else
			snprintf(err, errlen, "could not listen on Unix socket \"%s\": another process is listening on it", path);
		close(fd);
		return -1;
	}
	close(fd);
	if (saved != ECONNREFUSED)
	{
		snprintf(err, errlen, "could not check Unix socket \"%s\": %s", path, strerror(saved));
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT)
	{
		snprintf(err, errlen, "could not remove the dead Unix socket \"%s\": %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Take the lock file next to the socket (as PostgreSQL does: pid first, then
 * the config file, start time, port and directory), so that neither a second
 * pgcarrier nor a PostgreSQL server replaces a live socket; then claim the
 * socket path itself.
 */
static int
unix_lock(pgc_engine *e, const pgc_config *cfg, const char *dir, int port, char *err, size_t errlen)
{
	char text[PATH_MAX + 320], why[PATH_MAX + 200];
	pid_t owner;

	if ((size_t) snprintf(e->unix_lock_path, sizeof(e->unix_lock_path), "%s%s", e->unix_path, LOCK_SUFFIX) >=
		sizeof(e->unix_lock_path))
	{
		snprintf(err, errlen, "unix_socket_dir \"%s\" is too long", dir);
		return -1;
	}
	snprintf(text, sizeof(text), "%s\n%ld\n%d\n%s\n", cfg->path ? cfg->path : "", (long) time(NULL), port, dir);
	if (pgc_lockfile_create(e->unix_lock_path, UNIX_LOCK_MODE, text, &owner, why, sizeof(why)) < 0)
	{
		snprintf(err, errlen, "could not create lock file for Unix socket \"%s\": %s%s", e->unix_path, why,
				 owner > 0 ? "; is another pgcarrier, or PostgreSQL, using this socket?" : "");
		return -1;
	}
	e->unix_lock_held = true;
	return unix_path_claim(e->unix_path, err, errlen);
}

/* The group unix_socket_group names, or -1 (unset or unknown: the load checks nothing, open_unix says). */
static gid_t
unix_socket_group_id(const pgc_config *cfg)
{
	struct group *g;

	if (cfg->unix_socket_group == NULL || cfg->unix_socket_group[0] == '\0')
		return (gid_t) -1;
	g = getgrnam(cfg->unix_socket_group);
	return g ? g->gr_gid : (gid_t) -1;
}

static int
open_unix(pgc_engine *e, const pgc_config *cfg, const char *dir, int port, char *err, size_t errlen)
{
	struct sockaddr_un un = {0};
	struct stat st;
	int fd;

	un.sun_family = AF_UNIX;
	if ((size_t) snprintf(un.sun_path, sizeof(un.sun_path), "%s/.s.PGSQL.%d", dir, port) >= sizeof(un.sun_path))
	{
		snprintf(err, errlen, "unix_socket_dir \"%s\" is too long", dir);
		return -1;
	}
	snprintf(e->unix_path, sizeof(e->unix_path), "%s", un.sun_path);
	if (cfg->unix_socket_group && cfg->unix_socket_group[0] && unix_socket_group_id(cfg) == (gid_t) -1)
	{
		snprintf(err, errlen, "unix_socket_group = %s: no such group", cfg->unix_socket_group);
		return -1;
	}
	if (unix_lock(e, cfg, dir, port, err, errlen) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		snprintf(err, errlen, "could not create Unix socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *) &un, sizeof(un)) < 0 || listen(fd, cfg->listen_backlog) < 0)
	{
		snprintf(err, errlen, "could not listen on Unix socket \"%s\": %s", un.sun_path, strerror(errno));
		close(fd);
		return -1;
	}
	/* Remember which file we made: at exit only that one is removed. */
	if (stat(un.sun_path, &st) == 0)
	{
		e->unix_dev = st.st_dev;
		e->unix_ino = st.st_ino;
	}
	/* unix_socket_mode and unix_socket_group: who may connect, besides the HBA file. */
	chmod(un.sun_path, (mode_t) cfg->unix_socket_mode);
	if (unix_socket_group_id(cfg) != (gid_t) -1 && chown(un.sun_path, (uid_t) -1, unix_socket_group_id(cfg)) < 0)
	{
		snprintf(err, errlen, "could not give Unix socket \"%s\" to group \"%s\": %s", un.sun_path,
				 cfg->unix_socket_group, strerror(errno));
		close(fd);
		return -1;
	}
	e->unix_fd = fd;
	for (int i = 0; i < e->n_workers; i++)
		add_listen_fd(&e->workers[i], fd);
	return 0;
}

static int
open_listeners(pgc_engine *e, const pgc_config *cfg, char *err, size_t errlen)
{
	/* The options its TCP listeners get (tcp_socket, pgc_netopt_listener), which clients inherit. */
	e->listener_cfg = pgc_engine_config();
	if (cfg->listen_addr && cfg->listen_addr[0])
	{
		char *list = strdup(cfg->listen_addr);
		char *save = NULL;

		for (char *h = strtok_r(list, ", ", &save); h; h = strtok_r(NULL, ", ", &save))
		{
			if (open_tcp(e, h, cfg->listen_port, err, errlen) < 0)
			{
				free(list);
				return -1;
			}
		}
		free(list);
	}
	if (cfg->unix_socket_dir && cfg->unix_socket_dir[0] &&
		open_unix(e, cfg, cfg->unix_socket_dir, cfg->listen_port, err, errlen) < 0)
		return -1;
	if (e->workers[0].n_listen == 0)
	{
		snprintf(err, errlen, "nothing to listen on: set listen_addr or unix_socket_dir");
		return -1;
	}
	return 0;
}

static void *
worker_thread(void *arg)
{
	void *r = pgc_worker_main(arg);

	atomic_fetch_sub(&workers_running, 1);
	return r;
}

/* Set up worker w's event loop and admission state (no thread yet). */
/*
 * The backend asked for: PGCARRIER_IO_BACKEND when set (so that a whole
 * test run can choose), else io_backend. -1 with err when the variable
 * names none.
 */
static int
io_backend_wanted(const pgc_config *cfg, char *err, size_t errlen)
{
	const char *env = getenv("PGCARRIER_IO_BACKEND");
	int b;

	if (env == NULL || env[0] == '\0')
		return cfg->io_backend;
	if ((b = pgc_io_backend_parse(env)) < 0)
		snprintf(err, errlen, "invalid PGCARRIER_IO_BACKEND \"%s\": expected epoll, io_uring or auto", env);
	return b;
}

/*
 * A poller of the backend wanted. When io_uring cannot be had (no kernel
 * support, io_uring_disabled, a seccomp filter that refuses it), every
 * worker falls back to epoll: *wanted becomes epoll, so the first worker's
 * failure is the only one logged.
 */
static pgc_poller *
poller_open(int *wanted, char *err, size_t errlen)
{
	pgc_poller *p;
	char why[200];

	if (*wanted == PGC_IO_EPOLL)
		return pgc_poller_create(PGC_IO_EPOLL, err, errlen);
	if ((p = pgc_poller_create(PGC_IO_URING, why, sizeof(why))) != NULL)
		return p;
	pgc_log(*wanted == PGC_IO_AUTO ? PGC_LOG : PGC_WARNING, "io_backend = %s: io_uring is unavailable (%s), using epoll",
			pgc_io_backend_name(*wanted), why);
	*wanted = PGC_IO_EPOLL;
	return pgc_poller_create(PGC_IO_EPOLL, err, errlen);
}

static int
worker_init(pgc_engine *e, pgc_worker *w, int id, int *io_backend, char *err, size_t errlen)
{
	char why[200];

	w->kind = PGC_KIND_WAKEUP;
	w->listener_kind = PGC_KIND_LISTENER;
	w->id = id;
	w->engine = e;
	w->spare_fd = -1;
	pgc_list_init(&w->clients);
	pgc_list_init(&w->servers);
	pgc_list_init(&w->cancels);
	pthread_mutex_init(&w->inbox_lock, NULL);
	w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wakefd < 0)
	{
		snprintf(err, errlen, "could not create event loop: %s", strerror(errno));
		return -1;
	}
	if ((w->poller = poller_open(io_backend, why, sizeof(why))) == NULL)
	{
		snprintf(err, errlen, "could not create event loop: %s", why);
		return -1;
	}
	pgc_worker_watch(w, w->wakefd, w, EPOLLIN);
	return pgc_accept_worker_init(w, err, errlen);
}

int
pgc_engine_open(pgc_config *cfg, char *err, size_t errlen)
{
	pgc_engine *e = calloc(1, sizeof(*e));
	int n = cfg->workers > 0 ? cfg->workers : (int) sysconf(_SC_NPROCESSORS_ONLN);
	int io_backend;

	if (e == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (n < 1)
		n = 1;
	atomic_init(&e->cfg, cfg);
	pthread_mutex_init(&e->cfg_lock, NULL);
	atomic_init(&e->next_pid, 1000 + (unsigned) (getpid() % 1000) * 1000);
	e->unix_fd = -1;
	e->n_workers = n;
	e->workers = calloc((size_t) n, sizeof(pgc_worker));
	pgc_the_engine = e;
	if (e->workers == NULL || pgc_accept_init(e, err, errlen) < 0)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((io_backend = io_backend_wanted(cfg, err, errlen)) < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (worker_init(e, &e->workers[i], i, &io_backend, err, errlen) < 0)
			return -1;
	if (pgc_stats_init(e) < 0)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* The metrics port first: a start that fails on it has accepted no client. */
	if (pgc_metrics_open(e, cfg, err, errlen) < 0 || open_listeners(e, cfg, err, errlen) < 0)
		return -1;
	for (int i = 0; i < n; i++)
	{
		pgc_worker *w = &e->workers[i];

		for (int j = 0; j < w->n_listen; j++)
			pgc_worker_watch(w, w->listen_fds[j], &w->listener_kind,
							 EPOLLIN | (w->listen_fds[j] == e->unix_fd ? EPOLLEXCLUSIVE : 0));
	}
	pgc_accept_check_fd_limit(cfg, n);
	return 0;
}

int
pgc_engine_run(char *err, size_t errlen)
{
	pgc_engine *e = pgc_the_engine;
	const pgc_config *cfg = pgc_engine_config();
	int n = e->n_workers;

	if (pgc_authq_start(err, errlen) < 0)
		return -1;
	atomic_store(&workers_running, n);
	for (int i = 0; i < n; i++)
	{
		if (pthread_create(&e->workers[i].thread, NULL, worker_thread, &e->workers[i]) != 0)
		{
			snprintf(err, errlen, "could not start worker thread");
			return -1;
		}
	}
	pgc_log(PGC_LOG, "pgcarrier started: %d workers, port %d, pool_mode %s, io_backend %s", n, cfg->listen_port,
			pgc_pool_mode_name(cfg->pool_mode), pgc_io_backend_name(pgc_poller_backend(e->workers[0].poller)));
	return pgc_metrics_start(err, errlen);
}

int
pgc_engine_start(pgc_config *cfg, char *err, size_t errlen)
{
	if (pgc_engine_open(cfg, err, errlen) < 0)
		return -1;
	return pgc_engine_run(err, errlen);
}

int
pgc_engine_give_files(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	pgc_engine *e = pgc_the_engine;
	const char *paths[2] = {e->unix_path, e->unix_lock_held ? e->unix_lock_path : ""};

	gid_t		sock_gid = unix_socket_group_id(pgc_engine_config());

	for (int i = 0; i < 2; i++)
		if (paths[i][0] && lchown(paths[i], uid, i == 0 && sock_gid != (gid_t) -1 ? sock_gid : gid) < 0)
		{
			snprintf(err, errlen, "could not change the owner of \"%s\": %s", paths[i], strerror(errno));
			return -1;
		}
	return 0;
}

void
pgc_engine_touch_files(void)
{
	pgc_engine *e = pgc_the_engine;

	if (e && e->unix_lock_held)
		(void) utime(e->unix_lock_path, NULL);
}

void
pgc_engine_defaults_changed(void)
{
	pgc_control_reconnect_all(pgc_the_engine, "the supervisor says role or database defaults changed "
							  "(ALTER ROLE/DATABASE ... SET)");
}

void
pgc_engine_reload(pgc_config *cfg)
{
	pgc_engine *e = pgc_the_engine;
	pgc_config **old = realloc(e->old_cfgs, sizeof(*old) * (size_t) (e->n_old_cfgs + 1));

	if (old == NULL)
		return;
	e->old_cfgs = old;
	pgc_reload_prepare(cfg);    /* the admin console's SET values, on top of the file */
	pthread_mutex_lock(&e->cfg_lock);
	/* Workers may still be reading the old one: it is freed at exit, not now. */
	e->old_cfgs[e->n_old_cfgs++] = (pgc_config *) atomic_load(&e->cfg);
	e->generation++;
	atomic_store(&e->cfg, cfg);
	pthread_mutex_unlock(&e->cfg_lock);
	pgc_pool_reconfigure(e);
	pgc_log(PGC_LOG, "configuration reloaded from %s", cfg->path ? cfg->path : "?");
	pgc_accept_check_fd_limit(cfg, e->n_workers);
	pgc_reload_finish(cfg);
}

void
pgc_engine_wake_all(pgc_engine *e)
{
	for (int i = 0; i < e->n_workers; i++)
	{
		uint64_t one = 1;

		if (write(e->workers[i].wakefd, &one, sizeof(one)) < 0)
			(void) errno;
	}
}

void
pgc_engine_shutdown(void)
{
	atomic_store(&pgc_the_engine->shutting_down, true);
	pgc_authq_shutdown();       /* clients waiting for auth_query leave now */
	for (int i = 0; i < pgc_the_engine->n_workers; i++)
	{
		uint64_t one = 1;

		if (write(pgc_the_engine->workers[i].wakefd, &one, sizeof(one)) < 0)
			(void) errno;
	}
}

bool
pgc_engine_running(void)
{
	return atomic_load(&workers_running) > 0;
}

/* The Unix socket file at e->unix_path is the one we bound (not one made since by someone else). */
static bool
unix_socket_ours(const pgc_engine *e)
{
	struct stat st;

	return e->unix_ino != 0 && lstat(e->unix_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		st.st_dev == e->unix_dev && st.st_ino == e->unix_ino;
}

void
pgc_engine_unlink_socket(void)
{
	pgc_engine *e = pgc_the_engine;

	if (e == NULL)
		return;
	/* The socket first, its lock file last: the lock protects the socket until it is gone. */
	if (e->unix_path[0] && unix_socket_ours(e))
		unlink(e->unix_path);
	if (e->unix_lock_held)
		pgc_lockfile_remove(e->unix_lock_path);
	e->unix_lock_held = false;
	e->unix_ino = 0;
}

void
pgc_engine_stop_listening_now(void)
{
	pgc_engine *e = pgc_the_engine;

	if (e == NULL)
		return;
	for (int i = 0; i < e->n_workers; i++)
		for (int j = 0; j < e->workers[i].n_listen; j++)
			(void) shutdown(e->workers[i].listen_fds[j], SHUT_RDWR);
}

void
pgc_engine_free(void)
{
	pgc_engine *e = pgc_the_engine;

	if (e == NULL)
		return;
	pgc_log(PGC_LOG, "stats: %lu clients pinned to a server connection by the session-state guard",
			(unsigned long) atomic_load(&e->pins_total));
	for (int i = 0; i < e->n_workers; i++)
		pthread_join(e->workers[i].thread, NULL);
	/* After the workers: none can announce a census to it any more. */
	pgc_metrics_stop();
	pgc_authq_stop();           /* no client waits for it any more */
	pgc_engine_unlink_socket();
	if (e->unix_fd >= 0)
		close(e->unix_fd);
	pgc_pool_free_all(e);
	pgc_stats_free(e);
	for (int i = 0; i < e->n_workers; i++)
	{
		pgc_worker *w = &e->workers[i];

		while (w->free_bufs)
		{
			pgc_iobuf *b = w->free_bufs;

			w->free_bufs = b->next_free;
			pgc_iobuf_free(b);
		}
		pgc_shared_params_worker_free(w);
		pgc_poller_destroy(w->poller);
		close(w->wakefd);
		pgc_accept_worker_free(w);
		free(w->listen_fds);
		pthread_mutex_destroy(&w->inbox_lock);
	}
	free(e->workers);
	pgc_accept_free(e);
	for (int i = 0; i < e->n_old_cfgs; i++)
		pgc_config_free(e->old_cfgs[i]);
	free(e->old_cfgs);
	pgc_config_free((pgc_config *) atomic_load(&e->cfg));
	pthread_mutex_destroy(&e->cfg_lock);
	free(e);
	pgc_the_engine = NULL;
}
