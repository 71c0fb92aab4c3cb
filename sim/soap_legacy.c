/* SPDX-License-Identifier: Apache-2.0 */
#include "soap_legacy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "simutil.h"
#include "wsman.h"

#define NS_BASE "http://schemas.intel.com/platform/client/"

/* PT_STATUS values used here (AMT-PROTOCOL.md §5.4). */
enum {
	PT_SUCCESS = 0x0,
	PT_INVALID_PARAMETER = 0x24,
	PT_INVALID_HANDLE = 0x805,
	PT_UNSUPPORTED = 0x812,
};

struct lservice {
	const char *path;
	const char *ns_suffix;
};

static const struct lservice services[] = {
	{"/SecurityAdministrationService", "SecurityAdministration/2004/01"},
	{"/NetworkAdministrationService", "NetworkAdministration/2004/01"},
	{"/RemoteControlService", "RemoteControl/2004/01"},
	{"/GeneralInfoService", "GeneralInfo/2004/01"},
};

bool soap_legacy_path(const char *path)
{
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (!strcmp(path, services[i].path))
			return true;
	return false;
}

static void el(struct sbuf *b, const char *name, const char *v)
{
	sbuf_printf(b, "<ns:%s>", name);
	sbuf_add_xml(b, v);
	sbuf_printf(b, "</ns:%s>", name);
}

static void eli(struct sbuf *b, const char *name, unsigned long long v)
{
	sbuf_printf(b, "<ns:%s>%llu</ns:%s>", name, v, name);
}

static unsigned long ipv4_num(const char *s)
{
	struct in_addr a;

	return s[0] && inet_pton(AF_INET, s, &a) == 1 ? (unsigned long)ntohl(a.s_addr) : 0;
}

/* Writes the out parameters after StatusCode; returns the PT_STATUS, or -1 if unknown. */
static long call(struct device *d, const char *svc, const char *op, xmlNodePtr in,
		 struct sbuf *o)
{
	char arg[64];

	if (!strcmp(svc, "/SecurityAdministrationService")) {
		if (!strcmp(op, "GetCoreVersion")) {
			el(o, "Version", d->version);
			return PT_SUCCESS;
		}
		if (!strcmp(op, "GetProvisioningMode")) {
			eli(o, "ProvisioningMode", 1);
			return PT_SUCCESS;
		}
		if (!strcmp(op, "GetDigestRealm")) { /* [recall] name from AMT-PROTOCOL.md §5.3 */
			el(o, "DigestRealm", d->realm);
			return PT_SUCCESS;
		}
		if (!strcmp(op, "GetAdminAclEntry")) {
			el(o, "Username", d->admin_user);
			return PT_SUCCESS;
		}
		if (!strcmp(op, "EnumerateUserAclEntries")) {
			eli(o, "TotalCount", (unsigned)d->n_users);
			eli(o, "HandleCount", (unsigned)d->n_users);
			sbuf_add(o, "<ns:Handles>");
			for (int i = 0; i < d->n_users; i++)
				eli(o, "Handle", d->users[i].handle);
			sbuf_add(o, "</ns:Handles>");
			return PT_SUCCESS;
		}
		return -1;
	}
	if (!strcmp(svc, "/GeneralInfoService")) {
		if (!strcmp(op, "GetProvisioningState")) {
			eli(o, "ProvisioningState", (unsigned)d->prov_state);
			return PT_SUCCESS;
		}
		if (!strcmp(op, "GetCoreVersion")) {
			el(o, "Version", d->version);
			return PT_SUCCESS;
		}
		return -1;
	}
	if (!strcmp(svc, "/NetworkAdministrationService")) {
		if (!strcmp(op, "GetHostName")) {
			el(o, "HostName", d->host_name);
			return PT_SUCCESS;
		}
		if (!strcmp(op, "GetDomainName")) {
			el(o, "DomainName", d->domain_name);
			return PT_SUCCESS;
		}
		if (!strcmp(op, "EnumerateInterfaces")) {
			eli(o, "InterfaceHandles", 0);
			return PT_SUCCESS;
		}
		if (!strcmp(op, "GetInterfaceSettings")) {
			xml_text(xml_child(in, NULL, "InterfaceHandle"), arg, sizeof(arg));
			if (strcmp(arg, "0") != 0)
				return PT_INVALID_HANDLE;
			sbuf_add(o, "<ns:InterfaceDescriptor>");
			el(o, "HardwareAddressDescription", "Intel(R) wired LAN");
			el(o, "MACAddress", d->wired.mac);
			el(o, "InterfaceMode", "SHARED_MAC_ADDRESS");
			eli(o, "LinkPolicy", 31);
			el(o, "DhcpEnabled", d->wired.dhcp ? "true" : "false");
			sbuf_add(o, "<ns:IPv4Parameters>");
			eli(o, "LocalAddress", ipv4_num(d->wired.ip));
			eli(o, "SubnetMask", ipv4_num(d->wired.mask));
			eli(o, "DefaultGatewayAddress", ipv4_num(d->wired.gateway));
			eli(o, "PrimaryDnsAddress", ipv4_num(d->wired.dns1));
			eli(o, "SecondaryDnsAddress", ipv4_num(d->wired.dns2));
			sbuf_add(o, "</ns:IPv4Parameters></ns:InterfaceDescriptor>");
			return PT_SUCCESS;
		}
		return -1;
	}
	if (!strcmp(svc, "/RemoteControlService")) {
		if (!strcmp(op, "GetSystemPowerState")) {
			eli(o, "SystemPowerState", 0); /* S0 */
			return PT_SUCCESS;
		}
		if (!strcmp(op, "GetRemoteControlCapabilities")) {
			eli(o, "IanaOemNumber", 343);
			eli(o, "OemDefinedCapabilities", 0x1f);
			eli(o, "SpecialCommandsSupported", 0x1f00);
			eli(o, "SystemCapabilitiesSupported", 0x0f);
			eli(o, "SystemFirmwareCapabilities", 0);
			return PT_SUCCESS;
		}
		return -1;
	}
	return -1;
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
	st = call(d, svc->path, (const char *)op->name, op, &out);
	if (st < 0) {
		soap11_fault(r, "Client", "operation not implemented by amtsim");
		goto out;
	}
	r->status = 200;
	r->content_type = "text/xml; charset=utf-8";
	sbuf_printf(&r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SOAP-ENV:Envelope "
			      "xmlns:SOAP-ENV=\"" NS_SOAP11 "\" xmlns:ns=\"%s\"><SOAP-ENV:Body>"
			      "<ns:%sResponse><ns:StatusCode>%ld</ns:StatusCode>",
		    ns, (const char *)op->name, st);
	sbuf_addn(&r->body, out.data ? out.data : "", out.len);
	sbuf_printf(&r->body, "</ns:%sResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>",
		    (const char *)op->name);
out:
	sbuf_free(&out);
	xmlFreeDoc(doc);
}
