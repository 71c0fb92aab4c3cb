/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "Evaluate Provisioned AMT Computer Certificates" (R-WS-03, R-WS-04): every provisioned
 * device whose active web server certificate has renew_within_days or fewer left is
 * moved to NEED_RENEWAL; amtprovd's engine renews it (flow_renew.c). A device reached over
 * wireless is reported (8206) and left for the next run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "scheduler.h"
#include "status.h"
#include "util.h"

struct eval {
	const struct task_env *env;
	int64_t now, within;
	int64_t *ids;
	size_t n, cap;
	int renew, wireless, checked;
};

static int collect(void *ctx, const struct store_device *d)
{
	struct eval *e = ctx;

	if (e->n == e->cap) {
		size_t nc = e->cap ? 2 * e->cap : 64;
		int64_t *ni = realloc(e->ids, nc * sizeof(*ni));

		if (!ni)
			return 1;
		e->ids = ni;
		e->cap = nc;
	}
	e->ids[e->n++] = d->id;
	return 0;
}

static void evaluate(struct eval *e, int64_t id)
{
	struct site *s = e->env->site;
	struct store *st = site_store(s);
	struct store_device d;
	struct store_cert c;
	struct amtprov_error err;
	char detail[STORE_TEXT_SIZE];
	int64_t cert;

	amtprov_error_clear(&err);
	if (store_device_get(st, id, &d, &err) != AMTPROV_OK || strcmp(d.state, "PROVISIONED"))
		return;
	cert = lifecycle_web_cert(s, d.id, 1);
	if (!cert || store_cert_get(st, cert, &c, &err) != AMTPROV_OK)
		return;
	e->checked++;
	if (c.not_after - e->now > e->within)
		return;
	if (lifecycle_over_wireless(&d)) {
		snprintf(detail, sizeof(detail), "R-WS-04: serial %.64s has %lld days left; the "
			 "device is reached over wireless, renewal retried at the next run",
			 c.serial_hex, (long long)((c.not_after - e->now) / 86400));
		site_status(s, STATUS_RENEWAL_SKIPPED_WIRELESS, d.fqdn, detail);
		e->wireless++;
		return;
	}
	snprintf(detail, sizeof(detail), "R-WS-03: serial %.64s has %lld days left", c.serial_hex,
		 (long long)((c.not_after - e->now) / 86400));
	if (store_device_transition(st, d.id, "PROVISIONED", "NEED_RENEWAL", 0, "", 0,
				    "task:" TASK_EVALUATE_CERTS, e->now, &err) == AMTPROV_OK) {
		alog(site_log(s), AMTPROV_LOG_INFO, "%s: renewal due: %s", d.fqdn, detail);
		e->renew++;
	}
}

void task_evaluate_certificates(const struct task_env *env, struct task_result *out)
{
	struct manifest *m = site_manifest(env->site);
	struct eval e = {.env = env, .now = site_now(env->site)};
	struct amtprov_error err;

	e.within = (int64_t)m->maintenance.renew_within_days * 86400;
	amtprov_error_clear(&err);
	out->code = store_device_list(site_store(env->site), "PROVISIONED", collect, &e, &err);
	for (size_t i = 0; out->code == AMTPROV_OK && i < e.n; i++)
		evaluate(&e, e.ids[i]);
	free(e.ids);
	if (out->code != AMTPROV_OK) {
		snprintf(out->detail, sizeof(out->detail), "%s", err.msg);
		return;
	}
	out->worked = e.renew + e.wireless > 0;
	snprintf(out->detail, sizeof(out->detail), "%d certificate%s checked, %d due for renewal "
		 "(%d days or fewer), %d skipped over wireless", e.checked, e.checked == 1 ? "" : "s",
		 e.renew, m->maintenance.renew_within_days, e.wireless);
	if (e.renew && env->engine)
		engine_kick(env->engine);
}
