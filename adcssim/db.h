/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db.h - the CA database (SQLite, WAL): one row per request, like AD CS's request table.
 * The server and `adcssim admin` open it at the same time.
 */
#ifndef ADCSSIM_DB_H
#define ADCSSIM_DB_H

#include <stddef.h>

#include <sqlite3.h>

/* Request_Disposition values certutil shows [MS-WCCE 3.2.1.4.2.1.3]. */
enum req_status { REQ_DENIED = 2, REQ_ISSUED = 3, REQ_PENDING = 5, REQ_REVOKED = 6 };

struct db_req {
	long id;
	int status;
	char template_name[64];
	char requester[64];
	char serial[80];
	char disposition[256];
	long hresult;
	int revoked_reason;
	long long revoked_at, submitted_at;
	unsigned char *csr, *cert; /* DER; malloc'd */
	size_t csr_len, cert_len;
	unsigned char *subject;    /* DER X509_NAME for the certificate, kept for pending requests */
	size_t subject_len;
};

struct db;

struct db *db_open(const char *path, char *err, size_t errsz);
void db_close(struct db *d);
void db_req_free(struct db_req *r);
/* Inserts a request and sets r->id. */
int db_insert(struct db *d, struct db_req *r);
int db_update(struct db *d, const struct db_req *r);
/* 0 found, 1 not found, -1 error. */
int db_get(struct db *d, long id, struct db_req *r);
int db_get_by_serial(struct db *d, const char *serial, struct db_req *r);
/* Calls fn for every row (status filter 0 = all). */
int db_each(struct db *d, int status, int (*fn)(void *ctx, const struct db_req *r), void *ctx);

#endif
