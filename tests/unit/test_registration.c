/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registration of a new or known device (core/api/registration.c, docs/states.md
 * "Re-registration"): R-PROV-01/02/03 for new devices; for known ones the state rule, the
 * identity rule (R-REV-02b: an AMT reset locally is provisioned again; an FQDN with another
 * UUID is refused unless an administrator confirms), the audit and the status messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "registration.h"
#include "site.h"
#include "status.h"
#include "test_util.h"

void register_registration_tests(void);

#define OTP1 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define OTP2 "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
#define UUID1 "11111111-2222-4333-8444-555555555555"
#define UUID2 "11111111-2222-4333-8444-666666666666"

static void quiet(void *ctx, int level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

struct fx {
	char *dir;
	struct alog *log;
	struct site *s;
};

static void fx_init(struct fx *f)
{
	struct site_options o = {.flags = SITE_CREATE_DB | SITE_NO_PLUGINS};
	struct manifest_problems p = {0};
	struct amtprov_error err;
	char *manifest;

	memset(f, 0, sizeof(*f));
	f->dir = tu_mkdtemp("reg");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->dir);
	manifest = tu_write(f->dir, "site.json",
			    "{\"manifest_version\":1,\"site\":{\"name\":\"t\",\"service_point_fqdn\":"
			    "\"oob.contoso.com\",\"dns_suffix\":\"contoso.com\"}}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(manifest);
	f->log = alog_new("test", AMTPROV_LOG_DEBUG, ALOG_STDERR);
	alog_set_callback(f->log, quiet, NULL);
	o.manifest = manifest;
	o.log = f->log;
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(site_open(&o, &f->s, &p, &err), AMTPROV_OK);
	manifest_problems_free(&p);
	free(manifest);
}

static void fx_done(struct fx *f)
{
	site_close(f->s);
	alog_free(f->log);
	tu_rmrf(f->dir);
	free(f->dir);
}

static struct device_input report(const char *fqdn, const char *uuid, const char *otp,
				  const char *ps)
{
	struct device_input in = {.fqdn = fqdn, .uuid = uuid, .amt_version = "12.0.45",
				  .wired_ip = "10.0.0.5", .otp_hash = otp,
				  .provisioning_state = ps};

	return in;
}

static enum registration_verdict reg(struct fx *f, struct device_input in, int replace,
				     struct registration *out)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(registration_apply(f->s, &in, replace, "test", out, &err),
			      AMTPROV_OK);
	return out->verdict;
}

/* Puts the device into @p state (a test set-up, not a flow). */
static void force_state(struct fx *f, const char *fqdn, const char *state, int blocked)
{
	struct store_device d;
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(store_device_find(site_store(f->s), fqdn, &d, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(store_device_transition(site_store(f->s), d.id, d.state, state, 0,
						      "", 0, "test", 1, &err),
			      AMTPROV_OK);
	if (blocked) {
		d.blocked = 1;
		CU_ASSERT_EQUAL_FATAL(store_device_update(site_store(f->s), &d, "test", 1, &err),
				      AMTPROV_OK);
	}
}

static struct store_device device(struct fx *f, const char *key)
{
	struct store_device d;
	struct amtprov_error err;

	amtprov_error_clear(&err);
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(store_device_find(site_store(f->s), key, &d, &err), AMTPROV_OK);
	return d;
}

struct count {
	uint32_t id;
	int n;
	char last[STORE_TEXT_SIZE];
};

static int count_status(void *ctx, const struct store_status_msg *m)
{
	struct count *c = ctx;

	if (m->msg_id == c->id) {
		if (c->n++ == 0)
			snprintf(c->last, sizeof(c->last), "%s", m->text);
	}
	return 0;
}

/* How many status messages @p id were stored; the newest text in @p last (may be NULL). */
static int statuses(struct fx *f, uint32_t id, char *last, size_t size)
{
	struct store_status_filter filt = {.msg_id = id};
	struct count c = {.id = id};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_status_list(site_store(f->s), &filt, count_status, &c, &err),
			AMTPROV_OK);
	if (last)
		snprintf(last, size, "%s", c.last);
	return c.n;
}

struct audit_find {
	const char *action;
	int n;
	char detail[STORE_TEXT_SIZE];
};

static int find_audit(void *ctx, const struct store_audit *a)
{
	struct audit_find *af = ctx;

	if (!strcmp(a->action, af->action)) {
		af->n++;
		snprintf(af->detail, sizeof(af->detail), "%s", a->detail);
	}
	return 0;
}

static int audits(struct fx *f, int64_t id, const char *action, char *detail, size_t size)
{
	struct audit_find af = {.action = action};
	struct amtprov_error err;

	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_audit_list(site_store(f->s), id, 0, find_audit, &af, &err),
			AMTPROV_OK);
	if (detail)
		snprintf(detail, size, "%s", af.detail);
	return af.n;
}

/* The state rule for every state: which re-register, which are busy, which refuse. */
static void test_rule_for_every_state(void)
{
	for (int s = DS_INVALID + 1; s < DS_COUNT; s++) {
		enum device_state ds = (enum device_state)s;
		enum registration_rule want = ds == DS_BLOCKED ? REG_RULE_BLOCKED
					      : device_state_in_progress(ds) || ds == DS_CA_WAITING
						      ? REG_RULE_BUSY
					      : ds == DS_NEED_UNPROVISION ? REG_RULE_REFUSE
									  : REG_RULE_ACCEPT;

		CU_ASSERT_EQUAL(registration_rule(ds, 0), want);
		/* The blocked flag wins over any state. */
		CU_ASSERT_EQUAL(registration_rule(ds, 1), REG_RULE_BLOCKED);
	}
	CU_ASSERT_EQUAL(registration_rule(DS_INVALID, 0), REG_RULE_REFUSE);
	CU_ASSERT_TRUE(registration_configured(DS_PROVISIONED));
	CU_ASSERT_FALSE(registration_configured(DS_FAILED));
	CU_ASSERT_FALSE(registration_configured(DS_NEED_COMMIT));
}

/* R-PROV-02/03 and R-REV-02b: a new device is added; the same device after its AMT was
 * reset (PROVISIONED, a new OTP) goes back to REGISTERED with the new report, audited, with
 * status 8113; its id, and so its certificates, stay. */
static void test_new_then_reset_device_reregisters(void)
{
	struct fx f;
	struct registration r;
	struct store_device d;
	char text[STORE_TEXT_SIZE];

	fx_init(&f);
	CU_ASSERT_EQUAL(reg(&f, report("PC1.contoso.com", UUID1, OTP1, "pre"), 0, &r), REG_ADDED);
	CU_ASSERT_STRING_EQUAL(r.dev.fqdn, "pc1.contoso.com");
	CU_ASSERT_STRING_EQUAL(r.previous_state, "");
	CU_ASSERT_EQUAL(statuses(&f, STATUS_DEVICE_REGISTERED, NULL, 0), 1);
	force_state(&f, "pc1.contoso.com", "PROVISIONED", 0);

	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP2, "in"), 0, &r),
			REG_REREGISTERED);
	CU_ASSERT_STRING_EQUAL(r.previous_state, "PROVISIONED");
	d = device(&f, "pc1.contoso.com");
	CU_ASSERT_EQUAL(d.id, r.dev.id);
	CU_ASSERT_STRING_EQUAL(d.state, "REGISTERED");
	CU_ASSERT_STRING_EQUAL(d.otp_hash, OTP2);
	CU_ASSERT_STRING_EQUAL(d.amt_version, "12.0.45");
	CU_ASSERT_EQUAL(statuses(&f, STATUS_DEVICE_REREGISTERED, text, sizeof(text)), 1);
	CU_ASSERT_TRUE(tu_contains(text, "was PROVISIONED"));
	CU_ASSERT_TRUE(tu_contains(text, "new OTP"));
	CU_ASSERT_FALSE(tu_contains(text, OTP2));
	CU_ASSERT_EQUAL(audits(&f, d.id, "device.reregister", text, sizeof(text)), 1);
	CU_ASSERT_TRUE(tu_contains(text, "was PROVISIONED"));
	CU_ASSERT_EQUAL(audits(&f, d.id, "state", text, sizeof(text)), 2);
	CU_ASSERT_STRING_EQUAL(text, "PROVISIONED -> REGISTERED: re-registered by its agent");

	/* The agent runs again before provisioning started: a newer OTP replaces the old. */
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP1, "pre"), 0, &r),
			REG_REREGISTERED);
	CU_ASSERT_STRING_EQUAL(device(&f, UUID1).otp_hash, OTP1);
	CU_ASSERT_EQUAL(statuses(&f, STATUS_DEVICE_REREGISTERED, NULL, 0), 2);

	/* FAILED and UNPROVISIONED re-register too. */
	force_state(&f, "pc1.contoso.com", "FAILED", 0);
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP2, "pre"), 0, &r),
			REG_REREGISTERED);
	force_state(&f, "pc1.contoso.com", "NEED_UNPROVISION", 0);
	force_state(&f, "pc1.contoso.com", "UNPROVISIONING", 0);
	force_state(&f, "pc1.contoso.com", "UNPROVISIONED", 0);
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP1, "pre"), 0, &r),
			REG_REREGISTERED);
	CU_ASSERT_STRING_EQUAL(r.previous_state, "UNPROVISIONED");
	fx_done(&f);
}

/* A blocked device (R-REV-02d), a device in a step, one waiting at the CA and one with an
 * unprovision pending are refused or deferred: nothing changes, a status message and an
 * audit record say so. */
static void test_refusals_change_nothing(void)
{
	struct fx f;
	struct registration r;
	struct store_device before, after;
	char text[STORE_TEXT_SIZE];

	fx_init(&f);
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP1, "pre"), 0, &r), REG_ADDED);

	force_state(&f, "pc1.contoso.com", "NEED_FIRST_STAGE", 0);
	force_state(&f, "pc1.contoso.com", "CONFIGURING_FIRST_STAGE", 0);
	before = device(&f, UUID1);
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP2, "pre"), 0, &r), REG_BUSY);
	CU_ASSERT_EQUAL(r.retry_after, 60);
	CU_ASSERT_TRUE(tu_contains(r.message, "CONFIGURING_FIRST_STAGE"));
	after = device(&f, UUID1);
	CU_ASSERT_STRING_EQUAL(after.state, "CONFIGURING_FIRST_STAGE");
	CU_ASSERT_STRING_EQUAL(after.otp_hash, OTP1);
	CU_ASSERT_EQUAL(after.updated_at, before.updated_at);
	CU_ASSERT_EQUAL(statuses(&f, STATUS_REREGISTRATION_DEFERRED, NULL, 0), 1);
	CU_ASSERT_EQUAL(audits(&f, after.id, "device.register-refused", text, sizeof(text)), 1);
	CU_ASSERT_TRUE(tu_contains(text, "busy"));

	force_state(&f, "pc1.contoso.com", "NEED_FIRST_STAGE", 0);
	force_state(&f, "pc1.contoso.com", "NEED_UNPROVISION", 0);
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP2, "pre"), 0, &r), REG_STATE);
	CU_ASSERT_TRUE(tu_contains(r.message, "unprovision"));

	force_state(&f, "pc1.contoso.com", "BLOCKED", 1);
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP2, "pre"), 0, &r),
			REG_BLOCKED);
	CU_ASSERT_TRUE(tu_contains(r.message, "blocked"));
	/* --replace never lifts a block. */
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID2, OTP2, "pre"), 1, &r),
			REG_BLOCKED);
	CU_ASSERT_EQUAL(statuses(&f, STATUS_REREGISTRATION_REFUSED, text, sizeof(text)), 3);
	CU_ASSERT_TRUE(tu_contains(text, "blocked"));
	after = device(&f, UUID1);
	CU_ASSERT_STRING_EQUAL(after.otp_hash, OTP1);
	CU_ASSERT_STRING_EQUAL(after.state, "BLOCKED");
	fx_done(&f);
}

/* An FQDN with another UUID, or a UUID with another FQDN, could be an impersonation:
 * refused naming the field unless an administrator confirms (replace); an FQDN and a UUID
 * of two devices are refused even then. */
static void test_identity_rule(void)
{
	struct fx f;
	struct registration r;
	struct store_device d;

	fx_init(&f);
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP1, "pre"), 0, &r), REG_ADDED);
	CU_ASSERT_EQUAL(reg(&f, report("pc2.contoso.com", UUID2, OTP1, "pre"), 0, &r), REG_ADDED);
	force_state(&f, "pc1.contoso.com", "PROVISIONED", 0);

	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", "11111111-2222-4333-8444-777777777777",
				       OTP2, "pre"), 0, &r),
			REG_IDENTITY);
	CU_ASSERT_STRING_EQUAL(r.field, "uuid");
	CU_ASSERT_TRUE(tu_contains(r.message, "--replace"));
	CU_ASSERT_EQUAL(reg(&f, report("pc9.contoso.com", UUID1, OTP2, "pre"), 0, &r),
			REG_IDENTITY);
	CU_ASSERT_STRING_EQUAL(r.field, "fqdn");
	CU_ASSERT_STRING_EQUAL(device(&f, UUID1).fqdn, "pc1.contoso.com");
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID2, OTP2, "pre"), 1, &r),
			REG_TWO_DEVICES);
	CU_ASSERT_EQUAL(statuses(&f, STATUS_REREGISTRATION_REFUSED, NULL, 0), 3);

	/* The system board was replaced: an administrator confirms the new UUID. */
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", "11111111-2222-4333-8444-777777777777",
				       OTP2, "pre"), 1, &r),
			REG_REREGISTERED);
	d = device(&f, "pc1.contoso.com");
	CU_ASSERT_STRING_EQUAL(d.uuid, "11111111-2222-4333-8444-777777777777");
	CU_ASSERT_STRING_EQUAL(d.state, "REGISTERED");
	CU_ASSERT_TRUE(tu_contains(r.message, "UUID " UUID1 " -> "));
	/* The computer was renamed. */
	CU_ASSERT_EQUAL(reg(&f, report("pc7.contoso.com", UUID2, OTP2, "pre"), 1, &r),
			REG_REREGISTERED);
	CU_ASSERT_STRING_EQUAL(device(&f, UUID2).fqdn, "pc7.contoso.com");
	CU_ASSERT_TRUE(tu_contains(r.message, "FQDN pc2.contoso.com -> pc7.contoso.com"));
	fx_done(&f);
}

/* R-PROV-01: 'post' is refused for a new device and for one amtprov did not configure; the
 * agent of a device amtprov configured may run again: nothing changes, no alarm. */
static void test_post_report(void)
{
	struct fx f;
	struct registration r;

	fx_init(&f);
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP1, "post"), 0, &r),
			REG_NOT_PROVISIONABLE);
	CU_ASSERT_TRUE(tu_contains(r.message, "already provisioned"));
	CU_ASSERT_EQUAL(statuses(&f, STATUS_DEVICE_REFUSED, NULL, 0), 1);
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP1, "pre"), 0, &r), REG_ADDED);
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP2, "post"), 0, &r),
			REG_NOT_PROVISIONABLE);
	force_state(&f, "pc1.contoso.com", "PROVISIONED", 0);
	CU_ASSERT_EQUAL(reg(&f, report("pc1.contoso.com", UUID1, OTP2, "post"), 0, &r),
			REG_UNCHANGED);
	CU_ASSERT_STRING_EQUAL(device(&f, UUID1).otp_hash, OTP1);
	CU_ASSERT_STRING_EQUAL(device(&f, UUID1).state, "PROVISIONED");
	CU_ASSERT_EQUAL(statuses(&f, STATUS_DEVICE_REFUSED, NULL, 0), 2);
	CU_ASSERT_EQUAL(statuses(&f, STATUS_DEVICE_REREGISTERED, NULL, 0), 0);
	fx_done(&f);
}

/* R-PC-02: the service point's own name is refused before anything is read or written: no
 * device, no status message, no audit, whoever asks (the administrator's --replace too).
 * site.fqdn_patterns refuse the same way (test_api_authz.sh). */
static void test_name_policy_refusal_writes_nothing(void)
{
	static const char *const names[] = {"oob.contoso.com", "OOB.Contoso.COM"};
	struct fx f;
	struct registration r;
	struct amtprov_error err;
	struct store_device d;

	fx_init(&f);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		CU_ASSERT_EQUAL(reg(&f, report(names[i], UUID1, OTP1, "pre"), 1, &r), REG_NAME);
		CU_ASSERT_STRING_EQUAL(r.field, "fqdn");
		CU_ASSERT_EQUAL(r.status_id, 0);
		CU_ASSERT_EQUAL(r.dev.id, 0);
	}
	CU_ASSERT_TRUE(tu_contains(r.message, "service point"));
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(store_device_find(site_store(f.s), UUID1, &d, &err), AMTPROV_E_NOT_FOUND);
	CU_ASSERT_EQUAL(statuses(&f, STATUS_DEVICE_REFUSED, NULL, 0), 0);
	CU_ASSERT_EQUAL(statuses(&f, STATUS_REREGISTRATION_REFUSED, NULL, 0), 0);
	CU_ASSERT_STRING_EQUAL(registration_verdict_name(REG_NAME), "name");
	fx_done(&f);
}

void register_registration_tests(void)
{
	CU_pSuite s = CU_add_suite("registration", NULL, NULL);

	if (!s)
		return;
	CU_add_test(s, "the state rule for every state", test_rule_for_every_state);
	CU_add_test(s, "the service point's name is refused, nothing written",
		    test_name_policy_refusal_writes_nothing);
	CU_add_test(s, "R-REV-02b: a device reset locally registers again, audited, status 8113",
		    test_new_then_reset_device_reregisters);
	CU_add_test(s, "blocked, busy, unprovision pending: refused, nothing changes",
		    test_refusals_change_nothing);
	CU_add_test(s, "another UUID or FQDN is refused unless an administrator confirms",
		    test_identity_rule);
	CU_add_test(s, "R-PROV-01: 'post' refused, except from a device amtprov configured",
		    test_post_report);
}
