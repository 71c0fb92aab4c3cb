/* SPDX-License-Identifier: Apache-2.0 */
/* WS-Man: Get, OTP visibility, unknown resource fault, DTD refusal, a method. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "device.h"
#include "http.h"
#include "wsman.h"

void register_sim_wsman_tests(void);

#define ENV_FMT \
	"<?xml version=\"1.0\" encoding=\"utf-8\"?><Envelope " \
	"xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" " \
	"xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" " \
	"xmlns=\"http://www.w3.org/2003/05/soap-envelope\"><Header><a:Action>%s</a:Action>" \
	"<a:To>/wsman</a:To><w:ResourceURI>%s</w:ResourceURI><a:MessageID>7</a:MessageID>" \
	"</Header><Body>%s</Body></Envelope>"

static int run(struct device *d, const char *action, const char *uri, const char *body,
	       struct http_response *r)
{
	char buf[8192];
	struct http_request q;

	memset(&q, 0, sizeof(q));
	memset(r, 0, sizeof(*r));
	snprintf(buf, sizeof(buf), ENV_FMT, action, uri, body);
	q.body = buf;
	q.body_len = strlen(buf);
	wsman_handle(d, &q, r);
	return r->status;
}

#define SETUP AMT_URI "AMT_SetupAndConfigurationService"

static void test_get_and_otp(void)
{
	struct device d;
	struct http_response r;

	device_init(&d, "w", "11.8.50");
	CU_ASSERT_EQUAL(run(&d, NS_WXF "/Get", AMT_URI "AMT_GeneralSettings", "", &r), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body.data, d.realm));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body.data, "<b:RelatesTo>7</b:RelatesTo>"));
	sbuf_free(&r.body);
	device_set_otp(&d, "Abcdefgh1234");
	CU_ASSERT_EQUAL(run(&d, NS_WXF "/Get", SETUP, "", &r), 200);
	CU_ASSERT_PTR_NULL(strstr(r.body.data, "ProvisioningServerOTP")); /* PRE: not readable */
	sbuf_free(&r.body);
	d.prov_state = DEV_IN;
	CU_ASSERT_EQUAL(run(&d, NS_WXF "/Get", SETUP, "", &r), 200);
	/* base64("Abcdefgh1234") */
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body.data, "QWJjZGVmZ2gxMjM0"));
	sbuf_free(&r.body);
	CU_ASSERT_EQUAL(run(&d, SETUP "/CommitChanges", SETUP,
			    "<h:CommitChanges_INPUT xmlns:h=\"" SETUP "\"></h:CommitChanges_INPUT>", &r),
			200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body.data, "<h:ReturnValue>0</h:ReturnValue>"));
	CU_ASSERT_EQUAL(d.prov_state, DEV_POST);
	sbuf_free(&r.body);
	device_clear(&d);
}

static void test_faults(void)
{
	struct device d;
	struct http_response r;
	struct http_request q;
	const char *dtd = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]>"
			  "<Envelope xmlns=\"http://www.w3.org/2003/05/soap-envelope\">&e;</Envelope>";

	device_init(&d, "w", "11.8.50");
	CU_ASSERT_EQUAL(run(&d, NS_WXF "/Get", AMT_URI "AMT_NoSuchClass", "", &r), 400);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body.data, "DestinationUnreachable"));
	sbuf_free(&r.body);
	CU_ASSERT_EQUAL(run(&d, SETUP "/NoSuchMethod", SETUP, "", &r), 400);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body.data, "ActionNotSupported"));
	sbuf_free(&r.body);
	memset(&q, 0, sizeof(q));
	memset(&r, 0, sizeof(r));
	q.body = (char *)dtd;
	q.body_len = strlen(dtd);
	wsman_handle(&d, &q, &r);
	CU_ASSERT_EQUAL(r.status, 400);
	CU_ASSERT_PTR_NULL(strstr(r.body.data, "boom"));
	sbuf_free(&r.body);
	device_clear(&d);
}

static void test_enumerate_pull(void)
{
	struct device d;
	struct http_response r;
	char ctx[64] = "", pull[512];
	const char *p;

	device_init(&d, "w", "11.8.50");
	CU_ASSERT_EQUAL(run(&d, NS_WSEN "/Enumerate", CIM_URI "CIM_SoftwareIdentity",
			    "<Enumerate xmlns=\"" NS_WSEN "\" />", &r), 200);
	p = strstr(r.body.data, "<d:EnumerationContext>");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	snprintf(ctx, sizeof(ctx), "%.35s", p + 22);
	sbuf_free(&r.body);
	snprintf(pull, sizeof(pull), "<Pull xmlns=\"" NS_WSEN "\"><EnumerationContext>%s"
		 "</EnumerationContext><MaxElements>999</MaxElements></Pull>", ctx);
	CU_ASSERT_EQUAL(run(&d, NS_WSEN "/Pull", CIM_URI "CIM_SoftwareIdentity", pull, &r), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body.data, "<h:InstanceID>AMT</h:InstanceID>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body.data, "EndOfSequence"));
	/* The firmware's layout (issue 17 item 10): the items' namespace once, on the
	 * Envelope, and the items bare. */
	{
		const char *hns = strstr(r.body.data, " xmlns:h=\"" CIM_URI "CIM_SoftwareIdentity\"");
		const char *hdr = strstr(r.body.data, "<a:Header>");

		CU_ASSERT(hns && hdr && hns < hdr);
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body.data, "<d:Items><h:CIM_SoftwareIdentity><h:"));
	CU_ASSERT_PTR_NULL(strstr(strstr(r.body.data, "<d:Items>"), "xmlns:h"));
	sbuf_free(&r.body);
	device_clear(&d);
}

void register_sim_wsman_tests(void)
{
	CU_pSuite s = CU_add_suite("sim.wsman", NULL, NULL);

	CU_add_test(s, "Get, OTP, CommitChanges", test_get_and_otp);
	CU_add_test(s, "faults and DTD refusal", test_faults);
	CU_add_test(s, "Enumerate and Pull", test_enumerate_pull);
}
