/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Clients of the registration API by address (api_addr.h): the key of an accepted peer, and
 * a chained hash table of the keys with connections open, sized once from the connection cap
 * (it never holds more keys than connections) and keyed with a random secret.
 */
#include "api_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#define MIN_BUCKETS 64
#define MAX_BUCKETS 65536

struct api_addrs {
	struct api_addr **bucket;
	size_t mask; /* buckets - 1, a power of two */
	size_t size;
	uint64_t secret[2];
};

int api_addr_key_of(const struct sockaddr *sa, socklen_t len, struct api_addr_key *k)
{
	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		k->b[10] = k->b[11] = 0xff;
		memcpy(k->b + 12, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		/* Every host on a link has an fe80::/64 address: there, the prefix says nothing
		 * of the host. */
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) || IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr))
			memcpy(k->b, &in6->sin6_addr, 16);
		else
			memcpy(k->b, &in6->sin6_addr, 8);
		return 0;
	}
	return -1;
}

char *api_addr_key_str(const struct api_addr_key *k, char *buf, size_t size)
{
	static const unsigned char v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char s[INET6_ADDRSTRLEN];

	if (memcmp(k->b, v4, sizeof(v4)) == 0) {
		if (!inet_ntop(AF_INET, k->b + 12, s, sizeof(s)))
			snprintf(s, sizeof(s), "?");
		snprintf(buf, size, "%s", s);
	} else if (k->b[0] == 0xfe && (k->b[1] & 0xc0) == 0x80) { /* link-local, whole */
		if (!inet_ntop(AF_INET6, k->b, s, sizeof(s)))
			snprintf(s, sizeof(s), "?");
		snprintf(buf, size, "%s", s);
	} else {
		if (!inet_ntop(AF_INET6, k->b, s, sizeof(s)))
			snprintf(s, sizeof(s), "?");
		snprintf(buf, size, "%s/64", s);
	}
	return buf;
}

/* MurmurHash3's 64-bit finalizer: a bijection that spreads every input bit. */
static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static size_t slot(const struct api_addrs *t, const struct api_addr_key *k)
{
	uint64_t w[2];

	memcpy(w, k->b, sizeof(w));
	return (size_t)(mix(mix(w[0] ^ t->secret[0]) ^ w[1] ^ t->secret[1]) & t->mask);
}

struct api_addrs *api_addrs_new(size_t expect)
{
	struct api_addrs *t = calloc(1, sizeof(*t));
	size_t n = MIN_BUCKETS;

	if (!t)
		return NULL;
	while (n < expect && n < MAX_BUCKETS)
		n *= 2;
	t->bucket = calloc(n, sizeof(*t->bucket));
	if (!t->bucket) {
		free(t);
		return NULL;
	}
	t->mask = n - 1;
	/* Without the secret, the table still works; only the spread is predictable. */
	if (RAND_bytes((unsigned char *)t->secret, sizeof(t->secret)) != 1)
		t->secret[0] = (uint64_t)(uintptr_t)t, t->secret[1] = (uint64_t)(uintptr_t)t->bucket;
	return t;
}

struct api_addr *api_addrs_get(struct api_addrs *t, const struct api_addr_key *k)
{
	size_t i = slot(t, k);
	struct api_addr *e;

	for (e = t->bucket[i]; e; e = e->chain)
		if (memcmp(&e->key, k, sizeof(*k)) == 0)
			return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = *k;
	e->chain = t->bucket[i];
	t->bucket[i] = e;
	t->size++;
	return e;
}

void api_addrs_drop(struct api_addrs *t, struct api_addr *e)
{
	for (struct api_addr **p = &t->bucket[slot(t, &e->key)]; *p; p = &(*p)->chain)
		if (*p == e) {
			*p = e->chain;
			t->size--;
			free(e);
			return;
		}
}

size_t api_addrs_size(const struct api_addrs *t)
{
	return t->size;
}

void api_addrs_free(struct api_addrs *t)
{
	if (!t)
		return;
	for (size_t i = 0; i <= t->mask; i++)
		while (t->bucket[i]) {
			struct api_addr *e = t->bucket[i];

			t->bucket[i] = e->chain;
			free(e);
		}
	free(t->bucket);
	free(t);
}
