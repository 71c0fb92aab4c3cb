/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of credstore-pg (R-ACC-02: secrets encrypted at rest and never logged; issue 16: one
 * store every host of a site reads).
 *
 * Suite "crypt" checks the record layer (cpg_crypt.c) without a server: a round trip, a
 * tampered ciphertext, tag or nonce, a wrong key, a record moved to another name or key id
 * are all refused; keys parse from hex, base64 and raw bytes and nothing else.
 *
 * Suite "pg" loads the built plugin through the real plugin host against the private
 * PostgreSQL server of tests/pg/with_pg.sh (AMTPROV_TEST_PG; a new database per test): two
 * instances in two plugin hosts (two amtprovd hosts) read each other's records, the raw rows
 * hold no plaintext, a wrong key, a tampered or swapped row is refused naming the record,
 * rotation, and configuration errors naming the manifest field. Every log line is checked
 * for the secrets. CPG_SUITES picks the suites ("crypt", "pg", or both when unset).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "cpg_int.h"
#include "log.h"
#include "plugin_host.h"

#define PLUGIN_DIR AMTPROV_PLUGIN_BUILD_DIR
#define PLUGIN "credstore-pg"
#define MARK "Zq7xSECRETx"
#define V1 MARK "mebx-P@ssw0rd-1"
#define V2 MARK "admin-Pa55-2!"
#define KEY1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

/* ---- suite crypt ---- */

static void mkkey(struct cpg_key *k, const char *hex)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(cpg_key_parse((const unsigned char *)hex, strlen(hex), 0, "test", k,
					    &err),
			      AMTPROV_OK);
}

/* Seals V1 as "mebx/dev1" under KEY1. */
static void sealed_v1(struct cpg_key *k, struct cpg_sealed *s)
{
	struct amtprov_error err;

	mkkey(k, KEY1);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(cpg_seal(k, "mebx/dev1", (const unsigned char *)V1, strlen(V1), s,
				       &err),
			      AMTPROV_OK);
}

static int open_as(const struct cpg_key *k, const char *name, const struct cpg_sealed *s,
		   struct amtprov_error *err)
{
	unsigned char pt[256];
	int rc;

	amtprov_error_clear(err);
	memset(pt, 0xA5, sizeof(pt));
	rc = cpg_open(k, name, s, pt, err);
	if (rc == AMTPROV_OK) {
		CU_ASSERT(s->ct_len == strlen(V1) && memcmp(pt, V1, s->ct_len) == 0);
	} else {
		/* Unauthenticated plaintext never escapes: wiped after a failed tag check. */
		CU_ASSERT(memcmp(pt, V1, strlen(V1)) != 0);
		for (size_t i = 0; rc == AMTPROV_E_VERIFY && i < s->ct_len; i++)
			CU_ASSERT_EQUAL(pt[i], 0);
		CU_ASSERT_PTR_NULL(strstr(err->msg, MARK));
	}
	return rc;
}

static void test_r_acc_02_seal_round_trip(void)
{
	struct cpg_key k;
	struct cpg_sealed a, b;
	struct amtprov_error err;

	sealed_v1(&k, &a);
	CU_ASSERT_EQUAL(a.key_id, k.id);
	CU_ASSERT_EQUAL(a.format, CPG_FORMAT);
	CU_ASSERT_EQUAL(a.ct_len, strlen(V1));
	CU_ASSERT(memcmp(a.ct, V1, a.ct_len) != 0);
	CU_ASSERT_EQUAL(open_as(&k, "mebx/dev1", &a, &err), AMTPROV_OK);
	/* A fresh nonce per write: the same value sealed twice differs. */
	CU_ASSERT_EQUAL_FATAL(cpg_seal(&k, "mebx/dev1", (const unsigned char *)V1, strlen(V1), &b,
				       &err),
			      AMTPROV_OK);
	CU_ASSERT(memcmp(a.nonce, b.nonce, CPG_NONCE_LEN) != 0);
	CU_ASSERT(memcmp(a.ct, b.ct, a.ct_len) != 0);
	free(a.ct);
	free(b.ct);
}

static void test_r_acc_02_tamper_refused(void)
{
	struct cpg_key k;
	struct cpg_sealed s;
	struct amtprov_error err;

	sealed_v1(&k, &s);
	s.ct[3] ^= 0x01;
	CU_ASSERT_EQUAL(open_as(&k, "mebx/dev1", &s, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "record 'mebx/dev1'"));
	s.ct[3] ^= 0x01;
	s.tag[0] ^= 0x80;
	CU_ASSERT_EQUAL(open_as(&k, "mebx/dev1", &s, &err), AMTPROV_E_VERIFY);
	s.tag[0] ^= 0x80;
	s.nonce[11] ^= 0x01;
	CU_ASSERT_EQUAL(open_as(&k, "mebx/dev1", &s, &err), AMTPROV_E_VERIFY);
	s.nonce[11] ^= 0x01;
	s.ct_len--; /* truncated */
	CU_ASSERT_EQUAL(open_as(&k, "mebx/dev1", &s, &err), AMTPROV_E_VERIFY);
	s.ct_len++;
	CU_ASSERT_EQUAL(open_as(&k, "mebx/dev1", &s, &err), AMTPROV_OK);
	free(s.ct);
}

static void test_r_acc_02_wrong_key_refused(void)
{
	struct cpg_key k, other;
	struct cpg_sealed s;
	struct amtprov_error err;

	sealed_v1(&k, &s);
	mkkey(&other, KEY2);
	CU_ASSERT_NOT_EQUAL(other.id, k.id);
	CU_ASSERT_EQUAL(open_as(&other, "mebx/dev1", &s, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "mebx/dev1"));
	free(s.ct);
}

static void test_r_acc_02_aad_swap_refused(void)
{
	struct cpg_key k;
	struct cpg_sealed s;
	struct amtprov_error err;

	sealed_v1(&k, &s);
	/* The row of one record copied under another name (e.g. the MEBx password of a device
	 * one can read moved to the admin password of another): the AAD binds the name. */
	CU_ASSERT_EQUAL(open_as(&k, "admin/dev2", &s, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "admin/dev2"));
	CU_ASSERT_EQUAL(open_as(&k, "mebx/dev", &s, &err), AMTPROV_E_VERIFY);
	/* Re-labelled with another key id, or another record format. */
	s.key_id ^= 1;
	CU_ASSERT_EQUAL(open_as(&k, "mebx/dev1", &s, &err), AMTPROV_E_VERIFY);
	s.key_id ^= 1;
	s.format = 2;
	CU_ASSERT_EQUAL(open_as(&k, "mebx/dev1", &s, &err), AMTPROV_E_CORRUPT);
	s.format = CPG_FORMAT;
	CU_ASSERT_EQUAL(open_as(&k, "mebx/dev1", &s, &err), AMTPROV_OK);
	free(s.ct);
}

static void test_r_acc_02_key_parse(void)
{
	struct cpg_key hex, b64, raw, k;
	struct amtprov_error err;
	const char *b64_text = "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=\n";
	unsigned char bytes[CPG_KEY_LEN];
	const char *bad[] = {
		"", "00112233", KEY1 "00",                    /* short, long */
		"0g112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", /* not hex */
		"ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8",  /* base64 without padding */
		"ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v==", /* 31 bytes */
	};

	mkkey(&hex, KEY1 "\n");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(cpg_key_parse((const unsigned char *)b64_text, strlen(b64_text), 0, "t",
				      &b64, &err),
			AMTPROV_OK);
	CU_ASSERT(memcmp(hex.key, b64.key, CPG_KEY_LEN) == 0);
	CU_ASSERT_EQUAL(hex.id, b64.id);
	memcpy(bytes, hex.key, sizeof(bytes));
	CU_ASSERT_EQUAL(cpg_key_parse(bytes, sizeof(bytes), 1, "t", &raw, &err), AMTPROV_OK);
	CU_ASSERT(memcmp(hex.key, raw.key, CPG_KEY_LEN) == 0);
	/* Raw bytes only from a file, never from an environment variable. */
	CU_ASSERT_EQUAL(cpg_key_parse(bytes, sizeof(bytes), 0, "t", &raw, &err), AMTPROV_E_CONFIG);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL(cpg_key_parse((const unsigned char *)bad[i], strlen(bad[i]), 1,
					      "key file /k", &k, &err),
				AMTPROV_E_CONFIG);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "key file /k"));
		CU_ASSERT(!bad[i][0] || !strstr(err.msg, bad[i]));
	}
	CU_ASSERT_EQUAL(cpg_key_id(hex.key), hex.id);
	CU_ASSERT_NOT_EQUAL(hex.id, 0);
}

/* ---- suite pg: fixture ---- */

struct fx {
	struct alog *log;
	char **lines;
	size_t n_lines;
	char root[256];
	char url[512];
	char key1[300], key2[300];
	PGconn *db; /* the test's own connection to its database */
	struct plugin_host *ph[3];
	struct plugin_instance *pi[3];
};

static void cap_cb(void *ctx, int level, const char *line)
{
	struct fx *f = ctx;
	char **grown = realloc(f->lines, (f->n_lines + 1) * sizeof(*grown));

	(void)level;
	if (!grown)
		return;
	f->lines = grown;
	if ((f->lines[f->n_lines] = strdup(line)))
		f->n_lines++;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fputs(text, fp);
	CU_ASSERT_EQUAL_FATAL(fclose(fp), 0);
	CU_ASSERT_EQUAL_FATAL(chmod(path, mode), 0);
}

static int n_db;

static void fx_init(struct fx *f)
{
	const char *base = getenv("AMTPROV_TEST_PG"), *tmp = getenv("TMPDIR");
	char sql[128];
	PGconn *admin;
	PGresult *r;

	memset(f, 0, sizeof(*f));
	if (!base || !*base)
		CU_FAIL_FATAL("AMTPROV_TEST_PG is not set: run under tests/pg/with_pg.sh");
	f->log = alog_new("credstore-pg-test", AMTPROV_LOG_PRIVATE, ALOG_CALLBACK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->log);
	alog_set_callback(f->log, cap_cb, f);
	snprintf(f->root, sizeof(f->root), "%s/cpg-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(f->root));
	snprintf(f->key1, sizeof(f->key1), "%s/key1", f->root);
	snprintf(f->key2, sizeof(f->key2), "%s/key2", f->root);
	write_file(f->key1, KEY1 "\n", 0600);
	write_file(f->key2, KEY2 "\n", 0600);
	admin = PQconnectdb(base);
	CU_ASSERT_EQUAL_FATAL(PQstatus(admin), CONNECTION_OK);
	snprintf(sql, sizeof(sql), "CREATE DATABASE cpg_%d_%d", (int)getpid(), ++n_db);
	r = PQexec(admin, sql);
	CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(admin);
	/* In a conninfo the last keyword wins. */
	snprintf(f->url, sizeof(f->url), "%s dbname=cpg_%d_%d", base, (int)getpid(), n_db);
	f->db = PQconnectdb(f->url);
	CU_ASSERT_EQUAL_FATAL(PQstatus(f->db), CONNECTION_OK);
}

/* Creates instance @p i in a plugin host of its own: one amtprovd host each. */
static int create(struct fx *f, int i, const char *extra_json, struct amtprov_error *err)
{
	struct host_env env = {.log = f->log, .state_root = f->root, .config_base = "/plugins"};
	json_t *cfg, *extra;
	int rc;

	plugin_host_free(f->ph[i]);
	f->pi[i] = NULL;
	f->ph[i] = plugin_host_new(&env);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->ph[i]);
	amtprov_error_clear(err);
	CU_ASSERT_EQUAL_FATAL(plugin_host_add_dir(f->ph[i], PLUGIN_DIR, err), AMTPROV_OK);
	cfg = json_pack("{s:s}", "url", f->url);
	extra = json_loads(extra_json, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(extra);
	json_object_update(cfg, extra);
	json_decref(extra);
	rc = plugin_host_create(f->ph[i], "vault", PLUGIN, cfg, AMTPROV_KIND_CREDSTORE, &f->pi[i],
				err);
	json_decref(cfg);
	return rc;
}

static void create_ok(struct fx *f, int i, const char *key_file)
{
	struct amtprov_error err;
	char extra[512];
	int rc;

	snprintf(extra, sizeof(extra), "{\"key_file\": \"%s\"}", key_file);
	rc = create(f, i, extra, &err);
	if (rc != AMTPROV_OK)
		fprintf(stderr, "\n  create: %s: %s: %s\n", amtprov_status_name(rc), err.where,
			err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, AMTPROV_OK);
	amtprov_error_clear(&err);
	rc = plugin_host_start_one(f->pi[i], &err);
	if (rc != AMTPROV_OK)
		fprintf(stderr, "\n  start: %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, AMTPROV_OK);
}

static void fx_done(struct fx *f)
{
	for (int i = 0; i < 3; i++)
		plugin_host_free(f->ph[i]);
	for (size_t i = 0; i < f->n_lines; i++) {
		if (strstr(f->lines[i], MARK)) {
			fprintf(stderr, "\n  secret in log line: %s\n", f->lines[i]);
			CU_FAIL("a secret appeared in a log line");
		}
		CU_ASSERT_PTR_NULL(strstr(f->lines[i], KEY1));
		free(f->lines[i]);
	}
	free(f->lines);
	alog_free(f->log);
	PQfinish(f->db);
	unlink(f->key1);
	unlink(f->key2);
	rmdir(f->root);
}

static int put(struct plugin_instance *pi, const char *name, const char *v,
	       struct amtprov_error *err)
{
	struct amtprov_secret s = {.len = strlen(v), .data = (char *)v};

	amtprov_error_clear(err);
	return pi_credstore_put(pi, name, &s, err);
}

/* get; on success compares with @p want. The message never holds a secret. */
static int get(struct plugin_instance *pi, const char *name, const char *want,
	       struct amtprov_error *err)
{
	struct amtprov_secret *s = NULL;
	int rc;

	amtprov_error_clear(err);
	rc = pi_credstore_get(pi, name, &s, err);
	CU_ASSERT_PTR_NULL(strstr(err->msg, MARK));
	if (rc == AMTPROV_OK) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT(s->len == strlen(want) && memcmp(s->data, want, s->len) == 0);
		plugin_instance_host(pi)->secret_free(plugin_instance_host(pi), s);
	} else {
		CU_ASSERT_PTR_NULL(s);
	}
	return rc;
}

static void sql_ok(struct fx *f, const char *sql)
{
	PGresult *r = PQexec(f->db, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fprintf(stderr, "\n  %s: %s\n", sql, PQresultErrorMessage(r));
	CU_ASSERT(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
	PQclear(r);
}

static void hex_of(const char *s, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (; *s; s++) {
		*out++ = digits[(unsigned char)*s >> 4];
		*out++ = digits[(unsigned char)*s & 15];
	}
	*out = '\0';
}

/* ---- suite pg: tests ---- */

static void test_issue16_two_hosts_share_records(void)
{
	struct fx f;
	struct amtprov_error err;
	char hex[128], *dump;
	PGresult *r;

	fx_init(&f);
	create_ok(&f, 0, f.key1);
	create_ok(&f, 1, f.key1);
	CU_ASSERT_EQUAL(put(f.pi[0], "mebx/dev1", V1, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get(f.pi[1], "mebx/dev1", V1, &err), AMTPROV_OK);
	/* The second host replaces it (upsert); the first reads the new value. */
	CU_ASSERT_EQUAL(put(f.pi[1], "mebx/dev1", V2, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi[1], "admin/dev1", V1, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get(f.pi[0], "mebx/dev1", V2, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get(f.pi[0], "admin/dev1", V1, &err), AMTPROV_OK);
	r = PQexec(f.db, "SELECT count(*) FROM amtprov_credstore.records");
	CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "2");
	PQclear(r);
	/* The raw rows, as text, hold neither a value nor its hex (bytea's text form). */
	r = PQexec(f.db, "SELECT string_agg(t::text, '|') FROM amtprov_credstore.records t");
	CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
	dump = PQgetvalue(r, 0, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(dump, "mebx/dev1"));
	CU_ASSERT_PTR_NULL(strstr(dump, MARK));
	hex_of(MARK, hex);
	CU_ASSERT_PTR_NULL(strstr(dump, hex));
	CU_ASSERT_PTR_NULL(strstr(dump, "00112233445566778899aabbccddeeff"));
	PQclear(r);
	CU_ASSERT_EQUAL(pi_credstore_remove(f.pi[0], "admin/dev1", &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get(f.pi[1], "admin/dev1", NULL, &err), AMTPROV_E_NOT_FOUND);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_credstore_remove(f.pi[1], "admin/dev1", &err), AMTPROV_E_NOT_FOUND);
	fx_done(&f);
}

/* A child process: one more amtprovd host writing record "shared/rec" over and over (and
 * its own record), reading it back each time. Exit status 0 when every call succeeded. */
static int writer_child(struct fx *f, int id)
{
	struct amtprov_error err;
	char value[64], own[32], cfg[512];
	int i;

	if (create(f, 2, "{\"key_file\": \"\"}", &err) != AMTPROV_E_CONFIG)
		return 10; /* an empty key_file must not load */
	snprintf(cfg, sizeof(cfg), "{\"key_file\": \"%s\"}", f->key1);
	if (create(f, 2, cfg, &err) != AMTPROV_OK)
		return 11;
	snprintf(own, sizeof(own), "own/child%d", id);
	for (i = 0; i < 40; i++) {
		struct amtprov_secret *got = NULL;

		snprintf(value, sizeof(value), MARK "child%d-%02d", id, i);
		if (put(f->pi[2], "shared/rec", value, &err) != AMTPROV_OK ||
		    put(f->pi[2], own, value, &err) != AMTPROV_OK)
			return 12;
		amtprov_error_clear(&err);
		if (pi_credstore_get(f->pi[2], "shared/rec", &got, &err) != AMTPROV_OK)
			return 13;
		if (strncmp(got->data, MARK "child", strlen(MARK "child")) != 0)
			return 14;
		plugin_instance_host(f->pi[2])->secret_free(plugin_instance_host(f->pi[2]), got);
	}
	return 0;
}

static void test_issue16_concurrent_hosts_upsert(void)
{
	struct fx f;
	struct amtprov_error err;
	struct amtprov_secret *got = NULL;
	pid_t pid[2];

	fx_init(&f);
	for (int c = 0; c < 2; c++) {
		pid[c] = fork();
		CU_ASSERT_FATAL(pid[c] >= 0);
		if (pid[c] == 0)
			_exit(writer_child(&f, c)); /* no cleanup: the parent's connection is shared */
	}
	for (int c = 0; c < 2; c++) {
		int status = -1;

		CU_ASSERT_EQUAL(waitpid(pid[c], &status, 0), pid[c]);
		CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			fprintf(stderr, "\n  writer %d: status %d\n", c, status);
	}
	/* One whole record, the last commit's: each writer's last value. */
	create_ok(&f, 0, f.key1);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(pi_credstore_get(f.pi[0], "shared/rec", &got, &err), AMTPROV_OK);
	CU_ASSERT(!strcmp(got->data, MARK "child0-39") || !strcmp(got->data, MARK "child1-39"));
	plugin_instance_host(f.pi[0])->secret_free(plugin_instance_host(f.pi[0]), got);
	CU_ASSERT_EQUAL(get(f.pi[0], "own/child0", MARK "child0-39", &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get(f.pi[0], "own/child1", MARK "child1-39", &err), AMTPROV_OK);
	fx_done(&f);
}

static void test_r_acc_02_wrong_key_names_record(void)
{
	struct fx f;
	struct amtprov_error err;

	fx_init(&f);
	create_ok(&f, 0, f.key1);
	create_ok(&f, 1, f.key2);
	CU_ASSERT_EQUAL(put(f.pi[0], "mebx/dev1", V1, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get(f.pi[1], "mebx/dev1", NULL, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "record 'mebx/dev1'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "key_file"));
	CU_ASSERT_PTR_NULL(strstr(err.msg, KEY2));
	fx_done(&f);
}

static void test_r_acc_02_tampered_rows_refused(void)
{
	struct fx f;
	struct amtprov_error err;

	fx_init(&f);
	create_ok(&f, 0, f.key1);
	CU_ASSERT_EQUAL(put(f.pi[0], "mebx/dev1", V1, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi[0], "mebx/dev2", V2, &err), AMTPROV_OK);
	/* A flipped ciphertext bit. */
	sql_ok(&f, "UPDATE amtprov_credstore.records SET ciphertext = "
		   "set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) WHERE name = 'mebx/dev1'");
	CU_ASSERT_EQUAL(get(f.pi[0], "mebx/dev1", NULL, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "mebx/dev1"));
	/* dev1 given dev2's sealed value (someone who can write the table swaps records). */
	sql_ok(&f, "UPDATE amtprov_credstore.records d SET nonce = s.nonce, tag = s.tag, "
		   "ciphertext = s.ciphertext FROM amtprov_credstore.records s "
		   "WHERE d.name = 'mebx/dev1' AND s.name = 'mebx/dev2'");
	CU_ASSERT_EQUAL(get(f.pi[0], "mebx/dev1", NULL, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_EQUAL(get(f.pi[0], "mebx/dev2", V2, &err), AMTPROV_OK);
	fx_done(&f);
}

static void test_r_acc_02_rotation(void)
{
	struct fx f;
	struct amtprov_error err;
	char extra[1024];

	fx_init(&f);
	create_ok(&f, 0, f.key1);
	CU_ASSERT_EQUAL(put(f.pi[0], "mebx/dev1", V1, &err), AMTPROV_OK);
	snprintf(extra, sizeof(extra), "{\"key_file\": \"%s\", \"old_key_file\": \"%s\"}", f.key2,
		 f.key1);
	CU_ASSERT_EQUAL_FATAL(create(&f, 1, extra, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get(f.pi[1], "mebx/dev1", V1, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(pi_credstore_rotate(f.pi[1], &err), AMTPROV_OK);
	/* Now sealed with key 2 only. */
	create_ok(&f, 2, f.key2);
	CU_ASSERT_EQUAL(get(f.pi[2], "mebx/dev1", V1, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get(f.pi[0], "mebx/dev1", NULL, &err), AMTPROV_E_VERIFY);
	fx_done(&f);
}

static void test_r_acc_02_config_errors(void)
{
	struct fx f;
	struct amtprov_error err;
	char extra[1024], badkey[300];

	fx_init(&f);
	CU_ASSERT_EQUAL(create(&f, 0, "{}", &err), AMTPROV_E_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.where, "/plugins/vault/config/key_file"));
	snprintf(badkey, sizeof(badkey), "%s/short", f.root);
	write_file(badkey, "00112233\n", 0600);
	snprintf(extra, sizeof(extra), "{\"key_file\": \"%s\"}", badkey);
	CU_ASSERT_EQUAL(create(&f, 0, extra, &err), AMTPROV_E_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.where, "key_file"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "does not hold a 256-bit key"));
	write_file(badkey, KEY1, 0644);
	CU_ASSERT_EQUAL(create(&f, 0, extra, &err), AMTPROV_E_DENIED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "chmod 600"));
	unlink(badkey);
	CU_ASSERT_EQUAL(create(&f, 0, extra, &err), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_EQUAL(create(&f, 0, "{\"key_env\": \"CPG_TEST_NO_SUCH_VAR\"}", &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.where, "key_env"));
	setenv("CPG_TEST_KEY", KEY1, 1);
	CU_ASSERT_EQUAL(create(&f, 0, "{\"key_env\": \"CPG_TEST_KEY\"}", &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi[0], "a", V1, &err), AMTPROV_OK);
	/* The same key from a file reads what the key from the environment wrote. */
	create_ok(&f, 1, f.key1);
	CU_ASSERT_EQUAL(get(f.pi[1], "a", V1, &err), AMTPROV_OK);
	unsetenv("CPG_TEST_KEY");
	snprintf(extra, sizeof(extra),
		 "{\"key_file\": \"%s\", \"url\": \"postgresql://u:" MARK "@h/db\"}", f.key1);
	CU_ASSERT_EQUAL(create(&f, 0, extra, &err), AMTPROV_E_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "password"));
	CU_ASSERT_PTR_NULL(strstr(err.msg, MARK));
	snprintf(extra, sizeof(extra), "{\"key_file\": \"%s\", \"schema\": \"Bad;\"}", f.key1);
	CU_ASSERT_EQUAL(create(&f, 0, extra, &err), AMTPROV_E_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.where, "schema"));
	snprintf(badkey, sizeof(badkey), "%s/pw", f.root);
	write_file(badkey, MARK "\n", 0640);
	snprintf(extra, sizeof(extra), "{\"key_file\": \"%s\", \"password_file\": \"%s\"}",
		 f.key1, badkey);
	CU_ASSERT_EQUAL(create(&f, 0, extra, &err), AMTPROV_E_DENIED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.where, "password_file"));
	CU_ASSERT_PTR_NULL(strstr(err.msg, MARK));
	unlink(badkey);
	fx_done(&f);
}

#define CRYPT_TESTS(X)                          \
	X(test_r_acc_02_seal_round_trip)        \
	X(test_r_acc_02_tamper_refused)         \
	X(test_r_acc_02_wrong_key_refused)      \
	X(test_r_acc_02_aad_swap_refused)       \
	X(test_r_acc_02_key_parse)

#define PG_TESTS(X)                                  \
	X(test_issue16_two_hosts_share_records)      \
	X(test_issue16_concurrent_hosts_upsert)      \
	X(test_r_acc_02_wrong_key_names_record)      \
	X(test_r_acc_02_tampered_rows_refused)       \
	X(test_r_acc_02_rotation)                    \
	X(test_r_acc_02_config_errors)

int main(void)
{
	const char *which = getenv("CPG_SUITES");
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
#define ADD(t) CU_add_test(s, #t, t);
	if (!which || strstr(which, "crypt")) {
		if (!(s = CU_add_suite("credstore_pg_crypt", NULL, NULL)))
			return 2;
		CRYPT_TESTS(ADD)
	}
	if (!which || strstr(which, "pg")) {
		if (!(s = CU_add_suite("credstore_pg_server", NULL, NULL)))
			return 2;
		PG_TESTS(ADD)
	}
#undef ADD
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
