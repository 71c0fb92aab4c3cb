/* SPDX-License-Identifier: Apache-2.0 */
/* core/pki: the DNS namespace rules (R-PC-05, AMT's CN / trusted-suffix match), FQDN
 * syntax, hash names, and the chain helpers on certificates built in memory. */
#include <string.h>

#include <CUnit/CUnit.h>

#include <openssl/x509.h>

#include "pki.h"

/* From test_preflight.c: a small certificate factory (see there). */
EVP_PKEY *tc_key(int bits);
X509 *tc_cert(const char *cn, const char *eku, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
	      int ca);

static int shared(const char *dev, const char *sp)
{
	return pki_namespace_shared(dev, sp, NULL, 0, NULL, 0);
}

/* R-PC-05: the five examples of the seed, verbatim. */
static void test_seed_namespace_examples(void)
{
	CU_ASSERT_TRUE(shared("computer1.contoso.com", "server1.contoso.com"));
	CU_ASSERT_TRUE(shared("computer1.sales.contoso.com", "server1.contoso.com"));
	CU_ASSERT_TRUE(shared("computer1.sales.contoso.com", "server1.marketing.contoso.com"));
	CU_ASSERT_FALSE(shared("computer1.contoso.com", "server1.northwindtraders.com"));
	CU_ASSERT_FALSE(shared("computer1.northwindtraders.com", "server1.contoso.com"));
}

/* R-PC-05: "computer1.contoso.com in AD domain na.corp.contoso.com" is disjoint; a device
 * whose DNS suffix is its AD domain is not. */
static void test_disjoint_namespace(void)
{
	CU_ASSERT_TRUE(pki_namespace_disjoint("computer1.contoso.com", "na.corp.contoso.com"));
	CU_ASSERT_FALSE(pki_namespace_disjoint("computer1.na.corp.contoso.com",
					       "na.corp.contoso.com"));
	CU_ASSERT_FALSE(pki_namespace_disjoint("Computer1.Contoso.COM.", "contoso.com"));
	CU_ASSERT_TRUE(pki_namespace_disjoint("computer1", "contoso.com"));
	/* The disjoint device still shares the DNS tree: only the AD check catches it. */
	CU_ASSERT_TRUE(shared("computer1.contoso.com", "server1.na.corp.contoso.com"));
}

static void test_namespace_edge_cases(void)
{
	char a[256], b[256];

	/* Case and one trailing dot do not matter. */
	CU_ASSERT_TRUE(shared("PC1.Sales.CONTOSO.com.", "server1.contoso.com"));
	/* Multi-label public suffixes: co.uk is a registry, not a namespace. */
	CU_ASSERT_TRUE(shared("pc1.sales.contoso.co.uk", "oob.contoso.co.uk"));
	CU_ASSERT_FALSE(shared("pc1.fabrikam.co.uk", "oob.contoso.co.uk"));
	CU_ASSERT_FALSE(shared("pc1.contoso.com.au", "oob.contoso.com"));
	CU_ASSERT_EQUAL(pki_namespace_root("a.b.contoso.co.uk", a, sizeof(a)), 0);
	CU_ASSERT_STRING_EQUAL(a, "contoso.co.uk");
	CU_ASSERT_EQUAL(pki_namespace_root("co.uk", a, sizeof(a)), -1);
	CU_ASSERT_EQUAL(pki_namespace_root("localhost", a, sizeof(a)), -1);
	/* A private TLD is treated like any single-label TLD. */
	CU_ASSERT_TRUE(shared("pc1.corp.local", "oob.it.corp.local"));
	/* Same TLD is not the same tree; nor is a suffix that is not on a label boundary. */
	CU_ASSERT_FALSE(shared("pc1.acontoso.com", "oob.contoso.com"));
	/* Not FQDNs: never shared. */
	CU_ASSERT_FALSE(shared("computer1", "server1.contoso.com"));
	CU_ASSERT_FALSE(shared("", "server1.contoso.com"));
	CU_ASSERT_FALSE(shared("bad host.contoso.com", "server1.contoso.com"));
	CU_ASSERT_FALSE(pki_namespace_shared("pc1.contoso.com", "oob.northwind.com", a, sizeof(a),
					     b, sizeof(b)));
	CU_ASSERT_STRING_EQUAL(a, "contoso.com");
	CU_ASSERT_STRING_EQUAL(b, "northwind.com");
}

/* AMT-PROTOCOL 2.2: the CN's domain against the PKI DNS suffix / DHCP option 15. */
static void test_amt_suffix_match(void)
{
	char d[256];

	CU_ASSERT_TRUE(pki_amt_suffix_match("oob.contoso.com", "contoso.com", d, sizeof(d)));
	CU_ASSERT_STRING_EQUAL(d, "contoso.com");
	CU_ASSERT_TRUE(pki_amt_suffix_match("oob.contoso.com", "sales.contoso.com", NULL, 0));
	CU_ASSERT_TRUE(pki_amt_suffix_match("OOB.it.Contoso.com", "na.corp.contoso.com.", NULL, 0));
	CU_ASSERT_TRUE(pki_amt_suffix_match("*.contoso.com", "contoso.com", NULL, 0));
	CU_ASSERT_TRUE(pki_amt_suffix_match("oob.contoso.co.uk", "lab.contoso.co.uk", d, sizeof(d)));
	CU_ASSERT_STRING_EQUAL(d, "contoso.co.uk");
	CU_ASSERT_FALSE(pki_amt_suffix_match("oob.contoso.co.uk", "co.uk", NULL, 0));
	CU_ASSERT_FALSE(pki_amt_suffix_match("oob.contoso.com", "contoso.local", NULL, 0));
	CU_ASSERT_FALSE(pki_amt_suffix_match("oob.contoso.com", "notcontoso.com", NULL, 0));
	CU_ASSERT_FALSE(pki_amt_suffix_match("oob.contoso.com", "com", NULL, 0));
	CU_ASSERT_FALSE(pki_amt_suffix_match("oob.contoso.com", "", NULL, 0));
	CU_ASSERT_FALSE(pki_amt_suffix_match("oob.contoso.com", NULL, NULL, 0));
	CU_ASSERT_FALSE(pki_amt_suffix_match("oob", "contoso.com", NULL, 0));
}

static void test_is_fqdn(void)
{
	CU_ASSERT_TRUE(pki_is_fqdn("oob.contoso.com"));
	CU_ASSERT_TRUE(pki_is_fqdn("oob.contoso.com."));
	CU_ASSERT_TRUE(pki_is_fqdn("a-1.b2.example"));
	CU_ASSERT_FALSE(pki_is_fqdn("oob"));
	CU_ASSERT_FALSE(pki_is_fqdn("*.contoso.com"));
	CU_ASSERT_FALSE(pki_is_fqdn("10.0.0.1"));
	CU_ASSERT_FALSE(pki_is_fqdn("-a.contoso.com"));
	CU_ASSERT_FALSE(pki_is_fqdn("a-.contoso.com"));
	CU_ASSERT_FALSE(pki_is_fqdn("a..contoso.com"));
	CU_ASSERT_FALSE(pki_is_fqdn(".contoso.com"));
	CU_ASSERT_FALSE(pki_is_fqdn(NULL));
}

static void test_hash_names(void)
{
	CU_ASSERT_EQUAL(pki_hash_parse("sha256"), PKI_HASH_SHA256);
	CU_ASSERT_EQUAL(pki_hash_parse("SHA-1"), PKI_HASH_SHA1);
	CU_ASSERT_EQUAL(pki_hash_parse("3"), PKI_HASH_SHA384);
	CU_ASSERT_EQUAL(pki_hash_parse("md5"), -1);
	CU_ASSERT_EQUAL(pki_hash_len(PKI_HASH_SHA384), 48u);
	CU_ASSERT_STRING_EQUAL(pki_hash_name(PKI_HASH_SHA256), "SHA-256");
}

/* Thumbprints are upper-case hex of the DER digest; the chain orderer finds the path in
 * any order and names a missing issuer. */
static void test_thumbprint_and_order(void)
{
	EVP_PKEY *rk = tc_key(2048), *ik = tc_key(2048), *lk = tc_key(2048);
	X509 *root = tc_cert("Root", NULL, rk, NULL, rk, 1);
	X509 *inter = tc_cert("Inter", NULL, ik, root, rk, 1);
	X509 *leaf = tc_cert("oob.contoso.com", "serverAuth", lk, inter, ik, 0);
	unsigned char d[32];
	unsigned int n = 0;
	char hex[PKI_HEX_SIZE], want[65];
	STACK_OF(X509) *in = sk_X509_new_null(), *out = NULL;
	struct pki_chain_info info;
	struct amtprov_error err;

	CU_ASSERT_PTR_NOT_NULL_FATAL(leaf);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pki_thumbprint(root, PKI_HASH_SHA256, hex, sizeof(hex), &err), AMTPROV_OK);
	X509_digest(root, EVP_sha256(), d, &n);
	for (unsigned int i = 0; i < n; i++)
		snprintf(want + 2 * i, 3, "%02X", d[i]);
	CU_ASSERT_STRING_EQUAL(hex, want);
	CU_ASSERT_EQUAL(pki_thumbprint(root, PKI_HASH_SHA384, hex, sizeof(hex), &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(strlen(hex), 96u);
	CU_ASSERT_EQUAL(pki_thumbprint(root, PKI_HASH_SHA384, hex, 50, &err), AMTPROV_E_INVALID);

	sk_X509_push(in, leaf);
	sk_X509_push(in, root);
	sk_X509_push(in, inter);
	CU_ASSERT_EQUAL(pki_order_chain(in, leaf, &out, &info, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(sk_X509_num(out), 3);
	CU_ASSERT_PTR_EQUAL(sk_X509_value(out, 1), inter);
	CU_ASSERT_TRUE(info.complete && info.has_root && !info.in_order);
	sk_X509_pop_free(out, X509_free);
	(void)sk_X509_delete(in, 2); /* drop the intermediate */
	CU_ASSERT_EQUAL(pki_order_chain(in, leaf, &out, &info, &err), AMTPROV_OK);
	CU_ASSERT_FALSE(info.complete);
	CU_ASSERT_TRUE(info.in_order);
	CU_ASSERT_PTR_NOT_NULL(strstr(info.problem, "CN=Inter"));
	sk_X509_pop_free(out, X509_free);
	CU_ASSERT_TRUE(pki_key_matches(leaf, lk));
	CU_ASSERT_FALSE(pki_key_matches(leaf, ik));
	CU_ASSERT_TRUE(pki_is_self_signed(root));
	CU_ASSERT_FALSE(pki_is_self_signed(inter));
	sk_X509_free(in);
	X509_free(root);
	X509_free(inter);
	X509_free(leaf);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(ik);
	EVP_PKEY_free(lk);
}

void register_pki_tests(void);
void register_pki_tests(void)
{
	CU_pSuite s = CU_add_suite("pki", NULL, NULL);

	CU_add_test(s, "R-PC-05: the seed's five namespace examples", test_seed_namespace_examples);
	CU_add_test(s, "R-PC-05: a disjoint namespace is detected", test_disjoint_namespace);
	CU_add_test(s, "namespace roots: case, trailing dot, co.uk, private TLDs, non-FQDNs",
		    test_namespace_edge_cases);
	CU_add_test(s, "AMT CN vs trusted DNS suffix (AMT-PROTOCOL 2.2)", test_amt_suffix_match);
	CU_add_test(s, "FQDN syntax", test_is_fqdn);
	CU_add_test(s, "hash algorithm names", test_hash_names);
	CU_add_test(s, "thumbprints are upper-case DER digests; chains are ordered",
		    test_thumbprint_and_order);
}
