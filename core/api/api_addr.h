/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file api_addr.h
 * @brief The registration API's clients by address, for api.max_connections_per_address
 *        (docs/api.md, "Limits under abuse"): what counts as one client, and a small hash
 *        table of the addresses with connections open.
 *
 * One client is an IPv4 address, or the /64 prefix of an IPv6 address: one host (or one
 * site network) is normally given a whole /64 and picks addresses in it at will (privacy
 * extensions, RFC 8981), so a per-address limit on IPv6 must count the prefix. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d, a dual-stack socket) is its IPv4 address. A
 * link-local address (fe80::/10) is counted whole: every host of a link shares fe80::/64.
 *
 * The table only finds, adds and removes: the caller (api_conn.c) keeps each address's
 * connections and count. Everything runs on the event loop thread of the server.
 */
#ifndef AMTPROV_CORE_API_ADDR_H
#define AMTPROV_CORE_API_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/** A client as counted: IPv4 as ::ffff:a.b.c.d, IPv6 as its first 8 bytes then zeros, IPv6
 * link-local whole (they never meet: a /64 key ends in 8 zero bytes and never starts with
 * fe80::/10, an IPv4 key starts with 10 zero bytes). */
struct api_addr_key {
	unsigned char b[16];
};

/** Room for api_addr_key_str(): an IPv6 prefix with "/64". */
#define API_ADDR_STRLEN 48

/**
 * The client @p sa (an accepted connection's peer) counts as.
 * @return 0; -1 for a family other than IPv4 and IPv6, or a short @p len
 */
int api_addr_key_of(const struct sockaddr *sa, socklen_t len, struct api_addr_key *k);

/** @p k for the log: "192.0.2.7", "2001:db8:1:2::/64", "fe80::1". @return @p buf */
char *api_addr_key_str(const struct api_addr_key *k, char *buf, size_t size);

struct api_conn;

/** Connections, least recently active first (api_conn.c links them). */
struct api_conn_list {
	struct api_conn *oldest, *newest;
};

/** One client with connections open. */
struct api_addr {
	struct api_addr_key key;
	int n;                         /**< connections counted against it (the caller's) */
	struct api_conn_list conns;    /**< the caller's list of them */
	struct api_addr *chain;        /**< next in its bucket */
};

struct api_addrs;

/**
 * A table for about @p expect addresses at once (the connection cap: every address in it
 * has a connection open). Its hash is keyed with a random secret, so a client choosing its
 * addresses (a whole IPv6 /48 has 65,536 prefixes) cannot aim them at one bucket; a bucket
 * can hold no more than the addresses with connections open anyway.
 * @return NULL when out of memory
 */
struct api_addrs *api_addrs_new(size_t expect);

/** The entry of @p k, added (n 0, no connections) if new; NULL when out of memory. */
struct api_addr *api_addrs_get(struct api_addrs *t, const struct api_addr_key *k);

/** Removes and frees @p e, whose count has come down to 0. */
void api_addrs_drop(struct api_addrs *t, struct api_addr *e);

/** Addresses in the table. */
size_t api_addrs_size(const struct api_addrs *t);

/** Frees the table and any entry left in it. Accepts NULL. */
void api_addrs_free(struct api_addrs *t);

#endif /* AMTPROV_CORE_API_ADDR_H */
