/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - routing, authentication and SOAP envelopes for every adcssim endpoint.
 *
 * URL shapes are Windows' own [MS-XCEP 4.1.1.2, CEPCES]:
 *   /ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP   (UsernameToken)
 *   /ADPolicyProvider_CEP_Certificate/service.svc/CEP         (TLS client certificate)
 *   /<CA name>_CES_UsernamePassword/service.svc/CES, /<CA name>_CES_Certificate/service.svc/CES
 *   /wsman (WinRM, Basic over HTTPS, officers only)
 *   /CertEnroll/<CA name>.crl and .crt over plain HTTP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "negotiate.h"
#include "server.h"

#define WCF_DIAG "http://schemas.microsoft.com/2004/09/ServiceModel/Diagnostics"
#define SOAP_CT "application/soap+xml; charset=utf-8"

void adcs_envelope_open(struct sb *b, const char *action, const char *relates_to)
{
	char corr[64], act[64];

	soap_uuid(corr, sizeof(corr));
	soap_uuid(act, sizeof(act));
	sb_add(b, "<s:Envelope xmlns:s=\"" NS_SOAP "\" xmlns:a=\"" NS_WSA "\"><s:Header>"
		  "<a:Action s:mustUnderstand=\"1\">");
	sb_esc(b, action);
	sb_add(b, "</a:Action>");
	if (relates_to && relates_to[0]) {
		sb_add(b, "<a:RelatesTo>");
		sb_esc(b, relates_to);
		sb_add(b, "</a:RelatesTo>");
	}
	/* The WCF diagnostics header Windows CEP/CES emit [MS-XCEP 4.1.1.2]. */
	sb_printf(b, "<ActivityId CorrelationId=\"%s\" xmlns=\"" WCF_DIAG "\">%s</ActivityId>",
		  corr + 9, act + 9);
	sb_add(b, "</s:Header><s:Body>");
}

void adcs_envelope_close(struct sb *b)
{
	sb_add(b, "</s:Body></s:Envelope>");
}

void adcs_reply_xml(struct http_resp *resp, int status, struct sb *b)
{
	if (b->oom) {
		http_reply(resp, 500, "text/plain", "out of memory\n", 14);
	} else {
		free(resp->body);
		resp->status = status;
		snprintf(resp->content_type, sizeof(resp->content_type), SOAP_CT);
		resp->body = b->p;
		resp->body_len = b->len;
		memset(b, 0, sizeof(*b));
	}
	sb_free(b);
}

void adcs_fault(struct http_resp *resp, const char *action, const char *relates_to,
		const char *code, const char *subcode_ns, const char *subcode, const char *reason,
		const char *detail)
{
	struct sb b = { 0 };

	adcs_envelope_open(&b, action, relates_to);
	sb_printf(&b, "<s:Fault><s:Code><s:Value>s:%s</s:Value>", code);
	if (subcode) {
		sb_add(&b, "<s:Subcode><s:Value xmlns:f=\"");
		sb_esc(&b, subcode_ns);
		sb_printf(&b, "\">f:%s</s:Value></s:Subcode>", subcode);
	}
	sb_add(&b, "</s:Code><s:Reason><s:Text xml:lang=\"en-US\">");
	sb_esc(&b, reason);
	sb_add(&b, "</s:Text></s:Reason>");
	if (detail)
		sb_printf(&b, "<s:Detail>%s</s:Detail>", detail);
	sb_add(&b, "</s:Fault>");
	adcs_envelope_close(&b);
	adcs_reply_xml(resp, 500, &b);
}

static void text(struct http_resp *resp, int status, const char *msg)
{
	http_reply(resp, status, "text/plain", msg, strlen(msg));
}

/* Constant-time password comparison. */
static int password_ok(const struct seed_account *a, const char *pass)
{
	size_t la = strlen(a->password), lp = strlen(pass);

	return la && la == lp && CRYPTO_memcmp(a->password, pass, la) == 0;
}

static const struct seed_account *auth_username(struct adcs *s, xmlDocPtr doc)
{
	char user[128], pass[160];
	const struct seed_account *a = NULL;

	if (soap_username_token(doc, user, sizeof(user), pass, sizeof(pass)) == 0) {
		a = seed_account(&s->seed, user);
		if (a && !password_ok(a, pass))
			a = NULL;
	}
	OPENSSL_cleanse(pass, sizeof(pass));
	return a;
}

/* Basic credentials (WinRM over HTTPS). */
static const struct seed_account *auth_basic(struct adcs *s, const char *hdr)
{
	unsigned char *dec = NULL;
	size_t len;
	char *colon, buf[300];
	const struct seed_account *a = NULL;

	if (strncasecmp(hdr, "Basic ", 6) || soap_b64_decode(hdr + 6, &dec, &len) ||
	    len >= sizeof(buf)) {
		free(dec);
		return NULL;
	}
	memcpy(buf, dec, len);
	buf[len] = '\0';
	OPENSSL_cleanse(dec, len);
	free(dec);
	colon = strchr(buf, ':');
	if (colon) {
		*colon = '\0';
		a = seed_account(&s->seed, buf);
		if (a && !password_ok(a, colon + 1))
			a = NULL;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return a;
}

static void serve_crl(struct adcs *s, struct http_resp *resp)
{
	unsigned char *der = NULL;
	size_t len;

	if (ca_crl(&s->ca, s->db, &der, &len)) {
		text(resp, 500, "CRL could not be built\n");
		return;
	}
	http_reply(resp, 200, "application/pkix-crl", (const char *)der, len);
	OPENSSL_free(der);
}

static void serve_cacert(struct adcs *s, struct http_resp *resp)
{
	unsigned char *der = NULL;
	int n = i2d_X509(s->ca.cert, &der);

	if (n <= 0) {
		text(resp, 500, "CA certificate could not be encoded\n");
		return;
	}
	http_reply(resp, 200, "application/pkix-cert", (const char *)der, (size_t)n);
	OPENSSL_free(der);
}

/* "/<prefix><suffix>" compared case-insensitively with %20 for spaces in prefix. */
static int path_is(const char *path, const char *prefix, const char *suffix)
{
	char want[400];
	size_t o = 0;
	const char *p;

	want[o++] = '/';
	for (p = prefix; *p && o < sizeof(want) - 4; p++) {
		if (*p == ' ') {
			memcpy(want + o, "%20", 3);
			o += 3;
		} else {
			want[o++] = *p;
		}
	}
	want[o] = '\0';
	if (strncasecmp(path, want, o))
		return 0;
	return strcasecmp(path + o, suffix) == 0;
}

enum endpoint { EP_NONE, EP_CEP, EP_CES, EP_WSMAN };

static enum endpoint route(struct adcs *s, const char *path, int *auth)
{
	if (path_is(path, "ADPolicyProvider_CEP_UsernamePassword", "/service.svc/CEP")) {
		*auth = AUTH_USERNAME;
		return EP_CEP;
	}
	if (path_is(path, "ADPolicyProvider_CEP_Certificate", "/service.svc/CEP")) {
		*auth = AUTH_CERTIFICATE;
		return EP_CEP;
	}
	if (negotiate_available() &&
	    path_is(path, "ADPolicyProvider_CEP_Kerberos", "/service.svc/CEP")) {
		*auth = AUTH_KERBEROS;
		return EP_CEP;
	}
	if (negotiate_available() &&
	    path_is(path, s->seed.ca_name, "_CES_Kerberos/service.svc/CES")) {
		*auth = AUTH_KERBEROS;
		return EP_CES;
	}
	if (path_is(path, s->seed.ca_name, "_CES_UsernamePassword/service.svc/CES")) {
		*auth = AUTH_USERNAME;
		return EP_CES;
	}
	if (path_is(path, s->seed.ca_name, "_CES_Certificate/service.svc/CES")) {
		*auth = AUTH_CERTIFICATE;
		return EP_CES;
	}
	if (!strcasecmp(path, "/wsman"))
		return EP_WSMAN;
	return EP_NONE;
}

static void handle_http(struct adcs *s, const struct http_req *req, struct http_resp *resp)
{
	if (strcmp(req->method, "GET")) {
		text(resp, 405, "only GET here\n");
	} else if (path_is(req->path, "CertEnroll", "") ||
		   path_is(req->path, "CertEnroll/", "")) {
		text(resp, 404, "not found\n");
	} else {
		char crl[200], crt[200];

		snprintf(crl, sizeof(crl), "CertEnroll/%s", s->seed.ca_name);
		snprintf(crt, sizeof(crt), "CertEnroll/%s", s->seed.ca_name);
		if (path_is(req->path, crl, ".crl"))
			serve_crl(s, resp);
		else if (path_is(req->path, crt, ".crt"))
			serve_cacert(s, resp);
		else
			text(resp, 404, "not found\n");
	}
}

void adcs_handle(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct adcs *s = ctx;
	enum endpoint ep;
	int auth = 0;
	xmlDocPtr doc;
	const struct seed_account *who = NULL;
	char *msgid, *action, self[900];

	if (!req->tls) {
		handle_http(s, req, resp);
		return;
	}
	ep = route(s, req->path, &auth);
	if (ep == EP_NONE) {
		text(resp, 404, "not found\n");
		return;
	}
	if (strcmp(req->method, "POST")) {
		text(resp, 405, "POST only\n");
		return;
	}
	if (strncasecmp(req->content_type, "application/soap+xml", 20)) {
		text(resp, 415, "Content-Type must be application/soap+xml\n");
		return;
	}
	if (ep == EP_WSMAN) {
		who = auth_basic(s, req->authorization);
		if (!who) {
			snprintf(resp->extra_headers, sizeof(resp->extra_headers),
				 "WWW-Authenticate: Basic realm=\"WSMAN\"\r\n");
			text(resp, 401, "authentication required\n");
			return;
		}
	} else if (auth == AUTH_KERBEROS) {
		/* HTTP Negotiate at the transport (RFC 4559), as IIS does for these apps. */
		char principal[256], reply[700], err[256];

		if (negotiate_accept(req->authorization, principal, sizeof(principal), reply,
				     sizeof(reply), err, sizeof(err)) ||
		    !(who = seed_account(&s->seed, principal))) {
			snprintf(resp->extra_headers, sizeof(resp->extra_headers),
				 "WWW-Authenticate: Negotiate\r\n");
			text(resp, 401, "Negotiate authentication required\n");
			return;
		}
		if (reply[0])
			snprintf(resp->extra_headers, sizeof(resp->extra_headers),
				 "WWW-Authenticate: Negotiate %s\r\n", reply);
	} else if (auth == AUTH_CERTIFICATE) {
		/* IIS with "require client certificates": 403 before any SOAP processing. */
		who = req->peer_cn[0] ? seed_account_by_cn(&s->seed, req->peer_cn) : NULL;
		if (!who) {
			text(resp, 403, "client certificate required or not mapped to an account\n");
			return;
		}
	}
	doc = soap_parse(req->body, req->body_len);
	if (!doc || !soap_body(doc)) {
		xmlFreeDoc(doc);
		text(resp, 400, "the body is not a SOAP 1.2 envelope\n");
		return;
	}
	if (ep == EP_WSMAN) {
		winrm_handle(s, doc, who, resp);
		xmlFreeDoc(doc);
		return;
	}
	msgid = soap_text(soap_child(soap_header(doc), NS_WSA, "MessageID"));
	action = soap_text(soap_child(soap_header(doc), NS_WSA, "Action"));
	if (auth == AUTH_USERNAME)
		who = auth_username(s, doc);
	if (!who) {
		/* WCF's answer to a missing or wrong UsernameToken. */
		adcs_fault(resp, "http://www.w3.org/2005/08/addressing/soap/fault", msgid, "Sender",
			   NS_WSSE, "InvalidSecurity",
			   "An error occurred when verifying security for the message.", NULL);
	} else if (ep == EP_CEP) {
		if (!action || strcmp(action, "http://schemas.microsoft.com/windows/pki/2009/01/"
				      "enrollmentpolicy/IPolicy/GetPolicies"))
			adcs_fault(resp, "http://www.w3.org/2005/08/addressing/soap/fault", msgid,
				   "Sender", NS_WSA, "ActionNotSupported",
				   "The message with Action cannot be processed at the receiver.",
				   NULL);
		else
			xcep_get_policies(s, doc, msgid, who, resp);
	} else {
		snprintf(self, sizeof(self), "%s%s", s->https_base, req->path);
		wstep_request(s, doc, msgid, self, who, resp);
	}
	free(msgid);
	free(action);
	xmlFreeDoc(doc);
}
