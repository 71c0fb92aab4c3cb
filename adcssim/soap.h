/* SPDX-License-Identifier: Apache-2.0 */
/*
 * soap.h - SOAP 1.2 plumbing shared by the CEP, CES and WinRM endpoints: a string
 * builder with XML escaping, safe parsing (no DTD, no entities, no network), lookups by
 * namespace and local name, and the WS-Security UsernameToken.
 */
#ifndef ADCSSIM_SOAP_H
#define ADCSSIM_SOAP_H

#include <stdarg.h>
#include <stddef.h>

#include <libxml/tree.h>

#define NS_SOAP "http://www.w3.org/2003/05/soap-envelope"
#define NS_WSA "http://www.w3.org/2005/08/addressing"
#define NS_WSSE "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
#define NS_WSU "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
#define NS_XSI "http://www.w3.org/2001/XMLSchema-instance"

struct sb {
	char *p;
	size_t len, cap;
	int oom;
};

void sb_add(struct sb *b, const char *s);
void sb_addn(struct sb *b, const char *s, size_t n);
void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s escaped for element text and attribute values. */
void sb_esc(struct sb *b, const char *s);
void sb_b64(struct sb *b, const unsigned char *d, size_t n);
void sb_free(struct sb *b);

/* Parses with XML_PARSE_NONET and no DTD/entity loading; a document with a DOCTYPE is
 * refused. NULL when not well-formed. */
xmlDocPtr soap_parse(const char *buf, size_t len);
xmlNodePtr soap_child(xmlNodePtr parent, const char *ns, const char *name);
/* Trimmed text content (malloc'd, "" when empty); NULL when node is NULL. */
char *soap_text(xmlNodePtr n);
int soap_is_nil(xmlNodePtr n);
/* Header and body of an envelope; NULL when not a SOAP 1.2 envelope. */
xmlNodePtr soap_header(xmlDocPtr doc);
xmlNodePtr soap_body(xmlDocPtr doc);
/* The first element child of the body. */
xmlNodePtr soap_body_first(xmlDocPtr doc);

/* WS-Security UsernameToken (PasswordText) from the header; 0 when found. */
int soap_username_token(xmlDocPtr doc, char *user, size_t usz, char *pass, size_t psz);

/* Base64 text (whitespace and CRs ignored) -> bytes; -1 on bad input. */
int soap_b64_decode(const char *text, unsigned char **out, size_t *len);

/* A "urn:uuid:..." string. */
void soap_uuid(char *out, size_t outsz);

#endif
