/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PostgreSQL back end of the site database (libpq), for sites where several amtprovd
 * hosts share one database (docs/database.md, "PostgreSQL").
 *
 * Same contract as store_sqlite.c (store_int.h): every mutating call is one transaction,
 * or a savepoint inside the caller's explicit one (in PostgreSQL a failed statement
 * poisons the whole transaction, so the savepoint is what lets a failing call undo only
 * itself). Compare-and-set state changes are UPDATE ... WHERE state = $from, which under
 * READ COMMITTED waits for a concurrent writer of the row and then re-checks the
 * condition: two hosts can never both move one device. Durability is the server's: a
 * COMMIT returns once its WAL record is flushed (synchronous_commit = on, the default).
 *
 * All SQL text is constant; data only travels in parameters. Results are read whole and
 * cleared before any callback runs, so callbacks may call any store function.
 *
 * The connection string comes from the manifest (database.url) and never holds a password
 * (refused here and by the manifest): it comes from database.password_file (a file holding
 * only the password, read at each connect, handed to libpq as a parameter and wiped), or
 * libpq reads it from its password file (PGPASSFILE, ~/.pgpass or passfile= in the URL),
 * or the server trusts the peer (Unix socket).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "store_int.h"
#include "store_migrations_pg.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(ARRAY_LEN(store_pg_migrations) == STORE_SCHEMA_VERSION,
	       "store_pg_migrations must hold exactly one entry per schema version");

/* Rows fetched per batch in list functions (keyset paging, like the SQLite back end). */
#define LIST_BATCH 64
/* Most parameters any statement here takes. */
#define MAX_PARAMS 20
/* Waiting for a row another host holds: long enough for its step outcome, short enough
 * that a stuck writer surfaces as AMTPROV_E_BUSY (the SQLite busy timeout's role). */
#define LOCK_TIMEOUT "5s"
/* Any constant: the key of the advisory lock that serialises migrations between hosts. */
#define MIGRATION_LOCK_KEY 0x616d7470 /* "amtp" */

#define RESTORE_HINT "restore the site database from backup (see docs/database.md)"

struct pgb {
	PGconn *c;
	int version;
	int readonly;
	int in_op; /* a call's own transaction is open (op_begin .. op_end) */
};

static PGconn *conn(struct store *st)
{
	return ((struct pgb *)st->be)->c;
}

/* ---- errors ---- */

/* One line of libpq's message (it ends in a newline, sometimes with a DETAIL after). */
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

/* Maps a failed result (or a NULL one: connection trouble) to a status. */
static int pg_fail(struct store *st, const PGresult *r, const char *what,
		   struct amtprov_error *err)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	char msg[AMTPROV_ERROR_MSG_SIZE];

	first_line(msg, sizeof(msg),
		   r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
						   : PQerrorMessage(conn(st)));
	if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
		      !strcmp(state, "55P03") || !strcmp(state, "57014")))
		return amtprov_error_set(err, AMTPROV_E_BUSY, st->path,
					 "%s: the site database is busy (%s); try again", what, msg);
	if (state && !strcmp(state, "53200"))
		return amtprov_error_set(err, AMTPROV_E_NOMEM, st->path, "%s: %s", what, msg);
	if (state && (!strncmp(state, "XX", 2)))
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					 "%s: %s; the site database is damaged: " RESTORE_HINT, what,
					 msg);
	return amtprov_error_set(err, AMTPROV_E_IO, st->path, "%s: %s", what, msg);
}

static int is_state(const PGresult *r, const char *sqlstate)
{
	const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	return s && !strcmp(s, sqlstate);
}

/* ---- parameters ---- */

/* Text-format parameters; integers are printed into the struct itself. */
struct params {
	Oid type[MAX_PARAMS];
	const char *v[MAX_PARAMS];
	int len[MAX_PARAMS];
	int fmt[MAX_PARAMS];
	char num[MAX_PARAMS][24];
	int n;
};

/* Types are given with every parameter, so a statement need not use them all (the list
 * statements ignore the second key) and none needs a cast to be typed. */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25

static void p_text(struct params *p, const char *v)
{
	p->type[p->n] = OID_TEXT;
	p->v[p->n++] = v;
}

static void p_i64(struct params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[p->n]), "%lld", (long long)v);
	p->type[p->n] = OID_INT8;
	p->v[p->n] = p->num[p->n];
	p->n++;
}

/* A device id where 0 means "none": NULL, so the foreign key allows it. */
static void p_ref(struct params *p, int64_t v)
{
	if (v) {
		p_i64(p, v);
	} else {
		p->type[p->n] = OID_INT8;
		p->v[p->n++] = NULL;
	}
}

static void p_bin(struct params *p, const void *v, size_t n)
{
	p->type[p->n] = OID_BYTEA;
	p->v[p->n] = v;
	p->len[p->n] = (int)n;
	p->fmt[p->n] = 1;
	p->n++;
}

static int session_setup(struct store *st, struct amtprov_error *err);

/*
 * A connection the server dropped (restart, failover, idle timeout) is opened again, but
 * only between transactions: inside one, the work so far is lost with the connection and
 * the call must fail, or its remaining statements would run on their own.
 */
static void revive(struct store *st)
{
	struct pgb *b = st->be;
	struct amtprov_error ignored;

	if (PQstatus(b->c) != CONNECTION_BAD || st->in_tx || b->in_op)
		return;
	PQreset(b->c);
	if (PQstatus(b->c) == CONNECTION_OK)
		session_setup(st, &ignored);
}

/* Runs @p sql; *out gets the result (caller clears) when it succeeded. */
static int run(struct store *st, const char *sql, const struct params *p, PGresult **out,
	       const char *what, struct amtprov_error *err)
{
	PGresult *r;
	ExecStatusType s;
	int rc;

	revive(st);
	r = PQexecParams(conn(st), sql, p ? p->n : 0, p ? p->type : NULL, p ? p->v : NULL,
				   p ? p->len : NULL, p ? p->fmt : NULL, 0);
	s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	*out = NULL;
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
		*out = r;
		return AMTPROV_OK;
	}
	rc = pg_fail(st, r, what, err);
	PQclear(r);
	return rc;
}

/* run() for statements whose result only matters as "done". */
static int exec(struct store *st, const char *sql, const struct params *p, const char *what,
		struct amtprov_error *err)
{
	PGresult *r;
	int rc = run(st, sql, p, &r, what, err);

	PQclear(r);
	return rc;
}

/* Runs constant SQL of several statements (the migrations): the simple query protocol,
 * which takes no parameters. */
static int exec_script(struct store *st, const char *sql, const char *what,
		       struct amtprov_error *err)
{
	PGresult *r = PQexec(conn(st), sql);
	int rc = AMTPROV_OK;

	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = pg_fail(st, r, what, err);
	PQclear(r);
	return rc;
}

/* run() that keeps a failed result, for callers that look at its SQLSTATE. */
static PGresult *run_keep(struct store *st, const char *sql, const struct params *p, int *ok)
{
	PGresult *r;
	ExecStatusType s;

	revive(st);
	r = PQexecParams(conn(st), sql, p ? p->n : 0, p ? p->type : NULL, p ? p->v : NULL,
				   p ? p->len : NULL, p ? p->fmt : NULL, 0);
	s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	*ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
	return r;
}

static int64_t changes(const PGresult *r)
{
	const char *t = PQcmdTuples((PGresult *)r);

	return t && t[0] ? strtoll(t, NULL, 10) : 0;
}

/* ---- row reading ---- */

struct rd {
	const PGresult *r;
	int row;
	int col;
	int bad; /* first column that did not fit, or -1 */
};

static void rd_text(struct rd *r, char *buf, size_t size)
{
	const char *t = PQgetvalue(r->r, r->row, r->col);
	size_t n = (size_t)PQgetlength(r->r, r->row, r->col);

	if (n >= size) {
		if (r->bad < 0)
			r->bad = r->col;
		n = size - 1;
	}
	if (n)
		memcpy(buf, t, n);
	buf[n] = '\0';
	r->col++;
}

static int64_t rd_i64(struct rd *r)
{
	return strtoll(PQgetvalue(r->r, r->row, r->col++), NULL, 10);
}

static int rd_int(struct rd *r)
{
	return (int)rd_i64(r);
}

static int rd_check(struct store *st, const struct rd *r, const char *table,
		    struct amtprov_error *err)
{
	if (r->bad < 0)
		return AMTPROV_OK;
	return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
				 "%s.%s holds a value longer than this build accepts "
				 "(written by another tool?): " RESTORE_HINT,
				 table, PQfname(r->r, r->bad));
}

/* ---- per-call atomicity ---- */

static int op_begin(struct store *st, struct amtprov_error *err)
{
	int rc;

	if (st->in_tx)
		return exec(st, "SAVEPOINT store_op", NULL, "starting a savepoint", err);
	rc = exec(st, "BEGIN", NULL, "starting a transaction", err);
	((struct pgb *)st->be)->in_op = rc == AMTPROV_OK;
	return rc;
}

static void rollback_quiet(struct store *st)
{
	PQclear(PQexec(conn(st), "ROLLBACK"));
}

static int op_end(struct store *st, int rc, struct amtprov_error *err)
{
	((struct pgb *)st->be)->in_op = 0;
	if (rc == AMTPROV_OK) {
		rc = exec(st, st->in_tx ? "RELEASE store_op" : "COMMIT", NULL, "committing", err);
		if (rc == AMTPROV_OK)
			return rc;
	}
	if (st->in_tx) {
		PQclear(PQexec(conn(st), "ROLLBACK TO store_op"));
		PQclear(PQexec(conn(st), "RELEASE store_op"));
	} else if (PQtransactionStatus(conn(st)) != PQTRANS_IDLE) {
		rollback_quiet(st);
	}
	return rc;
}

/* ---- small queries ---- */

static int lookup_id(struct store *st, const char *sql, const char *tkey, int64_t ikey,
		     int64_t *id, int *found, struct amtprov_error *err)
{
	struct params p = {0};
	PGresult *r;
	int rc;

	*found = 0;
	if (tkey)
		p_text(&p, tkey);
	else
		p_i64(&p, ikey);
	if ((rc = run(st, sql, &p, &r, "looking up a record", err)))
		return rc;
	if (PQntuples(r) > 0) {
		*found = 1;
		if (id)
			*id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	}
	PQclear(r);
	return rc;
}

static int device_must_exist(struct store *st, int64_t device_id, const char *field,
			     struct amtprov_error *err)
{
	int found, rc;

	if (!device_id)
		return AMTPROV_OK;
	rc = lookup_id(st, "SELECT id FROM devices WHERE id = $1::bigint", NULL, device_id, NULL,
		       &found, err);
	if (rc == AMTPROV_OK && !found)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "%s: no device with id %lld", field, (long long)device_id);
	return rc;
}

static int audit_insert(struct store *st, const char *actor, int64_t device_id,
			const char *action, const char *detail, int64_t now,
			struct amtprov_error *err)
{
	struct params p = {0};

	p_i64(&p, now);
	p_text(&p, actor);
	p_ref(&p, device_id);
	p_text(&p, action);
	p_text(&p, detail);
	return exec(st,
		    "INSERT INTO audit (at, actor, device_id, action, detail) "
		    "VALUES ($1::bigint, $2::text, $3::bigint, $4::text, $5::text)",
		    &p, "writing the audit record", err);
}

/* ---- batched lists ---- */

/*
 * Runs @p sql in batches: its last three parameters are the key of the last row seen
 * ($n+1, $n+2) and the batch size ($n+3), after the @p p->n filter parameters. Rows are
 * copied out and the result cleared before the callbacks run.
 */
struct list_spec {
	const char *table;
	size_t row_size;
	void (*read)(struct rd *r, void *row);
	void (*key)(const void *row, int64_t *k1, int64_t *k2);
	int (*emit)(void *emit_ctx, const void *row);
	/* Rows of the first query (0: LIST_BATCH), doubled for each next one up to
	 * LIST_BATCH: for a caller that usually stops after a few rows. */
	int first_batch;
};

static int run_list(struct store *st, const char *sql, const struct params *filters,
		    const struct list_spec *spec, int64_t k1, int64_t k2, int limit,
		    void *emit_ctx, struct amtprov_error *err)
{
	int batch = spec->first_batch > 0 && spec->first_batch < LIST_BATCH ? spec->first_batch
									      : LIST_BATCH;
	unsigned char *rows = malloc(spec->row_size * (size_t)batch);
	int remaining = limit > 0 ? limit : -1;
	int rc = AMTPROV_OK;

	if (!rows)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, st->path, "out of memory");
	for (;;) {
		struct params p = *filters;
		int want = batch, got, stop = 0;
		PGresult *r;

		if (remaining >= 0 && remaining < want)
			want = remaining;
		if (want == 0)
			break;
		/* The copied filter pointers into p.num must point into this copy. */
		for (int i = 0; i < p.n; i++)
			if (filters->v[i] == filters->num[i])
				p.v[i] = p.num[i];
		p_i64(&p, k1);
		p_i64(&p, k2);
		p_i64(&p, want);
		if ((rc = run(st, sql, &p, &r, "reading a list", err)))
			break;
		got = PQntuples(r);
		if (got > want)
			got = want;
		for (int i = 0; i < got; i++) {
			struct rd rdr = { r, i, 0, -1 };

			memset(rows + (size_t)i * spec->row_size, 0, spec->row_size);
			spec->read(&rdr, rows + (size_t)i * spec->row_size);
			if ((rc = rd_check(st, &rdr, spec->table, err)))
				break;
		}
		PQclear(r);
		if (rc)
			break;
		for (int i = 0; i < got && !stop; i++)
			stop = spec->emit(emit_ctx, rows + (size_t)i * spec->row_size);
		if (stop || got < want)
			break;
		spec->key(rows + (size_t)(got - 1) * spec->row_size, &k1, &k2);
		if (remaining > 0)
			remaining -= got;
		if (batch < LIST_BATCH) {
			unsigned char *more;

			batch = batch * 2 < LIST_BATCH ? batch * 2 : LIST_BATCH;
			more = realloc(rows, spec->row_size * (size_t)batch);
			if (!more) {
				rc = amtprov_error_set(err, AMTPROV_E_NOMEM, st->path, "out of memory");
				break;
			}
			rows = more;
		}
	}
	free(rows);
	return rc;
}

static void key_by_id(const void *row, int64_t *k1, int64_t *k2)
{
	*k1 = *(const int64_t *)row;
	*k2 = 0;
}

/* ---- open, check, migrate ---- */

/* The schema version, or 0 when the database has no amtprov schema; *foreign is set when
 * it has tables but no amtprov_schema (another application's database). */
static int read_version(struct store *st, int *version, int *foreign, struct amtprov_error *err)
{
	PGresult *r;
	int rc;

	*version = 0;
	*foreign = 0;
	rc = run(st,
		 "SELECT to_regclass('amtprov_schema') IS NOT NULL, "
		 "(SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema())",
		 NULL, &r, "reading the schema", err);
	if (rc)
		return rc;
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		*foreign = strtoll(PQgetvalue(r, 0, 1), NULL, 10) > 0;
		PQclear(r);
		return AMTPROV_OK;
	}
	PQclear(r);
	if ((rc = run(st, "SELECT version FROM amtprov_schema", NULL, &r,
		      "reading the schema version", err)))
		return rc;
	if (PQntuples(r) != 1)
		rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
				       "amtprov_schema holds %d rows, not 1: " RESTORE_HINT,
				       PQntuples(r));
	else
		*version = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return rc;
}

/* Applies the migrations one transaction each, under an advisory lock so two hosts
 * starting on a new database do not both migrate. */
static int migrate(struct store *st, struct amtprov_error *err)
{
	struct pgb *b = st->be;

	for (;;) {
		int v = 0, foreign = 0, rc;
		struct params p = {0};

		if ((rc = exec(st, "BEGIN", NULL, "starting a migration", err)))
			return rc;
		b->in_op = 1; /* no reconnect halfway through */
		p_i64(&p, MIGRATION_LOCK_KEY);
		rc = exec(st, "SELECT pg_advisory_xact_lock($1::bigint)", &p,
			  "waiting for another host's migration", err);
		if (rc == AMTPROV_OK)
			rc = read_version(st, &v, &foreign, err);
		if (rc == AMTPROV_OK && foreign)
			rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					       "a PostgreSQL database with tables, but not an "
					       "amtprov site database (wrong database?)");
		if (rc == AMTPROV_OK && v >= STORE_SCHEMA_VERSION) {
			b->in_op = 0;
			rc = exec(st, "COMMIT", NULL, "finishing a migration", err);
			if (rc == AMTPROV_OK) {
				b->version = v;
				return rc;
			}
		}
		if (rc == AMTPROV_OK && v < 0)
			rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					       "invalid schema version %d: " RESTORE_HINT, v);
		if (rc == AMTPROV_OK && v == 0)
			rc = exec_script(st, store_pg_bootstrap, "creating the schema", err);
		if (rc == AMTPROV_OK)
			rc = exec_script(st, store_pg_migrations[v], "migrating the schema", err);
		if (rc == AMTPROV_OK) {
			p.n = 0;
			p_i64(&p, v + 1);
			rc = exec(st, "UPDATE amtprov_schema SET version = $1::integer", &p,
				  "recording the schema version", err);
		}
		b->in_op = 0;
		if (rc == AMTPROV_OK)
			rc = exec(st, "COMMIT", NULL, "committing a migration", err);
		if (rc != AMTPROV_OK) {
			if (PQtransactionStatus(conn(st)) != PQTRANS_IDLE)
				rollback_quiet(st);
			return rc;
		}
	}
}

/* libpq prints server notices on stderr by default; amtprov has its own log, and a
 * notice is never something an operator must act on here. */
static void drop_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Session settings, again after a reconnect: a bounded wait for row locks another host
 * holds, and read-only sessions for reporting tools. */
static int session_setup(struct store *st, struct amtprov_error *err)
{
	int rc = exec(st, "SET lock_timeout = '" LOCK_TIMEOUT "'", NULL,
		      "configuring the session", err);

	if (rc == AMTPROV_OK && ((struct pgb *)st->be)->readonly)
		rc = exec(st, "SET default_transaction_read_only = on", NULL,
			  "configuring the session", err);
	return rc;
}

int store_pg_url_check(const char *url, char *why, size_t why_size)
{
	PQconninfoOption *opts;
	char *perr = NULL;
	int rc = 0;

	opts = PQconninfoParse(url, &perr);
	if (!opts) {
		/* libpq's text names the offending part; it never echoes a password. */
		first_line(why, why_size, perr ? perr : "cannot parse the connection string");
		PQfreemem(perr);
		return -1;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!strcmp(o->keyword, "password") && o->val && o->val[0]) {
			snprintf(why, why_size,
				 "holds a password; secrets never go in the manifest: put it in a "
				 "password file (PGPASSFILE, ~/.pgpass or passfile=) instead");
			rc = -1;
		}
	}
	PQconninfoFree(opts);
	return rc;
}

int store_is_pg_url(const char *s)
{
	size_t n = 0;

	if (!strncmp(s, "postgresql://", 13) || !strncmp(s, "postgres://", 11))
		return 1;
	/* A libpq conninfo: "keyword=value ..." (a file path never starts that way here:
	 * the manifest makes database paths absolute). */
	while ((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_')
		n++;
	while (n && s[n] == ' ')
		n++;
	return n > 0 && s[n] == '=';
}

static const struct store_ops pg_ops;

#define PASSWORD_MAX 1024

/*
 * Reads database.password_file into @p pw: a regular file owned by us with no group or
 * other permission bits, holding the password on one line. Messages name the file, never
 * its content.
 */
static int read_password(const char *path, char *pw, size_t size, struct amtprov_error *err)
{
	struct stat sb;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return amtprov_error_set(err, errno == ENOENT ? AMTPROV_E_NOT_FOUND : AMTPROV_E_IO,
					 "database.password_file", "%s: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
	    (sb.st_mode & (S_IRWXG | S_IRWXO))) {
		close(fd);
		return amtprov_error_set(err, AMTPROV_E_DENIED, "database.password_file",
					 "%s must be a regular file owned by the user amtprov runs "
					 "as, readable by it only (chmod 600)",
					 path);
	}
	for (;;) {
		ssize_t r = read(fd, pw + n, size - 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (n += (size_t)r) >= size - 1)
			break;
	}
	close(fd);
	pw[n] = '\0';
	while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
		pw[--n] = '\0';
	if (n == 0 || n >= size - 2 || strlen(pw) != n || strchr(pw, '\n')) {
		OPENSSL_cleanse(pw, size);
		return amtprov_error_set(err, AMTPROV_E_INVALID, "database.password_file",
					 "%s must hold the password on one line and nothing else "
					 "(at most %d bytes)",
					 path, PASSWORD_MAX - 3);
	}
	return AMTPROV_OK;
}

int store_pg_open(struct store *st, int flags, struct amtprov_error *err)
{
	/* fallback_application_name and connect_timeout first: the URL may override them;
	 * the password last, so nothing in the URL overrides it. */
	char pw[PASSWORD_MAX];
	const char *keys[] = { "fallback_application_name", "connect_timeout", "dbname",
			       st->password_file ? "password" : NULL, NULL };
	const char *vals[] = { "amtprov", "10", st->path, pw, NULL };
	char why[256], msg[AMTPROV_ERROR_MSG_SIZE];
	struct pgb *b;
	int rc, v = 0, foreign = 0;

	/* Not st->path as "where": it may hold the very password being refused. */
	if (store_pg_url_check(st->path, why, sizeof(why)) != 0)
		return amtprov_error_set(err, AMTPROV_E_INVALID, "database.url", "%s", why);
	if (st->password_file &&
	    (rc = read_password(st->password_file, pw, sizeof(pw), err)) != AMTPROV_OK)
		return rc;
	b = calloc(1, sizeof(*b));
	if (!b) {
		OPENSSL_cleanse(pw, sizeof(pw));
		return amtprov_error_set(err, AMTPROV_E_NOMEM, st->path, "out of memory");
	}
	st->be = b;
	b->c = PQconnectdbParams(keys, vals, 1);
	OPENSSL_cleanse(pw, sizeof(pw));
	if (!b->c || PQstatus(b->c) != CONNECTION_OK) {
		first_line(msg, sizeof(msg), b->c ? PQerrorMessage(b->c) : "out of memory");
		rc = amtprov_error_set(err, AMTPROV_E_IO, st->path,
				       "cannot connect to the site database: %s", msg);
		goto fail;
	}
	PQsetNoticeProcessor(b->c, drop_notice, NULL);
	b->readonly = !!(flags & STORE_OPEN_READONLY);
	rc = session_setup(st, err);
	if (rc == AMTPROV_OK)
		rc = read_version(st, &v, &foreign, err);
	if (rc)
		goto fail;
	if (v > STORE_SCHEMA_VERSION) {
		rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
				       "created by a newer amtprov (schema %d, this build knows "
				       "%d); use that version, or " RESTORE_HINT,
				       v, STORE_SCHEMA_VERSION);
		goto fail;
	}
	if (v == 0 && foreign) {
		rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
				       "a PostgreSQL database with tables, but not an amtprov site "
				       "database (wrong database?)");
		goto fail;
	}
	if (v == 0 && !(flags & STORE_OPEN_CREATE)) {
		/* The server and the database exist (an administrator creates them), the
		 * schema does not: the file-missing case of SQLite. */
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no amtprov schema in this database (create it first)");
		goto fail;
	}
	if (flags & STORE_OPEN_READONLY) {
		if (v < STORE_SCHEMA_VERSION) {
			rc = amtprov_error_set(err, AMTPROV_E_STATE, st->path,
					       "schema %d is older than %d: open the database "
					       "read-write once to upgrade it",
					       v, STORE_SCHEMA_VERSION);
			goto fail;
		}
		b->version = v;
	} else if ((rc = migrate(st, err))) {
		goto fail;
	}
	st->ops = &pg_ops;
	return AMTPROV_OK;
fail:
	PQfinish(b->c);
	free(b);
	st->be = NULL;
	return rc;
}

static void pg_close(struct store *st)
{
	struct pgb *b = st->be;

	if (!b)
		return;
	if (PQtransactionStatus(b->c) != PQTRANS_IDLE)
		rollback_quiet(st);
	PQfinish(b->c);
	free(b);
	st->be = NULL;
}

static int pg_schema_version(struct store *st)
{
	return ((struct pgb *)st->be)->version;
}

/*
 * PostgreSQL checks its pages and constraints itself (and pg_amcheck does the rest, for
 * the server's administrator); what is ours to check: the schema is the one this build
 * knows, every table is there and readable, no foreign key or CHECK was switched off
 * behind our back.
 */
static int pg_check(struct store *st, struct amtprov_error *err)
{
	int v = 0, foreign = 0, rc;
	PGresult *r;

	if ((rc = read_version(st, &v, &foreign, err)))
		return rc;
	if (v != STORE_SCHEMA_VERSION)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					 "schema version %d, this build expects %d: " RESTORE_HINT,
					 v, STORE_SCHEMA_VERSION);
	for (size_t i = 0; i < ARRAY_LEN(store_pg_tables); i++) {
		char sql[128];
		int ok;

		/* Every table is there and its rows can be read (names from our own list,
		 * never from input). */
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", store_pg_tables[i]);
		r = run_keep(st, sql, NULL, &ok);
		if (!ok && is_state(r, "42P01"))
			rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					       "table %s is missing: " RESTORE_HINT,
					       store_pg_tables[i]);
		else if (!ok)
			rc = pg_fail(st, r, "reading every table", err);
		PQclear(r);
		if (rc)
			return rc;
	}
	if ((rc = run(st,
		      "SELECT conrelid::regclass::text, conname FROM pg_catalog.pg_constraint "
		      "WHERE NOT convalidated AND connamespace = current_schema()::regnamespace "
		      "UNION ALL SELECT tgrelid::regclass::text, tgname FROM pg_catalog.pg_trigger "
		      "WHERE tgenabled = 'D' AND NOT tgisinternal LIMIT 1",
		      NULL, &r, "checking constraints", err)))
		return rc;
	if (PQntuples(r) > 0)
		rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
				       "%s: %s is not validated or disabled; the database was "
				       "changed by another tool: " RESTORE_HINT,
				       PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
	PQclear(r);
	return rc;
}

/* ---- explicit transactions ---- */

static int pg_tx_begin(struct store *st, struct amtprov_error *err)
{
	return exec(st, "BEGIN", NULL, "starting a transaction", err);
}

static int pg_tx_commit(struct store *st, struct amtprov_error *err)
{
	int rc = exec(st, "COMMIT", NULL, "committing", err);

	if (rc != AMTPROV_OK && PQtransactionStatus(conn(st)) != PQTRANS_IDLE)
		rollback_quiet(st);
	return rc;
}

static void pg_tx_rollback(struct store *st)
{
	if (PQtransactionStatus(conn(st)) != PQTRANS_IDLE)
		rollback_quiet(st);
}

/* ---- devices ---- */

#define DEVICE_COLS                                                                        \
	"id, fqdn, uuid, amt_version, wired_ip, otp_hash, state, state_since, "            \
	"last_error_code, last_error, attempts, next_attempt_at, wireless_capable, "       \
	"blocked, created_at, updated_at, in_flight, lease_owner, lease_until"

static void read_device(struct rd *r, void *row)
{
	struct store_device *d = row;

	d->id = rd_i64(r);
	rd_text(r, d->fqdn, sizeof(d->fqdn));
	rd_text(r, d->uuid, sizeof(d->uuid));
	rd_text(r, d->amt_version, sizeof(d->amt_version));
	rd_text(r, d->wired_ip, sizeof(d->wired_ip));
	rd_text(r, d->otp_hash, sizeof(d->otp_hash));
	rd_text(r, d->state, sizeof(d->state));
	d->state_since = rd_i64(r);
	d->last_error_code = rd_int(r);
	rd_text(r, d->last_error, sizeof(d->last_error));
	d->attempts = rd_int(r);
	d->next_attempt_at = rd_i64(r);
	d->wireless_capable = rd_int(r);
	d->blocked = rd_int(r);
	d->created_at = rd_i64(r);
	d->updated_at = rd_i64(r);
	d->in_flight = rd_int(r);
	rd_text(r, d->lease_owner, sizeof(d->lease_owner));
	d->lease_until = rd_i64(r);
}

static int get_device(struct store *st, const char *sql, const char *tkey, int64_t ikey,
		      struct store_device *out, int *found, struct amtprov_error *err)
{
	struct params p = {0};
	PGresult *r;
	int rc;

	*found = 0;
	if (tkey)
		p_text(&p, tkey);
	else
		p_i64(&p, ikey);
	if ((rc = run(st, sql, &p, &r, "reading a device", err)))
		return rc;
	if (PQntuples(r) > 0) {
		struct rd rdr = { r, 0, 0, -1 };

		memset(out, 0, sizeof(*out));
		read_device(&rdr, out);
		rc = rd_check(st, &rdr, "devices", err);
		*found = rc == AMTPROV_OK;
	}
	PQclear(r);
	return rc;
}

#define SQL_DEVICE_BY_ID "SELECT " DEVICE_COLS " FROM devices WHERE id = $1::bigint"

static int device_key_free(struct store *st, const char *field, const char *value,
			   int64_t self, struct amtprov_error *err)
{
	static const char *const sql_fqdn =
		"SELECT id FROM devices WHERE lower(fqdn) = lower($1::text)";
	static const char *const sql_uuid =
		"SELECT id FROM devices WHERE lower(uuid) = lower($1::text)";
	int64_t other = 0;
	int found, rc;

	rc = lookup_id(st, strcmp(field, "fqdn") ? sql_uuid : sql_fqdn, value, 0, &other,
		       &found, err);
	if (rc == AMTPROV_OK && found && other != self)
		rc = amtprov_error_set(err, AMTPROV_E_EXISTS, st->path,
				       "%s: '%s' is already registered (device %lld)", field,
				       value, (long long)other);
	return rc;
}

/* A failed write: a UNIQUE failure that slipped past the pre-checks (another host won the
 * race) names the field from the index name. Clears @p r. */
static int write_failure(struct store *st, PGresult *r, const char *what,
			 struct amtprov_error *err)
{
	const char *cons = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
	int rc;

	if (is_state(r, "23505") && cons) {
		const char *field = strstr(cons, "fqdn")     ? "fqdn"
				    : strstr(cons, "uuid")   ? "uuid"
				    : strstr(cons, "sha256") ? "sha256"
							     : NULL;

		if (field) {
			PQclear(r);
			return amtprov_error_set(err, AMTPROV_E_EXISTS, st->path,
						 "%s: already recorded", field);
		}
	}
	rc = pg_fail(st, r, what, err);
	PQclear(r);
	return rc;
}

/* Runs a write that may hit a UNIQUE key; *id gets the RETURNING id when asked. */
static int write_unique(struct store *st, const char *sql, const struct params *p,
			int64_t *id, const char *what, struct amtprov_error *err)
{
	int ok;
	PGresult *r = run_keep(st, sql, p, &ok);

	if (!ok)
		return write_failure(st, r, what, err);
	if (id)
		*id = PQntuples(r) > 0 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
	PQclear(r);
	return AMTPROV_OK;
}

static int pg_device_add(struct store *st, struct store_device *dev, const char *actor,
			 int64_t now, struct amtprov_error *err)
{
	char detail[STORE_TEXT_SIZE];
	struct params p = {0};
	int64_t id = 0;
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	if ((rc = device_key_free(st, "fqdn", dev->fqdn, 0, err)) ||
	    (rc = device_key_free(st, "uuid", dev->uuid, 0, err)))
		return op_end(st, rc, err);
	p_text(&p, dev->fqdn);
	p_text(&p, dev->uuid);
	p_text(&p, dev->amt_version);
	p_text(&p, dev->wired_ip);
	p_text(&p, dev->otp_hash);
	p_text(&p, dev->state);
	p_i64(&p, now);
	p_i64(&p, dev->last_error_code);
	p_text(&p, dev->last_error);
	p_i64(&p, dev->attempts);
	p_i64(&p, dev->next_attempt_at);
	p_i64(&p, dev->wireless_capable);
	p_i64(&p, dev->blocked);
	rc = write_unique(st,
			  "INSERT INTO devices (fqdn, uuid, amt_version, wired_ip, otp_hash, "
			  "state, state_since, last_error_code, last_error, attempts, "
			  "next_attempt_at, wireless_capable, blocked, created_at, updated_at) "
			  "VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, "
			  "$7::bigint, $8::bigint, $9::text, $10::bigint, $11::bigint, "
			  "$12::bigint, $13::bigint, $7::bigint, $7::bigint) RETURNING id",
			  &p, &id, "adding a device", err);
	if (rc == AMTPROV_OK) {
		snprintf(detail, sizeof(detail), "%s uuid=%s state=%s", dev->fqdn, dev->uuid,
			 dev->state);
		rc = audit_insert(st, actor, id, "device.add", detail, now, err);
	}
	rc = op_end(st, rc, err);
	if (rc == AMTPROV_OK) {
		dev->id = id;
		dev->state_since = dev->created_at = dev->updated_at = now;
	}
	return rc;
}

static int pg_device_get(struct store *st, int64_t id, struct store_device *out,
			 struct amtprov_error *err)
{
	int found, rc;

	rc = get_device(st, SQL_DEVICE_BY_ID, NULL, id, out, &found, err);
	if (rc == AMTPROV_OK && !found)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no device with id %lld", (long long)id);
	return rc;
}

static int pg_device_find(struct store *st, const char *key, int by_uuid,
			  struct store_device *out, struct amtprov_error *err)
{
	int found, rc;

	rc = get_device(st,
			by_uuid ? "SELECT " DEVICE_COLS " FROM devices "
				  "WHERE lower(uuid) = lower($1::text)"
				: "SELECT " DEVICE_COLS " FROM devices "
				  "WHERE lower(fqdn) = lower($1::text)",
			key, 0, out, &found, err);
	if (rc == AMTPROV_OK && !found)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no device with %s '%s'", by_uuid ? "UUID" : "FQDN", key);
	return rc;
}

/* The user's callback and context; one emitter per record type calls it. */
struct emit_ctx {
	union {
		store_device_cb device;
		store_cert_cb cert;
		store_status_cb status;
		store_audit_cb audit;
		store_pending_cb pending;
	} cb;
	void *ctx;
};

static int emit_device(void *e, const void *row)
{
	struct emit_ctx *c = e;

	return c->cb.device(c->ctx, row);
}

static int emit_cert(void *e, const void *row)
{
	struct emit_ctx *c = e;

	return c->cb.cert(c->ctx, row);
}

static int emit_status(void *e, const void *row)
{
	struct emit_ctx *c = e;

	return c->cb.status(c->ctx, row);
}

static int emit_audit(void *e, const void *row)
{
	struct emit_ctx *c = e;

	return c->cb.audit(c->ctx, row);
}

static int emit_pending(void *e, const void *row)
{
	struct emit_ctx *c = e;

	return c->cb.pending(c->ctx, row);
}

static const struct list_spec device_spec = {
	.table = "devices",
	.row_size = sizeof(struct store_device),
	.read = read_device,
	.key = key_by_id,
	.emit = emit_device,
};

static int pg_device_list(struct store *st, const char *state, store_device_cb cb, void *ctx,
			  struct amtprov_error *err)
{
	struct emit_ctx e = { .cb.device = cb, .ctx = ctx };
	struct params p = {0};

	p_text(&p, state);
	return run_list(st,
			"SELECT " DEVICE_COLS " FROM devices "
			"WHERE ($1::text IS NULL OR state = $1::text) AND id > $2::bigint "
			"ORDER BY id LIMIT $4::bigint",
			&p, &device_spec, INT64_MIN, 0, 0, &e, err);
}

/* The engine's candidates, in the (state, next_attempt_at) index's order. */
static void key_by_due(const void *row, int64_t *k1, int64_t *k2)
{
	const struct store_device *d = row;

	*k1 = d->next_attempt_at;
	*k2 = d->id;
}

static const struct list_spec device_due_spec = {
	.table = "devices",
	.row_size = sizeof(struct store_device),
	.read = read_device,
	.key = key_by_due,
	.emit = emit_device,
	.first_batch = 4,
};

static int pg_device_list_due(struct store *st, const char *state, int64_t now,
			      store_device_cb cb, void *ctx, struct amtprov_error *err)
{
	struct emit_ctx e = { .cb.device = cb, .ctx = ctx };
	struct params p = {0};

	p_text(&p, state);
	p_i64(&p, now);
	return run_list(st,
			"SELECT " DEVICE_COLS " FROM devices "
			"WHERE state = $1::text AND next_attempt_at <= $2::bigint AND blocked = 0 "
			"AND (next_attempt_at, id) > ($3::bigint, $4::bigint) "
			"ORDER BY next_attempt_at, id LIMIT $5::bigint",
			&p, &device_due_spec, INT64_MIN, INT64_MIN, 0, &e, err);
}

static int pg_device_count_by_state(struct store *st,
				    int (*cb)(void *ctx, const char *state, int64_t count),
				    void *ctx, struct amtprov_error *err)
{
	char state[STORE_STATE_SIZE];
	PGresult *r;
	int rc, n;

	if ((rc = run(st, "SELECT state, count(*) FROM devices GROUP BY state ORDER BY state",
		      NULL, &r, "counting devices", err)))
		return rc;
	n = PQntuples(r);
	/* The result is ours until cleared; the callback gets copies, and runs with no
	 * statement open on the server anyway. */
	for (int i = 0; rc == AMTPROV_OK && i < n; i++) {
		struct rd rdr = { r, i, 0, -1 };
		int64_t count;

		rd_text(&rdr, state, sizeof(state));
		count = rd_i64(&rdr);
		if ((rc = rd_check(st, &rdr, "devices", err)))
			break;
		if (cb(ctx, state, count))
			break;
	}
	PQclear(r);
	return rc;
}

/* Names why a compare-and-set on device @p id changed nothing. */
static int cas_lost(struct store *st, int64_t id, const char *from, struct amtprov_error *err)
{
	struct store_device cur;
	int found, rc;

	rc = get_device(st, SQL_DEVICE_BY_ID, NULL, id, &cur, &found, err);
	if (rc == AMTPROV_OK && !found)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no device with id %lld", (long long)id);
	else if (rc == AMTPROV_OK)
		rc = amtprov_error_set(err, AMTPROV_E_STATE, st->path,
				       "device %s is in state %s, not %s", cur.fqdn, cur.state,
				       from);
	return rc;
}

static int pg_device_transition(struct store *st, int64_t id, const char *from,
				const char *to, enum store_step step, int error_code,
				const char *error_text, int64_t next_attempt_at, int attempts,
				const char *actor, int64_t now, struct amtprov_error *err)
{
	char detail[STORE_TEXT_SIZE];
	struct params p = {0};
	PGresult *r = NULL;
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	p_i64(&p, id);
	p_text(&p, to);
	p_text(&p, from);
	p_i64(&p, error_code);
	p_text(&p, error_text);
	p_i64(&p, next_attempt_at);
	p_i64(&p, now);
	p_i64(&p, attempts);
	p_i64(&p, (int64_t)step);
	rc = run(st,
		 "UPDATE devices SET state = $2::text, "
		 "state_since = CASE WHEN $3::text = $2::text THEN state_since ELSE $7::bigint END, "
		 "attempts = CASE WHEN $8::bigint >= 0 THEN $8::bigint "
		 "WHEN $3::text = $2::text THEN attempts + 1 ELSE 0 END, "
		 "last_error_code = $4::bigint, last_error = $5::text, "
		 "next_attempt_at = $6::bigint, "
		 "in_flight = CASE $9::bigint WHEN 1 THEN in_flight + 1 WHEN 2 THEN in_flight "
		 "WHEN 3 THEN greatest(in_flight - 1, 0) ELSE 0 END, "
		 "updated_at = $7::bigint WHERE id = $1::bigint AND state = $3::text",
		 &p, &r, "changing a device's state", err);
	if (rc == AMTPROV_OK && changes(r) == 0)
		rc = cas_lost(st, id, from, err);
	PQclear(r);
	if (rc == AMTPROV_OK) {
		if (error_text[0])
			snprintf(detail, sizeof(detail), "%s -> %s: %s", from, to, error_text);
		else
			snprintf(detail, sizeof(detail), "%s -> %s", from, to);
		rc = audit_insert(st, actor, id, "state", detail, now, err);
	}
	return op_end(st, rc, err);
}

static void detail_add(char *buf, size_t size, const char *name, const char *old,
		       const char *new_)
{
	size_t len = strlen(buf);

	if (!strcmp(old, new_) || len + 1 >= size)
		return;
	snprintf(buf + len, size - len, "%s%s %s -> %s", len ? "; " : "", name, old, new_);
}

/* What changed between two records' descriptive fields; the OTP hash only as
 * "set/new/empty", never its value (same text as the SQLite back end). */
static void device_changes(const struct store_device *old, const struct store_device *dev,
			   char *buf, size_t size)
{
	detail_add(buf, size, "fqdn", old->fqdn, dev->fqdn);
	detail_add(buf, size, "uuid", old->uuid, dev->uuid);
	detail_add(buf, size, "amt_version", old->amt_version, dev->amt_version);
	detail_add(buf, size, "wired_ip", old->wired_ip, dev->wired_ip);
	detail_add(buf, size, "otp_hash", old->otp_hash[0] ? "set" : "empty",
		   strcmp(old->otp_hash, dev->otp_hash) ? (dev->otp_hash[0] ? "new" : "empty")
							: (old->otp_hash[0] ? "set" : "empty"));
	detail_add(buf, size, "wireless_capable", old->wireless_capable ? "1" : "0",
		   dev->wireless_capable ? "1" : "0");
	detail_add(buf, size, "blocked", old->blocked ? "1" : "0", dev->blocked ? "1" : "0");
}

static int pg_device_update(struct store *st, const struct store_device *dev,
			    const char *actor, int64_t now, struct amtprov_error *err)
{
	char detail[STORE_TEXT_SIZE] = "";
	struct store_device old;
	struct params p = {0};
	int found, rc;

	if ((rc = op_begin(st, err)))
		return rc;
	rc = get_device(st, SQL_DEVICE_BY_ID " FOR UPDATE", NULL, dev->id, &old, &found, err);
	if (rc == AMTPROV_OK && !found)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no device with id %lld", (long long)dev->id);
	if (rc == AMTPROV_OK)
		rc = device_key_free(st, "uuid", dev->uuid, dev->id, err);
	if (rc == AMTPROV_OK) {
		p_i64(&p, dev->id);
		p_text(&p, dev->uuid);
		p_text(&p, dev->amt_version);
		p_text(&p, dev->wired_ip);
		p_text(&p, dev->otp_hash);
		p_i64(&p, dev->wireless_capable);
		p_i64(&p, dev->blocked);
		p_i64(&p, now);
		rc = write_unique(st,
				  "UPDATE devices SET uuid = $2::text, amt_version = $3::text, "
				  "wired_ip = $4::text, otp_hash = $5::text, "
				  "wireless_capable = $6::bigint, blocked = $7::bigint, "
				  "updated_at = $8::bigint WHERE id = $1::bigint",
				  &p, NULL, "updating a device", err);
	}
	if (rc == AMTPROV_OK) {
		struct store_device now_rec = *dev;

		memcpy(now_rec.fqdn, old.fqdn, sizeof(now_rec.fqdn));
		device_changes(&old, &now_rec, detail, sizeof(detail));
		rc = audit_insert(st, actor, dev->id, "device.update",
				  detail[0] ? detail : "no change", now, err);
	}
	return op_end(st, rc, err);
}

static int pg_device_reregister(struct store *st, int64_t id, const char *from,
				const struct store_device *dev, const char *actor, int64_t now,
				struct amtprov_error *err)
{
	char detail[STORE_TEXT_SIZE], changes_txt[STORE_TEXT_SIZE] = "";
	struct store_device old;
	struct params p = {0};
	int found, rc;

	if ((rc = op_begin(st, err)))
		return rc;
	/* FOR UPDATE: the check below and the UPDATE see the same row, whichever host
	 * writes it meanwhile. */
	rc = get_device(st, SQL_DEVICE_BY_ID " FOR UPDATE", NULL, id, &old, &found, err);
	if (rc == AMTPROV_OK && !found)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no device with id %lld", (long long)id);
	if (rc == AMTPROV_OK && (strcmp(old.state, from) != 0 || old.blocked))
		rc = amtprov_error_set(err, AMTPROV_E_STATE, st->path,
				       "device %s is in state %s%s, not %s", old.fqdn, old.state,
				       old.blocked ? " (blocked)" : "", from);
	if (rc == AMTPROV_OK)
		rc = device_key_free(st, "fqdn", dev->fqdn, id, err);
	if (rc == AMTPROV_OK)
		rc = device_key_free(st, "uuid", dev->uuid, id, err);
	if (rc == AMTPROV_OK) {
		p_i64(&p, id);
		p_text(&p, dev->fqdn);
		p_text(&p, dev->uuid);
		p_text(&p, dev->amt_version);
		p_text(&p, dev->wired_ip);
		p_text(&p, dev->otp_hash);
		p_i64(&p, dev->wireless_capable);
		p_text(&p, "REGISTERED");
		p_i64(&p, now);
		p_text(&p, from);
		rc = write_unique(st,
				  "UPDATE devices SET fqdn = $2::text, uuid = $3::text, "
				  "amt_version = $4::text, wired_ip = $5::text, otp_hash = $6::text, "
				  "wireless_capable = $7::bigint, state = $8::text, "
				  "state_since = $9::bigint, last_error_code = 0, last_error = '', "
				  "attempts = 0, next_attempt_at = 0, updated_at = $9::bigint "
				  "WHERE id = $1::bigint AND state = $10::text AND blocked = 0",
				  &p, NULL, "re-registering a device", err);
	}
	if (rc == AMTPROV_OK) {
		snprintf(detail, sizeof(detail), "%s -> REGISTERED: re-registered by its agent", from);
		rc = audit_insert(st, actor, id, "state", detail, now, err);
	}
	if (rc == AMTPROV_OK) {
		device_changes(&old, dev, changes_txt, sizeof(changes_txt));
		snprintf(detail, sizeof(detail), "%.200s uuid=%.40s was %.40s; %.200s", dev->fqdn,
			 dev->uuid, from, changes_txt[0] ? changes_txt : "same report");
		rc = audit_insert(st, actor, id, "device.reregister", detail, now, err);
	}
	return op_end(st, rc, err);
}

/* store_device_delete(): the row becomes a tombstone (the schema keeps devices). */
static int pg_device_delete(struct store *st, int64_t id, const char *from, const char *actor,
			    const char *detail, int64_t now, struct amtprov_error *err)
{
	struct store_device old;
	struct params p = {0}, q = {0};
	int64_t cert = 0;
	int found, rc;

	if ((rc = op_begin(st, err)))
		return rc;
	rc = get_device(st, SQL_DEVICE_BY_ID " FOR UPDATE", NULL, id, &old, &found, err);
	if (rc == AMTPROV_OK && !found)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no device with id %lld", (long long)id);
	if (rc == AMTPROV_OK && strcmp(old.state, from) != 0)
		rc = amtprov_error_set(err, AMTPROV_E_STATE, st->path,
				       "device %s is in state %s, not %s", old.fqdn, old.state, from);
	if (rc == AMTPROV_OK && old.lease_owner[0] && old.lease_until >= now)
		rc = amtprov_error_set(err, AMTPROV_E_BUSY, st->path,
				       "device %s is leased by host %s", old.fqdn, old.lease_owner);
	if (rc == AMTPROV_OK)
		rc = lookup_id(st, "SELECT id FROM certificates WHERE device_id = $1 AND "
				   "status = 'active' LIMIT 1", NULL, id, &cert, &found, err);
	if (rc == AMTPROV_OK && found)
		rc = amtprov_error_set(err, AMTPROV_E_STATE, st->path,
				       "device %s holds an active certificate (id %lld): queue its "
				       "revocation first", old.fqdn, (long long)cert);
	if (rc == AMTPROV_OK) {
		p_i64(&p, id);
		rc = exec(st, "DELETE FROM pending_ops WHERE device_id = $1 AND kind <> 'revoke'",
			  &p, "dropping a deleted device's operations", err);
	}
	if (rc == AMTPROV_OK) {
		p_i64(&q, id);
		p_text(&q, STORE_DEVICE_DELETED);
		p_i64(&q, now);
		p_text(&q, from);
		rc = write_unique(st,
				  "UPDATE devices SET fqdn = substr('deleted-' || id || ':' || fqdn, "
				  "1, 255), uuid = 'deleted-' || lpad(id::text, 28, '0'), "
				  "state = $2::text, state_since = $3::bigint, otp_hash = '', "
				  "wired_ip = '', last_error_code = 0, last_error = '', attempts = 0, "
				  "next_attempt_at = 0, blocked = 0, in_flight = 0, lease_owner = '', "
				  "lease_until = 0, updated_at = $3::bigint "
				  "WHERE id = $1::bigint AND state = $4::text",
				  &q, NULL, "deleting a device", err);
	}
	if (rc == AMTPROV_OK)
		rc = audit_insert(st, actor, id, "device.delete", detail, now, err);
	return op_end(st, rc, err);
}

/* ---- device leases ---- */

/*
 * The claim locks the row with SKIP LOCKED: a device another host's transaction holds
 * right now (it is recording a step of it) is skipped at once instead of waited for; the
 * lease condition then decides. One statement, so it is atomic on its own.
 */
static int pg_device_claim(struct store *st, int64_t id, const char *owner, int64_t now,
			   int64_t until, struct amtprov_error *err)
{
	struct params p = {0};
	PGresult *r = NULL;
	int rc, found;

	if ((rc = op_begin(st, err)))
		return rc;
	p_i64(&p, id);
	p_text(&p, owner);
	p_i64(&p, now);
	p_i64(&p, until);
	rc = run(st,
		 "UPDATE devices SET lease_owner = $2, lease_until = $4 WHERE id = "
		 "(SELECT id FROM devices WHERE id = $1 AND (lease_owner = '' OR "
		 "lease_owner = $2 OR lease_until < $3) FOR UPDATE SKIP LOCKED)",
		 &p, &r, "claiming a device", err);
	if (rc == AMTPROV_OK && changes(r) == 0) {
		rc = lookup_id(st, "SELECT id FROM devices WHERE id = $1", NULL, id, NULL, &found,
			       err);
		if (rc == AMTPROV_OK)
			rc = found ? amtprov_error_set(err, AMTPROV_E_BUSY, st->path,
						       "device %lld is leased by another host",
						       (long long)id)
				   : amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
						       "no device with id %lld", (long long)id);
	}
	PQclear(r);
	return op_end(st, rc, err);
}

static int pg_device_release(struct store *st, int64_t id, const char *owner,
			     struct amtprov_error *err)
{
	struct params p = {0};
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	p_i64(&p, id);
	p_text(&p, owner);
	rc = exec(st,
		  "UPDATE devices SET lease_owner = '', lease_until = 0 "
		  "WHERE id = $1 AND lease_owner = $2",
		  &p, "releasing a device", err);
	return op_end(st, rc, err);
}

static int pg_lease_renew(struct store *st, const char *owner, int64_t until, int64_t *n,
			  struct amtprov_error *err)
{
	struct params p = {0};
	PGresult *r = NULL;
	int rc;

	*n = 0;
	if ((rc = op_begin(st, err)))
		return rc;
	p_text(&p, owner);
	p_i64(&p, until);
	rc = run(st, "UPDATE devices SET lease_until = $2 WHERE lease_owner = $1", &p, &r,
		 "renewing leases", err);
	if (rc == AMTPROV_OK)
		*n = changes(r);
	PQclear(r);
	return op_end(st, rc, err);
}

static int pg_lease_count(struct store *st, int64_t now,
			  int (*cb)(void *ctx, const char *owner, int64_t live, int64_t expired),
			  void *ctx, struct amtprov_error *err)
{
	struct params p = {0};
	PGresult *r;
	int rc;

	p_i64(&p, now);
	if ((rc = run(st,
		      "SELECT lease_owner, count(*) FILTER (WHERE lease_until >= $1::bigint), "
		      "count(*) FILTER (WHERE lease_until < $1::bigint) FROM devices "
		      "WHERE lease_owner <> '' GROUP BY lease_owner ORDER BY lease_owner",
		      &p, &r, "counting device leases", err)))
		return rc;
	for (int i = 0; rc == AMTPROV_OK && i < PQntuples(r); i++) {
		struct rd rdr = { r, i, 0, -1 };
		char owner[STORE_SHORT_SIZE];
		int64_t live, expired;

		rd_text(&rdr, owner, sizeof(owner));
		live = rd_i64(&rdr);
		expired = rd_i64(&rdr);
		if ((rc = rd_check(st, &rdr, "devices", err)))
			break;
		if (cb(ctx, owner, live, expired))
			break;
	}
	PQclear(r);
	return rc;
}

/* ---- certificates ---- */

#define CERT_COLS                                                                          \
	"id, coalesce(device_id, 0), serial_hex, issuer, subject, purpose, profile, "      \
	"template_name, ca_instance, request_id, sha256, not_before, not_after, status, "  \
	"revocation_reason, revoked_at, created_at"

static void read_cert(struct rd *r, void *row)
{
	struct store_cert *c = row;

	c->id = rd_i64(r);
	c->device_id = rd_i64(r);
	rd_text(r, c->serial_hex, sizeof(c->serial_hex));
	rd_text(r, c->issuer, sizeof(c->issuer));
	rd_text(r, c->subject, sizeof(c->subject));
	c->purpose = rd_int(r);
	rd_text(r, c->profile, sizeof(c->profile));
	rd_text(r, c->template_name, sizeof(c->template_name));
	rd_text(r, c->ca_instance, sizeof(c->ca_instance));
	rd_text(r, c->request_id, sizeof(c->request_id));
	rd_text(r, c->sha256, sizeof(c->sha256));
	c->not_before = rd_i64(r);
	c->not_after = rd_i64(r);
	rd_text(r, c->status, sizeof(c->status));
	c->revocation_reason = rd_int(r);
	c->revoked_at = rd_i64(r);
	c->created_at = rd_i64(r);
}

static int pg_cert_add(struct store *st, struct store_cert *cert, int64_t now,
		       struct amtprov_error *err)
{
	struct params p = {0};
	int64_t id = 0, other = 0;
	int found = 0, rc;

	if ((rc = op_begin(st, err)))
		return rc;
	if ((rc = device_must_exist(st, cert->device_id, "device_id", err)) == AMTPROV_OK)
		rc = lookup_id(st, "SELECT id FROM certificates WHERE lower(sha256) = lower($1::text)",
			       cert->sha256, 0, &other, &found, err);
	if (rc == AMTPROV_OK && found)
		rc = amtprov_error_set(err, AMTPROV_E_EXISTS, st->path,
				       "sha256: certificate %s is already recorded (id %lld)",
				       cert->sha256, (long long)other);
	if (rc == AMTPROV_OK) {
		p_ref(&p, cert->device_id);
		p_text(&p, cert->serial_hex);
		p_text(&p, cert->issuer);
		p_text(&p, cert->subject);
		p_i64(&p, cert->purpose);
		p_text(&p, cert->profile);
		p_text(&p, cert->template_name);
		p_text(&p, cert->ca_instance);
		p_text(&p, cert->request_id);
		p_text(&p, cert->sha256);
		p_i64(&p, cert->not_before);
		p_i64(&p, cert->not_after);
		p_text(&p, cert->status);
		p_i64(&p, cert->revocation_reason);
		p_i64(&p, cert->revoked_at);
		p_i64(&p, now);
		rc = write_unique(st,
				  "INSERT INTO certificates (device_id, serial_hex, issuer, subject, "
				  "purpose, profile, template_name, ca_instance, request_id, sha256, "
				  "not_before, not_after, status, revocation_reason, revoked_at, "
				  "created_at) VALUES ($1::bigint, $2::text, $3::text, $4::text, "
				  "$5::bigint, $6::text, $7::text, $8::text, $9::text, $10::text, "
				  "$11::bigint, $12::bigint, $13::text, $14::bigint, $15::bigint, "
				  "$16::bigint) RETURNING id",
				  &p, &id, "recording a certificate", err);
	}
	rc = op_end(st, rc, err);
	if (rc == AMTPROV_OK) {
		cert->id = id;
		cert->created_at = now;
	}
	return rc;
}

static int pg_cert_get(struct store *st, int64_t id, struct store_cert *out,
		       struct amtprov_error *err)
{
	struct params p = {0};
	PGresult *r;
	int rc;

	p_i64(&p, id);
	if ((rc = run(st, "SELECT " CERT_COLS " FROM certificates WHERE id = $1::bigint", &p, &r,
		      "reading a certificate", err)))
		return rc;
	if (PQntuples(r) > 0) {
		struct rd rdr = { r, 0, 0, -1 };

		memset(out, 0, sizeof(*out));
		read_cert(&rdr, out);
		rc = rd_check(st, &rdr, "certificates", err);
	} else {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no certificate with id %lld", (long long)id);
	}
	PQclear(r);
	return rc;
}

static const struct list_spec cert_spec = {
	.table = "certificates",
	.row_size = sizeof(struct store_cert),
	.read = read_cert,
	.key = key_by_id,
	.emit = emit_cert,
};

static int pg_cert_list(struct store *st, const struct store_cert_filter *f, store_cert_cb cb,
			void *ctx, struct amtprov_error *err)
{
	struct emit_ctx e = { .cb.cert = cb, .ctx = ctx };
	struct params p = {0};

	p_i64(&p, f->device_id);
	p_i64(&p, f->purpose);
	p_text(&p, f->status && f->status[0] ? f->status : NULL);
	p_i64(&p, f->not_after_before);
	return run_list(st,
			"SELECT " CERT_COLS " FROM certificates "
			"WHERE ($1::bigint = 0 OR device_id = $1::bigint) "
			"AND ($2::bigint = 0 OR purpose = $2::bigint) "
			"AND ($3::text IS NULL OR status = $3::text) "
			"AND ($4::bigint = 0 OR not_after < $4::bigint) "
			"AND id > $5::bigint "
			"ORDER BY id LIMIT $7::bigint",
			&p, &cert_spec, INT64_MIN, 0, 0, &e, err);
}

static int pg_cert_set_status(struct store *st, int64_t id, const char *status, int reason,
			      int64_t now, struct amtprov_error *err)
{
	struct store_cert cur;
	struct params p = {0};
	int revoke = !strcmp(status, STORE_CERT_REVOKED);
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	/* Lock the row: the "revoked is final" check and the write must see the same row. */
	p_i64(&p, id);
	rc = exec(st, "SELECT 1 FROM certificates WHERE id = $1::bigint FOR UPDATE", &p,
		  "locking a certificate", err);
	if (rc == AMTPROV_OK)
		rc = pg_cert_get(st, id, &cur, err);
	if (rc == AMTPROV_OK && !strcmp(cur.status, STORE_CERT_REVOKED)) {
		if (!revoke)
			rc = amtprov_error_set(err, AMTPROV_E_STATE, st->path,
					       "certificate %lld (serial %s) is revoked; a "
					       "revocation cannot be undone",
					       (long long)id, cur.serial_hex);
		return op_end(st, rc, err);
	}
	if (rc == AMTPROV_OK) {
		p.n = 0;
		p_i64(&p, id);
		p_text(&p, status);
		if (revoke) {
			p_i64(&p, reason);
			p_i64(&p, now);
		}
		rc = exec(st,
			  revoke ? "UPDATE certificates SET status = $2::text, "
				   "revocation_reason = $3::bigint, revoked_at = $4::bigint "
				   "WHERE id = $1::bigint"
				 : "UPDATE certificates SET status = $2::text WHERE id = $1::bigint",
			  &p, "changing a certificate's status", err);
	}
	return op_end(st, rc, err);
}

static int pg_cert_data_put(struct store *st, int64_t cert_id, const uint8_t *der,
			    size_t der_len, const char *chain_pem, struct amtprov_error *err)
{
	struct params p = {0};
	PGresult *r;
	int rc, ok;

	if (der_len > (size_t)INT32_MAX)
		return amtprov_error_set(err, AMTPROV_E_INVALID, st->path, "der: too large");
	if ((rc = op_begin(st, err)))
		return rc;
	p_i64(&p, cert_id);
	p_bin(&p, der, der_len);
	p_text(&p, chain_pem ? chain_pem : "");
	r = run_keep(st,
		     "INSERT INTO certificate_data (cert_id, der, chain_pem) "
		     "VALUES ($1::bigint, $2::bytea, $3::text)",
		     &p, &ok);
	if (!ok) {
		if (is_state(r, "23503"))
			rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
					       "no certificate %lld", (long long)cert_id);
		else if (is_state(r, "23505"))
			rc = amtprov_error_set(err, AMTPROV_E_EXISTS, st->path,
					       "certificate %lld already has its data",
					       (long long)cert_id);
		else
			rc = pg_fail(st, r, "storing a certificate", err);
	}
	PQclear(r);
	return op_end(st, rc, err);
}

static int pg_cert_data_get(struct store *st, int64_t cert_id, uint8_t **der, size_t *der_len,
			    char **chain_pem, struct amtprov_error *err)
{
	struct params p = {0};
	PGresult *r;
	int rc;

	p_i64(&p, cert_id);
	/* Binary results: the DER comes back as its bytes, the chain as its text. */
	r = PQexecParams(conn(st),
			 "SELECT der, convert_to(chain_pem, 'UTF8') FROM certificate_data "
			 "WHERE cert_id = $1::bigint",
			 p.n, p.type, p.v, NULL, NULL, 1);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = pg_fail(st, r, "reading a certificate", err);
		PQclear(r);
		return rc;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
					 "no stored data for certificate %lld", (long long)cert_id);
	}
	{
		size_t n = (size_t)PQgetlength(r, 0, 0), cn = (size_t)PQgetlength(r, 0, 1);

		*der = malloc(n ? n : 1);
		if (chain_pem) {
			*chain_pem = malloc(cn + 1);
			if (*chain_pem) {
				memcpy(*chain_pem, PQgetvalue(r, 0, 1), cn);
				(*chain_pem)[cn] = '\0';
			}
		}
		if (!*der || (chain_pem && !*chain_pem)) {
			free(*der);
			*der = NULL;
			if (chain_pem) {
				free(*chain_pem);
				*chain_pem = NULL;
			}
			PQclear(r);
			return amtprov_error_set(err, AMTPROV_E_NOMEM, st->path, "out of memory");
		}
		memcpy(*der, PQgetvalue(r, 0, 0), n);
		*der_len = n;
	}
	PQclear(r);
	return AMTPROV_OK;
}

/* ---- status messages ---- */

static void read_status(struct rd *r, void *row)
{
	struct store_status_msg *m = row;

	m->id = rd_i64(r);
	m->msg_id = (uint32_t)rd_i64(r);
	m->severity = rd_int(r);
	rd_text(r, m->device, sizeof(m->device));
	rd_text(r, m->text, sizeof(m->text));
	m->created_at = rd_i64(r);
}

static void key_status(const void *row, int64_t *k1, int64_t *k2)
{
	const struct store_status_msg *m = row;

	*k1 = m->created_at;
	*k2 = m->id;
}

static const struct list_spec status_spec = {
	.table = "status_messages",
	.row_size = sizeof(struct store_status_msg),
	.read = read_status,
	.key = key_status,
	.emit = emit_status,
};

static int pg_status_add(struct store *st, struct store_status_msg *msg, int64_t now,
			 struct amtprov_error *err)
{
	struct params p = {0};
	int64_t id = 0;
	int rc;

	/* Inside an explicit transaction a failure must not poison the caller's work. */
	if ((rc = op_begin(st, err)))
		return rc;
	p_i64(&p, msg->msg_id);
	p_i64(&p, msg->severity);
	p_text(&p, msg->device);
	p_text(&p, msg->text);
	p_i64(&p, now);
	rc = write_unique(st,
			  "INSERT INTO status_messages (msg_id, severity, device, text, created_at) "
			  "VALUES ($1::bigint, $2::bigint, $3::text, $4::text, $5::bigint) "
			  "RETURNING id",
			  &p, &id, "recording a status message", err);
	rc = op_end(st, rc, err);
	if (rc == AMTPROV_OK) {
		msg->id = id;
		msg->created_at = now;
	}
	return rc;
}

static int pg_status_list(struct store *st, const struct store_status_filter *f,
			  store_status_cb cb, void *ctx, struct amtprov_error *err)
{
	struct emit_ctx e = { .cb.status = cb, .ctx = ctx };
	struct params p = {0};

	p_i64(&p, f->msg_id);
	p_i64(&p, f->min_severity);
	p_text(&p, f->device);
	p_i64(&p, f->since);
	p_i64(&p, f->until);
	return run_list(st,
			"SELECT id, msg_id, severity, device, text, created_at "
			"FROM status_messages "
			"WHERE ($1::bigint = 0 OR msg_id = $1::bigint) AND severity >= $2::bigint "
			"AND ($3::text IS NULL OR lower(device) = lower($3::text)) "
			"AND ($4::bigint = 0 OR created_at >= $4::bigint) "
			"AND ($5::bigint = 0 OR created_at < $5::bigint) "
			"AND (created_at, id) < ($6::bigint, $7::bigint) "
			"ORDER BY created_at DESC, id DESC LIMIT $8::bigint",
			&p, &status_spec, INT64_MAX, INT64_MAX, f->limit, &e, err);
}

/* ---- audit ---- */

static void read_audit(struct rd *r, void *row)
{
	struct store_audit *a = row;

	a->id = rd_i64(r);
	a->at = rd_i64(r);
	rd_text(r, a->actor, sizeof(a->actor));
	a->device_id = rd_i64(r);
	rd_text(r, a->action, sizeof(a->action));
	rd_text(r, a->detail, sizeof(a->detail));
}

static const struct list_spec audit_spec = {
	.table = "audit",
	.row_size = sizeof(struct store_audit),
	.read = read_audit,
	.key = key_by_id,
	.emit = emit_audit,
};

static int pg_audit_add(struct store *st, const char *actor, int64_t device_id,
			const char *action, const char *detail, int64_t now,
			struct amtprov_error *err)
{
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	if ((rc = device_must_exist(st, device_id, "device_id", err)) == AMTPROV_OK)
		rc = audit_insert(st, actor, device_id, action, detail, now, err);
	return op_end(st, rc, err);
}

static int pg_audit_list(struct store *st, int64_t device_id, int limit, store_audit_cb cb,
			 void *ctx, struct amtprov_error *err)
{
	struct emit_ctx e = { .cb.audit = cb, .ctx = ctx };
	struct params p = {0};

	p_i64(&p, device_id);
	return run_list(st,
			"SELECT id, at, actor, coalesce(device_id, 0), action, detail FROM audit "
			"WHERE ($1::bigint = 0 OR device_id = $1::bigint) AND id > $2::bigint "
			"ORDER BY id LIMIT $4::bigint",
			&p, &audit_spec, INT64_MIN, 0, limit, &e, err);
}

/* ---- pending operations ---- */

#define PENDING_COLS                                                                       \
	"id, coalesce(device_id, 0), kind, payload, created_at, next_attempt_at, attempts, " \
	"last_error"

static void read_pending(struct rd *r, void *row)
{
	struct store_pending *p = row;

	p->id = rd_i64(r);
	p->device_id = rd_i64(r);
	rd_text(r, p->kind, sizeof(p->kind));
	rd_text(r, p->payload, sizeof(p->payload));
	p->created_at = rd_i64(r);
	p->next_attempt_at = rd_i64(r);
	p->attempts = rd_int(r);
	rd_text(r, p->last_error, sizeof(p->last_error));
}

static const struct list_spec pending_spec = {
	.table = "pending_ops",
	.row_size = sizeof(struct store_pending),
	.read = read_pending,
	.key = key_by_id,
	.emit = emit_pending,
};

static int pg_pending_add(struct store *st, struct store_pending *op, int64_t now,
			  struct amtprov_error *err)
{
	struct params p = {0};
	int64_t id = 0;
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	if ((rc = device_must_exist(st, op->device_id, "device_id", err)) == AMTPROV_OK) {
		p_ref(&p, op->device_id);
		p_text(&p, op->kind);
		p_text(&p, op->payload);
		p_i64(&p, now);
		p_i64(&p, op->next_attempt_at);
		p_i64(&p, op->attempts);
		p_text(&p, op->last_error);
		rc = write_unique(st,
				  "INSERT INTO pending_ops (device_id, kind, payload, created_at, "
				  "next_attempt_at, attempts, last_error) VALUES ($1::bigint, "
				  "$2::text, $3::text, $4::bigint, $5::bigint, $6::bigint, $7::text) "
				  "RETURNING id",
				  &p, &id, "recording a pending operation", err);
	}
	rc = op_end(st, rc, err);
	if (rc == AMTPROV_OK) {
		op->id = id;
		op->created_at = now;
	}
	return rc;
}

static int pg_pending_due(struct store *st, const char *kind, int64_t now, store_pending_cb cb,
			  void *ctx, struct amtprov_error *err)
{
	struct emit_ctx e = { .cb.pending = cb, .ctx = ctx };
	struct params p = {0};

	p_i64(&p, now);
	p_text(&p, kind);
	return run_list(st,
			"SELECT " PENDING_COLS " FROM pending_ops "
			"WHERE next_attempt_at <= $1::bigint AND ($2::text IS NULL OR kind = $2::text) "
			"AND id > $3::bigint ORDER BY id LIMIT $5::bigint",
			&p, &pending_spec, INT64_MIN, 0, 0, &e, err);
}

static int pg_pending_list(struct store *st, int64_t device_id, store_pending_cb cb, void *ctx,
			   struct amtprov_error *err)
{
	struct emit_ctx e = { .cb.pending = cb, .ctx = ctx };
	struct params p = {0};

	p_i64(&p, device_id);
	return run_list(st,
			"SELECT " PENDING_COLS " FROM pending_ops "
			"WHERE ($1::bigint = 0 OR device_id = $1::bigint) AND id > $2::bigint "
			"ORDER BY id LIMIT $4::bigint",
			&p, &pending_spec, INT64_MIN, 0, 0, &e, err);
}

/* One UPDATE/DELETE of the pending operation @p id, as its own unit of work;
 * AMTPROV_E_NOT_FOUND if there is none. */
static int change_one(struct store *st, const char *sql, const struct params *p, int64_t id,
		      const char *what, struct amtprov_error *err)
{
	PGresult *r = NULL;
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	rc = run(st, sql, p, &r, what, err);
	if (rc == AMTPROV_OK && changes(r) == 0)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no pending operation with id %lld", (long long)id);
	PQclear(r);
	return op_end(st, rc, err);
}

static int pg_pending_retry(struct store *st, int64_t id, const char *last_error,
			    int64_t next_attempt_at, struct amtprov_error *err)
{
	struct params p = {0};

	p_i64(&p, id);
	p_text(&p, last_error);
	p_i64(&p, next_attempt_at);
	return change_one(st,
			  "UPDATE pending_ops SET attempts = attempts + 1, last_error = $2::text, "
			  "next_attempt_at = $3::bigint WHERE id = $1::bigint",
			  &p, id, "recording a retry", err);
}

static int pg_pending_defer(struct store *st, int64_t id, int64_t next_attempt_at,
			    struct amtprov_error *err)
{
	struct params p = {0};

	p_i64(&p, id);
	p_i64(&p, next_attempt_at);
	return change_one(st,
			  "UPDATE pending_ops SET next_attempt_at = $2::bigint WHERE id = $1::bigint",
			  &p, id, "leasing an operation", err);
}

static int pg_pending_done(struct store *st, int64_t id, struct amtprov_error *err)
{
	struct params p = {0};

	p_i64(&p, id);
	return change_one(st, "DELETE FROM pending_ops WHERE id = $1::bigint", &p, id,
			  "removing a pending operation", err);
}

/* ---- maintenance tasks ---- */

#define TASK_COLUMNS                                                                       \
	"name, last_run, last_result, last_detail, next_run, interval_seconds, requests, served, " \
	"lease_owner, lease_until"

static int read_task(struct store *st, const PGresult *r, int row, struct store_task *out,
		     struct amtprov_error *err)
{
	struct rd rdr = { r, row, 0, -1 };

	memset(out, 0, sizeof(*out));
	rd_text(&rdr, out->name, sizeof(out->name));
	out->last_run = rd_i64(&rdr);
	out->last_result = rd_int(&rdr);
	rd_text(&rdr, out->last_detail, sizeof(out->last_detail));
	out->next_run = rd_i64(&rdr);
	out->interval_seconds = rd_i64(&rdr);
	out->requests = rd_i64(&rdr);
	out->served = rd_i64(&rdr);
	rd_text(&rdr, out->lease_owner, sizeof(out->lease_owner));
	out->lease_until = rd_i64(&rdr);
	return rd_check(st, &rdr, "maintenance_tasks", err);
}

static int pg_task_get(struct store *st, const char *name, struct store_task *out,
		       struct amtprov_error *err)
{
	struct params p = {0};
	PGresult *r;
	int rc;

	p_text(&p, name);
	if ((rc = run(st, "SELECT " TASK_COLUMNS " FROM maintenance_tasks WHERE name = $1::text",
		      &p, &r, "reading a maintenance task", err)))
		return rc;
	if (PQntuples(r) > 0)
		rc = read_task(st, r, 0, out, err);
	else
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "maintenance task '%s' has no record", name);
	PQclear(r);
	return rc;
}

static int pg_task_put(struct store *st, const struct store_task *task,
		       struct amtprov_error *err)
{
	struct params p = {0};
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	p_text(&p, task->name);
	p_i64(&p, task->last_run);
	p_i64(&p, task->last_result);
	p_text(&p, task->last_detail);
	p_i64(&p, task->next_run);
	p_i64(&p, task->interval_seconds);
	p_i64(&p, task->served);
	rc = exec(st,
		  "INSERT INTO maintenance_tasks (name, last_run, last_result, last_detail, "
		  "next_run, interval_seconds, served) VALUES ($1::text, $2::bigint, $3::bigint, "
		  "$4::text, $5::bigint, $6::bigint, $7::bigint) "
		  "ON CONFLICT (name) DO UPDATE SET last_run = excluded.last_run, "
		  "last_result = excluded.last_result, last_detail = excluded.last_detail, "
		  "next_run = excluded.next_run, interval_seconds = excluded.interval_seconds, "
		  "served = excluded.served",
		  &p, "recording a maintenance task", err);
	return op_end(st, rc, err);
}

static int pg_task_request(struct store *st, const char *name, int64_t *request,
			   struct amtprov_error *err)
{
	struct params p = {0};
	PGresult *r = NULL;
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	p_text(&p, name);
	rc = run(st,
		 "INSERT INTO maintenance_tasks (name, requests) VALUES ($1::text, 1) "
		 "ON CONFLICT (name) DO UPDATE SET requests = maintenance_tasks.requests + 1 "
		 "RETURNING requests",
		 &p, &r, "requesting a maintenance task run", err);
	if (rc == AMTPROV_OK && PQntuples(r) == 1)
		*request = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return op_end(st, rc, err);
}

static int pg_task_list(struct store *st, store_task_cb cb, void *ctx,
			struct amtprov_error *err)
{
	struct store_task t;
	PGresult *r;
	int rc;

	if ((rc = run(st, "SELECT " TASK_COLUMNS " FROM maintenance_tasks ORDER BY name", NULL,
		      &r, "listing maintenance tasks", err)))
		return rc;
	for (int i = 0; rc == AMTPROV_OK && i < PQntuples(r); i++) {
		if ((rc = read_task(st, r, i, &t, err)))
			break;
		if (cb(ctx, &t))
			break;
	}
	PQclear(r);
	return rc;
}

/*
 * Like a device claim: the record is created if the task never ran, then its row is locked
 * with SKIP LOCKED (a row another host is writing right now, recording its run, is skipped
 * at once rather than waited for) and the lease condition decides.
 */
static int pg_task_claim(struct store *st, const char *name, const char *owner, int64_t now,
			 int64_t until, struct amtprov_error *err)
{
	struct params p = {0};
	PGresult *r = NULL;
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	p_text(&p, name);
	rc = exec(st, "INSERT INTO maintenance_tasks (name) VALUES ($1::text) "
		  "ON CONFLICT (name) DO NOTHING", &p, "claiming a maintenance task", err);
	p = (struct params){0};
	p_text(&p, name);
	p_text(&p, owner);
	p_i64(&p, now);
	p_i64(&p, until);
	if (rc == AMTPROV_OK)
		rc = run(st,
			 "UPDATE maintenance_tasks SET lease_owner = $2::text, "
			 "lease_until = $4::bigint WHERE name = "
			 "(SELECT name FROM maintenance_tasks WHERE name = $1::text AND "
			 "(lease_owner = '' OR lease_owner = $2::text OR lease_until < $3::bigint) "
			 "FOR UPDATE SKIP LOCKED)",
			 &p, &r, "claiming a maintenance task", err);
	if (rc == AMTPROV_OK && changes(r) == 0)
		rc = amtprov_error_set(err, AMTPROV_E_BUSY, st->path,
				       "maintenance task '%s' is run by another host", name);
	PQclear(r);
	return op_end(st, rc, err);
}

static int pg_task_release(struct store *st, const char *name, const char *owner,
			   struct amtprov_error *err)
{
	struct params p = {0};
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	p_text(&p, name);
	p_text(&p, owner);
	rc = exec(st,
		  "UPDATE maintenance_tasks SET lease_owner = '', lease_until = 0 "
		  "WHERE name = $1::text AND lease_owner = $2::text",
		  &p, "releasing a maintenance task", err);
	return op_end(st, rc, err);
}

static const struct store_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.schema_version = pg_schema_version,
	.check = pg_check,
	.tx_begin = pg_tx_begin,
	.tx_commit = pg_tx_commit,
	.tx_rollback = pg_tx_rollback,
	.device_add = pg_device_add,
	.device_get = pg_device_get,
	.device_find = pg_device_find,
	.device_list = pg_device_list,
	.device_list_due = pg_device_list_due,
	.device_count_by_state = pg_device_count_by_state,
	.device_transition = pg_device_transition,
	.device_update = pg_device_update,
	.device_reregister = pg_device_reregister,
	.device_delete = pg_device_delete,
	.device_claim = pg_device_claim,
	.device_release = pg_device_release,
	.lease_renew = pg_lease_renew,
	.cert_add = pg_cert_add,
	.cert_get = pg_cert_get,
	.cert_list = pg_cert_list,
	.cert_set_status = pg_cert_set_status,
	.cert_data_put = pg_cert_data_put,
	.cert_data_get = pg_cert_data_get,
	.status_add = pg_status_add,
	.status_list = pg_status_list,
	.audit_add = pg_audit_add,
	.audit_list = pg_audit_list,
	.pending_add = pg_pending_add,
	.pending_due = pg_pending_due,
	.pending_list = pg_pending_list,
	.pending_defer = pg_pending_defer,
	.pending_retry = pg_pending_retry,
	.pending_done = pg_pending_done,
	.task_get = pg_task_get,
	.task_put = pg_task_put,
	.task_request = pg_task_request,
	.task_list = pg_task_list,
	.task_claim = pg_task_claim,
	.task_release = pg_task_release,
	.lease_count = pg_lease_count,
};
