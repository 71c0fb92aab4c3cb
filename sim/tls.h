/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS for simulated devices: the self-signed certificate AMT creates while unprovisioned,
 * protocol versions per firmware generation, and the checks AMT applies to the client
 * (provisioning) certificate during remote configuration.
 */
#ifndef AMTSIM_TLS_H
#define AMTSIM_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "device.h"

/** Intel's provisioning EKU OID and the alternative subject OU (AMT-PROTOCOL.md §2.1). */
#define AMT_PROV_OID "2.16.840.1.113741.1.2.3"
#define AMT_PROV_OU "Intel(R) Client Setup Certificate"

/**
 * RSA keys are expensive: a pool of pre-generated keys is shared by devices' self-signed
 * certificates (the firmware's key generation is modelled as latency elsewhere).
 */
struct tls_keypool {
	EVP_PKEY **keys;
	int n;
	int cap;
	int next;
};

/** Loads DIR/keypool-N.pem or generates and stores them. @return 0 or -1. */
int tls_keypool_init(struct tls_keypool *p, const char *dir, int n, int bits);
void tls_keypool_free(struct tls_keypool *p);

/** Adds extension @p nid (OpenSSL config syntax @p value) to @p x as issued by @p issuer
 * (@p x itself when self-issued). @return 0 or -1. */
int tls_add_ext(X509 *x, X509 *issuer, int nid, const char *value);

/** Creates the device's self-signed certificate (CN = FQDN or IP, SAN = IP [+ FQDN]) when it
 * has none, storing PEMs in the device. @return 0 or -1. */
int tls_ensure_self_cert(struct device *d, struct tls_keypool *pool);

/** Parses the device's certificate and key PEMs. Caller frees both. @return 0 or -1. */
int tls_load_identity(const struct device *d, X509 **cert, EVP_PKEY **key);

/**
 * The identity the device serves now: after CommitChanges enabled TLS, the certificate of
 * its TLS credential context with its stored key and the issuers found in its store
 * (@p chain, leaf excluded); otherwise the self-signed certificate (@p chain NULL).
 * Caller frees all three. @return 0 or -1.
 */
int tls_load_active_identity(const struct device *d, X509 **cert, EVP_PKEY **key,
			     STACK_OF(X509) **chain);

/**
 * AMT's client-certificate check once provisioned with MutualAuthentication: the chain
 * must verify to a trusted root in the device's store and, when TrustedCN entries exist,
 * the leaf CN must be one of them. @return true when accepted.
 */
bool tls_check_mutual_auth(const struct device *d, X509 *leaf, STACK_OF(X509) *chain,
			   char *reason, size_t reason_size);

/** The server context shared by all devices (certificates are set per connection). */
SSL_CTX *tls_server_ctx(void);

/**
 * Configures @p ssl for @p d: certificate, version range, and client certificate request
 * while pre/in provisioning. The device pointer is stored in the SSL's ex data.
 */
int tls_setup_ssl(SSL *ssl, struct device *d, X509 *cert, EVP_PKEY *key,
		  STACK_OF(X509) *chain);

/** The device stored by tls_setup_ssl. */
struct device *tls_ssl_device(const SSL *ssl);

/**
 * AMT's provisioning-certificate checks on a presented chain (leaf first, any order after).
 * @return true when accepted; otherwise false and @p reason says which rule failed.
 */
bool tls_check_provisioning_chain(const struct device *d, X509 *leaf, STACK_OF(X509) *chain,
				  char *reason, size_t reason_size);

/** The CN-vs-trusted-DNS-suffix rule alone. @return true on a match. */
bool tls_cn_matches_suffix(const char *cn, const char *suffix);

/** The suffix the device trusts: PKI DNS suffix, else DHCP option 15 ("" if none). */
const char *tls_trusted_suffix(const struct device *d);

#endif
