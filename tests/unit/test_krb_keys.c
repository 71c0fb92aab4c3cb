/* SPDX-License-Identifier: Apache-2.0 */
/* Kerberos string-to-key (core/pki/krb_keys.c) against published test vectors (R-ACC-01). */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "krb_keys.h"
#include "test_util.h"

void register_krb_keys_tests(void);

static void hex(const unsigned char *k, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", k[i]);
}

/* RFC 3962 appendix B, "Sample Test Vectors": the AES128 and AES256 keys for each pass
 * phrase, salt and iteration count (the cases with a printable salt). */
static void test_rfc3962_vectors(void)
{
	static const char gclef[] = "\xf0\x9d\x84\x9e"; /* U+1D11E, the RFC's "g-clef" case */
	static const struct {
		const char *pw, *salt;
		unsigned iter;
		const char *aes128, *aes256;
	} v[] = {
		{"password", "ATHENA.MIT.EDUraeburn", 1, "42263c6e89f4fc28b8df68ee09799f15",
		 "fe697b52bc0d3ce14432ba036a92e65bbb52280990a2fa27883998d72af30161"},
		{"password", "ATHENA.MIT.EDUraeburn", 2, "c651bf29e2300ac27fa469d693bdda13",
		 "a2e16d16b36069c135d5e9d2e25f896102685618b95914b467c67622225824ff"},
		{"password", "ATHENA.MIT.EDUraeburn", 1200, "4c01cd46d632d01e6dbe230a01ed642a",
		 "55a6ac740ad17b4846941051e1e8b0a7548d93b0ab30a8bc3ff16280382b8c2a"},
		{"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
		 "pass phrase equals block size", 1200, "59d1bb789a828b1aa54ef9c2883f69ed",
		 "89adee3608db8bc71f1bfbfe459486b05618b70cbae22092534e56c553ba4b34"},
		{gclef, "EXAMPLE.COMpianist", 50, "f149c1f2e154a73452d43e7fe62a56e5",
		 "4b6d9839f84406df1f09cc166db4b83c571848b784a3d6bdc346589a3e393f9e"},
	};
	unsigned char k[32];
	char h[65];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(krb_key_aes(v[i].pw, strlen(v[i].pw), v[i].salt, v[i].iter,
						  k, 16), 0);
		hex(k, 16, h);
		CU_ASSERT_STRING_EQUAL(h, v[i].aes128);
		CU_ASSERT_EQUAL_FATAL(krb_key_aes(v[i].pw, strlen(v[i].pw), v[i].salt, v[i].iter,
						  k, 32), 0);
		hex(k, 32, h);
		CU_ASSERT_STRING_EQUAL(h, v[i].aes256);
	}
	CU_ASSERT_EQUAL(krb_key_aes("password", 8, "S", 4096, k, 24), -1);
	CU_ASSERT_EQUAL(krb_key_aes("password", 8, "S", 0, k, 16), -1);
}

/* RC4-HMAC (RFC 4757 section 2): the key is the NT hash, MD4 over UTF-16LE. "password" has
 * the widely published NT hash 8846f7ea...; a non-ASCII password must be converted, not
 * passed as bytes, and invalid UTF-8 is refused. */
static void test_rc4_key(void)
{
	unsigned char k[16], k2[16];
	char h[33];

	CU_ASSERT_EQUAL_FATAL(krb_key_rc4("password", 8, k), 0);
	hex(k, 16, h);
	CU_ASSERT_STRING_EQUAL(h, "8846f7eaee8fb117ad06bdd830b7586c");
	/* "é" (U+00E9) is 0xE9 0x00 in UTF-16LE: not the same key as the two UTF-8 bytes */
	CU_ASSERT_EQUAL_FATAL(krb_key_rc4("\xc3\xa9", 2, k), 0);
	CU_ASSERT_EQUAL_FATAL(krb_key_rc4("\xc3\x83\xc2\xa9", 4, k2), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(k, k2, 16), 0);
	CU_ASSERT_EQUAL(krb_key_rc4("\xc3", 1, k), -1);
	CU_ASSERT_EQUAL(krb_key_rc4("\xed\xa0\x80", 3, k), -1); /* a surrogate */
	CU_ASSERT_EQUAL(krb_key_rc4("\xc0\xaf", 2, k), -1);     /* overlong */
}

void register_krb_keys_tests(void)
{
	CU_pSuite s = CU_add_suite("krb_keys", NULL, NULL);

	CU_add_test(s, "AES string-to-key: RFC 3962 appendix B vectors", test_rfc3962_vectors);
	CU_add_test(s, "RC4-HMAC key: NT hash of the UTF-16LE password", test_rc4_key);
}
