/* SPDX-License-Identifier: Apache-2.0 */
/*
 * at_proto.c - the WS-Management client (WS-Transfer Get/Put/Create/Delete, WS-Enumeration
 * Enumerate/Pull, method invocation with EPR arguments) and the legacy EOI SOAP 1.1 client,
 * as AMT speaks them (AMT-PROTOCOL.md 5 and 7). Builders only fill s->req; at_plugin.c sends.
 * Every value that goes into an envelope is XML-escaped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "at_internal.h"

void at_class_uri(const char *cls, char *out, size_t n)
{
	if (!strncmp(cls, "http", 4))
		snprintf(out, n, "%s", cls);
	else if (!strncmp(cls, "CIM_", 4))
		snprintf(out, n, AT_NS_CIM "%s", cls);
	else if (!strncmp(cls, "IPS_", 4))
		snprintf(out, n, AT_NS_IPS "%s", cls);
	else
		snprintf(out, n, AT_NS_AMT "%s", cls);
}

/* The class name is the last path segment of its URI. */
static const char *class_name(const char *uri)
{
	const char *p = strrchr(uri, '/');

	return p ? p + 1 : uri;
}

static void selectors(struct at_buf *b, const json_t *sel)
{
	const char *k;
	json_t *v;

	if (!json_is_object(sel) || !json_object_size(sel))
		return;
	at_buf_add(b, "<w:SelectorSet>");
	json_object_foreach((json_t *)sel, k, v) {
		at_buf_add(b, "<w:Selector Name=\"");
		at_buf_add_xml(b, k);
		at_buf_add(b, "\">");
		if (json_is_string(v)) {
			at_buf_add_xml(b, json_string_value(v));
		} else if (json_is_object(v)) {
			/* A reference-valued selector (association classes such as
			 * AMT_TLSCredentialContext): {"epr_class","selector","value"}. */
			const char *c = json_string_value(json_object_get(v, "epr_class"));
			const char *n = json_string_value(json_object_get(v, "selector"));
			const char *x = json_string_value(json_object_get(v, "value"));
			char uri[256];

			at_class_uri(c ? c : "", uri, sizeof(uri));
			at_buf_add(b, "<a:EndpointReference><a:Address>/wsman</a:Address>"
				      "<a:ReferenceParameters><w:ResourceURI>");
			at_buf_add_xml(b, uri);
			at_buf_add(b, "</w:ResourceURI><w:SelectorSet><w:Selector Name=\"");
			at_buf_add_xml(b, n ? n : "InstanceID");
			at_buf_add(b, "\">");
			at_buf_add_xml(b, x ? x : "");
			at_buf_add(b, "</w:Selector></w:SelectorSet></a:ReferenceParameters>"
				      "</a:EndpointReference>");
		} else if (json_is_integer(v)) {
			at_buf_printf(b, "%lld", (long long)json_integer_value(v));
		}
		at_buf_add(b, "</w:Selector>");
	}
	at_buf_add(b, "</w:SelectorSet>");
}

static int envelope(struct at_session *s, const char *action, const char *uri,
		    const json_t *sel, const char *body)
{
	struct at_buf *b = &s->req;

	at_buf_reset(b);
	s->proto = AT_WSMAN;
	snprintf(s->path, sizeof(s->path), "/wsman");
	s->method[0] = '\0';
	snprintf(s->verb, sizeof(s->verb), "%s", strrchr(action, '/') ? strrchr(action, '/') + 1
								       : action);
	s->tolerate_rv = -1;
	s->msg_id++;
	at_buf_add(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		      "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" "
		      "xmlns:a=\"" AT_NS_WSA "\" xmlns:w=\"" AT_NS_WSMAN "\"><s:Header>");
	at_buf_add(b, "<a:Action s:mustUnderstand=\"true\">");
	at_buf_add_xml(b, action);
	at_buf_add(b, "</a:Action><a:To s:mustUnderstand=\"true\">/wsman</a:To>"
		      "<w:ResourceURI s:mustUnderstand=\"true\">");
	at_buf_add_xml(b, uri);
	at_buf_printf(b, "</w:ResourceURI><a:MessageID>%u</a:MessageID>"
			 "<a:ReplyTo><a:Address>" AT_NS_WSA "/role/anonymous</a:Address>"
			 "</a:ReplyTo><w:OperationTimeout>PT60S</w:OperationTimeout>",
		      s->msg_id);
	selectors(b, sel);
	at_buf_add(b, "</s:Header><s:Body>");
	if (body)
		at_buf_add(b, body);
	at_buf_add(b, "</s:Body></s:Envelope>");
	if (b->oom)
		return amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory");
	return AMTPROV_AGAIN;
}

int at_wsman_get(struct at_session *s, const char *cls, const json_t *sel)
{
	char uri[256];

	at_class_uri(cls, uri, sizeof(uri));
	return envelope(s, AT_NS_WXF "/Get", uri, sel, NULL);
}

static void value_xml(struct at_buf *b, const char *pfx, const char *k, const json_t *v)
{
	size_t i;
	json_t *e;

	if (json_is_array(v)) {
		json_array_foreach((json_t *)v, i, e)
			value_xml(b, pfx, k, e);
		return;
	}
	if (json_is_null(v))
		return;
	if (json_is_object(v) && json_is_string(json_object_get(v, "epr_class"))) {
		/* A reference property: {"epr_class", "selector", "value"} (AMT_8021XProfile's
		 * ClientCertificate). */
		const char *sel, *val;
		char uri[256];

		at_class_uri(json_string_value(json_object_get(v, "epr_class")), uri, sizeof(uri));
		at_buf_printf(b, "<%s:%s><a:Address>/wsman</a:Address><a:ReferenceParameters>"
				 "<w:ResourceURI>", pfx, k);
		at_buf_add_xml(b, uri);
		at_buf_add(b, "</w:ResourceURI><w:SelectorSet><w:Selector Name=\"");
		sel = json_string_value(json_object_get(v, "selector"));
		val = json_string_value(json_object_get(v, "value"));
		at_buf_add_xml(b, sel ? sel : "InstanceID");
		at_buf_add(b, "\">");
		at_buf_add_xml(b, val ? val : "");
		at_buf_printf(b, "</w:Selector></w:SelectorSet></a:ReferenceParameters></%s:%s>",
			      pfx, k);
		return;
	}
	at_buf_printf(b, "<%s:%s>", pfx, k);
	if (json_is_string(v))
		at_buf_add_xml(b, json_string_value(v));
	else if (json_is_integer(v))
		at_buf_printf(b, "%lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		at_buf_add(b, json_is_true(v) ? "true" : "false");
	else if (json_is_object(v)) {
		const char *ck;
		json_t *cv;

		json_object_foreach((json_t *)v, ck, cv)
			value_xml(b, pfx, ck, cv);
	}
	at_buf_printf(b, "</%s:%s>", pfx, k);
}

void at_instance_xml(struct at_buf *b, const char *cls, const json_t *props)
{
	char uri[256];
	const char *k;
	json_t *v;
	const char *name;

	at_class_uri(cls, uri, sizeof(uri));
	name = class_name(uri);
	at_buf_printf(b, "<h:%s xmlns:h=\"", name);
	at_buf_add_xml(b, uri);
	at_buf_add(b, "\">");
	json_object_foreach((json_t *)props, k, v)
		value_xml(b, "h", k, v);
	at_buf_printf(b, "</h:%s>", name);
}

void at_arg_instance(struct at_buf *b, const char *name, const char *cls, const json_t *props)
{
	char uri[256];
	const char *k;
	json_t *v;

	at_class_uri(cls, uri, sizeof(uri));
	at_buf_printf(b, "<h:%s xmlns:q=\"", name);
	at_buf_add_xml(b, uri);
	at_buf_add(b, "\">");
	json_object_foreach((json_t *)props, k, v)
		value_xml(b, "q", k, v);
	at_buf_printf(b, "</h:%s>", name);
}

int at_wsman_put(struct at_session *s, const char *cls, const json_t *sel, const json_t *props)
{
	char uri[256];
	struct at_buf body = {0};
	int rc;

	at_class_uri(cls, uri, sizeof(uri));
	at_instance_xml(&body, cls, props);
	rc = body.oom ? amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory")
		      : envelope(s, AT_NS_WXF "/Put", uri, sel, body.p);
	at_buf_free(&body);
	return rc;
}

int at_wsman_create(struct at_session *s, const char *cls, const char *body_xml)
{
	char uri[256];

	at_class_uri(cls, uri, sizeof(uri));
	return envelope(s, AT_NS_WXF "/Create", uri, NULL, body_xml);
}

int at_wsman_delete(struct at_session *s, const char *cls, const json_t *sel)
{
	char uri[256];

	at_class_uri(cls, uri, sizeof(uri));
	return envelope(s, AT_NS_WXF "/Delete", uri, sel, NULL);
}

int at_wsman_enumerate(struct at_session *s, const char *cls)
{
	char uri[256];

	at_class_uri(cls, uri, sizeof(uri));
	return envelope(s, AT_NS_WSEN "/Enumerate", uri, NULL,
			"<Enumerate xmlns=\"" AT_NS_WSEN "\"/>");
}

int at_wsman_pull(struct at_session *s, const char *cls, const char *context)
{
	char uri[256];
	struct at_buf body = {0};
	int rc;

	at_class_uri(cls, uri, sizeof(uri));
	at_buf_add(&body, "<Pull xmlns=\"" AT_NS_WSEN "\"><EnumerationContext>");
	at_buf_add_xml(&body, context);
	at_buf_add(&body, "</EnumerationContext><MaxElements>999</MaxElements>"
			  "<MaxCharacters>99999</MaxCharacters></Pull>");
	rc = body.oom ? amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory")
		      : envelope(s, AT_NS_WSEN "/Pull", uri, NULL, body.p);
	at_buf_free(&body);
	return rc;
}

int at_wsman_invoke(struct at_session *s, const char *cls, const json_t *sel, const char *method,
		    const char *args_xml)
{
	char uri[256], action[320];
	struct at_buf body = {0};
	int rc;

	at_class_uri(cls, uri, sizeof(uri));
	snprintf(action, sizeof(action), "%s/%s", uri, method);
	at_buf_printf(&body, "<h:%s_INPUT xmlns:h=\"", method);
	at_buf_add_xml(&body, uri);
	at_buf_add(&body, "\">");
	if (args_xml)
		at_buf_add(&body, args_xml);
	at_buf_printf(&body, "</h:%s_INPUT>", method);
	rc = body.oom ? amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory")
		      : envelope(s, action, uri, sel, body.p);
	at_buf_free(&body);
	snprintf(s->method, sizeof(s->method), "%s", method);
	return rc;
}

void at_arg(struct at_buf *b, const char *name, const char *value)
{
	at_buf_printf(b, "<h:%s>", name);
	at_buf_add_xml(b, value);
	at_buf_printf(b, "</h:%s>", name);
}

void at_arg_epr(struct at_buf *b, const char *name, const char *cls, const char *sel_name,
		const char *sel_value)
{
	char uri[256];

	at_class_uri(cls, uri, sizeof(uri));
	at_buf_printf(b, "<h:%s><a:Address>/wsman</a:Address><a:ReferenceParameters>"
			 "<w:ResourceURI>", name);
	at_buf_add_xml(b, uri);
	at_buf_add(b, "</w:ResourceURI><w:SelectorSet><w:Selector Name=\"");
	at_buf_add_xml(b, sel_name);
	at_buf_add(b, "\">");
	at_buf_add_xml(b, sel_value);
	at_buf_printf(b, "</w:Selector></w:SelectorSet></a:ReferenceParameters></h:%s>", name);
}

int at_soap_call(struct at_session *s, const char *service, const char *op, const char *args_xml)
{
	struct at_buf *b = &s->req;
	char ns[160];

	snprintf(ns, sizeof(ns), "http://schemas.intel.com/platform/client/%s/2004/01", service);
	at_buf_reset(b);
	s->proto = AT_SOAP;
	snprintf(s->path, sizeof(s->path), "/%sService", service);
	snprintf(s->soap_action, sizeof(s->soap_action), "\"%s#%s\"", ns, op);
	snprintf(s->method, sizeof(s->method), "%s", op);
	s->tolerate_rv = -1;
	at_buf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
			 "<SOAP-ENV:Envelope "
			 "xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" "
			 "xmlns:h=\"%s\"><SOAP-ENV:Body><h:%s>",
		      ns, op);
	if (args_xml)
		at_buf_add(b, args_xml);
	at_buf_printf(b, "</h:%s></SOAP-ENV:Body></SOAP-ENV:Envelope>", op);
	if (b->oom)
		return amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory");
	return AMTPROV_AGAIN;
}

/* A SOAP fault (1.2 for WS-Man, 1.1 for EOI) becomes an error naming its subcode and reason. */
static int fault_error(struct at_session *s, xmlNodePtr fault)
{
	char code[128] = "", sub[160] = "", reason[200] = "", detail[200] = "";
	xmlNodePtr c = at_xml_child(fault, "Code");
	int rc = AMTPROV_E_PROTOCOL;

	if (c) {
		xmlNodePtr sc = at_xml_child(c, "Subcode");

		at_xml_find_text(at_xml_child(c, "Value"), "Value", code, sizeof(code));
		if (sc)
			at_xml_find_text(at_xml_child(sc, "Value"), "Value", sub, sizeof(sub));
	} else {
		at_xml_find_text(fault, "faultcode", code, sizeof(code));
	}
	if (at_xml_find_text(fault, "Reason", reason, sizeof(reason)))
		at_xml_find_text(fault, "faultstring", reason, sizeof(reason));
	if (at_xml_find_text(fault, "FaultDetail", detail, sizeof(detail)))
		detail[0] = '\0';
	if (strstr(sub, "AccessDenied"))
		rc = AMTPROV_E_DENIED;
	else if (strstr(sub, "InternalError"))
		rc = AMTPROV_E_DEVICE;
	if (!code[0] && !sub[0])
		snprintf(code, sizeof(code), "(no code)");
	if (!reason[0])
		snprintf(reason, sizeof(reason), "(no reason given)");
	return amtprov_error_set(&s->err, rc, s->address,
				 "%s fault %s%s%s: %s%s%s (HTTP %ld, request %s)",
				 s->proto == AT_SOAP ? "SOAP" : "WS-Man", sub[0] ? sub : code,
				 sub[0] ? " / " : "", sub[0] ? code : "", reason,
				 detail[0] ? "; " : "", detail, s->http_code,
				 s->method[0] ? s->method : s->path);
}

int at_check_response(struct at_session *s)
{
	xmlNodePtr root, fault, out;
	char rv_text[32];
	const char *rv_name_tag = s->proto == AT_SOAP ? "StatusCode" : "ReturnValue";
	long rv;
	char *end;

	if (s->doc) {
		xmlFreeDoc(s->doc);
		s->doc = NULL;
	}
	s->body = NULL;
	s->last_rv = 0;
	if (s->http_code == 404 && s->proto == AT_SOAP)
		return amtprov_error_set(&s->err, AMTPROV_E_NOT_SUPPORTED, s->address,
					 "the device has no legacy SOAP service %s (AMT %d; "
					 "removed in AMT 9.0)", s->path, s->amt_major);
	s->doc = at_xml_parse(s->resp.p, s->resp.len);
	if (!s->doc) {
		if (s->http_code != 200)
			return amtprov_error_set(&s->err, s->http_code == 403 ? AMTPROV_E_DENIED
									  : AMTPROV_E_PROTOCOL,
						 s->address, "HTTP %ld from %s without a SOAP body",
						 s->http_code, s->path);
		return amtprov_error_set(&s->err, AMTPROV_E_PARSE, s->address,
					 "response to %s is not well-formed XML (or has a DOCTYPE)",
					 s->method[0] ? s->method : s->path);
	}
	root = xmlDocGetRootElement(s->doc);
	s->body = at_xml_child(root, "Body");
	if (!s->body)
		return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
					 "response has no SOAP Body (HTTP %ld)", s->http_code);
	fault = at_xml_child(s->body, "Fault");
	if (fault)
		return fault_error(s, fault);
	if (s->http_code != 200)
		return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
					 "HTTP %ld from %s", s->http_code, s->path);
	if (!s->method[0])
		return AMTPROV_OK;
	/* Method outputs: every non-zero ReturnValue / StatusCode is a named device error. */
	out = s->body->children;
	while (out && out->type != XML_ELEMENT_NODE)
		out = out->next;
	if (!out)
		return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
					 "%s: response has an empty SOAP Body", s->method);
	if (s->proto == AT_WSMAN) {
		/* WS-Man method outputs are <Method>_OUTPUT; anything else answers another call. */
		char want[96];

		snprintf(want, sizeof(want), "%s_OUTPUT", s->method);
		if (strcmp(at_xml_local(out), want))
			return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
						 "%s: response is <%.64s>, not <%s>", s->method,
						 at_xml_local(out), want);
	}
	if (at_xml_find_text(out, rv_name_tag, rv_text, sizeof(rv_text)))
		return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
					 "%s: response has no %s", s->method, rv_name_tag);
	rv = strtol(rv_text, &end, 10);
	if (end == rv_text || *end)
		return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
					 "%s: %s '%s' is not a number", s->method, rv_name_tag,
					 rv_text);
	s->last_rv = rv;
	if (rv != 0 && rv != s->tolerate_rv)
		return amtprov_error_set(&s->err, AMTPROV_E_DEVICE, s->address,
					 "%s returned %ld (0x%lX) %s", s->method, rv,
					 (unsigned long)rv, at_return_name(s->method, rv));
	return AMTPROV_OK;
}
