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

#endif /* AMTPROV_CORE_API_METRICS_H */
