/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cs_file.c - file primitives of credstore-file: an flock'd lock file, careful reads (no
 * symlinks; for the key file also owner and mode checks) and atomic, durable replacement.
 *
 * Why each step of cs_write_atomic exists: the temp file lives in the target's directory so
 * rename() is atomic; O_EXCL + 0600 so no one else can own or read it; fsync before rename
 * so the new name never points at unwritten blocks; fsync of the directory so the rename
 * itself survives a power loss. A reader therefore sees the old file or the new one, never
 * a torn one, even when the writer is SIGKILLed at any instruction.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cs_int.h"

int cs_lock(const char *lock_path, int exclusive, int *fd, struct amtprov_error *err)
{
	int f = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (f < 0)
		return amtprov_error_set(err, errno == ELOOP ? AMTPROV_E_DENIED : AMTPROV_E_IO,
					 lock_path, "cannot open lock file %s: %s", lock_path,
					 errno == ELOOP ? "it is a symbolic link" : strerror(errno));
	/* flock, not fcntl locks: those are per process, so two instances in one process
	 * would not exclude each other. The lock file is opened per operation so a forked
	 * child never shares our open file description (and with it our lock). */
	while (flock(f, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		if (errno == EINTR)
			continue;
		amtprov_error_set(err, AMTPROV_E_IO, lock_path, "cannot lock %s: %s", lock_path,
				  strerror(errno));
		close(f);
		return AMTPROV_E_IO;
	}
	*fd = f;
	return AMTPROV_OK;
}

void cs_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

int cs_exists(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) == 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

static int deny(struct amtprov_error *err, const char *path, const char *why)
{
	return amtprov_error_set(err, AMTPROV_E_DENIED, path, "refusing %s: %s", path, why);
}

int cs_read_file(const char *path, int secret, size_t max, unsigned char **buf, size_t *len,
		 struct amtprov_error *err)
{
	struct stat sb;
	unsigned char *b = NULL;
	size_t got = 0, size = 0;
	int fd, rc = AMTPROV_OK;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, path, "%s does not exist",
						 path);
		if (errno == ELOOP)
			return deny(err, path, "it is a symbolic link");
		return amtprov_error_set(err, errno == EACCES ? AMTPROV_E_DENIED : AMTPROV_E_IO,
					 path, "cannot open %s: %s", path, strerror(errno));
	}
	/* Checked on the open descriptor, so the file cannot be swapped after the check. */
	if (fstat(fd, &sb) < 0) {
		rc = amtprov_error_set(err, AMTPROV_E_IO, path, "cannot stat %s: %s", path,
				       strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = deny(err, path, "it is not a regular file");
		goto out;
	}
	if (secret && sb.st_uid != geteuid()) {
		rc = amtprov_error_set(err, AMTPROV_E_DENIED, path,
				       "refusing key file %s: owned by uid %lu, not by this user "
				       "(uid %lu)",
				       path, (unsigned long)sb.st_uid, (unsigned long)geteuid());
		goto out;
	}
	if (secret && (sb.st_mode & (S_IRWXG | S_IRWXO))) {
		rc = amtprov_error_set(err, AMTPROV_E_DENIED, path,
				       "refusing key file %s: mode %04o gives group or others "
				       "access; it must be 0600",
				       path, (unsigned)(sb.st_mode & 07777));
		goto out;
	}
	if ((size_t)sb.st_size > max) {
		rc = amtprov_error_set(err, AMTPROV_E_CORRUPT, path, "%s is too large (%lld bytes)",
				       path, (long long)sb.st_size);
		goto out;
	}
	size = (size_t)sb.st_size;
	b = secret ? OPENSSL_malloc(size ? size : 1) : malloc(size ? size : 1);
	if (!b) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, path, "out of memory");
		goto out;
	}
	while (got < size) {
		ssize_t r = read(fd, b + got, size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = amtprov_error_set(err, AMTPROV_E_IO, path, "cannot read %s: %s", path,
					       strerror(errno));
			goto out;
		}
		if (r == 0)
			break; /* shrank under us: the decoder reports the short file */
		got += (size_t)r;
	}
out:
	close(fd);
	if (rc != AMTPROV_OK) {
		if (secret)
			OPENSSL_clear_free(b, size ? size : 1);
		else
			free(b);
		return rc;
	}
	*buf = b;
	*len = got;
	return AMTPROV_OK;
}

/* "<dir>" of @p path into @p dir (at least PATH_MAX-ish); "." when there is no slash. */
static void dir_of(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, size, ".");
	else if (slash == path)
		snprintf(dir, size, "/");
	else
		snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

static int fsync_dir(const char *path, struct amtprov_error *err)
{
	char dir[4096];
	int fd;

	dir_of(path, dir, sizeof(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return amtprov_error_set(err, AMTPROV_E_IO, dir, "cannot open directory %s: %s",
					 dir, strerror(errno));
	/* Some file systems cannot fsync a directory (EINVAL); there the rename is as
	 * durable as it gets. */
	if (fsync(fd) < 0 && errno != EINVAL) {
		int e = errno;

		close(fd);
		return amtprov_error_set(err, AMTPROV_E_IO, dir, "cannot fsync directory %s: %s",
					 dir, strerror(e));
	}
	close(fd);
	return AMTPROV_OK;
}

/* Writes all of @p buf at offset @p at of @p fd (@p path names it in the error). */
static int write_at(int fd, const unsigned char *buf, size_t len, size_t at, const char *path,
		    struct amtprov_error *err)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = pwrite(fd, buf + done, len - done, (off_t)(at + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return amtprov_error_set(err, AMTPROV_E_IO, path, "cannot write %s: %s",
						 path, strerror(errno));
		done += (size_t)w;
	}
	return AMTPROV_OK;
}

int cs_write_atomic(const char *path, const unsigned char *buf, size_t len,
		    struct amtprov_error *err)
{
	unsigned char rnd[4];
	char tmp[4096];
	int fd, n;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd)); /* O_EXCL still guarantees a fresh file */
	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%02x%02x%02x%02x", path, (long)getpid(),
		     rnd[0], rnd[1], rnd[2], rnd[3]);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return amtprov_error_set(err, AMTPROV_E_INVALID, path, "path %s is too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return amtprov_error_set(err, AMTPROV_E_IO, tmp, "cannot create %s: %s", tmp,
					 strerror(errno));
	if (write_at(fd, buf, len, 0, tmp, err) != AMTPROV_OK)
		goto fail;
	if (fsync(fd) < 0) {
		amtprov_error_set(err, AMTPROV_E_IO, tmp, "cannot fsync %s: %s", tmp,
				  strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		amtprov_error_set(err, AMTPROV_E_IO, tmp, "cannot close %s: %s", tmp,
				  strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		amtprov_error_set(err, AMTPROV_E_IO, path, "cannot rename %s to %s: %s", tmp, path,
				  strerror(errno));
		goto fail;
	}
	return fsync_dir(path, err);
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return err ? err->code : AMTPROV_E_IO;
}

void cs_sweep_temps(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	char dir[4096], prefix[512];
	struct dirent *de;
	DIR *d;
	int n;

	n = snprintf(prefix, sizeof(prefix), "%s.tmp.", base);
	if (n < 0 || (size_t)n >= sizeof(prefix))
		return;
	dir_of(path, dir, sizeof(dir));
	d = opendir(dir);
	if (!d)
		return;
	/* Only writers create these, and every writer holds the exclusive lock we hold now,
	 * so each one found belongs to a writer that died. */
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, (size_t)n) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static void ident_fill(const struct stat *sb, struct cs_ident *id)
{
	id->exists = 1;
	id->dev = (unsigned long long)sb->st_dev;
	id->ino = (unsigned long long)sb->st_ino;
	id->size = (unsigned long long)sb->st_size;
	id->mtime_ns = (long long)sb->st_mtim.tv_sec * 1000000000LL + sb->st_mtim.tv_nsec;
	id->ctime_ns = (long long)sb->st_ctim.tv_sec * 1000000000LL + sb->st_ctim.tv_nsec;
}

int cs_ident_of(const char *path, struct cs_ident *id, struct amtprov_error *err)
{
	struct stat sb;

	memset(id, 0, sizeof(*id));
	if (lstat(path, &sb) < 0) {
		if (errno == ENOENT)
			return AMTPROV_OK;
		return amtprov_error_set(err, AMTPROV_E_IO, path, "cannot stat %s: %s", path,
					 strerror(errno));
	}
	ident_fill(&sb, id);
	return AMTPROV_OK;
}

int cs_ident_same(const struct cs_ident *a, const struct cs_ident *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

int cs_append(const char *path, size_t at, const unsigned char *buf, size_t len,
	      int (*sync_later)(void *ctx, const char *path), void *ctx, struct cs_ident *id,
	      struct amtprov_error *err)
{
	struct stat sb;
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

	if (fd < 0)
		return amtprov_error_set(err, AMTPROV_E_IO, path, "cannot open %s: %s", path,
					 strerror(errno));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return amtprov_error_set(err, AMTPROV_E_IO, path, "%s is not a regular file", path);
	}
	/* The store holds record names; keep it private whatever made it otherwise. */
	if ((sb.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0) {
		amtprov_error_set(err, AMTPROV_E_IO, path, "cannot set mode 0600 on %s: %s", path,
				  strerror(errno));
		goto fail;
	}
	/* A torn entry of a writer that died is cut before the new one goes after it. */
	if ((size_t)sb.st_size != at && ftruncate(fd, (off_t)at) < 0) {
		amtprov_error_set(err, AMTPROV_E_IO, path, "cannot truncate %s: %s", path,
				  strerror(errno));
		goto fail;
	}
	if (write_at(fd, buf, len, at, path, err) != AMTPROV_OK)
		goto fail;
	/* fdatasync also makes the new size durable (it is needed to read the data). The
	 * host may take it over (amtprovd's event loop: its syncer thread syncs the file
	 * before the next action on a device; the entry survives a crash meanwhile). */
	if ((!sync_later || sync_later(ctx, path) != 0) && fdatasync(fd) < 0) {
		amtprov_error_set(err, AMTPROV_E_IO, path, "cannot fsync %s: %s", path,
				  strerror(errno));
		goto fail;
	}
	if (fstat(fd, &sb) < 0) {
		amtprov_error_set(err, AMTPROV_E_IO, path, "cannot stat %s: %s", path,
				  strerror(errno));
		goto fail;
	}
	close(fd);
	ident_fill(&sb, id);
	return AMTPROV_OK;
fail:
	close(fd);
	return err ? err->code : AMTPROV_E_IO;
}
