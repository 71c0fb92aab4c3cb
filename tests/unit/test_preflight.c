/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Provisioning-certificate preflight (R-PC-01..08, CSME 16): for every check a certificate
 * built to fail exactly that check, asserting the check's id and that expected and actual
 * name both values; and one certificate that passes everything. Certificates are built
 * with the OpenSSL API by a small factory (tc_*), which test_pki.c shares.
 */
#include <string.h>

#include <CUnit/CUnit.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "preflight.h"
#include "util.h"

#define NOW 1767225600LL /* 2026-01-01T00:00:00Z: tests drive the clock */
#define DAY 86400LL
#define SP "oob.contoso.com"
#define AMT_EKU "serverAuth,2.16.840.1.113741.1.2.3"

/* ---------------- certificate factory ---------------- */

struct tc_spec {
	const char *cn;       /* NULL: no CN */
	const char *ou;       /* NULL: no OU */
	const char *eku;      /* "serverAuth,1.2.3" as for X509V3 config; NULL: no EKU */
	const EVP_MD *md;     /* NULL: SHA-256 */
	long long nb, na;     /* validity; 0: NOW - 30 days, NOW + 365 days */
	int ca;
	long serial;
};

EVP_PKEY *tc_key(int bits);
X509 *tc_make(const struct tc_spec *s, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey);
X509 *tc_cert(const char *cn, const char *eku, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
	      int ca);

/* RSA of @p bits, or EC P-256 when bits is 0. */
EVP_PKEY *tc_key(int bits)
{
	return bits ? EVP_RSA_gen((unsigned int)bits) : EVP_EC_gen("P-256");
}

static void add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer ? issuer : c, c, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (e) {
		X509_add_ext(c, e, -1);
		X509_EXTENSION_free(e);
	}
}

X509 *tc_make(const struct tc_spec *s, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey)
{
	X509 *c = X509_new();
	X509_NAME *nm = X509_NAME_new();

	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), s->serial ? s->serial : 1000 + (long)(random() % 100000));
	if (s->ou)
		X509_NAME_add_entry_by_txt(nm, "OU", MBSTRING_UTF8, (const unsigned char *)s->ou,
					   -1, -1, 0);
	if (s->cn)
		X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)s->cn,
					   -1, -1, 0);
	if (!s->cn && !s->ou)
		X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8, (const unsigned char *)"NoCN",
					   -1, -1, 0);
	X509_set_subject_name(c, nm);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : nm);
	X509_NAME_free(nm);
	ASN1_TIME_set(X509_getm_notBefore(c), (time_t)(s->nb ? s->nb : NOW - 30 * DAY));
	ASN1_TIME_set(X509_getm_notAfter(c), (time_t)(s->na ? s->na : NOW + 365 * DAY));
	X509_set_pubkey(c, key);
	add_ext(c, issuer, NID_subject_key_identifier, "hash");
	if (issuer)
		add_ext(c, issuer, NID_authority_key_identifier, "keyid:always");
	add_ext(c, issuer, NID_basic_constraints, s->ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (s->ca)
		add_ext(c, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (s->eku)
		add_ext(c, issuer, NID_ext_key_usage, s->eku);
	if (!X509_sign(c, ikey, s->md ? s->md : EVP_sha256())) {
		X509_free(c);
		return NULL;
	}
	return c;
}

X509 *tc_cert(const char *cn, const char *eku, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
	      int ca)
{
	struct tc_spec s = {.cn = cn, .eku = eku, .ca = ca};

	return tc_make(&s, key, issuer, ikey);
}

/* Keys are slow to make: one set for the suite. */
static EVP_PKEY *k_root, *k_inter, *k_leaf, *k_other, *k_small, *k_ec;
static X509 *c_root, *c_inter;

static int suite_init(void)
{
	k_root = tc_key(2048);
	k_inter = tc_key(2048);
	k_leaf = tc_key(2048);
	k_other = tc_key(2048);
	k_small = tc_key(1024);
	k_ec = tc_key(0);
	if (!k_root || !k_inter || !k_leaf || !k_other || !k_small || !k_ec)
		return 1;
	{
		struct tc_spec r = {.cn = "Contoso Root", .ca = 1, .na = NOW + 3650 * DAY, .serial = 1};
		struct tc_spec i = {.cn = "Contoso Issuing", .ca = 1, .na = NOW + 1825 * DAY,
				    .serial = 2};

		c_root = tc_make(&r, k_root, NULL, k_root);
		c_inter = tc_make(&i, k_inter, c_root, k_root);
	}
	return c_root && c_inter ? 0 : 1;
}

static int suite_clean(void)
{
	X509_free(c_root);
	X509_free(c_inter);
	EVP_PKEY_free(k_root);
	EVP_PKEY_free(k_inter);
	EVP_PKEY_free(k_leaf);
	EVP_PKEY_free(k_other);
	EVP_PKEY_free(k_small);
	EVP_PKEY_free(k_ec);
	return 0;
}

static void pem_append(BIO *b, X509 *c)
{
	if (c)
		PEM_write_bio_X509(b, c);
}

/* Loads certs[0..n) as a PEM file would hold them, plus @p key, into a preflight. */
static struct preflight *load(X509 *const *certs, int n, EVP_PKEY *key)
{
	BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
	char *cp = NULL, *kp = NULL;
	long cl, kl = 0;
	struct preflight *pf = NULL;
	struct amtprov_error err;

	for (int i = 0; i < n; i++)
		pem_append(cb, certs[i]);
	if (key)
		PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL);
	cl = BIO_get_mem_data(cb, &cp);
	if (key)
		kl = BIO_get_mem_data(kb, &kp);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(preflight_load_pem(cp, (size_t)cl, key ? kp : NULL, (size_t)kl, "test",
					   &pf, &err), AMTPROV_OK);
	BIO_free(cb);
	BIO_free(kb);
	return pf;
}

static const struct pf_options opts = {.service_point_fqdn = SP, .now = NOW};

/* Runs the site-wide checks on leaf + inter + root (in that order) with @p key. */
static void run_leaf(X509 *leaf, EVP_PKEY *key, const struct pf_options *o, struct pf_report *r)
{
	X509 *chain[] = {leaf, c_inter, c_root};
	struct preflight *pf = load(chain, 3, key);

	memset(r, 0, sizeof(*r));
	if (pf)
		CU_ASSERT_EQUAL(preflight_run(pf, o ? o : &opts, r), AMTPROV_OK);
	preflight_free(pf);
}

/* Exactly one check fails: @p id; its expected and actual contain @p exp and @p act. */
static void assert_only_failure(const struct pf_report *r, const char *id, const char *exp,
				const char *act)
{
	const struct pf_result *x = pf_report_find(r, id, NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	CU_ASSERT_EQUAL(r->failed, 1u);
	CU_ASSERT_FALSE(x->ok);
	CU_ASSERT_EQUAL(x->severity, PF_SEV_ERROR);
	if (!strstr(x->expected, exp) || !strstr(x->actual, act) || r->failed != 1) {
		for (size_t i = 0; i < r->n; i++)
			if (!r->items[i].ok)
				fprintf(stderr, "\n  failed %s: expected '%s' actual '%s'",
					r->items[i].id, r->items[i].expected, r->items[i].actual);
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(x->expected, exp));
	CU_ASSERT_PTR_NOT_NULL(strstr(x->actual, act));
	CU_ASSERT_TRUE(x->hint[0] != '\0');
}

static X509 *leaf_with(const char *cn, const char *ou, const char *eku, EVP_PKEY *key,
		       const EVP_MD *md, long long nb, long long na)
{
	struct tc_spec s = {.cn = cn, .ou = ou, .eku = eku, .md = md, .nb = nb, .na = na};

	return tc_make(&s, key, c_inter, k_inter);
}

/* ---------------- the passing certificate ---------------- */

static void test_good_certificate_passes_everything(void)
{
	X509 *leaf = leaf_with(SP, NULL, AMT_EKU, k_leaf, NULL, 0, 0);
	struct pf_report r;
	char want[65];

	run_leaf(leaf, k_leaf, NULL, &r);
	for (size_t i = 0; i < r.n; i++)
		if (!r.items[i].ok || r.items[i].severity)
			fprintf(stderr, "\n  %s: %s / %s", r.items[i].id, r.items[i].expected,
				r.items[i].actual);
	CU_ASSERT_EQUAL(r.failed, 0u);
	CU_ASSERT_EQUAL(r.warnings, 0u);
	CU_ASSERT_TRUE(r.n >= 13);
	for (const char *const *id = (const char *const[]){"eku-server-auth", "amt-oid-or-ou",
				"cn-fqdn", "cn-service-point", "chain-complete", "chain-order",
				"key-match", "validity", "key-rsa", "key-size", "no-sha1",
				"root-thumbprint", "revocation", NULL};
	     *id; id++)
		CU_ASSERT_PTR_NOT_NULL(pf_report_find(&r, *id, NULL));
	CU_ASSERT_EQUAL(r.days_left, 365);
	{
		struct amtprov_error e;

		amtprov_error_clear(&e);
		pki_thumbprint(c_root, PKI_HASH_SHA256, want, sizeof(want), &e);
	}
	CU_ASSERT_STRING_EQUAL(r.root_sha256, want);
	CU_ASSERT_EQUAL(strlen(r.root_sha1), 40u);
	CU_ASSERT_EQUAL(strlen(r.root_sha384), 96u);
	{
		json_t *j = pf_report_json(&r);

		CU_ASSERT_TRUE(json_is_true(json_object_get(j, "ok")));
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(j, "root"),
									  "sha256")), want);
		json_decref(j);
	}
	pf_report_free(&r);
	X509_free(leaf);
}

/* ---------------- one certificate per failing check ---------------- */

static void test_fail_eku_server_auth(void)
{
	X509 *leaf = leaf_with(SP, NULL, "clientAuth,2.16.840.1.113741.1.2.3", k_leaf, NULL, 0, 0);
	struct pf_report r;

	run_leaf(leaf, k_leaf, NULL, &r);
	assert_only_failure(&r, "eku-server-auth", "1.3.6.1.5.5.7.3.1", "clientAuth");
	pf_report_free(&r);
	X509_free(leaf);
}

static void test_fail_amt_oid_or_ou(void)
{
	/* The OU differs only in case: AMT compares it exactly (R-PC-01). */
	X509 *leaf = leaf_with(SP, "intel(r) client setup certificate", "serverAuth", k_leaf, NULL,
			       0, 0);
	struct pf_report r;

	run_leaf(leaf, k_leaf, NULL, &r);
	assert_only_failure(&r, "amt-oid-or-ou", "2.16.840.1.113741.1.2.3",
			    "\"intel(r) client setup certificate\"");
	CU_ASSERT_PTR_NOT_NULL(strstr(pf_report_find(&r, "amt-oid-or-ou", NULL)->hint, "case"));
	pf_report_free(&r);
	X509_free(leaf);
}

static void test_exact_ou_instead_of_oid_passes(void)
{
	X509 *leaf = leaf_with(SP, PKI_AMT_OU, "serverAuth", k_leaf, NULL, 0, 0);
	struct pf_report r;

	run_leaf(leaf, k_leaf, NULL, &r);
	CU_ASSERT_EQUAL(r.failed, 0u);
	pf_report_free(&r);
	X509_free(leaf);
}

static void test_fail_cn_fqdn(void)
{
	/* A single-label CN that equals the (single-label) service point: only cn-fqdn fails. */
	X509 *leaf = leaf_with("oob", NULL, AMT_EKU, k_leaf, NULL, 0, 0);
	struct pf_options o = opts;
	struct pf_report r;

	o.service_point_fqdn = "oob";
	run_leaf(leaf, k_leaf, &o, &r);
	assert_only_failure(&r, "cn-fqdn", "fully qualified", "CN \"oob\"");
	pf_report_free(&r);
	X509_free(leaf);
}

static void test_fail_cn_service_point(void)
{
	X509 *leaf = leaf_with("other.contoso.com", NULL, AMT_EKU, k_leaf, NULL, 0, 0);
	struct pf_report r;

	run_leaf(leaf, k_leaf, NULL, &r);
	assert_only_failure(&r, "cn-service-point", SP, "other.contoso.com");
	pf_report_free(&r);
	X509_free(leaf);
}

static void test_fail_chain_complete_missing_intermediate(void)
{
	X509 *leaf = leaf_with(SP, NULL, AMT_EKU, k_leaf, NULL, 0, 0);
	X509 *chain[] = {leaf, c_root};
	struct preflight *pf = load(chain, 2, k_leaf);
	struct pf_report r = {0};

	CU_ASSERT_EQUAL(preflight_run(pf, &opts, &r), AMTPROV_OK);
	assert_only_failure(&r, "chain-complete", "self-signed root", "CN=Contoso Issuing");
	pf_report_free(&r);
	preflight_free(pf);
	X509_free(leaf);
}

static void test_fail_chain_order(void)
{
	X509 *leaf = leaf_with(SP, NULL, AMT_EKU, k_leaf, NULL, 0, 0);
	X509 *chain[] = {leaf, c_root, c_inter};
	struct preflight *pf = load(chain, 3, k_leaf);
	struct pf_report r = {0};

	CU_ASSERT_EQUAL(preflight_run(pf, &opts, &r), AMTPROV_OK);
	assert_only_failure(&r, "chain-order", "leaf first", "\"Contoso Root\"");
	CU_ASSERT_PTR_NOT_NULL(strstr(pf_report_find(&r, "chain-order", NULL)->actual,
				      "\"Contoso Issuing\""));
	/* The chain written on import is in order. */
	{
		char *pem = NULL;
		size_t len = 0;
		struct preflight *again = NULL;
		struct pf_report r2 = {0};
		struct amtprov_error e;

		amtprov_error_clear(&e);
		CU_ASSERT_EQUAL(preflight_chain_pem(pf, &pem, &len, &e), AMTPROV_OK);
		{
			struct amtprov_secret *k = NULL;

			CU_ASSERT_EQUAL(preflight_key_pem(pf, &k, &e), AMTPROV_OK);
			CU_ASSERT_EQUAL(preflight_load_pem(pem, len, k ? k->data : NULL,
							   k ? k->len : 0, "again", &again, &e),
					AMTPROV_OK);
			util_secret_free(k);
		}
		if (again) {
			preflight_run(again, &opts, &r2);
			CU_ASSERT_EQUAL(r2.failed, 0u);
		}
		pf_report_free(&r2);
		preflight_free(again);
		free(pem);
	}
	pf_report_free(&r);
	preflight_free(pf);
	X509_free(leaf);
}

static void test_fail_key_match(void)
{
	X509 *leaf = leaf_with(SP, NULL, AMT_EKU, k_leaf, NULL, 0, 0);
	struct pf_report r;

	run_leaf(leaf, k_other, NULL, &r);
	assert_only_failure(&r, "key-match", "private key belongs", "does not match");
	pf_report_free(&r);
	/* No key at all fails the same check. */
	run_leaf(leaf, NULL, NULL, &r);
	assert_only_failure(&r, "key-match", "private key", "no private key");
	pf_report_free(&r);
	X509_free(leaf);
}

static void test_fail_validity_expired_and_not_yet(void)
{
	X509 *old = leaf_with(SP, NULL, AMT_EKU, k_leaf, NULL, NOW - 400 * DAY, NOW - 5 * DAY);
	X509 *future = leaf_with(SP, NULL, AMT_EKU, k_leaf, NULL, NOW + 2 * DAY, NOW + 300 * DAY);
	struct pf_report r;

	run_leaf(old, k_leaf, NULL, &r);
	assert_only_failure(&r, "validity", "2026-01-01T00:00:00Z", "expired at 2025-12-27");
	CU_ASSERT_PTR_NOT_NULL(strstr(pf_report_find(&r, "validity", NULL)->actual, "5 days ago"));
	CU_ASSERT_EQUAL(r.days_left, -5);
	pf_report_free(&r);
	run_leaf(future, k_leaf, NULL, &r);
	assert_only_failure(&r, "validity", "2026-01-01T00:00:00Z", "not valid before 2026-01-03");
	pf_report_free(&r);
	X509_free(old);
	X509_free(future);
}

/* R-PC-06: 7210 at 40 days or fewer, 7211 below 15; both still valid. */
static void test_expiry_warnings(void)
{
	static const struct {
		long long days;
		int severity;
		uint32_t status;
	} cases[] = {{41, PF_SEV_INFO, 0}, {40, PF_SEV_WARNING, 7210}, {15, PF_SEV_WARNING, 7210},
		     {14, PF_SEV_ERROR, 7211}, {0, PF_SEV_ERROR, 7211}};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		X509 *leaf = leaf_with(SP, NULL, AMT_EKU, k_leaf, NULL, 0,
				       NOW + cases[i].days * DAY + 3600);
		struct pf_report r;
		const struct pf_result *x;
		char want[32];

		run_leaf(leaf, k_leaf, NULL, &r);
		x = pf_report_find(&r, "validity", NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(x);
		CU_ASSERT_TRUE(x->ok);
		CU_ASSERT_EQUAL(r.failed, 0u);
		CU_ASSERT_EQUAL(x->severity, cases[i].severity);
		CU_ASSERT_EQUAL(x->status_id, cases[i].status);
		CU_ASSERT_EQUAL(r.days_left, cases[i].days);
		snprintf(want, sizeof(want), "%lld days left", cases[i].days);
		CU_ASSERT_PTR_NOT_NULL(strstr(x->actual, want));
		pf_report_free(&r);
		X509_free(leaf);
	}
}

static void test_fail_key_rsa_ecdsa_leaf(void)
{
	X509 *leaf = leaf_with(SP, NULL, AMT_EKU, k_ec, NULL, 0, 0);
	struct pf_report r;

	run_leaf(leaf, k_ec, NULL, &r);
	assert_only_failure(&r, "key-rsa", "RSA", "ECDSA 256 (prime256v1)");
	CU_ASSERT_PTR_NOT_NULL(strstr(pf_report_find(&r, "key-rsa", NULL)->hint, "ECDSA leaf"));
	pf_report_free(&r);
	X509_free(leaf);
}

static void test_fail_key_size(void)
{
	X509 *leaf = leaf_with(SP, NULL, AMT_EKU, k_small, NULL, 0, 0);
	struct pf_report r;

	run_leaf(leaf, k_small, NULL, &r);
	assert_only_failure(&r, "key-size", "2048", "RSA 1024");
	pf_report_free(&r);
	X509_free(leaf);
}

static void test_fail_no_sha1(void)
{
	X509 *leaf = leaf_with(SP, NULL, AMT_EKU, k_leaf, EVP_sha1(), 0, 0);
	struct pf_report r;

	run_leaf(leaf, k_leaf, NULL, &r);
	assert_only_failure(&r, "no-sha1", "SHA-1", "signed with SHA1");
	pf_report_free(&r);
	X509_free(leaf);
}

static void test_fail_no_sha1_in_root(void)
{
	struct tc_spec rs = {.cn = "Old Root", .ca = 1, .md = EVP_sha1(), .na = NOW + 3650 * DAY};
	X509 *root = tc_make(&rs, k_root, NULL, k_root);
	struct tc_spec is = {.cn = "Old Issuing", .ca = 1, .na = NOW + 1825 * DAY};
	X509 *inter = tc_make(&is, k_inter, root, k_root);
	struct tc_spec ls = {.cn = SP, .eku = AMT_EKU};
	X509 *leaf = tc_make(&ls, k_leaf, inter, k_inter);
	X509 *chain[] = {leaf, inter, root};
	struct preflight *pf = load(chain, 3, k_leaf);
	struct pf_report r = {0};

	preflight_run(pf, &opts, &r);
	assert_only_failure(&r, "no-sha1", "anywhere", "\"Old Root\" signed with SHA1");
	pf_report_free(&r);
	preflight_free(pf);
	X509_free(leaf);
	X509_free(inter);
	X509_free(root);
}

/* A CRL from the intermediate, listing @p serial (0: none), signed with @p key. */
static char *make_crl(long serial, EVP_PKEY *key, long long next_update, size_t *len)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out;
	long n;

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(c_inter));
	ASN1_TIME_set(t, (time_t)(NOW - DAY));
	X509_CRL_set1_lastUpdate(crl, t);
	ASN1_TIME_set(t, (time_t)next_update);
	X509_CRL_set1_nextUpdate(crl, t);
	if (serial) {
		X509_REVOKED *rv = X509_REVOKED_new();
		ASN1_INTEGER *sn = ASN1_INTEGER_new();
		ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();

		ASN1_INTEGER_set(sn, serial);
		X509_REVOKED_set_serialNumber(rv, sn);
		ASN1_TIME_set(t, (time_t)(NOW - 2 * DAY));
		X509_REVOKED_set_revocationDate(rv, t);
		ASN1_ENUMERATED_set(reason, 1); /* keyCompromise */
		X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, reason, 0, 0);
		X509_CRL_add0_revoked(crl, rv);
		ASN1_INTEGER_free(sn);
		ASN1_ENUMERATED_free(reason);
	}
	X509_CRL_sort(crl);
	X509_CRL_sign(crl, key, EVP_sha256());
	PEM_write_bio_X509_CRL(b, crl);
	n = BIO_get_mem_data(b, &p);
	out = malloc((size_t)n);
	memcpy(out, p, (size_t)n);
	*len = (size_t)n;
	BIO_free(b);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return out;
}

static void crl_case(long crl_serial, EVP_PKEY *signer, long long next_update,
		     struct pf_report *r)
{
	struct tc_spec ls = {.cn = SP, .eku = AMT_EKU, .serial = 4242};
	X509 *leaf = tc_make(&ls, k_leaf, c_inter, k_inter);
	X509 *chain[] = {leaf, c_inter, c_root};
	struct preflight *pf = load(chain, 3, k_leaf);
	struct amtprov_error e;
	size_t len;
	char *crl = make_crl(crl_serial, signer, next_update, &len);

	amtprov_error_clear(&e);
	memset(r, 0, sizeof(*r));
	CU_ASSERT_EQUAL(preflight_add_crl(pf, crl, len, "issuing.crl", &e), AMTPROV_OK);
	preflight_run(pf, &opts, r);
	free(crl);
	preflight_free(pf);
	X509_free(leaf);
}

/* R-PC-08: a revoked certificate fails with its revocation date and reason. */
static void test_fail_revocation(void)
{
	struct pf_report r;
	const struct pf_result *x;

	crl_case(4242, k_inter, NOW + 7 * DAY, &r);
	assert_only_failure(&r, "revocation", "CRL", "revoked at 2025-12-30T00:00:00Z");
	x = pf_report_find(&r, "revocation", NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(x->actual, "keyCompromise"));
	CU_ASSERT_PTR_NOT_NULL(strstr(x->actual, "issuing.crl"));
	pf_report_free(&r);

	/* Not listed: passes and says what was checked. */
	crl_case(0, k_inter, NOW + 7 * DAY, &r);
	x = pf_report_find(&r, "revocation", NULL);
	CU_ASSERT_EQUAL(r.failed, 0u);
	CU_ASSERT_PTR_NOT_NULL(strstr(x->actual, "not revoked"));
	CU_ASSERT_EQUAL(x->severity, PF_SEV_INFO);
	pf_report_free(&r);

	/* A forged CRL (wrong signer) is not trusted: a warning, never a revocation. */
	crl_case(4242, k_other, NOW + 7 * DAY, &r);
	x = pf_report_find(&r, "revocation", NULL);
	CU_ASSERT_EQUAL(r.failed, 0u);
	CU_ASSERT_EQUAL(x->severity, PF_SEV_WARNING);
	CU_ASSERT_PTR_NOT_NULL(strstr(x->actual, "does not verify"));
	pf_report_free(&r);

	/* A stale CRL still counts, with a warning. */
	crl_case(0, k_inter, NOW - 1, &r);
	x = pf_report_find(&r, "revocation", NULL);
	CU_ASSERT_EQUAL(x->severity, PF_SEV_WARNING);
	CU_ASSERT_PTR_NOT_NULL(strstr(x->actual, "nextUpdate"));
	pf_report_free(&r);
}

/* ---------------- per device ---------------- */

static struct preflight *good_pf(X509 **leaf)
{
	X509 *chain[3];

	*leaf = leaf_with(SP, NULL, AMT_EKU, k_leaf, NULL, 0, 0);
	chain[0] = *leaf;
	chain[1] = c_inter;
	chain[2] = c_root;
	return load(chain, 3, k_leaf);
}

static void test_device_namespace(void)
{
	X509 *leaf;
	struct preflight *pf = good_pf(&leaf);
	struct pf_report r = {0};
	struct pf_device ok1 = {.fqdn = "computer1.sales.contoso.com"};
	struct pf_device bad = {.fqdn = "computer1.northwindtraders.com"};
	struct pf_device dis = {.fqdn = "computer1.contoso.com", .ad_domain = "na.corp.contoso.com"};
	const struct pf_result *x;

	CU_ASSERT_EQUAL(preflight_device(pf, &opts, &ok1, &r), AMTPROV_OK);
	CU_ASSERT_EQUAL(r.failed, 0u);
	pf_report_free(&r);

	preflight_device(pf, &opts, &bad, &r);
	assert_only_failure(&r, "device-namespace", "contoso.com", "northwindtraders.com");
	x = pf_report_find(&r, "device-namespace", "computer1.northwindtraders.com");
	CU_ASSERT_PTR_NOT_NULL(x);
	pf_report_free(&r);

	preflight_device(pf, &opts, &dis, &r);
	assert_only_failure(&r, "device-disjoint-namespace", "contoso.com", "na.corp.contoso.com");
	pf_report_free(&r);
	preflight_free(pf);
	X509_free(leaf);
}

static void test_device_dns_suffix(void)
{
	X509 *leaf;
	struct preflight *pf = good_pf(&leaf);
	struct pf_report r = {0};
	struct pf_device good = {.fqdn = "pc1.contoso.com", .trusted_dns_suffix = "sales.contoso.com"};
	struct pf_device bad = {.fqdn = "pc1.contoso.com", .trusted_dns_suffix = "corp.local"};

	preflight_device(pf, &opts, &good, &r);
	CU_ASSERT_EQUAL(r.failed, 0u);
	pf_report_free(&r);
	preflight_device(pf, &opts, &bad, &r);
	assert_only_failure(&r, "device-dns-suffix", "contoso.com", "corp.local");
	pf_report_free(&r);
	preflight_free(pf);
	X509_free(leaf);
}

static void test_device_root_hash(void)
{
	X509 *leaf;
	struct preflight *pf = good_pf(&leaf);
	struct pf_report r = {0};
	struct pf_hash h[2] = {{.alg = PKI_HASH_SHA256}, {.alg = PKI_HASH_SHA1}};
	struct pf_device dev = {.fqdn = "pc1.contoso.com", .hashes = h, .n_hashes = 2,
				.hashes_known = 1};
	struct amtprov_error e;
	char root1[41];

	amtprov_error_clear(&e);
	pki_thumbprint(c_root, PKI_HASH_SHA1, root1, sizeof(root1), &e);
	/* Neither is the root's: fails, and expected names the root and its hash. */
	memset(h[0].hex, 'A', 64);
	memset(h[1].hex, 'b', 40);
	preflight_device(pf, &opts, &dev, &r);
	assert_only_failure(&r, "device-root-hash", "Contoso Root", "none is this root's");
	CU_ASSERT_PTR_NOT_NULL(strstr(pf_report_find(&r, "device-root-hash", NULL)->expected,
				      root1));
	pf_report_free(&r);
	/* The root's SHA-1 in lower case matches. */
	for (int i = 0; i < 40; i++)
		h[1].hex[i] = (char)((root1[i] >= 'A' && root1[i] <= 'F') ? root1[i] + 32 : root1[i]);
	preflight_device(pf, &opts, &dev, &r);
	CU_ASSERT_EQUAL(r.failed, 0u);
	CU_ASSERT_PTR_NOT_NULL(strstr(pf_report_find(&r, "device-root-hash", NULL)->actual,
				      "SHA-1 hash matches"));
	pf_report_free(&r);
	/* No hashes reported at all fails too. */
	dev.n_hashes = 0;
	preflight_device(pf, &opts, &dev, &r);
	CU_ASSERT_EQUAL(r.failed, 1u);
	pf_report_free(&r);
	preflight_free(pf);
	X509_free(leaf);
}

static void test_parse_hashes(void)
{
	struct pf_hash *h = NULL;
	size_t n = 0;
	struct amtprov_error e;
	char sha1[41], text[400];

	memset(sha1, 'a', 40);
	sha1[40] = '\0';
	snprintf(text, sizeof(text),
		 "# from the PKI Hello\n\nsha1 %s\n2 %.64s0000000000000000000000000000000000"
		 "000000000000000000000000000000  # comment\n%s\n",
		 sha1, "", sha1);
	amtprov_error_clear(&e);
	CU_ASSERT_EQUAL(preflight_parse_hashes(text, "h", &h, &n, &e), AMTPROV_OK);
	CU_ASSERT_EQUAL(n, 3u);
	if (n == 3) {
		CU_ASSERT_EQUAL(h[0].alg, PKI_HASH_SHA1);
		CU_ASSERT_EQUAL(h[1].alg, PKI_HASH_SHA256);
		CU_ASSERT_EQUAL(h[2].alg, PKI_HASH_SHA1);
		CU_ASSERT_EQUAL(h[0].hex[0], 'A');
	}
	free(h);
	amtprov_error_clear(&e);
	CU_ASSERT_EQUAL(preflight_parse_hashes("sha256 abcd\n", "h", &h, &n, &e), AMTPROV_E_PARSE);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "line 1"));
	amtprov_error_clear(&e);
	CU_ASSERT_EQUAL(preflight_parse_hashes("sha1 xyz\n", "h", &h, &n, &e), AMTPROV_E_PARSE);
}

/* Item 5: PKCS#12 with its password; a wrong password is AMTPROV_E_AUTH. */
static void test_pkcs12_load(void)
{
	X509 *leaf = leaf_with(SP, NULL, AMT_EKU, k_leaf, NULL, 0, 0);
	STACK_OF(X509) *ca = sk_X509_new_null();
	PKCS12 *p12;
	unsigned char *der = NULL;
	int len;
	struct preflight *pf = NULL;
	struct pf_report r = {0};
	struct amtprov_error e;

	/* Bags in "wrong" order: PKCS#12 order carries no meaning, so it is derived. */
	sk_X509_push(ca, c_root);
	sk_X509_push(ca, c_inter);
	p12 = PKCS12_create("pa55", "prov", k_leaf, leaf, ca, 0, 0, 0, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p12);
	len = i2d_PKCS12(p12, &der);
	amtprov_error_clear(&e);
	CU_ASSERT_EQUAL(preflight_load_pkcs12(der, (size_t)len, "wrong", "p.p12", &pf, &e),
			AMTPROV_E_AUTH);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "password"));
	CU_ASSERT_PTR_NULL(strstr(e.msg, "pa55"));
	amtprov_error_clear(&e);
	CU_ASSERT_EQUAL(preflight_load_pkcs12(der, (size_t)len, "pa55", "p.p12", &pf, &e),
			AMTPROV_OK);
	if (pf) {
		preflight_run(pf, &opts, &r);
		CU_ASSERT_EQUAL(r.failed, 0u);
	}
	pf_report_free(&r);
	preflight_free(pf);
	OPENSSL_free(der);
	PKCS12_free(p12);
	sk_X509_free(ca);
	X509_free(leaf);
}

static void test_garbage_is_a_parse_error(void)
{
	struct preflight *pf = NULL;
	struct amtprov_error e;

	amtprov_error_clear(&e);
	CU_ASSERT_EQUAL(preflight_load_pem("hello", 5, NULL, 0, "x.pem", &pf, &e), AMTPROV_E_PARSE);
	CU_ASSERT_STRING_EQUAL(e.where, "x.pem");
	amtprov_error_clear(&e);
	CU_ASSERT_EQUAL(preflight_load_pkcs12("\x30\x03\x02\x01\x03", 5, "", "x.p12", &pf, &e),
			AMTPROV_E_PARSE);
	CU_ASSERT_PTR_NULL(pf);
}

void register_preflight_tests(void);
void register_preflight_tests(void)
{
	CU_pSuite s = CU_add_suite("preflight", suite_init, suite_clean);

	CU_add_test(s, "a good certificate passes every check; root thumbprints reported",
		    test_good_certificate_passes_everything);
	CU_add_test(s, "R-PC-01: no serverAuth fails eku-server-auth", test_fail_eku_server_auth);
	CU_add_test(s, "R-PC-01: no OID and an OU in the wrong case fail amt-oid-or-ou",
		    test_fail_amt_oid_or_ou);
	CU_add_test(s, "R-PC-01: the exact OU instead of the OID passes",
		    test_exact_ou_instead_of_oid_passes);
	CU_add_test(s, "R-PC-02: a CN that is not an FQDN fails cn-fqdn", test_fail_cn_fqdn);
	CU_add_test(s, "R-PC-02: a CN other than the service point fails cn-service-point",
		    test_fail_cn_service_point);
	CU_add_test(s, "R-PC-03: a missing intermediate fails chain-complete",
		    test_fail_chain_complete_missing_intermediate);
	CU_add_test(s, "R-PC-03: a chain out of order fails chain-order; export reorders",
		    test_fail_chain_order);
	CU_add_test(s, "a key of another certificate, or none, fails key-match",
		    test_fail_key_match);
	CU_add_test(s, "R-PC-06: expired and not-yet-valid fail validity",
		    test_fail_validity_expired_and_not_yet);
	CU_add_test(s, "R-PC-06: 7210 at <= 40 days, 7211 below 15, still valid",
		    test_expiry_warnings);
	CU_add_test(s, "CSME 16: an ECDSA leaf fails key-rsa", test_fail_key_rsa_ecdsa_leaf);
	CU_add_test(s, "CSME 16: RSA 1024 fails key-size", test_fail_key_size);
	CU_add_test(s, "CSME 16: a SHA-1 signed leaf fails no-sha1", test_fail_no_sha1);
	CU_add_test(s, "CSME 16: a SHA-1 self-signed root fails no-sha1", test_fail_no_sha1_in_root);
	CU_add_test(s, "R-PC-08: revoked per CRL fails revocation with date and reason",
		    test_fail_revocation);
	CU_add_test(s, "R-PC-05: device namespace and disjoint namespace", test_device_namespace);
	CU_add_test(s, "AMT CN vs the device's trusted DNS suffix", test_device_dns_suffix);
	CU_add_test(s, "R-PC-04: the root hash among the device's hashes", test_device_root_hash);
	CU_add_test(s, "device hash lists parse", test_parse_hashes);
	CU_add_test(s, "PKCS#12: password, wrong password, derived order", test_pkcs12_load);
	CU_add_test(s, "garbage input is a parse error naming the source",
		    test_garbage_is_a_parse_error);
}
