/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file api_conn.h
 * @brief The registration API's connections, bounded under abuse (docs/api.md, "Limits
 *        under abuse"): TLS on every accepted connection, a cap on how many are open (a new
 *        one closes the least recently active when full) and on how many one client address
 *        has open (a new one closes that address's own least recently active), a deadline for each whole request
 *        however slowly it trickles in, and accepting paused, not retried in a loop, when
 *        the process runs out of descriptors. libevent 2.1's evhttp has none of these.
 *
 * Everything runs on the event loop thread of the server.
 */
#ifndef AMTPROV_CORE_API_CONN_H
#define AMTPROV_CORE_API_CONN_H

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "log.h"
#include "manifest.h"

struct api_conns;

/**
 * Takes over the connections of @p http (its bufferevent callback): each is TLS with @p tls
 * (borrowed, outlives the result) and counted, in all and per client address. The caps and
 * the deadline come from @p m.
 * @return NULL when out of memory.
 */
struct api_conns *api_conns_new(struct evhttp *http, struct event_base *base, SSL_CTX *tls,
				const struct manifest_api *m, struct alog *log);

/** Watches @p sock (bound by @p http) for accept failures and widens its backlog. */
void api_conns_listen(struct api_conns *cs, struct evhttp_bound_socket *sock);

/**
 * Called for each request before it is handled. 0: it came over one of the TLS connections
 * above, which is now the most recently active and has a new deadline for its next
 * request. -1: it did not (evhttp falls back to plain HTTP when the TLS setup ran out of
 * memory); answer nothing of substance.
 */
int api_conns_request(struct api_conns *cs, struct evhttp_request *req);

/** The cap in force. */
int api_conns_max(const struct api_conns *cs);

/** The per-address cap in force (an IPv4 address, an IPv6 /64; api_addr.h); 0: none. */
int api_conns_max_per_address(const struct api_conns *cs);

/** After evhttp_free() of the server: forgets the connections libevent has yet to finalize.
 * Accepts NULL. */
void api_conns_free(struct api_conns *cs);

#endif /* AMTPROV_CORE_API_CONN_H */
