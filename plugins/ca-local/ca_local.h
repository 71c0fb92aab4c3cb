/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file ca_local.h
 * @brief Private header of the ca-local plugin: the embedded OpenSSL CA (root + issuing CA,
 *        issuance database, revocation, CRLs served over HTTP).
 *
 * Split by concern: ca_local.c (descriptor, configuration, lifecycle, the CA ops),
 * ca_keys.c (create/import/load the CA), ca_issue.c (request checks and profiles),
 * ca_db.c (SQLite issuance database), ca_crl.c (CRL building), ca_http.c (CRL endpoint),
 * ca_util.c (OpenSSL error draining, files, names).
 *
 * Locking: every CA operation holds ca_local.lock for its whole run, which serializes the
 * issuance database and serial allocation; the published CRL bytes have their own crl_lock
 * so the HTTP thread can serve them while an issuance is running.
 */
#ifndef CA_LOCAL_H
#define CA_LOCAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <amtprov/ca.h>

#include "plugin_util.h"

#define CL_NAME "ca-local"

/** Template names, as the example manifests use them. */
#define CL_TMPL_WEB "AMTWebServer"
#define CL_TMPL_CLIENT "AMT8021XClient"
#define CL_TMPL_PROV "AMTProvisioning"

/** The AMT provisioning EKU (R-PC-01) and the alternative subject OU. */
#define CL_OID_AMT_PROV "2.16.840.1.113741.1.2.3"
#define CL_OU_AMT_PROV "Intel(R) Client Setup Certificate"

/** provisioning_marker values. */
enum cl_marker { CL_MARK_OID = 1, CL_MARK_OU = 2, CL_MARK_BOTH = 3 };

/** The configuration, filled by host->config_parse from cl_config_table. */
struct cl_cfg {
	char *dir;
	char *key_type;
	long long key_bits;
	char *curve;
	char *digest;
	char *root_subject;
	char *issuing_subject;
	long long root_validity_days;
	long long issuing_validity_days;
	long long web_server_validity_days;
	long long client_validity_days;
	long long provisioning_validity_days;
	long long crl_validity_hours;
	char *crl_url;
	char *crl_listen;
	char *provisioning_marker;
	char *import_root_cert;
	char *import_root_key;
	char *import_issuing_cert;
	char *import_issuing_key;
	char *import_key_password; /* the name of a credential record, not the password */
	char *offline_file;        /* while it exists: UNREACHABLE (maintenance window) */
};

struct cl_db;
struct cl_http;

/** One instance. */
struct ca_local {
	const struct amtprov_host *host;
	struct cl_cfg cfg;
	/* Derived from cfg at create. */
	char *dir;             /* state directory, owned */
	const EVP_MD *md;      /* signature digest */
	int marker;            /* enum cl_marker */
	char listen_host[64];  /* numeric address from crl_listen; "" = no HTTP */
	int listen_port;

	pthread_mutex_t lock; /* CA state, database, serials */
	int started;
	X509 *root;
	X509 *issuing;
	EVP_PKEY *issuing_key;
	char *roots_pem;       /* issuing + root, PEM */
	char *crl_url;         /* effective URL written into CRL distribution points */
	struct cl_db *db;
	int64_t crl_this_update;

	pthread_mutex_t crl_lock; /* the published CRL only */
	uint8_t *crl_der;
	size_t crl_len;

	struct cl_http *http;
};

/* ---- ca_util.c ---- */

/* Atomic files, bounded reads, OpenSSL error text: plugins/common/plugin_util.h, with
 * ca-local's name in errors and a 1 MiB read limit. */
static inline int cl_crypto_error(struct amtprov_error *err, const char *what)
{
	return pu_crypto_error(err, CL_NAME, what);
}
static inline int cl_write_file(const char *path, const void *data, size_t len, unsigned mode,
				struct amtprov_error *err)
{
	return pu_write_file(path, data, len, mode, CL_NAME, err);
}
static inline int cl_read_file(const char *path, uint8_t **out, size_t *len,
			       struct amtprov_error *err)
{
	return pu_read_file(path, 1u << 20, out, len, CL_NAME, err);
}
/** 1 if @p path exists. */
int cl_exists(const char *path);
/** Parses "CN=x,O=y" (RFC 4514 order, "\," escapes) into a new name; NULL on error. */
X509_NAME *cl_name_parse(const char *text);
/** RFC 4514 text of @p name, malloc'd; NULL when out of memory. */
char *cl_name_text(const X509_NAME *name);
/** PEM of @p cert appended to a malloc'd string (*pem may be NULL). 0 or -1. */
int cl_pem_append(char **pem, X509 *cert);
/** Upper-case hex of a serial without leading zeros, as BN_bn2hex; NULL on error.
 * Caller frees with OPENSSL_free. */
char *cl_serial_hex(const ASN1_INTEGER *serial);
/** Normalizes a hex serial from the core to cl_serial_hex's form. Caller OPENSSL_free()s. */
char *cl_serial_normalize(const char *hex);
/** Sets a random, positive, 128-bit serial on @p x. 0 or -1 (OpenSSL error queued). */
int cl_random_serial(X509 *x);
/** 1 if @p s is a plausible DNS name (letters, digits, '-', '.', 1..253 chars). */
int cl_valid_fqdn(const char *s);

/* ---- ca_keys.c ---- */

/** Creates or loads the root and issuing CA (under ca->lock). Fills root, issuing,
 * issuing_key and roots_pem. */
int cl_keys_load(struct ca_local *ca, struct amtprov_error *err);
/** Frees the CA objects. */
void cl_keys_unload(struct ca_local *ca);

/* ---- ca_db.c ---- */

/** One issued certificate as the database keeps it. */
struct cl_db_cert {
	const char *serial;   /* normalized hex */
	const char *subject;  /* RFC 4514 */
	int purpose;
	int64_t not_before, not_after, issued_at;
	const char *request_id;
	const char *fqdn;
	const uint8_t *der;
	size_t der_len;
};

/** A revoked entry for the CRL; see cl_db_each_revoked. */
typedef int (*cl_db_revoked_cb)(void *ctx, const char *serial, int reason, int64_t revoked_at);

int cl_db_open(const char *path, struct cl_db **out, struct amtprov_error *err);
void cl_db_close(struct cl_db *db);
/** 1 if @p serial is in the database, 0 if not, -1 on error (err filled). */
int cl_db_has_serial(struct cl_db *db, const char *serial, struct amtprov_error *err);
int cl_db_insert(struct cl_db *db, const struct cl_db_cert *c, struct amtprov_error *err);
/**
 * Marks @p serial revoked.
 * @return AMTPROV_OK (also if it was revoked already: *was_revoked = 1),
 *         AMTPROV_E_NOT_FOUND for an unknown serial
 */
int cl_db_revoke(struct cl_db *db, const char *serial, int reason, int64_t when,
		 int *was_revoked, struct amtprov_error *err);
int cl_db_each_revoked(struct cl_db *db, cl_db_revoked_cb cb, void *ctx,
		       struct amtprov_error *err);
/** Increments and returns the CRL number (persisted). */
int cl_db_next_crl_number(struct cl_db *db, long long *out, struct amtprov_error *err);
/** Number of issued certificates (for the log line at start). */
long long cl_db_count(struct cl_db *db);

/* ---- ca_issue.c ---- */

/** Checks the request and issues by profile; fills @p res (ISSUED or REJECTED). Holds
 * ca->lock. */
int cl_issue(struct ca_local *ca, const struct amtprov_ca_request *req,
	     struct amtprov_ca_result *res, struct amtprov_error *err);
/** Template name of a purpose; NULL if the purpose is unknown. */
const char *cl_template_of(uint32_t purpose);

/* ---- ca_crl.c ---- */

/** Builds, signs, writes (crl.der, crl.pem) and publishes a new CRL (under ca->lock). */
int cl_crl_regenerate(struct ca_local *ca, struct amtprov_error *err);
/** Regenerates when half the CRL's validity has passed, so a published CRL never goes
 * stale while nothing is revoked (under ca->lock). */
int cl_crl_refresh_if_due(struct ca_local *ca, struct amtprov_error *err);
/** Copies the published CRL; AMTPROV_E_NOT_FOUND if none. Takes crl_lock. */
int cl_crl_copy(struct ca_local *ca, uint8_t **der, size_t *len, struct amtprov_error *err);

/* ---- ca_http.c ---- */

/** Starts the CRL endpoint on listen_host:listen_port; *port gets the bound port. */
int cl_http_start(struct ca_local *ca, struct cl_http **out, int *port,
		  struct amtprov_error *err);
void cl_http_stop(struct cl_http *http);

#endif /* CA_LOCAL_H */
