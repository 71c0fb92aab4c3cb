/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ms_xml.c - the MS-XCEP and MS-WSTEP messages of ca-mscert: built as text, read with
 * libxml2 by namespace and local name (MS-XCEP's ##any extension points and xsi:nil are
 * tolerated everywhere). Answers come from the network: no network access, no entity
 * substitution and no DTD at all (a DOCTYPE is refused), as in amt-transport.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ms.h"

#define NS_S "http://www.w3.org/2003/05/soap-envelope"
#define NS_A "http://www.w3.org/2005/08/addressing"
#define NS_XSI "http://www.w3.org/2001/XMLSchema-instance"
#define NS_WSSE "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
#define NS_WST "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
#define NS_WSTEP "http://schemas.microsoft.com/windows/pki/2009/01/enrollment"
#define NS_XCEP "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy"
#define NS_AUTH "http://schemas.xmlsoap.org/ws/2006/12/authorization"
#define X509V3 "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
#define PASSWORD_TEXT "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"

/* ---- reading ---- */

xmlDocPtr ms_xml_parse(const char *buf, size_t len)
{
	xmlDocPtr doc;

	if (!buf || !len || len > 16u * 1024 * 1024)
		return NULL;
	doc = xmlReadMemory(buf, (int)len, NULL, NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc && (doc->intSubset || doc->extSubset || !xmlDocGetRootElement(doc))) {
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

static int is(xmlNodePtr n, const char *ns, const char *local)
{
	return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, local) &&
	       (!ns || (n->ns && n->ns->href && !strcmp((const char *)n->ns->href, ns)));
}

xmlNodePtr ms_xml_child(xmlNodePtr n, const char *ns, const char *local)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (is(c, ns, local))
			return c;
	return NULL;
}

xmlNodePtr ms_xml_find(xmlNodePtr n, const char *ns, const char *local)
{
	if (!n)
		return NULL;
	if (is(n, ns, local))
		return n;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		xmlNodePtr f = c->type == XML_ELEMENT_NODE ? ms_xml_find(c, ns, local) : NULL;

		if (f)
			return f;
	}
	return NULL;
}

int ms_xml_is_nil(xmlNodePtr n)
{
	xmlChar *v = n ? xmlGetNsProp(n, (const xmlChar *)"nil", (const xmlChar *)NS_XSI) : NULL;
	int nil = v && (!strcmp((const char *)v, "true") || !strcmp((const char *)v, "1"));

	xmlFree(v);
	return nil;
}

/* Text of @p n into @p out (trimmed); "" when absent or nil. */
static void text_of(xmlNodePtr n, char *out, size_t size)
{
	xmlChar *t = n && !ms_xml_is_nil(n) ? xmlNodeGetContent(n) : NULL;
	const char *s = t ? (const char *)t : "";
	size_t len;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	len = strlen(s);
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
		       s[len - 1] == '\n'))
		len--;
	snprintf(out, size, "%.*s", (int)len, s);
	xmlFree(t);
}

static long long num_of(xmlNodePtr n, long long dflt)
{
	char t[32], *end;
	long long v;

	text_of(n, t, sizeof(t));
	if (!t[0])
		return dflt;
	v = strtoll(t, &end, 10);
	return *end ? dflt : v;
}

static int bool_of(xmlNodePtr n)
{
	char t[8];

	text_of(n, t, sizeof(t));
	return !strcmp(t, "true") || !strcmp(t, "1");
}

int ms_b64_decode(const char *text, uint8_t **out, size_t *len)
{
	size_t n = strlen(text), k = 0;
	char *clean = malloc(n + 1);
	uint8_t *der;
	int dl, pad = 0;

	*out = NULL;
	*len = 0;
	if (!clean)
		return -1;
	for (size_t i = 0; i < n; i++) /* Windows CES puts CRs (&#xD;) inside the base64 */
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
			clean[k++] = text[i];
	clean[k] = '\0';
	if (!k || k % 4) {
		free(clean);
		return -1;
	}
	if (!(der = malloc(k / 4 * 3 + 1))) {
		free(clean);
		return -1;
	}
	dl = EVP_DecodeBlock(der, (const unsigned char *)clean, (int)k);
	pad = (clean[k - 1] == '=') + (clean[k - 2] == '=');
	free(clean);
	if (dl < 0 || dl < pad) {
		free(der);
		return -1;
	}
	*out = der;
	*len = (size_t)(dl - pad);
	return 0;
}

char *ms_b64_encode(const uint8_t *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

void ms_uuid(char out[37])
{
	uint8_t b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		memset(b, 0, sizeof(b)); /* only a message id: uniqueness is nice, not vital */
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* ---- building ---- */

static void envelope_head(struct pu_buf *b, const char *action, const char *to,
			  const struct ms_auth *auth)
{
	char id[37];

	ms_uuid(id);
	pu_buf_add(b, "<s:Envelope xmlns:s=\"" NS_S "\" xmlns:a=\"" NS_A "\" xmlns:xsi=\"" NS_XSI
		      "\"><s:Header><a:Action s:mustUnderstand=\"1\">");
	pu_buf_add(b, action);
	pu_buf_printf(b, "</a:Action><a:MessageID>urn:uuid:%s</a:MessageID><a:ReplyTo><a:Address>"
		      "http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo>"
		      "<a:To s:mustUnderstand=\"1\">", id);
	pu_buf_add_xml(b, to);
	pu_buf_add(b, "</a:To>");
	if (auth && auth->mode == MS_AUTH_USERNAME) {
		/* WS-Security UsernameToken, PasswordText: HTTPS is what protects it. */
		pu_buf_add(b, "<o:Security s:mustUnderstand=\"1\" xmlns:o=\"" NS_WSSE "\">"
			      "<o:UsernameToken><o:Username>");
		pu_buf_add_xml(b, auth->user);
		pu_buf_add(b, "</o:Username><o:Password Type=\"" PASSWORD_TEXT "\">");
		pu_buf_add_xml(b, auth->password);
		pu_buf_add(b, "</o:Password></o:UsernameToken></o:Security>");
	}
	pu_buf_add(b, "</s:Header><s:Body>");
}

char *ms_build_get_policies(const char *to, const struct ms_auth *auth)
{
	struct pu_buf b = {0};

	envelope_head(&b, NS_XCEP "/IPolicy/GetPolicies", to, auth);
	/* Versions 0 rather than nil: a real CEP answered nil versions with no policy
	 * (cepces issue 74). */
	pu_buf_add(&b, "<GetPolicies xmlns=\"" NS_XCEP "\"><client><lastUpdate xsi:nil=\"true\"/>"
		       "<preferredLanguage xsi:nil=\"true\"/></client><requestFilter>"
		       "<policyOIDs xsi:nil=\"true\"/><clientVersion>0</clientVersion>"
		       "<serverVersion>0</serverVersion></requestFilter></GetPolicies>"
		       "</s:Body></s:Envelope>");
	return pu_buf_take(&b);
}

char *ms_build_rst_issue(const char *to, const struct ms_auth *auth, const uint8_t *csr,
			 size_t csr_len, const char *template_name)
{
	struct pu_buf b = {0};
	char *b64 = ms_b64_encode(csr, csr_len);

	if (!b64)
		return NULL;
	envelope_head(&b, NS_WSTEP "/RST/wstep", to, auth);
	pu_buf_add(&b, "<RequestSecurityToken xmlns=\"" NS_WST "\"><TokenType>" X509V3
		       "</TokenType><RequestType>" NS_WST "/Issue</RequestType>"
		       "<BinarySecurityToken ValueType=\"" NS_WSTEP "#PKCS10\" EncodingType=\""
		       NS_WSSE "#base64binary\" xmlns=\"" NS_WSSE "\">");
	pu_buf_add(&b, b64);
	/* The template as a request attribute (MS-WCCE CertificateTemplate): the request
	 * may come signed by AMT, so it cannot carry the template extension itself. */
	pu_buf_add(&b, "</BinarySecurityToken><AdditionalContext xmlns=\"" NS_AUTH "\">"
		       "<ContextItem Name=\"CertificateTemplate\"><Value>");
	pu_buf_add_xml(&b, template_name);
	pu_buf_add(&b, "</Value></ContextItem></AdditionalContext><RequestID xsi:nil=\"true\" "
		       "xmlns=\"" NS_WSTEP "\"/></RequestSecurityToken></s:Body></s:Envelope>");
	free(b64);
	return pu_buf_take(&b);
}

char *ms_build_rst_query(const char *to, const struct ms_auth *auth, const char *request_id)
{
	struct pu_buf b = {0};

	envelope_head(&b, NS_WSTEP "/RST/wstep", to, auth);
	pu_buf_add(&b, "<RequestSecurityToken xmlns=\"" NS_WST "\"><TokenType>" X509V3
		       "</TokenType><RequestType>" NS_WSTEP "/QueryTokenStatus</RequestType>"
		       "<RequestID xmlns=\"" NS_WSTEP "\">");
	pu_buf_add_xml(&b, request_id);
	pu_buf_add(&b, "</RequestID></RequestSecurityToken></s:Body></s:Envelope>");
	return pu_buf_take(&b);
}

/* ---- GetPoliciesResponse ---- */

struct oid_ref {
	long long id;
	char value[128];
};

static const char *oid_by_ref(const struct oid_ref *o, int n, long long id)
{
	for (int i = 0; i < n; i++)
		if (o[i].id == id)
			return o[i].value;
	return NULL;
}

/* extendedKeyUsage extnValue (DER) -> dotted OIDs. */
static void eku_of(const char *b64, struct ms_template *t)
{
	uint8_t *der = NULL;
	size_t len = 0;
	const unsigned char *p;
	EXTENDED_KEY_USAGE *eku;

	if (ms_b64_decode(b64, &der, &len))
		return;
	p = der;
	eku = d2i_EXTENDED_KEY_USAGE(NULL, &p, (long)len);
	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku) && t->n_eku < MS_MAX_EKU; i++)
		OBJ_obj2txt(t->eku[t->n_eku++], sizeof(t->eku[0]), sk_ASN1_OBJECT_value(eku, i), 1);
	EXTENDED_KEY_USAGE_free(eku);
	free(der);
}

/* The CA name AD CS uses (certutil -config HOST\\NAME, the CES path): its certificate's CN. */
static void ca_name_of(struct ms_ca *c)
{
	const unsigned char *p = c->der;
	X509 *x = c->der ? d2i_X509(NULL, &p, (long)c->len) : NULL;

	c->name[0] = '\0';
	if (!x || X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, c->name,
					    (int)sizeof(c->name)) < 0)
		snprintf(c->name, sizeof(c->name), "cA %d", c->ref);
	X509_free(x);
	ERR_clear_error();
}

static int read_template(xmlNodePtr pol, const struct oid_ref *oids, int n_oid,
			 struct ms_template *t)
{
	xmlNodePtr at = ms_xml_child(pol, NS_XCEP, "attributes"), ext, pk, cas;
	const char *oid = oid_by_ref(oids, n_oid, num_of(ms_xml_child(pol, NS_XCEP,
								       "policyOIDReference"), -1));

	memset(t, 0, sizeof(*t));
	if (!at)
		return -1;
	cas = ms_xml_child(pol, NS_XCEP, "cAs");
	for (xmlNodePtr r = cas ? cas->children : NULL; r; r = r->next)
		if (is(r, NS_XCEP, "cAReference") && t->n_ca_ref < MS_MAX_CA)
			t->ca_ref[t->n_ca_ref++] = (int)num_of(r, -1);
	text_of(ms_xml_child(at, NS_XCEP, "commonName"), t->name, sizeof(t->name));
	if (!t->name[0])
		return -1;
	snprintf(t->oid, sizeof(t->oid), "%s", oid ? oid : "");
	t->schema = (int)num_of(ms_xml_child(at, NS_XCEP, "policySchema"), 1);
	t->enroll = bool_of(ms_xml_child(ms_xml_child(at, NS_XCEP, "permission"), NS_XCEP,
					 "enroll"));
	pk = ms_xml_child(at, NS_XCEP, "privateKeyAttributes");
	t->min_key = (unsigned)num_of(ms_xml_child(pk, NS_XCEP, "minimalKeyLength"), 0);
	t->name_flags = (uint32_t)num_of(ms_xml_child(at, NS_XCEP, "subjectNameFlags"), 0);
	t->enroll_flags = (uint32_t)num_of(ms_xml_child(at, NS_XCEP, "enrollmentFlags"), 0);
	ext = ms_xml_child(at, NS_XCEP, "extensions");
	for (xmlNodePtr e = ext ? ext->children : NULL; e; e = e->next) {
		const char *eo;
		char v[4096];

		if (!is(e, NS_XCEP, "extension"))
			continue;
		eo = oid_by_ref(oids, n_oid, num_of(ms_xml_child(e, NS_XCEP, "oIDReference"), -1));
		if (!eo || strcmp(eo, "2.5.29.37"))
			continue;
		text_of(ms_xml_child(e, NS_XCEP, "value"), v, sizeof(v));
		eku_of(v, t);
	}
	return 0;
}

void ms_policy_free(struct ms_policy *p)
{
	if (!p)
		return;
	free(p->tmpl);
	for (int i = 0; i < p->n_ca && i < MS_MAX_CA; i++)
		free(p->ca[i].der);
	memset(p, 0, sizeof(*p));
}

/* The SOAP Body's first element, or a fault's reason in @p why. */
static xmlNodePtr body_first(xmlDocPtr doc, char *why, size_t why_size)
{
	xmlNodePtr env = xmlDocGetRootElement(doc), body, c;

	if (!is(env, NS_S, "Envelope") || !(body = ms_xml_child(env, NS_S, "Body"))) {
		snprintf(why, why_size, "not a SOAP 1.2 envelope");
		return NULL;
	}
	for (c = body->children; c && c->type != XML_ELEMENT_NODE; c = c->next)
		;
	if (!c)
		snprintf(why, why_size, "empty SOAP body");
	return c;
}

static void fault_reason(xmlNodePtr fault, char *why, size_t why_size)
{
	char reason[200], sub[80] = "";
	xmlNodePtr sc = ms_xml_find(ms_xml_child(fault, NS_S, "Code"), NS_S, "Subcode");

	text_of(ms_xml_find(ms_xml_child(fault, NS_S, "Reason"), NS_S, "Text"), reason,
		sizeof(reason));
	if (sc)
		text_of(ms_xml_child(sc, NS_S, "Value"), sub, sizeof(sub));
	snprintf(why, why_size, "SOAP fault%s%s: %s", sub[0] ? " " : "", sub,
		 reason[0] ? reason : "(no reason)");
}

int ms_parse_policies(const char *xml, size_t len, struct ms_policy *out, char *why,
		      size_t why_size)
{
	xmlDocPtr doc = ms_xml_parse(xml, len);
	xmlNodePtr first, resp, pols, cas, oidc;
	struct oid_ref *oids = NULL;
	int n_oid = 0, cap = 0, rc = -1;

	memset(out, 0, sizeof(*out));
	if (!doc) {
		snprintf(why, why_size, "answer is not well-formed XML (or has a DTD)");
		return -1;
	}
	if (!(first = body_first(doc, why, why_size)))
		goto out;
	if (is(first, NS_S, "Fault")) {
		fault_reason(first, why, why_size);
		goto out;
	}
	if (!is(first, NS_XCEP, "GetPoliciesResponse")) {
		snprintf(why, why_size, "expected GetPoliciesResponse, got %s", first->name);
		goto out;
	}
	resp = ms_xml_child(first, NS_XCEP, "response");
	if (!resp || ms_xml_is_nil(resp)) {
		snprintf(why, why_size, "GetPoliciesResponse has no response");
		goto out;
	}
	text_of(ms_xml_child(resp, NS_XCEP, "policyID"), out->policy_id, sizeof(out->policy_id));
	out->next_update_hours = (unsigned)num_of(ms_xml_child(resp, NS_XCEP, "nextUpdateHours"), 8);
	out->not_changed = bool_of(ms_xml_child(resp, NS_XCEP, "policiesNotChanged"));
	oidc = ms_xml_child(first, NS_XCEP, "oIDs");
	for (xmlNodePtr o = oidc ? oidc->children : NULL; o; o = o->next) {
		if (!is(o, NS_XCEP, "oID"))
			continue;
		if (n_oid == cap) {
			struct oid_ref *g = realloc(oids, (size_t)(cap = cap ? 2 * cap : 16) *
						   sizeof(*g));
			if (!g) {
				snprintf(why, why_size, "out of memory");
				goto out;
			}
			oids = g;
		}
		oids[n_oid].id = num_of(ms_xml_child(o, NS_XCEP, "oIDReferenceID"), -1);
		text_of(ms_xml_child(o, NS_XCEP, "value"), oids[n_oid].value,
			sizeof(oids[n_oid].value));
		n_oid++;
	}
	pols = ms_xml_child(resp, NS_XCEP, "policies");
	for (xmlNodePtr p = pols ? pols->children : NULL; p; p = p->next) {
		struct ms_template *g;

		if (!is(p, NS_XCEP, "policy"))
			continue;
		if (!(g = realloc(out->tmpl, (size_t)(out->n_tmpl + 1) * sizeof(*g)))) {
			snprintf(why, why_size, "out of memory");
			goto out;
		}
		out->tmpl = g;
		if (read_template(p, oids, n_oid, &g[out->n_tmpl]) == 0)
			out->n_tmpl++;
	}
	cas = ms_xml_child(first, NS_XCEP, "cAs");
	for (xmlNodePtr ca = cas ? cas->children : NULL; ca; ca = ca->next) {
		struct ms_ca *c = &out->ca[out->n_ca];
		xmlNodePtr uris;
		char b64[16384];

		if (!is(ca, NS_XCEP, "cA"))
			continue;
		if (out->n_ca == MS_MAX_CA) {
			snprintf(why, why_size, "the policy lists more than %d CAs", MS_MAX_CA);
			goto out;
		}
		out->n_ca++;
		c->ref = (int)num_of(ms_xml_child(ca, NS_XCEP, "cAReferenceID"), -1);
		c->enroll = bool_of(ms_xml_child(ca, NS_XCEP, "enrollPermission"));
		text_of(ms_xml_child(ca, NS_XCEP, "certificate"), b64, sizeof(b64));
		if (b64[0] && ms_b64_decode(b64, &c->der, &c->len)) {
			snprintf(why, why_size, "cA %d: certificate is not base64", c->ref);
			goto out;
		}
		ca_name_of(c);
		uris = ms_xml_child(ca, NS_XCEP, "uris");
		for (xmlNodePtr u = uris ? uris->children : NULL; u; u = u->next) {
			struct ms_uri *mu = &c->uris[c->n_uri];

			if (!is(u, NS_XCEP, "cAURI") || c->n_uri >= MS_MAX_URI)
				continue;
			mu->auth = (unsigned)num_of(ms_xml_child(u, NS_XCEP, "clientAuthentication"), 0);
			mu->priority = (unsigned)num_of(ms_xml_child(u, NS_XCEP, "priority"), 1000);
			mu->renewal_only = bool_of(ms_xml_child(u, NS_XCEP, "renewalOnly"));
			text_of(ms_xml_child(u, NS_XCEP, "uri"), mu->uri, sizeof(mu->uri));
			if (mu->uri[0])
				c->n_uri++;
		}
		for (int k = 0; k + 1 < out->n_ca; k++)
			if (out->ca[k].ref == c->ref) {
				snprintf(why, why_size, "cAReferenceID %d is not unique", c->ref);
				goto out;
			}
	}
	/* Every cAReference MUST name a cAReferenceID [MS-XCEP 3.1.4.1.3.3]. */
	for (int i = 0; i < out->n_tmpl; i++)
		for (int k = 0; k < out->tmpl[i].n_ca_ref; k++) {
			int found = 0;

			for (int j = 0; j < out->n_ca; j++)
				found |= out->ca[j].ref == out->tmpl[i].ca_ref[k];
			if (!found) {
				snprintf(why, why_size, "template '%s': cAReference %d names no cA "
					 "of the policy", out->tmpl[i].name, out->tmpl[i].ca_ref[k]);
				goto out;
			}
		}
	rc = 0;
out:
	free(oids);
	xmlFreeDoc(doc);
	if (rc)
		ms_policy_free(out);
	return rc;
}

/* ---- RSTRC and faults ---- */

void ms_rstr_free(struct ms_rstr *r)
{
	if (!r)
		return;
	free(r->cert_der);
	free(r->pkcs7);
	memset(r, 0, sizeof(*r));
}

static int bst(xmlNodePtr n, uint8_t **der, size_t *len)
{
	xmlChar *t = xmlNodeGetContent(n);
	int rc = t ? ms_b64_decode((const char *)t, der, len) : -1;

	xmlFree(t);
	return rc;
}

int ms_parse_rstr(const char *xml, size_t len, struct ms_rstr *out, char *why, size_t why_size)
{
	xmlDocPtr doc = ms_xml_parse(xml, len);
	xmlNodePtr first, rstr, rst, ref;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!doc) {
		snprintf(why, why_size, "answer is not well-formed XML (or has a DTD)");
		return -1;
	}
	if (!(first = body_first(doc, why, why_size)))
		goto out;
	if (is(first, NS_S, "Fault")) {
		xmlNodePtr d = ms_xml_find(ms_xml_child(first, NS_S, "Detail"), NS_WSTEP,
					   "CertificateEnrollmentWSDetail");
		xmlNodePtr sc = ms_xml_find(ms_xml_child(first, NS_S, "Code"), NS_S, "Subcode");
		char code[32] = "";

		out->fault = 1;
		text_of(ms_xml_find(ms_xml_child(first, NS_S, "Reason"), NS_S, "Text"), out->reason,
			sizeof(out->reason));
		if (sc) {
			char v[80], *colon;

			text_of(ms_xml_child(sc, NS_S, "Value"), v, sizeof(v));
			colon = strrchr(v, ':');
			snprintf(out->subcode, sizeof(out->subcode), "%s", colon ? colon + 1 : v);
		}
		if (d) {
			text_of(ms_xml_child(d, NS_WSTEP, "ErrorCode"), code, sizeof(code));
			if (code[0]) {
				char *end;
				long long v = strtoll(code, &end, 10);

				if (!*end && v >= INT32_MIN && v <= (long long)UINT32_MAX) {
					out->has_error_code = 1;
					out->error_code = (uint32_t)v;
				}
			}
			out->invalid_request = bool_of(ms_xml_child(d, NS_WSTEP, "InvalidRequest"));
			text_of(ms_xml_child(d, NS_WSTEP, "RequestID"), out->request_id,
				sizeof(out->request_id));
		}
		rc = 0;
		goto out;
	}
	if (!is(first, NS_WST, "RequestSecurityTokenResponseCollection") ||
	    !(rstr = ms_xml_child(first, NS_WST, "RequestSecurityTokenResponse"))) {
		snprintf(why, why_size, "expected RequestSecurityTokenResponseCollection, got %s",
			 first->name);
		goto out;
	}
	text_of(ms_xml_child(rstr, NS_WSTEP, "DispositionMessage"), out->disposition,
		sizeof(out->disposition));
	text_of(ms_xml_child(rstr, NS_WSTEP, "RequestID"), out->request_id,
		sizeof(out->request_id));
	for (xmlNodePtr c = rstr->children; c; c = c->next)
		if (is(c, NS_WSSE, "BinarySecurityToken") && !out->pkcs7 &&
		    bst(c, &out->pkcs7, &out->pkcs7_len)) {
			snprintf(why, why_size, "the PKCS#7 token is not base64");
			goto out;
		}
	rst = ms_xml_child(rstr, NS_WST, "RequestedSecurityToken");
	/* Branch on what is there, never on the (localized) DispositionMessage. */
	if (rst && ms_xml_child(rst, NS_WSSE, "BinarySecurityToken")) {
		if (bst(ms_xml_child(rst, NS_WSSE, "BinarySecurityToken"), &out->cert_der,
			&out->cert_len)) {
			snprintf(why, why_size, "the X509v3 token is not base64");
			goto out;
		}
	} else if (rst && (ref = ms_xml_find(rst, NS_WSSE, "Reference"))) {
		xmlChar *u = xmlGetProp(ref, (const xmlChar *)"URI");

		snprintf(out->reference, sizeof(out->reference), "%s", u ? (const char *)u : "");
		xmlFree(u);
	}
	if (!out->cert_der && !out->request_id[0]) {
		snprintf(why, why_size, "the answer has neither a certificate nor a RequestID");
		goto out;
	}
	rc = 0;
out:
	xmlFreeDoc(doc);
	if (rc)
		ms_rstr_free(out);
	return rc;
}
