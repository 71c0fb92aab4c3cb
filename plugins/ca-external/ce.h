/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file ce.h
 * @brief Private header of the ca-external plugin: certificates from CAs amtprov does not run.
 *
 * Two modes, chosen by the "mode" key:
 *  - request-file: submit() writes the PKCS#10 request to an outbox directory; an administrator
 *    takes it to a commercial or other external CA and drops the answer (PEM chain or
 *    PKCS#12) into an inbox directory, where poll() finds it and checks it matches the key.
 *  - scep: RFC 8894 enrollment (GetCACaps, GetCACert, PKCSReq, CertPoll) over HTTP.
 *
 * Split by concern: ca_external.c (descriptor, configuration, lifecycle, ops),
 * ce_reqfile.c (outbox/inbox), ce_scep.c (SCEP messages), ce_http.c (libcurl),
 * ce_pki.c (requests, bundles, key matching; also used by the amtprov-request tool, so it
 * must not use the host API), ce_util.c (errors, files).
 */
#ifndef CE_H
#define CE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <amtprov/ca.h>

#include "plugin_util.h"

#define CE_NAME "ca-external"

/** The AMT provisioning OID (R-PC-01, R-CA-03) and the alternative subject OU. */
#define CE_OID_AMT_PROV "2.16.840.1.113741.1.2.3"
#define CE_OU_AMT_PROV "Intel(R) Client Setup Certificate"

/** How a provisioning request is marked for AMT (R-PC-01). */
enum ce_marker { CE_MARK_OID = 1, CE_MARK_OU = 2, CE_MARK_BOTH = 3 };

enum ce_mode { CE_MODE_REQUEST_FILE = 1, CE_MODE_SCEP = 2 };

/** Configuration, filled by host->config_parse. */
struct ce_cfg {
	char *mode;
	/* request-file */
	char *outbox;
	char *inbox;
	char *p12_password; /* credential record name */
	char *ca_chain;     /* PEM file served by fetch_roots in request-file mode */
	/* scep */
	char *url;
	char *challenge;    /* credential record name */
	char *ca_ident;
	char *ca_fingerprint;
	long long timeout_seconds;
	/* both */
	long long poll_interval;
};

struct ca_external {
	const struct amtprov_host *host;
	struct ce_cfg cfg;
	int mode;        /* enum ce_mode */
	char *outbox;    /* effective directories (request-file) */
	char *inbox;
	char *state;     /* host state dir: pending requests, SCEP transient keys */
	uint8_t fpr[32]; /* ca_fingerprint, SHA-256 */
	int have_fpr;
	/* scep: a private library context with the legacy provider, used only to decrypt a
	 * CertRep some servers (micromdm/scep) encrypt with single DES. Loading "legacy" into
	 * the process-wide context would change what every other component accepts. */
	struct ossl_lib_ctx_st *legacy_ctx;
	struct ossl_provider_st *legacy_provs[2]; /* default, legacy: unloaded before the ctx */
};

/* ---- ce_util.c ---- */

/* Atomic files, bounded reads, OpenSSL error text: plugins/common/plugin_util.h, with
 * ca-external's name in errors and a 4 MiB read limit. */
#define CE_MAX_FILE (4u << 20)
static inline int ce_crypto_error(struct amtprov_error *err, const char *what)
{
	return pu_crypto_error(err, CE_NAME, what);
}
static inline int ce_write_file(const char *path, const void *data, size_t len, unsigned mode,
				struct amtprov_error *err)
{
	return pu_write_file(path, data, len, mode, CE_NAME, err);
}
static inline int ce_read_file(const char *path, uint8_t **out, size_t *len,
			       struct amtprov_error *err)
{
	return pu_read_file(path, CE_MAX_FILE, out, len, CE_NAME, err);
}
/** Lower-case hex of @p len bytes into @p out (2*len+1 bytes). */
void ce_hex(const uint8_t *in, size_t len, char *out);
/** 1 if @p id is a safe file stem: [A-Za-z0-9._-], 1..100 chars, no leading dot. */
int ce_id_ok(const char *id);

/* ---- ce_pki.c (host-independent: shared with the amtprov-request tool) ---- */

/** Parses a DER PKCS#10 request; NULL (and @p err) if it is not one. */
X509_REQ *ce_csr_parse(const uint8_t *der, size_t len, struct amtprov_error *err);
/** Parses PEM or DER PKCS#10. */
X509_REQ *ce_csr_parse_any(const uint8_t *data, size_t len, struct amtprov_error *err);
/** 1 if @p a and @p b hold the same public key. */
int ce_same_key(EVP_PKEY *a, EVP_PKEY *b);
/** The challengePassword attribute of @p req, malloc'd (NULL if none). */
char *ce_csr_challenge(X509_REQ *req);

/** What ce_request_new builds. */
struct ce_request_opts {
	const char *cn;          /**< subject CN: the service point FQDN (R-PC-02) */
	const char *org;         /**< optional O */
	int marker;              /**< enum ce_marker (R-PC-01) */
	int bits;                /**< RSA size, >= 2048 */
	const char *challenge;   /**< SCEP challengePassword; NULL for none */
};

/**
 * Makes a new RSA key and a provisioning-certificate request: CN = service point FQDN,
 * requested EKU serverAuth (+ AMT OID) and/or OU "Intel(R) Client Setup Certificate".
 */
int ce_request_new(const struct ce_request_opts *o, EVP_PKEY **key, X509_REQ **req,
		   struct amtprov_error *err);

/** Loads certificates from PEM (any number) or DER (one). */
int ce_certs_load(const uint8_t *data, size_t len, const char *where, STACK_OF(X509) **out,
		  struct amtprov_error *err);
/** Loads the certificates (and key, if @p key not NULL) of a PKCS#12 file. A wrong password
 * gives AMTPROV_E_AUTH. */
int ce_p12_load(const uint8_t *data, size_t len, const char *password, const char *where,
		STACK_OF(X509) **out, EVP_PKEY **key, struct amtprov_error *err);

/**
 * Picks from @p certs the certificate for @p pub and orders the rest as its chain (issuer
 * first, then upward; unrelated certificates last).
 * @param[out] leaf      up-ref'd certificate (caller frees)
 * @param[out] chain_pem malloc'd PEM of the chain without the leaf; NULL if none
 * @return AMTPROV_OK, AMTPROV_E_VERIFY when no certificate matches @p pub
 */
int ce_pick_leaf(STACK_OF(X509) *certs, EVP_PKEY *pub, X509 **leaf, char **chain_pem,
		 struct amtprov_error *err);
/** Appends the PEM of @p cert to *pem (malloc'd, may start NULL). 0 or -1. */
int ce_pem_append(char **pem, X509 *cert);
/** DER of @p cert in a malloc'd buffer. */
int ce_cert_der(X509 *cert, uint8_t **der, size_t *len, struct amtprov_error *err);

/* ---- ce_reqfile.c ---- */

int ce_rf_submit(struct ca_external *ce, const struct amtprov_ca_request *req,
		 struct amtprov_ca_result *res, struct amtprov_error *err);
int ce_rf_poll(struct ca_external *ce, const struct amtprov_ca_request *req,
	       const char *cookie, struct amtprov_ca_result *res, struct amtprov_error *err);

/* ---- ce_http.c ---- */

/** An HTTP answer. */
struct ce_http_resp {
	long status;
	uint8_t *body;   /* malloc'd, NUL-terminated */
	size_t len;
	char ctype[128]; /* Content-Type, "" if none */
};

/**
 * GET (body NULL) or POST @p url. Returns 0 with @p resp filled (any HTTP status), or -1
 * when the server could not be reached / did not answer in time, with @p why set.
 */
int ce_http(const char *url, const uint8_t *body, size_t body_len, const char *ctype,
	    long timeout_s, struct ce_http_resp *resp, char *why, size_t why_size);
void ce_http_resp_free(struct ce_http_resp *resp);
/** URL-encodes @p s (RFC 3986 unreserved kept); malloc'd. */
char *ce_urlencode(const char *s);

/* ---- ce_scep.c ---- */

/** csr_attributes (ca.h ABI 1.1): the challengePassword attribute when one is configured,
 * DER in a host secret; NULL when none. */
int ce_scep_csr_attributes(struct ca_external *ce, struct amtprov_secret **attrs,
			   struct amtprov_error *err);
int ce_scep_submit(struct ca_external *ce, const struct amtprov_ca_request *req,
		   struct amtprov_ca_result *res, struct amtprov_error *err);
int ce_scep_poll(struct ca_external *ce, const struct amtprov_ca_request *req,
		 const char *cookie, struct amtprov_ca_result *res, struct amtprov_error *err);
int ce_scep_roots(struct ca_external *ce, char **pem, struct amtprov_error *err);

#endif /* CE_H */
