/* SPDX-License-Identifier: Apache-2.0 */
/* The registration API's clients by address (core/api/api_addr.c, docs/api.md "Limits under
 * abuse"), what api.max_connections_per_address counts: an IPv4 address, an IPv6 /64 (a
 * link-local address whole), an IPv4-mapped IPv6 address as its IPv4 address; and the table of addresses with connections
 * open, which must give every address back, forget each one dropped and free what is left.
 * The limit itself (closing an address's own least recently active connection) needs a
 * server: tests/integration/test_api_abuse.sh. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include <CUnit/CUnit.h>

#include "api_addr.h"

void register_api_addr_tests(void);

/* The key of the textual address @p ip (IPv4 or IPv6), as an accepted peer would give it. */
static int key_of(const char *ip, struct api_addr_key *k)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(40000)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(40001)};

	if (inet_pton(AF_INET, ip, &in.sin_addr) == 1)
		return api_addr_key_of((struct sockaddr *)&in, sizeof(in), k);
	CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET6, ip, &in6.sin6_addr), 1);
	return api_addr_key_of((struct sockaddr *)&in6, sizeof(in6), k);
}

static int same(const char *a, const char *b)
{
	struct api_addr_key ka, kb;

	CU_ASSERT_EQUAL_FATAL(key_of(a, &ka), 0);
	CU_ASSERT_EQUAL_FATAL(key_of(b, &kb), 0);
	return memcmp(&ka, &kb, sizeof(ka)) == 0;
}

static const char *str_of(const char *ip, char *buf, size_t size)
{
	struct api_addr_key k;

	CU_ASSERT_EQUAL_FATAL(key_of(ip, &k), 0);
	return api_addr_key_str(&k, buf, size);
}

static void test_keying(void)
{
	char buf[API_ADDR_STRLEN];
	struct api_addr_key k;
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr_in in = {.sin_family = AF_INET};

	/* IPv4: each address on its own (the port never matters). */
	CU_ASSERT(same("192.0.2.7", "192.0.2.7"));
	CU_ASSERT(!same("192.0.2.7", "192.0.2.8"));
	CU_ASSERT(!same("127.0.0.1", "127.0.0.2"));
	CU_ASSERT_STRING_EQUAL(str_of("192.0.2.7", buf, sizeof(buf)), "192.0.2.7");
	CU_ASSERT_STRING_EQUAL(str_of("0.0.0.0", buf, sizeof(buf)), "0.0.0.0");
	/* IPv6: one /64, whatever the interface identifier. */
	CU_ASSERT(same("2001:db8:1:2::5", "2001:db8:1:2:ffff:ffff:ffff:9"));
	CU_ASSERT(!same("2001:db8:1:2::5", "2001:db8:1:3::5"));
	CU_ASSERT(!same("2001:db8:1:2::5", "2001:db9:1:2::5"));
	CU_ASSERT_STRING_EQUAL(str_of("2001:db8:1:2:a:b:c:d", buf, sizeof(buf)),
			       "2001:db8:1:2::/64");
	CU_ASSERT_STRING_EQUAL(str_of("::1", buf, sizeof(buf)), "::/64");
	/* Link-local: every host of the link is in fe80::/64, so each address counts alone. */
	CU_ASSERT(!same("fe80::1", "fe80::2"));
	CU_ASSERT(same("fe80::1:2", "fe80::1:2"));
	CU_ASSERT(!same("fe80::", "::")); /* fe80::/64 itself is not the ::/64 prefix */
	CU_ASSERT_STRING_EQUAL(str_of("fe80::a:b", buf, sizeof(buf)), "fe80::a:b");
	/* IPv4-mapped IPv6 (a dual-stack listener) is its IPv4 address... */
	CU_ASSERT(same("::ffff:192.0.2.7", "192.0.2.7"));
	CU_ASSERT(!same("::ffff:192.0.2.7", "::ffff:192.0.2.8"));
	CU_ASSERT_STRING_EQUAL(str_of("::ffff:192.0.2.7", buf, sizeof(buf)), "192.0.2.7");
	/* ... and no IPv6 /64 is ever an IPv4 address, nor the other way round. */
	CU_ASSERT(!same("::", "0.0.0.0"));
	CU_ASSERT(!same("::ffff:0:1", "::1"));
	CU_ASSERT(!same("::c000:207", "192.0.2.7")); /* the old IPv4-compatible form */
	/* Neither IPv4 nor IPv6, or too short to be one: not counted. */
	CU_ASSERT_EQUAL(api_addr_key_of((struct sockaddr *)&un, sizeof(un), &k), -1);
	CU_ASSERT_EQUAL(api_addr_key_of((struct sockaddr *)&in, sizeof(in) - 1, &k), -1);
	/* A short buffer is cut, never overrun. */
	CU_ASSERT_STRING_EQUAL(str_of("2001:db8:1:2::5", buf, 6), "2001:");
}

/* Far more addresses than buckets: each found again (and only once), each dropped one gone,
 * the rest freed with the table (the sanitizer build checks for leaks). */
static void test_table(void)
{
	enum { N = 5000 };
	struct api_addrs *t = api_addrs_new(16);
	struct api_addr *e[N];
	struct api_addr_key k;
	char ip[INET_ADDRSTRLEN];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i < N; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		CU_ASSERT_EQUAL_FATAL(key_of(ip, &k), 0);
		e[i] = api_addrs_get(t, &k);
		CU_ASSERT_PTR_NOT_NULL_FATAL(e[i]);
		CU_ASSERT_EQUAL(e[i]->n, 0);
		CU_ASSERT_PTR_NULL(e[i]->conns.oldest);
		e[i]->n = 1; /* the caller's count */
	}
	CU_ASSERT_EQUAL(api_addrs_size(t), N);
	for (int i = 0; i < N; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		CU_ASSERT_EQUAL_FATAL(key_of(ip, &k), 0);
		CU_ASSERT_PTR_EQUAL(api_addrs_get(t, &k), e[i]);
	}
	CU_ASSERT_EQUAL(api_addrs_size(t), N);
	/* The same client by its IPv4-mapped form and by another host of its /64. */
	CU_ASSERT_EQUAL_FATAL(key_of("::ffff:10.0.7.1", &k), 0);
	CU_ASSERT_PTR_EQUAL(api_addrs_get(t, &k), e[7]);
	for (int i = 0; i < N; i += 2)
		api_addrs_drop(t, e[i]);
	CU_ASSERT_EQUAL(api_addrs_size(t), N / 2);
	for (int i = 0; i < N; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		CU_ASSERT_EQUAL_FATAL(key_of(ip, &k), 0);
		struct api_addr *x = api_addrs_get(t, &k);

		CU_ASSERT_PTR_NOT_NULL_FATAL(x);
		if (i % 2) {
			CU_ASSERT_PTR_EQUAL(x, e[i]);
			CU_ASSERT_EQUAL(x->n, 1);
		} else {
			CU_ASSERT_EQUAL(x->n, 0); /* a new entry: the dropped one is gone */
			api_addrs_drop(t, x);
		}
	}
	CU_ASSERT_EQUAL(api_addrs_size(t), N / 2);
	CU_ASSERT_EQUAL_FATAL(key_of("2001:db8:1:2::5", &k), 0);
	e[0] = api_addrs_get(t, &k);
	CU_ASSERT_EQUAL_FATAL(key_of("2001:db8:1:2::6", &k), 0);
	CU_ASSERT_PTR_EQUAL(api_addrs_get(t, &k), e[0]);
	CU_ASSERT_EQUAL(api_addrs_size(t), N / 2 + 1);
	api_addrs_free(t);
	api_addrs_free(NULL);
}

void register_api_addr_tests(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{"one client: an IPv4 address, an IPv6 /64 (link-local whole), IPv4-mapped as IPv4",
		 test_keying},
		{"the table finds, drops and frees every address", test_table},
	};
	CU_pSuite s = CU_add_suite("api_addr", NULL, NULL);

	if (!s)
		return;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
}
