/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NEED_CERTIFICATE and CA_WAITING: the device's AMT web server certificate from the site's
 * CA plugin (R-PROV-06, R-WS-01).
 *
 * Two ways to the key (manifest /certificates/web_server/key_source):
 *  - inside AMT (preferred; AMT >= 9.0 in amtprov): GenerateKeyPair, then a PKCS#10 template
 *    around AMT's public key, signed by AMT (GeneratePKCS10RequestEx), checked, submitted.
 *    The private key never leaves the device; the first stage adds only the certificate.
 *  - made by amtprov (RSA, key_bits) for older firmware: kept in the credential store and
 *    installed with AddKey (or the legacy SOAP certificate call).
 *
 * Order matters for R-PROV-13 (nothing lost, no certificate untracked, no key leaked):
 *   1. amtprov's key: written to the credential store (write-ahead) before any request;
 *      AMT's key: an "amt-key" record names the keys AMT held before GenerateKeyPair is
 *      sent, and the new key's handle as soon as it is known, so a re-run adopts the key
 *      AMT holds rather than make another; a key the CA wants replaced is deleted first;
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

#include "authz.h"
#include "flow_int.h"
#include "flow_keys.h"
#include "flow_managed.h"
#include "pki.h"
#include "status.h"
#include "util.h"

#define CA_POLL_KIND "ca-poll"
#define CA_SUBMIT_KIND "ca-submit" /* write-ahead record of a request in flight at the CA */
#define AMT_KEY_KIND "amt-key"     /* the device's web server key inside AMT (its handle) */
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
	struct amtprov_secret *ca_attrs;    /* attributes the CA wants in the request */
	int csr_withheld;                   /* the request carries them: not persisted */
	/* ---- the key generated inside AMT (R-PROV-06) ---- */
	int amt_key;                        /* 1: this request is for a key AMT holds */
	int amt_auto;                       /* key_source auto: amtprov's key if AMT can't */
	struct engine_job *job;
	void *session;                      /* m.session when verify_cert_id is set */
	int64_t verify_cert_id;             /* renewal: the session is MANAGED, verified with
					     * this certificate's chain and CRL (R-REV-01) */
	struct managed m;
	struct flow_device_accounts accounts;
	struct amtprov_device_info info;
	int amt_phase;
	json_t *key_record;                 /* payload of the amt-key record, NULL if none */
	int64_t key_record_id;
	json_t *key_before;                 /* handles AMT held before GenerateKeyPair */
	char key_handle[128];
	EVP_PKEY *amt_pub;                  /* its public key */
	X509_REQ *tmpl;                     /* the template AMT signs */
	flow_cert_done_fn done;    /* flow_cert_request(): who gets the answer */
	void *done_arg;
	void (*done_free)(void *); /* frees done_arg if the answer never reaches done */
};

/* Closes the session to AMT, provisioning or managed. */
static void amt_session_close(struct cert_call *c)
{
	if (c->verify_cert_id)
		managed_close(&c->m);
	else if (c->session)
		tloop_session_close(c->f->tloop, c->session);
	c->session = NULL;
}

static void call_free(struct cert_call *c)
{
	if (!c)
		return;
	if (c->done_free)
		c->done_free(c->done_arg);
	amt_session_close(c);
	flow_device_accounts_free(&c->accounts);
	json_decref(c->key_record);
	json_decref(c->key_before);
	EVP_PKEY_free(c->amt_pub);
	X509_REQ_free(c->tmpl);
	util_secret_free(c->ca_attrs);
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

/* The request template for @p fqdn around @p pub: CN and SAN dNSName = the FQDN (R-WS-01),
 * plus the attributes the CA asked for. Not signed. */
static X509_REQ *csr_template(const char *fqdn, EVP_PKEY *pub, const struct amtprov_secret *attrs,
			      struct amtprov_error *err)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *san;
	char san_text[STORE_FQDN_SIZE + 8];
	int ok;

	snprintf(san_text, sizeof(san_text), "DNS:%s", fqdn);
	san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san_text);
	ok = req && name && exts && san && X509_REQ_set_version(req, 0) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)fqdn, -1,
					-1, 0) &&
	     X509_REQ_set_subject_name(req, name) && X509_REQ_set_pubkey(req, pub) &&
	     sk_X509_EXTENSION_push(exts, san);
	if (ok)
		san = NULL; /* now owned by exts */
	ok = ok && X509_REQ_add_extensions(req, exts);
	/* The CA's attributes: DER Attribute SEQUENCEs, one after the other (ca.h). */
	if (ok && attrs && attrs->len) {
		const unsigned char *p = (const unsigned char *)attrs->data;
		const unsigned char *end = p + attrs->len;

		while (ok && p < end) {
			X509_ATTRIBUTE *a = d2i_X509_ATTRIBUTE(NULL, &p, (long)(end - p));

			ok = a && X509_REQ_add1_attr(req, a);
			X509_ATTRIBUTE_free(a);
		}
		if (!ok)
			pki_error(err, AMTPROV_E_PARSE, fqdn, "the CA's request attributes do not "
				  "parse as DER Attributes");
	}
	X509_EXTENSION_free(san);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	if (ok)
		return req;
	X509_REQ_free(req);
	if (!err->code)
		drain(err, AMTPROV_E_CRYPTO, fqdn, "building the certificate request");
	return NULL;
}

/* DER of @p req into c->csr_der. */
static int keep_csr(struct cert_call *c, X509_REQ *req, struct amtprov_error *err)
{
	unsigned char *der = NULL;
	int len = i2d_X509_REQ(req, &der);

	if (len <= 0)
		return drain(err, AMTPROV_E_CRYPTO, c->fqdn, "encoding the certificate request");
	free(c->csr_der);
	c->csr_der = malloc((size_t)len);
	if (c->csr_der)
		memcpy(c->csr_der, der, (size_t)len);
	c->csr_len = c->csr_der ? (size_t)len : 0;
	OPENSSL_free(der);
	return c->csr_der ? AMTPROV_OK
			  : amtprov_error_set(err, AMTPROV_E_NOMEM, c->fqdn, "out of memory");
}

/* Makes the key, stores it (write-ahead), builds the CSR. Worker thread. */
static int make_key_and_csr(struct cert_call *c, struct amtprov_error *err)
{
	char keyname[STORE_FQDN_SIZE + 32];
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	struct amtprov_secret *pem = NULL;
	int rc = AMTPROV_OK;

	key = EVP_RSA_gen((unsigned)c->key_bits);
	if (!key)
		return drain(err, AMTPROV_E_CRYPTO, c->fqdn, "generating the web server key");
	rc = pki_key_pem(key, &pem, err);
	flow_web_key_name(c->fqdn, keyname, sizeof(keyname));
	/* Write-ahead: a certificate is never issued for a key amtprov could lose. */
	if (rc == AMTPROV_OK)
		rc = pi_credstore_put(c->cs, keyname, pem, err);
	util_secret_free(pem);
	if (rc == AMTPROV_OK && !(req = csr_template(c->fqdn, key, c->ca_attrs, err)))
		rc = err->code;
	if (rc == AMTPROV_OK && !X509_REQ_sign(req, key, EVP_sha256()))
		rc = drain(err, AMTPROV_E_CRYPTO, c->fqdn, "signing the certificate request");
	if (rc == AMTPROV_OK)
		rc = keep_csr(c, req, err);
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

/* The attributes the CA wants inside the request (ca.h ABI 1.1). Worker thread. */
static int get_ca_attributes(struct cert_call *c, struct amtprov_error *err)
{
	struct amtprov_ca_request req;
	int rc;

	fill_request(c, &req);
	req.csr_der = NULL;
	req.csr_len = 0;
	rc = pi_ca_csr_attributes(c->ca, c->fqdn, &req, &c->ca_attrs, err);
	c->csr_withheld = c->ca_attrs != NULL;
	return rc;
}

/* amtprov's key: attributes, key, request, submit. Worker thread. */
static int work_submit(void *arg, struct amtprov_error *err)
{
	struct cert_call *c = arg;
	struct amtprov_ca_request req;
	int rc = get_ca_attributes(c, &c->perr);

	if (rc == AMTPROV_OK)
		rc = make_key_and_csr(c, &c->perr);
	if (rc)
		return rc;
	fill_request(c, &req);
	return pi_ca_submit(c->ca, c->fqdn, &req, &c->res, err);
}

/* AMT's key: the request AMT signed goes to the CA. Worker thread. */
static int work_submit_signed(void *arg, struct amtprov_error *err)
{
	struct cert_call *c = arg;
	struct amtprov_ca_request req;

	fill_request(c, &req);
	return pi_ca_submit(c->ca, c->fqdn, &req, &c->res, err);
}

/* AMT's key, before AMT is asked: what the CA wants in the template. Worker thread. */
static int work_attributes(void *arg, struct amtprov_error *err)
{
	struct cert_call *c = arg;

	(void)err;
	return get_ca_attributes(c, &c->perr);
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
	char keyname[STORE_FQDN_SIZE + 32];
	const ASN1_INTEGER *serial;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int rc = AMTPROV_OK;

	/* The CA must have certified our key for this device (R-WS-01), nothing else: the key
	 * AMT generated, or the one amtprov made and keeps. */
	if (!c->amt_key) {
		flow_web_key_name(c->fqdn, keyname, sizeof(keyname));
		rc = pi_credstore_get(c->cs, keyname, &keypem, err);
		if (rc == AMTPROV_OK)
			rc = pki_load_pem_key(keypem->data, keypem->len, keyname, &key, err);
		util_secret_free(keypem);
	} else if (!c->amt_pub) {
		rc = amtprov_error_set(err, AMTPROV_E_VERIFY, c->fqdn, "AMT's public key for the "
				       "request is unknown: the certificate cannot be checked");
	}
	if (rc == AMTPROV_OK)
		rc = flow_ca_contract(c->f, c->ca, AMTPROV_PURPOSE_WEB_SERVER, c->fqdn,
				      c->amt_key ? c->amt_pub : key, &c->res, err);
	if (rc == AMTPROV_OK && !x)
		rc = drain(err, AMTPROV_E_PARSE, c->fqdn, "the CA returned a certificate that "
			   "does not parse");
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

/* The ca-poll record: cookie, CA, template; the request unless withheld; AMT's key. */
static json_t *poll_payload(struct cert_call *c)
{
	json_t *p = json_pack("{s:s,s:s,s:s,s:i,s:s}", "cookie", c->res.cookie, "ca",
			      plugin_instance_name(c->ca), "template", c->template_name, "purpose",
			      AMTPROV_PURPOSE_WEB_SERVER, "key", c->amt_key ? "amt" : "amtprov");
	char *s;

	if (!p)
		return NULL;
	if (!c->csr_withheld) {
		s = flow_b64(c->csr_der, c->csr_len);
		json_object_set_new(p, "csr", json_string(s ? s : ""));
		free(s);
	}
	if (c->amt_key && c->amt_pub) {
		unsigned char *der = NULL;
		int n = i2d_PUBKEY(c->amt_pub, &der);

		s = n > 0 ? flow_b64(der, (size_t)n) : NULL;
		json_object_set_new(p, "spki", json_string(s ? s : ""));
		free(s);
		OPENSSL_free(der);
	}
	return p;
}

/* ---- the amt-key record: the device's web server key inside AMT ---- */

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

/* The device's amt-key record (payload parsed), or NULL. */
static json_t *amt_key_record(struct store *st, int64_t device_id, int64_t *id)
{
	struct find_kind fk = {.kind = AMT_KEY_KIND};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	store_pending_list(st, device_id, find_kind_cb, &fk, &err);
	if (!fk.found)
		return NULL;
	*id = fk.op.id;
	return json_loads(fk.op.payload, 0, NULL);
}

int flow_web_key_in_amt(struct flow *f, int64_t device_id)
{
	int64_t id = 0;
	json_t *rec = amt_key_record(site_store(f->site), device_id, &id);
	int held = rec && json_string_value(json_object_get(rec, "handle")) &&
		   !json_is_true(json_object_get(rec, "discard"));

	json_decref(rec);
	return held;
}

void flow_web_key_committed(struct flow *f, int64_t device_id)
{
	struct amtprov_error err;
	int64_t id = 0;
	json_t *rec = amt_key_record(site_store(f->site), device_id, &id);

	amtprov_error_clear(&err);
	if (rec)
		store_pending_done(site_store(f->site), id, &err);
	json_decref(rec);
}

int flow_key_record_replace(struct flow *f, int64_t device_id, const char *kind,
			    const char *fqdn, json_t *payload, json_t **record, int64_t *record_id,
			    struct amtprov_error *err)
{
	struct store *st = site_store(f->site);
	struct store_pending op;
	char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	int rc;

	memset(&op, 0, sizeof(op));
	op.device_id = device_id;
	util_strlcpy(op.kind, kind, sizeof(op.kind));
	if (!text || util_strlcpy(op.payload, text, sizeof(op.payload)) < 0) {
		free(text);
		json_decref(payload);
		return amtprov_error_set(err, AMTPROV_E_INVALID, fqdn,
					 "cannot record the key AMT holds");
	}
	free(text);
	rc = store_pending_add(st, &op, site_now(f->site), err);
	if (rc == AMTPROV_OK && *record_id)
		store_pending_done(st, *record_id, err);
	if (rc == AMTPROV_OK) {
		*record_id = op.id;
		json_decref(*record);
		*record = payload;
	} else {
		json_decref(payload);
	}
	return rc;
}

/* Replaces the device's amt-key record by @p payload (stolen). */
static int amt_key_record_put(struct cert_call *c, json_t *payload, struct amtprov_error *err)
{
	return flow_key_record_replace(c->f, c->device_id, AMT_KEY_KIND, c->fqdn, payload,
				       &c->key_record, &c->key_record_id, err);
}

/* The CA wants a new key: the next attempt deletes this one in AMT and makes another. */
static void amt_key_discard(struct cert_call *c)
{
	struct amtprov_error err;
	json_t *rec;

	amtprov_error_clear(&err);
	if (!c->key_record)
		c->key_record = amt_key_record(site_store(c->f->site), c->device_id,
					       &c->key_record_id);
	if (!c->key_record)
		return;
	rec = json_deep_copy(c->key_record);
	if (rec)
		json_object_set_new(rec, "discard", json_true());
	amt_key_record_put(c, rec, &err);
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
	/* AMT's key is deleted before the next attempt generates another (as provisioning). */
	if (c->res.outcome == AMTPROV_CA_NEED_REKEY && c->amt_key)
		amt_key_discard(c);
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
			/* A certificate refused for what it is (the CA contract) is the CA's final
			 * answer: polling that request again would only fetch it again. */
			if (c->pending_id && (e2.code == AMTPROV_E_VERIFY || e2.code == AMTPROV_E_PARSE))
				store_pending_done(st, c->pending_id, &e2);
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
		 * want the request again, as certmonger's POLL passes it) - unless the request
		 * carries the CA's own attributes, which may be secret (ca.h); for AMT's key,
		 * its public key, to check what the CA issues. */
		payload = poll_payload(c);
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
		/* AMT's key is deleted before the next attempt generates another. */
		if (c->amt_key)
			amt_key_discard(c);
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
	c->job = job;
	c->ca = plugin_host_find(ph, m->web_server.ca);
	c->cs = m->credstore ? plugin_host_find(ph, m->credstore) : NULL;
	c->device_id = d->id;
	c->key_bits = m->web_server.key_bits > 0 ? m->web_server.key_bits : 2048;
	util_strlcpy(c->fqdn, d->fqdn, sizeof(c->fqdn));
	util_strlcpy(c->uuid, d->uuid, sizeof(c->uuid));
	util_strlcpy(c->template_name, m->web_server.template_name, sizeof(c->template_name));
	return c;
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

/* Hands @p work to a worker, its answer to @p answer (loop thread); the job owns @p c until
 * then. On failure the job is ended and @p c freed. */
static void run_worker(struct cert_call *c, engine_blocking_fn work,
		       engine_blocking_done answer)
{
	struct engine_job *job = c->job;
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (engine_job_blocking(job, work, answer, c, &err) != AMTPROV_OK) {
		call_free(c);
		engine_job_done(job, DS_INVALID, err.code, err.msg);
		return;
	}
	engine_job_set_abort(job, call_abort, c);
}

/* Writes the ca-submit marker (write-ahead: the request is on record before the CA can
 * issue anything) and hands @p work to a worker; the answer comes to on_answer. On failure
 * the job is ended and @p c freed. */
static void start_submit(struct cert_call *c, engine_blocking_fn work)
{
	struct engine_job *job = c->job;
	struct store_pending marker;
	struct amtprov_error err;

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
	run_worker(c, work, on_answer);
}

/* amtprov makes the key. A record of a key AMT held for an earlier request is dropped: the
 * first stage must add this key (that AMT key stays unused in the device). */
static void start_amtprov_key(struct cert_call *c)
{
	struct amtprov_error err;
	int64_t id = 0;
	json_t *rec = amt_key_record(site_store(c->f->site), c->device_id, &id);

	amtprov_error_clear(&err);
	if (rec)
		store_pending_done(site_store(c->f->site), id, &err);
	json_decref(rec);
	c->amt_key = 0;
	start_submit(c, work_submit);
}

/* ---- the key generated inside AMT (R-PROV-06) ---- */

enum amt_phase { AP_LIST, AP_DELETE, AP_GENERATE, AP_PUBLIC, AP_SIGN };

static void on_amt(void *ctx, int rc, const json_t *result, const struct amtprov_error *err);

/* Ends the job in the middle of the AMT part: transient errors are retried by the engine,
 * and the amt-key record lets the retry adopt what AMT holds. */
static void amt_end(struct cert_call *c, int rc, const char *why)
{
	struct engine_job *job = c->job;
	char text[STORE_TEXT_SIZE];

	snprintf(text, sizeof(text), "web server key in AMT: %s", why && why[0] ? why
				     : amtprov_strerror(rc));
	call_free(c);
	engine_job_done(job, DS_INVALID, rc ? rc : AMTPROV_E_INTERNAL, text);
}

static void amt_call(struct cert_call *c, int phase, uint32_t op, json_t *params)
{
	struct amtprov_error err;
	int rc;

	amtprov_error_clear(&err);
	c->amt_phase = phase;
	rc = params ? tloop_call(c->f->tloop, c->session, op, params, on_amt, c, &err)
		    : amtprov_error_set(&err, AMTPROV_E_NOMEM, c->fqdn, "out of memory");
	json_decref(params);
	if (rc != AMTPROV_OK)
		amt_end(c, rc, err.msg);
}

/* A base64 DERKey as c->amt_pub. */
static int take_public_key(struct cert_call *c, const char *b64)
{
	EVP_PKEY_free(c->amt_pub);
	c->amt_pub = flow_amt_public_key(b64);
	return c->amt_pub ? 0 : -1;
}

/* A template with AMT's public key and an empty ("null") signature: AMT replaces the
 * signature with its own (GeneratePKCS10RequestEx). */
char *flow_amt_template_b64(X509_REQ *tmpl, EVP_PKEY *pub)
{
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_BIT_STRING *sig = ASN1_BIT_STRING_new();
	unsigned char zeros[512] = {0};
	int size = pub ? EVP_PKEY_get_size(pub) : 0;
	unsigned char *der = NULL;
	char *b64 = NULL;
	int n;

	if (!tmpl || !alg || !sig || size <= 0 || size > (int)sizeof(zeros) ||
	    !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL, NULL) ||
	    !ASN1_BIT_STRING_set(sig, zeros, size) || !X509_REQ_set1_signature_algo(tmpl, alg)) {
		X509_ALGOR_free(alg);
		ASN1_BIT_STRING_free(sig);
		return NULL;
	}
	X509_ALGOR_free(alg);
	X509_REQ_set0_signature(tmpl, sig);
	n = i2d_X509_REQ(tmpl, &der);
	b64 = n > 0 ? flow_b64(der, (size_t)n) : NULL;
	if (der)
		OPENSSL_cleanse(der, (size_t)n); /* may hold the CA's challenge */
	OPENSSL_free(der);
	return b64;
}

static void amt_sign(struct cert_call *c)
{
	struct amtprov_error err;
	char *b64 = NULL;

	amtprov_error_clear(&err);
	X509_REQ_free(c->tmpl);
	c->tmpl = c->amt_pub ? csr_template(c->fqdn, c->amt_pub, c->ca_attrs, &err) : NULL;
	b64 = c->tmpl ? flow_amt_template_b64(c->tmpl, c->amt_pub) : NULL;
	if (!b64) {
		amt_end(c, err.code ? err.code : AMTPROV_E_CRYPTO,
			err.msg[0] ? err.msg : "building the request template for AMT");
		return;
	}
	amt_call(c, AP_SIGN, AMTPROV_AMT_SIGN_CSR,
		 json_pack("{s:s,s:s}", "key_handle", c->key_handle, "csr_der_b64", b64));
	OPENSSL_cleanse(b64, strlen(b64));
	free(b64);
}

/* The request AMT signed must be the template, signed by the key AMT holds. */
int flow_amt_check_signed(const char *fqdn, X509_REQ *tmpl, EVP_PKEY *pub_amt,
			  const char *handle, const char *b64, uint8_t **csr_der, size_t *csr_len,
			  struct amtprov_error *err)
{
	size_t len = 0;
	unsigned char *der = flow_unb64(b64, &len);
	const unsigned char *p = der;
	X509_REQ *req = der ? d2i_X509_REQ(NULL, &p, (long)len) : NULL;
	EVP_PKEY *pub = req ? X509_REQ_get0_pubkey(req) : NULL;
	STACK_OF(X509_EXTENSION) *got = req ? X509_REQ_get_extensions(req) : NULL;
	STACK_OF(X509_EXTENSION) *want = X509_REQ_get_extensions(tmpl);
	unsigned char *gd = NULL, *wd = NULL;
	int gn = got ? i2d_X509_EXTENSIONS(got, &gd) : -1;
	int wn = want ? i2d_X509_EXTENSIONS(want, &wd) : -1;
	int rc = AMTPROV_OK;

	if (!req || p != der + len)
		rc = drain(err, AMTPROV_E_PROTOCOL, fqdn, "AMT returned a signed request that "
			   "does not parse");
	else if (!pub || EVP_PKEY_eq(pub, pub_amt) != 1)
		rc = amtprov_error_set(err, AMTPROV_E_VERIFY, fqdn, "the request AMT signed "
				       "carries another public key than key %s", handle);
	else if (X509_REQ_verify(req, pub_amt) != 1)
		rc = drain(err, AMTPROV_E_VERIFY, fqdn, "the request AMT signed does not verify "
			   "with its key");
	else if (X509_NAME_cmp(X509_REQ_get_subject_name(req),
			       X509_REQ_get_subject_name(tmpl)) != 0 ||
		 gn != wn || gn < 0 || memcmp(gd, wd, (size_t)gn) != 0 ||
		 X509_REQ_get_attr_count(req) != X509_REQ_get_attr_count(tmpl))
		rc = amtprov_error_set(err, AMTPROV_E_VERIFY, fqdn, "AMT changed the subject, "
				       "extensions or attributes of the request it signed");
	if (rc == AMTPROV_OK) {
		free(*csr_der);
		*csr_der = der;
		*csr_len = len;
		der = NULL;
	}
	OPENSSL_free(gd);
	OPENSSL_free(wd);
	sk_X509_EXTENSION_pop_free(got, X509_EXTENSION_free);
	sk_X509_EXTENSION_pop_free(want, X509_EXTENSION_free);
	X509_REQ_free(req);
	free(der);
	return rc;
}

/* Records the intent (which keys AMT holds now) and asks AMT for a new key. */
static void amt_generate(struct cert_call *c)
{
	struct amtprov_error err;
	json_t *intent = json_pack("{s:O}", "before", c->key_before);

	amtprov_error_clear(&err);
	if (amt_key_record_put(c, intent, &err) != AMTPROV_OK) {
		amt_end(c, err.code, err.msg);
		return;
	}
	amt_call(c, AP_GENERATE, AMTPROV_AMT_GENERATE_KEY_PAIR,
		 json_pack("{s:i}", "bits", c->key_bits));
}

static int in_list(const json_t *arr, const char *id)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
			return 1;
	return 0;
}

/* Adopts @p item (an AMT_PublicPrivateKeyPair instance) as the device's key and signs. */
static void amt_adopt(struct cert_call *c, const json_t *item, int record)
{
	const char *id = json_string_value(json_object_get(item, "InstanceID"));
	struct amtprov_error err;

	amtprov_error_clear(&err);
	util_strlcpy(c->key_handle, id ? id : "", sizeof(c->key_handle));
	if (record && amt_key_record_put(c, json_pack("{s:s}", "handle", c->key_handle), &err)) {
		amt_end(c, err.code, err.msg);
		return;
	}
	if (take_public_key(c, json_string_value(json_object_get(item, "DERKey")))) {
		amt_end(c, AMTPROV_E_PROTOCOL, "AMT reports a key pair without a usable DERKey");
		return;
	}
	amt_sign(c);
}

/* What AMT holds decides: adopt the recorded key, adopt the key an interrupted run had AMT
 * generate, delete a key the CA wanted replaced, or generate one. */
enum flow_amt_key_move flow_amt_key_choose(const json_t *record, const json_t *items,
					   json_t *before_out, const json_t **item)
{
	const char *handle = json_string_value(json_object_get(record, "handle"));
	const json_t *before = json_object_get(record, "before");
	const json_t *mine = NULL, *newer = NULL, *it;
	size_t i;

	json_array_foreach(items, i, it) {
		const char *id = json_string_value(json_object_get(it, "InstanceID"));

		if (!id)
			continue;
		json_array_append_new(before_out, json_string(id));
		if (handle && strcmp(id, handle) == 0)
			mine = it;
		else if (!handle && json_is_array(before) && !in_list(before, id) && !newer)
			newer = it;
	}
	*item = mine ? mine : newer;
	if (mine && json_is_true(json_object_get(record, "discard")))
		return FLOW_AMT_KEY_DELETE;
	if (mine)
		return FLOW_AMT_KEY_ADOPT;
	/* GenerateKeyPair ran but its answer never arrived (crash, lost connection). */
	return newer ? FLOW_AMT_KEY_ADOPT_NEW : FLOW_AMT_KEY_GENERATE;
}

static void amt_choose(struct cert_call *c, const json_t *items)
{
	const json_t *item = NULL;
	enum flow_amt_key_move move;

	c->key_before = json_array();
	move = flow_amt_key_choose(c->key_record, items, c->key_before, &item);
	switch (move) {
	case FLOW_AMT_KEY_DELETE:
		util_strlcpy(c->key_handle, json_string_value(json_object_get(item, "InstanceID")),
			     sizeof(c->key_handle));
		amt_call(c, AP_DELETE, AMTPROV_AMT_WSMAN_DELETE,
			 json_pack("{s:s,s:{s:s}}", "class", FLOW_KEY_PAIR_CLASS, "selectors",
				   "InstanceID", c->key_handle));
		return;
	case FLOW_AMT_KEY_ADOPT:
	case FLOW_AMT_KEY_ADOPT_NEW:
		amt_adopt(c, item, move == FLOW_AMT_KEY_ADOPT_NEW);
		return;
	case FLOW_AMT_KEY_GENERATE:
		amt_generate(c);
		return;
	}
}

/* key_source auto: firmware without GenerateKeyPair gets amtprov's key instead. */
int flow_amt_unsupported(int rc, const struct amtprov_error *err)
{
	return rc == AMTPROV_E_NOT_SUPPORTED ||
	       (rc == AMTPROV_E_DEVICE && err &&
		(strstr(err->msg, "UNSUPPORTED") || strstr(err->msg, "ActionNotSupported")));
}

static void on_amt(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	struct cert_call *c = ctx;
	const char *s;
	struct amtprov_error e2;

	amtprov_error_clear(&e2);
	switch (c->amt_phase) {
	case AP_LIST:
		if (rc != AMTPROV_OK)
			break;
		amt_choose(c, json_object_get(result, "items"));
		return;
	case AP_DELETE:
		/* Deleted, or refused (a certificate in AMT still uses it): either way it is no
		 * longer this device's request key. */
		if (rc != AMTPROV_OK)
			alog(site_log(c->f->site), AMTPROV_LOG_WARNING, "%s: the key %s the CA wanted "
			     "replaced was not deleted from AMT: %s", c->fqdn, c->key_handle,
			     err->msg);
		json_array_clear(c->key_before);
		amt_generate(c);
		return;
	case AP_GENERATE:
		if (rc != AMTPROV_OK && c->amt_auto && flow_amt_unsupported(rc, err)) {
			amt_session_close(c);
			start_amtprov_key(c);
			return;
		}
		/* Firmware that generates in the background answers "in progress": retry later;
		 * the intent on record lets the retry adopt the key once AMT lists it. */
		if (rc == AMTPROV_E_DEVICE && (strstr(err->msg, "PKI_GENERATING_KEYS") ||
					       strstr(err->msg, "OPERATION_IN_PROGRESS"))) {
			amt_end(c, AMTPROV_E_BUSY, err->msg);
			return;
		}
		if (rc != AMTPROV_OK)
			break;
		s = json_string_value(json_object_get(result, "key_handle"));
		if (!s || !s[0]) {
			amt_end(c, AMTPROV_E_PROTOCOL, "GenerateKeyPair returned no key handle");
			return;
		}
		util_strlcpy(c->key_handle, s, sizeof(c->key_handle));
		/* Recorded at once: from here a re-run adopts this key. */
		if (amt_key_record_put(c, json_pack("{s:s}", "handle", c->key_handle), &e2)) {
			amt_end(c, e2.code, e2.msg);
			return;
		}
		amt_call(c, AP_PUBLIC, AMTPROV_AMT_WSMAN_GET,
			 json_pack("{s:s,s:{s:s}}", "class", FLOW_KEY_PAIR_CLASS, "selectors",
				   "InstanceID", c->key_handle));
		return;
	case AP_PUBLIC:
		if (rc != AMTPROV_OK)
			break;
		if (take_public_key(c, json_string_value(json_object_get(
					       json_object_get(result, "instance"), "DERKey")))) {
			amt_end(c, AMTPROV_E_PROTOCOL, "AMT reports the new key without a usable "
				"DERKey");
			return;
		}
		amt_sign(c);
		return;
	case AP_SIGN:
		if (rc != AMTPROV_OK)
			break;
		if (flow_amt_check_signed(c->fqdn, c->tmpl, c->amt_pub, c->key_handle,
					  json_string_value(json_object_get(result, "csr_der_b64")),
					  &c->csr_der, &c->csr_len, &e2) != AMTPROV_OK) {
			struct engine_job *job = c->job;

			call_free(c);
			engine_job_fail(job, e2.code, e2.msg);
			return;
		}
		amt_session_close(c);
		start_submit(c, work_submit_signed);
		return;
	}
	amt_end(c, rc, err->msg);
}

/* The CA's attributes are known (worker done): open the session and look at AMT's keys. */
static void on_attributes(struct engine_job *job, int rc, const struct amtprov_error *err,
			  void *arg)
{
	struct cert_call *c = arg;
	const struct store_device *d = engine_job_device(job);
	struct amtprov_transport_target tgt;
	struct amtprov_error e2;

	(void)err;
	if (c->perr.code) {
		engine_job_done(job, DS_INVALID, c->perr.code, c->perr.msg);
		call_free(c);
		return;
	}
	amtprov_error_clear(&e2);
	c->key_record = amt_key_record(site_store(c->f->site), c->device_id, &c->key_record_id);
	if (rc == AMTPROV_OK && c->verify_cert_id) {
		/* Renewal: the device is provisioned and serves a certificate of the site's CA. */
		rc = managed_open(c->f, d, c->verify_cert_id, &c->m, &e2);
		c->session = c->m.session;
	} else if (rc == AMTPROV_OK) {
		rc = flow_device_accounts(c->f, c->fqdn, &c->accounts, &e2);
		if (rc == AMTPROV_OK) {
			flow_provisioning_target(c->f, d, &c->accounts, &c->info, &tgt);
			rc = tloop_session_open(c->f->tloop, &tgt, &c->session, &e2);
		}
	}
	if (rc != AMTPROV_OK) {
		amt_end(c, rc, e2.msg);
		return;
	}
	engine_job_set_abort(job, call_abort, c);
	amt_call(c, AP_LIST, AMTPROV_AMT_WSMAN_ENUMERATE,
		 json_pack("{s:s}", "class", FLOW_KEY_PAIR_CLASS));
}

/* Where the key is made (manifest key_source, R-PROV-06): 1 inside AMT, 0 by amtprov, -1
 * not possible (@p why says so, about @p what). */
int flow_key_source(struct flow *f, const struct store_device *d, const char *what,
		    int *amt_auto, char *why, size_t n)
{
	int mode = site_manifest(f->site)->web_server.key_source, major = 0;

	*amt_auto = 0;
	if (mode == MANIFEST_KEY_AMTPROV)
		return 0;
	sscanf(d->amt_version, "%d", &major);
	*amt_auto = mode == MANIFEST_KEY_AUTO;
	if (!f->tloop) {
		if (*amt_auto)
			return 0;
		snprintf(why, n, "/certificates/web_server/key_source 'amt' (%s): no usable "
			 "transport to reach the device's AMT", what);
		return -1;
	}
	/* amtprov's first stage for AMT < 9 is legacy SOAP, which installs the key together
	 * with the certificate (AMT itself has GenerateKeyPair from 6.2/7.0); the same rule
	 * holds for every key, so one device keeps all its keys one way. */
	if (major < 9) {
		if (*amt_auto)
			return 0;
		snprintf(why, n, "/certificates/web_server/key_source 'amt' (%s): AMT %.30s is "
			 "provisioned through legacy SOAP, which takes the key with the certificate; "
			 "use 'auto' or 'amtprov' for it (R-PROV-06)", what,
			 d->amt_version[0] ? d->amt_version : "(unknown)");
		return -1;
	}
	return 1;
}

static int choose_key_source(struct cert_call *c, const struct store_device *d, char *why,
			     size_t n)
{
	/* The CA is only ever asked for a name of the site's policy (authz.h), whatever put
	 * the device into the database and whatever the manifest said then. */
	if (!authz_name_allowed(site_manifest(c->f->site), c->fqdn, 1, why, n))
		return -1;
	return flow_key_source(c->f, d, "web server key", &c->amt_auto, why, n);
}

void flow_step_certificate(struct engine_job *job, void *ctx)
{
	struct cert_call *c = call_new(ctx, job);
	const struct store_device *d = engine_job_device(job);
	char why[STORE_TEXT_SIZE];
	int source;

	if (!c) {
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	report_interrupted_request(c);
	source = choose_key_source(c, d, why, sizeof(why));
	if (source < 0) {
		call_free(c);
		engine_job_fail(job, AMTPROV_E_CONFIG, why);
		return;
	}
	if (source == 0) {
		start_amtprov_key(c);
		return;
	}
	c->amt_key = 1;
	run_worker(c, work_attributes, on_attributes);
}

/* Renewal (flow_renew.c): the key where the manifest's key_source puts it, as provisioning
 * does; AMT's part on a MANAGED session verified with @p verify_cert_id. */
void flow_cert_request(struct flow *f, struct engine_job *job, int64_t verify_cert_id,
		       flow_cert_done_fn done, void *arg, void (*arg_free)(void *))
{
	struct cert_call *c = call_new(f, job);
	char why[STORE_TEXT_SIZE];
	int source;

	if (!c) {
		if (arg_free)
			arg_free(arg);
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	c->done = done;
	c->done_arg = arg;
	c->done_free = arg_free;
	report_interrupted_request(c);
	source = choose_key_source(c, engine_job_device(job), why, sizeof(why));
	if (source < 0) {
		c->done_free = NULL; /* done owns arg */
		call_free(c);
		done(job, AMTPROV_E_CONFIG, 0, why, arg);
		return;
	}
	if (source == 0) {
		start_amtprov_key(c);
		return;
	}
	c->amt_key = 1;
	c->verify_cert_id = verify_cert_id;
	run_worker(c, work_attributes, on_attributes);
}

void flow_step_ca_waiting(struct engine_job *job, void *ctx)
{
	struct flow *f = ctx;
	struct cert_call *c = call_new(f, job);
	struct find_kind fk = {.kind = CA_POLL_KIND};
	struct amtprov_error err;
	json_t *payload;
	const char *spki;

	if (!c) {
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	amtprov_error_clear(&err);
	store_pending_list(site_store(f->site), c->device_id, find_kind_cb, &fk, &err);
	if (!fk.found) {
		/* Nothing to poll (lost or done elsewhere): request again. */
		call_free(c);
		engine_job_done(job, DS_NEED_CERTIFICATE, AMTPROV_OK, NULL);
		return;
	}
	c->pending_id = fk.op.id;
	payload = json_loads(fk.op.payload, 0, NULL);
	util_strlcpy(c->cookie, json_string_value(json_object_get(payload, "cookie")),
		     sizeof(c->cookie));
	c->csr_der = flow_unb64(json_string_value(json_object_get(payload, "csr")), &c->csr_len);
	c->csr_withheld = !c->csr_der;
	c->amt_key = json_is_string(json_object_get(payload, "key")) &&
		     strcmp(json_string_value(json_object_get(payload, "key")), "amt") == 0;
	spki = json_string_value(json_object_get(payload, "spki"));
	if (c->amt_key && spki) {
		size_t len = 0;
		unsigned char *der = flow_unb64(spki, &len);
		const unsigned char *p = der;

		c->amt_pub = der ? d2i_PUBKEY(NULL, &p, (long)len) : NULL;
		free(der);
	}
	json_decref(payload);
	run_worker(c, work_poll, on_answer);
}
