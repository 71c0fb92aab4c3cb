/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file transport_loop.h
 * @brief Drives a transport plugin instance from the engine's event loop.
 *
 * A transport instance exposes one pollable descriptor and a timeout (get_wait). The loop
 * watches that descriptor with one libevent event, calls drive() when it is ready or the
 * timeout passed, and hands every finished operation's result to its caller, on the loop
 * thread. Thousands of operations can be in flight on one instance without a thread each.
 */
#ifndef AMTPROV_CORE_TRANSPORT_LOOP_H
#define AMTPROV_CORE_TRANSPORT_LOOP_H

#include <stdint.h>

#include <jansson.h>

#include "log.h"
#include "plugin_host.h"

struct event_base;
struct tloop;

/**
 * Called once per operation, on the loop thread.
 * @param rc      AMTPROV_OK or the operation's error (err filled)
 * @param result  on success a borrowed JSON object, valid only during the call
 */
typedef void (*tloop_done_fn)(void *ctx, int rc, const json_t *result,
			      const struct amtprov_error *err);

struct tloop *tloop_new(struct event_base *base, struct plugin_instance *pi, struct alog *lg,
			struct amtprov_error *err);
/** Frees the loop. Sessions must have been closed; pending callbacks are not called. */
void tloop_free(struct tloop *t);

int tloop_session_open(struct tloop *t, const struct amtprov_transport_target *target,
		       void **session, struct amtprov_error *err);
/** Closes a session, abandoning a running operation (its callback is not called). */
void tloop_session_close(struct tloop *t, void *session);
/** The device at @p address:@p port has no more sessions for now (its flow paused or ended):
 * the transport closes the connections it kept for it (issue 13: nothing idles). */
void tloop_device_idle(struct tloop *t, const char *address, uint16_t port);

/**
 * Starts @p op on @p session (one at a time per session). @p params is borrowed for the
 * call. On AMTPROV_OK @p done will be called exactly once, later; on an error it is not.
 */
int tloop_call(struct tloop *t, void *session, uint32_t op, const json_t *params,
	       tloop_done_fn done, void *ctx, struct amtprov_error *err);

/** Operations in flight (started, or waiting for the syncer). */
int tloop_pending(const struct tloop *t);

/** Of those, the ones waiting for durable records to reach the disk (store_sync.h). */
int tloop_deferred(const struct tloop *t);

#endif /* AMTPROV_CORE_TRANSPORT_LOOP_H */
