/* SPDX-License-Identifier: Apache-2.0 */
/* The fake CAs' shared issuing code: a real (if tiny) CA built on OpenSSL. See fake_issue.h. */
#include "fake_issue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct fake_issuer {
	EVP_PKEY *key;
	X509 *cert;
	char *cert_pem;
	uint64_t next_serial;
};

/* OpenSSL reports through its error queue; drain it into the ABI's error buffer so the
 * reason is not lost and the queue does not leak into the next caller. */
static int crypto_error(struct amtprov_error *err, const char *what)
{
	char buf[160] = "unknown OpenSSL error";
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return amtprov_error_set(err, AMTPROV_E_CRYPTO, "fake-ca", "%s: %s", what, buf);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static char *cert_to_pem(X509 *cert)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *copy = NULL;
	long len;

	if (!bio)
		return NULL;
	if (PEM_write_bio_X509(bio, cert) == 1) {
		len = BIO_get_mem_data(bio, &data);
		copy = len > 0 ? malloc((size_t)len + 1) : NULL;
		if (copy) {
			memcpy(copy, data, (size_t)len);
			copy[len] = '\0';
		}
	}
	BIO_free(bio);
	return copy;
}

int fake_issuer_new(const char *label, struct fake_issuer **out, struct amtprov_error *err)
{
	struct fake_issuer *fi = calloc(1, sizeof(*fi));
	X509_NAME *name;
	char cn[128];

	if (!fi)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, "fake-ca", "out of memory");
	fi->next_serial = 2; /* 1 is the CA's own */
	/* P-256 rather than RSA: key generation is instant, so each test instance gets its own
	 * CA without slowing the suite down. */
	fi->key = EVP_EC_gen("P-256");
	fi->cert = X509_new();
	if (!fi->key || !fi->cert)
		goto crypto;
	snprintf(cn, sizeof(cn), "Fake CA %s", label ? label : "");
	if (X509_set_version(fi->cert, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(fi->cert), 1) != 1 ||
	    !X509_gmtime_adj(X509_getm_notBefore(fi->cert), -86400L) ||
	    !X509_gmtime_adj(X509_getm_notAfter(fi->cert), 3650L * 86400L) ||
	    X509_set_pubkey(fi->cert, fi->key) != 1)
		goto crypto;
	name = X509_get_subject_name(fi->cert);
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"amtprov tests",
				       -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
				       0) != 1 ||
	    X509_set_issuer_name(fi->cert, name) != 1)
		goto crypto;
	if (add_ext(fi->cert, fi->cert, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
	    add_ext(fi->cert, fi->cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(fi->cert, fi->cert, NID_subject_key_identifier, "hash") < 0)
		goto crypto;
	if (X509_sign(fi->cert, fi->key, EVP_sha256()) <= 0)
		goto crypto;
	fi->cert_pem = cert_to_pem(fi->cert);
	if (!fi->cert_pem)
		goto crypto;
	*out = fi;
	return AMTPROV_OK;
crypto:
	fake_issuer_free(fi);
	return crypto_error(err, "cannot create the fake CA");
}

void fake_issuer_free(struct fake_issuer *fi)
{
	if (!fi)
		return;
	EVP_PKEY_free(fi->key);
	X509_free(fi->cert);
	free(fi->cert_pem);
	free(fi);
}

static void reject(struct amtprov_ca_result *res, const char *why)
{
	res->outcome = AMTPROV_CA_REJECTED;
	snprintf(res->message, sizeof(res->message), "fake CA: %s", why);
	ERR_clear_error();
}

/* The leaf's subject: the FQDN the core names, else the request's own subject. */
static int set_subject(X509 *x, const X509_REQ *r, const char *fqdn)
{
	X509_NAME *n;
	int ok;

	if (!fqdn || !*fqdn)
		return X509_set_subject_name(x, X509_REQ_get_subject_name(r)) == 1 ? 0 : -1;
	n = X509_NAME_new();
	if (!n)
		return -1;
	ok = X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)fqdn, -1, -1,
					0) == 1 &&
	     X509_set_subject_name(x, n) == 1;
	X509_NAME_free(n);
	return ok ? 0 : -1;
}

static int breaks(const struct fake_issue_opts *o, const char *rule)
{
	return o && o->breaks && strcmp(o->breaks, rule) == 0;
}

int fake_issuer_issue(struct fake_issuer *fi, const struct amtprov_ca_request *req,
		      const struct fake_issue_opts *opts, long long validity_days, int64_t now,
		      struct amtprov_ca_result *res, struct amtprov_error *err)
{
	const unsigned char *p;
	X509_REQ *r = NULL;
	EVP_PKEY *pub, *other = NULL;
	X509 *x = NULL;
	char cn[300];
	time_t t = (time_t)now;
	const char *eku;
	char san[300];
	uint64_t serial;
	unsigned char *der = NULL, *q;
	int len, rc;

	if (!req || !req->csr_der || req->csr_len == 0 || req->csr_len > 65536) {
		reject(res, "no certificate request");
		return AMTPROV_OK;
	}
	p = req->csr_der;
	r = d2i_X509_REQ(NULL, &p, (long)req->csr_len);
	if (!r || p != req->csr_der + req->csr_len) {
		X509_REQ_free(r);
		reject(res, "the request is not a DER PKCS#10 certificate request");
		return AMTPROV_OK;
	}
	pub = X509_REQ_get0_pubkey(r);
	if (!pub || X509_REQ_verify(r, pub) != 1) {
		X509_REQ_free(r);
		reject(res, "the request's self-signature does not verify");
		return AMTPROV_OK;
	}
	serial = fi->next_serial++;
	eku = (req->purpose == AMTPROV_PURPOSE_CLIENT_8021X) != breaks(opts, "eku") ? "clientAuth"
										      : "serverAuth";
	/* Contract tests: another key, another name. */
	if (breaks(opts, "key") && !(other = EVP_EC_gen("P-256")))
		goto crypto;
	snprintf(cn, sizeof(cn), "%s%s", breaks(opts, "subject") ? "not-" : "",
		 req->subject_fqdn ? req->subject_fqdn : "");
	x = X509_new();
	if (!x || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) != 1 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -300, &t) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)validity_days, 0, &t) ||
	    set_subject(x, r, req->subject_fqdn ? cn : NULL) < 0 ||
	    X509_set_issuer_name(x, X509_get_subject_name(fi->cert)) != 1 ||
	    X509_set_pubkey(x, other ? other : pub) != 1)
		goto crypto;
	if (add_ext(x, fi->cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, fi->cert, NID_key_usage, "critical,digitalSignature,keyEncipherment") < 0 ||
	    add_ext(x, fi->cert, NID_ext_key_usage, eku) < 0 ||
	    add_ext(x, fi->cert, NID_authority_key_identifier, "keyid") < 0)
		goto crypto;
	if (req->subject_fqdn && *req->subject_fqdn) {
		snprintf(san, sizeof(san), "DNS:%s%s", breaks(opts, "san") ? "other." : "",
			 req->subject_fqdn);
		if (add_ext(x, fi->cert, NID_subject_alt_name, san) < 0)
			goto crypto;
	}
	if (opts && opts->crl_url && *opts->crl_url && !breaks(opts, "crl")) {
		snprintf(san, sizeof(san), "URI:%s", opts->crl_url);
		if (add_ext(x, fi->cert, NID_crl_distribution_points, san) < 0)
			goto crypto;
	}
	if (X509_sign(x, fi->key, EVP_sha256()) <= 0)
		goto crypto;
	len = i2d_X509(x, NULL);
	if (len <= 0)
		goto crypto;
	der = malloc((size_t)len);
	res->chain_pem = breaks(opts, "chain") ? strdup("") : strdup(fi->cert_pem);
	if (!der || !res->chain_pem) {
		free(der);
		free(res->chain_pem);
		res->chain_pem = NULL;
		EVP_PKEY_free(other);
		X509_free(x);
		X509_REQ_free(r);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, "fake-ca", "out of memory");
	}
	q = der;
	i2d_X509(x, &q);
	if (breaks(opts, "der"))
		memset(der, 0x30, (size_t)len < 8 ? (size_t)len : 8);
	EVP_PKEY_free(other);
	res->outcome = AMTPROV_CA_ISSUED;
	res->cert_der = der;
	res->cert_len = (size_t)len;
	snprintf(res->request_id, sizeof(res->request_id), "fake-%llu",
		 (unsigned long long)serial);
	X509_free(x);
	X509_REQ_free(r);
	return AMTPROV_OK;
crypto:
	rc = crypto_error(err, "cannot issue the certificate");
	EVP_PKEY_free(other);
	X509_free(x);
	X509_REQ_free(r);
	return rc;
}
