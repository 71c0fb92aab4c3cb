/* SPDX-License-Identifier: Apache-2.0 */
/*
 * make_corpus.c - records real exchanges between amt-transport and amtsim, in process and
 * without a network, as seed corpora (tests/fuzz/make_corpus.sh runs it): every operation
 * of fuzz_transport.c runs against a simulated AMT 11.8 and AMT 8.1 device, each request
 * answered by amtsim's own WS-Man or legacy SOAP handler. Per operation it writes
 *   fuzz_transport_{wsman,soap}/OP  the answers, in the harness's format;
 *   fuzz_sim_{wsman,soap}/OP        the requests, in the sim harnesses' format;
 *   fuzz_sim_http/OP                the requests as an HTTP/1.1 byte stream;
 * and a CRL with one revoked serial, DER and PEM, for the transport's CRL selector.
 * Usage: make_corpus OUTDIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fuzz_seed.h"
#include "fuzz_sim.h"
#include "fuzz_transport.h"
#include "http.h"
#include "soap_legacy.h"
#include "wsman.h"

struct rec {
	struct device *d;
	unsigned nc; /* requests so far on the HTTP stream */
	struct sbuf answers, wsman, soap, http;
	struct sbuf last; /* the body of the last answer, borrowed by ft_run */
};

static const char *const soap_paths[] = {
	"/SecurityAdministrationService", "/NetworkAdministrationService", "/NetworkTimeService",
	"/RemoteControlService", "/GeneralInfoService",
};

static void add_bytes(struct sbuf *b, const void *p, size_t n)
{
	sbuf_addn(b, (const char *)p, n);
}

static int answer(void *ctx, const struct at_session *s, const char **body, size_t *len,
		  long *code)
{
	struct rec *rc = ctx;
	struct http_request q;
	struct http_response r;
	unsigned char sel;
	char hdr[2048], auth[512];

	memset(&q, 0, sizeof(q));
	memset(&r, 0, sizeof(r));
	r.status = 500;
	snprintf(q.method, sizeof(q.method), "POST");
	snprintf(q.path, sizeof(q.path), "%s", s->path);
	q.minor = 1;
	q.keep_alive = true;
	q.body = s->req.p;
	q.body_len = s->req.len;
	q.user = "admin";
	q.tls = true;
	if (s->proto == AT_WSMAN) {
		wsman_handle(rc->d, &q, &r);
		if (rc->wsman.len)
			add_bytes(&rc->wsman, "", 1);
		add_bytes(&rc->wsman, s->req.p, s->req.len);
	} else if (soap_legacy_path(s->path) && device_has_legacy_soap(rc->d)) {
		soap_legacy_handle(rc->d, &q, &r);
		for (size_t i = 0; i < sizeof(soap_paths) / sizeof(soap_paths[0]); i++)
			if (!strcmp(soap_paths[i], s->path)) {
				sel = (unsigned char)i;
				if (rc->soap.len)
					add_bytes(&rc->soap, "", 1);
				add_bytes(&rc->soap, &sel, 1);
				add_bytes(&rc->soap, s->req.p, s->req.len);
			}
	} else {
		r.status = 404;
	}
	/* The same request as a client sends it, authenticated for fuzz_sim_http's device. */
	sim_fuzz_authorization("POST", s->path, ++rc->nc, auth, sizeof(auth));
	snprintf(hdr, sizeof(hdr),
		 "POST %s HTTP/1.1\r\nHost: 127.0.0.1:16993\r\nAuthorization: %s\r\n"
		 "Content-Type: %s\r\n%s%s%sContent-Length: %zu\r\n\r\n",
		 s->path, auth,
		 s->proto == AT_WSMAN ? "application/soap+xml;charset=UTF-8" : "text/xml",
		 s->proto == AT_SOAP ? "SOAPAction: " : "", s->proto == AT_SOAP ? s->soap_action : "",
		 s->proto == AT_SOAP ? "\r\n" : "", s->req.len);
	sbuf_add(&rc->http, hdr);
	add_bytes(&rc->http, s->req.p, s->req.len);

	if (rc->answers.len)
		add_bytes(&rc->answers, "", 1);
	sel = ft_selector(r.status);
	add_bytes(&rc->answers, &sel, 1);
	add_bytes(&rc->answers, r.body.data ? r.body.data : "", r.body.len);
	sbuf_free(&rc->last);
	rc->last = r.body;
	*body = rc->last.data ? rc->last.data : "";
	*len = rc->last.len;
	*code = r.status;
	return 0;
}

static void write_file(const char *dir, const char *sub, const char *name, unsigned char first,
		       const struct sbuf *b)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	mkdir(path, 0755);
	fuzz_write_seed(path, name, first, b->data, b->len);
}

/* Runs every operation, COMMIT and UNPROVISION last, on one device in setup (IN). */
static void record(const char *dir, int v, int amt_major, const char *tag)
{
	struct device d;
	struct digest_state ds;
	size_t order[64], n = 0;

	sim_fuzz_device(&d, sim_fuzz_selector(v, 1));
	sim_fuzz_known_auth(&d, &ds); /* the realm fuzz_sim_http's device has */
	for (size_t i = 0; i < ft_n_ops; i++)
		if (ft_ops[i].op != AMTPROV_AMT_COMMIT && ft_ops[i].op != AMTPROV_AMT_UNPROVISION)
			order[n++] = i;
	for (size_t i = 0; i < ft_n_ops; i++)
		if (ft_ops[i].op == AMTPROV_AMT_COMMIT || ft_ops[i].op == AMTPROV_AMT_UNPROVISION)
			order[n++] = i;
	for (size_t k = 0; k < n; k++) {
		struct rec rc = {.d = &d};
		char name[64];
		int st = d.prov_state;

		ft_run(order[k], amt_major, answer, &rc);
		snprintf(name, sizeof(name), "%s-op%02zu", tag, order[k]);
		write_file(dir, amt_major < 9 ? "fuzz_transport_soap" : "fuzz_transport_wsman",
			   name, (unsigned char)order[k], &rc.answers);
		/* The sim harnesses start from a fresh device in the state this one had. */
		if (rc.wsman.len)
			write_file(dir, "fuzz_sim_wsman", name, sim_fuzz_selector(v, st), &rc.wsman);
		if (rc.soap.len)
			write_file(dir, "fuzz_sim_soap", name, sim_fuzz_selector(v, st), &rc.soap);
		if (rc.http.len) {
			/* Device selector, then the piece size (0x20: 257-byte reads). */
			char sel2[2] = {(char)sim_fuzz_selector(v, st), 0x20};
			struct sbuf h = {0};

			sbuf_addn(&h, sel2 + 1, 1);
			sbuf_addn(&h, rc.http.data, rc.http.len);
			write_file(dir, "fuzz_sim_http", name, (unsigned char)sel2[0], &h);
			sbuf_free(&h);
		}
		sbuf_free(&rc.answers);
		sbuf_free(&rc.wsman);
		sbuf_free(&rc.soap);
		sbuf_free(&rc.http);
		sbuf_free(&rc.last);
	}
	device_clear(&d);
}

/* What a CA's CRL distribution point serves: one revoked serial, signed. */
static void write_crls(const char *dir)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_CRL *crl = X509_CRL_new();
	X509_NAME *n = X509_NAME_new();
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	unsigned char *der = NULL;
	struct sbuf b = {0};
	BIO *pem = BIO_new(BIO_s_mem());
	BUF_MEM *m;
	int len;

	if (!k || !crl || !n || !r || !t || !serial || !pem ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"Fuzz CA", -1,
					-1, 0) ||
	    !X509_CRL_set_version(crl, 1) || !X509_CRL_set_issuer_name(crl, n) ||
	    !ASN1_TIME_set_string(t, "20260101000000Z") || !X509_CRL_set1_lastUpdate(crl, t) ||
	    !ASN1_TIME_set_string(t, "20360101000000Z") || !X509_CRL_set1_nextUpdate(crl, t) ||
	    !ASN1_INTEGER_set(serial, 0x1234) || !X509_REVOKED_set_serialNumber(r, serial) ||
	    !X509_REVOKED_set_revocationDate(r, t) || !X509_CRL_add0_revoked(crl, r) ||
	    !X509_CRL_sort(crl) || !X509_CRL_sign(crl, k, EVP_sha256()) ||
	    (len = i2d_X509_CRL(crl, &der)) <= 0 || !PEM_write_bio_X509_CRL(pem, crl)) {
		fprintf(stderr, "make_corpus: cannot make a CRL\n");
		exit(1);
	}
	sbuf_addn(&b, (const char *)der, (size_t)len);
	write_file(dir, "fuzz_transport_wsman", "crl-der", (unsigned char)ft_n_ops, &b);
	sbuf_free(&b);
	BIO_get_mem_ptr(pem, &m);
	sbuf_addn(&b, m->data, m->length);
	write_file(dir, "fuzz_transport_wsman", "crl-pem", (unsigned char)ft_n_ops, &b);
	sbuf_free(&b);
	OPENSSL_free(der);
	BIO_free(pem);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(t);
	X509_NAME_free(n);
	X509_CRL_free(crl);
	EVP_PKEY_free(k);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	sim_fuzz_init();
	record(argv[1], 0, 11, "amt11");
	record(argv[1], 1, 8, "amt8");
	write_crls(argv[1]);
	return 0;
}
