/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin.c - the CA officer's operations: certutil -resubmit, -deny and -revoke
 * [CERTUTIL; MS-CSRA 3.1.4.1.8 for the revocation rules], and a JSON listing of the
 * request table. Output and exit codes follow certutil's.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "rules.h"
#include "server.h"

#define ERROR_INVALID_DATA_HR 0x8007000DL
#define CRL_REASON_CERTIFICATE_HOLD 6

static int failed(struct sb *out, const char *verb, long hr, const char *why)
{
	sb_printf(out, "CertUtil: %s command FAILED: 0x%08lx (%s)\n", verb, (unsigned long)hr, why);
	return 1;
}

static int load(struct adcs *s, long id, struct db_req *r, const char *verb, struct sb *out)
{
	int rc = db_get(s->db, id, r);

	if (rc == 1)
		return failed(out, verb, E_INVALIDARG, "no such request");
	if (rc)
		return failed(out, verb, E_INVALIDARG, "CA database error");
	if (r->status != REQ_PENDING) {
		db_req_free(r);
		return failed(out, verb, ERROR_INVALID_DATA_HR, "the request is not pending");
	}
	return 0;
}

int admin_resubmit(struct adcs *s, long id, struct sb *out)
{
	struct db_req r;
	char err[256];
	int rc;

	if (load(s, id, &r, "-resubmit", out))
		return 1;
	if (adcs_issue_stored(s, &r, err, sizeof(err)) || db_update(s->db, &r)) {
		rc = failed(out, "-resubmit", E_INVALIDARG, err);
	} else {
		sb_printf(out, "Certificate issued.\nCertUtil: -resubmit command completed "
			  "successfully.\n");
		rc = 0;
	}
	db_req_free(&r);
	return rc;
}

int admin_deny(struct adcs *s, long id, struct sb *out)
{
	struct db_req r;
	int rc = 0;

	if (load(s, id, &r, "-deny", out))
		return 1;
	r.status = REQ_DENIED;
	r.hresult = CERTSRV_E_ADMIN_DENIED_REQUEST;
	snprintf(r.disposition, sizeof(r.disposition),
		 "The request was denied by a certificate manager or CA administrator.");
	if (db_update(s->db, &r))
		rc = failed(out, "-deny", E_INVALIDARG, "CA database error");
	else
		sb_printf(out, "CertUtil: -deny command completed successfully.\n");
	db_req_free(&r);
	return rc;
}

static const struct { const char *name; int v; } reasons[] = {
	{ "CRL_REASON_UNSPECIFIED", 0 }, { "CRL_REASON_KEY_COMPROMISE", 1 },
	{ "CRL_REASON_CA_COMPROMISE", 2 }, { "CRL_REASON_AFFILIATION_CHANGED", 3 },
	{ "CRL_REASON_SUPERSEDED", 4 }, { "CRL_REASON_CESSATION_OF_OPERATION", 5 },
	{ "CRL_REASON_CERTIFICATE_HOLD", 6 }, { "CRL_REASON_REMOVE_FROM_CRL", 8 },
	{ "Unrevoke", -1 },
};

static const char *reason_text(int v)
{
	static const char *t[] = { "Unspecified", "Key Compromise", "CA Compromise",
				   "Affiliation Changed", "Superseded",
				   "Cessation of Operation", "Certificate Hold" };

	return v >= 0 && v <= 6 ? t[v] : v == 8 ? "Remove From CRL" : "Unrevoke";
}

/* certutil's Reason: a number or a CRL_REASON_* name; default 0. -2 when invalid. */
static int parse_reason(const char *s)
{
	char *e;
	long v;
	size_t i;

	if (!s || !*s)
		return 0;
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (!strcasecmp(s, reasons[i].name))
			return reasons[i].v;
	v = strtol(s, &e, 10);
	if (*e || !((v >= -1 && v <= 6) || v == 8))
		return -2;
	return (int)v;
}

int admin_revoke(struct adcs *s, const char *serial, const char *reason, const char *by,
		 struct sb *out)
{
	struct db_req r;
	char clean[80];
	size_t i, o = 0;
	int why = parse_reason(reason), rc;

	for (i = 0; serial[i] && o < sizeof(clean) - 1; i++)
		if (serial[i] != ' ')
			clean[o++] = (char)tolower((unsigned char)serial[i]);
	clean[o] = '\0';
	if (why == -2)
		return failed(out, "-revoke", E_INVALIDARG, "invalid revocation reason");
	if (!o || strspn(clean, "0123456789abcdef") != o)
		return failed(out, "-revoke", E_INVALIDARG, "the serial number is not hexadecimal");
	rc = db_get_by_serial(s->db, clean, &r);
	if (rc == 0 && !(r.status == REQ_ISSUED || r.status == REQ_REVOKED))
		rc = 1;
	if (rc == 1 && o % 2 && o < sizeof(clean) - 1) {
		/* An odd-length serial gets one leading zero, as the CA does. */
		memmove(clean + 1, clean, o + 1);
		clean[0] = '0';
		rc = db_get_by_serial(s->db, clean, &r);
	}
	if (rc)
		return failed(out, "-revoke", E_INVALIDARG, "the certificate is not known to this CA");
	if (why == -1 || why == 8) {
		/* Unrevoke / remove from CRL: only a certificate on hold. */
		if (r.status != REQ_REVOKED || r.revoked_reason != CRL_REASON_CERTIFICATE_HOLD) {
			db_req_free(&r);
			return failed(out, "-revoke", ERROR_INVALID_DATA_HR,
				      "the certificate is not on hold");
		}
		r.status = REQ_ISSUED;
		r.revoked_reason = 0;
		r.revoked_at = 0;
		snprintf(r.disposition, sizeof(r.disposition), "Issued");
	} else {
		r.status = REQ_REVOKED;
		r.revoked_reason = why;
		r.revoked_at = (long long)time(NULL);
		snprintf(r.disposition, sizeof(r.disposition), "Revoked by %s", by);
	}
	sb_printf(out, "Revoking \"%s\" -- Reason: %s\n", r.serial, reason_text(why));
	if (db_update(s->db, &r)) {
		db_req_free(&r);
		return failed(out, "-revoke", E_INVALIDARG, "CA database error");
	}
	db_req_free(&r);
	sb_add(out, "CertUtil: -revoke command completed successfully.\n");
	return 0;
}

static const char *status_name(int st)
{
	switch (st) {
	case REQ_ISSUED: return "issued";
	case REQ_PENDING: return "pending";
	case REQ_DENIED: return "denied";
	case REQ_REVOKED: return "revoked";
	default: return "unknown";
	}
}

static int list_row(void *ctx, const struct db_req *r)
{
	json_t *a = ctx;
	json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "id", (json_int_t)r->id,
			      "status", status_name(r->status), "template", r->template_name,
			      "requester", r->requester, "serial", r->serial,
			      "disposition", r->disposition,
			      "hresult", (json_int_t)(unsigned long)r->hresult,
			      "submitted_at", (json_int_t)r->submitted_at);

	if (!o)
		return 1;
	if (r->status == REQ_REVOKED) {
		json_object_set_new(o, "revocation_reason", json_integer(r->revoked_reason));
		json_object_set_new(o, "revoked_at", json_integer(r->revoked_at));
	}
	json_array_append_new(a, o);
	return 0;
}

int admin_list_json(struct adcs *s, struct sb *out)
{
	json_t *a = json_array();
	char *txt;

	if (!a || db_each(s->db, 0, list_row, a)) {
		json_decref(a);
		return 1;
	}
	txt = json_dumps(a, JSON_INDENT(2));
	json_decref(a);
	if (!txt)
		return 1;
	sb_add(out, txt);
	sb_add(out, "\n");
	free(txt);
	return 0;
}
