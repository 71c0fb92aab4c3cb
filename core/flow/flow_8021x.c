/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 802.1X, the second stage's last step (R-PROV-11 3, R-8021X), on the stage's session; also
 * the client-certificate part of an update (R-REV-04, R-8021X-05) and of a renewal
 * (R-8021X-06), on theirs:
 *   1. detect the wireless port (GET_WIRELESS);
 *   2. ask the netprofile plugin which client certificates the device needs (R-8021X-01);
 *   3. for each: reuse the device's active certificate for that profile when it is still
 *      good, else enroll one from the profile's CA (EKU clientAuth, subject = device FQDN,
 *      R-8021X-02) through the enrollment sub-machine every certificate uses (enroll.c):
 *      the key where the manifest's key_source puts it (inside AMT, its "8021x-amt-key"
 *      record per profile; or made by amtprov and stored first), request, CA, contract,
 *      record. All CA answers come before AMT's 802.1X settings are changed, so a refusal leaves
 *      the profiles as they were (a key generated inside AMT stays for the next attempt);
 *   4. install the certificate in AMT (ADD_CERTIFICATE), after its key when amtprov made
 *      it (ADD_KEY); a key AMT holds is found by its public key;
 *   5. note the certificates AMT's 802.1X links use now (LIST_CERT_BINDINGS) and delete
 *      the existing wireless profiles;
 *   6. render the profiles bound to their own certificates (R-8021X-04) and SET_8021X;
 *   7. prune AMT's store (flow_prune.c, the web server renewal's prune with the purpose
 *      802.1X): delete the certificates the old links used that no link uses any more, every
 *      other client certificate of the device on record that AMT still holds and no context
 *      uses, and the key pairs only those certificates carried. A recorded certificate's key
 *      is known by its DER on record, so the key of one an interrupted run deleted goes too
 *      (R-PROV-13); never a key a certificate left in AMT (web server, another profile's) or
 *      a current one carries (a renewal may keep its key);
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
 * A CA that answers WAIT puts the device in CA_WAITING until the poll time, then back in
 * the job's NEED_ state, whose run polls (the poll record names it); REJECTED fails the
 * step with the CA's reason, UNREACHABLE retries with backoff.
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

#include "enroll.h"
#include "device_certs.h"
#include "flow_int.h"
#include "flow_keys.h"
#include "flow_prune.h"
#include "pki.h"
#include "revoke.h"
#include "status.h"
#include "util.h"

#define KEY_BITS 2048
#define MAX_NEEDS 17 /* 1 wired + 16 wireless */

enum x_phase {
	X_DETECT,
	X_CERT,
	X_ADD_KEY,
	X_FIND_KEY,
	X_ADD_CERT,
	X_FIND_CERT,
	X_ENUM_CTX,
	X_ENUM_WIFI,
	X_DEL_WIFI,
	X_SET,
	X_ENUM_CTX_AFTER,
	X_PRUNE,
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
	json_t *old_certs; /* handles of the certificates the 802.1X links used before */
	json_t *todo;      /* wireless profiles still to delete */
	struct plugin_instance *cs;
	struct enroll *enroll;        /* the certificate of needs[cur] (enroll.c) */
	int in_worker;
	enum device_state step_state; /* why it runs: NEED_SECOND_STAGE, _UPDATE or _RENEWAL */
	int64_t reuse_from_id;        /* certificates recorded before this id are replaced */
	int amt_keys;                 /* 1: requests get a key generated inside AMT */
	int amt_auto;                 /* key_source auto: amtprov's key if AMT can't */
	struct revoke_job revoking;   /* the superseded certificates, asked of their CAs */
	struct flow_prune *prune;     /* superseded certificates and keys leaving AMT's store */
	char pruned[STORE_TEXT_SIZE]; /* what the prune deleted ("" if nothing) */
};

void flow_8021x_free(struct x8021x *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->n_needs; i++)
		free(x->needs[i].cert_b64);
	json_decref(x->old_certs);
	json_decref(x->todo);
	enroll_free(x->enroll);
	flow_prune_free(x->prune);
	revoke_batch_free(x->revoking.batch);
	free(x);
}

/* Ends the step: the stage decides what the device's state becomes. */
static void finish(struct x8021x *x, enum flow_outcome o, int rc, const char *why,
		   int64_t at)
{
	char text[STORE_TEXT_SIZE];
	flow_8021x_done_fn done = x->done;
	void *ctx = x->ctx;

	snprintf(text, sizeof(text), "%s", why ? why : "");
	flow_8021x_free(x);
	done(ctx, o, rc, rc || text[0] ? text : NULL, at);
}

static void fail(struct x8021x *x, int rc, const char *fmt, ...) AMTPROV_PRINTF(3, 4);
static void fail(struct x8021x *x, int rc, const char *fmt, ...)
{
	char why[STORE_TEXT_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	finish(x, FLOW_DONE, rc ? rc : AMTPROV_E_INTERNAL, why, 0);
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

/* The certificates AMT's 802.1X and wireless links use (LIST_CERT_BINDINGS "links"). */
static json_t *linked_certs(const json_t *result)
{
	json_t *links = json_object_get(result, "links");

	return json_is_array(links) ? json_deep_copy(links) : json_array();
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
	    (fc->x->step_state == DS_NEED_RENEWAL && device_certs_due(fc->x->f->site, c)))
		return 0;
	if (!fc->n || c->id > fc->found.id) {
		fc->found = *c;
		fc->n = 1;
	}
	return 0;
}

/* ---- the end: superseded certificates revoked (R-REV-04) ---- */

static void on_revoked(void *owner)
{
	struct x8021x *x = owner;

	x->in_worker = 0;
	finish(x, FLOW_DONE, AMTPROV_OK, x->pruned, 0);
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
	device_certs_8021x_update_mark(x->f->site, x->device_id, 1);
	x->revoking = (struct revoke_job){
		.site = x->f->site,
		.batch = n ? revoke_batch_due(x->f->site, x->device_id) : NULL,
		.done = on_revoked,
		.owner = x,
	};
	if (!x->revoking.batch) {
		finish(x, FLOW_DONE, AMTPROV_OK, x->pruned, 0);
		return;
	}
	x->in_worker = 1;
	if (revoke_job_start(&x->revoking, x->job, &err) != AMTPROV_OK) {
		/* Queued: the revocation task asks the CAs. */
		x->in_worker = 0;
		finish(x, FLOW_DONE, AMTPROV_OK, x->pruned, 0);
	}
}

/* ---- AMT's store: superseded client certificates and their keys (flow_prune.c) ---- */

static void pruned(void *ctx, int certs, int keys, const char *deleted, const char *problem)
{
	struct x8021x *x = ctx;

	(void)certs;
	(void)keys;
	x->prune = NULL; /* freed by flow_prune.c */
	util_strlcpy(x->pruned, deleted ? deleted : "", sizeof(x->pruned));
	if (deleted && deleted[0])
		alog(site_log(x->f->site), AMTPROV_LOG_INFO, "%s: 802.1X: %s", x->fqdn, deleted);
	/* The profiles are bound either way: what is left in AMT's store goes at the next run. */
	if (problem && problem[0])
		alog(site_log(x->f->site), AMTPROV_LOG_WARNING, "%s: 802.1X: superseded client "
		     "certificates or keys left in AMT's store: %s", x->fqdn, problem);
	end_step(x);
}

/* Every client certificate of the device on record but the profiles' current ones is
 * superseded, and so is each certificate in @p unlinked (the old links used it, none does
 * now): they go, with each key pair unless a certificate still in AMT or a current one
 * has it. */
static void start_prune(struct x8021x *x, const json_t *unlinked)
{
	int64_t keep[MAX_NEEDS];
	struct flow_prune_spec spec = {.purpose = AMTPROV_PURPOSE_CLIENT_8021X, .keep = keep,
				       .n_keep = x->n_needs, .also = unlinked};
	struct amtprov_error err;

	for (size_t i = 0; i < x->n_needs; i++)
		keep[i] = x->needs[i].cert_id;
	x->phase = X_PRUNE;
	amtprov_error_clear(&err);
	if (flow_prune_start(x->f, x->session, x->device_id, x->fqdn, &spec, pruned, x,
			     &x->prune, &err) != AMTPROV_OK)
		pruned(x, 0, 0, "", err.msg[0] ? err.msg : "cannot start");
}

/* ---- the certificate of needs[cur] from its CA: the enrollment (enroll.c) ---- */

static void on_enrolled(void *ctx, const struct enroll_result *r)
{
	struct x8021x *x = ctx;
	struct x_need *n = &x->needs[x->cur];
	struct store *st = site_store(x->f->site);
	struct amtprov_error err;
	uint8_t *der = NULL;
	size_t len = 0;
	char *chain = NULL;
	char why[STORE_TEXT_SIZE];

	x->enroll = NULL; /* freed by enroll.c */
	x->in_worker = 0;
	amtprov_error_clear(&err);
	switch (r->outcome) {
	case ENROLL_ISSUED:
		if (store_cert_data_get(st, r->cert_id, &der, &len, &chain, &err) != AMTPROV_OK) {
			fail(x, err.code, "802.1X profile '%s': %s", n->profile, err.msg);
			return;
		}
		n->cert_id = r->cert_id;
		n->cert_b64 = flow_b64(der, len);
		free(der);
		free(chain);
		x->cur++;
		next_need(x);
		return;
	case ENROLL_WAIT:
		/* The device shows it waits (CA_WAITING); this step polls again then. */
		snprintf(why, sizeof(why), "802.1X client certificate for profile '%s' pending at "
			 "CA '%s'", n->profile, n->ca);
		site_status(x->f->site, STATUS_SITE_INCOMPLETE, x->fqdn, why);
		finish(x, FLOW_WAIT, AMTPROV_OK, NULL, r->at);
		return;
	case ENROLL_REKEY:
		/* A new key and request when the step runs again. */
		finish(x, FLOW_AGAIN, AMTPROV_OK, NULL, 0);
		return;
	case ENROLL_FAILED:
		finish(x, FLOW_DONE, r->rc, r->why, 0);
		return;
	}
}

static void request_cert(struct x8021x *x)
{
	struct x_need *n = &x->needs[x->cur];
	struct enroll_spec spec = {
		.purpose = AMTPROV_PURPOSE_CLIENT_8021X,
		.profile = n->profile,
		.ca = n->ca,
		.template_name = n->tmpl,
		.key_bits = KEY_BITS,
		.key_in_amt = x->amt_keys,
		.amt_auto = x->amt_auto,
		.resume = x->step_state,
		.session = x->session,
	};

	manifest_crypto_for(site_manifest(x->f->site), engine_job_device(x->job)->amt_version,
			    KEY_BITS, &spec.key_bits, &spec.digest_bits);
	x->phase = X_CERT;
	x->in_worker = 1;
	enroll_start(x->f, x->job, &spec, on_enrolled, x, &x->enroll);
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
		if (key && pending && enroll_key_promote(x->f, x->fqdn, profile, &e) != AMTPROV_OK) {
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
			call(x, AMTPROV_AMT_LIST_CERT_BINDINGS, json_object());
			return;
		}
		p = key_params(x, &err);
		if (!p) {
			/* Not amtprov's key: it may be one AMT generated (R-PROV-06). */
			x->phase = X_FIND_KEY;
			call(x, AMTPROV_AMT_LIST_KEYS, json_object());
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
			json_string_value(json_object_get(it, "public_key_b64")));

		found = c && k && pki_key_matches(c, k);
		EVP_PKEY_free(k);
		if (found)
			break;
	}
	X509_free(c);
	return found;
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

/* Deletes the next wireless profile of x->todo; @return 0 when none is left. */
static int delete_next(struct x8021x *x)
{
	char id[256];

	if (!json_array_size(x->todo))
		return 0;
	util_strlcpy(id, json_string_value(json_array_get(x->todo, 0)), sizeof(id));
	json_array_remove(x->todo, 0);
	call(x, AMTPROV_AMT_DELETE_WIFI_PROFILE, json_pack("{s:s}", "profile_handle", id));
	return 1;
}

static void on_op(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	struct x8021x *x = ctx;
	const json_t *it;
	const char *h;
	size_t i;

	switch (x->phase) {
	case X_DETECT:
		if (rc != AMTPROV_OK)
			break;
		x->info.wireless_capable = json_is_true(json_object_get(result, "wireless"));
		start_certs(x);
		return;
	case X_ENUM_CTX:
		if (rc != AMTPROV_OK)
			break;
		x->old_certs = linked_certs(result);
		if (!x->info.wireless_capable) {
			x->phase = X_SET;
			next_need(x);
			return;
		}
		x->phase = X_ENUM_WIFI;
		call(x, AMTPROV_AMT_LIST_WIFI_PROFILES, json_object());
		return;
	case X_ENUM_WIFI:
		if (rc != AMTPROV_OK)
			break;
		x->todo = json_array();
		json_array_foreach(json_object_get(result, "profiles"), i, it)
			if (json_string_value(json_object_get(it, "profile_handle")))
				json_array_append(x->todo, json_object_get(it, "profile_handle"));
		x->phase = X_DEL_WIFI;
		/* fall through */
	case X_DEL_WIFI:
		if (rc != AMTPROV_OK)
			break;
		if (delete_next(x))
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
		if (!key_in_amt(x, json_object_get(result, "keys"))) {
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
			call(x, AMTPROV_AMT_LIST_CERTIFICATES, json_object());
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
		if (!flow_cert_handle_find(result, x->needs[x->cur].cert_b64,
					   x->needs[x->cur].cert_handle,
					   sizeof(x->needs[x->cur].cert_handle))) {
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
		call(x, AMTPROV_AMT_LIST_CERT_BINDINGS, json_object());
		return;
	case X_ENUM_CTX_AFTER: {
		json_t *now_linked, *unlinked;
		const json_t *v;

		if (rc != AMTPROV_OK)
			break;
		/* What the old links used and no link uses now goes (R-PROV-11 3). */
		now_linked = linked_certs(result);
		unlinked = json_array();
		json_array_foreach(x->old_certs, i, v)
			if (json_is_string(v) && !in_array(now_linked, json_string_value(v)) &&
			    !in_array(unlinked, json_string_value(v)))
				json_array_append(unlinked, (json_t *)v);
		json_decref(now_linked);
		start_prune(x, unlinked);
		json_decref(unlinked);
		return;
	}
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
	*out = x;
	x->step_state = engine_job_state(job);
	switch (x->step_state) {
	case DS_NEED_UPDATE:
		if (device_certs_over_wireless(engine_job_device(job))) {
			/* R-8021X-05, R-WS-04: certificates only over a wired connection; the
			 * profiles stay bound to the ones the device has. */
			site_status(f->site, STATUS_RENEWAL_SKIPPED_WIRELESS, x->fqdn,
				    "R-8021X-05: the device is reached over wireless; its 802.1X "
				    "client certificates and profiles are left as they are until an "
				    "update over a wired connection");
			device_certs_8021x_update_mark(f->site, device_id, 1);
			finish(x, FLOW_DONE, AMTPROV_OK, NULL, 0);
			return AMTPROV_OK;
		}
		x->reuse_from_id = device_certs_8021x_update_mark(f->site, device_id, 0);
		if (!x->reuse_from_id) {
			/* No mark (the request was interrupted): the update replaces what the
			 * device has now, and a retry keeps what this one issues. */
			struct amtprov_error e;

			amtprov_error_clear(&e);
			device_certs_8021x_mark_update(f->site, device_id, &e);
			x->reuse_from_id = device_certs_8021x_update_mark(f->site, device_id, 0);
		}
		break;
	case DS_NEED_RENEWAL:
		break;
	default:
		/* Provisioning: what was recorded before this provisioning's web server
		 * certificate belongs to an earlier one. */
		x->reuse_from_id = device_certs_web(f->site, device_id, 1);
		break;
	}
	{
		char why[STORE_TEXT_SIZE];
		int source = flow_key_source(f, engine_job_device(job), "802.1X client keys",
					     &x->amt_auto, why, sizeof(why));

		if (source < 0) {
			finish(x, FLOW_DONE, AMTPROV_E_CONFIG, why, 0);
			return AMTPROV_OK;
		}
		x->amt_keys = source;
	}
	x->phase = X_DETECT;
	call(x, AMTPROV_AMT_GET_WIRELESS, json_object());
	return AMTPROV_OK;
}
