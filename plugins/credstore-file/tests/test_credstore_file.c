/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the credstore-file plugin (R-ACC-02: passwords encrypted at rest, never logged;
 * R-PROV-13: a crash never loses a secret). The plugin is loaded from the build directory
 * through the real plugin host, exactly as amtprov loads it, with a logger that captures
 * every line; each test ends by checking that no captured line holds a secret.
 *
 * The tamper tests edit the files with a small parser of the documented format
 * (docs/credstore-file.md), so they also pin that format down.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "plugin_host.h"

#define PLUGIN_DIR AMTPROV_PLUGIN_BUILD_DIR
#define PLUGIN "credstore-file"

/* Every secret a test stores contains MARK, so one scan of the log finds any of them. */
#define MARK "Zq7xSECRETx"
#define V1 MARK "mebx-P@ssw0rd-1"
#define V2 MARK "admin-Pa55-2!"
#define V3 MARK "pkcs12-passphrase-3"

#define KEYS_HDR 16
#define KEY_ENTRY 36

/* ---- fixture ---- */

struct fx {
	struct alog *log;
	char **lines;
	size_t n_lines;
	char *root;
	struct plugin_host *ph;
	struct plugin_instance *pi;
	char dir[400], store[512], key[512];
};

static void cap_cb(void *ctx, int level, const char *line)
{
	struct fx *f = ctx;
	char **grown = realloc(f->lines, (f->n_lines + 1) * sizeof(*grown));

	(void)level;
	if (!grown)
		return;
	f->lines = grown;
	f->lines[f->n_lines] = strdup(line);
	if (f->lines[f->n_lines])
		f->n_lines++;
}

static size_t log_count(struct fx *f, const char *needle)
{
	size_t k = 0;

	for (size_t i = 0; i < f->n_lines; i++)
		if (strstr(f->lines[i], needle))
			k++;
	return k;
}

static void host_open(struct fx *f)
{
	struct host_env env = {.log = f->log, .state_root = f->root, .config_base = "/plugins"};
	struct amtprov_error err;

	f->ph = plugin_host_new(&env);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->ph);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(plugin_host_add_dir(f->ph, PLUGIN_DIR, &err), AMTPROV_OK);
}

static void fx_init(struct fx *f)
{
	char tmpl[256];
	const char *tmp = getenv("TMPDIR");

	memset(f, 0, sizeof(*f));
	/* PRIVATE is the most verbose level there is (a superset of DEBUG): capture it all. */
	f->log = alog_new("credstore-test", AMTPROV_LOG_PRIVATE, ALOG_CALLBACK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->log);
	alog_set_callback(f->log, cap_cb, f);
	snprintf(tmpl, sizeof(tmpl), "%s/credstore-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpl));
	f->root = strdup(tmpl);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->root);
	/* What the host gives instance "vault" as its state directory. */
	snprintf(f->dir, sizeof(f->dir), "%s/plugins/vault", f->root);
	snprintf(f->store, sizeof(f->store), "%s/credentials.store", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/credentials.key", f->dir);
	host_open(f);
}

static int create(struct fx *f, const char *config_json, struct amtprov_error *err)
{
	json_t *cfg = NULL;
	int rc;

	amtprov_error_clear(err);
	f->pi = NULL;
	if (config_json) {
		cfg = json_loads(config_json, 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	}
	rc = plugin_host_create(f->ph, "vault", PLUGIN, cfg, AMTPROV_KIND_CREDSTORE, &f->pi,
				err);
	json_decref(cfg);
	return rc;
}

static void create_ok(struct fx *f, const char *config_json)
{
	struct amtprov_error err;
	int rc = create(f, config_json, &err);

	if (rc != AMTPROV_OK)
		fprintf(stderr, "\n  create: %s: %s: %s\n", amtprov_status_name(rc), err.where,
			err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->pi);
}

/* Destroys the instance and the host (unloading the plugin), then loads it all again. */
static void reopen(struct fx *f, const char *config_json)
{
	plugin_host_free(f->ph);
	f->ph = NULL;
	f->pi = NULL;
	host_open(f);
	create_ok(f, config_json);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Frees everything and checks R-ACC-02's "never logged" over every line the test made. */
static void fx_done(struct fx *f)
{
	plugin_host_free(f->ph);
	f->ph = NULL;
	for (size_t i = 0; i < f->n_lines; i++) {
		if (strstr(f->lines[i], MARK)) {
			fprintf(stderr, "\n  secret in log line: %s\n", f->lines[i]);
			CU_FAIL("a secret appeared in a log line");
		}
		free(f->lines[i]);
	}
	free(f->lines);
	alog_free(f->log);
	nftw(f->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f->root);
}

/* ---- helpers ---- */

static struct amtprov_secret *mksecret(const void *data, size_t len)
{
	struct amtprov_secret *s = calloc(1, sizeof(*s));

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	s->data = calloc(1, len + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s->data);
	memcpy(s->data, data, len);
	s->len = len;
	return s;
}

static void freesecret(struct amtprov_secret *s)
{
	if (s) {
		OPENSSL_cleanse(s->data, s->len);
		free(s->data);
		free(s);
	}
}

static void err_clean(const struct amtprov_error *err)
{
	CU_ASSERT_PTR_NULL(strstr(err->msg, MARK));
	CU_ASSERT_PTR_NULL(strstr(err->where, MARK));
}

static int put_buf(struct plugin_instance *pi, const char *name, const void *v, size_t len,
		   struct amtprov_error *err)
{
	struct amtprov_secret *s = mksecret(v, len);
	int rc;

	amtprov_error_clear(err);
	rc = pi_credstore_put(pi, name, s, err);
	freesecret(s);
	err_clean(err);
	return rc;
}

static int put(struct plugin_instance *pi, const char *name, const char *v)
{
	struct amtprov_error err;

	return put_buf(pi, name, v, strlen(v), &err);
}

/* get into @p err; returns the code and, on success, compares with @p want. */
static int get_cmp(struct plugin_instance *pi, const char *name, const void *want,
		   size_t want_len, struct amtprov_error *err)
{
	struct amtprov_secret *s = NULL;
	int rc;

	amtprov_error_clear(err);
	rc = pi_credstore_get(pi, name, &s, err);
	err_clean(err);
	if (rc == AMTPROV_OK) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		if (want) {
			CU_ASSERT_EQUAL(s->len, want_len);
			CU_ASSERT(s->len == want_len && memcmp(s->data, want, want_len) == 0);
			CU_ASSERT_EQUAL(s->data[s->len], '\0');
		}
		plugin_instance_host(pi)->secret_free(plugin_instance_host(pi), s);
	} else {
		CU_ASSERT_PTR_NULL(s);
	}
	return rc;
}

static void expect(struct plugin_instance *pi, const char *name, const char *want)
{
	struct amtprov_error err;
	int rc = get_cmp(pi, name, want, strlen(want), &err);

	if (rc != AMTPROV_OK)
		fprintf(stderr, "\n  get %s: %s: %s\n", name, amtprov_status_name(rc), err.msg);
	CU_ASSERT_EQUAL(rc, AMTPROV_OK);
}

static int rotate(struct plugin_instance *pi, struct amtprov_error *err)
{
	const struct amtprov_credstore_ops *ops = plugin_instance_desc(pi)->ops;

	amtprov_error_clear(err);
	return ops->rotate_key(plugin_instance_handle(pi), err);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *b = NULL;
	long n;

	if (!fp)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0) {
		b = malloc((size_t)n + 1);
		if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) {
			free(b);
			b = NULL;
		}
		*len = (size_t)n;
	}
	fclose(fp);
	return b;
}

/* Rewrites @p path in place (same inode, same mode). */
/* Replaces @p path's content as another process would: a new file renamed over it, so
 * the plugin's cached copy is invalidated whatever the timestamp granularity (an in-place
 * rewrite of the same size within one timestamp tick is outside the contract, see
 * docs/credstore-file.md). */
static int spit(const char *path, const unsigned char *b, size_t len)
{
	char tmp[4200];
	struct stat sb;
	int fd;
	ssize_t w;

	snprintf(tmp, sizeof(tmp), "%s.spit", path);
	if (stat(path, &sb) != 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, sb.st_mode & 07777);
	if (fd < 0)
		return -1;
	w = write(fd, b, len);
	fchmod(fd, sb.st_mode & 07777);
	close(fd);
	if (w != (ssize_t)len || rename(tmp, path) != 0)
		return -1;
	return 0;
}

/* Creates @p path with @p mode (which umask may not widen or narrow). */
static int spit_new(const char *path, const unsigned char *b, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ssize_t w;

	if (fd < 0)
		return -1;
	w = write(fd, b, len);
	fchmod(fd, mode);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	size_t len = 0;
	unsigned char *b = slurp(from, &len);
	int rc;

	if (!b)
		return -1;
	unlink(to);
	rc = spit_new(to, b, len, mode);
	free(b);
	return rc;
}

static uint32_t rd32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Where one record lies in a store file (docs/credstore-file.md, "Store file"). */
struct trec {
	char name[129];
	size_t start;  /* name length field */
	size_t sealed; /* key id: key id | nonce | ct length | ct | tag until end */
	size_t ct;
	size_t ct_len;
	size_t end;
};

/* Parses one record at @p off into @p r; returns its end. */
static size_t parse_rec_at(const unsigned char *b, size_t off, struct trec *r)
{
	size_t nl = ((size_t)b[off] << 8) | b[off + 1];

	r->start = off;
	memcpy(r->name, b + off + 2, nl);
	r->name[nl] = '\0';
	r->sealed = off + 2 + nl;
	r->ct_len = rd32(b + r->sealed + 16);
	r->ct = r->sealed + 20;
	r->end = r->ct + r->ct_len + 16;
	return r->end;
}

/* The base records, then (version 2) the journal: 'P' + record + 8-byte check value, or
 * 'R' + name length + name + check value. Put entries are returned after the base. */
static size_t parse_store(const unsigned char *b, size_t len, struct trec *out, size_t max)
{
	size_t off = 16, n = 0;
	uint32_t count;

	CU_ASSERT_FATAL(len >= 16 && memcmp(b, "AMTPCRED", 8) == 0);
	count = rd32(b + 12);
	for (uint32_t i = 0; i < count && n < max; i++, n++)
		off = parse_rec_at(b, off, &out[n]);
	while (b[9] == 2 && off < len && n < max) {
		if (b[off] == 'P') {
			off = parse_rec_at(b, off + 1, &out[n++]) + 8;
		} else {
			CU_ASSERT_EQUAL_FATAL(b[off], 'R');
			off += 1 + 2 + (((size_t)b[off + 1] << 8) | b[off + 2]) + 8;
		}
	}
	CU_ASSERT_EQUAL(off, len);
	return n;
}

/* Rewrites the store with every (distinct) put record as a base record, as a compaction
 * would: the record-level tamper tests below then act on base records. */
static void compact_file(const char *path)
{
	struct trec r[8];
	unsigned char *b, *c;
	size_t len = 0, n, off = 16;

	b = slurp(path, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	n = parse_store(b, len, r, 8);
	c = malloc(len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	memcpy(c, b, 16);
	c[8] = 0;
	c[9] = 2;
	c[12] = c[13] = c[14] = 0;
	c[15] = (unsigned char)n;
	for (size_t i = 0; i < n; i++) {
		memcpy(c + off, b + r[i].start, r[i].end - r[i].start);
		off += r[i].end - r[i].start;
	}
	CU_ASSERT_EQUAL_FATAL(spit(path, c, off), 0);
	free(c);
	free(b);
}

static const struct trec *find_rec(const struct trec *r, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(r[i].name, name) == 0)
			return &r[i];
	CU_FAIL_FATAL("record not in store file");
	return NULL;
}

/* A key file holding one key (docs/credstore-file.md, "Key file"). */
static void make_key_file(unsigned char out[KEYS_HDR + KEY_ENTRY + 32], uint32_t id,
			  const unsigned char key[32])
{
	unsigned int mdlen = 0;

	memcpy(out, "AMTPKEYS", 8);
	out[8] = 0, out[9] = 1;   /* version */
	out[10] = 0, out[11] = 1; /* count */
	for (int i = 0; i < 4; i++)
		out[12 + i] = out[16 + i] = (unsigned char)(id >> (24 - 8 * i));
	memcpy(out + 20, key, 32);
	CU_ASSERT_EQUAL(EVP_Digest(out, 52, out + 52, &mdlen, EVP_sha256(), NULL), 1);
}

static size_t count_temps(const char *dir)
{
	char cmd[700];
	size_t n = 0;
	FILE *p;
	int c;

	/* Portable enough for a test and avoids a second readdir loop. */
	snprintf(cmd, sizeof(cmd), "ls -1 '%s' | grep -c '\\.tmp\\.' || true", dir);
	p = popen(cmd, "r");
	if (!p)
		return 0;
	while ((c = fgetc(p)) != EOF)
		if (c >= '0' && c <= '9')
			n = n * 10 + (size_t)(c - '0');
	pclose(p);
	return n;
}

/* ---- tests ---- */

static void test_r_acc_02_round_trip(void)
{
	static const unsigned char bin[] = {'Z', 'q', '7', 0, 1, 2, 0xff, 0, 'x'};
	struct amtprov_error err;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_TRUE(plugin_instance_has_cap(f.pi, AMTPROV_CAP_CREDSTORE_ROTATE));
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1.example.com", V1), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "amt-admin/dev1.example.com", V2), AMTPROV_OK);
	expect(f.pi, "mebx/dev1.example.com", V1);
	expect(f.pi, "amt-admin/dev1.example.com", V2);
	/* binary, with NUL bytes, and empty values come back byte for byte */
	CU_ASSERT_EQUAL(put_buf(f.pi, "ca-local/issuing-key", bin, sizeof(bin), &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "ca-local/issuing-key", bin, sizeof(bin), &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(put_buf(f.pi, "empty", "", 0, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "empty", "", 0, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "no/such-record", NULL, 0, &err), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no/such-record"));
	fx_done(&f);
}

static void test_r_acc_02_encrypted_at_rest(void)
{
	unsigned char *b;
	size_t len = 0;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	b = slurp(f.store, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_NULL(memmem(b, len, MARK, strlen(MARK)));
	CU_ASSERT_PTR_NOT_NULL(memmem(b, len, "mebx/dev1", 9)); /* names are not secret */
	free(b);
	fx_done(&f);
}

static void test_r_acc_02_overwrite(void)
{
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V3), AMTPROV_OK);
	expect(f.pi, "mebx/dev1", V3);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V2), AMTPROV_OK);
	expect(f.pi, "mebx/dev1", V2);
	fx_done(&f);
}

static void test_r_acc_02_remove(void)
{
	struct amtprov_error err;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "a", V1), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "b", V2), AMTPROV_OK);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_credstore_remove(f.pi, "a", &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "a", NULL, 0, &err), AMTPROV_E_NOT_FOUND);
	expect(f.pi, "b", V2);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_credstore_remove(f.pi, "a", &err), AMTPROV_E_NOT_FOUND);
	fx_done(&f);
}

struct names {
	char got[8][64];
	size_t n;
};

static int collect(void *ctx, const char *name)
{
	struct names *nm = ctx;

	CU_ASSERT_PTR_NULL(strstr(name, MARK));
	if (nm->n < 8)
		snprintf(nm->got[nm->n++], sizeof(nm->got[0]), "%s", name);
	return 0;
}

static int stop_at_one(void *ctx, const char *name)
{
	(void)name;
	++*(int *)ctx;
	return 1;
}

static void test_r_acc_02_list_names_only(void)
{
	struct amtprov_error err;
	struct names nm = {.n = 0};
	struct fx f;
	int calls = 0;

	fx_init(&f);
	create_ok(&f, NULL);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_credstore_list(f.pi, collect, &nm, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(nm.n, 0);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/b", V1), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "amt/a", V2), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "pkcs12/c", V3), AMTPROV_OK);
	CU_ASSERT_EQUAL(pi_credstore_list(f.pi, collect, &nm, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(nm.n, 3);
	CU_ASSERT_STRING_EQUAL(nm.got[0], "amt/a");
	CU_ASSERT_STRING_EQUAL(nm.got[1], "mebx/b");
	CU_ASSERT_STRING_EQUAL(nm.got[2], "pkcs12/c");
	CU_ASSERT_EQUAL(pi_credstore_list(f.pi, stop_at_one, &calls, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(calls, 1);
	fx_done(&f);
}

struct order {
	char prev[64];
	int n, unordered;
};

static int check_order(void *ctx, const char *name)
{
	struct order *o = ctx;

	if (o->n++ && strcmp(o->prev, name) >= 0)
		o->unordered++;
	snprintf(o->prev, sizeof(o->prev), "%s", name);
	return 0;
}

/* Records put in no order (devices in flight together) are each found and listed in name
 * order: the index stays sorted whatever the order of the puts. */
static void test_r_acc_02_puts_in_any_order(void)
{
	struct amtprov_error err;
	struct order o = {.n = 0};
	char name[64], value[64];
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	for (int i = 0; i < 97; i++) {
		int k = (i * 37) % 97;

		snprintf(name, sizeof(name), "device/pc%03d.contoso.com/admin", k);
		snprintf(value, sizeof(value), "secret-%03d", k);
		CU_ASSERT_EQUAL(put(f.pi, name, value), AMTPROV_OK);
	}
	for (int k = 0; k < 97; k++) {
		snprintf(name, sizeof(name), "device/pc%03d.contoso.com/admin", k);
		snprintf(value, sizeof(value), "secret-%03d", k);
		expect(f.pi, name, value);
	}
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_credstore_list(f.pi, check_order, &o, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(o.n, 97);
	CU_ASSERT_EQUAL(o.unordered, 0);
	fx_done(&f);
}

static void test_r_acc_02_invalid_names(void)
{
	static const char *const bad[] = {"", "a b", "x\n", "semi;colon", "caf\xc3\xa9",
					  "quote'"};
	char longname[130];
	struct amtprov_error err;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(put(f.pi, bad[i], V1), AMTPROV_E_INVALID);
		CU_ASSERT_EQUAL(get_cmp(f.pi, bad[i], NULL, 0, &err), AMTPROV_E_INVALID);
		CU_ASSERT_PTR_NULL(strchr(err.msg, '\n')); /* no forged log lines */
	}
	memset(longname, 'n', 128);
	longname[128] = '\0';
	CU_ASSERT_EQUAL(put(f.pi, longname, V1), AMTPROV_OK);
	expect(f.pi, longname, V1);
	longname[128] = 'n';
	longname[129] = '\0';
	CU_ASSERT_EQUAL(put(f.pi, longname, V1), AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(put(f.pi, "A-Z_a.z/0-9", V1), AMTPROV_OK);
	fx_done(&f);
}

static void test_r_prov_13_persistence(void)
{
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "amt/dev1", V2), AMTPROV_OK);
	reopen(&f, NULL);
	expect(f.pi, "mebx/dev1", V1);
	expect(f.pi, "amt/dev1", V2);
	/* explicit paths, outside the state directory */
	{
		char cfg[1200];

		snprintf(cfg, sizeof(cfg), "{\"path\": \"%s/elsewhere.store\", "
			 "\"key_file\": \"%s/elsewhere.key\"}", f.root, f.root);
		reopen(&f, cfg);
		CU_ASSERT_EQUAL(put(f.pi, "x", V3), AMTPROV_OK);
		reopen(&f, cfg);
		expect(f.pi, "x", V3);
	}
	fx_done(&f);
}

static void test_r_acc_02_file_modes(void)
{
	struct stat sb;
	mode_t old = umask(0); /* the plugin must not depend on a strict umask */
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL_FATAL(lstat(f.key, &sb), 0);
	CU_ASSERT_TRUE(S_ISREG(sb.st_mode));
	CU_ASSERT_EQUAL(sb.st_mode & 07777, 0600);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(lstat(f.store, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 07777, 0600);
	{
		char lock[600];

		snprintf(lock, sizeof(lock), "%s.lock", f.store);
		CU_ASSERT_EQUAL_FATAL(lstat(lock, &sb), 0);
		CU_ASSERT_EQUAL(sb.st_mode & 07777, 0600);
	}
	umask(old);
	CU_ASSERT_EQUAL(log_count(&f, "created key file"), 1);
	fx_done(&f);
}

static void test_r_acc_02_key_file_mode_refused(void)
{
	static const mode_t modes[] = {0644, 0640, 0604, 0620, 0602, 0660};
	struct amtprov_error err;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		plugin_host_free(f.ph);
		host_open(&f);
		CU_ASSERT_EQUAL_FATAL(chmod(f.key, modes[i]), 0);
		CU_ASSERT_EQUAL(create(&f, NULL, &err), AMTPROV_E_DENIED);
		CU_ASSERT_PTR_NULL(f.pi);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, f.key));
		CU_ASSERT_PTR_NOT_NULL(strstr(err.where, "/key_file"));
		err_clean(&err);
	}
	/* also refused by an instance created before the mode changed */
	plugin_host_free(f.ph);
	host_open(&f);
	CU_ASSERT_EQUAL_FATAL(chmod(f.key, 0600), 0);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL_FATAL(chmod(f.key, 0644), 0);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "mebx/dev1", NULL, 0, &err), AMTPROV_E_DENIED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, f.key));
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V2), AMTPROV_E_DENIED);
	CU_ASSERT_EQUAL_FATAL(chmod(f.key, 0600), 0);
	expect(f.pi, "mebx/dev1", V1);
	fx_done(&f);
}

static void test_r_acc_02_key_file_symlink_refused(void)
{
	char real[600];
	struct amtprov_error err;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	plugin_host_free(f.ph);
	host_open(&f);
	snprintf(real, sizeof(real), "%s/real.key", f.root);
	CU_ASSERT_EQUAL_FATAL(rename(f.key, real), 0);
	CU_ASSERT_EQUAL_FATAL(symlink(real, f.key), 0);
	CU_ASSERT_EQUAL(create(&f, NULL, &err), AMTPROV_E_DENIED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, f.key));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "symbolic link"));
	err_clean(&err);
	/* pointing key_file at the real file works */
	{
		char cfg[800];

		snprintf(cfg, sizeof(cfg), "{\"key_file\": \"%s\"}", real);
		create_ok(&f, cfg);
		expect(f.pi, "mebx/dev1", V1);
	}
	fx_done(&f);
}

static void test_r_acc_02_missing_key_file(void)
{
	struct amtprov_error err;
	struct fx f;

	fx_init(&f);
	/* create_key false: a missing key file is an error, and none is made */
	CU_ASSERT_EQUAL(create(&f, "{\"create_key\": false}", &err), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, f.key));
	CU_ASSERT_EQUAL(access(f.key, F_OK), -1);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	/* the key is lost but records exist: never silently replace it with a new key */
	plugin_host_free(f.ph);
	host_open(&f);
	CU_ASSERT_EQUAL_FATAL(unlink(f.key), 0);
	CU_ASSERT_EQUAL(create(&f, NULL, &err), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "refusing to create a new key"));
	CU_ASSERT_EQUAL(access(f.key, F_OK), -1);
	fx_done(&f);
}

static void test_r_acc_02_wrong_key_refused(void)
{
	unsigned char *kb, forged[KEYS_HDR + KEY_ENTRY + 32], other[32];
	char other_cfg[800], other_key[600];
	struct amtprov_error err;
	size_t klen = 0;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);

	/* 1. the key file of another store (another key id) */
	snprintf(other_key, sizeof(other_key), "%s/other.key", f.root);
	snprintf(other_cfg, sizeof(other_cfg),
		 "{\"path\": \"%s/other.store\", \"key_file\": \"%s\"}", f.root, other_key);
	plugin_host_free(f.ph);
	host_open(&f);
	create_ok(&f, other_cfg); /* makes other.key */
	kb = slurp(f.key, &klen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(kb);
	CU_ASSERT_EQUAL_FATAL(klen, sizeof(forged));
	CU_ASSERT_EQUAL_FATAL(copy_file(other_key, f.key, 0600), 0);
	reopen(&f, NULL);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "mebx/dev1", NULL, 0, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "mebx/dev1"));
	CU_ASSERT_STRING_EQUAL(err.where, "mebx/dev1");

	/* 2. the right key id with other key bytes: GCM authentication itself must fail */
	memset(other, 0x5a, sizeof(other));
	make_key_file(forged, rd32(kb + KEYS_HDR), other);
	CU_ASSERT_EQUAL_FATAL(spit(f.key, forged, sizeof(forged)), 0);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "mebx/dev1", NULL, 0, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "failed authentication"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "mebx/dev1"));
	/* a new record written now would be sealed with the wrong key; reads stay refused */

	/* 3. a damaged key file is reported as such, not as a wrong key */
	forged[30] ^= 1;
	CU_ASSERT_EQUAL_FATAL(spit(f.key, forged, sizeof(forged)), 0);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "mebx/dev1", NULL, 0, &err), AMTPROV_E_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, f.key));

	/* the right key file again: readable */
	CU_ASSERT_EQUAL_FATAL(spit(f.key, kb, klen), 0);
	expect(f.pi, "mebx/dev1", V1);
	CU_ASSERT(log_count(&f, "mebx/dev1") >= 2); /* failures are logged, by name only */
	OPENSSL_cleanse(kb, klen);
	free(kb);
	fx_done(&f);
}

/* Flips one bit at @p off of the store, checks get(@p name) is refused, restores. */
static void flip_refused(struct fx *f, size_t off, const char *name, int want)
{
	struct amtprov_error err;
	unsigned char *b;
	size_t len = 0;

	b = slurp(f->store, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_FATAL(off < len);
	b[off] ^= 0x10;
	CU_ASSERT_EQUAL_FATAL(spit(f->store, b, len), 0);
	CU_ASSERT_EQUAL(get_cmp(f->pi, name, NULL, 0, &err), want);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, name));
	b[off] ^= 0x10;
	CU_ASSERT_EQUAL_FATAL(spit(f->store, b, len), 0);
	free(b);
}

static void test_r_acc_02_tampered_record_refused(void)
{
	struct trec r[4];
	const struct trec *t;
	unsigned char *b;
	size_t len = 0, n;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "amt/dev1", V2), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	compact_file(f.store);
	b = slurp(f.store, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	n = parse_store(b, len, r, 4);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	t = find_rec(r, n, "mebx/dev1");
	flip_refused(&f, t->ct, "mebx/dev1", AMTPROV_E_VERIFY);              /* ciphertext */
	flip_refused(&f, t->ct + t->ct_len - 1, "mebx/dev1", AMTPROV_E_VERIFY);
	flip_refused(&f, t->end - 1, "mebx/dev1", AMTPROV_E_VERIFY);         /* tag */
	flip_refused(&f, t->sealed + 4, "mebx/dev1", AMTPROV_E_VERIFY);      /* nonce */
	flip_refused(&f, t->sealed + 3, "mebx/dev1", AMTPROV_E_VERIFY);      /* key id */
	/* one bad record does not take the others with it */
	{
		unsigned char *c = malloc(len);

		CU_ASSERT_PTR_NOT_NULL_FATAL(c);
		memcpy(c, b, len);
		c[t->ct] ^= 1;
		CU_ASSERT_EQUAL_FATAL(spit(f.store, c, len), 0);
		expect(f.pi, "amt/dev1", V2);
		free(c);
	}
	/* a damaged structure is reported as corruption of the file */
	CU_ASSERT_EQUAL_FATAL(spit(f.store, b, len - 3), 0);
	{
		struct amtprov_error err;

		CU_ASSERT_EQUAL(get_cmp(f.pi, "amt/dev1", NULL, 0, &err), AMTPROV_E_CORRUPT);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, f.store));
	}
	CU_ASSERT_EQUAL_FATAL(spit(f.store, b, len), 0);
	expect(f.pi, "mebx/dev1", V1);
	free(b);
	fx_done(&f);
}

static void test_r_acc_02_swapped_records_refused(void)
{
	struct amtprov_error err;
	struct trec r[4];
	const struct trec *a, *c;
	unsigned char *b, *s;
	size_t len = 0, n, blob;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	/* equal-length values, so the sealed parts can be swapped in place */
	CU_ASSERT_EQUAL(put(f.pi, "amt-admin/dev1", MARK "aaaaaaaa"), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "amt-admin/dev2", MARK "bbbbbbbb"), AMTPROV_OK);
	compact_file(f.store);
	b = slurp(f.store, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	n = parse_store(b, len, r, 4);
	a = find_rec(r, n, "amt-admin/dev1");
	c = find_rec(r, n, "amt-admin/dev2");
	blob = a->end - a->sealed;
	CU_ASSERT_EQUAL_FATAL(blob, c->end - c->sealed);
	s = malloc(blob);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memcpy(s, b + a->sealed, blob);
	memmove(b + a->sealed, b + c->sealed, blob);
	memcpy(b + c->sealed, s, blob);
	CU_ASSERT_EQUAL_FATAL(spit(f.store, b, len), 0);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "amt-admin/dev1", NULL, 0, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_STRING_EQUAL(err.where, "amt-admin/dev1");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "amt-admin/dev1"));
	CU_ASSERT_EQUAL(get_cmp(f.pi, "amt-admin/dev2", NULL, 0, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "amt-admin/dev2"));
	free(s);
	free(b);
	fx_done(&f);
}

static void test_r_acc_02_renamed_record_refused(void)
{
	struct amtprov_error err;
	struct trec r[4];
	const struct trec *t;
	unsigned char *b;
	size_t len = 0, n;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	b = slurp(f.store, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	n = parse_store(b, len, r, 4);
	t = find_rec(r, n, "mebx/dev1");
	b[t->start + 2 + strlen("mebx/dev")] = '2'; /* "mebx/dev1" -> "mebx/dev2" */
	CU_ASSERT_EQUAL_FATAL(spit(f.store, b, len), 0);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "mebx/dev2", NULL, 0, &err), AMTPROV_E_VERIFY);
	CU_ASSERT_STRING_EQUAL(err.where, "mebx/dev2");
	CU_ASSERT_EQUAL(get_cmp(f.pi, "mebx/dev1", NULL, 0, &err), AMTPROV_E_NOT_FOUND);
	free(b);
	fx_done(&f);
}

static void test_r_acc_02_rotation(void)
{
	char old_key[600], old_store[600];
	unsigned char *kb;
	struct amtprov_error err;
	uint32_t old_id, new_id;
	size_t klen = 0;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "amt/dev1", V2), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "pkcs12/web", V3), AMTPROV_OK);
	snprintf(old_key, sizeof(old_key), "%s/old.key", f.root);
	snprintf(old_store, sizeof(old_store), "%s/old.store", f.root);
	CU_ASSERT_EQUAL_FATAL(copy_file(f.key, old_key, 0600), 0);
	CU_ASSERT_EQUAL_FATAL(copy_file(f.store, old_store, 0600), 0);
	kb = slurp(f.key, &klen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(kb);
	old_id = rd32(kb + 12);
	free(kb);

	CU_ASSERT_EQUAL(rotate(f.pi, &err), AMTPROV_OK);
	err_clean(&err);
	expect(f.pi, "mebx/dev1", V1);
	expect(f.pi, "amt/dev1", V2);
	expect(f.pi, "pkcs12/web", V3);
	/* the key file holds exactly one key again, a new one */
	kb = slurp(f.key, &klen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(kb);
	CU_ASSERT_EQUAL(klen, (size_t)(KEYS_HDR + KEY_ENTRY + 32));
	new_id = rd32(kb + 12);
	CU_ASSERT_NOT_EQUAL(new_id, old_id);
	free(kb);
	CU_ASSERT_EQUAL(log_count(&f, "rotated the store key"), 1);
	/* and survives a restart */
	reopen(&f, NULL);
	expect(f.pi, "pkcs12/web", V3);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev2", V1), AMTPROV_OK);

	/* What rotation is for: a leaked copy of the OLD key opens nothing in the current
	 * store, because every record was resealed... */
	{
		char cur_key[600];

		snprintf(cur_key, sizeof(cur_key), "%s/cur.key", f.root);
		CU_ASSERT_EQUAL_FATAL(copy_file(f.key, cur_key, 0600), 0);
		CU_ASSERT_EQUAL_FATAL(copy_file(old_key, f.key, 0600), 0);
		CU_ASSERT_EQUAL(get_cmp(f.pi, "mebx/dev1", NULL, 0, &err), AMTPROV_E_VERIFY);
		CU_ASSERT_EQUAL(get_cmp(f.pi, "mebx/dev2", NULL, 0, &err), AMTPROV_E_VERIFY);
		/* ...and the old key is gone from the key file: the current key file cannot open
		 * a store backup made before the rotation. */
		CU_ASSERT_EQUAL_FATAL(copy_file(cur_key, f.key, 0600), 0);
		CU_ASSERT_EQUAL_FATAL(copy_file(old_store, f.store, 0600), 0);
		CU_ASSERT_EQUAL(get_cmp(f.pi, "mebx/dev1", NULL, 0, &err), AMTPROV_E_VERIFY);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "does not hold"));
		/* the old pair stays a consistent backup */
		CU_ASSERT_EQUAL_FATAL(copy_file(old_key, f.key, 0600), 0);
		expect(f.pi, "mebx/dev1", V1);
	}
	/* rotating an empty store works too */
	{
		char cfg[1200];

		snprintf(cfg, sizeof(cfg), "{\"path\": \"%s/e.store\", \"key_file\": \"%s/e.key\"}",
			 f.root, f.root);
		reopen(&f, cfg);
		CU_ASSERT_EQUAL(rotate(f.pi, &err), AMTPROV_OK);
		CU_ASSERT_EQUAL(put(f.pi, "x", V1), AMTPROV_OK);
		expect(f.pi, "x", V1);
	}
	fx_done(&f);
}

static void test_r_acc_02_stale_temp_files(void)
{
	char tmp[600];
	static const unsigned char junk[] = "half a store";
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	/* what a writer killed between create and rename leaves behind */
	snprintf(tmp, sizeof(tmp), "%s.tmp.99999.deadbeef", f.store);
	CU_ASSERT_EQUAL_FATAL(spit_new(tmp, junk, sizeof(junk), 0600), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp.99999.deadbeef", f.key);
	CU_ASSERT_EQUAL_FATAL(spit_new(tmp, junk, sizeof(junk), 0600), 0);
	reopen(&f, NULL); /* create() sweeps them */
	CU_ASSERT_EQUAL(count_temps(f.dir), 0);
	expect(f.pi, "mebx/dev1", V1);
	fx_done(&f);
}

/* ---- crash and concurrency tests (fork + SIGKILL) ---- */

#define BIG_A (512 * 1024)
#define BIG_B (384 * 1024)

static unsigned char *big_value(size_t len, char fill)
{
	unsigned char *v = malloc(len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	for (size_t i = 0; i < len; i++)
		v[i] = (unsigned char)(fill + (char)(i % 7));
	memcpy(v, MARK, strlen(MARK));
	return v;
}

/* Child: signals the parent after its first write, then writes forever. */
_Noreturn static void writer_child(struct plugin_instance *pi, int ready_fd,
				   const unsigned char *a, const unsigned char *b)
{
	struct amtprov_error err;

	for (unsigned long i = 0;; i++) {
		if (i & 1)
			put_buf(pi, "mebx/dev1", b, BIG_B, &err);
		else
			put_buf(pi, "mebx/dev1", a, BIG_A, &err);
		if (i == 0) {
			if (write(ready_fd, "x", 1) != 1)
				_exit(3);
			close(ready_fd);
		}
	}
}

_Noreturn static void rotator_child(struct plugin_instance *pi, int ready_fd)
{
	struct amtprov_error err;

	for (unsigned long i = 0;; i++) {
		rotate(pi, &err);
		if (i == 0) {
			if (write(ready_fd, "x", 1) != 1)
				_exit(3);
			close(ready_fd);
		}
	}
}

/* Forks a child running @p mode (0 writer, 1 rotator), SIGKILLs it after a random delay. */
static void kill_child_at_random(struct fx *f, int mode, const unsigned char *a,
				 const unsigned char *b, unsigned *seed)
{
	int fds[2], status = 0;
	char c;
	pid_t pid;

	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		if (mode == 0)
			writer_child(f->pi, fds[1], a, b);
		rotator_child(f->pi, fds[1]);
	}
	close(fds[1]);
	CU_ASSERT_EQUAL(read(fds[0], &c, 1), 1);
	close(fds[0]);
	usleep((useconds_t)(rand_r(seed) % 25000));
	CU_ASSERT_EQUAL(kill(pid, SIGKILL), 0);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void test_r_prov_13_sigkill_mid_write(void)
{
	unsigned char *a = big_value(BIG_A, 'A'), *b = big_value(BIG_B, 'b');
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	struct amtprov_error err;
	unsigned seen_a = 0, seen_b = 0, seen_tmp = 0;
	struct fx f;

	fprintf(stderr, "\n  seed %u ", seed);
	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "other/record", V2), AMTPROV_OK);
	CU_ASSERT_EQUAL(put_buf(f.pi, "mebx/dev1", a, BIG_A, &err), AMTPROV_OK);
	for (int round = 0; round < 20; round++) {
		struct amtprov_secret *s = NULL;

		kill_child_at_random(&f, 0, a, b, &seed);
		seen_tmp += count_temps(f.dir) > 0;
		/* a fresh instance, like a restarted amtprovd */
		reopen(&f, NULL);
		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL_FATAL(pi_credstore_get(f.pi, "mebx/dev1", &s, &err), AMTPROV_OK);
		if (s->len == BIG_A && memcmp(s->data, a, BIG_A) == 0)
			seen_a++;
		else if (s->len == BIG_B && memcmp(s->data, b, BIG_B) == 0)
			seen_b++;
		else
			CU_FAIL("value after SIGKILL is neither the old nor the new one");
		plugin_instance_host(f.pi)->secret_free(plugin_instance_host(f.pi), s);
		expect(f.pi, "other/record", V2);
	}
	fprintf(stderr, "(old/new value %u/%u, temp files left by %u kills) ", seen_a, seen_b,
		seen_tmp);
	CU_ASSERT_EQUAL(seen_a + seen_b, 20);
	/* the next writer clears what killed writers left */
	CU_ASSERT_EQUAL(put(f.pi, "other/record", V3), AMTPROV_OK);
	CU_ASSERT_EQUAL(count_temps(f.dir), 0);
	free(a);
	free(b);
	fx_done(&f);
}

static void test_r_prov_13_sigkill_mid_rotation(void)
{
	static const char *const names[] = {"mebx/d1", "amt/d1", "amt/d2", "pkcs12/x", "ca/k"};
	static const char *const vals[] = {V1, V2, V3, MARK "4", MARK "5"};
	unsigned seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 8);
	struct amtprov_error err;
	unsigned char *kb;
	size_t klen = 0;
	struct fx f;

	fprintf(stderr, "\n  seed %u ", seed);
	fx_init(&f);
	create_ok(&f, NULL);
	for (size_t i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(put(f.pi, names[i], vals[i]), AMTPROV_OK);
	for (int round = 0; round < 12; round++) {
		kill_child_at_random(&f, 1, NULL, NULL, &seed);
		reopen(&f, NULL);
		for (size_t i = 0; i < 5; i++)
			expect(f.pi, names[i], vals[i]);
	}
	/* a completed rotation drops whatever key an interrupted one left */
	CU_ASSERT_EQUAL(rotate(f.pi, &err), AMTPROV_OK);
	kb = slurp(f.key, &klen);
	CU_ASSERT_EQUAL(klen, (size_t)(KEYS_HDR + KEY_ENTRY + 32));
	free(kb);
	CU_ASSERT_EQUAL(count_temps(f.dir), 0);
	fx_done(&f);
}

static void test_r_prov_13_concurrent_processes(void)
{
	enum { PROCS = 4, EACH = 15 };
	struct amtprov_error err;
	pid_t pids[PROCS];
	struct names nm;
	size_t total = 0;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	fflush(NULL);
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		CU_ASSERT_FATAL(pids[p] >= 0);
		if (pids[p] == 0) {
			int bad = 0;

			/* Read-modify-write of one file: without the lock, puts get lost. */
			for (int i = 0; i < EACH; i++) {
				char name[32];

				snprintf(name, sizeof(name), "p%d/r%d", p, i);
				bad |= put_buf(f.pi, name, V1, strlen(V1), &err) != AMTPROV_OK;
			}
			_exit(bad);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int status = 0;

		CU_ASSERT_EQUAL(waitpid(pids[p], &status, 0), pids[p]);
		CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	memset(&nm, 0, sizeof(nm));
	amtprov_error_clear(&err);
	for (int p = 0; p < PROCS; p++)
		for (int i = 0; i < EACH; i++) {
			char name[32];

			snprintf(name, sizeof(name), "p%d/r%d", p, i);
			if (get_cmp(f.pi, name, V1, strlen(V1), &err) == AMTPROV_OK)
				total++;
		}
	CU_ASSERT_EQUAL(total, (size_t)(PROCS * EACH));
	fx_done(&f);
}

/* Appends @p n bytes of @p fill to the store, as a crash in the middle of an append can
 * leave them (the size grew, the data did not all land). */
static void grow_store(const char *path, const unsigned char *b, size_t len, size_t cut,
		       int fill, size_t n)
{
	unsigned char *c = malloc(len + n);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	memcpy(c, b, len - cut);
	memset(c + len - cut, fill, n);
	CU_ASSERT_EQUAL_FATAL(spit(path, c, len - cut + n), 0);
	free(c);
}

/* docs/credstore-file.md "Writes": a put appends one checksummed entry; an entry torn by a
 * crash (cut short, or a zero-filled tail) is not part of the store, the previous value
 * stands, and the next writer cuts it off. A damaged entry followed by others is damage. */
static void test_r_prov_13_torn_append(void)
{
	struct amtprov_error err;
	struct trec r[8];
	unsigned char *b, *b2;
	size_t len = 0, len2 = 0, n;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK); /* creates the file */
	CU_ASSERT_EQUAL(put(f.pi, "amt/dev1", V2), AMTPROV_OK);  /* appended */
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V3), AMTPROV_OK); /* appended */
	b = slurp(f.store, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	n = parse_store(b, len, r, 8);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_EQUAL(b[9], 2);
	CU_ASSERT_STRING_EQUAL(r[2].name, "mebx/dev1");

	/* the last entry cut short: the put never happened */
	grow_store(f.store, b, len, 7, 0, 0);
	expect(f.pi, "mebx/dev1", V1);
	expect(f.pi, "amt/dev1", V2);
	/* the size grew but the data of the last 20 bytes is zeros */
	grow_store(f.store, b, len, 20, 0, 20);
	expect(f.pi, "mebx/dev1", V1);
	/* a whole zero-filled entry after the good ones */
	grow_store(f.store, b, len, 0, 0, 64);
	expect(f.pi, "mebx/dev1", V3);
	/* the next writer cuts the torn tail before appending */
	grow_store(f.store, b, len, 7, 0, 0);
	CU_ASSERT_EQUAL(put(f.pi, "ca/key", V2), AMTPROV_OK);
	b2 = slurp(f.store, &len2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b2);
	n = parse_store(b2, len2, r, 8); /* asserts the file parses to its end */
	CU_ASSERT_EQUAL(n, 3);
	free(b2);
	reopen(&f, NULL);
	expect(f.pi, "mebx/dev1", V1);
	expect(f.pi, "ca/key", V2);
	expect(f.pi, "amt/dev1", V2);

	/* a bad entry with entries after it is not a torn tail: damage, named */
	b[r[1].ct] ^= 0x10;
	CU_ASSERT_EQUAL_FATAL(spit(f.store, b, len), 0);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "mebx/dev1", NULL, 0, &err), AMTPROV_E_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, f.store));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "check value"));
	free(b);
	fx_done(&f);
}

/* The cached store is used only while the file is the one it was read from: whatever
 * another process writes (an append, a removal, a rotation that replaces the file) is
 * seen by the next call. */
static void test_r_acc_02_other_process_invalidates_cache(void)
{
	struct amtprov_error err;
	struct names nm;
	pid_t pid;
	int status = 0;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "amt/dev1", V1), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "amt/dev2", V2), AMTPROV_OK);
	expect(f.pi, "amt/dev1", V1); /* cached now */
	for (int round = 0; round < 2; round++) {
		fflush(NULL);
		pid = fork();
		CU_ASSERT_FATAL(pid >= 0);
		if (pid == 0) {
			int bad = 0;

			bad |= put_buf(f.pi, "amt/dev1", round ? V2 : V3,
				       strlen(round ? V2 : V3), &err) != AMTPROV_OK;
			if (round == 0)
				bad |= pi_credstore_remove(f.pi, "amt/dev2", &err) != AMTPROV_OK;
			else
				bad |= rotate(f.pi, &err) != AMTPROV_OK; /* a new file */
			_exit(bad);
		}
		CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
		CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		expect(f.pi, "amt/dev1", round ? V2 : V3);
		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL(get_cmp(f.pi, "amt/dev2", NULL, 0, &err), AMTPROV_E_NOT_FOUND);
	}
	memset(&nm, 0, sizeof(nm));
	CU_ASSERT_EQUAL(pi_credstore_list(f.pi, collect, &nm, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(nm.n, 1);
	fx_done(&f);
}

/* Drives every error path with distinctive secrets and checks logs and messages. The
 * per-test check in fx_done already covers each test; this one also looks for the key. */
static void test_r_acc_02_no_secret_in_logs(void)
{
	unsigned char *kb;
	char hex_lo[65], hex_up[65];
	struct amtprov_error err;
	size_t klen = 0;
	struct fx f;

	fx_init(&f);
	create_ok(&f, NULL);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V1), AMTPROV_OK);
	CU_ASSERT_EQUAL(put(f.pi, "bad name", V1), AMTPROV_E_INVALID);
	expect(f.pi, "mebx/dev1", V1);
	CU_ASSERT_EQUAL(rotate(f.pi, &err), AMTPROV_OK);
	kb = slurp(f.key, &klen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(kb);
	for (int i = 0; i < 32; i++) {
		snprintf(hex_lo + 2 * i, 3, "%02x", kb[KEYS_HDR + 4 + i]);
		snprintf(hex_up + 2 * i, 3, "%02X", kb[KEYS_HDR + 4 + i]);
	}
	/* error paths: wrong key, tampered record, denied key file */
	kb[KEYS_HDR + 4] ^= 1;
	{
		unsigned int mdlen = 0;

		EVP_Digest(kb, klen - 32, kb + klen - 32, &mdlen, EVP_sha256(), NULL);
	}
	CU_ASSERT_EQUAL_FATAL(spit(f.key, kb, klen), 0);
	CU_ASSERT_EQUAL(get_cmp(f.pi, "mebx/dev1", NULL, 0, &err), AMTPROV_E_VERIFY);
	kb[KEYS_HDR + 4] ^= 1;
	{
		unsigned int mdlen = 0;

		EVP_Digest(kb, klen - 32, kb + klen - 32, &mdlen, EVP_sha256(), NULL);
	}
	CU_ASSERT_EQUAL_FATAL(spit(f.key, kb, klen), 0);
	expect(f.pi, "mebx/dev1", V1);
	CU_ASSERT_EQUAL_FATAL(chmod(f.key, 0644), 0);
	CU_ASSERT_EQUAL(put(f.pi, "mebx/dev1", V2), AMTPROV_E_DENIED);
	CU_ASSERT_EQUAL_FATAL(chmod(f.key, 0600), 0);
	CU_ASSERT(f.n_lines > 0);
	for (size_t i = 0; i < f.n_lines; i++) {
		CU_ASSERT_PTR_NULL(strstr(f.lines[i], MARK));
		CU_ASSERT_PTR_NULL(strstr(f.lines[i], hex_lo));
		CU_ASSERT_PTR_NULL(strstr(f.lines[i], hex_up));
	}
	OPENSSL_cleanse(kb, klen);
	free(kb);
	fx_done(&f);
}

static void test_r_acc_02_config_errors(void)
{
	struct amtprov_error err;
	struct fx f;
	char cfg[1200];

	fx_init(&f);
	CU_ASSERT_EQUAL(create(&f, "{\"unknown\": 1}", &err), AMTPROV_E_CONFIG);
	CU_ASSERT_EQUAL(create(&f, "{\"path\": \"\"}", &err), AMTPROV_E_CONFIG);
	snprintf(cfg, sizeof(cfg), "{\"path\": \"%s/same\", \"key_file\": \"%s/same\"}", f.root,
		 f.root);
	CU_ASSERT_EQUAL(create(&f, cfg, &err), AMTPROV_E_CONFIG);
	snprintf(cfg, sizeof(cfg), "{\"path\": \"%s/no/such/dir/s\"}", f.root);
	CU_ASSERT_EQUAL(create(&f, cfg, &err), AMTPROV_E_IO);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no/such/dir"));
	fx_done(&f);
}

#define TESTS(X)                                        \
	X(test_r_acc_02_round_trip)                     \
	X(test_r_acc_02_encrypted_at_rest)              \
	X(test_r_acc_02_overwrite)                      \
	X(test_r_acc_02_remove)                         \
	X(test_r_acc_02_list_names_only)                \
	X(test_r_acc_02_puts_in_any_order)              \
	X(test_r_acc_02_invalid_names)                  \
	X(test_r_prov_13_persistence)                   \
	X(test_r_acc_02_file_modes)                     \
	X(test_r_acc_02_key_file_mode_refused)          \
	X(test_r_acc_02_key_file_symlink_refused)       \
	X(test_r_acc_02_missing_key_file)               \
	X(test_r_acc_02_wrong_key_refused)              \
	X(test_r_acc_02_tampered_record_refused)        \
	X(test_r_acc_02_swapped_records_refused)        \
	X(test_r_acc_02_renamed_record_refused)         \
	X(test_r_acc_02_rotation)                       \
	X(test_r_acc_02_stale_temp_files)               \
	X(test_r_prov_13_sigkill_mid_write)             \
	X(test_r_prov_13_sigkill_mid_rotation)          \
	X(test_r_prov_13_concurrent_processes)          \
	X(test_r_prov_13_torn_append)                   \
	X(test_r_acc_02_other_process_invalidates_cache) \
	X(test_r_acc_02_no_secret_in_logs)              \
	X(test_r_acc_02_config_errors)

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("credstore_file", NULL, NULL);
	if (!s)
		return 2;
#define ADD(t) CU_add_test(s, #t, t);
	TESTS(ADD)
#undef ADD
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
