/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cpg_int.h - internals of the credstore-pg plugin: keys and the AES-256-GCM record
 * sealing (cpg_crypt.c), kept apart from the SQL so the unit tests check them without a
 * server. Nothing here is part of the plugin ABI; the format is in docs/credstore-pg.md.
 */
#ifndef CREDSTORE_PG_CPG_INT_H
#define CREDSTORE_PG_CPG_INT_H

#include <stddef.h>
#include <stdint.h>

#include <amtprov/error.h>

#define CPG_KEY_LEN 32   /* AES-256 */
#define CPG_NONCE_LEN 12 /* 96-bit GCM nonce, random per write */
#define CPG_TAG_LEN 16   /* full 128-bit tag */
#define CPG_NAME_MAX 128
#define CPG_VALUE_MAX (1u << 20)
#define CPG_FORMAT 1 /* record format; bound into every AAD */
/* A key file is a few dozen bytes; anything much bigger is not a key. */
#define CPG_KEY_FILE_MAX 256

struct cpg_key {
	uint32_t id; /* public fingerprint of the key (never 0): identifies it, reveals nothing */
	unsigned char key[CPG_KEY_LEN];
};

/* One sealed record as the table holds it: never plaintext. */
struct cpg_sealed {
	uint32_t key_id;
	int format;
	unsigned char nonce[CPG_NONCE_LEN];
	unsigned char tag[CPG_TAG_LEN];
	unsigned char *ct; /* malloc'd by cpg_seal; the caller's buffer for cpg_open */
	size_t ct_len;
};

/* 1 if @p name is 1..128 characters of [A-Za-z0-9._/-] (the names credstore-file takes). */
int cpg_name_valid(const char *name);

/*
 * Turns key text into a key: 64 hex digits, or 44 base64 characters, each optionally
 * followed by white space (a newline), or exactly 32 raw bytes (@p raw_ok: from a file).
 * @p what names the source in messages ("key file /etc/k", "environment variable X");
 * messages give lengths, never content. Sets key->id (cpg_key_id).
 */
int cpg_key_parse(const unsigned char *buf, size_t len, int raw_ok, const char *what,
		  struct cpg_key *key, struct amtprov_error *err);

/* The key's id: the first 4 bytes of HMAC-SHA256(key, "amtprov credstore-pg key id"),
 * 0 mapped to 1. Two different keys get different ids with overwhelming probability. */
uint32_t cpg_key_id(const unsigned char key[CPG_KEY_LEN]);

/* Seals @p len bytes under @p key into @p out (fresh random nonce; out->ct malloc'd, free it).
 * The AAD binds the format, the key id and the record name. */
int cpg_seal(const struct cpg_key *key, const char *name, const unsigned char *pt, size_t len,
	     struct cpg_sealed *out, struct amtprov_error *err);

/* Opens @p in (read under record name @p name) into @p pt (in->ct_len bytes).
 * AMTPROV_E_VERIFY naming the record when authentication fails (wrong key, tampered,
 * swapped or renamed); @p pt is wiped then. */
int cpg_open(const struct cpg_key *key, const char *name, const struct cpg_sealed *in,
	     unsigned char *pt, struct amtprov_error *err);

#endif
