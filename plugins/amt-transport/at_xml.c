/* SPDX-License-Identifier: Apache-2.0 */
/*
 * at_xml.c - safe XML reading for the amt-transport plugin (its text buffer is pu_buf, from
 * plugins/common). Responses come from the network, so libxml2 parses them with no network
 * access, no entity substitution and no DTD at all: a DOCTYPE is refused outright
 * (billion-laughs and XXE stay impossible).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "at_internal.h"

xmlDocPtr at_xml_parse(const char *buf, size_t len)
{
	xmlDocPtr doc;

	if (!buf || !len || len > 64u * 1024 * 1024)
		return NULL;
	doc = xmlReadMemory(buf, (int)len, NULL, NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc && (doc->intSubset || doc->extSubset)) {
		xmlFreeDoc(doc);
		return NULL;
	}
	if (doc && !xmlDocGetRootElement(doc)) {
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

xmlNodePtr at_xml_child(xmlNodePtr parent, const char *local)
{
	for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, local))
			return c;
	return NULL;
}

xmlNodePtr at_xml_find(xmlNodePtr root, const char *local)
{
	if (!root)
		return NULL;
	if (root->type == XML_ELEMENT_NODE && !strcmp((const char *)root->name, local))
		return root;
	for (xmlNodePtr c = root->children; c; c = c->next) {
		xmlNodePtr f = c->type == XML_ELEMENT_NODE ? at_xml_find(c, local) : NULL;

		if (f)
			return f;
	}
	return NULL;
}

char *at_xml_text(xmlNodePtr n)
{
	xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
	char *r = strdup(t ? (const char *)t : "");

	xmlFree(t);
	return r;
}

int at_xml_find_text(xmlNodePtr root, const char *local, char *out, size_t n)
{
	xmlNodePtr f = at_xml_find(root, local);
	char *t;

	if (!f || !out || !n)
		return -1;
	t = at_xml_text(f);
	if (!t)
		return -1;
	snprintf(out, n, "%s", t);
	free(t);
	return 0;
}

static int has_element_children(xmlNodePtr n)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return 1;
	return 0;
}

json_t *at_xml_to_json(xmlNodePtr n)
{
	json_t *o;

	if (!n)
		return NULL; /* e.g. an empty SOAP Body: the caller reports what was missing */
	if (!has_element_children(n)) {
		char *t = at_xml_text(n);
		json_t *s = t ? json_string(t) : NULL;

		free(t);
		return s ? s : json_null();
	}
	o = json_object();
	for (xmlNodePtr c = n->children; o && c; c = c->next) {
		const char *k = (const char *)c->name;
		json_t *v, *old;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		v = at_xml_to_json(c);
		old = json_object_get(o, k);
		if (!old) {
			json_object_set_new(o, k, v);
		} else if (json_is_array(old)) {
			json_array_append_new(old, v);
		} else {
			json_t *a = json_array();

			json_array_append(a, old);
			json_array_append_new(a, v);
			json_object_set_new(o, k, a);
		}
	}
	return o;
}

const char *at_xml_local(xmlNodePtr n)
{
	return n && n->type == XML_ELEMENT_NODE && n->name ? (const char *)n->name : "";
}

json_t *at_xml_epr(xmlNodePtr n)
{
	xmlNodePtr ss = at_xml_find(n, "SelectorSet");
	json_t *o;

	if (!ss)
		return NULL;
	o = json_object();
	for (xmlNodePtr c = ss->children; o && c; c = c->next) {
		xmlChar *name;
		char *t;

		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "Selector"))
			continue;
		name = xmlGetProp(c, (const xmlChar *)"Name");
		t = at_xml_text(c);
		if (name && t)
			json_object_set_new(o, (const char *)name, json_string(t));
		xmlFree(name);
		free(t);
	}
	return o;
}

void at_xml_pull_items(xmlNodePtr body, json_t *items)
{
	xmlNodePtr its = at_xml_find(body, "Items");

	/* Local names only: the firmware declares the items' namespace once on the Envelope
	 * and sends them bare, amtsim used to declare it on each item; both read the same. */
	for (xmlNodePtr c = its ? its->children : NULL; c; c = c->next) {
		json_t *o;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		o = at_xml_to_json(c);
		if (json_is_object(o))
			json_object_set_new(o, "_class", json_string((const char *)c->name));
		json_array_append_new(items, o);
	}
}
