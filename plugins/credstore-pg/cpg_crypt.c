/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cpg_crypt.c - credstore-pg's keys and record sealing: AES-256-GCM (OpenSSL EVP), a random
 * 96-bit nonce per write, the full 128-bit tag, and an AAD that binds the record format, the
 * key id and the record's name, so a sealed value moved to another name (or re-labelled
 * with another key id) no longer authenticates. Messages name records, key ids and
 * lengths, never a value or a key byte.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "cpg_int.h"
#include "plugin_util.h"

#define AAD_LABEL "amtprov-credstore-pg"
#define KEY_ID_LABEL "amtprov credstore-pg key id"

int cpg_name_valid(const char *name)
{
	size_t n = 0;

	if (!name)
		return 0;
	for (const char *p = name; *p; p++, n++) {
		char c = *p;

		if (n >= CPG_NAME_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '/' || c == '-'))
			return 0;
	}
	return n > 0;
}

uint32_t cpg_key_id(const unsigned char key[CPG_KEY_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint32_t id = 0;

	if (HMAC(EVP_sha256(), key, CPG_KEY_LEN, (const unsigned char *)KEY_ID_LABEL,
		 sizeof(KEY_ID_LABEL) - 1, md, &mdlen) && mdlen >= 4)
		id = ((uint32_t)md[0] << 24) | ((uint32_t)md[1] << 16) | ((uint32_t)md[2] << 8) |
		     md[3];
	OPENSSL_cleanse(md, sizeof(md));
	return id ? id : 1;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cpg_key_parse(const unsigned char *buf, size_t len, int raw_ok, const char *what,
		  struct cpg_key *key, struct amtprov_error *err)
{
	size_t n = len;
	int ok = 0;

	memset(key, 0, sizeof(*key));
	if (raw_ok && len == CPG_KEY_LEN) {
		memcpy(key->key, buf, CPG_KEY_LEN);
		ok = 1;
	}
	while (!ok && n > 0 && isspace(buf[n - 1]))
		n--;
	if (!ok && n == 2 * CPG_KEY_LEN) {
		ok = 1;
		for (size_t i = 0; ok && i < CPG_KEY_LEN; i++) {
			int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);

			if (hi < 0 || lo < 0)
				ok = 0;
			else
				key->key[i] = (unsigned char)(hi << 4 | lo);
		}
	} else if (!ok && n == 44 && buf[43] == '=' && buf[42] != '=') {
		unsigned char out[33];

		/* EVP_DecodeBlock counts the padding as a zero byte: 44 characters -> 33. */
		ok = EVP_DecodeBlock(out, buf, 44) == 33;
		if (ok)
			memcpy(key->key, out, CPG_KEY_LEN);
		OPENSSL_cleanse(out, sizeof(out));
	}
	if (!ok) {
		OPENSSL_cleanse(key, sizeof(*key));
		return amtprov_error_set(err, AMTPROV_E_CONFIG, NULL,
					 "%s does not hold a 256-bit key (%zu bytes): give 64 hex "
					 "digits or 44 base64 characters%s (make one with 'openssl "
					 "rand -hex 32')",
					 what, len, raw_ok ? ", or exactly 32 raw bytes" : "");
	}
	key->id = cpg_key_id(key->key);
	return AMTPROV_OK;
}

/* "amtprov-credstore-pg" NUL, format (1 byte), key id (4 bytes, big endian), name. */
static size_t make_aad(unsigned char *aad, int format, uint32_t key_id, const char *name)
{
	size_t n = sizeof(AAD_LABEL), nl = strlen(name);

	memcpy(aad, AAD_LABEL, sizeof(AAD_LABEL));
	aad[n++] = (unsigned char)format;
	aad[n++] = (unsigned char)(key_id >> 24);
	aad[n++] = (unsigned char)(key_id >> 16);
	aad[n++] = (unsigned char)(key_id >> 8);
	aad[n++] = (unsigned char)key_id;
	memcpy(aad + n, name, nl);
	return n + nl;
}

#define AAD_MAX (sizeof(AAD_LABEL) + 5 + CPG_NAME_MAX)

int cpg_seal(const struct cpg_key *key, const char *name, const unsigned char *pt, size_t len,
	     struct cpg_sealed *out, struct amtprov_error *err)
{
	unsigned char aad[AAD_MAX];
	size_t aad_len;
	EVP_CIPHER_CTX *c = NULL;
	int outl = 0, fin = 0, rc = AMTPROV_OK;

	memset(out, 0, sizeof(*out));
	if (len > CPG_VALUE_MAX || !cpg_name_valid(name))
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "bad record name or size");
	out->key_id = key->id;
	out->format = CPG_FORMAT;
	out->ct_len = len;
	out->ct = malloc(len ? len : 1);
	if (!out->ct)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, name, "out of memory");
	aad_len = make_aad(aad, CPG_FORMAT, key->id, name);
	if (RAND_bytes(out->nonce, CPG_NONCE_LEN) != 1) {
		rc = pu_crypto_error(err, name, "RAND_bytes failed");
		goto out;
	}
	c = EVP_CIPHER_CTX_new();
	if (!c || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CPG_NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(c, NULL, NULL, key->key, out->nonce) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &outl, aad, (int)aad_len) != 1 ||
	    (len && EVP_EncryptUpdate(c, out->ct, &outl, pt, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(c, out->ct + (len ? outl : 0), &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CPG_TAG_LEN, out->tag) != 1)
		rc = pu_crypto_error(err, name, "AES-256-GCM encryption failed");
out:
	EVP_CIPHER_CTX_free(c); /* also cleanses the key schedule */
	if (rc != AMTPROV_OK) {
		free(out->ct);
		out->ct = NULL;
	}
	return rc;
}

int cpg_open(const struct cpg_key *key, const char *name, const struct cpg_sealed *in,
	     unsigned char *pt, struct amtprov_error *err)
{
	unsigned char aad[AAD_MAX];
	unsigned char tag[CPG_TAG_LEN];
	size_t aad_len;
	EVP_CIPHER_CTX *c;
	int outl = 0, fin = 0, rc = AMTPROV_OK;

	if (!cpg_name_valid(name) || in->format != CPG_FORMAT || in->ct_len > CPG_VALUE_MAX)
		return amtprov_error_set(err, AMTPROV_E_CORRUPT, name,
					 "record '%s' has record format %d (this plugin reads %d) or "
					 "a bad size",
					 cpg_name_valid(name) ? name : "?", in->format, CPG_FORMAT);
	aad_len = make_aad(aad, in->format, in->key_id, name);
	memcpy(tag, in->tag, CPG_TAG_LEN);
	c = EVP_CIPHER_CTX_new();
	if (!c || EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CPG_NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(c, NULL, NULL, key->key, in->nonce) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &outl, aad, (int)aad_len) != 1 ||
	    (in->ct_len && EVP_DecryptUpdate(c, pt, &outl, in->ct, (int)in->ct_len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CPG_TAG_LEN, tag) != 1) {
		rc = pu_crypto_error(err, name, "AES-256-GCM decryption failed");
		goto out;
	}
	if (EVP_DecryptFinal_ex(c, pt + (in->ct_len ? outl : 0), &fin) != 1) {
		ERR_clear_error();
		rc = amtprov_error_set(err, AMTPROV_E_VERIFY, name,
				       "record '%s' failed authentication: wrong key, or the record "
				       "was tampered with, swapped or renamed in the database",
				       name);
	}
out:
	EVP_CIPHER_CTX_free(c);
	if (rc != AMTPROV_OK && in->ct_len)
		OPENSSL_cleanse(pt, in->ct_len); /* unauthenticated plaintext never escapes */
	return rc;
}
