/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sim_soap.c - amtsim's legacy EOI SOAP services (sim/soap_legacy*.c): first byte picks
 * firmware version and setup state, then NUL-separated requests, each a byte that picks the
 * service path and a SOAP 1.1 body, go to the same device one after another.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_sim.h"
#include "http.h"
#include "soap_legacy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* The services amtsim serves, and one it does not (the unknown-service fault). */
static const char *const paths[] = {
	"/SecurityAdministrationService", "/NetworkAdministrationService", "/NetworkTimeService",
	"/RemoteControlService", "/GeneralInfoService", "/NoSuchService",
};
#define N_PATHS (sizeof(paths) / sizeof(paths[0]))

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
	char *body;

	if (len < 1)
		return;
	body = malloc(len);
	if (!body)
		return;
	memcpy(body, seg + 1, len - 1);
	body[len - 1] = '\0';
	memset(&q, 0, sizeof(q));
	memset(&r, 0, sizeof(r));
	r.status = 500; /* what http.c's handle_request() starts from */
	strcpy(q.method, "POST");
	strcpy(q.path, paths[seg[0] % N_PATHS]);
	q.minor = 1;
	q.body = body;
	q.body_len = len - 1;
	q.user = "admin";
	soap_legacy_handle(d, &q, &r);
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
