/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Opening a site: everything is validated before anything is created or changed, and every
 * failure names the file, field or plugin.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "api_metrics.h"
#include "ca_contract.h"
#include "device_certs.h"
#include "engine.h"
#include "lifecycle.h"
#include "revoke.h"
#include "scheduler.h"
#include "site.h"
#include "status.h"
#include "test_util.h"

#define SITE_HEAD                                                                 \
	"{\"manifest_version\":1,\"site\":{\"name\":\"t\",\"service_point_fqdn\":" \
	"\"oob.contoso.com\",\"dns_suffix\":\"contoso.com\"},"                     \
	"\"plugin_path\":[\"" AMTPROV_TEST_PLUGIN_DIR "\"]"

static void quiet(void *ctx, int level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

struct fx {
	char *dir;
	char *manifest;
	char *state;
	char *db;
	struct alog *log;
};

static void fx_init(struct fx *f, const char *manifest_json)
{
	memset(f, 0, sizeof(*f));
	f->dir = tu_mkdtemp("site");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->dir);
	f->manifest = tu_write(f->dir, "site.json", manifest_json);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->manifest);
	CU_ASSERT_TRUE_FATAL(asprintf(&f->state, "%s/state", f->dir) > 0);
	CU_ASSERT_TRUE_FATAL(asprintf(&f->db, "%s/state/site.db", f->dir) > 0);
	f->log = alog_new("test", AMTPROV_LOG_DEBUG, ALOG_STDERR);
	alog_set_callback(f->log, quiet, NULL);
}

static void fx_done(struct fx *f)
{
	alog_free(f->log);
	tu_rmrf(f->dir);
	free(f->dir);
	free(f->manifest);
	free(f->state);
	free(f->db);
}

static int open_site(struct fx *f, int flags, struct site **s, struct amtprov_error *err)
{
	struct site_options o = {.manifest = f->manifest, .flags = flags, .log = f->log};
	struct manifest_problems p = {0};
	int rc;

	amtprov_error_clear(err);
	rc = site_open(&o, s, &p, err);
	manifest_problems_free(&p);
	return rc;
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void test_creates_database_only_when_asked(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;
	struct stat st;

	fx_init(&f, SITE_HEAD "}");
	/* Without SITE_CREATE_DB: a clear error, and nothing created. */
	CU_ASSERT_EQUAL(open_site(&f, SITE_NO_PLUGINS, &s, &err), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_STRING_EQUAL(err.where, f.db);
	CU_ASSERT_TRUE(tu_contains(err.msg, "amtprov db init"));
	CU_ASSERT_FALSE(exists(f.state));

	CU_ASSERT_EQUAL(open_site(&f, SITE_CREATE_DB, &s, &err), AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(stat(f.db, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 077, 0); /* holds OTP hashes: owner only */
	CU_ASSERT_EQUAL(stat(f.state, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 077, 0);
	site_close(s);
	fx_done(&f);
}

/* The test clock: every site_now() reads the file, so a test moves time without sleeping
 * (issue 6 "Tests drive the clock"); an unreadable file falls back to real time. */
static void test_test_clock_file_drives_site_now(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;
	char *clock;
	int64_t real;

	fx_init(&f, SITE_HEAD "}");
	clock = tu_write(f.dir, "clock", "2000000000\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(clock);
	setenv(SITE_TEST_CLOCK_ENV, clock, 1);
	CU_ASSERT_EQUAL(open_site(&f, SITE_NO_PLUGINS | SITE_CREATE_DB, &s, &err), AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(site_now(s), 2000000000);
	free(tu_write(f.dir, "clock", "2000086400"));
	CU_ASSERT_EQUAL(site_now(s), 2000086400);
	CU_ASSERT_EQUAL(site_clock(s), 2000086400);
	free(tu_write(f.dir, "clock", "not a time"));
	real = site_now(s);
	CU_ASSERT_TRUE(real > 1600000000 && real < 2000000000);
	unsetenv(SITE_TEST_CLOCK_ENV);
	site_close(s);
	free(clock);
	fx_done(&f);
}

/* A PROVISIONED device record named @p fqdn (its id in the result). */
static int64_t add_device(struct site *s, const char *fqdn, const char *uuid)
{
	struct store_device d;
	struct amtprov_error err;

	memset(&d, 0, sizeof(d));
	snprintf(d.fqdn, sizeof(d.fqdn), "%s", fqdn);
	snprintf(d.uuid, sizeof(d.uuid), "%s", uuid);
	snprintf(d.state, sizeof(d.state), "PROVISIONED");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_device_add(site_store(s), &d, "test", 1, &err), AMTPROV_OK);
	return d.id;
}

static int64_t add_cert_until(struct site *s, int64_t dev, int purpose, const char *ca,
			      char hexdigit, int64_t not_after)
{
	struct store_cert c;
	struct amtprov_error err;

	memset(&c, 0, sizeof(c));
	c.device_id = dev;
	snprintf(c.serial_hex, sizeof(c.serial_hex), "%c1", hexdigit);
	c.purpose = purpose;
	snprintf(c.ca_instance, sizeof(c.ca_instance), "%s", ca);
	memset(c.sha256, hexdigit, 64);
	c.not_before = 1;
	c.not_after = not_after;
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_cert_add(site_store(s), &c, 1, &err), AMTPROV_OK);
	return c.id;
}

static int64_t add_cert(struct site *s, int64_t dev, int purpose, const char *ca, char hexdigit)
{
	return add_cert_until(s, dev, purpose, ca, hexdigit, 2);
}

static const char *status_of(struct site *s, int64_t id, struct store_cert *c)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_cert_get(site_store(s), id, c, &err), AMTPROV_OK);
	return c->status;
}

static int count_ops(void *ctx, const struct store_pending *op)
{
	(void)op;
	(*(int *)ctx)++;
	return 0;
}

/* R-REV-02..04: the queue revokes only the purposes asked for (an update with 802.1X
 * templates revokes client certificates, never the web server one, R-REV-03/04), keeps
 * what a CA cannot do now and retries it, and records reason Superseded. */
static void test_revocation_queue_rules_and_retries(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;
	int64_t dev;
	struct store_cert c;
	int64_t web, client, down;
	int n = 0, done = 0, left = 0, ops = 0;

	fx_init(&f, SITE_HEAD ",\"plugins\":{"
			      "\"lab-ca\":{\"plugin\":\"fake-ca-issued\"},"
			      "\"down-ca\":{\"plugin\":\"fake-ca-unreachable\"}}}");
	CU_ASSERT_EQUAL_FATAL(open_site(&f, SITE_CREATE_DB, &s, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(plugin_host_start_all(site_plugins(s), &err), AMTPROV_OK);
	dev = add_device(s, "pc1.contoso.com", "11111111-2222-4333-8444-555555555555");
	web = add_cert(s, dev, AMTPROV_PURPOSE_WEB_SERVER, "lab-ca", 'A');
	client = add_cert(s, dev, AMTPROV_PURPOSE_CLIENT_8021X, "lab-ca", 'B');
	down = add_cert(s, dev, AMTPROV_PURPOSE_CLIENT_8021X, "down-ca", 'C');

	/* R-REV-04 (update with templates): client certificates only. */
	CU_ASSERT_EQUAL(revoke_queue_device(s, dev, REVOKE_CLIENT_8021X, 0, "update", &n, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_STRING_EQUAL(status_of(s, web, &c), STORE_CERT_ACTIVE); /* R-REV-03 */
	CU_ASSERT_STRING_EQUAL(status_of(s, client, &c), STORE_CERT_REVOKE_PENDING);
	/* Queueing again adds nothing. */
	CU_ASSERT_EQUAL(revoke_queue_device(s, dev, REVOKE_CLIENT_8021X, 0, "again", &n, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(n, 0);

	CU_ASSERT_EQUAL(revoke_process_due(s, &done, &left, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(done, 1);
	CU_ASSERT_EQUAL(left, 1);
	CU_ASSERT_STRING_EQUAL(status_of(s, client, &c), STORE_CERT_REVOKED);
	CU_ASSERT_EQUAL(c.revocation_reason, AMTPROV_REVOKE_SUPERSEDED);
	/* The unreachable CA's revocation stays queued, not due again until its backoff. */
	CU_ASSERT_STRING_EQUAL(status_of(s, down, &c), STORE_CERT_REVOKE_PENDING);
	CU_ASSERT_EQUAL(revoke_process_due(s, &done, &left, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(done + left, 0);
	CU_ASSERT_EQUAL(store_pending_list(site_store(s), dev, count_ops, &ops, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(ops, 1);
	plugin_host_stop_all(site_plugins(s));
	site_close(s);
	fx_done(&f);
}

/* R-REV-02: the revocation task offloads its CA calls to a worker; with no worker to be
 * had (the engine is stopping) it calls no CA on the event loop, says so, and the revocation
 * stays queued, done by the next run: never lost. */
static void test_revocation_task_without_worker_keeps_queue(void)
{
	struct engine_config cfg = {.max_in_flight = 4, .workers = 1, .actor = "test"};
	struct task_result out = {0};
	struct fx f;
	struct site *s = NULL;
	struct engine *e;
	struct sched *sc;
	struct task_env env = {0};
	struct amtprov_error err;
	int64_t dev;
	struct store_cert c;
	int64_t client;
	int n = 0, done = 0, left = 0;

	fx_init(&f, SITE_HEAD ",\"plugins\":{\"lab-ca\":{\"plugin\":\"fake-ca-issued\"}}}");
	CU_ASSERT_EQUAL_FATAL(open_site(&f, SITE_CREATE_DB, &s, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(plugin_host_start_all(site_plugins(s), &err), AMTPROV_OK);
	dev = add_device(s, "pc1.contoso.com", "11111111-2222-4333-8444-555555555555");
	client = add_cert(s, dev, AMTPROV_PURPOSE_CLIENT_8021X, "lab-ca", 'B');
	CU_ASSERT_EQUAL(revoke_queue_device(s, dev, REVOKE_CLIENT_8021X, 0, "update", &n, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(n, 1);

	amtprov_error_clear(&err);
	e = engine_new(site_store(s), NULL, &cfg, NULL, NULL, NULL, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	env.site = s;
	env.engine = e;
	sc = sched_start(&env, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
	engine_shutdown(e);

	task_revocation_queue(sched_env(sc), &out);
	CU_ASSERT_EQUAL(out.pending, 0);
	CU_ASSERT_NOT_EQUAL(out.code, AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.detail, "stay queued"));
	/* No CA was asked: still pending at the CA, still queued. */
	CU_ASSERT_STRING_EQUAL(status_of(s, client, &c), STORE_CERT_REVOKE_PENDING);
	sched_free(sc);
	engine_free(e);

	CU_ASSERT_EQUAL(revoke_process_due(s, &done, &left, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(done, 1);
	CU_ASSERT_EQUAL(left, 0);
	CU_ASSERT_STRING_EQUAL(status_of(s, client, &c), STORE_CERT_REVOKED);
	plugin_host_stop_all(site_plugins(s));
	site_close(s);
	fx_done(&f);
}

/* The metric's value for one expiry group of web server certificates (-1: no line). */
static long long expiry_gauge(const char *text, const char *group)
{
	char key[160];
	const char *at;

	snprintf(key, sizeof(key),
		 "amtprov_certificates{purpose=\"%s\",expires_within_days=\"%s\"} ",
		 ca_contract_purpose_name(AMTPROV_PURPOSE_WEB_SERVER), group);
	at = strstr(text, key);
	return at ? strtoll(at + strlen(key), NULL, 10) : -1;
}

/* R-PC-06 (monitoring): each active certificate is in exactly one days-to-expiry group; a
 * certificate is valid through its notAfter second, and one ending exactly N days from now
 * is within N days (a one-year certificate scraped in the second it was issued is in "365",
 * not "later": test_metrics_fleet was flaky on that boundary). */
static void test_metrics_expiry_groups_at_their_boundaries(void)
{
	const int64_t now = 1900000000, day = 86400;
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;
	int64_t dev;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	fx_init(&f, SITE_HEAD "}");
	CU_ASSERT_EQUAL_FATAL(open_site(&f, SITE_NO_PLUGINS | SITE_CREATE_DB, &s, &err), AMTPROV_OK);
	dev = add_device(s, "pc1.contoso.com", "11111111-2222-4333-8444-555555555555");
	add_cert_until(s, dev, AMTPROV_PURPOSE_WEB_SERVER, "lab-ca", '1', now - 1);       /* expired */
	add_cert_until(s, dev, AMTPROV_PURPOSE_WEB_SERVER, "lab-ca", '2', now);           /* 7 */
	add_cert_until(s, dev, AMTPROV_PURPOSE_WEB_SERVER, "lab-ca", '3', now + 7 * day); /* 7 */
	add_cert_until(s, dev, AMTPROV_PURPOSE_WEB_SERVER, "lab-ca", '4', now + 7 * day + 1);
	add_cert_until(s, dev, AMTPROV_PURPOSE_WEB_SERVER, "lab-ca", '5', now + 40 * day);
	add_cert_until(s, dev, AMTPROV_PURPOSE_WEB_SERVER, "lab-ca", '6', now + 365 * day);
	add_cert_until(s, dev, AMTPROV_PURPOSE_WEB_SERVER, "lab-ca", '7', now + 365 * day + 1);

	out = open_memstream(&text, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_EQUAL(api_metrics_write(s, now, out, &err), AMTPROV_OK);
	fclose(out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_EQUAL(expiry_gauge(text, "expired"), 1);
	CU_ASSERT_EQUAL(expiry_gauge(text, "7"), 2);
	CU_ASSERT_EQUAL(expiry_gauge(text, "30"), 1);
	CU_ASSERT_EQUAL(expiry_gauge(text, "40"), 1);
	CU_ASSERT_EQUAL(expiry_gauge(text, "90"), 0);
	CU_ASSERT_EQUAL(expiry_gauge(text, "365"), 1);
	CU_ASSERT_EQUAL(expiry_gauge(text, "later"), 1);
	free(text);
	site_close(s);
	fx_done(&f);
}

/* R-8021X-06: a client certificate with renew_within_days (42) or fewer left is due, one
 * with 43 is not. R-REV-04: the 802.1X step's end revokes every other active client
 * certificate of the device but those it bound; an update's mark names the certificates
 * recorded before it. */
static void test_client_certificates_due_kept_and_marked(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;
	int64_t dev;
	struct store_cert c, first;
	int64_t now, due, fresh, web;
	int n = 0;

	fx_init(&f, SITE_HEAD ",\"plugins\":{\"lab-ca\":{\"plugin\":\"fake-ca-issued\"}}}");
	CU_ASSERT_EQUAL_FATAL(open_site(&f, SITE_CREATE_DB, &s, &err), AMTPROV_OK);
	dev = add_device(s, "pc2.contoso.com", "11111111-2222-4333-8444-666666666666");
	now = site_now(s);
	due = add_cert_until(s, dev, AMTPROV_PURPOSE_CLIENT_8021X, "lab-ca", 'D', now + 42 * 86400);
	fresh = add_cert_until(s, dev, AMTPROV_PURPOSE_CLIENT_8021X, "lab-ca", 'E',
			       now + 43 * 86400);
	web = add_cert_until(s, dev, AMTPROV_PURPOSE_WEB_SERVER, "lab-ca", 'F', now + 86400);

	CU_ASSERT_EQUAL(device_certs_client_due(s, dev, &first), 1);
	CU_ASSERT_EQUAL(first.id, due);
	CU_ASSERT_TRUE(device_certs_due(s, &first));
	CU_ASSERT_EQUAL(store_cert_get(site_store(s), fresh, &c, &err), AMTPROV_OK);
	CU_ASSERT_FALSE(device_certs_due(s, &c));

	CU_ASSERT_EQUAL(device_certs_8021x_mark_update(s, dev, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(device_certs_8021x_mark_update(s, dev, &err), AMTPROV_OK); /* replaces */
	CU_ASSERT_EQUAL(device_certs_8021x_update_mark(s, dev, 0), web + 1);
	CU_ASSERT_EQUAL(device_certs_8021x_update_mark(s, dev, 1), web + 1);
	CU_ASSERT_EQUAL(device_certs_8021x_update_mark(s, dev, 0), 0); /* removed */

	CU_ASSERT_EQUAL(revoke_queue_device_except(s, dev, REVOKE_CLIENT_8021X, &fresh, 1,
						   "bound", &n, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_STRING_EQUAL(status_of(s, due, &c), STORE_CERT_REVOKE_PENDING);
	CU_ASSERT_STRING_EQUAL(status_of(s, fresh, &c), STORE_CERT_ACTIVE);
	CU_ASSERT_STRING_EQUAL(status_of(s, web, &c), STORE_CERT_ACTIVE);
	site_close(s);
	fx_done(&f);
}

static void test_bad_manifest_changes_nothing(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;

	fx_init(&f, SITE_HEAD ",\"bogus\":1}");
	CU_ASSERT_EQUAL(open_site(&f, SITE_CREATE_DB, &s, &err), AMTPROV_E_CONFIG);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_TRUE(tu_contains(err.where, "site.json"));
	CU_ASSERT_TRUE(tu_contains(err.msg, "/bogus"));
	CU_ASSERT_FALSE(exists(f.state));
	fx_done(&f);
}

static void test_corrupt_database_is_refused_untouched(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;
	char *before = NULL, *after = NULL;
	size_t n1 = 0, n2 = 0;
	FILE *fp;

	fx_init(&f, SITE_HEAD "}");
	CU_ASSERT_EQUAL_FATAL(mkdir(f.state, 0700), 0);
	fp = fopen(f.db, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	for (int i = 0; i < 8192; i++)
		fputc((i * 7919) & 0xff, fp);
	fclose(fp);
	fp = fopen(f.db, "rb");
	before = malloc(8192);
	n1 = fread(before, 1, 8192, fp);
	fclose(fp);

	CU_ASSERT_EQUAL(open_site(&f, SITE_CREATE_DB, &s, &err), AMTPROV_E_CORRUPT);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_STRING_EQUAL(err.where, f.db);

	fp = fopen(f.db, "rb");
	after = malloc(8192);
	n2 = fread(after, 1, 8192, fp);
	fclose(fp);
	CU_ASSERT_EQUAL(n1, n2);
	CU_ASSERT_EQUAL(memcmp(before, after, n1), 0);
	free(before);
	free(after);
	fx_done(&f);
}

static void test_missing_plugin_names_it_and_creates_nothing(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;

	fx_init(&f, SITE_HEAD ",\"plugins\":{\"lab-ca\":{\"plugin\":\"no-such-ca\"}},"
			      "\"certificates\":{\"web_server\":{\"ca\":\"lab-ca\"}}}");
	CU_ASSERT_EQUAL(open_site(&f, SITE_CREATE_DB, &s, &err), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_TRUE(tu_contains(err.msg, "no-such-ca"));
	CU_ASSERT_TRUE(tu_contains(err.msg, "/plugins/lab-ca"));
	CU_ASSERT_FALSE(exists(f.db));
	fx_done(&f);
}

static void test_foreign_abi_plugin_is_refused_naming_the_file(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;

	fx_init(&f, SITE_HEAD ",\"plugins\":{\"lab-ca\":{\"plugin\":\"bad-abi-major\"}},"
			      "\"certificates\":{\"web_server\":{\"ca\":\"lab-ca\"}}}");
	CU_ASSERT_EQUAL(open_site(&f, SITE_CREATE_DB, &s, &err), AMTPROV_E_ABI);
	CU_ASSERT_TRUE(tu_contains(err.where, "bad-abi-major.so"));
	CU_ASSERT_TRUE(tu_contains(err.msg, "ABI"));
	CU_ASSERT_FALSE(exists(f.db));
	fx_done(&f);
}

/* R-CA-05 / STYLE 17: what the manifest asks of a plugin is checked at load time. */
static void test_missing_capability_is_a_load_error(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;

	fx_init(&f, SITE_HEAD ",\"plugins\":{\"lab-ca\":{\"plugin\":\"thread-safe-ca\"}},"
			      "\"certificates\":{\"web_server\":{\"ca\":\"lab-ca\"}}}");
	CU_ASSERT_EQUAL(open_site(&f, SITE_CREATE_DB, &s, &err), AMTPROV_E_CONFIG);
	CU_ASSERT_STRING_EQUAL(err.where, "/certificates/web_server/ca");
	CU_ASSERT_TRUE(tu_contains(err.msg, "ca:purpose-web-server"));
	CU_ASSERT_FALSE(exists(f.db));
	fx_done(&f);
}

static void test_plugin_of_wrong_kind_is_refused(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;

	fx_init(&f, SITE_HEAD ",\"plugins\":{\"lab-ca\":{\"plugin\":\"fake-credstore\"}},"
			      "\"certificates\":{\"web_server\":{\"ca\":\"lab-ca\"}}}");
	CU_ASSERT_EQUAL(open_site(&f, SITE_CREATE_DB, &s, &err), AMTPROV_E_CONFIG);
	CU_ASSERT_TRUE(tu_contains(err.msg, "credstore"));
	fx_done(&f);
}

static void test_loads_a_complete_site_with_plugins(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;

	fx_init(&f, SITE_HEAD ",\"plugins\":{"
			      "\"lab-ca\":{\"plugin\":\"fake-ca-issued\"},"
			      "\"second-ca\":{\"plugin\":\"fake-ca-issued\"},"
			      "\"creds\":{\"plugin\":\"fake-credstore\"},"
			      "\"ad\":{\"plugin\":\"fake-directory\"}},"
			      "\"credentials\":{\"store\":\"creds\"},"
			      "\"certificates\":{\"web_server\":{\"ca\":\"lab-ca\"}},"
			      "\"amt\":{\"directory\":\"ad\"}}");
	CU_ASSERT_EQUAL_FATAL(open_site(&f, SITE_CREATE_DB, &s, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(plugin_host_count(site_plugins(s)), 4);
	CU_ASSERT_PTR_NOT_NULL(plugin_host_find(site_plugins(s), "second-ca"));
	CU_ASSERT_STRING_EQUAL(site_manifest(s)->site_name, "t");
	site_close(s);
	fx_done(&f);
}

struct status_seen {
	int n;
	uint32_t ids[8];
};

static int status_cb(void *ctx, const struct store_status_msg *m)
{
	struct status_seen *ss = ctx;

	if (ss->n < 8)
		ss->ids[ss->n] = m->msg_id;
	ss->n++;
	return 0;
}

static void *status_from_thread(void *arg)
{
	site_status(arg, STATUS_PROVCERT_EXPIRING_SOON, NULL, "14 days left");
	return NULL;
}

/* R-PC-06: status messages are stored and queryable; from any thread. */
static void test_status_messages_are_stored_from_any_thread(void)
{
	struct fx f;
	struct site *s = NULL;
	struct amtprov_error err;
	struct status_seen seen = {0};
	struct store_status_filter flt = {.min_severity = -1};
	pthread_t t;

	fx_init(&f, SITE_HEAD "}");
	CU_ASSERT_EQUAL_FATAL(open_site(&f, SITE_CREATE_DB | SITE_NO_PLUGINS, &s, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(site_status(s, STATUS_PROVCERT_EXPIRING, NULL, "40 days left"), AMTPROV_OK);
	CU_ASSERT_EQUAL(site_status(s, 4242, NULL, "x"), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_EQUAL(pthread_create(&t, NULL, status_from_thread, s), 0);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(store_status_list(site_store(s), &flt, status_cb, &seen, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(seen.n, 2);
	flt.msg_id = 7211;
	seen.n = 0;
	CU_ASSERT_EQUAL(store_status_list(site_store(s), &flt, status_cb, &seen, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(seen.n, 1);
	CU_ASSERT_EQUAL(seen.ids[0], 7211);
	site_close(s);
	fx_done(&f);
}

void register_site_tests(void);
void register_site_tests(void)
{
	CU_pSuite s = CU_add_suite("site", NULL, NULL);

	CU_add_test(s, "the database is created only when asked, owner-only",
		    test_creates_database_only_when_asked);
	CU_add_test(s, "the test clock file drives site_now and the plugins' clock",
		    test_test_clock_file_drives_site_now);
	CU_add_test(s, "revocation queue: purposes per rule (R-REV-03/04), retried, never lost",
		    test_revocation_queue_rules_and_retries);
	CU_add_test(s, "the revocation task with no worker calls no CA on the loop and keeps "
			"the queue (R-REV-02)",
		    test_revocation_task_without_worker_keeps_queue);
	CU_add_test(s, "metrics: a certificate is in one expiry group, boundaries inclusive "
			"(R-PC-06)",
		    test_metrics_expiry_groups_at_their_boundaries);
	CU_add_test(s, "802.1X client certificates: due at 42 days, kept when bound, update mark "
		       "(R-8021X-06, R-REV-04)", test_client_certificates_due_kept_and_marked);
	CU_add_test(s, "a bad manifest is refused and nothing is created",
		    test_bad_manifest_changes_nothing);
	CU_add_test(s, "a corrupt database is refused and left byte-for-byte untouched",
		    test_corrupt_database_is_refused_untouched);
	CU_add_test(s, "a missing plugin is named and nothing is created",
		    test_missing_plugin_names_it_and_creates_nothing);
	CU_add_test(s, "a plugin with a foreign ABI is refused naming the file",
		    test_foreign_abi_plugin_is_refused_naming_the_file);
	CU_add_test(s, "a capability the manifest needs but the plugin lacks is a load error (R-CA-05)",
		    test_missing_capability_is_a_load_error);
	CU_add_test(s, "a plugin of the wrong kind is refused", test_plugin_of_wrong_kind_is_refused);
	CU_add_test(s, "a complete site loads with two instances of one plugin",
		    test_loads_a_complete_site_with_plugins);
	CU_add_test(s, "status messages are stored and queryable from any thread (R-PC-06)",
		    test_status_messages_are_stored_from_any_thread);
}
