/* SPDX-License-Identifier: Apache-2.0 */
/* Who may register what (core/site/authz.c, docs/api.md "Who may do what"): enrollment secrets
 * bound to one FQDN (and optionally a UUID), the site's name policy (R-PC-05,
 * site.fqdn_patterns) and the address allow-list. */
#include <arpa/inet.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "authz.h"
#include "manifest.h"
#include "test_util.h"
#include "util.h"

void register_authz_tests(void);

#define KEY1 "0123456789abcdef0123456789abcdef-key-one"
#define KEY2 "fedcba9876543210fedcba9876543210-key-two"
#define UUID1 "11111111-2222-4333-8444-555555555555"

static struct amtprov_secret key_of(const char *s)
{
	struct amtprov_secret k = {.len = strlen(s), .data = (char *)s};

	return k;
}

static int verify(const char *tok, struct amtprov_secret *const *keys, size_t n,
		  struct authz_host *h, const char **why)
{
	return authz_secret_verify(keys, n, tok, strlen(tok), h, why);
}

static void test_secret_round_trip_and_binding(void)
{
	struct amtprov_secret k1 = key_of(KEY1), k2 = key_of(KEY2);
	struct amtprov_secret *one[] = {&k1}, *both[] = {&k2, &k1}, *other[] = {&k2};
	char s[AUTHZ_SECRET_SIZE], t[AUTHZ_SECRET_SIZE];
	struct amtprov_error err;
	struct authz_host h;
	const char *why = NULL;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(authz_secret_mint(&k1, "PC1.Contoso.com", NULL, s, sizeof(s), &err),
			      AMTPROV_OK);
	CU_ASSERT_EQUAL(strncmp(s, "amtprov-e1_pc1.contoso.com__", 28), 0);
	CU_ASSERT_EQUAL(strlen(s), 28 + 64);
	CU_ASSERT(authz_secret_like(s, strlen(s)));
	CU_ASSERT_EQUAL(verify(s, one, 1, &h, &why), 1);
	CU_ASSERT_STRING_EQUAL(h.fqdn, "pc1.contoso.com");
	CU_ASSERT_STRING_EQUAL(h.uuid, "");
	/* Rotation: any listed key verifies; a key not listed does not. */
	CU_ASSERT_EQUAL(verify(s, both, 2, &h, &why), 1);
	CU_ASSERT_EQUAL(verify(s, other, 1, &h, &why), 0);
	CU_ASSERT_STRING_EQUAL(why, "the enrollment secret does not verify");
	CU_ASSERT_STRING_EQUAL(h.fqdn, "");
	/* The MAC covers the name and the UUID: moving either breaks it. */
	util_strlcpy(t, s, sizeof(t));
	memcpy(t + 11, "pc2", 3);
	CU_ASSERT_EQUAL(verify(t, one, 1, &h, &why), 0);
	CU_ASSERT_EQUAL(authz_secret_mint(&k1, "pc1.contoso.com", UUID1, t, sizeof(t), &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(verify(t, one, 1, &h, &why), 1);
	CU_ASSERT_STRING_EQUAL(h.uuid, UUID1);
	CU_ASSERT(strcmp(s + strlen(s) - 64, t + strlen(t) - 64) != 0);
	/* Garbage of every shape is refused, never crashes. */
	CU_ASSERT_EQUAL(verify("amtprov-e1_", one, 1, &h, &why), 0);
	CU_ASSERT_EQUAL(verify("amtprov-e1_pc1.contoso.com", one, 1, &h, &why), 0);
	CU_ASSERT_EQUAL(verify("amtprov-e1_pc1.contoso.com__zz", one, 1, &h, &why), 0);
	CU_ASSERT_STRING_EQUAL(why, "malformed enrollment secret");
	util_strlcpy(t, s, sizeof(t));
	t[strlen(t) - 1] = 'g';
	CU_ASSERT_EQUAL(verify(t, one, 1, &h, &why), 0);
	CU_ASSERT_EQUAL(verify("amtprov-e1_bad host__0", one, 1, &h, &why), 0);
	CU_ASSERT_EQUAL(verify("token-of-an-administrator", one, 1, &h, &why), 0);
	CU_ASSERT_EQUAL(verify(s, one, 0, &h, &why), 0);
	/* Minting checks its input and the key's length. */
	CU_ASSERT_EQUAL(authz_secret_mint(&k1, "pc1", NULL, t, sizeof(t), &err), AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(authz_secret_mint(&k1, "pc1.contoso.com", "nope", t, sizeof(t), &err),
			AMTPROV_E_INVALID);
	k2.len = AUTHZ_KEY_MIN - 1;
	CU_ASSERT_EQUAL(authz_secret_mint(&k2, "pc1.contoso.com", NULL, t, sizeof(t), &err),
			AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(authz_secret_mint(&k1, "pc1.contoso.com", NULL, t, 40, &err),
			AMTPROV_E_INVALID);
}

static void test_glob_stays_in_a_label(void)
{
	CU_ASSERT(authz_glob_match("pc*.contoso.com", "pc1.contoso.com"));
	CU_ASSERT(authz_glob_match("pc*.contoso.com", "PC-0042.Contoso.COM"));
	CU_ASSERT(authz_glob_match("pc*.contoso.com", "pc.contoso.com"));
	CU_ASSERT(!authz_glob_match("pc*.contoso.com", "pc1.evil.contoso.com"));
	CU_ASSERT(!authz_glob_match("pc*.contoso.com", "www.contoso.com"));
	CU_ASSERT(authz_glob_match("*.desk.contoso.com", "a.desk.contoso.com"));
	CU_ASSERT(!authz_glob_match("*.desk.contoso.com", "a.b.desk.contoso.com"));
	CU_ASSERT(authz_glob_match("pc??.contoso.com", "pc12.contoso.com"));
	CU_ASSERT(!authz_glob_match("pc??.contoso.com", "pc1.contoso.com"));
	CU_ASSERT(!authz_glob_match("pc?contoso.com", "pc.contoso.com"));
	CU_ASSERT(authz_glob_match("*-*.contoso.com", "a-b.contoso.com"));
	CU_ASSERT(!authz_glob_match("pc1.contoso.com", "pc1.contoso.com.evil.com"));
}

static void test_name_policy(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m = NULL;
	struct amtprov_error err;
	char why[256];

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(
		manifest_load_string("{\"manifest_version\":1,\"site\":{\"name\":\"t\","
				     "\"service_point_fqdn\":\"oob.contoso.com\",\"dns_suffix\":"
				     "\"contoso.com\"}}",
				     "/tmp/site.json", &m, &pr, &err),
		AMTPROV_OK);
	/* Without patterns: any name below the suffix but the service point's. */
	CU_ASSERT(authz_name_allowed(m, "www.contoso.com", 1, why, sizeof(why)));
	CU_ASSERT(authz_name_allowed(m, "a.b.contoso.com", 1, why, sizeof(why)));
	CU_ASSERT(!authz_name_allowed(m, "OOB.contoso.com", 1, why, sizeof(why)));
	CU_ASSERT(tu_contains(why, "service point"));
	CU_ASSERT(!authz_name_allowed(m, "contoso.com", 1, why, sizeof(why)));
	CU_ASSERT(!authz_name_allowed(m, "pc1.notcontoso.com", 1, why, sizeof(why)));
	CU_ASSERT(!authz_name_allowed(m, "pc1.fabrikam.com", 1, why, sizeof(why)));
	CU_ASSERT(tu_contains(why, "R-PC-05"));
	/* Registration leaves the suffix to the device check (status 8112 says why). */
	CU_ASSERT(authz_name_allowed(m, "pc1.fabrikam.com", 0, why, sizeof(why)));
	CU_ASSERT(!authz_name_allowed(m, "oob.contoso.com", 0, why, sizeof(why)));
	manifest_free(m);
	manifest_problems_free(&pr);
	m = NULL;
	CU_ASSERT_EQUAL_FATAL(
		manifest_load_string("{\"manifest_version\":1,\"site\":{\"name\":\"t\","
				     "\"service_point_fqdn\":\"oob.contoso.com\",\"dns_suffix\":"
				     "\"contoso.com\",\"fqdn_patterns\":[\"pc*.contoso.com\"]}}",
				     "/tmp/site.json", &m, &pr, &err),
		AMTPROV_OK);
	CU_ASSERT(authz_name_allowed(m, "pc7.contoso.com", 1, why, sizeof(why)));
	CU_ASSERT(!authz_name_allowed(m, "www.contoso.com", 1, why, sizeof(why)));
	CU_ASSERT(tu_contains(why, "fqdn_patterns (pc*.contoso.com)"));
	manifest_free(m);
	manifest_problems_free(&pr);
}

static void test_cidr(void)
{
	struct manifest_cidr l[3];
	const char *why = NULL;

	CU_ASSERT_EQUAL(authz_cidr_parse("10.1.0.0/16", &l[0], &why), 0);
	CU_ASSERT_EQUAL(authz_cidr_parse("fd00::/8", &l[1], &why), 0);
	CU_ASSERT_EQUAL(authz_cidr_parse("192.0.2.7", &l[2], &why), 0);
	CU_ASSERT_EQUAL(l[2].prefix, 32);
	CU_ASSERT(authz_cidr_contains(l, 3, "10.1.255.3"));
	CU_ASSERT(!authz_cidr_contains(l, 3, "10.2.0.1"));
	CU_ASSERT(authz_cidr_contains(l, 3, "fd12::1"));
	CU_ASSERT(!authz_cidr_contains(l, 3, "fe80::1"));
	CU_ASSERT(authz_cidr_contains(l, 3, "192.0.2.7"));
	CU_ASSERT(!authz_cidr_contains(l, 3, "192.0.2.8"));
	/* IPv4-mapped IPv6 is another family: not silently matched. */
	CU_ASSERT(!authz_cidr_contains(l, 3, "::ffff:10.1.0.1"));
	CU_ASSERT(!authz_cidr_contains(l, 3, "not-an-ip"));
	CU_ASSERT_EQUAL(authz_cidr_parse("0.0.0.0/0", &l[0], &why), 0);
	CU_ASSERT(authz_cidr_contains(l, 1, "203.0.113.9"));
	CU_ASSERT_EQUAL(authz_cidr_parse("10.0.0.5/8", &l[0], &why), -1);
	CU_ASSERT(tu_contains(why, "host bits"));
	CU_ASSERT_EQUAL(authz_cidr_parse("10.0.0.0/33", &l[0], &why), -1);
	CU_ASSERT_EQUAL(authz_cidr_parse("/8", &l[0], &why), -1);
	CU_ASSERT_EQUAL(authz_cidr_parse("lan.contoso.com", &l[0], &why), -1);
	CU_ASSERT_EQUAL(authz_cidr_parse("10.0.0.0/x", &l[0], &why), -1);
}

void register_authz_tests(void)
{
	CU_pSuite s = CU_add_suite("authz", NULL, NULL);

	CU_add_test(s, "enrollment secrets: one FQDN (and UUID), any listed key, garbage refused",
		    test_secret_round_trip_and_binding);
	CU_add_test(s, "fqdn_patterns globs never cross a label", test_glob_stays_in_a_label);
	CU_add_test(s, "R-PC-05: the name policy (suffix, service point, patterns)",
		    test_name_policy);
	CU_add_test(s, "address allow-list networks", test_cidr);
}
