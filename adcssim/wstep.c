/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wstep.c - MS-WSTEP RequestSecurityToken [MS-WSTEP 3.1.4.2]: Issue (new requests) and
 * QueryTokenStatus (retrieval of a pending request), answered with an RSTRC or a SOAP
 * fault carrying CertificateEnrollmentWSDetail. Every Issue becomes a row of the CA
 * database, denied ones too, as AD CS records failed requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "rules.h"
#include "server.h"

#define NS_WST "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
#define NS_WSTEP "http://schemas.microsoft.com/windows/pki/2009/01/enrollment"
#define NS_AUTH "http://schemas.xmlsoap.org/ws/2006/12/authorization"
#define ACT_RST NS_WSTEP "/RST/wstep"
#define ACT_RSTRC NS_WSTEP "/RSTRC/wstep"
#define ACT_FAULT NS_WSTEP "/RequestSecurityTokenCertificateEnrollmentWSDetailFault"
#define TOKEN_X509 "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
#define REQ_ISSUE NS_WST "/Issue"
#define REQ_QUERY NS_WSTEP "/QueryTokenStatus"
#define ENC_B64 NS_WSSE "#base64binary"
#define VT_PKCS7 NS_WSSE "#PKCS7"
#define VT_PKCS10 NS_WSTEP "#PKCS10"

#define CERTSRV_E_PROPERTY_EMPTY 0x80094004L
#define E_ACCESSDENIED 0x80070005L

/* A fault with CertificateEnrollmentWSDetail [MS-WSTEP 3.1.4.1.2.1]. */
static void detail_fault(struct adcs *s, struct http_resp *resp, const char *msgid,
			 const char *reason, long hresult, long request_id, int invalid_request)
{
	struct sb d = { 0 };
	unsigned char *cmc = NULL;
	size_t len;

	sb_add(&d, "<CertificateEnrollmentWSDetail xmlns=\"" NS_WSTEP "\" xmlns:xsi=\"" NS_XSI
		   "\">");
	if (request_id > 0 &&
	    ca_cmc_response(&s->ca, CMC_FAILED, reason, request_id, NULL, &cmc, &len) == 0) {
		sb_add(&d, "<BinaryResponse>");
		sb_b64(&d, cmc, len);
		sb_add(&d, "</BinaryResponse>");
		OPENSSL_free(cmc);
	} else {
		sb_add(&d, "<BinaryResponse xsi:nil=\"true\"/>");
	}
	/* ErrorCode is xs:int: the HRESULT as a signed 32-bit value. */
	sb_printf(&d, "<ErrorCode>%d</ErrorCode><InvalidRequest>%s</InvalidRequest>",
		  (int)(unsigned)hresult, invalid_request ? "true" : "false");
	if (request_id > 0)
		sb_printf(&d, "<RequestID>%ld</RequestID>", request_id);
	else
		sb_add(&d, "<RequestID xsi:nil=\"true\"/>");
	sb_add(&d, "</CertificateEnrollmentWSDetail>");
	adcs_fault(resp, ACT_FAULT, msgid, "Receiver", NULL, NULL, reason, d.oom ? NULL : d.p);
	sb_free(&d);
}

static void plain_fault(struct http_resp *resp, const char *msgid, const char *reason)
{
	adcs_fault(resp, ACT_FAULT, msgid, "Receiver", NULL, NULL, reason, NULL);
}

static void bst(struct sb *b, const char *value_type, const unsigned char *d, size_t n)
{
	sb_add(b, "<BinarySecurityToken ValueType=\"");
	sb_add(b, value_type);
	sb_add(b, "\" EncodingType=\"" ENC_B64 "\" xmlns=\"" NS_WSSE "\">");
	sb_b64(b, d, n);
	sb_add(b, "</BinarySecurityToken>");
}

/* The RSTRC for an issued (cert != NULL) or a pending request [MS-WSTEP 3.1.4.1.3.2]. */
static void rstrc(struct adcs *s, struct http_resp *resp, const char *msgid, const char *self,
		  const struct db_req *r)
{
	struct sb b = { 0 };
	X509 *cert = NULL;
	const unsigned char *p = r->cert;
	unsigned char *cmc = NULL;
	size_t cmc_len = 0;
	int pending = r->status == REQ_PENDING;

	if (!pending && (!p || !(cert = d2i_X509(NULL, &p, (long)r->cert_len)))) {
		detail_fault(s, resp, msgid, "The issued certificate could not be read.",
			     E_INVALIDARG, r->id, 0);
		return;
	}
	if (ca_cmc_response(&s->ca, pending ? CMC_PENDING : CMC_SUCCESS, r->disposition, r->id,
			    cert, &cmc, &cmc_len)) {
		X509_free(cert);
		detail_fault(s, resp, msgid, "The CMC response could not be built.", E_INVALIDARG,
			     r->id, 0);
		return;
	}
	adcs_envelope_open(&b, ACT_RSTRC, msgid);
	sb_add(&b, "<RequestSecurityTokenResponseCollection xmlns=\"" NS_WST "\">"
		   "<RequestSecurityTokenResponse><TokenType>" TOKEN_X509 "</TokenType>"
		   "<DispositionMessage xml:lang=\"en-US\" xmlns=\"" NS_WSTEP "\">");
	sb_esc(&b, r->disposition);
	sb_add(&b, "</DispositionMessage>");
	bst(&b, VT_PKCS7, cmc, cmc_len);
	sb_add(&b, "<RequestedSecurityToken>");
	if (pending) {
		/* Where to poll: this very endpoint (the server MUST give its own URI). */
		sb_add(&b, "<SecurityTokenReference xmlns=\"" NS_WSSE "\"><Reference URI=\"");
		sb_esc(&b, self);
		sb_add(&b, "\"/></SecurityTokenReference>");
	} else {
		bst(&b, TOKEN_X509, r->cert, r->cert_len);
	}
	sb_printf(&b, "</RequestedSecurityToken><RequestID xmlns=\"" NS_WSTEP "\">%ld</RequestID>"
		  "</RequestSecurityTokenResponse></RequestSecurityTokenResponseCollection>", r->id);
	adcs_envelope_close(&b);
	OPENSSL_free(cmc);
	X509_free(cert);
	adcs_reply_xml(resp, 200, &b);
}

/* The CertificateTemplate ContextItem of AdditionalContext, if any. */
static char *context_template(xmlNodePtr rst)
{
	xmlNodePtr ac = soap_child(rst, NS_AUTH, "AdditionalContext"), c;
	xmlChar *name;
	char *v = NULL;

	for (c = ac ? ac->children : NULL; c && !v; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "ContextItem"))
			continue;
		name = xmlGetProp(c, (const xmlChar *)"Name");
		if (name && !strcasecmp((const char *)name, "CertificateTemplate"))
			v = soap_text(soap_child(c, NS_AUTH, "Value"));
		xmlFree(name);
	}
	return v;
}

int adcs_issue_stored(struct adcs *s, struct db_req *r, char *err, size_t errsz)
{
	const unsigned char *p = r->csr, *q = r->subject;
	X509_REQ *req = p ? d2i_X509_REQ(NULL, &p, (long)r->csr_len) : NULL;
	X509_NAME *subject = q ? d2i_X509_NAME(NULL, &q, (long)r->subject_len) : NULL;
	const struct seed_template *t = s->seed.standalone ? NULL :
					seed_template(&s->seed, r->template_name);
	const struct seed_account *who = seed_account(&s->seed, r->requester);
	X509 *cert = NULL;
	unsigned char *der = NULL;
	int n, rc = -1, copy_san;
	const char *san_dns;

	if (!req || !subject || (!s->seed.standalone && !t)) {
		snprintf(err, errsz, "request %ld: stored request or its template \"%s\" is missing",
			 r->id, r->template_name);
		goto out;
	}
	copy_san = !t || (t->name_flags & CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT);
	san_dns = t && who && (t->name_flags & CT_FLAG_SUBJECT_ALT_REQUIRE_DNS) ? who->dns : "";
	cert = ca_issue(&s->ca, req, subject, t, copy_san, san_dns, r->serial, sizeof(r->serial),
			err, errsz);
	if (!cert || (n = i2d_X509(cert, &der)) <= 0)
		goto out;
	free(r->cert);
	r->cert = malloc((size_t)n);
	if (!r->cert)
		goto out;
	memcpy(r->cert, der, (size_t)n);
	r->cert_len = (size_t)n;
	r->status = REQ_ISSUED;
	r->hresult = 0;
	snprintf(r->disposition, sizeof(r->disposition), "Issued");
	rc = 0;
out:
	OPENSSL_free(der);
	X509_free(cert);
	X509_REQ_free(req);
	X509_NAME_free(subject);
	return rc;
}

static int store_der(unsigned char **dst, size_t *len, const void *obj,
		     int (*i2d)(const void *, unsigned char **))
{
	unsigned char *der = NULL;
	int n = i2d(obj, &der);

	if (n <= 0)
		return -1;
	*dst = malloc((size_t)n);
	if (*dst) {
		memcpy(*dst, der, (size_t)n);
		*len = (size_t)n;
	}
	OPENSSL_free(der);
	return *dst ? 0 : -1;
}

static int i2d_req(const void *o, unsigned char **d) { return i2d_X509_REQ((X509_REQ *)o, d); }
static int i2d_name(const void *o, unsigned char **d)
{
	return i2d_X509_NAME((const X509_NAME *)o, d);
}

static void issue(struct adcs *s, xmlNodePtr rst, const char *msgid, const char *self,
		  const struct seed_account *who, struct http_resp *resp)
{
	xmlNodePtr tok = soap_child(rst, NS_WSSE, "BinarySecurityToken");
	xmlChar *vt = tok ? xmlGetProp(tok, (const xmlChar *)"ValueType") : NULL;
	xmlChar *enc = tok ? xmlGetProp(tok, (const xmlChar *)"EncodingType") : NULL;
	char *b64 = soap_text(tok), *ctx_tmpl = NULL, err[256];
	unsigned char *blob = NULL;
	size_t blen = 0;
	X509_REQ *req = NULL;
	const struct seed_template *t = NULL;
	struct rule_result rr;
	struct issue_plan plan = { 0 };
	struct db_req r;

	memset(&r, 0, sizeof(r));
	if (!tok) {
		plain_fault(resp, msgid, "An Issue request must carry a BinarySecurityToken.");
		goto out;
	}
	if (!enc || strcmp((const char *)enc, ENC_B64)) {
		plain_fault(resp, msgid, "The EncodingType is invalid.");
		goto out;
	}
	if (!vt || (strcmp((const char *)vt, VT_PKCS7) && strcmp((const char *)vt, VT_PKCS10))) {
		plain_fault(resp, msgid, "The ValueType is invalid.");
		goto out;
	}
	/* Windows CES writes &#xD; into base64; clients do too. Whitespace is ignored. */
	if (!b64 || soap_b64_decode(b64, &blob, &blen)) {
		detail_fault(s, resp, msgid, "The request is not valid base64.", CRYPT_E_ASN1_BADTAG,
			     0, 1);
		goto out;
	}
	req = rules_decode_request(blob, blen, &rr);
	if (!req) {
		detail_fault(s, resp, msgid, rr.msg, rr.hresult, 0, 1);
		goto out;
	}
	snprintf(r.requester, sizeof(r.requester), "%s", who->name);
	store_der(&r.csr, &r.csr_len, req, i2d_req);
	ctx_tmpl = context_template(rst);
	if (s->seed.standalone) {
		/* Stand-alone policy module: no templates; pend first unless set to issue. */
		snprintf(r.template_name, sizeof(r.template_name), "%s", "");
		plan.subject = X509_NAME_dup(X509_REQ_get_subject_name(req));
		plan.copy_san = 1;
		plan.pend = !s->seed.standalone_issue;
	} else {
		t = rules_find_template(&s->seed, req, ctx_tmpl, &rr);
		if (t) {
			snprintf(r.template_name, sizeof(r.template_name), "%s", t->name);
			rules_check(t, who, req, &plan, &rr);
		}
	}
	if (rr.hresult) {
		r.status = REQ_DENIED;
		r.hresult = rr.hresult;
		snprintf(r.disposition, sizeof(r.disposition), "Denied by Policy Module  0x%lx, %.180s",
			 (unsigned long)rr.hresult, rr.msg);
		if (db_insert(s->db, &r)) {
			plain_fault(resp, msgid, "The CA database could not record the request.");
			goto out;
		}
		detail_fault(s, resp, msgid, rr.msg, rr.hresult, r.id, 1);
		goto out;
	}
	if (!plan.subject || store_der(&r.subject, &r.subject_len, plan.subject, i2d_name)) {
		plain_fault(resp, msgid, "The request subject could not be stored.");
		goto out;
	}
	r.status = REQ_PENDING;
	snprintf(r.disposition, sizeof(r.disposition), "Taken Under Submission");
	if (db_insert(s->db, &r)) {
		plain_fault(resp, msgid, "The CA database could not record the request.");
		goto out;
	}
	if (!plan.pend) {
		if (adcs_issue_stored(s, &r, err, sizeof(err)) || db_update(s->db, &r)) {
			r.status = REQ_DENIED;
			r.hresult = E_INVALIDARG;
			snprintf(r.disposition, sizeof(r.disposition), "Error issuing: %.200s", err);
			db_update(s->db, &r);
			detail_fault(s, resp, msgid, r.disposition, r.hresult, r.id, 0);
			goto out;
		}
	}
	rstrc(s, resp, msgid, self, &r);
out:
	rules_plan_free(&plan);
	db_req_free(&r);
	X509_REQ_free(req);
	free(blob);
	free(b64);
	free(ctx_tmpl);
	xmlFree(vt);
	xmlFree(enc);
}

static void query(struct adcs *s, xmlNodePtr rst, const char *msgid, const char *self,
		  const struct seed_account *who, struct http_resp *resp)
{
	xmlNodePtr idn = soap_child(rst, NS_WSTEP, "RequestID");
	char *v = soap_is_nil(idn) ? NULL : soap_text(idn), *e = NULL;
	long id = v ? strtol(v, &e, 10) : 0;
	struct db_req r;
	int found;

	memset(&r, 0, sizeof(r));
	if (!v || !*v || *e || id <= 0) {
		/* RequestID absent, nil or empty: MUST fault [MS-WSTEP 3.1.4.2.1.2]. */
		plain_fault(resp, msgid, "QueryTokenStatus needs a RequestID.");
		goto out;
	}
	found = db_get(s->db, id, &r);
	if (found != 0) {
		detail_fault(s, resp, msgid, "The request ID is not known to the CA.",
			     CERTSRV_E_PROPERTY_EMPTY, 0, 0);
		goto out;
	}
	if (strcasecmp(r.requester, who->name)) {
		detail_fault(s, resp, msgid, "Access is denied.", E_ACCESSDENIED, id, 0);
		goto out;
	}
	if (r.status == REQ_DENIED)
		detail_fault(s, resp, msgid, r.disposition, r.hresult, id, 1);
	else
		rstrc(s, resp, msgid, self, &r);
out:
	db_req_free(&r);
	free(v);
}

void wstep_request(struct adcs *s, xmlDocPtr doc, const char *msgid, const char *self_url,
		   const struct seed_account *who, struct http_resp *resp)
{
	char *action = soap_text(soap_child(soap_header(doc), NS_WSA, "Action"));
	xmlNodePtr rst = soap_body_first(doc);
	char *tt = NULL, *rt = NULL;

	if (!action || strcmp(action, ACT_RST)) {
		/* KET (key archival) and anything else: not served. */
		plain_fault(resp, msgid, "The action is not supported by this enrollment service.");
		goto out;
	}
	if (!rst || strcmp((const char *)rst->name, "RequestSecurityToken") || !rst->ns ||
	    strcmp((const char *)rst->ns->href, NS_WST)) {
		plain_fault(resp, msgid, "The body is not a wst:RequestSecurityToken.");
		goto out;
	}
	tt = soap_text(soap_child(rst, NS_WST, "TokenType"));
	rt = soap_text(soap_child(rst, NS_WST, "RequestType"));
	if (!tt || strcmp(tt, TOKEN_X509)) {
		plain_fault(resp, msgid, "The TokenType must be the X.509v3 token type.");
		goto out;
	}
	if (rt && !strcmp(rt, REQ_ISSUE))
		issue(s, rst, msgid, self_url, who, resp);
	else if (rt && !strcmp(rt, REQ_QUERY))
		query(s, rst, msgid, self_url, who, resp);
	else
		plain_fault(resp, msgid, "The RequestType is missing or not supported.");
out:
	free(action);
	free(tt);
	free(rt);
}
