/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cs_format.c - the key file and store file formats of credstore-file, and the AES-256-GCM
 * sealing of records (docs/credstore-file.md).
 *
 * Decoders are strict: every length is bounded, the file must end exactly after the last
 * element, and anything unexpected is AMTPROV_E_CORRUPT naming the file, so a damaged file
 * is reported as such instead of as "wrong key". Messages name files, records and key ids,
 * never a value or key byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cs_int.h"

#define MAGIC_LEN 8
#define KEYS_HDR_LEN (MAGIC_LEN + 2 + 2 + 4)
#define KEY_ENTRY_LEN (4 + CS_KEY_LEN)
#define SHA256_LEN 32
#define STORE_HDR_LEN (MAGIC_LEN + 2 + 2 + 4)

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Appends OpenSSL's first queued reason (never data) to a message and clears the queue. */
static int crypto_fail(struct amtprov_error *err, const char *where, const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[160] = "no detail";

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	return amtprov_error_set(err, AMTPROV_E_CRYPTO, where, "%s failed: %s", what, reason);
}

int cs_name_valid(const char *name)
{
	size_t n = 0;

	if (!name)
		return 0;
	for (const char *p = name; *p; p++, n++) {
		char c = *p;

		if (n >= CS_NAME_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '/' || c == '-'))
			return 0;
	}
	return n > 0;
}

/* ---- key ring ---- */

struct cs_keyring *cs_keyring_new(void)
{
	return OPENSSL_zalloc(sizeof(struct cs_keyring));
}

void cs_keyring_free(struct cs_keyring *kr)
{
	OPENSSL_clear_free(kr, sizeof(*kr));
}

const struct cs_key *cs_keyring_find(const struct cs_keyring *kr, uint32_t id)
{
	for (size_t i = 0; i < kr->n; i++)
		if (kr->k[i].id == id)
			return &kr->k[i];
	return NULL;
}

int cs_keyring_add_random(struct cs_keyring *kr, struct amtprov_error *err)
{
	struct cs_key *k;
	uint32_t id = 0;

	if (kr->n >= CS_MAX_KEYS)
		return amtprov_error_set(err, AMTPROV_E_STATE, NULL,
					 "the key file already holds %u keys", CS_MAX_KEYS);
	/* Random ids make a key file from another store show up as "key not held" rather
	 * than as a generic authentication failure. 0 is reserved as "none". */
	while (id == 0 || cs_keyring_find(kr, id)) {
		unsigned char b[4];

		if (RAND_bytes(b, sizeof(b)) != 1)
			return crypto_fail(err, NULL, "RAND_bytes");
		id = get32(b);
	}
	k = &kr->k[kr->n];
	if (RAND_bytes(k->key, sizeof(k->key)) != 1) {
		OPENSSL_cleanse(k->key, sizeof(k->key));
		return crypto_fail(err, NULL, "RAND_bytes");
	}
	k->id = id;
	kr->n++;
	kr->current = id;
	return AMTPROV_OK;
}

int cs_keyring_decode(const unsigned char *buf, size_t len, struct cs_keyring *kr,
		      const char *path, struct amtprov_error *err)
{
	unsigned char md[SHA256_LEN];
	unsigned int mdlen = 0;
	size_t count, body;

	if (len < KEYS_HDR_LEN + SHA256_LEN || memcmp(buf, CS_KEYS_MAGIC, MAGIC_LEN) != 0)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
					 "%s is not an amtprov key file", path);
	if (get16(buf + 8) != CS_FORMAT_VERSION)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
					 "key file %s has format version %u; this plugin reads %u",
					 path, get16(buf + 8), CS_FORMAT_VERSION);
	count = get16(buf + 10);
	body = KEYS_HDR_LEN + count * KEY_ENTRY_LEN;
	if (count < 1 || count > CS_MAX_KEYS || len != body + SHA256_LEN)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
					 "key file %s is damaged (bad key count or size)", path);
	if (EVP_Digest(buf, body, md, &mdlen, EVP_sha256(), NULL) != 1)
		return crypto_fail(err, path, "SHA-256");
	if (CRYPTO_memcmp(md, buf + body, SHA256_LEN) != 0)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
					 "key file %s is damaged (checksum mismatch)", path);
	memset(kr, 0, sizeof(*kr));
	kr->current = get32(buf + 12);
	for (size_t i = 0; i < count; i++) {
		const unsigned char *e = buf + KEYS_HDR_LEN + i * KEY_ENTRY_LEN;
		uint32_t id = get32(e);

		if (id == 0 || cs_keyring_find(kr, id))
			return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
						 "key file %s has a zero or duplicate key id", path);
		kr->k[i].id = id;
		memcpy(kr->k[i].key, e + 4, CS_KEY_LEN);
		kr->n = i + 1;
	}
	if (!cs_keyring_find(kr, kr->current))
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
					 "key file %s names a current key it does not hold", path);
	return AMTPROV_OK;
}

int cs_keyring_encode(const struct cs_keyring *kr, unsigned char **out, size_t *len,
		      struct amtprov_error *err)
{
	size_t body = KEYS_HDR_LEN + kr->n * KEY_ENTRY_LEN;
	unsigned char *b = OPENSSL_zalloc(body + SHA256_LEN);
	unsigned int mdlen = 0;

	if (!b)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	memcpy(b, CS_KEYS_MAGIC, MAGIC_LEN);
	put16(b + 8, CS_FORMAT_VERSION);
	put16(b + 10, (uint16_t)kr->n);
	put32(b + 12, kr->current);
	for (size_t i = 0; i < kr->n; i++) {
		unsigned char *e = b + KEYS_HDR_LEN + i * KEY_ENTRY_LEN;

		put32(e, kr->k[i].id);
		memcpy(e + 4, kr->k[i].key, CS_KEY_LEN);
	}
	if (EVP_Digest(b, body, b + body, &mdlen, EVP_sha256(), NULL) != 1) {
		OPENSSL_clear_free(b, body + SHA256_LEN);
		return crypto_fail(err, NULL, "SHA-256");
	}
	*out = b;
	*len = body + SHA256_LEN;
	return AMTPROV_OK;
}

/* ---- store ---- */

static int rec_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cs_rec *)a)->name, ((const struct cs_rec *)b)->name);
}

static int store_grow(struct cs_store *st, size_t want, struct amtprov_error *err)
{
	struct cs_rec *r;
	size_t cap;

	if (want <= st->cap)
		return AMTPROV_OK;
	cap = st->cap ? st->cap * 2 : 16;
	if (cap < want)
		cap = want;
	r = realloc(st->recs, cap * sizeof(*r));
	if (!r)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	st->recs = r;
	st->cap = cap;
	return AMTPROV_OK;
}

/* Parses one record (the layout of docs/credstore-file.md) at *off; 0 or -1 when the
 * bytes run out (*why says which), -2 when a field is invalid. */
static int parse_rec(const unsigned char *buf, size_t len, size_t *off, struct cs_rec *r,
		     const char **why)
{
	size_t o = *off, nl;

	memset(r, 0, sizeof(*r));
	*why = "is truncated or damaged";
	if (len - o < 2)
		return -1;
	nl = get16(buf + o);
	o += 2;
	if (len - o < nl)
		return -1;
	if (nl < 1 || nl > CS_NAME_MAX) {
		*why = "has a record with a bad name length";
		return -2;
	}
	memcpy(r->name, buf + o, nl);
	r->name[nl] = '\0';
	o += nl;
	if (!cs_name_valid(r->name)) {
		*why = "has a record with an invalid name";
		return -2;
	}
	if (len - o < 4 + CS_NONCE_LEN + 4)
		return -1;
	r->key_id = get32(buf + o);
	memcpy(r->nonce, buf + o + 4, CS_NONCE_LEN);
	r->ct_len = get32(buf + o + 4 + CS_NONCE_LEN);
	o += 4 + CS_NONCE_LEN + 4;
	if (r->ct_len > CS_VALUE_MAX) {
		*why = "has a record that is too large";
		return -2;
	}
	if (len - o < (size_t)r->ct_len + CS_TAG_LEN)
		return -1;
	r->ct = buf + o;
	o += r->ct_len;
	memcpy(r->tag, buf + o, CS_TAG_LEN);
	o += CS_TAG_LEN;
	*off = o;
	return 0;
}

/* The check value of a journal entry: the first 8 bytes of SHA-256 over it. */
static int entry_sum(const unsigned char *p, size_t n, unsigned char out[CS_ENTRY_SUM_LEN])
{
	unsigned char md[SHA256_LEN];
	unsigned int mdlen = 0;

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	memcpy(out, md, CS_ENTRY_SUM_LEN);
	return 0;
}

/*
 * Replays the journal entries after the base records. An entry that runs past the end of
 * the file, or the last entry of the file when its check value is wrong, is the torn tail
 * of an append that a crash interrupted: it is not part of the store (st->valid_len stops
 * before it; the next writer truncates it). A bad entry with more bytes after it is damage.
 */
static int replay(struct cs_store *st, size_t off, const char *path, struct amtprov_error *err)
{
	const unsigned char *buf = st->buf;
	size_t len = st->len;

	while (off < len) {
		size_t start = off, o = off + 1;
		unsigned char sum[CS_ENTRY_SUM_LEN];
		unsigned char op = buf[off];
		struct cs_rec r;
		const char *why = "";
		int p;

		if (op == CS_ENTRY_PUT) {
			p = parse_rec(buf, len, &o, &r, &why);
		} else if (op == CS_ENTRY_REMOVE) {
			size_t nl = len - o >= 2 ? get16(buf + o) : 0;

			memset(&r, 0, sizeof(r));
			p = len - o < 2 || len - o - 2 < nl ? -1 : 0;
			if (p == 0 && (nl < 1 || nl > CS_NAME_MAX)) {
				p = -2;
			} else if (p == 0) {
				memcpy(r.name, buf + o + 2, nl);
				r.name[nl] = '\0';
				o += 2 + nl;
				if (!cs_name_valid(r.name))
					p = -2;
			}
		} else {
			p = -2;
		}
		if (p == 0 && len - o < CS_ENTRY_SUM_LEN)
			p = -1;
		if (p == 0 && (entry_sum(buf + start, o - start, sum) != 0 ||
			       CRYPTO_memcmp(sum, buf + o, CS_ENTRY_SUM_LEN) != 0))
			p = o + CS_ENTRY_SUM_LEN == len ? -1 : -3;
		if (p == -2) {
			/* A file system may extend the size before the data lands: a tail of
			 * zeros is torn too. */
			size_t z = start;

			while (z < len && buf[z] == 0)
				z++;
			if (z == len)
				p = -1;
		}
		if (p == -1) {
			st->valid_len = start; /* torn tail */
			return AMTPROV_OK;
		}
		if (p != 0)
			return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
						 "store %s is damaged: journal entry at byte %zu %s",
						 path, start,
						 p == -3 ? "fails its check value" : "is malformed");
		o += CS_ENTRY_SUM_LEN;
		if (op == CS_ENTRY_PUT) {
			int rc = cs_store_set(st, &r, err);

			if (rc != AMTPROV_OK)
				return rc;
		} else {
			struct cs_rec *old = cs_store_find(st, r.name);

			if (old)
				cs_store_remove(st, old);
		}
		st->entries++;
		off = o;
	}
	st->valid_len = len;
	return AMTPROV_OK;
}

int cs_store_decode(struct cs_store *st, unsigned char *buf, size_t len, const char *path,
		    struct amtprov_error *err)
{
	size_t off = STORE_HDR_LEN, count;
	unsigned version;
	int rc;

	memset(st, 0, sizeof(*st));
	st->buf = buf;
	st->len = len;
	if (len < STORE_HDR_LEN || memcmp(buf, CS_STORE_MAGIC, MAGIC_LEN) != 0)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
					 "%s is not an amtprov credential store", path);
	version = get16(buf + 8);
	if ((version != CS_FORMAT_VERSION && version != CS_JOURNAL_VERSION) ||
	    get16(buf + 10) != 0)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
					 "store %s has format version %u; this plugin reads %u "
					 "and %u",
					 path, version, CS_FORMAT_VERSION, CS_JOURNAL_VERSION);
	st->version = version;
	count = get32(buf + 12);
	if (count > CS_MAX_RECORDS)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
					 "store %s claims %zu records", path, count);
	rc = store_grow(st, count, err);
	if (rc != AMTPROV_OK)
		return rc;
	for (size_t i = 0; i < count; i++) {
		const char *why;

		if (parse_rec(buf, len, &off, &st->recs[i], &why) != 0)
			return amtprov_error_set(err, AMTPROV_E_CORRUPT, path, "store %s %s",
						 path, why);
		st->n = i + 1;
	}
	if (version == CS_FORMAT_VERSION && off != len)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
					 "store %s has %zu trailing bytes", path, len - off);
	/* Writers keep records sorted; sorting again makes the lookup independent of that
	 * and turns a duplicated name into a clear error. */
	if (st->n)
		qsort(st->recs, st->n, sizeof(*st->recs), rec_cmp);
	for (size_t i = 1; i < st->n; i++)
		if (strcmp(st->recs[i - 1].name, st->recs[i].name) == 0)
			return amtprov_error_set(err, AMTPROV_E_CORRUPT, path,
						 "store %s holds record '%s' twice", path,
						 st->recs[i].name);
	if (version == CS_FORMAT_VERSION) {
		st->valid_len = len;
		return AMTPROV_OK;
	}
	return replay(st, off, path, err);
}

/* Writes name length + name at @p b; returns the bytes written. */
static size_t write_name(unsigned char *b, const char *name)
{
	size_t nl = strlen(name);

	put16(b, (uint16_t)nl);
	memcpy(b + 2, name, nl);
	return 2 + nl;
}

/* Writes one record (docs/credstore-file.md layout) at @p b; returns the bytes written. */
static size_t write_rec(unsigned char *b, const struct cs_rec *r)
{
	size_t off = write_name(b, r->name);

	put32(b + off, r->key_id);
	memcpy(b + off + 4, r->nonce, CS_NONCE_LEN);
	put32(b + off + 4 + CS_NONCE_LEN, r->ct_len);
	off += 4 + CS_NONCE_LEN + 4;
	if (r->ct_len)
		memcpy(b + off, r->ct, r->ct_len);
	off += r->ct_len;
	memcpy(b + off, r->tag, CS_TAG_LEN);
	return off + CS_TAG_LEN;
}

int cs_entry_encode(const struct cs_rec *put, const char *remove, unsigned char **out,
		    size_t *len, struct amtprov_error *err)
{
	const char *name = put ? put->name : remove;
	size_t nl = strlen(name);
	size_t body = 1 + 2 + nl + (put ? 4 + CS_NONCE_LEN + 4 + put->ct_len + CS_TAG_LEN : 0);
	unsigned char *b = malloc(body + CS_ENTRY_SUM_LEN);

	if (!b)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	b[0] = put ? CS_ENTRY_PUT : CS_ENTRY_REMOVE;
	if (put)
		write_rec(b + 1, put);
	else
		write_name(b + 1, remove);
	if (entry_sum(b, body, b + body) != 0) {
		free(b);
		return crypto_fail(err, NULL, "SHA-256");
	}
	*out = b;
	*len = body + CS_ENTRY_SUM_LEN;
	return AMTPROV_OK;
}


int cs_store_encode(const struct cs_store *st, unsigned char **out, size_t *len,
		    struct amtprov_error *err)
{
	size_t total = STORE_HDR_LEN, off = STORE_HDR_LEN;
	unsigned char *b;

	for (size_t i = 0; i < st->n; i++)
		total += 2 + strlen(st->recs[i].name) + 4 + CS_NONCE_LEN + 4 + st->recs[i].ct_len +
			 CS_TAG_LEN;
	b = malloc(total);
	if (!b)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	memcpy(b, CS_STORE_MAGIC, MAGIC_LEN);
	put16(b + 8, CS_JOURNAL_VERSION); /* base records, no entries yet */
	put16(b + 10, 0);
	put32(b + 12, (uint32_t)st->n);
	for (size_t i = 0; i < st->n; i++)
		off += write_rec(b + off, &st->recs[i]);
	*out = b;
	*len = total;
	return AMTPROV_OK;
}

struct cs_rec *cs_store_find(const struct cs_store *st, const char *name)
{
	struct cs_rec key;

	if (!st->n || strlen(name) > CS_NAME_MAX)
		return NULL;
	snprintf(key.name, sizeof(key.name), "%s", name);
	return bsearch(&key, st->recs, st->n, sizeof(*st->recs), rec_cmp);
}

int cs_store_set(struct cs_store *st, struct cs_rec *rec, struct amtprov_error *err)
{
	struct cs_rec *old = cs_store_find(st, rec->name);
	size_t at = 0;
	int rc;

	if (old) {
		free(old->ct_own);
		*old = *rec;
		rec->ct_own = NULL;
		return AMTPROV_OK;
	}
	if (st->n >= CS_MAX_RECORDS)
		return amtprov_error_set(err, AMTPROV_E_STATE, rec->name,
					 "the store already holds %u records", CS_MAX_RECORDS);
	rc = store_grow(st, st->n + 1, err);
	if (rc != AMTPROV_OK)
		return rc;
	/* The first record named after it, by binary search: a linear scan from the start
	 * made every put O(records), and devices put their records in no global order
	 * (hundreds in flight at once). */
	{
		size_t hi = st->n;

		while (at < hi) {
			size_t mid = at + (hi - at) / 2;

			if (strcmp(st->recs[mid].name, rec->name) < 0)
				at = mid + 1;
			else
				hi = mid;
		}
	}
	if (at < st->n)
		memmove(&st->recs[at + 1], &st->recs[at], (st->n - at) * sizeof(*st->recs));
	st->recs[at] = *rec;
	st->n++;
	rec->ct_own = NULL;
	return AMTPROV_OK;
}

void cs_store_remove(struct cs_store *st, struct cs_rec *rec)
{
	size_t at = (size_t)(rec - st->recs);

	free(rec->ct_own);
	if (at + 1 < st->n)
		memmove(&st->recs[at], &st->recs[at + 1], (st->n - at - 1) * sizeof(*st->recs));
	st->n--;
}

void cs_store_release(struct cs_store *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->recs[i].ct_own);
	free(st->recs);
	free(st->buf);
	memset(st, 0, sizeof(*st));
}

/* ---- sealing ---- */

/* AAD = magic | version | key id | name length | name: binds a ciphertext to its name, so
 * a record moved under another name (swapped or renamed) fails authentication, and to its
 * key id and format version, so neither can be relabelled. */
static size_t make_aad(unsigned char *aad, uint32_t key_id, const char *name)
{
	size_t nl = strlen(name);

	memcpy(aad, CS_STORE_MAGIC, MAGIC_LEN);
	put16(aad + 8, CS_FORMAT_VERSION);
	put32(aad + 10, key_id);
	put16(aad + 14, (uint16_t)nl);
	memcpy(aad + 16, name, nl);
	return 16 + nl;
}

int cs_seal(const struct cs_key *key, const char *name, const unsigned char *pt, size_t len,
	    struct cs_rec *rec, struct amtprov_error *err)
{
	unsigned char aad[16 + CS_NAME_MAX];
	size_t aad_len;
	EVP_CIPHER_CTX *c = NULL;
	int outl = 0, fin = 0, rc = AMTPROV_OK;

	memset(rec, 0, sizeof(*rec));
	if (len > CS_VALUE_MAX || !cs_name_valid(name))
		return amtprov_error_set(err, AMTPROV_E_INVALID, name, "bad record name or size");
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	rec->key_id = key->id;
	rec->ct_len = (uint32_t)len;
	rec->ct_own = malloc(len ? len : 1);
	if (!rec->ct_own)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, name, "out of memory");
	rec->ct = rec->ct_own;
	aad_len = make_aad(aad, key->id, name);
	if (RAND_bytes(rec->nonce, CS_NONCE_LEN) != 1) {
		rc = crypto_fail(err, name, "RAND_bytes");
		goto out;
	}
	c = EVP_CIPHER_CTX_new();
	if (!c || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CS_NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(c, NULL, NULL, key->key, rec->nonce) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &outl, aad, (int)aad_len) != 1 ||
	    (len && EVP_EncryptUpdate(c, rec->ct_own, &outl, pt, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(c, rec->ct_own + (len ? outl : 0), &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CS_TAG_LEN, rec->tag) != 1) {
		rc = crypto_fail(err, name, "AES-256-GCM encryption");
		goto out;
	}
out:
	/* Frees and cleanses the key schedule. */
	EVP_CIPHER_CTX_free(c);
	if (rc != AMTPROV_OK) {
		free(rec->ct_own);
		rec->ct_own = NULL;
		rec->ct = NULL;
	}
	return rc;
}

int cs_open(const struct cs_key *key, const struct cs_rec *rec, unsigned char *pt,
	    const char *path, struct amtprov_error *err)
{
	unsigned char aad[16 + CS_NAME_MAX];
	unsigned char tag[CS_TAG_LEN];
	size_t aad_len = make_aad(aad, rec->key_id, rec->name);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int outl = 0, fin = 0, rc = AMTPROV_OK;

	memcpy(tag, rec->tag, CS_TAG_LEN);
	if (!c || EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CS_NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(c, NULL, NULL, key->key, rec->nonce) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &outl, aad, (int)aad_len) != 1 ||
	    (rec->ct_len && EVP_DecryptUpdate(c, pt, &outl, rec->ct, (int)rec->ct_len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CS_TAG_LEN, tag) != 1) {
		rc = crypto_fail(err, rec->name, "AES-256-GCM decryption");
		goto out;
	}
	if (EVP_DecryptFinal_ex(c, pt + (rec->ct_len ? outl : 0), &fin) != 1) {
		ERR_clear_error();
		rc = amtprov_error_set(err, AMTPROV_E_VERIFY, rec->name,
				       "record '%s' in %s failed authentication: wrong key, or "
				       "the record was tampered with, swapped or renamed",
				       rec->name, path);
	}
out:
	EVP_CIPHER_CTX_free(c);
	if (rc != AMTPROV_OK && rec->ct_len)
		OPENSSL_cleanse(pt, rec->ct_len); /* unauthenticated plaintext never escapes */
	return rc;
}
