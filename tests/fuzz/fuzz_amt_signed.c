/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_amt_signed.c - the check of the request AMT signed (core/flow/enroll.c,
 * flow_amt_check_signed): the answer to GeneratePKCS10RequestEx must be the template the
 * flow sent, signed with the key AMT holds. It takes the template's bytes apart without
 * parsing them when they are the template's, and parses a re-encoded request field by field.
 * First byte % 2:
 *   0  the rest is AMT's answer (DER of a CertificationRequest), as received;
 *   1  the rest follows the template's certificationRequestInfo inside the outer SEQUENCE
 *      (the harness adds both): the signature algorithm and signature, so the fuzzer works
 *      on the byte-for-byte path.
 * Contract: AMTPROV_OK hands the DER over, anything else leaves it and says why. The key is a
 * fixed test key so the committed seeds stay valid; with FUZZ_AMT_SIGNED_SEEDS=DIR the
 * harness writes one valid seed per mode into DIR.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "flow_int.h"
#include "flow_keys.h"
#include "fuzz_seed.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Test-only key: it protects nothing and appears nowhere else. */
static const char AMT_KEY[] =
	"-----BEGIN RSA PRIVATE KEY-----\n"
	"MIIEogIBAAKCAQEAzPyQyn5v4Htd5RlV3EI/YoQ+8ePC5XlvYXYERtBgThbsKOMm\n"
	"g9490/CeZUYLmH6wSCngTlmOFD1jxlFQG+I2+DFZQNJzckrkyWYUdsNGnRiIkNC2\n"
	"9JpUeGOG6QDy/zBH8w/niVQ4khQKw+62nZ4szLyE007Pf96YTuPECmuTGXZ8VZFV\n"
	"lGZrkWUezQN5d6rPxGazrSNS4qLXtm1Sm3qg8VTYWuyiYhxbHw9vrCz9/BJ0MEgO\n"
	"upRXzk4Ats4Z5+WaEY0lXuKSgDF0s7RcafgHtWuTKy0GJJpnRlF6hh8H6J0/yV22\n"
	"gj/peqHBPcGqW4Fn9OPASB8fpTq0WJibTTvX2wIDAQABAoIBAD34mTlushn2kfNi\n"
	"DnARYyJAgtsUFWbUqJSZXj+eXY8eJPVTfuBc/uolE23gmD7ZBig66MInFuoNiS16\n"
	"hbJ4WE/+c1JCjX5fH/23K7af4Kg7s4W8Y6NdSO5AgJfOnqgBi67y/veoi5W2E28a\n"
	"qwDJwhd/YtSTPe4VeIxZFXpk/Uqz2c2U2a7oZHA4Lud9h+zzn1PE3p9NxrVHhPtn\n"
	"GmqiajGqCuhvJ/m7MeW6HLJw31A+LbfETeTKms71THB48gPRtZh2ii8KXsRFWU6E\n"
	"AbjbGdlPDWGxW8Nk6jYGqw6r97fmRkD33GwFYIjymsLqMa1/NNQoMw+CPVP5k+BH\n"
	"1+eEVMECgYEA7x7jnoFNdc15Loqy4YHX7VesxXLvoHLoclb0XdNvhO2093JvcEM1\n"
	"01w4i6OQQPcWC98PDEB5OlbfThSZwUOV6ILheV9KafbzG7wxnXnECcholPQ9ZG8w\n"
	"3TqMBTeIL0ecqS7ihDGqyj1LBwrzUukXApgVQCdumUV6xJZh5qE/KbsCgYEA23TY\n"
	"VmQsstPe7PfskXe/k8H8+LrPfvjd3Dg0fbuDK/u2xE7pVnFLV+CpGAuxZuNLiPgH\n"
	"sgFDmeZKpMJ2d/pUJVnzsnA7F51O3aOzykjXlgmHeV26SebqgccFcOWHoiTBgcWf\n"
	"UW363cCz7cwmmJJiGLl5bVTpXZspLbCeglcymGECgYAkPtxl1Fe3eZPa2C9RO2tN\n"
	"kLKho1BrU7+kRUX5SulmjtmVgIUf0TBBf4Mat4pQLqPq3L7dLpCxpSVoIntD7ki0\n"
	"29HtoeIXudUT6SzkH+b1TKl9mqALr0cK4asDx20fLY2zn2W6gATRbwUGZkSH1skk\n"
	"HYVrGg8LsJpxXhIs8VgvrQKBgEgfNGHf9hinLKIwMFz2P82teRe9PSf7Xd5b0lRn\n"
	"5Yn05XHKhUDVZu9wc+HlJd4sYMyYxt6nL7JKTsmq5wgzCqhj0YUZATKXji2k+RdH\n"
	"rSIv64flV62l5/fSkmUx6ctNzRJ7Agre3A04oWlLKHwHz5lUiyV1PGR486WCX/Vx\n"
	"9rzBAoGASHvBhytMfS9oT2e6TwHNWiTLRUfPJIqTc6xOsIi2tEpWjHPJDISsJbfL\n"
	"62tu2DWSLwFfaPHF5U2291BcKkabZJmxgT1re1Xrf/wzZ2nyhziX2ZYrP7jSOe1t\n"
	"+i9Kp7tr6pOGcQbwDmafpFhwuVLWg0QqBXaUAY/Lwr8t9IIH4C4=\n"
	"-----END RSA PRIVATE KEY-----\n"
	;

static EVP_PKEY *g_key;
static X509_REQ *g_tmpl;
static unsigned char *g_info; /* the template's certificationRequestInfo */
static int g_info_len;

static X509_REQ *template_of(EVP_PKEY *key)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();

	if (!req || !name ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
					(const unsigned char *)"pc1.contoso.com", -1, -1, 0) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key))
		abort();
	X509_NAME_free(name);
	return req;
}

static void write_seeds(const char *dir)
{
	X509_REQ *req = template_of(g_key);
	unsigned char *der = NULL;
	int n;

	if (X509_REQ_sign(req, g_key, EVP_sha256()) <= 0 || (n = i2d_X509_REQ(req, &der)) <= 0)
		abort();
	fuzz_write_seed(dir, "signed-template", 0, der, (size_t)n);
	/* Mode 1: what follows the info (algorithm and signature). */
	if (n < 4 + g_info_len || der[1] != 0x82)
		abort();
	fuzz_write_seed(dir, "signature-of-template", 1, der + 4 + g_info_len,
			(size_t)(n - 4 - g_info_len));
	OPENSSL_free(der);
	X509_REQ_free(req);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	BIO *b = BIO_new_mem_buf(AMT_KEY, -1);
	const char *seeds = getenv("FUZZ_AMT_SIGNED_SEEDS");

	(void)argc;
	(void)argv;
	g_key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!g_key)
		abort();
	g_tmpl = template_of(g_key);
	g_info_len = i2d_re_X509_REQ_tbs(g_tmpl, &g_info);
	if (g_info_len <= 0)
		abort();
	if (seeds)
		write_seeds(seeds);
	return 0;
}

/* SEQUENCE { info, rest } with a long-form length of two bytes. */
static unsigned char *wrap(const unsigned char *rest, size_t n, size_t *len)
{
	size_t body = (size_t)g_info_len + n;
	unsigned char *out;

	if (body > 0xffff)
		return NULL;
	out = malloc(4 + body);
	if (!out)
		abort();
	out[0] = 0x30;
	out[1] = 0x82;
	out[2] = (unsigned char)(body >> 8);
	out[3] = (unsigned char)body;
	memcpy(out + 4, g_info, (size_t)g_info_len);
	if (n)
		memcpy(out + 4 + g_info_len, rest, n);
	*len = 4 + body;
	return out;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	unsigned char *der = NULL;
	size_t len = 0;
	uint8_t *csr = NULL;
	size_t csr_len = 0;
	char *b64;
	struct amtprov_error err;
	int rc;

	if (size < 1 || size > 65536)
		return 0;
	if (data[0] % 2 == 0) {
		der = malloc(size - 1 ? size - 1 : 1);
		if (!der)
			abort();
		memcpy(der, data + 1, size - 1);
		len = size - 1;
	} else if (!(der = wrap(data + 1, size - 1, &len))) {
		return 0;
	}
	b64 = flow_b64(der, len);
	if (!b64)
		abort();
	amtprov_error_clear(&err);
	rc = flow_amt_check_signed("pc1.contoso.com", g_tmpl, g_key, "k1", b64, &csr, &csr_len,
				   &err);
	if (rc == AMTPROV_OK && (!csr || csr_len != len || memcmp(csr, der, len) != 0))
		abort(); /* accepted: the very DER is handed over */
	if (rc != AMTPROV_OK && (csr || !err.msg[0]))
		abort(); /* refused: nothing handed over, and a reason */
	free(csr);
	free(b64);
	free(der);
	return 0;
}
