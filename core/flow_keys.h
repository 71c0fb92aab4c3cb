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

/** ADD_KEY params {"key_der_b64"} for @p key (not consumed). Every plain copy made on the
 * way is wiped. NULL when the key cannot be encoded. */
json_t *flow_key_params(EVP_PKEY *key);

/** ADD_KEY params for the key stored in the site's credential store as @p cred_name.
 * NULL with @p err set when there is no credential store, no such record, or it is not a
 * key. */
json_t *flow_key_params_stored(struct site *s, const char *cred_name,
			       struct amtprov_error *err);

#endif /* AMTPROV_CORE_FLOW_KEYS_H */
