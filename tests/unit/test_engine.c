/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine: many devices at once without a thread per device, persisted transitions,
 * retry with backoff on a driven clock, failure isolation, restart recovery (R-PROV-13).
 * Step handlers here are test doubles; every state a device visits is checked against an
 * allow-list so a state-machine loop fails fast instead of spinning.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "device_state.h"
#include "engine.h"
#include "status.h"
#include "store.h"
#include "test_util.h"

struct fixture {
	char *dir;
	char *dbpath;
	struct store *st;
	struct alog *log;
	int64_t now;
	/* status messages seen */
	int n_retry, n_failed, n_resumed, n_crash_loop;
	/* handler behavior */
	int fail_fqdn_index;      /* device index that fails permanently, -1: none */
	int transient_failures;   /* NEED_CERTIFICATE fails with E_UNREACHABLE this often */
	int bad_transition;       /* NEED_DEVICE_CHECK asks for a forbidden state */
	pthread_mutex_t lock;
	int concurrent, max_concurrent, blocking_calls;
	int visits_outside_allow_list;
	/* devices between their first step and the end of the test flow, and the most seen */
	int in_progress, max_in_progress;
	int order[64], n_order; /* device index at each REGISTERED step, in order */
};

static int64_t fake_now(void *ctx)
{
	return ((struct fixture *)ctx)->now;
}

static void on_status(void *ctx, uint32_t id, const char *device, const char *detail)
{
	struct fixture *f = ctx;

	if (id == STATUS_PROVISIONING_RETRY)
		f->n_retry++;
	else if (id == STATUS_PROVISIONING_FAILED)
		f->n_failed++;
	else if (id == STATUS_STATE_RESUMED)
		f->n_resumed++;
	else if (id == STATUS_CRASH_LOOP)
		f->n_crash_loop++;
}

static void quiet_log(void *ctx, int level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

static int setup(struct fixture *f)
{
	struct amtprov_error err;

	memset(f, 0, sizeof(*f));
	f->fail_fqdn_index = -1;
	f->now = 1800000000;
	pthread_mutex_init(&f->lock, NULL);
	f->dir = tu_mkdtemp("engine");
	if (!f->dir)
		return -1;
	if (asprintf(&f->dbpath, "%s/site.db", f->dir) < 0)
		return -1;
	amtprov_error_clear(&err);
	if (store_open(f->dbpath, STORE_OPEN_CREATE, &f->st, &err) != AMTPROV_OK)
		return -1;
	f->log = alog_new("test", AMTPROV_LOG_DEBUG, ALOG_STDERR);
	alog_set_callback(f->log, quiet_log, NULL);
	return 0;
}

static void teardown(struct fixture *f)
{
	store_close(f->st);
	alog_free(f->log);
	tu_rmrf(f->dir);
	free(f->dir);
	free(f->dbpath);
	pthread_mutex_destroy(&f->lock);
}

static void add_devices(struct fixture *f, int n)
{
	for (int i = 0; i < n; i++) {
		struct store_device d;
		struct amtprov_error err;

		memset(&d, 0, sizeof(d));
		snprintf(d.fqdn, sizeof(d.fqdn), "pc%04d.contoso.com", i);
		snprintf(d.uuid, sizeof(d.uuid), "00000000-0000-4000-8000-%012d", i);
		snprintf(d.amt_version, sizeof(d.amt_version), "11.8.50");
		snprintf(d.state, sizeof(d.state), "REGISTERED");
		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL_FATAL(store_device_add(f->st, &d, "test", f->now, &err), AMTPROV_OK);
	}
}

static struct engine *make_engine(struct fixture *f, int max_in_flight)
{
	struct engine_config cfg = {
		.max_in_flight = max_in_flight,
		.workers = 2,
		.retry_base_seconds = 60,
		.retry_max_seconds = 600,
		.max_attempts = 3,
		.scan_interval_ms = 10,
		.actor = "test",
	};
	struct amtprov_error err;
	struct engine *e;

	amtprov_error_clear(&err);
	e = engine_new(f->st, f->log, &cfg, fake_now, f, on_status, f, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	return e;
}

static int device_index(const struct store_device *d)
{
	int i = -1;

	sscanf(d->fqdn, "pc%d.", &i);
	return i;
}

/* The states this test flow may visit: REGISTERED -> NEED_DEVICE_CHECK -> NEED_CERTIFICATE
 * -> NEED_FIRST_STAGE (where the test flow ends), plus FAILED. */
static void check_allowed(struct fixture *f, enum device_state s)
{
	switch (s) {
	case DS_REGISTERED:
	case DS_NEED_DEVICE_CHECK:
	case DS_NEED_CERTIFICATE:
		break;
	default:
		pthread_mutex_lock(&f->lock);
		f->visits_outside_allow_list++;
		pthread_mutex_unlock(&f->lock);
	}
}

static void step_registered(struct engine_job *job, void *ctx)
{
	struct fixture *f = ctx;

	check_allowed(ctx, engine_job_state(job));
	if (++f->in_progress > f->max_in_progress)
		f->max_in_progress = f->in_progress;
	if (f->n_order < (int)(sizeof(f->order) / sizeof(f->order[0])))
		f->order[f->n_order++] = device_index(engine_job_device(job));
	engine_job_done(job, DS_NEED_DEVICE_CHECK, AMTPROV_OK, NULL);
}

/* A step that blocks on a worker thread, like a CA or directory call. */
static int slow_call(void *arg, struct amtprov_error *err)
{
	struct fixture *f = arg;

	pthread_mutex_lock(&f->lock);
	f->blocking_calls++;
	pthread_mutex_unlock(&f->lock);
	usleep(1000);
	return AMTPROV_OK;
}

static void slow_done(struct engine_job *job, int rc, const struct amtprov_error *err, void *arg)
{
	struct fixture *f = arg;

	pthread_mutex_lock(&f->lock);
	f->concurrent--;
	pthread_mutex_unlock(&f->lock);
	if (f->bad_transition) {
		engine_job_done(job, DS_PROVISIONED, AMTPROV_OK, NULL); /* skips the flow */
		return;
	}
	if (device_index(engine_job_device(job)) == f->fail_fqdn_index) {
		engine_job_done(job, DS_INVALID, AMTPROV_E_VERIFY, "OTP hash does not match");
		return;
	}
	engine_job_done(job, DS_NEED_CERTIFICATE, rc, NULL);
}

static void step_device_check(struct engine_job *job, void *ctx)
{
	struct fixture *f = ctx;
	struct amtprov_error err;

	check_allowed(f, engine_job_state(job));
	/* The engine persisted the -ING state before calling us. */
	CU_ASSERT_STRING_EQUAL(engine_job_device(job)->state, "CHECKING_DEVICE");
	pthread_mutex_lock(&f->lock);
	if (++f->concurrent > f->max_concurrent)
		f->max_concurrent = f->concurrent;
	pthread_mutex_unlock(&f->lock);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_job_blocking(job, slow_call, slow_done, f, &err), AMTPROV_OK);
}

static void step_certificate(struct engine_job *job, void *ctx)
{
	struct fixture *f = ctx;

	check_allowed(f, engine_job_state(job));
	if (f->transient_failures > 0) {
		f->transient_failures--;
		engine_job_done(job, DS_INVALID, AMTPROV_E_UNREACHABLE, "CA unreachable");
		return;
	}
	f->in_progress--;
	engine_job_done(job, DS_NEED_FIRST_STAGE, AMTPROV_OK, NULL);
}

static void set_handlers(struct engine *e, struct fixture *f)
{
	engine_set_handler(e, DS_REGISTERED, step_registered, f);
	engine_set_handler(e, DS_NEED_DEVICE_CHECK, step_device_check, f);
	engine_set_handler(e, DS_NEED_CERTIFICATE, step_certificate, f);
}

struct count_ctx {
	const char *state;
	int64_t n;
};

static int count_cb(void *ctx, const char *state, int64_t count)
{
	struct count_ctx *c = ctx;

	if (strcmp(state, c->state) == 0)
		c->n = count;
	return 0;
}

static int64_t count_in(struct fixture *f, const char *state)
{
	struct count_ctx c = {.state = state};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	store_device_count_by_state(f->st, count_cb, &c, &err);
	return c.n;
}

/* Many devices, bounded concurrency, no thread per device: 300 devices with at most 16 in
 * flight and 2 worker threads all reach the end of the flow. */
static void test_many_devices_bounded_concurrency(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 300);
	e = make_engine(&f, 16);
	set_handlers(e, &f);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 60000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(count_in(&f, "NEED_FIRST_STAGE"), 300);
	CU_ASSERT_TRUE(f.max_concurrent <= 16);
	CU_ASSERT_TRUE(f.max_concurrent >= 2);
	CU_ASSERT_EQUAL(f.blocking_calls, 300);
	CU_ASSERT_EQUAL(f.visits_outside_allow_list, 0);
	CU_ASSERT_EQUAL(engine_in_flight(e), 0);
	engine_free(e);
	teardown(&f);
}

/* Depth first (issue 13): a device's next step takes the slot its last step left, so a
 * device runs its steps back to back (its transport link is still parked for the next one)
 * and new devices start only as others leave the flow. Breadth first, all 200 devices would
 * be between their first and last step at once, each waiting a round over the others. */
static void test_steps_of_a_device_run_back_to_back(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 200);
	e = make_engine(&f, 8);
	set_handlers(e, &f);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 60000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(count_in(&f, "NEED_FIRST_STAGE"), 200);
	CU_ASSERT_EQUAL(f.in_progress, 0);
	CU_ASSERT_TRUE(f.max_in_progress >= 2);
	CU_ASSERT_TRUE(f.max_in_progress <= 8);
	CU_ASSERT_EQUAL(f.visits_outside_allow_list, 0);
	engine_free(e);
	teardown(&f);

	/* One in flight: each device's whole flow before the next device starts. */
	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 5);
	e = make_engine(&f, 1);
	set_handlers(e, &f);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 60000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(count_in(&f, "NEED_FIRST_STAGE"), 5);
	CU_ASSERT_EQUAL(f.max_in_progress, 1);
	CU_ASSERT_EQUAL(f.n_order, 5);
	for (int i = 0; i < f.n_order; i++)
		CU_ASSERT_EQUAL(f.order[i], i);
	engine_free(e);
	teardown(&f);
}

/* The idle hook (issue 13, nothing idles in the transport): called once per device when
 * its steps stop following each other, never between two steps of its flow. */
struct idle_count {
	int per_device[20];
	int total;
	struct engine *e;
};

static void count_idle(void *ctx, const struct store_device *dev)
{
	struct idle_count *c = ctx;
	int i = device_index(dev);

	c->total++;
	if (i >= 0 && i < 20)
		c->per_device[i]++;
}

static void test_idle_hook_once_when_steps_stop_following(void)
{
	struct fixture f;
	struct idle_count c = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 20);
	c.e = make_engine(&f, 4);
	set_handlers(c.e, &f);
	engine_set_idle_hook(c.e, count_idle, &c);
	f.transient_failures = 1; /* one device waits for its retry: idle there */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_run_until_idle(c.e, 60000, &err), AMTPROV_OK);
	/* 19 devices reached NEED_FIRST_STAGE (no handler here: the end of this flow); one
	 * waits in NEED_CERTIFICATE for its retry. Each went idle exactly once. */
	CU_ASSERT_EQUAL(count_in(&f, "NEED_FIRST_STAGE"), 19);
	CU_ASSERT_EQUAL(count_in(&f, "NEED_CERTIFICATE"), 1);
	CU_ASSERT_EQUAL(c.total, 20);
	for (int i = 0; i < 20; i++)
		CU_ASSERT_EQUAL(c.per_device[i], 1);
	engine_free(c.e);
	teardown(&f);
}

/* The ramp (issue 13 item 4): steps that stay in flight until the test ends them. */
struct ramp_fixture {
	struct engine_job *jobs[16];
	int n;
};

static void step_parked(struct engine_job *job, void *ctx)
{
	struct ramp_fixture *r = ctx;

	CU_ASSERT_FATAL(r->n < 16);
	r->jobs[r->n++] = job;
}

/* Ends the parked step of device @p index with @p next; @return 0 if it was parked. */
static int ramp_end(struct ramp_fixture *r, int index, enum device_state next)
{
	for (int i = 0; i < r->n; i++) {
		if (device_index(engine_job_device(r->jobs[i])) != index)
			continue;
		engine_job_done(r->jobs[i], next, AMTPROV_OK, NULL);
		r->jobs[i] = r->jobs[--r->n];
		return 0;
	}
	return -1;
}

/* Which step device @p index has in flight (DS_INVALID: none). */
static enum device_state ramp_step(struct ramp_fixture *r, int index)
{
	for (int i = 0; i < r->n; i++)
		if (device_index(engine_job_device(r->jobs[i])) == index)
			return engine_job_state(r->jobs[i]);
	return DS_INVALID;
}

/* At most max_starting devices the scan started are in a flow at once, however large
 * max_in_flight; a device in a flow keeps its place from step to step (its follow-up
 * starts even when the ramp is full), and its place goes to the next device when its steps
 * stop following each other. Driven scan by scan (engine_kick), no loop, no clock. */
static void test_ramp_bounds_devices_starting(void)
{
	struct engine_config cfg = {.max_in_flight = 8, .max_starting = 2, .workers = 1,
				    .scan_interval_ms = 60000, .actor = "test"};
	struct ramp_fixture r = {0};
	struct amtprov_error err;
	struct fixture f;
	struct engine *e;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 7);
	amtprov_error_clear(&err);
	e = engine_new(f.st, f.log, &cfg, fake_now, &f, on_status, &f, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	/* REGISTERED and NEED_DEVICE_CHECK stay in flight; NEED_CERTIFICATE has no handler
	 * here, so a device's flow ends there. */
	engine_set_handler(e, DS_REGISTERED, step_parked, &r);
	engine_set_handler(e, DS_NEED_DEVICE_CHECK, step_parked, &r);

	engine_kick(e);
	CU_ASSERT_EQUAL(engine_in_flight(e), 2); /* 7 due, 8 allowed in flight: the ramp */
	CU_ASSERT_EQUAL(ramp_step(&r, 0), DS_REGISTERED);
	CU_ASSERT_EQUAL(ramp_step(&r, 1), DS_REGISTERED);
	engine_kick(e);
	CU_ASSERT_EQUAL(engine_in_flight(e), 2);

	/* Device 0's next step goes on at once, in its place: no new device. */
	CU_ASSERT_EQUAL(ramp_end(&r, 0, DS_NEED_DEVICE_CHECK), 0);
	engine_kick(e);
	CU_ASSERT_EQUAL(engine_in_flight(e), 2);
	CU_ASSERT_EQUAL(ramp_step(&r, 0), DS_NEED_DEVICE_CHECK);
	CU_ASSERT_EQUAL(ramp_step(&r, 2), DS_INVALID);

	/* Device 0's flow ends (nothing runs NEED_CERTIFICATE): device 2 takes its place. */
	CU_ASSERT_EQUAL(ramp_end(&r, 0, DS_NEED_CERTIFICATE), 0);
	engine_kick(e);
	CU_ASSERT_EQUAL(engine_in_flight(e), 2);
	CU_ASSERT_EQUAL(ramp_step(&r, 2), DS_REGISTERED);
	CU_ASSERT_EQUAL(ramp_step(&r, 3), DS_INVALID);

	/* Both flows go on while the ramp is full: follow-ups never wait for room. */
	CU_ASSERT_EQUAL(ramp_end(&r, 1, DS_NEED_DEVICE_CHECK), 0);
	CU_ASSERT_EQUAL(ramp_end(&r, 2, DS_NEED_DEVICE_CHECK), 0);
	engine_kick(e);
	CU_ASSERT_EQUAL(engine_in_flight(e), 2);
	CU_ASSERT_EQUAL(ramp_step(&r, 1), DS_NEED_DEVICE_CHECK);
	CU_ASSERT_EQUAL(ramp_step(&r, 2), DS_NEED_DEVICE_CHECK);

	/* Both end: the next two start, and so on to the last. */
	for (int next = 3; next < 7; next += 2) {
		for (int d = next - 2; d < next; d++)
			if (ramp_step(&r, d) == DS_REGISTERED)
				CU_ASSERT_EQUAL(ramp_end(&r, d, DS_NEED_DEVICE_CHECK), 0);
		engine_kick(e);
		CU_ASSERT_EQUAL(engine_in_flight(e), 2);
		for (int d = next - 2; d < next; d++)
			CU_ASSERT_EQUAL(ramp_end(&r, d, DS_NEED_CERTIFICATE), 0);
		engine_kick(e);
		CU_ASSERT_EQUAL(engine_in_flight(e), 2);
		CU_ASSERT_EQUAL(ramp_step(&r, next), DS_REGISTERED);
		CU_ASSERT_EQUAL(ramp_step(&r, next + 1), DS_REGISTERED);
	}
	CU_ASSERT_EQUAL(count_in(&f, "NEED_CERTIFICATE"), 5);
	CU_ASSERT_EQUAL(f.n_failed, 0);
	engine_free(e);
	teardown(&f);
}

/* Each transition is persisted with an audit record "FROM -> TO" (R-PROV-13). */
struct audit_ctx {
	int n;
	char last[STORE_TEXT_SIZE];
};

static int audit_cb(void *ctx, const struct store_audit *a)
{
	struct audit_ctx *c = ctx;

	if (strcmp(a->action, "state") == 0) {
		c->n++;
		snprintf(c->last, sizeof(c->last), "%s", a->detail);
	}
	return 0;
}

static void test_transitions_are_persisted_and_audited(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct store_device d;
	struct audit_ctx ac = {0};

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 1);
	e = make_engine(&f, 4);
	set_handlers(e, &f);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 10000, &err), AMTPROV_OK);
	engine_free(e);
	CU_ASSERT_EQUAL(store_device_find(f.st, "pc0000.contoso.com", &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "NEED_FIRST_STAGE");
	store_audit_list(f.st, d.id, 0, audit_cb, &ac, &err);
	/* REGISTERED->NEED_DEVICE_CHECK, ->CHECKING_DEVICE, ->NEED_CERTIFICATE,
	 * ->REQUESTING_CERTIFICATE, ->NEED_FIRST_STAGE */
	CU_ASSERT_EQUAL(ac.n, 5);
	CU_ASSERT_PTR_NOT_NULL(strstr(ac.last, "REQUESTING_CERTIFICATE -> NEED_FIRST_STAGE"));
	teardown(&f);
}

/* A transient failure goes back to the NEED_ state with backoff; the device is not retried
 * before its time (driven clock), and succeeds once the cause passes. */
static void test_transient_failure_retries_with_backoff(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct store_device d;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 1);
	f.transient_failures = 2;
	e = make_engine(&f, 4);
	set_handlers(e, &f);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 10000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_find(f.st, "pc0000.contoso.com", &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "NEED_CERTIFICATE");
	CU_ASSERT_EQUAL(d.attempts, 1);
	CU_ASSERT_EQUAL(d.last_error_code, AMTPROV_E_UNREACHABLE);
	CU_ASSERT_EQUAL(d.next_attempt_at, f.now + 60);
	CU_ASSERT_EQUAL(f.n_retry, 1);

	/* Not due yet: nothing happens. */
	f.now += 59;
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 10000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(f.transient_failures, 1);

	/* Due: fails again, backoff doubles. */
	f.now += 1;
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 10000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_find(f.st, "pc0000.contoso.com", &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.attempts, 2);
	CU_ASSERT_EQUAL(d.next_attempt_at, f.now + 120);

	/* The cause passed: the step succeeds, attempts reset. */
	f.now += 120;
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 10000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_find(f.st, "pc0000.contoso.com", &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "NEED_FIRST_STAGE");
	CU_ASSERT_EQUAL(d.attempts, 0);
	CU_ASSERT_STRING_EQUAL(d.last_error, "");
	engine_free(e);
	teardown(&f);
}

/* After max_attempts transient failures the device ends in FAILED with the reason. */
static void test_transient_failure_gives_up_after_max_attempts(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct store_device d;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 1);
	f.transient_failures = 100;
	e = make_engine(&f, 4);
	set_handlers(e, &f);
	amtprov_error_clear(&err);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(engine_run_until_idle(e, 10000, &err), AMTPROV_OK);
		f.now += 3600;
	}
	CU_ASSERT_EQUAL(store_device_find(f.st, "pc0000.contoso.com", &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "FAILED");
	CU_ASSERT_EQUAL(d.last_error_code, AMTPROV_E_UNREACHABLE);
	CU_ASSERT_PTR_NOT_NULL(strstr(d.last_error, "CA unreachable"));
	CU_ASSERT_EQUAL(f.n_retry, 2);
	CU_ASSERT_EQUAL(f.n_failed, 1);
	engine_free(e);
	teardown(&f);
}

/* A permanent failure of one device fails that device only, with its reason. */
static void test_one_device_failure_does_not_stop_others(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct store_device d;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 20);
	f.fail_fqdn_index = 7;
	e = make_engine(&f, 8);
	set_handlers(e, &f);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 20000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(count_in(&f, "NEED_FIRST_STAGE"), 19);
	CU_ASSERT_EQUAL(count_in(&f, "FAILED"), 1);
	CU_ASSERT_EQUAL(store_device_find(f.st, "pc0007.contoso.com", &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "FAILED");
	CU_ASSERT_EQUAL(d.last_error_code, AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(d.last_error, "NEED_DEVICE_CHECK failed: OTP hash does not match"));
	CU_ASSERT_EQUAL(f.n_retry, 0);
	engine_free(e);
	teardown(&f);
}

/* R-PROV-13: a step interrupted by a crash is rewound on start and runs again. */
static void test_recover_rewinds_interrupted_steps(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct store_device d;
	int rewound = -1;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 3);
	amtprov_error_clear(&err);
	/* As a crash would leave them: one mid device check, one mid CA request. */
	CU_ASSERT_EQUAL(store_device_transition(f.st, 1, "REGISTERED", "NEED_DEVICE_CHECK", 0, "", 0,
						"test", f.now, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_transition(f.st, 1, "NEED_DEVICE_CHECK", "CHECKING_DEVICE", 0,
						"", 0, "test", f.now, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_transition(f.st, 2, "REGISTERED", "NEED_DEVICE_CHECK", 0, "", 0,
						"test", f.now, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_transition(f.st, 2, "NEED_DEVICE_CHECK", "CHECKING_DEVICE", 0,
						"", 0, "test", f.now, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_transition(f.st, 2, "CHECKING_DEVICE", "NEED_CERTIFICATE", 0,
						"", 0, "test", f.now, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_transition(f.st, 2, "NEED_CERTIFICATE",
						"REQUESTING_CERTIFICATE", 0, "", 0, "test", f.now,
						&err), AMTPROV_OK);
	e = make_engine(&f, 4);
	CU_ASSERT_EQUAL(engine_recover(e, &rewound, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(rewound, 2);
	CU_ASSERT_EQUAL(f.n_resumed, 2);
	CU_ASSERT_EQUAL(store_device_get(f.st, 1, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "NEED_DEVICE_CHECK");
	CU_ASSERT_EQUAL(store_device_get(f.st, 2, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "NEED_CERTIFICATE");
	/* ... and the flow continues from there. */
	set_handlers(e, &f);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 10000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(count_in(&f, "NEED_FIRST_STAGE"), 3);
	engine_free(e);
	teardown(&f);
}

/* A handler that asks for a transition the state machine forbids fails the device with an
 * internal error instead of corrupting its state. */
static void test_forbidden_transition_fails_device(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct store_device d;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 1);
	f.bad_transition = 1;
	e = make_engine(&f, 4);
	set_handlers(e, &f);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 10000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_find(f.st, "pc0000.contoso.com", &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "FAILED");
	CU_ASSERT_EQUAL(d.last_error_code, AMTPROV_E_INTERNAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(d.last_error, "CHECKING_DEVICE -> PROVISIONED"));
	engine_free(e);
	teardown(&f);
}

/* A blocked device (R-REV-02d) is never picked up. */
static void test_blocked_device_is_not_worked_on(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct store_device d;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 2);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_get(f.st, 1, &d, &err), AMTPROV_OK);
	d.blocked = 1;
	CU_ASSERT_EQUAL(store_device_update(f.st, &d, "test", f.now, &err), AMTPROV_OK);
	e = make_engine(&f, 4);
	set_handlers(e, &f);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 10000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(f.st, 1, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "REGISTERED");
	CU_ASSERT_EQUAL(store_device_get(f.st, 2, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "NEED_FIRST_STAGE");
	engine_free(e);
	teardown(&f);
}

/* A step still in flight when the engine stops releases its own state through its abort
 * hook (else every shutdown mid-step would leak, and sessions would stay open). */
static int aborted;

static void abort_hook(void *arg)
{
	aborted++;
	free(arg);
}

static void step_never_finishes(struct engine_job *job, void *ctx)
{
	engine_job_set_abort(job, abort_hook, malloc(64));
}

/* Crash-loop guard (R-PROV-13): a device whose step was in flight at every crash is rewound
 * crash_loop_limit times, then set aside as FAILED naming the step (status 8116); the other
 * device, interrupted too, goes on. */
static void test_crash_loop_guard_sets_device_aside(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct store_device d;
	int rewound;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 2);
	amtprov_error_clear(&err);
	for (int64_t id = 1; id <= 2; id++)
		CU_ASSERT_EQUAL(store_device_transition(f.st, id, "REGISTERED", "NEED_DEVICE_CHECK",
							0, "", 0, "test", f.now, &err),
				AMTPROV_OK);
	for (int crash = 1; crash <= 4; crash++) {
		/* The engine entered the step (as start_job does), then the process died. */
		CU_ASSERT_EQUAL(store_device_step(f.st, 1, "NEED_DEVICE_CHECK", "CHECKING_DEVICE",
						  STORE_STEP_BEGIN, 0, "", 0, 0, "test", f.now,
						  &err),
				AMTPROV_OK);
		if (crash == 1)
			CU_ASSERT_EQUAL(store_device_step(f.st, 2, "NEED_DEVICE_CHECK",
							  "CHECKING_DEVICE", STORE_STEP_BEGIN, 0, "",
							  0, 0, "test", f.now, &err),
					AMTPROV_OK);
		e = make_engine(&f, 4);
		rewound = -1;
		CU_ASSERT_EQUAL(engine_recover(e, &rewound, &err), AMTPROV_OK);
		CU_ASSERT_EQUAL(rewound, crash == 1 ? 2 : 1);
		CU_ASSERT_EQUAL(store_device_get(f.st, 1, &d, &err), AMTPROV_OK);
		CU_ASSERT_EQUAL(d.in_flight, crash);
		if (crash <= 3) {
			CU_ASSERT_STRING_EQUAL(d.state, "NEED_DEVICE_CHECK");
			CU_ASSERT_EQUAL(f.n_crash_loop, 0);
		} else {
			CU_ASSERT_STRING_EQUAL(d.state, "FAILED");
			CU_ASSERT_PTR_NOT_NULL(strstr(d.last_error, "crash-loop guard"));
			CU_ASSERT_PTR_NOT_NULL(strstr(d.last_error, "CHECKING_DEVICE"));
			CU_ASSERT_EQUAL(f.n_crash_loop, 1);
		}
		engine_free(e);
	}
	/* The other device was rewound once and goes on; its outcome clears its count. */
	CU_ASSERT_EQUAL(store_device_get(f.st, 2, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.in_flight, 1);
	e = make_engine(&f, 4);
	set_handlers(e, &f);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 10000, &err), AMTPROV_OK);
	engine_free(e);
	CU_ASSERT_EQUAL(store_device_get(f.st, 2, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "NEED_FIRST_STAGE");
	CU_ASSERT_EQUAL(d.in_flight, 0);
	CU_ASSERT_EQUAL(store_device_get(f.st, 1, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "FAILED");
	teardown(&f);
}

/* The engine counts the step in flight when it enters it; an orderly shutdown takes the
 * count back (not a crash), so stopping amtprovd never sets a device aside. */
static void test_step_in_flight_counted_and_orderly_stop_not_a_crash(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct store_device d;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 1);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_transition(f.st, 1, "REGISTERED", "NEED_DEVICE_CHECK", 0, "",
						0, "test", f.now, &err),
			AMTPROV_OK);
	for (int stop = 0; stop < 5; stop++) {
		e = make_engine(&f, 4);
		CU_ASSERT_EQUAL(engine_recover(e, NULL, &err), AMTPROV_OK);
		engine_set_handler(e, DS_NEED_DEVICE_CHECK, step_never_finishes, &f);
		CU_ASSERT_EQUAL(engine_run_until_idle(e, 200, &err), AMTPROV_E_TIMEOUT);
		CU_ASSERT_EQUAL(store_device_get(f.st, 1, &d, &err), AMTPROV_OK);
		CU_ASSERT_STRING_EQUAL(d.state, "CHECKING_DEVICE");
		CU_ASSERT_EQUAL(d.in_flight, 1); /* recorded before the step ran */
		engine_free(e); /* orderly: shutdown abandons the job */
		CU_ASSERT_EQUAL(store_device_get(f.st, 1, &d, &err), AMTPROV_OK);
		CU_ASSERT_STRING_EQUAL(d.state, "CHECKING_DEVICE");
		CU_ASSERT_EQUAL(d.in_flight, 0);
	}
	CU_ASSERT_EQUAL(f.n_crash_loop, 0);
	teardown(&f);
}

static void test_shutdown_runs_abort_hooks_of_jobs_in_flight(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct store_device d;

	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	add_devices(&f, 3);
	e = make_engine(&f, 4);
	engine_set_handler(e, DS_REGISTERED, step_never_finishes, &f);
	aborted = 0;
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 300, &err), AMTPROV_E_TIMEOUT);
	CU_ASSERT_EQUAL(engine_in_flight(e), 3);
	engine_shutdown(e);
	CU_ASSERT_EQUAL(aborted, 3);
	CU_ASSERT_EQUAL(engine_in_flight(e), 0);
	engine_free(e);
	/* REGISTERED has no -ING state: the devices are simply where they were. */
	CU_ASSERT_EQUAL(store_device_get(f.st, 1, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "REGISTERED");
	teardown(&f);
}

/* engine_offload: a call that belongs to no device runs on a worker (never the loop: ca.h),
 * its completion on the loop; run_until_idle waits for it; shutdown releases queued ones. */
struct offload_probe {
	pthread_t loop;
	int ran_off_loop;
	int done_on_loop;
	int done_rc;
	int released;
	int block; /* the worker waits until cleared: keeps later calls queued */
	pthread_mutex_t lock;
};

static int offload_call(void *arg, struct amtprov_error *err)
{
	struct offload_probe *p = arg;

	p->ran_off_loop = !pthread_equal(pthread_self(), p->loop);
	for (;;) {
		int block;

		pthread_mutex_lock(&p->lock);
		block = p->block;
		pthread_mutex_unlock(&p->lock);
		if (!block)
			break;
		usleep(1000);
	}
	return amtprov_error_set(err, AMTPROV_E_UNREACHABLE, "ca", "the CA is down");
}

static void offload_done(int rc, const struct amtprov_error *err, void *arg)
{
	struct offload_probe *p = arg;

	p->done_on_loop = pthread_equal(pthread_self(), p->loop);
	p->done_rc = rc == err->code ? rc : -1;
}

static void offload_release(void *arg)
{
	((struct offload_probe *)arg)->released++;
}

static void test_offload_runs_on_a_worker_and_completes_on_the_loop(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct offload_probe p = {.loop = pthread_self()};

	pthread_mutex_init(&p.lock, NULL);
	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	e = make_engine(&f, 4);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_offload(e, offload_call, offload_done, offload_release, &p, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 5000, &err), AMTPROV_OK);
	CU_ASSERT_TRUE(p.ran_off_loop);
	CU_ASSERT_TRUE(p.done_on_loop);
	CU_ASSERT_EQUAL(p.done_rc, AMTPROV_E_UNREACHABLE);
	CU_ASSERT_EQUAL(p.released, 0);
	engine_free(e);
	teardown(&f);
	pthread_mutex_destroy(&p.lock);
}

static void test_shutdown_releases_offloaded_calls(void)
{
	struct fixture f;
	struct engine *e;
	struct amtprov_error err;
	struct offload_probe busy[2] = {{.loop = pthread_self(), .block = 1},
					{.loop = pthread_self(), .block = 1}};
	struct offload_probe queued = {.loop = pthread_self()};

	pthread_mutex_init(&busy[0].lock, NULL);
	pthread_mutex_init(&busy[1].lock, NULL);
	pthread_mutex_init(&queued.lock, NULL);
	CU_ASSERT_EQUAL_FATAL(setup(&f), 0);
	e = make_engine(&f, 4); /* 2 workers: both held by busy[], so 'queued' waits */
	amtprov_error_clear(&err);
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL(engine_offload(e, offload_call, offload_done, offload_release,
					       &busy[i], &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(engine_offload(e, offload_call, offload_done, offload_release, &queued,
				       &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(engine_run_until_idle(e, 200, &err), AMTPROV_E_TIMEOUT);
	for (int i = 0; i < 2; i++) {
		pthread_mutex_lock(&busy[i].lock);
		busy[i].block = 0;
		pthread_mutex_unlock(&busy[i].lock);
	}
	engine_shutdown(e);
	/* Each call is released exactly once or completed, never both, never lost. */
	CU_ASSERT_EQUAL(queued.released + busy[0].released + busy[1].released +
				(queued.done_on_loop + busy[0].done_on_loop + busy[1].done_on_loop),
			3);
	CU_ASSERT_EQUAL(queued.done_on_loop, 0);
	CU_ASSERT(queued.released == 1 || queued.ran_off_loop);
	engine_free(e);
	teardown(&f);
	for (int i = 0; i < 2; i++)
		pthread_mutex_destroy(&busy[i].lock);
	pthread_mutex_destroy(&queued.lock);
}

static void test_transient_codes(void)
{
	CU_ASSERT_TRUE(engine_error_transient(AMTPROV_E_UNREACHABLE));
	CU_ASSERT_TRUE(engine_error_transient(AMTPROV_E_TIMEOUT));
	CU_ASSERT_TRUE(engine_error_transient(AMTPROV_E_BUSY));
	CU_ASSERT_FALSE(engine_error_transient(AMTPROV_E_VERIFY));
	CU_ASSERT_FALSE(engine_error_transient(AMTPROV_E_AUTH));
	CU_ASSERT_FALSE(engine_error_transient(AMTPROV_E_CONFIG));
}

void register_engine_tests(void);
void register_engine_tests(void)
{
	CU_pSuite s = CU_add_suite("engine", NULL, NULL);

	CU_add_test(s, "300 devices finish with bounded concurrency and 2 workers",
		    test_many_devices_bounded_concurrency);
	CU_add_test(s, "a device's steps run back to back, depth first (issue 13)",
		    test_steps_of_a_device_run_back_to_back);
	CU_add_test(s, "the idle hook: once per device when its steps stop following (issue 13)",
		    test_idle_hook_once_when_steps_stop_following);
	CU_add_test(s, "the ramp: at most max_starting devices in a flow, follow-ups first",
		    test_ramp_bounds_devices_starting);
	CU_add_test(s, "each transition is persisted and audited (R-PROV-13)",
		    test_transitions_are_persisted_and_audited);
	CU_add_test(s, "transient failure retries with backoff on the driven clock",
		    test_transient_failure_retries_with_backoff);
	CU_add_test(s, "transient failure ends in FAILED after max attempts",
		    test_transient_failure_gives_up_after_max_attempts);
	CU_add_test(s, "one device's failure does not stop the others",
		    test_one_device_failure_does_not_stop_others);
	CU_add_test(s, "restart rewinds interrupted steps and resumes (R-PROV-13)",
		    test_recover_rewinds_interrupted_steps);
	CU_add_test(s, "crash-loop guard sets a device aside naming its step (R-PROV-13)",
		    test_crash_loop_guard_sets_device_aside);
	CU_add_test(s, "step in flight counted; an orderly stop is not a crash (R-PROV-13)",
		    test_step_in_flight_counted_and_orderly_stop_not_a_crash);
	CU_add_test(s, "a forbidden transition fails the device, not the state machine",
		    test_forbidden_transition_fails_device);
	CU_add_test(s, "a blocked device is not worked on (R-REV-02d)",
		    test_blocked_device_is_not_worked_on);
	CU_add_test(s, "shutdown releases the state of steps in flight (abort hooks)",
		    test_shutdown_runs_abort_hooks_of_jobs_in_flight);
	CU_add_test(s, "transient error codes", test_transient_codes);
	CU_add_test(s, "an offloaded call runs on a worker and completes on the loop",
		    test_offload_runs_on_a_worker_and_completes_on_the_loop);
	CU_add_test(s, "shutdown releases offloaded calls, none lost or run twice",
		    test_shutdown_releases_offloaded_calls);
}
