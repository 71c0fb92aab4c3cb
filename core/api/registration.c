/* SPDX-License-Identifier: Apache-2.0 */
/* Registration of a new or known device (see registration.h and docs/states.md). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "authz.h"
#include "registration.h"
#include "status.h"
#include "util.h"

#define BUSY_RETRY_SECONDS 60      /* a step takes seconds to minutes */
#define BUSY_RETRY_MAX_SECONDS 3600

enum registration_rule registration_rule(enum device_state s, int blocked)
{
	if (blocked || s == DS_BLOCKED)
		return REG_RULE_BLOCKED;
	/* A step under way holds the record it read (an -ING state); CA_WAITING holds a
	 * request at the CA whose answer the next poll records. Starting over under either
	 * would leave the step or the request pointing at a record that moved on. */
	if (device_state_in_progress(s) || s == DS_CA_WAITING)
		return REG_RULE_BUSY;
	switch (s) {
	case DS_REGISTERED:             /* a newer OTP replaces the one not yet checked */
	case DS_NEED_DIRECTORY_ACCOUNT: /* a flow waiting between steps starts over */
	case DS_NEED_DEVICE_CHECK:
	case DS_NEED_CERTIFICATE:
	case DS_NEED_FIRST_STAGE:
	case DS_NEED_COMMIT:
	case DS_NEED_SECOND_STAGE:
	case DS_NEED_8021X:
	case DS_PROVISIONED:            /* AMT reset locally: provisioned again (R-REV-02b) */
	case DS_NEED_RENEWAL:
	case DS_NEED_UPDATE:
	case DS_FAILED:
	case DS_UNPROVISIONED:
		return REG_RULE_ACCEPT;
	default:
		/* NEED_UNPROVISION: an administrator's unprovision comes first; a state this
		 * build does not know is never guessed at. */
		return REG_RULE_REFUSE;
	}
}

int registration_configured(enum device_state s)
{
	switch (s) {
	case DS_NEED_SECOND_STAGE:
	case DS_CONFIGURING_SECOND_STAGE:
	case DS_NEED_8021X:
	case DS_CONFIGURING_8021X:
	case DS_PROVISIONED:
	case DS_NEED_RENEWAL:
	case DS_RENEWING:
	case DS_NEED_UPDATE:
	case DS_UPDATING:
		return 1;
	default:
		return 0;
	}
}

const char *registration_verdict_name(enum registration_verdict v)
{
	switch (v) {
	case REG_ADDED: return "added";
	case REG_REREGISTERED: return "re-registered";
	case REG_UNCHANGED: return "unchanged";
	case REG_NOT_PROVISIONABLE: return "not-provisionable";
	case REG_BLOCKED: return "blocked";
	case REG_BUSY: return "busy";
	case REG_STATE: return "state";
	case REG_IDENTITY: return "identity";
	case REG_TWO_DEVICES: return "two-devices";
	case REG_NAME: return "name";
	}
	return "?";
}

static void say(struct registration *out, enum registration_verdict v, uint32_t status_id,
		const char *fmt, ...) AMTPROV_PRINTF(4, 5);

static void say(struct registration *out, enum registration_verdict v, uint32_t status_id,
		const char *fmt, ...)
{
	va_list ap;

	out->verdict = v;
	out->status_id = status_id;
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
}

/* Looks a key up; *found tells whether a device has it. */
static int find(struct store *st, const char *key, struct store_device *dev, int *found,
		struct amtprov_error *err)
{
	struct amtprov_error e;
	int rc;

	amtprov_error_clear(&e);
	rc = store_device_find(st, key, dev, &e);
	*found = rc == AMTPROV_OK;
	if (rc == AMTPROV_E_NOT_FOUND)
		return AMTPROV_OK;
	if (rc != AMTPROV_OK)
		*err = e;
	return rc;
}

/* The identity rule: a report whose FQDN and UUID are not those of one known record is
 * refused unless an administrator confirmed it (@p replace); a record that holds one of
 * them becomes @p known. 0 to go on, 1 when refused (out filled). */
static int check_identity(const struct store_device *rec, const struct store_device *by_fqdn,
			  int have_fqdn, const struct store_device *by_uuid, int have_uuid,
			  int replace, struct store_device *known, struct registration *out)
{
	if (have_fqdn && have_uuid && by_fqdn->id != by_uuid->id) {
		*known = *by_fqdn;
		say(out, REG_TWO_DEVICES, STATUS_REREGISTRATION_REFUSED,
		    "%s is device %lld (UUID %s) and UUID %s is device %lld (%s): one registration "
		    "cannot claim both", rec->fqdn, (long long)by_fqdn->id, by_fqdn->uuid, rec->uuid,
		    (long long)by_uuid->id, by_uuid->fqdn);
		return 1;
	}
	*known = have_fqdn ? *by_fqdn : *by_uuid;
	if (replace || (have_fqdn && have_uuid))
		return 0;
	if (have_fqdn) {
		out->field = "uuid";
		say(out, REG_IDENTITY, STATUS_REREGISTRATION_REFUSED,
		    "%s is registered with UUID %s (device %lld), not %s: if its system board was "
		    "replaced, an administrator confirms with 'amtprov device add --replace'",
		    rec->fqdn, by_fqdn->uuid, (long long)by_fqdn->id, rec->uuid);
	} else {
		out->field = "fqdn";
		say(out, REG_IDENTITY, STATUS_REREGISTRATION_REFUSED,
		    "UUID %s is registered as %s (device %lld), not %s: if the computer was "
		    "renamed, an administrator confirms with 'amtprov device add --replace'",
		    rec->uuid, by_uuid->fqdn, (long long)by_uuid->id, rec->fqdn);
	}
	return 1;
}

/* The state rule for a known device; 0 to re-register, 1 when refused (out filled). */
static int check_state(struct site *s, const struct device_input *in,
		       const struct store_device *rec, const struct store_device *known,
		       struct registration *out)
{
	enum device_state cur = device_state_parse(known->state);
	enum registration_rule rule = registration_rule(cur, known->blocked);
	char why[256];

	if (rule == REG_RULE_BLOCKED) {
		say(out, REG_BLOCKED, STATUS_REREGISTRATION_REFUSED,
		    "%s is blocked (R-REV-02d): its registration is refused until an administrator "
		    "unblocks it ('amtprov device unblock'), which unprovisions it", known->fqdn);
		return 1;
	}
	if (device_input_refused(in, why, sizeof(why))) {
		/* The agent of a device amtprov configured runs again: nothing to do. */
		if (registration_configured(cur) && !strcmp(known->fqdn, rec->fqdn) &&
		    !strcmp(known->uuid, rec->uuid)) {
			say(out, REG_UNCHANGED, 0,
			    "%s is %s and its AMT reports 'post': provisioned already, nothing to do",
			    known->fqdn, known->state);
			return 1;
		}
		say(out, REG_NOT_PROVISIONABLE, STATUS_DEVICE_REFUSED, "%s", why);
		return 1;
	}
	switch (rule) {
	case REG_RULE_BUSY: {
		int64_t wait = known->next_attempt_at - site_now(s);

		out->retry_after = cur == DS_CA_WAITING && wait > BUSY_RETRY_SECONDS
					   ? (int)(wait < BUSY_RETRY_MAX_SECONDS ? wait
										: BUSY_RETRY_MAX_SECONDS)
					   : BUSY_RETRY_SECONDS;
		say(out, REG_BUSY, STATUS_REREGISTRATION_DEFERRED,
		    cur == DS_CA_WAITING
			    ? "%s is %s: a certificate request is pending at the CA; register again "
			      "in %d s or later"
			    : "%s is %s: amtprovd is working on it; register again in %d s or later",
		    known->fqdn, known->state, out->retry_after);
		return 1;
	}
	case REG_RULE_REFUSE:
		say(out, REG_STATE, STATUS_REREGISTRATION_REFUSED,
		    cur == DS_NEED_UNPROVISION
			    ? "%s is %s: the unprovision an administrator asked for comes first; "
			      "register again once it is UNPROVISIONED"
			    : "%s is in state %s, which this build does not know: refused",
		    known->fqdn, known->state);
		return 1;
	default:
		return 0;
	}
}

/* Appends to a NUL-terminated @p buf, cutting at its end. */
static void append(char *buf, size_t size, const char *fmt, ...) AMTPROV_PRINTF(3, 4);

static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* The status message of a re-registration: what the agent reported and what changed. */
static void reregistered_detail(const struct device_input *in, const struct store_device *known,
				const struct store_device *rec, char *buf, size_t size)
{
	char summary[256];

	device_input_summary(in, summary, sizeof(summary));
	buf[0] = '\0';
	append(buf, size, "re-registered by its agent (was %s): %s, %s", known->state, summary,
	       strcmp(known->otp_hash, rec->otp_hash) ? "new OTP" : "same OTP");
	if (strcmp(known->uuid, rec->uuid))
		append(buf, size, "; UUID %s -> %s (confirmed)", known->uuid, rec->uuid);
	if (strcmp(known->fqdn, rec->fqdn))
		append(buf, size, "; FQDN %s -> %s (confirmed)", known->fqdn, rec->fqdn);
}

int registration_apply(struct site *s, const struct device_input *in, int replace,
		       const char *actor, struct registration *out, struct amtprov_error *err)
{
	struct store *st = site_store(s);
	struct store_device rec, by_fqdn, by_uuid, known;
	char detail[STORE_TEXT_SIZE];
	int have_fqdn = 0, have_uuid = 0, rc;

	memset(out, 0, sizeof(*out));
	device_input_to_record(in, &rec);
	util_strlcpy(rec.state, device_state_name(DS_REGISTERED), sizeof(rec.state));
	/* Before the transaction: a name the site never certifies leaves no trace in the
	 * database (the caller logs the refusal). */
	if (!authz_name_allowed(site_manifest(s), rec.fqdn, 0, out->message,
				sizeof(out->message))) {
		out->verdict = REG_NAME;
		out->field = "fqdn";
		out->dev = rec;
		return AMTPROV_OK;
	}
	/* The lookups and the write in one IMMEDIATE transaction: no other registration,
	 * engine step or administrator can slip between the decision and the change. */
	if ((rc = store_tx_begin(st, err)))
		return rc;
	if ((rc = find(st, rec.fqdn, &by_fqdn, &have_fqdn, err)) ||
	    (rc = find(st, rec.uuid, &by_uuid, &have_uuid, err)))
		goto fail;
	if (!have_fqdn && !have_uuid) {
		char why[256];

		out->dev = rec;
		if (device_input_refused(in, why, sizeof(why))) {
			say(out, REG_NOT_PROVISIONABLE, STATUS_DEVICE_REFUSED, "%s", why);
			goto refused;
		}
		if ((rc = store_device_add(st, &out->dev, actor, site_now(s), err)))
			goto fail;
		device_input_summary(in, detail, sizeof(detail));
		say(out, REG_ADDED, STATUS_DEVICE_REGISTERED, "%s", detail);
		site_status(s, out->status_id, out->dev.fqdn, out->message);
		return store_tx_commit(st, err);
	}
	if (check_identity(&rec, &by_fqdn, have_fqdn, &by_uuid, have_uuid, replace, &known,
			   out)) {
		out->dev = known;
		util_strlcpy(out->previous_state, known.state, sizeof(out->previous_state));
		goto refused;
	}
	out->dev = known;
	util_strlcpy(out->previous_state, known.state, sizeof(out->previous_state));
	if (check_state(s, in, &rec, &known, out))
		goto refused;
	rc = store_device_reregister(st, known.id, known.state, &rec, actor, site_now(s), err);
	if (rc == AMTPROV_OK)
		rc = store_device_get(st, known.id, &out->dev, err);
	if (rc)
		goto fail;
	reregistered_detail(in, &known, &rec, detail, sizeof(detail));
	say(out, REG_REREGISTERED, STATUS_DEVICE_REREGISTERED, "%s", detail);
	/* Inside the transaction: the state change, its audit and its status message are
	 * stored together. */
	site_status(s, out->status_id, out->dev.fqdn, out->message);
	return store_tx_commit(st, err);
refused:
	/* Nothing was written: the status message says who was refused and why, and a known
	 * device's audit trail keeps the attempt. */
	store_tx_rollback(st);
	if (out->status_id)
		site_status(s, out->status_id, rec.fqdn, out->message);
	if (out->dev.id && out->verdict != REG_UNCHANGED) {
		struct amtprov_error e;

		amtprov_error_clear(&e);
		detail[0] = '\0';
		append(detail, sizeof(detail), "refused (%s): %s",
		       registration_verdict_name(out->verdict), out->message);
		store_audit_add(st, actor, out->dev.id, "device.register-refused", detail,
				site_now(s), &e);
	}
	return AMTPROV_OK;
fail:
	store_tx_rollback(st);
	return rc;
}
