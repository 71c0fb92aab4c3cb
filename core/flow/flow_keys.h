/* SPDX-License-Identifier: Apache-2.0 */
/* Private: the key a flow step hands AMT (ADD_KEY), shared by the first stage, renewal and
 * the 802.1X step, so the encoding and the wiping of the key's copies live in one place. */
#ifndef AMTPROV_CORE_FLOW_KEYS_H
#define AMTPROV_CORE_FLOW_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include <jansson.h>

#include <amtprov/error.h>

#include "site.h"

/** Base64 of @p data (no line breaks), malloc'd; NULL when out of memory. */
char *flow_b64(const uint8_t *data, size_t len);

/** Decodes base64 (padding aware) into a malloc'd buffer of *@p len bytes; NULL when @p in
 * is not base64 or memory runs out. */
unsigned char *flow_unb64(const char *in, size_t *len);

/** The public key of a key pair AMT holds (transport.h LIST_KEYS: public_key_b64), base64
 * of a PKCS#1 RSAPublicKey (AMT-PROTOCOL.md 8.6). NULL when it does not decode. Free with EVP_PKEY_free. */
EVP_PKEY *flow_amt_public_key(const char *derkey_b64);

/** The handle AMT gave the certificate @p der_b64 (base64 DER), found in a
 * LIST_CERTIFICATES @p result (transport.h), into @p out. @return 1 if listed, else 0. */
int flow_cert_handle_find(const json_t *result, const char *der_b64, char *out, size_t size);

/** ADD_KEY params {"key_der_b64"} for @p key (not consumed). Every plain copy made on the
 * way is wiped. NULL when the key cannot be encoded. */
json_t *flow_key_params(EVP_PKEY *key);

/** The private key stored in the site's credential store as @p cred_name; NULL with @p err
 * set when there is no credential store, no such record, or it is not a key. */
EVP_PKEY *flow_key_stored(struct site *s, const char *cred_name, struct amtprov_error *err);

/** The certificates of a PEM chain as a JSON array of base64 DER strings (the "chain" of
 * ADD_CERTIFICATE, which legacy SOAP takes with the key); an empty array for NULL. */
json_t *flow_chain_array(const char *pem);

/** ADD_KEY params for the key stored in the site's credential store as @p cred_name.
 * NULL with @p err set when there is no credential store, no such record, or it is not a
 * key. */
json_t *flow_key_params_stored(struct site *s, const char *cred_name,
			       struct amtprov_error *err);

#endif /* AMTPROV_CORE_FLOW_KEYS_H */
