/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NEED_CERTIFICATE and CA_WAITING: the device's AMT web server certificate from the site's
 * CA plugin (R-PROV-06, R-WS-01), through the enrollment sub-machine (enroll.c: key inside
 * AMT or made by amtprov, request, CA, contract, record). This file only opens the session
 * a key inside AMT needs and turns the enrollment's outcome into the device's next state:
 *   ISSUED  earlier web server certificates revoked Superseded (R-REV-02b, revoke.c),
 *           then done (flow_table.c: NEED_FIRST_STAGE);
 *   WAIT    wait (CA_WAITING until the poll time; every purpose's WAIT shows there: the
 *           poll record names the step that polls, CA_WAITING resumes it);
 *   REKEY   again (NEED_CERTIFICATE: a new key and request);
 *   FAILED  retried with backoff when transient, else FAILED.
 * Renewal (flow_renew.c) asks through flow_cert_request and gets the outcome instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enroll.h"
#include "flow_int.h"
#include "flow_managed.h"
#include "flow_table.h"
#include "revoke.h"
#include "status.h"
#include "util.h"

/* One web server certificate request of a job. */
struct cert_call {
	struct flow *f;
	struct engine_job *job;
	struct enroll *enroll;
	void *session;                      /* opened for a key inside AMT */
	int64_t verify_cert_id;             /* renewal: the session is MANAGED, verified with
					     * this certificate's chain and CRL (R-REV-01) */
	struct managed m;
	struct flow_device_accounts accounts;
	struct amtprov_device_info info;
	struct revoke_job revoking;         /* R-REV-02b: the superseded ones */
	flow_cert_done_fn done;             /* flow_cert_request(): who gets the answer */
	void *done_arg;
	void (*done_free)(void *);          /* frees done_arg if the answer never reaches done */
};

static void session_close(struct cert_call *c)
{
	if (c->verify_cert_id)
		managed_close(&c->m);
	else if (c->session)
		tloop_session_close(c->f->tloop, c->session);
	c->session = NULL;
}

static void call_free(struct cert_call *c)
{
	if (!c)
		return;
	if (c->done_free)
		c->done_free(c->done_arg);
	enroll_free(c->enroll);
	session_close(c);
	flow_device_accounts_free(&c->accounts);
	revoke_batch_free(c->revoking.batch);
	free(c);
}

static void call_abort(void *arg)
{
	call_free(arg);
}

/* The session a key inside AMT needs: provisioning mode, or MANAGED for a renewal. */
static int open_session(void *ctx, void **session, struct amtprov_error *err)
{
	struct cert_call *c = ctx;
	const struct store_device *d = engine_job_device(c->job);
	struct amtprov_transport_target tgt;
	int rc;

	if (c->verify_cert_id) {
		rc = managed_open(c->f, d, c->verify_cert_id, &c->m, err);
		c->session = c->m.session;
	} else {
		rc = flow_device_accounts(c->f, d->fqdn, &c->accounts, err);
		if (rc == AMTPROV_OK) {
			flow_provisioning_target(c->f, d, &c->accounts, &c->info, &tgt);
			rc = tloop_session_open(c->f->tloop, &tgt, &c->session, err);
		}
	}
	*session = c->session;
	return rc;
}

static void start(struct cert_call *c, enroll_done_fn done)
{
	struct manifest *m = site_manifest(c->f->site);
	const struct store_device *d = engine_job_device(c->job);
	struct enroll_spec spec = {
		.purpose = AMTPROV_PURPOSE_WEB_SERVER,
		.ca = m->web_server.ca,
		.template_name = m->web_server.template_name,
		.key_bits = m->web_server.key_bits,
		/* renewal polls on its own step; provisioning's poll runs in CA_WAITING */
		.resume = c->done ? DS_NEED_RENEWAL : DS_INVALID,
		.open_session = open_session,
		.open_ctx = c,
	};
	char why[STORE_TEXT_SIZE];
	int source = flow_key_source(c->f, d, "web server key", &spec.amt_auto, why, sizeof(why));

	if (source < 0) {
		struct enroll_result r = {.outcome = ENROLL_FAILED, .rc = AMTPROV_E_CONFIG,
					  .final = 1};

		util_strlcpy(r.why, why, sizeof(r.why));
		done(c, &r);
		return;
	}
	spec.key_in_amt = source;
	manifest_crypto_for(m, d->amt_version, m->web_server.key_bits, &spec.key_bits,
			    &spec.digest_bits);
	engine_job_set_abort(c->job, call_abort, c);
	enroll_start(c->f, c->job, &spec, done, c, &c->enroll);
}

static struct cert_call *call_new(struct flow *f, struct engine_job *job)
{
	struct cert_call *c = calloc(1, sizeof(*c));

	if (c) {
		c->f = f;
		c->job = job;
	}
	return c;
}

/* ---- provisioning: the outcome becomes the device's next state ---- */

static void on_revoked(void *owner)
{
	struct cert_call *c = owner;
	struct engine_job *job = c->job;

	call_free(c);
	flow_end(job, FLOW_DONE);
}

/* R-REV-02b: the device's earlier web server certificates are queued for revocation,
 * Superseded (write-ahead, revoke.c), and their CAs asked on a worker thread. */
static void supersede(struct cert_call *c, int64_t new_id)
{
	struct engine_job *job = c->job;
	struct amtprov_error err;
	int n = 0;

	amtprov_error_clear(&err);
	if (revoke_queue_device(c->f->site, engine_job_device(job)->id, REVOKE_WEB_SERVER,
				new_id, "R-REV-02b: superseded by a new web server certificate", &n,
				&err) != AMTPROV_OK)
		alog(site_log(c->f->site), AMTPROV_LOG_WARNING, "%s: superseded web server "
		     "certificates not queued for revocation: %s", engine_job_device(job)->fqdn,
		     err.msg);
	c->revoking = (struct revoke_job){
		.site = c->f->site,
		.batch = n ? revoke_batch_due(c->f->site, engine_job_device(job)->id) : NULL,
		.done = on_revoked,
		.owner = c,
	};
	if (c->revoking.batch && revoke_job_start(&c->revoking, job, &err) == AMTPROV_OK)
		return; /* the abort hook (call_abort) still owns c */
	/* Nothing to revoke, or queued: the revocation task asks the CAs. */
	call_free(c);
	flow_end(job, FLOW_DONE);
}

static void on_enrolled(void *ctx, const struct enroll_result *r)
{
	struct cert_call *c = ctx;
	struct engine_job *job = c->job;

	c->enroll = NULL; /* freed by enroll.c */
	session_close(c);
	switch (r->outcome) {
	case ENROLL_ISSUED:
		supersede(c, r->cert_id);
		return;
	case ENROLL_WAIT:
		call_free(c);
		flow_end_wait(job, r->at);
		return;
	case ENROLL_REKEY:
		/* A new key and request on the next attempt. */
		call_free(c);
		flow_end(job, FLOW_AGAIN);
		return;
	case ENROLL_FAILED:
		call_free(c);
		if (r->final)
			engine_job_fail(job, r->rc, r->why);
		else
			engine_job_done(job, DS_INVALID, r->rc, r->why);
		return;
	}
}

void flow_step_certificate(struct engine_job *job, void *ctx)
{
	struct cert_call *c = call_new(ctx, job);

	if (!c) {
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	start(c, on_enrolled);
}

/* CA_WAITING: the device waits for a CA, whatever the certificate is for. The web server
 * certificate of provisioning is polled here; a request whose record names the step that
 * asked (802.1X, renewal) goes back to that step, which polls it in its own context. */
void flow_step_ca_waiting(struct engine_job *job, void *ctx)
{
	struct flow *f = ctx;
	uint32_t purpose = 0;
	char profile[STORE_SHORT_SIZE];
	enum device_state resume = DS_INVALID;
	struct cert_call *c;

	if (!enroll_waiting(f, engine_job_device(job)->id, &purpose, profile, sizeof(profile),
			    &resume)) {
		/* Nothing to poll (lost or done elsewhere): request again. */
		flow_end(job, FLOW_AGAIN);
		return;
	}
	if (resume != DS_INVALID) {
		flow_end_resume(job, resume);
		return;
	}
	c = call_new(f, job);
	if (!c) {
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	start(c, on_enrolled);
}

/* ---- renewal (flow_renew.c): the outcome goes to the caller ---- */

static void on_requested(void *ctx, const struct enroll_result *r)
{
	struct cert_call *c = ctx;
	struct engine_job *job = c->job;
	flow_cert_done_fn done = c->done;
	void *arg = c->done_arg;

	c->enroll = NULL;
	c->done_free = NULL; /* done owns done_arg from here */
	engine_job_set_abort(job, NULL, NULL); /* c is freed here; done sets its own */
	call_free(c);
	switch (r->outcome) {
	case ENROLL_ISSUED:
		done(job, AMTPROV_OK, r->cert_id, 0, NULL, arg);
		return;
	case ENROLL_WAIT:
		done(job, AMTPROV_OK, 0, r->at, NULL, arg);
		return;
	case ENROLL_REKEY:
		/* AMT's key is marked for replacement; the next evaluation asks again. */
		done(job, AMTPROV_E_DENIED, 0, 0, r->why, arg);
		return;
	case ENROLL_FAILED:
		done(job, r->rc, 0, 0, r->why, arg);
		return;
	}
}

void flow_cert_request(struct flow *f, struct engine_job *job, int64_t verify_cert_id,
		       flow_cert_done_fn done, void *arg, void (*arg_free)(void *))
{
	struct cert_call *c = call_new(f, job);

	if (!c) {
		if (arg_free)
			arg_free(arg);
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	c->done = done;
	c->done_arg = arg;
	c->done_free = arg_free;
	c->verify_cert_id = verify_cert_id;
	start(c, on_requested);
}
