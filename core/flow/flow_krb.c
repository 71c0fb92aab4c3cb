/* SPDX-License-Identifier: Apache-2.0 */
/* Kerberos for AMT: the directory step's keys and SIDs, the second stage's settings
 * (flow_krb.h). */
#include "flow_krb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "flow.h"
#include "krb_keys.h"
#include "util.h"

/* AMT's MaximumClockTolerance in minutes: Kerberos' customary five (RFC 4120 allows the
 * realm to choose; AD's default is 5). */
#define CLOCK_TOLERANCE_MIN 5
/* msDS-SupportedEncryptionTypes bits: RC4-HMAC, AES128 | AES256 */
#define ENCTYPE_RC4 0x4u
#define ENCTYPES_AES 0x18u

struct flow_krb_prep {
	struct plugin_instance *dir, *cs;
	char *fqdn;
	int keys;       /* derive and store the keys (Kerberos enabled) */
	char **names;   /* Kerberos account names to resolve to SIDs */
	size_t n_names;
};

void flow_krb_info_name(const char *fqdn, char *out, size_t size)
{
	snprintf(out, size, "device/%s/kerberos", fqdn);
}

void flow_krb_key_name(const char *fqdn, char *out, size_t size)
{
	snprintf(out, size, "device/%s/kerberos-master-key", fqdn);
}

int flow_krb_is_sid(const char *s)
{
	unsigned long long v;
	char *end;
	int n = 0;

	if (!s || strncmp(s, "S-1-", 4) != 0)
		return 0;
	s += 4;
	/* identifier authority, then 1..5 sub-authorities of 32 bits */
	v = strtoull(s, &end, 10);
	if (end == s || v > 0xFFFFFFFFFFFFull)
		return 0;
	for (s = end; *s; s = end) {
		if (*s != '-' || !(s[1] >= '0' && s[1] <= '9'))
			return 0;
		v = strtoull(s + 1, &end, 10);
		if (v > 0xFFFFFFFFull || ++n > 5)
			return 0;
	}
	return n >= 1;
}

void flow_krb_prep_free(struct flow_krb_prep *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_names; i++)
		free(p->names[i]);
	free(p->names);
	free(p->fqdn);
	free(p);
}

struct flow_krb_prep *flow_krb_prep_new(const struct manifest *m, struct plugin_instance *dir,
					struct plugin_instance *cs, const char *fqdn,
					struct amtprov_error *err)
{
	struct flow_krb_prep *p;
	size_t n = 0;

	for (size_t i = 0; i < m->n_amt_accounts; i++)
		n += m->amt_accounts[i].kerberos && !flow_krb_is_sid(m->amt_accounts[i].name);
	if (m->kerberos != 1 && !n)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p) {
		p->dir = dir;
		p->cs = cs;
		p->keys = m->kerberos == 1;
		p->fqdn = strdup(fqdn);
		p->names = calloc(n ? n : 1, sizeof(*p->names));
	}
	if (!p || !p->fqdn || !p->names)
		goto oom;
	for (size_t i = 0; i < m->n_amt_accounts; i++) {
		const struct manifest_amt_account *a = &m->amt_accounts[i];

		if (!a->kerberos || flow_krb_is_sid(a->name))
			continue;
		if (!(p->names[p->n_names] = strdup(a->name)))
			goto oom;
		p->n_names++;
	}
	return p;
oom:
	flow_krb_prep_free(p);
	amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	return NULL;
}

static void hex(const unsigned char *k, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", k[i]);
}

/* Stores @p len bytes under @p name, wiping the copy. */
static int put_secret(struct plugin_instance *cs, const char *name, const void *data,
		      size_t len, struct amtprov_error *err)
{
	struct amtprov_secret *s = util_secret_new(len);
	int rc;

	if (!s)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	memcpy(s->data, data, len);
	rc = pi_credstore_put(cs, name, s, err);
	util_secret_free(s);
	return rc;
}

/* The keys into @p info (AES, hex) and the master-key record (RC4). */
static int store_keys(struct flow_krb_prep *p, const struct amtprov_secret *pw, json_t *info,
		      struct amtprov_error *err)
{
	struct amtprov_directory_keyinfo ki;
	unsigned char rc4[16], aes[32];
	char h[65], name[STORE_FQDN_SIZE + 40];
	int rc;

	if (!pw || !pw->len)
		return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, NULL,
					 "the directory plugin returned no password for %s's "
					 "account: AMT's Kerberos key cannot be derived", p->fqdn);
	rc = pi_directory_keyinfo(p->dir, p->fqdn, &ki, err);
	if (rc != AMTPROV_OK)
		return rc;
	/* AMT gets the RC4-HMAC key only (EncryptionAlgorithm 0). A KDC encrypts service
	 * tickets with the strongest type the account allows, so an account that allows AES
	 * yields tickets AMT can never decrypt: refuse here rather than leave consoles a 401.
	 * 0 is AD's "not set", where RC4 is the default. */
	if (ki.enctypes && ((ki.enctypes & ENCTYPES_AES) || !(ki.enctypes & ENCTYPE_RC4)))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, NULL,
					 "%s's directory account allows encryption types %u "
					 "(msDS-SupportedEncryptionTypes): the KDC issues tickets "
					 "with the strongest, but AMT gets only the RC4-HMAC key; "
					 "set the directory instance's encryption_types to 4",
					 p->fqdn, (unsigned)ki.enctypes);
	json_object_set_new(info, "realm", json_string(ki.realm));
	json_object_set_new(info, "kvno", json_integer(ki.kvno));
	json_object_set_new(info, "enctypes", json_integer(ki.enctypes));
	json_object_set_new(info, "salt", json_string(ki.salt));
	if (ki.salt[0]) {
		if (krb_key_aes(pw->data, pw->len, ki.salt, KRB_AES_ITERATIONS, aes, 16) ||
		    (hex(aes, 16, h), json_object_set_new(info, "aes128", json_string(h))) ||
		    krb_key_aes(pw->data, pw->len, ki.salt, KRB_AES_ITERATIONS, aes, 32) ||
		    (hex(aes, 32, h), json_object_set_new(info, "aes256", json_string(h)))) {
			rc = amtprov_error_set(err, AMTPROV_E_CRYPTO, NULL,
					       "AES key derivation failed for %s", p->fqdn);
			goto out;
		}
	}
	if (krb_key_rc4(pw->data, pw->len, rc4)) {
		rc = amtprov_error_set(err, AMTPROV_E_CRYPTO, NULL,
				       "RC4-HMAC key derivation failed for %s (is the password "
				       "UTF-8, is OpenSSL's legacy provider installed?)", p->fqdn);
		goto out;
	}
	flow_krb_key_name(p->fqdn, name, sizeof(name));
	rc = put_secret(p->cs, name, rc4, sizeof(rc4), err);
out:
	OPENSSL_cleanse(rc4, sizeof(rc4));
	OPENSSL_cleanse(aes, sizeof(aes));
	OPENSSL_cleanse(h, sizeof(h));
	return rc;
}

int flow_krb_store(struct flow_krb_prep *p, const struct amtprov_secret *password,
		   struct amtprov_error *err)
{
	json_t *info = json_object(), *sids = json_object();
	char name[STORE_FQDN_SIZE + 40], sid[192], *text = NULL;
	int rc = AMTPROV_OK;

	if (!info || !sids) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	if (!p->cs) {
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, NULL,
				       "Kerberos for AMT needs a credential store for the "
				       "device's keys");
		goto out;
	}
	if (p->keys && (rc = store_keys(p, password, info, err)) != AMTPROV_OK)
		goto out;
	for (size_t i = 0; i < p->n_names; i++) {
		rc = pi_directory_resolve_sid(p->dir, p->fqdn, p->names[i], sid, sizeof(sid), err);
		if (rc == AMTPROV_OK && !flow_krb_is_sid(sid))
			rc = amtprov_error_set(err, AMTPROV_E_PROTOCOL, NULL,
					       "the directory resolved '%s' to '%.64s', not a SID "
					       "AMT can hold", p->names[i], sid);
		if (rc != AMTPROV_OK) {
			char why[AMTPROV_ERROR_MSG_SIZE];

			snprintf(why, sizeof(why), "%s", err->msg);
			amtprov_error_set(err, rc, NULL, "AMT user account '%s': %s",
					  p->names[i], why);
			goto out;
		}
		json_object_set_new(sids, p->names[i], json_string(sid));
	}
	json_object_set(info, "sids", sids);
	text = json_dumps(info, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	flow_krb_info_name(p->fqdn, name, sizeof(name));
	rc = put_secret(p->cs, name, text, strlen(text), err);
out:
	if (text) {
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	json_decref(sids);
	json_decref(info);
	return rc;
}

json_t *flow_krb_load(struct plugin_instance *cs, const char *fqdn, struct amtprov_error *err)
{
	struct amtprov_secret *s = NULL;
	char name[STORE_FQDN_SIZE + 40];
	json_error_t je;
	json_t *info;

	flow_krb_info_name(fqdn, name, sizeof(name));
	if (!cs) {
		amtprov_error_set(err, AMTPROV_E_NOT_FOUND, NULL, "no credential store");
		return NULL;
	}
	if (pi_credstore_get(cs, name, &s, err) != AMTPROV_OK)
		return NULL;
	info = json_loadb(s->data, s->len, JSON_REJECT_DUPLICATES, &je);
	util_secret_free(s);
	if (!json_is_object(info)) {
		json_decref(info);
		amtprov_error_set(err, AMTPROV_E_PROTOCOL, NULL,
				  "credential record '%s' is not the Kerberos record amtprov "
				  "writes", name);
		return NULL;
	}
	return info;
}

/* ServicePrincipalProtocol for an SPN (AMT-PROTOCOL.md 8.4): 0 HTTP, 1 HTTPS, 2 SOL/IDER,
 * 3 SOL/IDER over TLS, by AMT's port; the port-less form is the HTTP one. */
static int spn_protocol(const char *spn)
{
	const char *colon = strrchr(spn, ':');

	if (!colon)
		return 0;
	return !strcmp(colon, ":16993") ? 1 : !strcmp(colon, ":16994") ? 2
					    : !strcmp(colon, ":16995") ? 3 : 0;
}

json_t *flow_krb_settings(const json_t *info, const char *fqdn, struct amtprov_error *err)
{
	const char *realm = json_string_value(json_object_get(info, "realm"));
	json_int_t kvno = json_integer_value(json_object_get(info, "kvno"));
	char buf[4 * (STORE_FQDN_SIZE + 16)], name[STORE_FQDN_SIZE + 40];
	const char *spns[8];
	json_t *arr, *p;
	int n;

	if (!realm || !realm[0] || kvno <= 0) {
		amtprov_error_set(err, AMTPROV_E_NOT_FOUND, NULL,
				  "no Kerberos key is stored for %s (the directory step derives "
				  "it; provision the device again)", fqdn);
		return NULL;
	}
	n = flow_device_spns(fqdn, buf, sizeof(buf), spns, 8);
	if (n < 0) {
		amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "device FQDN too long for its SPNs");
		return NULL;
	}
	arr = json_array();
	for (int i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:i}", "spn", spns[i], "protocol",
						     spn_protocol(spns[i])));
	flow_krb_key_name(fqdn, name, sizeof(name));
	/* RC4-HMAC (algorithm 0): the one every AMT version takes as a MasterKey (docs/kerberos.md) */
	p = json_pack("{s:b,s:s,s:o,s:I,s:i,s:s,s:i}", "enabled", 1, "realm", realm, "spns", arr,
		      "key_version", kvno, "encryption_algorithm", 0, "master_key_credential",
		      name, "clock_tolerance", CLOCK_TOLERANCE_MIN);
	if (!p)
		amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	return p;
}

const char *flow_krb_sid(const json_t *info, const char *name)
{
	if (flow_krb_is_sid(name))
		return name;
	return json_string_value(json_object_get(json_object_get(info, "sids"), name));
}
