/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP Digest authentication as AMT does it (RFC 2617/7616, MD5, qop=auth): per-device nonces
 * with nc replay tracking, stale=true for an expired nonce whose response is otherwise right,
 * and a fresh nonce in every challenge.
 */
#ifndef AMTSIM_DIGEST_H
#define AMTSIM_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DIGEST_NONCES 16 /* per device; the oldest is recycled */

struct digest_nonce {
	char value[33];
	time_t created;
	uint32_t last_nc;
};

struct digest_state {
	struct digest_nonce nonces[DIGEST_NONCES];
	unsigned next;
	int lifetime; /* seconds a nonce stays valid */
};

/** Parsed Authorization: Digest header; pointers into a private copy. */
struct digest_auth {
	char *username, *realm, *nonce, *uri, *response, *qop, *nc, *cnonce, *algorithm;
	char buf[2048];
};

enum digest_result {
	DIGEST_OK = 0,
	DIGEST_MISSING,   /* no or non-Digest Authorization header */
	DIGEST_MALFORMED,
	DIGEST_BAD_USER,
	DIGEST_BAD_RESPONSE,
	DIGEST_STALE,     /* right password, expired/unknown nonce: challenge with stale=true */
	DIGEST_REPLAY,    /* nc not larger than the last one seen for this nonce */
};

/** Looks up HA1 for a user name. @return true and fills @p ha1 (33 bytes) if known. */
typedef bool (*digest_ha1_fn)(void *arg, const char *user, char ha1[33]);

/** Parses the header value (after "Authorization:"). @return 0 or -1. */
int digest_parse(const char *header, struct digest_auth *out);

/** Verifies a request. @p user_out (>= 17 bytes) receives the authenticated user name. */
enum digest_result digest_check(struct digest_state *st, const char *realm, const char *method,
				const char *header, digest_ha1_fn lookup, void *arg,
				char *user_out, size_t user_size, time_t now);

/** Builds the WWW-Authenticate value with a new nonce (AMT's layout). */
void digest_challenge(struct digest_state *st, const char *realm, bool stale, char *out,
		      size_t size, time_t now);

/** Computes the expected response (for tests and clients). @p out is 33 bytes. */
void digest_response(const char *ha1, const char *nonce, const char *nc, const char *cnonce,
		     const char *qop, const char *method, const char *uri, char out[33]);

const char *digest_result_name(enum digest_result r);

#endif
