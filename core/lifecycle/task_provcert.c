/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provisioning certificate check (R-PC-06/07/08), daily by default:
 *   - only the certificate the manifest names counts (R-PC-07): a new one takes effect
 *     when the manifest names it and amtprovd reloads;
 *   - 7210 (warning) while 40 days or fewer remain, once a day, until it is replaced by one
 *     with more than 40 days or fewer than 15 remain; then 7211 (error) once a day until
 *     it is replaced by one with more than 15 days (R-PC-06; days configurable);
 *   - a certificate recorded as revoked is reported (8207) daily: provisioning is stopped
 *     (flow.c) until a valid one is configured (R-PC-08).
 * "Once a day" is kept by the messages themselves: one is not repeated within 23 hours,
 * so an on-demand run or a restart does not send a second one the same day.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509.h>

#include "preflight.h"
#include "pki.h"
#include "provcert.h"
#include "scheduler.h"
#include "status.h"
#include "util.h"

#define ONCE_A_DAY_SECONDS (23 * 3600)

int provcert_from_pem(const char *pem, size_t len, struct provcert_info *out,
		      struct amtprov_error *err)
{
	STACK_OF(X509) *certs = NULL;
	X509 *leaf;
	int64_t nb = 0;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = pki_load_pem(pem, len, "provisioning certificate", &certs, NULL, err);
	if (rc)
		return rc;
	leaf = sk_X509_value(certs, 0);
	rc = pki_thumbprint(leaf, PKI_HASH_SHA256, out->sha256, sizeof(out->sha256), err);
	if (rc == AMTPROV_OK && pki_validity(leaf, &nb, &out->not_after) != 0)
		rc = amtprov_error_set(err, AMTPROV_E_PARSE, "provisioning certificate",
				       "its validity cannot be read");
	pki_name(leaf, 0, out->subject, sizeof(out->subject));
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	util_strlcpy(out->serial_hex, hex ? hex : "00", sizeof(out->serial_hex));
	OPENSSL_free(hex);
	BN_free(bn);
	sk_X509_pop_free(certs, X509_free);
	return rc;
}

int provcert_configured(struct site *s, struct provcert_info *out, struct amtprov_error *err)
{
	struct manifest *m = site_manifest(s);
	struct plugin_host *ph = site_plugins(s);
	struct plugin_instance *cs = m->credstore && ph ? plugin_host_find(ph, m->credstore) : NULL;
	struct preflight *pf = NULL;
	char *pem = NULL;
	size_t len = 0;
	int rc = preflight_load_manifest(m, cs, &pf, err);

	if (rc == AMTPROV_OK)
		rc = preflight_chain_pem(pf, &pem, &len, err);
	if (rc == AMTPROV_OK)
		rc = provcert_from_pem(pem, len, out, err);
	free(pem);
	preflight_free(pf);
	return rc;
}

struct find_revoked {
	const char *sha256;
	int found;
};

static int match_revoked(void *ctx, const struct store_cert *c)
{
	struct find_revoked *f = ctx;

	if (strcasecmp(c->sha256, f->sha256) == 0 && strcmp(c->status, STORE_CERT_REVOKED) == 0) {
		f->found = 1;
		return 1;
	}
	return 0;
}

int provcert_known_revoked(struct site *s, const char *sha256)
{
	struct store_cert_filter flt = {.purpose = AMTPROV_PURPOSE_PROVISIONING};
	struct find_revoked f = {.sha256 = sha256};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (!site_store(s))
		return 0;
	store_cert_list(site_store(s), &flt, match_revoked, &f, &err);
	return f.found;
}

uint32_t provcert_expiry_status(int64_t days_left, int warning_days, int error_days)
{
	if (days_left < error_days)
		return STATUS_PROVCERT_EXPIRING_SOON;
	if (days_left <= warning_days)
		return STATUS_PROVCERT_EXPIRING;
	return 0;
}

static int newest_at(void *ctx, const struct store_status_msg *m)
{
	*(int64_t *)ctx = m->created_at;
	return 1;
}

/* 1 when message @p id was sent less than a day ago. */
static int sent_today(struct site *s, uint32_t id, int64_t now)
{
	struct store_status_filter f = {.msg_id = id, .min_severity = -1, .limit = 1};
	struct amtprov_error err;
	int64_t at = 0;

	amtprov_error_clear(&err);
	store_status_list(site_store(s), &f, newest_at, &at, &err);
	return at && now - at < ONCE_A_DAY_SECONDS && at <= now;
}

void task_provisioning_certificate(const struct task_env *env, struct task_result *out)
{
	struct site *s = env->site;
	struct manifest *m = site_manifest(s);
	struct provcert_info pc;
	struct amtprov_error err;
	int64_t now = site_now(s), days;
	uint32_t id;
	char detail[STORE_TEXT_SIZE];

	amtprov_error_clear(&err);
	if (!m->provcert_file && !m->provcert_pkcs12_file) {
		snprintf(out->detail, sizeof(out->detail), "no provisioning certificate configured");
		return;
	}
	if (provcert_configured(s, &pc, &err) != AMTPROV_OK) {
		out->code = err.code ? err.code : AMTPROV_E_CONFIG;
		snprintf(out->detail, sizeof(out->detail), "%.200s%s%.250s", err.where,
			 err.where[0] ? ": " : "", err.msg);
		return;
	}
	days = (pc.not_after - now) / 86400;
	if (pc.not_after < now)
		days = -1 - (now - pc.not_after) / 86400;
	if (provcert_known_revoked(s, pc.sha256)) {
		snprintf(detail, sizeof(detail), "R-PC-08: the configured provisioning certificate "
			 "(serial %.64s, SHA-256 %.64s) is revoked: provisioning is stopped until a "
			 "valid one is configured", pc.serial_hex, pc.sha256);
		if (!sent_today(s, STATUS_PROVCERT_REVOKED, now))
			site_status(s, STATUS_PROVCERT_REVOKED, NULL, detail);
		out->worked = 1;
		snprintf(out->detail, sizeof(out->detail), "configured certificate is revoked");
		return;
	}
	id = provcert_expiry_status(days, m->maintenance.provcert_warning_days,
				    m->maintenance.provcert_error_days);
	snprintf(out->detail, sizeof(out->detail), "serial %.64s: %lld days left%s", pc.serial_hex,
		 (long long)days, id == STATUS_PROVCERT_EXPIRING_SOON ? " (7211)"
				  : id == STATUS_PROVCERT_EXPIRING ? " (7210)" : "");
	if (!id || sent_today(s, id, now))
		return;
	snprintf(detail, sizeof(detail), "R-PC-06: provisioning certificate %.200s (serial %.64s) "
		 "expires in %lld day%s; configure a replacement in the site manifest (R-PC-07)",
		 pc.subject, pc.serial_hex, (long long)days, days == 1 ? "" : "s");
	site_status(s, id, NULL, detail);
	out->worked = 1;
}
