/*
 * reload.c - RELOAD and SET from the admin console; see reload.h.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "log.h"
#include "reload.h"

/* How many failed reloads are remembered for the tickets that wait on them. */
#define FAILURES_KEPT 8

typedef struct override {
	char *key, *value;
	uint64_t ticket;
	struct override *next;
} override;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void (*hook)(void);
static override *overrides;     /* oldest first */
static uint64_t requested;      /* tickets given out */
static uint64_t serving;        /* the reload under way serves tickets up to this one */
static uint64_t done;           /* tickets up to this one are answered */
static struct {
	uint64_t lo, hi;            /* the tickets that failed */
	char msg[400];
} failures[FAILURES_KEPT];
static int next_failure;

static void
free_override(override *o)
{
	free(o->key);
	free(o->value);
	free(o);
}

static void
drop_overrides(void)
{
	while (overrides)
	{
		override *o = overrides;

		overrides = o->next;
		free_override(o);
	}
}

/* Tickets lo..hi failed with msg. Lock held. */
static void
record_failure(uint64_t lo, uint64_t hi, const char *msg)
{
	failures[next_failure].lo = lo;
	failures[next_failure].hi = hi;
	snprintf(failures[next_failure].msg, sizeof(failures[next_failure].msg), "%s", msg);
	next_failure = (next_failure + 1) % FAILURES_KEPT;
}

void
pgc_engine_set_reload_hook(void (*fn)(void))
{
	pthread_mutex_lock(&lock);
	hook = fn;
	pthread_mutex_unlock(&lock);
}

int
pgc_reload_ask(const char *key, const char *value, uint64_t *ticket, char *err, size_t errlen)
{
	void (*fn)(void);
	override *o = NULL;

	if (key && (o = calloc(1, sizeof(*o))) != NULL)
	{
		o->key = strdup(key);
		o->value = strdup(value ? value : "");
	}
	if (key && (o == NULL || o->key == NULL || o->value == NULL))
	{
		if (o)
			free_override(o);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&lock);
	fn = hook;
	if (fn == NULL)
	{
		pthread_mutex_unlock(&lock);
		if (o)
			free_override(o);
		snprintf(err, errlen, "the program running pgcarrier's engine does not reload its configuration");
		return -1;
	}
	*ticket = ++requested;
	if (o == NULL)
		drop_overrides();       /* RELOAD: the file's values */
	else
	{
		override **pp = &overrides;

		/*
		 * Last: it wins over an earlier SET of the same key, which stays
		 * until this one has applied (pgc_reload_prepare), so that a value
		 * the file refuses leaves the earlier one in place.
		 */
		while (*pp)
			pp = &(*pp)->next;
		o->ticket = *ticket;
		*pp = o;
	}
	pthread_mutex_unlock(&lock);
	fn();
	return 0;
}

int
pgc_reload_status(uint64_t ticket, char *err, size_t errlen)
{
	int rc = 1;

	pthread_mutex_lock(&lock);
	if (done < ticket)
		rc = 0;
	else
		for (int i = 0; i < FAILURES_KEPT; i++)
			if (failures[i].lo <= ticket && ticket <= failures[i].hi && failures[i].hi > 0)
			{
				snprintf(err, errlen, "%s", failures[i].msg);
				rc = -1;
			}
	pthread_mutex_unlock(&lock);
	return rc;
}

void
pgc_reload_prepare(pgc_config *cfg)
{
	pthread_mutex_lock(&lock);
	if (done == requested)
		drop_overrides();       /* a SIGHUP from outside: the file wins */
	for (override **pp = &overrides; *pp;)
	{
		override *o = *pp;
		char err[400];

		if (pgc_config_set(cfg, o->key, o->value, err, sizeof(err)) < 0)
		{
			/* It cannot apply to this file: that SET fails, the others stand. */
			pgc_log(PGC_WARNING, "SET %s = %s not applied: %s", o->key, o->value, err);
			record_failure(o->ticket, o->ticket, err);
			*pp = o->next;
			free_override(o);
			continue;
		}
		pp = &o->next;
	}
	/* An earlier SET of a key that a later one set again is of no use any more. */
	for (override **pp = &overrides; *pp;)
	{
		override *o = *pp;
		bool later = false;

		for (override *l = o->next; l && !later; l = l->next)
			later = strcmp(l->key, o->key) == 0;
		if (later)
		{
			*pp = o->next;
			free_override(o);
			continue;
		}
		pp = &o->next;
	}
	serving = requested;
	pthread_mutex_unlock(&lock);
}

void
pgc_reload_finish(const pgc_config *cfg)
{
	pthread_mutex_lock(&lock);
	if (serving > done)
		done = serving;
	pthread_mutex_unlock(&lock);
	/* verbose may have been SET. */
	pgc_log_set_min_level(cfg->verbose ? PGC_DEBUG : PGC_LOG);
}

void
pgc_engine_reload_failed(const char *err)
{
	pthread_mutex_lock(&lock);
	if (requested > done)
	{
		record_failure(done + 1, requested, err);
		done = requested;
	}
	pthread_mutex_unlock(&lock);
}
