/* SPDX-License-Identifier: Apache-2.0 */
#include "soap_legacy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "setup_ops.h"
#include "simutil.h"
#include "soap_legacy_int.h"
#include "wsman.h"

#define NS_BASE "http://schemas.intel.com/platform/client/"

void lout_str(struct lcall *c, const char *name, const char *v)
{
	sbuf_printf(c->out, "<%s:%s>", c->pfx, name);
	sbuf_add_xml(c->out, v);
	sbuf_printf(c->out, "</%s:%s>", c->pfx, name);
}

void lout_num(struct lcall *c, const char *name, unsigned long long v)
{
	sbuf_printf(c->out, "<%s:%s>%llu</%s:%s>", c->pfx, name, v, c->pfx, name);
}

void larg(struct lcall *c, const char *name, char *out, size_t size)
{
	xml_text(xml_child(c->in, NULL, name), out, size);
}

static unsigned long ipv4_num(const char *s)
{
	struct in_addr a;

	return s[0] && inet_pton(AF_INET, s, &a) == 1 ? (unsigned long)ntohl(a.s_addr) : 0;
}

/* ---- read operations (what amttool and the first stage's checks read) ---- */

static long op_core_version(struct lcall *c)
{
	lout_str(c, "Version", c->d->version);
	return PT_SUCCESS;
}

static long op_prov_mode(struct lcall *c)
{
	lout_num(c, "ProvisioningMode", 1); /* enterprise */
	return PT_SUCCESS;
}

static long op_digest_realm(struct lcall *c)
{
	/* [recall] name from AMT-PROTOCOL.md §5.3 */
	lout_str(c, "DigestRealm", c->d->realm);
	return PT_SUCCESS;
}

static long op_admin_acl(struct lcall *c)
{
	lout_str(c, "Username", c->d->admin_user);
	return PT_SUCCESS;
}

static long op_enum_users(struct lcall *c)
{
	lout_num(c, "TotalCount", (unsigned)c->d->n_users);
	lout_num(c, "HandleCount", (unsigned)c->d->n_users);
	sbuf_printf(c->out, "<%s:Handles>", c->pfx);
	for (int i = 0; i < c->d->n_users; i++)
		lout_num(c, "Handle", c->d->users[i].handle);
	sbuf_printf(c->out, "</%s:Handles>", c->pfx);
	return PT_SUCCESS;
}

static long op_prov_state(struct lcall *c)
{
	lout_num(c, "ProvisioningState", (unsigned)c->d->prov_state);
	return PT_SUCCESS;
}

static long op_host_name(struct lcall *c)
{
	lout_str(c, "HostName", c->d->host_name);
	return PT_SUCCESS;
}

static long op_domain_name(struct lcall *c)
{
	lout_str(c, "DomainName", c->d->domain_name);
	return PT_SUCCESS;
}

static long op_enum_ifs(struct lcall *c)
{
	lout_num(c, "InterfaceHandles", 0);
	return PT_SUCCESS;
}

static long op_if_settings(struct lcall *c)
{
	const struct dev_port *w = &c->d->wired;
	char arg[64];

	larg(c, "InterfaceHandle", arg, sizeof(arg));
	if (strcmp(arg, "0") != 0)
		return PT_INVALID_HANDLE;
	sbuf_printf(c->out, "<%s:InterfaceDescriptor>", c->pfx);
	lout_str(c, "HardwareAddressDescription", "Intel(R) wired LAN");
	lout_str(c, "MACAddress", w->mac);
	lout_str(c, "InterfaceMode", "SHARED_MAC_ADDRESS");
	lout_num(c, "LinkPolicy", 31);
	lout_str(c, "DhcpEnabled", w->dhcp ? "true" : "false");
	sbuf_printf(c->out, "<%s:IPv4Parameters>", c->pfx);
	lout_num(c, "LocalAddress", ipv4_num(w->ip));
	lout_num(c, "SubnetMask", ipv4_num(w->mask));
	lout_num(c, "DefaultGatewayAddress", ipv4_num(w->gateway));
	lout_num(c, "PrimaryDnsAddress", ipv4_num(w->dns1));
	lout_num(c, "SecondaryDnsAddress", ipv4_num(w->dns2));
	sbuf_printf(c->out, "</%s:IPv4Parameters></%s:InterfaceDescriptor>", c->pfx, c->pfx);
	return PT_SUCCESS;
}

static long op_power_state(struct lcall *c)
{
	lout_num(c, "SystemPowerState", 0); /* S0 */
	return PT_SUCCESS;
}

static long op_rc_caps(struct lcall *c)
{
	lout_num(c, "IanaOemNumber", 343);
	lout_num(c, "OemDefinedCapabilities", 0x1f);
	lout_num(c, "SpecialCommandsSupported", 0x1f00);
	lout_num(c, "SystemCapabilitiesSupported", 0x0f);
	lout_num(c, "SystemFirmwareCapabilities", 0);
	return PT_SUCCESS;
}

static const struct lop sai_ops[] = {
	{"GetCoreVersion", op_core_version},
	{"GetProvisioningMode", op_prov_mode},
	{"GetDigestRealm", op_digest_realm},
	{"GetAdminAclEntry", op_admin_acl},
	{"EnumerateUserAclEntries", op_enum_users},
	{NULL, NULL},
};

static const struct lop inf_ops[] = {
	{"GetProvisioningState", op_prov_state},
	{"GetCoreVersion", op_core_version},
	{NULL, NULL},
};

static const struct lop net_ops[] = {
	{"GetHostName", op_host_name},
	{"GetDomainName", op_domain_name},
	{"EnumerateInterfaces", op_enum_ifs},
	{"GetInterfaceSettings", op_if_settings},
	{NULL, NULL},
};

static const struct lop rci_ops[] = {
	{"GetSystemPowerState", op_power_state},
	{"GetRemoteControlCapabilities", op_rc_caps},
	{NULL, NULL},
};

/* Service path, namespace suffix, gSOAP prefix (AMT-PROTOCOL.md §5.2), operation tables. */
static const struct lservice {
	const char *path;
	const char *ns_suffix;
	const char *pfx;
	const struct lop *ops[2];
} services[] = {
	{"/SecurityAdministrationService", "SecurityAdministration/2004/01", "sai",
	 {sai_ops, lsai_set_ops}},
	{"/NetworkAdministrationService", "NetworkAdministration/2004/01", "net",
	 {net_ops, lnet_set_ops}},
	{"/NetworkTimeService", "NetworkTime/2004/01", "tim", {ltim_ops, NULL}},
	{"/RemoteControlService", "RemoteControl/2004/01", "rci", {rci_ops, NULL}},
	{"/GeneralInfoService", "GeneralInfo/2004/01", "inf", {inf_ops, NULL}},
};

bool soap_legacy_path(const char *path)
{
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (!strcmp(path, services[i].path))
			return true;
	return false;
}

static lop_fn find_op(const struct lservice *svc, const char *name)
{
	for (int t = 0; t < 2; t++)
		for (const struct lop *o = svc->ops[t]; o && o->name; o++)
			if (!strcmp(o->name, name))
				return o->fn;
	return NULL;
}

static void soap11_fault(struct http_response *r, const char *code, const char *msg)
{
	r->status = 500;
	r->content_type = "text/xml; charset=utf-8";
	sbuf_add(&r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SOAP-ENV:Envelope "
			   "xmlns:SOAP-ENV=\"" NS_SOAP11 "\"><SOAP-ENV:Body><SOAP-ENV:Fault>"
			   "<faultcode>SOAP-ENV:");
	sbuf_add(&r->body, code);
	sbuf_add(&r->body, "</faultcode><faultstring>");
	sbuf_add_xml(&r->body, msg);
	sbuf_add(&r->body, "</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>");
}

void soap_legacy_handle(struct device *d, const struct http_request *req,
			struct http_response *r)
{
	const struct lservice *svc = NULL;
	xmlDocPtr doc;
	xmlNodePtr env, body, op;
	char ns[256];
	struct sbuf out = {0};
	struct lcall call;
	lop_fn fn;
	long st;

	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (!strcmp(req->path, services[i].path))
			svc = &services[i];
	if (!svc) {
		soap11_fault(r, "Client", "unknown service");
		return;
	}
	snprintf(ns, sizeof(ns), NS_BASE "%s", svc->ns_suffix);
	doc = xml_parse_untrusted(req->body, req->body_len);
	env = doc ? xmlDocGetRootElement(doc) : NULL;
	if (!env || strcmp((const char *)env->name, "Envelope") || !env->ns ||
	    strcmp((const char *)env->ns->href, NS_SOAP11)) {
		soap11_fault(r, "Client", "not a SOAP 1.1 envelope");
		goto out;
	}
	body = xml_child(env, NS_SOAP11, "Body");
	op = NULL;
	for (xmlNodePtr c = body ? body->children : NULL; c && !op; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			op = c;
	if (!op || !op->ns || strcmp((const char *)op->ns->href, ns) != 0) {
		soap11_fault(r, "Client", "operation not in the service namespace");
		goto out;
	}
	fn = find_op(svc, (const char *)op->name);
	if (!fn) {
		soap11_fault(r, "Client", "operation not implemented by amtsim");
		goto out;
	}
	call = (struct lcall){.d = d, .in = op, .out = &out, .pfx = svc->pfx};
	st = fn(&call);
	r->status = 200;
	r->content_type = "text/xml; charset=utf-8";
	sbuf_printf(&r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SOAP-ENV:Envelope "
			      "xmlns:SOAP-ENV=\"" NS_SOAP11 "\" xmlns:%s=\"%s\"><SOAP-ENV:Body>"
			      "<%s:%sResponse><%s:StatusCode>%ld</%s:StatusCode>",
		    svc->pfx, ns, svc->pfx, (const char *)op->name, svc->pfx, st, svc->pfx);
	sbuf_addn(&r->body, out.data ? out.data : "", out.len);
	sbuf_printf(&r->body, "</%s:%sResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>", svc->pfx,
		    (const char *)op->name);
out:
	sbuf_free(&out);
	xmlFreeDoc(doc);
}
