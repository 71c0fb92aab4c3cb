/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_scep_reply.c - ca-external's handling of a SCEP server's CertRep (ce_scep.c,
 * handle_reply and take_certs, reached by including the file). First byte % 4:
 *   0  the rest is the whole HTTP body of the PKCSReq answer (signed PKCS#7, as received);
 *   1  the rest is the signed content of a SUCCESS CertRep the harness signs with the CA,
 *      so the fuzzer gets past the signature to the EnvelopedData;
 *   2  the rest is the decrypted content (the degenerate PKCS#7 with the certificates): the
 *      harness encrypts it to the transient certificate and signs the CertRep;
 *   3  the rest is pkiStatus (first byte) and failInfo of a FAILURE or PENDING CertRep.
 * The keys are fixed test keys so the committed seeds stay valid; with FUZZ_SCEP_SEEDS=DIR
 * the harness writes one seed per mode into DIR (tests/fuzz/make_corpus.sh).
 */
#include "ce_scep.c"

#include <stdio.h>

#include "fuzz_host.h"
#include "fuzz_seed.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Test-only keys: they protect nothing and appear nowhere else. */
static const char CA_KEY[] =
	"-----BEGIN RSA PRIVATE KEY-----\n"
	"MIIEpAIBAAKCAQEA0B6KPBp0xPYaM7rUy+hKbTmLX0ZiM3NfsXQQ3ucEkJ0IIup3\n"
	"czLubBpslb5pkCR1djVJe7bukn6bdg6UIF1U5N4wZB9MILxAxgdFufAku+VJj0Ki\n"
	"ix6cI/5DI3G6AdJ92xy6ccBHwKFAHG1lW6b6xsv+PDBAi6GCLzuoq4UiCPkbW8QI\n"
	"g5/TeeZfteXWa9hSQNXLrGga3b0ECTz3f4uMyazB91LV0CCwSQfirXKjLIagYy5Y\n"
	"y3nQibxTYdpxQ4cRji4Bd5VTB2FFln23wWQ8r94HYilQzUvPAkxFF+iHIchFAJ3s\n"
	"RwaUlu9pQgKm28tRLPdv8w5ZDgGVdJRtYLfgAwIDAQABAoIBAAVm+1yH26PrwsLn\n"
	"W/+iSbiopjE9YxzRhFKo/RSTbsZylFbaOw2LG7nPjiXWBt0Z/1untYqDknn61Vsn\n"
	"EehbWDfL7/nQoinkGRiFCFo5hgqVHblAL0gjM4up0eE9kJdQynO7388X6afPDY61\n"
	"KszV+oLbFl0vPUfcyDgNeWUbH94L5U9/VVHqrfPbRMAYsr8VWeFI1vMmIUCf78YQ\n"
	"jCdB/maRb4BHN864ty0MPYdRY2N0Y5eQyDd+DcODibNw2oIvDv7zZgBA1jcuvJHK\n"
	"r2hQhK4Zk7daJ5wGdwnPlZxH+eLeysIqqGP7lwgzJ+QFKzs2g/AocbLsGJY/2YAg\n"
	"xfA7QqkCgYEA+ST1mpE2jW2dh4+npMoDMqh+uupQKZopzLAqHXL9fldSwbot2Bwe\n"
	"n2uiQgXDE7iJuEb9yEV45J9hE7S6hTaJYL0hPIY3Zep7/FcgFYWKtO4GYlXYLvXW\n"
	"fbIgC9wsTPMjZlIrDnkxCUV8k+F0Q5kx3H460a3OpASjLn2PeQTc73UCgYEA1diW\n"
	"vKq9dGX7BXjb/iUYIprYQSyxPRADR7yePDUUzeoCvMT9zDQBLauQt0fFlr2wob7O\n"
	"Yt82nozD1HP7CKoUNXWsoZcu55/IVbZ/LN7LKrFRoe0Mp3wsAkSL6KYpewXQzGym\n"
	"7pbUF4S4tnJi6jM/R5muEfpyxIMEV1ho0xnp2pcCgYBefvcslfFD+RRrqz/hj8Fg\n"
	"wGm4yVB4RwGdoh+HJeshtUstMUlcE2ZF/xP+yKKx4ydRHpP5FuiAhjbSu5SXHBVE\n"
	"/NcTVrDCVgqKrhz8LLdsYm9HctnZDeM5r4raFLs0wG9nyriL98lyg8l5aWSokv1H\n"
	"bRUwHCUpLp0Z8AOv2flWVQKBgQDKERJGjrPc1CyBfDWsjZKjyFuGIlwMDiB7XdDL\n"
	"pYDWHkSd6SrFFXLzm8VwWoJrsSzBedH9fVxYLz0weLOB+WyFI3+PZZMtzT75Nywu\n"
	"0wt5ePphHuSxMlVHg0wM904E8HbfY9/NXXpmCsSbqbSsBubJmn7wgA6IgCDPBDxx\n"
	"FXBzWwKBgQDjF5NhmnlyttVr08EprQ8vnq7IhET8Z/PqnTtKOJr6e71mAg0bnKh8\n"
	"Bn/DheD8imaiDgAufc3LhWIBDG2JjRCg6L38YqiDjdplqHaUn+iLjwDnqW6JW74p\n"
	"xBkcku/QYD9XwsP+y2lQKaNpzY9U5DvGu+mUD2wSxM+EYpUtomAzJw==\n"
	"-----END RSA PRIVATE KEY-----\n"
	;
static const char TX_KEY[] =
	"-----BEGIN RSA PRIVATE KEY-----\n"
	"MIIEpQIBAAKCAQEA6bySi10yEbA/MzK4aNw8Te0xZtT6JMso3yO50qT8sv4T2+MK\n"
	"hush1CE7AguU3uuHYJF5NLT61Xjee4h6WjWfAdT3S7sw9yc57W6PcgRBNihJ8de3\n"
	"U6kuPhUiHhRaKTafYj6D5s28RKL9U4fm0MvVFKqEELuu47jH5ZIw5PR3ilzZGWeY\n"
	"ZLDCBNKiWmtu6uGC8xlqta6kW8pefieZyuOqc96eTE8MWOFB7qHZ2quRXmqW7hNZ\n"
	"n0B1ckddTOgTkHhbS+B7XmXKnhViNVTJZfKU0aNNNXWgwDRZEsNbKECkNaXVmO3Q\n"
	"dLsvL7oZ4pqR7AdOxDQ2V9t4+9GpmTiCzV5fvwIDAQABAoIBAHNPS+6EChzu2ab8\n"
	"6TwWFowNLbeA72zyaxX2ToisS1xUe2CZuApKerRntnAyXX3CLVXHPsfxVuO0jvHb\n"
	"qRzS4kBpm5yZWzU6/Vl0l0DU94TryFsOpEsaJg2LqHq1aKt3Xpb9p13Ydn5X+Gja\n"
	"nVS5kkPxQVjt9oAymy9W+VcigczYQwWWVYiZP/HmkpIC8JZ90FxeIpDwvr5bi4Pa\n"
	"jm+E88JEu8GpKS1uAIemk8tCm7Wbf3F+bIJBPQEEbV43BJG0OZLBl3B9pFRhovM0\n"
	"PEdHbfTpltrFDVWd+2YEwfZeJzkzwXn9IuJWjXcqpIqVzDG8dXi+TUgwFTZrbJYh\n"
	"50Nc8TECgYEA9y/XjwpX+Kh/S7TRj7lKcN9ykPEpBKX9YSvW8hGvdyPIPvtHMz3l\n"
	"958lg9dwEfOADgb8L7CX1sXaViP8z4YAmYl8LXqHOLJM9wVw102gP8SpsGXIgEGm\n"
	"pm90/61M9UE2bVZP6FY/qDr9SXaf80QC+5BxkSBnqCi2PIdx2Vhvyu8CgYEA8hH3\n"
	"GpZAgXjfqDaWRrvQoq1mKUyWADCbMsfSOgDj4t9U32cJDYmaKi2alEHSISgKD05x\n"
	"4kwDewFHh4NW11JGCaean7zRO80NscPkSEcwvwvAWP6xprbtTqZUWvj4MSWzc/L9\n"
	"Ix+/+cTUONSSn3Opev4L7RB8M58DgXxI5Mav+DECgYEAiBoykVL7rzFvrcqo3H8E\n"
	"ivOtjDsM/785rWhLGMw+FdaA6pTG1mMNnXNmX5qe3XN6nb6g2s1cPWiBWI7GI6m/\n"
	"6Mo3sn7Vt5UNJbI8OIBIbPQnDrZsWJpNXTTfcewFBMFca4VryBy9Pi8EyY9kcLiQ\n"
	"/9y/e04hZQjNlrRpLmgwXccCgYEA7dZW6glscYlYfoa7md3YvK0P7k3wJ1macwc/\n"
	"d3v+a58wXZt3mpRzIzPRaA9PrQIQ+D8Dx+sVlFqKdAvIXCDa7Yt+cansDgyHgvxM\n"
	"I/PGYj7iis4bsAiVGqxzvzpVaLx5F9hLfKIqVfZc6UV6li3m/A/1mcOTtIhswmFh\n"
	"oV3R8VECgYEAxszhdUxcvKcAqKBsSjmlqfI0pp2YWLdoqtag7T4PnrEIF6togHWO\n"
	"wkINUT5xK9dlRss/UJ/Y6RMeWcUZY43mt+fTL+grV7auWrqQL1T5b78o/CI3FE9h\n"
	"i7Tra649KnuAQE17HApErpudt34LDGaXFYW+gy+rARPmVdtTDfXS+YM=\n"
	"-----END RSA PRIVATE KEY-----\n"
	;

static struct ca_external g_ce;
static struct scep_ca g_ca;
static struct scep_tx g_tx;
static EVP_PKEY *g_ca_key;
static int g_verbose; /* FUZZ_SCEP_VERBOSE=1: print each outcome (checking seeds) */

static EVP_PKEY *load_key(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

/* A certificate for @p key named @p cn, signed by @p ikey as @p issuer (NULL: self). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, long serial,
		       int ca)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	if (!x || !n)
		abort();
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	ASN1_TIME_set_string(X509_getm_notBefore(x), "20250101000000Z");
	ASN1_TIME_set_string(X509_getm_notAfter(x), "20450101000000Z");
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
				  ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (!X509_sign(x, ikey ? ikey : key, EVP_sha256()))
		abort();
	X509_NAME_free(n);
	return x;
}

static void der_of(PKCS7 *p7, uint8_t **out, size_t *len)
{
	if (!p7 || p7_der(p7, out, len) < 0)
		abort();
}

/* A CertRep signed by the CA around @p content, echoing our transaction and nonce. */
static void certrep(const char *status, const uint8_t *fail, size_t fail_len,
		    const uint8_t *content, size_t content_len, uint8_t **out, size_t *len)
{
	PKCS7 *p7 = PKCS7_sign(NULL, NULL, NULL, NULL, PKCS7_PARTIAL | PKCS7_BINARY);
	PKCS7_SIGNER_INFO *si = p7 ? PKCS7_sign_add_signer(p7, sk_X509_value(g_ca.certs, 0),
							   g_ca_key, EVP_sha256(),
							   PKCS7_NOSMIMECAP)
				   : NULL;
	BIO *in = BIO_new_mem_buf(content_len ? content : (const uint8_t *)"",
				  (int)content_len);

	if (!si || !in ||
	    !add_attr(si, OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, MSG_CERTREP, 1) ||
	    !add_attr(si, OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, status, (int)strlen(status)) ||
	    !add_attr(si, OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, g_tx.tid,
		      (int)strlen(g_tx.tid)) ||
	    !add_attr(si, OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, g_tx.nonce, NONCE_LEN) ||
	    (fail && !add_attr(si, OID_FAIL_INFO, V_ASN1_PRINTABLESTRING, fail, (int)fail_len)) ||
	    !PKCS7_final(p7, in, PKCS7_BINARY))
		abort();
	der_of(p7, out, len);
	BIO_free(in);
	PKCS7_free(p7);
}

/* EnvelopedData of @p content to the transient certificate. */
static void envelope(const uint8_t *content, size_t len, uint8_t **out, size_t *out_len)
{
	STACK_OF(X509) *r = sk_X509_new_null();
	BIO *in = BIO_new_mem_buf(len ? content : (const uint8_t *)"", (int)len);
	PKCS7 *env;

	if (!r || !in || !sk_X509_push(r, g_tx.cert))
		abort();
	env = PKCS7_encrypt(r, in, EVP_aes_128_cbc(), PKCS7_BINARY);
	der_of(env, out, out_len);
	PKCS7_free(env);
	BIO_free(in);
	sk_X509_free(r);
}

static void run(const uint8_t *body, size_t len)
{
	struct ce_http_resp r = {.status = 200, .body = (uint8_t *)body, .len = len};
	struct amtprov_ca_result res;
	struct amtprov_error err;

	memset(&res, 0, sizeof(res));
	res.struct_size = sizeof(res);
	amtprov_error_clear(&err);
	handle_reply(&g_ce, &g_ca, &g_tx, &r, &res, &err);
	if (res.outcome == AMTPROV_CA_ISSUED && (!res.cert_der || !res.cert_len))
		abort(); /* issued without a certificate */
	if (g_verbose)
		fprintf(stderr, "outcome %u: %s\n", (unsigned)res.outcome, res.message);
	free(res.cert_der);
	free(res.chain_pem);
}

/* One seed per mode, each a real exchange: the CA issues a certificate for the request key. */
static void write_seeds(const char *dir)
{
	EVP_PKEY *pub = X509_REQ_get0_pubkey(g_tx.csr);
	X509 *leaf = make_cert(pub, "device.corp.example", sk_X509_value(g_ca.certs, 0), g_ca_key,
			       7, 0);
	PKCS7 *deg = PKCS7_new();
	uint8_t *degder = NULL, *env = NULL, *rep = NULL;
	size_t deglen = 0, envlen = 0, replen = 0;
	static const uint8_t pending[] = "3", failure[] = "22";

	if (!deg || !PKCS7_set_type(deg, NID_pkcs7_signed) ||
	    !PKCS7_content_new(deg, NID_pkcs7_data) || !PKCS7_add_certificate(deg, leaf) ||
	    !PKCS7_add_certificate(deg, sk_X509_value(g_ca.certs, 0)))
		abort();
	der_of(deg, &degder, &deglen);
	envelope(degder, deglen, &env, &envlen);
	certrep("0", NULL, 0, env, envlen, &rep, &replen);
	fuzz_write_seed(dir, "certrep-success", 0, rep, replen);
	fuzz_write_seed(dir, "content-success", 1, env, envlen);
	fuzz_write_seed(dir, "degenerate-success", 2, degder, deglen);
	fuzz_write_seed(dir, "pending", 3, pending, 1);
	fuzz_write_seed(dir, "failure-badcertid", 3, failure, 2);
	free(rep);
	free(env);
	free(degder);
	PKCS7_free(deg);
	X509_free(leaf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	EVP_PKEY *txkey;
	X509 *ca;
	struct amtprov_error err;
	const char *seeds = getenv("FUZZ_SCEP_SEEDS");

	(void)argc;
	(void)argv;
	g_ca_key = load_key(CA_KEY);
	txkey = load_key(TX_KEY);
	if (!g_ca_key || !txkey)
		abort();
	g_ce.host = fuzz_host();
	g_ce.cfg.poll_interval = 60;
	ca = make_cert(g_ca_key, "amtprov fuzz SCEP CA", NULL, NULL, 1, 1);
	g_ca.certs = sk_X509_new_null();
	if (!g_ca.certs || !sk_X509_push(g_ca.certs, ca))
		abort();
	g_ca.recipient = g_ca.issuer = ca;
	g_ca.aes = g_ca.post = g_ca.sha256 = 1;
	/* The request and the transient signer share the fixed key (make_signer would draw a
	 * fresh one per transaction; a fixed one keeps the seeds decryptable). */
	g_tx.key = txkey;
	g_tx.csr = X509_REQ_new();
	if (!g_tx.csr || !X509_REQ_set_pubkey(g_tx.csr, txkey) ||
	    !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(g_tx.csr), "CN", MBSTRING_ASC,
					(const unsigned char *)"device.corp.example", -1, -1, 0) ||
	    !X509_REQ_sign(g_tx.csr, txkey, EVP_sha256()))
		abort();
	g_tx.cert = make_cert(txkey, "device.corp.example", NULL, NULL, 2, 0);
	amtprov_error_clear(&err);
	if (make_tid(g_tx.csr, g_tx.tid, &err) != AMTPROV_OK)
		abort();
	memset(g_tx.nonce, 0x5c, NONCE_LEN);
	if (seeds)
		write_seeds(seeds);
	g_verbose = getenv("FUZZ_SCEP_VERBOSE") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	uint8_t *env = NULL, *rep = NULL;
	size_t envlen = 0, replen = 0;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		run(data + 1, size - 1);
		break;
	case 1:
		certrep("0", NULL, 0, data + 1, size - 1, &rep, &replen);
		run(rep, replen);
		break;
	case 2:
		envelope(data + 1, size - 1, &env, &envlen);
		certrep("0", NULL, 0, env, envlen, &rep, &replen);
		run(rep, replen);
		break;
	default: {
		char status[2] = {size > 1 ? (char)data[1] : '2', '\0'};

		if (!status[0])
			status[0] = '2';
		certrep(status, size > 2 ? data + 2 : NULL, size > 2 ? size - 2 : 0, NULL, 0,
			&rep, &replen);
		run(rep, replen);
		break;
	}
	}
	free(env);
	free(rep);
	return 0;
}
