/* SPDX-License-Identifier: Apache-2.0 */
/*
 * credstore_file.c - "credstore-file", the default credential store (R-ACC-02).
 *
 * Secrets live in one store file, each record sealed with AES-256-GCM under a key from a
 * separate key file (a small key ring, so rotation can be done in crash-safe steps). Every
 * operation runs under an flock on "<path>.lock", so several processes (amtprov, amtprovd,
 * an operator's `amtprov credentials ...`) can share one store. The decoded store (names
 * and ciphertexts only) is kept between calls and used again only while the file's
 * identity (device, inode, size, mtime, ctime) is unchanged; the key file is read by every
 * call, so key material only sits in memory for the length of one call.
 *
 * A put or a remove appends one checksummed journal entry and fdatasyncs it; the whole
 * file is rewritten (temp file, fsync, rename, fsync of the directory) only to create it,
 * to convert a version 1 file, to compact a journal that outgrew the records, and by a
 * rotation. put() returns only once the value is durable (R-PROV-13: the core writes a
 * new AMT password here before the firmware commits it), or, on amtprovd's event loop,
 * once the host took over the sync (host API sync_later: its syncer thread syncs the file
 * before amtprovd's next call to a device or a CA).
 *
 * Plaintext values only ever sit in host->secret_new buffers; keys in OPENSSL_zalloc'd
 * memory that is cleansed on release. Log lines and error messages name files, records and
 * key ids, never a value or key byte. Formats: docs/credstore-file.md.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include <amtprov/credstore.h>

#include "cs_int.h"

#define KEY_FILE_MAX 4096
/* A journal is compacted (rewritten) once it holds this many more entries than records. */
#define COMPACT_SLACK 256

struct csf_cfg {
	char *path;
	char *key_file;
	int create_key;
};

struct csf {
	const struct amtprov_host *host;
	struct csf_cfg cfg;
	char *path;      /* store file */
	char *key_path;  /* key file */
	char *lock_path; /* "<path>.lock" */
	/* One operation at a time in this process; guards the cache. Taken before the flock. */
	pthread_mutex_t mu;
	struct cs_store cache;   /* the store as this process last read or wrote it */
	struct cs_ident cache_id; /* the file's identity then */
	int cached;              /* cache and cache_id valid */
};

static const struct amtprov_config_field csf_table[] = {
	{"path", AMTPROV_CFG_STRING, offsetof(struct csf_cfg, path), 0, NULL, 0, 0,
	 "store file (default <state_dir>/credentials.store)"},
	{"key_file", AMTPROV_CFG_STRING, offsetof(struct csf_cfg, key_file), 0, NULL, 0, 0,
	 "key file, mode 0600, owned by the amtprov user (default "
	 "<state_dir>/credentials.key)"},
	{"create_key", AMTPROV_CFG_BOOL, offsetof(struct csf_cfg, create_key), 0, "true", 0, 0,
	 "create a new random key file when it is missing and the store is empty"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

/* Keeps the first error of a step we ran against a scratch buffer. */
static int err_take(struct amtprov_error *err, const struct amtprov_error *e)
{
	if (err && err->code == AMTPROV_OK)
		*err = *e;
	return e->code;
}

/* ---- loading ---- */

/* A missing store file is an empty store. */
static int load_store(struct csf *cs, struct cs_store *st, struct amtprov_error *err)
{
	struct amtprov_error e;
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc;

	memset(st, 0, sizeof(*st));
	amtprov_error_clear(&e);
	rc = cs_read_file(cs->path, 0, CS_STORE_MAX, &buf, &len, &e);
	if (rc == AMTPROV_E_NOT_FOUND)
		return AMTPROV_OK;
	if (rc != AMTPROV_OK)
		return err_take(err, &e);
	rc = cs_store_decode(st, buf, len, cs->path, err);
	if (rc != AMTPROV_OK) {
		cs->host->log(cs->host, AMTPROV_LOG_ERROR, "store %s is damaged", cs->path);
		cs_store_release(st);
	}
	return rc;
}

/*
 * The store as the file holds it now: the cached copy while the file's identity is the one
 * it was read from or written as, else the file read again (another process wrote it). The
 * result belongs to cs->cache; the caller holds cs->mu and the flock.
 */
static int current_store(struct csf *cs, struct cs_store **out, struct amtprov_error *err)
{
	struct cs_ident before, after;
	int rc = cs_ident_of(cs->path, &before, err);

	if (rc != AMTPROV_OK)
		return rc;
	*out = &cs->cache;
	if (cs->cached && cs_ident_same(&before, &cs->cache_id))
		return AMTPROV_OK;
	cs_store_release(&cs->cache);
	cs->cached = 0;
	rc = load_store(cs, &cs->cache, err);
	if (rc != AMTPROV_OK)
		return rc;
	/* A writer that ignores the lock (a copy by hand) may have changed it meanwhile: then
	 * use what was read once, and read again next time. */
	if (cs_ident_of(cs->path, &after, err) == AMTPROV_OK && cs_ident_same(&before, &after)) {
		cs->cache_id = after;
		cs->cached = 1;
	}
	return AMTPROV_OK;
}

/* After a whole-file write of @p len bytes by this process (under the exclusive lock):
 * the cache, already changed to match, now describes that file. */
static void cache_written(struct csf *cs, size_t len)
{
	struct amtprov_error e;

	amtprov_error_clear(&e);
	cs->cache.version = CS_JOURNAL_VERSION;
	cs->cache.entries = 0;
	cs->cache.valid_len = len;
	cs->cached = cs_ident_of(cs->path, &cs->cache_id, &e) == AMTPROV_OK && cs->cache_id.exists;
}

/* cs_append's sync_later: the host's, when it has the slot (ABI 1.3) and takes it. */
static int host_sync_later(void *ctx, const char *path)
{
	const struct amtprov_host *host = ctx;

	if (!AMTPROV_HAS_SLOT(host, struct amtprov_host, sync_later) || !host->sync_later)
		return -1;
	return host->sync_later(host, path) == AMTPROV_OK ? 0 : -1;
}

/*
 * Makes the change already applied to the cached store @p st durable: one appended journal
 * entry @p entry when the file is a journal that has not outgrown its records, else the
 * whole store rewritten. On failure the cache is dropped (the next call reads the file).
 */
static int persist_change(struct csf *cs, struct cs_store *st, const unsigned char *entry,
			  size_t entry_len, struct amtprov_error *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc;

	if (cs->cache_id.exists && st->version == CS_JOURNAL_VERSION &&
	    st->entries < st->n + COMPACT_SLACK) {
		rc = cs_append(cs->path, st->valid_len, entry, entry_len, host_sync_later,
			       (void *)cs->host, &cs->cache_id, err);
		if (rc == AMTPROV_OK) {
			st->entries++;
			st->valid_len += entry_len;
			return AMTPROV_OK;
		}
	} else {
		cs_sweep_temps(cs->path);
		rc = cs_store_encode(st, &buf, &len, err);
		if (rc == AMTPROV_OK)
			rc = cs_write_atomic(cs->path, buf, len, err);
		free(buf);
		if (rc == AMTPROV_OK) {
			cache_written(cs, len);
			return AMTPROV_OK;
		}
	}
	cs->cached = 0;
	return rc;
}

static int write_keyring(struct csf *cs, const struct cs_keyring *kr, struct amtprov_error *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = cs_keyring_encode(kr, &buf, &len, err);

	if (rc != AMTPROV_OK)
		return rc;
	rc = cs_write_atomic(cs->key_path, buf, len, err);
	OPENSSL_clear_free(buf, len);
	return rc;
}

/* amtprov manifest check: validate, but create and change nothing. */
static int csf_check_only(const struct csf *cs)
{
	return AMTPROV_HAS_SLOT(cs->host, struct amtprov_host, check_only) &&
	       cs->host->check_only && cs->host->check_only(cs->host);
}

/*
 * Reads the key ring (owner, mode and symlink checks included). When the key file is
 * missing and @p may_create, creates one, but only if create_key allows it and the store
 * holds no record: a new key could not decrypt existing records, so silently making one
 * would turn a lost key file into lost passwords. Caller holds the exclusive lock then.
 */
static int load_keyring(struct csf *cs, int may_create, size_t records,
			struct cs_keyring **out, struct amtprov_error *err)
{
	struct amtprov_error e;
	struct cs_keyring *kr = cs_keyring_new();
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc;

	if (!kr)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	amtprov_error_clear(&e);
	rc = cs_read_file(cs->key_path, 1, KEY_FILE_MAX, &buf, &len, &e);
	if (rc == AMTPROV_OK) {
		rc = cs_keyring_decode(buf, len, kr, cs->key_path, err);
		OPENSSL_clear_free(buf, len ? len : 1);
	} else if (rc != AMTPROV_E_NOT_FOUND) {
		err_take(err, &e);
	} else if (!may_create || !cs->cfg.create_key) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, cs->key_path,
				       "key file %s does not exist%s", cs->key_path,
				       cs->cfg.create_key ? "" : " (create_key is false)");
	} else if (records) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, cs->key_path,
				       "refusing to create a new key file %s: the store holds "
				       "%zu records a new key cannot decrypt; restore the key "
				       "file from backup",
				       cs->key_path, records);
	} else if (csf_check_only(cs)) {
		rc = AMTPROV_OK;
		cs->host->log(cs->host, AMTPROV_LOG_INFO,
			      "key file %s will be created at the first run", cs->key_path);
	} else {
		rc = cs_keyring_add_random(kr, err);
		if (rc == AMTPROV_OK)
			rc = write_keyring(cs, kr, err);
		if (rc == AMTPROV_OK)
			cs->host->log(cs->host, AMTPROV_LOG_NOTICE,
				      "created key file %s (key %08x, mode 0600)", cs->key_path,
				      kr->current);
	}
	if (rc != AMTPROV_OK) {
		cs_keyring_free(kr);
		return rc;
	}
	*out = kr;
	return AMTPROV_OK;
}

/* ---- instance ---- */

static void csf_destroy(void *instance)
{
	struct csf *cs = instance;

	if (!cs)
		return;
	cs->host->config_free(cs->host, csf_table, &cs->cfg);
	cs_store_release(&cs->cache);
	pthread_mutex_destroy(&cs->mu);
	free(cs->path);
	free(cs->key_path);
	free(cs->lock_path);
	free(cs);
}

static char *path_or_default(const char *given, const char *dir, const char *leaf)
{
	char *p = NULL;

	if (given)
		return strdup(given);
	if (asprintf(&p, "%s/%s", dir, leaf) < 0)
		return NULL;
	return p;
}

/* Locates a create() failure at the config key it concerns (the message names the file). */
static void set_where(struct amtprov_error *err, const char *key)
{
	if (err)
		snprintf(err->where, sizeof(err->where), "%s", key);
}

/* Validates the files now, so a bad key file is a preflight error and not a failure in
 * the middle of provisioning, and creates the key file of a new store. */
static int csf_check_files(struct csf *cs, struct amtprov_error *err)
{
	struct cs_keyring *kr = NULL;
	struct cs_store *st = NULL;
	struct stat sb;
	int lock = -1, rc;

	/* A check takes the lock only when its file exists, and sweeps nothing. */
	if (!csf_check_only(cs) || cs_exists(cs->lock_path)) {
		rc = cs_lock(cs->lock_path, 1, &lock, err);
		if (rc != AMTPROV_OK) {
			set_where(err, "/path");
			return rc;
		}
	}
	if (!csf_check_only(cs)) {
		cs_sweep_temps(cs->path);
		cs_sweep_temps(cs->key_path);
	}
	rc = current_store(cs, &st, err);
	if (rc != AMTPROV_OK) {
		set_where(err, "/path");
		goto out;
	}
	rc = load_keyring(cs, 1, st->n, &kr, err);
	if (rc != AMTPROV_OK) {
		set_where(err, "/key_file");
		goto out;
	}
	/* The store holds only ciphertext, but record names say which devices exist. */
	if (lstat(cs->path, &sb) == 0 && (sb.st_mode & (S_IRWXG | S_IRWXO)))
		cs->host->log(cs->host, AMTPROV_LOG_WARNING,
			      "store %s has mode %04o; it will be 0600 after the next write",
			      cs->path, (unsigned)(sb.st_mode & 07777));
	cs->host->log(cs->host, AMTPROV_LOG_DEBUG, "store %s (%zu records), key file %s",
		      cs->path, st->n, cs->key_path);
out:
	cs_keyring_free(kr);
	cs_unlock(lock);
	return rc;
}

static int csf_create(const struct amtprov_host *host, const struct json_t *config,
		      void **instance, struct amtprov_error *err)
{
	struct csf *cs = calloc(1, sizeof(*cs));
	const char *dir;
	int rc;

	if (!cs)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	cs->host = host;
	pthread_mutex_init(&cs->mu, NULL);
	rc = host->config_parse(host, config, csf_table, &cs->cfg, err);
	if (rc != AMTPROV_OK)
		goto fail;
	dir = host->state_dir(host);
	if ((!cs->cfg.path || !cs->cfg.key_file) && !dir) {
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, cs->cfg.path ? "/key_file" : "/path",
				       "amtprov runs without a state directory: set both path "
				       "and key_file");
		goto fail;
	}
	if ((cs->cfg.path && !*cs->cfg.path) || (cs->cfg.key_file && !*cs->cfg.key_file)) {
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG,
				       cs->cfg.path && !*cs->cfg.path ? "/path" : "/key_file",
				       "must not be empty");
		goto fail;
	}
	cs->path = path_or_default(cs->cfg.path, dir, "credentials.store");
	cs->key_path = path_or_default(cs->cfg.key_file, dir, "credentials.key");
	if (!cs->path || !cs->key_path || asprintf(&cs->lock_path, "%s.lock", cs->path) < 0) {
		cs->lock_path = NULL;
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		goto fail;
	}
	if (strcmp(cs->path, cs->key_path) == 0 || strcmp(cs->lock_path, cs->key_path) == 0) {
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "/key_file",
				       "key_file must differ from the store path %s", cs->path);
		goto fail;
	}
	pthread_mutex_lock(&cs->mu);
	rc = csf_check_files(cs, err);
	pthread_mutex_unlock(&cs->mu);
	if (rc != AMTPROV_OK)
		goto fail;
	*instance = cs;
	return AMTPROV_OK;
fail:
	csf_destroy(cs);
	return rc;
}

/* ---- operations ---- */

static int check_name(const char *name, struct amtprov_error *err)
{
	char shown[41];
	size_t i = 0;

	if (cs_name_valid(name))
		return AMTPROV_OK;
	/* A name is not a secret, but it is untrusted: show a short, printable prefix so a
	 * control character cannot forge log lines. */
	for (; name && name[i] && i < sizeof(shown) - 1; i++)
		shown[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
	shown[i] = '\0';
	return amtprov_error_set(err, AMTPROV_E_INVALID, NULL,
				 "invalid record name '%s'%s: use 1 to %d characters of "
				 "A-Z a-z 0-9 . _ / -",
				 name ? shown : "(null)", name && name[i] ? "..." : "", CS_NAME_MAX);
}

static int csf_get(void *instance, const char *name, struct amtprov_secret **out,
		   struct amtprov_error *err)
{
	struct csf *cs = instance;
	struct cs_keyring *kr = NULL;
	struct amtprov_secret *s = NULL;
	const struct cs_key *key;
	struct cs_store *st;
	struct cs_rec *rec;
	int lock = -1, rc;

	rc = check_name(name, err);
	if (rc != AMTPROV_OK)
		return rc;
	pthread_mutex_lock(&cs->mu);
	/* Shared lock: a rotation in another process replaces both files, and reading the
	 * key file before it and the store after it would look like a wrong key. A check
	 * (amtprov manifest check reads the passwords it sets on AMT) creates nothing: it
	 * takes the lock only when its file exists; a store never written has no records. */
	if (!csf_check_only(cs) || cs_exists(cs->lock_path)) {
		rc = cs_lock(cs->lock_path, 0, &lock, err);
		if (rc != AMTPROV_OK)
			goto out;
	}
	rc = current_store(cs, &st, err);
	if (rc != AMTPROV_OK)
		goto out;
	rec = cs_store_find(st, name);
	if (!rec) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, name, "no record '%s' in %s", name,
				       cs->path);
		goto out;
	}
	rc = load_keyring(cs, 0, st->n, &kr, err);
	if (rc != AMTPROV_OK)
		goto out;
	key = cs_keyring_find(kr, rec->key_id);
	if (!key) {
		rc = amtprov_error_set(err, AMTPROV_E_VERIFY, name,
				       "record '%s' is sealed with key %08x, which key file %s "
				       "does not hold (wrong key file?)",
				       name, rec->key_id, cs->key_path);
		cs->host->log(cs->host, AMTPROV_LOG_WARNING, "record '%s': key %08x not in %s",
			      name, rec->key_id, cs->key_path);
		goto out;
	}
	s = cs->host->secret_new(cs->host, rec->ct_len);
	if (!s) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, name, "out of memory");
		goto out;
	}
	rc = cs_open(key, rec, (unsigned char *)s->data, cs->path, err);
	if (rc != AMTPROV_OK) {
		cs->host->log(cs->host, AMTPROV_LOG_WARNING,
			      "record '%s' in %s failed authentication", name, cs->path);
		cs->host->secret_free(cs->host, s);
		goto out;
	}
	*out = s;
	cs->host->log(cs->host, AMTPROV_LOG_DEBUG, "read record '%s'", name);
out:
	cs_keyring_free(kr);
	cs_unlock(lock);
	pthread_mutex_unlock(&cs->mu);
	return rc;
}

static int csf_put(void *instance, const char *name, const struct amtprov_secret *value,
		   struct amtprov_error *err)
{
	struct csf *cs = instance;
	struct cs_keyring *kr = NULL;
	struct cs_rec rec;
	struct cs_store *st;
	unsigned char *entry = NULL;
	size_t entry_len = 0;
	int lock = -1, rc;

	rc = check_name(name, err);
	if (rc != AMTPROV_OK)
		return rc;
	if (!value || (!value->data && value->len))
		return amtprov_error_set(err, AMTPROV_E_INVALID, name, "no value for record '%s'",
					 name);
	if (value->len > CS_VALUE_MAX)
		return amtprov_error_set(err, AMTPROV_E_INVALID, name,
					 "value for record '%s' is too large (%zu bytes; at most "
					 "%u)",
					 name, value->len, CS_VALUE_MAX);
	memset(&rec, 0, sizeof(rec));
	pthread_mutex_lock(&cs->mu);
	rc = cs_lock(cs->lock_path, 1, &lock, err);
	if (rc != AMTPROV_OK)
		goto out;
	rc = current_store(cs, &st, err);
	if (rc != AMTPROV_OK)
		goto out;
	rc = load_keyring(cs, 1, st->n, &kr, err);
	if (rc != AMTPROV_OK)
		goto out;
	rc = cs_seal(cs_keyring_find(kr, kr->current), name, (const unsigned char *)value->data,
		     value->len, &rec, err);
	if (rc == AMTPROV_OK)
		rc = cs_entry_encode(&rec, NULL, &entry, &entry_len, err);
	if (rc == AMTPROV_OK) {
		rc = cs_store_set(st, &rec, err);
		if (rc == AMTPROV_OK)
			rc = persist_change(cs, st, entry, entry_len, err);
		else
			cs->cached = 0;
	}
	if (rc == AMTPROV_OK)
		cs->host->log(cs->host, AMTPROV_LOG_DEBUG, "stored record '%s' (%zu records)",
			      name, st->n);
out:
	free(rec.ct_own);
	free(entry);
	cs_keyring_free(kr);
	cs_unlock(lock);
	pthread_mutex_unlock(&cs->mu);
	return rc;
}

static int csf_remove(void *instance, const char *name, struct amtprov_error *err)
{
	struct csf *cs = instance;
	struct cs_store *st;
	struct cs_rec *rec;
	unsigned char *entry = NULL;
	size_t entry_len = 0;
	int lock = -1, rc;

	rc = check_name(name, err);
	if (rc != AMTPROV_OK)
		return rc;
	pthread_mutex_lock(&cs->mu);
	rc = cs_lock(cs->lock_path, 1, &lock, err);
	if (rc != AMTPROV_OK)
		goto out;
	rc = current_store(cs, &st, err);
	if (rc != AMTPROV_OK)
		goto out;
	rec = cs_store_find(st, name);
	if (!rec) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, name, "no record '%s' in %s", name,
				       cs->path);
		goto out;
	}
	rc = cs_entry_encode(NULL, name, &entry, &entry_len, err);
	if (rc != AMTPROV_OK)
		goto out;
	cs_store_remove(st, rec);
	rc = persist_change(cs, st, entry, entry_len, err);
	if (rc == AMTPROV_OK)
		cs->host->log(cs->host, AMTPROV_LOG_DEBUG, "removed record '%s'", name);
out:
	free(entry);
	cs_unlock(lock);
	pthread_mutex_unlock(&cs->mu);
	return rc;
}

static int csf_list(void *instance, amtprov_credstore_name_cb cb, void *ctx,
		    struct amtprov_error *err)
{
	struct csf *cs = instance;
	struct cs_store *st;
	char (*names)[CS_NAME_MAX + 1] = NULL;
	size_t n = 0;
	int lock = -1, rc;

	if (!cb)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no callback");
	pthread_mutex_lock(&cs->mu);
	rc = cs_lock(cs->lock_path, 0, &lock, err);
	if (rc == AMTPROV_OK)
		rc = current_store(cs, &st, err);
	if (rc == AMTPROV_OK && st->n) {
		names = malloc(st->n * sizeof(*names));
		if (!names)
			rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		for (; names && n < st->n; n++)
			memcpy(names[n], st->recs[n].name, sizeof(names[n]));
	}
	/* Names only; the callback runs after the locks are released, so it may call back
	 * into the store (through the core) without deadlocking. */
	cs_unlock(lock);
	pthread_mutex_unlock(&cs->mu);
	for (size_t i = 0; rc == AMTPROV_OK && i < n; i++)
		if (cb(ctx, names[i]))
			break;
	free(names);
	return rc;
}

/* Decrypts every record of @p st with @p kr and seals it into @p ns under @p key. */
static int reseal_all(struct csf *cs, const struct cs_store *st, const struct cs_keyring *kr,
		      const struct cs_key *key, struct cs_store *ns, struct amtprov_error *err)
{
	for (size_t i = 0; i < st->n; i++) {
		const struct cs_rec *r = &st->recs[i];
		const struct cs_key *old = cs_keyring_find(kr, r->key_id);
		struct amtprov_secret *s;
		struct cs_rec nr;
		int rc;

		if (!old)
			return amtprov_error_set(err, AMTPROV_E_VERIFY, r->name,
						 "record '%s' is sealed with key %08x, which key "
						 "file %s does not hold: nothing was rotated",
						 r->name, r->key_id, cs->key_path);
		s = cs->host->secret_new(cs->host, r->ct_len);
		if (!s)
			return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		rc = cs_open(old, r, (unsigned char *)s->data, cs->path, err);
		if (rc == AMTPROV_OK)
			rc = cs_seal(key, r->name, (const unsigned char *)s->data, s->len, &nr, err);
		cs->host->secret_free(cs->host, s);
		if (rc == AMTPROV_OK) {
			rc = cs_store_set(ns, &nr, err);
			free(nr.ct_own);
		}
		if (rc != AMTPROV_OK)
			return rc;
	}
	return AMTPROV_OK;
}

/*
 * Three atomic replacements, so a crash between any two leaves a readable store:
 *   1. key file := old keys + new key (current)   -> old records still decrypt
 *   2. store    := every record sealed with the new key
 *   3. key file := new key only                    -> the old key is gone
 * After a crash between 1 and 3 the key file simply holds an extra key; the next rotation
 * drops it.
 */
static int csf_rotate_key(void *instance, struct amtprov_error *err)
{
	struct csf *cs = instance;
	struct cs_keyring *kr = NULL, *nk = NULL;
	struct cs_store *st = NULL, ns;
	unsigned char *buf = NULL;
	size_t len = 0;
	uint32_t old_id = 0;
	int lock = -1, rc;

	memset(&ns, 0, sizeof(ns));
	pthread_mutex_lock(&cs->mu);
	rc = cs_lock(cs->lock_path, 1, &lock, err);
	if (rc != AMTPROV_OK)
		goto out;
	cs_sweep_temps(cs->path);
	cs_sweep_temps(cs->key_path);
	rc = current_store(cs, &st, err);
	if (rc == AMTPROV_OK)
		rc = load_keyring(cs, 0, st->n, &kr, err);
	if (rc != AMTPROV_OK)
		goto out;
	old_id = kr->current;
	nk = cs_keyring_new();
	if (!nk) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	*nk = *kr;
	rc = cs_keyring_add_random(nk, err);
	if (rc == AMTPROV_OK)
		rc = reseal_all(cs, st, kr, cs_keyring_find(nk, nk->current), &ns, err);
	if (rc == AMTPROV_OK)
		rc = cs_store_encode(&ns, &buf, &len, err);
	if (rc == AMTPROV_OK)
		rc = write_keyring(cs, nk, err); /* step 1 */
	if (rc == AMTPROV_OK)
		rc = cs_write_atomic(cs->path, buf, len, err); /* step 2 */
	if (rc == AMTPROV_OK) {
		/* step 3: keep only the new key */
		nk->k[0] = *cs_keyring_find(nk, nk->current);
		OPENSSL_cleanse(&nk->k[1], sizeof(nk->k) - sizeof(nk->k[0]));
		nk->n = 1;
		rc = write_keyring(cs, nk, err);
	}
	if (rc == AMTPROV_OK)
		cs->host->log(cs->host, AMTPROV_LOG_NOTICE,
			      "rotated the store key of %s: %zu records resealed with key %08x; "
			      "key %08x dropped from %s",
			      cs->path, ns.n, nk->current, old_id, cs->key_path);
	else
		cs->host->log(cs->host, AMTPROV_LOG_ERROR, "key rotation of %s failed", cs->path);
out:
	/* The store file was replaced (or may have been): read it again next time. */
	cs->cached = 0;
	free(buf);
	cs_keyring_free(kr);
	cs_keyring_free(nk);
	cs_store_release(&ns);
	cs_unlock(lock);
	pthread_mutex_unlock(&cs->mu);
	return rc;
}

static const struct amtprov_credstore_ops csf_ops = {
	.struct_size = sizeof(struct amtprov_credstore_ops),
	.get = csf_get,
	.put = csf_put,
	.remove = csf_remove,
	.list = csf_list,
	.rotate_key = csf_rotate_key,
};

static const char *const csf_caps[] = {AMTPROV_CAP_CREDSTORE_ROTATE, NULL};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_CREDSTORE, .name = "credstore-file",
		      .version = "1.0.0",
		      .description = "credential store in an AES-256-GCM encrypted file",
		      .capabilities = csf_caps, .create = csf_create, .destroy = csf_destroy,
		      .ops = &csf_ops, .config_table = csf_table);
