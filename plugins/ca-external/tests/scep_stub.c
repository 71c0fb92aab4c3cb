/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scep_stub.c - a tiny SCEP responder (RFC 8894) for the ca-external tests; see scep_stub.h.
 *
 * Deliberately small: one thread with a blocking accept loop (woken by a pipe to stop), one
 * connection at a time, "Connection: close" on every answer. The plugin opens a new
 * connection per exchange, so nothing more is needed. Everything the stub decides happens
 * under one lock, so the test thread can change the script between plugin calls.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "scep_stub.h"

/* SCEP attributes, id-VeriSign pki(1) attributes(9) n (RFC 8894 3.2.1). */
#define OID_MESSAGE_TYPE "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID "2.16.840.1.113733.1.9.7"

#define NONCE_LEN 16
#define HDR_MAX 16384
#define BODY_MAX (1u << 20)

#define CAPS "POSTPKIOperation\nAES\nSHA-256\nSCEPStandard\n"

/* One enrollment the stub remembers between PKCSReq and its CertPolls. */
struct stub_tx {
	char tid[80];
	X509_REQ *csr;
	X509 *signer; /* the transient certificate that signed the PKCSReq */
	int polls_left;
	struct stub_tx *next;
};

struct scep_stub {
	int lfd;
	int wake[2];
	int port;
	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	EVP_PKEY *ca_key;
	X509 *ca;
	EVP_PKEY *rogue_key; /* made on first use: RSA key generation is slow under ASan */
	X509 *rogue;
	long serial;
	char caps[256];
	int pending_polls;
	int fail_info;
	enum scep_stub_forge forge;
	struct stub_tx *txs;
	struct scep_stub_stats st;
};

/* ---- certificates ---- */

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = ext && X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/*
 * A self-signed CA certificate for @p key. It also receives the envelopes: a CA without an
 * RA decrypts the requests itself (RFC 8894 2.2), hence keyEncipherment.
 */
static X509 *make_ca(const X509_NAME *subj, EVP_PKEY *key, long serial)
{
	X509 *x = X509_new();
	int ok = x && X509_set_version(x, 2) &&
		 ASN1_INTEGER_set(X509_get_serialNumber(x), serial) &&
		 X509_set_subject_name(x, subj) && X509_set_issuer_name(x, subj) &&
		 X509_set_pubkey(x, key) && X509_gmtime_adj(X509_getm_notBefore(x), -300) &&
		 X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400) &&
		 add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") &&
		 add_ext(x, x, NID_key_usage,
			 "critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment") &&
		 add_ext(x, x, NID_subject_key_identifier, "hash");

	if (!ok || X509_sign(x, key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static X509_NAME *ca_name(void)
{
	X509_NAME *n = X509_NAME_new();

	if (n && X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
					    (const unsigned char *)"amtprov tests", -1, -1, 0) &&
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				       (const unsigned char *)"SCEP Stub CA", -1, -1, 0))
		return n;
	X509_NAME_free(n);
	return NULL;
}

/* The certificate the CA issues: the request's subject and key, and the extensions it asks
 * for (as a CA template that copies them would, R-CA-03). */
static X509 *issue(struct scep_stub *s, X509_REQ *csr)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
	X509 *x = X509_new();
	int ok = x && X509_set_version(x, 2) &&
		 ASN1_INTEGER_set(X509_get_serialNumber(x), ++s->serial) &&
		 X509_set_subject_name(x, X509_REQ_get_subject_name(csr)) &&
		 X509_set_issuer_name(x, X509_get_subject_name(s->ca)) &&
		 X509_set_pubkey(x, X509_REQ_get0_pubkey(csr)) &&
		 X509_gmtime_adj(X509_getm_notBefore(x), -300) &&
		 X509_gmtime_adj(X509_getm_notAfter(x), 20L * 86400);

	for (int i = 0; ok && i < sk_X509_EXTENSION_num(exts); i++)
		ok = X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (!ok || !add_ext(x, s->ca, NID_authority_key_identifier, "keyid") ||
	    X509_sign(x, s->ca_key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* ---- attributes ---- */

/* The value of signed attribute @p oid if it has ASN.1 type @p type (borrowed), or NULL. */
static const ASN1_STRING *attr(PKCS7_SIGNER_INFO *si, const char *oid, int type)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int i = obj ? X509at_get_attr_by_OBJ(si->auth_attr, obj, -1) : -1;
	X509_ATTRIBUTE *a = i >= 0 ? X509at_get_attr(si->auth_attr, i) : NULL;
	ASN1_TYPE *t = a ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;

	ASN1_OBJECT_free(obj);
	return t && t->type == type ? t->value.asn1_string : NULL;
}

static int put_attr(PKCS7_SIGNER_INFO *si, const char *oid, int type, const void *data,
		    size_t len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int ok = obj && X509at_add1_attr_by_OBJ(&si->auth_attr, obj, type, data, (int)len);

	ASN1_OBJECT_free(obj);
	return ok;
}

static int put_str(PKCS7_SIGNER_INFO *si, const char *oid, const char *s)
{
	return put_attr(si, oid, V_ASN1_PRINTABLESTRING, s, strlen(s));
}

/* ---- messages ---- */

static int der_of(PKCS7 *p7, uint8_t **out, size_t *len)
{
	unsigned char *tmp = NULL;
	int n = i2d_PKCS7(p7, &tmp);

	if (n <= 0 || !(*out = malloc((size_t)n))) {
		OPENSSL_free(tmp);
		return -1;
	}
	memcpy(*out, tmp, (size_t)n);
	OPENSSL_free(tmp);
	*len = (size_t)n;
	return 0;
}

/* SUCCESS content: the certificate in a degenerate SignedData (no signers), enveloped to
 * @p to with @p cipher (RFC 8894 3.3.2). */
static int success_content(X509 *cert, X509 *to, const EVP_CIPHER *cipher, uint8_t **out,
			   size_t *len)
{
	PKCS7 *deg = PKCS7_new(), *env = NULL;
	STACK_OF(X509) *recips = sk_X509_new_null();
	uint8_t *degder = NULL;
	size_t deglen = 0;
	BIO *in = NULL;
	int rc = -1;

	if (deg && recips && PKCS7_set_type(deg, NID_pkcs7_signed) &&
	    PKCS7_content_new(deg, NID_pkcs7_data) && PKCS7_add_certificate(deg, cert) &&
	    der_of(deg, &degder, &deglen) == 0 && sk_X509_push(recips, to) &&
	    (in = BIO_new_mem_buf(degder, (int)deglen)) &&
	    (env = PKCS7_encrypt(recips, in, cipher, PKCS7_BINARY)) &&
	    der_of(env, out, len) == 0)
		rc = 0;
	BIO_free(in);
	free(degder);
	sk_X509_free(recips);
	PKCS7_free(deg);
	PKCS7_free(env);
	return rc;
}

/*
 * CertRep: SignedData by the CA over @p content (none for PENDING and FAILURE, which then
 * verify over empty detached content), echoing transactionID and the client's senderNonce
 * as recipientNonce. A forgery configured by the test is applied here, once.
 */
static int cert_rep(struct scep_stub *s, const char *tid, const uint8_t rnonce[NONCE_LEN],
		    const char *status, int fail_info, const uint8_t *content, size_t clen,
		    uint8_t **out, size_t *out_len)
{
	int flags = PKCS7_PARTIAL | PKCS7_BINARY | (content ? 0 : PKCS7_DETACHED);
	X509 *cert = s->ca;
	EVP_PKEY *key = s->ca_key;
	uint8_t nonce[NONCE_LEN], echo[NONCE_LEN];
	char tidbuf[80], fi[4];
	PKCS7_SIGNER_INFO *si;
	PKCS7 *p7 = NULL;
	BIO *data = NULL;
	int rc = -1;

	memcpy(echo, rnonce, NONCE_LEN);
	snprintf(tidbuf, sizeof(tidbuf), "%s", tid);
	switch (s->forge) {
	case SCEP_FORGE_RECIPIENT_NONCE:
		echo[0] ^= 0x5a;
		break;
	case SCEP_FORGE_TRANSACTION_ID:
		tidbuf[0] = tidbuf[0] == '0' ? '1' : '0';
		break;
	case SCEP_FORGE_SIGNER:
		if (!s->rogue_key) {
			X509_NAME *n = ca_name();

			/* Same name and serial as the CA: only the signature can tell. */
			s->rogue_key = EVP_RSA_gen(2048);
			if (n && s->rogue_key)
				s->rogue = make_ca(n, s->rogue_key, 1);
			X509_NAME_free(n);
		}
		if (!s->rogue)
			return -1;
		cert = s->rogue;
		key = s->rogue_key;
		break;
	case SCEP_FORGE_NONE:
		break;
	}
	s->forge = SCEP_FORGE_NONE;
	snprintf(fi, sizeof(fi), "%d", fail_info);
	if (RAND_bytes(nonce, NONCE_LEN) != 1 ||
	    !(p7 = PKCS7_sign(NULL, NULL, NULL, NULL, flags)) ||
	    !(si = PKCS7_sign_add_signer(p7, cert, key, EVP_sha256(), PKCS7_NOSMIMECAP)) ||
	    !put_str(si, OID_MESSAGE_TYPE, "3") || !put_str(si, OID_PKI_STATUS, status) ||
	    !put_str(si, OID_TRANSACTION_ID, tidbuf) ||
	    !put_attr(si, OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce, NONCE_LEN) ||
	    !put_attr(si, OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, echo, NONCE_LEN) ||
	    (fail_info >= 0 && !put_str(si, OID_FAIL_INFO, fi)))
		goto out;
	if (!(data = content ? BIO_new_mem_buf(content, (int)clen) : BIO_new_mem_buf("", 0)) ||
	    !PKCS7_final(p7, data, PKCS7_BINARY) || der_of(p7, out, out_len) < 0)
		goto out;
	rc = 0;
out:
	BIO_free(data);
	PKCS7_free(p7);
	return rc;
}

static void tx_free(struct stub_tx *t)
{
	X509_REQ_free(t->csr);
	X509_free(t->signer);
	free(t);
}

static struct stub_tx *tx_find(struct scep_stub *s, const char *tid)
{
	for (struct stub_tx *t = s->txs; t; t = t->next)
		if (strcmp(t->tid, tid) == 0)
			return t;
	return NULL;
}

static int bad(struct scep_stub *s, const char *why)
{
	s->st.bad++;
	snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", why);
	return -1;
}

/* PKCSReq: remember the request and its signer; the answer is always PENDING. */
static int on_pkcsreq(struct scep_stub *s, const char *tid, X509 *signer, BIO *plain,
		      const uint8_t *nonce, uint8_t **out, size_t *out_len)
{
	X509_REQ *csr = d2i_X509_REQ_bio(plain, NULL);
	struct stub_tx *t;

	s->st.pkcsreq++;
	if (!csr || X509_REQ_verify(csr, X509_REQ_get0_pubkey(csr)) != 1) {
		X509_REQ_free(csr);
		bad(s, "PKCSReq content is not a self-signed PKCS#10 request");
		return cert_rep(s, tid, nonce, "2", 2, NULL, 0, out, out_len);
	}
	/* A repeated PKCSReq of the same transaction starts it again. */
	if (!(t = tx_find(s, tid))) {
		if (!(t = calloc(1, sizeof(*t)))) {
			X509_REQ_free(csr);
			return -1;
		}
		snprintf(t->tid, sizeof(t->tid), "%s", tid);
		t->next = s->txs;
		s->txs = t;
	}
	X509_REQ_free(t->csr);
	X509_free(t->signer);
	t->csr = csr;
	t->signer = signer;
	X509_up_ref(signer);
	t->polls_left = s->pending_polls;
	return cert_rep(s, tid, nonce, "3", -1, NULL, 0, out, out_len);
}

/* CertPoll: IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name } (RFC 8894 3.3.3). */
static int on_certpoll(struct scep_stub *s, const char *tid, X509 *signer, BIO *plain,
		       const EVP_CIPHER *cipher, const uint8_t *nonce, uint8_t **out,
		       size_t *out_len)
{
	struct stub_tx *t = tx_find(s, tid);
	BUF_MEM *bm = NULL;
	const unsigned char *p, *end;
	X509_NAME *iss = NULL, *sub = NULL;
	uint8_t *content = NULL;
	size_t clen = 0;
	X509 *cert;
	long len;
	int tag, cls, rc;

	s->st.certpoll++;
	BIO_get_mem_ptr(plain, &bm);
	p = (const unsigned char *)bm->data;
	end = p + bm->length;
	if (!(ASN1_get_object(&p, &len, &tag, &cls, (long)bm->length) & 0x80) &&
	    tag == V_ASN1_SEQUENCE && p + len == end) {
		iss = d2i_X509_NAME(NULL, &p, (long)(end - p));
		sub = iss ? d2i_X509_NAME(NULL, &p, (long)(end - p)) : NULL;
	}
	if (!t) {
		X509_NAME_free(iss);
		X509_NAME_free(sub);
		bad(s, "CertPoll for an unknown transaction");
		return cert_rep(s, tid, nonce, "2", 4, NULL, 0, out, out_len);
	}
	if (!iss || !sub || p != end || X509_NAME_cmp(iss, X509_get_subject_name(s->ca)) != 0 ||
	    X509_NAME_cmp(sub, X509_REQ_get_subject_name(t->csr)) != 0)
		s->st.names_wrong++;
	X509_NAME_free(iss);
	X509_NAME_free(sub);
	if (EVP_PKEY_eq(X509_get0_pubkey(signer), X509_get0_pubkey(t->signer)) != 1)
		s->st.signer_changed++;
	if (t->polls_left > 0) {
		t->polls_left--;
		return cert_rep(s, tid, nonce, "3", -1, NULL, 0, out, out_len);
	}
	if (s->fail_info >= 0)
		return cert_rep(s, tid, nonce, "2", s->fail_info, NULL, 0, out, out_len);
	/* Enveloped to the PKCSReq's signer, not this poll's: only a client that kept its
	 * transient key (across a restart too) can open it. */
	if (!(cert = issue(s, t->csr)))
		return -1;
	rc = success_content(cert, t->signer, cipher, &content, &clen);
	X509_free(cert);
	if (rc == 0)
		rc = cert_rep(s, tid, nonce, "0", -1, content, clen, out, out_len);
	if (rc == 0)
		s->st.issued++;
	free(content);
	return rc;
}

/*
 * A pkiMessage: SignedData by the client's transient certificate (carried in the message;
 * NOVERIFY because it is self-signed by design) around an EnvelopedData to the CA.
 * Returns 0 with a CertRep, or -1 (answered with HTTP 400).
 */
static int pki_operation(struct scep_stub *s, const uint8_t *msg, size_t len, uint8_t **out,
			 size_t *out_len)
{
	const unsigned char *p = msg;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len), *env = NULL;
	BIO *content = BIO_new(BIO_s_mem()), *plain = BIO_new(BIO_s_mem());
	STACK_OF(X509) *signers = NULL;
	PKCS7_SIGNER_INFO *si = NULL;
	const ASN1_STRING *type = NULL, *tid = NULL, *nonce = NULL;
	const EVP_CIPHER *cipher = NULL;
	char tidbuf[80] = "";
	int rc = -1;

	if (!p7 || !content || !plain || !PKCS7_type_is_signed(p7) ||
	    PKCS7_verify(p7, NULL, NULL, NULL, content, PKCS7_NOVERIFY | PKCS7_BINARY) != 1 ||
	    !(signers = PKCS7_get0_signers(p7, NULL, 0)) || sk_X509_num(signers) != 1 ||
	    !(si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0))) {
		bad(s, "pkiMessage is not SignedData with one verifying signer");
		goto out;
	}
	type = attr(si, OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING);
	tid = attr(si, OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING);
	nonce = attr(si, OID_SENDER_NONCE, V_ASN1_OCTET_STRING);
	if (!type || !tid || ASN1_STRING_length(tid) <= 0 ||
	    (size_t)ASN1_STRING_length(tid) >= sizeof(tidbuf) || !nonce ||
	    ASN1_STRING_length(nonce) != NONCE_LEN) {
		bad(s, "messageType, transactionID or a 16-byte senderNonce missing");
		goto out;
	}
	memcpy(tidbuf, ASN1_STRING_get0_data(tid), (size_t)ASN1_STRING_length(tid));
	snprintf(s->st.last_tid, sizeof(s->st.last_tid), "%s", tidbuf);
	{
		BUF_MEM *bm = NULL;
		const unsigned char *q;

		BIO_get_mem_ptr(content, &bm);
		q = (const unsigned char *)bm->data;
		env = d2i_PKCS7(NULL, &q, (long)bm->length);
	}
	if (!env || !PKCS7_type_is_enveloped(env) ||
	    PKCS7_decrypt(env, s->ca_key, s->ca, plain, 0) != 1 ||
	    !(cipher = EVP_get_cipherbyobj(env->d.enveloped->enc_data->algorithm->algorithm))) {
		bad(s, "pkiMessage content is not enveloped to the CA");
		goto out;
	}
	/* What the client chose from GetCACaps; the answer is enveloped the same way. */
	snprintf(s->st.cipher, sizeof(s->st.cipher), "%s", EVP_CIPHER_get0_name(cipher));
	snprintf(s->st.digest, sizeof(s->st.digest), "%s",
		 OBJ_nid2sn(OBJ_obj2nid(si->digest_alg->algorithm)));
	if (ASN1_STRING_length(type) == 2 && memcmp(ASN1_STRING_get0_data(type), "19", 2) == 0)
		rc = on_pkcsreq(s, tidbuf, sk_X509_value(signers, 0), plain,
				ASN1_STRING_get0_data(nonce), out, out_len);
	else if (ASN1_STRING_length(type) == 2 &&
		 memcmp(ASN1_STRING_get0_data(type), "20", 2) == 0)
		rc = on_certpoll(s, tidbuf, sk_X509_value(signers, 0), plain, cipher,
				 ASN1_STRING_get0_data(nonce), out, out_len);
	else
		bad(s, "messageType is neither PKCSReq nor CertPoll");
out:
	ERR_clear_error();
	sk_X509_free(signers);
	PKCS7_free(p7);
	PKCS7_free(env);
	BIO_free(content);
	BIO_free(plain);
	return rc;
}

/* ---- HTTP ---- */

static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void respond(int fd, int status, const char *ctype, const void *body, size_t len)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request",
			 ctype, len);

	if (send_all(fd, hdr, (size_t)n) == 0 && len)
		send_all(fd, body, len);
}

/* Case-insensitive header lookup in the NUL-terminated header block; the value, or NULL. */
static const char *header(const char *hdrs, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = strstr(hdrs, "\r\n"); l; l = strstr(l + 2, "\r\n"))
		if (strncasecmp(l + 2, name, n) == 0 && l[2 + n] == ':') {
			const char *v = l + 3 + n;

			while (*v == ' ' || *v == '\t')
				v++;
			return v;
		}
	return NULL;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* The query parameter @p key of @p target, URL-decoded, malloc'd; NULL if absent. */
static char *query_param(const char *target, const char *key)
{
	const char *q = strchr(target, '?');
	size_t kl = strlen(key);

	for (q = q ? q + 1 : NULL; q && *q; q = strchr(q, '&') ? strchr(q, '&') + 1 : NULL) {
		const char *end = strchr(q, '&');
		size_t l = end ? (size_t)(end - q) : strlen(q), o = 0;
		char *v;

		if (l <= kl || strncmp(q, key, kl) != 0 || q[kl] != '=')
			continue;
		if (!(v = malloc(l)))
			return NULL;
		for (size_t i = kl + 1; i < l; i++) {
			if (q[i] == '%' && i + 2 < l && hexval(q[i + 1]) >= 0 &&
			    hexval(q[i + 2]) >= 0) {
				v[o++] = (char)(hexval(q[i + 1]) * 16 + hexval(q[i + 2]));
				i += 2;
			} else {
				v[o++] = q[i] == '+' ? ' ' : q[i];
			}
		}
		v[o] = '\0';
		return v;
	}
	return NULL;
}

/* The request line and headers into @p hdrs, the body into *body; -1 on a broken request. */
static int read_request(int fd, char *hdrs, size_t size, uint8_t **body, size_t *body_len)
{
	size_t n = 0, want = 0, have;
	char *end = NULL;
	const char *cl, *expect;

	while (!end) {
		ssize_t r;

		if (n + 1 >= size)
			return -1;
		r = recv(fd, hdrs + n, size - 1 - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		n += (size_t)r;
		hdrs[n] = '\0';
		end = strstr(hdrs, "\r\n\r\n");
	}
	end[2] = '\0'; /* keep the last header's CRLF for header() */
	have = n - (size_t)(end + 4 - hdrs);
	if ((cl = header(hdrs, "Content-Length"))) {
		char *e;
		unsigned long v = strtoul(cl, &e, 10);

		if (e == cl || v > BODY_MAX)
			return -1;
		want = v;
	}
	if (have > want || !(*body = malloc(want + 1)))
		return -1;
	memcpy(*body, end + 4, have);
	/* libcurl asks before sending a body over 1 KiB and would otherwise wait a second. */
	expect = header(hdrs, "Expect");
	if (expect && strncasecmp(expect, "100-continue", 12) == 0 && have < want &&
	    send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
		return -1;
	while (have < want) {
		ssize_t r = recv(fd, *body + have, want - have, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	*body_len = want;
	return 0;
}

static void serve(struct scep_stub *s, int fd)
{
	char *hdrs = malloc(HDR_MAX), *op = NULL, *msg64 = NULL;
	uint8_t *body = NULL, *out = NULL, *der = NULL;
	size_t body_len = 0, out_len = 0;
	char err[160] = "bad request";

	if (!hdrs || read_request(fd, hdrs, HDR_MAX, &body, &body_len) < 0)
		goto out;
	{
		/* "METHOD TARGET HTTP/1.1" */
		char *sp = strchr(hdrs, ' '), *sp2 = sp ? strchr(sp + 1, ' ') : NULL;

		if (!sp2)
			goto bad_req;
		*sp2 = '\0';
		op = query_param(sp + 1, "operation");
		msg64 = query_param(sp + 1, "message");
	}
	if (!op)
		goto bad_req;
	pthread_mutex_lock(&s->lock);
	if (strcmp(op, "GetCACaps") == 0) {
		char caps[sizeof(s->caps)];

		s->st.caps++;
		snprintf(caps, sizeof(caps), "%s", s->caps);
		pthread_mutex_unlock(&s->lock);
		respond(fd, 200, "text/plain", caps, strlen(caps));
	} else if (strcmp(op, "GetCACert") == 0) {
		int n = i2d_X509(s->ca, &der);

		s->st.cacert++;
		pthread_mutex_unlock(&s->lock);
		if (n > 0)
			respond(fd, 200, "application/x-x509-ca-cert", der, (size_t)n);
		else
			respond(fd, 400, "text/plain", err, strlen(err));
	} else if (strcmp(op, "PKIOperation") == 0) {
		int rc;

		if (strncmp(hdrs, "GET ", 4) == 0 && msg64) {
			/* GET: the pkiMessage is base64 in the query (RFC 8894 4.1). */
			size_t l = strlen(msg64), pad = 0;
			int n;

			s->st.gets++;
			free(body);
			body = malloc(l / 4 * 3 + 3);
			n = body ? EVP_DecodeBlock(body, (unsigned char *)msg64, (int)l) : -1;
			while (pad < 2 && l > pad && msg64[l - 1 - pad] == '=')
				pad++;
			body_len = n >= (int)pad ? (size_t)n - pad : 0;
		}
		rc = body_len ? pki_operation(s, body, body_len, &out, &out_len) : -1;
		if (rc < 0)
			snprintf(err, sizeof(err), "%s",
				 s->st.last_error[0] ? s->st.last_error : "bad pkiMessage");
		pthread_mutex_unlock(&s->lock);
		if (rc == 0)
			respond(fd, 200, "application/x-pki-message", out, out_len);
		else
			respond(fd, 400, "text/plain", err, strlen(err));
	} else {
		pthread_mutex_unlock(&s->lock);
		respond(fd, 404, "text/plain", "unknown operation", 17);
	}
	goto out;
bad_req:
	respond(fd, 400, "text/plain", err, strlen(err));
out:
	OPENSSL_free(der);
	free(out);
	free(body);
	free(op);
	free(msg64);
	free(hdrs);
}

static void *accept_loop(void *arg)
{
	struct scep_stub *s = arg;

	for (;;) {
		struct pollfd pf[2] = {{.fd = s->lfd, .events = POLLIN},
				       {.fd = s->wake[0], .events = POLLIN}};
		struct timeval tv = {.tv_sec = 10};
		int c;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		c = accept(s->lfd, NULL, NULL);
		if (c < 0)
			continue;
		/* A client that stops talking must not wedge the test. */
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		serve(s, c);
		close(c);
	}
	return NULL;
}

/* ---- lifecycle ---- */

struct scep_stub *scep_stub_start(void)
{
	struct scep_stub *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	X509_NAME *name = ca_name();

	if (!s) {
		X509_NAME_free(name);
		return NULL;
	}
	s->lfd = s->wake[0] = s->wake[1] = -1;
	s->fail_info = -1;
	s->serial = 100;
	snprintf(s->caps, sizeof(s->caps), "%s", CAPS);
	pthread_mutex_init(&s->lock, NULL);
	if (!name || !(s->ca_key = EVP_RSA_gen(2048)) ||
	    !(s->ca = make_ca(name, s->ca_key, 1)))
		goto fail;
	X509_NAME_free(name);
	name = NULL;
	if (pipe(s->wake) < 0 || (s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->lfd, 8) < 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &al) < 0)
		goto fail;
	s->port = ntohs(a.sin_port);
	if (pthread_create(&s->thread, NULL, accept_loop, s) != 0)
		goto fail;
	s->running = 1;
	return s;
fail:
	X509_NAME_free(name);
	scep_stub_stop(s);
	return NULL;
}

void scep_stub_stop(struct scep_stub *s)
{
	if (!s)
		return;
	if (s->running) {
		if (write(s->wake[1], "x", 1) != 1)
			shutdown(s->lfd, SHUT_RDWR);
		pthread_join(s->thread, NULL);
	}
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	while (s->txs) {
		struct stub_tx *t = s->txs;

		s->txs = t->next;
		tx_free(t);
	}
	X509_free(s->ca);
	EVP_PKEY_free(s->ca_key);
	X509_free(s->rogue);
	EVP_PKEY_free(s->rogue_key);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int scep_stub_port(const struct scep_stub *s)
{
	return s->port;
}

X509 *scep_stub_ca(const struct scep_stub *s)
{
	return s->ca;
}

void scep_stub_set_caps(struct scep_stub *s, const char *caps)
{
	pthread_mutex_lock(&s->lock);
	snprintf(s->caps, sizeof(s->caps), "%s", caps);
	pthread_mutex_unlock(&s->lock);
}

void scep_stub_set_pending_polls(struct scep_stub *s, int n)
{
	pthread_mutex_lock(&s->lock);
	s->pending_polls = n;
	pthread_mutex_unlock(&s->lock);
}

void scep_stub_set_fail_info(struct scep_stub *s, int fail_info)
{
	pthread_mutex_lock(&s->lock);
	s->fail_info = fail_info;
	pthread_mutex_unlock(&s->lock);
}

void scep_stub_forge_next(struct scep_stub *s, enum scep_stub_forge forge)
{
	pthread_mutex_lock(&s->lock);
	s->forge = forge;
	pthread_mutex_unlock(&s->lock);
}

void scep_stub_stats(struct scep_stub *s, struct scep_stub_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	pthread_mutex_unlock(&s->lock);
}
