/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ca_external.c - CUnit tests of the ca-external plugin, loaded through the real plugin
 * host from the build's plugin directory.
 *
 * request-file mode: the test plays the external CA with the real `openssl x509 -req`
 * on the request the plugin wrote, and drops the answer (PEM chain, PKCS#12) in the inbox.
 * scep mode: a real `scepserver` (Debian's scep package, micromdm/scep) is started on a free
 * port; the test connects to 127.0.0.1 only and kills the server even when a test fails.
 * scep PENDING/CertPoll: scepserver never answers PENDING, so an in-process responder
 * (scep_stub.c) with its own CA plays a CA that waits for manual approval.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <amtprov/ca.h>

#include "ce.h"
#include "log.h"
#include "plugin_host.h"
#include "scep_stub.h"
#include "util.h"

/* Test paths are short temporary directories; GCC cannot know that. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define SP_FQDN "oob.contoso.com"
#define FQDN "amt1.contoso.com"
#define CHALLENGE "secret123"
#define P12_PASS "p12-s3cret"

/* ---- fixture ---- */

struct fx {
	struct alog *log;
	char **lines;
	size_t n;
	char root[PATH_MAX];
	char dir[PATH_MAX]; /* <root>/plugins/ext */
	struct plugin_host *ph;
	struct plugin_instance *pi, *cs;
};

static void cap_cb(void *ctx, int level, const char *line)
{
	struct fx *f = ctx;
	char **grown = realloc(f->lines, (f->n + 1) * sizeof(*grown));

	(void)level;
	if (grown) {
		f->lines = grown;
		if ((f->lines[f->n] = strdup(line)))
			f->n++;
	}
}

static int log_has(struct fx *f, const char *needle)
{
	for (size_t i = 0; i < f->n; i++)
		if (strstr(f->lines[i], needle))
			return 1;
	return 0;
}

static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void put_secret(struct fx *f, const char *name, const char *value)
{
	struct amtprov_secret *sec = util_secret_new(strlen(value));
	struct amtprov_error err;

	CU_ASSERT_PTR_NOT_NULL_FATAL(sec);
	memcpy(sec->data, value, strlen(value));
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_credstore_put(f->cs, name, sec, &err), AMTPROV_OK);
	util_secret_free(sec);
}

static int try_create(struct fx *f, const char *cfg_json, struct amtprov_error *err)
{
	json_t *cfg = json_loads(cfg_json, 0, NULL);
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	amtprov_error_clear(err);
	rc = plugin_host_create(f->ph, "ext", "ca-external", cfg, AMTPROV_KIND_CA, &f->pi, err);
	json_decref(cfg);
	return rc;
}

/* The plugin host over f->root with a fake credential store and, with @p cfg, one started
 * instance "ext". Split from fx_init so a test can restart the host on the same state. */
static void fx_host_up(struct fx *f, const char *cfg)
{
	struct amtprov_error err;
	json_t *empty = json_object();
	struct host_env env;

	env = (struct host_env){.log = f->log, .state_root = f->root, .config_base = "/plugins"};
	f->ph = plugin_host_new(&env);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->ph);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(plugin_host_add_dir(f->ph, AMTPROV_PLUGIN_BUILD_DIR, &err),
			      AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(plugin_host_add_dir(f->ph, AMTPROV_TEST_PLUGIN_DIR, &err),
			      AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(plugin_host_create(f->ph, "store", "fake-credstore", empty,
						 AMTPROV_KIND_CREDSTORE, &f->cs, &err),
			      AMTPROV_OK);
	json_decref(empty);
	CU_ASSERT_EQUAL_FATAL(plugin_host_set_credstore(f->ph, f->cs, &err), AMTPROV_OK);
	if (!cfg)
		return;
	if (try_create(f, cfg, &err) != AMTPROV_OK)
		fprintf(stderr, "\n  create: %s: %s\n", err.where, err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->pi);
	CU_ASSERT_EQUAL_FATAL(plugin_host_start_all(f->ph, &err), AMTPROV_OK);
}

/* A host with a fake credential store and one started instance "ext". */
static void fx_init(struct fx *f, const char *cfg)
{
	memset(f, 0, sizeof(*f));
	f->log = alog_new("ca-external-test", AMTPROV_LOG_DEBUG, ALOG_CALLBACK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->log);
	alog_set_callback(f->log, cap_cb, f);
	snprintf(f->root, sizeof(f->root), "/tmp/ca-ext-test-XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(f->root));
	snprintf(f->dir, sizeof(f->dir), "%s/plugins/ext", f->root);
	fx_host_up(f, cfg);
}

/* A service restart: every instance is destroyed and the module unloaded, then the host is
 * built again over the same state root (the fake credential store starts empty). */
static void fx_restart(struct fx *f, const char *cfg)
{
	plugin_host_free(f->ph);
	f->ph = NULL;
	f->pi = f->cs = NULL;
	fx_host_up(f, cfg);
}

static void fx_done(struct fx *f)
{
	char cmd[PATH_MAX + 16];

	plugin_host_free(f->ph);
	alog_free(f->log);
	for (size_t i = 0; i < f->n; i++)
		free(f->lines[i]);
	free(f->lines);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	CU_ASSERT_EQUAL(run(cmd), 0);
}

/* ---- requests and the external CA ---- */

static EVP_PKEY *cached_key;

/* A DER request for a provisioning certificate, built as amtprov-request builds it. */
static uint8_t *make_csr(const char *challenge, EVP_PKEY **key_out, size_t *len)
{
	struct ce_request_opts o = {.cn = SP_FQDN, .marker = CE_MARK_BOTH, .bits = 2048,
				    .challenge = challenge};
	struct amtprov_error err;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	unsigned char *der = NULL;
	uint8_t *copy;
	int n;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(ce_request_new(&o, &key, &req, &err), AMTPROV_OK);
	n = i2d_X509_REQ(req, &der);
	CU_ASSERT_TRUE_FATAL(n > 0);
	copy = malloc((size_t)n);
	CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
	memcpy(copy, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	X509_REQ_free(req);
	if (key_out)
		*key_out = key;
	else
		EVP_PKEY_free(key);
	return copy;
}

/* A request built the way the core builds one around a key AMT holds: a bare template plus
 * the attributes the plugin asked for (csr_attributes, ca.h ABI 1.1), then signed. */
static uint8_t *make_csr_with_attrs(const struct amtprov_secret *attrs, size_t *len)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	const unsigned char *p = (const unsigned char *)attrs->data;
	const unsigned char *end = p + attrs->len;
	unsigned char *der = NULL;
	uint8_t *copy = NULL;
	int n, ok;

	ok = key && req && name &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)SP_FQDN,
					-1, -1, 0) &&
	     X509_REQ_set_subject_name(req, name) && X509_REQ_set_pubkey(req, key);
	while (ok && p < end) {
		X509_ATTRIBUTE *a = d2i_X509_ATTRIBUTE(NULL, &p, (long)(end - p));

		ok = a && X509_REQ_add1_attr(req, a);
		X509_ATTRIBUTE_free(a);
	}
	CU_ASSERT_TRUE(ok);
	if (ok && X509_REQ_sign(req, key, EVP_sha256()) > 0 && (n = i2d_X509_REQ(req, &der)) > 0 &&
	    (copy = malloc((size_t)n))) {
		memcpy(copy, der, (size_t)n);
		*len = (size_t)n;
	}
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return copy;
}

static void result_init(struct amtprov_ca_result *res)
{
	memset(res, 0, sizeof(*res));
	res->struct_size = sizeof(*res);
}

static int submit(struct fx *f, const uint8_t *csr, size_t len, struct amtprov_ca_result *res)
{
	struct amtprov_ca_request req = {
		.struct_size = sizeof(req),
		.purpose = AMTPROV_PURPOSE_PROVISIONING,
		.csr_der = csr,
		.csr_len = len,
		.template_name = "AMTProvisioning",
		.subject_fqdn = SP_FQDN,
	};
	struct amtprov_error err;
	int rc;

	result_init(res);
	amtprov_error_clear(&err);
	rc = pi_ca_submit(f->pi, SP_FQDN, &req, res, &err);
	if (rc != AMTPROV_OK)
		fprintf(stderr, "\n  submit: %s: %s\n", amtprov_status_name(rc), err.msg);
	return rc;
}

/* Polls; @p csr NULL exercises the copy the plugin kept (a poll after a restart). */
static int poll_req(struct fx *f, const uint8_t *csr, size_t len, const char *cookie,
		    struct amtprov_ca_result *res)
{
	struct amtprov_ca_request req = {
		.struct_size = sizeof(req),
		.purpose = AMTPROV_PURPOSE_PROVISIONING,
		.csr_der = csr,
		.csr_len = len,
		.subject_fqdn = SP_FQDN,
	};
	struct amtprov_error err;
	char *c = strdup(cookie);
	int rc;

	result_init(res);
	amtprov_error_clear(&err);
	rc = pi_ca_poll(f->pi, SP_FQDN, &req, c, res, &err);
	if (rc != AMTPROV_OK)
		fprintf(stderr, "\n  poll: %s: %s\n", amtprov_status_name(rc), err.msg);
	free(c);
	return rc;
}

/* The external CA: a root made with `openssl req -x509` in <root>/extca. */
static void make_ext_ca(struct fx *f)
{
	char cmd[4 * PATH_MAX];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && mkdir -p extca && openssl req -x509 -newkey rsa:2048 -nodes "
		 "-keyout extca/ca.key -out extca/ca.pem -days 30 -subj '/O=Example "
		 "Trust/CN=Example External CA' >extca/log 2>&1",
		 f->root);
	CU_ASSERT_EQUAL_FATAL(run(cmd), 0);
}

/* The external CA signs @p csr_path, copying the requested extensions (a version 2
 * template would do the same, R-CA-03), into @p out. */
static void ext_sign(struct fx *f, const char *csr_path, const char *out)
{
	char cmd[6 * PATH_MAX];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && openssl x509 -req -in '%s' -CA extca/ca.pem -CAkey extca/ca.key "
		 "-CAcreateserial -days 20 -copy_extensions copy -out '%s' >>extca/log 2>&1",
		 f->root, csr_path, out);
	CU_ASSERT_EQUAL_FATAL(run(cmd), 0);
}

static X509 *result_cert(const struct amtprov_ca_result *res)
{
	const unsigned char *p = res->cert_der;

	return d2i_X509(NULL, &p, (long)res->cert_len);
}

static int has_eku(X509 *x, const char *oid)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	ASN1_OBJECT *want = OBJ_txt2obj(oid, 1);
	int found = 0;

	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku); i++)
		found |= OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), want) == 0;
	EXTENDED_KEY_USAGE_free(eku);
	ASN1_OBJECT_free(want);
	return found;
}

/* ---- request-file mode ---- */

#define RF_CFG "{\"mode\": \"request-file\", \"poll_interval\": 0}"

/* R-CA-03, R-PC-01: the request goes out as a file, the external CA signs it with
 * `openssl x509 -req`, the chain (in the wrong order) comes back, the key is checked. */
static void test_request_file_round_trip(void)
{
	struct fx f;
	struct amtprov_ca_result res;
	EVP_PKEY *key;
	size_t len;
	uint8_t *csr;
	char path[PATH_MAX], cookie[AMTPROV_CA_COOKIE_SIZE], cmd[4 * PATH_MAX];
	struct stat st;
	X509 *x;

	fx_init(&f, RF_CFG);
	make_ext_ca(&f);
	csr = make_csr(NULL, &key, &len);
	CU_ASSERT_EQUAL_FATAL(submit(&f, csr, len, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(res.outcome, AMTPROV_CA_WAIT);
	CU_ASSERT_TRUE_FATAL(ce_id_ok(res.cookie));
	CU_ASSERT_STRING_EQUAL(res.request_id, res.cookie);
	snprintf(cookie, sizeof(cookie), "%s", res.cookie);
	pi_ca_result_release(&res);
	snprintf(path, sizeof(path), "%s/outbox/%s.csr", f.dir, cookie);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/outbox/%s.json", f.dir, cookie);
	{
		json_t *meta = json_load_file(path, 0, NULL);

		CU_ASSERT_PTR_NOT_NULL_FATAL(meta);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(meta, "purpose")),
				       "provisioning");
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(meta, "template")),
				       "AMTProvisioning");
		json_decref(meta);
	}

	/* Nothing in the inbox yet: WAIT again with the same cookie. */
	CU_ASSERT_EQUAL(poll_req(&f, csr, len, cookie, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_WAIT);
	CU_ASSERT_STRING_EQUAL(res.cookie, cookie);
	pi_ca_result_release(&res);

	/* The CA answers; the chain file lists the CA first, the leaf second. */
	snprintf(path, sizeof(path), "%s/outbox/%s.csr", f.dir, cookie);
	ext_sign(&f, path, "leaf.pem");
	snprintf(cmd, sizeof(cmd), "cd '%s' && cat extca/ca.pem leaf.pem > '%s/inbox/%s.pem'",
		 f.root, f.dir, cookie);
	CU_ASSERT_EQUAL_FATAL(run(cmd), 0);
	CU_ASSERT_EQUAL(poll_req(&f, NULL, 0, cookie, &res), AMTPROV_OK);
	if (res.outcome != AMTPROV_CA_ISSUED)
		fprintf(stderr, "\n  %s: %s\n", amtprov_ca_outcome_name(res.outcome), res.message);
	CU_ASSERT_EQUAL_FATAL(res.outcome, AMTPROV_CA_ISSUED);
	x = result_cert(&res);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	CU_ASSERT_TRUE(ce_same_key(X509_get0_pubkey(x), key));
	CU_ASSERT_TRUE(has_eku(x, "1.3.6.1.5.5.7.3.1"));
	CU_ASSERT_TRUE(has_eku(x, CE_OID_AMT_PROV));
	CU_ASSERT_PTR_NOT_NULL(res.chain_pem);
	CU_ASSERT_PTR_NOT_NULL(res.chain_pem && strstr(res.chain_pem, "BEGIN CERTIFICATE"));
	X509_free(x);
	pi_ca_result_release(&res);
	/* Consumed: renamed so it is not imported twice. */
	snprintf(path, sizeof(path), "%s/inbox/%s.pem.imported", f.dir, cookie);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	EVP_PKEY_free(key);
	free(csr);
	fx_done(&f);
}

/* R-CA-03: a certificate for another key is refused; so is a request the CA turned down. */
static void test_request_file_refusals(void)
{
	struct fx f;
	struct amtprov_ca_result res;
	size_t len, len2;
	uint8_t *csr = make_csr(NULL, NULL, &len), *other = make_csr(NULL, NULL, &len2);
	char path[PATH_MAX], cookie[AMTPROV_CA_COOKIE_SIZE], cookie2[AMTPROV_CA_COOKIE_SIZE];
	FILE *fp;

	fx_init(&f, RF_CFG);
	make_ext_ca(&f);
	CU_ASSERT_EQUAL_FATAL(submit(&f, csr, len, &res), AMTPROV_OK);
	snprintf(cookie, sizeof(cookie), "%s", res.cookie);
	CU_ASSERT_EQUAL_FATAL(submit(&f, other, len2, &res), AMTPROV_OK);
	snprintf(cookie2, sizeof(cookie2), "%s", res.cookie);
	CU_ASSERT_STRING_NOT_EQUAL(cookie, cookie2);

	/* The answer to request 2 dropped under request 1's name. */
	snprintf(path, sizeof(path), "%s/outbox/%s.csr", f.dir, cookie2);
	ext_sign(&f, path, "other.pem");
	snprintf(path, sizeof(path), "cp '%s/other.pem' '%s/inbox/%s.crt'", f.root, f.dir, cookie);
	CU_ASSERT_EQUAL_FATAL(run(path), 0);
	CU_ASSERT_EQUAL(poll_req(&f, csr, len, cookie, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "certificate does not match the request key"));
	CU_ASSERT_PTR_NULL(res.cert_der);
	pi_ca_result_release(&res);

	/* A .rejected file carries the CA's reason. */
	snprintf(path, sizeof(path), "%s/inbox/%s.rejected", f.dir, cookie2);
	fp = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fputs("\nOrganization validation failed for contoso.com\nmore detail\n", fp);
	fclose(fp);
	CU_ASSERT_EQUAL(poll_req(&f, other, len2, cookie2, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "Organization validation failed for contoso.com"));
	pi_ca_result_release(&res);

	/* A cookie that tries to leave the inbox is refused outright. */
	CU_ASSERT_EQUAL(poll_req(&f, csr, len, "../../etc/passwd", &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	pi_ca_result_release(&res);
	free(csr);
	free(other);
	fx_done(&f);
}

/* R-CA-03: a PKCS#12 answer, its password from the credential store, never logged. */
static void test_request_file_pkcs12(void)
{
	struct fx f;
	struct amtprov_ca_result res;
	EVP_PKEY *key;
	size_t len;
	uint8_t *csr;
	char path[PATH_MAX], cookie[AMTPROV_CA_COOKIE_SIZE], cmd[6 * PATH_MAX];
	X509 *x;

	fx_init(&f, NULL);
	put_secret(&f, "ext/p12-pass", "not-the-password");
	{
		struct amtprov_error err;

		CU_ASSERT_EQUAL_FATAL(try_create(&f,
						 "{\"mode\": \"request-file\", \"poll_interval\": "
						 "60, \"p12_password\": \"ext/p12-pass\"}",
						 &err),
				      AMTPROV_OK);
		CU_ASSERT_EQUAL_FATAL(plugin_host_start_all(f.ph, &err), AMTPROV_OK);
	}
	make_ext_ca(&f);
	csr = make_csr(NULL, &key, &len);
	CU_ASSERT_EQUAL_FATAL(submit(&f, csr, len, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_WAIT_WITH_DELAY);
	CU_ASSERT_EQUAL(res.delay_seconds, 60);
	snprintf(cookie, sizeof(cookie), "%s", res.cookie);
	snprintf(path, sizeof(path), "%s/outbox/%s.csr", f.dir, cookie);
	ext_sign(&f, path, "leaf.pem");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && openssl pkcs12 -export -nokeys -in leaf.pem -certfile extca/ca.pem "
		 "-passout pass:%s -out '%s/inbox/%s.p12'",
		 f.root, P12_PASS, f.dir, cookie);
	CU_ASSERT_EQUAL_FATAL(run(cmd), 0);

	/* Wrong password in the store: not final, the file stays for the next poll. */
	CU_ASSERT_EQUAL(poll_req(&f, csr, len, cookie, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_UNCONFIGURED);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "wrong password"));
	pi_ca_result_release(&res);

	put_secret(&f, "ext/p12-pass", P12_PASS);
	CU_ASSERT_EQUAL(poll_req(&f, csr, len, cookie, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(res.outcome, AMTPROV_CA_ISSUED);
	x = result_cert(&res);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	CU_ASSERT_TRUE(ce_same_key(X509_get0_pubkey(x), key));
	CU_ASSERT_PTR_NOT_NULL(res.chain_pem);
	X509_free(x);
	pi_ca_result_release(&res);
	CU_ASSERT_FALSE(log_has(&f, P12_PASS));
	EVP_PKEY_free(key);
	free(csr);
	fx_done(&f);
}

/* R-PC-01/02, R-CA-03: amtprov-request makes a 0600 RSA key and a request with CN = the
 * service point FQDN, EKU serverAuth + AMT OID and the setup OU; import checks the key. */
static void test_provisioning_request_tool(void)
{
	struct fx f;
	char cmd[6 * PATH_MAX], path[PATH_MAX], buf[256];
	struct stat st;
	X509_REQ *req;
	X509_NAME *subj;
	STACK_OF(X509_EXTENSION) *exts;
	EXTENDED_KEY_USAGE *eku;
	EVP_PKEY *pub;
	FILE *fp;
	int found_oid = 0, found_sa = 0, idx;

	fx_init(&f, NULL);
	make_ext_ca(&f);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && '%s' new --cn %s --key prov.key --csr prov.csr --marker both",
		 f.root, AMTPROV_REQUEST_TOOL, SP_FQDN);
	CU_ASSERT_EQUAL_FATAL(run(cmd), 0);
	snprintf(path, sizeof(path), "%s/prov.key", f.root);
	CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);

	snprintf(path, sizeof(path), "%s/prov.csr", f.root);
	fp = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	req = PEM_read_X509_REQ(fp, NULL, NULL, NULL);
	fclose(fp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(req);
	CU_ASSERT_EQUAL(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
	subj = X509_REQ_get_subject_name(req);
	CU_ASSERT_TRUE(X509_NAME_get_text_by_NID(subj, NID_commonName, buf, sizeof(buf)) > 0);
	CU_ASSERT_STRING_EQUAL(buf, SP_FQDN);
	CU_ASSERT_TRUE(X509_NAME_get_text_by_NID(subj, NID_organizationalUnitName, buf,
						 sizeof(buf)) > 0);
	CU_ASSERT_STRING_EQUAL(buf, CE_OU_AMT_PROV);
	pub = X509_REQ_get0_pubkey(req);
	CU_ASSERT_TRUE(EVP_PKEY_is_a(pub, "RSA") && EVP_PKEY_get_bits(pub) >= 2048);
	exts = X509_REQ_get_extensions(req);
	idx = X509v3_get_ext_by_NID(exts, NID_ext_key_usage, -1);
	CU_ASSERT_TRUE_FATAL(idx >= 0);
	eku = X509V3_EXT_d2i(X509v3_get_ext(exts, idx));
	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku); i++) {
		OBJ_obj2txt(buf, sizeof(buf), sk_ASN1_OBJECT_value(eku, i), 1);
		found_oid |= strcmp(buf, CE_OID_AMT_PROV) == 0;
		found_sa |= strcmp(buf, "1.3.6.1.5.5.7.3.1") == 0;
	}
	CU_ASSERT_TRUE(found_oid);
	CU_ASSERT_TRUE(found_sa);
	EXTENDED_KEY_USAGE_free(eku);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);

	/* The external CA signs; the answer imports against the key, and not against another. */
	ext_sign(&f, "prov.csr", "answer.pem");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && cat extca/ca.pem >> answer.pem && '%s' import --key prov.key --in "
		 "answer.pem --out provisioning.pem >/dev/null && openssl verify -CAfile "
		 "extca/ca.pem provisioning.pem >/dev/null",
		 f.root, AMTPROV_REQUEST_TOOL);
	CU_ASSERT_EQUAL(run(cmd), 0);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && '%s' new --cn other.contoso.com --key other.key --csr other.csr "
		 ">/dev/null && '%s' import --key other.key --in answer.pem --out x.pem 2>err.txt; "
		 "st=$?; grep -q 'does not match the request key' err.txt && exit $st",
		 f.root, AMTPROV_REQUEST_TOOL, AMTPROV_REQUEST_TOOL);
	CU_ASSERT_EQUAL(run(cmd), 1);
	/* PKCS#12 with the password from a file. */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && printf '%%s\\n' '%s' > pw && openssl pkcs12 -export -inkey prov.key "
		 "-in answer.pem -passout pass:%s -out answer.p12 && '%s' import --key prov.key "
		 "--in answer.p12 --password-file pw --out p12.pem >/dev/null",
		 f.root, P12_PASS, P12_PASS, AMTPROV_REQUEST_TOOL);
	CU_ASSERT_EQUAL(run(cmd), 0);
	fx_done(&f);
}

static void test_config_errors(void)
{
	static const struct {
		const char *cfg, *where;
	} bad[] = {
		{"{}", "mode"},
		{"{\"mode\": \"email\"}", "/mode"},
		{"{\"mode\": \"scep\"}", "/url"},
		{"{\"mode\": \"scep\", \"url\": \"ftp://x\"}", "/url"},
		{"{\"mode\": \"scep\", \"url\": \"http://x\", \"ca_fingerprint\": \"abc\"}",
		 "/ca_fingerprint"},
		{"{\"mode\": \"request-file\", \"url\": \"http://x\"}", "/mode"},
		{"{\"mode\": \"request-file\", \"bogus\": 1}", "bogus"},
	};
	struct fx f;
	struct amtprov_error err;

	fx_init(&f, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f.pi = NULL;
		CU_ASSERT_NOT_EQUAL(try_create(&f, bad[i].cfg, &err), AMTPROV_OK);
		if (!strstr(err.where, bad[i].where) && !strstr(err.msg, bad[i].where))
			fprintf(stderr, "\n  %s: where '%s' msg '%s'\n", bad[i].cfg, err.where,
				err.msg);
		CU_ASSERT_TRUE(strstr(err.where, bad[i].where) || strstr(err.msg, bad[i].where));
	}
	fx_done(&f);
}

/* ---- scep mode against the real scepserver ---- */

static pid_t scep_pid;
static char scep_dir[PATH_MAX];
static int scep_port;

static void scep_stop(void)
{
	if (scep_pid > 0) {
		kill(scep_pid, SIGTERM);
		waitpid(scep_pid, NULL, 0);
		scep_pid = 0;
	}
}

/* A listening socket on 127.0.0.1 and a free port; -1 on failure. */
static int listen_loopback(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 16) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &l) != 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return s;
}

/* The calling process into a user and network namespace of its own (as `unshare -Urn`):
 * the namespace has only a loopback interface, brought up here. */
static int private_netns(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	struct ifreq r;
	int fd, s, ok = 1;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
		return -1;
	/* Map our own uid/gid to root in it, so scepserver's files are ours. */
	const char *files[3] = {"/proc/self/setgroups", "/proc/self/uid_map", "/proc/self/gid_map"};
	for (int i = 0; i < 3 && ok; i++) {
		int n = i == 0 ? snprintf(map, sizeof(map), "deny")
			: snprintf(map, sizeof(map), "0 %u 1", i == 1 ? (unsigned)uid : (unsigned)gid);

		fd = open(files[i], O_WRONLY | O_CLOEXEC);
		ok = fd >= 0 && write(fd, map, (size_t)n) == n;
		if (fd >= 0)
			close(fd);
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&r, 0, sizeof(r));
	snprintf(r.ifr_name, sizeof(r.ifr_name), "lo");
	ok = ok && s >= 0 && ioctl(s, SIOCGIFFLAGS, &r) == 0;
	r.ifr_flags |= IFF_UP;
	ok = ok && ioctl(s, SIOCSIFFLAGS, &r) == 0;
	if (s >= 0)
		close(s);
	return ok ? 0 : -1;
}

/* Copies both ways between two connected sockets until either side closes. */
static void bridge_copy(int a, int b)
{
	struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
	char buf[16384];

	while (poll(p, 2, -1) > 0) {
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0)
				return;
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(p[1 - i].fd, buf + off, (size_t)(n - off));

				if (w <= 0)
					return;
				off += w;
			}
		}
	}
}

/*
 * Issue 17: scepserver has no bind option and listens on every interface. So it runs in a
 * network namespace of its own (private_netns), where every interface is that namespace's
 * loopback, and the test reaches it through a bridge on 127.0.0.1 in the test's namespace.
 * The bridge's listening socket is made before the unshare, so it stays in the test's
 * namespace; the connections it makes to scepserver are made after, so they are in
 * scepserver's. Nothing listens anywhere but on a loopback. scep_pid is the bridge;
 * scepserver and each connection's copier die with it (PR_SET_PDEATHSIG).
 */
static int scep_start(void)
{
	char cmd[2 * PATH_MAX], port[16], logp[PATH_MAX];
	int lis;

	snprintf(scep_dir, sizeof(scep_dir), "/tmp/ca-ext-scep-XXXXXX");
	if (!mkdtemp(scep_dir))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && scepserver ca -init -depot depot -organization TestOrg -keySize 2048 "
		 ">init.log 2>&1",
		 scep_dir);
	if (run(cmd) != 0)
		return -1;
	lis = listen_loopback(&scep_port);
	if (lis < 0)
		return -1;
	snprintf(port, sizeof(port), "%d", scep_port);
	snprintf(logp, sizeof(logp), "%s/server.log", scep_dir);
	scep_pid = fork();
	if (scep_pid == 0) {
		struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)scep_port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		FILE *lf = freopen(logp, "w", stdout);

		(void)lf;
		/* Dies with the test, even when the test itself crashes. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(STDOUT_FILENO, STDERR_FILENO);
		if (private_netns() != 0) {
			fprintf(stderr, "cannot make a private network namespace: %s\n",
				strerror(errno));
			_exit(126);
		}
		if (fork() == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			close(lis);
			if (chdir(scep_dir) == 0)
				execlp("scepserver", "scepserver", "-depot", "depot", "-port", port,
				       "-challenge=" CHALLENGE, "-allowrenew", "0", "-debug",
				       (char *)NULL);
			_exit(127);
		}
		for (;;) {
			int c = accept4(lis, NULL, NULL, SOCK_CLOEXEC), u;

			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
			if (c < 0) {
				if (errno == EINTR || errno == ECONNABORTED)
					continue;
				_exit(1);
			}
			if (fork() == 0) {
				prctl(PR_SET_PDEATHSIG, SIGTERM);
				u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
				if (u >= 0 && connect(u, (struct sockaddr *)&to, sizeof(to)) == 0)
					bridge_copy(c, u);
				_exit(0);
			}
			close(c);
		}
	}
	/* Only the bridge holds the listening socket: once it is stopped, nothing answers
	 * (the UNREACHABLE case below). */
	close(lis);
	if (scep_pid < 0)
		return -1;
	for (int i = 0; i < 100; i++) {
		snprintf(cmd, sizeof(cmd), "grep -q listening '%s'", logp);
		if (run(cmd) == 0)
			return 0;
		usleep(100000);
	}
	return -1;
}

/* 1 if every TCP listener on @p port in this network namespace is on a loopback address
 * (127.0.0.0/8 or ::1), from /proc/net/tcp and tcp6 ("ADDR:PORT" in hex, state 0A). */
static int only_loopback_listens(int port)
{
	const char *files[2] = {"/proc/net/tcp", "/proc/net/tcp6"};
	int ok = 1;

	for (int i = 0; i < 2; i++) {
		FILE *fp = fopen(files[i], "r");
		char line[512], addr[64], st[8];
		unsigned p;

		while (fp && fgets(line, sizeof(line), fp)) {
			if (sscanf(line, " %*s %63[0-9A-Fa-f]:%x %*s %7s", addr, &p, st) != 3 ||
			    (int)p != port || strcmp(st, "0A") != 0)
				continue;
			/* IPv4: the first octet is the last byte of the (little-endian) word */
			if (!(i == 0 ? strlen(addr) == 8 && strcmp(addr + 6, "7F") == 0
				     : strcmp(addr, "00000000000000000000000001000000") == 0)) {
				fprintf(stderr, "\n  listener on port %d at %s (%s)\n", port, addr,
					files[i]);
				ok = 0;
			}
		}
		if (fp)
			fclose(fp);
	}
	return ok;
}

static int scep_suite_init(void)
{
	return 0;
}

static int scep_suite_clean(void)
{
	char cmd[PATH_MAX + 16];

	scep_stop();
	if (scep_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scep_dir);
		run(cmd);
	}
	return 0;
}

static X509 *load_pem_cert(const char *path)
{
	FILE *fp = fopen(path, "r");
	X509 *x = fp ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;

	if (fp)
		fclose(fp);
	return x;
}

static int verifies(X509 *leaf, X509 *ca)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	X509_STORE_add_cert(st, ca);
	X509_STORE_CTX_init(ctx, st, leaf, NULL);
	ok = X509_verify_cert(ctx) == 1;
	if (!ok)
		fprintf(stderr, "\n  verify: %s\n",
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

/* R-CA-03 (external CA by SCEP): right challenge issues, wrong challenge is REJECTED with the
 * server's answer, a request without a challenge is refused with a reason, a stopped server
 * is UNREACHABLE. */
static void test_scep_enroll(void)
{
	struct fx f;
	struct amtprov_ca_result res;
	struct amtprov_error err;
	char cfg[512], path[PATH_MAX], *roots = NULL;
	EVP_PKEY *key;
	size_t len;
	uint8_t *csr;
	X509 *x, *ca;

	CU_ASSERT_EQUAL_FATAL(scep_start(), 0);
	/* issue 17: scepserver listens on every interface of its own namespace only; in
	 * ours, its port has the bridge's loopback listener and nothing else. */
	CU_ASSERT_TRUE(only_loopback_listens(scep_port));
	snprintf(cfg, sizeof(cfg),
		 "{\"mode\": \"scep\", \"url\": \"http://127.0.0.1:%d/scep\", \"challenge\": "
		 "\"ext/scep-challenge\", \"timeout_seconds\": 10}",
		 scep_port);
	fx_init(&f, NULL);
	put_secret(&f, "ext/scep-challenge", CHALLENGE);
	CU_ASSERT_EQUAL_FATAL(try_create(&f, cfg, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(plugin_host_start_all(f.ph, &err), AMTPROV_OK);
	snprintf(path, sizeof(path), "%s/depot/ca.pem", scep_dir);
	ca = load_pem_cert(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ca);

	/* Right challenge. */
	csr = make_csr(CHALLENGE, &key, &len);
	CU_ASSERT_EQUAL_FATAL(submit(&f, csr, len, &res), AMTPROV_OK);
	if (res.outcome != AMTPROV_CA_ISSUED)
		fprintf(stderr, "\n  %s: %s\n", amtprov_ca_outcome_name(res.outcome), res.message);
	CU_ASSERT_EQUAL_FATAL(res.outcome, AMTPROV_CA_ISSUED);
	x = result_cert(&res);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	CU_ASSERT_TRUE(ce_same_key(X509_get0_pubkey(x), key));
	CU_ASSERT_TRUE(verifies(x, ca));
	CU_ASSERT_PTR_NOT_NULL(res.chain_pem);
	CU_ASSERT_TRUE(res.request_id[0] != '\0');
	X509_free(x);
	pi_ca_result_release(&res);
	EVP_PKEY_free(key);
	free(csr);

	/* The challenge handed to the core beforehand (csr_attributes): a request built with it,
	 * as the core builds AMT's template, is issued. */
	{
		struct amtprov_ca_request creq = {.struct_size = sizeof(creq),
						  .purpose = AMTPROV_PURPOSE_WEB_SERVER,
						  .subject_fqdn = SP_FQDN};
		struct amtprov_secret *attrs = NULL;

		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL(pi_ca_csr_attributes(f.pi, SP_FQDN, &creq, &attrs, &err), AMTPROV_OK);
		CU_ASSERT_PTR_NOT_NULL_FATAL(attrs);
		CU_ASSERT_PTR_NOT_NULL(memmem(attrs->data, attrs->len, CHALLENGE, strlen(CHALLENGE)));
		csr = make_csr_with_attrs(attrs, &len);
		util_secret_free(attrs);
		CU_ASSERT_PTR_NOT_NULL_FATAL(csr);
		CU_ASSERT_EQUAL_FATAL(submit(&f, csr, len, &res), AMTPROV_OK);
		if (res.outcome != AMTPROV_CA_ISSUED)
			fprintf(stderr, "\n  %s: %s\n", amtprov_ca_outcome_name(res.outcome),
				res.message);
		CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_ISSUED);
		pi_ca_result_release(&res);
		free(csr);
	}

	/* fetch_roots is GetCACert. */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_ca_fetch_roots(f.pi, &roots, &err), AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL(roots && strstr(roots, "BEGIN CERTIFICATE"));
	free(roots);

	/* Wrong challenge: the server's own verdict. */
	csr = make_csr("WRONG", NULL, &len);
	CU_ASSERT_EQUAL_FATAL(submit(&f, csr, len, &res), AMTPROV_OK);
	if (!strstr(res.message, "badRequest"))
		fprintf(stderr, "\n  wrong challenge: %s: %s\n",
			amtprov_ca_outcome_name(res.outcome), res.message);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "badRequest"));
	CU_ASSERT_PTR_NULL(res.cert_der);
	pi_ca_result_release(&res);
	free(csr);

	/* No challenge in the request while the server needs one. */
	csr = make_csr(NULL, NULL, &len);
	CU_ASSERT_EQUAL_FATAL(submit(&f, csr, len, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "challengePassword"));
	pi_ca_result_release(&res);
	free(csr);

	/* Server gone. */
	scep_stop();
	csr = make_csr(CHALLENGE, NULL, &len);
	CU_ASSERT_EQUAL(submit(&f, csr, len, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_UNREACHABLE);
	pi_ca_result_release(&res);
	free(csr);
	CU_ASSERT_FALSE(log_has(&f, CHALLENGE));
	X509_free(ca);
	fx_done(&f);
}

/* ---- scep PENDING and CertPoll against the in-process responder ---- */

/* One test's world; the per-test teardown frees it, also after a fatal assertion. */
static struct {
	struct scep_stub *stub;
	struct fx f;
	int have_fx;
	char cfg[512];
	uint8_t *csr;
	size_t csr_len;
	EVP_PKEY *key;
	char cookie[AMTPROV_CA_COOKIE_SIZE];
} pd;

static void pending_setup(void)
{
	memset(&pd, 0, sizeof(pd));
	pd.stub = scep_stub_start();
}

static void pending_teardown(void)
{
	if (pd.have_fx)
		fx_done(&pd.f);
	scep_stub_stop(pd.stub);
	free(pd.csr);
	EVP_PKEY_free(pd.key);
	memset(&pd, 0, sizeof(pd));
}

/* The plugin in scep mode on the stub; @p pin: ca_fingerprint set to the stub's CA. */
static void pending_up(int poll_interval, int pin)
{
	char fpr[3 * 32 + 1] = "";

	CU_ASSERT_PTR_NOT_NULL_FATAL(pd.stub);
	if (pin) {
		uint8_t md[32];
		unsigned int len = sizeof(md);

		CU_ASSERT_TRUE_FATAL(X509_digest(scep_stub_ca(pd.stub), EVP_sha256(), md, &len));
		for (unsigned int i = 0; i < len; i++)
			snprintf(fpr + 3 * i, sizeof(fpr) - 3 * i, "%02X%s", md[i],
				 i + 1 < len ? ":" : "");
	}
	snprintf(pd.cfg, sizeof(pd.cfg),
		 "{\"mode\": \"scep\", \"url\": \"http://127.0.0.1:%d/scep\", "
		 "\"timeout_seconds\": 10, \"poll_interval\": %d%s%s%s}",
		 scep_stub_port(pd.stub), poll_interval, pin ? ", \"ca_fingerprint\": \"" : "",
		 fpr, pin ? "\"" : "");
	pd.have_fx = 1;
	fx_init(&pd.f, pd.cfg);
	pd.csr = make_csr(NULL, &pd.key, &pd.csr_len);
}

/* The plugin's transactionID for @p key: hex SHA-256 of its SubjectPublicKeyInfo. */
static void expected_tid(EVP_PKEY *key, char out[65])
{
	unsigned char *spki = NULL, md[32];
	unsigned int mdlen = sizeof(md);
	int n = i2d_PUBKEY(key, &spki);

	CU_ASSERT_TRUE_FATAL(n > 0);
	CU_ASSERT_TRUE_FATAL(EVP_Digest(spki, (size_t)n, md, &mdlen, EVP_sha256(), NULL));
	OPENSSL_free(spki);
	ce_hex(md, 32, out);
}

/* <state>/scep-<cookie>.pem: the transient key kept while the request is pending. */
static int pending_file_mode(const char *cookie)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/scep-%s.pem", pd.f.dir, cookie);
	return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static void show(const char *what, const struct amtprov_ca_result *res)
{
	fprintf(stderr, "\n  %s: %s: %s\n", what, amtprov_ca_outcome_name(res->outcome),
		res->message);
}

/* Submit and expect the CA to hold the request: the cookie comes back for the polls. */
static void pending_submit(uint32_t outcome, uint32_t delay)
{
	struct amtprov_ca_result res;

	CU_ASSERT_EQUAL_FATAL(submit(&pd.f, pd.csr, pd.csr_len, &res), AMTPROV_OK);
	if (res.outcome != outcome)
		show("submit", &res);
	CU_ASSERT_EQUAL(res.delay_seconds, delay);
	CU_ASSERT_PTR_NULL(res.cert_der);
	snprintf(pd.cookie, sizeof(pd.cookie), "%s", res.cookie);
	pi_ca_result_release(&res);
	CU_ASSERT_EQUAL_FATAL(res.outcome, outcome);
}

/* A poll that the CA answers PENDING: the same outcome and the same cookie again. */
static void expect_poll_wait(uint32_t outcome, uint32_t delay)
{
	struct amtprov_ca_result res;

	CU_ASSERT_EQUAL_FATAL(poll_req(&pd.f, pd.csr, pd.csr_len, pd.cookie, &res), AMTPROV_OK);
	if (res.outcome != outcome)
		show("poll", &res);
	CU_ASSERT_EQUAL(res.outcome, outcome);
	CU_ASSERT_EQUAL(res.delay_seconds, delay);
	CU_ASSERT_STRING_EQUAL(res.cookie, pd.cookie);
	CU_ASSERT_PTR_NULL(res.cert_der);
	pi_ca_result_release(&res);
	CU_ASSERT_EQUAL(pending_file_mode(pd.cookie), 0600);
}

/* A poll answered ISSUED with a certificate for the request's key, issued by the stub's CA. */
static void expect_poll_issued(const uint8_t *csr, size_t csr_len)
{
	struct amtprov_ca_result res;
	X509 *x;

	CU_ASSERT_EQUAL_FATAL(poll_req(&pd.f, csr, csr_len, pd.cookie, &res), AMTPROV_OK);
	if (res.outcome != AMTPROV_CA_ISSUED)
		show("poll", &res);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_ISSUED);
	x = result_cert(&res);
	CU_ASSERT_PTR_NOT_NULL(x);
	if (x) {
		CU_ASSERT_TRUE(ce_same_key(X509_get0_pubkey(x), pd.key));
		CU_ASSERT_TRUE(verifies(x, scep_stub_ca(pd.stub)));
		CU_ASSERT_TRUE(has_eku(x, CE_OID_AMT_PROV));
	}
	/* The chain is the CA from GetCACert. */
	CU_ASSERT_PTR_NOT_NULL(res.chain_pem && strstr(res.chain_pem, "BEGIN CERTIFICATE"));
	X509_free(x);
	pi_ca_result_release(&res);
	/* Decided: the transient key is gone. */
	CU_ASSERT_EQUAL(pending_file_mode(pd.cookie), -1);
}

/* certmonger's WAIT + cookie: the CA holds the PKCSReq (PENDING), submit answers WAIT
 * (poll_interval 0: the core's own schedule) with the transactionID as cookie, and the
 * transient key is kept 0600 for the polls. */
static void test_scep_pending_submit_wait_cookie(void)
{
	struct scep_stub_stats st;
	char tid[65];

	pending_up(0, 0);
	pending_submit(AMTPROV_CA_WAIT, 0);
	expected_tid(pd.key, tid);
	CU_ASSERT_STRING_EQUAL(pd.cookie, tid);
	CU_ASSERT_EQUAL(pending_file_mode(pd.cookie), 0600);
	scep_stub_stats(pd.stub, &st);
	CU_ASSERT_TRUE(st.caps >= 1 && st.cacert >= 1);
	CU_ASSERT_EQUAL(st.pkcsreq, 1);
	CU_ASSERT_EQUAL(st.certpoll, 0);
	CU_ASSERT_EQUAL(st.bad, 0);
	CU_ASSERT_STRING_EQUAL(st.last_tid, tid);
	if (st.bad)
		fprintf(stderr, "\n  stub: %s\n", st.last_error);
}

/* certmonger's WAIT_WITH_DELAY + cookie: with poll_interval 45 every PENDING answer is
 * WAIT_WITH_DELAY 45 with the same cookie; CertPolls stay PENDING twice, then SUCCESS gives
 * ISSUED with a certificate for the request's key; a later poll finds no transaction. */
static void test_scep_pending_poll_wait_then_issued(void)
{
	struct amtprov_ca_result res;
	struct scep_stub_stats st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pd.stub);
	scep_stub_set_pending_polls(pd.stub, 2);
	pending_up(45, 1);
	pending_submit(AMTPROV_CA_WAIT_WITH_DELAY, 45);
	expect_poll_wait(AMTPROV_CA_WAIT_WITH_DELAY, 45);
	expect_poll_wait(AMTPROV_CA_WAIT_WITH_DELAY, 45);
	expect_poll_issued(pd.csr, pd.csr_len);
	scep_stub_stats(pd.stub, &st);
	CU_ASSERT_EQUAL(st.pkcsreq, 1);
	CU_ASSERT_EQUAL(st.certpoll, 3);
	CU_ASSERT_EQUAL(st.issued, 1);
	/* CertPoll: the PKCSReq's transient signer, IssuerAndSubject = CA name + request's. */
	CU_ASSERT_EQUAL(st.signer_changed, 0);
	CU_ASSERT_EQUAL(st.names_wrong, 0);
	CU_ASSERT_EQUAL(st.bad, 0);
	/* GetCACaps said POSTPKIOperation, AES, SHA-256. */
	CU_ASSERT_EQUAL(st.gets, 0);
	CU_ASSERT_STRING_EQUAL(st.cipher, "AES-128-CBC");
	CU_ASSERT_STRING_EQUAL(st.digest, "SHA256");

	CU_ASSERT_EQUAL(poll_req(&pd.f, pd.csr, pd.csr_len, pd.cookie, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "no pending SCEP transaction"));
	pi_ca_result_release(&res);
}

/* certmonger's WAIT + cookie across a restart: the instance is destroyed and the module
 * unloaded while the CA still says PENDING; the new instance polls with the same cookie (and
 * without the request) and opens the SUCCESS envelope with the persisted transient key. */
static void test_scep_pending_poll_after_restart(void)
{
	struct scep_stub_stats st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pd.stub);
	scep_stub_set_pending_polls(pd.stub, 1);
	pending_up(0, 0);
	pending_submit(AMTPROV_CA_WAIT, 0);
	expect_poll_wait(AMTPROV_CA_WAIT, 0);
	fx_restart(&pd.f, pd.cfg);
	CU_ASSERT_EQUAL(pending_file_mode(pd.cookie), 0600);
	expect_poll_issued(NULL, 0);
	scep_stub_stats(pd.stub, &st);
	CU_ASSERT_EQUAL(st.certpoll, 2);
	CU_ASSERT_EQUAL(st.issued, 1);
	CU_ASSERT_EQUAL(st.signer_changed, 0);
	CU_ASSERT_EQUAL(st.bad, 0);
}

/* certmonger's WAIT + cookie ending in a refusal: FAILURE on a CertPoll is REJECTED with the
 * failInfo's name, and the transient key is deleted. */
static void test_scep_pending_poll_failure(void)
{
	struct amtprov_ca_result res;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pd.stub);
	scep_stub_set_pending_polls(pd.stub, 1);
	scep_stub_set_fail_info(pd.stub, 4);
	pending_up(0, 0);
	pending_submit(AMTPROV_CA_WAIT, 0);
	expect_poll_wait(AMTPROV_CA_WAIT, 0);
	CU_ASSERT_EQUAL_FATAL(poll_req(&pd.f, pd.csr, pd.csr_len, pd.cookie, &res), AMTPROV_OK);
	if (res.outcome != AMTPROV_CA_REJECTED)
		show("poll", &res);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "badCertId"));
	CU_ASSERT_PTR_NULL(res.cert_der);
	pi_ca_result_release(&res);
	CU_ASSERT_EQUAL(pending_file_mode(pd.cookie), -1);

	/* The same request again (same transaction), refused at once with badAlg. */
	scep_stub_set_pending_polls(pd.stub, 0);
	scep_stub_set_fail_info(pd.stub, 0);
	pending_submit(AMTPROV_CA_WAIT, 0);
	CU_ASSERT_EQUAL_FATAL(poll_req(&pd.f, pd.csr, pd.csr_len, pd.cookie, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "badAlg"));
	pi_ca_result_release(&res);
}

/* A forged poll answer must not be taken, even when it carries a real certificate. */
static void expect_forged_refused(enum scep_stub_forge forge, const char *why)
{
	struct amtprov_ca_result res;

	scep_stub_forge_next(pd.stub, forge);
	CU_ASSERT_EQUAL_FATAL(poll_req(&pd.f, pd.csr, pd.csr_len, pd.cookie, &res), AMTPROV_OK);
	if (!strstr(res.message, why))
		show("forged", &res);
	/* UNREACHABLE, not REJECTED: whoever forged it must not end the real transaction. */
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_UNREACHABLE);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, why));
	CU_ASSERT_PTR_NULL(res.cert_der);
	pi_ca_result_release(&res);
	CU_ASSERT_EQUAL(pending_file_mode(pd.cookie), 0600);
}

/* certmonger's WAIT + cookie against forged CertReps: a SUCCESS with a wrong recipientNonce
 * (replay), another transactionID or a signature by a key that only claims the CA's name is
 * refused and the transaction stays pending; the genuine answer then issues. */
static void test_scep_pending_forged_replies(void)
{
	struct amtprov_ca_result res;
	struct scep_stub_stats st;
	EVP_PKEY *okey = NULL;
	uint8_t *other;
	size_t other_len;
	char otid[65];

	CU_ASSERT_PTR_NOT_NULL_FATAL(pd.stub);
	pending_up(0, 0);
	pending_submit(AMTPROV_CA_WAIT, 0);
	expect_forged_refused(SCEP_FORGE_RECIPIENT_NONCE, "recipientNonce");
	expect_forged_refused(SCEP_FORGE_TRANSACTION_ID, "not a CertRep for transaction");
	expect_forged_refused(SCEP_FORGE_SIGNER, "signature does not verify");
	expect_poll_issued(pd.csr, pd.csr_len);
	scep_stub_stats(pd.stub, &st);
	CU_ASSERT_EQUAL(st.issued, 4); /* the forged answers did carry certificates */
	CU_ASSERT_EQUAL(st.bad, 0);

	/* A forged PENDING to a PKCSReq gives no cookie and keeps no key. */
	other = make_csr(NULL, &okey, &other_len);
	expected_tid(okey, otid);
	EVP_PKEY_free(okey);
	scep_stub_forge_next(pd.stub, SCEP_FORGE_RECIPIENT_NONCE);
	CU_ASSERT_EQUAL(submit(&pd.f, other, other_len, &res), AMTPROV_OK);
	free(other);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_UNREACHABLE);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "recipientNonce"));
	CU_ASSERT_STRING_EQUAL(res.cookie, "");
	pi_ca_result_release(&res);
	scep_stub_stats(pd.stub, &st);
	CU_ASSERT_STRING_EQUAL(st.last_tid, otid); /* the stub did see that PKCSReq */
	CU_ASSERT_EQUAL(pending_file_mode(otid), -1);
}

/* certmonger's WAIT + cookie with a minimal server: no GetCACaps capabilities, so PKCSReq and
 * CertPoll go by GET with base64, enveloped with 3DES and signed with SHA-1 (RFC 8894 3.5.2
 * defaults), and the pending request still issues. */
static void test_scep_pending_minimal_caps(void)
{
	struct scep_stub_stats st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pd.stub);
	scep_stub_set_caps(pd.stub, "");
	scep_stub_set_pending_polls(pd.stub, 1);
	pending_up(0, 0);
	pending_submit(AMTPROV_CA_WAIT, 0);
	expect_poll_wait(AMTPROV_CA_WAIT, 0);
	expect_poll_issued(pd.csr, pd.csr_len);
	scep_stub_stats(pd.stub, &st);
	CU_ASSERT_EQUAL(st.gets, 3);
	CU_ASSERT_STRING_EQUAL(st.cipher, "DES-EDE3-CBC");
	CU_ASSERT_STRING_EQUAL(st.digest, "SHA1");
	CU_ASSERT_EQUAL(st.bad, 0);
}

static void test_descriptor(void)
{
	struct fx f;

	fx_init(&f, RF_CFG);
	CU_ASSERT_TRUE(plugin_instance_has_cap(f.pi, AMTPROV_CAP_CA_POLL));
	CU_ASSERT_TRUE(plugin_instance_has_cap(f.pi, AMTPROV_CAP_CA_PURPOSE_PROV));
	CU_ASSERT_FALSE(plugin_instance_has_cap(f.pi, AMTPROV_CAP_CA_REVOKE));
	fx_done(&f);
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("ca_external_request_file", NULL, NULL);
	CU_add_test(s, "request file round trip via openssl x509 -req (R-CA-03, R-PC-01)",
		    test_request_file_round_trip);
	CU_add_test(s, "wrong key and .rejected answers refused (R-CA-03)",
		    test_request_file_refusals);
	CU_add_test(s, "PKCS#12 answer, password from the credential store (R-CA-03)",
		    test_request_file_pkcs12);
	CU_add_test(s, "amtprov-request: provisioning CSR with AMT OID/OU (R-PC-01/02, R-CA-03)",
		    test_provisioning_request_tool);
	CU_add_test(s, "configuration errors", test_config_errors);
	CU_add_test(s, "descriptor capabilities", test_descriptor);
	s = CU_add_suite("ca_external_scep", scep_suite_init, scep_suite_clean);
	CU_add_test(s, "SCEP against the real scepserver (R-CA-03)", test_scep_enroll);
	s = CU_add_suite_with_setup_and_teardown("ca_external_scep_pending", NULL, NULL,
						 pending_setup, pending_teardown);
	CU_add_test(s, "SCEP PENDING: submit answers WAIT + cookie (certmonger WAIT)",
		    test_scep_pending_submit_wait_cookie);
	CU_add_test(s, "SCEP CertPoll: WAIT_WITH_DELAY + cookie while PENDING, then ISSUED "
		       "(certmonger WAIT_WITH_DELAY)",
		    test_scep_pending_poll_wait_then_issued);
	CU_add_test(s, "SCEP CertPoll after a restart, same cookie (certmonger WAIT + cookie)",
		    test_scep_pending_poll_after_restart);
	CU_add_test(s, "SCEP CertPoll FAILURE: REJECTED with failInfo (certmonger WAIT + cookie)",
		    test_scep_pending_poll_failure);
	CU_add_test(s, "SCEP CertPoll forged CertRep refused (certmonger WAIT + cookie)",
		    test_scep_pending_forged_replies);
	CU_add_test(s, "SCEP CertPoll by GET, 3DES, SHA-1 without caps (certmonger WAIT + cookie)",
		    test_scep_pending_minimal_caps);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	EVP_PKEY_free(cached_key);
	return failed ? 1 : 0;
}
