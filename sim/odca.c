/* SPDX-License-Identifier: Apache-2.0 */
/*
 * odca.c - pre-provisioning TLS of AMT 19+ (issue 17 item 13; docs/amtsim.md). Such firmware
 * serves TLS before activation with a certificate issued by the CSME's On-Die CA (ODCA)
 * instead of a lone self-signed one. What a client sees, as rpc-go's checks describe it
 * (internal/certs/lmsTls.go): 4 (or 6) certificates, the leaf named "AMT RCFG" (or "iAMT CSME
 * IDevID RCFG"), the one at depth 3 a "ROM CA" whose issuer's OU begins "ODCA 2 CSME" or
 * "On Die CSME", and the whole chain verifying to Intel's ODCA roots. amtsim cannot have
 * Intel's roots' keys: it makes its own root of that shape once per state directory
 * (DIR/odca.pem, 0600; the root certificate alone in DIR/odca-root.pem for a site's or a
 * test's trust anchor) and issues each device's leaf over the device's own key.
 */
#include "odca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "simutil.h"
#include "tls.h"

#define ODCA_LEVELS 4 /* root, ROM CA, two intermediates; the leaf comes per device */

static struct {
	X509 *cert[ODCA_LEVELS]; /* [0] root ... [3] the CA that issues leaves */
	EVP_PKEY *key[ODCA_LEVELS];
	int ready;
} odca;

static const struct {
	const char *cn, *ou;
} names[ODCA_LEVELS] = {
	{"amtsim On Die CA Root", "ODCA 2 CSME P amtsim"},
	{"amtsim CSME ROM CA", "amtsim CSME"},
	{"amtsim CSME Kernel CA", "amtsim CSME"},
	{"amtsim CSME AMT CA", "amtsim CSME"},
};

/* A certificate for @p pub named @p cn / @p ou, issued by @p issuer (NULL: itself) with
 * @p ikey; a CA when @p ca. NULL on failure. */
static X509 *issue(const char *cn, const char *ou, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *ikey,
		   int ca)
{
	X509 *x = X509_new(), *by;
	X509_NAME *nm;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int ok = 0;

	if (!x || sim_random(serial, sizeof(serial)) != 0)
		goto out;
	serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40); /* positive, 16 octets */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	nm = X509_get_subject_name(x);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 20L * 365 * 86400) ||
	    (ou && !X509_NAME_add_entry_by_txt(nm, "OU", MBSTRING_ASC, (const unsigned char *)ou,
					       -1, -1, 0)) ||
	    !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
					0) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm) ||
	    !X509_set_pubkey(x, pub))
		goto out;
	by = issuer ? issuer : x;
	if (ca ? tls_add_ext(x, by, NID_basic_constraints, "critical,CA:TRUE") ||
			 tls_add_ext(x, by, NID_key_usage, "critical,keyCertSign,cRLSign")
	       : tls_add_ext(x, by, NID_basic_constraints, "critical,CA:FALSE") ||
			 tls_add_ext(x, by, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
			 tls_add_ext(x, by, NID_ext_key_usage, "serverAuth"))
		goto out;
	if (tls_add_ext(x, by, NID_subject_key_identifier, "hash") ||
	    (issuer && tls_add_ext(x, by, NID_authority_key_identifier, "keyid:always")))
		goto out;
	ok = X509_sign(x, ikey, EVP_sha384()) > 0;
out:
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

static int write_file(const char *path, int mode, int with_keys)
{
	FILE *f;
	int ok = 1;

	f = fopen(path, "w");
	if (!f)
		return -1;
	chmod(path, (mode_t)mode);
	for (int i = 0; i < (with_keys ? ODCA_LEVELS : 1); i++) {
		ok = ok && PEM_write_X509(f, odca.cert[i]);
		if (with_keys)
			ok = ok && PEM_write_PrivateKey(f, odca.key[i], NULL, NULL, 0, NULL, NULL);
	}
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

static int load(const char *path)
{
	FILE *f = fopen(path, "r");
	int i;

	if (!f)
		return -1;
	for (i = 0; i < ODCA_LEVELS; i++) {
		odca.cert[i] = PEM_read_X509(f, NULL, NULL, NULL);
		odca.key[i] = odca.cert[i] ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		if (!odca.key[i])
			break;
	}
	fclose(f);
	ERR_clear_error();
	return i == ODCA_LEVELS ? 0 : -1;
}

void odca_free(void)
{
	for (int i = 0; i < ODCA_LEVELS; i++) {
		X509_free(odca.cert[i]);
		EVP_PKEY_free(odca.key[i]);
		odca.cert[i] = NULL;
		odca.key[i] = NULL;
	}
	odca.ready = 0;
}

int odca_init(const char *dir)
{
	char path[4096], root[4096];

	if (odca.ready)
		return 0;
	snprintf(path, sizeof(path), "%s/odca.pem", dir);
	snprintf(root, sizeof(root), "%s/odca-root.pem", dir);
	if (load(path) != 0) {
		odca_free();
		for (int i = 0; i < ODCA_LEVELS; i++) {
			/* EC P-384 keys: made at once, no key pool needed. */
			odca.key[i] = EVP_EC_gen("P-384");
			odca.cert[i] = odca.key[i] ? issue(names[i].cn, names[i].ou, odca.key[i],
							  i ? odca.cert[i - 1] : NULL,
							  odca.key[i ? i - 1 : 0], 1)
						   : NULL;
			if (!odca.cert[i]) {
				odca_free();
				return -1;
			}
		}
		if (write_file(path, 0600, 1) != 0) {
			odca_free();
			return -1;
		}
	}
	if (write_file(root, 0644, 0) != 0) {
		odca_free();
		return -1;
	}
	odca.ready = 1;
	return 0;
}

int odca_identity(const struct device *d, X509 **cert, EVP_PKEY **key, STACK_OF(X509) **chain)
{
	X509 *self = NULL;

	*chain = NULL;
	if (!odca.ready || tls_load_identity(d, &self, key) != 0)
		return -1;
	X509_free(self);
	/* The leaf over the device's own key; then the issuers up to the ROM CA (the root
	 * is the client's trust anchor, not sent). */
	*cert = issue("AMT RCFG", NULL, *key, odca.cert[ODCA_LEVELS - 1],
		      odca.key[ODCA_LEVELS - 1], 0);
	*chain = sk_X509_new_null();
	for (int i = ODCA_LEVELS - 1; *chain && i >= 1; i--)
		if (!X509_up_ref(odca.cert[i]) || !sk_X509_push(*chain, odca.cert[i]))
			break;
	if (!*cert || !*chain || sk_X509_num(*chain) != ODCA_LEVELS - 1) {
		X509_free(*cert);
		EVP_PKEY_free(*key);
		sk_X509_pop_free(*chain, X509_free);
		*cert = NULL;
		*key = NULL;
		*chain = NULL;
		return -1;
	}
	return 0;
}
