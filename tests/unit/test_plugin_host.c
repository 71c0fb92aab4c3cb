/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the plugin host: the loader and its descriptor checks (core/plugin/plugin_host.c),
 * the checked call wrappers (core/plugin/plugin_calls.c) and the host API given to plugins
 * (core/site/host_api.c). They load the real test plugins built from tests/plugins into
 * AMTPROV_TEST_PLUGIN_DIR, so every check runs against code compiled the way a third party
 * would compile it (R-CA-05: CA plugins are loaded at run time; the core knows no CA).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "log.h"
#include "plugin_host.h"
#include "test_util.h"

void register_plugin_host_tests(void);

#define PLUGIN_DIR AMTPROV_TEST_PLUGIN_DIR

/* A PKCS#10 request for CN=dev1.example.com with a P-256 key, made once with
 * `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -outform DER`. A fixed
 * vector keeps the test free of OpenSSL; the fake CA checks its self-signature. */
static const uint8_t test_csr[] = {
	  0x30, 0x81, 0xd5, 0x30, 0x7d, 0x02, 0x01, 0x00, 0x30, 0x1b, 0x31, 0x19,
	  0x30, 0x17, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x10, 0x64, 0x65, 0x76,
	  0x31, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f,
	  0x6d, 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
	  0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
	  0x03, 0x42, 0x00, 0x04, 0xc9, 0xef, 0xbc, 0x85, 0xd2, 0x61, 0xae, 0x7a,
	  0x93, 0x94, 0x10, 0x43, 0xbc, 0x79, 0xde, 0x2f, 0xfa, 0x3a, 0x06, 0x25,
	  0x4d, 0xca, 0xd9, 0x04, 0x59, 0xa2, 0xfd, 0xd1, 0x11, 0x0e, 0x87, 0x87,
	  0xba, 0xe0, 0x9f, 0x55, 0x92, 0x5e, 0x1b, 0x6f, 0x93, 0xbf, 0xd3, 0xb8,
	  0x6c, 0xb9, 0x92, 0x4e, 0x9d, 0x9e, 0xbe, 0x0a, 0x24, 0x7a, 0xc9, 0x8a,
	  0x13, 0x1b, 0xd5, 0x77, 0x6a, 0x0f, 0x4d, 0x7e, 0xa0, 0x00, 0x30, 0x0a,
	  0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x03, 0x48,
	  0x00, 0x30, 0x45, 0x02, 0x21, 0x00, 0x84, 0x26, 0x0f, 0x1c, 0x40, 0xb5,
	  0x88, 0xf7, 0x4f, 0x35, 0x45, 0x14, 0x74, 0x0c, 0x7d, 0x7f, 0xde, 0x63,
	  0x72, 0x3f, 0xf0, 0xa0, 0xda, 0xc6, 0xe0, 0x07, 0x0c, 0x68, 0xe3, 0x26,
	  0x48, 0x49, 0x02, 0x20, 0x1a, 0x14, 0x86, 0x5d, 0xdd, 0x6d, 0x70, 0x28,
	  0x50, 0x26, 0x84, 0x98, 0x6e, 0xfc, 0xc2, 0xbe, 0x15, 0xf0, 0xe8, 0x54,
	  0x08, 0x83, 0xec, 0x06, 0x06, 0xfa, 0x5a, 0x0c, 0x74, 0x2f, 0x0d, 0x67
};

/* ---- fixture: a logger that captures lines, a status recorder, a fake clock ---- */

struct logcap {
	pthread_mutex_t lock;
	char **lines;
	size_t n;
};

struct statrec {
	unsigned calls;
	uint32_t id;
	char device[64];
	char detail[256];
};

struct fx {
	struct alog *log;
	struct logcap cap;
	struct statrec st;
	int64_t fake_now;
	char *state_root;
	struct plugin_host *ph;
};

static void cap_cb(void *ctx, int level, const char *line)
{
	struct logcap *c = ctx;
	char **grown;

	(void)level;
	pthread_mutex_lock(&c->lock);
	grown = realloc(c->lines, (c->n + 1) * sizeof(*grown));
	if (grown) {
		c->lines = grown;
		c->lines[c->n] = strdup(line);
		if (c->lines[c->n])
			c->n++;
	}
	pthread_mutex_unlock(&c->lock);
}

/* Index of the first captured line at or after @p from holding every needle, or -1. */
static long cap_find2(struct logcap *c, size_t from, const char *a, const char *b)
{
	long found = -1;

	pthread_mutex_lock(&c->lock);
	for (size_t i = from; i < c->n && found < 0; i++)
		if (tu_contains(c->lines[i], a) && (!b || tu_contains(c->lines[i], b)))
			found = (long)i;
	pthread_mutex_unlock(&c->lock);
	return found;
}

static long cap_find(struct logcap *c, const char *needle)
{
	return cap_find2(c, 0, needle, NULL);
}

static size_t cap_count(struct logcap *c, const char *needle)
{
	size_t k = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n; i++)
		if (tu_contains(c->lines[i], needle))
			k++;
	pthread_mutex_unlock(&c->lock);
	return k;
}

static int rec_status(void *ctx, uint32_t id, const char *device, const char *detail)
{
	struct statrec *s = ctx;

	s->calls++;
	s->id = id;
	snprintf(s->device, sizeof(s->device), "%s", device ? device : "(null)");
	snprintf(s->detail, sizeof(s->detail), "%s", detail ? detail : "(null)");
	return AMTPROV_OK;
}

static int64_t fake_clock(void *ctx)
{
	return *(const int64_t *)ctx;
}

static struct host_env fx_env(struct fx *f)
{
	struct host_env env = {
		.log = f->log,
		.now = fake_clock,
		.now_ctx = &f->fake_now,
		.emit_status = rec_status,
		.status_ctx = &f->st,
		.state_root = f->state_root,
		.config_base = "/plugins",
	};

	return env;
}

/* @p add_test_dir: 1 to search PLUGIN_DIR (most tests), 0 for search-path tests. */
static void fx_init(struct fx *f, int add_test_dir)
{
	struct host_env env;
	struct amtprov_error err;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->cap.lock, NULL);
	f->fake_now = 1700000000;
	f->log = alog_new("amtprov-test", AMTPROV_LOG_DEBUG, ALOG_CALLBACK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->log);
	alog_set_callback(f->log, cap_cb, &f->cap);
	f->state_root = tu_mkdtemp("ph-state");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->state_root);
	env = fx_env(f);
	f->ph = plugin_host_new(&env);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->ph);
	amtprov_error_clear(&err);
	if (add_test_dir)
		CU_ASSERT_EQUAL(plugin_host_add_dir(f->ph, PLUGIN_DIR, &err), AMTPROV_OK);
}

/* Frees the plugin host (stop, destroy, unload) but keeps the captured log to inspect. */
static void fx_close(struct fx *f)
{
	plugin_host_free(f->ph);
	f->ph = NULL;
}

static void fx_done(struct fx *f)
{
	fx_close(f);
	alog_free(f->log);
	for (size_t i = 0; i < f->cap.n; i++)
		free(f->cap.lines[i]);
	free(f->cap.lines);
	pthread_mutex_destroy(&f->cap.lock);
	tu_rmrf(f->state_root);
	free(f->state_root);
}

/* Creates an instance; @p config_json NULL means "no config section". */
static int try_create(struct fx *f, const char *inst, const char *plugin,
		      const char *config_json, int kind, struct plugin_instance **pi,
		      struct amtprov_error *err)
{
	json_t *cfg = NULL;
	int rc;

	amtprov_error_clear(err);
	if (config_json) {
		cfg = json_loads(config_json, 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	}
	rc = plugin_host_create(f->ph, inst, plugin, cfg, kind, pi, err);
	json_decref(cfg);
	return rc;
}

static struct plugin_instance *mk(struct fx *f, const char *inst, const char *plugin,
				  const char *config_json)
{
	struct plugin_instance *pi = NULL;
	struct amtprov_error err;
	int rc = try_create(f, inst, plugin, config_json, 0, &pi, &err);

	if (rc != AMTPROV_OK)
		fprintf(stderr, "\n  create %s (%s): %s: %s: %s\n", inst, plugin,
			amtprov_status_name(rc), err.where, err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
	return pi;
}

static void make_request(struct amtprov_ca_request *req)
{
	memset(req, 0, sizeof(*req));
	req->struct_size = sizeof(*req);
	req->purpose = AMTPROV_PURPOSE_WEB_SERVER;
	req->csr_der = test_csr;
	req->csr_len = sizeof(test_csr);
	req->subject_fqdn = "dev1.example.com";
	req->device_uuid = "4c4c4544-0042-3510-8052-b4c04f333231";
}

static char *plugin_file(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s.so", dir, name) < 0)
		return NULL;
	return p;
}

/* Copies a built plugin into @p dir with @p mode (as an installer would). */
static int copy_plugin(const char *name, const char *dir, mode_t mode)
{
	char *src = plugin_file(PLUGIN_DIR, name), *dst = plugin_file(dir, name);
	char buf[65536];
	int in = -1, out = -1, rc = -1;
	ssize_t got;

	if (!src || !dst)
		goto done;
	in = open(src, O_RDONLY);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in < 0 || out < 0)
		goto done;
	while ((got = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)got) != got)
			goto done;
	if (got == 0 && fchmod(out, mode) == 0)
		rc = 0;
done:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	free(src);
	free(dst);
	return rc;
}

/* The suite must not depend on the caller's environment. */
static char *saved_plugin_path;

static int suite_init(void)
{
	const char *v = getenv("AMTPROV_PLUGIN_PATH");

	saved_plugin_path = v ? strdup(v) : NULL;
	unsetenv("AMTPROV_PLUGIN_PATH");
	return 0;
}

static int suite_cleanup(void)
{
	if (saved_plugin_path)
		setenv("AMTPROV_PLUGIN_PATH", saved_plugin_path, 1);
	free(saved_plugin_path);
	saved_plugin_path = NULL;
	return 0;
}

/* ---- loading ---- */

/* R-CA-05: one plugin, several instances (two CA sections may use the same plugin); the
 * module is loaded once and shared. */
static void test_two_instances_of_one_plugin_share_one_loaded_module(void)
{
	struct fx f;
	struct plugin_instance *a, *b;
	const struct amtprov_plugin *d = NULL;
	const char *path = NULL;
	struct amtprov_error err;
	char *want = plugin_file(PLUGIN_DIR, "fake-ca-issued");

	fx_init(&f, 1);
	a = mk(&f, "lab-ca", "fake-ca-issued", "{\"validity_days\": 30}");
	b = mk(&f, "wifi-ca", "fake-ca-issued", NULL);
	CU_ASSERT_PTR_NOT_EQUAL(a, b);
	CU_ASSERT_PTR_NOT_EQUAL(plugin_instance_handle(a), plugin_instance_handle(b));
	CU_ASSERT_PTR_EQUAL(plugin_instance_desc(a), plugin_instance_desc(b));
	CU_ASSERT_EQUAL(plugin_host_count(f.ph), 2);
	CU_ASSERT_PTR_EQUAL(plugin_host_find(f.ph, "lab-ca"), a);
	CU_ASSERT_PTR_EQUAL(plugin_host_find(f.ph, "wifi-ca"), b);
	CU_ASSERT_PTR_NULL(plugin_host_find(f.ph, "nope"));
	CU_ASSERT_PTR_EQUAL(plugin_host_at(f.ph, 0), a);
	CU_ASSERT_PTR_EQUAL(plugin_host_at(f.ph, 1), b);
	CU_ASSERT_STRING_EQUAL(plugin_instance_name(a), "lab-ca");
	CU_ASSERT_STRING_EQUAL(plugin_instance_path(a), want);
	CU_ASSERT_EQUAL(plugin_instance_kind(a), AMTPROV_KIND_CA);
	CU_ASSERT_TRUE(plugin_instance_has_cap(a, AMTPROV_CAP_CA_SUBMIT));
	CU_ASSERT_TRUE(plugin_instance_has_cap(a, AMTPROV_CAP_CA_REVOKE));
	CU_ASSERT_FALSE(plugin_instance_has_cap(a, AMTPROV_CAP_CA_POLL));
	CU_ASSERT_STRING_EQUAL(plugin_kind_name(AMTPROV_KIND_CA), "ca");

	/* Loaded once: one "loaded plugin" line, naming the full path (STYLE 16). */
	CU_ASSERT_EQUAL(cap_count(&f.cap, "loaded plugin fake-ca-issued"), 1);
	CU_ASSERT_TRUE(cap_find2(&f.cap, 0, "loaded plugin fake-ca-issued", want) >= 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_load(f.ph, "fake-ca-issued", &d, &path, &err), AMTPROV_OK);
	CU_ASSERT_PTR_EQUAL(d, plugin_instance_desc(a));
	CU_ASSERT_STRING_EQUAL(path, want);
	CU_ASSERT_EQUAL(cap_count(&f.cap, "loaded plugin fake-ca-issued"), 1);
	fx_done(&f);
	free(want);
}

/* Loads @p name, expects refusal with @p code, `where` = the .so path, and each fragment in
 * the message; then checks nothing was kept and that create() refuses the same way. */
static void expect_refused(const char *name, int code, const char *frag1, const char *frag2)
{
	struct fx f;
	const struct amtprov_plugin *d = NULL;
	struct plugin_instance *pi = NULL;
	struct amtprov_error err;
	char *file = plugin_file(PLUGIN_DIR, name);
	int rc;

	fx_init(&f, 1);
	amtprov_error_clear(&err);
	rc = plugin_host_load(f.ph, name, &d, NULL, &err);
	if (rc != code || !tu_contains(err.msg, frag1) || (frag2 && !tu_contains(err.msg, frag2)))
		fprintf(stderr, "\n  %s: got %s, where '%s', msg '%s'\n", name,
			amtprov_status_name(rc), err.where, err.msg);
	CU_ASSERT_EQUAL(rc, code);
	CU_ASSERT_EQUAL(err.code, code);
	CU_ASSERT_STRING_EQUAL(err.where, file);
	CU_ASSERT_TRUE(tu_contains(err.msg, frag1));
	if (frag2)
		CU_ASSERT_TRUE(tu_contains(err.msg, frag2));
	CU_ASSERT_EQUAL(cap_count(&f.cap, "loaded plugin"), 0);

	rc = try_create(&f, "inst", name, "{}", 0, &pi, &err);
	CU_ASSERT_EQUAL(rc, code);
	CU_ASSERT_STRING_EQUAL(err.where, file);
	CU_ASSERT_EQUAL(plugin_host_count(f.ph), 0);
	fx_done(&f);
	free(file);
}

static void test_refuses_plugin_built_for_another_abi_major_naming_both_versions(void)
{
	char theirs[32], ours[32];

	snprintf(theirs, sizeof(theirs), "ABI %d.7", AMTPROV_ABI_MAJOR + 1);
	snprintf(ours, sizeof(ours), "ABI %d.", AMTPROV_ABI_MAJOR);
	expect_refused("bad-abi-major", AMTPROV_E_ABI, theirs, ours);
}

static void test_refuses_descriptor_with_bad_magic(void)
{
	expect_refused("bad-magic", AMTPROV_E_ABI, "magic", AMTPROV_PLUGIN_SYMBOL);
}

static void test_refuses_shared_object_without_descriptor(void)
{
	expect_refused("no-descriptor", AMTPROV_E_ABI, AMTPROV_PLUGIN_SYMBOL, "not an amtprov plugin");
}

static void test_refuses_descriptor_whose_name_differs_from_file_stem(void)
{
	expect_refused("wrong-name", AMTPROV_E_ABI, "some-other-name", "wrong-name.so");
}

static void test_refuses_ca_plugin_without_submit_slot(void)
{
	expect_refused("ca-missing-submit", AMTPROV_E_ABI, "submit", NULL);
}

static void test_refuses_plugin_declaring_capability_without_its_slot(void)
{
	expect_refused("cap-without-slot", AMTPROV_E_ABI, "capability", NULL);
}

static void test_refuses_descriptor_smaller_than_abi_1_0(void)
{
	expect_refused("small-struct", AMTPROV_E_ABI, "too small", NULL);
}

static void test_missing_plugin_is_not_found_and_lists_searched_dirs(void)
{
	struct fx f;
	const struct amtprov_plugin *d = NULL;
	struct amtprov_error err;

	fx_init(&f, 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_add_dir(f.ph, "/nonexistent-a", &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(plugin_host_add_dir(f.ph, PLUGIN_DIR, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(plugin_host_load(f.ph, "no-such-plugin", &d, NULL, &err),
			AMTPROV_E_NOT_FOUND);
	CU_ASSERT_STRING_EQUAL(err.where, "no-such-plugin");
	CU_ASSERT_TRUE(tu_contains(err.msg, "no-such-plugin.so"));
	CU_ASSERT_TRUE(tu_contains(err.msg, "/nonexistent-a"));
	/* The message is bounded; the build directory may be too long to fit after it. */
	if (strlen(PLUGIN_DIR) < 100)
		CU_ASSERT_TRUE(tu_contains(err.msg, PLUGIN_DIR));
	fx_done(&f);
}

static void test_refuses_invalid_plugin_and_instance_names(void)
{
	struct fx f;
	const struct amtprov_plugin *d = NULL;
	struct plugin_instance *pi = NULL;
	struct amtprov_error err;

	fx_init(&f, 1);
	amtprov_error_clear(&err);
	/* A name becomes a file name: no path separators, no "..". */
	CU_ASSERT_EQUAL(plugin_host_load(f.ph, "../plugins/fake-ca-issued", &d, NULL, &err),
			AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(try_create(&f, "Bad Name", "fake-ca-issued", NULL, 0, &pi, &err),
			AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(plugin_host_count(f.ph), 0);
	fx_done(&f);
}

static void test_wrong_kind_is_config_error_naming_both_kinds(void)
{
	struct fx f;
	struct plugin_instance *pi = NULL;
	struct amtprov_error err;
	char *file = plugin_file(PLUGIN_DIR, "fake-credstore");

	fx_init(&f, 1);
	CU_ASSERT_EQUAL(try_create(&f, "vault", "fake-credstore", NULL, AMTPROV_KIND_CA, &pi, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_STRING_EQUAL(err.where, file);
	CU_ASSERT_TRUE(tu_contains(err.msg, "vault"));
	CU_ASSERT_TRUE(tu_contains(err.msg, "as a ca plugin"));
	CU_ASSERT_TRUE(tu_contains(err.msg, "credstore plugin"));
	CU_ASSERT_EQUAL(plugin_host_count(f.ph), 0);
	/* The right kind is accepted. */
	CU_ASSERT_EQUAL(try_create(&f, "vault", "fake-credstore", NULL, AMTPROV_KIND_CREDSTORE, &pi,
				   &err),
			AMTPROV_OK);
	fx_done(&f);
	free(file);
}

static void test_duplicate_instance_name_is_refused(void)
{
	struct fx f;
	struct plugin_instance *pi = NULL;
	struct amtprov_error err;

	fx_init(&f, 1);
	mk(&f, "lab-ca", "fake-ca-issued", NULL);
	CU_ASSERT_EQUAL(try_create(&f, "lab-ca", "fake-ca-issued", NULL, 0, &pi, &err),
			AMTPROV_E_EXISTS);
	CU_ASSERT_STRING_EQUAL(err.where, "lab-ca");
	CU_ASSERT_TRUE(tu_contains(err.msg, "lab-ca"));
	/* Also when the second one would be another plugin. */
	CU_ASSERT_EQUAL(try_create(&f, "lab-ca", "fake-credstore", NULL, 0, &pi, &err),
			AMTPROV_E_EXISTS);
	CU_ASSERT_EQUAL(plugin_host_count(f.ph), 1);
	fx_done(&f);
}

static void test_plugin_path_env_is_searched_after_added_dirs(void)
{
	struct fx f;
	const struct amtprov_plugin *d = NULL;
	const char *path = NULL;
	struct amtprov_error err;
	char *tmp = tu_mkdtemp("ph-path"), *want;

	CU_ASSERT_PTR_NOT_NULL_FATAL(tmp);
	/* Nothing added, no environment: not found. */
	fx_init(&f, 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_load(f.ph, "fake-ca-issued", &d, NULL, &err),
			AMTPROV_E_NOT_FOUND);
	fx_done(&f);

	/* The environment alone finds it; empty entries are ignored. */
	CU_ASSERT_EQUAL(setenv("AMTPROV_PLUGIN_PATH", "/nonexistent-env::" PLUGIN_DIR, 1), 0);
	fx_init(&f, 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_load(f.ph, "fake-ca-issued", &d, &path, &err), AMTPROV_OK);
	want = plugin_file(PLUGIN_DIR, "fake-ca-issued");
	CU_ASSERT_STRING_EQUAL(path, want);
	free(want);
	fx_done(&f);

	/* An added directory wins over the environment. */
	CU_ASSERT_EQUAL(copy_plugin("fake-ca-issued", tmp, 0755), 0);
	fx_init(&f, 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_add_dir(f.ph, tmp, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(plugin_host_load(f.ph, "fake-ca-issued", &d, &path, &err), AMTPROV_OK);
	want = plugin_file(tmp, "fake-ca-issued");
	CU_ASSERT_STRING_EQUAL(path, want);
	free(want);
	fx_done(&f);

	/* Not-found messages list added dirs first, then the environment's. */
	CU_ASSERT_EQUAL(setenv("AMTPROV_PLUGIN_PATH", "/nonexistent-env", 1), 0);
	fx_init(&f, 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_add_dir(f.ph, "/nonexistent-added", &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(plugin_host_load(f.ph, "no-such-plugin", &d, NULL, &err),
			AMTPROV_E_NOT_FOUND);
	CU_ASSERT_TRUE(tu_contains(err.msg, "/nonexistent-added, /nonexistent-env"));
	fx_done(&f);

	unsetenv("AMTPROV_PLUGIN_PATH");
	tu_rmrf(tmp);
	free(tmp);
}

/* STYLE 16: a symlink is refused, not followed and not skipped. */
static void test_refuses_plugin_reached_through_symlink(void)
{
	struct fx f;
	const struct amtprov_plugin *d = NULL;
	struct amtprov_error err;
	char *tmp = tu_mkdtemp("ph-link");
	char *target = plugin_file(PLUGIN_DIR, "fake-ca-issued");
	char *link = tmp ? plugin_file(tmp, "fake-ca-issued") : NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(link);
	CU_ASSERT_EQUAL_FATAL(symlink(target, link), 0);
	fx_init(&f, 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_add_dir(f.ph, tmp, &err), AMTPROV_OK);
	/* The real file later in the path must not be used as a fallback. */
	CU_ASSERT_EQUAL(plugin_host_add_dir(f.ph, PLUGIN_DIR, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(plugin_host_load(f.ph, "fake-ca-issued", &d, NULL, &err),
			AMTPROV_E_DENIED);
	CU_ASSERT_STRING_EQUAL(err.where, link);
	CU_ASSERT_TRUE(tu_contains(err.msg, "symbolic link"));
	CU_ASSERT_EQUAL(cap_count(&f.cap, "loaded plugin"), 0);
	fx_done(&f);
	tu_rmrf(tmp);
	free(tmp);
	free(target);
	free(link);
}

static void test_refuses_group_or_world_writable_plugin_file_and_dir(void)
{
	struct fx f;
	const struct amtprov_plugin *d = NULL;
	struct amtprov_error err;
	char *tmp = tu_mkdtemp("ph-perm");
	char *file = tmp ? plugin_file(tmp, "fake-ca-issued") : NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(file);
	CU_ASSERT_EQUAL_FATAL(copy_plugin("fake-ca-issued", tmp, 0666), 0);
	fx_init(&f, 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_add_dir(f.ph, tmp, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(plugin_host_load(f.ph, "fake-ca-issued", &d, NULL, &err),
			AMTPROV_E_DENIED);
	CU_ASSERT_STRING_EQUAL(err.where, file);
	CU_ASSERT_TRUE(tu_contains(err.msg, "writable"));
	CU_ASSERT_TRUE(tu_contains(err.msg, "666"));

	/* A safe file in a world-writable directory: anyone could have swapped it. */
	CU_ASSERT_EQUAL(chmod(file, 0755), 0);
	CU_ASSERT_EQUAL(chmod(tmp, 0777), 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_load(f.ph, "fake-ca-issued", &d, NULL, &err),
			AMTPROV_E_DENIED);
	CU_ASSERT_STRING_EQUAL(err.where, tmp);
	CU_ASSERT_TRUE(tu_contains(err.msg, "writable"));

	/* Fixed permissions: it loads. */
	CU_ASSERT_EQUAL(chmod(tmp, 0700), 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_load(f.ph, "fake-ca-issued", &d, NULL, &err), AMTPROV_OK);
	fx_done(&f);
	tu_rmrf(tmp);
	free(tmp);
	free(file);
}

/* ---- create() and configuration ---- */

static void test_create_failure_reports_plugin_message_at_config_path(void)
{
	struct fx f;
	struct plugin_instance *pi = NULL;
	struct amtprov_error err;

	fx_init(&f, 1);
	CU_ASSERT_EQUAL(try_create(&f, "broken", "create-fails", "{}", 0, &pi, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_STRING_EQUAL(err.where, "/plugins/broken/config/ca_url");
	CU_ASSERT_TRUE(tu_contains(err.msg, "ca_url must be an https URL"));
	CU_ASSERT_TRUE(tu_contains(err.msg, "broken"));
	CU_ASSERT_EQUAL(plugin_host_count(f.ph), 0);
	CU_ASSERT_PTR_NULL(plugin_host_find(f.ph, "broken"));
	/* The log line the plugin wrote from create() carries its context. */
	CU_ASSERT_TRUE(cap_find(&f.cap, "[create-fails/broken] refusing configuration") >= 0);
	fx_done(&f);
}

static void test_config_table_refuses_unknown_key_and_out_of_range_value_with_path(void)
{
	struct fx f;
	struct plugin_instance *pi = NULL;
	struct amtprov_error err;

	fx_init(&f, 1);
	CU_ASSERT_EQUAL(try_create(&f, "lab-ca", "fake-ca-issued", "{\"validty_days\": 30}", 0,
				   &pi, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_STRING_EQUAL(err.where, "/plugins/lab-ca/config/validty_days");
	CU_ASSERT_TRUE(tu_contains(err.msg, "unknown key"));

	CU_ASSERT_EQUAL(try_create(&f, "lab-ca", "fake-ca-issued", "{\"validity_days\": 0}", 0,
				   &pi, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_STRING_EQUAL(err.where, "/plugins/lab-ca/config/validity_days");
	CU_ASSERT_TRUE(tu_contains(err.msg, "1 to 3650"));

	CU_ASSERT_EQUAL(try_create(&f, "lab-ca", "fake-ca-issued", "{\"reason\": 7}", 0, &pi,
				   &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_STRING_EQUAL(err.where, "/plugins/lab-ca/config/reason");
	CU_ASSERT_TRUE(tu_contains(err.msg, "string"));

	/* Plugins without keys refuse any key, too. */
	CU_ASSERT_EQUAL(try_create(&f, "vault", "fake-credstore", "{\"x\": 1}", 0, &pi, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_STRING_EQUAL(err.where, "/plugins/vault/config/x");
	CU_ASSERT_EQUAL(plugin_host_count(f.ph), 0);

	/* A valid section is accepted, and the instance name can be reused after failures. */
	CU_ASSERT_EQUAL(try_create(&f, "lab-ca", "fake-ca-issued",
				   "{\"validity_days\": 30, \"reason\": \"ok\"}", 0, &pi, &err),
			AMTPROV_OK);
	fx_done(&f);
}

/* ---- CA calls: one fake plugin per certmonger outcome ---- */

static void submit_expect(const char *plugin, const char *config, uint32_t outcome,
			  const char *message)
{
	struct fx f;
	struct plugin_instance *pi;
	struct amtprov_ca_request req;
	struct amtprov_ca_result res;
	struct amtprov_error err;

	fx_init(&f, 1);
	pi = mk(&f, "ca", plugin, config);
	make_request(&req);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_ca_submit(pi, "dev1.example.com", &req, &res, &err), AMTPROV_OK);
	if (res.outcome != outcome)
		fprintf(stderr, "\n  %s: outcome %s (%s)\n", plugin,
			amtprov_ca_outcome_name(res.outcome), res.message);
	CU_ASSERT_EQUAL(res.outcome, outcome);
	if (message)
		CU_ASSERT_TRUE(tu_contains(res.message, message));
	/* Only ISSUED results carry buffers. */
	CU_ASSERT_PTR_NULL(res.cert_der);
	CU_ASSERT_PTR_NULL(res.chain_pem);
	pi_ca_result_release(&res);
	fx_done(&f);
}

static void test_fake_ca_issued_returns_real_certificate_and_chain(void)
{
	struct fx f;
	struct plugin_instance *pi;
	struct amtprov_ca_request req;
	struct amtprov_ca_result res;
	struct amtprov_error err;

	fx_init(&f, 1);
	pi = mk(&f, "lab-ca", "fake-ca-issued", NULL);
	make_request(&req);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_ca_submit(pi, "dev1.example.com", &req, &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_ISSUED);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res.cert_der);
	/* A DER SEQUENCE of realistic size (an X.509 certificate, parsed by core tests). */
	CU_ASSERT_EQUAL(res.cert_der[0], 0x30);
	CU_ASSERT_TRUE(res.cert_len > 100);
	CU_ASSERT_TRUE(tu_contains(res.chain_pem, "-----BEGIN CERTIFICATE-----"));
	CU_ASSERT_TRUE(res.request_id[0] != '\0');
	pi_ca_result_release(&res);
	CU_ASSERT_PTR_NULL(res.cert_der);
	CU_ASSERT_PTR_NULL(res.chain_pem);
	CU_ASSERT_EQUAL(res.cert_len, 0);
	pi_ca_result_release(&res); /* twice is harmless */

	/* Garbage instead of a PKCS#10 request is the CA's answer REJECTED, not an error. */
	req.csr_len = 20;
	CU_ASSERT_EQUAL(pi_ca_submit(pi, NULL, &req, &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	CU_ASSERT_TRUE(tu_contains(res.message, "PKCS#10"));
	CU_ASSERT_PTR_NULL(res.cert_der);
	fx_done(&f);
}

static void test_fake_ca_wait_returns_cookie_then_issues_on_poll(void)
{
	struct fx f;
	struct plugin_instance *pi;
	struct amtprov_ca_request req;
	struct amtprov_ca_result res;
	struct amtprov_error err;
	char cookie[AMTPROV_CA_COOKIE_SIZE];

	fx_init(&f, 1);
	pi = mk(&f, "slow-ca", "fake-ca-wait", "{\"polls_until_issued\": 3}");
	make_request(&req);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_ca_submit(pi, "dev1.example.com", &req, &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_WAIT);
	CU_ASSERT_TRUE(tu_contains(res.cookie, "fake-ca-wait-"));
	snprintf(cookie, sizeof(cookie), "%s", res.cookie);

	/* Two more WAITs, then ISSUED on the third poll. */
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(pi_ca_poll(pi, "dev1.example.com", &req, cookie, &res, &err),
				AMTPROV_OK);
		CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_WAIT);
		CU_ASSERT_STRING_EQUAL(res.cookie, cookie);
	}
	CU_ASSERT_EQUAL(pi_ca_poll(pi, "dev1.example.com", &req, cookie, &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_ISSUED);
	CU_ASSERT_PTR_NOT_NULL(res.cert_der);
	CU_ASSERT_TRUE(res.cert_len > 100);
	pi_ca_result_release(&res);

	/* A cookie it never handed out. */
	CU_ASSERT_EQUAL(pi_ca_poll(pi, NULL, &req, "someone-else-1", &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	fx_done(&f);
}

static void test_fake_ca_wait_with_delay_gives_delay_and_cookie(void)
{
	struct fx f;
	struct plugin_instance *pi;
	struct amtprov_ca_request req;
	struct amtprov_ca_result res;
	struct amtprov_error err;
	char cookie[AMTPROV_CA_COOKIE_SIZE];

	fx_init(&f, 1);
	pi = mk(&f, "later-ca", "fake-ca-wait-delay", "{\"delay_seconds\": 120}");
	make_request(&req);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_ca_submit(pi, NULL, &req, &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_WAIT_WITH_DELAY);
	CU_ASSERT_EQUAL(res.delay_seconds, 120);
	CU_ASSERT_TRUE(tu_contains(res.cookie, "fake-ca-wait-delay-"));
	/* Copied: pi_ca_poll resets the result it is given before calling the plugin. */
	snprintf(cookie, sizeof(cookie), "%s", res.cookie);
	CU_ASSERT_EQUAL(pi_ca_poll(pi, NULL, &req, cookie, &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_ISSUED);
	CU_ASSERT_PTR_NOT_NULL(res.cert_der);
	pi_ca_result_release(&res);
	fx_done(&f);
}

static void test_fake_ca_rejected_returns_reason(void)
{
	submit_expect("fake-ca-rejected", NULL, AMTPROV_CA_REJECTED, "denied by CA policy");
	submit_expect("fake-ca-rejected", "{\"reason\": \"template WebServer-AMT is disabled\"}",
		      AMTPROV_CA_REJECTED, "template WebServer-AMT is disabled");
}

static void test_fake_ca_unreachable_unconfigured_not_supported_need_rekey(void)
{
	submit_expect("fake-ca-unreachable", NULL, AMTPROV_CA_UNREACHABLE, "offline");
	submit_expect("fake-ca-unconfigured", NULL, AMTPROV_CA_UNCONFIGURED, "no template");
	submit_expect("fake-ca-not-supported", NULL, AMTPROV_CA_NOT_SUPPORTED, "cannot issue");
	submit_expect("fake-ca-need-rekey", NULL, AMTPROV_CA_NEED_REKEY, "new key");
}

static void test_revoke_and_poll_follow_declared_capabilities(void)
{
	struct fx f;
	struct plugin_instance *issued, *unreach, *rejected;
	struct amtprov_ca_revocation rev = {
		.struct_size = sizeof(rev),
		.serial_hex = "0A1B2C",
		.issuer = "CN=Fake CA",
		.reason = AMTPROV_REVOKE_SUPERSEDED,
	};
	struct amtprov_ca_request req;
	struct amtprov_ca_result res;
	struct amtprov_error err;

	fx_init(&f, 1);
	issued = mk(&f, "a", "fake-ca-issued", NULL);
	unreach = mk(&f, "b", "fake-ca-unreachable", NULL);
	rejected = mk(&f, "c", "fake-ca-unconfigured", NULL); /* declares no ca:revoke */
	make_request(&req);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_ca_revoke(issued, "dev1.example.com", &rev, &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_ISSUED);
	CU_ASSERT_TRUE(cap_find(&f.cap, "revoked serial 0A1B2C") >= 0);
	CU_ASSERT_EQUAL(pi_ca_revoke(unreach, NULL, &rev, &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_UNREACHABLE);
	/* No ca:revoke: the core answers NOT_SUPPORTED itself. */
	CU_ASSERT_EQUAL(pi_ca_revoke(rejected, NULL, &rev, &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_NOT_SUPPORTED);
	/* No ca:poll. */
	CU_ASSERT_EQUAL(pi_ca_poll(issued, NULL, &req, "x", &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_NOT_SUPPORTED);
	/* Optional queries it does not offer. */
	{
		uint8_t *crl = NULL;
		size_t crl_len = 0;
		char *pem = NULL;

		CU_ASSERT_EQUAL(pi_ca_fetch_crl(issued, &crl, &crl_len, &err),
				AMTPROV_E_NOT_SUPPORTED);
		CU_ASSERT_TRUE(tu_contains(err.msg, "'a'"));
		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL(pi_ca_fetch_roots(issued, &pem, &err), AMTPROV_E_NOT_SUPPORTED);
	}
	CU_ASSERT_EQUAL(err.code, AMTPROV_E_NOT_SUPPORTED);
	fx_done(&f);
}

/* A vtable that ends after submit: slots past struct_size are never called (they abort). */
static void test_slots_beyond_vtable_struct_size_are_not_supported(void)
{
	struct fx f;
	struct plugin_instance *pi;
	struct amtprov_ca_revocation rev = {.struct_size = sizeof(rev), .serial_hex = "01"};
	struct amtprov_ca_request req;
	struct amtprov_ca_result res;
	struct amtprov_error err;
	uint8_t *crl = NULL;
	size_t crl_len = 0;

	fx_init(&f, 1);
	pi = mk(&f, "old-ca", "optional-thing", NULL);
	make_request(&req);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_ca_submit(pi, NULL, &req, &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	CU_ASSERT_EQUAL(pi_ca_poll(pi, NULL, &req, "c", &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_NOT_SUPPORTED);
	CU_ASSERT_EQUAL(pi_ca_revoke(pi, NULL, &rev, &res, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_NOT_SUPPORTED);
	CU_ASSERT_EQUAL(pi_ca_fetch_crl(pi, &crl, &crl_len, &err), AMTPROV_E_NOT_SUPPORTED);
	/* start/stop are beyond struct_size too. */
	CU_ASSERT_EQUAL(plugin_host_start_all(f.ph, &err), AMTPROV_OK);
	plugin_host_stop_all(f.ph);
	fx_done(&f);
}

/* ---- host API ---- */

static void test_secret_get_put_reach_the_site_credential_store(void)
{
	struct fx f;
	struct plugin_instance *ca, *vault;
	const struct amtprov_host *h, *vh;
	struct amtprov_secret *s, *got = NULL;
	struct amtprov_ca_request req;
	struct amtprov_ca_result res;
	struct amtprov_error err;

	fx_init(&f, 1);
	ca = mk(&f, "lab-ca", "fake-ca-issued", NULL);
	vault = mk(&f, "vault", "fake-credstore", NULL);
	h = plugin_instance_host(ca);
	vh = plugin_instance_host(vault);
	CU_ASSERT_TRUE(h->struct_size >= sizeof(struct amtprov_host));
	CU_ASSERT_EQUAL(h->abi_major, AMTPROV_ABI_MAJOR);

	/* No store configured yet. */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(h->secret_get(h, "lab-ca/issuing-key", &got, &err),
			AMTPROV_E_NOT_SUPPORTED);
	CU_ASSERT_PTR_NULL(got);

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_set_credstore(f.ph, ca, &err), AMTPROV_E_CONFIG);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_set_credstore(f.ph, vault, &err), AMTPROV_OK);

	s = h->secret_new(h, 6);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->len, 6);
	CU_ASSERT_EQUAL(s->data[0], '\0');
	memcpy(s->data, "s3cret", 6);
	CU_ASSERT_EQUAL(h->secret_put(h, "lab-ca/issuing-key", s, &err), AMTPROV_OK);
	h->secret_free(h, s); /* wipes before freeing; only exercised here */
	h->secret_free(h, NULL);

	CU_ASSERT_EQUAL(h->secret_get(h, "lab-ca/issuing-key", &got, &err), AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT_EQUAL(got->len, 6);
	CU_ASSERT_STRING_EQUAL(got->data, "s3cret");
	CU_ASSERT_EQUAL(got->data[got->len], '\0');
	h->secret_free(h, got);
	got = NULL;
	CU_ASSERT_EQUAL(h->secret_get(h, "lab-ca/none", &got, &err), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_PTR_NULL(got);

	/* The store itself never reads through the host API (no recursion into itself). */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(vh->secret_get(vh, "lab-ca/issuing-key", &got, &err),
			AMTPROV_E_NOT_SUPPORTED);
	CU_ASSERT_PTR_NULL(got);
	s = vh->secret_new(vh, 1);
	CU_ASSERT_EQUAL(vh->secret_put(vh, "x", s, &err), AMTPROV_E_NOT_SUPPORTED);
	vh->secret_free(vh, s);

	/* Wrong-kind calls through the wrappers are refused, not made. */
	make_request(&req);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_ca_submit(vault, NULL, &req, &res, &err), AMTPROV_E_INTERNAL);
	CU_ASSERT_TRUE(tu_contains(err.msg, "credstore"));
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_credstore_get(ca, "x", &got, &err), AMTPROV_E_INTERNAL);

	/* Direct calls: remove, then get says not found. */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_credstore_remove(vault, "lab-ca/issuing-key", &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(pi_credstore_get(vault, "lab-ca/issuing-key", &got, &err),
			AMTPROV_E_NOT_FOUND);
	fx_done(&f);
}

static void test_state_dir_is_private_per_instance(void)
{
	struct fx f;
	struct plugin_instance *pi;
	const struct amtprov_host *h;
	const char *dir;
	char *want = NULL;
	struct stat st;

	fx_init(&f, 1);
	pi = mk(&f, "lab-ca", "fake-ca-issued", NULL);
	h = plugin_instance_host(pi);
	CU_ASSERT_STRING_EQUAL(h->instance_name(h), "lab-ca");
	dir = h->state_dir(h);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	CU_ASSERT_TRUE(asprintf(&want, "%s/plugins/lab-ca", f.state_root) > 0);
	CU_ASSERT_STRING_EQUAL(dir, want);
	CU_ASSERT_EQUAL_FATAL(stat(dir, &st), 0);
	CU_ASSERT_TRUE(S_ISDIR(st.st_mode));
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
	/* Stable for the instance's life. */
	CU_ASSERT_PTR_EQUAL(h->state_dir(h), dir);
	free(want);
	fx_done(&f);

	/* Without a state root there is no state directory. */
	{
		struct host_env env;

		fx_init(&f, 1);
		env = fx_env(&f);
		env.state_root = NULL;
		plugin_host_free(f.ph);
		f.ph = plugin_host_new(&env);
		CU_ASSERT_EQUAL(plugin_host_add_dir(f.ph, PLUGIN_DIR, NULL), AMTPROV_OK);
		pi = mk(&f, "lab-ca", "fake-ca-issued", NULL);
		h = plugin_instance_host(pi);
		CU_ASSERT_PTR_NULL(h->state_dir(h));
		fx_done(&f);
	}
}

static void test_plugin_log_lines_carry_plugin_instance_and_device_prefix(void)
{
	struct fx f;
	struct plugin_instance *pi;
	const struct amtprov_host *h;
	struct amtprov_ca_request req;
	struct amtprov_ca_result res;
	struct amtprov_error err;

	fx_init(&f, 1);
	pi = mk(&f, "lab-ca", "fake-ca-issued", NULL);
	h = plugin_instance_host(pi);
	/* create() logged from inside the plugin. */
	CU_ASSERT_TRUE(cap_find(&f.cap, "[fake-ca-issued/lab-ca] create") >= 0);
	/* A call from outside any wrapper (e.g. a thread the plugin owns). */
	h->log(h, AMTPROV_LOG_WARNING, "hello %d", 42);
	CU_ASSERT_TRUE(cap_find(&f.cap, "warning: [fake-ca-issued/lab-ca] hello 42") >= 0);
	/* During a call about a device, the device is named too. */
	make_request(&req);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_ca_submit(pi, "dev1.example.com", &req, &res, &err), AMTPROV_OK);
	pi_ca_result_release(&res);
	CU_ASSERT_TRUE(cap_find(&f.cap, "[fake-ca-issued/lab-ca] [dev1.example.com] submit for") >=
		       0);
	/* The context does not leak out of the call. */
	h->log(h, AMTPROV_LOG_INFO, "after");
	CU_ASSERT_TRUE(cap_find2(&f.cap, 0, "after", "dev1.example.com") < 0);
	fx_done(&f);
}

static void test_status_and_clock_go_through_the_host_env(void)
{
	struct fx f;
	struct plugin_instance *pi;
	const struct amtprov_host *h;

	fx_init(&f, 1);
	pi = mk(&f, "lab-ca", "fake-ca-issued", NULL);
	h = plugin_instance_host(pi);
	CU_ASSERT_EQUAL(h->status(h, 7210, "dev1.example.com", "request %s queued", "42"),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(f.st.calls, 1);
	CU_ASSERT_EQUAL(f.st.id, 7210);
	CU_ASSERT_STRING_EQUAL(f.st.device, "dev1.example.com");
	CU_ASSERT_STRING_EQUAL(f.st.detail, "request 42 queued");
	/* Injected clock (plugins must use host->now, not time()). */
	CU_ASSERT_EQUAL(h->now(h), 1700000000);
	f.fake_now += 3600;
	CU_ASSERT_EQUAL(h->now(h), 1700003600);
	CU_ASSERT_TRUE(h->monotonic_ms(h) >= 0);
	fx_done(&f);
}

/* ---- lifecycle ---- */

static void test_start_in_creation_order_stop_and_destroy_in_reverse(void)
{
	struct fx f;
	struct amtprov_error err;
	long i;

	fx_init(&f, 1);
	mk(&f, "first", "fake-ca-issued", NULL);
	mk(&f, "second", "fake-ca-rejected", NULL);
	mk(&f, "third", "fake-ca-wait", NULL);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_start_all(f.ph, &err), AMTPROV_OK);
	/* Started once only, even when start_all runs again. */
	CU_ASSERT_EQUAL(plugin_host_start_all(f.ph, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(cap_count(&f.cap, "] start"), 3);

	i = cap_find(&f.cap, "[fake-ca-issued/first] start");
	CU_ASSERT_TRUE(i >= 0);
	i = cap_find2(&f.cap, (size_t)(i + 1), "[fake-ca-rejected/second] start", NULL);
	CU_ASSERT_TRUE(i >= 0);
	i = cap_find2(&f.cap, (size_t)(i + 1), "[fake-ca-wait/third] start", NULL);
	CU_ASSERT_TRUE(i >= 0);

	fx_close(&f);
	i = cap_find(&f.cap, "[fake-ca-wait/third] stop");
	CU_ASSERT_TRUE(i >= 0);
	i = cap_find2(&f.cap, (size_t)(i + 1), "[fake-ca-rejected/second] stop", NULL);
	CU_ASSERT_TRUE(i >= 0);
	i = cap_find2(&f.cap, (size_t)(i + 1), "[fake-ca-issued/first] stop", NULL);
	CU_ASSERT_TRUE(i >= 0);
	/* Every stop before any destroy, then destroy in reverse creation order. */
	i = cap_find2(&f.cap, (size_t)(i + 1), "[fake-ca-wait/third] destroy", NULL);
	CU_ASSERT_TRUE(i >= 0);
	i = cap_find2(&f.cap, (size_t)(i + 1), "[fake-ca-rejected/second] destroy", NULL);
	CU_ASSERT_TRUE(i >= 0);
	i = cap_find2(&f.cap, (size_t)(i + 1), "[fake-ca-issued/first] destroy", NULL);
	CU_ASSERT_TRUE(i >= 0);
	CU_ASSERT_EQUAL(cap_count(&f.cap, "] stop"), 3);
	CU_ASSERT_EQUAL(cap_count(&f.cap, "] destroy"), 3);
	fx_done(&f);
}

static void test_stop_all_stops_only_started_instances_and_allows_restart(void)
{
	struct fx f;
	struct amtprov_error err;

	fx_init(&f, 1);
	mk(&f, "one", "fake-ca-issued", NULL);
	plugin_host_stop_all(f.ph); /* nothing started: no stop */
	CU_ASSERT_EQUAL(cap_count(&f.cap, "] stop"), 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_start_all(f.ph, &err), AMTPROV_OK);
	plugin_host_stop_all(f.ph);
	CU_ASSERT_EQUAL(cap_count(&f.cap, "] stop"), 1);
	CU_ASSERT_EQUAL(plugin_host_start_all(f.ph, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(cap_count(&f.cap, "] start"), 2);
	fx_close(&f); /* stops it again, then destroys */
	CU_ASSERT_EQUAL(cap_count(&f.cap, "] stop"), 2);
	fx_done(&f);
}

static void test_start_failure_names_instance_and_plugin_reason(void)
{
	struct fx f;
	struct amtprov_error err;

	fx_init(&f, 1);
	mk(&f, "ok-ca", "fake-ca-issued", NULL);
	mk(&f, "down-ca", "fake-ca-unreachable", "{\"fail_start\": true}");
	mk(&f, "never", "fake-ca-issued", NULL);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(plugin_host_start_all(f.ph, &err), AMTPROV_E_UNREACHABLE);
	CU_ASSERT_TRUE(tu_contains(err.msg, "down-ca"));
	CU_ASSERT_TRUE(tu_contains(err.msg, "configured to be offline"));
	CU_ASSERT_TRUE(tu_contains(err.where, "fake-ca-unreachable.so"));
	/* Stopped at the failure: the later instance was not started. */
	CU_ASSERT_TRUE(cap_find(&f.cap, "[fake-ca-issued/never] start") < 0);
	fx_close(&f);
	/* Teardown stopped only what had started. */
	CU_ASSERT_TRUE(cap_find(&f.cap, "[fake-ca-issued/ok-ca] stop") >= 0);
	CU_ASSERT_TRUE(cap_find(&f.cap, "[fake-ca-unreachable/down-ca] stop") < 0);
	CU_ASSERT_TRUE(cap_find(&f.cap, "[fake-ca-issued/never] stop") < 0);
	fx_done(&f);
}

/* ---- other kinds ---- */

static void test_every_kind_loads_with_its_kind_and_mandatory_slots(void)
{
	static const struct {
		const char *plugin;
		int kind;
		const char *kind_name;
	} kinds[] = {
		{"fake-ca-issued", AMTPROV_KIND_CA, "ca"},
		{"fake-credstore", AMTPROV_KIND_CREDSTORE, "credstore"},
		{"fake-directory", AMTPROV_KIND_DIRECTORY, "directory"},
		{"fake-transport", AMTPROV_KIND_TRANSPORT, "transport"},
		{"fake-netprofile", AMTPROV_KIND_NETPROFILE, "netprofile"},
	};
	struct fx f;
	struct plugin_instance *pi = NULL;
	struct amtprov_error err;
	char inst[32];

	fx_init(&f, 1);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		snprintf(inst, sizeof(inst), "i%zu", i);
		CU_ASSERT_EQUAL(try_create(&f, inst, kinds[i].plugin, NULL, kinds[i].kind, &pi,
					   &err),
				AMTPROV_OK);
		CU_ASSERT_EQUAL(plugin_instance_kind(pi), kinds[i].kind);
		CU_ASSERT_STRING_EQUAL(plugin_kind_name((uint32_t)kinds[i].kind),
				       kinds[i].kind_name);
	}
	/* A transport used where the manifest needs a netprofile. */
	CU_ASSERT_EQUAL(try_create(&f, "np", "fake-transport", NULL, AMTPROV_KIND_NETPROFILE, &pi,
				   &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_TRUE(tu_contains(err.msg, "transport"));
	CU_ASSERT_TRUE(tu_contains(err.msg, "netprofile"));
	CU_ASSERT_EQUAL(plugin_host_start_all(f.ph, &err), AMTPROV_OK);
	fx_done(&f);
}

static void test_directory_calls_record_accounts_and_report_configured_failures(void)
{
	static const char *const spns[] = {"HTTP/dev1.example.com:16993",
					   "HTTP/dev1.example.com:16992", NULL};
	struct amtprov_directory_account acct = {
		.struct_size = sizeof(acct),
		.fqdn = "dev1.example.com",
		.account_name = "DEV1-AMT",
		.container = "OU=AMT,DC=example,DC=com",
		.spns = spns,
	};
	struct fx f;
	struct plugin_instance *dir, *denied, *pi = NULL;
	struct amtprov_secret *pw = NULL;
	struct amtprov_error err;

	fx_init(&f, 1);
	dir = mk(&f, "ad", "fake-directory", NULL);
	denied = mk(&f, "ad-ro", "fake-directory", "{\"fail_with\": \"denied\"}");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_directory_create(dir, "dev1.example.com", &acct, &pw, &err), AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL(pw);
	if (pw)
		CU_ASSERT_TRUE(pw->len > 0);
	plugin_instance_host(dir)->secret_free(plugin_instance_host(dir), pw);
	CU_ASSERT_TRUE(cap_find(&f.cap, "[fake-directory/ad] [dev1.example.com] create_account") >=
		       0);
	CU_ASSERT_EQUAL(pi_directory_delete(dir, NULL, "dev1.example.com", &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(pi_directory_delete(dir, NULL, "dev1.example.com", &err),
			AMTPROV_E_NOT_FOUND);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_directory_create(denied, NULL, &acct, NULL, &err), AMTPROV_E_DENIED);
	CU_ASSERT_TRUE(tu_contains(err.msg, "rights"));
	CU_ASSERT_EQUAL(try_create(&f, "ad2", "fake-directory", "{\"fail_with\": \"sometimes\"}", 0,
				   &pi, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_STRING_EQUAL(err.where, "/plugins/ad2/config/fail_with");
	fx_done(&f);
}

/* ---- threads ---- */

#define HAMMER_THREADS 4
#define HAMMER_PUTS 200

struct hammer {
	struct plugin_instance *pi;
	const struct amtprov_host *h;
	int id;
	int failures;
};

static void *hammer_thread(void *arg)
{
	struct hammer *hm = arg;
	struct amtprov_secret *s = hm->h->secret_new(hm->h, 8);
	struct amtprov_error err;
	char name[64];

	if (!s) {
		hm->failures++;
		return NULL;
	}
	for (int i = 0; i < HAMMER_PUTS; i++) {
		snprintf(name, sizeof(name), "t%d/rec%d", hm->id, i);
		snprintf(s->data, s->len + 1, "%08d", i);
		amtprov_error_clear(&err);
		if (pi_credstore_put(hm->pi, name, s, &err) != AMTPROV_OK)
			hm->failures++;
	}
	hm->h->secret_free(hm->h, s);
	return NULL;
}

static int count_name(void *ctx, const char *name)
{
	(void)name;
	(*(size_t *)ctx)++;
	return 0;
}

/* STYLE 18: without AMTPROV_PLUGIN_THREAD_SAFE the core serializes calls per instance, so a
 * store that is not thread-safe stays consistent under concurrent callers. */
static void test_calls_into_thread_unsafe_plugin_are_serialized(void)
{
	struct fx f;
	struct plugin_instance *pi;
	struct hammer hm[HAMMER_THREADS];
	pthread_t th[HAMMER_THREADS];
	struct amtprov_error err;
	struct amtprov_secret *got = NULL;
	size_t n = 0;

	fx_init(&f, 1);
	pi = mk(&f, "vault", "fake-credstore", NULL);
	CU_ASSERT_EQUAL(plugin_instance_desc(pi)->flags & AMTPROV_PLUGIN_THREAD_SAFE, 0);
	for (int i = 0; i < HAMMER_THREADS; i++) {
		hm[i] = (struct hammer){pi, plugin_instance_host(pi), i, 0};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, hammer_thread, &hm[i]), 0);
	}
	for (int i = 0; i < HAMMER_THREADS; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(hm[i].failures, 0);
	}
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_credstore_list(pi, count_name, &n, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(n, (size_t)HAMMER_THREADS * HAMMER_PUTS);
	CU_ASSERT_EQUAL(pi_credstore_get(pi, "t3/rec199", &got, &err), AMTPROV_OK);
	if (got)
		CU_ASSERT_STRING_EQUAL(got->data, "00000199");
	plugin_instance_host(pi)->secret_free(plugin_instance_host(pi), got);
	fx_close(&f);
	/* The store logs at destroy if two calls ever overlapped. */
	CU_ASSERT_TRUE(cap_find(&f.cap, "overlapping") < 0);
	fx_done(&f);
}

struct ts_call {
	struct plugin_instance *pi;
	char message[AMTPROV_CA_MESSAGE_SIZE];
	int rc;
};

static void *ts_thread(void *arg)
{
	struct ts_call *c = arg;
	struct amtprov_ca_request req;
	struct amtprov_ca_result res;
	struct amtprov_error err;

	make_request(&req);
	amtprov_error_clear(&err);
	c->rc = pi_ca_submit(c->pi, NULL, &req, &res, &err);
	snprintf(c->message, sizeof(c->message), "%s", res.message);
	pi_ca_result_release(&res);
	return NULL;
}

/* A plugin that sets the flag is exposed as such and really gets concurrent calls: its
 * submit only says "concurrent" if both callers were inside it at once. */
static void test_thread_safe_plugin_gets_concurrent_calls(void)
{
	struct fx f;
	struct plugin_instance *pi;
	struct ts_call calls[2];
	pthread_t th[2];

	fx_init(&f, 1);
	pi = mk(&f, "mt-ca", "thread-safe-ca", "{\"rendezvous\": 2, \"timeout_ms\": 5000}");
	CU_ASSERT_NOT_EQUAL(plugin_instance_desc(pi)->flags & AMTPROV_PLUGIN_THREAD_SAFE, 0);
	for (int i = 0; i < 2; i++) {
		memset(&calls[i], 0, sizeof(calls[i]));
		calls[i].pi = pi;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, ts_thread, &calls[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(calls[i].rc, AMTPROV_OK);
		CU_ASSERT_STRING_EQUAL(calls[i].message, "concurrent");
	}
	fx_done(&f);
}

/* ---- registration ---- */

void register_plugin_host_tests(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
#define T(fn) {#fn, fn}
		T(test_two_instances_of_one_plugin_share_one_loaded_module),
		T(test_refuses_plugin_built_for_another_abi_major_naming_both_versions),
		T(test_refuses_descriptor_with_bad_magic),
		T(test_refuses_shared_object_without_descriptor),
		T(test_refuses_descriptor_whose_name_differs_from_file_stem),
		T(test_refuses_ca_plugin_without_submit_slot),
		T(test_refuses_plugin_declaring_capability_without_its_slot),
		T(test_refuses_descriptor_smaller_than_abi_1_0),
		T(test_missing_plugin_is_not_found_and_lists_searched_dirs),
		T(test_refuses_invalid_plugin_and_instance_names),
		T(test_wrong_kind_is_config_error_naming_both_kinds),
		T(test_duplicate_instance_name_is_refused),
		T(test_plugin_path_env_is_searched_after_added_dirs),
		T(test_refuses_plugin_reached_through_symlink),
		T(test_refuses_group_or_world_writable_plugin_file_and_dir),
		T(test_create_failure_reports_plugin_message_at_config_path),
		T(test_config_table_refuses_unknown_key_and_out_of_range_value_with_path),
		T(test_fake_ca_issued_returns_real_certificate_and_chain),
		T(test_fake_ca_wait_returns_cookie_then_issues_on_poll),
		T(test_fake_ca_wait_with_delay_gives_delay_and_cookie),
		T(test_fake_ca_rejected_returns_reason),
		T(test_fake_ca_unreachable_unconfigured_not_supported_need_rekey),
		T(test_revoke_and_poll_follow_declared_capabilities),
		T(test_slots_beyond_vtable_struct_size_are_not_supported),
		T(test_secret_get_put_reach_the_site_credential_store),
		T(test_state_dir_is_private_per_instance),
		T(test_plugin_log_lines_carry_plugin_instance_and_device_prefix),
		T(test_status_and_clock_go_through_the_host_env),
		T(test_start_in_creation_order_stop_and_destroy_in_reverse),
		T(test_stop_all_stops_only_started_instances_and_allows_restart),
		T(test_start_failure_names_instance_and_plugin_reason),
		T(test_every_kind_loads_with_its_kind_and_mandatory_slots),
		T(test_directory_calls_record_accounts_and_report_configured_failures),
		T(test_calls_into_thread_unsafe_plugin_are_serialized),
		T(test_thread_safe_plugin_gets_concurrent_calls),
#undef T
	};
	CU_pSuite s = CU_add_suite("plugin_host", suite_init, suite_cleanup);

	if (!s)
		return;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
}
