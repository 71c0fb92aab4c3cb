/* SPDX-License-Identifier: Apache-2.0 */
/* Certificate store: GenerateKeyPair from the pool (with latency), GeneratePKCS10RequestEx
 * re-signing the client's null-signed request, AddCertificate needing the key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "device.h"
#include "http.h"
#include "simutil.h"
#include "tls.h"
#include "wsman.h"

void register_sim_pki_tests(void);

#define PKMS AMT_URI "AMT_PublicKeyManagementService"
#define ENV \
	"<?xml version=\"1.0\"?><Envelope xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" " \
	"xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" " \
	"xmlns=\"http://www.w3.org/2003/05/soap-envelope\"><Header><a:Action>%s</a:Action>" \
	"<w:ResourceURI>%s</w:ResourceURI><a:MessageID>1</a:MessageID></Header><Body>%s</Body>" \
	"</Envelope>"

static char *call(struct device *d, const char *action, const char *uri, const char *body,
		  unsigned *delay)
{
	struct sbuf buf = {0};
	struct http_request q;
	struct http_response r;
	char *out;

	sbuf_printf(&buf, ENV, action, uri, body);
	memset(&q, 0, sizeof(q));
	memset(&r, 0, sizeof(r));
	q.body = buf.data;
	q.body_len = buf.len;
	wsman_handle(d, &q, &r);
	sbuf_free(&buf);
	if (delay)
		*delay = r.delay_ms;
	out = r.body.data; /* caller frees */
	return out;
}

static void test_keys_and_csr(void)
{
	char dir[] = "/tmp/amtsim-pki-XXXXXX";
	struct tls_keypool pool;
	struct device d;
	char *resp, *p, body[8192], *csr_b64;
	unsigned delay = 0;
	EVP_PKEY *throwaway, *amtkey = NULL;
	X509_REQ *req;
	unsigned char *der = NULL;
	const unsigned char *cp;
	size_t n;
	int len;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	CU_ASSERT_EQUAL_FATAL(tls_keypool_init(&pool, dir, 2, 2048), 0);
	wsman_set_keypool(&pool);
	device_init(&d, "k", "12.0.45");
	d.keygen_ms = 25;
	resp = call(&d, PKMS "/GenerateKeyPair", PKMS,
		    "<h:GenerateKeyPair_INPUT xmlns:h=\"" PKMS "\"><h:KeyAlgorithm>0</h:KeyAlgorithm>"
		    "<h:KeyLength>2048</h:KeyLength></h:GenerateKeyPair_INPUT>", &delay);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "<h:ReturnValue>0</h:ReturnValue>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "Intel(r) AMT Key: Handle: 1"));
	CU_ASSERT_EQUAL(delay, 25); /* answered after the modelled generation time */
	free(resp);
	CU_ASSERT_EQUAL_FATAL(d.n_keys, 1);

	/* The client's request: AMT's public key, any (here a throwaway) signature. */
	{
		BIO *b = BIO_new_mem_buf(d.keys[0].pem, -1);

		amtkey = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	throwaway = EVP_RSA_gen(2048);
	req = X509_REQ_new();
	X509_REQ_set_pubkey(req, amtkey);
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
				   (const unsigned char *)"pc1.contoso.com", -1, -1, 0);
	X509_REQ_sign(req, throwaway, EVP_sha256());
	CU_ASSERT_NOT_EQUAL(X509_REQ_verify(req, amtkey), 1);
	len = i2d_X509_REQ(req, &der);
	csr_b64 = sim_b64_encode(der, (size_t)len);
	OPENSSL_free(der);
	X509_REQ_free(req);
	snprintf(body, sizeof(body),
		 "<h:GeneratePKCS10RequestEx_INPUT xmlns:h=\"" PKMS "\"><h:KeyPair><a:Address>/wsman"
		 "</a:Address><a:ReferenceParameters><w:ResourceURI>" AMT_URI "AMT_PublicPrivateKeyPair"
		 "</w:ResourceURI><w:SelectorSet><w:Selector Name=\"InstanceID\">Intel(r) AMT Key: "
		 "Handle: 1</w:Selector></w:SelectorSet></a:ReferenceParameters></h:KeyPair>"
		 "<h:SigningAlgorithm>1</h:SigningAlgorithm><h:NullSignedCertificateRequest>%s"
		 "</h:NullSignedCertificateRequest></h:GeneratePKCS10RequestEx_INPUT>", csr_b64);
	free(csr_b64);
	resp = call(&d, PKMS "/GeneratePKCS10RequestEx", PKMS, body, NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "<h:ReturnValue>0</h:ReturnValue>"));
	p = strstr(resp, "<h:SignedCertificateRequest>");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	p += strlen("<h:SignedCertificateRequest>");
	*strchr(p, '<') = '\0';
	CU_ASSERT_EQUAL(sim_b64_decode(p, &der, &n), 0);
	cp = der;
	req = d2i_X509_REQ(NULL, &cp, (long)n);
	CU_ASSERT_PTR_NOT_NULL_FATAL(req);
	CU_ASSERT_EQUAL(X509_REQ_verify(req, amtkey), 1); /* now signed by the AMT key */
	X509_REQ_free(req);
	free(der);
	free(resp);

	/* A request around another key is refused: 2062 INVALID_KEY. */
	req = X509_REQ_new();
	X509_REQ_set_pubkey(req, throwaway);
	X509_REQ_sign(req, throwaway, EVP_sha256());
	der = NULL;
	len = i2d_X509_REQ(req, &der);
	csr_b64 = sim_b64_encode(der, (size_t)len);
	OPENSSL_free(der);
	X509_REQ_free(req);
	p = strstr(body, "<h:NullSignedCertificateRequest>") + strlen("<h:NullSignedCertificateRequest>");
	snprintf(p, sizeof(body) - (size_t)(p - body), "%s</h:NullSignedCertificateRequest>"
		 "</h:GeneratePKCS10RequestEx_INPUT>", csr_b64);
	free(csr_b64);
	resp = call(&d, PKMS "/GeneratePKCS10RequestEx", PKMS, body, NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "<h:ReturnValue>2062</h:ReturnValue>"));
	free(resp);

	/* A second key: a different pool key, not the first again. */
	resp = call(&d, PKMS "/GenerateKeyPair", PKMS,
		    "<h:GenerateKeyPair_INPUT xmlns:h=\"" PKMS "\"><h:KeyAlgorithm>0</h:KeyAlgorithm>"
		    "<h:KeyLength>2048</h:KeyLength></h:GenerateKeyPair_INPUT>", NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "<h:ReturnValue>0</h:ReturnValue>"));
	free(resp);
	CU_ASSERT_EQUAL(d.n_keys, 2);
	CU_ASSERT_STRING_NOT_EQUAL(d.keys[0].pem, d.keys[1].pem);

	EVP_PKEY_free(throwaway);
	EVP_PKEY_free(amtkey);
	device_clear(&d);
	wsman_set_keypool(NULL);
	tls_keypool_free(&pool);
	for (int i = 0; i < 2; i++) {
		char path[64];

		snprintf(path, sizeof(path), "%s/keypool-%d.pem", dir, i);
		unlink(path);
	}
	rmdir(dir);
}

void register_sim_pki_tests(void)
{
	CU_pSuite s = CU_add_suite("sim.pki", NULL, NULL);

	CU_add_test(s, "GenerateKeyPair, GeneratePKCS10RequestEx", test_keys_and_csr);
}
