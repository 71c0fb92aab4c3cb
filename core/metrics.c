/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process's counters and histograms (metrics.h), in a fixed table of series guarded by
 * one mutex. A series is a family plus up to three label values; a label set not seen before
 * takes the next free slot. The table is bounded: label values come from the manifest
 * (CA instance names), from a fixed vocabulary (states, outcomes, status names, AMT
 * operations), never from devices, so the bound is never reached in practice; if it were,
 * further new series are dropped and counted (amtprov_metrics_dropped_series_total) rather
 * than growing memory without end.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <amtprov/error.h>
#include <amtprov/transport.h>

#define MAX_SERIES 1024
#define MAX_LABELS 3
#define LABEL_SIZE 64
#define N_BUCKETS 12

enum kind { COUNTER, HISTOGRAM };

struct family {
	const char *name;
	const char *help;
	enum kind kind;
	const char *labels[MAX_LABELS]; /* NULL-terminated when fewer */
};

enum family_id { F_STEP, F_OUTCOME, F_CA, F_AMT, F_AMT_SECONDS, F_API_CLOSED, F_COUNT };

static const struct family families[F_COUNT] = {
	[F_STEP] = {"amtprov_step_duration_seconds",
		    "Duration of device steps from their start to their recorded outcome.",
		    HISTOGRAM, {"step", "outcome", NULL}},
	[F_OUTCOME] = {"amtprov_provisioning_outcomes_total",
		       "Devices that ended provisioning, by outcome and failure reason.",
		       COUNTER, {"outcome", "reason", NULL}},
	[F_CA] = {"amtprov_ca_call_duration_seconds",
		  "Calls into CA plugin instances and their latency, by instance, operation and "
		  "answer.", HISTOGRAM, {"instance", "op", "answer"}},
	[F_AMT] = {"amtprov_amt_calls_total", "AMT operations completed, by operation and result.",
		   COUNTER, {"op", "result", NULL}},
	[F_AMT_SECONDS] = {"amtprov_amt_call_duration_seconds",
			   "Latency of AMT operations, by operation.", HISTOGRAM,
			   {"op", NULL, NULL}},
	[F_API_CLOSED] = {"amtprov_api_connections_closed_total",
			  "Registration API connections the server closed under its limits, by "
			  "the limit.", COUNTER, {"reason", NULL, NULL}},
};

/* Upper bounds in seconds; +Inf is implicit. Device steps and CA calls take from
 * milliseconds (a local CA) to minutes (a CA that makes us wait, a slow device). */
static const double buckets[N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					  0.5,   1,    2.5,   5,    10,  60};

struct series {
	enum family_id fam;
	char label[MAX_LABELS][LABEL_SIZE];
	uint64_t count;              /* counter value, or observations */
	double sum;                  /* histograms */
	uint64_t bucket[N_BUCKETS];  /* histograms, not cumulative (summed when written) */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series table[MAX_SERIES];
static size_t n_series;
static uint64_t dropped;

/* The series of @p fam with these labels, created if new; NULL when the table is full. Called
 * with the lock held. */
static struct series *find(enum family_id fam, const char *const *values)
{
	char v[MAX_LABELS][LABEL_SIZE];
	struct series *s;

	memset(v, 0, sizeof(v)); /* compared whole, padding included */
	for (int i = 0; i < MAX_LABELS; i++) {
		const char *x = families[fam].labels[i] && values[i] ? values[i] : "";

		/* Cut rather than refuse: a long instance name still counts. */
		snprintf(v[i], LABEL_SIZE, "%s", x);
	}
	for (size_t i = 0; i < n_series; i++) {
		s = &table[i];
		if (s->fam == fam && memcmp(s->label, v, sizeof(v)) == 0)
			return s;
	}
	if (n_series == MAX_SERIES) {
		dropped++;
		return NULL;
	}
	s = &table[n_series++];
	memset(s, 0, sizeof(*s));
	s->fam = fam;
	memcpy(s->label, v, sizeof(v));
	return s;
}

static void add(enum family_id fam, const char *const *values, int observe, double seconds)
{
	struct series *s;

	if (seconds < 0)
		seconds = 0;
	pthread_mutex_lock(&lock);
	s = find(fam, values);
	if (s) {
		s->count++;
		if (observe) {
			int b = 0;

			while (b < N_BUCKETS && seconds > buckets[b])
				b++;
			if (b < N_BUCKETS)
				s->bucket[b]++;
			s->sum += seconds;
		}
	}
	pthread_mutex_unlock(&lock);
}

void metrics_step(const char *step, const char *outcome, double seconds)
{
	const char *v[MAX_LABELS] = {step, outcome, NULL};

	add(F_STEP, v, 1, seconds);
}

void metrics_outcome(const char *outcome, int code)
{
	const char *v[MAX_LABELS] = {outcome, code ? amtprov_status_name(code) : "", NULL};

	add(F_OUTCOME, v, 0, 0);
}

void metrics_ca_call(const char *instance, const char *op, const char *answer, double seconds)
{
	const char *v[MAX_LABELS] = {instance, op, answer};

	add(F_CA, v, 1, seconds);
}

void metrics_api_closed(const char *reason)
{
	const char *v[MAX_LABELS] = {reason, NULL, NULL};

	add(F_API_CLOSED, v, 0, 0);
}

const char *metrics_amt_op_name(unsigned op, char *buf, size_t size)
{
	/* The operations of transport.h, in its order; the names are the transport plugin's
	 * (amt-transport's at_op_name) in lower case. */
	static const char *const names[] = {
		NULL, "get_core_version", "get_setup_state", "get_otp_hash", "get_hashes",
		"set_time", "set_host_name", "generate_key_pair", "sign_csr", "add_key",
		"add_certificate", "enable_tls", "set_admin_password", "set_mebx_password",
		"commit", "unprovision", "set_acls", "set_kerberos", "set_power_policy",
		"set_redirection", "set_ping", "set_8021x", "get_device_cert",
		"delete_certificate", "wsman_get", "wsman_put", "wsman_create", "wsman_delete",
		"wsman_enumerate", "wsman_invoke", "list_keys", "get_key", "delete_key",
		"list_certificates", "list_cert_bindings", "get_wireless", "list_wifi_profiles",
		"delete_wifi_profile",
	};

	if (op < sizeof(names) / sizeof(names[0]) && names[op])
		return names[op];
	snprintf(buf, size, "op_%u", op);
	return buf;
}

void metrics_amt_call(unsigned op, int rc, double seconds)
{
	char buf[16];
	const char *name = metrics_amt_op_name(op, buf, sizeof(buf));
	const char *v[MAX_LABELS] = {name, amtprov_status_name(rc), NULL};
	const char *w[MAX_LABELS] = {name, NULL, NULL};

	add(F_AMT, v, 0, 0);
	add(F_AMT_SECONDS, w, 1, seconds);
}

void metrics_write_label(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '"')
			fputs("\\\"", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

/* {a="x",b="y"[,le="..."]} */
static void write_labels(FILE *out, const struct series *s, const char *le)
{
	const struct family *f = &families[s->fam];
	int n = 0;

	for (int i = 0; i < MAX_LABELS && f->labels[i]; i++, n++) {
		fprintf(out, "%s%s=\"", n ? "," : "{", f->labels[i]);
		metrics_write_label(out, s->label[i]);
		fputc('"', out);
	}
	if (le)
		fprintf(out, "%sle=\"%s\"", n++ ? "," : "{", le);
	if (n)
		fputc('}', out);
}

int metrics_write(FILE *out)
{
	static struct series copy[MAX_SERIES];
	static pthread_mutex_t copy_lock = PTHREAD_MUTEX_INITIALIZER;
	size_t n;
	uint64_t drop;

	/* Copy under the lock, write without it: a slow client never holds up the workers.
	 * The copy is static (the table is ~150 KiB) and scrapes take turns for it. */
	pthread_mutex_lock(&copy_lock);
	pthread_mutex_lock(&lock);
	n = n_series;
	memcpy(copy, table, n * sizeof(*copy));
	drop = dropped;
	pthread_mutex_unlock(&lock);

	for (int f = 0; f < F_COUNT; f++) {
		const struct family *fam = &families[f];

		fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name,
			fam->kind == COUNTER ? "counter" : "histogram");
		for (size_t i = 0; i < n; i++) {
			const struct series *s = &copy[i];

			if (s->fam != (enum family_id)f)
				continue;
			if (fam->kind == COUNTER) {
				fputs(fam->name, out);
				write_labels(out, s, NULL);
				fprintf(out, " %llu\n", (unsigned long long)s->count);
				continue;
			}
			uint64_t cum = 0;

			for (int b = 0; b < N_BUCKETS; b++) {
				char le[32];

				cum += s->bucket[b];
				snprintf(le, sizeof(le), "%g", buckets[b]);
				fprintf(out, "%s_bucket", fam->name);
				write_labels(out, s, le);
				fprintf(out, " %llu\n", (unsigned long long)cum);
			}
			fprintf(out, "%s_bucket", fam->name);
			write_labels(out, s, "+Inf");
			fprintf(out, " %llu\n%s_sum", (unsigned long long)s->count, fam->name);
			write_labels(out, s, NULL);
			fprintf(out, " %.6f\n%s_count", s->sum, fam->name);
			write_labels(out, s, NULL);
			fprintf(out, " %llu\n", (unsigned long long)s->count);
		}
	}
	fprintf(out, "# HELP amtprov_metrics_dropped_series_total Observations not recorded "
		     "because the series table was full.\n"
		     "# TYPE amtprov_metrics_dropped_series_total counter\n"
		     "amtprov_metrics_dropped_series_total %llu\n", (unsigned long long)drop);
	pthread_mutex_unlock(&copy_lock);
	return ferror(out) ? -1 : 0;
}

void metrics_reset(void)
{
	pthread_mutex_lock(&lock);
	n_series = 0;
	dropped = 0;
	pthread_mutex_unlock(&lock);
}
