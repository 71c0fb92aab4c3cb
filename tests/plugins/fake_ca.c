/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_ca.c - one fake CA plugin per certmonger outcome (STYLE 24).
 *
 * This file is compiled once per module with:
 *   FAKE_CA_NAME     the plugin name, equal to the file stem ("fake-ca-wait")
 *   FAKE_CA_OUTCOME  what submit answers (an enum amtprov_ca_outcome member)
 *   FAKE_CA_POLL     1: provides poll (capability ca:poll); ISSUED after N polls
 *   FAKE_CA_REVOKE   1: provides revoke (capability ca:revoke)
 *
 * Every instance is a real CA plugin: its configuration is read through host->config_parse
 * (so unknown keys and out-of-range values are refused at create), it logs its lifecycle
 * through host->log, and ISSUED answers carry a real certificate (fake_issue.c).
 *
 * With "break" set, every certificate it issues breaks that rule of the CA contract
 * (core/pki/ca_contract.c), so tests can check the core refuses it before AMT sees it.
 *
 * With "challenge" set it behaves like a SCEP server: csr_attributes (ca.h ABI 1.1) hands
 * the core a challengePassword attribute, submit refuses a request that does not carry it,
 * and a poll without the request (the core withholds requests with attributes) uses the
 * copy the CA kept at submit, as a real CA does.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include <amtprov/ca.h>

#include "fake_issue.h"

#ifndef FAKE_CA_NAME
#error "compile with -DFAKE_CA_NAME=\"fake-ca-...\""
#endif
#ifndef FAKE_CA_OUTCOME
#error "compile with -DFAKE_CA_OUTCOME=AMTPROV_CA_..."
#endif
#ifndef FAKE_CA_POLL
#define FAKE_CA_POLL 0
#endif
#ifndef FAKE_CA_REVOKE
#define FAKE_CA_REVOKE 0
#endif

struct fake_cfg {
	long long validity_days;
	char *reason;
	long long polls_until_issued;
	long long delay_seconds;
	int fail_start;
	char *challenge;
	char *crl_url;
	char *breaks;
};

static const struct amtprov_config_field fake_table[] = {
	{"validity_days", AMTPROV_CFG_INT, offsetof(struct fake_cfg, validity_days), 0, "365", 1,
	 3650, "validity of issued certificates, in days"},
	{"reason", AMTPROV_CFG_STRING, offsetof(struct fake_cfg, reason), 0, NULL, 0, 0,
	 "the CA's message for REJECTED, UNCONFIGURED and the like"},
	{"polls_until_issued", AMTPROV_CFG_INT, offsetof(struct fake_cfg, polls_until_issued), 0,
	 "1", 1, 100, "poll answers WAIT until this many polls were made"},
	{"delay_seconds", AMTPROV_CFG_INT, offsetof(struct fake_cfg, delay_seconds), 0, "30", 1,
	 86400, "delay_seconds of WAIT_WITH_DELAY answers"},
	{"fail_start", AMTPROV_CFG_BOOL, offsetof(struct fake_cfg, fail_start), 0, "false", 0, 0,
	 "true: start() fails with UNREACHABLE"},
	{"challenge", AMTPROV_CFG_STRING, offsetof(struct fake_cfg, challenge), 0, NULL, 0, 0,
	 "a challengePassword every request must carry (handed out by csr_attributes)"},
	{"crl_url", AMTPROV_CFG_STRING, offsetof(struct fake_cfg, crl_url), 0, NULL, 0, 0,
	 "CRL distribution point URI written into issued certificates"},
	{"break", AMTPROV_CFG_STRING, offsetof(struct fake_cfg, breaks), 0, NULL, 0, 0,
	 "a CA contract rule every issued certificate breaks: der, key, subject, san, eku, "
	 "chain or crl (tests of the core's contract check)"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

struct fake_ca {
	const struct amtprov_host *host;
	struct fake_cfg cfg;
	struct fake_issuer *issuer;
	struct fake_issue_opts opts;
	unsigned long next_cookie;
	long long polls;
	unsigned char *kept_csr; /* the last request, for polls without one */
	size_t kept_len;
};

static const char *const fake_caps[] = {
	AMTPROV_CAP_CA_SUBMIT,
	AMTPROV_CAP_CA_PURPOSE_WEB,
	AMTPROV_CAP_CA_PURPOSE_8021X,
#if FAKE_CA_POLL
	AMTPROV_CAP_CA_POLL,
#endif
#if FAKE_CA_REVOKE
	AMTPROV_CAP_CA_REVOKE,
#endif
	NULL,
};

static void fake_destroy(void *instance)
{
	struct fake_ca *ca = instance;

	if (!ca)
		return;
	/* Logged so lifecycle tests can check the teardown order. */
	ca->host->log(ca->host, AMTPROV_LOG_INFO, "destroy");
	ca->host->config_free(ca->host, fake_table, &ca->cfg);
	fake_issuer_free(ca->issuer);
	free(ca->kept_csr);
	free(ca);
}

static int fake_create(const struct amtprov_host *host, const struct json_t *config,
		       void **instance, struct amtprov_error *err)
{
	struct fake_ca *ca = calloc(1, sizeof(*ca));
	int rc;

	if (!ca)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	ca->host = host;
	rc = host->config_parse(host, config, fake_table, &ca->cfg, err);
	if (rc == AMTPROV_OK)
		rc = fake_issuer_new(host->instance_name(host), &ca->issuer, err);
	if (rc != AMTPROV_OK) {
		/* config_free also after a failed parse: the table parser may have filled some
		 * strings before it found the bad key. */
		host->config_free(host, fake_table, &ca->cfg);
		fake_issuer_free(ca->issuer);
		free(ca);
		return rc;
	}
	ca->opts.crl_url = ca->cfg.crl_url;
	ca->opts.breaks = ca->cfg.breaks;
	host->log(host, AMTPROV_LOG_INFO, "create");
	*instance = ca;
	return AMTPROV_OK;
}

static int fake_start(void *instance, struct amtprov_error *err)
{
	struct fake_ca *ca = instance;

	ca->host->log(ca->host, AMTPROV_LOG_INFO, "start");
	if (ca->cfg.fail_start)
		return amtprov_error_set(err, AMTPROV_E_UNREACHABLE, NULL,
					 "%s: the fake CA is configured to be offline",
					 FAKE_CA_NAME);
	return AMTPROV_OK;
}

static void fake_stop(void *instance)
{
	struct fake_ca *ca = instance;

	ca->host->log(ca->host, AMTPROV_LOG_INFO, "stop");
}

static void set_message(struct fake_ca *ca, struct amtprov_ca_result *res, const char *def)
{
	snprintf(res->message, sizeof(res->message), "%s",
		 ca->cfg.reason && *ca->cfg.reason ? ca->cfg.reason : def);
}

static void set_wait(struct fake_ca *ca, struct amtprov_ca_result *res, const char *cookie)
{
	res->outcome = FAKE_CA_OUTCOME == AMTPROV_CA_WAIT_WITH_DELAY ? AMTPROV_CA_WAIT_WITH_DELAY
								     : AMTPROV_CA_WAIT;
	snprintf(res->cookie, sizeof(res->cookie), "%s", cookie);
	if (res->outcome == AMTPROV_CA_WAIT_WITH_DELAY)
		res->delay_seconds = (uint32_t)ca->cfg.delay_seconds;
	snprintf(res->request_id, sizeof(res->request_id), "%s", cookie);
}

static int has_challenge(struct fake_ca *ca, const struct amtprov_ca_request *req)
{
	const unsigned char *p = req->csr_der;
	X509_REQ *x = d2i_X509_REQ(NULL, &p, (long)req->csr_len);
	int i = x ? X509_REQ_get_attr_by_NID(x, NID_pkcs9_challengePassword, -1) : -1;
	ASN1_TYPE *v = i >= 0 ? X509_ATTRIBUTE_get0_type(X509_REQ_get_attr(x, i), 0) : NULL;
	const ASN1_STRING *s = v && (v->type == V_ASN1_PRINTABLESTRING ||
				     v->type == V_ASN1_UTF8STRING) ? v->value.asn1_string : NULL;
	int ok = s && (size_t)ASN1_STRING_length(s) == strlen(ca->cfg.challenge) &&
		 memcmp(ASN1_STRING_get0_data(s), ca->cfg.challenge, strlen(ca->cfg.challenge)) == 0;

	X509_REQ_free(x);
	return ok;
}

static int fake_csr_attributes(void *instance, const struct amtprov_ca_request *req,
			       struct amtprov_secret **attrs, struct amtprov_error *err)
{
	struct fake_ca *ca = instance;
	const struct amtprov_host *h = ca->host;
	X509_ATTRIBUTE *a;
	unsigned char *p;
	int n;

	(void)req;
	*attrs = NULL;
	if (!ca->cfg.challenge || !*ca->cfg.challenge)
		return AMTPROV_OK;
	a = X509_ATTRIBUTE_create_by_NID(NULL, NID_pkcs9_challengePassword, MBSTRING_UTF8,
					 (const unsigned char *)ca->cfg.challenge, -1);
	n = a ? i2d_X509_ATTRIBUTE(a, NULL) : -1;
	*attrs = n > 0 ? h->secret_new(h, (size_t)n) : NULL;
	if (*attrs) {
		p = (unsigned char *)(*attrs)->data;
		(*attrs)->len = (size_t)i2d_X509_ATTRIBUTE(a, &p);
	}
	X509_ATTRIBUTE_free(a);
	return *attrs ? AMTPROV_OK
		      : amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "%s: encoding the challenge",
					  FAKE_CA_NAME);
}

static int fake_submit(void *instance, const struct amtprov_ca_request *req,
		       struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct fake_ca *ca = instance;
	char cookie[64];

	if (!req || !req->csr_der || req->csr_len == 0)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "%s: no request",
					 FAKE_CA_NAME);
	ca->host->log(ca->host, AMTPROV_LOG_DEBUG, "submit for %s",
		      req->subject_fqdn ? req->subject_fqdn : "(no fqdn)");
	if (ca->cfg.challenge && *ca->cfg.challenge && !has_challenge(ca, req)) {
		res->outcome = AMTPROV_CA_REJECTED;
		set_message(ca, res, FAKE_CA_NAME ": the request lacks the right challengePassword");
		return AMTPROV_OK;
	}
	free(ca->kept_csr);
	ca->kept_csr = malloc(req->csr_len);
	ca->kept_len = ca->kept_csr ? req->csr_len : 0;
	if (ca->kept_csr)
		memcpy(ca->kept_csr, req->csr_der, req->csr_len);
	switch (FAKE_CA_OUTCOME) {
	case AMTPROV_CA_ISSUED:
		return fake_issuer_issue(ca->issuer, req, &ca->opts, ca->cfg.validity_days,
					 ca->host->now(ca->host), res, err);
	case AMTPROV_CA_WAIT:
	case AMTPROV_CA_WAIT_WITH_DELAY:
		snprintf(cookie, sizeof(cookie), "%s-%lu", FAKE_CA_NAME, ++ca->next_cookie);
		set_wait(ca, res, cookie);
		return AMTPROV_OK;
	case AMTPROV_CA_REJECTED:
		res->outcome = AMTPROV_CA_REJECTED;
		set_message(ca, res, FAKE_CA_NAME ": request denied by CA policy");
		return AMTPROV_OK;
	case AMTPROV_CA_UNREACHABLE:
		res->outcome = AMTPROV_CA_UNREACHABLE;
		set_message(ca, res, FAKE_CA_NAME ": CA is offline");
		return AMTPROV_OK;
	case AMTPROV_CA_UNCONFIGURED:
		res->outcome = AMTPROV_CA_UNCONFIGURED;
		set_message(ca, res, FAKE_CA_NAME ": no template configured for this purpose");
		return AMTPROV_OK;
	case AMTPROV_CA_NOT_SUPPORTED:
		res->outcome = AMTPROV_CA_NOT_SUPPORTED;
		set_message(ca, res, FAKE_CA_NAME ": this CA cannot issue such certificates");
		return AMTPROV_OK;
	case AMTPROV_CA_NEED_REKEY:
		res->outcome = AMTPROV_CA_NEED_REKEY;
		set_message(ca, res, FAKE_CA_NAME ": key too weak, submit a new key");
		return AMTPROV_OK;
	default:
		return amtprov_error_set(err, AMTPROV_E_INTERNAL, NULL, "%s: bad build",
					 FAKE_CA_NAME);
	}
}

#if FAKE_CA_POLL
static int fake_poll(void *instance, const struct amtprov_ca_request *req, const char *cookie,
		     struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct fake_ca *ca = instance;
	size_t n = strlen(FAKE_CA_NAME);

	/* Only cookies this plugin handed out are known to it, as with a real CA. */
	if (!cookie || strncmp(cookie, FAKE_CA_NAME "-", n + 1) != 0) {
		res->outcome = AMTPROV_CA_REJECTED;
		snprintf(res->message, sizeof(res->message), "%s: unknown request '%s'",
			 FAKE_CA_NAME, cookie ? cookie : "");
		return AMTPROV_OK;
	}
	if (++ca->polls < ca->cfg.polls_until_issued) {
		set_wait(ca, res, cookie);
		return AMTPROV_OK;
	}
	if (req && !req->csr_der && ca->kept_csr) {
		/* The core withheld the request (it carries attributes): use the CA's copy. */
		struct amtprov_ca_request kept = *req;

		kept.csr_der = ca->kept_csr;
		kept.csr_len = ca->kept_len;
		return fake_issuer_issue(ca->issuer, &kept, &ca->opts, ca->cfg.validity_days,
					 ca->host->now(ca->host), res, err);
	}
	return fake_issuer_issue(ca->issuer, req, &ca->opts, ca->cfg.validity_days,
				 ca->host->now(ca->host), res, err);
}
#endif

#if FAKE_CA_REVOKE
static int fake_revoke(void *instance, const struct amtprov_ca_revocation *rev,
		       struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct fake_ca *ca = instance;

	if (!rev || !rev->serial_hex)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "%s: no serial number",
					 FAKE_CA_NAME);
	if (FAKE_CA_OUTCOME == AMTPROV_CA_UNREACHABLE) {
		res->outcome = AMTPROV_CA_UNREACHABLE;
		set_message(ca, res, FAKE_CA_NAME ": CA is offline");
		return AMTPROV_OK;
	}
	ca->host->log(ca->host, AMTPROV_LOG_INFO, "revoked serial %s (reason %u)", rev->serial_hex,
		      (unsigned)rev->reason);
	res->outcome = AMTPROV_CA_ISSUED;
	return AMTPROV_OK;
}
#endif

static const struct amtprov_ca_ops fake_ops = {
	.struct_size = sizeof(struct amtprov_ca_ops),
	.start = fake_start,
	.stop = fake_stop,
	.submit = fake_submit,
#if FAKE_CA_POLL
	.poll = fake_poll,
#endif
#if FAKE_CA_REVOKE
	.revoke = fake_revoke,
#endif
	.csr_attributes = fake_csr_attributes,
};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_CA, .name = FAKE_CA_NAME, .version = "0.1.0",
		      .description = "test CA answering " FAKE_CA_NAME,
		      .capabilities = fake_caps, .create = fake_create, .destroy = fake_destroy,
		      .ops = &fake_ops, .config_table = fake_table);
