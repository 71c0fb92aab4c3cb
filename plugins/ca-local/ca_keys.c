/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_keys.c - creates, imports and loads ca-local's root and issuing CA.
 *
 * Files in the state directory: root.key / issuing.key (PKCS#8 PEM, mode 0600, written
 * atomically) and root.pem / issuing.pem (certificates, 0644). The first start creates
 * both CAs; later starts load them. With import_* keys, an existing CA is used instead:
 * either a root plus its key (ca-local then makes and keeps its own issuing CA under it) or
 * a root plus a ready issuing CA and key. Key files and their contents are never logged.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "ca_local.h"

/* Clock skew allowance: certificates start a few minutes in the past so that a peer whose
 * clock lags slightly (AMT before its time is set) still accepts them. */
#define CL_BACKDATE_SECONDS 300

static EVP_PKEY *gen_key(struct ca_local *ca)
{
	if (strcmp(ca->cfg.key_type, "ec") == 0)
		return EVP_EC_gen(ca->cfg.curve);
	return EVP_RSA_gen((unsigned)ca->cfg.key_bits);
}

static int write_key(const char *path, EVP_PKEY *key, struct amtprov_error *err)
{
	/* secmem: the PEM text is wiped when the BIO is freed. */
	BIO *bio = BIO_new(BIO_s_secmem());
	char *data = NULL;
	long len;
	int rc;

	if (!bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
		BIO_free(bio);
		return cl_crypto_error(err, "cannot encode a CA key");
	}
	len = BIO_get_mem_data(bio, &data);
	rc = cl_write_file(path, data, (size_t)len, 0600, err);
	BIO_free(bio);
	return rc;
}

static int write_cert(const char *path, X509 *cert, struct amtprov_error *err)
{
	char *pem = NULL;
	int rc;

	if (cl_pem_append(&pem, cert) < 0)
		return cl_crypto_error(err, "cannot encode a CA certificate");
	rc = cl_write_file(path, pem, strlen(pem), 0644, err);
	free(pem);
	return rc;
}

static X509 *load_cert(const char *path, struct amtprov_error *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *bio;
	X509 *x = NULL;

	if (cl_read_file(path, &buf, &len, err) != AMTPROV_OK)
		return NULL;
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio)
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (!x && bio) {
		/* Not PEM: try DER, as exported by some CAs. */
		const unsigned char *p = buf;

		ERR_clear_error();
		x = d2i_X509(NULL, &p, (long)len);
	}
	BIO_free(bio);
	free(buf);
	if (!x)
		cl_crypto_error(err, "cannot read the certificate (PEM or DER)");
	if (!x && err)
		snprintf(err->where, sizeof(err->where), "%s", path);
	return x;
}

struct pw {
	const char *data;
	size_t len;
};

/* Supplies the import password; without one it answers "no password", so OpenSSL never
 * falls back to prompting on a terminal. */
static int pw_cb(char *buf, int size, int rwflag, void *u)
{
	const struct pw *pw = u;

	(void)rwflag;
	if (!pw || !pw->data || size <= 0 || pw->len >= (size_t)size)
		return 0;
	memcpy(buf, pw->data, pw->len);
	return (int)pw->len;
}

static EVP_PKEY *load_key(const char *path, const struct pw *pw, struct amtprov_error *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *bio;
	EVP_PKEY *key = NULL;

	if (cl_read_file(path, &buf, &len, err) != AMTPROV_OK)
		return NULL;
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio)
		key = PEM_read_bio_PrivateKey(bio, NULL, pw_cb, (void *)pw);
	BIO_free(bio);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (!key) {
		cl_crypto_error(err, pw && pw->data ? "cannot read the key (wrong password?)"
						    : "cannot read the key (encrypted? set "
						      "import_key_password)");
		if (err)
			snprintf(err->where, sizeof(err->where), "%s", path);
	}
	return key;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* A CA certificate for @p key named @p subject, signed by @p issuer / @p issuer_key (NULL:
 * self-signed root). The issuing CA gets pathlen 0: it signs end entities only. */
static X509 *make_ca_cert(struct ca_local *ca, const char *subject, EVP_PKEY *key,
			  X509 *issuer, EVP_PKEY *issuer_key, long long days,
			  struct amtprov_error *err)
{
	X509_NAME *name = cl_name_parse(subject);
	X509 *x = X509_new();
	time_t t = (time_t)ca->host->now(ca->host);

	if (!name) {
		X509_free(x);
		amtprov_error_set(err, AMTPROV_E_CONFIG, issuer ? "/issuing_subject" : "/root_subject",
				  "'%s' is not a distinguished name such as \"CN=Lab CA,O=Example\"",
				  subject);
		ERR_clear_error();
		return NULL;
	}
	if (!x || X509_set_version(x, 2) != 1 || cl_random_serial(x) < 0 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -CL_BACKDATE_SECONDS, &t) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &t) ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
	    X509_set_pubkey(x, key) != 1)
		goto crypto;
	/* An issuing CA never outlives its root: clients would reject the chain after the
	 * root expires anyway, and a clamped date says so honestly. */
	if (issuer && ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer)) > 0 &&
	    X509_set1_notAfter(x, X509_get0_notAfter(issuer)) != 1)
		goto crypto;
	if (add_ext(x, issuer, NID_basic_constraints,
		    issuer ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE") < 0 ||
	    add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") < 0 ||
	    add_ext(x, issuer, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, issuer, NID_authority_key_identifier, "keyid:always") < 0)
		goto crypto;
	if (X509_sign(x, issuer_key ? issuer_key : key, ca->md) <= 0)
		goto crypto;
	X509_NAME_free(name);
	return x;
crypto:
	cl_crypto_error(err, issuer ? "cannot create the issuing CA certificate"
				    : "cannot create the root CA certificate");
	X509_NAME_free(name);
	X509_free(x);
	return NULL;
}

/* 1 if @p key is the private key of @p cert (mismatch is not an OpenSSL failure here). */
static int key_matches(X509 *cert, EVP_PKEY *key)
{
	int ok = X509_check_private_key(cert, key) == 1;

	ERR_clear_error();
	return ok;
}

static int signed_by(X509 *cert, X509 *issuer)
{
	EVP_PKEY *pub = X509_get0_pubkey(issuer);
	int ok = pub && X509_verify(cert, pub) == 1 &&
		 X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(issuer)) == 0;

	ERR_clear_error();
	return ok;
}

static char *subject_text(X509 *x)
{
	char *s = cl_name_text(X509_get_subject_name(x));

	return s;
}

struct load_ctx {
	struct ca_local *ca;
	char *root_pem, *root_key, *issuing_pem, *issuing_key;
	struct amtprov_secret *password;
	struct pw pw;
	X509 *root;
	EVP_PKEY *rkey;
	X509 *issuing;
	EVP_PKEY *ikey;
};

static int get_password(struct load_ctx *lc, struct amtprov_error *err)
{
	const struct amtprov_host *host = lc->ca->host;
	const char *name = lc->ca->cfg.import_key_password;
	int rc;

	if (!name || !*name)
		return AMTPROV_OK;
	rc = host->secret_get(host, name, &lc->password, err);
	if (rc != AMTPROV_OK) {
		if (err && !err->where[0])
			snprintf(err->where, sizeof(err->where), "/import_key_password");
		return rc;
	}
	lc->pw.data = lc->password->data;
	lc->pw.len = lc->password->len;
	return AMTPROV_OK;
}

static int load_root(struct load_ctx *lc, struct amtprov_error *err)
{
	struct ca_local *ca = lc->ca;
	const struct amtprov_host *host = ca->host;
	char *subj;
	int rc;

	if (ca->cfg.import_root_cert && *ca->cfg.import_root_cert) {
		lc->root = load_cert(ca->cfg.import_root_cert, err);
		if (!lc->root)
			return err ? err->code : AMTPROV_E_CRYPTO;
		if (ca->cfg.import_root_key && *ca->cfg.import_root_key) {
			lc->rkey = load_key(ca->cfg.import_root_key, &lc->pw, err);
			if (!lc->rkey)
				return err ? err->code : AMTPROV_E_CRYPTO;
			if (!key_matches(lc->root, lc->rkey))
				return amtprov_error_set(err, AMTPROV_E_CONFIG, "/import_root_key",
							 "the key does not belong to the root "
							 "certificate import_root_cert");
		}
		host->log(host, AMTPROV_LOG_INFO, "using the imported root CA");
		/* A public copy, so the state directory always holds the chain it serves. */
		return write_cert(lc->root_pem, lc->root, err);
	}
	if (cl_exists(lc->root_pem)) {
		lc->root = load_cert(lc->root_pem, err);
		if (!lc->root)
			return err ? err->code : AMTPROV_E_CRYPTO;
		if (cl_exists(lc->root_key)) {
			lc->rkey = load_key(lc->root_key, NULL, err);
			if (!lc->rkey)
				return err ? err->code : AMTPROV_E_CRYPTO;
			if (!key_matches(lc->root, lc->rkey)) {
				host->log(host, AMTPROV_LOG_WARNING,
					  "root.key does not belong to root.pem; ignoring it");
				EVP_PKEY_free(lc->rkey);
				lc->rkey = NULL;
			}
		}
		return AMTPROV_OK;
	}
	lc->rkey = gen_key(ca);
	if (!lc->rkey)
		return cl_crypto_error(err, "cannot generate the root CA key");
	lc->root = make_ca_cert(ca, ca->cfg.root_subject, lc->rkey, NULL, NULL,
				ca->cfg.root_validity_days, err);
	if (!lc->root)
		return err ? err->code : AMTPROV_E_CRYPTO;
	if ((rc = write_key(lc->root_key, lc->rkey, err)) != AMTPROV_OK ||
	    (rc = write_cert(lc->root_pem, lc->root, err)) != AMTPROV_OK)
		return rc;
	subj = subject_text(lc->root);
	host->log(host, AMTPROV_LOG_NOTICE, "created root CA '%s'", subj ? subj : "?");
	free(subj);
	return AMTPROV_OK;
}

static int load_issuing(struct load_ctx *lc, struct amtprov_error *err)
{
	struct ca_local *ca = lc->ca;
	const struct amtprov_host *host = ca->host;
	char *subj;
	int rc;

	if (ca->cfg.import_issuing_cert && *ca->cfg.import_issuing_cert) {
		lc->issuing = load_cert(ca->cfg.import_issuing_cert, err);
		if (!lc->issuing)
			return err ? err->code : AMTPROV_E_CRYPTO;
		lc->ikey = load_key(ca->cfg.import_issuing_key, &lc->pw, err);
		if (!lc->ikey)
			return err ? err->code : AMTPROV_E_CRYPTO;
		if (!key_matches(lc->issuing, lc->ikey))
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/import_issuing_key",
						 "the key does not belong to the issuing "
						 "certificate import_issuing_cert");
		if (!signed_by(lc->issuing, lc->root))
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/import_issuing_cert",
						 "the issuing CA certificate is not signed by the "
						 "root import_root_cert");
		host->log(host, AMTPROV_LOG_INFO, "using the imported issuing CA");
		return write_cert(lc->issuing_pem, lc->issuing, err);
	}
	if (cl_exists(lc->issuing_pem) && cl_exists(lc->issuing_key)) {
		lc->issuing = load_cert(lc->issuing_pem, err);
		if (!lc->issuing)
			return err ? err->code : AMTPROV_E_CRYPTO;
		lc->ikey = load_key(lc->issuing_key, NULL, err);
		if (!lc->ikey)
			return err ? err->code : AMTPROV_E_CRYPTO;
		if (key_matches(lc->issuing, lc->ikey) && signed_by(lc->issuing, lc->root))
			return AMTPROV_OK;
		host->log(host, AMTPROV_LOG_WARNING,
			  "issuing.pem does not belong to the root CA (or to issuing.key); "
			  "creating a new issuing CA");
		X509_free(lc->issuing);
		EVP_PKEY_free(lc->ikey);
		lc->issuing = NULL;
		lc->ikey = NULL;
	}
	if (!lc->rkey)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/import_root_key",
					 "the root CA's private key is needed to create an issuing "
					 "CA (set import_root_key, or import_issuing_cert and "
					 "import_issuing_key)");
	lc->ikey = gen_key(ca);
	if (!lc->ikey)
		return cl_crypto_error(err, "cannot generate the issuing CA key");
	lc->issuing = make_ca_cert(ca, ca->cfg.issuing_subject, lc->ikey, lc->root, lc->rkey,
				   ca->cfg.issuing_validity_days, err);
	if (!lc->issuing)
		return err ? err->code : AMTPROV_E_CRYPTO;
	if ((rc = write_key(lc->issuing_key, lc->ikey, err)) != AMTPROV_OK ||
	    (rc = write_cert(lc->issuing_pem, lc->issuing, err)) != AMTPROV_OK)
		return rc;
	subj = subject_text(lc->issuing);
	host->log(host, AMTPROV_LOG_NOTICE, "created issuing CA '%s'", subj ? subj : "?");
	free(subj);
	return AMTPROV_OK;
}

int cl_keys_load(struct ca_local *ca, struct amtprov_error *err)
{
	struct load_ctx lc = {.ca = ca};
	int rc = AMTPROV_E_NOMEM;

	lc.root_pem = pu_path(ca->dir, "root.pem", NULL);
	lc.root_key = pu_path(ca->dir, "root.key", NULL);
	lc.issuing_pem = pu_path(ca->dir, "issuing.pem", NULL);
	lc.issuing_key = pu_path(ca->dir, "issuing.key", NULL);
	if (!lc.root_pem || !lc.root_key || !lc.issuing_pem || !lc.issuing_key) {
		amtprov_error_set(err, rc, CL_NAME, "out of memory");
		goto out;
	}
	if ((rc = get_password(&lc, err)) != AMTPROV_OK || (rc = load_root(&lc, err)) != AMTPROV_OK ||
	    (rc = load_issuing(&lc, err)) != AMTPROV_OK)
		goto out;
	if (X509_check_ca(lc.root) == 0 || X509_check_ca(lc.issuing) == 0) {
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, CL_NAME,
				       "the root or issuing certificate is not a CA certificate");
		goto out;
	}
	ca->roots_pem = NULL;
	if (cl_pem_append(&ca->roots_pem, lc.issuing) < 0 ||
	    cl_pem_append(&ca->roots_pem, lc.root) < 0) {
		rc = cl_crypto_error(err, "cannot encode the CA chain");
		free(ca->roots_pem);
		ca->roots_pem = NULL;
		goto out;
	}
	ca->root = lc.root;
	ca->issuing = lc.issuing;
	ca->issuing_key = lc.ikey;
	lc.root = NULL;
	lc.issuing = NULL;
	lc.ikey = NULL;
	rc = AMTPROV_OK;
out:
	/* The root key is needed only to create the issuing CA: it is not kept in memory. */
	EVP_PKEY_free(lc.rkey);
	EVP_PKEY_free(lc.ikey);
	X509_free(lc.root);
	X509_free(lc.issuing);
	ca->host->secret_free(ca->host, lc.password);
	free(lc.root_pem);
	free(lc.root_key);
	free(lc.issuing_pem);
	free(lc.issuing_key);
	return rc;
}

void cl_keys_unload(struct ca_local *ca)
{
	X509_free(ca->root);
	X509_free(ca->issuing);
	EVP_PKEY_free(ca->issuing_key);
	free(ca->roots_pem);
	ca->root = NULL;
	ca->issuing = NULL;
	ca->issuing_key = NULL;
	ca->roots_pem = NULL;
}
