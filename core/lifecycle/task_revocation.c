/* SPDX-License-Identifier: Apache-2.0 */
/* The revocation queue as a maintenance task (scheduler.h); the queue itself is revoke.c. */
#include <stdio.h>
#include <stdlib.h>

#include "engine.h"
#include "revoke.h"
#include "scheduler.h"

/* The maintenance task "revocation-queue" (scheduler.h). CA calls may block (ca.h), so
 * under amtprovd's scheduler they run on a worker and the task reports when they are done;
 * without one (unit tests) it runs synchronously. */
struct revoke_run {
	struct task_env env;
	struct revoke_batch *b;
};

static void revoke_run_free(void *arg)
{
	struct revoke_run *r = arg;

	revoke_batch_free(r->b);
	free(r);
}

static int revoke_run_call(void *arg, struct amtprov_error *err)
{
	(void)err;
	revoke_batch_call(((struct revoke_run *)arg)->b);
	return AMTPROV_OK;
}

static int count_cert(void *ctx, const struct store_cert *c)
{
	(void)c;
	(*(int64_t *)ctx)++;
	return 0;
}

/* The run's own count alone read as the site's ("1 revoked" after a block and an
 * unprovision revoked two: the unprovision step revokes its device's certificates itself),
 * so the detail says both: this run's, and every certificate the site has revoked. */
static void revoke_result(struct site *s, struct task_result *out, int done, int left)
{
	struct store_cert_filter f = {.status = STORE_CERT_REVOKED};
	struct amtprov_error err;
	int64_t all = 0;

	amtprov_error_clear(&err);
	out->code = AMTPROV_OK;
	out->worked = done + left > 0;
	if (store_cert_list(site_store(s), &f, count_cert, &all, &err) == AMTPROV_OK)
		snprintf(out->detail, sizeof(out->detail),
			 "this run revoked %d, %d still queued; %lld certificate%s revoked in all",
			 done, left, (long long)all, all == 1 ? "" : "s");
	else
		snprintf(out->detail, sizeof(out->detail), "this run revoked %d, %d still queued",
			 done, left);
}

static void revoke_run_done(int rc, const struct amtprov_error *err, void *arg)
{
	struct revoke_run *r = arg;
	struct task_result res = {0};
	int done = 0, left = 0;

	(void)rc;
	(void)err;
	revoke_batch_record(r->env.site, r->b, &done, &left);
	revoke_result(r->env.site, &res, done, left);
	sched_task_done(r->env.sched, TASK_REVOCATION_QUEUE, &res);
	revoke_run_free(r);
}

void task_revocation_queue(const struct task_env *env, struct task_result *out)
{
	struct revoke_batch *b;
	struct revoke_run *r;
	struct amtprov_error err;
	int done = 0, left = 0;

	if (!env->engine || !env->sched) {
		revoke_process_due(env->site, &done, &left, NULL);
		revoke_result(env->site, out, done, left);
		return;
	}
	b = revoke_batch_due(env->site, 0);
	if (!b) {
		revoke_result(env->site, out, 0, 0);
		return;
	}
	r = calloc(1, sizeof(*r));
	amtprov_error_clear(&err);
	if (!r)
		amtprov_error_set(&err, AMTPROV_E_NOMEM, NULL, "out of memory");
	if (r) {
		r->env = *env;
		r->b = b;
		if (engine_offload(env->engine, revoke_run_call, revoke_run_done, revoke_run_free, r,
				   &err) == AMTPROV_OK) {
			out->pending = 1;
			return;
		}
		free(r);
	}
	/* No worker to be had (the engine is stopping, or no memory). Calling the CAs here
	 * would block the event loop for as long as a CA takes, and act before the store's
	 * sync ticket passed (store_sync.h): the revocations stay queued, due as they were,
	 * for the next run (or the next start). */
	revoke_batch_release(env->site, b);
	out->code = err.code != AMTPROV_OK ? err.code : AMTPROV_E_INTERNAL;
	snprintf(out->detail, sizeof(out->detail), "not run, the revocations stay queued: %s",
		 err.msg[0] ? err.msg : "no worker");
}
