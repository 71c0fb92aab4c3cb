/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_mscert.c - the ca-mscert plugin: certificates from a Microsoft enterprise CA (AD CS)
 * through CEP (MS-XCEP GetPolicies) and CES (MS-WSTEP RequestSecurityToken), revocation
 * through WinRM running certutil. Configuration, the cached policy with its template rules,
 * and the CA ops. See ms.h and docs/ca-mscert.md.
 *
 * Not thread-safe (the policy cache is shared): the core serializes calls per instance.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "ms.h"

struct ms_cfg {
	char *cep_url;
	char *auth;
	char *username;
	char *password;         /* credential record name */
	char *client_certificate;
	char *client_key;
	char *ca_bundle;
	char *web_server_template;
	char *client_8021x_template;
	char *winrm_url;
	char *winrm_username;
	char *winrm_password;   /* credential record name */
	char *ca_config;
	char **winrm_urls;      /* "CA NAME=https://CAHOST:5986/wsman", one per issuing CA */
	char **resolve;
	char **ces_urls;        /* CES endpoints in the site's order, instead of the policy's */
	long long timeout_seconds;
	long long poll_interval;
};

struct mscert {
	const struct amtprov_host *host;
	struct ms_cfg cfg;
	unsigned auth;
	struct ms_policy pol;
	int have_pol;
	int64_t pol_expires;    /* host->now() after which the policy is read again */
	int pol_bad;            /* the template rules refused the current policy */
	char pol_why[AMTPROV_CA_MESSAGE_SIZE];
	int cred_missing;       /* the password record is not in the store (yet) */
};

#define F(name, type, req, dflt, help) \
	{#name, type, offsetof(struct ms_cfg, name), req, dflt, 0, 0, help}
static const struct amtprov_config_field ms_config_table[] = {
	F(cep_url, AMTPROV_CFG_STRING, 1, NULL,
	  "the CEP URL, https://HOST/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP"),
	F(auth, AMTPROV_CFG_STRING, 0, "username",
	  "\"username\" (WS-Security UsernameToken), \"certificate\" (TLS client certificate) "
	  "or \"kerberos\" (HTTP Negotiate with the process's Kerberos ticket)"),
	F(username, AMTPROV_CFG_STRING, 0, NULL, "username: the enrollment account, e.g. sccm-site"),
	F(password, AMTPROV_CFG_CREDENTIAL, 0, NULL,
	  "username: credential record with the enrollment account's password"),
	F(client_certificate, AMTPROV_CFG_STRING, 0, NULL,
	  "certificate: PEM file with the TLS client certificate"),
	F(client_key, AMTPROV_CFG_STRING, 0, NULL, "certificate: PEM file with its key (0600)"),
	F(ca_bundle, AMTPROV_CFG_STRING, 1, NULL,
	  "PEM file with the CA(s) the CEP/CES/WinRM HTTPS certificates chain to"),
	F(web_server_template, AMTPROV_CFG_STRING, 0, NULL,
	  "template (cn) for AMT web server certificates, e.g. AMTWebServer"),
	F(client_8021x_template, AMTPROV_CFG_STRING, 0, NULL,
	  "template (cn) for 802.1X client certificates"),
	F(winrm_url, AMTPROV_CFG_STRING, 0, NULL,
	  "revocation: WinRM endpoint on the CA host, https://CAHOST:5986/wsman"),
	F(winrm_username, AMTPROV_CFG_STRING, 0, NULL,
	  "revocation: account with Issue and Manage Certificates on the CA"),
	F(winrm_password, AMTPROV_CFG_CREDENTIAL, 0, NULL,
	  "revocation: credential record with that account's password"),
	F(ca_config, AMTPROV_CFG_STRING, 0, "", "revocation: certutil -config, CAHOST\\CA name"),
	{"winrm_urls", AMTPROV_CFG_STRING_LIST, offsetof(struct ms_cfg, winrm_urls), 0, NULL, 0,
	 0, "revocation with several CAs: \"CA NAME=https://CAHOST:5986/wsman\" per CA; a "
	 "certificate is revoked at the CA that issued it (its issuer's CN), on that CA's host"},
	{"resolve", AMTPROV_CFG_STRING_LIST, offsetof(struct ms_cfg, resolve), 0, NULL, 0, 0,
	 "HOST:PORT:ADDRESS entries that pin the CA host names to addresses (no DNS for them; "
	 "Kerberos needs the host name in the URL)"},
	{"ces_urls", AMTPROV_CFG_STRING_LIST, offsetof(struct ms_cfg, ces_urls), 0, NULL, 0, 0,
	 "CES URLs (https) to use, first first, instead of the ones the policy lists for the "
	 "authentication; the next is tried when one is unreachable or answers HTTP 5xx"},
	{"timeout_seconds", AMTPROV_CFG_INT, offsetof(struct ms_cfg, timeout_seconds), 0, "30", 1,
	 600, "HTTP timeout per exchange"},
	{"poll_interval", AMTPROV_CFG_INT, offsetof(struct ms_cfg, poll_interval), 0, "300", 0,
	 604800, "seconds before the core polls a pending request again; 0: the core's schedule"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};
#undef F

static const char *const ms_caps[] = {
	AMTPROV_CAP_CA_SUBMIT,	    AMTPROV_CAP_CA_POLL,	 AMTPROV_CAP_CA_REVOKE,
	AMTPROV_CAP_CA_ROOTS,	    AMTPROV_CAP_CA_TEMPLATES,	 AMTPROV_CAP_CA_PURPOSE_WEB,
	AMTPROV_CAP_CA_PURPOSE_8021X, NULL,
};

static int is_set(const char *s)
{
	return s && *s;
}

static int https_url(const char *u)
{
	return u && !strncmp(u, "https://", 8) && !strpbrk(u, " \t\r\n#\"<>");
}

static int validate(struct mscert *ms, struct amtprov_error *err)
{
	struct ms_cfg *c = &ms->cfg;

	if (!https_url(c->cep_url))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/cep_url",
					 "must be an https:// URL without blanks");
	if (!strcmp(c->auth, "username")) {
		ms->auth = MS_AUTH_USERNAME;
		if (!is_set(c->username) || !is_set(c->password))
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/auth",
						 "\"username\" needs username and password "
						 "(a credential record)");
	} else if (!strcmp(c->auth, "certificate")) {
		ms->auth = MS_AUTH_CERTIFICATE;
		if (!is_set(c->client_certificate) || !is_set(c->client_key))
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/auth",
						 "\"certificate\" needs client_certificate and "
						 "client_key");
	} else if (!strcmp(c->auth, "kerberos")) {
		ms->auth = MS_AUTH_KERBEROS; /* the process's ticket (KRB5CCNAME) */
	} else {
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/auth",
					 "must be \"username\", \"certificate\" or \"kerberos\", "
					 "not '%s'", c->auth);
	}
	if (!is_set(c->web_server_template) && !is_set(c->client_8021x_template))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/web_server_template",
					 "name the template of at least one purpose "
					 "(web_server_template, client_8021x_template)");
	for (int i = 0; c->ces_urls && c->ces_urls[i]; i++)
		if (!https_url(c->ces_urls[i]))
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/ces_urls",
						 "entry %d must be an https:// URL without blanks", i);
	if (c->ces_urls && !c->ces_urls[0])
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/ces_urls",
					 "list at least one URL, or leave it out");
	for (int i = 0; c->winrm_urls && c->winrm_urls[i]; i++) {
		const char *eq = strchr(c->winrm_urls[i], '=');

		if (!eq || eq == c->winrm_urls[i] || !https_url(eq + 1) ||
		    !is_set(c->winrm_username) || !is_set(c->winrm_password))
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/winrm_urls",
						 "entry %d must be \"CA NAME=https://...\", with "
						 "winrm_username and winrm_password", i);
	}
	if (is_set(c->winrm_url) && (!https_url(c->winrm_url) || !is_set(c->winrm_username) ||
				     !is_set(c->winrm_password)))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/winrm_url",
					 "must be an https:// URL, with winrm_username and "
					 "winrm_password");
	return AMTPROV_OK;
}

static void ms_destroy(void *instance)
{
	struct mscert *ms = instance;

	if (!ms)
		return;
	ms_policy_free(&ms->pol);
	ms->host->config_free(ms->host, ms_config_table, &ms->cfg);
	curl_global_cleanup();
	free(ms);
}

static int ms_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
	struct mscert *ms = calloc(1, sizeof(*ms));
	int rc;

	if (!ms)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	ms->host = host;
	/* Reference-counted by libcurl; paired with the cleanup in destroy. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		host->config_free(host, ms_config_table, &ms->cfg);
		free(ms);
		return amtprov_error_set(err, AMTPROV_E_INTERNAL, MS_NAME, "cannot start libcurl");
	}
	rc = host->config_parse(host, config, ms_config_table, &ms->cfg, err);
	if (rc == AMTPROV_OK)
		rc = validate(ms, err);
	if (rc != AMTPROV_OK) {
		ms_destroy(ms);
		return rc;
	}
	*instance = ms;
	return AMTPROV_OK;
}

/* ---- HTTP with the configured authentication ---- */

struct call_auth {
	struct ms_auth auth;
	struct ms_http_opts http;
	struct amtprov_secret *secret;
};

static int auth_open(struct mscert *ms, struct call_auth *ca, char *why, size_t why_size)
{
	struct amtprov_error e;
	int rc;

	memset(ca, 0, sizeof(*ca));
	amtprov_error_clear(&e);
	ca->auth.mode = ms->auth;
	ca->http.ca_bundle = ms->cfg.ca_bundle;
	ca->http.timeout_s = (long)ms->cfg.timeout_seconds;
	ca->http.resolve = (const char *const *)ms->cfg.resolve;
	ca->http.negotiate = ms->auth == MS_AUTH_KERBEROS;
	if (ms->auth == MS_AUTH_KERBEROS)
		return 0;
	if (ms->auth == MS_AUTH_CERTIFICATE) {
		ca->http.client_cert = ms->cfg.client_certificate;
		ca->http.client_key = ms->cfg.client_key;
		return 0;
	}
	if ((rc = ms->host->secret_get(ms->host, ms->cfg.password, &ca->secret, &e)) !=
	    AMTPROV_OK) {
		ms->cred_missing = rc == AMTPROV_E_NOT_FOUND || rc == AMTPROV_E_NOT_SUPPORTED;
		snprintf(why, why_size, "credential '%s' (password): %s", ms->cfg.password, e.msg);
		return -1;
	}
	ms->cred_missing = 0;
	ca->auth.user = ms->cfg.username;
	ca->auth.password = ca->secret->data;
	return 0;
}

static void auth_close(struct mscert *ms, struct call_auth *ca)
{
	ms->host->secret_free(ms->host, ca->secret);
	ca->secret = NULL;
}

/* ---- policy ---- */

struct check_ctx {
	struct mscert *ms;
	int verbose;
	int skips;              /* log the CAs left out (once per policy read) */
	char first[AMTPROV_CA_MESSAGE_SIZE];
};

static void on_check(void *vctx, int ok, const char *rule, const char *what,
		     const char *expected, const char *actual, const char *fix)
{
	struct check_ctx *c = vctx;

	if (ok == MS_CHECK_SKIP) {
		if (c->verbose || c->skips)
			c->ms->host->log(c->ms->host, AMTPROV_LOG_WARNING,
					 "check SKIP %s: %s: expected %s, actual %s; to fix: %s",
					 rule, what, expected, actual, fix);
		return;
	}
	if (c->verbose || !ok)
		c->ms->host->log(c->ms->host, ok ? AMTPROV_LOG_NOTICE : AMTPROV_LOG_ERROR,
				 "check %s %s: %s: expected %s, actual %s%s%s",
				 ok ? "ok  " : "FAIL", rule, what, expected, actual,
				 ok ? "" : "; to fix: ", ok ? "" : fix);
	if (ok || c->first[0])
		return;
	/* The first failure is the error the core shows (about 200 characters survive): the
	 * CA's side is named by its CEP URL when no CA is published. */
	if (!strcmp(rule, "R-CA-01"))
		snprintf(c->first, sizeof(c->first), "%s: CEP %s publishes no enterprise CA (%s); "
			 "to fix: %s", rule, c->ms->cfg.cep_url, actual, fix);
	else
		snprintf(c->first, sizeof(c->first), "%s: %s: expected %s, actual %s; to fix: %s",
			 rule, what, expected, actual, fix);
}

/* Checks every configured template; @return 0 or -1 with the first failure in @p why. */
static int check_policy(struct mscert *ms, int verbose, char *why, size_t why_size)
{
	struct check_ctx c = {.ms = ms, .verbose = verbose, .skips = 1};
	int bad = 0;

	if (is_set(ms->cfg.web_server_template))
		bad += ms_check_template(&ms->pol, ms->cfg.web_server_template,
					 AMTPROV_PURPOSE_WEB_SERVER, on_check, &c);
	if (is_set(ms->cfg.client_8021x_template))
		bad += ms_check_template(&ms->pol, ms->cfg.client_8021x_template,
					 AMTPROV_PURPOSE_CLIENT_8021X, on_check, &c);
	if (!bad && !ms->cfg.ces_urls && !ms_policy_ces(&ms->pol, ms->auth)) {
		snprintf(c.first, sizeof(c.first), "the policy lists no CES URI for %s "
			 "authentication (clientAuthentication %u)", ms->cfg.auth, ms->auth);
		bad = 1;
	}
	if (bad)
		snprintf(why, why_size, "%s", c.first);
	return bad ? -1 : 0;
}

/* One line per CA of the policy: its CES URIs for our authentication, best first, and the
 * templates it issues (`amtprov plugin test` and the log show where requests go). */
static void log_cas(struct mscert *ms)
{
	for (int i = 0; i < ms->pol.n_ca; i++) {
		const struct ms_ca *c = &ms->pol.ca[i];
		const char *ces[MS_MAX_URI];
		char line[1024];
		size_t o = 0;
		int n = ms_ca_ces_list(c, ms->auth, ces, MS_MAX_URI);
		unsigned prio = 0;

		line[0] = '\0';
		for (int k = 0; k < ms->pol.n_tmpl && o < sizeof(line); k++)
			if (ms_ca_issues(c, &ms->pol.tmpl[k]))
				o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s", o ? "," : "",
						      ms->pol.tmpl[k].name);
		for (int k = 0; n && k < c->n_uri; k++)
			if (!strcmp(c->uris[k].uri, ces[0]))
				prio = c->uris[k].priority;
		ms->host->log(ms->host, AMTPROV_LOG_NOTICE,
			      "CA %d of %d: '%s' (cAReferenceID %d, enrollPermission %s), CES %s "
			      "priority %u%s, templates %s", i + 1, ms->pol.n_ca, c->name, c->ref,
			      c->enroll ? "true" : "false", n ? ces[0] : "none for this "
			      "authentication", prio, n > 1 ? " (and failover ones)" : "",
			      line[0] ? line : "none");
	}
}

/* Reads the policy when there is none, it expired, or @p force. @return 0, or -1 with @p why
 * and @p *outcome (UNREACHABLE: retry later; UNCONFIGURED: fix the CA or the site). */
static int load_policy(struct mscert *ms, int force, int verbose, uint32_t *outcome, char *why,
		       size_t why_size)
{
	struct call_auth ca;
	struct ms_http_resp r;
	struct ms_policy np;
	char *body;
	int rc;

	if (ms->have_pol && !force && ms->host->now(ms->host) < ms->pol_expires) {
		if (ms->pol_bad) {
			*outcome = AMTPROV_CA_UNCONFIGURED;
			snprintf(why, why_size, "%s", ms->pol_why);
			return -1;
		}
		return 0;
	}
	*outcome = AMTPROV_CA_UNREACHABLE;
	if (auth_open(ms, &ca, why, why_size)) {
		*outcome = AMTPROV_CA_UNCONFIGURED;
		return -1;
	}
	body = ms_build_get_policies(ms->cfg.cep_url, &ca.auth);
	rc = body ? ms_http_post(&ca.http, ms->cfg.cep_url, body, &r, why, why_size) : -1;
	if (body) {
		OPENSSL_cleanse(body, strlen(body));
		free(body);
	} else {
		snprintf(why, why_size, "out of memory");
	}
	auth_close(ms, &ca);
	if (rc)
		return -1;
	if (r.status == 401 || r.status == 403) {
		snprintf(why, why_size, "CEP %s refused the %s authentication (HTTP %ld)",
			 ms->cfg.cep_url, ms->cfg.auth, r.status);
		*outcome = AMTPROV_CA_UNCONFIGURED;
		ms_http_resp_free(&r);
		return -1;
	}
	if (r.status != 200 && r.status != 500) {
		snprintf(why, why_size, "CEP %s: HTTP %ld", ms->cfg.cep_url, r.status);
		ms_http_resp_free(&r);
		return -1;
	}
	rc = ms_parse_policies(r.body, r.len, &np, why, why_size);
	ms_http_resp_free(&r);
	if (rc) {
		char tmp[AMTPROV_CA_MESSAGE_SIZE];

		snprintf(tmp, sizeof(tmp), "CEP %s", why);
		snprintf(why, why_size, "%s", tmp);
		/* A refused UsernameToken is a fault too: nothing to retry until fixed. */
		if (strstr(why, "InvalidSecurity") || strstr(why, "FailedAuthentication"))
			*outcome = AMTPROV_CA_UNCONFIGURED;
		return -1;
	}
	if (np.not_changed && ms->have_pol) {
		ms_policy_free(&np); /* only with lastUpdate, which we never send */
	} else {
		ms_policy_free(&ms->pol);
		ms->pol = np;
	}
	ms->have_pol = 1;
	ms->pol_expires = ms->host->now(ms->host) +
			  (int64_t)(ms->pol.next_update_hours ? ms->pol.next_update_hours : 8) * 3600;
	log_cas(ms);
	ms->pol_bad = check_policy(ms, verbose, ms->pol_why, sizeof(ms->pol_why)) != 0;
	ms->host->log(ms->host, AMTPROV_LOG_NOTICE,
		      "enrollment policy %s: %d template(s), %d CA(s), CES %s; read again in %u h",
		      ms->pol.policy_id, ms->pol.n_tmpl, ms->pol.n_ca,
		      ms->cfg.ces_urls ? ms->cfg.ces_urls[0]
		      : ms_policy_ces(&ms->pol, ms->auth) ? ms_policy_ces(&ms->pol, ms->auth) : "none",
		      ms->pol.next_update_hours);
	if (ms->pol_bad) {
		*outcome = AMTPROV_CA_UNCONFIGURED;
		snprintf(why, why_size, "%s", ms->pol_why);
		return -1;
	}
	return 0;
}

static int ms_start(void *instance, struct amtprov_error *err)
{
	struct mscert *ms = instance;
	uint32_t outcome;
	char why[AMTPROV_CA_MESSAGE_SIZE] = "";

	if (load_policy(ms, 1, 1, &outcome, why, sizeof(why)) == 0)
		return AMTPROV_OK;
	/* The site is loaded to store that very credential (amtprov cred set): say so, and
	 * check the policy at the first request instead. */
	if (ms->cred_missing) {
		ms->host->log(ms->host, AMTPROV_LOG_WARNING, "%s; the enrollment policy and its "
			      "template rules are checked at the first request", why);
		return AMTPROV_OK;
	}
	/* The template rules are configuration errors; an unreachable CEP is retried. */
	return amtprov_error_set(err, outcome == AMTPROV_CA_UNCONFIGURED ? AMTPROV_E_CONFIG
									  : AMTPROV_E_IO,
				 MS_NAME, "%s", why);
}

/* ---- enrollment ---- */

static char *pem_of(const uint8_t *der, size_t len, char *acc)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (x && b && PEM_write_bio_X509(b, x) && (n = BIO_get_mem_data(b, &data)) > 0) {
		size_t have = acc ? strlen(acc) : 0;

		if ((out = realloc(acc, have + (size_t)n + 1))) {
			memcpy(out + have, data, (size_t)n);
			out[have + (size_t)n] = '\0';
			acc = NULL;
		}
	}
	X509_free(x);
	BIO_free(b);
	free(acc);
	return out;
}

/* The issuing chain (no leaf) from the CMC response, else the policy's CA certificate. */
static char *chain_of(const struct ms_ca *ca, const struct ms_rstr *r)
{
	const unsigned char *p = r->pkcs7;
	PKCS7 *p7 = r->pkcs7 ? d2i_PKCS7(NULL, &p, (long)r->pkcs7_len) : NULL;
	STACK_OF(X509) *certs = p7 && PKCS7_type_is_signed(p7) ? p7->d.sign->cert : NULL;
	char *out = NULL;
	int n = 0;

	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);
		unsigned char *der = NULL;
		int len = i2d_X509(x, &der);

		if (len > 0 && !((size_t)len == r->cert_len && !memcmp(der, r->cert_der, r->cert_len))) {
			out = pem_of(der, (size_t)len, out); /* frees the old text on failure */
			n += out != NULL;
		}
		OPENSSL_free(der);
	}
	PKCS7_free(p7);
	if (!n && ca && ca->der)
		out = pem_of(ca->der, ca->len, NULL);
	ERR_clear_error();
	return out;
}

static void set_msg(struct amtprov_ca_result *res, uint32_t outcome, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_msg(struct amtprov_ca_result *res, uint32_t outcome, const char *fmt, ...)
{
	va_list ap;

	res->outcome = outcome;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
}

/* A CES answer (issue or poll) into @p res. */
static void answer(struct mscert *ms, const struct ms_ca *ca, const char *ces,
		   const struct ms_http_resp *r, struct amtprov_ca_result *res)
{
	struct ms_rstr rs;
	char why[200] = "";

	if (r->status == 401 || r->status == 403) {
		set_msg(res, AMTPROV_CA_UNCONFIGURED, "CES %s refused the %s authentication (HTTP %ld)",
			ces, ms->cfg.auth, r->status);
		return;
	}
	if (r->status != 200 && r->status != 500) {
		set_msg(res, AMTPROV_CA_UNREACHABLE, "CES %s: HTTP %ld", ces, r->status);
		return;
	}
	if (ms_parse_rstr(r->body, r->len, &rs, why, sizeof(why))) {
		set_msg(res, AMTPROV_CA_UNREACHABLE, "CES %s: %s", ces, why);
		return;
	}
	snprintf(res->request_id, sizeof(res->request_id), "%s", rs.request_id);
	if (rs.fault) {
		uint32_t e = rs.error_code;
		uint32_t oc;

		if (rs.has_error_code && (e == MS_E_TEMPLATE_DENIED || e == MS_E_UNSUPPORTED_CERT_TYPE ||
					  e == MS_E_TEMPLATE_CONFLICT || e == MS_E_BAD_TEMPLATE_VERSION))
			oc = AMTPROV_CA_UNCONFIGURED; /* the template or its ACL: no retry storm */
		else if (rs.invalid_request || rs.has_error_code)
			oc = AMTPROV_CA_REJECTED;
		else if (!strcmp(rs.subcode, "InvalidSecurity") ||
			 !strcmp(rs.subcode, "FailedAuthentication"))
			oc = AMTPROV_CA_UNCONFIGURED;
		else
			oc = AMTPROV_CA_UNREACHABLE; /* e.g. WCF's InternalServiceFault */
		if (rs.has_error_code)
			set_msg(res, oc, "CA: %s (0x%08X%s%s)", rs.reason[0] ? rs.reason : "refused",
				(unsigned)e, rs.request_id[0] ? ", RequestID " : "", rs.request_id);
		else
			set_msg(res, oc, "CA: %s%s%s", rs.reason[0] ? rs.reason : "SOAP fault",
				rs.subcode[0] ? " - " : "", rs.subcode);
	} else if (rs.cert_der) {
		res->outcome = AMTPROV_CA_ISSUED;
		res->chain_pem = chain_of(ca, &rs); /* leaves the leaf out: before the move */
		res->cert_der = rs.cert_der;
		res->cert_len = rs.cert_len;
		rs.cert_der = NULL;
		snprintf(res->message, sizeof(res->message), "%s", rs.disposition);
	} else {
		/* Pending: poll the URI the CES gave (its own), with the RequestID, at this CA
		 * only: "REQUESTID,URI#CA NAME" (a URI here has no '#'). */
		const char *ref = https_url(rs.reference) ? rs.reference : ces;
		const char *cn = ca ? ca->name : "";
		size_t il = strlen(rs.request_id), rl = strlen(ref), cl = strlen(cn);

		if (il + 1 + rl + 1 + cl >= sizeof(res->cookie)) {
			set_msg(res, AMTPROV_CA_UNREACHABLE, "CES %s: pending, but its poll URI is "
				"too long to keep", ces);
			ms_rstr_free(&rs);
			return;
		}
		res->outcome = ms->cfg.poll_interval ? AMTPROV_CA_WAIT_WITH_DELAY : AMTPROV_CA_WAIT;
		res->delay_seconds = (uint32_t)ms->cfg.poll_interval;
		memcpy(res->cookie, rs.request_id, il);
		res->cookie[il] = ',';
		memcpy(res->cookie + il + 1, ref, rl);
		res->cookie[il + 1 + rl] = '\0';
		if (cl) {
			res->cookie[il + 1 + rl] = '#';
			memcpy(res->cookie + il + 2 + rl, cn, cl + 1);
		}
		snprintf(res->message, sizeof(res->message), "CA %.80s: %.100s (RequestID %.40s)", cn,
			 rs.disposition[0] ? rs.disposition : "pending", rs.request_id);
	}
	ms_rstr_free(&rs);
}

static const char *template_for(struct mscert *ms, const struct amtprov_ca_request *req)
{
	if (is_set(req->template_name))
		return req->template_name;
	return req->purpose == AMTPROV_PURPOSE_CLIENT_8021X ? ms->cfg.client_8021x_template
							    : ms->cfg.web_server_template;
}

/* Posts @p body (built with the call's authentication) to @p ces of CA @p cao (NULL:
 * unknown), reads the answer. */
static int exchange(struct mscert *ms, const struct ms_ca *cao, const char *ces, int query,
		    const char *arg, const struct amtprov_ca_request *req, const char *tmpl,
		    struct amtprov_ca_result *res)
{
	struct call_auth ca;
	struct ms_http_resp r;
	char why[AMTPROV_CA_MESSAGE_SIZE] = "";
	char *body;
	int rc;

	if (auth_open(ms, &ca, why, sizeof(why))) {
		set_msg(res, AMTPROV_CA_UNCONFIGURED, "%s", why);
		return AMTPROV_OK;
	}
	body = query ? ms_build_rst_query(ces, &ca.auth, arg)
		     : ms_build_rst_issue(ces, &ca.auth, req->csr_der, req->csr_len, tmpl);
	rc = body ? ms_http_post(&ca.http, ces, body, &r, why, sizeof(why)) : -1;
	if (body) {
		OPENSSL_cleanse(body, strlen(body));
		free(body);
	}
	auth_close(ms, &ca);
	if (!body) {
		set_msg(res, AMTPROV_CA_UNREACHABLE, "out of memory");
		return AMTPROV_OK;
	}
	if (rc) {
		set_msg(res, AMTPROV_CA_UNREACHABLE, "%s", why);
		return AMTPROV_OK;
	}
	answer(ms, cao, ces, &r, res);
	ms_http_resp_free(&r);
	return AMTPROV_OK;
}

/* Policy fresh and the request's template allowed; else @p res says why. */
static int ready(struct mscert *ms, const char *tmpl, uint32_t purpose,
		 struct amtprov_ca_result *res)
{
	char why[AMTPROV_CA_MESSAGE_SIZE] = "";
	uint32_t outcome;
	struct check_ctx c = {.ms = ms};

	if (!is_set(tmpl)) {
		set_msg(res, AMTPROV_CA_UNCONFIGURED, "%s: no template configured for this purpose",
			MS_NAME);
		return 0;
	}
	if (load_policy(ms, 0, 0, &outcome, why, sizeof(why))) {
		set_msg(res, outcome, "%s", why);
		return 0;
	}
	if (ms_check_template(&ms->pol, tmpl, purpose, on_check, &c)) {
		set_msg(res, AMTPROV_CA_UNCONFIGURED, "%s", c.first);
		return 0;
	}
	return 1;
}

/* The CES endpoints of CA @p ca, best first: the site's ces_urls in order (a site with one
 * CA and its own list), else the CA's URIs for the configured authentication by priority.
 * @return how many. */
static int ces_list(struct mscert *ms, const struct ms_ca *ca, const char *ces[MS_MAX_URI])
{
	int n = 0;

	if (!ms->cfg.ces_urls)
		return ms_ca_ces_list(ca, ms->auth, ces, MS_MAX_URI);
	while (n < MS_MAX_URI && ms->cfg.ces_urls[n]) {
		ces[n] = ms->cfg.ces_urls[n];
		n++;
	}
	return n;
}

/* The CAs a request for @p tmpl goes to, best first: those that issue it (cAReferences),
 * with Enroll permission, by CES priority. With ces_urls, the first of them only. */
static int target_cas(struct mscert *ms, const char *tmpl, const struct ms_ca *cas[MS_MAX_CA])
{
	const struct ms_template *t = ms_policy_template(&ms->pol, tmpl);
	int n;

	if (!t)
		return 0;
	n = ms_template_cas(&ms->pol, t, ms->auth, cas, MS_MAX_CA);
	if (ms->cfg.ces_urls && !n) { /* the site's own endpoints: any CA issuing it */
		for (int i = 0; i < ms->pol.n_ca && !n; i++)
			if (ms_ca_issues(&ms->pol.ca[i], t) && ms->pol.ca[i].enroll)
				cas[n++] = &ms->pol.ca[i];
	}
	return ms->cfg.ces_urls && n > 1 ? 1 : n;
}

static int ms_submit(void *instance, const struct amtprov_ca_request *req,
		     struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct mscert *ms = instance;
	const char *tmpl, *ces[MS_MAX_CA * MS_MAX_URI];
	const struct ms_ca *cas[MS_MAX_CA], *of[MS_MAX_CA * MS_MAX_URI];
	int n = 0, n_ca, rc = AMTPROV_OK;

	if (!req || !res || !req->csr_der || !req->csr_len)
		return amtprov_error_set(err, AMTPROV_E_INVALID, MS_NAME, "no request");
	if (req->purpose != AMTPROV_PURPOSE_WEB_SERVER &&
	    req->purpose != AMTPROV_PURPOSE_CLIENT_8021X) {
		set_msg(res, AMTPROV_CA_NOT_SUPPORTED, "%s: purpose %u is not served", MS_NAME,
			(unsigned)req->purpose);
		return AMTPROV_OK;
	}
	tmpl = template_for(ms, req);
	if (!ready(ms, tmpl, req->purpose, res))
		return AMTPROV_OK;
	n_ca = target_cas(ms, tmpl, cas);
	for (int k = 0; k < n_ca; k++) {
		int m = ces_list(ms, cas[k], ces + n);

		for (int i = 0; i < m; i++)
			of[n + i] = cas[k];
		n += m;
	}
	if (!n) {
		set_msg(res, AMTPROV_CA_UNCONFIGURED, "%s: no CA of the policy issues template '%s' "
			"with a CES for %s authentication", MS_NAME, tmpl, ms->cfg.auth);
		return AMTPROV_OK;
	}
	/* Failover (MS-XCEP: the CAs that issue the template, each with its CES URIs in
	 * priority order): a CES that cannot be reached or does not answer as CES (HTTP 5xx
	 * without a CA fault, another status, not SOAP) is UNREACHABLE, and the next one, of
	 * the same CA or the next CA, gets the same request. An answer of a CA itself (issued,
	 * pending, a refusal) is final: a refused request is not taken to another CA. */
	for (int i = 0; i < n; i++) {
		rc = exchange(ms, of[i], ces[i], 0, NULL, req, tmpl, res);
		if (rc != AMTPROV_OK || res->outcome != AMTPROV_CA_UNREACHABLE || i + 1 == n)
			break;
		ms->host->log(ms->host, AMTPROV_LOG_WARNING, "%s; trying the next CES, %s (CA '%s')",
			      res->message, ces[i + 1], of[i + 1]->name);
	}
	ERR_clear_error();
	return rc;
}

/* Splits a poll cookie "REQUESTID,URI[#CA NAME]". @return 0, or -1 when unusable. */
static int split_cookie(const char *cookie, char *id, size_t id_size, char *uri,
			size_t uri_size, char *ca, size_t ca_size)
{
	const char *comma = cookie ? strchr(cookie, ',') : NULL, *hash;
	size_t ul;

	if (!comma || comma == cookie || (size_t)(comma - cookie) >= id_size)
		return -1;
	hash = strchr(comma + 1, '#');
	ul = hash ? (size_t)(hash - comma - 1) : strlen(comma + 1);
	if (ul >= uri_size || (hash && strlen(hash + 1) >= ca_size))
		return -1;
	snprintf(id, id_size, "%.*s", (int)(comma - cookie), cookie);
	snprintf(uri, uri_size, "%.*s", (int)ul, comma + 1);
	snprintf(ca, ca_size, "%s", hash ? hash + 1 : "");
	return https_url(uri) ? 0 : -1;
}

/* The CA of a cookie: by its name, else (a cookie from before several CAs) the CA that
 * lists the URI. NULL when the policy no longer has it. */
static const struct ms_ca *cookie_ca(struct mscert *ms, const char *name, const char *uri)
{
	if (name[0])
		return ms_policy_ca(&ms->pol, name);
	for (int i = 0; i < ms->pol.n_ca; i++)
		for (int k = 0; k < ms->pol.ca[i].n_uri; k++)
			if (!strcmp(ms->pol.ca[i].uris[k].uri, uri))
				return &ms->pol.ca[i];
	return ms->pol.n_ca == 1 ? &ms->pol.ca[0] : NULL;
}

static int ms_poll(void *instance, const struct amtprov_ca_request *req, const char *cookie,
		   struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct mscert *ms = instance;
	char id[64], uri[512], name[128];
	const struct ms_ca *ca = NULL;
	uint32_t outcome;
	char why[AMTPROV_CA_MESSAGE_SIZE];
	int rc, have = 0;

	(void)req;
	if (!res)
		return amtprov_error_set(err, AMTPROV_E_INVALID, MS_NAME, "no result");
	if (split_cookie(cookie, id, sizeof(id), uri, sizeof(uri), name, sizeof(name))) {
		set_msg(res, AMTPROV_CA_REJECTED, "%s: unusable cookie (want REQUESTID,https-URI"
			"[#CA])", MS_NAME);
		return AMTPROV_OK;
	}
	have = !load_policy(ms, 0, 0, &outcome, why, sizeof(why)) || ms->have_pol;
	if (have)
		ca = cookie_ca(ms, name, uri);
	rc = exchange(ms, ca, uri, 1, id, NULL, NULL, res);
	/* The RequestID belongs to the CA that took the request, not to the CES web service:
	 * when that CES cannot be reached, ask the same CA's other CES endpoints (a pending
	 * answer from one of them names it, and the core keeps polling there). Never another
	 * CA: its RequestIDs are its own. */
	if (rc == AMTPROV_OK && res->outcome == AMTPROV_CA_UNREACHABLE) {
		const char *ces[MS_MAX_URI];
		int n = ca || ms->cfg.ces_urls ? ces_list(ms, ca, ces) : 0;

		for (int i = 0; i < n && res->outcome == AMTPROV_CA_UNREACHABLE; i++) {
			if (!strcmp(ces[i], uri))
				continue;
			ms->host->log(ms->host, AMTPROV_LOG_WARNING, "%s; polling RequestID %s at "
				      "the next CES, %s", res->message, id, ces[i]);
			rc = exchange(ms, ca, ces[i], 1, id, NULL, NULL, res);
			if (rc != AMTPROV_OK)
				break;
		}
		if (res->outcome == AMTPROV_CA_UNREACHABLE && ms->pol.n_ca > 1)
			ms->host->log(ms->host, AMTPROV_LOG_WARNING, "RequestID %s stays with CA '%s' "
				      "that took it: the policy's other CAs are not asked", id,
				      ca ? ca->name : name[0] ? name : uri);
	}
	if (!res->request_id[0])
		snprintf(res->request_id, sizeof(res->request_id), "%s", id);
	ERR_clear_error();
	return rc;
}

/* ---- revocation ---- */

/* The issuing CA's name (its CN, what AD CS calls the CA) from the certificate, else from
 * the issuer DN in RFC 4514 form. @return 0, or -1 when there is none. */
static int issuer_cn(const struct amtprov_ca_revocation *rev, char *out, size_t size)
{
	const unsigned char *p = rev->cert_der;
	X509 *x = p ? d2i_X509(NULL, &p, (long)rev->cert_len) : NULL;
	int n = x ? X509_NAME_get_text_by_NID(X509_get_issuer_name(x), NID_commonName, out,
					     (int)size) : -1;
	const char *s = rev->issuer;

	X509_free(x);
	ERR_clear_error();
	if (n > 0)
		return 0;
	/* RFC 4514: "CN=Contoso Issuing CA,DC=contoso,DC=com" (escaped commas kept). */
	for (; s && *s; s++) {
		if ((s == rev->issuer || s[-1] == ',') && !strncasecmp(s, "CN=", 3)) {
			size_t o = 0;

			for (s += 3; *s && *s != ',' && o + 1 < size; s++) {
				if (*s == '\\' && s[1])
					s++;
				out[o++] = *s;
			}
			out[o] = '\0';
			return o ? 0 : -1;
		}
	}
	return -1;
}

/* The WinRM endpoint of the CA that issued the certificate: its winrm_urls entry, or,
 * without winrm_urls, winrm_url (a site with one CA). NULL with @p res set when none. */
static const char *winrm_target(struct mscert *ms, const struct amtprov_ca_revocation *rev,
				struct amtprov_ca_result *res)
{
	char cn[128] = "";

	if (!ms->cfg.winrm_urls) {
		if (is_set(ms->cfg.winrm_url))
			return ms->cfg.winrm_url;
		set_msg(res, AMTPROV_CA_UNCONFIGURED, "%s: no winrm_url: revocation is not "
			"configured", MS_NAME);
		return NULL;
	}
	if (issuer_cn(rev, cn, sizeof(cn))) {
		set_msg(res, AMTPROV_CA_UNCONFIGURED, "%s: serial %s: no issuer CN to pick the CA's "
			"WinRM endpoint by (winrm_urls)", MS_NAME, rev->serial_hex);
		return NULL;
	}
	for (int i = 0; ms->cfg.winrm_urls[i]; i++) {
		const char *e = ms->cfg.winrm_urls[i], *eq = strchr(e, '=');

		if (eq && (size_t)(eq - e) == strlen(cn) && !strncasecmp(e, cn, strlen(cn)))
			return eq + 1;
	}
	set_msg(res, AMTPROV_CA_UNCONFIGURED, "%s: serial %s was issued by CA '%s', which has no "
		"winrm_urls entry; add \"%s=https://CAHOST:5986/wsman\"", MS_NAME,
		rev->serial_hex, cn, cn);
	return NULL;
}

static int ms_revoke(void *instance, const struct amtprov_ca_revocation *rev,
		     struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct mscert *ms = instance;
	struct amtprov_secret *pw = NULL;
	struct amtprov_error e;
	struct ms_http_opts o = {0};
	struct ms_winrm_result wr;
	char why[AMTPROV_CA_MESSAGE_SIZE] = "";
	const char *url;

	if (!rev || !res || !rev->serial_hex)
		return amtprov_error_set(err, AMTPROV_E_INVALID, MS_NAME, "no revocation");
	for (const char *s = rev->serial_hex; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'F') ||
		      (*s >= 'a' && *s <= 'f')) || s - rev->serial_hex > 80)
			return amtprov_error_set(err, AMTPROV_E_INVALID, MS_NAME,
						 "serial '%.40s' is not hex", rev->serial_hex);
	if (rev->reason > AMTPROV_REVOKE_CERTIFICATE_HOLD) {
		set_msg(res, AMTPROV_CA_NOT_SUPPORTED, "%s: revocation reason %u unknown", MS_NAME,
			(unsigned)rev->reason);
		return AMTPROV_OK;
	}
	if (!(url = winrm_target(ms, rev, res)))
		return AMTPROV_OK;
	amtprov_error_clear(&e);
	if (ms->host->secret_get(ms->host, ms->cfg.winrm_password, &pw, &e) != AMTPROV_OK) {
		set_msg(res, AMTPROV_CA_UNCONFIGURED, "credential '%s' (winrm_password): %s",
			ms->cfg.winrm_password, e.msg);
		return AMTPROV_OK;
	}
	o.ca_bundle = ms->cfg.ca_bundle;
	o.timeout_s = (long)ms->cfg.timeout_seconds;
	o.resolve = (const char *const *)ms->cfg.resolve;
	o.basic_user = ms->cfg.winrm_username;
	o.basic_password = pw->data;
	/* ca_config names the one CA of winrm_url; with winrm_urls the command runs on the
	 * issuing CA's own host, where certutil's default is that CA. */
	if (ms_winrm_revoke(&o, url, ms->cfg.winrm_urls ? "" : ms->cfg.ca_config, rev->serial_hex,
			    rev->reason, &wr, why, sizeof(why))) {
		set_msg(res, strstr(why, "HTTP 401") ? AMTPROV_CA_UNCONFIGURED
						     : AMTPROV_CA_UNREACHABLE, "%s", why);
	} else if (wr.exit_code == 0) {
		set_msg(res, AMTPROV_CA_ISSUED, "certutil -revoke %s %u: %s", rev->serial_hex,
			(unsigned)rev->reason, wr.out);
	} else if (wr.exit_code == 5) {
		set_msg(res, AMTPROV_CA_UNCONFIGURED, "certutil: access denied: '%s' needs Issue "
			"and Manage Certificates on the CA (R-CA-04): %s", ms->cfg.winrm_username,
			wr.out);
	} else {
		set_msg(res, AMTPROV_CA_REJECTED, "certutil -revoke exit %d: %s", wr.exit_code,
			wr.out);
	}
	ms->host->secret_free(ms->host, pw);
	ERR_clear_error();
	return AMTPROV_OK;
}

/* ---- roots and templates ---- */

static int ms_fetch_roots(void *instance, char **pem, struct amtprov_error *err)
{
	struct mscert *ms = instance;
	char why[AMTPROV_CA_MESSAGE_SIZE] = "";
	uint32_t outcome;

	if (load_policy(ms, 0, 0, &outcome, why, sizeof(why)) && !ms->have_pol)
		return amtprov_error_set(err, AMTPROV_E_IO, MS_NAME, "%s", why);
	*pem = NULL;
	for (int i = 0; i < ms->pol.n_ca; i++) /* every CA's: a device may hold any one's */
		if (ms->pol.ca[i].der && !(*pem = pem_of(ms->pol.ca[i].der, ms->pol.ca[i].len, *pem)))
			break;
	if (!*pem)
		return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, MS_NAME,
					 "the policy carries no usable CA certificate");
	return AMTPROV_OK;
}

static int ms_list_templates(void *instance, amtprov_ca_template_cb cb, void *ctx,
			     struct amtprov_error *err)
{
	struct mscert *ms = instance;
	char why[AMTPROV_CA_MESSAGE_SIZE] = "";
	uint32_t outcome;

	if (load_policy(ms, 1, 0, &outcome, why, sizeof(why)) && !ms->have_pol)
		return amtprov_error_set(err, AMTPROV_E_IO, MS_NAME, "%s", why);
	for (int i = 0; i < ms->pol.n_tmpl; i++) {
		const struct ms_template *t = &ms->pol.tmpl[i];
		struct amtprov_ca_template ct = {.struct_size = sizeof(ct), .name = t->name,
						 .schema_version = t->schema,
						 .min_key_bits = (int)t->min_key};

		for (int k = 0; k < t->n_eku; k++) {
			if (!strcmp(t->eku[k], "1.3.6.1.5.5.7.3.1"))
				ct.purposes |= 1u << AMTPROV_PURPOSE_WEB_SERVER;
			if (!strcmp(t->eku[k], "1.3.6.1.5.5.7.3.2"))
				ct.purposes |= 1u << AMTPROV_PURPOSE_CLIENT_8021X;
		}
		if (cb(ctx, &ct))
			break;
	}
	return AMTPROV_OK;
}

static const struct amtprov_ca_ops ms_ops = {
	.struct_size = sizeof(struct amtprov_ca_ops),
	.start = ms_start,
	.submit = ms_submit,
	.poll = ms_poll,
	.revoke = ms_revoke,
	.fetch_roots = ms_fetch_roots,
	.list_templates = ms_list_templates,
};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_CA, .name = MS_NAME, .version = "0.1.0",
		      .description = "Microsoft enterprise CA (AD CS) through CEP/CES "
				     "(MS-XCEP, MS-WSTEP), revocation through WinRM certutil",
		      .capabilities = ms_caps, .create = ms_create, .destroy = ms_destroy,
		      .ops = &ms_ops, .config_table = ms_config_table);
