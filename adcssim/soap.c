/* SPDX-License-Identifier: Apache-2.0 */
/*
 * soap.c - see soap.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "der.h"
#include "soap.h"

static void grow(struct sb *b, size_t need)
{
	void *p = b->p;

	/* one more for the terminating NUL */
	buf_reserve(&p, &b->cap, b->len, need + 1, 1024, &b->oom);
	b->p = p;
}

void sb_addn(struct sb *b, const char *s, size_t n)
{
	grow(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sb_add(struct sb *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

void sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	grow(b, (size_t)n);
	if (b->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sb_esc(struct sb *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': sb_add(b, "&lt;"); break;
		case '>': sb_add(b, "&gt;"); break;
		case '&': sb_add(b, "&amp;"); break;
		case '"': sb_add(b, "&quot;"); break;
		case '\'': sb_add(b, "&apos;"); break;
		default: sb_addn(b, s, 1);
		}
	}
}

void sb_b64(struct sb *b, const unsigned char *d, size_t n)
{
	size_t out = 4 * ((n + 2) / 3);

	grow(b, out);
	if (b->oom)
		return;
	EVP_EncodeBlock((unsigned char *)b->p + b->len, d, (int)n);
	b->len += out;
	b->p[b->len] = '\0';
}

void sb_free(struct sb *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

xmlDocPtr soap_parse(const char *buf, size_t len)
{
	xmlDocPtr doc;

	if (len > 0x7fffffff)
		return NULL;
	/* No XML_PARSE_NOENT / DTDLOAD: entities are never expanded, nothing is fetched. */
	doc = xmlReadMemory(buf, (int)len, "request.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc && doc->intSubset) {
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

static int is(xmlNodePtr n, const char *ns, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name) &&
	       (!ns || (n->ns && n->ns->href && !strcmp((const char *)n->ns->href, ns)));
}

xmlNodePtr soap_child(xmlNodePtr parent, const char *ns, const char *name)
{
	xmlNodePtr c;

	if (!parent)
		return NULL;
	for (c = parent->children; c; c = c->next)
		if (is(c, ns, name))
			return c;
	return NULL;
}

char *soap_text(xmlNodePtr n)
{
	xmlChar *t;
	char *s, *start, *end;

	if (!n)
		return NULL;
	t = xmlNodeGetContent(n);
	s = strdup(t ? (const char *)t : "");
	xmlFree(t);
	if (!s)
		return NULL;
	for (start = s; *start == ' ' || *start == '\t' || *start == '\r' || *start == '\n';)
		start++;
	end = start + strlen(start);
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
			       end[-1] == '\n'))
		end--;
	*end = '\0';
	memmove(s, start, (size_t)(end - start) + 1);
	return s;
}

int soap_is_nil(xmlNodePtr n)
{
	xmlChar *v;
	int nil;

	if (!n)
		return 1;
	v = xmlGetNsProp(n, (const xmlChar *)"nil", (const xmlChar *)NS_XSI);
	nil = v && (!strcmp((const char *)v, "true") || !strcmp((const char *)v, "1"));
	xmlFree(v);
	return nil;
}

static xmlNodePtr envelope(xmlDocPtr doc)
{
	xmlNodePtr r = doc ? xmlDocGetRootElement(doc) : NULL;

	return is(r, NS_SOAP, "Envelope") ? r : NULL;
}

xmlNodePtr soap_header(xmlDocPtr doc)
{
	return soap_child(envelope(doc), NS_SOAP, "Header");
}

xmlNodePtr soap_body(xmlDocPtr doc)
{
	return soap_child(envelope(doc), NS_SOAP, "Body");
}

xmlNodePtr soap_body_first(xmlDocPtr doc)
{
	xmlNodePtr c, b = soap_body(doc);

	for (c = b ? b->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return c;
	return NULL;
}

int soap_username_token(xmlDocPtr doc, char *user, size_t usz, char *pass, size_t psz)
{
	xmlNodePtr tok = soap_child(soap_child(soap_header(doc), NS_WSSE, "Security"), NS_WSSE,
				    "UsernameToken");
	xmlNodePtr pw = soap_child(tok, NS_WSSE, "Password");
	xmlChar *type = pw ? xmlGetProp(pw, (const xmlChar *)"Type") : NULL;
	char *u = soap_text(soap_child(tok, NS_WSSE, "Username")), *p = soap_text(pw);
	int rc = -1;

	/* PasswordText only (the default when Type is absent); digests are not what CES takes. */
	if (u && p && (!type || strstr((const char *)type, "#PasswordText")) && strlen(u) < usz &&
	    strlen(p) < psz) {
		snprintf(user, usz, "%s", u);
		snprintf(pass, psz, "%s", p);
		rc = 0;
	}
	xmlFree(type);
	free(u);
	if (p)
		memset(p, 0, strlen(p));
	free(p);
	return rc;
}

int soap_b64_decode(const char *text, unsigned char **out, size_t *len)
{
	size_t n = strlen(text), i, o = 0;
	char *clean = malloc(n + 1);
	unsigned char *buf;
	int d, pad = 0;

	if (!clean)
		return -1;
	for (i = 0; i < n; i++)
		if (!strchr(" \t\r\n", text[i]))
			clean[o++] = text[i];
	clean[o] = '\0';
	if (o == 0 || o % 4) {
		free(clean);
		return -1;
	}
	buf = malloc(o / 4 * 3 + 1);
	d = buf ? EVP_DecodeBlock(buf, (unsigned char *)clean, (int)o) : -1;
	if (o >= 1 && clean[o - 1] == '=')
		pad++;
	if (o >= 2 && clean[o - 2] == '=')
		pad++;
	free(clean);
	if (d < 0 || d < pad) {
		free(buf);
		return -1;
	}
	*out = buf;
	*len = (size_t)(d - pad);
	return 0;
}

void soap_uuid(char *out, size_t outsz)
{
	unsigned char r[16];

	if (RAND_bytes(r, sizeof(r)) != 1)
		memset(r, 0x5a, sizeof(r));
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(out, outsz,
		 "urn:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
		 r[13], r[14], r[15]);
}
