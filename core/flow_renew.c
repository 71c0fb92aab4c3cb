/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NEED_RENEWAL (R-WS-03/04): a provisioned device's web server certificate is replaced.
 *   1. a new key and certificate from the site's CA (flow_cert_request: the provisioning
 *      request path, key stored write-ahead, certificate recorded with its DER);
 *   2. over a MANAGED session verified with the certificate the device serves now:
 *      AddKey, AddCertificate, the TLS credential context replaced (the old one deleted,
 *      the new one created: AMT keeps one) and CommitChanges, after which AMT serves the
 *      new certificate;
 *   3. every older active web server certificate of the device is revoked with reason
 *      Superseded (R-REV-02c) through the revocation queue: done now if the CA can, else
 *      retried until it succeeds.
 * No renewal over a wireless connection (R-WS-04): reported (8206) and left for the next
 * evaluation. A renewal the CA refuses leaves the device PROVISIONED with its current
 * certificate (status 8201); one that fails for a reason that may pass is retried.
 * A re-run after a restart requests again: the certificate of the interrupted run is
 * superseded and revoked with the rest in step 3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <jansson.h>

#include "flow_managed.h"
#include "lifecycle.h"
#include "pki.h"
#include "revoke.h"
#include "status.h"
#include "util.h"

struct renew {
	struct flow *f;
	struct engine_job *job;
	struct managed m;
	int64_t device_id;
	int64_t old_cert_id;
	int64_t new_cert_id;
	int step;
	int looking_up_cert;
	char fqdn[STORE_FQDN_SIZE];
	char cert_handle[256];
	char *cert_b64;
	struct revoke_batch *batch;
};

static void renew_free(struct renew *r)
{
	if (!r)
		return;
	managed_close(&r->m);
	free(r->cert_b64);
	revoke_batch_free(r->batch);
	free(r);
}

static void renew_abort(void *arg)
{
	renew_free(arg);
}

static void renew_end(struct renew *r, enum device_state next, int rc, const char *why)
{
	struct engine_job *job = r->job;

	renew_free(r);
	engine_job_done(job, next, rc, why);
}

static char *b64(const uint8_t *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* {"key_der_b64"} from the key flow_cert_request stored. */
static json_t *key_params(struct renew *r, struct amtprov_error *err)
{
	struct manifest *m = site_manifest(r->f->site);
	struct plugin_instance *cs = plugin_host_find(site_plugins(r->f->site), m->credstore);
	char name[STORE_FQDN_SIZE + 32];
	struct amtprov_secret *pem = NULL;
	EVP_PKEY *key = NULL;
	unsigned char *der = NULL;
	char *s = NULL;
	json_t *p = NULL;
	int n = 0;

	flow_web_key_name(r->fqdn, name, sizeof(name));
	if (!cs || pi_credstore_get(cs, name, &pem, err) != AMTPROV_OK ||
	    pki_load_pem_key(pem->data, pem->len, name, &key, err) != AMTPROV_OK)
		goto out;
	n = i2d_PrivateKey(key, &der);
	s = n > 0 ? b64(der, (size_t)n) : NULL;
	if (s)
		p = json_pack("{s:s}", "key_der_b64", s);
out:
	if (s) {
		util_wipe(s, strlen(s));
		free(s);
	}
	if (der) {
		util_wipe(der, (size_t)n);
		OPENSSL_free(der);
	}
	EVP_PKEY_free(key);
	util_secret_free(pem);
	return p;
}

static void on_op(void *ctx, int rc, const json_t *result, const struct amtprov_error *err);

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

	(void)rc;
	(void)err;
	revoke_batch_record(r->f->site, r->batch, &done, &left);
	snprintf(detail, sizeof(detail), "web server certificate renewed (R-WS-03); %d older "
		 "certificate%s revoked Superseded%s", done, done == 1 ? "" : "s",
		 left ? ", the rest queued" : "");
	site_status(r->f->site, STATUS_CERT_RENEWED, r->fqdn, detail);
	renew_end(r, DS_PROVISIONED, AMTPROV_OK, NULL);
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

static void next(struct renew *r)
{
	struct amtprov_error err;
	json_t *p;

	amtprov_error_clear(&err);
	switch (r->step++) {
	case 0:
		p = key_params(r, &err);
		if (!p) {
			renew_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_NOT_FOUND,
				  err.msg[0] ? err.msg : "the new web server key is not stored");
			return;
		}
		call(r, AMTPROV_AMT_ADD_KEY, p);
		return;
	case 1:
		call(r, AMTPROV_AMT_ADD_CERTIFICATE, json_pack("{s:s}", "cert_der_b64", r->cert_b64));
		return;
	case 2:
		call(r, AMTPROV_AMT_ENABLE_TLS,
		     json_pack("{s:s,s:b}", "cert_handle", r->cert_handle, "replace", 1));
		return;
	case 3:
		call(r, AMTPROV_AMT_COMMIT, NULL);
		return;
	default:
		supersede(r);
		return;
	}
}

static void on_op(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	struct renew *r = ctx;
	int done = r->step - 1;
	const char *h;

	if (r->looking_up_cert) {
		const json_t *it;
		size_t i;

		r->looking_up_cert = 0;
		json_array_foreach(json_object_get(result, "items"), i, it) {
			const char *der = json_string_value(json_object_get(it, "X509Certificate"));
			const char *id = json_string_value(json_object_get(it, "InstanceID"));

			if (rc == AMTPROV_OK && der && id && strcmp(der, r->cert_b64) == 0)
				util_strlcpy(r->cert_handle, id, sizeof(r->cert_handle));
		}
		if (!r->cert_handle[0]) {
			renew_end(r, DS_INVALID, AMTPROV_E_DEVICE,
				  "AMT reports the new certificate as a duplicate but does not list it");
			return;
		}
		next(r);
		return;
	}
	if (rc != AMTPROV_OK && managed_already_there(rc, err) && (done == 0 || done == 1)) {
		if (done == 1) { /* stored by an interrupted run: find its handle */
			r->looking_up_cert = 1;
			call(r, AMTPROV_AMT_WSMAN_ENUMERATE,
			     json_pack("{s:s}", "class", "AMT_PublicKeyCertificate"));
			return;
		}
		next(r);
		return;
	}
	if (rc != AMTPROV_OK) {
		char why[STORE_TEXT_SIZE];

		snprintf(why, sizeof(why), "renewal step %d: %s", done,
			 err->msg[0] ? err->msg : amtprov_strerror(rc));
		renew_end(r, DS_INVALID, rc, why);
		return;
	}
	if ((h = json_string_value(json_object_get(result, "cert_handle"))))
		util_strlcpy(r->cert_handle, h, sizeof(r->cert_handle));
	next(r);
}

static void on_cert(struct engine_job *job, int rc, int64_t cert_id, const char *why, void *arg)
{
	struct renew *r = arg;
	const struct store_device *d = engine_job_device(job);
	struct amtprov_error err;
	uint8_t *der = NULL;
	size_t len = 0;

	engine_job_set_abort(job, renew_abort, r);
	if (rc != AMTPROV_OK) {
		if (engine_error_transient(rc)) {
			renew_end(r, DS_INVALID, rc, why);
			return;
		}
		/* Refused: the device keeps the certificate it has; the next evaluation tries
		 * again. */
		site_status(r->f->site, STATUS_CERT_REJECTED, r->fqdn, why);
		renew_end(r, DS_PROVISIONED, AMTPROV_OK, NULL);
		return;
	}
	r->new_cert_id = cert_id;
	amtprov_error_clear(&err);
	if (store_cert_data_get(site_store(r->f->site), cert_id, &der, &len, NULL, &err) ||
	    !(r->cert_b64 = b64(der, len))) {
		free(der);
		renew_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_NOMEM, err.msg);
		return;
	}
	free(der);
	if (managed_open(r->f, d, r->old_cert_id, &r->m, &err) != AMTPROV_OK) {
		renew_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_INTERNAL, err.msg);
		return;
	}
	next(r);
}

void flow_step_renewal(struct engine_job *job, void *ctx)
{
	struct flow *f = ctx;
	const struct store_device *d = engine_job_device(job);
	struct renew *r;
	int major = 0;

	if (lifecycle_over_wireless(d)) {
		/* R-WS-04: reported; the next evaluation run looks again. */
		site_status(f->site, STATUS_RENEWAL_SKIPPED_WIRELESS, d->fqdn,
			    "R-WS-04: the device is reached over wireless; renewal is retried at "
			    "the next evaluation");
		engine_job_done(job, DS_PROVISIONED, AMTPROV_OK, NULL);
		return;
	}
	sscanf(d->amt_version, "%d", &major);
	if (major > 0 && major < 9) {
		site_status(f->site, STATUS_TASK_FAILED, d->fqdn,
			    "renewal of AMT below 9.0 (legacy SOAP) is not implemented; the "
			    "certificate stays until it is replaced by provisioning again");
		engine_job_done(job, DS_PROVISIONED, AMTPROV_OK, NULL);
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
	util_strlcpy(r->fqdn, d->fqdn, sizeof(r->fqdn));
	r->old_cert_id = lifecycle_web_cert(f->site, d->id, 1);
	if (!r->old_cert_id) {
		site_status(f->site, STATUS_TASK_FAILED, d->fqdn,
			    "renewal: no active web server certificate recorded, nothing to renew");
		renew_end(r, DS_PROVISIONED, AMTPROV_OK, NULL);
		return;
	}
	/* flow_cert_request owns the job (and r) until on_cert. */
	flow_cert_request(f, job, on_cert, r, renew_abort);
}
