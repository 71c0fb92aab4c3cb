/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "Evaluate Provisioned AMT Computer Certificates" (R-WS-03, R-WS-04, R-8021X-06): every
 * provisioned device whose active web server certificate or one of whose active 802.1X
 * client certificates has renew_within_days or fewer left is moved to NEED_RENEWAL;
 * amtprovd's engine renews what is due (flow_renew.c). A device reached over wireless is
 * reported (8206) and left for the next run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "device_certs.h"
#include "scheduler.h"
#include "status.h"
#include "util.h"

struct eval {
	const struct task_env *env;
	int64_t now, within;
	int64_t *ids;
	size_t n, cap;
	int renew, wireless, checked, certs;
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

struct actives {
	int web, client; /* active web server and 802.1X client certificates */
};

static int count_active(void *ctx, const struct store_cert *c)
{
	struct actives *a = ctx;

	if (strcmp(c->status, STORE_CERT_ACTIVE) != 0)
		return 0;
	if (c->purpose == AMTPROV_PURPOSE_WEB_SERVER)
		a->web++;
	else if (c->purpose == AMTPROV_PURPOSE_CLIENT_8021X)
		a->client++;
	return 0;
}

static void evaluate(struct eval *e, int64_t id)
{
	struct site *s = e->env->site;
	struct store *st = site_store(s);
	struct store_device d;
	struct store_cert c, c2;
	struct amtprov_error err;
	char detail[STORE_TEXT_SIZE];
	int64_t cert;
	struct actives actives = {0};
	int web_due, clients;

	amtprov_error_clear(&err);
	if (store_device_get(st, id, &d, &err) != AMTPROV_OK || strcmp(d.state, "PROVISIONED"))
		return;
	cert = device_certs_web(s, d.id, 1);
	if (!cert || store_cert_get(st, cert, &c, &err) != AMTPROV_OK)
		return;
	e->checked++;
	/* Two active web server certificates: a renewal recorded the newer one and did not
	 * finish installing it (flow_renew.c); it is due whatever its dates. */
	store_cert_list(st, &(struct store_cert_filter){.device_id = d.id}, count_active,
			&actives, &err);
	/* Every certificate looked at counts, not one per device: a device with 802.1X client
	 * certificates has more than one (the count was one short per such device). */
	e->certs += actives.web + (site_manifest(s)->ieee8021x ? actives.client : 0);
	web_due = actives.web > 1 || device_certs_due(s, &c);
	/* R-8021X-06: the client certificates count when the site still configures 802.1X
	 * (renewing them means binding the profiles again). */
	clients = site_manifest(s)->ieee8021x ? device_certs_client_due(s, d.id, &c2) : 0;
	if (!web_due && !clients)
		return;
	if (!web_due)
		c = c2; /* the report names the client certificate that expires first */
	if (device_certs_over_wireless(&d)) {
		snprintf(detail, sizeof(detail), "R-WS-04: serial %.64s (%s) has %lld days left; "
			 "the device is reached over wireless, renewal retried at the next run",
			 c.serial_hex, web_due ? "web server, R-WS-03" : "802.1X client, R-8021X-06",
			 (long long)((c.not_after - e->now) / 86400));
		site_status(s, STATUS_RENEWAL_SKIPPED_WIRELESS, d.fqdn, detail);
		e->wireless++;
		return;
	}
	snprintf(detail, sizeof(detail), "%s: serial %.64s has %lld days left%s%s",
		 web_due ? "R-WS-03" : "R-8021X-06", c.serial_hex,
		 (long long)((c.not_after - e->now) / 86400),
		 actives.web > 1 ? "; it is not installed yet (an interrupted renewal)" : "",
		 web_due && clients ? "; 802.1X client certificates due too" : "");
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
	snprintf(out->detail, sizeof(out->detail), "%d certificate%s of %d device%s checked, %d "
		 "due for renewal (%d days or fewer), %d skipped over wireless", e.certs,
		 e.certs == 1 ? "" : "s", e.checked, e.checked == 1 ? "" : "s", e.renew,
		 m->maintenance.renew_within_days, e.wireless);
	if (e.renew && env->engine)
		engine_kick(env->engine);
}
