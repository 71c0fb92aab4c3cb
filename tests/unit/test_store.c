/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the site database (core/store/store.h), against both back ends.
 *
 * Suite "store" (SQLite): every test works in a fresh mkdtemp directory under $TMPDIR (or
 * /tmp) that the suite's teardown removes, so parallel runs never share a file. Fixtures
 * in AMTPROV_FIXTURES_DIR/db are copied before use: a fixture is never opened in place.
 *
 * Suite "store_pg" (PostgreSQL): the same tests, except those about SQLite's files, plus
 * PostgreSQL's own, each on a fresh database created on the server that AMTPROV_TEST_PG
 * (a libpq conninfo of an administrative database) names and dropped afterwards. ctest
 * runs it through tests/pg/with_pg.sh, which starts a private server; without
 * AMTPROV_TEST_PG every test of the suite fails (never skipped silently).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <amtprov/ca.h>
#include <amtprov/types.h>

#include "store.h"
#include "store_sync.h"

#ifndef AMTPROV_FIXTURES_DIR
#error "AMTPROV_FIXTURES_DIR must name tests/fixtures (absolute path)"
#endif


void register_store_tests(void);
void register_store_pg_tests(void);

static char tdir[4096];
static char dbpath[4200];
/* PostgreSQL suite: the server's administrative conninfo and this test's database. */
static const char *pg_admin;
static char pg_dbname[64];
static int pg_seq;

/* ---- helpers ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int make_test_dir(void)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (!base || !base[0])
		base = "/tmp";
	n = snprintf(tdir, sizeof(tdir), "%s/amtprov-store-XXXXXX", base);
	if (n < 0 || (size_t)n >= sizeof(tdir) || !mkdtemp(tdir))
		return -1;
	snprintf(dbpath, sizeof(dbpath), "%s/site.db", tdir);
	return 0;
}

static void test_setup(void)
{
	/* A fresh directory per test: no test sees another's database. */
	if (make_test_dir() != 0)
		tdir[0] = '\0';
}

static void test_teardown(void)
{
	if (tdir[0])
		nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	tdir[0] = '\0';
}

/* Runs one statement on the administrative database; 0 on success. */
static int pg_admin_exec(const char *conninfo, const char *sql)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r;
	int ok;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "test_store: %s", PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	r = PQexec(c, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "test_store: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok ? 0 : -1;
}

/* Setup of the PostgreSQL suite: a new, empty database; dbpath is its conninfo. */
static void pg_test_setup(void)
{
	char sql[128];

	dbpath[0] = '\0';
	tdir[0] = '\0';
	pg_dbname[0] = '\0';
	pg_admin = getenv("AMTPROV_TEST_PG");
	if (!pg_admin || !pg_admin[0]) {
		fprintf(stderr, "test_store: AMTPROV_TEST_PG is not set (run the suite through "
				"tests/pg/with_pg.sh)\n");
		return;
	}
	snprintf(pg_dbname, sizeof(pg_dbname), "amtprov_t%d_%d", (int)getpid(), ++pg_seq);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", pg_dbname);
	if (pg_admin_exec(pg_admin, sql) != 0) {
		pg_dbname[0] = '\0';
		return;
	}
	/* Some tests write files beside the database (copies, fixtures): a directory too;
	 * it sets dbpath to a file, replaced here by the database's conninfo. */
	test_setup();
	snprintf(dbpath, sizeof(dbpath), "%s dbname=%s", pg_admin, pg_dbname);
}

static void pg_test_teardown(void)
{
	char sql[128];

	test_teardown();
	if (pg_dbname[0]) {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", pg_dbname);
		pg_admin_exec(pg_admin, sql);
	}
	pg_dbname[0] = '\0';
}

/* Runs SQL on this test's own PostgreSQL database (behind the store's back). */
static int pg_test_exec(const char *sql)
{
	return pg_admin_exec(dbpath, sql);
}

static struct store *open_new(void)
{
	struct amtprov_error err;
	struct store *st = NULL;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_open(dbpath, STORE_OPEN_CREATE, &st, &err), AMTPROV_OK);
	return st;
}

static struct store *reopen(void)
{
	struct amtprov_error err;
	struct store *st = NULL;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_open(dbpath, 0, &st, &err), AMTPROV_OK);
	return st;
}

static void make_device(struct store_device *d, int n)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->fqdn, sizeof(d->fqdn), "host%d.contoso.com", n);
	snprintf(d->uuid, sizeof(d->uuid), "%08x-0000-4000-8000-%012x", (unsigned)n,
		 (unsigned)n);
	snprintf(d->amt_version, sizeof(d->amt_version), "11.8.50");
	snprintf(d->wired_ip, sizeof(d->wired_ip), "10.0.0.%d", n % 250 + 1);
	snprintf(d->otp_hash, sizeof(d->otp_hash), "ab12cd34");
	snprintf(d->state, sizeof(d->state), "NEED_PRECHECK");
}

static int64_t add_device(struct store *st, int n)
{
	struct store_device d;
	struct amtprov_error err;

	make_device(&d, n);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_device_add(st, &d, "test", 1000, &err), AMTPROV_OK);
	return d.id;
}

static void make_cert(struct store_cert *c, int64_t device_id, int n, int purpose,
		      int64_t not_after)
{
	memset(c, 0, sizeof(*c));
	c->device_id = device_id;
	snprintf(c->serial_hex, sizeof(c->serial_hex), "%04X", n);
	snprintf(c->issuer, sizeof(c->issuer), "CN=Contoso Issuing CA,DC=contoso,DC=com");
	snprintf(c->subject, sizeof(c->subject), "CN=host%d.contoso.com", n);
	c->purpose = purpose;
	snprintf(c->template_name, sizeof(c->template_name), "AMTWebServer");
	snprintf(c->ca_instance, sizeof(c->ca_instance), "corp-ca");
	snprintf(c->sha256, sizeof(c->sha256), "%064x", n + 1);
	c->not_before = 1000;
	c->not_after = not_after;
}

/* Reads a whole file into a malloc'd buffer. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	*len = 0;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else if (buf) {
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static int write_file(const char *path, const unsigned char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(buf, 1, len, f) == len;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Overwrites @p len bytes at @p off of a file in place. */
static int patch_file(const char *path, long off, const void *bytes, size_t len)
{
	FILE *f = fopen(path, "r+b");
	int ok;

	if (!f)
		return -1;
	ok = fseek(f, off, SEEK_SET) == 0 && fwrite(bytes, 1, len, f) == len;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Counters for list callbacks. */
struct counter {
	int n;
	int64_t ids[64];
	char text[64][STORE_TEXT_SIZE + STORE_SHORT_SIZE];
};

static int count_audit(void *ctx, const struct store_audit *a)
{
	struct counter *c = ctx;

	if (c->n < 64) {
		c->ids[c->n] = a->id;
		snprintf(c->text[c->n], sizeof(c->text[0]), "%s|%s", a->action, a->detail);
	}
	c->n++;
	return 0;
}

static int count_cert(void *ctx, const struct store_cert *cert)
{
	struct counter *c = ctx;

	if (c->n < 64) {
		c->ids[c->n] = cert->id;
		snprintf(c->text[c->n], sizeof(c->text[0]), "%s", cert->serial_hex);
	}
	c->n++;
	return 0;
}

static int count_status(void *ctx, const struct store_status_msg *m)
{
	struct counter *c = ctx;

	if (c->n < 64) {
		c->ids[c->n] = m->id;
		snprintf(c->text[c->n], sizeof(c->text[0]), "%s", m->text);
	}
	c->n++;
	return 0;
}

static int count_pending(void *ctx, const struct store_pending *p)
{
	struct counter *c = ctx;

	if (c->n < 64) {
		c->ids[c->n] = p->id;
		snprintf(c->text[c->n], sizeof(c->text[0]), "%s", p->kind);
	}
	c->n++;
	return 0;
}

static int count_device(void *ctx, const struct store_device *d)
{
	struct counter *c = ctx;

	if (c->n < 64) {
		c->ids[c->n] = d->id;
		snprintf(c->text[c->n], sizeof(c->text[0]), "%s", d->fqdn);
	}
	c->n++;
	return 0;
}

static int audit_count(struct store *st, int64_t device_id)
{
	struct counter c = { 0 };
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_audit_list(st, device_id, 0, count_audit, &c, &err), AMTPROV_OK);
	return c.n;
}

/* ---- open, create, schema ---- */

/* The database keeps what was written across close and reopen; the schema version is set
 * on creation. (Architecture: site database; R-PROV-13.) */
static void test_create_close_reopen_keeps_data(void)
{
	struct store *st = open_new();
	struct store_device d;
	struct amtprov_error err;
	int64_t id;

	CU_ASSERT_EQUAL(store_schema_version(st), STORE_SCHEMA_VERSION);
	CU_ASSERT_STRING_EQUAL(store_path(st), dbpath);
	id = add_device(st, 1);
	CU_ASSERT(id > 0);
	store_close(st);

	st = reopen();
	CU_ASSERT_EQUAL(store_schema_version(st), STORE_SCHEMA_VERSION);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.fqdn, "host1.contoso.com");
	CU_ASSERT_STRING_EQUAL(d.state, "NEED_PRECHECK");
	CU_ASSERT_EQUAL(d.created_at, 1000);
	CU_ASSERT_EQUAL(store_check(st, &err), AMTPROV_OK);
	store_close(st);
}

/* A new database holds OTP hashes and the audit trail: mode 0600 whatever the umask, and
 * its WAL file too. */
static void test_new_database_file_is_mode_0600(void)
{
	struct store *st;
	struct stat sb;
	char wal[4300];
	mode_t old = umask(022);

	st = open_new();
	umask(old);
	CU_ASSERT_EQUAL_FATAL(stat(dbpath, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	add_device(st, 1); /* forces the WAL file into existence */
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	CU_ASSERT_EQUAL_FATAL(stat(wal, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	store_close(st);
}

/* Opening a missing file without CREATE is E_NOT_FOUND and creates nothing. */
static void test_missing_file_without_create_is_not_found_and_not_created(void)
{
	struct amtprov_error err;
	struct store *st = NULL;
	struct stat sb;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open(dbpath, 0, &st, &err), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_STRING_EQUAL(err.where, dbpath);
	CU_ASSERT_NOT_EQUAL(stat(dbpath, &sb), 0);
	CU_ASSERT_EQUAL(errno, ENOENT);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open(dbpath, STORE_OPEN_READONLY, &st, &err),
			AMTPROV_E_NOT_FOUND);
	CU_ASSERT_NOT_EQUAL(stat(dbpath, &sb), 0);
}

/* Opens a copy of @p src and expects E_CORRUPT with the path and a "restore from backup"
 * hint, and the copy byte for byte unchanged afterwards. */
static void expect_corrupt_untouched(const char *src_path, int flags)
{
	unsigned char *before, *after;
	size_t blen, alen;
	struct amtprov_error err;
	struct store *st = NULL;

	before = slurp(src_path, &blen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(before);
	CU_ASSERT_EQUAL_FATAL(write_file(dbpath, before, blen), 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open(dbpath, flags, &st, &err), AMTPROV_E_CORRUPT);
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_STRING_EQUAL(err.where, dbpath);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "restore"));
	after = slurp(dbpath, &alen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(after);
	CU_ASSERT_EQUAL(alen, blen);
	CU_ASSERT(alen == blen && memcmp(before, after, blen) == 0);
	free(before);
	free(after);
}

/* Garbage, text, truncated and damaged databases are refused with E_CORRUPT and left as
 * they were, so the operator can still restore or inspect them. */
static void test_corrupt_fixtures_are_refused_and_left_untouched(void)
{
	static const char *const names[] = {
		"garbage.db", "text.db", "truncated-mid-page.db", "truncated-pages.db",
		"damaged-page.db", "short.db",
	};
	char src[4300];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(src, sizeof(src), "%s/db/%s", AMTPROV_FIXTURES_DIR, names[i]);
		expect_corrupt_untouched(src, 0);
		expect_corrupt_untouched(src, STORE_OPEN_CREATE);
		expect_corrupt_untouched(src, STORE_OPEN_READONLY);
	}
}

/* A database damaged after it was written (a b-tree page overwritten) fails quick_check
 * at open: E_CORRUPT, file untouched. */
static void test_damaged_page_fails_quick_check(void)
{
	struct store *st = open_new();
	unsigned char junk[4096];
	char copy[4300];
	unsigned char *bytes;
	size_t len;

	for (int i = 0; i < 40; i++)
		add_device(st, i);
	store_close(st);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 37 + 11);
	/* Page 2 is the devices table's root: the first table the migration creates. */
	CU_ASSERT_EQUAL_FATAL(patch_file(dbpath, 4096, junk, sizeof(junk)), 0);
	snprintf(copy, sizeof(copy), "%s/damaged-src.db", tdir);
	bytes = slurp(dbpath, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
	CU_ASSERT_EQUAL_FATAL(write_file(copy, bytes, len), 0);
	free(bytes);
	expect_corrupt_untouched(copy, 0);
}

/* A schema newer than this build is refused untouched, telling both versions. */
static void test_future_schema_version_is_refused_untouched(void)
{
	static const unsigned char v99[4] = { 0, 0, 0, 99 };
	struct store *st = open_new();
	char copy[4300];
	unsigned char *bytes;
	size_t len;

	add_device(st, 1);
	store_close(st);
	/* user_version is the big-endian integer at offset 60 of the header. */
	CU_ASSERT_EQUAL_FATAL(patch_file(dbpath, 60, v99, sizeof(v99)), 0);
	snprintf(copy, sizeof(copy), "%s/future.db", tdir);
	bytes = slurp(dbpath, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
	CU_ASSERT_EQUAL_FATAL(write_file(copy, bytes, len), 0);
	free(bytes);
	expect_corrupt_untouched(copy, 0);

	{
		struct amtprov_error err;

		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL(store_open(dbpath, 0, &st, &err), AMTPROV_E_CORRUPT);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "newer amtprov (schema 99"));
	}
}

/* An empty (0-byte) file is refused without CREATE, and with CREATE becomes a new site
 * database with mode 0600. */
static void test_empty_file_needs_create_and_becomes_0600(void)
{
	struct amtprov_error err;
	struct store *st = NULL;
	struct stat sb;
	int fd = open(dbpath, O_WRONLY | O_CREAT | O_EXCL, 0644);

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open(dbpath, 0, &st, &err), AMTPROV_E_CORRUPT);
	CU_ASSERT_EQUAL_FATAL(stat(dbpath, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_size, 0);
	st = open_new();
	CU_ASSERT_EQUAL(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
	CU_ASSERT_EQUAL_FATAL(stat(dbpath, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
}

/* A read-only handle reads and refuses writes without touching the file. */
static void test_readonly_handle_reads_and_refuses_writes(void)
{
	struct store *st = open_new();
	struct store_device d;
	struct amtprov_error err;
	int64_t id = add_device(st, 7);

	store_close(st);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_open(dbpath, STORE_OPEN_READONLY, &st, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	make_device(&d, 8);
	CU_ASSERT_EQUAL(store_device_add(st, &d, "test", 1, &err), AMTPROV_E_STATE);
	store_close(st);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open(dbpath, STORE_OPEN_READONLY | STORE_OPEN_CREATE, &st, &err),
			AMTPROV_E_INVALID);
}

/* ---- devices ---- */

/* Devices are found by FQDN whatever its case, and by UUID when the key looks like one. */
static void test_device_find_by_fqdn_case_insensitive_and_by_uuid(void)
{
	struct store *st = open_new();
	struct store_device d, got;
	struct amtprov_error err;

	make_device(&d, 42);
	snprintf(d.fqdn, sizeof(d.fqdn), "Host42.Contoso.COM");
	snprintf(d.uuid, sizeof(d.uuid), "4C4C4544-0042-3510-8052-B4C04F4E3632");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_device_add(st, &d, "test", 50, &err), AMTPROV_OK);
	/* Stored lower case, as the header promises. */
	CU_ASSERT_STRING_EQUAL(d.fqdn, "host42.contoso.com");

	CU_ASSERT_EQUAL(store_device_find(st, "HOST42.contoso.com", &got, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(got.id, d.id);
	CU_ASSERT_STRING_EQUAL(got.uuid, "4c4c4544-0042-3510-8052-b4c04f4e3632");
	memset(&got, 0, sizeof(got));
	CU_ASSERT_EQUAL(store_device_find(st, "4C4C4544-0042-3510-8052-B4C04F4E3632", &got, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(got.id, d.id);
	CU_ASSERT_EQUAL(got.wireless_capable, 0);
	CU_ASSERT_STRING_EQUAL(got.amt_version, "11.8.50");
	CU_ASSERT_EQUAL(store_device_find(st, "nohost.contoso.com", &got, &err),
			AMTPROV_E_NOT_FOUND);
	store_close(st);
}

/* A second device with a taken FQDN or UUID is E_EXISTS naming the field; nothing written. */
static void test_device_duplicate_fqdn_or_uuid_is_exists_naming_field(void)
{
	struct store *st = open_new();
	struct store_device d;
	struct amtprov_error err;

	add_device(st, 1);
	make_device(&d, 2);
	snprintf(d.fqdn, sizeof(d.fqdn), "HOST1.contoso.com");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_add(st, &d, "test", 1, &err), AMTPROV_E_EXISTS);
	CU_ASSERT_EQUAL(strncmp(err.msg, "fqdn", 4), 0);
	CU_ASSERT_STRING_EQUAL(err.where, dbpath);

	make_device(&d, 3);
	snprintf(d.uuid, sizeof(d.uuid), "00000001-0000-4000-8000-000000000001");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_add(st, &d, "test", 1, &err), AMTPROV_E_EXISTS);
	CU_ASSERT_EQUAL(strncmp(err.msg, "uuid", 4), 0);
	CU_ASSERT_EQUAL(audit_count(st, 0), 1);
	store_close(st);
}

/* Transitions are compare-and-set: the right from-state moves the device, a wrong one is
 * E_STATE with nothing changed, an unknown id is E_NOT_FOUND. (R-PROV-13) */
static void test_transition_is_compare_and_set(void)
{
	struct store *st = open_new();
	struct store_device before, after;
	struct amtprov_error err;
	int64_t id = add_device(st, 1);

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_transition(st, id, "NEED_PRECHECK", "PRECHECKING", 0, NULL,
						0, "engine", 2000, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &before, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(before.state, "PRECHECKING");
	CU_ASSERT_EQUAL(before.state_since, 2000);

	CU_ASSERT_EQUAL(store_device_transition(st, id, "NEED_PRECHECK", "HAVE_CERT", 0, NULL, 0,
						"engine", 3000, &err),
			AMTPROV_E_STATE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "PRECHECKING"));
	CU_ASSERT_EQUAL(store_device_get(st, id, &after, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(memcmp(&before, &after, sizeof(before)), 0);
	CU_ASSERT_EQUAL(audit_count(st, id), 2); /* device.add + one state */

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_transition(st, 999, "NEED_PRECHECK", "PRECHECKING", 0, NULL,
						0, "engine", 3000, &err),
			AMTPROV_E_NOT_FOUND);
	CU_ASSERT_EQUAL(audit_count(st, 0), 2);
	store_close(st);
}

/* The crash-loop guard's count (R-PROV-13): +1 entering a step, kept by the rewind, -1 by an
 * orderly stop (never below 0), 0 when an outcome is recorded; same compare-and-set. */
static void test_step_in_flight_count(void)
{
	struct store *st = open_new();
	struct amtprov_error err;
	struct store_device d;
	int64_t id = add_device(st, 1);

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.in_flight, 0);
	for (int i = 1; i <= 3; i++) {
		CU_ASSERT_EQUAL(store_device_step(st, id, "NEED_PRECHECK", "PRECHECKING",
						  STORE_STEP_BEGIN, 0, "", 0, 0, "engine", 2000, &err),
				AMTPROV_OK);
		CU_ASSERT_EQUAL(store_device_step(st, id, "PRECHECKING", "NEED_PRECHECK",
						  STORE_STEP_KEEP, 0, "restart", 0, 0, "engine",
						  2000, &err),
				AMTPROV_OK);
		CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
		CU_ASSERT_EQUAL(d.in_flight, i);
	}
	/* A compare-and-set that does not match changes no count either. */
	CU_ASSERT_EQUAL(store_device_step(st, id, "PRECHECKING", "FAILED", STORE_STEP_BEGIN, 0, "",
					  0, 0, "engine", 2000, &err),
			AMTPROV_E_STATE);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.in_flight, 3);
	/* An orderly stop takes one back. */
	CU_ASSERT_EQUAL(store_device_step(st, id, "NEED_PRECHECK", "PRECHECKING", STORE_STEP_BEGIN,
					  0, "", 0, 0, "engine", 2000, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_step(st, id, "PRECHECKING", "PRECHECKING", STORE_STEP_UNDO, 0,
					  "", 0, 0, "engine", 2000, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.in_flight, 3);
	/* The step's outcome clears it (plain transitions are outcomes). */
	CU_ASSERT_EQUAL(store_device_transition(st, id, "PRECHECKING", "HAVE_CERT", 0, NULL, 0,
						"engine", 2000, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.in_flight, 0);
	/* UNDO never goes below 0; an unknown step kind is refused. */
	CU_ASSERT_EQUAL(store_device_step(st, id, "HAVE_CERT", "HAVE_CERT", STORE_STEP_UNDO, 0, "",
					  0, 0, "engine", 2000, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.in_flight, 0);
	CU_ASSERT_EQUAL(store_device_step(st, id, "HAVE_CERT", "X", (enum store_step)9, 0, "", 0,
					  0, "engine", 2000, &err),
			AMTPROV_E_INVALID);
	store_close(st);
}

/* Migration 3 -> 4 on a database with devices: they keep their data, in_flight 0. */
static void test_migration_3_to_5_keeps_devices(void)
{
	struct store *st = open_new();
	struct amtprov_error err;
	struct store_device d;
	sqlite3 *db = NULL;
	int64_t id = add_device(st, 1);

	store_close(st);
	/* Back to schema 3 as an older amtprov left it. */
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(dbpath, &db), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "DROP INDEX devices_lease; "
					 "ALTER TABLE devices DROP COLUMN lease_owner; "
					 "ALTER TABLE devices DROP COLUMN lease_until; "
					 "ALTER TABLE devices DROP COLUMN in_flight; "
					 "ALTER TABLE maintenance_tasks DROP COLUMN lease_owner; "
					 "ALTER TABLE maintenance_tasks DROP COLUMN lease_until; "
					 "PRAGMA user_version = 3;", NULL, NULL, NULL),
			SQLITE_OK);
	sqlite3_close(db);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_open(dbpath, 0, &st, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_schema_version(st), STORE_SCHEMA_VERSION);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.in_flight, 0);
	CU_ASSERT_STRING_EQUAL(d.lease_owner, "");
	CU_ASSERT_EQUAL(d.lease_until, 0);
	CU_ASSERT_STRING_EQUAL(d.state, "NEED_PRECHECK");
	store_close(st);
}

/* Each transition writes one audit record "state" with "FROM -> TO[: error]". (R-PROV-13) */
static void test_transition_writes_one_audit_record(void)
{
	struct store *st = open_new();
	struct counter c = { 0 };
	struct amtprov_error err;
	struct store_device d;
	int64_t id = add_device(st, 1);

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_transition(st, id, "NEED_PRECHECK", "PRECHECKING", 0, "",
						0, "engine", 2000, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_transition(st, id, "PRECHECKING", "FAILED_PRECHECK",
						AMTPROV_E_DENIED, "AMT is already provisioned",
						0, "engine", 2001, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_audit_list(st, id, 0, count_audit, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(c.n, 3);
	CU_ASSERT_STRING_EQUAL(c.text[0], "device.add|host1.contoso.com "
					  "uuid=00000001-0000-4000-8000-000000000001 "
					  "state=NEED_PRECHECK");
	CU_ASSERT_STRING_EQUAL(c.text[1], "state|NEED_PRECHECK -> PRECHECKING");
	CU_ASSERT_STRING_EQUAL(c.text[2], "state|PRECHECKING -> FAILED_PRECHECK: AMT is already "
					  "provisioned");
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.last_error_code, AMTPROV_E_DENIED);
	CU_ASSERT_STRING_EQUAL(d.last_error, "AMT is already provisioned");
	/* limit: the oldest first, at most N */
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_audit_list(st, id, 2, count_audit, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.n, 2);
	store_close(st);
}

/* attempts counts retries in one state: +1 when from == to, 0 on a real change; a retry
 * keeps state_since. */
static void test_transition_counts_attempts(void)
{
	struct store *st = open_new();
	struct amtprov_error err;
	struct store_device d;
	int64_t id = add_device(st, 1);

	amtprov_error_clear(&err);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(store_device_transition(st, id, "NEED_PRECHECK", "NEED_PRECHECK",
							AMTPROV_E_UNREACHABLE, "no route", 5000 + i,
							"engine", 2000 + i, &err),
				AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.attempts, 3);
	CU_ASSERT_EQUAL(d.next_attempt_at, 5002);
	CU_ASSERT_EQUAL(d.state_since, 1000);
	CU_ASSERT_EQUAL(d.updated_at, 2002);
	CU_ASSERT_EQUAL(store_device_transition(st, id, "NEED_PRECHECK", "PRECHECKING", 0, NULL,
						0, "engine", 3000, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.attempts, 0);
	CU_ASSERT_EQUAL(d.last_error_code, 0);
	CU_ASSERT_STRING_EQUAL(d.last_error, "");
	CU_ASSERT_EQUAL(d.state_since, 3000);
	/* _ex stores the caller's count as given (the engine counts across NEED_X/X_ING). */
	CU_ASSERT_EQUAL(store_device_transition_ex(st, id, "PRECHECKING", "NEED_PRECHECK",
						   AMTPROV_E_TIMEOUT, "timeout", 4000, 5, "engine",
						   3500, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.attempts, 5);
	CU_ASSERT_EQUAL(d.state_since, 3500);
	CU_ASSERT_EQUAL(store_device_transition_ex(st, id, "NEED_PRECHECK", "NEED_PRECHECK", 0,
						   NULL, 0, -1, "engine", 3600, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.attempts, 6);
	CU_ASSERT_EQUAL(store_device_transition_ex(st, id, "NEED_PRECHECK", "PRECHECKING", 0,
						   NULL, 0, -2, "engine", 3600, &err),
			AMTPROV_E_INVALID);
	store_close(st);
}

/* Descriptive fields change; the state does not; the audit says what changed; a UUID taken
 * by another device is E_EXISTS naming uuid. */
static void test_device_update_changes_fields_and_audits(void)
{
	struct store *st = open_new();
	struct counter c = { 0 };
	struct amtprov_error err;
	struct store_device d;
	int64_t id = add_device(st, 1);

	add_device(st, 2);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	d.blocked = 1;
	snprintf(d.amt_version, sizeof(d.amt_version), "12.0.45");
	snprintf(d.state, sizeof(d.state), "IGNORED");
	CU_ASSERT_EQUAL(store_device_update(st, &d, "cli:root", 4000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.blocked, 1);
	CU_ASSERT_STRING_EQUAL(d.amt_version, "12.0.45");
	CU_ASSERT_STRING_EQUAL(d.state, "NEED_PRECHECK");
	CU_ASSERT_EQUAL(d.updated_at, 4000);
	CU_ASSERT_EQUAL(store_audit_list(st, id, 0, count_audit, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(c.n, 2);
	CU_ASSERT_STRING_EQUAL(c.text[1], "device.update|amt_version 11.8.50 -> 12.0.45; "
					  "blocked 0 -> 1");

	snprintf(d.uuid, sizeof(d.uuid), "00000002-0000-4000-8000-000000000002");
	CU_ASSERT_EQUAL(store_device_update(st, &d, "cli:root", 4001, &err), AMTPROV_E_EXISTS);
	CU_ASSERT_EQUAL(strncmp(err.msg, "uuid", 4), 0);
	d.id = 12345;
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_update(st, &d, "cli:root", 4001, &err),
			AMTPROV_E_NOT_FOUND);
	store_close(st);
}

/* Re-registration (docs/states.md): identity, report and state change in one transaction
 * with its audit records; a compare-and-set on the state; the OTP hash never in the audit;
 * a blocked device, a moved state or another device's key changes nothing. */
static void test_device_reregister_is_one_compare_and_set(void)
{
	struct store *st = open_new();
	struct counter c = { 0 };
	struct amtprov_error err;
	struct store_device d, got;
	int64_t id = add_device(st, 1);
	int audits;

	add_device(st, 2);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_transition(st, id, "NEED_PRECHECK", "PROVISIONED", 7,
						"old error", 9999, "test", 2000, &err), AMTPROV_OK);
	audits = audit_count(st, id);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	snprintf(d.otp_hash, sizeof(d.otp_hash), "ffee0011");
	snprintf(d.amt_version, sizeof(d.amt_version), "12.0.45");
	snprintf(d.wired_ip, sizeof(d.wired_ip), "10.0.0.77");
	snprintf(d.uuid, sizeof(d.uuid), "ABCDEF01-0000-4000-8000-000000000001");

	/* The stored state is not the one the caller decided on: nothing changes. */
	CU_ASSERT_EQUAL(store_device_reregister(st, id, "FAILED", &d, "api:x", 3000, &err),
			AMTPROV_E_STATE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "PROVISIONED"));
	/* Another device's UUID: nothing changes. */
	snprintf(d.uuid, sizeof(d.uuid), "00000002-0000-4000-8000-000000000002");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_reregister(st, id, "PROVISIONED", &d, "api:x", 3000, &err),
			AMTPROV_E_EXISTS);
	CU_ASSERT_EQUAL(strncmp(err.msg, "uuid", 4), 0);
	CU_ASSERT_EQUAL(audit_count(st, id), audits);
	CU_ASSERT_EQUAL(store_device_get(st, id, &got, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(got.state, "PROVISIONED");
	CU_ASSERT_STRING_EQUAL(got.otp_hash, "ab12cd34");

	snprintf(d.uuid, sizeof(d.uuid), "ABCDEF01-0000-4000-8000-000000000001");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_reregister(st, id, "PROVISIONED", &d, "api:x", 3000, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &got, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(got.state, "REGISTERED");
	CU_ASSERT_STRING_EQUAL(got.uuid, "abcdef01-0000-4000-8000-000000000001");
	CU_ASSERT_STRING_EQUAL(got.otp_hash, "ffee0011");
	CU_ASSERT_STRING_EQUAL(got.amt_version, "12.0.45");
	CU_ASSERT_STRING_EQUAL(got.wired_ip, "10.0.0.77");
	CU_ASSERT_EQUAL(got.state_since, 3000);
	CU_ASSERT_EQUAL(got.last_error_code, 0);
	CU_ASSERT_STRING_EQUAL(got.last_error, "");
	CU_ASSERT_EQUAL(got.attempts, 0);
	CU_ASSERT_EQUAL(got.next_attempt_at, 0);
	CU_ASSERT_EQUAL(store_audit_list(st, id, 0, count_audit, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(c.n, audits + 2);
	CU_ASSERT_STRING_EQUAL(c.text[audits],
			       "state|PROVISIONED -> REGISTERED: re-registered by its agent");
	CU_ASSERT_PTR_NOT_NULL(strstr(c.text[audits + 1], "device.reregister|"));
	CU_ASSERT_PTR_NOT_NULL(strstr(c.text[audits + 1], "otp_hash set -> new"));
	CU_ASSERT_PTR_NOT_NULL(strstr(c.text[audits + 1], "amt_version 11.8.50 -> 12.0.45"));
	CU_ASSERT_PTR_NULL(strstr(c.text[audits + 1], "ffee0011"));

	/* A blocked device never re-registers, whatever state the caller names. */
	got.blocked = 1;
	CU_ASSERT_EQUAL(store_device_update(st, &got, "cli", 3001, &err), AMTPROV_OK);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_reregister(st, id, "REGISTERED", &d, "api:x", 3002, &err),
			AMTPROV_E_STATE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "blocked"));
	store_close(st);
}

/* amtprov device delete (docs/lifecycle.md): a compare-and-set that refuses a device
 * with an active certificate or another host's lease, keeps the row as a tombstone with
 * its certificates, audit trail and queued revocations, drops its other pending
 * operations, and frees the FQDN and UUID for a new registration. */
static void test_device_delete_keeps_history_frees_identity(void)
{
	struct store *st = open_new();
	struct counter c = { 0 };
	struct amtprov_error err;
	struct store_device got;
	struct store_cert cert;
	struct store_pending op;
	int64_t id = add_device(st, 1), other = add_device(st, 2), cert_id;
	int audits;

	amtprov_error_clear(&err);
	make_cert(&cert, id, 1, 1, 90000);
	CU_ASSERT_EQUAL_FATAL(store_cert_add(st, &cert, 1100, &err), AMTPROV_OK);
	cert_id = cert.id;
	memset(&op, 0, sizeof(op));
	op.device_id = id;
	snprintf(op.kind, sizeof(op.kind), "revoke");
	CU_ASSERT_EQUAL(store_pending_add(st, &op, 1100, &err), AMTPROV_OK);
	memset(&op, 0, sizeof(op));
	op.device_id = id;
	snprintf(op.kind, sizeof(op.kind), "ca-poll");
	CU_ASSERT_EQUAL(store_pending_add(st, &op, 1100, &err), AMTPROV_OK);
	audits = audit_count(st, id);

	/* Not in the state the caller checked: nothing changes. */
	CU_ASSERT_EQUAL(store_device_delete(st, id, "FAILED", "cli", "x", 2000, &err),
			AMTPROV_E_STATE);
	/* An active certificate: refused, naming it. */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_delete(st, id, "NEED_PRECHECK", "cli", "x", 2000, &err),
			AMTPROV_E_STATE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "active certificate"));
	/* Another host's live lease: busy. */
	CU_ASSERT_EQUAL(store_cert_set_status(st, cert_id, STORE_CERT_REVOKE_PENDING, -1, 2000,
					      &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_claim(st, id, "host-b", 2000, 2100, &err), AMTPROV_OK);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_delete(st, id, "NEED_PRECHECK", "cli", "x", 2050, &err),
			AMTPROV_E_BUSY);
	CU_ASSERT_EQUAL(audit_count(st, id), audits);
	CU_ASSERT_EQUAL(store_device_find(st, "host1.contoso.com", &got, &err), AMTPROV_OK);

	/* The lease ran out; the revocation is queued: deleted. */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_delete(st, id, "NEED_PRECHECK", "cli",
					    "host1.contoso.com deleted", 2200, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, id, &got, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(got.state, STORE_DEVICE_DELETED);
	CU_ASSERT_STRING_EQUAL(got.fqdn, "deleted-1:host1.contoso.com");
	CU_ASSERT_STRING_EQUAL(got.uuid, "deleted-0000000000000000000000000001");
	CU_ASSERT_STRING_EQUAL(got.otp_hash, "");
	CU_ASSERT_STRING_EQUAL(got.lease_owner, "");
	CU_ASSERT_EQUAL(got.state_since, 2200);
	/* History kept: the certificate, the audit trail (+1), the queued revocation. */
	CU_ASSERT_EQUAL(store_cert_get(st, cert_id, &cert, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(cert.device_id, id);
	CU_ASSERT_EQUAL(store_audit_list(st, id, 0, count_audit, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(c.n, audits + 1);
	CU_ASSERT_STRING_EQUAL(c.text[audits], "device.delete|host1.contoso.com deleted");
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_pending_list(st, id, count_pending, &c, &err), AMTPROV_OK);
	CU_ASSERT(c.n == 1 && strcmp(c.text[0], "revoke") == 0);
	/* Not listed under any working state; counted as DELETED. */
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_device_list(st, "NEED_PRECHECK", count_device, &c, &err),
			AMTPROV_OK);
	CU_ASSERT(c.n == 1 && c.ids[0] == other);
	/* The FQDN and UUID are free: the same names register as a new device. */
	CU_ASSERT_EQUAL(store_device_find(st, "host1.contoso.com", &got, &err),
			AMTPROV_E_NOT_FOUND);
	CU_ASSERT_NOT_EQUAL(add_device(st, 1), id);
	/* Deleting a tombstone again is refused. */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_delete(st, id, STORE_DEVICE_DELETED, "cli", "", 2300, &err),
			AMTPROV_E_STATE);
	store_close(st);
}

/* Inside an explicit transaction a failed re-registration leaves the transaction usable
 * and undoes only its own work. */
static void test_device_reregister_inside_transaction(void)
{
	struct store *st = open_new();
	struct amtprov_error err;
	struct store_device d;
	int64_t id = add_device(st, 1);

	add_device(st, 2);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(store_tx_begin(st, &err), AMTPROV_OK);
	snprintf(d.fqdn, sizeof(d.fqdn), "host2.contoso.com");
	CU_ASSERT_EQUAL(store_device_reregister(st, id, "NEED_PRECHECK", &d, "t", 5, &err),
			AMTPROV_E_EXISTS);
	snprintf(d.fqdn, sizeof(d.fqdn), "Renamed.Contoso.com");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_reregister(st, id, "NEED_PRECHECK", &d, "t", 5, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_tx_commit(st, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_find(st, "renamed.contoso.com", &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.id, id);
	CU_ASSERT_STRING_EQUAL(d.state, "REGISTERED");
	store_close(st);
}

static int count_states(void *ctx, const char *state, int64_t count)
{
	struct counter *c = ctx;

	if (c->n < 64)
		snprintf(c->text[c->n], sizeof(c->text[0]), "%s=%lld", state, (long long)count);
	c->n++;
	return 0;
}

/* A list callback may call back into the store (the engine transitions devices while it
 * walks them) and may stop the walk early. */
struct walker {
	struct store *st;
	int seen;
	int stop_after;
	int failures;
};

static int transition_each(void *ctx, const struct store_device *d)
{
	struct walker *w = ctx;
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (store_device_transition(w->st, d->id, d->state, "PRECHECKING", 0, NULL, 0, "engine",
				    3000, &err) != AMTPROV_OK)
		w->failures++;
	w->seen++;
	return w->stop_after && w->seen >= w->stop_after;
}

static void test_device_list_callbacks_may_write_and_stop(void)
{
	struct store *st = open_new();
	struct walker w = { st, 0, 0, 0 };
	struct counter c = { 0 };
	struct amtprov_error err;

	/* More than one list batch. */
	for (int i = 0; i < 150; i++)
		add_device(st, i);
	amtprov_error_clear(&err);
	w.stop_after = 100;
	CU_ASSERT_EQUAL(store_device_list(st, "NEED_PRECHECK", transition_each, &w, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(w.seen, 100);
	CU_ASSERT_EQUAL(w.failures, 0);
	CU_ASSERT_EQUAL(store_device_count_by_state(st, count_states, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(c.n, 2);
	CU_ASSERT_STRING_EQUAL(c.text[0], "NEED_PRECHECK=50");
	CU_ASSERT_STRING_EQUAL(c.text[1], "PRECHECKING=100");
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_device_list(st, NULL, count_device, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.n, 150);
	CU_ASSERT(c.ids[0] < c.ids[1] && c.ids[1] < c.ids[2]);
	store_close(st);
}

/* Statements are cached per handle: a callback that runs the very list it is called from
 * gets its own statement, and the outer walk goes on where it was (keyset batches). */
struct nested {
	struct store *st;
	int outer, inner_total, failures;
};

static int count_inner(void *ctx, const struct store_device *d)
{
	(void)d;
	((struct nested *)ctx)->inner_total++;
	return 0;
}

static int list_again(void *ctx, const struct store_device *d)
{
	struct nested *n = ctx;
	struct amtprov_error err;

	(void)d;
	amtprov_error_clear(&err);
	n->outer++;
	if (n->outer % 25 == 1 &&
	    store_device_list(n->st, "NEED_PRECHECK", count_inner, n, &err) != AMTPROV_OK)
		n->failures++;
	return 0;
}

static void test_device_list_reentrant_same_statement(void)
{
	struct store *st = open_new();
	struct nested n = { st, 0, 0, 0 };
	struct amtprov_error err;

	for (int i = 0; i < 150; i++)
		add_device(st, i);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_list(st, "NEED_PRECHECK", list_again, &n, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(n.outer, 150);
	CU_ASSERT_EQUAL(n.failures, 0);
	CU_ASSERT_EQUAL(n.inner_total, 6 * 150);
	/* and the cached statements still work afterwards */
	n.outer = n.inner_total = 0;
	CU_ASSERT_EQUAL(store_device_list(st, "NEED_PRECHECK", count_inner, &n, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(n.inner_total, 150);
	store_close(st);
}

/* The engine's candidates (store_device_list_due): the due, unblocked devices of one state
 * in (next_attempt_at, id) order, across pages (more than one page share one
 * next_attempt_at), none twice, the callback may stop. */
struct due_seen {
	int n, stop_after;
	int64_t id[256], at[256];
};

static int due_collect(void *ctx, const struct store_device *d)
{
	struct due_seen *s = ctx;

	if (s->n < 256) {
		s->id[s->n] = d->id;
		s->at[s->n] = d->next_attempt_at;
	}
	s->n++;
	return s->stop_after && s->n >= s->stop_after;
}

static void test_device_list_due(void)
{
	struct store *st = open_new();
	struct amtprov_error err;
	struct due_seen seen;
	int want = 0, want_later = 0, ordered = 1, wrong = 0;

	/* 200 devices: every 4th not due before 5000, every 10th blocked; of the others
	 * most due at 0 (more than a page), some at 1500; 20 more in another state. */
	for (int i = 0; i < 220; i++) {
		struct store_device d;

		make_device(&d, i);
		if (i >= 200)
			snprintf(d.state, sizeof(d.state), "PROVISIONED");
		else if (i % 4 == 0)
			d.next_attempt_at = 5000;
		else
			d.next_attempt_at = i % 7 == 0 ? 1500 : 0;
		d.blocked = i < 200 && i % 10 == 1;
		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL_FATAL(store_device_add(st, &d, "test", 1000, &err), AMTPROV_OK);
		if (i < 200 && !d.blocked && i % 4 == 0)
			want_later++;
		else if (i < 200 && !d.blocked)
			want++;
	}
	memset(&seen, 0, sizeof(seen));
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_list_due(st, "NEED_PRECHECK", 2000, due_collect, &seen, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(seen.n, want);
	for (int i = 1; i < seen.n && i < 256; i++)
		if (seen.at[i] < seen.at[i - 1] ||
		    (seen.at[i] == seen.at[i - 1] && seen.id[i] <= seen.id[i - 1]))
			ordered = 0;
	CU_ASSERT_TRUE(ordered);
	for (int i = 0; i < seen.n && i < 256; i++) {
		struct store_device d;

		CU_ASSERT_EQUAL_FATAL(store_device_get(st, seen.id[i], &d, &err), AMTPROV_OK);
		if (d.blocked || d.next_attempt_at > 2000 || strcmp(d.state, "NEED_PRECHECK") != 0)
			wrong++;
	}
	CU_ASSERT_EQUAL(wrong, 0);
	/* Later, the deferred ones are due too, after the others. */
	memset(&seen, 0, sizeof(seen));
	CU_ASSERT_EQUAL(store_device_list_due(st, "NEED_PRECHECK", 5000, due_collect, &seen, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(seen.n, want + want_later);
	CU_ASSERT_EQUAL(seen.at[seen.n - 1], 5000);
	/* The callback stops the walk. */
	memset(&seen, 0, sizeof(seen));
	seen.stop_after = 3;
	CU_ASSERT_EQUAL(store_device_list_due(st, "NEED_PRECHECK", 2000, due_collect, &seen, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(seen.n, 3);
	/* Another state, and a state is required. */
	memset(&seen, 0, sizeof(seen));
	CU_ASSERT_EQUAL(store_device_list_due(st, "PROVISIONED", 2000, due_collect, &seen, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(seen.n, 20);
	CU_ASSERT_EQUAL(store_device_list_due(st, "", 2000, due_collect, &seen, &err),
			AMTPROV_E_INVALID);
	store_close(st);
}

/* ---- transactions and durability ---- */

/* A rolled-back explicit transaction leaves no trace of any of its writes. */
static void test_tx_rollback_discards_all_writes(void)
{
	struct store *st = open_new();
	struct store_device d;
	struct store_cert cert;
	struct store_status_msg m = { .msg_id = 7210, .severity = STORE_SEV_WARNING };
	struct counter c = { 0 };
	struct amtprov_error err;
	int64_t id = add_device(st, 1);

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_tx_begin(st, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_tx_begin(st, &err), AMTPROV_E_STATE); /* no nesting */
	amtprov_error_clear(&err);
	make_device(&d, 2);
	CU_ASSERT_EQUAL(store_device_add(st, &d, "test", 1, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_transition(st, id, "NEED_PRECHECK", "PRECHECKING", 0, NULL,
						0, "engine", 2000, &err),
			AMTPROV_OK);
	make_cert(&cert, id, 1, AMTPROV_PURPOSE_WEB_SERVER, 9000);
	CU_ASSERT_EQUAL(store_cert_add(st, &cert, 2000, &err), AMTPROV_OK);
	snprintf(m.text, sizeof(m.text), "expiring");
	CU_ASSERT_EQUAL(store_status_add(st, &m, 2000, &err), AMTPROV_OK);
	store_tx_rollback(st);

	CU_ASSERT_EQUAL(store_device_find(st, "host2.contoso.com", &d, &err),
			AMTPROV_E_NOT_FOUND);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "NEED_PRECHECK");
	CU_ASSERT_EQUAL(store_cert_list(st, NULL, count_cert, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.n, 0);
	CU_ASSERT_EQUAL(store_status_list(st, NULL, count_status, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.n, 0);
	CU_ASSERT_EQUAL(audit_count(st, 0), 1);
	CU_ASSERT_EQUAL(store_tx_commit(st, &err), AMTPROV_E_STATE); /* none open */
	store_close(st);
}

/* Inside an explicit transaction a failing call undoes only its own work; the rest
 * commits. */
static void test_tx_failed_call_inside_transaction_is_atomic(void)
{
	struct store *st = open_new();
	struct store_device d;
	struct amtprov_error err;
	int64_t id = add_device(st, 1);

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_tx_begin(st, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_transition(st, id, "NEED_PRECHECK", "PRECHECKING", 0, NULL,
						0, "engine", 2000, &err),
			AMTPROV_OK);
	make_device(&d, 1); /* duplicate */
	CU_ASSERT_EQUAL(store_device_add(st, &d, "test", 2000, &err), AMTPROV_E_EXISTS);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_transition(st, id, "NEED_PRECHECK", "X", 0, NULL, 0,
						"engine", 2000, &err),
			AMTPROV_E_STATE);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_tx_commit(st, &err), AMTPROV_OK);
	store_close(st);

	st = reopen();
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "PRECHECKING");
	CU_ASSERT_EQUAL(audit_count(st, 0), 2);
	store_close(st);
}

/* A committed state survives close and reopen. (R-PROV-13) */
static void test_committed_state_survives_reopen(void)
{
	struct store *st = open_new();
	struct amtprov_error err;
	struct store_device d;
	int64_t id = add_device(st, 1);

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_tx_begin(st, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_transition(st, id, "NEED_PRECHECK", "HAVE_WEB_CERT", 0, NULL,
						0, "engine", 2000, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_tx_commit(st, &err), AMTPROV_OK);
	store_close(st);
	st = reopen();
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "HAVE_WEB_CERT");
	store_close(st);
}

/* SIGKILL mid-transaction: what was committed is there, what was not is not. (R-PROV-13) */
static void test_sigkill_keeps_committed_and_drops_uncommitted(void)
{
	struct store *st = open_new();
	struct amtprov_error err;
	struct store_device d;
	int64_t id = add_device(st, 1);
	int status = 0;
	pid_t pid;

	store_close(st);
	fflush(NULL);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct store *cs = NULL;
		struct amtprov_error cerr;

		amtprov_error_clear(&cerr);
		if (store_open(dbpath, 0, &cs, &cerr) != AMTPROV_OK ||
		    store_device_transition(cs, id, "NEED_PRECHECK", "PRECHECKING", 0, NULL, 0,
					    "engine", 2000, &cerr) != AMTPROV_OK ||
		    store_tx_begin(cs, &cerr) != AMTPROV_OK)
			_exit(3);
		/* Several writes of an uncommitted transaction, then death. */
		if (store_device_transition(cs, id, "PRECHECKING", "HAVE_WEB_CERT", 0, NULL, 0,
					    "engine", 2001, &cerr) != AMTPROV_OK)
			_exit(4);
		for (int i = 2; i < 50; i++) {
			struct store_device nd;

			make_device(&nd, i);
			if (store_device_add(cs, &nd, "engine", 2001, &cerr) != AMTPROV_OK)
				_exit(5);
		}
		raise(SIGKILL);
		_exit(6);
	}
	CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	st = reopen();
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_get(st, id, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.state, "PRECHECKING");
	CU_ASSERT_EQUAL(store_device_find(st, "host2.contoso.com", &d, &err),
			AMTPROV_E_NOT_FOUND);
	CU_ASSERT_EQUAL(audit_count(st, 0), 2);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_check(st, &err), AMTPROV_OK);
	store_close(st);
}

/* ---- certificates ---- */

/* Every certificate is recorded and can be listed by purpose, device, status and expiry;
 * revoking records reason Superseded (4) and the time. (R-REV-02, R-PROV-13) */
static void test_cert_add_list_filters_and_revoke_superseded(void)
{
	struct store *st = open_new();
	struct store_cert c, got;
	struct store_cert_filter f;
	struct counter n;
	struct amtprov_error err;
	int64_t d1 = add_device(st, 1), d2 = add_device(st, 2);
	int64_t ids[4];

	amtprov_error_clear(&err);
	make_cert(&c, d1, 1, AMTPROV_PURPOSE_WEB_SERVER, 5000);
	CU_ASSERT_EQUAL(store_cert_add(st, &c, 1500, &err), AMTPROV_OK);
	ids[0] = c.id;
	CU_ASSERT_STRING_EQUAL(c.status, STORE_CERT_ACTIVE);
	CU_ASSERT_EQUAL(c.revocation_reason, -1);
	make_cert(&c, d1, 2, AMTPROV_PURPOSE_CLIENT_8021X, 9000);
	snprintf(c.profile, sizeof(c.profile), "wired-corp");
	CU_ASSERT_EQUAL(store_cert_add(st, &c, 1500, &err), AMTPROV_OK);
	ids[1] = c.id;
	make_cert(&c, d2, 3, AMTPROV_PURPOSE_WEB_SERVER, 7000);
	CU_ASSERT_EQUAL(store_cert_add(st, &c, 1500, &err), AMTPROV_OK);
	ids[2] = c.id;
	make_cert(&c, 0, 4, AMTPROV_PURPOSE_PROVISIONING, 20000);
	CU_ASSERT_EQUAL(store_cert_add(st, &c, 1500, &err), AMTPROV_OK);
	ids[3] = c.id;

	memset(&f, 0, sizeof(f));
	memset(&n, 0, sizeof(n));
	CU_ASSERT_EQUAL(store_cert_list(st, &f, count_cert, &n, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(n.n, 4);
	CU_ASSERT(n.ids[0] == ids[0] && n.ids[3] == ids[3]); /* ordered by id */

	f.purpose = AMTPROV_PURPOSE_WEB_SERVER;
	memset(&n, 0, sizeof(n));
	CU_ASSERT_EQUAL(store_cert_list(st, &f, count_cert, &n, &err), AMTPROV_OK);
	CU_ASSERT(n.n == 2 && n.ids[0] == ids[0] && n.ids[1] == ids[2]);

	memset(&f, 0, sizeof(f));
	f.device_id = d1;
	memset(&n, 0, sizeof(n));
	CU_ASSERT_EQUAL(store_cert_list(st, &f, count_cert, &n, &err), AMTPROV_OK);
	CU_ASSERT(n.n == 2 && n.ids[0] == ids[0] && n.ids[1] == ids[1]);
	/* One device's (by its index) with the other filters. */
	f.purpose = AMTPROV_PURPOSE_WEB_SERVER;
	f.status = STORE_CERT_ACTIVE;
	memset(&n, 0, sizeof(n));
	CU_ASSERT_EQUAL(store_cert_list(st, &f, count_cert, &n, &err), AMTPROV_OK);
	CU_ASSERT(n.n == 1 && n.ids[0] == ids[0]);
	f.device_id = d2;
	f.not_after_before = 7000;
	memset(&n, 0, sizeof(n));
	CU_ASSERT_EQUAL(store_cert_list(st, &f, count_cert, &n, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(n.n, 0);

	memset(&f, 0, sizeof(f));
	f.not_after_before = 7001;
	memset(&n, 0, sizeof(n));
	CU_ASSERT_EQUAL(store_cert_list(st, &f, count_cert, &n, &err), AMTPROV_OK);
	CU_ASSERT(n.n == 2 && n.ids[0] == ids[0] && n.ids[1] == ids[2]);

	/* R-REV-02: the superseded web server certificate is revoked, reason Superseded. */
	CU_ASSERT_EQUAL(store_cert_set_status(st, ids[0], STORE_CERT_REVOKED,
					      AMTPROV_REVOKE_SUPERSEDED, 6000, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_cert_get(st, ids[0], &got, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(got.status, STORE_CERT_REVOKED);
	CU_ASSERT_EQUAL(got.revocation_reason, 4);
	CU_ASSERT_EQUAL(got.revoked_at, 6000);
	CU_ASSERT_EQUAL(got.device_id, d1);
	CU_ASSERT_STRING_EQUAL(got.template_name, "AMTWebServer");

	memset(&f, 0, sizeof(f));
	f.status = STORE_CERT_REVOKED;
	memset(&n, 0, sizeof(n));
	CU_ASSERT_EQUAL(store_cert_list(st, &f, count_cert, &n, &err), AMTPROV_OK);
	CU_ASSERT(n.n == 1 && n.ids[0] == ids[0]);
	f.status = STORE_CERT_ACTIVE;
	f.purpose = AMTPROV_PURPOSE_PROVISIONING;
	memset(&n, 0, sizeof(n));
	CU_ASSERT_EQUAL(store_cert_list(st, &f, count_cert, &n, &err), AMTPROV_OK);
	CU_ASSERT(n.n == 1 && n.ids[0] == ids[3]);

	/* A revocation is final. */
	CU_ASSERT_EQUAL(store_cert_set_status(st, ids[0], STORE_CERT_ACTIVE, -1, 6100, &err),
			AMTPROV_E_STATE);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_cert_set_status(st, ids[1], STORE_CERT_REVOKE_PENDING, -1, 6100,
					      &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_cert_set_status(st, 999, STORE_CERT_EXPIRED, -1, 6100, &err),
			AMTPROV_E_NOT_FOUND);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_cert_set_status(st, ids[1], "bogus", -1, 6100, &err),
			AMTPROV_E_INVALID);
	store_close(st);
}

/* The same certificate (thumbprint) is recorded once: E_EXISTS naming sha256. */
static void test_cert_duplicate_sha256_is_exists(void)
{
	struct store *st = open_new();
	struct store_cert c;
	struct amtprov_error err;
	int64_t d1 = add_device(st, 1);

	amtprov_error_clear(&err);
	make_cert(&c, d1, 1, AMTPROV_PURPOSE_WEB_SERVER, 5000);
	CU_ASSERT_EQUAL(store_cert_add(st, &c, 1500, &err), AMTPROV_OK);
	make_cert(&c, d1, 1, AMTPROV_PURPOSE_WEB_SERVER, 5000);
	snprintf(c.serial_hex, sizeof(c.serial_hex), "BEEF");
	CU_ASSERT_EQUAL(store_cert_add(st, &c, 1500, &err), AMTPROV_E_EXISTS);
	CU_ASSERT_EQUAL(strncmp(err.msg, "sha256", 6), 0);
	amtprov_error_clear(&err);
	make_cert(&c, 4242, 9, AMTPROV_PURPOSE_WEB_SERVER, 5000);
	CU_ASSERT_EQUAL(store_cert_add(st, &c, 1500, &err), AMTPROV_E_NOT_FOUND);
	store_close(st);
}

/* ---- status messages ---- */

static void add_status(struct store *st, uint32_t msg_id, int sev, const char *dev,
		       const char *text, int64_t at)
{
	struct store_status_msg m;
	struct amtprov_error err;

	memset(&m, 0, sizeof(m));
	m.msg_id = msg_id;
	m.severity = sev;
	snprintf(m.device, sizeof(m.device), "%s", dev);
	snprintf(m.text, sizeof(m.text), "%s", text);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_status_add(st, &m, at, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(m.created_at, at);
}

/* Status messages are stored and listed newest first with filters and a limit; this is
 * the storage behind the once-a-day 7210/7211 expiry messages. (R-PC-06) */
static void test_status_messages_filter_and_limit_newest_first(void)
{
	struct store *st = open_new();
	struct store_status_filter f;
	struct counter c;
	struct amtprov_error err;

	add_status(st, 7210, STORE_SEV_WARNING, "", "prov cert: 40 days", 100);
	add_status(st, 7210, STORE_SEV_WARNING, "", "prov cert: 39 days", 200);
	add_status(st, 7211, STORE_SEV_ERROR, "", "prov cert: 14 days", 300);
	add_status(st, 5000, STORE_SEV_INFO, "host1.contoso.com", "provisioned", 250);
	add_status(st, 5001, STORE_SEV_ERROR, "HOST2.contoso.com", "failed", 260);
	amtprov_error_clear(&err);

	memset(&f, 0, sizeof(f));
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_status_list(st, &f, count_status, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(c.n, 5);
	CU_ASSERT_STRING_EQUAL(c.text[0], "prov cert: 14 days");
	CU_ASSERT_STRING_EQUAL(c.text[1], "failed");
	CU_ASSERT_STRING_EQUAL(c.text[4], "prov cert: 40 days");

	f.msg_id = 7210;
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_status_list(st, &f, count_status, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(c.n, 2);
	CU_ASSERT_STRING_EQUAL(c.text[0], "prov cert: 39 days");
	f.limit = 1;
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_status_list(st, &f, count_status, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_STRING_EQUAL(c.text[0], "prov cert: 39 days");

	memset(&f, 0, sizeof(f));
	f.min_severity = STORE_SEV_ERROR;
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_status_list(st, &f, count_status, &c, &err), AMTPROV_OK);
	CU_ASSERT(c.n == 2 && !strcmp(c.text[0], "prov cert: 14 days") &&
		  !strcmp(c.text[1], "failed"));

	memset(&f, 0, sizeof(f));
	f.device = "Host2.Contoso.com";
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_status_list(st, &f, count_status, &c, &err), AMTPROV_OK);
	CU_ASSERT(c.n == 1 && !strcmp(c.text[0], "failed"));

	memset(&f, 0, sizeof(f));
	f.since = 200;
	f.until = 260;
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_status_list(st, &f, count_status, &c, &err), AMTPROV_OK);
	CU_ASSERT(c.n == 2 && !strcmp(c.text[0], "provisioned") &&
		  !strcmp(c.text[1], "prov cert: 39 days"));
	store_close(st);
}

/* The newest-first walk stays exact across list batches and equal timestamps. */
static void test_status_list_pages_without_skips_or_repeats(void)
{
	struct store *st = open_new();
	struct store_status_filter f = { .min_severity = -1, .limit = 150 };
	struct counter c = { 0 };
	struct amtprov_error err;
	char text[32];

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_tx_begin(st, &err), AMTPROV_OK);
	for (int i = 0; i < 200; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		add_status(st, 1, STORE_SEV_INFO, "", text, 1000 + i / 3);
	}
	CU_ASSERT_EQUAL_FATAL(store_tx_commit(st, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_status_list(st, &f, count_status, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.n, 150);
	CU_ASSERT_STRING_EQUAL(c.text[0], "m199");
	CU_ASSERT_STRING_EQUAL(c.text[63], "m136");
	store_close(st);
}

/* ---- pending operations and tasks ---- */

/* Pending operations survive until done: listed when due, retried with backoff, removed
 * when done. (R-PROV-13, R-REV-02 queued revocations) */
static void test_pending_ops_due_retry_done(void)
{
	struct store *st = open_new();
	struct store_pending op;
	struct counter c;
	struct amtprov_error err;
	int64_t d1 = add_device(st, 1);
	int64_t revoke_id, poll_id;

	amtprov_error_clear(&err);
	memset(&op, 0, sizeof(op));
	op.device_id = d1;
	snprintf(op.kind, sizeof(op.kind), "revoke");
	snprintf(op.payload, sizeof(op.payload), "{\"serial\":\"0A1B\",\"reason\":4}");
	CU_ASSERT_EQUAL(store_pending_add(st, &op, 100, &err), AMTPROV_OK);
	revoke_id = op.id;
	memset(&op, 0, sizeof(op));
	snprintf(op.kind, sizeof(op.kind), "ca-poll");
	op.next_attempt_at = 500;
	CU_ASSERT_EQUAL(store_pending_add(st, &op, 100, &err), AMTPROV_OK);
	poll_id = op.id;

	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_pending_due(st, NULL, 200, count_pending, &c, &err), AMTPROV_OK);
	CU_ASSERT(c.n == 1 && c.ids[0] == revoke_id);
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_pending_due(st, NULL, 500, count_pending, &c, &err), AMTPROV_OK);
	CU_ASSERT(c.n == 2 && c.ids[0] == revoke_id && c.ids[1] == poll_id);
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_pending_due(st, "ca-poll", 500, count_pending, &c, &err),
			AMTPROV_OK);
	CU_ASSERT(c.n == 1 && c.ids[0] == poll_id);

	CU_ASSERT_EQUAL(store_pending_retry(st, revoke_id, "CA unreachable", 1000, &err),
			AMTPROV_OK);
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_pending_due(st, "revoke", 999, count_pending, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.n, 0);
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_pending_list(st, d1, count_pending, &c, &err), AMTPROV_OK);
	CU_ASSERT(c.n == 1 && c.ids[0] == revoke_id);
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_pending_list(st, 0, count_pending, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.n, 2);

	CU_ASSERT_EQUAL(store_pending_done(st, revoke_id, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_pending_done(st, revoke_id, &err), AMTPROV_E_NOT_FOUND);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_pending_retry(st, revoke_id, "x", 1, &err), AMTPROV_E_NOT_FOUND);
	store_close(st);

	st = reopen();
	memset(&c, 0, sizeof(c));
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_pending_list(st, 0, count_pending, &c, &err), AMTPROV_OK);
	CU_ASSERT(c.n == 1 && c.ids[0] == poll_id && !strcmp(c.text[0], "ca-poll"));
	store_close(st);
}

struct pending_seen {
	int attempts;
	char last_error[STORE_TEXT_SIZE];
};

static int capture_pending(void *ctx, const struct store_pending *p)
{
	struct pending_seen *s = ctx;

	s->attempts = p->attempts;
	snprintf(s->last_error, sizeof(s->last_error), "%s", p->last_error);
	return 1;
}

/* A retry counts attempts and keeps the last error. */
static void test_pending_retry_counts_attempts(void)
{
	struct store *st = open_new();
	struct store_pending op = { 0 };
	struct pending_seen seen = { 0 };
	struct amtprov_error err;

	amtprov_error_clear(&err);
	snprintf(op.kind, sizeof(op.kind), "commit-password");
	CU_ASSERT_EQUAL_FATAL(store_pending_add(st, &op, 1, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_pending_retry(st, op.id, "timeout", 10, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_pending_retry(st, op.id, "refused", 20, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_pending_due(st, NULL, 20, capture_pending, &seen, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(seen.attempts, 2);
	CU_ASSERT_STRING_EQUAL(seen.last_error, "refused");
	store_close(st);
}

/* A lease (defer) hides an operation until it runs out, without counting an attempt. */
static void test_pending_defer_is_a_lease(void)
{
	struct store *st = open_new();
	struct store_pending op = { 0 };
	struct pending_seen seen = { 0 };
	struct amtprov_error err;

	amtprov_error_clear(&err);
	snprintf(op.kind, sizeof(op.kind), "revoke");
	CU_ASSERT_EQUAL_FATAL(store_pending_add(st, &op, 1, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_pending_defer(st, op.id, 600, &err), AMTPROV_OK);
	seen.attempts = -1;
	CU_ASSERT_EQUAL(store_pending_due(st, NULL, 599, capture_pending, &seen, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(seen.attempts, -1); /* not due while leased */
	CU_ASSERT_EQUAL(store_pending_due(st, NULL, 600, capture_pending, &seen, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(seen.attempts, 0); /* due again, and no attempt counted */
	CU_ASSERT_EQUAL(store_pending_defer(st, op.id + 1000, 1, &err), AMTPROV_E_NOT_FOUND);
	store_close(st);
}

/* Maintenance task records: NOT_FOUND before the first put, replaced by later puts. */
static void test_task_put_get(void)
{
	struct store *st = open_new();
	struct store_task t = { 0 }, got;
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_task_get(st, "renew-certs", &got, &err), AMTPROV_E_NOT_FOUND);
	amtprov_error_clear(&err);
	snprintf(t.name, sizeof(t.name), "renew-certs");
	t.next_run = 86400;
	CU_ASSERT_EQUAL(store_task_put(st, &t, &err), AMTPROV_OK);
	t.last_run = 86400;
	t.last_result = AMTPROV_E_UNREACHABLE;
	snprintf(t.last_detail, sizeof(t.last_detail), "CA unreachable");
	t.next_run = 2 * 86400;
	CU_ASSERT_EQUAL(store_task_put(st, &t, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_task_get(st, "renew-certs", &got, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(got.name, "renew-certs");
	CU_ASSERT_EQUAL(got.last_run, 86400);
	CU_ASSERT_EQUAL(got.last_result, AMTPROV_E_UNREACHABLE);
	CU_ASSERT_STRING_EQUAL(got.last_detail, "CA unreachable");
	CU_ASSERT_EQUAL(got.next_run, 2 * 86400);
	store_close(st);
}

static int count_tasks(void *ctx, const struct store_task *t)
{
	(void)t;
	(*(int *)ctx)++;
	return 0;
}

/* On-demand requests (amtprov task run) survive a put made by amtprovd meanwhile, and the
 * list shows every task (schema 3). */
static void test_task_requests_are_never_lost(void)
{
	struct store *st = open_new();
	struct store_task t = { 0 }, got;
	struct amtprov_error err;
	int64_t req = 0;
	int n = 0;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_task_request(st, "revocation-queue", &req, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(req, 1);
	CU_ASSERT_EQUAL(store_task_request(st, "revocation-queue", &req, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(req, 2);
	/* The daemon records a run that covered the first request only. */
	snprintf(t.name, sizeof(t.name), "revocation-queue");
	t.last_run = 100;
	t.next_run = 160;
	t.interval_seconds = 60;
	t.served = 1;
	CU_ASSERT_EQUAL(store_task_put(st, &t, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_task_get(st, "revocation-queue", &got, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(got.requests, 2);
	CU_ASSERT_EQUAL(got.served, 1);
	CU_ASSERT_EQUAL(got.interval_seconds, 60);
	snprintf(t.name, sizeof(t.name), "a-first");
	CU_ASSERT_EQUAL(store_task_put(st, &t, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_task_list(st, count_tasks, &n, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(n, 2);
	store_close(st);
}

/* ---- input validation ---- */

/* Over-long or malformed input is E_INVALID naming the field, never silently cut. */
static void test_overlong_or_malformed_fields_are_invalid(void)
{
	struct store *st = open_new();
	struct store_device d;
	struct store_cert c;
	struct store_status_msg m;
	struct amtprov_error err;
	char big[STORE_TEXT_SIZE + 10];
	int64_t id = add_device(st, 1);

	make_device(&d, 2);
	memset(d.fqdn, 'a', sizeof(d.fqdn)); /* no NUL anywhere */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_add(st, &d, "test", 1, &err), AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(strncmp(err.msg, "fqdn", 4), 0);

	make_device(&d, 2);
	snprintf(d.uuid, sizeof(d.uuid), "not-a-uuid");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_add(st, &d, "test", 1, &err), AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(strncmp(err.msg, "uuid", 4), 0);

	make_device(&d, 2);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_add(st, &d, big, 1, &err), AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(strncmp(err.msg, "actor", 5), 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_transition(st, id, "NEED_PRECHECK", "PRECHECKING", 1, big, 0,
						"engine", 2, &err),
			AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(strncmp(err.msg, "error_text", 10), 0);

	make_cert(&c, id, 1, AMTPROV_PURPOSE_WEB_SERVER, 5000);
	snprintf(c.sha256, sizeof(c.sha256), "abc");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_cert_add(st, &c, 1, &err), AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(strncmp(err.msg, "sha256", 6), 0);

	memset(&m, 0, sizeof(m));
	memset(m.text, 'y', sizeof(m.text));
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_status_add(st, &m, 1, &err), AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(strncmp(err.msg, "text", 4), 0);

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_add(NULL, &d, "test", 1, &err), AMTPROV_E_INVALID);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open(NULL, 0, NULL, &err), AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(audit_count(st, 0), 1);
	store_close(st);
	store_close(NULL);
}

struct count_ctx_reg {
	int n;
};

static int count_devices_cb(void *ctx, const struct store_device *d)
{
	(void)d;
	((struct count_ctx_reg *)ctx)->n++;
	return 0;
}

/*
 * Opening a second handle on a database this process already has open, then closing the
 * first, must not drop the survivor's file locks; otherwise another process that writes and
 * closes believes it was the last user, checkpoints and deletes the WAL, and the survivor
 * never sees new rows again. The original failure was reproduced by the amtprovd reload
 * integration test (tests/integration/test_amtprovd.sh); this test guards the same sequence
 * at the store level.
 */
static void test_second_handle_in_process_keeps_seeing_other_writers(void)
{
	struct store *a = open_new(), *b;
	struct store_status_msg m;
	struct amtprov_error err;
	struct count_ctx_reg c = {0};
	pid_t pid;
	int status = -1;

	/* As amtprovd's reload does: the running handle works, a new one opens beside it and
	 * works too, then the old one closes. */
	add_device(a, 1);
	b = reopen();
	memset(&m, 0, sizeof(m));
	m.msg_id = 8002;
	snprintf(m.text, sizeof(m.text), "reloaded");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_status_add(b, &m, 1000, &err), AMTPROV_OK);
	store_close(a);
	/* The survivor reads the table first, as amtprovd's scans do, so a dead snapshot
	 * would show as a stale answer below. */
	CU_ASSERT_EQUAL(store_device_list(b, NULL, count_devices_cb, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.n, 1);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		/* Another process: write one device and close (which may checkpoint). */
		struct store *w = NULL;
		struct store_device d;

		amtprov_error_clear(&err);
		if (store_open(dbpath, 0, &w, &err) != AMTPROV_OK)
			_exit(2);
		make_device(&d, 77);
		if (store_device_add(w, &d, "child", 1000, &err) != AMTPROV_OK)
			_exit(3);
		store_close(w);
		_exit(0);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	c.n = 0;
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_list(b, NULL, count_devices_cb, &c, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.n, 2);
	store_close(b);
}

/* R-PROV-13: an issued certificate's DER and chain are kept for the step that installs it. */
static void test_cert_data_put_get_once(void)
{
	struct store *st = open_new();
	struct store_cert c;
	struct amtprov_error err;
	static const uint8_t der[] = {0x30, 0x82, 0x01, 0x0a, 0x02, 0x01, 0x05};
	uint8_t *got = NULL;
	size_t len = 0;
	char *chain = NULL;
	int64_t dev = add_device(st, 5);

	make_cert(&c, dev, 5, AMTPROV_PURPOSE_WEB_SERVER, 5000);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_cert_add(st, &c, 1000, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_cert_data_get(st, c.id, &got, &len, &chain, &err), AMTPROV_E_NOT_FOUND);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_cert_data_put(st, c.id, der, sizeof(der), "-----BEGIN CERTIFICATE-----",
					    &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_cert_data_put(st, c.id, der, sizeof(der), NULL, &err), AMTPROV_E_EXISTS);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_cert_data_put(st, 9999, der, sizeof(der), NULL, &err),
			AMTPROV_E_NOT_FOUND);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_cert_data_put(st, c.id, der, 0, NULL, &err), AMTPROV_E_INVALID);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_cert_data_get(st, c.id, &got, &len, &chain, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(len, sizeof(der));
	CU_ASSERT_EQUAL(memcmp(got, der, len), 0);
	CU_ASSERT_STRING_EQUAL(chain, "-----BEGIN CERTIFICATE-----");
	free(got);
	free(chain);
	CU_ASSERT_EQUAL(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
}

/* ---- device leases ---- */

/* One host at a time per device: a live lease of another host is E_BUSY, an expired one
 * is taken over, a released one is free, renewal extends only the owner's leases. */
static void test_device_lease_claim_expire_release_renew(void)
{
	struct store *st = open_new();
	struct amtprov_error err;
	struct store_device d;
	int64_t a = add_device(st, 1), b = add_device(st, 2), n = -1;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_claim(st, a, "host-a", 1000, 1060, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_claim(st, a, "host-a", 1001, 1061, &err), AMTPROV_OK);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_claim(st, a, "host-b", 1030, 1090, &err), AMTPROV_E_BUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "leased by another host"));
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_claim(st, 9999, "host-b", 1030, 1090, &err),
			AMTPROV_E_NOT_FOUND);
	CU_ASSERT_EQUAL(store_device_get(st, a, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.lease_owner, "host-a");
	CU_ASSERT_EQUAL(d.lease_until, 1061);

	/* Renewal: host-a's leases only. */
	CU_ASSERT_EQUAL(store_device_claim(st, b, "host-b", 1000, 1060, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_lease_renew(st, "host-a", 1200, &n, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(store_device_get(st, b, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(d.lease_until, 1060);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_claim(st, a, "host-b", 1100, 1160, &err), AMTPROV_E_BUSY);

	/* host-b died: its lease runs out and host-a takes the device over. */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_claim(st, b, "host-a", 1061, 1121, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, b, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.lease_owner, "host-a");

	/* Releasing someone else's lease does nothing; the owner's release frees it. */
	CU_ASSERT_EQUAL(store_device_release(st, a, "host-b", &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, a, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.lease_owner, "host-a");
	CU_ASSERT_EQUAL(store_device_release(st, a, "host-a", &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_get(st, a, &d, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(d.lease_owner, "");
	CU_ASSERT_EQUAL(d.lease_until, 0);
	CU_ASSERT_EQUAL(store_device_claim(st, a, "host-b", 1100, 1160, &err), AMTPROV_OK);

	/* Bad arguments. */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_claim(st, a, "", 1100, 1160, &err), AMTPROV_E_INVALID);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_claim(st, a, "host-b", 1100, 1100, &err), AMTPROV_E_INVALID);
	store_close(st);
}

/* ---- PostgreSQL only ---- */

/* A database without the amtprov schema is "not there yet": E_NOT_FOUND without CREATE
 * (read-only too), and nothing is created in it. */
static void test_pg_empty_database_needs_create(void)
{
	struct amtprov_error err;
	struct store *st = NULL;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open(dbpath, 0, &st, &err), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no amtprov schema"));
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open(dbpath, STORE_OPEN_READONLY, &st, &err), AMTPROV_E_NOT_FOUND);
	/* Still nothing there: the table would make the next open a "foreign" database. */
	CU_ASSERT_EQUAL(pg_test_exec("SELECT 1 WHERE to_regclass('devices') IS NULL "
				     "AND to_regclass('amtprov_schema') IS NULL"), 0);
	st = open_new();
	CU_ASSERT_EQUAL(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
}

/* A password in the connection string is refused, and never echoed in the error. */
static void test_pg_password_in_url_is_refused_unechoed(void)
{
	static const char *const urls[] = {
		"postgresql://amtprov:s3cr3tpw@localhost/site",
		"host=localhost dbname=site password=s3cr3tpw",
	};

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		struct amtprov_error err;
		struct store *st = NULL;

		amtprov_error_clear(&err);
		CU_ASSERT(store_is_pg_url(urls[i]));
		CU_ASSERT_EQUAL(store_open(urls[i], STORE_OPEN_CREATE, &st, &err), AMTPROV_E_INVALID);
		CU_ASSERT_PTR_NULL(st);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "password"));
		CU_ASSERT_PTR_NULL(strstr(err.msg, "s3cr3tpw"));
		CU_ASSERT_PTR_NULL(strstr(err.where, "s3cr3tpw"));
	}
	CU_ASSERT(!store_is_pg_url("/var/lib/amtprov/site.db"));
	CU_ASSERT(!store_is_pg_url("site.db"));
}

/* database.password_file: read at connect (the test server trusts the socket, so the
 * password itself is not checked here; test_multihost_pg logs in with one); a file others
 * can read, an empty one or a missing one is refused before connecting, never echoed. */
static void test_pg_password_file_checked_unechoed(void)
{
	char pw[] = "/tmp/amtprov-store-pw-XXXXXX";
	struct amtprov_error err;
	struct store *st = NULL;
	int fd = mkstemp(pw);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "s3cr3tpw\n", 9), 9);
	close(fd);
	CU_ASSERT_EQUAL(chmod(pw, 0600), 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open_auth(dbpath, pw, STORE_OPEN_CREATE, &st, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(store_password_file(st), pw);
	store_close(st);
	st = NULL;
	CU_ASSERT_EQUAL(chmod(pw, 0644), 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open_auth(dbpath, pw, 0, &st, &err), AMTPROV_E_DENIED);
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_STRING_EQUAL(err.where, "database.password_file");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "chmod 600"));
	CU_ASSERT_EQUAL(chmod(pw, 0600), 0);
	fd = open(pw, O_WRONLY | O_TRUNC);
	CU_ASSERT_EQUAL(write(fd, "\n", 1), 1);
	close(fd);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open_auth(dbpath, pw, 0, &st, &err), AMTPROV_E_INVALID);
	unlink(pw);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open_auth(dbpath, pw, 0, &st, &err), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_PTR_NULL(strstr(err.msg, "s3cr3tpw"));
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open_auth("/tmp/x.db", pw, 0, &st, &err), AMTPROV_E_INVALID);
	CU_ASSERT_PTR_NULL(st);
}

/* Another application's database is never taken over. */
static void test_pg_foreign_database_is_refused(void)
{
	struct amtprov_error err;
	struct store *st = NULL;

	CU_ASSERT_EQUAL_FATAL(pg_test_exec("CREATE TABLE invoices (id int)"), 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open(dbpath, STORE_OPEN_CREATE, &st, &err), AMTPROV_E_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not an amtprov site database"));
	CU_ASSERT_EQUAL(pg_test_exec("SELECT 1 WHERE to_regclass('devices') IS NULL"), 0);
}

/* A schema newer than this build is refused, and the database left as it is. */
static void test_pg_future_schema_version_is_refused(void)
{
	struct amtprov_error err;
	struct store *st = open_new();

	add_device(st, 1);
	store_close(st);
	CU_ASSERT_EQUAL_FATAL(pg_test_exec("UPDATE amtprov_schema SET version = 99"), 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_open(dbpath, 0, &st, &err), AMTPROV_E_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "newer amtprov (schema 99"));
	CU_ASSERT_EQUAL(pg_test_exec("SELECT 1 FROM amtprov_schema WHERE version = 99"), 0);
}

/* store_check finds what another tool broke: a disabled "append-only" trigger, a
 * missing table. */
static void test_pg_check_finds_tampering(void)
{
	struct amtprov_error err;
	struct store *st = open_new();

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_check(st, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(pg_test_exec("ALTER TABLE audit DISABLE TRIGGER audit_no_delete"), 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_check(st, &err), AMTPROV_E_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "audit_no_delete"));
	CU_ASSERT_EQUAL_FATAL(pg_test_exec("ALTER TABLE audit ENABLE TRIGGER audit_no_delete; "
					   "DROP TABLE pending_ops"), 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_check(st, &err), AMTPROV_E_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "pending_ops is missing"));
	store_close(st);
}

/* History is kept by the schema itself, whatever client writes: devices, certificates
 * and audit rows cannot be deleted or truncated, audit rows not changed. */
static void test_pg_schema_keeps_history(void)
{
	struct store *st = open_new();
	struct store_cert c;
	struct amtprov_error err;
	int64_t id = add_device(st, 1);

	make_cert(&c, id, 1, 1, 5000);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_cert_add(st, &c, 1000, &err), AMTPROV_OK);
	store_close(st);
	CU_ASSERT_NOT_EQUAL(pg_test_exec("DELETE FROM devices"), 0);
	CU_ASSERT_NOT_EQUAL(pg_test_exec("TRUNCATE devices CASCADE"), 0);
	CU_ASSERT_NOT_EQUAL(pg_test_exec("DELETE FROM certificates"), 0);
	CU_ASSERT_NOT_EQUAL(pg_test_exec("UPDATE audit SET detail = 'x'"), 0);
	CU_ASSERT_NOT_EQUAL(pg_test_exec("TRUNCATE audit"), 0);
	CU_ASSERT_EQUAL(pg_test_exec("SELECT 1 FROM devices, certificates"), 0);
}

/* A device whose row another host's transaction holds (it is recording a step) is
 * skipped at once, not waited for: SKIP LOCKED. */
struct lease_counts {
	char owners[4][STORE_SHORT_SIZE];
	int64_t live[4], expired[4];
	int n;
};

static int count_leases(void *ctx, const char *owner, int64_t live, int64_t expired)
{
	struct lease_counts *c = ctx;

	if (c->n < 4) {
		snprintf(c->owners[c->n], sizeof(c->owners[c->n]), "%s", owner);
		c->live[c->n] = live;
		c->expired[c->n++] = expired;
	}
	return 0;
}

/* Issue 16: one run of a maintenance task per site, whatever the number of hosts. */
static void test_task_lease_claim_expire_release(void)
{
	struct store *st = open_new();
	struct amtprov_error err;
	struct store_task t;
	struct lease_counts lc = {.n = 0};
	int64_t a = add_device(st, 1), b = add_device(st, 2);

	amtprov_error_clear(&err);
	/* A task that never ran gets its record with the claim. */
	CU_ASSERT_EQUAL(store_task_claim(st, "evaluate-certificates", "host-a", 1000, 1060, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_task_get(st, "evaluate-certificates", &t, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(t.lease_owner, "host-a");
	CU_ASSERT_EQUAL(t.lease_until, 1060);
	CU_ASSERT_EQUAL(t.last_run, 0);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_task_claim(st, "evaluate-certificates", "host-b", 1030, 1090, &err),
			AMTPROV_E_BUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "run by another host"));
	/* Renewal by the holder; recording the run keeps the lease. */
	CU_ASSERT_EQUAL(store_task_claim(st, "evaluate-certificates", "host-a", 1040, 1100, &err),
			AMTPROV_OK);
	t.last_run = 1040;
	t.next_run = 2040;
	CU_ASSERT_EQUAL(store_task_put(st, &t, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_task_get(st, "evaluate-certificates", &t, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(t.lease_owner, "host-a");
	CU_ASSERT_EQUAL(t.lease_until, 1100);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_task_claim(st, "evaluate-certificates", "host-b", 1100, 1160, &err),
			AMTPROV_E_BUSY);
	/* host-a died: its lease runs out and host-b takes the task over. */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_task_claim(st, "evaluate-certificates", "host-b", 1101, 1161, &err),
			AMTPROV_OK);
	/* Releasing someone else's lease does nothing; the holder's release frees it. */
	CU_ASSERT_EQUAL(store_task_release(st, "evaluate-certificates", "host-a", &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_task_get(st, "evaluate-certificates", &t, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(t.lease_owner, "host-b");
	CU_ASSERT_EQUAL(store_task_release(st, "evaluate-certificates", "host-b", &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(store_task_get(st, "evaluate-certificates", &t, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(t.lease_owner, "");
	CU_ASSERT_EQUAL(t.lease_until, 0);
	CU_ASSERT_EQUAL(t.last_run, 1040);
	CU_ASSERT_EQUAL(store_task_claim(st, "evaluate-certificates", "host-a", 1200, 1260, &err),
			AMTPROV_OK);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_task_claim(st, "x", "", 1200, 1260, &err), AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(store_task_claim(st, "x", "host-a", 1200, 1200, &err), AMTPROV_E_INVALID);

	/* Device leases by host, live and run out. */
	CU_ASSERT_EQUAL(store_lease_count(st, 1000, count_leases, &lc, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(lc.n, 0);
	CU_ASSERT_EQUAL(store_device_claim(st, a, "host-a", 1000, 1060, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_device_claim(st, b, "host-b", 1000, 1010, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_lease_count(st, 1030, count_leases, &lc, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(lc.n, 2);
	CU_ASSERT_STRING_EQUAL(lc.owners[0], "host-a");
	CU_ASSERT_EQUAL(lc.live[0], 1);
	CU_ASSERT_EQUAL(lc.expired[0], 0);
	CU_ASSERT_STRING_EQUAL(lc.owners[1], "host-b");
	CU_ASSERT_EQUAL(lc.live[1], 0);
	CU_ASSERT_EQUAL(lc.expired[1], 1);
	store_close(st);
}

static void test_pg_claim_skips_a_locked_row(void)
{
	struct store *st = open_new(), *other = reopen();
	struct amtprov_error err;
	int64_t id = add_device(st, 1);
	time_t t0;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_tx_begin(other, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(store_device_transition(other, id, "NEED_PRECHECK", "PRECHECKING",
						      0, NULL, 0, "engine", 1000, &err),
			      AMTPROV_OK);
	t0 = time(NULL);
	CU_ASSERT_EQUAL(store_device_claim(st, id, "host-b", 1000, 1060, &err), AMTPROV_E_BUSY);
	/* lock_timeout is 5 s: an answer well before it was not a wait. */
	CU_ASSERT(time(NULL) - t0 < 4);
	store_tx_rollback(other);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_claim(st, id, "host-b", 1000, 1060, &err), AMTPROV_OK);
	store_close(other);
	store_close(st);
}

/* Several hosts starting on a new database at once: one migrates, the others wait and
 * find the schema done (an advisory lock), none fails. */
static void test_pg_concurrent_first_open_migrates_once(void)
{
	enum { N = 4 };
	pid_t pids[N];
	struct store *st;

	fflush(NULL);
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		CU_ASSERT_FATAL(pids[i] >= 0);
		if (pids[i] == 0) {
			struct amtprov_error cerr;
			struct store *cs = NULL;

			amtprov_error_clear(&cerr);
			if (store_open(dbpath, STORE_OPEN_CREATE, &cs, &cerr) != AMTPROV_OK) {
				fprintf(stderr, "child %d: %s\n", i, cerr.msg);
				_exit(3);
			}
			store_close(cs);
			_exit(0);
		}
	}
	for (int i = 0; i < N; i++) {
		int status = 0;

		CU_ASSERT_EQUAL(waitpid(pids[i], &status, 0), pids[i]);
		CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	st = reopen();
	CU_ASSERT_EQUAL(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
}

/* Issue 13 / R-PROV-13: with deferred syncing a pending operation's COMMIT returns before
 * its sync and takes a ticket; the syncer thread syncs the WAL and the ticket passes; a
 * registration is still synced inline (no ticket). The syncer, not the committing thread,
 * checkpoints: the database file grows while this thread only writes the WAL. */
static void test_deferred_sync_tickets_and_checkpoint(void)
{
	struct store *st = open_new();
	struct store_pending op;
	struct amtprov_error err;
	struct stat sb;
	off_t before;
	uint64_t t;
	int grew = 0;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_defer_sync(st, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(store_sync_on_loop(), 1);
	CU_ASSERT_EQUAL(store_sync_wait(store_sync_ticket()), 1);
	add_device(st, 1);
	CU_ASSERT_EQUAL(store_sync_ticket(), 0); /* a registration: synced before it returned */
	memset(&op, 0, sizeof(op));
	snprintf(op.kind, sizeof(op.kind), "ca-poll");
	CU_ASSERT_EQUAL_FATAL(store_pending_add(st, &op, 100, &err), AMTPROV_OK);
	t = store_sync_ticket();
	/* Either still waiting (a ticket) or already synced by the syncer (0). */
	if (t) {
		CU_ASSERT_EQUAL(store_sync_wait(t), 1);
		CU_ASSERT_EQUAL(store_sync_passed(t), 1);
	}
	CU_ASSERT_EQUAL(store_sync_passed(0), 1);
	CU_ASSERT_STRING_EQUAL(store_sync_error(), "");

	/* More than SQLite's 1,000-page checkpoint threshold, written by this thread. */
	CU_ASSERT_EQUAL_FATAL(stat(dbpath, &sb), 0);
	before = sb.st_size;
	for (int i = 0; i < 1500; i++) {
		memset(&op, 0, sizeof(op));
		snprintf(op.kind, sizeof(op.kind), "ca-poll");
		snprintf(op.payload, sizeof(op.payload), "{\"p\":\"%04096d\"}", i);
		if (store_pending_add(st, &op, 100 + i, &err) != AMTPROV_OK) {
			CU_FAIL("pending_add");
			break;
		}
	}
	CU_ASSERT_EQUAL(store_sync_wait(store_sync_ticket()), 1);
	/* The checkpoint runs on the syncer after a sync round: poll for its effect. */
	for (int i = 0; i < 1000 && !grew; i++) {
		grew = stat(dbpath, &sb) == 0 && sb.st_size > before + 1000 * 4096 / 2;
		if (!grew)
			usleep(10000);
	}
	CU_ASSERT(grew);
	store_close(st);
}

/* Every test of both suites; sqlite_only: about SQLite's files (modes, damaged pages, the
 * header), which a PostgreSQL server keeps to itself. */
static const struct store_test {
	const char *name;
	CU_TestFunc fn;
	int sqlite_only;
} store_tests[] = {
	{ "create, close, reopen keeps data", test_create_close_reopen_keeps_data, 0 },
	{ "new database file is mode 0600", test_new_database_file_is_mode_0600, 1 },
	{ "missing file without CREATE is E_NOT_FOUND, not created",
	  test_missing_file_without_create_is_not_found_and_not_created, 1 },
	{ "corrupt fixtures refused (E_CORRUPT) and untouched",
	  test_corrupt_fixtures_are_refused_and_left_untouched, 1 },
	{ "damaged page fails quick_check", test_damaged_page_fails_quick_check, 1 },
	{ "future schema version refused untouched",
	  test_future_schema_version_is_refused_untouched, 1 },
	{ "empty file needs CREATE, then becomes 0600",
	  test_empty_file_needs_create_and_becomes_0600, 1 },
	{ "read-only handle reads, refuses writes",
	  test_readonly_handle_reads_and_refuses_writes, 0 },
	{ "device find by FQDN (any case) and by UUID",
	  test_device_find_by_fqdn_case_insensitive_and_by_uuid, 0 },
	{ "duplicate FQDN or UUID is E_EXISTS naming the field",
	  test_device_duplicate_fqdn_or_uuid_is_exists_naming_field, 0 },
	{ "transition is compare-and-set", test_transition_is_compare_and_set, 0 },
	{ "transition writes one audit record", test_transition_writes_one_audit_record, 0 },
	{ "transition counts attempts", test_transition_counts_attempts, 0 },
	{ "crash-loop guard: step-in-flight count (R-PROV-13)", test_step_in_flight_count, 0 },
	{ "migrations 3 -> 4 -> 5 -> 6 keep devices", test_migration_3_to_5_keeps_devices, 1 },
	{ "device update changes fields and audits",
	  test_device_update_changes_fields_and_audits, 0 },
	{ "re-registration: one compare-and-set with its audit, never the OTP hash",
	  test_device_reregister_is_one_compare_and_set, 0 },
	{ "re-registration inside a transaction: a failure undoes only itself",
	  test_device_reregister_inside_transaction, 0 },
	{ "device delete: refusals, tombstone keeps history, frees FQDN and UUID",
	  test_device_delete_keeps_history_frees_identity, 0 },
	{ "device list callbacks may write and stop",
	  test_device_list_callbacks_may_write_and_stop, 0 },
	{ "device list callback may run the same list (statement cache)",
	  test_device_list_reentrant_same_statement, 0 },
	{ "due devices of a state: by next attempt then id, pages, not blocked",
	  test_device_list_due, 0 },
	{ "rollback discards all writes", test_tx_rollback_discards_all_writes, 0 },
	{ "failed call inside a transaction is atomic",
	  test_tx_failed_call_inside_transaction_is_atomic, 0 },
	{ "committed state survives reopen", test_committed_state_survives_reopen, 0 },
	{ "a second handle in one process keeps seeing other processes' writes",
	  test_second_handle_in_process_keeps_seeing_other_writers, 0 },
	{ "SIGKILL keeps committed, drops uncommitted",
	  test_sigkill_keeps_committed_and_drops_uncommitted, 0 },
	{ "certificates: add, list filters, revoke Superseded",
	  test_cert_add_list_filters_and_revoke_superseded, 0 },
	{ "certificates: duplicate sha256 is E_EXISTS", test_cert_duplicate_sha256_is_exists, 0 },
	{ "certificates: DER and chain stored once, read back (R-PROV-13)",
	  test_cert_data_put_get_once, 0 },
	{ "status messages: filters, limit, newest first",
	  test_status_messages_filter_and_limit_newest_first, 0 },
	{ "status messages: paging has no skips or repeats",
	  test_status_list_pages_without_skips_or_repeats, 0 },
	{ "pending ops: due, retry, done", test_pending_ops_due_retry_done, 0 },
	{ "pending ops: retry counts attempts", test_pending_retry_counts_attempts, 0 },
	{ "pending ops: defer is a lease, no attempt counted", test_pending_defer_is_a_lease, 0 },
	{ "deferred syncing: tickets pass after the syncer, which checkpoints (R-PROV-13)",
	  test_deferred_sync_tickets_and_checkpoint, 1 },
	{ "maintenance tasks: put and get", test_task_put_get, 0 },
	{ "maintenance tasks: on-demand requests are never lost",
	  test_task_requests_are_never_lost, 0 },
	{ "device leases: claim, expiry, release, renewal (several hosts)",
	  test_device_lease_claim_expire_release_renew, 0 },
	{ "task leases: claim, expiry, release; lease counts by host (several hosts)",
	  test_task_lease_claim_expire_release, 0 },
	{ "over-long or malformed fields are E_INVALID",
	  test_overlong_or_malformed_fields_are_invalid, 0 },
};

void register_store_tests(void)
{
	CU_pSuite s = CU_add_suite_with_setup_and_teardown("store", NULL, NULL, test_setup,
							   test_teardown);

	if (!s)
		return;
	for (size_t i = 0; i < sizeof(store_tests) / sizeof(store_tests[0]); i++)
		CU_add_test(s, store_tests[i].name, store_tests[i].fn);
}

void register_store_pg_tests(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} pg_only[] = {
		{ "empty database needs CREATE (E_NOT_FOUND), nothing created",
		  test_pg_empty_database_needs_create },
		{ "password in the URL refused and never echoed",
		  test_pg_password_in_url_is_refused_unechoed },
		{ "database.password_file checked before connecting, never echoed",
		  test_pg_password_file_checked_unechoed },
		{ "another application's database is refused", test_pg_foreign_database_is_refused },
		{ "future schema version refused", test_pg_future_schema_version_is_refused },
		{ "check finds a disabled trigger and a missing table", test_pg_check_finds_tampering },
		{ "the schema keeps history (no delete, truncate, audit update)",
		  test_pg_schema_keeps_history },
		{ "a claim skips a row another transaction holds (SKIP LOCKED)",
		  test_pg_claim_skips_a_locked_row },
		{ "several hosts opening a new database at once: migrated once",
		  test_pg_concurrent_first_open_migrates_once },
	};
	CU_pSuite s = CU_add_suite_with_setup_and_teardown("store_pg", NULL, NULL, pg_test_setup,
							   pg_test_teardown);

	if (!s)
		return;
	for (size_t i = 0; i < sizeof(store_tests) / sizeof(store_tests[0]); i++)
		if (!store_tests[i].sqlite_only)
			CU_add_test(s, store_tests[i].name, store_tests[i].fn);
	for (size_t i = 0; i < sizeof(pg_only) / sizeof(pg_only[0]); i++)
		CU_add_test(s, pg_only[i].name, pg_only[i].fn);
}
