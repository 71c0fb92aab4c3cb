/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device's certificate and key store as WS-Man shows it (AMT-PROTOCOL.md §8.5, §8.6):
 * AMT_PublicKeyManagementService, AMT_PublicKeyCertificate, AMT_PublicPrivateKeyPair,
 * AMT_TLSCredentialContext and AMT_TLSSettingData. Keys come from the fleet's pool of
 * pre-generated keys; the firmware's generation time is modelled as response latency.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "wsman_int.h"

#define PKMS_NAME "Intel(r) AMT PublicKey Management Service"
/* wsman-messages sends the first spelling, AMT answers with the second. */
#define TLS_COLLECTION_REQ "TLSProtocolEndpointInstances Collection"
#define TLS_COLLECTION "TLSProtocolEndpoint Instances Collection"

static struct tls_keypool *g_pool;

void wsman_set_keypool(struct tls_keypool *pool)
{
	g_pool = pool;
}

/* ---- store helpers ------------------------------------------------------------------------ */

static int cert_index(const struct device *d, uint32_t h)
{
	for (int i = 0; i < d->n_certs; i++)
		if (d->certs[i].handle == h)
			return i;
	return -1;
}

static int key_index(const struct device *d, uint32_t h)
{
	for (int i = 0; i < d->n_keys; i++)
		if (d->keys[i].handle == h)
			return i;
	return -1;
}

static X509 *b64_x509(const char *b64)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t n = 0;
	X509 *x = NULL;

	if (sim_b64_decode(b64, &der, &n) != 0)
		return NULL;
	p = der;
	if (n && n < 0x7fffffff)
		x = d2i_X509(NULL, &p, (long)n);
	/* Trailing garbage means this was not one DER certificate. */
	if (x && p != der + n) {
		X509_free(x);
		x = NULL;
	}
	free(der);
	return x;
}

static EVP_PKEY *pem_key(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

static char *key_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *m;
	char *s = NULL;

	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) {
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

/* The stored key whose public half is @p pub, or -1. */
static int key_for_pub(const struct device *d, const EVP_PKEY *pub)
{
	for (int i = 0; i < d->n_keys; i++) {
		EVP_PKEY *k = pem_key(d->keys[i].pem);
		int eq = k ? EVP_PKEY_eq(k, pub) : 0;

		EVP_PKEY_free(k);
		if (eq == 1)
			return i;
	}
	return -1;
}

static bool cert_in_use(const struct device *d, uint32_t h)
{
	if (d->tls_remote.cert_handle == h || d->tls_local.cert_handle == h ||
	    d->ieee8021x.client_cert_handle == h || d->ieee8021x.root_cert_handle == h)
		return true;
	for (int i = 0; i < d->n_ctx; i++)
		if (d->ctxs[i].cert_handle == h)
			return true;
	for (int i = 0; i < d->n_wifi; i++)
		if (d->wifi[i].client_cert_handle == h || d->wifi[i].ca_cert_handle == h)
			return true;
	return false;
}

static void name_str(const X509_NAME *n, char *out, size_t size)
{
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *m;

	out[0] = '\0';
	if (!b)
		return;
	/* AMT's form: "C=US,O=Org,CN=name", forward order, no spaces. */
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_SEP_COMMA_PLUS | XN_FLAG_FN_SN |
						ASN1_STRFLGS_UTF8_CONVERT) >= 0) {
		BIO_get_mem_ptr(b, &m);
		snprintf(out, size, "%.*s", (int)m->length, m->data);
	}
	BIO_free(b);
}

/* ---- AMT_PublicKeyCertificate ------------------------------------------------------------ */

int r_pubcert(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	char id[64], name[512];
	X509 *x;

	if (idx < 0 || idx >= d->n_certs)
		return -1;
	snprintf(id, sizeof(id), CERT_ID_PREFIX "%u", d->certs[idx].handle);
	sim_strlcpy(key, id, ks);
	x = b64_x509(d->certs[idx].der_b64);
	wm_ps(b, "ElementName", "Intel(r) AMT Certificate");
	wm_ps(b, "InstanceID", id);
	if (x) {
		name_str(X509_get_issuer_name(x), name, sizeof(name));
		wm_ps(b, "Issuer", name);
	}
	wm_pb(b, "ReadOnlyCertificate", d->certs[idx].read_only);
	if (x) {
		name_str(X509_get_subject_name(x), name, sizeof(name));
		wm_ps(b, "Subject", name);
	}
	wm_pb(b, "TrustedRootCertficate", d->certs[idx].trusted_root); /* sic, as the firmware */
	wm_ps(b, "X509Certificate", d->certs[idx].der_b64);
	X509_free(x);
	return 0;
}

int d_pubcert(struct device *d, int idx, const struct wreq *w, struct http_response *r)
{
	struct dev_cert *c = &d->certs[idx];

	if (c->read_only) {
		wm_fault_access(r, w, "The certificate is read-only.");
		return -1;
	}
	if (cert_in_use(d, c->handle)) {
		wm_fault_internal(r, w, "The certificate is in use (TLS, 802.1X or wireless).");
		return -1;
	}
	device_audit(d, "certificate handle %u deleted", c->handle);
	free(c->der_b64);
	memmove(c, c + 1, (size_t)(d->n_certs - idx - 1) * sizeof(*c));
	d->n_certs--;
	return 0;
}

/* ---- AMT_PublicPrivateKeyPair ------------------------------------------------------------ */

int r_keypair(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	char id[64];
	EVP_PKEY *k;
	unsigned char *der = NULL;
	int n;
	char *b64 = NULL;

	if (idx < 0 || idx >= d->n_keys)
		return -1;
	snprintf(id, sizeof(id), KEY_ID_PREFIX "%u", d->keys[idx].handle);
	sim_strlcpy(key, id, ks);
	k = pem_key(d->keys[idx].pem);
	/* DERKey: the public half only, PKCS#1 RSAPublicKey (AMT-PROTOCOL.md §8.6). */
	n = k ? i2d_PublicKey(k, &der) : -1;
	if (n > 0)
		b64 = sim_b64_encode(der, (size_t)n);
	wm_ps(b, "DERKey", b64 ? b64 : "");
	wm_ps(b, "ElementName", "Intel(r) AMT Key");
	wm_ps(b, "InstanceID", id);
	free(b64);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	return 0;
}

int d_keypair(struct device *d, int idx, const struct wreq *w, struct http_response *r)
{
	struct dev_key *k = &d->keys[idx];
	EVP_PKEY *pk = pem_key(k->pem);

	for (int i = 0; pk && i < d->n_certs; i++) {
		X509 *x = b64_x509(d->certs[i].der_b64);
		bool used = x && EVP_PKEY_eq(X509_get0_pubkey(x), pk) == 1 &&
			    cert_in_use(d, d->certs[i].handle);

		X509_free(x);
		if (used) {
			EVP_PKEY_free(pk);
			wm_fault_internal(r, w, "The key's certificate is in use.");
			return -1;
		}
	}
	EVP_PKEY_free(pk);
	device_audit(d, "key handle %u deleted", k->handle);
	free(k->pem);
	memmove(k, k + 1, (size_t)(d->n_keys - idx - 1) * sizeof(*k));
	d->n_keys--;
	return 0;
}

/* ---- AMT_PublicKeyManagementService ------------------------------------------------------ */

int r_pkms(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	if (idx)
		return -1;
	sim_strlcpy(key, PKMS_NAME, ks);
	wm_ps(b, "CreationClassName", "AMT_PublicKeyManagementService");
	wm_ps(b, "ElementName", PKMS_NAME);
	wm_pi(b, "EnabledState", 5);
	wm_ps(b, "Name", PKMS_NAME);
	wm_pi(b, "RequestedState", 12);
	wm_ps(b, "SystemCreationClassName", "CIM_ComputerSystem");
	wm_ps(b, "SystemName", "Intel(r) AMT");
	return 0;
}

static void out_cert_ref(struct sbuf *out, const char *name, uint32_t h)
{
	char id[64];

	snprintf(id, sizeof(id), CERT_ID_PREFIX "%u", h);
	wm_pepr(out, name, AMT_URI, "AMT_PublicKeyCertificate", "InstanceID", id);
}

static void out_key_ref(struct sbuf *out, const char *name, uint32_t h)
{
	char id[64];

	snprintf(id, sizeof(id), KEY_ID_PREFIX "%u", h);
	wm_pepr(out, name, AMT_URI, "AMT_PublicPrivateKeyPair", "InstanceID", id);
}

static int add_cert(struct device *d, xmlNodePtr in, struct sbuf *out, bool root)
{
	char *blob;
	X509 *x;
	xmlChar *t = xmlNodeGetContent(xml_child(in, NULL, "CertificateBlob"));
	struct dev_cert *c;
	int rv = 0;

	if (!t)
		return 36;
	x = b64_x509((const char *)t);
	if (!x) {
		xmlFree(t);
		return 2063; /* INVALID_CERT */
	}
	blob = NULL;
	{
		unsigned char *der = NULL;
		int n = i2d_X509(x, &der);

		if (n > 0)
			blob = sim_b64_encode(der, (size_t)n);
		OPENSSL_free(der);
	}
	xmlFree(t);
	if (!blob) {
		rv = 1;
		goto out;
	}
	/* A trusted root must be a CA; any other certificate must belong to a key in the
	 * store (the store holds TLS/802.1X identities). [unconfirmed: which PT_STATUS real
	 * firmware uses for a missing key; INVALID_CERT here] */
	if (root ? X509_check_ca(x) == 0 : key_for_pub(d, X509_get0_pubkey(x)) < 0) {
		rv = 2063;
		goto out;
	}
	/* The firmware's algorithm rules for its own TLS and 802.1X identities.
	 * [recall: the PT_STATUS real firmware returns; INVALID_CERT here] */
	if (!root) {
		char why[256];

		if (!device_cert_strong_enough(d, x, "the certificate", why, sizeof(why))) {
			device_audit(d, "AddCertificate refused: %s", why);
			rv = 2063;
			goto out;
		}
	}
	for (int i = 0; i < d->n_certs; i++)
		if (!strcmp(d->certs[i].der_b64, blob)) {
			rv = 2058; /* DUPLICATE */
			goto out;
		}
	if (d->n_certs >= DEV_MAX_CERTS) {
		rv = 23; /* MAX_LIMIT_REACHED */
		goto out;
	}
	if (!device_flash_write(d)) {
		rv = 38;
		goto out;
	}
	c = &d->certs[d->n_certs++];
	memset(c, 0, sizeof(*c));
	c->handle = d->next_handle++;
	c->der_b64 = blob;
	c->trusted_root = root;
	blob = NULL;
	device_audit(d, "%s: handle %u", root ? "AddTrustedRootCertificate" : "AddCertificate",
		     c->handle);
	out_cert_ref(out, "CreatedCertificate", c->handle);
out:
	free(blob);
	X509_free(x);
	return rv;
}

static int m_add_root(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		      struct http_response *r)
{
	return add_cert(d, in, out, true);
}

static int m_add_cert(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		      struct http_response *r)
{
	return add_cert(d, in, out, false);
}

static int store_key(struct device *d, EVP_PKEY *k, struct sbuf *out, const char *outname,
		     const char *what)
{
	struct dev_key *dk;
	char *pem;

	if (key_for_pub(d, k) >= 0)
		return 2058;
	if (d->n_keys >= DEV_MAX_KEYS)
		return 23;
	if (!device_flash_write(d))
		return 38;
	pem = key_pem(k);
	if (!pem)
		return 1;
	dk = &d->keys[d->n_keys++];
	dk->handle = d->next_handle++;
	dk->pem = pem;
	device_audit(d, "%s: key handle %u", what, dk->handle);
	out_key_ref(out, outname, dk->handle);
	return 0;
}

static int m_genkey(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		    struct http_response *r)
{
	char alg[16], len[16];
	long long a, l;
	EVP_PKEY *k = NULL;
	int bits, rv;

	wm_arg(in, "KeyAlgorithm", alg, sizeof(alg));
	wm_arg(in, "KeyLength", len, sizeof(len));
	if (sim_parse_ll(alg, 0, 0, &a) != 0 || sim_parse_ll(len, 1, 65536, &l) != 0)
		return 36; /* RSA (0) is the only algorithm */
	if (!g_pool || !g_pool->n)
		return 1;
	bits = EVP_PKEY_get_bits(g_pool->keys[0]);
	if (device_needs_sha384_rsa3072(d) && l < 3072) {
		device_audit(d, "GenerateKeyPair refused: %lld bits (AMT 22 needs 3072 or more)", l);
		return 36; /* [recall: the PT_STATUS real firmware returns] */
	}
	if (l != bits) {
		/* The pool holds keys of one length: make this one now (blocks the loop for
		 * the key's generation; tests with many such devices size key_bits instead). */
		if (l != 2048 && l != 3072 && l != 4096)
			return 2062; /* INVALID_KEY */
		k = EVP_RSA_gen((unsigned)l);
		if (!k)
			return 1;
		device_audit(d, "GenerateKeyPair: %lld bits, not the pool's, generated a key", l);
		rv = store_key(d, k, out, "KeyPair", "GenerateKeyPair");
		EVP_PKEY_free(k);
		if (rv == 0)
			r->delay_ms += d->keygen_ms;
		return rv;
	}
	/* Draw the next pool key this device does not hold yet (neither stored nor its own
	 * TLS key): the pool is shared across the fleet and reused round-robin. */
	for (int tries = 0; tries < g_pool->n; tries++) {
		EVP_PKEY *cand = g_pool->keys[g_pool->next++ % g_pool->n];
		EVP_PKEY *self = d->self_key_pem ? pem_key(d->self_key_pem) : NULL;
		bool own = self && EVP_PKEY_eq(self, cand) == 1;

		EVP_PKEY_free(self);
		if (!own && key_for_pub(d, cand) < 0) {
			k = cand;
			break;
		}
	}
	if (k) {
		rv = store_key(d, k, out, "KeyPair", "GenerateKeyPair");
	} else {
		/* Pool too small for this device: generate one now (blocks the loop briefly;
		 * size key_pool to avoid it). */
		k = EVP_RSA_gen((unsigned)bits);
		if (!k)
			return 1;
		device_audit(d, "GenerateKeyPair: key pool exhausted for this device, generated a key");
		rv = store_key(d, k, out, "KeyPair", "GenerateKeyPair");
		EVP_PKEY_free(k);
	}
	/* Real firmware spends seconds here; the answer waits, the event loop does not. */
	if (rv == 0)
		r->delay_ms += d->keygen_ms;
	return rv;
}

static int m_addkey(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		    struct http_response *r)
{
	xmlChar *t = xmlNodeGetContent(xml_child(in, NULL, "KeyBlob"));
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t n = 0;
	EVP_PKEY *k = NULL;
	int rv;

	if (!t)
		return 36;
	if (sim_b64_decode((const char *)t, &der, &n) == 0 && n && n < 0x7fffffff) {
		p = der;
		k = d2i_AutoPrivateKey(NULL, &p, (long)n);
	}
	xmlFree(t);
	free(der);
	if (!k || EVP_PKEY_base_id(k) != EVP_PKEY_RSA) {
		EVP_PKEY_free(k);
		return 2062; /* INVALID_KEY */
	}
	if (device_needs_sha384_rsa3072(d) && EVP_PKEY_get_bits(k) < 3072) {
		device_audit(d, "AddKey refused: RSA %d bits (AMT 22 needs 3072 or more)",
			     EVP_PKEY_get_bits(k));
		EVP_PKEY_free(k);
		return 2062; /* INVALID_KEY */
	}
	rv = store_key(d, k, out, "CreatedKey", "AddKey");
	EVP_PKEY_free(k);
	return rv;
}

static int m_pkcs10(struct device *d, xmlNodePtr in, const struct wreq *w, struct sbuf *out,
		    struct http_response *r)
{
	char id[256], alg[16];
	uint32_t h;
	long long a;
	int ki, n;
	xmlChar *t;
	unsigned char *der = NULL, *sder = NULL;
	const unsigned char *p;
	size_t len = 0;
	X509_REQ *req = NULL;
	EVP_PKEY *k = NULL;
	char *b64;
	int rv = 36;

	wm_ref_selector(xml_child(in, NULL, "KeyPair"), id, sizeof(id));
	wm_arg(in, "SigningAlgorithm", alg, sizeof(alg));
	if (wm_parse_handle(id, KEY_ID_PREFIX, &h) != 0 || (ki = key_index(d, h)) < 0 ||
	    sim_parse_ll(alg, 0, 1, &a) != 0)
		return 36;
	if (a == 0 && d->ver_major >= 18)
		return 2066; /* SHA-1 CSR signing is gone from CSME 18 */
	t = xmlNodeGetContent(xml_child(in, NULL, "NullSignedCertificateRequest"));
	if (!t)
		return 36;
	if (sim_b64_decode((const char *)t, &der, &len) == 0 && len && len < 0x7fffffff) {
		p = der;
		req = d2i_X509_REQ(NULL, &p, (long)len);
	}
	xmlFree(t);
	free(der);
	k = pem_key(d->keys[ki].pem);
	if (!req || !k)
		goto out;
	/* The client built the request around the AMT key; AMT signs it with that key. */
	if (EVP_PKEY_eq(X509_REQ_get0_pubkey(req), k) != 1) {
		rv = 2062;
		goto out;
	}
	if (!X509_REQ_sign(req, k, a ? EVP_sha256() : EVP_sha1())) {
		rv = 1;
		goto out;
	}
	n = i2d_X509_REQ(req, &sder);
	b64 = n > 0 ? sim_b64_encode(sder, (size_t)n) : NULL;
	OPENSSL_free(sder);
	if (!b64) {
		rv = 1;
		goto out;
	}
	wm_ps(out, "SignedCertificateRequest", b64);
	free(b64);
	device_audit(d, "GeneratePKCS10RequestEx: key handle %u, %s", h, a ? "SHA256" : "SHA1");
	rv = 0;
out:
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return rv;
}

const struct method pkms_methods[] = {
	{"AddTrustedRootCertificate", m_add_root},
	{"AddCertificate", m_add_cert},
	{"GenerateKeyPair", m_genkey},
	{"AddKey", m_addkey},
	{"GeneratePKCS10RequestEx", m_pkcs10},
	{NULL, NULL},
};

/* ---- AMT_TLSCredentialContext -------------------------------------------------------------- */

static int tls_ctx_index(const struct device *d, int nth)
{
	for (int i = 0; i < d->n_ctx; i++)
		if (!strcmp(d->ctxs[i].type, "TLS") && nth-- == 0)
			return i;
	return -1;
}

int r_tlsctx(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	int i = tls_ctx_index(d, idx);

	if (i < 0)
		return -1;
	snprintf(key, ks, CERT_ID_PREFIX "%u", d->ctxs[i].cert_handle);
	out_cert_ref(b, "ElementInContext", d->ctxs[i].cert_handle);
	wm_pepr(b, "ElementProvidingContext", AMT_URI, "AMT_TLSProtocolEndpointCollection",
		"ElementName", TLS_COLLECTION);
	return 0;
}

int c_tlsctx(struct device *d, xmlNodePtr inst, const struct wreq *w, struct sbuf *epr,
	     struct http_response *r)
{
	char id[256], coll[128];
	uint32_t h;
	int ci;
	X509 *x;
	bool has_key;
	struct dev_ctx *c;

	wm_ref_selector(xml_child(inst, NULL, "ElementInContext"), id, sizeof(id));
	wm_ref_selector(xml_child(inst, NULL, "ElementProvidingContext"), coll, sizeof(coll));
	if (wm_parse_handle(id, CERT_ID_PREFIX, &h) != 0 || (ci = cert_index(d, h)) < 0) {
		wm_fault_invalid(r, w, "ElementInContext does not name a certificate in the store.");
		return -1;
	}
	if (strcmp(coll, TLS_COLLECTION_REQ) != 0 && strcmp(coll, TLS_COLLECTION) != 0) {
		wm_fault_invalid(r, w, "ElementProvidingContext must be the TLS protocol endpoint collection.");
		return -1;
	}
	x = b64_x509(d->certs[ci].der_b64);
	has_key = x && key_for_pub(d, X509_get0_pubkey(x)) >= 0;
	X509_free(x);
	if (!has_key) {
		wm_fault_invalid(r, w, "The certificate has no private key in the store.");
		return -1;
	}
	if (tls_ctx_index(d, 0) >= 0) {
		wm_fault_exists(r, w, "A TLS credential context exists; Put or Delete it first.");
		return -1;
	}
	if (d->n_ctx >= DEV_MAX_CTX) {
		wm_fault_internal(r, w, "Too many credential contexts.");
		return -1;
	}
	c = &d->ctxs[d->n_ctx++];
	memset(c, 0, sizeof(*c));
	sim_strlcpy(c->type, "TLS", sizeof(c->type));
	c->cert_handle = h;
	sim_strlcpy(c->providing, TLS_COLLECTION, sizeof(c->providing));
	device_audit(d, "TLS credential context: certificate handle %u (applies at CommitChanges)", h);
	/* ResourceCreated as AMT answers: the selectors are the two references. */
	snprintf(id, sizeof(id), CERT_ID_PREFIX "%u", h);
	sbuf_add(epr, "<b:ReferenceParameters><c:ResourceURI>" AMT_URI "AMT_TLSCredentialContext"
		      "</c:ResourceURI><c:SelectorSet><c:Selector Name=\"ElementInContext\">"
		      "<b:EndpointReference><b:Address>http://schemas.xmlsoap.org/ws/2004/08/"
		      "addressing/role/anonymous</b:Address>");
	wm_refparams(epr, AMT_URI, "AMT_PublicKeyCertificate", "InstanceID", id);
	sbuf_add(epr, "</b:EndpointReference></c:Selector><c:Selector Name=\"ElementProvidingContext\">"
		      "<b:EndpointReference><b:Address>http://schemas.xmlsoap.org/ws/2004/08/"
		      "addressing/role/anonymous</b:Address>");
	wm_refparams(epr, AMT_URI, "AMT_TLSProtocolEndpointCollection", "ElementName", TLS_COLLECTION);
	sbuf_add(epr, "</b:EndpointReference></c:Selector></c:SelectorSet></b:ReferenceParameters>");
	return 0;
}

int d_tlsctx(struct device *d, int idx, const struct wreq *w, struct http_response *r)
{
	int i = tls_ctx_index(d, idx);

	if (i < 0) {
		wm_fault_selectors(r, w);
		return -1;
	}
	device_audit(d, "TLS credential context removed (certificate handle %u)", d->ctxs[i].cert_handle);
	memmove(&d->ctxs[i], &d->ctxs[i + 1], (size_t)(d->n_ctx - i - 1) * sizeof(d->ctxs[0]));
	d->n_ctx--;
	return 0;
}

/* ---- AMT_TLSSettingData ------------------------------------------------------------------- */

int r_tls(struct device *d, int idx, struct sbuf *b, char *key, size_t ks)
{
	const struct dev_tls_settings *t, *cn;
	const char *id;

	if (idx < 0 || idx > 1)
		return -1;
	cn = idx ? &d->tls_local : &d->tls_remote;
	/* After a Put the instance shows the new values; they take effect at CommitChanges. */
	t = d->tls_pending ? (idx ? &d->tls_local_pending : &d->tls_remote_pending) : cn;
	id = idx ? "Intel(r) AMT LMS TLS Settings" : "Intel(r) AMT 802.3 TLS Settings";
	sim_strlcpy(key, id, ks);
	wm_pb(b, "AcceptNonSecureConnections", t->accept_non_secure);
	wm_ps(b, "ElementName", id);
	wm_pb(b, "Enabled", t->enabled);
	wm_ps(b, "InstanceID", id);
	wm_pb(b, "MutualAuthentication", t->mutual_auth);
	if (d->ver_major > 16 || (d->ver_major == 16 && d->ver_minor >= 1))
		wm_pb(b, "NonSecureConnectionsSupported", false);
	for (int i = 0; i < cn->n_trusted_cn; i++)
		wm_ps(b, "TrustedCN", cn->trusted_cn[i]);
	return 0;
}

static int put_bool(xmlNodePtr inst, const char *name, bool *v)
{
	char s[16];
	xmlNodePtr n = xml_child(inst, NULL, name);

	if (!n)
		return 0;
	xml_text(n, s, sizeof(s));
	return wm_bool(s, v);
}

int p_tls(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	  struct http_response *r)
{
	struct dev_tls_settings remote = d->tls_pending ? d->tls_remote_pending : d->tls_remote;
	struct dev_tls_settings local = d->tls_pending ? d->tls_local_pending : d->tls_local;
	struct dev_tls_settings *t = idx ? &local : &remote, *active;
	char cns[DEV_MAX_TRUSTED_CN][64];
	int n_cn = 0;
	bool have_cn = false;

	if (put_bool(inst, "Enabled", &t->enabled) || put_bool(inst, "MutualAuthentication",
								 &t->mutual_auth) ||
	    put_bool(inst, "AcceptNonSecureConnections", &t->accept_non_secure)) {
		wm_fault_invalid(r, w, "Enabled, MutualAuthentication and AcceptNonSecureConnections are booleans.");
		return -1;
	}
	for (xmlNodePtr c = inst->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "TrustedCN"))
			continue;
		have_cn = true;
		if (n_cn >= DEV_MAX_TRUSTED_CN) {
			wm_fault_invalid(r, w, "Too many TrustedCN values.");
			return -1;
		}
		xml_text(c, cns[n_cn], sizeof(cns[0]));
		if (!cns[n_cn][0]) {
			wm_fault_invalid(r, w, "Empty TrustedCN.");
			return -1;
		}
		n_cn++;
	}
	if (idx == 1 && t->mutual_auth) {
		wm_fault_invalid(r, w, "Mutual authentication is not available on the local (LMS) interface.");
		return -1;
	}
	d->tls_remote_pending = remote;
	d->tls_local_pending = local;
	d->tls_pending = true;
	/* TrustedCN is the one setting that applies at once. */
	active = idx ? &d->tls_local : &d->tls_remote;
	if (have_cn) {
		memcpy(active->trusted_cn, cns, sizeof(cns));
		active->n_trusted_cn = n_cn;
	}
	device_audit(d, "AMT_TLSSettingData %s: Enabled=%d MutualAuthentication=%d "
		     "AcceptNonSecureConnections=%d (applies at CommitChanges)",
		     idx ? "LMS" : "802.3", t->enabled, t->mutual_auth, t->accept_non_secure);
	d->dirty = true;
	return 0;
}

int wm_commit_tls(struct device *d)
{
	int ci = tls_ctx_index(d, 0);
	uint32_t h = ci >= 0 ? d->ctxs[ci].cert_handle : 0;
	bool was_enabled = d->tls_remote.enabled;
	uint32_t was_handle = d->tls_remote.cert_handle;

	if (d->tls_pending) {
		/* Remote TLS needs a certificate to present. */
		if (d->tls_remote_pending.enabled && !h)
			return 2057; /* DATA_MISSING */
		d->tls_remote.enabled = d->tls_remote_pending.enabled;
		d->tls_remote.mutual_auth = d->tls_remote_pending.mutual_auth;
		d->tls_remote.accept_non_secure = d->tls_remote_pending.accept_non_secure;
		/* Enabling TLS on the LMS instance "succeeds but is ignored at commit". */
		d->tls_local.accept_non_secure = d->tls_local_pending.accept_non_secure;
		d->tls_pending = false;
	}
	d->tls_remote.cert_handle = h;
	if (was_enabled != d->tls_remote.enabled || was_handle != h) {
		d->tls_generation++;
		device_audit(d, "TLS: %s, certificate handle %u, mutual authentication %s",
			     d->tls_remote.enabled ? "enabled" : "disabled", h,
			     d->tls_remote.mutual_auth ? "on" : "off");
	}
	return 0;
}
