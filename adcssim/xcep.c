/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xcep.c - MS-XCEP GetPolicies [MS-XCEP 3.1.4.1]: the published templates of the
 * enterprise CA as CertificateEnrollmentPolicy objects, the CA with its CES URIs, and the
 * OIDs they reference. A stand-alone CA is not in the directory's Enrollment Services, so
 * CEP lists neither templates nor CA for it (policies, cAs and oIDs nil).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/objects.h>

#include "negotiate.h"
#include "server.h"

#define NS_XCEP "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy"
#define XCEP_ACTION NS_XCEP "/IPolicy/GetPoliciesResponse"
#define MAX_OIDS 128

struct oid_entry {
	char value[128];
	unsigned group;
	char name[96];
};

struct oid_table {
	struct oid_entry e[MAX_OIDS];
	int n;
};

/* Returns the oIDReferenceID (1-based) of (value, group), adding it when new. */
static int oid_ref(struct oid_table *t, const char *value, unsigned group, const char *name)
{
	int i;
	ASN1_OBJECT *o;

	for (i = 0; i < t->n; i++)
		if (t->e[i].group == group && !strcmp(t->e[i].value, value))
			return i + 1;
	if (t->n == MAX_OIDS)
		return -1;
	snprintf(t->e[t->n].value, sizeof(t->e[t->n].value), "%s", value);
	t->e[t->n].group = group;
	if (name) {
		snprintf(t->e[t->n].name, sizeof(t->e[t->n].name), "%s", name);
	} else {
		/* OpenSSL's long names for the standard OIDs; the dotted value otherwise. */
		o = OBJ_txt2obj(value, 1);
		snprintf(t->e[t->n].name, sizeof(t->e[t->n].name), "%s",
			 o && OBJ_obj2nid(o) != NID_undef ? OBJ_nid2ln(OBJ_obj2nid(o)) : value);
		ASN1_OBJECT_free(o);
	}
	return ++t->n;
}

static const char *hash_oid(const char *name)
{
	static const struct { const char *n, *oid; } h[] = {
		{ "sha1", "1.3.14.3.2.26" }, { "sha256", "2.16.840.1.101.3.4.2.1" },
		{ "sha384", "2.16.840.1.101.3.4.2.2" }, { "sha512", "2.16.840.1.101.3.4.2.3" },
	};
	size_t i;

	for (i = 0; i < sizeof(h) / sizeof(h[0]); i++)
		if (!strcmp(h[i].n, name))
			return h[i].oid;
	return NULL;
}

/* xs:dateTime -> time_t (UTC; a missing zone means UTC, as Windows clients send it). */
static int parse_datetime(const char *s, time_t *out)
{
	struct tm tm;
	int y, mo, d, h, mi, sec;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
		return -1;
	if (y < 1970) {
		*out = 0;
		return 0;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = timegm(&tm);
	return 0;
}

static void nil(struct sb *b, const char *name)
{
	sb_printf(b, "<%s xsi:nil=\"true\"/>", name);
}

static void uint_or_nil(struct sb *b, const char *name, unsigned v, int present)
{
	if (present)
		sb_printf(b, "<%s>%u</%s>", name, v, name);
	else
		nil(b, name);
}

/* Does @p seed publish a template named like @p t (AD CS: the template is on that CA)? */
static int publishes(const struct seed *seed, const struct seed_template *t)
{
	size_t i;

	for (i = 0; !seed->standalone && i < seed->n_templates; i++)
		if (!strcasecmp(seed->templates[i].name, t->name))
			return 1;
	return 0;
}

static void policy(struct sb *b, struct oid_table *oids, const struct seed_template *t,
		   const struct seed_account *who, const struct adcs *s)
{
	const char *ca_hash = s->seed.ca_hash;
	struct tmpl_ext e[CA_MAX_TMPL_EXT];
	size_t n, i;
	int ref;

	sb_printf(b, "<policy><policyOIDReference>%d</policyOIDReference>",
		  oid_ref(oids, t->oid, 9, t->display));
	/* The CAs that issue it [MS-XCEP 3.1.4.1.3.3]: this one (0), and each peer CA (1..n)
	 * that publishes a template of that name. */
	sb_add(b, "<cAs><cAReference>0</cAReference>");
	for (int p = 0; p < s->n_peers; p++)
		if (publishes(&s->peers[p].seed, t))
			sb_printf(b, "<cAReference>%d</cAReference>", p + 1);
	sb_add(b, "</cAs><attributes><commonName>");
	sb_esc(b, t->name);
	sb_printf(b, "</commonName><policySchema>%u</policySchema>", t->schema);
	sb_printf(b, "<certificateValidity><validityPeriodSeconds>%lu</validityPeriodSeconds>"
		  "<renewalPeriodSeconds>%lu</renewalPeriodSeconds></certificateValidity>",
		  t->validity_s, t->renewal_s);
	sb_printf(b, "<permission><enroll>%s</enroll><autoEnroll>%s</autoEnroll></permission>",
		  seed_may_enroll(t, who->name) ? "true" : "false",
		  seed_may_autoenroll(t, who->name) ? "true" : "false");
	sb_printf(b, "<privateKeyAttributes><minimalKeyLength>%u</minimalKeyLength>", t->min_key);
	uint_or_nil(b, "keySpec", t->key_spec, t->key_spec != 0);
	nil(b, "keyUsageProperty");
	nil(b, "permissions");
	/* A version 3 (CNG) template names its key algorithm; earlier ones do not. */
	if (t->schema >= 3)
		sb_printf(b, "<algorithmOIDReference>%d</algorithmOIDReference>",
			  oid_ref(oids, "1.2.840.113549.1.1.1", 3, "RSA"));
	else
		nil(b, "algorithmOIDReference");
	nil(b, "cryptoProviders");
	sb_printf(b, "</privateKeyAttributes><revision><majorRevision>%u</majorRevision>"
		  "<minorRevision>%u</minorRevision></revision>", t->major, t->minor);
	nil(b, "supersededPolicies");
	sb_printf(b, "<privateKeyFlags>%u</privateKeyFlags><subjectNameFlags>%u</subjectNameFlags>"
		  "<enrollmentFlags>%u</enrollmentFlags><generalFlags>%u</generalFlags>",
		  t->pkey_flags, t->name_flags, t->enroll_flags, t->general_flags);
	/* MUST be nil unless policySchema is 3 and a hash is defined [MS-XCEP 3.1.4.1.3.1]. */
	if (t->schema == 3 && hash_oid(t->hash[0] ? t->hash : ca_hash))
		sb_printf(b, "<hashAlgorithmOIDReference>%d</hashAlgorithmOIDReference>",
			  oid_ref(oids, hash_oid(t->hash[0] ? t->hash : ca_hash), 1,
				  t->hash[0] ? t->hash : ca_hash));
	else
		nil(b, "hashAlgorithmOIDReference");
	nil(b, "rARequirements");
	nil(b, "keyArchivalAttributes");
	sb_add(b, "<extensions>");
	n = ca_template_exts(t, e);
	for (i = 0; i < n; i++) {
		ref = oid_ref(oids, e[i].oid, 6, NULL);
		sb_printf(b, "<extension><oIDReference>%d</oIDReference><critical>%s</critical>"
			  "<value>", ref, e[i].critical ? "true" : "false");
		sb_b64(b, e[i].v.p, e[i].v.len);
		sb_add(b, "</value></extension>");
	}
	ca_template_exts_free(e, n);
	for (i = 0; i < t->n_eku; i++)
		oid_ref(oids, t->eku[i], 7, NULL); /* EKUs are listed as group 7 too */
	sb_add(b, "</extensions></attributes></policy>");
}

/* The requestFilter rules [MS-XCEP 3.1.4.1.3.22]. */
struct filter {
	int has_oids;
	char oids[16][128];
	int n_oids;
	long client_version, server_version; /* -1: nil or absent */
};

static void read_filter(xmlNodePtr rf, struct filter *f)
{
	xmlNodePtr c;
	char *v;

	memset(f, 0, sizeof(*f));
	f->client_version = f->server_version = -1;
	if (!rf || soap_is_nil(rf))
		return;
	c = soap_child(rf, NS_XCEP, "policyOIDs");
	if (c && !soap_is_nil(c)) {
		f->has_oids = 1;
		for (c = c->children; c; c = c->next) {
			if (c->type != XML_ELEMENT_NODE || f->n_oids == 16)
				continue;
			v = soap_text(c);
			if (v)
				snprintf(f->oids[f->n_oids++], sizeof(f->oids[0]), "%s", v);
			free(v);
		}
	}
	c = soap_child(rf, NS_XCEP, "clientVersion");
	if (c && !soap_is_nil(c) && (v = soap_text(c))) {
		f->client_version = strtol(v, NULL, 10);
		free(v);
	}
	c = soap_child(rf, NS_XCEP, "serverVersion");
	if (c && !soap_is_nil(c) && (v = soap_text(c))) {
		f->server_version = strtol(v, NULL, 10);
		free(v);
	}
}

static int keep(const struct filter *f, const struct seed_template *t, int version_filter)
{
	int i, hit = 0;

	if (f->has_oids) {
		for (i = 0; i < f->n_oids; i++)
			hit |= !strcmp(f->oids[i], t->oid);
		if (!hit)
			return 0;
	}
	/* The version filter is a SHOULD that Windows CEP does not implement [MS-XCEP 7 <2>]. */
	if (!version_filter)
		return 1;
	if (f->client_version >= 0 &&
	    (t->pkey_flags & 0x0F000000u) > ((unsigned long)f->client_version << 24))
		return 0;
	if (f->server_version >= 0 &&
	    (t->pkey_flags & 0x000F0000u) > ((unsigned long)f->server_version << 16))
		return 0;
	return 1;
}

/* One cA [MS-XCEP 3.1.4.1.3.2]: its CES URIs (one per authentication, priorities from
 * @p prio on), certificate, the account's enroll permission, its reference id. */
static void ca_entry(struct sb *b, const struct seed *seed, X509 *cert, const char *https_base,
		     unsigned prio, int ref, const struct seed_account *who)
{
	unsigned char *der = NULL;
	int n = i2d_X509(cert, &der), may = 0;
	size_t i;
	char path[200];
	static const struct { const char *kind; unsigned auth; } uri[] = {
		{ "UsernamePassword", AUTH_USERNAME }, { "Certificate", AUTH_CERTIFICATE },
		{ "Kerberos", AUTH_KERBEROS },
	};

	for (i = 0; !seed->standalone && i < seed->n_templates; i++)
		may |= seed_may_enroll(&seed->templates[i], who->name);
	sb_add(b, "<cA><uris>");
	for (i = 0; i < sizeof(uri) / sizeof(uri[0]); i++) {
		size_t k, o = 0;

		if (uri[i].auth == AUTH_KERBEROS && !negotiate_available())
			continue; /* listed only when a keytab makes the endpoint real */

		/* The CA's common name with spaces as %20, like IIS application names. */
		for (k = 0; seed->ca_name[k] && o < sizeof(path) - 4; k++) {
			if (seed->ca_name[k] == ' ') {
				memcpy(path + o, "%20", 3);
				o += 3;
			} else {
				path[o++] = seed->ca_name[k];
			}
		}
		path[o] = '\0';
		sb_printf(b, "<cAURI><clientAuthentication>%u</clientAuthentication><uri>",
			  uri[i].auth);
		sb_esc(b, https_base);
		sb_printf(b, "/%s_CES_%s/service.svc/CES</uri><priority>%zu</priority>"
			  "<renewalOnly>false</renewalOnly></cAURI>", path, uri[i].kind,
			  prio + i);
	}
	sb_add(b, "</uris><certificate>");
	if (n > 0)
		sb_b64(b, der, (size_t)n);
	OPENSSL_free(der);
	sb_printf(b, "</certificate><enrollPermission>%s</enrollPermission>"
		  "<cAReferenceID>%d</cAReferenceID></cA>", may ? "true" : "false", ref);
}

/* This server's CA, then the peer CAs (a stand-alone peer too: it is listed, and no
 * template references it). */
static void ca_entries(struct adcs *s, struct sb *b, const struct seed_account *who)
{
	sb_add(b, "<cAs>");
	ca_entry(b, &s->seed, s->ca.cert, s->https_base, s->ces_priority ? s->ces_priority : 1, 0,
		 who);
	for (int p = 0; p < s->n_peers; p++)
		ca_entry(b, &s->peers[p].seed, s->peers[p].cert, s->peers[p].https_base,
			 s->peers[p].ces_priority, p + 1, who);
	sb_add(b, "</cAs>");
}

void xcep_get_policies(struct adcs *s, xmlDocPtr doc, const char *msgid,
		       const struct seed_account *who, struct http_resp *resp)
{
	xmlNodePtr gp = soap_body_first(doc), client, lu;
	struct oid_table *oids = NULL;
	struct filter f;
	struct sb b = { 0 };
	time_t last = 0;
	char *v;
	size_t i;
	int n = 0, not_changed = 0, j;

	client = gp ? soap_child(gp, NS_XCEP, "client") : NULL;
	if (!gp || strcmp((const char *)gp->name, "GetPolicies") || !gp->ns ||
	    strcmp((const char *)gp->ns->href, NS_XCEP) || !client || soap_is_nil(client) ||
	    !client->children) {
		/* client absent, nil or empty: the server MUST fault [MS-XCEP 3.1.4.1.3.9]. */
		adcs_fault(resp, "http://www.w3.org/2005/08/addressing/soap/fault", msgid,
			   "Receiver", NULL, NULL, "The GetPolicies request has no client element.",
			   NULL);
		return;
	}
	lu = soap_child(client, NS_XCEP, "lastUpdate");
	if (lu && !soap_is_nil(lu) && (v = soap_text(lu))) {
		if (parse_datetime(v, &last) == 0 && last >= s->last_update)
			not_changed = 1;
		free(v);
	}
	read_filter(soap_child(gp, NS_XCEP, "requestFilter"), &f);
	oids = calloc(1, sizeof(*oids));
	if (!oids) {
		http_reply(resp, 500, "text/plain", "out of memory\n", 14);
		return;
	}
	adcs_envelope_open(&b, XCEP_ACTION, msgid);
	sb_add(&b, "<GetPoliciesResponse xmlns=\"" NS_XCEP "\" xmlns:xsi=\"" NS_XSI "\"><response>"
		   "<policyID>");
	sb_esc(&b, s->seed.policy_id);
	sb_add(&b, "</policyID><policyFriendlyName>");
	sb_esc(&b, s->seed.policy_name);
	sb_printf(&b, "</policyFriendlyName><nextUpdateHours>%u</nextUpdateHours>",
		  s->seed.next_update_hours);
	if (not_changed) {
		sb_add(&b, "<policiesNotChanged>true</policiesNotChanged>"
			   "<policies xsi:nil=\"true\"/></response><cAs xsi:nil=\"true\"/>"
			   "<oIDs xsi:nil=\"true\"/>");
		goto done;
	}
	sb_add(&b, "<policiesNotChanged>false</policiesNotChanged>");
	/* Observed on real CEP: nil versions gave an empty policy list (cepces issue 74). */
	if (!s->seed.standalone &&
	    !(s->seed.nil_versions_empty && (f.client_version < 0 || f.server_version < 0))) {
		for (i = 0; i < s->seed.n_templates; i++) {
			if (!keep(&f, &s->seed.templates[i], s->seed.version_filter))
				continue;
			if (n++ == 0)
				sb_add(&b, "<policies>");
			policy(&b, oids, &s->seed.templates[i], who, s);
		}
	}
	if (n)
		sb_add(&b, "</policies></response>");
	else
		sb_add(&b, "<policies xsi:nil=\"true\"/></response>");
	if (s->seed.standalone || n == 0)
		sb_add(&b, "<cAs xsi:nil=\"true\"/>");
	else
		ca_entries(s, &b, who);
	if (oids->n == 0) {
		sb_add(&b, "<oIDs xsi:nil=\"true\"/>");
	} else {
		sb_add(&b, "<oIDs>");
		for (j = 0; j < oids->n; j++) {
			sb_add(&b, "<oID><value>");
			sb_esc(&b, oids->e[j].value);
			sb_printf(&b, "</value><group>%u</group><oIDReferenceID>%d</oIDReferenceID>"
				  "<defaultName>", oids->e[j].group, j + 1);
			sb_esc(&b, oids->e[j].name);
			sb_add(&b, "</defaultName></oID>");
		}
		sb_add(&b, "</oIDs>");
	}
done:
	sb_add(&b, "</GetPoliciesResponse>");
	adcs_envelope_close(&b);
	free(oids);
	adcs_reply_xml(resp, 200, &b);
}
