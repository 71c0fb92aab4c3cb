/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_amt_transport.c - CUnit tests of the amt-transport plugin, loaded through the real
 * plugin host, against a real amtsim fleet on a private 127.x.y.0/24 network: Digest and the
 * ordered account retry (R-PROV-08/09), provisioning TLS with a client chain (R-PROV-07),
 * self-signed acceptance only for the session's address, MANAGED verification with a CRL,
 * revocation and fail-closed (R-REV-01), WS-Man Get/Put/Enumerate/Invoke, faults and AMT
 * return values, legacy SOAP, 200 sessions through one fd, timeouts, and connections (issue
 * 13): one connection and one Digest challenge kept from session to session, a clean
 * reconnect (with TLS resumption) when the device ends a kept-alive connection, and a
 * re-challenge on a stale nonce, counted by amtsim.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <amtprov/transport.h>

#include "log.h"
#include "plugin_host.h"
#include "util.h"

/* A JSON string equals @p want; a missing value fails the test instead of crashing it. */
#define ASSERT_JSTR(v, want)                                              \
	do {                                                              \
		const char *jstr_ = (v);                                  \
		CU_ASSERT_PTR_NOT_NULL(jstr_);                            \
		CU_ASSERT_STRING_EQUAL(jstr_ ? jstr_ : "(missing)", want); \
	} while (0)

#pragma GCC diagnostic ignored "-Wformat-truncation"

#define N_FLEET 16

static char net[32];       /* "127.a.b" */
static char dir[PATH_MAX]; /* temporary directory */
static pid_t sim_pid = -1, crl_pid = -1, other_pid = -1;
static int hang_fd = -1;
static struct alog *logp;
static struct plugin_host *ph;
static struct plugin_instance *pi_main, *pi_nocheck, *pi_cs;
static char root_hash[80];

static char *slurp(const char *name)
{
	char path[PATH_MAX];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void addr(char *out, size_t n, int host)
{
	snprintf(out, n, "%s.%d", net, host);
}

static pid_t spawn(char *const argv[], const char *logname)
{
	pid_t p = fork();

	if (p == 0) {
		char path[PATH_MAX];
		FILE *o;

		snprintf(path, sizeof(path), "%s/%s", dir, logname);
		o = freopen(path, "w", stdout);
		if (o)
			dup2(fileno(o), 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	return p;
}

static void reap(pid_t *p)
{
	if (*p > 0) {
		kill(*p, SIGTERM);
		waitpid(*p, NULL, 0);
		*p = -1;
	}
}

static void cleanup_all(void)
{
	char cmd[PATH_MAX + 16];

	reap(&sim_pid);
	reap(&crl_pid);
	reap(&other_pid);
	if (hang_fd >= 0)
		close(hang_fd);
	hang_fd = -1;
	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
		dir[0] = '\0';
	}
}

static int wait_port(const char *ip, int port)
{
	for (int i = 0; i < 200; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		inet_pton(AF_INET, ip, &sa.sin_addr);
		ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return 0;
		usleep(50000);
	}
	return -1;
}

/* amtsim's hostile answers and what the transport must say about each (never crash). */
#define HOSTILE_HOST 40
#define KA_HOST 90
#define KN1_OTP "Kn0wn-0TP-456"
static const struct {
	const char *kind;
	int rc;
	const char *msg;
} hostile[] = {
	{"empty_body", AMTPROV_E_PROTOCOL, "empty SOAP Body"},
	{"wrong_element", AMTPROV_E_PROTOCOL, "AMTSIM_Unexpected"},
	{"fault_no_detail", AMTPROV_E_PROTOCOL, "fault (no code)"},
	{"huge_body", AMTPROV_E_PROTOCOL, "exceeded 16 MiB"},
	{"truncated_body", AMTPROV_E_PARSE, "not well-formed"},
	{"slow_drip", AMTPROV_E_TIMEOUT, "did not"},
};

static json_t *device(const char *id, int host, const char *ver, const char *state)
{
	char a[40];

	addr(a, sizeof(a), host);
	return json_pack("{ss ss ss ss ss ss ss}", "id", id, "address", a, "amt_version", ver,
			 "provisioning_state", state, "admin_password", "P@ssw0rd1", "host_name",
			 id, "domain_name", "contoso.com");
}

static int suite_init(void)
{
	char cmd[PATH_MAX * 2], a[40], port[16];
	json_t *fleet, *devs, *d;
	char *pem, *key;
	struct amtprov_error err;
	struct host_env env = {.config_base = "/plugins"};
	json_t *cfg;
	FILE *f;

	atexit(cleanup_all);
	signal(SIGPIPE, SIG_IGN);
	snprintf(net, sizeof(net), "127.%d.%d", 100 + (int)(getpid() % 100),
		 (int)((getpid() / 100) % 250) + 1);
	snprintf(dir, sizeof(dir), "/tmp/amt-transport-test-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd), "bash '%s/plugins/amt-transport/tests/mkpki.sh' '%s' '%s'",
		 AMTPROV_SOURCE_DIR, dir, net);
	if (system(cmd) != 0)
		return -1;
	pem = slurp("root.sha256");
	if (!pem)
		return -1;
	snprintf(root_hash, sizeof(root_hash), "%.64s", pem);
	free(pem);

	/* The fleet: in1 (provisioning), post1, legacy (AMT 6), man1/rev1 (CA-issued server
	 * certificates, for MANAGED mode), and fleet devices for the many-sessions test. */
	devs = json_array();
	d = device("in1", 1, "12.0.45", "in");
	json_object_del(d, "admin_password");
	json_object_set_new(d, "dhcp_domain", json_string("contoso.com"));
	json_object_set_new(d, "otp", json_string("Secret0TP123"));
	json_object_set_new(d, "root_hashes",
			    json_pack("[{ss ss ss}]", "name", "test root", "algo", "sha256", "hash",
				      root_hash));
	json_array_append_new(devs, d);
	json_array_append_new(devs, device("post1", 2, "16.1.25", "post"));
	d = device("legacy1", 3, "6.2.61", "post");
	json_object_set_new(d, "tls_modern_override", json_true());
	json_array_append_new(devs, d);
	for (int i = 0; i < 2; i++) {
		const char *n = i ? "rev1" : "man1";
		char f1[32], f2[32];

		d = device(n, 4 + i, "16.1.25", "post");
		snprintf(f1, sizeof(f1), "%s.pem", n);
		snprintf(f2, sizeof(f2), "%s.key", n);
		pem = slurp(f1);
		key = slurp(f2);
		if (!pem || !key)
			return -1;
		json_object_set_new(d, "self_cert_pem", json_string(pem));
		json_object_set_new(d, "self_key_pem", json_string(key));
		free(pem);
		free(key);
		json_array_append_new(devs, d);
	}
	/* Hostile devices (R-PROV-13): each answers requests on AMT_GeneralSettings and
	 * IPS_IEEE8021xSettings its own way. */
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		char id[32];

		snprintf(id, sizeof(id), "evil-%s", hostile[i].kind);
		d = device(id, HOSTILE_HOST + (int)i, "16.1.25", "post");
		json_object_set_new(d, "faults",
				    json_pack("{ss ss si}", "hostile", hostile[i].kind,
					      "hostile_match", "Settings",
					      "hostile_drip_ms", 100));
		json_array_append_new(devs, d);
	}
	/* Connection model (issue 13): ka1 ends every connection after 2 requests and resumes
	 * TLS sessions; ka2 closes idle connections after 1 s and its nonces live 1 s. */
	d = device("ka1", KA_HOST, "16.1.25", "post");
	json_object_set_new(d, "max_requests_per_connection", json_integer(2));
	json_object_set_new(d, "tls_resumption", json_true());
	json_array_append_new(devs, d);
	d = device("ka2", KA_HOST + 1, "16.1.25", "post");
	json_object_set_new(d, "keepalive_timeout_s", json_integer(1));
	json_object_set_new(d, "nonce_lifetime", json_integer(1));
	json_array_append_new(devs, d);
	/* ka3 and ka4: plain devices for device_idle (each test its own counters). */
	json_array_append_new(devs, device("ka3", KA_HOST + 2, "16.1.25", "post"));
	json_array_append_new(devs, device("ka4", KA_HOST + 3, "16.1.25", "post"));
	/* kn1 (in provisioning, with an OTP) and kn2: what a session knows already (issue 13). */
	d = device("kn1", KA_HOST + 4, "12.0.45", "in");
	json_object_del(d, "admin_password");
	json_object_set_new(d, "otp", json_string(KN1_OTP));
	json_object_set_new(d, "dhcp_domain", json_string("contoso.com"));
	json_object_set_new(d, "root_hashes",
			    json_pack("[{ss ss ss}]", "name", "test root", "algo", "sha256", "hash",
				      root_hash));
	json_array_append_new(devs, d);
	json_array_append_new(devs, device("kn2", KA_HOST + 5, "16.1.25", "post"));
	for (int i = 0; i < N_FLEET; i++) {
		char id[16];

		snprintf(id, sizeof(id), "f%d", i);
		json_array_append_new(devs, device(id, 100 + i, "16.1.25", "post"));
	}
	fleet = json_pack("{si si so}", "key_pool", 2, "key_bits", 2048, "devices", devs);
	snprintf(cmd, sizeof(cmd), "%s/fleet.json", dir);
	if (json_dump_file(fleet, cmd, 0) != 0)
		return -1;
	json_decref(fleet);
	snprintf(cmd, sizeof(cmd), "%s/state", dir);
	mkdir(cmd, 0700);
	{
		char fl[PATH_MAX], st[PATH_MAX];
		char *argv[] = {AMTSIM_PATH, "serve", "--fleet", fl, "--state-dir", st, "--quiet",
				NULL};

		snprintf(fl, sizeof(fl), "%s/fleet.json", dir);
		snprintf(st, sizeof(st), "%s/state", dir);
		sim_pid = spawn(argv, "amtsim.log");
	}
	/* A CRL server (python's http.server: any HTTP server will do). */
	addr(a, sizeof(a), 20);
	{
		char cd[PATH_MAX];
		char *argv[] = {"python3", "-m", "http.server", "18080", "--bind", a,
				"--directory", cd, NULL};

		snprintf(cd, sizeof(cd), "%s/crl", dir);
		crl_pid = spawn(argv, "crl.log");
	}
	/* A TLS server with a self-signed certificate naming another address (.1). */
	{
		char acc[64], c[PATH_MAX], k[PATH_MAX];
		char *argv[] = {"openssl", "s_server", "-quiet", "-accept", acc, "-cert", c, "-key",
				k, NULL};

		addr(a, sizeof(a), 31);
		snprintf(acc, sizeof(acc), "%s:16993", a);
		snprintf(c, sizeof(c), "%s/other.pem", dir);
		snprintf(k, sizeof(k), "%s/other.key", dir);
		other_pid = spawn(argv, "other.log");
	}
	/* A device that never answers: a listening socket nobody accepts on. */
	{
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(16993)};

		addr(a, sizeof(a), 30);
		inet_pton(AF_INET, a, &sa.sin_addr);
		hang_fd = socket(AF_INET, SOCK_STREAM, 0);
		if (bind(hang_fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(hang_fd, 8))
			return -1;
	}
	for (int h = 1; h <= 5; h++) {
		addr(a, sizeof(a), h);
		if (wait_port(a, 16993))
			return -1;
	}
	addr(a, sizeof(a), 100 + N_FLEET - 1);
	addr(port, sizeof(port), 20);
	if (wait_port(a, 16993) || wait_port(port, 18080))
		return -1;
	addr(a, sizeof(a), 31);
	if (wait_port(a, 16993))
		return -1;

	logp = alog_new("amt-transport-test", AMTPROV_LOG_WARNING, ALOG_STDERR);
	env.log = logp;
	ph = plugin_host_new(&env);
	amtprov_error_clear(&err);
	if (!ph || plugin_host_add_dir(ph, AMTPROV_PLUGIN_BUILD_DIR, &err) != AMTPROV_OK)
		return -1;
	cfg = json_pack("{si si}", "timeout_ms", 20000, "connect_timeout_ms", 5000);
	if (plugin_host_create(ph, "tr", "amt-transport", cfg, AMTPROV_KIND_TRANSPORT, &pi_main,
			       &err) != AMTPROV_OK) {
		fprintf(stderr, "create: %s\n", err.msg);
		return -1;
	}
	json_decref(cfg);
	cfg = json_pack("{sb}", "precheck_provisioning_cert", 0);
	if (plugin_host_create(ph, "tr2", "amt-transport", cfg, AMTPROV_KIND_TRANSPORT,
			       &pi_nocheck, &err) != AMTPROV_OK)
		return -1;
	json_decref(cfg);
	/* a credential store for the keys SET_KERBEROS reads (test double, in memory) */
	if (plugin_host_add_dir(ph, AMTPROV_TEST_PLUGIN_DIR, &err) != AMTPROV_OK ||
	    plugin_host_create(ph, "cs", "fake-credstore", NULL, AMTPROV_KIND_CREDSTORE, &pi_cs,
			       &err) != AMTPROV_OK ||
	    plugin_host_set_credstore(ph, pi_cs, &err) != AMTPROV_OK) {
		fprintf(stderr, "credstore: %s\n", err.msg);
		return -1;
	}
	f = NULL;
	(void)f;
	return plugin_host_start_all(ph, &err) == AMTPROV_OK ? 0 : -1;
}

static int suite_clean(void)
{
	plugin_host_free(ph);
	ph = NULL;
	alog_free(logp);
	cleanup_all();
	return 0;
}

/* ---- a small driver ---- */

static const struct amtprov_transport_ops *ops_of(struct plugin_instance *pi)
{
	return plugin_instance_desc(pi)->ops;
}

struct tgt {
	struct amtprov_transport_target t;
	struct amtprov_device_info dev;
	struct amtprov_transport_account acc[4];
	struct amtprov_secret *pw[4];
	char address[40];
	char *chain, *key_pem;
	struct amtprov_secret *key;
	char *ca;
	char crl_url[128];
};

static void tgt_init(struct tgt *g, struct plugin_instance *pi, int host, int amt_major,
		     uint32_t mode, const char *fqdn, const char *chain_name)
{
	const struct amtprov_host *h = plugin_instance_host(pi);

	memset(g, 0, sizeof(*g));
	addr(g->address, sizeof(g->address), host);
	g->dev.struct_size = sizeof(g->dev);
	g->dev.fqdn = fqdn;
	g->dev.amt_major = amt_major;
	g->t.struct_size = sizeof(g->t);
	g->t.device = &g->dev;
	g->t.address = g->address;
	g->t.port = 16993;
	g->t.mode = mode;
	g->t.accounts = g->acc;
	if (mode == AMTPROV_TRANSPORT_PROVISIONING) {
		char n[64];

		snprintf(n, sizeof(n), "%s.chain", chain_name);
		g->chain = slurp(n);
		snprintf(n, sizeof(n), "%s.key", chain_name);
		g->key_pem = slurp(n);
		CU_ASSERT_PTR_NOT_NULL_FATAL(g->chain);
		CU_ASSERT_PTR_NOT_NULL_FATAL(g->key_pem);
		g->key = h->secret_new(h, strlen(g->key_pem));
		memcpy(g->key->data, g->key_pem, strlen(g->key_pem));
		g->t.client_chain_pem = g->chain;
		g->t.client_key_pem = g->key;
	} else {
		char a[40];

		g->ca = slurp("root.pem");
		g->t.ca_bundle_pem = g->ca;
		addr(a, sizeof(a), 20);
		snprintf(g->crl_url, sizeof(g->crl_url), "http://%s:18080/root.crl", a);
		g->t.crl_url = g->crl_url;
	}
}

static void tgt_account(struct tgt *g, struct plugin_instance *pi, const char *user,
			const char *pw)
{
	const struct amtprov_host *h = plugin_instance_host(pi);
	size_t i = g->t.n_accounts++;

	g->pw[i] = h->secret_new(h, strlen(pw));
	memcpy(g->pw[i]->data, pw, strlen(pw));
	g->acc[i].user = user;
	g->acc[i].password = g->pw[i];
}

static void tgt_free(struct tgt *g, struct plugin_instance *pi)
{
	const struct amtprov_host *h = plugin_instance_host(pi);

	for (size_t i = 0; i < g->t.n_accounts; i++)
		h->secret_free(h, g->pw[i]);
	h->secret_free(h, g->key);
	free(g->chain);
	free(g->key_pem);
	free(g->ca);
}

static void on_done(void *ctx)
{
	(*(int *)ctx)++;
}

/* Drives the instance until @p *count reaches @p want or @p ms pass. */
static void pump(struct plugin_instance *pi, int *count, int want, int ms)
{
	const struct amtprov_transport_ops *o = ops_of(pi);
	void *inst = plugin_instance_handle(pi);
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (*count < want) {
		struct amtprov_wait w;
		struct amtprov_error err;
		struct pollfd pfd;
		int64_t el;

		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL_FATAL(o->get_wait(inst, &w, &err), AMTPROV_OK);
		pfd.fd = w.fd;
		pfd.events = POLLIN;
		poll(&pfd, 1, w.timeout_ms < 0 || w.timeout_ms > 200 ? 200 : (int)w.timeout_ms);
		CU_ASSERT_EQUAL_FATAL(o->drive(inst, &err), AMTPROV_OK);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (el > ms)
			break;
	}
}

/* One operation on an open session; returns its status, result in *res. */
static int run(struct plugin_instance *pi, void *sess, uint32_t op, const char *params,
	       json_t **res, struct amtprov_error *err)
{
	const struct amtprov_transport_ops *o = ops_of(pi);
	void *inst = plugin_instance_handle(pi);
	json_t *p = json_loads(params ? params : "{}", 0, NULL);
	int done = 0, rc;

	*res = NULL;
	amtprov_error_clear(err);
	rc = o->begin(inst, sess, op, p, on_done, &done, err);
	json_decref(p);
	if (rc != AMTPROV_AGAIN)
		return rc;
	pump(pi, &done, 1, 30000);
	CU_ASSERT_EQUAL_FATAL(done, 1);
	rc = o->finish(inst, sess, res, err);
	if (rc != AMTPROV_OK && getenv("AT_TEST_VERBOSE"))
		fprintf(stderr, "\n  op %u: %s: %s\n", (unsigned)op, amtprov_status_name(rc),
			err->msg);
	return rc;
}

static void *open_ok(struct plugin_instance *pi, struct tgt *g)
{
	struct amtprov_error err;
	void *s = NULL;
	int rc;

	amtprov_error_clear(&err);
	rc = ops_of(pi)->session_open(plugin_instance_handle(pi), &g->t, &s, &err);
	if (rc != AMTPROV_OK)
		fprintf(stderr, "\n  session_open: %s: %s\n", amtprov_status_name(rc), err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, AMTPROV_OK);
	return s;
}

static void close_s(struct plugin_instance *pi, void *s)
{
	ops_of(pi)->session_close(plugin_instance_handle(pi), s);
}

/* ---- tests ---- */

/* R-PROV-08: Digest over TLS; WS-Man Get of the core version. */
static void test_digest_ok(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r;
	void *s;

	tgt_init(&g, pi_main, 2, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err), AMTPROV_OK);
	ASSERT_JSTR(json_string_value(json_object_get(r, "version")), "16.1.25");
	json_decref(r);
	CU_ASSERT_EQUAL(ops_of(pi_main)->session_account(plugin_instance_handle(pi_main), s), 0);
	/* Connection and Digest nonce reused for a second request. */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_SETUP_STATE, NULL, &r, &err), AMTPROV_OK);
	ASSERT_JSTR(json_string_value(json_object_get(r, "state")), "post");
	ASSERT_JSTR(json_string_value(json_object_get(r, "mode")), "acm");
	json_decref(r);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
}

/* R-PROV-09: all accounts wrong -> E_AUTH naming the count; second account works. */
static void test_digest_accounts(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r;
	void *s;

	tgt_init(&g, pi_main, 2, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "Wrong1!pass");
	tgt_account(&g, pi_main, "admin", "Wrong2!pass");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err),
			AMTPROV_E_AUTH);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "all 2 configured account"));
	CU_ASSERT_PTR_NULL(strstr(err.msg, "Wrong"));
	CU_ASSERT_EQUAL(ops_of(pi_main)->session_account(plugin_instance_handle(pi_main), s), -1);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);

	tgt_init(&g, pi_main, 2, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "Wrong1!pass");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	tgt_account(&g, pi_main, "admin", "Wrong3!pass");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(ops_of(pi_main)->session_account(plugin_instance_handle(pi_main), s), 1);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
}

/* R-PROV-07: provisioning certificate chain accepted by the device in state "in"; OTP and
 * hash table readable in that session. */
static void test_provisioning_tls(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r, *e;
	size_t i;
	int found = 0;
	void *s;

	tgt_init(&g, pi_main, 1, 12, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_SETUP_STATE, NULL, &r, &err), AMTPROV_OK);
	ASSERT_JSTR(json_string_value(json_object_get(r, "state")), "in");
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_OTP_HASH, NULL, &r, &err), AMTPROV_OK);
	/* sha256("Secret0TP123") */
	CU_ASSERT_EQUAL(strlen(json_string_value(json_object_get(r, "otp_hash"))), 64);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_HASHES, NULL, &r, &err), AMTPROV_OK);
	json_array_foreach(json_object_get(r, "hashes"), i, e)
		if (!strcmp(json_string_value(json_object_get(e, "hash")), root_hash))
			found = 1;
	CU_ASSERT(found);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_DEVICE_CERT, NULL, &r, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(strlen(json_string_value(json_object_get(r, "sha256"))), 64);
	json_decref(r);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
}

/* A chain without the AMT OID: refused before connecting (precheck) and, with the precheck
 * off, by the device in the handshake; both errors say why. */
static void test_provisioning_no_oid(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r;
	void *s = NULL;

	tgt_init(&g, pi_main, 1, 12, AMTPROV_TRANSPORT_PROVISIONING, NULL, "nooid");
	tgt_account(&g, pi_main, "admin", "");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(ops_of(pi_main)->session_open(plugin_instance_handle(pi_main), &g.t, &s,
						      &err),
			AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "2.16.840.1.113741.1.2.3"));
	tgt_free(&g, pi_main);

	tgt_init(&g, pi_nocheck, 1, 12, AMTPROV_TRANSPORT_PROVISIONING, NULL, "nooid");
	tgt_account(&g, pi_nocheck, "admin", "");
	s = open_ok(pi_nocheck, &g);
	CU_ASSERT_EQUAL(run(pi_nocheck, s, AMTPROV_AMT_GET_SETUP_STATE, NULL, &r, &err),
			AMTPROV_E_DENIED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "refused the provisioning TLS handshake"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "2.16.840.1.113741.1.2.3"));
	close_s(pi_nocheck, s);
	tgt_free(&g, pi_nocheck);
}

/* A self-signed certificate is accepted only for the address it names. */
static void test_self_signed_other_address(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r;
	void *s;

	tgt_init(&g, pi_main, 31, 12, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err),
			AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "does not name this session's address"));
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
}

/* R-REV-01: MANAGED mode with a CA-issued certificate: valid + CRL ok; revoked refused; CRL
 * unreachable -> fail closed. */
static void test_managed(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r;
	void *s;
	char a[40];

	tgt_init(&g, pi_main, 4, 16, AMTPROV_TRANSPORT_MANAGED, "man1.contoso.com", NULL);
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_DEVICE_CERT, NULL, &r, &err), AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL(json_object_get(r, "cert_der_b64"));
	json_decref(r);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);

	tgt_init(&g, pi_main, 5, 16, AMTPROV_TRANSPORT_MANAGED, "rev1.contoso.com", NULL);
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err),
			AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "revoked"));
	close_s(pi_main, s);
	tgt_free(&g, pi_main);

	/* The self-signed certificate of a provisioned device is not trusted in MANAGED mode. */
	tgt_init(&g, pi_main, 2, 16, AMTPROV_TRANSPORT_MANAGED, NULL, NULL);
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err),
			AMTPROV_E_VERIFY);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);

	tgt_init(&g, pi_main, 4, 16, AMTPROV_TRANSPORT_MANAGED, "man1.contoso.com", NULL);
	addr(a, sizeof(a), 21);
	snprintf(g.crl_url, sizeof(g.crl_url), "http://%s:18080/root.crl", a);
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err),
			AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "could not be fetched"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "R-REV-01"));
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
}

/* WS-Man Get/Put/Enumerate/Invoke, a fault, and a non-zero ReturnValue. */
static void test_wsman(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r;
	void *s;

	tgt_init(&g, pi_main, 2, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_HOST_NAME,
			    "{\"host\":\"renamed\",\"domain\":\"fabrikam.com\"}", &r, &err),
			AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_GET, "{\"class\":\"AMT_GeneralSettings\"}",
			    &r, &err),
			AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(json_object_get(r, "instance"), "HostName")),
		"renamed");
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(json_object_get(r, "instance"), "DomainName")),
		"fabrikam.com");
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_PING, "{\"enabled\":false}", &r, &err),
			AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_ENUMERATE,
			    "{\"class\":\"CIM_SoftwareIdentity\"}", &r, &err),
			AMTPROV_OK);
	CU_ASSERT(json_array_size(json_object_get(r, "items")) >= 2);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_INVOKE,
			    "{\"class\":\"AMT_AuthorizationService\","
			    "\"method\":\"EnumerateUserAclEntries\",\"args\":{\"StartIndex\":1}}",
			    &r, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "return_value")), 0);
	json_decref(r);
	{
		/* A request larger than libcurl's upload buffer (16 KiB, at_link.c) goes out
		 * whole, in pieces: 48 KiB of an argument the method ignores. */
		json_t *p = json_pack("{s:s, s:s, s:{s:i}}", "class", "AMT_AuthorizationService",
				      "method", "EnumerateUserAclEntries", "args", "StartIndex", 1);
		char *pad = malloc(48 * 1024 + 1), *ps;

		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		CU_ASSERT_PTR_NOT_NULL_FATAL(pad);
		memset(pad, 'x', 48 * 1024);
		pad[48 * 1024] = '\0';
		json_object_set_new(json_object_get(p, "args"), "Padding", json_string(pad));
		ps = json_dumps(p, JSON_COMPACT);
		CU_ASSERT_PTR_NOT_NULL_FATAL(ps);
		CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_INVOKE, ps, &r, &err), AMTPROV_OK);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "return_value")), 0);
		json_decref(r);
		free(ps);
		free(pad);
		json_decref(p);
	}
	/* A fault becomes a clear error. */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_GET, "{\"class\":\"AMT_NoSuchThing\"}",
			    &r, &err),
			AMTPROV_E_PROTOCOL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "DestinationUnreachable"));
	/* A failing ReturnValue becomes E_DEVICE naming the AMT status. */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_INVOKE,
			    "{\"class\":\"AMT_AuthorizationService\","
			    "\"method\":\"RemoveUserAclEntry\",\"args\":{\"Handle\":77}}",
			    &r, &err),
			AMTPROV_E_DEVICE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "RemoveUserAclEntry returned"));
	/* Unknown operations are refused at begin(). */
	CU_ASSERT_EQUAL(run(pi_main, s, 9999, NULL, &r, &err), AMTPROV_E_NOT_SUPPORTED);
	/* Bad parameters are refused at begin(), with no done(). */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_HOST_NAME, "{}", &r, &err),
			AMTPROV_E_INVALID);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
}

/* Legacy SOAP for AMT < 9. */
static void test_legacy_soap(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r;
	void *s;

	tgt_init(&g, pi_main, 3, 6, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err), AMTPROV_OK);
	ASSERT_JSTR(json_string_value(json_object_get(r, "version")), "6.2.61");
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_SETUP_STATE, NULL, &r, &err), AMTPROV_OK);
	ASSERT_JSTR(json_string_value(json_object_get(r, "state")), "post");
	json_decref(r);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
}

/* 200 sessions in flight at once, one thread, one fd. */
#define N_MANY 200
static void test_many_sessions(void)
{
	static struct tgt g[N_MANY];
	void *s[N_MANY];
	int done = 0, ok = 0;
	const struct amtprov_transport_ops *o = ops_of(pi_main);
	void *inst = plugin_instance_handle(pi_main);

	for (int i = 0; i < N_MANY; i++) {
		struct amtprov_error err;
		json_t *p = json_object();

		tgt_init(&g[i], pi_main, 100 + i % N_FLEET, 16, AMTPROV_TRANSPORT_PROVISIONING,
			 NULL, "prov");
		tgt_account(&g[i], pi_main, "admin", "P@ssw0rd1");
		s[i] = open_ok(pi_main, &g[i]);
		amtprov_error_clear(&err);
		CU_ASSERT_EQUAL(o->begin(inst, s[i], AMTPROV_AMT_GET_CORE_VERSION, p, on_done,
					 &done, &err),
				AMTPROV_AGAIN);
		json_decref(p);
	}
	pump(pi_main, &done, N_MANY, 60000);
	CU_ASSERT_EQUAL(done, N_MANY);
	for (int i = 0; i < N_MANY; i++) {
		struct amtprov_error err;
		json_t *r = NULL;

		amtprov_error_clear(&err);
		if (o->finish(inst, s[i], &r, &err) == AMTPROV_OK)
			ok++;
		else if (ok == i)
			fprintf(stderr, "\n  session %d: %s\n", i, err.msg);
		json_decref(r);
		close_s(pi_main, s[i]);
		tgt_free(&g[i], pi_main);
	}
	CU_ASSERT_EQUAL(ok, N_MANY);
}

/* A device that accepts TCP and never answers: E_TIMEOUT. */
static void test_timeout(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r;
	void *s;

	tgt_init(&g, pi_main, 30, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	g.t.timeout_ms = 800;
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err),
			AMTPROV_E_TIMEOUT);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
}

/* R-PROV-13: a hostile answer (empty Body, another element, a bare fault, a huge, cut or
 * dripping body) to SET_HOST_NAME, SET_PING, WSMAN_GET, WSMAN_PUT and the wired 802.1X Put
 * is an error naming the device; the process survives. An empty Body crashed it before. */
static void test_hostile_answers(void)
{
	static const struct {
		uint32_t op;
		const char *params;
	} ops[] = {
		{AMTPROV_AMT_SET_HOST_NAME, "{\"host\":\"h\",\"domain\":\"contoso.com\"}"},
		{AMTPROV_AMT_SET_PING, "{\"enabled\":true}"},
		{AMTPROV_AMT_WSMAN_GET, "{\"class\":\"AMT_GeneralSettings\"}"},
		{AMTPROV_AMT_WSMAN_PUT, "{\"class\":\"AMT_GeneralSettings\","
					"\"properties\":{\"HostName\":\"h\"}}"},
		{AMTPROV_AMT_SET_8021X, "{\"wired\":null,\"wireless\":[]}"},
	};

	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		/* One op per kind for the slow ones, every op otherwise. */
		size_t n_ops = strcmp(hostile[i].kind, "slow_drip") &&
				       strcmp(hostile[i].kind, "huge_body")
				       ? sizeof(ops) / sizeof(ops[0]) : 1;

		for (size_t k = 0; k < n_ops; k++) {
			struct tgt g;
			struct amtprov_error err;
			json_t *r = NULL;
			void *s;
			int rc;

			tgt_init(&g, pi_main, HOSTILE_HOST + (int)i, 16,
				 AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
			/* Short for the drip (it must time out); roomy for the 17 MiB body, which
			 * must be cut by size, not by time, even under sanitizers. */
			g.t.timeout_ms = strcmp(hostile[i].kind, "slow_drip") ? 30000 : 1500;
			tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
			s = open_ok(pi_main, &g);
			rc = run(pi_main, s, ops[k].op, ops[k].params, &r, &err);
			if (rc != hostile[i].rc || !strstr(err.msg, hostile[i].msg))
				fprintf(stderr, "\n  %s op %u: %s: %s\n", hostile[i].kind,
					(unsigned)ops[k].op, amtprov_status_name(rc), err.msg);
			CU_ASSERT_EQUAL(rc, hostile[i].rc);
			CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, hostile[i].msg));
			CU_ASSERT_PTR_NULL(r);
			json_decref(r);
			close_s(pi_main, s);
			tgt_free(&g, pi_main);
		}
	}
}

/* Closing a session with an operation in flight: no done(), no leak. */
static void test_close_in_flight(void)
{
	struct tgt g;
	struct amtprov_error err;
	int done = 0;
	void *s;
	json_t *p = json_object();

	/* The silent device (.30), so the operation is surely still running. */
	tgt_init(&g, pi_main, 30, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(ops_of(pi_main)->begin(plugin_instance_handle(pi_main), s,
					       AMTPROV_AMT_GET_CORE_VERSION, p, on_done, &done,
					       &err),
			AMTPROV_AGAIN);
	json_decref(p);
	pump(pi_main, &done, 1, 30);
	close_s(pi_main, s);
	pump(pi_main, &done, 1, 100);
	CU_ASSERT_EQUAL(done, 0);
	tgt_free(&g, pi_main);
}

/* Second-stage operations against amtsim's key/certificate, time, TLS, Kerberos and
 * redirection classes (R-PROV-10/11). */
static void test_second_stage(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r;
	void *s;
	char *pem = slurp("root.pem"), *b64 = NULL, params[8192];
	const char *key_handle, *cert_handle;
	char kh[256], ch[256];

	CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
	/* PEM body without armour and newlines = base64 DER. */
	b64 = calloc(1, strlen(pem) + 1);
	for (const char *p = strstr(pem, "\n") + 1, *q = b64; p && *p && *p != '-'; p++)
		if (*p != '\n')
			*(char *)q++ = *p;
	tgt_init(&g, pi_main, 100, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_TIME, NULL, &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GENERATE_KEY_PAIR, "{\"bits\":2048}", &r, &err),
			AMTPROV_OK);
	key_handle = json_string_value(json_object_get(r, "key_handle"));
	snprintf(kh, sizeof(kh), "%s", key_handle ? key_handle : "");
	CU_ASSERT(kh[0] != '\0');
	json_decref(r);
	snprintf(params, sizeof(params), "{\"cert_der_b64\":\"%s\",\"trusted_root\":true}", b64);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_ADD_CERTIFICATE, params, &r, &err), AMTPROV_OK);
	cert_handle = json_string_value(json_object_get(r, "cert_handle"));
	snprintf(ch, sizeof(ch), "%s", cert_handle ? cert_handle : "");
	CU_ASSERT(ch[0] != '\0');
	json_decref(r);
	/* The certificate's key is not in AMT: ENABLE_TLS may be refused; either way, a clear
	 * outcome. */
	snprintf(params, sizeof(params), "{\"cert_handle\":\"%s\"}", ch);
	if (run(pi_main, s, AMTPROV_AMT_ENABLE_TLS, params, &r, &err) == AMTPROV_OK)
		json_decref(r);
	else
		CU_ASSERT(err.msg[0] != '\0');
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_REDIRECTION,
			    "{\"sol\":true,\"ider\":true}", &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_GET,
			    "{\"class\":\"AMT_RedirectionService\"}", &r, &err), AMTPROV_OK);
	{
		/* A missing value must fail the test, not crash it. */
		const char *v = json_string_value(
			json_object_get(json_object_get(r, "instance"), "ListenerEnabled"));

		CU_ASSERT_PTR_NOT_NULL(v);
		CU_ASSERT_STRING_EQUAL(v ? v : "(missing)", "true");
	}
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_DELETE_CERTIFICATE, "{\"cert_handle\":\"nope\"}",
			    &r, &err) != AMTPROV_OK, 1);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
	free(pem);
	free(b64);
}

/* A null-signed PKCS#10 request for CN=@p cn around @p pub (what the core sends AMT). */
static char *null_signed_csr(EVP_PKEY *pub, const char *cn)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_BIT_STRING *sig = ASN1_BIT_STRING_new();
	unsigned char zeros[256] = {0}, *der = NULL;
	char *b64 = NULL;
	int n = -1;

	if (req && name && alg && sig &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
				       -1, 0) &&
	    X509_REQ_set_subject_name(req, name) && X509_REQ_set_pubkey(req, pub) &&
	    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL, NULL) &&
	    ASN1_BIT_STRING_set(sig, zeros, sizeof(zeros)) && X509_REQ_set1_signature_algo(req, alg)) {
		X509_REQ_set0_signature(req, sig);
		sig = NULL;
		n = i2d_X509_REQ(req, &der);
	}
	if (n > 0 && (b64 = malloc(4 * ((size_t)n + 2) / 3 + 1)))
		EVP_EncodeBlock((unsigned char *)b64, der, n);
	OPENSSL_free(der);
	ASN1_BIT_STRING_free(sig);
	X509_ALGOR_free(alg);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return b64;
}

/* 1 when an object of array @p a has @p k = @p v. */
static int listed(const json_t *a, const char *k, const char *v)
{
	const json_t *it;
	size_t i;

	json_array_foreach(a, i, it)
		if (json_string_value(json_object_get(it, k)) &&
		    !strcmp(json_string_value(json_object_get(it, k)), v))
			return 1;
	return 0;
}

/* R-PROV-06 against amtsim: GENERATE_KEY_PAIR gives a handle whose public key (DERKey) AMT
 * puts into the request it signs with SIGN_CSR; a template around another key is refused
 * with AMT's INVALID_KEY (2062). */
static void test_amt_key_csr(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r = NULL;
	void *s;
	char kh[256] = "", params[4096], derkey[2048];
	const char *v;
	unsigned char der[2048];
	const unsigned char *p = der;
	EVP_PKEY *pub = NULL, *other = EVP_RSA_gen(2048);
	X509_REQ *signed_req = NULL;
	char *csr = NULL, *bad = NULL;
	int n;

	tgt_init(&g, pi_main, 101, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GENERATE_KEY_PAIR, "{\"bits\":2048}", &r, &err),
			AMTPROV_OK);
	v = json_string_value(json_object_get(r, "key_handle"));
	snprintf(kh, sizeof(kh), "%s", v ? v : "");
	json_decref(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(kh, "Intel(r) AMT Key: Handle: "));
	snprintf(params, sizeof(params), "{\"class\":\"AMT_PublicPrivateKeyPair\","
		 "\"selectors\":{\"InstanceID\":\"%s\"}}", kh);
	CU_ASSERT_EQUAL_FATAL(run(pi_main, s, AMTPROV_AMT_WSMAN_GET, params, &r, &err), AMTPROV_OK);
	v = json_string_value(json_object_get(json_object_get(r, "instance"), "DERKey"));
	n = v ? EVP_DecodeBlock(der, (const unsigned char *)v, (int)strlen(v)) : -1;
	snprintf(derkey, sizeof(derkey), "%s", v ? v : "");
	json_decref(r);
	CU_ASSERT_FATAL(n > 0);
	/* The semantic operations (transport.h 30-37) see the same key, by handle. */
	snprintf(params, sizeof(params), "{\"key_handle\":\"%s\"}", kh);
	CU_ASSERT_EQUAL_FATAL(run(pi_main, s, AMTPROV_AMT_GET_KEY, params, &r, &err), AMTPROV_OK);
	v = json_string_value(json_object_get(r, "public_key_b64"));
	CU_ASSERT_STRING_EQUAL(v ? v : "", derkey);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_KEY, "{}", &r, &err), AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_LIST_KEYS, "{}", &r, &err), AMTPROV_OK);
	CU_ASSERT_TRUE(listed(json_object_get(r, "keys"), "key_handle", kh));
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_LIST_CERTIFICATES, "{}", &r, &err), AMTPROV_OK);
	CU_ASSERT_TRUE(json_is_array(json_object_get(r, "certificates")));
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_LIST_CERT_BINDINGS, "{}", &r, &err),
			AMTPROV_OK);
	CU_ASSERT_TRUE(json_is_array(json_object_get(r, "tls")) &&
		       json_is_array(json_object_get(r, "links")));
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_WIRELESS, "{}", &r, &err), AMTPROV_OK);
	CU_ASSERT_TRUE(json_is_boolean(json_object_get(r, "wireless")));
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_LIST_WIFI_PROFILES, "{}", &r, &err),
			AMTPROV_OK);
	CU_ASSERT_TRUE(json_is_array(json_object_get(r, "profiles")));
	json_decref(r);
	/* PKCS#1 RSAPublicKey (trailing zero bytes from base64 padding are ignored). */
	pub = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, n);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
	csr = null_signed_csr(pub, "f1.contoso.com");
	snprintf(params, sizeof(params), "{\"key_handle\":\"%s\",\"csr_der_b64\":\"%s\"}", kh,
		 csr ? csr : "");
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SIGN_CSR, params, &r, &err), AMTPROV_OK);
	v = json_string_value(json_object_get(r, "csr_der_b64"));
	n = v ? EVP_DecodeBlock(der, (const unsigned char *)v, (int)strlen(v)) : -1;
	p = der;
	signed_req = n > 0 ? d2i_X509_REQ(NULL, &p, n) : NULL;
	json_decref(r);
	CU_ASSERT_PTR_NOT_NULL(signed_req);
	if (signed_req) {
		CU_ASSERT_EQUAL(X509_REQ_verify(signed_req, pub), 1);
		CU_ASSERT_EQUAL(EVP_PKEY_eq(X509_REQ_get0_pubkey(signed_req), pub), 1);
	}
	/* A template whose key is not the handle's: AMT refuses it, by name. */
	bad = other ? null_signed_csr(other, "f1.contoso.com") : NULL;
	snprintf(params, sizeof(params), "{\"key_handle\":\"%s\",\"csr_der_b64\":\"%s\"}", kh,
		 bad ? bad : "");
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SIGN_CSR, params, &r, &err), AMTPROV_E_DEVICE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "INVALID_KEY"));
	/* DELETE_KEY: gone from the list. */
	snprintf(params, sizeof(params), "{\"key_handle\":\"%s\"}", kh);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_DELETE_KEY, params, &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_LIST_KEYS, "{}", &r, &err), AMTPROV_OK);
	CU_ASSERT_FALSE(listed(json_object_get(r, "keys"), "key_handle", kh));
	json_decref(r);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
	X509_REQ_free(signed_req);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(other);
	free(csr);
	free(bad);
}

static const char *inst_str(const json_t *r, const char *k)
{
	const char *v = json_string_value(json_object_get(json_object_get(r, "instance"), k));

	return v ? v : "(missing)";
}

/* R-PROV-11 (2): the power policy picks the device's own fitting scheme, a policy the device
 * has no scheme for is a clear error; the web UI switch reaches AMT_WebUIService.
 * R-PROV-11 (3): SET_8021X writes the wired settings and a wireless profile, each bound to
 * the RADIUS root it names (CIM_CredentialContext); a root AMT already holds is adopted. */
static void test_power_webui_8021x(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r;
	void *s;
	char *pem = slurp("root.pem"), *b64 = NULL, *params = NULL;
	size_t n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
	b64 = calloc(1, strlen(pem) + 1);
	for (const char *p = strstr(pem, "\n") + 1; p && *p && *p != '-'; p++)
		if (*p != '\n')
			b64[n++] = *p;
	tgt_init(&g, pi_main, 101, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_POWER_POLICY,
			    "{\"policy\":\"on-in-s0-s3-s4-5\"}", &r, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "scheme")) ?
			       json_string_value(json_object_get(r, "scheme")) : "", "SCHEME 2");
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_GET,
			    "{\"class\":\"AMT_SystemPowerScheme\",\"selectors\":"
			    "{\"InstanceID\":\"SCHEME 2\"}}", &r, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(inst_str(r, "IsActive"), "true");
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_POWER_POLICY,
			    "{\"policy\":\"on-in-s0-s3\"}", &r, &err), AMTPROV_E_NOT_SUPPORTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Desktop: ON in S0"));
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_POWER_POLICY, "{\"policy\":\"on-in-s0\"}",
			    &r, &err), AMTPROV_OK);
	json_decref(r);

	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_REDIRECTION, "{\"web_ui\":false}", &r,
			    &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_GET, "{\"class\":\"AMT_WebUIService\"}",
			    &r, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(inst_str(r, "EnabledState"), "3");
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_REDIRECTION,
			    "{\"sol\":true,\"ider\":false,\"web_ui\":true}", &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_GET, "{\"class\":\"AMT_WebUIService\"}",
			    &r, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(inst_str(r, "EnabledState"), "2");
	json_decref(r);

	params = malloc(strlen(b64) * 2 + 1024);
	CU_ASSERT_PTR_NOT_NULL_FATAL(params);
	snprintf(params, strlen(b64) * 2 + 1024,
		"{\"wired\":{\"settings\":{\"ElementName\":\"lan\",\"AuthenticationProtocol\":2,"
		"\"Username\":\"amt\",\"Enabled\":6,\"PxeTimeout\":60},\"server_ca_der_b64\":\"%s\"},"
		"\"wireless\":[{\"settings\":{\"ElementName\":\"w1\",\"SSID\":\"corp\","
		"\"AuthenticationMethod\":7,\"EncryptionMethod\":4,\"Priority\":1},"
		"\"ieee8021x\":{\"ElementName\":\"w1\",\"AuthenticationProtocol\":2,"
		"\"Username\":\"amt\"},\"server_ca_der_b64\":\"%s\"}]}", b64, b64);
	for (int round = 0; round < 2; round++) {
		/* Round 2: the root is a duplicate (adopted); the profile is deleted first, as the
		 * core does. */
		if (round) {
			CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_DELETE,
					    "{\"class\":\"CIM_WiFiEndpointSettings\",\"selectors\":"
					    "{\"InstanceID\":\"Intel(r) AMT:WiFi Endpoint Settings w1\"}}",
					    &r, &err), AMTPROV_OK);
			json_decref(r);
		}
		CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_8021X, params, &r, &err), AMTPROV_OK);
		if (err.msg[0])
			fprintf(stderr, "SET_8021X: %s\n", err.msg);
		json_decref(r);
		CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_GET,
				    "{\"class\":\"IPS_IEEE8021xSettings\"}", &r, &err), AMTPROV_OK);
		CU_ASSERT_STRING_EQUAL(inst_str(r, "Enabled"), "6");
		CU_ASSERT_STRING_EQUAL(inst_str(r, "AuthenticationProtocol"), "2");
		CU_ASSERT_STRING_EQUAL(inst_str(r, "PxeTimeout"), "60");
		json_decref(r);
		CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_ENUMERATE,
				    "{\"class\":\"CIM_WiFiEndpointSettings\"}", &r, &err), AMTPROV_OK);
		CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "items")), 1);
		json_decref(r);
		CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_ENUMERATE,
				    "{\"class\":\"CIM_CredentialContext\"}", &r, &err), AMTPROV_OK);
		CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "items")), 2);
		json_decref(r);
	}
	/* No wired profile any more: wired 802.1X is turned off. */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_8021X, "{\"wired\":null,\"wireless\":[]}",
			    &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_GET,
			    "{\"class\":\"IPS_IEEE8021xSettings\"}", &r, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(inst_str(r, "Enabled"), "3");
	json_decref(r);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
	free(params);
	free(pem);
	free(b64);
}

/* SET_KERBEROS with the settings the second stage writes (R-ACC-01): realm, SPNs with
 * their protocols, key version, the MasterKey read from the credential store; ACL entries by
 * SID in binary form. Bad params are refused before anything reaches the device. */
static void test_kerberos(void)
{
	static const char settings[] =
		"{\"enabled\":true,\"realm\":\"CONTOSO.COM\",\"spns\":["
		"{\"spn\":\"HTTP/pc.contoso.com\",\"protocol\":0},"
		"{\"spn\":\"HTTP/pc.contoso.com:16993\",\"protocol\":1}],\"key_version\":3,"
		"\"encryption_algorithm\":0,\"master_key_credential\":\"%s\",\"clock_tolerance\":5}";
	struct amtprov_secret *key = util_secret_new(16), *shortkey = util_secret_new(15);
	struct amtprov_error err;
	char params[1024];
	struct tgt g;
	json_t *r;
	void *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(key);
	CU_ASSERT_PTR_NOT_NULL_FATAL(shortkey);
	memset(key->data, 0x42, 16);
	CU_ASSERT_EQUAL(pi_credstore_put(pi_cs, "device/pc/kerberos-master-key", key, &err),
			AMTPROV_OK);
	CU_ASSERT_EQUAL(pi_credstore_put(pi_cs, "short-key", shortkey, &err), AMTPROV_OK);
	util_secret_free(key);
	util_secret_free(shortkey);
	tgt_init(&g, pi_main, 102, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	snprintf(params, sizeof(params), settings, "device/pc/kerberos-master-key");
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_KERBEROS, params, &r, &err), AMTPROV_OK);
	json_decref(r);
	/* the device answers Digest requests still, with Negotiate offered next to Digest */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_GET,
			    "{\"class\":\"AMT_KerberosSettingData\"}", &r, &err), AMTPROV_OK);
	CU_ASSERT_STRING_EQUAL(inst_str(r, "KrbEnabled"), "true");
	CU_ASSERT_STRING_EQUAL(inst_str(r, "RealmName"), "CONTOSO.COM");
	CU_ASSERT_STRING_EQUAL(inst_str(r, "KeyVersion"), "3");
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_ACLS,
			    "{\"accounts\":[{\"sid\":\"S-1-5-21-1-2-3-1104\",\"access\":1,"
			    "\"realms\":[3]}]}", &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_ACLS,
			    "{\"accounts\":[{\"sid\":\"S-1-5-21-1-2-3-4-5-6\",\"realms\":[3]}]}",
			    &r, &err), AMTPROV_E_INVALID);
	snprintf(params, sizeof(params), settings, "short-key");
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_KERBEROS, params, &r, &err),
			AMTPROV_E_INVALID);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "16-byte key"));
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_KERBEROS,
			    "{\"enabled\":true,\"realm\":\"CONTOSO.COM\",\"spns\":[],"
			    "\"key_version\":1,\"master_key_credential\":\"short-key\"}", &r, &err),
			AMTPROV_E_INVALID);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_KERBEROS, "{\"enabled\":false}", &r, &err),
			AMTPROV_OK);
	json_decref(r);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
}

/* ---- connections (issue 13) ---- */

/* A runtime counter of amtsim's device @p id (control socket "dump"), -1 on failure. */
static long sim_counter(const char *id, const char *key)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char req[128], buf[65536];
	size_t got = 0;
	long v = -1;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	json_t *j;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/state/control.sock", dir);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(req, sizeof(req), "{\"cmd\":\"dump\",\"device\":\"%s\"}\n", id);
	if (write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
		while (got < sizeof(buf) - 1) {
			ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);

			if (n <= 0)
				break;
			got += (size_t)n;
			if (buf[got - 1] == '\n')
				break;
		}
	}
	close(fd);
	buf[got] = '\0';
	j = json_loads(buf, 0, NULL);
	if (json_is_integer(json_object_get(json_object_get(json_object_get(j, "device"),
							     "runtime"), key)))
		v = (long)json_integer_value(json_object_get(
			json_object_get(json_object_get(j, "device"), "runtime"), key));
	json_decref(j);
	return v;
}

/* amtsim's count of requests, 401 challenges, full and resumed handshakes of @p id. */
static void expect_counts(const char *id, long requests, long challenges, long handshakes,
			  long resumed)
{
	CU_ASSERT_EQUAL(sim_counter(id, "requests"), requests);
	CU_ASSERT_EQUAL(sim_counter(id, "challenges"), challenges);
	CU_ASSERT_EQUAL(sim_counter(id, "handshakes"), handshakes);
	CU_ASSERT_EQUAL(sim_counter(id, "resumed"), resumed);
}

/* The device ends each connection after 2 requests: the transport reconnects (resuming the
 * TLS session) without an error and without a new Digest challenge; a second session of the
 * same phase reuses the link (R-PROV-08). */
static void test_keepalive_limit_reconnect(void)
{
	struct tgt g;
	struct amtprov_error err;
	json_t *r;
	void *s;

	tgt_init(&g, pi_main, KA_HOST, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err),
				AMTPROV_OK);
		ASSERT_JSTR(json_string_value(json_object_get(r, "version")), "16.1.25");
		json_decref(r);
	}
	close_s(pi_main, s);
	/* 6 requests (the first met the challenge), 2 per connection: 3 connections. */
	expect_counts("ka1", 6, 1, 1, 2);
	CU_ASSERT_EQUAL(sim_counter("ka1", "limit_closes"), 3);
	/* The next session of the phase: same Digest nonce (no 401), resumed TLS session. */
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_SETUP_STATE, NULL, &r, &err), AMTPROV_OK);
	json_decref(r);
	close_s(pi_main, s);
	expect_counts("ka1", 7, 1, 1, 3);
	tgt_free(&g, pi_main);
}

/* The device drops an idle kept-alive connection (1 s) and its nonce expires (1 s): the next
 * request reconnects and answers the stale=true re-challenge without failing. */
static void test_stale_nonce_rechallenge(void)
{
	struct tgt g;
	struct amtprov_error err;
	struct timespec two = {2, 300000000};
	json_t *r;
	void *s;

	tgt_init(&g, pi_main, KA_HOST + 1, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(sim_counter("ka2", "challenges"), 1);
	nanosleep(&two, NULL);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err), AMTPROV_OK);
	ASSERT_JSTR(json_string_value(json_object_get(r, "version")), "16.1.25");
	json_decref(r);
	CU_ASSERT_EQUAL(ops_of(pi_main)->session_account(plugin_instance_handle(pi_main), s), 0);
	close_s(pi_main, s);
	/* First challenge, then the stale one: 4 requests, 2 full handshakes (no resumption
	 * offered by this device). */
	expect_counts("ka2", 4, 2, 2, 0);
	tgt_free(&g, pi_main);
}

/* Connections are kept per trust (issue 13): each connection's anchors are shared parsed
 * certificates, and libcurl's reuse key is the link's. A session with another CA bundle
 * never reuses a parked connection the first bundle verified: it verifies afresh (and here
 * refuses the device, which the other bundle does not trust); a session with the first
 * bundle again reuses the parked connection (no new handshake). */
static void test_reuse_per_trust(void)
{
	struct tgt g, o;
	struct amtprov_error err;
	json_t *r;
	void *s;
	long hs;

	tgt_init(&g, pi_main, 4, 16, AMTPROV_TRANSPORT_MANAGED, "man1.contoso.com", NULL);
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err), AMTPROV_OK);
	json_decref(r);
	close_s(pi_main, s);

	tgt_init(&o, pi_main, 4, 16, AMTPROV_TRANSPORT_MANAGED, "man1.contoso.com", NULL);
	free(o.ca);
	o.ca = slurp("other.pem");
	CU_ASSERT_PTR_NOT_NULL_FATAL(o.ca);
	o.t.ca_bundle_pem = o.ca;
	tgt_account(&o, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &o);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err),
			AMTPROV_E_VERIFY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "depth"));
	close_s(pi_main, s);
	tgt_free(&o, pi_main);

	hs = sim_counter("man1", "handshakes");
	CU_ASSERT(hs > 0);
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_DEVICE_CERT, NULL, &r, &err), AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL(json_object_get(r, "cert_der_b64"));
	json_decref(r);
	close_s(pi_main, s);
	CU_ASSERT_EQUAL(sim_counter("man1", "handshakes"), hs);
	tgt_free(&g, pi_main);
}

/* Issue 13, nothing idles: when the core says a device has no more sessions for now
 * (device_idle, ABI 1.4), its parked connection is closed at once, so its next session
 * connects anew (a handshake and a Digest challenge); another device's parked connection,
 * and a device's connection while a session is open on it, are untouched. */
static void test_device_idle_closes_parked_link(void)
{
	const struct amtprov_transport_ops *o = ops_of(pi_main);
	struct tgt a, b;
	struct amtprov_error err;
	json_t *r;
	void *s;

	tgt_init(&a, pi_main, KA_HOST + 2, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&a, pi_main, "admin", "P@ssw0rd1");
	tgt_init(&b, pi_main, KA_HOST + 3, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&b, pi_main, "admin", "P@ssw0rd1");
	for (int i = 0; i < 2; i++) {
		s = open_ok(pi_main, i ? &b : &a);
		CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err),
				AMTPROV_OK);
		json_decref(r);
		close_s(pi_main, s);
	}
	expect_counts("ka3", 2, 1, 1, 0);
	expect_counts("ka4", 2, 1, 1, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o->device_idle);
	o->device_idle(plugin_instance_handle(pi_main), a.address, 16993);

	s = open_ok(pi_main, &a); /* ka3: a new connection, a new challenge */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err), AMTPROV_OK);
	json_decref(r);
	close_s(pi_main, s);
	expect_counts("ka3", 4, 2, 2, 0);

	s = open_ok(pi_main, &b); /* ka4: its parked connection, no new handshake */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err), AMTPROV_OK);
	json_decref(r);
	/* An open session's connection is not the core's to close. */
	o->device_idle(plugin_instance_handle(pi_main), b.address, 16993);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_CORE_VERSION, NULL, &r, &err), AMTPROV_OK);
	json_decref(r);
	close_s(pi_main, s);
	expect_counts("ka4", 4, 1, 1, 0);
	tgt_free(&a, pi_main);
	tgt_free(&b, pi_main);
}

/* amtsim's count of the requests of @p id it answered (not those it met with a 401). */
static long answered(const char *id)
{
	return sim_counter(id, "requests") - sim_counter(id, "challenges"); /* every 401 */
}

/* Issue 13: what a session read already is not asked for again, and a Put that would change
 * nothing is not sent; each only within one session and only where nothing came in between
 * (R-PROV-05's OTP right after the setup state; AMT_GeneralSettings' DigestRealm, read-only
 * in AMT, for SetAdminAclEntryEx, R-PROV-10 4). */
static void test_known_answers(void)
{
	const char *otp_hex;
	char want[65], got[65];
	unsigned char md[32];
	struct amtprov_secret *pw = util_secret_new(12);
	struct amtprov_error err;
	struct tgt g;
	json_t *r;
	void *s;
	long n;

	/* The OTP from the instance GET_SETUP_STATE just read: no request. */
	SHA256((const unsigned char *)KN1_OTP, strlen(KN1_OTP), md);
	for (int i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	tgt_init(&g, pi_main, KA_HOST + 4, 12, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_SETUP_STATE, NULL, &r, &err), AMTPROV_OK);
	ASSERT_JSTR(json_string_value(json_object_get(r, "state")), "in");
	json_decref(r);
	n = answered("kn1");
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_OTP_HASH, NULL, &r, &err), AMTPROV_OK);
	otp_hex = json_string_value(json_object_get(r, "otp_hash"));
	snprintf(got, sizeof(got), "%s", otp_hex ? otp_hex : "");
	json_decref(r);
	CU_ASSERT_STRING_EQUAL(got, want);
	CU_ASSERT_EQUAL(answered("kn1"), n);
	/* Another operation in between: GET_OTP_HASH reads the device (one Get). */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_HASHES, NULL, &r, &err), AMTPROV_OK);
	json_decref(r);
	n = answered("kn1");
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_GET_OTP_HASH, NULL, &r, &err), AMTPROV_OK);
	otp_hex = json_string_value(json_object_get(r, "otp_hash"));
	snprintf(got, sizeof(got), "%s", otp_hex ? otp_hex : "");
	json_decref(r);
	CU_ASSERT_STRING_EQUAL(got, want);
	CU_ASSERT_EQUAL(answered("kn1"), n + 1);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);

	/* kn2: host name and domain as they are: the Get alone. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(pw);
	memcpy(pw->data, "N3w-Adm1n!Pw", 12);
	CU_ASSERT_EQUAL(pi_credstore_put(pi_cs, "device/kn2/admin", pw, &err), AMTPROV_OK);
	tgt_init(&g, pi_main, KA_HOST + 5, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "P@ssw0rd1");
	s = open_ok(pi_main, &g);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_HOST_NAME,
			    "{\"host\":\"kn2\",\"domain\":\"contoso.com\"}", &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(answered("kn2"), 1);
	/* A new host name: Get and Put. */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_HOST_NAME,
			    "{\"host\":\"kn2b\",\"domain\":\"contoso.com\"}", &r, &err),
			AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(answered("kn2"), 3);
	/* Ping: on already (amtsim's default, as AMT's): the Get alone; off: Get and Put. */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_PING, "{\"enabled\":true}", &r, &err),
			AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(answered("kn2"), 4);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_PING, "{\"enabled\":false}", &r, &err),
			AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(answered("kn2"), 6);
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_WSMAN_GET, "{\"class\":\"AMT_GeneralSettings\"}",
			    &r, &err), AMTPROV_OK);
	ASSERT_JSTR(json_string_value(json_object_get(json_object_get(r, "instance"),
						      "PingResponseEnabled")), "false");
	ASSERT_JSTR(json_string_value(json_object_get(json_object_get(r, "instance"), "HostName")),
		    "kn2b");
	json_decref(r);
	/* The admin password with the realm this session read: SetAdminAclEntryEx alone. */
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_ADMIN_PASSWORD,
			    "{\"credential\":\"device/kn2/admin\"}", &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(answered("kn2"), 8);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);

	/* The password set with the remembered realm is the one the device now takes; a new
	 * session knows no realm and reads it (Get, then SetAdminAclEntryEx). */
	tgt_init(&g, pi_main, KA_HOST + 5, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
	tgt_account(&g, pi_main, "admin", "N3w-Adm1n!Pw");
	s = open_ok(pi_main, &g);
	n = answered("kn2");
	CU_ASSERT_EQUAL(run(pi_main, s, AMTPROV_AMT_SET_ADMIN_PASSWORD,
			    "{\"credential\":\"device/kn2/admin\"}", &r, &err), AMTPROV_OK);
	json_decref(r);
	CU_ASSERT_EQUAL(ops_of(pi_main)->session_account(plugin_instance_handle(pi_main), s), 0);
	CU_ASSERT_EQUAL(answered("kn2"), n + 2);
	close_s(pi_main, s);
	tgt_free(&g, pi_main);
	util_secret_free(pw);
}

/* Issue 13: every open or parked link keeps its connection, however few requests are in
 * flight. libcurl's own limit (four connections per transfer in flight) closed the oldest
 * whenever a transfer ended with more connections open, so a device whose requests came
 * between others' met a new TLS handshake (counted here on 8 devices, one request at a
 * time: with that limit each device reconnected in the second round). On the second instance,
 * whose multi handle has no other transfer, so that one is in flight at a time. */
static void test_connections_kept(void)
{
	struct tgt g[8];
	void *s[8];
	long hs[8];
	struct amtprov_error err;
	json_t *r;
	char id[16];

	for (int i = 0; i < 8; i++) {
		tgt_init(&g[i], pi_nocheck, 100 + i, 16, AMTPROV_TRANSPORT_PROVISIONING, NULL, "prov");
		tgt_account(&g[i], pi_nocheck, "admin", "P@ssw0rd1");
		s[i] = open_ok(pi_nocheck, &g[i]);
	}
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 8; i++) {
			snprintf(id, sizeof(id), "f%d", i);
			if (round == 1)
				hs[i] = sim_counter(id, "handshakes");
			CU_ASSERT_EQUAL(run(pi_nocheck, s[i], AMTPROV_AMT_GET_CORE_VERSION, NULL, &r,
					    &err), AMTPROV_OK);
			json_decref(r);
		}
	for (int i = 0; i < 8; i++) {
		snprintf(id, sizeof(id), "f%d", i);
		CU_ASSERT_EQUAL(sim_counter(id, "handshakes"), hs[i]);
		close_s(pi_nocheck, s[i]);
		tgt_free(&g[i], pi_nocheck);
	}
}

int main(void)
{
	CU_pSuite su;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	su = CU_add_suite("amt_transport", suite_init, suite_clean);
	CU_add_test(su, "digest ok (R-PROV-08)", test_digest_ok);
	CU_add_test(su, "digest accounts in order (R-PROV-09)", test_digest_accounts);
	CU_add_test(su, "provisioning TLS (R-PROV-07)", test_provisioning_tls);
	CU_add_test(su, "provisioning cert without OID", test_provisioning_no_oid);
	CU_add_test(su, "self-signed only for its address", test_self_signed_other_address);
	CU_add_test(su, "managed mode + CRL (R-REV-01)", test_managed);
	CU_add_test(su, "ws-man get/put/enumerate/invoke/faults", test_wsman);
	CU_add_test(su, "legacy SOAP (AMT < 9)", test_legacy_soap);
	CU_add_test(su, "second stage ops", test_second_stage);
	CU_add_test(su, "AMT key: GenerateKeyPair, signed request, list/get/delete (R-PROV-06)",
		    test_amt_key_csr);
	CU_add_test(su, "power policy, web UI, 802.1X (R-PROV-11)", test_power_webui_8021x);
	CU_add_test(su, "Kerberos settings and ACL entries by SID (R-ACC-01)", test_kerberos);
	CU_add_test(su, "200 sessions, one fd", test_many_sessions);
	CU_add_test(su, "timeout", test_timeout);
	CU_add_test(su, "close in flight", test_close_in_flight);
	CU_add_test(su, "hostile answers never crash (R-PROV-13)", test_hostile_answers);
	CU_add_test(su, "kept-alive connection ended by the device: clean reconnect, resumed "
		    "TLS, no new challenge (R-PROV-08)", test_keepalive_limit_reconnect);
	CU_add_test(su, "stale nonce re-challenged, idle connection dropped (R-PROV-08)",
		    test_stale_nonce_rechallenge);
	CU_add_test(su, "device_idle closes the device's parked connection only (issue 13)",
		    test_device_idle_closes_parked_link);
	CU_add_test(su, "what the session read is not asked again; no Put that changes nothing "
		    "(R-PROV-05, R-PROV-10, issue 13)", test_known_answers);
	CU_add_test(su, "connections kept with few requests in flight (issue 13)",
		    test_connections_kept);
	CU_add_test(su, "a connection is reused only under the same trust (R-REV-01)",
		    test_reuse_per_trust);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
