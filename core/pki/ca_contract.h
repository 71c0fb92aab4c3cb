/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file ca_contract.h
 * @brief The CA contract: what an ISSUED answer must carry, per purpose, checked once in the
 *        core before the certificate goes anywhere (docs/plugin-guide.md, "The CA contract").
 *
 * Every rule is one row of a table (rule name, purposes it applies to, check, message).
 * Both enrollment flows (flow_cert.c, flow_8021x.c) and `amtprov plugin test` call
 * ca_contract_check() on every ISSUED answer, so a certificate that a later step (AMT's
 * TLS, the MANAGED transport, the CRL check) would refuse is refused at once, with the CA
 * instance, the purpose and the rule named, before anything is sent to AMT.
 */
#ifndef AMTPROV_CORE_CA_CONTRACT_H
#define AMTPROV_CORE_CA_CONTRACT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <amtprov/ca.h>
#include <amtprov/error.h>

struct manifest;
struct plugin_host;

/** What the site and the request expect from one ISSUED answer. All borrowed. */
struct ca_contract {
	uint32_t purpose;         /**< enum amtprov_cert_purpose */
	const char *ca_instance;  /**< named in every message */
	const char *fqdn;         /**< the identity requested (CN and SAN dNSName) */
	EVP_PKEY *request_key;    /**< the public key of the request; NULL: not checked */
	int need_chain;           /**< 1: chain_pem must verify the leaf (MANAGED mode trusts
				       only it) */
	int min_key_bits;         /**< 0: not checked; else the RSA key must be at least this */
	int min_digest_bits;      /**< 0: not checked; else the signature's SHA-2 at least this */
	int need_crl;             /**< 1: a CRL distribution point URL (the transport checks
				       CRLs, fail closed) */
};

/** One rule of the contract (for documentation, `plugin test` and tests). */
struct ca_contract_rule {
	const char *name;         /**< stable id, e.g. "eku" */
	uint32_t purposes;        /**< bit (1 << purpose) for each purpose it applies to */
	const char *summary;      /**< what the certificate must carry */
};

/** The rules, in check order; @p n gets their count. */
const struct ca_contract_rule *ca_contract_rules(size_t *n);

/** "web-server", "802.1x-client", "provisioning" or "unknown". */
const char *ca_contract_purpose_name(uint32_t purpose);

/**
 * Fills need_chain and need_crl of @p k from the site: a web server certificate needs its
 * chain (MANAGED mode verifies the device with it only) and a CRL distribution point when
 * the site's transport checks CRLs: it declares AMTPROV_CAP_TRANSPORT_CRL_CHECK and its
 * instance does not set "crl_check": false (R-REV-01).
 * @param[in] m   the site manifest; NULL: the strictest site (chain and CRL for web server)
 * @param[in] ph  the site's plugins (for the transport's capabilities); NULL with m NULL
 */
void ca_contract_from_site(const struct manifest *m, struct plugin_host *ph,
			   struct ca_contract *k);

/**
 * Checks an ISSUED answer against the contract.
 * @param[in]  k     expectations; borrowed
 * @param[in]  res   the CA's answer (cert_der, cert_len, chain_pem); borrowed
 * @param[out] rule  the failing rule's name (static), or NULL when all pass; may be NULL
 * @param[out] err   on failure: AMTPROV_E_VERIFY, where = "ca-contract/<rule>", message
 *                   "CA 'x' (web-server): contract rule 'r': ..."; callers report it with
 *                   status CA_CONTRACT_VIOLATED (8211) and fail the request for good
 * @return AMTPROV_OK, AMTPROV_E_VERIFY, AMTPROV_E_NOMEM
 */
int ca_contract_check(const struct ca_contract *k, const struct amtprov_ca_result *res,
		      const char **rule, struct amtprov_error *err);

/**
 * The certificate in @p der (exactly one DER X.509 certificate), parsed: the one
 * ca_contract_check() parsed last when it is the same DER, so the caller that records a
 * checked certificate does not parse it again. Thread safe.
 * @return a new reference (X509_free it), or NULL if @p der is not one certificate
 */
X509 *ca_contract_leaf(const unsigned char *der, size_t len);

#endif /* AMTPROV_CORE_CA_CONTRACT_H */
