/* SPDX-License-Identifier: Apache-2.0 */
/*
 * credstore_pg.c - "credstore-pg": the site's secrets in PostgreSQL, so every amtprovd host
 * of a multi-host site reads the same records (issue 16; R-ACC-02). docs/credstore-pg.md.
 *
 * Each record is sealed with AES-256-GCM (cpg_crypt.c) under a 256-bit key that the
 * database never sees: it comes from a key file (mode 0600, owned by the amtprov user) or
 * an environment variable, both named in the manifest. The table holds the record name,
 * the record format, the id (a public fingerprint) of the key that sealed it, the nonce,
 * the tag and the ciphertext. A put is one INSERT ... ON CONFLICT DO UPDATE (an upsert:
 * hosts writing the same record at once leave one whole record, the last commit's), durable
 * when it returns (the server's COMMIT, synchronous_commit on).
 *
 * The table lives in its own PostgreSQL schema (default "amtprov_credstore"), created by
 * the plugin the first time it connects, under an advisory lock so hosts starting together
 * create it once. Its own schema keeps it out of the site database's migrations (which see
 * only their own schema's tables), and the same plugin can use a database of its own.
 *
 * create() validates the configuration and reads the keys and the password file (no
 * network, so `amtprov manifest check` reports a bad key); the connection is opened by
 * start() or by the first call, and opened again after the server dropped it. Calls on one
 * instance are serialised by the core (no AMTPROV_PLUGIN_THREAD_SAFE).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include <amtprov/credstore.h>

#include "cpg_int.h"

#define SCHEMA_DEFAULT "amtprov_credstore"
#define SCHEMA_MAX 48
#define PASSWORD_MAX 1024
/* Any constant: the advisory lock that serialises creating the table between hosts. */
#define CREATE_LOCK_KEY 0x616d7463 /* "amtc" */

#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_TEXT 25

struct cpg_cfg {
	char *url;
	char *password_file;
	char *key_file;
	char *key_env;
	char *old_key_file;
	char *old_key_env;
	char *schema;
};

struct cpg {
	const struct amtprov_host *host;
	struct cpg_cfg cfg;
	struct cpg_key *key;     /* current key: seals every write (OPENSSL_zalloc'd) */
	struct cpg_key *old;     /* previous key, read-only, for rotation; may be NULL */
	const char *key_field;   /* "key_file" or "key_env": named in messages */
	struct amtprov_secret *password; /* from password_file, or NULL */
	PGconn *c;
	int table_ok; /* the table was seen or created on this connection's server */
	char sql_get[256], sql_put[512], sql_del[160], sql_list[160], sql_old[256],
		sql_upd[256], table[SCHEMA_MAX + 16];
};

static const struct amtprov_config_field cpg_table[] = {
	{"url", AMTPROV_CFG_STRING, offsetof(struct cpg_cfg, url), 1, NULL, 0, 0,
	 "libpq URI or conninfo of the database (usually the site's database.url); no password"},
	{"password_file", AMTPROV_CFG_STRING, offsetof(struct cpg_cfg, password_file), 0, NULL,
	 0, 0, "file holding only the database password (mode 0600); or use PGPASSFILE"},
	{"key_file", AMTPROV_CFG_STRING, offsetof(struct cpg_cfg, key_file), 0, NULL, 0, 0,
	 "file with the 256-bit key (64 hex digits, 44 base64 characters or 32 bytes; mode "
	 "0600); every host needs the same key"},
	{"key_env", AMTPROV_CFG_STRING, offsetof(struct cpg_cfg, key_env), 0, NULL, 0, 0,
	 "name of the environment variable holding the key (hex or base64), instead of "
	 "key_file"},
	{"old_key_file", AMTPROV_CFG_STRING, offsetof(struct cpg_cfg, old_key_file), 0, NULL, 0,
	 0, "the previous key while rotating: records sealed with it stay readable"},
	{"old_key_env", AMTPROV_CFG_STRING, offsetof(struct cpg_cfg, old_key_env), 0, NULL, 0, 0,
	 "the previous key from the environment, instead of old_key_file"},
	{"schema", AMTPROV_CFG_STRING, offsetof(struct cpg_cfg, schema), 0, SCHEMA_DEFAULT, 0, 0,
	 "PostgreSQL schema of the records table (created when missing)"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

/* ---- files and keys ---- */

/*
 * Reads a secret file: a regular file (links are followed: a systemd credential or a
 * mounted secret is fine), owned by the user amtprov runs as, with no group or other
 * permission bits. The buffer is secret: release it with OPENSSL_clear_free(buf, max + 1).
 */
static int read_secret_file(const char *path, const char *field, size_t max, unsigned char **out,
			    size_t *len, struct amtprov_error *err)
{
	unsigned char *buf;
	struct stat sb;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return amtprov_error_set(err, errno == ENOENT ? AMTPROV_E_NOT_FOUND : AMTPROV_E_IO,
					 field, "%s %s: %s", field, path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return amtprov_error_set(err, AMTPROV_E_CONFIG, field, "%s %s is not a regular file",
					 field, path);
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return amtprov_error_set(err, AMTPROV_E_DENIED, field,
					 "%s: chmod 600 %s (its mode %04o lets others read it)",
					 field, path, (unsigned)(sb.st_mode & 07777));
	}
	if (sb.st_uid != geteuid()) {
		close(fd);
		return amtprov_error_set(err, AMTPROV_E_DENIED, field,
					 "%s: %s is owned by uid %u, not by the user amtprov runs "
					 "as (uid %u)",
					 field, path, (unsigned)sb.st_uid, (unsigned)geteuid());
	}
	buf = OPENSSL_zalloc(max + 1);
	if (!buf) {
		close(fd);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, field, "out of memory");
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, max + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			close(fd);
			OPENSSL_clear_free(buf, max + 1);
			return amtprov_error_set(err, AMTPROV_E_IO, field, "%s %s: %s", field, path,
						 strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			close(fd);
			OPENSSL_clear_free(buf, max + 1);
			return amtprov_error_set(err, AMTPROV_E_CONFIG, field,
						 "%s %s is larger than %zu bytes", field, path, max);
		}
	}
	close(fd);
	*out = buf;
	*len = n;
	return AMTPROV_OK;
}

/* One key from exactly one of @p file (field @p ffield) and @p env (field @p efield). */
static int load_key(const char *file, const char *ffield, const char *env, const char *efield,
		    struct cpg_key **out, struct amtprov_error *err)
{
	struct cpg_key *k;
	char what[600];
	int rc;

	if (file && env)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, efield, "give %s or %s, not both",
					 ffield, efield);
	if (file && !*file)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, ffield, "must not be empty");
	k = OPENSSL_zalloc(sizeof(*k));
	if (!k)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, ffield, "out of memory");
	if (file) {
		unsigned char *buf = NULL;
		size_t len = 0;

		rc = read_secret_file(file, ffield, CPG_KEY_FILE_MAX, &buf, &len, err);
		if (rc == AMTPROV_OK) {
			snprintf(what, sizeof(what), "%s %s", ffield, file);
			rc = cpg_key_parse(buf, len, 1, what, k, err);
			OPENSSL_clear_free(buf, CPG_KEY_FILE_MAX + 1);
		}
		if (err && rc != AMTPROV_OK && !err->where[0])
			snprintf(err->where, sizeof(err->where), "%s", ffield);
	} else {
		const char *v = getenv(env);

		if (!*env) {
			rc = amtprov_error_set(err, AMTPROV_E_CONFIG, efield, "must not be empty");
		} else if (!v || !*v) {
			rc = amtprov_error_set(err, AMTPROV_E_CONFIG, efield,
					       "environment variable %s (%s) is not set or empty",
					       env, efield);
		} else {
			snprintf(what, sizeof(what), "environment variable %s (%s)", env, efield);
			rc = cpg_key_parse((const unsigned char *)v, strlen(v), 0, what, k, err);
			if (err && rc != AMTPROV_OK)
				snprintf(err->where, sizeof(err->where), "%s", efield);
		}
	}
	if (rc != AMTPROV_OK) {
		OPENSSL_clear_free(k, sizeof(*k));
		return rc;
	}
	*out = k;
	return AMTPROV_OK;
}

static int load_password(struct cpg *cp, struct amtprov_error *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = read_secret_file(cp->cfg.password_file, "password_file", PASSWORD_MAX, &buf,
				  &len, err);

	if (rc != AMTPROV_OK)
		return rc;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == 0 || memchr(buf, '\0', len) || memchr(buf, '\n', len))
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "password_file",
				       "password_file %s must hold the password on one line, "
				       "and nothing else",
				       cp->cfg.password_file);
	else if (!(cp->password = cp->host->secret_new(cp->host, len)))
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, "password_file", "out of memory");
	else
		memcpy(cp->password->data, buf, len);
	OPENSSL_clear_free(buf, PASSWORD_MAX + 1);
	return rc;
}

/* ---- the connection ---- */

/* One line of libpq's message. */
static void first_line(char *out, size_t size, const char *msg)
{
	size_t n = 0;

	if (!msg)
		msg = "";
	while (msg[n] && msg[n] != '\n' && n + 1 < size)
		n++;
	memcpy(out, msg, n);
	out[n] = '\0';
}

static void drop_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static int db_fail(struct cpg *cp, const PGresult *r, const char *where, const char *what,
		   struct amtprov_error *err)
{
	char msg[AMTPROV_ERROR_MSG_SIZE];
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	first_line(msg, sizeof(msg),
		   r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
						   : (cp->c ? PQerrorMessage(cp->c) : "no connection"));
	if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
		      !strcmp(state, "55P03") || !strcmp(state, "57014")))
		return amtprov_error_set(err, AMTPROV_E_BUSY, where,
					 "credential store: %s: the database is busy (%s)", what, msg);
	return amtprov_error_set(err, AMTPROV_E_IO, where, "credential store: %s: %s", what, msg);
}

static PGresult *exec_params(struct cpg *cp, const char *sql, int n, const Oid *types,
			     const char *const *vals, const int *lens, const int *fmts,
			     int binary)
{
	return PQexecParams(cp->c, sql, n, types, vals, lens, fmts, binary);
}

static int exec_simple(struct cpg *cp, const char *sql, ExecStatusType want, const char *what,
		       struct amtprov_error *err)
{
	PGresult *r = PQexec(cp->c, sql);
	int rc = AMTPROV_OK;

	if (!r || PQresultStatus(r) != want)
		rc = db_fail(cp, r, "url", what, err);
	PQclear(r);
	return rc;
}

/* Creates the schema and the table when missing: once, under an advisory lock. */
static int ensure_table(struct cpg *cp, struct amtprov_error *err)
{
	const Oid t[1] = {OID_TEXT};
	const char *v[1] = {cp->table};
	char sql[1024];
	PGresult *r;
	int rc, have;

	r = exec_params(cp, "SELECT to_regclass($1) IS NOT NULL", 1, t, v, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = db_fail(cp, r, "url", "looking for its table", err);
		PQclear(r);
		return rc;
	}
	have = !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	if (have)
		return AMTPROV_OK;
	rc = exec_simple(cp, "BEGIN", PGRES_COMMAND_OK, "creating its table", err);
	if (rc != AMTPROV_OK)
		return rc;
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%d)", CREATE_LOCK_KEY);
	rc = exec_simple(cp, sql, PGRES_TUPLES_OK, "creating its table", err);
	if (rc == AMTPROV_OK) {
		/* CREATE SCHEMA IF NOT EXISTS needs the CREATE right even when the schema exists:
		 * an administrator may have made it and granted only its use. */
		v[0] = cp->cfg.schema;
		r = exec_params(cp, "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1",
				1, t, v, NULL, NULL, 0);
		if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
			rc = db_fail(cp, r, "url", "creating its table", err);
		else if (!strcmp(PQgetvalue(r, 0, 0), "0")) {
			snprintf(sql, sizeof(sql), "CREATE SCHEMA \"%s\"", cp->cfg.schema);
			rc = exec_simple(cp, sql, PGRES_COMMAND_OK, "creating its schema", err);
		}
		PQclear(r);
	}
	if (rc == AMTPROV_OK) {
		snprintf(sql, sizeof(sql),
			 "CREATE TABLE IF NOT EXISTS %s ("
			 " name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._/-]{1,128}$'),"
			 " format smallint NOT NULL,"
			 " key_id bigint NOT NULL CHECK (key_id > 0 AND key_id < 4294967296),"
			 " nonce bytea NOT NULL CHECK (octet_length(nonce) = %d),"
			 " tag bytea NOT NULL CHECK (octet_length(tag) = %d),"
			 " ciphertext bytea NOT NULL,"
			 " updated_at timestamptz NOT NULL DEFAULT now())",
			 cp->table, CPG_NONCE_LEN, CPG_TAG_LEN);
		rc = exec_simple(cp, sql, PGRES_COMMAND_OK, "creating its table", err);
	}
	if (rc == AMTPROV_OK) {
		snprintf(sql, sizeof(sql),
			 "COMMENT ON TABLE %s IS 'amtprov credstore-pg: AES-256-GCM sealed records "
			 "(format 1); the key is never stored in the database'",
			 cp->table);
		rc = exec_simple(cp, sql, PGRES_COMMAND_OK, "creating its table", err);
	}
	if (rc == AMTPROV_OK)
		rc = exec_simple(cp, "COMMIT", PGRES_COMMAND_OK, "creating its table", err);
	if (rc != AMTPROV_OK) {
		PGresult *rb = PQexec(cp->c, "ROLLBACK");

		PQclear(rb);
		return rc;
	}
	cp->host->log(cp->host, AMTPROV_LOG_NOTICE, "created the credential table %s",
		      cp->table);
	return AMTPROV_OK;
}

/* A live connection with the table in place: opened now, or again after the server or the
 * network dropped it. */
static int ensure_conn(struct cpg *cp, struct amtprov_error *err)
{
	const char *keys[] = {"fallback_application_name", "connect_timeout", "dbname",
			      cp->password ? "password" : NULL, NULL};
	const char *vals[] = {"amtprov-credstore", "10", cp->cfg.url,
			      cp->password ? cp->password->data : NULL, NULL};
	char msg[AMTPROV_ERROR_MSG_SIZE];
	int rc;

	if (cp->c && PQstatus(cp->c) == CONNECTION_OK)
		return AMTPROV_OK;
	if (cp->c) {
		cp->host->log(cp->host, AMTPROV_LOG_WARNING,
			      "credential store: connection lost, reconnecting");
		PQreset(cp->c);
	} else {
		cp->c = PQconnectdbParams(keys, vals, 1);
	}
	if (!cp->c || PQstatus(cp->c) != CONNECTION_OK) {
		first_line(msg, sizeof(msg), cp->c ? PQerrorMessage(cp->c) : "out of memory");
		PQfinish(cp->c);
		cp->c = NULL;
		return amtprov_error_set(err, AMTPROV_E_UNREACHABLE, "url",
					 "credential store: cannot connect to the database: %s",
					 msg);
	}
	PQsetNoticeProcessor(cp->c, drop_notice, NULL);
	cp->table_ok = 0;
	rc = ensure_table(cp, err);
	if (rc == AMTPROV_OK)
		cp->table_ok = 1;
	return rc;
}

/*
 * Runs one statement (its own transaction unless one is open) on a live connection. A
 * connection found dead is opened again and the statement run once more: every statement
 * here is safe to repeat.
 */
static PGresult *run(struct cpg *cp, const char *sql, int n, const Oid *types,
		     const char *const *vals, const int *lens, const int *fmts, int binary,
		     ExecStatusType want, const char *where, const char *what,
		     struct amtprov_error *err)
{
	PGresult *r = NULL;

	for (int attempt = 0; attempt < 2; attempt++) {
		int in_tx = cp->c && PQtransactionStatus(cp->c) != PQTRANS_IDLE;

		PQclear(r);
		r = NULL;
		if (!in_tx && ensure_conn(cp, err) != AMTPROV_OK)
			return NULL;
		r = exec_params(cp, sql, n, types, vals, lens, fmts, binary);
		if (r && PQresultStatus(r) == want)
			return r;
		if (in_tx || PQstatus(cp->c) == CONNECTION_OK)
			break;
	}
	db_fail(cp, r, where, what, err);
	PQclear(r);
	return NULL;
}

/* ---- instance ---- */

static void cpg_destroy(void *instance)
{
	struct cpg *cp = instance;

	if (!cp)
		return;
	PQfinish(cp->c);
	OPENSSL_clear_free(cp->key, sizeof(*cp->key));
	OPENSSL_clear_free(cp->old, sizeof(*cp->old));
	cp->host->secret_free(cp->host, cp->password);
	cp->host->config_free(cp->host, cpg_table, &cp->cfg);
	free(cp);
}

static int schema_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SCHEMA_MAX || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return strncmp(s, "pg_", 3) != 0;
}

static int check_url(const char *url, struct amtprov_error *err)
{
	char *perr = NULL;
	char msg[256];
	int rc = AMTPROV_OK;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);

	if (!opts) {
		first_line(msg, sizeof(msg), perr ? perr : "cannot parse it");
		PQfreemem(perr);
		/* libpq's message names the offending part; never the URL (it may hold a
		 * password). */
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "url", "%s", msg);
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, "password") && o->val && o->val[0])
			rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "url",
					       "holds a password; secrets never go in the "
					       "manifest: use password_file or a libpq password "
					       "file (PGPASSFILE, passfile=) instead");
	PQconninfoFree(opts);
	return rc;
}

static void build_sql(struct cpg *cp)
{
	const char *t = cp->table;

	snprintf(cp->sql_get, sizeof(cp->sql_get),
		 "SELECT format, key_id, nonce, tag, ciphertext FROM %s WHERE name = $1", t);
	snprintf(cp->sql_put, sizeof(cp->sql_put),
		 "INSERT INTO %s (name, format, key_id, nonce, tag, ciphertext, updated_at) "
		 "VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (name) DO UPDATE SET "
		 "format = EXCLUDED.format, key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, "
		 "tag = EXCLUDED.tag, ciphertext = EXCLUDED.ciphertext, updated_at = now()",
		 t);
	snprintf(cp->sql_del, sizeof(cp->sql_del), "DELETE FROM %s WHERE name = $1", t);
	snprintf(cp->sql_list, sizeof(cp->sql_list), "SELECT name FROM %s ORDER BY name", t);
	snprintf(cp->sql_old, sizeof(cp->sql_old),
		 "SELECT format, key_id, nonce, tag, ciphertext, name FROM %s WHERE key_id <> $1 "
		 "ORDER BY name FOR UPDATE",
		 t);
	snprintf(cp->sql_upd, sizeof(cp->sql_upd),
		 "UPDATE %s SET format = $2, key_id = $3, nonce = $4, tag = $5, ciphertext = $6, "
		 "updated_at = now() WHERE name = $1",
		 t);
}

static int cpg_create(const struct amtprov_host *host, const struct json_t *config,
		      void **instance, struct amtprov_error *err)
{
	struct cpg *cp = calloc(1, sizeof(*cp));
	int rc;

	if (!cp)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	cp->host = host;
	rc = host->config_parse(host, config, cpg_table, &cp->cfg, err);
	if (rc != AMTPROV_OK)
		goto fail;
	if (!schema_valid(cp->cfg.schema)) {
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "schema",
				       "must be 1 to %d characters of a-z 0-9 _, starting with a "
				       "letter or _, and not pg_...",
				       SCHEMA_MAX);
		goto fail;
	}
	snprintf(cp->table, sizeof(cp->table), "\"%s\".records", cp->cfg.schema);
	build_sql(cp);
	rc = check_url(cp->cfg.url, err);
	if (rc != AMTPROV_OK)
		goto fail;
	if (!cp->cfg.key_file && !cp->cfg.key_env) {
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "key_file",
				       "no key: give key_file (a 0600 file with 64 hex digits, "
				       "e.g. from 'openssl rand -hex 32') or key_env (the name of "
				       "an environment variable holding it); the key is never "
				       "stored in the database, and every host needs the same one");
		goto fail;
	}
	cp->key_field = cp->cfg.key_file ? "key_file" : "key_env";
	rc = load_key(cp->cfg.key_file, "key_file", cp->cfg.key_env, "key_env", &cp->key, err);
	if (rc == AMTPROV_OK && (cp->cfg.old_key_file || cp->cfg.old_key_env))
		rc = load_key(cp->cfg.old_key_file, "old_key_file", cp->cfg.old_key_env,
			      "old_key_env", &cp->old, err);
	if (rc != AMTPROV_OK)
		goto fail;
	if (cp->old && cp->old->id == cp->key->id) {
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG,
				       cp->cfg.old_key_file ? "old_key_file" : "old_key_env",
				       "the old key is the current key (key %08x)", cp->key->id);
		goto fail;
	}
	if (cp->cfg.password_file && !*cp->cfg.password_file)
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "password_file", "must not be empty");
	else if (cp->cfg.password_file)
		rc = load_password(cp, err);
	if (rc != AMTPROV_OK)
		goto fail;
	host->log(host, AMTPROV_LOG_DEBUG, "credential store in %s, key %08x from %s%s",
		  cp->table, cp->key->id, cp->key_field, cp->old ? ", with an old key" : "");
	*instance = cp;
	return AMTPROV_OK;
fail:
	cpg_destroy(cp);
	return rc;
}

static int cpg_start(void *instance, struct amtprov_error *err)
{
	return ensure_conn(instance, err);
}

static void cpg_stop(void *instance)
{
	struct cpg *cp = instance;

	PQfinish(cp->c);
	cp->c = NULL;
}

/* ---- operations ---- */

static int check_name(const char *name, struct amtprov_error *err)
{
	char shown[41];
	size_t i = 0;

	if (cpg_name_valid(name))
		return AMTPROV_OK;
	/* Untrusted: a short printable prefix, so a control character cannot forge log lines. */
	for (; name && name[i] && i < sizeof(shown) - 1; i++)
		shown[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
	shown[i] = '\0';
	return amtprov_error_set(err, AMTPROV_E_INVALID, NULL,
				 "invalid record name '%s'%s: use 1 to %d characters of "
				 "A-Z a-z 0-9 . _ / -",
				 name ? shown : "(null)", name && name[i] ? "..." : "", CPG_NAME_MAX);
}

static uint64_t be(const char *p, int len)
{
	uint64_t v = 0;

	for (int i = 0; i < len; i++)
		v = v << 8 | (unsigned char)p[i];
	return v;
}

/* Reads row @p row of a binary result (format, key_id, nonce, tag, ciphertext): the
 * ciphertext is borrowed from @p r. */
static int row_sealed(const PGresult *r, int row, const char *name, struct cpg_sealed *s,
		      struct amtprov_error *err)
{
	memset(s, 0, sizeof(*s));
	if (PQgetlength(r, row, 0) != 2 || PQgetlength(r, row, 1) != 8 ||
	    PQgetlength(r, row, 2) != CPG_NONCE_LEN || PQgetlength(r, row, 3) != CPG_TAG_LEN ||
	    (size_t)PQgetlength(r, row, 4) > CPG_VALUE_MAX)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, name,
					 "record '%s' is damaged (bad field sizes)", name);
	s->format = (int)be(PQgetvalue(r, row, 0), 2);
	s->key_id = (uint32_t)be(PQgetvalue(r, row, 1), 8);
	memcpy(s->nonce, PQgetvalue(r, row, 2), CPG_NONCE_LEN);
	memcpy(s->tag, PQgetvalue(r, row, 3), CPG_TAG_LEN);
	s->ct = (unsigned char *)PQgetvalue(r, row, 4);
	s->ct_len = (size_t)PQgetlength(r, row, 4);
	return AMTPROV_OK;
}

/* The key that sealed @p s, or an E_VERIFY naming the record and the configured key. */
static const struct cpg_key *key_for(struct cpg *cp, const char *name, const struct cpg_sealed *s,
				     struct amtprov_error *err)
{
	if (s->key_id == cp->key->id)
		return cp->key;
	if (cp->old && s->key_id == cp->old->id)
		return cp->old;
	amtprov_error_set(err, AMTPROV_E_VERIFY, name,
			  "record '%s' is sealed with key %08x, but this instance's key (%s) is "
			  "%08x%s: every host needs the same key",
			  name, s->key_id, cp->key_field, cp->key->id,
			  cp->old ? " and its old key is another" : "");
	cp->host->log(cp->host, AMTPROV_LOG_WARNING, "record '%s': sealed with key %08x, not %08x",
		      name, s->key_id, cp->key->id);
	return NULL;
}

/* Decrypts row @p row of @p r (record @p name) into a new secret. */
static int open_row(struct cpg *cp, const PGresult *r, int row, const char *name,
		    struct amtprov_secret **out, struct amtprov_error *err)
{
	const struct cpg_key *k;
	struct amtprov_secret *s;
	struct cpg_sealed sealed;
	int rc = row_sealed(r, row, name, &sealed, err);

	if (rc != AMTPROV_OK)
		return rc;
	if (!(k = key_for(cp, name, &sealed, err)))
		return AMTPROV_E_VERIFY;
	s = cp->host->secret_new(cp->host, sealed.ct_len);
	if (!s)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, name, "out of memory");
	rc = cpg_open(k, name, &sealed, (unsigned char *)s->data, err);
	if (rc != AMTPROV_OK) {
		cp->host->log(cp->host, AMTPROV_LOG_WARNING, "record '%s' failed authentication",
			      name);
		cp->host->secret_free(cp->host, s);
		return rc;
	}
	*out = s;
	return AMTPROV_OK;
}

/* Runs @p sql with the one parameter @p name (checked first); NULL with *rc set on failure. */
static PGresult *run_named(struct cpg *cp, const char *sql, const char *name, int binary,
			   ExecStatusType want, const char *what, int *rc,
			   struct amtprov_error *err)
{
	const Oid t[1] = {OID_TEXT};
	const char *v[1] = {name};
	PGresult *r;

	*rc = check_name(name, err);
	if (*rc != AMTPROV_OK)
		return NULL;
	r = run(cp, sql, 1, t, v, NULL, NULL, binary, want, name, what, err);
	if (!r)
		*rc = err && err->code ? err->code : AMTPROV_E_IO;
	return r;
}

static int cpg_get(void *instance, const char *name, struct amtprov_secret **out,
		   struct amtprov_error *err)
{
	struct cpg *cp = instance;
	int rc;
	PGresult *r = run_named(cp, cp->sql_get, name, 1, PGRES_TUPLES_OK, "reading a record",
				&rc, err);

	if (!r)
		return rc;
	if (PQntuples(r) == 0)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, name, "no record '%s' in %s", name,
				       cp->table);
	else
		rc = open_row(cp, r, 0, name, out, err);
	PQclear(r);
	if (rc == AMTPROV_OK)
		cp->host->log(cp->host, AMTPROV_LOG_DEBUG, "read record '%s'", name);
	return rc;
}

/* Writes @p s as record @p name with @p sql (sql_put or sql_upd: the same parameters). */
static int write_sealed(struct cpg *cp, const char *sql, const char *name,
			const struct cpg_sealed *s, struct amtprov_error *err)
{
	const Oid t[6] = {OID_TEXT, OID_INT2, OID_INT8, OID_BYTEA, OID_BYTEA, OID_BYTEA};
	char fmt[8], kid[16];
	const char *v[6] = {name, fmt, kid, (const char *)s->nonce, (const char *)s->tag,
			    (const char *)s->ct};
	const int lens[6] = {0, 0, 0, CPG_NONCE_LEN, CPG_TAG_LEN, (int)s->ct_len};
	const int fmts[6] = {0, 0, 0, 1, 1, 1};
	PGresult *r;

	snprintf(fmt, sizeof(fmt), "%d", s->format);
	snprintf(kid, sizeof(kid), "%lu", (unsigned long)s->key_id);
	r = run(cp, sql, 6, t, v, lens, fmts, 0, PGRES_COMMAND_OK, name, "writing a record", err);
	if (!r)
		return err ? err->code : AMTPROV_E_IO;
	PQclear(r);
	return AMTPROV_OK;
}

static int cpg_put(void *instance, const char *name, const struct amtprov_secret *value,
		   struct amtprov_error *err)
{
	struct cpg *cp = instance;
	struct cpg_sealed s;
	int rc = check_name(name, err);

	if (rc != AMTPROV_OK)
		return rc;
	if (!value || (!value->data && value->len))
		return amtprov_error_set(err, AMTPROV_E_INVALID, name, "no value for record '%s'",
					 name);
	if (value->len > CPG_VALUE_MAX)
		return amtprov_error_set(err, AMTPROV_E_INVALID, name,
					 "value for record '%s' is too large (%zu bytes; at most %u)",
					 name, value->len, CPG_VALUE_MAX);
	rc = cpg_seal(cp->key, name, (const unsigned char *)value->data, value->len, &s, err);
	if (rc != AMTPROV_OK)
		return rc;
	rc = write_sealed(cp, cp->sql_put, name, &s, err);
	free(s.ct);
	if (rc == AMTPROV_OK)
		cp->host->log(cp->host, AMTPROV_LOG_DEBUG, "stored record '%s'", name);
	return rc;
}

static int cpg_remove(void *instance, const char *name, struct amtprov_error *err)
{
	struct cpg *cp = instance;
	int rc;
	PGresult *r = run_named(cp, cp->sql_del, name, 0, PGRES_COMMAND_OK, "removing a record",
				&rc, err);

	if (!r)
		return rc;
	if (!strcmp(PQcmdTuples(r), "0"))
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, name, "no record '%s' in %s", name,
				       cp->table);
	else
		cp->host->log(cp->host, AMTPROV_LOG_DEBUG, "removed record '%s'", name);
	PQclear(r);
	return rc;
}

static int cpg_list(void *instance, amtprov_credstore_name_cb cb, void *ctx,
		    struct amtprov_error *err)
{
	struct cpg *cp = instance;
	char (*names)[CPG_NAME_MAX + 1] = NULL;
	PGresult *r;
	int n;

	if (!cb)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no callback");
	r = run(cp, cp->sql_list, 0, NULL, NULL, NULL, NULL, 0, PGRES_TUPLES_OK, "url",
		"listing records", err);
	if (!r)
		return err ? err->code : AMTPROV_E_IO;
	n = PQntuples(r);
	if (n > 0 && !(names = calloc((size_t)n, sizeof(*names)))) {
		PQclear(r);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	for (int i = 0; i < n; i++)
		snprintf(names[i], sizeof(names[i]), "%s", PQgetvalue(r, i, 0));
	PQclear(r);
	/* The result is gone before the callback runs: it may call back into the store. */
	for (int i = 0; i < n; i++)
		if (cb(ctx, names[i]))
			break;
	free(names);
	return AMTPROV_OK;
}

/*
 * Re-seals, in one transaction, every record not sealed with the current key: each must be
 * sealed with the old key (old_key_file / old_key_env), else nothing changes. The rows are
 * locked (FOR UPDATE), so a host writing meanwhile waits and then writes under its own key.
 */
static int cpg_rotate_key(void *instance, struct amtprov_error *err)
{
	struct cpg *cp = instance;
	const Oid t[1] = {OID_INT8};
	char kid[16];
	const char *v[1] = {kid};
	PGresult *r = NULL;
	int rc, n = 0;

	snprintf(kid, sizeof(kid), "%lu", (unsigned long)cp->key->id);
	rc = ensure_conn(cp, err);
	if (rc == AMTPROV_OK)
		rc = exec_simple(cp, "BEGIN", PGRES_COMMAND_OK, "starting a rotation", err);
	if (rc != AMTPROV_OK)
		return rc;
	r = run(cp, cp->sql_old, 1, t, v, NULL, NULL, 1, PGRES_TUPLES_OK, "url",
		"reading the records to rotate", err);
	if (!r)
		rc = err ? err->code : AMTPROV_E_IO;
	n = r ? PQntuples(r) : 0;
	for (int i = 0; rc == AMTPROV_OK && i < n; i++) {
		char name[CPG_NAME_MAX + 1];
		struct amtprov_secret *s = NULL;
		struct cpg_sealed ns;

		snprintf(name, sizeof(name), "%s", PQgetvalue(r, i, 5));
		rc = open_row(cp, r, i, name, &s, err);
		if (rc == AMTPROV_OK) {
			rc = cpg_seal(cp->key, name, (const unsigned char *)s->data, s->len, &ns,
				      err);
			cp->host->secret_free(cp->host, s);
		}
		if (rc == AMTPROV_OK) {
			rc = write_sealed(cp, cp->sql_upd, name, &ns, err);
			free(ns.ct);
		}
	}
	PQclear(r);
	if (rc == AMTPROV_OK)
		rc = exec_simple(cp, "COMMIT", PGRES_COMMAND_OK, "finishing a rotation", err);
	if (rc != AMTPROV_OK) {
		PQclear(PQexec(cp->c, "ROLLBACK"));
		cp->host->log(cp->host, AMTPROV_LOG_ERROR,
			      "key rotation of %s failed; nothing was changed", cp->table);
		return rc;
	}
	cp->host->log(cp->host, AMTPROV_LOG_NOTICE,
		      "rotated %s: %d record(s) resealed with key %08x; the old key may now be "
		      "removed from the configuration",
		      cp->table, n, cp->key->id);
	return AMTPROV_OK;
}

static const struct amtprov_credstore_ops cpg_ops = {
	.struct_size = sizeof(struct amtprov_credstore_ops),
	.start = cpg_start,
	.stop = cpg_stop,
	.get = cpg_get,
	.put = cpg_put,
	.remove = cpg_remove,
	.list = cpg_list,
	.rotate_key = cpg_rotate_key,
};

static const char *const cpg_caps[] = {AMTPROV_CAP_CREDSTORE_ROTATE, NULL};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_CREDSTORE, .name = "credstore-pg",
		      .version = "1.0.0",
		      .description = "credential store in PostgreSQL, AES-256-GCM sealed records "
				     "shared by every host of a site",
		      .capabilities = cpg_caps, .create = cpg_create, .destroy = cpg_destroy,
		      .ops = &cpg_ops, .config_table = cpg_table);
