/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PostgreSQL schema, as an ordered list of migrations. Included once, by store_pg.c.
 *
 * store_pg_migrations[N] is the PostgreSQL translation of store_migrations[N]
 * (store_migrations.h, the SQLite list, which stays the reference): same tables, columns,
 * defaults, CHECKs, keys and "never deleted"/"append-only" rules, in PostgreSQL's dialect.
 * A static assertion in store_pg.c keeps both lists at STORE_SCHEMA_VERSION entries, so a
 * schema change cannot land in one back end only. Each entry runs in one transaction that
 * also sets amtprov_schema.version to N + 1 (store_pg.c does that, not the entry).
 *
 * Translations:
 *  - INTEGER PRIMARY KEY (SQLite's rowid) -> bigint GENERATED ALWAYS AS IDENTITY;
 *    every INTEGER -> bigint (times and ids are 64-bit in the structs);
 *  - COLLATE NOCASE UNIQUE -> a UNIQUE index on lower(column); the queries compare
 *    lower(column) = lower($n) (the dispatch layer also normalises case before writing);
 *  - BLOB -> bytea; length(der) -> octet_length(der);
 *  - RAISE(ABORT) triggers -> one trigger function, amtprov_refuse(message), used BEFORE
 *    DELETE (per row) and BEFORE TRUNCATE (per statement, which row triggers miss);
 *  - WITHOUT ROWID -> an ordinary table (PostgreSQL has no rowid);
 *  - PRAGMA user_version -> the one-row table amtprov_schema.
 */
#ifndef AMTPROV_CORE_STORE_MIGRATIONS_PG_H
#define AMTPROV_CORE_STORE_MIGRATIONS_PG_H

/* The version table and the trigger function exist before migration 0 runs (store_pg.c
 * creates them with the first migration, in the same transaction). */
static const char store_pg_bootstrap[] =
	"CREATE TABLE amtprov_schema (\n"
	"  one boolean PRIMARY KEY DEFAULT true CHECK (one),\n"
	"  version integer NOT NULL CHECK (version >= 0)\n"
	");\n"
	"INSERT INTO amtprov_schema (version) VALUES (0);\n"
	"CREATE FUNCTION amtprov_refuse() RETURNS trigger LANGUAGE plpgsql AS $f$\n"
	"BEGIN RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation'; END\n"
	"$f$;\n";

static const char *const store_pg_migrations[] = {
	/* 0 -> 1: the initial schema. */
	"CREATE TABLE devices (\n"
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"  fqdn text NOT NULL CHECK (length(fqdn) BETWEEN 1 AND 255),\n"
	"  uuid text NOT NULL CHECK (length(uuid) = 36),\n"
	"  amt_version text NOT NULL DEFAULT '',\n"
	"  wired_ip text NOT NULL DEFAULT '',\n"
	"  otp_hash text NOT NULL DEFAULT '',\n"
	"  state text NOT NULL CHECK (state <> ''),\n"
	"  state_since bigint NOT NULL,\n"
	"  last_error_code bigint NOT NULL DEFAULT 0 CHECK (last_error_code >= 0),\n"
	"  last_error text NOT NULL DEFAULT '',\n"
	"  attempts bigint NOT NULL DEFAULT 0 CHECK (attempts >= 0),\n"
	"  next_attempt_at bigint NOT NULL DEFAULT 0,\n"
	"  wireless_capable bigint NOT NULL DEFAULT 0 CHECK (wireless_capable IN (0, 1)),\n"
	"  blocked bigint NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),\n"
	"  created_at bigint NOT NULL,\n"
	"  updated_at bigint NOT NULL\n"
	");\n"
	"CREATE UNIQUE INDEX devices_fqdn ON devices (lower(fqdn));\n"
	"CREATE UNIQUE INDEX devices_uuid ON devices (lower(uuid));\n"
	"CREATE INDEX devices_state ON devices (state, next_attempt_at);\n"
	"CREATE TRIGGER devices_keep BEFORE DELETE ON devices FOR EACH ROW\n"
	"  EXECUTE FUNCTION amtprov_refuse('devices are never deleted');\n"
	"CREATE TRIGGER devices_keep_all BEFORE TRUNCATE ON devices FOR EACH STATEMENT\n"
	"  EXECUTE FUNCTION amtprov_refuse('devices are never deleted');\n"
	"\n"
	"CREATE TABLE certificates (\n"
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"  device_id bigint REFERENCES devices (id),\n"
	"  serial_hex text NOT NULL CHECK (serial_hex <> ''),\n"
	"  issuer text NOT NULL DEFAULT '',\n"
	"  subject text NOT NULL DEFAULT '',\n"
	"  purpose bigint NOT NULL CHECK (purpose > 0),\n"
	"  profile text NOT NULL DEFAULT '',\n"
	"  template_name text NOT NULL DEFAULT '',\n"
	"  ca_instance text NOT NULL DEFAULT '',\n"
	"  request_id text NOT NULL DEFAULT '',\n"
	"  sha256 text NOT NULL CHECK (length(sha256) = 64),\n"
	"  not_before bigint NOT NULL,\n"
	"  not_after bigint NOT NULL CHECK (not_after >= not_before),\n"
	"  status text NOT NULL\n"
	"         CHECK (status IN ('active', 'revoke-pending', 'revoked', 'expired')),\n"
	"  revocation_reason bigint NOT NULL DEFAULT -1\n"
	"         CHECK (revocation_reason BETWEEN -1 AND 10),\n"
	"  revoked_at bigint NOT NULL DEFAULT 0,\n"
	"  created_at bigint NOT NULL,\n"
	"  CHECK (status <> 'revoked' OR revocation_reason >= 0)\n"
	");\n"
	"CREATE UNIQUE INDEX certificates_sha256 ON certificates (lower(sha256));\n"
	"CREATE INDEX certificates_not_after ON certificates (not_after);\n"
	"CREATE INDEX certificates_device ON certificates (device_id);\n"
	"CREATE TRIGGER certificates_keep BEFORE DELETE ON certificates FOR EACH ROW\n"
	"  EXECUTE FUNCTION amtprov_refuse('certificates are never deleted');\n"
	"CREATE TRIGGER certificates_keep_all BEFORE TRUNCATE ON certificates FOR EACH STATEMENT\n"
	"  EXECUTE FUNCTION amtprov_refuse('certificates are never deleted');\n"
	"\n"
	"CREATE TABLE status_messages (\n"
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"  msg_id bigint NOT NULL CHECK (msg_id >= 0),\n"
	"  severity bigint NOT NULL CHECK (severity IN (0, 1, 2)),\n"
	"  device text NOT NULL DEFAULT '',\n"
	"  text text NOT NULL,\n"
	"  created_at bigint NOT NULL\n"
	");\n"
	"CREATE INDEX status_messages_created ON status_messages (created_at);\n"
	"CREATE INDEX status_messages_msg ON status_messages (msg_id, created_at);\n"
	"CREATE INDEX status_messages_device ON status_messages (lower(device), created_at);\n"
	"\n"
	"CREATE TABLE audit (\n"
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"  at bigint NOT NULL,\n"
	"  actor text NOT NULL CHECK (actor <> ''),\n"
	"  device_id bigint REFERENCES devices (id),\n"
	"  action text NOT NULL CHECK (action <> ''),\n"
	"  detail text NOT NULL DEFAULT ''\n"
	");\n"
	"CREATE INDEX audit_device ON audit (device_id);\n"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW\n"
	"  EXECUTE FUNCTION amtprov_refuse('the audit trail is append-only');\n"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW\n"
	"  EXECUTE FUNCTION amtprov_refuse('the audit trail is append-only');\n"
	"CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT\n"
	"  EXECUTE FUNCTION amtprov_refuse('the audit trail is append-only');\n"
	"\n"
	"CREATE TABLE pending_ops (\n"
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"  device_id bigint REFERENCES devices (id),\n"
	"  kind text NOT NULL CHECK (kind <> ''),\n"
	"  payload text NOT NULL DEFAULT '',\n"
	"  created_at bigint NOT NULL,\n"
	"  next_attempt_at bigint NOT NULL DEFAULT 0,\n"
	"  attempts bigint NOT NULL DEFAULT 0 CHECK (attempts >= 0),\n"
	"  last_error text NOT NULL DEFAULT ''\n"
	");\n"
	"CREATE INDEX pending_ops_due ON pending_ops (next_attempt_at);\n"
	"CREATE INDEX pending_ops_device ON pending_ops (device_id);\n"
	"\n"
	"CREATE TABLE maintenance_tasks (\n"
	"  name text NOT NULL PRIMARY KEY CHECK (name <> ''),\n"
	"  last_run bigint NOT NULL DEFAULT 0,\n"
	"  last_result bigint NOT NULL DEFAULT 0 CHECK (last_result >= 0),\n"
	"  last_detail text NOT NULL DEFAULT '',\n"
	"  next_run bigint NOT NULL DEFAULT 0\n"
	");\n",

	/* 1 -> 2: the certificates themselves (see store_migrations.h). */
	"CREATE TABLE certificate_data (\n"
	"  cert_id bigint PRIMARY KEY REFERENCES certificates (id),\n"
	"  der bytea NOT NULL CHECK (octet_length(der) > 0),\n"
	"  chain_pem text NOT NULL DEFAULT ''\n"
	");\n"
	"CREATE TRIGGER certificate_data_keep BEFORE DELETE ON certificate_data FOR EACH ROW\n"
	"  EXECUTE FUNCTION amtprov_refuse('certificate data is never deleted');\n"
	"CREATE TRIGGER certificate_data_keep_all BEFORE TRUNCATE ON certificate_data\n"
	"  FOR EACH STATEMENT EXECUTE FUNCTION amtprov_refuse('certificate data is never deleted');\n",

	/* 2 -> 3: the scheduler's bookkeeping. */
	"ALTER TABLE maintenance_tasks ADD COLUMN interval_seconds bigint NOT NULL DEFAULT 0\n"
	"  CHECK (interval_seconds >= 0);\n"
	"ALTER TABLE maintenance_tasks ADD COLUMN requests bigint NOT NULL DEFAULT 0\n"
	"  CHECK (requests >= 0);\n"
	"ALTER TABLE maintenance_tasks ADD COLUMN served bigint NOT NULL DEFAULT 0\n"
	"  CHECK (served >= 0);\n",

	/* 3 -> 4: the crash-loop guard. */
	"ALTER TABLE devices ADD COLUMN in_flight bigint NOT NULL DEFAULT 0\n"
	"  CHECK (in_flight >= 0);\n",

	/* 4 -> 5: device leases. */
	"ALTER TABLE devices ADD COLUMN lease_owner text NOT NULL DEFAULT '';\n"
	"ALTER TABLE devices ADD COLUMN lease_until bigint NOT NULL DEFAULT 0;\n"
	"CREATE INDEX devices_lease ON devices (lease_owner);\n",

	/* 5 -> 6: maintenance task leases. */
	"ALTER TABLE maintenance_tasks ADD COLUMN lease_owner text NOT NULL DEFAULT '';\n"
	"ALTER TABLE maintenance_tasks ADD COLUMN lease_until bigint NOT NULL DEFAULT 0;\n",
};

/* Tables every schema at STORE_SCHEMA_VERSION has (store_check looks for each). */
static const char *const store_pg_tables[] = {
	"amtprov_schema", "devices",   "certificates",      "status_messages",
	"audit",          "pending_ops", "maintenance_tasks", "certificate_data",
};

#endif /* AMTPROV_CORE_STORE_MIGRATIONS_PG_H */
