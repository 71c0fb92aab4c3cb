/* SPDX-License-Identifier: Apache-2.0 */
/*
 * adcssim_unit.c - CUnit tests of the AD CS test server, called through its HTTP handler
 * (no sockets): the XSDs against the specs' own example messages, CEP and CES replies
 * validated against those XSDs, the enterprise CA's request rules, pending / resubmit /
 * deny, revocation and the CRL, the WinRM certutil shell, client-certificate mapping and
 * the stand-alone CA.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <openssl/cms.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "der.h"
#include "rules.h"
#include "server.h"

#define FIX ADCSSIM_FIXTURES
#define SEED ADCSSIM_FIXTURES "/../../examples/seed.json"
#define CEP_UP "/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP"
#define CEP_CERT "/ADPolicyProvider_CEP_Certificate/service.svc/CEP"
#define CES_UP "/Contoso%20Issuing%20CA_CES_UsernamePassword/service.svc/CES"
#define CES_CERT "/Contoso%20Issuing%20CA_CES_Certificate/service.svc/CES"
#define NS_XCEP "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy"
#define NS_WST "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
#define NS_WSTEP "http://schemas.microsoft.com/windows/pki/2009/01/enrollment"

static char tmpdir[] = "/tmp/adcssim-unit-XXXXXX";
static struct adcs S;
static xmlSchemaPtr xsd_xcep, xsd_wst, xsd_wstep;

/* ---- helpers ---------------------------------------------------------------------- */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	if (b)
		b[n] = '\0';
	fclose(f);
	return b;
}

static xmlSchemaPtr load_xsd(const char *name)
{
	char path[512];
	xmlSchemaParserCtxtPtr pc;
	xmlSchemaPtr s;

	snprintf(path, sizeof(path), FIX "/xsd/%s", name);
	pc = xmlSchemaNewParserCtxt(path);
	s = pc ? xmlSchemaParse(pc) : NULL;
	xmlSchemaFreeParserCtxt(pc);
	return s;
}

static void quiet(void *ctx, xmlErrorPtr e)
{
	(void)ctx;
	(void)e;
}

/* Validates element n (copied into a document of its own) against schema. */
static int valid_node(xmlSchemaPtr schema, xmlNodePtr n)
{
	xmlDocPtr d = xmlNewDoc((const xmlChar *)"1.0");
	xmlNodePtr c = xmlDocCopyNode(n, d, 1);
	xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(schema);
	int rc;

	xmlDocSetRootElement(d, c);
	/* Tests that expect a failure look at the result, not at libxml2's message. */
	if (vc && getenv("ADCSSIM_XSD_VERBOSE") == NULL)
		xmlSchemaSetValidStructuredErrors(vc, quiet, NULL);
	rc = vc ? xmlSchemaValidateDoc(vc, d) : -1;
	xmlSchemaFreeValidCtxt(vc);
	xmlFreeDoc(d);
	return rc;
}

/* The first element of the SOAP body of buf, validated against schema. */
static int valid_body(xmlSchemaPtr schema, const char *buf)
{
	xmlDocPtr doc = soap_parse(buf, strlen(buf));
	xmlNodePtr b = soap_body_first(doc);
	int rc = b ? valid_node(schema, b) : -1;

	xmlFreeDoc(doc);
	return rc;
}

static int valid_fixture(xmlSchemaPtr schema, const char *name)
{
	char path[512], *buf;
	int rc;

	snprintf(path, sizeof(path), FIX "/spec/%s", name);
	buf = slurp(path);
	rc = buf ? valid_body(schema, buf) : -1;
	free(buf);
	return rc;
}

static struct http_resp call(const char *path, const char *body, const char *peer_cn,
			     const char *authz)
{
	struct http_req req;
	struct http_resp resp;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	snprintf(req.method, sizeof(req.method), "POST");
	snprintf(req.path, sizeof(req.path), "%s", path);
	snprintf(req.content_type, sizeof(req.content_type), "application/soap+xml; charset=utf-8");
	if (authz)
		snprintf(req.authorization, sizeof(req.authorization), "%s", authz);
	if (peer_cn)
		snprintf(req.peer_cn, sizeof(req.peer_cn), "%s", peer_cn);
	req.tls = 1;
	req.body = (char *)body;
	req.body_len = strlen(body);
	adcs_handle(&S, &req, &resp);
	return resp;
}

static const char *up_header(const char *user, const char *pass, struct sb *b)
{
	sb_printf(b, "<o:Security s:mustUnderstand=\"1\" xmlns:o=\"" NS_WSSE "\"><o:UsernameToken>"
		  "<o:Username>%s</o:Username><o:Password Type=\"http://docs.oasis-open.org/wss/"
		  "2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText\">%s"
		  "</o:Password></o:UsernameToken></o:Security>", user, pass);
	return b->p;
}

/* A CSR: bits, subject CN (NULL none), SAN dns (NULL none), template name in the BMP
 * extension, template OID/major/minor in 1.3.6.1.4.1.311.21.7 (NULL none), and a
 * CertificateTemplate name-value attribute (NULL none). */
static X509_REQ *make_csr(int bits, const char *cn, const char *san, const char *tmpl_bmp,
			  const char *tmpl_oid, long major, long minor, const char *nv_tmpl,
			  EVP_PKEY **key_out)
{
	EVP_PKEY *k = EVP_RSA_gen((unsigned)bits);
	X509_REQ *r = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *e;
	char sanv[300];

	X509_REQ_set_pubkey(r, k);
	if (cn)
		X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_UTF8,
					   (const unsigned char *)cn, -1, -1, 0);
	if (san) {
		snprintf(sanv, sizeof(sanv), "DNS:%s", san);
		e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sanv);
		sk_X509_EXTENSION_push(exts, e);
	}
	if (tmpl_bmp || tmpl_oid) {
		struct der_buf v = { 0 }, in = { 0 };
		ASN1_OBJECT *o;
		ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();

		if (tmpl_bmp) {
			der_bmp(&v, tmpl_bmp);
			o = OBJ_txt2obj("1.3.6.1.4.1.311.20.2", 1);
		} else {
			der_oid(&in, tmpl_oid);
			der_int(&in, major);
			der_int(&in, minor);
			der_wrap(&v, 0x30, &in);
			o = OBJ_txt2obj("1.3.6.1.4.1.311.21.7", 1);
		}
		ASN1_OCTET_STRING_set(os, v.p, (int)v.len);
		sk_X509_EXTENSION_push(exts, X509_EXTENSION_create_by_OBJ(NULL, o, 0, os));
		ASN1_OBJECT_free(o);
		ASN1_OCTET_STRING_free(os);
		der_free(&v);
		der_free(&in);
	}
	if (sk_X509_EXTENSION_num(exts))
		X509_REQ_add_extensions(r, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (nv_tmpl) {
		struct der_buf pair = { 0 }, seq = { 0 };
		ASN1_STRING *s = ASN1_STRING_new();

		der_bmp(&pair, "CertificateTemplate");
		der_bmp(&pair, nv_tmpl);
		der_wrap(&seq, 0x30, &pair);
		ASN1_STRING_set(s, seq.p, (int)seq.len);
		X509_REQ_add1_attr_by_txt(r, "1.3.6.1.4.1.311.13.2.1", V_ASN1_SEQUENCE,
					  (const unsigned char *)s, -1);
		ASN1_STRING_free(s);
		der_free(&pair);
		der_free(&seq);
	}
	X509_REQ_sign(r, k, EVP_sha256());
	if (key_out)
		*key_out = k;
	else
		EVP_PKEY_free(k);
	return r;
}

/* An RST Issue envelope around req; ctx_tmpl adds the CertificateTemplate ContextItem. */
static char *rst_issue(X509_REQ *req, const char *ctx_tmpl, const char *user, const char *pass)
{
	struct sb b = { 0 }, h = { 0 };
	unsigned char *der = NULL;
	int n = i2d_X509_REQ(req, &der);

	sb_add(&b, "<s:Envelope xmlns:s=\"" NS_SOAP "\" xmlns:a=\"" NS_WSA "\"><s:Header>"
		   "<a:Action s:mustUnderstand=\"1\">" NS_WSTEP "/RST/wstep</a:Action>"
		   "<a:MessageID>urn:uuid:0f0e0d0c-0b0a-4908-8706-050403020100</a:MessageID>");
	if (user)
		sb_add(&b, up_header(user, pass, &h));
	sb_add(&b, "</s:Header><s:Body xmlns:xsi=\"" NS_XSI "\"><RequestSecurityToken xmlns=\""
		   NS_WST "\"><TokenType>http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-"
		   "x509-token-profile-1.0#X509v3</TokenType><RequestType>" NS_WST "/Issue"
		   "</RequestType><BinarySecurityToken ValueType=\"" NS_WSTEP "#PKCS10\" "
		   "EncodingType=\"" NS_WSSE "#base64binary\" xmlns=\"" NS_WSSE "\">");
	sb_b64(&b, der, (size_t)n);
	sb_add(&b, "</BinarySecurityToken>");
	if (ctx_tmpl)
		sb_printf(&b, "<AdditionalContext xmlns=\"http://schemas.xmlsoap.org/ws/2006/12/"
			  "authorization\"><ContextItem Name=\"CertificateTemplate\"><Value>%s"
			  "</Value></ContextItem></AdditionalContext>", ctx_tmpl);
	sb_add(&b, "<RequestID xsi:nil=\"true\" xmlns=\"" NS_WSTEP "\"/></RequestSecurityToken>"
		   "</s:Body></s:Envelope>");
	OPENSSL_free(der);
	sb_free(&h);
	return b.p;
}

static char *rst_query(const char *id, const char *user, const char *pass)
{
	struct sb b = { 0 }, h = { 0 };

	sb_add(&b, "<s:Envelope xmlns:s=\"" NS_SOAP "\" xmlns:a=\"" NS_WSA "\"><s:Header>"
		   "<a:Action s:mustUnderstand=\"1\">" NS_WSTEP "/RST/wstep</a:Action>"
		   "<a:MessageID>urn:uuid:1</a:MessageID>");
	sb_add(&b, up_header(user, pass, &h));
	sb_printf(&b, "</s:Header><s:Body><RequestSecurityToken xmlns=\"" NS_WST "\"><TokenType>"
		  "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0"
		  "#X509v3</TokenType><RequestType>" NS_WSTEP "/QueryTokenStatus</RequestType>"
		  "<RequestID xmlns=\"" NS_WSTEP "\">%s</RequestID></RequestSecurityToken></s:Body>"
		  "</s:Envelope>", id);
	sb_free(&h);
	return b.p;
}

/* Text of the first element named name in ns anywhere in buf (malloc'd) or NULL. */
static char *find_text(const char *buf, const char *ns, const char *name)
{
	xmlDocPtr doc = soap_parse(buf, strlen(buf));
	xmlNodePtr n = doc ? xmlDocGetRootElement(doc) : NULL;
	char *t = NULL;

	while (n && !t) {
		if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name) && n->ns &&
		    !strcmp((const char *)n->ns->href, ns)) {
			t = soap_text(n);
			break;
		}
		if (n->children) {
			n = n->children;
			continue;
		}
		while (n && !n->next)
			n = n->parent;
		if (n)
			n = n->next;
	}
	xmlFreeDoc(doc);
	return t;
}

static long fault_code(const char *buf)
{
	char *t = find_text(buf, NS_WSTEP, "ErrorCode");
	long v = t ? strtol(t, NULL, 10) : 0;

	free(t);
	return v;
}

/* The issued certificate of an RSTRC (the X509v3 BinarySecurityToken). */
static X509 *issued_cert(const char *buf)
{
	xmlDocPtr doc = soap_parse(buf, strlen(buf));
	xmlNodePtr rstr = soap_child(soap_body_first(doc), NS_WST, "RequestSecurityTokenResponse");
	xmlNodePtr rt = soap_child(rstr, NS_WST, "RequestedSecurityToken");
	char *t = soap_text(soap_child(rt, NS_WSSE, "BinarySecurityToken"));
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len;
	X509 *c = NULL;

	if (t && soap_b64_decode(t, &der, &len) == 0) {
		p = der;
		c = d2i_X509(NULL, &p, (long)len);
	}
	free(der);
	free(t);
	xmlFreeDoc(doc);
	return c;
}

/* The RSTR-level CMC response: a CMS SignedData with a PKIResponse, verified against the
 * CA; returns its cMCStatus or -1. */
static int cmc_status(const char *buf)
{
	xmlDocPtr doc = soap_parse(buf, strlen(buf));
	xmlNodePtr rstr = soap_child(soap_body_first(doc), NS_WST, "RequestSecurityTokenResponse");
	char *t = soap_text(soap_child(rstr, NS_WSSE, "BinarySecurityToken"));
	unsigned char *der = NULL;
	const unsigned char *p, *c, *end;
	size_t len, cl;
	unsigned tag;
	CMS_ContentInfo *cms = NULL;
	X509_STORE *st = X509_STORE_new();
	BIO *out = BIO_new(BIO_s_mem());
	char oid[64];
	int status = -1;
	BUF_MEM *bm;

	X509_STORE_add_cert(st, S.ca.cert);
	if (t && soap_b64_decode(t, &der, &len) == 0) {
		p = der;
		cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	}
	if (cms && OBJ_obj2txt(oid, sizeof(oid), CMS_get0_eContentType(cms), 1) > 0 &&
	    !strcmp(oid, "1.3.6.1.5.5.7.12.3") &&
	    CMS_verify(cms, NULL, st, NULL, out, CMS_BINARY) == 1) {
		/* PKIResponse -> controlSequence -> TaggedAttribute -> SET -> CMCStatusInfo */
		BIO_get_mem_ptr(out, &bm);
		p = (const unsigned char *)bm->data;
		end = p + bm->length;
		if (!der_next(&p, end, &tag, &c, &cl) && !der_next(&c, c + cl, &tag, &p, &cl) &&
		    !der_next(&p, p + cl, &tag, &c, &cl)) {
			const unsigned char *q = c, *qe = c + cl, *x;
			long v;

			der_next(&q, qe, &tag, &x, &cl);  /* bodyPartID */
			der_next(&q, qe, &tag, &x, &cl);  /* attrType */
			if (!der_next(&q, qe, &tag, &x, &cl) && tag == 0x31 &&
			    !der_next(&x, x + cl, &tag, &q, &cl) && tag == 0x30 &&
			    !der_next(&q, q + cl, &tag, &x, &cl) && tag == 0x02 &&
			    !der_int_value(x, cl, &v))
				status = (int)v;
		}
	}
	CMS_ContentInfo_free(cms);
	X509_STORE_free(st);
	BIO_free(out);
	free(der);
	free(t);
	xmlFreeDoc(doc);
	return status;
}

static int ext_has(X509 *c, int nid, const char *text)
{
	int i = X509_get_ext_by_NID(c, nid, -1);
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *bm;
	int hit = 0;

	if (i >= 0 && X509V3_EXT_print(b, X509_get_ext(c, i), 0, 0) == 1) {
		BIO_write(b, "", 1);
		BIO_get_mem_ptr(b, &bm);
		hit = strstr(bm->data, text) != NULL;
	}
	BIO_free(b);
	return hit;
}

static struct http_resp issue(X509_REQ *req, const char *ctx_tmpl)
{
	char *env = rst_issue(req, ctx_tmpl, "sccm-site", "Site-Secret-1");
	struct http_resp r = call(CES_UP, env, NULL, NULL);

	free(env);
	return r;
}

/* ---- setup ------------------------------------------------------------------------ */

static int open_state(const char *seed)
{
	char err[256], path[600];

	memset(&S, 0, sizeof(S));
	if (seed_load(&S.seed, seed, err, sizeof(err)) ||
	    ca_open(&S.ca, tmpdir, S.seed.ca_name, S.seed.ca_hash, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	snprintf(S.https_base, sizeof(S.https_base), "https://ces.contoso.com:443");
	snprintf(S.ca.crl_url, sizeof(S.ca.crl_url), "http://ces.contoso.com/CertEnroll/x.crl");
	S.last_update = time(NULL) - 60;
	snprintf(path, sizeof(path), "%s/ca.db", tmpdir);
	S.db = db_open(path, err, sizeof(err));
	return S.db ? 0 : -1;
}

static void close_state(void)
{
	winrm_free(&S);
	db_close(S.db);
	ca_close(&S.ca);
	seed_free(&S.seed);
}

static int suite_init(void)
{
	if (!mkdtemp(tmpdir))
		return -1;
	xsd_xcep = load_xsd("xcep.xsd");
	xsd_wst = load_xsd("wst.xsd");
	xsd_wstep = load_xsd("wstep.xsd");
	if (!xsd_xcep || !xsd_wst || !xsd_wstep)
		return -1;
	return open_state(SEED);
}

static int suite_clean(void)
{
	char cmd[600];

	close_state();
	xmlSchemaFree(xsd_xcep);
	xmlSchemaFree(xsd_wst);
	xmlSchemaFree(xsd_wstep);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests ------------------------------------------------------------------------ */

/* The XSDs accept every example message of the specs, and reject a broken one. */
static void test_xsd_spec_examples(void)
{
	const char *bad = "<s:Envelope xmlns:s=\"" NS_SOAP "\"><s:Body><RequestSecurityToken xmlns=\""
			  NS_WST "\"><RequestType>" NS_WST "/Issue</RequestType><TokenType>"
			  "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-"
			  "profile-1.0#X509v3</TokenType></RequestSecurityToken></s:Body></s:Envelope>";

	CU_ASSERT_EQUAL(valid_fixture(xsd_xcep, "xcep-4.1.1.1-getpolicies.xml"), 0);
	CU_ASSERT_EQUAL(valid_fixture(xsd_xcep, "xcep-4.1.1.2-response.xml"), 0);
	CU_ASSERT_EQUAL(valid_fixture(xsd_xcep, "xcep-4.1.2.1-getpolicies-notchanged.xml"), 0);
	CU_ASSERT_EQUAL(valid_fixture(xsd_xcep, "xcep-4.1.2.2-response-notchanged.xml"), 0);
	CU_ASSERT_EQUAL(valid_fixture(xsd_wst, "wstep-4.1.1.1-rst-issue.xml"), 0);
	CU_ASSERT_EQUAL(valid_fixture(xsd_wst, "wstep-4.1.1.2-rstrc-issued.xml"), 0);
	CU_ASSERT_EQUAL(valid_fixture(xsd_wst, "wstep-4.1.3.1-rst-querytokenstatus.xml"), 0);
	CU_ASSERT_NOT_EQUAL(valid_body(xsd_wst, bad), 0); /* TokenType after RequestType */
}

static char *spec_getpolicies(const char *file, const char *user, const char *pass)
{
	char path[512], *buf = NULL, *p, *out;
	struct sb b = { 0 };

	snprintf(path, sizeof(path), FIX "/spec/%s", file);
	buf = slurp(path);
	if (!buf)
		return NULL;
	/* Put credentials where the spec removed them. */
	p = strstr(buf, "<!--Removed-->");
	if (p) {
		sb_addn(&b, buf, (size_t)(p - buf));
		sb_add(&b, user);
		p += 14;
		out = strstr(p, "<!--Removed-->");
		if (out) {
			sb_addn(&b, p, (size_t)(out - p));
			sb_add(&b, pass);
			p = out + 14;
		}
		sb_add(&b, p);
		free(buf);
		return b.p;
	}
	return buf;
}

/* CEP: the spec's own GetPolicies request gets a full, schema-valid reply (R-MSCA). */
static void test_cep_spec_request(void)
{
	char *req = spec_getpolicies("xcep-4.1.1.1-getpolicies.xml", "CONTOSO\\sccm-site",
				     "Site-Secret-1");
	struct http_resp r = call(CEP_UP, req, NULL, NULL);
	char *name;

	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(valid_body(xsd_xcep, r.body), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<commonName>AMTWebServer</commonName>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<commonName>AMTWebServerV3</commonName>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<clientAuthentication>4</clientAuthentication>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "/Contoso%20Issuing%20CA_CES_UsernamePassword/"
					      "service.svc/CES"));
	/* the v3 template has a hash algorithm reference, the v1/v2 ones are nil */
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<hashAlgorithmOIDReference>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<value>2.16.840.1.101.3.4.2.2</value><group>1"));
	name = find_text(r.body, NS_XCEP, "policyID");
	CU_ASSERT_STRING_EQUAL(name ? name : "", "{6A6B1C2D-3E4F-4A5B-8C7D-0E1F2A3B4C5D}");
	free(name);
	free(r.body);
	free(req);

	/* the same request with a wrong password: WS-Security fault, HTTP 500 */
	req = spec_getpolicies("xcep-4.1.1.1-getpolicies.xml", "sccm-site", "wrong");
	r = call(CEP_UP, req, NULL, NULL);
	CU_ASSERT_EQUAL(r.status, 500);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "InvalidSecurity"));
	free(r.body);
	free(req);
}

/* CEP with --peer-ca: two enterprise CAs in one schema-valid policy, each template
 * referencing the CAs that publish it; a stand-alone peer is listed and referenced by none. */
static void test_cep_peer_ca(void)
{
	char *req = spec_getpolicies("xcep-4.1.1.1-getpolicies.xml", "sccm-site", "Site-Secret-1");
	char err[256];
	struct adcs_peer *p = &S.peers[0];
	struct http_resp r;

	memset(p, 0, sizeof(*p));
	CU_ASSERT_EQUAL_FATAL(seed_load(&p->seed, SEED, err, sizeof(err)), 0);
	snprintf(p->seed.ca_name, sizeof(p->seed.ca_name), "Contoso Peer CA");
	snprintf(p->https_base, sizeof(p->https_base), "https://ces2.contoso.com:443");
	p->cert = S.ca.cert;
	X509_up_ref(p->cert);
	p->ces_priority = 20;
	S.n_peers = 1;
	r = call(CEP_UP, req, NULL, NULL);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(valid_body(xsd_xcep, r.body), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<cAs><cAReference>0</cAReference><cAReference>1"
					      "</cAReference></cAs><attributes><commonName>"
					      "AMTWebServer</commonName>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<cAReferenceID>0</cAReferenceID></cA><cA>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<uri>https://ces2.contoso.com:443/Contoso%20Peer%20CA"
					      "_CES_UsernamePassword/service.svc/CES</uri><priority>"
					      "20</priority>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<cAReferenceID>1</cAReferenceID></cA></cAs>"));
	free(r.body);

	p->seed.standalone = 1;
	r = call(CEP_UP, req, NULL, NULL);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(valid_body(xsd_xcep, r.body), 0);
	CU_ASSERT_PTR_NULL(strstr(r.body, "<cAReference>1</cAReference>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<cAReferenceID>1</cAReferenceID></cA></cAs>"));
	free(r.body);
	S.n_peers = 0;
	seed_free(&p->seed);
	X509_free(p->cert);
	free(req);
}

/* CEP: lastUpdate at or after LastUpdateTime -> policiesNotChanged, nil collections. */
static void test_cep_not_changed(void)
{
	char *req = spec_getpolicies("xcep-4.1.2.1-getpolicies-notchanged.xml", "sccm-site",
				     "Site-Secret-1"), *p;
	struct http_resp r;
	struct sb b = { 0 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(req);
	r = call(CEP_UP, req, NULL, NULL);
	/* a 2009 lastUpdate is older than the policy: full reply */
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<policiesNotChanged>false</policiesNotChanged>"));
	free(r.body);
	p = strstr(req, "2009-03-15T09:38:46");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	sb_addn(&b, req, (size_t)(p - req));
	sb_add(&b, "2099-01-01T00:00:00");
	sb_add(&b, p + 19);
	r = call(CEP_UP, b.p, NULL, NULL);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(valid_body(xsd_xcep, r.body), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<policiesNotChanged>true</policiesNotChanged>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<cAs xsi:nil=\"true\"/>"));
	free(r.body);
	sb_free(&b);
	free(req);
}

/* CEP: GetPolicies without client -> fault; TLS client certificate endpoint. */
static void test_cep_client_and_cert(void)
{
	const char *noclient = "<s:Envelope xmlns:s=\"" NS_SOAP "\" xmlns:a=\"" NS_WSA "\">"
			       "<s:Header><a:Action>" NS_XCEP "/IPolicy/GetPolicies</a:Action>"
			       "</s:Header><s:Body><GetPolicies xmlns=\"" NS_XCEP "\"><client/>"
			       "</GetPolicies></s:Body></s:Envelope>";
	const char *ok = "<s:Envelope xmlns:s=\"" NS_SOAP "\" xmlns:a=\"" NS_WSA "\" xmlns:xsi=\""
			 NS_XSI "\"><s:Header><a:Action>" NS_XCEP "/IPolicy/GetPolicies</a:Action>"
			 "</s:Header><s:Body><GetPolicies xmlns=\"" NS_XCEP "\"><client>"
			 "<lastUpdate xsi:nil=\"true\"/><preferredLanguage xsi:nil=\"true\"/>"
			 "</client><requestFilter xsi:nil=\"true\"/></GetPolicies></s:Body>"
			 "</s:Envelope>";
	struct http_resp r = call(CEP_CERT, noclient, "sccm-site.contoso.com", NULL);

	CU_ASSERT_EQUAL(r.status, 500);
	free(r.body);
	r = call(CEP_CERT, ok, NULL, NULL); /* no client certificate */
	CU_ASSERT_EQUAL(r.status, 403);
	free(r.body);
	r = call(CEP_CERT, ok, "unknown.contoso.com", NULL);
	CU_ASSERT_EQUAL(r.status, 403);
	free(r.body);
	r = call(CEP_CERT, ok, "helpdesk.contoso.com", NULL);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(valid_body(xsd_xcep, r.body), 0);
	/* helpdesk may enroll only on Workstation */
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<commonName>AMTWebServer</commonName><policySchema>2"
					      "</policySchema><certificateValidity>"
					      "<validityPeriodSeconds>31536000</validityPeriodSeconds>"
					      "<renewalPeriodSeconds>3628800</renewalPeriodSeconds>"
					      "</certificateValidity><permission><enroll>false"));
	free(r.body);
}

/* CES: a PKCS#10 naming the v2 AMT template is issued with the template's extensions, a
 * schema-valid RSTRC and a CMC response signed by the CA (status 0). */
static void test_ces_issue_v2(void)
{
	EVP_PKEY *k;
	X509_REQ *req = make_csr(2048, "amt1.contoso.com", "amt1.contoso.com", "AMTWebServer",
				 NULL, 0, 0, NULL, &k);
	struct http_resp r = issue(req, NULL);
	X509 *c;
	char *id;

	if (r.status != 200)
		fprintf(stderr, "%s\n", r.body);

	CU_ASSERT_EQUAL_FATAL(r.status, 200);
	CU_ASSERT_EQUAL(valid_body(xsd_wst, r.body), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, ">Issued</DispositionMessage>"));
	CU_ASSERT_EQUAL(cmc_status(r.body), 0);
	c = issued_cert(r.body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(X509_check_private_key(c, k), 1);
	CU_ASSERT_EQUAL(X509_check_issued(S.ca.cert, c), X509_V_OK);
	CU_ASSERT(ext_has(c, NID_ext_key_usage, "2.16.840.1.113741.1.2.3"));
	CU_ASSERT(ext_has(c, NID_ext_key_usage, "TLS Web Server Authentication"));
	CU_ASSERT(ext_has(c, NID_subject_alt_name, "DNS:amt1.contoso.com"));
	{
		ASN1_OBJECT *ti = OBJ_txt2obj("1.3.6.1.4.1.311.21.7", 1);

		CU_ASSERT(X509_get_ext_by_OBJ(c, ti, -1) >= 0);
		ASN1_OBJECT_free(ti);
	}
	id = find_text(r.body, NS_WSTEP, "RequestID");
	CU_ASSERT(id && strtol(id, NULL, 10) > 0);
	free(id);
	X509_free(c);
	EVP_PKEY_free(k);
	X509_REQ_free(req);
	free(r.body);
}

/* CES: the four ways to name a template; conflicts and newer versions are refused. */
static void test_ces_template_lookup(void)
{
	const struct seed_template *amt = seed_template(&S.seed, "AMTWebServer");
	X509_REQ *q;
	struct http_resp r;

	q = make_csr(2048, "a.contoso.com", NULL, NULL, NULL, 0, 0, NULL, NULL);
	r = issue(q, "AMTWebServer"); /* ContextItem only */
	CU_ASSERT_EQUAL(r.status, 200);
	free(r.body);
	r = issue(q, NULL); /* nothing names a template */
	CU_ASSERT_EQUAL(r.status, 500);
	CU_ASSERT_EQUAL(fault_code(r.body), (long)(int)CERTSRV_E_UNSUPPORTED_CERT_TYPE);
	free(r.body);
	r = issue(q, "NoSuchTemplate");
	CU_ASSERT_EQUAL(fault_code(r.body), (long)(int)CERTSRV_E_UNSUPPORTED_CERT_TYPE);
	free(r.body);
	X509_REQ_free(q);

	q = make_csr(2048, "a.contoso.com", NULL, NULL, amt->oid, 100, 3, NULL, NULL);
	r = issue(q, NULL); /* template information extension */
	CU_ASSERT_EQUAL(r.status, 200);
	free(r.body);
	X509_REQ_free(q);
	q = make_csr(2048, "a.contoso.com", NULL, NULL, amt->oid, 101, 0, NULL, NULL);
	r = issue(q, NULL);
	CU_ASSERT_EQUAL(fault_code(r.body), (long)(int)CERTSRV_E_BAD_TEMPLATE_VERSION);
	free(r.body);
	X509_REQ_free(q);

	q = make_csr(2048, "a.contoso.com", NULL, NULL, NULL, 0, 0, "AMTWebServer", NULL);
	r = issue(q, NULL); /* name-value pair attribute */
	CU_ASSERT_EQUAL(r.status, 200);
	free(r.body);
	X509_REQ_free(q);

	q = make_csr(2048, "a.contoso.com", NULL, "WebServer", NULL, 0, 0, NULL, NULL);
	r = issue(q, "AMTWebServer"); /* two sources disagree */
	CU_ASSERT_EQUAL(fault_code(r.body), (long)(int)CERTSRV_E_TEMPLATE_CONFLICT);
	CU_ASSERT_EQUAL(valid_body(xsd_wst, r.body) == 0, 0); /* a fault is no RSTRC */
	free(r.body);
	r = issue(q, "WebServer"); /* v1 by name */
	CU_ASSERT_EQUAL(r.status, 200);
	free(r.body);
	X509_REQ_free(q);
}

/* CES: permissions, minimal key length, v3 hash, subject built from the directory. */
static void test_ces_template_rules(void)
{
	X509_REQ *q;
	struct http_resp r;
	X509 *c;
	char cn[128] = "";

	q = make_csr(2048, "a.contoso.com", NULL, "AMTWebServerRestricted", NULL, 0, 0, NULL, NULL);
	r = issue(q, NULL);
	CU_ASSERT_EQUAL(r.status, 500);
	CU_ASSERT_EQUAL(fault_code(r.body), (long)(int)CERTSRV_E_TEMPLATE_DENIED);
	free(r.body);
	X509_REQ_free(q);

	q = make_csr(1024, "a.contoso.com", NULL, "AMTWebServer", NULL, 0, 0, NULL, NULL);
	r = issue(q, NULL);
	CU_ASSERT_EQUAL(fault_code(r.body), (long)(int)CERTSRV_E_KEY_LENGTH);
	free(r.body);
	X509_REQ_free(q);

	q = make_csr(2048, "a.contoso.com", NULL, "AMTWebServerV3", NULL, 0, 0, NULL, NULL);
	r = issue(q, NULL); /* the v3 template wants 3072 bits */
	CU_ASSERT_EQUAL(fault_code(r.body), (long)(int)CERTSRV_E_KEY_LENGTH);
	free(r.body);
	X509_REQ_free(q);
	q = make_csr(3072, "a.contoso.com", NULL, "AMTWebServerV3", NULL, 0, 0, NULL, NULL);
	r = issue(q, NULL);
	CU_ASSERT_EQUAL_FATAL(r.status, 200);
	c = issued_cert(r.body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(X509_get_signature_nid(c), NID_sha384WithRSAEncryption);
	X509_free(c);
	free(r.body);
	X509_REQ_free(q);

	/* Workstation: no "supply in the request": CSR subject/SAN ignored, DNS from AD. */
	q = make_csr(2048, "evil.example.org", "evil.example.org", "Workstation", NULL, 0, 0, NULL,
		     NULL);
	r = issue(q, NULL);
	CU_ASSERT_EQUAL_FATAL(r.status, 200);
	c = issued_cert(r.body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof(cn));
	CU_ASSERT_STRING_EQUAL(cn, "sccm-site");
	CU_ASSERT(ext_has(c, NID_subject_alt_name, "DNS:sccm01.contoso.com"));
	CU_ASSERT(!ext_has(c, NID_subject_alt_name, "evil.example.org"));
	X509_free(c);
	free(r.body);
	/* the helpdesk account has no dNSHostName */
	{
		char *env = rst_issue(q, NULL, "helpdesk", "Helpdesk-Secret-2");

		r = call(CES_UP, env, NULL, NULL);
		CU_ASSERT_EQUAL(fault_code(r.body), (long)(int)CERTSRV_E_SUBJECT_DNS_REQUIRED);
		free(r.body);
		free(env);
	}
	X509_REQ_free(q);

	/* enrollee supplies subject, but the CSR has neither subject nor SAN */
	q = make_csr(2048, NULL, NULL, "AMT8021XClient", NULL, 0, 0, NULL, NULL);
	r = issue(q, NULL);
	CU_ASSERT_EQUAL(fault_code(r.body), (long)(int)CERTSRV_E_BAD_REQUESTSUBJECT);
	free(r.body);
	X509_REQ_free(q);
}

static long pending_id(const char *body)
{
	char *id = find_text(body, NS_WSTEP, "RequestID");
	long v = id ? strtol(id, NULL, 10) : 0;

	free(id);
	return v;
}

/* CES: pend-all template -> pending RSTRC with a reference to this CES, CMC status 3;
 * poll stays pending; resubmit; poll returns the certificate. */
static void test_ces_pending_resubmit(void)
{
	X509_REQ *q = make_csr(2048, "amt2.contoso.com", NULL, "AMTWebServerApproval", NULL, 0, 0,
			       NULL, NULL);
	struct http_resp r = issue(q, NULL);
	struct sb out = { 0 };
	char id[32], *poll, *ref;
	X509 *c;

	CU_ASSERT_EQUAL_FATAL(r.status, 200);
	CU_ASSERT_EQUAL(valid_body(xsd_wst, r.body), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "Taken Under Submission"));
	CU_ASSERT_EQUAL(cmc_status(r.body), 3);
	CU_ASSERT_PTR_NULL(issued_cert(r.body));
	ref = strstr(r.body, "<Reference URI=\"https://ces.contoso.com:443" CES_UP "\"");
	CU_ASSERT_PTR_NOT_NULL(ref);
	snprintf(id, sizeof(id), "%ld", pending_id(r.body));
	free(r.body);
	poll = rst_query(id, "sccm-site", "Site-Secret-1");
	r = call(CES_UP, poll, NULL, NULL);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "Taken Under Submission"));
	free(r.body);
	/* another account may not fetch it */
	{
		char *other = rst_query(id, "helpdesk", "Helpdesk-Secret-2");

		r = call(CES_UP, other, NULL, NULL);
		CU_ASSERT_EQUAL(r.status, 500);
		free(r.body);
		free(other);
	}
	CU_ASSERT_EQUAL(admin_resubmit(&S, strtol(id, NULL, 10), &out), 0);
	CU_ASSERT_EQUAL(admin_resubmit(&S, strtol(id, NULL, 10), &out), 1); /* no longer pending */
	sb_free(&out);
	r = call(CES_UP, poll, NULL, NULL);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(valid_body(xsd_wst, r.body), 0);
	CU_ASSERT_EQUAL(cmc_status(r.body), 0);
	c = issued_cert(r.body);
	CU_ASSERT_PTR_NOT_NULL(c);
	X509_free(c);
	free(r.body);
	free(poll);
	X509_REQ_free(q);
}

/* CES: a denied pending request polls as a fault with ADMIN_DENIED and the request id. */
static void test_ces_pending_deny(void)
{
	X509_REQ *q = make_csr(2048, "amt3.contoso.com", NULL, "AMTWebServerApproval", NULL, 0, 0,
			       NULL, NULL);
	struct http_resp r = issue(q, NULL);
	struct sb out = { 0 };
	char id[32], *poll, *rid;
	xmlDocPtr doc;
	xmlNodePtr detail;

	snprintf(id, sizeof(id), "%ld", pending_id(r.body));
	free(r.body);
	CU_ASSERT_EQUAL(admin_deny(&S, strtol(id, NULL, 10), &out), 0);
	sb_free(&out);
	poll = rst_query(id, "sccm-site", "Site-Secret-1");
	r = call(CES_UP, poll, NULL, NULL);
	CU_ASSERT_EQUAL(r.status, 500);
	CU_ASSERT_EQUAL(fault_code(r.body), -2146877420L); /* 0x80094014 */
	rid = find_text(r.body, NS_WSTEP, "RequestID");
	CU_ASSERT_STRING_EQUAL(rid ? rid : "", id);
	free(rid);
	doc = soap_parse(r.body, strlen(r.body));
	detail = soap_child(soap_child(soap_child(soap_body(doc), NS_SOAP, "Fault"), NS_SOAP,
				       "Detail"), NS_WSTEP, "CertificateEnrollmentWSDetail");
	CU_ASSERT_PTR_NOT_NULL_FATAL(detail);
	CU_ASSERT_EQUAL(valid_node(xsd_wstep, detail), 0);
	xmlFreeDoc(doc);
	free(r.body);
	free(poll);
	X509_REQ_free(q);
}

/* CES: malformed requests get faults: action, TokenType, RequestType, missing BST/ID. */
static void test_ces_request_checks(void)
{
	X509_REQ *q = make_csr(2048, "a.contoso.com", NULL, "AMTWebServer", NULL, 0, 0, NULL, NULL);
	char *env = rst_issue(q, NULL, "sccm-site", "Site-Secret-1"), *m, *p;
	struct http_resp r;
	struct { const char *from, *to; } edits[] = {
		{ "/RST/wstep</a:Action>", "/RST/KET</a:Action>" },
		{ "token-profile-1.0#X509v3</TokenType>", "token-profile-1.0#X509</TokenType>" },
		{ "200512/Issue</RequestType>", "200512/Renew</RequestType>" },
		{ "EncodingType=\"", "EncodingType=\"x" },
		{ "</TokenType>", "</TokenType><!--" },
	};
	size_t i;

	for (i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		struct sb b = { 0 };

		p = strstr(env, edits[i].from);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		sb_addn(&b, env, (size_t)(p - env));
		sb_add(&b, edits[i].to);
		m = p + strlen(edits[i].from);
		if (i == 4) /* drop the whole token: Issue without BinarySecurityToken */
			m = strstr(m, "</BinarySecurityToken>") + 22, sb_add(&b, "-->");
		sb_add(&b, m);
		r = call(CES_UP, b.p, NULL, NULL);
		CU_ASSERT_EQUAL(r.status, 500);
		CU_ASSERT_PTR_NOT_NULL(r.body && strstr(r.body, "<s:Fault>"));
		free(r.body);
		sb_free(&b);
	}
	m = rst_query("", "sccm-site", "Site-Secret-1"); /* QueryTokenStatus, empty RequestID */
	r = call(CES_UP, m, NULL, NULL);
	CU_ASSERT_EQUAL(r.status, 500);
	free(r.body);
	free(m);
	free(env);
	X509_REQ_free(q);
}

/* CES: the spec's example requests. Its Issue names the "User" template, which this CA
 * does not publish; its QueryTokenStatus asks for request 65, unknown here. */
static void test_ces_spec_requests(void)
{
	char path[512], *buf, *hdr, *withauth;
	struct sb b = { 0 }, h = { 0 };
	struct http_resp r;
	const char *files[] = { "wstep-4.1.1.1-rst-issue.xml",
				"wstep-4.1.3.1-rst-querytokenstatus.xml" };
	const long want[] = { (long)(int)CERTSRV_E_UNSUPPORTED_CERT_TYPE, (long)(int)0x80094004L };
	size_t i;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), FIX "/spec/%s", files[i]);
		buf = slurp(path);
		CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
		hdr = strstr(buf, "</s:Header>");
		CU_ASSERT_PTR_NOT_NULL_FATAL(hdr);
		sb_addn(&b, buf, (size_t)(hdr - buf));
		sb_add(&b, up_header("sccm-site", "Site-Secret-1", &h));
		sb_add(&b, hdr);
		withauth = b.p;
		r = call(CES_UP, withauth, NULL, NULL);
		CU_ASSERT_EQUAL(r.status, 500);
		CU_ASSERT_EQUAL(fault_code(r.body), want[i]);
		free(r.body);
		free(buf);
		sb_free(&b);
		sb_free(&h);
	}
}

static char *wsman(const char *action, const char *shell, const char *body)
{
	struct sb b = { 0 };

	sb_printf(&b, "<s:Envelope xmlns:s=\"" NS_SOAP "\" xmlns:a=\"http://schemas.xmlsoap.org/ws/"
		  "2004/08/addressing\" xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" "
		  "xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\"><s:Header>"
		  "<a:To>https://ca/wsman</a:To><w:ResourceURI s:mustUnderstand=\"true\">"
		  "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>"
		  "<a:Action s:mustUnderstand=\"true\">%s</a:Action><a:MessageID>uuid:1"
		  "</a:MessageID>", action);
	if (shell)
		sb_printf(&b, "<w:SelectorSet><w:Selector Name=\"ShellId\">%s</w:Selector>"
			  "</w:SelectorSet>", shell);
	sb_printf(&b, "</s:Header><s:Body>%s</s:Body></s:Envelope>", body);
	return b.p;
}

static char *shell_run(const char *basic, const char *cmd, const char *args, char *out,
		       size_t outsz)
{
	char *m, *shell, body[600], *cid, *st;
	struct http_resp r;
	xmlDocPtr doc;

	m = wsman("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", NULL,
		  "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout "
		  "stderr</rsp:OutputStreams></rsp:Shell>");
	r = call("/wsman", m, NULL, basic);
	free(m);
	if (r.status != 200) {
		free(r.body);
		return NULL;
	}
	shell = find_text(r.body, "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd", "Selector");
	free(r.body);
	snprintf(body, sizeof(body), "<rsp:CommandLine><rsp:Command>%s</rsp:Command>"
		 "<rsp:Arguments>%s</rsp:Arguments></rsp:CommandLine>", cmd, args);
	m = wsman("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command", shell, body);
	r = call("/wsman", m, NULL, basic);
	free(m);
	cid = find_text(r.body, "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
			"CommandId");
	free(r.body);
	snprintf(body, sizeof(body), "<rsp:Receive><rsp:DesiredStream CommandId=\"%s\">stdout "
		 "stderr</rsp:DesiredStream></rsp:Receive>", cid ? cid : "");
	m = wsman("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive", shell, body);
	r = call("/wsman", m, NULL, basic);
	free(m);
	st = find_text(r.body, "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
		       "ExitCode");
	/* stdout of the command, decoded */
	doc = soap_parse(r.body, strlen(r.body));
	out[0] = '\0';
	if (doc) {
		char *s = find_text(r.body, "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
				    "Stream");
		unsigned char *d = NULL;
		size_t n;

		if (s && *s && soap_b64_decode(s, &d, &n) == 0)
			snprintf(out, outsz, "%.*s", (int)n, d);
		free(d);
		free(s);
	}
	xmlFreeDoc(doc);
	free(r.body);
	snprintf(body, sizeof(body), "<rsp:Signal CommandId=\"%s\"><rsp:Code>http://schemas."
		 "microsoft.com/wbem/wsman/1/windows/shell/signal/terminate</rsp:Code></rsp:Signal>",
		 cid ? cid : "");
	m = wsman("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal", shell, body);
	r = call("/wsman", m, NULL, basic);
	CU_ASSERT_EQUAL(r.status, 200);
	free(r.body);
	free(m);
	m = wsman("http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete", shell, "");
	r = call("/wsman", m, NULL, basic);
	CU_ASSERT_EQUAL(r.status, 200);
	free(r.body);
	free(m);
	free(shell);
	free(cid);
	return st;
}

/* Revocation through WinRM certutil -revoke (reason 4, Superseded) reaches the CRL; other
 * commands and non-officers are refused. */
static void test_winrm_revoke_crl(void)
{
	/* "sccm-site:Site-Secret-1" and "helpdesk:Helpdesk-Secret-2" */
	const char *site = "Basic c2NjbS1zaXRlOlNpdGUtU2VjcmV0LTE=";
	const char *help = "Basic aGVscGRlc2s6SGVscGRlc2stU2VjcmV0LTI=";
	X509_REQ *q = make_csr(2048, "amt4.contoso.com", NULL, "AMTWebServer", NULL, 0, 0, NULL,
			       NULL);
	struct http_resp r = issue(q, NULL);
	X509 *c = issued_cert(r.body);
	char serial[80], args[200], out[512], *code;
	BIGNUM *bn;
	char *hex;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len;
	X509_CRL *crl;
	X509_REVOKED *rev = NULL;
	int crit = 0;
	ASN1_ENUMERATED *reason;

	free(r.body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(c), NULL);
	hex = BN_bn2hex(bn);
	snprintf(serial, sizeof(serial), "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);

	code = shell_run(help, "certutil", "-revoke 1234 4", out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(code ? code : "", "5"); /* not an officer */
	free(code);
	code = shell_run(site, "cmd.exe", "/c del *", out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(code ? code : "", "1");
	free(code);
	code = shell_run(site, "certutil", "-resubmit 1", out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(code ? code : "", "1");
	free(code);
	CU_ASSERT_PTR_NULL(shell_run("Basic c2NjbS1zaXRlOndyb25n", "certutil", "-ping", out,
				     sizeof(out)));
	snprintf(args, sizeof(args), "-config \"ca.contoso.com\\Contoso Issuing CA\" -revoke %s 4",
		 serial);
	code = shell_run(site, "certutil", args, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(code ? code : "", "0");
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Reason: Superseded"));
	free(code);

	CU_ASSERT_EQUAL_FATAL(ca_crl(&S.ca, S.db, &der, &len), 0);
	p = der;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(crl);
	CU_ASSERT_EQUAL(X509_CRL_verify(crl, X509_get0_pubkey(S.ca.cert)), 1);
	CU_ASSERT_EQUAL(X509_CRL_get0_by_serial(crl, &rev, X509_get_serialNumber(c)), 1);
	reason = rev ? X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL) : NULL;
	CU_ASSERT(reason && ASN1_ENUMERATED_get(reason) == 4);
	ASN1_ENUMERATED_free(reason);
	X509_CRL_free(crl);
	OPENSSL_free(der);
	X509_free(c);
	X509_REQ_free(q);
}

/* admin revoke: certutil's reason names, hold/unrevoke rules, unknown serials. */
static void test_admin_revoke_rules(void)
{
	X509_REQ *q = make_csr(2048, "amt5.contoso.com", NULL, "AMTWebServer", NULL, 0, 0, NULL,
			       NULL);
	struct http_resp r = issue(q, NULL);
	X509 *c = issued_cert(r.body);
	struct sb out = { 0 };
	char *hex;
	BIGNUM *bn;

	free(r.body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(c), NULL);
	hex = BN_bn2hex(bn);
	CU_ASSERT_EQUAL(admin_revoke(&S, "00ff00ff", "4", "t", &out), 1);
	CU_ASSERT_EQUAL(admin_revoke(&S, hex, "9", "t", &out), 1);
	CU_ASSERT_EQUAL(admin_revoke(&S, hex, "-1", "t", &out), 1); /* not on hold */
	CU_ASSERT_EQUAL(admin_revoke(&S, hex, "CRL_REASON_CERTIFICATE_HOLD", "t", &out), 0);
	CU_ASSERT_EQUAL(admin_revoke(&S, hex, "-1", "t", &out), 0);
	CU_ASSERT_EQUAL(admin_revoke(&S, hex, "CRL_REASON_SUPERSEDED", "t", &out), 0);
	CU_ASSERT_EQUAL(admin_list_json(&S, &out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.p, "\"revocation_reason\": 4"));
	OPENSSL_free(hex);
	BN_free(bn);
	sb_free(&out);
	X509_free(c);
	X509_REQ_free(q);
}

/* Stand-alone CA: CEP lists neither templates nor the CA; CES pends every request even
 * when it names a template (REQDISP_PENDINGFIRST); resubmit issues it. */
static void test_standalone(void)
{
	char seedp[600], *seed = slurp(SEED), *p;
	FILE *f;
	X509_REQ *q;
	struct http_resp r;
	char *req;
	struct sb out = { 0 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(seed);
	p = strstr(seed, "\"mode\": \"enterprise\"");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memcpy(p, "\"mode\": \"standalone\"", 20);
	snprintf(seedp, sizeof(seedp), "%s/standalone.json", tmpdir);
	f = fopen(seedp, "w");
	fputs(seed, f);
	fclose(f);
	free(seed);
	close_state();
	CU_ASSERT_EQUAL_FATAL(open_state(seedp), 0);

	req = spec_getpolicies("xcep-4.1.1.1-getpolicies.xml", "sccm-site", "Site-Secret-1");
	r = call(CEP_UP, req, NULL, NULL);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(valid_body(xsd_xcep, r.body), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<policies xsi:nil=\"true\"/>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "<cAs xsi:nil=\"true\"/>"));
	free(r.body);
	free(req);
	q = make_csr(2048, "amt6.contoso.com", "amt6.contoso.com", "AMTWebServer", NULL, 0, 0, NULL,
		     NULL);
	r = issue(q, NULL);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "Taken Under Submission"));
	CU_ASSERT_EQUAL(admin_resubmit(&S, pending_id(r.body), &out), 0);
	free(r.body);
	sb_free(&out);
	X509_REQ_free(q);
	close_state();
	CU_ASSERT_EQUAL(open_state(SEED), 0);
}

/* rules_decode_request: bare PKCS#10, PKCS#10 inside CMS, bad signature, garbage. */
static void test_decode_request(void)
{
	EVP_PKEY *k;
	X509_REQ *q = make_csr(2048, "x", NULL, NULL, NULL, 0, 0, NULL, &k), *got;
	unsigned char *der = NULL, *cms_der = NULL;
	int n = i2d_X509_REQ(q, &der), m;
	struct rule_result rr;
	BIO *in = BIO_new_mem_buf(der, n);
	X509 *self = X509_new();
	CMS_ContentInfo *cms;

	got = rules_decode_request(der, (size_t)n, &rr);
	CU_ASSERT_PTR_NOT_NULL(got);
	X509_REQ_free(got);
	/* a throw-away signer certificate for the CMS wrapper */
	X509_set_pubkey(self, k);
	X509_gmtime_adj(X509_getm_notBefore(self), 0);
	X509_gmtime_adj(X509_getm_notAfter(self), 60);
	X509_sign(self, k, EVP_sha256());
	cms = CMS_sign(self, k, NULL, in, CMS_BINARY | CMS_NOSMIMECAP);
	m = cms ? i2d_CMS_ContentInfo(cms, &cms_der) : 0;
	got = rules_decode_request(cms_der, (size_t)m, &rr);
	CU_ASSERT_PTR_NOT_NULL(got);
	X509_REQ_free(got);
	der[n - 5] ^= 0x55; /* signature bytes */
	got = rules_decode_request(der, (size_t)n, &rr);
	CU_ASSERT_PTR_NULL(got);
	CU_ASSERT_EQUAL(rr.hresult, NTE_BAD_SIGNATURE);
	got = rules_decode_request((const unsigned char *)"garbage", 7, &rr);
	CU_ASSERT_PTR_NULL(got);
	CU_ASSERT_EQUAL(rr.hresult, CRYPT_E_ASN1_BADTAG);
	CMS_ContentInfo_free(cms);
	OPENSSL_free(cms_der);
	BIO_free(in);
	X509_free(self);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	X509_REQ_free(q);
}

/* XML with a DOCTYPE (entity tricks) is refused before any processing. */
static void test_no_doctype(void)
{
	const char *x = "<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY e \"x\">]>"
			"<s:Envelope xmlns:s=\"" NS_SOAP "\"><s:Body>&e;</s:Body></s:Envelope>";
	struct http_resp r = call(CES_UP, x, NULL, NULL);

	CU_ASSERT_EQUAL(r.status, 400);
	free(r.body);
}

/* Seed errors name the file and the field. */
static void test_seed_errors(void)
{
	static const struct { const char *json, *want; } cases[] = {
		{ "{", "seed.json:" },
		{ "{\"accounts\":[{\"name\":\"a\"}]}", "\"ca\" object is required" },
		{ "{\"ca\":{\"name\":\"C\",\"mode\":\"x\"},\"accounts\":[{\"name\":\"a\"}]}",
		  "\"mode\" must be" },
		{ "{\"ca\":{\"name\":\"C\"},\"accounts\":[{\"name\":\"a\"}],\"templates\":"
		  "[{\"name\":\"T\",\"oid\":\"1.2.3\",\"schema\":5}]}", "template \"T\": schema" },
		{ "{\"ca\":{\"name\":\"C\"},\"accounts\":[{\"name\":\"a\"}],\"templates\":"
		  "[{\"name\":\"T\",\"oid\":\"1.2.3\",\"hash\":\"sha384\"}]}", "version 3" },
		{ "{\"ca\":{\"name\":\"C\"},\"accounts\":[{\"name\":\"a\"}],\"templates\":"
		  "[{\"name\":\"T\",\"oid\":\"1.2.3\",\"min_key_size\":-1}]}", "\"min_key_size\"" },
	};
	char path[600], err[512];
	struct seed sd;
	size_t i;
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed.json", tmpdir);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		f = fopen(path, "w");
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fputs(cases[i].json, f);
		fclose(f);
		err[0] = '\0';
		CU_ASSERT_EQUAL(seed_load(&sd, path, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
	}
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("adcssim", suite_init, suite_clean);
	CU_add_test(s, "xsd_spec_examples", test_xsd_spec_examples);
	CU_add_test(s, "cep_spec_request", test_cep_spec_request);
	CU_add_test(s, "cep_not_changed", test_cep_not_changed);
	CU_add_test(s, "cep_client_and_cert", test_cep_client_and_cert);
	CU_add_test(s, "cep_peer_ca", test_cep_peer_ca);
	CU_add_test(s, "ces_issue_v2", test_ces_issue_v2);
	CU_add_test(s, "ces_template_lookup", test_ces_template_lookup);
	CU_add_test(s, "ces_template_rules", test_ces_template_rules);
	CU_add_test(s, "ces_pending_resubmit", test_ces_pending_resubmit);
	CU_add_test(s, "ces_pending_deny", test_ces_pending_deny);
	CU_add_test(s, "ces_request_checks", test_ces_request_checks);
	CU_add_test(s, "ces_spec_requests", test_ces_spec_requests);
	CU_add_test(s, "winrm_revoke_crl", test_winrm_revoke_crl);
	CU_add_test(s, "admin_revoke_rules", test_admin_revoke_rules);
	CU_add_test(s, "decode_request", test_decode_request);
	CU_add_test(s, "no_doctype", test_no_doctype);
	CU_add_test(s, "seed_errors", test_seed_errors);
	CU_add_test(s, "standalone", test_standalone);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	fails += CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
