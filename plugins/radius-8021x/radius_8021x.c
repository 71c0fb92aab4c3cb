/* SPDX-License-Identifier: Apache-2.0 */
/*
 * radius-8021x: the network-profile plugin (kind netprofile) for 802.1X against a RADIUS
 * server (R-8021X, R-PROV-11 3). It reads the manifest's validated `ieee8021x` section and
 *   - says which client certificates a device needs: one per profile that asks for one
 *     (EAP-TLS always, R-8021X-01), wireless ones only for wireless-capable devices;
 *   - warns (status 8209) when the profiles use more than one template (R-8021X-03);
 *   - renders the AMT settings of AMTPROV_AMT_SET_8021X, each profile bound to the handle of
 *     its own certificate (R-8021X-04).
 * It never talks to a CA or to AMT; secrets stay credential-store names.
 * AMT values: AMT-PROTOCOL.md §13 (CIM map for AuthenticationProtocol, 7 = WPA2 802.1X,
 * 4 = CCMP).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <amtprov/netprofile.h>

#define STATUS_8021X_TEMPLATES 8209
#define DEFAULT_TEMPLATE "(CA default)"
#define MAX_WIRELESS_TEMPLATES 8 /* R-8021X-03 */

struct r8_cfg {
	long long pxe_timeout;
	int available_in_s0;
	char *server_name_match;
};

struct r8 {
	const struct amtprov_host *host;
	struct r8_cfg cfg;
};

static const struct amtprov_config_field r8_table[] = {
	{"pxe_timeout", AMTPROV_CFG_INT, offsetof(struct r8_cfg, pxe_timeout), 0, "120", 0,
	 86400, "seconds AMT waits for 802.1X while the host PXE-boots (0: none)"},
	{"available_in_s0", AMTPROV_CFG_BOOL, offsetof(struct r8_cfg, available_in_s0), 0,
	 "true", 0, 0, "wired 802.1X also while the host OS runs (S0)"},
	{"server_name_match", AMTPROV_CFG_STRING, offsetof(struct r8_cfg, server_name_match), 0,
	 "full", 0, 0, "how AMT compares server_name with the RADIUS certificate: full|suffix"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

static int r8_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
	struct r8 *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	r->host = host;
	rc = host->config_parse(host, config, r8_table, &r->cfg, err);
	if (rc == AMTPROV_OK && strcmp(r->cfg.server_name_match, "full") != 0 &&
	    strcmp(r->cfg.server_name_match, "suffix") != 0)
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "server_name_match",
				       "server_name_match must be \"full\" or \"suffix\", not '%s'",
				       r->cfg.server_name_match);
	if (rc != AMTPROV_OK) {
		host->config_free(host, r8_table, &r->cfg);
		free(r);
		return rc;
	}
	*instance = r;
	return AMTPROV_OK;
}

static void r8_destroy(void *instance)
{
	struct r8 *r = instance;

	if (!r)
		return;
	r->host->config_free(r->host, r8_table, &r->cfg);
	free(r);
}

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The profiles a device gets, wired first: the wireless ones only when it has a wireless
 * port. Calls @p fn for each; stops at the first non-zero return. */
static int each_profile(const json_t *profiles, const struct amtprov_device_info *dev,
			int (*fn)(void *ctx, const json_t *p, int wireless), void *ctx)
{
	const json_t *wired = json_object_get(profiles, "wired");
	const json_t *wl = json_object_get(profiles, "wireless"), *p;
	size_t i;
	int rc;

	if (json_is_object(wired) && (rc = fn(ctx, wired, 0)) != 0)
		return rc;
	if (!dev || !dev->wireless_capable)
		return 0;
	json_array_foreach(wl, i, p)
		if (json_is_object(p) && (rc = fn(ctx, p, 1)) != 0)
			return rc;
	return 0;
}

struct needs_ctx {
	struct r8 *r;
	amtprov_netprofile_need_cb cb;
	void *cb_ctx;
	const char *templates[1 + 16], *wl_templates[16];
	size_t n_templates, n_wireless_templates;
	int rc;
};

static void add_distinct(const char **list, size_t *n, size_t max, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(list[i], s))
			return;
	if (*n < max)
		list[(*n)++] = s;
}

static int need_one(void *ctx, const json_t *p, int wireless)
{
	struct needs_ctx *n = ctx;
	const json_t *cc = json_object_get(p, "client_certificate");
	const char *tmpl;

	/* R-8021X-01: EAP-TLS always has one (the manifest refuses it otherwise); the
	 * MSCHAPv2 methods only when the profile asks. */
	if (!json_is_object(cc))
		return 0;
	tmpl = sget(cc, "template");
	add_distinct(n->templates, &n->n_templates, 17, tmpl ? tmpl : DEFAULT_TEMPLATE);
	if (wireless)
		add_distinct(n->wl_templates, &n->n_wireless_templates, 16,
			     tmpl ? tmpl : DEFAULT_TEMPLATE);
	{
		struct amtprov_netprofile_cert_need need = {
			.struct_size = sizeof(need),
			.profile = sget(p, "name"),
			.wireless = wireless,
			.ca_instance = sget(cc, "ca"),
			.template_name = tmpl,
		};

		return n->cb(n->cb_ctx, &need);
	}
}

static int r8_cert_needs(void *instance, const struct json_t *profiles,
			 const struct amtprov_device_info *device, amtprov_netprofile_need_cb cb,
			 void *ctx, struct amtprov_error *err)
{
	struct needs_ctx n = {.r = instance, .cb = cb, .cb_ctx = ctx};
	int rc;

	if (!json_is_object(profiles))
		return amtprov_error_set(err, AMTPROV_E_INVALID, "ieee8021x",
					 "no ieee8021x section to read");
	rc = each_profile(profiles, device, need_one, &n);
	if (rc != 0)
		return amtprov_error_set(err, rc < 0 ? AMTPROV_E_INTERNAL : rc, device->fqdn,
					 "the core refused a client-certificate need");
	if (n.n_wireless_templates > MAX_WIRELESS_TEMPLATES)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "ieee8021x/wireless",
					 "%zu client-certificate templates across the wireless "
					 "profiles; at most %d (R-8021X-03)", n.n_wireless_templates,
					 MAX_WIRELESS_TEMPLATES);
	if (n.n_templates > 1) {
		char list[256] = "";
		size_t len = 0;

		for (size_t i = 0; i < n.n_templates && len < sizeof(list); i++) {
			int w = snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
					 n.templates[i]);

			if (w < 0)
				break;
			len += (size_t)w;
		}
		n.r->host->status(n.r->host, STATUS_8021X_TEMPLATES, device->fqdn,
				  "802.1X client certificates from %zu templates (%s); one template "
				  "is best practice (R-8021X-03)", n.n_templates, list);
	}
	return AMTPROV_OK;
}

/* ---- render ---- */

struct render_ctx {
	struct r8 *r;
	const struct amtprov_device_info *dev;
	const struct amtprov_netprofile_cert *certs;
	size_t n_certs;
	json_t *wired;    /* null or the wired object */
	json_t *wireless; /* array */
	struct amtprov_error *err;
};

/* CIM_IEEE8021xSettings.AuthenticationProtocol (AMT-PROTOCOL.md §13.2). */
static int eap_protocol(const char *eap)
{
	if (!strcmp(eap, "eap-tls"))
		return 0;
	if (!strcmp(eap, "eap-ttls-mschapv2"))
		return 1;
	if (!strcmp(eap, "peap-mschapv2"))
		return 2;
	return -1;
}

/* base64 DER of the first certificate in a PEM file, or NULL with err set. */
static char *ca_der_b64(const char *path, struct amtprov_error *err)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	int n = x ? i2d_X509(x, &der) : -1;
	char *out = n > 0 ? malloc(4 * (((size_t)n + 2) / 3) + 1) : NULL;

	if (f)
		fclose(f);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, der, n);
	else
		amtprov_error_set(err, f ? AMTPROV_E_PARSE : AMTPROV_E_IO, path,
				  "server_ca '%s': %s", path,
				  f ? "no PEM certificate in it" : "cannot be read");
	OPENSSL_free(der);
	X509_free(x);
	return out;
}

static const struct amtprov_netprofile_cert *cert_for(struct render_ctx *c, const char *profile)
{
	for (size_t i = 0; i < c->n_certs; i++)
		if (c->certs[i].profile && profile && !strcmp(c->certs[i].profile, profile))
			return &c->certs[i];
	return NULL;
}

/* The 802.1X part both profile kinds share: protocol, identity, server check, the
 * password's credential name, and the bindings. */
static int ieee_part(struct render_ctx *c, const json_t *p, json_t *settings, json_t *out)
{
	const char *name = sget(p, "name"), *eap = sget(p, "eap"), *user = sget(p, "username");
	const char *server = sget(p, "server_name"), *ca = sget(p, "server_ca");
	const json_t *cc = json_object_get(p, "client_certificate");
	int proto = eap ? eap_protocol(eap) : -1;

	if (proto < 0)
		return amtprov_error_set(c->err, AMTPROV_E_CONFIG, name ? name : "?",
					 "profile '%s': unknown eap '%s'", name ? name : "?",
					 eap ? eap : "");
	json_object_set_new(settings, "AuthenticationProtocol", json_integer(proto));
	/* EAP-TLS identifies the device by its certificate; the identity names it too. */
	json_object_set_new(settings, "Username", json_string(user ? user : c->dev->fqdn));
	if (server) {
		json_object_set_new(settings, "ServerCertificateName", json_string(server));
		/* CIM map (2 FullName, 3 DomainSuffix); AMT-PROTOCOL.md §14.1 notes MeshCommander
		 * sending 0/1 instead. */
		json_object_set_new(settings, "ServerCertificateNameComparison",
				    json_integer(strcmp(c->r->cfg.server_name_match, "suffix") ? 2
												 : 3));
	}
	if (sget(p, "password"))
		json_object_set_new(out, "password_credential", json_string(sget(p, "password")));
	if (ca) {
		char *b = ca_der_b64(ca, c->err);

		if (!b)
			return c->err->code;
		json_object_set_new(out, "server_ca_der_b64", json_string(b));
		free(b);
	}
	if (json_is_object(cc)) {
		/* R-8021X-04: this profile's own certificate, no other. */
		const struct amtprov_netprofile_cert *mine = cert_for(c, name);

		if (!mine || !mine->cert_handle)
			return amtprov_error_set(c->err, AMTPROV_E_INVALID, name,
						 "profile '%s' has no client certificate of its own "
						 "installed (R-8021X-04)", name);
		json_object_set_new(out, "client_cert_handle", json_string(mine->cert_handle));
	}
	json_object_set_new(out, "name", json_string(name));
	return AMTPROV_OK;
}

static int render_one(void *ctx, const json_t *p, int wireless)
{
	struct render_ctx *c = ctx;
	json_t *out = json_object(), *settings = json_object(), *ieee = json_object();
	const char *name = sget(p, "name");
	int rc;

	if (!out || !settings || !ieee) {
		rc = amtprov_error_set(c->err, AMTPROV_E_NOMEM, NULL, "out of memory");
		goto fail;
	}
	rc = ieee_part(c, p, ieee, out);
	if (rc != AMTPROV_OK)
		goto fail;
	if (!wireless) {
		/* IPS_IEEE8021xSettings: Enabled 2 with certificates, 6 without (§13.1). */
		json_object_update(settings, ieee);
		json_object_set_new(settings, "ElementName", json_string(name));
		json_object_set_new(settings, "Enabled",
				    json_integer(json_object_get(out, "client_cert_handle") ? 2 : 6));
		json_object_set_new(settings, "AvailableInS0", json_boolean(c->r->cfg.available_in_s0));
		json_object_set_new(settings, "PxeTimeout", json_integer(c->r->cfg.pxe_timeout));
		json_object_set_new(out, "settings", settings);
		json_decref(ieee);
		c->wired = out;
		return 0;
	}
	if (strcmp(sget(p, "security") ? sget(p, "security") : "", "wpa2-enterprise") != 0) {
		/* §13.2 lists WPA3 SAE/OWE (personal) but no WPA3-Enterprise method. */
		rc = amtprov_error_set(c->err, AMTPROV_E_NOT_SUPPORTED, name,
				       "profile '%s': security '%s' has no AMT AuthenticationMethod "
				       "amtprov knows; use wpa2-enterprise", name,
				       sget(p, "security") ? sget(p, "security") : "");
		goto fail;
	}
	json_object_set_new(settings, "ElementName", json_string(name));
	json_object_set_new(settings, "SSID", json_string(sget(p, "ssid")));
	json_object_set_new(settings, "AuthenticationMethod", json_integer(7)); /* WPA2 802.1x */
	json_object_set_new(settings, "EncryptionMethod", json_integer(4));     /* CCMP */
	json_object_set_new(settings, "BSSType", json_integer(3));              /* infrastructure */
	json_object_set_new(settings, "Priority",
			    json_integer(json_is_integer(json_object_get(p, "priority"))
						 ? json_integer_value(json_object_get(p, "priority"))
						 : 1));
	json_object_set_new(ieee, "ElementName", json_string(name));
	json_object_set_new(out, "settings", settings);
	json_object_set_new(out, "ieee8021x", ieee);
	json_array_append_new(c->wireless, out);
	return 0;
fail:
	json_decref(out);
	json_decref(settings);
	json_decref(ieee);
	return rc ? rc : AMTPROV_E_INTERNAL;
}

static int r8_render(void *instance, const struct json_t *profiles,
		     const struct amtprov_device_info *device,
		     const struct amtprov_netprofile_cert *certs, size_t n_certs,
		     struct json_t **params, struct amtprov_error *err)
{
	struct render_ctx c = {.r = instance, .dev = device, .certs = certs, .n_certs = n_certs,
			       .wireless = json_array(), .err = err};
	int rc;

	if (!json_is_object(profiles) || !device || !device->fqdn) {
		json_decref(c.wireless);
		return amtprov_error_set(err, AMTPROV_E_INVALID, "ieee8021x",
					 "render needs the ieee8021x section and the device");
	}
	rc = each_profile(profiles, device, render_one, &c);
	if (rc != 0) {
		json_decref(c.wired);
		json_decref(c.wireless);
		return err->code ? err->code : rc;
	}
	*params = json_pack("{s:o, s:o}", "wired", c.wired ? c.wired : json_null(), "wireless",
			    c.wireless);
	return *params ? AMTPROV_OK : amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
}

static const struct amtprov_netprofile_ops r8_ops = {
	.struct_size = sizeof(struct amtprov_netprofile_ops),
	.cert_needs = r8_cert_needs,
	.render = r8_render,
};

static const char *const r8_caps[] = {AMTPROV_CAP_NETPROFILE_WIRED, AMTPROV_CAP_NETPROFILE_WIFI,
				      NULL};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_NETPROFILE, .name = "radius-8021x",
		      .version = "0.1.0",
		      .description = "802.1X wired and wireless profiles for a RADIUS server "
				     "(EAP-TLS, PEAP/TTLS-MSCHAPv2)",
		      .capabilities = r8_caps, .create = r8_create, .destroy = r8_destroy,
		      .ops = &r8_ops, .config_table = r8_table);
