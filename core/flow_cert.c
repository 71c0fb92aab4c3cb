/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NEED_CERTIFICATE and CA_WAITING: the device's AMT web server certificate from the site's
 * CA plugin (R-PROV-06, R-WS-01).
 *
 * This path makes the key in amtprov (RSA, manifest key_bits), which every firmware accepts
 * through AddKey; the AMT-generated-key path (GenerateKeyPair + GeneratePKCS10RequestEx)
 * is preferred for firmware that has it and joins when the transport offers it.
 *
 * Order matters for R-PROV-13 (nothing lost, no certificate untracked):
 *   1. key made and written to the credential store (write-ahead) before any request;
 *   2. request submitted (worker thread: CA calls may block);
 *   3. ISSUED: certificate parsed, matched against the key, recorded with its DER in one
 *      transaction; WAIT: the cookie persisted as a pending operation, polled later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <jansson.h>

#include "flow_int.h"
#include "pki.h"
#include "status.h"
#include "util.h"

#define CA_POLL_KIND "ca-poll"
#define CA_SUBMIT_KIND "ca-submit" /* write-ahead record of a request in flight at the CA */
#define DEFAULT_POLL_SECONDS 60

void flow_web_key_name(const char *fqdn, char *out, size_t size)
{
	snprintf(out, size, "device/%s/web-key", fqdn);
}

/* Work for one request, shared between the loop thread and the worker. */
struct cert_call {
	struct flow *f;
	struct plugin_instance *ca;
	struct plugin_instance *cs;
	char fqdn[STORE_FQDN_SIZE];
	char uuid[STORE_UUID_SIZE];
	char template_name[STORE_SHORT_SIZE];
	int key_bits;
	int64_t device_id;
	int64_t pending_id;                 /* CA_WAITING: the pending operation */
	char cookie[AMTPROV_CA_COOKIE_SIZE]; /* CA_WAITING: what to poll with */
	uint8_t *csr_der;
	size_t csr_len;
	int64_t submit_marker;              /* the ca-submit pending operation, 0 if none */
	struct amtprov_ca_result res;
	struct amtprov_error perr; /* preparation error from the worker */
	flow_cert_done_fn done;    /* flow_cert_request(): who gets the answer */
	void *done_arg;
	void (*done_free)(void *); /* frees done_arg if the answer never reaches done */
};

static void call_free(struct cert_call *c)
{
	if (!c)
		return;
	if (c->done_free)
		c->done_free(c->done_arg);
	free(c->csr_der);
	pi_ca_result_release(&c->res);
	free(c);
}

static void call_abort(void *arg)
{
	call_free(arg);
}

static int drain(struct amtprov_error *err, int code, const char *where, const char *what)
{
	return pki_error(err, code, where, "%s", what);
}

/* Makes the key, stores it (write-ahead), builds the CSR. Worker thread. */
static int make_key_and_csr(struct cert_call *c, struct amtprov_error *err)
{
	char keyname[STORE_FQDN_SIZE + 32];
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *san = NULL;
	struct amtprov_secret *pem = NULL;
	unsigned char *der = NULL;
	char san_text[STORE_FQDN_SIZE + 8];
	int rc = AMTPROV_OK, len;

	key = EVP_RSA_gen((unsigned)c->key_bits);
	if (!key)
		return drain(err, AMTPROV_E_CRYPTO, c->fqdn, "generating the web server key");
	rc = pki_key_pem(key, &pem, err);
	flow_web_key_name(c->fqdn, keyname, sizeof(keyname));
	/* Write-ahead: a certificate is never issued for a key amtprov could lose. */
	if (rc == AMTPROV_OK)
		rc = pi_credstore_put(c->cs, keyname, pem, err);
	util_secret_free(pem);
	if (rc)
		goto out;
	req = X509_REQ_new();
	name = X509_NAME_new();
	snprintf(san_text, sizeof(san_text), "DNS:%s", c->fqdn);
	exts = sk_X509_EXTENSION_new_null();
	san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san_text);
	if (!req || !name || !exts || !san || !X509_REQ_set_version(req, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)c->fqdn,
					-1, -1, 0) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key) ||
	    !sk_X509_EXTENSION_push(exts, san)) {
		rc = drain(err, AMTPROV_E_CRYPTO, c->fqdn, "building the certificate request");
		goto out;
	}
	san = NULL; /* now owned by exts */
	if (!X509_REQ_add_extensions(req, exts) || !X509_REQ_sign(req, key, EVP_sha256())) {
		rc = drain(err, AMTPROV_E_CRYPTO, c->fqdn, "signing the certificate request");
		goto out;
	}
	len = i2d_X509_REQ(req, &der);
	if (len <= 0) {
		rc = drain(err, AMTPROV_E_CRYPTO, c->fqdn, "encoding the certificate request");
		goto out;
	}
	c->csr_der = malloc((size_t)len);
	if (!c->csr_der) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, c->fqdn, "out of memory");
		goto out;
	}
	memcpy(c->csr_der, der, (size_t)len);
	c->csr_len = (size_t)len;
out:
	OPENSSL_free(der);
	X509_EXTENSION_free(san);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return rc;
}

static void fill_request(struct cert_call *c, struct amtprov_ca_request *req)
{
	memset(req, 0, sizeof(*req));
	req->struct_size = sizeof(*req);
	req->purpose = AMTPROV_PURPOSE_WEB_SERVER;
	req->csr_der = c->csr_der;
	req->csr_len = c->csr_len;
	req->template_name = c->template_name[0] ? c->template_name : NULL;
	req->subject_fqdn = c->fqdn;
	req->device_uuid = c->uuid;
}

static int work_submit(void *arg, struct amtprov_error *err)
{
	struct cert_call *c = arg;
	struct amtprov_ca_request req;
	int rc = make_key_and_csr(c, &c->perr);

	if (rc)
		return rc;
	fill_request(c, &req);
	return pi_ca_submit(c->ca, c->fqdn, &req, &c->res, err);
}

static int work_poll(void *arg, struct amtprov_error *err)
{
	struct cert_call *c = arg;
	struct amtprov_ca_request req;
	char cookie[AMTPROV_CA_COOKIE_SIZE];

	fill_request(c, &req);
	util_strlcpy(cookie, c->cookie, sizeof(cookie));
	return pi_ca_poll(c->ca, c->fqdn, &req, cookie, &c->res, err);
}

/* Parses an issued certificate, checks it is for our key and the device, records it. */
static int record_issued(struct cert_call *c, int64_t *new_id, struct amtprov_error *err)
{
	struct store *st = site_store(c->f->site);
	const unsigned char *p = c->res.cert_der;
	X509 *x = d2i_X509(NULL, &p, (long)c->res.cert_len);
	struct amtprov_secret *keypem = NULL;
	EVP_PKEY *key = NULL;
	struct store_cert rec;
	char keyname[STORE_FQDN_SIZE + 32], cn[STORE_FQDN_SIZE];
	const ASN1_INTEGER *serial;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int rc = AMTPROV_OK;

	if (!x)
		return drain(err, AMTPROV_E_PARSE, c->fqdn, "the CA returned a certificate that does "
				"not parse");
	/* The CA must have certified our key for this device (R-WS-01), nothing else. */
	flow_web_key_name(c->fqdn, keyname, sizeof(keyname));
	rc = pi_credstore_get(c->cs, keyname, &keypem, err);
	if (rc == AMTPROV_OK)
		rc = pki_load_pem_key(keypem->data, keypem->len, keyname, &key, err);
	util_secret_free(keypem);
	if (rc == AMTPROV_OK && !pki_key_matches(x, key))
		rc = amtprov_error_set(err, AMTPROV_E_VERIFY, c->fqdn,
				       "the CA issued a certificate for another key");
	if (rc == AMTPROV_OK && (pki_subject_cn(x, cn, sizeof(cn)) != 1 || strcasecmp(cn, c->fqdn)))
		rc = amtprov_error_set(err, AMTPROV_E_VERIFY, c->fqdn,
				       "the CA issued a certificate for CN '%s', not the device "
				       "FQDN", cn);
	if (rc == AMTPROV_OK && !pki_has_eku(x, PKI_OID_SERVER_AUTH))
		rc = amtprov_error_set(err, AMTPROV_E_VERIFY, c->fqdn,
				       "the CA issued a certificate without serverAuth (R-WS-01)");
	if (rc)
		goto out;
	memset(&rec, 0, sizeof(rec));
	rec.device_id = c->device_id;
	serial = X509_get0_serialNumber(x);
	bn = ASN1_INTEGER_to_BN(serial, NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	util_strlcpy(rec.serial_hex, hex ? hex : "00", sizeof(rec.serial_hex));
	pki_name(x, 1, rec.issuer, sizeof(rec.issuer));
	pki_name(x, 0, rec.subject, sizeof(rec.subject));
	rec.purpose = AMTPROV_PURPOSE_WEB_SERVER;
	util_strlcpy(rec.template_name, c->template_name, sizeof(rec.template_name));
	util_strlcpy(rec.ca_instance, plugin_instance_name(c->ca), sizeof(rec.ca_instance));
	util_strlcpy(rec.request_id, c->res.request_id, sizeof(rec.request_id));
	rc = pki_thumbprint(x, PKI_HASH_SHA256, rec.sha256, sizeof(rec.sha256), err);
	if (rc == AMTPROV_OK && pki_validity(x, &rec.not_before, &rec.not_after) != 0)
		rc = amtprov_error_set(err, AMTPROV_E_PARSE, c->fqdn,
				       "the issued certificate's validity cannot be read");
	if (rc)
		goto out;
	util_strlcpy(rec.status, STORE_CERT_ACTIVE, sizeof(rec.status));
	rec.revocation_reason = -1;
	/* Record and data in one transaction: never a certificate row without its DER. */
	rc = store_tx_begin(st, err);
	if (rc == AMTPROV_OK)
		rc = store_cert_add(st, &rec, site_now(c->f->site), err);
	if (rc == AMTPROV_OK)
		rc = store_cert_data_put(st, rec.id, c->res.cert_der, c->res.cert_len,
					 c->res.chain_pem, err);
	if (rc == AMTPROV_OK)
		rc = store_tx_commit(st, err);
	else
		store_tx_rollback(st);
	if (rc == AMTPROV_OK) {
		char detail[STORE_TEXT_SIZE];

		*new_id = rec.id;
		snprintf(detail, sizeof(detail), "web server certificate serial %.64s from %.60s, "
			 "expires %lld", rec.serial_hex, rec.ca_instance, (long long)rec.not_after);
		site_status(c->f->site, STATUS_CERT_ISSUED, c->fqdn, detail);
	}
out:
	OPENSSL_free(hex);
	BN_free(bn);
	EVP_PKEY_free(key);
	X509_free(x);
	return rc;
}

/* ---- R-REV-02b: an earlier certificate of the same device is revoked, Superseded ---- */

#define REVOKE_KIND "revoke"
#define MAX_OLD 16

struct revoke_call {
	struct flow *f;
	struct plugin_instance *cas[MAX_OLD]; /* the CA that issued each certificate */
	char fqdn[STORE_FQDN_SIZE];
	size_t n;
	struct store_cert certs[MAX_OLD];
	int64_t pending[MAX_OLD];
	struct amtprov_ca_result res[MAX_OLD];
	int rc[MAX_OLD];
};

struct old_certs {
	struct revoke_call *r;
	int64_t keep_id;
};

static int collect_old(void *ctx, const struct store_cert *c)
{
	struct old_certs *o = ctx;

	if (c->id != o->keep_id && c->purpose == AMTPROV_PURPOSE_WEB_SERVER &&
	    strcmp(c->status, STORE_CERT_ACTIVE) == 0 && o->r->n < MAX_OLD)
		o->r->certs[o->r->n++] = *c;
	return 0;
}

static int work_revoke(void *arg, struct amtprov_error *err)
{
	struct revoke_call *r = arg;

	for (size_t i = 0; i < r->n; i++) {
		struct amtprov_ca_revocation rev = {
			.struct_size = sizeof(rev),
			.serial_hex = r->certs[i].serial_hex,
			.issuer = r->certs[i].issuer,
			.reason = AMTPROV_REVOKE_SUPERSEDED,
		};
		struct amtprov_error e;

		amtprov_error_clear(&e);
		if (!r->cas[i]) {
			r->res[i].outcome = AMTPROV_CA_UNCONFIGURED;
			snprintf(r->res[i].message, sizeof(r->res[i].message),
				 "CA instance '%s' is not loaded", r->certs[i].ca_instance);
			r->rc[i] = AMTPROV_OK;
			continue;
		}
		r->rc[i] = pi_ca_revoke(r->cas[i], r->fqdn, &rev, &r->res[i], &e);
	}
	return AMTPROV_OK;
}

static void on_revoked(struct engine_job *job, int rc, const struct amtprov_error *err, void *arg)
{
	struct revoke_call *r = arg;
	struct store *st = site_store(r->f->site);
	int64_t now = site_now(r->f->site);

	for (size_t i = 0; i < r->n; i++) {
		struct amtprov_error e;
		char detail[STORE_TEXT_SIZE];

		amtprov_error_clear(&e);
		snprintf(detail, sizeof(detail), "serial %.64s superseded by a new certificate "
			 "(R-REV-02b)", r->certs[i].serial_hex);
		if (r->rc[i] == AMTPROV_OK && r->res[i].outcome == AMTPROV_CA_ISSUED) {
			store_cert_set_status(st, r->certs[i].id, STORE_CERT_REVOKED,
					      AMTPROV_REVOKE_SUPERSEDED, now, &e);
			store_pending_done(st, r->pending[i], &e);
			site_status(r->f->site, STATUS_CERT_REVOKED, r->fqdn, detail);
		} else {
			/* Never forgotten: the pending operation stays for the retry task. */
			store_pending_retry(st, r->pending[i],
					    r->res[i].message[0] ? r->res[i].message
								 : amtprov_ca_outcome_name(r->res[i].outcome),
					    now + DEFAULT_POLL_SECONDS, &e);
			site_status(r->f->site, STATUS_REVOCATION_QUEUED, r->fqdn, detail);
		}
		pi_ca_result_release(&r->res[i]);
	}
	free(r);
	engine_job_done(job, DS_NEED_FIRST_STAGE, AMTPROV_OK, NULL);
}

/* Queues (write-ahead) and starts the revocation of the device's other active web server
 * certificates. @return 1 if the job continues in on_revoked, 0 if there was nothing. */
static int revoke_superseded(struct cert_call *c, struct engine_job *job, int64_t new_id)
{
	struct store *st = site_store(c->f->site);
	struct store_cert_filter flt = {.device_id = c->device_id};
	struct revoke_call *r = calloc(1, sizeof(*r));
	struct old_certs o = {.r = r, .keep_id = new_id};
	struct amtprov_error err;

	if (!r)
		return 0;
	amtprov_error_clear(&err);
	store_cert_list(st, &flt, collect_old, &o, &err);
	if (!r->n) {
		free(r);
		return 0;
	}
	r->f = c->f;
	util_strlcpy(r->fqdn, c->fqdn, sizeof(r->fqdn));
	for (size_t i = 0; i < r->n; i++) {
		struct store_pending op;

		r->cas[i] = plugin_host_find(site_plugins(c->f->site), r->certs[i].ca_instance);
		memset(&op, 0, sizeof(op));
		op.device_id = c->device_id;
		util_strlcpy(op.kind, REVOKE_KIND, sizeof(op.kind));
		snprintf(op.payload, sizeof(op.payload),
			 "{\"cert_id\":%lld,\"reason\":%d,\"ca\":\"%s\"}",
			 (long long)r->certs[i].id, AMTPROV_REVOKE_SUPERSEDED, r->certs[i].ca_instance);
		/* Recorded before the CA is asked, so a crash cannot lose the revocation. */
		store_cert_set_status(st, r->certs[i].id, STORE_CERT_REVOKE_PENDING, -1,
				      site_now(c->f->site), &err);
		store_pending_add(st, &op, site_now(c->f->site), &err);
		r->pending[i] = op.id;
	}
	if (engine_job_blocking(job, work_revoke, on_revoked, r, &err) != AMTPROV_OK) {
		free(r);
		return 0; /* queued: the retry task revokes them */
	}
	engine_job_set_abort(job, free, r);
	return 1;
}

/* flow_cert_request(): an issued certificate is recorded and handed back; any other
 * answer is a failure the caller decides about (renewal needs a CA that issues at once,
 * as seed 000 requires: automatic approval). */
static void answer_to_caller(struct cert_call *c, struct engine_job *job)
{
	struct amtprov_error e2;
	char why[STORE_TEXT_SIZE];
	int64_t new_id = 0;

	c->done_free = NULL; /* done owns done_arg from here */
	amtprov_error_clear(&e2);
	if (c->res.outcome == AMTPROV_CA_ISSUED) {
		if (record_issued(c, &new_id, &e2) == AMTPROV_OK) {
			c->done(job, AMTPROV_OK, new_id, NULL, c->done_arg);
			return;
		}
		snprintf(why, sizeof(why), "certificate not recorded: %s", e2.msg);
		c->done(job, e2.code ? e2.code : AMTPROV_E_INTERNAL, 0, why, c->done_arg);
		return;
	}
	snprintf(why, sizeof(why), "CA '%s' answered %s%s%s", plugin_instance_name(c->ca),
		 amtprov_ca_outcome_name(c->res.outcome), c->res.message[0] ? ": " : "",
		 c->res.message);
	c->done(job,
		c->res.outcome == AMTPROV_CA_UNREACHABLE || c->res.outcome == AMTPROV_CA_WAIT ||
				c->res.outcome == AMTPROV_CA_WAIT_WITH_DELAY
			? AMTPROV_E_UNREACHABLE
			: AMTPROV_E_DENIED,
		0, why, c->done_arg);
}

/* Turns a CA answer into the device's next state (loop thread). */
static void on_answer(struct engine_job *job, int rc, const struct amtprov_error *err, void *arg)
{
	struct cert_call *c = arg;
	struct store *st = site_store(c->f->site);
	int64_t now = site_now(c->f->site);
	struct amtprov_error e2;
	char why[STORE_TEXT_SIZE];

	amtprov_error_clear(&e2);
	/* The CA answered: the request is no longer in an unknown state. */
	if (c->submit_marker)
		store_pending_done(st, c->submit_marker, &e2);
	amtprov_error_clear(&e2);
	if (c->perr.code) {
		engine_job_done(job, DS_INVALID, c->perr.code, c->perr.msg);
		goto out;
	}
	if (rc != AMTPROV_OK) {
		engine_job_done(job, DS_INVALID, rc, err->msg);
		goto out;
	}
	if (c->done) {
		engine_job_set_abort(job, NULL, NULL); /* c is freed below; done sets its own */
		answer_to_caller(c, job);
		goto out;
	}
	switch (c->res.outcome) {
	case AMTPROV_CA_ISSUED: {
		int64_t new_id = 0;

		if (record_issued(c, &new_id, &e2) != AMTPROV_OK) {
			snprintf(why, sizeof(why), "certificate not recorded: %s", e2.msg);
			engine_job_fail(job, e2.code, why);
			break;
		}
		if (c->pending_id)
			store_pending_done(st, c->pending_id, &e2);
		/* R-REV-02b: an older certificate of this device is superseded. */
		if (revoke_superseded(c, job, new_id))
			break;
		engine_job_done(job, DS_NEED_FIRST_STAGE, AMTPROV_OK, NULL);
		break;
	}
	case AMTPROV_CA_WAIT:
	case AMTPROV_CA_WAIT_WITH_DELAY: {
		int64_t at = now + (c->res.outcome == AMTPROV_CA_WAIT_WITH_DELAY && c->res.delay_seconds
					    ? (int64_t)c->res.delay_seconds
					    : DEFAULT_POLL_SECONDS);
		struct store_pending op;
		json_t *payload;
		char *text;

		if (c->pending_id && strcmp(c->res.cookie, c->cookie) == 0) {
			/* Still pending with the same cookie: poll again later. */
			store_pending_retry(st, c->pending_id, "CA: request pending", at, &e2);
			engine_job_defer(job, DS_CA_WAITING, at);
			break;
		}
		/* A CA may hand out a new cookie with each answer: keep the latest, in a new
		 * record written before the old one is dropped (never none on disk). */
		/* The cookie and the request are what a poll after a restart needs (CAs may
		 * want the request again, as certmonger's POLL passes it). */
		{
			char *b64 = malloc(4 * ((c->csr_len + 2) / 3) + 1);

			if (b64)
				EVP_EncodeBlock((unsigned char *)b64, c->csr_der, (int)c->csr_len);
			payload = b64 ? json_pack("{s:s,s:s,s:s,s:i,s:s}", "cookie", c->res.cookie,
						  "ca", plugin_instance_name(c->ca), "template",
						  c->template_name, "purpose",
						  AMTPROV_PURPOSE_WEB_SERVER, "csr", b64)
				      : NULL;
			free(b64);
		}
		text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
		json_decref(payload);
		memset(&op, 0, sizeof(op));
		op.device_id = c->device_id;
		util_strlcpy(op.kind, CA_POLL_KIND, sizeof(op.kind));
		if (!text || util_strlcpy(op.payload, text, sizeof(op.payload)) < 0 ||
		    store_pending_add(st, &op, now, &e2) != AMTPROV_OK) {
			free(text);
			engine_job_done(job, DS_INVALID, e2.code ? e2.code : AMTPROV_E_INVALID,
					"cannot keep the CA's pending request");
			break;
		}
		free(text);
		store_pending_retry(st, op.id, "CA: request pending", at, &e2);
		if (c->pending_id)
			store_pending_done(st, c->pending_id, &e2);
		engine_job_defer(job, DS_CA_WAITING, at);
		break;
	}
	case AMTPROV_CA_REJECTED:
		snprintf(why, sizeof(why), "CA '%s' rejected the request: %s",
			 plugin_instance_name(c->ca), c->res.message[0] ? c->res.message : "no reason");
		site_status(c->f->site, STATUS_CERT_REJECTED, c->fqdn, why);
		if (c->pending_id)
			store_pending_done(st, c->pending_id, &e2);
		engine_job_fail(job, AMTPROV_E_DENIED, why);
		break;
	case AMTPROV_CA_UNREACHABLE:
		snprintf(why, sizeof(why), "CA '%s' unreachable%s%s", plugin_instance_name(c->ca),
			 c->res.message[0] ? ": " : "", c->res.message);
		site_status(c->f->site, STATUS_CA_UNREACHABLE, c->fqdn, why);
		if (c->pending_id) {
			/* Keep waiting: the request is still at the CA. */
			store_pending_retry(st, c->pending_id, why, now + DEFAULT_POLL_SECONDS, &e2);
			engine_job_defer(job, DS_CA_WAITING, now + DEFAULT_POLL_SECONDS);
		} else {
			engine_job_done(job, DS_INVALID, AMTPROV_E_UNREACHABLE, why);
		}
		break;
	case AMTPROV_CA_NEED_REKEY:
		if (c->pending_id)
			store_pending_done(st, c->pending_id, &e2);
		/* A new key and request on the next attempt. */
		engine_job_done(job, DS_NEED_CERTIFICATE, AMTPROV_OK, NULL);
		break;
	default:
		snprintf(why, sizeof(why), "CA '%s' answered %s%s%s", plugin_instance_name(c->ca),
			 amtprov_ca_outcome_name(c->res.outcome), c->res.message[0] ? ": " : "",
			 c->res.message);
		if (c->pending_id)
			store_pending_done(st, c->pending_id, &e2);
		engine_job_fail(job, AMTPROV_E_CONFIG, why);
		break;
	}
out:
	call_free(c);
}

static struct cert_call *call_new(struct flow *f, struct engine_job *job)
{
	struct manifest *m = site_manifest(f->site);
	struct plugin_host *ph = site_plugins(f->site);
	const struct store_device *d = engine_job_device(job);
	struct cert_call *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->f = f;
	c->ca = plugin_host_find(ph, m->web_server.ca);
	c->cs = m->credstore ? plugin_host_find(ph, m->credstore) : NULL;
	c->device_id = d->id;
	c->key_bits = m->web_server.key_bits > 0 ? m->web_server.key_bits : 2048;
	util_strlcpy(c->fqdn, d->fqdn, sizeof(c->fqdn));
	util_strlcpy(c->uuid, d->uuid, sizeof(c->uuid));
	util_strlcpy(c->template_name, m->web_server.template_name, sizeof(c->template_name));
	return c;
}

struct find_kind {
	const char *kind;
	struct store_pending op;
	int found;
};

static int find_kind_cb(void *ctx, const struct store_pending *op)
{
	struct find_kind *fk = ctx;

	if (strcmp(op->kind, fk->kind) != 0)
		return 0;
	fk->op = *op;
	fk->found = 1;
	return 1;
}

/* A ca-submit record left by an earlier attempt means a restart came while the CA had the
 * request: it may have issued a certificate amtprov never received. Say so (R-PROV-13). */
static void report_interrupted_request(struct cert_call *c)
{
	struct store *st = site_store(c->f->site);
	struct amtprov_error err;

	for (;;) {
		struct find_kind fk = {.kind = CA_SUBMIT_KIND};
		char detail[sizeof(fk.op.payload) + 64];

		amtprov_error_clear(&err);
		store_pending_list(st, c->device_id, find_kind_cb, &fk, &err);
		if (!fk.found)
			return;
		snprintf(detail, sizeof(detail), "request sent %lld to %.1200s",
			 (long long)fk.op.created_at, fk.op.payload);
		site_status(c->f->site, STATUS_CERT_MAYBE_UNTRACKED, c->fqdn, detail);
		if (store_pending_done(st, fk.op.id, &err) != AMTPROV_OK)
			return;
	}
}

static void start_request(struct flow *f, struct engine_job *job, flow_cert_done_fn done,
			  void *done_arg, void (*done_free)(void *))
{
	struct cert_call *c = call_new(f, job);
	struct store_pending marker;
	struct amtprov_error err;

	if (!c) {
		if (done_free)
			done_free(done_arg);
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	c->done = done;
	c->done_arg = done_arg;
	c->done_free = done_free;
	report_interrupted_request(c);
	/* Write-ahead: the request is on record before the CA can issue anything. */
	memset(&marker, 0, sizeof(marker));
	marker.device_id = c->device_id;
	util_strlcpy(marker.kind, CA_SUBMIT_KIND, sizeof(marker.kind));
	snprintf(marker.payload, sizeof(marker.payload), "{\"ca\":\"%s\",\"template\":\"%s\"}",
		 plugin_instance_name(c->ca), c->template_name);
	amtprov_error_clear(&err);
	if (store_pending_add(site_store(c->f->site), &marker, site_now(c->f->site), &err) !=
	    AMTPROV_OK) {
		call_free(c);
		engine_job_done(job, DS_INVALID, err.code, err.msg);
		return;
	}
	c->submit_marker = marker.id;
	amtprov_error_clear(&err);
	if (engine_job_blocking(job, work_submit, on_answer, c, &err) != AMTPROV_OK) {
		call_free(c);
		engine_job_done(job, DS_INVALID, err.code, err.msg);
		return;
	}
	engine_job_set_abort(job, call_abort, c);
}

void flow_step_certificate(struct engine_job *job, void *ctx)
{
	start_request(ctx, job, NULL, NULL, NULL);
}

void flow_cert_request(struct flow *f, struct engine_job *job, flow_cert_done_fn done,
		       void *arg, void (*arg_free)(void *))
{
	start_request(f, job, done, arg, arg_free);
}

struct find_poll {
	struct store_pending op;
	int found;
};

static int find_poll_cb(void *ctx, const struct store_pending *op)
{
	struct find_poll *fp = ctx;

	if (strcmp(op->kind, CA_POLL_KIND) != 0)
		return 0;
	fp->op = *op;
	fp->found = 1;
	return 1;
}

void flow_step_ca_waiting(struct engine_job *job, void *ctx)
{
	struct flow *f = ctx;
	struct cert_call *c = call_new(f, job);
	struct find_poll fp = {0};
	struct amtprov_error err;
	json_t *payload;

	if (!c) {
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	amtprov_error_clear(&err);
	store_pending_list(site_store(f->site), c->device_id, find_poll_cb, &fp, &err);
	if (!fp.found) {
		/* Nothing to poll (lost or done elsewhere): request again. */
		call_free(c);
		engine_job_done(job, DS_NEED_CERTIFICATE, AMTPROV_OK, NULL);
		return;
	}
	c->pending_id = fp.op.id;
	payload = json_loads(fp.op.payload, 0, NULL);
	util_strlcpy(c->cookie, json_string_value(json_object_get(payload, "cookie")),
		     sizeof(c->cookie));
	{
		const char *b64 = json_string_value(json_object_get(payload, "csr"));
		size_t n = b64 ? strlen(b64) : 0;
		int len;

		c->csr_der = n ? malloc(n) : NULL;
		len = c->csr_der ? EVP_DecodeBlock(c->csr_der, (const unsigned char *)b64, (int)n) : -1;
		/* EVP_DecodeBlock counts the padding as data: trim it. */
		if (len > 0 && n >= 2 && b64[n - 1] == '=')
			len -= b64[n - 2] == '=' ? 2 : 1;
		c->csr_len = len > 0 ? (size_t)len : 0;
	}
	json_decref(payload);
	if (engine_job_blocking(job, work_poll, on_answer, c, &err) != AMTPROV_OK) {
		call_free(c);
		engine_job_done(job, DS_INVALID, err.code, err.msg);
		return;
	}
	engine_job_set_abort(job, call_abort, c);
}
