/* SPDX-License-Identifier: Apache-2.0 */
#include "wsman.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>

#include "simutil.h"
#include "setup_ops.h"
#include "wsman_int.h"

/* ---- safe XML ------------------------------------------------------------------------ */

xmlDocPtr xml_parse_untrusted(const char *buf, size_t len)
{
	xmlDocPtr doc;

	if (len > HTTP_MAX_BODY || len > 0x7fffffff)
		return NULL;
	/* NONET: never fetch; no NOENT: entities are not substituted; NONET also stops external
	 * DTD loading. A DOCTYPE is refused outright below. */
	doc = xmlReadMemory(buf, (int)len, "request.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return NULL;
	if (doc->intSubset || doc->extSubset || !xmlDocGetRootElement(doc)) {
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

xmlNodePtr xml_child(xmlNodePtr n, const char *ns, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, name) != 0)
			continue;
		if (ns && (!c->ns || !c->ns->href || strcmp((const char *)c->ns->href, ns) != 0))
			continue;
		return c;
	}
	return NULL;
}

static xmlNodePtr first_element(xmlNodePtr n)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return c;
	return NULL;
}

void xml_text(xmlNodePtr n, char *out, size_t size)
{
	xmlChar *t;
	const char *s;
	size_t len;

	out[0] = '\0';
	if (!n)
		return;
	t = xmlNodeGetContent(n);
	if (!t)
		return;
	s = (const char *)t;
	while (isspace((unsigned char)*s))
		s++;
	sim_strlcpy(out, s, size);
	len = strlen(out);
	while (len && isspace((unsigned char)out[len - 1]))
		out[--len] = '\0';
	xmlFree(t);
}

/* ---- request ------------------------------------------------------------------------- */

const char *wm_sel(const struct wreq *w, const char *name)
{
	for (int i = 0; i < w->n_sel; i++)
		if (!strcmp(w->sel[i].name, name))
			return w->sel[i].value;
	return NULL;
}

/* ---- response envelopes ---------------------------------------------------------------- */

static unsigned long msg_counter;

/* @p items_ns: the namespace of a Pull's items, declared once here as prefix h the way the
 * firmware does (the items then come bare, issue 17 item 10); NULL for other answers. */
static void env_open_ns(struct sbuf *b, const struct wreq *w, const char *action,
			const char *items_ns)
{
	sbuf_add(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		    "<a:Envelope xmlns:a=\"" NS_SOAP12 "\" xmlns:b=\"" NS_WSA "\" xmlns:c=\"" NS_WSMAN
		    "\" xmlns:d=\"" NS_WSEN "\" xmlns:e=\"" NS_WXF "\""
		    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"");
	if (items_ns) {
		sbuf_add(b, " xmlns:h=\"");
		sbuf_add_xml(b, items_ns);
		sbuf_add(b, "\"");
	}
	sbuf_add(b, "><a:Header>"
		    "<b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To>"
		    "<b:RelatesTo>");
	sbuf_add_xml(b, w->message_id);
	sbuf_add(b, "</b:RelatesTo><b:Action a:mustUnderstand=\"true\">");
	sbuf_add_xml(b, action);
	sbuf_printf(b, "</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-%012lX</b:MessageID>",
		    ++msg_counter);
	if (w->resource[0]) {
		sbuf_add(b, "<c:ResourceURI>");
		sbuf_add_xml(b, w->resource);
		sbuf_add(b, "</c:ResourceURI>");
	}
	sbuf_add(b, "</a:Header><a:Body>");
}

static void env_open(struct sbuf *b, const struct wreq *w, const char *action)
{
	env_open_ns(b, w, action, NULL);
}

static void env_close(struct sbuf *b)
{
	sbuf_add(b, "</a:Body></a:Envelope>");
}

/* A SOAP 1.2 fault shaped like AMT's. @p sender chooses a:Sender vs a:Receiver. */
void wm_fault(struct http_response *r, const struct wreq *w, int status, bool sender,
		  const char *action, const char *subcode_ns, const char *subcode,
		  const char *reason, const char *detail)
{
	struct sbuf *b = &r->body;

	sbuf_free(b);
	r->status = status;
	r->content_type = "application/soap+xml;charset=UTF-8";
	env_open(b, w, action);
	sbuf_printf(b, "<a:Fault><a:Code><a:Value>a:%s</a:Value><a:Subcode><a:Value "
		       "xmlns:f=\"%s\">f:%s</a:Value></a:Subcode></a:Code><a:Reason>"
		       "<a:Text xml:lang=\"en-US\">",
		    sender ? "Sender" : "Receiver", subcode_ns, subcode);
	sbuf_add_xml(b, reason);
	sbuf_add(b, "</a:Text></a:Reason>");
	if (detail) {
		sbuf_add(b, "<a:Detail><c:FaultDetail>");
		sbuf_add_xml(b, detail);
		sbuf_add(b, "</c:FaultDetail></a:Detail>");
	}
	sbuf_add(b, "</a:Fault>");
	env_close(b);
}

#define WSA_FAULT "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
#define WSMAN_FAULT "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

static void fault_dest_unreachable(struct http_response *r, const struct wreq *w)
{
	wm_fault(r, w, 400, true, WSA_FAULT, NS_WSA, "DestinationUnreachable",
	      "No route can be determined to reach the destination role defined by the WS-Addressing To.",
	      "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidResourceURI");
}

void wm_fault_action(struct http_response *r, const struct wreq *w)
{
	wm_fault(r, w, 400, true, WSA_FAULT, NS_WSA, "ActionNotSupported",
	      "The action is not supported by the service.", NULL);
}

void wm_fault_selectors(struct http_response *r, const struct wreq *w)
{
	wm_fault(r, w, 400, true, WSMAN_FAULT, NS_WSMAN, "InvalidSelectors",
	      "The Selectors for the resource were not valid.",
	      "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors");
}

void wm_fault_schema(struct http_response *r, const struct wreq *w, const char *why)
{
	wm_fault(r, w, 400, true, WSMAN_FAULT, NS_WSMAN, "SchemaValidationError", why, NULL);
}

void wm_fault_access(struct http_response *r, const struct wreq *w, const char *why)
{
	wm_fault(r, w, 400, true, WSMAN_FAULT, NS_WSMAN, "AccessDenied", why, NULL);
}

void wm_fault_invalid(struct http_response *r, const struct wreq *w, const char *why)
{
	wm_fault(r, w, 400, true, WSMAN_FAULT, NS_WSMAN, "InvalidParameter", why,
		 "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue");
}

void wm_fault_exists(struct http_response *r, const struct wreq *w, const char *why)
{
	wm_fault(r, w, 400, true, WSMAN_FAULT, NS_WSMAN, "AlreadyExists", why, NULL);
}

void wm_fault_internal(struct http_response *r, const struct wreq *w, const char *why)
{
	wm_fault(r, w, 500, false, WSMAN_FAULT, NS_WSMAN, "InternalError", why, NULL);
}

/* ---- property helpers -------------------------------------------------------------------- */

void wm_ps(struct sbuf *b, const char *name, const char *v)
{
	sbuf_printf(b, "<h:%s>", name);
	sbuf_add_xml(b, v);
	sbuf_printf(b, "</h:%s>", name);
}

void wm_pi(struct sbuf *b, const char *name, long long v)
{
	sbuf_printf(b, "<h:%s>%lld</h:%s>", name, v, name);
}

void wm_pb(struct sbuf *b, const char *name, bool v)
{
	sbuf_printf(b, "<h:%s>%s</h:%s>", name, v ? "true" : "false", name);
}

/* ---- classes ----------------------------------------------------------------------------- */

void wm_refparams(struct sbuf *b, const char *uri_base, const char *cls, const char *sel_name,
		  const char *sel_value)
{
	sbuf_printf(b, "<b:ReferenceParameters><c:ResourceURI>%s%s</c:ResourceURI><c:SelectorSet>"
		       "<c:Selector Name=\"%s\">", uri_base, cls, sel_name);
	sbuf_add_xml(b, sel_value);
	sbuf_add(b, "</c:Selector></c:SelectorSet></b:ReferenceParameters>");
}

void wm_pepr(struct sbuf *b, const char *name, const char *uri_base, const char *cls,
	     const char *sel_name, const char *sel_value)
{
	sbuf_printf(b, "<h:%s><b:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/"
		       "anonymous</b:Address>", name);
	wm_refparams(b, uri_base, cls, sel_name, sel_value);
	sbuf_printf(b, "</h:%s>", name);
}

int wm_bool(const char *s, bool *out)
{
	if (!strcmp(s, "true") || !strcmp(s, "1")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "false") || !strcmp(s, "0")) {
		*out = false;
		return 0;
	}
	return -1;
}

void wm_ref_selector(xmlNodePtr arg, char *out, size_t size)
{
	xmlNodePtr rp = xml_child(arg, NS_WSA, "ReferenceParameters");
	xmlNodePtr ss = rp ? xml_child(rp, NS_WSMAN, "SelectorSet") : NULL;
	xmlNodePtr sel = ss ? xml_child(ss, NS_WSMAN, "Selector") : NULL;

	if (sel)
		xml_text(sel, out, size);
	else if (rp)
		out[0] = '\0';
	else
		xml_text(arg, out, size);
}

int wm_parse_handle(const char *id, const char *prefix, uint32_t *handle)
{
	size_t n = strlen(prefix);
	long long v;

	if (strncmp(id, prefix, n) != 0 || sim_parse_ll(id + n, 0, 0xffffffffLL, &v) != 0)
		return -1;
	*handle = (uint32_t)v;
	return 0;
}



static int r_general(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	if (idx)
		return -1;
	sim_strlcpy(key, "Intel(r) AMT: General Settings", ks);
	wm_ps(b, "ElementName", "Intel(r) AMT: General Settings");
	wm_ps(b, "InstanceID", key);
	wm_pb(b, "NetworkInterfaceEnabled", true);
	wm_ps(b, "DigestRealm", d->realm);
	wm_pi(b, "IdleWakeTimeout", 65535);
	wm_ps(b, "HostName", d->host_name);
	wm_ps(b, "DomainName", d->domain_name);
	wm_pb(b, "PingResponseEnabled", d->ping_enabled);
	wm_pb(b, "WsmanOnlyMode", !device_has_legacy_soap(d));
	wm_pi(b, "PreferredAddressFamily", 0);
	wm_pi(b, "DHCPv6ConfigurationTimeout", 0);
	wm_pb(b, "DDNSUpdateEnabled", false);
	wm_pb(b, "DDNSUpdateByDHCPServerEnabled", true);
	wm_pb(b, "SharedFQDN", true);
	wm_pi(b, "DDNSTTL", 900);
	wm_pi(b, "AMTNetworkEnabled", 1);
	wm_pb(b, "RmcpPingResponseEnabled", d->rmcp_ping_enabled);
	wm_pi(b, "DDNSPeriodicUpdateInterval", 1440);
	wm_pi(b, "PresenceNotificationInterval", 0);
	wm_pi(b, "PrivacyLevel", 0);
	wm_pi(b, "PowerSource", 0);
	wm_pb(b, "ThunderboltDockEnabled", false);
	return 0;
}

static int p_general(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
		     struct http_response *r)
{
	char host[128], dom[256], v[16];
	xmlNodePtr n;

	n = xml_child(inst, NULL, "HostName");
	xml_text(n, host, sizeof(host));
	xml_text(xml_child(inst, NULL, "DomainName"), dom, sizeof(dom));
	if ((n && !setup_valid_dns_name(host, 63)) || !setup_valid_dns_name(dom, 191)) {
		wm_fault_schema(r, w, "HostName/DomainName invalid");
		return -1;
	}
	if (n && strcmp(host, d->host_name)) {
		device_audit(d, "AMT_GeneralSettings.HostName: \"%s\" -> \"%s\"", d->host_name, host);
		sim_strlcpy(d->host_name, host, sizeof(d->host_name));
	}
	if (xml_child(inst, NULL, "DomainName") && strcmp(dom, d->domain_name)) {
		device_audit(d, "AMT_GeneralSettings.DomainName: \"%s\" -> \"%s\"", d->domain_name, dom);
		sim_strlcpy(d->domain_name, dom, sizeof(d->domain_name));
	}
	if ((n = xml_child(inst, NULL, "PingResponseEnabled"))) {
		xml_text(n, v, sizeof(v));
		d->ping_enabled = !strcmp(v, "true");
	}
	if ((n = xml_child(inst, NULL, "RmcpPingResponseEnabled"))) {
		xml_text(n, v, sizeof(v));
		d->rmcp_ping_enabled = !strcmp(v, "true");
	}
	d->dirty = true;
	return 0;
}

static int r_swid(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	char build[16], sku[16];
	struct {
		const char *id;
		const char *v;
	} e[] = {
		{"Flash", d->version},      {"Netstack", d->version},  {"AMTApps", d->version},
		{"AMT", d->version},        {"Sku", sku},              {"VendorID", "8086"},
		{"Build Number", build},    {"Recovery Version", d->version},
		{"Recovery Build Num", build}, {"Legacy Mode", "False"},
		{"AMT FW Core Version", d->version},
	};

	snprintf(build, sizeof(build), "%d", d->ver_build);
	snprintf(sku, sizeof(sku), "%d", 16392);
	if (idx < 0 || idx >= (int)(sizeof(e) / sizeof(e[0])))
		return -1;
	sim_strlcpy(key, e[idx].id, ks);
	wm_ps(b, "InstanceID", e[idx].id);
	wm_pb(b, "IsEntity", true);
	wm_ps(b, "VersionString", e[idx].v);
	return 0;
}

static int r_setup(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	if (idx)
		return -1;
	sim_strlcpy(key, "Intel(r) AMT Setup and Configuration Service", ks);
	wm_ps(b, "CreationClassName", "AMT_SetupAndConfigurationService");
	wm_ps(b, "ElementName", key);
	wm_pi(b, "EnabledState", 5);
	wm_ps(b, "Name", key);
	wm_pi(b, "PasswordModel", 1);
	/* ProvisioningMode: 1 ACM, 4 CCM (7.0+); before 7.0 every mode reports 1 (Enterprise). */
	wm_pi(b, "ProvisioningMode", d->control_mode == DEV_CM_CCM ? 4 : 1);
	/* The OTP is readable only while in provisioning (AMT-PROTOCOL.md §3). */
	if (d->prov_state == DEV_IN && d->otp[0]) {
		char otp[40];
		char *b64;

		/* Fault injection: the firmware reports an OTP the agent never registered. */
		snprintf(otp, sizeof(otp), "%s%s", d->faults.wrong_otp ? "X" : "", d->otp);
		b64 = sim_b64_encode((const unsigned char *)otp, strlen(otp));

		wm_ps(b, "ProvisioningServerOTP", b64 ? b64 : "");
		free(b64);
	}
	wm_pi(b, "ProvisioningState", d->prov_state);
	wm_pi(b, "RequestedState", 12);
	wm_ps(b, "SystemCreationClassName", "CIM_ComputerSystem");
	wm_ps(b, "SystemName", "Intel(r) AMT");
	wm_pb(b, "ZeroTouchConfigurationEnabled", true);
	if (d->config_server_fqdn[0])
		wm_ps(b, "ConfigurationServerFQDN", d->config_server_fqdn);
	if (d->dhcp_domain[0])
		wm_ps(b, "DhcpDNSSuffix", d->dhcp_domain);
	if (d->pki_dns_suffix[0])
		wm_ps(b, "TrustedDNSSuffix", d->pki_dns_suffix);
	return 0;
}

void wm_arg(xmlNodePtr input, const char *name, char *out, size_t size)
{
	xml_text(xml_child(input, NULL, name), out, size);
}

static int m_commit(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		    struct http_response *r)
{
	int rv = setup_commit(d);

	/* Fault: the commit is applied now, its answer comes late, so a client killed in
	 * between never learns that the device committed (R-PROV-13 tests). */
	if (rv == PT_SUCCESS && d->faults.commit_latency_ms) {
		device_audit(d, "CommitChanges: fault injection, answer delayed %u ms",
			     d->faults.commit_latency_ms);
		r->delay_ms += d->faults.commit_latency_ms;
	}
	return rv;
}

static int m_set_mebx(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		      struct http_response *r)
{
	char pw[64];

	wm_arg(in, "Password", pw, sizeof(pw));
	return setup_set_mebx(d, pw);
}

static int m_unprovision(struct device *d, xmlNodePtr in, const struct wreq *w,
			 struct sbuf *out, struct http_response *r)
{
	char mode[16];
	long long m;

	wm_arg(in, "ProvisioningMode", mode, sizeof(mode));
	if (sim_parse_ll(mode, 0, 4, &m) != 0)
		return 36; /* INVALID_PARAMETER */
	device_unprovision(d);
	return 0;
}

static int m_get_uuid(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		      struct http_response *r)
{
	unsigned char raw[16];
	char hex[33];
	int j = 0;
	char *b64;

	for (const char *p = d->uuid; *p && j < 32; p++)
		if (*p != '-')
			hex[j++] = *p;
	hex[j] = '\0';
	if (sim_unhex(hex, raw, sizeof(raw)) != 16)
		return 1;
	b64 = sim_b64_encode(raw, sizeof(raw));
	wm_ps(out, "UUID", b64 ? b64 : "");
	free(b64);
	return 0;
}

static const struct method setup_methods[] = {
	{"CommitChanges", m_commit},
	{"SetMEBxPassword", m_set_mebx},
	{"Unprovision", m_unprovision},
	{"GetUuid", m_get_uuid},
	{NULL, NULL},
};

static int r_auth(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	if (idx)
		return -1;
	sim_strlcpy(key, "Intel(r) AMT Authorization Service", ks);
	wm_pb(b, "AllowHttpQopAuthOnly", true);
	wm_ps(b, "CreationClassName", "AMT_AuthorizationService");
	wm_ps(b, "ElementName", key);
	wm_pi(b, "EnabledState", 5);
	wm_ps(b, "Name", key);
	wm_pi(b, "RequestedState", 12);
	wm_ps(b, "SystemCreationClassName", "CIM_ComputerSystem");
	wm_ps(b, "SystemName", "Intel(r) AMT");
	return 0;
}

/* DigestPassword: base64 of the raw MD5 (RPS, MeshCommander) or 32 hex (MeshCentral). */
static int digest_pw_to_ha1(const char *in, char ha1[33])
{
	unsigned char *raw = NULL, bin[16];
	size_t n = 0;

	if (strlen(in) == 32 && sim_unhex(in, bin, sizeof(bin)) == 16) {
		sim_hex(bin, 16, ha1, false);
		return 0;
	}
	if (sim_b64_decode(in, &raw, &n) != 0)
		return -1;
	if (n != 16) {
		free(raw);
		return -1;
	}
	sim_hex(raw, 16, ha1, false);
	free(raw);
	return 0;
}

static int m_set_admin(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		       struct http_response *r)
{
	char user[64], pw[128], ha1[33];

	wm_arg(in, "Username", user, sizeof(user));
	wm_arg(in, "DigestPassword", pw, sizeof(pw));
	if (!setup_valid_username(user))
		return 12; /* INVALID_NAME */
	if (digest_pw_to_ha1(pw, ha1) != 0)
		return 2054;
	return setup_set_admin(d, user, ha1, "SetAdminAclEntryEx");
}

static int m_get_admin(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		       struct http_response *r)
{
	wm_ps(out, "Username", d->admin_user);
	return 0;
}

static int m_add_user(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		      struct http_response *r)
{
	char user[64], pw[128], sid[64], acc[16], v[16];
	struct dev_user *u;
	long long access = 2, realm;

	wm_arg(in, "DigestUsername", user, sizeof(user));
	wm_arg(in, "DigestPassword", pw, sizeof(pw));
	wm_arg(in, "KerberosUserSid", sid, sizeof(sid));
	wm_arg(in, "AccessPermission", acc, sizeof(acc));
	if (!user[0] && !sid[0])
		return 36;
	if (user[0] && !setup_valid_username(user))
		return 12;
	if (acc[0] && sim_parse_ll(acc, 0, 2, &access) != 0)
		return 36;
	for (int i = 0; i < d->n_users; i++)
		if (user[0] && !strcmp(d->users[i].username, user))
			return 2058; /* DUPLICATE */
	if (d->n_users >= DEV_MAX_USERS)
		return 23; /* MAX_LIMIT_REACHED */
	u = &d->users[d->n_users];
	memset(u, 0, sizeof(*u));
	if (user[0] && digest_pw_to_ha1(pw, u->ha1) != 0)
		return 2054;
	if (!device_flash_write(d))
		return 38;
	sim_strlcpy(u->username, user, sizeof(u->username));
	sim_strlcpy(u->kerberos_sid, sid, sizeof(u->kerberos_sid));
	u->access = (int)access;
	/* Realms arrive repeated (<h:Realms>n</h:Realms>) or nested (<h:RealmValue>). */
	for (xmlNodePtr c = in->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "Realms"))
			continue;
		xmlNodePtr rv = xml_child(c, NULL, "RealmValue");

		for (xmlNodePtr e = rv ? rv : c; e; e = rv ? e->next : NULL) {
			if (e->type != XML_ELEMENT_NODE)
				continue;
			xml_text(e, v, sizeof(v));
			if (sim_parse_ll(v, 2, 31, &realm) != 0)
				return 2055; /* INVALID_REALM */
			u->realms |= 1u << realm;
		}
	}
	u->enabled = true;
	u->handle = d->next_handle++;
	d->n_users++;
	device_audit(d, "AddUserAclEntryEx: \"%s\" handle %u", user[0] ? user : sid, u->handle);
	wm_pi(out, "Handle", u->handle);
	return 0;
}

static int m_enum_users(struct device *d, xmlNodePtr in, const struct wreq *w,
			struct sbuf *out, struct http_response *r)
{
	wm_pi(out, "TotalCount", d->n_users);
	wm_pi(out, "HandlesCount", d->n_users);
	for (int i = 0; i < d->n_users; i++)
		wm_pi(out, "Handles", d->users[i].handle);
	return 0;
}

static int m_remove_user(struct device *d, xmlNodePtr in, const struct wreq *w,
			 struct sbuf *out, struct http_response *r)
{
	char h[16];
	long long handle;

	wm_arg(in, "Handle", h, sizeof(h));
	if (sim_parse_ll(h, 0, 0xffffffffLL, &handle) != 0)
		return 36;
	for (int i = 0; i < d->n_users; i++) {
		if (d->users[i].handle != (uint32_t)handle)
			continue;
		device_audit(d, "RemoveUserAclEntry: handle %u", d->users[i].handle);
		d->users[i] = d->users[--d->n_users];
		return 0;
	}
	return 2053; /* INVALID_HANDLE */
}

static const struct method auth_methods[] = {
	{"SetAdminAclEntryEx", m_set_admin},
	{"GetAdminAclEntry", m_get_admin},
	{"AddUserAclEntryEx", m_add_user},
	{"EnumerateUserAclEntries", m_enum_users},
	{"RemoveUserAclEntry", m_remove_user},
	{NULL, NULL},
};

static int r_hash(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	struct dev_root_hash *h;
	char hex[97], id[64];
	size_t len;

	if (idx < 0 || idx >= d->n_hashes)
		return -1;
	h = &d->hashes[idx];
	len = h->algo == DEV_HASH_SHA1 ? 20 : h->algo == DEV_HASH_SHA384 ? 48 : 32;
	sim_hex(h->hash, len, hex, true);
	snprintf(id, sizeof(id), "Intel(r) AMT Certificate Hash: %d", idx);
	sim_strlcpy(key, id, ks);
	wm_ps(b, "Description", h->name);
	wm_ps(b, "ElementName", h->name);
	wm_pb(b, "Enabled", h->enabled);
	wm_ps(b, "HashData", hex);
	/* HashType: CIM values 1 SHA1, 2 SHA256 (? not confirmed), 3 SHA384. */
	wm_pi(b, "HashType", h->algo);
	wm_ps(b, "InstanceID", id);
	wm_pb(b, "IsDefault", h->is_default);
	return 0;
}

static int r_ethernet(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	const struct dev_port *p;
	char id[64];

	if (idx < 0 || idx > 1)
		return -1;
	p = idx ? &d->wireless : &d->wired;
	snprintf(id, sizeof(id), "Intel(r) AMT Ethernet Port Settings %d", idx);
	sim_strlcpy(key, id, ks);
	wm_pb(b, "DHCPEnabled", p->dhcp);
	if (!p->dhcp && p->ip[0]) {
		wm_ps(b, "DefaultGateway", p->gateway);
	}
	wm_ps(b, "ElementName", "Intel(r) AMT Ethernet Port Settings");
	wm_ps(b, "IPAddress", p->ip);
	wm_ps(b, "InstanceID", id);
	wm_pb(b, "IpSyncEnabled", p->ip_sync);
	wm_pb(b, "LinkIsUp", p->link_up);
	wm_pi(b, "LinkPolicy", 1);
	wm_pi(b, "LinkPolicy", 14);
	wm_pi(b, "LinkPolicy", 16);
	wm_ps(b, "MACAddress", p->mac);
	wm_pi(b, "PhysicalConnectionType", idx ? 3 : 0);
	if (!p->dhcp) {
		wm_ps(b, "PrimaryDNS", p->dns1);
		wm_ps(b, "SecondaryDNS", p->dns2);
		wm_ps(b, "SubnetMask", p->mask);
	}
	wm_pb(b, "SharedDynamicIP", true);
	wm_pb(b, "SharedMAC", true);
	wm_pb(b, "SharedStaticIp", p->shared_static_ip);
	return 0;
}

static const struct wclass classes[] = {
	{"AMT_GeneralSettings", AMT_URI, "InstanceID",
	 r_general, p_general, NULL, NULL, NULL, KEY_EXACT},
	{"CIM_SoftwareIdentity", CIM_URI, "InstanceID",
	 r_swid, NULL, NULL, NULL, NULL, KEY_EXACT},
	{"AMT_SetupAndConfigurationService", AMT_URI, "Name",
	 r_setup, NULL, setup_methods, NULL, NULL, KEY_EXACT},
	{"AMT_AuthorizationService", AMT_URI, "Name",
	 r_auth, NULL, auth_methods, NULL, NULL, KEY_EXACT},
	{"AMT_ProvisioningCertificateHash", AMT_URI, "InstanceID",
	 r_hash, NULL, NULL, NULL, NULL, KEY_EXACT},
	{"AMT_EthernetPortSettings", AMT_URI, "InstanceID",
	 r_ethernet, p_ethernet, NULL, NULL, NULL, KEY_EXACT},
	{"AMT_TLSSettingData", AMT_URI, "InstanceID",
	 r_tls, p_tls, NULL, NULL, NULL, KEY_EXACT},
	{"AMT_PublicKeyCertificate", AMT_URI, "InstanceID",
	 r_pubcert, NULL, NULL, NULL, d_pubcert, KEY_EXACT},
	{"AMT_PublicPrivateKeyPair", AMT_URI, "InstanceID",
	 r_keypair, NULL, NULL, NULL, d_keypair, KEY_EXACT},
	{"AMT_PublicKeyManagementService", AMT_URI, "Name",
	 r_pkms, NULL, pkms_methods, NULL, NULL, KEY_EXACT},
	{"AMT_TLSCredentialContext", AMT_URI, "ElementInContext",
	 r_tlsctx, NULL, NULL, c_tlsctx, d_tlsctx, KEY_ASSOC},
	{"AMT_TimeSynchronizationService", AMT_URI, "Name",
	 r_timesync, NULL, timesync_methods, NULL, NULL, KEY_EXACT},
	{"AMT_KerberosSettingData", AMT_URI, "InstanceID",
	 r_kerberos, p_kerberos, kerberos_methods, NULL, NULL, KEY_EXACT},
	{"AMT_RedirectionService", AMT_URI, "Name",
	 r_redir, p_redir, redir_methods, NULL, NULL, KEY_EXACT},
	{"AMT_WebUIService", AMT_URI, "Name",
	 r_webui, NULL, webui_methods, NULL, NULL, KEY_EXACT},
	{"AMT_SystemPowerScheme", AMT_URI, "InstanceID",
	 r_power, NULL, power_methods, NULL, NULL, KEY_EXACT},
	{"IPS_HostBasedSetupService", IPS_URI, "Name",
	 r_hbs, NULL, hbs_methods, NULL, NULL, KEY_EXACT},
	{"CIM_WiFiPort", CIM_URI, "DeviceID",
	 r_wifiport, NULL, wifiport_methods, NULL, NULL, KEY_EXACT},
	{"CIM_WiFiEndpointSettings", CIM_URI, "InstanceID",
	 r_wifiset, NULL, NULL, NULL, d_wifiset, KEY_EXACT},
	{"AMT_WiFiPortConfigurationService", AMT_URI, "Name",
	 r_wifisvc, p_wifisvc, wifisvc_methods, NULL, NULL, KEY_EXACT},
	{"AMT_8021XProfile", AMT_URI, "InstanceID",
	 r_8021xprof, p_8021xprof, NULL, NULL, NULL, KEY_EXACT},
	{"IPS_IEEE8021xSettings", IPS_URI, "InstanceID",
	 r_ips8021x, p_ips8021x, ips8021x_methods, NULL, NULL, KEY_EXACT},
	/* The wired profile's certificate links made by an AMT_8021XProfile Put. */
	{"AMT_8021xCredentialContext", AMT_URI, "ElementInContext",
	 r_8021xctx, NULL, NULL, NULL, NULL, KEY_ASSOC},
	{"CIM_CredentialContext", CIM_URI, "ElementInContext",
	 r_credctx, NULL, NULL, NULL, NULL, KEY_ASSOC},
};

#define N_CLASSES ((int)(sizeof(classes) / sizeof(classes[0])))

/* What older firmware does not have (docs/amtsim.md, "Version rules"): a class (method
 * NULL) or one method of a class, from release since (major * 100 + minor) on. */
static const struct {
	const char *cls, *method;
	int since;
} version_rules[] = {
	/* Intel's class reference gives IPS_IEEE8021xSettings Version=8.0.0: no release before
	 * 8.0 has it (AMT_8021XProfile is listed from 3.0). */
	{"IPS_IEEE8021xSettings", NULL, 800},
	/* Keys generated inside AMT. */
	{"AMT_PublicKeyManagementService", "GenerateKeyPair", 602},
	{"AMT_PublicKeyManagementService", "GeneratePKCS10RequestEx", 602},
};

/* Whether @p d's release has class @p ci (@p method NULL) or its method @p method. */
static bool release_has(const struct device *d, int ci, const char *method)
{
	for (size_t i = 0; i < sizeof(version_rules) / sizeof(version_rules[0]); i++)
		if (!strcmp(version_rules[i].cls, classes[ci].name) &&
		    (method ? version_rules[i].method && !strcmp(version_rules[i].method, method)
			    : !version_rules[i].method) &&
		    device_version_code(d) < version_rules[i].since)
			return false;
	return true;
}

static int class_index(const char *uri)
{
	for (int i = 0; i < N_CLASSES; i++) {
		size_t bl = strlen(classes[i].uri_base);

		if (!strncmp(uri, classes[i].uri_base, bl) && !strcmp(uri + bl, classes[i].name))
			return i;
	}
	return -1;
}

/* @p bare: prefix h is declared on the Envelope (a Pull's items, as the firmware sends
 * them); otherwise the instance declares it (a Get, a Put's answer). */
static void render_instance_as(struct device *d, int ci, int idx, struct sbuf *out, char *key,
			       size_t ks, int *rc, int bare)
{
	const struct wclass *c = &classes[ci];
	struct sbuf props = {0};

	*rc = c->render(d, idx, &props, key, ks);
	if (*rc == 0 && bare)
		sbuf_printf(out, "<h:%s>", c->name);
	else if (*rc == 0)
		sbuf_printf(out, "<h:%s xmlns:h=\"%s%s\">", c->name, c->uri_base, c->name);
	if (*rc == 0) {
		sbuf_addn(out, props.data ? props.data : "", props.len);
		sbuf_printf(out, "</h:%s>", c->name);
	}
	sbuf_free(&props);
}

static void render_instance(struct device *d, int ci, int idx, struct sbuf *out, char *key,
			    size_t ks, int *rc)
{
	render_instance_as(d, ci, idx, out, key, ks, rc, 0);
}

/* Finds the instance a request's selectors name. @return index or -1. */
static int select_instance(struct device *d, int ci, const struct wreq *w)
{
	char key[256];
	const char *want = wm_sel(w, classes[ci].key);

	if (w->n_sel && !want && classes[ci].match == KEY_EXACT)
		return -1;
	for (int idx = 0;; idx++) {
		struct sbuf tmp = {0};
		int rc;

		render_instance(d, ci, idx, &tmp, key, sizeof(key), &rc);
		sbuf_free(&tmp);
		if (rc)
			return -1;
		/* Singletons (and the first instance) answer a Get without selectors. */
		if (!w->n_sel)
			return idx;
		if (classes[ci].match == KEY_EXACT && !strcmp(want, key))
			return idx;
		for (int i = 0; classes[ci].match == KEY_ASSOC && i < w->n_sel; i++)
			if (strstr(w->sel[i].value, key))
				return idx;
	}
}

/* Enumeration contexts are stateless: class and position are encoded in the context, so
 * thousands of devices never hold enumeration state. */
static void make_context(char *out, size_t size, int ci, int pos)
{
	snprintf(out, size, "%08X-0000-0000-0000-%012X", (unsigned)ci + 1, (unsigned)pos);
}

static int parse_context(const char *s, int *ci, int *pos)
{
	unsigned a, b;
	char tail;

	if (sscanf(s, "%8X-0000-0000-0000-%12X%c", &a, &b, &tail) != 2 || a < 1 ||
	    (int)a > N_CLASSES || b > 100000)
		return -1;
	*ci = (int)a - 1;
	*pos = (int)b;
	return 0;
}

static void do_get(struct device *d, int ci, const struct wreq *w, struct http_response *r)
{
	char key[256];
	int idx = select_instance(d, ci, w), rc;

	if (idx < 0) {
		wm_fault_selectors(r, w);
		return;
	}
	env_open(&r->body, w, NS_WXF "/GetResponse");
	render_instance(d, ci, idx, &r->body, key, sizeof(key), &rc);
	env_close(&r->body);
	r->status = 200;
}

static void do_put(struct device *d, int ci, const struct wreq *w, struct http_response *r)
{
	char key[256];
	int idx = select_instance(d, ci, w), rc;
	xmlNodePtr inst = w->input;

	if (!classes[ci].put) {
		wm_fault_action(r, w);
		return;
	}
	if (idx < 0) {
		wm_fault_selectors(r, w);
		return;
	}
	if (!inst || strcmp((const char *)inst->name, classes[ci].name) != 0) {
		wm_fault_schema(r, w, "Put body must be the class instance");
		return;
	}
	if (classes[ci].put(d, idx, inst, w, r) != 0)
		return;
	env_open(&r->body, w, NS_WXF "/PutResponse");
	render_instance(d, ci, idx, &r->body, key, sizeof(key), &rc);
	env_close(&r->body);
	r->status = 200;
}

static void do_create(struct device *d, int ci, const struct wreq *w, struct http_response *r)
{
	struct sbuf epr = {0};

	if (!classes[ci].create) {
		wm_fault_action(r, w);
		return;
	}
	if (!w->input || strcmp((const char *)w->input->name, classes[ci].name) != 0) {
		wm_fault_schema(r, w, "Create body must be the class instance");
		return;
	}
	if (classes[ci].create(d, w->input, w, &epr, r) != 0) {
		sbuf_free(&epr);
		return;
	}
	env_open(&r->body, w, NS_WXF "/CreateResponse");
	sbuf_add(&r->body, "<e:ResourceCreated><b:Address>http://schemas.xmlsoap.org/ws/2004/08/"
			   "addressing/role/anonymous</b:Address>");
	sbuf_addn(&r->body, epr.data ? epr.data : "", epr.len);
	sbuf_add(&r->body, "</e:ResourceCreated>");
	env_close(&r->body);
	sbuf_free(&epr);
	d->dirty = true;
	r->status = 200;
}

static void do_delete(struct device *d, int ci, const struct wreq *w, struct http_response *r)
{
	int idx;

	if (!classes[ci].del) {
		wm_fault_action(r, w);
		return;
	}
	/* Delete names its instance: no selector is not "the first one". */
	idx = w->n_sel ? select_instance(d, ci, w) : -1;
	if (idx < 0) {
		wm_fault_selectors(r, w);
		return;
	}
	if (classes[ci].del(d, idx, w, r) != 0)
		return;
	env_open(&r->body, w, NS_WXF "/DeleteResponse");
	env_close(&r->body);
	d->dirty = true;
	r->status = 200;
}

static void do_enumerate(struct device *d, int ci, const struct wreq *w, struct http_response *r)
{
	char ctx[64];

	make_context(ctx, sizeof(ctx), ci, 0);
	env_open(&r->body, w, NS_WSEN "/EnumerateResponse");
	sbuf_printf(&r->body, "<d:EnumerateResponse><d:EnumerationContext>%s</d:EnumerationContext>"
			      "</d:EnumerateResponse>", ctx);
	env_close(&r->body);
	r->status = 200;
}

static void do_pull(struct device *d, int ci_req, const struct wreq *w, struct http_response *r)
{
	char text[128], key[256], next[64];
	xmlNodePtr pull = w->input;
	int ci, pos, rc = 0, n = 0;
	long long max = 1;
	struct sbuf items = {0};

	xml_text(xml_child(pull, NS_WSEN, "EnumerationContext"), text, sizeof(text));
	if (parse_context(text, &ci, &pos) != 0 || ci != ci_req) {
		wm_fault(r, w, 400, true, WSMAN_FAULT, NS_WSEN, "InvalidEnumerationContext",
		      "The supplied enumeration context is invalid.", NULL);
		return;
	}
	xml_text(xml_child(pull, NS_WSEN, "MaxElements"), text, sizeof(text));
	if (text[0] && sim_parse_ll(text, 1, 100000, &max) != 0)
		max = 1;
	while (n < max) {
		render_instance_as(d, ci, pos, &items, key, sizeof(key), &rc, 1);
		if (rc)
			break;
		pos++;
		n++;
	}
	if (rc == 0) { /* maybe more: check whether one more instance exists */
		struct sbuf tmp = {0};

		render_instance(d, ci, pos, &tmp, key, sizeof(key), &rc);
		sbuf_free(&tmp);
	}
	{
		char ns[512];

		/* One class per enumeration: its namespace once, on the Envelope. */
		snprintf(ns, sizeof(ns), "%s%s", classes[ci].uri_base, classes[ci].name);
		env_open_ns(&r->body, w, NS_WSEN "/PullResponse", ns);
	}
	sbuf_add(&r->body, "<d:PullResponse>");
	if (rc == 0) {
		make_context(next, sizeof(next), ci, pos);
		sbuf_printf(&r->body, "<d:EnumerationContext>%s</d:EnumerationContext>", next);
	}
	sbuf_add(&r->body, "<d:Items>");
	sbuf_addn(&r->body, items.data ? items.data : "", items.len);
	sbuf_add(&r->body, "</d:Items>");
	if (rc != 0)
		sbuf_add(&r->body, "<d:EndOfSequence></d:EndOfSequence>");
	sbuf_add(&r->body, "</d:PullResponse>");
	env_close(&r->body);
	sbuf_free(&items);
	r->status = 200;
}

static void do_method(struct device *d, int ci, const char *mname, const struct wreq *w,
		      struct http_response *r)
{
	const struct wclass *c = &classes[ci];
	const struct method *m = NULL;
	char want[128], action[700];
	struct sbuf out = {0};
	int rv;

	for (const struct method *p = c->methods; p && p->name; p++)
		if (!strcmp(p->name, mname))
			m = p;
	if (!m || !release_has(d, ci, mname)) {
		/* A method this firmware release does not have. */
		wm_fault_action(r, w);
		return;
	}
	snprintf(want, sizeof(want), "%s_INPUT", mname);
	if (!w->input || strcmp((const char *)w->input->name, want) != 0) {
		wm_fault_schema(r, w, "method body must be the _INPUT element");
		return;
	}
	rv = m->fn(d, w->input, w, &out, r);
	if (rv < 0) {
		sbuf_free(&out);
		return;
	}
	snprintf(action, sizeof(action), "%s%s/%sResponse", c->uri_base, c->name, mname);
	env_open(&r->body, w, action);
	sbuf_printf(&r->body, "<h:%s_OUTPUT xmlns:h=\"%s%s\">", mname, c->uri_base, c->name);
	sbuf_addn(&r->body, out.data ? out.data : "", out.len);
	sbuf_printf(&r->body, "<h:ReturnValue>%d</h:ReturnValue></h:%s_OUTPUT>", rv, mname);
	env_close(&r->body);
	sbuf_free(&out);
	d->dirty = true;
	r->status = 200;
}

static void do_identify(struct device *d, struct http_response *r)
{
	struct sbuf *b = &r->body;

	sbuf_add(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a:Envelope xmlns:a=\"" NS_SOAP12
		    "\" xmlns:b=\"" NS_WSMID "\"><a:Header></a:Header><a:Body><b:IdentifyResponse>"
		    "<b:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</b:ProtocolVersion>"
		    "<b:ProductVendor>Intel Corporation</b:ProductVendor><b:ProductVersion>AMT ");
	sbuf_add_xml(b, d->version);
	sbuf_add(b, "</b:ProductVersion><b:DASHVersion>1.0.0</b:DASHVersion>"
		    "<b:SecurityProfiles><b:SecurityProfileName>"
		    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/digest"
		    "</b:SecurityProfileName></b:SecurityProfiles></b:IdentifyResponse></a:Body></a:Envelope>");
	r->status = 200;
}

static void parse_header(xmlNodePtr hdr, struct wreq *w)
{
	xmlNodePtr ss;

	xml_text(xml_child(hdr, NS_WSA, "Action"), w->action, sizeof(w->action));
	xml_text(xml_child(hdr, NS_WSMAN, "ResourceURI"), w->resource, sizeof(w->resource));
	xml_text(xml_child(hdr, NS_WSA, "MessageID"), w->message_id, sizeof(w->message_id));
	ss = xml_child(hdr, NS_WSMAN, "SelectorSet");
	for (xmlNodePtr s = ss ? ss->children : NULL; s && w->n_sel < MAX_SEL; s = s->next) {
		xmlChar *nm;

		if (s->type != XML_ELEMENT_NODE || strcmp((const char *)s->name, "Selector"))
			continue;
		nm = xmlGetProp(s, (const xmlChar *)"Name");
		if (!nm)
			continue;
		sim_strlcpy(w->sel[w->n_sel].name, (const char *)nm, sizeof(w->sel[0].name));
		xmlFree(nm);
		xml_text(s, w->sel[w->n_sel].value, sizeof(w->sel[0].value));
		w->n_sel++;
	}
}

void wsman_handle(struct device *d, const struct http_request *req, struct http_response *r)
{
	struct wreq w;
	xmlDocPtr doc;
	xmlNodePtr env, hdr;
	int ci;

	memset(&w, 0, sizeof(w));
	r->content_type = "application/soap+xml;charset=UTF-8";
	doc = xml_parse_untrusted(req->body, req->body_len);
	env = doc ? xmlDocGetRootElement(doc) : NULL;
	if (!env || strcmp((const char *)env->name, "Envelope") || !env->ns ||
	    strcmp((const char *)env->ns->href, NS_SOAP12)) {
		wm_fault(r, &w, 400, true, WSMAN_FAULT, NS_WSMAN, "SchemaValidationError",
		      "The request is not a well-formed SOAP 1.2 envelope (DTDs are refused).", NULL);
		goto out;
	}
	hdr = xml_child(env, NS_SOAP12, "Header");
	w.body = xml_child(env, NS_SOAP12, "Body");
	w.input = first_element(w.body);
	if (hdr)
		parse_header(hdr, &w);
	if (!w.action[0] && w.input && w.input->ns &&
	    !strcmp((const char *)w.input->ns->href, NS_WSMID) &&
	    !strcmp((const char *)w.input->name, "Identify")) {
		do_identify(d, r);
		goto out;
	}
	ci = class_index(w.resource);
	if (ci < 0 || !release_has(d, ci, NULL)) {
		/* Unknown, or a class this firmware release does not have. */
		fault_dest_unreachable(r, &w);
		goto out;
	}
	if (!strcmp(w.action, NS_WXF "/Get"))
		do_get(d, ci, &w, r);
	else if (!strcmp(w.action, NS_WXF "/Put"))
		do_put(d, ci, &w, r);
	else if (!strcmp(w.action, NS_WXF "/Create"))
		do_create(d, ci, &w, r);
	else if (!strcmp(w.action, NS_WXF "/Delete"))
		do_delete(d, ci, &w, r);
	else if (!strcmp(w.action, NS_WSEN "/Enumerate"))
		do_enumerate(d, ci, &w, r);
	else if (!strcmp(w.action, NS_WSEN "/Pull"))
		do_pull(d, ci, &w, r);
	else if (!strcmp(w.action, NS_WSEN "/Release")) {
		env_open(&r->body, &w, NS_WSEN "/ReleaseResponse");
		env_close(&r->body);
		r->status = 200;
	} else {
		size_t n = strlen(w.resource);

		if (!strncmp(w.action, w.resource, n) && w.action[n] == '/' && w.action[n + 1])
			do_method(d, ci, w.action + n + 1, &w, r);
		else
			wm_fault_action(r, &w);
	}
out:
	xmlFreeDoc(doc);
}
