/* SPDX-License-Identifier: Apache-2.0 */
/*
 * at_8021x.c - AMTPROV_AMT_SET_8021X (R-PROV-11 3, R-8021X-04), the params a netprofile
 * plugin renders:
 *   {"wired": null | {"settings": {IPS_IEEE8021xSettings properties}, "client_cert_handle"?,
 *                     "server_ca_der_b64"?, "password_credential"?},
 *    "wireless": [{"settings": {CIM_WiFiEndpointSettings}, "ieee8021x": {CIM_IEEE8021xSettings},
 *                  "client_cert_handle"?, "server_ca_der_b64"?, "password_credential"?}]}
 * Wired (AMT-PROTOCOL.md §13.1, Intel RPS's order): the RADIUS server's root as a trusted
 * root, Get + Put of IPS_IEEE8021xSettings, then SetCertificates binding the root and the
 * client certificate; "wired": null turns wired 802.1X off (Enabled 3). Wireless (§13.2):
 * the radio on (CIM_WiFiPort 32769), then per profile its root and AddWiFiSettings with its
 * own ClientCredential, so AMT links each certificate to its profile only. Passwords come
 * from the credential store by name and only into request bodies marked sensitive.
 * The caller deletes older wireless profiles first (AddWiFiSettings refuses a known name).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "at_internal.h"

#define IPS8021X "IPS_IEEE8021xSettings"
#define IPS8021X_ID "Intel(r) AMT: 8021X Settings"
#define LEGACY8021X "AMT_8021XProfile"
#define PKMS "AMT_PublicKeyManagementService"
#define RV_DUPLICATE 0x80A

enum {
	S_START,
	S_ROOT_ANSWER,   /* AddTrustedRootCertificate answered (0 or DUPLICATE) */
	S_ROOT_LOOKUP,   /* DUPLICATE: enumerating certificates for its handle */
	S_WIRED_PUT,
	S_WIRED_CERTS,
	S_WIFI_PORT,
	S_WIFI_NEXT,
	S_WIFI_ADD,
	S_WIFI_ADDED,
	S_DONE,
};

static json_int_t geti(struct at_session *s, const char *k)
{
	return json_integer_value(json_object_get(s->scratch, k));
}

static void seti(struct at_session *s, const char *k, json_int_t v)
{
	json_object_set_new(s->scratch, k, json_integer(v));
}

/* The profile being worked on: wired, or wireless[i]. */
static const json_t *current(struct at_session *s)
{
	if (geti(s, "wifi"))
		return json_array_get(json_object_get(s->params, "wireless"), (size_t)geti(s, "i"));
	return json_object_get(s->params, "wired");
}

static const char *cstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The profile's server root into AMT; then state @p after with scratch "root" set. */
static int add_root(struct at_session *s, int after)
{
	const char *blob = cstr(current(s), "server_ca_der_b64");
	struct at_buf a = {0};
	int rc;

	json_object_del(s->scratch, "root");
	if (!blob) {
		seti(s, "state", after);
		return AMTPROV_OK; /* nothing to send: go on */
	}
	seti(s, "after", after);
	seti(s, "state", S_ROOT_ANSWER);
	at_arg(&a, "CertificateBlob", blob);
	rc = at_wsman_invoke(s, PKMS, NULL, "AddTrustedRootCertificate", a.p);
	s->tolerate_rv = RV_DUPLICATE; /* AMT already holds it: find its handle */
	at_buf_free(&a);
	return rc;
}

static int root_answer(struct at_session *s)
{
	char h[256];

	if (s->last_rv == 0) {
		if (at_epr_handle(s, "CreatedCertificate", h, sizeof(h)))
			return s->err.code;
		json_object_set_new(s->scratch, "root", json_string(h));
		seti(s, "state", geti(s, "after"));
		return AMTPROV_OK;
	}
	json_object_del(s->scratch, "enum");
	seti(s, "state", S_ROOT_LOOKUP);
	return at_enum_all(s, "AMT_PublicKeyCertificate");
}

static int root_lookup(struct at_session *s)
{
	const char *blob = cstr(current(s), "server_ca_der_b64");
	json_t *items, *e;
	size_t i;
	int rc = at_enum_all(s, "AMT_PublicKeyCertificate");

	if (rc != AMTPROV_OK)
		return rc;
	items = json_object_get(s->scratch, "items");
	json_array_foreach(items, i, e) {
		const char *der = cstr(e, "X509Certificate"), *id = cstr(e, "InstanceID");

		if (der && id && blob && !strcmp(der, blob)) {
			json_object_set_new(s->scratch, "root", json_string(id));
			seti(s, "state", geti(s, "after"));
			return AMTPROV_OK;
		}
	}
	return amtprov_error_set(&s->err, AMTPROV_E_DEVICE, s->address,
				 "SET_8021X: AMT reports the RADIUS root as a duplicate but does "
				 "not list it");
}

/* A copy of @p settings with "Password" from the credential store when the profile names
 * one (@p with_password), NULL on error. The caller wipes it with wipe_password. */
static json_t *with_password(struct at_session *s, const json_t *prof, const json_t *settings,
			     int with_password)
{
	json_t *out = json_deep_copy(settings);
	const char *cred = cstr(prof, "password_credential");
	struct amtprov_secret *pw = NULL;

	if (!out) {
		amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory");
		return NULL;
	}
	if (!with_password || !cred)
		return out;
	if (s->in->host->secret_get(s->in->host, cred, &pw, &s->err) != AMTPROV_OK) {
		json_decref(out);
		return NULL;
	}
	json_object_set_new(out, "Password", json_stringn(pw->data, pw->len));
	s->in->host->secret_free(s->in->host, pw);
	return out;
}

static void wipe_password(json_t *o)
{
	json_t *pw = json_object_get(o, "Password");

	if (json_is_string(pw))
		OPENSSL_cleanse((char *)json_string_value(pw), json_string_length(pw));
	json_decref(o);
}

/* Below AMT 11 the wired profile is AMT_8021XProfile (Intel's class reference lists it from
 * 3.0; IPS_IEEE8021xSettings has Version=8.0.0 and Intel RPS, which uses it, targets newer
 * firmware): one Put carries the settings and the certificate references. */
static int legacy_wired(const struct at_session *s)
{
	return s->amt_major > 0 && s->amt_major < 11;
}

/* IPS_IEEE8021xSettings' CIM AuthenticationProtocol to AMT_8021XProfile's map
 * (AMT-PROTOCOL.md 13.1): 0-5 the same, EAP-FAST/TLS 10 -> 6; -1 when the class has none. */
static int legacy_protocol(json_int_t cim)
{
	return cim >= 0 && cim <= 5 ? (int)cim : cim == 10 ? 6 : -1;
}

/* The AMT_8021XProfile changes for @p settings (radius-8021x's IPS_IEEE8021xSettings
 * rendering), NULL with s->err set. */
static json_t *legacy_changes(struct at_session *s, const json_t *settings)
{
	static const char *const same[] = {"Username", "Password", "Domain", "RoamingIdentity",
					   "ServerCertificateName", "PxeTimeout"};
	const json_t *w = json_object_get(s->params, "wired");
	const char *root = cstr(s->scratch, "root"), *client = cstr(w, "client_cert_handle");
	json_t *proto = json_object_get(settings, "AuthenticationProtocol");
	json_t *cmp = json_object_get(settings, "ServerCertificateNameComparison");
	json_t *ch = json_object();
	int p = proto ? legacy_protocol(json_integer_value(proto)) : 0;

	if (!ch) {
		amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory");
		return NULL;
	}
	if (!json_is_object(settings)) {
		/* No wired profile: 802.1X off, its certificate links gone. */
		json_object_set_new(ch, "Enabled", json_false());
		return ch;
	}
	if (p < 0) {
		json_decref(ch);
		amtprov_error_set(&s->err, AMTPROV_E_NOT_SUPPORTED, "wired",
				  "SET_8021X: AMT %d configures wired 802.1X through AMT_8021XProfile, "
				  "which has no EAP method %lld (it has EAP-TLS, TTLS/MSCHAPv2, "
				  "PEAP/MSCHAPv2, EAP-GTC, EAP-FAST/MSCHAPv2, /GTC, /TLS)",
				  s->amt_major, (long long)json_integer_value(proto));
		return NULL;
	}
	json_object_set_new(ch, "Enabled",
			    json_boolean(json_integer_value(json_object_get(settings, "Enabled")) != 3));
	json_object_set_new(ch, "AuthenticationProtocol", json_integer(p));
	if (json_is_boolean(json_object_get(settings, "AvailableInS0")))
		json_object_set(ch, "ActiveInS0", json_object_get(settings, "AvailableInS0"));
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		if (json_object_get(settings, same[i]))
			/* A copy: the caller wipes the settings' password in place. */
			json_object_set_new(ch, same[i],
					    json_deep_copy(json_object_get(settings, same[i])));
	if (cmp) {
		/* The AMT class: 0 FullName, 1 DomainSuffix; the CIM map: 2 and 3. */
		json_int_t c = json_integer_value(cmp);

		json_object_set_new(ch, "ServerCertificateNameComparison",
				    json_integer(c >= 2 ? c - 2 : c));
	}
	if (client)
		json_object_set_new(ch, "ClientCertificate",
				    json_pack("{ssssss}", "epr_class", "AMT_PublicKeyCertificate",
					      "selector", "InstanceID", "value", client));
	if (root)
		json_object_set_new(ch, "ServerCertificateIssuer",
				    json_pack("{ssssss}", "epr_class", "AMT_PublicKeyCertificate",
					      "selector", "InstanceID", "value", root));
	return ch;
}

static int wired_put(struct at_session *s)
{
	const json_t *w = json_object_get(s->params, "wired");
	json_t *ch;
	int rc;

	if (json_is_object(w)) {
		if (!json_is_object(json_object_get(w, "settings")))
			return amtprov_error_set(&s->err, AMTPROV_E_INVALID, "wired",
						 "SET_8021X: wired needs \"settings\"");
		/* The Put (step 1) carries the password; the Get before it does not. */
		ch = with_password(s, w, json_object_get(w, "settings"), s->step == 1);
		if (ch && legacy_wired(s)) {
			json_t *l = legacy_changes(s, ch);

			wipe_password(ch);
			ch = l;
		}
	} else if (legacy_wired(s)) {
		ch = legacy_changes(s, NULL);
	} else {
		ch = json_pack("{si}", "Enabled", 3); /* no wired profile: 802.1X off */
	}
	if (!ch)
		return s->err.code;
	s->req_sensitive = 1;
	rc = at_get_modify_put(s, legacy_wired(s) ? LEGACY8021X : IPS8021X, NULL, ch);
	wipe_password(ch);
	return rc;
}

static int wired_certs(struct at_session *s)
{
	const json_t *w = json_object_get(s->params, "wired");
	const char *root = cstr(s->scratch, "root"), *client = cstr(w, "client_cert_handle");
	struct at_buf a = {0};
	json_t *sel;
	int rc;

	seti(s, "state", S_WIFI_PORT);
	if (!json_is_object(w) || (!root && !client))
		return AMTPROV_OK;
	if (root)
		at_arg_epr(&a, "ServerCertificateIssuer", "AMT_PublicKeyCertificate", "InstanceID",
			   root);
	if (client)
		at_arg_epr(&a, "ClientCertificate", "AMT_PublicKeyCertificate", "InstanceID",
			   client);
	sel = json_pack("{ss}", "InstanceID", IPS8021X_ID);
	rc = at_wsman_invoke(s, IPS8021X, sel, "SetCertificates", a.p);
	json_decref(sel);
	at_buf_free(&a);
	return rc;
}

static int wifi_add(struct at_session *s)
{
	const json_t *p = current(s);
	const json_t *settings = json_object_get(p, "settings"), *ieee = json_object_get(p, "ieee8021x");
	const char *root = cstr(s->scratch, "root"), *client = cstr(p, "client_cert_handle");
	struct at_buf a = {0};
	json_t *x;
	int rc;

	if (!json_is_object(settings) || !json_is_object(ieee))
		return amtprov_error_set(&s->err, AMTPROV_E_INVALID, "wireless",
					 "SET_8021X: a wireless profile needs \"settings\" and "
					 "\"ieee8021x\"");
	x = with_password(s, p, ieee, 1);
	if (!x)
		return s->err.code;
	at_arg_epr(&a, "WiFiEndpoint", "CIM_WiFiEndpoint", "Name", "WiFi Endpoint 0");
	at_arg_instance(&a, "WiFiEndpointSettingsInput", "CIM_WiFiEndpointSettings", settings);
	at_arg_instance(&a, "IEEE8021xSettingsInput", "CIM_IEEE8021xSettings", x);
	wipe_password(x);
	if (client)
		at_arg_epr(&a, "ClientCredential", "AMT_PublicKeyCertificate", "InstanceID", client);
	if (root)
		at_arg_epr(&a, "CACredential", "AMT_PublicKeyCertificate", "InstanceID", root);
	seti(s, "state", S_WIFI_ADDED);
	rc = at_wsman_invoke(s, "AMT_WiFiPortConfigurationService", NULL, "AddWiFiSettings", a.p);
	s->req_sensitive = 1;
	if (a.p)
		OPENSSL_cleanse(a.p, a.len);
	at_buf_free(&a);
	return rc;
}

static int set_result_8021x(struct at_session *s)
{
	const json_t *w = json_object_get(s->params, "wired");
	json_t *r = json_pack("{sb sI}", "wired", json_is_object(w), "wireless",
			      (json_int_t)json_array_size(json_object_get(s->params, "wireless")));

	if (!r)
		return amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory");
	json_decref(s->result);
	s->result = r;
	return AMTPROV_OK;
}

int at_op_8021x(struct at_session *s)
{
	const json_t *wl = json_object_get(s->params, "wireless");
	const json_t *w = json_object_get(s->params, "wired");
	int rc;

	if (w && !json_is_null(w) && !json_is_object(w))
		return amtprov_error_set(&s->err, AMTPROV_E_INVALID, "wired",
					 "SET_8021X: \"wired\" must be an object or null");
	if (wl && !json_is_array(wl))
		return amtprov_error_set(&s->err, AMTPROV_E_INVALID, "wireless",
					 "SET_8021X: \"wireless\" must be an array");
	for (;;) {
		switch ((int)geti(s, "state")) {
		case S_START:
			s->step = 0;
			seti(s, "state", S_WIRED_PUT);
			rc = json_is_object(w) ? add_root(s, S_WIRED_PUT) : AMTPROV_OK;
			break;
		case S_ROOT_ANSWER:
			rc = root_answer(s);
			break;
		case S_ROOT_LOOKUP:
			rc = root_lookup(s);
			break;
		case S_WIRED_PUT:
			rc = wired_put(s);
			if (rc == AMTPROV_OK) {
				s->step = 0;
				/* AMT_8021XProfile's Put bound the certificates already. */
				seti(s, "state", legacy_wired(s) ? S_WIFI_PORT : S_WIRED_CERTS);
			}
			break;
		case S_WIRED_CERTS:
			rc = wired_certs(s);
			break;
		case S_WIFI_PORT:
			seti(s, "wifi", 1);
			seti(s, "i", 0);
			seti(s, "state", S_WIFI_NEXT);
			if (!json_array_size(wl)) {
				seti(s, "state", S_DONE);
				rc = AMTPROV_OK;
				break;
			}
			/* The radio on in S0 and in sleep states on AC (§13.2). */
			rc = at_wsman_invoke(s, "CIM_WiFiPort", NULL, "RequestStateChange",
					     "<h:RequestedState>32769</h:RequestedState>");
			break;
		case S_WIFI_NEXT:
			if ((size_t)geti(s, "i") >= json_array_size(wl)) {
				seti(s, "state", S_DONE);
				rc = AMTPROV_OK;
				break;
			}
			rc = add_root(s, S_WIFI_ADD);
			break;
		case S_WIFI_ADD:
			rc = wifi_add(s);
			break;
		case S_WIFI_ADDED:
			seti(s, "i", geti(s, "i") + 1);
			seti(s, "state", S_WIFI_NEXT);
			rc = AMTPROV_OK;
			break;
		case S_DONE:
		default:
			return set_result_8021x(s);
		}
		if (rc != AMTPROV_OK)
			return rc;
	}
}
