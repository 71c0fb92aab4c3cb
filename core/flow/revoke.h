/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file revoke.h
 * @brief The revocation queue (R-REV-02..04): every revocation amtprov decides on is
 *        written down first (certificate status revoke-pending plus a pending operation
 *        "revoke"), then asked of the CA that issued the certificate. One the CA cannot do
 *        now (unreachable, not loaded, refused) stays queued and is retried with backoff
 *        until it succeeds: it is never forgotten. docs/lifecycle.md.
 *
 * The pending operation's payload is {"cert_id":N,"reason":R,"ca":"instance"}, the form
 * flow_cert.c writes for R-REV-02b, so both are retried by the same queue.
 *
 * Threads: queueing and recording use the site's store (its owner thread); only
 * revoke_batch_call() talks to the CA and may run on a worker thread.
 */
#ifndef AMTPROV_CORE_REVOKE_H
#define AMTPROV_CORE_REVOKE_H

#include <stddef.h>
#include <stdint.h>

#include <amtprov/error.h>

#include "site.h"
#include "store.h"

#define REVOKE_KIND "revoke"

/** Purpose masks for revoke_queue_device(). */
#define REVOKE_WEB_SERVER (1u << AMTPROV_PURPOSE_WEB_SERVER)
#define REVOKE_CLIENT_8021X (1u << AMTPROV_PURPOSE_CLIENT_8021X)

/**
 * Queues the revocation of one certificate (write-ahead, one transaction). A certificate
 * already revoked or queued is left as it is (@p queued = 0).
 * @param why  what the revocation is for, e.g. "R-REV-02c renewal" (audit trail)
 */
int revoke_queue(struct site *s, const struct store_cert *cert, int reason, const char *why,
		 int *queued, struct amtprov_error *err);

/**
 * Queues every active certificate of a device whose purpose is in @p purposes, except
 * @p keep_id (0: none), with reason Superseded. @param[out] count how many (may be NULL).
 */
int revoke_queue_device(struct site *s, int64_t device_id, unsigned purposes, int64_t keep_id,
			const char *why, int *count, struct amtprov_error *err);

/** Like revoke_queue_device(), keeping the @p n_keep certificates in @p keep: the ones a
 * step has just put in place (an 802.1X step keeps the certificate of each profile). */
int revoke_queue_device_except(struct site *s, int64_t device_id, unsigned purposes,
			       const int64_t *keep, size_t n_keep, const char *why, int *count,
			       struct amtprov_error *err);

struct revoke_batch;

/** Collects the revocations due now (of one device, or all for @p device_id 0). NULL when
 * none is due (or out of memory: they stay queued). */
struct revoke_batch *revoke_batch_due(struct site *s, int64_t device_id);
/** Asks each CA; no store access, so any thread may run it. */
void revoke_batch_call(struct revoke_batch *b);
/** Records the answers: revoked (status 8203) or retried later (status 8204 the first time).
 * @param[out] done, left  counts; may be NULL */
void revoke_batch_record(struct site *s, struct revoke_batch *b, int *done, int *left);
/** Gives back a batch that was never asked of a CA (no worker to run it): each revocation
 * is due again when it was before revoke_batch_due() leased it, then the batch is freed. */
void revoke_batch_release(struct site *s, struct revoke_batch *b);
void revoke_batch_free(struct revoke_batch *b);

struct engine_job;
/** A batch revoked at the end of a device's step (superseded certificates): the CAs are
 * asked on the job's worker, the answers recorded on the loop thread, then @p done runs.
 * Embedded in its owner, with no allocation of its own: if the job is aborted, the owner
 * frees the batch (revoke_batch_free) as it frees everything else. */
struct revoke_job {
	struct site *site;
	struct revoke_batch *batch;
	void (*done)(void *owner);
	void *owner;
};
/** AMTPROV_OK: @p done will be called. Otherwise the batch stays queued for the revocation
 * task and the caller goes on without waiting. */
int revoke_job_start(struct revoke_job *rj, struct engine_job *job, struct amtprov_error *err);

/** Due, call, record, on the calling thread: the maintenance task "revocation-queue". */
int revoke_process_due(struct site *s, int *done, int *left, struct amtprov_error *err);

#endif /* AMTPROV_CORE_REVOKE_H */
