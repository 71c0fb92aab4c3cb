/* SPDX-License-Identifier: Apache-2.0 */
#include "pki.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "util.h"

const char *pki_hash_name(int alg)
{
	switch (alg) {
	case PKI_HASH_SHA1: return "SHA-1";
	case PKI_HASH_SHA256: return "SHA-256";
	case PKI_HASH_SHA384: return "SHA-384";
	default: return "?";
	}
}

int pki_hash_parse(const char *s)
{
	if (!s)
		return -1;
	if (!strcasecmp(s, "sha1") || !strcasecmp(s, "sha-1") || !strcmp(s, "1"))
		return PKI_HASH_SHA1;
	if (!strcasecmp(s, "sha256") || !strcasecmp(s, "sha-256") || !strcmp(s, "2"))
		return PKI_HASH_SHA256;
	if (!strcasecmp(s, "sha384") || !strcasecmp(s, "sha-384") || !strcmp(s, "3"))
		return PKI_HASH_SHA384;
	return -1;
}

size_t pki_hash_len(int alg)
{
	switch (alg) {
	case PKI_HASH_SHA1: return 20;
	case PKI_HASH_SHA256: return 32;
	case PKI_HASH_SHA384: return 48;
	default: return 0;
	}
}

int pki_error(struct amtprov_error *err, int code, const char *where, const char *fmt, ...)
{
	char msg[AMTPROV_ERROR_MSG_SIZE], q[AMTPROV_ERROR_MSG_SIZE] = "";
	size_t ql = 0;
	unsigned long e;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Drain the whole queue so a later call does not report our stale reasons. */
	while ((e = ERR_get_error()) != 0) {
		const char *r = ERR_reason_error_string(e);
		char one[128];

		if (r)
			snprintf(one, sizeof(one), "%s", r);
		else
			ERR_error_string_n(e, one, sizeof(one));
		if (ql < sizeof(q) - 1) {
			int w = snprintf(q + ql, sizeof(q) - ql, "%s%s", ql ? "; " : "", one);

			ql = w > 0 ? ql + (size_t)w : ql;
		}
	}
	if (q[0])
		return amtprov_error_set(err, code, where, "%s: %s", msg, q);
	return amtprov_error_set(err, code, where, "%s", msg);
}

/* ---------------- loading ---------------- */

int pki_load_pem(const char *pem, size_t len, const char *where, STACK_OF(X509) **certs,
		 EVP_PKEY **key, struct amtprov_error *err)
{
	STACK_OF(X509_INFO) *infos;
	STACK_OF(X509) *out;
	BIO *b;
	int rc = AMTPROV_OK;

	ERR_clear_error();
	if (key)
		*key = NULL;
	if (len > INT32_MAX)
		return amtprov_error_set(err, AMTPROV_E_INVALID, where, "PEM input too large");
	b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return pki_error(err, AMTPROV_E_NOMEM, where, "out of memory");
	infos = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!infos)
		return pki_error(err, AMTPROV_E_PARSE, where, "cannot parse PEM");
	out = sk_X509_new_null();
	if (!out) {
		sk_X509_INFO_pop_free(infos, X509_INFO_free);
		return pki_error(err, AMTPROV_E_NOMEM, where, "out of memory");
	}
	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *xi = sk_X509_INFO_value(infos, i);

		if (xi->x509) {
			if (!sk_X509_push(out, xi->x509)) {
				rc = pki_error(err, AMTPROV_E_NOMEM, where, "out of memory");
				break;
			}
			xi->x509 = NULL; /* now owned by out */
		}
		if (key && !*key && xi->x_pkey && xi->x_pkey->dec_pkey) {
			*key = xi->x_pkey->dec_pkey;
			xi->x_pkey->dec_pkey = NULL;
		}
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	if (rc == AMTPROV_OK && sk_X509_num(out) == 0)
		rc = amtprov_error_set(err, AMTPROV_E_PARSE, where,
				       "no PEM CERTIFICATE block found");
	if (rc != AMTPROV_OK) {
		sk_X509_pop_free(out, X509_free);
		if (key) {
			EVP_PKEY_free(*key);
			*key = NULL;
		}
		return rc;
	}
	*certs = out;
	return AMTPROV_OK;
}

int pki_load_pem_key(const char *pem, size_t len, const char *where, EVP_PKEY **key,
		     struct amtprov_error *err)
{
	BIO *b;

	ERR_clear_error();
	if (len > INT32_MAX)
		return amtprov_error_set(err, AMTPROV_E_INVALID, where, "PEM input too large");
	b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return pki_error(err, AMTPROV_E_NOMEM, where, "out of memory");
	/* An empty passphrase callback result: an encrypted key fails instead of prompting. */
	*key = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
	BIO_free(b);
	if (!*key)
		return pki_error(err, AMTPROV_E_PARSE, where,
				 "cannot read an unencrypted PEM private key");
	return AMTPROV_OK;
}

int pki_load_pkcs12(const void *der, size_t len, const char *password, const char *where,
		    STACK_OF(X509) **certs, EVP_PKEY **key, struct amtprov_error *err)
{
	const unsigned char *p = der;
	PKCS12 *p12;
	X509 *leaf = NULL;
	STACK_OF(X509) *ca = NULL, *out;
	EVP_PKEY *pk = NULL;

	ERR_clear_error();
	if (len > INT32_MAX)
		return amtprov_error_set(err, AMTPROV_E_INVALID, where, "PKCS#12 input too large");
	p12 = d2i_PKCS12(NULL, &p, (long)len);
	if (!p12)
		return pki_error(err, AMTPROV_E_PARSE, where, "not a PKCS#12 (DER) file");
	if (!password)
		password = "";
	/* Check the MAC first so a wrong password is reported as such, not as bad data.
	 * An empty password may have been encoded as "absent" (NULL) by the exporter. */
	if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, password, -1)) {
		if (*password || !PKCS12_verify_mac(p12, NULL, 0)) {
			PKCS12_free(p12);
			ERR_clear_error();
			return amtprov_error_set(err, AMTPROV_E_AUTH, where,
						 "the PKCS#12 password is wrong (MAC does not "
						 "verify)");
		}
		password = NULL;
	}
	if (!PKCS12_parse(p12, password, &pk, &leaf, &ca)) {
		PKCS12_free(p12);
		return pki_error(err, AMTPROV_E_PARSE, where, "cannot decode the PKCS#12 contents");
	}
	PKCS12_free(p12);
	out = sk_X509_new_null();
	if (!out || (leaf && !sk_X509_push(out, leaf))) {
		sk_X509_free(out);
		X509_free(leaf);
		sk_X509_pop_free(ca, X509_free);
		EVP_PKEY_free(pk);
		return pki_error(err, AMTPROV_E_NOMEM, where, "out of memory");
	}
	while (ca && sk_X509_num(ca) > 0) {
		X509 *c = sk_X509_shift(ca);

		if (!sk_X509_push(out, c))
			X509_free(c);
	}
	sk_X509_free(ca);
	if (sk_X509_num(out) == 0) {
		sk_X509_free(out);
		EVP_PKEY_free(pk);
		return amtprov_error_set(err, AMTPROV_E_PARSE, where,
					 "the PKCS#12 holds no certificate");
	}
	*certs = out;
	*key = pk;
	return AMTPROV_OK;
}

int pki_load_crl(const void *data, size_t len, const char *where, X509_CRL **crl,
		 struct amtprov_error *err)
{
	const unsigned char *p = data;
	BIO *b;

	ERR_clear_error();
	if (len > INT32_MAX)
		return amtprov_error_set(err, AMTPROV_E_INVALID, where, "CRL too large");
	b = BIO_new_mem_buf(data, (int)len);
	if (!b)
		return pki_error(err, AMTPROV_E_NOMEM, where, "out of memory");
	*crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!*crl) {
		ERR_clear_error();
		*crl = d2i_X509_CRL(NULL, &p, (long)len);
	}
	if (!*crl)
		return pki_error(err, AMTPROV_E_PARSE, where, "not a CRL (PEM or DER)");
	return AMTPROV_OK;
}

/* ---------------- chain ---------------- */

/* 1 if @p issuer issued @p c: names and key identifiers agree and the signature verifies. */
static int issued_by(X509 *c, X509 *issuer)
{
	EVP_PKEY *k;
	int ok;

	if (X509_check_issued(issuer, c) != X509_V_OK)
		return 0;
	k = X509_get0_pubkey(issuer);
	ok = k && X509_verify(c, k) == 1;
	ERR_clear_error();
	return ok;
}

int pki_is_self_signed(X509 *c)
{
	return issued_by(c, c);
}

int pki_order_chain(STACK_OF(X509) *in, X509 *leaf, STACK_OF(X509) **out,
		    struct pki_chain_info *info, struct amtprov_error *err)
{
	int n = sk_X509_num(in);
	STACK_OF(X509) *path;
	X509 *cur;
	char *used;

	memset(info, 0, sizeof(*info));
	if (n <= 0)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no certificates");
	used = calloc((size_t)n, 1);
	path = sk_X509_new_null();
	if (!used || !path) {
		free(used);
		sk_X509_free(path);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	cur = leaf ? leaf : sk_X509_value(in, 0);
	for (int i = 0; i < n; i++)
		if (sk_X509_value(in, i) == cur)
			used[i] = 1;
	for (;;) {
		int next = -1;

		X509_up_ref(cur);
		if (!sk_X509_push(path, cur)) {
			X509_free(cur);
			free(used);
			sk_X509_pop_free(path, X509_free);
			return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		}
		if (X509_check_issued(cur, cur) == X509_V_OK) {
			char sn[200];

			/* Self-issued: the end of the path whether or not it verifies. */
			info->has_root = pki_is_self_signed(cur);
			info->complete = info->has_root;
			if (!info->has_root) {
				pki_name(cur, 0, sn, sizeof(sn));
				snprintf(info->problem, sizeof(info->problem),
					 "self-issued '%s' has a signature that does not verify", sn);
			}
			break;
		}
		for (int i = 0; i < n && next < 0; i++)
			if (!used[i] && issued_by(cur, sk_X509_value(in, i)))
				next = i;
		if (next < 0) {
			char sn[120], in_name[120];
			int name_match = -1;

			pki_name(cur, 0, sn, sizeof(sn));
			pki_name(cur, 1, in_name, sizeof(in_name));
			for (int i = 0; i < n && name_match < 0; i++)
				if (!used[i] && X509_check_issued(sk_X509_value(in, i), cur) == X509_V_OK)
					name_match = i;
			if (name_match >= 0)
				snprintf(info->problem, sizeof(info->problem),
					 "the signature of '%s' does not verify with the key of its "
					 "issuer '%s'", sn, in_name);
			else
				snprintf(info->problem, sizeof(info->problem),
					 "issuer '%s' of '%s' is missing", in_name, sn);
			break;
		}
		used[next] = 1;
		cur = sk_X509_value(in, next);
	}
	/* In order: the input is exactly the path, position by position. */
	info->in_order = sk_X509_num(path) <= n;
	for (int i = 0; i < sk_X509_num(path) && info->in_order; i++)
		if (sk_X509_value(in, i) != sk_X509_value(path, i))
			info->in_order = 0;
	for (int i = 0; i < n; i++)
		if (!used[i])
			info->n_unused++;
	free(used);
	*out = path;
	return AMTPROV_OK;
}

/* ---------------- inspection ---------------- */

int pki_thumbprint(X509 *c, int alg, char *hex, size_t size, struct amtprov_error *err)
{
	const EVP_MD *md = alg == PKI_HASH_SHA1	  ? EVP_sha1()
			   : alg == PKI_HASH_SHA256 ? EVP_sha256()
			   : alg == PKI_HASH_SHA384 ? EVP_sha384()
						    : NULL;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!md)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "unknown hash %d", alg);
	if (size < 2 * (size_t)EVP_MD_get_size(md) + 1)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "hex buffer too small");
	if (!X509_digest(c, md, d, &n))
		return pki_error(err, AMTPROV_E_CRYPTO, NULL, "cannot hash the certificate");
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02X", d[i]);
	hex[2 * n] = '\0';
	return AMTPROV_OK;
}

void pki_name(X509 *c, int issuer, char *buf, size_t size)
{
	X509_NAME *nm = issuer ? X509_get_issuer_name(c) : X509_get_subject_name(c);
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;

	buf[0] = '\0';
	if (!b)
		return;
	if (X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_get_mem_data(b, &p);
		if (n > 0)
			snprintf(buf, size, "%.*s", (int)n, p);
	}
	BIO_free(b);
	ERR_clear_error();
}

static int name_entry_text(X509_NAME_ENTRY *e, char *buf, size_t size)
{
	unsigned char *u = NULL;
	int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));

	if (n < 0) {
		buf[0] = '\0';
		ERR_clear_error();
		return -1;
	}
	snprintf(buf, size, "%.*s", n, (const char *)u);
	OPENSSL_free(u);
	return 0;
}

int pki_subject_cn(X509 *c, char *buf, size_t size)
{
	X509_NAME *nm = X509_get_subject_name(c);
	int i = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);

	buf[0] = '\0';
	if (i < 0)
		return 0;
	return name_entry_text(X509_NAME_get_entry(nm, i), buf, size) == 0;
}

int pki_subject_ous(X509 *c, char *buf, size_t size)
{
	X509_NAME *nm = X509_get_subject_name(c);
	size_t l = 0;
	int count = 0;

	buf[0] = '\0';
	for (int i = -1; (i = X509_NAME_get_index_by_NID(nm, NID_organizationalUnitName, i)) >= 0;) {
		char ou[200];
		int w;

		if (name_entry_text(X509_NAME_get_entry(nm, i), ou, sizeof(ou)) < 0)
			continue;
		w = snprintf(buf + l, size - l, "%s\"%s\"", count ? "; " : "", ou);
		if (w < 0 || (size_t)w >= size - l)
			break;
		l += (size_t)w;
		count++;
	}
	return count;
}

int pki_has_ou(X509 *c, const char *ou)
{
	X509_NAME *nm = X509_get_subject_name(c);

	for (int i = -1; (i = X509_NAME_get_index_by_NID(nm, NID_organizationalUnitName, i)) >= 0;) {
		char v[200];

		if (name_entry_text(X509_NAME_get_entry(nm, i), v, sizeof(v)) == 0 &&
		    strcmp(v, ou) == 0)
			return 1;
	}
	return 0;
}

static EXTENDED_KEY_USAGE *get_eku(X509 *c)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(c, NID_ext_key_usage, NULL, NULL);

	ERR_clear_error();
	return eku;
}

int pki_has_eku(X509 *c, const char *oid)
{
	EXTENDED_KEY_USAGE *eku = get_eku(c);
	int found = 0;

	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku) && !found; i++) {
		char txt[80];

		OBJ_obj2txt(txt, sizeof(txt), sk_ASN1_OBJECT_value(eku, i), 1);
		found = strcmp(txt, oid) == 0;
	}
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return found;
}

int pki_eku_text(X509 *c, char *buf, size_t size)
{
	EXTENDED_KEY_USAGE *eku = get_eku(c);
	size_t l = 0;
	int n;

	buf[0] = '\0';
	if (!eku) {
		snprintf(buf, size, "no extendedKeyUsage extension");
		return -1;
	}
	n = sk_ASN1_OBJECT_num(eku);
	for (int i = 0; i < n; i++) {
		ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, i);
		char txt[80];
		const char *sn = OBJ_nid2sn(OBJ_obj2nid(o));
		int w;

		OBJ_obj2txt(txt, sizeof(txt), o, 1);
		if (strcmp(txt, PKI_OID_AMT_PROVISIONING) == 0)
			sn = "Intel AMT provisioning";
		if (sn && strcmp(sn, "UNDEF") != 0)
			w = snprintf(buf + l, size - l, "%s%s (%s)", i ? ", " : "", sn, txt);
		else
			w = snprintf(buf + l, size - l, "%s%s", i ? ", " : "", txt);
		if (w < 0 || (size_t)w >= size - l)
			break;
		l += (size_t)w;
	}
	if (n == 0)
		snprintf(buf, size, "an empty extendedKeyUsage extension");
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return n;
}

int pki_key_matches(X509 *c, EVP_PKEY *key)
{
	EVP_PKEY *pub = X509_get0_pubkey(c);
	int ok = pub && key && EVP_PKEY_eq(pub, key) == 1;

	ERR_clear_error();
	return ok;
}

int pki_key_info(X509 *c, int *is_rsa, int *bits, char *desc, size_t size)
{
	EVP_PKEY *k = X509_get0_pubkey(c);
	int id;

	*is_rsa = 0;
	*bits = 0;
	if (!k) {
		snprintf(desc, size, "unreadable public key");
		ERR_clear_error();
		return -1;
	}
	id = EVP_PKEY_get_base_id(k);
	*bits = EVP_PKEY_get_bits(k);
	if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) {
		*is_rsa = 1;
		snprintf(desc, size, "RSA %d", *bits);
	} else if (id == EVP_PKEY_EC) {
		char curve[64] = "";
		size_t cl = 0;

		EVP_PKEY_get_utf8_string_param(k, "group", curve, sizeof(curve), &cl);
		snprintf(desc, size, "ECDSA %d (%s)", *bits, curve[0] ? curve : "unknown curve");
	} else {
		const char *nm = OBJ_nid2sn(id);

		snprintf(desc, size, "%s %d", nm ? nm : "unknown", *bits);
	}
	ERR_clear_error();
	return 0;
}

int pki_sig_weak(X509 *c, char *digest, size_t size)
{
	int md = NID_undef, pk = NID_undef;
	int nid = X509_get_signature_nid(c);

	if (!OBJ_find_sigid_algs(nid, &md, &pk)) {
		snprintf(digest, size, "%s", OBJ_nid2sn(nid) ? OBJ_nid2sn(nid) : "unknown");
		return 0;
	}
	if (md == NID_undef) /* Ed25519 and similar: no separate digest */
		snprintf(digest, size, "%s", OBJ_nid2sn(nid) ? OBJ_nid2sn(nid) : "unknown");
	else
		snprintf(digest, size, "%s", OBJ_nid2sn(md) ? OBJ_nid2sn(md) : "unknown");
	return md == NID_sha1 || md == NID_md5 || md == NID_md4 || md == NID_md2 ||
	       md == NID_md5_sha1;
}

static int asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

int pki_validity(X509 *c, int64_t *not_before, int64_t *not_after)
{
	if (asn1_time_unix(X509_get0_notBefore(c), not_before) < 0 ||
	    asn1_time_unix(X509_get0_notAfter(c), not_after) < 0) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

void pki_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* The CRL distribution point URIs of @p c: all of them, or only local files (as paths). */
static char **cdp_list(X509 *c, int files_only)
{
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(c, NID_crl_distribution_points, NULL, NULL);
	char **v = NULL;
	size_t n = 0;

	ERR_clear_error();
	for (int i = 0; dps && i < sk_DIST_POINT_num(dps); i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
		GENERAL_NAMES *gns;

		if (!dp->distpoint || dp->distpoint->type != 0)
			continue;
		gns = dp->distpoint->name.fullname;
		for (int j = 0; j < sk_GENERAL_NAME_num(gns); j++) {
			GENERAL_NAME *gn = sk_GENERAL_NAME_value(gns, j);
			const char *uri, *item = NULL;
			char **nv;

			if (gn->type != GEN_URI)
				continue;
			uri = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
			if (!uri)
				continue;
			if (!files_only)
				item = uri;
			/* Only local files for a preflight: it does no network fetches. */
			else if (strncmp(uri, "file://", 7) == 0)
				item = uri + 7;
			else if (uri[0] == '/')
				item = uri;
			if (!item || (files_only && item[0] != '/'))
				continue;
			nv = realloc(v, (n + 2) * sizeof(*v));
			if (!nv)
				break;
			v = nv;
			v[n] = strdup(item);
			if (!v[n])
				break;
			v[++n] = NULL;
		}
	}
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	return v;
}

char **pki_cdp_files(X509 *c)
{
	return cdp_list(c, 1);
}

char **pki_cdp_urls(X509 *c)
{
	return cdp_list(c, 0);
}

int pki_crl_check(X509_CRL *crl, X509 *c, X509 *issuer, struct pki_revocation *out,
		  struct amtprov_error *err)
{
	X509_REVOKED *r = NULL;
	EVP_PKEY *k;

	memset(out, 0, sizeof(*out));
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0)
		return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, NULL,
					 "the CRL was not issued by this certificate's issuer");
	k = X509_get0_pubkey(issuer);
	if (!k || X509_CRL_verify(crl, k) != 1)
		return pki_error(err, AMTPROV_E_VERIFY, NULL,
				 "the CRL's signature does not verify with its issuer's key");
	if (X509_CRL_get0_by_cert(crl, &r, c) == 1 && r) {
		ASN1_ENUMERATED *re;
		int code = -1;

		out->revoked = 1;
		if (asn1_time_unix(X509_REVOKED_get0_revocationDate(r), &out->revoked_at) < 0)
			out->revoked_at = 0;
		re = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
		if (re) {
			code = (int)ASN1_ENUMERATED_get(re);
			ASN1_ENUMERATED_free(re);
		}
		switch (code) {
		case 1: util_strlcpy(out->reason, "keyCompromise", sizeof(out->reason)); break;
		case 2: util_strlcpy(out->reason, "cACompromise", sizeof(out->reason)); break;
		case 3: util_strlcpy(out->reason, "affiliationChanged", sizeof(out->reason)); break;
		case 4: util_strlcpy(out->reason, "superseded", sizeof(out->reason)); break;
		case 5: util_strlcpy(out->reason, "cessationOfOperation", sizeof(out->reason)); break;
		case 6: util_strlcpy(out->reason, "certificateHold", sizeof(out->reason)); break;
		case 8: util_strlcpy(out->reason, "removeFromCRL", sizeof(out->reason)); break;
		case 9: util_strlcpy(out->reason, "privilegeWithdrawn", sizeof(out->reason)); break;
		case 10: util_strlcpy(out->reason, "aACompromise", sizeof(out->reason)); break;
		default: util_strlcpy(out->reason, "unspecified", sizeof(out->reason)); break;
		}
	}
	ERR_clear_error();
	return AMTPROV_OK;
}

int64_t pki_crl_next_update(X509_CRL *crl)
{
	int64_t t = 0;

	if (asn1_time_unix(X509_CRL_get0_nextUpdate(crl), &t) < 0)
		return 0;
	return t;
}

/* ---------------- PEM output ---------------- */

int pki_chain_pem(STACK_OF(X509) *chain, char **pem, size_t *len, struct amtprov_error *err)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;

	ERR_clear_error();
	if (!b)
		return pki_error(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	for (int i = 0; i < sk_X509_num(chain); i++)
		if (!PEM_write_bio_X509(b, sk_X509_value(chain, i))) {
			BIO_free(b);
			return pki_error(err, AMTPROV_E_CRYPTO, NULL, "cannot write PEM");
		}
	n = BIO_get_mem_data(b, &p);
	*pem = malloc((size_t)n + 1);
	if (!*pem) {
		BIO_free(b);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	memcpy(*pem, p, (size_t)n);
	(*pem)[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
	return AMTPROV_OK;
}

int pki_key_pem(EVP_PKEY *key, struct amtprov_secret **pem, struct amtprov_error *err)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *p = NULL;
	long n;

	ERR_clear_error();
	if (!b)
		b = BIO_new(BIO_s_mem());
	if (!b)
		return pki_error(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	if (!PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)) {
		BIO_free(b);
		return pki_error(err, AMTPROV_E_CRYPTO, NULL, "cannot write the private key");
	}
	n = BIO_get_mem_data(b, &p);
	*pem = util_secret_new((size_t)n + 1);
	if (!*pem) {
		BIO_free(b);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	memcpy((*pem)->data, p, (size_t)n);
	(*pem)->len = (size_t)n;
	util_wipe(p, (size_t)n);
	BIO_free(b);
	return AMTPROV_OK;
}

/* ---------------- DNS names ---------------- */

/*
 * Multi-label public suffixes under which organisations register names. Not the whole
 * Public Suffix List (no network, no data file): the second-level registries in common use.
 * A suffix missing here makes its registry look like an organisation (so two different
 * organisations under it would "share" a namespace); add it here when found.
 */
static const char *const multi_label_suffixes[] = {
	"co.uk", "org.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "ac.uk", "gov.uk", "nhs.uk",
	"police.uk", "sch.uk",
	"com.au", "net.au", "org.au", "edu.au", "gov.au", "asn.au", "id.au",
	"co.nz", "net.nz", "org.nz", "govt.nz", "ac.nz", "school.nz",
	"co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "ad.jp", "ed.jp", "gr.jp", "lg.jp",
	"co.kr", "or.kr", "ne.kr", "go.kr", "ac.kr",
	"co.za", "org.za", "gov.za", "ac.za", "net.za",
	"co.in", "net.in", "org.in", "firm.in", "gen.in", "ind.in", "ac.in", "gov.in",
	"co.il", "org.il", "net.il", "ac.il", "gov.il",
	"com.br", "net.br", "org.br", "gov.br", "edu.br",
	"com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "ac.cn",
	"com.hk", "net.hk", "org.hk", "gov.hk", "edu.hk",
	"com.tw", "net.tw", "org.tw", "gov.tw", "edu.tw",
	"com.sg", "net.sg", "org.sg", "gov.sg", "edu.sg",
	"com.mx", "net.mx", "org.mx", "gob.mx", "edu.mx",
	"com.ar", "net.ar", "org.ar", "gob.ar",
	"com.tr", "net.tr", "org.tr", "gov.tr", "edu.tr",
	"com.my", "net.my", "org.my", "gov.my",
	"co.th", "in.th", "ac.th", "go.th",
	"co.id", "or.id", "ac.id", "go.id",
	"com.pl", "net.pl", "org.pl",
	"com.ru", "net.ru", "org.ru",
	"com.ua", "net.ua", "org.ua",
	"co.at", "or.at", "ac.at", "gv.at",
	"com.es", "org.es", "nom.es", "gob.es",
	"com.pt", "org.pt",
	"com.gr", "org.gr",
	"com.sa", "com.eg", "com.ng", "com.pk", "com.ph", "com.vn", "com.co", "com.pe",
	"co.ke", "co.tz", "co.ug", "co.zw",
	NULL,
};

/* Normalised copy: lower-case, one trailing dot dropped. -1 if empty or too long. */
static int norm_name(const char *in, char *out, size_t size)
{
	size_t n;

	if (!in || !*in || util_strlcpy(out, in, size) < 0)
		return -1;
	util_lower(out);
	n = strlen(out);
	if (n && out[n - 1] == '.')
		out[--n] = '\0';
	return n ? 0 : -1;
}

int pki_is_fqdn(const char *s)
{
	size_t len, label = 0;
	int dots = 0, last_digits = 1;
	char b[256];

	if (norm_name(s, b, sizeof(b)) < 0)
		return 0;
	len = strlen(b);
	if (len > 253 || b[0] == '.')
		return 0;
	for (const char *p = b; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return 0;
			dots++;
			label = 0;
			last_digits = 1;
			continue;
		}
		if (!(isalnum((unsigned char)*p) || *p == '-') || (label == 0 && *p == '-'))
			return 0;
		if (!isdigit((unsigned char)*p))
			last_digits = 0;
		if (++label > 63)
			return 0;
	}
	/* A trailing hyphen in the last label, or an all-numeric TLD (an IP address). */
	return dots >= 1 && b[len - 1] != '-' && !last_digits;
}

/* Number of labels of @p name's public suffix: 2 for a listed multi-label one, else 1. */
static int suffix_labels(const char *name)
{
	const char *last = strrchr(name, '.'), *prev = NULL;

	if (!last)
		return 1;
	for (const char *p = name; p < last; p++)
		if (*p == '.')
			prev = p;
	prev = prev ? prev + 1 : name;
	for (size_t i = 0; multi_label_suffixes[i]; i++)
		if (strcmp(prev, multi_label_suffixes[i]) == 0)
			return 2;
	return 1;
}

int pki_namespace_root(const char *fqdn, char *out, size_t size)
{
	char b[256];
	int want, labels = 1;
	const char *start;

	if (size)
		out[0] = '\0';
	if (norm_name(fqdn, b, sizeof(b)) < 0)
		return -1;
	want = suffix_labels(b) + 1;
	for (const char *p = b; *p; p++)
		if (*p == '.')
			labels++;
	if (labels < want)
		return -1;
	start = b + strlen(b);
	for (int seen = 0; start > b; start--)
		if (start[-1] == '.' && ++seen == want)
			break;
	return util_strlcpy(out, start, size) < 0 ? -1 : 0;
}

int pki_namespace_shared(const char *device_fqdn, const char *service_point_fqdn,
			 char *root, size_t root_size, char *sp_root, size_t sp_root_size)
{
	char a[256], b[256];
	int ra = pki_namespace_root(device_fqdn, a, sizeof(a));
	int rb = pki_namespace_root(service_point_fqdn, b, sizeof(b));

	if (root && root_size)
		util_strlcpy(root, ra == 0 ? a : "", root_size);
	if (sp_root && sp_root_size)
		util_strlcpy(sp_root, rb == 0 ? b : "", sp_root_size);
	if (ra < 0 || rb < 0 || !pki_is_fqdn(device_fqdn) || !pki_is_fqdn(service_point_fqdn))
		return 0;
	return strcmp(a, b) == 0;
}

int pki_namespace_disjoint(const char *device_fqdn, const char *ad_domain)
{
	char f[256], d[256];
	const char *dot;

	if (norm_name(device_fqdn, f, sizeof(f)) < 0 || norm_name(ad_domain, d, sizeof(d)) < 0)
		return 1;
	dot = strchr(f, '.');
	return !dot || strcmp(dot + 1, d) != 0;
}

int pki_amt_suffix_match(const char *cn, const char *dns_suffix, char *domain, size_t size)
{
	char c[256], s[256], dom[256];
	const char *p = cn;
	size_t ls, ld;

	if (domain && size)
		domain[0] = '\0';
	if (p && strncmp(p, "*.", 2) == 0)
		p += 2;
	if (norm_name(p, c, sizeof(c)) < 0 || !pki_is_fqdn(c) ||
	    pki_namespace_root(c, dom, sizeof(dom)) < 0)
		return 0;
	if (domain && size)
		util_strlcpy(domain, dom, size);
	if (norm_name(dns_suffix, s, sizeof(s)) < 0)
		return 0;
	if (strcmp(s, dom) == 0)
		return 1;
	ls = strlen(s);
	ld = strlen(dom);
	return ls > ld + 1 && s[ls - ld - 1] == '.' && strcmp(s + ls - ld, dom) == 0;
}
