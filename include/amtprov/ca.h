/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file ca.h
 * @brief The CA plugin vtable (kind AMTPROV_KIND_CA), in certmonger's outcome vocabulary.
 *
 * A CA plugin turns a PKCS#10 request (normally built around a key generated inside AMT)
 * into a certificate, or says why not. Calls may block (network to the CA): the core runs
 * them on a bounded worker pool, never on the event loop, and serializes calls per instance
 * unless the plugin sets AMTPROV_PLUGIN_THREAD_SAFE. A CA that answers "later" returns WAIT
 * with a cookie; the core persists the cookie and calls poll() later, across restarts.
 *
 * Threads: every slot runs on a core worker thread. Of the host API (plugin.h), log, status,
 * now, monotonic_ms, secret_new, secret_free, secret_get, secret_put, state_dir and
 * instance_name may be called from those calls and from threads the plugin owns;
 * config_parse and config_free are meant for create() and destroy().
 *
 * THE CA CONTRACT. The core checks every ISSUED answer of submit() and poll(), for every
 * purpose, before the certificate is stored or sent to AMT; an answer that breaks a rule
 * fails the request for good (status 8211 CA_CONTRACT_VIOLATED, naming the CA instance, the
 * purpose and the rule), so fix the CA's template or the plugin. `amtprov plugin test`
 * applies the same check. Rules (docs/plugin-guide.md, section 9):
 *   der      cert_der is one DER X.509 certificate
 *   key      it certifies the public key of the request (csr_der): never a new key
 *   subject  subject CN = req.subject_fqdn (case-insensitive)
 *   san      if it has dNSName subjectAltNames, one of them is subject_fqdn
 *            (web server, 802.1X client)
 *   eku      web server: extendedKeyUsage includes serverAuth;
 *            802.1X client: clientAuth and not serverAuth
 *   chain    chain_pem, when given, is PEM certificates; for a web server it is required
 *            and must verify the leaf up to a self-signed root (the site trusts the device's
 *            TLS certificate through this chain only)
 *   crl      web server, when the site's transport checks CRLs (amt-transport by default:
 *            capability transport:crl-check, "crl_check" not false): a CRL distribution
 *            point URL the managing side can fetch
 *
 * Slots by use: submit is mandatory. poll is needed by a CA that answers WAIT. revoke is
 * needed by every CA a site names as web server or 802.1X CA: the site revokes what it
 * issued on renewal, re-provisioning and removal (R-REV-02, R-REV-04), and refuses at load
 * a CA without ca:revoke, saying so. fetch_crl, fetch_roots, list_templates are optional.
 */
#ifndef AMTPROV_CA_H
#define AMTPROV_CA_H

#include <amtprov/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Outcomes. The numbers match certmonger's external-helper exit statuses so that a helper
 * bridge maps them one to one. Values are stable.
 */
enum amtprov_ca_outcome {
	AMTPROV_CA_ISSUED = 0,          /**< done: certificate in result (for revoke: revoked) */
	AMTPROV_CA_WAIT = 1,            /**< pending: poll later with result.cookie */
	AMTPROV_CA_REJECTED = 2,        /**< refused for good: result.message says why */
	AMTPROV_CA_UNREACHABLE = 3,     /**< CA not reachable now: retry later */
	AMTPROV_CA_UNCONFIGURED = 4,    /**< the plugin lacks configuration to do this */
	AMTPROV_CA_WAIT_WITH_DELAY = 5, /**< pending: poll after result.delay_seconds */
	AMTPROV_CA_NOT_SUPPORTED = 6,   /**< the CA cannot do this operation */
	AMTPROV_CA_NEED_REKEY = 17,     /**< the CA wants a request with a new key */
};

/** Revocation reasons (RFC 5280 CRLReason). */
enum amtprov_revocation_reason {
	AMTPROV_REVOKE_UNSPECIFIED = 0,
	AMTPROV_REVOKE_KEY_COMPROMISE = 1,
	AMTPROV_REVOKE_CA_COMPROMISE = 2,
	AMTPROV_REVOKE_AFFILIATION_CHANGED = 3,
	AMTPROV_REVOKE_SUPERSEDED = 4,
	AMTPROV_REVOKE_CESSATION_OF_OPERATION = 5,
	AMTPROV_REVOKE_CERTIFICATE_HOLD = 6,
};

/** Maximum sizes of the fixed text fields of a result, NUL included. */
#define AMTPROV_CA_COOKIE_SIZE 512
#define AMTPROV_CA_MESSAGE_SIZE 256

/**
 * A certificate request. Everything is borrowed, valid for the duration of the call.
 */
struct amtprov_ca_request {
	uint32_t struct_size;         /**< sizeof as the core built it */
	uint32_t purpose;             /**< enum amtprov_cert_purpose */
	const uint8_t *csr_der;       /**< PKCS#10 request, DER */
	size_t csr_len;
	const char *template_name;    /**< template/profile from the manifest; may be NULL */
	const char *subject_fqdn;     /**< identity: the device FQDN (or service point FQDN) */
	const char *device_uuid;      /**< may be NULL (provisioning certificate) */
	const char *netprofile;       /**< 802.1X profile name for client certs, else NULL */
	const uint8_t *previous_der;  /**< certificate being renewed, DER; NULL if none */
	size_t previous_len;
	/* --- end of ABI 1.0 --- */
	/** ABI 1.2: "sha256" or "sha384", the least digest the device accepts in the
	 * certificate's signature (AMT 22 and later: SHA-384, by the site's
	 * certificates.amt_crypto_policy). A CA that can choose signs with at least this; the
	 * core checks the answer either way (CA contract rule "strength"). Check with
	 * AMTPROV_HAS_SLOT; NULL: no requirement. */
	const char *signature_digest;
};

/**
 * The answer to submit/poll/revoke. The core zero-fills it and sets struct_size before the
 * call; the plugin fills what the outcome needs. Buffers it allocates are malloc(3)'d and
 * become the core's (the core free()s them), whatever the outcome. An ISSUED certificate
 * must keep the CA contract (top of this file).
 */
struct amtprov_ca_result {
	uint32_t struct_size;
	uint32_t outcome;                      /**< enum amtprov_ca_outcome */
	uint8_t *cert_der;                     /**< ISSUED: the certificate, DER, malloc'd */
	size_t cert_len;
	char *chain_pem;                       /**< ISSUED: issuing chain (no leaf) up to
						    the root, PEM, malloc'd; may be NULL
						    except for a web server certificate */
	char cookie[AMTPROV_CA_COOKIE_SIZE];   /**< WAIT*: opaque, persisted by the core */
	uint32_t delay_seconds;                /**< WAIT_WITH_DELAY: when to poll */
	char message[AMTPROV_CA_MESSAGE_SIZE]; /**< REJECTED etc.: the CA's own reason */
	char request_id[64];                   /**< the CA's request id, for the audit trail */
	/* --- end of ABI 1.0 --- */
};

/** A revocation order. Borrowed for the duration of the call. */
struct amtprov_ca_revocation {
	uint32_t struct_size;
	const char *serial_hex;     /**< serial number, upper-case hex, no separators */
	const char *issuer;         /**< issuer DN in RFC 4514 form */
	const uint8_t *cert_der;    /**< the certificate itself, when known; may be NULL */
	size_t cert_len;
	uint32_t reason;            /**< enum amtprov_revocation_reason */
	/* --- end of ABI 1.0 --- */
};

/** A template the CA offers (for list_templates). Borrowed for the callback only. */
struct amtprov_ca_template {
	uint32_t struct_size;
	const char *name;
	int schema_version;  /**< Microsoft template schema version (1, 2, 3); 0 if n/a.
				  amtprov refuses version 3 (R-CA-02). */
	uint32_t purposes;   /**< bit (1 << enum amtprov_cert_purpose) for each allowed purpose */
	int min_key_bits;    /**< 0 if unknown */
	/* --- end of ABI 1.0 --- */
};

/** Callback for list_templates; return non-zero to stop early. */
typedef int (*amtprov_ca_template_cb)(void *ctx, const struct amtprov_ca_template *tmpl);

/**
 * The CA vtable. Mandatory for loading: struct_size, submit (see "Slots by use" above for
 * what a site needs). Everything else may be NULL, which the core treats as
 * AMTPROV_CA_NOT_SUPPORTED. A slot also needs its capability in the descriptor
 * (poll: ca:poll, revoke: ca:revoke, fetch_crl: ca:crl, fetch_roots: ca:roots,
 * list_templates: ca:templates).
 *
 * All slots return AMTPROV_OK when they produced an outcome (even REJECTED or UNREACHABLE:
 * the outcome is the answer), or an error code with @p err filled when the call itself
 * failed (bad arguments, out of memory, a bug).
 */
struct amtprov_ca_ops {
	uint32_t struct_size;

	/** Contacts the CA if needed (optional). An error here is logged and retried. */
	int (*start)(void *instance, struct amtprov_error *err);
	/** Releases connections (optional). */
	void (*stop)(void *instance);

	/** Submits a new request. */
	int (*submit)(void *instance, const struct amtprov_ca_request *req,
		      struct amtprov_ca_result *res, struct amtprov_error *err);

	/** Asks again about a request that got WAIT/WAIT_WITH_DELAY. @p cookie borrowed. */
	int (*poll)(void *instance, const struct amtprov_ca_request *req, const char *cookie,
		    struct amtprov_ca_result *res, struct amtprov_error *err);

	/** Revokes a certificate. Outcome ISSUED means "revoked" (or already revoked). */
	int (*revoke)(void *instance, const struct amtprov_ca_revocation *rev,
		      struct amtprov_ca_result *res, struct amtprov_error *err);

	/** Returns the CA's trust anchors and intermediates as PEM, malloc'd, caller frees. */
	int (*fetch_roots)(void *instance, char **pem, struct amtprov_error *err);

	/** Returns the current CRL (DER, malloc'd, caller frees). */
	int (*fetch_crl)(void *instance, uint8_t **crl_der, size_t *crl_len,
			 struct amtprov_error *err);

	/** Lists the templates the CA offers, one callback per template. */
	int (*list_templates)(void *instance, amtprov_ca_template_cb cb, void *ctx,
			      struct amtprov_error *err);
	/* --- end of ABI 1.0 --- */

	/**
	 * Optional, no capability needed (ABI 1.1): PKCS#10 attributes the CA wants inside the
	 * request itself, such as SCEP's challengePassword (RFC 8894). A signed request cannot
	 * be changed afterwards, so the core adds them before the request is signed: by
	 * amtprov for its own keys, by AMT (GeneratePKCS10RequestEx) for keys generated there.
	 * A request that carries them is not persisted by the core (they may be secret): poll()
	 * then gets csr_der NULL. May block; runs on a worker like submit().
	 * @param[in]  req    the request about to be built: purpose, template, identity;
	 *                    csr_der is NULL
	 * @param[out] attrs  NULL when there are none; else one or more DER-encoded Attribute
	 *                    SEQUENCEs (RFC 2986), concatenated, in a buffer from
	 *                    host->secret_new; the core wipes and frees it
	 */
	int (*csr_attributes)(void *instance, const struct amtprov_ca_request *req,
			      struct amtprov_secret **attrs, struct amtprov_error *err);
	/* --- end of ABI 1.1 --- */
};

/** Human name of an outcome ("ISSUED", "WAIT", ...); never NULL. */
static inline const char *amtprov_ca_outcome_name(uint32_t outcome)
{
	switch (outcome) {
	case AMTPROV_CA_ISSUED: return "ISSUED";
	case AMTPROV_CA_WAIT: return "WAIT";
	case AMTPROV_CA_REJECTED: return "REJECTED";
	case AMTPROV_CA_UNREACHABLE: return "UNREACHABLE";
	case AMTPROV_CA_UNCONFIGURED: return "UNCONFIGURED";
	case AMTPROV_CA_WAIT_WITH_DELAY: return "WAIT_WITH_DELAY";
	case AMTPROV_CA_NOT_SUPPORTED: return "NOT_SUPPORTED";
	case AMTPROV_CA_NEED_REKEY: return "NEED_REKEY";
	default: return "UNKNOWN";
	}
}

#ifdef __cplusplus
}
#endif

#endif /* AMTPROV_CA_H */
