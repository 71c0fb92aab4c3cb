/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_external.c - the ca-external plugin: certificates from CAs amtprov does not run.
 *
 * Descriptor, configuration table, lifecycle and the CA ops; the work is in ce_reqfile.c
 * (request files) and ce_scep.c (SCEP). See ce.h and docs/ca-external.md.
 *
 * Thread safety: after create the instance is read-only; every operation works on its own
 * files (named by a random or per-key id) and its own libcurl handle, so the plugin declares
 * AMTPROV_PLUGIN_THREAD_SAFE and slow SCEP servers do not serialize the worker pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/provider.h>

#include "ce.h"

static const struct amtprov_config_field ce_config_table[] = {
	{"mode", AMTPROV_CFG_STRING, offsetof(struct ce_cfg, mode), 1, NULL, 0, 0,
	 "\"request-file\" (requests and answers as files) or \"scep\" (RFC 8894)"},
	{"outbox", AMTPROV_CFG_STRING, offsetof(struct ce_cfg, outbox), 0, NULL, 0, 0,
	 "request-file: directory the requests are written to (default <state>/outbox)"},
	{"inbox", AMTPROV_CFG_STRING, offsetof(struct ce_cfg, inbox), 0, NULL, 0, 0,
	 "request-file: directory the CA's answers are read from (default <state>/inbox)"},
	{"p12_password", AMTPROV_CFG_CREDENTIAL, offsetof(struct ce_cfg, p12_password), 0, NULL, 0,
	 0, "request-file: credential record with the password of returned PKCS#12 files"},
	{"ca_chain", AMTPROV_CFG_STRING, offsetof(struct ce_cfg, ca_chain), 0, NULL, 0, 0,
	 "request-file: PEM file with the external CA's chain, returned by fetch_roots"},
	{"url", AMTPROV_CFG_STRING, offsetof(struct ce_cfg, url), 0, NULL, 0, 0,
	 "scep: the SCEP URL, e.g. http://ca.example.com/scep or .../certsrv/mscep/mscep.dll"},
	{"challenge", AMTPROV_CFG_CREDENTIAL, offsetof(struct ce_cfg, challenge), 0, NULL, 0, 0,
	 "scep: credential record with the challenge password; set it when the server needs "
	 "one, so requests built without it are refused with a clear reason"},
	{"ca_ident", AMTPROV_CFG_STRING, offsetof(struct ce_cfg, ca_ident), 0, "", 0, 0,
	 "scep: CA identifier sent with GetCACaps/GetCACert (empty for most servers)"},
	{"ca_fingerprint", AMTPROV_CFG_STRING, offsetof(struct ce_cfg, ca_fingerprint), 0, "", 0, 0,
	 "scep: SHA-256 fingerprint (hex, ':' allowed) one GetCACert certificate must have"},
	{"timeout_seconds", AMTPROV_CFG_INT, offsetof(struct ce_cfg, timeout_seconds), 0, "30", 1,
	 600, "scep: HTTP timeout per exchange"},
	{"poll_interval", AMTPROV_CFG_INT, offsetof(struct ce_cfg, poll_interval), 0, "300", 0,
	 604800,
	 "seconds before the core polls a pending request again (WAIT_WITH_DELAY); 0: the "
	 "core's own schedule (WAIT)"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

static const char *const ce_caps[] = {
	AMTPROV_CAP_CA_SUBMIT,	      AMTPROV_CAP_CA_POLL,	   AMTPROV_CAP_CA_ROOTS,
	AMTPROV_CAP_CA_PURPOSE_WEB,  AMTPROV_CAP_CA_PURPOSE_8021X, AMTPROV_CAP_CA_PURPOSE_PROV,
	NULL,
};

static int is_set(const char *s)
{
	return s && *s;
}

static int parse_fingerprint(struct ca_external *ce, struct amtprov_error *err)
{
	const char *s = ce->cfg.ca_fingerprint;
	size_t n = 0;

	if (!is_set(s))
		return AMTPROV_OK;
	for (; *s; s++) {
		int v;

		if (*s == ':' || *s == ' ')
			continue;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			v = *s - 'A' + 10;
		else
			break;
		if (n >= 64)
			break;
		ce->fpr[n / 2] = (uint8_t)(n % 2 ? ce->fpr[n / 2] | v : v << 4);
		n++;
	}
	if (*s || n != 64)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/ca_fingerprint",
					 "must be a SHA-256 fingerprint: 64 hex digits "
					 "(colons allowed)");
	ce->have_fpr = 1;
	return AMTPROV_OK;
}

static int validate(struct ca_external *ce, struct amtprov_error *err)
{
	struct ce_cfg *c = &ce->cfg;

	if (strcmp(c->mode, "request-file") == 0)
		ce->mode = CE_MODE_REQUEST_FILE;
	else if (strcmp(c->mode, "scep") == 0)
		ce->mode = CE_MODE_SCEP;
	else
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/mode",
					 "must be \"request-file\" or \"scep\", not '%s'", c->mode);
	if (ce->mode == CE_MODE_SCEP) {
		if (!is_set(c->url))
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/url",
						 "scep mode needs the SCEP server URL");
		if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0)
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/url",
						 "must be an http:// or https:// URL");
		if (strpbrk(c->url, " \t\r\n#"))
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/url",
						 "must not contain blanks or a fragment");
		if (is_set(c->outbox) || is_set(c->inbox) || is_set(c->p12_password) ||
		    is_set(c->ca_chain))
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/mode",
						 "outbox, inbox, p12_password and ca_chain belong "
						 "to request-file mode");
		return parse_fingerprint(ce, err);
	}
	if (is_set(c->url) || is_set(c->challenge) || is_set(c->ca_ident) ||
	    is_set(c->ca_fingerprint))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/mode",
					 "url, challenge, ca_ident and ca_fingerprint belong to "
					 "scep mode");
	return AMTPROV_OK;
}

static void ce_destroy(void *instance)
{
	struct ca_external *ce = instance;

	if (!ce)
		return;
	ce->host->config_free(ce->host, ce_config_table, &ce->cfg);
	free(ce->outbox);
	free(ce->inbox);
	free(ce->state);
	if (ce->mode == CE_MODE_SCEP)
		curl_global_cleanup();
	for (int i = 0; i < 2; i++)
		if (ce->legacy_provs[i])
			OSSL_PROVIDER_unload(ce->legacy_provs[i]);
	OSSL_LIB_CTX_free(ce->legacy_ctx);
	free(ce);
}

static char *dir_or_default(const char *set, const char *state, const char *leaf)
{
	return is_set(set) ? strdup(set) : pu_path(state, leaf, NULL);
}

static int ce_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
	struct ca_external *ce = calloc(1, sizeof(*ce));
	const char *state;
	int rc;

	if (!ce)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	ce->host = host;
	rc = host->config_parse(host, config, ce_config_table, &ce->cfg, err);
	if (rc == AMTPROV_OK)
		rc = validate(ce, err);
	state = host->state_dir(host);
	if (rc == AMTPROV_OK && !state)
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, NULL,
				       "ca-external needs a state directory (pending requests)");
	if (rc == AMTPROV_OK && !(ce->state = strdup(state)))
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	if (rc == AMTPROV_OK && ce->mode == CE_MODE_REQUEST_FILE &&
	    (!(ce->outbox = dir_or_default(ce->cfg.outbox, state, "outbox")) ||
	     !(ce->inbox = dir_or_default(ce->cfg.inbox, state, "inbox"))))
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	if (rc == AMTPROV_OK && ce->mode == CE_MODE_SCEP) {
		/* Reference-counted by libcurl; paired with the cleanup in destroy. */
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			ce->mode = 0;
			rc = amtprov_error_set(err, AMTPROV_E_INTERNAL, CE_NAME,
					       "cannot initialise libcurl");
		}
		/* Optional: without it only DES-encrypted answers fail, with a clear message. */
		if (rc == AMTPROV_OK && (ce->legacy_ctx = OSSL_LIB_CTX_new()) &&
		    (!(ce->legacy_provs[0] = OSSL_PROVIDER_load(ce->legacy_ctx, "default")) ||
		     !(ce->legacy_provs[1] = OSSL_PROVIDER_load(ce->legacy_ctx, "legacy")))) {
			if (ce->legacy_provs[0])
				OSSL_PROVIDER_unload(ce->legacy_provs[0]);
			ce->legacy_provs[0] = NULL;
			OSSL_LIB_CTX_free(ce->legacy_ctx);
			ce->legacy_ctx = NULL;
		}
		ERR_clear_error();
	}
	if (rc != AMTPROV_OK) {
		ce_destroy(ce);
		return rc;
	}
	*instance = ce;
	return AMTPROV_OK;
}

static int ce_start(void *instance, struct amtprov_error *err)
{
	struct ca_external *ce = instance;
	int rc;

	if (ce->mode != CE_MODE_REQUEST_FILE) {
		ce->host->log(ce->host, AMTPROV_LOG_INFO, "SCEP enrollment at %s", ce->cfg.url);
		return AMTPROV_OK;
	}
	/* The outbox is read by whoever carries requests to the CA (0755); the inbox is
	 * written by them, so its permissions are the administrator's choice: only create it. */
	if ((rc = pu_mkdir(ce->outbox, 0755, err)) != AMTPROV_OK ||
	    (rc = pu_mkdir(ce->inbox, 0750, err)) != AMTPROV_OK)
		return rc;
	ce->host->log(ce->host, AMTPROV_LOG_INFO, "request files: outbox %s, inbox %s",
		      ce->outbox, ce->inbox);
	return AMTPROV_OK;
}

/* 1 when the request is one this plugin handles; else fills @p res (or @p err). */
static int check_request(const struct amtprov_ca_request *req, struct amtprov_ca_result *res,
			 struct amtprov_error *err, int *rc)
{
	*rc = AMTPROV_OK;
	if (!req || !res) {
		*rc = amtprov_error_set(err, AMTPROV_E_INVALID, CE_NAME, "no request");
		return 0;
	}
	if (req->purpose < AMTPROV_PURPOSE_WEB_SERVER || req->purpose > AMTPROV_PURPOSE_PROVISIONING) {
		res->outcome = AMTPROV_CA_NOT_SUPPORTED;
		snprintf(res->message, sizeof(res->message), "%s: unknown purpose %u", CE_NAME,
			 (unsigned)req->purpose);
		return 0;
	}
	return 1;
}

static int ce_submit(void *instance, const struct amtprov_ca_request *req,
		     struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct ca_external *ce = instance;
	int rc;

	if (!check_request(req, res, err, &rc))
		return rc;
	rc = ce->mode == CE_MODE_SCEP ? ce_scep_submit(ce, req, res, err)
				      : ce_rf_submit(ce, req, res, err);
	ERR_clear_error();
	return rc;
}

static int ce_poll(void *instance, const struct amtprov_ca_request *req, const char *cookie,
		   struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct ca_external *ce = instance;
	int rc;

	if (!res)
		return amtprov_error_set(err, AMTPROV_E_INVALID, CE_NAME, "no result");
	rc = ce->mode == CE_MODE_SCEP ? ce_scep_poll(ce, req, cookie, res, err)
				      : ce_rf_poll(ce, req, cookie, res, err);
	ERR_clear_error();
	return rc;
}

static int ce_fetch_roots(void *instance, char **pem, struct amtprov_error *err)
{
	struct ca_external *ce = instance;
	STACK_OF(X509) *certs = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	char *out = NULL;
	int rc;

	if (ce->mode == CE_MODE_SCEP)
		return ce_scep_roots(ce, pem, err);
	if (!is_set(ce->cfg.ca_chain))
		return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, "/ca_chain",
					 "no ca_chain file configured for this external CA");
	if ((rc = ce_read_file(ce->cfg.ca_chain, &data, &len, err)) != AMTPROV_OK)
		return rc;
	rc = ce_certs_load(data, len, ce->cfg.ca_chain, &certs, err);
	free(data);
	for (int i = 0; rc == AMTPROV_OK && i < sk_X509_num(certs); i++)
		if (ce_pem_append(&out, sk_X509_value(certs, i)) < 0)
			rc = amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	sk_X509_pop_free(certs, X509_free);
	if (rc != AMTPROV_OK) {
		free(out);
		return rc;
	}
	*pem = out;
	return AMTPROV_OK;
}

/* ABI 1.1: SCEP's challenge goes inside the request, before it is signed (by amtprov, or by
 * AMT for keys generated there). Request files carry nothing the core must add. */
static int ce_csr_attributes(void *instance, const struct amtprov_ca_request *req,
			     struct amtprov_secret **attrs, struct amtprov_error *err)
{
	struct ca_external *ce = instance;
	int rc;

	(void)req;
	*attrs = NULL;
	if (ce->mode != CE_MODE_SCEP)
		return AMTPROV_OK;
	rc = ce_scep_csr_attributes(ce, attrs, err);
	ERR_clear_error();
	return rc;
}

static const struct amtprov_ca_ops ce_ops = {
	.struct_size = sizeof(struct amtprov_ca_ops),
	.start = ce_start,
	.submit = ce_submit,
	.poll = ce_poll,
	.fetch_roots = ce_fetch_roots,
	.csr_attributes = ce_csr_attributes,
};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_CA, .flags = AMTPROV_PLUGIN_THREAD_SAFE,
		      .name = CE_NAME, .version = "1.0.0",
		      .description = "external CAs: request files (commercial CAs, PEM/PKCS#12 "
				     "answers) and SCEP enrollment (RFC 8894)",
		      .capabilities = ce_caps, .create = ce_create, .destroy = ce_destroy,
		      .ops = &ce_ops, .config_table = ce_config_table);
