/* SPDX-License-Identifier: Apache-2.0 */
/*
 * at_tls.c - TLS policy of the amt-transport plugin, applied through libcurl's SSL_CTX
 * callback so the client key never leaves memory (R-PROV-07) and the trust rules are ours:
 *
 *  PROVISIONING: the provisioning certificate and its chain are the client certificate. The
 *    device's certificate is accepted only if it is one self-signed certificate, validly
 *    self-signed, naming this session's address (or device FQDN); its SHA-256 is pinned for
 *    the link (the device's connection of this phase, at_link.c), so a reconnect to another
 *    certificate is refused. The certificate, chain and key are parsed once per instance
 *    (at_ident_get) and only up-referenced into each connection's SSL_CTX.
 *  MANAGED: OpenSSL verifies the chain against ca_bundle_pem (the only anchors; libcurl loads
 *    no system store) and the leaf against the CRL fetched for the session (R-REV-01).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "at_internal.h"

static int ex_index = -1;
static CRYPTO_ONCE ex_once = CRYPTO_ONCE_STATIC_INIT;

static void ex_init(void)
{
	ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static struct at_link *link_of(X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());

	return ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index) : NULL;
}

/* The device certificate, for GET_DEVICE_CERT: kept by the link (a reused or resumed
 * connection shows none) and by the session using it. */
static void keep_peer(struct at_link *l, X509 *leaf)
{
	unsigned char *der = NULL;
	int n = i2d_X509(leaf, &der);

	if (n <= 0)
		return;
	OPENSSL_free(l->peer_der);
	l->peer_der = der;
	l->peer_der_len = n;
	if (l->cur) {
		OPENSSL_free(l->cur->peer_der);
		l->cur->peer_der = OPENSSL_memdup(der, (size_t)n);
		l->cur->peer_der_len = l->cur->peer_der ? n : 0;
	}
}

static int names_target(struct at_session *s, X509 *x)
{
	if (X509_check_ip_asc(x, s->address, 0) == 1)
		return 1;
	if (X509_check_host(x, s->address, 0, 0, NULL) == 1)
		return 1;
	return s->fqdn && s->fqdn[0] && X509_check_host(x, s->fqdn, 0, 0, NULL) == 1;
}

/* Pins the device's leaf for the session (a reconnect must show the same one) and logs it
 * once as @p what. @return 1, or 0 with s->tls_why set. */
static int pin_leaf(struct at_link *l, struct at_session *s, X509 *leaf, const char *what)
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (!X509_digest(leaf, EVP_sha256(), md, &mdlen) || mdlen != 32)
		return 0;
	if (l->peer_pinned && memcmp(md, l->peer_sha256, 32) != 0) {
		snprintf(s->tls_why, sizeof(s->tls_why),
			 "device certificate changed within the session (pinned SHA-256 differs)");
		return 0;
	}
	if (!l->peer_pinned) {
		char hex[65];

		memcpy(l->peer_sha256, md, 32);
		l->peer_pinned = 1;
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		s->in->host->log(s->in->host, AMTPROV_LOG_INFO,
				 "%s: accepted %s SHA-256 %s for provisioning", s->address, what, hex);
	}
	keep_peer(l, leaf);
	return 1;
}

static int cn_is(X509 *x, const char *const *names, int substring)
{
	char cn[256];

	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
				      sizeof(cn)) <= 0)
		return 0;
	for (; *names; names++)
		if (substring ? strstr(cn, *names) != NULL : strcmp(cn, *names) == 0)
			return 1;
	return 0;
}

/* AMT's pre-provisioning TLS chain from the CSME On-Die CA (AMT 19+, Tiger Lake+ reported;
 * docs/amt-transport.md "Pre-provisioning TLS"), in the shape rpc-go checks
 * (internal/certs/lmsTls.go): 4 or 6 certificates, leaf "AMT RCFG" or "iAMT CSME IDevID
 * RCFG", the certificate at depth 3 a "ROM CA"/"ROM DE" whose issuer's OU begins with an
 * ODCA prefix; with odca_roots set, the chain verifies to one of them at the host's time,
 * else each certificate is checked to be signed by the next (shape only: the device is then
 * authenticated by its one-time password, R-PROV-05, as with a self-signed certificate).
 * @return 1 accepted, 0 refused (s->tls_why says why). */
static int verify_odca(struct at_link *l, struct at_session *s, STACK_OF(X509) *peer)
{
	static const char *const leaf_cns[] = {"AMT RCFG", "iAMT CSME IDevID RCFG", NULL};
	static const char *const rom_cns[] = {"ROM CA", "ROM DE", NULL};
	static const char *const ou_prefixes[] = {"ODCA 2 CSME", "On Die CSME", NULL};
	int n = sk_X509_num(peer), ou_ok = 0, pos = -1;
	X509 *leaf = sk_X509_value(peer, 0), *rom = n > 3 ? sk_X509_value(peer, 3) : NULL;
	X509_NAME *iss = rom ? X509_get_issuer_name(rom) : NULL;

	if ((n != 4 && n != 6) || !cn_is(leaf, leaf_cns, 0) || !cn_is(rom, rom_cns, 1)) {
		snprintf(s->tls_why, sizeof(s->tls_why),
			 "provisioning mode accepts AMT's own self-signed certificate or its On-Die CA "
			 "chain (4 or 6 certificates, leaf \"AMT RCFG\", a ROM CA at depth 3); the "
			 "device presented %d certificate(s) of another shape", n);
		return 0;
	}
	while (!ou_ok && iss && (pos = X509_NAME_get_index_by_NID(iss, NID_organizationalUnitName,
								   pos)) >= 0) {
		ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(iss, pos));

		for (const char *const *p = ou_prefixes; d && *p && !ou_ok; p++)
			ou_ok = (size_t)ASN1_STRING_length(d) >= strlen(*p) &&
				!memcmp(ASN1_STRING_get0_data(d), *p, strlen(*p));
	}
	if (!ou_ok) {
		snprintf(s->tls_why, sizeof(s->tls_why),
			 "the device's On-Die CA chain: the ROM CA's issuer has no ODCA organizational "
			 "unit (\"ODCA 2 CSME\" or \"On Die CSME\")");
		return 0;
	}
	if (s->in->odca_roots) {
		X509_STORE *st = X509_STORE_new();
		X509_STORE_CTX *vc = X509_STORE_CTX_new();
		int good = 0, e = X509_V_ERR_UNSPECIFIED;

		for (int i = 0; st && i < sk_X509_num(s->in->odca_roots); i++)
			X509_STORE_add_cert(st, sk_X509_value(s->in->odca_roots, i));
		if (st && vc && X509_STORE_CTX_init(vc, st, leaf, peer) == 1) {
			X509_STORE_CTX_set_time(vc, 0, (time_t)s->in->host->now(s->in->host));
			good = X509_verify_cert(vc) == 1;
			e = X509_STORE_CTX_get_error(vc);
		}
		X509_STORE_CTX_free(vc);
		X509_STORE_free(st);
		if (!good) {
			snprintf(s->tls_why, sizeof(s->tls_why),
				 "the device's On-Die CA chain does not verify to the transport's "
				 "odca_roots (%s)", X509_verify_cert_error_string(e));
			return 0;
		}
		return pin_leaf(l, s, leaf, "AMT On-Die CA chain (verified to odca_roots), leaf");
	}
	for (int i = 0; i + 1 < n; i++)
		if (X509_NAME_cmp(X509_get_issuer_name(sk_X509_value(peer, i)),
				  X509_get_subject_name(sk_X509_value(peer, i + 1))) != 0 ||
		    X509_verify(sk_X509_value(peer, i),
				X509_get0_pubkey(sk_X509_value(peer, i + 1))) != 1) {
			snprintf(s->tls_why, sizeof(s->tls_why),
				 "the device's On-Die CA chain is broken: certificate %d is not issued "
				 "by certificate %d", i, i + 1);
			return 0;
		}
	return pin_leaf(l, s, leaf, "AMT On-Die CA chain (shape only: odca_roots not set), leaf");
}

static int verify_provisioning(int ok, X509_STORE_CTX *xs)
{
	struct at_link *l = link_of(xs);
	struct at_session *s = l ? l->cur : NULL;
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(xs);
	X509 *leaf = chain && sk_X509_num(chain) ? sk_X509_value(chain, 0) : NULL;
	int e = X509_STORE_CTX_get_error(xs);
	EVP_PKEY *pub;

	if (!s || !leaf)
		return 0;
	{
		/* What the device sent: more than one certificate is its On-Die CA chain or
		 * nothing acceptable. */
		STACK_OF(X509) *peer = X509_STORE_CTX_get0_untrusted(xs);

		if (peer && sk_X509_num(peer) > 1) {
			if (!verify_odca(l, s, peer))
				return 0;
			X509_STORE_CTX_set_error(xs, X509_V_OK);
			return 1;
		}
	}
	if (ok && e == X509_V_OK && sk_X509_num(chain) == 1)
		goto check_leaf; /* already accepted at depth 0 */
	if (sk_X509_num(chain) != 1 || X509_STORE_CTX_get_error_depth(xs) != 0 ||
	    (e != X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT && e != X509_V_OK)) {
		snprintf(s->tls_why, sizeof(s->tls_why),
			 "provisioning mode accepts only AMT's own self-signed certificate; the "
			 "device presented %d certificate(s) (%s)",
			 chain ? sk_X509_num(chain) : 0, X509_verify_cert_error_string(e));
		return 0;
	}
check_leaf:
	pub = X509_get0_pubkey(leaf);
	/* Not X509_check_issued(): AMT's certificate has no keyCertSign usage. */
	if (X509_NAME_cmp(X509_get_subject_name(leaf), X509_get_issuer_name(leaf)) != 0 || !pub ||
	    X509_verify(leaf, pub) != 1) {
		snprintf(s->tls_why, sizeof(s->tls_why),
			 "device certificate is not validly self-signed");
		return 0;
	}
	if (s->in->cfg.self_signed_name_check && !names_target(s, leaf)) {
		snprintf(s->tls_why, sizeof(s->tls_why),
			 "self-signed device certificate does not name this session's address %s%s%s; "
			 "it is accepted only for the device it belongs to",
			 s->address, s->fqdn ? " or " : "", s->fqdn ? s->fqdn : "");
		return 0;
	}
	if (!pin_leaf(l, s, leaf, "AMT self-signed certificate"))
		return 0;
	/* Accepted: clear the self-signed error so libcurl's own verify-result check passes. */
	X509_STORE_CTX_set_error(xs, X509_V_OK);
	return 1;
}

static int verify_managed(int ok, X509_STORE_CTX *xs)
{
	struct at_link *l = link_of(xs);
	struct at_session *s = l ? l->cur : NULL;
	int e = X509_STORE_CTX_get_error(xs);

	if (!s)
		return 0;
	if (!ok) {
		const char *hint = "";

		if (e == X509_V_ERR_CERT_REVOKED)
			hint = " (revoked: listed in the CRL)";
		else if (e == X509_V_ERR_UNABLE_TO_GET_CRL)
			hint = " (the CRL does not cover this certificate's issuer)";
		else if (e == X509_V_ERR_CRL_HAS_EXPIRED)
			hint = " (the CRL is out of date)";
		snprintf(s->tls_why, sizeof(s->tls_why),
			 "device certificate rejected at depth %d: %s%s",
			 X509_STORE_CTX_get_error_depth(xs), X509_verify_cert_error_string(e), hint);
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(xs) == 0)
		keep_peer(l, X509_STORE_CTX_get_current_cert(xs));
	return 1;
}

CURLcode at_tls_ctx_cb(CURL *curl, void *sslctx, void *userp)
{
	SSL_CTX *ctx = sslctx;
	struct at_link *l = userp;
	struct at_session *s = l->cur;

	(void)curl;
	CRYPTO_THREAD_run_once(&ex_once, ex_init);
	if (!s || ex_index < 0 || !SSL_CTX_set_ex_data(ctx, ex_index, l))
		return CURLE_SSL_CERTPROBLEM;
	/* A kept-alive connection waits for the device's next session: it holds no I/O
	 * buffers meanwhile. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (s->amt_major > 0 && s->amt_major < 12 && s->in->cfg.legacy_tls) {
		/* AMT below 12.0 speaks TLS 1.0/1.1 only (AMT-PROTOCOL.md 12.2). */
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
	}
	{
		/* The connection's own store, replacing the one libcurl built: its verification
		 * flags (libcurl's partial-chain and trusted-first) are kept, its anchors are
		 * up-references of certificates parsed once (none in PROVISIONING mode: the
		 * verify callback decides), so nothing is parsed per connection (issue 13). */
		X509_STORE *old = SSL_CTX_get_cert_store(ctx), *st = X509_STORE_new();

		if (!st)
			return CURLE_OUT_OF_MEMORY;
		if (old && X509_VERIFY_PARAM_set1(X509_STORE_get0_param(st),
						  X509_STORE_get0_param(old)) != 1) {
			X509_STORE_free(st);
			return CURLE_OUT_OF_MEMORY;
		}
		/* Certificates and CRLs are judged at the host's time, so a site on a test
		 * clock (docs/lifecycle.md) sees the validity the rest of amtprov sees. */
		X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(st),
					   (time_t)s->in->host->now(s->in->host));
		if (s->mode == AMTPROV_TRANSPORT_MANAGED) {
			const struct at_anchors *a = l->anchors;
			int ok = a != NULL;

			for (int i = 0; ok && i < sk_X509_num(a->certs); i++)
				ok = X509_STORE_add_cert(st, sk_X509_value(a->certs, i)) == 1;
			for (int i = 0; ok && i < sk_X509_CRL_num(a->crls); i++)
				ok = X509_STORE_add_crl(st, sk_X509_CRL_value(a->crls, i)) == 1;
			if (!ok) {
				X509_STORE_free(st);
				ERR_clear_error();
				snprintf(s->tls_why, sizeof(s->tls_why),
					 "the CA bundle (ca_bundle_pem) holds no usable PEM "
					 "certificate");
				return CURLE_SSL_CACERT_BADFILE;
			}
		}
		SSL_CTX_set_cert_store(ctx, st); /* frees libcurl's */
	}
	if (s->mode == AMTPROV_TRANSPORT_PROVISIONING) {
		/* Up-references of the instance's parsed identity: no PEM parsing and no
		 * key check per connection (at_ident_get checked the pair once). */
		if (s->ident) {
			if (SSL_CTX_use_certificate(ctx, s->ident->leaf) != 1 ||
			    SSL_CTX_use_PrivateKey(ctx, s->ident->key) != 1)
				return CURLE_SSL_CERTPROBLEM;
			SSL_CTX_clear_chain_certs(ctx);
			for (int i = 0; i < sk_X509_num(s->ident->chain); i++)
				if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(s->ident->chain, i)) != 1)
					return CURLE_SSL_CERTPROBLEM;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_provisioning);
	} else {
		if (s->crl) {
			X509_STORE *st = SSL_CTX_get_cert_store(ctx);

			if (!st || X509_STORE_add_crl(st, s->crl) != 1)
				return CURLE_SSL_CRL_BADFILE;
			X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_managed);
	}
	return CURLE_OK;
}

static int has_eku(X509 *x, int nid)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	int found = 0;

	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku); i++)
		if (OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == nid)
			found = 1;
	EXTENDED_KEY_USAGE_free(eku);
	return found;
}

static int has_amt_oid(X509 *x)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	char txt[80];
	int found = 0;

	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku); i++) {
		OBJ_obj2txt(txt, sizeof(txt), sk_ASN1_OBJECT_value(eku, i), 1);
		if (!strcmp(txt, "2.16.840.1.113741.1.2.3"))
			found = 1;
	}
	EXTENDED_KEY_USAGE_free(eku);
	if (!found) {
		X509_NAME *nm = X509_get_subject_name(x);
		int pos = -1;

		while (!found &&
		       (pos = X509_NAME_get_index_by_NID(nm, NID_organizationalUnitName, pos)) >= 0) {
			ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, pos));
			const char *want = "Intel(R) Client Setup Certificate";

			found = d && (size_t)ASN1_STRING_length(d) == strlen(want) &&
				!memcmp(ASN1_STRING_get0_data(d), want, strlen(want));
		}
	}
	return found;
}

static void ident_free(struct at_ident *id)
{
	if (!id)
		return;
	X509_free(id->leaf);
	sk_X509_pop_free(id->chain, X509_free);
	EVP_PKEY_free(id->key);
	free(id);
}

int at_odca_load(struct at_instance *in, struct amtprov_error *err)
{
	const char *path = in->cfg.odca_roots;
	FILE *f;
	X509 *x;

	if (!path || !path[0])
		return AMTPROV_OK;
	f = fopen(path, "r");
	if (!f)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "odca_roots",
					 "odca_roots: cannot read %s", path);
	in->odca_roots = sk_X509_new_null();
	while (in->odca_roots && (x = PEM_read_X509(f, NULL, NULL, NULL)))
		if (!sk_X509_push(in->odca_roots, x))
			X509_free(x);
	fclose(f);
	ERR_clear_error();
	if (!in->odca_roots || !sk_X509_num(in->odca_roots)) {
		sk_X509_pop_free(in->odca_roots, X509_free);
		in->odca_roots = NULL;
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "odca_roots",
					 "odca_roots: %s holds no PEM certificate", path);
	}
	return AMTPROV_OK;
}

void at_idents_free(struct at_instance *in)
{
	sk_X509_pop_free(in->odca_roots, X509_free);
	in->odca_roots = NULL;
	while (in->anchors_list) {
		struct at_anchors *a = in->anchors_list;

		in->anchors_list = a->next;
		at_anchors_put(a);
	}
	in->n_anchors = 0;
	free(in->link_key_pem);
	in->link_key_pem = NULL;
	while (in->idents) {
		struct at_ident *id = in->idents;

		in->idents = id->next;
		ident_free(id);
	}
}

/* Parses and checks one identity (leaf first in @p chain_pem). */
static int ident_parse(struct at_instance *in, struct at_ident *id, const char *chain_pem,
		       const struct amtprov_secret *key_pem, struct amtprov_error *err)
{
	BIO *b = BIO_new_mem_buf(chain_pem, -1);
	X509 *x;

	if (!b)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	id->chain = sk_X509_new_null();
	while (id->chain && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if (!id->leaf)
			id->leaf = x;
		else if (!sk_X509_push(id->chain, x))
			X509_free(x);
	}
	BIO_free(b);
	ERR_clear_error();
	if (!id->leaf)
		return amtprov_error_set(err, AMTPROV_E_PARSE, "client_chain_pem",
					 "no PEM certificate in the provisioning certificate chain");
	b = BIO_new_mem_buf(key_pem->data, (int)key_pem->len);
	id->key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	ERR_clear_error();
	if (!id->key)
		return amtprov_error_set(err, AMTPROV_E_PARSE, "client_key_pem",
					 "the provisioning certificate's key is not a PEM private key");
	if (X509_check_private_key(id->leaf, id->key) != 1) {
		ERR_clear_error();
		return amtprov_error_set(err, AMTPROV_E_VERIFY, "client_key_pem",
					 "the key does not belong to the provisioning certificate");
	}
	if (!in->cfg.precheck_provisioning_cert)
		return AMTPROV_OK;
	/* AMT refuses these in the handshake without saying why; say it here (R-PC-01). */
	if (!has_amt_oid(id->leaf))
		return amtprov_error_set(err, AMTPROV_E_VERIFY, "client_chain_pem",
					 "provisioning certificate has neither the AMT provisioning "
					 "EKU OID 2.16.840.1.113741.1.2.3 nor OU \"Intel(R) Client "
					 "Setup Certificate\": AMT would refuse it");
	if (!has_eku(id->leaf, NID_server_auth))
		return amtprov_error_set(err, AMTPROV_E_VERIFY, "client_chain_pem",
					 "provisioning certificate lacks EKU serverAuth: AMT would "
					 "refuse it");
	return AMTPROV_OK;
}

/* At most this many identities are kept per instance (a site has one provisioning
 * certificate; a renewal adds a second); beyond it the oldest unused one goes. */
#define AT_MAX_IDENTS 8

int at_ident_get(struct at_instance *in, const char *chain_pem,
		 const struct amtprov_secret *key_pem, struct at_ident **out,
		 struct amtprov_error *err)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char sep = 0;
	struct at_ident *id, **pp;
	size_t count = 0;
	int ok, rc;

	ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(c, chain_pem, strlen(chain_pem)) && EVP_DigestUpdate(c, &sep, 1) &&
	     EVP_DigestUpdate(c, key_pem->data, key_pem->len) && EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	if (!ok || mdlen != 32)
		return amtprov_error_set(err, AMTPROV_E_CRYPTO, NULL, "SHA-256 failed");
	for (id = in->idents; id; id = id->next) {
		if (!memcmp(id->id, md, 32)) {
			*out = id;
			return AMTPROV_OK;
		}
		count++;
	}
	id = calloc(1, sizeof(*id));
	if (!id)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	rc = ident_parse(in, id, chain_pem, key_pem, err);
	if (rc != AMTPROV_OK) {
		ident_free(id);
		return rc;
	}
	memcpy(id->id, md, 32);
	if (count >= AT_MAX_IDENTS) {
		/* Drop the oldest that no session or link holds. */
		struct at_ident **victim = NULL;

		for (pp = &in->idents; *pp; pp = &(*pp)->next) {
			int used = 0;

			for (struct at_session *s = in->sessions; s && !used; s = s->next)
				used = s->ident == *pp;
			for (struct at_link *l = in->idle_head; l && !used; l = l->idle_next)
				used = l->ident == *pp;
			if (!used)
				victim = pp;
		}
		if (victim) {
			struct at_ident *v = *victim;

			*victim = v->next;
			ident_free(v);
		}
	}
	id->next = in->idents;
	in->idents = id;
	*out = id;
	return AMTPROV_OK;
}

/* ---- CA bundles and the link key (issue 13: no PEM parsed per connection) ---- */

/* At most this many parsed CA bundles per instance (a site has one or two); beyond it the
 * oldest goes from the list (links keep their own reference). */
#define AT_MAX_ANCHORS 16

void at_anchors_put(struct at_anchors *a)
{
	if (!a || --a->refs > 0)
		return;
	sk_X509_pop_free(a->certs, X509_free);
	sk_X509_CRL_pop_free(a->crls, X509_CRL_free);
	free(a);
}

/* What libcurl's CA blob loader took from the bundle: every certificate and CRL. NULL when
 * there is none, or on no memory (*oom set). */
static struct at_anchors *anchors_parse(const char *pem, int *oom)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	STACK_OF(X509_INFO) *inf = b ? PEM_X509_INFO_read_bio(b, NULL, NULL, NULL) : NULL;
	struct at_anchors *a = calloc(1, sizeof(*a));
	int ok = a && (a->certs = sk_X509_new_null()) && (a->crls = sk_X509_CRL_new_null());

	*oom = !b || !ok;
	if (a)
		a->refs = 1;
	for (int i = 0; ok && inf && i < sk_X509_INFO_num(inf); i++) {
		X509_INFO *it = sk_X509_INFO_value(inf, i);

		if (it->x509) {
			ok = sk_X509_push(a->certs, it->x509) > 0;
			if (ok)
				it->x509 = NULL;
		}
		if (ok && it->crl) {
			ok = sk_X509_CRL_push(a->crls, it->crl) > 0;
			if (ok)
				it->crl = NULL;
		}
		*oom = !ok;
	}
	sk_X509_INFO_pop_free(inf, X509_INFO_free);
	BIO_free(b);
	ERR_clear_error();
	if (!ok || !inf || sk_X509_num(a->certs) + sk_X509_CRL_num(a->crls) == 0) {
		at_anchors_put(a);
		return NULL;
	}
	return a;
}

int at_anchors_get(struct at_instance *in, const char *pem, const unsigned char id[32],
		   struct at_anchors **out)
{
	struct at_anchors *a, **pp;
	int oom = 0;

	*out = NULL;
	for (a = in->anchors_list; a; a = a->next) {
		if (!memcmp(a->id, id, 32)) {
			a->refs++;
			*out = a;
			return AMTPROV_OK;
		}
	}
	a = pem ? anchors_parse(pem, &oom) : NULL;
	if (!a)
		return oom ? AMTPROV_E_NOMEM : AMTPROV_OK;
	memcpy(a->id, id, 32);
	if (in->n_anchors >= AT_MAX_ANCHORS) {
		for (pp = &in->anchors_list; (*pp)->next; pp = &(*pp)->next)
			;
		at_anchors_put(*pp);
		*pp = NULL;
		in->n_anchors--;
	}
	a->next = in->anchors_list;
	in->anchors_list = a;
	in->n_anchors++;
	a->refs++; /* the list's and the caller's */
	*out = a;
	return AMTPROV_OK;
}

/* A CRL of an issuer no CA has (signed by a throw-away Ed25519 key): it only makes libcurl's
 * blob loader succeed (at_link.c); the store it lands in is replaced by at_tls_ctx_cb. */
static char *link_key_make(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509_CRL *crl = X509_CRL_new();
	X509_NAME *nm = X509_NAME_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, 0);
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long n;

	if (k && crl && nm && t && b &&
	    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				       (const unsigned char *)"amt-transport connection key, no CA",
				       -1, -1, 0) == 1 &&
	    X509_CRL_set_version(crl, 1) == 1 && X509_CRL_set_issuer_name(crl, nm) == 1 &&
	    X509_CRL_set1_lastUpdate(crl, t) == 1 && X509_CRL_sign(crl, k, NULL) > 0 &&
	    PEM_write_bio_X509_CRL(b, crl) == 1 && (n = BIO_get_mem_data(b, &p)) > 0 &&
	    (out = malloc((size_t)n + 1))) {
		memcpy(out, p, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(b);
	ASN1_TIME_free(t);
	X509_NAME_free(nm);
	X509_CRL_free(crl);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return out;
}

int at_link_key(struct at_instance *in, struct at_buf *out)
{
	if (!in->link_key_pem)
		in->link_key_pem = link_key_make();
	if (!in->link_key_pem)
		return AMTPROV_E_CRYPTO;
	at_buf_add(out, in->link_key_pem);
	return AMTPROV_OK;
}

X509_CRL *at_crl_parse(const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);

	if (!crl) {
		BIO *b = BIO_new_mem_buf(buf, (int)len);

		crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
	}
	ERR_clear_error();
	return crl;
}
