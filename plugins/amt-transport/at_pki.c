/* SPDX-License-Identifier: Apache-2.0 */
/*
 * at_pki.c - the semantic operations on AMT's certificate store, what uses it, and the
 * wireless side of 802.1X (transport.h, ABI 1.1; docs/amt-transport.md): the core asks for
 * keys, certificates, bindings and wireless profiles, and this file knows they are
 * AMT_PublicPrivateKeyPair, AMT_PublicKeyCertificate, AMT_TLSCredentialContext,
 * CIM_CredentialContext, CIM_WiFiPort and CIM_WiFiEndpointSettings instances. Every answer
 * is a device's: a value of the wrong type is left out, never trusted.
 */
#include <string.h>

#include "at_internal.h"

#define KEY_PAIR "AMT_PublicPrivateKeyPair"
#define CERT "AMT_PublicKeyCertificate"
#define TLS_CTX "AMT_TLSCredentialContext"
#define CRED_CTX "CIM_CredentialContext"
#define LEGACY_8021X_CTX "AMT_8021xCredentialContext"
#define WIFI_PORT "CIM_WiFiPort"
#define WIFI_PROFILE "CIM_WiFiEndpointSettings"

static int result(struct at_session *s, json_t *r)
{
	if (!r)
		return amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory");
	json_decref(s->result);
	s->result = r;
	return AMTPROV_OK;
}

/* The handle parameter @p k, or an error naming it. */
static const char *handle_param(struct at_session *s, const char *k)
{
	const char *h = json_string_value(json_object_get(s->params, k));

	if (!h || !h[0])
		amtprov_error_set(&s->err, AMTPROV_E_INVALID, k, "%s: parameter \"%s\" must be a "
				  "string", at_op_name(s->op), k);
	return h && h[0] ? h : NULL;
}

static json_t *instance_sel(const char *id)
{
	return json_pack("{s:s}", "InstanceID", id);
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ---- key pairs ---- */

static json_t *key_json(const json_t *inst)
{
	json_t *k = json_pack("{s:s}", "key_handle", str(inst, "InstanceID"));

	if (k && str(inst, "DERKey"))
		json_object_set_new(k, "public_key_b64", json_string(str(inst, "DERKey")));
	return k;
}

/* Enumerates @p cls and answers {@p key: [map(item), ...]}; an item map() refuses (no
 * handle, a value of the wrong type) is left out. */
static int list_of(struct at_session *s, const char *cls, const char *key,
		   json_t *(*map)(const json_t *item))
{
	int rc = at_enum_all(s, cls);
	json_t *out, *it, *one;
	size_t i;

	if (rc != AMTPROV_OK)
		return rc;
	out = json_array();
	json_array_foreach(json_object_get(s->scratch, "items"), i, it)
		if (out && (one = map(it)))
			json_array_append_new(out, one);
	return result(s, out ? json_pack("{s:o}", key, out) : NULL);
}

static json_t *key_item(const json_t *it)
{
	return str(it, "InstanceID") ? key_json(it) : NULL;
}

static int op_list_keys(struct at_session *s)
{
	return list_of(s, KEY_PAIR, "keys", key_item);
}

static int op_get_key(struct at_session *s)
{
	const char *h = handle_param(s, "key_handle");
	json_t *sel, *inst, *k;
	int rc;

	if (!h)
		return s->err.code;
	if (s->step == 0) {
		sel = instance_sel(h);
		s->step = 1;
		rc = at_wsman_get(s, KEY_PAIR, sel);
		json_decref(sel);
		return rc;
	}
	inst = at_body_instance(s, KEY_PAIR);
	if (!inst)
		return s->err.code;
	if (!str(inst, "InstanceID"))
		json_object_set_new(inst, "InstanceID", json_string(h));
	k = key_json(inst);
	json_decref(inst);
	return result(s, k);
}

/* Deletes the instance of @p cls whose InstanceID is parameter @p k. */
static int delete_by_handle(struct at_session *s, const char *cls, const char *k)
{
	const char *h = handle_param(s, k);
	json_t *sel;
	int rc;

	if (!h)
		return s->err.code;
	if (s->step == 1)
		return result(s, json_object());
	sel = instance_sel(h);
	s->step = 1;
	rc = at_wsman_delete(s, cls, sel);
	json_decref(sel);
	return rc;
}

static int op_delete_key(struct at_session *s)
{
	return delete_by_handle(s, KEY_PAIR, "key_handle");
}

/* ---- certificates and what uses them ---- */

static json_t *cert_item(const json_t *it)
{
	json_t *c;

	if (!str(it, "InstanceID") || !str(it, "X509Certificate"))
		return NULL;
	c = json_pack("{s:s,s:s}", "cert_handle", str(it, "InstanceID"), "cert_der_b64",
		      str(it, "X509Certificate"));
	if (c && json_is_true(json_object_get(it, "TrustedRootCertficate")))
		json_object_set_new(c, "trusted_root", json_true());
	return c;
}

static int op_list_certs(struct at_session *s)
{
	return list_of(s, CERT, "certificates", cert_item);
}

/* The selector values (InstanceID) found in @p v, the EPR a context's ElementInContext is,
 * as at_xml_to_json renders it. */
static void epr_handles(const json_t *v, json_t *out, int selector)
{
	const char *k;
	json_t *e;
	size_t i;

	if (json_is_string(v) && selector) {
		for (i = 0; i < json_array_size(out); i++)
			if (!strcmp(json_string_value(json_array_get(out, i)), json_string_value(v)))
				return;
		json_array_append_new(out, json_string(json_string_value(v)));
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			epr_handles(e, out, selector);
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, e)
			epr_handles(e, out, !strcmp(k, "Selector") || !strcmp(k, "InstanceID"));
	}
}

static json_t *context_handles(const json_t *items)
{
	json_t *out = json_array(), *it;
	size_t i;

	json_array_foreach(items, i, it)
		if (out)
			epr_handles(json_object_get(it, "ElementInContext"), out, 0);
	return out;
}

/* {} -> {"tls":[cert_handle], "links":[cert_handle]}: the certificates the TLS server and
 * the 802.1X/wireless links are bound to. */
static int op_cert_bindings(struct at_session *s)
{
	static const char *const cls[] = {TLS_CTX, CRED_CTX, LEGACY_8021X_CTX};
	int rc = at_enum_all(s, cls[s->step]);
	json_t *links;

	if (rc != AMTPROV_OK)
		return rc;
	if (s->step == 0) {
		json_object_set_new(s->scratch, "tls",
				    context_handles(json_object_get(s->scratch, "items")));
		s->step = 1;
		return at_enum_all(s, CRED_CTX); /* enum state is back at 0: starts over */
	}
	links = context_handles(json_object_get(s->scratch, "items"));
	if (s->step == 1 && s->amt_major > 0 && s->amt_major < 11) {
		/* Below AMT 11 the wired profile is AMT_8021XProfile, whose certificate links
		 * are AMT_8021xCredentialContext instances (at_8021x.c). */
		json_object_set_new(s->scratch, "links", links);
		s->step = 2;
		return at_enum_all(s, LEGACY_8021X_CTX);
	}
	if (s->step == 2) {
		json_t *more = links, *v;
		size_t i;

		links = json_deep_copy(json_object_get(s->scratch, "links"));
		json_array_foreach(more, i, v)
			json_array_append(links, v);
		json_decref(more);
	}
	return result(s, json_pack("{s:O,s:o}", "tls", json_object_get(s->scratch, "tls"), "links",
				   links));
}

/* ---- the wireless side of 802.1X ---- */

static int op_wireless(struct at_session *s)
{
	int rc = at_enum_all(s, WIFI_PORT);

	if (rc != AMTPROV_OK)
		return rc;
	return result(s, json_pack("{s:b}", "wireless",
				   json_array_size(json_object_get(s->scratch, "items")) > 0));
}

static json_t *profile_item(const json_t *it)
{
	return str(it, "InstanceID") ? json_pack("{s:s}", "profile_handle", str(it, "InstanceID"))
				     : NULL;
}

static int op_list_wifi(struct at_session *s)
{
	return list_of(s, WIFI_PROFILE, "profiles", profile_item);
}

static int op_delete_wifi(struct at_session *s)
{
	return delete_by_handle(s, WIFI_PROFILE, "profile_handle");
}

int at_op_pki(struct at_session *s)
{
	switch (s->op) {
	case AMTPROV_AMT_LIST_KEYS:
		return op_list_keys(s);
	case AMTPROV_AMT_GET_KEY:
		return op_get_key(s);
	case AMTPROV_AMT_DELETE_KEY:
		return op_delete_key(s);
	case AMTPROV_AMT_LIST_CERTIFICATES:
		return op_list_certs(s);
	case AMTPROV_AMT_LIST_CERT_BINDINGS:
		return op_cert_bindings(s);
	case AMTPROV_AMT_GET_WIRELESS:
		return op_wireless(s);
	case AMTPROV_AMT_LIST_WIFI_PROFILES:
		return op_list_wifi(s);
	case AMTPROV_AMT_DELETE_WIFI_PROFILE:
		return op_delete_wifi(s);
	default:
		return amtprov_error_set(&s->err, AMTPROV_E_INTERNAL, NULL, "not a PKI operation");
	}
}
