/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Second-stage classes other than the certificate store (AMT-PROTOCOL.md §4, §8, §13):
 * time synchronisation, Kerberos, redirection, web UI, power schemes, Ethernet port Put,
 * host-based setup, wired 802.1X (AMT_8021XProfile and IPS_IEEE8021xSettings), wireless
 * (CIM_WiFiPort, CIM_WiFiEndpointSettings, AMT_WiFiPortConfigurationService) and
 * CIM_CredentialContext.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "setup_ops.h"
#include "tls.h"
#include "x509util.h"
#include "wsman_int.h"

static void singleton(struct sbuf *b, const char *cls, const char *name)
{
	wm_ps(b, "CreationClassName", cls);
	wm_ps(b, "ElementName", name);
	wm_pi(b, "EnabledState", 5);
	wm_ps(b, "Name", name);
	wm_pi(b, "RequestedState", 12);
	wm_ps(b, "SystemCreationClassName", "CIM_ComputerSystem");
	wm_ps(b, "SystemName", "Intel(r) AMT");
}

static int cert_index(const struct device *d, uint32_t h)
{
	for (int i = 0; i < d->n_certs; i++)
		if (d->certs[i].handle == h)
			return i;
	return -1;
}

/* A certificate reference argument (EPR or bare InstanceID). @return 0 (absent: *h = 0),
 * 1 found, -1 names nothing in the store. */
static int cert_ref(const struct device *d, xmlNodePtr arg, uint32_t *h)
{
	char id[256];

	*h = 0;
	if (!arg)
		return 0;
	wm_ref_selector(arg, id, sizeof(id));
	if (wm_parse_handle(id, CERT_ID_PREFIX, h) != 0 || cert_index(d, *h) < 0)
		return -1;
	return 1;
}

static int add_ctx(struct device *d, const char *type, uint32_t h, const char *providing)
{
	struct dev_ctx *c;

	if (!h)
		return 0;
	if (d->n_ctx >= DEV_MAX_CTX)
		return -1;
	c = &d->ctxs[d->n_ctx++];
	memset(c, 0, sizeof(*c));
	sim_strlcpy(c->type, type, sizeof(c->type));
	c->cert_handle = h;
	sim_strlcpy(c->providing, providing, sizeof(c->providing));
	return 0;
}

static void drop_ctx(struct device *d, const char *type, const char *providing)
{
	int j = 0;

	for (int i = 0; i < d->n_ctx; i++)
		if (strcmp(d->ctxs[i].type, type) || (providing && strcmp(d->ctxs[i].providing, providing)))
			d->ctxs[j++] = d->ctxs[i];
	d->n_ctx = j;
}

/* ---- AMT_TimeSynchronizationService ------------------------------------------------------- */

#define TIMESYNC_NAME "Intel(r) AMT Time Synchronization Service"

int r_timesync(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	if (idx)
		return -1;
	sim_strlcpy(key, TIMESYNC_NAME, ks);
	singleton(b, "AMT_TimeSynchronizationService", TIMESYNC_NAME);
	wm_pi(b, "LocalTimeSyncEnabled", 0);
	wm_pi(b, "TimeSource", 1);
	return 0;
}

static int m_get_time(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		      struct http_response *r)
{
	wm_pi(out, "Ta0", setup_device_time(d));
	return 0;
}

static int m_set_time(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		      struct http_response *r)
{
	char s[3][24];

	wm_arg(in, "Ta0", s[0], sizeof(s[0]));
	wm_arg(in, "Tm1", s[1], sizeof(s[1]));
	wm_arg(in, "Tm2", s[2], sizeof(s[2]));
	return setup_set_time(d, s[0], s[1], s[2]);
}

const struct method timesync_methods[] = {
	{"GetLowAccuracyTimeSynch", m_get_time},
	{"SetHighAccuracyTimeSynch", m_set_time},
	{NULL, NULL},
};

/* ---- AMT_KerberosSettingData -------------------------------------------------------------- */

int r_kerberos(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	const struct dev_kerberos *k = &d->kerberos;

	if (idx)
		return -1;
	sim_strlcpy(key, "Intel (r) AMT: Kerberos Settings", ks);
	wm_pi(b, "ConfiguredEncryptionAlgorithms", k->encryption_algorithm);
	wm_ps(b, "ElementName", "Intel (r) AMT: Kerberos Settings");
	wm_pi(b, "EncryptionAlgorithm", k->encryption_algorithm);
	wm_ps(b, "InstanceID", key);
	wm_pi(b, "KeyVersion", k->key_version);
	wm_pb(b, "KrbEnabled", k->enabled);
	wm_pi(b, "MaximumClockTolerance", k->clock_tolerance);
	if (k->realm[0])
		wm_ps(b, "RealmName", k->realm);
	for (int i = 0; i < k->n_spn; i++)
		wm_ps(b, "ServicePrincipalName", k->spn[i]);
	for (int i = 0; i < k->n_spn; i++)
		wm_pi(b, "ServicePrincipalProtocol", k->spn_protocol[i]);
	wm_pi(b, "SupportedEncryptionAlgorithms", 0);
	wm_pi(b, "SupportedEncryptionAlgorithms", 1);
	wm_pi(b, "SupportedEncryptionAlgorithms", 2);
	return 0;
}

/* An integer property of a Put, if present, in [min, max]: 0, or -1 when out of range. */
static int put_int(xmlNodePtr inst, const char *name, long long min, long long max, int *out)
{
	xmlNodePtr n = xml_child(inst, NULL, name);
	long long v;
	char s[32];

	if (!n)
		return 0;
	xml_text(n, s, sizeof(s));
	if (sim_parse_ll(s, min, max, &v) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

/* Put (AMT-PROTOCOL.md 8.4): what amtprov's second stage writes. Checked as the firmware
 * would: a realm, SPNs with one protocol each, a key version and a 128-bit MasterKey before
 * KrbEnabled may be true. Applies at once (the Kerberos acceptor uses it, sim/negotiate.c). */
int p_kerberos(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	       struct http_response *r)
{
	struct dev_kerberos k = d->kerberos;
	int n_proto = 0, have_spn = 0;
	unsigned char *key = NULL;
	size_t key_len = 0;
	long long v;
	char s[192];
	xmlNodePtr n;

	(void)idx;
	for (xmlNodePtr c = inst->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		xml_text(c, s, sizeof(s));
		if (!strcmp((const char *)c->name, "ServicePrincipalName")) {
			if (!have_spn++)
				k.n_spn = 0;
			if (k.n_spn >= DEV_MAX_SPN || !s[0] || strlen(s) >= sizeof(k.spn[0])) {
				wm_fault_invalid(r, w, "Too many, empty or too long ServicePrincipalName values.");
				return -1;
			}
			sim_strlcpy(k.spn[k.n_spn++], s, sizeof(k.spn[0]));
		} else if (!strcmp((const char *)c->name, "ServicePrincipalProtocol")) {
			if (n_proto >= DEV_MAX_SPN || sim_parse_ll(s, 0, 3, &v) != 0) {
				wm_fault_invalid(r, w, "ServicePrincipalProtocol is 0..3, one per SPN.");
				return -1;
			}
			k.spn_protocol[n_proto++] = (int)v;
		}
	}
	if (have_spn && n_proto != k.n_spn) {
		wm_fault_invalid(r, w, "ServicePrincipalProtocol needs one value per ServicePrincipalName.");
		return -1;
	}
	if ((n = xml_child(inst, NULL, "RealmName"))) {
		xml_text(n, s, sizeof(s));
		if (strlen(s) >= sizeof(k.realm)) {
			wm_fault_invalid(r, w, "RealmName is too long.");
			return -1;
		}
		sim_strlcpy(k.realm, s, sizeof(k.realm));
	}
	/* this simulated firmware takes the RC4-HMAC MasterKey only (EncryptionAlgorithm 0) */
	if (put_int(inst, "KeyVersion", 0, 0x7fffffff, &k.key_version) ||
	    put_int(inst, "EncryptionAlgorithm", 0, 0, &k.encryption_algorithm) ||
	    put_int(inst, "MaximumClockTolerance", 1, 60, &k.clock_tolerance)) {
		wm_fault_invalid(r, w, "KeyVersion is an unsigned integer, EncryptionAlgorithm 0 "
				       "(RC4-HMAC), MaximumClockTolerance 1..60 minutes.");
		return -1;
	}
	if ((n = xml_child(inst, NULL, "MasterKey"))) {
		xml_text(n, s, sizeof(s));
		if (sim_b64_decode(s, &key, &key_len) != 0 || key_len != 16) {
			if (key)
				OPENSSL_clear_free(key, key_len);
			OPENSSL_cleanse(s, sizeof(s));
			wm_fault_invalid(r, w, "MasterKey is a base64 128-bit key.");
			return -1;
		}
		OPENSSL_clear_free(key, key_len);
		sim_strlcpy(k.master_key_b64, s, sizeof(k.master_key_b64));
		OPENSSL_cleanse(s, sizeof(s));
	}
	if ((n = xml_child(inst, NULL, "KrbEnabled"))) {
		bool b;

		xml_text(n, s, sizeof(s));
		if (wm_bool(s, &b) != 0) {
			wm_fault_invalid(r, w, "KrbEnabled is a boolean.");
			return -1;
		}
		k.enabled = b;
	}
	if (k.enabled && (!k.realm[0] || !k.n_spn || !k.key_version || !k.master_key_b64[0])) {
		wm_fault_invalid(r, w, "Kerberos needs RealmName, ServicePrincipalName, KeyVersion and MasterKey.");
		return -1;
	}
	if (!device_flash_write(d)) {
		wm_fault_internal(r, w, "Flash write limit reached.");
		return -1;
	}
	d->kerberos = k;
	OPENSSL_cleanse(&k, sizeof(k));
	device_audit(d, "AMT_KerberosSettingData Put: KrbEnabled=%d realm %s, %d SPNs, key version %d",
		     d->kerberos.enabled, d->kerberos.realm, d->kerberos.n_spn, d->kerberos.key_version);
	d->dirty = true;
	return 0;
}

static int m_get_ccache(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
			struct http_response *r)
{
	wm_pb(out, "Enabled", d->krb_credential_cache);
	return 0;
}

static int m_set_ccache(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
			struct http_response *r)
{
	char s[16];
	bool v;

	wm_arg(in, "Enabled", s, sizeof(s));
	if (wm_bool(s, &v) != 0)
		return 36; /* missing or not a boolean */
	d->krb_credential_cache = v;
	return 0;
}

const struct method kerberos_methods[] = {
	{"GetCredentialCacheState", m_get_ccache},
	{"SetCredentialCacheState", m_set_ccache},
	{NULL, NULL},
};

/* ---- AMT_RedirectionService --------------------------------------------------------------- */

#define REDIR_NAME "Intel(r) AMT Redirection Service"

int r_redir(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	if (idx)
		return -1;
	sim_strlcpy(key, REDIR_NAME, ks);
	wm_ps(b, "CreationClassName", "AMT_RedirectionService");
	wm_ps(b, "ElementName", REDIR_NAME);
	/* 32768 + bit 0 IDER + bit 1 SOL (AMT-PROTOCOL.md §8.8). */
	wm_pi(b, "EnabledState", 32768 + (d->ider_enabled ? 1 : 0) + (d->sol_enabled ? 2 : 0));
	wm_pb(b, "ListenerEnabled", d->redirection_listener);
	wm_ps(b, "Name", REDIR_NAME);
	wm_ps(b, "SystemCreationClassName", "CIM_ComputerSystem");
	wm_ps(b, "SystemName", "Intel(r) AMT");
	return 0;
}

static int set_redir_state(struct device *d, long long st)
{
	if (st < 32768 || st > 32771)
		return 5; /* invalid parameter */
	d->ider_enabled = st & 1;
	d->sol_enabled = (st & 2) != 0;
	device_audit(d, "redirection: SOL %s, IDER %s", d->sol_enabled ? "on" : "off",
		     d->ider_enabled ? "on" : "off");
	return 0;
}

int p_redir(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	    struct http_response *r)
{
	char s[16];
	bool v;
	long long st;
	xmlNodePtr n;

	if ((n = xml_child(inst, NULL, "ListenerEnabled"))) {
		xml_text(n, s, sizeof(s));
		if (wm_bool(s, &v) != 0) {
			wm_fault_invalid(r, w, "ListenerEnabled is a boolean.");
			return -1;
		}
		d->redirection_listener = v;
	}
	if ((n = xml_child(inst, NULL, "EnabledState"))) {
		xml_text(n, s, sizeof(s));
		if (sim_parse_ll(s, 0, 65535, &st) != 0 || set_redir_state(d, st) != 0) {
			wm_fault_invalid(r, w, "EnabledState must be 32768..32771.");
			return -1;
		}
	}
	device_audit(d, "AMT_RedirectionService Put: listener %s", d->redirection_listener ? "on" : "off");
	d->dirty = true;
	return 0;
}

static int m_redir_rsc(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		       struct http_response *r)
{
	char s[16];
	long long st;

	wm_arg(in, "RequestedState", s, sizeof(s));
	if (sim_parse_ll(s, 0, 65535, &st) != 0)
		return 5;
	return set_redir_state(d, st);
}

const struct method redir_methods[] = {
	{"RequestStateChange", m_redir_rsc},
	{NULL, NULL},
};

/* ---- AMT_WebUIService ---------------------------------------------------------------------- */

/* The AMT web interface on 16992/16993 (R-PROV-11 2). RequestStateChange 2 enables it, 3
 * disables it; EnabledState reads back 2 or 3 (MeshCentral also counts 6 as enabled). The
 * instance Name is not confirmed by a capture. */
#define WEBUI_NAME "Intel(r) AMT Web Browser UI Service"

int r_webui(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	if (idx)
		return -1;
	sim_strlcpy(key, WEBUI_NAME, ks);
	wm_ps(b, "CreationClassName", "AMT_WebUIService");
	wm_ps(b, "ElementName", WEBUI_NAME);
	wm_pi(b, "EnabledState", d->web_ui_enabled ? 2 : 3);
	wm_ps(b, "Name", WEBUI_NAME);
	wm_pi(b, "RequestedState", d->web_ui_enabled ? 2 : 3);
	wm_ps(b, "SystemCreationClassName", "CIM_ComputerSystem");
	wm_ps(b, "SystemName", "Intel(r) AMT");
	return 0;
}

static int m_webui_rsc(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		       struct http_response *r)
{
	char s[16];
	long long st;

	wm_arg(in, "RequestedState", s, sizeof(s));
	if (sim_parse_ll(s, 0, 65535, &st) != 0 || (st != 2 && st != 3))
		return 5; /* invalid parameter */
	d->web_ui_enabled = st == 2;
	device_audit(d, "web UI %s", d->web_ui_enabled ? "enabled" : "disabled");
	return 0;
}

const struct method webui_methods[] = {
	{"RequestStateChange", m_webui_rsc},
	{NULL, NULL},
};

/* ---- AMT_SystemPowerScheme ---------------------------------------------------------------- */

static const struct {
	const char *id;
	const char *guid_hex;
	const char *desc;
} schemes[] = {
	{"SCHEME 1", "a1b2c3d4000000000000000000000001", "Desktop: ON in S0"},
	{"SCHEME 2", "a1b2c3d4000000000000000000000002", "Desktop: ON in S0, ME Wake in S3, S4-5"},
	{"SCHEME 3", "a1b2c3d4000000000000000000000003",
	 "Mobile: ON in S0, ME Wake in S3, S4-5 (AC only)"},
};

int r_power(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	unsigned char g[16];
	char *b64;

	if (idx < 0 || idx >= (int)(sizeof(schemes) / sizeof(schemes[0])))
		return -1;
	sim_strlcpy(key, schemes[idx].id, ks);
	sim_unhex(schemes[idx].guid_hex, g, sizeof(g));
	b64 = sim_b64_encode(g, sizeof(g));
	wm_ps(b, "Description", schemes[idx].desc);
	wm_ps(b, "ElementName", schemes[idx].id);
	wm_ps(b, "InstanceID", schemes[idx].id);
	wm_pb(b, "IsActive", !strcmp(d->power_scheme, schemes[idx].id));
	wm_ps(b, "SchemeGUID", b64 ? b64 : "");
	free(b64);
	return 0;
}

static int m_set_scheme(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
			struct http_response *r)
{
	const char *id = wm_sel(w, "InstanceID");

	/* An instance method: the scheme is named by the selector. */
	for (size_t i = 0; id && i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strcmp(id, schemes[i].id))
			continue;
		sim_strlcpy(d->power_scheme, id, sizeof(d->power_scheme));
		device_audit(d, "SetPowerScheme: %s", id);
		return 0;
	}
	wm_fault_selectors(r, w);
	return -1;
}

const struct method power_methods[] = {
	{"SetPowerScheme", m_set_scheme},
	{NULL, NULL},
};

/* ---- AMT_EthernetPortSettings Put ---------------------------------------------------------- */

static bool valid_ipv4(const char *s)
{
	struct in_addr a;

	return inet_pton(AF_INET, s, &a) == 1;
}

int p_ethernet(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	       struct http_response *r)
{
	struct dev_port p = idx ? d->wireless : d->wired;
	char s[64];
	struct {
		const char *name;
		bool *v;
	} bools[] = {{"DHCPEnabled", &p.dhcp}, {"IpSyncEnabled", &p.ip_sync},
		     {"SharedStaticIp", &p.shared_static_ip}};
	struct {
		const char *name;
		char *v;
	} ips[] = {{"IPAddress", p.ip}, {"SubnetMask", p.mask}, {"DefaultGateway", p.gateway},
		   {"PrimaryDNS", p.dns1}, {"SecondaryDNS", p.dns2}};

	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		xmlNodePtr n = xml_child(inst, NULL, bools[i].name);

		if (!n)
			continue;
		xml_text(n, s, sizeof(s));
		if (wm_bool(s, bools[i].v) != 0) {
			wm_fault_invalid(r, w, "DHCPEnabled/IpSyncEnabled/SharedStaticIp are booleans.");
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		xmlNodePtr n = xml_child(inst, NULL, ips[i].name);

		if (!n)
			continue;
		xml_text(n, s, sizeof(s));
		if (s[0] && !valid_ipv4(s)) {
			wm_fault_invalid(r, w, "Not an IPv4 address.");
			return -1;
		}
		sim_strlcpy(ips[i].v, s, 46);
	}
	/* The wireless port's IP is DHCP only, shared with the host (§8.7). */
	if (idx == 1 && !p.dhcp) {
		wm_fault_invalid(r, w, "The wireless port supports DHCP only.");
		return -1;
	}
	/* Static and not synced with the OS: AMT needs its own address and mask. */
	if (!p.dhcp && !p.ip_sync && (!p.ip[0] || !p.mask[0])) {
		wm_fault_invalid(r, w, "A static address needs IPAddress and SubnetMask.");
		return -1;
	}
	if (p.dhcp) {
		p.shared_static_ip = false;
		if (!p.ip_sync)
			p.ip_sync = true;
	}
	if (idx)
		d->wireless = p;
	else
		d->wired = p;
	device_audit(d, "AMT_EthernetPortSettings %d: DHCP %s, IP sync %s, shared static %s%s%s",
		     idx, p.dhcp ? "on" : "off", p.ip_sync ? "on" : "off",
		     p.shared_static_ip ? "on" : "off", p.dhcp ? "" : ", ", p.dhcp ? "" : p.ip);
	return 0;
}

/* ---- IPS_HostBasedSetupService ---------------------------------------------------------- */

#define HBS_NAME "Intel(r) AMT Host Based Setup Service"

int r_hbs(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	char *nonce;

	if (idx)
		return -1;
	sim_strlcpy(key, HBS_NAME, ks);
	wm_pi(b, "AllowedControlModes", 1);
	wm_pi(b, "AllowedControlModes", 2);
	wm_pi(b, "CertChainStatus", d->hbs_chain_complete ? 2 : d->hbs_chain_len ? 1 : 0);
	nonce = sim_b64_encode(d->hbs_nonce, sizeof(d->hbs_nonce));
	wm_ps(b, "ConfigurationNonce", nonce ? nonce : "");
	free(nonce);
	wm_ps(b, "CreationClassName", "IPS_HostBasedSetupService");
	wm_pi(b, "CurrentControlMode",
	      d->prov_state == DEV_POST ? (d->control_mode == DEV_CM_CCM ? 1 : 2) : 0);
	wm_ps(b, "ElementName", HBS_NAME);
	wm_pi(b, "EnabledState", 5);
	wm_ps(b, "Name", HBS_NAME);
	wm_pi(b, "RequestedState", 12);
	wm_ps(b, "SystemCreationClassName", "CIM_ComputerSystem");
	wm_ps(b, "SystemName", "Intel(r) AMT");
	return 0;
}

/* NetworkAdminPassword: 32 hex of MD5("admin:" realm ":" pw) (§9.3). */
static int hbs_password(struct device *d, xmlNodePtr in)
{
	char enc[16], pw[64];
	unsigned char bin[16];

	wm_arg(in, "NetAdminPassEncryptionType", enc, sizeof(enc));
	wm_arg(in, "NetworkAdminPassword", pw, sizeof(pw));
	if (strcmp(enc, "2") != 0 || strlen(pw) != 32 || sim_unhex(pw, bin, sizeof(bin)) != 16)
		return 3; /* invalid parameter */
	sim_hex(bin, 16, d->admin_ha1, false);
	sim_strlcpy(d->admin_user, "admin", sizeof(d->admin_user));
	return 0;
}

static int m_hbs_setup(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		       struct http_response *r)
{
	int rv;

	if (!device_has_control_modes(d))
		return 4; /* method disabled: no host-based setup before 7.0 */
	if (d->prov_state != DEV_PRE)
		return 2; /* invalid state */
	if ((rv = hbs_password(d, in)) != 0)
		return rv;
	if (!device_flash_write(d))
		return 6; /* flash write limit */
	d->prov_state = DEV_POST;
	d->control_mode = DEV_CM_CCM;
	device_audit(d, "IPS_HostBasedSetupService.Setup: provisioned in client control mode");
	return 0;
}

/* The completed chain gets the checks the TLS provisioning path applies (tls.c): OID/OU,
 * serverAuth, a signed path to the root, validity, CSME 16 algorithm rules, the root's hash
 * in the table, the leaf CN against the trusted DNS suffix. @return true when accepted. */
static bool hbs_chain_accepted(struct device *d)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *leaf = NULL;
	char why[256] = "a certificate does not parse";
	bool ok = sk != NULL;

	for (int i = 0; ok && i < d->hbs_chain_len; i++) {
		X509 *x = sim_x509_from_b64(d->hbs_chain[i]);

		ok = x && sk_X509_push(sk, x) > 0;
		if (!ok)
			X509_free(x);
		else if (i == 0)
			leaf = x;
	}
	ok = ok && leaf && tls_check_provisioning_chain(d, leaf, sk, why, sizeof(why));
	if (ok)
		device_audit(d, "IPS_HostBasedSetupService: certificate chain accepted");
	else
		device_audit(d, "IPS_HostBasedSetupService: certificate chain refused: %s", why);
	sk_X509_pop_free(sk, X509_free);
	return ok;
}

static int m_hbs_next_cert(struct device *d, xmlNodePtr in, const struct wreq *w,
			   struct sbuf *out, struct http_response *r)
{
	char leaf[8], root[8];
	bool is_leaf, is_root;
	xmlChar *t;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t n = 0;
	X509 *x = NULL;

	wm_arg(in, "IsLeafCertificate", leaf, sizeof(leaf));
	wm_arg(in, "IsRootCertificate", root, sizeof(root));
	if (wm_bool(leaf, &is_leaf) || wm_bool(root, &is_root))
		return 1;
	if (d->prov_state != DEV_PRE)
		return 3; /* invalid state */
	t = xmlNodeGetContent(xml_child(in, NULL, "NextCertificate"));
	if (t && sim_b64_decode((const char *)t, &der, &n) == 0 && n && n < 0x7fffffff) {
		p = der;
		x = d2i_X509(NULL, &p, (long)n);
	}
	free(der);
	if (!x) {
		xmlFree(t);
		return 1;
	}
	X509_free(x);
	/* Leaf first, root last; a leaf restarts the chain. */
	if (is_leaf) {
		for (int i = 0; i < d->hbs_chain_len; i++)
			free(d->hbs_chain[i]);
		d->hbs_chain_len = 0;
		d->hbs_chain_complete = false;
	} else if (!d->hbs_chain_len) {
		xmlFree(t);
		return 1;
	}
	if (d->hbs_chain_len >= 4) {
		xmlFree(t);
		return 5; /* chain length exceeded */
	}
	d->hbs_chain[d->hbs_chain_len] = strdup((const char *)t);
	xmlFree(t);
	if (!d->hbs_chain[d->hbs_chain_len])
		return 2;
	d->hbs_chain_len++;
	if (is_root) {
		if (!hbs_chain_accepted(d)) {
			for (int i = 0; i < d->hbs_chain_len; i++)
				free(d->hbs_chain[i]);
			d->hbs_chain_len = 0;
			return 4; /* certificate verification failed: start again with a leaf */
		}
		d->hbs_chain_complete = true;
	}
	return 0;
}

static int m_hbs_admin_setup(struct device *d, xmlNodePtr in, const struct wreq *w,
			     struct sbuf *out, struct http_response *r)
{
	char nonce_b64[128], sig_b64[1024], alg[8];
	unsigned char *mc = NULL, *sig = NULL, buf[20 + 64];
	size_t mclen = 0, siglen = 0;
	X509 *leaf = NULL;
	EVP_MD_CTX *ctx = NULL;
	int rv = 5, ok = 0;

	if (d->prov_state != DEV_PRE || !d->hbs_chain_complete)
		return 2; /* invalid state: no complete chain yet */
	wm_arg(in, "McNonce", nonce_b64, sizeof(nonce_b64));
	wm_arg(in, "SigningAlgorithm", alg, sizeof(alg));
	wm_arg(in, "DigitalSignature", sig_b64, sizeof(sig_b64));
	if (strcmp(alg, "2") != 0 || sim_b64_decode(nonce_b64, &mc, &mclen) != 0 || mclen != 20 ||
	    sim_b64_decode(sig_b64, &sig, &siglen) != 0) {
		rv = 3;
		goto out;
	}
	/* Signature = RSA-SHA256 over fwNonce || McNonce with the leaf's key (§4); the chain
	 * passed the provisioning-certificate rules when its root was added. */
	leaf = sim_x509_from_b64(d->hbs_chain[0]);
	memcpy(buf, d->hbs_nonce, 20);
	memcpy(buf + 20, mc, 20);
	ctx = EVP_MD_CTX_new();
	if (leaf && ctx &&
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, X509_get0_pubkey(leaf)) == 1)
		ok = EVP_DigestVerify(ctx, sig, siglen, buf, 40) == 1;
	if (!ok)
		goto out; /* 5: authentication failed */
	if ((rv = hbs_password(d, in)) != 0)
		goto out;
	if (!device_flash_write(d)) {
		rv = 6;
		goto out;
	}
	d->prov_state = DEV_POST;
	d->control_mode = DEV_CM_ACM;
	device_audit(d, "IPS_HostBasedSetupService.AdminSetup: provisioned in admin control mode");
	rv = 0;
out:
	EVP_MD_CTX_free(ctx);
	X509_free(leaf);
	free(mc);
	free(sig);
	return rv;
}

const struct method hbs_methods[] = {
	{"Setup", m_hbs_setup},
	{"AddNextCertInChain", m_hbs_next_cert},
	{"AdminSetup", m_hbs_admin_setup},
	{NULL, NULL},
};

/* ---- CIM_WiFiPort -------------------------------------------------------------------------- */

int r_wifiport(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	char mac[13];
	int j = 0;

	if (idx)
		return -1;
	sim_strlcpy(key, "WiFi Port 0", ks);
	for (const char *p = d->wireless.mac; *p && j < 12; p++)
		if (*p != ':')
			mac[j++] = (char)toupper((unsigned char)*p);
	mac[j] = '\0';
	wm_ps(b, "CreationClassName", "CIM_WiFiPort");
	wm_ps(b, "DeviceID", "WiFi Port 0");
	wm_ps(b, "ElementName", "Wireless Port");
	wm_pi(b, "EnabledState", d->wireless.enabled_state ? d->wireless.enabled_state : 3);
	wm_pi(b, "HealthState", 5);
	wm_pi(b, "LinkTechnology", 11);
	wm_pi(b, "OperationalStatus", 0);
	wm_ps(b, "PermanentAddress", mac);
	wm_pi(b, "PortType", 108);
	wm_pi(b, "RequestedState", d->wireless.enabled_state ? d->wireless.enabled_state : 3);
	wm_ps(b, "SystemCreationClassName", "CIM_ComputerSystem");
	wm_ps(b, "SystemName", "ManagedSystem");
	return 0;
}

static int m_wifiport_rsc(struct device *d, xmlNodePtr in, const struct wreq *w,
			  struct sbuf *out, struct http_response *r)
{
	char s[16];
	long long st;

	wm_arg(in, "RequestedState", s, sizeof(s));
	/* 3 disabled, 32768 enabled in S0, 32769 enabled in S0 + Sx/AC (§13.2). */
	if (sim_parse_ll(s, 0, 65535, &st) != 0 || (st != 3 && st != 32768 && st != 32769))
		return 5;
	d->wireless.enabled_state = (int)st;
	device_audit(d, "CIM_WiFiPort.RequestStateChange(%lld)", st);
	return 0;
}

const struct method wifiport_methods[] = {
	{"RequestStateChange", m_wifiport_rsc},
	{NULL, NULL},
};

/* ---- CIM_WiFiEndpointSettings -------------------------------------------------------------- */

#define WIFI_ID_PREFIX "Intel(r) AMT:WiFi Endpoint Settings "
#define IEEE_ID_PREFIX "Intel(r) AMT:IEEE 802.1x Settings "

int r_wifiset(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	const struct dev_wifi *p;

	if (idx < 0 || idx >= d->n_wifi)
		return -1;
	p = &d->wifi[idx];
	snprintf(key, ks, WIFI_ID_PREFIX "%s", p->name);
	wm_pi(b, "AuthenticationMethod", p->auth_method);
	wm_pi(b, "BSSType", 3);
	wm_ps(b, "ElementName", p->name);
	wm_pi(b, "EncryptionMethod", p->encryption);
	wm_ps(b, "InstanceID", key);
	wm_pi(b, "Priority", p->priority);
	wm_ps(b, "SSID", p->ssid);
	return 0;
}

int d_wifiset(struct device *d, int idx, const struct wreq *w, struct http_response *r)
{
	char prov[128];

	snprintf(prov, sizeof(prov), IEEE_ID_PREFIX "%s", d->wifi[idx].name);
	drop_ctx(d, "WiFi", prov);
	device_audit(d, "wireless profile \"%s\" deleted", d->wifi[idx].name);
	memmove(&d->wifi[idx], &d->wifi[idx + 1], (size_t)(d->n_wifi - idx - 1) * sizeof(d->wifi[0]));
	d->n_wifi--;
	return 0;
}

/* ---- AMT_WiFiPortConfigurationService ------------------------------------------------------ */

#define WIFISVC_NAME "Intel(r) AMT WiFi Port Configuration Service"

int r_wifisvc(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	if (idx)
		return -1;
	sim_strlcpy(key, WIFISVC_NAME, ks);
	singleton(b, "AMT_WiFiPortConfigurationService", WIFISVC_NAME);
	wm_pi(b, "localProfileSynchronizationEnabled", d->wifi_sync_mode);
	wm_pi(b, "NoHostCsmeSoftwarePolicy", 0);
	wm_pb(b, "UEFIWiFiProfileShareEnabled", false);
	return 0;
}

int p_wifisvc(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	      struct http_response *r)
{
	char s[16];
	long long v;
	xmlNodePtr n = xml_child(inst, NULL, "localProfileSynchronizationEnabled");

	if (n) {
		xml_text(n, s, sizeof(s));
		/* 0 disabled, 1 enabled, 3 unrestricted (§13.2). */
		if (sim_parse_ll(s, 0, 3, &v) != 0 || v == 2) {
			wm_fault_invalid(r, w, "localProfileSynchronizationEnabled: 0, 1 or 3.");
			return -1;
		}
		d->wifi_sync_mode = (int)v;
		device_audit(d, "wireless: host profile synchronisation %lld", v);
	}
	return 0;
}

static bool it_auth_ok(long long a)
{
	/* IT profiles: WPA/WPA2 PSK or 802.1X (and WPA3 SAE/OWE on newer firmware). */
	return a == 4 || a == 5 || a == 6 || a == 7 || a == 32768 || a == 32769;
}

static int m_add_wifi(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		      struct http_response *r)
{
	xmlNodePtr set = xml_child(in, NULL, "WiFiEndpointSettingsInput");
	xmlNodePtr x = xml_child(in, NULL, "IEEE8021xSettingsInput");
	char ep[128], s[16], pass[128], pskv[128];
	struct dev_wifi p;
	long long auth, enc, prio = 0, proto = -1;
	uint32_t client = 0, ca = 0;
	char prov[128];
	int rc;

	memset(&p, 0, sizeof(p));
	p.ieee8021x_protocol = -1;
	wm_ref_selector(xml_child(in, NULL, "WiFiEndpoint"), ep, sizeof(ep));
	if (strcmp(ep, "WiFi Endpoint 0") != 0)
		return 4; /* invalid reference */
	if (!set)
		return 3;
	wm_arg(set, "ElementName", p.name, sizeof(p.name));
	wm_arg(set, "SSID", p.ssid, sizeof(p.ssid));
	wm_arg(set, "AuthenticationMethod", s, sizeof(s));
	if (sim_parse_ll(s, 0, 65535, &auth) != 0)
		return 3;
	wm_arg(set, "EncryptionMethod", s, sizeof(s));
	if (sim_parse_ll(s, 0, 65535, &enc) != 0)
		return 3;
	wm_arg(set, "Priority", s, sizeof(s));
	if (s[0] && sim_parse_ll(s, 0, 255, &prio) != 0)
		return 3;
	wm_arg(set, "PSKPassPhrase", pass, sizeof(pass));
	wm_arg(set, "PSKValue", pskv, sizeof(pskv));
	if (!p.name[0] || !p.ssid[0] || strlen(p.ssid) > 32)
		return 3;
	/* IT profiles: WPA family with TKIP (3) or CCMP (4); WEP/open only come from the host. */
	if (!it_auth_ok(auth) || (enc != 3 && enc != 4))
		return 3;
	if (auth == 4 || auth == 6) {
		size_t n = strlen(pass);

		if (!pskv[0] && (n < 8 || n > 63))
			return 3;
		sim_strlcpy(p.psk, pass[0] ? pass : pskv, sizeof(p.psk));
	}
	if (auth == 5 || auth == 7) {
		if (!x)
			return 3;
		wm_arg(x, "AuthenticationProtocol", s, sizeof(s));
		if (sim_parse_ll(s, 0, 10, &proto) != 0)
			return 3;
		wm_arg(x, "Username", p.ieee8021x_username, sizeof(p.ieee8021x_username));
		if ((rc = cert_ref(d, xml_child(in, NULL, "ClientCredential"), &client)) < 0 ||
		    (cert_ref(d, xml_child(in, NULL, "CACredential"), &ca)) < 0)
			return 4;
		/* EAP-TLS needs the client certificate. */
		if (proto == 0 && !client)
			return 4;
		p.ieee8021x_protocol = (int)proto;
		p.client_cert_handle = client;
		p.ca_cert_handle = ca;
	}
	p.auth_method = (int)auth;
	p.encryption = (int)enc;
	p.priority = (int)prio;
	for (int i = 0; i < d->n_wifi; i++)
		if (!strcmp(d->wifi[i].name, p.name))
			return 3; /* profile names are unique */
	if (!device_flash_write(d))
		return 2;
	/* 16 profiles in total; when full: 2 "failed" [unconfirmed which value AMT uses]. */
	rc = device_add_wifi(d, &p);
	if (rc != 0)
		return rc == -2 ? 3 : 2;
	snprintf(prov, sizeof(prov), IEEE_ID_PREFIX "%s", p.name);
	if (add_ctx(d, "WiFi", client, prov) || add_ctx(d, "WiFi", ca, prov))
		return 2;
	device_audit(d, "AddWiFiSettings: IT profile \"%s\" (SSID %s, auth %lld)", p.name, p.ssid, auth);
	return 0;
}

const struct method wifisvc_methods[] = {
	{"AddWiFiSettings", m_add_wifi},
	{NULL, NULL},
};

/* ---- wired 802.1X: AMT_8021XProfile and IPS_IEEE8021xSettings ------------------------------- */

#define PROF_ID "Intel(r) AMT 802.1x Profile 0"
#define IPS8021X_ID "Intel(r) AMT: 8021X Settings"

int r_8021xprof(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	const struct dev_8021x *x = &d->ieee8021x;

	if (idx)
		return -1;
	sim_strlcpy(key, PROF_ID, ks);
	wm_pb(b, "ActiveInS0", x->available_in_s0);
	wm_pi(b, "AuthenticationProtocol", x->protocol);
	if (x->domain[0])
		wm_ps(b, "Domain", x->domain);
	wm_ps(b, "ElementName", "Intel(r) AMT 802.1x Profile");
	wm_pb(b, "Enabled", x->enabled);
	wm_ps(b, "InstanceID", PROF_ID);
	wm_pi(b, "PxeTimeout", x->pxe_timeout);
	if (x->roaming_identity[0])
		wm_ps(b, "RoamingIdentity", x->roaming_identity);
	if (x->server_cert_name[0])
		wm_ps(b, "ServerCertificateName", x->server_cert_name);
	wm_pi(b, "ServerCertificateNameComparison", x->server_cert_name_comparison);
	if (x->username[0])
		wm_ps(b, "Username", x->username);
	return 0;
}

/* The fields both wired 802.1X classes share. @p cmp_max: 1 for the AMT class (0 FullName,
 * 1 DomainSuffix), 3 for the IPS/CIM map. @return 0 or -1 (fault written). */
static int put_8021x_common(struct device *d, struct dev_8021x *x, xmlNodePtr inst,
			    const struct wreq *w, struct http_response *r, long long proto_max,
			    long long cmp_max)
{
	struct {
		const char *name;
		char *v;
		size_t size;
	} strs[] = {{"Username", x->username, sizeof(x->username)},
		    {"Password", x->password, sizeof(x->password)},
		    {"Domain", x->domain, sizeof(x->domain)},
		    {"RoamingIdentity", x->roaming_identity, sizeof(x->roaming_identity)},
		    {"ServerCertificateName", x->server_cert_name, sizeof(x->server_cert_name)}};
	char s[256];
	long long v;
	xmlNodePtr n;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (!(n = xml_child(inst, NULL, strs[i].name)))
			continue;
		xml_text(n, s, sizeof(s));
		if (sim_strlcpy(strs[i].v, s, strs[i].size) != 0) {
			wm_fault_invalid(r, w, "802.1X string too long (Username/Domain 128, Password 32).");
			return -1;
		}
	}
	if ((n = xml_child(inst, NULL, "AuthenticationProtocol"))) {
		xml_text(n, s, sizeof(s));
		if (sim_parse_ll(s, 0, proto_max, &v) != 0) {
			wm_fault_invalid(r, w, "Unsupported AuthenticationProtocol.");
			return -1;
		}
		x->protocol = (int)v;
	}
	if ((n = xml_child(inst, NULL, "ServerCertificateNameComparison"))) {
		xml_text(n, s, sizeof(s));
		if (sim_parse_ll(s, 0, cmp_max, &v) != 0) {
			wm_fault_invalid(r, w, "Bad ServerCertificateNameComparison.");
			return -1;
		}
		x->server_cert_name_comparison = (int)v;
	}
	if ((n = xml_child(inst, NULL, "PxeTimeout"))) {
		xml_text(n, s, sizeof(s));
		if (sim_parse_ll(s, 0, 86400, &v) != 0) {
			wm_fault_invalid(r, w, "PxeTimeout: 0..86400.");
			return -1;
		}
		x->pxe_timeout = (int)v;
	}
	return 0;
}

/* The client certificate and server root references of an AMT_8021XProfile Put.
 * @return 0, or -1 when one names no certificate of the right kind. */
static int legacy_refs(const struct device *d, xmlNodePtr inst, uint32_t *client,
		       uint32_t *issuer)
{
	xmlNodePtr iss = xml_child(inst, NULL, "ServerCertificateIssuer");
	int i;

	if (!iss)
		iss = xml_child(inst, NULL, "ServerCertificateIssue");
	if (cert_ref(d, xml_child(inst, NULL, "ClientCertificate"), client) < 0 ||
	    cert_ref(d, iss, issuer) < 0)
		return -1;
	if (*client && ((i = cert_index(d, *client)) < 0 || d->certs[i].trusted_root))
		return -1;
	if (*issuer && ((i = cert_index(d, *issuer)) < 0 || !d->certs[i].trusted_root))
		return -1;
	return 0;
}

int p_8021xprof(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
		struct http_response *r)
{
	struct dev_8021x x = d->ieee8021x;
	uint32_t client = 0, issuer = 0;
	char s[16];
	xmlNodePtr n;

	if (put_8021x_common(d, &x, inst, w, r, 6, 1))
		return -1;
	if ((n = xml_child(inst, NULL, "Enabled"))) {
		xml_text(n, s, sizeof(s));
		if (wm_bool(s, &x.enabled)) {
			wm_fault_invalid(r, w, "Enabled is a boolean.");
			return -1;
		}
	}
	if ((n = xml_child(inst, NULL, "ActiveInS0"))) {
		xml_text(n, s, sizeof(s));
		if (wm_bool(s, &x.available_in_s0)) {
			wm_fault_invalid(r, w, "ActiveInS0 is a boolean.");
			return -1;
		}
	}
	/* The certificate references (write-only, never in a Get): each Put replaces the
	 * profile's AMT_8021xCredentialContext links; a reference left out removes its link
	 * (Intel's class reference, AMT-PROTOCOL.md 13.1). The issuer's name is
	 * ServerCertificateIssuer in Intel's MOF (LMS's generated class) and
	 * ServerCertificateIssue in go-wsman-messages: both are read. */
	if (legacy_refs(d, inst, &client, &issuer) != 0) {
		wm_fault_invalid(r, w, "ClientCertificate must name a certificate whose key AMT holds, "
				       "ServerCertificateIssuer a trusted root certificate.");
		return -1;
	}
	x.client_cert_handle = client;
	x.root_cert_handle = issuer;
	x.ips_enabled = x.enabled ? (x.client_cert_handle ? 2 : 6) : 3;
	drop_ctx(d, "802.1X", NULL);
	if (add_ctx(d, "802.1X", client, PROF_ID) || add_ctx(d, "802.1X", issuer, PROF_ID)) {
		wm_fault_invalid(r, w, "Too many credential contexts.");
		return -1;
	}
	d->ieee8021x = x;
	device_audit(d, "AMT_8021XProfile Put: %s, protocol %d, client certificate %u, issuer %u",
		     x.enabled ? "enabled" : "disabled", x.protocol, client, issuer);
	return 0;
}

/* The @p idx-th credential context of AMT_8021xCredentialContext (@p legacy: the links an
 * AMT_8021XProfile Put made) or of CIM_CredentialContext (the other 802.1X and wireless
 * links; TLS has AMT_TLSCredentialContext); its ElementInContext written to @p b. */
static const struct dev_ctx *nth_ctx(struct device *d, int idx, bool legacy, struct sbuf *b,
				     char *key, size_t ks)
{
	char id[64];

	for (int i = 0; i < d->n_ctx; i++) {
		const struct dev_ctx *c = &d->ctxs[i];

		if (strcmp(c->type, "TLS") == 0 || (strcmp(c->providing, PROF_ID) == 0) != legacy ||
		    idx-- != 0)
			continue;
		snprintf(id, sizeof(id), CERT_ID_PREFIX "%u", c->cert_handle);
		sim_strlcpy(key, id, ks);
		wm_pepr(b, "ElementInContext", AMT_URI, "AMT_PublicKeyCertificate", "InstanceID", id);
		return c;
	}
	return NULL;
}

/* AMT_8021xCredentialContext: the links an AMT_8021XProfile Put made. */
int r_8021xctx(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	if (!nth_ctx(d, idx, true, b, key, ks))
		return -1;
	wm_pepr(b, "ElementProvidingContext", AMT_URI, "AMT_8021XProfile", "InstanceID", PROF_ID);
	return 0;
}

int r_ips8021x(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	const struct dev_8021x *x = &d->ieee8021x;

	if (idx)
		return -1;
	sim_strlcpy(key, IPS8021X_ID, ks);
	wm_pi(b, "AuthenticationProtocol", x->protocol);
	wm_pb(b, "AvailableInS0", x->available_in_s0);
	if (x->domain[0])
		wm_ps(b, "Domain", x->domain);
	wm_ps(b, "ElementName", "Intel(r) AMT 802.1x Settings");
	wm_pi(b, "Enabled", x->ips_enabled ? x->ips_enabled : 3);
	wm_ps(b, "InstanceID", IPS8021X_ID);
	wm_pi(b, "PxeTimeout", x->pxe_timeout);
	if (x->roaming_identity[0])
		wm_ps(b, "RoamingIdentity", x->roaming_identity);
	if (x->server_cert_name[0])
		wm_ps(b, "ServerCertificateName", x->server_cert_name);
	wm_pi(b, "ServerCertificateNameComparison", x->server_cert_name_comparison);
	if (x->username[0])
		wm_ps(b, "Username", x->username);
	return 0;
}

int p_ips8021x(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	       struct http_response *r)
{
	struct dev_8021x x = d->ieee8021x;
	char s[16];
	long long v;
	xmlNodePtr n;

	if (put_8021x_common(d, &x, inst, w, r, 10, 3))
		return -1;
	if ((n = xml_child(inst, NULL, "Enabled"))) {
		xml_text(n, s, sizeof(s));
		/* 2 enabled, 3 disabled, 6 enabled without certificates (§13.1). */
		if (sim_parse_ll(s, 2, 6, &v) != 0 || (v != 2 && v != 3 && v != 6)) {
			wm_fault_invalid(r, w, "Enabled: 2, 3 or 6.");
			return -1;
		}
		x.ips_enabled = (int)v;
		x.enabled = v != 3;
	}
	if ((n = xml_child(inst, NULL, "AvailableInS0"))) {
		xml_text(n, s, sizeof(s));
		if (wm_bool(s, &x.available_in_s0)) {
			wm_fault_invalid(r, w, "AvailableInS0 is a boolean.");
			return -1;
		}
	}
	d->ieee8021x = x;
	device_audit(d, "IPS_IEEE8021xSettings Put: Enabled=%d protocol %d", x.ips_enabled, x.protocol);
	return 0;
}

static int m_set_certs(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		       struct http_response *r)
{
	uint32_t issuer = 0, client = 0;

	/* 0 ok, 1 internal error: the only two values this method has (§13.1). */
	if (cert_ref(d, xml_child(in, NULL, "ServerCertificateIssuer"), &issuer) < 0 ||
	    cert_ref(d, xml_child(in, NULL, "ClientCertificate"), &client) < 0)
		return 1;
	drop_ctx(d, "802.1X", NULL);
	if (add_ctx(d, "802.1X", issuer, IPS8021X_ID) || add_ctx(d, "802.1X", client, IPS8021X_ID))
		return 1;
	d->ieee8021x.root_cert_handle = issuer;
	d->ieee8021x.client_cert_handle = client;
	device_audit(d, "IPS_IEEE8021xSettings.SetCertificates: issuer %u, client %u", issuer, client);
	return 0;
}

const struct method ips8021x_methods[] = {
	{"SetCertificates", m_set_certs},
	{NULL, NULL},
};

/* ---- CIM_CredentialContext ----------------------------------------------------------------- */

int r_credctx(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	const struct dev_ctx *c = nth_ctx(d, idx, false, b, key, ks);

	if (!c)
		return -1;
	if (!strcmp(c->type, "WiFi"))
		wm_pepr(b, "ElementProvidingContext", CIM_URI, "CIM_IEEE8021xSettings", "InstanceID",
			c->providing);
	else
		wm_pepr(b, "ElementProvidingContext", IPS_URI, "IPS_IEEE8021xSettings", "InstanceID",
			c->providing);
	return 0;
}
