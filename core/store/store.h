/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file store.h
 * @brief The site database, behind one storage interface (internal to libamtprov).
 *
 * All persistent site state goes through these functions: devices and their provisioning
 * state, every issued certificate, status messages, the audit trail, pending operations
 * (queued revocations, CA cookies to poll, write-ahead password commits) and maintenance
 * task runs. SQLite is the default back end (store_sqlite.c); PostgreSQL (store_pg.c) is
 * the one several amtprovd hosts share. The functions dispatch through `struct store_ops`.
 *
 * Conventions:
 *  - Every function returns an enum amtprov_status and fills @p err on failure, with
 *    err->where naming the database file.
 *  - Records are plain structs with fixed-size text fields; callers own them.
 *  - Each mutating call is atomic on its own. store_tx_begin/commit group several calls
 *    into one transaction (nesting is an error).
 *  - Times are Unix seconds (the caller passes "now", so tests can drive the clock).
 *  - Threads: one handle per thread; a struct store must not be used by two threads at
 *    once. Several handles (threads or processes) may share one database file.
 *  - List callbacks run with no cursor open: a callback may call any store function on
 *    the same handle (e.g. transition the device it is given).
 *  - Details (validation, normalisation, schema, migrations): docs/database.md.
 */
#ifndef AMTPROV_CORE_STORE_H
#define AMTPROV_CORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <amtprov/error.h>

#define STORE_FQDN_SIZE 256
#define STORE_UUID_SIZE 40
#define STORE_STATE_SIZE 40
#define STORE_TEXT_SIZE 512
#define STORE_SHORT_SIZE 64
#define STORE_HASH_SIZE 132 /* SHA-512 hex + NUL fits */
#define STORE_DN_SIZE 512

/** Current schema version (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 6

struct store;

/** Open flags. */
#define STORE_OPEN_CREATE 0x1   /**< create the file and schema if missing */
#define STORE_OPEN_READONLY 0x2 /**< for reporting tools; no migration is run */

/** A device record. */
struct store_device {
	int64_t id;                          /**< assigned by store_device_add */
	char fqdn[STORE_FQDN_SIZE];          /**< unique, lower case */
	char uuid[STORE_UUID_SIZE];          /**< unique, lower case canonical */
	char amt_version[STORE_SHORT_SIZE];  /**< "11.8.50" */
	char wired_ip[STORE_SHORT_SIZE];     /**< may be empty */
	char otp_hash[STORE_HASH_SIZE];      /**< hex, may be empty */
	char state[STORE_STATE_SIZE];        /**< device_state name, see device_state.h */
	int64_t state_since;
	int last_error_code;                 /**< enum amtprov_status of the last failure, 0 */
	char last_error[STORE_TEXT_SIZE];    /**< human reason of the last failure, or "" */
	int attempts;                        /**< failed attempts in the current state */
	int64_t next_attempt_at;             /**< 0: now; used by the engine for retries */
	int wireless_capable;
	int blocked;                         /**< R-REV-02d */
	int in_flight;                       /**< times the current step began with no outcome
					      *   recorded (crash-loop guard); read-only */
	char lease_owner[STORE_SHORT_SIZE];  /**< host working on it ("" = none); read-only,
					      *   see store_device_claim (schema 5) */
	int64_t lease_until;                 /**< the lease expires then; read-only */
	int64_t created_at;
	int64_t updated_at;
};

/** Certificate status values stored in certificates.status. */
#define STORE_CERT_ACTIVE "active"            /**< issued and in use */
#define STORE_CERT_REVOKE_PENDING "revoke-pending" /**< to be revoked; queued at the CA */
#define STORE_CERT_REVOKED "revoked"
#define STORE_CERT_EXPIRED "expired"

/** A certificate record: every certificate amtprov obtained, never deleted. */
struct store_cert {
	int64_t id;
	int64_t device_id;                     /**< 0 if not tied to a device (provisioning) */
	char serial_hex[STORE_SHORT_SIZE * 2];  /**< upper-case hex */
	char issuer[STORE_DN_SIZE];            /**< RFC 4514 */
	char subject[STORE_DN_SIZE];
	int purpose;                           /**< enum amtprov_cert_purpose */
	char profile[STORE_SHORT_SIZE];        /**< 802.1X profile name or "" */
	char template_name[STORE_SHORT_SIZE];
	char ca_instance[STORE_SHORT_SIZE];
	char request_id[STORE_SHORT_SIZE];
	char sha256[STORE_HASH_SIZE];          /**< thumbprint, upper-case hex, unique */
	int64_t not_before;
	int64_t not_after;
	char status[STORE_SHORT_SIZE];         /**< STORE_CERT_* */
	int revocation_reason;                 /**< enum amtprov_revocation_reason, -1 if none */
	int64_t revoked_at;                    /**< 0 if not revoked */
	int64_t created_at;
};

/** Filters for store_cert_list; zero/empty fields match everything. */
struct store_cert_filter {
	int64_t device_id;
	int purpose;
	const char *status;          /**< NULL: any */
	int64_t not_after_before;    /**< 0: any; else only not_after < this */
};

/** Severity of a status message. Values are stored. */
enum store_severity {
	STORE_SEV_INFO = 0,
	STORE_SEV_WARNING = 1,
	STORE_SEV_ERROR = 2,
};

/** A stored status message. */
struct store_status_msg {
	int64_t id;
	uint32_t msg_id;                /**< catalog ID, e.g. 7210 */
	int severity;                   /**< enum store_severity */
	char device[STORE_FQDN_SIZE];   /**< device FQDN or "" for site-wide */
	char text[STORE_TEXT_SIZE];
	int64_t created_at;
};

/** Filters for store_status_list; zero/empty fields match everything. */
struct store_status_filter {
	uint32_t msg_id;
	int min_severity;               /**< -1 or 0: all */
	const char *device;
	int64_t since;                  /**< created_at >= since */
	int64_t until;                  /**< 0: no limit; else created_at < until */
	int limit;                      /**< 0: no limit; newest first */
};

/** An audit record (append-only). */
struct store_audit {
	int64_t id;
	int64_t at;
	char actor[STORE_SHORT_SIZE];      /**< "amtprovd", "cli:root", plugin instance */
	int64_t device_id;                 /**< 0: site-wide */
	char action[STORE_SHORT_SIZE];     /**< "state", "device.add", "cert.issue", ... */
	char detail[STORE_TEXT_SIZE];      /**< never a secret */
};

/** A pending operation: work that must not be forgotten across restarts. */
struct store_pending {
	int64_t id;
	int64_t device_id;                 /**< 0: none */
	char kind[STORE_SHORT_SIZE];       /**< "revoke", "ca-poll", "commit-password", ... */
	char payload[8192];                /**< JSON, no secrets (credential names only) */
	int64_t created_at;
	int64_t next_attempt_at;
	int attempts;
	char last_error[STORE_TEXT_SIZE];
};

/** A maintenance task's bookkeeping. */
struct store_task {
	char name[STORE_SHORT_SIZE];
	int64_t last_run;                  /**< 0: never */
	int last_result;                   /**< enum amtprov_status */
	char last_detail[STORE_TEXT_SIZE];
	int64_t next_run;
	int64_t interval_seconds;          /**< the schedule it was last run on (schema 3) */
	int64_t requests;                  /**< on-demand runs asked for (store_task_request) */
	int64_t served;                    /**< requests the last run covered; < requests: due */
	char lease_owner[STORE_SHORT_SIZE]; /**< host running it now ("" = none); read-only,
					      *   see store_task_claim (schema 6) */
	int64_t lease_until;               /**< that run's lease expires then; read-only */
};
typedef int (*store_task_cb)(void *ctx, const struct store_task *task);

/* Iteration callbacks: return 0 to go on, non-zero to stop (not an error). Records are
 * borrowed for the call. */
typedef int (*store_device_cb)(void *ctx, const struct store_device *dev);
typedef int (*store_cert_cb)(void *ctx, const struct store_cert *cert);
typedef int (*store_status_cb)(void *ctx, const struct store_status_msg *msg);
typedef int (*store_audit_cb)(void *ctx, const struct store_audit *rec);
typedef int (*store_pending_cb)(void *ctx, const struct store_pending *op);

/**
 * 1 if @p s names a PostgreSQL database (a "postgresql://" or "postgres://" URI, or a
 * libpq "keyword=value" conninfo) rather than a SQLite file path.
 */
int store_is_pg_url(const char *s);
/**
 * Checks a PostgreSQL connection string before use: it must parse, and must not hold a
 * password (secrets never go in the manifest). 0, or -1 with the reason in @p why.
 */
int store_pg_url_check(const char *url, char *why, size_t why_size);

/**
 * Opens (and with STORE_OPEN_CREATE creates) a site database.
 * @param[in] path  file path of the SQLite database, or a PostgreSQL connection string
 *                  (store_is_pg_url; the server and database must exist, CREATE adds
 *                  the schema to an empty one)
 * @return AMTPROV_OK; AMTPROV_E_NOT_FOUND (missing, no CREATE); AMTPROV_E_CORRUPT (not a
 *         database, failed integrity check, or a schema newer than this build knows);
 *         AMTPROV_E_BUSY; AMTPROV_E_IO. A failed open changes nothing on disk.
 */
int store_open(const char *path, int flags, struct store **out, struct amtprov_error *err);
/**
 * store_open() for a PostgreSQL database whose password is in @p password_file (the
 * manifest's database.password_file; NULL: none, as store_open). The file holds only the
 * password (one line); it must be a regular file owned by the user amtprov runs as, with no
 * group or other permission bits. It is read at each connect and never logged.
 */
int store_open_auth(const char *path, const char *password_file, int flags, struct store **out,
		    struct amtprov_error *err);
/** The password file it was opened with, or NULL (borrowed). */
const char *store_password_file(const struct store *st);
/** Closes. Accepts NULL. */
/**
 * Deferred syncing (issue 13; store_sync.h): from now on a commit holding a pending
 * operation or a certificate returns once it is in the WAL (safe against a process crash)
 * and the syncer thread makes it survive power loss; whoever acts on such a record waits
 * for store_sync_ticket() to pass first (the transport loop and the engine's workers do).
 * For amtprovd's event loop, whose every fsync stalled all devices in flight.
 * Registrations are still synced before they return. A no-op on back ends whose commits
 * are durable when they return (PostgreSQL). @return AMTPROV_OK, or an error (no file).
 */
int store_defer_sync(struct store *st, struct amtprov_error *err);

void store_close(struct store *st);
/** The path it was opened with (borrowed). */
const char *store_path(const struct store *st);
/** Schema version found on disk (after migrations). */
int store_schema_version(struct store *st);
/** Runs an integrity check; AMTPROV_E_CORRUPT with the first problem in err. */
int store_check(struct store *st, struct amtprov_error *err);

int store_tx_begin(struct store *st, struct amtprov_error *err);
int store_tx_commit(struct store *st, struct amtprov_error *err);
/** Rolls back; never fails visibly (logs nothing, returns nothing). */
void store_tx_rollback(struct store *st);

/* ---- devices ---- */
/** Adds a device. AMTPROV_E_EXISTS if the FQDN or UUID is taken (err names which).
 * Sets dev->id. Writes an audit record "device.add". */
int store_device_add(struct store *st, struct store_device *dev, const char *actor,
		     int64_t now, struct amtprov_error *err);
int store_device_get(struct store *st, int64_t id, struct store_device *out,
		     struct amtprov_error *err);
/** By FQDN (case-insensitive) or, if @p key looks like a UUID, by UUID. */
int store_device_find(struct store *st, const char *key, struct store_device *out,
		      struct amtprov_error *err);
/** Lists devices (ordered by id); @p state NULL for all. */
int store_device_list(struct store *st, const char *state, store_device_cb cb, void *ctx,
		      struct amtprov_error *err);
/** Lists the devices in @p state that are due at @p now: not blocked, next_attempt_at <=
 * @p now; the longest due first (by next_attempt_at, then id). What the engine may start:
 * the rows read follow the (state, next_attempt_at) index, about as many as @p cb takes
 * before it returns non-zero (a first page of a few rows, larger pages after), whatever the
 * number of devices in other states or not due. */
int store_device_list_due(struct store *st, const char *state, int64_t now, store_device_cb cb,
			  void *ctx, struct amtprov_error *err);
/** Counts devices per state: calls cb(ctx, state, count) for each state present. */
int store_device_count_by_state(struct store *st,
				int (*cb)(void *ctx, const char *state, int64_t count),
				void *ctx, struct amtprov_error *err);
/**
 * Compare-and-set of a device's state, atomically with an audit record "state" whose detail
 * is "FROM -> TO[: error]". Fails with AMTPROV_E_STATE (and changes nothing) if the stored
 * state is not @p from. Sets last_error_code/last_error (empty clears them), attempts
 * (reset to 0 when the state changes, incremented when from == to), next_attempt_at.
 */
int store_device_transition(struct store *st, int64_t id, const char *from, const char *to,
			    int error_code, const char *error_text, int64_t next_attempt_at,
			    const char *actor, int64_t now, struct amtprov_error *err);
/**
 * Like store_device_transition(), but stores @p attempts as given (>= 0) instead of applying
 * the reset/increment rule, for callers that count attempts across the states of one step
 * (NEED_X -> X_ING -> NEED_X). @p attempts = -1 applies the rule.
 */
int store_device_transition_ex(struct store *st, int64_t id, const char *from, const char *to,
			       int error_code, const char *error_text, int64_t next_attempt_at,
			       int attempts, const char *actor, int64_t now,
			       struct amtprov_error *err);
/** What a transition does to a device's in_flight count (the crash-loop guard). */
enum store_step {
	STORE_STEP_END = 0,   /**< an outcome is recorded: in_flight = 0 (every other caller) */
	STORE_STEP_BEGIN = 1, /**< a step starts: in_flight + 1 */
	STORE_STEP_KEEP = 2,  /**< a restart rewinds the step: in_flight unchanged */
	STORE_STEP_UNDO = 3,  /**< an orderly stop abandons the step: in_flight - 1 (not a crash) */
};
/**
 * store_device_transition_ex() for the engine, which also says what the transition does to
 * the step-in-flight count (@p step), in the same statement (no extra write or sync).
 */
int store_device_step(struct store *st, int64_t id, const char *from, const char *to,
		      enum store_step step, int error_code, const char *error_text,
		      int64_t next_attempt_at, int attempts, const char *actor, int64_t now,
		      struct amtprov_error *err);
/** Updates the descriptive fields (amt_version, wired_ip, otp_hash, uuid,
 * wireless_capable, blocked) of an existing device; state fields are left alone. */
int store_device_update(struct store *st, const struct store_device *dev, const char *actor,
			int64_t now, struct amtprov_error *err);

/**
 * Re-registration of a known device (docs/states.md): its agent registered again with a
 * new OTP. In one transaction: compare-and-set of the state (AMTPROV_E_STATE, nothing
 * changed, if the stored state is not @p from or the device is blocked), the identity and
 * the agent's report (fqdn, uuid, amt_version, wired_ip, otp_hash, wireless_capable) taken
 * from @p dev, state REGISTERED with no error, no attempts, due now, and two audit records:
 * "state" ("FROM -> REGISTERED: re-registered by its agent") and "device.reregister" (what
 * changed; the OTP hash only as "new"). AMTPROV_E_EXISTS if another device has the new FQDN
 * or UUID. Which states may re-register is the caller's rule (core/api/registration.c).
 */
int store_device_reregister(struct store *st, int64_t id, const char *from,
			    const struct store_device *dev, const char *actor, int64_t now,
			    struct amtprov_error *err);

/**
 * Deletes a device from the inventory (amtprov device delete, docs/lifecycle.md), keeping
 * its history: the row stays as a tombstone, because certificates, audit records and
 * queued revocations refer to it. In one transaction:
 *  - compare-and-set: the device must be in state @p from (AMTPROV_E_STATE otherwise),
 *    hold no live lease of another host (AMTPROV_E_BUSY), and have no certificate in
 *    status "active" (AMTPROV_E_STATE: queue its revocation first; a "revoke-pending" one
 *    is fine, its queued revocation goes on);
 *  - its pending operations other than revocations ("revoke") are dropped;
 *  - the row becomes state STORE_DEVICE_DELETED with fqdn "deleted-ID:FQDN" (cut to 255,
 *    never a valid host name) and uuid "deleted-" + ID in 28 digits (never a UUID), so the
 *    FQDN and UUID are free for a new registration; OTP hash, wired IP, error, attempts,
 *    block and lease are cleared;
 *  - an audit record "device.delete" with @p detail (the caller says what was deleted:
 *    the original FQDN and UUID are in it).
 * Certificates, their data, audit records and status messages are not touched.
 */
int store_device_delete(struct store *st, int64_t id, const char *from, const char *actor,
			const char *detail, int64_t now, struct amtprov_error *err);
/** The state of a deleted device's tombstone (not a device_state: nothing works on it). */
#define STORE_DEVICE_DELETED "DELETED"

/* ---- device leases (several hosts on one database, docs/database.md) ---- */
/**
 * Claims device @p id for host @p owner until @p until: succeeds when the device has no
 * lease, its lease is @p owner's, or it expired before @p now. AMTPROV_E_BUSY (nothing
 * changed) when another host holds a live lease, or (PostgreSQL) another host's
 * transaction holds the row right now (SKIP LOCKED: a claim never waits).
 * AMTPROV_E_NOT_FOUND if there is no such device.
 */
int store_device_claim(struct store *st, int64_t id, const char *owner, int64_t now,
		       int64_t until, struct amtprov_error *err);
/** Gives up @p owner's lease on device @p id (nothing happens if it is not @p owner's). */
int store_device_release(struct store *st, int64_t id, const char *owner,
			 struct amtprov_error *err);
/** Extends every lease @p owner holds to @p until (one statement); *n: how many, may be
 * NULL. A host renews while it works; a host that died stops renewing. */
int store_lease_renew(struct store *st, const char *owner, int64_t until, int64_t *n,
		      struct amtprov_error *err);

/**
 * Counts the device leases by host: @p cb is called once per owner with how many of its
 * leases are live (lease_until >= @p now) and how many ran out (a host that died or
 * stopped; another host may take those devices). Devices with no lease are not counted.
 */
int store_lease_count(struct store *st, int64_t now,
		      int (*cb)(void *ctx, const char *owner, int64_t live, int64_t expired),
		      void *ctx, struct amtprov_error *err);

/* ---- certificates ---- */
/** Records an issued certificate. AMTPROV_E_EXISTS if sha256 is already recorded. */
int store_cert_add(struct store *st, struct store_cert *cert, int64_t now,
		   struct amtprov_error *err);
int store_cert_get(struct store *st, int64_t id, struct store_cert *out,
		   struct amtprov_error *err);
int store_cert_list(struct store *st, const struct store_cert_filter *filter,
		    store_cert_cb cb, void *ctx, struct amtprov_error *err);
/** Sets status (and revocation reason/time when status is STORE_CERT_REVOKED). */
int store_cert_set_status(struct store *st, int64_t id, const char *status, int reason,
			  int64_t now, struct amtprov_error *err);

/**
 * Stores a certificate's DER and its issuing chain (PEM, may be NULL) beside its record.
 * Once per certificate: AMTPROV_E_EXISTS if already stored. Both buffers are copied.
 */
int store_cert_data_put(struct store *st, int64_t cert_id, const uint8_t *der, size_t der_len,
			const char *chain_pem, struct amtprov_error *err);
/**
 * Reads them back. @p der and @p chain_pem (may be NULL) are malloc'd, caller frees;
 * AMTPROV_E_NOT_FOUND when nothing was stored for @p cert_id.
 */
int store_cert_data_get(struct store *st, int64_t cert_id, uint8_t **der, size_t *der_len,
			char **chain_pem, struct amtprov_error *err);

/* ---- status messages ---- */
int store_status_add(struct store *st, struct store_status_msg *msg, int64_t now,
		     struct amtprov_error *err);
int store_status_list(struct store *st, const struct store_status_filter *filter,
		      store_status_cb cb, void *ctx, struct amtprov_error *err);

/* ---- audit ---- */
int store_audit_add(struct store *st, const char *actor, int64_t device_id,
		    const char *action, const char *detail, int64_t now,
		    struct amtprov_error *err);
/** Lists audit records for a device (0: all), oldest first, at most @p limit (0: all). */
int store_audit_list(struct store *st, int64_t device_id, int limit, store_audit_cb cb,
		     void *ctx, struct amtprov_error *err);

/* ---- pending operations ---- */
int store_pending_add(struct store *st, struct store_pending *op, int64_t now,
		      struct amtprov_error *err);
/** Lists operations due at @p now (next_attempt_at <= now), oldest first; kind NULL: all. */
int store_pending_due(struct store *st, const char *kind, int64_t now, store_pending_cb cb,
		      void *ctx, struct amtprov_error *err);
/** Lists all operations of a device (0: all devices). */
int store_pending_list(struct store *st, int64_t device_id, store_pending_cb cb, void *ctx,
		       struct amtprov_error *err);
/** Records a failed attempt: attempts+1, last_error, next_attempt_at. */
int store_pending_retry(struct store *st, int64_t id, const char *last_error,
			int64_t next_attempt_at, struct amtprov_error *err);
/** Moves next_attempt_at without counting an attempt: a lease, so an operation being worked
 * on (a revocation at the CA) is not picked up twice; when it is done or fails, the
 * worker's result replaces the lease, and a crash simply lets the lease run out. */
int store_pending_defer(struct store *st, int64_t id, int64_t next_attempt_at,
			struct amtprov_error *err);
/** Removes a completed operation. */
int store_pending_done(struct store *st, int64_t id, struct amtprov_error *err);

/* ---- maintenance tasks ---- */
/** Reads a task's record; AMTPROV_E_NOT_FOUND if it never ran and was never scheduled. */
int store_task_get(struct store *st, const char *name, struct store_task *out,
		   struct amtprov_error *err);
/** Inserts or replaces a task's record; `requests` is never written here, so an on-demand
 * request made meanwhile by another process is not lost. */
int store_task_put(struct store *st, const struct store_task *task, struct amtprov_error *err);
/** Asks for an on-demand run (amtprov task run): requests + 1, creating the record if
 * needed. @param[out] request the new request number; may be NULL */
int store_task_request(struct store *st, const char *name, int64_t *request,
		       struct amtprov_error *err);
/**
 * Claims the run of task @p name for host @p owner until @p until (creating the task's
 * record if it has none), so that several hosts on one database run each task once:
 * succeeds when nobody holds the task, @p owner does (a renewal), or the holder's lease
 * ran out before @p now (it died mid-run). AMTPROV_E_BUSY (nothing changed) when another
 * host holds a live lease or (PostgreSQL) another host's transaction holds the row right
 * now (SKIP LOCKED: never waits). The scheduler re-reads the record after a claim: the
 * previous holder may have just run it.
 */
int store_task_claim(struct store *st, const char *name, const char *owner, int64_t now,
		     int64_t until, struct amtprov_error *err);
/** Gives up @p owner's lease on task @p name (nothing happens if it is not @p owner's). */
int store_task_release(struct store *st, const char *name, const char *owner,
		       struct amtprov_error *err);
/** Every task record, by name. */
int store_task_list(struct store *st, store_task_cb cb, void *ctx, struct amtprov_error *err);

#endif /* AMTPROV_CORE_STORE_H */
