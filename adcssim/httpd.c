/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd.c - the HTTP/1.1 server behind every adcssim endpoint. Each connection carries one
 * request (the reply says "Connection: close"); reads and writes time out after 10 s, so a
 * stalled client holds the server for that long at most.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "httpd.h"

#define MAX_LISTENERS 4
#define MAX_HEADER 16384

struct httpd {
	http_handler_fn fn;
	void *ctx;
	int fd[MAX_LISTENERS];
	SSL_CTX *tls[MAX_LISTENERS];
	size_t n;
};

struct httpd *httpd_new(http_handler_fn fn, void *ctx)
{
	struct httpd *h = calloc(1, sizeof(*h));

	if (h) {
		h->fn = fn;
		h->ctx = ctx;
	}
	return h;
}

int httpd_listen(struct httpd *h, const char *ip, unsigned port, SSL_CTX *tls_ctx, char *err,
		 size_t errsz)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (h->n == MAX_LISTENERS || inet_pton(AF_INET, ip, &sa.sin_addr) != 1 || port == 0 ||
	    port > 65535) {
		snprintf(err, errsz, "listen address %s:%u is not a numeric IPv4 address and port",
			 ip, port);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		close(fd);
		goto fail;
	}
	h->fd[h->n] = fd;
	h->tls[h->n] = tls_ctx;
	h->n++;
	return 0;
fail:
	snprintf(err, errsz, "listen on %s:%u: %s", ip, port, strerror(errno));
	return -1;
}

struct conn {
	int fd;
	SSL *ssl;
};

static int conn_read(struct conn *c, char *buf, size_t len)
{
	if (c->ssl) {
		int n = SSL_read(c->ssl, buf, (int)len);

		return n > 0 ? n : -1;
	}
	ssize_t n = read(c->fd, buf, len);

	return n > 0 ? (int)n : -1;
}

static int conn_write(struct conn *c, const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		int n;

		if (c->ssl) {
			n = SSL_write(c->ssl, buf + off, (int)(len - off));
		} else {
			ssize_t w = write(c->fd, buf + off, len - off);

			n = w > 0 ? (int)w : -1;
		}
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

void http_reply(struct http_resp *resp, int status, const char *type, const char *body,
		size_t len)
{
	free(resp->body);
	resp->body = malloc(len + 1);
	resp->status = status;
	snprintf(resp->content_type, sizeof(resp->content_type), "%s", type);
	if (!resp->body) {
		resp->status = 500;
		resp->body_len = 0;
		return;
	}
	memcpy(resp->body, body, len);
	resp->body[len] = '\0';
	resp->body_len = len;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 500: return "Internal Server Error";
	default: return "Status";
	}
}

static void send_resp(struct conn *c, struct http_resp *r)
{
	char hdr[1600];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			 "Connection: close\r\nServer: adcssim\r\n\r\n",
			 r->status, reason(r->status), r->content_type[0] ? r->content_type :
			 "text/plain", r->body_len, r->extra_headers);

	if (n > 0 && (size_t)n < sizeof(hdr) && conn_write(c, hdr, (size_t)n) == 0 && r->body_len)
		conn_write(c, r->body, r->body_len);
}

static void header_value(const char *line, const char *name, char *dst, size_t dsz)
{
	size_t nl = strlen(name);

	if (strncasecmp(line, name, nl) || line[nl] != ':')
		return;
	line += nl + 1;
	line += strspn(line, " \t");
	snprintf(dst, dsz, "%.*s", (int)strcspn(line, "\r\n"), line);
}

/* Reads one request; returns the HTTP status to answer with on a malformed one, 0 when
 * the request is complete, -1 when the peer went away. */
static int read_req(struct conn *c, struct http_req *req)
{
	char *buf = malloc(MAX_HEADER + 1), *end, *line, *next, clen[32] = "";
	size_t have = 0, hl;
	long long cl = 0;
	int n, st = -1;

	if (!buf)
		return 500;
	for (;;) {
		n = conn_read(c, buf + have, MAX_HEADER - have);
		if (n <= 0)
			goto out;
		have += (size_t)n;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
		if (have == MAX_HEADER) {
			st = 413;
			goto out;
		}
	}
	hl = (size_t)(end - buf) + 4;
	*end = '\0';
	st = 400;
	if (sscanf(buf, "%7s %511s HTTP/1.", req->method, req->path) != 2)
		goto out;
	for (line = strstr(buf, "\r\n"); line; line = next) {
		line += 2;
		next = strstr(line, "\r\n");
		header_value(line, "Content-Type", req->content_type, sizeof(req->content_type));
		header_value(line, "Authorization", req->authorization, sizeof(req->authorization));
		header_value(line, "Content-Length", clen, sizeof(clen));
		if (!strncasecmp(line, "Transfer-Encoding:", 18))
			goto out; /* chunked bodies: not needed by any client we serve */
	}
	if (clen[0]) {
		char *e;

		cl = strtoll(clen, &e, 10);
		if (*e || cl < 0)
			goto out;
		if (cl > HTTPD_MAX_BODY) {
			st = 413;
			goto out;
		}
	}
	req->body = malloc((size_t)cl + 1);
	if (!req->body) {
		st = 500;
		goto out;
	}
	req->body_len = have - hl < (size_t)cl ? have - hl : (size_t)cl;
	memcpy(req->body, buf + hl, req->body_len);
	while (req->body_len < (size_t)cl) {
		n = conn_read(c, req->body + req->body_len, (size_t)cl - req->body_len);
		if (n <= 0) {
			st = -1;
			goto out;
		}
		req->body_len += (size_t)n;
	}
	req->body[req->body_len] = '\0';
	st = 0;
out:
	free(buf);
	return st;
}

static void peer_identity(struct conn *c, struct http_req *req)
{
	X509 *peer = SSL_get1_peer_certificate(c->ssl);

	if (peer && SSL_get_verify_result(c->ssl) == X509_V_OK)
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
					  req->peer_cn, sizeof(req->peer_cn));
	X509_free(peer);
}

static void serve_conn(struct httpd *h, int fd, SSL_CTX *tls)
{
	struct conn c = { .fd = fd };
	struct http_req req;
	struct http_resp resp;
	struct timeval tv = { .tv_sec = 10 };
	int st;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (tls) {
		c.ssl = SSL_new(tls);
		if (!c.ssl || SSL_set_fd(c.ssl, fd) != 1 || SSL_accept(c.ssl) != 1) {
			ERR_clear_error();
			goto out;
		}
		req.tls = 1;
		peer_identity(&c, &req);
	}
	st = read_req(&c, &req);
	if (st < 0)
		goto out;
	if (st > 0)
		http_reply(&resp, st, "text/plain", "bad request\n", 12);
	else
		h->fn(h->ctx, &req, &resp);
	send_resp(&c, &resp);
	if (c.ssl)
		SSL_shutdown(c.ssl);
out:
	ERR_clear_error();
	SSL_free(c.ssl);
	free(req.body);
	free(resp.body);
	close(fd);
}

void httpd_run(struct httpd *h, volatile int *stop)
{
	struct pollfd p[MAX_LISTENERS];
	size_t i;

	for (i = 0; i < h->n; i++)
		p[i] = (struct pollfd){ .fd = h->fd[i], .events = POLLIN };
	while (!*stop) {
		if (poll(p, h->n, 200) <= 0)
			continue;
		for (i = 0; i < h->n; i++) {
			int fd;

			if (!(p[i].revents & POLLIN))
				continue;
			fd = accept4(h->fd[i], NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				serve_conn(h, fd, h->tls[i]);
		}
	}
}

void httpd_free(struct httpd *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->n; i++)
		close(h->fd[i]);
	free(h);
}

static int accept_verified(int ok, X509_STORE_CTX *ctx)
{
	/* A presented certificate must verify; none at all is fine (UsernameToken endpoints). */
	return ok;
}

SSL_CTX *httpd_tls_ctx(const char *cert_pem, const char *key_pem, const char *trust_pem,
		       char *err, size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	static const unsigned char sid[] = "adcssim";

	if (!ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_pem) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key_pem, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, trust_pem, NULL) != 1)
		goto fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_verified);
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(trust_pem));
	return ctx;
fail:
	snprintf(err, errsz, "TLS setup with %s / %s: %s", cert_pem, key_pem,
		 ERR_reason_error_string(ERR_peek_last_error()) ? ERR_reason_error_string(ERR_peek_last_error()) : "failed");
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}
