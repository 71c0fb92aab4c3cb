/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca.h - the OpenSSL-backed certification authority behind adcssim: its key and
 * certificate, issuance with the template's extensions, the CRL, and the CMC full PKI
 * response that CES returns next to the certificate [MS-WSTEP 3.1.4.1.3.2].
 */
#ifndef ADCSSIM_CA_H
#define ADCSSIM_CA_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "db.h"
#include "der.h"
#include "seed.h"

struct ca {
	EVP_PKEY *key;
	X509 *cert;
	char crl_url[512];
	char hash[16];
};

/* Loads DIR/ca.pem + DIR/ca.key, or makes them (CN = name) when absent. */
int ca_open(struct ca *ca, const char *dir, const char *name, const char *hash, char *err,
	    size_t errsz);
void ca_close(struct ca *ca);
/* A TLS server certificate for host (DNS SAN) and ip (IP SAN) in DIR/tls.pem, DIR/tls.key. */
int ca_make_tls(struct ca *ca, const char *dir, const char *host, const char *ip, char *err,
		size_t errsz);

/* Issues a certificate for req's key. subject: the name to put in (the CSR's or the one
 * built from the directory); t NULL on a stand-alone CA (CSR extensions are copied);
 * copy_san: the CSR's subjectAltName is copied; san_dns: a DNS name from the directory
 * for the subjectAltName ("" none). serial_out gets the lower-case hex. */
X509 *ca_issue(struct ca *ca, X509_REQ *req, const X509_NAME *subject,
	       const struct seed_template *t, int copy_san, const char *san_dns,
	       char *serial_out, size_t serial_sz, char *err, size_t errsz);

/* The template's certificate extensions, as the CA puts them in and as CEP lists them. */
#define CA_MAX_TMPL_EXT 5
struct tmpl_ext {
	const char *oid;
	int critical;
	struct der_buf v; /* extnValue contents */
};
size_t ca_template_exts(const struct seed_template *t, struct tmpl_ext out[CA_MAX_TMPL_EXT]);
void ca_template_exts_free(struct tmpl_ext *e, size_t n);

/* The current CRL (DER), from the revoked rows of the database. */
int ca_crl(struct ca *ca, struct db *d, unsigned char **der, size_t *len);

/* CMC status values [RFC 5272 / MS-WCCE]. */
enum { CMC_SUCCESS = 0, CMC_FAILED = 2, CMC_PENDING = 3 };
/* The CMC full PKI response (CMS SignedData around a PKIResponse), DER. */
int ca_cmc_response(struct ca *ca, int status, const char *status_string, long request_id,
		    X509 *issued, unsigned char **der, size_t *len);

#endif
