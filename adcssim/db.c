/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db.c - SQLite storage of the CA's requests. WAL and a busy timeout make the admin CLI
 * safe to run while the server writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "db.h"

struct db {
	sqlite3 *h;
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS requests("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, status INTEGER NOT NULL,"
	" template TEXT NOT NULL, requester TEXT NOT NULL, serial TEXT,"
	" disposition TEXT NOT NULL, hresult INTEGER NOT NULL DEFAULT 0,"
	" revoked_reason INTEGER NOT NULL DEFAULT 0, revoked_at INTEGER NOT NULL DEFAULT 0,"
	" submitted_at INTEGER NOT NULL, csr BLOB, cert BLOB, subject BLOB);"
	"CREATE UNIQUE INDEX IF NOT EXISTS requests_serial ON requests(serial);";

struct db *db_open(const char *path, char *err, size_t errsz)
{
	struct db *d = calloc(1, sizeof(*d));
	char *msg = NULL;

	if (!d) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK)
		goto fail;
	chmod(path, 0600);
	sqlite3_busy_timeout(d->h, 10000);
	if (sqlite3_exec(d->h, "PRAGMA journal_mode=WAL;", NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(d->h, schema, NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	return d;
fail:
	snprintf(err, errsz, "%s: %s", path, msg ? msg : sqlite3_errmsg(d->h));
	sqlite3_free(msg);
	sqlite3_close(d->h);
	free(d);
	return NULL;
}

void db_close(struct db *d)
{
	if (d) {
		sqlite3_close(d->h);
		free(d);
	}
}

void db_req_free(struct db_req *r)
{
	free(r->csr);
	free(r->cert);
	free(r->subject);
	r->csr = r->cert = r->subject = NULL;
}

static void bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (p && n)
		sqlite3_bind_blob(st, i, p, (int)n, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void bind_fields(sqlite3_stmt *st, const struct db_req *r)
{
	sqlite3_bind_int(st, 1, r->status);
	sqlite3_bind_text(st, 2, r->template_name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, r->requester, -1, SQLITE_TRANSIENT);
	if (r->serial[0])
		sqlite3_bind_text(st, 4, r->serial, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_text(st, 5, r->disposition, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 6, r->hresult);
	sqlite3_bind_int(st, 7, r->revoked_reason);
	sqlite3_bind_int64(st, 8, r->revoked_at);
	sqlite3_bind_int64(st, 9, r->submitted_at);
	bind_blob(st, 10, r->csr, r->csr_len);
	bind_blob(st, 11, r->cert, r->cert_len);
	bind_blob(st, 12, r->subject, r->subject_len);
}

int db_insert(struct db *d, struct db_req *r)
{
	sqlite3_stmt *st;
	int rc;

	if (!r->submitted_at)
		r->submitted_at = (long long)time(NULL);
	if (sqlite3_prepare_v2(d->h,
			       "INSERT INTO requests(status,template,requester,serial,disposition,"
			       "hresult,revoked_reason,revoked_at,submitted_at,csr,cert,subject)"
			       " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	bind_fields(st, r);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	r->id = (long)sqlite3_last_insert_rowid(d->h);
	return 0;
}

int db_update(struct db *d, const struct db_req *r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(d->h,
			       "UPDATE requests SET status=?,template=?,requester=?,serial=?,"
			       "disposition=?,hresult=?,revoked_reason=?,revoked_at=?,submitted_at=?,"
			       "csr=?,cert=?,subject=? WHERE id=?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	bind_fields(st, r);
	sqlite3_bind_int64(st, 13, r->id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE && sqlite3_changes(d->h) == 1 ? 0 : -1;
}

static void *dup_blob(sqlite3_stmt *st, int col, size_t *len)
{
	const void *p = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);
	void *c;

	*len = 0;
	if (!p || n <= 0 || !(c = malloc((size_t)n)))
		return NULL;
	memcpy(c, p, (size_t)n);
	*len = (size_t)n;
	return c;
}

static void text_col(sqlite3_stmt *st, int col, char *dst, size_t dsz)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, dsz, "%s", t ? (const char *)t : "");
}

static void read_row(sqlite3_stmt *st, struct db_req *r)
{
	memset(r, 0, sizeof(*r));
	r->id = (long)sqlite3_column_int64(st, 0);
	r->status = sqlite3_column_int(st, 1);
	text_col(st, 2, r->template_name, sizeof(r->template_name));
	text_col(st, 3, r->requester, sizeof(r->requester));
	text_col(st, 4, r->serial, sizeof(r->serial));
	text_col(st, 5, r->disposition, sizeof(r->disposition));
	r->hresult = (long)sqlite3_column_int64(st, 6);
	r->revoked_reason = sqlite3_column_int(st, 7);
	r->revoked_at = sqlite3_column_int64(st, 8);
	r->submitted_at = sqlite3_column_int64(st, 9);
	r->csr = dup_blob(st, 10, &r->csr_len);
	r->cert = dup_blob(st, 11, &r->cert_len);
	r->subject = dup_blob(st, 12, &r->subject_len);
}

#define COLS "id,status,template,requester,serial,disposition,hresult,revoked_reason," \
	     "revoked_at,submitted_at,csr,cert,subject"

static int get_one(struct db *d, const char *sql, long id, const char *s, struct db_req *r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(d->h, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (s)
		sqlite3_bind_text(st, 1, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_row(st, r);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
}

int db_get(struct db *d, long id, struct db_req *r)
{
	return get_one(d, "SELECT " COLS " FROM requests WHERE id=?", id, NULL, r);
}

int db_get_by_serial(struct db *d, const char *serial, struct db_req *r)
{
	/* certutil compares serials without regard to case of the hex digits. */
	return get_one(d, "SELECT " COLS " FROM requests WHERE lower(serial)=lower(?)", 0, serial,
		       r);
}

int db_each(struct db *d, int status, int (*fn)(void *ctx, const struct db_req *r), void *ctx)
{
	sqlite3_stmt *st;
	struct db_req r;
	int rc, stop = 0;

	if (sqlite3_prepare_v2(d->h, "SELECT " COLS " FROM requests WHERE ?=0 OR status=? ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, status);
	sqlite3_bind_int(st, 2, status);
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_row(st, &r);
		stop = fn(ctx, &r);
		db_req_free(&r);
	}
	sqlite3_finalize(st);
	return stop ? stop : rc == SQLITE_DONE ? 0 : -1;
}
