/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CA contract (core/pki/ca_contract.c): one test per rule, with certificates built here by
 * a small OpenSSL CA, each breaking exactly one rule; and a good certificate per purpose.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_contract.h"
#include "test_util.h"

#define FQDN "pc1.contoso.com"

static EVP_PKEY *ca_key, *leaf_key, *other_key;
static X509 *ca_cert;

static int add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&ctx, issuer, c, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = e && X509_add_ext(c, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

static X509 *new_cert(EVP_PKEY *pub, const char *cn, X509 *issuer)
{
	X509 *c = X509_new();
	X509_NAME *n = X509_get_subject_name(c);

	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), issuer ? 2 : 1);
	X509_gmtime_adj(X509_getm_notBefore(c), -300);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n);
	X509_set_pubkey(c, pub);
	return c;
}

static int suite_init(void)
{
	ca_key = EVP_EC_gen("P-256");
	leaf_key = EVP_EC_gen("P-256");
	other_key = EVP_EC_gen("P-256");
	ca_cert = new_cert(ca_key, "Contract Test CA", NULL);
	if (!ca_key || !leaf_key || !other_key || !ca_cert ||
	    !add_ext(ca_cert, ca_cert, NID_basic_constraints, "critical,CA:TRUE") ||
	    !add_ext(ca_cert, ca_cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    X509_sign(ca_cert, ca_key, EVP_sha256()) <= 0)
		return 1;
	return 0;
}

static int suite_clean(void)
{
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(other_key);
	X509_free(ca_cert);
	return 0;
}

/* Which rule the built certificate breaks ("" for none). */
static struct amtprov_ca_result issue(uint32_t purpose, const char *breaks)
{
	struct amtprov_ca_result res = {.struct_size = sizeof(res), .outcome = AMTPROV_CA_ISSUED};
	int web = purpose == AMTPROV_PURPOSE_WEB_SERVER;
	const char *eku = web != !strcmp(breaks, "eku") ? "serverAuth" : "clientAuth";
	X509 *c = new_cert(!strcmp(breaks, "key") ? other_key : leaf_key,
			   !strcmp(breaks, "subject") ? "other.contoso.com" : FQDN, ca_cert);
	BIO *b = BIO_new(BIO_s_mem());
	unsigned char *der = NULL;
	char *data;
	long n;
	int len;

	CU_ASSERT_FATAL(c && b);
	CU_ASSERT(add_ext(c, ca_cert, NID_basic_constraints, "critical,CA:FALSE"));
	CU_ASSERT(add_ext(c, ca_cert, NID_ext_key_usage, eku));
	CU_ASSERT(add_ext(c, ca_cert, NID_subject_alt_name,
			  !strcmp(breaks, "san") ? "DNS:other.contoso.com" : "DNS:" FQDN));
	if (strcmp(breaks, "crl") != 0)
		CU_ASSERT(add_ext(c, ca_cert, NID_crl_distribution_points,
				  "URI:http://pki.contoso.com/ca.crl"));
	CU_ASSERT(X509_sign(c, ca_key, EVP_sha256()) > 0);
	len = i2d_X509(c, &der);
	CU_ASSERT_FATAL(len > 0);
	res.cert_der = malloc((size_t)len);
	CU_ASSERT_FATAL(res.cert_der != NULL);
	memcpy(res.cert_der, der, (size_t)len);
	res.cert_len = (size_t)len;
	if (!strcmp(breaks, "der"))
		res.cert_len -= 10; /* truncated */
	OPENSSL_free(der);
	/* "chain": an unrelated self-signed certificate instead of the issuer. */
	if (!strcmp(breaks, "chain")) {
		X509 *stranger = new_cert(other_key, "Stranger CA", NULL);

		X509_sign(stranger, other_key, EVP_sha256());
		PEM_write_bio_X509(b, stranger);
		X509_free(stranger);
	} else {
		PEM_write_bio_X509(b, ca_cert);
	}
	n = BIO_get_mem_data(b, &data);
	res.chain_pem = strndup(data, (size_t)n);
	BIO_free(b);
	X509_free(c);
	return res;
}

static void release(struct amtprov_ca_result *res)
{
	free(res->cert_der);
	free(res->chain_pem);
}

/* Checks @p breaks against @p purpose with the strictest site: expects rule @p want
 * (NULL: pass) and a message naming the instance, the purpose and the rule. */
static void expect(uint32_t purpose, const char *breaks, const char *want)
{
	struct amtprov_ca_result res = issue(purpose, breaks);
	struct ca_contract k = {.purpose = purpose, .ca_instance = "lab-ca", .fqdn = FQDN,
				.request_key = leaf_key};
	struct amtprov_error err;
	const char *rule = "unset";
	char needle[64];
	int rc;

	amtprov_error_clear(&err);
	ca_contract_from_site(NULL, NULL, &k);
	rc = ca_contract_check(&k, &res, &rule, &err);
	if (!want) {
		CU_ASSERT_EQUAL(rc, AMTPROV_OK);
		CU_ASSERT_PTR_NULL(rule);
	} else {
		CU_ASSERT_EQUAL(rc, AMTPROV_E_VERIFY);
		CU_ASSERT_PTR_NOT_NULL_FATAL(rule);
		CU_ASSERT_STRING_EQUAL(rule, want);
		CU_ASSERT(tu_contains(err.msg, "CA 'lab-ca'"));
		CU_ASSERT(tu_contains(err.msg, ca_contract_purpose_name(purpose)));
		snprintf(needle, sizeof(needle), "rule '%s'", want);
		CU_ASSERT(tu_contains(err.msg, needle));
		snprintf(needle, sizeof(needle), "ca-contract/%s", want);
		CU_ASSERT_STRING_EQUAL(err.where, needle);
	}
	release(&res);
}

static void test_good_web_server(void) { expect(AMTPROV_PURPOSE_WEB_SERVER, "", NULL); }
static void test_good_8021x(void) { expect(AMTPROV_PURPOSE_CLIENT_8021X, "", NULL); }
static void test_rule_der(void) { expect(AMTPROV_PURPOSE_WEB_SERVER, "der", "der"); }
static void test_rule_key(void)
{
	expect(AMTPROV_PURPOSE_WEB_SERVER, "key", "key");
	expect(AMTPROV_PURPOSE_CLIENT_8021X, "key", "key");
}
static void test_rule_subject(void)
{
	expect(AMTPROV_PURPOSE_WEB_SERVER, "subject", "subject");
	expect(AMTPROV_PURPOSE_CLIENT_8021X, "subject", "subject");
}
static void test_rule_san(void) { expect(AMTPROV_PURPOSE_WEB_SERVER, "san", "san"); }
static void test_rule_eku(void)
{
	expect(AMTPROV_PURPOSE_WEB_SERVER, "eku", "eku");
	/* serverAuth in an 802.1X client certificate (R-8021X-02). */
	expect(AMTPROV_PURPOSE_CLIENT_8021X, "eku", "eku");
}
static void test_rule_chain(void)
{
	expect(AMTPROV_PURPOSE_WEB_SERVER, "chain", "chain");
	/* 802.1X: the chain is stored, not used to verify the device: any parsable chain. */
	expect(AMTPROV_PURPOSE_CLIENT_8021X, "chain", NULL);
}
/* The parsed chain is kept for the next answer (issue 13): answers whose chains differ are
 * each judged with their own, in any order. */
static void test_chain_cache_follows_the_text(void)
{
	for (int i = 0; i < 2; i++) {
		expect(AMTPROV_PURPOSE_WEB_SERVER, "", NULL);
		expect(AMTPROV_PURPOSE_WEB_SERVER, "", NULL);
		expect(AMTPROV_PURPOSE_WEB_SERVER, "chain", "chain");
	}
}
static void test_rule_crl(void)
{
	expect(AMTPROV_PURPOSE_WEB_SERVER, "crl", "crl");
	expect(AMTPROV_PURPOSE_CLIENT_8021X, "crl", NULL);
}

/* No chain at all: required for a web server (MANAGED mode), optional for 802.1X; and a
 * site whose transport does not check CRLs needs no distribution point. */
static void test_site_settings(void)
{
	struct amtprov_ca_result res = issue(AMTPROV_PURPOSE_WEB_SERVER, "crl");
	struct ca_contract k = {.purpose = AMTPROV_PURPOSE_WEB_SERVER, .ca_instance = "lab-ca",
				.fqdn = FQDN, .request_key = leaf_key};
	struct amtprov_error err;
	const char *rule = NULL;

	amtprov_error_clear(&err);
	ca_contract_from_site(NULL, NULL, &k);
	CU_ASSERT(k.need_chain && k.need_crl);
	k.need_crl = 0;
	CU_ASSERT_EQUAL(ca_contract_check(&k, &res, &rule, &err), AMTPROV_OK);
	free(res.chain_pem);
	res.chain_pem = NULL;
	CU_ASSERT_EQUAL(ca_contract_check(&k, &res, &rule, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_STRING_EQUAL(rule, "chain");
	CU_ASSERT(tu_contains(err.msg, "MANAGED mode"));
	k.purpose = AMTPROV_PURPOSE_CLIENT_8021X;
	ca_contract_from_site(NULL, NULL, &k);
	CU_ASSERT(!k.need_chain && !k.need_crl);
	release(&res);
}

/* An ISSUED answer without a certificate breaks "der"; the rules table lists every rule. */
static void test_no_certificate_and_table(void)
{
	struct amtprov_ca_result res = {.struct_size = sizeof(res), .outcome = AMTPROV_CA_ISSUED};
	struct ca_contract k = {.purpose = AMTPROV_PURPOSE_CLIENT_8021X, .ca_instance = "x",
				.fqdn = FQDN};
	struct amtprov_error err;
	const char *rule = NULL;
	const struct ca_contract_rule *r;
	size_t n = 0;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(ca_contract_check(&k, &res, &rule, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_STRING_EQUAL(rule, "der");
	r = ca_contract_rules(&n);
	CU_ASSERT_EQUAL(n, 8);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT(r[i].name && r[i].summary && r[i].purposes);
}

/* Rule strength (issue 17 item 11): what AMT 22 firmware needs, RSA 3072 and SHA-384. */
static void test_rule_strength(void)
{
	EVP_PKEY *rsa = EVP_RSA_gen(2048);
	struct ca_contract k = {.purpose = AMTPROV_PURPOSE_WEB_SERVER, .ca_instance = "lab-ca",
				.fqdn = FQDN, .request_key = rsa};
	struct amtprov_ca_result res = {.struct_size = sizeof(res), .outcome = AMTPROV_CA_ISSUED};
	struct amtprov_error err;
	const char *rule = NULL;
	X509 *c = new_cert(rsa, FQDN, ca_cert);
	unsigned char *der = NULL;
	int len;

	CU_ASSERT_FATAL(rsa && c);
	CU_ASSERT(add_ext(c, ca_cert, NID_ext_key_usage, "serverAuth"));
	CU_ASSERT(X509_sign(c, ca_key, EVP_sha256()) > 0);
	len = i2d_X509(c, &der);
	CU_ASSERT_FATAL(len > 0);
	res.cert_der = der;
	res.cert_len = (size_t)len;

	/* Older firmware: nothing asked, the certificate passes the rule. */
	amtprov_error_clear(&err);
	ca_contract_check(&k, &res, &rule, &err);
	CU_ASSERT(!rule || strcmp(rule, "strength") != 0);

	k.min_key_bits = 3072;
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(ca_contract_check(&k, &res, &rule, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_STRING_EQUAL(rule, "strength");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "2048 bits"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "at least 3072"));

	k.min_key_bits = 2048;
	k.min_digest_bits = 384;
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(ca_contract_check(&k, &res, &rule, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_STRING_EQUAL(rule, "strength");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "signed the certificate with SHA-256"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "SHA-384"));

	/* Re-signed with SHA-384: the rule is kept. */
	OPENSSL_free(der);
	der = NULL;
	CU_ASSERT(X509_sign(c, ca_key, EVP_sha384()) > 0);
	len = i2d_X509(c, &der);
	CU_ASSERT_FATAL(len > 0);
	res.cert_der = der;
	res.cert_len = (size_t)len;
	amtprov_error_clear(&err);
	ca_contract_check(&k, &res, &rule, &err);
	CU_ASSERT(!rule || strcmp(rule, "strength") != 0);

	OPENSSL_free(der);
	X509_free(c);
	EVP_PKEY_free(rsa);
}

void register_ca_contract_tests(void);
void register_ca_contract_tests(void)
{
	CU_pSuite s = CU_add_suite("ca_contract", suite_init, suite_clean);

	CU_add_test(s, "a good web server certificate keeps the contract", test_good_web_server);
	CU_add_test(s, "a good 802.1X client certificate keeps the contract", test_good_8021x);
	CU_add_test(s, "rule der: a damaged certificate is refused", test_rule_der);
	CU_add_test(s, "rule key: another key than the request's is refused", test_rule_key);
	CU_add_test(s, "rule subject: CN other than the FQDN is refused", test_rule_subject);
	CU_add_test(s, "rule san: DNS SANs without the FQDN are refused", test_rule_san);
	CU_add_test(s, "rule eku: wrong EKU per purpose (R-WS-01, R-8021X-02)", test_rule_eku);
	CU_add_test(s, "rule chain: web server chain must verify the leaf", test_rule_chain);
	CU_add_test(s, "the chain kept from the last answer is the one of this answer",
		    test_chain_cache_follows_the_text);
	CU_add_test(s, "rule crl: web server needs a CDP when CRLs are checked (R-REV-01)",
		    test_rule_crl);
	CU_add_test(s, "rule strength: AMT 22 needs RSA 3072 and SHA-384 (issue 17 item 11)",
		    test_rule_strength);
	CU_add_test(s, "site settings decide chain and CRL needs", test_site_settings);
	CU_add_test(s, "ISSUED without a certificate; the rules table", test_no_certificate_and_table);
}
