/* SPDX-License-Identifier: Apache-2.0 */
/* The CA contract: see ca_contract.h and docs/plugin-guide.md ("The CA contract"). */
#include "ca_contract.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "manifest.h"
#include "pki.h"
#include "plugin_host.h"

#define OID_CLIENT_AUTH "1.3.6.1.5.5.7.3.2"

#define WEB (1u << AMTPROV_PURPOSE_WEB_SERVER)
#define X8021X (1u << AMTPROV_PURPOSE_CLIENT_8021X)
#define PROV (1u << AMTPROV_PURPOSE_PROVISIONING)

/* What one check sees: the parsed answer. */
struct cc {
	const struct ca_contract *k;
	const struct amtprov_ca_result *res;
	X509 *leaf;
	STACK_OF(X509) *chain;
};

/* A check returns 1 (kept), 0 (broken: @p why says how) or -1 (out of memory). */
typedef int (*check_fn)(struct cc *c, char *why, size_t size);

/*
 * The last certificate parsed, kept for the caller that records it next (enroll.c's
 * record_issued): the same DER was parsed twice per certificate, and each X.509 parse sets up
 * an OpenSSL 3 decoder for its public key (issue 13). Keyed on the whole DER; shared by
 * reference (an X509 is immutable once parsed and reference counted).
 */
static pthread_mutex_t leaf_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *leaf_cache_der;
static size_t leaf_cache_len;
static X509 *leaf_cache;

X509 *ca_contract_leaf(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	unsigned char *copy;
	X509 *x = NULL;

	if (!der || !len || len > (size_t)LONG_MAX)
		return NULL;
	pthread_mutex_lock(&leaf_cache_lock);
	if (leaf_cache && leaf_cache_len == len && !memcmp(leaf_cache_der, der, len) &&
	    X509_up_ref(leaf_cache))
		x = leaf_cache;
	pthread_mutex_unlock(&leaf_cache_lock);
	if (x)
		return x;
	x = d2i_X509(NULL, &p, (long)len);
	ERR_clear_error();
	if (!x || p != der + len) {
		X509_free(x);
		return NULL;
	}
	copy = malloc(len);
	if (copy && X509_up_ref(x)) {
		memcpy(copy, der, len);
		pthread_mutex_lock(&leaf_cache_lock);
		free(leaf_cache_der);
		X509_free(leaf_cache);
		leaf_cache_der = copy;
		leaf_cache_len = len;
		leaf_cache = x;
		pthread_mutex_unlock(&leaf_cache_lock);
	} else {
		free(copy);
	}
	return x;
}

static int check_der(struct cc *c, char *why, size_t size)
{
	if (!c->res->cert_der || !c->res->cert_len) {
		snprintf(why, size, "the ISSUED answer carries no certificate (cert_der)");
		return 0;
	}
	c->leaf = ca_contract_leaf(c->res->cert_der, c->res->cert_len);
	if (!c->leaf) {
		snprintf(why, size, "cert_der is not one DER X.509 certificate");
		return 0;
	}
	return 1;
}

static int check_key(struct cc *c, char *why, size_t size)
{
	if (!c->k->request_key || pki_key_matches(c->leaf, c->k->request_key))
		return 1;
	snprintf(why, size, "the certificate certifies another public key than the request's "
		 "(the CA must keep the request's key)");
	return 0;
}

/* The SHA-2 size of the certificate's signature digest; 160 for SHA-1, 0 unknown. */
static int signature_digest_bits(X509 *x)
{
	int mdnid = NID_undef;

	if (!X509_get_signature_info(x, &mdnid, NULL, NULL, NULL))
		return 0;
	switch (mdnid) {
	case NID_sha1: return 160;
	case NID_sha224: return 224;
	case NID_sha256: return 256;
	case NID_sha384: return 384;
	case NID_sha512: return 512;
	default: return 0;
	}
}

/* What newer firmware demands (certificates.amt_crypto_policy; AMT 22: RSA 3072, SHA-384). */
static int check_strength(struct cc *c, char *why, size_t size)
{
	EVP_PKEY *pub = X509_get0_pubkey(c->leaf);
	int bits = pub ? EVP_PKEY_get_bits(pub) : 0, md = signature_digest_bits(c->leaf);

	/* The sizes are RSA's: AMT takes RSA keys only, and rule "key" already ties the
	 * certificate to the request's key. */
	if (c->k->min_key_bits > 0 && pub && EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA &&
	    bits < c->k->min_key_bits) {
		snprintf(why, size, "the certificate's key has %d bits; this device's firmware needs "
			 "at least %d (certificates.amt_crypto_policy)", bits, c->k->min_key_bits);
		return 0;
	}
	if (c->k->min_digest_bits > 0 && md < c->k->min_digest_bits) {
		snprintf(why, size, "the CA signed the certificate with %s; this device's firmware "
			 "needs SHA-%d or stronger (set the CA's hash algorithm or template to "
			 "SHA-%d; certificates.amt_crypto_policy)",
			 md == 160 ? "SHA-1" : md ? (md == 224 ? "SHA-224" : "SHA-256") : "an unknown digest",
			 c->k->min_digest_bits, c->k->min_digest_bits);
		return 0;
	}
	return 1;
}

static int check_subject(struct cc *c, char *why, size_t size)
{
	char cn[256];

	if (!c->k->fqdn || !*c->k->fqdn)
		return 1;
	if (pki_subject_cn(c->leaf, cn, sizeof(cn)) == 1 && strcasecmp(cn, c->k->fqdn) == 0)
		return 1;
	snprintf(why, size, "subject CN is '%.100s', not the requested FQDN '%.100s'",
		 pki_subject_cn(c->leaf, cn, sizeof(cn)) == 1 ? cn : "(none)", c->k->fqdn);
	return 0;
}

/* TLS clients match a host name against the dNSName SANs when there are any (RFC 6125), so
 * a SAN list without the FQDN makes the certificate useless for MANAGED mode. */
static int check_san(struct cc *c, char *why, size_t size)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);
	int dns = 0, found = 0;

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_IA5STRING *s;

		if (g->type != GEN_DNS)
			continue;
		dns++;
		s = g->d.dNSName;
		found = c->k->fqdn && (size_t)ASN1_STRING_length(s) == strlen(c->k->fqdn) &&
			strncasecmp((const char *)ASN1_STRING_get0_data(s), c->k->fqdn,
				    strlen(c->k->fqdn)) == 0;
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	if (!dns || found || !c->k->fqdn)
		return 1;
	snprintf(why, size, "the subjectAltName lists DNS names but not the FQDN '%.100s' (TLS "
		 "clients check only the SANs then)", c->k->fqdn);
	return 0;
}

static int check_eku(struct cc *c, char *why, size_t size)
{
	char have[200];

	pki_eku_text(c->leaf, have, sizeof(have));
	switch (c->k->purpose) {
	case AMTPROV_PURPOSE_WEB_SERVER:
		if (pki_has_eku(c->leaf, PKI_OID_SERVER_AUTH))
			return 1;
		snprintf(why, size, "extendedKeyUsage must include serverAuth (%s); it is: %s "
			 "(R-WS-01)", PKI_OID_SERVER_AUTH, have);
		return 0;
	case AMTPROV_PURPOSE_CLIENT_8021X:
		if (pki_has_eku(c->leaf, OID_CLIENT_AUTH) &&
		    !pki_has_eku(c->leaf, PKI_OID_SERVER_AUTH))
			return 1;
		snprintf(why, size, "extendedKeyUsage must include clientAuth (%s) and not "
			 "serverAuth; it is: %s (R-8021X-02)", OID_CLIENT_AUTH, have);
		return 0;
	case AMTPROV_PURPOSE_PROVISIONING:
		if (pki_has_eku(c->leaf, PKI_OID_SERVER_AUTH) &&
		    (pki_has_eku(c->leaf, PKI_OID_AMT_PROVISIONING) || pki_has_ou(c->leaf, PKI_AMT_OU)))
			return 1;
		snprintf(why, size, "extendedKeyUsage must include serverAuth and %s (or the "
			 "subject OU \"%s\"); it is: %s (R-PC-01)", PKI_OID_AMT_PROVISIONING,
			 PKI_AMT_OU, have);
		return 0;
	default:
		return 1;
	}
}

/* Verifies the leaf with the chain's certificates as the only anchors, as the MANAGED
 * transport does (a full path to a self-signed root; no time check: the site's clock may be
 * injected, and validity is the CA's business). */
static int chain_verifies(struct cc *c, char *why, size_t size)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok = -1;

	if (st && ctx) {
		for (int i = 0; i < sk_X509_num(c->chain); i++)
			X509_STORE_add_cert(st, sk_X509_value(c->chain, i));
		X509_STORE_set_flags(st, X509_V_FLAG_NO_CHECK_TIME);
		if (X509_STORE_CTX_init(ctx, st, c->leaf, c->chain) == 1) {
			ok = X509_verify_cert(ctx) == 1;
			if (!ok)
				snprintf(why, size, "chain_pem does not verify the certificate up to "
					 "a self-signed root: %s (give the whole issuing chain, root "
					 "included)",
					 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		}
	}
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	ERR_clear_error();
	return ok;
}

/*
 * The last chain parsed, kept for the next answer: a CA sends the same chain_pem with every
 * certificate, and parsing it (OpenSSL 3 sets up a decoder for each public key) was ~3 % of
 * amtprovd's CPU per device (issue 13). Keyed on the whole text; certificates are shared
 * by reference (X509 objects are immutable once parsed and reference counted).
 */
static pthread_mutex_t chain_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static char *chain_cache_pem;
static STACK_OF(X509) *chain_cache;

/* A copy of @p chain with a reference to each certificate; NULL on no memory. */
static STACK_OF(X509) *chain_up_ref(STACK_OF(X509) *chain)
{
	STACK_OF(X509) *out = sk_X509_new_null();

	for (int i = 0; out && i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);

		if (!X509_up_ref(x))
			goto fail;
		if (!sk_X509_push(out, x)) {
			X509_free(x);
			goto fail;
		}
	}
	return out;
fail:
	sk_X509_pop_free(out, X509_free);
	return NULL;
}

/* The parsed @p pem: from the cache, else parsed and cached. */
static int chain_parse(const char *pem, STACK_OF(X509) **out, struct amtprov_error *e)
{
	STACK_OF(X509) *parsed = NULL;
	int rc;

	pthread_mutex_lock(&chain_cache_lock);
	if (chain_cache_pem && strcmp(chain_cache_pem, pem) == 0)
		*out = chain_up_ref(chain_cache);
	pthread_mutex_unlock(&chain_cache_lock);
	if (*out)
		return AMTPROV_OK;
	rc = pki_load_pem(pem, strlen(pem), "chain_pem", &parsed, NULL, e);
	if (rc != AMTPROV_OK)
		return rc;
	*out = chain_up_ref(parsed);
	if (!*out) {
		sk_X509_pop_free(parsed, X509_free);
		return amtprov_error_set(e, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	pthread_mutex_lock(&chain_cache_lock);
	{
		char *copy = strdup(pem);

		if (copy) {
			free(chain_cache_pem);
			sk_X509_pop_free(chain_cache, X509_free);
			chain_cache_pem = copy;
			chain_cache = parsed;
			parsed = NULL;
		}
	}
	pthread_mutex_unlock(&chain_cache_lock);
	sk_X509_pop_free(parsed, X509_free);
	return AMTPROV_OK;
}

static int check_chain(struct cc *c, char *why, size_t size)
{
	const char *pem = c->res->chain_pem;
	struct amtprov_error e;

	if (!pem || !*pem) {
		if (!c->k->need_chain)
			return 1;
		snprintf(why, size, "chain_pem is empty: the site verifies the device's TLS "
			 "certificate with this chain only (MANAGED mode), so it is required");
		return 0;
	}
	amtprov_error_clear(&e);
	if (chain_parse(pem, &c->chain, &e) != AMTPROV_OK) {
		if (e.code == AMTPROV_E_NOMEM)
			return -1;
		snprintf(why, size, "chain_pem is not a list of PEM certificates: %.150s", e.msg);
		return 0;
	}
	return c->k->need_chain ? chain_verifies(c, why, size) : 1;
}

static int check_crl(struct cc *c, char *why, size_t size)
{
	char **urls;
	int ok;

	if (!c->k->need_crl)
		return 1;
	urls = pki_cdp_urls(c->leaf);
	ok = urls && urls[0] && urls[0][0];
	pki_strv_free(urls);
	if (!ok)
		snprintf(why, size, "no CRL distribution point URL: the site's transport checks "
			 "the device certificate's CRL and refuses it without one (R-REV-01; "
			 "\"crl_check\": false on the transport turns the check off)");
	return ok;
}

struct rule {
	struct ca_contract_rule pub;
	check_fn check;
};

/* The contract. Order matters: later checks use what "der" and "chain" parsed. */
static const struct rule rules[] = {
	{{"der", WEB | X8021X | PROV, "cert_der is one DER X.509 certificate"}, check_der},
	{{"key", WEB | X8021X | PROV, "it certifies the request's public key"}, check_key},
	{{"strength", WEB | X8021X,
	  "key size and signature digest at least what the device's firmware needs "
	  "(certificates.amt_crypto_policy: AMT 22, RSA 3072 and SHA-384)"},
	 check_strength},
	{{"subject", WEB | X8021X | PROV, "subject CN = the requested FQDN (subject_fqdn)"},
	 check_subject},
	{{"san", WEB | X8021X, "dNSName SANs, if any, include the FQDN"}, check_san},
	{{"eku", WEB | X8021X | PROV,
	  "EKU: serverAuth (web server); clientAuth without serverAuth (802.1X client)"},
	 check_eku},
	{{"chain", WEB | X8021X | PROV,
	  "chain_pem parses; for a web server it verifies the leaf up to a self-signed root"},
	 check_chain},
	{{"crl", WEB, "a CRL distribution point URL, when the site's transport checks CRLs"},
	 check_crl},
};

#define N_RULES (sizeof(rules) / sizeof(rules[0]))

const struct ca_contract_rule *ca_contract_rules(size_t *n)
{
	static struct ca_contract_rule pub[N_RULES];

	/* Same contents on every call: a race writes identical bytes. */
	for (size_t i = 0; i < N_RULES; i++)
		pub[i] = rules[i].pub;
	*n = N_RULES;
	return pub;
}

const char *ca_contract_purpose_name(uint32_t purpose)
{
	switch (purpose) {
	case AMTPROV_PURPOSE_WEB_SERVER: return "web-server";
	case AMTPROV_PURPOSE_CLIENT_8021X: return "802.1x-client";
	case AMTPROV_PURPOSE_PROVISIONING: return "provisioning";
	default: return "unknown";
	}
}

void ca_contract_from_site(const struct manifest *m, struct plugin_host *ph,
			   struct ca_contract *k)
{
	const struct manifest_plugin *t = m ? manifest_plugin_find(m, m->transport) : NULL;
	struct plugin_instance *ti = t && ph ? plugin_host_find(ph, t->instance) : NULL;
	int checks = !m || (ti && plugin_instance_has_cap(ti, AMTPROV_CAP_TRANSPORT_CRL_CHECK) &&
			    !json_is_false(json_object_get(t->config, "crl_check")));

	k->need_chain = k->purpose == AMTPROV_PURPOSE_WEB_SERVER;
	k->need_crl = k->purpose == AMTPROV_PURPOSE_WEB_SERVER && checks;
}

int ca_contract_check(const struct ca_contract *k, const struct amtprov_ca_result *res,
		      const char **rule, struct amtprov_error *err)
{
	struct cc c = {.k = k, .res = res};
	char why[AMTPROV_ERROR_MSG_SIZE];
	int rc = AMTPROV_OK;

	if (rule)
		*rule = NULL;
	for (size_t i = 0; i < N_RULES; i++) {
		int ok;

		if (!(rules[i].pub.purposes & (1u << k->purpose)))
			continue;
		why[0] = '\0';
		ok = rules[i].check(&c, why, sizeof(why));
		if (ok == 1)
			continue;
		if (ok < 0) {
			rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		} else {
			char where[64];

			snprintf(where, sizeof(where), "ca-contract/%s", rules[i].pub.name);
			rc = amtprov_error_set(err, AMTPROV_E_VERIFY, where,
					       "CA '%s' (%s): contract rule '%s': %s",
					       k->ca_instance ? k->ca_instance : "?",
					       ca_contract_purpose_name(k->purpose),
					       rules[i].pub.name, why);
			if (rule)
				*rule = rules[i].pub.name;
		}
		break;
	}
	sk_X509_pop_free(c.chain, X509_free);
	X509_free(c.leaf);
	return rc;
}
