/* SPDX-License-Identifier: Apache-2.0 */
/* ca-local helpers: OpenSSL error draining, atomic files, names and serials. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "ca_local.h"

void cl_drain_ossl(char *buf, size_t size)
{
	unsigned long e;
	size_t used = 0;
	char one[200];

	if (size)
		buf[0] = '\0';
	/* Every queued error, oldest first, so the root cause and its context both show. */
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, one, sizeof(one));
		if (used + 3 < size) {
			int n = snprintf(buf + used, size - used, "%s%s", used ? "; " : "", one);

			if (n > 0)
				used += (size_t)n < size - used ? (size_t)n : size - used - 1;
		}
	}
}

int cl_crypto_error(struct amtprov_error *err, const char *what)
{
	char buf[AMTPROV_ERROR_MSG_SIZE];

	cl_drain_ossl(buf, sizeof(buf));
	return amtprov_error_set(err, AMTPROV_E_CRYPTO, CL_NAME, "%s: %s", what,
				 buf[0] ? buf : "OpenSSL reported no detail");
}

char *cl_path(const char *dir, const char *file)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, file) < 0)
		return NULL;
	return p;
}

int cl_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int cl_write_file(const char *path, const void *data, size_t len, unsigned mode,
		  struct amtprov_error *err)
{
	char *tmp = NULL;
	int fd, e;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CL_NAME, "out of memory");
	/* mkstemp creates the file 0600, so a key is never readable by others, not even
	 * between create and chmod; the rename makes readers (CRL checkers polling the file)
	 * see either the old or the new content, never a torn one. */
	fd = mkstemp(tmp);
	if (fd < 0) {
		e = errno;
		amtprov_error_set(err, AMTPROV_E_IO, path, "cannot create a file next to it: %s",
				  strerror(e));
		free(tmp);
		return AMTPROV_E_IO;
	}
	if (write_all(fd, data, len) < 0 || fchmod(fd, (mode_t)mode) < 0 || fsync(fd) < 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		free(tmp);
		return amtprov_error_set(err, AMTPROV_E_IO, path, "cannot write: %s", strerror(e));
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		e = errno;
		unlink(tmp);
		free(tmp);
		return amtprov_error_set(err, AMTPROV_E_IO, path, "cannot write: %s", strerror(e));
	}
	free(tmp);
	return AMTPROV_OK;
}

int cl_read_file(const char *path, uint8_t **out, size_t *len, struct amtprov_error *err)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (!f)
		return amtprov_error_set(err, errno == ENOENT ? AMTPROV_E_NOT_FOUND : AMTPROV_E_IO,
					 path, "cannot open: %s", strerror(errno));
	buf = malloc((1u << 20) + 1);
	if (!buf) {
		fclose(f);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CL_NAME, "out of memory");
	}
	n = fread(buf, 1, 1u << 20, f);
	if (ferror(f) || !feof(f)) {
		fclose(f);
		free(buf);
		return amtprov_error_set(err, AMTPROV_E_IO, path,
					 "cannot read (or larger than 1 MiB)");
	}
	fclose(f);
	buf[n] = 0;
	*out = buf;
	*len = n;
	return AMTPROV_OK;
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

	/* 128 random bits (RFC 5280 allows 20 octets; CA/B asks for 64+ bits of entropy).
	 * The top bit is cleared so the DER INTEGER stays positive in 16 octets, and a zero
	 * serial is impossible because one low bit is forced. */
	if (RAND_bytes(buf, sizeof(buf)) != 1)
		return -1;
	buf[0] &= 0x7f;
	buf[15] |= 0x01;
	bn = BN_bin2bn(buf, sizeof(buf), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}
