/*
 * supervisor.c - the pgcarrier supervisor, a background worker that runs
 * the pgcarrier daemon as its own child process.
 *
 *  - It writes the daemon's configuration, $PGDATA/pgcarrier.ini (mode
 *    0600, replaced atomically), from the pgcarrier.* settings and from the
 *    server's own: clients are checked against the server's hba_file, role
 *    secrets come from pg_authid (auth_query, run as pgcarrier.auth_user
 *    over the server's Unix socket), and server connections go to the
 *    server's Unix socket and port.
 *  - It forks and execs the installed daemon: `pgcarrier -c pgcarrier.ini
 *    --parent-fd=3`, where descriptor 3 is the read end of a pipe whose
 *    write end only the supervisor holds: when the supervisor dies, however
 *    it dies, the daemon sees the hang-up and exits within a fraction of a
 *    second (and PR_SET_PDEATHSIG sends it SIGTERM as well). The daemon is
 *    the postmaster's grandchild: its crash is no crash of a server process,
 *    and never puts the server into crash recovery.
 *  - A daemon that exits is started again after 1 s, then 2, 4, ... up to
 *    30 s between attempts; a daemon that ran for a minute starts the
 *    count again at 1 s. A missing program, or one that cannot start (its
 *    port in use), is said in the server log at each attempt.
 *  - SIGHUP (pg_reload_conf()): the settings are read again, the file is
 *    rewritten and the daemon gets SIGHUP (it reloads the file and the
 *    hba_file without dropping clients). pgcarrier.enabled = off stops it
 *    gracefully (SIGINT).
 *  - Smart shutdown: the postmaster waits for its client backends, among
 *    them the pooler's server connections. The supervisor sees the
 *    postmaster's "stopping" status in postmaster.pid and stops the daemon
 *    gracefully (SIGINT: running transactions finish, then every client is
 *    disconnected), so that a smart shutdown completes.
 *  - Fast shutdown (SIGTERM to the supervisor): the daemon gets SIGTERM and
 *    exits at once; after 2 s it is killed. Immediate shutdown (SIGQUIT):
 *    the supervisor exits at once, and the daemon follows it (the pipe).
 */
#include "postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "defaults.h"
#include "pgcarrier.h"
#include "report.h"

#define CONFIG_NAME		"pgcarrier.ini"
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	30000
/* A daemon that ran this long had started fine: the next attempt waits BACKOFF_MIN_MS again. */
#define RAN_OK_MS		60000
/* After SIGTERM, the daemon is killed if it has not exited in this time. */
#define STOP_WAIT_MS	2000

/* The pgcarrier daemon's read end of the pipe, in the child. */
#define CHILD_PARENT_FD 3

static volatile sig_atomic_t got_sigterm = false;
static volatile sig_atomic_t got_sigchld = false;

static pid_t daemon_pid = 0;
static int	daemon_pipe = -1;		/* our (write) end */
static TimestampTz daemon_started;
static bool daemon_stopping = false;	/* SIGINT sent: it stops gracefully, do not restart */
static int	backoff = BACKOFF_MIN_MS;	/* wait before the next attempt after a failure */
static TimestampTz next_start = 0;	/* no attempt before this time */

/* An attempt failed, or the daemon exited: the next one waits, longer each time. */
static void
back_off(void)
{
	next_start = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), backoff);
	ereport(LOG, (errmsg("pgcarrier: starting the pooler again in %d s", backoff / 1000)));
	backoff = Min(backoff * 2, BACKOFF_MAX_MS);
}

static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
handle_sigchld(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigchld = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/* ----------------------------------------------------------- the file -- */

/* A [pgcarrier] value in double quotes (a quote inside is doubled). */
static void
append_quoted(StringInfo buf, const char *key, const char *val)
{
	appendStringInfo(buf, "%s = \"", key);
	for (const char *p = val ? val : ""; *p; p++)
	{
		if (*p == '"')
			appendStringInfoChar(buf, '"');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoString(buf, "\"\n");
}

/* A [databases] value: key='...' with ' and \ escaped. */
static void
append_conn_value(StringInfo buf, const char *key, const char *val)
{
	appendStringInfo(buf, " %s='", key);
	for (const char *p = val; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

/* The first of the server's unix_socket_directories, or NULL. */
static char *
server_socket_dir(void)
{
	char	   *raw;
	List	   *dirs;
	char	   *first = NULL;

	if (Unix_socket_directories == NULL || Unix_socket_directories[0] == '\0')
		return NULL;
	raw = pstrdup(Unix_socket_directories);
	if (SplitDirectoriesString(raw, ',', &dirs) && dirs != NIL)
		first = pstrdup((char *) linitial(dirs));
	return first;
}

/*
 * Where backend logins go (pgcarrier.server_host, else automatic). By
 * default over TCP to a loopback address the server listens on: then the
 * server's `host ... 127.0.0.1/32` lines decide the pooler's backend
 * logins, and with Debian's default pg_hba.conf (scram-sha-256 there, peer
 * on `local` lines, which would refuse every role but the daemon's own OS
 * user) the client's SCRAM keys log in. A server without TCP: its socket.
 */
static const char *
backend_host(const char *sockdir)
{
	char	   *raw;
	List	   *addrs;
	ListCell   *lc;
	const char *v4 = NULL,
			   *v6 = NULL,
			   *first = NULL;

	if (pgc_set.server_host[0])
		return pgc_set.server_host;
	if (ListenAddresses && ListenAddresses[0])
	{
		raw = pstrdup(ListenAddresses);
		if (SplitGUCList(raw, ',', &addrs))
		{
			foreach(lc, addrs)
			{
				const char *a = (const char *) lfirst(lc);

				if (strcmp(a, "*") == 0 || strcmp(a, "0.0.0.0") == 0 || strcmp(a, "localhost") == 0 ||
					strcmp(a, "127.0.0.1") == 0)
					v4 = "127.0.0.1";
				else if (strcmp(a, "::") == 0 || strcmp(a, "::1") == 0)
					v6 = "::1";
				else if (first == NULL)
					first = pstrdup(a);
			}
		}
		if (v4 || v6 || first)
			return v4 ? v4 : v6 ? v6 : first;
	}
	return sockdir ? sockdir : "localhost";
}

/* The account the server runs as: Debian's and initdb's default name of the bootstrap superuser. */
static const char *
server_os_user(void)
{
	struct passwd *pw = getpwuid(geteuid());

	return pw ? pstrdup(pw->pw_name) : "postgres";
}

static const char *const pool_mode_names[] = {"session", "transaction", "statement"};

/*
 * Secrets for the pooler's client authentication: as PostgreSQL's own
 * password check, a role that may not log in has none, and a password
 * past its VALID UNTIL is no password (both fail as a wrong password).
 */
#define AUTH_QUERY \
	"SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END " \
	"FROM pg_catalog.pg_authid WHERE rolname = $1 AND rolcanlogin"

/*
 * The server's TLS files (libpq/libpq.h declares them, but includes
 * libpq-be.h, which needs the GSSAPI headers: a build dependency for three
 * names).
 */
extern PGDLLIMPORT char *ssl_cert_file;
extern PGDLLIMPORT char *ssl_key_file;
extern PGDLLIMPORT char *ssl_ca_file;

/* A file setting of the server: relative names are relative to the data directory. */
static const char *
server_file(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return NULL;
	if (is_absolute_path(name))
		return name;
	return psprintf("%s/%s", DataDir, name);
}

/*
 * TLS with clients: pgcarrier.ssl_* files, else the server's own when
 * ssl = on. "prefer": TLS for the clients that ask, as the server does;
 * hostssl/hostnossl lines of pg_hba.conf then decide, as for the server.
 */
static void
append_tls(StringInfo b)
{
	const char *cert = pgc_set.ssl_cert_file[0] ? pgc_set.ssl_cert_file : EnableSSL ? server_file(ssl_cert_file) : NULL;
	const char *key = pgc_set.ssl_key_file[0] ? pgc_set.ssl_key_file : EnableSSL ? server_file(ssl_key_file) : NULL;
	const char *ca = pgc_set.ssl_ca_file[0] ? pgc_set.ssl_ca_file : server_file(ssl_ca_file);
	static const char *const modes[] = {"disable", "prefer", "require"};

	appendStringInfo(b, "server_tls_sslmode = %s\n", modes[pgc_set.server_sslmode]);
	if (cert == NULL || key == NULL)
	{
		appendStringInfoString(b, "client_tls_sslmode = disable\n");
		return;
	}
	appendStringInfoString(b, "client_tls_sslmode = prefer\n");
	append_quoted(b, "client_tls_cert_file", cert);
	append_quoted(b, "client_tls_key_file", key);
	if (ca)
		append_quoted(b, "client_tls_ca_file", ca);
}

/* The [databases] entry auth_query runs on: the database postgres, on the Unix socket. */
#define AUTH_DB_ENTRY "pgcarrier_auth"

/* The directory of the pooler's Unix socket, or NULL when it has none (pgcarrier.h). */
char *
pgc_pooler_socket_dir(void)
{
	return pgc_set.unix_socket_directories[0] ? pstrdup(pgc_set.unix_socket_directories) : server_socket_dir();
}

static char *
config_text(void)
{
	StringInfoData b;
	char	   *sockdir = server_socket_dir();
	const char *listen = pgc_set.listen_addresses[0] ? pgc_set.listen_addresses : ListenAddresses;
	const char *own_dir = pgc_set.unix_socket_directories[0] ? pgc_set.unix_socket_directories : sockdir;
	const char *auth_user = pgc_set.auth_user[0] ? pgc_set.auth_user : server_os_user();
	const char *server_host = backend_host(sockdir);
	/* auth_query runs as auth_user on the Unix socket (peer or trust for the server's own account) */
	const char *auth_host = sockdir ? sockdir : server_host;

	initStringInfo(&b);
	appendStringInfoString(&b,
						   "; Written by the pgcarrier extension's supervisor from the pgcarrier.* settings\n"
						   "; of postgresql.conf, at each start of the pooler and each reload: do not edit.\n"
						   "[pgcarrier]\n");
	append_quoted(&b, "listen_addr", listen ? listen : "");
	appendStringInfo(&b, "listen_port = %d\n", pgc_set.port);
	append_quoted(&b, "unix_socket_dir", own_dir ? own_dir : "");
	appendStringInfo(&b, "workers = %d\n", pgc_set.workers);
	appendStringInfo(&b, "pool_mode = %s\n", pool_mode_names[pgc_set.pool_mode]);
	appendStringInfo(&b, "default_pool_size = %d\n", pgc_set.default_pool_size);
	appendStringInfo(&b, "min_pool_size = %d\n", pgc_set.min_pool_size);
	appendStringInfo(&b, "reserve_pool_size = %d\n", pgc_set.reserve_pool_size);
	appendStringInfo(&b, "max_client_conn = %d\n", pgc_set.max_client_conn);
	appendStringInfo(&b, "query_wait_timeout = %dms\n", pgc_set.query_wait_timeout);
	appendStringInfo(&b, "server_idle_timeout = %dms\n", pgc_set.server_idle_timeout);
	appendStringInfo(&b, "server_lifetime = %dms\n", pgc_set.server_lifetime);
	appendStringInfo(&b, "idle_transaction_timeout = %dms\n", pgc_set.idle_transaction_timeout);
	appendStringInfo(&b, "max_prepared_statements = %d\n", pgc_set.max_prepared_statements);
	appendStringInfo(&b, "server_pipeline_depth = %d\n", pgc_set.server_pipeline_depth);
	appendStringInfo(&b, "server_pipeline_max_wait = %dms\n", pgc_set.server_pipeline_max_wait);
	appendStringInfo(&b, "session_pinning = %s\n", pgc_set.session_pinning == PGC_EXT_PIN_ERROR ? "error" : "pin");
	appendStringInfo(&b, "stats_listen_port = %d\n", pgc_set.stats_listen_port);
	appendStringInfo(&b, "log_connections = %d\n", pgc_set.log_connections ? 1 : 0);
	appendStringInfo(&b, "log_disconnections = %d\n", pgc_set.log_connections ? 1 : 0);
	append_tls(&b);
	/* the backends report their own session state (report.c), unless pgcarrier.session_report = off */
	appendStringInfo(&b, "server_session_report = %d\n", pgc_session_report ? 1 : 0);
	/* the SQL interface (sqlapi.c): backends, our own OS user, reach the console on the Unix socket */
	appendStringInfoString(&b, "admin_peer_same_uid = 1\n");
	/* the server's own rules and secrets */
	appendStringInfoString(&b, "auth_type = hba\n");
	append_quoted(&b, "auth_hba_file", HbaFileName);
	append_quoted(&b, "auth_user", auth_user);
	append_quoted(&b, "auth_query", AUTH_QUERY);
	append_quoted(&b, "auth_dbname", AUTH_DB_ENTRY);
	appendStringInfo(&b, "auth_query_cache_lifetime = %dms\n", pgc_set.auth_query_cache_lifetime);
	appendStringInfoString(&b, "\n[databases]\n");
	appendStringInfoString(&b, AUTH_DB_ENTRY " =");
	append_conn_value(&b, "host", auth_host);
	appendStringInfo(&b, " port=%d dbname=postgres auth_only=1\n", PostPortNumber);
	if (pgc_set.databases[0] == '\0')
	{
		appendStringInfoString(&b, "* =");
		append_conn_value(&b, "host", server_host);
		appendStringInfo(&b, " port=%d\n", PostPortNumber);
	}
	else
	{
		char	   *raw = pstrdup(pgc_set.databases);
		List	   *names;
		ListCell   *lc;

		/* checked by the setting's check hook */
		(void) SplitIdentifierString(raw, ',', &names);
		foreach(lc, names)
		{
			const char *n = (const char *) lfirst(lc);

			appendStringInfo(&b, "%s =", n);
			append_conn_value(&b, "host", server_host);
			appendStringInfo(&b, " port=%d", PostPortNumber);
			append_conn_value(&b, "dbname", n);
			appendStringInfoChar(&b, '\n');
		}
	}
	return b.data;
}

static char *
config_path(void)
{
	return psprintf("%s/%s", DataDir, CONFIG_NAME);
}

/* Write the file (atomically, mode 0600). false, with a LOG message, on failure. */
static bool write_config_in(void);

/* In a memory context of its own, emptied after each write: reloads do not grow the worker. */
static bool
write_config(void)
{
	static MemoryContext cxt = NULL;
	MemoryContext old;
	bool		ok;

	if (cxt == NULL)
		cxt = AllocSetContextCreate(TopMemoryContext, "pgcarrier config", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	ok = write_config_in();
	MemoryContextSwitchTo(old);
	MemoryContextReset(cxt);
	return ok;
}

static bool
write_config_in(void)
{
	char	   *path = config_path();
	char	   *tmp = psprintf("%s.tmp", path);
	char	   *text = config_text();
	size_t		len = strlen(text);
	int			fd;
	bool		ok = false;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, S_IRUSR | S_IWUSR);
	if (fd < 0)
		ereport(LOG, (errcode_for_file_access(),
					  errmsg("pgcarrier: could not create file \"%s\": %m", tmp)));
	else
	{
		if (fchmod(fd, S_IRUSR | S_IWUSR) == 0 && write(fd, text, len) == (ssize_t) len)
			ok = true;
		else
			ereport(LOG, (errcode_for_file_access(),
						  errmsg("pgcarrier: could not write file \"%s\": %m", tmp)));
		if (close(fd) != 0)
			ok = false;
		if (ok && rename(tmp, path) != 0)
		{
			ereport(LOG, (errcode_for_file_access(),
						  errmsg("pgcarrier: could not rename file \"%s\" to \"%s\": %m", tmp, path)));
			ok = false;
		}
		if (!ok)
			unlink(tmp);
	}
	pfree(text);
	pfree(tmp);
	pfree(path);
	return ok;
}

/* --------------------------------------------------------- the daemon -- */

static char *
daemon_program(void)
{
	char		dir[MAXPGPATH];

	if (pgc_set.daemon_path[0])
		return pstrdup(pgc_set.daemon_path);
	strlcpy(dir, my_exec_path, sizeof(dir));
	get_parent_directory(dir);
	return psprintf("%s/pgcarrier", dir);
}

/*
 * In the child, between fork and exec: only async-signal-safe calls, and
 * _exit(), never PostgreSQL's exit paths.
 */
static void
exec_daemon(const char *prog, const char *conf, int pipe_read, pid_t supervisor)
{
	char	   *argv[5];
	char		fdarg[32];
	sigset_t	none;
	int			devnull;

	/* The daemon dies with us, even if it missed the pipe (the pipe is the main way). */
	(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != supervisor)
		_exit(1);
	/* Default dispositions and no blocked signal: the daemon sets its own. */
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			(void) signal(s, SIG_DFL);
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);
	/*
	 * A process group of its own: the postmaster signals each child's
	 * whole group (SIGINT for a cancel, SIGQUIT, ...), and those are the
	 * supervisor's to act on, not the daemon's.
	 */
	(void) setsid();
	if (dup2(pipe_read, CHILD_PARENT_FD) < 0)
		_exit(1);
	devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0 && devnull != 0)
	{
		(void) dup2(devnull, 0);
		if (devnull != CHILD_PARENT_FD)
			close(devnull);
	}
	/* stdout and stderr go where the server logs */
	(void) dup2(2, 1);
	/* nothing else of the postmaster's (sockets, pipes, files) goes to the daemon */
	(void) close_range(CHILD_PARENT_FD + 1, ~0U, 0);
	snprintf(fdarg, sizeof(fdarg), "--parent-fd=%d", CHILD_PARENT_FD);
	argv[0] = (char *) prog;
	argv[1] = "-c";
	argv[2] = (char *) conf;
	argv[3] = fdarg;
	argv[4] = NULL;
	execv(prog, argv);
	{
		static const char msg[] = "pgcarrier supervisor: could not run the pooler's program\n";

		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(127);
	}
	_exit(127);
}

/* Start the daemon. false (with a LOG message) if it could not be started. */
static bool
start_daemon(void)
{
	char	   *prog = daemon_program();
	char	   *conf = config_path();
	char		refused_name[NAMEDATALEN * 2];
	int			fds[2];
	pid_t		pid;

	if (pgc_settings_refused(refused_name, sizeof(refused_name)))
	{
		ereport(LOG,
				(errmsg("pgcarrier: the pooler is not started: PostgreSQL refused the value of \"%s\" in postgresql.conf",
						refused_name)));
		return false;
	}
	if (access(prog, X_OK) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("pgcarrier: could not start the pooler: program \"%s\": %m", prog),
				 errhint("Install it with \"make install-extension\", or set pgcarrier.daemon_path.")));
		return false;
	}
	if (!write_config())
		return false;
	if (pipe2(fds, O_CLOEXEC) != 0)
	{
		ereport(LOG, (errmsg("pgcarrier: could not create a pipe: %m")));
		return false;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		ereport(LOG, (errmsg("pgcarrier: could not fork the pooler: %m")));
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0)
		exec_daemon(prog, conf, fds[0], getppid());
	close(fds[0]);
	daemon_pipe = fds[1];
	(void) fcntl(daemon_pipe, F_SETFL, O_NONBLOCK);
	daemon_pid = pid;
	daemon_started = GetCurrentTimestamp();
	daemon_stopping = false;
	ereport(LOG, (errmsg("pgcarrier: pooler started (pid %d) on port %d, configuration %s",
						 (int) pid, pgc_set.port, conf)));
	pfree(prog);
	pfree(conf);
	return true;
}

/* The daemon exited (status from waitpid): forget it. */
static void
daemon_exited(int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		ereport(LOG, (errmsg("pgcarrier: pooler (pid %d) exited", (int) daemon_pid)));
	else if (WIFEXITED(status))
		ereport(LOG, (errmsg("pgcarrier: pooler (pid %d) exited with exit code %d (its messages are above)",
							 (int) daemon_pid, WEXITSTATUS(status))));
	else if (WIFSIGNALED(status))
		ereport(LOG, (errmsg("pgcarrier: pooler (pid %d) was terminated by signal %d: %s",
							 (int) daemon_pid, WTERMSIG(status), pg_strsignal(WTERMSIG(status)))));
	if (TimestampDifferenceExceeds(daemon_started, GetCurrentTimestamp(), RAN_OK_MS))
		backoff = BACKOFF_MIN_MS;
	daemon_pid = 0;
	if (daemon_pipe >= 0)
		close(daemon_pipe);
	daemon_pipe = -1;
}

/* Reap whatever child exited. */
static void
reap(void)
{
	int			status;
	pid_t		pid;

	got_sigchld = false;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (pid == daemon_pid)
		{
			bool		asked = daemon_stopping;

			daemon_exited(status);
			if (!asked)
				back_off();
		}
}

/* SIGTERM, wait up to STOP_WAIT_MS, then SIGKILL. */
static void
stop_daemon_now(void)
{
	if (daemon_pid <= 0)
		return;
	kill(daemon_pid, SIGTERM);
	for (int waited = 0; daemon_pid > 0; waited += 10)
	{
		int			status;
		pid_t		pid = waitpid(daemon_pid, &status, WNOHANG);

		if (pid == daemon_pid || (pid < 0 && errno == ECHILD))
		{
			daemon_exited(pid == daemon_pid ? status : 0);
			break;
		}
		if (waited >= STOP_WAIT_MS)
		{
			kill(daemon_pid, SIGKILL);
			if (waitpid(daemon_pid, &status, 0) == daemon_pid)
				daemon_exited(status);
			else
				daemon_pid = 0;
			break;
		}
		pg_usleep(10 * 1000L);
	}
}

/* Graceful: the daemon lets running transactions finish, then exits. */
static void
stop_daemon_gracefully(const char *why)
{
	if (daemon_pid > 0 && !daemon_stopping)
	{
		ereport(LOG, (errmsg("pgcarrier: stopping the pooler (pid %d): %s", (int) daemon_pid, why)));
		kill(daemon_pid, SIGINT);
		daemon_stopping = true;
	}
}

static void
at_exit(int code, Datum arg)
{
	pgc_defaults_forget_supervisor();
	stop_daemon_now();
}

/*
 * The role or database defaults changed (defaults.h): one byte on the
 * pipe, which the daemon reads as "replace every server connection as it
 * becomes idle". The pipe does not block us: if it is full, the daemon has
 * that to read already.
 */
static void
tell_daemon_defaults_changed(void)
{
	static const char byte = PGC_PARENT_DEFAULTS_CHANGED;

	if (daemon_pid <= 0 || daemon_stopping || daemon_pipe < 0)
		return;
	if (write(daemon_pipe, &byte, 1) < 0 && errno != EAGAIN)
		ereport(LOG, (errmsg("pgcarrier: could not tell the pooler that role or database defaults changed: %m")));
}

/* Whether postmaster.pid says the server is stopping (a smart shutdown was asked for). */
static bool
server_stopping(void)
{
	char		buf[1024];
	char	   *path = psprintf("%s/postmaster.pid", DataDir);
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t		n;
	char	   *line;
	int			lineno = 1;

	pfree(path);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* line 8 (LOCK_FILE_LINE_PM_STATUS) */
	for (line = buf; line && lineno < 8; lineno++)
	{
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return line && strncmp(line, "stopping", 8) == 0;
}

/* ------------------------------------------------------------ the loop -- */

void
pgc_supervisor_main(Datum arg)
{
	bool		stopping = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, handle_sigterm);
	pqsignal(SIGCHLD, handle_sigchld);
	BackgroundWorkerUnblockSignals();
	on_proc_exit(at_exit, (Datum) 0);

	for (;;)
	{
		TimestampTz now;
		long		timeout = 1000;

		if (got_sigchld)
			reap();
		if (pgc_defaults_changed())
			tell_daemon_defaults_changed();
		if (got_sigterm)
		{
			stop_daemon_now();
			proc_exit(1);		/* the postmaster restarts us if the server is not stopping */
		}
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (!pgc_set.enabled)
				stop_daemon_gracefully("pgcarrier.enabled is off");
			else if (daemon_pid > 0 && !daemon_stopping && write_config())
				kill(daemon_pid, SIGHUP);
			else if (daemon_pid <= 0)
			{
				/* try at once with the new settings */
				next_start = 0;
				backoff = BACKOFF_MIN_MS;
			}
		}
		if (!stopping && server_stopping())
		{
			stopping = true;
			stop_daemon_gracefully("the server is shutting down");
		}

		now = GetCurrentTimestamp();
		if (daemon_pid <= 0 && pgc_set.enabled && !stopping && now >= next_start && !start_daemon())
			back_off();
		if (daemon_pid <= 0 && next_start > now)
			timeout = Min(timeout, (long) ((next_start - now) / 1000) + 1);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
