/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_at_wire.c - the private wire log masks secrets in device responses as well as in
 * requests (at_wire.c): OTP, passwords, keys; also in malformed and truncated bodies.
 * And the PullResponse reader (at_xml.c) under both namespace layouts.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "at_internal.h"

static char *mask(const char *body)
{
	struct at_buf b = {0};

	at_wire_mask(body, strlen(body), &b);
	return b.p ? b.p : strdup("");
}

static void test_otp_masked(void)
{
	char *m = mask("<a:Envelope><a:Body><g:AMT_SetupAndConfigurationService>"
		       "<g:ProvisioningMode>4</g:ProvisioningMode>"
		       "<g:ProvisioningServerOTP>U2VjcmV0MFRQMTIz</g:ProvisioningServerOTP>"
		       "<g:ProvisioningState>1</g:ProvisioningState>"
		       "</g:AMT_SetupAndConfigurationService></a:Body></a:Envelope>");

	CU_ASSERT_PTR_NULL(strstr(m, "U2VjcmV0MFRQMTIz"));
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "<g:ProvisioningServerOTP>(secret)</g:ProvisioningServerOTP>"));
	/* Everything else stays readable. */
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "<g:ProvisioningState>1</g:ProvisioningState>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "<g:ProvisioningMode>4</g:ProvisioningMode>"));
	free(m);
}

static void test_other_secrets(void)
{
	char *m = mask("<Body><h:Password attr=\"x\">pw1</h:Password><KeyBlob>KEY==</KeyBlob>"
		       "<x:PSKPassPhrase><![CDATA[psk<phrase]]></x:PSKPassPhrase><Empty/>"
		       "<DigestPassword/><Name>visible</Name></Body>");

	CU_ASSERT_PTR_NULL(strstr(m, "pw1"));
	CU_ASSERT_PTR_NULL(strstr(m, "KEY=="));
	CU_ASSERT_PTR_NULL(strstr(m, "psk"));
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "<Name>visible</Name>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "<DigestPassword/>"));
	free(m);
}

static void test_truncated(void)
{
	/* Cut inside a secret: nothing after the opening tag shows. */
	char *m = mask("<Body><ProvisioningServerOTP>U2VjcmV0");

	CU_ASSERT_PTR_NULL(strstr(m, "U2VjcmV0"));
	free(m);
	/* Cut inside a tag, and a body with no tags at all. */
	m = mask("<Body><Provisioning");
	CU_ASSERT_STRING_EQUAL(m, "<Body><Provisioning");
	free(m);
	m = mask("not xml at all");
	CU_ASSERT_STRING_EQUAL(m, "not xml at all");
	free(m);
	m = mask("");
	CU_ASSERT_STRING_EQUAL(m, "");
	free(m);
}

/* Issue 17 item 10: a PullResponse reads the same whether the items' namespace is declared
 * once on the Envelope (the firmware) or on each item (amtsim before). */
static json_t *pull_items(const char *env_ns, const char *item_ns)
{
	char xml[2048];
	xmlDocPtr doc;
	json_t *items = json_array();

	snprintf(xml, sizeof(xml),
		 "<a:Envelope xmlns:a=\"http://www.w3.org/2003/05/soap-envelope\" "
		 "xmlns:d=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\"%s><a:Header/>"
		 "<a:Body><d:PullResponse><d:Items>"
		 "<h:AMT_PublicKeyCertificate%s><h:InstanceID>Intel(r) AMT Certificate: Handle: 0"
		 "</h:InstanceID><h:IsTrustedRootCertificate>false</h:IsTrustedRootCertificate>"
		 "</h:AMT_PublicKeyCertificate>"
		 "<h:AMT_PublicKeyCertificate%s><h:InstanceID>Intel(r) AMT Certificate: Handle: 1"
		 "</h:InstanceID><h:IsTrustedRootCertificate>true</h:IsTrustedRootCertificate>"
		 "</h:AMT_PublicKeyCertificate>"
		 "</d:Items><d:EndOfSequence/></d:PullResponse></a:Body></a:Envelope>",
		 env_ns, item_ns, item_ns);
	doc = at_xml_parse(xml, strlen(xml));
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	at_xml_pull_items(xmlDocGetRootElement(doc), items);
	xmlFreeDoc(doc);
	return items;
}

static void test_pull_layouts(void)
{
	static const char ns[] =
		" xmlns:h=\"http://intel.com/wbem/wscim/1/amt-schema/1/AMT_PublicKeyCertificate\"";
	json_t *fw = pull_items(ns, ""), *each = pull_items("", ns);

	CU_ASSERT_EQUAL(json_array_size(fw), 2);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(fw, 1),
								  "IsTrustedRootCertificate")),
			       "true");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(fw, 0), "_class")),
			       "AMT_PublicKeyCertificate");
	CU_ASSERT(json_equal(fw, each));
	json_decref(fw);
	json_decref(each);
}

int main(void)
{
	CU_pSuite su;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	su = CU_add_suite("at_wire", NULL, NULL);
	CU_add_test(su, "response OTP masked in the wire log", test_otp_masked);
	CU_add_test(su, "passwords, keys, PSK masked", test_other_secrets);
	CU_add_test(su, "truncated and malformed bodies", test_truncated);
	CU_add_test(su, "Pull items: namespace on the Envelope or on each item", test_pull_layouts);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
