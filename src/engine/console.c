/*
 * console.c - the admin console's protocol and commands; see console.h.
 * The SHOW result sets are show.c's.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "census.h"
#include "console.h"
#include "control.h"
#include "log.h"
#include "pshare.h"
#include "relay.h"
#include "reload.h"
#include "show.h"
#include "version.h"

/* A console message must fit in the client's input buffer to be read whole. */
#define CONSOLE_MAX_MESSAGE PGC_IOBUF_SIZE
/* Stop answering more commands while this much output waits for a slow client. */
#define CONSOLE_OUT_HIGH (1024 * 1024)
/* A RELOAD or SET the embedding program does not answer within this time fails. */
#define RELOAD_TIMEOUT 30.0
#define MAX_TOKENS 16
#define NAME_MAX_LEN 256

/* What a console client waits for before its next command. */
enum wait {
	WAIT_NONE = 0,
	WAIT_CENSUS,                  /* a SHOW's listing (census.h) */
	WAIT_PAUSE,                   /* PAUSE: no server connection left */
	WAIT_CLOSE,                   /* WAIT_CLOSE: no server with close_needed left (a census per tick) */
	WAIT_RELOAD                   /* RELOAD or SET: the embedding program reloaded */
};

typedef struct pgc_console {
	bool admin;                   /* admin_users: every command; else stats_users: SHOW only */
	bool trusted_peer;            /* admin_peer_same_uid: our own OS uid on the Unix socket */
	/* The Query being answered. */
	char *query;                  /* its text, NUL-terminated; NULL when none */
	size_t len, pos;              /* its length; where its next statement starts */
	bool any;                     /* it had a statement (else EmptyQueryResponse) */
	/* What the current statement waits for. */
	enum wait wait;
	int show;                     /* WAIT_CENSUS: which SHOW */
	pgc_census *census;
	char db[NAME_MAX_LEN];        /* WAIT_PAUSE / WAIT_CLOSE: the database, "" for all */
	const char *tag;              /* the command tag to send when the wait is over */
	uint64_t ticket;              /* WAIT_RELOAD */
	bool set;                     /* WAIT_RELOAD for SET (else RELOAD) */
	double since;
	/* The extended protocol is refused: its messages are dropped until Sync, as after an error. */
	bool skip_to_sync;
	uint32_t discard;             /* bytes of an over-long message still to drop */
} pgc_console;

/*
 * The pool of the console's clients: it never has a server, but what every
 * logged-in client goes through (cancel requests, KILL_CLIENT, hand-offs
 * through the inbox) finds a lock and a database counter in it. Never
 * paused, disabled or killed.
 */
static struct pgc_counter console_counter = {.name = "pgcarrier"};
static pgc_pool console_pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.dbname = "pgcarrier",
	.user = "",
	.client_user = "",
	.db_count = &console_counter,
	.user_count = &console_counter,
};

bool
pgc_console_waiting(const pgc_client *c)
{
	return c->console && c->console->wait != WAIT_NONE;
}

bool
pgc_console_db(const char *dbname)
{
	return strcmp(dbname, "pgcarrier") == 0 || strcmp(dbname, "pgbouncer") == 0;
}

pgc_pool *
pgc_console_attach(pgc_client *c)
{
	c->console = calloc(1, sizeof(pgc_console));
	return c->console ? &console_pool : NULL;
}

void
pgc_console_free(pgc_client *c)
{
	pgc_console *k = c->console;

	if (k == NULL)
		return;
	pgc_census_release(k->census);      /* on our worker: its callback will not come */
	free(k->query);
	free(k);
	c->console = NULL;
}

/* ------------------------------------------------------------ output -- */

static pgc_msgbuf *
out_of(pgc_client *c)
{
	return pgc_msgbuf_ensure(&c->out);
}

static void
send_error(pgc_client *c, const char *sqlstate, const char *msg, const char *detail, const char *hint)
{
	pgc_msgbuf *out = out_of(c);

	if (out)
		pgc_msgbuf_error(out, PGC_BE_ERROR, "ERROR", sqlstate, msg, detail, hint);
}

static void
send_complete(pgc_client *c, const char *tag)
{
	pgc_msgbuf *out = out_of(c);

	if (out == NULL)
		return;
	pgc_msgbuf_begin(out, PGC_BE_COMMAND_COMPLETE);
	pgc_msgbuf_str(out, tag);
	pgc_msgbuf_end(out);
}

static void
send_ready(pgc_client *c)
{
	pgc_msgbuf *out = out_of(c);

	if (out)
		pgc_msgbuf_ready(out, PGC_TXN_IDLE);
}

/* Is user in the comma- or space-separated list? */
static bool
in_list(const char *list, const char *user)
{
	size_t n = strlen(user);

	for (const char *p = list; p && *p;)
	{
		size_t len;

		while (*p == ',' || isspace((unsigned char) *p))
			p++;
		len = strcspn(p, ", \t");
		if (len == n && len > 0 && strncmp(p, user, n) == 0)
			return true;
		p += len;
	}
	return false;
}

void
pgc_console_welcome(pgc_client *c)
{
	const pgc_config *cfg = pgc_engine_config();
	pgc_console *k = c->console;
	const char *app = pgc_client_param(c, "application_name");
	pgc_msgbuf *out;

	k->admin = k->trusted_peer || in_list(cfg->admin_users, c->user);
	if (!k->admin && !in_list(cfg->stats_users, c->user))
	{
		pgc_log_limited(PGC_LOG, "client %s: user \"%s\" may not use the admin console (%s)", pgc_client_addr(c), c->user,
						"neither in admin_users nor in stats_users");
		pgc_client_fatal(c, "42501", "permission denied for database \"%s\"", c->dbname);
		return;
	}
	out = out_of(c);
	if (out == NULL)
	{
		pgc_client_close(c, "out of memory");
		return;
	}
	pgc_msgbuf_begin(out, PGC_BE_AUTHENTICATION);
	pgc_msgbuf_u32(out, PGC_AUTHREQ_OK);
	pgc_msgbuf_end(out);
	/* What libpq and drivers read at login; the console is not a PostgreSQL server, and says so. */
	pgc_msgbuf_param(out, "server_version", "15.0 (pgcarrier " PGCARRIER_VERSION " admin console)");
	pgc_msgbuf_param(out, "server_encoding", "UTF8");
	pgc_msgbuf_param(out, "client_encoding", "UTF8");
	pgc_msgbuf_param(out, "DateStyle", "ISO, MDY");
	pgc_msgbuf_param(out, "IntervalStyle", "postgres");
	pgc_msgbuf_param(out, "TimeZone", "UTC");
	pgc_msgbuf_param(out, "integer_datetimes", "on");
	pgc_msgbuf_param(out, "standard_conforming_strings", "on");
	pgc_msgbuf_param(out, "is_superuser", "off");
	pgc_msgbuf_param(out, "session_authorization", c->user);
	pgc_msgbuf_param(out, "application_name", app ? app : "");
	pgc_msgbuf_begin(out, PGC_BE_BACKEND_KEY_DATA);
	pgc_msgbuf_u32(out, c->cancel_pid);
	pgc_msgbuf_u32(out, c->cancel_key);
	pgc_msgbuf_end(out);
	pgc_msgbuf_ready(out, PGC_TXN_IDLE);
	c->state = CL_IDLE;
	c->state_since = c->worker->now;
	pgc_console_input(c);
}

bool
pgc_console_trusted_peer(pgc_client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (c->console == NULL || !c->is_unix || !pgc_engine_config()->admin_peer_same_uid)
		return false;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid())
		return false;
	c->console->trusted_peer = true;
	return true;
}

/* --------------------------------------------------------- statements -- */

typedef struct tok {
	const char *p;
	size_t len;
	char kind;                    /* 'w' word, '"' quoted identifier, '\'' string, else the character */
} tok;

static bool
word_char(char ch)
{
	return isalnum((unsigned char) ch) || ch == '_' || ch == '.' || ch == '-' || ch == '$';
}

/* Split a statement into tokens. The count, or -1 (too many, or a quote left open). */
static int
tokenize(const char *s, size_t len, tok *t, int max)
{
	size_t i = 0;
	int n = 0;

	while (i < len)
	{
		char ch = s[i];

		if (isspace((unsigned char) ch))
		{
			i++;
			continue;
		}
		if (n == max)
			return -1;
		t[n].p = s + i;
		if (ch == '"' || ch == '\'')
		{
			size_t j = i + 1;

			/* A doubled quote stands for one. */
			while (j < len && !(s[j] == ch && (j + 1 >= len || s[j + 1] != ch)))
				j += s[j] == ch ? 2 : 1;
			if (j >= len)
				return -1;
			t[n].kind = ch;
			t[n].len = j + 1 - i;
			i = j + 1;
		}
		else if (word_char(ch))
		{
			size_t j = i;

			while (j < len && word_char(s[j]))
				j++;
			t[n].kind = 'w';
			t[n].len = j - i;
			i = j;
		}
		else
		{
			t[n].kind = ch;
			t[n].len = 1;
			i++;
		}
		n++;
	}
	return n;
}

static bool
is_word(const tok *t, const char *w)
{
	return t->kind == 'w' && t->len == strlen(w) && strncasecmp(t->p, w, t->len) == 0;
}

/* A name (word or quoted identifier) into buf; false when it is neither or too long. */
static bool
tok_name(const tok *t, char *buf, size_t len)
{
	size_t o = 0;

	if (t->kind == 'w')
	{
		if (t->len >= len)
			return false;
		memcpy(buf, t->p, t->len);
		buf[t->len] = '\0';
		return true;
	}
	if (t->kind != '"')
		return false;
	for (size_t i = 1; i + 1 < t->len; i++)
	{
		if (o + 1 >= len)
			return false;
		buf[o++] = t->p[i];
		if (t->p[i] == '"')
			i++;
	}
	buf[o] = '\0';
	return o > 0;
}

/* How running a statement went. */
enum run { RUN_DONE, RUN_WAIT, RUN_ERROR, RUN_CLOSED };

static enum run
syntax_error(pgc_client *c, const char *cmd, const char *usage)
{
	char msg[300];

	snprintf(msg, sizeof(msg), "syntax error in %s: expected %s", cmd, usage);
	send_error(c, "42601", msg, NULL, "SHOW HELP lists the admin console's commands.");
	return RUN_ERROR;
}

/* Error from a control.h function: an unknown database is 3D000, as a client would get for it. */
static enum run
control_error(pgc_client *c, int rc, const char *err)
{
	send_error(c, rc == PGC_CONTROL_WRONG_STATE ? "55000" :
			   strncmp(err, "no such database", 16) == 0 ? "3D000" : "22023", err, NULL, NULL);
	return RUN_ERROR;
}

static void census_done(void *arg);
static bool wait_close_look(pgc_client *c);

static enum run
run_show(pgc_client *c, const tok *t, int n)
{
	pgc_console *k = c->console;
	char name[64], sqlstate[6], err[300];
	bool needs;
	int what;
	size_t mark;
	pgc_msgbuf *out;

	if (n != 2 || !tok_name(&t[1], name, sizeof(name)))
		return syntax_error(c, "SHOW", "SHOW name, such as SHOW POOLS");
	what = pgc_show_lookup(name, &needs);
	if (what < 0)
	{
		char msg[128];

		snprintf(msg, sizeof(msg), "unknown SHOW: \"%s\"", name);
		send_error(c, "42704", msg, NULL, "SHOW HELP lists what the admin console can show.");
		return RUN_ERROR;
	}
	if (needs)
	{
		k->census = pgc_census_start(c->worker->engine, c->worker, census_done, c, -1);
		if (k->census == NULL)
		{
			send_error(c, "53200", "out of memory", NULL, NULL);
			return RUN_ERROR;
		}
		k->wait = WAIT_CENSUS;
		k->show = what;
		return RUN_WAIT;
	}
	if ((out = out_of(c)) == NULL)
		return RUN_CLOSED;
	mark = out->len;
	if (pgc_show(c->worker->engine, what, NULL, out, sqlstate, err, sizeof(err)) < 0)
	{
		out->len = mark;            /* no half result before the error */
		out->failed = 0;
		send_error(c, sqlstate, err, NULL, NULL);
		return RUN_ERROR;
	}
	return RUN_DONE;
}

/* PAUSE, RESUME, RECONNECT, KILL, WAIT_CLOSE: an optional database; DISABLE, ENABLE: one. */
static enum run
run_db_command(pgc_client *c, const char *cmd, const tok *t, int n, bool needs_db)
{
	pgc_console *k = c->console;
	pgc_engine *e = c->worker->engine;
	char db[NAME_MAX_LEN], err[300], usage[64];
	const char *dbp = NULL;
	int rc;

	snprintf(usage, sizeof(usage), needs_db ? "%s db" : "%s [db]", cmd);
	if (n > 2 || (n == 2 && !tok_name(&t[1], db, sizeof(db))) || (needs_db && n != 2))
		return syntax_error(c, cmd, usage);
	if (n == 2)
		dbp = db;
	if (dbp && pgc_console_db(dbp))
	{
		send_error(c, "22023", "the admin console's database cannot be paused, killed or disabled", NULL, NULL);
		return RUN_ERROR;
	}
	if (strcmp(cmd, "PAUSE") == 0)
		rc = pgc_control_pause(e, dbp, err, sizeof(err));
	else if (strcmp(cmd, "RESUME") == 0)
		rc = pgc_control_resume(e, dbp, err, sizeof(err));
	else if (strcmp(cmd, "DISABLE") == 0)
		rc = pgc_control_disable(e, dbp, err, sizeof(err));
	else if (strcmp(cmd, "ENABLE") == 0)
		rc = pgc_control_enable(e, dbp, err, sizeof(err));
	else if (strcmp(cmd, "RECONNECT") == 0)
		rc = pgc_control_reconnect(e, dbp, err, sizeof(err));
	else if (strcmp(cmd, "KILL") == 0)
		rc = pgc_control_kill(e, dbp, err, sizeof(err));
	else
	{
		/* WAIT_CLOSE: only checks the name. */
		rc = 0;
		if (dbp && pgc_config_find_db(pgc_engine_config(), dbp) == NULL)
		{
			snprintf(err, sizeof(err), "no such database: \"%s\"", dbp);
			rc = -1;
		}
	}
	if (rc < 0)
		return control_error(c, rc, err);
	if (strcmp(cmd, "PAUSE") == 0 || strcmp(cmd, "WAIT_CLOSE") == 0)
	{
		/* Done when the connections are gone: polled on each tick. */
		k->wait = strcmp(cmd, "PAUSE") == 0 ? WAIT_PAUSE : WAIT_CLOSE;
		snprintf(k->db, sizeof(k->db), "%s", dbp ? dbp : "");
		k->tag = strcmp(cmd, "PAUSE") == 0 ? "PAUSE" : "WAIT_CLOSE";
		k->since = c->worker->now;
		if (k->wait == WAIT_CLOSE && !wait_close_look(c))
		{
			k->wait = WAIT_NONE;
			send_error(c, "53200", "out of memory", NULL, NULL);
			return RUN_ERROR;
		}
		return RUN_WAIT;
	}
	send_complete(c, cmd);
	return RUN_DONE;
}

static enum run
run_kill_client(pgc_client *c, const tok *t, int n)
{
	char num[32], err[300], *end;
	unsigned long long id;

	if (n != 2 || t[1].kind != 'w' || t[1].len >= sizeof(num))
		return syntax_error(c, "KILL_CLIENT", "KILL_CLIENT id (SHOW CLIENTS' id)");
	memcpy(num, t[1].p, t[1].len);
	num[t[1].len] = '\0';
	errno = 0;
	id = strtoull(num, &end, 10);
	if (errno || *end || !isdigit((unsigned char) num[0]))
	{
		char msg[100];

		snprintf(msg, sizeof(msg), "invalid client id: \"%s\"", num);
		send_error(c, "22P02", msg, NULL, "The id is SHOW CLIENTS' id column.");
		return RUN_ERROR;
	}
	if (pgc_control_kill_client(c->worker->engine, id, err, sizeof(err)) < 0)
	{
		send_error(c, "42704", err, NULL, NULL);
		return RUN_ERROR;
	}
	send_complete(c, "KILL_CLIENT");
	return RUN_DONE;
}

/* Settings SET cannot change: they need a restart, or the daemon reads them before the SET applies. */
static bool
set_refused(const char *key, char *why, size_t len)
{
	static const char *const restart[] = {
		"listen_addr", "listen_port", "unix_socket_dir", "workers", "io_backend", "user", "pidfile",
		"stats_listen_addr", "stats_listen_port"
	};

	for (size_t i = 0; i < sizeof(restart) / sizeof(restart[0]); i++)
		if (strcasecmp(key, restart[i]) == 0)
		{
			snprintf(why, len, "parameter \"%s\" cannot be changed without restarting pgcarrier", restart[i]);
			return true;
		}
	if (strcasecmp(key, "logfile") == 0)
	{
		snprintf(why, len, "parameter \"logfile\" is changed by a RELOAD of the configuration file, not by SET");
		return true;
	}
	return false;
}

static enum run
run_set(pgc_client *c, const char *stmt, size_t len, const tok *t, int n)
{
	pgc_console *k = c->console;
	char key[NAME_MAX_LEN], why[300];
	const char *value, *end = stmt + len;
	char *v;
	bool known = false;

	if (n < 3 || !tok_name(&t[1], key, sizeof(key)) || !(t[2].kind == '=' || is_word(&t[2], "TO")))
		return syntax_error(c, "SET", "SET key = value");
	for (int i = 0; pgc_config_key(i); i++)
		known = known || strcasecmp(pgc_config_key(i), key) == 0;
	if (!known)
	{
		char msg[300];

		snprintf(msg, sizeof(msg), "unrecognized configuration parameter \"%s\"", key);
		send_error(c, "42704", msg, NULL, "SHOW CONFIG lists the settings.");
		return RUN_ERROR;
	}
	if (set_refused(key, why, sizeof(why)))
	{
		send_error(c, "55P02", why, NULL, NULL);
		return RUN_ERROR;
	}
	/* The value as the file would say it: the rest of the statement. */
	value = t[2].p + t[2].len;
	while (value < end && isspace((unsigned char) *value))
		value++;
	while (end > value && isspace((unsigned char) end[-1]))
		end--;
	if (value == end)
		return syntax_error(c, "SET", "SET key = value");
	if ((v = strndup(value, (size_t) (end - value))) == NULL)
		return RUN_CLOSED;
	/*
	 * A value the file would refuse is refused now, without a reload
	 * (auth_type is checked against the loaded HBA file and certificates
	 * at the reload).
	 */
	if (strcasecmp(key, "auth_type") != 0)
	{
		pgc_config *scratch = pgc_config_parse("", "SET", why, sizeof(why));
		int bad = scratch == NULL || pgc_config_set(scratch, key, v, why, sizeof(why)) < 0;

		pgc_config_free(scratch);
		if (bad)
		{
			free(v);
			send_error(c, "22023", why, NULL, NULL);
			return RUN_ERROR;
		}
	}
	if (pgc_reload_ask(key, v, &k->ticket, why, sizeof(why)) < 0)
	{
		free(v);
		send_error(c, "0A000", why, NULL, NULL);
		return RUN_ERROR;
	}
	pgc_log(PGC_LOG, "admin console (%s): SET %s = %s", c->user, key, v);
	free(v);
	k->wait = WAIT_RELOAD;
	k->set = true;
	k->tag = "SET";
	k->since = c->worker->now;
	return RUN_WAIT;
}

static enum run
run_reload(pgc_client *c, int n)
{
	pgc_console *k = c->console;
	char why[300];

	if (n != 1)
		return syntax_error(c, "RELOAD", "RELOAD");
	if (pgc_reload_ask(NULL, NULL, &k->ticket, why, sizeof(why)) < 0)
	{
		send_error(c, "0A000", why, NULL, NULL);
		return RUN_ERROR;
	}
	pgc_log(PGC_LOG, "admin console (%s): RELOAD", c->user);
	k->wait = WAIT_RELOAD;
	k->set = false;
	k->tag = "RELOAD";
	k->since = c->worker->now;
	return RUN_WAIT;
}

static enum run
run_shutdown(pgc_client *c, const tok *t, int n)
{
	bool for_clients = n == 2 && is_word(&t[1], "WAIT_FOR_CLIENTS");

	/* pgcarrier's SHUTDOWN lets transactions finish, as PgBouncer's WAIT_FOR_SERVERS. */
	if (n > 2 || (n == 2 && !for_clients && !is_word(&t[1], "WAIT_FOR_SERVERS")))
		return syntax_error(c, "SHUTDOWN", "SHUTDOWN [WAIT_FOR_CLIENTS | WAIT_FOR_SERVERS]");
	pgc_log(PGC_LOG, "admin console (%s): SHUTDOWN%s", c->user, for_clients ? " WAIT_FOR_CLIENTS" : "");
	pgc_control_shutdown(c->worker->engine, for_clients);
	send_complete(c, "SHUTDOWN");
	return RUN_DONE;
}

/* Run one statement of the Query. */
static enum run
run_statement(pgc_client *c, const char *stmt, size_t len)
{
	pgc_console *k = c->console;
	tok t[MAX_TOKENS];
	int n = tokenize(stmt, len, t, MAX_TOKENS);
	char cmd[32];

	if (n < 0)
		return syntax_error(c, "the command", "a command, its arguments, and no quote left open");
	if (t[0].kind != 'w' || t[0].len >= sizeof(cmd))
	{
		send_error(c, "42601", "syntax error: a command must start with its name", NULL,
				   "SHOW HELP lists the admin console's commands.");
		return RUN_ERROR;
	}
	for (size_t i = 0; i < t[0].len; i++)
		cmd[i] = (char) toupper((unsigned char) t[0].p[i]);
	cmd[t[0].len] = '\0';
	if (strcmp(cmd, "SHOW") == 0)
		return run_show(c, t, n);
	if (!k->admin)
	{
		char msg[100];

		snprintf(msg, sizeof(msg), "permission denied for %s", cmd);
		send_error(c, "42501", msg, "Only users in admin_users may run it; users in stats_users may run SHOW.",
				   NULL);
		return RUN_ERROR;
	}
	if (strcmp(cmd, "PAUSE") == 0 || strcmp(cmd, "RESUME") == 0 || strcmp(cmd, "RECONNECT") == 0 ||
		strcmp(cmd, "KILL") == 0 || strcmp(cmd, "WAIT_CLOSE") == 0)
		return run_db_command(c, cmd, t, n, false);
	if (strcmp(cmd, "DISABLE") == 0 || strcmp(cmd, "ENABLE") == 0)
		return run_db_command(c, cmd, t, n, true);
	if (strcmp(cmd, "KILL_CLIENT") == 0)
		return run_kill_client(c, t, n);
	if (strcmp(cmd, "RELOAD") == 0)
		return run_reload(c, n);
	if (strcmp(cmd, "SET") == 0)
		return run_set(c, stmt, len, t, n);
	if (strcmp(cmd, "SHUTDOWN") == 0)
		return run_shutdown(c, t, n);
	if (strcmp(cmd, "SUSPEND") == 0)
	{
		send_error(c, "0A000", "SUSPEND is not supported: pgcarrier has no online restart", NULL,
				   "PAUSE closes the server connections; RESUME serves again.");
		return RUN_ERROR;
	}
	{
		char msg[100];

		snprintf(msg, sizeof(msg), "unknown command \"%s\" (this is pgcarrier's admin console)", cmd);
		send_error(c, "42601", msg, NULL, "SHOW HELP lists the admin console's commands.");
	}
	return RUN_ERROR;
}

/* The end of the statement at s: the first ';' outside quotes, or the end. */
static size_t
statement_end(const char *s, size_t len)
{
	char quote = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (quote)
			quote = s[i] == quote ? 0 : quote;
		else if (s[i] == '\'' || s[i] == '"')
			quote = s[i];
		else if (s[i] == ';')
			return i;
	}
	return len;
}

/* The Query is over: EmptyQueryResponse if it had nothing, then ReadyForQuery. */
static void
query_done(pgc_client *c)
{
	pgc_console *k = c->console;
	pgc_msgbuf *out = out_of(c);

	if (!k->any && out)
	{
		pgc_msgbuf_begin(out, PGC_BE_EMPTY_QUERY);
		pgc_msgbuf_end(out);
	}
	free(k->query);
	k->query = NULL;
	send_ready(c);
}

/* Run the Query's statements until one waits, or all ran (or one failed). False if c was closed. */
static bool
run_query(pgc_client *c)
{
	pgc_console *k = c->console;

	while (k->query && k->wait == WAIT_NONE)
	{
		const char *s;
		size_t len;
		enum run r;

		if (c->out && c->out->len > CONSOLE_OUT_HIGH)
			return true;            /* the client reads slowly: go on when it has taken some */
		if (k->pos >= k->len)
		{
			query_done(c);
			return true;
		}
		s = k->query + k->pos;
		len = statement_end(s, k->len - k->pos);
		k->pos += len + 1;
		while (len && isspace((unsigned char) *s))
			s++, len--;
		if (len == 0)
			continue;
		k->any = true;
		r = run_statement(c, s, len);
		if (r == RUN_CLOSED)
		{
			pgc_client_close(c, "out of memory");
			return false;
		}
		if (r == RUN_ERROR)
			k->pos = k->len;        /* an error ends the Query, as in PostgreSQL */
	}
	return true;
}

/* ---------------------------------------------------------- messages -- */

/* Messages of the extended query protocol: refused, and dropped up to the Sync. */
static bool
extended(uint8_t type)
{
	return type == PGC_FE_PARSE || type == PGC_FE_BIND || type == PGC_FE_DESCRIBE ||
		type == PGC_FE_EXECUTE || type == PGC_FE_CLOSE;
}

static void
refuse_extended(pgc_client *c)
{
	pgc_console *k = c->console;

	if (!k->skip_to_sync)
		send_error(c, "0A000", "the admin console supports only the simple query protocol", NULL,
				   "Send commands as simple queries (psql does; psycopg with no parameters does).");
	k->skip_to_sync = true;
}

/* Handle the next message in c->in: 1 handled, 0 more bytes first, -1 c was closed. */
static int
next_message(pgc_client *c)
{
	pgc_console *k = c->console;
	pgc_iobuf *b = c->in;
	size_t avail, total;
	uint8_t type;
	uint32_t len;
	const uint8_t *body;

	if (b == NULL || b->start == b->end)
		return 0;
	avail = b->end - b->start;
	if (k->discard)
	{
		size_t n = avail < k->discard ? avail : k->discard;

		b->start += n;
		b->scan = b->start;
		k->discard -= (uint32_t) n;
		return k->discard ? 0 : 1;
	}
	if (!pgc_msg_header(b->data + b->start, avail, &type, &len))
		return 0;
	if (!pgc_relay_header_ok(c, type, len))
		return -1;              /* PostgreSQL's FATAL for it; closed */
	total = (size_t) len + 1;
	if (total > CONSOLE_MAX_MESSAGE)
	{
		/* Too long to read whole: dropped as it arrives, with an error. */
		if (type == PGC_FE_QUERY && !k->skip_to_sync)
		{
			send_error(c, "54000", "admin console command too long", NULL, NULL);
			send_ready(c);
		}
		else if (extended(type))
			refuse_extended(c);
		k->discard = (uint32_t) total;
		return 1;
	}
	if (avail < total)
	{
		if (b->start > 0 && b->start + total > b->cap)
		{
			memmove(b->data, b->data + b->start, avail);
			b->start = b->scan = 0;
			b->end = avail;
		}
		return 0;
	}
	body = b->data + b->start + PGC_MSG_HEADER_SIZE;
	switch (type)
	{
		case PGC_FE_QUERY:
			if (k->skip_to_sync)
				break;
			if (len == PGC_MSG_LENGTH_SIZE || body[len - PGC_MSG_LENGTH_SIZE - 1] != '\0')
			{
				pgc_client_fatal(c, "08P01", "invalid string in message");
				return -1;
			}
			k->len = len - PGC_MSG_LENGTH_SIZE - 1;
			k->query = malloc(k->len + 1);
			if (k->query == NULL)
			{
				pgc_client_fatal(c, "53200", "out of memory");
				return -1;
			}
			memcpy(k->query, body, k->len + 1);
			k->pos = 0;
			k->any = false;
			break;
		case PGC_FE_SYNC:
			k->skip_to_sync = false;
			send_ready(c);
			break;
		case PGC_FE_FUNCTION_CALL:
			if (k->skip_to_sync)
				break;
			send_error(c, "0A000", "the admin console has no functions to call", NULL, NULL);
			send_ready(c);
			break;
		case PGC_FE_TERMINATE:
			pgc_client_close(c, "client terminated");
			return -1;
		case PGC_FE_FLUSH:
		case PGC_FE_COPY_DATA:
		case PGC_FE_COPY_DONE:
		case PGC_FE_COPY_FAIL:
			/* No COPY is in progress: PostgreSQL ignores these too. */
			break;
		default:
			if (extended(type))
				refuse_extended(c);
			break;
	}
	b->start += total;
	b->scan = b->start;
	return 1;
}

/* Answer what can be answered now. False if c was closed. */
static bool
pump(pgc_client *c)
{
	pgc_console *k = c->console;

	if (pgc_client_flush_out(c) < 0)
	{
		pgc_client_close(c, "client went away");
		return false;
	}
	for (;;)
	{
		int r;

		if (k->wait != WAIT_NONE || (c->out && c->out->len > CONSOLE_OUT_HIGH))
			break;
		if (k->query)
		{
			if (!run_query(c))
				return false;
			if (k->query)
				break;          /* it waits, or the output is full */
			continue;
		}
		r = next_message(c);
		if (r < 0)
			return false;
		if (r == 0)
			break;
	}
	pgc_client_trim(c);
	if (pgc_client_flush_out(c) < 0)
	{
		pgc_client_close(c, "client went away");
		return false;
	}
	pgc_client_update_events(c);
	return true;
}

void
pgc_console_input(pgc_client *c)
{
	(void) pump(c);
}

/* The statement that waited is done: its CommandComplete, then the rest of the Query. */
static bool
wait_over(pgc_client *c, const char *tag)
{
	c->console->wait = WAIT_NONE;
	if (tag)
		send_complete(c, tag);
	return pump(c);
}

static void
census_done(void *arg)
{
	pgc_client *c = arg;
	pgc_console *k = c->console;
	pgc_census *census = k->census;
	char sqlstate[6], err[300];
	pgc_msgbuf *out = out_of(c);

	k->census = NULL;
	if (out)
	{
		size_t mark = out->len;

		if (pgc_show(c->worker->engine, k->show, census, out, sqlstate, err, sizeof(err)) < 0)
		{
			out->len = mark;
			out->failed = 0;
			send_error(c, sqlstate, err, NULL, NULL);
			k->pos = k->len;
		}
	}
	pgc_census_release(census);
	(void) wait_over(c, NULL);
}

/*
 * WAIT_CLOSE: a census counts the servers of the database that are to be
 * closed when released (SHOW SERVERS' close_needed: made before the last
 * RECONNECT, by a database line a reload changed, or after a fault); done
 * when there is none. Servers are owned by their workers, so only a census
 * can look at them; one per tick while the DBA waits.
 */
static void
wait_close_counted(void *arg)
{
	pgc_client *c = arg;
	pgc_console *k = c->console;
	pgc_census *census = k->census;
	int left = 0;

	k->census = NULL;
	for (int i = 0; i < pgc_census_workers(census); i++)
	{
		const pgc_census_slot *sl = pgc_census_part(census, i);

		for (int j = 0; j < sl->n_servers; j++)
			if (sl->servers[j].close_needed &&
				(k->db[0] == '\0' || strcmp(sl->servers[j].pool->dbname, k->db) == 0))
				left++;
	}
	pgc_census_release(census);
	if (left == 0)
		(void) wait_over(c, k->tag);
}

/* Start WAIT_CLOSE's census unless one is under way; false when out of memory. */
static bool
wait_close_look(pgc_client *c)
{
	pgc_console *k = c->console;

	if (k->census == NULL)
		k->census = pgc_census_start(c->worker->engine, c->worker, wait_close_counted, c, -1);
	return k->census != NULL;
}

bool
pgc_console_tick(pgc_client *c, double now)
{
	pgc_console *k = c->console;
	pgc_engine *e = c->worker->engine;
	const char *db = k->db[0] ? k->db : NULL;
	char err[400];
	int rc;

	switch (k->wait)
	{
		case WAIT_PAUSE:
			if (pgc_control_pause_done(e, db))
				return !wait_over(c, k->tag);
			break;
		case WAIT_CLOSE:
			(void) wait_close_look(c);  /* out of memory: tried again at the next tick */
			break;
		case WAIT_RELOAD:
			rc = pgc_reload_status(k->ticket, err, sizeof(err));
			if (rc == 0 && now - k->since > RELOAD_TIMEOUT)
			{
				snprintf(err, sizeof(err), "the configuration was not reloaded within %g s", RELOAD_TIMEOUT);
				rc = -1;
			}
			if (rc > 0)
				return !wait_over(c, k->tag);
			if (rc < 0)
			{
				/* A value SET refused is the client's mistake; a file that does not load is not. */
				send_error(c, k->set ? "22023" : "F0000", err, NULL, NULL);
				k->pos = k->len;
				return !wait_over(c, NULL);
			}
			break;
		default:
			break;
	}
	return false;
}
