/* SPDX-License-Identifier: Apache-2.0 */
/*
 * at_ops.c - the operations of transport.h as step machines over the WS-Man and legacy SOAP
 * clients. A step runs when the operation begins (s->body NULL) and after each response
 * (s->body = the checked SOAP Body): it prepares the next request (AMTPROV_AGAIN), sets
 * s->result (AMTPROV_OK) or fails. First-stage operations use legacy SOAP below AMT 9.0
 * (R-PROV-10), WS-Man otherwise (R-PROV-11); AMT-PROTOCOL.md names every call used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "at_internal.h"

#define GS "AMT_GeneralSettings"
#define SCS "AMT_SetupAndConfigurationService"
#define AUTHS "AMT_AuthorizationService"
#define PKMS "AMT_PublicKeyManagementService"

static const char *pstr(struct at_session *s, const char *k)
{
	return json_string_value(json_object_get(s->params, k));
}

static int bad_param(struct at_session *s, const char *k, const char *want)
{
	return amtprov_error_set(&s->err, AMTPROV_E_INVALID, k, "%s: parameter \"%s\" must be %s",
				 at_op_name(s->op), k, want);
}

static int legacy(struct at_session *s)
{
	return s->amt_major > 0 && s->amt_major < 9;
}

static int set_result(struct at_session *s, json_t *r)
{
	if (!r)
		return amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory");
	json_decref(s->result);
	s->result = r;
	return AMTPROV_OK;
}

/* The first element of the Body: the instance or the method's _OUTPUT. */
static xmlNodePtr body_first(struct at_session *s)
{
	for (xmlNodePtr c = s->body ? s->body->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return c;
	return NULL;
}

/* The local name a class's instances carry: the last path segment of a resource URI. */
static const char *class_local(const char *cls)
{
	const char *slash = strrchr(cls, '/');

	return slash ? slash + 1 : cls;
}

/* The Body's instance of @p cls as JSON (an element named as the class), or NULL with s->err
 * naming what came instead (an empty Body, another element): a device's answer is never
 * trusted to have the shape asked. */
static json_t *body_instance(struct at_session *s, const char *cls)
{
	xmlNodePtr e = body_first(s);
	json_t *inst;

	if (!e) {
		amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
				  "%s: %s of %s returned an empty SOAP Body", at_op_name(s->op), s->verb, cls);
		return NULL;
	}
	if (strcmp(at_xml_local(e), class_local(cls))) {
		amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
				  "%s: %s of %s returned <%.64s>, not an instance of the class",
				  at_op_name(s->op), s->verb, cls, at_xml_local(e));
		return NULL;
	}
	inst = at_xml_to_json(e);
	if (!json_is_object(inst)) {
		json_decref(inst);
		amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
				  "%s: %s of %s returned an instance without properties",
				  at_op_name(s->op), s->verb, cls);
		return NULL;
	}
	return inst;
}

static int need_text(struct at_session *s, const char *local, char *out, size_t n)
{
	if (at_xml_find_text(s->body, local, out, n))
		return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
					 "%s: the response lacks %s", at_op_name(s->op), local);
	return AMTPROV_OK;
}

static json_t *sel1(const char *k, const char *v)
{
	return json_pack("{ss}", k, v);
}

static int b64(const unsigned char *in, size_t n, char *out, size_t outn)
{
	if (outn < 4 * ((n + 2) / 3) + 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return 0;
}

/* "S-1-5-21-..." to the binary SID (revision, count, 48-bit authority, 32-bit little-endian
 * sub-authorities) in base64, as AddUserAclEntryEx's KerberosUserSid takes it (1-28 bytes,
 * AMT-PROTOCOL.md 8.2). */
static int sid_b64(const char *sid, char *out, size_t outn)
{
	unsigned char bin[28];
	unsigned long long v;
	const char *p;
	char *end;
	int n = 0;

	if (strncmp(sid, "S-1-", 4) != 0)
		return -1;
	v = strtoull(sid + 4, &end, 10);
	if (end == sid + 4 || v > 0xFFFFFFFFFFFFull)
		return -1;
	bin[0] = 1;
	for (int i = 0; i < 6; i++)
		bin[2 + i] = (unsigned char)(v >> (8 * (5 - i)));
	for (p = end; *p; p = end) {
		if (*p != '-' || !(p[1] >= '0' && p[1] <= '9') || n == 5)
			return -1;
		v = strtoull(p + 1, &end, 10);
		if (v > 0xFFFFFFFFull)
			return -1;
		for (int i = 0; i < 4; i++)
			bin[8 + 4 * n + i] = (unsigned char)(v >> (8 * i));
		n++;
	}
	if (!n)
		return -1;
	bin[1] = (unsigned char)n;
	return b64(bin, 8 + 4 * (size_t)n, out, outn);
}

/* Decodes base64 (padding aware); returns the length or -1. */
static int unb64(const char *in, unsigned char *out, size_t outn)
{
	size_t n = strlen(in);
	int len, pad = 0;

	if (n % 4 || 3 * (n / 4) > outn)
		return -1;
	len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (len < 0)
		return -1;
	if (n && in[n - 1] == '=')
		pad++;
	if (n > 1 && in[n - 2] == '=')
		pad++;
	return len - pad;
}

static void hex(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* base64(MD5(user ":" realm ":" password)): AMT's DigestPassword (AMT-PROTOCOL.md 9.3). */
static int digest_password(const char *user, const char *realm,
			   const struct amtprov_secret *pw, char *out, size_t n)
{
	unsigned char md[16];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestInit_ex(c, EVP_md5(), NULL) &&
		 EVP_DigestUpdate(c, user, strlen(user)) && EVP_DigestUpdate(c, ":", 1) &&
		 EVP_DigestUpdate(c, realm, strlen(realm)) && EVP_DigestUpdate(c, ":", 1) &&
		 EVP_DigestUpdate(c, pw->data, pw->len) && EVP_DigestFinal_ex(c, md, &mdlen);

	EVP_MD_CTX_free(c);
	return ok && mdlen == 16 ? b64(md, 16, out, n) : -1;
}

static int get_secret(struct at_session *s, const char *k, struct amtprov_secret **out)
{
	const struct amtprov_host *h = s->in->host;
	const char *name = pstr(s, k);

	if (!name)
		return bad_param(s, k, "the name of a credential-store record");
	return h->secret_get(h, name, out, &s->err);
}

/* ---- Enumerate + Pull into scratch["items"] ---- */

static int enum_all(struct at_session *s, const char *cls)
{
	json_t *st = json_object_get(s->scratch, "enum");
	json_int_t phase = json_integer_value(st);
	json_t *items = json_object_get(s->scratch, "items");
	char ctx[512];

	if (phase == 0) {
		json_object_set_new(s->scratch, "enum", json_integer(1));
		json_object_set_new(s->scratch, "items", json_array());
		json_object_set_new(s->scratch, "pulls", json_integer(0));
		return at_wsman_enumerate(s, cls);
	}
	if (phase == 2) {
		at_xml_pull_items(s->body, items);
		if (at_xml_find(s->body, "EndOfSequence")) {
			json_object_set_new(s->scratch, "enum", json_integer(0));
			return AMTPROV_OK;
		}
	}
	if (at_xml_find_text(s->body, "EnumerationContext", ctx, sizeof(ctx)))
		return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
					 "enumeration of %s: no EnumerationContext and no "
					 "EndOfSequence", cls);
	{
		json_int_t pulls = json_integer_value(json_object_get(s->scratch, "pulls")) + 1;

		if (pulls > s->in->cfg.max_pulls)
			return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
						 "enumeration of %s did not end after %lld Pulls",
						 cls, (long long)s->in->cfg.max_pulls);
		json_object_set_new(s->scratch, "pulls", json_integer(pulls));
	}
	json_object_set_new(s->scratch, "enum", json_integer(2));
	return at_wsman_pull(s, cls, ctx);
}

/* ---- what the session read already (at_internal.h) ---- */

void at_session_known_begin(struct at_session *s, uint32_t op)
{
	if (op != AMTPROV_AMT_GET_OTP_HASH)
		s->setup_otp_hash[0] = '\0';
	if (op == AMTPROV_AMT_COMMIT || op == AMTPROV_AMT_UNPROVISION)
		s->realm[0] = '\0';
}

/* Keeps DigestRealm @p r, as this device returned it on this session. */
static void keep_realm(struct at_session *s, const char *r)
{
	if (r && r[0] && strlen(r) < sizeof(s->realm))
		memcpy(s->realm, r, strlen(r) + 1);
}

/* Notes the DigestRealm of an AMT_GeneralSettings instance @p inst the device returned. */
static void note_realm(struct at_session *s, const char *cls, const json_t *inst)
{
	if (strcmp(cls, GS) == 0)
		keep_realm(s, json_string_value(json_object_get(inst, "DigestRealm")));
}

/* The DigestRealm of the AMT_GeneralSettings instance in s->body (a Get's answer), noted for
 * the session too. */
static int body_realm(struct at_session *s, char *realm, size_t n)
{
	if (need_text(s, "DigestRealm", realm, n))
		return s->err.code;
	keep_realm(s, realm);
	return AMTPROV_OK;
}

/* 1 when the instance @p inst (as read: every property a string) already has each value of
 * @p changes, rendered as a Put would send it (booleans true/false, integers in decimal);
 * 0 when any differs, is absent or is not a plain value. */
static int has_values(const json_t *inst, const json_t *changes)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)changes, k, v) {
		const char *now = json_string_value(json_object_get(inst, k));
		char want[32];

		if (!now)
			return 0;
		if (json_is_boolean(v))
			snprintf(want, sizeof(want), "%s", json_is_true(v) ? "true" : "false");
		else if (json_is_integer(v))
			snprintf(want, sizeof(want), "%lld", (long long)json_integer_value(v));
		else if (!json_is_string(v))
			return 0;
		if (strcmp(now, json_is_string(v) ? json_string_value(v) : want) != 0)
			return 0;
	}
	return 1;
}

/* ---- Get, modify, Put (whole instance, as AMT wants) ---- */

/* @p skip_same: no Put when the instance read has every value of @p changes already (the
 * Put would send the device the instance it just returned). Only for classes whose Put does
 * nothing but set those properties. */
static int gmp(struct at_session *s, const char *cls, const json_t *sel, const json_t *changes,
	       int skip_same)
{
	json_t *inst, *psel;
	const char *k, *id;
	json_t *v;
	int rc;

	if (s->step == 0) {
		s->step = 1;
		return at_wsman_get(s, cls, sel);
	}
	if (s->step == 2) {
		/* AMT answers a Put with the updated instance: anything else is not a success. */
		inst = body_instance(s, cls);
		note_realm(s, cls, inst);
		json_decref(inst);
		return inst ? set_result(s, json_object()) : s->err.code;
	}
	inst = body_instance(s, cls); /* Put back whole: it must be this class's instance */
	if (!inst)
		return s->err.code;
	note_realm(s, cls, inst);
	if (skip_same && has_values(inst, changes)) {
		json_decref(inst);
		return set_result(s, json_object());
	}
	json_object_foreach((json_t *)changes, k, v)
		json_object_set(inst, k, v);
	psel = sel ? json_deep_copy(sel) : NULL;
	id = json_string_value(json_object_get(inst, "InstanceID"));
	if (!psel && id)
		psel = sel1("InstanceID", id);
	s->step = 2;
	rc = at_wsman_put(s, cls, psel, inst);
	json_decref(psel);
	json_decref(inst);
	return rc;
}

static int get_modify_put(struct at_session *s, const char *cls, const json_t *sel,
			  const json_t *changes)
{
	return gmp(s, cls, sel, changes, 0);
}

/* Get, modify, Put of a class of plain settings (AMT_GeneralSettings,
 * AMT_RedirectionService): a Put that would change nothing is not sent. */
static int settings_put(struct at_session *s, const char *cls, const json_t *changes)
{
	return gmp(s, cls, NULL, changes, 1);
}

/* ---- operations ---- */

static int op_core_version(struct at_session *s)
{
	char v[64];
	json_t *sel;
	int rc;

	if (s->step == 0) {
		s->step = 1;
		if (legacy(s))
			return at_soap_call(s, "SecurityAdministration", "GetCoreVersion", NULL);
		sel = sel1("InstanceID", "AMT");
		rc = at_wsman_get(s, "CIM_SoftwareIdentity", sel);
		json_decref(sel);
		return rc;
	}
	rc = need_text(s, legacy(s) ? "Version" : "VersionString", v, sizeof(v));
	return rc ? rc : set_result(s, json_pack("{ss}", "version", v));
}

static const char *state_name(long v)
{
	return v == 0 ? "pre" : v == 1 ? "in" : v == 2 ? "post" : "unknown";
}

/* The SHA-256 (hex) of the ProvisioningServerOTP in the AMT_SetupAndConfigurationService
 * instance in s->body: 0, -1 when there is none (AMT shows it only in provisioning state
 * 'in'), -2 when it is not base64, -3 when SHA-256 fails. */
static int body_otp_hash(struct at_session *s, char hx[65])
{
	char b[256];
	unsigned char raw[192], md[32];
	unsigned int mdlen = 0;
	int n;

	if (at_xml_find_text(s->body, "ProvisioningServerOTP", b, sizeof(b)) || !b[0])
		return -1;
	n = unb64(b, raw, sizeof(raw));
	OPENSSL_cleanse(b, sizeof(b));
	if (n <= 0)
		return -2;
	n = EVP_Digest(raw, (size_t)n, md, &mdlen, EVP_sha256(), NULL) ? 0 : -3;
	OPENSSL_cleanse(raw, sizeof(raw));
	if (n == 0)
		hex(md, 32, hx);
	return n;
}

static int op_setup_state(struct at_session *s)
{
	char st[32] = "", mode[32] = "", dhcp[256] = "", trusted[256] = "";
	long n, m;
	const char *mn;

	if (s->step == 0) {
		s->step = 1;
		if (legacy(s))
			return at_soap_call(s, "GeneralInfo", "GetProvisioningState", NULL);
		return at_wsman_get(s, SCS, NULL);
	}
	if (need_text(s, "ProvisioningState", st, sizeof(st)))
		return s->err.code;
	n = strtol(st, NULL, 10);
	if (legacy(s))
		return set_result(s, json_pack("{ss}", "state", state_name(n)));
	/* The same instance holds the OTP: GET_OTP_HASH right after this takes it from here
	 * rather than asking the device again for the instance it just returned. */
	if (body_otp_hash(s, s->setup_otp_hash) != 0)
		s->setup_otp_hash[0] = '\0';
	at_xml_find_text(s->body, "ProvisioningMode", mode, sizeof(mode));
	at_xml_find_text(s->body, "DhcpDNSSuffix", dhcp, sizeof(dhcp));
	at_xml_find_text(s->body, "TrustedDNSSuffix", trusted, sizeof(trusted));
	m = mode[0] ? strtol(mode, NULL, 10) : -1;
	mn = n != 2 ? "none" : m == 1 ? "acm" : m == 4 ? "ccm" : "unknown";
	return set_result(s, json_pack("{ss ss si ss ss}", "state", state_name(n), "mode", mn,
				       "provisioning_mode", (int)m, "dhcp_dns_suffix", dhcp,
				       "trusted_dns_suffix", trusted));
}

static int op_otp_hash(struct at_session *s)
{
	char hx[65];
	int rc;

	if (s->step == 0 && s->setup_otp_hash[0]) {
		/* GET_SETUP_STATE, the operation just before on this session, read it. */
		rc = set_result(s, json_pack("{ss}", "otp_hash", s->setup_otp_hash));
		s->setup_otp_hash[0] = '\0';
		return rc;
	}
	if (s->step == 0) {
		s->step = 1;
		return at_wsman_get(s, SCS, NULL);
	}
	switch (body_otp_hash(s, hx)) {
	case 0:
		return set_result(s, json_pack("{ss}", "otp_hash", hx));
	case -1:
		return amtprov_error_set(&s->err, AMTPROV_E_STATE, s->address,
					 "the device returned no ProvisioningServerOTP (AMT shows "
					 "it only in provisioning state 'in')");
	case -2:
		return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
					 "ProvisioningServerOTP is not base64");
	default:
		return amtprov_error_set(&s->err, AMTPROV_E_CRYPTO, NULL, "SHA-256 failed");
	}
}

static int op_hashes(struct at_session *s)
{
	json_t *out, *items, *e;
	size_t i;
	int rc = enum_all(s, "AMT_ProvisioningCertificateHash");

	if (rc != AMTPROV_OK)
		return rc;
	items = json_object_get(s->scratch, "items");
	out = json_array();
	json_array_foreach(items, i, e) {
		const char *ht = json_string_value(json_object_get(e, "HashType"));
		const char *hd = json_string_value(json_object_get(e, "HashData"));
		const char *alg = !ht ? "unknown" : !strcmp(ht, "1") ? "sha1"
						 : !strcmp(ht, "2") ? "sha256"
						 : !strcmp(ht, "3") ? "sha384" : ht;
		char *low = strdup(hd ? hd : "");

		for (char *p = low; p && *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
		json_array_append_new(
			out, json_pack("{ss ss ss sb sb ss}", "name",
				       json_string_value(json_object_get(e, "ElementName"))
					       ? json_string_value(json_object_get(e, "ElementName"))
					       : "",
				       "algorithm", alg, "hash", low ? low : "", "enabled",
				       json_is_string(json_object_get(e, "Enabled")) &&
					       !strcmp(json_string_value(json_object_get(e, "Enabled")),
						       "true"),
				       "default",
				       json_is_string(json_object_get(e, "IsDefault")) &&
					       !strcmp(json_string_value(json_object_get(e, "IsDefault")),
						       "true"),
				       "instance_id",
				       json_string_value(json_object_get(e, "InstanceID"))
					       ? json_string_value(json_object_get(e, "InstanceID"))
					       : ""));
		free(low);
	}
	return set_result(s, json_pack("{so}", "hashes", out));
}

static int op_set_time(struct at_session *s)
{
	const char *svc = legacy(s) ? "NetworkTime" : "AMT_TimeSynchronizationService";
	char ta0[32];
	struct at_buf a = {0};
	json_t *t = json_object_get(s->params, "time");
	long long now = json_is_integer(t) ? (long long)json_integer_value(t)
					   : (long long)s->in->host->now(s->in->host);
	int rc;

	if (s->step == 0) {
		s->step = 1;
		if (legacy(s))
			return at_soap_call(s, svc, "GetLowAccuracyTimeSynch", NULL);
		return at_wsman_invoke(s, svc, NULL, "GetLowAccuracyTimeSynch", NULL);
	}
	if (s->step == 2)
		return set_result(s, json_object());
	if (need_text(s, "Ta0", ta0, sizeof(ta0)))
		return s->err.code;
	at_arg(&a, "Ta0", ta0);
	at_buf_printf(&a, "<h:Tm1>%lld</h:Tm1><h:Tm2>%lld</h:Tm2>", now, now);
	s->step = 2;
	rc = legacy(s) ? at_soap_call(s, svc, "SetHighAccuracyTimeSynch", a.p)
		       : at_wsman_invoke(s, svc, NULL, "SetHighAccuracyTimeSynch", a.p);
	at_buf_free(&a);
	return rc;
}

static int op_host_name(struct at_session *s)
{
	const char *host = pstr(s, "host"), *dom = pstr(s, "domain");
	struct at_buf a = {0};
	json_t *ch;
	int rc;

	if (!host)
		return bad_param(s, "host", "a string");
	if (legacy(s)) {
		if (s->step == 2 || (s->step == 1 && !dom))
			return set_result(s, json_object());
		at_arg(&a, s->step == 0 ? "HostName" : "DomainName", s->step == 0 ? host : dom);
		rc = at_soap_call(s, "NetworkAdministration",
				  s->step == 0 ? "SetHostName" : "SetDomainName", a.p);
		s->step++;
		at_buf_free(&a);
		return rc;
	}
	ch = dom ? json_pack("{ss ss}", "HostName", host, "DomainName", dom)
		 : json_pack("{ss}", "HostName", host);
	rc = settings_put(s, GS, ch);
	json_decref(ch);
	return rc;
}

static int op_ping(struct at_session *s)
{
	json_t *en = json_object_get(s->params, "enabled"), *rmcp = json_object_get(s->params, "rmcp");
	json_t *ch;
	int rc;

	if (!json_is_boolean(en))
		return bad_param(s, "enabled", "a boolean");
	ch = json_pack("{sb}", "PingResponseEnabled", json_is_true(en));
	if (json_is_boolean(rmcp))
		json_object_set_new(ch, "RmcpPingResponseEnabled", json_boolean(json_is_true(rmcp)));
	rc = settings_put(s, GS, ch);
	json_decref(ch);
	return rc;
}

/* An EPR's InstanceID (or first selector) from the method output element @p local. */
static int epr_handle(struct at_session *s, const char *local, char *out, size_t n)
{
	xmlNodePtr e = at_xml_find(s->body, local);
	json_t *sel = e ? at_xml_epr(e) : NULL;
	const char *id = sel ? json_string_value(json_object_get(sel, "InstanceID")) : NULL;

	if (!id) {
		json_decref(sel);
		return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
					 "%s: the response lacks the %s reference", s->method, local);
	}
	snprintf(out, n, "%s", id);
	json_decref(sel);
	return AMTPROV_OK;
}

static int op_gen_key(struct at_session *s)
{
	json_t *b = json_object_get(s->params, "bits");
	char args[128], h[256];

	if (s->step == 0) {
		long bits = json_is_integer(b) ? (long)json_integer_value(b) : 2048;

		snprintf(args, sizeof(args), "<h:KeyAlgorithm>0</h:KeyAlgorithm>"
					     "<h:KeyLength>%ld</h:KeyLength>", bits);
		s->step = 1;
		return at_wsman_invoke(s, PKMS, NULL, "GenerateKeyPair", args);
	}
	if (epr_handle(s, "KeyPair", h, sizeof(h)))
		return s->err.code;
	return set_result(s, json_pack("{ss}", "key_handle", h));
}

static int op_sign_csr(struct at_session *s)
{
	const char *kh = pstr(s, "key_handle"), *csr = pstr(s, "csr_der_b64");
	struct at_buf a = {0};
	char *out;
	int rc;

	if (!kh)
		return bad_param(s, "key_handle", "a string");
	if (!csr)
		return bad_param(s, "csr_der_b64", "base64 DER");
	if (s->step == 0) {
		at_arg_epr(&a, "KeyPair", "AMT_PublicPrivateKeyPair", "InstanceID", kh);
		at_arg(&a, "SigningAlgorithm", "1");
		at_arg(&a, "NullSignedCertificateRequest", csr);
		s->step = 1;
		rc = at_wsman_invoke(s, PKMS, NULL, "GeneratePKCS10RequestEx", a.p);
		at_buf_free(&a);
		return rc;
	}
	out = at_xml_text(at_xml_find(s->body, "SignedCertificateRequest"));
	rc = out && out[0] ? set_result(s, json_pack("{ss}", "csr_der_b64", out))
			   : amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
					       "no SignedCertificateRequest in the response");
	free(out);
	return rc;
}

static int op_add_key(struct at_session *s)
{
	const char *k = pstr(s, "key_der_b64");
	struct at_buf a = {0};
	char h[256];
	int rc;

	if (!k)
		return bad_param(s, "key_der_b64", "base64 DER");
	if (s->step == 0) {
		at_arg(&a, "KeyBlob", k);
		s->step = 1;
		s->req_sensitive = 1;
		rc = at_wsman_invoke(s, PKMS, NULL, "AddKey", a.p);
		OPENSSL_cleanse(a.p, a.len);
		at_buf_free(&a);
		return rc;
	}
	if (epr_handle(s, "CreatedKey", h, sizeof(h)))
		return s->err.code;
	return set_result(s, json_pack("{ss}", "key_handle", h));
}

static int op_add_cert(struct at_session *s)
{
	const char *leaf = pstr(s, "cert_der_b64");
	json_t *chain = json_object_get(s->params, "chain");
	json_int_t i = json_integer_value(json_object_get(s->scratch, "i"));
	size_t nchain = json_is_array(chain) ? json_array_size(chain) : 0;
	struct at_buf a = {0};
	char h[256];
	int rc;

	if (!leaf)
		return bad_param(s, "cert_der_b64", "base64 DER");
	if (legacy(s) && pstr(s, "key_der_b64")) {
		/* EOI: key and chain in one call, leaf first (AMT-PROTOCOL.md 5.3, [recall]).
		 * Without a key (one AMT generated, or one ADD_KEY gave it) the certificate goes
		 * in over WS-Man, which AMT 6+ has for its certificate store. */
		const char *key = pstr(s, "key_der_b64");

		if (s->step == 1)
			return set_result(s, json_pack("{ss}", "cert_handle", "legacy-tls"));
		at_arg(&a, "PrivateKey", key);
		at_arg(&a, "CertificateChain", leaf);
		for (size_t j = 0; j < nchain; j++)
			if (json_is_string(json_array_get(chain, j)))
				at_arg(&a, "CertificateChain",
				       json_string_value(json_array_get(chain, j)));
		s->step = 1;
		s->req_sensitive = 1;
		rc = at_soap_call(s, "SecurityAdministration", "SetTLSKeyAndCertificate", a.p);
		OPENSSL_cleanse(a.p, a.len);
		at_buf_free(&a);
		return rc;
	}
	if (s->step == 1 && (size_t)i > nchain) {
		if (epr_handle(s, "CreatedCertificate", h, sizeof(h)))
			return s->err.code;
		return set_result(s, json_pack("{ss}", "cert_handle", h));
	}
	s->step = 1;
	if ((size_t)i < nchain) {
		/* Issuing chain first; one AMT already holds is fine. */
		const char *c = json_string_value(json_array_get(chain, (size_t)i));

		if (!c)
			return bad_param(s, "chain", "an array of base64 DER certificates");
		at_arg(&a, "CertificateBlob", c);
		json_object_set_new(s->scratch, "i", json_integer(i + 1));
		rc = at_wsman_invoke(s, PKMS, NULL, "AddCertificate", a.p);
		s->tolerate_rv = 0x80A; /* DUPLICATE */
	} else {
		at_arg(&a, "CertificateBlob", leaf);
		json_object_set_new(s->scratch, "i", json_integer((json_int_t)nchain + 1));
		rc = at_wsman_invoke(s, PKMS, NULL,
				     json_is_true(json_object_get(s->params, "trusted_root"))
					     ? "AddTrustedRootCertificate" : "AddCertificate", a.p);
	}
	at_buf_free(&a);
	return rc;
}

/* The value of an EPR's (first) Selector; at_xml_to_json drops its Name attribute. */
static const char *epr_selector(const json_t *v)
{
	const char *k;
	json_t *c;

	json_object_foreach((json_t *)v, k, c) {
		const char *r;

		if (strcmp(k, "Selector") == 0) {
			if (json_is_array(c))
				c = json_array_get(c, 0);
			return json_string_value(c);
		}
		if (json_is_object(c) && (r = epr_selector(c)))
			return r;
	}
	return NULL;
}

/* ENABLE_TLS {"replace":true} after provisioning (certificate renewal, R-WS-03): AMT keeps
 * one TLS credential context, so the old one is deleted before the new one is created;
 * both apply at CommitChanges. Steps 20 (enumerate) and 21 (delete each). AMTPROV_OK when
 * none is left. */
static int replace_tls_contexts(struct at_session *s, const char *new_handle)
{
	json_t *items, *it, *sel;
	const char *cert;
	json_int_t i;
	int rc;

	if (s->step < 21) {
		s->step = 20;
		rc = enum_all(s, "AMT_TLSCredentialContext");
		if (rc != AMTPROV_OK)
			return rc;
		s->step = 21;
		json_object_set_new(s->scratch, "del", json_integer(0));
	}
	items = json_object_get(s->scratch, "items");
	i = json_integer_value(json_object_get(s->scratch, "del"));
	for (; i < (json_int_t)json_array_size(items); i++) {
		it = json_array_get(items, (size_t)i);
		cert = epr_selector(json_object_get(it, "ElementInContext"));
		if (!cert)
			continue;
		if (strcmp(cert, new_handle) == 0) {
			/* Already bound to the new certificate: a re-run after a crash. */
			json_object_set_new(s->scratch, "bound", json_true());
			continue;
		}
		json_object_set_new(s->scratch, "del", json_integer(i + 1));
		sel = json_pack("{s{ssssss}s{ssssss}}", "ElementInContext", "epr_class",
				"AMT_PublicKeyCertificate", "selector", "InstanceID", "value", cert,
				"ElementProvidingContext", "epr_class",
				"AMT_TLSProtocolEndpointCollection", "selector", "ElementName",
				"value", "TLSProtocolEndpointInstances Collection");
		rc = at_wsman_delete(s, "AMT_TLSCredentialContext", sel);
		json_decref(sel);
		return rc;
	}
	json_object_set_new(s->scratch, "replaced", json_true());
	return AMTPROV_OK;
}

static int op_enable_tls(struct at_session *s)
{
	const char *ch = pstr(s, "cert_handle");
	json_t *mutual = json_object_get(s->params, "mutual");
	json_t *ans = json_object_get(s->params, "accept_non_secure");
	struct at_buf a = {0};
	json_t *sel, *chg;
	int rc;

	if (legacy(s) && (!ch || !strcmp(ch, "legacy-tls"))) {
		/* The certificate SetTLSKeyAndCertificate installed; one added over WS-Man (a key
		 * AMT generated) gets its TLS credential context over WS-Man below. */
		if (s->step == 1)
			return set_result(s, json_object());
		s->step = 1;
		return at_soap_call(s, "SecurityAdministration", "SetTlsEnabled",
				    "<h:Enabled>true</h:Enabled>");
	}
	if (!ch)
		return bad_param(s, "cert_handle", "a string");
	if ((s->step == 0 && json_is_true(json_object_get(s->params, "replace")) &&
	     !json_object_get(s->scratch, "replaced")) || s->step >= 20) {
		rc = replace_tls_contexts(s, ch);
		if (rc != AMTPROV_OK)
			return rc;
		/* Every old context is gone: create the new one, unless it exists. */
		s->step = json_is_true(json_object_get(s->scratch, "bound")) ? 10 : 0;
	}
	if (s->step == 0) {
		at_buf_add(&a, "<h:AMT_TLSCredentialContext xmlns:h=\"" AT_NS_AMT
			       "AMT_TLSCredentialContext\">");
		at_arg_epr(&a, "ElementInContext", "AMT_PublicKeyCertificate", "InstanceID", ch);
		at_arg_epr(&a, "ElementProvidingContext", "AMT_TLSProtocolEndpointCollection",
			   "ElementName", "TLSProtocolEndpointInstances Collection");
		at_buf_add(&a, "</h:AMT_TLSCredentialContext>");
		s->step = 10;
		rc = at_wsman_create(s, "AMT_TLSCredentialContext", a.p);
		at_buf_free(&a);
		return rc;
	}
	if (s->step == 10)
		s->step = 0; /* then Get + Put of the remote TLS settings */
	sel = sel1("InstanceID", "Intel(r) AMT 802.3 TLS Settings");
	chg = json_pack("{sb sb sb}", "Enabled", 1, "MutualAuthentication", json_is_true(mutual),
			"AcceptNonSecureConnections", ans ? json_is_true(ans) : 1);
	rc = get_modify_put(s, "AMT_TLSSettingData", sel, chg);
	json_decref(sel);
	json_decref(chg);
	return rc;
}

static int op_admin_password(struct at_session *s)
{
	const char *user = pstr(s, "user") ? pstr(s, "user") : "admin";
	struct amtprov_secret *pw = NULL;
	char realm[128] = "", dp[64];
	struct at_buf a = {0};
	int rc;

	if (s->step == 2)
		return set_result(s, json_object());
	/* The realm comes from AMT_GeneralSettings: read here unless this session read it. */
	if (s->step == 0 && !legacy(s) && !s->realm[0]) {
		if (!pstr(s, "credential"))
			return bad_param(s, "credential", "the name of a credential-store record");
		s->step = 1;
		return at_wsman_get(s, GS, NULL);
	}
	if (!legacy(s) && s->step == 0)
		snprintf(realm, sizeof(realm), "%s", s->realm);
	else if (!legacy(s) && body_realm(s, realm, sizeof(realm)))
		return s->err.code;
	rc = get_secret(s, "credential", &pw);
	if (rc != AMTPROV_OK)
		return rc;
	at_arg(&a, "Username", user);
	if (legacy(s)) {
		/* EOI SetAdminAclEntry(Username, Password) [recall, AMT-PROTOCOL.md 5.3]. */
		at_arg(&a, "Password", pw->data);
		s->step = 2;
		s->req_sensitive = 1;
		rc = at_soap_call(s, "SecurityAdministration", "SetAdminAclEntry", a.p);
	} else if (digest_password(user, realm, pw, dp, sizeof(dp)) == 0) {
		at_arg(&a, "DigestPassword", dp);
		OPENSSL_cleanse(dp, sizeof(dp));
		s->step = 2;
		s->req_sensitive = 1;
		rc = at_wsman_invoke(s, AUTHS, NULL, "SetAdminAclEntryEx", a.p);
	} else {
		rc = amtprov_error_set(&s->err, AMTPROV_E_CRYPTO, NULL, "MD5 failed");
	}
	if (a.p)
		OPENSSL_cleanse(a.p, a.len);
	at_buf_free(&a);
	s->in->host->secret_free(s->in->host, pw);
	return rc;
}

static int op_mebx_password(struct at_session *s)
{
	struct amtprov_secret *pw = NULL;
	struct at_buf a = {0};
	int rc;

	if (s->step == 1)
		return set_result(s, json_object());
	rc = get_secret(s, "credential", &pw);
	if (rc != AMTPROV_OK)
		return rc;
	at_arg(&a, "Password", pw->data);
	s->step = 1;
	s->req_sensitive = 1;
	rc = legacy(s) ? at_soap_call(s, "SecurityAdministration", "SetMEBxPassword", a.p)
		       : at_wsman_invoke(s, SCS, NULL, "SetMEBxPassword", a.p);
	if (a.p)
		OPENSSL_cleanse(a.p, a.len);
	at_buf_free(&a);
	s->in->host->secret_free(s->in->host, pw);
	return rc;
}

static int op_simple_method(struct at_session *s, const char *svc, const char *method,
			    const char *args)
{
	if (s->step == 1)
		return set_result(s, json_object());
	s->step = 1;
	if (legacy(s))
		return at_soap_call(s, "SecurityAdministration", method, args);
	return at_wsman_invoke(s, svc, NULL, method, args);
}

/* R-PROV-11 (1): delete every user ACL, then add the configured ones. */
static int op_acls(struct at_session *s)
{
	json_t *accts = json_object_get(s->params, "accounts");
	json_t *handles = json_object_get(s->scratch, "handles");
	char realm[128], tot[32];
	struct at_buf a = {0};
	int rc;

	if (!json_is_array(accts))
		return bad_param(s, "accounts", "an array of {user, credential | sid, access, realms}");
	switch (s->step) {
	case 0:
	case 1:
		/* The realm, from AMT_GeneralSettings unless this session read it already. */
		if (s->step == 0 && !s->realm[0]) {
			s->step = 1;
			return at_wsman_get(s, GS, NULL);
		}
		if (s->step == 0)
			snprintf(realm, sizeof(realm), "%s", s->realm);
		else if (body_realm(s, realm, sizeof(realm)))
			return s->err.code;
		json_object_set_new(s->scratch, "realm", json_string(realm));
		json_object_set_new(s->scratch, "handles", json_array());
		s->step = 2;
		return at_wsman_invoke(s, AUTHS, NULL, "EnumerateUserAclEntries",
				       "<h:StartIndex>1</h:StartIndex>");
	case 2: {
		xmlNodePtr out = body_first(s);
		long total;

		for (xmlNodePtr c = out ? out->children : NULL; c; c = c->next) {
			char *t;

			if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "Handles"))
				continue;
			t = at_xml_text(c);
			if (t)
				json_array_append_new(handles, json_string(t));
			free(t);
		}
		total = at_xml_find_text(s->body, "TotalCount", tot, sizeof(tot)) ? 0
										   : strtol(tot, NULL, 10);
		if ((size_t)total > json_array_size(handles) &&
		    json_integer_value(json_object_get(s->scratch, "pages")) < 64) {
			char args[64];

			json_object_set_new(
				s->scratch, "pages",
				json_integer(json_integer_value(json_object_get(s->scratch, "pages")) + 1));
			snprintf(args, sizeof(args), "<h:StartIndex>%zu</h:StartIndex>",
				 json_array_size(handles) + 1);
			return at_wsman_invoke(s, AUTHS, NULL, "EnumerateUserAclEntries", args);
		}
		s->step = 3;
	}
		/* fall through */
	case 3:
		if (json_array_size(handles)) {
			at_arg(&a, "Handle", json_string_value(json_array_get(handles, 0)));
			json_array_remove(handles, 0);
			rc = at_wsman_invoke(s, AUTHS, NULL, "RemoveUserAclEntry", a.p);
			at_buf_free(&a);
			return rc;
		}
		s->step = 4;
		json_object_set_new(s->scratch, "i", json_integer(0));
		json_object_set_new(s->scratch, "added", json_array());
		return op_acls(s);
	case 4:
	default: {
		json_int_t i = json_integer_value(json_object_get(s->scratch, "i"));
		json_t *acc, *realms, *r;
		const char *user, *sid;
		json_t *access;
		size_t j;

		if (s->body && s->method[0] && !strcmp(s->method, "AddUserAclEntryEx")) {
			char h[32];

			if (!at_xml_find_text(s->body, "Handle", h, sizeof(h)))
				json_array_append_new(json_object_get(s->scratch, "added"),
						      json_string(h));
		}
		if ((size_t)i >= json_array_size(accts))
			return set_result(s, json_pack("{sO}", "handles",
						       json_object_get(s->scratch, "added")));
		acc = json_array_get(accts, (size_t)i);
		json_object_set_new(s->scratch, "i", json_integer(i + 1));
		user = json_string_value(json_object_get(acc, "user"));
		sid = json_string_value(json_object_get(acc, "sid"));
		access = json_object_get(acc, "access");
		if (!user && !sid)
			return bad_param(s, "accounts", "entries with \"user\"+\"credential\" or \"sid\"");
		if (user) {
			struct amtprov_secret *pw = NULL;
			const char *cred = json_string_value(json_object_get(acc, "credential"));
			const char *realmv = json_string_value(json_object_get(s->scratch, "realm"));
			char dp[64];

			if (!cred)
				return bad_param(s, "accounts", "entries with a \"credential\" name");
			rc = s->in->host->secret_get(s->in->host, cred, &pw, &s->err);
			if (rc != AMTPROV_OK)
				return rc;
			rc = digest_password(user, realmv ? realmv : "", pw, dp, sizeof(dp));
			s->in->host->secret_free(s->in->host, pw);
			if (rc)
				return amtprov_error_set(&s->err, AMTPROV_E_CRYPTO, NULL, "MD5 failed");
			at_arg(&a, "DigestUsername", user);
			at_arg(&a, "DigestPassword", dp);
			OPENSSL_cleanse(dp, sizeof(dp));
		}
		if (sid) {
			char sb64[48];

			if (sid_b64(sid, sb64, sizeof(sb64))) {
				at_buf_free(&a);
				return bad_param(s, "accounts", "entries whose \"sid\" is a SID "
							       "(S-1-...) of at most 5 sub-authorities");
			}
			at_arg(&a, "KerberosUserSid", sb64);
		}
		at_buf_printf(&a, "<h:AccessPermission>%lld</h:AccessPermission>",
			      json_is_integer(access) ? (long long)json_integer_value(access) : 2LL);
		realms = json_object_get(acc, "realms");
		json_array_foreach(realms, j, r)
			if (json_is_integer(r))
				at_buf_printf(&a, "<h:Realms>%lld</h:Realms>",
					      (long long)json_integer_value(r));
		s->req_sensitive = 1;
		rc = at_wsman_invoke(s, AUTHS, NULL, "AddUserAclEntryEx", a.p);
		OPENSSL_cleanse(a.p, a.len);
		at_buf_free(&a);
		return rc;
	}
	}
}

/* AMT_KerberosSettingData's properties from SET_KERBEROS's params (AMT-PROTOCOL.md 8.4):
 * RealmName, ServicePrincipalName[] with ServicePrincipalProtocol[], KeyVersion,
 * EncryptionAlgorithm, MasterKey (base64 of the key in the credential store, never in the
 * params), MaximumClockTolerance. */
static int kerberos_changes(struct at_session *s, json_t *ch)
{
	json_t *spns = json_object_get(s->params, "spns"), *names, *protos, *e;
	json_t *kvno = json_object_get(s->params, "key_version");
	json_t *alg = json_object_get(s->params, "encryption_algorithm");
	json_t *tol = json_object_get(s->params, "clock_tolerance");
	const char *realm = pstr(s, "realm"), *cred = pstr(s, "master_key_credential");
	struct amtprov_secret *key = NULL;
	char kb64[64];
	size_t i;
	int rc;

	if (!realm || !realm[0])
		return bad_param(s, "realm", "the Kerberos realm");
	if (!json_is_array(spns) || !json_array_size(spns))
		return bad_param(s, "spns", "a non-empty array of {\"spn\",\"protocol\"}");
	if (!json_is_integer(kvno) || json_integer_value(kvno) < 1)
		return bad_param(s, "key_version", "a positive integer");
	if (!cred)
		return bad_param(s, "master_key_credential", "a credential record name");
	names = json_array();
	protos = json_array();
	json_array_foreach(spns, i, e) {
		const char *spn = json_string_value(json_object_get(e, "spn"));
		json_t *proto = json_object_get(e, "protocol");

		if (!spn || !json_is_integer(proto) || json_integer_value(proto) < 0 ||
		    json_integer_value(proto) > 3) {
			json_decref(names);
			json_decref(protos);
			return bad_param(s, "spns", "entries {\"spn\": string, \"protocol\": 0..3}");
		}
		json_array_append_new(names, json_string(spn));
		json_array_append(protos, proto);
	}
	json_object_set_new(ch, "RealmName", json_string(realm));
	json_object_set_new(ch, "ServicePrincipalName", names);
	json_object_set_new(ch, "ServicePrincipalProtocol", protos);
	json_object_set(ch, "KeyVersion", kvno);
	json_object_set_new(ch, "EncryptionAlgorithm",
			    json_integer(json_is_integer(alg) ? json_integer_value(alg) : 0));
	json_object_set_new(ch, "MaximumClockTolerance",
			    json_integer(json_is_integer(tol) ? json_integer_value(tol) : 5));
	rc = s->in->host->secret_get(s->in->host, cred, &key, &s->err);
	if (rc != AMTPROV_OK)
		return rc;
	/* MasterKey is 128 bits (the RC4-HMAC key) */
	if (key->len != 16 || b64((const unsigned char *)key->data, key->len, kb64, sizeof(kb64))) {
		s->in->host->secret_free(s->in->host, key);
		return amtprov_error_set(&s->err, AMTPROV_E_INVALID, cred,
					 "%s: credential '%s' is not a 16-byte key",
					 at_op_name(s->op), cred);
	}
	s->in->host->secret_free(s->in->host, key);
	json_object_set_new(ch, "MasterKey", json_string(kb64));
	OPENSSL_cleanse(kb64, sizeof(kb64));
	s->req_sensitive = 1;
	return AMTPROV_OK;
}

static int op_kerberos(struct at_session *s)
{
	json_t *en = json_object_get(s->params, "enabled");
	json_t *props = json_object_get(s->params, "properties");
	json_t *ch;
	int rc = AMTPROV_OK;

	if (!json_is_boolean(en))
		return bad_param(s, "enabled", "a boolean");
	ch = json_is_object(props) ? json_deep_copy(props) : json_object();
	json_object_set_new(ch, "KrbEnabled", json_boolean(json_is_true(en)));
	/* the settings only for the Put (step 1): the key is read when it is sent */
	if (s->step == 1 && json_is_true(en) && json_object_get(s->params, "realm"))
		rc = kerberos_changes(s, ch);
	if (rc == AMTPROV_OK)
		rc = get_modify_put(s, "AMT_KerberosSettingData", NULL, ch);
	/* the MasterKey copy in @p ch is wiped with it */
	if (json_object_get(ch, "MasterKey"))
		OPENSSL_cleanse((char *)json_string_value(json_object_get(ch, "MasterKey")), 24);
	json_decref(ch);
	return rc;
}

/* How well a power scheme fits a named policy, read from the scheme's Description (AMT
 * names the states there: "Desktop: ON in S0", "Desktop: ON in S0, ME Wake in S3, S4-5",
 * "Mobile: ON in S0, ME Wake in S3, S4-5 (AC only)"). 0: it does not; 2: exactly; 1: it
 * does with a restriction (AC only). */
static int power_scheme_fit(const char *policy, const char *desc)
{
	int s3 = strstr(desc, "S3") != NULL, s45 = strstr(desc, "S4") != NULL;
	int ac_only = strstr(desc, "AC only") != NULL;

	if (!strcmp(policy, "on-in-s0"))
		return !s3 && !s45 ? 2 : 0;
	if (!strcmp(policy, "on-in-s0-s3"))
		return s3 && !s45 ? (ac_only ? 1 : 2) : 0;
	if (!strcmp(policy, "on-in-s0-s3-s4-5"))
		return s3 && s45 ? (ac_only ? 1 : 2) : 0;
	if (!strcmp(policy, "always-on")) /* every sleep state, on battery too */
		return s3 && s45 && !ac_only ? 2 : 0;
	return 0;
}

/* R-PROV-11 (2): "manageability is on in power state". {"policy": name} picks the device's
 * own scheme that fits (the schemes and their GUIDs differ by platform, so they are read,
 * never assumed); {"scheme": InstanceID} names one directly. */
static int op_power_policy(struct at_session *s)
{
	const char *policy = pstr(s, "policy"), *scheme = pstr(s, "scheme");
	json_t *items, *e, *sel;
	const char *best = NULL, *best_desc = "";
	int best_fit = 0, rc;
	size_t i;

	if (!policy && !scheme)
		return bad_param(s, "policy", "\"always-on\", \"on-in-s0\", \"on-in-s0-s3\" or "
					      "\"on-in-s0-s3-s4-5\" (or give \"scheme\")");
	if (s->step == 2)
		return set_result(s, json_pack("{ss}", "scheme",
					       json_string_value(json_object_get(s->scratch,
										 "scheme"))));
	if (!scheme && s->step == 0) {
		rc = enum_all(s, "AMT_SystemPowerScheme");
		if (rc != AMTPROV_OK)
			return rc;
		items = json_object_get(s->scratch, "items");
		json_array_foreach(items, i, e) {
			const char *id = json_string_value(json_object_get(e, "InstanceID"));
			const char *desc = json_string_value(json_object_get(e, "Description"));
			int fit = id && desc ? power_scheme_fit(policy, desc) : 0;

			if (fit > best_fit) {
				best_fit = fit;
				best = id;
				best_desc = desc;
			}
		}
		if (!best) {
			char list[512] = "";
			size_t n = 0;

			json_array_foreach(items, i, e) {
				const char *desc = json_string_value(json_object_get(e, "Description"));
				int w = snprintf(list + n, sizeof(list) - n, "%s\"%s\"", n ? ", " : "",
						 desc ? desc : "?");

				if (w < 0 || (size_t)w >= sizeof(list) - n)
					break;
				n += (size_t)w;
			}
			return amtprov_error_set(&s->err, AMTPROV_E_NOT_SUPPORTED, s->address,
						 "power policy '%s': the device offers no fitting "
						 "scheme (it has %s)", policy, n ? list : "none");
		}
		s->in->host->log(s->in->host, AMTPROV_LOG_INFO,
				 "power policy '%s': scheme %s \"%s\"", policy, best, best_desc);
		scheme = best;
	}
	json_object_set_new(s->scratch, "scheme", json_string(scheme));
	sel = sel1("InstanceID", scheme);
	s->step = 2;
	rc = at_wsman_invoke(s, "AMT_SystemPowerScheme", sel, "SetPowerScheme", NULL);
	json_decref(sel);
	return rc;
}

/* R-PROV-11 (2): SOL/IDER when "sol" or "ider" is given (RequestStateChange, then the
 * listener), the web interface when "web_ui" is given (AMT_WebUIService.RequestStateChange:
 * 2 enabled, 3 disabled). Absent keys leave the device's value alone. */
static int op_redirection(struct at_session *s)
{
	json_t *solv = json_object_get(s->params, "sol"), *iderv = json_object_get(s->params, "ider");
	json_t *web = json_object_get(s->params, "web_ui");
	int sol = json_is_true(solv), ider = json_is_true(iderv);
	json_int_t phase = json_integer_value(json_object_get(s->scratch, "phase"));
	json_t *ch;
	char args[96];
	int rc;

	if (web && !json_is_boolean(web))
		return bad_param(s, "web_ui", "a boolean");
	if (phase == 0) {
		if (json_is_boolean(solv) || json_is_boolean(iderv)) {
			json_object_set_new(s->scratch, "phase", json_integer(1));
			snprintf(args, sizeof(args), "<h:RequestedState>%d</h:RequestedState>",
				 32768 + (ider ? 1 : 0) + (sol ? 2 : 0));
			s->step = 10;
			return at_wsman_invoke(s, "AMT_RedirectionService", NULL,
					       "RequestStateChange", args);
		}
		phase = 2;
	}
	if (phase == 1) {
		if (s->step == 10)
			s->step = 0;
		ch = json_pack("{sb}", "ListenerEnabled", sol || ider);
		rc = settings_put(s, "AMT_RedirectionService", ch);
		json_decref(ch);
		if (rc != AMTPROV_OK)
			return rc; /* a request in flight, or an error */
		phase = 2;
	}
	if (phase == 2 && json_is_boolean(web)) {
		json_object_set_new(s->scratch, "phase", json_integer(3));
		snprintf(args, sizeof(args), "<h:RequestedState>%d</h:RequestedState>",
			 json_is_true(web) ? 2 : 3);
		return at_wsman_invoke(s, "AMT_WebUIService", NULL, "RequestStateChange", args);
	}
	return set_result(s, json_object());
}

static int op_device_cert(struct at_session *s)
{
	char *b;
	size_t n;
	unsigned char md[32];
	unsigned int mdlen = 0;
	char hx[65];
	int rc;

	if (s->step == 0 && !s->peer_der) {
		s->step = 1;
		/* Any cheap authenticated request brings up the connection. */
		return legacy(s) ? at_soap_call(s, "SecurityAdministration", "GetCoreVersion", NULL)
				 : at_wsman_get(s, GS, NULL);
	}
	if (!s->peer_der)
		return amtprov_error_set(&s->err, AMTPROV_E_STATE, s->address,
					 "the connection was reused and no device certificate was "
					 "seen in this session");
	n = 4 * (((size_t)s->peer_der_len + 2) / 3) + 1;
	b = malloc(n);
	if (!b || b64(s->peer_der, (size_t)s->peer_der_len, b, n)) {
		free(b);
		return amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	EVP_Digest(s->peer_der, (size_t)s->peer_der_len, md, &mdlen, EVP_sha256(), NULL);
	hex(md, 32, hx);
	rc = set_result(s, json_pack("{ss ss}", "cert_der_b64", b, "sha256", hx));
	free(b);
	return rc;
}

static int op_delete_cert(struct at_session *s)
{
	const char *h = pstr(s, "cert_handle");
	json_t *sel;
	int rc;

	if (!h)
		return bad_param(s, "cert_handle", "a string");
	if (s->step == 1)
		return set_result(s, json_object());
	sel = sel1("InstanceID", h);
	s->step = 1;
	rc = at_wsman_delete(s, "AMT_PublicKeyCertificate", sel);
	json_decref(sel);
	return rc;
}

/* ---- generic WS-Man ---- */

static int op_generic(struct at_session *s)
{
	const char *cls = pstr(s, "class");
	json_t *sel = json_object_get(s->params, "selectors");
	json_t *props = json_object_get(s->params, "properties");
	struct at_buf a = {0};
	int rc;

	if (!cls)
		return bad_param(s, "class", "a class name or resource URI");
	if (sel && !json_is_object(sel))
		return bad_param(s, "selectors", "an object");
	switch (s->op) {
	case AMTPROV_AMT_WSMAN_GET:
	case AMTPROV_AMT_WSMAN_PUT:
		if (s->step == 0) {
			if (s->op == AMTPROV_AMT_WSMAN_PUT && !json_is_object(props))
				return bad_param(s, "properties", "an object");
			s->step = 1;
			return s->op == AMTPROV_AMT_WSMAN_GET ? at_wsman_get(s, cls, sel)
							      : at_wsman_put(s, cls, sel, props);
		}
		{
			/* Get answers with the instance; so does AMT's Put (the updated one). */
			json_t *inst = body_instance(s, cls);

			return inst ? set_result(s, json_pack("{so}", "instance", inst)) : s->err.code;
		}
	case AMTPROV_AMT_WSMAN_CREATE:
		if (s->step == 0) {
			if (!json_is_object(props))
				return bad_param(s, "properties", "an object");
			at_instance_xml(&a, cls, props);
			s->step = 1;
			rc = at_wsman_create(s, cls, a.p);
			at_buf_free(&a);
			return rc;
		}
		{
			json_t *epr = at_xml_epr(s->body);

			return set_result(s, json_pack("{so}", "selectors", epr ? epr : json_object()));
		}
	case AMTPROV_AMT_WSMAN_DELETE:
		if (s->step == 0) {
			s->step = 1;
			return at_wsman_delete(s, cls, sel);
		}
		return set_result(s, json_object());
	case AMTPROV_AMT_WSMAN_ENUMERATE:
		rc = enum_all(s, cls);
		return rc != AMTPROV_OK ? rc
					: set_result(s, json_pack("{sO}", "items",
								  json_object_get(s->scratch, "items")));
	case AMTPROV_AMT_WSMAN_INVOKE: {
		const char *m = pstr(s, "method");
		json_t *args = json_object_get(s->params, "args");
		const char *k;
		json_t *v;

		if (s->step == 1) {
			json_t *out = at_xml_to_json(body_first(s));

			return set_result(s, json_pack("{sI so}", "return_value", (json_int_t)s->last_rv,
						       "output", out ? out : json_null()));
		}
		if (!m)
			return bad_param(s, "method", "a method name");
		if (args && !json_is_object(args))
			return bad_param(s, "args", "an object");
		json_object_foreach(args, k, v) {
			json_t *epr = json_is_object(v) ? json_object_get(v, "epr_class") : NULL;

			if (epr) {
				/* {"epr_class": C, "selector": N, "value": V}: a reference. */
				at_arg_epr(&a, k, json_string_value(epr) ? json_string_value(epr) : "",
					   json_string_value(json_object_get(v, "selector"))
						   ? json_string_value(json_object_get(v, "selector"))
						   : "InstanceID",
					   json_string_value(json_object_get(v, "value"))
						   ? json_string_value(json_object_get(v, "value"))
						   : "");
			} else {
				json_t *one = json_pack("{sO}", k, v);
				const char *kk;
				json_t *vv;

				json_object_foreach(one, kk, vv) {
					if (json_is_array(vv)) {
						size_t j;
						json_t *e;

						json_array_foreach(vv, j, e) {
							char num[32];

							if (json_is_string(e))
								at_arg(&a, kk, json_string_value(e));
							else if (json_is_integer(e)) {
								snprintf(num, sizeof(num), "%lld",
									 (long long)json_integer_value(e));
								at_arg(&a, kk, num);
							}
						}
					} else if (json_is_string(vv)) {
						at_arg(&a, kk, json_string_value(vv));
					} else if (json_is_integer(vv)) {
						at_buf_printf(&a, "<h:%s>%lld</h:%s>", kk,
							      (long long)json_integer_value(vv), kk);
					} else if (json_is_boolean(vv)) {
						at_buf_printf(&a, "<h:%s>%s</h:%s>", kk,
							      json_is_true(vv) ? "true" : "false", kk);
					}
				}
				json_decref(one);
			}
		}
		s->step = 1;
		rc = at_wsman_invoke(s, cls, sel, m, a.p);
		at_buf_free(&a);
		return rc;
	}
	default:
		return amtprov_error_set(&s->err, AMTPROV_E_INTERNAL, NULL, "bad generic op");
	}
}

int at_get_modify_put(struct at_session *s, const char *cls, const json_t *sel,
		      const json_t *changes)
{
	return get_modify_put(s, cls, sel, changes);
}

int at_enum_all(struct at_session *s, const char *cls)
{
	return enum_all(s, cls);
}

json_t *at_body_instance(struct at_session *s, const char *cls)
{
	return body_instance(s, cls);
}

int at_epr_handle(struct at_session *s, const char *local, char *out, size_t n)
{
	return epr_handle(s, local, out, n);
}

struct op_desc {
	uint32_t op;
	const char *name;
	int (*fn)(struct at_session *s);
};

static int op_commit(struct at_session *s)
{
	return op_simple_method(s, SCS, "CommitChanges", NULL);
}

static int op_unprovision(struct at_session *s)
{
	return op_simple_method(s, SCS, "Unprovision",
				"<h:ProvisioningMode>1</h:ProvisioningMode>");
}

static const struct op_desc ops[] = {
	{AMTPROV_AMT_GET_CORE_VERSION, "GET_CORE_VERSION", op_core_version},
	{AMTPROV_AMT_GET_SETUP_STATE, "GET_SETUP_STATE", op_setup_state},
	{AMTPROV_AMT_GET_OTP_HASH, "GET_OTP_HASH", op_otp_hash},
	{AMTPROV_AMT_GET_HASHES, "GET_HASHES", op_hashes},
	{AMTPROV_AMT_SET_TIME, "SET_TIME", op_set_time},
	{AMTPROV_AMT_SET_HOST_NAME, "SET_HOST_NAME", op_host_name},
	{AMTPROV_AMT_GENERATE_KEY_PAIR, "GENERATE_KEY_PAIR", op_gen_key},
	{AMTPROV_AMT_SIGN_CSR, "SIGN_CSR", op_sign_csr},
	{AMTPROV_AMT_ADD_KEY, "ADD_KEY", op_add_key},
	{AMTPROV_AMT_ADD_CERTIFICATE, "ADD_CERTIFICATE", op_add_cert},
	{AMTPROV_AMT_ENABLE_TLS, "ENABLE_TLS", op_enable_tls},
	{AMTPROV_AMT_SET_ADMIN_PASSWORD, "SET_ADMIN_PASSWORD", op_admin_password},
	{AMTPROV_AMT_SET_MEBX_PASSWORD, "SET_MEBX_PASSWORD", op_mebx_password},
	{AMTPROV_AMT_COMMIT, "COMMIT", op_commit},
	{AMTPROV_AMT_UNPROVISION, "UNPROVISION", op_unprovision},
	{AMTPROV_AMT_SET_ACLS, "SET_ACLS", op_acls},
	{AMTPROV_AMT_SET_KERBEROS, "SET_KERBEROS", op_kerberos},
	{AMTPROV_AMT_SET_POWER_POLICY, "SET_POWER_POLICY", op_power_policy},
	{AMTPROV_AMT_SET_REDIRECTION, "SET_REDIRECTION", op_redirection},
	{AMTPROV_AMT_SET_PING, "SET_PING", op_ping},
	{AMTPROV_AMT_SET_8021X, "SET_8021X", at_op_8021x},
	{AMTPROV_AMT_GET_DEVICE_CERT, "GET_DEVICE_CERT", op_device_cert},
	{AMTPROV_AMT_DELETE_CERTIFICATE, "DELETE_CERTIFICATE", op_delete_cert},
	{AMTPROV_AMT_WSMAN_GET, "WSMAN_GET", op_generic},
	{AMTPROV_AMT_WSMAN_PUT, "WSMAN_PUT", op_generic},
	{AMTPROV_AMT_WSMAN_CREATE, "WSMAN_CREATE", op_generic},
	{AMTPROV_AMT_WSMAN_DELETE, "WSMAN_DELETE", op_generic},
	{AMTPROV_AMT_WSMAN_ENUMERATE, "WSMAN_ENUMERATE", op_generic},
	{AMTPROV_AMT_WSMAN_INVOKE, "WSMAN_INVOKE", op_generic},
	{AMTPROV_AMT_LIST_KEYS, "LIST_KEYS", at_op_pki},
	{AMTPROV_AMT_GET_KEY, "GET_KEY", at_op_pki},
	{AMTPROV_AMT_DELETE_KEY, "DELETE_KEY", at_op_pki},
	{AMTPROV_AMT_LIST_CERTIFICATES, "LIST_CERTIFICATES", at_op_pki},
	{AMTPROV_AMT_LIST_CERT_BINDINGS, "LIST_CERT_BINDINGS", at_op_pki},
	{AMTPROV_AMT_GET_WIRELESS, "GET_WIRELESS", at_op_pki},
	{AMTPROV_AMT_LIST_WIFI_PROFILES, "LIST_WIFI_PROFILES", at_op_pki},
	{AMTPROV_AMT_DELETE_WIFI_PROFILE, "DELETE_WIFI_PROFILE", at_op_pki},
	{0, NULL, NULL},
};

static const struct op_desc *find(uint32_t op)
{
	for (const struct op_desc *d = ops; d->name; d++)
		if (d->op == op)
			return d;
	return NULL;
}

int at_op_known(uint32_t op)
{
	return find(op) != NULL;
}

const char *at_op_name(uint32_t op)
{
	const struct op_desc *d = find(op);

	return d ? d->name : "UNKNOWN";
}

int at_op_step(struct at_session *s)
{
	const struct op_desc *d = find(s->op);

	if (!d)
		return amtprov_error_set(&s->err, AMTPROV_E_NOT_SUPPORTED, NULL, "unknown op");
	if (!s->scratch && !(s->scratch = json_object()))
		return amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory");
	s->req_sensitive = 0;
	return d->fn(s);
}
