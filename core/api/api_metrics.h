/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file api_metrics.h
 * @brief GET /metrics (docs/api.md, docs/operations.md "Monitoring"): what the process
 *        counted (core/metrics.h) and what the site database says now (devices by state,
 *        certificates by days to expiry, the revocation queue, pending operations,
 *        maintenance tasks), in the Prometheus text exposition format 0.0.4.
 *
 * Runs on the API's (the engine's) loop thread, like every handler: it reads the store as
 * the engine does.
 */
#ifndef AMTPROV_CORE_API_METRICS_H
#define AMTPROV_CORE_API_METRICS_H

#include <stdio.h>

#include <amtprov/error.h>

#include "site.h"

/** The content type of the exposition format. */
#define API_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/**
 * Writes the whole exposition to @p out.
 * @param now  wall clock (seconds) against which certificate expiry is measured
 * @return AMTPROV_OK; a store error (with @p err) when the database could not be read
 */
int api_metrics_write(struct site *site, int64_t now, FILE *out, struct amtprov_error *err);

struct evhttp_request;
struct event_base;

/** Answers a GET /metrics (200 with the exposition, or 500 logged on @p site's log): the
 * API's handler and the metrics listener's. */
void api_metrics_reply(struct site *site, struct evhttp_request *req);

/**
 * The metrics listener (manifest monitoring.metrics_listen; docs/operations.md
 * "Monitoring"): plain HTTP on its own address, GET /metrics and nothing else; a bearer
 * token from monitoring.metrics_tokens when the manifest names some (it may only go
 * without on a loopback address, the manifest checks that). Lives on @p base (the
 * engine's loop, like the API).
 */
struct metrics_listener;

/** Starts it; *out is NULL (and AMTPROV_OK) when the manifest asks for none. */
int metrics_listener_start(struct site *site, struct event_base *base,
			   struct metrics_listener **out, struct amtprov_error *err);
/** The port bound. */
int metrics_listener_port(const struct metrics_listener *ml);
/** Closes the socket and its connections, wipes the token digests. Accepts NULL. */
void metrics_listener_free(struct metrics_listener *ml);

#endif /* AMTPROV_CORE_API_METRICS_H */
