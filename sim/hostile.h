/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hostile answers (fault "hostile", docs/amtsim.md): the device acts on the request as usual,
 * then its answer is replaced by one a client must survive (R-PROV-13).
 */
#ifndef AMTSIM_HOSTILE_H
#define AMTSIM_HOSTILE_H

#include "device.h"
#include "http.h"

/** The response bytes (16 MiB + 1 MiB) of huge_body: more than any client should accept. */
#define HOSTILE_HUGE_BYTES (17u * 1024 * 1024)

/** Rewrites @p r, the device's real answer to @p req, as @p kind (enum hostile_kind) dictates.
 * HOSTILE_SLOW_DRIP leaves the answer as it is: the server sends it byte by byte. */
void hostile_rewrite(struct device *d, const struct http_request *req, struct http_response *r,
		     int kind);

#endif /* AMTSIM_HOSTILE_H */
