/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The enrollment sub-machine (enroll.h): one certificate from a CA, for any purpose.
 *
 * Order matters for R-PROV-13 (nothing lost, no certificate untracked, no key leaked):
 *   1. amtprov's key: written to the credential store (write-ahead) before any request;
 *      AMT's key: an amt-key record names the keys AMT held before GenerateKeyPair is
 *      sent, and the new key's handle as soon as it is known, so a re-run adopts the key
 *      AMT holds rather than make another; a key the CA wants replaced is deleted first;
 *   2. a submit record, then the request goes to the CA (worker thread: CA calls block);
 *   3. ISSUED: the CA contract (ca_contract.c) on the certificate, then it is recorded with
 *      its DER in one transaction; WAIT: the cookie is kept as a poll record, polled by the
 *      step named in it once the device's CA_WAITING time has come.
 */
#include "enroll.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <jansson.h>

#include "authz.h"
#include "ca_contract.h"
#include "engine.h"
#include "flow_int.h"
#include "flow_keys.h"
#include "pki.h"
#include "status.h"
#include "util.h"

#define POLL_SECONDS 60

/* The pending operations of a purpose. Their names are those of the first schema (the web
 * server's had no prefix), so what a device left under older code is found again. */
struct enroll_kind {
	uint32_t purpose;
	const char *submit, *poll, *amt_key;
	const char *what;       /* in messages */
	int amt_key_to_commit;  /* the amt-key record stays until the commit (the first stage
				 * and renewal add only the certificate when AMT holds the key);
				 * else it goes when the certificate is recorded (802.1X finds its
				 * key by its public key) */
	int san;                /* the request carries SAN dNSName = FQDN (R-WS-01) */
};

static const struct enroll_kind kinds[] = {
	{AMTPROV_PURPOSE_WEB_SERVER, "ca-submit", "ca-poll", "amt-key", "web server", 1, 1},
	{AMTPROV_PURPOSE_CLIENT_8021X, "8021x-submit", "8021x-poll", "8021x-amt-key", "802.1X",
	 0, 0},
};

static const struct enroll_kind *kind_of(uint32_t purpose)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].purpose == purpose)
			return &kinds[i];
	return NULL;
}

enum amt_phase { AP_LIST, AP_DELETE, AP_GENERATE, AP_PUBLIC, AP_SIGN };

struct enroll {
	struct flow *f;
	struct engine_job *job;
	const struct enroll_kind *k;
	char profile[STORE_SHORT_SIZE];
	char ca_name[STORE_SHORT_SIZE];
	char template_name[STORE_SHORT_SIZE];
	char fqdn[STORE_FQDN_SIZE];
	char uuid[STORE_UUID_SIZE];
	char label[STORE_SHORT_SIZE + 32]; /* "web server", "802.1X profile 'lan'" */
	int64_t device_id;
	int key_bits;
	int digest_bits;
	enum device_state resume;
	struct plugin_instance *ca, *cs;
	void *session;
	enroll_session_fn open_session;
	void *open_ctx;
	enroll_done_fn done;
	void *done_ctx;
	/* the request */
	int64_t poll_id;                     /* polling: the poll record */
	char cookie[AMTPROV_CA_COOKIE_SIZE]; /* polling: what to poll with */
	uint8_t *csr_der;
	size_t csr_len;
	int csr_withheld;                    /* it carries the CA's attributes: not persisted */
	int64_t submit_marker;               /* the submit record, 0 if none */
	struct amtprov_ca_result res;
	struct amtprov_error perr;           /* preparation error from the worker */
	struct amtprov_secret *ca_attrs;     /* attributes the CA wants in the request */
	/* the key inside AMT (R-PROV-06) */
	int amt_key;                         /* 1: this request is for a key AMT holds */
	int amt_auto;                        /* key_source auto: amtprov's key if AMT can't */
	int amt_phase;
	json_t *key_record;                  /* payload of the amt-key record, NULL if none */
	int64_t key_record_id;
	json_t *key_before;                  /* handles AMT held before GenerateKeyPair */
	char key_handle[128];
	EVP_PKEY *amt_pub;                   /* its public key */
	X509_REQ *tmpl;                      /* the template AMT signs */
};

void enroll_free(struct enroll *e)
{
	if (!e)
		return;
	json_decref(e->key_record);
	json_decref(e->key_before);
	EVP_PKEY_free(e->amt_pub);
	X509_REQ_free(e->tmpl);
	util_secret_free(e->ca_attrs);
	free(e->csr_der);
	pi_ca_result_release(&e->res);
	free(e);
}

/* Ends the enrollment: @p e is freed, then the caller hears how it went. */
static void finish(struct enroll *e, enum enroll_outcome outcome, int rc, int final,
		   int64_t cert_id, int64_t at, const char *why)
{
	struct enroll_result r = {.outcome = outcome, .rc = rc, .final = final,
				  .cert_id = cert_id, .at = at};
	enroll_done_fn done = e->done;
	void *ctx = e->done_ctx;

	if (outcome == ENROLL_FAILED && !r.rc)
		r.rc = AMTPROV_E_INTERNAL;
	snprintf(r.why, sizeof(r.why), "%s", why ? why : "");
	enroll_free(e);
	done(ctx, &r);
}

static void fail(struct enroll *e, int rc, const char *why)
{
	finish(e, ENROLL_FAILED, rc, 0, 0, 0, why && why[0] ? why : amtprov_strerror(rc));
}

static int drain(struct amtprov_error *err, int code, const char *where, const char *what)
{
	return pki_error(err, code, where, "%s", what);
}

/* ---- key names ---- */

void flow_web_key_name(const char *fqdn, char *out, size_t size)
{
	snprintf(out, size, "device/%s/web-key", fqdn);
}

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

/* amtprov's key of the request in flight: an 802.1X profile keeps the key of the
 * certificate in use until the new one is issued; the web server key is replaced (the
 * first stage or renewal installs the new one with its certificate). */
static void request_key_name(const struct enroll *e, char *out, size_t size)
{
	if (e->k->purpose == AMTPROV_PURPOSE_CLIENT_8021X)
		flow_8021x_key_name(e->fqdn, e->profile, 1, out, size);
	else
		flow_web_key_name(e->fqdn, out, size);
}

int enroll_key_promote(struct flow *f, const char *fqdn, const char *profile,
		       struct amtprov_error *err)
{
	struct manifest *m = site_manifest(f->site);
	struct plugin_instance *cs = m->credstore ? plugin_host_find(site_plugins(f->site),
								     m->credstore) : NULL;
	char cur[STORE_FQDN_SIZE + STORE_SHORT_SIZE + 32], pend[sizeof(cur)];
	struct amtprov_secret *pem = NULL;
	int rc;

	if (!cs)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, fqdn, "no credential store");
	flow_8021x_key_name(fqdn, profile, 0, cur, sizeof(cur));
	flow_8021x_key_name(fqdn, profile, 1, pend, sizeof(pend));
	rc = pi_credstore_get(cs, pend, &pem, err);
	if (rc == AMTPROV_OK)
		rc = pi_credstore_put(cs, cur, pem, err);
	util_secret_free(pem);
	if (rc == AMTPROV_OK)
		pi_credstore_remove(cs, pend, err);
	return rc;
}

/* ---- pending records ---- */

struct find_rec {
	const char *kind;
	const char *profile; /* NULL: any */
	struct store_pending op;
	int found;
};

static int find_rec_cb(void *ctx, const struct store_pending *op)
{
	struct find_rec *fr = ctx;
	json_t *p;
	const char *prof;
	int match;

	if (strcmp(op->kind, fr->kind))
		return 0;
	if (fr->profile) {
		p = json_loads(op->payload, 0, NULL);
		prof = json_string_value(json_object_get(p, "profile"));
		match = !strcmp(prof ? prof : "", fr->profile);
		json_decref(p);
		if (!match)
			return 0;
	}
	fr->op = *op;
	fr->found = 1;
	return 1;
}

static int find_rec(struct flow *f, int64_t device_id, const char *kind, const char *profile,
		    struct store_pending *out)
{
	struct find_rec fr = {.kind = kind, .profile = profile};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	store_pending_list(site_store(f->site), device_id, find_rec_cb, &fr, &err);
	if (fr.found && out)
		*out = fr.op;
	return fr.found;
}

/* The amt-key record of the request (payload parsed), or NULL. */
static json_t *key_record_get(struct flow *f, const struct enroll_kind *k, int64_t device_id,
			      const char *profile, int64_t *id)
{
	struct store_pending op;

	*id = 0;
	if (!find_rec(f, device_id, k->amt_key, profile, &op))
		return NULL;
	*id = op.id;
	return json_loads(op.payload, 0, NULL);
}

int flow_web_key_in_amt(struct flow *f, int64_t device_id)
{
	int64_t id = 0;
	json_t *rec = key_record_get(f, kind_of(AMTPROV_PURPOSE_WEB_SERVER), device_id, "", &id);
	int held = rec && json_string_value(json_object_get(rec, "handle")) &&
		   !json_is_true(json_object_get(rec, "discard"));

	json_decref(rec);
	return held;
}

void flow_web_key_committed(struct flow *f, int64_t device_id)
{
	struct amtprov_error err;
	int64_t id = 0;
	json_t *rec = key_record_get(f, kind_of(AMTPROV_PURPOSE_WEB_SERVER), device_id, "", &id);

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

/* Replaces the request's amt-key record by @p payload (stolen; an 802.1X one names its
 * profile). */
static int key_record_put(struct enroll *e, json_t *payload, struct amtprov_error *err)
{
	if (payload && e->profile[0])
		json_object_set_new(payload, "profile", json_string(e->profile));
	return flow_key_record_replace(e->f, e->device_id, e->k->amt_key, e->fqdn, payload,
				       &e->key_record, &e->key_record_id, err);
}

/* The CA wants a new key: the next attempt deletes this one in AMT and makes another. */
static void key_record_discard(struct enroll *e)
{
	struct amtprov_error err;
	json_t *rec;

	amtprov_error_clear(&err);
	if (!e->key_record)
		e->key_record = key_record_get(e->f, e->k, e->device_id, e->profile,
					       &e->key_record_id);
	if (!e->key_record)
		return;
	rec = json_deep_copy(e->key_record);
	if (rec)
		json_object_set_new(rec, "discard", json_true());
	key_record_put(e, rec, &err);
}

static void key_record_drop(struct enroll *e)
{
	struct amtprov_error err;
	int64_t id = 0;
	json_t *rec = key_record_get(e->f, e->k, e->device_id, e->profile, &id);

	amtprov_error_clear(&err);
	if (rec)
		store_pending_done(site_store(e->f->site), id, &err);
	json_decref(rec);
	json_decref(e->key_record);
	e->key_record = NULL;
	e->key_record_id = 0;
}

int enroll_waiting(struct flow *f, int64_t device_id, uint32_t *purpose, char *profile,
		   size_t psize, enum device_state *resume)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct store_pending op;
		json_t *p;
		const char *s;

		if (!find_rec(f, device_id, kinds[i].poll, NULL, &op))
			continue;
		p = json_loads(op.payload, 0, NULL);
		*purpose = kinds[i].purpose;
		s = json_string_value(json_object_get(p, "profile"));
		snprintf(profile, psize, "%s", s ? s : "");
		s = json_string_value(json_object_get(p, "resume"));
		*resume = s ? device_state_parse(s) : DS_INVALID;
		json_decref(p);
		return 1;
	}
	return 0;
}

/* ---- the request ---- */

/* The request template for the FQDN around @p pub: CN = the FQDN (R-WS-01, R-8021X-02),
 * SAN dNSName too for a web server, plus the attributes the CA asked for. Not signed. */
static X509_REQ *csr_template(const struct enroll *e, EVP_PKEY *pub, struct amtprov_error *err)
{
	const struct amtprov_secret *attrs = e->ca_attrs;
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *san = NULL;
	char san_text[STORE_FQDN_SIZE + 8];
	int ok;

	if (e->k->san) {
		snprintf(san_text, sizeof(san_text), "DNS:%s", e->fqdn);
		san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san_text);
	}
	ok = req && name && exts && (san || !e->k->san) && X509_REQ_set_version(req, 0) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)e->fqdn,
					-1, -1, 0) &&
	     X509_REQ_set_subject_name(req, name) && X509_REQ_set_pubkey(req, pub);
	if (ok && san) {
		ok = sk_X509_EXTENSION_push(exts, san) > 0;
		if (ok)
			san = NULL; /* now owned by exts */
		ok = ok && X509_REQ_add_extensions(req, exts);
	}
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
			pki_error(err, AMTPROV_E_PARSE, e->fqdn, "the CA's request attributes do "
				  "not parse as DER Attributes");
	}
	X509_EXTENSION_free(san);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	if (ok)
		return req;
	X509_REQ_free(req);
	if (!err->code)
		drain(err, AMTPROV_E_CRYPTO, e->fqdn, "building the certificate request");
	return NULL;
}

/* DER of @p req into e->csr_der. */
static int keep_csr(struct enroll *e, X509_REQ *req, struct amtprov_error *err)
{
	unsigned char *der = NULL;
	int len = i2d_X509_REQ(req, &der);

	if (len <= 0)
		return drain(err, AMTPROV_E_CRYPTO, e->fqdn, "encoding the certificate request");
	free(e->csr_der);
	e->csr_der = malloc((size_t)len);
	if (e->csr_der)
		memcpy(e->csr_der, der, (size_t)len);
	e->csr_len = e->csr_der ? (size_t)len : 0;
	OPENSSL_free(der);
	return e->csr_der ? AMTPROV_OK
			  : amtprov_error_set(err, AMTPROV_E_NOMEM, e->fqdn, "out of memory");
}

/* Makes amtprov's key, stores it (write-ahead), builds the CSR. Worker thread. */
static int make_key_and_csr(struct enroll *e, struct amtprov_error *err)
{
	char keyname[STORE_FQDN_SIZE + STORE_SHORT_SIZE + 32];
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	struct amtprov_secret *pem = NULL;
	int rc = AMTPROV_OK;

	key = EVP_RSA_gen((unsigned)e->key_bits);
	if (!key)
		return amtprov_error_set(err, AMTPROV_E_CRYPTO, e->fqdn, "making the %s key",
					 e->label);
	rc = pki_key_pem(key, &pem, err);
	request_key_name(e, keyname, sizeof(keyname));
	/* Write-ahead: a certificate is never issued for a key amtprov could lose. */
	if (rc == AMTPROV_OK)
		rc = pi_credstore_put(e->cs, keyname, pem, err);
	util_secret_free(pem);
	if (rc == AMTPROV_OK && !(req = csr_template(e, key, err)))
		rc = err->code;
	if (rc == AMTPROV_OK &&
	    !X509_REQ_sign(req, key, e->digest_bits > 256 ? EVP_sha384() : EVP_sha256()))
		rc = drain(err, AMTPROV_E_CRYPTO, e->fqdn, "signing the certificate request");
	if (rc == AMTPROV_OK)
		rc = keep_csr(e, req, err);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return rc;
}

static void fill_request(const struct enroll *e, struct amtprov_ca_request *req)
{
	memset(req, 0, sizeof(*req));
	req->struct_size = sizeof(*req);
	req->purpose = e->k->purpose;
	req->csr_der = e->csr_der;
	req->csr_len = e->csr_len;
	req->template_name = e->template_name[0] ? e->template_name : NULL;
	req->subject_fqdn = e->fqdn;
	req->device_uuid = e->uuid;
	req->netprofile = e->profile[0] ? e->profile : NULL;
	req->signature_digest = e->digest_bits > 256 ? "sha384" : "sha256";
}

/* The attributes the CA wants inside the request (ca.h ABI 1.1). Worker thread. */
static int get_ca_attributes(struct enroll *e, struct amtprov_error *err)
{
	struct amtprov_ca_request req;
	int rc;

	fill_request(e, &req);
	req.csr_der = NULL;
	req.csr_len = 0;
	rc = pi_ca_csr_attributes(e->ca, e->fqdn, &req, &e->ca_attrs, err);
	e->csr_withheld = e->ca_attrs != NULL;
	return rc;
}

/* amtprov's key: attributes, key, request, submit. Worker thread. */
static int work_submit(void *arg, struct amtprov_error *err)
{
	struct enroll *e = arg;
	struct amtprov_ca_request req;
	int rc = get_ca_attributes(e, &e->perr);

	if (rc == AMTPROV_OK)
		rc = make_key_and_csr(e, &e->perr);
	if (rc)
		return rc;
	fill_request(e, &req);
	return pi_ca_submit(e->ca, e->fqdn, &req, &e->res, err);
}

/* AMT's key: the request AMT signed goes to the CA. Worker thread. */
static int work_submit_signed(void *arg, struct amtprov_error *err)
{
	struct enroll *e = arg;
	struct amtprov_ca_request req;

	fill_request(e, &req);
	return pi_ca_submit(e->ca, e->fqdn, &req, &e->res, err);
}

/* AMT's key, before AMT is asked: what the CA wants in the template. Worker thread. */
static int work_attributes(void *arg, struct amtprov_error *err)
{
	(void)err;
	return get_ca_attributes(arg, &((struct enroll *)arg)->perr);
}

static int work_poll(void *arg, struct amtprov_error *err)
{
	struct enroll *e = arg;
	struct amtprov_ca_request req;
	char cookie[AMTPROV_CA_COOKIE_SIZE];

	fill_request(e, &req);
	util_strlcpy(cookie, e->cookie, sizeof(cookie));
	return pi_ca_poll(e->ca, e->fqdn, &req, cookie, &e->res, err);
}

/* ---- the answer ---- */

/* The key the request certified: AMT's public key, or amtprov's stored key. */
static EVP_PKEY *request_key(struct enroll *e, struct amtprov_error *err)
{
	char keyname[STORE_FQDN_SIZE + STORE_SHORT_SIZE + 32];
	struct amtprov_secret *pem = NULL;
	EVP_PKEY *key = NULL;

	if (e->amt_key) {
		if (e->amt_pub && EVP_PKEY_up_ref(e->amt_pub))
			return e->amt_pub;
		/* A poll record of older code kept only the request AMT signed. */
		if (e->csr_der) {
			const unsigned char *p = e->csr_der;
			X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)e->csr_len);

			key = req ? X509_REQ_get_pubkey(req) : NULL;
			X509_REQ_free(req);
		}
		if (!key)
			amtprov_error_set(err, AMTPROV_E_VERIFY, e->fqdn, "AMT's public key for the "
					  "%s request is unknown: the certificate cannot be checked",
					  e->label);
		return key;
	}
	request_key_name(e, keyname, sizeof(keyname));
	if (pi_credstore_get(e->cs, keyname, &pem, err) == AMTPROV_OK)
		pki_load_pem_key(pem->data, pem->len, keyname, &key, err);
	util_secret_free(pem);
	return key;
}

/* Checks an issued certificate (the CA contract: the request's key, the device, the
 * purpose) and records it with its DER in one transaction. */
static int record_issued(struct enroll *e, int64_t *new_id, struct amtprov_error *err)
{
	struct store *st = site_store(e->f->site);
	X509 *x = NULL;
	EVP_PKEY *key = request_key(e, err);
	struct store_cert rec;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int rc = key ? AMTPROV_OK : (err->code ? err->code : AMTPROV_E_VERIFY);

	if (rc == AMTPROV_OK)
		rc = flow_ca_contract(e->f, e->ca, e->k->purpose, e->fqdn, key, e->key_bits,
				      e->digest_bits, &e->res, err);
	/* The certificate the contract just parsed and checked, by reference. */
	if (rc == AMTPROV_OK)
		x = ca_contract_leaf(e->res.cert_der, e->res.cert_len);
	if (rc == AMTPROV_OK && !x)
		rc = amtprov_error_set(err, AMTPROV_E_PARSE, e->fqdn, "the CA returned a %s "
				       "certificate that does not parse", e->label);
	if (rc)
		goto out;
	memset(&rec, 0, sizeof(rec));
	rec.device_id = e->device_id;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	util_strlcpy(rec.serial_hex, hex ? hex : "00", sizeof(rec.serial_hex));
	pki_name(x, 1, rec.issuer, sizeof(rec.issuer));
	pki_name(x, 0, rec.subject, sizeof(rec.subject));
	rec.purpose = e->k->purpose;
	util_strlcpy(rec.profile, e->profile, sizeof(rec.profile));
	util_strlcpy(rec.template_name, e->template_name, sizeof(rec.template_name));
	util_strlcpy(rec.ca_instance, plugin_instance_name(e->ca), sizeof(rec.ca_instance));
	util_strlcpy(rec.request_id, e->res.request_id, sizeof(rec.request_id));
	util_strlcpy(rec.status, STORE_CERT_ACTIVE, sizeof(rec.status));
	rec.revocation_reason = -1;
	rc = pki_thumbprint(x, PKI_HASH_SHA256, rec.sha256, sizeof(rec.sha256), err);
	if (rc == AMTPROV_OK && pki_validity(x, &rec.not_before, &rec.not_after) != 0)
		rc = amtprov_error_set(err, AMTPROV_E_PARSE, e->fqdn, "the issued %s "
				       "certificate's validity cannot be read", e->label);
	if (rc)
		goto out;
	/* Record and data in one transaction: never a certificate row without its DER. */
	rc = store_tx_begin(st, err);
	if (rc == AMTPROV_OK) {
		rc = store_cert_add(st, &rec, site_now(e->f->site), err);
		if (rc == AMTPROV_OK)
			rc = store_cert_data_put(st, rec.id, e->res.cert_der, e->res.cert_len,
						 e->res.chain_pem, err);
		/* AMT's key is the certificate's now (found by its public key from here on):
		 * its record goes with the recording, so a later request makes a new one. */
		if (rc == AMTPROV_OK && e->amt_key && !e->k->amt_key_to_commit) {
			int64_t rid = 0;
			json_t *r = key_record_get(e->f, e->k, e->device_id, e->profile, &rid);

			json_decref(r);
			if (rid)
				rc = store_pending_done(st, rid, err);
		}
		if (rc == AMTPROV_OK && e->submit_marker)
			rc = store_pending_done(st, e->submit_marker, err);
		if (rc == AMTPROV_OK)
			rc = store_tx_commit(st, err);
		else
			store_tx_rollback(st);
		if (rc == AMTPROV_OK)
			e->submit_marker = 0;
	}
	/* The managed sessions verify the device against this certificate's CRL. */
	if (rc == AMTPROV_OK && e->k->purpose == AMTPROV_PURPOSE_WEB_SERVER)
		flow_crl_url_note(e->f, e->res.cert_der, e->res.cert_len, x);
	/* Recorded: an 802.1X profile's pending key becomes its current key. */
	if (rc == AMTPROV_OK && !e->amt_key && e->k->purpose == AMTPROV_PURPOSE_CLIENT_8021X)
		rc = enroll_key_promote(e->f, e->fqdn, e->profile, err);
	if (rc == AMTPROV_OK) {
		char detail[STORE_TEXT_SIZE], exp[32];

		*new_id = rec.id;
		snprintf(detail, sizeof(detail), "%s certificate%s%.64s%s serial %.64s from %.60s, "
			 "expires %s", e->k->purpose == AMTPROV_PURPOSE_CLIENT_8021X
			 ? "802.1X client" : "web server", e->profile[0] ? " for profile '" : "",
			 e->profile, e->profile[0] ? "'," : "", rec.serial_hex, rec.ca_instance,
			 util_fmt_time(rec.not_after, exp, sizeof(exp)));
		site_status(e->f->site, STATUS_CERT_ISSUED, e->fqdn, detail);
	}
out:
	OPENSSL_free(hex);
	BN_free(bn);
	EVP_PKEY_free(key);
	X509_free(x);
	return rc;
}

/* The poll record: cookie, CA, template, purpose, profile, the step that polls, the
 * request unless withheld (CAs may want it again, as certmonger's POLL passes it; not when
 * it carries the CA's own attributes, which may be secret, ca.h), AMT's public key. */
static json_t *poll_payload(struct enroll *e)
{
	json_t *p = json_pack("{s:s,s:s,s:s,s:i,s:s}", "cookie", e->res.cookie, "ca",
			      plugin_instance_name(e->ca), "template", e->template_name, "purpose",
			      (int)e->k->purpose, "key", e->amt_key ? "amt" : "amtprov");
	char *s;

	if (!p)
		return NULL;
	if (e->profile[0])
		json_object_set_new(p, "profile", json_string(e->profile));
	if (e->resume != DS_INVALID)
		json_object_set_new(p, "resume", json_string(device_state_name(e->resume)));
	if (!e->csr_withheld) {
		s = flow_b64(e->csr_der, e->csr_len);
		json_object_set_new(p, "csr", json_string(s ? s : ""));
		free(s);
	}
	if (e->amt_key && e->amt_pub) {
		unsigned char *der = NULL;
		int n = i2d_PUBKEY(e->amt_pub, &der);

		s = n > 0 ? flow_b64(der, (size_t)n) : NULL;
		json_object_set_new(p, "spki", json_string(s ? s : ""));
		free(s);
		OPENSSL_free(der);
	}
	return p;
}

/* Keeps a WAIT answer: the same cookie is polled again later; a new one goes in a new
 * record written before the old one is dropped (never none on disk). */
static int keep_waiting(struct enroll *e, int64_t at, struct amtprov_error *err)
{
	struct store *st = site_store(e->f->site);
	struct store_pending op;
	json_t *payload;
	char *text;
	int rc;

	if (e->poll_id && strcmp(e->res.cookie, e->cookie) == 0)
		return store_pending_retry(st, e->poll_id, "CA: request pending", at, err);
	payload = poll_payload(e);
	text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	json_decref(payload);
	memset(&op, 0, sizeof(op));
	op.device_id = e->device_id;
	util_strlcpy(op.kind, e->k->poll, sizeof(op.kind));
	if (!text || util_strlcpy(op.payload, text, sizeof(op.payload)) < 0) {
		free(text);
		return amtprov_error_set(err, AMTPROV_E_INVALID, e->fqdn, "cannot keep the CA's "
					 "pending %s request", e->label);
	}
	free(text);
	rc = store_pending_add(st, &op, site_now(e->f->site), err);
	if (rc == AMTPROV_OK)
		rc = store_pending_retry(st, op.id, "CA: request pending", at, err);
	if (rc == AMTPROV_OK && e->poll_id)
		store_pending_done(st, e->poll_id, err);
	return rc;
}

static void poll_done(struct enroll *e)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (e->poll_id)
		store_pending_done(site_store(e->f->site), e->poll_id, &err);
	e->poll_id = 0;
}

/* Turns a CA answer into the enrollment's outcome (loop thread). */
static void on_answer(struct engine_job *job, int rc, const struct amtprov_error *err, void *arg)
{
	struct enroll *e = arg;
	struct store *st = site_store(e->f->site);
	int64_t now = site_now(e->f->site), new_id = 0, at;
	struct amtprov_error e2;
	char why[STORE_TEXT_SIZE];
	const char *ca = plugin_instance_name(e->ca);

	(void)job;
	amtprov_error_clear(&e2);
	/* The CA answered: the request is no longer in an unknown state. An issued certificate
	 * drops the submit record in the transaction that records it (record_issued): a kill
	 * between the two would otherwise leave a certificate neither recorded nor reported. */
	if (e->submit_marker &&
	    (e->perr.code || rc != AMTPROV_OK || e->res.outcome != AMTPROV_CA_ISSUED)) {
		store_pending_done(st, e->submit_marker, &e2);
		e->submit_marker = 0;
	}
	amtprov_error_clear(&e2);
	if (e->perr.code) {
		fail(e, e->perr.code, e->perr.msg);
		return;
	}
	if (rc != AMTPROV_OK) {
		fail(e, rc, err->msg);
		return;
	}
	switch (e->res.outcome) {
	case AMTPROV_CA_ISSUED:
		if (record_issued(e, &new_id, &e2) != AMTPROV_OK) {
			struct amtprov_error e3;

			/* Not recorded, and the failure says why (status and log). */
			amtprov_error_clear(&e3);
			if (e->submit_marker)
				store_pending_done(st, e->submit_marker, &e3);
			e->submit_marker = 0;
			/* A certificate refused for what it is (the CA contract) is the CA's final
			 * answer: polling that request again would only fetch it again. */
			if (e2.code == AMTPROV_E_VERIFY || e2.code == AMTPROV_E_PARSE)
				poll_done(e);
			snprintf(why, sizeof(why), "%s certificate not recorded: %s", e->label,
				 e2.msg);
			finish(e, ENROLL_FAILED, e2.code, 1, 0, 0, why);
			return;
		}
		poll_done(e);
		finish(e, ENROLL_ISSUED, AMTPROV_OK, 0, new_id, 0, NULL);
		return;
	case AMTPROV_CA_WAIT:
	case AMTPROV_CA_WAIT_WITH_DELAY:
		at = now + (e->res.outcome == AMTPROV_CA_WAIT_WITH_DELAY && e->res.delay_seconds
				    ? (int64_t)e->res.delay_seconds
				    : POLL_SECONDS);
		if (keep_waiting(e, at, &e2) != AMTPROV_OK) {
			fail(e, e2.code ? e2.code : AMTPROV_E_INVALID, e2.msg);
			return;
		}
		finish(e, ENROLL_WAIT, AMTPROV_OK, 0, 0, at, NULL);
		return;
	case AMTPROV_CA_REJECTED:
		snprintf(why, sizeof(why), "CA '%s' rejected the %s request: %s", ca, e->label,
			 e->res.message[0] ? e->res.message : "no reason");
		site_status(e->f->site, STATUS_CERT_REJECTED, e->fqdn, why);
		poll_done(e);
		finish(e, ENROLL_FAILED, AMTPROV_E_DENIED, 1, 0, 0, why);
		return;
	case AMTPROV_CA_UNREACHABLE:
		snprintf(why, sizeof(why), "CA '%s' unreachable for the %s request%s%s", ca,
			 e->label, e->res.message[0] ? ": " : "", e->res.message);
		site_status(e->f->site, STATUS_CA_UNREACHABLE, e->fqdn, why);
		if (e->poll_id) {
			/* Keep waiting: the request is still at the CA. */
			store_pending_retry(st, e->poll_id, why, now + POLL_SECONDS, &e2);
			finish(e, ENROLL_WAIT, AMTPROV_OK, 0, 0, now + POLL_SECONDS, NULL);
			return;
		}
		finish(e, ENROLL_FAILED, AMTPROV_E_UNREACHABLE, 0, 0, 0, why);
		return;
	case AMTPROV_CA_NEED_REKEY:
		poll_done(e);
		/* AMT's key is deleted before the next attempt generates another. */
		if (e->amt_key)
			key_record_discard(e);
		snprintf(why, sizeof(why), "CA '%s' answered NEED_REKEY%s%s", ca,
			 e->res.message[0] ? ": " : "", e->res.message);
		finish(e, ENROLL_REKEY, AMTPROV_OK, 0, 0, 0, why);
		return;
	default:
		snprintf(why, sizeof(why), "CA '%s' answered %s to the %s request%s%s", ca,
			 amtprov_ca_outcome_name(e->res.outcome), e->label,
			 e->res.message[0] ? ": " : "", e->res.message);
		poll_done(e);
		finish(e, ENROLL_FAILED, AMTPROV_E_CONFIG, 1, 0, 0, why);
		return;
	}
}

/* Hands @p work to a worker, its answer to @p answer (loop thread). */
static void run_worker(struct enroll *e, engine_blocking_fn work, engine_blocking_done answer)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (engine_job_blocking(e->job, work, answer, e, &err) != AMTPROV_OK)
		fail(e, err.code, err.msg);
}

/* Writes the submit record (write-ahead: the request is on record before the CA can issue
 * anything) and hands @p work to a worker; the answer comes to on_answer. */
static void start_submit(struct enroll *e, engine_blocking_fn work)
{
	struct store_pending marker;
	json_t *p = json_pack("{s:s,s:s}", "ca", plugin_instance_name(e->ca), "template",
			      e->template_name);
	char *text;
	struct amtprov_error err;

	if (p && e->profile[0])
		json_object_set_new(p, "profile", json_string(e->profile));
	text = p ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	memset(&marker, 0, sizeof(marker));
	marker.device_id = e->device_id;
	util_strlcpy(marker.kind, e->k->submit, sizeof(marker.kind));
	util_strlcpy(marker.payload, text ? text : "{}", sizeof(marker.payload));
	free(text);
	amtprov_error_clear(&err);
	if (store_pending_add(site_store(e->f->site), &marker, site_now(e->f->site), &err) !=
	    AMTPROV_OK) {
		fail(e, err.code, err.msg);
		return;
	}
	e->submit_marker = marker.id;
	run_worker(e, work, on_answer);
}

/* amtprov makes the key. A record of a key AMT held for an earlier request is dropped:
 * the certificate is installed with this key (that AMT key stays unused in the device). */
static void start_amtprov_key(struct enroll *e)
{
	key_record_drop(e);
	e->amt_key = 0;
	start_submit(e, work_submit);
}

/* A submit record left by an earlier attempt means a restart came while the CA had the
 * request: it may have issued a certificate amtprov never received. Say so (R-PROV-13). */
static void report_interrupted(struct enroll *e)
{
	struct store *st = site_store(e->f->site);
	struct amtprov_error err;

	for (int guard = 0; guard < 64; guard++) {
		struct store_pending op;
		char detail[sizeof(op.payload) + 64];

		if (!find_rec(e->f, e->device_id, e->k->submit, e->profile, &op))
			return;
		snprintf(detail, sizeof(detail), "%s request sent %lld to %.1200s", e->label,
			 (long long)op.created_at, op.payload);
		site_status(e->f->site, STATUS_CERT_MAYBE_UNTRACKED, e->fqdn, detail);
		amtprov_error_clear(&err);
		if (store_pending_done(st, op.id, &err) != AMTPROV_OK)
			return;
	}
}

/* ---- the key generated inside AMT (R-PROV-06) ---- */

static void on_amt(void *ctx, int rc, const json_t *result, const struct amtprov_error *err);

/* Ends in the middle of the AMT part: transient errors are retried by the engine, and the
 * amt-key record lets the retry adopt what AMT holds. */
static void amt_end(struct enroll *e, int rc, const char *why)
{
	char text[STORE_TEXT_SIZE];

	snprintf(text, sizeof(text), "%s key in AMT: %s", e->label,
		 why && why[0] ? why : amtprov_strerror(rc));
	fail(e, rc ? rc : AMTPROV_E_INTERNAL, text);
}

static void amt_call(struct enroll *e, int phase, uint32_t op, json_t *params)
{
	struct amtprov_error err;
	int rc;

	amtprov_error_clear(&err);
	e->amt_phase = phase;
	rc = params ? tloop_call(e->f->tloop, e->session, op, params, on_amt, e, &err)
		    : amtprov_error_set(&err, AMTPROV_E_NOMEM, e->fqdn, "out of memory");
	json_decref(params);
	if (rc != AMTPROV_OK)
		amt_end(e, rc, err.msg);
}

/* A key pair's public_key_b64 (transport.h: PKCS#1 RSAPublicKey) as e->amt_pub. */
static int take_public_key(struct enroll *e, const char *b64)
{
	EVP_PKEY_free(e->amt_pub);
	e->amt_pub = flow_amt_public_key(b64);
	return e->amt_pub ? 0 : -1;
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

static void amt_sign(struct enroll *e)
{
	struct amtprov_error err;
	char *b64 = NULL;

	amtprov_error_clear(&err);
	X509_REQ_free(e->tmpl);
	e->tmpl = e->amt_pub ? csr_template(e, e->amt_pub, &err) : NULL;
	b64 = e->tmpl ? flow_amt_template_b64(e->tmpl, e->amt_pub) : NULL;
	if (!b64) {
		amt_end(e, err.code ? err.code : AMTPROV_E_CRYPTO,
			err.msg[0] ? err.msg : "building the request template for AMT");
		return;
	}
	amt_call(e, AP_SIGN, AMTPROV_AMT_SIGN_CSR,
		 json_pack("{s:s,s:s}", "key_handle", e->key_handle, "csr_der_b64", b64));
	OPENSSL_cleanse(b64, strlen(b64));
	free(b64);
}

/*
 * The common case of flow_amt_check_signed, checked without parsing the request: AMT
 * returned exactly the template's certificationRequestInfo (RFC 2986), byte for byte,
 * signed with sha256/384/512WithRSAEncryption. Subject, public key, extensions and
 * attributes are then the template's by construction, and what is left to check is the
 * signature over those very bytes with AMT's key. (d2i_X509_REQ would decode the public key
 * once more through OpenSSL 3's decoder, the costliest part of the check.) 1: verified;
 * 0: not that case, or it does not verify: the full check decides and says why.
 */
static int signed_as_template(X509_REQ *tmpl, EVP_PKEY *pub, const unsigned char *der,
			      size_t len)
{
	const unsigned char *p = der, *info, *end;
	unsigned char *want = NULL;
	const ASN1_OBJECT *oid = NULL;
	const void *pval = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_BIT_STRING *sig = NULL;
	EVP_MD_CTX *ctx = NULL;
	const EVP_MD *md = NULL;
	long olen = 0, ilen = 0;
	int tag, cls, ptype = V_ASN1_UNDEF, mdnid = NID_undef, pknid = NID_undef, wlen, ok = 0;

	/* CertificationRequest ::= SEQUENCE { info SEQUENCE, algorithm, signature BIT STRING },
	 * definite lengths (DER), nothing after it. */
	if (!der || !len || len > (size_t)LONG_MAX ||
	    ASN1_get_object(&p, &olen, &tag, &cls, (long)len) != V_ASN1_CONSTRUCTED ||
	    tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL || olen != (long)len - (p - der))
		return 0;
	end = p + olen;
	info = p;
	if (ASN1_get_object(&p, &ilen, &tag, &cls, end - p) != V_ASN1_CONSTRUCTED ||
	    tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL)
		return 0;
	p += ilen;
	ilen = p - info;
	wlen = i2d_re_X509_REQ_tbs(tmpl, &want);
	if (wlen <= 0 || wlen != ilen || memcmp(want, info, (size_t)ilen) != 0)
		goto out;
	alg = d2i_X509_ALGOR(NULL, &p, end - p);
	sig = alg ? d2i_ASN1_BIT_STRING(NULL, &p, end - p) : NULL;
	if (!sig || p != end || (sig->flags & 0x07) != 0)
		goto out;
	X509_ALGOR_get0(&oid, &ptype, &pval, alg);
	if (!OBJ_find_sigid_algs(OBJ_obj2nid(oid), &mdnid, &pknid) || pknid != NID_rsaEncryption ||
	    (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF) ||
	    (mdnid != NID_sha256 && mdnid != NID_sha384 && mdnid != NID_sha512) ||
	    !(md = EVP_get_digestbynid(mdnid)) || !(ctx = EVP_MD_CTX_new()))
		goto out;
	ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub) == 1 &&
	     EVP_DigestVerify(ctx, ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig),
			      info, (size_t)ilen) == 1;
out:
	EVP_MD_CTX_free(ctx);
	ASN1_BIT_STRING_free(sig);
	X509_ALGOR_free(alg);
	OPENSSL_free(want);
	ERR_clear_error();
	return ok;
}

/* The request AMT signed must be the template, signed by the key AMT holds. */
int flow_amt_check_signed(const char *fqdn, X509_REQ *tmpl, EVP_PKEY *pub_amt,
			  const char *handle, const char *b64, uint8_t **csr_der, size_t *csr_len,
			  struct amtprov_error *err)
{
	size_t len = 0;
	unsigned char *der = flow_unb64(b64, &len);
	const unsigned char *p = der;
	X509_REQ *req = NULL;
	EVP_PKEY *pub = NULL;
	STACK_OF(X509_EXTENSION) *got = NULL, *want = NULL;
	unsigned char *gd = NULL, *wd = NULL;
	int gn, wn, rc = AMTPROV_OK;

	if (der && tmpl && pub_amt && signed_as_template(tmpl, pub_amt, der, len)) {
		free(*csr_der);
		*csr_der = der;
		*csr_len = len;
		return AMTPROV_OK;
	}
	req = der ? d2i_X509_REQ(NULL, &p, (long)len) : NULL;
	pub = req ? X509_REQ_get0_pubkey(req) : NULL;
	got = req ? X509_REQ_get_extensions(req) : NULL;
	want = X509_REQ_get_extensions(tmpl);
	gn = got ? i2d_X509_EXTENSIONS(got, &gd) : -1;
	wn = want ? i2d_X509_EXTENSIONS(want, &wd) : -1;
	/* A request without extensions: both sides have none. */
	if (gn < 0 && wn < 0 && req)
		gn = wn = 0;
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
		 gn != wn || gn < 0 || (gn > 0 && memcmp(gd, wd, (size_t)gn) != 0) ||
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
static void amt_generate(struct enroll *e)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (key_record_put(e, json_pack("{s:O}", "before", e->key_before), &err) != AMTPROV_OK) {
		amt_end(e, err.code, err.msg);
		return;
	}
	amt_call(e, AP_GENERATE, AMTPROV_AMT_GENERATE_KEY_PAIR,
		 json_pack("{s:i}", "bits", e->key_bits));
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

/* Adopts @p item (an AMT key pair) as the request's key, recorded first when @p record. */
static void amt_adopt(struct enroll *e, const json_t *item, int record)
{
	const char *id = json_string_value(json_object_get(item, "key_handle"));
	struct amtprov_error err;

	amtprov_error_clear(&err);
	util_strlcpy(e->key_handle, id ? id : "", sizeof(e->key_handle));
	if (record && key_record_put(e, json_pack("{s:s}", "handle", e->key_handle), &err)) {
		amt_end(e, err.code, err.msg);
		return;
	}
	if (take_public_key(e, json_string_value(json_object_get(item, "public_key_b64")))) {
		amt_end(e, AMTPROV_E_PROTOCOL, "AMT reports a key pair without a usable public key");
		return;
	}
	amt_sign(e);
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
		const char *id = json_string_value(json_object_get(it, "key_handle"));

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

static void amt_choose(struct enroll *e, const json_t *items)
{
	const json_t *item = NULL;
	enum flow_amt_key_move move;

	json_decref(e->key_before);
	e->key_before = json_array();
	move = flow_amt_key_choose(e->key_record, items, e->key_before, &item);
	switch (move) {
	case FLOW_AMT_KEY_DELETE:
		util_strlcpy(e->key_handle, json_string_value(json_object_get(item, "key_handle")),
			     sizeof(e->key_handle));
		amt_call(e, AP_DELETE, AMTPROV_AMT_DELETE_KEY,
			 json_pack("{s:s}", "key_handle", e->key_handle));
		return;
	case FLOW_AMT_KEY_ADOPT:
	case FLOW_AMT_KEY_ADOPT_NEW:
		amt_adopt(e, item, move == FLOW_AMT_KEY_ADOPT_NEW);
		return;
	case FLOW_AMT_KEY_GENERATE:
		amt_generate(e);
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
	struct enroll *e = ctx;
	const char *s;
	struct amtprov_error e2;

	amtprov_error_clear(&e2);
	switch (e->amt_phase) {
	case AP_LIST:
		if (rc != AMTPROV_OK)
			break;
		amt_choose(e, json_object_get(result, "keys"));
		return;
	case AP_DELETE:
		/* Deleted, or refused (a certificate in AMT still uses it): either way it is no
		 * longer this request's key. */
		if (rc != AMTPROV_OK)
			alog(site_log(e->f->site), AMTPROV_LOG_WARNING, "%s: the %s key %s the CA "
			     "wanted replaced was not deleted from AMT: %s", e->fqdn, e->label,
			     e->key_handle, err->msg);
		json_array_clear(e->key_before);
		amt_generate(e);
		return;
	case AP_GENERATE:
		if (rc != AMTPROV_OK && e->amt_auto && flow_amt_unsupported(rc, err)) {
			start_amtprov_key(e);
			return;
		}
		/* Firmware that generates in the background answers "in progress": retry later;
		 * the intent on record lets the retry adopt the key once AMT lists it. */
		if (rc == AMTPROV_E_DEVICE && (strstr(err->msg, "PKI_GENERATING_KEYS") ||
					       strstr(err->msg, "OPERATION_IN_PROGRESS"))) {
			amt_end(e, AMTPROV_E_BUSY, err->msg);
			return;
		}
		if (rc != AMTPROV_OK)
			break;
		s = json_string_value(json_object_get(result, "key_handle"));
		if (!s || !s[0]) {
			amt_end(e, AMTPROV_E_PROTOCOL, "GenerateKeyPair returned no key handle");
			return;
		}
		util_strlcpy(e->key_handle, s, sizeof(e->key_handle));
		/* Recorded at once: from here a re-run adopts this key. */
		if (key_record_put(e, json_pack("{s:s}", "handle", e->key_handle), &e2)) {
			amt_end(e, e2.code, e2.msg);
			return;
		}
		amt_call(e, AP_PUBLIC, AMTPROV_AMT_GET_KEY,
			 json_pack("{s:s}", "key_handle", e->key_handle));
		return;
	case AP_PUBLIC:
		if (rc != AMTPROV_OK)
			break;
		if (take_public_key(e, json_string_value(json_object_get(result,
									 "public_key_b64")))) {
			amt_end(e, AMTPROV_E_PROTOCOL, "AMT reports the new key without a usable "
				"public key");
			return;
		}
		amt_sign(e);
		return;
	case AP_SIGN:
		if (rc != AMTPROV_OK)
			break;
		if (flow_amt_check_signed(e->fqdn, e->tmpl, e->amt_pub, e->key_handle,
					  json_string_value(json_object_get(result, "csr_der_b64")),
					  &e->csr_der, &e->csr_len, &e2) != AMTPROV_OK) {
			finish(e, ENROLL_FAILED, e2.code, 1, 0, 0, e2.msg);
			return;
		}
		start_submit(e, work_submit_signed);
		return;
	}
	amt_end(e, rc, err->msg);
}

/* The CA's attributes are known (worker done): look at AMT's keys. */
static void on_attributes(struct engine_job *job, int rc, const struct amtprov_error *err,
			  void *arg)
{
	struct enroll *e = arg;
	struct amtprov_error e2;

	(void)job;
	(void)err;
	if (e->perr.code) {
		fail(e, e->perr.code, e->perr.msg);
		return;
	}
	amtprov_error_clear(&e2);
	e->key_record = key_record_get(e->f, e->k, e->device_id, e->profile, &e->key_record_id);
	if (rc == AMTPROV_OK && !e->session)
		rc = e->open_session ? e->open_session(e->open_ctx, &e->session, &e2)
				     : amtprov_error_set(&e2, AMTPROV_E_INTERNAL, e->fqdn,
							 "no session to AMT");
	if (rc != AMTPROV_OK) {
		amt_end(e, rc, e2.msg);
		return;
	}
	amt_call(e, AP_LIST, AMTPROV_AMT_LIST_KEYS, json_object());
}

/* ---- the start ---- */

/* A request on record (a WAIT answer): poll it. */
static void start_poll(struct enroll *e, const struct store_pending *op)
{
	json_t *payload = json_loads(op->payload, 0, NULL);
	const char *ca = json_string_value(json_object_get(payload, "ca"));
	const char *key = json_string_value(json_object_get(payload, "key"));
	const char *spki = json_string_value(json_object_get(payload, "spki"));
	const char *tmpl = json_string_value(json_object_get(payload, "template"));
	struct plugin_instance *pca = ca ? plugin_host_find(site_plugins(e->f->site), ca) : NULL;

	e->poll_id = op->id;
	/* The CA that holds the request is asked, with the template it was asked for. */
	if (pca)
		e->ca = pca;
	if (tmpl)
		util_strlcpy(e->template_name, tmpl, sizeof(e->template_name));
	util_strlcpy(e->cookie, json_string_value(json_object_get(payload, "cookie")),
		     sizeof(e->cookie));
	e->csr_der = flow_unb64(json_string_value(json_object_get(payload, "csr")), &e->csr_len);
	e->csr_withheld = !e->csr_der;
	e->amt_key = key && strcmp(key, "amt") == 0;
	if (e->amt_key && spki) {
		size_t len = 0;
		unsigned char *der = flow_unb64(spki, &len);
		const unsigned char *p = der;

		e->amt_pub = der ? d2i_PUBKEY(NULL, &p, (long)len) : NULL;
		free(der);
	}
	json_decref(payload);
	run_worker(e, work_poll, on_answer);
}

void enroll_start(struct flow *f, struct engine_job *job, const struct enroll_spec *spec,
		  enroll_done_fn done, void *ctx, struct enroll **out)
{
	struct manifest *m = site_manifest(f->site);
	struct plugin_host *ph = site_plugins(f->site);
	const struct store_device *d = engine_job_device(job);
	struct enroll *e = calloc(1, sizeof(*e));
	struct enroll_result r = {.outcome = ENROLL_FAILED, .rc = AMTPROV_E_NOMEM, .final = 0};
	struct store_pending op;

	*out = e;
	if (!e || !kind_of(spec->purpose)) {
		if (e)
			snprintf(r.why, sizeof(r.why), "no enrollment for certificate purpose %u",
				 (unsigned)spec->purpose);
		else
			snprintf(r.why, sizeof(r.why), "out of memory");
		r.rc = e ? AMTPROV_E_INTERNAL : AMTPROV_E_NOMEM;
		free(e);
		*out = NULL;
		done(ctx, &r);
		return;
	}
	e->f = f;
	e->job = job;
	e->k = kind_of(spec->purpose);
	e->device_id = d->id;
	util_strlcpy(e->fqdn, d->fqdn, sizeof(e->fqdn));
	util_strlcpy(e->uuid, d->uuid, sizeof(e->uuid));
	util_strlcpy(e->profile, spec->profile ? spec->profile : "", sizeof(e->profile));
	util_strlcpy(e->ca_name, spec->ca ? spec->ca : "", sizeof(e->ca_name));
	util_strlcpy(e->template_name, spec->template_name ? spec->template_name : "",
		     sizeof(e->template_name));
	if (e->profile[0])
		snprintf(e->label, sizeof(e->label), "%s profile '%s'", e->k->what, e->profile);
	else
		snprintf(e->label, sizeof(e->label), "%s", e->k->what);
	e->key_bits = spec->key_bits > 0 ? spec->key_bits : 2048;
	e->digest_bits = spec->digest_bits > 256 ? spec->digest_bits : 256;
	e->resume = spec->resume;
	e->session = spec->session;
	e->open_session = spec->open_session;
	e->open_ctx = spec->open_ctx;
	e->done = done;
	e->done_ctx = ctx;
	e->ca = spec->ca ? plugin_host_find(ph, spec->ca) : NULL;
	e->cs = m->credstore ? plugin_host_find(ph, m->credstore) : NULL;
	report_interrupted(e);
	if (find_rec(f, e->device_id, e->k->poll, e->profile, &op)) {
		start_poll(e, &op);
		return;
	}
	if (!e->ca || !e->cs) {
		char why[STORE_TEXT_SIZE];

		snprintf(why, sizeof(why), "%s: %s '%s' is not loaded", e->label,
			 e->ca ? "credential store" : "CA instance",
			 e->ca ? (m->credstore ? m->credstore : "") : e->ca_name);
		finish(e, ENROLL_FAILED, AMTPROV_E_CONFIG, 1, 0, 0, why);
		return;
	}
	/* The CA is only ever asked for a name of the site's policy (authz.h), whatever put
	 * the device into the database and whatever the manifest said then. */
	{
		char why[STORE_TEXT_SIZE];

		if (!authz_name_allowed(m, e->fqdn, 1, why, sizeof(why))) {
			finish(e, ENROLL_FAILED, AMTPROV_E_CONFIG, 1, 0, 0, why);
			return;
		}
	}
	e->amt_auto = spec->amt_auto;
	if (!spec->key_in_amt) {
		start_amtprov_key(e);
		return;
	}
	e->amt_key = 1;
	run_worker(e, work_attributes, on_attributes);
}
