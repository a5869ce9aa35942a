/*
 * main.c - the pgcarrier daemon: command line, daemonizing, signals.
 *
 * Signals are blocked in every thread and taken here, synchronously, with
 * sigtimedwait(): SIGHUP reloads, SIGINT stops gracefully, SIGTERM exits at
 * once.
 *
 * Start-up order: config; whom to run as (root is refused unless `user`
 * names another account); the background (-d); log, pidfile, listeners;
 * then root's privileges are dropped, before any thread runs; then the
 * workers. With -d the launching process waits until the daemon is ready,
 * so that a start that fails (a port or socket in use, a live pidfile) fails
 * on the command line with exit status 1.
 *
 * Under systemd (Type=notify, notify.h) it says READY=1 once the listeners
 * and workers are up, RELOADING=1 then READY=1 around a reload, and
 * STOPPING=1 when it begins to stop. Logging goes to the log file (or
 * stderr) and, with syslog = 1, to syslog as well.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "log.h"
#include "version.h"
#include "notify.h"

static void
usage(FILE *out)
{
	fprintf(out,
			"pgcarrier is a connection pooler for PostgreSQL.\n\n"
			"Usage:\n"
			"  pgcarrier [OPTION]... -c CONFIG_FILE\n\n"
			"Options:\n"
			"  -c, --config=FILE  configuration file (INI, PgBouncer-style sections)\n"
			"  -d, --daemon       run in the background (log to logfile, write pidfile)\n"
			"  -t, --check        load and check the configuration (auth, HBA, TLS files too), then exit\n"
			"      --parent-fd=N  exit at once when descriptor N (the read end of a pipe from the\n"
			"                     parent) reports hang-up, or when the parent dies\n"
			"  -V, --version      print the version and exit\n"
			"  -h, --help         print this help and exit\n\n"
			"Signals: SIGHUP reloads the configuration, SIGINT shuts down gracefully,\n"
			"SIGTERM exits at once.\n");
}

static void
raise_fd_limit(void)
{
	struct rlimit rl;

	/* Every client and server connection is a descriptor. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
	{
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ------------------------------------------------------------ background -- */

/* What the daemon writes to the launching process when it is ready. */
#define DAEMON_READY 'R'

/*
 * Go to the background. The launching process waits until the daemon says
 * it is ready, or dies (its stderr still goes to the terminal until then),
 * and exits 0 or 1 accordingly. Returns in the daemon, with the descriptor
 * to pass to daemon_ready(); -1 on failure.
 */
static int
daemon_start(void)
{
	int ready[2];
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
	{
		char said = 0;

		close(ready[1]);
		while (read(ready[0], &said, 1) < 0 && errno == EINTR)
			;
		_exit(said == DAEMON_READY ? 0 : 1);
	}
	close(ready[0]);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	return ready[1];
}

/* The daemon serves: let go of the terminal, and let the launching process exit 0. */
static void
daemon_ready(int ready_fd)
{
	char ok = DAEMON_READY;
	int fd = open("/dev/null", O_RDWR);

	if (fd >= 0)
	{
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (write(ready_fd, &ok, 1) != 1)
		(void) errno;           /* the launcher was killed: nobody to tell */
	close(ready_fd);
}

/* ---------------------------------------------------------------- parent -- */

/*
 * --parent-fd: the read end of a pipe whose write end only the parent holds
 * (the pgcarrier extension's supervisor). When the parent dies, for any
 * reason, the write end closes and the pipe reports hang-up: the daemon
 * exits as on SIGTERM, so that it never outlives its supervisor (nor holds
 * the pooler's port against the next one). PR_SET_PDEATHSIG is a second,
 * independent way: SIGTERM when the parent dies.
 */
static int parent_fd = -1;

static int
parent_watch_start(const char *arg)
{
	char *end;
	long fd;

	errno = 0;
	fd = strtol(arg, &end, 10);
	if (errno || *end != '\0' || fd < 0 || fd > INT_MAX || fcntl((int) fd, F_GETFD) < 0)
		return -1;
	parent_fd = (int) fd;
	/* No program the daemon might run gets it. */
	(void) fcntl(parent_fd, F_SETFD, FD_CLOEXEC);
	(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
	return 0;
}

/*
 * The byte the supervisor writes when role or database defaults changed
 * (src/extension/defaults.h, PGC_PARENT_DEFAULTS_CHANGED).
 */
#define PARENT_SAYS_DEFAULTS_CHANGED 'D'

/*
 * Whether the parent is gone: its end of the pipe is closed (or the pipe
 * broke). What it wrote is read on the way: the defaults changed.
 */
static bool
parent_gone(void)
{
	struct pollfd pfd = {.fd = parent_fd, .events = POLLIN};
	char buf[64];
	ssize_t n;
	bool changed = false;

	if (parent_fd < 0)
		return false;
	if (poll(&pfd, 1, 0) <= 0)
		return false;
	if (!(pfd.revents & POLLIN))
		return (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
	n = read(parent_fd, buf, sizeof(buf));
	for (ssize_t i = 0; i < n; i++)
		changed |= buf[i] == PARENT_SAYS_DEFAULTS_CHANGED;
	if (changed)
		pgc_engine_defaults_changed();
	/* EOF: gone. With bytes read, a hang-up after them is seen at the next call. */
	return n == 0;
}

/* --------------------------------------------------------------- pidfile -- */

#define PIDFILE_MODE 0644

/* Write our pid to path, unless it holds the pid of a running process. */
static int
pidfile_claim(const char *path, char *err, size_t errlen)
{
	char why[PATH_MAX + 200];
	pid_t owner;

	if (pgc_lockfile_create(path, PIDFILE_MODE, NULL, &owner, why, sizeof(why)) == 0)
		return 0;
	if (owner > 0)
		snprintf(err, errlen, "pidfile %s: is another pgcarrier running with this pidfile?", why);
	else
		snprintf(err, errlen, "could not write pidfile: %s", why);
	return -1;
}

/* ---------------------------------------------------------- who we run as -- */

/* The account to run as, from `user`. */
typedef struct run_as {
	char *name;                 /* the `user` setting, NULL if unset */
	bool switch_user;           /* we are root and become uid/gid */
	uid_t uid;
	gid_t gid;
} run_as;

/*
 * Decide whom to run as. Root is refused unless `user` names another
 * account (as PostgreSQL and PgBouncer refuse root); without root, `user`
 * may only name ourselves. 0, or -1 with a message.
 */
static int
resolve_run_as(const pgc_config *cfg, run_as *ra, char *err, size_t errlen)
{
	bool root = getuid() == 0 || geteuid() == 0;
	struct passwd *pw;

	memset(ra, 0, sizeof(*ra));
	if (cfg->user == NULL || cfg->user[0] == '\0')
	{
		if (!root)
			return 0;
		snprintf(err, errlen, "pgcarrier must not run as root: set \"user\" in %s to the account to run "
				 "as (pgcarrier drops root's privileges once its sockets and files are open)", cfg->path);
		return -1;
	}
	errno = 0;
	pw = getpwnam(cfg->user);
	if (pw == NULL)
	{
		snprintf(err, errlen, "%s: user = %s: %s", cfg->path, cfg->user, errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (pw->pw_uid == 0)
	{
		snprintf(err, errlen, "%s: user = %s: pgcarrier must not run as root", cfg->path, cfg->user);
		return -1;
	}
	if (!root && geteuid() != pw->pw_uid)
	{
		snprintf(err, errlen, "%s: user = %s: only root can become another user, and pgcarrier runs as uid %d",
				 cfg->path, cfg->user, (int) geteuid());
		return -1;
	}
	ra->name = strdup(cfg->user);
	ra->switch_user = root;
	ra->uid = pw->pw_uid;
	ra->gid = pw->pw_gid;
	return ra->name ? 0 : -1;
}

/* Give a file we created as root to the account we become, so that it can remove or reopen it. */
static int
give_file(const run_as *ra, const char *path, char *err, size_t errlen)
{
	if (path == NULL || path[0] == '\0' || chown(path, ra->uid, ra->gid) == 0)
		return 0;
	snprintf(err, errlen, "could not change the owner of \"%s\": %s", path, strerror(errno));
	return -1;
}

/* Root's privileges are gone for good: our ids are the account's, and root cannot be had back. */
static bool
privileges_dropped(const run_as *ra)
{
	return getuid() == ra->uid && geteuid() == ra->uid && getgid() == ra->gid && getegid() == ra->gid &&
		setuid(0) != 0 && setgid(0) != 0;
}

/*
 * Become ra's account, if we are root: hand it the files we made (the
 * socket and its lock file, the pidfile, a log file we created), then
 * setgid, initgroups, setuid, and check that it stuck. Before any thread
 * runs, so that all of them run as that account.
 */
static int
become_user(const run_as *ra, const char *pidfile, const char *new_logfile, char *err, size_t errlen)
{
	if (!ra->switch_user)
		return 0;
	if (pgc_engine_give_files(ra->uid, ra->gid, err, errlen) < 0 ||
		give_file(ra, pidfile, err, errlen) < 0 || give_file(ra, new_logfile, err, errlen) < 0)
		return -1;
	if (setgid(ra->gid) < 0 || initgroups(ra->name, ra->gid) < 0 || setuid(ra->uid) < 0)
	{
		snprintf(err, errlen, "could not become user \"%s\": %s", ra->name, strerror(errno));
		return -1;
	}
	if (!privileges_dropped(ra))
	{
		snprintf(err, errlen, "could not drop root's privileges for user \"%s\"", ra->name);
		return -1;
	}
	pgc_log(PGC_LOG, "running as user \"%s\" (uid %d, gid %d)", ra->name, (int) ra->uid, (int) ra->gid);
	return 0;
}

/* A reload cannot change whom we run as: say so rather than ignore it silently. */
static void
warn_unreloadable(const run_as *ra, const pgc_config *next)
{
	const char *want = next->user && next->user[0] ? next->user : NULL;

	if ((want == NULL) != (ra->name == NULL) || (want && strcmp(want, ra->name) != 0))
		pgc_log(PGC_WARNING, "a reload does not change \"user\": pgcarrier runs as uid %d until it is restarted",
				(int) geteuid());
}

/* The admin console's RELOAD and SET: reload on this thread, as for a SIGHUP. */
static void
console_asks_reload(void)
{
	kill(getpid(), SIGHUP);
}

/* ------------------------------------------------------------- warnings -- */

/* What the load said about keys it accepted but cannot act on (config.h): to the log. */
static void
log_config_warnings(const pgc_config *cfg)
{
	for (int i = 0; i < cfg->n_warnings; i++)
		pgc_log(PGC_WARNING, "%s", cfg->warnings[i]);
}

/* Logging settings of cfg: level and syslog. */
static void
apply_log_settings(const pgc_config *cfg)
{
	pgc_log_set_min_level(cfg->verbose ? PGC_DEBUG : PGC_LOG);
	pgc_log_syslog(cfg->syslog, cfg->syslog_ident, cfg->syslog_facility, cfg->syslog_socket);
}

/* ----------------------------------------------------------------- start -- */

/* Seconds between touches of the lock file (cleaners of /tmp remove files untouched for long). */
#define LOCK_TOUCH_INTERVAL 3600

static void
touch_files_now_and_then(void)
{
	static time_t last;
	time_t now = time(NULL);

	if (now - last >= LOCK_TOUCH_INTERVAL)
	{
		last = now;
		pgc_engine_touch_files();
	}
}

/* Whether path names no file yet (so that a log file opened there is ours to give away). */
static bool
file_is_new(const char *path)
{
	struct stat st;

	return path && path[0] && stat(path, &st) < 0 && errno == ENOENT;
}

/* Report a failure during start-up: to the log, and to stderr as well when the log is a file. */
static int
startup_failed(const pgc_config *cfg, const char *msg)
{
	pgc_log(PGC_FATAL, "%s", msg);
	if (cfg->logfile && cfg->logfile[0])
		fprintf(stderr, "pgcarrier: %s\n", msg);
	return 1;
}

/*
 * Open everything and start serving: pidfile, listeners, then whom we run
 * as, then the workers. On failure what was made is removed and the exit
 * status returned; 0 when running.
 */
static int
start_engine(pgc_config *cfg, const run_as *ra, const char *pidfile, const char *new_logfile)
{
	char err[PATH_MAX + 512];

	if (pidfile && pidfile_claim(pidfile, err, sizeof(err)) < 0)
		return startup_failed(cfg, err);
	raise_fd_limit();
	if (pgc_engine_open(cfg, err, sizeof(err)) < 0 ||
		become_user(ra, pidfile, new_logfile, err, sizeof(err)) < 0 ||
		pgc_engine_run(err, sizeof(err)) < 0)
	{
		startup_failed(cfg, err);
		pgc_engine_unlink_socket();
		if (pidfile)
			pgc_lockfile_remove(pidfile);
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"daemon", no_argument, NULL, 'd'},
		{"check", no_argument, NULL, 't'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{"parent-fd", required_argument, NULL, 'P'},
		{NULL, 0, NULL, 0}
	};
	const char *config_path = NULL;
	bool daemon_mode = false;
	bool check_only = false;
	char err[1024];
	pgc_config *cfg;
	sigset_t sigs;
	int opt;
	char *pidfile = NULL;
	char *new_logfile = NULL;
	int ready_fd = -1;
	run_as ra;

	while ((opt = getopt_long(argc, argv, "c:dtVh", longopts, NULL)) != -1)
	{
		switch (opt)
		{
			case 'c':
				config_path = optarg;
				break;
			case 'd':
				daemon_mode = true;
				break;
			case 't':
				check_only = true;
				break;
			case 'V':
				printf("pgcarrier %s\n", PGCARRIER_VERSION);
				return 0;
			case 'h':
				usage(stdout);
				return 0;
			case 'P':
				if (parent_watch_start(optarg) < 0)
				{
					fprintf(stderr, "pgcarrier: --parent-fd=%s: not an open descriptor\n", optarg);
					return 2;
				}
				break;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (config_path == NULL && optind < argc)
		config_path = argv[optind];
	if (config_path == NULL)
	{
		fprintf(stderr, "pgcarrier: no configuration file given (-c FILE)\n");
		usage(stderr);
		return 2;
	}
	cfg = pgc_config_load(config_path, err, sizeof(err));
	if (cfg == NULL)
	{
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* --check: everything a start would load has loaded; no log, pidfile or socket */
	if (check_only)
	{
		for (int i = 0; i < cfg->n_warnings; i++)
			fprintf(stderr, "warning: %s\n", cfg->warnings[i]);
		printf("configuration file %s is valid\n", config_path);
		pgc_config_free(cfg);
		return 0;
	}
	if (resolve_run_as(cfg, &ra, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "pgcarrier: %s\n", err);
		pgc_config_free(cfg);
		return 1;
	}
	if (daemon_mode && (ready_fd = daemon_start()) < 0)
	{
		fprintf(stderr, "pgcarrier: could not daemonize: %s\n", strerror(errno));
		return 1;
	}
	if (file_is_new(cfg->logfile))
		new_logfile = strdup(cfg->logfile);
	if (pgc_log_open(cfg->logfile) < 0)
	{
		fprintf(stderr, "pgcarrier: could not open logfile \"%s\": %s\n", cfg->logfile, strerror(errno));
		pgc_config_free(cfg);
		return 1;
	}
	apply_log_settings(cfg);
	log_config_warnings(cfg);
	if (cfg->pidfile && cfg->pidfile[0])
		pidfile = strdup(cfg->pidfile);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	pgc_engine_set_reload_hook(console_asks_reload);
	if (start_engine(cfg, &ra, pidfile, new_logfile) != 0)
	{
		free(ra.name);
		free(pidfile);
		free(new_logfile);
		return 1;
	}
	free(new_logfile);
	if (daemon_mode)
		daemon_ready(ready_fd);
	/* The listeners are open and the workers run: clients may come. */
	pgc_notify("READY=1");

	for (;;)
	{
		struct timespec ts = {0, 200 * 1000 * 1000};
		int sig = sigtimedwait(&sigs, NULL, &ts);

		touch_files_now_and_then();
		if (sig < 0 && parent_gone())
		{
			pgc_log(PGC_LOG, "the parent process (the supervisor) is gone: exiting now");
			sig = SIGTERM;
		}
		if (sig == SIGHUP)
		{
			const char *path = config_path;
			pgc_config *next;

			pgc_notify_reloading();
			next = pgc_config_load(path, err, sizeof(err));
			if (next == NULL)
			{
				pgc_log(PGC_WARNING, "configuration not reloaded, keeping the old one: %s", err);
				pgc_engine_reload_failed(err);
			}
			else
			{
				warn_unreloadable(&ra, next);
				if (next->logfile && pgc_log_open(next->logfile) < 0)
					pgc_log(PGC_WARNING, "could not reopen logfile \"%s\"", next->logfile);
				apply_log_settings(next);
				log_config_warnings(next);
				pgc_engine_reload(next);
			}
			pgc_notify("READY=1");
		}
		else if (sig == SIGINT)
		{
			pgc_log(PGC_LOG, "SIGINT: shutting down once running transactions are done");
			pgc_notify("STOPPING=1");
			pgc_engine_shutdown();
		}
		else if (sig == SIGTERM)
		{
			pgc_log(PGC_LOG, "SIGTERM: exiting now");
			pgc_notify("STOPPING=1");
			pgc_engine_stop_listening_now();
			pgc_engine_unlink_socket();
			if (pidfile)
				pgc_lockfile_remove(pidfile);
			_exit(0);
		}
		if (!pgc_engine_running())
			break;
	}
	pgc_engine_free();
	pgc_log(PGC_LOG, "pgcarrier stopped");
	if (pidfile)
	{
		pgc_lockfile_remove(pidfile);
		free(pidfile);
	}
	free(ra.name);
	pgc_log_close();
	return 0;
}
