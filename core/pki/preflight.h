/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file preflight.h
 * @brief Provisioning-certificate preflight (R-PC-01..08): every check as data, expected
 *        against actual, for `amtprov cert check`, `amtprov cert import` and the engine.
 *
 * Usage: load the material once (preflight_load_*), optionally add CRLs, then
 * preflight_run() for the site-wide checks and preflight_device() per device. Each call
 * appends results to a caller-owned struct pf_report. Nothing here reads the clock: "now"
 * is a parameter, so tests (and the simulator) drive time.
 *
 * Check ids (stable; docs/preflight.md lists them with their requirement):
 *   eku-server-auth, amt-oid-or-ou (R-PC-01); cn-fqdn, cn-service-point (R-PC-02);
 *   chain-complete, chain-order (R-PC-03); key-match; validity (R-PC-06); key-rsa,
 *   key-size, no-sha1 (CSME 16+); root-thumbprint (R-PC-04); revocation (R-PC-08);
 *   per device: device-namespace, device-disjoint-namespace (R-PC-05), device-dns-suffix
 *   (R-PROV-07, AMT's CN/suffix match), device-root-hash (R-PC-04).
 */
#ifndef AMTPROV_CORE_PREFLIGHT_H
#define AMTPROV_CORE_PREFLIGHT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include <amtprov/error.h>

#include "manifest.h"
#include "plugin_host.h"

/** Severity of a result. A passing result may still be a warning (R-PC-06 expiry). */
enum pf_severity { PF_SEV_INFO = 0, PF_SEV_WARNING = 1, PF_SEV_ERROR = 2 };

#define PF_TEXT_SIZE 512

/** One check's outcome. */
struct pf_result {
	char id[40];                  /**< e.g. "eku-server-auth" */
	const char *requirement;      /**< e.g. "R-PC-01", static storage */
	char device[256];             /**< per-device checks: the device FQDN, else "" */
	int ok;                       /**< 1: passes (possibly with a warning) */
	int severity;                 /**< enum pf_severity; a failure is always ERROR */
	uint32_t status_id;           /**< status message to emit (7210/7211), else 0 */
	char expected[PF_TEXT_SIZE];
	char actual[PF_TEXT_SIZE];
	char hint[PF_TEXT_SIZE];      /**< what to do about it; "" when it passes */
};

/** All results of a run plus what an admin needs to see. Caller-owned, zero-initialised;
 * free with pf_report_free. */
struct pf_report {
	struct pf_result *items;
	size_t n, cap;
	size_t failed;                /**< results with ok == 0 */
	size_t warnings;              /**< ok results with severity >= WARNING */
	char leaf_subject[256];
	char root_subject[256];       /**< "" when the chain has no root */
	char root_sha1[41];           /**< upper-case hex of the root's DER (R-PC-04) */
	char root_sha256[65];
	char root_sha384[97];
	int64_t not_after;            /**< earliest notAfter in the chain */
	int64_t days_left;            /**< floor((not_after - now) / 86400) */
};

void pf_report_free(struct pf_report *r);
/** The first result with @p id (and @p device, NULL: any); NULL if none. */
const struct pf_result *pf_report_find(const struct pf_report *r, const char *id,
				       const char *device);
/** Text: one line per check ("PASS|WARN|FAIL  id  requirement") with expected, actual and
 * hint under failures and warnings (with @p verbose under passes too), then the root
 * thumbprints and a summary. */
void pf_report_print(const struct pf_report *r, FILE *out, int verbose);
/** {"ok", "failed", "warnings", "checks": [...], "root": {...}, "not_after", "days_left"}. */
json_t *pf_report_json(const struct pf_report *r);

/** A hash the device reports (AMT PKI Hello or the firmware hash table). */
struct pf_hash {
	int alg;                      /**< enum pki_hash: 1 SHA-1, 2 SHA-256, 3 SHA-384 */
	char hex[129];                /**< hex digits, any case */
};

/** Per-device inputs; every field but fqdn is optional (NULL / 0: that check is skipped). */
struct pf_device {
	const char *fqdn;             /**< the device's FQDN (R-PC-05) */
	const char *ad_domain;        /**< its Active Directory domain (disjoint namespace) */
	const char *trusted_dns_suffix; /**< MEBx PKI DNS suffix, else DHCP option 15 */
	const struct pf_hash *hashes; /**< root hashes the device reports */
	size_t n_hashes;
	int hashes_known;             /**< 1: hashes/n_hashes were reported (even if 0) */
};

/** Site-wide inputs. */
struct pf_options {
	const char *service_point_fqdn; /**< R-PC-02 (NULL: cn-service-point is skipped) */
	int64_t now;                  /**< Unix seconds */
	int warning_days;             /**< 7210 at or below this; 0: 40 */
	int error_days;               /**< 7211 below this; 0: 15 */
	int amt_major;                /**< the newest AMT major version the chain must serve (0:
				       *   unknown); 22 and later make amt22-strength a warning */
};

/** Loaded certificate material (opaque). */
struct preflight;

/**
 * From PEM text: @p cert_pem holds the chain (leaf first) and may also hold the key;
 * @p key_pem (may be NULL) the key. @p where names the source in messages.
 */
int preflight_load_pem(const char *cert_pem, size_t cert_len, const char *key_pem,
		       size_t key_len, const char *where, struct preflight **out,
		       struct amtprov_error *err);
/** From PKCS#12 (DER) with its password (may be NULL). The chain order is derived: a
 * PKCS#12 has no meaningful order, so chain-order passes with the order used. */
int preflight_load_pkcs12(const void *der, size_t len, const char *password, const char *where,
			  struct preflight **out, struct amtprov_error *err);
/** From files (PEM chain [+ key file]), as the manifest names them. */
int preflight_load_files(const char *cert_file, const char *key_file, struct preflight **out,
			 struct amtprov_error *err);
/** From a PKCS#12 file with its password. */
int preflight_load_pkcs12_file(const char *file, const char *password, struct preflight **out,
			       struct amtprov_error *err);
/**
 * What the engine calls: the certificate the manifest names (R-PC-07), the PKCS#12 password
 * from @p credstore (may be NULL when the manifest uses PEM). AMTPROV_E_CONFIG when the
 * manifest names none.
 */
int preflight_load_manifest(const struct manifest *m, struct plugin_instance *credstore,
			    struct preflight **out, struct amtprov_error *err);
void preflight_free(struct preflight *pf);

/** Adds a CRL (PEM or DER) for the revocation check (R-PC-08). */
int preflight_add_crl(struct preflight *pf, const void *data, size_t len, const char *name,
		      struct amtprov_error *err);
int preflight_add_crl_file(struct preflight *pf, const char *file, struct amtprov_error *err);
/** Adds the CRLs named by the chain's CRL distribution points that are local files
 * (file:// or absolute paths) and exist. @return how many were added. */
int preflight_add_cdp_crls(struct preflight *pf);

/** Runs every site-wide check into @p r (results appended). Never fails on a check;
 * returns AMTPROV_E_NOMEM only. */
int preflight_run(struct preflight *pf, const struct pf_options *opt, struct pf_report *r);
/** Runs the per-device checks for @p dev (needs the service point FQDN from @p opt). */
int preflight_device(struct preflight *pf, const struct pf_options *opt,
		     const struct pf_device *dev, struct pf_report *r);

/**
 * Parses a device hash list: one hash per line, "ALGO HEX" (ALGO sha1|sha256|sha384 or the
 * AMT type 1|2|3) or a bare HEX (algorithm from its length); '#' comments, blank lines, and
 * ':' separators in HEX allowed. @p hashes is malloc'd.
 * @param where names the source in messages (with ":LINE")
 */
int preflight_parse_hashes(const char *text, const char *where, struct pf_hash **hashes,
			   size_t *n, struct amtprov_error *err);

/** The chain as the TLS handshake presents it (leaf -> root, R-PC-03), as PEM (malloc'd). */
int preflight_chain_pem(struct preflight *pf, char **pem, size_t *len,
			struct amtprov_error *err);
/** The private key as PKCS#8 PEM (secret; AMTPROV_E_NOT_FOUND when there is none). */
int preflight_key_pem(struct preflight *pf, struct amtprov_secret **pem,
		      struct amtprov_error *err);

#endif /* AMTPROV_CORE_PREFLIGHT_H */
