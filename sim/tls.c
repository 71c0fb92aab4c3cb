/* SPDX-License-Identifier: Apache-2.0 */
#include "tls.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "odca.h"
#include "simutil.h"

static int ssl_dev_idx = -1;

/* ---- key pool -------------------------------------------------------------------------- */

int tls_keypool_init(struct tls_keypool *p, const char *dir, int n, int bits)
{
	memset(p, 0, sizeof(*p));
	p->keys = calloc((size_t)n, sizeof(*p->keys));
	if (!p->keys)
		return -1;
	p->cap = n;
	for (int i = 0; i < n; i++) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/keypool-%d.pem", dir, i);
		f = fopen(path, "r");
		if (f) {
			p->keys[i] = PEM_read_PrivateKey(f, NULL, NULL, NULL);
			fclose(f);
		}
		if (!p->keys[i]) {
			BIO *b;
			BUF_MEM *m;

			p->keys[i] = EVP_RSA_gen((unsigned)bits);
			if (!p->keys[i])
				goto fail;
			b = BIO_new(BIO_s_mem());
			if (!b || !PEM_write_bio_PrivateKey(b, p->keys[i], NULL, NULL, 0, NULL, NULL)) {
				BIO_free(b);
				goto fail;
			}
			BIO_get_mem_ptr(b, &m);
			/* Kept across runs: restarting a fleet must not cost N key generations. */
			if (sim_write_atomic(path, m->data, m->length) != 0) {
				BIO_free(b);
				goto fail;
			}
			BIO_free(b);
		}
		p->n++;
	}
	return 0;
fail:
	tls_keypool_free(p);
	return -1;
}

void tls_keypool_free(struct tls_keypool *p)
{
	for (int i = 0; p->keys && i < p->cap; i++)
		EVP_PKEY_free(p->keys[i]);
	free(p->keys);
	memset(p, 0, sizeof(*p));
}

/* ---- self-signed certificate ----------------------------------------------------------- */

int tls_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX c;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx_nodb(&c);
	X509V3_set_ctx(&c, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &c, nid, value);
	if (!e)
		return -1;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

static char *pem_of(int (*wr)(BIO *, void *), void *obj)
{
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *m;
	char *s = NULL;

	if (!b)
		return NULL;
	if (wr(b, obj)) {
		BIO_get_mem_ptr(b, &m);
		s = malloc(m->length + 1);
		if (s) {
			memcpy(s, m->data, m->length);
			s[m->length] = '\0';
		}
	}
	BIO_free(b);
	return s;
}

static int wr_cert(BIO *b, void *x)
{
	return PEM_write_bio_X509(b, x);
}

static int wr_key(BIO *b, void *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

int tls_ensure_self_cert(struct device *d, struct tls_keypool *pool)
{
	X509 *x = NULL;
	EVP_PKEY *k;
	X509_NAME *nm;
	char cn[256], san[512];
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int rc = -1;

	if (d->self_cert_pem && d->self_key_pem)
		return 0;
	if (!pool->n)
		return -1;
	k = pool->keys[pool->next++ % pool->n];
	if (d->host_name[0] && d->domain_name[0])
		snprintf(cn, sizeof(cn), "%s.%s", d->host_name, d->domain_name);
	else
		sim_strlcpy(cn, d->address[0] ? d->address : "127.0.0.1", sizeof(cn));
	if (d->address[0] && strcmp(cn, d->address) != 0)
		snprintf(san, sizeof(san), "IP:%s,DNS:%s", d->address, cn);
	else
		snprintf(san, sizeof(san), "IP:%s", d->address[0] ? d->address : "127.0.0.1");
	x = X509_new();
	if (!x || sim_random(serial, sizeof(serial)) != 0)
		goto out;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto out;
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 20L * 365 * 86400);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	X509_set_pubkey(x, k);
	if (tls_add_ext(x, x, NID_subject_alt_name, san) ||
	    tls_add_ext(x, x, NID_ext_key_usage, "serverAuth") ||
	    tls_add_ext(x, x, NID_key_usage, "critical,digitalSignature,keyEncipherment"))
		goto out;
	if (!X509_sign(x, k, EVP_sha256()))
		goto out;
	free(d->self_cert_pem);
	free(d->self_key_pem);
	d->self_cert_pem = pem_of(wr_cert, x);
	d->self_key_pem = pem_of(wr_key, k);
	if (d->self_cert_pem && d->self_key_pem) {
		device_audit(d, "self-signed TLS certificate created, CN=%s", cn);
		rc = 0;
	}
out:
	BN_free(bn);
	X509_free(x);
	return rc;
}

int tls_load_identity(const struct device *d, X509 **cert, EVP_PKEY **key)
{
	BIO *b;

	*cert = NULL;
	*key = NULL;
	if (!d->self_cert_pem || !d->self_key_pem)
		return -1;
	b = BIO_new_mem_buf(d->self_cert_pem, -1);
	if (b)
		*cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	b = BIO_new_mem_buf(d->self_key_pem, -1);
	if (b)
		*key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!*cert || !*key) {
		X509_free(*cert);
		EVP_PKEY_free(*key);
		*cert = NULL;
		*key = NULL;
		return -1;
	}
	return 0;
}

static X509 *b64_cert(const char *b64)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t n = 0;
	X509 *x = NULL;

	if (b64 && sim_b64_decode(b64, &der, &n) == 0 && n && n < 0x7fffffff) {
		p = der;
		x = d2i_X509(NULL, &p, (long)n);
	}
	free(der);
	return x;
}

int tls_load_active_identity(const struct device *d, X509 **cert, EVP_PKEY **key,
			     STACK_OF(X509) **chain)
{
	X509 *leaf = NULL, *cur;
	EVP_PKEY *k = NULL;

	*chain = NULL;
	if (d->prov_state == DEV_POST && d->tls_remote.enabled && d->tls_remote.cert_handle) {
		for (int i = 0; i < d->n_certs && !leaf; i++)
			if (d->certs[i].handle == d->tls_remote.cert_handle)
				leaf = b64_cert(d->certs[i].der_b64);
		for (int i = 0; leaf && i < d->n_keys && !k; i++) {
			BIO *b = BIO_new_mem_buf(d->keys[i].pem, -1);
			EVP_PKEY *c = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

			BIO_free(b);
			if (c && EVP_PKEY_eq(c, X509_get0_pubkey(leaf)) == 1)
				k = c;
			else
				EVP_PKEY_free(c);
		}
	}
	if (!leaf || !k) {
		X509_free(leaf);
		EVP_PKEY_free(k);
		/* AMT 19+ serves pre-provisioning TLS with its On-Die CA chain (odca.c). */
		if (device_has_preprov_tls(d) && odca_identity(d, cert, key, chain) == 0)
			return 0;
		return tls_load_identity(d, cert, key);
	}
	/* The chain AMT sends: issuers from its own store, up to a self-signed root. */
	*chain = sk_X509_new_null();
	cur = leaf;
	for (int depth = 0; *chain && depth < 5 && X509_check_issued(cur, cur) != X509_V_OK;
	     depth++) {
		X509 *issuer = NULL;

		for (int i = 0; i < d->n_certs && !issuer; i++) {
			X509 *c = b64_cert(d->certs[i].der_b64);

			if (c && X509_cmp(c, cur) != 0 && X509_check_issued(c, cur) == X509_V_OK)
				issuer = c;
			else
				X509_free(c);
		}
		if (!issuer || !sk_X509_push(*chain, issuer)) {
			X509_free(issuer);
			break;
		}
		cur = issuer;
	}
	*cert = leaf;
	*key = k;
	return 0;
}

bool tls_check_mutual_auth(const struct device *d, X509 *leaf, STACK_OF(X509) *chain,
			   char *reason, size_t rsize)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	bool ok = false;
	int roots = 0;

	if (!leaf) {
		snprintf(reason, rsize, "no client certificate presented");
		goto out;
	}
	for (int i = 0; st && i < d->n_certs; i++) {
		X509 *c = d->certs[i].trusted_root ? b64_cert(d->certs[i].der_b64) : NULL;

		if (c && X509_STORE_add_cert(st, c) == 1)
			roots++;
		X509_free(c);
	}
	if (!roots) {
		snprintf(reason, rsize, "mutual authentication: no trusted root certificate in the store");
		goto out;
	}
	if (!ctx || X509_STORE_CTX_init(ctx, st, leaf, chain) != 1)
		goto out;
	if (X509_verify_cert(ctx) != 1) {
		snprintf(reason, rsize, "mutual authentication: %s",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	if (d->tls_remote.n_trusted_cn) {
		char cn[256] = "";
		X509_NAME *n = X509_get_subject_name(leaf);

		X509_NAME_get_text_by_NID(n, NID_commonName, cn, sizeof(cn));
		for (int i = 0; i < d->tls_remote.n_trusted_cn && !ok; i++)
			ok = !strcasecmp(cn, d->tls_remote.trusted_cn[i]);
		if (!ok) {
			snprintf(reason, rsize, "mutual authentication: CN \"%s\" is not a TrustedCN", cn);
			goto out;
		}
	}
	snprintf(reason, rsize, "mutual authentication accepted");
	ok = true;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

/* ---- provisioning certificate checks --------------------------------------------------- */

const char *tls_trusted_suffix(const struct device *d)
{
	return d->pki_dns_suffix[0] ? d->pki_dns_suffix : d->dhcp_domain;
}

static void norm_name(const char *in, char *out, size_t size)
{
	size_t n;

	if (in[0] == '*' && in[1] == '.')
		in += 2;
	sim_strlcpy(out, in, size);
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	n = strlen(out);
	while (n && out[n - 1] == '.')
		out[--n] = '\0';
}

static bool ends_with_label(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n > s && name[n - s - 1] == '.' && !strcmp(name + n - s, suffix);
}

/* How many rightmost labels of the CN count for a TLD (MeshCentral's table, AMT-PROTOCOL.md
 * §2.2); 0 = keep the whole CN. */
static int tld_labels(const char *tld)
{
	static const char *const two[] = {"net", "com", "org", "gov", "edu", "de", "ch",
					  "dk",  "cz",  "cl",  "ua"};
	static const char *const three[] = {
		"arpa", "fr", "cn", "nl", "br", "mx", "uk", "pl", "tw", "ca", "fi", "be",
		"ru",   "se", "ar", "es", "no", "at", "in", "tr", "ro", "hu", "nz", "pt",
		"il",   "gr", "co", "ie", "za", "th", "sg", "hk", "lt", "id", "hr", "ee", "bg"};

	for (size_t i = 0; i < sizeof(two) / sizeof(two[0]); i++)
		if (!strcmp(tld, two[i]))
			return 2;
	for (size_t i = 0; i < sizeof(three) / sizeof(three[0]); i++)
		if (!strcmp(tld, three[i]))
			return 3;
	return 0;
}

bool tls_cn_matches_suffix(const char *cn_in, const char *suffix_in)
{
	char cn[256], sfx[256];
	const char *tld, *t;
	int keep, labels = 0;

	norm_name(cn_in, cn, sizeof(cn));
	norm_name(suffix_in, sfx, sizeof(sfx));
	if (!cn[0] || !sfx[0])
		return false;
	/* The certificate's host lies in the trusted domain. */
	if (!strcmp(cn, sfx) || ends_with_label(cn, sfx))
		return true;
	/* AMT 2.6's relaxation as MeshCentral implements it: cut the CN to its registrable
	 * domain, then the device's suffix must be that domain or lie below it. */
	tld = strrchr(cn, '.');
	tld = tld ? tld + 1 : cn;
	keep = tld_labels(tld);
	t = cn;
	if (keep) {
		for (const char *p = cn + strlen(cn); p > cn; p--) {
			if (p[-1] == '.' && ++labels == keep) {
				t = p;
				break;
			}
		}
	}
	return !strcmp(t, sfx) || ends_with_label(sfx, t);
}

static bool has_prov_oid_or_ou(X509 *leaf)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, NULL, NULL);
	X509_NAME *subj = X509_get_subject_name(leaf);
	bool ok = false;
	char buf[128];
	int idx = -1;

	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku); i++) {
		OBJ_obj2txt(buf, sizeof(buf), sk_ASN1_OBJECT_value(eku, i), 1);
		if (!strcmp(buf, AMT_PROV_OID))
			ok = true;
	}
	EXTENDED_KEY_USAGE_free(eku);
	while (!ok && (idx = X509_NAME_get_index_by_NID(subj, NID_organizationalUnitName, idx)) >= 0) {
		ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
		unsigned char *u = NULL;
		int n = ASN1_STRING_to_UTF8(&u, v);

		/* Exact and case-sensitive, as AMT compares it. */
		if (n == (int)strlen(AMT_PROV_OU) && !memcmp(u, AMT_PROV_OU, (size_t)n))
			ok = true;
		OPENSSL_free(u);
	}
	return ok;
}

static void cert_name(X509 *x, char *out, size_t size)
{
	X509_NAME_oneline(X509_get_subject_name(x), out, (int)size);
}

static bool leaf_cn(X509 *x, char *out, size_t size)
{
	X509_NAME *n = X509_get_subject_name(x);
	int idx = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	unsigned char *u = NULL;
	int len;

	out[0] = '\0';
	if (idx < 0)
		return false;
	len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, idx)));
	if (len < 0)
		return false;
	snprintf(out, size, "%.*s", len, (const char *)u);
	OPENSSL_free(u);
	return true;
}

static int root_hash_state(const struct device *d, X509 *root)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	int len = i2d_X509(root, &der), found = 0;

	if (len <= 0)
		return 0;
	for (int i = 0; i < d->n_hashes; i++) {
		const struct dev_root_hash *h = &d->hashes[i];
		const EVP_MD *alg = h->algo == DEV_HASH_SHA1 ? EVP_sha1()
				  : h->algo == DEV_HASH_SHA384 ? EVP_sha384() : EVP_sha256();
		unsigned int mdlen = 0;

		if (EVP_Digest(der, (size_t)len, md, &mdlen, alg, NULL) != 1)
			continue;
		if (!memcmp(md, h->hash, mdlen)) {
			found = h->enabled ? 2 : 1;
			if (found == 2)
				break;
		}
	}
	OPENSSL_free(der);
	return found; /* 0 absent, 1 present but inactive, 2 active */
}

bool tls_check_provisioning_chain(const struct device *d, X509 *leaf, STACK_OF(X509) *chain,
				  char *reason, size_t rsize)
{
	X509 *path[10], *cur;
	int n = 0;
	char name[256], cn[256];
	const char *sfx;

	if (!leaf) {
		snprintf(reason, rsize, "no client certificate presented");
		return false;
	}
	/* 1. Intel's OID in the EKU, or the exact OU. */
	if (!has_prov_oid_or_ou(leaf)) {
		snprintf(reason, rsize, "leaf has neither EKU %s nor OU=\"%s\"", AMT_PROV_OID,
			 AMT_PROV_OU);
		return false;
	}
	/* 2. Server-auth EKU: the provisioning certificate is a TLS server certificate. */
	if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER)) {
		snprintf(reason, rsize, "leaf lacks EKU serverAuth (1.3.6.1.5.5.7.3.1)");
		return false;
	}
	/* 3. Build the path to a self-signed root from what the client sent, verifying each
	 * signature: the presented chain is all AMT gets. */
	cur = leaf;
	for (;;) {
		X509 *issuer = NULL;

		if (n >= (int)(sizeof(path) / sizeof(path[0]))) {
			snprintf(reason, rsize, "certificate chain too long");
			return false;
		}
		path[n++] = cur;
		if (X509_check_issued(cur, cur) == X509_V_OK) {
			if (X509_verify(cur, X509_get0_pubkey(cur)) != 1) {
				cert_name(cur, name, sizeof(name));
				snprintf(reason, rsize, "root %s: bad self-signature", name);
				return false;
			}
			break;
		}
		for (int i = 0; chain && i < sk_X509_num(chain); i++) {
			X509 *c = sk_X509_value(chain, i);

			if (c != cur && X509_check_issued(c, cur) == X509_V_OK) {
				issuer = c;
				break;
			}
		}
		cert_name(cur, name, sizeof(name));
		if (!issuer) {
			snprintf(reason, rsize, "chain does not reach a self-signed root (issuer of %s missing)", name);
			return false;
		}
		if (X509_verify(cur, X509_get0_pubkey(issuer)) != 1) {
			snprintf(reason, rsize, "signature on %s does not verify", name);
			return false;
		}
		cur = issuer;
	}
	for (int i = 0; i < n; i++) {
		cert_name(path[i], name, sizeof(name));
		if (X509_cmp_current_time(X509_get0_notBefore(path[i])) >= 0) {
			snprintf(reason, rsize, "%s is not yet valid", name);
			return false;
		}
		if (X509_cmp_current_time(X509_get0_notAfter(path[i])) <= 0) {
			snprintf(reason, rsize, "%s has expired", name);
			return false;
		}
		if (!device_cert_strong_enough(d, path[i], name, reason, rsize))
			return false;
	}
	/* 4. The root's hash must be active in the device's table. */
	switch (root_hash_state(d, path[n - 1])) {
	case 0:
		cert_name(path[n - 1], name, sizeof(name));
		snprintf(reason, rsize, "root %s: hash not in the device's root hash table", name);
		return false;
	case 1:
		cert_name(path[n - 1], name, sizeof(name));
		snprintf(reason, rsize, "root %s: hash in the table but not active", name);
		return false;
	default:
		break;
	}
	/* 5. CN against the trusted DNS suffix. */
	sfx = tls_trusted_suffix(d);
	if (!sfx[0]) {
		snprintf(reason, rsize, "device has no trusted DNS suffix (no PKI DNS suffix, no DHCP option 15)");
		return false;
	}
	if (!leaf_cn(leaf, cn, sizeof(cn)) || !tls_cn_matches_suffix(cn, sfx)) {
		snprintf(reason, rsize, "leaf CN \"%s\" does not match the trusted DNS suffix \"%s\"%s",
			 cn, sfx, d->pki_dns_suffix[0] ? " (PKI DNS suffix)" : " (DHCP option 15)");
		return false;
	}
	snprintf(reason, rsize, "accepted CN \"%s\" for suffix \"%s\"", cn, sfx);
	return true;
}

/* ---- contexts -------------------------------------------------------------------------- */

struct device *tls_ssl_device(const SSL *ssl)
{
	return ssl_dev_idx < 0 ? NULL : SSL_get_ex_data(ssl, ssl_dev_idx);
}

/* Replaces OpenSSL's chain verification: AMT trusts by root hash, not by a CA store. */
static int app_verify(X509_STORE_CTX *sctx, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct device *d = ssl ? tls_ssl_device(ssl) : NULL;
	char reason[512];
	bool ok;

	if (!d)
		return 0;
	if (d->prov_state == DEV_POST) {
		/* Provisioned: only asked for when MutualAuthentication is on. */
		ok = tls_check_mutual_auth(d, X509_STORE_CTX_get0_cert(sctx),
					   X509_STORE_CTX_get0_untrusted(sctx), reason,
					   sizeof(reason));
		device_audit(d, "TLS client certificate %s: %s", ok ? "accepted" : "refused", reason);
		if (!ok)
			X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
		return ok ? 1 : 0;
	}
	ok = tls_check_provisioning_chain(d, X509_STORE_CTX_get0_cert(sctx),
					  X509_STORE_CTX_get0_untrusted(sctx), reason,
					  sizeof(reason));
	if (ok) {
		device_audit(d, "provisioning TLS: client certificate %s", reason);
		return 1;
	}
	device_audit(d, "provisioning TLS refused: %s", reason);
	X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
	return 0;
}

SSL_CTX *tls_server_ctx(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());

	if (!c)
		return NULL;
	if (ssl_dev_idx < 0)
		ssl_dev_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	/* Older AMT clients offer only static-RSA AES suites (PEERS.md); keep ECDHE first. */
	if (!SSL_CTX_set_cipher_list(c, "ECDHE+AESGCM:AES128-GCM-SHA256:AES256-GCM-SHA384:"
				     "AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:@SECLEVEL=0")) {
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(c, 0);
	SSL_CTX_set_cert_verify_callback(c, app_verify, NULL);
	return c;
}

int tls_setup_ssl(SSL *ssl, struct device *d, X509 *cert, EVP_PKEY *key,
		  STACK_OF(X509) *chain)
{
	int minv = device_min_tls_version(d), maxv = device_max_tls_version(d);

	if (d->tls_modern_override && maxv < TLS1_3_VERSION)
		maxv = TLS1_3_VERSION;
	if (!SSL_set_ex_data(ssl, ssl_dev_idx, d) || SSL_use_certificate(ssl, cert) != 1 ||
	    SSL_use_PrivateKey(ssl, key) != 1 || !SSL_set_min_proto_version(ssl, minv) ||
	    !SSL_set_max_proto_version(ssl, maxv))
		return -1;
	if (chain && sk_X509_num(chain) > 0 && SSL_set1_chain(ssl, chain) != 1)
		return -1;
	/* Legacy protocol versions need security level 0 in OpenSSL 3. */
	SSL_set_security_level(ssl, minv < TLS1_2_VERSION ? 0 : 1);
	if (d->tls_resumption) {
		/* Modelled session resumption (stateless tickets, TLS 1.2 and 1.3): the
		 * session id context names the device and the identity it serves, so a ticket
		 * is good only at the device, and only until CommitChanges changes the
		 * certificate. */
		char sid[96];
		int n = snprintf(sid, sizeof(sid), "%s/%u", d->id, d->tls_generation);

		if (n < 0 || n >= (int)sizeof(sid) ||
		    !SSL_set_session_id_context(ssl, (const unsigned char *)sid, (unsigned)n))
			return -1;
		SSL_clear_options(ssl, SSL_OP_NO_TICKET);
		SSL_set_num_tickets(ssl, 1);
	} else {
		SSL_set_options(ssl, SSL_OP_NO_TICKET);
		SSL_set_num_tickets(ssl, 0);
	}
	if (d->prov_state == DEV_IN)
		SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	else if (d->prov_state == DEV_PRE)
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	else if (d->tls_remote.enabled && d->tls_remote.mutual_auth)
		SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	else
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	return 0;
}
