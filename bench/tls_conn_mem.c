/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_conn_mem: what one established TLS client connection costs in memory with OpenSSL
 * alone, at its leanest, on this machine (issue 13 item 4). It bounds from below what any
 * HTTPS client, ours or libcurl, can hold per AMT device that has a connection open:
 *   - one SSL_CTX shared by every connection (libcurl 7.88 makes one per connection);
 *   - SSL_MODE_RELEASE_BUFFERS (the read and write buffers go back when empty);
 *   - no session cache; TLS 1.2 with ECDHE and AES-GCM, as AMT's firmware negotiates;
 *   - each connection has carried one small request and its answer, then idles, as a
 *     device's connection does while the firmware works on the next call.
 * The server is a child process (its memory is not counted), RSA-2048 like AMT's
 * certificate. The client's resident set (VmRSS) is read after a first connection (library
 * start-up) and after N more: the difference over N is printed.
 *
 * usage: tls_conn_mem [N]   (default 2000; needs N + 20 descriptors in each process)
 * Prints key=value lines. Not a test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static void die(const char *what)
{
	fprintf(stderr, "tls_conn_mem: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			v = strtol(line + 6, NULL, 10);
	fclose(f);
	return v;
}

/* A throw-away self-signed RSA-2048 server certificate, made in memory. */
static SSL_CTX *server_ctx(void)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!key || !x || !ctx)
		die("server set-up");
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"tls_conn_mem", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (X509_set_pubkey(x, key) != 1 || X509_sign(x, key, EVP_sha256()) == 0 ||
	    SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)
		die("server certificate");
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

/* Accepts connections one after the other, answers each one's request, keeps them open. */
static void serve(int lfd, int n)
{
	SSL_CTX *ctx = server_ctx();
	char buf[256];

	for (int i = 0; i < n; i++) {
		int fd = accept(lfd, NULL, NULL);
		SSL *s;

		if (fd < 0)
			die("accept");
		s = SSL_new(ctx);
		if (!s || SSL_set_fd(s, fd) != 1 || SSL_accept(s) != 1 ||
		    SSL_read(s, buf, sizeof(buf)) <= 0 ||
		    SSL_write(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 40) != 40)
			die("server handshake");
		/* kept open (and leaked) until the client is done and this process ends */
	}
	pause();
}

static SSL *open_one(SSL_CTX *ctx, const struct sockaddr_in *a)
{
	static const char req[] = "POST /wsman HTTP/1.1\r\nHost: amt\r\nContent-Length: 0\r\n\r\n";
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char buf[256];
	SSL *s;

	if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof(*a)) != 0)
		die("connect");
	s = SSL_new(ctx);
	if (!s || SSL_set_fd(s, fd) != 1 || SSL_connect(s) != 1 ||
	    SSL_write(s, req, (int)sizeof(req) - 1) != (int)sizeof(req) - 1 ||
	    SSL_read(s, buf, sizeof(buf)) <= 0)
		die("client handshake");
	return s;
}

int main(int argc, char **argv)
{
	char *end = NULL;
	long n = argc > 1 ? strtol(argv[1], &end, 10) : 2000;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	SSL_CTX *ctx;
	SSL **conns;
	long before, after;
	pid_t child;
	int lfd;

	if (n < 1 || n > 100000 || (end && *end)) {
		fprintf(stderr, "usage: tls_conn_mem [N]   (1..100000, default 2000)\n");
		return 2;
	}
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(lfd, 128) != 0 || getsockname(lfd, (struct sockaddr *)&a, &al) != 0)
		die("listen on 127.0.0.1");
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		serve(lfd, (int)n + 1);
		_exit(0);
	}
	close(lfd);
	ctx = SSL_CTX_new(TLS_client_method());
	conns = calloc((size_t)n + 1, sizeof(*conns));
	if (!ctx || !conns)
		die("client set-up");
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* memory, not trust, is measured */
	conns[0] = open_one(ctx, &a);
	before = rss_kib();
	for (int i = 1; i <= n; i++)
		conns[i] = open_one(ctx, &a);
	after = rss_kib();
	printf("connections=%ld\n", n);
	printf("cipher=%s\n", SSL_get_cipher_name(conns[n]));
	printf("rss_before_kib=%ld\nrss_after_kib=%ld\n", before, after);
	printf("kib_per_connection=%.1f\n", (double)(after - before) / n);
	printf("mib_for_10000=%.0f\n", (double)(after - before) / n * 10000 / 1024);
	kill(child, SIGTERM);
	waitpid(child, NULL, 0);
	return 0;
}
