/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file pki.h
 * @brief OpenSSL helpers for the provisioning certificate: loading (PEM, PKCS#12), chain
 *        ordering, thumbprints, EKU/OU/CN inspection, key and algorithm checks, CRLs, and
 *        the DNS namespace rules of R-PC-05 and AMT's CN / trusted-DNS-suffix match.
 *
 * OpenSSL's 1/0 and NULL conventions stop here: every fallible call returns an
 * amtprov_status and drains the OpenSSL error queue into @p err's message.
 * The DNS helpers are pure string functions (no OpenSSL), so the simulator can use them.
 */
#ifndef AMTPROV_CORE_PKI_H
#define AMTPROV_CORE_PKI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <amtprov/error.h>
#include <amtprov/types.h>

/** serverAuth and the Intel AMT provisioning OID (R-PC-01). */
#define PKI_OID_SERVER_AUTH "1.3.6.1.5.5.7.3.1"
#define PKI_OID_AMT_PROVISIONING "2.16.840.1.113741.1.2.3"
/** The alternative to the OID: this exact (case-sensitive) subject OU (R-PC-01). */
#define PKI_AMT_OU "Intel(R) Client Setup Certificate"

/** Thumbprint algorithms, numbered as in the AMT PKI Hello (1 SHA-1, 2 SHA-256, 3 SHA-384). */
enum pki_hash { PKI_HASH_SHA1 = 1, PKI_HASH_SHA256 = 2, PKI_HASH_SHA384 = 3 };

/** Hex buffer big enough for any pki_hash (SHA-384: 96 digits + NUL). */
#define PKI_HEX_SIZE 97

/** "SHA-1", "SHA-256", "SHA-384" or "?". */
const char *pki_hash_name(int alg);
/** Parses "sha1", "SHA-256", "sha384", "1".."3" (case-insensitive); -1 if unknown. */
int pki_hash_parse(const char *s);
/** Digest length in bytes of @p alg, 0 if unknown. */
size_t pki_hash_len(int alg);

/**
 * Sets @p err (unless already set) with @p fmt followed by the drained OpenSSL error queue
 * (": " + the queue's reasons), and clears the queue. @return @p code.
 */
int pki_error(struct amtprov_error *err, int code, const char *where, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

/* ---- loading (all results caller-owned: sk_X509_pop_free(.., X509_free), EVP_PKEY_free) ---- */

/**
 * Parses every CERTIFICATE block of @p pem (file order kept) and, when @p key is not NULL,
 * the first private-key block (NULL if none). @return AMTPROV_E_PARSE when there is no
 * certificate or a block is damaged.
 */
int pki_load_pem(const char *pem, size_t len, const char *where, STACK_OF(X509) **certs,
		 EVP_PKEY **key, struct amtprov_error *err);
/** Parses a private key (PEM, unencrypted). */
int pki_load_pem_key(const char *pem, size_t len, const char *where, EVP_PKEY **key,
		     struct amtprov_error *err);
/**
 * Parses PKCS#12 (DER) with @p password (may be NULL or ""). @p certs gets the certificate
 * matching the key first, then the rest in bag order. AMTPROV_E_AUTH when the password
 * does not decrypt it.
 */
int pki_load_pkcs12(const void *der, size_t len, const char *password, const char *where,
		    STACK_OF(X509) **certs, EVP_PKEY **key, struct amtprov_error *err);
/** Parses one CRL, PEM or DER. */
int pki_load_crl(const void *data, size_t len, const char *where, X509_CRL **crl,
		 struct amtprov_error *err);

/* ---- chain ---- */

/** What pki_order_chain found. */
struct pki_chain_info {
	int in_order;        /**< 1: the input was already leaf -> ... -> root */
	int complete;        /**< 1: ends in a self-signed root and every link verifies */
	int has_root;        /**< 1: the last certificate is self-signed (and its signature verifies) */
	size_t n_unused;     /**< input certificates not on the leaf's path */
	char problem[320];   /**< why it is incomplete: the missing issuer or the bad link */
};

/**
 * Builds the path from @p leaf (an element of @p in; NULL: in[0]) upward by issuer name and
 * signature. @p out (caller frees) holds the path, leaf first; certificates not on it are
 * dropped and counted.
 */
int pki_order_chain(STACK_OF(X509) *in, X509 *leaf, STACK_OF(X509) **out,
		    struct pki_chain_info *info, struct amtprov_error *err);
/** 1 if @p c is self-issued and its signature verifies with its own key. */
int pki_is_self_signed(X509 *c);

/* ---- inspection ---- */

/** Upper-case hex of the @p alg digest over @p c's DER. */
int pki_thumbprint(X509 *c, int alg, char *hex, size_t size, struct amtprov_error *err);
/** The subject (or issuer) as a one-line RFC 2253 string, "" on error. */
void pki_name(X509 *c, int issuer, char *buf, size_t size);
/** The first subject CN, "" if none. @return 1 if found. */
int pki_subject_cn(X509 *c, char *buf, size_t size);
/** Every subject OU joined with "; " (quoted), "" if none. @return how many. */
int pki_subject_ous(X509 *c, char *buf, size_t size);
/** 1 if a subject OU equals @p ou exactly (case-sensitive). */
int pki_has_ou(X509 *c, const char *ou);
/** 1 if the EKU lists @p oid (dotted); 0 if not or there is no EKU extension. */
int pki_has_eku(X509 *c, const char *oid);
/** The EKU as "serverAuth (1.3.6.1.5.5.7.3.1), ..." or "no extendedKeyUsage extension".
 * @return the number of purposes, -1 without the extension. */
int pki_eku_text(X509 *c, char *buf, size_t size);
/** 1 if @p key is the private key of @p c's public key. */
int pki_key_matches(X509 *c, EVP_PKEY *key);
/**
 * The public key: @p is_rsa 1 for RSA, @p bits its size; @p desc e.g. "RSA 2048" or
 * "EC P-256 (prime256v1)". @return 0, -1 when there is no readable key.
 */
int pki_key_info(X509 *c, int *is_rsa, int *bits, char *desc, size_t size);
/** The signature algorithm's digest ("SHA256", "SHA1", "MD5", ...) and 1 if it is SHA-1 or
 * weaker (MD5, MD4, MD2). */
int pki_sig_weak(X509 *c, char *digest, size_t size);
/** notBefore/notAfter as Unix seconds. @return 0 or -1. */
int pki_validity(X509 *c, int64_t *not_before, int64_t *not_after);
/** A malloc'd NULL-terminated list of CRL distribution-point file paths (file:// URIs and
 * absolute paths) in @p c; NULL if none. Free with pki_strv_free. */
char **pki_cdp_files(X509 *c);
/** Every CRL distribution point URI of @p c (http://, ldap://, file://), NULL-terminated,
 * malloc'd (free with pki_strv_free); NULL if none. */
char **pki_cdp_urls(X509 *c);
void pki_strv_free(char **v);

/** The revocation state of one certificate against one CRL. */
struct pki_revocation {
	int revoked;            /**< 1 if listed */
	int64_t revoked_at;     /**< Unix seconds */
	char reason[48];        /**< RFC 5280 reason name, "unspecified" if absent */
};

/**
 * Checks @p c against @p crl from @p issuer: the CRL's issuer name must be @p issuer's
 * subject and its signature must verify with @p issuer's key.
 * @return AMTPROV_OK (see @p out), AMTPROV_E_NOT_FOUND when the CRL is not @p issuer's,
 *         AMTPROV_E_VERIFY when its signature does not verify.
 */
int pki_crl_check(X509_CRL *crl, X509 *c, X509 *issuer, struct pki_revocation *out,
		  struct amtprov_error *err);
/** The CRL's nextUpdate (0 if absent). */
int64_t pki_crl_next_update(X509_CRL *crl);

/* ---- PEM output ---- */

/** The chain as concatenated PEM (malloc'd, NUL-terminated). */
int pki_chain_pem(STACK_OF(X509) *chain, char **pem, size_t *len, struct amtprov_error *err);
/** The key as unencrypted PKCS#8 PEM in a secret buffer (wiped on free). */
int pki_key_pem(EVP_PKEY *key, struct amtprov_secret **pem, struct amtprov_error *err);

/* ---- DNS names (pure string functions) ---- */

/** 1 if @p s is a syntactically valid FQDN: >= 2 labels, LDH labels of 1..63, <= 253 chars,
 * a non-numeric last label; one trailing dot allowed. A wildcard is not an FQDN. */
int pki_is_fqdn(const char *s);

/**
 * The namespace root of @p fqdn: its registrable domain, i.e. the public suffix plus one
 * label ("contoso.com", "contoso.co.uk"), lower-case, no trailing dot. Public suffixes are
 * every single-label TLD plus a built-in table of multi-label ones (co.uk, com.au, ...).
 * @return 0, or -1 when @p fqdn has no label left of its public suffix (e.g. "co.uk").
 */
int pki_namespace_root(const char *fqdn, char *out, size_t size);

/**
 * R-PC-05: 1 when @p device_fqdn and @p service_point_fqdn are in the same DNS tree, i.e.
 * have the same namespace root; 0 otherwise. @p root (may be NULL) receives the device's
 * namespace root, @p sp_root the service point's.
 */
int pki_namespace_shared(const char *device_fqdn, const char *service_point_fqdn,
			 char *root, size_t root_size, char *sp_root, size_t sp_root_size);

/**
 * R-PC-05 disjoint namespace: 1 when the device's primary DNS suffix (its FQDN without the
 * host label) differs from its Active Directory domain (DNS name), e.g. computer1.contoso.com
 * in na.corp.contoso.com; 0 when they are equal (case-insensitive).
 */
int pki_namespace_disjoint(const char *device_fqdn, const char *ad_domain);

/**
 * AMT's own check (AMT-PROTOCOL 2.2): the provisioning certificate's CN domain must match the
 * device's trusted DNS suffix (the MEBx "PKI DNS suffix", else DHCP option 15). The CN is
 * lower-cased, a leading "*." stripped and reduced to its namespace root (AMT 2.6+'s "last
 * two labels" relaxation, generalised to multi-label public suffixes); it matches when the
 * suffix equals that domain or ends in "." + domain.
 * @param domain (may be NULL) receives the CN's domain as compared.
 * @return 1 on a match, 0 otherwise (also for an empty suffix or a CN that is not an FQDN).
 */
int pki_amt_suffix_match(const char *cn, const char *dns_suffix, char *domain, size_t size);

#endif /* AMTPROV_CORE_PKI_H */
