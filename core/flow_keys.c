/* SPDX-License-Identifier: Apache-2.0 */
/* The key a flow step hands AMT (ADD_KEY): see flow_keys.h. */
#include "flow_keys.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "manifest.h"
#include "pki.h"
#include "plugin_host.h"
#include "util.h"

char *flow_b64(const uint8_t *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
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

json_t *flow_key_params_stored(struct site *s, const char *cred_name,
			       struct amtprov_error *err)
{
	struct manifest *m = site_manifest(s);
	struct plugin_instance *cs =
		m->credstore ? plugin_host_find(site_plugins(s), m->credstore) : NULL;
	struct amtprov_secret *pem = NULL;
	EVP_PKEY *key = NULL;
	json_t *p = NULL;

	if (!cs) {
		amtprov_error_set(err, AMTPROV_E_CONFIG, cred_name,
				  "no credential store is loaded to hold the key");
		return NULL;
	}
	if (pi_credstore_get(cs, cred_name, &pem, err) == AMTPROV_OK &&
	    pki_load_pem_key(pem->data, pem->len, cred_name, &key, err) == AMTPROV_OK) {
		p = flow_key_params(key);
		if (!p)
			amtprov_error_set(err, AMTPROV_E_CRYPTO, cred_name, "the key cannot be encoded");
	}
	EVP_PKEY_free(key);
	util_secret_free(pem);
	return p;
}
