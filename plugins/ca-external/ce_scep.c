/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ce_scep.c - SCEP enrollment (RFC 8894): GetCACaps, GetCACert, PKCSReq and CertPoll
 * (GetCertInitial), and the CertRep answers.
 *
 * The request's private key lives in AMT, so the pkiMessage is signed with a transient
 * self-signed RSA certificate made for this transaction; the CA encrypts its answer to that
 * certificate. While a request is PENDING the transient key, its certificate and the request
 * are kept in <state>/scep-<transactionID>.pem (0600): the core may poll after a restart.
 *
 * The challenge password travels inside the PKCS#10 request (challengePassword attribute),
 * which the request's key signs. ca-external cannot add it to a request it did not build,
 * so it hands it to the core beforehand (csr_attributes, ca.h ABI 1.1): the core puts it in
 * its own request or in the template AMT signs; see docs/ca-external.md.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ce.h"

/* SCEP attributes: id-VeriSign 2.16.840.1.113733 pki(1) attributes(9) n. */
#define OID_MESSAGE_TYPE "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID "2.16.840.1.113733.1.9.7"

#define MSG_CERTREP "3"
#define MSG_PKCSREQ "19"
#define MSG_CERTPOLL "20"

#define NONCE_LEN 16
#define CE_WHY_SIZE 256

/* What GetCACaps and GetCACert told us. */
struct scep_ca {
	STACK_OF(X509) *certs; /* everything GetCACert returned */
	X509 *recipient;       /* RA encryption certificate, or the CA (borrowed from certs) */
	X509 *issuer;          /* the CA that issues (borrowed from certs) */
	int aes, post, sha256;
};

static void scep_ca_free(struct scep_ca *ca)
{
	sk_X509_pop_free(ca->certs, X509_free);
	memset(ca, 0, sizeof(*ca));
}

/* One SCEP transaction: the transient signer and the identifiers. */
struct scep_tx {
	EVP_PKEY *key;
	X509 *cert;
	X509_REQ *csr;
	char tid[65];
	uint8_t nonce[NONCE_LEN];
};

static void scep_tx_free(struct scep_tx *tx)
{
	EVP_PKEY_free(tx->key);
	X509_free(tx->cert);
	X509_REQ_free(tx->csr);
	memset(tx, 0, sizeof(*tx));
}

static void set_outcome(struct amtprov_ca_result *res, uint32_t outcome, const char *fmt, ...)
	AMTPROV_PRINTF(3, 4);

static void set_outcome(struct amtprov_ca_result *res, uint32_t outcome, const char *fmt, ...)
{
	va_list ap;

	res->outcome = outcome;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
}

/* ---- URLs and HTTP ---- */

/* <url>?operation=OP[&message=MSG]; a URL that already has a query gets "&". */
static char *op_url(struct ca_external *ce, const char *op, const char *message)
{
	char *enc = message ? ce_urlencode(message) : NULL, *u = NULL;

	if (message && !enc)
		return NULL;
	if (asprintf(&u, "%s%coperation=%s%s%s", ce->cfg.url, strchr(ce->cfg.url, '?') ? '&' : '?',
		     op, enc ? "&message=" : "", enc ? enc : "") < 0)
		u = NULL;
	free(enc);
	return u;
}

/* Printable excerpt of an HTTP body for a message: the server's own words. */
static void body_text(const struct ce_http_resp *r, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < r->len && n + 1 < size; i++) {
		char c = (char)r->body[i];

		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
			return (void)(out[0] = '\0'); /* binary: not a reason text */
		if (c == ' ' && (n == 0 || out[n - 1] == ' '))
			continue;
		out[n++] = c;
	}
	while (n && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

/* Non-200 answers: the body (if text) is the server's reason. 502-504 are gateways and
 * overloads in front of the CA: retry. */
static void http_failed(struct amtprov_ca_result *res, const char *op,
			const struct ce_http_resp *r)
{
	char text[160];

	body_text(r, text, sizeof(text));
	set_outcome(res,
		    r->status >= 502 && r->status <= 504 ? AMTPROV_CA_UNREACHABLE
							 : AMTPROV_CA_REJECTED,
		    "SCEP %s: HTTP %ld%s%s", op, r->status, text[0] ? ": " : "", text);
}

/* ---- GetCACaps, GetCACert ---- */

static int has_cap(const char *caps, const char *want)
{
	size_t n = strlen(want);

	for (const char *p = caps; p && *p;) {
		const char *e = strpbrk(p, "\r\n");
		size_t l = e ? (size_t)(e - p) : strlen(p);

		while (l && (p[l - 1] == ' ' || p[l - 1] == '\t'))
			l--;
		if (l == n && strncasecmp(p, want, n) == 0)
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

/* 1 if @p x is a CA certificate. */
static int is_ca(X509 *x)
{
	return X509_check_ca(x) > 0;
}

static int pick_recipient(struct scep_ca *ca)
{
	int n = sk_X509_num(ca->certs);

	/* RFC 8894 4.2.1: several certificates mean an RA; its certificate (not a CA, able to
	 * encipher keys) gets the envelope and the CA is the issuer. */
	for (int i = 0; i < n; i++) {
		X509 *x = sk_X509_value(ca->certs, i);

		if (!ca->issuer && is_ca(x))
			ca->issuer = x;
		if (!ca->recipient && !is_ca(x) &&
		    (X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT))
			ca->recipient = x;
	}
	if (!ca->issuer)
		ca->issuer = sk_X509_value(ca->certs, 0);
	if (!ca->recipient)
		ca->recipient = ca->issuer;
	ERR_clear_error();
	return 0;
}

static int check_fingerprint(struct ca_external *ce, struct scep_ca *ca)
{
	if (!ce->have_fpr)
		return 1;
	for (int i = 0; i < sk_X509_num(ca->certs); i++) {
		uint8_t md[32];
		unsigned int len = sizeof(md);

		if (X509_digest(sk_X509_value(ca->certs, i), EVP_sha256(), md, &len) &&
		    len == 32 && memcmp(md, ce->fpr, 32) == 0)
			return 1;
	}
	return 0;
}

/*
 * Asks the server for its capabilities and certificates. Returns 0, or -1 with @p res set
 * (UNREACHABLE, REJECTED) or @p err set (*rc then holds the error code).
 */
static int discover(struct ca_external *ce, struct scep_ca *ca, struct amtprov_ca_result *res,
		    struct amtprov_error *err, int *rc)
{
	struct ce_http_resp r;
	char why[CE_WHY_SIZE], *url;
	const char *ident = ce->cfg.ca_ident && *ce->cfg.ca_ident ? ce->cfg.ca_ident : NULL;

	*rc = AMTPROV_OK;
	memset(ca, 0, sizeof(*ca));
	if (!(url = op_url(ce, "GetCACaps", ident)))
		goto nomem;
	if (ce_http(url, NULL, 0, NULL, (long)ce->cfg.timeout_seconds, &r, why, sizeof(why)) < 0) {
		free(url);
		set_outcome(res, AMTPROV_CA_UNREACHABLE, "SCEP server %s: %s", ce->cfg.url, why);
		return -1;
	}
	free(url);
	/* A server without GetCACaps (old ones answer 404) gets the RFC's minimal defaults:
	 * GET, DES3, SHA-1. */
	if (r.status == 200) {
		const char *caps = (const char *)r.body;
		int standard = has_cap(caps, "SCEPStandard");

		ca->aes = standard || has_cap(caps, "AES");
		ca->post = standard || has_cap(caps, "POSTPKIOperation");
		ca->sha256 = standard || has_cap(caps, "SHA-256");
	}
	ce_http_resp_free(&r);

	if (!(url = op_url(ce, "GetCACert", ident)))
		goto nomem;
	if (ce_http(url, NULL, 0, NULL, (long)ce->cfg.timeout_seconds, &r, why, sizeof(why)) < 0) {
		free(url);
		set_outcome(res, AMTPROV_CA_UNREACHABLE, "SCEP server %s: %s", ce->cfg.url, why);
		return -1;
	}
	free(url);
	if (r.status != 200) {
		http_failed(res, "GetCACert", &r);
		ce_http_resp_free(&r);
		return -1;
	}
	{
		const unsigned char *p = r.body;
		X509 *one = d2i_X509(NULL, &p, (long)r.len);

		if (one) {
			ca->certs = sk_X509_new_null();
			if (!ca->certs || !sk_X509_push(ca->certs, one)) {
				X509_free(one);
				ce_http_resp_free(&r);
				goto nomem;
			}
		} else {
			PKCS7 *p7;

			p = r.body;
			p7 = d2i_PKCS7(NULL, &p, (long)r.len);
			if (p7 && PKCS7_type_is_signed(p7) && p7->d.sign && p7->d.sign->cert &&
			    sk_X509_num(p7->d.sign->cert) > 0) {
				ca->certs = p7->d.sign->cert;
				p7->d.sign->cert = NULL;
			}
			PKCS7_free(p7);
		}
	}
	ERR_clear_error();
	ce_http_resp_free(&r);
	if (!ca->certs) {
		set_outcome(res, AMTPROV_CA_UNREACHABLE,
			    "SCEP GetCACert: the answer is neither a certificate nor a PKCS#7 "
			    "certificate bundle");
		return -1;
	}
	pick_recipient(ca);
	if (!check_fingerprint(ce, ca)) {
		/* Not REJECTED: the CA did not refuse anything; someone must look at it. */
		set_outcome(res, AMTPROV_CA_UNCONFIGURED,
			    "SCEP GetCACert: no certificate matches ca_fingerprint (wrong server, "
			    "a renewed CA, or a man in the middle)");
		scep_ca_free(ca);
		return -1;
	}
	return 0;
nomem:
	*rc = amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	return -1;
}

/* ---- transient signer ---- */

static int make_signer(struct ca_external *ce, struct scep_tx *tx, struct amtprov_error *err)
{
	X509_NAME *subj = X509_REQ_get_subject_name(tx->csr), *own = NULL;
	time_t now = (time_t)ce->host->now(ce->host);
	BIGNUM *bn = BN_new();

	tx->key = EVP_RSA_gen(2048);
	tx->cert = X509_new();
	if (!tx->key || !tx->cert || !bn)
		goto fail;
	if (X509_NAME_entry_count(subj) == 0) {
		/* An empty subject would be refused by some servers as a signer name. */
		own = X509_NAME_new();
		if (!own || !X509_NAME_add_entry_by_txt(own, "CN", MBSTRING_ASC,
							(const unsigned char *)"amtprov SCEP client",
							-1, -1, 0))
			goto fail;
		subj = own;
	}
	if (!BN_rand(bn, 64, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(tx->cert)) ||
	    !X509_set_version(tx->cert, 2) || !X509_set_subject_name(tx->cert, subj) ||
	    !X509_set_issuer_name(tx->cert, subj) || !X509_set_pubkey(tx->cert, tx->key) ||
	    !X509_time_adj_ex(X509_getm_notBefore(tx->cert), 0, -300, &now) ||
	    /* Long enough to outlive a pending request that waits for a person. */
	    !X509_time_adj_ex(X509_getm_notAfter(tx->cert), 30, 0, &now) ||
	    X509_sign(tx->cert, tx->key, EVP_sha256()) <= 0)
		goto fail;
	BN_free(bn);
	X509_NAME_free(own);
	return AMTPROV_OK;
fail:
	BN_free(bn);
	X509_NAME_free(own);
	return ce_crypto_error(err, "making the transient SCEP signer certificate");
}

/* transactionID: hex SHA-256 of the request's public key (RFC 8894 3.2.1.1 suggests a
 * hash of the key), so a repeated submit of the same request is the same transaction. */
static int make_tid(X509_REQ *csr, char tid[65], struct amtprov_error *err)
{
	EVP_PKEY *pub = X509_REQ_get0_pubkey(csr);
	unsigned char *spki = NULL, md[32];
	unsigned int mdlen = sizeof(md);
	int n = pub ? i2d_PUBKEY(pub, &spki) : -1;

	if (n <= 0 || !EVP_Digest(spki, (size_t)n, md, &mdlen, EVP_sha256(), NULL)) {
		OPENSSL_free(spki);
		return ce_crypto_error(err, "hashing the request's public key");
	}
	OPENSSL_free(spki);
	ce_hex(md, 32, tid);
	return AMTPROV_OK;
}

/* ---- pkiMessage ---- */

/* @p len is explicit: with -1 OpenSSL reads @p data as an ASN1_STRING, not as text. */
static int add_attr(PKCS7_SIGNER_INFO *si, const char *oid, int type, const void *data,
		    int len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int ok = obj && X509at_add1_attr_by_OBJ(&si->auth_attr, obj, type, data, len) != NULL;

	ASN1_OBJECT_free(obj);
	return ok;
}

/* The value of a signed attribute as a string of *len bytes (borrowed), or NULL. */
static const ASN1_STRING *get_attr(PKCS7_SIGNER_INFO *si, const char *oid)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int i = obj ? X509at_get_attr_by_OBJ(si->auth_attr, obj, -1) : -1;
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;

	ASN1_OBJECT_free(obj);
	if (i < 0 || !(a = X509at_get_attr(si->auth_attr, i)) ||
	    !(t = X509_ATTRIBUTE_get0_type(a, 0)))
		return NULL;
	if (t->type != V_ASN1_PRINTABLESTRING && t->type != V_ASN1_OCTET_STRING &&
	    t->type != V_ASN1_UTF8STRING && t->type != V_ASN1_IA5STRING)
		return NULL;
	return t->value.asn1_string;
}

static int str_is(const ASN1_STRING *s, const char *want)
{
	size_t n = strlen(want);

	return s && (size_t)ASN1_STRING_length(s) == n &&
	       memcmp(ASN1_STRING_get0_data(s), want, n) == 0;
}

/* DER of a PKCS7 into a malloc'd buffer. */
static int p7_der(PKCS7 *p7, uint8_t **out, size_t *len)
{
	unsigned char *tmp = NULL;
	int n = i2d_PKCS7(p7, &tmp);

	if (n <= 0)
		return -1;
	*out = malloc((size_t)n);
	if (*out)
		memcpy(*out, tmp, (size_t)n);
	OPENSSL_free(tmp);
	*len = (size_t)n;
	return *out ? 0 : -1;
}

/*
 * pkiMessage = SignedData(EnvelopedData(@p content) to the CA/RA), signed by the transient
 * certificate with messageType, transactionID and a fresh senderNonce.
 */
static int build_message(struct scep_ca *ca, struct scep_tx *tx, const char *msg_type,
			 const uint8_t *content, size_t content_len, uint8_t **out, size_t *out_len,
			 struct amtprov_error *err)
{
	STACK_OF(X509) *recips = sk_X509_new_null();
	const EVP_CIPHER *cipher = ca->aes ? EVP_aes_128_cbc() : EVP_des_ede3_cbc();
	const EVP_MD *md = ca->sha256 ? EVP_sha256() : EVP_sha1();
	BIO *in = NULL, *envbio = NULL;
	PKCS7 *env = NULL, *p7 = NULL;
	PKCS7_SIGNER_INFO *si;
	uint8_t *envder = NULL;
	size_t envlen = 0;
	int rc = AMTPROV_E_CRYPTO;

	if (!recips || !sk_X509_push(recips, ca->recipient) ||
	    RAND_bytes(tx->nonce, NONCE_LEN) != 1)
		goto out;
	if (!(in = BIO_new_mem_buf(content, (int)content_len)) ||
	    !(env = PKCS7_encrypt(recips, in, cipher, PKCS7_BINARY)) ||
	    p7_der(env, &envder, &envlen) < 0)
		goto out;
	if (!(p7 = PKCS7_sign(NULL, NULL, NULL, NULL, PKCS7_PARTIAL | PKCS7_BINARY)) ||
	    !(si = PKCS7_sign_add_signer(p7, tx->cert, tx->key, md, PKCS7_NOSMIMECAP)))
		goto out;
	if (!add_attr(si, OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, msg_type,
		      (int)strlen(msg_type)) ||
	    !add_attr(si, OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, tx->tid,
		      (int)strlen(tx->tid)) ||
	    !add_attr(si, OID_SENDER_NONCE, V_ASN1_OCTET_STRING, tx->nonce, NONCE_LEN))
		goto out;
	if (!(envbio = BIO_new_mem_buf(envder, (int)envlen)) ||
	    !PKCS7_final(p7, envbio, PKCS7_BINARY) || p7_der(p7, out, out_len) < 0)
		goto out;
	rc = AMTPROV_OK;
out:
	if (rc != AMTPROV_OK)
		ce_crypto_error(err, "building the SCEP pkiMessage");
	sk_X509_free(recips);
	BIO_free(in);
	BIO_free(envbio);
	PKCS7_free(env);
	PKCS7_free(p7);
	free(envder);
	return rc;
}

static const char *fail_info_text(const ASN1_STRING *s)
{
	static const char *const names[] = {
		"badAlg (unrecognized or unsupported algorithm)",
		"badMessageCheck (integrity check failed)",
		"badRequest (transaction not permitted or supported)",
		"badTime (signingTime not close enough to the CA's time)",
		"badCertId (no certificate matches the criteria)",
	};

	if (s && ASN1_STRING_length(s) == 1) {
		int v = ASN1_STRING_get0_data(s)[0] - '0';

		if (v >= 0 && v <= 4)
			return names[v];
	}
	return "no failInfo given";
}

/* Sends a pkiMessage: POST when the server says it can, else GET with base64. */
static int send_message(struct ca_external *ce, struct scep_ca *ca, const uint8_t *msg,
			size_t len, struct ce_http_resp *r, struct amtprov_ca_result *res,
			struct amtprov_error *err)
{
	char why[CE_WHY_SIZE], *url = NULL, *b64 = NULL;
	int n;

	if (ca->post) {
		url = op_url(ce, "PKIOperation", NULL);
	} else {
		b64 = malloc(4 * ((len + 2) / 3) + 1);
		if (b64 && (n = EVP_EncodeBlock((unsigned char *)b64, msg, (int)len)) >= 0) {
			b64[n] = '\0';
			url = op_url(ce, "PKIOperation", b64);
		}
	}
	free(b64);
	if (!url)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	n = ce_http(url, ca->post ? msg : NULL, len, "application/x-pki-message",
		    (long)ce->cfg.timeout_seconds, r, why, sizeof(why));
	free(url);
	if (n < 0) {
		set_outcome(res, AMTPROV_CA_UNREACHABLE, "SCEP server %s: %s", ce->cfg.url, why);
		return AMTPROV_E_UNREACHABLE;
	}
	if (r->status != 200) {
		http_failed(res, "PKIOperation", r);
		ce_http_resp_free(r);
		return AMTPROV_E_DENIED;
	}
	return AMTPROV_OK;
}

/* ---- pending state ---- */

static char *state_path(struct ca_external *ce, const char *tid)
{
	char stem[80];

	snprintf(stem, sizeof(stem), "scep-%s", tid);
	return pu_path(ce->state, stem, ".pem");
}

static int save_pending(struct ca_external *ce, struct scep_tx *tx, struct amtprov_error *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *path = state_path(ce, tx->tid), *data;
	long n;
	int rc;

	/* Unencrypted but 0600 in the instance's 0700 state directory: the key only decrypts
	 * the CA's answer to this one transaction and is deleted with it. */
	if (!bio || !path || !PEM_write_bio_PrivateKey(bio, tx->key, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(bio, tx->cert) || !PEM_write_bio_X509_REQ(bio, tx->csr)) {
		BIO_free(bio);
		free(path);
		return ce_crypto_error(err, "saving the pending SCEP transaction");
	}
	n = BIO_get_mem_data(bio, &data);
	rc = ce_write_file(path, data, (size_t)n, 0600, err);
	OPENSSL_cleanse(data, (size_t)n);
	BIO_free(bio);
	free(path);
	return rc;
}

static int load_pending(struct ca_external *ce, const char *tid, struct scep_tx *tx,
			struct amtprov_error *err)
{
	char *path = state_path(ce, tid);
	uint8_t *data = NULL;
	size_t len = 0;
	BIO *bio;
	int rc;

	if (!path)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	rc = ce_read_file(path, &data, &len, err);
	free(path);
	if (rc != AMTPROV_OK)
		return rc;
	bio = BIO_new_mem_buf(data, (int)len);
	if (bio) {
		tx->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		tx->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		tx->csr = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	}
	BIO_free(bio);
	OPENSSL_cleanse(data, len);
	free(data);
	if (!tx->key || !tx->cert || !tx->csr)
		return ce_crypto_error(err, "reading the pending SCEP transaction");
	snprintf(tx->tid, sizeof(tx->tid), "%s", tid);
	return AMTPROV_OK;
}

static void drop_pending(struct ca_external *ce, const char *tid)
{
	char *path = state_path(ce, tid);

	if (path)
		unlink(path);
	free(path);
}

/* ---- CertRep ---- */

/* SUCCESS: EnvelopedData to our transient certificate around a degenerate SignedData. */
static int take_certs(struct ca_external *ce, struct scep_ca *ca, struct scep_tx *tx,
		      BIO *content, struct amtprov_ca_result *res, struct amtprov_error *err)
{
	BUF_MEM *bm = NULL;
	const unsigned char *p;
	PKCS7 *env = NULL, *deg = NULL;
	BIO *plain = BIO_new(BIO_s_mem());
	STACK_OF(X509) *all = sk_X509_new_null();
	X509 *leaf = NULL;
	char *chain = NULL;
	struct amtprov_error e2;
	int rc = AMTPROV_OK;

	BIO_get_mem_ptr(content, &bm);
	p = (const unsigned char *)bm->data;
	if (plain && all && (env = d2i_PKCS7(NULL, &p, (long)bm->length)) &&
	    !PKCS7_decrypt(env, tx->key, tx->cert, plain, 0) && ce->legacy_ctx) {
		/* Retry in the private context that also has single DES (see ce.h). */
		const unsigned char *q = (const unsigned char *)bm->data;
		PKCS7 *legacy = PKCS7_new_ex(ce->legacy_ctx, NULL);

		ERR_clear_error();
		PKCS7_free(env);
		env = legacy && d2i_PKCS7(&legacy, &q, (long)bm->length) ? legacy : NULL;
		if (!env)
			PKCS7_free(legacy);
		else if (PKCS7_decrypt(env, tx->key, tx->cert, plain, 0))
			ce->host->log(ce->host, AMTPROV_LOG_WARNING,
				      "the SCEP server encrypted its answer with a legacy cipher "
				      "(single DES); accepted for this answer only");
		else
			BIO_reset(plain);
	}
	if (!plain || !all || !env || BIO_pending(plain) == 0) {
		char why[160];

		pu_drain_ossl(why, sizeof(why));
		set_outcome(res, AMTPROV_CA_UNREACHABLE,
			    "SCEP CertRep SUCCESS but its content cannot be decrypted: %s", why);
		goto out;
	}
	BIO_get_mem_ptr(plain, &bm);
	p = (const unsigned char *)bm->data;
	deg = d2i_PKCS7(NULL, &p, (long)bm->length);
	if (!deg || !PKCS7_type_is_signed(deg) || !deg->d.sign || !deg->d.sign->cert) {
		set_outcome(res, AMTPROV_CA_UNREACHABLE,
			    "SCEP CertRep SUCCESS without a certificate");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(deg->d.sign->cert); i++)
		if (!X509_add_cert(all, sk_X509_value(deg->d.sign->cert, i), X509_ADD_FLAG_UP_REF))
			goto nomem;
	/* The CA's own certificates complete the chain the device presents (R-PC-03). */
	for (int i = 0; i < sk_X509_num(ca->certs); i++)
		if (sk_X509_value(ca->certs, i) != ca->recipient || ca->recipient == ca->issuer)
			if (!X509_add_cert(all, sk_X509_value(ca->certs, i),
					   X509_ADD_FLAG_UP_REF | X509_ADD_FLAG_NO_DUP))
				goto nomem;
	amtprov_error_clear(&e2);
	if (ce_pick_leaf(all, X509_REQ_get0_pubkey(tx->csr), &leaf, &chain, &e2) != AMTPROV_OK) {
		if (e2.code != AMTPROV_E_VERIFY) {
			rc = amtprov_error_set(err, e2.code, e2.where, "%s", e2.msg);
			goto out;
		}
		set_outcome(res, AMTPROV_CA_REJECTED,
			    "%s: certificate does not match the request key", CE_NAME);
		goto out;
	}
	if ((rc = ce_cert_der(leaf, &res->cert_der, &res->cert_len, err)) != AMTPROV_OK)
		goto out;
	res->chain_pem = chain;
	chain = NULL;
	set_outcome(res, AMTPROV_CA_ISSUED, "issued by the SCEP CA");
	goto out;
nomem:
	rc = amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
out:
	ERR_clear_error();
	BIO_free(plain);
	PKCS7_free(env);
	PKCS7_free(deg);
	sk_X509_pop_free(all, X509_free);
	X509_free(leaf);
	free(chain);
	(void)ce;
	return rc;
}

/*
 * Verifies and interprets a CertRep. The signer must be one of GetCACert's certificates
 * (PKCS7_NOINTERN: a certificate the message carries itself proves nothing) and the answer
 * must echo our transactionID and senderNonce, so a replayed answer is not taken.
 */
static int handle_reply(struct ca_external *ce, struct scep_ca *ca, struct scep_tx *tx,
			const struct ce_http_resp *r, struct amtprov_ca_result *res,
			struct amtprov_error *err)
{
	const unsigned char *p = r->body;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)r->len);
	BIO *content = BIO_new(BIO_s_mem()), *detached = NULL;
	STACK_OF(PKCS7_SIGNER_INFO) *sis;
	PKCS7_SIGNER_INFO *si;
	const ASN1_STRING *status, *rnonce, *tid;
	char why[160];
	int rc = AMTPROV_OK;

	if (!p7 || !content || !PKCS7_type_is_signed(p7)) {
		pu_drain_ossl(why, sizeof(why));
		set_outcome(res, AMTPROV_CA_UNREACHABLE,
			    "SCEP answer is not a signed PKCS#7 CertRep (%s)", why);
		goto out;
	}
	/* FAILURE and PENDING carry no content: verify over an empty one. */
	if (PKCS7_get_detached(p7))
		detached = BIO_new_mem_buf("", 0);
	if (PKCS7_verify(p7, ca->certs, NULL, detached, content,
			 PKCS7_NOVERIFY | PKCS7_NOINTERN | PKCS7_BINARY) != 1) {
		pu_drain_ossl(why, sizeof(why));
		set_outcome(res, AMTPROV_CA_UNREACHABLE,
			    "SCEP CertRep signature does not verify with the CA's certificate (%s)",
			    why);
		goto out;
	}
	sis = PKCS7_get_signer_info(p7);
	si = sis ? sk_PKCS7_SIGNER_INFO_value(sis, 0) : NULL;
	status = si ? get_attr(si, OID_PKI_STATUS) : NULL;
	rnonce = si ? get_attr(si, OID_RECIPIENT_NONCE) : NULL;
	tid = si ? get_attr(si, OID_TRANSACTION_ID) : NULL;
	if (!si || !str_is(get_attr(si, OID_MESSAGE_TYPE), MSG_CERTREP) || !status ||
	    !str_is(tid, tx->tid)) {
		set_outcome(res, AMTPROV_CA_UNREACHABLE,
			    "SCEP answer is not a CertRep for transaction %.16s...", tx->tid);
		goto out;
	}
	if (!rnonce || ASN1_STRING_length(rnonce) != NONCE_LEN ||
	    memcmp(ASN1_STRING_get0_data(rnonce), tx->nonce, NONCE_LEN) != 0) {
		set_outcome(res, AMTPROV_CA_UNREACHABLE,
			    "SCEP CertRep recipientNonce does not match our senderNonce "
			    "(stale or replayed answer)");
		goto out;
	}
	if (str_is(status, "0")) {
		rc = take_certs(ce, ca, tx, content, res, err);
	} else if (str_is(status, "2")) {
		set_outcome(res, AMTPROV_CA_REJECTED, "SCEP CA refused the request: failInfo %s",
			    fail_info_text(get_attr(si, OID_FAIL_INFO)));
	} else if (str_is(status, "3")) {
		res->outcome = ce->cfg.poll_interval > 0 ? AMTPROV_CA_WAIT_WITH_DELAY
							 : AMTPROV_CA_WAIT;
		res->delay_seconds = (uint32_t)ce->cfg.poll_interval;
		snprintf(res->cookie, sizeof(res->cookie), "%s", tx->tid);
		snprintf(res->message, sizeof(res->message),
			 "SCEP CA has the request pending (manual approval)");
	} else {
		set_outcome(res, AMTPROV_CA_UNREACHABLE, "SCEP CertRep has an unknown pkiStatus");
	}
out:
	ERR_clear_error();
	PKCS7_free(p7);
	BIO_free(content);
	BIO_free(detached);
	return rc;
}

/* ---- operations ---- */

/* Runs one exchange for @p tx: PKCSReq (poll = 0) or CertPoll (poll = 1). */
static int exchange(struct ca_external *ce, struct scep_tx *tx, int poll,
		    struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct scep_ca ca;
	struct ce_http_resp r = {0};
	uint8_t *content = NULL, *msg = NULL;
	size_t content_len = 0, msg_len = 0;
	int rc = AMTPROV_OK;

	if (discover(ce, &ca, res, err, &rc) < 0)
		return rc;
	if (!poll) {
		unsigned char *tmp = NULL;
		int n = i2d_X509_REQ(tx->csr, &tmp);

		if (n > 0 && (content = malloc((size_t)n)))
			memcpy(content, tmp, (size_t)n);
		content_len = n > 0 ? (size_t)n : 0;
		OPENSSL_free(tmp);
	} else {
		/* IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name } (RFC 8894 3.3.3) */
		unsigned char *a = NULL, *b = NULL;
		int la = i2d_X509_NAME(X509_get_subject_name(ca.issuer), &a);
		int lb = i2d_X509_NAME(X509_REQ_get_subject_name(tx->csr), &b);
		size_t body = la > 0 && lb > 0 ? (size_t)la + (size_t)lb : 0, h = 0;
		uint8_t hdr[6];

		hdr[h++] = 0x30;
		if (body < 0x80) {
			hdr[h++] = (uint8_t)body;
		} else if (body < 0x100) {
			hdr[h++] = 0x81;
			hdr[h++] = (uint8_t)body;
		} else {
			hdr[h++] = 0x82;
			hdr[h++] = (uint8_t)(body >> 8);
			hdr[h++] = (uint8_t)body;
		}
		if (body && body < 0x10000 && (content = malloc(h + body))) {
			memcpy(content, hdr, h);
			memcpy(content + h, a, (size_t)la);
			memcpy(content + h + la, b, (size_t)lb);
			content_len = h + body;
		}
		OPENSSL_free(a);
		OPENSSL_free(b);
	}
	if (!content) {
		rc = ce_crypto_error(err, "encoding the SCEP request content");
		goto out;
	}
	if ((rc = build_message(&ca, tx, poll ? MSG_CERTPOLL : MSG_PKCSREQ, content, content_len,
				&msg, &msg_len, err)) != AMTPROV_OK)
		goto out;
	rc = send_message(ce, &ca, msg, msg_len, &r, res, err);
	if (rc == AMTPROV_E_UNREACHABLE || rc == AMTPROV_E_DENIED) {
		rc = AMTPROV_OK; /* the outcome is the answer */
		goto out;
	}
	if (rc == AMTPROV_OK)
		rc = handle_reply(ce, &ca, tx, &r, res, err);
out:
	ce_http_resp_free(&r);
	free(content);
	free(msg);
	scep_ca_free(&ca);
	return rc;
}

int ce_scep_csr_attributes(struct ca_external *ce, struct amtprov_secret **attrs,
			   struct amtprov_error *err)
{
	const struct amtprov_host *h = ce->host;
	struct amtprov_secret *pw = NULL, *out = NULL;
	X509_ATTRIBUTE *a = NULL;
	unsigned char *p;
	int rc, n;

	*attrs = NULL;
	if (!ce->cfg.challenge || !*ce->cfg.challenge)
		return AMTPROV_OK; /* a server without a challenge wants nothing in the request */
	rc = h->secret_get(h, ce->cfg.challenge, &pw, err);
	if (rc != AMTPROV_OK)
		return rc;
	/* The same encoding amtprov-request uses (DirectoryString, RFC 2985). */
	a = X509_ATTRIBUTE_create_by_NID(NULL, NID_pkcs9_challengePassword, MBSTRING_UTF8,
					 (const unsigned char *)pw->data, (int)pw->len);
	h->secret_free(h, pw);
	n = a ? i2d_X509_ATTRIBUTE(a, NULL) : -1;
	if (n > 0 && (out = h->secret_new(h, (size_t)n)) != NULL) {
		p = (unsigned char *)out->data;
		n = i2d_X509_ATTRIBUTE(a, &p);
	}
	X509_ATTRIBUTE_free(a);
	if (n <= 0 || !out) {
		h->secret_free(h, out);
		return ce_crypto_error(err, "encoding the challengePassword attribute");
	}
	out->len = (size_t)n;
	*attrs = out;
	return AMTPROV_OK;
}

int ce_scep_submit(struct ca_external *ce, const struct amtprov_ca_request *req,
		   struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct scep_tx tx = {0};
	struct amtprov_error perr;
	char *challenge = NULL;
	int rc, had_challenge;

	amtprov_error_clear(&perr);
	if (!(tx.csr = ce_csr_parse(req->csr_der, req->csr_len, &perr))) {
		set_outcome(res, AMTPROV_CA_REJECTED, "%s: %.200s", CE_NAME, perr.msg);
		return AMTPROV_OK;
	}
	challenge = ce_csr_challenge(tx.csr);
	had_challenge = challenge != NULL;
	if (!challenge && ce->cfg.challenge && *ce->cfg.challenge) {
		/* The server wants a challenge (we were given one) but this request has none,
		 * and adding it means re-signing with a key that lives in AMT. Sending it
		 * anyway would only earn a badRequest without saying why. */
		set_outcome(res, AMTPROV_CA_REJECTED,
			    "%s: the request has no challengePassword attribute; SCEP carries the "
			    "challenge inside the signed request, so it must be built with it",
			    CE_NAME);
		X509_REQ_free(tx.csr);
		return AMTPROV_OK;
	}
	if (challenge) {
		OPENSSL_cleanse(challenge, strlen(challenge));
		free(challenge);
	}
	if ((rc = make_tid(tx.csr, tx.tid, err)) != AMTPROV_OK ||
	    (rc = make_signer(ce, &tx, err)) != AMTPROV_OK)
		goto out;
	snprintf(res->request_id, sizeof(res->request_id), "%.63s", tx.tid);
	if ((rc = exchange(ce, &tx, 0, res, err)) != AMTPROV_OK)
		goto out;
	if (res->outcome == AMTPROV_CA_WAIT || res->outcome == AMTPROV_CA_WAIT_WITH_DELAY)
		rc = save_pending(ce, &tx, err);
	/* SCEP has no text field: micromdm/scep and NDES both answer a wrong challenge with a
	 * bare badRequest (the words "invalid challenge" stay in the server's log). */
	if (res->outcome == AMTPROV_CA_REJECTED && strstr(res->message, "badRequest") &&
	    had_challenge) {
		size_t n = strlen(res->message);

		snprintf(res->message + n, sizeof(res->message) - n,
			 "; the request carried a challenge password: check it is current");
	}
	ce->host->log(ce->host, res->outcome == AMTPROV_CA_ISSUED ? AMTPROV_LOG_INFO
								 : AMTPROV_LOG_WARNING,
		      "SCEP request for '%s' (transaction %.16s...): %s: %s",
		      req->subject_fqdn ? req->subject_fqdn : "", tx.tid,
		      amtprov_ca_outcome_name(res->outcome), res->message);
out:
	scep_tx_free(&tx);
	return rc;
}

static int tid_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n != 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int ce_scep_poll(struct ca_external *ce, const struct amtprov_ca_request *req,
		 const char *cookie, struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct scep_tx tx = {0};
	struct amtprov_error lerr;
	int rc;

	(void)req;
	if (!tid_ok(cookie)) {
		set_outcome(res, AMTPROV_CA_REJECTED, "%s: '%.70s' is not a SCEP transaction",
			    CE_NAME, cookie ? cookie : "");
		return AMTPROV_OK;
	}
	snprintf(res->request_id, sizeof(res->request_id), "%.63s", cookie);
	amtprov_error_clear(&lerr);
	rc = load_pending(ce, cookie, &tx, &lerr);
	if (rc == AMTPROV_E_NOT_FOUND) {
		/* Without the transient key the CA's answer cannot be decrypted: only a new
		 * request helps. */
		set_outcome(res, AMTPROV_CA_REJECTED,
			    "%s: no pending SCEP transaction %.16s... in the state directory",
			    CE_NAME, cookie);
		return AMTPROV_OK;
	}
	if (rc != AMTPROV_OK) {
		scep_tx_free(&tx);
		return amtprov_error_set(err, rc, lerr.where, "%s", lerr.msg);
	}
	rc = exchange(ce, &tx, 1, res, err);
	if (rc == AMTPROV_OK && (res->outcome == AMTPROV_CA_ISSUED ||
				 res->outcome == AMTPROV_CA_REJECTED))
		drop_pending(ce, tx.tid);
	if (rc == AMTPROV_OK && (res->outcome == AMTPROV_CA_WAIT ||
				 res->outcome == AMTPROV_CA_WAIT_WITH_DELAY))
		snprintf(res->cookie, sizeof(res->cookie), "%s", tx.tid);
	ce->host->log(ce->host, AMTPROV_LOG_INFO, "SCEP poll of transaction %.16s...: %s: %s",
		      cookie, amtprov_ca_outcome_name(res->outcome), res->message);
	scep_tx_free(&tx);
	return rc;
}

int ce_scep_roots(struct ca_external *ce, char **pem, struct amtprov_error *err)
{
	struct amtprov_ca_result res;
	struct scep_ca ca;
	char *out = NULL;
	int rc = AMTPROV_OK;

	memset(&res, 0, sizeof(res));
	if (discover(ce, &ca, &res, err, &rc) < 0)
		return rc != AMTPROV_OK ? rc
					: amtprov_error_set(err, AMTPROV_E_UNREACHABLE, CE_NAME,
							    "%s", res.message);
	for (int i = 0; i < sk_X509_num(ca.certs); i++)
		if (ce_pem_append(&out, sk_X509_value(ca.certs, i)) < 0) {
			free(out);
			scep_ca_free(&ca);
			return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
		}
	scep_ca_free(&ca);
	*pem = out;
	return AMTPROV_OK;
}
