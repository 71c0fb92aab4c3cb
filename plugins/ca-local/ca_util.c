/* SPDX-License-Identifier: Apache-2.0 */
/* ca-local helpers: names and serials (files and OpenSSL error text come from
 * plugins/common). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "ca_local.h"

int cl_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Splits "CN=a,O=b\,c" into key/value pairs; RFC 4514 lists the most specific RDN first,
 * the reverse of the DER order, so each entry is prepended. */
X509_NAME *cl_name_parse(const char *text)
{
	X509_NAME *name = X509_NAME_new();
	size_t n = text ? strlen(text) : 0;
	char *key = malloc(n + 1), *val = malloc(n + 1);
	const char *p = text;
	int ok = name && key && val && n > 0;

	while (ok && *p) {
		size_t k = 0, v = 0;

		while (*p == ' ')
			p++;
		while (*p && *p != '=')
			key[k++] = *p++;
		while (k && key[k - 1] == ' ')
			k--;
		key[k] = '\0';
		if (*p != '=' || k == 0) {
			ok = 0;
			break;
		}
		p++;
		while (*p == ' ')
			p++;
		while (*p && *p != ',') {
			if (*p == '\\' && p[1])
				p++;
			val[v++] = *p++;
		}
		val[v] = '\0';
		if (*p == ',')
			p++;
		if (v == 0 ||
		    X509_NAME_add_entry_by_txt(name, key, MBSTRING_UTF8, (const unsigned char *)val,
					       -1, 0, 0) != 1)
			ok = 0;
	}
	free(key);
	free(val);
	if (!ok) {
		X509_NAME_free(name);
		return NULL;
	}
	return name;
}

char *cl_name_text(const X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *copy = NULL;
	long len;

	if (!bio)
		return NULL;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(bio, &data);
		copy = malloc(len > 0 ? (size_t)len + 1 : 1);
		if (copy) {
			if (len > 0)
				memcpy(copy, data, (size_t)len);
			copy[len > 0 ? len : 0] = '\0';
		}
	}
	BIO_free(bio);
	return copy;
}

int cl_pem_append(char **pem, X509 *cert)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *grown;
	size_t old = *pem ? strlen(*pem) : 0;
	long len;
	int rc = -1;

	if (!bio)
		return -1;
	if (PEM_write_bio_X509(bio, cert) == 1) {
		len = BIO_get_mem_data(bio, &data);
		grown = len > 0 ? realloc(*pem, old + (size_t)len + 1) : NULL;
		if (grown) {
			memcpy(grown + old, data, (size_t)len);
			grown[old + (size_t)len] = '\0';
			*pem = grown;
			rc = 0;
		}
	}
	BIO_free(bio);
	return rc;
}

char *cl_serial_hex(const ASN1_INTEGER *serial)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	BN_free(bn);
	return hex;
}

char *cl_serial_normalize(const char *hex)
{
	BIGNUM *bn = NULL;
	char *out;
	size_t n = hex ? strlen(hex) : 0;

	if (n == 0 || n > 80)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)hex[i]))
			return NULL;
	if (BN_hex2bn(&bn, hex) != (int)n) {
		BN_free(bn);
		return NULL;
	}
	out = BN_bn2hex(bn);
	BN_free(bn);
	return out;
}

int cl_valid_fqdn(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '-' && c != '.')
			return 0;
		if (c == '.' && i + 1 < n && s[i + 1] == '.')
			return 0;
	}
	return 1;
}

int cl_random_serial(X509 *x)
{
	unsigned char buf[16];
	BIGNUM *bn;
	int ok;

	/* 126 random bits (RFC 5280 allows 20 octets; CA/B asks for 64+ bits of entropy).
	 * The top bit is cleared so the DER INTEGER stays positive in 16 octets, and the next
	 * one is set so every serial is exactly 16 octets (32 hex digits): operators compare
	 * serials by eye and by length, and a leading zero byte would shorten one at random. */
	if (RAND_bytes(buf, sizeof(buf)) != 1)
		return -1;
	buf[0] = (unsigned char)((buf[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(buf, sizeof(buf), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}
