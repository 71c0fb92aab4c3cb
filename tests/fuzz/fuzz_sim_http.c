/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sim_http.c - amtsim's HTTP/1.1 server side (sim/http.c, reached by including it):
 * request line, headers, Content-Length bodies, keep-alive pipelining and the Digest
 * Authorization parser (sim/digest.c). The input is the byte stream a client sends, fed to
 * conn_read() in pieces (the first byte sets the piece size) as a socket would deliver it.
 * A request that authenticates reaches a stub handler; the WS-Man and SOAP handlers have
 * their own harnesses.
 */
#include "http.c"

#include "fuzz_sim.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static struct event_base *g_base;

static void stub_handler(struct sim_server *srv, struct device *d, const struct http_request *req,
			 struct http_response *resp)
{
	(void)srv;
	(void)d;
	if (req->body_len != req->content_length || req->body[req->body_len] != '\0')
		abort(); /* the body handed over is not the one announced */
	resp->status = 200;
	sbuf_add(&resp->body, "ok");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	g_base = event_base_new();
	if (!g_base)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct sim_server srv = {.base = g_base, .handler = stub_handler, .nonce_lifetime = 60};
	struct sim_dev_rt rt;
	struct device d;
	struct bufferevent *pair[2];
	struct conn *c;
	size_t piece, off;

	if (size < 1)
		return 0;
	piece = (size_t)data[0] * 8 + 1;
	memset(&rt, 0, sizeof(rt));
	rt.digest.lifetime = 60;
	sim_fuzz_device(&d, 0);
	d.runtime = &rt;
	c = calloc(1, sizeof(*c));
	if (!c || bufferevent_pair_new(g_base, 0, pair) != 0)
		abort();
	c->srv = &srv;
	c->dev = &d;
	c->bev = pair[0];
	c->handshake_done = true;
	strcpy(c->peer, "127.0.0.1");
	srv.conns = c;
	for (off = 1; off < size && srv.conns; off += piece) {
		size_t n = size - off < piece ? size - off : piece;

		evbuffer_add(bufferevent_get_input(pair[0]), data + off, n);
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
