/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQLite back end of the site database.
 *
 * Durability (R-PROV-13, docs/database.md): WAL with synchronous=NORMAL. A COMMIT that
 * returned is in the WAL, so it survives the process being killed at any moment; the WAL
 * reaches the disk at checkpoints, and at once (wal_sync) when the transaction holds a
 * record that must survive power loss too: a registration, a certificate, a pending
 * operation (the write-ahead records of keys, passwords and CA requests). Every write is
 * a transaction of its own (BEGIN IMMEDIATE, so a writer waits for the lock up front
 * instead of failing halfway with SQLITE_BUSY_SNAPSHOT), or a savepoint inside the
 * caller's explicit transaction.
 *
 * Statements are prepared once per handle and cached (prepare/release); a statement
 * already handed out is never handed out twice, so the handle stays reentrant (a list
 * callback may call any other store function, even the same list). Lists read in keyset
 * batches and run the callbacks with no read cursor open, for the same reason.
 *
 * All SQL text is constant; data only ever travels in bound parameters.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store_int.h"
#include "store_migrations.h"
#include "store_sync.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(ARRAY_LEN(store_migrations) == STORE_SCHEMA_VERSION,
	       "store_migrations must hold exactly one entry per schema version");

/* Busy timeout: long enough to ride out another handle's commit (fsyncs included),
 * short enough that a stuck writer surfaces as AMTPROV_E_BUSY. */
#define BUSY_TIMEOUT_MS 5000
/* Rows fetched per batch in list functions. */
#define LIST_BATCH 64

#define RESTORE_HINT "restore the site database from backup (see docs/database.md)"

/* A cached prepared statement, keyed on its SQL text (constant, so the pointer is enough
 * to find it; the text is compared too, in case two literals share nothing but a pointer
 * value over time). */
struct cached_stmt {
	const char *sql;
	sqlite3_stmt *s;
	int busy; /* handed out and not yet released */
};

/* Enough for every distinct statement of this file; a miss beyond it just prepares. */
#define STMT_CACHE_SIZE 96

struct sq {
	sqlite3 *db;
	int version;
	dev_t dev; /* identity of the file, for the open-files registry */
	ino_t ino;
	/* What the open transaction wrote that must survive power loss: DURABLE_LATER (a
	 * certificate or a pending operation: synced before the commit returns, or, with
	 * deferred syncing, before amtprovd acts on it: store_sync.h) or DURABLE_NOW (a
	 * registration: an agent is told at once, so always synced before the commit
	 * returns). */
	int durable;
	/* Deferred syncing (store_defer_sync): the syncer's handle of this WAL, else NULL. */
	struct store_sync_src *sync_src;
	struct cached_stmt cache[STMT_CACHE_SIZE];
	size_t n_cache;
};

/*
 * Database files this process has open through SQLite. On POSIX, closing *any* descriptor
 * of a file drops every lock the process holds on it, so the raw header check below must
 * never run while SQLite holds the same file open in this process: it would silently drop
 * SQLite's locks, another process would then believe it is the last user, checkpoint and
 * delete the WAL, and our connection would keep reading a dead snapshot. A file already
 * open here was checked when it was first opened.
 */
struct open_file {
	dev_t dev;
	ino_t ino;
	int count;
};
static pthread_mutex_t open_files_lock = PTHREAD_MUTEX_INITIALIZER;
static struct open_file *open_files;
static size_t n_open_files;

static int open_files_has(dev_t dev, ino_t ino)
{
	int found = 0;

	pthread_mutex_lock(&open_files_lock);
	for (size_t i = 0; i < n_open_files && !found; i++)
		found = open_files[i].dev == dev && open_files[i].ino == ino;
	pthread_mutex_unlock(&open_files_lock);
	return found;
}

static int open_files_add(dev_t dev, ino_t ino)
{
	int rc = 0;

	pthread_mutex_lock(&open_files_lock);
	for (size_t i = 0; i < n_open_files; i++) {
		if (open_files[i].dev == dev && open_files[i].ino == ino) {
			open_files[i].count++;
			goto out;
		}
	}
	{
		struct open_file *nf = realloc(open_files, (n_open_files + 1) * sizeof(*nf));

		if (!nf) {
			rc = -1;
			goto out;
		}
		open_files = nf;
		open_files[n_open_files++] = (struct open_file){dev, ino, 1};
	}
out:
	pthread_mutex_unlock(&open_files_lock);
	return rc;
}

static void open_files_del(dev_t dev, ino_t ino)
{
	pthread_mutex_lock(&open_files_lock);
	for (size_t i = 0; i < n_open_files; i++) {
		if (open_files[i].dev == dev && open_files[i].ino == ino) {
			if (--open_files[i].count == 0) {
				open_files[i] = open_files[--n_open_files];
				if (n_open_files == 0) {
					free(open_files);
					open_files = NULL;
				}
			}
			break;
		}
	}
	pthread_mutex_unlock(&open_files_lock);
}

static sqlite3 *db_of(struct store *st)
{
	return ((struct sq *)st->be)->db;
}

/* ---- errors ---- */

/* Maps a SQLite result to an amtprov status and fills err with what failed. */
static int sq_fail(struct store *st, sqlite3 *db, int rc, const char *what,
		   struct amtprov_error *err)
{
	const char *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return amtprov_error_set(err, AMTPROV_E_BUSY, st->path,
					 "%s: the site database is locked by another writer "
					 "(%s); try again",
					 what, detail);
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					 "%s: %s; the site database is damaged: " RESTORE_HINT,
					 what, detail);
	case SQLITE_NOMEM:
		return amtprov_error_set(err, AMTPROV_E_NOMEM, st->path, "%s: out of memory",
					 what);
	default:
		return amtprov_error_set(err, AMTPROV_E_IO, st->path, "%s: %s", what, detail);
	}
}

/*
 * Hands out the prepared statement for @p sql, compiling it only the first time: a step
 * outcome used to cost a dozen compilations. Release it with release(). The statement is
 * marked busy while out, so a reentrant use of the same SQL (a list callback calling the
 * list it runs in) gets a private statement instead of clobbering the outer one's bindings.
 */
static int prepare(struct store *st, const char *sql, sqlite3_stmt **out,
		   struct amtprov_error *err)
{
	struct sq *q = st->be;
	struct cached_stmt *free_slot = NULL;
	int rc;

	for (size_t i = 0; i < q->n_cache; i++) {
		struct cached_stmt *c = &q->cache[i];

		if (c->sql == sql || strcmp(c->sql, sql) == 0) {
			if (c->busy) {
				free_slot = NULL;
				goto uncached;
			}
			c->busy = 1;
			*out = c->s;
			return AMTPROV_OK;
		}
	}
	if (q->n_cache < STMT_CACHE_SIZE)
		free_slot = &q->cache[q->n_cache];
uncached:
	rc = sqlite3_prepare_v3(q->db, sql, -1, free_slot ? SQLITE_PREPARE_PERSISTENT : 0, out,
				NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(*out);
		*out = NULL;
		return sq_fail(st, q->db, rc, "preparing a statement", err);
	}
	if (free_slot) {
		*free_slot = (struct cached_stmt){ sql, *out, 1 };
		q->n_cache++;
	}
	return AMTPROV_OK;
}

/* Gives back a statement from prepare(): a cached one is reset (which also ends any read
 * it held) and its bindings cleared; a private one is finalized. NULL is allowed. */
static void release(struct store *st, sqlite3_stmt *s)
{
	struct sq *q = st->be;

	if (!s)
		return;
	for (size_t i = 0; i < q->n_cache; i++) {
		if (q->cache[i].s == s) {
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			q->cache[i].busy = 0;
			return;
		}
	}
	sqlite3_finalize(s);
}

static void cache_clear(struct sq *q)
{
	for (size_t i = 0; i < q->n_cache; i++)
		sqlite3_finalize(q->cache[i].s);
	q->n_cache = 0;
}

/* Runs constant SQL (no data). */
static int exec_fixed(struct store *st, const char *sql, const char *what,
		      struct amtprov_error *err)
{
	int rc = sqlite3_exec(db_of(st), sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return sq_fail(st, db_of(st), rc, what, err);
	return AMTPROV_OK;
}

/* Runs one constant statement through the cache (BEGIN, COMMIT, savepoints: every write
 * runs them, and sqlite3_exec would compile them each time). */
static int exec_cached(struct store *st, const char *sql, const char *what,
		       struct amtprov_error *err)
{
	sqlite3_stmt *s;
	int rc = prepare(st, sql, &s, err);

	if (rc == AMTPROV_OK) {
		int r = sqlite3_step(s);

		if (r != SQLITE_DONE && r != SQLITE_ROW)
			rc = sq_fail(st, db_of(st), r, what, err);
		release(st, s);
	}
	return rc;
}

/* Steps a statement that returns no rows. */
static int step_done(struct store *st, sqlite3_stmt *s, const char *what,
		     struct amtprov_error *err)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE)
		return sq_fail(st, db_of(st), rc, what, err);
	return AMTPROV_OK;
}

/* Binding: the first failure sticks, so a run of binds needs one check. */
struct binder {
	sqlite3_stmt *s;
	int rc;
};

static void b_text(struct binder *b, int i, const char *v)
{
	if (b->rc != SQLITE_OK)
		return;
	b->rc = v ? sqlite3_bind_text(b->s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(b->s, i);
}

static void b_i64(struct binder *b, int i, int64_t v)
{
	if (b->rc == SQLITE_OK)
		b->rc = sqlite3_bind_int64(b->s, i, v);
}

/* A device id where 0 means "none": stored as NULL so the foreign key allows it. */
static void b_ref(struct binder *b, int i, int64_t v)
{
	if (b->rc != SQLITE_OK)
		return;
	b->rc = v ? sqlite3_bind_int64(b->s, i, v) : sqlite3_bind_null(b->s, i);
}

static int b_check(struct store *st, struct binder *b, struct amtprov_error *err)
{
	if (b->rc != SQLITE_OK)
		return sq_fail(st, db_of(st), b->rc, "binding a parameter", err);
	return AMTPROV_OK;
}

/* Row reading: copies columns in order; a text too long for its field is remembered (the
 * database was then written by something other than this code) instead of cut. */
struct rd {
	sqlite3_stmt *s;
	int col;
	int bad; /* first column that did not fit, or -1 */
};

static void rd_text(struct rd *r, char *buf, size_t size)
{
	const unsigned char *t = sqlite3_column_text(r->s, r->col);
	size_t n = t ? (size_t)sqlite3_column_bytes(r->s, r->col) : 0;

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
	return sqlite3_column_int64(r->s, r->col++);
}

static int rd_int(struct rd *r)
{
	return sqlite3_column_int(r->s, r->col++);
}

static int rd_check(struct store *st, const struct rd *r, const char *table,
		    struct amtprov_error *err)
{
	if (r->bad < 0)
		return AMTPROV_OK;
	return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
				 "%s.%s holds a value longer than this build accepts "
				 "(written by another tool?): " RESTORE_HINT,
				 table, sqlite3_column_name(r->s, r->bad));
}

/* ---- per-call atomicity ---- */

/*
 * Makes every commit so far survive power loss: syncs the WAL file. With
 * synchronous=NORMAL a COMMIT only writes the WAL (a process crash loses nothing, the OS
 * has the pages); the WAL is synced by checkpoints, and here for the records that must
 * not wait for one (see docs/database.md, "Durability"). The WAL is appended in commit
 * order, so one sync covers this commit and every one before it.
 */
static int wal_sync(struct store *st, struct amtprov_error *err)
{
	sqlite3_file *f = NULL;
	int rc = sqlite3_file_control(db_of(st), "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);

	if (rc == SQLITE_OK && f && f->pMethods)
		rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
	else if (rc == SQLITE_OK)
		/* No WAL open (nothing written through this connection yet): a full
		 * checkpoint syncs whatever another connection wrote. */
		rc = sqlite3_wal_checkpoint_v2(db_of(st), "main", SQLITE_CHECKPOINT_PASSIVE,
					       NULL, NULL);
	if (rc != SQLITE_OK)
		return amtprov_error_set(err, AMTPROV_E_IO, st->path,
					 "committed, but cannot sync the write-ahead log to disk "
					 "(%s): the change may not survive a power loss",
					 sqlite3_errstr(rc));
	return AMTPROV_OK;
}

enum { DURABLE_NO, DURABLE_LATER, DURABLE_NOW };

/* Commits the open transaction; syncs the WAL when it holds a durable record, or hands
 * the sync to the syncer thread (store_sync.h) when the record can wait for it. */
static int commit(struct store *st, struct amtprov_error *err)
{
	struct sq *q = st->be;
	int rc = exec_cached(st, "COMMIT", "committing", err);

	/* Deferred only on the thread whose actions wait for the syncer (the loop). */
	if (rc == AMTPROV_OK && q->durable == DURABLE_LATER && q->sync_src &&
	    store_sync_on_loop())
		store_sync_defer(q->sync_src);
	else if (rc == AMTPROV_OK && q->durable)
		rc = wal_sync(st, err);
	q->durable = DURABLE_NO;
	return rc;
}

/* Marks the transaction of the current call as one that must survive power loss before
 * amtprovd acts on it (a pending operation, a certificate). */
static void want_durable(struct store *st)
{
	struct sq *q = st->be;

	if (q->durable < DURABLE_LATER)
		q->durable = DURABLE_LATER;
}

/* ... and before the call returns (a registration: the agent is answered at once). */
static void want_durable_now(struct store *st)
{
	((struct sq *)st->be)->durable = DURABLE_NOW;
}

/* sqlite3_wal_hook (replaces the automatic checkpoint): past SQLite's default threshold
 * of 1,000 pages, the syncer checkpoints. */
static int wal_grown(void *ctx, sqlite3 *db, const char *name, int frames)
{
	struct sq *q = ctx;

	(void)db;
	(void)name;
	if (frames >= 1000 && q->sync_src)
		store_sync_checkpoint(q->sync_src);
	return SQLITE_OK;
}

static int sq_defer_sync(struct store *st, struct amtprov_error *err)
{
	struct sq *q = st->be;
	const char *db = sqlite3_db_filename(q->db, "main");
	if (q->sync_src)
		return AMTPROV_OK;
	if (!db || !*db)
		return amtprov_error_set(err, AMTPROV_E_INVALID, st->path,
					 "deferred syncing needs a database file");
	q->sync_src = store_sync_src_get(db);
	if (!q->sync_src)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL,
					 "cannot start the database's syncer thread");
	/* Checkpoints too leave this thread: SQLite's automatic one (a sync of the WAL and
	 * of the database, inside a COMMIT) becomes a request to the syncer. */
	sqlite3_wal_hook(q->db, wal_grown, q);
	return AMTPROV_OK;
}

/* Opens the unit of work for one mutating call: its own transaction, or a savepoint when
 * the caller holds an explicit transaction (which must not be ended or nested). */
static int op_begin(struct store *st, struct amtprov_error *err)
{
	if (st->in_tx)
		return exec_cached(st, "SAVEPOINT store_op", "starting a savepoint", err);
	((struct sq *)st->be)->durable = DURABLE_NO;
	return exec_cached(st, "BEGIN IMMEDIATE", "starting a transaction", err);
}

/* Closes it: commit/release when @p rc is OK, else undo only this call's work. */
static int op_end(struct store *st, int rc, struct amtprov_error *err)
{
	sqlite3 *db = db_of(st);

	if (rc == AMTPROV_OK) {
		if (st->in_tx)
			rc = exec_cached(st, "RELEASE store_op", "committing", err);
		else
			rc = commit(st, err);
		if (rc == AMTPROV_OK || (!st->in_tx && sqlite3_get_autocommit(db)))
			return rc; /* a failed sync after a good COMMIT: nothing to undo */
	}
	if (st->in_tx) {
		sqlite3_exec(db, "ROLLBACK TO store_op", NULL, NULL, NULL);
		sqlite3_exec(db, "RELEASE store_op", NULL, NULL, NULL);
	} else if (!sqlite3_get_autocommit(db)) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	return rc;
}

/* ---- small queries ---- */

/* Runs a one-row lookup with one text or integer key; *found says whether a row came
 * back, *id gets its first column. */
static int lookup_id(struct store *st, const char *sql, const char *tkey, int64_t ikey,
		     int64_t *id, int *found, struct amtprov_error *err)
{
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	*found = 0;
	if ((rc = prepare(st, sql, &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	if (tkey)
		b_text(&b, 1, tkey);
	else
		b_i64(&b, 1, ikey);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK) {
		int r = sqlite3_step(s);

		if (r == SQLITE_ROW) {
			*found = 1;
			if (id)
				*id = sqlite3_column_int64(s, 0);
		} else if (r != SQLITE_DONE) {
			rc = sq_fail(st, db_of(st), r, "looking up a record", err);
		}
	}
	release(st, s);
	return rc;
}

static int device_must_exist(struct store *st, int64_t device_id, const char *field,
			     struct amtprov_error *err)
{
	int found, rc;

	if (!device_id)
		return AMTPROV_OK;
	rc = lookup_id(st, "SELECT id FROM devices WHERE id = ?1", NULL, device_id, NULL,
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
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	if ((rc = prepare(st,
			  "INSERT INTO audit (at, actor, device_id, action, detail) "
			  "VALUES (?1, ?2, ?3, ?4, ?5)",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, now);
	b_text(&b, 2, actor);
	b_ref(&b, 3, device_id);
	b_text(&b, 4, action);
	b_text(&b, 5, detail);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = step_done(st, s, "writing the audit record", err);
	release(st, s);
	return rc;
}

/* ---- batched lists ---- */

/*
 * Runs @p s (filters already bound) in batches: the SQL takes :k1 (and optionally :k2),
 * the key of the last row seen, and :n, the batch size. Rows are copied out and the
 * statement reset before the callbacks run, so no read cursor is open during a callback.
 */
struct list_spec {
	const char *table;
	size_t row_size;
	void (*read)(struct rd *r, void *row);
	/* Keys of a row, bound to :k1/:k2 for the next batch. */
	void (*key)(const void *row, int64_t *k1, int64_t *k2);
	int (*emit)(void *emit_ctx, const void *row);
	/* Rows of the first query (0: LIST_BATCH), doubled for each next one up to
	 * LIST_BATCH: for a caller that usually stops after a few rows. */
	int first_batch;
};

static int run_list(struct store *st, sqlite3_stmt *s, const struct list_spec *spec,
		    int64_t k1, int64_t k2, int limit, void *emit_ctx,
		    struct amtprov_error *err)
{
	int ik1 = sqlite3_bind_parameter_index(s, ":k1");
	int ik2 = sqlite3_bind_parameter_index(s, ":k2");
	int in = sqlite3_bind_parameter_index(s, ":n");
	int batch = spec->first_batch > 0 && spec->first_batch < LIST_BATCH ? spec->first_batch
									      : LIST_BATCH;
	unsigned char *rows = malloc(spec->row_size * (size_t)batch);
	int remaining = limit > 0 ? limit : -1;
	int rc = AMTPROV_OK;

	if (!rows)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, st->path, "out of memory");
	for (;;) {
		int want = batch, got = 0, r = SQLITE_OK, stop = 0;
		struct binder b = { s, SQLITE_OK };

		if (remaining >= 0 && remaining < want)
			want = remaining;
		if (want == 0)
			break;
		b_i64(&b, ik1, k1);
		if (ik2)
			b_i64(&b, ik2, k2);
		b_i64(&b, in, want);
		if ((rc = b_check(st, &b, err)))
			break;
		while (got < want && (r = sqlite3_step(s)) == SQLITE_ROW) {
			struct rd rdr = { s, 0, -1 };

			memset(rows + got * spec->row_size, 0, spec->row_size);
			spec->read(&rdr, rows + got * spec->row_size);
			if ((rc = rd_check(st, &rdr, spec->table, err)))
				break;
			got++;
		}
		if (rc == AMTPROV_OK && r != SQLITE_ROW && r != SQLITE_DONE)
			rc = sq_fail(st, db_of(st), r, "reading a list", err);
		sqlite3_reset(s);
		if (rc)
			break;
		for (int i = 0; i < got && !stop; i++)
			stop = spec->emit(emit_ctx, rows + i * spec->row_size);
		if (stop || got < want)
			break;
		spec->key(rows + (got - 1) * spec->row_size, &k1, &k2);
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

/* Every record struct starts with its int64_t id; ascending-id lists key on it alone. */
static void key_by_id(const void *row, int64_t *k1, int64_t *k2)
{
	*k1 = *(const int64_t *)row;
	*k2 = 0;
}

/* ---- open, check, migrate ---- */

/*
 * Looks at the file before SQLite does: an existing file that is not a SQLite database,
 * or is visibly truncated, must be refused without being touched (SQLite would happily
 * "open" it and we would then write a schema or a WAL header into it).
 */
static int check_header(struct store *st, int flags, int *empty, struct amtprov_error *err)
{
	unsigned char h[100];
	struct stat sb, jb;
	char side[4096];
	unsigned page;
	ssize_t n;
	int fd, quiet_side = 1;

	/* A non-empty WAL or rollback journal may legitimately hold the rest of the file
	 * (crash before or during a checkpoint); SQLite recovers that itself, so sizes are
	 * only judged without one. */
	snprintf(side, sizeof(side), "%s-wal", st->path);
	if (stat(side, &jb) == 0 && jb.st_size > 0)
		quiet_side = 0;
	snprintf(side, sizeof(side), "%s-journal", st->path);
	if (stat(side, &jb) == 0 && jb.st_size > 0)
		quiet_side = 0;
	fd = open(st->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return amtprov_error_set(err, AMTPROV_E_IO, st->path, "cannot open: %s",
					 strerror(errno));
	if (fstat(fd, &sb) != 0) {
		int e = errno;

		close(fd);
		return amtprov_error_set(err, AMTPROV_E_IO, st->path, "cannot stat: %s",
					 strerror(e));
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return amtprov_error_set(err, AMTPROV_E_INVALID, st->path,
					 "not a regular file");
	}
	if (sb.st_size == 0 && quiet_side) {
		/* An empty file is an empty SQLite database; only initialise it when asked,
		 * and then as a new site database: mode 0600. */
		if (flags & STORE_OPEN_CREATE) {
			int rc = AMTPROV_OK;

			*empty = 1;
			if (fchmod(fd, 0600) != 0)
				rc = amtprov_error_set(err, AMTPROV_E_IO, st->path,
						       "cannot set mode 0600: %s", strerror(errno));
			close(fd);
			return rc;
		}
		close(fd);
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					 "the site database is an empty file (0 bytes): "
					 RESTORE_HINT ", or create a new one");
	}
	n = read(fd, h, sizeof(h));
	close(fd);
	if (sb.st_size == 0)
		return AMTPROV_OK; /* all of it is in the journal: SQLite's recovery decides */
	if (n < (ssize_t)sizeof(h))
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					 "truncated: %lld bytes is less than a SQLite header; "
					 RESTORE_HINT,
					 (long long)sb.st_size);
	if (memcmp(h, "SQLite format 3", 16) != 0)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					 "not a SQLite database (no SQLite header); wrong path, or "
					 "the file was overwritten: " RESTORE_HINT);
	page = (unsigned)h[16] << 8 | h[17];
	if (page == 1)
		page = 65536;
	if (page < 512 || (page & (page - 1)))
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					 "damaged SQLite header (page size %u): " RESTORE_HINT,
					 page);
	if (quiet_side) {
		uint32_t pages = (uint32_t)h[28] << 24 | (uint32_t)h[29] << 16 |
				 (uint32_t)h[30] << 8 | h[31];
		int count_valid = pages && !memcmp(h + 24, h + 92, 4);

		if (sb.st_size % page)
			return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
						 "truncated or damaged: %lld bytes is not a whole "
						 "number of %u-byte pages; " RESTORE_HINT,
						 (long long)sb.st_size, page);
		if (count_valid && (int64_t)pages * page > (int64_t)sb.st_size)
			return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
						 "truncated: the header says %u pages, the file "
						 "holds %lld pages; " RESTORE_HINT,
						 pages, (long long)(sb.st_size / page));
	}
	return AMTPROV_OK;
}

static int read_user_version(struct store *st, int *version, struct amtprov_error *err)
{
	sqlite3_stmt *s;
	int rc, r;

	if ((rc = prepare(st, "PRAGMA user_version", &s, err)))
		return rc;
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		*version = sqlite3_column_int(s, 0);
	else
		rc = sq_fail(st, db_of(st), r, "reading the schema version", err);
	release(st, s);
	return rc;
}

static const char *text_or(sqlite3_stmt *s, int col)
{
	const char *t = (const char *)sqlite3_column_text(s, col);

	return t ? t : "?";
}

/* PRAGMA quick_check or integrity_check: OK, or AMTPROV_E_CORRUPT with the first problem. */
static int run_check(struct store *st, const char *pragma, struct amtprov_error *err)
{
	sqlite3_stmt *s;
	int rc, r;

	if ((rc = prepare(st, pragma, &s, err)))
		return rc;
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		const char *first = text_or(s, 0);

		if (strcmp(first, "ok") != 0) {
			char what[AMTPROV_ERROR_MSG_SIZE];

			/* One line, and the advice first: the detail may not fit. */
			snprintf(what, sizeof(what), "%s", first);
			for (char *p = what; *p; p++)
				if (*p == '\n')
					*p = ' ';
			rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					       "the site database is damaged; " RESTORE_HINT
					       ". Integrity check: %s",
					       what);
		}
	} else {
		rc = sq_fail(st, db_of(st), r, "checking integrity", err);
	}
	release(st, s);
	return rc;
}

static int run_fk_check(struct store *st, struct amtprov_error *err)
{
	sqlite3_stmt *s;
	int rc, r;

	if ((rc = prepare(st, "PRAGMA foreign_key_check", &s, err)))
		return rc;
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
				       "the site database is damaged; " RESTORE_HINT
				       ". Foreign key check: %s row %lld refers to a missing %s row",
				       text_or(s, 0), (long long)sqlite3_column_int64(s, 1),
				       text_or(s, 2));
	else if (r != SQLITE_DONE)
		rc = sq_fail(st, db_of(st), r, "checking foreign keys", err);
	release(st, s);
	return rc;
}

static int count_schema_objects(struct store *st, int64_t *n, struct amtprov_error *err)
{
	sqlite3_stmt *s;
	int rc, r;

	if ((rc = prepare(st, "SELECT count(*) FROM sqlite_master", &s, err)))
		return rc;
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	else
		rc = sq_fail(st, db_of(st), r, "reading the schema", err);
	release(st, s);
	return rc;
}

static int set_journal_wal(struct store *st, struct amtprov_error *err)
{
	sqlite3_stmt *s;
	int rc, r;

	if ((rc = prepare(st, "PRAGMA journal_mode = WAL", &s, err)))
		return rc;
	r = sqlite3_step(s);
	if (r != SQLITE_ROW)
		rc = sq_fail(st, db_of(st), r, "switching to WAL mode", err);
	else if (strcmp(text_or(s, 0), "wal") != 0)
		rc = amtprov_error_set(err, AMTPROV_E_IO, st->path,
				       "cannot switch to WAL journal mode (file system without "
				       "shared memory support?); got '%s'",
				       text_or(s, 0));
	release(st, s);
	return rc;
}

/* Applies store_migrations[v..] one transaction each. Re-reads the version under the
 * write lock, so two processes opening a new file at once do not both migrate. */
static int migrate(struct store *st, struct amtprov_error *err)
{
	struct sq *q = st->be;

	for (;;) {
		int v = 0, after = 0, rc;

		if ((rc = exec_fixed(st, "BEGIN IMMEDIATE", "starting a migration", err)))
			return rc;
		rc = read_user_version(st, &v, err);
		if (rc == AMTPROV_OK && v >= STORE_SCHEMA_VERSION) {
			rc = exec_fixed(st, "COMMIT", "finishing a migration", err);
			if (rc == AMTPROV_OK) {
				q->version = v;
				return rc;
			}
		}
		if (rc == AMTPROV_OK && v < 0)
			rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
					       "invalid schema version %d: " RESTORE_HINT, v);
		if (rc == AMTPROV_OK) {
			rc = exec_fixed(st, store_migrations[v], "migrating the schema", err);
			if (rc == AMTPROV_OK)
				rc = read_user_version(st, &after, err);
			if (rc == AMTPROV_OK && after != v + 1)
				rc = amtprov_error_set(err, AMTPROV_E_INTERNAL, st->path,
						       "migration %d -> %d left user_version %d",
						       v, v + 1, after);
		}
		if (rc == AMTPROV_OK)
			rc = exec_fixed(st, "COMMIT", "committing a migration", err);
		if (rc != AMTPROV_OK) {
			if (!sqlite3_get_autocommit(q->db))
				sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
}

/* Everything after sqlite3_open_v2: checks before any write, then pragmas and migrations. */
static int setup(struct store *st, int flags, int fresh, struct amtprov_error *err)
{
	struct sq *q = st->be;
	int rc, v = 0;
	int64_t objects = 0;

	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
	/* SQLite silently falls back to read-only when the file is not writable. */
	if (!(flags & STORE_OPEN_READONLY) && sqlite3_db_readonly(q->db, "main") == 1)
		return amtprov_error_set(err, AMTPROV_E_IO, st->path,
					 "cannot open the site database for writing (check its "
					 "owner and mode, and the directory's)");
	/* Connection-level settings: they write nothing to the file. */
	if ((rc = exec_fixed(st,
			     "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; "
			     "PRAGMA secure_delete = ON; PRAGMA trusted_schema = OFF",
			     "configuring the connection", err)))
		return rc;
	if (!fresh) {
		if ((rc = run_check(st, "PRAGMA quick_check", err)) ||
		    (rc = read_user_version(st, &v, err)))
			return rc;
		if (v > STORE_SCHEMA_VERSION)
			return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
						 "created by a newer amtprov (schema %d, this "
						 "build knows %d); use that version, or "
						 RESTORE_HINT,
						 v, STORE_SCHEMA_VERSION);
		if (v == 0) {
			if ((rc = count_schema_objects(st, &objects, err)))
				return rc;
			if (objects > 0)
				return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
							 "a SQLite database, but not an amtprov "
							 "site database (wrong path?)");
			if (!(flags & STORE_OPEN_CREATE))
				return amtprov_error_set(err, AMTPROV_E_CORRUPT, st->path,
							 "an empty database without the amtprov "
							 "schema: " RESTORE_HINT
							 ", or create a new one");
		}
	}
	if (flags & STORE_OPEN_READONLY) {
		if (v < STORE_SCHEMA_VERSION)
			return amtprov_error_set(err, AMTPROV_E_STATE, st->path,
						 "schema %d is older than %d: open the database "
						 "read-write once to upgrade it",
						 v, STORE_SCHEMA_VERSION);
		q->version = v;
		return AMTPROV_OK;
	}
	if ((rc = set_journal_wal(st, err)))
		return rc;
	return migrate(st, err);
}

static void unlink_created(const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char p[4096];

	for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
		int n = snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);

		if (n > 0 && (size_t)n < sizeof(p))
			unlink(p);
	}
}

static const struct store_ops sqlite_ops;

int store_sqlite_open(struct store *st, int flags, struct amtprov_error *err)
{
	struct sq *q;
	struct stat sb;
	int created = 0, fresh = 0, rc, oflags;

	if (strlen(st->path) >= 4000)
		return amtprov_error_set(err, AMTPROV_E_INVALID, st->path, "path: too long");
	if (stat(st->path, &sb) != 0) {
		int fd;

		if (errno != ENOENT)
			return amtprov_error_set(err, AMTPROV_E_IO, st->path, "cannot stat: %s",
						 strerror(errno));
		if (!(flags & STORE_OPEN_CREATE))
			return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
						 "no site database at this path (create one first)");
		/* Create it ourselves, 0600 whatever the umask: it holds OTP hashes and the
		 * audit trail. SQLite gives its -wal/-shm files the main file's mode. */
		fd = open(st->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			if (fchmod(fd, 0600) != 0) {
				int e = errno;

				close(fd);
				unlink(st->path);
				return amtprov_error_set(err, AMTPROV_E_IO, st->path,
							 "cannot set mode 0600: %s", strerror(e));
			}
			close(fd);
			created = fresh = 1;
		} else if (errno != EEXIST) {
			return amtprov_error_set(err, AMTPROV_E_IO, st->path, "cannot create: %s",
						 strerror(errno));
		}
		/* EEXIST: someone created it meanwhile; treat it as existing. */
	}
	if (!created && !open_files_has(sb.st_dev, sb.st_ino)) {
		if ((rc = check_header(st, flags, &fresh, err)))
			return rc;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		if (created)
			unlink_created(st->path);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, st->path, "out of memory");
	}
	st->be = q;
	oflags = (flags & STORE_OPEN_READONLY) ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	/* No SQLITE_OPEN_CREATE: the file exists by now, and SQLite must never create one. */
	rc = sqlite3_open_v2(st->path, &q->db, oflags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		rc = sq_fail(st, q->db, rc, "opening the site database", err);
	else
		rc = setup(st, flags, fresh, err);
	if (rc != AMTPROV_OK) {
		cache_clear(q);
		sqlite3_close(q->db);
		free(q);
		st->be = NULL;
		if (created)
			unlink_created(st->path);
		return rc;
	}
	/* The file may have been created above: identify it now. */
	if (stat(st->path, &sb) != 0 || open_files_add(sb.st_dev, sb.st_ino) != 0) {
		cache_clear(q);
		sqlite3_close(q->db);
		free(q);
		st->be = NULL;
		return amtprov_error_set(err, AMTPROV_E_IO, st->path, "cannot register the open file");
	}
	q->dev = sb.st_dev;
	q->ino = sb.st_ino;
	st->ops = &sqlite_ops;
	return AMTPROV_OK;
}

static void sq_close(struct store *st)
{
	struct sq *q = st->be;

	if (!q)
		return;
	if (!sqlite3_get_autocommit(q->db))
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	/* Callers release every statement they prepare; the cache holds the rest. */
	cache_clear(q);
	sqlite3_close(q->db);
	/* After the close (which may checkpoint): deferred commits not synced yet are synced
	 * here when this was the file's last deferring handle. */
	store_sync_src_put(q->sync_src);
	open_files_del(q->dev, q->ino);
	free(q);
	st->be = NULL;
}

static int sq_schema_version(struct store *st)
{
	return ((struct sq *)st->be)->version;
}

static int sq_check(struct store *st, struct amtprov_error *err)
{
	int rc = run_check(st, "PRAGMA integrity_check", err);

	if (rc == AMTPROV_OK)
		rc = run_fk_check(st, err);
	return rc;
}

/* ---- explicit transactions ---- */

static int sq_tx_begin(struct store *st, struct amtprov_error *err)
{
	((struct sq *)st->be)->durable = 0;
	return exec_cached(st, "BEGIN IMMEDIATE", "starting a transaction", err);
}

static int sq_tx_commit(struct store *st, struct amtprov_error *err)
{
	int rc = commit(st, err);

	if (rc != AMTPROV_OK && !sqlite3_get_autocommit(db_of(st)))
		sqlite3_exec(db_of(st), "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static void sq_tx_rollback(struct store *st)
{
	((struct sq *)st->be)->durable = 0;
	if (!sqlite3_get_autocommit(db_of(st)))
		sqlite3_exec(db_of(st), "ROLLBACK", NULL, NULL, NULL);
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

/* One device by a single key; *found tells whether it exists. */
static int get_device(struct store *st, const char *sql, const char *tkey, int64_t ikey,
		      struct store_device *out, int *found, struct amtprov_error *err)
{
	sqlite3_stmt *s;
	struct binder b;
	int rc, r;

	*found = 0;
	if ((rc = prepare(st, sql, &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	if (tkey)
		b_text(&b, 1, tkey);
	else
		b_i64(&b, 1, ikey);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK) {
		r = sqlite3_step(s);
		if (r == SQLITE_ROW) {
			struct rd rdr = { s, 0, -1 };

			memset(out, 0, sizeof(*out));
			read_device(&rdr, out);
			rc = rd_check(st, &rdr, "devices", err);
			*found = rc == AMTPROV_OK;
		} else if (r != SQLITE_DONE) {
			rc = sq_fail(st, db_of(st), r, "reading a device", err);
		}
	}
	release(st, s);
	return rc;
}

/* E_EXISTS naming the field if another device (not @p self) already has @p value. */
static int device_key_free(struct store *st, const char *field, const char *value,
			   int64_t self, struct amtprov_error *err)
{
	static const char *const sql_fqdn = "SELECT id FROM devices WHERE fqdn = ?1";
	static const char *const sql_uuid = "SELECT id FROM devices WHERE uuid = ?1";
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

/* A UNIQUE failure that slipped past the pre-checks: name the field from SQLite's text. */
static int unique_failure(struct store *st, int r, struct amtprov_error *err)
{
	const char *m = sqlite3_errmsg(db_of(st));
	const char *field = strstr(m, ".fqdn") ? "fqdn"
			    : strstr(m, ".uuid") ? "uuid"
			    : strstr(m, ".sha256") ? "sha256" : NULL;

	if (r == SQLITE_CONSTRAINT_UNIQUE && field)
		return amtprov_error_set(err, AMTPROV_E_EXISTS, st->path,
					 "%s: already recorded", field);
	return sq_fail(st, db_of(st), r, "writing", err);
}

/* Runs a write that may hit a UNIQUE key: E_EXISTS naming the field, or the failure. */
static int step_unique(struct store *st, sqlite3_stmt *s, const char *what,
		       struct amtprov_error *err)
{
	int r = sqlite3_step(s);

	if ((r & 0xff) == SQLITE_CONSTRAINT)
		return unique_failure(st, r, err);
	if (r != SQLITE_DONE)
		return sq_fail(st, db_of(st), r, what, err);
	return AMTPROV_OK;
}

static int sq_device_add(struct store *st, struct store_device *dev, const char *actor,
			 int64_t now, struct amtprov_error *err)
{
	char detail[STORE_TEXT_SIZE];
	sqlite3_stmt *s = NULL;
	struct binder b;
	int64_t id = 0;
	int rc, r;

	if ((rc = op_begin(st, err)))
		return rc;
	want_durable_now(st);
	if ((rc = device_key_free(st, "fqdn", dev->fqdn, 0, err)) ||
	    (rc = device_key_free(st, "uuid", dev->uuid, 0, err)))
		return op_end(st, rc, err);
	rc = prepare(st,
		     "INSERT INTO devices (fqdn, uuid, amt_version, wired_ip, otp_hash, state, "
		     "state_since, last_error_code, last_error, attempts, next_attempt_at, "
		     "wireless_capable, blocked, created_at, updated_at) "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?7, ?7)",
		     &s, err);
	if (rc == AMTPROV_OK) {
		b = (struct binder){ s, SQLITE_OK };
		b_text(&b, 1, dev->fqdn);
		b_text(&b, 2, dev->uuid);
		b_text(&b, 3, dev->amt_version);
		b_text(&b, 4, dev->wired_ip);
		b_text(&b, 5, dev->otp_hash);
		b_text(&b, 6, dev->state);
		b_i64(&b, 7, now);
		b_i64(&b, 8, dev->last_error_code);
		b_text(&b, 9, dev->last_error);
		b_i64(&b, 10, dev->attempts);
		b_i64(&b, 11, dev->next_attempt_at);
		b_i64(&b, 12, dev->wireless_capable);
		b_i64(&b, 13, dev->blocked);
		rc = b_check(st, &b, err);
	}
	if (rc == AMTPROV_OK) {
		r = sqlite3_step(s);
		if (r == SQLITE_DONE)
			id = sqlite3_last_insert_rowid(db_of(st));
		else if ((r & 0xff) == SQLITE_CONSTRAINT)
			rc = unique_failure(st, r, err);
		else
			rc = sq_fail(st, db_of(st), r, "adding a device", err);
	}
	release(st, s);
	if (rc == AMTPROV_OK) {
		/* Identifiers only: the OTP hash never goes into the audit trail. */
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

static int sq_device_get(struct store *st, int64_t id, struct store_device *out,
			 struct amtprov_error *err)
{
	int found, rc;

	rc = get_device(st, "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1", NULL, id, out,
			&found, err);
	if (rc == AMTPROV_OK && !found)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no device with id %lld", (long long)id);
	return rc;
}

static int sq_device_find(struct store *st, const char *key, int by_uuid,
			  struct store_device *out, struct amtprov_error *err)
{
	int found, rc;

	rc = get_device(st,
			by_uuid ? "SELECT " DEVICE_COLS " FROM devices WHERE uuid = ?1"
				: "SELECT " DEVICE_COLS " FROM devices WHERE fqdn = ?1",
			key, 0, out, &found, err);
	if (rc == AMTPROV_OK && !found)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no device with %s '%s'", by_uuid ? "UUID" : "FQDN", key);
	return rc;
}

struct device_emit {
	store_device_cb cb;
	void *ctx;
};

static int emit_device(void *e, const void *row)
{
	struct device_emit *d = e;

	return d->cb(d->ctx, row);
}

static const struct list_spec device_spec = {
	.table = "devices",
	.row_size = sizeof(struct store_device),
	.read = read_device,
	.key = key_by_id,
	.emit = emit_device,
};

static int sq_device_list(struct store *st, const char *state, store_device_cb cb, void *ctx,
			  struct amtprov_error *err)
{
	struct device_emit e = { cb, ctx };
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	if ((rc = prepare(st,
			  "SELECT " DEVICE_COLS " FROM devices "
			  "WHERE (?1 IS NULL OR state = ?1) AND id > :k1 ORDER BY id LIMIT :n",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_text(&b, 1, state);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = run_list(st, s, &device_spec, INT64_MIN, 0, 0, &e, err);
	release(st, s);
	return rc;
}

/* The engine's candidates: by next_attempt_at then id, in the (state, next_attempt_at)
 * index's order (its entries end with the rowid), so the query reads only rows it returns. */
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

static int sq_device_list_due(struct store *st, const char *state, int64_t now,
			      store_device_cb cb, void *ctx, struct amtprov_error *err)
{
	struct device_emit e = { cb, ctx };
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	if ((rc = prepare(st,
			  "SELECT " DEVICE_COLS " FROM devices "
			  "WHERE state = ?1 AND next_attempt_at <= ?2 AND blocked = 0 "
			  "AND (next_attempt_at, id) > (:k1, :k2) "
			  "ORDER BY next_attempt_at, id LIMIT :n",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_text(&b, 1, state);
	b_i64(&b, 2, now);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = run_list(st, s, &device_due_spec, INT64_MIN, INT64_MIN, 0, &e, err);
	release(st, s);
	return rc;
}

struct state_count {
	char state[STORE_STATE_SIZE];
	int64_t count;
};

static int sq_device_count_by_state(struct store *st,
				    int (*cb)(void *ctx, const char *state, int64_t count),
				    void *ctx, struct amtprov_error *err)
{
	struct state_count *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s;
	int rc, r;

	if ((rc = prepare(st, "SELECT state, count(*) FROM devices GROUP BY state ORDER BY state",
			  &s, err)))
		return rc;
	/* Few distinct states: collect them, then call back with no statement open. */
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		struct rd rdr = { s, 0, -1 };

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct state_count *nv = realloc(v, ncap * sizeof(*v));

			if (!nv) {
				rc = amtprov_error_set(err, AMTPROV_E_NOMEM, st->path,
						       "out of memory");
				break;
			}
			v = nv;
			cap = ncap;
		}
		rd_text(&rdr, v[n].state, sizeof(v[n].state));
		v[n].count = rd_i64(&rdr);
		if ((rc = rd_check(st, &rdr, "devices", err)))
			break;
		n++;
	}
	if (rc == AMTPROV_OK && r != SQLITE_DONE)
		rc = sq_fail(st, db_of(st), r, "counting devices", err);
	release(st, s);
	for (size_t i = 0; rc == AMTPROV_OK && i < n; i++)
		if (cb(ctx, v[i].state, v[i].count))
			break;
	free(v);
	return rc;
}

static int sq_device_transition(struct store *st, int64_t id, const char *from,
				const char *to, enum store_step step, int error_code, const char *error_text,
				int64_t next_attempt_at, int attempts, const char *actor,
				int64_t now, struct amtprov_error *err)
{
	char detail[STORE_TEXT_SIZE];
	sqlite3_stmt *s = NULL;
	struct binder b;
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	/* The compare-and-set: only a device still in @p from moves. */
	rc = prepare(st,
		     "UPDATE devices SET state = ?2, "
		     "state_since = CASE WHEN ?3 = ?2 THEN state_since ELSE ?7 END, "
		     "attempts = CASE WHEN ?8 >= 0 THEN ?8 "
		     "WHEN ?3 = ?2 THEN attempts + 1 ELSE 0 END, "
		     "last_error_code = ?4, last_error = ?5, next_attempt_at = ?6, "
		     "in_flight = CASE ?9 WHEN 1 THEN in_flight + 1 WHEN 2 THEN in_flight "
		     "WHEN 3 THEN max(in_flight - 1, 0) ELSE 0 END, "
		     "updated_at = ?7 WHERE id = ?1 AND state = ?3",
		     &s, err);
	if (rc == AMTPROV_OK) {
		b = (struct binder){ s, SQLITE_OK };
		b_i64(&b, 1, id);
		b_text(&b, 2, to);
		b_text(&b, 3, from);
		b_i64(&b, 4, error_code);
		b_text(&b, 5, error_text);
		b_i64(&b, 6, next_attempt_at);
		b_i64(&b, 7, now);
		b_i64(&b, 8, attempts);
		b_i64(&b, 9, (int64_t)step);
		rc = b_check(st, &b, err);
	}
	if (rc == AMTPROV_OK)
		rc = step_done(st, s, "changing a device's state", err);
	release(st, s);
	if (rc == AMTPROV_OK && sqlite3_changes(db_of(st)) == 0) {
		struct store_device cur;
		int found;

		rc = get_device(st, "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1", NULL,
				id, &cur, &found, err);
		if (rc == AMTPROV_OK && !found)
			rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
					       "no device with id %lld", (long long)id);
		else if (rc == AMTPROV_OK)
			rc = amtprov_error_set(err, AMTPROV_E_STATE, st->path,
					       "device %s is in state %s, not %s", cur.fqdn,
					       cur.state, from);
	}
	if (rc == AMTPROV_OK) {
		/* The detail may be cut to fit: it is a summary, the device row has the
		 * full error text. */
		if (error_text[0])
			snprintf(detail, sizeof(detail), "%s -> %s: %s", from, to, error_text);
		else
			snprintf(detail, sizeof(detail), "%s -> %s", from, to);
		rc = audit_insert(st, actor, id, "state", detail, now, err);
	}
	return op_end(st, rc, err);
}

/* Appends "; text" to an audit detail, cutting at the end of the buffer. */
static void detail_add(char *buf, size_t size, const char *name, const char *old,
		       const char *new_)
{
	size_t len = strlen(buf);

	if (!strcmp(old, new_) || len + 1 >= size)
		return;
	snprintf(buf + len, size - len, "%s%s %s -> %s", len ? "; " : "", name, old, new_);
}

/* Says what changed between two records' descriptive fields; the OTP hash only as
 * "set/new/empty", never its value. */
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

static int sq_device_update(struct store *st, const struct store_device *dev,
			    const char *actor, int64_t now, struct amtprov_error *err)
{
	char detail[STORE_TEXT_SIZE] = "";
	struct store_device old;
	sqlite3_stmt *s = NULL;
	struct binder b;
	int found, rc;

	if ((rc = op_begin(st, err)))
		return rc;
	rc = get_device(st, "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1", NULL, dev->id,
			&old, &found, err);
	if (rc == AMTPROV_OK && !found)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no device with id %lld", (long long)dev->id);
	if (rc == AMTPROV_OK)
		rc = device_key_free(st, "uuid", dev->uuid, dev->id, err);
	if (rc == AMTPROV_OK)
		rc = prepare(st,
			     "UPDATE devices SET uuid = ?2, amt_version = ?3, wired_ip = ?4, "
			     "otp_hash = ?5, wireless_capable = ?6, blocked = ?7, updated_at = ?8 "
			     "WHERE id = ?1",
			     &s, err);
	if (rc == AMTPROV_OK) {
		b = (struct binder){ s, SQLITE_OK };
		b_i64(&b, 1, dev->id);
		b_text(&b, 2, dev->uuid);
		b_text(&b, 3, dev->amt_version);
		b_text(&b, 4, dev->wired_ip);
		b_text(&b, 5, dev->otp_hash);
		b_i64(&b, 6, dev->wireless_capable);
		b_i64(&b, 7, dev->blocked);
		b_i64(&b, 8, now);
		rc = b_check(st, &b, err);
	}
	if (rc == AMTPROV_OK)
		rc = step_unique(st, s, "updating a device", err);
	release(st, s);
	if (rc == AMTPROV_OK) {
		struct store_device now_rec = *dev;

		/* The FQDN is not an updatable field here. */
		memcpy(now_rec.fqdn, old.fqdn, sizeof(now_rec.fqdn));
		device_changes(&old, &now_rec, detail, sizeof(detail));
		rc = audit_insert(st, actor, dev->id, "device.update",
				  detail[0] ? detail : "no change", now, err);
	}
	return op_end(st, rc, err);
}

static int sq_device_reregister(struct store *st, int64_t id, const char *from,
				const struct store_device *dev, const char *actor, int64_t now,
				struct amtprov_error *err)
{
	char detail[STORE_TEXT_SIZE], changes[STORE_TEXT_SIZE] = "";
	struct store_device old;
	sqlite3_stmt *s = NULL;
	struct binder b;
	int found, rc;

	if ((rc = op_begin(st, err)))
		return rc;
	want_durable_now(st);
	rc = get_device(st, "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1", NULL, id, &old,
			&found, err);
	if (rc == AMTPROV_OK && !found)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no device with id %lld", (long long)id);
	/* The compare-and-set: a device that moved meanwhile (the engine started a step, an
	 * administrator blocked it) is left as it is. */
	if (rc == AMTPROV_OK && (strcmp(old.state, from) != 0 || old.blocked))
		rc = amtprov_error_set(err, AMTPROV_E_STATE, st->path,
				       "device %s is in state %s%s, not %s", old.fqdn, old.state,
				       old.blocked ? " (blocked)" : "", from);
	if (rc == AMTPROV_OK)
		rc = device_key_free(st, "fqdn", dev->fqdn, id, err);
	if (rc == AMTPROV_OK)
		rc = device_key_free(st, "uuid", dev->uuid, id, err);
	if (rc == AMTPROV_OK)
		rc = prepare(st,
			     "UPDATE devices SET fqdn = ?2, uuid = ?3, amt_version = ?4, "
			     "wired_ip = ?5, otp_hash = ?6, wireless_capable = ?7, state = ?8, "
			     "state_since = ?9, last_error_code = 0, last_error = '', attempts = 0, "
			     "next_attempt_at = 0, updated_at = ?9 "
			     "WHERE id = ?1 AND state = ?10 AND blocked = 0",
			     &s, err);
	if (rc == AMTPROV_OK) {
		b = (struct binder){ s, SQLITE_OK };
		b_i64(&b, 1, id);
		b_text(&b, 2, dev->fqdn);
		b_text(&b, 3, dev->uuid);
		b_text(&b, 4, dev->amt_version);
		b_text(&b, 5, dev->wired_ip);
		b_text(&b, 6, dev->otp_hash);
		b_i64(&b, 7, dev->wireless_capable);
		b_text(&b, 8, "REGISTERED");
		b_i64(&b, 9, now);
		b_text(&b, 10, from);
		rc = b_check(st, &b, err);
	}
	if (rc == AMTPROV_OK)
		rc = step_unique(st, s, "re-registering a device", err);
	release(st, s);
	if (rc == AMTPROV_OK) {
		snprintf(detail, sizeof(detail), "%s -> REGISTERED: re-registered by its agent", from);
		rc = audit_insert(st, actor, id, "state", detail, now, err);
	}
	if (rc == AMTPROV_OK) {
		device_changes(&old, dev, changes, sizeof(changes));
		/* Cut to fit: the record has the full values. */
		snprintf(detail, sizeof(detail), "%.200s uuid=%.40s was %.40s; %.200s", dev->fqdn,
			 dev->uuid, from, changes[0] ? changes : "same report");
		rc = audit_insert(st, actor, id, "device.reregister", detail, now, err);
	}
	return op_end(st, rc, err);
}

/* store_device_delete(): the row becomes a tombstone (the schema keeps devices). */
static int sq_device_delete(struct store *st, int64_t id, const char *from, const char *actor,
			    const char *detail, int64_t now, struct amtprov_error *err)
{
	struct store_device old;
	sqlite3_stmt *s = NULL;
	struct binder b;
	int64_t cert = 0;
	int found, rc;

	if ((rc = op_begin(st, err)))
		return rc;
	want_durable(st);
	rc = get_device(st, "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1", NULL, id, &old,
			&found, err);
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
		rc = lookup_id(st, "SELECT id FROM certificates WHERE device_id = ?1 AND "
				   "status = 'active' LIMIT 1", NULL, id, &cert, &found, err);
	if (rc == AMTPROV_OK && found)
		rc = amtprov_error_set(err, AMTPROV_E_STATE, st->path,
				       "device %s holds an active certificate (id %lld): queue its "
				       "revocation first", old.fqdn, (long long)cert);
	if (rc == AMTPROV_OK)
		rc = prepare(st, "DELETE FROM pending_ops WHERE device_id = ?1 AND kind <> 'revoke'",
			     &s, err);
	if (rc == AMTPROV_OK) {
		b = (struct binder){ s, SQLITE_OK };
		b_i64(&b, 1, id);
		if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
			rc = step_done(st, s, "dropping a deleted device's operations", err);
	}
	release(st, s);
	s = NULL;
	if (rc == AMTPROV_OK)
		rc = prepare(st,
			     "UPDATE devices SET fqdn = substr('deleted-' || id || ':' || fqdn, 1, 255), "
			     "uuid = printf('deleted-%028d', id), state = ?2, state_since = ?3, "
			     "otp_hash = '', wired_ip = '', last_error_code = 0, last_error = '', "
			     "attempts = 0, next_attempt_at = 0, blocked = 0, in_flight = 0, "
			     "lease_owner = '', lease_until = 0, updated_at = ?3 "
			     "WHERE id = ?1 AND state = ?4",
			     &s, err);
	if (rc == AMTPROV_OK) {
		b = (struct binder){ s, SQLITE_OK };
		b_i64(&b, 1, id);
		b_text(&b, 2, STORE_DEVICE_DELETED);
		b_i64(&b, 3, now);
		b_text(&b, 4, from);
		rc = b_check(st, &b, err);
	}
	if (rc == AMTPROV_OK)
		rc = step_unique(st, s, "deleting a device", err);
	release(st, s);
	if (rc == AMTPROV_OK)
		rc = audit_insert(st, actor, id, "device.delete", detail, now, err);
	return op_end(st, rc, err);
}

/* ---- device leases ---- */

/* One host per SQLite file in practice, but the rules are the same as PostgreSQL's, so
 * several processes on one file (and the engine's tests) get the same behaviour. */
static int sq_device_claim(struct store *st, int64_t id, const char *owner, int64_t now,
			   int64_t until, struct amtprov_error *err)
{
	sqlite3_stmt *s = NULL;
	struct binder b;
	int rc, found;

	if ((rc = prepare(st,
			  "UPDATE devices SET lease_owner = ?2, lease_until = ?4 WHERE id = ?1 "
			  "AND (lease_owner = '' OR lease_owner = ?2 OR lease_until < ?3)",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, id);
	b_text(&b, 2, owner);
	b_i64(&b, 3, now);
	b_i64(&b, 4, until);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = step_done(st, s, "claiming a device", err);
	release(st, s);
	if (rc == AMTPROV_OK && sqlite3_changes(db_of(st)) == 0) {
		rc = lookup_id(st, "SELECT id FROM devices WHERE id = ?1", NULL, id, NULL, &found,
			       err);
		if (rc == AMTPROV_OK)
			rc = found ? amtprov_error_set(err, AMTPROV_E_BUSY, st->path,
						       "device %lld is leased by another host",
						       (long long)id)
				   : amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
						       "no device with id %lld", (long long)id);
	}
	return rc;
}

static int sq_device_release(struct store *st, int64_t id, const char *owner,
			     struct amtprov_error *err)
{
	sqlite3_stmt *s = NULL;
	struct binder b;
	int rc;

	if ((rc = prepare(st,
			  "UPDATE devices SET lease_owner = '', lease_until = 0 "
			  "WHERE id = ?1 AND lease_owner = ?2",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, id);
	b_text(&b, 2, owner);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = step_done(st, s, "releasing a device", err);
	release(st, s);
	return rc;
}

static int sq_lease_renew(struct store *st, const char *owner, int64_t until, int64_t *n,
			  struct amtprov_error *err)
{
	sqlite3_stmt *s = NULL;
	struct binder b;
	int rc;

	if ((rc = prepare(st, "UPDATE devices SET lease_until = ?2 WHERE lease_owner = ?1", &s,
			  err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_text(&b, 1, owner);
	b_i64(&b, 2, until);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = step_done(st, s, "renewing leases", err);
	release(st, s);
	*n = rc == AMTPROV_OK ? sqlite3_changes(db_of(st)) : 0;
	return rc;
}

struct lease_row {
	char owner[STORE_SHORT_SIZE];
	int64_t live, expired;
};

static int sq_lease_count(struct store *st, int64_t now,
			  int (*cb)(void *ctx, const char *owner, int64_t live, int64_t expired),
			  void *ctx, struct amtprov_error *err)
{
	struct lease_row rows[256];
	int n = 0, rc, r = SQLITE_DONE;
	sqlite3_stmt *s;
	struct binder b;

	/* One row per host: read them all, then call back with no statement open. */
	if ((rc = prepare(st,
			  "SELECT lease_owner, sum(lease_until >= ?1), sum(lease_until < ?1) "
			  "FROM devices WHERE lease_owner <> '' GROUP BY lease_owner "
			  "ORDER BY lease_owner",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, now);
	rc = b_check(st, &b, err);
	while (rc == AMTPROV_OK && n < 256 && (r = sqlite3_step(s)) == SQLITE_ROW) {
		struct rd rdr = { s, 0, -1 };

		rd_text(&rdr, rows[n].owner, sizeof(rows[n].owner));
		rows[n].live = rd_i64(&rdr);
		rows[n].expired = rd_i64(&rdr);
		rc = rd_check(st, &rdr, "devices", err);
		n++;
	}
	if (rc == AMTPROV_OK && n < 256 && r != SQLITE_DONE)
		rc = sq_fail(st, db_of(st), r, "counting device leases", err);
	release(st, s);
	for (int i = 0; rc == AMTPROV_OK && i < n; i++)
		if (cb(ctx, rows[i].owner, rows[i].live, rows[i].expired))
			break;
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

static int sq_cert_add(struct store *st, struct store_cert *cert, int64_t now,
		       struct amtprov_error *err)
{
	sqlite3_stmt *s = NULL;
	struct binder b;
	int64_t id = 0, other = 0;
	int found = 0, rc, r;

	if ((rc = op_begin(st, err)))
		return rc;
	want_durable(st);
	if ((rc = device_must_exist(st, cert->device_id, "device_id", err)) == AMTPROV_OK)
		rc = lookup_id(st, "SELECT id FROM certificates WHERE sha256 = ?1", cert->sha256, 0,
			       &other, &found, err);
	if (rc == AMTPROV_OK && found)
		rc = amtprov_error_set(err, AMTPROV_E_EXISTS, st->path,
				       "sha256: certificate %s is already recorded (id %lld)",
				       cert->sha256, (long long)other);
	if (rc == AMTPROV_OK)
		rc = prepare(st,
			     "INSERT INTO certificates (device_id, serial_hex, issuer, subject, "
			     "purpose, profile, template_name, ca_instance, request_id, sha256, "
			     "not_before, not_after, status, revocation_reason, revoked_at, "
			     "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
			     "?12, ?13, ?14, ?15, ?16)",
			     &s, err);
	if (rc == AMTPROV_OK) {
		b = (struct binder){ s, SQLITE_OK };
		b_ref(&b, 1, cert->device_id);
		b_text(&b, 2, cert->serial_hex);
		b_text(&b, 3, cert->issuer);
		b_text(&b, 4, cert->subject);
		b_i64(&b, 5, cert->purpose);
		b_text(&b, 6, cert->profile);
		b_text(&b, 7, cert->template_name);
		b_text(&b, 8, cert->ca_instance);
		b_text(&b, 9, cert->request_id);
		b_text(&b, 10, cert->sha256);
		b_i64(&b, 11, cert->not_before);
		b_i64(&b, 12, cert->not_after);
		b_text(&b, 13, cert->status);
		b_i64(&b, 14, cert->revocation_reason);
		b_i64(&b, 15, cert->revoked_at);
		b_i64(&b, 16, now);
		rc = b_check(st, &b, err);
	}
	if (rc == AMTPROV_OK) {
		r = sqlite3_step(s);
		if (r == SQLITE_DONE)
			id = sqlite3_last_insert_rowid(db_of(st));
		else if ((r & 0xff) == SQLITE_CONSTRAINT)
			rc = unique_failure(st, r, err);
		else
			rc = sq_fail(st, db_of(st), r, "recording a certificate", err);
	}
	release(st, s);
	rc = op_end(st, rc, err);
	if (rc == AMTPROV_OK) {
		cert->id = id;
		cert->created_at = now;
	}
	return rc;
}

static int sq_cert_get(struct store *st, int64_t id, struct store_cert *out,
		       struct amtprov_error *err)
{
	sqlite3_stmt *s;
	struct binder b;
	int rc, r;

	if ((rc = prepare(st, "SELECT " CERT_COLS " FROM certificates WHERE id = ?1", &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, id);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK) {
		r = sqlite3_step(s);
		if (r == SQLITE_ROW) {
			struct rd rdr = { s, 0, -1 };

			memset(out, 0, sizeof(*out));
			read_cert(&rdr, out);
			rc = rd_check(st, &rdr, "certificates", err);
		} else if (r == SQLITE_DONE) {
			rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
					       "no certificate with id %lld", (long long)id);
		} else {
			rc = sq_fail(st, db_of(st), r, "reading a certificate", err);
		}
	}
	release(st, s);
	return rc;
}

struct cert_emit {
	store_cert_cb cb;
	void *ctx;
};

static int emit_cert(void *e, const void *row)
{
	struct cert_emit *c = e;

	return c->cb(c->ctx, row);
}

static const struct list_spec cert_spec = {
	.table = "certificates",
	.row_size = sizeof(struct store_cert),
	.read = read_cert,
	.key = key_by_id,
	.emit = emit_cert,
};

static int sq_cert_list(struct store *st, const struct store_cert_filter *f,
			store_cert_cb cb, void *ctx, struct amtprov_error *err)
{
	struct cert_emit e = { cb, ctx };
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	/* One device's: by its index (certificates_device), not a walk over every
	 * certificate of the site (SQLite cannot use the index under "?1 = 0 OR"). */
	if ((rc = prepare(st,
			  f->device_id
				  ? "SELECT " CERT_COLS " FROM certificates "
				    "WHERE device_id = ?1 AND (?2 = 0 OR purpose = ?2) "
				    "AND (?3 IS NULL OR status = ?3) AND (?4 = 0 OR not_after < ?4) "
				    "AND id > :k1 ORDER BY id LIMIT :n"
				  : "SELECT " CERT_COLS " FROM certificates "
				    "WHERE (?1 = 0 OR device_id = ?1) AND (?2 = 0 OR purpose = ?2) "
				    "AND (?3 IS NULL OR status = ?3) AND (?4 = 0 OR not_after < ?4) "
				    "AND id > :k1 ORDER BY id LIMIT :n",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, f->device_id);
	b_i64(&b, 2, f->purpose);
	b_text(&b, 3, f->status && f->status[0] ? f->status : NULL);
	b_i64(&b, 4, f->not_after_before);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = run_list(st, s, &cert_spec, INT64_MIN, 0, 0, &e, err);
	release(st, s);
	return rc;
}

static int sq_cert_set_status(struct store *st, int64_t id, const char *status, int reason,
			      int64_t now, struct amtprov_error *err)
{
	struct store_cert cur;
	sqlite3_stmt *s = NULL;
	struct binder b;
	int revoke = !strcmp(status, STORE_CERT_REVOKED);
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	rc = sq_cert_get(st, id, &cur, err);
	if (rc == AMTPROV_OK && !strcmp(cur.status, STORE_CERT_REVOKED)) {
		/* A revocation is final; revoking again keeps the first reason and time. */
		if (!revoke)
			rc = amtprov_error_set(err, AMTPROV_E_STATE, st->path,
					       "certificate %lld (serial %s) is revoked; a "
					       "revocation cannot be undone",
					       (long long)id, cur.serial_hex);
		return op_end(st, rc, err);
	}
	if (rc == AMTPROV_OK)
		rc = prepare(st,
			     revoke ? "UPDATE certificates SET status = ?2, "
				      "revocation_reason = ?3, revoked_at = ?4 WHERE id = ?1"
				    : "UPDATE certificates SET status = ?2 WHERE id = ?1",
			     &s, err);
	if (rc == AMTPROV_OK) {
		b = (struct binder){ s, SQLITE_OK };
		b_i64(&b, 1, id);
		b_text(&b, 2, status);
		if (revoke) {
			b_i64(&b, 3, reason);
			b_i64(&b, 4, now);
		}
		rc = b_check(st, &b, err);
	}
	if (rc == AMTPROV_OK)
		rc = step_done(st, s, "changing a certificate's status", err);
	release(st, s);
	return op_end(st, rc, err);
}

static int sq_cert_data_put(struct store *st, int64_t cert_id, const uint8_t *der,
			    size_t der_len, const char *chain_pem, struct amtprov_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((rc = op_begin(st, err)))
		return rc;
	want_durable(st);
	rc = prepare(st, "INSERT INTO certificate_data (cert_id, der, chain_pem) VALUES (?1, ?2, ?3)",
		     &s, err);
	if (rc == AMTPROV_OK) {
		if (sqlite3_bind_int64(s, 1, cert_id) != SQLITE_OK ||
		    sqlite3_bind_blob(s, 2, der, (int)der_len, SQLITE_TRANSIENT) != SQLITE_OK ||
		    sqlite3_bind_text(s, 3, chain_pem ? chain_pem : "", -1, SQLITE_TRANSIENT) !=
			    SQLITE_OK)
			rc = sq_fail(st, db_of(st), sqlite3_errcode(db_of(st)), "binding", err);
	}
	if (rc == AMTPROV_OK) {
		r = sqlite3_step(s);
		/* Extended result codes are on: compare the primary code. */
		if ((r & 0xff) == SQLITE_CONSTRAINT) {
			int ext = sqlite3_extended_errcode(db_of(st));

			rc = ext == SQLITE_CONSTRAINT_FOREIGNKEY
				     ? amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
							 "no certificate %lld", (long long)cert_id)
				     : amtprov_error_set(err, AMTPROV_E_EXISTS, st->path,
							 "certificate %lld already has its data",
							 (long long)cert_id);
		} else if (r != SQLITE_DONE) {
			rc = sq_fail(st, db_of(st), r, "storing a certificate", err);
		}
	}
	release(st, s);
	return op_end(st, rc, err);
}

static int sq_cert_data_get(struct store *st, int64_t cert_id, uint8_t **der, size_t *der_len,
			    char **chain_pem, struct amtprov_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	rc = prepare(st, "SELECT der, chain_pem FROM certificate_data WHERE cert_id = ?1", &s, err);
	if (rc == AMTPROV_OK && sqlite3_bind_int64(s, 1, cert_id) != SQLITE_OK)
		rc = sq_fail(st, db_of(st), sqlite3_errcode(db_of(st)), "binding", err);
	if (rc == AMTPROV_OK) {
		r = sqlite3_step(s);
		if (r == SQLITE_ROW) {
			int n = sqlite3_column_bytes(s, 0);
			const void *blob = sqlite3_column_blob(s, 0);
			const char *chain = (const char *)sqlite3_column_text(s, 1);

			*der = malloc(n > 0 ? (size_t)n : 1);
			if (chain_pem)
				*chain_pem = strdup(chain ? chain : "");
			if (!*der || (chain_pem && !*chain_pem)) {
				free(*der);
				*der = NULL;
				if (chain_pem) {
					free(*chain_pem);
					*chain_pem = NULL;
				}
				rc = amtprov_error_set(err, AMTPROV_E_NOMEM, st->path, "out of memory");
			} else {
				memcpy(*der, blob, (size_t)n);
				*der_len = (size_t)n;
			}
		} else if (r == SQLITE_DONE) {
			rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
					       "no stored data for certificate %lld",
					       (long long)cert_id);
		} else {
			rc = sq_fail(st, db_of(st), r, "reading a certificate", err);
		}
	}
	release(st, s);
	return rc;
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

struct status_emit {
	store_status_cb cb;
	void *ctx;
};

static int emit_status(void *e, const void *row)
{
	struct status_emit *c = e;

	return c->cb(c->ctx, row);
}

static const struct list_spec status_spec = {
	.table = "status_messages",
	.row_size = sizeof(struct store_status_msg),
	.read = read_status,
	.key = key_status,
	.emit = emit_status,
};

static int sq_status_add(struct store *st, struct store_status_msg *msg, int64_t now,
			 struct amtprov_error *err)
{
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	if ((rc = prepare(st,
			  "INSERT INTO status_messages (msg_id, severity, device, text, created_at) "
			  "VALUES (?1, ?2, ?3, ?4, ?5)",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, msg->msg_id);
	b_i64(&b, 2, msg->severity);
	b_text(&b, 3, msg->device);
	b_text(&b, 4, msg->text);
	b_i64(&b, 5, now);
	/* One INSERT is atomic by itself, in or out of an explicit transaction. */
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = step_done(st, s, "recording a status message", err);
	if (rc == AMTPROV_OK) {
		msg->id = sqlite3_last_insert_rowid(db_of(st));
		msg->created_at = now;
	}
	release(st, s);
	return rc;
}

static int sq_status_list(struct store *st, const struct store_status_filter *f,
			  store_status_cb cb, void *ctx, struct amtprov_error *err)
{
	struct status_emit e = { cb, ctx };
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	/* Newest first, keyed on (created_at, id) so batches neither skip nor repeat. */
	if ((rc = prepare(st,
			  "SELECT id, msg_id, severity, device, text, created_at "
			  "FROM status_messages "
			  "WHERE (?1 = 0 OR msg_id = ?1) AND severity >= ?2 "
			  "AND (?3 IS NULL OR device = ?3) AND (?4 = 0 OR created_at >= ?4) "
			  "AND (?5 = 0 OR created_at < ?5) AND (created_at, id) < (:k1, :k2) "
			  "ORDER BY created_at DESC, id DESC LIMIT :n",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, f->msg_id);
	b_i64(&b, 2, f->min_severity);
	b_text(&b, 3, f->device);
	b_i64(&b, 4, f->since);
	b_i64(&b, 5, f->until);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = run_list(st, s, &status_spec, INT64_MAX, INT64_MAX, f->limit, &e, err);
	release(st, s);
	return rc;
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

struct audit_emit {
	store_audit_cb cb;
	void *ctx;
};

static int emit_audit(void *e, const void *row)
{
	struct audit_emit *c = e;

	return c->cb(c->ctx, row);
}

static const struct list_spec audit_spec = {
	.table = "audit",
	.row_size = sizeof(struct store_audit),
	.read = read_audit,
	.key = key_by_id,
	.emit = emit_audit,
};

static int sq_audit_add(struct store *st, const char *actor, int64_t device_id,
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

static int sq_audit_list(struct store *st, int64_t device_id, int limit, store_audit_cb cb,
			 void *ctx, struct amtprov_error *err)
{
	struct audit_emit e = { cb, ctx };
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	/* One device's by its index (audit_device), as sq_cert_list. */
	if ((rc = prepare(st,
			  device_id ? "SELECT id, at, actor, coalesce(device_id, 0), action, detail "
				      "FROM audit WHERE device_id = ?1 AND id > :k1 ORDER BY id "
				      "LIMIT :n"
				    : "SELECT id, at, actor, coalesce(device_id, 0), action, detail "
				      "FROM audit WHERE (?1 = 0 OR device_id = ?1) AND id > :k1 "
				      "ORDER BY id LIMIT :n",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, device_id);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = run_list(st, s, &audit_spec, INT64_MIN, 0, limit, &e, err);
	release(st, s);
	return rc;
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

struct pending_emit {
	store_pending_cb cb;
	void *ctx;
};

static int emit_pending(void *e, const void *row)
{
	struct pending_emit *c = e;

	return c->cb(c->ctx, row);
}

static const struct list_spec pending_spec = {
	.table = "pending_ops",
	.row_size = sizeof(struct store_pending),
	.read = read_pending,
	.key = key_by_id,
	.emit = emit_pending,
};

static int sq_pending_add(struct store *st, struct store_pending *op, int64_t now,
			  struct amtprov_error *err)
{
	sqlite3_stmt *s = NULL;
	struct binder b;
	int64_t id = 0;
	int rc;

	if ((rc = op_begin(st, err)))
		return rc;
	want_durable(st);
	if ((rc = device_must_exist(st, op->device_id, "device_id", err)) == AMTPROV_OK)
		rc = prepare(st,
			     "INSERT INTO pending_ops (device_id, kind, payload, created_at, "
			     "next_attempt_at, attempts, last_error) "
			     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			     &s, err);
	if (rc == AMTPROV_OK) {
		b = (struct binder){ s, SQLITE_OK };
		b_ref(&b, 1, op->device_id);
		b_text(&b, 2, op->kind);
		b_text(&b, 3, op->payload);
		b_i64(&b, 4, now);
		b_i64(&b, 5, op->next_attempt_at);
		b_i64(&b, 6, op->attempts);
		b_text(&b, 7, op->last_error);
		rc = b_check(st, &b, err);
	}
	if (rc == AMTPROV_OK)
		rc = step_done(st, s, "recording a pending operation", err);
	if (rc == AMTPROV_OK)
		id = sqlite3_last_insert_rowid(db_of(st));
	release(st, s);
	rc = op_end(st, rc, err);
	if (rc == AMTPROV_OK) {
		op->id = id;
		op->created_at = now;
	}
	return rc;
}

static int sq_pending_due(struct store *st, const char *kind, int64_t now,
			  store_pending_cb cb, void *ctx, struct amtprov_error *err)
{
	struct pending_emit e = { cb, ctx };
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	if ((rc = prepare(st,
			  "SELECT " PENDING_COLS " FROM pending_ops "
			  "WHERE next_attempt_at <= ?1 AND (?2 IS NULL OR kind = ?2) "
			  "AND id > :k1 ORDER BY id LIMIT :n",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, now);
	b_text(&b, 2, kind);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = run_list(st, s, &pending_spec, INT64_MIN, 0, 0, &e, err);
	release(st, s);
	return rc;
}

static int sq_pending_list(struct store *st, int64_t device_id, store_pending_cb cb,
			   void *ctx, struct amtprov_error *err)
{
	struct pending_emit e = { cb, ctx };
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	/* One device's by its index (pending_ops_device), as sq_cert_list. */
	if ((rc = prepare(st,
			  device_id ? "SELECT " PENDING_COLS " FROM pending_ops "
				      "WHERE device_id = ?1 AND id > :k1 ORDER BY id LIMIT :n"
				    : "SELECT " PENDING_COLS " FROM pending_ops "
				      "WHERE (?1 = 0 OR device_id = ?1) AND id > :k1 ORDER BY id "
				      "LIMIT :n",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, device_id);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = run_list(st, s, &pending_spec, INT64_MIN, 0, 0, &e, err);
	release(st, s);
	return rc;
}

/* Runs a one-statement UPDATE/DELETE of the row @p id; AMTPROV_E_NOT_FOUND if none. */
static int change_one(struct store *st, sqlite3_stmt *s, struct binder *b, int64_t id,
		      const char *what, struct amtprov_error *err)
{
	int rc = b_check(st, b, err);

	if (rc == AMTPROV_OK)
		rc = step_done(st, s, what, err);
	if (rc == AMTPROV_OK && sqlite3_changes(db_of(st)) == 0)
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
				       "no pending operation with id %lld", (long long)id);
	release(st, s);
	return rc;
}

static int sq_pending_retry(struct store *st, int64_t id, const char *last_error,
			    int64_t next_attempt_at, struct amtprov_error *err)
{
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	if ((rc = prepare(st,
			  "UPDATE pending_ops SET attempts = attempts + 1, last_error = ?2, "
			  "next_attempt_at = ?3 WHERE id = ?1",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, id);
	b_text(&b, 2, last_error);
	b_i64(&b, 3, next_attempt_at);
	return change_one(st, s, &b, id, "recording a retry", err);
}

static int sq_pending_defer(struct store *st, int64_t id, int64_t next_attempt_at,
			    struct amtprov_error *err)
{
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	if ((rc = prepare(st, "UPDATE pending_ops SET next_attempt_at = ?2 WHERE id = ?1", &s,
			  err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, id);
	b_i64(&b, 2, next_attempt_at);
	return change_one(st, s, &b, id, "leasing an operation", err);
}

static int sq_pending_done(struct store *st, int64_t id, struct amtprov_error *err)
{
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	if ((rc = prepare(st, "DELETE FROM pending_ops WHERE id = ?1", &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_i64(&b, 1, id);
	return change_one(st, s, &b, id, "removing a pending operation", err);
}

/* ---- maintenance tasks ---- */

#define TASK_COLUMNS                                                                       \
	"name, last_run, last_result, last_detail, next_run, interval_seconds, requests, served, " \
	"lease_owner, lease_until"

static int read_task(struct store *st, sqlite3_stmt *s, struct store_task *out,
		     struct amtprov_error *err)
{
	struct rd rdr = { s, 0, -1 };

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

static int sq_task_get(struct store *st, const char *name, struct store_task *out,
		       struct amtprov_error *err)
{
	sqlite3_stmt *s;
	struct binder b;
	int rc, r;

	if ((rc = prepare(st,
			  "SELECT " TASK_COLUMNS " FROM maintenance_tasks WHERE name = ?1",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_text(&b, 1, name);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK) {
		r = sqlite3_step(s);
		if (r == SQLITE_ROW) {
			rc = read_task(st, s, out, err);
		} else if (r == SQLITE_DONE) {
			rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, st->path,
					       "maintenance task '%s' has no record", name);
		} else {
			rc = sq_fail(st, db_of(st), r, "reading a maintenance task", err);
		}
	}
	release(st, s);
	return rc;
}

static int sq_task_put(struct store *st, const struct store_task *task,
		       struct amtprov_error *err)
{
	sqlite3_stmt *s;
	struct binder b;
	int rc;

	if ((rc = prepare(st,
			  "INSERT INTO maintenance_tasks (name, last_run, last_result, "
			  "last_detail, next_run, interval_seconds, served) "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
			  "ON CONFLICT (name) DO UPDATE SET last_run = excluded.last_run, "
			  "last_result = excluded.last_result, "
			  "last_detail = excluded.last_detail, next_run = excluded.next_run, "
			  "interval_seconds = excluded.interval_seconds, "
			  "served = excluded.served",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_text(&b, 1, task->name);
	b_i64(&b, 2, task->last_run);
	b_i64(&b, 3, task->last_result);
	b_text(&b, 4, task->last_detail);
	b_i64(&b, 5, task->next_run);
	b_i64(&b, 6, task->interval_seconds);
	b_i64(&b, 7, task->served);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = step_done(st, s, "recording a maintenance task", err);
	release(st, s);
	return rc;
}

static int sq_task_request(struct store *st, const char *name, int64_t *request,
			   struct amtprov_error *err)
{
	sqlite3_stmt *s;
	struct binder b;
	int rc, r;

	/* One statement: the increment and its result are atomic against other writers. */
	if ((rc = prepare(st,
			  "INSERT INTO maintenance_tasks (name, requests) VALUES (?1, 1) "
			  "ON CONFLICT (name) DO UPDATE SET requests = requests + 1 "
			  "RETURNING requests",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_text(&b, 1, name);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK) {
		r = sqlite3_step(s);
		if (r == SQLITE_ROW) {
			*request = sqlite3_column_int64(s, 0);
			r = sqlite3_step(s);
		}
		if (r != SQLITE_DONE)
			rc = sq_fail(st, db_of(st), r, "requesting a maintenance task run", err);
	}
	release(st, s);
	return rc;
}

static int sq_task_list(struct store *st, store_task_cb cb, void *ctx,
			struct amtprov_error *err)
{
	struct store_task rows[64];
	int n = 0, rc, r = SQLITE_DONE;
	sqlite3_stmt *s;

	/* Few rows (one per task): read them all, then call back with no statement open. */
	if ((rc = prepare(st, "SELECT " TASK_COLUMNS " FROM maintenance_tasks ORDER BY name",
			  &s, err)))
		return rc;
	while (rc == AMTPROV_OK && n < 64 && (r = sqlite3_step(s)) == SQLITE_ROW)
		rc = read_task(st, s, &rows[n++], err);
	if (rc == AMTPROV_OK && n < 64 && r != SQLITE_DONE)
		rc = sq_fail(st, db_of(st), r, "listing maintenance tasks", err);
	release(st, s);
	for (int i = 0; rc == AMTPROV_OK && i < n; i++)
		if (cb(ctx, &rows[i]))
			break;
	return rc;
}

/* One statement: creates the record or takes the lease when it is free, this owner's, or
 * ran out; no change means another host holds it. */
static int sq_task_claim(struct store *st, const char *name, const char *owner, int64_t now,
			 int64_t until, struct amtprov_error *err)
{
	sqlite3_stmt *s = NULL;
	struct binder b;
	int rc;

	if ((rc = prepare(st,
			  "INSERT INTO maintenance_tasks (name, lease_owner, lease_until) "
			  "VALUES (?1, ?2, ?4) ON CONFLICT (name) DO UPDATE SET "
			  "lease_owner = excluded.lease_owner, lease_until = excluded.lease_until "
			  "WHERE lease_owner = '' OR lease_owner = ?2 OR lease_until < ?3",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_text(&b, 1, name);
	b_text(&b, 2, owner);
	b_i64(&b, 3, now);
	b_i64(&b, 4, until);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = step_done(st, s, "claiming a maintenance task", err);
	release(st, s);
	if (rc == AMTPROV_OK && sqlite3_changes(db_of(st)) == 0)
		rc = amtprov_error_set(err, AMTPROV_E_BUSY, st->path,
				       "maintenance task '%s' is run by another host", name);
	return rc;
}

static int sq_task_release(struct store *st, const char *name, const char *owner,
			   struct amtprov_error *err)
{
	sqlite3_stmt *s = NULL;
	struct binder b;
	int rc;

	if ((rc = prepare(st,
			  "UPDATE maintenance_tasks SET lease_owner = '', lease_until = 0 "
			  "WHERE name = ?1 AND lease_owner = ?2",
			  &s, err)))
		return rc;
	b = (struct binder){ s, SQLITE_OK };
	b_text(&b, 1, name);
	b_text(&b, 2, owner);
	if ((rc = b_check(st, &b, err)) == AMTPROV_OK)
		rc = step_done(st, s, "releasing a maintenance task", err);
	release(st, s);
	return rc;
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.defer_sync = sq_defer_sync,
	.schema_version = sq_schema_version,
	.check = sq_check,
	.tx_begin = sq_tx_begin,
	.tx_commit = sq_tx_commit,
	.tx_rollback = sq_tx_rollback,
	.device_add = sq_device_add,
	.device_get = sq_device_get,
	.device_find = sq_device_find,
	.device_list = sq_device_list,
	.device_list_due = sq_device_list_due,
	.device_count_by_state = sq_device_count_by_state,
	.device_transition = sq_device_transition,
	.device_update = sq_device_update,
	.device_reregister = sq_device_reregister,
	.device_delete = sq_device_delete,
	.device_claim = sq_device_claim,
	.device_release = sq_device_release,
	.lease_renew = sq_lease_renew,
	.cert_add = sq_cert_add,
	.cert_get = sq_cert_get,
	.cert_list = sq_cert_list,
	.cert_set_status = sq_cert_set_status,
	.cert_data_put = sq_cert_data_put,
	.cert_data_get = sq_cert_data_get,
	.status_add = sq_status_add,
	.status_list = sq_status_list,
	.audit_add = sq_audit_add,
	.audit_list = sq_audit_list,
	.pending_add = sq_pending_add,
	.pending_due = sq_pending_due,
	.pending_list = sq_pending_list,
	.pending_defer = sq_pending_defer,
	.pending_retry = sq_pending_retry,
	.pending_done = sq_pending_done,
	.task_get = sq_task_get,
	.task_put = sq_task_put,
	.task_request = sq_task_request,
	.task_list = sq_task_list,
	.task_claim = sq_task_claim,
	.task_release = sq_task_release,
	.lease_count = sq_lease_count,
};
