/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQLite schema, as an ordered list of migrations. Included once, by store_sqlite.c.
 *
 * store_migrations[N] takes a database from user_version N to N + 1 and MUST end with
 * "PRAGMA user_version = N+1;". Each entry runs inside its own BEGIN IMMEDIATE ... COMMIT
 * (user_version lives in the database header, so the bump is part of the same
 * transaction): a crash mid-migration leaves the database at version N.
 *
 * To change the schema: append one entry here and raise STORE_SCHEMA_VERSION in store.h
 * (a static assertion in store_sqlite.c keeps the two in step). Never edit a released
 * entry; databases in the field have already run it. See docs/database.md.
 *
 * Invariants the schema enforces itself, so that no code path (ours or a future back end's
 * tooling) can break them:
 *  - devices, certificates and audit rows are never deleted, audit rows never changed
 *    (triggers), so history stays consistent;
 *  - foreign keys tie certificates, audit rows and pending operations to real devices
 *    (NULL = not tied to a device; the structs use 0);
 *  - enumerated columns only hold their documented values (CHECK).
 */
#ifndef AMTPROV_CORE_STORE_MIGRATIONS_H
#define AMTPROV_CORE_STORE_MIGRATIONS_H

static const char *const store_migrations[] = {
	/* 0 -> 1: the initial schema. */
	"CREATE TABLE devices (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  fqdn TEXT NOT NULL COLLATE NOCASE UNIQUE\n"
	"       CHECK (length(fqdn) BETWEEN 1 AND 255),\n"
	"  uuid TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (length(uuid) = 36),\n"
	"  amt_version TEXT NOT NULL DEFAULT '',\n"
	"  wired_ip TEXT NOT NULL DEFAULT '',\n"
	"  otp_hash TEXT NOT NULL DEFAULT '',\n"
	"  state TEXT NOT NULL CHECK (state <> ''),\n"
	"  state_since INTEGER NOT NULL,\n"
	"  last_error_code INTEGER NOT NULL DEFAULT 0 CHECK (last_error_code >= 0),\n"
	"  last_error TEXT NOT NULL DEFAULT '',\n"
	"  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),\n"
	"  next_attempt_at INTEGER NOT NULL DEFAULT 0,\n"
	"  wireless_capable INTEGER NOT NULL DEFAULT 0 CHECK (wireless_capable IN (0, 1)),\n"
	"  blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),\n"
	"  created_at INTEGER NOT NULL,\n"
	"  updated_at INTEGER NOT NULL\n"
	");\n"
	"CREATE INDEX devices_state ON devices (state, next_attempt_at);\n"
	"CREATE TRIGGER devices_keep BEFORE DELETE ON devices\n"
	"  BEGIN SELECT RAISE(ABORT, 'devices are never deleted'); END;\n"
	"\n"
	"CREATE TABLE certificates (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  device_id INTEGER REFERENCES devices (id),\n"
	"  serial_hex TEXT NOT NULL CHECK (serial_hex <> ''),\n"
	"  issuer TEXT NOT NULL DEFAULT '',\n"
	"  subject TEXT NOT NULL DEFAULT '',\n"
	"  purpose INTEGER NOT NULL CHECK (purpose > 0),\n"
	"  profile TEXT NOT NULL DEFAULT '',\n"
	"  template_name TEXT NOT NULL DEFAULT '',\n"
	"  ca_instance TEXT NOT NULL DEFAULT '',\n"
	"  request_id TEXT NOT NULL DEFAULT '',\n"
	"  sha256 TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (length(sha256) = 64),\n"
	"  not_before INTEGER NOT NULL,\n"
	"  not_after INTEGER NOT NULL CHECK (not_after >= not_before),\n"
	"  status TEXT NOT NULL\n"
	"         CHECK (status IN ('active', 'revoke-pending', 'revoked', 'expired')),\n"
	"  revocation_reason INTEGER NOT NULL DEFAULT -1\n"
	"         CHECK (revocation_reason BETWEEN -1 AND 10),\n"
	"  revoked_at INTEGER NOT NULL DEFAULT 0,\n"
	"  created_at INTEGER NOT NULL,\n"
	"  CHECK (status <> 'revoked' OR revocation_reason >= 0)\n"
	");\n"
	"CREATE INDEX certificates_not_after ON certificates (not_after);\n"
	"CREATE INDEX certificates_device ON certificates (device_id);\n"
	"CREATE TRIGGER certificates_keep BEFORE DELETE ON certificates\n"
	"  BEGIN SELECT RAISE(ABORT, 'certificates are never deleted'); END;\n"
	"\n"
	"CREATE TABLE status_messages (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  msg_id INTEGER NOT NULL CHECK (msg_id >= 0),\n"
	"  severity INTEGER NOT NULL CHECK (severity IN (0, 1, 2)),\n"
	"  device TEXT NOT NULL DEFAULT '' COLLATE NOCASE,\n"
	"  text TEXT NOT NULL,\n"
	"  created_at INTEGER NOT NULL\n"
	");\n"
	"CREATE INDEX status_messages_created ON status_messages (created_at);\n"
	"CREATE INDEX status_messages_msg ON status_messages (msg_id, created_at);\n"
	"CREATE INDEX status_messages_device ON status_messages (device, created_at);\n"
	"\n"
	"CREATE TABLE audit (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  at INTEGER NOT NULL,\n"
	"  actor TEXT NOT NULL CHECK (actor <> ''),\n"
	"  device_id INTEGER REFERENCES devices (id),\n"
	"  action TEXT NOT NULL CHECK (action <> ''),\n"
	"  detail TEXT NOT NULL DEFAULT ''\n"
	");\n"
	"CREATE INDEX audit_device ON audit (device_id);\n"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit\n"
	"  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;\n"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit\n"
	"  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;\n"
	"\n"
	"CREATE TABLE pending_ops (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  device_id INTEGER REFERENCES devices (id),\n"
	"  kind TEXT NOT NULL CHECK (kind <> ''),\n"
	"  payload TEXT NOT NULL DEFAULT '',\n"
	"  created_at INTEGER NOT NULL,\n"
	"  next_attempt_at INTEGER NOT NULL DEFAULT 0,\n"
	"  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),\n"
	"  last_error TEXT NOT NULL DEFAULT ''\n"
	");\n"
	"CREATE INDEX pending_ops_due ON pending_ops (next_attempt_at);\n"
	"CREATE INDEX pending_ops_device ON pending_ops (device_id);\n"
	"\n"
	"CREATE TABLE maintenance_tasks (\n"
	"  name TEXT NOT NULL PRIMARY KEY CHECK (name <> ''),\n"
	"  last_run INTEGER NOT NULL DEFAULT 0,\n"
	"  last_result INTEGER NOT NULL DEFAULT 0 CHECK (last_result >= 0),\n"
	"  last_detail TEXT NOT NULL DEFAULT '',\n"
	"  next_run INTEGER NOT NULL DEFAULT 0\n"
	") WITHOUT ROWID;\n"
	"\n"
	"PRAGMA user_version = 1;\n",

	/* 1 -> 2: the certificates themselves, so a step that installs one in AMT after a
	 * restart has it (R-PROV-13), and revocation has the exact certificate. Apart from
	 * certificates so listing stays small. */
	"CREATE TABLE certificate_data (\n"
	"  cert_id INTEGER PRIMARY KEY REFERENCES certificates (id),\n"
	"  der BLOB NOT NULL CHECK (length(der) > 0),\n"
	"  chain_pem TEXT NOT NULL DEFAULT ''\n"
	");\n"
	"CREATE TRIGGER certificate_data_keep BEFORE DELETE ON certificate_data\n"
	"  BEGIN SELECT RAISE(ABORT, 'certificate data is never deleted'); END;\n"
	"PRAGMA user_version = 2;\n",

	/* 2 -> 3: the scheduler's bookkeeping (docs/lifecycle.md). On-demand runs are a
	 * counter pair rather than a flag, so "amtprov task run" in one process and amtprovd
	 * finishing a run in another never lose a request. */
	"ALTER TABLE maintenance_tasks ADD COLUMN interval_seconds INTEGER NOT NULL DEFAULT 0\n"
	"  CHECK (interval_seconds >= 0);\n"
	"ALTER TABLE maintenance_tasks ADD COLUMN requests INTEGER NOT NULL DEFAULT 0\n"
	"  CHECK (requests >= 0);\n"
	"ALTER TABLE maintenance_tasks ADD COLUMN served INTEGER NOT NULL DEFAULT 0\n"
	"  CHECK (served >= 0);\n"
	"PRAGMA user_version = 3;\n",

	/* 3 -> 4: the crash-loop guard (R-PROV-13, docs/states.md). in_flight counts how often
	 * the device's current step was begun with no outcome recorded since: set in the same
	 * UPDATE that enters the -ING state, cleared by the one that records the outcome, kept
	 * by the rewind after a restart. A device whose step keeps killing the process is set
	 * aside instead of being resumed first on every start. */
	"ALTER TABLE devices ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0\n"
	"  CHECK (in_flight >= 0);\n"
	"PRAGMA user_version = 4;\n",

	/* 4 -> 5: device leases, so several amtprovd on one database never work on one device
	 * at once (docs/database.md, "Several hosts"). lease_owner is the host's id ("" =
	 * none), lease_until when the lease runs out unless renewed. */
	"ALTER TABLE devices ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';\n"
	"ALTER TABLE devices ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;\n"
	"CREATE INDEX devices_lease ON devices (lease_owner);\n"
	"PRAGMA user_version = 5;\n",

	/* 5 -> 6: maintenance task leases, so with several amtprovd on one database each run
	 * of a task happens on one host (docs/database.md, "Several hosts"): the same
	 * owner/expiry pair as a device's, held while the task runs. */
	"ALTER TABLE maintenance_tasks ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';\n"
	"ALTER TABLE maintenance_tasks ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;\n"
	"PRAGMA user_version = 6;\n",
};

#endif /* AMTPROV_CORE_STORE_MIGRATIONS_H */
