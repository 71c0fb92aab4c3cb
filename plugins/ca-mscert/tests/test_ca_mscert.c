/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ca_mscert.c - ca-mscert's messages and template rules without a server: the
 * MS-XCEP / MS-WSTEP examples of the specs (adcssim/tests/fixtures/spec) are read, the
 * messages the plugin builds are parsed back, hostile XML is refused, and every template
 * rule (R-CA-01..04, EKU per purpose) fails on the policy that breaks it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <libxml/parser.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ms.h"

#define SPEC AMTPROV_SOURCE_DIR "/adcssim/tests/fixtures/spec/"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = '\0';
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void test_spec_policy(void)
{
	size_t len = 0;
	char *xml = slurp(SPEC "xcep-4.1.1.2-response.xml", &len), why[200] = "";
	struct ms_policy p;
	const struct ms_template *t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
	CU_ASSERT_EQUAL_FATAL(ms_parse_policies(xml, len, &p, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(p.n_tmpl, 1);
	CU_ASSERT_EQUAL(p.n_ca, 1);
	CU_ASSERT_EQUAL(p.ca[0].n_uri, 3);
	CU_ASSERT_EQUAL(p.ca[0].ref, 0);
	CU_ASSERT_EQUAL(p.next_update_hours, 8);
	CU_ASSERT_PTR_NOT_NULL(p.ca[0].der);
	t = ms_policy_template(&p, "efs");
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(t->schema, 1);
	CU_ASSERT_EQUAL(t->enroll, 1);
	CU_ASSERT_EQUAL(t->min_key, 2048);
	/* The example's EKU value is a placeholder (AA==): no EKU, and no crash. */
	CU_ASSERT_EQUAL(t->n_eku, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(ms_policy_ces(&p, MS_AUTH_USERNAME),
				      "_CES_UsernamePassword/service.svc/CES"));
	CU_ASSERT_PTR_NOT_NULL(strstr(ms_policy_ces(&p, MS_AUTH_CERTIFICATE), "_CES_Certificate"));
	ms_policy_free(&p);
	free(xml);
}

/* The CES URIs in priority order for failover (MS-XCEP cAURI priority, lower first). */
static void test_ces_order(void)
{
	struct ms_policy p;
	struct ms_ca *ca = &p.ca[0];
	const char *out[MS_MAX_URI];
	static const struct {
		unsigned auth, priority;
		int renewal_only;
		const char *uri;
	} in[] = {
		{MS_AUTH_USERNAME, 20, 0, "https://ces-c/CES"},
		{MS_AUTH_USERNAME, 5, 0, "https://ces-a/CES"},
		{MS_AUTH_CERTIFICATE, 1, 0, "https://ces-cert/CES"},
		{MS_AUTH_USERNAME, 1, 1, "https://renewal-only/CES"},
		{MS_AUTH_USERNAME, 10, 0, "https://ces-b/CES"},
		{MS_AUTH_USERNAME, 20, 0, "https://ces-d/CES"},
	};

	memset(&p, 0, sizeof(p));
	p.n_ca = 1;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		ca->uris[i].auth = in[i].auth;
		ca->uris[i].priority = in[i].priority;
		ca->uris[i].renewal_only = in[i].renewal_only;
		snprintf(ca->uris[i].uri, sizeof(ca->uris[i].uri), "%s", in[i].uri);
	}
	ca->n_uri = (int)(sizeof(in) / sizeof(in[0]));
	CU_ASSERT_EQUAL_FATAL(ms_ca_ces_list(ca, MS_AUTH_USERNAME, out, MS_MAX_URI), 4);
	CU_ASSERT_STRING_EQUAL(out[0], "https://ces-a/CES");
	CU_ASSERT_STRING_EQUAL(out[1], "https://ces-b/CES");
	CU_ASSERT_STRING_EQUAL(out[2], "https://ces-c/CES"); /* equal priority: policy order */
	CU_ASSERT_STRING_EQUAL(out[3], "https://ces-d/CES");
	CU_ASSERT_EQUAL(ms_ca_ces_list(ca, MS_AUTH_USERNAME, out, 2), 2);
	CU_ASSERT_STRING_EQUAL(ms_policy_ces(&p, MS_AUTH_CERTIFICATE), "https://ces-cert/CES");
	CU_ASSERT_PTR_NULL(ms_policy_ces(&p, MS_AUTH_KERBEROS));
}

static void test_spec_rstr(void)
{
	size_t len = 0;
	char *xml = slurp(SPEC "wstep-4.1.1.2-rstrc-issued.xml", &len), why[200] = "";
	struct ms_rstr r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
	CU_ASSERT_EQUAL_FATAL(ms_parse_rstr(xml, len, &r, why, sizeof(why)), 0);
	CU_ASSERT_FALSE(r.fault);
	CU_ASSERT_PTR_NOT_NULL(r.cert_der);
	CU_ASSERT(r.cert_len > 100 && r.cert_der[0] == 0x30);
	CU_ASSERT_PTR_NOT_NULL(r.pkcs7);
	CU_ASSERT_STRING_EQUAL(r.request_id, "61");
	CU_ASSERT_STRING_EQUAL(r.disposition, "Issued");
	ms_rstr_free(&r);
	free(xml);

	xml = slurp(SPEC "wstep-4.1.4.2-fault.xml", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
	CU_ASSERT_EQUAL_FATAL(ms_parse_rstr(xml, len, &r, why, sizeof(why)), 0);
	CU_ASSERT_TRUE(r.fault);
	CU_ASSERT_FALSE(r.has_error_code);
	CU_ASSERT_STRING_EQUAL(r.subcode, "InternalServiceFault");
	CU_ASSERT_PTR_NOT_NULL(strstr(r.reason, "unable to process the request"));
	ms_rstr_free(&r);
	free(xml);
}

#define ENV_OPEN "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>"
#define ENV_CLOSE "</s:Body></s:Envelope>"
#define WST "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
#define WSSE "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
#define WSTEP "http://schemas.microsoft.com/windows/pki/2009/01/enrollment"

static void test_pending_and_denied(void)
{
	static const char pending[] =
		ENV_OPEN "<RequestSecurityTokenResponseCollection xmlns=\"" WST "\">"
		"<RequestSecurityTokenResponse><TokenType>x</TokenType>"
		"<DispositionMessage xmlns=\"" WSTEP "\">Taken Under Submission</DispositionMessage>"
		"<RequestedSecurityToken><SecurityTokenReference xmlns=\"" WSSE "\"><Reference "
		"URI=\"https://ca/X_CES_UsernamePassword/service.svc/CES\"/></SecurityTokenReference>"
		"</RequestedSecurityToken><RequestID xmlns=\"" WSTEP "\">17</RequestID>"
		"</RequestSecurityTokenResponse></RequestSecurityTokenResponseCollection>" ENV_CLOSE;
	static const char denied[] =
		ENV_OPEN "<s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason>"
		"<s:Text xml:lang=\"en-US\">Denied by Policy Module</s:Text></s:Reason><s:Detail>"
		"<CertificateEnrollmentWSDetail xmlns=\"" WSTEP "\"><BinaryResponse>AA==</BinaryResponse>"
		"<ErrorCode>-2146877420</ErrorCode><InvalidRequest>true</InvalidRequest>"
		"<RequestID>18</RequestID></CertificateEnrollmentWSDetail></s:Detail></s:Fault>"
		ENV_CLOSE;
	struct ms_rstr r;
	char why[200];

	CU_ASSERT_EQUAL_FATAL(ms_parse_rstr(pending, sizeof(pending) - 1, &r, why, sizeof(why)), 0);
	CU_ASSERT_PTR_NULL(r.cert_der);
	CU_ASSERT_STRING_EQUAL(r.request_id, "17");
	CU_ASSERT_STRING_EQUAL(r.reference, "https://ca/X_CES_UsernamePassword/service.svc/CES");
	ms_rstr_free(&r);
	CU_ASSERT_EQUAL_FATAL(ms_parse_rstr(denied, sizeof(denied) - 1, &r, why, sizeof(why)), 0);
	CU_ASSERT_TRUE(r.fault);
	CU_ASSERT_TRUE(r.has_error_code);
	CU_ASSERT_EQUAL(r.error_code, 0x80094014u);
	CU_ASSERT_TRUE(r.invalid_request);
	CU_ASSERT_STRING_EQUAL(r.request_id, "18");
	CU_ASSERT_STRING_EQUAL(r.reason, "Denied by Policy Module");
	ms_rstr_free(&r);
}

static void test_hostile_xml(void)
{
	static const char dtd[] =
		"<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY x \"boom\">]>" ENV_OPEN
		"<a>&x;</a>" ENV_CLOSE;
	static const char xxe[] =
		"<!DOCTYPE s [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>" ENV_OPEN "&x;" ENV_CLOSE;
	struct ms_rstr r;
	struct ms_policy p;
	char why[200];

	CU_ASSERT_EQUAL(ms_parse_rstr(dtd, sizeof(dtd) - 1, &r, why, sizeof(why)), -1);
	CU_ASSERT_EQUAL(ms_parse_policies(xxe, sizeof(xxe) - 1, &p, why, sizeof(why)), -1);
	CU_ASSERT_EQUAL(ms_parse_rstr("<a", 2, &r, why, sizeof(why)), -1);
	CU_ASSERT_EQUAL(ms_parse_rstr(ENV_OPEN ENV_CLOSE, strlen(ENV_OPEN ENV_CLOSE), &r, why,
				      sizeof(why)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "empty SOAP body"));
}

/* Parses back a built message; @return its document. */
static xmlDocPtr parse_built(char *xml)
{
	xmlDocPtr d;

	CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
	d = ms_xml_parse(xml, strlen(xml));
	CU_ASSERT_PTR_NOT_NULL(d);
	free(xml);
	return d;
}

static void test_built_messages(void)
{
	struct ms_auth a = {.mode = MS_AUTH_USERNAME, .user = "site<&>", .password = "p\"w<"};
	uint8_t csr[] = {0x30, 0x03, 0x02, 0x01, 0x00};
	xmlDocPtr d;
	xmlNodePtr n;
	xmlChar *t;
	char *s;

	d = parse_built(ms_build_get_policies("https://ca/CEP", &a));
	n = ms_xml_find(xmlDocGetRootElement(d),
			"http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy",
			"clientVersion");
	CU_ASSERT_PTR_NOT_NULL(n);
	n = ms_xml_find(xmlDocGetRootElement(d), WSSE, "Password");
	t = n ? xmlNodeGetContent(n) : NULL;
	CU_ASSERT(t && !strcmp((const char *)t, "p\"w<"));
	xmlFree(t);
	xmlFreeDoc(d);

	d = parse_built(ms_build_rst_issue("https://ca/CES", &a, csr, sizeof(csr), "AMTWebServer"));
	n = ms_xml_find(xmlDocGetRootElement(d), "http://schemas.xmlsoap.org/ws/2006/12/authorization",
			"Value");
	t = n ? xmlNodeGetContent(n) : NULL;
	CU_ASSERT(t && !strcmp((const char *)t, "AMTWebServer"));
	xmlFree(t);
	n = ms_xml_find(xmlDocGetRootElement(d), WSSE, "BinarySecurityToken");
	t = n ? xmlNodeGetContent(n) : NULL;
	CU_ASSERT(t && !strcmp((const char *)t, "MAMCAQA="));
	xmlFree(t);
	xmlFreeDoc(d);

	a.mode = MS_AUTH_CERTIFICATE;
	s = ms_build_rst_query("https://ca/CES", &a, "42");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_PTR_NULL(strstr(s, "UsernameToken"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "/QueryTokenStatus</RequestType>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, ">42</RequestID>"));
	free(s);

	s = ms_winrm_envelope("https://ca:5986/wsman", "urn:x", "SH-1", "<b/>");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "<w:Selector Name=\"ShellId\">SH-1</w:Selector>"));
	xmlFreeDoc(parse_built(s));
}

static void test_winrm_receive(void)
{
	static const char rr[] =
		ENV_OPEN "<rsp:ReceiveResponse xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/"
		"windows/shell\"><rsp:Stream Name=\"stdout\" CommandId=\"c\">b2sNCg==</rsp:Stream>"
		"<rsp:CommandState CommandId=\"c\" State=\"http://schemas.microsoft.com/wbem/wsman/1/"
		"windows/shell/CommandState/Done\"><rsp:ExitCode>5</rsp:ExitCode></rsp:CommandState>"
		"</rsp:ReceiveResponse>" ENV_CLOSE;
	struct ms_winrm_result res = {.exit_code = -1};
	int done = 0;

	CU_ASSERT_EQUAL(ms_winrm_parse_receive(rr, sizeof(rr) - 1, &res, &done), 0);
	CU_ASSERT_TRUE(done);
	CU_ASSERT_EQUAL(res.exit_code, 5);
	CU_ASSERT_STRING_EQUAL(res.out, "ok ");
}

/* ---- template rules ---- */

struct seen {
	int fails;
	char rules[256];
	char skips[512];        /* "what" of the CAs left out, ';'-separated */
};

static void on_check(void *ctx, int ok, const char *rule, const char *what, const char *exp,
		     const char *act, const char *fix)
{
	struct seen *s = ctx;

	(void)what;
	(void)exp;
	CU_ASSERT(fix && *fix); /* every refusal says what to change */
	(void)act;
	if (ok == MS_CHECK_SKIP)
		snprintf(s->skips + strlen(s->skips), sizeof(s->skips) - strlen(s->skips), "%s;",
			 what);
	else if (!ok) {
		s->fails++;
		snprintf(s->rules + strlen(s->rules), sizeof(s->rules) - strlen(s->rules), "%s ",
			 rule);
	}
}

static struct ms_template good_web(void)
{
	struct ms_template t = {.name = "AMTWebServer", .schema = 2, .enroll = 1, .min_key = 2048,
				.name_flags = 1, .n_eku = 2};

	snprintf(t.eku[0], sizeof(t.eku[0]), "1.3.6.1.5.5.7.3.1");
	snprintf(t.eku[1], sizeof(t.eku[1]), "2.16.840.1.113741.1.2.3");
	return t;
}

/* The rules that fail for template @p t used for @p purpose ("" when none). */
static const char *rules_for(struct ms_template t, uint32_t purpose, int n_ca)
{
	static struct seen s;
	struct ms_policy p = {.tmpl = &t, .n_tmpl = 1, .n_ca = n_ca};

	p.ca[0].enroll = 1;
	memset(&s, 0, sizeof(s));
	ms_check_template(&p, "amtwebserver", purpose, on_check, &s);
	return s.rules;
}

static void test_rules(void)
{
	struct ms_template t = good_web();

	CU_ASSERT_STRING_EQUAL(rules_for(t, AMTPROV_PURPOSE_WEB_SERVER, 1), "");
	CU_ASSERT_STRING_EQUAL(rules_for(t, AMTPROV_PURPOSE_WEB_SERVER, 0), "R-CA-01 ");
	t.schema = 3;
	CU_ASSERT_STRING_EQUAL(rules_for(t, AMTPROV_PURPOSE_WEB_SERVER, 1), "R-CA-02 ");
	t.schema = 1;
	CU_ASSERT_STRING_EQUAL(rules_for(t, AMTPROV_PURPOSE_WEB_SERVER, 1), "R-CA-03 ");
	t = good_web();
	t.enroll = 0;
	CU_ASSERT_STRING_EQUAL(rules_for(t, AMTPROV_PURPOSE_WEB_SERVER, 1), "R-CA-04 ");
	t = good_web();
	t.min_key = 3072;
	CU_ASSERT_STRING_EQUAL(rules_for(t, AMTPROV_PURPOSE_WEB_SERVER, 1), "key ");
	t = good_web();
	CU_ASSERT_STRING_EQUAL(rules_for(t, AMTPROV_PURPOSE_CLIENT_8021X, 1), "eku ");
	t.name_flags = 0x08000000;
	CU_ASSERT_STRING_EQUAL(rules_for(t, AMTPROV_PURPOSE_WEB_SERVER, 1), "subject ");
	snprintf(t.name, sizeof(t.name), "Other");
	CU_ASSERT_STRING_EQUAL(rules_for(t, AMTPROV_PURPOSE_WEB_SERVER, 1), "template ");
}

/* ---- a policy with several enterprise CAs (MS-XCEP cAs, cAReferences) ---- */

/* A self-signed certificate named CN=@p cn, base64 (the cA/certificate). */
static char *ca_cert_b64(const char *cn)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	unsigned char *der = NULL;
	char *b64 = NULL;
	int n;

	if (k && x) {
		X509_set_version(x, 2);
		ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
		X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
					   (const unsigned char *)cn, -1, -1, 0);
		X509_set_issuer_name(x, X509_get_subject_name(x));
		X509_gmtime_adj(X509_getm_notBefore(x), 0);
		X509_gmtime_adj(X509_getm_notAfter(x), 3600);
		X509_set_pubkey(x, k);
		if (X509_sign(x, k, EVP_sha256()) > 0 && (n = i2d_X509(x, &der)) > 0)
			b64 = ms_b64_encode(der, (size_t)n);
	}
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
	return b64;
}

#define XCEP_OPEN                                                                          \
	"<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>"            \
	"<GetPoliciesResponse xmlns=\"http://schemas.microsoft.com/windows/pki/2009/01/"       \
	"enrollmentpolicy\"><response><policyID>{P}</policyID><nextUpdateHours>8"              \
	"</nextUpdateHours><policiesNotChanged>false</policiesNotChanged><policies>"
#define XCEP_POLICY(oid, cas, name)                                                         \
	"<policy><policyOIDReference>" oid "</policyOIDReference><cAs>" cas "</cAs>"           \
	"<attributes><commonName>" name "</commonName><policySchema>2</policySchema>"          \
	"<permission><enroll>true</enroll></permission><privateKeyAttributes>"                 \
	"<minimalKeyLength>2048</minimalKeyLength></privateKeyAttributes><subjectNameFlags>1"  \
	"</subjectNameFlags><extensions><extension><oIDReference>3</oIDReference><value>"      \
	"MAoGCCsGAQUFBwMB</value></extension></extensions></attributes></policy>"
#define XCEP_URI(auth, prio, host)                                                          \
	"<cAURI><clientAuthentication>" auth "</clientAuthentication><uri>https://" host       \
	"/CES</uri><priority>" prio "</priority><renewalOnly>false</renewalOnly></cAURI>"
#define XCEP_OIDS                                                                          \
	"<oIDs><oID><value>1.3.6.1.4.1.311.21.8.1.1</value><group>9</group><oIDReferenceID>1"  \
	"</oIDReferenceID><defaultName>A</defaultName></oID><oID><value>1.3.6.1.4.1.311.21.8"  \
	".1.2</value><group>9</group><oIDReferenceID>2</oIDReferenceID><defaultName>B"         \
	"</defaultName></oID><oID><value>2.5.29.37</value><group>6</group><oIDReferenceID>3"  \
	"</oIDReferenceID><defaultName>EKU</defaultName></oID></oIDs>"                          \
	"</GetPoliciesResponse></s:Body></s:Envelope>"

/* Three CAs (cAReferenceIDs 7, 9, 11): AMTWebServer on 9 and 7, OnlyA on 7, none on 11
 * (what a stand-alone CA looks like); CA 9 prefers UsernameToken (priority 5 < 10), CA 7
 * the client certificate. CA 7 lets the account enroll only when @p enroll7. */
static char *multi_ca_policy(int enroll7, const char *dangling)
{
	char *a = ca_cert_b64("Contoso CA A"), *b = ca_cert_b64("Contoso CA B"),
	     *c = ca_cert_b64("Standalone CA");
	char *xml = malloc(32768);

	if (a && b && c && xml)
		snprintf(xml, 32768, XCEP_OPEN
			 XCEP_POLICY("1", "<cAReference>9</cAReference><cAReference>7</cAReference>",
				     "AMTWebServer")
			 XCEP_POLICY("2", "<cAReference>7</cAReference>%s", "OnlyA")
			 "</policies></response><cAs>"
			 "<cA><uris>" XCEP_URI("4", "10", "ca-a1") XCEP_URI("8", "1", "ca-a-cert")
			 XCEP_URI("4", "12", "ca-a2") "</uris><certificate>%s</certificate>"
			 "<enrollPermission>%s</enrollPermission><cAReferenceID>7</cAReferenceID></cA>"
			 "<cA><uris>" XCEP_URI("4", "5", "ca-b") XCEP_URI("8", "2", "ca-b-cert")
			 "</uris><certificate>%s</certificate><enrollPermission>true"
			 "</enrollPermission><cAReferenceID>9</cAReferenceID></cA>"
			 "<cA><uris>" XCEP_URI("4", "1", "standalone") "</uris><certificate>%s"
			 "</certificate><enrollPermission>true</enrollPermission><cAReferenceID>11"
			 "</cAReferenceID></cA></cAs>" XCEP_OIDS,
			 dangling, a, enroll7 ? "true" : "false", b, c);
	free(a);
	free(b);
	free(c);
	return xml;
}

static void test_multi_ca_policy(void)
{
	char *xml = multi_ca_policy(1, ""), why[200] = "";
	const struct ms_ca *cas[MS_MAX_CA];
	const struct ms_template *t, *only;
	const char *ces[MS_MAX_URI];
	struct ms_policy p;
	struct seen s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
	CU_ASSERT_EQUAL_FATAL(ms_parse_policies(xml, strlen(xml), &p, why, sizeof(why)), 0);
	free(xml);
	CU_ASSERT_EQUAL(p.n_ca, 3);
	CU_ASSERT_EQUAL(p.ca[0].ref, 7);
	CU_ASSERT_STRING_EQUAL(p.ca[0].name, "Contoso CA A"); /* the CN of cA/certificate */
	CU_ASSERT_STRING_EQUAL(p.ca[1].name, "Contoso CA B");
	CU_ASSERT_EQUAL(p.ca[0].n_uri, 3);
	CU_ASSERT_PTR_EQUAL(ms_policy_ca(&p, "contoso ca b"), &p.ca[1]);
	CU_ASSERT_PTR_NULL(ms_policy_ca(&p, "Contoso CA C"));
	t = ms_policy_template(&p, "AMTWebServer");
	only = ms_policy_template(&p, "OnlyA");
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(only);
	CU_ASSERT_EQUAL(t->n_ca_ref, 2);
	CU_ASSERT_EQUAL(t->ca_ref[0], 9);
	CU_ASSERT_EQUAL(t->ca_ref[1], 7);
	CU_ASSERT_TRUE(ms_ca_issues(&p.ca[0], only));
	CU_ASSERT_FALSE(ms_ca_issues(&p.ca[1], only));
	CU_ASSERT_FALSE(ms_ca_issues(&p.ca[2], t));
	/* UsernameToken: B (priority 5) before A (10); the stand-alone CA issues nothing. */
	CU_ASSERT_EQUAL_FATAL(ms_template_cas(&p, t, MS_AUTH_USERNAME, cas, MS_MAX_CA), 2);
	CU_ASSERT_PTR_EQUAL(cas[0], &p.ca[1]);
	CU_ASSERT_PTR_EQUAL(cas[1], &p.ca[0]);
	CU_ASSERT_EQUAL_FATAL(ms_ca_ces_list(cas[1], MS_AUTH_USERNAME, ces, MS_MAX_URI), 2);
	CU_ASSERT_STRING_EQUAL(ces[0], "https://ca-a1/CES"); /* then its failover CES */
	CU_ASSERT_STRING_EQUAL(ces[1], "https://ca-a2/CES");
	/* Client certificate: A (priority 1) before B (2). */
	CU_ASSERT_EQUAL_FATAL(ms_template_cas(&p, t, MS_AUTH_CERTIFICATE, cas, MS_MAX_CA), 2);
	CU_ASSERT_PTR_EQUAL(cas[0], &p.ca[0]);
	/* OnlyA: A only, whatever the priorities. */
	CU_ASSERT_EQUAL_FATAL(ms_template_cas(&p, only, MS_AUTH_USERNAME, cas, MS_MAX_CA), 1);
	CU_ASSERT_PTR_EQUAL(cas[0], &p.ca[0]);
	CU_ASSERT_EQUAL(ms_template_cas(&p, t, MS_AUTH_KERBEROS, cas, MS_MAX_CA), 0);
	/* The rules pass; the stand-alone-like CA is left out with a warning (R-CA-01). */
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(ms_check_template(&p, "AMTWebServer", AMTPROV_PURPOSE_WEB_SERVER,
					  on_check, &s), 0);
	CU_ASSERT_STRING_EQUAL(s.skips, "CA 'Standalone CA' publishes templates;");
	ms_policy_free(&p);

	/* CA A without Enroll permission: skipped for AMTWebServer (B still issues it), and
	 * OnlyA, which only A issues, is refused (R-CA-04). */
	xml = multi_ca_policy(0, "");
	CU_ASSERT_EQUAL_FATAL(ms_parse_policies(xml, strlen(xml), &p, why, sizeof(why)), 0);
	free(xml);
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(ms_check_template(&p, "AMTWebServer", AMTPROV_PURPOSE_WEB_SERVER,
					  on_check, &s), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(s.skips, "Enroll permission on CA 'Contoso CA A'"));
	t = ms_policy_template(&p, "AMTWebServer");
	CU_ASSERT_EQUAL_FATAL(ms_template_cas(&p, t, MS_AUTH_USERNAME, cas, MS_MAX_CA), 1);
	CU_ASSERT_PTR_EQUAL(cas[0], &p.ca[1]);
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(ms_check_template(&p, "OnlyA", AMTPROV_PURPOSE_WEB_SERVER, on_check, &s),
			1);
	CU_ASSERT_STRING_EQUAL(s.rules, "R-CA-04 ");
	ms_policy_free(&p);

	/* A cAReference that names no cA is refused, naming the template. */
	xml = multi_ca_policy(1, "<cAReference>42</cAReference>");
	CU_ASSERT_EQUAL(ms_parse_policies(xml, strlen(xml), &p, why, sizeof(why)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "'OnlyA': cAReference 42"));
	free(xml);
}

int main(void)
{
	CU_pSuite su;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	su = CU_add_suite("ca_mscert", NULL, NULL);
	CU_add_test(su, "MS-XCEP example policy read", test_spec_policy);
	CU_add_test(su, "CES URIs by priority, renewal-only left out", test_ces_order);
	CU_add_test(su, "MS-WSTEP examples: issued RSTRC and WCF fault", test_spec_rstr);
	CU_add_test(su, "pending RSTRC and denial fault with detail", test_pending_and_denied);
	CU_add_test(su, "DTD, entities, malformed XML refused", test_hostile_xml);
	CU_add_test(su, "built messages parse back, escaped", test_built_messages);
	CU_add_test(su, "WinRM Receive: output and exit code", test_winrm_receive);
	CU_add_test(su, "template rules R-CA-01..04, key, EKU, subject", test_rules);
	CU_add_test(su, "R-CA-01/R-CA-04 several CAs: cAReferences, CES priorities, skipped CAs",
		    test_multi_ca_policy);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	xmlCleanupParser();
	return fails ? 1 : 0;
}
