/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ce_pki.c - requests, returned bundles (PEM chains, PKCS#12) and key matching.
 *
 * No host API here: the amtprov-request tool links this file too, so the administrator's
 * command line and the plugin check returned certificates in exactly the same way.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "ce.h"

X509_REQ *ce_csr_parse(const uint8_t *der, size_t len, struct amtprov_error *err)
{
	const unsigned char *p = der;
	X509_REQ *req;

	if (!der || !len || len > 65536) {
		amtprov_error_set(err, AMTPROV_E_INVALID, CE_NAME, "no PKCS#10 request");
		return NULL;
	}
	req = d2i_X509_REQ(NULL, &p, (long)len);
	if (!req || p != der + len) {
		X509_REQ_free(req);
		ce_crypto_error(err, "not a DER PKCS#10 request");
		if (err)
			err->code = AMTPROV_E_PARSE;
		return NULL;
	}
	return req;
}

X509_REQ *ce_csr_parse_any(const uint8_t *data, size_t len, struct amtprov_error *err)
{
	X509_REQ *req = NULL;
	BIO *bio;

	if (len > 10 && memmem(data, len, "-----BEGIN", 10)) {
		bio = BIO_new_mem_buf(data, (int)len);
		if (bio)
			req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
		BIO_free(bio);
		if (!req) {
			ce_crypto_error(err, "not a PEM certificate request");
			if (err)
				err->code = AMTPROV_E_PARSE;
		}
		return req;
	}
	return ce_csr_parse(data, len, err);
}

int ce_same_key(EVP_PKEY *a, EVP_PKEY *b)
{
	int r;

	if (!a || !b)
		return 0;
	r = EVP_PKEY_eq(a, b);
	ERR_clear_error();
	return r == 1;
}

char *ce_csr_challenge(X509_REQ *req)
{
	int i = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	char *s;

	if (i < 0)
		return NULL;
	a = X509_REQ_get_attr(req, i);
	t = a ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;
	if (!t || (t->type != V_ASN1_PRINTABLESTRING && t->type != V_ASN1_UTF8STRING &&
		   t->type != V_ASN1_IA5STRING && t->type != V_ASN1_T61STRING))
		return NULL;
	s = malloc((size_t)t->value.asn1_string->length + 1);
	if (!s)
		return NULL;
	memcpy(s, t->value.asn1_string->data, (size_t)t->value.asn1_string->length);
	s[t->value.asn1_string->length] = '\0';
	return s;
}

static int add_ext(STACK_OF(X509_EXTENSION) *exts, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, nid, value);

	if (!ext)
		return -1;
	if (!sk_X509_EXTENSION_push(exts, ext)) {
		X509_EXTENSION_free(ext);
		return -1;
	}
	return 0;
}

int ce_request_new(const struct ce_request_opts *o, EVP_PKEY **key_out, X509_REQ **req_out,
		   struct amtprov_error *err)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	char *san = NULL;
	int rc = AMTPROV_E_CRYPTO;

	if (!o || !o->cn || !*o->cn || o->bits < 2048 || o->bits > 16384 ||
	    o->marker < CE_MARK_OID || o->marker > CE_MARK_BOTH)
		return amtprov_error_set(err, AMTPROV_E_INVALID, CE_NAME,
					 "a provisioning request needs a CN (the service point "
					 "FQDN), RSA bits >= 2048 and a marker (oid, ou, both)");
	if (!(key = EVP_RSA_gen((unsigned)o->bits))) {
		ce_crypto_error(err, "RSA key generation");
		goto out;
	}
	req = X509_REQ_new();
	name = X509_NAME_new();
	exts = sk_X509_EXTENSION_new_null();
	if (!req || !name || !exts || asprintf(&san, "DNS:%s", o->cn) < 0) {
		san = NULL;
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
		goto out;
	}
	/* R-PC-01: AMT accepts the certificate when its EKU has serverAuth and the AMT OID, or
	 * when the subject carries the setup OU; R-PC-02: the CN is the service point FQDN.
	 * An external CA copies these from the request only with a suitable (version 2)
	 * template (R-CA-03), which is why both markers are offered. */
	if ((o->org &&
	     !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)o->org,
					 -1, -1, 0)) ||
	    ((o->marker & CE_MARK_OU) &&
	     !X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8,
					 (const unsigned char *)CE_OU_AMT_PROV, -1, -1, 0)) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)o->cn,
					-1, -1, 0) ||
	    !X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name) ||
	    !X509_REQ_set_pubkey(req, key)) {
		ce_crypto_error(err, "building the request subject");
		goto out;
	}
	if (add_ext(exts, NID_ext_key_usage,
		    (o->marker & CE_MARK_OID) ? "serverAuth," CE_OID_AMT_PROV : "serverAuth") < 0 ||
	    add_ext(exts, NID_key_usage, "critical,digitalSignature,keyEncipherment") < 0 ||
	    add_ext(exts, NID_subject_alt_name, san) < 0 || !X509_REQ_add_extensions(req, exts)) {
		ce_crypto_error(err, "building the requested extensions");
		goto out;
	}
	if (o->challenge && *o->challenge &&
	    !X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_UTF8,
				       (const unsigned char *)o->challenge, -1)) {
		ce_crypto_error(err, "adding the challenge password");
		goto out;
	}
	if (X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
		ce_crypto_error(err, "signing the request");
		goto out;
	}
	*key_out = key;
	*req_out = req;
	key = NULL;
	req = NULL;
	rc = AMTPROV_OK;
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	free(san);
	return rc;
}

int ce_certs_load(const uint8_t *data, size_t len, const char *where, STACK_OF(X509) **out,
		  struct amtprov_error *err)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *x;
	BIO *bio;

	if (!certs)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	if (len > 10 && memmem(data, len, "-----BEGIN", 10)) {
		bio = BIO_new_mem_buf(data, (int)len);
		while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
			if (!sk_X509_push(certs, x)) {
				X509_free(x);
				break;
			}
		}
		BIO_free(bio);
		/* The loop ends on "no more PEM": that error is expected, not a failure. */
		ERR_clear_error();
	} else {
		const unsigned char *p = data;

		x = d2i_X509(NULL, &p, (long)len);
		if (x && !sk_X509_push(certs, x))
			X509_free(x);
		ERR_clear_error();
	}
	if (sk_X509_num(certs) == 0) {
		sk_X509_free(certs);
		return amtprov_error_set(err, AMTPROV_E_PARSE, where,
					 "no certificate in it (expected PEM or DER)");
	}
	*out = certs;
	return AMTPROV_OK;
}

int ce_p12_load(const uint8_t *data, size_t len, const char *password, const char *where,
		STACK_OF(X509) **out, EVP_PKEY **key, struct amtprov_error *err)
{
	const unsigned char *p = data;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	STACK_OF(X509) *ca = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	char why[200];

	if (!p12) {
		pu_drain_ossl(why, sizeof(why));
		return amtprov_error_set(err, AMTPROV_E_PARSE, where, "not a PKCS#12 file: %s",
					 why);
	}
	/* Check the MAC first: a wrong password is an operator problem, told apart from a
	 * damaged file. The password itself never goes into a message. */
	if (!PKCS12_verify_mac(p12, password, -1)) {
		PKCS12_free(p12);
		ERR_clear_error();
		return amtprov_error_set(err, AMTPROV_E_AUTH, where,
					 "the PKCS#12 password is wrong (MAC check failed)");
	}
	if (!PKCS12_parse(p12, password, &pkey, &cert, &ca)) {
		PKCS12_free(p12);
		pu_drain_ossl(why, sizeof(why));
		return amtprov_error_set(err, AMTPROV_E_PARSE, where, "cannot read PKCS#12: %s",
					 why);
	}
	PKCS12_free(p12);
	if (!ca)
		ca = sk_X509_new_null();
	if (!ca || (cert && !sk_X509_insert(ca, cert, 0))) {
		X509_free(cert);
		EVP_PKEY_free(pkey);
		sk_X509_pop_free(ca, X509_free);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	}
	if (sk_X509_num(ca) == 0) {
		EVP_PKEY_free(pkey);
		sk_X509_free(ca);
		return amtprov_error_set(err, AMTPROV_E_PARSE, where,
					 "the PKCS#12 file holds no certificate");
	}
	if (key)
		*key = pkey;
	else
		EVP_PKEY_free(pkey);
	*out = ca;
	return AMTPROV_OK;
}

int ce_pem_append(char **pem, X509 *cert)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *grown;
	long n;
	size_t old = *pem ? strlen(*pem) : 0;

	if (!bio || !PEM_write_bio_X509(bio, cert)) {
		BIO_free(bio);
		return -1;
	}
	n = BIO_get_mem_data(bio, &data);
	grown = realloc(*pem, old + (size_t)n + 1);
	if (!grown) {
		BIO_free(bio);
		return -1;
	}
	memcpy(grown + old, data, (size_t)n);
	grown[old + (size_t)n] = '\0';
	*pem = grown;
	BIO_free(bio);
	return 0;
}

int ce_cert_der(X509 *cert, uint8_t **der, size_t *len, struct amtprov_error *err)
{
	unsigned char *tmp = NULL;
	int n = i2d_X509(cert, &tmp);

	if (n <= 0)
		return ce_crypto_error(err, "encoding the certificate");
	/* The result buffers belong to the core, which free()s them: copy out of OpenSSL's
	 * allocator. */
	*der = malloc((size_t)n);
	if (!*der) {
		OPENSSL_free(tmp);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	}
	memcpy(*der, tmp, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(tmp);
	return AMTPROV_OK;
}

int ce_pick_leaf(STACK_OF(X509) *certs, EVP_PKEY *pub, X509 **leaf_out, char **chain_pem,
		 struct amtprov_error *err)
{
	int n = sk_X509_num(certs), *used = NULL, li = -1;
	X509 *cur;
	char *pem = NULL;

	for (int i = 0; i < n && li < 0; i++)
		if (ce_same_key(X509_get0_pubkey(sk_X509_value(certs, i)), pub))
			li = i;
	if (li < 0)
		return amtprov_error_set(err, AMTPROV_E_VERIFY, CE_NAME,
					 "certificate does not match the request key");
	used = calloc((size_t)n, sizeof(*used));
	if (!used)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	used[li] = 1;
	cur = sk_X509_value(certs, li);
	/* Walk up by issuer name so the chain comes out leaf's issuer first, root last, in
	 * whatever order the CA packed it; a self-signed certificate ends the walk. */
	for (;;) {
		int next = -1;

		if (X509_check_issued(cur, cur) == X509_V_OK)
			break;
		for (int i = 0; i < n && next < 0; i++)
			if (!used[i] && X509_check_issued(sk_X509_value(certs, i), cur) == X509_V_OK)
				next = i;
		if (next < 0)
			break;
		used[next] = 1;
		cur = sk_X509_value(certs, next);
		if (ce_pem_append(&pem, cur) < 0)
			goto nomem;
	}
	for (int i = 0; i < n; i++)
		if (!used[i] && ce_pem_append(&pem, sk_X509_value(certs, i)) < 0)
			goto nomem;
	free(used);
	ERR_clear_error();
	*leaf_out = sk_X509_value(certs, li);
	X509_up_ref(*leaf_out);
	*chain_pem = pem;
	return AMTPROV_OK;
nomem:
	free(used);
	free(pem);
	return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
}
