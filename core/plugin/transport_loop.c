/* SPDX-License-Identifier: Apache-2.0 */
#include "transport_loop.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "metrics.h"
#include "store_sync.h"
#include "util.h"

struct tcall {
	struct tloop *t;
	void *session;
	tloop_done_fn done;
	void *ctx;
	int finished;       /* the plugin called its done callback */
	int linked;         /* in its bucket (after begin() returned AGAIN) */
	struct tcall *prev, *next; /* the calls of the session's bucket */
	struct tcall *fnext;       /* finished, not yet handed over (FIFO) */
	uint32_t op;        /* for metrics.h, with its start (monotonic ms) */
	int64_t started_ms;
	/* Deferred (store_sync.h): the call starts once the durable records written before
	 * it was asked for are on disk; until then it waits in the deferred queue with a
	 * copy of its parameters. */
	uint64_t ticket;
	json_t *params;
	struct tcall *dnext;
};

/* Calls are found by session (closing one) and by completion (the plugin's done callback
 * queues them), never by walking every call in flight: with thousands of devices in flight
 * each event would otherwise cost a walk over all of them. */
#define TL_BUCKETS 4096

struct tloop {
	struct event_base *base;
	struct plugin_instance *pi;
	struct alog *lg;
	struct event *ev;
	int ev_fd;
	struct tcall *bucket[TL_BUCKETS];
	struct tcall *fin_head, *fin_tail;
	int pending;
	int driving; /* re-arm once after drive, not from inside it */
	/* Calls waiting for the syncer (FIFO; tickets only grow), and the event it fires. */
	struct tcall *def_head, *def_tail;
	int n_deferred;
	struct event *sync_ev;
};

static void rearm(struct tloop *t);

static size_t bucket_of(const void *session)
{
	uint64_t h = (uint64_t)(uintptr_t)session * 0x9E3779B97F4A7C15ULL;

	return (size_t)(h >> 52) % TL_BUCKETS;
}

static void fin_push(struct tcall *c)
{
	struct tloop *t = c->t;

	c->fnext = NULL;
	if (t->fin_tail)
		t->fin_tail->fnext = c;
	else
		t->fin_head = c;
	t->fin_tail = c;
}

/* Takes @p c out of the finished queue (a session closed before its result was handed
 * over); the queue holds only what one drive finished, so the walk is short. */
static void fin_drop(struct tcall *c)
{
	struct tloop *t = c->t;
	struct tcall *prev = NULL;

	for (struct tcall *x = t->fin_head; x; prev = x, x = x->fnext) {
		if (x != c)
			continue;
		if (prev)
			prev->fnext = c->fnext;
		else
			t->fin_head = c->fnext;
		if (t->fin_tail == c)
			t->fin_tail = prev;
		return;
	}
}

static void call_link(struct tcall *c)
{
	struct tcall **head = &c->t->bucket[bucket_of(c->session)];

	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
	c->linked = 1;
	c->t->pending++;
}

static void call_unlink(struct tcall *c)
{
	if (!c->linked)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->t->bucket[bucket_of(c->session)] = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->linked = 0;
	c->t->pending--;
}

static void on_plugin_done(void *cb_ctx)
{
	struct tcall *c = cb_ctx;

	if (c->finished)
		return;
	c->finished = 1;
	if (c->linked)
		fin_push(c);
}

/* Finishes every call the plugin reported done, in the order it did. A caller's callback
 * may start the next operation on its session (or close it), so each finished call is
 * unlinked before the callback. */
static void complete_finished(struct tloop *t)
{
	struct tcall *c;

	while ((c = t->fin_head)) {
		struct amtprov_error err;
		json_t *result = NULL;
		int rc;

		t->fin_head = c->fnext;
		if (!t->fin_head)
			t->fin_tail = NULL;
		call_unlink(c);
		amtprov_error_clear(&err);
		rc = pi_transport_finish(t->pi, c->session, &result, &err);
		metrics_amt_call(c->op, rc, (double)(util_monotonic_ms() - c->started_ms) / 1000.0);
		c->done(c->ctx, rc, result, &err);
		json_decref(result);
		free(c);
	}
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct tloop *t = arg;
	struct amtprov_error err;

	amtprov_error_clear(&err);
	t->driving = 1;
	if (pi_transport_drive(t->pi, &err) != AMTPROV_OK)
		alog(t->lg, AMTPROV_LOG_ERROR, "transport %s: drive failed: %s",
		     plugin_instance_name(t->pi), err.msg);
	t->driving = 0;
	complete_finished(t);
	rearm(t);
}

/* Watches the instance's descriptor and timeout as get_wait() says now. */
static void rearm(struct tloop *t)
{
	struct amtprov_wait w;
	struct amtprov_error err;
	struct timeval tv, *tvp = NULL;
	short what = 0;

	if (t->driving)
		return;
	amtprov_error_clear(&err);
	if (pi_transport_get_wait(t->pi, &w, &err) != AMTPROV_OK) {
		alog(t->lg, AMTPROV_LOG_ERROR, "transport %s: get_wait failed: %s",
		     plugin_instance_name(t->pi), err.msg);
		return;
	}
	if (t->ev && (t->ev_fd != w.fd)) {
		event_free(t->ev);
		t->ev = NULL;
	}
	if (w.events & AMTPROV_WAIT_READ)
		what |= EV_READ;
	if (w.events & AMTPROV_WAIT_WRITE)
		what |= EV_WRITE;
	if (w.timeout_ms >= 0) {
		tv.tv_sec = w.timeout_ms / 1000;
		tv.tv_usec = (w.timeout_ms % 1000) * 1000;
		tvp = &tv;
	}
	if (t->ev)
		event_del(t->ev);
	else {
		t->ev = event_new(t->base, w.fd, what, on_event, t);
		t->ev_fd = w.fd;
	}
	if (!t->ev)
		return;
	event_assign(t->ev, t->base, w.fd, what, on_event, t);
	/* Nothing in flight and nothing to wait for: stay idle. */
	if (!t->pending && !tvp)
		return;
	event_add(t->ev, tvp);
}

/* The syncer thread finished a round (store_sync.h): wake the loop. */
static void on_sync_round(void *ctx)
{
	struct tloop *t = ctx;

	event_active(t->sync_ev, EV_READ, 0);
}

static int begin_call(struct tcall *c, const json_t *params, struct amtprov_error *err);

/* Starts the deferred calls whose records are on disk now; fails them if a sync failed. */
static void on_synced(evutil_socket_t fd, short what, void *arg)
{
	struct tloop *t = arg;
	struct tcall *c;
	int passed;

	while ((c = t->def_head) && (passed = store_sync_passed(c->ticket)) != 0) {
		struct amtprov_error err;
		json_t *params = c->params;
		int rc;

		t->def_head = c->dnext;
		if (!t->def_head)
			t->def_tail = NULL;
		t->n_deferred--;
		c->params = NULL;
		amtprov_error_clear(&err);
		if (passed < 0)
			rc = amtprov_error_set(&err, AMTPROV_E_IO, NULL, "%s", store_sync_error());
		else
			rc = begin_call(c, params, &err);
		json_decref(params);
		if (rc != AMTPROV_OK) {
			c->done(c->ctx, rc, NULL, &err);
			free(c);
		}
	}
}

struct tloop *tloop_new(struct event_base *base, struct plugin_instance *pi, struct alog *lg,
			struct amtprov_error *err)
{
	struct tloop *t;

	if (plugin_instance_kind(pi) != AMTPROV_KIND_TRANSPORT) {
		amtprov_error_set(err, AMTPROV_E_CONFIG, plugin_instance_name(pi),
				  "instance '%s' is not a transport", plugin_instance_name(pi));
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		return NULL;
	}
	t->base = base;
	t->pi = pi;
	t->lg = lg;
	t->ev_fd = -1;
	t->sync_ev = event_new(base, -1, 0, on_synced, t);
	if (!t->sync_ev || store_sync_watch(on_sync_round, t) != 0) {
		if (t->sync_ev)
			event_free(t->sync_ev);
		free(t);
		amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		return NULL;
	}
	return t;
}

void tloop_free(struct tloop *t)
{
	if (!t)
		return;
	store_sync_unwatch(on_sync_round, t);
	event_free(t->sync_ev);
	while (t->def_head) {
		struct tcall *c = t->def_head;

		t->def_head = c->dnext;
		json_decref(c->params);
		free(c);
	}
	for (size_t b = 0; b < TL_BUCKETS; b++) {
		while (t->bucket[b]) {
			struct tcall *c = t->bucket[b];

			t->bucket[b] = c->next;
			free(c);
		}
	}
	if (t->ev)
		event_free(t->ev);
	free(t);
}

int tloop_session_open(struct tloop *t, const struct amtprov_transport_target *target,
		       void **session, struct amtprov_error *err)
{
	return pi_transport_session_open(t->pi, target, session, err);
}

void tloop_session_close(struct tloop *t, void *session)
{
	for (struct tcall **p = &t->def_head, *prev = NULL; *p;) {
		struct tcall *c = *p;

		if (c->session != session) {
			prev = c;
			p = &c->dnext;
			continue;
		}
		*p = c->dnext;
		if (t->def_tail == c)
			t->def_tail = prev;
		t->n_deferred--;
		json_decref(c->params);
		free(c);
	}
	for (struct tcall *c = t->bucket[bucket_of(session)], *next; c; c = next) {
		next = c->next;
		if (c->session != session)
			continue;
		if (c->finished)
			fin_drop(c);
		call_unlink(c);
		free(c);
	}
	pi_transport_session_close(t->pi, session);
	rearm(t);
}

void tloop_device_idle(struct tloop *t, const char *address, uint16_t port)
{
	pi_transport_device_idle(t->pi, address, port);
	rearm(t);
}

/* Hands @p c to the plugin. @return AMTPROV_OK (the call is linked; its callback will
 * come from the loop), else an error and @p c is not linked (the caller frees it). */
static int begin_call(struct tcall *c, const json_t *params, struct amtprov_error *err)
{
	struct tloop *t = c->t;
	json_t *empty = NULL;
	int rc;

	c->started_ms = util_monotonic_ms();
	if (!params)
		params = empty = json_object();
	rc = pi_transport_begin(t->pi, c->session, c->op, params, on_plugin_done, c, err);
	json_decref(empty);
	if (rc != AMTPROV_AGAIN) {
		metrics_amt_call(c->op, rc == AMTPROV_OK ? AMTPROV_E_PROTOCOL : rc,
				 (double)(util_monotonic_ms() - c->started_ms) / 1000.0);
		return rc == AMTPROV_OK ? AMTPROV_E_PROTOCOL : rc;
	}
	call_link(c);
	if (c->finished)
		fin_push(c);
	rearm(t);
	/* A plugin that reported completion from inside begin() gets one pass of the loop,
	 * so the caller's callback never runs inside tloop_call(). */
	if (c->finished && t->ev)
		event_active(t->ev, EV_READ, 0);
	return AMTPROV_OK;
}

int tloop_call(struct tloop *t, void *session, uint32_t op, const json_t *params,
	       tloop_done_fn done, void *ctx, struct amtprov_error *err)
{
	struct tcall *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	c->t = t;
	c->session = session;
	c->done = done;
	c->ctx = ctx;
	c->op = op;
	c->ticket = store_sync_ticket();
	/* A durable record written before this call is not on disk yet (or a sync failed):
	 * the call waits for the syncer, the loop does not (store_sync.h). */
	if (c->ticket && (t->def_head || store_sync_passed(c->ticket) != 1)) {
		c->params = params ? json_deep_copy(params) : json_object();
		if (!c->params) {
			free(c);
			return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		}
		if (t->def_tail)
			t->def_tail->dnext = c;
		else
			t->def_head = c;
		t->def_tail = c;
		t->n_deferred++;
		/* It may have passed in between: look once more from the loop. */
		event_active(t->sync_ev, EV_READ, 0);
		return AMTPROV_OK;
	}
	rc = begin_call(c, params, err);
	if (rc != AMTPROV_OK)
		free(c);
	return rc;
}

int tloop_pending(const struct tloop *t)
{
	return t->pending + t->n_deferred;
}

int tloop_deferred(const struct tloop *t)
{
	return t->n_deferred;
}
