/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sim_http.c - amtsim's HTTP/1.1 server side (sim/http.c, reached by including it):
 * request line, headers, Content-Length bodies, keep-alive pipelining and the Digest
 * Authorization check (sim/digest.c), then amtsim's routing to its WS-Man and SOAP handlers.
 * Byte 0 picks the device (as in fuzz_sim_wsman), byte 1 the size of the pieces the rest, the
 * byte stream a client sends, is fed to conn_read() in, as a socket would deliver it. The
 * device has a fixed realm and nonce (fuzz_sim.h), so seeds carry Digest headers that pass.
 */
#include "http.c"

#include "fuzz_sim.h"
#include "soap_legacy.h"
#include "wsman.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static struct event_base *g_base;

/* amtsim's route() (sim/main.c) for the two SOAP stacks. */
static void route(struct sim_server *srv, struct device *d, const struct http_request *req,
		  struct http_response *resp)
{
	(void)srv;
	if (req->body_len != req->content_length || req->body[req->body_len] != '\0')
		abort(); /* the body handed over is not the one announced */
	if (strcmp(req->method, "POST") != 0)
		resp->status = 405;
	else if (!strcmp(req->path, "/wsman"))
		wsman_handle(d, req, resp);
	else if (soap_legacy_path(req->path) && device_has_legacy_soap(d))
		soap_legacy_handle(d, req, resp);
	else
		resp->status = 404;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct sim_server srv = {.handler = route, .nonce_lifetime = 60};
	struct sim_dev_rt rt;
	struct device d;
	struct bufferevent *pair[2];
	struct conn *c;
	size_t piece, off;

	if (size < 2)
		return 0;
	if (!g_base && !(g_base = event_base_new()))
		abort();
	srv.base = g_base;
	piece = (size_t)data[1] * 8 + 1;
	memset(&rt, 0, sizeof(rt));
	sim_fuzz_device(&d, data[0]);
	sim_fuzz_known_auth(&d, &rt.digest);
	/* Byte 1's low bit: Kerberos on, so "Authorization: Negotiate <token>" reaches the
	 * GSSAPI acceptor and the PAC parser (sim/negotiate.c); every bad token must be a 401. */
	if (data[1] & 1) {
		d.kerberos.enabled = true;
		snprintf(d.kerberos.realm, sizeof(d.kerberos.realm), "CONTOSO.COM");
		snprintf(d.kerberos.spn[0], sizeof(d.kerberos.spn[0]), "HTTP/fuzz.contoso.com");
		d.kerberos.n_spn = 1;
		d.kerberos.key_version = 2;
		snprintf(d.kerberos.master_key_b64, sizeof(d.kerberos.master_key_b64),
			 "QUFBQUFBQUFBQUFBQUFBQQ==");
	}
	d.runtime = &rt;
	c = calloc(1, sizeof(*c));
	if (!c || bufferevent_pair_new(g_base, 0, pair) != 0)
		abort();
	c->srv = &srv;
	c->dev = &d;
	c->bev = pair[0];
	bufferevent_enable(pair[0], EV_READ | EV_WRITE);
	c->handshake_done = true;
	snprintf(c->peer, sizeof(c->peer), "127.0.0.1");
	srv.conns = c;
	for (off = 2; off < size && srv.conns; off += piece) {
		size_t n = size - off < piece ? size - off : piece;

		/* The peer writes; the pair moves the bytes into the connection's input at once. */
		if (bufferevent_write(pair[1], data + off, n) != 0)
			abort();
		conn_read(pair[0], c);
	}
	if (srv.conns) /* conn_read frees it only for a dropped connection */
		conn_free(c);
	bufferevent_free(pair[1]);
	/* Run what became due (the pair's deferred callbacks) so nothing leaks into the next
	 * input. */
	event_base_loop(g_base, EVLOOP_NONBLOCK);
	device_clear(&d);
	return 0;
}
