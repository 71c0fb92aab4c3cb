/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the site manifest (core/site/manifest.c, docs/manifest.md).
 *
 * Inline manifests are written with single quotes, which load() turns into double quotes,
 * so the JSON stays readable inside C strings. Fixture files under
 * tests/fixtures/manifests/ cover the cases where a whole file reads better.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include <amtprov/plugin.h>

#include "amt_password.h"
#include "manifest.h"

#ifndef AMTPROV_FIXTURES_DIR
#error "AMTPROV_FIXTURES_DIR must be defined by the build"
#endif
#ifndef AMTPROV_EXAMPLES_DIR
#error "AMTPROV_EXAMPLES_DIR must be defined by the build"
#endif

#define MANIFEST_FIXTURES AMTPROV_FIXTURES_DIR "/manifests"
/* A name for inline manifests: relative paths resolve against its directory. */
#define INLINE_NAME "/srv/amtprov/contoso/site.json"

/* The smallest valid start of a manifest; tests append sections and the closing brace. */
#define HEAD                                                                              \
	"{'manifest_version':1,'site':{'name':'contoso-lab','service_point_fqdn':"         \
	"'oob.contoso.com','dns_suffix':'contoso.com'}"

void register_manifest_tests(void);

/* Loads @p text with ' turned into ". */
static int load(const char *text, struct manifest **m, struct manifest_problems *pr,
		struct amtprov_error *err)
{
	char *json = strdup(text);
	char *q;
	int rc;

	CU_ASSERT_FATAL(json != NULL);
	for (q = json; *q; q++)
		if (*q == '\'')
			*q = '"';
	amtprov_error_clear(err);
	rc = manifest_load_string(json, INLINE_NAME, m, pr, err);
	free(json);
	return rc;
}

/* 1 if @p pr holds a problem at @p path of the given kind whose message contains @p text
 * (NULL: any message). */
static int has_problem(const struct manifest_problems *pr, const char *path, int warning,
		       const char *text)
{
	size_t i;

	for (i = 0; i < pr->count; i++) {
		const struct manifest_problem *p = &pr->items[i];

		if (strcmp(p->path, path) == 0 && p->warning == warning &&
		    (!text || strstr(p->msg, text)))
			return 1;
	}
	return 0;
}

/* Loads a manifest that must fail with AMTPROV_E_CONFIG and an error at @p path. */
static void expect_error(const char *text, const char *path, const char *msg_part)
{
	struct manifest *m = NULL;
	struct manifest_problems pr = {0};
	struct amtprov_error err;
	int rc = load(text, &m, &pr, &err);

	CU_ASSERT_EQUAL(rc, AMTPROV_E_CONFIG);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(err.code, AMTPROV_E_CONFIG);
	if (!has_problem(&pr, path, 0, msg_part)) {
		fprintf(stderr, "\nexpected an error at %s (%s); got:\n", path,
			msg_part ? msg_part : "any");
		manifest_problems_print(&pr, "inline", stderr);
		CU_FAIL("expected error not reported");
	}
	manifest_free(m);
	manifest_problems_free(&pr);
}

/* Loads a manifest that must succeed; returns it (caller frees). */
static struct manifest *expect_ok(const char *text, struct manifest_problems *pr)
{
	struct manifest *m = NULL;
	struct amtprov_error err;
	int rc = load(text, &m, pr, &err);

	if (rc != AMTPROV_OK) {
		fprintf(stderr, "\nunexpected failure: %s: %s\n", err.where, err.msg);
		manifest_problems_print(pr, "inline", stderr);
	}
	CU_ASSERT_EQUAL(rc, AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL(m);
	return m;
}

/* ---- examples ---------------------------------------------------------------------------- */

static void test_minimal_example_loads(void)
{
	struct manifest *m = NULL;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(manifest_load(AMTPROV_EXAMPLES_DIR "/manifests/minimal.json", &m, &pr,
				      &err), AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(pr.count, 0);
	CU_ASSERT_STRING_EQUAL(m->site_name, "minimal");
	CU_ASSERT_EQUAL(m->n_plugins, 0);
	manifest_free(m);
	manifest_problems_free(&pr);
}

/* R-WS-01, R-8021X-03, R-PC-06: the complete lab example loads with no problem at all. */
static void test_lab_example_loads_without_problems(void)
{
	struct manifest *m = NULL;
	struct manifest_problems pr = {0};
	struct amtprov_error err;
	const struct manifest_plugin *p;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(manifest_load(AMTPROV_EXAMPLES_DIR "/manifests/lab-site.json", &m, &pr,
				      &err), AMTPROV_OK);
	manifest_problems_print(&pr, "lab-site.json", stderr);
	CU_ASSERT_EQUAL(pr.count, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->n_plugins, 4);
	p = manifest_plugin_find(m, "lab-ca");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_STRING_EQUAL(p->plugin, "ca-local");
	CU_ASSERT_EQUAL(p->expected_kind, AMTPROV_KIND_CA);
	CU_ASSERT_STRING_EQUAL(m->web_server.ca, "lab-ca");
	CU_ASSERT_STRING_EQUAL(m->web_server.template_name, "AMTWebServer");
	CU_ASSERT_STRING_EQUAL(m->credstore, "creds");
	CU_ASSERT_STRING_EQUAL(m->transport, "amt");
	CU_ASSERT_STRING_EQUAL(m->netprofile, "radius");
	CU_ASSERT_PTR_NOT_NULL(m->ieee8021x);
	CU_ASSERT_EQUAL(m->n_prov_accounts, 2);
	CU_ASSERT_PTR_NULL(m->prov_accounts[1].password); /* null: empty password */
	CU_ASSERT_EQUAL(m->mebx_policy, 1);
	CU_ASSERT_EQUAL(m->n_amt_accounts, 1);
	CU_ASSERT_EQUAL(m->amt_accounts[0].kerberos, 0);
	CU_ASSERT_STRING_EQUAL(m->amt_accounts[0].realms[0], "redirection");
	CU_ASSERT_PTR_NULL(m->amt_accounts[0].realms[4]);
	CU_ASSERT_EQUAL(m->web_ui, 1);
	CU_ASSERT_EQUAL(m->ider, 0);
	manifest_free(m);
	manifest_problems_free(&pr);
}

/* ---- defaults ---------------------------------------------------------------------------- */

/* R-WS-03 (7 days / 42 days), R-PC-06 (24 h / 40 / 15 days), R-PROV-09 (factory account). */
static void test_defaults_are_applied(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m = expect_ok(HEAD "}", &pr);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->maintenance.evaluate_interval_days, 7);
	CU_ASSERT_EQUAL(m->maintenance.renew_within_days, 42);
	CU_ASSERT_EQUAL(m->maintenance.provcert_check_hours, 24);
	CU_ASSERT_EQUAL(m->maintenance.provcert_warning_days, 40);
	CU_ASSERT_EQUAL(m->maintenance.provcert_error_days, 15);
	CU_ASSERT_EQUAL(m->engine.max_in_flight, 256);
	CU_ASSERT_EQUAL(m->engine.max_starting, 256);
	CU_ASSERT_EQUAL(m->engine.ca_workers, 4);
	CU_ASSERT_EQUAL(m->engine.retry_base_seconds, 60);
	CU_ASSERT_EQUAL(m->engine.retry_max_seconds, 3600);
	CU_ASSERT_EQUAL(m->engine.max_attempts, 10);
	CU_ASSERT_EQUAL(m->engine.crash_loop_limit, 3);
	CU_ASSERT_EQUAL(m->web_server.key_bits, 2048);
	CU_ASSERT_PTR_NULL(m->web_server.ca);
	CU_ASSERT_EQUAL(m->admin_password_length, 16);
	CU_ASSERT_EQUAL(m->mebx_policy, 0); /* no MEBx password configured: nothing to set */
	CU_ASSERT_EQUAL(m->kerberos, -1);
	CU_ASSERT_EQUAL(m->web_ui, -1);
	CU_ASSERT_EQUAL(m->sol, -1);
	CU_ASSERT_EQUAL(m->ider, -1);
	CU_ASSERT_EQUAL(m->ping, -1);
	CU_ASSERT_PTR_NULL(m->power_policy);
	CU_ASSERT_EQUAL(m->n_prov_accounts, 1);
	CU_ASSERT_STRING_EQUAL(m->prov_accounts[0].user, "admin");
	CU_ASSERT_PTR_NULL(m->prov_accounts[0].password);
	CU_ASSERT_STRING_EQUAL(m->state_dir, "/srv/amtprov/contoso/state");
	CU_ASSERT_STRING_EQUAL(m->database_path, "/srv/amtprov/contoso/state/site.db");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m->plugin_path);
	CU_ASSERT_PTR_NULL(m->plugin_path[0]);
	CU_ASSERT_STRING_EQUAL(m->file, INLINE_NAME);
	CU_ASSERT_STRING_EQUAL(m->dir, "/srv/amtprov/contoso");
	manifest_free(m);
	manifest_problems_free(&pr);
}

/* R-WS-03, R-PC-06: configured values replace the defaults. */
static void test_maintenance_values_are_configurable(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m = expect_ok(
		HEAD ",'maintenance':{'evaluate_certificates':{'interval_days':1,"
		     "'renew_within_days':60},'provisioning_certificate_check':{"
		     "'interval_hours':12,'warning_days':60,'error_days':20}}}", &pr);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->maintenance.evaluate_interval_days, 1);
	CU_ASSERT_EQUAL(m->maintenance.renew_within_days, 60);
	CU_ASSERT_EQUAL(m->maintenance.provcert_check_hours, 12);
	CU_ASSERT_EQUAL(m->maintenance.provcert_warning_days, 60);
	CU_ASSERT_EQUAL(m->maintenance.provcert_error_days, 20);
	manifest_free(m);
	manifest_problems_free(&pr);
}

/* Issue 17 item 11: AMT 22 and later get RSA 3072 and SHA-384 by default; sites can change
 * or drop the rules, and a bad rule is refused with its path. */
static void test_amt_crypto_policy(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m = expect_ok(HEAD "}", &pr);
	int bits = 0, md = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	manifest_crypto_for(m, "16.1.25", 2048, &bits, &md);
	CU_ASSERT_EQUAL(bits, 2048);
	CU_ASSERT_EQUAL(md, 256);
	manifest_crypto_for(m, "22.0.10", 2048, &bits, &md);
	CU_ASSERT_EQUAL(bits, 3072);
	CU_ASSERT_EQUAL(md, 384);
	manifest_crypto_for(m, "23.1.0", 4096, &bits, &md); /* never lowered */
	CU_ASSERT_EQUAL(bits, 4096);
	CU_ASSERT_EQUAL(md, 384);
	manifest_crypto_for(m, "", 2048, &bits, &md); /* unknown version: the base */
	CU_ASSERT_EQUAL(bits, 2048);
	CU_ASSERT_EQUAL(md, 256);
	manifest_free(m);
	manifest_problems_free(&pr);

	m = expect_ok(HEAD ",'certificates':{'amt_crypto_policy':[]}}", &pr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	manifest_crypto_for(m, "22.0.10", 2048, &bits, &md);
	CU_ASSERT_EQUAL(bits, 2048);
	CU_ASSERT_EQUAL(md, 256);
	manifest_free(m);
	manifest_problems_free(&pr);

	m = expect_ok(HEAD ",'certificates':{'amt_crypto_policy':[{'amt_from':16,'key_bits':4096},"
			   "{'amt_from':19,'digest':'sha384'}]}}", &pr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	manifest_crypto_for(m, "16.1.25", 2048, &bits, &md);
	CU_ASSERT_EQUAL(bits, 4096);
	CU_ASSERT_EQUAL(md, 256);
	manifest_crypto_for(m, "19.0.5", 2048, &bits, &md);
	CU_ASSERT_EQUAL(bits, 4096);
	CU_ASSERT_EQUAL(md, 384);
	manifest_free(m);
	manifest_problems_free(&pr);

	expect_error(HEAD ",'certificates':{'amt_crypto_policy':[{'amt_from':22,'digest':'sha1'}]}}",
		     "/certificates/amt_crypto_policy/0/digest", "'sha1' is not one of");
	expect_error(HEAD ",'certificates':{'amt_crypto_policy':[{'key_bits':3072}]}}",
		     "/certificates/amt_crypto_policy/0/amt_from", "missing required key");
	expect_error(HEAD ",'certificates':{'amt_crypto_policy':[{'amt_from':22,'key_bits':3000}]}}",
		     "/certificates/amt_crypto_policy/0/key_bits", "must be 2048, 3072 or 4096");
}

/* ---- structure --------------------------------------------------------------------------- */

static void test_unknown_key_is_refused_with_its_path(void)
{
	expect_error(HEAD ",'colour':'blue'}", "/colour", "unknown key 'colour'");
	expect_error(HEAD ",'amt':{'pingg':true}}", "/amt/pingg", "unknown key");
	expect_error(HEAD ",'plugins':{'x':{'plugin':'ca-local','bogus':1}},"
			  "'certificates':{'web_server':{'ca':'x'}}}",
		     "/plugins/x/bogus", "unknown key 'bogus'");
	/* RFC 6901 escaping of '/' and '~' in the key. */
	expect_error(HEAD ",'a/b~c':1}", "/a~1b~0c", "unknown key");
}

/* Every error is reported in one load, and the summary counts them. */
static void test_all_errors_are_reported_at_once(void)
{
	struct manifest *m = NULL;
	struct manifest_problems pr = {0};
	struct amtprov_error err;
	int rc = load("{'manifest_version':1,'site':{'name':'-bad','service_point_fqdn':'oob',"
		      "'dns_suffix':'contoso.com','extra':1},'engine':{'ca_workers':0},"
		      "'amt':{'admin_password_length':'16'}}",
		      &m, &pr, &err);

	CU_ASSERT_EQUAL(rc, AMTPROV_E_CONFIG);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(pr.errors, 5);
	CU_ASSERT(has_problem(&pr, "/site/extra", 0, "unknown key"));
	CU_ASSERT(has_problem(&pr, "/site/name", 0, "not a valid site name"));
	CU_ASSERT(has_problem(&pr, "/site/service_point_fqdn", 0, "R-PC-02"));
	CU_ASSERT(has_problem(&pr, "/engine/ca_workers", 0, "from 1 to 64"));
	CU_ASSERT(has_problem(&pr, "/amt/admin_password_length", 0, "integer"));
	CU_ASSERT_STRING_EQUAL(err.where, INLINE_NAME);
	CU_ASSERT(strncmp(err.msg, "5 errors in manifest: /site/extra: ", 35) == 0);
	manifest_problems_free(&pr);
}

static void test_wrong_manifest_version_names_both_versions(void)
{
	expect_error("{'manifest_version':2,'site':{}}", "/manifest_version",
		     "manifest_version 2 is not supported; this build reads version 1");
	expect_error("{'manifest_version':'1'}", "/manifest_version", "integer");
	expect_error("{'site':{'name':'a','service_point_fqdn':'a.b.com','dns_suffix':'b.com'}}",
		     "/manifest_version", "missing required key");
}

static void test_missing_site_fields_are_reported(void)
{
	struct manifest *m = NULL;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL(load("{'manifest_version':1,'site':{}}", &m, &pr, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_EQUAL(pr.errors, 3);
	CU_ASSERT(has_problem(&pr, "/site/name", 0, "missing required key 'name'"));
	CU_ASSERT(has_problem(&pr, "/site/service_point_fqdn", 0, "missing required key"));
	CU_ASSERT(has_problem(&pr, "/site/dns_suffix", 0, "missing required key"));
	manifest_problems_free(&pr);
	expect_error("{'manifest_version':1}", "/site", "missing required key 'site'");
	expect_error("{'manifest_version':1,'site':{'name':'','service_point_fqdn':'a.b.com',"
		     "'dns_suffix':'b.com'}}", "/site/name", "must not be empty");
}

/* R-PC-02: the service point FQDN becomes the provisioning certificate's CN. */
static void test_bad_service_point_fqdn_is_refused(void)
{
	static const char *const bad[] = {
		"oob", "oob.contoso.com.", "-oob.contoso.com", "oob-.contoso.com",
		"oob_1.contoso.com", "oob..contoso.com", "10.0.0.1", "oob.contoso.com:443",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.contoso.com",
		NULL};
	size_t i;

	for (i = 0; bad[i]; i++) {
		char json[512];

		snprintf(json, sizeof(json),
			 "{'manifest_version':1,'site':{'name':'s','service_point_fqdn':'%s',"
			 "'dns_suffix':'contoso.com'}}", bad[i]);
		expect_error(json, "/site/service_point_fqdn", "R-PC-02");
	}
	expect_error("{'manifest_version':1,'site':{'name':'s','service_point_fqdn':"
		     "'oob.contoso.com','dns_suffix':'com'}}", "/site/dns_suffix", "two labels");
}

/* R-PC-02, R-PC-05: DNS names are stored lower-cased; a namespace mismatch is a warning. */
static void test_fqdn_is_lower_cased_and_namespace_checked(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m = expect_ok(
		"{'manifest_version':1,'site':{'name':'s','service_point_fqdn':'OOB.Contoso.COM',"
		"'dns_suffix':'Sales.Contoso.com'}}", &pr);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->service_point_fqdn, "oob.contoso.com");
	CU_ASSERT_STRING_EQUAL(m->dns_suffix, "sales.contoso.com");
	CU_ASSERT_EQUAL(pr.count, 0);
	manifest_free(m);
	manifest_problems_free(&pr);

	m = expect_ok("{'manifest_version':1,'site':{'name':'s','service_point_fqdn':"
		      "'server1.northwindtraders.com','dns_suffix':'contoso.com'}}", &pr);
	CU_ASSERT(has_problem(&pr, "/site/service_point_fqdn", 1, "R-PC-05"));
	manifest_free(m);
	manifest_problems_free(&pr);
}

/* ---- references -------------------------------------------------------------------------- */

static void test_dangling_plugin_reference_is_refused(void)
{
	expect_error(HEAD ",'amt':{'transport':'amt'}}", "/amt/transport",
		     "plugin instance 'amt' is not declared under /plugins");
	expect_error(HEAD ",'plugins':{'ca':{'plugin':'ca-local'}},'ieee8021x':{'plugin':'r',"
			  "'wired':{'name':'w','eap':'eap-tls','client_certificate':{'ca':'ca2'}}},"
			  "'certificates':{'web_server':{'ca':'ca'}}}",
		     "/ieee8021x/wired/client_certificate/ca", "'ca2' is not declared");
}

static void test_instance_used_as_two_kinds_is_refused(void)
{
	expect_error(HEAD ",'plugins':{'x':{'plugin':'ca-local'}},"
			  "'certificates':{'web_server':{'ca':'x'}},'amt':{'transport':'x'}}",
		     "/amt/transport", "as a CA plugin at /certificates/web_server/ca");
}

static void test_expected_kind_is_recorded_and_unused_instance_warned(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m = expect_ok(
		HEAD ",'plugins':{'ca':{'plugin':'ca-local','required':false,'config':{'k':[1]}},"
		     "'amt':{'plugin':'amt-transport'},'cs':{'plugin':'credstore-file'},"
		     "'spare':{'plugin':'ca-other'}},"
		     "'credentials':{'store':'cs'},'certificates':{'web_server':{'ca':'ca'}},"
		     "'amt':{'transport':'amt'}}", &pr);
	const struct manifest_plugin *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	p = manifest_plugin_find(m, "ca");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->expected_kind, AMTPROV_KIND_CA);
	CU_ASSERT_EQUAL(p->required, 0);
	CU_ASSERT(json_is_array(json_object_get(p->config, "k")));
	p = manifest_plugin_find(m, "amt");
	CU_ASSERT_EQUAL(p->expected_kind, AMTPROV_KIND_TRANSPORT);
	CU_ASSERT_EQUAL(p->required, 1);
	CU_ASSERT(json_is_object(p->config)); /* absent: an empty object, never NULL */
	CU_ASSERT_EQUAL(json_object_size(p->config), 0);
	CU_ASSERT_EQUAL(manifest_plugin_find(m, "cs")->expected_kind, AMTPROV_KIND_CREDSTORE);
	CU_ASSERT_EQUAL(manifest_plugin_find(m, "spare")->expected_kind, 0);
	CU_ASSERT_PTR_NULL(manifest_plugin_find(m, "nope"));
	CU_ASSERT_EQUAL(pr.errors, 0);
	CU_ASSERT(has_problem(&pr, "/plugins/spare", 1, "declared but not used"));
	manifest_free(m);
	manifest_problems_free(&pr);
}

/* R-ACC-02: credentials are names in a store; naming one without a store is an error. */
static void test_credential_without_store_is_refused(void)
{
	expect_error(HEAD ",'credentials':{'mebx_password':'site/mebx'}}",
		     "/credentials/mebx_password", "credentials.store");
	/* Reported once, at the first place that names a credential. */
	expect_error(HEAD ",'credentials':{'provisioning_accounts':[{'user':'admin',"
			  "'password':'site/a'}]},'amt':{'user_accounts':[{'name':'h',"
			  "'kerberos':false,'password':'site/h','realms':['redirection']}]}}",
		     "/credentials/provisioning_accounts/0/password", "credentials.store");
	expect_error(HEAD ",'plugins':{'cs':{'plugin':'credstore-file'}},"
			  "'credentials':{'store':'cs','mebx_password':'bad name'}}",
		     "/credentials/mebx_password", "not a valid credential name");
}

/* R-PROV-10: a MEBx policy that sets the password needs one. */
static void test_mebx_policy_needs_a_password(void)
{
	expect_error(HEAD ",'amt':{'mebx_password_policy':'always'}}",
		     "/amt/mebx_password_policy", "credentials.mebx_password");
	expect_error(HEAD ",'amt':{'mebx_password_policy':'sometimes'}}",
		     "/amt/mebx_password_policy", "not one of");
}

/* R-PC-07: the provisioning certificate is named one way only. */
static void test_pkcs12_and_certificate_are_exclusive(void)
{
	expect_error(HEAD ",'provisioning_certificate':{'certificate':'a.pem','pkcs12':'a.p12'}}",
		     "/provisioning_certificate", "mutually exclusive");
	expect_error(HEAD ",'provisioning_certificate':{}}", "/provisioning_certificate",
		     "needs either");
	expect_error(HEAD ",'provisioning_certificate':{'pkcs12':'a.p12','key':'a.key'}}",
		     "/provisioning_certificate/key", "belongs with 'certificate'");
}

/* R-PROV-11 (1): AMT user accounts. */
static void test_amt_user_accounts_are_checked(void)
{
	expect_error(HEAD ",'amt':{'user_accounts':[{'name':'CONTOSO\\\\Admins','password':'x',"
			  "'realms':['redirection']}]}}",
		     "/amt/user_accounts/0/password", "Kerberos account has no password");
	expect_error(HEAD ",'amt':{'user_accounts':[{'name':'h','kerberos':false,"
			  "'realms':['redirection']}]}}",
		     "/amt/user_accounts/0/password", "missing required key");
	/* R-ACC-01: Kerberos needs the directory: for the key, and for names */
	expect_error(HEAD ",'amt':{'kerberos':true}}", "/amt/kerberos", "needs 'directory'");
	expect_error(HEAD ",'amt':{'user_accounts':[{'name':'CONTOSO\\\\Admins',"
			  "'realms':['redirection']}]}}",
		     "/amt/user_accounts/0/name", "resolved to its SID through 'directory'");
	expect_error(HEAD ",'amt':{'user_accounts':[{'name':'a','realms':['redirection']},"
			  "{'name':'a','realms':['redirection']}]}}",
		     "/amt/user_accounts/1/name", "already defined");
	expect_error(HEAD ",'amt':{'user_accounts':[{'name':'a','realms':['storage','bogus']}]}}",
		     "/amt/user_accounts/0/realms/1", "unknown AMT realm 'bogus'");
	expect_error(HEAD ",'amt':{'user_accounts':[{'name':'a','realms':['storage','storage']}]}}",
		     "/amt/user_accounts/0/realms/1", "listed twice");
	expect_error(HEAD ",'amt':{'user_accounts':[{'name':'a','realms':[]}]}}",
		     "/amt/user_accounts/0/realms", "at least one realm");
	expect_error(HEAD ",'amt':{'user_accounts':[{'name':'a','realms':['eit'],"
			  "'access':'remote'}]}}", "/amt/user_accounts/0/access", "not one of");
}

/* R-PROV-04: a directory container only makes sense with a directory plugin. */
static void test_directory_container_needs_directory(void)
{
	expect_error(HEAD ",'amt':{'directory_container':'OU=AMT,DC=contoso,DC=com'}}",
		     "/amt/directory_container", "needs 'directory'");
}

#define X_CA_PLUGIN ",'plugins':{'ca':{'plugin':'ca-local'}}"

/* R-PROV-06: where the web server key is made; "auto" unless the manifest says otherwise. */
static void test_web_server_key_source(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m;

	m = expect_ok(HEAD X_CA_PLUGIN ",'certificates':{'web_server':{'ca':'ca'}}}", &pr);
	CU_ASSERT_EQUAL(m->web_server.key_source, MANIFEST_KEY_AUTO);
	manifest_free(m);
	manifest_problems_free(&pr);
	m = expect_ok(HEAD X_CA_PLUGIN ",'certificates':{'web_server':{'ca':'ca',"
					"'key_source':'amtprov'}}}", &pr);
	CU_ASSERT_EQUAL(m->web_server.key_source, MANIFEST_KEY_AMTPROV);
	manifest_free(m);
	manifest_problems_free(&pr);
	m = expect_ok(HEAD X_CA_PLUGIN ",'certificates':{'web_server':{'ca':'ca',"
					"'key_source':'amt'}}}", &pr);
	CU_ASSERT_EQUAL(m->web_server.key_source, MANIFEST_KEY_AMT);
	manifest_free(m);
	manifest_problems_free(&pr);
	expect_error(HEAD X_CA_PLUGIN ",'certificates':{'web_server':{'ca':'ca',"
				      "'key_source':'tpm'}}}",
		     "/certificates/web_server/key_source", "'tpm' is not one of \"auto\"");
}

/* ---- 802.1X ------------------------------------------------------------------------------ */

#define X_PLUGINS                                                                         \
	",'plugins':{'ca':{'plugin':'ca-local'},'radius':{'plugin':'radius-8021x'}}"

/* R-8021X-01: EAP-TLS always needs a client certificate; the others may do without. */
static void test_eap_tls_requires_a_client_certificate(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m;

	expect_error(HEAD X_PLUGINS ",'ieee8021x':{'plugin':'radius','wired':{'name':'w',"
				    "'eap':'eap-tls'}},'certificates':{'web_server':{'ca':'ca'}}}",
		     "/ieee8021x/wired/client_certificate", "R-8021X-01");
	expect_error(HEAD X_PLUGINS ",'ieee8021x':{'plugin':'radius','wireless':[{'name':'w',"
				    "'ssid':'S','security':'wpa2-enterprise','eap':'eap-tls'}]},"
				    "'certificates':{'web_server':{'ca':'ca'}}}",
		     "/ieee8021x/wireless/0/client_certificate", "R-8021X-01");
	m = expect_ok(HEAD X_PLUGINS ",'ieee8021x':{'plugin':'radius','wired':{'name':'w',"
				     "'eap':'peap-mschapv2','username':'u'}},"
				     "'certificates':{'web_server':{'ca':'ca'}}}", &pr);
	CU_ASSERT_EQUAL(pr.count, 0);
	manifest_free(m);
	manifest_problems_free(&pr);
}

/* Builds an 802.1X section with @p n wireless profiles using @p n_templates templates. */
static char *wireless_manifest(int n, int n_templates)
{
	size_t cap = 8192, len;
	char *s = malloc(cap);
	int i;

	CU_ASSERT_FATAL(s != NULL);
	len = (size_t)snprintf(s, cap,
			       "%s%s,'certificates':{'web_server':{'ca':'ca'}},"
			       "'ieee8021x':{'plugin':'radius','wireless':[",
			       HEAD, X_PLUGINS);
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len,
					"%s{'name':'wifi%d','ssid':'SSID%d','priority':%d,"
					"'security':'wpa2-enterprise','eap':'eap-tls',"
					"'client_certificate':{'ca':'ca','template':'T%d'}}",
					i ? "," : "", i, i, i, i % n_templates);
	snprintf(s + len, cap - len, "]}}");
	return s;
}

/* R-8021X-03: at most 8 different templates across wireless profiles. */
static void test_more_than_eight_wireless_templates_is_an_error(void)
{
	char *json = wireless_manifest(9, 9);

	expect_error(json, "/ieee8021x/wireless", "R-8021X-03");
	free(json);
}

/* R-8021X-03: more than one template works, with a warning that names them. */
static void test_several_templates_give_a_warning(void)
{
	struct manifest_problems pr = {0};
	char *json = wireless_manifest(8, 8);
	struct manifest *m = expect_ok(json, &pr);

	CU_ASSERT_EQUAL(pr.errors, 0);
	CU_ASSERT(has_problem(&pr, "/ieee8021x", 1, "8 different client-certificate templates"));
	CU_ASSERT(has_problem(&pr, "/ieee8021x", 1, "T0, T1"));
	manifest_free(m);
	manifest_problems_free(&pr);
	free(json);

	json = wireless_manifest(3, 1);
	m = expect_ok(json, &pr);
	CU_ASSERT_EQUAL(pr.count, 0); /* one template: best practice, no warning */
	manifest_free(m);
	manifest_problems_free(&pr);
	free(json);
}

static void test_wireless_profiles_are_checked(void)
{
	char *json = wireless_manifest(17, 1);

	expect_error(json, "/ieee8021x/wireless", "at most 16");
	free(json);
	expect_error(HEAD X_PLUGINS ",'ieee8021x':{'plugin':'radius','wired':{'name':'p',"
				    "'eap':'peap-mschapv2'},'wireless':[{'name':'p','ssid':'S',"
				    "'security':'wpa2-enterprise','eap':'peap-mschapv2'}]}}",
		     "/ieee8021x/wireless/0/name", "used twice");
	expect_error(HEAD X_PLUGINS ",'ieee8021x':{'plugin':'radius','wireless':[{'name':'p',"
				    "'ssid':'S','priority':256,'security':'wpa2-enterprise',"
				    "'eap':'peap-mschapv2'}]}}",
		     "/ieee8021x/wireless/0/priority", "from 0 to 255");
	expect_error(HEAD ",'ieee8021x':{'wired':{'name':'p','eap':'peap-mschapv2'}}}",
		     "/ieee8021x/plugin", "missing required key");
}

/* ---- JSON errors ------------------------------------------------------------------------- */

static void test_duplicate_json_keys_are_refused(void)
{
	struct manifest *m = NULL;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	CU_ASSERT_EQUAL(load(HEAD ",'engine':{'ca_workers':2,'ca_workers':3}}", &m, &pr, &err),
			AMTPROV_E_PARSE);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "duplicate"));
	CU_ASSERT_EQUAL(pr.errors, 1);
	manifest_problems_free(&pr);
}

static void test_syntax_error_gives_line_and_column(void)
{
	struct manifest *m = NULL;
	struct manifest_problems pr = {0};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(manifest_load_string("{\n  \"manifest_version\": 1,\n  \"site\": {,\n}",
					     "x.json", &m, &pr, &err),
			AMTPROV_E_PARSE);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "line 3, column 12"));
	CU_ASSERT_STRING_EQUAL(err.where, "x.json");
	CU_ASSERT_EQUAL(pr.count, 1);
	CU_ASSERT_STRING_EQUAL(pr.items[0].path, "");
	CU_ASSERT_PTR_NOT_NULL(strstr(pr.items[0].msg, "line 3"));
	manifest_problems_free(&pr);
}

/* R-PC-06: the error threshold lies below the warning threshold. */
static void test_error_days_must_be_below_warning_days(void)
{
	expect_error(HEAD ",'maintenance':{'provisioning_certificate_check':{'warning_days':20,"
			  "'error_days':20}}}",
		     "/maintenance/provisioning_certificate_check/error_days", "R-PC-06");
	/* The default error_days (15) counts too. */
	expect_error(HEAD ",'maintenance':{'provisioning_certificate_check':{'warning_days':10}}}",
		     "/maintenance/provisioning_certificate_check/warning_days", "R-PC-06");
	expect_error(HEAD ",'maintenance':{'evaluate_certificates':{'interval_days':0}}}",
		     "/maintenance/evaluate_certificates/interval_days", "from 1 to 365");
	expect_error(HEAD ",'engine':{'retry':{'base_seconds':100,'max_seconds':50}}}",
		     "/engine/retry/max_seconds", "base_seconds");
}

/* ---- files ------------------------------------------------------------------------------- */

static void test_relative_paths_resolve_against_the_manifest_directory(void)
{
	struct manifest *m = NULL;
	struct manifest_problems pr = {0};
	struct amtprov_error err;
	char want[1024];

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(manifest_load(MANIFEST_FIXTURES "/good-relative-paths.json", &m, &pr,
				      &err), AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	/* The fixtures directory may be reached through a symbolic link: compare with what
	 * the manifest reports as its own directory, then check that is the fixtures one. */
	CU_ASSERT_PTR_NOT_NULL(strstr(m->dir, "/tests/fixtures/manifests"));
	snprintf(want, sizeof(want), "%s/run/state", m->dir);
	CU_ASSERT_STRING_EQUAL(m->state_dir, want);
	snprintf(want, sizeof(want), "%s/db/../db/site.db", m->dir);
	CU_ASSERT_STRING_EQUAL(m->database_path, want);
	snprintf(want, sizeof(want), "%s/plugins", m->dir);
	CU_ASSERT_STRING_EQUAL(m->plugin_path[0], want);
	CU_ASSERT_STRING_EQUAL(m->plugin_path[1], "/opt/amtprov/plugins");
	CU_ASSERT_PTR_NULL(m->plugin_path[2]);
	snprintf(want, sizeof(want), "%s/certs/prov-chain.pem", m->dir);
	CU_ASSERT_STRING_EQUAL(m->provcert_file, want);
	snprintf(want, sizeof(want), "%s/certs/prov.key", m->dir);
	CU_ASSERT_STRING_EQUAL(m->provcert_key_file, want);
	CU_ASSERT_PTR_NULL(m->provcert_pkcs12_file);
	manifest_free(m);
	manifest_problems_free(&pr);
}

/* database.password_file (issue 16): PostgreSQL only, resolved like every path, and checked
 * by manifest_check_inputs as a secret (owned by us, no group or other bits). */
static void test_database_password_file_is_a_private_input(void)
{
	struct manifest_problems pr = {0}, ck = {0};
	char tmpl[] = "/tmp/amtprov-pwfile-XXXXXX", text[512];
	struct manifest *m;
	int fd;

	expect_error(HEAD ",'database':{'path':'site.db','password_file':'db.pw'}}",
		     "/database/password_file", "PostgreSQL");
	m = expect_ok(HEAD ",'database':{'url':'host=/run/postgresql dbname=s',"
			   "'password_file':'db.pw'}}",
		      &pr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->database_password_file, "/srv/amtprov/contoso/db.pw");
	manifest_free(m);
	manifest_problems_free(&pr);

	fd = mkstemp(tmpl);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "pw\n", 3), 3);
	close(fd);
	snprintf(text, sizeof(text),
		 HEAD ",'database':{'url':'host=/run/postgresql dbname=s','password_file':'%s'}}",
		 tmpl);
	m = expect_ok(text, &pr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(chmod(tmpl, 0600), 0);
	CU_ASSERT_EQUAL(manifest_check_inputs(m, &ck), 0);
	CU_ASSERT_EQUAL(chmod(tmpl, 0640), 0);
	CU_ASSERT_EQUAL(manifest_check_inputs(m, &ck), 1);
	CU_ASSERT(has_problem(&ck, "/database/password_file", 0, "chmod 600"));
	unlink(tmpl);
	manifest_free(m);
	manifest_problems_free(&pr);
	manifest_problems_free(&ck);
}

/* 802.1X server_ca paths are resolved inside the borrowed ieee8021x object. */
static void test_8021x_server_ca_is_resolved_in_the_tree(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m = expect_ok(
		HEAD X_PLUGINS ",'certificates':{'web_server':{'ca':'ca'}},'ieee8021x':{"
			       "'plugin':'radius','wired':{'name':'w','eap':'peap-mschapv2',"
			       "'server_ca':'certs/radius-ca.pem',"
			       "'server_name':'Radius.Contoso.com'}}}",
		&pr);
	const json_t *wired;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	wired = json_object_get(m->ieee8021x, "wired");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(wired, "server_ca")),
			       "/srv/amtprov/contoso/certs/radius-ca.pem");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(wired, "server_name")),
			       "radius.contoso.com");
	manifest_free(m);
	manifest_problems_free(&pr);
}

static void test_missing_file_is_not_found(void)
{
	struct manifest *m = (struct manifest *)&m; /* a sentinel that must stay untouched */
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(manifest_load(MANIFEST_FIXTURES "/no-such-file.json", &m, NULL, &err),
			AMTPROV_E_NOT_FOUND);
	CU_ASSERT_PTR_EQUAL(m, (struct manifest *)&m);
	CU_ASSERT_STRING_EQUAL(err.where, MANIFEST_FIXTURES "/no-such-file.json");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(manifest_load(MANIFEST_FIXTURES, &m, NULL, &err), AMTPROV_E_IO);
}

/* A failed load returns no manifest and frees everything (LeakSanitizer checks the rest). */
static void test_failed_load_returns_nothing_and_leaks_nothing(void)
{
	struct manifest *m = (struct manifest *)&m;
	struct amtprov_error err;

	/* Fails late (cross references) after every section allocated something. */
	CU_ASSERT_EQUAL(load(HEAD ",'plugin_path':['p'],'plugins':{'a':{'plugin':'x'}},"
			     "'credentials':{'provisioning_accounts':[{'user':'u'}]},"
			     "'provisioning_certificate':{'certificate':'c.pem'},"
			     "'amt':{'transport':'missing','user_accounts':[{'name':'S-1-5-32-544',"
			     "'realms':['eit']}]}}", &m, NULL, &err),
			AMTPROV_E_CONFIG);
	CU_ASSERT_PTR_EQUAL(m, (struct manifest *)&m);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/amt/transport"));
	manifest_free(NULL); /* accepted */
}

/* Every bad-*.json fixture fails with the listed code and an error at the listed path. */
static const struct {
	const char *file;
	int code;
	const char *path;
} bad_fixtures[] = {
	{"bad-unknown-key.json", AMTPROV_E_CONFIG, "/site/nmae"},
	{"bad-version.json", AMTPROV_E_CONFIG, "/manifest_version"},
	{"bad-fqdn.json", AMTPROV_E_CONFIG, "/site/service_point_fqdn"},         /* R-PC-02 */
	{"bad-missing-site.json", AMTPROV_E_CONFIG, "/site"},
	{"bad-dangling-plugin.json", AMTPROV_E_CONFIG, "/certificates/web_server/ca"},
	{"bad-kind-conflict.json", AMTPROV_E_CONFIG, "/amt/transport"},
	{"bad-credential-no-store.json", AMTPROV_E_CONFIG, "/credentials/mebx_password"},
	{"bad-pkcs12-and-certificate.json", AMTPROV_E_CONFIG, "/provisioning_certificate"},
	{"bad-eap-tls-without-certificate.json", AMTPROV_E_CONFIG,
	 "/ieee8021x/wired/client_certificate"},                                  /* R-8021X-01 */
	{"bad-error-days.json", AMTPROV_E_CONFIG,
	 "/maintenance/provisioning_certificate_check/error_days"},               /* R-PC-06 */
	{"bad-realm.json", AMTPROV_E_CONFIG, "/amt/user_accounts/0/realms/1"},   /* R-PROV-11 */
	{"bad-ssid-too-long.json", AMTPROV_E_CONFIG, "/ieee8021x/wireless/0/ssid"},
	{"bad-not-object.json", AMTPROV_E_CONFIG, ""},
	{"bad-duplicate-key.json", AMTPROV_E_PARSE, ""},
	{"bad-syntax.json", AMTPROV_E_PARSE, ""},
};

static void test_bad_fixtures_fail_at_the_expected_path(void)
{
	size_t i, n = sizeof(bad_fixtures) / sizeof(bad_fixtures[0]);
	DIR *d;
	struct dirent *de;

	for (i = 0; i < n; i++) {
		char file[1024];
		struct manifest *m = NULL;
		struct manifest_problems pr = {0};
		struct amtprov_error err;
		int rc;

		snprintf(file, sizeof(file), "%s/%s", MANIFEST_FIXTURES, bad_fixtures[i].file);
		amtprov_error_clear(&err);
		rc = manifest_load(file, &m, &pr, &err);
		if (rc != bad_fixtures[i].code ||
		    !has_problem(&pr, bad_fixtures[i].path, 0, NULL)) {
			fprintf(stderr, "\n%s: rc %d (want %d), want an error at '%s'; got:\n",
				bad_fixtures[i].file, rc, bad_fixtures[i].code,
				bad_fixtures[i].path);
			manifest_problems_print(&pr, bad_fixtures[i].file, stderr);
			CU_FAIL("bad fixture did not fail as expected");
		}
		CU_ASSERT_PTR_NULL(m);
		CU_ASSERT_EQUAL(err.code, bad_fixtures[i].code);
		manifest_problems_free(&pr);
	}

	/* A new bad-*.json without an entry in the table above is a test bug. */
	d = opendir(MANIFEST_FIXTURES);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		int listed = 0;

		if (strncmp(de->d_name, "bad-", 4) != 0 || len < 5 ||
		    strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		for (i = 0; i < n; i++)
			if (strcmp(bad_fixtures[i].file, de->d_name) == 0)
				listed = 1;
		if (!listed)
			fprintf(stderr, "\nfixture %s has no expectation\n", de->d_name);
		CU_ASSERT(listed);
	}
	closedir(d);
}

/* ---- capabilities ------------------------------------------------------------------------ */

struct caps {
	char lines[32][160];
	int n;
	int stop_after;
};

static int collect_cap(void *ctx, const char *instance, const char *cap, const char *path)
{
	struct caps *c = ctx;

	if (c->n < 32)
		snprintf(c->lines[c->n], sizeof(c->lines[0]), "%s %s %s", instance, cap, path);
	c->n++;
	return c->stop_after && c->n >= c->stop_after ? 42 : 0;
}

static int caps_has(const struct caps *c, const char *line)
{
	int i;

	for (i = 0; i < c->n && i < 32; i++)
		if (strcmp(c->lines[i], line) == 0)
			return 1;
	return 0;
}

/* R-WS-01, R-REV-02, R-8021X-02, R-PROV-04, R-PROV-10/11: what each instance must provide. */
static void test_required_caps_list_what_the_site_needs(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m = expect_ok(
		HEAD ",'plugins':{'ca':{'plugin':'ca-local'},'ca2':{'plugin':'ca-mscert'},"
		     "'radius':{'plugin':'radius-8021x'},'amt':{'plugin':'amt-transport'},"
		     "'ad':{'plugin':'dir-ad'}},"
		     "'certificates':{'web_server':{'ca':'ca'}},"
		     "'amt':{'transport':'amt','directory':'ad','directory_container':'OU=AMT'},"
		     "'ieee8021x':{'plugin':'radius','wireless':[{'name':'w','ssid':'S',"
		     "'security':'wpa3-enterprise','eap':'eap-tls','client_certificate':"
		     "{'ca':'ca2','template':'T'}}]}}", &pr);
	struct caps c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(manifest_required_caps(m, collect_cap, &c), 0);
	CU_ASSERT_EQUAL(c.n, 10);
	CU_ASSERT(caps_has(&c, "ca ca:submit /certificates/web_server/ca"));
	CU_ASSERT(caps_has(&c, "ca ca:purpose-web-server /certificates/web_server/ca"));
	CU_ASSERT(caps_has(&c, "ca ca:revoke /certificates/web_server/ca"));
	CU_ASSERT(caps_has(&c, "ca2 ca:submit /ieee8021x/wireless/0/client_certificate/ca"));
	CU_ASSERT(caps_has(&c, "ca2 ca:purpose-8021x-client "
			       "/ieee8021x/wireless/0/client_certificate/ca"));
	CU_ASSERT(caps_has(&c, "ca2 ca:revoke /ieee8021x/wireless/0/client_certificate/ca"));
	CU_ASSERT(caps_has(&c, "amt transport:wsman /amt/transport"));
	CU_ASSERT(caps_has(&c, "amt transport:soap /amt/transport"));
	CU_ASSERT(caps_has(&c, "radius netprofile:wifi /ieee8021x/plugin"));
	CU_ASSERT(!caps_has(&c, "radius netprofile:wired /ieee8021x/plugin"));
	CU_ASSERT(caps_has(&c, "ad directory:account /amt/directory"));
	CU_ASSERT_EQUAL(manifest_plugin_find(m, "ad")->expected_kind, AMTPROV_KIND_DIRECTORY);
	CU_ASSERT_EQUAL(manifest_plugin_find(m, "radius")->expected_kind,
			AMTPROV_KIND_NETPROFILE);

	/* A non-zero answer stops the walk and is returned. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	CU_ASSERT_EQUAL(manifest_required_caps(m, collect_cap, &c), 42);
	CU_ASSERT_EQUAL(c.n, 2);
	manifest_free(m);
	manifest_problems_free(&pr);
}

static void test_problems_print_format(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m = NULL;
	struct amtprov_error err;
	char buf[4096];
	size_t n;
	FILE *f = tmpfile();

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(load(HEAD ",'plugins':{'x':{'plugin':'p'}},'bogus':1}", &m, &pr, &err),
			AMTPROV_E_CONFIG);
	manifest_problems_print(&pr, "site.json", f);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "site.json: /bogus: unknown key 'bogus'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "site.json: /plugins/x: warning: plugin instance 'x' "
					   "is declared but not used\n"));
	CU_ASSERT_EQUAL(pr.count, 2);
	CU_ASSERT_EQUAL(pr.errors, 1);
	manifest_problems_free(&pr);
}

/* The registration API section (docs/api.md): parsed, defaulted, every error at its path. */
#define API_HEAD HEAD ",'plugins':{'cs':{'plugin':'credstore-file'}},'credentials':{'store':'cs'}"

static void test_api_section_is_parsed(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m = expect_ok(API_HEAD ",'api':{'listen':'127.0.0.1:8443','certificate':"
					       "'api.pem','key':'/etc/api.key','admin_tokens':['api/a',"
					       "'api/b'],'registration_keys':['api/reg'],"
					       "'address_allow':['10.1.0.0/16','fd00::/8','10.0.0.7'],"
					       "'client_ca':'ca.pem','max_body':2048,"
					       "'max_connections':50,'max_connections_per_address':50,"
					       "'request_deadline_seconds':4}}",
				       &pr);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->api.enabled, 1);
	CU_ASSERT_STRING_EQUAL(m->api.host, "127.0.0.1");
	CU_ASSERT_EQUAL(m->api.port, 8443);
	CU_ASSERT_STRING_EQUAL(m->api.certificate, "/srv/amtprov/contoso/api.pem");
	CU_ASSERT_STRING_EQUAL(m->api.key, "/etc/api.key");
	CU_ASSERT_STRING_EQUAL(m->api.client_ca, "/srv/amtprov/contoso/ca.pem");
	CU_ASSERT_EQUAL(m->api.n_admin_tokens, 2);
	CU_ASSERT_STRING_EQUAL(m->api.admin_tokens[1], "api/b");
	CU_ASSERT_PTR_NULL(m->api.admin_tokens[2]);
	CU_ASSERT_EQUAL(m->api.n_registration_keys, 1);
	CU_ASSERT_STRING_EQUAL(m->api.registration_keys[0], "api/reg");
	/* The secure default: an address in the allow-list or one the FQDN resolves to. */
	CU_ASSERT_EQUAL(m->api.address_check, MANIFEST_ADDR_DNS_OR_ALLOW_LIST);
	CU_ASSERT_EQUAL(m->api.n_address_allow, 3);
	CU_ASSERT_EQUAL(m->api.address_allow[2].prefix, 32);
	CU_ASSERT_EQUAL(m->api.max_body, 2048);
	CU_ASSERT_EQUAL(m->api.max_connections, 50);
	CU_ASSERT_EQUAL(m->api.max_connections_per_address, 50); /* the cap itself: allowed */
	CU_ASSERT_EQUAL(m->api.request_deadline_seconds, 4);
	manifest_free(m);
	manifest_problems_free(&pr);

	m = expect_ok(API_HEAD ",'api':{'listen':'[::1]:443','certificate':'a.pem','key':'a.key',"
			       "'registration_keys':['k'],'address_check':'dns'}}",
		      &pr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->api.host, "::1");
	CU_ASSERT_EQUAL(m->api.port, 443);
	CU_ASSERT_EQUAL(m->api.max_body, 65536);
	/* 0: sized from the open-files limit when the API starts */
	CU_ASSERT_EQUAL(m->api.max_connections, 0);
	/* -1: a quarter of the cap in force, at most 32, when the API starts */
	CU_ASSERT_EQUAL(m->api.max_connections_per_address, -1);
	CU_ASSERT_EQUAL(m->api.request_deadline_seconds, 10);
	CU_ASSERT_EQUAL(m->api.n_admin_tokens, 0);
	CU_ASSERT_EQUAL(m->api.address_check, MANIFEST_ADDR_DNS);
	CU_ASSERT_PTR_NULL(m->api.client_ca);
	manifest_free(m);
	manifest_problems_free(&pr);

	/* 0: no per-address limit (with the cap sized at start, nothing to compare it with) */
	m = expect_ok(API_HEAD ",'api':{'listen':'127.0.0.1:1','certificate':'a.pem','key':'a.key',"
			       "'registration_keys':['k'],'max_connections_per_address':0}}",
		      &pr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->api.max_connections_per_address, 0);
	manifest_free(m);
	manifest_problems_free(&pr);

	m = expect_ok(HEAD "}", &pr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->api.enabled, 0);
	CU_ASSERT_EQUAL(m->n_fqdn_patterns, 0);
	manifest_free(m);
	manifest_problems_free(&pr);
}

/* monitoring.metrics_listen (issue 16): a loopback address may go without a token, any
 * other address needs metrics_tokens. */
static void test_monitoring_section(void)
{
	struct manifest_problems pr = {0};
	struct manifest *m = expect_ok(API_HEAD ",'monitoring':{'metrics_listen':'127.0.0.1:9464'}}",
				       &pr);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->monitoring.metrics_host, "127.0.0.1");
	CU_ASSERT_EQUAL(m->monitoring.metrics_port, 9464);
	CU_ASSERT_EQUAL(m->monitoring.n_metrics_tokens, 0);
	manifest_free(m);
	manifest_problems_free(&pr);
	m = expect_ok(API_HEAD ",'monitoring':{'metrics_listen':'[::1]:9464'}}", &pr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->monitoring.metrics_host, "::1");
	manifest_free(m);
	manifest_problems_free(&pr);
	m = expect_ok(API_HEAD ",'monitoring':{'metrics_listen':'10.0.0.5:9464',"
			       "'metrics_tokens':['mon/prometheus']}}",
		      &pr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->monitoring.n_metrics_tokens, 1);
	CU_ASSERT_STRING_EQUAL(m->monitoring.metrics_tokens[0], "mon/prometheus");
	manifest_free(m);
	manifest_problems_free(&pr);
	m = expect_ok(HEAD "}", &pr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_PTR_NULL(m->monitoring.metrics_host);
	manifest_free(m);
	manifest_problems_free(&pr);

	expect_error(API_HEAD ",'monitoring':{'metrics_listen':'10.0.0.5:9464'}}",
		     "/monitoring/metrics_listen", "not a loopback address");
	expect_error(API_HEAD ",'monitoring':{'metrics_listen':'0.0.0.0:9464'}}",
		     "/monitoring/metrics_listen", "not a loopback address");
	expect_error(API_HEAD ",'monitoring':{}}", "/monitoring/metrics_listen",
		     "missing required key");
	expect_error(API_HEAD ",'monitoring':{'metrics_listen':'localhost:9464'}}",
		     "/monitoring/metrics_listen", "not an IPv4 address");
	expect_error(API_HEAD ",'monitoring':{'metrics_listen':'127.0.0.1:9464','tokens':['a']}}",
		     "/monitoring/tokens", "unknown key");
	expect_error(API_HEAD ",'monitoring':{'metrics_listen':'127.0.0.1:9464',"
			      "'metrics_tokens':[]}}",
		     "/monitoring/metrics_tokens", "at least one");
}

static void test_api_section_errors_have_paths(void)
{
#define API_OK_REST "'certificate':'a.pem','key':'a.key','admin_tokens':['t']"
#define API_L "'listen':'127.0.0.1:1','certificate':'a.pem','key':'a.key'"
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1:8443'," API_OK_REST ",'port':1}}",
		     "/api/port", "unknown key");
	expect_error(API_HEAD ",'api':{" API_OK_REST "}}", "/api/listen", "missing required key");
	expect_error(API_HEAD ",'api':{'listen':'localhost:8443'," API_OK_REST "}}", "/api/listen",
		     "not an IPv4 address");
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1'," API_OK_REST "}}", "/api/listen",
		     "host:port");
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1:0'," API_OK_REST "}}", "/api/listen",
		     "port from 1 to 65535");
	expect_error(API_HEAD ",'api':{'listen':'::1:443'," API_OK_REST "}}", "/api/listen",
		     "[IPv6]:port");
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1:1','key':'a.key','admin_tokens':['t']}}",
		     "/api/certificate", "missing required key");
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1:1','certificate':'a.pem',"
			      "'admin_tokens':['t']}}",
		     "/api/key", "missing required key");
	expect_error(API_HEAD ",'api':{" API_L "}}", "/api", "names no credential");
	/* The shared token of earlier versions is refused, saying what to change. */
	expect_error(API_HEAD ",'api':{" API_L ",'tokens':['t']}}", "/api/tokens",
		     "rename it to 'admin_tokens'");
	expect_error(API_HEAD ",'api':{" API_L ",'admin_tokens':[]}}", "/api/admin_tokens",
		     "at least one");
	expect_error(API_HEAD ",'api':{" API_L ",'admin_tokens':['t','t']}}",
		     "/api/admin_tokens/1", "listed twice");
	expect_error(API_HEAD ",'api':{" API_L ",'admin_tokens':['bad name']}}",
		     "/api/admin_tokens/0", "not a valid credential name");
	expect_error(API_HEAD ",'api':{" API_L ",'registration_keys':['bad name']}}",
		     "/api/registration_keys/0", "not a valid credential name");
	expect_error(API_HEAD ",'api':{" API_L ",'registration_keys':['k'],'address_check':"
			      "'maybe'}}",
		     "/api/address_check", "is not one of");
	expect_error(API_HEAD ",'api':{" API_L ",'registration_keys':['k'],'address_check':"
			      "'allow_list'}}",
		     "/api/address_allow", "needs the networks");
	expect_error(API_HEAD ",'api':{" API_L ",'registration_keys':['k'],'address_allow':"
			      "['10.0.0.5/8']}}",
		     "/api/address_allow/0", "host bits");
	expect_error(API_HEAD ",'api':{" API_L ",'registration_keys':['k'],'address_allow':"
			      "['10.0.0.0/33']}}",
		     "/api/address_allow/0", "prefix length");
	expect_error(API_HEAD ",'api':{" API_L ",'registration_keys':['k'],'address_allow':"
			      "['lan.contoso.com']}}",
		     "/api/address_allow/0", "not an IPv4 or IPv6 address");
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1:1'," API_OK_REST ",'max_body':10}}",
		     "/api/max_body", "from 1024 to 1048576");
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1:1'," API_OK_REST ",'max_connections':0}}",
		     "/api/max_connections", "from 1 to 65536");
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1:1'," API_OK_REST
			      ",'max_connections_per_address':-1}}",
		     "/api/max_connections_per_address", "from 0 to 65536");
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1:1'," API_OK_REST
			      ",'max_connections_per_address':'8'}}",
		     "/api/max_connections_per_address", "must be an integer");
	/* More per address than in all: a limit that never applies is a mistake. */
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1:1'," API_OK_REST
			      ",'max_connections':100,'max_connections_per_address':101}}",
		     "/api/max_connections_per_address", "more than max_connections (100)");
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1:1'," API_OK_REST
			      ",'request_deadline_seconds':301}}",
		     "/api/request_deadline_seconds", "from 1 to 300");
	expect_error(API_HEAD ",'api':{'listen':'127.0.0.1:1'," API_OK_REST ",'client_ca':''}}",
		     "/api/client_ca", "must not be empty");
	expect_error(API_HEAD ",'api':[]}", "/api", "must be an object");
	/* Tokens live in the credential store: naming them without one is an error. */
	expect_error(HEAD ",'api':{'listen':'127.0.0.1:1'," API_OK_REST "}}",
		     "/api/admin_tokens/0", "credentials.store");
#undef API_L
#undef API_OK_REST
}

/* site.fqdn_patterns: globs below dns_suffix, lower-cased; anything else refused. */
static void test_fqdn_patterns(void)
{
#define SITE_P(pats)                                                                       \
	"{'manifest_version':1,'site':{'name':'contoso-lab','service_point_fqdn':"         \
	"'oob.contoso.com','dns_suffix':'contoso.com','fqdn_patterns':" pats "}}"
	struct manifest_problems pr = {0};
	struct manifest *m = expect_ok(SITE_P("['PC-*.contoso.com','*.desk.contoso.com']"), &pr);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->n_fqdn_patterns, 2);
	CU_ASSERT_STRING_EQUAL(m->fqdn_patterns[0], "pc-*.contoso.com");
	CU_ASSERT_PTR_NULL(m->fqdn_patterns[2]);
	manifest_free(m);
	manifest_problems_free(&pr);
	expect_error(SITE_P("[]"), "/site/fqdn_patterns", "at least one");
	expect_error(SITE_P("['*.fabrikam.com']"), "/site/fqdn_patterns/0", "below the DNS suffix");
	expect_error(SITE_P("['*contoso.com']"), "/site/fqdn_patterns/0", "below the DNS suffix");
	expect_error(SITE_P("['contoso.com']"), "/site/fqdn_patterns/0", "below the DNS suffix");
	expect_error(SITE_P("['pc_1.contoso.com']"), "/site/fqdn_patterns/0", "only letters");
#undef SITE_P
}

/* R-PROV-10 (5), R-PROV-11 (1), R-ACC-01: AMT's strong-password rule (AMT-PROTOCOL.md
 * section 10), one clause at a time: each password below breaks exactly one. */
static void test_amt_password_rule_clause_by_clause(void)
{
	static const struct {
		const char *pw;
		size_t len; /* 0: strlen */
		unsigned faults;
	} cases[] = {
		{"Aa1!aaaa", 0, 0},                          /* 8: the shortest accepted */
		{"Aa1!aaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 0},  /* 32: the longest */
		{"Aa1!aaa", 0, AMT_PW_SHORT},                /* 7 */
		{"Aa1!aaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, AMT_PW_LONG}, /* 33 */
		{"Aa1!aaa:", 0, AMT_PW_CHARACTER},
		{"Aa1!aaa,", 0, AMT_PW_CHARACTER},
		{"Aa1!aaa\"", 0, AMT_PW_CHARACTER},
		{"Aa1!aaa\t", 0, AMT_PW_CHARACTER},          /* a control character */
		{"Aa1!aaa\x7f", 0, AMT_PW_CHARACTER},        /* DEL */
		{"Aa1!aa\xc3\xa9", 0, AMT_PW_CHARACTER},     /* not 7-bit ASCII */
		{"Aa1!a\0aa", 8, AMT_PW_CHARACTER},          /* NUL inside: the length counts */
		{"Aab!aaaa", 0, AMT_PW_NO_DIGIT},
		{"AA1!AAAA", 0, AMT_PW_NO_LOWER},
		{"aa1!aaaa", 0, AMT_PW_NO_UPPER},
		{"Aa1aaaaa", 0, AMT_PW_NO_SYMBOL},
		/* '_' and space are accepted characters but not the symbol */
		{"Aa1_aaaa", 0, AMT_PW_NO_SYMBOL},
		{"Aa1 aaaa", 0, AMT_PW_NO_SYMBOL},
		{"Aa1_ !aa", 0, 0},
		{"", 0, AMT_PW_SHORT | AMT_PW_NO_DIGIT | AMT_PW_NO_LOWER | AMT_PW_NO_UPPER |
			   AMT_PW_NO_SYMBOL},
	};
	static const char symbols[] = "!#$%&'()*+-./;<=>?@[\\]^`{|}~";
	char pw[9], text[200];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].pw);
		unsigned got = amt_password_check(cases[i].pw, len);

		if (got != cases[i].faults)
			fprintf(stderr, "\ncase %zu: faults %#x, want %#x\n", i, got,
				cases[i].faults);
		CU_ASSERT_EQUAL(got, cases[i].faults);
	}
	/* Every other printable non-alphanumeric character is the symbol. */
	for (const char *c = symbols; *c; c++) {
		snprintf(pw, sizeof(pw), "Aa1%caaaa", *c);
		CU_ASSERT_EQUAL(amt_password_check(pw, strlen(pw)), 0);
	}
	CU_ASSERT_EQUAL(amt_password_check(NULL, 0), amt_password_check("", 0));
	/* The clauses in words, in a fixed order; none from the password. */
	amt_password_faults(AMT_PW_NO_SYMBOL | AMT_PW_NO_DIGIT, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, "no digit, no symbol ('_' and space do not count)");
	amt_password_faults(AMT_PW_SHORT, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, "fewer than 8 characters");
	amt_password_faults(AMT_PW_LONG | AMT_PW_CHARACTER, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, "more than 32 characters, a character that is not "
				     "printable ASCII, or is one of : , \"");
	amt_password_faults(AMT_PW_NO_LOWER | AMT_PW_NO_UPPER, text, 12);
	CU_ASSERT_STRING_EQUAL(text, ""); /* the first clause does not fit: nothing half-said */
	amt_password_faults(0, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, "");
}

struct uses {
	char seen[4][160];
	size_t n;
	size_t stop_after; /* 0: never */
};

static int note_use(void *ctx, const char *where, const char *name)
{
	struct uses *u = ctx;

	if (u->n < 4)
		snprintf(u->seen[u->n], sizeof(u->seen[0]), "%s=%s", where, name);
	u->n++;
	return u->stop_after && u->n >= u->stop_after ? 7 : 0;
}

/* R-PROV-10 (5), R-PROV-11 (1): the passwords the site sets on AMT are the MEBx password
 * (when the policy lets provisioning set it) and the Digest user accounts' passwords; not
 * the provisioning accounts' (what a device already has, R-PROV-09) nor a Kerberos
 * account (it has none). */
static void test_amt_password_uses_are_the_passwords_set_on_amt(void)
{
#define USES_SITE(policy)                                                                  \
	HEAD ",'plugins':{'cs':{'plugin':'credstore-file'}},'credentials':{'store':'cs',"  \
	     "'mebx_password':'site/mebx','provisioning_accounts':[{'user':'admin',"        \
	     "'password':'site/factory'}]},'amt':{" policy "'user_accounts':["             \
	     "{'name':'S-1-5-21-1-2-3-500','realms':['redirection']},"                       \
	     "{'name':'helpdesk','kerberos':false,'password':'site/helpdesk',"              \
	     "'realms':['redirection']}]}}"
	struct manifest_problems pr = {0};
	struct manifest *m = expect_ok(USES_SITE(""), &pr);
	struct uses u = {.n = 0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(amt_password_uses(m, note_use, &u), 0);
	CU_ASSERT_EQUAL(u.n, 2);
	CU_ASSERT_STRING_EQUAL(u.seen[0], "/credentials/mebx_password=site/mebx");
	CU_ASSERT_STRING_EQUAL(u.seen[1], "/amt/user_accounts/1/password=site/helpdesk");
	/* A nonzero answer stops the walk and is returned. */
	memset(&u, 0, sizeof(u));
	u.stop_after = 1;
	CU_ASSERT_EQUAL(amt_password_uses(m, note_use, &u), 7);
	CU_ASSERT_EQUAL(u.n, 1);
	manifest_free(m);
	manifest_problems_free(&pr);
	/* mebx_password_policy "never": provisioning never sets the MEBx password. */
	m = expect_ok(USES_SITE("'mebx_password_policy':'never',"), &pr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	memset(&u, 0, sizeof(u));
	amt_password_uses(m, note_use, &u);
	CU_ASSERT_EQUAL(u.n, 1);
	CU_ASSERT_STRING_EQUAL(u.seen[0], "/amt/user_accounts/1/password=site/helpdesk");
	manifest_free(m);
	manifest_problems_free(&pr);
#undef USES_SITE
}

void register_manifest_tests(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
		{"minimal example loads", test_minimal_example_loads},
		{"database.password_file is a private input (issue 16)",
		 test_database_password_file_is_a_private_input},
		{"lab example loads without problems", test_lab_example_loads_without_problems},
		{"defaults are applied (R-WS-03, R-PC-06)", test_defaults_are_applied},
		{"maintenance values are configurable", test_maintenance_values_are_configurable},
		{"unknown key is refused with its path", test_unknown_key_is_refused_with_its_path},
		{"all errors are reported at once", test_all_errors_are_reported_at_once},
		{"wrong manifest_version names both versions",
		 test_wrong_manifest_version_names_both_versions},
		{"missing site fields are reported", test_missing_site_fields_are_reported},
		{"bad service point FQDN is refused (R-PC-02)",
		 test_bad_service_point_fqdn_is_refused},
		{"FQDN lower-cased, namespace checked (R-PC-05)",
		 test_fqdn_is_lower_cased_and_namespace_checked},
		{"dangling plugin reference is refused", test_dangling_plugin_reference_is_refused},
		{"instance used as two kinds is refused",
		 test_instance_used_as_two_kinds_is_refused},
		{"expected kind recorded, unused instance warned",
		 test_expected_kind_is_recorded_and_unused_instance_warned},
		{"credential without store is refused", test_credential_without_store_is_refused},
		{"MEBx policy needs a password", test_mebx_policy_needs_a_password},
		{"pkcs12 and certificate are exclusive", test_pkcs12_and_certificate_are_exclusive},
		{"AMT user accounts are checked (R-PROV-11)", test_amt_user_accounts_are_checked},
		{"directory container needs directory", test_directory_container_needs_directory},
		{"web server key source (R-PROV-06)", test_web_server_key_source},
		{"EAP-TLS requires a client certificate (R-8021X-01)",
		 test_eap_tls_requires_a_client_certificate},
		{"more than 8 wireless templates is an error (R-8021X-03)",
		 test_more_than_eight_wireless_templates_is_an_error},
		{"several templates give a warning (R-8021X-03)",
		 test_several_templates_give_a_warning},
		{"wireless profiles are checked", test_wireless_profiles_are_checked},
		{"duplicate JSON keys are refused", test_duplicate_json_keys_are_refused},
		{"syntax error gives line and column", test_syntax_error_gives_line_and_column},
		{"error_days must be below warning_days (R-PC-06)",
		 test_error_days_must_be_below_warning_days},
		{"relative paths resolve against the manifest directory",
		 test_relative_paths_resolve_against_the_manifest_directory},
		{"802.1X server_ca is resolved in the tree",
		 test_8021x_server_ca_is_resolved_in_the_tree},
		{"missing file is not found", test_missing_file_is_not_found},
		{"failed load returns nothing and leaks nothing",
		 test_failed_load_returns_nothing_and_leaks_nothing},
		{"bad fixtures fail at the expected path",
		 test_bad_fixtures_fail_at_the_expected_path},
		{"required caps list what the site needs",
		 test_required_caps_list_what_the_site_needs},
		{"problems print format", test_problems_print_format},
		{"api section is parsed", test_api_section_is_parsed},
		{"api section errors have paths", test_api_section_errors_have_paths},
		{"monitoring section: metrics listener, loopback unless tokens",
		 test_monitoring_section},
		{"site.fqdn_patterns: globs below dns_suffix (R-PC-05)", test_fqdn_patterns},
		{"AMT 22 crypto policy: defaults, site rules, bad rules (issue 17)",
		 test_amt_crypto_policy},
		{"AMT's strong-password rule, clause by clause; '_' is no symbol (R-PROV-10, "
		 "R-PROV-11, R-ACC-01)",
		 test_amt_password_rule_clause_by_clause},
		{"the passwords set on AMT: MEBx by policy, Digest accounts; not provisioning "
		 "accounts (R-PROV-10, R-PROV-11, R-PROV-09)",
		 test_amt_password_uses_are_the_passwords_set_on_amt},
	};
	CU_pSuite s = CU_add_suite("manifest", NULL, NULL);
	size_t i;

	if (!s)
		return;
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
}
