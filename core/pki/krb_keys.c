/* SPDX-License-Identifier: Apache-2.0 */
/* Kerberos string-to-key for the account a directory created for a device (krb_keys.h). */
#include "krb_keys.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/provider.h>

/* MD4 lives in OpenSSL 3's legacy provider. It is loaded into a library context of our own
 * so the process's default context (TLS, the CA) never offers legacy algorithms. */
static OSSL_LIB_CTX *legacy_ctx;
static EVP_MD *md4;
static pthread_once_t md4_once = PTHREAD_ONCE_INIT;

static void md4_init(void)
{
	legacy_ctx = OSSL_LIB_CTX_new();
	if (!legacy_ctx || !OSSL_PROVIDER_load(legacy_ctx, "legacy"))
		return;
	md4 = EVP_MD_fetch(legacy_ctx, "MD4", NULL);
}

/* UTF-8 to UTF-16LE; returns the byte length, or -1 for invalid UTF-8 or no room. */
static long utf16le(const char *s, size_t len, unsigned char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t n = 0;

	while (p < end) {
		uint32_t cp;
		int more;

		if (*p < 0x80) {
			cp = *p;
			more = 0;
		} else if ((*p & 0xE0) == 0xC0) {
			cp = *p & 0x1F;
			more = 1;
		} else if ((*p & 0xF0) == 0xE0) {
			cp = *p & 0x0F;
			more = 2;
		} else if ((*p & 0xF8) == 0xF0) {
			cp = *p & 0x07;
			more = 3;
		} else {
			return -1;
		}
		if (end - p <= more)
			return -1;
		for (int i = 1; i <= more; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return -1;
			cp = cp << 6 | (p[i] & 0x3F);
		}
		/* overlong forms, surrogates and out-of-range values are not UTF-8 */
		if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) ||
		    (more == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return -1;
		p += more + 1;
		if (cp >= 0x10000) {
			uint32_t v = cp - 0x10000, hi = 0xD800 | v >> 10, lo = 0xDC00 | (v & 0x3FF);

			if (n + 4 > size)
				return -1;
			out[n++] = (unsigned char)hi;
			out[n++] = (unsigned char)(hi >> 8);
			out[n++] = (unsigned char)lo;
			out[n++] = (unsigned char)(lo >> 8);
		} else {
			if (n + 2 > size)
				return -1;
			out[n++] = (unsigned char)cp;
			out[n++] = (unsigned char)(cp >> 8);
		}
	}
	return (long)n;
}

int krb_key_rc4(const char *password, size_t len, unsigned char key[16])
{
	unsigned char buf[1024];
	unsigned int out_len = 0;
	long n;
	int ok;

	pthread_once(&md4_once, md4_init);
	if (!md4 || !password || len > 256)
		return -1;
	n = utf16le(password, len, buf, sizeof(buf));
	if (n < 0)
		return -1;
	ok = EVP_Digest(buf, (size_t)n, key, &out_len, md4, NULL) == 1 && out_len == 16;
	OPENSSL_cleanse(buf, sizeof(buf));
	return ok ? 0 : -1;
}

int krb_key_aes(const char *password, size_t len, const char *salt, unsigned iterations,
		unsigned char *key, size_t key_len)
{
	unsigned char tkey[32];
	/* RFC 3961 section 5.1 / RFC 3962 section 4: DK(tkey, "kerberos") */
	static const unsigned char constant[] = "kerberos";
	const char *cipher = key_len == 16 ? "AES-128-CBC" : "AES-256-CBC";
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[4];
	int ok = 0;

	if (!password || !salt || !iterations || iterations > INT32_MAX ||
	    (key_len != 16 && key_len != 32) || len > INT32_MAX)
		return -1;
	if (PKCS5_PBKDF2_HMAC(password, (int)len, (const unsigned char *)salt, (int)strlen(salt),
			      (int)iterations, EVP_sha1(), (int)key_len, tkey) != 1)
		goto out;
	kdf = EVP_KDF_fetch(NULL, "KRB5KDF", NULL);
	kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (!kctx)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_CIPHER, (char *)cipher, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, tkey, key_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_CONSTANT, (void *)constant,
						      sizeof(constant) - 1);
	params[3] = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(kctx, key, key_len, params) == 1;
out:
	OPENSSL_cleanse(tkey, sizeof(tkey));
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ok ? 0 : -1;
}
