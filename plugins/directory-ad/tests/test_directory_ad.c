/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_directory_ad.c - directory-ad's pure parts without a DC: objectSid to string
 * (MS-DTYP 2.4.2), the AES salt of a computer account (MS-KILE 3.1.1.2), DN and filter
 * escaping (RFC 4514, RFC 4515), the name forms resolve_sid accepts, sAMAccountNames,
 * passwords and unicodePwd. The LDAP side is tested against Samba AD DC in
 * tests/integration/test_directory_ad.sh.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "ad.h"

static void test_sid(void)
{
	static const uint8_t dom[] = {0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x15, 0x00,
				      0x00, 0x00, 0xdc, 0xf4, 0xdc, 0x3b, 0x83, 0x3d, 0x2b, 0x46,
				      0x82, 0x8b, 0xa6, 0x28, 0x00, 0x02, 0x00, 0x00};
	static const uint8_t admins[] = {0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
					 0x20, 0x00, 0x00, 0x00, 0x20, 0x02, 0x00, 0x00};
	static const uint8_t world[] = {0x01, 0x01, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0};
	char s[128];

	CU_ASSERT_EQUAL(ad_sid_to_string(dom, sizeof(dom), s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "S-1-5-21-1004336348-1177238915-682003330-512");
	CU_ASSERT_EQUAL(ad_sid_to_string(admins, sizeof(admins), s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "S-1-5-32-544");
	CU_ASSERT_EQUAL(ad_sid_to_string(world, sizeof(world), s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "S-1-1-0");
	/* Truncated, wrong revision, count beyond the data, buffer too small. */
	CU_ASSERT_EQUAL(ad_sid_to_string(dom, sizeof(dom) - 1, s, sizeof(s)), -1);
	CU_ASSERT_EQUAL(ad_sid_to_string(dom, 7, s, sizeof(s)), -1);
	{
		uint8_t bad[sizeof(dom)];

		memcpy(bad, dom, sizeof(dom));
		bad[0] = 2;
		CU_ASSERT_EQUAL(ad_sid_to_string(bad, sizeof(bad), s, sizeof(s)), -1);
		bad[0] = 1;
		bad[1] = 6;
		CU_ASSERT_EQUAL(ad_sid_to_string(bad, sizeof(bad), s, sizeof(s)), -1);
	}
	CU_ASSERT_EQUAL(ad_sid_to_string(dom, sizeof(dom), s, 20), -1);
	CU_ASSERT_EQUAL(ad_sid_to_string(NULL, 0, s, sizeof(s)), -1);
}

static void test_salt(void)
{
	char s[128];

	CU_ASSERT_EQUAL(ad_computer_salt("CONTOSO.TEST", "AMT7$", "contoso.test", s, sizeof(s)),
			0);
	CU_ASSERT_STRING_EQUAL(s, "CONTOSO.TESThostamt7.contoso.test");
	/* Case is normalized on every part; a name without '$' is the same account. */
	CU_ASSERT_EQUAL(ad_computer_salt("contoso.test", "Pc-01", "CONTOSO.Test", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "CONTOSO.TESThostpc-01.contoso.test");
	CU_ASSERT_EQUAL(ad_computer_salt("CONTOSO.TEST", "AMT7$", "contoso.test", s, 33), -1);
	CU_ASSERT_EQUAL(ad_computer_salt("CONTOSO.TEST", "AMT7$", "contoso.test", s, 34), 0);
	CU_ASSERT_EQUAL(ad_computer_salt("CONTOSO.TEST", "$", "contoso.test", s, sizeof(s)), -1);
}

static void test_dn_escape(void)
{
	char s[64];

	CU_ASSERT_EQUAL(ad_dn_escape("AMT7", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "AMT7");
	CU_ASSERT_EQUAL(ad_dn_escape("a,b+c\"d\\e<f>g;h=i", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\=i");
	CU_ASSERT_EQUAL(ad_dn_escape("#x y ", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "\\#x y\\ ");
	CU_ASSERT_EQUAL(ad_dn_escape(" a\n", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "\\ a\\0a");
	CU_ASSERT_EQUAL(ad_dn_escape("a,b", s, 4), -1);
	CU_ASSERT_EQUAL(ad_dn_escape("a,b", s, 5), 0);
}

static void test_filter_escape(void)
{
	char s[64];

	CU_ASSERT_EQUAL(ad_filter_escape("HTTP/amt7.contoso.test:16993", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "HTTP/amt7.contoso.test:16993");
	/* A name never widens the search: '*' and parentheses are escaped. */
	CU_ASSERT_EQUAL(ad_filter_escape("*)(objectClass=*", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "\\2a\\29\\28objectClass=\\2a");
	CU_ASSERT_EQUAL(ad_filter_escape("a\\b", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "a\\5cb");
	CU_ASSERT_EQUAL(ad_filter_escape("****", s, 12), -1);
	CU_ASSERT_EQUAL(ad_filter_escape("****", s, 13), 0);
}

static void test_dn_helpers(void)
{
	char s[64];

	CU_ASSERT_EQUAL(ad_dn_to_dns("DC=contoso,DC=test", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "contoso.test");
	CU_ASSERT_EQUAL(ad_dn_to_dns("CN=AMT7,OU=AMT, dc=Corp,DC=Contoso,DC=com", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "corp.contoso.com");
	CU_ASSERT_EQUAL(ad_dn_to_dns("CN=x\\,DC=y,OU=z", s, sizeof(s)), -1);
	CU_ASSERT_EQUAL(ad_dn_to_dns("", s, sizeof(s)), -1);
	CU_ASSERT_TRUE(ad_dn_equal("OU=AMT,DC=contoso,DC=test", "ou=amt, dc=Contoso ,DC = TEST"));
	CU_ASSERT_FALSE(ad_dn_equal("OU=AMT,DC=contoso,DC=test", "OU=AMT2,DC=contoso,DC=test"));
	CU_ASSERT_FALSE(ad_dn_equal("OU=AMT,DC=contoso", ""));
	CU_ASSERT_STRING_EQUAL(ad_dn_parent("CN=AMT7,OU=AMT,DC=c"), "OU=AMT,DC=c");
	CU_ASSERT_STRING_EQUAL(ad_dn_parent("CN=a\\,b, OU=AMT"), "OU=AMT");
	CU_ASSERT_STRING_EQUAL(ad_dn_parent("DC=c"), "");
}

static void test_names(void)
{
	char u[32], d[32];

	CU_ASSERT_EQUAL(ad_parse_name("CONTOSO\\amt-admins", u, sizeof(u), d, sizeof(d)),
			AD_NAME_NETBIOS);
	CU_ASSERT_STRING_EQUAL(u, "amt-admins");
	CU_ASSERT_STRING_EQUAL(d, "CONTOSO");
	CU_ASSERT_EQUAL(ad_parse_name("alice@contoso.test", u, sizeof(u), d, sizeof(d)),
			AD_NAME_UPN);
	CU_ASSERT_STRING_EQUAL(u, "alice");
	CU_ASSERT_STRING_EQUAL(d, "contoso.test");
	CU_ASSERT_EQUAL(ad_parse_name("Domain Admins", u, sizeof(u), d, sizeof(d)), AD_NAME_BARE);
	CU_ASSERT_STRING_EQUAL(u, "Domain Admins");
	CU_ASSERT_STRING_EQUAL(d, "");
	CU_ASSERT_EQUAL(ad_parse_name("", u, sizeof(u), d, sizeof(d)), -1);
	CU_ASSERT_EQUAL(ad_parse_name("\\alice", u, sizeof(u), d, sizeof(d)), -1);
	CU_ASSERT_EQUAL(ad_parse_name("C\\", u, sizeof(u), d, sizeof(d)), -1);
	CU_ASSERT_EQUAL(ad_parse_name("alice@", u, sizeof(u), d, sizeof(d)), -1);
	CU_ASSERT_EQUAL(ad_parse_name("C\\a@b", u, sizeof(u), d, sizeof(d)), -1);
	CU_ASSERT_EQUAL(ad_parse_name("a@b@c", u, sizeof(u), d, sizeof(d)), -1);
	CU_ASSERT_EQUAL(ad_parse_name("a\\b\\c", u, sizeof(u), d, sizeof(d)), -1);
	CU_ASSERT_EQUAL(ad_parse_name("al\nice", u, sizeof(u), d, sizeof(d)), -1);
	CU_ASSERT_EQUAL(ad_parse_name("a-name-longer-than-32-characters-x", u, sizeof(u), d,
				      sizeof(d)), -1);
	CU_ASSERT_EQUAL(ad_parse_name(NULL, u, sizeof(u), d, sizeof(d)), -1);
}

static void test_sam(void)
{
	char s[32];

	CU_ASSERT_EQUAL(ad_sam_name("amt7$", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "AMT7$");
	CU_ASSERT_EQUAL(ad_sam_name("pc-01", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "PC-01$");
	CU_ASSERT_EQUAL(ad_sam_name("ABCDEFGHIJKLMNO$", s, sizeof(s)), 0);
	CU_ASSERT_EQUAL(ad_sam_name("ABCDEFGHIJKLMNOP", s, sizeof(s)), -1);
	CU_ASSERT_EQUAL(ad_sam_name("$", s, sizeof(s)), -1);
	CU_ASSERT_EQUAL(ad_sam_name("a*b", s, sizeof(s)), -1);
	CU_ASSERT_EQUAL(ad_sam_name("a,b", s, sizeof(s)), -1);
}

static void test_password(void)
{
	char a[121], b[121];
	uint8_t u[2 * (121 + 2)];
	long n;

	CU_ASSERT_EQUAL(ad_random_password(a, 32), 0);
	CU_ASSERT_EQUAL(strlen(a), 32);
	CU_ASSERT_PTR_NOT_NULL(strpbrk(a, "ABCDEFGHJKLMNPQRSTUVWXYZ"));
	CU_ASSERT_PTR_NOT_NULL(strpbrk(a, "abcdefghijkmnopqrstuvwxyz"));
	CU_ASSERT_PTR_NOT_NULL(strpbrk(a, "23456789"));
	CU_ASSERT_PTR_NOT_NULL(strpbrk(a, "!#%+-.:=?@_~"));
	CU_ASSERT_EQUAL(ad_random_password(b, 32), 0);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	CU_ASSERT_EQUAL(ad_random_password(a, 120), 0);
	CU_ASSERT_EQUAL(strlen(a), 120);
	CU_ASSERT_EQUAL(ad_random_password(a, 15), -1);
	CU_ASSERT_EQUAL(ad_random_password(a, 121), -1);

	n = ad_unicode_pwd("Ab1!", u, sizeof(u));
	CU_ASSERT_EQUAL(n, 12);
	CU_ASSERT_EQUAL(memcmp(u, "\"\0A\0b\0001\0!\0\"\0", 12), 0);
	CU_ASSERT_EQUAL(ad_unicode_pwd("Ab1!", u, 11), -1);
	CU_ASSERT_EQUAL(ad_unicode_pwd("\xc3\xa9", u, sizeof(u)), -1);
}

int main(void)
{
	CU_pSuite su;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	su = CU_add_suite("directory_ad", NULL, NULL);
	CU_add_test(su, "objectSid to S-1-... (MS-DTYP 2.4.2), malformed refused", test_sid);
	CU_add_test(su, "AES salt of a computer account (MS-KILE 3.1.1.2)", test_salt);
	CU_add_test(su, "DN value escaping (RFC 4514)", test_dn_escape);
	CU_add_test(su, "filter value escaping (RFC 4515)", test_filter_escape);
	CU_add_test(su, "DN to DNS name, DN comparison, parent", test_dn_helpers);
	CU_add_test(su, "name forms DOMAIN\\name, name@domain, bare", test_names);
	CU_add_test(su, "sAMAccountName of a computer", test_sam);
	CU_add_test(su, "random password classes and unicodePwd encoding", test_password);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
