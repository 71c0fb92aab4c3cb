/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cs_int.h - internals of the credstore-file plugin: the on-disk formats (cs_format.c) and
 * the file primitives (cs_file.c). Nothing here is part of the plugin ABI; the formats are
 * documented in docs/credstore-file.md.
 */
#ifndef CREDSTORE_FILE_CS_INT_H
#define CREDSTORE_FILE_CS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <amtprov/error.h>

#define CS_KEY_LEN 32   /* AES-256 */
#define CS_NONCE_LEN 12 /* 96-bit GCM nonce, random per encryption */
#define CS_TAG_LEN 16   /* full 128-bit GCM tag */
#define CS_NAME_MAX 128
/* Bounds that keep a damaged file from making us allocate wildly. A PKCS#12 bundle or a
 * CA key is a few KiB, so 1 MiB per value leaves plenty of room. */
#define CS_VALUE_MAX (1u << 20)
#define CS_MAX_RECORDS 65536u
#define CS_MAX_KEYS 16u
#define CS_STORE_MAX ((size_t)256 << 20)

#define CS_STORE_MAGIC "AMTPCRED"
#define CS_KEYS_MAGIC "AMTPKEYS"
#define CS_FORMAT_VERSION 1u  /* records only; also the version bound into every AAD */
#define CS_JOURNAL_VERSION 2u /* base records followed by appended journal entries */
#define CS_ENTRY_PUT 0x50     /* 'P' */
#define CS_ENTRY_REMOVE 0x52  /* 'R' */
#define CS_ENTRY_SUM_LEN 8    /* check value: the first 8 bytes of SHA-256 of the entry */

struct cs_key {
	uint32_t id;
	unsigned char key[CS_KEY_LEN];
};

/* Key material: allocated with cs_keyring_new, wiped by cs_keyring_free. */
struct cs_keyring {
	uint32_t current; /* id of the key new records are sealed with */
	size_t n;
	struct cs_key k[CS_MAX_KEYS];
};

/* One record as stored: never holds plaintext. */
struct cs_rec {
	char name[CS_NAME_MAX + 1];
	uint32_t key_id;
	unsigned char nonce[CS_NONCE_LEN];
	unsigned char tag[CS_TAG_LEN];
	const unsigned char *ct; /* into cs_store.buf, or ct_own */
	unsigned char *ct_own;
	uint32_t ct_len;
};

/* A decoded store file; records sorted by name. */
struct cs_store {
	unsigned char *buf; /* the file as read; record ciphertexts point into it */
	size_t len;
	struct cs_rec *recs;
	size_t n, cap;
	unsigned version;  /* of the file: CS_FORMAT_VERSION or CS_JOURNAL_VERSION */
	size_t entries;    /* journal entries replayed (superseded or not) */
	size_t valid_len;  /* bytes that are part of the store; < len after a torn append */
};

/* ---- cs_format.c ---- */

/* 1 if @p name is 1..128 characters of [A-Za-z0-9._/-]. */
int cs_name_valid(const char *name);

struct cs_keyring *cs_keyring_new(void);
void cs_keyring_free(struct cs_keyring *kr);
const struct cs_key *cs_keyring_find(const struct cs_keyring *kr, uint32_t id);
/* Adds a fresh random key with an unused id and makes it current. */
int cs_keyring_add_random(struct cs_keyring *kr, struct amtprov_error *err);
/* @p path only names the file in messages. */
int cs_keyring_decode(const unsigned char *buf, size_t len, struct cs_keyring *kr,
		      const char *path, struct amtprov_error *err);
/* @p out is key material: release it with OPENSSL_clear_free(*out, *len). */
int cs_keyring_encode(const struct cs_keyring *kr, unsigned char **out, size_t *len,
		      struct amtprov_error *err);

/* Takes ownership of @p buf (malloc'd), even on failure. */
int cs_store_decode(struct cs_store *st, unsigned char *buf, size_t len, const char *path,
		    struct amtprov_error *err);
/* The whole store as a fresh file (CS_JOURNAL_VERSION, no entries). */
int cs_store_encode(const struct cs_store *st, unsigned char **out, size_t *len,
		    struct amtprov_error *err);
/* One journal entry: a put of @p put, or (put NULL) a removal of @p remove. */
int cs_entry_encode(const struct cs_rec *put, const char *remove, unsigned char **out,
		    size_t *len, struct amtprov_error *err);
struct cs_rec *cs_store_find(const struct cs_store *st, const char *name);
/* Inserts @p rec (its ct_own moves into the store) or replaces the record of that name. */
int cs_store_set(struct cs_store *st, struct cs_rec *rec, struct amtprov_error *err);
void cs_store_remove(struct cs_store *st, struct cs_rec *rec);
void cs_store_release(struct cs_store *st);

/* Encrypts @p len bytes of @p pt under @p key into @p rec (fresh nonce; rec->ct_own). */
int cs_seal(const struct cs_key *key, const char *name, const unsigned char *pt, size_t len,
	    struct cs_rec *rec, struct amtprov_error *err);
/* Decrypts @p rec into @p pt (rec->ct_len bytes). AMTPROV_E_VERIFY when authentication
 * fails; @p pt is wiped then. @p path only names the store in messages. */
int cs_open(const struct cs_key *key, const struct cs_rec *rec, unsigned char *pt,
	    const char *path, struct amtprov_error *err);

/* ---- cs_file.c ---- */

/* Opens (creating 0600) and flocks @p lock_path; *fd is released with cs_unlock. */
int cs_lock(const char *lock_path, int exclusive, int *fd, struct amtprov_error *err);
void cs_unlock(int fd);

/*
 * Reads a whole file. AMTPROV_E_NOT_FOUND if it does not exist. A symlink or a non-regular
 * file is refused (AMTPROV_E_DENIED). With @p secret, the file must also be owned by us and
 * have no group or other permission bits, and the buffer is key material (release it with
 * OPENSSL_clear_free).
 */
int cs_read_file(const char *path, int secret, size_t max, unsigned char **buf, size_t *len,
		 struct amtprov_error *err);
/* 0 if @p path does not exist, 1 if it does (whatever it is), -1 with errno otherwise. */
int cs_exists(const char *path);
/* Replaces @p path atomically and durably: temp file (0600, O_EXCL) in the same directory,
 * write, fsync, rename, fsync of the directory. */
int cs_write_atomic(const char *path, const unsigned char *buf, size_t len,
		    struct amtprov_error *err);
/* Identity of a store file as last read or written: any change by anyone moves it. */
struct cs_ident {
	int exists;
	unsigned long long dev, ino, size;
	long long mtime_ns, ctime_ns;
};
/* Fills @p id from stat(@p path) (exists = 0 when there is no file). */
int cs_ident_of(const char *path, struct cs_ident *id, struct amtprov_error *err);
int cs_ident_same(const struct cs_ident *a, const struct cs_ident *b);
/*
 * Appends @p len bytes at @p at (the end of the valid part: a torn tail beyond it is cut
 * first) of the existing file @p path, then fdatasync, unless @p sync_later (may be NULL)
 * returns 0: then the host syncs it before it acts on the record (host API sync_later);
 * mode forced to 0600. @p id gets the file's identity afterwards. On failure the file may
 * hold a partial entry, which readers treat as a torn tail.
 */
int cs_append(const char *path, size_t at, const unsigned char *buf, size_t len,
	      int (*sync_later)(void *ctx, const char *path), void *ctx, struct cs_ident *id,
	      struct amtprov_error *err);
/* Removes "<path>.tmp.*" left by a writer that died; call only under the exclusive lock. */
void cs_sweep_temps(const char *path);

#endif
