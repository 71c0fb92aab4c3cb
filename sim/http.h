/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event-driven HTTP/1.1 server every simulated device answers on: TLS (16993) and plain
 * (16992) listeners on the device's own loopback address, keep-alive, chunked responses like
 * AMT's, the AMT Server header, and Digest authentication before any handler runs.
 */
#ifndef AMTSIM_HTTP_H
#define AMTSIM_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "device.h"
#include "digest.h"
#include "simutil.h"
#include "tls.h"

#define HTTP_MAX_HEADER 16384
#define HTTP_MAX_BODY (1024 * 1024)

struct http_request {
	char method[16];
	char path[1024];
	int minor;               /* HTTP/1.minor */
	bool keep_alive;
	char authorization[2048];
	char content_type[256];
	char soap_action[512];
	size_t content_length;
	char *body;              /* NUL-terminated, owned by the connection */
	size_t body_len;
	const char *user;        /* authenticated user name */
	bool tls;
};

struct http_response {
	int status;
	const char *content_type;
	struct sbuf body;
	unsigned delay_ms;       /* answer only after this long (modelled firmware work) */
};

struct sim_server;
struct conn;

/** Answers one authenticated request. Runs on the event loop: must not block. */
typedef void (*http_handler_fn)(struct sim_server *srv, struct device *d,
				const struct http_request *req, struct http_response *resp);

/** Per-device runtime state (not persisted). */
struct sim_dev_rt {
	X509 *cert;
	EVP_PKEY *key;
	struct digest_state digest;
	struct evconnlistener *tls_listener;
	struct evconnlistener *plain_listener;
	void *tls_arg, *plain_arg; /* the listeners' callback arguments */
	STACK_OF(X509) *chain;     /* intermediates sent with an installed certificate */
	unsigned tls_generation;   /* the device's tls_generation this identity was loaded for */
	unsigned long requests, auth_failures, handshake_failures;
	/* Counted for benchmarks and tests: completed TLS handshakes (full and resumed), 401
	 * challenges sent (first challenges included), connections closed by the request
	 * limit. */
	unsigned long handshakes, resumed, challenges, limit_closes;
};

struct sim_server {
	struct event_base *base;
	SSL_CTX *ssl_ctx;
	http_handler_fn handler;
	void *handler_arg;
	int nonce_lifetime;
	unsigned long connections;
	struct conn *conns;
};

/** Starts the listeners of @p d on its address. @return 0 or -1 (message in @p err). */
int http_device_listen(struct sim_server *srv, struct device *d, int tls_port, int plain_port,
		       char *err, size_t errlen);

/** Closes the listeners and frees the runtime of @p d. */
void http_device_stop(struct device *d);

/** Frees every open connection (shutdown). */
void http_server_close_all(struct sim_server *srv);

const char *http_reason(int status);

#endif
