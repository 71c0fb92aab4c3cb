/* SPDX-License-Identifier: Apache-2.0 */
/*
 * amtprov plugin test: drives one CA plugin instance through submit / poll / revoke with a
 * freshly generated request for each purpose it declares, applies the core's CA contract
 * (core/pki/ca_contract.c) to every ISSUED answer, and prints each answer. An integrator's first
 * tool: what passes here passes the same check inside amtprovd.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_contract.h"
#include "cmd_plugin_test.h"
#include "exit_codes.h"
#include "pki.h"
#include "plugin_host.h"
#include "site.h"
#include "util.h"

static const char usage_text[] =
	"Usage: amtprov plugin test [OPTIONS] PLUGIN   (with --config or --config-file)\n"
	"       amtprov -m SITE plugin test [OPTIONS] INSTANCE\n"
	"Drives a CA plugin through submit, poll and revoke with a generated request for each\n"
	"purpose it declares, checks every issued certificate against the CA contract the\n"
	"core applies before anything reaches AMT, and prints each answer.\n"
	"\n"
	"  -d, --plugin-dir DIR    search DIR first for PLUGIN (repeatable)\n"
	"  -c, --config JSON       the instance's configuration object (default {})\n"
	"  -f, --config-file FILE  the same, read from FILE\n"
	"  -p, --purpose P         web-server or 802.1x-client (repeatable; default: every\n"
	"                          purpose the plugin declares)\n"
	"      --fqdn FQDN         identity to request (default amtprov-test.example.com)\n"
	"      --template NAME     template/profile passed to the CA\n"
	"      --max-wait SECONDS  give up polling after this long (default 60)\n"
	"      --no-crl-check      the site's transport does not check CRLs (no CRL\n"
	"                          distribution point needed); with -m the site decides\n"
	"      --no-revoke         do not revoke the test certificates\n"
	"  -h, --help              show this help\n"
	"\n"
	"With -m, INSTANCE is a CA instance of the site's manifest: its plugin, configuration,\n"
	"credential store and state directory are the site's own. Otherwise PLUGIN is loaded\n"
	"alone with --config (no credential store, no state directory).\n"
	"Exit status: 0 every purpose issued a certificate that keeps the contract, 1 a CA\n"
	"answer or the contract failed, 2 usage, 3 configuration, 5 plugin not loaded.";

struct pt {
	const char *fqdn, *template_name;
	int max_wait, no_revoke, no_crl;
	int site_rules;               /* contract settings from the site manifest */
	struct manifest *m;           /* borrowed */
	struct plugin_host *ph;       /* borrowed */
	struct plugin_instance *pi;
	json_t *out;                  /* --json: array of per-purpose results */
	int json;
};

/* A request like the core's: CN and dNSName = FQDN, the CA's attributes, signed by key. */
static int make_csr(struct pt *t, const struct amtprov_ca_request *req0, EVP_PKEY *key,
		    uint8_t **der, size_t *len, struct amtprov_error *err)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	X509_EXTENSIONS *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *san = NULL;
	struct amtprov_secret *attrs = NULL;
	char sanv[300];
	unsigned char *p = NULL;
	int rc = AMTPROV_OK, n_der;

	rc = pi_ca_csr_attributes(t->pi, t->fqdn, req0, &attrs, err);
	snprintf(sanv, sizeof(sanv), "DNS:%s", t->fqdn);
	san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sanv);
	if (rc == AMTPROV_OK &&
	    (!r || !n || !exts || !san ||
	     !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)t->fqdn,
					 -1, -1, 0) ||
	     !X509_REQ_set_subject_name(r, n) || !X509_REQ_set_pubkey(r, key) ||
	     !sk_X509_EXTENSION_push(exts, san)))
		rc = pki_error(err, AMTPROV_E_CRYPTO, NULL, "building the test request");
	if (rc == AMTPROV_OK) {
		san = NULL; /* the stack owns it */
		if (!X509_REQ_add_extensions(r, exts))
			rc = pki_error(err, AMTPROV_E_CRYPTO, NULL, "building the test request");
	}
	/* The CA's attributes: concatenated DER Attribute SEQUENCEs (ca.h). */
	for (const unsigned char *a = attrs ? (const unsigned char *)attrs->data : NULL,
				 *end = a ? a + attrs->len : NULL;
	     rc == AMTPROV_OK && a && a < end;) {
		X509_ATTRIBUTE *at = d2i_X509_ATTRIBUTE(NULL, &a, end - a);

		if (!at || !X509_REQ_add1_attr(r, at))
			rc = pki_error(err, AMTPROV_E_PARSE, NULL, "the CA's csr_attributes are not "
				       "DER Attribute SEQUENCEs");
		X509_ATTRIBUTE_free(at);
	}
	if (rc == AMTPROV_OK && X509_REQ_sign(r, key, EVP_sha256()) <= 0)
		rc = pki_error(err, AMTPROV_E_CRYPTO, NULL, "signing the test request");
	if (rc == AMTPROV_OK && (n_der = i2d_X509_REQ(r, &p)) > 0) {
		*der = p;
		*len = (size_t)n_der;
	} else if (rc == AMTPROV_OK) {
		rc = pki_error(err, AMTPROV_E_CRYPTO, NULL, "encoding the test request");
	}
	X509_EXTENSION_free(san);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	X509_REQ_free(r);
	if (attrs)
		plugin_instance_host(t->pi)->secret_free(plugin_instance_host(t->pi), attrs);
	return rc;
}

static void sleep_s(unsigned s)
{
	struct timespec ts = {.tv_sec = s};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* One line (text) or one object (JSON) per call. */
static void report(struct pt *t, json_t *steps, const char *purpose, const char *call,
		   int rc, const struct amtprov_error *err, const struct amtprov_ca_result *res)
{
	if (steps) {
		json_t *j = rc ? json_pack("{s:s,s:s,s:s}", "call", call, "error",
					   amtprov_strerror(rc), "message", err->msg)
			       : json_pack("{s:s,s:s,s:s,s:s,s:s,s:i}", "call", call, "outcome",
					   amtprov_ca_outcome_name(res->outcome), "message",
					   res->message, "cookie", res->cookie, "request_id",
					   res->request_id, "delay_seconds", (int)res->delay_seconds);

		json_array_append_new(steps, j);
		return;
	}
	(void)t;
	if (rc) {
		printf("%-14s %-7s error: %s%s%s\n", purpose, call, err->where, err->where[0] ? ": "
										     : "", err->msg);
		return;
	}
	printf("%-14s %-7s %s", purpose, call, amtprov_ca_outcome_name(res->outcome));
	if (res->outcome == AMTPROV_CA_WAIT || res->outcome == AMTPROV_CA_WAIT_WITH_DELAY)
		printf(" cookie '%s'", res->cookie);
	if (res->outcome == AMTPROV_CA_WAIT_WITH_DELAY)
		printf(" delay %us", (unsigned)res->delay_seconds);
	if (res->outcome == AMTPROV_CA_ISSUED && res->cert_der)
		printf(" certificate %zu bytes, chain %s", res->cert_len,
		       res->chain_pem && *res->chain_pem ? "given" : "none");
	if (res->request_id[0])
		printf(" request-id '%s'", res->request_id);
	if (res->message[0])
		printf(": %s", res->message);
	putchar('\n');
}

/* Revokes what was issued (serial and issuer from the certificate itself). */
static int revoke_issued(struct pt *t, json_t *steps, const char *pname,
			 const struct amtprov_ca_result *issued)
{
	const unsigned char *p = issued->cert_der;
	X509 *x = d2i_X509(NULL, &p, (long)issued->cert_len);
	BIGNUM *bn = x ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	char issuer[512];
	struct amtprov_ca_revocation rev = {.struct_size = sizeof(rev)};
	struct amtprov_ca_result res = {.struct_size = sizeof(res)};
	struct amtprov_error err;
	int rc, ok;

	amtprov_error_clear(&err);
	if (!hex) {
		X509_free(x);
		BN_free(bn);
		return 0;
	}
	pki_name(x, 1, issuer, sizeof(issuer));
	rev.serial_hex = hex;
	rev.issuer = issuer;
	rev.cert_der = issued->cert_der;
	rev.cert_len = issued->cert_len;
	rev.reason = AMTPROV_REVOKE_CESSATION_OF_OPERATION;
	/* A pending revocation is asked again later, as amtprovd's revocation queue does. */
	for (int waited = 0;;) {
		unsigned d;

		rc = pi_ca_revoke(t->pi, t->fqdn, &rev, &res, &err);
		report(t, steps, pname, "revoke", rc, &err, &res);
		if (rc || (res.outcome != AMTPROV_CA_WAIT &&
			   res.outcome != AMTPROV_CA_WAIT_WITH_DELAY))
			break;
		d = res.outcome == AMTPROV_CA_WAIT_WITH_DELAY && res.delay_seconds
			    ? res.delay_seconds : 2;
		if (waited + (int)d > t->max_wait)
			break;
		sleep_s(d);
		waited += (int)d;
		pi_ca_result_release(&res);
		memset(&res, 0, sizeof(res));
		res.struct_size = sizeof(res);
	}
	ok = rc == AMTPROV_OK && res.outcome == AMTPROV_CA_ISSUED;
	pi_ca_result_release(&res);
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
	return ok;
}

/* submit, poll until an answer or max_wait, contract, revoke. @return 1 if all passed. */
static int test_purpose(struct pt *t, uint32_t purpose)
{
	const char *pname = ca_contract_purpose_name(purpose);
	json_t *steps = t->json ? json_array() : NULL, *contract = NULL;
	struct amtprov_ca_request req = {.struct_size = sizeof(req), .purpose = purpose,
					 .template_name = t->template_name,
					 .subject_fqdn = t->fqdn,
					 .device_uuid = "00000000-0000-4000-8000-000000000000"};
	struct amtprov_ca_result res = {.struct_size = sizeof(res)};
	struct ca_contract k = {.purpose = purpose, .ca_instance = plugin_instance_name(t->pi),
				.fqdn = t->fqdn};
	struct amtprov_error err;
	EVP_PKEY *key = EVP_RSA_gen(2048);
	uint8_t *csr = NULL;
	size_t csr_len = 0;
	const char *rule = NULL;
	int rc, ok = 0, waited = 0;
	char cookie[AMTPROV_CA_COOKIE_SIZE];

	amtprov_error_clear(&err);
	if (purpose == AMTPROV_PURPOSE_CLIENT_8021X)
		req.netprofile = "amtprov-test";
	rc = key ? make_csr(t, &req, key, &csr, &csr_len, &err)
		 : pki_error(&err, AMTPROV_E_CRYPTO, NULL, "generating an RSA key");
	if (rc) {
		report(t, steps, pname, "request", rc, &err, &res);
		goto out;
	}
	req.csr_der = csr;
	req.csr_len = csr_len;
	rc = pi_ca_submit(t->pi, t->fqdn, &req, &res, &err);
	report(t, steps, pname, "submit", rc, &err, &res);
	while (rc == AMTPROV_OK &&
	       (res.outcome == AMTPROV_CA_WAIT || res.outcome == AMTPROV_CA_WAIT_WITH_DELAY)) {
		unsigned d = res.outcome == AMTPROV_CA_WAIT_WITH_DELAY && res.delay_seconds
				     ? res.delay_seconds
				     : 2;

		if (waited + (int)d > t->max_wait) {
			amtprov_error_set(&err, AMTPROV_E_TIMEOUT, NULL, "still pending after %ds "
					  "(--max-wait)", waited);
			report(t, steps, pname, "poll", AMTPROV_E_TIMEOUT, &err, &res);
			rc = AMTPROV_E_TIMEOUT;
			break;
		}
		sleep_s(d);
		waited += (int)d;
		util_strlcpy(cookie, res.cookie, sizeof(cookie));
		pi_ca_result_release(&res);
		memset(&res, 0, sizeof(res));
		res.struct_size = sizeof(res);
		rc = pi_ca_poll(t->pi, t->fqdn, &req, cookie, &res, &err);
		report(t, steps, pname, "poll", rc, &err, &res);
	}
	if (rc || res.outcome != AMTPROV_CA_ISSUED)
		goto out;
	/* The same check amtprovd applies before anything reaches AMT. */
	k.request_key = key;
	if (t->site_rules) {
		ca_contract_from_site(t->m, t->ph, &k);
	} else {
		ca_contract_from_site(NULL, NULL, &k);
		if (t->no_crl)
			k.need_crl = 0;
	}
	amtprov_error_clear(&err);
	rc = ca_contract_check(&k, &res, &rule, &err);
	ok = rc == AMTPROV_OK;
	if (steps) {
		contract = ok ? json_pack("{s:b}", "ok", 1)
			      : json_pack("{s:b,s:s?,s:s}", "ok", 0, "rule", rule, "message",
					  err.msg);
	} else if (ok) {
		printf("%-14s %-7s ok: the certificate keeps the CA contract\n", pname, "check");
	} else {
		printf("%-14s %-7s FAILED: %s\n", pname, "check", err.msg);
	}
	if (!t->no_revoke && plugin_instance_has_cap(t->pi, AMTPROV_CAP_CA_REVOKE))
		ok = revoke_issued(t, steps, pname, &res) && ok;
out:
	if (steps)
		json_array_append_new(t->out, json_pack("{s:s,s:o,s:o*,s:b}", "purpose", pname,
							"calls", steps, "contract", contract,
							"ok", ok));
	pi_ca_result_release(&res);
	OPENSSL_free(csr);
	EVP_PKEY_free(key);
	return ok;
}

static json_t *load_config(const char *text, const char *file, struct amtprov_error *err)
{
	json_error_t je;
	json_t *j = file ? json_load_file(file, JSON_REJECT_DUPLICATES, &je)
			 : json_loads(text ? text : "{}", JSON_REJECT_DUPLICATES, &je);

	if (!j)
		amtprov_error_set(err, AMTPROV_E_CONFIG, file ? file : "--config",
				  "line %d column %d: %s", je.line, je.column, je.text);
	else if (!json_is_object(j)) {
		json_decref(j);
		j = NULL;
		amtprov_error_set(err, AMTPROV_E_CONFIG, file ? file : "--config",
				  "the configuration must be a JSON object");
	}
	return j;
}

static int parse_purpose(const char *s, uint32_t *mask)
{
	if (strcmp(s, "web-server") == 0)
		*mask |= 1u << AMTPROV_PURPOSE_WEB_SERVER;
	else if (strcmp(s, "802.1x-client") == 0)
		*mask |= 1u << AMTPROV_PURPOSE_CLIENT_8021X;
	else
		return -1;
	return 0;
}

int cmd_plugin_test(const char *manifest, int json, struct alog *log, int argc, char **argv)
{
	enum { O_FQDN = 256, O_TEMPLATE, O_MAX_WAIT, O_NO_CRL, O_NO_REVOKE };
	static const struct option opts[] = {
		{"plugin-dir", required_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'c'},
		{"config-file", required_argument, NULL, 'f'},
		{"purpose", required_argument, NULL, 'p'},
		{"fqdn", required_argument, NULL, O_FQDN},
		{"template", required_argument, NULL, O_TEMPLATE},
		{"max-wait", required_argument, NULL, O_MAX_WAIT},
		{"no-crl-check", no_argument, NULL, O_NO_CRL},
		{"no-revoke", no_argument, NULL, O_NO_REVOKE},
		{"help", no_argument, NULL, 'h'},
		{0}};
	struct pt t = {.fqdn = "amtprov-test.example.com", .max_wait = 60, .json = json};
	struct host_env env = {.log = log, .config_base = "--config"};
	const char *config_text = NULL, *config_file = NULL;
	struct plugin_host *ph = NULL;
	struct site *s = NULL;
	struct amtprov_error err;
	char **dirs = calloc((size_t)argc + 1, sizeof(*dirs));
	size_t n_dirs = 0;
	uint32_t mask = 0;
	long long ll;
	int o, rc, status = EXIT_OK, standalone;

	amtprov_error_clear(&err);
	if (!dirs)
		return EXIT_FAIL;
	optind = 1;
	while ((o = getopt_long(argc, argv, "d:c:f:p:h", opts, NULL)) != -1) {
		switch (o) {
		case 'd': dirs[n_dirs++] = optarg; break;
		case 'c': config_text = optarg; break;
		case 'f': config_file = optarg; break;
		case 'p':
			if (parse_purpose(optarg, &mask)) {
				fprintf(stderr, "amtprov: --purpose: '%s' is not web-server or "
					"802.1x-client\n", optarg);
				free(dirs);
				return EXIT_USAGE;
			}
			break;
		case O_FQDN: t.fqdn = optarg; break;
		case O_TEMPLATE: t.template_name = optarg; break;
		case O_MAX_WAIT:
			if (util_parse_ll(optarg, 0, 86400, &ll) != 0) {
				fprintf(stderr, "amtprov: --max-wait: '%s' is not 0..86400 seconds\n",
					optarg);
				free(dirs);
				return EXIT_USAGE;
			}
			t.max_wait = (int)ll;
			break;
		case O_NO_CRL: t.no_crl = 1; break;
		case O_NO_REVOKE: t.no_revoke = 1; break;
		case 'h':
			puts(usage_text);
			free(dirs);
			return EXIT_OK;
		default:
			free(dirs);
			return EXIT_USAGE;
		}
	}
	standalone = config_text || config_file || !manifest;
	if (optind != argc - 1 || (config_text && config_file) || !pki_is_fqdn(t.fqdn)) {
		fprintf(stderr, "amtprov: usage: amtprov plugin test [--plugin-dir DIR] "
			"[--config JSON | --config-file FILE] [--purpose P] [--fqdn FQDN] NAME "
			"(see --help)\n");
		free(dirs);
		return EXIT_USAGE;
	}
	if (standalone) {
		json_t *cfg = load_config(config_text, config_file, &err);

		ph = cfg ? plugin_host_new(&env) : NULL;
		for (size_t i = 0; ph && i < n_dirs; i++)
			plugin_host_add_dir(ph, dirs[i], &err);
		rc = !cfg ? err.code : !ph ? AMTPROV_E_NOMEM : err.code;
		if (rc == AMTPROV_OK)
			rc = plugin_host_create(ph, argv[optind], argv[optind], cfg, AMTPROV_KIND_CA,
						&t.pi, &err);
		json_decref(cfg);
	} else {
		struct site_options so = {.manifest = manifest, .flags = SITE_NO_DB, .log = log};
		struct manifest_problems probs = {0};

		rc = site_open(&so, &s, &probs, &err);
		if (probs.count)
			manifest_problems_print(&probs, manifest, stderr);
		manifest_problems_free(&probs);
		if (rc == AMTPROV_OK) {
			t.pi = plugin_host_find(site_plugins(s), argv[optind]);
			t.m = site_manifest(s);
			t.ph = site_plugins(s);
			t.site_rules = 1;
			if (!t.pi || plugin_instance_kind(t.pi) != AMTPROV_KIND_CA)
				rc = amtprov_error_set(&err, AMTPROV_E_NOT_FOUND, manifest,
						       "'%s' is not a CA instance of this site",
						       argv[optind]);
		}
		ph = s ? site_plugins(s) : NULL;
	}
	if (rc == AMTPROV_OK)
		rc = plugin_host_start_all(ph, &err);
	if (rc) {
		fprintf(stderr, "amtprov: %s%s%s\n", err.where, err.where[0] ? ": " : "", err.msg);
		status = rc == AMTPROV_E_NOT_FOUND || rc == AMTPROV_E_ABI ? EXIT_PLUGIN
										   : tool_exit_code(&err);
		goto out;
	}
	if (!mask) {
		if (plugin_instance_has_cap(t.pi, AMTPROV_CAP_CA_PURPOSE_WEB))
			mask |= 1u << AMTPROV_PURPOSE_WEB_SERVER;
		if (plugin_instance_has_cap(t.pi, AMTPROV_CAP_CA_PURPOSE_8021X))
			mask |= 1u << AMTPROV_PURPOSE_CLIENT_8021X;
	}
	if (!mask) {
		fprintf(stderr, "amtprov: %s declares neither %s nor %s: give --purpose\n",
			argv[optind], AMTPROV_CAP_CA_PURPOSE_WEB, AMTPROV_CAP_CA_PURPOSE_8021X);
		status = EXIT_FAIL;
		goto out;
	}
	t.out = json ? json_array() : NULL;
	for (uint32_t p = AMTPROV_PURPOSE_WEB_SERVER; p <= AMTPROV_PURPOSE_CLIENT_8021X; p++)
		if ((mask & (1u << p)) && !test_purpose(&t, p))
			status = EXIT_FAIL;
	if (t.out) {
		json_dumpf(t.out, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(t.out);
	}
out:
	if (s)
		site_close(s);
	else
		plugin_host_free(ph);
	free(dirs);
	return status;
}
