/* SPDX-License-Identifier: Apache-2.0 */
/* Wireless profile limits (16 total, 8 user), power schemes, time sync, TLS staging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>

#include "device.h"
#include "http.h"
#include "wsman.h"

void register_sim_net_tests(void);

#define ENV_SEL \
	"<?xml version=\"1.0\"?><Envelope xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" " \
	"xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" " \
	"xmlns=\"http://www.w3.org/2003/05/soap-envelope\"><Header><a:Action>%s</a:Action>" \
	"<w:ResourceURI>%s</w:ResourceURI><a:MessageID>1</a:MessageID>%s</Header><Body>%s</Body>" \
	"</Envelope>"

static int run(struct device *d, const char *action, const char *uri, const char *hdr,
	       const char *body, struct http_response *r)
{
	static char buf[16384];
	struct http_request q;

	memset(&q, 0, sizeof(q));
	memset(r, 0, sizeof(*r));
	snprintf(buf, sizeof(buf), ENV_SEL, action, uri, hdr, body);
	q.body = buf;
	q.body_len = strlen(buf);
	wsman_handle(d, &q, r);
	return r->status;
}

static bool has(struct http_response *r, const char *s)
{
	bool ok = r->body.data && strstr(r->body.data, s);

	sbuf_free(&r->body);
	return ok;
}

#define WIFISVC AMT_URI "AMT_WiFiPortConfigurationService"

static int add_it_profile(struct device *d, const char *name, int auth, int enc)
{
	char body[2048];
	struct http_response r;
	const char *p;
	int rv = -1;

	snprintf(body, sizeof(body),
		 "<h:AddWiFiSettings_INPUT xmlns:h=\"" WIFISVC "\"><h:WiFiEndpoint><a:Address>/wsman"
		 "</a:Address><a:ReferenceParameters><w:ResourceURI>" CIM_URI "CIM_WiFiEndpoint"
		 "</w:ResourceURI><w:SelectorSet><w:Selector Name=\"Name\">WiFi Endpoint 0"
		 "</w:Selector></w:SelectorSet></a:ReferenceParameters></h:WiFiEndpoint>"
		 "<h:WiFiEndpointSettingsInput xmlns:q=\"" CIM_URI "CIM_WiFiEndpointSettings\">"
		 "<q:ElementName>%s</q:ElementName><q:SSID>S%s</q:SSID><q:Priority>1</q:Priority>"
		 "<q:AuthenticationMethod>%d</q:AuthenticationMethod><q:EncryptionMethod>%d"
		 "</q:EncryptionMethod><q:PSKPassPhrase>secretpass</q:PSKPassPhrase>"
		 "</h:WiFiEndpointSettingsInput></h:AddWiFiSettings_INPUT>",
		 name, name, auth, enc);
	if (run(d, WIFISVC "/AddWiFiSettings", WIFISVC, "", body, &r) == 200 &&
	    (p = strstr(r.body.data, "<h:ReturnValue>")))
		sscanf(p + 15, "%d", &rv);
	sbuf_free(&r.body);
	return rv;
}

static void test_wifi_limits(void)
{
	struct device d;
	struct dev_wifi w;
	char name[16];

	device_init(&d, "n", "12.0.45");
	/* 8 user profiles from the host; the 9th replaces the oldest. */
	for (int i = 0; i < 9; i++) {
		memset(&w, 0, sizeof(w));
		snprintf(w.name, sizeof(w.name), "user%d", i);
		w.user_profile = true;
		CU_ASSERT_EQUAL(device_add_wifi(&d, &w), 0);
	}
	CU_ASSERT_EQUAL(d.n_wifi, 8);
	CU_ASSERT_STRING_EQUAL(d.wifi[0].name, "user1");
	CU_ASSERT_STRING_EQUAL(d.wifi[7].name, "user8");
	/* IT profiles fill the remaining 8 of 16. */
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "it%d", i);
		CU_ASSERT_EQUAL(add_it_profile(&d, name, 6, 4), 0);
	}
	CU_ASSERT_EQUAL(d.n_wifi, 16);
	CU_ASSERT_EQUAL(add_it_profile(&d, "it9", 6, 4), 2); /* full */
	CU_ASSERT_EQUAL(add_it_profile(&d, "it0", 6, 4), 3); /* duplicate name */
	CU_ASSERT_EQUAL(add_it_profile(&d, "wep", 3, 2), 3); /* WEP only from the host */
	/* With all 16 taken, a new user profile still replaces the oldest user profile. */
	memset(&w, 0, sizeof(w));
	sim_strlcpy(w.name, "user9", sizeof(w.name));
	w.user_profile = true;
	CU_ASSERT_EQUAL(device_add_wifi(&d, &w), 0);
	CU_ASSERT_EQUAL(d.n_wifi, 16);
	CU_ASSERT_EQUAL(device_add_wifi(&d, &w), -2);
	device_clear(&d);
}

static void test_power_and_time(void)
{
	struct device d;
	struct http_response r;
	#define ps AMT_URI "AMT_SystemPowerScheme"
	#define ts AMT_URI "AMT_TimeSynchronizationService"
	char body[512];

	device_init(&d, "n", "12.0.45");
	CU_ASSERT_EQUAL(run(&d, ps "/SetPowerScheme", ps,
			    "<w:SelectorSet><w:Selector Name=\"InstanceID\">SCHEME 3</w:Selector></w:SelectorSet>",
			    "<h:SetPowerScheme_INPUT xmlns:h=\"http://intel.com/wbem/wscim/1/amt-schema/1/AMT_SystemPowerScheme\"/>",
			    &r), 200);
	CU_ASSERT(has(&r, "<h:ReturnValue>0</h:ReturnValue>"));
	CU_ASSERT_STRING_EQUAL(d.power_scheme, "SCHEME 3");
	CU_ASSERT_EQUAL(run(&d, ps "/SetPowerScheme", ps, "",
			    "<h:SetPowerScheme_INPUT xmlns:h=\"http://intel.com/wbem/wscim/1/amt-schema/1/AMT_SystemPowerScheme\"/>",
			    &r), 400);
	CU_ASSERT(has(&r, "InvalidSelectors"));
	/* The console's clock becomes the device's. */
	snprintf(body, sizeof(body),
		 "<h:SetHighAccuracyTimeSynch_INPUT xmlns:h=\"%s\"><h:Ta0>%lld</h:Ta0><h:Tm1>%lld"
		 "</h:Tm1><h:Tm2>%lld</h:Tm2></h:SetHighAccuracyTimeSynch_INPUT>",
		 ts, (long long)time(NULL), (long long)time(NULL) + 3600, (long long)time(NULL) + 3600);
	CU_ASSERT_EQUAL(run(&d, AMT_URI "AMT_TimeSynchronizationService/SetHighAccuracyTimeSynch", ts, "", body, &r), 200);
	CU_ASSERT(has(&r, "<h:ReturnValue>0</h:ReturnValue>"));
	CU_ASSERT(d.clock_offset >= 3598 && d.clock_offset <= 3601);
	device_clear(&d);
#undef ps
#undef ts
}

static void test_tls_put_waits_for_commit(void)
{
	struct device d;
	struct http_response r;
	const char *tls = AMT_URI "AMT_TLSSettingData";
	const char *setup = AMT_URI "AMT_SetupAndConfigurationService";

	device_init(&d, "n", "12.0.45");
	d.prov_state = DEV_POST;
	CU_ASSERT_EQUAL(run(&d, NS_WXF "/Put", tls,
			    "<w:SelectorSet><w:Selector Name=\"InstanceID\">Intel(r) AMT 802.3 TLS Settings</w:Selector></w:SelectorSet>",
			    "<h:AMT_TLSSettingData xmlns:h=\"http://intel.com/wbem/wscim/1/amt-schema/1/AMT_TLSSettingData\">"
			    "<h:Enabled>true</h:Enabled><h:TrustedCN>console.contoso.com</h:TrustedCN></h:AMT_TLSSettingData>",
			    &r), 200);
	CU_ASSERT(has(&r, "<h:Enabled>true</h:Enabled>"));
	CU_ASSERT_FALSE(d.tls_remote.enabled);            /* staged */
	CU_ASSERT_EQUAL(d.tls_remote.n_trusted_cn, 1);    /* TrustedCN applies at once */
	/* No TLS credential context: CommitChanges cannot enable TLS. */
	CU_ASSERT_EQUAL(run(&d, AMT_URI "AMT_SetupAndConfigurationService/CommitChanges", setup, "",
			    "<h:CommitChanges_INPUT xmlns:h=\"http://intel.com/wbem/wscim/1/amt-schema/1/AMT_SetupAndConfigurationService\"/>",
			    &r), 200);
	CU_ASSERT(has(&r, "<h:ReturnValue>2057</h:ReturnValue>"));
	CU_ASSERT_FALSE(d.tls_remote.enabled);
	device_clear(&d);
}

/* Issue 17 item 12: what a firmware release lacks is refused as firmware refuses an unknown
 * class or method; AMT_8021XProfile binds certificates by reference. */
static void test_version_rules(void)
{
	const char *pkms = AMT_URI "AMT_PublicKeyManagementService";
	const char *ips = "http://intel.com/wbem/wscim/1/ips-schema/1/IPS_IEEE8021xSettings";
	const char *prof = AMT_URI "AMT_8021XProfile";
	const char *gen = "<h:GenerateKeyPair_INPUT xmlns:h=\"http://intel.com/wbem/wscim/1/amt-schema/1/"
			  "AMT_PublicKeyManagementService\"><h:KeyAlgorithm>0</h:KeyAlgorithm>"
			  "<h:KeyLength>2048</h:KeyLength></h:GenerateKeyPair_INPUT>";
	char body[2048];
	struct device d;
	struct http_response r;

	device_init(&d, "v", "6.0.30");
	run(&d, AMT_URI "AMT_PublicKeyManagementService/GenerateKeyPair", pkms, "", gen, &r);
	CU_ASSERT(has(&r, "ActionNotSupported")); /* from 6.2 */
	run(&d, NS_WXF "/Get", ips, "", "", &r);
	CU_ASSERT(has(&r, "DestinationUnreachable")); /* from 8.0 */
	CU_ASSERT_EQUAL(run(&d, NS_WXF "/Get", prof, "", "", &r), 200);
	sbuf_free(&r.body);
	device_clear(&d);
	device_init(&d, "v", "8.1.40");
	CU_ASSERT_EQUAL(run(&d, NS_WXF "/Get", ips, "", "", &r), 200);
	sbuf_free(&r.body);

	/* AMT_8021XProfile: the client reference must not be a root, the issuer must be one. */
	d.certs[0] = (struct dev_cert){.handle = 7, .der_b64 = strdup("AAAA"), .trusted_root = false};
	d.certs[1] = (struct dev_cert){.handle = 8, .der_b64 = strdup("AAAA"), .trusted_root = true};
	d.n_certs = 2;
#define REF(n, h) "<h:" n "><a:Address>/wsman</a:Address><a:ReferenceParameters><w:ResourceURI>" \
	AMT_URI "AMT_PublicKeyCertificate</w:ResourceURI><w:SelectorSet><w:Selector " \
	"Name=\"InstanceID\">Intel(r) AMT Certificate: Handle: " h "</w:Selector></w:SelectorSet>" \
	"</a:ReferenceParameters></h:" n ">"
#define PROFILE(refs) "<h:AMT_8021XProfile xmlns:h=\"http://intel.com/wbem/wscim/1/amt-schema/1/" \
	"AMT_8021XProfile\"><h:Enabled>true</h:Enabled><h:AuthenticationProtocol>0" \
	"</h:AuthenticationProtocol>" refs "</h:AMT_8021XProfile>"
	snprintf(body, sizeof(body), PROFILE(REF("ClientCertificate", "8")));
	run(&d, NS_WXF "/Put", prof, "", body, &r);
	CU_ASSERT(has(&r, "InvalidParameter"));
	snprintf(body, sizeof(body),
		 PROFILE(REF("ClientCertificate", "7") REF("ServerCertificateIssuer", "7")));
	run(&d, NS_WXF "/Put", prof, "", body, &r);
	CU_ASSERT(has(&r, "InvalidParameter"));
	snprintf(body, sizeof(body), PROFILE(REF("ClientCertificate", "9")));
	run(&d, NS_WXF "/Put", prof, "", body, &r);
	CU_ASSERT(has(&r, "InvalidParameter"));
	CU_ASSERT_EQUAL(d.n_ctx, 0);
	snprintf(body, sizeof(body),
		 PROFILE(REF("ClientCertificate", "7") REF("ServerCertificateIssue", "8")));
	CU_ASSERT_EQUAL(run(&d, NS_WXF "/Put", prof, "", body, &r), 200);
	sbuf_free(&r.body);
	CU_ASSERT_EQUAL(d.n_ctx, 2);
	CU_ASSERT_EQUAL(d.ieee8021x.client_cert_handle, 7);
	CU_ASSERT_EQUAL(d.ieee8021x.root_cert_handle, 8);
	CU_ASSERT_EQUAL(run(&d, NS_WSEN "/Enumerate", AMT_URI "AMT_8021xCredentialContext", "",
			    "<Enumerate xmlns=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\"/>", &r), 200);
	sbuf_free(&r.body);
	/* A Put without references removes the links. */
	snprintf(body, sizeof(body), PROFILE(""));
	CU_ASSERT_EQUAL(run(&d, NS_WXF "/Put", prof, "", body, &r), 200);
	sbuf_free(&r.body);
	CU_ASSERT_EQUAL(d.n_ctx, 0);
	CU_ASSERT_EQUAL(d.ieee8021x.client_cert_handle, 0);
#undef REF
#undef PROFILE
	device_clear(&d);
}

void register_sim_net_tests(void)
{
	CU_pSuite s = CU_add_suite("sim.net", NULL, NULL);

	CU_add_test(s, "wireless: 16 total, 8 user, IT rules", test_wifi_limits);
	CU_add_test(s, "SetPowerScheme and SetHighAccuracyTimeSynch", test_power_and_time);
	CU_add_test(s, "TLS Put waits for CommitChanges", test_tls_put_waits_for_commit);
	CU_add_test(s, "version rules; AMT_8021XProfile certificate references", test_version_rules);
}
