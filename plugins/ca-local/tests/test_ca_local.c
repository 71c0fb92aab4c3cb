/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ca_local.c - CUnit tests of the ca-local plugin, loaded through the real plugin host
 * (core/plugin/plugin_host.h) from the build's plugin directory.
 *
 * Certificates are checked with OpenSSL in-process (EKUs, subjects, SANs, CRL entries) and
 * with the real `openssl verify` command against the chain ca-local writes, as a CRL checker
 * or TLS peer would. The clock is injected but starts at the real time, because `openssl
 * verify` checks validity against the real one.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include <amtprov/ca.h>

#include "log.h"
#include "plugin_host.h"
#include "util.h"

/* Test paths are short temporary directories; GCC cannot know that and would warn about
 * every "%s/file" into a PATH_MAX buffer. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define FQDN "amt1.contoso.com"
#define SP_FQDN "oob.contoso.com"
#define EC_CFG "{\"key_type\": \"ec\", \"crl_listen\": \"127.0.0.1:0\"}"

/* ---- fixture ---- */

struct fx {
	struct alog *log;
	pthread_mutex_t lock;
	char **lines;
	size_t n;
	int64_t now;
	char state_root[PATH_MAX];
	char dir[PATH_MAX]; /* <state_root>/plugins/lab-ca */
	struct plugin_host *ph;
	struct plugin_instance *pi;
};

static void cap_cb(void *ctx, int level, const char *line)
{
	struct fx *f = ctx;
	char **grown;

	(void)level;
	pthread_mutex_lock(&f->lock);
	grown = realloc(f->lines, (f->n + 1) * sizeof(*grown));
	if (grown) {
		f->lines = grown;
		f->lines[f->n] = strdup(line);
		if (f->lines[f->n])
			f->n++;
	}
	pthread_mutex_unlock(&f->lock);
}

static int64_t fake_clock(void *ctx)
{
	return *(const int64_t *)ctx;
}

static void host_open(struct fx *f)
{
	struct host_env env = {
		.log = f->log,
		.now = fake_clock,
		.now_ctx = &f->now,
		.state_root = f->state_root,
		.config_base = "/plugins",
	};
	struct amtprov_error err;

	f->ph = plugin_host_new(&env);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->ph);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(plugin_host_add_dir(f->ph, AMTPROV_PLUGIN_BUILD_DIR, &err),
			      AMTPROV_OK);
}

static int try_create(struct fx *f, const char *inst, const char *config_json,
		      struct plugin_instance **pi, struct amtprov_error *err)
{
	json_t *cfg = json_loads(config_json ? config_json : "{}", 0, NULL);
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	amtprov_error_clear(err);
	rc = plugin_host_create(f->ph, inst, "ca-local", cfg, AMTPROV_KIND_CA, pi, err);
	json_decref(cfg);
	return rc;
}

static struct plugin_instance *create_ok(struct fx *f, const char *inst, const char *cfg)
{
	struct plugin_instance *pi = NULL;
	struct amtprov_error err;
	int rc = try_create(f, inst, cfg, &pi, &err);

	if (rc != AMTPROV_OK)
		fprintf(stderr, "\n  create %s: %s: %s: %s\n", inst, amtprov_status_name(rc),
			err.where, err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, AMTPROV_OK);
	return pi;
}

static void start_ok(struct fx *f)
{
	struct amtprov_error err;
	int rc;

	amtprov_error_clear(&err);
	rc = plugin_host_start_all(f->ph, &err);
	if (rc != AMTPROV_OK)
		fprintf(stderr, "\n  start: %s: %s: %s\n", amtprov_status_name(rc), err.where,
			err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, AMTPROV_OK);
}

/* A host with one started instance "lab-ca" configured by @p cfg. */
static void fx_open(struct fx *f, const char *cfg)
{
	host_open(f);
	f->pi = create_ok(f, "lab-ca", cfg);
	start_ok(f);
}

static void fx_init(struct fx *f, const char *cfg)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	/* Ten minutes in the past, so tests can move the clock forward and `openssl verify`
	 * (which uses the real clock) still sees every CRL and certificate as current. */
	f->now = (int64_t)time(NULL) - 600;
	f->log = alog_new("ca-local-test", AMTPROV_LOG_DEBUG, ALOG_CALLBACK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->log);
	alog_set_callback(f->log, cap_cb, f);
	snprintf(f->state_root, sizeof(f->state_root), "/tmp/ca-local-test-XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(f->state_root));
	snprintf(f->dir, sizeof(f->dir), "%s/plugins/lab-ca", f->state_root);
	if (cfg)
		fx_open(f, cfg);
}

/* Stops and destroys every instance and unloads the plugin; the state stays. */
static void fx_close(struct fx *f)
{
	plugin_host_free(f->ph);
	f->ph = NULL;
	f->pi = NULL;
}

static void fx_done(struct fx *f)
{
	char cmd[PATH_MAX + 16];

	fx_close(f);
	alog_free(f->log);
	for (size_t i = 0; i < f->n; i++)
		free(f->lines[i]);
	free(f->lines);
	pthread_mutex_destroy(&f->lock);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->state_root);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

static int log_has(struct fx *f, const char *needle)
{
	int found = 0;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n && !found; i++)
		found = strstr(f->lines[i], needle) != NULL;
	pthread_mutex_unlock(&f->lock);
	return found;
}

/* ---- requests ---- */

enum keykind { K_RSA2048, K_EC256, K_RSA1024, K_SECP256K1 };

static EVP_PKEY *cached_rsa;

static EVP_PKEY *new_key(enum keykind k)
{
	switch (k) {
	case K_RSA2048:
		/* RSA generation is slow under ASan: one key serves every RSA request. */
		if (!cached_rsa)
			cached_rsa = EVP_RSA_gen(2048);
		EVP_PKEY_up_ref(cached_rsa);
		return cached_rsa;
	case K_EC256: return EVP_EC_gen("P-256");
	case K_RSA1024: return EVP_RSA_gen(1024);
	case K_SECP256K1: return EVP_EC_gen("secp256k1");
	}
	return NULL;
}

/* A DER PKCS#10 request; @p subject "CN=x,O=y" or NULL/"" for an empty subject. */
static uint8_t *make_csr_md(enum keykind k, const EVP_MD *md, const char *cn, const char *o,
			    size_t *len)
{
	EVP_PKEY *key = new_key(k);
	X509_REQ *r = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	unsigned char *der = NULL;
	int l;

	CU_ASSERT_PTR_NOT_NULL_FATAL(key);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	if (o)
		X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)o, -1, -1,
					   0);
	if (cn)
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
					   -1, 0);
	CU_ASSERT_EQUAL(X509_REQ_set_subject_name(r, n), 1);
	CU_ASSERT_EQUAL(X509_REQ_set_pubkey(r, key), 1);
	CU_ASSERT_TRUE(X509_REQ_sign(r, key, md) > 0);
	l = i2d_X509_REQ(r, &der);
	CU_ASSERT_TRUE_FATAL(l > 0);
	*len = (size_t)l;
	X509_NAME_free(n);
	X509_REQ_free(r);
	EVP_PKEY_free(key);
	/* OPENSSL_malloc and malloc are the same allocator here; copy to be tidy anyway. */
	{
		uint8_t *copy = malloc(*len);

		CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
		memcpy(copy, der, *len);
		OPENSSL_free(der);
		return copy;
	}
}

static uint8_t *make_csr(enum keykind k, const char *cn, size_t *len)
{
	return make_csr_md(k, EVP_sha256(), cn, NULL, len);
}

static int submit(struct plugin_instance *pi, uint32_t purpose, const char *fqdn,
		  const uint8_t *csr, size_t csr_len, struct amtprov_ca_result *res)
{
	struct amtprov_ca_request req = {
		.struct_size = sizeof(req),
		.purpose = purpose,
		.csr_der = csr,
		.csr_len = csr_len,
		.subject_fqdn = fqdn,
	};
	struct amtprov_error err;
	int rc;

	memset(res, 0, sizeof(*res));
	res->struct_size = sizeof(*res);
	amtprov_error_clear(&err);
	rc = pi_ca_submit(pi, fqdn, &req, res, &err);
	if (rc != AMTPROV_OK)
		fprintf(stderr, "\n  submit: %s: %s\n", amtprov_status_name(rc), err.msg);
	return rc;
}

/* The certificate carries the request's SubjectPublicKeyInfo byte for byte (ca-local copies
 * it rather than re-encoding the parsed key), it decodes to the same key, and its subject key
 * identifier is the SHA-1 of those key bits (RFC 5280 4.2.1.2, method 1). */
static void check_same_key(X509 *x, const uint8_t *csr, size_t len)
{
	const unsigned char *p = csr;
	X509_REQ *r = d2i_X509_REQ(NULL, &p, (long)len);
	unsigned char *a = NULL, *b = NULL, md[SHA_DIGEST_LENGTH];
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
	const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(x);
	int la, lb;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	la = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(r), &a);
	lb = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &b);
	CU_ASSERT_TRUE(la > 0 && la == lb && memcmp(a, b, (size_t)la) == 0);
	CU_ASSERT_PTR_NOT_NULL(X509_get0_pubkey(x));
	CU_ASSERT_EQUAL(EVP_PKEY_eq(X509_get0_pubkey(x), X509_REQ_get0_pubkey(r)), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ski);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bits);
	SHA1(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), md);
	CU_ASSERT_EQUAL(ASN1_STRING_length(ski), SHA_DIGEST_LENGTH);
	CU_ASSERT_EQUAL(memcmp(ASN1_STRING_get0_data(ski), md, SHA_DIGEST_LENGTH), 0);
	OPENSSL_free(a);
	OPENSSL_free(b);
	X509_REQ_free(r);
}

/* Issues a certificate for @p purpose with a fresh request; returns it (caller frees). */
static X509 *issue(struct plugin_instance *pi, uint32_t purpose, enum keykind k,
		   const char *csr_cn, const char *fqdn)
{
	struct amtprov_ca_result res;
	size_t len;
	uint8_t *csr = make_csr(k, csr_cn, &len);
	const unsigned char *p;
	X509 *x = NULL;

	CU_ASSERT_EQUAL_FATAL(submit(pi, purpose, fqdn, csr, len, &res), AMTPROV_OK);
	if (res.outcome != AMTPROV_CA_ISSUED)
		fprintf(stderr, "\n  outcome %s: %s\n", amtprov_ca_outcome_name(res.outcome),
			res.message);
	CU_ASSERT_EQUAL_FATAL(res.outcome, AMTPROV_CA_ISSUED);
	CU_ASSERT_PTR_NOT_NULL(res.chain_pem);
	CU_ASSERT_TRUE(res.request_id[0] != '\0');
	p = res.cert_der;
	x = d2i_X509(NULL, &p, (long)res.cert_len);
	CU_ASSERT_PTR_NOT_NULL(x);
	pi_ca_result_release(&res);
	if (x)
		check_same_key(x, csr, len);
	free(csr);
	return x;
}

static void expect_rejected(struct plugin_instance *pi, uint32_t purpose, const uint8_t *csr,
			    size_t len, const char *fqdn, const char *why)
{
	struct amtprov_ca_result res;

	CU_ASSERT_EQUAL(submit(pi, purpose, fqdn, csr, len, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	CU_ASSERT_PTR_NULL(res.cert_der);
	if (!strstr(res.message, why))
		fprintf(stderr, "\n  message '%s' lacks '%s'\n", res.message, why);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, why));
	pi_ca_result_release(&res);
}

/* ---- certificate inspection ---- */

/* The EKU OIDs, numeric, comma-separated, in order ("" if none). */
static void eku_text(X509 *x, char *buf, size_t size)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	char oid[80];

	buf[0] = '\0';
	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku); i++) {
		OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, i), 1);
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? "," : "", oid);
	}
	EXTENDED_KEY_USAGE_free(eku);
}

static void subject_text(X509 *x, char *buf, size_t size)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
	n = BIO_read(b, buf, (int)size - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

/* The only dNSName of the SAN ("" if none, "MANY" if several). */
static void san_dns(X509 *x, char *buf, size_t size)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	buf[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS)
			snprintf(buf, size, "%s", buf[0] ? "MANY" : (const char *)
				 ASN1_STRING_get0_data(g->d.dNSName));
	}
	GENERAL_NAMES_free(gens);
}

static char *serial_of(X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = BN_bn2hex(bn);

	BN_free(bn);
	return hex;
}

static void write_pem(const char *path, X509 *x)
{
	FILE *fp = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	CU_ASSERT_EQUAL(PEM_write_X509(fp, x), 1);
	fclose(fp);
}

/* Runs `openssl verify` on @p x against ca-local's chain in @p dir; @p extra adds options
 * (e.g. "-crl_check -CRLfile ..."). Returns the exit status. */
static int openssl_verify(struct fx *f, const char *dir, X509 *x, const char *extra)
{
	char cert[PATH_MAX], cmd[4 * PATH_MAX];
	int st;

	snprintf(cert, sizeof(cert), "%s/leaf.pem", f->state_root);
	write_pem(cert, x);
	snprintf(cmd, sizeof(cmd),
		 "openssl verify %s -CAfile '%s/root.pem' -untrusted '%s/issuing.pem' '%s' "
		 ">/dev/null 2>&1",
		 extra ? extra : "", dir, dir, cert);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static X509_CRL *crl_from_der(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;

	return d2i_X509_CRL(NULL, &p, (long)len);
}

static X509_CRL *fetch_crl(struct plugin_instance *pi)
{
	struct amtprov_error err;
	uint8_t *der = NULL;
	size_t len = 0;
	X509_CRL *crl;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(pi_ca_fetch_crl(pi, &der, &len, &err), AMTPROV_OK);
	crl = crl_from_der(der, len);
	free(der);
	CU_ASSERT_PTR_NOT_NULL_FATAL(crl);
	return crl;
}

/* Reason of @p serial in @p crl: -1 absent, 0 present without reason code, else the code. */
static int crl_reason(X509_CRL *crl, const char *serial)
{
	STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);

	for (int i = 0; i < sk_X509_REVOKED_num(revs); i++) {
		X509_REVOKED *rv = sk_X509_REVOKED_value(revs, i);
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(rv), NULL);
		char *hex = BN_bn2hex(bn);
		int match = strcmp(hex, serial) == 0, reason = 0;

		OPENSSL_free(hex);
		BN_free(bn);
		if (!match)
			continue;
		ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(rv, NID_crl_reason, NULL, NULL);

		if (e)
			reason = (int)ASN1_ENUMERATED_get(e);
		ASN1_ENUMERATED_free(e);
		return reason;
	}
	return -1;
}

static int64_t asn1_epoch(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	return (int64_t)timegm(&tm);
}

static int do_revoke(struct plugin_instance *pi, const char *serial, const char *issuer,
		  uint32_t reason, struct amtprov_ca_result *res)
{
	struct amtprov_ca_revocation rev = {
		.struct_size = sizeof(rev),
		.serial_hex = serial,
		.issuer = issuer,
		.reason = reason,
	};
	struct amtprov_error err;

	memset(res, 0, sizeof(*res));
	res->struct_size = sizeof(*res);
	amtprov_error_clear(&err);
	return pi_ca_revoke(pi, NULL, &rev, res, &err);
}

static int read_file(const char *path, char *buf, size_t size)
{
	FILE *fp = fopen(path, "rb");
	size_t n;

	if (!fp)
		return -1;
	n = fread(buf, 1, size - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return (int)n;
}

/* ---- tests ---- */

/* R-WS-01: EKU server authentication only; subject and SAN = device FQDN. */
static void test_web_server_profile(void)
{
	struct fx f;
	char buf[512];

	fx_init(&f, EC_CFG);
	for (int k = K_RSA2048; k <= K_EC256; k++) {
		/* AMT builds its own CSR subject: the issued one comes from the FQDN. */
		X509 *x = issue(f.pi, AMTPROV_PURPOSE_WEB_SERVER, (enum keykind)k, "AMT",
				FQDN);

		eku_text(x, buf, sizeof(buf));
		CU_ASSERT_STRING_EQUAL(buf, "1.3.6.1.5.5.7.3.1");
		subject_text(x, buf, sizeof(buf));
		CU_ASSERT_STRING_EQUAL(buf, "CN=" FQDN);
		san_dns(x, buf, sizeof(buf));
		CU_ASSERT_STRING_EQUAL(buf, FQDN);
		CU_ASSERT_EQUAL(X509_check_ca(x), 0);
		CU_ASSERT_EQUAL(openssl_verify(&f, f.dir, x, "-purpose sslserver"), 0);
		X509_free(x);
	}
	fx_done(&f);
}

/* R-8021X-02: EKU client authentication only; subject supplied in the request. */
static void test_client_profile(void)
{
	struct fx f;
	char buf[512];
	size_t len;
	uint8_t *csr;
	X509 *x;

	fx_init(&f, EC_CFG);
	/* The request's own subject is kept (here with an O), and it names the device. */
	csr = make_csr_md(K_RSA2048, EVP_sha256(), FQDN, "Contoso", &len);
	{
		struct amtprov_ca_result res;
		const unsigned char *p;

		CU_ASSERT_EQUAL(submit(f.pi, AMTPROV_PURPOSE_CLIENT_8021X, FQDN, csr, len, &res),
				AMTPROV_OK);
		CU_ASSERT_EQUAL_FATAL(res.outcome, AMTPROV_CA_ISSUED);
		p = res.cert_der;
		x = d2i_X509(NULL, &p, (long)res.cert_len);
		pi_ca_result_release(&res);
	}
	free(csr);
	eku_text(x, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1.3.6.1.5.5.7.3.2");
	subject_text(x, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "CN=" FQDN ",O=Contoso");
	san_dns(x, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, FQDN);
	CU_ASSERT_EQUAL(openssl_verify(&f, f.dir, x, "-purpose sslclient"), 0);
	X509_free(x);

	/* An empty request subject becomes CN=<device FQDN>. */
	x = issue(f.pi, AMTPROV_PURPOSE_CLIENT_8021X, K_EC256, NULL, FQDN);
	subject_text(x, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "CN=" FQDN);
	eku_text(x, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1.3.6.1.5.5.7.3.2");
	CU_ASSERT_EQUAL(openssl_verify(&f, f.dir, x, NULL), 0);
	X509_free(x);

	/* A request naming another host is refused. */
	csr = make_csr(K_EC256, "other.contoso.com", &len);
	expect_rejected(f.pi, AMTPROV_PURPOSE_CLIENT_8021X, csr, len, FQDN, "not the device FQDN");
	free(csr);
	fx_done(&f);
}

/* R-PC-01/02: serverAuth + the AMT OID and/or the exact OU; CN = service point FQDN. */
static void test_provisioning_profile(void)
{
	static const struct {
		const char *inst, *marker, *eku, *subject;
	} cases[] = {
		{"prov-both", "both", "1.3.6.1.5.5.7.3.1,2.16.840.1.113741.1.2.3",
		 "CN=" SP_FQDN ",OU=Intel(R) Client Setup Certificate"},
		{"prov-oid", "oid", "1.3.6.1.5.5.7.3.1,2.16.840.1.113741.1.2.3", "CN=" SP_FQDN},
		{"prov-ou", "ou", "1.3.6.1.5.5.7.3.1",
		 "CN=" SP_FQDN ",OU=Intel(R) Client Setup Certificate"},
	};
	struct plugin_instance *pis[3];
	struct fx f;
	char buf[512], cfg[256], dir[PATH_MAX];

	fx_init(&f, NULL);
	host_open(&f);
	for (size_t i = 0; i < 3; i++) {
		snprintf(cfg, sizeof(cfg), "{\"key_type\": \"ec\", \"provisioning_marker\": \"%s\"}",
			 cases[i].marker);
		pis[i] = create_ok(&f, cases[i].inst, cfg);
	}
	start_ok(&f);
	for (size_t i = 0; i < 3; i++) {
		X509 *x = issue(pis[i], AMTPROV_PURPOSE_PROVISIONING, K_RSA2048, "whatever",
				SP_FQDN);

		eku_text(x, buf, sizeof(buf));
		CU_ASSERT_STRING_EQUAL(buf, cases[i].eku);
		subject_text(x, buf, sizeof(buf));
		CU_ASSERT_STRING_EQUAL(buf, cases[i].subject);
		san_dns(x, buf, sizeof(buf));
		CU_ASSERT_STRING_EQUAL(buf, SP_FQDN);
		snprintf(dir, sizeof(dir), "%s/plugins/%s", f.state_root, cases[i].inst);
		CU_ASSERT_EQUAL(openssl_verify(&f, dir, x, "-purpose sslserver"), 0);
		X509_free(x);
	}
	fx_done(&f);
}

/* Weak keys, SHA-1 signatures, bad signatures and garbage are REJECTED with a reason. */
static void test_rejections(void)
{
	struct fx f;
	size_t len;
	uint8_t *csr;

	fx_init(&f, EC_CFG);
	csr = make_csr(K_RSA1024, FQDN, &len);
	expect_rejected(f.pi, AMTPROV_PURPOSE_WEB_SERVER, csr, len, FQDN, "too weak");
	free(csr);
	csr = make_csr(K_SECP256K1, FQDN, &len);
	expect_rejected(f.pi, AMTPROV_PURPOSE_WEB_SERVER, csr, len, FQDN, "P-256 or P-384 only");
	free(csr);
	csr = make_csr_md(K_RSA2048, EVP_sha1(), FQDN, NULL, &len);
	expect_rejected(f.pi, AMTPROV_PURPOSE_WEB_SERVER, csr, len, FQDN, "SHA1");
	free(csr);
	/* Flipping a bit of the signature (the request's last byte) keeps it parseable. */
	csr = make_csr(K_RSA2048, FQDN, &len);
	csr[len - 1] ^= 0x01;
	expect_rejected(f.pi, AMTPROV_PURPOSE_WEB_SERVER, csr, len, FQDN,
			"self-signature does not verify");
	csr[len - 1] ^= 0x01;
	expect_rejected(f.pi, AMTPROV_PURPOSE_WEB_SERVER, csr, len - 3, FQDN, "not a DER PKCS#10");
	expect_rejected(f.pi, AMTPROV_PURPOSE_WEB_SERVER, csr, len, "bad fqdn!", "no valid FQDN");
	{
		struct amtprov_ca_request req = {
			.struct_size = sizeof(req),
			.purpose = AMTPROV_PURPOSE_WEB_SERVER,
			.csr_der = csr,
			.csr_len = len,
			.subject_fqdn = FQDN,
			.template_name = "NoSuchTemplate",
		};
		struct amtprov_ca_result res = {.struct_size = sizeof(res)};
		struct amtprov_error err;

		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL(pi_ca_submit(f.pi, FQDN, &req, &res, &err), AMTPROV_OK);
		CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_UNCONFIGURED);
		pi_ca_result_release(&res);
		req.template_name = "AMT8021XClient";
		memset(&res, 0, sizeof(res));
		res.struct_size = sizeof(res);
		CU_ASSERT_EQUAL(pi_ca_submit(f.pi, FQDN, &req, &res, &err), AMTPROV_OK);
		CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
		pi_ca_result_release(&res);
		req.template_name = "AMTWebServer";
		memset(&res, 0, sizeof(res));
		res.struct_size = sizeof(res);
		CU_ASSERT_EQUAL(pi_ca_submit(f.pi, FQDN, &req, &res, &err), AMTPROV_OK);
		CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_ISSUED);
		pi_ca_result_release(&res);
	}
	free(csr);
	fx_done(&f);
}

/* Serials are unique over 200 issuances, and every issuance is in the database. */
static void test_serials_and_database(void)
{
	struct fx f;
	struct amtprov_ca_result res;
	char *serials[200], path[PATH_MAX];
	size_t len;
	uint8_t *csr;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	fx_init(&f, EC_CFG);
	csr = make_csr(K_EC256, FQDN, &len);
	for (int i = 0; i < 200; i++) {
		const unsigned char *p;
		X509 *x;

		CU_ASSERT_EQUAL_FATAL(submit(f.pi, AMTPROV_PURPOSE_WEB_SERVER, FQDN, csr, len, &res),
				      AMTPROV_OK);
		CU_ASSERT_EQUAL_FATAL(res.outcome, AMTPROV_CA_ISSUED);
		p = res.cert_der;
		x = d2i_X509(NULL, &p, (long)res.cert_len);
		serials[i] = serial_of(x);
		/* Positive and always 16 octets: 126 random bits, fixed width (R-WS-01). */
		CU_ASSERT_EQUAL(strlen(serials[i]), 32);
		CU_ASSERT_STRING_EQUAL(res.request_id, serials[i]);
		X509_free(x);
		pi_ca_result_release(&res);
	}
	free(csr);
	for (int i = 0; i < 200; i++)
		for (int j = i + 1; j < 200; j++)
			CU_ASSERT_TRUE(strcmp(serials[i], serials[j]) != 0);
	snprintf(path, sizeof(path), "%s/issuance.db", f.dir);
	CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db,
						 "SELECT subject, purpose, status, fqdn, "
						 "length(der), not_after - not_before, request_id "
						 "FROM certificates WHERE serial = ?",
						 -1, &st, NULL),
			      SQLITE_OK);
	for (int i = 0; i < 200; i++) {
		sqlite3_bind_text(st, 1, serials[i], -1, SQLITE_STATIC);
		CU_ASSERT_EQUAL(sqlite3_step(st), SQLITE_ROW);
		CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 0), "CN=" FQDN);
		CU_ASSERT_EQUAL(sqlite3_column_int(st, 1), AMTPROV_PURPOSE_WEB_SERVER);
		CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 2), "valid");
		CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 3), FQDN);
		CU_ASSERT_TRUE(sqlite3_column_int(st, 4) > 100);
		/* 365 days + the 5-minute backdating */
		CU_ASSERT_EQUAL(sqlite3_column_int64(st, 5), 365LL * 86400 + 300);
		CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 6), serials[i]);
		sqlite3_reset(st);
		OPENSSL_free(serials[i]);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	fx_done(&f);
}

/* R-REV-02/04, R-8021X-07: a revoked certificate is in the next CRL with reason
 * Superseded, both from fetch_crl and over HTTP; openssl -crl_check refuses it. */
static void test_revoke_and_crl(void)
{
	struct fx f;
	struct amtprov_ca_result res;
	X509 *revoked, *kept;
	X509_CRL *crl, *crl_http;
	char *serial, url[256], cmd[PATH_MAX + 512], crlfile[PATH_MAX], opts[PATH_MAX + 64];
	char issuer[256];
	uint8_t der[65536];
	int n;
	FILE *fp;

	fx_init(&f, "{\"key_type\": \"ec\", \"crl_listen\": \"127.0.0.1:0\", "
		    "\"crl_validity_hours\": 48}");
	revoked = issue(f.pi, AMTPROV_PURPOSE_WEB_SERVER, K_RSA2048, "AMT", FQDN);
	kept = issue(f.pi, AMTPROV_PURPOSE_CLIENT_8021X, K_EC256, NULL, FQDN);
	serial = serial_of(revoked);

	/* The CRL distribution point names the endpoint on the port really bound. */
	snprintf(crlfile, sizeof(crlfile), "%s/crl.url", f.dir);
	CU_ASSERT_TRUE_FATAL(read_file(crlfile, url, sizeof(url)) > 0);
	url[strcspn(url, "\n")] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(url, "http://127.0.0.1:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(url, "/lab-ca.crl"));
	CU_ASSERT_PTR_NULL(strstr(url, ":0/"));
	{
		STACK_OF(DIST_POINT) *dps =
			X509_get_ext_d2i(revoked, NID_crl_distribution_points, NULL, NULL);
		GENERAL_NAME *g;

		CU_ASSERT_PTR_NOT_NULL_FATAL(dps);
		g = sk_GENERAL_NAME_value(sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname, 0);
		CU_ASSERT_STRING_EQUAL((const char *)ASN1_STRING_get0_data(g->d.ia5), url);
		CRL_DIST_POINTS_free(dps);
	}

	/* Before: not on the CRL. */
	crl = fetch_crl(f.pi);
	CU_ASSERT_EQUAL(crl_reason(crl, serial), -1);
	X509_CRL_free(crl);

	f.now += 60;
	{
		BIO *b = BIO_new(BIO_s_mem());

		X509_NAME_print_ex(b, X509_get_issuer_name(revoked), 0, XN_FLAG_RFC2253);
		n = BIO_read(b, issuer, sizeof(issuer) - 1);
		issuer[n > 0 ? n : 0] = '\0';
		BIO_free(b);
	}
	CU_ASSERT_EQUAL(do_revoke(f.pi, serial, issuer, AMTPROV_REVOKE_SUPERSEDED, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_ISSUED);
	/* Revoking again is success too. */
	CU_ASSERT_EQUAL(do_revoke(f.pi, serial, NULL, AMTPROV_REVOKE_SUPERSEDED, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_ISSUED);
	CU_ASSERT_EQUAL(do_revoke(f.pi, "0123456789ABCDEF", NULL, AMTPROV_REVOKE_SUPERSEDED, &res),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "unknown serial"));
	CU_ASSERT_EQUAL(do_revoke(f.pi, serial, "CN=Someone Else", AMTPROV_REVOKE_SUPERSEDED, &res),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_REJECTED);

	crl = fetch_crl(f.pi);
	CU_ASSERT_EQUAL(crl_reason(crl, serial), AMTPROV_REVOKE_SUPERSEDED);
	{
		char *ks = serial_of(kept);

		CU_ASSERT_EQUAL(crl_reason(crl, ks), -1);
		OPENSSL_free(ks);
	}
	CU_ASSERT_EQUAL(asn1_epoch(X509_CRL_get0_lastUpdate(crl)), f.now);
	CU_ASSERT_EQUAL(asn1_epoch(X509_CRL_get0_nextUpdate(crl)), f.now + 48 * 3600);
	{
		/* Signed by the issuing CA, with a CRL number that grows (1 at start). */
		char ipath[PATH_MAX];
		FILE *ifp;
		X509 *iss;
		ASN1_INTEGER *num;

		snprintf(ipath, sizeof(ipath), "%s/issuing.pem", f.dir);
		ifp = fopen(ipath, "r");
		CU_ASSERT_PTR_NOT_NULL_FATAL(ifp);
		iss = PEM_read_X509(ifp, NULL, NULL, NULL);
		fclose(ifp);
		CU_ASSERT_EQUAL(X509_CRL_verify(crl, X509_get0_pubkey(iss)), 1);
		X509_free(iss);
		num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);

		CU_ASSERT_PTR_NOT_NULL(num);
		CU_ASSERT_TRUE(num && ASN1_INTEGER_get(num) >= 2);
		ASN1_INTEGER_free(num);
	}

	/* The same CRL over HTTP from the MHD endpoint. */
	snprintf(crlfile, sizeof(crlfile), "%s/http.crl", f.state_root);
	snprintf(cmd, sizeof(cmd), "curl -sf --max-time 10 -o '%s' '%s'", crlfile, url);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
	fp = fopen(crlfile, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	n = (int)fread(der, 1, sizeof(der), fp);
	fclose(fp);
	crl_http = crl_from_der(der, (size_t)n);
	CU_ASSERT_PTR_NOT_NULL_FATAL(crl_http);
	CU_ASSERT_EQUAL(crl_reason(crl_http, serial), AMTPROV_REVOKE_SUPERSEDED);
	CU_ASSERT_EQUAL(X509_CRL_cmp(crl, crl_http), 0);
	CU_ASSERT_EQUAL(asn1_epoch(X509_CRL_get0_nextUpdate(crl_http)), f.now + 48 * 3600);
	X509_CRL_free(crl_http);
	/* Anything else on the endpoint is 404. */
	{
		char bad[512];

		snprintf(bad, sizeof(bad), "curl -sf --max-time 10 -o /dev/null '%.200s.x'", url);
		CU_ASSERT_NOT_EQUAL(system(bad), 0);
	}

	/* openssl verify -crl_check with the PEM CRL ca-local wrote: revoked fails, the
	 * other passes. */
	snprintf(opts, sizeof(opts), "-crl_check -CRLfile '%s/crl.pem'", f.dir);
	CU_ASSERT_NOT_EQUAL(openssl_verify(&f, f.dir, revoked, opts), 0);
	CU_ASSERT_EQUAL(openssl_verify(&f, f.dir, kept, opts), 0);
	/* As a CRL checker does: follow the certificate's distribution point to the HTTP
	 * endpoint. */
	CU_ASSERT_NOT_EQUAL(openssl_verify(&f, f.dir, revoked, "-crl_check -crl_download"), 0);
	CU_ASSERT_EQUAL(openssl_verify(&f, f.dir, kept, "-crl_check -crl_download"), 0);
	/* crl.der and crl.pem are the same CRL. */
	snprintf(cmd, sizeof(cmd),
		 "openssl crl -inform DER -in '%s/crl.der' -outform PEM | cmp -s - '%s/crl.pem'",
		 f.dir, f.dir);
	CU_ASSERT_EQUAL(system(cmd), 0);

	/* Lower-case serials from elsewhere are the same serial. */
	{
		char *ks = serial_of(kept), lower[80];
		size_t i;

		for (i = 0; ks[i] && i < sizeof(lower) - 1; i++)
			lower[i] = (char)(ks[i] >= 'A' && ks[i] <= 'F' ? ks[i] + 32 : ks[i]);
		lower[i] = '\0';
		CU_ASSERT_EQUAL(do_revoke(f.pi, lower, NULL, AMTPROV_REVOKE_KEY_COMPROMISE, &res),
				AMTPROV_OK);
		CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_ISSUED);
		X509_CRL_free(crl);
		crl = fetch_crl(f.pi);
		CU_ASSERT_EQUAL(crl_reason(crl, ks), AMTPROV_REVOKE_KEY_COMPROMISE);
		OPENSSL_free(ks);
	}
	X509_CRL_free(crl);
	OPENSSL_free(serial);
	X509_free(revoked);
	X509_free(kept);
	fx_done(&f);
}

static int file_mode(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (stat(path, &st) < 0)
		return -1;
	return (int)(st.st_mode & 0777);
}

/* Restart keeps the CA and the database; key files are 0600; keys are never logged. The
 * default configuration (RSA 3072) is what the demo uses. */
static void test_restart_keys_and_logs(void)
{
	struct fx f;
	struct amtprov_ca_result res;
	char root1[8192], root2[8192], iss1[8192], iss2[8192], path[PATH_MAX], key[8192];
	char *serial;
	X509 *x;

	fx_init(&f, "{}");
	CU_ASSERT_EQUAL(file_mode(f.dir, "root.key"), 0600);
	CU_ASSERT_EQUAL(file_mode(f.dir, "issuing.key"), 0600);
	CU_ASSERT_EQUAL(file_mode(f.dir, "issuance.db"), 0600);
	snprintf(path, sizeof(path), "%s/root.pem", f.dir);
	CU_ASSERT_TRUE(read_file(path, root1, sizeof(root1)) > 0);
	snprintf(path, sizeof(path), "%s/issuing.pem", f.dir);
	CU_ASSERT_TRUE(read_file(path, iss1, sizeof(iss1)) > 0);
	x = issue(f.pi, AMTPROV_PURPOSE_WEB_SERVER, K_RSA2048, "AMT", FQDN);
	CU_ASSERT_EQUAL(openssl_verify(&f, f.dir, x, NULL), 0);
	serial = serial_of(x);
	/* No CRL endpoint by default, hence no distribution point. */
	CU_ASSERT_EQUAL(X509_get_ext_by_NID(x, NID_crl_distribution_points, -1), -1);
	X509_free(x);
	{
		char *roots = NULL;
		struct amtprov_error err;

		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL(pi_ca_fetch_roots(f.pi, &roots, &err), AMTPROV_OK);
		CU_ASSERT_PTR_NOT_NULL(roots && strstr(roots, root1));
		CU_ASSERT_PTR_NOT_NULL(roots && strstr(roots, iss1));
		free(roots);
	}

	fx_close(&f);
	f.now += 120;
	fx_open(&f, "{}");
	snprintf(path, sizeof(path), "%s/root.pem", f.dir);
	CU_ASSERT_TRUE(read_file(path, root2, sizeof(root2)) > 0);
	snprintf(path, sizeof(path), "%s/issuing.pem", f.dir);
	CU_ASSERT_TRUE(read_file(path, iss2, sizeof(iss2)) > 0);
	CU_ASSERT_STRING_EQUAL(root1, root2);
	CU_ASSERT_STRING_EQUAL(iss1, iss2);
	CU_ASSERT_TRUE(log_has(&f, "1 certificates issued so far"));
	/* The database survived: the serial issued before the restart can be revoked. */
	CU_ASSERT_EQUAL(do_revoke(f.pi, serial, NULL, AMTPROV_REVOKE_SUPERSEDED, &res), AMTPROV_OK);
	CU_ASSERT_EQUAL(res.outcome, AMTPROV_CA_ISSUED);
	x = issue(f.pi, AMTPROV_PURPOSE_WEB_SERVER, K_RSA2048, "AMT", FQDN);
	CU_ASSERT_EQUAL(openssl_verify(&f, f.dir, x, NULL), 0);
	X509_free(x);
	OPENSSL_free(serial);

	/* No key material in any log line. */
	CU_ASSERT_TRUE(f.n > 0);
	CU_ASSERT_FALSE(log_has(&f, "PRIVATE KEY"));
	CU_ASSERT_FALSE(log_has(&f, "root.key"));
	CU_ASSERT_FALSE(log_has(&f, "issuing.key"));
	snprintf(path, sizeof(path), "%s/issuing.key", f.dir);
	CU_ASSERT_TRUE_FATAL(read_file(path, key, sizeof(key)) > 100);
	{
		/* A line of the base64 body. */
		char *body = strchr(key, '\n');
		char frag[41];

		CU_ASSERT_PTR_NOT_NULL_FATAL(body);
		snprintf(frag, sizeof(frag), "%s", body + 1);
		CU_ASSERT_FALSE(log_has(&f, frag));
	}
	fx_done(&f);
}

/* ---- imported CA ---- */

static X509 *make_test_ca(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), issuer ? 2 : 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 3650);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	CU_ASSERT_TRUE(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

static void write_key(const char *path, EVP_PKEY *key, const char *password)
{
	FILE *fp = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	CU_ASSERT_EQUAL(PEM_write_PrivateKey(fp, key, password ? EVP_aes_256_cbc() : NULL,
					     (const unsigned char *)password,
					     password ? (int)strlen(password) : 0, NULL, NULL),
			1);
	fclose(fp);
}

/* import_root_cert + import_root_key: ca-local makes its issuing CA under the given root;
 * import of a whole chain with an encrypted key reads the password from the credential
 * store. */
static void test_import(void)
{
	static const char password[] = "s3cret-ca-pass";
	struct fx f;
	EVP_PKEY *rkey = EVP_EC_gen("P-256"), *ikey = EVP_EC_gen("P-384");
	X509 *root = make_test_ca("Imported Root", rkey, NULL, NULL);
	X509 *iss = make_test_ca("Imported Issuing", ikey, root, rkey);
	char p_root[PATH_MAX], p_rkey[PATH_MAX], p_iss[PATH_MAX], p_ikey[PATH_MAX];
	char cfg[6 * PATH_MAX], dir[PATH_MAX], cmd[3 * PATH_MAX], buf[512];
	struct plugin_instance *cs, *pi;
	struct amtprov_error err;
	struct amtprov_secret *sec;
	X509 *x;

	fx_init(&f, NULL);
	snprintf(p_root, sizeof(p_root), "%s/in-root.pem", f.state_root);
	snprintf(p_rkey, sizeof(p_rkey), "%s/in-root.key", f.state_root);
	snprintf(p_iss, sizeof(p_iss), "%s/in-iss.pem", f.state_root);
	snprintf(p_ikey, sizeof(p_ikey), "%s/in-iss.key", f.state_root);
	write_pem(p_root, root);
	write_pem(p_iss, iss);
	write_key(p_rkey, rkey, NULL);
	write_key(p_ikey, ikey, password);

	host_open(&f);
	/* 1: root + key imported. */
	snprintf(cfg, sizeof(cfg),
		 "{\"key_type\": \"ec\", \"import_root_cert\": \"%s\", \"import_root_key\": \"%s\"}",
		 p_root, p_rkey);
	pi = create_ok(&f, "imp-root", cfg);
	/* 2: the whole chain, issuing key encrypted. */
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(plugin_host_add_dir(f.ph, AMTPROV_TEST_PLUGIN_DIR, &err), AMTPROV_OK);
	{
		json_t *empty = json_object();

		int rc = plugin_host_create(f.ph, "store", "fake-credstore", empty,
					    AMTPROV_KIND_CREDSTORE, &cs, &err);

		if (rc != AMTPROV_OK)
			fprintf(stderr, "\n  fake-credstore: %s: %s\n", err.where, err.msg);
		CU_ASSERT_EQUAL_FATAL(rc, AMTPROV_OK);
		json_decref(empty);
	}
	CU_ASSERT_EQUAL_FATAL(plugin_host_set_credstore(f.ph, cs, &err), AMTPROV_OK);
	sec = util_secret_new(strlen(password));
	memcpy(sec->data, password, strlen(password));
	CU_ASSERT_EQUAL_FATAL(pi_credstore_put(cs, "lab/ca-key-pass", sec, &err), AMTPROV_OK);
	util_secret_free(sec);
	snprintf(cfg, sizeof(cfg),
		 "{\"import_root_cert\": \"%s\", \"import_issuing_cert\": \"%s\", "
		 "\"import_issuing_key\": \"%s\", \"import_key_password\": \"lab/ca-key-pass\"}",
		 p_root, p_iss, p_ikey);
	f.pi = create_ok(&f, "imp-chain", cfg);
	start_ok(&f);

	/* The generated issuing CA chains to the imported root. */
	snprintf(dir, sizeof(dir), "%s/plugins/imp-root", f.state_root);
	x = issue(pi, AMTPROV_PURPOSE_WEB_SERVER, K_EC256, "AMT", FQDN);
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s/root.pem'", p_root, dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	CU_ASSERT_EQUAL(openssl_verify(&f, dir, x, NULL), 0);
	X509_free(x);
	CU_ASSERT_EQUAL(file_mode(dir, "issuing.key"), 0600);
	CU_ASSERT_EQUAL(file_mode(dir, "root.key"), -1); /* the imported root key is not copied */

	/* Issued directly by the imported issuing CA. */
	snprintf(dir, sizeof(dir), "%s/plugins/imp-chain", f.state_root);
	x = issue(f.pi, AMTPROV_PURPOSE_CLIENT_8021X, K_RSA2048, FQDN, FQDN);
	subject_text(x, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "CN=" FQDN);
	CU_ASSERT_EQUAL(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(iss)), 0);
	CU_ASSERT_EQUAL(openssl_verify(&f, dir, x, NULL), 0);
	{
		X509_CRL *crl = fetch_crl(f.pi);

		CU_ASSERT_EQUAL(X509_CRL_verify(crl, ikey), 1);
		X509_CRL_free(crl);
	}
	X509_free(x);
	CU_ASSERT_FALSE(log_has(&f, password));
	fx_close(&f);

	/* A wrong password is a clear start error. */
	host_open(&f);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(plugin_host_add_dir(f.ph, AMTPROV_TEST_PLUGIN_DIR, &err), AMTPROV_OK);
	{
		json_t *empty = json_object();

		int rc = plugin_host_create(f.ph, "store", "fake-credstore", empty,
					    AMTPROV_KIND_CREDSTORE, &cs, &err);

		if (rc != AMTPROV_OK)
			fprintf(stderr, "\n  fake-credstore: %s: %s\n", err.where, err.msg);
		CU_ASSERT_EQUAL_FATAL(rc, AMTPROV_OK);
		json_decref(empty);
	}
	CU_ASSERT_EQUAL_FATAL(plugin_host_set_credstore(f.ph, cs, &err), AMTPROV_OK);
	sec = util_secret_new(5);
	memcpy(sec->data, "wrong", 5);
	CU_ASSERT_EQUAL_FATAL(pi_credstore_put(cs, "lab/ca-key-pass", sec, &err), AMTPROV_OK);
	util_secret_free(sec);
	f.pi = create_ok(&f, "imp-chain", cfg);
	amtprov_error_clear(&err);
	CU_ASSERT_NOT_EQUAL(plugin_host_start_all(f.ph, &err), AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "wrong password"));
	fx_close(&f);

	X509_free(root);
	X509_free(iss);
	EVP_PKEY_free(rkey);
	EVP_PKEY_free(ikey);
	fx_done(&f);
}

/* Configuration errors name the key. */
static void test_config_errors(void)
{
	static const struct {
		const char *cfg, *key;
	} cases[] = {
		{"{\"key_type\": \"dsa\"}", "key_type"},
		{"{\"key_bits\": 1024}", "key_bits"},
		{"{\"curve\": \"P-521\"}", "curve"},
		{"{\"digest\": \"sha1\"}", "digest"},
		{"{\"provisioning_marker\": \"none\"}", "provisioning_marker"},
		{"{\"crl_listen\": \"localhost\"}", "crl_listen"},
		{"{\"crl_url\": \"ldap://x\"}", "crl_url"},
		{"{\"root_subject\": \"no equals sign\"}", "root_subject"},
		{"{\"import_issuing_cert\": \"/x.pem\"}", "import_issuing_cert"},
		{"{\"import_root_cert\": \"/x.pem\"}", "import_root_cert"},
		{"{\"no_such_key\": 1}", "no_such_key"},
	};
	struct fx f;
	struct plugin_instance *pi = NULL;
	struct amtprov_error err;

	fx_init(&f, NULL);
	host_open(&f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = try_create(&f, "bad", cases[i].cfg, &pi, &err);

		CU_ASSERT_EQUAL(rc, AMTPROV_E_CONFIG);
		if (!strstr(err.where, cases[i].key) && !strstr(err.msg, cases[i].key))
			fprintf(stderr, "\n  %s: where '%s' msg '%s'\n", cases[i].cfg, err.where,
				err.msg);
		CU_ASSERT_TRUE(strstr(err.where, cases[i].key) || strstr(err.msg, cases[i].key));
	}
	fx_done(&f);
}

static int tmpl_cb(void *ctx, const struct amtprov_ca_template *t)
{
	char *out = ctx;

	snprintf(out + strlen(out), 256 - strlen(out), "%s:%d:%u:%d;", t->name, t->schema_version,
		 (unsigned)t->purposes, t->min_key_bits);
	return 0;
}

static void test_templates_and_descriptor(void)
{
	struct fx f;
	struct amtprov_error err;
	char out[256] = "";
	const struct amtprov_plugin *d;

	fx_init(&f, EC_CFG);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_ca_list_templates(f.pi, tmpl_cb, out, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(out, "AMTWebServer:2:2:2048;AMT8021XClient:2:4:2048;"
				    "AMTProvisioning:2:8:2048;");
	d = plugin_instance_desc(f.pi);
	CU_ASSERT_EQUAL(d->flags & AMTPROV_PLUGIN_THREAD_SAFE, AMTPROV_PLUGIN_THREAD_SAFE);
	CU_ASSERT_TRUE(plugin_instance_has_cap(f.pi, AMTPROV_CAP_CA_PURPOSE_PROV));
	CU_ASSERT_TRUE(plugin_instance_has_cap(f.pi, AMTPROV_CAP_CA_CRL));
	CU_ASSERT_FALSE(plugin_instance_has_cap(f.pi, AMTPROV_CAP_CA_POLL));
	fx_done(&f);
}

/* THREAD_SAFE: concurrent submissions and revocations keep serials unique and all recorded. */
struct worker {
	struct plugin_instance *pi;
	uint8_t *csr;
	size_t len;
	int issued;
	char serials[10][64];
};

static void *work(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 10; i++) {
		struct amtprov_ca_result res;
		struct amtprov_ca_request req = {
			.struct_size = sizeof(req),
			.purpose = AMTPROV_PURPOSE_WEB_SERVER,
			.csr_der = w->csr,
			.csr_len = w->len,
			.subject_fqdn = FQDN,
		};
		struct amtprov_error err;

		memset(&res, 0, sizeof(res));
		res.struct_size = sizeof(res);
		amtprov_error_clear(&err);
		if (pi_ca_submit(w->pi, FQDN, &req, &res, &err) == AMTPROV_OK &&
		    res.outcome == AMTPROV_CA_ISSUED) {
			snprintf(w->serials[w->issued++], sizeof(w->serials[0]), "%s", res.request_id);
			if (i % 3 == 0) {
				struct amtprov_ca_result rr;

				do_revoke(w->pi, res.request_id, NULL, AMTPROV_REVOKE_SUPERSEDED, &rr);
			}
		}
		pi_ca_result_release(&res);
	}
	return NULL;
}

static void test_concurrent(void)
{
	struct fx f;
	struct worker w[4];
	pthread_t th[4];
	X509_CRL *crl;

	fx_init(&f, EC_CFG);
	for (int i = 0; i < 4; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].pi = f.pi;
		w[i].csr = make_csr(K_EC256, FQDN, &w[i].len);
	}
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(pthread_create(&th[i], NULL, work, &w[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	crl = fetch_crl(f.pi);
	CU_ASSERT_EQUAL(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 16);
	X509_CRL_free(crl);
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(w[i].issued, 10);
		for (int j = 0; j < 4; j++)
			for (int a = 0; a < 10; a++)
				for (int b = 0; b < 10; b++)
					if (i != j || a != b)
						CU_ASSERT_TRUE(strcmp(w[i].serials[a],
								      w[j].serials[b]) != 0);
		free(w[i].csr);
	}
	CU_ASSERT_TRUE(log_has(&f, "(16 revoked)"));
	fx_done(&f);
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("ca_local", NULL, NULL);
	CU_add_test(s, "web server profile (R-WS-01)", test_web_server_profile);
	CU_add_test(s, "802.1X client profile (R-8021X-02)", test_client_profile);
	CU_add_test(s, "provisioning profile (R-PC-01/02)", test_provisioning_profile);
	CU_add_test(s, "weak, SHA-1, bad and garbage requests rejected", test_rejections);
	CU_add_test(s, "unique serials and the issuance database", test_serials_and_database);
	CU_add_test(s, "revoke Superseded, CRL file/fetch/HTTP (R-REV, R-8021X-07)",
		    test_revoke_and_crl);
	CU_add_test(s, "restart keeps CA and DB; key files 0600; no keys in logs",
		    test_restart_keys_and_logs);
	CU_add_test(s, "imported CA (root+key, chain with encrypted key)", test_import);
	CU_add_test(s, "configuration errors", test_config_errors);
	CU_add_test(s, "templates and descriptor", test_templates_and_descriptor);
	CU_add_test(s, "concurrent issuance and revocation", test_concurrent);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	EVP_PKEY_free(cached_rsa);
	return failed ? 1 : 0;
}
