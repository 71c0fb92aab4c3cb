/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated MEI's answers (sim/mei.c), read back with the agent's own decoders: what
 * the firmware reports comes from the device, and the calls change the device as the
 * network side then sees it (OTP, pre -> in -> pre).
 */
#include <string.h>

#include <CUnit/Basic.h>

#include "device.h"
#include "mei.h"
#include "mei_msg.h"

void register_sim_mei_tests(void);

static uint8_t req[AMTHI_MAX_MSG], ans[AMTHI_MAX_MSG];

/* Sends @p len bytes of req to @p d; returns the status, body in *b and *bl (-1: malformed). */
static long call(struct device *d, size_t len, uint32_t cmd, const uint8_t **b, size_t *bl)
{
	size_t n = sim_mei_answer(d, req, len, ans, sizeof(ans));
	uint32_t st;
	char err[200];

	if (amthi_parse_response(ans, n, cmd, &st, b, bl, err, sizeof(err)) != AMTHI_OK)
		return -1;
	return st;
}

static void test_reports_the_device(void)
{
	struct device d;
	const uint8_t *b;
	size_t bl;
	struct amthi_code_versions cv;
	struct amthi_lan lan;
	struct amthi_hash_handles hh;
	struct amthi_hash_entry he;
	char s[64], err[200];
	uint32_t v;

	CU_ASSERT_EQUAL_FATAL(device_init(&d, "pc1", "12.0.45"), 0);
	snprintf(d.wired.ip, sizeof(d.wired.ip), "127.9.0.1");
	snprintf(d.pki_dns_suffix, sizeof(d.pki_dns_suffix), "contoso.com");
	CU_ASSERT_EQUAL(call(&d, amthi_req_simple(AMTHI_CMD_GET_CODE_VERSIONS, req, sizeof(req)),
			     AMTHI_CMD_GET_CODE_VERSIONS, &b, &bl), 0);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_code_versions(b, bl, &cv, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_STRING_EQUAL(amthi_version_of(&cv, "AMT"), "12.0.45");
	CU_ASSERT_EQUAL(call(&d, amthi_req_simple(AMTHI_CMD_GET_UUID, req, sizeof(req)),
			     AMTHI_CMD_GET_UUID, &b, &bl), 0);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_uuid(b, bl, s, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_STRING_EQUAL(s, d.uuid);
	CU_ASSERT_EQUAL(call(&d, amthi_req_simple(AMTHI_CMD_GET_PKI_FQDN_SUFFIX, req, sizeof(req)),
			     AMTHI_CMD_GET_PKI_FQDN_SUFFIX, &b, &bl), 0);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_ansi_string(b, bl, 255, s, sizeof(s), err, sizeof(err)),
			      AMTHI_OK);
	CU_ASSERT_STRING_EQUAL(s, "contoso.com");
	CU_ASSERT_EQUAL(call(&d, amthi_req_lan(0, req, sizeof(req)),
			     AMTHI_CMD_GET_LAN_INTERFACE_SETTINGS, &b, &bl), 0);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_lan(b, bl, &lan, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_EQUAL(lan.ipv4, 0x7F090001u);
	CU_ASSERT_EQUAL(lan.mac[0], 0x00);
	CU_ASSERT_EQUAL(lan.mac[1], 0x16);
	CU_ASSERT_EQUAL(call(&d, amthi_req_lan(2, req, sizeof(req)),
			     AMTHI_CMD_GET_LAN_INTERFACE_SETTINGS, &b, &bl),
			AMT_STATUS_INVALID_PARAMETER);
	CU_ASSERT_EQUAL(call(&d, amthi_req_simple(AMTHI_CMD_ENUMERATE_HASH_HANDLES, req,
						  sizeof(req)),
			     AMTHI_CMD_ENUMERATE_HASH_HANDLES, &b, &bl), 0);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_hash_handles(b, bl, &hh, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_EQUAL_FATAL(hh.n, (unsigned)d.n_hashes);
	CU_ASSERT_EQUAL(call(&d, amthi_req_hash_entry(hh.h[0], req, sizeof(req)),
			     AMTHI_CMD_GET_CERTHASH_ENTRY, &b, &bl), 0);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_hash_entry(b, bl, &he, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_STRING_EQUAL(he.name, d.hashes[0].name);
	CU_ASSERT_EQUAL(memcmp(he.hash, d.hashes[0].hash, amthi_hash_size(he.algorithm)), 0);
	CU_ASSERT_EQUAL(call(&d, amthi_req_hash_entry(999, req, sizeof(req)),
			     AMTHI_CMD_GET_CERTHASH_ENTRY, &b, &bl), AMT_STATUS_INVALID_HANDLE);
	CU_ASSERT_EQUAL(call(&d, amthi_req_simple(AMTHI_CMD_GET_CONTROL_MODE, req, sizeof(req)),
			     AMTHI_CMD_GET_CONTROL_MODE, &b, &bl), 0);
	CU_ASSERT_EQUAL_FATAL(amthi_dec_u32(b, bl, &v, err, sizeof(err)), AMTHI_OK);
	CU_ASSERT_EQUAL(v, DEV_CM_NONE);
	device_clear(&d);
}

static void test_changes_the_device(void)
{
	struct device d;
	const uint8_t *b;
	size_t bl;

	CU_ASSERT_EQUAL_FATAL(device_init(&d, "pc1", "11.8.50"), 0);
	CU_ASSERT_EQUAL(call(&d, amthi_req_set_otp("Secret0TP123", req, sizeof(req)),
			     AMTHI_CMD_SET_PROVISIONING_SERVER_OTP, &b, &bl), 0);
	CU_ASSERT_STRING_EQUAL(d.otp, "Secret0TP123");
	CU_ASSERT_EQUAL(d.prov_state, DEV_PRE);
	CU_ASSERT_EQUAL(call(&d, amthi_req_start_configuration_ex(false, req, sizeof(req)),
			     AMTHI_CMD_START_CONFIGURATION_EX, &b, &bl), 0);
	CU_ASSERT_EQUAL(d.prov_state, DEV_IN);
	/* Only from pre. */
	CU_ASSERT_EQUAL(call(&d, amthi_req_start_configuration_ex(false, req, sizeof(req)),
			     AMTHI_CMD_START_CONFIGURATION_EX, &b, &bl), AMT_STATUS_INVALID_AMT_MODE);
	CU_ASSERT_EQUAL(call(&d, amthi_req_simple(AMTHI_CMD_STOP_CONFIGURATION, req, sizeof(req)),
			     AMTHI_CMD_STOP_CONFIGURATION, &b, &bl), 0);
	CU_ASSERT_EQUAL(d.prov_state, DEV_PRE);
	d.prov_state = DEV_POST;
	CU_ASSERT_EQUAL(call(&d, amthi_req_set_otp("Another0TP99", req, sizeof(req)),
			     AMTHI_CMD_SET_PROVISIONING_SERVER_OTP, &b, &bl),
			AMT_STATUS_INVALID_AMT_MODE);
	CU_ASSERT_STRING_EQUAL(d.otp, "Secret0TP123");
	/* A header whose length lies, and an OTP string whose length lies. */
	amthi_req_set_otp("Another0TP99", req, sizeof(req));
	d.prov_state = DEV_PRE;
	CU_ASSERT_EQUAL(call(&d, 12 + 2 + 11, AMTHI_CMD_SET_PROVISIONING_SERVER_OTP, &b, &bl),
			AMT_STATUS_INVALID_MESSAGE_LENGTH);
	amthi_put16(req + 12, 40);
	CU_ASSERT_EQUAL(call(&d, 12 + 2 + 12, AMTHI_CMD_SET_PROVISIONING_SERVER_OTP, &b, &bl),
			AMT_STATUS_INVALID_MESSAGE_LENGTH);
	CU_ASSERT_STRING_EQUAL(d.otp, "Secret0TP123");
	/* StartConfigurationEx came with AMT 6.0. */
	device_clear(&d);
	CU_ASSERT_EQUAL_FATAL(device_init(&d, "old", "5.2.10"), 0);
	CU_ASSERT_EQUAL(call(&d, amthi_req_start_configuration_ex(false, req, sizeof(req)),
			     AMTHI_CMD_START_CONFIGURATION_EX, &b, &bl), AMT_STATUS_INVALID_PARAMETER);
	CU_ASSERT_EQUAL(call(&d, amthi_req_simple(AMTHI_CMD_START_CONFIGURATION, req, sizeof(req)),
			     AMTHI_CMD_START_CONFIGURATION, &b, &bl), 0);
	CU_ASSERT_EQUAL(d.prov_state, DEV_IN);
	device_clear(&d);
}

static void test_faults(void)
{
	struct device d;
	const uint8_t *b;
	size_t bl, n;

	CU_ASSERT_EQUAL_FATAL(device_init(&d, "pc1", "12.0.45"), 0);
	n = amthi_req_simple(AMTHI_CMD_GET_PROVISIONING_STATE, req, sizeof(req));
	d.faults.mei = SIM_MEI_DISABLED;
	CU_ASSERT_EQUAL(sim_mei_answer(&d, req, n, ans, sizeof(ans)), 0);
	d.faults.mei = SIM_MEI_NOT_READY;
	CU_ASSERT_EQUAL(call(&d, n, AMTHI_CMD_GET_PROVISIONING_STATE, &b, &bl),
			AMT_STATUS_NOT_READY);
	CU_ASSERT_EQUAL(sim_mei_fault_parse("busy"), SIM_MEI_BUSY);
	CU_ASSERT_EQUAL(sim_mei_fault_parse("none"), SIM_MEI_NORMAL);
	CU_ASSERT_EQUAL(sim_mei_fault_parse("sleepy"), -1);
	CU_ASSERT_EQUAL(sim_mei_fault_parse(NULL), -1);
	/* Short garbage gets an INVALID_MESSAGE_LENGTH answer, never a crash. */
	d.faults.mei = SIM_MEI_NORMAL;
	memset(req, 0xff, 64);
	for (size_t len = 0; len < 64; len++)
		CU_ASSERT(sim_mei_answer(&d, req, len, ans, sizeof(ans)) >= 16);
	device_clear(&d);
}

void register_sim_mei_tests(void)
{
	CU_pSuite s = CU_add_suite("sim.mei", NULL, NULL);

	CU_add_test(s, "reports the device", test_reports_the_device);
	CU_add_test(s, "changes the device", test_changes_the_device);
	CU_add_test(s, "faults and garbage", test_faults);
}
