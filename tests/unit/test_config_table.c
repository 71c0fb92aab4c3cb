/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the declarative plugin configuration parser (core/site/config_table.c), the
 * code behind host->config_parse (STYLE.md section 7, convention 7).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "manifest.h"

void register_config_table_tests(void);

#define BASE "/plugins/lab-ca/config"

/* A plugin's configuration struct, one field per type. */
struct cfg {
	char *url;
	long long port;
	int verbose;
	char **names;
	char *secret;
	char *comment;
	long long offset;
	int strict;
};

static const struct amtprov_config_field table[] = {
	{"url", AMTPROV_CFG_STRING, offsetof(struct cfg, url), 1, NULL, 0, 0, "CA URL"},
	{"port", AMTPROV_CFG_INT, offsetof(struct cfg, port), 0, "443", 1, 65535, "TCP port"},
	{"verbose", AMTPROV_CFG_BOOL, offsetof(struct cfg, verbose), 0, "true", 0, 0, "chatty"},
	{"names", AMTPROV_CFG_STRING_LIST, offsetof(struct cfg, names), 0, NULL, 0, 0, "names"},
	{"secret", AMTPROV_CFG_CREDENTIAL, offsetof(struct cfg, secret), 0, "ca/key", 0, 0,
	 "credential record of the key"},
	{"comment", AMTPROV_CFG_STRING, offsetof(struct cfg, comment), 0, NULL, 0, 0, "text"},
	/* min > max: no bounds. */
	{"offset", AMTPROV_CFG_INT, offsetof(struct cfg, offset), 0, "-5", 1, 0, "any integer"},
	{"strict", AMTPROV_CFG_BOOL, offsetof(struct cfg, strict), 0, "false", 0, 0, "strict"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

/* Parses @p text into @p out; NULL text means a NULL config. */
static int parse(const char *text, struct cfg *out, struct manifest_problems *pr,
		 struct amtprov_error *err)
{
	json_error_t jerr;
	json_t *j = NULL;
	int rc;

	if (text) {
		j = json_loads(text, 0, &jerr);
		CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	}
	/* Garbage first: the parser must not trust what the struct held before. */
	memset(out, 0x5a, sizeof(*out));
	amtprov_error_clear(err);
	rc = config_table_parse(j, table, out, BASE, pr, err);
	json_decref(j);
	return rc;
}

static int has_problem(const struct manifest_problems *pr, const char *path, const char *text)
{
	size_t i;

	for (i = 0; i < pr->count; i++)
		if (strcmp(pr->items[i].path, path) == 0 && strstr(pr->items[i].msg, text))
			return 1;
	return 0;
}

static void test_every_type_is_parsed(void)
{
	struct cfg c;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL(parse("{\"url\":\"https://ca.contoso.com\",\"port\":8443,"
			      "\"verbose\":false,\"names\":[\"a\",\"b\"],\"secret\":\"lab/ca-key\","
			      "\"comment\":\"\",\"offset\":-100000,\"strict\":true}",
			      &c, &pr, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(pr.count, 0);
	CU_ASSERT_STRING_EQUAL(c.url, "https://ca.contoso.com");
	CU_ASSERT_EQUAL(c.port, 8443);
	CU_ASSERT_EQUAL(c.verbose, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.names);
	CU_ASSERT_STRING_EQUAL(c.names[0], "a");
	CU_ASSERT_STRING_EQUAL(c.names[1], "b");
	CU_ASSERT_PTR_NULL(c.names[2]);
	CU_ASSERT_STRING_EQUAL(c.secret, "lab/ca-key");
	CU_ASSERT_STRING_EQUAL(c.comment, ""); /* plain strings may be empty */
	CU_ASSERT_EQUAL(c.offset, -100000);
	CU_ASSERT_EQUAL(c.strict, 1);
	CU_ASSERT_EQUAL(err.code, AMTPROV_OK);
	config_table_free(table, &c);
	CU_ASSERT_PTR_NULL(c.url);
	CU_ASSERT_PTR_NULL(c.names);
	manifest_problems_free(&pr);
}

static void test_defaults_apply_when_keys_are_absent(void)
{
	struct cfg c;
	struct amtprov_error err;

	CU_ASSERT_EQUAL(parse("{\"url\":\"u\"}", &c, NULL, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.port, 443);
	CU_ASSERT_EQUAL(c.verbose, 1);
	CU_ASSERT_EQUAL(c.strict, 0);
	CU_ASSERT_PTR_NULL(c.names); /* STRING_LIST has no default */
	CU_ASSERT_STRING_EQUAL(c.secret, "ca/key");
	CU_ASSERT_PTR_NULL(c.comment);
	CU_ASSERT_EQUAL(c.offset, -5);
	config_table_free(table, &c);
}

static void test_int_bounds_are_checked_when_min_le_max(void)
{
	struct cfg c;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL(parse("{\"url\":\"u\",\"port\":0}", &c, &pr, &err), AMTPROV_E_CONFIG);
	CU_ASSERT(has_problem(&pr, BASE "/port", "from 1 to 65535, not 0"));
	config_table_free(table, &c);
	manifest_problems_free(&pr);

	CU_ASSERT_EQUAL(parse("{\"url\":\"u\",\"port\":65536}", &c, &pr, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_STRING_EQUAL(err.where, BASE "/port");
	config_table_free(table, &c);
	manifest_problems_free(&pr);

	CU_ASSERT_EQUAL(parse("{\"url\":\"u\",\"port\":65535,\"offset\":9000000000}", &c, &pr,
			      &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(c.offset, 9000000000LL);
	config_table_free(table, &c);
	manifest_problems_free(&pr);
}

static void test_unknown_key_is_refused(void)
{
	struct cfg c;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL(parse("{\"url\":\"u\",\"prot\":1,\"a/b\":2}", &c, &pr, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT(has_problem(&pr, BASE "/prot", "unknown key 'prot'"));
	CU_ASSERT(has_problem(&pr, BASE "/a~1b", "unknown key 'a/b'"));
	CU_ASSERT_EQUAL(pr.errors, 2);
	config_table_free(table, &c);
	manifest_problems_free(&pr);
}

static void test_missing_required_key_is_reported(void)
{
	struct cfg c;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL(parse("{}", &c, &pr, &err), AMTPROV_E_CONFIG);
	CU_ASSERT(has_problem(&pr, BASE "/url", "missing required key 'url'"));
	CU_ASSERT_STRING_EQUAL(err.where, BASE "/url");
	CU_ASSERT_STRING_EQUAL(err.msg, "missing required key 'url'");
	config_table_free(table, &c);
	manifest_problems_free(&pr);

	/* A NULL config is an empty object. */
	CU_ASSERT_EQUAL(parse(NULL, &c, &pr, &err), AMTPROV_E_CONFIG);
	CU_ASSERT(has_problem(&pr, BASE "/url", "missing required key"));
	config_table_free(table, &c);
	manifest_problems_free(&pr);
}

static void test_wrong_types_are_reported(void)
{
	struct cfg c;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL(parse("{\"url\":1,\"port\":\"443\",\"verbose\":\"yes\",\"names\":\"a\","
			      "\"secret\":true,\"offset\":1.5}", &c, &pr, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT(has_problem(&pr, BASE "/url", "must be a string, not an integer"));
	CU_ASSERT(has_problem(&pr, BASE "/port", "must be an integer, not a string"));
	CU_ASSERT(has_problem(&pr, BASE "/verbose", "must be true or false"));
	CU_ASSERT(has_problem(&pr, BASE "/names", "must be an array of strings"));
	CU_ASSERT(has_problem(&pr, BASE "/secret", "must be a string, not true"));
	CU_ASSERT(has_problem(&pr, BASE "/offset", "not a real number"));
	CU_ASSERT_EQUAL(pr.errors, 6);
	config_table_free(table, &c);
	manifest_problems_free(&pr);

	CU_ASSERT_EQUAL(parse("[1]", &c, &pr, &err), AMTPROV_E_CONFIG);
	CU_ASSERT(has_problem(&pr, BASE, "must be an object, not an array"));
	config_table_free(table, &c);
	manifest_problems_free(&pr);
}

static void test_credential_names_are_checked(void)
{
	struct cfg c;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL(parse("{\"url\":\"u\",\"secret\":\"has space\"}", &c, &pr, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT(has_problem(&pr, BASE "/secret", "not a valid credential name"));
	CU_ASSERT_PTR_NULL(c.secret);
	config_table_free(table, &c);
	manifest_problems_free(&pr);

	CU_ASSERT_EQUAL(parse("{\"url\":\"u\",\"secret\":\"\"}", &c, &pr, &err),
			AMTPROV_E_CONFIG);
	config_table_free(table, &c);
	manifest_problems_free(&pr);
}

static void test_string_list_reports_each_bad_entry(void)
{
	struct cfg c;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL(parse("{\"url\":\"u\",\"names\":[\"a\",2,\"c\",null]}", &c, &pr, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT(has_problem(&pr, BASE "/names/1", "must be a string"));
	CU_ASSERT(has_problem(&pr, BASE "/names/3", "not null"));
	/* The good entries were kept and are freed by config_table_free. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.names);
	CU_ASSERT_STRING_EQUAL(c.names[0], "a");
	CU_ASSERT_STRING_EQUAL(c.names[1], "c");
	CU_ASSERT_PTR_NULL(c.names[2]);
	config_table_free(table, &c);
	manifest_problems_free(&pr);

	CU_ASSERT_EQUAL(parse("{\"url\":\"u\",\"names\":[]}", &c, NULL, &err), AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.names);
	CU_ASSERT_PTR_NULL(c.names[0]);
	config_table_free(table, &c);
}

static void test_several_errors_are_summarised(void)
{
	struct cfg c;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL(parse("{\"bogus\":1,\"port\":-1,\"strict\":0}", &c, &pr, &err),
			AMTPROV_E_CONFIG);
	/* bogus (unknown), url (missing), port (range), strict (type). */
	CU_ASSERT_EQUAL(pr.errors, 4);
	CU_ASSERT_EQUAL(err.code, AMTPROV_E_CONFIG);
	CU_ASSERT_STRING_EQUAL(err.where, BASE "/bogus");
	CU_ASSERT_STRING_EQUAL(err.msg, "unknown key 'bogus' (and 3 more)");
	config_table_free(table, &c);
	manifest_problems_free(&pr);
}

/* Strings copied before a later error stay owned by the struct; LeakSanitizer checks that
 * config_table_free releases them. */
static void test_free_after_failure_releases_everything(void)
{
	struct cfg c;
	struct amtprov_error err;

	CU_ASSERT_EQUAL(parse("{\"url\":\"kept\",\"names\":[\"x\",\"y\"],\"secret\":\"a/b\","
			      "\"comment\":\"c\",\"port\":\"bad\"}", &c, NULL, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_STRING_EQUAL(c.url, "kept");
	config_table_free(table, &c);
	CU_ASSERT_PTR_NULL(c.url);
	CU_ASSERT_PTR_NULL(c.names);
	CU_ASSERT_PTR_NULL(c.secret);
	CU_ASSERT_PTR_NULL(c.comment);
	config_table_free(table, &c); /* twice is harmless */

	memset(&c, 0, sizeof(c));
	config_table_free(table, &c); /* a zero-filled struct */
	config_table_free(NULL, &c);
	config_table_free(table, NULL);
}

static void test_bad_table_defaults_are_reported(void)
{
	static const struct amtprov_config_field bad[] = {
		{"n", AMTPROV_CFG_INT, 0, 0, "12x", 0, 0, NULL},
		{"b", AMTPROV_CFG_BOOL, sizeof(long long), 0, "yes", 0, 0, NULL},
		{NULL, 0, 0, 0, NULL, 0, 0, NULL},
	};
	struct {
		long long n;
		int b;
	} out;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(config_table_parse(NULL, bad, &out, "", &pr, &err), AMTPROV_E_CONFIG);
	CU_ASSERT(has_problem(&pr, "/n", "plugin bug"));
	CU_ASSERT(has_problem(&pr, "/b", "plugin bug"));
	config_table_free(bad, &out);
	manifest_problems_free(&pr);

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(config_table_parse(NULL, NULL, &out, "", NULL, &err), AMTPROV_E_INVALID);
}

/* Problems are appended to the caller's list (the manifest's own, when the host passes it). */
static void test_problems_are_appended(void)
{
	struct cfg c;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL(parse("{}", &c, &pr, &err), AMTPROV_E_CONFIG);
	config_table_free(table, &c);
	CU_ASSERT_EQUAL(parse("{\"url\":\"u\",\"x\":1}", &c, &pr, &err), AMTPROV_E_CONFIG);
	CU_ASSERT_EQUAL(pr.count, 2);
	/* The summary counts only this call's errors. */
	CU_ASSERT_STRING_EQUAL(err.msg, "unknown key 'x'");
	config_table_free(table, &c);
	manifest_problems_free(&pr);
}

void register_config_table_tests(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
		{"every type is parsed", test_every_type_is_parsed},
		{"defaults apply when keys are absent", test_defaults_apply_when_keys_are_absent},
		{"int bounds are checked when min <= max",
		 test_int_bounds_are_checked_when_min_le_max},
		{"unknown key is refused", test_unknown_key_is_refused},
		{"missing required key is reported", test_missing_required_key_is_reported},
		{"wrong types are reported", test_wrong_types_are_reported},
		{"credential names are checked", test_credential_names_are_checked},
		{"string list reports each bad entry", test_string_list_reports_each_bad_entry},
		{"several errors are summarised", test_several_errors_are_summarised},
		{"free after failure releases everything",
		 test_free_after_failure_releases_everything},
		{"bad table defaults are reported", test_bad_table_defaults_are_reported},
		{"problems are appended", test_problems_are_appended},
	};
	CU_pSuite s = CU_add_suite("config_table", NULL, NULL);
	size_t i;

	if (!s)
		return;
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
}
