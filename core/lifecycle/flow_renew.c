/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NEED_RENEWAL (R-WS-03/04): a provisioned device's web server certificate is replaced.
 *   1. a new key and certificate from the site's CA (flow_cert_request: the provisioning
 *      request path). The key is where the manifest's key_source puts it, as provisioning
 *      does: generated inside AMT (GenerateKeyPair + GeneratePKCS10RequestEx over a MANAGED
 *      session verified with the site CA and CRL, R-REV-01; the request checked; the key's
 *      handle recorded write-ahead in the amt-key record so a re-run adopts it), or made by
 *      amtprov and stored write-ahead. The certificate is recorded with its DER;
 *   2. over a MANAGED session verified with the certificate the device serves now: AddKey
 *      (only for a key amtprov made; legacy SOAP below AMT 9 takes key and chain with the
 *      certificate), AddCertificate, the TLS credential context replaced (the old one
 *      deleted, the new one created: AMT keeps one) and CommitChanges, after which AMT
 *      serves the new certificate; the amt-key record is dropped;
 *   3. the superseded certificates and the key pairs only they used are deleted from AMT's
 *      store (flow_prune.c; reported, not fatal);
 *   4. every older active web server certificate of the device is revoked with reason
 *      Superseded (R-REV-02c) through the revocation queue: done now if the CA can, else
 *      retried until it succeeds.
 * Restarts: two active web server certificates mean a renewal was interrupted after its
 * certificate was recorded; the re-run installs that certificate (steps 2-4) and requests
 * nothing. An interruption before that requests again (with the key AMT already made).
 * 802.1X client certificates with renew_within_days or fewer left are renewed the same way
 * (R-8021X-06), after the web server certificate when both are due: the 802.1X step runs in
 * its renewal form (flow_8021x.c) over a managed session, replaces the due certificates
 * (new key, CA, ADD_KEY/ADD_CERTIFICATE), re-binds every profile through SET_8021X and
 * revokes the old ones Superseded once the new ones are bound.
 * No renewal over a wireless connection (R-WS-04): reported (8206) and left for the next
 * evaluation. A renewal the CA refuses leaves the device PROVISIONED with its current
 * certificate (status 8201); one that fails for a reason that may pass is retried.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <jansson.h>

#include "flow_keys.h"
#include "device_certs.h"
#include "flow_managed.h"
#include "flow_prune.h"
#include "lifecycle.h"
#include "pki.h"
#include "plugin_host.h"
#include "revoke.h"
#include "status.h"
#include "util.h"

/* The install steps (2 above), in order. */
enum renew_step { RS_ADD_KEY, RS_ADD_CERT, RS_ENABLE_TLS, RS_COMMIT, RS_PRUNE, RS_SUPERSEDE };

struct renew {
	struct flow *f;
	struct engine_job *job;
	struct managed m;
	int64_t device_id;
	int64_t old_cert_id;
	int64_t new_cert_id;
	int step;
	int looking_up_cert;
	int legacy;          /* AMT below 9: legacy SOAP takes key and chain with the certificate */
	int key_in_amt;      /* the new certificate's key is one AMT generated */
	int resumed;         /* installing the certificate of an interrupted renewal */
	char fqdn[STORE_FQDN_SIZE];
	char cert_handle[256];
	char *cert_b64;
	char *chain_pem;
	struct revoke_batch *batch;
	struct flow_prune *prune;
	char pruned[STORE_TEXT_SIZE]; /* what the prune deleted, by handle */
	int clients_due;     /* 802.1X client certificates due too (R-8021X-06) */
	struct x8021x *x;    /* their renewal, while it runs */
};

static void renew_free(struct renew *r)
{
	if (!r)
		return;
	flow_prune_free(r->prune);
	managed_close(&r->m);
	flow_8021x_free(r->x);
	free(r->cert_b64);
	free(r->chain_pem);
	revoke_batch_free(r->batch);
	free(r);
}

static void renew_abort(void *arg)
{
	renew_free(arg);
}

/* A failure (rc, why), retried with backoff when transient. */
static void renew_end(struct renew *r, enum device_state next, int rc, const char *why)
{
	struct engine_job *job = r->job;

	renew_free(r);
	engine_job_done(job, next, rc, why);
}

/* The renewal ended with outcome @p o; flow_table.c says where the device goes. */
static void renew_outcome(struct renew *r, enum flow_outcome o)
{
	struct engine_job *job = r->job;

	renew_free(r);
	flow_end(job, o);
}

static void web_key_name(const struct renew *r, char *out, size_t size)
{
	flow_web_key_name(r->fqdn, out, size);
}

static void on_op(void *ctx, int rc, const json_t *result, const struct amtprov_error *err);

/* ---- 802.1X client certificates (R-8021X-06) ---- */

static void clients_done(void *ctx, enum flow_outcome o, int rc, const char *why, int64_t at)
{
	struct renew *r = ctx;
	struct engine_job *job = r->job;

	r->x = NULL; /* freed by flow_8021x.c */
	if (rc == AMTPROV_OK && o == FLOW_WAIT) {
		/* A CA that answered WAIT: its cookie is kept and polled at the next try. */
		renew_free(r);
		flow_end_wait(job, at);
		return;
	}
	if (rc == AMTPROV_OK && o == FLOW_AGAIN) {
		renew_outcome(r, FLOW_AGAIN);
		return;
	}
	if (rc == AMTPROV_E_DENIED) {
		/* Refused (status 8201 says why) before AMT was changed: the device keeps its
		 * certificates and the next evaluation tries again. */
		renew_outcome(r, FLOW_KEPT);
		return;
	}
	if (rc != AMTPROV_OK) {
		renew_end(r, DS_INVALID, rc, why);
		return;
	}
	{
		char detail[STORE_TEXT_SIZE];

		snprintf(detail, sizeof(detail), "802.1X client certificates renewed (R-8021X-06): "
			 "new keys and certificates in AMT, each profile bound to its new one, the "
			 "old ones revoked Superseded; %.300s",
			 why && why[0] ? why : "nothing deleted from AMT's store");
		site_status(r->f->site, STATUS_CERT_RENEWED, r->fqdn, detail);
	}
	renew_outcome(r, FLOW_DONE);
}

/* The 802.1X step in its renewal form (flow_8021x.c: the due certificates are replaced,
 * the others reused), on a session verified with the certificate the device serves now. */
static void renew_clients(struct renew *r)
{
	const struct store_device *d = engine_job_device(r->job);
	int64_t cert = device_certs_web(r->f->site, r->device_id, 1);
	struct amtprov_error err;

	amtprov_error_clear(&err);
	managed_close(&r->m);
	if (managed_open(r->f, d, cert, &r->m, &err) != AMTPROV_OK ||
	    flow_8021x_start(r->f, r->job, r->m.session, &r->m.info, r->device_id, clients_done, r,
			     &r->x, &err) != AMTPROV_OK)
		renew_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_INTERNAL, err.msg);
	/* else r may be gone already (clients_done): not touched again */
}

/* ---- the web server certificate ---- */

static void call(struct renew *r, uint32_t op, json_t *params)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (managed_call(&r->m, op, params, on_op, r, &err) != AMTPROV_OK)
		renew_end(r, DS_INVALID, err.code, err.msg);
}

static void revoked(struct engine_job *job, int rc, const struct amtprov_error *err, void *arg)
{
	struct renew *r = arg;
	char detail[STORE_TEXT_SIZE];
	int done = 0, left = 0;

	(void)job;
	(void)rc;
	(void)err;
	revoke_batch_record(r->f->site, r->batch, &done, &left);
	snprintf(detail, sizeof(detail), "web server certificate renewed (R-WS-03%s) with a key %s; "
		 "%d older certificate%s revoked Superseded%s; %.300s",
		 r->resumed ? ", an interrupted renewal finished" : "",
		 r->key_in_amt ? "generated inside AMT" : "made by amtprov",
		 done, done == 1 ? "" : "s", left ? ", the rest queued" : "",
		 r->pruned[0] ? r->pruned : "nothing deleted from AMT's store");
	site_status(r->f->site, STATUS_CERT_RENEWED, r->fqdn, detail);
	if (r->clients_due) {
		renew_clients(r);
		return;
	}
	renew_outcome(r, FLOW_DONE);
}

static int work_revoke(void *arg, struct amtprov_error *err)
{
	(void)err;
	revoke_batch_call(((struct renew *)arg)->batch);
	return AMTPROV_OK;
}

/* R-REV-02c: the certificates the new one supersedes, queued first, then asked now. */
static void supersede(struct renew *r)
{
	struct amtprov_error err;
	int n = 0;

	amtprov_error_clear(&err);
	managed_close(&r->m);
	if (revoke_queue_device(r->f->site, r->device_id, REVOKE_WEB_SERVER, r->new_cert_id,
				"R-REV-02c: superseded by a renewed certificate", &n, &err) !=
	    AMTPROV_OK) {
		/* AMT serves the new certificate already; the revocation must not be lost, so
		 * the step runs again rather than end quietly. */
		renew_end(r, DS_INVALID, err.code, err.msg);
		return;
	}
	r->batch = revoke_batch_due(r->f->site, r->device_id);
	if (!r->batch || engine_job_blocking(r->job, work_revoke, revoked, r, &err) != AMTPROV_OK)
		revoked(r->job, AMTPROV_OK, NULL, r); /* left queued for the revocation task */
}

static void next(struct renew *r);

static void pruned(void *ctx, int certs, int keys, const char *deleted, const char *problem)
{
	struct renew *r = ctx;
	char detail[STORE_TEXT_SIZE];

	(void)certs;
	(void)keys;
	r->prune = NULL; /* freed by flow_prune.c */
	util_strlcpy(r->pruned, deleted ? deleted : "", sizeof(r->pruned));
	if (problem && problem[0]) {
		/* The renewal is done; what is left in AMT's store is only reported. */
		snprintf(detail, sizeof(detail), "renewal: superseded certificates or keys left in "
			 "AMT's store: %s", problem);
		site_status(r->f->site, STATUS_TASK_FAILED, r->fqdn, detail);
	}
	next(r);
}

/* The commit made the new certificate final: the amt-key record has done its job, and a
 * key amtprov made for the superseded certificate is of no use any more. */
static void committed(struct renew *r)
{
	struct manifest *m = site_manifest(r->f->site);
	struct plugin_instance *cs =
		m->credstore ? plugin_host_find(site_plugins(r->f->site), m->credstore) : NULL;
	struct amtprov_error err;
	char name[STORE_FQDN_SIZE + 32];

	flow_web_key_committed(r->f, r->device_id);
	if (r->key_in_amt && cs) {
		amtprov_error_clear(&err);
		web_key_name(r, name, sizeof(name));
		pi_credstore_remove(cs, name, &err); /* none there is fine */
	}
}

static void next(struct renew *r)
{
	struct amtprov_error err;
	char name[STORE_FQDN_SIZE + 32];
	json_t *p;

	amtprov_error_clear(&err);
	for (;;) {
		switch (r->step++) {
		case RS_ADD_KEY: /* a key amtprov made; AMT holds the one it generated */
			if (r->key_in_amt || r->legacy)
				continue;
			web_key_name(r, name, sizeof(name));
			p = flow_key_params_stored(r->f->site, name, &err);
			if (!p) {
				renew_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_NOT_FOUND,
					  err.msg[0] ? err.msg : "the new web server key is not stored");
				return;
			}
			call(r, AMTPROV_AMT_ADD_KEY, p);
			return;
		case RS_ADD_CERT:
			p = json_pack("{s:s}", "cert_der_b64", r->cert_b64);
			if (p && r->legacy && !r->key_in_amt) {
				/* SetTLSKeyAndCertificate: the leaf, its issuers and the key. The
				 * certificate of a key AMT generated (AMT 6.2+) goes in over WS-Man. */
				json_t *k;

				web_key_name(r, name, sizeof(name));
				k = flow_key_params_stored(r->f->site, name, &err);
				if (!k) {
					json_decref(p);
					renew_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_NOT_FOUND,
						  err.msg);
					return;
				}
				json_object_update(p, k);
				json_decref(k);
				json_object_set_new(p, "chain", flow_chain_array(r->chain_pem));
			}
			call(r, AMTPROV_AMT_ADD_CERTIFICATE, p);
			return;
		case RS_ENABLE_TLS:
			call(r, AMTPROV_AMT_ENABLE_TLS,
			     json_pack("{s:s,s:b}", "cert_handle", r->cert_handle, "replace", 1));
			return;
		case RS_COMMIT:
			call(r, AMTPROV_AMT_COMMIT, NULL);
			return;
		case RS_PRUNE: {
			struct flow_prune_spec spec = {.purpose = AMTPROV_PURPOSE_WEB_SERVER,
						       .keep = &r->new_cert_id, .n_keep = 1};

			committed(r);
			if (flow_prune_start(r->f, r->m.session, r->device_id, r->fqdn, &spec, pruned,
					     r, &r->prune, &err) != AMTPROV_OK) {
				pruned(r, 0, 0, "", err.msg[0] ? err.msg : "cannot start");
				return;
			}
			return;
		}
		default:
			supersede(r);
			return;
		}
	}
}

/* AMT did not take the new certificate. A passing error is retried; otherwise the device
 * stays PROVISIONED with the certificate it serves, and the next evaluation installs the
 * recorded one (two active certificates mark an interrupted renewal). */
static void install_failed(struct renew *r, int rc, const char *why)
{
	char detail[STORE_TEXT_SIZE];

	if (engine_error_transient(rc)) {
		renew_end(r, DS_INVALID, rc, why);
		return;
	}
	snprintf(detail, sizeof(detail), "renewal not finished, the device serves its current "
		 "certificate; the next evaluation installs the new one: %.400s", why);
	site_status(r->f->site, STATUS_TASK_FAILED, r->fqdn, detail);
	renew_outcome(r, FLOW_KEPT);
}

static void on_op(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	struct renew *r = ctx;
	int done = r->step - 1;
	const char *h;

	if (r->looking_up_cert) {
		r->looking_up_cert = 0;
		if (rc == AMTPROV_OK)
			flow_cert_handle_find(result, r->cert_b64, r->cert_handle,
					      sizeof(r->cert_handle));
		if (!r->cert_handle[0]) {
			install_failed(r, AMTPROV_E_DEVICE, "AMT reports the new certificate as a "
				       "duplicate but does not list it");
			return;
		}
		next(r);
		return;
	}
	if (rc != AMTPROV_OK && managed_already_there(rc, err) &&
	    (done == RS_ADD_KEY || done == RS_ADD_CERT)) {
		if (done == RS_ADD_CERT) { /* stored by an interrupted run: find its handle */
			r->looking_up_cert = 1;
			call(r, AMTPROV_AMT_LIST_CERTIFICATES, json_object());
			return;
		}
		next(r);
		return;
	}
	if (rc != AMTPROV_OK) {
		char why[STORE_TEXT_SIZE];

		snprintf(why, sizeof(why), "renewal step %d: %s", done,
			 err->msg[0] ? err->msg : amtprov_strerror(rc));
		install_failed(r, rc, why);
		return;
	}
	if ((h = json_string_value(json_object_get(result, "cert_handle"))))
		util_strlcpy(r->cert_handle, h, sizeof(r->cert_handle));
	next(r);
}

/* Step 2 on: the recorded certificate r->new_cert_id goes into AMT. Whether AddKey is
 * needed follows from the key: amtprov's stored key certified by it, or else AMT's. */
static void install(struct renew *r)
{
	const struct store_device *d = engine_job_device(r->job);
	struct amtprov_error err;
	char name[STORE_FQDN_SIZE + 32];
	uint8_t *der = NULL;
	size_t len = 0;
	const unsigned char *p;
	EVP_PKEY *key;
	X509 *x;

	amtprov_error_clear(&err);
	if (store_cert_data_get(site_store(r->f->site), r->new_cert_id, &der, &len, &r->chain_pem,
				&err) || !(r->cert_b64 = flow_b64(der, len))) {
		free(der);
		renew_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_NOMEM, err.msg);
		return;
	}
	p = der;
	x = d2i_X509(NULL, &p, (long)len);
	free(der);
	web_key_name(r, name, sizeof(name));
	key = flow_key_stored(r->f->site, name, &err);
	r->key_in_amt = !(x && key && pki_key_matches(x, key));
	EVP_PKEY_free(key);
	X509_free(x);
	amtprov_error_clear(&err);
	if (managed_open(r->f, d, r->old_cert_id, &r->m, &err) != AMTPROV_OK) {
		renew_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_INTERNAL, err.msg);
		return;
	}
	next(r);
}

static void on_cert(struct engine_job *job, int rc, int64_t cert_id, int64_t wait_at,
		    const char *why, void *arg)
{
	struct renew *r = arg;

	engine_job_set_abort(job, renew_abort, r);
	if (rc == AMTPROV_OK && !cert_id && wait_at > 0) {
		/* The CA answered WAIT: the device shows it (CA_WAITING), then this step runs
		 * again and polls the request on record. */
		renew_free(r);
		flow_end_wait(job, wait_at);
		return;
	}
	if (rc != AMTPROV_OK) {
		if (engine_error_transient(rc)) {
			renew_end(r, DS_INVALID, rc, why);
			return;
		}
		/* Refused, or key_source cannot be honoured on this firmware: the device keeps
		 * the certificate it has; the next evaluation tries again. */
		site_status(r->f->site, rc == AMTPROV_E_CONFIG ? STATUS_TASK_FAILED
							       : STATUS_CERT_REJECTED, r->fqdn, why);
		renew_outcome(r, FLOW_KEPT);
		return;
	}
	r->new_cert_id = cert_id;
	install(r);
}

/* The device's two newest active web server certificates (0 when there is none). */
struct actives {
	int64_t newest, second;
};

static int actives_cb(void *ctx, const struct store_cert *c)
{
	struct actives *a = ctx;

	if (c->purpose != AMTPROV_PURPOSE_WEB_SERVER || strcmp(c->status, STORE_CERT_ACTIVE))
		return 0;
	if (c->id > a->newest) {
		a->second = a->newest;
		a->newest = c->id;
	} else if (c->id > a->second) {
		a->second = c->id;
	}
	return 0;
}

void flow_step_renewal(struct engine_job *job, void *ctx)
{
	struct flow *f = ctx;
	const struct store_device *d = engine_job_device(job);
	struct manifest *m = site_manifest(f->site);
	struct store_cert_filter flt = {.device_id = d->id};
	struct actives a = {0};
	struct renew *r;
	struct store_cert web;
	struct amtprov_error err;
	int major = 0, web_due;

	if (device_certs_over_wireless(d)) {
		/* R-WS-04: reported; the next evaluation run looks again. */
		site_status(f->site, STATUS_RENEWAL_SKIPPED_WIRELESS, d->fqdn,
			    "R-WS-04: the device is reached over wireless; renewal is retried at "
			    "the next evaluation");
		flow_end(job, FLOW_KEPT);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	r->f = f;
	r->job = job;
	r->device_id = d->id;
	sscanf(d->amt_version, "%d", &major);
	r->legacy = major > 0 && major < 9;
	util_strlcpy(r->fqdn, d->fqdn, sizeof(r->fqdn));
	amtprov_error_clear(&err);
	store_cert_list(site_store(f->site), &flt, actives_cb, &a, &err);
	r->old_cert_id = a.newest;
	if (!r->old_cert_id) {
		site_status(f->site, STATUS_TASK_FAILED, d->fqdn,
			    "renewal: no active web server certificate recorded, nothing to renew");
		renew_outcome(r, FLOW_KEPT);
		return;
	}
	r->clients_due = m->ieee8021x && m->netprofile &&
			 device_certs_client_due(f->site, d->id, NULL) > 0;
	engine_job_set_abort(job, renew_abort, r);
	if (a.second) {
		/* An interrupted renewal recorded its certificate: install that one, request
		 * nothing (the device is verified with the one it served before). */
		r->resumed = 1;
		r->new_cert_id = a.newest;
		r->old_cert_id = a.second;
		alog(site_log(f->site), AMTPROV_LOG_INFO, "%s: resuming an interrupted renewal "
		     "(certificate %lld)", d->fqdn, (long long)r->new_cert_id);
		install(r);
		return;
	}
	web_due = store_cert_get(site_store(f->site), r->old_cert_id, &web, &err) != AMTPROV_OK ||
		  device_certs_due(f->site, &web);
	if (!web_due) {
		if (r->clients_due)
			renew_clients(r);
		else /* renewed meanwhile: nothing is due */
			renew_outcome(r, FLOW_KEPT);
		return;
	}
	/* flow_cert_request owns the job (and r) until on_cert. */
	engine_job_set_abort(job, NULL, NULL);
	flow_cert_request(f, job, r->old_cert_id, on_cert, r, renew_abort);
}
