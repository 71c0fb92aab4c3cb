/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 802.1X, the second stage's last step (R-PROV-11 3, R-8021X), on the stage's session; also
 * the client-certificate part of an update (R-REV-04, R-8021X-05) and of a renewal
 * (R-8021X-06), on theirs:
 *   1. detect the wireless port (Enumerate CIM_WiFiPort);
 *   2. ask the netprofile plugin which client certificates the device needs (R-8021X-01);
 *   3. for each: reuse the device's active certificate for that profile when it is still
 *      good, else request one from the profile's CA (EKU clientAuth, subject = device FQDN,
 *      R-8021X-02). The key is where the manifest's key_source puts it, as for the web
 *      server certificate (flow_cert.c, R-PROV-06):
 *      - inside AMT (auto on AMT >= 9): an "8021x-amt-key" record (per profile) names the
 *        keys AMT held before GenerateKeyPair, then the new key's handle, so a re-run adopts
 *        the key AMT holds; AMT signs the request (GeneratePKCS10RequestEx), checked;
 *      - made by amtprov, stored first (write-ahead: nothing issued for a key amtprov could
 *        lose, no request untracked).
 *      All CA answers come before AMT's 802.1X settings are changed, so a refusal leaves
 *      the profiles as they were (a key generated inside AMT stays for the next attempt);
 *   4. install the certificate in AMT (ADD_CERTIFICATE), after its key when amtprov made
 *      it (ADD_KEY); a key AMT holds is found by its public key;
 *   5. note the certificates AMT's 802.1X links use now (CIM_CredentialContext) and delete
 *      the existing wireless profiles;
 *   6. render the profiles bound to their own certificates (R-8021X-04) and SET_8021X;
 *   7. delete the certificates the old links used that no link uses any more;
 *   8. revoke, Superseded, every other active client certificate of the device (R-REV-04):
 *      only now, once the new ones are bound, so the device never runs on a revoked one.
 * "Still good" depends on why the step runs (the job's state):
 *   NEED_SECOND_STAGE  provisioning: same CA and template, not expired, and recorded in this
 *                      provisioning (not before its web server certificate): one from an
 *                      earlier provisioning is replaced (R-REV-04 with R-REV-02b);
 *   NEED_UPDATE        as provisioning, and recorded after the update was requested
 *                      (lifecycle.c's mark): the update replaces them all (R-REV-04); over
 *                      wireless nothing is requested or changed (R-8021X-05, R-WS-04);
 *   NEED_RENEWAL       as provisioning, with more than renew_within_days left (R-8021X-06).
 * Running it again changes nothing but what the manifest changed (R-PROV-13): certificates
 * are reused, and what AMT already holds is adopted.
 * A CA that answers WAIT leaves the device in the job's NEED_ state until the poll time,
 * REJECTED fails the step with the CA's reason, UNREACHABLE retries with backoff.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <jansson.h>

#include "flow_int.h"
#include "flow_keys.h"
#include "lifecycle.h"
#include "pki.h"
#include "revoke.h"
#include "status.h"
#include "util.h"

#define SUBMIT_KIND "8021x-submit" /* write-ahead record of a request in flight */
#define POLL_KIND "8021x-poll"     /* a WAIT answer's cookie, polled later */
#define AMT_KEY_KIND "8021x-amt-key" /* a profile's request key inside AMT (its handle) */
#define POLL_SECONDS 60
#define KEY_BITS 2048
#define MAX_NEEDS 17 /* 1 wired + 16 wireless */
#define PKI_OID_CLIENT_AUTH "1.3.6.1.5.5.7.3.2"

enum x_phase {
	X_DETECT,
	X_CERT,
	X_AMT_LIST,
	X_AMT_DELETE,
	X_AMT_GEN,
	X_AMT_PUB,
	X_AMT_SIGN,
	X_ADD_KEY,
	X_FIND_KEY,
	X_ADD_CERT,
	X_FIND_CERT,
	X_ENUM_CTX,
	X_ENUM_WIFI,
	X_DEL_WIFI,
	X_SET,
	X_ENUM_CTX_AFTER,
	X_DEL_OLD,
};

struct x_need {
	char profile[STORE_SHORT_SIZE];
	int wireless;
	char ca[STORE_SHORT_SIZE];
	char tmpl[STORE_SHORT_SIZE];
	int64_t cert_id;
	char *cert_b64;
	char cert_handle[128];
};

struct x8021x {
	struct flow *f;
	struct engine_job *job;
	void *session;
	struct amtprov_device_info info;
	char fqdn[STORE_FQDN_SIZE];
	char uuid[STORE_UUID_SIZE];
	int64_t device_id;
	flow_8021x_done_fn done;
	void *ctx;
	enum x_phase phase;
	struct x_need needs[MAX_NEEDS];
	size_t n_needs, cur;
	json_t *old_certs; /* InstanceIDs the 802.1X links used before */
	json_t *todo;      /* InstanceIDs still to delete in this phase */
	/* the CA request of needs[cur] (worker thread between submit and answer) */
	struct plugin_instance *ca, *cs;
	uint8_t *csr_der;
	size_t csr_len;
	int64_t submit_marker, poll_id;
	char cookie[AMTPROV_CA_COOKIE_SIZE];
	struct amtprov_ca_result res;
	struct amtprov_error perr;
	int in_worker;
	enum device_state step_state; /* why it runs: NEED_SECOND_STAGE, _UPDATE or _RENEWAL */
	int64_t reuse_from_id;        /* certificates recorded before this id are replaced */
	/* keys inside AMT (key_source, R-PROV-06) */
	int amt_keys;                 /* 1: requests get a key generated inside AMT */
	int amt_auto;                 /* key_source auto: amtprov's key if AMT can't */
	int req_amt;                  /* 1: the request of needs[cur] is for a key AMT holds */
	json_t *key_record;           /* payload of needs[cur]'s 8021x-amt-key record */
	int64_t key_record_id;
	json_t *key_before;           /* handles AMT held before GenerateKeyPair */
	char key_handle[128];
	EVP_PKEY *amt_pub;            /* its public key */
	X509_REQ *tmpl;               /* the request AMT signs */
	struct revoke_batch *batch;   /* the superseded certificates, asked of their CAs */
};

void flow_8021x_key_name(const char *fqdn, const char *profile, int pending, char *out,
			 size_t size)
{
	size_t n;

	snprintf(out, size, "device/%s/8021x-%s-key%s", fqdn, profile, pending ? ".pending" : "");
	/* Profile names are free text; a credential-store name is [A-Za-z0-9._/-]. */
	n = strlen("device/") + strlen(fqdn) + strlen("/8021x-");
	for (char *p = out + (n < size ? n : size - 1); *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			*p = '_';
}

void flow_8021x_free(struct x8021x *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->n_needs; i++)
		free(x->needs[i].cert_b64);
	json_decref(x->old_certs);
	json_decref(x->todo);
	free(x->csr_der);
	pi_ca_result_release(&x->res);
	revoke_batch_free(x->batch);
	json_decref(x->key_record);
	json_decref(x->key_before);
	EVP_PKEY_free(x->amt_pub);
	X509_REQ_free(x->tmpl);
	free(x);
}

/* Ends the step: the stage decides what the device's state becomes. */
static void finish(struct x8021x *x, enum device_state next, int rc, const char *why,
		   int64_t defer_at)
{
	char text[STORE_TEXT_SIZE];
	flow_8021x_done_fn done = x->done;
	void *ctx = x->ctx;

	snprintf(text, sizeof(text), "%s", why ? why : "");
	flow_8021x_free(x);
	done(ctx, next, rc, rc ? text : NULL, defer_at);
}

static void fail(struct x8021x *x, int rc, const char *fmt, ...) AMTPROV_PRINTF(3, 4);
static void fail(struct x8021x *x, int rc, const char *fmt, ...)
{
	char why[STORE_TEXT_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	finish(x, DS_INVALID, rc ? rc : AMTPROV_E_INTERNAL, why, 0);
}

static void on_op(void *ctx, int rc, const json_t *result, const struct amtprov_error *err);
static void next_need(struct x8021x *x);
static void start_certs(struct x8021x *x);

static void call(struct x8021x *x, uint32_t op, json_t *params)
{
	struct amtprov_error err;
	int rc;

	amtprov_error_clear(&err);
	rc = tloop_call(x->f->tloop, x->session, op, params, on_op, x, &err);
	json_decref(params);
	if (rc != AMTPROV_OK)
		fail(x, rc, "802.1X: %s", err.msg);
}

static void wsman(struct x8021x *x, uint32_t op, const char *cls, const char *id)
{
	call(x, op, id ? json_pack("{s:s,s:{s:s}}", "class", cls, "selectors", "InstanceID", id)
		       : json_pack("{s:s}", "class", cls));
}

/* The InstanceIDs of the certificates in the CIM_CredentialContext items (802.1X links). */
static json_t *linked_certs(const json_t *items)
{
	json_t *out = json_array(), *it;
	size_t i;

	json_array_foreach(items, i, it) {
		const json_t *e = json_object_get(it, "ElementInContext");
		const char *t = json_string_value(json_object_get(e, "InstanceID"));
		char *s = NULL;

		/* at_xml_to_json renders an EPR as nested objects; find the selector text. */
		if (!t && json_is_object(e))
			s = json_dumps(e, JSON_COMPACT);
		if (!t && s) {
			const char *h = strstr(s, "Intel(r) AMT Certificate: Handle: ");

			if (h) {
				char id[96];
				size_t n = strcspn(h, "\"");

				snprintf(id, sizeof(id), "%.*s", (int)(n < sizeof(id) ? n : 0), h);
				if (id[0])
					json_array_append_new(out, json_string(id));
			}
		} else if (t) {
			json_array_append_new(out, json_string(t));
		}
		free(s);
	}
	return out;
}

/* ---- the certificate of needs[cur]: reuse, poll or request ---- */

struct find_cert {
	const struct x8021x *x;
	const struct x_need *need;
	int64_t now;
	struct store_cert found;
	int n;
};

/* Still good for the need (see the top of the file); the newest such one is reused. */
static int find_cert_cb(void *ctx, const struct store_cert *c)
{
	struct find_cert *fc = ctx;

	if (c->purpose != AMTPROV_PURPOSE_CLIENT_8021X || strcmp(c->status, STORE_CERT_ACTIVE) ||
	    strcmp(c->profile, fc->need->profile) || strcmp(c->ca_instance, fc->need->ca) ||
	    strcmp(c->template_name, fc->need->tmpl) || c->not_after <= fc->now ||
	    c->id < fc->x->reuse_from_id ||
	    (fc->x->step_state == DS_NEED_RENEWAL && lifecycle_cert_due(fc->x->f->site, c)))
		return 0;
	if (!fc->n || c->id > fc->found.id) {
		fc->found = *c;
		fc->n = 1;
	}
	return 0;
}

/* ---- the end: superseded certificates revoked (R-REV-04) ---- */

static int work_revoke(void *arg, struct amtprov_error *err)
{
	(void)err;
	revoke_batch_call(((struct x8021x *)arg)->batch);
	return AMTPROV_OK;
}

static void on_revoked(struct engine_job *job, int rc, const struct amtprov_error *err,
		       void *arg)
{
	struct x8021x *x = arg;

	(void)job;
	(void)rc;
	(void)err;
	x->in_worker = 0;
	/* Revoked (8203), or kept queued for the revocation task (8204): never forgotten. */
	revoke_batch_record(x->f->site, x->batch, NULL, NULL);
	finish(x, DS_INVALID, AMTPROV_OK, NULL, 0);
}

static const char *supersede_reason(const struct x8021x *x)
{
	switch (x->step_state) {
	case DS_NEED_UPDATE:
		return "R-REV-04: the management controller was updated with 802.1X templates "
		       "configured; superseded by a new client certificate";
	case DS_NEED_RENEWAL:
		return "R-8021X-06: superseded by a renewed client certificate";
	default:
		return "R-REV-04: superseded by the client certificate provisioning bound";
	}
}

/* The profiles are bound: every other active client certificate of the device is queued
 * for revocation (write-ahead, revoke.c), then the CAs are asked on a worker thread. */
static void end_step(struct x8021x *x)
{
	int64_t keep[MAX_NEEDS];
	struct amtprov_error err;
	int n = 0;

	for (size_t i = 0; i < x->n_needs; i++)
		keep[i] = x->needs[i].cert_id;
	amtprov_error_clear(&err);
	if (revoke_queue_device_except(x->f->site, x->device_id, REVOKE_CLIENT_8021X, keep,
				       x->n_needs, supersede_reason(x), &n, &err) != AMTPROV_OK) {
		/* The new ones are bound already; the revocation must not be lost: the step
		 * runs again (and reuses what it did). */
		fail(x, err.code, "802.1X: superseded certificates not queued: %s", err.msg);
		return;
	}
	/* The update (or an older one's mark) is done: its certificates are replaced. */
	lifecycle_8021x_update_mark(x->f->site, x->device_id, 1);
	x->batch = n ? revoke_batch_due(x->f->site, x->device_id) : NULL;
	if (!x->batch) {
		finish(x, DS_INVALID, AMTPROV_OK, NULL, 0);
		return;
	}
	x->in_worker = 1;
	if (engine_job_blocking(x->job, work_revoke, on_revoked, x, &err) != AMTPROV_OK) {
		/* Queued: the revocation task asks the CAs. */
		x->in_worker = 0;
		finish(x, DS_INVALID, AMTPROV_OK, NULL, 0);
	}
}

/* The request around @p pub, not signed: R-8021X-02, the subject is the device FQDN,
 * supplied in the request. */
static X509_REQ *client_template(const char *fqdn, EVP_PKEY *pub)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	int ok = req && name && X509_REQ_set_version(req, 0) &&
		 X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)fqdn,
					    -1, -1, 0) &&
		 X509_REQ_set_subject_name(req, name) && X509_REQ_set_pubkey(req, pub);

	X509_NAME_free(name);
	if (!ok) {
		X509_REQ_free(req);
		req = NULL;
	}
	return req;
}

/* Key (stored first) and CSR; worker thread. */
static int make_key_and_csr(struct x8021x *x, struct amtprov_error *err)
{
	char keyname[STORE_FQDN_SIZE + STORE_SHORT_SIZE + 32];
	EVP_PKEY *key = EVP_RSA_gen(KEY_BITS);
	X509_REQ *req = NULL;
	struct amtprov_secret *pem = NULL;
	unsigned char *der = NULL;
	int rc = AMTPROV_OK, len = 0;

	if (!key) {
		rc = pki_error(err, AMTPROV_E_CRYPTO, x->fqdn, "%s", "making the 802.1X key");
		goto out;
	}
	rc = pki_key_pem(key, &pem, err);
	/* Write-ahead: no certificate is ever issued for a key amtprov could lose. It is kept
	 * as pending so the key of the certificate in use stays until the new one is issued. */
	flow_8021x_key_name(x->fqdn, x->needs[x->cur].profile, 1, keyname, sizeof(keyname));
	if (rc == AMTPROV_OK)
		rc = pi_credstore_put(x->cs, keyname, pem, err);
	util_secret_free(pem);
	if (rc)
		goto out;
	req = client_template(x->fqdn, key);
	if (!req || !X509_REQ_sign(req, key, EVP_sha256()) || (len = i2d_X509_REQ(req, &der)) <= 0) {
		rc = pki_error(err, AMTPROV_E_CRYPTO, x->fqdn, "%s", "building the 802.1X request");
		goto out;
	}
	x->csr_der = malloc((size_t)len);
	if (!x->csr_der) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, x->fqdn, "out of memory");
		goto out;
	}
	memcpy(x->csr_der, der, (size_t)len);
	x->csr_len = (size_t)len;
out:
	OPENSSL_free(der);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return rc;
}

static void fill_request(struct x8021x *x, struct amtprov_ca_request *req)
{
	memset(req, 0, sizeof(*req));
	req->struct_size = sizeof(*req);
	req->purpose = AMTPROV_PURPOSE_CLIENT_8021X;
	req->csr_der = x->csr_der;
	req->csr_len = x->csr_len;
	req->template_name = x->needs[x->cur].tmpl[0] ? x->needs[x->cur].tmpl : NULL;
	req->subject_fqdn = x->fqdn;
	req->device_uuid = x->uuid;
	req->netprofile = x->needs[x->cur].profile;
}

static int work_ca(void *arg, struct amtprov_error *err)
{
	struct x8021x *x = arg;
	struct amtprov_ca_request req;
	char cookie[AMTPROV_CA_COOKIE_SIZE];

	if (!x->poll_id) {
		/* AMT signed the request already when AMT holds the key. */
		int rc = x->req_amt ? AMTPROV_OK : make_key_and_csr(x, &x->perr);

		if (rc)
			return rc;
		fill_request(x, &req);
		return pi_ca_submit(x->ca, x->fqdn, &req, &x->res, err);
	}
	fill_request(x, &req);
	util_strlcpy(cookie, x->cookie, sizeof(cookie));
	return pi_ca_poll(x->ca, x->fqdn, &req, cookie, &x->res, err);
}

struct find_pending {
	const char *kind, *profile;
	struct store_pending op;
	int found;
};

static int find_pending_cb(void *ctx, const struct store_pending *op)
{
	struct find_pending *fp = ctx;
	json_t *p;
	int match;

	if (strcmp(op->kind, fp->kind))
		return 0;
	p = json_loads(op->payload, 0, NULL);
	match = !fp->profile ||
		!strcmp(json_string_value(json_object_get(p, "profile")) ? json_string_value(
								json_object_get(p, "profile"))
							  : "",
			fp->profile);
	json_decref(p);
	if (!match)
		return 0;
	fp->op = *op;
	fp->found = 1;
	return 1;
}

/* The 8021x-amt-key record of @p profile (payload parsed), or NULL. */
static json_t *amt_key_record(struct x8021x *x, const char *profile, int64_t *id)
{
	struct find_pending fp = {.kind = AMT_KEY_KIND, .profile = profile};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	*id = 0;
	store_pending_list(site_store(x->f->site), x->device_id, find_pending_cb, &fp, &err);
	if (!fp.found)
		return NULL;
	*id = fp.op.id;
	return json_loads(fp.op.payload, 0, NULL);
}

/* Replaces needs[cur]'s 8021x-amt-key record by @p payload (stolen; the profile is added). */
static int amt_key_record_put(struct x8021x *x, json_t *payload, struct amtprov_error *err)
{
	if (payload)
		json_object_set_new(payload, "profile", json_string(x->needs[x->cur].profile));
	return flow_key_record_replace(x->f, x->device_id, AMT_KEY_KIND, x->fqdn, payload,
				       &x->key_record, &x->key_record_id, err);
}

/* The public key in the request (DER) sent for needs[cur]; NULL if it does not parse. */
static EVP_PKEY *request_key(const struct x8021x *x)
{
	const unsigned char *p = x->csr_der;
	X509_REQ *req = p ? d2i_X509_REQ(NULL, &p, (long)x->csr_len) : NULL;
	EVP_PKEY *pub = req ? X509_REQ_get_pubkey(req) : NULL;

	X509_REQ_free(req);
	return pub;
}

/* The pending key of @p profile becomes its current key (the pending record goes). */
static int promote_key(struct x8021x *x, const char *profile, struct amtprov_error *err)
{
	char cur[STORE_FQDN_SIZE + STORE_SHORT_SIZE + 32], pend[sizeof(cur)];
	struct amtprov_secret *pem = NULL;
	int rc;

	flow_8021x_key_name(x->fqdn, profile, 0, cur, sizeof(cur));
	flow_8021x_key_name(x->fqdn, profile, 1, pend, sizeof(pend));
	rc = pi_credstore_get(x->cs, pend, &pem, err);
	if (rc == AMTPROV_OK)
		rc = pi_credstore_put(x->cs, cur, pem, err);
	util_secret_free(pem);
	if (rc == AMTPROV_OK)
		pi_credstore_remove(x->cs, pend, err);
	return rc;
}

/* Checks the issued certificate (our key, the device, clientAuth only) and records it with
 * its DER in one transaction. */
static int record_issued(struct x8021x *x, struct amtprov_error *err)
{
	struct x_need *n = &x->needs[x->cur];
	struct store *st = site_store(x->f->site);
	const unsigned char *p = x->res.cert_der;
	X509 *c = d2i_X509(NULL, &p, (long)x->res.cert_len);
	struct amtprov_secret *keypem = NULL;
	EVP_PKEY *key = NULL;
	struct store_cert rec;
	char keyname[STORE_FQDN_SIZE + STORE_SHORT_SIZE + 32];
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int rc;

	if (x->req_amt) {
		/* AMT's key, as in the request AMT signed (checked, or kept with the poll). */
		key = request_key(x);
		rc = key ? AMTPROV_OK
			 : amtprov_error_set(err, AMTPROV_E_PARSE, x->fqdn, "the 802.1X request "
					     "of profile '%s' does not parse", n->profile);
	} else {
		flow_8021x_key_name(x->fqdn, n->profile, 1, keyname, sizeof(keyname));
		rc = pi_credstore_get(x->cs, keyname, &keypem, err);
		if (rc == AMTPROV_OK)
			rc = pki_load_pem_key(keypem->data, keypem->len, keyname, &key, err);
		util_secret_free(keypem);
	}
	if (rc == AMTPROV_OK)
		rc = flow_ca_contract(x->f, x->ca, AMTPROV_PURPOSE_CLIENT_8021X, x->fqdn, key,
				      &x->res, err);
	if (rc == AMTPROV_OK && !c)
		rc = amtprov_error_set(err, AMTPROV_E_PARSE, x->fqdn, "the CA returned an 802.1X "
				       "certificate that does not parse");
	if (rc)
		goto out;
	memset(&rec, 0, sizeof(rec));
	rec.device_id = x->device_id;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	util_strlcpy(rec.serial_hex, hex ? hex : "00", sizeof(rec.serial_hex));
	pki_name(c, 1, rec.issuer, sizeof(rec.issuer));
	pki_name(c, 0, rec.subject, sizeof(rec.subject));
	rec.purpose = AMTPROV_PURPOSE_CLIENT_8021X;
	util_strlcpy(rec.profile, n->profile, sizeof(rec.profile));
	util_strlcpy(rec.template_name, n->tmpl, sizeof(rec.template_name));
	util_strlcpy(rec.ca_instance, n->ca, sizeof(rec.ca_instance));
	util_strlcpy(rec.request_id, x->res.request_id, sizeof(rec.request_id));
	util_strlcpy(rec.status, STORE_CERT_ACTIVE, sizeof(rec.status));
	rec.revocation_reason = -1;
	rc = pki_thumbprint(c, PKI_HASH_SHA256, rec.sha256, sizeof(rec.sha256), err);
	if (rc == AMTPROV_OK && pki_validity(c, &rec.not_before, &rec.not_after) != 0)
		rc = amtprov_error_set(err, AMTPROV_E_PARSE, x->fqdn,
				       "the 802.1X certificate's validity cannot be read");
	if (rc == AMTPROV_OK)
		rc = store_tx_begin(st, err);
	if (rc == AMTPROV_OK) {
		rc = store_cert_add(st, &rec, site_now(x->f->site), err);
		if (rc == AMTPROV_OK)
			rc = store_cert_data_put(st, rec.id, x->res.cert_der, x->res.cert_len,
						 x->res.chain_pem, err);
		/* AMT's key is the certificate's now (found by its public key from here on):
		 * its record goes with the recording, so a later request makes a new one. */
		if (rc == AMTPROV_OK && x->req_amt) {
			int64_t rid = 0;
			json_t *r = amt_key_record(x, n->profile, &rid);

			json_decref(r);
			if (rid)
				rc = store_pending_done(st, rid, err);
		}
		if (rc == AMTPROV_OK)
			rc = store_tx_commit(st, err);
		else
			store_tx_rollback(st);
	}
	/* The certificate is recorded: amtprov's key becomes the profile's current key. */
	if (rc == AMTPROV_OK && !x->req_amt)
		rc = promote_key(x, n->profile, err);
	if (rc == AMTPROV_OK && x->req_amt) {
		json_decref(x->key_record);
		x->key_record = NULL;
		x->key_record_id = 0;
	}
	if (rc == AMTPROV_OK) {
		char detail[STORE_TEXT_SIZE];

		n->cert_id = rec.id;
		n->cert_b64 = flow_b64(x->res.cert_der, x->res.cert_len);
		snprintf(detail, sizeof(detail), "802.1X client certificate for profile '%.64s', "
			 "serial %.64s from %.60s, expires %lld", n->profile, rec.serial_hex,
			 rec.ca_instance, (long long)rec.not_after);
		site_status(x->f->site, STATUS_CERT_ISSUED, x->fqdn, detail);
	}
out:
	OPENSSL_free(hex);
	BN_free(bn);
	EVP_PKEY_free(key);
	X509_free(c);
	return rc;
}

/* Persists a WAIT answer's cookie (and the request, which a poll may need again). */
static int keep_cookie(struct x8021x *x, int64_t at, struct amtprov_error *err)
{
	struct store *st = site_store(x->f->site);
	struct x_need *n = &x->needs[x->cur];
	char *csr = flow_b64(x->csr_der, x->csr_len);
	json_t *payload = csr ? json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "cookie", x->res.cookie,
					  "ca", n->ca, "template", n->tmpl, "profile", n->profile,
					  "csr", csr, "key", x->req_amt ? "amt" : "amtprov")
			      : NULL;
	char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	struct store_pending op;
	int rc;

	free(csr);
	json_decref(payload);
	memset(&op, 0, sizeof(op));
	op.device_id = x->device_id;
	util_strlcpy(op.kind, POLL_KIND, sizeof(op.kind));
	if (!text || util_strlcpy(op.payload, text, sizeof(op.payload)) < 0) {
		free(text);
		return amtprov_error_set(err, AMTPROV_E_INVALID, x->fqdn,
					 "cannot keep the CA's pending 802.1X request");
	}
	free(text);
	rc = store_pending_add(st, &op, site_now(x->f->site), err);
	if (rc == AMTPROV_OK)
		rc = store_pending_retry(st, op.id, "CA: 802.1X request pending", at, err);
	if (rc == AMTPROV_OK && x->poll_id)
		store_pending_done(st, x->poll_id, err);
	return rc;
}

static void on_ca_answer(struct engine_job *job, int rc, const struct amtprov_error *err,
			 void *arg)
{
	struct x8021x *x = arg;
	struct x_need *n = &x->needs[x->cur];
	struct store *st = site_store(x->f->site);
	int64_t now = site_now(x->f->site);
	struct amtprov_error e2;
	char why[STORE_TEXT_SIZE];

	(void)job;
	x->in_worker = 0;
	amtprov_error_clear(&e2);
	/* The CA answered: the request is no longer in an unknown state. */
	if (x->submit_marker)
		store_pending_done(st, x->submit_marker, &e2);
	x->submit_marker = 0;
	if (x->perr.code) {
		fail(x, x->perr.code, "802.1X '%s': %s", n->profile, x->perr.msg);
		return;
	}
	if (rc != AMTPROV_OK) {
		fail(x, rc, "802.1X '%s': %s", n->profile, err->msg);
		return;
	}
	switch (x->res.outcome) {
	case AMTPROV_CA_ISSUED:
		if (record_issued(x, &e2) != AMTPROV_OK) {
			/* Refused for what it is (the CA contract): the CA's final answer, not a
			 * request to poll again. */
			if (x->poll_id && (e2.code == AMTPROV_E_VERIFY || e2.code == AMTPROV_E_PARSE)) {
				struct amtprov_error e3;

				amtprov_error_clear(&e3);
				store_pending_done(st, x->poll_id, &e3);
				x->poll_id = 0;
			}
			finish(x, DS_INVALID, e2.code, e2.msg, 0);
			return;
		}
		if (x->poll_id)
			store_pending_done(st, x->poll_id, &e2);
		x->poll_id = 0;
		pi_ca_result_release(&x->res);
		x->cur++;
		next_need(x);
		return;
	case AMTPROV_CA_WAIT:
	case AMTPROV_CA_WAIT_WITH_DELAY: {
		int64_t at = now + (x->res.outcome == AMTPROV_CA_WAIT_WITH_DELAY &&
						    x->res.delay_seconds
					    ? (int64_t)x->res.delay_seconds
					    : POLL_SECONDS);

		if (keep_cookie(x, at, &e2) != AMTPROV_OK) {
			finish(x, DS_INVALID, e2.code, e2.msg, 0);
			return;
		}
		snprintf(why, sizeof(why), "802.1X client certificate for profile '%s' pending at "
			 "CA '%s'", n->profile, n->ca);
		site_status(x->f->site, STATUS_SITE_INCOMPLETE, x->fqdn, why);
		finish(x, x->step_state, AMTPROV_OK, NULL, at);
		return;
	}
	case AMTPROV_CA_REJECTED:
		snprintf(why, sizeof(why), "CA '%s' rejected the 802.1X request of profile '%s': %s",
			 n->ca, n->profile, x->res.message[0] ? x->res.message : "no reason");
		site_status(x->f->site, STATUS_CERT_REJECTED, x->fqdn, why);
		if (x->poll_id)
			store_pending_done(st, x->poll_id, &e2);
		finish(x, DS_INVALID, AMTPROV_E_DENIED, why, 0);
		return;
	case AMTPROV_CA_UNREACHABLE:
		snprintf(why, sizeof(why), "CA '%s' unreachable for the 802.1X request of profile "
			 "'%s'%s%s", n->ca, n->profile, x->res.message[0] ? ": " : "",
			 x->res.message);
		site_status(x->f->site, STATUS_CA_UNREACHABLE, x->fqdn, why);
		/* A poll stays recorded: the request is still at the CA. */
		finish(x, DS_INVALID, AMTPROV_E_UNREACHABLE, why, 0);
		return;
	default:
		snprintf(why, sizeof(why), "CA '%s' answered %s to the 802.1X request of profile "
			 "'%s'%s%s", n->ca, amtprov_ca_outcome_name(x->res.outcome), n->profile,
			 x->res.message[0] ? ": " : "", x->res.message);
		if (x->poll_id)
			store_pending_done(st, x->poll_id, &e2);
		finish(x, DS_INVALID, AMTPROV_E_CONFIG, why, 0);
		return;
	}
}

/* The CA call for needs[cur] on a worker thread: a new request is written ahead as a
 * marker (a poll is on record already). */
static void ask_ca(struct x8021x *x)
{
	struct x_need *n = &x->needs[x->cur];
	struct store *st = site_store(x->f->site);
	struct amtprov_error err;

	amtprov_error_clear(&err);
	x->phase = X_CERT;
	if (!x->poll_id) {
		struct store_pending marker;

		memset(&marker, 0, sizeof(marker));
		marker.device_id = x->device_id;
		util_strlcpy(marker.kind, SUBMIT_KIND, sizeof(marker.kind));
		snprintf(marker.payload, sizeof(marker.payload),
			 "{\"ca\":\"%s\",\"template\":\"%s\",\"profile\":\"%s\"}", n->ca, n->tmpl,
			 n->profile);
		if (store_pending_add(st, &marker, site_now(x->f->site), &err) != AMTPROV_OK) {
			finish(x, DS_INVALID, err.code, err.msg, 0);
			return;
		}
		x->submit_marker = marker.id;
	}
	x->in_worker = 1;
	if (engine_job_blocking(x->job, work_ca, on_ca_answer, x, &err) != AMTPROV_OK) {
		x->in_worker = 0;
		finish(x, DS_INVALID, err.code, err.msg, 0);
	}
}

/* Starts the request of needs[cur]: a poll when a WAIT is on record, else a new request,
 * its key inside AMT (AMT signs it first) or made by amtprov. */
static void request_cert(struct x8021x *x)
{
	struct x_need *n = &x->needs[x->cur];
	struct store *st = site_store(x->f->site);
	struct manifest *m = site_manifest(x->f->site);
	struct find_pending fp = {.kind = POLL_KIND, .profile = n->profile};
	struct amtprov_error err;

	x->ca = plugin_host_find(site_plugins(x->f->site), n->ca);
	x->cs = m->credstore ? plugin_host_find(site_plugins(x->f->site), m->credstore) : NULL;
	if (!x->ca || !x->cs) {
		fail(x, AMTPROV_E_CONFIG, "802.1X profile '%s': %s '%s' is not loaded", n->profile,
		     x->ca ? "credential store" : "CA instance", x->ca ? m->credstore : n->ca);
		return;
	}
	free(x->csr_der);
	x->csr_der = NULL;
	x->csr_len = 0;
	x->poll_id = 0;
	memset(&x->perr, 0, sizeof(x->perr));
	pi_ca_result_release(&x->res);
	memset(&x->res, 0, sizeof(x->res));
	amtprov_error_clear(&err);
	store_pending_list(st, x->device_id, find_pending_cb, &fp, &err);
	if (fp.found) {
		json_t *p = json_loads(fp.op.payload, 0, NULL);
		const char *csr = json_string_value(json_object_get(p, "csr"));
		size_t len = csr ? strlen(csr) : 0;
		int dl;

		x->poll_id = fp.op.id;
		util_strlcpy(x->cookie, json_string_value(json_object_get(p, "cookie")),
			     sizeof(x->cookie));
		x->csr_der = len ? malloc(len) : NULL;
		dl = x->csr_der ? EVP_DecodeBlock(x->csr_der, (const unsigned char *)csr, (int)len)
				: -1;
		if (dl > 0 && len >= 2 && csr[len - 1] == '=')
			dl -= csr[len - 2] == '=' ? 2 : 1;
		x->csr_len = dl > 0 ? (size_t)dl : 0;
		x->req_amt = json_is_string(json_object_get(p, "key")) &&
			     !strcmp(json_string_value(json_object_get(p, "key")), "amt");
		json_decref(p);
		ask_ca(x);
		return;
	}
	x->req_amt = x->amt_keys;
	if (!x->req_amt) {
		ask_ca(x);
		return;
	}
	/* AMT's key: what AMT holds and the record decide (flow_amt_key_choose). */
	json_decref(x->key_record);
	x->key_record = amt_key_record(x, n->profile, &x->key_record_id);
	x->phase = X_AMT_LIST;
	wsman(x, AMTPROV_AMT_WSMAN_ENUMERATE, FLOW_KEY_PAIR_CLASS, NULL);
}

/* A request a restart interrupted may have been issued unseen: say so (R-PROV-13). */
static void report_interrupted(struct x8021x *x)
{
	struct store *st = site_store(x->f->site);
	struct amtprov_error err;

	for (int guard = 0; guard < 64; guard++) {
		struct find_pending fp = {.kind = SUBMIT_KIND};
		char detail[sizeof(fp.op.payload) + 64];

		amtprov_error_clear(&err);
		store_pending_list(st, x->device_id, find_pending_cb, &fp, &err);
		if (!fp.found)
			return;
		snprintf(detail, sizeof(detail), "802.1X request sent %lld: %.1200s",
			 (long long)fp.op.created_at, fp.op.payload);
		site_status(x->f->site, STATUS_CERT_MAYBE_UNTRACKED, x->fqdn, detail);
		if (store_pending_done(st, fp.op.id, &err) != AMTPROV_OK)
			return;
	}
}

/* needs[cur]'s certificate: reused from the store when still good, else from the CA. */
static void cert_for_need(struct x8021x *x)
{
	struct x_need *n = &x->needs[x->cur];
	struct store *st = site_store(x->f->site);
	struct store_cert_filter flt = {.device_id = x->device_id,
					.purpose = AMTPROV_PURPOSE_CLIENT_8021X};
	struct find_cert fc = {.x = x, .need = n, .now = site_now(x->f->site)};
	struct amtprov_error err;
	uint8_t *der = NULL;
	size_t len = 0;
	char *chain = NULL;

	amtprov_error_clear(&err);
	store_cert_list(st, &flt, find_cert_cb, &fc, &err);
	if (fc.n && store_cert_data_get(st, fc.found.id, &der, &len, &chain, &err) == AMTPROV_OK) {
		n->cert_id = fc.found.id;
		n->cert_b64 = flow_b64(der, len);
		free(der);
		free(chain);
		x->cur++;
		next_need(x);
		return;
	}
	request_cert(x);
}

/* The key of needs[cur]'s certificate: the profile's current key, or its pending key when a
 * restart came between recording the certificate and promoting the key. */
static EVP_PKEY *cert_key(struct x8021x *x, struct amtprov_error *err)
{
	const char *profile = x->needs[x->cur].profile;
	const char *b = x->needs[x->cur].cert_b64;
	size_t blen = b ? strlen(b) : 0;
	unsigned char *der = blen ? malloc(blen) : NULL;
	int dl = der ? EVP_DecodeBlock(der, (const unsigned char *)b, (int)blen) : -1;
	const unsigned char *p = der;
	X509 *c;
	EVP_PKEY *key = NULL;

	if (dl > 0 && blen >= 2 && b[blen - 1] == '=')
		dl -= b[blen - 2] == '=' ? 2 : 1;
	c = dl > 0 ? d2i_X509(NULL, &p, dl) : NULL;
	free(der);
	for (int pending = 0; c && pending < 2 && !key; pending++) {
		char name[STORE_FQDN_SIZE + STORE_SHORT_SIZE + 32];
		struct amtprov_secret *pem = NULL;
		struct amtprov_error e;

		amtprov_error_clear(&e);
		flow_8021x_key_name(x->fqdn, profile, pending, name, sizeof(name));
		if (pi_credstore_get(x->cs, name, &pem, &e) == AMTPROV_OK &&
		    pki_load_pem_key(pem->data, pem->len, name, &key, &e) == AMTPROV_OK &&
		    !pki_key_matches(c, key)) {
			EVP_PKEY_free(key);
			key = NULL;
		}
		util_secret_free(pem);
		if (key && pending && promote_key(x, profile, &e) != AMTPROV_OK) {
			EVP_PKEY_free(key);
			key = NULL;
		}
	}
	if (!key)
		amtprov_error_set(err, AMTPROV_E_NOT_FOUND, x->fqdn,
				  "802.1X profile '%s': the credential store holds no key that "
				  "matches its certificate", profile);
	X509_free(c);
	return key;
}

/* ADD_KEY params for needs[cur]. */
static json_t *key_params(struct x8021x *x, struct amtprov_error *err)
{
	EVP_PKEY *key = cert_key(x, err);
	json_t *p = flow_key_params(key);

	EVP_PKEY_free(key);
	return p;
}

static void next_need(struct x8021x *x)
{
	struct amtprov_error err;
	json_t *p;

	amtprov_error_clear(&err);
	switch (x->phase) {
	case X_CERT:
		if (x->cur >= x->n_needs) {
			/* Every certificate is at hand: AMT is changed from here on. */
			x->cur = 0;
			x->phase = X_ADD_KEY;
			next_need(x);
			return;
		}
		cert_for_need(x);
		return;
	case X_ADD_KEY:
		if (x->cur >= x->n_needs) {
			x->phase = X_ENUM_CTX;
			wsman(x, AMTPROV_AMT_WSMAN_ENUMERATE, "CIM_CredentialContext", NULL);
			return;
		}
		p = key_params(x, &err);
		if (!p) {
			/* Not amtprov's key: it may be one AMT generated (R-PROV-06). */
			x->phase = X_FIND_KEY;
			wsman(x, AMTPROV_AMT_WSMAN_ENUMERATE, FLOW_KEY_PAIR_CLASS, NULL);
			return;
		}
		call(x, AMTPROV_AMT_ADD_KEY, p);
		return;
	case X_ADD_CERT:
		call(x, AMTPROV_AMT_ADD_CERTIFICATE,
		     json_pack("{s:s}", "cert_der_b64", x->needs[x->cur].cert_b64));
		return;
	case X_SET: {
		struct manifest *m = site_manifest(x->f->site);
		struct plugin_instance *np = plugin_host_find(site_plugins(x->f->site),
							      m->netprofile);
		struct amtprov_netprofile_cert certs[MAX_NEEDS];

		for (size_t i = 0; i < x->n_needs; i++)
			certs[i] = (struct amtprov_netprofile_cert){
				.struct_size = sizeof(certs[i]),
				.profile = x->needs[i].profile,
				.cert_handle = x->needs[i].cert_handle,
			};
		p = NULL;
		if (!np || pi_netprofile_render(np, m->ieee8021x, &x->info, certs, x->n_needs, &p,
						&err) != AMTPROV_OK) {
			fail(x, np ? err.code : AMTPROV_E_CONFIG, "802.1X: %s",
			     np ? err.msg : "the netprofile instance is not loaded");
			return;
		}
		call(x, AMTPROV_AMT_SET_8021X, p);
		return;
	}
	default:
		fail(x, AMTPROV_E_INTERNAL, "802.1X: bad phase %d", (int)x->phase);
		return;
	}
}

/* ---- the key of needs[cur] inside AMT (as flow_cert.c, R-PROV-06) ---- */

static void amt_fail(struct x8021x *x, int rc, const char *why)
{
	fail(x, rc, "802.1X profile '%s', key in AMT: %s", x->needs[x->cur].profile,
	     why && why[0] ? why : amtprov_strerror(rc));
}

/* AMT signs the request around its key (GeneratePKCS10RequestEx). */
static void amt_sign(struct x8021x *x)
{
	char *b64;

	X509_REQ_free(x->tmpl);
	x->tmpl = x->amt_pub ? client_template(x->fqdn, x->amt_pub) : NULL;
	b64 = x->tmpl ? flow_amt_template_b64(x->tmpl, x->amt_pub) : NULL;
	if (!b64) {
		amt_fail(x, AMTPROV_E_CRYPTO, "building the request template for AMT");
		return;
	}
	x->phase = X_AMT_SIGN;
	call(x, AMTPROV_AMT_SIGN_CSR,
	     json_pack("{s:s,s:s}", "key_handle", x->key_handle, "csr_der_b64", b64));
	free(b64);
}

/* Adopts @p derkey (key @p id) as needs[cur]'s key, recorded first when @p record. */
static void amt_adopt(struct x8021x *x, const char *id, const char *derkey, int record)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	util_strlcpy(x->key_handle, id ? id : "", sizeof(x->key_handle));
	if (record && amt_key_record_put(x, json_pack("{s:s}", "handle", x->key_handle), &err)) {
		amt_fail(x, err.code, err.msg);
		return;
	}
	EVP_PKEY_free(x->amt_pub);
	x->amt_pub = flow_amt_public_key(derkey);
	if (!x->amt_pub) {
		amt_fail(x, AMTPROV_E_PROTOCOL, "AMT reports a key pair without a usable DERKey");
		return;
	}
	amt_sign(x);
}

/* Records the intent (which keys AMT holds now) and asks AMT for a new key. */
static void amt_generate(struct x8021x *x)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (amt_key_record_put(x, json_pack("{s:O}", "before", x->key_before), &err)) {
		amt_fail(x, err.code, err.msg);
		return;
	}
	x->phase = X_AMT_GEN;
	call(x, AMTPROV_AMT_GENERATE_KEY_PAIR, json_pack("{s:i}", "bits", KEY_BITS));
}

static void amt_choose(struct x8021x *x, const json_t *items)
{
	const json_t *item = NULL;
	enum flow_amt_key_move move;

	json_decref(x->key_before);
	x->key_before = json_array();
	move = flow_amt_key_choose(x->key_record, items, x->key_before, &item);
	switch (move) {
	case FLOW_AMT_KEY_DELETE:
		util_strlcpy(x->key_handle, json_string_value(json_object_get(item, "InstanceID")),
			     sizeof(x->key_handle));
		x->phase = X_AMT_DELETE;
		wsman(x, AMTPROV_AMT_WSMAN_DELETE, FLOW_KEY_PAIR_CLASS, x->key_handle);
		return;
	case FLOW_AMT_KEY_ADOPT:
	case FLOW_AMT_KEY_ADOPT_NEW:
		amt_adopt(x, json_string_value(json_object_get(item, "InstanceID")),
			  json_string_value(json_object_get(item, "DERKey")),
			  move == FLOW_AMT_KEY_ADOPT_NEW);
		return;
	case FLOW_AMT_KEY_GENERATE:
		amt_generate(x);
		return;
	}
}

/* key_source auto on firmware without GenerateKeyPair: amtprov makes this step's keys. */
static void amt_fallback(struct x8021x *x)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (x->key_record_id)
		store_pending_done(site_store(x->f->site), x->key_record_id, &err);
	json_decref(x->key_record);
	x->key_record = NULL;
	x->key_record_id = 0;
	x->amt_keys = 0;
	x->req_amt = 0;
	ask_ca(x);
}

/* The AMT answers of the key phases; 1 when handled. */
static int on_amt_key(struct x8021x *x, int rc, const json_t *result,
		      const struct amtprov_error *err)
{
	struct amtprov_error e2;
	const char *s;

	amtprov_error_clear(&e2);
	switch (x->phase) {
	case X_AMT_LIST:
		if (rc != AMTPROV_OK)
			return 0;
		amt_choose(x, json_object_get(result, "items"));
		return 1;
	case X_AMT_DELETE:
		/* Deleted, or refused: either way no longer this profile's request key. */
		if (rc != AMTPROV_OK)
			alog(site_log(x->f->site), AMTPROV_LOG_WARNING, "%s: the 802.1X key %s was "
			     "not deleted from AMT: %s", x->fqdn, x->key_handle, err->msg);
		json_array_clear(x->key_before);
		amt_generate(x);
		return 1;
	case X_AMT_GEN:
		if (rc != AMTPROV_OK && x->amt_auto && flow_amt_unsupported(rc, err)) {
			amt_fallback(x);
			return 1;
		}
		/* Generating in the background: retry later; the intent on record lets the
		 * retry adopt the key once AMT lists it. */
		if (rc == AMTPROV_E_DEVICE && (strstr(err->msg, "PKI_GENERATING_KEYS") ||
					       strstr(err->msg, "OPERATION_IN_PROGRESS"))) {
			amt_fail(x, AMTPROV_E_BUSY, err->msg);
			return 1;
		}
		if (rc != AMTPROV_OK)
			return 0;
		s = json_string_value(json_object_get(result, "key_handle"));
		if (!s || !s[0]) {
			amt_fail(x, AMTPROV_E_PROTOCOL, "GenerateKeyPair returned no key handle");
			return 1;
		}
		util_strlcpy(x->key_handle, s, sizeof(x->key_handle));
		/* Recorded at once: from here a re-run adopts this key. */
		if (amt_key_record_put(x, json_pack("{s:s}", "handle", x->key_handle), &e2)) {
			amt_fail(x, e2.code, e2.msg);
			return 1;
		}
		x->phase = X_AMT_PUB;
		wsman(x, AMTPROV_AMT_WSMAN_GET, FLOW_KEY_PAIR_CLASS, x->key_handle);
		return 1;
	case X_AMT_PUB:
		if (rc != AMTPROV_OK)
			return 0;
		amt_adopt(x, x->key_handle, json_string_value(json_object_get(
						json_object_get(result, "instance"), "DERKey")), 0);
		return 1;
	case X_AMT_SIGN:
		if (rc != AMTPROV_OK)
			return 0;
		if (flow_amt_check_signed(x->fqdn, x->tmpl, x->amt_pub, x->key_handle,
					  json_string_value(json_object_get(result, "csr_der_b64")),
					  &x->csr_der, &x->csr_len, &e2) != AMTPROV_OK) {
			amt_fail(x, e2.code, e2.msg);
			return 1;
		}
		ask_ca(x);
		return 1;
	default:
		return 0;
	}
}

/* The certificate of needs[cur] has its key in AMT when one of AMT's key pairs (@p items)
 * is its public key: then only the certificate is added. */
static int key_in_amt(struct x8021x *x, const json_t *items)
{
	const char *b = x->needs[x->cur].cert_b64;
	size_t len = 0;
	unsigned char *der = flow_unb64(b, &len);
	const unsigned char *p = der;
	X509 *c = der ? d2i_X509(NULL, &p, (long)len) : NULL;
	const json_t *it;
	size_t i;
	int found = 0;

	free(der);
	json_array_foreach(items, i, it) {
		EVP_PKEY *k = flow_amt_public_key(
			json_string_value(json_object_get(it, "DERKey")));

		found = c && k && pki_key_matches(c, k);
		EVP_PKEY_free(k);
		if (found)
			break;
	}
	X509_free(c);
	return found;
}

static int adopt_handle(struct x8021x *x, const json_t *result)
{
	const json_t *items = json_object_get(result, "items"), *it;
	size_t i;

	json_array_foreach(items, i, it) {
		const char *der = json_string_value(json_object_get(it, "X509Certificate"));
		const char *id = json_string_value(json_object_get(it, "InstanceID"));

		if (der && id && !strcmp(der, x->needs[x->cur].cert_b64)) {
			util_strlcpy(x->needs[x->cur].cert_handle, id,
				     sizeof(x->needs[x->cur].cert_handle));
			return 1;
		}
	}
	return 0;
}

static int duplicate(int rc, const struct amtprov_error *err)
{
	return (rc == AMTPROV_E_DEVICE || rc == AMTPROV_E_PROTOCOL) && err &&
	       (strstr(err->msg, "DUPLICATE") || strstr(err->msg, "AlreadyExists"));
}

static int in_array(const json_t *a, const char *s)
{
	const json_t *v;
	size_t i;

	/* Both sides may come from a device's answer: a missing or mistyped value is no match. */
	json_array_foreach(a, i, v)
		if (s && json_string_value(v) && !strcmp(json_string_value(v), s))
			return 1;
	return 0;
}

/* Deletes the next of x->todo with @p cls; @return 0 when none is left. */
static int delete_next(struct x8021x *x, const char *cls)
{
	char id[256];

	if (!json_array_size(x->todo))
		return 0;
	util_strlcpy(id, json_string_value(json_array_get(x->todo, 0)), sizeof(id));
	json_array_remove(x->todo, 0);
	wsman(x, AMTPROV_AMT_WSMAN_DELETE, cls, id);
	return 1;
}

static void on_op(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	struct x8021x *x = ctx;
	const json_t *items = json_object_get(result, "items"), *it;
	const char *h;
	size_t i;

	if (on_amt_key(x, rc, result, err))
		return;
	switch (x->phase) {
	case X_DETECT:
		if (rc != AMTPROV_OK)
			break;
		x->info.wireless_capable = json_array_size(items) > 0;
		start_certs(x);
		return;
	case X_ENUM_CTX:
		if (rc != AMTPROV_OK)
			break;
		x->old_certs = linked_certs(items);
		if (!x->info.wireless_capable) {
			x->phase = X_SET;
			next_need(x);
			return;
		}
		x->phase = X_ENUM_WIFI;
		wsman(x, AMTPROV_AMT_WSMAN_ENUMERATE, "CIM_WiFiEndpointSettings", NULL);
		return;
	case X_ENUM_WIFI:
		if (rc != AMTPROV_OK)
			break;
		x->todo = json_array();
		json_array_foreach(items, i, it)
			if (json_string_value(json_object_get(it, "InstanceID")))
				json_array_append(x->todo, json_object_get(it, "InstanceID"));
		x->phase = X_DEL_WIFI;
		/* fall through */
	case X_DEL_WIFI:
		if (rc != AMTPROV_OK)
			break;
		if (delete_next(x, "CIM_WiFiEndpointSettings"))
			return;
		x->phase = X_SET;
		next_need(x);
		return;
	case X_ADD_KEY:
		if (rc != AMTPROV_OK && !duplicate(rc, err))
			break;
		x->phase = X_ADD_CERT;
		next_need(x);
		return;
	case X_FIND_KEY:
		if (rc != AMTPROV_OK)
			break;
		if (!key_in_amt(x, items)) {
			fail(x, AMTPROV_E_NOT_FOUND, "802.1X profile '%s': neither the credential "
			     "store nor AMT holds the key of its certificate",
			     x->needs[x->cur].profile);
			return;
		}
		x->phase = X_ADD_CERT;
		next_need(x);
		return;
	case X_ADD_CERT:
		if (rc != AMTPROV_OK && duplicate(rc, err)) {
			/* Installed by an earlier run: find its handle. */
			x->phase = X_FIND_CERT;
			wsman(x, AMTPROV_AMT_WSMAN_ENUMERATE, "AMT_PublicKeyCertificate", NULL);
			return;
		}
		if (rc != AMTPROV_OK)
			break;
		h = json_string_value(json_object_get(result, "cert_handle"));
		util_strlcpy(x->needs[x->cur].cert_handle, h ? h : "",
			     sizeof(x->needs[x->cur].cert_handle));
		x->cur++;
		x->phase = X_ADD_KEY;
		next_need(x);
		return;
	case X_FIND_CERT:
		if (rc != AMTPROV_OK)
			break;
		if (!adopt_handle(x, result)) {
			fail(x, AMTPROV_E_DEVICE, "802.1X profile '%s': AMT reports the certificate "
			     "as a duplicate but does not list it", x->needs[x->cur].profile);
			return;
		}
		x->cur++;
		x->phase = X_ADD_KEY;
		next_need(x);
		return;
	case X_SET:
		if (rc != AMTPROV_OK)
			break;
		x->phase = X_ENUM_CTX_AFTER;
		wsman(x, AMTPROV_AMT_WSMAN_ENUMERATE, "CIM_CredentialContext", NULL);
		return;
	case X_ENUM_CTX_AFTER: {
		json_t *now_linked;
		const json_t *v;

		if (rc != AMTPROV_OK)
			break;
		/* What the old links used and no link uses now goes (R-PROV-11 3). */
		now_linked = linked_certs(items);
		json_decref(x->todo);
		x->todo = json_array();
		json_array_foreach(x->old_certs, i, v)
			if (json_is_string(v) && !in_array(now_linked, json_string_value(v)) &&
			    !in_array(x->todo, json_string_value(v)))
				json_array_append(x->todo, (json_t *)v);
		json_decref(now_linked);
		x->phase = X_DEL_OLD;
	}
		/* fall through */
	case X_DEL_OLD:
		/* A certificate AMT still uses elsewhere refuses deletion: that is fine. */
		if (json_array_size(x->todo)) {
			char id[256];

			util_strlcpy(id, json_string_value(json_array_get(x->todo, 0)), sizeof(id));
			json_array_remove(x->todo, 0);
			call(x, AMTPROV_AMT_DELETE_CERTIFICATE, json_pack("{s:s}", "cert_handle", id));
			return;
		}
		end_step(x);
		return;
	default:
		break;
	}
	fail(x, rc ? rc : AMTPROV_E_INTERNAL, "802.1X step %d: %s", (int)x->phase,
	     err && err->msg[0] ? err->msg : amtprov_strerror(rc));
}

static int need_cb(void *ctx, const struct amtprov_netprofile_cert_need *need)
{
	struct x8021x *x = ctx;
	struct x_need *n;

	if (x->n_needs >= MAX_NEEDS || !need->profile || !need->ca_instance)
		return AMTPROV_E_INVALID;
	n = &x->needs[x->n_needs++];
	util_strlcpy(n->profile, need->profile, sizeof(n->profile));
	util_strlcpy(n->ca, need->ca_instance, sizeof(n->ca));
	util_strlcpy(n->tmpl, need->template_name ? need->template_name : "", sizeof(n->tmpl));
	n->wireless = need->wireless;
	return AMTPROV_OK;
}

/* The needs are asked once the wireless port is known: X_CERT starts after detection. */
static int ask_needs(struct x8021x *x, struct amtprov_error *err)
{
	struct manifest *m = site_manifest(x->f->site);
	struct plugin_instance *np = plugin_host_find(site_plugins(x->f->site), m->netprofile);

	if (!np)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, m->netprofile,
					 "netprofile instance '%s' is not loaded", m->netprofile);
	x->n_needs = 0;
	return pi_netprofile_cert_needs(np, m->ieee8021x, &x->info, need_cb, x, err);
}

/* Once the wireless port is known: which certificates, then each in turn. */
static void start_certs(struct x8021x *x)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (ask_needs(x, &err) != AMTPROV_OK) {
		fail(x, err.code, "802.1X: %s", err.msg);
		return;
	}
	x->cur = 0;
	x->phase = X_CERT;
	next_need(x);
}

int flow_8021x_start(struct flow *f, struct engine_job *job, void *session,
		     const struct amtprov_device_info *info, int64_t device_id,
		     flow_8021x_done_fn done, void *ctx, struct x8021x **out,
		     struct amtprov_error *err)
{
	struct x8021x *x = calloc(1, sizeof(*x));

	*out = NULL;
	if (!x)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	x->f = f;
	x->job = job;
	x->session = session;
	x->device_id = device_id;
	x->done = done;
	x->ctx = ctx;
	util_strlcpy(x->fqdn, info->fqdn, sizeof(x->fqdn));
	util_strlcpy(x->uuid, info->uuid ? info->uuid : "", sizeof(x->uuid));
	x->info = *info;
	x->info.fqdn = x->fqdn;
	x->info.uuid = x->uuid;
	{
		struct manifest *m = site_manifest(f->site);

		x->cs = m->credstore ? plugin_host_find(site_plugins(f->site), m->credstore) : NULL;
	}
	report_interrupted(x);
	*out = x;
	x->step_state = engine_job_state(job);
	switch (x->step_state) {
	case DS_NEED_UPDATE:
		if (lifecycle_over_wireless(engine_job_device(job))) {
			/* R-8021X-05, R-WS-04: certificates only over a wired connection; the
			 * profiles stay bound to the ones the device has. */
			site_status(f->site, STATUS_RENEWAL_SKIPPED_WIRELESS, x->fqdn,
				    "R-8021X-05: the device is reached over wireless; its 802.1X "
				    "client certificates and profiles are left as they are until an "
				    "update over a wired connection");
			lifecycle_8021x_update_mark(f->site, device_id, 1);
			finish(x, DS_INVALID, AMTPROV_OK, NULL, 0);
			return AMTPROV_OK;
		}
		x->reuse_from_id = lifecycle_8021x_update_mark(f->site, device_id, 0);
		if (!x->reuse_from_id) {
			/* No mark (the request was interrupted): the update replaces what the
			 * device has now, and a retry keeps what this one issues. */
			struct amtprov_error e;

			amtprov_error_clear(&e);
			lifecycle_8021x_mark_update(f->site, device_id, &e);
			x->reuse_from_id = lifecycle_8021x_update_mark(f->site, device_id, 0);
		}
		break;
	case DS_NEED_RENEWAL:
		break;
	default:
		/* Provisioning: what was recorded before this provisioning's web server
		 * certificate belongs to an earlier one. */
		x->reuse_from_id = lifecycle_web_cert(f->site, device_id, 1);
		break;
	}
	{
		char why[STORE_TEXT_SIZE];
		int source = flow_key_source(f, engine_job_device(job), "802.1X client keys",
					     &x->amt_auto, why, sizeof(why));

		if (source < 0) {
			finish(x, DS_INVALID, AMTPROV_E_CONFIG, why, 0);
			return AMTPROV_OK;
		}
		x->amt_keys = source;
	}
	x->phase = X_DETECT;
	wsman(x, AMTPROV_AMT_WSMAN_ENUMERATE, "CIM_WiFiPort", NULL);
	return AMTPROV_OK;
}
