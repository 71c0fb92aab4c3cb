/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd.h - adcssim's small HTTP/1.1 server: plain or TLS (OpenSSL) listeners, one request
 * per connection, served one at a time. TLS listeners ask for an optional client
 * certificate and verify it against the CA, which is what the "Certificate" CEP/CES
 * endpoints authenticate with.
 */
#ifndef ADCSSIM_HTTPD_H
#define ADCSSIM_HTTPD_H

#include <stddef.h>

#include <openssl/ssl.h>

#define HTTPD_MAX_BODY (1024 * 1024)

struct http_req {
	char method[8];
	char path[512];
	char content_type[128];
	char authorization[2048];
	char *body;          /* NUL-terminated */
	size_t body_len;
	int tls;
	char peer_cn[128];   /* CN of a verified TLS client certificate, "" when none */
};

struct http_resp {
	int status;
	char content_type[96];
	char extra_headers[1024]; /* "Name: value\r\n" lines */
	char *body;              /* malloc'd; freed by the server */
	size_t body_len;
};

typedef void (*http_handler_fn)(void *ctx, const struct http_req *req, struct http_resp *resp);

struct httpd;

struct httpd *httpd_new(http_handler_fn fn, void *ctx);
/* Listens on a numeric IPv4 address; tls_ctx NULL for plain HTTP. */
int httpd_listen(struct httpd *h, const char *ip, unsigned port, SSL_CTX *tls_ctx, char *err,
		 size_t errsz);
/* Serves until *stop becomes non-zero. */
void httpd_run(struct httpd *h, volatile int *stop);
void httpd_free(struct httpd *h);

/* A TLS context with the server's key and certificate; client certificates verified
 * against trust_pem when presented. */
SSL_CTX *httpd_tls_ctx(const char *cert_pem, const char *key_pem, const char *trust_pem,
		       char *err, size_t errsz);

void http_reply(struct http_resp *resp, int status, const char *type, const char *body,
		size_t len);

#endif
