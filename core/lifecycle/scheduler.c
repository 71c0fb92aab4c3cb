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
	int64_t renewed;  /* when its lease was last renewed */
};

struct sched {
	struct task_env env;
	struct event *tick;
	struct running running[N_TASKS];
	char host_id[STORE_SHORT_SIZE];
	/* the other host last seen running each task (said once, not every second) */
	char seen_holder[N_TASKS][STORE_SHORT_SIZE];
};

/* Task leases (several hosts): only when the env names this host. */
static int leasing(const struct task_env *env)
{
	return env->host_id && env->host_id[0];
}

static int64_t lease_seconds(struct site *s)
{
	int v = site_manifest(s)->engine.lease_seconds;

	return v > 0 ? v : 60;
}

static void lease_release(const struct task_env *env, const struct task_def *t)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (leasing(env) && store_task_release(site_store(env->site), t->name, env->host_id,
					       &err) != AMTPROV_OK)
		alog(site_log(env->site), AMTPROV_LOG_WARNING,
		     "task %s: cannot give its lease back (it runs out by itself): %s", t->name,
		     err.msg);
}

/* Another host runs it: said once per holder, at info level. */
static void note_holder(const struct task_env *env, size_t idx)
{
	struct store_task rec;
	struct amtprov_error err;
	char *seen;

	amtprov_error_clear(&err);
	if (!env->sched ||
	    store_task_get(site_store(env->site), tasks[idx].name, &rec, &err) != AMTPROV_OK)
		return;
	seen = env->sched->seen_holder[idx];
	if (!rec.lease_owner[0] || strcmp(seen, rec.lease_owner) == 0)
		return;
	util_strlcpy(seen, rec.lease_owner, STORE_SHORT_SIZE);
	alog(site_log(env->site), AMTPROV_LOG_INFO,
	     "task %s: due, run by host %s (its lease runs until %lld)", tasks[idx].name,
	     rec.lease_owner, (long long)rec.lease_until);
}

/* Claims the task's run for this host, then reads its record again: the host that held it
 * before may have just run it. 1: claimed and still due (@p rec is fresh); 0: not to run
 * here (nothing is held). */
static int claim(const struct task_env *env, size_t idx, int64_t now, struct store_task *rec)
{
	const struct task_def *t = &tasks[idx];
	struct store *st = site_store(env->site);
	struct amtprov_error err;
	int rc;

	amtprov_error_clear(&err);
	rc = store_task_claim(st, t->name, env->host_id, now, now + lease_seconds(env->site),
			      &err);
	if (rc == AMTPROV_E_BUSY) {
		note_holder(env, idx);
		return 0;
	}
	if (rc == AMTPROV_OK)
		rc = store_task_get(st, t->name, rec, &err);
	if (rc != AMTPROV_OK) {
		alog(site_log(env->site), AMTPROV_LOG_ERROR, "task %s: %s", t->name, err.msg);
		lease_release(env, t);
		return 0;
	}
	if (!sched_is_due(rec, 1, now)) {
		lease_release(env, t);
		return 0;
	}
	if (env->sched)
		env->sched->seen_holder[idx][0] = '\0';
	return 1;
}

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
	if (leasing(env) && !claim(env, idx, now, &rec))
		return 0;
	memset(&res, 0, sizeof(res));
	alog(site_log(s), AMTPROV_LOG_INFO, "task %s: running%s", t->name,
	     rec.requests > rec.served ? " (requested)" : "");
	t->run(env, &res);
	if (res.pending && env->sched) {
		env->sched->running[idx] = (struct running){1, now, rec.requests, now};
		return 1;
	}
	record_run(s, t, now, rec.requests, &res);
	lease_release(env, t);
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
		lease_release(&sc->env, &tasks[i]);
	}
}

/* Runs going on off the loop keep their leases: renewed every third of their life. */
static void renew_running(struct sched *sc)
{
	struct site *s = sc->env.site;
	int64_t now = site_now(s), life = lease_seconds(s);
	struct amtprov_error err;

	for (size_t i = 0; leasing(&sc->env) && i < N_TASKS; i++) {
		struct running *r = &sc->running[i];

		if (!r->busy || now - r->renewed < life / 3)
			continue;
		amtprov_error_clear(&err);
		if (store_task_claim(site_store(s), tasks[i].name, sc->host_id, now, now + life,
				     &err) != AMTPROV_OK) {
			alog(site_log(s), AMTPROV_LOG_WARNING,
			     "task %s: cannot renew its lease: %s", tasks[i].name, err.msg);
			continue;
		}
		r->renewed = now;
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
	renew_running(s);
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
	/* The env keeps a copy of the id: the caller's may not outlive the scheduler. */
	if (env->host_id)
		util_strlcpy(s->host_id, env->host_id, sizeof(s->host_id));
	s->env.host_id = s->host_id;
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
	/* A run abandoned at shutdown never reports: another host may take it up now rather
	 * than when the lease runs out (it is still due, nothing was recorded). */
	for (size_t i = 0; i < N_TASKS; i++)
		if (s->running[i].busy)
			lease_release(&s->env, &tasks[i]);
	free(s);
}
