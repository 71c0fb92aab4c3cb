/* SPDX-License-Identifier: Apache-2.0 */
/*
 * WS-Management (SOAP 1.2) as AMT answers it: WS-Transfer Get/Put, WS-Enumeration
 * Enumerate/Pull/Release, Identify, method invocation, and AMT-shaped faults.
 */
#ifndef AMTSIM_WSMAN_H
#define AMTSIM_WSMAN_H

#include <stddef.h>

#include <libxml/tree.h>

#include "device.h"
#include "http.h"

#define NS_SOAP12 "http://www.w3.org/2003/05/soap-envelope"
#define NS_SOAP11 "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_WSA "http://schemas.xmlsoap.org/ws/2004/08/addressing"
#define NS_WSMAN "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
#define NS_WSEN "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
#define NS_WXF "http://schemas.xmlsoap.org/ws/2004/09/transfer"
#define NS_WSMID "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
#define AMT_URI "http://intel.com/wbem/wscim/1/amt-schema/1/"
#define CIM_URI "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
#define IPS_URI "http://intel.com/wbem/wscim/1/ips-schema/1/"

/**
 * Parses untrusted XML safely: no network, no entity substitution, no DTD at all (a
 * document with a DOCTYPE is refused), size-limited. Caller frees with xmlFreeDoc.
 */
xmlDocPtr xml_parse_untrusted(const char *buf, size_t len);

/** First element child of @p n with local name @p name in namespace @p ns (NULL = any). */
xmlNodePtr xml_child(xmlNodePtr n, const char *ns, const char *name);

/** Text content of @p n (trimmed) into @p out. */
void xml_text(xmlNodePtr n, char *out, size_t size);

/** The fleet's key pool, from which GenerateKeyPair draws keys. */
struct tls_keypool;
void wsman_set_keypool(struct tls_keypool *pool);

/** Answers POST /wsman. */
void wsman_handle(struct device *d, const struct http_request *req, struct http_response *resp);

#endif
