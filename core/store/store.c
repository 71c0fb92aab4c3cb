/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store dispatch layer: argument checks, then a call through st->ops.
 *
 * All validation lives here rather than in each back end so that every back end sees the
 * same, already-sane input and refuses bad input with the same message (a field that does
 * not fit is AMTPROV_E_INVALID naming the field, never a silent truncation).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* The first error wins in amtprov_error_set, so checks can simply return it. */
#define WHERE(st) ((st) ? (st)->path : NULL)

static int bad_arg(const struct store *st, struct amtprov_error *err, const char *what)
{
	return amtprov_error_set(err, AMTPROV_E_INVALID, WHERE(st), "%s", what);
}

/* A fixed-size text field of a caller's struct: must be NUL-terminated inside its array,
 * because we never want to read past it or store a silently cut value. */
static int check_field(const struct store *st, const char *name, const char *buf,
		       size_t size, int required, struct amtprov_error *err)
{
	if (!memchr(buf, '\0', size))
		return amtprov_error_set(err, AMTPROV_E_INVALID, WHERE(st),
					 "%s: too long (at most %zu characters)", name,
					 size - 1);
	if (required && buf[0] == '\0')
		return amtprov_error_set(err, AMTPROV_E_INVALID, WHERE(st), "%s: required",
					 name);
	return AMTPROV_OK;
}

/* A string argument that ends up in a column whose struct field has @p size bytes: refuse
 * what could not be read back whole. */
static int check_arg(const struct store *st, const char *name, const char *s, size_t size,
		     int required, struct amtprov_error *err)
{
	if (!s) {
		if (required)
			return amtprov_error_set(err, AMTPROV_E_INVALID, WHERE(st),
						 "%s: required", name);
		return AMTPROV_OK;
	}
	if (strnlen(s, size) >= size)
		return amtprov_error_set(err, AMTPROV_E_INVALID, WHERE(st),
					 "%s: too long (at most %zu characters)", name,
					 size - 1);
	if (required && s[0] == '\0')
		return amtprov_error_set(err, AMTPROV_E_INVALID, WHERE(st), "%s: required",
					 name);
	return AMTPROV_OK;
}

static int is_hex_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* 8-4-4-4-12 hex digits, any case: what store_device_find treats as a UUID. */
static int looks_like_uuid(const char *s)
{
	static const size_t groups[] = { 8, 4, 4, 4, 12 };

	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		if (!is_hex_run(s, groups[g]))
			return 0;
		s += groups[g];
		if (g < 4 && *s++ != '-')
			return 0;
	}
	return *s == '\0';
}

static void lower_in_place(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static void upper_in_place(char *s)
{
	for (; *s; s++)
		*s = (char)toupper((unsigned char)*s);
}

static int check_writable(const struct store *st, struct amtprov_error *err)
{
	if (st->flags & STORE_OPEN_READONLY)
		return amtprov_error_set(err, AMTPROV_E_STATE, st->path,
					 "the site database was opened read-only");
	return AMTPROV_OK;
}

static int valid_cert_status(const char *s)
{
	return !strcmp(s, STORE_CERT_ACTIVE) || !strcmp(s, STORE_CERT_REVOKE_PENDING) ||
	       !strcmp(s, STORE_CERT_REVOKED) || !strcmp(s, STORE_CERT_EXPIRED);
}

/* RFC 5280 CRLReason: 0..10, 7 is not used. */
static int valid_reason(int r)
{
	return r >= 0 && r <= 10 && r != 7;
}

/* Every entry point needs a handle that store_open() completed. */
#define CHECK_ST(st, err)                                                                  \
	do {                                                                                \
		if (!(st) || !(st)->ops)                                                    \
			return bad_arg(NULL, (err), "store: NULL handle");                  \
	} while (0)

int store_open(const char *path, int flags, struct store **out, struct amtprov_error *err)
{
	return store_open_auth(path, NULL, flags, out, err);
}

int store_open_auth(const char *path, const char *password_file, int flags, struct store **out,
		    struct amtprov_error *err)
{
	struct store *st;
	int rc;

	if (out)
		*out = NULL;
	if (!out || !path || !path[0])
		return amtprov_error_set(err, AMTPROV_E_INVALID, path,
					 "store_open: path and out are required");
	if (flags & ~(STORE_OPEN_CREATE | STORE_OPEN_READONLY))
		return amtprov_error_set(err, AMTPROV_E_INVALID, path,
					 "store_open: unknown flags 0x%x", (unsigned)flags);
	if ((flags & STORE_OPEN_CREATE) && (flags & STORE_OPEN_READONLY))
		return amtprov_error_set(err, AMTPROV_E_INVALID, path,
					 "store_open: cannot create a database read-only");
	st = calloc(1, sizeof(*st));
	if (!st)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, path, "out of memory");
	st->path = strdup(path);
	if (password_file && !store_is_pg_url(path)) {
		free(st->path);
		free(st);
		return amtprov_error_set(err, AMTPROV_E_INVALID, "database.password_file",
					 "a password file is for a PostgreSQL database only");
	}
	st->password_file = password_file ? strdup(password_file) : NULL;
	if (!st->path || (password_file && !st->password_file)) {
		free(st->path);
		free(st->password_file);
		free(st);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, path, "out of memory");
	}
	st->flags = flags;
	rc = store_is_pg_url(path) ? store_pg_open(st, flags, err)
				   : store_sqlite_open(st, flags, err);
	if (rc != AMTPROV_OK) {
		free(st->path);
		free(st->password_file);
		free(st);
		return rc;
	}
	*out = st;
	return AMTPROV_OK;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->ops)
		st->ops->close(st);
	free(st->path);
	free(st->password_file);
	free(st);
}

const char *store_path(const struct store *st)
{
	return st ? st->path : NULL;
}

const char *store_password_file(const struct store *st)
{
	return st ? st->password_file : NULL;
}

int store_schema_version(struct store *st)
{
	if (!st || !st->ops)
		return -1;
	return st->ops->schema_version(st);
}

int store_check(struct store *st, struct amtprov_error *err)
{
	CHECK_ST(st, err);
	return st->ops->check(st, err);
}

int store_defer_sync(struct store *st, struct amtprov_error *err)
{
	CHECK_ST(st, err);
	if (!st->ops->defer_sync)
		return AMTPROV_OK;
	return st->ops->defer_sync(st, err);
}

int store_tx_begin(struct store *st, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (st->in_tx)
		return amtprov_error_set(err, AMTPROV_E_STATE, st->path,
					 "a transaction is already open (transactions do not nest)");
	rc = st->ops->tx_begin(st, err);
	if (rc == AMTPROV_OK)
		st->in_tx = 1;
	return rc;
}

int store_tx_commit(struct store *st, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (!st->in_tx)
		return amtprov_error_set(err, AMTPROV_E_STATE, st->path,
					 "no transaction is open");
	rc = st->ops->tx_commit(st, err);
	/* The back end ends the transaction either way (a failed commit is rolled back). */
	st->in_tx = 0;
	return rc;
}

void store_tx_rollback(struct store *st)
{
	if (!st || !st->ops || !st->in_tx)
		return;
	st->ops->tx_rollback(st);
	st->in_tx = 0;
}

/* ---- devices ---- */

static int check_device(struct store *st, const struct store_device *dev,
			struct amtprov_error *err)
{
	int rc;

	if ((rc = check_field(st, "fqdn", dev->fqdn, sizeof(dev->fqdn), 1, err)) ||
	    (rc = check_field(st, "uuid", dev->uuid, sizeof(dev->uuid), 1, err)) ||
	    (rc = check_field(st, "amt_version", dev->amt_version, sizeof(dev->amt_version), 0,
			      err)) ||
	    (rc = check_field(st, "wired_ip", dev->wired_ip, sizeof(dev->wired_ip), 0, err)) ||
	    (rc = check_field(st, "otp_hash", dev->otp_hash, sizeof(dev->otp_hash), 0, err)) ||
	    (rc = check_field(st, "state", dev->state, sizeof(dev->state), 0, err)) ||
	    (rc = check_field(st, "last_error", dev->last_error, sizeof(dev->last_error), 0,
			      err)))
		return rc;
	if (!looks_like_uuid(dev->uuid))
		return amtprov_error_set(err, AMTPROV_E_INVALID, st->path,
					 "uuid: '%s' is not a UUID (8-4-4-4-12 hex digits)",
					 dev->uuid);
	if (dev->otp_hash[0] && !is_hex_run(dev->otp_hash, strlen(dev->otp_hash)))
		return bad_arg(st, err, "otp_hash: must be hex digits");
	return AMTPROV_OK;
}

int store_device_add(struct store *st, struct store_device *dev, const char *actor,
		     int64_t now, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (!dev)
		return bad_arg(st, err, "store_device_add: dev is required");
	if ((rc = check_writable(st, err)) || (rc = check_device(st, dev, err)) ||
	    (rc = check_field(st, "state", dev->state, sizeof(dev->state), 1, err)) ||
	    (rc = check_arg(st, "actor", actor, STORE_SHORT_SIZE, 1, err)))
		return rc;
	if (dev->attempts < 0 || dev->last_error_code < 0)
		return bad_arg(st, err, "attempts and last_error_code must not be negative");
	/* The header promises lower case for both keys; normalise once, here. */
	lower_in_place(dev->fqdn);
	lower_in_place(dev->uuid);
	dev->wireless_capable = !!dev->wireless_capable;
	dev->blocked = !!dev->blocked;
	return st->ops->device_add(st, dev, actor, now, err);
}

int store_device_get(struct store *st, int64_t id, struct store_device *out,
		     struct amtprov_error *err)
{
	CHECK_ST(st, err);
	if (!out)
		return bad_arg(st, err, "store_device_get: out is required");
	return st->ops->device_get(st, id, out, err);
}

int store_device_find(struct store *st, const char *key, struct store_device *out,
		      struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (!out)
		return bad_arg(st, err, "store_device_find: out is required");
	if ((rc = check_arg(st, "key", key, STORE_FQDN_SIZE, 1, err)))
		return rc;
	return st->ops->device_find(st, key, looks_like_uuid(key), out, err);
}

int store_device_list(struct store *st, const char *state, store_device_cb cb, void *ctx,
		      struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (!cb)
		return bad_arg(st, err, "store_device_list: cb is required");
	if ((rc = check_arg(st, "state", state, STORE_STATE_SIZE, 0, err)))
		return rc;
	return st->ops->device_list(st, state, cb, ctx, err);
}

int store_device_list_due(struct store *st, const char *state, int64_t now, store_device_cb cb,
			  void *ctx, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (!cb)
		return bad_arg(st, err, "store_device_list_due: cb is required");
	if ((rc = check_arg(st, "state", state, STORE_STATE_SIZE, 1, err)))
		return rc;
	return st->ops->device_list_due(st, state, now, cb, ctx, err);
}

int store_device_count_by_state(struct store *st,
				int (*cb)(void *ctx, const char *state, int64_t count),
				void *ctx, struct amtprov_error *err)
{
	CHECK_ST(st, err);
	if (!cb)
		return bad_arg(st, err, "store_device_count_by_state: cb is required");
	return st->ops->device_count_by_state(st, cb, ctx, err);
}

int store_device_transition(struct store *st, int64_t id, const char *from, const char *to,
			    int error_code, const char *error_text, int64_t next_attempt_at,
			    const char *actor, int64_t now, struct amtprov_error *err)
{
	return store_device_transition_ex(st, id, from, to, error_code, error_text,
					  next_attempt_at, -1, actor, now, err);
}

int store_device_transition_ex(struct store *st, int64_t id, const char *from, const char *to,
			       int error_code, const char *error_text, int64_t next_attempt_at,
			       int attempts, const char *actor, int64_t now,
			       struct amtprov_error *err)
{
	return store_device_step(st, id, from, to, STORE_STEP_END, error_code, error_text,
				 next_attempt_at, attempts, actor, now, err);
}

int store_device_step(struct store *st, int64_t id, const char *from, const char *to,
		      enum store_step step, int error_code, const char *error_text,
		      int64_t next_attempt_at, int attempts, const char *actor, int64_t now,
		      struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)) ||
	    (rc = check_arg(st, "from", from, STORE_STATE_SIZE, 1, err)) ||
	    (rc = check_arg(st, "to", to, STORE_STATE_SIZE, 1, err)) ||
	    (rc = check_arg(st, "error_text", error_text, STORE_TEXT_SIZE, 0, err)) ||
	    (rc = check_arg(st, "actor", actor, STORE_SHORT_SIZE, 1, err)))
		return rc;
	if (error_code < 0)
		return bad_arg(st, err, "error_code: must be an amtprov_status (>= 0)");
	if (attempts < -1)
		return bad_arg(st, err, "attempts: must be >= 0, or -1 for the default rule");
	if (step < STORE_STEP_END || step > STORE_STEP_UNDO)
		return bad_arg(st, err, "step: not a store_step");
	return st->ops->device_transition(st, id, from, to, step, error_code,
					  error_text ? error_text : "", next_attempt_at, attempts,
					  actor, now, err);
}

int store_device_update(struct store *st, const struct store_device *dev, const char *actor,
			int64_t now, struct amtprov_error *err)
{
	struct store_device copy;
	int rc;

	CHECK_ST(st, err);
	if (!dev)
		return bad_arg(st, err, "store_device_update: dev is required");
	if ((rc = check_writable(st, err)) || (rc = check_device(st, dev, err)) ||
	    (rc = check_arg(st, "actor", actor, STORE_SHORT_SIZE, 1, err)))
		return rc;
	/* dev is const: normalise a copy. */
	copy = *dev;
	lower_in_place(copy.uuid);
	copy.wireless_capable = !!copy.wireless_capable;
	copy.blocked = !!copy.blocked;
	return st->ops->device_update(st, &copy, actor, now, err);
}

int store_device_reregister(struct store *st, int64_t id, const char *from,
			    const struct store_device *dev, const char *actor, int64_t now,
			    struct amtprov_error *err)
{
	struct store_device copy;
	int rc;

	CHECK_ST(st, err);
	if (!dev)
		return bad_arg(st, err, "store_device_reregister: dev is required");
	if ((rc = check_writable(st, err)) || (rc = check_device(st, dev, err)) ||
	    (rc = check_arg(st, "from", from, STORE_STATE_SIZE, 1, err)) ||
	    (rc = check_arg(st, "actor", actor, STORE_SHORT_SIZE, 1, err)))
		return rc;
	copy = *dev;
	lower_in_place(copy.fqdn);
	lower_in_place(copy.uuid);
	copy.wireless_capable = !!copy.wireless_capable;
	return st->ops->device_reregister(st, id, from, &copy, actor, now, err);
}

/* ---- certificates ---- */

int store_cert_add(struct store *st, struct store_cert *cert, int64_t now,
		   struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (!cert)
		return bad_arg(st, err, "store_cert_add: cert is required");
	if ((rc = check_writable(st, err)) ||
	    (rc = check_field(st, "serial_hex", cert->serial_hex, sizeof(cert->serial_hex), 1,
			      err)) ||
	    (rc = check_field(st, "issuer", cert->issuer, sizeof(cert->issuer), 0, err)) ||
	    (rc = check_field(st, "subject", cert->subject, sizeof(cert->subject), 0, err)) ||
	    (rc = check_field(st, "profile", cert->profile, sizeof(cert->profile), 0, err)) ||
	    (rc = check_field(st, "template_name", cert->template_name,
			      sizeof(cert->template_name), 0, err)) ||
	    (rc = check_field(st, "ca_instance", cert->ca_instance, sizeof(cert->ca_instance), 0,
			      err)) ||
	    (rc = check_field(st, "request_id", cert->request_id, sizeof(cert->request_id), 0,
			      err)) ||
	    (rc = check_field(st, "sha256", cert->sha256, sizeof(cert->sha256), 1, err)) ||
	    (rc = check_field(st, "status", cert->status, sizeof(cert->status), 0, err)))
		return rc;
	if (!is_hex_run(cert->serial_hex, strlen(cert->serial_hex)))
		return bad_arg(st, err, "serial_hex: must be hex digits only");
	if (strlen(cert->sha256) != 64 || !is_hex_run(cert->sha256, 64))
		return bad_arg(st, err, "sha256: must be 64 hex digits");
	if (cert->purpose <= 0)
		return bad_arg(st, err, "purpose: must be an amtprov_cert_purpose");
	if (cert->device_id < 0)
		return bad_arg(st, err, "device_id: must be 0 or a device id");
	if (cert->not_after < cert->not_before)
		return bad_arg(st, err, "not_after: earlier than not_before");
	/* A zeroed struct means a fresh, active certificate. */
	if (!cert->status[0])
		snprintf(cert->status, sizeof(cert->status), "%s", STORE_CERT_ACTIVE);
	if (!valid_cert_status(cert->status))
		return amtprov_error_set(err, AMTPROV_E_INVALID, st->path,
					 "status: '%s' is not a certificate status", cert->status);
	if (!strcmp(cert->status, STORE_CERT_REVOKED)) {
		if (!valid_reason(cert->revocation_reason))
			return bad_arg(st, err, "revocation_reason: not an RFC 5280 CRLReason");
		if (!cert->revoked_at)
			cert->revoked_at = now;
	} else {
		/* Not revoked: a reason would be misleading (0 means "unspecified"). */
		cert->revocation_reason = -1;
		cert->revoked_at = 0;
	}
	upper_in_place(cert->serial_hex);
	upper_in_place(cert->sha256);
	return st->ops->cert_add(st, cert, now, err);
}

int store_cert_get(struct store *st, int64_t id, struct store_cert *out,
		   struct amtprov_error *err)
{
	CHECK_ST(st, err);
	if (!out)
		return bad_arg(st, err, "store_cert_get: out is required");
	return st->ops->cert_get(st, id, out, err);
}

int store_cert_list(struct store *st, const struct store_cert_filter *filter,
		    store_cert_cb cb, void *ctx, struct amtprov_error *err)
{
	static const struct store_cert_filter all;
	int rc;

	CHECK_ST(st, err);
	if (!cb)
		return bad_arg(st, err, "store_cert_list: cb is required");
	if (!filter)
		filter = &all;
	if ((rc = check_arg(st, "status", filter->status, STORE_SHORT_SIZE, 0, err)))
		return rc;
	return st->ops->cert_list(st, filter, cb, ctx, err);
}

int store_cert_data_put(struct store *st, int64_t cert_id, const uint8_t *der, size_t der_len,
			const char *chain_pem, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)))
		return rc;
	if (!der || der_len == 0 || der_len > 1024 * 1024)
		return amtprov_error_set(err, AMTPROV_E_INVALID, st->path,
					 "der: a certificate of 1 byte to 1 MiB is required");
	if (chain_pem && strlen(chain_pem) > 4 * 1024 * 1024)
		return amtprov_error_set(err, AMTPROV_E_INVALID, st->path,
					 "chain_pem: larger than 4 MiB");
	return st->ops->cert_data_put(st, cert_id, der, der_len, chain_pem, err);
}

int store_cert_data_get(struct store *st, int64_t cert_id, uint8_t **der, size_t *der_len,
			char **chain_pem, struct amtprov_error *err)
{
	CHECK_ST(st, err);
	if (!der || !der_len)
		return amtprov_error_set(err, AMTPROV_E_INVALID, st->path, "no output buffer");
	*der = NULL;
	*der_len = 0;
	if (chain_pem)
		*chain_pem = NULL;
	return st->ops->cert_data_get(st, cert_id, der, der_len, chain_pem, err);
}

int store_cert_set_status(struct store *st, int64_t id, const char *status, int reason,
			  int64_t now, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)) ||
	    (rc = check_arg(st, "status", status, STORE_SHORT_SIZE, 1, err)))
		return rc;
	if (!valid_cert_status(status))
		return amtprov_error_set(err, AMTPROV_E_INVALID, st->path,
					 "status: '%s' is not a certificate status", status);
	if (!strcmp(status, STORE_CERT_REVOKED) && !valid_reason(reason))
		return amtprov_error_set(err, AMTPROV_E_INVALID, st->path,
					 "reason: %d is not an RFC 5280 CRLReason", reason);
	return st->ops->cert_set_status(st, id, status, reason, now, err);
}

/* ---- status messages ---- */

int store_status_add(struct store *st, struct store_status_msg *msg, int64_t now,
		     struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (!msg)
		return bad_arg(st, err, "store_status_add: msg is required");
	if ((rc = check_writable(st, err)) ||
	    (rc = check_field(st, "device", msg->device, sizeof(msg->device), 0, err)) ||
	    (rc = check_field(st, "text", msg->text, sizeof(msg->text), 1, err)))
		return rc;
	if (msg->severity < STORE_SEV_INFO || msg->severity > STORE_SEV_ERROR)
		return bad_arg(st, err, "severity: must be a store_severity");
	lower_in_place(msg->device);
	return st->ops->status_add(st, msg, now, err);
}

int store_status_list(struct store *st, const struct store_status_filter *filter,
		      store_status_cb cb, void *ctx, struct amtprov_error *err)
{
	struct store_status_filter f = { .min_severity = -1 };
	int rc;

	CHECK_ST(st, err);
	if (!cb)
		return bad_arg(st, err, "store_status_list: cb is required");
	if (filter)
		f = *filter;
	if ((rc = check_arg(st, "device", f.device, STORE_FQDN_SIZE, 0, err)))
		return rc;
	if (f.device && !f.device[0])
		f.device = NULL;
	if (f.limit < 0)
		return bad_arg(st, err, "limit: must not be negative");
	return st->ops->status_list(st, &f, cb, ctx, err);
}

/* ---- audit ---- */

int store_audit_add(struct store *st, const char *actor, int64_t device_id,
		    const char *action, const char *detail, int64_t now,
		    struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)) ||
	    (rc = check_arg(st, "actor", actor, STORE_SHORT_SIZE, 1, err)) ||
	    (rc = check_arg(st, "action", action, STORE_SHORT_SIZE, 1, err)) ||
	    (rc = check_arg(st, "detail", detail, STORE_TEXT_SIZE, 0, err)))
		return rc;
	if (device_id < 0)
		return bad_arg(st, err, "device_id: must be 0 or a device id");
	return st->ops->audit_add(st, actor, device_id, action, detail ? detail : "", now,
				  err);
}

int store_audit_list(struct store *st, int64_t device_id, int limit, store_audit_cb cb,
		     void *ctx, struct amtprov_error *err)
{
	CHECK_ST(st, err);
	if (!cb)
		return bad_arg(st, err, "store_audit_list: cb is required");
	if (limit < 0)
		return bad_arg(st, err, "limit: must not be negative");
	return st->ops->audit_list(st, device_id, limit, cb, ctx, err);
}

/* ---- pending operations ---- */

int store_pending_add(struct store *st, struct store_pending *op, int64_t now,
		      struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (!op)
		return bad_arg(st, err, "store_pending_add: op is required");
	if ((rc = check_writable(st, err)) ||
	    (rc = check_field(st, "kind", op->kind, sizeof(op->kind), 1, err)) ||
	    (rc = check_field(st, "payload", op->payload, sizeof(op->payload), 0, err)) ||
	    (rc = check_field(st, "last_error", op->last_error, sizeof(op->last_error), 0, err)))
		return rc;
	if (op->device_id < 0 || op->attempts < 0)
		return bad_arg(st, err, "device_id and attempts must not be negative");
	return st->ops->pending_add(st, op, now, err);
}

int store_pending_due(struct store *st, const char *kind, int64_t now, store_pending_cb cb,
		      void *ctx, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (!cb)
		return bad_arg(st, err, "store_pending_due: cb is required");
	if ((rc = check_arg(st, "kind", kind, STORE_SHORT_SIZE, 0, err)))
		return rc;
	return st->ops->pending_due(st, kind && kind[0] ? kind : NULL, now, cb, ctx, err);
}

int store_pending_list(struct store *st, int64_t device_id, store_pending_cb cb, void *ctx,
		       struct amtprov_error *err)
{
	CHECK_ST(st, err);
	if (!cb)
		return bad_arg(st, err, "store_pending_list: cb is required");
	return st->ops->pending_list(st, device_id, cb, ctx, err);
}

int store_pending_defer(struct store *st, int64_t id, int64_t next_attempt_at,
			struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)))
		return rc;
	return st->ops->pending_defer(st, id, next_attempt_at, err);
}

int store_pending_retry(struct store *st, int64_t id, const char *last_error,
			int64_t next_attempt_at, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)) ||
	    (rc = check_arg(st, "last_error", last_error, STORE_TEXT_SIZE, 0, err)))
		return rc;
	return st->ops->pending_retry(st, id, last_error ? last_error : "", next_attempt_at,
				      err);
}

int store_pending_done(struct store *st, int64_t id, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)))
		return rc;
	return st->ops->pending_done(st, id, err);
}

/* ---- maintenance tasks ---- */

int store_task_get(struct store *st, const char *name, struct store_task *out,
		   struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (!out)
		return bad_arg(st, err, "store_task_get: out is required");
	if ((rc = check_arg(st, "name", name, STORE_SHORT_SIZE, 1, err)))
		return rc;
	return st->ops->task_get(st, name, out, err);
}

int store_task_put(struct store *st, const struct store_task *task, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if (!task)
		return bad_arg(st, err, "store_task_put: task is required");
	if ((rc = check_writable(st, err)) ||
	    (rc = check_field(st, "name", task->name, sizeof(task->name), 1, err)) ||
	    (rc = check_field(st, "last_detail", task->last_detail, sizeof(task->last_detail), 0,
			      err)))
		return rc;
	if (task->last_result < 0)
		return bad_arg(st, err, "last_result: must be an amtprov_status (>= 0)");
	if (task->interval_seconds < 0 || task->served < 0)
		return bad_arg(st, err, "interval_seconds, served: must be >= 0");
	return st->ops->task_put(st, task, err);
}

int store_task_request(struct store *st, const char *name, int64_t *request,
		       struct amtprov_error *err)
{
	int64_t ignored;
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)) ||
	    (rc = check_arg(st, "name", name, STORE_SHORT_SIZE, 1, err)))
		return rc;
	return st->ops->task_request(st, name, request ? request : &ignored, err);
}

int store_task_list(struct store *st, store_task_cb cb, void *ctx, struct amtprov_error *err)
{
	CHECK_ST(st, err);
	if (!cb)
		return bad_arg(st, err, "store_task_list: cb is required");
	return st->ops->task_list(st, cb, ctx, err);
}

int store_device_delete(struct store *st, int64_t id, const char *from, const char *actor,
			const char *detail, int64_t now, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)) ||
	    (rc = check_arg(st, "from", from, STORE_STATE_SIZE, 1, err)) ||
	    (rc = check_arg(st, "actor", actor, STORE_SHORT_SIZE, 1, err)) ||
	    (rc = check_arg(st, "detail", detail, STORE_TEXT_SIZE, 0, err)))
		return rc;
	if (strcmp(from, STORE_DEVICE_DELETED) == 0)
		return amtprov_error_set(err, AMTPROV_E_STATE, st->path,
					 "device %lld is deleted already", (long long)id);
	return st->ops->device_delete(st, id, from, actor, detail ? detail : "", now, err);
}

int store_task_claim(struct store *st, const char *name, const char *owner, int64_t now,
		     int64_t until, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)) ||
	    (rc = check_arg(st, "name", name, STORE_SHORT_SIZE, 1, err)) ||
	    (rc = check_arg(st, "owner", owner, STORE_SHORT_SIZE, 1, err)))
		return rc;
	if (until <= now)
		return bad_arg(st, err, "until: must be later than now");
	return st->ops->task_claim(st, name, owner, now, until, err);
}

int store_task_release(struct store *st, const char *name, const char *owner,
		       struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)) ||
	    (rc = check_arg(st, "name", name, STORE_SHORT_SIZE, 1, err)) ||
	    (rc = check_arg(st, "owner", owner, STORE_SHORT_SIZE, 1, err)))
		return rc;
	return st->ops->task_release(st, name, owner, err);
}

/* ---- device leases ---- */

int store_lease_count(struct store *st, int64_t now,
		      int (*cb)(void *ctx, const char *owner, int64_t live, int64_t expired),
		      void *ctx, struct amtprov_error *err)
{
	CHECK_ST(st, err);
	if (!cb)
		return bad_arg(st, err, "store_lease_count: cb is required");
	return st->ops->lease_count(st, now, cb, ctx, err);
}

int store_device_claim(struct store *st, int64_t id, const char *owner, int64_t now,
		       int64_t until, struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)) ||
	    (rc = check_arg(st, "owner", owner, STORE_SHORT_SIZE, 1, err)))
		return rc;
	if (until <= now)
		return bad_arg(st, err, "until: must be later than now");
	return st->ops->device_claim(st, id, owner, now, until, err);
}

int store_device_release(struct store *st, int64_t id, const char *owner,
			 struct amtprov_error *err)
{
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)) ||
	    (rc = check_arg(st, "owner", owner, STORE_SHORT_SIZE, 1, err)))
		return rc;
	return st->ops->device_release(st, id, owner, err);
}

int store_lease_renew(struct store *st, const char *owner, int64_t until, int64_t *n,
		      struct amtprov_error *err)
{
	int64_t ignored;
	int rc;

	CHECK_ST(st, err);
	if ((rc = check_writable(st, err)) ||
	    (rc = check_arg(st, "owner", owner, STORE_SHORT_SIZE, 1, err)))
		return rc;
	return st->ops->lease_renew(st, owner, until, n ? n : &ignored, err);
}
