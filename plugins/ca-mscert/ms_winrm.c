/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ms_winrm.c - revocation for ca-mscert: WS-Management remote shell (MS-WSMV) on the CA host
 * running `certutil [-config CA] -revoke SERIAL REASON`, as an administrator would. Create a
 * cmd shell, Command, Receive until CommandState Done (exit code and output), Signal
 * terminate, Delete. HTTP Basic over HTTPS only (ms_http.c refuses plain HTTP).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "ms.h"

#define NS_S "http://www.w3.org/2003/05/soap-envelope"
#define NS_A04 "http://schemas.xmlsoap.org/ws/2004/08/addressing"
#define NS_W "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
#define NS_RSP "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
#define NS_T "http://schemas.xmlsoap.org/ws/2004/09/transfer"

char *ms_winrm_envelope(const char *url, const char *action, const char *shell_id,
			const char *body)
{
	struct pu_buf b = {0};
	char id[37];

	ms_uuid(id);
	pu_buf_add(&b, "<s:Envelope xmlns:s=\"" NS_S "\" xmlns:a=\"" NS_A04 "\" xmlns:w=\"" NS_W
		       "\" xmlns:rsp=\"" NS_RSP "\"><s:Header><a:To>");
	pu_buf_add_xml(&b, url);
	pu_buf_printf(&b, "</a:To><a:ReplyTo><a:Address s:mustUnderstand=\"true\">" NS_A04
		      "/role/anonymous</a:Address></a:ReplyTo><w:MaxEnvelopeSize "
		      "s:mustUnderstand=\"true\">153600</w:MaxEnvelopeSize><a:MessageID>uuid:%s"
		      "</a:MessageID><w:OperationTimeout>PT20S</w:OperationTimeout>"
		      "<w:ResourceURI s:mustUnderstand=\"true\">" NS_RSP "/cmd</w:ResourceURI>"
		      "<a:Action s:mustUnderstand=\"true\">%s</a:Action>", id, action);
	if (shell_id) {
		pu_buf_add(&b, "<w:SelectorSet><w:Selector Name=\"ShellId\">");
		pu_buf_add_xml(&b, shell_id);
		pu_buf_add(&b, "</w:Selector></w:SelectorSet>");
	}
	pu_buf_printf(&b, "</s:Header><s:Body>%s</s:Body></s:Envelope>", body ? body : "");
	return pu_buf_take(&b);
}

/* Appends decoded base64 stream text to res->out (bounded, printable only). */
static void add_output(struct ms_winrm_result *res, const char *b64)
{
	uint8_t *d = NULL;
	size_t n = 0, at = strlen(res->out);

	if (!b64 || !*b64 || ms_b64_decode(b64, &d, &n))
		return;
	for (size_t i = 0; i < n && at + 1 < sizeof(res->out); i++) {
		char c = (char)d[i];

		if (c == '\r')
			continue;
		res->out[at++] = c == '\n' || c == '\t' ? ' ' : (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	res->out[at] = '\0';
	free(d);
}

int ms_winrm_parse_receive(const char *xml, size_t len, struct ms_winrm_result *res, int *done)
{
	xmlDocPtr doc = ms_xml_parse(xml, len);
	xmlNodePtr rr, st;

	*done = 0;
	if (!doc)
		return -1;
	rr = ms_xml_find(xmlDocGetRootElement(doc), NS_RSP, "ReceiveResponse");
	if (!rr) {
		xmlFreeDoc(doc);
		return -1;
	}
	for (xmlNodePtr c = rr->children; c; c = c->next) {
		xmlChar *t;

		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "Stream"))
			continue;
		t = xmlNodeGetContent(c);
		add_output(res, (const char *)t);
		xmlFree(t);
	}
	st = ms_xml_child(rr, NS_RSP, "CommandState");
	if (st) {
		xmlChar *state = xmlGetProp(st, (const xmlChar *)"State");
		xmlNodePtr ec = ms_xml_child(st, NS_RSP, "ExitCode");

		if (state && strstr((const char *)state, "/CommandState/Done")) {
			xmlChar *t = ec ? xmlNodeGetContent(ec) : NULL;

			*done = 1;
			res->exit_code = t ? (int)strtol((const char *)t, NULL, 10) : -1;
			xmlFree(t);
		}
		xmlFree(state);
	}
	xmlFreeDoc(doc);
	return 0;
}

/* Posts one WS-Management message; @return the parsed document (HTTP 200) or NULL + why. */
static xmlDocPtr call(const struct ms_http_opts *o, const char *url, const char *action,
		      const char *shell, const char *body, struct ms_http_resp *raw, char *why,
		      size_t why_size)
{
	char *env = ms_winrm_envelope(url, action, shell, body);
	xmlDocPtr doc = NULL;
	int rc;

	memset(raw, 0, sizeof(*raw));
	if (!env) {
		snprintf(why, why_size, "out of memory");
		return NULL;
	}
	rc = ms_http_post(o, url, env, raw, why, why_size);
	free(env);
	if (rc)
		return NULL;
	if (raw->status == 401) {
		snprintf(why, why_size, "WinRM %s: HTTP 401: the revocation account's user name "
			 "or password is wrong", url);
		return NULL;
	}
	if (raw->status != 200 || !(doc = ms_xml_parse(raw->body, raw->len))) {
		char reason[160] = "";
		xmlDocPtr f = raw->body ? ms_xml_parse(raw->body, raw->len) : NULL;
		xmlNodePtr t = f ? ms_xml_find(xmlDocGetRootElement(f), NS_S, "Text") : NULL;
		xmlChar *tx = t ? xmlNodeGetContent(t) : NULL;

		if (tx)
			snprintf(reason, sizeof(reason), ": %s", (const char *)tx);
		xmlFree(tx);
		xmlFreeDoc(f);
		snprintf(why, why_size, "WinRM %s: HTTP %ld%s", url, raw->status, reason);
		return NULL;
	}
	return doc;
}

int ms_winrm_revoke(const struct ms_http_opts *o, const char *url, const char *ca_config,
		    const char *serial, unsigned reason, struct ms_winrm_result *res, char *why,
		    size_t why_size)
{
	struct ms_http_resp raw;
	struct pu_buf cmd = {0};
	xmlDocPtr doc;
	xmlNodePtr n;
	xmlChar *shell = NULL, *cid = NULL;
	int rc = -1, done = 0;

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	doc = call(o, url, NS_T "/Create", NULL,
		   "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>"
		   "stdout stderr</rsp:OutputStreams></rsp:Shell>", &raw, why, why_size);
	ms_http_resp_free(&raw);
	n = doc ? ms_xml_find(xmlDocGetRootElement(doc), NS_W, "Selector") : NULL;
	shell = n ? xmlNodeGetContent(n) : NULL;
	xmlFreeDoc(doc);
	if (!shell) {
		if (!why[0])
			snprintf(why, why_size, "WinRM %s: no ShellId in the Create answer", url);
		return -1;
	}
	/* Serial as certutil wants it (hex, even length); the CA configuration quoted. */
	pu_buf_add(&cmd, "<rsp:CommandLine><rsp:Command>certutil</rsp:Command><rsp:Arguments>");
	if (ca_config && *ca_config) {
		pu_buf_add(&cmd, "-config &quot;");
		pu_buf_add_xml(&cmd, ca_config);
		pu_buf_add(&cmd, "&quot; ");
	}
	pu_buf_printf(&cmd, "-revoke %s%s %u</rsp:Arguments></rsp:CommandLine>",
		      strlen(serial) % 2 ? "0" : "", serial, reason);
	doc = cmd.oom ? NULL : call(o, url, NS_RSP "/Command", (const char *)shell, cmd.p, &raw,
				    why, why_size);
	pu_buf_free(&cmd);
	ms_http_resp_free(&raw);
	n = doc ? ms_xml_find(xmlDocGetRootElement(doc), NS_RSP, "CommandId") : NULL;
	cid = n ? xmlNodeGetContent(n) : NULL;
	xmlFreeDoc(doc);
	for (int i = 0; cid && !done && i < 30; i++) {
		struct pu_buf rb = {0};

		pu_buf_add(&rb, "<rsp:Receive><rsp:DesiredStream CommandId=\"");
		pu_buf_add_xml(&rb, (const char *)cid);
		pu_buf_add(&rb, "\">stdout stderr</rsp:DesiredStream></rsp:Receive>");
		doc = rb.oom ? NULL : call(o, url, NS_RSP "/Receive", (const char *)shell, rb.p,
					   &raw, why, why_size);
		pu_buf_free(&rb);
		xmlFreeDoc(doc);
		if (!doc || ms_winrm_parse_receive(raw.body, raw.len, res, &done)) {
			ms_http_resp_free(&raw);
			break;
		}
		ms_http_resp_free(&raw);
	}
	if (done) {
		rc = 0;
	} else if (!why[0]) {
		snprintf(why, why_size, "WinRM %s: certutil did not finish", url);
	}
	/* Clean up the shell whatever happened; errors here change nothing. */
	if (cid) {
		struct pu_buf sb = {0};
		char w2[8];

		pu_buf_add(&sb, "<rsp:Signal CommandId=\"");
		pu_buf_add_xml(&sb, (const char *)cid);
		pu_buf_add(&sb, "\"><rsp:Code>" NS_RSP "/signal/terminate</rsp:Code></rsp:Signal>");
		if (!sb.oom)
			xmlFreeDoc(call(o, url, NS_RSP "/Signal", (const char *)shell, sb.p, &raw,
					w2, sizeof(w2)));
		pu_buf_free(&sb);
		ms_http_resp_free(&raw);
	}
	{
		char w3[8];

		xmlFreeDoc(call(o, url, NS_T "/Delete", (const char *)shell, "", &raw, w3,
				sizeof(w3)));
		ms_http_resp_free(&raw);
	}
	xmlFree(cid);
	xmlFree(shell);
	return rc;
}
