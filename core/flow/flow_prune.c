/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Superseded certificates and their key pairs out of AMT's store: see flow_prune.h. AMT
 * keeps few certificates and keys, so without this every renewal would leave one of each
 * behind until the store is full (AddKey/AddCertificate then fail). The same prune serves
 * web server certificates (renewal, the first stage) and 802.1X client certificates (the
 * 802.1X step: provisioning, update, renewal); only the purpose and the current
 * certificates differ.
 *   1. list what uses certificates: the TLS server and the 802.1X and wireless links
 *      (LIST_CERT_BINDINGS);
 *   2. list the certificates and the key pairs AMT holds (LIST_CERTIFICATES, LIST_KEYS);
 *   3. delete each certificate whose SHA-256 is one of the device's recorded certificates of
 *      the purpose other than the current ones, unless a context names it; then each key
 *      pair whose public key such a certificate carried and no certificate left in AMT and
 *      no current certificate carries (a key may have been certified twice).
 * The superseded certificates' public keys are also read from the record (their DER), so a
 * key pair whose certificate left AMT before it did (a prune interrupted, e.g. amtprovd
 * killed, between the two deletions; a key deletion refused) is still recognised and goes
 * at the next prune, instead of staying in AMT's store for good.
 * AMT refuses to delete what is in use as well; a refusal is reported, never fatal.
 */
#include "flow_prune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <jansson.h>

#include "flow_keys.h"
#include "util.h"

#define PRUNE_AUDIT "amt.store-pruned"

#define MAX_KEYS 64

enum prune_phase { P_BINDINGS, P_CERTS, P_KEYS, P_DEL_CERTS, P_DEL_KEYS };

struct flow_prune {
	struct flow *f;
	void *session;
	int64_t device_id;
	int purpose;
	int64_t *keep; /* the current certificates of the purpose */
	size_t n_keep;
	char fqdn[STORE_FQDN_SIZE];
	enum prune_phase phase;
	json_t *in_use;     /* handles of the certificates TLS or a link uses; NULL: unknown */
	json_t *certs;      /* LIST_CERTIFICATES items */
	json_t *superseded; /* SHA-256 (upper-case hex) of the device's other certificates */
	json_t *also;       /* handles to delete as well (NULL: none) */
	json_t *del_certs;  /* handles still to delete */
	json_t *del_keys;
	EVP_PKEY **recorded; /* public keys of the superseded certificates on record */
	size_t n_recorded;
	EVP_PKEY **current;  /* the current certificates', from the record; NULL: unknown */
	int n_certs, n_keys;
	char certs_gone[STORE_TEXT_SIZE / 4], keys_gone[STORE_TEXT_SIZE / 4]; /* handles */
	char problem[STORE_TEXT_SIZE];
	flow_prune_done_fn done;
	void *ctx;
};

void flow_prune_free(struct flow_prune *p)
{
	if (!p)
		return;
	json_decref(p->in_use);
	json_decref(p->certs);
	json_decref(p->superseded);
	json_decref(p->also);
	json_decref(p->del_certs);
	json_decref(p->del_keys);
	for (size_t i = 0; i < p->n_recorded; i++)
		EVP_PKEY_free(p->recorded[i]);
	free(p->recorded);
	for (size_t i = 0; p->current && i < p->n_keep; i++)
		EVP_PKEY_free(p->current[i]);
	free(p->current);
	free(p->keep);
	free(p);
}

static const char *purpose_name(int purpose)
{
	return purpose == AMTPROV_PURPOSE_CLIENT_8021X ? "802.1X client" : "web server";
}

/* What went, by handle ("" if nothing), and an audit record of it. */
static void deleted_text(struct flow_prune *p, char *out, size_t size)
{
	struct amtprov_error err;

	out[0] = 0;
	if (!p->n_certs && !p->n_keys)
		return;
	snprintf(out, size, "deleted from AMT's store (superseded %s certificates): %s%s%s%s%s",
		 purpose_name(p->purpose), p->n_certs ? "certificates " : "", p->certs_gone,
		 p->n_certs && p->n_keys ? "; " : "", p->n_keys ? "key pairs " : "", p->keys_gone);
	amtprov_error_clear(&err);
	/* The deletions are done in AMT either way; an audit record that fails is logged. */
	if (store_audit_add(site_store(p->f->site), "amtprov", p->device_id, PRUNE_AUDIT, out,
			    site_now(p->f->site), &err) != AMTPROV_OK)
		alog(site_log(p->f->site), AMTPROV_LOG_WARNING, "%s: audit record %s not written: %s",
		     p->fqdn, PRUNE_AUDIT, err.msg);
}

static void finish(struct flow_prune *p)
{
	char problem[STORE_TEXT_SIZE], deleted[STORE_TEXT_SIZE];
	flow_prune_done_fn done = p->done;
	void *ctx = p->ctx;
	int certs = p->n_certs, keys = p->n_keys;

	util_strlcpy(problem, p->problem, sizeof(problem));
	deleted_text(p, deleted, sizeof(deleted));
	flow_prune_free(p);
	done(ctx, certs, keys, deleted, problem);
}

/* @p id appended to the list @p list of @p size ("a, b"); an ellipsis once it is full. */
static void add_handle(char *list, size_t size, const char *id)
{
	size_t n = strlen(list);

	if (n + strlen(id) + 6 < size)
		snprintf(list + n, size - n, "%s%s", n ? ", " : "", id);
	else if (n + 5 < size && (n < 3 || strcmp(list + n - 3, "...")))
		snprintf(list + n, size - n, ", ...");
}

static void note(struct flow_prune *p, const char *what, const char *id,
		 const struct amtprov_error *err)
{
	size_t n = strlen(p->problem);

	snprintf(p->problem + n, sizeof(p->problem) - n, "%s%s %s: %s", n ? "; " : "", what,
		 id ? id : "", err && err->msg[0] ? err->msg : "failed");
}

static void on_op(void *ctx, int rc, const json_t *result, const struct amtprov_error *err);

static int call(struct flow_prune *p, uint32_t op, json_t *params, struct amtprov_error *err)
{
	int rc = params ? tloop_call(p->f->tloop, p->session, op, params, on_op, p, err)
			: amtprov_error_set(err, AMTPROV_E_NOMEM, p->fqdn, "out of memory");

	json_decref(params);
	return rc;
}

static int list(struct flow_prune *p, enum prune_phase phase, uint32_t op,
		struct amtprov_error *err)
{
	p->phase = phase;
	return call(p, op, json_object(), err);
}

/* 1 when array @p a (NULL: empty) holds string @p handle. */
static int named(const json_t *a, const char *handle)
{
	const json_t *v;
	size_t i;

	json_array_foreach(a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), handle) == 0)
			return 1;
	return 0;
}

/* 1 when the TLS server or a link uses certificate @p handle. Not knowing counts as in use:
 * nothing is deleted on a guess. */
static int in_use(const json_t *used, const char *handle)
{
	return !used || named(used, handle);
}

static int superseded(const json_t *shas, const char *der_b64, EVP_PKEY **pub)
{
	size_t len = 0, i;
	unsigned char *der = flow_unb64(der_b64, &len);
	const unsigned char *q = der;
	X509 *x = der ? d2i_X509(NULL, &q, (long)len) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
	const json_t *v;
	int found = 0;

	if (x && X509_digest(x, EVP_sha256(), md, &mdlen))
		for (unsigned int j = 0; j < mdlen; j++)
			snprintf(hex + 2 * j, 3, "%02X", md[j]);
	json_array_foreach(shas, i, v)
		if (hex[0] && json_is_string(v) && strcmp(json_string_value(v), hex) == 0)
			found = 1;
	*pub = x ? X509_get_pubkey(x) : NULL;
	X509_free(x);
	free(der);
	return found;
}

static int key_in(EVP_PKEY *k, EVP_PKEY *const *set, size_t n)
{
	for (size_t i = 0; k && i < n; i++)
		if (set[i] && EVP_PKEY_eq(k, set[i]) == 1)
			return 1;
	return 0;
}

void flow_prune_choose(const struct flow_prune_view *v, json_t *del_certs, json_t *del_keys)
{
	EVP_PKEY *gone[MAX_KEYS] = {0}, *kept[MAX_KEYS] = {0};
	size_t n_gone = 0, n_kept = 0, i, n_recorded = 0;
	int overflow = 0, current_known = 1;
	const json_t *it;

	for (i = 0; i < v->n_current; i++)
		if (!v->current[i])
			current_known = 0;
	/* Keys known only from the record go too once the bindings are known (a key a context
	 * uses has its certificate in AMT, so it is kept) and every current key is known. */
	if (v->in_use && current_known)
		n_recorded = v->n_recorded;

	json_array_foreach(v->certs, i, it) {
		const char *id = json_string_value(json_object_get(it, "cert_handle"));
		const char *der = json_string_value(json_object_get(it, "cert_der_b64"));
		EVP_PKEY *pub = NULL;
		int old;

		if (!id || !der)
			continue;
		old = superseded(v->superseded, der, &pub) || named(v->also, id);
		if (old && !in_use(v->in_use, id) && n_gone < MAX_KEYS) {
			json_array_append_new(del_certs, json_string(id));
			gone[n_gone++] = pub;
		} else if (pub && n_kept < MAX_KEYS) {
			kept[n_kept++] = pub;
		} else {
			overflow = 1; /* a certificate whose key is not known: keep every key */
			EVP_PKEY_free(pub);
		}
	}
	json_array_foreach(v->keys, i, it) {
		const char *id = json_string_value(json_object_get(it, "key_handle"));
		EVP_PKEY *k = flow_amt_public_key(json_string_value(json_object_get(it,
										    "public_key_b64")));

		if (id && k && !overflow &&
		    (key_in(k, gone, n_gone) || key_in(k, v->recorded, n_recorded)) &&
		    !key_in(k, kept, n_kept) && !key_in(k, v->current, v->n_current))
			json_array_append_new(del_keys, json_string(id));
		EVP_PKEY_free(k);
	}
	for (i = 0; i < n_gone; i++)
		EVP_PKEY_free(gone[i]);
	for (i = 0; i < n_kept; i++)
		EVP_PKEY_free(kept[i]);
}

/* What goes: superseded certificates no context uses, and the key pairs only they carry. */
static void choose(struct flow_prune *p, const json_t *keys)
{
	const struct flow_prune_view v = {
		.in_use = p->in_use, .certs = p->certs, .keys = keys, .superseded = p->superseded,
		.recorded = p->recorded, .n_recorded = p->n_recorded, .current = p->current,
		.n_current = p->n_keep, .also = p->also};

	p->del_certs = json_array();
	p->del_keys = json_array();
	if (p->del_certs && p->del_keys)
		flow_prune_choose(&v, p->del_certs, p->del_keys);
}

/* The next deletion, or the end. */
static void delete_next(struct flow_prune *p)
{
	struct amtprov_error err;
	char id[256];
	int rc;

	for (;;) {
		json_t *todo = p->phase == P_DEL_CERTS ? p->del_certs : p->del_keys;

		if (!json_array_size(todo)) {
			if (p->phase == P_DEL_KEYS) {
				finish(p);
				return;
			}
			p->phase = P_DEL_KEYS;
			continue;
		}
		util_strlcpy(id, json_string_value(json_array_get(todo, 0)), sizeof(id));
		amtprov_error_clear(&err);
		rc = p->phase == P_DEL_CERTS
			     ? call(p, AMTPROV_AMT_DELETE_CERTIFICATE,
				    json_pack("{s:s}", "cert_handle", id), &err)
			     : call(p, AMTPROV_AMT_DELETE_KEY, json_pack("{s:s}", "key_handle", id),
				    &err);
		if (rc == AMTPROV_OK)
			return; /* on_op removes it */
		json_array_remove(todo, 0);
		note(p, p->phase == P_DEL_CERTS ? "certificate" : "key pair", id, &err);
	}
}

static void on_op(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	struct flow_prune *p = ctx;
	struct amtprov_error e2;
	int rc2 = AMTPROV_OK;

	amtprov_error_clear(&e2);
	switch (p->phase) {
	case P_BINDINGS:
	case P_CERTS:
	case P_KEYS:
		if (rc != AMTPROV_OK) {
			/* Without the full picture nothing is deleted. */
			note(p, "listing", p->phase == P_BINDINGS ? "certificate bindings"
					   : p->phase == P_CERTS  ? "certificates"
								  : "key pairs", err);
			finish(p);
			return;
		}
		if (p->phase == P_BINDINGS) {
			const json_t *tls = json_object_get(result, "tls");
			const json_t *links = json_object_get(result, "links");

			if (json_is_array(tls) && json_is_array(links)) {
				p->in_use = json_deep_copy(tls);
				json_array_extend(p->in_use, (json_t *)links);
			}
			rc2 = list(p, P_CERTS, AMTPROV_AMT_LIST_CERTIFICATES, &e2);
		} else if (p->phase == P_CERTS) {
			p->certs = json_incref(json_object_get(result, "certificates"));
			rc2 = list(p, P_KEYS, AMTPROV_AMT_LIST_KEYS, &e2);
		} else {
			choose(p, json_object_get(result, "keys"));
			p->phase = P_DEL_CERTS;
			delete_next(p);
			return;
		}
		if (rc2 != AMTPROV_OK) {
			note(p, "listing", NULL, &e2);
			finish(p);
		}
		return;
	case P_DEL_CERTS:
	case P_DEL_KEYS: {
		json_t *todo = p->phase == P_DEL_CERTS ? p->del_certs : p->del_keys;
		const char *id = json_string_value(json_array_get(todo, 0));

		if (rc == AMTPROV_OK) {
			*(p->phase == P_DEL_CERTS ? &p->n_certs : &p->n_keys) += 1;
			if (p->phase == P_DEL_CERTS)
				add_handle(p->certs_gone, sizeof(p->certs_gone), id ? id : "");
			else
				add_handle(p->keys_gone, sizeof(p->keys_gone), id ? id : "");
		} else
			note(p, p->phase == P_DEL_CERTS ? "deleting certificate" : "deleting key pair",
			     id, err);
		json_array_remove(todo, 0);
		delete_next(p);
		return;
	}
	}
}

struct collect {
	json_t *out;
	json_t *ids;
	const struct flow_prune *p;
};

static int kept_id(const struct flow_prune *p, int64_t id)
{
	for (size_t i = 0; i < p->n_keep; i++)
		if (p->keep[i] == id)
			return 1;
	return 0;
}

static int collect_cb(void *ctx, const struct store_cert *c)
{
	struct collect *k = ctx;

	/* Any status: a revoked certificate's key may still be in AMT. */
	if ((int)c->purpose == k->p->purpose && !kept_id(k->p, c->id) && c->sha256[0]) {
		json_array_append_new(k->out, json_string(c->sha256));
		json_array_append_new(k->ids, json_integer(c->id));
	}
	return 0;
}

/* The public key of certificate @p id on record; NULL when its DER is not stored (records
 * older than schema 2) or does not parse. */
static EVP_PKEY *recorded_key(struct store *st, int64_t id)
{
	struct amtprov_error err;
	uint8_t *der = NULL;
	size_t len = 0;
	const unsigned char *q;
	X509 *x = NULL;
	EVP_PKEY *pub;

	amtprov_error_clear(&err);
	if (store_cert_data_get(st, id, &der, &len, NULL, &err) == AMTPROV_OK) {
		q = der;
		x = d2i_X509(NULL, &q, (long)len);
	}
	pub = x ? X509_get_pubkey(x) : NULL;
	X509_free(x);
	free(der);
	return pub;
}

/* The superseded certificates' keys and the current ones', from the record. */
static int read_recorded(struct flow_prune *p, const json_t *ids, struct amtprov_error *err)
{
	struct store *st = site_store(p->f->site);
	size_t n = json_array_size(ids), i;
	const json_t *v;

	p->recorded = n ? calloc(n, sizeof(*p->recorded)) : NULL;
	p->current = p->n_keep ? calloc(p->n_keep, sizeof(*p->current)) : NULL;
	if ((n && !p->recorded) || (p->n_keep && !p->current))
		return amtprov_error_set(err, AMTPROV_E_NOMEM, p->fqdn, "out of memory");
	json_array_foreach(ids, i, v) {
		EVP_PKEY *k = recorded_key(st, json_integer_value(v));

		if (k)
			p->recorded[p->n_recorded++] = k;
	}
	for (i = 0; i < p->n_keep; i++)
		p->current[i] = recorded_key(st, p->keep[i]);
	return AMTPROV_OK;
}

int flow_prune_start(struct flow *f, void *session, int64_t device_id, const char *fqdn,
		     const struct flow_prune_spec *spec, flow_prune_done_fn done, void *ctx,
		     struct flow_prune **out, struct amtprov_error *err)
{
	struct flow_prune *p = calloc(1, sizeof(*p));
	struct store_cert_filter flt = {.device_id = device_id, .purpose = spec->purpose};
	struct collect k = {.p = p};
	int rc;

	*out = NULL;
	if (p && spec->n_keep && (p->keep = calloc(spec->n_keep, sizeof(*p->keep))))
		memcpy(p->keep, spec->keep, spec->n_keep * sizeof(*spec->keep));
	if (p && spec->also)
		p->also = json_deep_copy(spec->also);
	if (!p || (spec->n_keep && !p->keep) || (spec->also && !p->also)) {
		flow_prune_free(p);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, fqdn, "out of memory");
	}
	p->f = f;
	p->session = session;
	p->device_id = device_id;
	p->purpose = spec->purpose;
	p->n_keep = spec->n_keep;
	p->done = done;
	p->ctx = ctx;
	util_strlcpy(p->fqdn, fqdn, sizeof(p->fqdn));
	p->superseded = k.out = json_array();
	k.ids = json_array();
	rc = p->superseded && k.ids
		     ? store_cert_list(site_store(f->site), &flt, collect_cb, &k, err)
		     : amtprov_error_set(err, AMTPROV_E_NOMEM, fqdn, "out of memory");
	if (rc == AMTPROV_OK)
		rc = read_recorded(p, k.ids, err);
	json_decref(k.ids);
	if (rc == AMTPROV_OK)
		rc = list(p, P_BINDINGS, AMTPROV_AMT_LIST_CERT_BINDINGS, err);
	if (rc != AMTPROV_OK) {
		flow_prune_free(p);
		return rc;
	}
	*out = p;
	return AMTPROV_OK;
}
