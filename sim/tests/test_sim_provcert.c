/* SPDX-License-Identifier: Apache-2.0 */
/* AMT's provisioning-certificate checks: OID/OU, serverAuth, root hash, CN rule, CSME 16. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "device.h"
#include "http.h"
#include "simutil.h"
#include "tls.h"
#include "wsman.h"

void register_sim_provcert_tests(void);

static EVP_PKEY *k2048, *k1024;

static int suite_init(void)
{
	k2048 = EVP_RSA_gen(2048);
	k1024 = EVP_RSA_gen(1024);
	return k2048 && k1024 ? 0 : 1;
}

static int suite_clean(void)
{
	EVP_PKEY_free(k2048);
	EVP_PKEY_free(k1024);
	return 0;
}

static void ext(X509 *x, X509 *issuer, int nid, const char *v)
{
	X509V3_CTX c;
	X509_EXTENSION *e;

	X509V3_set_ctx_nodb(&c);
	X509V3_set_ctx(&c, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &c, nid, v);
	if (e) {
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
}

/* issuer NULL: self-signed CA. */
static X509 *mk(const char *cn, const char *ou, const char *eku, X509 *issuer, EVP_PKEY *ikey,
		EVP_PKEY *key, const EVP_MD *md)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	if (ou)
		X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)ou, -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_set_pubkey(x, key);
	if (!issuer)
		ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
	if (eku)
		ext(x, issuer ? issuer : x, NID_ext_key_usage, eku);
	X509_sign(x, issuer ? ikey : key, md);
	return x;
}

static void trust(struct device *d, X509 *root)
{
	unsigned char *der = NULL, md[32];
	unsigned int n = 0;
	int len = i2d_X509(root, &der);

	EVP_Digest(der, (size_t)len, md, &n, EVP_sha256(), NULL);
	OPENSSL_free(der);
	device_add_hash(d, "test root", DEV_HASH_SHA256, md, false, true);
}

static bool check(struct device *d, X509 *leaf, X509 *root, char *why, size_t n)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	bool ok;

	sk_X509_push(sk, leaf);
	if (root)
		sk_X509_push(sk, root);
	ok = tls_check_provisioning_chain(d, leaf, sk, why, n);
	sk_X509_free(sk);
	return ok;
}

static void test_cn_rule(void)
{
	CU_ASSERT_TRUE(tls_cn_matches_suffix("oob.contoso.com", "contoso.com"));
	CU_ASSERT_TRUE(tls_cn_matches_suffix("OOB.Contoso.COM", "contoso.com."));
	CU_ASSERT_TRUE(tls_cn_matches_suffix("*.contoso.com", "contoso.com"));
	CU_ASSERT_TRUE(tls_cn_matches_suffix("oob.contoso.com", "sales.contoso.com")); /* 2-label */
	CU_ASSERT_TRUE(tls_cn_matches_suffix("prov.contoso.test", "contoso.test"));
	CU_ASSERT_TRUE(tls_cn_matches_suffix("contoso.test", "a.contoso.test"));
	CU_ASSERT_FALSE(tls_cn_matches_suffix("oob.fabrikam.com", "contoso.com"));
	CU_ASSERT_FALSE(tls_cn_matches_suffix("evilcontoso.com", "contoso.com"));
	CU_ASSERT_FALSE(tls_cn_matches_suffix("oob.a.test", "b.test"));
	CU_ASSERT_FALSE(tls_cn_matches_suffix("oob.contoso.co.uk", "fabrikam.co.uk"));
	CU_ASSERT_FALSE(tls_cn_matches_suffix("x.com", ""));
}

static void test_chain_checks(void)
{
	struct device d;
	char why[512];
	X509 *root = mk("Test Root", NULL, NULL, NULL, NULL, k2048, EVP_sha256());
	X509 *other = mk("Other Root", NULL, NULL, NULL, NULL, k2048, EVP_sha256());
	X509 *good = mk("oob.contoso.com", NULL, "serverAuth," AMT_PROV_OID, root, k2048, k2048,
			EVP_sha256());
	X509 *good_ou = mk("oob.contoso.com", AMT_PROV_OU, "serverAuth", root, k2048, k2048,
			   EVP_sha256());
	X509 *bad_ou = mk("oob.contoso.com", "intel(r) client setup certificate", "serverAuth",
			  root, k2048, k2048, EVP_sha256());
	X509 *no_sa = mk("oob.contoso.com", NULL, "clientAuth," AMT_PROV_OID, root, k2048, k2048,
			 EVP_sha256());
	X509 *bad_cn = mk("oob.fabrikam.com", NULL, "serverAuth," AMT_PROV_OID, root, k2048,
			  k2048, EVP_sha256());
	X509 *by_other = mk("oob.contoso.com", NULL, "serverAuth," AMT_PROV_OID, other, k2048,
			    k2048, EVP_sha256());
	X509 *sha1 = mk("oob.contoso.com", NULL, "serverAuth," AMT_PROV_OID, root, k2048, k2048,
			EVP_sha1());
	X509 *small = mk("oob.contoso.com", NULL, "serverAuth," AMT_PROV_OID, root, k2048, k1024,
			 EVP_sha256());

	device_init(&d, "t", "15.0.20");
	d.prov_state = DEV_IN;
	snprintf(d.dhcp_domain, sizeof(d.dhcp_domain), "contoso.com");
	/* Root not yet trusted. */
	CU_ASSERT_FALSE(check(&d, good, root, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "hash not in"));
	trust(&d, root);
	CU_ASSERT_TRUE(check(&d, good, root, why, sizeof(why)));
	CU_ASSERT_TRUE(check(&d, good_ou, root, why, sizeof(why)));
	CU_ASSERT_FALSE(check(&d, bad_ou, root, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "neither"));
	CU_ASSERT_FALSE(check(&d, no_sa, root, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "serverAuth"));
	CU_ASSERT_FALSE(check(&d, bad_cn, root, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "DHCP option 15"));
	CU_ASSERT_FALSE(check(&d, good, NULL, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "self-signed root"));
	CU_ASSERT_FALSE(check(&d, by_other, other, why, sizeof(why)));
	/* The PKI DNS suffix takes precedence over option 15. */
	snprintf(d.pki_dns_suffix, sizeof(d.pki_dns_suffix), "fabrikam.com");
	CU_ASSERT_TRUE(check(&d, bad_cn, root, why, sizeof(why)));
	CU_ASSERT_FALSE(check(&d, good, root, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "PKI DNS suffix"));
	d.pki_dns_suffix[0] = '\0';
	/* SHA-1 and RSA-1024: fine before CSME 16, refused from 16 on. */
	CU_ASSERT_TRUE(check(&d, sha1, root, why, sizeof(why)));
	CU_ASSERT_TRUE(check(&d, small, root, why, sizeof(why)));
	device_set_version(&d, "16.1.25");
	CU_ASSERT_FALSE(check(&d, sha1, root, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "SHA-1"));
	CU_ASSERT_FALSE(check(&d, small, root, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "2048"));
	CU_ASSERT_FALSE(check(&d, NULL, NULL, why, sizeof(why)));
	X509_free(root);
	X509_free(other);
	X509_free(good);
	X509_free(good_ou);
	X509_free(bad_ou);
	X509_free(no_sa);
	X509_free(bad_cn);
	X509_free(by_other);
	X509_free(sha1);
	X509_free(small);
	device_clear(&d);
}

#define HBS IPS_URI "IPS_HostBasedSetupService"

/* Invokes an IPS_HostBasedSetupService method; returns its ReturnValue (-1: none). */
static long hbs(struct device *d, const char *method, const char *args)
{
	struct sbuf b = {0};
	struct http_request q;
	struct http_response r;
	const char *p;
	long rv = -1;

	sbuf_printf(&b, "<?xml version=\"1.0\"?><Envelope xmlns:a=\"" NS_WSA "\" "
			"xmlns:w=\"" NS_WSMAN "\" xmlns=\"" NS_SOAP12 "\"><Header>"
			"<a:Action>" HBS "/%s</a:Action><w:ResourceURI>" HBS "</w:ResourceURI>"
			"<a:MessageID>1</a:MessageID></Header><Body><h:%s_INPUT xmlns:h=\"" HBS "\">"
			"%s</h:%s_INPUT></Body></Envelope>", method, method, args, method);
	memset(&q, 0, sizeof(q));
	memset(&r, 0, sizeof(r));
	q.body = b.data;
	q.body_len = b.len;
	wsman_handle(d, &q, &r);
	sbuf_free(&b);
	if (r.body.data && (p = strstr(r.body.data, ":ReturnValue>")))
		rv = strtol(p + strlen(":ReturnValue>"), NULL, 10);
	sbuf_free(&r.body);
	return rv;
}

static long add_cert(struct device *d, X509 *x, bool leaf, bool root)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	char *b64 = sim_b64_encode(der, (size_t)n);
	struct sbuf a = {0};
	long rv;

	sbuf_printf(&a, "<h:NextCertificate>%s</h:NextCertificate><h:IsLeafCertificate>%s"
			"</h:IsLeafCertificate><h:IsRootCertificate>%s</h:IsRootCertificate>",
		    b64, leaf ? "true" : "false", root ? "true" : "false");
	rv = hbs(d, "AddNextCertInChain", a.data);
	sbuf_free(&a);
	free(b64);
	OPENSSL_free(der);
	return rv;
}

static long admin_setup(struct device *d, EVP_PKEY *signer)
{
	unsigned char mc[20] = {1, 2, 3}, buf[40], sig[512];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char ha1[33], *mc64, *sig64;
	struct sbuf a = {0};
	long rv;

	memcpy(buf, d->hbs_nonce, 20);
	memcpy(buf + 20, mc, 20);
	EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, signer);
	EVP_DigestSign(c, sig, &siglen, buf, sizeof(buf));
	EVP_MD_CTX_free(c);
	mc64 = sim_b64_encode(mc, sizeof(mc));
	sig64 = sim_b64_encode(sig, siglen);
	device_ha1("admin", d->realm, "N3w!Passw0rd", ha1);
	sbuf_printf(&a, "<h:NetAdminPassEncryptionType>2</h:NetAdminPassEncryptionType>"
			"<h:NetworkAdminPassword>%s</h:NetworkAdminPassword><h:McNonce>%s</h:McNonce>"
			"<h:SigningAlgorithm>2</h:SigningAlgorithm><h:DigitalSignature>%s"
			"</h:DigitalSignature>", ha1, mc64, sig64);
	rv = hbs(d, "AdminSetup", a.data);
	sbuf_free(&a);
	free(mc64);
	free(sig64);
	return rv;
}

/* Host-based AdminSetup trusts a chain only as the TLS path would (R-PC-01..06). */
static void test_host_based_chain(void)
{
	struct device d;
	X509 *root = mk("HBS Root", NULL, NULL, NULL, NULL, k2048, EVP_sha256());
	X509 *leaf = mk("oob.contoso.com", NULL, "serverAuth," AMT_PROV_OID, root, k2048, k2048,
			EVP_sha256());
	X509 *no_oid = mk("oob.contoso.com", NULL, "serverAuth", root, k2048, k2048, EVP_sha256());
	X509 *bad_cn = mk("oob.fabrikam.com", NULL, "serverAuth," AMT_PROV_OID, root, k2048,
			  k2048, EVP_sha256());

	device_init(&d, "h", "12.0.45");
	snprintf(d.dhcp_domain, sizeof(d.dhcp_domain), "contoso.com");
	/* The root's hash is not in the table: verification fails (4), nothing to set up with. */
	CU_ASSERT_EQUAL(add_cert(&d, leaf, true, false), 0);
	CU_ASSERT_EQUAL(add_cert(&d, root, false, true), 4);
	CU_ASSERT_EQUAL(admin_setup(&d, k2048), 2);
	trust(&d, root);
	/* A leaf without the AMT OID/OU and a CN outside the DNS suffix: refused too. */
	CU_ASSERT_EQUAL(add_cert(&d, no_oid, true, false), 0);
	CU_ASSERT_EQUAL(add_cert(&d, root, false, true), 4);
	CU_ASSERT_EQUAL(add_cert(&d, bad_cn, true, false), 0);
	CU_ASSERT_EQUAL(add_cert(&d, root, false, true), 4);
	CU_ASSERT_EQUAL(admin_setup(&d, k2048), 2);
	CU_ASSERT_EQUAL(d.prov_state, DEV_PRE);
	/* The good chain: accepted, then AdminSetup signed with the leaf's key succeeds. */
	CU_ASSERT_EQUAL(add_cert(&d, leaf, true, false), 0);
	CU_ASSERT_EQUAL(add_cert(&d, root, false, true), 0);
	CU_ASSERT_EQUAL(admin_setup(&d, k1024), 5); /* signed with another key */
	CU_ASSERT_EQUAL(admin_setup(&d, k2048), 0);
	CU_ASSERT_EQUAL(d.prov_state, DEV_POST);
	CU_ASSERT_EQUAL(d.control_mode, DEV_CM_ACM);
	X509_free(root);
	X509_free(leaf);
	X509_free(no_oid);
	X509_free(bad_cn);
	device_clear(&d);
}

void register_sim_provcert_tests(void)
{
	CU_pSuite s = CU_add_suite("sim.provcert", suite_init, suite_clean);

	CU_add_test(s, "CN vs trusted DNS suffix", test_cn_rule);
	CU_add_test(s, "chain checks", test_chain_checks);
	CU_add_test(s, "host-based AdminSetup: chain checked like the TLS path", test_host_based_chain);
}
