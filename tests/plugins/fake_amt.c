/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_amt.c - a transport test double that behaves asynchronously the way a real one
 * must: begin() returns AMTPROV_AGAIN, every operation completes `latency_ms` later, and
 * the whole instance is driven through ONE pollable descriptor (a timerfd), so the core's
 * event-loop integration is exercised without any network.
 *
 * Config: "latency_ms" (default 5), "fail_op" (an op number that fails with E_DEVICE,
 * default 0 = none), "fail_fqdn" (only that device fails it; "" = every device),
 * "post_fqdn" (that device reports it is already provisioned), "otp_hash" (what every
 * device reports as its OTP hash), "root_hash" (the one SHA-256 root hash every device
 * reports).
 * Results: GET_CORE_VERSION -> {"version": "<amt version of the device>"},
 *          GET_SETUP_STATE -> {"state": "pre" | "post"}, GET_OTP_HASH -> {"otp_hash": ..},
 *          GET_HASHES -> {"hashes": [{"algorithm": "sha256", "hash": ..}]};
 *          every other op -> {"op": N}.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <amtprov/transport.h>

struct fa_cfg {
	long long latency_ms;
	long long fail_op;
	char *fail_fqdn;
	char *post_fqdn;
	char *otp_hash;
	char *root_hash;
};

struct fa_session {
	struct fa_inst *in;
	char fqdn[256];
	char version[32];
	uint32_t op;         /* running op, 0 = none */
	int64_t due_ms;
	int finished;
	amtprov_transport_done_cb done;
	void *cb_ctx;
	struct fa_session *next; /* pending list */
};

struct fa_inst {
	const struct amtprov_host *host;
	struct fa_cfg cfg;
	int tfd;
	struct fa_session *pending;
	int open_sessions;
};

static const struct amtprov_config_field fa_table[] = {
	{"latency_ms", AMTPROV_CFG_INT, offsetof(struct fa_cfg, latency_ms), 0, "5", 0, 60000,
	 "delay before each operation completes"},
	{"fail_op", AMTPROV_CFG_INT, offsetof(struct fa_cfg, fail_op), 0, "0", 0, 1000,
	 "operation number that fails with E_DEVICE"},
	{"fail_fqdn", AMTPROV_CFG_STRING, offsetof(struct fa_cfg, fail_fqdn), 0, "", 0, 0,
	 "device that fails fail_op; empty: all"},
	{"post_fqdn", AMTPROV_CFG_STRING, offsetof(struct fa_cfg, post_fqdn), 0, "", 0, 0,
	 "device that reports post-provisioning"},
	{"otp_hash", AMTPROV_CFG_STRING, offsetof(struct fa_cfg, otp_hash), 0, "", 0, 0,
	 "OTP hash every device reports"},
	{"root_hash", AMTPROV_CFG_STRING, offsetof(struct fa_cfg, root_hash), 0, "", 0, 0,
	 "SHA-256 root hash every device reports"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Arms the timerfd for the earliest pending operation (or disarms it). */
static void rearm(struct fa_inst *in)
{
	struct itimerspec its;
	int64_t due = -1;

	memset(&its, 0, sizeof(its));
	for (struct fa_session *s = in->pending; s; s = s->next)
		if (due < 0 || s->due_ms < due)
			due = s->due_ms;
	if (due >= 0) {
		int64_t d = due - now_ms();

		if (d < 1)
			d = 1;
		its.it_value.tv_sec = d / 1000;
		its.it_value.tv_nsec = (d % 1000) * 1000000;
	}
	timerfd_settime(in->tfd, 0, &its, NULL);
}

static int fa_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
	struct fa_inst *in = calloc(1, sizeof(*in));
	int rc;

	if (!in)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	in->host = host;
	rc = host->config_parse(host, config, fa_table, &in->cfg, err);
	if (rc != AMTPROV_OK) {
		host->config_free(host, fa_table, &in->cfg);
		free(in);
		return rc;
	}
	in->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (in->tfd < 0) {
		host->config_free(host, fa_table, &in->cfg);
		free(in);
		return amtprov_error_set(err, AMTPROV_E_IO, NULL, "timerfd: %s", strerror(errno));
	}
	*instance = in;
	return AMTPROV_OK;
}

static void fa_destroy(void *instance)
{
	struct fa_inst *in = instance;

	if (!in)
		return;
	close(in->tfd);
	in->host->config_free(in->host, fa_table, &in->cfg);
	free(in);
}

static int fa_session_open(void *instance, const struct amtprov_transport_target *t,
			   void **session, struct amtprov_error *err)
{
	struct fa_inst *in = instance;
	struct fa_session *s = calloc(1, sizeof(*s));

	if (!s)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	s->in = in;
	snprintf(s->fqdn, sizeof(s->fqdn), "%s", t->device && t->device->fqdn ? t->device->fqdn : "");
	snprintf(s->version, sizeof(s->version), "%d.%d.0", t->device ? t->device->amt_major : 0,
		 t->device ? t->device->amt_minor : 0);
	in->open_sessions++;
	*session = s;
	return AMTPROV_OK;
}

static void unlink_pending(struct fa_inst *in, struct fa_session *s)
{
	for (struct fa_session **pp = &in->pending; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			s->next = NULL;
			return;
		}
	}
}

static void fa_session_close(void *instance, void *session)
{
	struct fa_inst *in = instance;
	struct fa_session *s = session;

	if (!s)
		return;
	unlink_pending(in, s);
	in->open_sessions--;
	free(s);
	rearm(in);
}

static int fa_begin(void *instance, void *session, uint32_t op, const struct json_t *params,
		    amtprov_transport_done_cb done, void *cb_ctx, struct amtprov_error *err)
{
	struct fa_inst *in = instance;
	struct fa_session *s = session;

	if (s->op)
		return amtprov_error_set(err, AMTPROV_E_STATE, s->fqdn, "an operation is running");
	if (op < AMTPROV_AMT_GET_CORE_VERSION || op > AMTPROV_AMT_DELETE_CERTIFICATE)
		return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, s->fqdn, "unknown op %u",
					 (unsigned)op);
	s->op = op;
	s->finished = 0;
	s->done = done;
	s->cb_ctx = cb_ctx;
	s->due_ms = now_ms() + in->cfg.latency_ms;
	s->next = in->pending;
	in->pending = s;
	rearm(in);
	return AMTPROV_AGAIN;
}

static int fa_get_wait(void *instance, struct amtprov_wait *wait, struct amtprov_error *err)
{
	struct fa_inst *in = instance;

	wait->fd = in->tfd;
	wait->events = AMTPROV_WAIT_READ;
	wait->timeout_ms = -1;
	return AMTPROV_OK;
}

static int fa_drive(void *instance, struct amtprov_error *err)
{
	struct fa_inst *in = instance;
	uint64_t ticks;
	int64_t now = now_ms();
	struct fa_session *due = NULL;

	if (read(in->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return amtprov_error_set(err, AMTPROV_E_IO, NULL, "timerfd read: %s", strerror(errno));
	/* Collect first: a done callback may close or restart its session. */
	for (struct fa_session **pp = &in->pending; *pp;) {
		struct fa_session *s = *pp;

		if (s->due_ms <= now) {
			*pp = s->next;
			s->next = due;
			due = s;
		} else {
			pp = &s->next;
		}
	}
	rearm(in);
	while (due) {
		struct fa_session *s = due;

		due = s->next;
		s->next = NULL;
		s->finished = 1;
		s->done(s->cb_ctx);
	}
	return AMTPROV_OK;
}

static int fa_finish(void *instance, void *session, struct json_t **result,
		     struct amtprov_error *err)
{
	struct fa_inst *in = instance;
	struct fa_session *s = session;
	uint32_t op = s->op;

	if (!s->finished)
		return amtprov_error_set(err, AMTPROV_E_STATE, s->fqdn, "operation not finished");
	s->op = 0;
	s->finished = 0;
	if (in->cfg.fail_op && (uint32_t)in->cfg.fail_op == op &&
	    (!in->cfg.fail_fqdn[0] || strcmp(in->cfg.fail_fqdn, s->fqdn) == 0))
		return amtprov_error_set(err, AMTPROV_E_DEVICE, s->fqdn,
					 "AMT returned 2053 (AMT_STATUS_INVALID_PARAMETER) for op %u",
					 (unsigned)op);
	if (op == AMTPROV_AMT_GET_CORE_VERSION)
		*result = json_pack("{s:s}", "version", s->version);
	else if (op == AMTPROV_AMT_GET_SETUP_STATE)
		*result = json_pack("{s:s}", "state",
				    strcmp(in->cfg.post_fqdn, s->fqdn) == 0 ? "post" : "pre");
	else if (op == AMTPROV_AMT_GET_OTP_HASH)
		*result = json_pack("{s:s}", "otp_hash", in->cfg.otp_hash);
	else if (op == AMTPROV_AMT_GET_HASHES)
		*result = json_pack("{s:[{s:s,s:s}]}", "hashes", "algorithm", "sha256", "hash",
				    in->cfg.root_hash);
	else
		*result = json_pack("{s:i}", "op", (int)op);
	return *result ? AMTPROV_OK : amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
}

static const struct amtprov_transport_ops fa_ops = {
	.struct_size = sizeof(struct amtprov_transport_ops),
	.session_open = fa_session_open,
	.session_close = fa_session_close,
	.begin = fa_begin,
	.get_wait = fa_get_wait,
	.drive = fa_drive,
	.finish = fa_finish,
};

static const char *const fa_caps[] = {AMTPROV_CAP_TRANSPORT_WSMAN, AMTPROV_CAP_TRANSPORT_SOAP,
				      NULL};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_TRANSPORT, .name = "fake-amt", .version = "0.1.0",
		      .description = "asynchronous transport double: ops complete after a latency",
		      .capabilities = fa_caps, .create = fa_create, .destroy = fa_destroy,
		      .ops = &fa_ops, .config_table = fa_table);
