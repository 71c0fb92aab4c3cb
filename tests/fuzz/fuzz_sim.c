/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_sim.c - see fuzz_sim.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "fuzz_sim.h"
#include "tls.h"
#include "wsman.h"

/* Versions on both sides of the firmware boundaries amtsim models (legacy SOAP below 9.0,
 * PSK/SHA-1 hashes before 11.0, closed non-TLS port from 16.1). */
static const char *const versions[] = {"11.8.50", "8.1.20", "16.1.25", "6.2.10", "12.0.45"};
#define N_VERSIONS (sizeof(versions) / sizeof(versions[0]))

static struct tls_keypool pool;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	sim_fuzz_init();
	return 0;
}

void sim_fuzz_init(void)
{
	char dir[] = "/tmp/amtprov-fuzz-XXXXXX";
	char path[64];

	xmlInitParser();
	if (!mkdtemp(dir) || tls_keypool_init(&pool, dir, 2, 2048) != 0)
		abort();
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/keypool-%d.pem", dir, i);
		unlink(path);
	}
	rmdir(dir);
	wsman_set_keypool(&pool);
}

void sim_fuzz_device(struct device *d, unsigned char sel)
{
	if (device_init(d, "fuzz", versions[(sel / 3) % N_VERSIONS]) != 0)
		abort();
	d->prov_state = (enum dev_prov_state)(sel % 3);
}

unsigned char sim_fuzz_selector(int v, int state)
{
	return (unsigned char)(v * 3 + state);
}

void sim_fuzz_known_auth(struct device *d, struct digest_state *st)
{
	snprintf(d->realm, sizeof(d->realm), "%s", SIM_FUZZ_REALM);
	device_ha1("admin", d->realm, "", d->admin_ha1);
	memset(st, 0, sizeof(*st));
	st->lifetime = 3600;
	snprintf(st->nonces[0].value, sizeof(st->nonces[0].value), "%s", SIM_FUZZ_NONCE);
	st->nonces[0].created = time(NULL);
	st->next = 1;
}

void sim_fuzz_authorization(const char *method, const char *uri, unsigned nc, char *out,
			    size_t size)
{
	char ha1[33], resp[33], ncs[9];

	device_ha1("admin", SIM_FUZZ_REALM, "", ha1);
	snprintf(ncs, sizeof(ncs), "%08x", nc);
	digest_response(ha1, SIM_FUZZ_NONCE, ncs, "fuzz", "auth", method, uri, resp);
	snprintf(out, size,
		 "Digest username=\"admin\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", "
		 "response=\"%s\", qop=auth, nc=%s, cnonce=\"fuzz\"",
		 SIM_FUZZ_REALM, SIM_FUZZ_NONCE, uri, resp, ncs);
}

void sim_fuzz_post(struct device *d, const char *path, const unsigned char *body, size_t len,
		   sim_fuzz_handler handler)
{
	struct http_request q;
	struct http_response r;
	char *copy = malloc(len + 1);

	if (!copy)
		return;
	memcpy(copy, body, len);
	copy[len] = '\0';
	memset(&q, 0, sizeof(q));
	memset(&r, 0, sizeof(r));
	r.status = 500; /* what http.c's handle_request() starts from */
	snprintf(q.method, sizeof(q.method), "POST");
	snprintf(q.path, sizeof(q.path), "%s", path);
	q.minor = 1;
	q.body = copy;
	q.body_len = len;
	q.user = "admin";
	q.tls = true;
	handler(d, &q, &r);
	if (r.status < 100 || r.status > 599)
		abort();
	sbuf_free(&r.body);
	free(copy);
}

void sim_fuzz_one(const unsigned char *data, size_t size,
		  void (*fn)(struct device *d, const unsigned char *seg, size_t len))
{
	const unsigned char *p, *end = data + size;
	struct device d;

	if (size < 1)
		return;
	sim_fuzz_device(&d, data[0]);
	for (p = data + 1; p < end;) {
		const unsigned char *nul = memchr(p, '\0', (size_t)(end - p));

		fn(&d, p, (size_t)((nul ? nul : end) - p));
		p = nul ? nul + 1 : end;
	}
	device_clear(&d);
}
