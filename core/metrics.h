/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file metrics.h
 * @brief What amtprovd counts while it works, for GET /metrics (docs/operations.md,
 *        "Monitoring"): step durations, provisioning outcomes, CA and AMT calls. Recorded
 *        where things happen (the engine's step outcome, plugin_calls.c, the transport
 *        loop) from any thread; rendered in the Prometheus text exposition format.
 *
 * One registry per process: amtprovd runs one site, and the calls that count (plugin calls,
 * transport completions) carry no site. Counters only grow for the life of the process (a
 * reload keeps them), as Prometheus expects; a restart starts them at zero, which
 * Prometheus' rate() handles. What the database knows (devices by state, certificates by
 * expiry, the revocation queue) is read at scrape time instead (core/api/api_metrics.c).
 *
 * Every recording call takes one mutex for a few compares and additions: cheap next to the
 * network call or database write it accompanies.
 */
#ifndef AMTPROV_CORE_METRICS_H
#define AMTPROV_CORE_METRICS_H

#include <stdio.h>

/** A device step ended: @p step is the runnable state it ran for (NEED_CERTIFICATE),
 * @p outcome "ok", "retry" or "failed"; @p seconds from its start to its outcome. */
void metrics_step(const char *step, const char *outcome, double seconds);

/** A device reached the end of provisioning: @p outcome "provisioned" or "failed", with
 * the failure's status @p code (labelled by amtprov_status_name, "E_VERIFY"), 0 when
 * provisioned. */
void metrics_outcome(const char *outcome, int code);

/** A call into a CA plugin instance returned: @p op "submit", "poll", "revoke", ...;
 * @p answer the CA outcome (ISSUED, WAIT, REJECTED, ...) or "error" when the call failed. */
void metrics_ca_call(const char *instance, const char *op, const char *answer, double seconds);

/** An AMT operation (enum amtprov_amt_op) completed with status @p rc (labelled by
 * amtprov_status_name: "OK", "E_UNREACHABLE", ...). */
void metrics_amt_call(unsigned op, int rc, double seconds);

/** The registration API closed a connection under one of its limits (docs/api.md "Limits
 * under abuse"): @p reason "max_connections", "max_connections_per_address",
 * "request_deadline" or "descriptors" (accepting paused). */
void metrics_api_closed(const char *reason);

/** The lower-case name of an AMT operation ("get_setup_state"), "op_N" when unknown. */
const char *metrics_amt_op_name(unsigned op, char *buf, size_t size);

/** Writes every recorded family, HELP and TYPE lines included, to @p out.
 * @return 0, -1 on a write error. */
int metrics_write(FILE *out);

/** Writes @p s as a Prometheus label value (backslash, double quote and newline escaped). */
void metrics_write_label(FILE *out, const char *s);

/** Forgets everything recorded (unit tests). */
void metrics_reset(void);

#endif /* AMTPROV_CORE_METRICS_H */
