/* SPDX-License-Identifier: Apache-2.0 */
#include "preflight.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "util.h"

/* Inputs larger than this are not certificates, CRLs or hash lists. */
#define PF_MAX_FILE (16u * 1024u * 1024u)

struct preflight {
	char where[256];
	STACK_OF(X509) *input;      /* as given */
	STACK_OF(X509) *path;       /* leaf -> root (as far as it goes) */
	struct pki_chain_info info;
	int from_pkcs12;
	EVP_PKEY *key;
	X509_CRL **crls;
	char **crl_names;
	size_t n_crls;
};

/* ---------------- report ---------------- */

void pf_report_free(struct pf_report *r)
{
	if (!r)
		return;
	free(r->items);
	memset(r, 0, sizeof(*r));
}

const struct pf_result *pf_report_find(const struct pf_report *r, const char *id,
				       const char *device)
{
	for (size_t i = 0; r && i < r->n; i++)
		if (strcmp(r->items[i].id, id) == 0 &&
		    (!device || strcasecmp(r->items[i].device, device) == 0))
			return &r->items[i];
	return NULL;
}

/* Appends a result; its texts are filled by the caller. NULL when out of memory. */
static struct pf_result *add(struct pf_report *r, const char *id, const char *req,
			     const char *device)
{
	struct pf_result *x;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct pf_result *ni = realloc(r->items, cap * sizeof(*ni));

		if (!ni)
			return NULL;
		r->items = ni;
		r->cap = cap;
	}
	x = &r->items[r->n++];
	memset(x, 0, sizeof(*x));
	util_strlcpy(x->id, id, sizeof(x->id));
	x->requirement = req;
	util_strlcpy(x->device, device ? device : "", sizeof(x->device));
	x->ok = 1;
	return x;
}

static void settext(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void settext(char *dst, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, PF_TEXT_SIZE, fmt, ap);
	va_end(ap);
}

/* Marks the outcome and keeps the counters right; call once per result, last. */
static void finish(struct pf_report *r, struct pf_result *x, int ok, int severity)
{
	x->ok = ok;
	x->severity = ok ? severity : PF_SEV_ERROR;
	if (!ok)
		r->failed++;
	else if (severity >= PF_SEV_WARNING)
		r->warnings++;
}

static const char *verdict(const struct pf_result *x)
{
	if (!x->ok)
		return "FAIL";
	return x->severity >= PF_SEV_WARNING ? "WARN" : "PASS";
}

void pf_report_print(const struct pf_report *r, FILE *out, int verbose)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct pf_result *x = &r->items[i];
		int detail = verbose || !x->ok || x->severity >= PF_SEV_WARNING;

		fprintf(out, "%s  %-26s %s%s%s\n", verdict(x), x->id, x->requirement,
			x->device[0] ? "  device " : "", x->device);
		if (!detail)
			continue;
		fprintf(out, "      expected: %s\n      actual:   %s\n", x->expected, x->actual);
		if (x->hint[0])
			fprintf(out, "      hint:     %s\n", x->hint);
	}
	if (r->root_subject[0]) {
		fprintf(out, "root certificate %s\n", r->root_subject);
		fprintf(out, "  SHA-1    %s\n  SHA-256  %s\n  SHA-384  %s\n", r->root_sha1,
			r->root_sha256, r->root_sha384);
		fputs("  (an internal root must be active in the AMT firmware hash table: custom\n"
		      "   firmware image or MEBx \"Manage Certificate Hashes\"; R-PC-04)\n",
		      out);
	} else {
		fputs("root certificate: none in the chain\n", out);
	}
	fprintf(out, "%zu checks: %zu passed, %zu warnings, %zu failed\n", r->n,
		r->n - r->failed - r->warnings, r->warnings, r->failed);
}

json_t *pf_report_json(const struct pf_report *r)
{
	json_t *arr = json_array(), *root;

	for (size_t i = 0; i < r->n; i++) {
		const struct pf_result *x = &r->items[i];
		static const char *const sev[] = {"info", "warning", "error"};
		json_t *j = json_pack("{s:s,s:s,s:b,s:s,s:s,s:s,s:s,s:s}", "id", x->id,
				      "requirement", x->requirement, "ok", x->ok, "result",
				      verdict(x), "severity", sev[x->severity], "expected",
				      x->expected, "actual", x->actual, "hint", x->hint);

		if (j && x->device[0])
			json_object_set_new(j, "device", json_string(x->device));
		if (j && x->status_id)
			json_object_set_new(j, "status_id", json_integer(x->status_id));
		if (j)
			json_array_append_new(arr, j);
	}
	root = r->root_subject[0]
		       ? json_pack("{s:s,s:s,s:s,s:s}", "subject", r->root_subject, "sha1",
				   r->root_sha1, "sha256", r->root_sha256, "sha384", r->root_sha384)
		       : json_null();
	return json_pack("{s:b,s:I,s:I,s:o,s:o,s:s,s:I,s:I}", "ok", r->failed == 0, "failed",
			 (json_int_t)r->failed, "warnings", (json_int_t)r->warnings, "checks", arr,
			 "root", root, "leaf", r->leaf_subject, "not_after",
			 (json_int_t)r->not_after, "days_left", (json_int_t)r->days_left);
}

/* ---------------- loading ---------------- */

void preflight_free(struct preflight *pf)
{
	if (!pf)
		return;
	sk_X509_pop_free(pf->input, X509_free);
	sk_X509_pop_free(pf->path, X509_free);
	EVP_PKEY_free(pf->key);
	for (size_t i = 0; i < pf->n_crls; i++) {
		X509_CRL_free(pf->crls[i]);
		free(pf->crl_names[i]);
	}
	free(pf->crls);
	free(pf->crl_names);
	free(pf);
}

/* 1 if @p c issued another certificate of @p in (then it is not the leaf). */
static int issues_another(STACK_OF(X509) *in, X509 *c)
{
	for (int i = 0; i < sk_X509_num(in); i++) {
		X509 *o = sk_X509_value(in, i);

		if (o != c && X509_check_issued(c, o) == X509_V_OK)
			return 1;
	}
	return 0;
}

/*
 * The leaf is the certificate the key belongs to; without a matching key, the first one
 * that issued none of the others; else the first. Then orders the path from it.
 */
static int finish_load(struct preflight *pf, struct preflight **out, struct amtprov_error *err)
{
	X509 *leaf = NULL;
	int rc;

	for (int i = 0; pf->key && i < sk_X509_num(pf->input) && !leaf; i++)
		if (pki_key_matches(sk_X509_value(pf->input, i), pf->key))
			leaf = sk_X509_value(pf->input, i);
	for (int i = 0; i < sk_X509_num(pf->input) && !leaf; i++)
		if (!issues_another(pf->input, sk_X509_value(pf->input, i)))
			leaf = sk_X509_value(pf->input, i);
	ERR_clear_error();
	rc = pki_order_chain(pf->input, leaf, &pf->path, &pf->info, err);
	if (rc != AMTPROV_OK) {
		preflight_free(pf);
		return rc;
	}
	*out = pf;
	return AMTPROV_OK;
}

static struct preflight *pf_new(const char *where)
{
	struct preflight *pf = calloc(1, sizeof(*pf));

	if (pf)
		util_strlcpy(pf->where, where ? where : "", sizeof(pf->where));
	return pf;
}

int preflight_load_pem(const char *cert_pem, size_t cert_len, const char *key_pem,
		       size_t key_len, const char *where, struct preflight **out,
		       struct amtprov_error *err)
{
	struct preflight *pf = pf_new(where);
	int rc;

	if (!pf)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, where, "out of memory");
	rc = pki_load_pem(cert_pem, cert_len, where, &pf->input, &pf->key, err);
	if (rc == AMTPROV_OK && key_pem) {
		EVP_PKEY_free(pf->key);
		pf->key = NULL;
		rc = pki_load_pem_key(key_pem, key_len, where, &pf->key, err);
	}
	if (rc != AMTPROV_OK) {
		preflight_free(pf);
		return rc;
	}
	return finish_load(pf, out, err);
}

int preflight_load_pkcs12(const void *der, size_t len, const char *password, const char *where,
			  struct preflight **out, struct amtprov_error *err)
{
	struct preflight *pf = pf_new(where);
	int rc;

	if (!pf)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, where, "out of memory");
	pf->from_pkcs12 = 1;
	rc = pki_load_pkcs12(der, len, password, where, &pf->input, &pf->key, err);
	if (rc != AMTPROV_OK) {
		preflight_free(pf);
		return rc;
	}
	return finish_load(pf, out, err);
}

int preflight_load_files(const char *cert_file, const char *key_file, struct preflight **out,
			 struct amtprov_error *err)
{
	char *c = NULL, *k = NULL;
	size_t cl = 0, kl = 0;
	int rc;

	rc = util_read_file(cert_file, PF_MAX_FILE, &c, &cl, err);
	if (rc == AMTPROV_OK && key_file)
		rc = util_read_file(key_file, PF_MAX_FILE, &k, &kl, err);
	if (rc == AMTPROV_OK) {
		rc = preflight_load_pem(c, cl, k, kl, cert_file, out, err);
		/* A key parse error names the key file, not the chain. */
		if (rc != AMTPROV_OK && k && err && strcmp(err->where, cert_file) == 0 &&
		    strstr(err->msg, "private key"))
			util_strlcpy(err->where, key_file, sizeof(err->where));
	}
	free(c);
	if (k) {
		util_wipe(k, kl);
		free(k);
	}
	return rc;
}

int preflight_load_pkcs12_file(const char *file, const char *password, struct preflight **out,
			       struct amtprov_error *err)
{
	char *d = NULL;
	size_t l = 0;
	int rc = util_read_file(file, PF_MAX_FILE, &d, &l, err);

	if (rc == AMTPROV_OK)
		rc = preflight_load_pkcs12(d, l, password, file, out, err);
	if (d) {
		util_wipe(d, l);
		free(d);
	}
	return rc;
}

int preflight_load_manifest(const struct manifest *m, struct plugin_instance *credstore,
			    struct preflight **out, struct amtprov_error *err)
{
	struct amtprov_secret *pw = NULL;
	char *pass = NULL;
	int rc;

	if (m->provcert_file)
		return preflight_load_files(m->provcert_file, m->provcert_key_file, out, err);
	if (!m->provcert_pkcs12_file)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/provisioning_certificate",
					 "the manifest names no provisioning certificate (R-PC-07)");
	if (m->provcert_pkcs12_password) {
		if (!credstore)
			return amtprov_error_set(err, AMTPROV_E_CONFIG,
						 "/provisioning_certificate/pkcs12_password",
						 "no credential store to read '%s' from",
						 m->provcert_pkcs12_password);
		rc = pi_credstore_get(credstore, m->provcert_pkcs12_password, &pw, err);
		if (rc != AMTPROV_OK)
			return rc;
		/* NUL-terminated copy for OpenSSL; wiped below, never logged. */
		pass = calloc(1, pw->len + 1);
		if (!pass) {
			util_secret_free(pw);
			return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		}
		memcpy(pass, pw->data, pw->len);
	}
	rc = preflight_load_pkcs12_file(m->provcert_pkcs12_file, pass, out, err);
	if (pass) {
		util_wipe(pass, pw->len);
		free(pass);
	}
	util_secret_free(pw);
	return rc;
}

int preflight_add_crl(struct preflight *pf, const void *data, size_t len, const char *name,
		      struct amtprov_error *err)
{
	X509_CRL *crl = NULL;
	X509_CRL **nc;
	char **nn;
	int rc = pki_load_crl(data, len, name, &crl, err);

	if (rc != AMTPROV_OK)
		return rc;
	nc = realloc(pf->crls, (pf->n_crls + 1) * sizeof(*nc));
	if (nc)
		pf->crls = nc;
	nn = realloc(pf->crl_names, (pf->n_crls + 1) * sizeof(*nn));
	if (nn)
		pf->crl_names = nn;
	if (!nc || !nn) {
		X509_CRL_free(crl);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, name, "out of memory");
	}
	pf->crls[pf->n_crls] = crl;
	pf->crl_names[pf->n_crls] = util_strdup(name ? name : "CRL");
	pf->n_crls++;
	return AMTPROV_OK;
}

int preflight_add_crl_file(struct preflight *pf, const char *file, struct amtprov_error *err)
{
	char *d = NULL;
	size_t l = 0;
	int rc = util_read_file(file, PF_MAX_FILE, &d, &l, err);

	if (rc == AMTPROV_OK)
		rc = preflight_add_crl(pf, d, l, file, err);
	free(d);
	return rc;
}

int preflight_add_cdp_crls(struct preflight *pf)
{
	int added = 0;

	for (int i = 0; i < sk_X509_num(pf->path); i++) {
		char **files = pki_cdp_files(sk_X509_value(pf->path, i));

		for (size_t j = 0; files && files[j]; j++) {
			struct amtprov_error e;
			int dup = 0;

			for (size_t k = 0; k < pf->n_crls && !dup; k++)
				dup = pf->crl_names[k] && strcmp(pf->crl_names[k], files[j]) == 0;
			amtprov_error_clear(&e);
			/* A distribution point that is not there is not an error: it is optional. */
			if (!dup && preflight_add_crl_file(pf, files[j], &e) == AMTPROV_OK)
				added++;
		}
		pki_strv_free(files);
	}
	return added;
}

int preflight_chain_pem(struct preflight *pf, char **pem, size_t *len, struct amtprov_error *err)
{
	return pki_chain_pem(pf->path, pem, len, err);
}

int preflight_key_pem(struct preflight *pf, struct amtprov_secret **pem,
		      struct amtprov_error *err)
{
	if (!pf->key)
		return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, pf->where, "no private key");
	return pki_key_pem(pf->key, pem, err);
}

/* ---------------- site-wide checks ---------------- */

static X509 *leaf_of(struct preflight *pf)
{
	return sk_X509_value(pf->path, 0);
}

static X509 *root_of(struct preflight *pf)
{
	return pf->info.has_root ? sk_X509_value(pf->path, sk_X509_num(pf->path) - 1) : NULL;
}

/* Short name for messages: the CN, else the whole subject. */
static void short_name(X509 *c, char *buf, size_t size)
{
	if (!pki_subject_cn(c, buf, size) || !buf[0])
		pki_name(c, 0, buf, size);
}

/* Compares DNS names: case-insensitive, one trailing dot ignored. */
static int same_dns(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

static int check_eku(struct preflight *pf, struct pf_report *r)
{
	X509 *leaf = leaf_of(pf);
	struct pf_result *x = add(r, "eku-server-auth", "R-PC-01", NULL);
	char eku[400];
	int ok;

	if (!x)
		return AMTPROV_E_NOMEM;
	pki_eku_text(leaf, eku, sizeof(eku));
	ok = pki_has_eku(leaf, PKI_OID_SERVER_AUTH);
	settext(x->expected, "leaf EKU includes serverAuth (%s)", PKI_OID_SERVER_AUTH);
	settext(x->actual, "leaf EKU: %s", eku);
	if (!ok)
		settext(x->hint, "issue the certificate from a template with Server Authentication "
				 "in its application policies");
	finish(r, x, ok, PF_SEV_INFO);

	x = add(r, "amt-oid-or-ou", "R-PC-01", NULL);
	if (!x)
		return AMTPROV_E_NOMEM;
	{
		char ous[400];
		int has_oid = pki_has_eku(leaf, PKI_OID_AMT_PROVISIONING);
		int has_ou = pki_has_ou(leaf, PKI_AMT_OU);

		pki_subject_ous(leaf, ous, sizeof(ous));
		settext(x->expected, "leaf EKU includes %s or subject OU exactly \"%s\"",
			PKI_OID_AMT_PROVISIONING, PKI_AMT_OU);
		settext(x->actual, "EKU: %s; subject OU: %s", eku, ous[0] ? ous : "none");
		ok = has_oid || has_ou;
		if (!ok && strcasestr(ous, PKI_AMT_OU))
			settext(x->hint, "the OU differs from \"%s\" only in case or spacing: AMT "
					 "compares it exactly", PKI_AMT_OU);
		else if (!ok)
			settext(x->hint, "add the OID %s to the template's application policies "
					 "(version 2 template, R-CA-03) or request the subject OU \"%s\"",
				PKI_OID_AMT_PROVISIONING, PKI_AMT_OU);
		finish(r, x, ok, PF_SEV_INFO);
	}
	return AMTPROV_OK;
}

static int check_cn(struct preflight *pf, const struct pf_options *opt, struct pf_report *r)
{
	X509 *leaf = leaf_of(pf);
	char cn[256], subj[256];
	int has_cn = pki_subject_cn(leaf, cn, sizeof(cn));
	struct pf_result *x = add(r, "cn-fqdn", "R-PC-02", NULL);
	int ok;

	if (!x)
		return AMTPROV_E_NOMEM;
	pki_name(leaf, 0, subj, sizeof(subj));
	ok = has_cn && pki_is_fqdn(cn);
	settext(x->expected, "leaf subject CN is a fully qualified domain name");
	if (has_cn)
		settext(x->actual, "CN \"%s\"%s", cn,
			ok ? "" : (strchr(cn, '*') ? " (a wildcard)" : " (not an FQDN)"));
	else
		settext(x->actual, "no CN in subject \"%s\"", subj);
	if (!ok)
		settext(x->hint, "request the certificate with CN = the service point's FQDN");
	finish(r, x, ok, PF_SEV_INFO);

	if (!opt->service_point_fqdn)
		return AMTPROV_OK;
	x = add(r, "cn-service-point", "R-PC-02", NULL);
	if (!x)
		return AMTPROV_E_NOMEM;
	ok = has_cn && same_dns(cn, opt->service_point_fqdn);
	settext(x->expected, "CN = service point FQDN \"%s\"", opt->service_point_fqdn);
	settext(x->actual, has_cn ? "CN \"%s\"" : "no CN%s", has_cn ? cn : "");
	if (!ok)
		settext(x->hint, "the certificate must name the host running amtprov "
				 "(site.service_point_fqdn); request one for \"%s\"",
			opt->service_point_fqdn);
	finish(r, x, ok, PF_SEV_INFO);
	return AMTPROV_OK;
}

static int check_chain(struct preflight *pf, struct pf_report *r)
{
	struct pf_result *x = add(r, "chain-complete", "R-PC-03", NULL);
	int n = sk_X509_num(pf->path);
	char last[200];

	if (!x)
		return AMTPROV_E_NOMEM;
	short_name(sk_X509_value(pf->path, n - 1), last, sizeof(last));
	settext(x->expected, "every issuer present and verifying, up to a self-signed root");
	if (pf->info.complete)
		settext(x->actual, "%d certificate%s, leaf to root \"%s\"", n, n == 1 ? "" : "s",
			last);
	else
		settext(x->actual, "%d certificate%s on the path; %s", n, n == 1 ? "" : "s",
			pf->info.problem);
	if (!pf->info.complete)
		settext(x->hint, "append the missing CA certificates (up to and including the "
				 "root) to the chain file: AMT needs the whole chain (R-PC-03)");
	finish(r, x, pf->info.complete, PF_SEV_INFO);

	x = add(r, "chain-order", "R-PC-03", NULL);
	if (!x)
		return AMTPROV_E_NOMEM;
	settext(x->expected, pf->from_pkcs12 ? "an order leaf -> root can be derived"
					     : "leaf first, then each issuer in turn");
	if (pf->from_pkcs12 || pf->info.in_order) {
		char o[PF_TEXT_SIZE] = "";
		size_t l = 0;

		for (int i = 0; i < n; i++) {
			char nm[100];
			int w;

			short_name(sk_X509_value(pf->path, i), nm, sizeof(nm));
			w = snprintf(o + l, sizeof(o) - l, "%s\"%s\"", i ? " -> " : "", nm);
			if (w < 0 || (size_t)w >= sizeof(o) - l)
				break;
			l += (size_t)w;
		}
		if (pf->info.n_unused)
			settext(x->actual, "%.400s (%zu certificate(s) not on the path ignored)", o,
				pf->info.n_unused);
		else
			settext(x->actual, "%s", o);
		finish(r, x, 1, pf->info.n_unused ? PF_SEV_WARNING : PF_SEV_INFO);
	} else {
		int at = 0;
		char want[100], got[100];

		while (at < n && sk_X509_value(pf->input, at) == sk_X509_value(pf->path, at))
			at++;
		short_name(sk_X509_value(pf->path, at), want, sizeof(want));
		short_name(sk_X509_value(pf->input, at), got, sizeof(got));
		settext(x->actual, "position %d is \"%s\", but the issuer of the one before is \"%s\"",
			at + 1, got, want);
		settext(x->hint, "reorder the PEM file: leaf, intermediate(s), root");
		finish(r, x, 0, PF_SEV_ERROR);
	}
	return AMTPROV_OK;
}

static int check_key(struct preflight *pf, struct pf_report *r)
{
	struct pf_result *x = add(r, "key-match", "R-PROV-07", NULL);
	int ok;

	if (!x)
		return AMTPROV_E_NOMEM;
	settext(x->expected, "the private key belongs to the leaf certificate");
	if (!pf->key) {
		settext(x->actual, "no private key given");
		settext(x->hint, "name the key file (provisioning_certificate.key or --key)");
		ok = 0;
	} else {
		char desc[100];
		int is_rsa, bits;

		ok = pki_key_matches(leaf_of(pf), pf->key);
		pki_key_info(leaf_of(pf), &is_rsa, &bits, desc, sizeof(desc));
		if (ok) {
			settext(x->actual, "the key matches the leaf's %s public key", desc);
		} else {
			const char *kt = EVP_PKEY_get0_type_name(pf->key);

			settext(x->actual, "the key (%s %d) does not match the leaf's %s public key",
				kt ? kt : "?", EVP_PKEY_get_bits(pf->key), desc);
			settext(x->hint, "use the key the certificate request was made with");
		}
	}
	finish(r, x, ok, PF_SEV_INFO);
	return AMTPROV_OK;
}

static int check_validity(struct preflight *pf, const struct pf_options *opt,
			  struct pf_report *r)
{
	struct pf_result *x = add(r, "validity", "R-PC-06", NULL);
	int warn = opt->warning_days > 0 ? opt->warning_days : 40;
	int errd = opt->error_days > 0 ? opt->error_days : 15;
	int64_t min_na = INT64_MAX;
	char now_s[32], bad[PF_TEXT_SIZE] = "", min_name[100] = "";
	int ok = 1;

	if (!x)
		return AMTPROV_E_NOMEM;
	util_fmt_time(opt->now, now_s, sizeof(now_s));
	for (int i = 0; i < sk_X509_num(pf->path); i++) {
		X509 *c = sk_X509_value(pf->path, i);
		int64_t nb, na;
		char nm[100], t[32];

		short_name(c, nm, sizeof(nm));
		if (pki_validity(c, &nb, &na) < 0) {
			if (ok)
				snprintf(bad, sizeof(bad), "\"%s\" has unreadable validity dates", nm);
			ok = 0;
			continue;
		}
		if (na < min_na) {
			min_na = na;
			util_strlcpy(min_name, nm, sizeof(min_name));
		}
		if (ok && opt->now < nb) {
			snprintf(bad, sizeof(bad), "\"%s\" is not valid before %s", nm,
				 util_fmt_time(nb, t, sizeof(t)));
			ok = 0;
		} else if (ok && opt->now > na) {
			snprintf(bad, sizeof(bad), "\"%s\" expired at %s (%lld days ago)", nm,
				 util_fmt_time(na, t, sizeof(t)),
				 (long long)((opt->now - na) / 86400));
			ok = 0;
		}
	}
	r->not_after = min_na == INT64_MAX ? 0 : min_na;
	r->days_left = min_na == INT64_MAX ? 0
		       : min_na >= opt->now ? (min_na - opt->now) / 86400
					    : -((opt->now - min_na + 86399) / 86400);
	settext(x->expected, "every certificate valid at %s; more than %d days left", now_s,
		warn);
	if (!ok) {
		settext(x->actual, "%s", bad);
		settext(x->hint, "renew the provisioning certificate and name the new one in the "
				 "manifest (R-PC-07)");
		finish(r, x, 0, PF_SEV_ERROR);
		return AMTPROV_OK;
	}
	{
		char t[32];

		settext(x->actual, "valid; %lld days left (\"%s\" expires %s)",
			(long long)r->days_left, min_name, util_fmt_time(r->not_after, t, sizeof(t)));
	}
	if (r->days_left < errd) {
		x->status_id = 7211;
		settext(x->hint, "fewer than %d days left: status 7211 (error) daily until a "
				 "certificate with more than %d days is configured", errd, errd);
		finish(r, x, 1, PF_SEV_ERROR);
	} else if (r->days_left <= warn) {
		x->status_id = 7210;
		settext(x->hint, "%d days or fewer left: status 7210 (warning) daily; renew now",
			warn);
		finish(r, x, 1, PF_SEV_WARNING);
	} else {
		finish(r, x, 1, PF_SEV_INFO);
	}
	return AMTPROV_OK;
}

/* Appends "; " + text to a bounded list. */
static void append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t l = strlen(buf);
	va_list ap;

	if (l + 3 >= size)
		return;
	if (l) {
		buf[l++] = ';';
		buf[l++] = ' ';
		buf[l] = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(buf + l, size - l, fmt, ap);
	va_end(ap);
}

static int check_algorithms(struct preflight *pf, int amt_major, struct pf_report *r)
{
	char not_rsa[PF_TEXT_SIZE] = "", small[PF_TEXT_SIZE] = "", weak[PF_TEXT_SIZE] = "";
	char all_keys[PF_TEXT_SIZE] = "", all_sigs[PF_TEXT_SIZE] = "";
	char below22[PF_TEXT_SIZE] = "";
	struct pf_result *x;
	int leaf_not_rsa = 0;

	for (int i = 0; i < sk_X509_num(pf->path); i++) {
		X509 *c = sk_X509_value(pf->path, i);
		char nm[100], desc[100], dg[40];
		int is_rsa, bits;

		short_name(c, nm, sizeof(nm));
		pki_key_info(c, &is_rsa, &bits, desc, sizeof(desc));
		append(all_keys, sizeof(all_keys), "\"%s\" %s", nm, desc);
		if (!is_rsa) {
			append(not_rsa, sizeof(not_rsa), "\"%s\" %s", nm, desc);
			leaf_not_rsa |= i == 0;
		} else if (bits < 2048) {
			append(small, sizeof(small), "\"%s\" %s", nm, desc);
		}
		if (pki_sig_weak(c, dg, sizeof(dg)))
			append(weak, sizeof(weak), "\"%s\" signed with %s", nm, dg);
		append(all_sigs, sizeof(all_sigs), "\"%s\" %s", nm, dg);
		if (is_rsa && bits < 3072)
			append(below22, sizeof(below22), "\"%s\" %s", nm, desc);
		if (strcmp(dg, "SHA384") != 0 && strcmp(dg, "SHA512") != 0)
			append(below22, sizeof(below22), "\"%s\" signed with %s", nm, dg);
	}
	x = add(r, "key-rsa", "CSME-16", NULL);
	if (!x)
		return AMTPROV_E_NOMEM;
	settext(x->expected, "RSA keys throughout the chain (AMT's provisioning handshake uses RSA)");
	settext(x->actual, "%s", not_rsa[0] ? not_rsa : all_keys);
	if (not_rsa[0])
		settext(x->hint, "%s", leaf_not_rsa ? "AMT needs an RSA provisioning certificate: an "
						      "ECDSA leaf is refused; request RSA 2048+"
						    : "use a CA hierarchy with RSA keys");
	finish(r, x, !not_rsa[0], PF_SEV_INFO);

	x = add(r, "key-size", "CSME-16", NULL);
	if (!x)
		return AMTPROV_E_NOMEM;
	settext(x->expected, "every RSA key at least 2048 bits (CSME 16+ refuses smaller)");
	settext(x->actual, "%s", small[0] ? small : all_keys);
	if (small[0])
		settext(x->hint, "re-issue with RSA 2048 or larger (template minimum key size)");
	finish(r, x, !small[0], PF_SEV_INFO);

	x = add(r, "no-sha1", "CSME-16", NULL);
	if (!x)
		return AMTPROV_E_NOMEM;
	settext(x->expected, "no SHA-1 (or MD5) signature anywhere in the chain (CSME 16+ refuses)");
	settext(x->actual, "%s", weak[0] ? weak : all_sigs);
	if (weak[0])
		settext(x->hint, "re-issue the named certificates with SHA-256 or stronger (for a "
				 "root: a new root, and its new hash in the firmware)");
	finish(r, x, !weak[0], PF_SEV_INFO);

	/* A warning, not a failure: older firmware still takes the chain (issue 17 item 11). */
	x = add(r, "amt22-strength", "AMT-22", NULL);
	if (!x)
		return AMTPROV_E_NOMEM;
	settext(x->expected, "RSA 3072 or larger and SHA-384 or stronger throughout the chain "
			     "(AMT 22 deprecates SHA-256 and RSA 2048 for provisioning)");
	settext(x->actual, "%s", below22[0] ? below22 : all_sigs);
	if (below22[0])
		settext(x->hint, "AMT 22 and later devices will refuse this chain: re-issue it "
				 "with RSA 3072 and SHA-384 before such devices arrive (older "
				 "devices accept both)");
	finish(r, x, 1, below22[0] && amt_major >= 22 ? PF_SEV_WARNING : PF_SEV_INFO);
	return AMTPROV_OK;
}

static int check_root(struct preflight *pf, struct pf_report *r)
{
	struct pf_result *x = add(r, "root-thumbprint", "R-PC-04", NULL);
	X509 *root = root_of(pf);

	if (!x)
		return AMTPROV_E_NOMEM;
	settext(x->expected, "a root certificate whose hash is active in the AMT firmware");
	if (!root) {
		settext(x->actual, "no root certificate in the chain: no thumbprint to add");
		settext(x->hint, "complete the chain (chain-complete)");
		finish(r, x, 1, PF_SEV_WARNING);
		return AMTPROV_OK;
	}
	settext(x->actual, "root \"%s\" SHA-256 %s", r->root_subject, r->root_sha256);
	settext(x->hint, "for an internal root, add one of its thumbprints to each device (MEBx, "
			 "setup.bin or a custom firmware image); external CAs' roots are built in");
	finish(r, x, 1, PF_SEV_INFO);
	return AMTPROV_OK;
}

static int check_revocation(struct preflight *pf, const struct pf_options *opt,
			    struct pf_report *r)
{
	struct pf_result *x = add(r, "revocation", "R-PC-08", NULL);
	char revoked[PF_TEXT_SIZE] = "", notes[PF_TEXT_SIZE] = "", used[PF_TEXT_SIZE] = "";
	int checked = 0, sev = PF_SEV_INFO;

	if (!x)
		return AMTPROV_E_NOMEM;
	settext(x->expected, "no certificate of the chain listed in an available CRL");
	for (int i = 0; i + 1 < sk_X509_num(pf->path); i++) {
		X509 *c = sk_X509_value(pf->path, i), *iss = sk_X509_value(pf->path, i + 1);
		char nm[100];

		short_name(c, nm, sizeof(nm));
		for (size_t k = 0; k < pf->n_crls; k++) {
			struct pki_revocation rev;
			struct amtprov_error e;
			int rc;

			amtprov_error_clear(&e);
			rc = pki_crl_check(pf->crls[k], c, iss, &rev, &e);
			if (rc == AMTPROV_E_NOT_FOUND)
				continue;
			if (rc != AMTPROV_OK) {
				append(notes, sizeof(notes), "%s: %s", pf->crl_names[k], e.msg);
				sev = PF_SEV_WARNING;
				continue;
			}
			checked++;
			append(used, sizeof(used), "\"%s\" against %s", nm, pf->crl_names[k]);
			if (pki_crl_next_update(pf->crls[k]) &&
			    pki_crl_next_update(pf->crls[k]) < opt->now) {
				append(notes, sizeof(notes), "%s is past its nextUpdate",
				       pf->crl_names[k]);
				sev = PF_SEV_WARNING;
			}
			if (rev.revoked) {
				char t[32];

				append(revoked, sizeof(revoked), "\"%s\" revoked at %s, reason %s (%s)",
				       nm, util_fmt_time(rev.revoked_at, t, sizeof(t)), rev.reason,
				       pf->crl_names[k]);
			}
		}
	}
	if (revoked[0]) {
		settext(x->actual, "%s", revoked);
		settext(x->hint, "AMT cannot check revocation itself: remove this certificate from "
				 "the manifest and configure a valid one; provisioning stops until then");
		finish(r, x, 0, PF_SEV_ERROR);
	} else if (!checked) {
		settext(x->actual, "not checked: no CRL from the chain's issuers available%s%s",
			notes[0] ? "; " : "", notes);
		finish(r, x, 1, sev);
	} else {
		settext(x->actual, "not revoked (%s)%s%s", used, notes[0] ? "; " : "", notes);
		finish(r, x, 1, sev);
	}
	return AMTPROV_OK;
}

int preflight_run(struct preflight *pf, const struct pf_options *opt, struct pf_report *r)
{
	X509 *root = root_of(pf);
	int rc;

	pki_name(leaf_of(pf), 0, r->leaf_subject, sizeof(r->leaf_subject));
	r->root_subject[0] = r->root_sha1[0] = r->root_sha256[0] = r->root_sha384[0] = '\0';
	if (root) {
		struct amtprov_error e;

		amtprov_error_clear(&e);
		pki_name(root, 0, r->root_subject, sizeof(r->root_subject));
		pki_thumbprint(root, PKI_HASH_SHA1, r->root_sha1, sizeof(r->root_sha1), &e);
		pki_thumbprint(root, PKI_HASH_SHA256, r->root_sha256, sizeof(r->root_sha256), &e);
		pki_thumbprint(root, PKI_HASH_SHA384, r->root_sha384, sizeof(r->root_sha384), &e);
	}
	if ((rc = check_eku(pf, r)) || (rc = check_cn(pf, opt, r)) || (rc = check_chain(pf, r)) ||
	    (rc = check_key(pf, r)) || (rc = check_validity(pf, opt, r)) ||
	    (rc = check_algorithms(pf, opt->amt_major, r)) || (rc = check_root(pf, r)) ||
	    (rc = check_revocation(pf, opt, r)))
		return rc;
	return AMTPROV_OK;
}

/* ---------------- per-device checks ---------------- */

int preflight_device(struct preflight *pf, const struct pf_options *opt,
		     const struct pf_device *dev, struct pf_report *r)
{
	const char *fq = dev->fqdn ? dev->fqdn : "";
	struct pf_result *x = add(r, "device-namespace", "R-PC-05", fq);
	char droot[256], sroot[256], cn[256];
	int ok;

	if (!x)
		return AMTPROV_E_NOMEM;
	ok = opt->service_point_fqdn &&
	     pki_namespace_shared(fq, opt->service_point_fqdn, droot, sizeof(droot), sroot,
				  sizeof(sroot));
	settext(x->expected, "device FQDN in the service point's DNS tree \"%s\"",
		opt->service_point_fqdn ? sroot : "(no service point FQDN)");
	if (!pki_is_fqdn(fq))
		settext(x->actual, "\"%s\" is not a fully qualified domain name", fq);
	else
		settext(x->actual, "device \"%s\" is in \"%s\"", fq, droot[0] ? droot : "?");
	if (!ok)
		settext(x->hint, "AMT provisioning fails across namespaces, even in one AD forest: "
				 "use a service point (and provisioning certificate) in the "
				 "device's DNS tree");
	finish(r, x, ok, PF_SEV_INFO);

	if (dev->ad_domain) {
		const char *dot = strchr(fq, '.');

		x = add(r, "device-disjoint-namespace", "R-PC-05", fq);
		if (!x)
			return AMTPROV_E_NOMEM;
		ok = !pki_namespace_disjoint(fq, dev->ad_domain);
		settext(x->expected, "Active Directory domain equals the device's DNS suffix \"%s\"",
			dot ? dot + 1 : "");
		settext(x->actual, "AD domain \"%s\"", dev->ad_domain);
		if (!ok)
			settext(x->hint, "a disjoint namespace (DNS suffix differs from the AD domain) "
					 "is not supported");
		finish(r, x, ok, PF_SEV_INFO);
	}

	if (dev->trusted_dns_suffix) {
		char dom[256];

		x = add(r, "device-dns-suffix", "R-PROV-07", fq);
		if (!x)
			return AMTPROV_E_NOMEM;
		if (!pki_subject_cn(leaf_of(pf), cn, sizeof(cn)))
			cn[0] = '\0';
		ok = pki_amt_suffix_match(cn, dev->trusted_dns_suffix, dom, sizeof(dom));
		settext(x->expected, "the device's trusted DNS suffix is \"%s\" or below it "
				     "(domain of the certificate CN \"%s\")", dom[0] ? dom : "?", cn);
		settext(x->actual, "trusted DNS suffix \"%s\"", dev->trusted_dns_suffix);
		if (!ok)
			settext(x->hint, "set the MEBx PKI DNS suffix to \"%s\" (or fix DHCP option "
					 "15 for the device's segment)", dom[0] ? dom : "the CN's domain");
		finish(r, x, ok, PF_SEV_INFO);
	}

	if (dev->hashes_known) {
		X509 *root = root_of(pf);
		char want[PF_TEXT_SIZE] = "";
		size_t per[4] = {0};
		int found = 0;

		x = add(r, "device-root-hash", "R-PC-04", fq);
		if (!x)
			return AMTPROV_E_NOMEM;
		for (size_t i = 0; i < dev->n_hashes; i++)
			if (dev->hashes[i].alg >= 1 && dev->hashes[i].alg <= 3)
				per[dev->hashes[i].alg]++;
		if (!root) {
			settext(x->expected, "the chain's root hash among the device's active hashes");
			settext(x->actual, "the chain has no root certificate");
			finish(r, x, 0, PF_SEV_ERROR);
			return AMTPROV_OK;
		}
		for (int alg = PKI_HASH_SHA1; alg <= PKI_HASH_SHA384; alg++) {
			char hex[PKI_HEX_SIZE];
			struct amtprov_error e;

			amtprov_error_clear(&e);
			if (pki_thumbprint(root, alg, hex, sizeof(hex), &e) != AMTPROV_OK)
				continue;
			if (per[alg])
				append(want, sizeof(want), "%s %s", pki_hash_name(alg), hex);
			for (size_t i = 0; i < dev->n_hashes; i++)
				if (dev->hashes[i].alg == alg && strcasecmp(dev->hashes[i].hex, hex) == 0)
					found = alg;
		}
		if (!want[0]) {
			char hex[PKI_HEX_SIZE];
			struct amtprov_error e;

			amtprov_error_clear(&e);
			if (pki_thumbprint(root, PKI_HASH_SHA256, hex, sizeof(hex), &e) == AMTPROV_OK)
				settext(want, "SHA-256 %s", hex);
		}
		{
			char rn[256];

			/* The report may hold only device results: name the root here. */
			pki_name(root, 0, rn, sizeof(rn));
			settext(x->expected, "root \"%.200s\" hash among the device's hashes: %.280s",
				rn, want);
		}
		if (found)
			settext(x->actual, "device reports %zu hashes; the %s hash matches",
				dev->n_hashes, pki_hash_name(found));
		else
			settext(x->actual, "device reports %zu hashes (SHA-1 %zu, SHA-256 %zu, "
					   "SHA-384 %zu); none is this root's", dev->n_hashes, per[1],
				per[2], per[3]);
		if (!found)
			settext(x->hint, "add the root's hash to the device (MEBx \"Manage "
					 "Certificate Hashes\") and activate it, or use a certificate "
					 "from a CA whose root the firmware has");
		finish(r, x, found != 0, PF_SEV_INFO);
	}
	return AMTPROV_OK;
}

int preflight_parse_hashes(const char *text, const char *where, struct pf_hash **hashes,
			   size_t *n, struct amtprov_error *err)
{
	struct pf_hash *v = NULL;
	size_t cnt = 0, cap = 0;
	int line = 0;
	const char *p = text;

	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char buf[512], *s, *hex, *save = NULL, *tok1, *tok2;
		struct pf_hash h;
		size_t hl = 0;

		line++;
		snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1), p);
		p = eol ? eol + 1 : p + len;
		if ((s = strchr(buf, '#')) != NULL)
			*s = '\0';
		tok1 = strtok_r(buf, " \t\r,=", &save);
		if (!tok1)
			continue;
		tok2 = strtok_r(NULL, " \t\r,=", &save);
		memset(&h, 0, sizeof(h));
		hex = tok2 ? tok2 : tok1;
		for (const char *q = hex; *q; q++) {
			if (*q == ':')
				continue;
			if (!isxdigit((unsigned char)*q) || hl + 1 >= sizeof(h.hex)) {
				free(v);
				return amtprov_error_set(err, AMTPROV_E_PARSE, where,
							 "line %d: '%.60s' is not a hex hash", line, hex);
			}
			h.hex[hl++] = (char)toupper((unsigned char)*q);
		}
		h.alg = tok2 ? pki_hash_parse(tok1)
			: hl == 40 ? PKI_HASH_SHA1 : hl == 64 ? PKI_HASH_SHA256
			: hl == 96 ? PKI_HASH_SHA384 : -1;
		if (h.alg < 0 || hl != 2 * pki_hash_len(h.alg)) {
			free(v);
			return amtprov_error_set(err, AMTPROV_E_PARSE, where,
						 "line %d: expected 'sha1|sha256|sha384 HEX' with the "
						 "algorithm's length", line);
		}
		if (cnt == cap) {
			struct pf_hash *nv;

			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*nv));
			if (!nv) {
				free(v);
				return amtprov_error_set(err, AMTPROV_E_NOMEM, where, "out of memory");
			}
			v = nv;
		}
		v[cnt++] = h;
	}
	*hashes = v;
	*n = cnt;
	return AMTPROV_OK;
}
