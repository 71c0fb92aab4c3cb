/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_credstore_file.c - the credential store's file formats (plugins/credstore-file,
 * cs_format.c), both read from disk where anyone who can write the directory can change them.
 * First byte even: the input is a store file: decode, open every record with the keyring's
 * key (authentication must fail closed, not read out of bounds), then encode and decode
 * again, which must give the same records. Odd: a key file, decoded, re-encoded and compared.
 * With FUZZ_CS_SEEDS=DIR the harness writes real files (made by the plugin's own encoders) into
 * DIR as seeds (tests/fuzz/make_corpus.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cs_int.h"
#include "fuzz_seed.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void store_case(const unsigned char *data, size_t size)
{
	struct cs_key key = {.id = 1};
	struct cs_store st, again;
	struct amtprov_error err;
	unsigned char *buf = malloc(size ? size : 1), *out = NULL;
	size_t out_len = 0;

	if (!buf)
		return;
	memcpy(buf, data, size);
	amtprov_error_clear(&err);
	if (cs_store_decode(&st, buf, size, "fuzz.store", &err) != AMTPROV_OK) {
		if (err.code == AMTPROV_OK)
			abort(); /* refused without a reason */
		cs_store_release(&st);
		return;
	}
	for (size_t i = 0; i < st.n; i++) {
		unsigned char *pt = malloc(st.recs[i].ct_len + 1);

		if (!pt)
			break;
		key.id = st.recs[i].key_id;
		amtprov_error_clear(&err);
		/* A forged tag is out of the fuzzer's reach: this must always refuse. */
		if (cs_open(&key, &st.recs[i], pt, "fuzz.store", &err) == AMTPROV_OK &&
		    st.recs[i].ct_len > 0)
			abort();
		free(pt);
		if (!cs_store_find(&st, st.recs[i].name))
			abort(); /* a record the lookup cannot find */
	}
	amtprov_error_clear(&err);
	if (cs_store_encode(&st, &out, &out_len, &err) != AMTPROV_OK)
		abort(); /* what was read must be writable */
	amtprov_error_clear(&err);
	if (cs_store_decode(&again, out, out_len, "fuzz.store", &err) != AMTPROV_OK ||
	    again.n != st.n)
		abort();
	for (size_t i = 0; i < st.n; i++)
		if (strcmp(again.recs[i].name, st.recs[i].name) ||
		    again.recs[i].ct_len != st.recs[i].ct_len ||
		    memcmp(again.recs[i].ct, st.recs[i].ct, st.recs[i].ct_len))
			abort();
	cs_store_release(&again);
	cs_store_release(&st);
}

static void keyring_case(const unsigned char *data, size_t size)
{
	struct cs_keyring *kr = cs_keyring_new(), *again = cs_keyring_new();
	struct amtprov_error err;
	unsigned char *out = NULL;
	size_t out_len = 0;

	if (!kr || !again)
		goto out;
	amtprov_error_clear(&err);
	if (cs_keyring_decode(data, size, kr, "fuzz.keys", &err) != AMTPROV_OK) {
		if (err.code == AMTPROV_OK)
			abort();
		goto out;
	}
	if (!cs_keyring_find(kr, kr->current))
		abort();
	amtprov_error_clear(&err);
	if (cs_keyring_encode(kr, &out, &out_len, &err) != AMTPROV_OK)
		abort();
	amtprov_error_clear(&err);
	if (cs_keyring_decode(out, out_len, again, "fuzz.keys", &err) != AMTPROV_OK ||
	    again->n != kr->n || again->current != kr->current)
		abort();
out:
	if (out)
		OPENSSL_clear_free(out, out_len);
	cs_keyring_free(kr);
	cs_keyring_free(again);
}

/* A key file with two keys and stores of zero and three records, as the plugin writes them. */
static void write_seeds(const char *dir)
{
	static const char *const names[] = {"amt/admin", "ca-local/issuing-key", "site/x.y_z-1"};
	struct cs_keyring *kr = cs_keyring_new();
	struct cs_store st;
	struct amtprov_error err;
	unsigned char *out = NULL;
	size_t len = 0;

	amtprov_error_clear(&err);
	memset(&st, 0, sizeof(st));
	if (!kr || cs_keyring_add_random(kr, &err) || cs_keyring_encode(kr, &out, &len, &err))
		abort();
	fuzz_write_seed(dir, "keys-one", 1, out, len);
	free(out);
	if (cs_keyring_add_random(kr, &err) || cs_keyring_encode(kr, &out, &len, &err))
		abort();
	fuzz_write_seed(dir, "keys-two", 1, out, len);
	free(out);
	if (cs_store_encode(&st, &out, &len, &err))
		abort();
	fuzz_write_seed(dir, "store-empty", 0, out, len);
	free(out);
	for (size_t i = 0; i < 3; i++) {
		struct cs_rec rec;
		const char *v = i == 1 ? "" : "P@ssw0rd";

		memset(&rec, 0, sizeof(rec));
		if (cs_seal(&kr->k[i % kr->n], names[i], (const unsigned char *)v, strlen(v), &rec,
			    &err) ||
		    cs_store_set(&st, &rec, &err))
			abort();
	}
	if (cs_store_encode(&st, &out, &len, &err))
		abort();
	fuzz_write_seed(dir, "store-three", 0, out, len);
	free(out);
	cs_store_release(&st);
	cs_keyring_free(kr);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("FUZZ_CS_SEEDS");

	(void)argc;
	(void)argv;
	if (seeds)
		write_seeds(seeds);
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		keyring_case(data + 1, size - 1);
	else
		store_case(data + 1, size - 1);
	return 0;
}
