/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_issue.h - a tiny in-memory certificate authority shared by the fake CA test plugins.
 *
 * It exists so that every fake CA that answers ISSUED (at submit or at poll) hands back a
 * real X.509 certificate for the request's own public key, signed by a CA key generated when
 * the instance is created. Core tests can then parse, chain and store what they get, exactly
 * as they would with a real CA plugin.
 *
 * Compiled into each fake CA module; with -fvisibility=hidden none of this is exported.
 */
#ifndef AMTPROV_TEST_FAKE_ISSUE_H
#define AMTPROV_TEST_FAKE_ISSUE_H

#include <stdint.h>

#include <amtprov/ca.h>

struct fake_issuer;

/**
 * Creates an issuer with a fresh P-256 CA key and a self-signed CA certificate whose common
 * name is "Fake CA <label>".
 * @param[in]  label  copied into the CA's subject; borrowed
 * @param[out] out    caller frees with fake_issuer_free
 * @return AMTPROV_OK, AMTPROV_E_NOMEM or AMTPROV_E_CRYPTO (err filled)
 */
int fake_issuer_new(const char *label, struct fake_issuer **out, struct amtprov_error *err);

/** Frees an issuer. Accepts NULL. */
void fake_issuer_free(struct fake_issuer *fi);

/** How an issue departs from the defaults (tests of the CA contract, core/pki/ca_contract.c). */
struct fake_issue_opts {
	const char *crl_url;   /**< CRL distribution point URI; NULL or "": none */
	const char *breaks;    /**< NULL/"": a good certificate; else the one contract rule to
				    break: "der", "key", "subject", "san", "eku", "chain", "crl"
				    (no CRL distribution point even with crl_url) */
};

/**
 * Issues a certificate for @p req. A request that is not a DER PKCS#10 with a valid
 * self-signature is answered REJECTED (an outcome, not an error).
 * @param[in]  opts  may be NULL (defaults: no CRL distribution point, nothing broken)
 * @param[in]  now   the host's wall clock (tests inject a fake one)
 * @param[out] res   ISSUED: cert_der and chain_pem are malloc'd and become the caller's
 * @return AMTPROV_OK with an outcome, or AMTPROV_E_NOMEM / AMTPROV_E_CRYPTO
 */
int fake_issuer_issue(struct fake_issuer *fi, const struct amtprov_ca_request *req,
		      const struct fake_issue_opts *opts, long long validity_days, int64_t now,
		      struct amtprov_ca_result *res, struct amtprov_error *err);

#endif /* AMTPROV_TEST_FAKE_ISSUE_H */
