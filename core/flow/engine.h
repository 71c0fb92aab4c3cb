/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file engine.h
 * @brief The provisioning engine: runs every device's state machine from one event loop.
 *
 * The engine picks devices whose state is runnable and due (REGISTERED, NEED_*, CA_WAITING,
 * next_attempt_at <= now), up to max_in_flight at once, depth first: a device whose step
 * ends in a state that is runnable now gets the slot back before the scan starts anyone
 * else, so a device's steps run back to back; new devices enter at most max_starting at a
 * time (the ramp: a device the scan started keeps its place until its steps stop following
 * each other). For a NEED_X device it first persists NEED_X -> X_ING, then calls the step
 * handler registered for NEED_X. The handler never blocks: it finishes at once or starts
 * asynchronous work (engine_job_blocking() for plugin calls that may block, which run on a
 * bounded worker pool; transport waits for non-blocking I/O) and calls engine_job_done()
 * later, on the loop thread. The engine then persists X_ING -> next. A failure is either
 * retried with exponential backoff (transient codes: unreachable, timeout, busy) or ends in
 * FAILED with the reason. One device's failure never affects another. No thread waits per
 * device.
 *
 * Each transition is one database transaction (with its audit record), so a crash at any
 * point leaves every device in its last committed state; engine_recover() rewinds -ING
 * states to their NEED_ state on start (R-PROV-13).
 */
#ifndef AMTPROV_CORE_ENGINE_H
#define AMTPROV_CORE_ENGINE_H

#include <stdint.h>

#include <amtprov/error.h>

#include "device_state.h"
#include "log.h"
#include "store.h"

/** The default ramp (engine_config.max_starting). */
#define ENGINE_MAX_STARTING 256

struct engine;
struct engine_job;
struct event_base;

struct engine_config {
	int max_in_flight;       /**< devices worked on at once (default 256) */
	int max_starting;        /**< the ramp: devices the scan started (new ones, or due
				  *   again) in a flow at once, at most: from their first step
				  *   until their steps stop following each other; the
				  *   follow-ups never wait for room (default
				  *   ENGINE_MAX_STARTING) */
	int workers;             /**< worker threads for blocking calls (default 4) */
	int retry_base_seconds;  /**< first backoff (default 60) */
	int retry_max_seconds;   /**< backoff cap (default 3600) */
	int max_attempts;        /**< transient failures before FAILED (default 10) */
	int crash_loop_limit;    /**< restarts with the same step in flight before FAILED
				  *   (default 3; R-PROV-13) */
	int scan_interval_ms;    /**< how often due devices are looked for (default 1000) */
	const char *actor;       /**< audit actor name (default "amtprovd") */
	const char *host_id;     /**< lease owner: this host's id, unique on the site
				  *   (default: actor); docs/database.md, "Several hosts" */
	int lease_seconds;       /**< device lease life, renewed every third (default 60) */
};

/**
 * A step handler. Runs on the loop thread; must not block. It must eventually call
 * engine_job_done() exactly once (possibly before returning).
 */
typedef void (*engine_step_fn)(struct engine_job *job, void *ctx);

/** Emits a status message (store + log); the engine uses it for failures and retries. */
typedef void (*engine_status_fn)(void *ctx, uint32_t id, const char *device,
				 const char *detail);

/**
 * Creates an engine on its own event base.
 * @param st     borrowed; used only from the loop thread
 * @param now    wall clock (seconds) or NULL for real time; tests drive it
 */
struct engine *engine_new(struct store *st, struct alog *lg, const struct engine_config *cfg,
			  int64_t (*now)(void *ctx), void *now_ctx, engine_status_fn status,
			  void *status_ctx, struct amtprov_error *err);
/**
 * Stops the workers and abandons the jobs in flight: they stay in their -ING state (as a
 * crash would leave them; engine_recover rewinds them next time) and each step releases its
 * own state through its abort hook. Unlike a crash, the stop does not count toward the
 * crash-loop guard (crash_loop_limit): each abandoned step's count is taken back. The event base stays usable, so whatever watches it
 * (transport loops) can be freed next, before engine_free(). Idempotent.
 */
void engine_shutdown(struct engine *e);
/** Shuts down (if not done) and frees, event base included. Accepts NULL. */
void engine_free(struct engine *e);

/** Registers the handler for runnable state @p s (REGISTERED, CA_WAITING or a NEED_
 * state). A runnable state without a handler is left alone (and reported once). */
int engine_set_handler(struct engine *e, enum device_state s, engine_step_fn fn, void *ctx);

/** Called on the loop thread when a device's steps stop following each other: its step
 * ended in a final state, or it waits (for a retry, for its CA). @p dev is the device as
 * the step left it (borrowed). */
typedef void (*engine_idle_fn)(void *ctx, const struct store_device *dev);
/** Registers the hook above (one; NULL removes it). The flow uses it to let the device's
 * kept connections go at once (issue 13: nothing idles in the transport's cache). */
void engine_set_idle_hook(struct engine *e, engine_idle_fn fn, void *ctx);

/** Rewinds every -ING device to its NEED_ state, one transaction each (R-PROV-13), except
 * those another live host holds a lease on (it claims each first). The engine also runs it
 * every lease_seconds while it runs, which is how a dead host's devices are resumed. A device
 * whose step was in flight at more than crash_loop_limit crashes in a row goes to FAILED
 * instead, naming the step (status 8116), so it cannot stop the others.
 * @param[out] rewound how many were rewound or set aside; may be NULL */
int engine_recover(struct engine *e, int *rewound, struct amtprov_error *err);

/** Runs the loop until engine_stop(). */
int engine_run(struct engine *e, struct amtprov_error *err);
/** Runs until no device is in flight and none is due now, or @p timeout_ms passes.
 * @return AMTPROV_OK when idle, AMTPROV_E_TIMEOUT otherwise. */
int engine_run_until_idle(struct engine *e, int64_t timeout_ms, struct amtprov_error *err);
/** Makes engine_run return soon. Safe from another thread. */
void engine_stop(struct engine *e);
/** Looks for due devices now (e.g. after a registration). Loop thread only. */
void engine_kick(struct engine *e);
/** The event base, for other event sources (signals, the API server, transports). */
struct event_base *engine_base(struct engine *e);
/** Devices in flight now. */
int engine_in_flight(const struct engine *e);

/* ---- for step handlers ---- */

/** The device as loaded when the job started (state = the NEED_ state). Borrowed. */
const struct store_device *engine_job_device(const struct engine_job *job);
/** The runnable state the job is for (NEED_X, REGISTERED or CA_WAITING). */
enum device_state engine_job_state(const struct engine_job *job);

/**
 * Ends the job.
 * @param next        the state to move to on success; DS_INVALID when the step failed
 * @param error_code  AMTPROV_OK on success, else the failure's code
 * @param error_text  failure reason (copied); NULL on success
 * Transient failures (E_UNREACHABLE, E_TIMEOUT, E_BUSY, E_IO) go back to the NEED_ state
 * with backoff until max_attempts; any other failure ends in FAILED.
 */
void engine_job_done(struct engine_job *job, enum device_state next, int error_code,
		     const char *error_text);
/** Ends the job successfully, moving to @p next but not before @p at (Unix seconds): for
 * waiting states such as CA_WAITING, which are polled later. */
void engine_job_defer(struct engine_job *job, enum device_state next, int64_t at);

/** Like engine_job_done with a failure that is never retried. */
void engine_job_fail(struct engine_job *job, int error_code, const char *error_text);

/**
 * Registers how to release a step's own state if the engine is freed while the job is in
 * flight (shutdown, reload): @p fn(@p arg) is called instead of any completion. A step sets
 * it when it allocates per-job state; engine_job_done() forgets it.
 */
void engine_job_set_abort(struct engine_job *job, void (*fn)(void *arg), void *arg);

/** A blocking call run on a worker thread: it must not touch the store or the loop. */
typedef int (*engine_blocking_fn)(void *arg, struct amtprov_error *err);
/** Called on the loop thread when a blocking call finished. */
typedef void (*engine_blocking_done)(struct engine_job *job, int rc,
				     const struct amtprov_error *err, void *arg);
/** Queues @p fn on the worker pool. */
int engine_job_blocking(struct engine_job *job, engine_blocking_fn fn, engine_blocking_done done,
			void *arg, struct amtprov_error *err);

/** Called on the loop thread when an offloaded call (engine_offload) finished. */
typedef void (*engine_offload_done)(int rc, const struct amtprov_error *err, void *arg);
/**
 * Queues a blocking call that belongs to no device (a maintenance task's CA calls) on the
 * worker pool, so it never runs on the event loop (ca.h promises plugins that). @p done runs
 * on the loop thread afterwards; if the engine shuts down first, @p abort_fn(@p arg) runs
 * instead (may be NULL). engine_run_until_idle() waits for offloaded calls too.
 */
int engine_offload(struct engine *e, engine_blocking_fn fn, engine_offload_done done,
		   void (*abort_fn)(void *arg), void *arg, struct amtprov_error *err);

/** 1 for codes the engine retries with backoff. */
int engine_error_transient(int code);

#endif /* AMTPROV_CORE_ENGINE_H */
