/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The core drives an asynchronous transport from the engine's event loop: many devices'
 * operations in flight at once through one descriptor, no thread per device, results and
 * AMT errors handed back to each device's step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <event2/event.h>

#include "device_state.h"
#include "engine.h"
#include "store.h"
#include "store_sync.h"
#include "test_util.h"
#include "transport_loop.h"

struct tl_fixture {
	char *dir;
	char *db;
	struct store *st;
	struct alog *log;
	struct plugin_host *ph;
	struct plugin_instance *pi;
	struct engine *e;
	struct tloop *t;
	int max_pending;
	int versions_ok;
	int failures;
};

/* Per-device job state: open a session, run two ops, close. */
struct tl_job {
	struct tl_fixture *f;
	struct engine_job *job;
	void *session;
	struct amtprov_device_info info;
	char fqdn[STORE_FQDN_SIZE];
	char want_version[32];
};

static void quiet(void *ctx, int level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

static void job_end(struct tl_job *j, enum device_state next, int rc, const char *why)
{
	tloop_session_close(j->f->t, j->session);
	engine_job_done(j->job, next, rc, why);
	free(j);
}

static void on_state(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	struct tl_job *j = ctx;

	if (rc != AMTPROV_OK) {
		j->f->failures++;
		job_end(j, DS_INVALID, rc, err->msg);
		return;
	}
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(result, "state")), "pre");
	job_end(j, DS_NEED_CERTIFICATE, AMTPROV_OK, NULL);
}

static void on_version(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	struct tl_job *j = ctx;
	struct amtprov_error e2;
	const char *v;

	if (rc != AMTPROV_OK) {
		j->f->failures++;
		job_end(j, DS_INVALID, rc, err->msg);
		return;
	}
	v = json_string_value(json_object_get(result, "version"));
	if (v && strcmp(v, j->want_version) == 0)
		j->f->versions_ok++;
	amtprov_error_clear(&e2);
	if (tloop_call(j->f->t, j->session, AMTPROV_AMT_GET_SETUP_STATE, NULL, on_state, j, &e2) !=
	    AMTPROV_OK)
		job_end(j, DS_INVALID, e2.code, e2.msg);
}

static void step_check(struct engine_job *job, void *ctx)
{
	struct tl_fixture *f = ctx;
	const struct store_device *d = engine_job_device(job);
	struct tl_job *j = calloc(1, sizeof(*j));
	struct amtprov_transport_target tgt;
	struct amtprov_error err;
	int major = 0, minor = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	j->f = f;
	j->job = job;
	snprintf(j->fqdn, sizeof(j->fqdn), "%s", d->fqdn);
	sscanf(d->amt_version, "%d.%d", &major, &minor);
	snprintf(j->want_version, sizeof(j->want_version), "%d.%d.0", major, minor);
	j->info = (struct amtprov_device_info){.struct_size = sizeof(j->info), .fqdn = j->fqdn,
					       .amt_major = major, .amt_minor = minor};
	memset(&tgt, 0, sizeof(tgt));
	tgt.struct_size = sizeof(tgt);
	tgt.device = &j->info;
	tgt.address = "127.0.0.1";
	tgt.port = 16993;
	tgt.mode = AMTPROV_TRANSPORT_PROVISIONING;
	amtprov_error_clear(&err);
	if (tloop_session_open(f->t, &tgt, &j->session, &err) != AMTPROV_OK ||
	    tloop_call(f->t, j->session, AMTPROV_AMT_GET_CORE_VERSION, NULL, on_version, j, &err) !=
		    AMTPROV_OK) {
		if (j->session)
			tloop_session_close(f->t, j->session);
		engine_job_done(job, DS_INVALID, err.code, err.msg);
		free(j);
		return;
	}
	if (tloop_pending(f->t) > f->max_pending)
		f->max_pending = tloop_pending(f->t);
}

static void step_registered(struct engine_job *job, void *ctx)
{
	engine_job_done(job, DS_NEED_DEVICE_CHECK, AMTPROV_OK, NULL);
}

static void setup(struct tl_fixture *f, int n, const char *plugin_config)
{
	struct host_env env = {0};
	struct amtprov_error err;
	struct engine_config cfg = {.max_in_flight = 1000, .workers = 1, .actor = "test"};
	json_t *config;

	memset(f, 0, sizeof(*f));
	f->dir = tu_mkdtemp("tloop");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->dir);
	CU_ASSERT_TRUE_FATAL(asprintf(&f->db, "%s/site.db", f->dir) > 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_open(f->db, STORE_OPEN_CREATE, &f->st, &err), AMTPROV_OK);
	f->log = alog_new("test", AMTPROV_LOG_DEBUG, ALOG_STDERR);
	alog_set_callback(f->log, quiet, NULL);
	store_tx_begin(f->st, &err);
	for (int i = 0; i < n; i++) {
		struct store_device d;

		memset(&d, 0, sizeof(d));
		snprintf(d.fqdn, sizeof(d.fqdn), "pc%04d.contoso.com", i);
		snprintf(d.uuid, sizeof(d.uuid), "00000000-0000-4000-8000-%012d", i);
		snprintf(d.amt_version, sizeof(d.amt_version), "%d.%d.10", 8 + i % 9, i % 3);
		snprintf(d.state, sizeof(d.state), "REGISTERED");
		CU_ASSERT_EQUAL_FATAL(store_device_add(f->st, &d, "test", 1000, &err), AMTPROV_OK);
	}
	store_tx_commit(f->st, &err);
	env.log = f->log;
	f->ph = plugin_host_new(&env);
	CU_ASSERT_EQUAL_FATAL(plugin_host_add_dir(f->ph, AMTPROV_TEST_PLUGIN_DIR, &err), AMTPROV_OK);
	config = json_loads(plugin_config, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(config);
	CU_ASSERT_EQUAL_FATAL(plugin_host_create(f->ph, "amt", "fake-amt", config,
						 AMTPROV_KIND_TRANSPORT, &f->pi, &err),
			      AMTPROV_OK);
	json_decref(config);
	f->e = engine_new(f->st, f->log, &cfg, NULL, NULL, NULL, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->e);
	f->t = tloop_new(engine_base(f->e), f->pi, f->log, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->t);
	engine_set_handler(f->e, DS_REGISTERED, step_registered, f);
	engine_set_handler(f->e, DS_NEED_DEVICE_CHECK, step_check, f);
}

static void teardown(struct tl_fixture *f)
{
	/* The loop watches the engine's base: shut the engine down, free the loop, then the
	 * base. */
	engine_shutdown(f->e);
	tloop_free(f->t);
	engine_free(f->e);
	plugin_host_free(f->ph);
	store_close(f->st);
	alog_free(f->log);
	tu_rmrf(f->dir);
	free(f->dir);
	free(f->db);
}

struct count {
	const char *state;
	int64_t n;
};

static int count_cb(void *ctx, const char *state, int64_t n)
{
	struct count *c = ctx;

	if (strcmp(state, c->state) == 0)
		c->n = n;
	return 0;
}

static int64_t count_in(struct tl_fixture *f, const char *state)
{
	struct count c = {.state = state};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	store_device_count_by_state(f->st, count_cb, &c, &err);
	return c.n;
}

/* 300 devices, each two transport operations, all from one thread through one fd. */
static void test_many_devices_share_one_transport_descriptor(void)
{
	struct tl_fixture f;
	struct amtprov_error err;

	setup(&f, 300, "{\"latency_ms\": 20}");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_run_until_idle(f.e, 60000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(count_in(&f, "NEED_CERTIFICATE"), 300);
	CU_ASSERT_EQUAL(f.versions_ok, 300);
	CU_ASSERT_EQUAL(f.failures, 0);
	/* Operations overlapped: many were in flight at once on the single descriptor. */
	CU_ASSERT_TRUE(f.max_pending >= 100);
	CU_ASSERT_EQUAL(tloop_pending(f.t), 0);
	teardown(&f);
}

/* An AMT error on one device's operation fails that device only, with the AMT reason. */
static void test_amt_error_fails_only_that_device(void)
{
	struct tl_fixture f;
	struct amtprov_error err;
	struct store_device d;

	setup(&f, 10, "{\"latency_ms\": 1, \"fail_op\": 2, \"fail_fqdn\": \"pc0003.contoso.com\"}");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(engine_run_until_idle(f.e, 20000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(count_in(&f, "NEED_CERTIFICATE"), 9);
	CU_ASSERT_EQUAL(store_device_find(f.st, "pc0003.contoso.com", &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "FAILED");
	CU_ASSERT_EQUAL(d.last_error_code, AMTPROV_E_DEVICE);
	CU_ASSERT_TRUE(tu_contains(d.last_error, "AMT_STATUS_INVALID_PARAMETER"));
	teardown(&f);
}

/* An op the transport does not know is refused at once, and nothing waits for it. */
static void test_unknown_op_is_refused_at_once(void)
{
	struct tl_fixture f;
	struct amtprov_error err;
	struct amtprov_device_info info = {.struct_size = sizeof(info), .fqdn = "x.contoso.com"};
	struct amtprov_transport_target tgt = {.struct_size = sizeof(tgt), .device = &info,
					       .address = "127.0.0.1", .port = 16993};
	void *session = NULL;

	setup(&f, 0, "{}");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(tloop_session_open(f.t, &tgt, &session, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(tloop_call(f.t, session, 999, NULL, NULL, NULL, &err),
			AMTPROV_E_NOT_SUPPORTED);
	CU_ASSERT_EQUAL(tloop_pending(f.t), 0);
	tloop_session_close(f.t, session);
	teardown(&f);
}

static void on_gated(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	int *done = ctx;

	(void)result;
	(void)err;
	*done = rc == AMTPROV_OK ? 1 : -1;
}

static int gated_work(void *arg, struct amtprov_error *err)
{
	(void)err;
	*(int *)arg = 1;
	return AMTPROV_OK;
}

static void gated_done(int rc, const struct amtprov_error *err, void *arg)
{
	(void)err;
	(void)arg;
	CU_ASSERT_EQUAL(rc, AMTPROV_OK);
}

/* R-PROV-13 with deferred syncing (issue 13): after a pending operation is committed on the
 * loop, neither a transport call nor a worker job acts before the syncer synced it. */
static void test_actions_wait_for_the_durable_record(void)
{
	struct tl_fixture f;
	struct amtprov_error err;
	struct amtprov_device_info info = {.struct_size = sizeof(info), .fqdn = "x.contoso.com"};
	struct amtprov_transport_target tgt = {.struct_size = sizeof(tgt), .device = &info,
					       .address = "127.0.0.1", .port = 16993};
	struct store_pending op;
	void *session = NULL;
	int done = 0, worked = 0;
	uint64_t ticket;

	setup(&f, 0, "{\"latency_ms\": 1}");
	amtprov_error_clear(&err);
	store_sync_hold(1);
	memset(&op, 0, sizeof(op));
	snprintf(op.kind, sizeof(op.kind), "ca-poll");
	CU_ASSERT_EQUAL_FATAL(store_pending_add(f.st, &op, 100, &err), AMTPROV_OK);
	ticket = store_sync_ticket();
	CU_ASSERT_TRUE(ticket > 0);
	CU_ASSERT_EQUAL(store_sync_passed(ticket), 0);
	CU_ASSERT_EQUAL_FATAL(tloop_session_open(f.t, &tgt, &session, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(tloop_call(f.t, session, AMTPROV_AMT_GET_CORE_VERSION, NULL, on_gated,
				   &done, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(tloop_deferred(f.t), 1);
	CU_ASSERT_EQUAL(engine_offload(f.e, gated_work, gated_done, NULL, &worked, &err),
			AMTPROV_OK);
	/* Held: a few turns of the loop start nothing. */
	for (int i = 0; i < 20; i++)
		event_base_loop(engine_base(f.e), EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL(tloop_deferred(f.t), 1);
	CU_ASSERT_EQUAL(done, 0);
	CU_ASSERT_EQUAL(__atomic_load_n(&worked, __ATOMIC_SEQ_CST), 0);
	store_sync_hold(0);
	CU_ASSERT_EQUAL(engine_run_until_idle(f.e, 20000, &err), AMTPROV_OK);
	for (int i = 0; i < 20000 && done == 0; i++)
		event_base_loop(engine_base(f.e), EVLOOP_ONCE);
	CU_ASSERT_EQUAL(store_sync_passed(ticket), 1);
	CU_ASSERT_EQUAL(done, 1);
	CU_ASSERT_EQUAL(worked, 1);
	CU_ASSERT_EQUAL(tloop_deferred(f.t), 0);
	tloop_session_close(f.t, session);
	teardown(&f);
}

void register_transport_loop_tests(void);
void register_transport_loop_tests(void)
{
	CU_pSuite s = CU_add_suite("transport_loop", NULL, NULL);

	CU_add_test(s, "300 devices' operations share one transport descriptor, one thread",
		    test_many_devices_share_one_transport_descriptor);
	CU_add_test(s, "an AMT error fails only that device, with the AMT reason",
		    test_amt_error_fails_only_that_device);
	CU_add_test(s, "an unknown op is refused at once", test_unknown_op_is_refused_at_once);
	CU_add_test(s, "calls and worker jobs wait for the durable record's sync (R-PROV-13)",
		    test_actions_wait_for_the_durable_record);
}
