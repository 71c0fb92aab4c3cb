/* SPDX-License-Identifier: Apache-2.0 */
/* A device's certificates as the site database has them (device_certs.h). */
#include "device_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "status.h"
#include "util.h"

struct newest {
	int active_only;
	int64_t id;
};

static int newest_web(void *ctx, const struct store_cert *c)
{
	struct newest *n = ctx;

	if (c->purpose == AMTPROV_PURPOSE_WEB_SERVER &&
	    (!n->active_only || strcmp(c->status, STORE_CERT_ACTIVE) == 0) && c->id > n->id)
		n->id = c->id;
	return 0;
}

int64_t device_certs_web(struct site *s, int64_t device_id, int active_only)
{
	struct store_cert_filter f = {.device_id = device_id};
	struct newest n = {.active_only = active_only};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	store_cert_list(site_store(s), &f, newest_web, &n, &err);
	return n.id;
}

int device_certs_over_wireless(const struct store_device *d)
{
	return d->wireless_capable && !d->wired_ip[0];
}

int device_certs_due(struct site *s, const struct store_cert *c)
{
	int64_t within = (int64_t)site_manifest(s)->maintenance.renew_within_days * 86400;

	return c->not_after - site_now(s) <= within;
}

struct due {
	struct site *s;
	int n;
	struct store_cert first;
	int64_t max_id;
};

static int client_due(void *ctx, const struct store_cert *c)
{
	struct due *d = ctx;

	if (c->id > d->max_id)
		d->max_id = c->id;
	if (c->purpose != AMTPROV_PURPOSE_CLIENT_8021X || strcmp(c->status, STORE_CERT_ACTIVE) ||
	    !device_certs_due(d->s, c))
		return 0;
	if (!d->n++ || c->not_after < d->first.not_after)
		d->first = *c;
	return 0;
}

int device_certs_client_due(struct site *s, int64_t device_id, struct store_cert *first)
{
	struct store_cert_filter f = {.device_id = device_id};
	struct due d = {.s = s};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	store_cert_list(site_store(s), &f, client_due, &d, &err);
	if (d.n && first)
		*first = d.first;
	return d.n;
}

struct update_marks {
	int64_t ids[16];
	size_t n;
	int64_t newest_op, from_id;
};

static int update_mark_cb(void *ctx, const struct store_pending *op)
{
	struct update_marks *u = ctx;
	json_t *p;

	if (strcmp(op->kind, DEVICE_CERTS_8021X_UPDATE_KIND))
		return 0;
	if (u->n < sizeof(u->ids) / sizeof(u->ids[0]))
		u->ids[u->n++] = op->id;
	if (op->id > u->newest_op) {
		p = json_loads(op->payload, 0, NULL);
		u->newest_op = op->id;
		u->from_id = json_integer_value(json_object_get(p, "from_id"));
		json_decref(p);
	}
	return 0;
}

int64_t device_certs_8021x_update_mark(struct site *s, int64_t device_id, int remove)
{
	struct update_marks u = {0};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	store_pending_list(site_store(s), device_id, update_mark_cb, &u, &err);
	for (size_t i = 0; remove && i < u.n; i++)
		store_pending_done(site_store(s), u.ids[i], &err);
	return u.from_id;
}

/* R-REV-04: with 802.1X templates configured, an update replaces the client certificates
 * the device has now. The request records which ones (those recorded so far), so a retried
 * or interrupted update keeps the certificates it has issued itself. */
int device_certs_8021x_mark_update(struct site *s, int64_t device_id, struct amtprov_error *err)
{
	struct store *st = site_store(s);
	struct store_cert_filter f = {.device_id = device_id};
	struct due d = {.s = s};
	struct store_pending op;

	if (store_cert_list(st, &f, client_due, &d, err) != AMTPROV_OK)
		return err->code;
	device_certs_8021x_update_mark(s, device_id, 1); /* an older request's, never run */
	memset(&op, 0, sizeof(op));
	op.device_id = device_id;
	util_strlcpy(op.kind, DEVICE_CERTS_8021X_UPDATE_KIND, sizeof(op.kind));
	snprintf(op.payload, sizeof(op.payload), "{\"from_id\":%lld}", (long long)d.max_id + 1);
	/* Not due before the update runs: nothing polls it, the 802.1X step reads it. */
	return store_pending_add(st, &op, site_now(s), err);
}
