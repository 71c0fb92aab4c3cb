/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate and key encodings as AMT's interfaces carry them: base64 DER certificates and
 * PEM-kept private keys. (tls.c and wsman_pki.c still carry their own copies of these two
 * helpers; they can move here.)
 */
#ifndef AMTSIM_X509UTIL_H
#define AMTSIM_X509UTIL_H

#include <openssl/evp.h>
#include <openssl/x509.h>

/** One DER certificate from base64; NULL when it does not parse or has trailing bytes. */
X509 *sim_x509_from_b64(const char *b64);

/** The certificate as base64 DER. Caller frees. */
char *sim_x509_to_b64(X509 *x);

/** The private key as unencrypted PEM. Caller frees. */
char *sim_key_to_pem(EVP_PKEY *k);

/** The private key from PEM; NULL when it does not parse. */
EVP_PKEY *sim_key_from_pem(const char *pem);

#endif
