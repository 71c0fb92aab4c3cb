/* SPDX-License-Identifier: Apache-2.0 */
/* Maintenance-task scheduling: see scheduler.h and docs/lifecycle.md. */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "status.h"
#include "util.h"

#define REVOCATION_QUEUE_SECONDS 60

static const struct task_def tasks[] = {
	{TASK_REVOCATION_QUEUE, "Retry Queued Certificate Revocations", task_revocation_queue},
	{TASK_PROVCERT_CHECK, "Check the AMT Provisioning Certificate",
	 task_provisioning_certificate},
	{TASK_EVALUATE_CERTS, "Evaluate Provisioned AMT Computer Certificates",
	 task_evaluate_certificates},
};

const struct task_def *sched_tasks(size_t *count)
{
	*count = sizeof(tasks) / sizeof(tasks[0]);
	return tasks;
}

const struct task_def *sched_task_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(tasks) / sizeof(tasks[0]); i++)
		if (strcmp(tasks[i].name, name) == 0)
			return &tasks[i];
	return NULL;
}

int64_t sched_interval(const struct manifest *m, const char *name)
{
	if (strcmp(name, TASK_EVALUATE_CERTS) == 0)
		return (int64_t)m->maintenance.evaluate_interval_days * 86400;
	if (strcmp(name, TASK_PROVCERT_CHECK) == 0)
		return (int64_t)m->maintenance.provcert_check_hours * 3600;
	return REVOCATION_QUEUE_SECONDS;
}

int sched_is_due(const struct store_task *rec, int have_rec, int64_t now)
{
	if (!have_rec || rec->last_run == 0)
		return 1;
	return rec->next_run <= now || rec->requests > rec->served;
}

#define N_TASKS (sizeof(tasks) / sizeof(tasks[0]))

/* A run in progress off the loop: what recording it needs once it reports. */
struct running {
	int busy;
	int64_t started;
	int64_t requests; /* the on-demand requests it covers */
};

struct sched {
	struct task_env env;
	struct event *tick;
	struct running running[N_TASKS];
};

/* Records a finished run: result, detail, schedule; status 8300/8301. */
static void record_run(struct site *s, const struct task_def *t, int64_t started,
		       int64_t requests, const struct task_result *res)
{
	struct store *st = site_store(s);
	struct store_task rec;
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (store_task_get(st, t->name, &rec, &err) != AMTPROV_OK) {
		memset(&rec, 0, sizeof(rec));
		util_strlcpy(rec.name, t->name, sizeof(rec.name));
	}
	/* What ran covers the requests seen when it started; later ones run again. */
	rec.served = requests;
	rec.last_run = started;
	rec.last_result = res->code;
	util_strlcpy(rec.last_detail, res->detail, sizeof(rec.last_detail));
	rec.interval_seconds = sched_interval(site_manifest(s), t->name);
	/* An on-demand run between two scheduled ones leaves the schedule as it was. */
	if (rec.next_run <= started || rec.next_run > started + rec.interval_seconds)
		rec.next_run = started + rec.interval_seconds;
	amtprov_error_clear(&err);
	if (store_task_put(st, &rec, &err) != AMTPROV_OK)
		alog(site_log(s), AMTPROV_LOG_ERROR, "task %s: cannot record the run: %s", t->name,
		     err.msg);
	if (res->code != AMTPROV_OK) {
		char msg[STORE_TEXT_SIZE];

		snprintf(msg, sizeof(msg), "%s: %.440s", t->name, res->detail);
		site_status(s, STATUS_TASK_FAILED, NULL, msg);
	} else if (res->worked) {
		char msg[STORE_TEXT_SIZE];

		snprintf(msg, sizeof(msg), "%s: %.440s", t->name, res->detail);
		site_status(s, STATUS_TASK_COMPLETED, NULL, msg);
	}
}

static int run_one(const struct task_env *env, size_t idx)
{
	const struct task_def *t = &tasks[idx];
	struct site *s = env->site;
	struct store *st = site_store(s);
	struct store_task rec;
	struct task_result res;
	struct amtprov_error err;
	int have, rc;
	int64_t now = site_now(s);

	if (env->sched && env->sched->running[idx].busy)
		return 0;
	amtprov_error_clear(&err);
	rc = store_task_get(st, t->name, &rec, &err);
	have = rc == AMTPROV_OK;
	if (rc != AMTPROV_OK && rc != AMTPROV_E_NOT_FOUND) {
		alog(site_log(s), AMTPROV_LOG_ERROR, "task %s: %s", t->name, err.msg);
		return 0;
	}
	if (!have)
		memset(&rec, 0, sizeof(rec));
	if (!sched_is_due(&rec, have, now))
		return 0;
	memset(&res, 0, sizeof(res));
	alog(site_log(s), AMTPROV_LOG_INFO, "task %s: running%s", t->name,
	     rec.requests > rec.served ? " (requested)" : "");
	t->run(env, &res);
	if (res.pending && env->sched) {
		env->sched->running[idx] = (struct running){1, now, rec.requests};
		return 1;
	}
	record_run(s, t, now, rec.requests, &res);
	return 1;
}

void sched_task_done(struct sched *sc, const char *name, const struct task_result *res)
{
	for (size_t i = 0; sc && i < N_TASKS; i++) {
		if (strcmp(tasks[i].name, name) != 0 || !sc->running[i].busy)
			continue;
		sc->running[i].busy = 0;
		record_run(sc->env.site, &tasks[i], sc->running[i].started,
			   sc->running[i].requests, res);
	}
}

int sched_run_due(const struct task_env *env)
{
	int ran = 0;

	for (size_t i = 0; i < N_TASKS; i++)
		ran += run_one(env, i);
	return ran;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;

	(void)fd;
	(void)what;
	sched_run_due(&s->env);
}

struct sched *sched_start(const struct task_env *env, struct amtprov_error *err)
{
	struct sched *s = calloc(1, sizeof(*s));
	struct timeval one = {.tv_sec = 1};

	if (!s) {
		amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		return NULL;
	}
	s->env = *env;
	s->env.sched = s;
	s->tick = event_new(engine_base(env->engine), -1, EV_PERSIST, on_tick, s);
	if (!s->tick || event_add(s->tick, &one) < 0) {
		sched_free(s);
		amtprov_error_set(err, AMTPROV_E_INTERNAL, NULL, "cannot start the task scheduler");
		return NULL;
	}
	return s;
}

const struct task_env *sched_env(struct sched *s)
{
	return &s->env;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	if (s->tick)
		event_free(s->tick);
	free(s);
}
