/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_local.c - the ca-local plugin: an embedded OpenSSL CA for labs, demos and small sites.
 *
 * This file holds the descriptor, the configuration table, the lifecycle (create validates,
 * start creates or loads the CA, opens the issuance database, publishes a CRL and starts
 * the CRL endpoint; stop undoes it) and the CA operations. The work itself is in
 * ca_keys.c, ca_issue.c, ca_db.c, ca_crl.c and ca_http.c (see ca_local.h).
 *
 * Thread safety: every operation takes the instance lock, so the plugin declares
 * AMTPROV_PLUGIN_THREAD_SAFE and the core may call it from several workers at once.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

#include "ca_local.h"

static const struct amtprov_config_field cl_config_table[] = {
	{"dir", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, dir), 0, NULL, 0, 0,
	 "directory for the CA keys, certificates, issuance database and CRL "
	 "(default: the instance's state directory)"},
	{"key_type", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, key_type), 0, "rsa", 0, 0,
	 "CA key type: rsa or ec"},
	{"key_bits", AMTPROV_CFG_INT, offsetof(struct cl_cfg, key_bits), 0, "3072", 2048, 4096,
	 "RSA CA key size in bits"},
	{"curve", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, curve), 0, "P-256", 0, 0,
	 "EC CA key curve: P-256 or P-384"},
	{"digest", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, digest), 0, "sha256", 0, 0,
	 "signature digest: sha256, sha384 or sha512"},
	{"root_subject", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, root_subject), 0, NULL, 0, 0,
	 "root CA subject, RFC 4514 (default \"CN=amtprov Lab Root CA,O=amtprov <instance>\")"},
	{"issuing_subject", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, issuing_subject), 0, NULL,
	 0, 0,
	 "issuing CA subject, RFC 4514 (default \"CN=amtprov Lab Issuing CA,O=amtprov "
	 "<instance>\")"},
	{"root_validity_days", AMTPROV_CFG_INT, offsetof(struct cl_cfg, root_validity_days), 0,
	 "7300", 1, 36500, "validity of a new root CA"},
	{"issuing_validity_days", AMTPROV_CFG_INT, offsetof(struct cl_cfg, issuing_validity_days),
	 0, "3650", 1, 36500, "validity of a new issuing CA (never beyond the root's)"},
	{"web_server_validity_days", AMTPROV_CFG_INT,
	 offsetof(struct cl_cfg, web_server_validity_days), 0, "365", 1, 3650,
	 "validity of AMT web server certificates (R-WS-01)"},
	{"client_validity_days", AMTPROV_CFG_INT, offsetof(struct cl_cfg, client_validity_days), 0,
	 "365", 1, 3650, "validity of 802.1X client certificates (R-8021X-02)"},
	{"provisioning_validity_days", AMTPROV_CFG_INT,
	 offsetof(struct cl_cfg, provisioning_validity_days), 0, "365", 1, 3650,
	 "validity of provisioning certificates (R-PC-01)"},
	{"crl_validity_hours", AMTPROV_CFG_INT, offsetof(struct cl_cfg, crl_validity_hours), 0,
	 "168", 1, 8760, "CRL nextUpdate = thisUpdate + this many hours"},
	{"crl_url", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, crl_url), 0, "", 0, 0,
	 "http:// URL written into certificates' CRL distribution points "
	 "(default: derived from crl_listen; none if both are empty)"},
	{"crl_listen", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, crl_listen), 0, "", 0, 0,
	 "serve the CRL over HTTP on ADDRESS:PORT (numeric, e.g. 127.0.0.1:8089; port 0 picks "
	 "one); empty: no HTTP endpoint"},
	{"offline_file", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, offline_file), 0, NULL, 0, 0,
	 "while this file exists the CA takes no requests or revocations and answers "
	 "UNREACHABLE (a maintenance window; tests use it as a CA outage); CRLs stay served"},
	{"provisioning_marker", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, provisioning_marker),
	 0, "both", 0, 0,
	 "how provisioning certificates are marked for AMT: oid, ou or both (R-PC-01)"},
	{"import_root_cert", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, import_root_cert), 0, NULL,
	 0, 0, "use this existing root CA certificate (PEM or DER)"},
	{"import_root_key", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, import_root_key), 0, NULL,
	 0, 0, "its private key (PEM); needed when ca-local makes the issuing CA"},
	{"import_issuing_cert", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, import_issuing_cert), 0,
	 NULL, 0, 0, "use this existing issuing CA certificate (signed by import_root_cert)"},
	{"import_issuing_key", AMTPROV_CFG_STRING, offsetof(struct cl_cfg, import_issuing_key), 0,
	 NULL, 0, 0, "its private key (PEM)"},
	{"import_key_password", AMTPROV_CFG_CREDENTIAL,
	 offsetof(struct cl_cfg, import_key_password), 0, NULL, 0, 0,
	 "credential record holding the password of encrypted imported keys"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

static const char *const cl_caps[] = {
	AMTPROV_CAP_CA_SUBMIT,	 AMTPROV_CAP_CA_REVOKE,	      AMTPROV_CAP_CA_CRL,
	AMTPROV_CAP_CA_ROOTS,	 AMTPROV_CAP_CA_TEMPLATES,    AMTPROV_CAP_CA_PURPOSE_WEB,
	AMTPROV_CAP_CA_PURPOSE_8021X, AMTPROV_CAP_CA_PURPOSE_PROV, NULL,
};

/* *dst = "CN=amtprov Lab <what> CA,O=amtprov <instance>" */
static int default_subject(char **dst, const char *what, const char *inst)
{
	char *s = NULL;

	if (asprintf(&s, "CN=amtprov Lab %s CA,O=amtprov %s", what, inst) < 0)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

static int is_set(const char *s)
{
	return s && *s;
}

/* "127.0.0.1:8089" or "[::1]:8089" into listen_host / listen_port. */
static int parse_listen(struct ca_local *ca, struct amtprov_error *err)
{
	const char *s = ca->cfg.crl_listen, *colon, *host = s;
	size_t hlen;
	char *end;
	long port;

	if (!is_set(s))
		return AMTPROV_OK;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			goto bad;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			goto bad;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(ca->listen_host))
		goto bad;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
		goto bad;
	memcpy(ca->listen_host, host, hlen);
	ca->listen_host[hlen] = '\0';
	ca->listen_port = (int)port;
	return AMTPROV_OK;
bad:
	return amtprov_error_set(err, AMTPROV_E_CONFIG, "/crl_listen",
				 "'%s' is not ADDRESS:PORT with a numeric address "
				 "(e.g. 127.0.0.1:8089 or [::1]:8089)",
				 s);
}

static int validate(struct ca_local *ca, struct amtprov_error *err)
{
	struct cl_cfg *c = &ca->cfg;
	const char *inst = ca->host->instance_name(ca->host);
	X509_NAME *n;

	if (strcmp(c->key_type, "rsa") != 0 && strcmp(c->key_type, "ec") != 0)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/key_type",
					 "must be \"rsa\" or \"ec\", not '%s'", c->key_type);
	if (strcmp(c->curve, "P-256") != 0 && strcmp(c->curve, "P-384") != 0)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/curve",
					 "must be \"P-256\" or \"P-384\", not '%s'", c->curve);
	if (strcmp(c->digest, "sha256") == 0)
		ca->md = EVP_sha256();
	else if (strcmp(c->digest, "sha384") == 0)
		ca->md = EVP_sha384();
	else if (strcmp(c->digest, "sha512") == 0)
		ca->md = EVP_sha512();
	else
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/digest",
					 "must be sha256, sha384 or sha512, not '%s'", c->digest);
	if (strcmp(c->provisioning_marker, "oid") == 0)
		ca->marker = CL_MARK_OID;
	else if (strcmp(c->provisioning_marker, "ou") == 0)
		ca->marker = CL_MARK_OU;
	else if (strcmp(c->provisioning_marker, "both") == 0)
		ca->marker = CL_MARK_BOTH;
	else
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/provisioning_marker",
					 "must be \"oid\", \"ou\" or \"both\", not '%s'",
					 c->provisioning_marker);
	if ((!is_set(c->root_subject) &&
	     default_subject(&c->root_subject, "Root", inst) < 0) ||
	    (!is_set(c->issuing_subject) &&
	     default_subject(&c->issuing_subject, "Issuing", inst) < 0))
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	if (!(n = cl_name_parse(c->root_subject))) {
		ERR_clear_error();
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/root_subject",
					 "'%s' is not a distinguished name such as "
					 "\"CN=Lab Root CA,O=Example\"",
					 c->root_subject);
	}
	X509_NAME_free(n);
	if (!(n = cl_name_parse(c->issuing_subject))) {
		ERR_clear_error();
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/issuing_subject",
					 "'%s' is not a distinguished name such as "
					 "\"CN=Lab Issuing CA,O=Example\"",
					 c->issuing_subject);
	}
	X509_NAME_free(n);
	if (is_set(c->crl_url) && strncmp(c->crl_url, "http://", 7) != 0)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/crl_url",
					 "must be an http:// URL (CRL checkers fetch CRLs over "
					 "plain HTTP; the CRL is signed)");
	if (is_set(c->crl_url) && strpbrk(c->crl_url, " \t\r\n,"))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/crl_url",
					 "must not contain blanks or commas");
	if (is_set(c->import_root_key) && !is_set(c->import_root_cert))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/import_root_key",
					 "needs import_root_cert");
	if (is_set(c->import_issuing_cert) != is_set(c->import_issuing_key))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/import_issuing_cert",
					 "import_issuing_cert and import_issuing_key go together");
	if (is_set(c->import_issuing_cert) && !is_set(c->import_root_cert))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/import_root_cert",
					 "an imported issuing CA needs its root (import_root_cert)");
	if (is_set(c->import_root_cert) && !is_set(c->import_root_key) &&
	    !is_set(c->import_issuing_cert))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/import_root_cert",
					 "an imported root needs import_root_key (to make an issuing "
					 "CA) or import_issuing_cert + import_issuing_key");
	return parse_listen(ca, err);
}

static void cl_destroy(void *instance);

static int cl_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
	struct ca_local *ca = calloc(1, sizeof(*ca));
	const char *dir;
	int rc;

	if (!ca)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	ca->host = host;
	pthread_mutex_init(&ca->lock, NULL);
	pthread_mutex_init(&ca->crl_lock, NULL);
	rc = host->config_parse(host, config, cl_config_table, &ca->cfg, err);
	if (rc == AMTPROV_OK)
		rc = validate(ca, err);
	if (rc == AMTPROV_OK) {
		dir = is_set(ca->cfg.dir) ? ca->cfg.dir : host->state_dir(host);
		if (!dir)
			rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "/dir",
					       "no directory for the CA: set \"dir\" (amtprov "
					       "runs without a state directory)");
		else if (!(ca->dir = strdup(dir)))
			rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	if (rc != AMTPROV_OK) {
		cl_destroy(ca);
		return rc;
	}
	*instance = ca;
	return AMTPROV_OK;
}

/* Stops everything start() started; the HTTP thread is joined without holding ca->lock,
 * which its handler takes. */
static void shutdown_ca(struct ca_local *ca)
{
	cl_http_stop(ca->http);
	ca->http = NULL;
	pthread_mutex_lock(&ca->lock);
	ca->started = 0;
	cl_db_close(ca->db);
	ca->db = NULL;
	cl_keys_unload(ca);
	free(ca->crl_url);
	ca->crl_url = NULL;
	pthread_mutex_lock(&ca->crl_lock);
	free(ca->crl_der);
	ca->crl_der = NULL;
	ca->crl_len = 0;
	pthread_mutex_unlock(&ca->crl_lock);
	pthread_mutex_unlock(&ca->lock);
}

static void cl_destroy(void *instance)
{
	struct ca_local *ca = instance;

	if (!ca)
		return;
	shutdown_ca(ca);
	ca->host->config_free(ca->host, cl_config_table, &ca->cfg);
	free(ca->dir);
	pthread_mutex_destroy(&ca->lock);
	pthread_mutex_destroy(&ca->crl_lock);
	free(ca);
}

static int write_url_file(struct ca_local *ca, struct amtprov_error *err)
{
	char *path = pu_path(ca->dir, "crl.url", NULL), *line = NULL;
	int rc = AMTPROV_OK;

	if (!path)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	if (!is_set(ca->crl_url)) {
		unlink(path);
	} else if (asprintf(&line, "%s\n", ca->crl_url) < 0) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	} else {
		rc = cl_write_file(path, line, strlen(line), 0644, err);
	}
	free(line);
	free(path);
	return rc;
}

/* 127.0.0.0/8 is all loopback, not only 127.0.0.1 (the tests and the demo use 127.x.y.z). */
static int is_loopback(const char *numeric)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, numeric, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, numeric, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static int start_locked(struct ca_local *ca, struct amtprov_error *err)
{
	const struct amtprov_host *host = ca->host;
	char *dbpath, *root = NULL, *issuing = NULL;
	int rc, port = 0;

	if (mkdir(ca->dir, 0700) < 0 && errno != EEXIST)
		return amtprov_error_set(err, AMTPROV_E_IO, ca->dir, "cannot create: %s",
					 strerror(errno));
	if ((rc = cl_keys_load(ca, err)) != AMTPROV_OK)
		return rc;
	dbpath = pu_path(ca->dir, "issuance.db", NULL);
	if (!dbpath)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	rc = cl_db_open(dbpath, &ca->db, err);
	free(dbpath);
	if (rc != AMTPROV_OK)
		return rc;
	/* A fresh CRL at every start: its dates are current and it is signed by the issuing
	 * CA in use now, even if the CA was replaced while amtprov was down. */
	if ((rc = cl_crl_regenerate(ca, err)) != AMTPROV_OK)
		return rc;
	if (ca->listen_host[0] &&
	    (rc = cl_http_start(ca, &ca->http, &port, err)) != AMTPROV_OK)
		return rc;
	if (is_set(ca->cfg.crl_url))
		ca->crl_url = strdup(ca->cfg.crl_url);
	else if (ca->http)
		rc = asprintf(&ca->crl_url, strchr(ca->listen_host, ':') ? "http://[%s]:%d/%s.crl"
									  : "http://%s:%d/%s.crl",
			      ca->listen_host, port, host->instance_name(host)) < 0
			     ? AMTPROV_E_NOMEM
			     : AMTPROV_OK;
	if (rc != AMTPROV_OK || (is_set(ca->cfg.crl_url) && !ca->crl_url))
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	if ((rc = write_url_file(ca, err)) != AMTPROV_OK)
		return rc;
	root = cl_name_text(X509_get_subject_name(ca->root));
	issuing = cl_name_text(X509_get_subject_name(ca->issuing));
	host->log(host, AMTPROV_LOG_NOTICE,
		  "CA ready: root '%s', issuing '%s', %lld certificates issued so far, CRL %s",
		  root ? root : "?", issuing ? issuing : "?", cl_db_count(ca->db),
		  is_set(ca->crl_url) ? ca->crl_url : "in <dir>/crl.der only (no crl_listen)");
	if (ca->http && !is_loopback(ca->listen_host))
		host->log(host, AMTPROV_LOG_NOTICE, "the CRL endpoint listens on %s, not loopback",
			  ca->listen_host);
	free(root);
	free(issuing);
	ca->started = 1;
	return AMTPROV_OK;
}

static int cl_start(void *instance, struct amtprov_error *err)
{
	struct ca_local *ca = instance;
	int rc;

	pthread_mutex_lock(&ca->lock);
	rc = ca->started ? AMTPROV_OK : start_locked(ca, err);
	pthread_mutex_unlock(&ca->lock);
	if (rc != AMTPROV_OK)
		shutdown_ca(ca);
	return rc;
}

static void cl_stop(void *instance)
{
	shutdown_ca(instance);
}

static int not_started(struct amtprov_error *err)
{
	return amtprov_error_set(err, AMTPROV_E_STATE, CL_NAME, "the CA is not started");
}

/* 1 while the operator's offline switch is on: the answer is UNREACHABLE, so callers
 * queue and retry as for any outage. */
static int offline(struct ca_local *ca, struct amtprov_ca_result *res)
{
	if (!ca->cfg.offline_file || !*ca->cfg.offline_file || access(ca->cfg.offline_file, F_OK))
		return 0;
	res->outcome = AMTPROV_CA_UNREACHABLE;
	snprintf(res->message, sizeof(res->message), "%s: offline (%s exists)", CL_NAME,
		 ca->cfg.offline_file);
	return 1;
}

static int cl_submit(void *instance, const struct amtprov_ca_request *req,
		     struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct ca_local *ca = instance;
	int rc;

	if (!req || !res)
		return amtprov_error_set(err, AMTPROV_E_INVALID, CL_NAME, "no request");
	if (offline(ca, res))
		return AMTPROV_OK;
	pthread_mutex_lock(&ca->lock);
	rc = ca->started ? cl_issue(ca, req, res, err) : not_started(err);
	pthread_mutex_unlock(&ca->lock);
	if (rc == AMTPROV_OK && res->outcome != AMTPROV_CA_ISSUED)
		ca->host->log(ca->host, AMTPROV_LOG_WARNING, "request for '%s' refused: %s",
			      req->subject_fqdn ? req->subject_fqdn : "", res->message);
	return rc;
}

/* RFC 4514 texts compared loosely: case and blanks around separators may differ. */
static int same_dn_text(const char *a, const char *b)
{
	while (*a || *b) {
		while (*a == ' ')
			a++;
		while (*b == ' ')
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
		a++;
		b++;
	}
	return 1;
}

static int revoke_locked(struct ca_local *ca, const struct amtprov_ca_revocation *rev,
			 struct amtprov_ca_result *res, struct amtprov_error *err)
{
	char *serial = cl_serial_normalize(rev->serial_hex), *ours = NULL, *cert_serial = NULL;
	X509 *cert = NULL;
	int was = 0, rc = AMTPROV_OK;

	res->outcome = AMTPROV_CA_REJECTED;
	if (!serial) {
		snprintf(res->message, sizeof(res->message), "%s: '%.64s' is not a hex serial",
			 CL_NAME, rev->serial_hex ? rev->serial_hex : "");
		goto out;
	}
	if (rev->reason > AMTPROV_REVOKE_CERTIFICATE_HOLD) {
		snprintf(res->message, sizeof(res->message), "%s: unknown revocation reason %u",
			 CL_NAME, (unsigned)rev->reason);
		goto out;
	}
	ours = cl_name_text(X509_get_subject_name(ca->issuing));
	if (!ours) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	if (is_set(rev->issuer) && !same_dn_text(rev->issuer, ours)) {
		snprintf(res->message, sizeof(res->message),
			 "%s: issuer '%.80s' is not this CA ('%.80s')", CL_NAME, rev->issuer, ours);
		goto out;
	}
	if (rev->cert_der && rev->cert_len) {
		const unsigned char *p = rev->cert_der;

		cert = d2i_X509(NULL, &p, (long)rev->cert_len);
		cert_serial = cert ? cl_serial_hex(X509_get0_serialNumber(cert)) : NULL;
		ERR_clear_error();
		if (!cert_serial || strcmp(cert_serial, serial) != 0 ||
		    X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca->issuing))) {
			snprintf(res->message, sizeof(res->message),
				 "%s: the certificate given does not match serial %s of this CA",
				 CL_NAME, serial);
			goto out;
		}
	}
	rc = cl_db_revoke(ca->db, serial, (int)rev->reason, ca->host->now(ca->host), &was, err);
	if (rc == AMTPROV_E_NOT_FOUND) {
		rc = AMTPROV_OK;
		snprintf(res->message, sizeof(res->message), "%s: unknown serial %s", CL_NAME,
			 serial);
		goto out;
	}
	if (rc != AMTPROV_OK)
		goto out;
	/* Published at once, so CRL checkers see the revocation on their next fetch. */
	if (!was && (rc = cl_crl_regenerate(ca, err)) != AMTPROV_OK)
		goto out;
	res->outcome = AMTPROV_CA_ISSUED;
	snprintf(res->request_id, sizeof(res->request_id), "%s", serial);
	ca->host->log(ca->host, AMTPROV_LOG_INFO, was ? "serial %s was already revoked"
						      : "revoked serial %s (reason %u)",
		      serial, (unsigned)rev->reason);
out:
	OPENSSL_free(serial);
	OPENSSL_free(cert_serial);
	free(ours);
	X509_free(cert);
	return rc;
}

static int cl_revoke(void *instance, const struct amtprov_ca_revocation *rev,
		     struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct ca_local *ca = instance;
	int rc;

	if (!rev || !res)
		return amtprov_error_set(err, AMTPROV_E_INVALID, CL_NAME, "no revocation order");
	if (offline(ca, res))
		return AMTPROV_OK;
	pthread_mutex_lock(&ca->lock);
	rc = ca->started ? revoke_locked(ca, rev, res, err) : not_started(err);
	pthread_mutex_unlock(&ca->lock);
	return rc;
}

static int cl_fetch_roots(void *instance, char **pem, struct amtprov_error *err)
{
	struct ca_local *ca = instance;
	int rc = AMTPROV_OK;

	pthread_mutex_lock(&ca->lock);
	if (!ca->started)
		rc = not_started(err);
	else if (!(*pem = strdup(ca->roots_pem)))
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	pthread_mutex_unlock(&ca->lock);
	return rc;
}

static int cl_fetch_crl(void *instance, uint8_t **crl_der, size_t *crl_len,
			struct amtprov_error *err)
{
	struct ca_local *ca = instance;
	int rc;

	pthread_mutex_lock(&ca->lock);
	rc = ca->started ? cl_crl_refresh_if_due(ca, err) : not_started(err);
	if (rc == AMTPROV_OK)
		rc = cl_crl_copy(ca, crl_der, crl_len, err);
	pthread_mutex_unlock(&ca->lock);
	return rc;
}

static int cl_list_templates(void *instance, amtprov_ca_template_cb cb, void *ctx,
			     struct amtprov_error *err)
{
	static const uint32_t purposes[] = {AMTPROV_PURPOSE_WEB_SERVER,
					    AMTPROV_PURPOSE_CLIENT_8021X,
					    AMTPROV_PURPOSE_PROVISIONING};

	(void)instance;
	(void)err;
	for (size_t i = 0; i < sizeof(purposes) / sizeof(purposes[0]); i++) {
		struct amtprov_ca_template t = {
			.struct_size = sizeof(t),
			.name = cl_template_of(purposes[i]),
			/* Version 2: customized name, purpose, OID, validity (R-CA-02/03). */
			.schema_version = 2,
			.purposes = 1u << purposes[i],
			.min_key_bits = 2048,
		};

		if (cb(ctx, &t) != 0)
			break;
	}
	return AMTPROV_OK;
}

static const struct amtprov_ca_ops cl_ops = {
	.struct_size = sizeof(struct amtprov_ca_ops),
	.start = cl_start,
	.stop = cl_stop,
	.submit = cl_submit,
	.revoke = cl_revoke,
	.fetch_roots = cl_fetch_roots,
	.fetch_crl = cl_fetch_crl,
	.list_templates = cl_list_templates,
};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_CA, .flags = AMTPROV_PLUGIN_THREAD_SAFE,
		      .name = CL_NAME, .version = "1.0.0",
		      .description = "embedded OpenSSL CA (root + issuing CA, issuance database, "
				     "revocation, CRL over HTTP) for labs, demos and small sites",
		      .capabilities = cl_caps, .create = cl_create, .destroy = cl_destroy,
		      .ops = &cl_ops, .config_table = cl_config_table);
