/* SPDX-License-Identifier: Apache-2.0 */
/* Digest: RFC 2617 test vector, nc replay, stale nonces, malformed headers. */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "device.h"
#include "digest.h"

void register_sim_digest_tests(void);

static const char *realm = "Digest:0123456789ABCDEF0123456789ABCDEF";

static bool lookup(void *arg, const char *user, char ha1[33])
{
	if (strcmp(user, "admin") != 0)
		return false;
	device_ha1("admin", realm, "P@ssw0rd", ha1);
	return true;
}

static void test_rfc2617_vector(void)
{
	char ha1[33], resp[33];

	/* RFC 2617 §3.5. */
	device_ha1("Mufasa", "testrealm@host.com", "Circle Of Life", ha1);
	digest_response(ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b", "auth",
			"GET", "/dir/index.html", resp);
	CU_ASSERT_STRING_EQUAL(resp, "6629fae49393a05397450978507c4ef1");
}

static void make_header(const char *nonce, const char *nc, const char *pw, char *out, size_t n)
{
	char ha1[33], resp[33];

	device_ha1("admin", realm, pw, ha1);
	digest_response(ha1, nonce, nc, "abcdef", "auth", "POST", "/wsman", resp);
	snprintf(out, n,
		 "Digest username=\"admin\",realm=\"%s\",nonce=\"%s\",uri=\"/wsman\",qop=auth,"
		 "response=\"%s\",nc=%s,cnonce=\"abcdef\"", realm, nonce, resp, nc);
}

static void nonce_of(const char *chal, char *out, size_t n)
{
	const char *p = strstr(chal, "nonce=\"");

	snprintf(out, n, "%.32s", p ? p + 7 : "");
}

static void test_flow(void)
{
	struct digest_state st = {.lifetime = 60};
	char chal[256], nonce[64], h[1024], user[17];

	CU_ASSERT_EQUAL(digest_check(&st, realm, "POST", NULL, lookup, NULL, user, sizeof(user), 1000),
			DIGEST_MISSING);
	digest_challenge(&st, realm, false, chal, sizeof(chal), 1000);
	CU_ASSERT_PTR_NOT_NULL(strstr(chal, "qop=\"auth\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(chal, "stale=\"false\""));
	nonce_of(chal, nonce, sizeof(nonce));
	CU_ASSERT_EQUAL(strlen(nonce), 32);
	make_header(nonce, "00000001", "P@ssw0rd", h, sizeof(h));
	CU_ASSERT_EQUAL(digest_check(&st, realm, "POST", h, lookup, NULL, user, sizeof(user), 1001),
			DIGEST_OK);
	CU_ASSERT_STRING_EQUAL(user, "admin");
	/* Same nc again: replay. */
	CU_ASSERT_EQUAL(digest_check(&st, realm, "POST", h, lookup, NULL, user, sizeof(user), 1002),
			DIGEST_REPLAY);
	make_header(nonce, "00000002", "P@ssw0rd", h, sizeof(h));
	CU_ASSERT_EQUAL(digest_check(&st, realm, "POST", h, lookup, NULL, user, sizeof(user), 1002),
			DIGEST_OK);
	make_header(nonce, "00000003", "wrong", h, sizeof(h));
	CU_ASSERT_EQUAL(digest_check(&st, realm, "POST", h, lookup, NULL, user, sizeof(user), 1003),
			DIGEST_BAD_RESPONSE);
	/* Expired nonce, right password: stale. */
	make_header(nonce, "00000004", "P@ssw0rd", h, sizeof(h));
	CU_ASSERT_EQUAL(digest_check(&st, realm, "POST", h, lookup, NULL, user, sizeof(user), 2000),
			DIGEST_STALE);
	/* Unknown nonce with the right password: stale too (the client retries). */
	make_header("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "00000001", "P@ssw0rd", h, sizeof(h));
	CU_ASSERT_EQUAL(digest_check(&st, realm, "POST", h, lookup, NULL, user, sizeof(user), 1003),
			DIGEST_STALE);
	/* CVE-2017-5689: empty response. */
	snprintf(h, sizeof(h), "Digest username=\"admin\",realm=\"%s\",nonce=\"%s\",uri=\"/wsman\","
		 "qop=auth,response=\"\",nc=00000009,cnonce=\"x\"", realm, nonce);
	CU_ASSERT_EQUAL(digest_check(&st, realm, "POST", h, lookup, NULL, user, sizeof(user), 1003),
			DIGEST_BAD_RESPONSE);
	CU_ASSERT_EQUAL(digest_check(&st, realm, "POST", "Digest garbage", lookup, NULL, user,
				     sizeof(user), 1003), DIGEST_MALFORMED);
	CU_ASSERT_EQUAL(digest_check(&st, realm, "POST", "Basic YWRtaW46eA==", lookup, NULL, user,
				     sizeof(user), 1003), DIGEST_MISSING);
	digest_challenge(&st, realm, true, chal, sizeof(chal), 1000);
	CU_ASSERT_PTR_NOT_NULL(strstr(chal, "stale=\"true\""));
	nonce_of(chal, h, sizeof(h));
	CU_ASSERT_STRING_NOT_EQUAL(h, nonce);
}

static void test_parse_spacing(void)
{
	struct digest_auth a;

	CU_ASSERT_EQUAL(digest_parse("Digest username=\"u\" realm=\"r\" nonce=\"n\" uri=\"/x\" "
				     "response=\"z\" qop=auth nc=00000001 cnonce=\"c\"", &a), 0);
	CU_ASSERT_STRING_EQUAL(a.realm, "r");
	CU_ASSERT_STRING_EQUAL(a.nc, "00000001");
	CU_ASSERT_NOT_EQUAL(digest_parse("Digest username=\"u", &a), 0);
}

void register_sim_digest_tests(void)
{
	CU_pSuite s = CU_add_suite("sim.digest", NULL, NULL);

	CU_add_test(s, "RFC 2617 vector", test_rfc2617_vector);
	CU_add_test(s, "nonce, nc, stale", test_flow);
	CU_add_test(s, "parameter separators", test_parse_spacing);
}
