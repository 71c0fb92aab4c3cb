/* SPDX-License-Identifier: Apache-2.0 */
/* The revocation queue: see revoke.h and docs/lifecycle.md. */
#include "revoke.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine.h"
#include "status.h"
#include "util.h"

#define BATCH_MAX 256
#define RETRY_BASE_SECONDS 60
#define RETRY_MAX_SECONDS 3600
/* How long a collected revocation stays hidden from other batches while its CA call runs;
 * the result replaces it. After a crash the revocation is due again when it runs out. */
#define LEASE_SECONDS 600

int revoke_queue(struct site *s, const struct store_cert *cert, int reason, const char *why,
		 int *queued, struct amtprov_error *err)
{
	struct store *st = site_store(s);
	int64_t now = site_now(s);
	struct store_pending op;
	char detail[STORE_TEXT_SIZE];
	int rc;

	if (queued)
		*queued = 0;
	if (strcmp(cert->status, STORE_CERT_ACTIVE) != 0)
		return AMTPROV_OK; /* revoked, queued or expired already */
	memset(&op, 0, sizeof(op));
	op.device_id = cert->device_id;
	util_strlcpy(op.kind, REVOKE_KIND, sizeof(op.kind));
	snprintf(op.payload, sizeof(op.payload), "{\"cert_id\":%lld,\"reason\":%d,\"ca\":\"%s\"}",
		 (long long)cert->id, reason, cert->ca_instance);
	snprintf(detail, sizeof(detail), "serial %.64s queued for revocation (reason %d): %.300s",
		 cert->serial_hex, reason, why ? why : "");
	/* Status, operation and audit together: a crash leaves all or none. */
	rc = store_tx_begin(st, err);
	if (rc == AMTPROV_OK)
		rc = store_cert_set_status(st, cert->id, STORE_CERT_REVOKE_PENDING, -1, now, err);
	if (rc == AMTPROV_OK)
		rc = store_pending_add(st, &op, now, err);
	if (rc == AMTPROV_OK)
		rc = store_audit_add(st, "amtprov", cert->device_id, "cert.revoke-queued", detail, now,
				     err);
	if (rc == AMTPROV_OK)
		rc = store_tx_commit(st, err);
	else
		store_tx_rollback(st);
	if (rc == AMTPROV_OK && queued)
		*queued = 1;
	return rc;
}

struct collect {
	unsigned purposes;
	const int64_t *keep;
	size_t n_keep;
	struct store_cert *certs;
	size_t n;
};

static int kept(const struct collect *k, int64_t id)
{
	for (size_t i = 0; i < k->n_keep; i++)
		if (k->keep[i] == id)
			return 1;
	return 0;
}

static int collect_active(void *ctx, const struct store_cert *c)
{
	struct collect *k = ctx;

	if (!kept(k, c->id) && (k->purposes & (1u << c->purpose)) &&
	    strcmp(c->status, STORE_CERT_ACTIVE) == 0 && k->n < BATCH_MAX)
		k->certs[k->n++] = *c;
	return 0;
}

int revoke_queue_device(struct site *s, int64_t device_id, unsigned purposes, int64_t keep_id,
			const char *why, int *count, struct amtprov_error *err)
{
	return revoke_queue_device_except(s, device_id, purposes, &keep_id, keep_id ? 1 : 0, why,
					  count, err);
}

int revoke_queue_device_except(struct site *s, int64_t device_id, unsigned purposes,
			       const int64_t *keep, size_t n_keep, const char *why, int *count,
			       struct amtprov_error *err)
{
	struct store_cert_filter f = {.device_id = device_id};
	struct collect k = {.purposes = purposes, .keep = keep, .n_keep = n_keep};
	int rc, n = 0;

	if (count)
		*count = 0;
	if (device_id <= 0)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no device");
	k.certs = calloc(BATCH_MAX, sizeof(*k.certs));
	if (!k.certs)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	rc = store_cert_list(site_store(s), &f, collect_active, &k, err);
	for (size_t i = 0; rc == AMTPROV_OK && i < k.n; i++) {
		int q = 0;

		rc = revoke_queue(s, &k.certs[i], AMTPROV_REVOKE_SUPERSEDED, why, &q, err);
		n += q;
	}
	free(k.certs);
	if (count)
		*count = n;
	return rc;
}

struct revoke_item {
	struct store_pending op;
	struct store_cert cert;
	int cert_ok;               /* the certificate row was found */
	int reason;
	struct plugin_instance *ca;
	char fqdn[STORE_FQDN_SIZE];
	struct amtprov_ca_result res;
	struct amtprov_error err;
	int rc;
};

struct revoke_batch {
	struct revoke_item *items;
	size_t n;
	int64_t device_id;
};

static int collect_due(void *ctx, const struct store_pending *op)
{
	struct revoke_batch *b = ctx;

	if (b->n >= BATCH_MAX)
		return 1;
	if (b->device_id && op->device_id != b->device_id)
		return 0;
	b->items[b->n++].op = *op;
	return 0;
}

struct revoke_batch *revoke_batch_due(struct site *s, int64_t device_id)
{
	struct revoke_batch *b = calloc(1, sizeof(*b));
	struct store *st = site_store(s);
	struct amtprov_error err;

	if (!b)
		return NULL;
	b->items = calloc(BATCH_MAX, sizeof(*b->items));
	b->device_id = device_id;
	amtprov_error_clear(&err);
	if (!b->items || store_pending_due(st, REVOKE_KIND, site_now(s), collect_due, b, &err) ||
	    !b->n) {
		revoke_batch_free(b);
		return NULL;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct revoke_item *it = &b->items[i];
		json_t *p = json_loads(it->op.payload, 0, NULL);

		/* Leased, so the maintenance task and a device's own step never both ask the CA. */
		amtprov_error_clear(&err);
		if (store_pending_defer(st, it->op.id, site_now(s) + LEASE_SECONDS, &err))
			alog(site_log(s), AMTPROV_LOG_WARNING, "revocation %lld: %s",
			     (long long)it->op.id, err.msg);
		json_int_t id = json_integer_value(json_object_get(p, "cert_id"));
		json_t *r = json_object_get(p, "reason");
		struct store_device dev;

		it->reason = json_is_integer(r) ? (int)json_integer_value(r) : AMTPROV_REVOKE_SUPERSEDED;
		json_decref(p);
		amtprov_error_clear(&err);
		it->cert_ok = id > 0 && store_cert_get(st, (int64_t)id, &it->cert, &err) == AMTPROV_OK;
		if (it->cert_ok)
			it->ca = plugin_host_find(site_plugins(s), it->cert.ca_instance);
		if (it->op.device_id && store_device_get(st, it->op.device_id, &dev, &err) == AMTPROV_OK)
			util_strlcpy(it->fqdn, dev.fqdn, sizeof(it->fqdn));
	}
	return b;
}

void revoke_batch_release(struct site *s, struct revoke_batch *b)
{
	struct amtprov_error err;

	for (size_t i = 0; b && i < b->n; i++) {
		amtprov_error_clear(&err);
		if (store_pending_defer(site_store(s), b->items[i].op.id, b->items[i].op.next_attempt_at,
					&err))
			alog(site_log(s), AMTPROV_LOG_WARNING, "revocation %lld: %s",
			     (long long)b->items[i].op.id, err.msg);
	}
	revoke_batch_free(b);
}

void revoke_batch_call(struct revoke_batch *b)
{
	for (size_t i = 0; b && i < b->n; i++) {
		struct revoke_item *it = &b->items[i];
		struct amtprov_ca_revocation rev = {
			.struct_size = sizeof(rev),
			.serial_hex = it->cert.serial_hex,
			.issuer = it->cert.issuer,
			.reason = (uint32_t)it->reason,
		};

		amtprov_error_clear(&it->err);
		if (!it->cert_ok || !strcmp(it->cert.status, STORE_CERT_REVOKED))
			continue; /* nothing to ask: recorded as done */
		if (!it->ca) {
			it->res.outcome = AMTPROV_CA_UNCONFIGURED;
			snprintf(it->res.message, sizeof(it->res.message),
				 "CA instance '%s' is not loaded", it->cert.ca_instance);
			continue;
		}
		it->rc = pi_ca_revoke(it->ca, it->fqdn[0] ? it->fqdn : NULL, &rev, &it->res,
				      &it->err);
	}
}

static int64_t backoff(int attempts)
{
	int64_t d = RETRY_BASE_SECONDS;

	for (int i = 0; i < attempts && d < RETRY_MAX_SECONDS; i++)
		d *= 2;
	return d < RETRY_MAX_SECONDS ? d : RETRY_MAX_SECONDS;
}

void revoke_batch_record(struct site *s, struct revoke_batch *b, int *done, int *left)
{
	struct store *st = site_store(s);
	int64_t now = site_now(s);
	int nd = 0, nl = 0;

	for (size_t i = 0; b && i < b->n; i++) {
		struct revoke_item *it = &b->items[i];
		struct amtprov_error e;
		char detail[STORE_TEXT_SIZE];

		amtprov_error_clear(&e);
		if (!it->cert_ok) {
			/* The row is gone from under us (cannot happen: rows are never deleted);
			 * keep the operation rather than guess. */
			store_pending_retry(st, it->op.id, "certificate record not found",
					    now + RETRY_MAX_SECONDS, &e);
			nl++;
			continue;
		}
		if (!strcmp(it->cert.status, STORE_CERT_REVOKED) ||
		    (it->rc == AMTPROV_OK && it->res.outcome == AMTPROV_CA_ISSUED)) {
			int rc = AMTPROV_OK;

			if (strcmp(it->cert.status, STORE_CERT_REVOKED))
				rc = store_cert_set_status(st, it->cert.id, STORE_CERT_REVOKED,
							   it->reason, now, &e);
			if (rc == AMTPROV_OK)
				rc = store_pending_done(st, it->op.id, &e);
			snprintf(detail, sizeof(detail), "serial %.64s revoked by %.60s (reason %d)",
				 it->cert.serial_hex, it->cert.ca_instance, it->reason);
			if (rc == AMTPROV_OK) {
				site_status(s, STATUS_CERT_REVOKED, it->fqdn, detail);
				nd++;
			} else {
				nl++;
			}
		} else {
			const char *why = it->rc != AMTPROV_OK && it->err.msg[0] ? it->err.msg
					  : it->res.message[0] ? it->res.message
							       : amtprov_ca_outcome_name(it->res.outcome);

			snprintf(detail, sizeof(detail), "serial %.64s: %.300s (attempt %d; retried)",
				 it->cert.serial_hex, why, it->op.attempts + 1);
			store_pending_retry(st, it->op.id, why, now + backoff(it->op.attempts), &e);
			/* Once per revocation, not once per retry: the queue is visible in
			 * 'amtprov cert list --status revoke-pending'. */
			if (it->op.attempts == 0)
				site_status(s, STATUS_REVOCATION_QUEUED, it->fqdn, detail);
			nl++;
		}
	}
	if (done)
		*done = nd;
	if (left)
		*left = nl;
}

void revoke_batch_free(struct revoke_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; b->items && i < b->n; i++)
		pi_ca_result_release(&b->items[i].res);
	free(b->items);
	free(b);
}

int revoke_process_due(struct site *s, int *done, int *left, struct amtprov_error *err)
{
	struct revoke_batch *b = revoke_batch_due(s, 0);

	(void)err;
	if (done)
		*done = 0;
	if (left)
		*left = 0;
	if (!b)
		return AMTPROV_OK;
	revoke_batch_call(b);
	revoke_batch_record(s, b, done, left);
	revoke_batch_free(b);
	return AMTPROV_OK;
}

static int revoke_job_work(void *arg, struct amtprov_error *err)
{
	(void)err;
	revoke_batch_call(((struct revoke_job *)arg)->batch);
	return AMTPROV_OK;
}

static void revoke_job_answered(struct engine_job *job, int rc, const struct amtprov_error *err,
				void *arg)
{
	struct revoke_job *rj = arg;

	(void)job;
	(void)rc;
	(void)err;
	/* Revoked (8203), or kept queued for the revocation task (8204): never forgotten. */
	revoke_batch_record(rj->site, rj->batch, NULL, NULL);
	rj->done(rj->owner);
}

int revoke_job_start(struct revoke_job *rj, struct engine_job *job, struct amtprov_error *err)
{
	return engine_job_blocking(job, revoke_job_work, revoke_job_answered, rj, err);
}
