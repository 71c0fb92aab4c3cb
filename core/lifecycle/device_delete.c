/* SPDX-License-Identifier: Apache-2.0 */
/* Deleting a device record: see device_delete.h and docs/lifecycle.md. */
#include "device_delete.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_state.h"
#include "flow.h"
#include "lifecycle.h"
#include "revoke.h"
#include "scheduler.h"
#include "status.h"
#include "util.h"

#define MAX_ACTIVE 256

struct certs {
	int total;
	size_t n_active;
	struct store_cert *active; /* MAX_ACTIVE */
	char serials[160];         /* the first active ones, for the refusal */
};

static int count_cert(void *ctx, const struct store_cert *c)
{
	struct certs *k = ctx;

	k->total++;
	if (strcmp(c->status, STORE_CERT_ACTIVE) != 0)
		return 0;
	if (k->n_active < MAX_ACTIVE)
		k->active[k->n_active] = *c;
	if (k->n_active < 3) {
		size_t l = strlen(k->serials);

		snprintf(k->serials + l, sizeof(k->serials) - l, "%s%s", l ? ", " : "",
			 c->serial_hex);
	}
	k->n_active++;
	return 0;
}

/* A directory account exists from "computer account created or found" until the next
 * unprovision removes it (docs/states.md). */
static int account_trail(void *ctx, const struct store_audit *a)
{
	int *has = ctx;

	if (strcmp(a->action, "state") != 0)
		return 0;
	if (strncmp(a->detail, "CREATING_DIRECTORY_ACCOUNT -> NEED_DEVICE_CHECK", 47) == 0)
		*has = 1;
	else if (strstr(a->detail, "-> UNPROVISIONED"))
		*has = 0;
	return 0;
}

static int may_delete_state(enum device_state s)
{
	return s == DS_REGISTERED || s == DS_FAILED || s == DS_UNPROVISIONED;
}

int device_delete(struct site *s, const char *key, const struct device_delete_opts *o,
		  struct device_delete_result *out, struct amtprov_error *err)
{
	struct store *st = site_store(s);
	struct store_cert_filter f = {0};
	struct certs k = {0};
	struct store_device *d = &out->dev;
	enum device_state ds;
	char detail[STORE_TEXT_SIZE], msg[STORE_TEXT_SIZE], full[1024];
	int rc, account = 0;

	memset(out, 0, sizeof(*out));
	rc = store_device_find(st, key, d, err);
	if (rc)
		return rc;
	ds = device_state_parse(d->state);
	if (device_state_in_progress(ds))
		return amtprov_error_set(err, AMTPROV_E_BUSY, d->fqdn,
					 "device is %s: amtprovd is working on it; try again when "
					 "the step is done", d->state);
	if (!may_delete_state(ds) && !o->force)
		return amtprov_error_set(
			err, AMTPROV_E_STATE, d->fqdn,
			"device is %s%s: AMT may hold the site's settings and credentials; run "
			"'amtprov device %s %s' first (it revokes its certificates, removes its "
			"directory account and secrets), then delete it; --force deletes the record "
			"anyway (a device that is gone for good)", d->state,
			ds == DS_BLOCKED ? " (deleting it lifts the block)" : "",
			ds == DS_BLOCKED ? "unblock" : "unprovision", d->fqdn);
	if (ds == DS_FAILED && !o->force && lifecycle_admin_password_on_record(s, d->fqdn))
		return amtprov_error_set(
			err, AMTPROV_E_STATE, d->fqdn,
			"device is FAILED after amtprov gave AMT its admin password: AMT may hold the "
			"site's settings; run 'amtprov device unprovision %s' first (deleting would "
			"drop the only copy of that password); --force deletes the record anyway",
			d->fqdn);
	if (site_manifest(s)->directory) {
		amtprov_error_clear(err);
		if ((rc = store_audit_list(st, d->id, 0, account_trail, &account, err)))
			return rc;
		if (account) {
			flow_account_name(d->fqdn, out->account, sizeof(out->account));
			if (!o->force)
				return amtprov_error_set(
					err, AMTPROV_E_STATE, d->fqdn,
					"its directory computer account %s was created and not removed "
					"since; 'amtprov device unprovision %s' removes it; --force "
					"deletes the record and leaves the account",
					out->account, d->fqdn);
			out->account_left = 1;
		}
	}
	k.active = calloc(MAX_ACTIVE, sizeof(*k.active));
	if (!k.active)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	f.device_id = d->id;
	rc = store_cert_list(st, &f, count_cert, &k, err);
	if (rc == AMTPROV_OK && k.n_active && !o->revoke)
		rc = amtprov_error_set(
			err, AMTPROV_E_STATE, d->fqdn,
			"%zu certificate%s not revoked (serial %s%s): --revoke queues %s revocation "
			"(cessationOfOperation), or 'amtprov device unprovision %s' revokes %s",
			k.n_active, k.n_active == 1 ? " is" : "s are", k.serials,
			k.n_active > 3 ? ", ..." : "", k.n_active == 1 ? "its" : "their", d->fqdn,
			k.n_active == 1 ? "it" : "them");
	if (rc == AMTPROV_OK && k.n_active > MAX_ACTIVE)
		rc = amtprov_error_set(err, AMTPROV_E_STATE, d->fqdn,
				       "%zu active certificates: more than one run queues (%d); run "
				       "it again", k.n_active, MAX_ACTIVE);
	for (size_t i = 0; rc == AMTPROV_OK && i < k.n_active; i++) {
		int q = 0;

		rc = revoke_queue(s, &k.active[i], AMTPROV_REVOKE_CESSATION_OF_OPERATION,
				  "the device record was deleted", &q, err);
		out->revocations_queued += q;
	}
	free(k.active);
	if (rc == AMTPROV_OK && out->revocations_queued)
		rc = store_task_request(st, TASK_REVOCATION_QUEUE, NULL, err);
	if (rc)
		return rc;
	out->certificates = k.total;
	snprintf(full, sizeof(full),
		 "%.255s (uuid %.36s, %.40s) deleted by %.60s; %d certificate%s kept, %d queued "
		 "for revocation%s%.63s",
		 d->fqdn, d->uuid, d->state, o->actor, k.total, k.total == 1 ? "" : "s",
		 out->revocations_queued, out->account_left ? "; directory account left: " : "",
		 out->account_left ? out->account : "");
	util_strlcpy(detail, full, sizeof(detail)); /* the FQDN is whole in the first 255 */
	rc = store_device_delete(st, d->id, d->state, o->actor, detail, site_now(s), err);
	if (rc)
		return rc;
	{
		struct store_device t;

		if (store_device_get(st, d->id, &t, err) == AMTPROV_OK)
			util_strlcpy(out->tombstone, t.fqdn, sizeof(out->tombstone));
		amtprov_error_clear(err);
	}
	/* The record is gone first: a device that stays keeps its secrets. */
	out->secrets_failed = lifecycle_clear_secrets(s, d->id, d->fqdn, err);
	if (out->secrets_failed) {
		snprintf(out->secrets_error, sizeof(out->secrets_error), "%s", err->msg);
		amtprov_error_clear(err);
	}
	snprintf(msg, sizeof(msg), "%.440s%s", detail,
		 out->secrets_failed ? "; some secrets not removed" : "");
	site_status(s, STATUS_DEVICE_DELETED, d->fqdn, msg);
	return AMTPROV_OK;
}
