/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gauges read from the site database at scrape time (api_metrics.h), then the process's
 * counters (core/metrics.c). A gauge is what the database says, so two hosts on one site
 * report the same devices; counters are each process's own work.
 */
#include "api_metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ca_contract.h"
#include "device_state.h"
#include "metrics.h"
#include "plugin_host.h"
#include "store.h"
#include "util.h"

/* Days-to-expiry groups of active certificates: each certificate is in exactly one. R-PC-06
 * warns at 40 days; renewal (R-WS-03) looks ahead by the manifest's window. */
static const struct {
	const char *label;
	int64_t max_days; /* not_after - now <= max_days days (expired: < 0); the last catches the rest */
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
		int64_t left = c->not_after - t->now, max = expiry[i].max_days * 86400;

		/* A certificate is valid through its notAfter second (expired: strictly past it),
		 * and one that ends exactly N days from now is within N days: a one-year
		 * certificate scraped in the second it was issued is in "365", not "later". */
		if (expiry[i].max_days < 0 || (max == 0 ? left < 0 : left <= max)) {
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

/* Device leases by host, read into memory first: the family's header goes before them. */
struct leases {
	struct {
		char owner[STORE_SHORT_SIZE];
		int64_t live, expired;
	} h[64];
	size_t n;
};

static int collect_lease(void *ctx, const char *owner, int64_t live, int64_t expired)
{
	struct leases *l = ctx;

	if (l->n == sizeof(l->h) / sizeof(l->h[0]))
		return 1;
	util_strlcpy(l->h[l->n].owner, owner, sizeof(l->h[l->n].owner));
	l->h[l->n].live = live;
	l->h[l->n++].expired = expired;
	return 0;
}

static void write_leases(FILE *out, const struct leases *l, const struct tasks *ts, int64_t now)
{
	header(out, "amtprov_device_leases", "gauge",
	       "Device leases by host id: live (the host is working on the device) or expired (the "
	       "host stopped renewing, e.g. it died; another host takes the device over).");
	for (size_t i = 0; i < l->n; i++) {
		for (int e = 0; e < 2; e++) {
			fputs("amtprov_device_leases{host=\"", out);
			metrics_write_label(out, l->h[i].owner);
			fprintf(out, "\",lease=\"%s\"} %lld\n", e ? "expired" : "live",
				(long long)(e ? l->h[i].expired : l->h[i].live));
		}
	}
	header(out, "amtprov_task_leases", "gauge",
	       "Maintenance task runs held by each host id right now (task leases, live).");
	for (size_t i = 0; i < ts->n; i++) {
		size_t first = i;

		if (!ts->t[i].lease_owner[0] || ts->t[i].lease_until < now)
			continue;
		/* One line per host: count its live task leases once, at its first. */
		for (size_t j = 0; j < i; j++)
			if (ts->t[j].lease_until >= now &&
			    strcmp(ts->t[j].lease_owner, ts->t[i].lease_owner) == 0)
				first = j;
		if (first != i)
			continue;
		{
			int64_t n = 0;

			for (size_t j = i; j < ts->n; j++)
				n += ts->t[j].lease_until >= now &&
				     strcmp(ts->t[j].lease_owner, ts->t[i].lease_owner) == 0;
			fputs("amtprov_task_leases{host=\"", out);
			metrics_write_label(out, ts->t[i].lease_owner);
			fprintf(out, "\"} %lld\n", (long long)n);
		}
	}
}

int api_metrics_write(struct site *site, int64_t now, FILE *out, struct amtprov_error *err)
{
	struct store *st = site_store(site);
	struct tally t = {.now = now, .out = out};
	struct pending_tally pt = {.n = 0};
	struct tasks ts = {.n = 0};
	struct leases ls = {.n = 0};
	struct store_cert_filter all = {0};
	int rc;

	rc = store_device_count_by_state(st, count_state, &t, err);
	if (rc == AMTPROV_OK)
		rc = store_cert_list(st, &all, count_cert, &t, err);
	if (rc == AMTPROV_OK)
		rc = store_pending_list(st, 0, count_pending, &pt, err);
	if (rc == AMTPROV_OK)
		rc = store_task_list(st, collect_task, &ts, err);
	if (rc == AMTPROV_OK)
		rc = store_lease_count(st, now, collect_lease, &ls, err);
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
	write_leases(out, &ls, &ts, now);

	if (metrics_write(out) != 0)
		return amtprov_error_set(err, AMTPROV_E_IO, NULL, "cannot write the metrics");
	return AMTPROV_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* The reply, and the metrics listener                                                      */
/* ---------------------------------------------------------------------------------------- */

static void reply_text(struct evhttp_request *req, int code, const char *reason,
		       const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; charset=utf-8");
	if (b)
		evbuffer_add_printf(b, "%s\n", text);
	evhttp_send_reply(req, code, reason, b);
	if (b)
		evbuffer_free(b);
}

void api_metrics_reply(struct site *site, struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct amtprov_error err;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct evbuffer *out;
	int rc;

	if (!f) {
		reply_text(req, 500, "Internal Server Error", "out of memory");
		return;
	}
	amtprov_error_clear(&err);
	rc = api_metrics_write(site, util_now(), f, &err);
	if (fclose(f) != 0 && rc == AMTPROV_OK)
		rc = amtprov_error_set(&err, AMTPROV_E_NOMEM, NULL, "out of memory");
	out = evbuffer_new();
	if (rc != AMTPROV_OK || !out) {
		alog(site_log(site), AMTPROV_LOG_ERROR, "metrics: %s",
		     out ? err.msg : "out of memory");
		reply_text(req, 500, "Internal Server Error", "the metrics could not be read");
	} else {
		evhttp_add_header(h, "Content-Type", API_METRICS_CONTENT_TYPE);
		evhttp_add_header(h, "Cache-Control", "no-store");
		evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
		evbuffer_add(out, text, len);
		evhttp_send_reply(req, 200, "OK", out);
	}
	if (out)
		evbuffer_free(out);
	free(text);
}

#define ML_HASH_LEN 32 /* SHA-256 of each token: compared in constant time, never kept */
#define ML_MAX_HEADERS 8192
#define ML_TIMEOUT_SECONDS 10

struct metrics_listener {
	struct site *site;
	struct evhttp *http;
	unsigned char (*token_hash)[ML_HASH_LEN];
	size_t n_tokens;
	int port;
	struct alog_limit log_refusals; /* refusals a client could repeat at will */
};

/* 1 when the request carries one of the listener's tokens (or none is asked for). */
static int ml_authorized(struct metrics_listener *ml, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
					   "Authorization");
	unsigned char md[ML_HASH_LEN];
	unsigned int mdlen = 0;
	int ok = 0;

	if (ml->n_tokens == 0)
		return 1;
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	while (*h == ' ')
		h++;
	if (!*h || EVP_Digest(h, strlen(h), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != ML_HASH_LEN)
		return 0;
	for (size_t i = 0; i < ml->n_tokens; i++)
		ok |= CRYPTO_memcmp(md, ml->token_hash[i], ML_HASH_LEN) == 0;
	OPENSSL_cleanse(md, sizeof(md));
	return ok;
}

static void ml_request(struct evhttp_request *req, void *arg)
{
	struct metrics_listener *ml = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	unsigned long held = 0;

	if (!path || strcmp(path, "/metrics") != 0) {
		reply_text(req, 404, "Not Found", "only /metrics is served here");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
		reply_text(req, 405, "Method Not Allowed", "only GET");
		return;
	}
	if (!ml_authorized(ml, req)) {
		/* The token is never logged, right or wrong. */
		if (alog_limit_allow(&ml->log_refusals, &held))
			alog(site_log(ml->site), AMTPROV_LOG_WARNING,
			     "metrics listener: GET /metrics refused: no valid bearer token (%lu "
			     "such lines suppressed)", held);
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
				  "Bearer realm=\"amtprov-metrics\"");
		reply_text(req, 401, "Unauthorized", "a valid bearer token is required");
		return;
	}
	api_metrics_reply(ml->site, req);
}

static int ml_load_tokens(struct metrics_listener *ml, const struct manifest *m,
			  struct amtprov_error *err)
{
	const struct manifest_monitoring *mo = &m->monitoring;
	struct plugin_instance *cs =
		m->credstore ? plugin_host_find(site_plugins(ml->site), m->credstore) : NULL;

	if (!mo->n_metrics_tokens)
		return AMTPROV_OK;
	if (!cs)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/monitoring/metrics_tokens",
					 "the tokens need the credential store (credentials.store)");
	ml->token_hash = calloc(mo->n_metrics_tokens, sizeof(*ml->token_hash));
	if (!ml->token_hash)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	for (size_t i = 0; i < mo->n_metrics_tokens; i++) {
		struct amtprov_secret *s = NULL;
		unsigned int mdlen = 0;
		int rc = pi_credstore_get(cs, mo->metrics_tokens[i], &s, err);

		if (rc != AMTPROV_OK) {
			char why[AMTPROV_ERROR_MSG_SIZE];

			util_strlcpy(why, err->msg, sizeof(why));
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/monitoring/metrics_tokens",
						 "cannot read metrics token '%s': %s",
						 mo->metrics_tokens[i], why);
		}
		/* Short tokens can be guessed over the network. */
		rc = s->len < 16 ? -1
				 : EVP_Digest(s->data, s->len, ml->token_hash[i], &mdlen,
					      EVP_sha256(), NULL) == 1 && mdlen == ML_HASH_LEN ? 0 : -2;
		util_secret_free(s);
		if (rc == -1)
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/monitoring/metrics_tokens",
						 "credential '%s' holds a token shorter than 16 bytes",
						 mo->metrics_tokens[i]);
		if (rc)
			return amtprov_error_set(err, AMTPROV_E_CRYPTO, NULL, "cannot hash a token");
		ml->n_tokens++;
	}
	return AMTPROV_OK;
}

int metrics_listener_start(struct site *site, struct event_base *base,
			   struct metrics_listener **out, struct amtprov_error *err)
{
	const struct manifest *m = site_manifest(site);
	const struct manifest_monitoring *mo = &m->monitoring;
	struct metrics_listener *ml;
	struct evhttp_bound_socket *sock;
	struct sockaddr_storage ss;
	ev_socklen_t sl = sizeof(ss);
	int rc;

	*out = NULL;
	if (!mo->metrics_host)
		return AMTPROV_OK;
	ml = calloc(1, sizeof(*ml));
	if (!ml)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	ml->site = site;
	ml->port = mo->metrics_port;
	ml->log_refusals = (struct alog_limit){.burst = 2, .period = 10};
	rc = ml_load_tokens(ml, m, err);
	if (rc == AMTPROV_OK && !(ml->http = evhttp_new(base)))
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "cannot create the HTTP server");
	if (rc != AMTPROV_OK) {
		metrics_listener_free(ml);
		return rc;
	}
	evhttp_set_gencb(ml->http, ml_request, ml);
	evhttp_set_max_body_size(ml->http, 0);
	evhttp_set_max_headers_size(ml->http, ML_MAX_HEADERS);
	evhttp_set_timeout(ml->http, ML_TIMEOUT_SECONDS);
	evhttp_set_allowed_methods(ml->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	sock = evhttp_bind_socket_with_handle(ml->http, mo->metrics_host,
					      (ev_uint16_t)mo->metrics_port);
	if (!sock) {
		metrics_listener_free(ml);
		return amtprov_error_set(err, AMTPROV_E_IO, "/monitoring/metrics_listen",
					 "cannot listen on %s port %d", mo->metrics_host,
					 mo->metrics_port);
	}
	if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) == 0)
		ml->port = ntohs(ss.ss_family == AF_INET6
					 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					 : ((struct sockaddr_in *)&ss)->sin_port);
	alog(site_log(site), AMTPROV_LOG_NOTICE,
	     "metrics listener: GET /metrics on http://%s%s%s:%d (%s)",
	     strchr(mo->metrics_host, ':') ? "[" : "", mo->metrics_host,
	     strchr(mo->metrics_host, ':') ? "]" : "", ml->port,
	     ml->n_tokens ? "bearer token required" : "unauthenticated, loopback");
	*out = ml;
	return AMTPROV_OK;
}

int metrics_listener_port(const struct metrics_listener *ml)
{
	return ml ? ml->port : 0;
}

void metrics_listener_free(struct metrics_listener *ml)
{
	if (!ml)
		return;
	if (ml->http)
		evhttp_free(ml->http);
	if (ml->token_hash)
		OPENSSL_cleanse(ml->token_hash, ml->n_tokens * sizeof(*ml->token_hash));
	free(ml->token_hash);
	free(ml);
}
