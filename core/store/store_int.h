/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file store_int.h
 * @brief Private contract between the store dispatch layer (store.c) and its back ends.
 *
 * store.c owns `struct store`, checks every argument (NULL pointers, text fields that do
 * not fit, malformed UUIDs and thumbprints, writes on a read-only handle, transaction
 * nesting) and only then calls the back end through `struct store_ops`. A back end may
 * therefore assume:
 *  - every pointer it is given is non-NULL unless the public header says it may be NULL;
 *  - every text field is NUL-terminated within its array and non-empty where required;
 *  - mutating slots are never called on a handle opened with STORE_OPEN_READONLY;
 *  - `st->in_tx` is 1 exactly while an explicit store_tx_begin() transaction is open
 *    (store.c sets and clears it; the back end must not).
 *
 * Each slot has the signature of the public function of the same name (see store.h).
 * Rules every back end must keep:
 *  - a mutating slot is atomic: with no explicit transaction it runs in its own one; inside
 *    an explicit transaction it must not begin another (SQLite uses a savepoint), and on
 *    failure it leaves nothing of its own work behind;
 *  - tx_commit ends the transaction whether it succeeds or not (a failed commit is rolled
 *    back), so store.c can clear in_tx unconditionally;
 *  - list slots must not hold a read cursor open while calling the user's callback, so a
 *    callback may call any other store function on the same handle.
 *
 * Adding a back end: write `int store_<name>_open(struct store *st, int flags, struct
 * amtprov_error *err)` that fills st->ops and st->be, and teach store_open() which
 * paths/URIs select it (store_pg.c is the second example). See docs/database.md.
 */
#ifndef AMTPROV_CORE_STORE_INT_H
#define AMTPROV_CORE_STORE_INT_H

#include "store.h"

struct store_ops {
	const char *name; /**< "sqlite", "postgresql" */

	/** Frees st->be and everything the back end holds; must not free st itself. */
	void (*close)(struct store *st);
	/** Optional (NULL: durable commits are durable when they return, as on a server):
	 * store_defer_sync(). */
	int (*defer_sync)(struct store *st, struct amtprov_error *err);
	int (*schema_version)(struct store *st);
	int (*check)(struct store *st, struct amtprov_error *err);

	int (*tx_begin)(struct store *st, struct amtprov_error *err);
	int (*tx_commit)(struct store *st, struct amtprov_error *err);
	void (*tx_rollback)(struct store *st);

	int (*device_add)(struct store *st, struct store_device *dev, const char *actor,
			  int64_t now, struct amtprov_error *err);
	int (*device_get)(struct store *st, int64_t id, struct store_device *out,
			  struct amtprov_error *err);
	/** @p by_uuid: 1 if store.c recognised @p key as a UUID. */
	int (*device_find)(struct store *st, const char *key, int by_uuid,
			   struct store_device *out, struct amtprov_error *err);
	int (*device_list)(struct store *st, const char *state, store_device_cb cb, void *ctx,
			   struct amtprov_error *err);
	int (*device_list_due)(struct store *st, const char *state, int64_t now,
			       store_device_cb cb, void *ctx, struct amtprov_error *err);
	int (*device_count_by_state)(struct store *st,
				     int (*cb)(void *ctx, const char *state, int64_t count),
				     void *ctx, struct amtprov_error *err);
	/** @p error_text is never NULL here (store.c passes "" instead); @p attempts is the
	 * value to store, or -1 for the rule (reset on a change, +1 when from == to); @p step
	 * what happens to in_flight (enum store_step). */
	int (*device_transition)(struct store *st, int64_t id, const char *from, const char *to,
				 enum store_step step, int error_code, const char *error_text, int64_t next_attempt_at,
				 int attempts, const char *actor, int64_t now,
				 struct amtprov_error *err);
	int (*device_update)(struct store *st, const struct store_device *dev,
			     const char *actor, int64_t now, struct amtprov_error *err);
	/** @p dev's fqdn and uuid are lower case here. */
	int (*device_reregister)(struct store *st, int64_t id, const char *from,
				 const struct store_device *dev, const char *actor, int64_t now,
				 struct amtprov_error *err);

	/** @p detail is never NULL here. */
	int (*device_delete)(struct store *st, int64_t id, const char *from, const char *actor,
			     const char *detail, int64_t now, struct amtprov_error *err);

	/** @p owner is non-empty and fits STORE_SHORT_SIZE here. */
	int (*device_claim)(struct store *st, int64_t id, const char *owner, int64_t now,
			    int64_t until, struct amtprov_error *err);
	int (*device_release)(struct store *st, int64_t id, const char *owner,
			      struct amtprov_error *err);
	/** @p n is never NULL here. */
	int (*lease_renew)(struct store *st, const char *owner, int64_t until, int64_t *n,
			   struct amtprov_error *err);

	int (*cert_add)(struct store *st, struct store_cert *cert, int64_t now,
			struct amtprov_error *err);
	int (*cert_get)(struct store *st, int64_t id, struct store_cert *out,
			struct amtprov_error *err);
	/** @p filter is never NULL here (store.c passes an all-zero filter instead). */
	int (*cert_list)(struct store *st, const struct store_cert_filter *filter,
			 store_cert_cb cb, void *ctx, struct amtprov_error *err);
	int (*cert_data_put)(struct store *st, int64_t cert_id, const uint8_t *der,
			     size_t der_len, const char *chain_pem, struct amtprov_error *err);
	int (*cert_data_get)(struct store *st, int64_t cert_id, uint8_t **der, size_t *der_len,
			     char **chain_pem, struct amtprov_error *err);
	int (*cert_set_status)(struct store *st, int64_t id, const char *status, int reason,
			       int64_t now, struct amtprov_error *err);

	int (*status_add)(struct store *st, struct store_status_msg *msg, int64_t now,
			  struct amtprov_error *err);
	/** @p filter is never NULL; filter->device is NULL for "any". */
	int (*status_list)(struct store *st, const struct store_status_filter *filter,
			   store_status_cb cb, void *ctx, struct amtprov_error *err);

	/** @p detail is never NULL here. */
	int (*audit_add)(struct store *st, const char *actor, int64_t device_id,
			 const char *action, const char *detail, int64_t now,
			 struct amtprov_error *err);
	int (*audit_list)(struct store *st, int64_t device_id, int limit, store_audit_cb cb,
			  void *ctx, struct amtprov_error *err);

	int (*pending_add)(struct store *st, struct store_pending *op, int64_t now,
			   struct amtprov_error *err);
	int (*pending_due)(struct store *st, const char *kind, int64_t now,
			   store_pending_cb cb, void *ctx, struct amtprov_error *err);
	int (*pending_list)(struct store *st, int64_t device_id, store_pending_cb cb,
			    void *ctx, struct amtprov_error *err);
	/** @p last_error is never NULL here. */
	int (*pending_defer)(struct store *st, int64_t id, int64_t next_attempt_at,
			     struct amtprov_error *err);
	int (*pending_retry)(struct store *st, int64_t id, const char *last_error,
			     int64_t next_attempt_at, struct amtprov_error *err);
	int (*pending_done)(struct store *st, int64_t id, struct amtprov_error *err);

	int (*task_get)(struct store *st, const char *name, struct store_task *out,
			struct amtprov_error *err);
	int (*task_put)(struct store *st, const struct store_task *task,
			struct amtprov_error *err);
	int (*task_request)(struct store *st, const char *name, int64_t *request,
			    struct amtprov_error *err);
	int (*task_list)(struct store *st, store_task_cb cb, void *ctx,
			 struct amtprov_error *err);
	/** @p owner is non-empty and fits STORE_SHORT_SIZE here; until > now. */
	int (*task_claim)(struct store *st, const char *name, const char *owner, int64_t now,
			  int64_t until, struct amtprov_error *err);
	int (*task_release)(struct store *st, const char *name, const char *owner,
			    struct amtprov_error *err);
	/** Live and expired device leases per owner (store_lease_count). */
	int (*lease_count)(struct store *st, int64_t now,
			   int (*cb)(void *ctx, const char *owner, int64_t live, int64_t expired),
			   void *ctx, struct amtprov_error *err);
};

/**
 * A handle. One per thread: the functions are not safe to call on one handle from
 * several threads at once; open one handle per thread (SQLite in WAL mode lets several
 * handles, in one process or many, share the file).
 */
struct store {
	const struct store_ops *ops;
	void *be;     /**< back end's private state, owned by the back end */
	char *path;   /**< as given to store_open, owned */
	char *password_file; /**< PostgreSQL: file holding the password, or NULL; owned */
	int flags;    /**< STORE_OPEN_* */
	int in_tx;    /**< 1 while an explicit store_tx_begin() transaction is open */
};

/**
 * The SQLite back end's constructor: opens/creates st->path, checks it, migrates it, and
 * on success sets st->ops and st->be. On failure st->ops/st->be are left NULL and the
 * file is as it was (a file this call created is removed again).
 */
int store_sqlite_open(struct store *st, int flags, struct amtprov_error *err);

/**
 * The PostgreSQL back end's constructor (store_pg.c): st->path is a libpq connection
 * string (URI or conninfo) without a password; the password, if any, is read from
 * st->password_file (or libpq finds it in its password file). Connects, checks the schema, migrates it
 * (under an advisory lock, so several hosts may start at once). The server and the
 * database must exist; with STORE_OPEN_CREATE an empty database gets the schema, without
 * it an empty database is AMTPROV_E_NOT_FOUND.
 */
int store_pg_open(struct store *st, int flags, struct amtprov_error *err);

#endif /* AMTPROV_CORE_STORE_INT_H */
