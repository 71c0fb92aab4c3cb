/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_issue.c - checks a PKCS#10 request and issues a certificate by profile.
 *
 * Profiles (by request purpose):
 *   web server (R-WS-01)     subject CN = device FQDN, EKU serverAuth only
 *   802.1X client (R-8021X-02) subject from the request (must name the device FQDN),
 *                            EKU clientAuth only
 *   provisioning (R-PC-01/02) subject CN = service point FQDN, EKU serverAuth + the AMT
 *                            OID and/or subject OU "Intel(R) Client Setup Certificate"
 * All: SAN dNSName = FQDN, basicConstraints CA:FALSE, keyUsage, SKI/AKI, CRL distribution
 * point, random 128-bit serial unique in the issuance database.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "ca_local.h"

#define CL_BACKDATE_SECONDS 300

const char *cl_template_of(uint32_t purpose)
{
	switch (purpose) {
	case AMTPROV_PURPOSE_WEB_SERVER: return CL_TMPL_WEB;
	case AMTPROV_PURPOSE_CLIENT_8021X: return CL_TMPL_CLIENT;
	case AMTPROV_PURPOSE_PROVISIONING: return CL_TMPL_PROV;
	default: return NULL;
	}
}

static int reject(struct amtprov_ca_result *res, const char *fmt, ...) AMTPROV_PRINTF(2, 3);

/* A refusal is an outcome, not an error (ca.h): the call succeeded, the CA said no. */
static int reject(struct amtprov_ca_result *res, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(res->message, sizeof(res->message), "%s: ", CL_NAME);

	res->outcome = AMTPROV_CA_REJECTED;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(res->message))
		vsnprintf(res->message + n, sizeof(res->message) - (size_t)n, fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return AMTPROV_OK;
}

/* Key policy: RSA >= 2048 bits, or ECDSA on P-256/P-384. NULL if acceptable, else why not. */
static const char *weak_key(EVP_PKEY *pub, char *why, size_t size)
{
	char group[64] = "";
	size_t glen = 0;
	int bits = EVP_PKEY_get_bits(pub);

	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA:
		if (bits < 2048) {
			snprintf(why, size, "RSA key of %d bits is too weak (at least 2048)", bits);
			return why;
		}
		if (bits > 16384) {
			snprintf(why, size, "RSA key of %d bits is too large", bits);
			return why;
		}
		return NULL;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(pub, group, sizeof(group), &glen) != 1)
			group[0] = '\0';
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0 ||
		    strcmp(group, "P-256") == 0 || strcmp(group, "P-384") == 0)
			return NULL;
		snprintf(why, size, "EC key on curve '%s' is refused (P-256 or P-384 only)",
			 group[0] ? group : "unknown");
		return why;
	default:
		snprintf(why, size, "key type '%s' is refused (RSA or ECDSA only)",
			 OBJ_nid2sn(EVP_PKEY_get_base_id(pub)));
		return why;
	}
}

/* Signature policy: SHA-256 or stronger; SHA-1 and MD5 requests are refused. */
static const char *weak_signature(X509_REQ *r, char *why, size_t size)
{
	int sig = X509_REQ_get_signature_nid(r), md = NID_undef, pk = NID_undef;

	if (!OBJ_find_sigid_algs(sig, &md, &pk)) {
		snprintf(why, size, "unknown signature algorithm '%s'", OBJ_nid2sn(sig));
		return why;
	}
	if (md == NID_sha256 || md == NID_sha384 || md == NID_sha512)
		return NULL;
	snprintf(why, size, "request signed with %s is refused (SHA-256 or stronger only)",
		 md == NID_undef ? OBJ_nid2sn(sig) : OBJ_nid2sn(md));
	return why;
}

/* The CN of @p name as UTF-8 (malloc'd), or NULL if it has none. */
static char *common_name(const X509_NAME *name)
{
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	char *copy;
	int n;

	if (i < 0)
		return NULL;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (n < 0)
		return NULL;
	copy = strndup((const char *)utf8, (size_t)n);
	OPENSSL_free(utf8);
	return copy;
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

/* The issued subject per profile; NULL with res REJECTED (or *oom) when impossible. */
static X509_NAME *profile_subject(struct ca_local *ca, const struct amtprov_ca_request *req,
				  X509_REQ *r, const char **san, struct amtprov_ca_result *res)
{
	const X509_NAME *asked = X509_REQ_get_subject_name(r);
	const char *fqdn = req->subject_fqdn;
	X509_NAME *n = NULL;
	char *cn;

	if (req->purpose == AMTPROV_PURPOSE_CLIENT_8021X && X509_NAME_entry_count(asked) > 0) {
		/* R-8021X-02: the subject is the one supplied in the request, and it must name
		 * the device. */
		cn = common_name(asked);
		if (!cn || !cl_valid_fqdn(cn)) {
			reject(res, "the request's subject has no DNS name as CN");
			free(cn);
			return NULL;
		}
		if (fqdn && *fqdn && strcasecmp(cn, fqdn) != 0) {
			reject(res, "the request's subject CN '%.64s' is not the device FQDN '%.64s'",
			       cn, fqdn);
			free(cn);
			return NULL;
		}
		free(cn);
		n = X509_NAME_dup(asked);
		*san = NULL; /* taken from the CN by the caller */
		return n;
	}
	if (!fqdn || !cl_valid_fqdn(fqdn)) {
		reject(res, "the request names no valid FQDN (subject_fqdn '%.80s')",
		       fqdn ? fqdn : "");
		return NULL;
	}
	n = X509_NAME_new();
	if (!n)
		return NULL;
	/* R-PC-01: the OU marker, exactly as AMT compares it. It precedes the CN in DER
	 * order, so the CN stays the most specific RDN (RFC 4514: "CN=...,OU=..."). */
	if (req->purpose == AMTPROV_PURPOSE_PROVISIONING && (ca->marker & CL_MARK_OU) &&
	    X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC,
				       (const unsigned char *)CL_OU_AMT_PROV, -1, -1, 0) != 1) {
		X509_NAME_free(n);
		return NULL;
	}
	if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)fqdn, -1, -1,
				       0) != 1) {
		X509_NAME_free(n);
		return NULL;
	}
	*san = fqdn;
	return n;
}

static long long validity_days(struct ca_local *ca, uint32_t purpose)
{
	switch (purpose) {
	case AMTPROV_PURPOSE_CLIENT_8021X: return ca->cfg.client_validity_days;
	case AMTPROV_PURPOSE_PROVISIONING: return ca->cfg.provisioning_validity_days;
	default: return ca->cfg.web_server_validity_days;
	}
}

static const char *eku_of(struct ca_local *ca, uint32_t purpose)
{
	switch (purpose) {
	case AMTPROV_PURPOSE_CLIENT_8021X: return "clientAuth";
	case AMTPROV_PURPOSE_PROVISIONING:
		return (ca->marker & CL_MARK_OID) ? "serverAuth," CL_OID_AMT_PROV : "serverAuth";
	default: return "serverAuth";
	}
}

/* Picks a serial no certificate in the database has; collisions of 126 random bits are
 * only expected from a broken RNG, so a handful of tries is plenty. */
static int unique_serial(struct ca_local *ca, X509 *x, char **hex, struct amtprov_error *err)
{
	for (int tries = 0; tries < 8; tries++) {
		int seen;

		if (cl_random_serial(x) < 0)
			return cl_crypto_error(err, "cannot draw a serial number");
		*hex = cl_serial_hex(X509_get0_serialNumber(x));
		if (!*hex)
			return cl_crypto_error(err, "cannot format a serial number");
		seen = cl_db_has_serial(ca->db, *hex, err);
		if (seen == 0)
			return AMTPROV_OK;
		OPENSSL_free(*hex);
		*hex = NULL;
		if (seen < 0)
			return err ? err->code : AMTPROV_E_IO;
		ca->host->log(ca->host, AMTPROV_LOG_WARNING, "serial collision; drawing again");
	}
	return amtprov_error_set(err, AMTPROV_E_INTERNAL, CL_NAME,
				 "no unique serial number after 8 tries: check the RNG");
}

/*
 * Puts the request's SubjectPublicKeyInfo into @p x as it is, algorithm, parameters and key
 * bits copied: X509_set_pubkey would encode the key parsed from the request and decode that
 * encoding again (OpenSSL 3's decoder, a second parse of the same key per certificate).
 * The key was parsed and checked from these very bytes (weak_key, the request's
 * self-signature), so the certificate carries exactly what was checked.
 */
static int copy_spki(X509 *x, X509_REQ *r)
{
	X509_PUBKEY *to = X509_get_X509_PUBKEY(x);
	ASN1_OBJECT *oid, *alg;
	const unsigned char *bits;
	X509_ALGOR *pa;
	const void *pval;
	void *param = NULL;
	unsigned char *copy;
	int len, ptype, has_param;

	if (!to || X509_PUBKEY_get0_param(&oid, &bits, &len, &pa, X509_REQ_get_X509_PUBKEY(r)) != 1 ||
	    len <= 0)
		return -1;
	X509_ALGOR_get0(NULL, &ptype, &pval, pa);
	has_param = pval && ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL;
	alg = OBJ_dup(oid);
	if (has_param)
		param = ptype == V_ASN1_OBJECT ? (void *)OBJ_dup(pval) : (void *)ASN1_STRING_dup(pval);
	copy = OPENSSL_memdup(bits, (size_t)len);
	if (alg && (param || !has_param) && copy &&
	    X509_PUBKEY_set0_param(to, alg, ptype, param, copy, len) == 1)
		return 0;
	ASN1_OBJECT_free(alg);
	if (ptype == V_ASN1_OBJECT)
		ASN1_OBJECT_free(param);
	else
		ASN1_STRING_free(param);
	OPENSSL_free(copy);
	return -1;
}

static int64_t asn1_to_epoch(const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

/* The configured digest, or a stronger one the device needs (ca.h ABI 1.2,
 * signature_digest: SHA-384 for AMT 22 and later). */
static const EVP_MD *request_md(const struct ca_local *ca, const struct amtprov_ca_request *req)
{
	const char *want = AMTPROV_HAS_SLOT(req, struct amtprov_ca_request, signature_digest)
				   ? req->signature_digest : NULL;

	if (want && strcmp(want, "sha384") == 0 && EVP_MD_get_size(ca->md) < 48)
		return EVP_sha384();
	return ca->md;
}

int cl_issue(struct ca_local *ca, const struct amtprov_ca_request *req,
	     struct amtprov_ca_result *res, struct amtprov_error *err)
{
	const unsigned char *p;
	const char *tmpl, *san_name = NULL, *why;
	char whybuf[160], san[300], cdp[600];
	X509_REQ *r = NULL;
	X509_NAME *subject = NULL;
	EVP_PKEY *pub;
	X509 *x = NULL;
	char *serial = NULL, *subj_text = NULL, *cn = NULL;
	unsigned char *der = NULL, *q;
	time_t t = (time_t)ca->host->now(ca->host);
	int len, rc = AMTPROV_OK, is_ec;
	struct cl_db_cert rec;

	tmpl = cl_template_of(req->purpose);
	if (!tmpl)
		return reject(res, "unknown certificate purpose %u", (unsigned)req->purpose);
	if (req->template_name && *req->template_name &&
	    strcmp(req->template_name, tmpl) != 0) {
		if (strcmp(req->template_name, CL_TMPL_WEB) == 0 ||
		    strcmp(req->template_name, CL_TMPL_CLIENT) == 0 ||
		    strcmp(req->template_name, CL_TMPL_PROV) == 0)
			return reject(res, "template '%s' does not issue this purpose (use '%s')",
				      req->template_name, tmpl);
		res->outcome = AMTPROV_CA_UNCONFIGURED;
		snprintf(res->message, sizeof(res->message),
			 "%s: no template '%.64s' (offered: %s, %s, %s)", CL_NAME,
			 req->template_name, CL_TMPL_WEB, CL_TMPL_CLIENT, CL_TMPL_PROV);
		return AMTPROV_OK;
	}
	if (!req->csr_der || req->csr_len == 0 || req->csr_len > 65536)
		return reject(res, "no certificate request (or larger than 64 KiB)");
	p = req->csr_der;
	r = d2i_X509_REQ(NULL, &p, (long)req->csr_len);
	if (!r || p != req->csr_der + req->csr_len) {
		X509_REQ_free(r);
		return reject(res, "the request is not a DER PKCS#10 certificate request");
	}
	pub = X509_REQ_get0_pubkey(r);
	if (!pub) {
		X509_REQ_free(r);
		return reject(res, "the request's public key cannot be read");
	}
	if ((why = weak_key(pub, whybuf, sizeof(whybuf))) != NULL ||
	    (why = weak_signature(r, whybuf, sizeof(whybuf))) != NULL) {
		X509_REQ_free(r);
		return reject(res, "%s", why);
	}
	if (X509_REQ_verify(r, pub) != 1) {
		X509_REQ_free(r);
		return reject(res, "the request's self-signature does not verify");
	}
	subject = profile_subject(ca, req, r, &san_name, res);
	if (!subject) {
		X509_REQ_free(r);
		if (res->outcome == AMTPROV_CA_REJECTED)
			return AMTPROV_OK;
		return cl_crypto_error(err, "cannot build the subject");
	}
	if (!san_name) {
		cn = common_name(subject);
		san_name = cn;
	}
	is_ec = EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC;
	x = X509_new();
	if (!x || X509_set_version(x, 2) != 1 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -CL_BACKDATE_SECONDS, &t) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)validity_days(ca, req->purpose), 0,
			      &t) ||
	    X509_set_subject_name(x, subject) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca->issuing)) != 1 ||
	    copy_spki(x, r) < 0)
		goto crypto;
	/* A leaf never outlives the CA that vouches for it. */
	if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca->issuing)) > 0 &&
	    X509_set1_notAfter(x, X509_get0_notAfter(ca->issuing)) != 1)
		goto crypto;
	snprintf(san, sizeof(san), "DNS:%s", san_name ? san_name : "");
	/* keyEncipherment only for RSA: ECDSA keys cannot encrypt (RFC 8813). */
	if (add_ext(x, ca->issuing, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, ca->issuing, NID_key_usage,
		    is_ec ? "critical,digitalSignature"
			  : "critical,digitalSignature,keyEncipherment") < 0 ||
	    add_ext(x, ca->issuing, NID_ext_key_usage, eku_of(ca, req->purpose)) < 0 ||
	    add_ext(x, ca->issuing, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, ca->issuing, NID_authority_key_identifier, "keyid:always") < 0 ||
	    (san_name && add_ext(x, ca->issuing, NID_subject_alt_name, san) < 0))
		goto crypto;
	if (ca->crl_url && *ca->crl_url) {
		snprintf(cdp, sizeof(cdp), "URI:%s", ca->crl_url);
		if (add_ext(x, ca->issuing, NID_crl_distribution_points, cdp) < 0)
			goto crypto;
	}
	if ((rc = unique_serial(ca, x, &serial, err)) != AMTPROV_OK)
		goto out;
	if (X509_sign(x, ca->issuing_key, request_md(ca, req)) <= 0)
		goto crypto;
	len = i2d_X509(x, NULL);
	if (len <= 0)
		goto crypto;
	der = malloc((size_t)len);
	subj_text = cl_name_text(subject);
	res->chain_pem = strdup(ca->roots_pem);
	if (!der || !subj_text || !res->chain_pem) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, CL_NAME, "out of memory");
		goto out;
	}
	q = der;
	i2d_X509(x, &q);
	snprintf(res->request_id, sizeof(res->request_id), "%s", serial);
	rec = (struct cl_db_cert){
		.serial = serial,
		.subject = subj_text,
		.purpose = (int)req->purpose,
		.not_before = asn1_to_epoch(X509_get0_notBefore(x)),
		.not_after = asn1_to_epoch(X509_get0_notAfter(x)),
		.issued_at = (int64_t)t,
		.request_id = res->request_id,
		.fqdn = req->subject_fqdn,
		.der = der,
		.der_len = (size_t)len,
	};
	/* Recorded before it is handed out: a certificate the database does not know could
	 * never be revoked (R-PROV-13). */
	if ((rc = cl_db_insert(ca->db, &rec, err)) != AMTPROV_OK)
		goto out;
	res->outcome = AMTPROV_CA_ISSUED;
	res->cert_der = der;
	res->cert_len = (size_t)len;
	der = NULL;
	ca->host->log(ca->host, AMTPROV_LOG_INFO, "issued %s certificate %s for '%s'", tmpl,
		      serial, subj_text);
	goto out;
crypto:
	rc = cl_crypto_error(err, "cannot issue the certificate");
out:
	if (rc != AMTPROV_OK) {
		free(res->chain_pem);
		res->chain_pem = NULL;
		res->request_id[0] = '\0';
	}
	free(der);
	free(subj_text);
	free(cn);
	OPENSSL_free(serial);
	X509_NAME_free(subject);
	X509_free(x);
	X509_REQ_free(r);
	return rc;
}
