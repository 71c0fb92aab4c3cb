/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca.c - the CA: key material on disk (key 0600), issuance, CRL and CMC responses.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "der.h"

static void ossl_err(char *err, size_t errsz, const char *what)
{
	unsigned long e = ERR_peek_last_error();

	snprintf(err, errsz, "%s: %s", what, e ? ERR_reason_error_string(e) : "failed");
	ERR_clear_error();
}

static int write_key(const char *path, EVP_PKEY *k)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	int ok;

	if (!f) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int write_cert(const char *path, X509 *c)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = PEM_write_X509(f, c);
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

static void add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v, issuer, c, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v, nid, value);
	if (e) {
		X509_add_ext(c, e, -1);
		X509_EXTENSION_free(e);
	}
}

static int random_serial(X509 *c, char *out, size_t outsz)
{
	/* AD CS serials: long random values; 16 random bytes with a clear top bit. */
	unsigned char b[16];
	BIGNUM *bn;
	char *hex;
	size_t i;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x10);
	bn = BN_bin2bn(b, sizeof(b), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c))) {
		BN_free(bn);
		return -1;
	}
	hex = BN_bn2hex(bn);
	BN_free(bn);
	if (!hex)
		return -1;
	for (i = 0; hex[i]; i++)
		hex[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] + 32 : hex[i]);
	if (out)
		snprintf(out, outsz, "%s", hex);
	OPENSSL_free(hex);
	return 0;
}

static const EVP_MD *md_by_name(const char *name)
{
	const EVP_MD *md = name && name[0] ? EVP_get_digestbyname(name) : NULL;

	return md ? md : EVP_sha256();
}

int ca_open(struct ca *ca, const char *dir, const char *name, const char *hash, char *err,
	    size_t errsz)
{
	char kp[1024], cp[1024];
	FILE *f;
	X509_NAME *n;

	memset(ca, 0, sizeof(*ca));
	snprintf(ca->hash, sizeof(ca->hash), "%s", hash);
	snprintf(kp, sizeof(kp), "%s/ca.key", dir);
	snprintf(cp, sizeof(cp), "%s/ca.pem", dir);
	if ((f = fopen(cp, "r"))) {
		ca->cert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
		if ((f = fopen(kp, "r"))) {
			ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
			fclose(f);
		}
		if (!ca->cert || !ca->key || X509_check_private_key(ca->cert, ca->key) != 1) {
			snprintf(err, errsz, "%s / %s: unreadable or not a pair", cp, kp);
			ca_close(ca);
			return -1;
		}
		return 0;
	}
	ca->key = EVP_RSA_gen(2048);
	ca->cert = X509_new();
	if (!ca->key || !ca->cert || random_serial(ca->cert, NULL, 0))
		goto fail;
	X509_set_version(ca->cert, 2);
	n = X509_get_subject_name(ca->cert);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1, 0);
	X509_set_issuer_name(ca->cert, n);
	X509_gmtime_adj(X509_getm_notBefore(ca->cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(ca->cert), 10L * 365 * 86400);
	X509_set_pubkey(ca->cert, ca->key);
	add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE");
	add_ext(ca->cert, ca->cert, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
	add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash");
	if (!X509_sign(ca->cert, ca->key, md_by_name(hash)))
		goto fail;
	if (write_key(kp, ca->key) || write_cert(cp, ca->cert)) {
		snprintf(err, errsz, "cannot write %s / %s", kp, cp);
		ca_close(ca);
		return -1;
	}
	return 0;
fail:
	ossl_err(err, errsz, "CA key and certificate");
	ca_close(ca);
	return -1;
}

void ca_close(struct ca *ca)
{
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	ca->key = NULL;
	ca->cert = NULL;
}

int ca_make_tls(struct ca *ca, const char *dir, const char *host, const char *ip, char *err,
		size_t errsz)
{
	char kp[1024], cp[1024], san[600];
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509 *c = X509_new();
	int rc = -1;

	snprintf(kp, sizeof(kp), "%s/tls.key", dir);
	snprintf(cp, sizeof(cp), "%s/tls.pem", dir);
	if (!k || !c || random_serial(c, NULL, 0))
		goto out;
	X509_set_version(c, 2);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_UTF8,
				   (const unsigned char *)host, -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(ca->cert));
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 365L * 86400);
	X509_set_pubkey(c, k);
	snprintf(san, sizeof(san), "DNS:%s%s%s", host, ip ? ",IP:" : "", ip ? ip : "");
	add_ext(c, ca->cert, NID_subject_alt_name, san);
	add_ext(c, ca->cert, NID_ext_key_usage, "serverAuth");
	add_ext(c, ca->cert, NID_authority_key_identifier, "keyid");
	if (!X509_sign(c, ca->key, md_by_name(ca->hash)))
		goto out;
	if (write_key(kp, k) || write_cert(cp, c)) {
		snprintf(err, errsz, "cannot write %s / %s", kp, cp);
		goto done;
	}
	rc = 0;
	goto done;
out:
	ossl_err(err, errsz, "TLS certificate");
done:
	EVP_PKEY_free(k);
	X509_free(c);
	return rc;
}

static int add_der_ext(X509 *c, const char *oid, int critical, const struct der_buf *v)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e = NULL;
	int ok = 0;

	if (o && os && !v->oom && ASN1_OCTET_STRING_set(os, v->p, (int)v->len))
		e = X509_EXTENSION_create_by_OBJ(NULL, o, critical, os);
	if (e)
		ok = X509_add_ext(c, e, -1);
	X509_EXTENSION_free(e);
	ASN1_OBJECT_free(o);
	ASN1_OCTET_STRING_free(os);
	return ok ? 0 : -1;
}

size_t ca_template_exts(const struct seed_template *t, struct tmpl_ext out[CA_MAX_TMPL_EXT])
{
	struct der_buf inner = { 0 }, one = { 0 };
	unsigned char ku[2];
	size_t i, n = 0;

	memset(out, 0, CA_MAX_TMPL_EXT * sizeof(*out));
	/* keyUsage: BIT STRING, one byte, unused trailing zero bits counted. */
	ku[1] = (unsigned char)t->key_usage;
	ku[0] = 0;
	while (ku[0] < 7 && ku[1] && !(ku[1] & (1u << ku[0])))
		ku[0]++;
	out[n].oid = "2.5.29.15";
	out[n].critical = t->ku_critical;
	der_put(&out[n++].v, 0x03, ku, ku[1] ? 2 : 1);
	if (t->n_eku) {
		for (i = 0; i < t->n_eku; i++)
			der_oid(&inner, t->eku[i]);
		out[n].oid = "2.5.29.37";
		der_wrap(&out[n++].v, 0x30, &inner);
		der_free(&inner);
	}
	if (t->schema == 1) {
		/* v1: certificate template name, BMPString [MS-WCCE 2.2.2.7.7.1]. */
		out[n].oid = "1.3.6.1.4.1.311.20.2";
		der_bmp(&out[n++].v, t->name);
		return n;
	}
	/* v2+: template information SEQ{oid, major, minor} and application policies. */
	der_oid(&inner, t->oid);
	der_int(&inner, (long)t->major);
	der_int(&inner, (long)t->minor);
	out[n].oid = "1.3.6.1.4.1.311.21.7";
	der_wrap(&out[n++].v, 0x30, &inner);
	der_free(&inner);
	if (t->n_eku) {
		for (i = 0; i < t->n_eku; i++) {
			der_oid(&one, t->eku[i]);
			der_wrap(&inner, 0x30, &one);
			der_free(&one);
		}
		out[n].oid = "1.3.6.1.4.1.311.21.10";
		der_wrap(&out[n++].v, 0x30, &inner);
		der_free(&inner);
	}
	return n;
}

void ca_template_exts_free(struct tmpl_ext *e, size_t n)
{
	while (n > 0)
		der_free(&e[--n].v);
}

/* The extensions an enterprise CA adds from the template [MS-WCCE 3.2.2.6.2.1.4.5]. */
static int template_exts(X509 *c, const struct seed_template *t)
{
	struct tmpl_ext e[CA_MAX_TMPL_EXT];
	size_t n = ca_template_exts(t, e), i;
	int rc = 0;

	for (i = 0; i < n; i++)
		rc |= add_der_ext(c, e[i].oid, e[i].critical, &e[i].v);
	ca_template_exts_free(e, n);
	return rc ? -1 : 0;
}

static void copy_csr_ext(X509 *c, STACK_OF(X509_EXTENSION) *exts, int nid)
{
	int i = X509v3_get_ext_by_NID(exts, nid, -1);

	if (i >= 0)
		X509_add_ext(c, X509v3_get_ext(exts, i), -1);
}

X509 *ca_issue(struct ca *ca, X509_REQ *req, const X509_NAME *subject,
	       const struct seed_template *t, int copy_san, const char *san_dns,
	       char *serial_out, size_t serial_sz, char *err, size_t errsz)
{
	X509 *c = X509_new();
	EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	char cdp[600], san[300];

	if (!c || !pub || random_serial(c, serial_out, serial_sz))
		goto fail;
	X509_set_version(c, 2);
	X509_set_subject_name(c, subject);
	X509_set_issuer_name(c, X509_get_subject_name(ca->cert));
	X509_gmtime_adj(X509_getm_notBefore(c), -600);
	X509_gmtime_adj(X509_getm_notAfter(c), t ? (long)t->validity_s : 365L * 86400);
	X509_set_pubkey(c, pub);
	if (copy_san) {
		copy_csr_ext(c, exts, NID_subject_alt_name);
	} else if (san_dns && san_dns[0]) {
		snprintf(san, sizeof(san), "DNS:%s", san_dns);
		add_ext(c, ca->cert, NID_subject_alt_name, san);
	}
	if (t) {
		if (template_exts(c, t))
			goto fail;
	} else {
		/* Stand-alone CA: the request's own key usage and EKU. */
		copy_csr_ext(c, exts, NID_key_usage);
		copy_csr_ext(c, exts, NID_ext_key_usage);
	}
	add_ext(c, ca->cert, NID_subject_key_identifier, "hash");
	add_ext(c, ca->cert, NID_authority_key_identifier, "keyid");
	if (ca->crl_url[0]) {
		snprintf(cdp, sizeof(cdp), "URI:%s", ca->crl_url);
		add_ext(c, ca->cert, NID_crl_distribution_points, cdp);
	}
	/* A version 3 template names its own hash algorithm. */
	if (!X509_sign(c, ca->key, md_by_name(t && t->hash[0] ? t->hash : ca->hash)))
		goto fail;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return c;
fail:
	ossl_err(err, errsz, "issuing");
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_free(c);
	return NULL;
}

struct crl_ctx {
	X509_CRL *crl;
	int bad;
};

static int add_revoked(void *ctx, const struct db_req *r)
{
	struct crl_ctx *cc = ctx;
	X509_REVOKED *rv = X509_REVOKED_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)r->revoked_at);
	ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();

	if (!rv || !when || !reason || !BN_hex2bn(&bn, r->serial) ||
	    !(serial = BN_to_ASN1_INTEGER(bn, NULL)) || !X509_REVOKED_set_serialNumber(rv, serial) ||
	    !X509_REVOKED_set_revocationDate(rv, when)) {
		cc->bad = 1;
		X509_REVOKED_free(rv);
	} else {
		if (r->revoked_reason != 0) {
			ASN1_ENUMERATED_set(reason, r->revoked_reason);
			X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, reason, 0, 0);
		}
		X509_CRL_add0_revoked(cc->crl, rv);
	}
	BN_free(bn);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(when);
	ASN1_ENUMERATED_free(reason);
	return 0;
}

int ca_crl(struct ca *ca, struct db *d, unsigned char **der, size_t *len)
{
	struct crl_ctx cc = { X509_CRL_new(), 0 };
	ASN1_TIME *t1 = ASN1_TIME_set(NULL, time(NULL) - 60);
	ASN1_TIME *t2 = ASN1_TIME_set(NULL, time(NULL) + 86400);
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	X509V3_CTX v;
	X509_EXTENSION *aki;
	unsigned char *out = NULL;
	int n, rc = -1;

	if (!cc.crl || !t1 || !t2 || !num)
		goto out;
	X509_CRL_set_version(cc.crl, 1);
	X509_CRL_set_issuer_name(cc.crl, X509_get_subject_name(ca->cert));
	X509_CRL_set1_lastUpdate(cc.crl, t1);
	X509_CRL_set1_nextUpdate(cc.crl, t2);
	if (db_each(d, REQ_REVOKED, add_revoked, &cc) || cc.bad)
		goto out;
	X509_CRL_sort(cc.crl);
	/* The CRL number grows with time: every fetch builds a fresh CRL. */
	ASN1_INTEGER_set_int64(num, (int64_t)time(NULL));
	X509_CRL_add1_ext_i2d(cc.crl, NID_crl_number, num, 0, 0);
	X509V3_set_ctx(&v, ca->cert, NULL, NULL, cc.crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &v, NID_authority_key_identifier, "keyid");
	if (aki) {
		X509_CRL_add_ext(cc.crl, aki, -1);
		X509_EXTENSION_free(aki);
	}
	if (!X509_CRL_sign(cc.crl, ca->key, md_by_name(ca->hash)))
		goto out;
	n = i2d_X509_CRL(cc.crl, &out);
	if (n <= 0)
		goto out;
	*der = out;
	*len = (size_t)n;
	rc = 0;
out:
	ERR_clear_error();
	X509_CRL_free(cc.crl);
	ASN1_TIME_free(t1);
	ASN1_TIME_free(t2);
	ASN1_INTEGER_free(num);
	return rc;
}

static void cmc_status(struct der_buf *out, int status, const char *text, long request_id)
{
	struct der_buf si = { 0 }, body = { 0 }, pend = { 0 }, tmp = { 0 }, attr = { 0 };
	char id[32], gt[20];
	time_t now = time(NULL);
	struct tm tm;

	/* CMCStatusInfo { cMCStatus, bodyList {1}, statusString, otherInfo } */
	der_put(&si, 0x02, (unsigned char[]){ (unsigned char)status }, 1);
	der_int(&tmp, 1);
	der_wrap(&si, 0x30, &tmp);
	der_free(&tmp);
	der_utf8(&si, text);
	if (status == CMC_PENDING) {
		/* pendInfo { pendToken = request id, pendTime } */
		snprintf(id, sizeof(id), "%ld", request_id);
		der_put(&pend, 0x04, id, strlen(id));
		gmtime_r(&now, &tm);
		strftime(gt, sizeof(gt), "%Y%m%d%H%M%SZ", &tm);
		der_put(&pend, 0x18, gt, strlen(gt));
		der_wrap(&si, 0x30, &pend);
	} else if (status == CMC_FAILED) {
		der_int(&si, 2); /* failInfo badRequest */
	}
	/* TaggedAttribute { bodyPartID 1, id-cmc-statusInfo, SET { CMCStatusInfo } } */
	der_int(&attr, 1);
	der_oid(&attr, "1.3.6.1.5.5.7.7.1");
	der_wrap(&body, 0x30, &si);
	der_wrap(&attr, 0x31, &body);
	der_wrap(out, 0x30, &attr);
	der_free(&si);
	der_free(&pend);
	der_free(&body);
	der_free(&attr);
}

static void cmc_cert_hash(struct der_buf *out, X509 *issued)
{
	struct der_buf a = { 0 }, refs = { 0 }, attrs = { 0 }, one = { 0 }, set = { 0 }, v = { 0 };
	unsigned char md[20];
	unsigned int mdlen = 0;

	/* TaggedAttribute { 2, CMC-add-attributes { dataRef 0, certRefs {1},
	 *   attributes { { szOID_ISSUED_CERT_HASH, { OCTET STRING sha1 } } } } } */
	X509_digest(issued, EVP_sha1(), md, &mdlen);
	der_int(&v, 0);
	der_int(&refs, 1);
	der_wrap(&v, 0x30, &refs);
	der_oid(&one, "1.3.6.1.4.1.311.21.17");
	der_put(&set, 0x04, md, mdlen);
	der_wrap(&one, 0x31, &set);
	der_wrap(&attrs, 0x30, &one);
	der_wrap(&v, 0x31, &attrs);
	der_free(&set);
	der_wrap(&set, 0x30, &v);
	der_int(&a, 2);
	der_oid(&a, "1.3.6.1.4.1.311.10.10.1");
	der_wrap(&a, 0x31, &set);
	der_wrap(out, 0x30, &a);
	der_free(&a);
	der_free(&refs);
	der_free(&attrs);
	der_free(&one);
	der_free(&set);
	der_free(&v);
}

int ca_cmc_response(struct ca *ca, int status, const char *status_string, long request_id,
		    X509 *issued, unsigned char **der, size_t *len)
{
	struct der_buf ctrl = { 0 }, resp = { 0 }, pkir = { 0 }, empty = { 0 };
	STACK_OF(X509) *certs = sk_X509_new_null();
	ASN1_OBJECT *ctype = OBJ_txt2obj("1.3.6.1.5.5.7.12.3", 1);
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL;
	unsigned char *out = NULL;
	int n, rc = -1;

	cmc_status(&ctrl, status, status_string, request_id);
	if (issued)
		cmc_cert_hash(&ctrl, issued);
	/* PKIResponse { controlSequence, cmsSequence {}, otherMsgSequence {} } */
	der_wrap(&resp, 0x30, &ctrl);
	der_wrap(&resp, 0x30, &empty);
	der_wrap(&resp, 0x30, &empty);
	der_wrap(&pkir, 0x30, &resp);
	if (pkir.oom || !certs || !ctype)
		goto out;
	/* certificates: the issued one; the signer adds the CA's own. */
	if (issued)
		sk_X509_push(certs, issued);
	in = BIO_new_mem_buf(pkir.p, (int)pkir.len);
	cms = CMS_sign(NULL, NULL, certs, NULL, CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP);
	if (!in || !cms || !CMS_set1_eContentType(cms, ctype) ||
	    !CMS_add1_signer(cms, ca->cert, ca->key, md_by_name(ca->hash), CMS_BINARY) ||
	    !CMS_final(cms, in, NULL, CMS_BINARY))
		goto out;
	n = i2d_CMS_ContentInfo(cms, &out);
	if (n <= 0)
		goto out;
	*der = out;
	*len = (size_t)n;
	rc = 0;
out:
	if (rc && getenv("ADCSSIM_DEBUG"))
		ERR_print_errors_fp(stderr);
	ERR_clear_error();
	der_free(&ctrl);
	der_free(&resp);
	der_free(&pkir);
	sk_X509_free(certs);
	ASN1_OBJECT_free(ctype);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return rc;
}
