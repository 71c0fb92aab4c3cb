/* SPDX-License-Identifier: Apache-2.0 */
/* The registration checks shared by `amtprov device add|register` and the HTTPS API
 * (R-PROV-01/02/03). */
#include <string.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "device_input.h"
#include "device_state.h"

#define SHA256_HEX "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static struct device_input good(void)
{
	struct device_input in = {.fqdn = "pc1.contoso.com",
				  .uuid = "11111111-2222-4333-8444-555555555555",
				  .amt_version = "11.8.50",
				  .wired_ip = "10.0.0.5",
				  .otp_hash = SHA256_HEX,
				  .provisioning_state = "pre"};

	return in;
}

static void test_field_validators(void)
{
	CU_ASSERT(device_input_fqdn_valid("pc1.contoso.com"));
	CU_ASSERT(!device_input_fqdn_valid("pc1"));
	CU_ASSERT(!device_input_fqdn_valid("bad host.contoso.com"));
	CU_ASSERT(!device_input_fqdn_valid("-a.contoso.com"));
	CU_ASSERT(!device_input_fqdn_valid("a-.contoso.com"));
	CU_ASSERT(!device_input_fqdn_valid("a.contoso.com."));
	CU_ASSERT(!device_input_fqdn_valid(""));
	CU_ASSERT(!device_input_fqdn_valid(NULL));
	CU_ASSERT(device_input_uuid_valid("11111111-2222-4333-8444-555555555555"));
	CU_ASSERT(device_input_uuid_valid("ABCDEF01-2222-4333-8444-555555555555"));
	CU_ASSERT(!device_input_uuid_valid("11111111222243338444555555555555"));
	CU_ASSERT(!device_input_uuid_valid("g1111111-2222-4333-8444-555555555555"));
	CU_ASSERT(device_input_version_valid("11.8"));
	CU_ASSERT(device_input_version_valid("16.1.25.2045"));
	CU_ASSERT(!device_input_version_valid("11"));
	CU_ASSERT(!device_input_version_valid("11.8."));
	CU_ASSERT(!device_input_version_valid("1.2.3.4.5"));
	CU_ASSERT(!device_input_version_valid("v11.8"));
	CU_ASSERT(device_input_hash_valid(SHA256_HEX));
	CU_ASSERT(!device_input_hash_valid("abc"));
	CU_ASSERT(!device_input_hash_valid("zz86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"));
	CU_ASSERT(device_input_ip_valid("10.0.0.1"));
	CU_ASSERT(device_input_ip_valid("fe80::1"));
	CU_ASSERT(!device_input_ip_valid("10.0.0.256"));
	CU_ASSERT(!device_input_ip_valid("host"));
	CU_ASSERT(device_input_text_valid("Contoso Ltd."));
	CU_ASSERT(!device_input_text_valid(""));
	CU_ASSERT(!device_input_text_valid("line\nbreak"));
}

static void test_check_names_the_first_bad_field(void)
{
	struct device_input in = good();
	const char *field = NULL;
	char msg[256];

	CU_ASSERT_EQUAL(device_input_check(&in, &field, msg, sizeof(msg)), AMTPROV_OK);
	in.uuid = "nope";
	CU_ASSERT_EQUAL(device_input_check(&in, &field, msg, sizeof(msg)), AMTPROV_E_INVALID);
	CU_ASSERT_STRING_EQUAL(field, "uuid");
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "'nope'"));
	in = good();
	in.amt_version = NULL;
	CU_ASSERT_EQUAL(device_input_check(&in, &field, msg, sizeof(msg)), AMTPROV_E_INVALID);
	CU_ASSERT_STRING_EQUAL(field, "amt_version");
	in = good();
	in.provisioning_state = "done";
	CU_ASSERT_EQUAL(device_input_check(&in, &field, msg, sizeof(msg)), AMTPROV_E_INVALID);
	CU_ASSERT_STRING_EQUAL(field, "provisioning_state");
	in = good();
	in.wired_ip = "10.0.0";
	CU_ASSERT_EQUAL(device_input_check(&in, &field, msg, sizeof(msg)), AMTPROV_E_INVALID);
	CU_ASSERT_STRING_EQUAL(field, "wired_ip");
	in = good();
	in.model = "a\tb";
	CU_ASSERT_EQUAL(device_input_check(&in, &field, msg, sizeof(msg)), AMTPROV_E_INVALID);
	CU_ASSERT_STRING_EQUAL(field, "model");
}

/* A wrong OTP hash is still near a secret: the message must not quote it (R-PROV-02). */
static void test_bad_otp_hash_is_not_quoted(void)
{
	struct device_input in = good();
	const char *field = NULL;
	char msg[256];

	in.otp_hash = "secret-ish-value";
	CU_ASSERT_EQUAL(device_input_check(&in, &field, msg, sizeof(msg)), AMTPROV_E_INVALID);
	CU_ASSERT_STRING_EQUAL(field, "otp_hash");
	CU_ASSERT_PTR_NULL(strstr(msg, "secret-ish"));
}

/* Control characters in a quoted value never reach a message (log line forging). */
static void test_quoted_values_are_sanitised(void)
{
	struct device_input in = good();
	const char *field = NULL;
	char msg[256];

	in.fqdn = "evil\nfake log line";
	CU_ASSERT_EQUAL(device_input_check(&in, &field, msg, sizeof(msg)), AMTPROV_E_INVALID);
	CU_ASSERT_PTR_NULL(strchr(msg, '\n'));
}

/* R-PROV-01: 'post' is refused, 'pre' and 'in' (and absent) are accepted. */
static void test_refusal_of_provisioned_devices(void)
{
	struct device_input in = good();
	char why[256];

	CU_ASSERT_EQUAL(device_input_refused(&in, why, sizeof(why)), 0);
	in.provisioning_state = "in";
	CU_ASSERT_EQUAL(device_input_refused(&in, why, sizeof(why)), 0);
	in.provisioning_state = NULL;
	CU_ASSERT_EQUAL(device_input_refused(&in, why, sizeof(why)), 0);
	in.provisioning_state = "post";
	CU_ASSERT_EQUAL(device_input_refused(&in, why, sizeof(why)), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "already provisioned"));
}

static void test_from_json_is_strict(void)
{
	struct device_input in;
	const char *field = NULL;
	char msg[256];
	json_t *j = json_loads("{\"fqdn\":\"pc1.contoso.com\",\"uuid\":\"11111111-2222-4333-8444-"
			       "555555555555\",\"amt_version\":\"11.8.50\",\"wireless\":true,"
			       "\"manufacturer\":\"Contoso\",\"model\":\"X1\"}",
			       0, NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(device_input_from_json(j, &in, &field, msg, sizeof(msg)), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(in.fqdn, "pc1.contoso.com");
	CU_ASSERT_EQUAL(in.wireless, 1);
	CU_ASSERT_STRING_EQUAL(in.model, "X1");
	CU_ASSERT_PTR_NULL(in.otp_hash);
	json_object_set_new(j, "color", json_string("red"));
	CU_ASSERT_EQUAL(device_input_from_json(j, &in, &field, msg, sizeof(msg)),
			AMTPROV_E_INVALID);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "unknown key 'color'"));
	json_object_del(j, "color");
	json_object_set_new(j, "wireless", json_string("yes"));
	CU_ASSERT_EQUAL(device_input_from_json(j, &in, &field, msg, sizeof(msg)),
			AMTPROV_E_INVALID);
	CU_ASSERT_STRING_EQUAL(field, "wireless");
	json_object_set_new(j, "wireless", json_false());
	json_object_set_new(j, "amt_version", json_integer(11));
	CU_ASSERT_EQUAL(device_input_from_json(j, &in, &field, msg, sizeof(msg)),
			AMTPROV_E_INVALID);
	CU_ASSERT_STRING_EQUAL(field, "amt_version");
	json_decref(j);
	j = json_array();
	CU_ASSERT_EQUAL(device_input_from_json(j, &in, &field, msg, sizeof(msg)),
			AMTPROV_E_INVALID);
	json_decref(j);
}

static void test_record_is_normalised(void)
{
	struct device_input in = good();
	struct store_device dev;
	char sum[256];

	in.fqdn = "PC1.Contoso.COM";
	in.uuid = "ABCDEF01-2222-4333-8444-555555555555";
	in.otp_hash = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
	in.wireless = 1;
	in.manufacturer = "Contoso";
	device_input_to_record(&in, &dev);
	CU_ASSERT_STRING_EQUAL(dev.fqdn, "pc1.contoso.com");
	CU_ASSERT_STRING_EQUAL(dev.uuid, "abcdef01-2222-4333-8444-555555555555");
	CU_ASSERT_STRING_EQUAL(dev.otp_hash, SHA256_HEX);
	CU_ASSERT_STRING_EQUAL(dev.state, ""); /* the registration sets it */
	CU_ASSERT_EQUAL(dev.wireless_capable, 1);
	device_input_summary(&in, sum, sizeof(sum));
	CU_ASSERT_PTR_NOT_NULL(strstr(sum, "AMT 11.8.50"));
	CU_ASSERT_PTR_NOT_NULL(strstr(sum, "Contoso"));
	CU_ASSERT_PTR_NULL(strstr(sum, "9F86"));
}

void register_device_input_tests(void);
void register_device_input_tests(void)
{
	CU_pSuite s = CU_add_suite("device_input", NULL, NULL);

	CU_add_test(s, "field validators", test_field_validators);
	CU_add_test(s, "check names the first bad field", test_check_names_the_first_bad_field);
	CU_add_test(s, "a bad OTP hash is not quoted", test_bad_otp_hash_is_not_quoted);
	CU_add_test(s, "quoted values are sanitised", test_quoted_values_are_sanitised);
	CU_add_test(s, "R-PROV-01: provisioned devices are refused",
		    test_refusal_of_provisioned_devices);
	CU_add_test(s, "JSON input is strict", test_from_json_is_strict);
	CU_add_test(s, "the record is normalised", test_record_is_normalised);
}
