/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device operations after provisioning (seed 000; docs/lifecycle.md):
 *   requests from operators (CLI, API): unprovision, block, unblock, update;
 *   NEED_UNPROVISION (R-REV-02a): full unprovision in AMT, certificates revoked Superseded,
 *     directory account removed, stored secrets cleared -> UNPROVISIONED;
 *   NEED_UPDATE (R-REV-03): the site's AMT settings (second stage) applied again; the web
 *     server certificate is NOT revoked; 802.1X client certificates are, when 802.1X
 *     templates are configured (R-REV-04).
 */
#include "lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "device_certs.h"
#include "flow_krb.h"
#include "flow_managed.h"
#include "revoke.h"
#include "scheduler.h"
#include "status.h"
#include "util.h"

static const char *const op_names[] = {"unprovision", "block", "unblock", "update"};

int lifecycle_op_parse(const char *name)
{
	for (int i = 0; name && i < (int)(sizeof(op_names) / sizeof(op_names[0])); i++)
		if (strcmp(name, op_names[i]) == 0)
			return i;
	return -1;
}

const char *lifecycle_op_name(enum lifecycle_op op)
{
	return (unsigned)op < sizeof(op_names) / sizeof(op_names[0]) ? op_names[op] : "?";
}


/* ---- requests ---- */

static int move(struct site *s, struct store_device *d, const char *to, const char *actor,
		struct amtprov_error *err)
{
	int rc = store_device_transition(site_store(s), d->id, d->state, to, 0, "", 0, actor,
					 site_now(s), err);

	if (rc == AMTPROV_OK)
		util_strlcpy(d->state, to, sizeof(d->state));
	return rc;
}

static int set_blocked(struct site *s, struct store_device *d, int blocked, const char *actor,
		       struct amtprov_error *err)
{
	d->blocked = blocked;
	return store_device_update(site_store(s), d, actor, site_now(s), err);
}

int lifecycle_request(struct site *s, const char *device, enum lifecycle_op op,
		      const char *actor, struct store_device *out, struct amtprov_error *err)
{
	struct store *st = site_store(s);
	struct store_device d;
	enum device_state cur;
	char detail[STORE_TEXT_SIZE];
	int rc, n = 0;

	rc = store_device_find(st, device, &d, err);
	if (rc)
		return rc;
	cur = device_state_parse(d.state);
	switch (op) {
	case LC_UNPROVISION:
		if (!device_state_allowed(cur, DS_NEED_UNPROVISION))
			return amtprov_error_set(err, AMTPROV_E_STATE, d.fqdn,
						 "device is %s: nothing to unprovision", d.state);
		rc = move(s, &d, "NEED_UNPROVISION", actor, err);
		break;
	case LC_UPDATE:
		if (cur != DS_PROVISIONED)
			return amtprov_error_set(err, AMTPROV_E_STATE, d.fqdn,
						 "device is %s: only a PROVISIONED device is updated",
						 d.state);
		rc = move(s, &d, "NEED_UPDATE", actor, err);
		if (rc == AMTPROV_OK && site_manifest(s)->ieee8021x)
			rc = device_certs_8021x_mark_update(s, d.id, err);
		break;
	case LC_BLOCK:
		if (cur == DS_BLOCKED)
			return amtprov_error_set(err, AMTPROV_E_STATE, d.fqdn, "device is BLOCKED already");
		/* The state first: from here on the engine never works on it. */
		rc = move(s, &d, "BLOCKED", actor, err);
		if (rc == AMTPROV_OK)
			rc = set_blocked(s, &d, 1, actor, err);
		/* R-REV-02d, R-REV-04: its certificates are revoked, Superseded. */
		if (rc == AMTPROV_OK)
			rc = revoke_queue_device(s, d.id, REVOKE_WEB_SERVER | REVOKE_CLIENT_8021X, 0,
						 "R-REV-02d: the device was blocked", &n, err);
		if (rc == AMTPROV_OK && n)
			rc = store_task_request(st, TASK_REVOCATION_QUEUE, NULL, err);
		if (rc == AMTPROV_OK) {
			snprintf(detail, sizeof(detail), "blocked by %.60s; %d certificate%s queued "
				 "for revocation (R-REV-02d)", actor, n, n == 1 ? "" : "s");
			site_status(s, STATUS_DEVICE_BLOCKED, d.fqdn, detail);
		}
		break;
	case LC_UNBLOCK:
		if (cur != DS_BLOCKED)
			return amtprov_error_set(err, AMTPROV_E_STATE, d.fqdn,
						 "device is %s, not BLOCKED", d.state);
		/* A device that got a certificate may hold AMT settings: it is unprovisioned
		 * (and can then register again); one that never got one is free at once. */
		rc = move(s, &d, device_certs_web(s, d.id, 0) ? "NEED_UNPROVISION" : "UNPROVISIONED",
			  actor, err);
		if (rc == AMTPROV_OK)
			rc = set_blocked(s, &d, 0, actor, err);
		if (rc == AMTPROV_OK) {
			snprintf(detail, sizeof(detail), "unblocked by %.60s: now %s", actor, d.state);
			site_status(s, STATUS_DEVICE_UNBLOCKED, d.fqdn, detail);
		}
		break;
	default:
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "unknown operation");
	}
	if (rc == AMTPROV_OK && out)
		*out = d;
	return rc;
}

/* ---- NEED_UNPROVISION (R-REV-02a) ---- */

struct unprov {
	struct flow *f;
	struct engine_job *job;
	struct managed m;
	int64_t device_id;
	char fqdn[STORE_FQDN_SIZE];
	char amt_note[160];
	struct revoke_batch *batch;
	struct plugin_instance *dir;
	int revoked, queued;
	struct amtprov_error dir_err;
	int dir_rc;
};

static void unprov_free(struct unprov *u)
{
	if (!u)
		return;
	managed_close(&u->m);
	revoke_batch_free(u->batch);
	free(u);
}

static void unprov_abort(void *arg)
{
	unprov_free(arg);
}

static void unprov_end(struct unprov *u, enum device_state next, int rc, const char *why)
{
	struct engine_job *job = u->job;

	unprov_free(u);
	if (rc == AMTPROV_OK)
		flow_end(job, FLOW_DONE); /* flow_table.c: UNPROVISIONED */
	else
		engine_job_done(job, next, rc, why);
}

/* Worker: the CA revocations and the directory account (both may block). */
static int unprov_work(void *arg, struct amtprov_error *err)
{
	struct unprov *u = arg;

	(void)err;
	revoke_batch_call(u->batch);
	if (u->dir) {
		amtprov_error_clear(&u->dir_err);
		u->dir_rc = pi_directory_delete(u->dir, u->fqdn, u->fqdn, &u->dir_err);
	}
	return AMTPROV_OK;
}

struct client_keys {
	struct plugin_instance *cs;
	const char *fqdn;
	int failed;                     /* records not removed (a missing one is fine) */
	struct amtprov_error first_err;
};

static void secret_remove(struct client_keys *k, const char *name)
{
	struct amtprov_error e;
	int rc;

	amtprov_error_clear(&e);
	rc = pi_credstore_remove(k->cs, name, &e);
	if (rc != AMTPROV_OK && rc != AMTPROV_E_NOT_FOUND && !k->failed++)
		k->first_err = e;
}

/* The keys of the device's 802.1X profiles (current and pending), once per certificate. */
static int remove_client_keys(void *ctx, const struct store_cert *c)
{
	struct client_keys *k = ctx;
	char name[STORE_FQDN_SIZE + STORE_SHORT_SIZE + 32];

	if (c->purpose != AMTPROV_PURPOSE_CLIENT_8021X)
		return 0;
	for (int pending = 0; pending < 2; pending++) {
		flow_8021x_key_name(k->fqdn, c->profile, pending, name, sizeof(name));
		secret_remove(k, name);
	}
	return 0;
}

/* Secrets amtprov kept for the device: its admin password (and a pending one), its web
 * server key, its Kerberos keys and its 802.1X client keys. Missing records are fine
 * (removed by an earlier run). */
int lifecycle_clear_secrets(struct site *s, int64_t device_id, const char *fqdn,
			    struct amtprov_error *err)
{
	struct manifest *m = site_manifest(s);
	struct plugin_instance *cs =
		m->credstore ? plugin_host_find(site_plugins(s), m->credstore) : NULL;
	char name[STORE_FQDN_SIZE + 48];
	struct store_cert_filter f = {.device_id = device_id};
	struct client_keys k = {.cs = cs, .fqdn = fqdn};
	struct amtprov_error e;
	void (*const names[])(const char *, char *, size_t) = {
		flow_admin_cred_name, flow_admin_cred_name, flow_web_key_name,
		flow_krb_key_name, flow_krb_info_name};

	if (!cs)
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		names[i](fqdn, name, sizeof(name));
		if (i == 1) /* the admin password's write-ahead copy */
			util_strlcpy(name + strlen(name), ".pending", sizeof(name) - strlen(name));
		secret_remove(&k, name);
	}
	amtprov_error_clear(&e);
	store_cert_list(site_store(s), &f, remove_client_keys, &k, &e);
	if (k.failed && err)
		*err = k.first_err;
	return k.failed;
}

static void unprov_done(struct engine_job *job, int rc, const struct amtprov_error *err,
			void *arg)
{
	struct unprov *u = arg;
	char detail[STORE_TEXT_SIZE];
	int done = 0, left = 0;

	(void)job;
	(void)rc;
	(void)err;
	revoke_batch_record(u->f->site, u->batch, &done, &left);
	if (u->dir && u->dir_rc != AMTPROV_OK && u->dir_rc != AMTPROV_E_NOT_FOUND) {
		char why[STORE_TEXT_SIZE];

		/* Revocations are queued already; the directory is retried with the step. */
		snprintf(why, sizeof(why), "directory account of %.200s not removed: %.200s",
			 u->fqdn, u->dir_err.msg);
		unprov_end(u, DS_INVALID, u->dir_rc, why);
		return;
	}
	lifecycle_clear_secrets(u->f->site, u->device_id, u->fqdn, NULL);
	snprintf(detail, sizeof(detail), "R-REV-02a: %s; %d certificate%s revoked Superseded%s%s",
		 u->amt_note, done, done == 1 ? "" : "s", left ? ", the rest queued" : "",
		 u->dir ? "; directory account removed" : "");
	site_status(u->f->site, STATUS_DEVICE_UNPROVISIONED, u->fqdn, detail);
	unprov_end(u, DS_INVALID, AMTPROV_OK, NULL);
}

/* After AMT (or without it): queue every certificate's revocation, then do them now. */
static void unprov_revoke(struct unprov *u)
{
	struct manifest *m = site_manifest(u->f->site);
	struct amtprov_error err;

	managed_close(&u->m);
	amtprov_error_clear(&err);
	if (revoke_queue_device(u->f->site, u->device_id, REVOKE_WEB_SERVER | REVOKE_CLIENT_8021X,
				0, "R-REV-02a: provisioning information removed", &u->queued,
				&err) != AMTPROV_OK) {
		unprov_end(u, DS_INVALID, err.code, err.msg);
		return;
	}
	u->batch = revoke_batch_due(u->f->site, u->device_id);
	u->dir = m->directory ? plugin_host_find(site_plugins(u->f->site), m->directory) : NULL;
	if (engine_job_blocking(u->job, unprov_work, unprov_done, u, &err) != AMTPROV_OK)
		unprov_end(u, DS_INVALID, err.code, err.msg);
}

static void on_unprovisioned(void *ctx, int rc, const json_t *result,
			     const struct amtprov_error *err)
{
	struct unprov *u = ctx;

	(void)result;
	if (rc != AMTPROV_OK) {
		char why[STORE_TEXT_SIZE];

		snprintf(why, sizeof(why), "AMT Unprovision: %s",
			 err->msg[0] ? err->msg : amtprov_strerror(rc));
		unprov_end(u, DS_INVALID, rc, why);
		return;
	}
	util_strlcpy(u->amt_note, "AMT unprovisioned (full)", sizeof(u->amt_note));
	unprov_revoke(u);
}

int lifecycle_admin_password_on_record(struct site *s, const char *fqdn)
{
	struct manifest *m = site_manifest(s);
	struct plugin_instance *cs =
		m->credstore ? plugin_host_find(site_plugins(s), m->credstore) : NULL;
	char name[STORE_FQDN_SIZE + 32];
	struct amtprov_secret *pw = NULL;
	struct amtprov_error e;
	int ok;

	if (!cs)
		return 0;
	flow_admin_cred_name(fqdn, name, sizeof(name));
	amtprov_error_clear(&e);
	ok = pi_credstore_get(cs, name, &pw, &e) == AMTPROV_OK;
	util_secret_free(pw);
	return ok;
}

static void step_unprovision(struct engine_job *job, void *ctx)
{
	struct flow *f = ctx;
	const struct store_device *d = engine_job_device(job);
	struct unprov *u = calloc(1, sizeof(*u));
	struct amtprov_error err;
	int64_t cert;

	if (!u) {
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	u->f = f;
	u->job = job;
	u->device_id = d->id;
	util_strlcpy(u->fqdn, d->fqdn, sizeof(u->fqdn));
	engine_job_set_abort(job, unprov_abort, u);
	cert = device_certs_web(f->site, d->id, 1);
	amtprov_error_clear(&err);
	if (!lifecycle_admin_password_on_record(f->site, d->fqdn)) {
		/* amtprov never gave AMT a password: nothing of ours is configured there. */
		util_strlcpy(u->amt_note, "AMT was never configured by amtprov", sizeof(u->amt_note));
		unprov_revoke(u);
		return;
	}
	if (!cert) {
		/* Its certificate is revoked (a blocked device): the transport refuses it, as
		 * every CRL-checking host does (R-REV-01), so AMT cannot be reached safely. */
		util_strlcpy(u->amt_note, "AMT not reached (its certificate is revoked): "
			     "unprovision it locally in the MEBx", sizeof(u->amt_note));
		unprov_revoke(u);
		return;
	}
	if (managed_open(f, d, cert, &u->m, &err) != AMTPROV_OK ||
	    managed_call(&u->m, AMTPROV_AMT_UNPROVISION, NULL, on_unprovisioned, u, &err) !=
		    AMTPROV_OK)
		unprov_end(u, DS_INVALID, err.code ? err.code : AMTPROV_E_INTERNAL, err.msg);
}

/* ---- NEED_UPDATE (R-REV-03, R-REV-04, R-8021X-05) ---- */

/* The second stage again, ending in PROVISIONED as UPDATING does. R-REV-03: the web server
 * certificate stays. R-REV-04: with 802.1X templates configured, the 802.1X step replaces
 * the client certificates the update request found (mark_8021x_update) and revokes them,
 * Superseded, once the new ones are bound; over wireless it leaves them (R-8021X-05). */
static void step_update(struct engine_job *job, void *ctx)
{
	flow_step_second_stage(job, ctx);
}

int lifecycle_register(struct engine *e, struct flow *f, struct amtprov_error *err)
{
	struct manifest *m;

	if (!e || !f)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no engine or flow");
	m = site_manifest(f->site);
	/* Without a transport nothing reaches AMT: unprovision still revokes and cleans up. */
	engine_set_handler(e, DS_NEED_UNPROVISION, step_unprovision, f);
	if (f->tloop) {
		engine_set_handler(e, DS_NEED_UPDATE, step_update, f);
		if (m->web_server.ca && m->credstore)
			engine_set_handler(e, DS_NEED_RENEWAL, flow_step_renewal, f);
	}
	return AMTPROV_OK;
}
