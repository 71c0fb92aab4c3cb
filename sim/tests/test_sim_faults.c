/* SPDX-License-Identifier: Apache-2.0 */
/* Fault injection: parsing, drops, Digest refusals, latency, CommitChanges, flash limit,
 * wrong OTP, and that a seed makes every pattern repeat. */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "device.h"
#include "http.h"
#include "wsman.h"

void register_sim_faults_tests(void);

static json_t *js(const char *s)
{
	return json_loads(s, 0, NULL);
}

static void init(struct device *d, const char *fleet, const char *dev)
{
	json_t *f = fleet ? js(fleet) : NULL, *e = dev ? js(dev) : NULL;
	char err[256];

	device_init(d, "f1", "12.0.45");
	CU_ASSERT_EQUAL(device_apply_faults(d, f, e, err, sizeof(err)), 0);
	json_decref(f);
	json_decref(e);
}

static void test_parse(void)
{
	struct device d;
	json_t *bad = js("{\"drop_nht\": 3}");
	char err[256] = "";

	device_init(&d, "f1", "12.0.45");
	CU_ASSERT_EQUAL(device_apply_faults(&d, bad, NULL, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "drop_nht"));
	json_decref(bad);
	device_clear(&d);
	/* The device's own settings override the fleet's. */
	init(&d, "{\"latency_ms\": 10, \"commit_fail\": 1}", "{\"commit_fail\": 38}");
	CU_ASSERT_EQUAL(d.faults.latency_ms, 10);
	CU_ASSERT_EQUAL(d.faults.commit_fail, 38);
	device_clear(&d);
}

/* "hostile": the kind, the matching requests, the N-th one; bad kinds are refused. */
static void test_hostile_selection(void)
{
	struct device d;
	json_t *bad = js("{\"hostile\": \"rude\"}");
	char err[256] = "";

	device_init(&d, "f1", "12.0.45");
	CU_ASSERT_EQUAL(device_apply_faults(&d, bad, NULL, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "faults.hostile"));
	json_decref(bad);
	device_clear(&d);
	init(&d, "{\"hostile\": \"empty_body\", \"hostile_match\": \"AMT_GeneralSettings\"}",
	     "{\"hostile_nth\": 2}");
	CU_ASSERT_EQUAL(device_fault_hostile(&d, "<Get>CIM_SoftwareIdentity</Get>"), HOSTILE_NONE);
	CU_ASSERT_EQUAL(device_fault_hostile(&d, "<Get>AMT_GeneralSettings</Get>"), HOSTILE_NONE);
	CU_ASSERT_EQUAL(device_fault_hostile(&d, "<Put>AMT_GeneralSettings</Put>"),
			HOSTILE_EMPTY_BODY);
	CU_ASSERT_EQUAL(device_fault_hostile(&d, "<Get>AMT_GeneralSettings</Get>"), HOSTILE_NONE);
	device_clear(&d);
	/* A device's "none" turns a fleet-wide one off; no match string: every request. */
	init(&d, "{\"hostile\": \"slow_drip\"}", "{\"hostile\": \"none\"}");
	CU_ASSERT_EQUAL(device_fault_hostile(&d, "x"), HOSTILE_NONE);
	device_clear(&d);
	init(&d, "{\"hostile\": \"huge_body\"}", NULL);
	CU_ASSERT_EQUAL(device_fault_hostile(&d, "x"), HOSTILE_HUGE_BODY);
	CU_ASSERT_EQUAL(device_fault_hostile(&d, NULL), HOSTILE_HUGE_BODY);
	CU_ASSERT_STRING_EQUAL(hostile_kind_name(HOSTILE_HUGE_BODY), "huge_body");
	CU_ASSERT_EQUAL(hostile_kind_parse("truncated_body"), HOSTILE_TRUNCATED_BODY);
	device_clear(&d);
}

static void test_drop_and_digest(void)
{
	struct device d;
	int drops = 0;

	init(&d, NULL, "{\"drop_nth\": 3}");
	for (int i = 1; i <= 6; i++)
		if (device_fault_drop(&d))
			CU_ASSERT_EQUAL(i, 3);
	device_clear(&d);
	init(&d, NULL, "{\"drop_nth\": 2, \"drop_repeat\": true}");
	for (int i = 1; i <= 6; i++)
		drops += device_fault_drop(&d);
	CU_ASSERT_EQUAL(drops, 3);
	device_clear(&d);
	/* Fleet-wide settings apply to a device without its own faults object. */
	init(&d, "{\"drop_nth\": 2}", NULL);
	CU_ASSERT_FALSE(device_fault_drop(&d));
	CU_ASSERT_TRUE(device_fault_drop(&d));
	CU_ASSERT_FALSE(device_fault_drop(&d));
	device_clear(&d);
	/* hang_nth counts the same requests as the drops (which count first). */
	init(&d, "{\"hang_nth\": 2, \"hang_repeat\": true}", "{\"drop_nth\": 1}");
	CU_ASSERT_TRUE(device_fault_drop(&d));
	CU_ASSERT_FALSE(device_fault_drop(&d));
	CU_ASSERT_TRUE(device_fault_hang(&d));
	CU_ASSERT_FALSE(device_fault_drop(&d));
	CU_ASSERT_FALSE(device_fault_hang(&d));
	CU_ASSERT_FALSE(device_fault_drop(&d));
	CU_ASSERT_TRUE(device_fault_hang(&d));
	device_clear(&d);
	init(&d, NULL, "{\"digest_fail_nth\": 1}");
	CU_ASSERT_TRUE(device_fault_digest(&d));
	CU_ASSERT_FALSE(device_fault_digest(&d));
	device_clear(&d);
}

static void test_seeded(void)
{
	struct device a, b;
	char pa[200], pb[200];

	/* Same seed, same device id: the same random drops, digest failures and jitter. */
	init(&a, "{\"seed\": 42, \"drop_percent\": 30, \"digest_fail_percent\": 20, \"latency_jitter_ms\": 50}", NULL);
	init(&b, "{\"seed\": 42, \"drop_percent\": 30, \"digest_fail_percent\": 20, \"latency_jitter_ms\": 50}", NULL);
	for (int i = 0; i < 50; i++) {
		pa[i * 3] = (char)('0' + device_fault_drop(&a));
		pb[i * 3] = (char)('0' + device_fault_drop(&b));
		pa[i * 3 + 1] = (char)('0' + device_fault_digest(&a));
		pb[i * 3 + 1] = (char)('0' + device_fault_digest(&b));
		pa[i * 3 + 2] = (char)('0' + device_fault_latency(&a) % 10);
		pb[i * 3 + 2] = (char)('0' + device_fault_latency(&b) % 10);
	}
	pa[150] = pb[150] = '\0';
	CU_ASSERT_STRING_EQUAL(pa, pb);
	CU_ASSERT_PTR_NOT_NULL(strchr(pa, '1')); /* something was injected */
	device_clear(&a);
	device_clear(&b);
	/* Another seed, another pattern. */
	init(&a, "{\"seed\": 43, \"drop_percent\": 30, \"digest_fail_percent\": 20, \"latency_jitter_ms\": 50}", NULL);
	for (int i = 0; i < 50; i++) {
		pb[i * 3] = (char)('0' + device_fault_drop(&a));
		pb[i * 3 + 1] = (char)('0' + device_fault_digest(&a));
		pb[i * 3 + 2] = (char)('0' + device_fault_latency(&a) % 10);
	}
	CU_ASSERT_STRING_NOT_EQUAL(pa, pb);
	device_clear(&a);
}

#define SETUP AMT_URI "AMT_SetupAndConfigurationService"
#define ENV \
	"<?xml version=\"1.0\"?><Envelope xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" " \
	"xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" " \
	"xmlns=\"http://www.w3.org/2003/05/soap-envelope\"><Header><a:Action>%s</a:Action>" \
	"<w:ResourceURI>" SETUP "</w:ResourceURI><a:MessageID>1</a:MessageID></Header><Body>%s" \
	"</Body></Envelope>"

static bool run_has(struct device *d, const char *action, const char *body, const char *want)
{
	char buf[4096];
	struct http_request q;
	struct http_response r;
	bool ok;

	memset(&q, 0, sizeof(q));
	memset(&r, 0, sizeof(r));
	snprintf(buf, sizeof(buf), ENV, action, body);
	q.body = buf;
	q.body_len = strlen(buf);
	wsman_handle(d, &q, &r);
	ok = r.body.data && strstr(r.body.data, want);
	sbuf_free(&r.body);
	return ok;
}

#define COMMIT SETUP "/CommitChanges", "<h:CommitChanges_INPUT xmlns:h=\"" SETUP "\"/>"

static void test_commit_flash_otp(void)
{
	struct device d;

	init(&d, NULL, "{\"commit_fail\": 1}");
	d.prov_state = DEV_IN;
	CU_ASSERT_TRUE(run_has(&d, COMMIT, "<h:ReturnValue>1</h:ReturnValue>"));
	CU_ASSERT_EQUAL(d.prov_state, DEV_IN);
	device_clear(&d);

	init(&d, NULL, "{\"flash_writes\": 1}");
	CU_ASSERT_TRUE(run_has(&d, SETUP "/SetMEBxPassword",
			       "<h:SetMEBxPassword_INPUT xmlns:h=\"" SETUP "\"><h:Password>P@ssw0rd1"
			       "</h:Password></h:SetMEBxPassword_INPUT>",
			       "<h:ReturnValue>0</h:ReturnValue>"));
	CU_ASSERT_TRUE(run_has(&d, COMMIT, "<h:ReturnValue>38</h:ReturnValue>"));
	device_clear(&d);

	init(&d, NULL, "{\"wrong_otp\": true}");
	d.prov_state = DEV_IN;
	sim_strlcpy(d.otp, "Abcdefgh1234", sizeof(d.otp));
	/* base64("XAbcdefgh1234"), not base64("Abcdefgh1234") */
	CU_ASSERT_TRUE(run_has(&d, NS_WXF "/Get", "", "WEFiY2RlZmdoMTIz"));
	device_clear(&d);
}

/* commit_latency_ms: the device commits at once, only the answer waits; a refused commit
 * is not delayed. */
static void test_commit_latency(void)
{
	char buf[4096];
	struct http_request q;
	struct http_response r;
	struct device d;

	init(&d, NULL, "{\"commit_latency_ms\": 4000}");
	CU_ASSERT_EQUAL(d.faults.commit_latency_ms, 4000);
	d.prov_state = DEV_IN;
	memset(&q, 0, sizeof(q));
	memset(&r, 0, sizeof(r));
	snprintf(buf, sizeof(buf), ENV, SETUP "/CommitChanges",
		 "<h:CommitChanges_INPUT xmlns:h=\"" SETUP "\"/>");
	q.body = buf;
	q.body_len = strlen(buf);
	wsman_handle(&d, &q, &r);
	CU_ASSERT_TRUE(r.body.data && strstr(r.body.data, "<h:ReturnValue>0</h:ReturnValue>"));
	CU_ASSERT_EQUAL(d.prov_state, DEV_POST);
	CU_ASSERT_EQUAL(r.delay_ms, 4000);
	sbuf_free(&r.body);
	device_clear(&d);

	init(&d, NULL, "{\"commit_latency_ms\": 4000, \"commit_fail\": 1}");
	d.prov_state = DEV_IN;
	memset(&r, 0, sizeof(r));
	wsman_handle(&d, &q, &r);
	CU_ASSERT_EQUAL(d.prov_state, DEV_IN);
	CU_ASSERT_EQUAL(r.delay_ms, 0);
	sbuf_free(&r.body);
	device_clear(&d);
}

void register_sim_faults_tests(void)
{
	CU_pSuite s = CU_add_suite("sim.faults", NULL, NULL);

	CU_add_test(s, "faults JSON: strict keys, device overrides fleet", test_parse);
	CU_add_test(s, "drop, hang and Digest failure on the Nth request, fleet-wide or per device", test_drop_and_digest);
	CU_add_test(s, "seeded random faults repeat exactly", test_seeded);
	CU_add_test(s, "hostile answers: kind, match, N-th (R-PROV-13)", test_hostile_selection);
	CU_add_test(s, "CommitChanges failure, flash write limit, wrong OTP", test_commit_flash_otp);
	CU_add_test(s, "CommitChanges applied at once, its answer delayed", test_commit_latency);
}
