/*
 * main.c - the pgcarrier daemon: command line, daemonizing, signals.
 *
 * Signals are blocked in every thread and taken here, synchronously, with
 * sigtimedwait(): SIGHUP reloads, SIGINT stops gracefully, SIGTERM exits at
 * once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "log.h"

#define PGCARRIER_VERSION "0.1.0"

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

static int
daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0)
	{
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

static int
write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fprintf(f, "%d\n", (int) getpid());
	return fclose(f);
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
		printf("configuration file %s is valid\n", config_path);
		pgc_config_free(cfg);
		return 0;
	}
	if (pgc_log_open(cfg->logfile) < 0)
	{
		fprintf(stderr, "pgcarrier: could not open logfile \"%s\": %s\n", cfg->logfile, strerror(errno));
		pgc_config_free(cfg);
		return 1;
	}
	pgc_log_set_min_level(cfg->verbose ? PGC_DEBUG : PGC_LOG);
	if (daemon_mode && daemonize() < 0)
	{
		fprintf(stderr, "pgcarrier: could not daemonize: %s\n", strerror(errno));
		return 1;
	}
	if (cfg->pidfile && cfg->pidfile[0])
	{
		pidfile = strdup(cfg->pidfile);
		if (write_pidfile(pidfile) < 0)
		{
			pgc_log(PGC_FATAL, "could not write pidfile \"%s\": %s", pidfile, strerror(errno));
			return 1;
		}
	}
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (pgc_engine_start(cfg, err, sizeof(err)) < 0)
	{
		pgc_log(PGC_FATAL, "%s", err);
		if (!daemon_mode && !cfg->logfile)
			;                   /* already on stderr */
		else if (!daemon_mode)
			fprintf(stderr, "pgcarrier: %s\n", err);
		if (pidfile)
			unlink(pidfile);
		return 1;
	}

	for (;;)
	{
		struct timespec ts = {0, 200 * 1000 * 1000};
		int sig = sigtimedwait(&sigs, NULL, &ts);

		if (sig == SIGHUP)
		{
			const char *path = config_path;
			pgc_config *next = pgc_config_load(path, err, sizeof(err));

			if (next == NULL)
				pgc_log(PGC_WARNING, "configuration not reloaded, keeping the old one: %s", err);
			else
			{
				if (next->logfile && pgc_log_open(next->logfile) < 0)
					pgc_log(PGC_WARNING, "could not reopen logfile \"%s\"", next->logfile);
				pgc_log_set_min_level(next->verbose ? PGC_DEBUG : PGC_LOG);
				pgc_engine_reload(next);
			}
		}
		else if (sig == SIGINT)
		{
			pgc_log(PGC_LOG, "SIGINT: shutting down once running transactions are done");
			pgc_engine_shutdown();
		}
		else if (sig == SIGTERM)
		{
			pgc_log(PGC_LOG, "SIGTERM: exiting now");
			pgc_engine_unlink_socket();
			if (pidfile)
				unlink(pidfile);
			_exit(0);
		}
		if (!pgc_engine_running())
			break;
	}
	pgc_engine_free();
	pgc_log(PGC_LOG, "pgcarrier stopped");
	if (pidfile)
	{
		unlink(pidfile);
		free(pidfile);
	}
	pgc_log_close();
	return 0;
}
