/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sim_wsman.c - amtsim's WS-Management handlers (sim/wsman*.c, setup_ops.c) on a
 * simulated device: first byte picks firmware version and setup state, then NUL-separated
 * request bodies are POSTed to /wsman one after another on the same device, so a sequence
 * (GenerateKeyPair, AddCertificate, CommitChanges...) can reach deep states.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_sim.h"
#include "http.h"
#include "wsman.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	sim_fuzz_init();
	return 0;
}

static void one(void *ctx, const unsigned char *seg, size_t len)
{
	struct device *d = ctx;
	struct http_request q;
	struct http_response r;
	char *body = malloc(len + 1);

	if (!body)
		return;
	/* As http.c hands it over: NUL-terminated, authenticated as admin. */
	memcpy(body, seg, len);
	body[len] = '\0';
	memset(&q, 0, sizeof(q));
	memset(&r, 0, sizeof(r));
	r.status = 500; /* what http.c's handle_request() starts from */
	strcpy(q.method, "POST");
	strcpy(q.path, "/wsman");
	q.minor = 1;
	q.body = body;
	q.body_len = len;
	q.user = "admin";
	q.tls = true;
	wsman_handle(d, &q, &r);
	if (r.status < 100 || r.status > 599)
		abort();
	sbuf_free(&r.body);
	free(body);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct device d;

	if (size < 1)
		return 0;
	sim_fuzz_device(&d, data[0]);
	sim_fuzz_segments(data + 1, size - 1, one, &d);
	device_clear(&d);
	return 0;
}
