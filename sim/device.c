/* SPDX-License-Identifier: Apache-2.0 */
#include "device.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>

#include "mei.h"
#include "simutil.h"

/* The SubjectPublicKeyInfo PEM of private key @p pem (malloc'd), or NULL. */
static char *public_pem(const char *pem)
{
	BIO *in = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	EVP_PKEY *k = in ? PEM_read_bio_PrivateKey(in, NULL, NULL, NULL) : NULL;
	BIO *out = k ? BIO_new(BIO_s_mem()) : NULL;
	char *data = NULL, *s = NULL;
	long n = out && PEM_write_bio_PUBKEY(out, k) ? BIO_get_mem_data(out, &data) : 0;

	if (n > 0 && (s = malloc((size_t)n + 1))) {
		memcpy(s, data, (size_t)n);
		s[n] = 0;
	}
	BIO_free(out);
	EVP_PKEY_free(k);
	BIO_free(in);
	return s;
}

/* ---- version rules ------------------------------------------------------------------- */

bool device_has_legacy_soap(const struct device *d)
{
	return d->ver_major < 9;
}

int device_version_code(const struct device *d)
{
	return d->ver_major * 100 + d->ver_minor;
}

int device_min_tls_version(const struct device *d)
{
	/* TLS 1.0 removed in 12.0; TLS 1.1 removed in CSME 16 (15 on desktops: we use 16). */
	if (d->ver_major >= 16)
		return TLS1_2_VERSION;
	if (d->ver_major >= 12)
		return TLS1_1_VERSION;
	return TLS1_VERSION;
}

int device_max_tls_version(const struct device *d)
{
	/* TLS 1.2 added in 12.0. Older firmware speaks TLS 1.0/1.1 only. TLS 1.3 is allowed
	 * from CSME 16 on (PEERS.md: accept TLS 1.3). */
	if (d->ver_major >= 16)
		return TLS1_3_VERSION;
	if (d->ver_major >= 12)
		return TLS1_2_VERSION;
	return TLS1_1_VERSION;
}

bool device_refuses_sha1_and_small_rsa(const struct device *d)
{
	return d->ver_major >= 16;
}

bool device_needs_sha384_rsa3072(const struct device *d)
{
	return d->ver_major >= 22;
}

bool device_cert_strong_enough(const struct device *d, X509 *x, const char *name, char *reason,
			       size_t rsize)
{
	int md = NID_undef, pk = NID_undef;
	EVP_PKEY *k = X509_get0_pubkey(x);
	int rsa_bits = k && EVP_PKEY_base_id(k) == EVP_PKEY_RSA ? EVP_PKEY_get_bits(k) : 0;

	if (!device_refuses_sha1_and_small_rsa(d))
		return true;
	OBJ_find_sigid_algs(X509_get_signature_nid(x), &md, &pk);
	if (md == NID_sha1) {
		snprintf(reason, rsize, "%s is signed with SHA-1 (refused from CSME 16)", name);
		return false;
	}
	if (rsa_bits && rsa_bits < 2048) {
		snprintf(reason, rsize, "%s has an RSA key of %d bits (< 2048 refused from CSME 16)",
			 name, rsa_bits);
		return false;
	}
	if (!device_needs_sha384_rsa3072(d))
		return true;
	if (md != NID_sha384 && md != NID_sha512) {
		snprintf(reason, rsize, "%s is signed with %s (AMT 22 needs SHA-384 or stronger)",
			 name, md != NID_undef ? OBJ_nid2sn(md) : "an unknown digest");
		return false;
	}
	if (rsa_bits && rsa_bits < 3072) {
		snprintf(reason, rsize, "%s has an RSA key of %d bits (AMT 22 needs 3072 or more)",
			 name, rsa_bits);
		return false;
	}
	return true;
}

bool device_has_default_sha1_hashes(const struct device *d)
{
	return d->ver_major < 11;
}

bool device_has_psk(const struct device *d)
{
	return d->ver_major < 11;
}

bool device_has_control_modes(const struct device *d)
{
	return d->ver_major >= 7;
}

bool device_has_preprov_tls(const struct device *d)
{
	return d->ver_major >= 19;
}

bool device_allows_non_tls(const struct device *d)
{
	return d->ver_major < 16 || (d->ver_major == 16 && d->ver_minor < 1);
}

/* ---- defaults ------------------------------------------------------------------------ */

struct default_hash {
	const char *name;
	int algo;
	const char *hex;
	bool sha1_era; /* only on firmware that still carries SHA-1 defaults (< 11.0) */
};

/*
 * Data only: a few well-known public roots. The SHA-1 thumbprints are the AMT 2.6/3.0
 * defaults (AMT-PROTOCOL.md §2.3); the SHA-256 values are public fingerprints of roots of
 * the kind Intel embeds. Tests add their own test-CA hash as a user hash.
 */
static const struct default_hash default_hashes[] = {
	{"VeriSign Class 3 Primary CA-G1", DEV_HASH_SHA1, "742c3192e607e424eb4549542be1bbc53e6174e2", true},
	{"VeriSign Class 3 Primary CA-G3", DEV_HASH_SHA1, "132d0d45534b6997cdb2d5c339e25576609b5cc6", true},
	{"Go Daddy Class 2 CA", DEV_HASH_SHA1, "2796bae63f1801e277261ba0d77770028f20eee4", true},
	{"Comodo AAA CA", DEV_HASH_SHA1, "d1eb23a46d17d68fd92564c2f1f1601764d8e349", true},
	{"Starfield Class 2 CA", DEV_HASH_SHA1, "ad7e1c28b064ef8f6003402014c3d0e3370eb58a", true},
	{"DigiCert Global Root CA", DEV_HASH_SHA256,
	 "4348a0e9444c78cb265e058d5e8944b4d84f9662bd26db257f8934a443c70161", false},
	{"Go Daddy Class 2 CA", DEV_HASH_SHA256,
	 "c3846bf24b9e93ca64274c0ec67c1ecc5e024ffcacd2d74019350e81fe546ae4", false},
	{"Entrust Root CA", DEV_HASH_SHA256,
	 "73c176434f1bc6d5adf45b0e76e727287c8de57616c1e6e6141a2b2cbc7d8e4c", false},
	{"ISRG Root X1", DEV_HASH_SHA256,
	 "96bcec06264976f37460779acf28c5a7cfe8a3c0aae11a8ffcee05c0bddf08c6", false},
};

static size_t hash_len(int algo)
{
	switch (algo) {
	case DEV_HASH_SHA1: return 20;
	case DEV_HASH_SHA256: return 32;
	case DEV_HASH_SHA384: return 48;
	default: return 0;
	}
}

static const char *hash_algo_name(int algo)
{
	switch (algo) {
	case DEV_HASH_SHA1: return "sha1";
	case DEV_HASH_SHA256: return "sha256";
	case DEV_HASH_SHA384: return "sha384";
	default: return "unknown";
	}
}

static int hash_algo_parse(const char *s)
{
	if (!strcmp(s, "sha1"))
		return DEV_HASH_SHA1;
	if (!strcmp(s, "sha256"))
		return DEV_HASH_SHA256;
	if (!strcmp(s, "sha384"))
		return DEV_HASH_SHA384;
	return -1;
}

const char *device_state_name(int state)
{
	switch (state) {
	case DEV_PRE: return "pre";
	case DEV_IN: return "in";
	case DEV_POST: return "post";
	default: return "unknown";
	}
}

int device_state_parse(const char *s)
{
	if (!strcmp(s, "pre"))
		return DEV_PRE;
	if (!strcmp(s, "in"))
		return DEV_IN;
	if (!strcmp(s, "post"))
		return DEV_POST;
	return -1;
}

static const char *cm_name(int cm)
{
	return cm == DEV_CM_ACM ? "acm" : cm == DEV_CM_CCM ? "ccm" : "none";
}

static int cm_parse(const char *s)
{
	if (!strcmp(s, "acm"))
		return DEV_CM_ACM;
	if (!strcmp(s, "ccm"))
		return DEV_CM_CCM;
	if (!strcmp(s, "none"))
		return DEV_CM_NONE;
	return -1;
}

int device_set_version(struct device *d, const char *version)
{
	int ma = 0, mi = 0, bu = 0;
	char tail;
	int n = sscanf(version, "%d.%d.%d%c", &ma, &mi, &bu, &tail);

	if (n < 2 || n > 3 || ma < 1 || ma > 99 || mi < 0 || bu < 0)
		return -1;
	d->ver_major = ma;
	d->ver_minor = mi;
	d->ver_build = bu;
	snprintf(d->version, sizeof(d->version), "%d.%d.%d", ma, mi, bu);
	return 0;
}

void device_new_realm(char *out, size_t size)
{
	unsigned char r[16];
	char hex[33];

	if (sim_random(r, sizeof(r)) != 0)
		memset(r, 0, sizeof(r));
	sim_hex(r, sizeof(r), hex, true);
	snprintf(out, size, "Digest:%s", hex);
}

void device_ha1(const char *user, const char *realm, const char *password, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	out[0] = '\0';
	if (!c)
		return;
	if (EVP_DigestInit_ex(c, EVP_md5(), NULL) == 1 &&
	    EVP_DigestUpdate(c, user, strlen(user)) == 1 && EVP_DigestUpdate(c, ":", 1) == 1 &&
	    EVP_DigestUpdate(c, realm, strlen(realm)) == 1 && EVP_DigestUpdate(c, ":", 1) == 1 &&
	    EVP_DigestUpdate(c, password, strlen(password)) == 1 &&
	    EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == 16)
		sim_hex(md, 16, out, false);
	EVP_MD_CTX_free(c);
}

int device_add_hash(struct device *d, const char *name, int algo, const unsigned char *hash,
		    bool is_default, bool enabled)
{
	size_t len = hash_len(algo);
	int user = 0;

	if (!len)
		return -1;
	for (int i = 0; i < d->n_hashes; i++) {
		if (d->hashes[i].algo == algo && !memcmp(d->hashes[i].hash, hash, len))
			return -2;
		if (!d->hashes[i].is_default)
			user++;
	}
	if (d->n_hashes >= DEV_MAX_HASHES || (!is_default && user >= DEV_MAX_USER_HASHES))
		return -1;
	struct dev_root_hash *h = &d->hashes[d->n_hashes++];

	memset(h, 0, sizeof(*h));
	sim_strlcpy(h->name, name, sizeof(h->name));
	h->algo = algo;
	memcpy(h->hash, hash, len);
	h->is_default = is_default;
	h->enabled = enabled;
	return 0;
}

int device_init(struct device *d, const char *id, const char *version)
{
	unsigned char u[16];

	memset(d, 0, sizeof(*d));
	sim_strlcpy(d->id, id, sizeof(d->id));
	if (device_set_version(d, version) != 0)
		return -1;
	if (sim_random(u, sizeof(u)) != 0)
		return -1;
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(d->uuid, sizeof(d->uuid),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		 u[15]);
	d->prov_state = DEV_PRE;
	d->control_mode = DEV_CM_NONE;
	device_new_realm(d->realm, sizeof(d->realm));
	sim_strlcpy(d->mebx_password, "admin", sizeof(d->mebx_password));
	d->mebx_password_default = true;
	sim_strlcpy(d->admin_user, "admin", sizeof(d->admin_user));
	/* The provisioning session authenticates as admin with an empty password. */
	device_ha1("admin", d->realm, "", d->admin_ha1);
	d->next_handle = 1;
	sim_strlcpy(d->power_scheme, "SCHEME 1", sizeof(d->power_scheme));
	d->ping_enabled = true;
	d->web_ui_enabled = true;
	d->wired.dhcp = true;
	d->wired.ip_sync = true;
	d->wired.link_up = true;
	d->wireless.dhcp = true;
	d->wireless.enabled_state = 3;
	snprintf(d->wired.mac, sizeof(d->wired.mac), "00:16:%02x:%02x:%02x:%02x", u[12], u[13],
		 u[14], u[15]);
	snprintf(d->wireless.mac, sizeof(d->wireless.mac), "00:17:%02x:%02x:%02x:%02x", u[12],
		 u[13], u[14], u[15]);
	d->tls_remote.accept_non_secure = true;
	d->tls_local.accept_non_secure = true;
	d->kerberos.clock_tolerance = 5;
	d->ieee8021x.pxe_timeout = 120;
	d->ieee8021x.ips_enabled = 3;
	d->ieee8021x.available_in_s0 = true;
	d->wifi_sync_mode = 0;
	d->keygen_ms = 1500;
	if (sim_random(d->hbs_nonce, sizeof(d->hbs_nonce)) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(default_hashes) / sizeof(default_hashes[0]); i++) {
		const struct default_hash *h = &default_hashes[i];
		unsigned char bin[48];

		if (h->sha1_era && !device_has_default_sha1_hashes(d))
			continue;
		if (sim_unhex(h->hex, bin, sizeof(bin)) != (int)hash_len(h->algo))
			continue;
		device_add_hash(d, h->name, h->algo, bin, true, true);
	}
	return 0;
}

static void free_certs_keys(struct device *d, bool keep_read_only)
{
	int j = 0;

	for (int i = 0; i < d->n_certs; i++) {
		if (keep_read_only && d->certs[i].read_only) {
			d->certs[j++] = d->certs[i];
			continue;
		}
		free(d->certs[i].der_b64);
	}
	d->n_certs = j;
	for (int i = 0; i < d->n_keys; i++)
		free(d->keys[i].pem);
	d->n_keys = 0;
}

void device_clear(struct device *d)
{
	free_certs_keys(d, false);
	for (int i = 0; i < d->audit_len; i++)
		free(d->audit[(d->audit_start + i) % DEV_AUDIT_MAX].event);
	d->audit_len = 0;
	free(d->self_cert_pem);
	free(d->self_key_pem);
	d->self_cert_pem = NULL;
	d->self_key_pem = NULL;
	for (int i = 0; i < d->hbs_chain_len; i++)
		free(d->hbs_chain[i]);
	d->hbs_chain_len = 0;
}

static void audit_push(struct device *d, time_t when, char *event)
{
	int slot;

	if (d->audit_len == DEV_AUDIT_MAX) {
		free(d->audit[d->audit_start].event);
		d->audit_start = (d->audit_start + 1) % DEV_AUDIT_MAX;
		d->audit_len--;
	}
	slot = (d->audit_start + d->audit_len) % DEV_AUDIT_MAX;
	d->audit[slot].when = when;
	d->audit[slot].event = event;
	d->audit_len++;
}

void device_audit(struct device *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	char *s = malloc((size_t)n + 1);

	if (!s)
		return;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	audit_push(d, time(NULL), s);
	d->dirty = true;
}

void device_unprovision(struct device *d)
{
	int j = 0;

	for (int i = 0; i < d->n_hashes; i++)
		if (d->hashes[i].is_default)
			d->hashes[j++] = d->hashes[i];
	d->n_hashes = j;
	d->n_users = 0;
	d->n_wifi = 0;
	d->n_ctx = 0;
	free_certs_keys(d, true);
	memset(&d->tls_remote, 0, sizeof(d->tls_remote));
	d->tls_remote.accept_non_secure = true;
	memset(&d->tls_local, 0, sizeof(d->tls_local));
	d->tls_local.accept_non_secure = true;
	memset(&d->kerberos, 0, sizeof(d->kerberos));
	d->kerberos.clock_tolerance = 5;
	memset(&d->ieee8021x, 0, sizeof(d->ieee8021x));
	d->ieee8021x.pxe_timeout = 120;
	d->ieee8021x.ips_enabled = 3;
	d->ieee8021x.available_in_s0 = true;
	d->tls_pending = false;
	d->tls_generation++;
	d->prov_state = DEV_PRE;
	d->control_mode = DEV_CM_NONE;
	d->otp[0] = '\0';
	d->pki_dns_suffix[0] = '\0';
	d->config_server_fqdn[0] = '\0';
	sim_strlcpy(d->admin_user, "admin", sizeof(d->admin_user));
	device_ha1("admin", d->realm, "", d->admin_ha1);
	device_audit(d, "unprovision: state pre, user hashes/ACLs/certs/keys/profiles removed");
}

int device_set_otp(struct device *d, const char *otp)
{
	size_t n = strlen(otp);

	if (d->prov_state == DEV_POST || n < 8 || n > 32)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (otp[i] < 0x21 || otp[i] > 0x7e)
			return -1;
	sim_strlcpy(d->otp, otp, sizeof(d->otp));
	device_audit(d, "otp set by host agent");
	return 0;
}

/* ---- JSON mapping: one table per struct, so load, save and fleet overrides agree ------- */

enum ftype { F_STR, F_INT, F_BOOL, F_U32 };

struct field {
	const char *name;
	enum ftype type;
	size_t off;
	size_t size;
	bool secret; /* left out of dumps unless asked for */
};

#define FS(st, n, m) {n, F_STR, offsetof(struct st, m), sizeof(((struct st *)0)->m), false}
#define FX(st, n, m) {n, F_STR, offsetof(struct st, m), sizeof(((struct st *)0)->m), true}
#define FI(st, n, m) {n, F_INT, offsetof(struct st, m), sizeof(int), false}
#define FU(st, n, m) {n, F_U32, offsetof(struct st, m), sizeof(uint32_t), false}
#define FB(st, n, m) {n, F_BOOL, offsetof(struct st, m), sizeof(bool), false}
#define FEND {NULL, F_STR, 0, 0, false}

static const struct field device_fields[] = {
	FS(device, "id", id), FS(device, "uuid", uuid),
	FS(device, "realm", realm), FX(device, "mebx_password", mebx_password),
	FB(device, "mebx_password_default", mebx_password_default),
	FS(device, "admin_user", admin_user), FX(device, "admin_ha1", admin_ha1),
	FU(device, "next_handle", next_handle),
	FS(device, "host_name", host_name), FS(device, "domain_name", domain_name),
	FS(device, "pki_dns_suffix", pki_dns_suffix), FS(device, "dhcp_domain", dhcp_domain),
	FS(device, "config_server_fqdn", config_server_fqdn), FX(device, "otp", otp),
	FS(device, "power_scheme", power_scheme),
	FB(device, "redirection_listener", redirection_listener),
	FB(device, "sol_enabled", sol_enabled), FB(device, "ider_enabled", ider_enabled),
	FB(device, "kvm_enabled", kvm_enabled), FB(device, "web_ui_enabled", web_ui_enabled),
	FB(device, "ping_enabled", ping_enabled),
	FB(device, "rmcp_ping_enabled", rmcp_ping_enabled),
	FI(device, "wifi_sync_mode", wifi_sync_mode),
	FI(device, "clock_offset", clock_offset), FB(device, "tls_pending", tls_pending),
	FB(device, "tls_modern_override", tls_modern_override),
	FEND,
};

static const struct field tls_fields[] = {
	FB(dev_tls_settings, "enabled", enabled), FB(dev_tls_settings, "mutual_auth", mutual_auth),
	FB(dev_tls_settings, "accept_non_secure", accept_non_secure),
	FU(dev_tls_settings, "cert_handle", cert_handle), FEND,
};

static const struct field krb_fields[] = {
	FB(dev_kerberos, "enabled", enabled), FS(dev_kerberos, "realm", realm),
	FI(dev_kerberos, "key_version", key_version),
	FI(dev_kerberos, "encryption_algorithm", encryption_algorithm),
	FX(dev_kerberos, "master_key", master_key_b64),
	FI(dev_kerberos, "clock_tolerance", clock_tolerance), FEND,
};

static const struct field port_fields[] = {
	FS(dev_port, "mac", mac), FB(dev_port, "dhcp", dhcp), FB(dev_port, "ip_sync", ip_sync),
	FB(dev_port, "shared_static_ip", shared_static_ip), FS(dev_port, "ip", ip),
	FS(dev_port, "mask", mask), FS(dev_port, "gateway", gateway), FS(dev_port, "dns1", dns1),
	FS(dev_port, "dns2", dns2), FB(dev_port, "link_up", link_up),
	FI(dev_port, "enabled_state", enabled_state), FEND,
};

static const struct field x_fields[] = {
	FB(dev_8021x, "enabled", enabled), FI(dev_8021x, "protocol", protocol),
	FS(dev_8021x, "username", username), FX(dev_8021x, "password", password),
	FS(dev_8021x, "domain", domain), FS(dev_8021x, "roaming_identity", roaming_identity),
	FS(dev_8021x, "server_cert_name", server_cert_name),
	FI(dev_8021x, "server_cert_name_comparison", server_cert_name_comparison),
	FI(dev_8021x, "pxe_timeout", pxe_timeout),
	FU(dev_8021x, "client_cert_handle", client_cert_handle),
	FU(dev_8021x, "root_cert_handle", root_cert_handle),
	FI(dev_8021x, "ips_enabled", ips_enabled),
	FB(dev_8021x, "available_in_s0", available_in_s0), FEND,
};

static const struct field user_fields[] = {
	FU(dev_user, "handle", handle), FS(dev_user, "username", username),
	FX(dev_user, "ha1", ha1), FS(dev_user, "kerberos_sid", kerberos_sid),
	FI(dev_user, "access", access), FU(dev_user, "realms", realms),
	FB(dev_user, "enabled", enabled), FEND,
};

static const struct field wifi_fields[] = {
	FS(dev_wifi, "name", name), FS(dev_wifi, "ssid", ssid), FI(dev_wifi, "priority", priority),
	FI(dev_wifi, "auth_method", auth_method), FI(dev_wifi, "encryption", encryption),
	FX(dev_wifi, "psk", psk), FB(dev_wifi, "user_profile", user_profile),
	FI(dev_wifi, "ieee8021x_protocol", ieee8021x_protocol),
	FS(dev_wifi, "ieee8021x_username", ieee8021x_username),
	FU(dev_wifi, "client_cert_handle", client_cert_handle),
	FU(dev_wifi, "ca_cert_handle", ca_cert_handle), FEND,
};

static const struct field ctx_fields[] = {
	FS(dev_ctx, "type", type), FU(dev_ctx, "cert_handle", cert_handle),
	FS(dev_ctx, "providing", providing), FEND,
};

static json_t *fields_to_json(const struct field *f, const void *base, bool secrets)
{
	json_t *o = json_object();

	for (; o && f->name; f++) {
		const char *p = (const char *)base + f->off;

		if (f->secret && !secrets)
			continue;
		switch (f->type) {
		case F_STR: json_object_set_new(o, f->name, json_string(p)); break;
		case F_INT: json_object_set_new(o, f->name, json_integer(*(const int *)(const void *)p)); break;
		case F_U32: json_object_set_new(o, f->name, json_integer(*(const uint32_t *)(const void *)p)); break;
		case F_BOOL: json_object_set_new(o, f->name, json_boolean(*(const bool *)(const void *)p)); break;
		}
	}
	return o;
}

/* Unknown keys are ignored here; the caller decides which objects are strict. */
static int fields_from_json(const struct field *f, void *base, json_t *o, const char *what,
			    char *err, size_t errlen)
{
	for (; f->name; f++) {
		json_t *v = json_object_get(o, f->name);
		char *p = (char *)base + f->off;

		if (!v)
			continue;
		switch (f->type) {
		case F_STR:
			if (!json_is_string(v) || sim_strlcpy(p, json_string_value(v), f->size) != 0)
				goto bad;
			break;
		case F_INT:
			if (!json_is_integer(v) || json_integer_value(v) < -2147483647LL ||
			    json_integer_value(v) > 2147483647LL)
				goto bad;
			*(int *)(void *)p = (int)json_integer_value(v);
			break;
		case F_U32:
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 0xffffffffLL)
				goto bad;
			*(uint32_t *)(void *)p = (uint32_t)json_integer_value(v);
			break;
		case F_BOOL:
			if (!json_is_boolean(v))
				goto bad;
			*(bool *)(void *)p = json_is_true(v);
			break;
		}
		continue;
bad:
		snprintf(err, errlen, "%s.%s: wrong type or too long", what, f->name);
		return -1;
	}
	return 0;
}

json_t *device_to_json(const struct device *d, bool secrets)
{
	json_t *o = fields_to_json(device_fields, d, secrets);
	json_t *a;
	char hex[97];

	if (!o)
		return NULL;
	json_object_set_new(o, "amt_version", json_string(d->version));
	json_object_set_new(o, "provisioning_state", json_string(device_state_name(d->prov_state)));
	json_object_set_new(o, "control_mode", json_string(cm_name(d->control_mode)));
	json_object_set_new(o, "has_legacy_soap", json_boolean(device_has_legacy_soap(d)));
	if (d->address[0])
		json_object_set_new(o, "address", json_string(d->address));
	json_object_set_new(o, "tls_remote", fields_to_json(tls_fields, &d->tls_remote, secrets));
	json_object_set_new(o, "tls_local", fields_to_json(tls_fields, &d->tls_local, secrets));
	json_object_set_new(o, "tls_remote_pending",
			    fields_to_json(tls_fields, &d->tls_remote_pending, secrets));
	json_object_set_new(o, "tls_local_pending",
			    fields_to_json(tls_fields, &d->tls_local_pending, secrets));
	a = json_array();
	for (int i = 0; i < d->tls_remote.n_trusted_cn; i++)
		json_array_append_new(a, json_string(d->tls_remote.trusted_cn[i]));
	json_object_set_new(json_object_get(o, "tls_remote"), "trusted_cn", a);
	json_object_set_new(o, "kerberos", fields_to_json(krb_fields, &d->kerberos, secrets));
	a = json_array();
	for (int i = 0; i < d->kerberos.n_spn; i++) {
		json_t *s = json_object();

		json_object_set_new(s, "spn", json_string(d->kerberos.spn[i]));
		json_object_set_new(s, "protocol", json_integer(d->kerberos.spn_protocol[i]));
		json_array_append_new(a, s);
	}
	json_object_set_new(json_object_get(o, "kerberos"), "spns", a);
	json_object_set_new(o, "wired", fields_to_json(port_fields, &d->wired, secrets));
	json_object_set_new(o, "wireless", fields_to_json(port_fields, &d->wireless, secrets));
	json_object_set_new(o, "ieee8021x", fields_to_json(x_fields, &d->ieee8021x, secrets));

	a = json_array();
	for (int i = 0; i < d->n_hashes; i++) {
		const struct dev_root_hash *h = &d->hashes[i];
		json_t *e = json_object();

		sim_hex(h->hash, hash_len(h->algo), hex, false);
		json_object_set_new(e, "name", json_string(h->name));
		json_object_set_new(e, "algo", json_string(hash_algo_name(h->algo)));
		json_object_set_new(e, "hash", json_string(hex));
		json_object_set_new(e, "default", json_boolean(h->is_default));
		json_object_set_new(e, "enabled", json_boolean(h->enabled));
		json_array_append_new(a, e);
	}
	json_object_set_new(o, "root_hashes", a);
	a = json_array();
	for (int i = 0; i < d->n_users; i++)
		json_array_append_new(a, fields_to_json(user_fields, &d->users[i], secrets));
	json_object_set_new(o, "users", a);
	a = json_array();
	for (int i = 0; i < d->n_certs; i++) {
		json_t *e = json_object();

		json_object_set_new(e, "handle", json_integer(d->certs[i].handle));
		json_object_set_new(e, "der", json_string(d->certs[i].der_b64));
		json_object_set_new(e, "trusted_root", json_boolean(d->certs[i].trusted_root));
		json_object_set_new(e, "read_only", json_boolean(d->certs[i].read_only));
		json_array_append_new(a, e);
	}
	json_object_set_new(o, "certificates", a);
	a = json_array();
	for (int i = 0; i < d->n_keys; i++) {
		json_t *e = json_object();
		char *pub = public_pem(d->keys[i].pem);

		json_object_set_new(e, "handle", json_integer(d->keys[i].handle));
		/* The public half is no secret: a test tells which key is whose without it. */
		if (pub)
			json_object_set_new(e, "public_pem", json_string(pub));
		free(pub);
		if (secrets)
			json_object_set_new(e, "pem", json_string(d->keys[i].pem));
		json_array_append_new(a, e);
	}
	json_object_set_new(o, "keys", a);
	a = json_array();
	for (int i = 0; i < d->n_wifi; i++)
		json_array_append_new(a, fields_to_json(wifi_fields, &d->wifi[i], secrets));
	json_object_set_new(o, "wifi_profiles", a);
	a = json_array();
	for (int i = 0; i < d->n_ctx; i++)
		json_array_append_new(a, fields_to_json(ctx_fields, &d->ctxs[i], secrets));
	json_object_set_new(o, "credential_contexts", a);
	if (secrets && d->self_cert_pem && d->self_key_pem) {
		json_object_set_new(o, "self_cert_pem", json_string(d->self_cert_pem));
		json_object_set_new(o, "self_key_pem", json_string(d->self_key_pem));
	} else if (d->self_cert_pem) {
		json_object_set_new(o, "self_cert_pem", json_string(d->self_cert_pem));
	}
	a = json_array();
	for (int i = 0; i < d->audit_len; i++) {
		const struct dev_audit *e = &d->audit[(d->audit_start + i) % DEV_AUDIT_MAX];
		json_t *j = json_object();

		json_object_set_new(j, "time", json_integer((json_int_t)e->when));
		json_object_set_new(j, "event", json_string(e->event));
		json_array_append_new(a, j);
	}
	json_object_set_new(o, "audit", a);
	return o;
}

static int load_array(json_t *o, const char *key, size_t max, char *err, size_t errlen,
		      json_t **out)
{
	json_t *a = json_object_get(o, key);

	*out = NULL;
	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > max) {
		snprintf(err, errlen, "%s: not an array or more than %zu entries", key, max);
		return -1;
	}
	*out = a;
	return 0;
}

int device_apply_json(struct device *d, json_t *o, char *err, size_t errlen)
{
	json_t *v, *a, *e;
	size_t i;

	if (!json_is_object(o)) {
		snprintf(err, errlen, "device: not an object");
		return -1;
	}
	if (fields_from_json(device_fields, d, o, "device", err, errlen) != 0)
		return -1;
	v = json_object_get(o, "amt_version");
	if (v && (!json_is_string(v) || device_set_version(d, json_string_value(v)) != 0)) {
		snprintf(err, errlen, "amt_version: want \"major.minor.build\"");
		return -1;
	}
	v = json_object_get(o, "provisioning_state");
	if (v) {
		int s = json_is_string(v) ? device_state_parse(json_string_value(v)) : -1;

		if (s < 0) {
			snprintf(err, errlen, "provisioning_state: want pre, in or post");
			return -1;
		}
		d->prov_state = s;
	}
	v = json_object_get(o, "control_mode");
	if (v) {
		int s = json_is_string(v) ? cm_parse(json_string_value(v)) : -1;

		if (s < 0) {
			snprintf(err, errlen, "control_mode: want none, ccm or acm");
			return -1;
		}
		d->control_mode = s;
	}
	/* A fleet file gives a clear-text admin password; state files keep only HA1. */
	v = json_object_get(o, "admin_password");
	if (v) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "admin_password: not a string");
			return -1;
		}
		device_ha1(d->admin_user, d->realm, json_string_value(v), d->admin_ha1);
	}
	if (fields_from_json(tls_fields, &d->tls_remote, json_object_get(o, "tls_remote"),
			     "tls_remote", err, errlen) ||
	    fields_from_json(tls_fields, &d->tls_local, json_object_get(o, "tls_local"),
			     "tls_local", err, errlen) ||
	    fields_from_json(tls_fields, &d->tls_remote_pending,
			     json_object_get(o, "tls_remote_pending"), "tls_remote_pending", err,
			     errlen) ||
	    fields_from_json(tls_fields, &d->tls_local_pending,
			     json_object_get(o, "tls_local_pending"), "tls_local_pending", err,
			     errlen) ||
	    fields_from_json(krb_fields, &d->kerberos, json_object_get(o, "kerberos"), "kerberos",
			     err, errlen) ||
	    fields_from_json(port_fields, &d->wired, json_object_get(o, "wired"), "wired", err,
			     errlen) ||
	    fields_from_json(port_fields, &d->wireless, json_object_get(o, "wireless"), "wireless",
			     err, errlen) ||
	    fields_from_json(x_fields, &d->ieee8021x, json_object_get(o, "ieee8021x"), "ieee8021x",
			     err, errlen))
		return -1;
	if ((a = json_object_get(json_object_get(o, "tls_remote"), "trusted_cn")) &&
	    json_is_array(a)) {
		d->tls_remote.n_trusted_cn = 0;
		json_array_foreach(a, i, e) {
			if (!json_is_string(e) || i >= DEV_MAX_TRUSTED_CN)
				break;
			sim_strlcpy(d->tls_remote.trusted_cn[i], json_string_value(e), 64);
			d->tls_remote.n_trusted_cn++;
		}
	}
	if ((a = json_object_get(json_object_get(o, "kerberos"), "spns")) && json_is_array(a)) {
		d->kerberos.n_spn = 0;
		json_array_foreach(a, i, e) {
			if (i >= DEV_MAX_SPN)
				break;
			sim_strlcpy(d->kerberos.spn[i], json_string_value(json_object_get(e, "spn")), 128);
			d->kerberos.spn_protocol[i] = (int)json_integer_value(json_object_get(e, "protocol"));
			d->kerberos.n_spn++;
		}
	}
	if (load_array(o, "root_hashes", DEV_MAX_HASHES, err, errlen, &a))
		return -1;
	if (a) {
		/* A list with "replace": false (fleet overrides) adds; state files replace. */
		bool add_only = json_is_false(json_object_get(o, "root_hashes_replace"));

		if (!add_only)
			d->n_hashes = 0;
		json_array_foreach(a, i, e) {
			const char *hx = json_string_value(json_object_get(e, "hash"));
			const char *al = json_string_value(json_object_get(e, "algo"));
			const char *nm = json_string_value(json_object_get(e, "name"));
			int algo = al ? hash_algo_parse(al) : DEV_HASH_SHA256;
			unsigned char bin[48];
			json_t *en = json_object_get(e, "enabled");

			if (!hx || algo < 0 || sim_unhex(hx, bin, sizeof(bin)) != (int)hash_len(algo)) {
				snprintf(err, errlen, "root_hashes[%zu]: bad algo or hash", i);
				return -1;
			}
			if (device_add_hash(d, nm ? nm : "user", algo, bin,
					    json_is_true(json_object_get(e, "default")),
					    en ? json_is_true(en) : true) == -1) {
				snprintf(err, errlen, "root_hashes[%zu]: table full", i);
				return -1;
			}
		}
	}
	if (load_array(o, "users", DEV_MAX_USERS, err, errlen, &a))
		return -1;
	if (a) {
		d->n_users = 0;
		json_array_foreach(a, i, e) {
			memset(&d->users[i], 0, sizeof(d->users[i]));
			if (fields_from_json(user_fields, &d->users[i], e, "users", err, errlen))
				return -1;
			d->n_users++;
		}
	}
	if (load_array(o, "certificates", DEV_MAX_CERTS, err, errlen, &a))
		return -1;
	if (a) {
		free_certs_keys(d, false);
		json_array_foreach(a, i, e) {
			const char *der = json_string_value(json_object_get(e, "der"));
			struct dev_cert *c = &d->certs[d->n_certs];

			if (!der)
				continue;
			c->handle = (uint32_t)json_integer_value(json_object_get(e, "handle"));
			c->der_b64 = strdup(der);
			c->trusted_root = json_is_true(json_object_get(e, "trusted_root"));
			c->read_only = json_is_true(json_object_get(e, "read_only"));
			if (c->der_b64)
				d->n_certs++;
		}
	}
	if (load_array(o, "keys", DEV_MAX_KEYS, err, errlen, &a))
		return -1;
	if (a) {
		json_array_foreach(a, i, e) {
			const char *pem = json_string_value(json_object_get(e, "pem"));
			struct dev_key *k = &d->keys[d->n_keys];

			if (!pem)
				continue;
			k->handle = (uint32_t)json_integer_value(json_object_get(e, "handle"));
			k->pem = strdup(pem);
			if (k->pem)
				d->n_keys++;
		}
	}
	if (load_array(o, "wifi_profiles", DEV_MAX_WIFI, err, errlen, &a))
		return -1;
	if (a) {
		d->n_wifi = 0;
		json_array_foreach(a, i, e) {
			memset(&d->wifi[i], 0, sizeof(d->wifi[i]));
			if (fields_from_json(wifi_fields, &d->wifi[i], e, "wifi_profiles", err, errlen))
				return -1;
			d->n_wifi++;
		}
	}
	if (load_array(o, "credential_contexts", DEV_MAX_CTX, err, errlen, &a))
		return -1;
	if (a) {
		d->n_ctx = 0;
		json_array_foreach(a, i, e) {
			memset(&d->ctxs[i], 0, sizeof(d->ctxs[i]));
			if (fields_from_json(ctx_fields, &d->ctxs[i], e, "credential_contexts", err,
					     errlen))
				return -1;
			d->n_ctx++;
		}
	}
	v = json_object_get(o, "self_cert_pem");
	e = json_object_get(o, "self_key_pem");
	if (json_is_string(v) && json_is_string(e)) {
		free(d->self_cert_pem);
		free(d->self_key_pem);
		d->self_cert_pem = strdup(json_string_value(v));
		d->self_key_pem = strdup(json_string_value(e));
	}
	if (load_array(o, "audit", 100000, err, errlen, &a))
		return -1;
	if (a) {
		json_array_foreach(a, i, e) {
			const char *ev = json_string_value(json_object_get(e, "event"));
			char *copy = ev ? strdup(ev) : NULL;

			if (copy)
				audit_push(d, (time_t)json_integer_value(json_object_get(e, "time")), copy);
		}
	}
	return 0;
}

int device_load(struct device *d, const char *path, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o = json_load_file(path, 0, &je);
	int rc;

	if (!o) {
		snprintf(err, errlen, "%s:%d: %s", path, je.line, je.text);
		return -1;
	}
	rc = device_apply_json(d, o, err, errlen);
	json_decref(o);
	if (rc == 0)
		d->dirty = false;
	return rc;
}

int device_save(struct device *d, const char *path)
{
	json_t *o = device_to_json(d, true);
	char *s;
	int rc;

	if (!o)
		return -1;
	s = json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		return -1;
	rc = sim_write_atomic(path, s, strlen(s));
	free(s);
	if (rc == 0)
		d->dirty = false;
	return rc;
}

/* ---- wireless profiles ---------------------------------------------------------------- */

int device_add_wifi(struct device *d, const struct dev_wifi *w)
{
	int users = 0, oldest_user = -1;

	for (int i = 0; i < d->n_wifi; i++) {
		if (!strcmp(d->wifi[i].name, w->name))
			return -2;
		if (d->wifi[i].user_profile) {
			users++;
			if (oldest_user < 0)
				oldest_user = i; /* kept in insertion order: the first is the oldest */
		}
	}
	/* AMT keeps at most 8 user (host-synced) profiles: the 9th replaces the oldest. A user
	 * profile may also take the oldest user slot when all 16 are taken. */
	if (w->user_profile && oldest_user >= 0 &&
	    (users >= DEV_MAX_WIFI_USER || d->n_wifi >= DEV_MAX_WIFI)) {
		memmove(&d->wifi[oldest_user], &d->wifi[oldest_user + 1],
			(size_t)(d->n_wifi - oldest_user - 1) * sizeof(d->wifi[0]));
		d->n_wifi--;
		device_audit(d, "wireless: oldest user profile replaced (limit %d user profiles)",
			     DEV_MAX_WIFI_USER);
	}
	if (d->n_wifi >= DEV_MAX_WIFI)
		return -1;
	d->wifi[d->n_wifi++] = *w;
	d->dirty = true;
	return 0;
}

/* ---- fault injection ------------------------------------------------------------------- */

uint64_t device_fault_rand(struct device *d)
{
	/* xorshift64*: tiny, fast and good enough to make fault patterns repeatable. */
	uint64_t x = d->faults.rng ? d->faults.rng : 0x9E3779B97F4A7C15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	d->faults.rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static bool roll_percent(struct device *d, unsigned pct)
{
	return pct && device_fault_rand(d) % 100 < pct;
}

static bool nth_hit(unsigned long count, unsigned long nth, bool repeat)
{
	if (!nth)
		return false;
	return repeat ? count % nth == 0 : count == nth;
}

bool device_fault_drop(struct device *d)
{
	struct dev_faults *f = &d->faults;

	f->requests++;
	return nth_hit(f->requests, f->drop_nth, f->drop_repeat) || roll_percent(d, f->drop_percent);
}

bool device_fault_hang(struct device *d)
{
	return nth_hit(d->faults.requests, d->faults.hang_nth, d->faults.hang_repeat);
}

bool device_fault_digest(struct device *d)
{
	struct dev_faults *f = &d->faults;

	f->auth_requests++;
	return nth_hit(f->auth_requests, f->digest_fail_nth, f->digest_fail_repeat) ||
	       roll_percent(d, f->digest_fail_percent);
}

unsigned device_fault_latency(struct device *d)
{
	struct dev_faults *f = &d->faults;

	return f->latency_ms +
	       (f->latency_jitter_ms ? (unsigned)(device_fault_rand(d) % (f->latency_jitter_ms + 1))
				     : 0);
}

int device_fault_hostile(struct device *d, const char *body)
{
	struct dev_faults *f = &d->faults;

	if (!f->hostile || (f->hostile_match[0] && !strstr(body ? body : "", f->hostile_match)))
		return HOSTILE_NONE;
	f->hostile_seen++;
	if (f->hostile_nth && f->hostile_seen != f->hostile_nth)
		return HOSTILE_NONE;
	return f->hostile;
}

static const char *const hostile_names[] = {
	[HOSTILE_EMPTY_BODY] = "empty_body",	     [HOSTILE_WRONG_ELEMENT] = "wrong_element",
	[HOSTILE_FAULT_NO_DETAIL] = "fault_no_detail", [HOSTILE_HUGE_BODY] = "huge_body",
	[HOSTILE_TRUNCATED_BODY] = "truncated_body",   [HOSTILE_SLOW_DRIP] = "slow_drip",
};

const char *hostile_kind_name(int kind)
{
	if (kind <= 0 || kind >= (int)(sizeof(hostile_names) / sizeof(hostile_names[0])))
		return NULL;
	return hostile_names[kind];
}

int hostile_kind_parse(const char *name)
{
	for (int k = 1; k < (int)(sizeof(hostile_names) / sizeof(hostile_names[0])); k++)
		if (!strcmp(name, hostile_names[k]))
			return k;
	return -1;
}

static int fault_hostile(struct dev_faults *f, json_t *o, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, "hostile");
	json_t *m = json_object_get(o, "hostile_match");
	int k;

	if (v) {
		k = json_is_string(v) ? hostile_kind_parse(json_string_value(v)) : -1;
		if (json_is_null(v) || (json_is_string(v) && !strcmp(json_string_value(v), "none")))
			k = HOSTILE_NONE;
		if (k < 0) {
			snprintf(err, errlen, "faults.hostile: want one of empty_body, wrong_element, "
					      "fault_no_detail, huge_body, truncated_body, slow_drip");
			return -1;
		}
		f->hostile = k;
	}
	if (m) {
		if (!json_is_string(m) || sim_strlcpy(f->hostile_match, json_string_value(m),
						      sizeof(f->hostile_match)) != 0) {
			snprintf(err, errlen, "faults.hostile_match: want a string of at most %zu "
					      "bytes", sizeof(f->hostile_match) - 1);
			return -1;
		}
	}
	return 0;
}

bool device_flash_write(struct device *d)
{
	struct dev_faults *f = &d->faults;

	if (f->flash_writes && f->flash_writes_done >= f->flash_writes)
		return false;
	f->flash_writes_done++;
	return true;
}

static int fault_uint(json_t *o, const char *key, unsigned long max, unsigned long *out,
		      char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (unsigned long long)json_integer_value(v) > max) {
		snprintf(err, errlen, "faults.%s: want an integer 0..%lu", key, max);
		return -1;
	}
	*out = (unsigned long)json_integer_value(v);
	return 0;
}

static int fault_bool(json_t *o, const char *key, bool *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "faults.%s: want true or false", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

static int faults_from_json(struct dev_faults *f, json_t *o, char *err, size_t errlen)
{
	static const char *const known[] = {
		"seed", "latency_ms", "latency_jitter_ms", "drop_nth", "drop_repeat",
		"drop_percent", "commit_fail", "flash_writes", "wrong_otp", "digest_fail_nth",
		"digest_fail_repeat", "digest_fail_percent", "hang_nth", "hang_repeat",
		"commit_latency_ms", "hostile", "hostile_match", "hostile_nth",
		"hostile_drip_ms", "mei"};
	unsigned long v;
	const char *k;
	json_t *val;

	if (!o)
		return 0;
	if (!json_is_object(o)) {
		snprintf(err, errlen, "faults: not an object");
		return -1;
	}
	/* Strict: a misspelt fault would silently test nothing. */
	json_object_foreach(o, k, val) {
		bool ok = false;

		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok = ok || !strcmp(k, known[i]);
		if (!ok) {
			snprintf(err, errlen, "faults: unknown key \"%s\"", k);
			return -1;
		}
	}
	v = 0;
	if (json_object_get(o, "seed")) {
		if (fault_uint(o, "seed", 0xffffffffUL, &v, err, errlen))
			return -1;
		f->seed = v;
	}
#define U(key, field, max)                                              \
	do {                                                            \
		v = f->field;                                           \
		if (fault_uint(o, key, max, &v, err, errlen))           \
			return -1;                                      \
		f->field = v;                                           \
	} while (0)
	U("latency_ms", latency_ms, 600000);
	U("latency_jitter_ms", latency_jitter_ms, 600000);
	U("commit_latency_ms", commit_latency_ms, 600000);
	U("drop_nth", drop_nth, 0xffffffffUL);
	U("drop_percent", drop_percent, 100);
	U("hang_nth", hang_nth, 0xffffffffUL);
	U("flash_writes", flash_writes, 0xffffffffUL);
	U("digest_fail_nth", digest_fail_nth, 0xffffffffUL);
	U("digest_fail_percent", digest_fail_percent, 100);
	U("hostile_nth", hostile_nth, 0xffffffffUL);
	U("hostile_drip_ms", hostile_drip_ms, 600000);
#undef U
	if (fault_hostile(f, o, err, errlen))
		return -1;
	if (json_object_get(o, "mei")) {
		f->mei = sim_mei_fault_parse(json_string_value(json_object_get(o, "mei")));
		if (f->mei < 0) {
			snprintf(err, errlen, "faults: \"mei\": one of none, absent, disabled, "
				 "busy, not_ready");
			return -1;
		}
	}
	v = (unsigned long)f->commit_fail;
	if (fault_uint(o, "commit_fail", 0xffff, &v, err, errlen))
		return -1;
	f->commit_fail = (int)v;
	if (fault_bool(o, "drop_repeat", &f->drop_repeat, err, errlen) ||
	    fault_bool(o, "hang_repeat", &f->hang_repeat, err, errlen) ||
	    fault_bool(o, "wrong_otp", &f->wrong_otp, err, errlen) ||
	    fault_bool(o, "digest_fail_repeat", &f->digest_fail_repeat, err, errlen))
		return -1;
	return 0;
}

int device_apply_faults(struct device *d, json_t *fleet, json_t *dev, char *err, size_t errlen)
{
	uint64_t h = 1469598103934665603ULL;

	memset(&d->faults, 0, sizeof(d->faults));
	if (faults_from_json(&d->faults, fleet, err, errlen) ||
	    faults_from_json(&d->faults, dev, err, errlen))
		return -1;
	/* FNV-1a of the id: devices of one fleet get different, repeatable sequences. */
	for (const char *p = d->id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	/* splitmix64 of seed ^ id-hash: nearby seeds give unrelated sequences; never 0. */
	h ^= d->faults.seed;
	h += 0x9E3779B97F4A7C15ULL;
	h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ULL;
	h = (h ^ (h >> 27)) * 0x94D049BB133111EBULL;
	h ^= h >> 31;
	d->faults.rng = h ? h : 1;
	return 0;
}
