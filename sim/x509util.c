/* SPDX-License-Identifier: Apache-2.0 */
#include "x509util.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "simutil.h"

X509 *sim_x509_from_b64(const char *b64)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t n = 0;
	X509 *x = NULL;

	if (!b64 || sim_b64_decode(b64, &der, &n) != 0)
		return NULL;
	p = der;
	if (n && n < 0x7fffffff)
		x = d2i_X509(NULL, &p, (long)n);
	if (x && p != der + n) { /* trailing bytes: not one DER certificate */
		X509_free(x);
		x = NULL;
	}
	free(der);
	return x;
}

char *sim_x509_to_b64(X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	char *s = n > 0 ? sim_b64_encode(der, (size_t)n) : NULL;

	OPENSSL_free(der);
	return s;
}

char *sim_key_to_pem(EVP_PKEY *k)
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

EVP_PKEY *sim_key_from_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}
