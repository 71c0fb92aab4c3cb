/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gauges read from the site database at scrape time (api_metrics.h), then the process's
 * counters (core/metrics.c). A gauge is what the database says, so two hosts on one site
 * report the same devices; counters are each process's own work.
 */
#include "api_metrics.h"

#include <string.h>

#include "ca_contract.h"
#include "device_state.h"
#include "metrics.h"
#include "store.h"

/* Days-to-expiry groups of active certificates: each certificate is in exactly one. R-PC-06
 * warns at 40 days; renewal (R-WS-03) looks ahead by the manifest's window. */
static const struct {
	const char *label;
	int64_t max_days; /* not_after - now < max_days days; the last catches the rest */
} expiry[] = {
	{"expired", 0}, {"7", 7}, {"30", 30}, {"40", 40}, {"90", 90}, {"365", 365}, {"later", -1},
};
#define N_EXPIRY (sizeof(expiry) / sizeof(expiry[0]))
#define N_PURPOSE 4 /* AMTPROV_PURPOSE_* 1..3, 0 for anything else */

struct tally {
	int64_t now;
	int64_t devices[DS_COUNT];
	int64_t deleted;          /* tombstones of deleted devices (store_device_delete) */
	int64_t certs[N_PURPOSE][N_EXPIRY];
	int64_t cert_status[4];   /* active, revoke-pending, revoked, expired */
	FILE *out;
};

static const char *const cert_statuses[4] = {STORE_CERT_ACTIVE, STORE_CERT_REVOKE_PENDING,
					      STORE_CERT_REVOKED, STORE_CERT_EXPIRED};

static int count_state(void *ctx, const char *state, int64_t count)
{
	struct tally *t = ctx;
	enum device_state s = device_state_parse(state);

	if (strcmp(state, STORE_DEVICE_DELETED) == 0) {
		t->deleted += count;
		return 0;
	}
	t->devices[s] += count; /* an unknown name (a newer schema) lands in DS_INVALID */
	return 0;
}

static int count_cert(void *ctx, const struct store_cert *c)
{
	struct tally *t = ctx;
	int p = c->purpose > 0 && c->purpose < N_PURPOSE ? c->purpose : 0;

	for (int i = 0; i < 4; i++)
		if (strcmp(c->status, cert_statuses[i]) == 0)
			t->cert_status[i]++;
	if (strcmp(c->status, STORE_CERT_ACTIVE) != 0)
		return 0;
	for (size_t i = 0; i < N_EXPIRY; i++) {
		if (expiry[i].max_days < 0 || c->not_after - t->now < expiry[i].max_days * 86400) {
			t->certs[p][i]++;
			break;
		}
	}
	return 0;
}

struct pending_kind {
	char kind[STORE_SHORT_SIZE];
	int64_t n;
};

struct pending_tally {
	struct pending_kind k[32];
	size_t n;
	int64_t other;
};

static int count_pending(void *ctx, const struct store_pending *op)
{
	struct pending_tally *t = ctx;

	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->k[i].kind, op->kind) == 0) {
			t->k[i].n++;
			return 0;
		}
	}
	if (t->n == sizeof(t->k) / sizeof(t->k[0])) {
		t->other++;
		return 0;
	}
	snprintf(t->k[t->n].kind, sizeof(t->k[t->n].kind), "%s", op->kind);
	t->k[t->n++].n = 1;
	return 0;
}

struct tasks {
	struct store_task t[16];
	size_t n;
};

static int collect_task(void *ctx, const struct store_task *task)
{
	struct tasks *ts = ctx;

	if (ts->n < sizeof(ts->t) / sizeof(ts->t[0]))
		ts->t[ts->n++] = *task;
	return 0;
}

/* One family's line per task: the exposition format wants a family's samples together. */
static void write_tasks(FILE *out, const struct tasks *ts, const char *name, int which)
{
	for (size_t i = 0; i < ts->n; i++) {
		const struct store_task *task = &ts->t[i];

		fprintf(out, "%s{task=\"", name);
		metrics_write_label(out, task->name);
		fprintf(out, "\"} %lld\n",
			which == 0   ? (long long)task->last_run
			: which == 1 ? (long long)task->last_result
				     : (long long)task->next_run);
	}
}

static void header(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int api_metrics_write(struct site *site, int64_t now, FILE *out, struct amtprov_error *err)
{
	struct store *st = site_store(site);
	struct tally t = {.now = now, .out = out};
	struct pending_tally pt = {.n = 0};
	struct tasks ts = {.n = 0};
	struct store_cert_filter all = {0};
	int rc;

	rc = store_device_count_by_state(st, count_state, &t, err);
	if (rc == AMTPROV_OK)
		rc = store_cert_list(st, &all, count_cert, &t, err);
	if (rc == AMTPROV_OK)
		rc = store_pending_list(st, 0, count_pending, &pt, err);
	if (rc == AMTPROV_OK)
		rc = store_task_list(st, collect_task, &ts, err);
	if (rc != AMTPROV_OK)
		return rc;

	header(out, "amtprov_devices", "gauge", "Devices in the site database, by state.");
	for (int s = DS_INVALID + 1; s < DS_COUNT; s++)
		fprintf(out, "amtprov_devices{state=\"%s\"} %lld\n",
			device_state_name((enum device_state)s), (long long)t.devices[s]);
	if (t.devices[DS_INVALID])
		fprintf(out, "amtprov_devices{state=\"unknown\"} %lld\n",
			(long long)t.devices[DS_INVALID]);
	header(out, "amtprov_devices_deleted", "gauge",
	       "Records of deleted devices, kept with their history (amtprov device delete).");
	fprintf(out, "amtprov_devices_deleted %lld\n", (long long)t.deleted);

	header(out, "amtprov_certificates", "gauge",
	       "Active certificates by purpose and days to expiry (expired, under 7, 30, 40, 90, "
	       "365 days, later); each certificate in one group.");
	for (int p = 0; p < N_PURPOSE; p++) {
		for (size_t i = 0; i < N_EXPIRY; i++) {
			if (p == 0 && !t.certs[p][i])
				continue; /* purpose "unknown": only when there is one */
			fprintf(out,
				"amtprov_certificates{purpose=\"%s\",expires_within_days=\"%s\"} "
				"%lld\n",
				ca_contract_purpose_name((uint32_t)p), expiry[i].label,
				(long long)t.certs[p][i]);
		}
	}
	header(out, "amtprov_certificates_by_status", "gauge",
	       "Certificate records by status (every certificate amtprov obtained).");
	for (int i = 0; i < 4; i++)
		fprintf(out, "amtprov_certificates_by_status{status=\"%s\"} %lld\n",
			cert_statuses[i], (long long)t.cert_status[i]);
	header(out, "amtprov_revocation_queue_length", "gauge",
	       "Certificates waiting to be revoked at their CA (status revoke-pending).");
	fprintf(out, "amtprov_revocation_queue_length %lld\n", (long long)t.cert_status[1]);
	header(out, "amtprov_pending_operations", "gauge",
	       "Recorded operations not finished yet (CA polls, revocations, ...), by kind.");
	for (size_t i = 0; i < pt.n; i++) {
		fputs("amtprov_pending_operations{kind=\"", out);
		metrics_write_label(out, pt.k[i].kind);
		fprintf(out, "\"} %lld\n", (long long)pt.k[i].n);
	}
	if (pt.other)
		fprintf(out, "amtprov_pending_operations{kind=\"other\"} %lld\n",
			(long long)pt.other);

	header(out, "amtprov_task_last_run_timestamp_seconds", "gauge",
	       "When each maintenance task last ran (Unix time; 0 never).");
	write_tasks(out, &ts, "amtprov_task_last_run_timestamp_seconds", 0);
	header(out, "amtprov_task_last_result", "gauge",
	       "Each maintenance task's last result (0 success, else an amtprov status code).");
	write_tasks(out, &ts, "amtprov_task_last_result", 1);
	header(out, "amtprov_task_next_run_timestamp_seconds", "gauge",
	       "When each maintenance task runs next (Unix time).");
	write_tasks(out, &ts, "amtprov_task_next_run_timestamp_seconds", 2);

	if (metrics_write(out) != 0)
		return amtprov_error_set(err, AMTPROV_E_IO, NULL, "cannot write the metrics");
	return AMTPROV_OK;
}
