/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_crl.c - builds and publishes ca-local's CRL (R-REV-*, R-8021X-07).
 *
 * A CRL is a v2 CRL signed by the issuing CA: thisUpdate = host->now(), nextUpdate =
 * thisUpdate + crl_validity_hours, a CRL number taken from the database (so it grows across
 * restarts), an authority key identifier, and one entry per revoked certificate with its
 * revocation time and reason code. It is written atomically to <dir>/crl.der and
 * <dir>/crl.pem (for CRL checkers that read files, such as FreeRADIUS' CA path) and kept
 * in memory for fetch_crl and the HTTP endpoint.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_local.h"

struct add_ctx {
	X509_CRL *crl;
};

static int add_revoked(void *vctx, const char *serial, int reason, int64_t revoked_at)
{
	struct add_ctx *c = vctx;
	X509_REVOKED *rv = X509_REVOKED_new();
	ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)revoked_at);
	ASN1_INTEGER *sn = NULL;
	ASN1_ENUMERATED *code = NULL;
	BIGNUM *bn = NULL;
	int ok = rv && when && BN_hex2bn(&bn, serial) > 0 &&
		 (sn = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
		 X509_REVOKED_set_serialNumber(rv, sn) == 1 &&
		 X509_REVOKED_set_revocationDate(rv, when) == 1;

	/* RFC 5280 5.3.1: reasonCode unspecified SHOULD be absent rather than 0. */
	if (ok && reason > AMTPROV_REVOKE_UNSPECIFIED) {
		code = ASN1_ENUMERATED_new();
		ok = code && ASN1_ENUMERATED_set(code, reason) == 1 &&
		     X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, code, 0, 0) == 1;
	}
	if (ok)
		ok = X509_CRL_add0_revoked(c->crl, rv) == 1;
	if (ok)
		rv = NULL;
	X509_REVOKED_free(rv);
	ASN1_TIME_free(when);
	ASN1_INTEGER_free(sn);
	ASN1_ENUMERATED_free(code);
	BN_free(bn);
	return ok ? 0 : -1;
}

static int publish(struct ca_local *ca, X509_CRL *crl, struct amtprov_error *err)
{
	unsigned char *der = NULL;
	char *path_der = pu_path(ca->dir, "crl.der", NULL), *path_pem = pu_path(ca->dir, "crl.pem", NULL);
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long pem_len = 0;
	int len, rc;

	if (!path_der || !path_pem || !bio) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, CL_NAME, "out of memory");
		goto out;
	}
	len = i2d_X509_CRL(crl, &der);
	if (len <= 0 || PEM_write_bio_X509_CRL(bio, crl) != 1) {
		rc = cl_crypto_error(err, "cannot encode the CRL");
		goto out;
	}
	pem_len = BIO_get_mem_data(bio, &pem);
	if ((rc = cl_write_file(path_der, der, (size_t)len, 0644, err)) != AMTPROV_OK ||
	    (rc = cl_write_file(path_pem, pem, (size_t)pem_len, 0644, err)) != AMTPROV_OK)
		goto out;
	pthread_mutex_lock(&ca->crl_lock);
	/* OPENSSL_malloc'd by i2d: copy into plain malloc so fetch_crl can hand it out. */
	free(ca->crl_der);
	ca->crl_der = malloc((size_t)len);
	if (ca->crl_der) {
		memcpy(ca->crl_der, der, (size_t)len);
		ca->crl_len = (size_t)len;
	} else {
		ca->crl_len = 0;
	}
	pthread_mutex_unlock(&ca->crl_lock);
	if (!ca->crl_der)
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, CL_NAME, "out of memory");
out:
	OPENSSL_free(der);
	BIO_free(bio);
	free(path_der);
	free(path_pem);
	return rc;
}

int cl_crl_regenerate(struct ca_local *ca, struct amtprov_error *err)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *this_update = NULL, *next_update = NULL;
	ASN1_INTEGER *number = NULL;
	X509V3_CTX v3;
	X509_EXTENSION *aki = NULL;
	struct add_ctx actx = {.crl = crl};
	int64_t now = ca->host->now(ca->host);
	long long n = 0;
	int rc;

	if (!crl)
		return cl_crypto_error(err, "cannot create a CRL");
	if ((rc = cl_db_next_crl_number(ca->db, &n, err)) != AMTPROV_OK)
		goto out;
	this_update = ASN1_TIME_set(NULL, (time_t)now);
	next_update = ASN1_TIME_set(NULL, (time_t)(now + ca->cfg.crl_validity_hours * 3600));
	number = ASN1_INTEGER_new();
	if (!this_update || !next_update || !number || ASN1_INTEGER_set_int64(number, n) != 1 ||
	    X509_CRL_set_version(crl, 1) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->issuing)) != 1 ||
	    X509_CRL_set1_lastUpdate(crl, this_update) != 1 ||
	    X509_CRL_set1_nextUpdate(crl, next_update) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) != 1)
		goto crypto;
	X509V3_set_ctx(&v3, ca->issuing, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
	if (!aki || X509_CRL_add_ext(crl, aki, -1) != 1)
		goto crypto;
	if ((rc = cl_db_each_revoked(ca->db, add_revoked, &actx, err)) != AMTPROV_OK) {
		cl_crypto_error(err, "cannot build the CRL");
		goto out;
	}
	if (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, ca->issuing_key, ca->md) <= 0)
		goto crypto;
	if ((rc = publish(ca, crl, err)) != AMTPROV_OK)
		goto out;
	ca->crl_this_update = now;
	ca->host->log(ca->host, AMTPROV_LOG_INFO, "published CRL number %lld (%d revoked)", n,
		      sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)));
	goto out;
crypto:
	rc = cl_crypto_error(err, "cannot build the CRL");
out:
	X509_EXTENSION_free(aki);
	ASN1_TIME_free(this_update);
	ASN1_TIME_free(next_update);
	ASN1_INTEGER_free(number);
	X509_CRL_free(crl);
	return rc;
}

int cl_crl_refresh_if_due(struct ca_local *ca, struct amtprov_error *err)
{
	int64_t now = ca->host->now(ca->host);
	int64_t half = ca->cfg.crl_validity_hours * 3600 / 2;

	if (ca->crl_der && now >= ca->crl_this_update && now - ca->crl_this_update < half)
		return AMTPROV_OK;
	return cl_crl_regenerate(ca, err);
}

int cl_crl_copy(struct ca_local *ca, uint8_t **der, size_t *len, struct amtprov_error *err)
{
	int rc = AMTPROV_OK;

	pthread_mutex_lock(&ca->crl_lock);
	if (!ca->crl_der) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, CL_NAME, "no CRL published yet");
	} else {
		*der = malloc(ca->crl_len);
		if (*der) {
			memcpy(*der, ca->crl_der, ca->crl_len);
			*len = ca->crl_len;
		} else {
			rc = amtprov_error_set(err, AMTPROV_E_NOMEM, CL_NAME, "out of memory");
		}
	}
	pthread_mutex_unlock(&ca->crl_lock);
	return rc;
}
