/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The write-ahead barrier (store_sync.h): one syncer thread per process fdatasyncs the
 * files that hold deferred durable commits, and publishes how far it got.
 *
 * Why a file descriptor of our own: fdatasync flushes the file (the inode), whichever
 * descriptor wrote it, so the syncer needs no access to SQLite's connection (whose mutex
 * the event loop would then wait for) nor to its file handle (not thread safe). The WAL
 * holds no POSIX locks (SQLite locks the database and -shm files), so opening and closing
 * a descriptor of it drops nothing of SQLite's (see the open-files note in
 * store_sqlite.c). A WAL replaced since (every connection closed: the last close
 * checkpointed and synced it) is reopened; a WAL that is gone was checkpointed and synced
 * by that close.
 */
#include "store_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

struct store_sync_src {
	char *path;
	int fd;        /* opened by the syncer when it first syncs it; -1 before */
	int dirty;     /* a deferred commit since its last sync */
	int refs;      /* handles, plus the syncer while it syncs it */
	int loose;     /* store_sync_later()'s: no handle; goes with the last database */
	/* A database's WAL: the database file, and the syncer's own connection to it for
	 * checkpoints (the loop's connection does none: store_sync_checkpoint). */
	char *db_path;
	sqlite3 *ckpt_db;
	int want_ckpt;
	struct store_sync_src *next;
};

struct watcher {
	void (*fn)(void *ctx);
	void *ctx;
};

#define MAX_WATCHERS 16

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static uint64_t issued, synced;
static int failed;
static char fail_msg[256];
static struct store_sync_src *sources;
static int n_sources; /* of databases (not loose) */
static pthread_t loop_thread; /* the thread that asked for deferred syncing */
static struct watcher watchers[MAX_WATCHERS];
static int n_watchers;
static pthread_t thread;
static int running, stopping;
static int ckpt_wanted; /* some source asked for a checkpoint */
static int held;        /* store_sync_hold(): tests */
static int calling; /* the syncer is calling watchers (from its copy of the list) */
/* Serialises starting and joining the thread (never held with mu while joining). */
static pthread_mutex_t life = PTHREAD_MUTEX_INITIALIZER;

static void fail_locked(const char *path, int e)
{
	if (!failed)
		snprintf(fail_msg, sizeof(fail_msg),
			 "cannot sync %s to disk (%s): durable records may not survive a power "
			 "loss, so amtprovd acts on no device until it is restarted",
			 path, strerror(e));
	failed = 1;
}

/* Syncs @p src's file (its current inode; see the top). @return 0 or an errno. */
static int sync_file(struct store_sync_src *src, int *opened)
{
	struct stat a, b;

	*opened = 0;
	if (src->fd >= 0 && (stat(src->path, &a) != 0 || fstat(src->fd, &b) != 0 ||
			     a.st_dev != b.st_dev || a.st_ino != b.st_ino)) {
		close(src->fd);
		src->fd = -1;
	}
	if (src->fd < 0) {
		src->fd = open(src->path, O_RDONLY | O_CLOEXEC);
		if (src->fd < 0)
			return errno == ENOENT ? 0 : errno;
		*opened = 1;
	}
	return fdatasync(src->fd) == 0 ? 0 : errno;
}

/* A file the syncer opened for the first time may be new: its directory entry is synced
 * too, as SQLite does on the first sync of a new WAL. */
static int sync_dir_of(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd, rc = 0;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fsync(fd) != 0 && errno != EINVAL)
		rc = errno;
	close(fd);
	return rc;
}

/* One file's sync, its directory's too when the file was (re)opened. @return 0 or errno. */
static int sync_src(struct store_sync_src *src)
{
	int opened, e = sync_file(src, &opened);

	if (!e && opened)
		e = sync_dir_of(src->path);
	return e;
}

static void src_free(struct store_sync_src *src)
{
	if (src->fd >= 0)
		close(src->fd);
	if (src->ckpt_db)
		sqlite3_close(src->ckpt_db);
	free(src->db_path);
	free(src->path);
	free(src);
}

/* A PASSIVE checkpoint through the syncer's own connection: copies what it can of the WAL
 * into the database (syncing the WAL first, then the database) without waiting for the
 * loop's connection, which goes on writing meanwhile. Failures are left to the next one
 * (the WAL only grows meanwhile; nothing is lost). */
static void checkpoint(struct store_sync_src *src)
{
	/* A fresh connection knows the file is in WAL mode only once it read it. */
	if (!src->ckpt_db &&
	    (sqlite3_open_v2(src->db_path, &src->ckpt_db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	     sqlite3_exec(src->ckpt_db, "PRAGMA synchronous = NORMAL; "
			  "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK)) {
		sqlite3_close(src->ckpt_db);
		src->ckpt_db = NULL;
		return;
	}
	sqlite3_wal_checkpoint_v2(src->ckpt_db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

static void src_unref_locked(struct store_sync_src *src)
{
	if (--src->refs > 0)
		return;
	for (struct store_sync_src **p = &sources; *p; p = &(*p)->next) {
		if (*p == src) {
			*p = src->next;
			break;
		}
	}
	if (!src->loose)
		n_sources--;
	src_free(src);
}

static void *syncer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		struct store_sync_src *todo[32];
		struct watcher w[MAX_WATCHERS];
		int n = 0, nw, err = 0;
		const char *bad = NULL;
		uint64_t target;

		struct store_sync_src *ck[32];
		int nck = 0;

		while (!stopping && (held || (synced == issued && !ckpt_wanted)))
			pthread_cond_wait(&work_cv, &mu);
		if (synced == issued && (stopping || !ckpt_wanted))
			break; /* stopping, nothing left */
		target = issued;
		ckpt_wanted = 0;
		for (struct store_sync_src *s = sources; s && n < (int)(sizeof(todo) / sizeof(*todo));
		     s = s->next) {
			if (s->want_ckpt && nck < (int)(sizeof(ck) / sizeof(*ck))) {
				s->want_ckpt = 0;
				s->refs++;
				ck[nck++] = s;
			}
			if (!s->dirty)
				continue;
			s->dirty = 0;
			s->refs++;
			todo[n++] = s;
		}
		pthread_mutex_unlock(&mu);
		for (int i = 0; i < n; i++) {
			int e = sync_src(todo[i]);

			if (e && !err) {
				err = e;
				bad = todo[i]->path;
			}
		}
		/* After the syncs: the waiting actions need not wait for a checkpoint. */
		if (nck) {
			pthread_mutex_lock(&mu);
			if (err)
				fail_locked(bad, err);
			if (!err && target > synced)
				synced = target;
			pthread_cond_broadcast(&done_cv);
			pthread_mutex_unlock(&mu);
			for (int i = 0; i < nck; i++)
				checkpoint(ck[i]);
		}
		pthread_mutex_lock(&mu);
		if (err)
			fail_locked(bad, err);
		for (int i = 0; i < n; i++)
			src_unref_locked(todo[i]);
		for (int i = 0; i < nck; i++)
			src_unref_locked(ck[i]);
		/* More than fit in todo[] (never in practice): the rest in the next round. */
		for (struct store_sync_src *s = sources; s; s = s->next)
			if (s->dirty)
				target = synced;
		if (target > synced)
			synced = target;
		pthread_cond_broadcast(&done_cv);
		nw = n_watchers;
		memcpy(w, watchers, (size_t)nw * sizeof(*w));
		calling = 1;
		pthread_mutex_unlock(&mu);
		for (int i = 0; i < nw; i++)
			w[i].fn(w[i].ctx);
		pthread_mutex_lock(&mu);
		calling = 0;
		pthread_cond_broadcast(&done_cv);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

uint64_t store_sync_ticket(void)
{
	uint64_t t;

	pthread_mutex_lock(&mu);
	t = issued > synced || failed ? issued : 0;
	pthread_mutex_unlock(&mu);
	return t;
}

static int passed_locked(uint64_t ticket)
{
	if (failed)
		return -1;
	return synced >= ticket ? 1 : 0;
}

int store_sync_passed(uint64_t ticket)
{
	int r;

	if (!ticket)
		return 1;
	pthread_mutex_lock(&mu);
	r = passed_locked(ticket);
	pthread_mutex_unlock(&mu);
	return r;
}

int store_sync_wait(uint64_t ticket)
{
	int r;

	if (!ticket)
		return 1;
	pthread_mutex_lock(&mu);
	while ((r = passed_locked(ticket)) == 0)
		pthread_cond_wait(&done_cv, &mu);
	pthread_mutex_unlock(&mu);
	return r;
}

const char *store_sync_error(void)
{
	return failed ? fail_msg : "";
}

int store_sync_watch(void (*fn)(void *ctx), void *ctx)
{
	int rc = -1;

	pthread_mutex_lock(&mu);
	if (n_watchers < MAX_WATCHERS) {
		watchers[n_watchers++] = (struct watcher){fn, ctx};
		rc = 0;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

void store_sync_unwatch(void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&mu);
	for (int i = 0; i < n_watchers; i++) {
		if (watchers[i].fn == fn && watchers[i].ctx == ctx) {
			watchers[i] = watchers[--n_watchers];
			break;
		}
	}
	/* The syncer may be calling it right now from its copy: wait for that round. */
	while (calling)
		pthread_cond_wait(&done_cv, &mu);
	pthread_mutex_unlock(&mu);
}

struct store_sync_src *store_sync_src_get(const char *db_path)
{
	struct store_sync_src *src;
	char path[4096];

	if (snprintf(path, sizeof(path), "%s-wal", db_path) >= (int)sizeof(path))
		return NULL;

	pthread_mutex_lock(&life);
	pthread_mutex_lock(&mu);
	for (src = sources; src; src = src->next) {
		if (strcmp(src->path, path) == 0) {
			src->refs++;
			goto out;
		}
	}
	src = calloc(1, sizeof(*src));
	if (src && (!(src->path = strdup(path)) || !(src->db_path = strdup(db_path)))) {
		free(src->path);
		free(src);
		src = NULL;
	}
	if (!src)
		goto out;
	src->fd = -1;
	src->refs = 1;
	src->next = sources;
	sources = src;
	n_sources++;
	loop_thread = pthread_self();
	if (!running) {
		stopping = 0;
		if (pthread_create(&thread, NULL, syncer_main, NULL) != 0) {
			src_unref_locked(src);
			src = NULL;
			goto out;
		}
		running = 1;
	}
out:
	pthread_mutex_unlock(&mu);
	pthread_mutex_unlock(&life);
	return src;
}

void store_sync_src_put(struct store_sync_src *src)
{
	int join = 0;

	if (!src)
		return;
	pthread_mutex_lock(&life);
	pthread_mutex_lock(&mu);
	if (src->refs == 1 && src->dirty) {
		/* The last handle of the file goes: its deferred commits are synced first. */
		uint64_t target = issued;
		int e;

		src->dirty = 0;
		pthread_mutex_unlock(&mu);
		e = sync_src(src);
		pthread_mutex_lock(&mu);
		if (e)
			fail_locked(src->path, e);
		else if (target > synced && n_sources == 1)
			synced = target;
		pthread_cond_broadcast(&done_cv);
	}
	src_unref_locked(src);
	if (n_sources == 0 && running) {
		/* The syncer drains (every ticket issued so far) and ends. */
		stopping = 1;
		pthread_cond_signal(&work_cv);
		join = 1;
	}
	pthread_mutex_unlock(&mu);
	if (join)
		pthread_join(thread, NULL);
	pthread_mutex_lock(&mu);
	if (join)
		running = 0;
	if (n_sources == 0) {
		/* The loose files go with the last database (the syncer, which might have
		 * held them, is gone): synced here if they still need it. */
		while (sources) {
			struct store_sync_src *l = sources;
			int e = l->dirty ? sync_src(l) : 0;

			sources = l->next;
			if (e)
				fail_locked(l->path, e);
			src_free(l);
		}
		/* Everything issued is on disk now (or failed): no one may wait forever. */
		if (!failed)
			synced = issued;
		pthread_cond_broadcast(&done_cv);
	}
	pthread_mutex_unlock(&mu);
	pthread_mutex_unlock(&life);
}

uint64_t store_sync_defer(struct store_sync_src *src)
{
	uint64_t t;

	pthread_mutex_lock(&mu);
	src->dirty = 1;
	t = ++issued;
	pthread_cond_signal(&work_cv);
	pthread_mutex_unlock(&mu);
	return t;
}

int store_sync_later(const char *path)
{
	struct store_sync_src *src;
	int rc = -1;

	pthread_mutex_lock(&mu);
	if (!running || stopping || !pthread_equal(pthread_self(), loop_thread))
		goto out;
	for (src = sources; src && strcmp(src->path, path) != 0; src = src->next)
		;
	if (!src) {
		src = calloc(1, sizeof(*src));
		if (!src || !(src->path = strdup(path))) {
			free(src);
			goto out;
		}
		src->fd = -1;
		src->refs = 1;
		src->loose = 1;
		src->next = sources;
		sources = src;
	}
	src->dirty = 1;
	++issued;
	pthread_cond_signal(&work_cv);
	rc = 0;
out:
	pthread_mutex_unlock(&mu);
	return rc;
}

int store_sync_on_loop(void)
{
	int r;

	pthread_mutex_lock(&mu);
	r = running && !stopping && pthread_equal(pthread_self(), loop_thread);
	pthread_mutex_unlock(&mu);
	return r;
}

void store_sync_checkpoint(struct store_sync_src *src)
{
	pthread_mutex_lock(&mu);
	src->want_ckpt = 1;
	ckpt_wanted = 1;
	pthread_cond_signal(&work_cv);
	pthread_mutex_unlock(&mu);
}

void store_sync_hold(int on)
{
	pthread_mutex_lock(&mu);
	held = on;
	pthread_cond_signal(&work_cv);
	pthread_mutex_unlock(&mu);
}
