/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AMTHI message layer against the byte layouts of docs/agent.md: every request is
 * compared byte for byte with a hand-written message, every decoder reads a hand-written
 * answer, and answers that are truncated, oversized or garbage are refused with a reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "mei_msg.h"

static uint8_t out[AMTHI_MAX_MSG];

/* ---- requests ---------------------------------------------------------------------- */

static void test_header_only_requests(void)
{
	/* 01 01 | 00 00 | command LE | length 0 */
	static const struct {
		uint32_t cmd;
		uint8_t b[12];
	} want[] = {
		{AMTHI_CMD_GET_CODE_VERSIONS, {1, 1, 0, 0, 0x1a, 0, 0, 4, 0, 0, 0, 0}},
		{AMTHI_CMD_GET_PROVISIONING_STATE, {1, 1, 0, 0, 0x11, 0, 0, 4, 0, 0, 0, 0}},
		{AMTHI_CMD_GET_CONTROL_MODE, {1, 1, 0, 0, 0x6b, 0, 0, 4, 0, 0, 0, 0}},
		{AMTHI_CMD_GET_UUID, {1, 1, 0, 0, 0x5c, 0, 0, 4, 0, 0, 0, 0}},
		{AMTHI_CMD_GET_PKI_FQDN_SUFFIX, {1, 1, 0, 0, 0x36, 0, 0, 4, 0, 0, 0, 0}},
		{AMTHI_CMD_ENUMERATE_HASH_HANDLES, {1, 1, 0, 0, 0x2c, 0, 0, 4, 0, 0, 0, 0}},
		{AMTHI_CMD_START_CONFIGURATION, {1, 1, 0, 0, 0x29, 0, 0, 4, 0, 0, 0, 0}},
		{AMTHI_CMD_STOP_CONFIGURATION, {1, 1, 0, 0, 0x5e, 0, 0, 4, 0, 0, 0, 0}},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(amthi_req_simple(want[i].cmd, out, sizeof(out)), 12);
		CU_ASSERT_EQUAL(memcmp(out, want[i].b, 12), 0);
	}
	CU_ASSERT_EQUAL(amthi_req_simple(AMTHI_CMD_GET_UUID, out, 11), 0); /* short buffer */
}

static void test_lan_and_hash_entry_requests(void)
{
	static const uint8_t wired[16] = {1, 1, 0, 0, 0x48, 0, 0, 4, 4, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t wireless[16] = {1, 1, 0, 0, 0x48, 0, 0, 4, 4, 0, 0, 0, 1, 0, 0, 0};
	static const uint8_t entry[16] = {1, 1, 0, 0, 0x2d, 0, 0, 4, 4, 0, 0, 0, 0x34, 0x12, 0, 0};

	CU_ASSERT_EQUAL_FATAL(amthi_req_lan(0, out, sizeof(out)), 16);
	CU_ASSERT_EQUAL(memcmp(out, wired, 16), 0);
	CU_ASSERT_EQUAL_FATAL(amthi_req_lan(1, out, sizeof(out)), 16);
	CU_ASSERT_EQUAL(memcmp(out, wireless, 16), 0);
	CU_ASSERT_EQUAL_FATAL(amthi_req_hash_entry(0x1234, out, sizeof(out)), 16);
	CU_ASSERT_EQUAL(memcmp(out, entry, 16), 0);
}

static void test_set_otp_request(void)
{
	/* header (length 2 + 10) | u16 10 | "Abcdef1234" */
	static const uint8_t want[] = {1, 1, 0, 0, 0x2a, 0, 0, 4, 12, 0, 0, 0, 10, 0,
				       'A', 'b', 'c', 'd', 'e', 'f', '1', '2', '3', '4'};
	char big[40];

	CU_ASSERT_EQUAL_FATAL(amthi_req_set_otp("Abcdef1234", out, sizeof(out)), sizeof(want));
	CU_ASSERT_EQUAL(memcmp(out, want, sizeof(want)), 0);
	/* AMT takes 8 to 32 characters. */
	CU_ASSERT_EQUAL(amthi_req_set_otp("1234567", out, sizeof(out)), 0);
	memset(big, 'x', 33);
	big[33] = '\0';
	CU_ASSERT_EQUAL(amthi_req_set_otp(big, out, sizeof(out)), 0);
	big[32] = '\0';
	CU_ASSERT_EQUAL(amthi_req_set_otp(big, out, sizeof(out)), 12 + 2 + 32);
	CU_ASSERT_EQUAL(amthi_req_set_otp(NULL, out, sizeof(out)), 0);
}

static void test_start_configuration_ex_request(void)
{
	static const uint8_t want[] = {1, 1, 0, 0, 0x62, 0, 0, 4, 1, 0, 0, 0, 0};

	CU_ASSERT_EQUAL_FATAL(amthi_req_start_configuration_ex(false, out, sizeof(out)), 13);
	CU_ASSERT_EQUAL(memcmp(out, want, 13), 0);
	CU_ASSERT_EQUAL_FATAL(amthi_req_start_configuration_ex(true, out, sizeof(out)), 13);
	CU_ASSERT_EQUAL(out[12], 1);
}

/* ---- answers ------------------------------------------------------------------------ */

/* An answer to @p cmd with @p status and @p body; returns its length. */
static size_t answer(uint32_t cmd, uint32_t status, const uint8_t *body, size_t blen)
{
	uint8_t tmp[AMTHI_MAX_MSG];

	amthi_put32(tmp, status);
	if (blen)
		memcpy(tmp + 4, body, blen);
	return amthi_encode(cmd | AMTHI_RESPONSE_BIT, tmp, 4 + blen, out, sizeof(out));
}

static void test_response_header_checks(void)
{
	static const uint8_t state[] = {1, 1, 0, 0, 0x11, 0, 0x80, 4, 8, 0, 0, 0,
					0, 0, 0, 0, 2, 0, 0, 0};
	uint8_t m[32];
	const uint8_t *body;
	size_t blen;
	uint32_t st, v;
	char err[160];

	/* GetProvisioningState answer: status 0, state 2 (post). */
	CU_ASSERT_EQUAL_FATAL(amthi_parse_response(state, sizeof(state),
						   AMTHI_CMD_GET_PROVISIONING_STATE, &st, &body,
						   &blen, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_EQUAL(st, 0);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_u32(body, blen, &v, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_EQUAL(v, 2);
	/* Every way an answer's header can be wrong. */
	CU_ASSERT_EQUAL(amthi_parse_response(state, 0, AMTHI_CMD_GET_PROVISIONING_STATE, &st,
					     &body, &blen, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "empty"));
	CU_ASSERT_EQUAL(amthi_parse_response(state, 15, AMTHI_CMD_GET_PROVISIONING_STATE, &st,
					     &body, &blen, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_parse_response(state, 19, AMTHI_CMD_GET_PROVISIONING_STATE, &st,
					     &body, &blen, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "8 bytes follow"));
	CU_ASSERT_EQUAL(amthi_parse_response(state, sizeof(state), AMTHI_CMD_GET_UUID, &st,
					     &body, &blen, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "0x0480005c"));
	memcpy(m, state, sizeof(state));
	m[0] = 2;
	CU_ASSERT_EQUAL(amthi_parse_response(m, sizeof(state), AMTHI_CMD_GET_PROVISIONING_STATE,
					     &st, &body, &blen, err, sizeof(err)), AMTHI_EBADMSG);
	memcpy(m, state, sizeof(state));
	m[1] = 0;
	CU_ASSERT_EQUAL(amthi_parse_response(m, sizeof(state), AMTHI_CMD_GET_PROVISIONING_STATE,
					     &st, &body, &blen, err, sizeof(err)), AMTHI_EBADMSG);
	memcpy(m, state, sizeof(state));
	m[2] = 1;
	CU_ASSERT_EQUAL(amthi_parse_response(m, sizeof(state), AMTHI_CMD_GET_PROVISIONING_STATE,
					     &st, &body, &blen, err, sizeof(err)), AMTHI_EBADMSG);
	/* A request echoed back (no response bit) is not an answer. */
	memcpy(m, state, sizeof(state));
	m[6] = 0;
	CU_ASSERT_EQUAL(amthi_parse_response(m, sizeof(state), AMTHI_CMD_GET_PROVISIONING_STATE,
					     &st, &body, &blen, err, sizeof(err)), AMTHI_EBADMSG);
	/* Length field larger than the message (a classic over-read). */
	memcpy(m, state, sizeof(state));
	m[8] = 0xff;
	m[9] = 0xff;
	CU_ASSERT_EQUAL(amthi_parse_response(m, sizeof(state), AMTHI_CMD_GET_PROVISIONING_STATE,
					     &st, &body, &blen, err, sizeof(err)), AMTHI_EBADMSG);
	/* Oversized: more than any AMTHI message. */
	{
		uint8_t *huge = calloc(1, AMTHI_MAX_MSG + 16);

		CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
		memcpy(huge, state, 8);
		amthi_put32(huge + 8, AMTHI_MAX_MSG + 4);
		CU_ASSERT_EQUAL(amthi_parse_response(huge, AMTHI_MAX_MSG + 16,
						     AMTHI_CMD_GET_PROVISIONING_STATE, &st, &body,
						     &blen, err, sizeof(err)), AMTHI_EBADMSG);
		free(huge);
	}
	/* A failure status is not a malformed answer: the caller reads the status. */
	CU_ASSERT_EQUAL_FATAL(answer(AMTHI_CMD_START_CONFIGURATION, AMT_STATUS_INVALID_AMT_MODE,
				     NULL, 0), 16);
	CU_ASSERT_EQUAL(amthi_parse_response(out, 16, AMTHI_CMD_START_CONFIGURATION, &st, &body,
					     &blen, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_EQUAL(st, AMT_STATUS_INVALID_AMT_MODE);
	CU_ASSERT_EQUAL(blen, 0);
	/* u32 bodies are exactly 4 bytes. */
	CU_ASSERT_EQUAL(amthi_dec_u32(body, 0, &v, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_dec_u32(state, 5, &v, err, sizeof(err)), AMTHI_EBADMSG);
}

/* A code-versions body: BIOS[65], count, then count x (u16 len + 20, u16 len + 20). */
static size_t code_versions_body(uint8_t *b, const char *bios, const char *const *pairs,
				 unsigned n)
{
	size_t at = AMTHI_BIOS_VERSION_LEN + 4;

	memset(b, 0, at + (size_t)n * AMTHI_VERSION_TYPE_LEN);
	memcpy(b, bios, strlen(bios));
	amthi_put32(b + AMTHI_BIOS_VERSION_LEN, n);
	for (unsigned i = 0; i < n; i++) {
		for (int k = 0; k < 2; k++) {
			const char *s = pairs[2 * i + k];

			amthi_put16(b + at, (uint16_t)strlen(s));
			memcpy(b + at + 2, s, strlen(s));
			at += 2 + AMTHI_UNICODE_LEN;
		}
	}
	return at;
}

static void test_code_versions(void)
{
	static const char *const pairs[] = {"AMT", "11.8.50", "Sku", "16392", "Build Number",
					    "3425"};
	uint8_t b[AMTHI_MAX_MSG];
	struct amthi_code_versions cv;
	char err[160];
	size_t n = code_versions_body(b, "BIOS-1.2.3", pairs, 3);

	CU_ASSERT_EQUAL(n, 65 + 4 + 3 * 44);
	/* The AMT entry's version string sits at 69 + 22 + 2. */
	CU_ASSERT_EQUAL(memcmp(b + 69 + 24, "11.8.50", 7), 0);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_code_versions(b, n, &cv, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_STRING_EQUAL(cv.bios, "BIOS-1.2.3");
	CU_ASSERT_EQUAL(cv.n, 3);
	CU_ASSERT_STRING_EQUAL(amthi_version_of(&cv, "AMT"), "11.8.50");
	CU_ASSERT_STRING_EQUAL(amthi_version_of(&cv, "Sku"), "16392");
	CU_ASSERT_PTR_NULL(amthi_version_of(&cv, "Flash"));
	/* Truncated by one byte, one byte too many, a count the bytes do not hold. */
	CU_ASSERT_EQUAL(amthi_dec_code_versions(b, n - 1, &cv, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_dec_code_versions(b, n + 1, &cv, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_dec_code_versions(b, 68, &cv, err, sizeof(err)), AMTHI_EBADMSG);
	amthi_put32(b + 65, 51);
	CU_ASSERT_EQUAL(amthi_dec_code_versions(b, n, &cv, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "count 51"));
	amthi_put32(b + 65, 3);
	/* A string length past its 20-byte field. */
	amthi_put16(b + 69, 21);
	CU_ASSERT_EQUAL(amthi_dec_code_versions(b, n, &cv, err, sizeof(err)), AMTHI_EBADMSG);
	amthi_put16(b + 69, 3);
	/* A control character in a version string. */
	b[69 + 24] = 0x07;
	CU_ASSERT_EQUAL(amthi_dec_code_versions(b, n, &cv, err, sizeof(err)), AMTHI_EBADMSG);
	b[69 + 24] = '1';
	/* A BIOS version that fills all 65 bytes (no NUL) is still bounded. */
	memset(b, 'B', 65);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_code_versions(b, n, &cv, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_EQUAL(strlen(cv.bios), 65);
}

static void test_uuid(void)
{
	/* SMBIOS order of 4c4c4544-0042-3010-8050-b4c04f4e3432. */
	static const uint8_t raw[16] = {0x44, 0x45, 0x4c, 0x4c, 0x42, 0x00, 0x10, 0x30,
					0x80, 0x50, 0xb4, 0xc0, 0x4f, 0x4e, 0x34, 0x32};
	uint8_t back[16];
	char s[37], err[160];

	CU_ASSERT_EQUAL_FATAL(amthi_dec_uuid(raw, 16, s, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_STRING_EQUAL(s, "4c4c4544-0042-3010-8050-b4c04f4e3432");
	CU_ASSERT_EQUAL_FATAL(amthi_uuid_from_text(s, back), 0);
	CU_ASSERT_EQUAL(memcmp(back, raw, 16), 0);
	CU_ASSERT_EQUAL(amthi_dec_uuid(raw, 15, s, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_dec_uuid(raw, 17, s, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_uuid_from_text("4c4c4544-0042-3010-8050-b4c04f4e343", back), -1);
	CU_ASSERT_EQUAL(amthi_uuid_from_text("4c4c4544x0042-3010-8050-b4c04f4e3432", back), -1);
	CU_ASSERT_EQUAL(amthi_uuid_from_text("4c4c4544-0042-3010-8050-b4c04f4e343g", back), -1);
}

static void test_dns_suffix(void)
{
	static const uint8_t ok[] = {11, 0, 'c', 'o', 'n', 't', 'o', 's', 'o', '.', 'c', 'o', 'm'};
	static const uint8_t empty[] = {0, 0};
	uint8_t b[300];
	char s[AMTHI_DNS_SUFFIX_MAX + 1], err[160];

	CU_ASSERT_EQUAL_FATAL(amthi_dec_ansi_string(ok, sizeof(ok), AMTHI_DNS_SUFFIX_MAX, s,
						    sizeof(s), err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_STRING_EQUAL(s, "contoso.com");
	CU_ASSERT_EQUAL_FATAL(amthi_dec_ansi_string(empty, 2, AMTHI_DNS_SUFFIX_MAX, s, sizeof(s),
						    err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_STRING_EQUAL(s, "");
	CU_ASSERT_EQUAL(amthi_dec_ansi_string(ok, 1, AMTHI_DNS_SUFFIX_MAX, s, sizeof(s), err,
					      sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_dec_ansi_string(ok, sizeof(ok) - 1, AMTHI_DNS_SUFFIX_MAX, s,
					      sizeof(s), err, sizeof(err)), AMTHI_EBADMSG);
	memset(b, 'a', sizeof(b));
	memcpy(b, ok, sizeof(ok));
	CU_ASSERT_EQUAL(amthi_dec_ansi_string(b, sizeof(ok) + 1, AMTHI_DNS_SUFFIX_MAX, s,
					      sizeof(s), err, sizeof(err)), AMTHI_EBADMSG);
	/* A length past our bound, even when the bytes are there. */
	amthi_put16(b, 256);
	CU_ASSERT_EQUAL(amthi_dec_ansi_string(b, 258, AMTHI_DNS_SUFFIX_MAX, s, sizeof(s), err,
					      sizeof(err)), AMTHI_EBADMSG);
	/* Bytes that are not printable ASCII. */
	memcpy(b, ok, sizeof(ok));
	b[5] = '\n';
	CU_ASSERT_EQUAL(amthi_dec_ansi_string(b, sizeof(ok), AMTHI_DNS_SUFFIX_MAX, s, sizeof(s),
					      err, sizeof(err)), AMTHI_EBADMSG);
}

static void test_lan_settings(void)
{
	/* enabled 1, 192.168.1.42, DHCP 1, mode 1 (active), link 1, MAC 54:ee:75:49:b2:19 */
	static const uint8_t b[20] = {1, 0, 0, 0, 42, 1, 168, 192, 1, 0, 0, 0, 1, 1,
				      0x54, 0xee, 0x75, 0x49, 0xb2, 0x19};
	struct amthi_lan lan;
	char err[160];

	CU_ASSERT_EQUAL_FATAL(amthi_dec_lan(b, 20, &lan, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_EQUAL(lan.enabled, 1);
	CU_ASSERT_EQUAL(lan.ipv4, 0xC0A8012Au);
	CU_ASSERT_EQUAL(lan.dhcp_enabled, 1);
	CU_ASSERT_EQUAL(lan.dhcp_mode, 1);
	CU_ASSERT_EQUAL(lan.link_up, 1);
	CU_ASSERT_EQUAL(lan.mac[0], 0x54);
	CU_ASSERT_EQUAL(lan.mac[5], 0x19);
	CU_ASSERT_EQUAL(amthi_dec_lan(b, 19, &lan, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_dec_lan(b, 21, &lan, err, sizeof(err)), AMTHI_EBADMSG);
}

static void test_hash_handles(void)
{
	uint8_t b[4 + 4 * 34];
	struct amthi_hash_handles hh;
	char err[160];

	amthi_put32(b, 3);
	amthi_put32(b + 4, 0);
	amthi_put32(b + 8, 1);
	amthi_put32(b + 12, 7);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_hash_handles(b, 16, &hh, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_EQUAL(hh.n, 3);
	CU_ASSERT_EQUAL(hh.h[2], 7);
	CU_ASSERT_EQUAL(amthi_dec_hash_handles(b, 15, &hh, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_dec_hash_handles(b, 20, &hh, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_dec_hash_handles(b, 3, &hh, err, sizeof(err)), AMTHI_EBADMSG);
	amthi_put32(b, 34);
	CU_ASSERT_EQUAL(amthi_dec_hash_handles(b, sizeof(b), &hh, err, sizeof(err)),
			AMTHI_EBADMSG);
	amthi_put32(b, 0);
	CU_ASSERT_EQUAL(amthi_dec_hash_handles(b, 4, &hh, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_EQUAL(hh.n, 0);
}

static void test_hash_entry(void)
{
	/* IsDefault 1 @0, IsActive 1 @4, hash[64] @8, algorithm @72, name (u16 + bytes) @73 */
	uint8_t b[80 + 8];
	struct amthi_hash_entry e;
	char err[160];

	memset(b, 0, sizeof(b));
	amthi_put32(b, 1);
	amthi_put32(b + 4, 1);
	for (int i = 0; i < 32; i++)
		b[8 + i] = (uint8_t)(0xa0 + i);
	b[72] = 2;
	amthi_put16(b + 73, 8);
	memcpy(b + 75, "lab root", 8);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_hash_entry(b, 83, &e, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_EQUAL(e.is_default, 1);
	CU_ASSERT_EQUAL(e.is_active, 1);
	CU_ASSERT_EQUAL(e.algorithm, 2);
	CU_ASSERT_EQUAL(amthi_hash_size(e.algorithm), 32);
	CU_ASSERT_STRING_EQUAL(amthi_hash_name(e.algorithm), "SHA256");
	CU_ASSERT_EQUAL(e.hash[31], 0xa0 + 31);
	CU_ASSERT_STRING_EQUAL(e.name, "lab root");
	CU_ASSERT_EQUAL(amthi_dec_hash_entry(b, 82, &e, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_dec_hash_entry(b, 84, &e, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_EQUAL(amthi_dec_hash_entry(b, 74, &e, err, sizeof(err)), AMTHI_EBADMSG);
	b[72] = 9;
	CU_ASSERT_EQUAL(amthi_dec_hash_entry(b, 83, &e, err, sizeof(err)), AMTHI_EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "algorithm 9"));
}

/* Random bytes never crash a decoder, and whatever one accepts is bounded and terminated. */
static void test_garbage_never_crashes(void)
{
	static const uint32_t cmds[] = {AMTHI_CMD_GET_CODE_VERSIONS, AMTHI_CMD_GET_UUID,
					AMTHI_CMD_GET_PKI_FQDN_SUFFIX,
					AMTHI_CMD_ENUMERATE_HASH_HANDLES,
					AMTHI_CMD_GET_CERTHASH_ENTRY,
					AMTHI_CMD_GET_LAN_INTERFACE_SETTINGS};
	uint8_t m[600];
	uint32_t x = 12345;
	char err[160], s[AMTHI_DNS_SUFFIX_MAX + 1];

	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(x % sizeof(m)), blen;
		uint32_t st, cmd = cmds[round % 6];
		const uint8_t *body;
		struct amthi_code_versions cv;
		struct amthi_hash_handles hh;
		struct amthi_hash_entry he;
		struct amthi_lan lan;

		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			m[i] = (uint8_t)(x >> 16);
		}
		/* Half the time, a valid header around the garbage: the decoders get it. */
		if (round & 1 && len >= 16) {
			m[0] = 1;
			m[1] = 1;
			m[2] = m[3] = 0;
			amthi_put32(m + 4, cmd | AMTHI_RESPONSE_BIT);
			amthi_put32(m + 8, (uint32_t)(len - 12));
			amthi_put32(m + 12, 0);
		}
		x = x * 1103515245u + 12345u;
		if (amthi_parse_response(m, len, cmd, &st, &body, &blen, err, sizeof(err)))
			continue;
		if (!amthi_dec_code_versions(body, blen, &cv, err, sizeof(err))) {
			CU_ASSERT(strlen(cv.bios) <= AMTHI_BIOS_VERSION_LEN);
			CU_ASSERT(cv.n <= AMTHI_VERSIONS_MAX);
		}
		if (!amthi_dec_ansi_string(body, blen, AMTHI_DNS_SUFFIX_MAX, s, sizeof(s), err,
					   sizeof(err)))
			CU_ASSERT(strlen(s) <= AMTHI_DNS_SUFFIX_MAX);
		if (!amthi_dec_hash_handles(body, blen, &hh, err, sizeof(err)))
			CU_ASSERT(hh.n <= AMTHI_HASH_MAX);
		if (!amthi_dec_hash_entry(body, blen, &he, err, sizeof(err)))
			CU_ASSERT(strlen(he.name) <= AMTHI_HASH_NAME_MAX);
		(void)amthi_dec_lan(body, blen, &lan, err, sizeof(err));
		(void)amthi_dec_uuid(body, blen, s, err, sizeof(err));
	}
}

static void test_status_names(void)
{
	char buf[32];

	CU_ASSERT_STRING_EQUAL(amthi_status_name(2, buf, sizeof(buf)), "AMT_STATUS_NOT_READY");
	CU_ASSERT_STRING_EQUAL(amthi_status_name(2053, buf, sizeof(buf)),
			       "AMT_STATUS_INVALID_HANDLE");
	CU_ASSERT_STRING_EQUAL(amthi_status_name(999, buf, sizeof(buf)), "AMT status 999");
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("agent.mei_msg", NULL, NULL);
	CU_add_test(s, "header-only requests", test_header_only_requests);
	CU_add_test(s, "LAN and hash entry requests", test_lan_and_hash_entry_requests);
	CU_add_test(s, "SetProvisioningServerOTP request", test_set_otp_request);
	CU_add_test(s, "StartConfigurationEx request", test_start_configuration_ex_request);
	CU_add_test(s, "answer header checks", test_response_header_checks);
	CU_add_test(s, "GetCodeVersions answer", test_code_versions);
	CU_add_test(s, "GetUUID answer", test_uuid);
	CU_add_test(s, "GetPkiFQDNSuffix answer", test_dns_suffix);
	CU_add_test(s, "GetLANInterfaceSettings answer", test_lan_settings);
	CU_add_test(s, "EnumerateHashHandles answer", test_hash_handles);
	CU_add_test(s, "GetCertHashEntry answer", test_hash_entry);
	CU_add_test(s, "garbage never crashes a decoder", test_garbage_never_crashes);
	CU_add_test(s, "status names", test_status_names);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
