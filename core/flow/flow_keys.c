/* SPDX-License-Identifier: Apache-2.0 */
/* The key a flow step hands AMT (ADD_KEY): see flow_keys.h. */
#include "flow_keys.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "flow_int.h"
#include "manifest.h"
#include "pki.h"
#include "plugin_host.h"
#include "status.h"
#include "util.h"

char *flow_b64(const uint8_t *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

unsigned char *flow_unb64(const char *in, size_t *len)
{
	size_t n = in ? strlen(in) : 0;
	unsigned char *out = n && n % 4 == 0 ? malloc(n) : NULL;
	int got = out ? EVP_DecodeBlock(out, (const unsigned char *)in, (int)n) : -1;

	if (got < 0) {
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts the padding as data. */
	if (in[n - 1] == '=')
		got -= in[n - 2] == '=' ? 2 : 1;
	*len = (size_t)got;
	return out;
}

EVP_PKEY *flow_amt_public_key(const char *derkey_b64)
{
	size_t len = 0;
	unsigned char *der = flow_unb64(derkey_b64, &len);
	const unsigned char *p = der;
	EVP_PKEY *key = der ? d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len) : NULL;

	free(der);
	return key;
}

int flow_cert_handle_find(const json_t *result, const char *der_b64, char *out, size_t size)
{
	const json_t *it;
	size_t i;

	json_array_foreach(json_object_get(result, "certificates"), i, it) {
		const char *der = json_string_value(json_object_get(it, "cert_der_b64"));
		const char *id = json_string_value(json_object_get(it, "cert_handle"));

		/* Both sides may come from a device's answer: a missing value is no match. */
		if (der && id && der_b64 && strcmp(der, der_b64) == 0) {
			util_strlcpy(out, id, size);
			return 1;
		}
	}
	return 0;
}

json_t *flow_key_params(EVP_PKEY *key)
{
	unsigned char *der = NULL;
	int n = key ? i2d_PrivateKey(key, &der) : 0;
	char *s = n > 0 ? flow_b64(der, (size_t)n) : NULL;
	json_t *p = s ? json_pack("{s:s}", "key_der_b64", s) : NULL;

	if (s) {
		util_wipe(s, strlen(s));
		free(s);
	}
	if (der) {
		util_wipe(der, (size_t)n);
		OPENSSL_free(der);
	}
	return p;
}

EVP_PKEY *flow_key_stored(struct site *s, const char *cred_name, struct amtprov_error *err)
{
	struct manifest *m = site_manifest(s);
	struct plugin_instance *cs =
		m->credstore ? plugin_host_find(site_plugins(s), m->credstore) : NULL;
	struct amtprov_secret *pem = NULL;
	EVP_PKEY *key = NULL;

	if (!cs) {
		amtprov_error_set(err, AMTPROV_E_CONFIG, cred_name,
				  "no credential store is loaded to hold the key");
		return NULL;
	}
	if (pi_credstore_get(cs, cred_name, &pem, err) == AMTPROV_OK)
		pki_load_pem_key(pem->data, pem->len, cred_name, &key, err);
	util_secret_free(pem);
	return key;
}

json_t *flow_key_params_stored(struct site *s, const char *cred_name,
			       struct amtprov_error *err)
{
	EVP_PKEY *key = flow_key_stored(s, cred_name, err);
	json_t *p = key ? flow_key_params(key) : NULL;

	if (key && !p)
		amtprov_error_set(err, AMTPROV_E_CRYPTO, cred_name, "the key cannot be encoded");
	EVP_PKEY_free(key);
	return p;
}

json_t *flow_chain_array(const char *pem)
{
	json_t *arr = json_array();
	BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x;

	while (bio && arr && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		unsigned char *der = NULL;
		int n = i2d_X509(x, &der);
		char *s = n > 0 ? flow_b64(der, (size_t)n) : NULL;

		if (s)
			json_array_append_new(arr, json_string(s));
		free(s);
		OPENSSL_free(der);
		X509_free(x);
	}
	ERR_clear_error(); /* the end of the chain reads as an error */
	BIO_free(bio);
	return arr;
}

/* Keys generated inside AMT: AMT_PublicKeyManagementService.GenerateKeyPair and
 * GeneratePKCS10RequestEx from AMT 6.2 (docs/amtsim.md, "Version rules"). Below 9.0 the
 * first stage is legacy SOAP, but the certificate of a key AMT holds goes in over WS-Man
 * (AddCertificate, AMT_TLSCredentialContext: AMT 6.0+), as on newer firmware. */
#define AMT_KEYGEN_SINCE 602

int flow_key_source(struct flow *f, const struct store_device *d, const char *what,
		    int *amt_auto, char *why, size_t n)
{
	int mode = site_manifest(f->site)->web_server.key_source, major = 0, minor = 0;
	const char *ver = d->amt_version[0] ? d->amt_version : "(unknown)";

	*amt_auto = 0;
	if (mode == MANIFEST_KEY_AMTPROV)
		return 0;
	sscanf(d->amt_version, "%d.%d", &major, &minor);
	*amt_auto = mode == MANIFEST_KEY_AUTO;
	if (!f->tloop) {
		if (*amt_auto)
			return 0;
		snprintf(why, n, "/certificates/web_server/key_source 'amt' (%s): no usable "
			 "transport to reach the device's AMT", what);
		return -1;
	}
	if (major * 100 + minor >= AMT_KEYGEN_SINCE)
		return 1;
	/* The same rule for every key of the device, so it keeps all its keys one way. */
	snprintf(why, n, "%s: AMT %.30s %s keys inside AMT (GenerateKeyPair and "
		 "GeneratePKCS10RequestEx come with AMT 6.2); %s", d->fqdn, ver,
		 d->amt_version[0] ? "cannot generate" : "(version not reported) is not trusted to generate",
		 *amt_auto ? "amtprov makes the key (/certificates/web_server/key_source 'auto')"
			   : "/certificates/web_server/key_source 'amt' cannot be honoured: use "
			     "'auto' or 'amtprov' for it (R-PROV-06)");
	{
		char detail[STORE_TEXT_SIZE];

		snprintf(detail, sizeof(detail), "%s (%s)", why, what);
		site_status(f->site, STATUS_FIRMWARE_FEATURE_MISSING, d->fqdn, detail);
	}
	if (*amt_auto) {
		why[0] = 0;
		return 0;
	}
	return -1;
}
