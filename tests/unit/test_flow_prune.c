/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a prune deletes from AMT's store (core/flow/flow_prune.c, flow_prune_choose): the
 * superseded web server (R-REV-02c) or 802.1X client (R-REV-04, R-8021X-06) certificates no
 * context uses and the key pairs only they carry; a key pair whose certificate left AMT
 * before it did (a prune or the 802.1X step interrupted between the two deletions: amtprovd
 * killed, a deletion refused, R-PROV-13) is known by the record and goes too; nothing that a
 * certificate left in AMT, a current certificate, or nothing on record carries, and nothing
 * on a guess.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <jansson.h>

#include "flow_keys.h"
#include "flow_prune.h"
#include "test_util.h"

void register_flow_prune_tests(void);

/* Key pairs a (superseded certificate A), b (the current certificate B), c (nothing of the
 * site's on record: another application's), d (another purpose's certificate D in AMT), e
 * (certificate E, the 802.1X cases' second profile's). */
enum { KA, KB, KC, KD, KE, NKEYS };
/* Certificates: one per key (index = the key's), and A2, a second one for key a (a renewal
 * that kept its key). */
enum { CA2 = NKEYS, NCERTS };

struct fx {
	EVP_PKEY *key[NKEYS];
	char *der_b64[NCERTS]; /* self-signed certificates */
	char sha[NCERTS][65];
	EVP_PKEY *current[2];
	json_t *certs, *keys, *superseded, *in_use, *del_certs, *del_keys;
	struct flow_prune_view v;
};

static EVP_PKEY *keys_made[NKEYS];

static int suite_init(void)
{
	for (int i = 0; i < NKEYS; i++)
		if (!(keys_made[i] = EVP_RSA_gen(1024)))
			return -1;
	return 0;
}

static int suite_clean(void)
{
	for (int i = 0; i < NKEYS; i++)
		EVP_PKEY_free(keys_made[i]);
	return 0;
}

/* Certificate @p i (serial i + 1) for key @p k. */
static void make_cert(struct fx *x, int i, int k)
{
	X509 *c = X509_new();
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int len;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), i + 1);
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
				   (const unsigned char *)"pc.contoso.com", -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(c));
	X509_set_pubkey(c, x->key[k]);
	CU_ASSERT_FATAL(X509_sign(c, x->key[k], EVP_sha256()) > 0);
	len = i2d_X509(c, &der);
	CU_ASSERT_FATAL(len > 0);
	x->der_b64[i] = flow_b64(der, (size_t)len);
	CU_ASSERT_FATAL(X509_digest(c, EVP_sha256(), md, &mdlen) == 1);
	for (unsigned int j = 0; j < mdlen; j++)
		snprintf(x->sha[i] + 2 * j, 3, "%02X", md[j]);
	OPENSSL_free(der);
	X509_free(c);
}

/* Certificate @p i listed in AMT under @p handle. */
static void list_cert(struct fx *x, const char *handle, int i)
{
	json_array_append_new(x->certs, json_pack("{s:s,s:s}", "cert_handle", handle,
						  "cert_der_b64", x->der_b64[i]));
}

/* AMT's lists: every key pair; certificates B (the TLS context's) and D (a link's). The
 * record: A superseded, B current. */
static void setup(struct fx *x)
{
	memset(x, 0, sizeof(*x));
	x->certs = json_array();
	x->keys = json_array();
	x->superseded = json_array();
	x->in_use = json_pack("[ss]", "cert-B", "cert-D");
	x->del_certs = json_array();
	x->del_keys = json_array();
	for (int i = 0; i < NKEYS; i++) {
		unsigned char *pk = NULL;
		int n;
		char *b64, handle[16];

		x->key[i] = keys_made[i];
		make_cert(x, i, i);
		n = i2d_PublicKey(x->key[i], &pk); /* PKCS#1 RSAPublicKey, as AMT lists it */
		CU_ASSERT_FATAL(n > 0);
		b64 = flow_b64(pk, (size_t)n);
		snprintf(handle, sizeof(handle), "key-%c", 'a' + i);
		json_array_append_new(x->keys, json_pack("{s:s,s:s}", "key_handle", handle,
							 "public_key_b64", b64));
		free(b64);
		OPENSSL_free(pk);
	}
	make_cert(x, CA2, KA);
	list_cert(x, "cert-B", KB);
	list_cert(x, "cert-D", KD);
	json_array_append_new(x->superseded, json_string(x->sha[KA]));
	x->current[0] = x->key[KB];
	x->v = (struct flow_prune_view){.in_use = x->in_use, .certs = x->certs, .keys = x->keys,
					.superseded = x->superseded, .recorded = &x->key[KA],
					.n_recorded = 1, .current = x->current, .n_current = 1};
}

/* The 802.1X step's prune: B is the web server certificate (TLS uses it), D and E are the
 * current client certificates of profiles "lan" and "corp" (their links use them), A is the
 * "lan" certificate they replaced, superseded on record. */
static void setup_8021x(struct fx *x)
{
	setup(x);
	list_cert(x, "cert-E", KE);
	json_array_append_new(x->in_use, json_string("cert-E"));
	x->current[0] = x->key[KD];
	x->current[1] = x->key[KE];
	x->v.n_current = 2;
}

static void teardown(struct fx *x)
{
	for (int i = 0; i < NCERTS; i++)
		free(x->der_b64[i]);
	json_decref(x->certs);
	json_decref(x->keys);
	json_decref(x->superseded);
	json_decref(x->in_use);
	json_decref(x->del_certs);
	json_decref(x->del_keys);
}

/* The chosen handles, comma-separated, into @p out. */
static const char *joined(const json_t *a, char *out, size_t size)
{
	const json_t *v;
	size_t i, n = 0;

	out[0] = 0;
	json_array_foreach(a, i, v)
		n += (size_t)snprintf(out + n, size - n, "%s%s", i ? "," : "", json_string_value(v));
	return out;
}

/* Runs the choice on @p x, compares the handles chosen with @p certs and @p keys
 * (comma-separated), and releases @p x. */
static void expect(struct fx *x, const char *certs, const char *keys)
{
	char got[256];

	flow_prune_choose(&x->v, x->del_certs, x->del_keys);
	CU_ASSERT_STRING_EQUAL(joined(x->del_certs, got, sizeof(got)), certs);
	CU_ASSERT_STRING_EQUAL(joined(x->del_keys, got, sizeof(got)), keys);
	teardown(x);
}

/* The usual renewal: A and its key a leave AMT; B, D, their keys and c stay. */
static void test_superseded_certificate_and_its_key_go(void)
{
	struct fx x;

	setup(&x);
	list_cert(&x, "cert-A", KA);
	expect(&x, "cert-A", "key-a");
}

/* The CI failure (test_lifecycle_renewal_keys, R-REV-02c): amtprovd was killed after AMT
 * deleted A but before it deleted a. A is no longer in AMT, so only the record tells that
 * a was its key; it goes now, and nothing else does. */
static void test_key_of_a_certificate_already_gone_goes(void)
{
	struct fx x;

	setup(&x);
	expect(&x, "", "key-a");
}

/* A key certified twice (an interrupted request asked again with the key AMT had made):
 * the current certificate carries it (as its record says), so it stays. */
static void test_key_the_current_certificate_carries_stays(void)
{
	struct fx x;

	setup(&x);
	x.current[0] = x.key[KA];
	expect(&x, "", "");
}

/* A certificate left in AMT (here D, another purpose's) carrying the superseded record's
 * key keeps it. */
static void test_key_a_certificate_in_amt_carries_stays(void)
{
	struct fx x;

	setup(&x);
	x.v.recorded = &x.key[KD];
	expect(&x, "", "");
}

/* A superseded certificate a context still uses stays, and so does its key. */
static void test_superseded_certificate_in_use_stays(void)
{
	struct fx x;

	setup(&x);
	list_cert(&x, "cert-A", KA);
	json_array_append_new(x.in_use, json_string("cert-A"));
	expect(&x, "", "");
}

/* Nothing on a guess: unknown bindings delete nothing; an unknown current key keeps the
 * keys known only from the record; a certificate in AMT whose key cannot be read keeps
 * every key. */
static void test_nothing_on_a_guess(void)
{
	struct fx x;

	setup(&x);
	list_cert(&x, "cert-A", KA);
	x.v.in_use = NULL;
	expect(&x, "", "");

	setup(&x);
	x.current[0] = NULL;
	expect(&x, "", "");

	setup(&x);
	json_array_append_new(x.certs, json_pack("{s:s,s:s}", "cert_handle", "cert-X",
						 "cert_der_b64", "AAAA"));
	expect(&x, "", "");
}

/* R-8021X-06, R-REV-04: the renewal replaced "lan"'s A by D. The step deleted A already (no
 * link uses it) and the prune knows a from A's record: a goes, and nothing else (R-PROV-13:
 * as after a run killed between the two deletions); when A is still in AMT (a run
 * interrupted before the step deleted it) A goes with a. */
static void test_8021x_orphan_of_a_replaced_certificate_goes(void)
{
	struct fx x;

	setup_8021x(&x);
	expect(&x, "", "key-a");

	setup_8021x(&x);
	list_cert(&x, "cert-A", KA);
	expect(&x, "cert-A", "key-a");
}

/* R-PROV-11 (3): a certificate the old links used and none uses now (C, not on record:
 * another tool bound it) goes, with its key c; one a link uses again stays with its key. */
static void test_8021x_unlinked_certificate_goes(void)
{
	struct fx x;
	json_t *also = json_pack("[s]", "cert-C");

	setup_8021x(&x);
	list_cert(&x, "cert-C", KC);
	x.v.also = also;
	expect(&x, "cert-C", "key-a,key-c");

	setup_8021x(&x);
	list_cert(&x, "cert-C", KC);
	json_array_append_new(x.in_use, json_string("cert-C"));
	x.v.also = also;
	expect(&x, "", "key-a");
	json_decref(also);
}

/* R-8021X-06: a key that a certificate still in AMT carries stays: A had the web server
 * certificate's key b, or the key e of the other profile's current certificate E. */
static void test_8021x_key_a_certificate_in_amt_carries_stays(void)
{
	struct fx x;

	setup_8021x(&x);
	x.v.recorded = &x.key[KB];
	expect(&x, "", "");

	setup_8021x(&x);
	x.v.recorded = &x.key[KE];
	expect(&x, "", "");
}

/* R-8021X-06 with key reuse: "lan"'s renewal kept key a, its new certificate A2 carries it.
 * A (still in AMT, unlinked) goes, a stays; it stays on the current certificates' record
 * alone too (A2 not listed), and while one of them is unknown nothing known only from the
 * record goes. */
static void test_8021x_current_key_stays(void)
{
	struct fx x;

	setup_8021x(&x);
	list_cert(&x, "cert-A", KA);
	list_cert(&x, "cert-A2", CA2);
	json_array_append_new(x.in_use, json_string("cert-A2"));
	x.current[0] = x.key[KA];
	expect(&x, "cert-A", "");

	setup_8021x(&x);
	x.current[1] = x.key[KA];
	expect(&x, "", "");

	setup_8021x(&x);
	x.current[1] = NULL;
	expect(&x, "", "");
}

void register_flow_prune_tests(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
		{"R-REV-02c: a superseded certificate and its key pair go",
		 test_superseded_certificate_and_its_key_go},
		{"R-REV-02c: the key pair of a certificate already gone from AMT goes (record)",
		 test_key_of_a_certificate_already_gone_goes},
		{"a key pair the current certificate carries stays",
		 test_key_the_current_certificate_carries_stays},
		{"a key pair a certificate left in AMT carries stays",
		 test_key_a_certificate_in_amt_carries_stays},
		{"a superseded certificate a context uses stays, with its key",
		 test_superseded_certificate_in_use_stays},
		{"nothing is deleted on a guess", test_nothing_on_a_guess},
		{"R-8021X-06, R-REV-04, R-PROV-13: the key of a replaced 802.1X certificate goes",
		 test_8021x_orphan_of_a_replaced_certificate_goes},
		{"R-PROV-11: a certificate no 802.1X link uses any more goes, with its key",
		 test_8021x_unlinked_certificate_goes},
		{"R-8021X-06: a key a certificate in AMT carries (web server, other profile) stays",
		 test_8021x_key_a_certificate_in_amt_carries_stays},
		{"R-8021X-06: a current 802.1X certificate's key stays (key reuse)",
		 test_8021x_current_key_stays},
	};
	CU_pSuite s = CU_add_suite("flow_prune", suite_init, suite_clean);
	size_t i;

	if (!s)
		return;
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
}
