/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_db.c - the issuance database of ca-local (SQLite, <dir>/issuance.db).
 *
 * Every certificate is recorded before it is handed out (R-PROV-13: an issued certificate is
 * never untracked), with its serial, subject, purpose, validity, status, revocation reason
 * and time, request id and DER. The serial is the primary key, so the database itself
 * refuses a duplicate even if the uniqueness check before signing were skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ca_local.h"

struct cl_db {
	sqlite3 *h;
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS certificates ("
	" serial TEXT PRIMARY KEY NOT NULL,"
	" subject TEXT NOT NULL,"
	" fqdn TEXT,"
	" purpose INTEGER NOT NULL,"
	" not_before INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL,"
	" issued_at INTEGER NOT NULL,"
	" status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),"
	" revocation_reason INTEGER,"
	" revoked_at INTEGER,"
	" request_id TEXT NOT NULL,"
	" der BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta (key, value) VALUES ('crl_number', 0);"
	"PRAGMA user_version = 1;";

static int db_error(struct cl_db *db, struct amtprov_error *err, const char *what)
{
	int ec = sqlite3_errcode(db->h);
	int code = ec == SQLITE_BUSY || ec == SQLITE_LOCKED ? AMTPROV_E_BUSY
		   : ec == SQLITE_CORRUPT || ec == SQLITE_NOTADB ? AMTPROV_E_CORRUPT
								   : AMTPROV_E_IO;

	return amtprov_error_set(err, code, "issuance.db", "%s: %s", what, sqlite3_errmsg(db->h));
}

int cl_db_open(const char *path, struct cl_db **out, struct amtprov_error *err)
{
	struct cl_db *db = calloc(1, sizeof(*db));
	char *msg = NULL;
	int fd, rc;

	if (!db)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CL_NAME, "out of memory");
	/* Create it 0600 ourselves: SQLite would use the umask, and the database holds the
	 * whole issuance history. Its journal files inherit the database's mode. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(db);
		return amtprov_error_set(err, AMTPROV_E_IO, path, "cannot open: %s",
					 strerror(errno));
	}
	close(fd);
	if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = amtprov_error_set(err, AMTPROV_E_IO, path, "cannot open: %s",
				       db->h ? sqlite3_errmsg(db->h) : "out of memory");
		cl_db_close(db);
		return rc;
	}
	sqlite3_busy_timeout(db->h, 5000);
	if (sqlite3_exec(db->h, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", NULL,
			 NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db->h, schema, NULL, NULL, &msg) != SQLITE_OK) {
		rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
				       "cannot prepare the issuance database: %s",
				       msg ? msg : sqlite3_errmsg(db->h));
		sqlite3_free(msg);
		cl_db_close(db);
		return rc;
	}
	*out = db;
	return AMTPROV_OK;
}

void cl_db_close(struct cl_db *db)
{
	if (!db)
		return;
	sqlite3_close(db->h);
	free(db);
}

int cl_db_has_serial(struct cl_db *db, const char *serial, struct amtprov_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db->h, "SELECT 1 FROM certificates WHERE serial = ?", -1, &st,
			       NULL) != SQLITE_OK) {
		db_error(db, err, "cannot look up a serial");
		return -1;
	}
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	db_error(db, err, "cannot look up a serial");
	return -1;
}

int cl_db_insert(struct cl_db *db, const struct cl_db_cert *c, struct amtprov_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db->h,
			       "INSERT INTO certificates (serial, subject, fqdn, purpose, "
			       "not_before, not_after, issued_at, request_id, der) "
			       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(db, err, "cannot record the certificate");
	sqlite3_bind_text(st, 1, c->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->subject, -1, SQLITE_STATIC);
	if (c->fqdn)
		sqlite3_bind_text(st, 3, c->fqdn, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, c->purpose);
	sqlite3_bind_int64(st, 5, c->not_before);
	sqlite3_bind_int64(st, 6, c->not_after);
	sqlite3_bind_int64(st, 7, c->issued_at);
	sqlite3_bind_text(st, 8, c->request_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 9, c->der, (int)c->der_len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(db, err, "cannot record the certificate");
	return AMTPROV_OK;
}

int cl_db_revoke(struct cl_db *db, const char *serial, int reason, int64_t when,
		 int *was_revoked, struct amtprov_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*was_revoked = 0;
	if (sqlite3_prepare_v2(db->h, "SELECT status FROM certificates WHERE serial = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return db_error(db, err, "cannot look up the certificate");
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return AMTPROV_E_NOT_FOUND;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return db_error(db, err, "cannot look up the certificate");
	}
	*was_revoked = strcmp((const char *)sqlite3_column_text(st, 0), "revoked") == 0;
	sqlite3_finalize(st);
	if (*was_revoked)
		return AMTPROV_OK;
	if (sqlite3_prepare_v2(db->h,
			       "UPDATE certificates SET status = 'revoked', revocation_reason = ?,"
			       " revoked_at = ? WHERE serial = ? AND status = 'valid'",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(db, err, "cannot revoke");
	sqlite3_bind_int(st, 1, reason);
	sqlite3_bind_int64(st, 2, when);
	sqlite3_bind_text(st, 3, serial, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(db, err, "cannot revoke");
	return AMTPROV_OK;
}

int cl_db_each_revoked(struct cl_db *db, cl_db_revoked_cb cb, void *ctx,
		       struct amtprov_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db->h,
			       "SELECT serial, revocation_reason, revoked_at FROM certificates "
			       "WHERE status = 'revoked' ORDER BY revoked_at, serial",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(db, err, "cannot list revoked certificates");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cb(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1),
		       sqlite3_column_int64(st, 2)) != 0) {
			sqlite3_finalize(st);
			return amtprov_error_set(err, AMTPROV_E_CRYPTO, CL_NAME,
						 "cannot add a revoked certificate to the CRL");
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(db, err, "cannot list revoked certificates");
	return AMTPROV_OK;
}

int cl_db_next_crl_number(struct cl_db *db, long long *out, struct amtprov_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db->h,
			       "UPDATE meta SET value = value + 1 WHERE key = 'crl_number' "
			       "RETURNING value",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(db, err, "cannot allocate a CRL number");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	/* RETURNING rows are produced before the change is final: step to DONE to commit. */
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(db, err, "cannot allocate a CRL number");
	return AMTPROV_OK;
}

long long cl_db_count(struct cl_db *db)
{
	sqlite3_stmt *st = NULL;
	long long n = -1;

	if (sqlite3_prepare_v2(db->h, "SELECT count(*) FROM certificates", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}
