/* SPDX-License-Identifier: Apache-2.0 */
#include "engine.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "metrics.h"
#include "status.h"
#include "store_sync.h"
#include "util.h"

struct engine_job {
	struct engine *e;
	struct store_device dev;
	enum device_state state; /* the runnable state the job is for */
	enum device_state doing; /* the -ING state persisted while it runs (or == state) */
	int64_t started_ms;      /* monotonic, for the step's duration (metrics.h) */
	/* blocking call */
	engine_blocking_fn fn;
	engine_blocking_done bdone;
	void *barg;
	int brc;
	struct amtprov_error berr;
	/* The write-ahead records written before the call was queued (store_sync.h): the
	 * worker runs it only once they are on disk. */
	uint64_t sync_ticket;
	struct engine_job *qnext;
	/* releases the step's state if the job is abandoned */
	void (*abort_fn)(void *arg);
	void *abort_arg;
	/* an offloaded call (engine_offload): no device, not in the in-flight set */
	int detached;
	int leased; /* this host holds the device's lease (store_device_claim) */
	int fresh;  /* in a flow the scan started: counted by the ramp (ramp_room) */
	engine_offload_done odone;
};

struct handler {
	engine_step_fn fn;
	void *ctx;
};

struct engine {
	struct event_base *base;
	struct store *st;
	struct alog *lg;
	struct engine_config cfg;
	int64_t (*now)(void *);
	void *now_ctx;
	engine_status_fn status;
	void *status_ctx;
	struct handler handlers[DS_COUNT];
	engine_idle_fn idle_fn;
	void *idle_ctx;

	/* in-flight set: open addressing on device id */
	struct engine_job **slots;
	size_t n_slots;
	int in_flight;
	int starting;  /* fresh jobs in flight and fresh follow-ups waiting (ramp_room) */
	int offloaded; /* engine_offload calls queued or running */

	struct event *scan_ev;
	struct event *kick_ev; /* a scan on the next loop turn, after a step finished */
	/* Devices whose step just ended in a runnable state that is due: their next step
	 * starts before any device found by the scan (see scan()). */
	struct follow {
		int64_t id;
		int fresh; /* the ending job's: its flow goes on (ramp_room) */
	} *follow;
	size_t n_follow, cap_follow;
	struct event *done_ev;

	pthread_t *threads;
	int n_threads;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct engine_job *work_head, *work_tail;
	struct engine_job *done_head;
	int stopping;
	int shut_down;
	/* Device leases (several hosts on one database): last renewal, last reclaim pass. */
	int64_t renewed_at, reclaimed_at;
};

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;

static void evthread_init(void)
{
	evthread_use_pthreads();
}

static int64_t now_of(struct engine *e)
{
	return e->now ? e->now(e->now_ctx) : util_now();
}

static void emit(struct engine *e, uint32_t id, const char *device, const char *detail)
{
	if (e->status)
		e->status(e->status_ctx, id, device, detail);
}

/* A failure or retry: the status message carries it into the log (site_status logs at its
 * severity), so it is logged once; only an engine without a status sink logs it itself. */
static void emit_logged(struct engine *e, int level, uint32_t id, const char *device,
			const char *detail)
{
	if (e->status)
		e->status(e->status_ctx, id, device, detail);
	else
		alog(e->lg, level, "%s", detail);
}

int engine_error_transient(int code)
{
	return code == AMTPROV_E_UNREACHABLE || code == AMTPROV_E_TIMEOUT ||
	       code == AMTPROV_E_BUSY || code == AMTPROV_E_IO;
}

/* ---- in-flight set ---- */

static size_t slot_of(struct engine *e, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ULL;

	return (size_t)(h % e->n_slots);
}

static int inflight_has(struct engine *e, int64_t id)
{
	for (size_t i = slot_of(e, id), n = 0; n < e->n_slots; i = (i + 1) % e->n_slots, n++) {
		if (!e->slots[i])
			return 0;
		if (e->slots[i]->dev.id == id)
			return 1;
	}
	return 0;
}

static void inflight_add(struct engine *e, struct engine_job *job)
{
	size_t i = slot_of(e, job->dev.id);

	while (e->slots[i])
		i = (i + 1) % e->n_slots;
	e->slots[i] = job;
	e->in_flight++;
}

static void inflight_del(struct engine *e, struct engine_job *job)
{
	size_t i = slot_of(e, job->dev.id);

	while (e->slots[i] && e->slots[i] != job)
		i = (i + 1) % e->n_slots;
	if (!e->slots[i])
		return;
	e->slots[i] = NULL;
	e->in_flight--;
	/* Re-insert the rest of the cluster so lookups keep finding them. */
	for (size_t j = (i + 1) % e->n_slots; e->slots[j]; j = (j + 1) % e->n_slots) {
		struct engine_job *moved = e->slots[j];

		e->slots[j] = NULL;
		e->in_flight--;
		inflight_add(e, moved);
	}
}

/* ---- worker pool ---- */

static void *worker_main(void *arg)
{
	struct engine *e = arg;

	for (;;) {
		struct engine_job *job;

		pthread_mutex_lock(&e->qlock);
		while (!e->work_head && !e->stopping)
			pthread_cond_wait(&e->qcond, &e->qlock);
		if (e->stopping) {
			pthread_mutex_unlock(&e->qlock);
			return NULL;
		}
		job = e->work_head;
		e->work_head = job->qnext;
		if (!e->work_head)
			e->work_tail = NULL;
		pthread_mutex_unlock(&e->qlock);

		amtprov_error_clear(&job->berr);
		if (store_sync_wait(job->sync_ticket) < 0) {
			/* The records this call acts on may not be on disk: do not act. */
			job->brc = amtprov_error_set(&job->berr, AMTPROV_E_IO, NULL, "%s",
						     store_sync_error());
		} else {
			struct alog_ctx prev = alog_ctx_set(NULL, job->dev.fqdn);

			job->brc = job->fn(job->barg, &job->berr);
			alog_ctx_restore(prev);
		}

		pthread_mutex_lock(&e->qlock);
		job->qnext = e->done_head;
		e->done_head = job;
		pthread_mutex_unlock(&e->qlock);
		event_active(e->done_ev, EV_READ, 0);
	}
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;
	struct engine_job *list;

	pthread_mutex_lock(&e->qlock);
	list = e->done_head;
	e->done_head = NULL;
	pthread_mutex_unlock(&e->qlock);
	while (list) {
		struct engine_job *job = list;
		struct alog_ctx prev;

		list = job->qnext;
		job->qnext = NULL;
		if (job->detached) {
			e->offloaded--;
			job->odone(job->brc, &job->berr, job->barg);
			free(job);
			continue;
		}
		prev = alog_ctx_set(NULL, job->dev.fqdn);
		job->bdone(job, job->brc, &job->berr, job->barg);
		alog_ctx_restore(prev);
	}
}

static void queue_work(struct engine *e, struct engine_job *job)
{
	job->sync_ticket = store_sync_ticket();
	pthread_mutex_lock(&e->qlock);
	job->qnext = NULL;
	if (e->work_tail)
		e->work_tail->qnext = job;
	else
		e->work_head = job;
	e->work_tail = job;
	pthread_cond_signal(&e->qcond);
	pthread_mutex_unlock(&e->qlock);
}

int engine_job_blocking(struct engine_job *job, engine_blocking_fn fn, engine_blocking_done done,
			void *arg, struct amtprov_error *err)
{
	if (!fn || !done)
		return amtprov_error_set(err, AMTPROV_E_INVALID, job->dev.fqdn, "no function");
	job->fn = fn;
	job->bdone = done;
	job->barg = arg;
	queue_work(job->e, job);
	return AMTPROV_OK;
}

int engine_offload(struct engine *e, engine_blocking_fn fn, engine_offload_done done,
		   void (*abort_fn)(void *arg), void *arg, struct amtprov_error *err)
{
	struct engine_job *job;

	if (!fn || !done)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no function");
	if (e->shut_down)
		return amtprov_error_set(err, AMTPROV_E_INTERNAL, NULL, "the engine is stopping");
	job = calloc(1, sizeof(*job));
	if (!job)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	job->e = e;
	job->detached = 1;
	job->fn = fn;
	job->odone = done;
	job->barg = arg;
	job->abort_fn = abort_fn;
	job->abort_arg = arg;
	e->offloaded++;
	queue_work(e, job);
	return AMTPROV_OK;
}

/* Frees the offloaded calls left in a queue at shutdown (device jobs are freed from the
 * in-flight set). */
static void drop_offloaded(struct engine_job *list)
{
	while (list) {
		struct engine_job *job = list;

		list = job->qnext;
		if (!job->detached)
			continue;
		if (job->abort_fn)
			job->abort_fn(job->abort_arg);
		free(job);
	}
}

/* ---- transitions ---- */

static int64_t backoff(const struct engine *e, int attempts)
{
	int64_t d = e->cfg.retry_base_seconds;

	for (int i = 0; i < attempts && d < e->cfg.retry_max_seconds; i++)
		d *= 2;
	return d > e->cfg.retry_max_seconds ? e->cfg.retry_max_seconds : d;
}

static int persist_step(struct engine *e, struct engine_job *job, enum device_state from,
			enum device_state to, enum store_step step, int code, const char *text,
			int64_t next_at, int attempts)
{
	struct amtprov_error err;
	char reason[STORE_TEXT_SIZE];
	int rc;

	/* Reasons come from plugins and peers: cut them to what the store keeps rather than
	 * lose the transition. */
	util_strlcpy(reason, text ? text : "", sizeof(reason));
	amtprov_error_clear(&err);
	rc = store_device_step(e->st, job->dev.id, device_state_name(from), device_state_name(to),
			       step, code, reason, next_at, attempts, e->cfg.actor, now_of(e),
			       &err);
	if (rc != AMTPROV_OK)
		alog(e->lg, AMTPROV_LOG_ERROR, "%s: cannot record %s -> %s: %s", job->dev.fqdn,
		     device_state_name(from), device_state_name(to), err.msg);
	return rc;
}

/* A step's outcome: the step is no longer in flight. */
static int persist(struct engine *e, struct engine_job *job, enum device_state from,
		   enum device_state to, int code, const char *text, int64_t next_at, int attempts)
{
	return persist_step(e, job, from, to, STORE_STEP_END, code, text, next_at, attempts);
}

/* Remembers that @p id's next step is due now; on no memory the scan still finds it. */
static void follow_push(struct engine *e, int64_t id, int fresh)
{
	if (e->n_follow == e->cap_follow) {
		size_t ncap = e->cap_follow ? e->cap_follow * 2 : 64;
		struct follow *nf = realloc(e->follow, ncap * sizeof(*nf));

		if (!nf)
			return;
		e->follow = nf;
		e->cap_follow = ncap;
	}
	e->follow[e->n_follow].id = id;
	e->follow[e->n_follow++].fresh = fresh;
	e->starting += fresh;
}

/* Gives the device's lease back: another host may take its next step. */
static void lease_release(struct engine *e, struct engine_job *job)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (job->leased && store_device_release(e->st, job->dev.id, e->cfg.host_id, &err))
		alog(e->lg, AMTPROV_LOG_WARNING, "%s: cannot release its lease (it runs out by "
		     "itself): %s", job->dev.fqdn, err.msg);
	job->leased = 0;
}

static void job_free(struct engine_job *job)
{
	if (job->fresh)
		job->e->starting--;
	lease_release(job->e, job);
	inflight_del(job->e, job);
	free(job);
}

/* metrics.h: the step's duration, and the end of provisioning when it is one (PROVISIONED
 * reached by a provisioning step, not by an update or a renewal; FAILED from any step). */
static void count_step(const struct engine_job *job, const char *outcome, enum device_state next,
		       int code)
{
	metrics_step(device_state_name(job->state), outcome,
		     (double)(util_monotonic_ms() - job->started_ms) / 1000.0);
	if (next == DS_FAILED)
		metrics_outcome("failed", code);
	else if (next == DS_PROVISIONED && job->doing != DS_UPDATING && job->doing != DS_RENEWING)
		metrics_outcome("provisioned", 0);
}

static void finish(struct engine_job *job, enum device_state next, int error_code,
		   const char *error_text, int may_retry, int64_t at)
{
	struct engine *e = job->e;
	const char *fqdn = job->dev.fqdn;
	char detail[STORE_TEXT_SIZE];
	struct alog_ctx prev = alog_ctx_set(NULL, fqdn);
	struct amtprov_error txerr;
	int tx, followed = 0;

	/* The outcome's state, audit and status rows in one transaction (one commit per
	 * step). Without it (a transaction already open) each is still atomic on its own. */
	amtprov_error_clear(&txerr);
	tx = store_tx_begin(e->st, &txerr) == AMTPROV_OK;

	if (error_code == AMTPROV_OK && next != DS_INVALID) {
		if (!device_state_allowed(job->doing, next)) {
			/* A handler bug must not corrupt the state machine: fail the device. */
			snprintf(detail, sizeof(detail), "internal error: step asked for %s -> %s",
				 device_state_name(job->doing), device_state_name(next));
			persist(e, job, job->doing, DS_FAILED, AMTPROV_E_INTERNAL, detail, 0,
				job->dev.attempts);
			emit_logged(e, AMTPROV_LOG_ERROR, STATUS_PROVISIONING_FAILED, fqdn, detail);
			count_step(job, "failed", DS_FAILED, AMTPROV_E_INTERNAL);
		} else {
			int attempts = next == job->state ? job->dev.attempts : 0;

			alog(e->lg, AMTPROV_LOG_INFO, "%s -> %s", device_state_name(job->doing),
			     device_state_name(next));
			/* The next step need not wait for the periodic scan, nor for other
			 * devices: it takes the slot this step leaves. */
			if (persist(e, job, job->doing, next, 0, "", at, attempts) == AMTPROV_OK &&
			    device_state_runnable(next) && at <= now_of(e)) {
				follow_push(e, job->dev.id, job->fresh);
				event_active(e->kick_ev, EV_TIMEOUT, 0);
				followed = 1;
			}
			count_step(job, "ok", next, 0);
		}
	} else {
		int code = error_code ? error_code : AMTPROV_E_INTERNAL;
		const char *why = error_text && *error_text ? error_text : amtprov_strerror(code);
		int attempts = job->dev.attempts + 1;
		enum device_state back = device_state_rewind(job->doing);

		if (may_retry && engine_error_transient(code) && attempts < e->cfg.max_attempts) {
			int64_t delay = backoff(e, job->dev.attempts);

			snprintf(detail, sizeof(detail), "%s (attempt %d of %d, next in %llds)", why,
				 attempts, e->cfg.max_attempts, (long long)delay);
			persist(e, job, job->doing, back, code, why, now_of(e) + delay, attempts);
			emit_logged(e, AMTPROV_LOG_WARNING, STATUS_PROVISIONING_RETRY, fqdn, detail);
			count_step(job, "retry", back, code);
		} else {
			if (snprintf(detail, sizeof(detail), "%s failed: %s",
				     device_state_name(job->state), why) >= (int)sizeof(detail))
				amtprov_error_cut(detail, sizeof(detail)); /* never mid-word */
			persist(e, job, job->doing, DS_FAILED, code, detail, 0, attempts);
			emit_logged(e, AMTPROV_LOG_ERROR, STATUS_PROVISIONING_FAILED, fqdn, detail);
			count_step(job, "failed", DS_FAILED, code);
		}
	}
	/* The lease goes with the outcome, in its transaction. */
	if (tx)
		lease_release(e, job);
	if (tx && store_tx_commit(e->st, &txerr) != AMTPROV_OK)
		alog(e->lg, AMTPROV_LOG_ERROR, "cannot record the outcome of %s: %s",
		     device_state_name(job->doing), txerr.msg);
	alog_ctx_restore(prev);
	/* Its place in the ramp is free: the scan may start another device. */
	if (job->fresh)
		event_active(e->kick_ev, EV_TIMEOUT, 0);
	/* No next step follows now: what was kept for one (its connection) can go. */
	if (!followed && e->idle_fn)
		e->idle_fn(e->idle_ctx, &job->dev);
	job_free(job);
}

void engine_job_done(struct engine_job *job, enum device_state next, int error_code,
		     const char *error_text)
{
	finish(job, next, error_code, error_text, 1, 0);
}

void engine_job_defer(struct engine_job *job, enum device_state next, int64_t at)
{
	finish(job, next, AMTPROV_OK, NULL, 1, at);
}

void engine_job_fail(struct engine_job *job, int error_code, const char *error_text)
{
	finish(job, DS_INVALID, error_code ? error_code : AMTPROV_E_INTERNAL, error_text, 0, 0);
}

void engine_job_set_abort(struct engine_job *job, void (*fn)(void *arg), void *arg)
{
	job->abort_fn = fn;
	job->abort_arg = arg;
}

const struct store_device *engine_job_device(const struct engine_job *job)
{
	return &job->dev;
}

enum device_state engine_job_state(const struct engine_job *job)
{
	return job->state;
}

/* ---- scanning ---- */

struct candidates {
	struct engine *e;
	struct store_device *devs;
	size_t n, cap;
	int64_t now;
	int room; /* ramp_room() when the scan began */
};

/* The ramp (issue 13 item 4): how many more devices the scan may start now. A device the
 * scan starts (a new one, or one due again after a wait) opens connections, beginning with
 * a full TLS handshake, and holds one for the rest of its flow (its steps run back to back
 * as follow-ups). With thousands in flight started together, every handshake ran at once
 * and passed the connect timeout on a loaded machine (each device then waited for its
 * retry), and every device held a connection (libcurl's and OpenSSL's state, ~85 KiB)
 * while the machine could serve only a few hundred. So at most max_starting devices the
 * scan started are in a flow at once: a device counts from its first step until its steps
 * stop following each other (it is provisioned, fails, or waits: for a retry, for the CA);
 * then its place goes to the next device. The follow-ups of devices in a flow never wait
 * for room: they go first. */
static int ramp_room(const struct engine *e)
{
	int room = e->cfg.max_starting - e->starting;

	return room > 0 ? room : 0;
}

static int collect(void *ctx, const struct store_device *dev)
{
	struct candidates *c = ctx;
	struct engine *e = c->e;

	if ((int)(c->n) + e->in_flight >= e->cfg.max_in_flight || (int)c->n >= c->room)
		return 1;
	if (dev->blocked || dev->next_attempt_at > c->now || inflight_has(e, dev->id))
		return 0;
	/* Another host works on it (its lease is live): not a candidate here. */
	if (dev->lease_owner[0] && strcmp(dev->lease_owner, e->cfg.host_id) != 0 &&
	    dev->lease_until >= c->now)
		return 0;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		struct store_device *nd = realloc(c->devs, ncap * sizeof(*nd));

		if (!nd)
			return 1;
		c->devs = nd;
		c->cap = ncap;
	}
	c->devs[c->n++] = *dev;
	return 0;
}

static void start_job(struct engine *e, const struct store_device *dev, int fresh)
{
	enum device_state s = device_state_parse(dev->state);
	struct handler *h = &e->handlers[s];
	struct engine_job *job;
	struct alog_ctx prev;

	job = calloc(1, sizeof(*job));
	if (!job)
		return;
	job->e = e;
	job->dev = *dev;
	job->state = s;
	job->doing = device_state_doing(s);
	job->started_ms = util_monotonic_ms();
	job->fresh = fresh;
	e->starting += fresh;
	inflight_add(e, job);
	/* The lease and the -ING state in one transaction (one commit per step start, not
	 * two); a failed claim or state change leaves neither. */
	{
		struct amtprov_error lerr;
		int64_t now = now_of(e);
		int tx, ok;

		amtprov_error_clear(&lerr);
		tx = store_tx_begin(e->st, &lerr) == AMTPROV_OK;
		amtprov_error_clear(&lerr);
		/* One host per device: the lease first (a host that lost the race leaves it). */
		ok = store_device_claim(e->st, dev->id, e->cfg.host_id, now,
					now + e->cfg.lease_seconds, &lerr) == AMTPROV_OK;
		job->leased = ok;
		/* Entering the -ING state also counts the step in flight (crash-loop guard),
		 * in the same statement: no extra write. Failing: someone else moved it (CLI,
		 * another host): leave it alone. */
		if (ok && job->doing != s)
			ok = persist_step(e, job, s, job->doing, STORE_STEP_BEGIN, 0, "", 0,
					  dev->attempts) == AMTPROV_OK;
		if (tx && ok && store_tx_commit(e->st, &lerr) != AMTPROV_OK) {
			alog(e->lg, AMTPROV_LOG_ERROR, "%s: cannot start %s: %s", dev->fqdn,
			     device_state_name(s), lerr.msg);
			ok = 0;
			job->leased = 0; /* the failed commit rolled the claim back */
		} else if (tx && !ok) {
			store_tx_rollback(e->st);
			job->leased = 0;
		}
		if (!ok) {
			job_free(job);
			return;
		}
	}
	util_strlcpy(job->dev.state, device_state_name(job->doing), sizeof(job->dev.state));
	prev = alog_ctx_set(NULL, job->dev.fqdn);
	h->fn(job, h->ctx);
	alog_ctx_restore(prev);
}

/* Starts the next steps of devices whose step just ended (follow_push), oldest first, while
 * there is room. Depth first: a device runs the steps of one phase back to back, so its
 * parked connection (transport link) is still there for the next step, and the devices in
 * flight finish before new ones start; breadth first, with more devices than max_in_flight,
 * every device's next step waited for a round over all the others. @return how many. */
static int start_followups(struct engine *e, int64_t now)
{
	size_t i = 0;
	int started = 0;

	for (; i < e->n_follow && e->in_flight < e->cfg.max_in_flight; i++) {
		struct store_device dev;
		struct amtprov_error err;
		enum device_state s;
		int fresh = e->follow[i].fresh;

		e->starting -= fresh; /* the job takes it over, or the flow ends here */
		amtprov_error_clear(&err);
		if (inflight_has(e, e->follow[i].id) ||
		    store_device_get(e->st, e->follow[i].id, &dev, &err) != AMTPROV_OK)
			continue; /* gone, or already running: nothing to follow */
		s = device_state_parse(dev.state);
		if (!device_state_runnable(s) || !e->handlers[s].fn || dev.blocked ||
		    dev.next_attempt_at > now) {
			if (e->idle_fn) /* moved meanwhile (CLI, another host): the scan decides */
				e->idle_fn(e->idle_ctx, &dev);
			continue;
		}
		start_job(e, &dev, fresh);
		started++;
	}
	/* What did not fit waits at the front for the next free slot. */
	if (i > 0) {
		memmove(e->follow, e->follow + i, (e->n_follow - i) * sizeof(*e->follow));
		e->n_follow -= i;
	}
	return started;
}

static void lease_upkeep(struct engine *e, int64_t now);

/* @return how many jobs were started */
static int scan(struct engine *e)
{
	struct candidates c = {.e = e, .now = now_of(e)};
	struct amtprov_error err;
	int started = start_followups(e, c.now);

	c.room = ramp_room(e);
	lease_upkeep(e, c.now);

	for (int s = DS_INVALID + 1; s < DS_COUNT; s++) {
		if (!e->handlers[s].fn || !device_state_runnable((enum device_state)s))
			continue;
		if (e->in_flight + (int)c.n >= e->cfg.max_in_flight || (int)c.n >= c.room)
			break;
		amtprov_error_clear(&err);
		/* The due ones only, by the state's index: a scan reads about the rows it
		 * starts, not every device (it runs whenever a slot frees). */
		if (store_device_list_due(e->st, device_state_name((enum device_state)s), c.now,
					  collect, &c, &err) != AMTPROV_OK)
			alog(e->lg, AMTPROV_LOG_ERROR, "cannot list devices: %s", err.msg);
	}
	/* Started after listing: no job writes while a read statement is open. */
	for (size_t i = 0; i < c.n; i++, started++)
		start_job(e, &c.devs[i], 1);
	free(c.devs);
	return started;
}

static void on_scan(evutil_socket_t fd, short what, void *arg)
{
	scan(arg);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	scan(arg);
}

void engine_kick(struct engine *e)
{
	scan(e);
}

/* ---- lifecycle ---- */

struct engine *engine_new(struct store *st, struct alog *lg, const struct engine_config *cfg,
			  int64_t (*now)(void *ctx), void *now_ctx, engine_status_fn status,
			  void *status_ctx, struct amtprov_error *err)
{
	struct engine *e;
	struct timeval tv;

	pthread_once(&evthread_once, evthread_init);
	e = calloc(1, sizeof(*e));
	if (!e) {
		amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		return NULL;
	}
	e->st = st;
	/* Durable records are synced off the loop; the workers and the transport wait for
	 * them before they act (store_sync.h). Without it (no file) commits sync inline. */
	{
		struct amtprov_error serr;

		amtprov_error_clear(&serr);
		if (st && store_defer_sync(st, &serr) != AMTPROV_OK && lg)
			alog(lg, AMTPROV_LOG_DEBUG, "database syncs stay inline: %s", serr.msg);
	}
	e->lg = lg;
	if (cfg)
		e->cfg = *cfg;
	if (e->cfg.max_in_flight <= 0)
		e->cfg.max_in_flight = 256;
	if (e->cfg.max_starting <= 0)
		e->cfg.max_starting = ENGINE_MAX_STARTING;
	if (e->cfg.workers <= 0)
		e->cfg.workers = 4;
	if (e->cfg.retry_base_seconds <= 0)
		e->cfg.retry_base_seconds = 60;
	if (e->cfg.retry_max_seconds < e->cfg.retry_base_seconds)
		e->cfg.retry_max_seconds = e->cfg.retry_base_seconds > 3600 ? e->cfg.retry_base_seconds
									     : 3600;
	if (e->cfg.max_attempts <= 0)
		e->cfg.max_attempts = 10;
	if (e->cfg.crash_loop_limit <= 0)
		e->cfg.crash_loop_limit = 3;
	if (e->cfg.scan_interval_ms <= 0)
		e->cfg.scan_interval_ms = 1000;
	if (!e->cfg.actor)
		e->cfg.actor = "amtprovd";
	if (!e->cfg.host_id || !e->cfg.host_id[0])
		e->cfg.host_id = e->cfg.actor;
	if (e->cfg.lease_seconds <= 0)
		e->cfg.lease_seconds = 60;
	e->now = now;
	e->now_ctx = now_ctx;
	e->status = status;
	e->status_ctx = status_ctx;
	e->n_slots = (size_t)e->cfg.max_in_flight * 2 + 1;
	e->slots = calloc(e->n_slots, sizeof(*e->slots));
	pthread_mutex_init(&e->qlock, NULL);
	pthread_cond_init(&e->qcond, NULL);
	e->base = event_base_new();
	if (!e->slots || !e->base)
		goto fail;
	e->done_ev = event_new(e->base, -1, 0, on_done, e);
	e->scan_ev = event_new(e->base, -1, EV_PERSIST, on_scan, e);
	e->kick_ev = event_new(e->base, -1, 0, on_kick, e);
	if (!e->done_ev || !e->scan_ev || !e->kick_ev)
		goto fail;
	tv.tv_sec = e->cfg.scan_interval_ms / 1000;
	tv.tv_usec = (e->cfg.scan_interval_ms % 1000) * 1000;
	event_add(e->scan_ev, &tv);
	e->threads = calloc((size_t)e->cfg.workers, sizeof(*e->threads));
	if (!e->threads)
		goto fail;
	for (int i = 0; i < e->cfg.workers; i++) {
		if (pthread_create(&e->threads[i], NULL, worker_main, e) != 0)
			goto fail;
		e->n_threads++;
	}
	return e;
fail:
	amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "cannot create the engine");
	engine_free(e);
	return NULL;
}

void engine_shutdown(struct engine *e)
{
	if (!e || e->shut_down)
		return;
	e->shut_down = 1;
	/* The flow (the idle hook's owner) may be freed right after. */
	e->idle_fn = NULL;
	pthread_mutex_lock(&e->qlock);
	e->stopping = 1;
	pthread_cond_broadcast(&e->qcond);
	pthread_mutex_unlock(&e->qlock);
	for (int i = 0; i < e->n_threads; i++)
		pthread_join(e->threads[i], NULL);
	/* Workers are gone: every job is queued, done-but-not-dispatched, or finished. */
	drop_offloaded(e->work_head);
	drop_offloaded(e->done_head);
	e->work_head = e->work_tail = e->done_head = NULL;
	e->offloaded = 0;
	/* Abandon jobs: their -ING state stays recorded, as after a crash; each step releases
	 * its own state (sessions, calls) through its abort hook. */
	for (size_t i = 0; e->slots && i < e->n_slots; i++) {
		struct engine_job *job = e->slots[i];

		if (!job)
			continue;
		e->slots[i] = NULL;
		if (job->abort_fn)
			job->abort_fn(job->abort_arg);
		/* An orderly stop is not the step's fault: take back its crash-loop count. */
		if (job->doing != job->state)
			persist_step(e, job, job->doing, job->doing, STORE_STEP_UNDO, 0,
				     "stopped with amtprovd; not counted by the crash-loop guard", 0,
				     job->dev.attempts);
		/* Another host may resume it now rather than when the lease runs out. */
		lease_release(e, job);
		free(job);
	}
	e->in_flight = 0;
	e->starting = 0;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	engine_shutdown(e);
	if (e->scan_ev)
		event_free(e->scan_ev);
	if (e->kick_ev)
		event_free(e->kick_ev);
	if (e->done_ev)
		event_free(e->done_ev);
	if (e->base)
		event_base_free(e->base);
	pthread_mutex_destroy(&e->qlock);
	pthread_cond_destroy(&e->qcond);
	free(e->threads);
	free(e->slots);
	free(e->follow);
	free(e);
}

void engine_set_idle_hook(struct engine *e, engine_idle_fn fn, void *ctx)
{
	e->idle_fn = fn;
	e->idle_ctx = ctx;
}

int engine_set_handler(struct engine *e, enum device_state s, engine_step_fn fn, void *ctx)
{
	if ((int)s <= DS_INVALID || s >= DS_COUNT || !device_state_runnable(s))
		return AMTPROV_E_INVALID;
	e->handlers[s].fn = fn;
	e->handlers[s].ctx = ctx;
	return AMTPROV_OK;
}

struct rewind_ctx {
	int64_t *ids;
	size_t n, cap;
};

static int collect_ing(void *ctx, const struct store_device *dev)
{
	struct rewind_ctx *r = ctx;

	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 32;
		int64_t *ni = realloc(r->ids, ncap * sizeof(*ni));

		if (!ni)
			return 1;
		r->ids = ni;
		r->cap = ncap;
	}
	r->ids[r->n++] = dev->id;
	return 0;
}

/* Crash-loop guard (R-PROV-13): the process died every time this device's step was in
 * flight. Resuming it first again would stop every device; it goes to FAILED instead, with
 * a reason naming the step, and the others go on. */
static int set_aside(struct engine *e, const struct store_device *dev, const char *step,
		     struct amtprov_error *err)
{
	char why[STORE_TEXT_SIZE];
	int rc;

	snprintf(why, sizeof(why),
		 "crash-loop guard: amtprovd stopped %d times while step %s of this device was "
		 "in flight (engine.crash_loop_limit %d); set aside, see the log for the step's "
		 "last requests, then 'amtprov device retry'",
		 dev->in_flight, step, e->cfg.crash_loop_limit);
	/* KEEP: the count stays visible (device show) until 'device retry' clears it. */
	rc = store_device_step(e->st, dev->id, step, device_state_name(DS_FAILED),
			       STORE_STEP_KEEP, AMTPROV_E_INTERNAL, why, 0, dev->attempts,
			       e->cfg.actor, now_of(e), err);
	if (rc)
		return rc;
	alog(e->lg, AMTPROV_LOG_ERROR, "%s: %s", dev->fqdn, why);
	emit(e, STATUS_CRASH_LOOP, dev->fqdn, why);
	return AMTPROV_OK;
}

/* Rewinds (or sets aside) one interrupted device; a device that moved meanwhile is left. */
static int recover_one(struct engine *e, const struct store_device *dev, const char *from,
		       const char *to, int *count, struct amtprov_error *err)
{
	int rc;

	if (dev->in_flight > e->cfg.crash_loop_limit) {
		rc = set_aside(e, dev, from, err);
		if (rc == AMTPROV_E_STATE) {
			amtprov_error_clear(err);
			return AMTPROV_OK;
		}
		if (rc == AMTPROV_OK)
			(*count)++;
		return rc;
	}
	rc = store_device_step(e->st, dev->id, from, to, STORE_STEP_KEEP, AMTPROV_OK,
			       "interrupted by a restart; step will run again", 0, dev->attempts,
			       e->cfg.actor, now_of(e), err);
	if (rc == AMTPROV_E_STATE) {
		amtprov_error_clear(err);
		return AMTPROV_OK; /* moved meanwhile */
	}
	if (rc)
		return rc;
	alog(e->lg, AMTPROV_LOG_WARNING, "%s: rewound %s -> %s after restart", dev->fqdn, from,
	     to);
	emit(e, STATUS_STATE_RESUMED, dev->fqdn, from);
	(*count)++;
	return AMTPROV_OK;
}

int engine_recover(struct engine *e, int *rewound, struct amtprov_error *err)
{
	int count = 0;

	for (int s = DS_INVALID + 1; s < DS_COUNT; s++) {
		struct rewind_ctx r = {0};
		const char *from = device_state_name((enum device_state)s);
		const char *to = device_state_name(device_state_rewind((enum device_state)s));
		int rc;

		if (!device_state_in_progress((enum device_state)s))
			continue;
		rc = store_device_list(e->st, from, collect_ing, &r, err);
		for (size_t i = 0; rc == AMTPROV_OK && i < r.n; i++) {
			struct store_device dev;
			int64_t now = now_of(e);

			/* Ours and running, or another live host's: not interrupted. The claim
			 * succeeds for a device nobody holds, a lease of this host's previous
			 * life, or a dead host's expired one. */
			if (inflight_has(e, r.ids[i]))
				continue;
			rc = store_device_claim(e->st, r.ids[i], e->cfg.host_id, now,
						now + e->cfg.lease_seconds, err);
			if (rc == AMTPROV_E_BUSY || rc == AMTPROV_E_NOT_FOUND) {
				amtprov_error_clear(err);
				rc = AMTPROV_OK;
				continue;
			}
			if (rc == AMTPROV_OK)
				rc = store_device_get(e->st, r.ids[i], &dev, err);
			if (rc == AMTPROV_OK)
				rc = recover_one(e, &dev, from, to, &count, err);
			store_device_release(e->st, r.ids[i], e->cfg.host_id, NULL);
		}
		free(r.ids);
		if (rc)
			return rc;
	}
	e->reclaimed_at = now_of(e);
	if (rewound)
		*rewound = count;
	return AMTPROV_OK;
}

/* The renewal of this host's leases (every third of their life) and, every lease life,
 * a recovery pass: the -ING devices of a host that died are rewound here once their
 * leases ran out, and resumed like after a restart (R-PROV-13). */
static void lease_upkeep(struct engine *e, int64_t now)
{
	struct amtprov_error err;
	int n = 0;

	amtprov_error_clear(&err);
	if (now - e->renewed_at >= e->cfg.lease_seconds / 3) {
		if (store_lease_renew(e->st, e->cfg.host_id, now + e->cfg.lease_seconds, NULL,
				      &err) == AMTPROV_OK)
			e->renewed_at = now;
		else
			alog(e->lg, AMTPROV_LOG_ERROR, "cannot renew device leases: %s", err.msg);
	}
	if (e->reclaimed_at && now - e->reclaimed_at < e->cfg.lease_seconds)
		return;
	amtprov_error_clear(&err);
	if (engine_recover(e, &n, &err) != AMTPROV_OK)
		alog(e->lg, AMTPROV_LOG_ERROR, "cannot resume interrupted devices: %s", err.msg);
	else if (n)
		alog(e->lg, AMTPROV_LOG_NOTICE, "resumed %d device%s another host left", n,
		     n == 1 ? "" : "s");
}

int engine_run(struct engine *e, struct amtprov_error *err)
{
	scan(e);
	if (event_base_dispatch(e->base) < 0)
		return amtprov_error_set(err, AMTPROV_E_INTERNAL, NULL, "event loop failed");
	return AMTPROV_OK;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

int engine_run_until_idle(struct engine *e, int64_t timeout_ms, struct amtprov_error *err)
{
	int expired = 0;
	struct event *deadline = evtimer_new(e->base, on_deadline, &expired);
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

	if (!deadline)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	evtimer_add(deadline, &tv);
	for (;;) {
		int started = scan(e);

		if (expired)
			break;
		if (started == 0 && e->in_flight == 0 && e->offloaded == 0)
			break;
		event_base_loop(e->base, EVLOOP_ONCE);
	}
	event_free(deadline);
	if (e->in_flight != 0 || e->offloaded != 0 || expired)
		return amtprov_error_set(err, AMTPROV_E_TIMEOUT, NULL,
					 "engine still busy after %lld ms (%d devices in flight, "
					 "%d maintenance calls)",
					 (long long)timeout_ms, e->in_flight, e->offloaded);
	return AMTPROV_OK;
}

void engine_stop(struct engine *e)
{
	event_base_loopbreak(e->base);
}

struct event_base *engine_base(struct engine *e)
{
	return e->base;
}

int engine_in_flight(const struct engine *e)
{
	return e->in_flight;
}
