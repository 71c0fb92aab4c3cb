/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration stages, each a sequence of transport operations on one session:
 *   NEED_FIRST_STAGE  (R-PROV-10 1-5): time, host name and domain, key + certificate + TLS,
 *                     a new random Remote Admin password, the MEBx password by policy;
 *   NEED_COMMIT       (R-PROV-10 6): CommitChanges; the device is post-provisioning;
 *   NEED_SECOND_STAGE (R-PROV-11 1-2): ACLs from the manifest's AMT user accounts,
 *                     Kerberos, power policy, SOL/IDER, ping.
 * New passwords go to the credential store before the firmware is told them (write-ahead,
 * R-PROV-13): losing a device's admin password is the costliest failure in this field.
 * Each step is safe to run again after a restart (AMT tolerates the repeats we send); a
 * commit re-run finds out whether the firmware committed already (commit_check_start).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <jansson.h>

#include "amt_password.h"
#include "flow_int.h"
#include "flow_keys.h"
#include "flow_krb.h"
#include "flow_prune.h"
#include "pki.h"
#include "status.h"
#include "util.h"

/* STAGE_8021X is the second stage's last part, run as its own state in provisioning
 * (NEED_8021X); an update runs the second stage whole. */
enum stage { STAGE_FIRST, STAGE_COMMIT, STAGE_SECOND, STAGE_8021X };

struct stage_run {
	struct flow *f;
	struct engine_job *job;
	enum stage stage;
	void *session;
	int step;
	struct amtprov_device_info info;
	char fqdn[STORE_FQDN_SIZE];
	char uuid[STORE_UUID_SIZE];
	int64_t device_id;
	char key_handle[128];
	char cert_handle[128];
	char admin_cred[STORE_FQDN_SIZE + 32];
	char admin_pending[STORE_FQDN_SIZE + 40];
	int looking_up_cert;  /* enumerating certificates to find one AMT already holds */
	int tls_replacing;    /* ENABLE_TLS sent again with "replace" (a context existed) */
	int64_t cert_id;      /* the certificate being installed */
	struct flow_prune *prune; /* the superseded certificate leaving AMT's store */
	char *cert_b64;       /* the certificate being installed, to recognise it */
	/* accounts for this session: the site's provisioning accounts, then admin with the
	 * password this device was given (R-PROV-09) */
	struct flow_device_accounts accounts;
	char *ca_bundle;   /* second stage: the site CA's chain, to verify the device */
	char *crl_url;
	struct x8021x *x8021x; /* second stage: the 802.1X step, while it runs */
	/* commit: 1 while a managed session asks whether the firmware committed already,
	 * 2 once it said so; why the provisioning session was refused */
	int commit_check;
	char provisioning_refused[AMTPROV_ERROR_MSG_SIZE];
};

static void run_free(struct stage_run *r)
{
	if (!r)
		return;
	flow_8021x_free(r->x8021x);
	flow_prune_free(r->prune);
	if (r->session)
		tloop_session_close(r->f->tloop, r->session);
	flow_device_accounts_free(&r->accounts);
	free(r->cert_b64);
	free(r->ca_bundle);
	free(r->crl_url);
	free(r);
}

static void run_abort(void *arg)
{
	run_free(arg);
}

/* A failure (rc, why), retried with backoff when transient. */
static void run_end(struct stage_run *r, enum device_state next, int rc, const char *why)
{
	struct engine_job *job = r->job;

	run_free(r);
	engine_job_done(job, next, rc, why);
}

/* The stage ended with outcome @p o; flow_table.c says where the device goes. */
static void run_outcome(struct stage_run *r, enum flow_outcome o)
{
	struct engine_job *job = r->job;

	run_free(r);
	flow_end(job, o);
}

void flow_admin_cred_name(const char *fqdn, char *out, size_t size)
{
	snprintf(out, size, "device/%s/admin", fqdn);
}

/* A strong random password AMT accepts: upper, lower, digit and a symbol, no quotes or
 * colons (they break Digest and XML in some clients). No '_' either: AMT allows it but does
 * not count it as the symbol, so a password whose only symbol was '_' (about 1 in 13 per
 * draw, less the other positions' symbols) was refused with INVALID_PASSWORD. The result is
 * checked against the rule itself (amt_password_check, AMT-PROTOCOL.md section 10), so a
 * change to the sets that breaks it gives no password rather than one AMT refuses. */
struct amtprov_secret *flow_random_password(int len)
{
	static const char upper[] = "ABCDEFGHJKLMNPQRSTUVWXYZ", lower[] = "abcdefghijkmnpqrstuvwxyz",
			  digit[] = "23456789", sym[] = "!#$%*+-.=?@^";
	static const char *const sets[] = {upper, lower, digit, sym};
	struct amtprov_secret *s = util_secret_new((size_t)len);
	unsigned char rnd[AMT_PASSWORD_MAX];

	if (!s || len < AMT_PASSWORD_MIN || len > AMT_PASSWORD_MAX || RAND_bytes(rnd, len) != 1) {
		util_secret_free(s);
		return NULL;
	}
	for (int i = 0; i < len; i++) {
		/* The first four characters cover every class, the rest draw from all. */
		const char *set = sets[i < 4 ? i : rnd[i] % 4];

		s->data[i] = set[rnd[i] / 4 % strlen(set)];
	}
	/* Shuffle so the classes are not at fixed positions. */
	for (int i = len - 1; i > 0; i--) {
		int j = rnd[(i * 7) % len] % (i + 1);
		char t = s->data[i];

		s->data[i] = s->data[j];
		s->data[j] = t;
	}
	util_wipe(rnd, sizeof(rnd));
	if (amt_password_check(s->data, s->len) != 0) {
		util_secret_free(s);
		return NULL;
	}
	return s;
}

static char *b64(const uint8_t *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* The device's newest active web server certificate and its stored DER/chain. */
struct active_cert {
	int64_t id;
	int found;
};

static int newest_web_cert(void *ctx, const struct store_cert *c)
{
	struct active_cert *a = ctx;

	if (c->purpose == AMTPROV_PURPOSE_WEB_SERVER && strcmp(c->status, STORE_CERT_ACTIVE) == 0) {
		a->id = c->id;
		a->found = 1;
	}
	return 0;
}

static void on_op(void *ctx, int rc, const json_t *result, const struct amtprov_error *err);

static int call(struct stage_run *r, uint32_t op, json_t *params)
{
	struct amtprov_error err;
	int rc;

	amtprov_error_clear(&err);
	rc = tloop_call(r->f->tloop, r->session, op, params, on_op, r, &err);
	json_decref(params);
	if (rc != AMTPROV_OK) {
		run_end(r, DS_INVALID, rc, err.msg);
		return -1;
	}
	return 0;
}

/* Params for ADD_KEY / ADD_CERTIFICATE from the stored key and certificate. */
static json_t *key_params(struct stage_run *r, struct amtprov_error *err)
{
	char name[STORE_FQDN_SIZE + 32];

	flow_web_key_name(r->fqdn, name, sizeof(name));
	return flow_key_params_stored(r->f->site, name, err);
}

static json_t *cert_params(struct stage_run *r, int with_key, struct amtprov_error *err)
{
	struct store *st = site_store(r->f->site);
	struct store_cert_filter flt = {.device_id = r->device_id};
	struct active_cert a = {0};
	uint8_t *der = NULL;
	size_t len = 0;
	char *chain = NULL, *s;
	json_t *p = NULL;

	store_cert_list(st, &flt, newest_web_cert, &a, err);
	if (!a.found) {
		amtprov_error_set(err, AMTPROV_E_NOT_FOUND, r->fqdn,
				  "no active web server certificate recorded for the device");
		return NULL;
	}
	r->cert_id = a.id;
	if (store_cert_data_get(st, a.id, &der, &len, &chain, err) != AMTPROV_OK)
		return NULL;
	s = b64(der, len);
	free(r->cert_b64);
	r->cert_b64 = s ? strdup(s) : NULL;
	/* AMT >= 9 gets the leaf alone: AddCertificate wants a certificate whose key AMT
	 * holds, and clients verify the device against the site CA they already trust.
	 * Legacy SOAP takes the whole chain with the key. */
	if (s && with_key)
		p = json_pack("{s:s,s:o}", "cert_der_b64", s, "chain", flow_chain_array(chain));
	else if (s)
		p = json_pack("{s:s}", "cert_der_b64", s);
	if (p && with_key) {
		json_t *k = key_params(r, err);

		if (!k) {
			json_decref(p);
			p = NULL;
		} else {
			json_object_update(p, k);
			json_decref(k);
		}
	}
	free(s);
	free(der);
	free(chain);
	return p;
}

/* The first stage, step by step (R-PROV-10 1-5). @return 1 when there is no step left. */
static int first_stage_next(struct stage_run *r)
{
	struct manifest *m = site_manifest(r->f->site);
	struct amtprov_error err;
	json_t *p;
	const char *dot;
	char host[64];

	amtprov_error_clear(&err);
	for (;;) {
		switch (r->step++) {
		case 0: /* (1) time from the service point */
			return call(r, AMTPROV_AMT_SET_TIME,
				    json_pack("{s:I}", "time", (json_int_t)site_now(r->f->site))) < 0
				       ? -1 : 0;
		case 1: /* (2) host name and domain from the device record */
			dot = strchr(r->fqdn, '.');
			snprintf(host, sizeof(host), "%.*s", dot ? (int)(dot - r->fqdn) : 63, r->fqdn);
			return call(r, AMTPROV_AMT_SET_HOST_NAME,
				    json_pack("{s:s,s:s}", "host", host, "domain", dot ? dot + 1 : ""))
				       < 0 ? -1 : 0;
		case 2: /* (3) the key, when the firmware stores keys apart (AMT >= 9); a key
			 * generated inside AMT is there already (R-PROV-06) */
			if (r->info.amt_major < 9 || flow_web_key_in_amt(r->f, r->device_id))
				continue;
			p = key_params(r, &err);
			if (!p) {
				run_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_NOT_FOUND,
					err.msg[0] ? err.msg : "web server key not found");
				return -1;
			}
			return call(r, AMTPROV_AMT_ADD_KEY, p) < 0 ? -1 : 0;
		case 3: /* (3) the certificate (legacy SOAP sends amtprov's key with it; the
			 * certificate of a key AMT generated goes in alone, over WS-Man) */
			p = cert_params(r, r->info.amt_major < 9 &&
						   !flow_web_key_in_amt(r->f, r->device_id),
					&err);
			if (!p) {
				run_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_NOT_FOUND, err.msg);
				return -1;
			}
			return call(r, AMTPROV_AMT_ADD_CERTIFICATE, p) < 0 ? -1 : 0;
		case 4: /* (3) TLS on with that certificate */
			return call(r, AMTPROV_AMT_ENABLE_TLS,
				    json_pack("{s:s}", "cert_handle", r->cert_handle)) < 0 ? -1 : 0;
		case 5: { /* (4) a new random strong Remote Admin password, stored first */
			struct plugin_instance *cs =
				plugin_host_find(site_plugins(r->f->site), m->credstore);
			struct amtprov_secret *pw = flow_random_password(m->admin_password_length);
			int rc;

			if (!pw || !cs) {
				util_secret_free(pw);
				run_end(r, DS_INVALID, AMTPROV_E_CONFIG,
					"cannot make and keep the admin password (credential store)");
				return -1;
			}
			/* Write-ahead, without losing the current one: the new password goes to
			 * a pending record first and replaces the current record only once the
			 * firmware has taken it (see on_op). Whatever happens in between, the
			 * device's real password is in the store. */
			rc = pi_credstore_put(cs, r->admin_pending, pw, &err);
			util_secret_free(pw);
			if (rc) {
				run_end(r, DS_INVALID, rc, err.msg);
				return -1;
			}
			return call(r, AMTPROV_AMT_SET_ADMIN_PASSWORD,
				    json_pack("{s:s}", "credential", r->admin_pending)) < 0 ? -1 : 0;
		}
		case 6: /* (5) the MEBx password by policy */
			if (m->mebx_policy == 0 || !m->mebx_password)
				continue;
			return call(r, AMTPROV_AMT_SET_MEBX_PASSWORD,
				    json_pack("{s:s}", "credential", m->mebx_password)) < 0 ? -1 : 0;
		default:
			return 1;
		}
	}
}

static int realm_number(const char *name)
{
	static const struct {
		const char *name;
		int value;
	} realms[] = {
		{"redirection", 2}, {"pt-administration", 3}, {"hardware-asset", 4},
		{"remote-control", 5}, {"storage", 6}, {"event-manager", 7}, {"storage-admin", 8},
		{"agent-presence-local", 9}, {"agent-presence-remote", 10}, {"circuit-breaker", 11},
		{"network-time", 12}, {"general-info", 13}, {"firmware-update", 14}, {"eit", 15},
		{"local-apps", 16}, {"endpoint-access-control", 17},
		{"endpoint-access-control-admin", 18}, {"event-log-reader", 19}, {"audit-log", 20},
		{"acl-realm", 21}, {"local-system", 24},
	};

	for (size_t i = 0; i < sizeof(realms) / sizeof(realms[0]); i++)
		if (strcmp(realms[i].name, name) == 0)
			return realms[i].value;
	return -1;
}

/* The device's Kerberos record (flow_krb.h), a new reference, or NULL + @p err. */
static json_t *krb_record(struct stage_run *r, struct amtprov_error *err)
{
	struct manifest *m = site_manifest(r->f->site);

	return flow_krb_load(m->credstore ? plugin_host_find(site_plugins(r->f->site),
							     m->credstore) : NULL,
			     r->fqdn, err);
}

/* SET_ACLS params from the manifest's AMT user accounts (R-PROV-11 1); Kerberos accounts by
 * SID, resolved by the directory step when the manifest names them (flow_krb.c). */
static json_t *acl_params(struct stage_run *r, struct manifest *m, struct amtprov_error *err)
{
	json_t *accounts = json_array(), *info = NULL;

	for (size_t i = 0; accounts && i < m->n_amt_accounts; i++) {
		const struct manifest_amt_account *a = &m->amt_accounts[i];
		json_t *realms = json_array(), *acct;
		int access = strcmp(a->access, "local") == 0 ? 0 : strcmp(a->access, "network") == 0 ? 1 : 2;
		const char *sid = NULL;

		if (a->kerberos && !flow_krb_is_sid(a->name) && !info &&
		    !(info = krb_record(r, err))) {
			json_decref(realms);
			json_decref(accounts);
			return NULL;
		}
		if (a->kerberos && !(sid = flow_krb_sid(info, a->name))) {
			amtprov_error_set(err, AMTPROV_E_NOT_FOUND, NULL,
					  "AMT user account '%s': no SID (the directory step "
					  "resolves names; provision the device again)", a->name);
			json_decref(realms);
			json_decref(accounts);
			json_decref(info);
			return NULL;
		}
		for (const char *const *rn = a->realms; rn && *rn; rn++)
			json_array_append_new(realms, json_integer(realm_number(*rn)));
		if (a->kerberos)
			acct = json_pack("{s:s,s:i,s:o}", "sid", sid, "access", access, "realms",
					 realms);
		else
			acct = json_pack("{s:s,s:s,s:i,s:o}", "user", a->name, "credential", a->password,
					 "access", access, "realms", realms);
		json_array_append_new(accounts, acct);
	}
	json_decref(info);
	return json_pack("{s:o}", "accounts", accounts);
}

/* SET_KERBEROS params (R-PROV-11 2, R-ACC-01): off when the manifest says so; on, with the
 * realm, SPNs, key version and the key the directory step stored. */
static json_t *kerberos_params(struct stage_run *r, struct manifest *m,
			       struct amtprov_error *err)
{
	json_t *info, *p;

	if (m->kerberos != 1)
		return json_pack("{s:b}", "enabled", 0);
	if (!(info = krb_record(r, err)))
		return NULL;
	p = flow_krb_settings(info, r->fqdn, err);
	json_decref(info);
	return p;
}

/* A transport call with params built by @p params, or the stage's end when they fail. */
static int call_built(struct stage_run *r, uint32_t op, json_t *params,
		      const struct amtprov_error *err)
{
	if (!params) {
		run_end(r, DS_INVALID, err->code ? err->code : AMTPROV_E_NOMEM, err->msg);
		return -1;
	}
	return call(r, op, params) < 0 ? -1 : 0;
}

static void advance(struct stage_run *r);

static void stage_8021x_done(void *ctx, enum flow_outcome o, int rc, const char *why,
			     int64_t at)
{
	struct stage_run *r = ctx;
	struct engine_job *job = r->job;

	r->x8021x = NULL; /* freed by flow_8021x.c */
	if (rc != AMTPROV_OK) {
		run_end(r, DS_INVALID, rc, why);
		return;
	}
	if (o == FLOW_WAIT) {
		run_free(r);
		flow_end_wait(job, at);
		return;
	}
	if (o != FLOW_DONE) {
		run_outcome(r, o);
		return;
	}
	advance(r);
}

/* R-PROV-11 (3): hands the session to the 802.1X step until stage_8021x_done. */
static int start_8021x(struct stage_run *r)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (flow_8021x_start(r->f, r->job, r->session, &r->info, r->device_id, stage_8021x_done,
			     r, &r->x8021x, &err) != AMTPROV_OK) {
		run_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_INTERNAL, err.msg);
		return -1;
	}
	return 0; /* r may be gone already: not touched again */
}

/* SET_REDIRECTION params: SOL/IDER when either is configured (one RequestStateChange sets
 * both), the web UI when configured; absent keys leave the device alone. */
static json_t *redirection_params(const struct manifest *m)
{
	json_t *p = json_object();

	if (p && (m->sol >= 0 || m->ider >= 0)) {
		json_object_set_new(p, "sol", json_boolean(m->sol > 0));
		json_object_set_new(p, "ider", json_boolean(m->ider > 0));
	}
	if (p && m->web_ui >= 0)
		json_object_set_new(p, "web_ui", json_boolean(m->web_ui));
	return p;
}

/* The second stage, step by step (R-PROV-11 1-3). */
static int second_stage_next(struct stage_run *r)
{
	struct manifest *m = site_manifest(r->f->site);
	struct amtprov_error err;

	for (;;) {
		switch (r->step++) {
		case 0: /* (1) ACLs deleted and recreated from the manifest */
			if (!m->n_amt_accounts)
				continue;
			amtprov_error_clear(&err);
			return call_built(r, AMTPROV_AMT_SET_ACLS, acl_params(r, m, &err), &err);
		case 1: /* (2) Kerberos */
			if (m->kerberos < 0)
				continue;
			amtprov_error_clear(&err);
			return call_built(r, AMTPROV_AMT_SET_KERBEROS, kerberos_params(r, m, &err),
					  &err);
		case 2: /* (2) power policy: the power states manageability is on in */
			if (!m->power_policy)
				continue;
			return call(r, AMTPROV_AMT_SET_POWER_POLICY,
				    json_pack("{s:s}", "policy", m->power_policy)) < 0 ? -1 : 0;
		case 3: /* (2) serial-over-LAN, IDE redirection, web interface */
			if (m->sol < 0 && m->ider < 0 && m->web_ui < 0)
				continue;
			return call(r, AMTPROV_AMT_SET_REDIRECTION, redirection_params(m)) < 0 ? -1
												    : 0;
		case 4: /* (2) ping responses */
			if (m->ping < 0)
				continue;
			return call(r, AMTPROV_AMT_SET_PING, json_pack("{s:b}", "enabled", m->ping)) < 0
				       ? -1 : 0;
		case 5: /* (3) 802.1X: its own machine (flow_8021x.c) on this session; it ends
			 * the stage through stage_8021x_done. In provisioning it is a state of
			 * its own (NEED_8021X, STAGE_8021X); an update runs it here. */
			if (!m->ieee8021x || engine_job_state(r->job) == DS_NEED_SECOND_STAGE)
				continue;
			return start_8021x(r);
		default:
			return 1;
		}
	}
}

static void advance(struct stage_run *r)
{
	int rc;

	switch (r->stage) {
	case STAGE_FIRST:
		rc = first_stage_next(r);
		if (rc == 1)
			run_outcome(r, FLOW_DONE);
		return;
	case STAGE_COMMIT:
		if (r->step++ == 0) {
			call(r, AMTPROV_AMT_COMMIT, NULL);
			return;
		}
		site_status(r->f->site, STATUS_DEVICE_PROVISIONED, r->fqdn,
			    r->commit_check
				    ? "first stage committed before a restart: AMT is "
				      "post-provisioning (R-PROV-10, R-PROV-13)"
				    : "first stage committed: AMT is post-provisioning (R-PROV-10)");
		/* The first stage will not run again: its AMT key record has done its job. */
		flow_web_key_committed(r->f, r->device_id);
		run_outcome(r, FLOW_DONE);
		return;
	case STAGE_SECOND:
		rc = second_stage_next(r);
		if (rc == 1) {
			/* 8110 is for an update of a provisioned device; a first provisioning
			 * said 8103 at its commit and ends here without another message. */
			if (engine_job_state(r->job) != DS_NEED_SECOND_STAGE)
				site_status(r->f->site, STATUS_DEVICE_UPDATED, r->fqdn,
					    "second stage done: ACLs and settings as the manifest "
					    "says (R-PROV-11)");
			run_outcome(r, FLOW_DONE);
		}
		return;
	case STAGE_8021X:
		if (r->step < 5)
			r->step = 5; /* the second stage's 802.1X part alone */
		if (second_stage_next(r) == 1)
			run_outcome(r, FLOW_DONE);
		return;
	}
}

static int already_there(int rc, const struct amtprov_error *err)
{
	return (rc == AMTPROV_E_DEVICE || rc == AMTPROV_E_PROTOCOL) && err &&
	       (strstr(err->msg, "DUPLICATE") || strstr(err->msg, "AlreadyExists"));
}

/* The first stage runs again after a restart (R-PROV-13): what AMT already holds from the
 * interrupted run is adopted, not treated as an error. */
static int first_stage_repeat(struct stage_run *r, int rc, const struct amtprov_error *err)
{
	int done = r->step - 1; /* the step that just ran */

	if (r->stage != STAGE_FIRST || !already_there(rc, err))
		return 0;
	if (done == 2) { /* key stored */
		advance(r);
		return 1;
	}
	/* A TLS credential context exists: an interrupted run made it, for this certificate
	 * or for the one an earlier attempt installed before the CA issued this one. AMT keeps
	 * one context, so ENABLE_TLS runs again with "replace": a context bound to another
	 * certificate is deleted and one for this certificate created (one bound to it already
	 * stays), then TLS is turned on in the settings, which the interrupted run may not
	 * have reached. The device never serves a superseded certificate. */
	if (done == 4 && !r->tls_replacing) {
		r->tls_replacing = 1;
		call(r, AMTPROV_AMT_ENABLE_TLS,
		     json_pack("{s:s,s:b}", "cert_handle", r->cert_handle, "replace", 1));
		return 1;
	}
	if (done == 3) { /* certificate stored: find its handle */
		r->looking_up_cert = 1;
		call(r, AMTPROV_AMT_LIST_CERTIFICATES, json_object());
		return 1;
	}
	return 0;
}

static int adopt_cert_handle(struct stage_run *r, const json_t *result)
{
	return flow_cert_handle_find(result, r->cert_b64, r->cert_handle, sizeof(r->cert_handle));
}

/* The firmware took the new admin password: it becomes the current one. */
static int promote_admin_password(struct stage_run *r, struct amtprov_error *err)
{
	struct manifest *m = site_manifest(r->f->site);
	struct plugin_instance *cs = plugin_host_find(site_plugins(r->f->site), m->credstore);
	struct amtprov_secret *pw = NULL;
	int rc;

	if (!cs)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, NULL, "no credential store");
	rc = pi_credstore_get(cs, r->admin_pending, &pw, err);
	if (rc == AMTPROV_OK)
		rc = pi_credstore_put(cs, r->admin_cred, pw, err);
	util_secret_free(pw);
	if (rc == AMTPROV_OK)
		pi_credstore_remove(cs, r->admin_pending, err);
	return rc;
}

static void pruned(void *ctx, int certs, int keys, const char *deleted, const char *problem)
{
	struct stage_run *r = ctx;

	(void)certs;
	(void)keys;
	r->prune = NULL; /* freed by flow_prune.c */
	if (problem && problem[0])
		alog(site_log(r->f->site), AMTPROV_LOG_WARNING, "%s: superseded certificates left "
		     "in AMT's store: %s", r->fqdn, problem);
	if (deleted && deleted[0])
		alog(site_log(r->f->site), AMTPROV_LOG_INFO, "%s: %s", r->fqdn, deleted);
	advance(r);
}

static int open_session(struct stage_run *r, struct amtprov_error *err);

/* R-PROV-13: a commit that runs again after a crash or a lost answer may find the firmware
 * committed already. AMT then no longer shows its self-signed certificate but the one the
 * site's CA issued, so the provisioning session is refused. Only a session that verifies
 * the device against the recorded chain and its CRL (as the second stage does) may tell
 * whether it committed; a device that passes neither check is never trusted. */
static void commit_check_start(struct stage_run *r, const struct amtprov_error *refused)
{
	struct amtprov_error err;
	char why[STORE_TEXT_SIZE];

	util_strlcpy(r->provisioning_refused, refused->msg, sizeof(r->provisioning_refused));
	alog(site_log(r->f->site), AMTPROV_LOG_INFO,
	     "%s: commit: provisioning TLS refused (%s); asking over a session verified against "
	     "the site CA whether the firmware committed already", r->fqdn, r->provisioning_refused);
	tloop_session_close(r->f->tloop, r->session);
	r->session = NULL;
	flow_device_accounts_free(&r->accounts);
	r->commit_check = 1;
	amtprov_error_clear(&err);
	if (open_session(r, &err) != AMTPROV_OK) {
		snprintf(why, sizeof(why), "commit: the device refused provisioning TLS (%.160s) and no "
			 "managed session can be opened: %.160s", r->provisioning_refused, err.msg);
		run_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_VERIFY, why);
		return;
	}
	call(r, AMTPROV_AMT_GET_SETUP_STATE, NULL);
}

/* The managed session's answer: post-provisioning means the commit is done. */
static void commit_check_done(struct stage_run *r, int rc, const json_t *result,
			      const struct amtprov_error *err)
{
	const char *state = json_string_value(json_object_get(result, "state"));
	char why[STORE_TEXT_SIZE];

	if (rc == AMTPROV_E_VERIFY) {
		snprintf(why, sizeof(why), "commit: the device no longer presents AMT's self-signed "
			 "certificate (%.160s), and the one it presents is not trusted either (%.160s): "
			 "commit not confirmed, nothing sent to it", r->provisioning_refused, err->msg);
		run_end(r, DS_INVALID, rc, why);
		return;
	}
	if (rc != AMTPROV_OK) { /* e.g. unreachable: the engine retries when it is passing */
		snprintf(why, sizeof(why), "commit: the device refused provisioning TLS (%.160s); "
			 "asking whether it committed already failed: %.160s", r->provisioning_refused,
			 err->msg[0] ? err->msg : amtprov_strerror(rc));
		run_end(r, DS_INVALID, rc, why);
		return;
	}
	if (!state || strcmp(state, "post") != 0) {
		snprintf(why, sizeof(why), "commit: the device serves a certificate of the site's CA "
			 "but reports setup state %s, not post-provisioning", state ? state : "(none)");
		run_end(r, DS_INVALID, AMTPROV_E_STATE, why);
		return;
	}
	r->commit_check = 2;
	advance(r); /* the commit step is done */
}

static void on_op(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	struct stage_run *r = ctx;
	const char *h;

	if (r->stage == STAGE_COMMIT && r->commit_check) {
		commit_check_done(r, rc, result, err);
		return;
	}
	if (r->stage == STAGE_COMMIT && rc == AMTPROV_E_VERIFY) {
		commit_check_start(r, err);
		return;
	}
	if (rc != AMTPROV_OK && first_stage_repeat(r, rc, err))
		return;
	if (rc == AMTPROV_OK && r->tls_replacing == 1) {
		struct amtprov_error e2;
		struct flow_prune_spec spec = {.purpose = AMTPROV_PURPOSE_WEB_SERVER,
					       .keep = &r->cert_id, .n_keep = 1};

		/* The context was bound to a superseded certificate of an earlier attempt: that
		 * certificate leaves AMT's store too (a failure is only logged). */
		r->tls_replacing = 2;
		amtprov_error_clear(&e2);
		if (flow_prune_start(r->f, r->session, r->device_id, r->fqdn, &spec, pruned, r,
				     &r->prune, &e2) != AMTPROV_OK)
			pruned(r, 0, 0, "", e2.msg[0] ? e2.msg : "cannot start");
		return;
	}
	if (rc == AMTPROV_OK && r->looking_up_cert) {
		r->looking_up_cert = 0;
		if (!adopt_cert_handle(r, result)) {
			run_end(r, DS_INVALID, AMTPROV_E_DEVICE,
				"AMT reports the certificate as a duplicate but does not list it");
			return;
		}
		advance(r);
		return;
	}
	if (rc == AMTPROV_OK && r->stage == STAGE_FIRST && r->step - 1 == 5) {
		struct amtprov_error e2;

		amtprov_error_clear(&e2);
		if (promote_admin_password(r, &e2) != AMTPROV_OK) {
			run_end(r, DS_INVALID, e2.code, e2.msg);
			return;
		}
	}
	if (rc != AMTPROV_OK) {
		char why[STORE_TEXT_SIZE];

		snprintf(why, sizeof(why), "%s step %d: %s",
			 r->stage == STAGE_FIRST    ? "first stage"
			 : r->stage == STAGE_COMMIT ? "commit"
						    : "second stage",
			 r->step, err->msg[0] ? err->msg : amtprov_strerror(rc));
		run_end(r, DS_INVALID, rc, why);
		return;
	}
	if ((h = json_string_value(json_object_get(result, "key_handle"))))
		util_strlcpy(r->key_handle, h, sizeof(r->key_handle));
	if ((h = json_string_value(json_object_get(result, "cert_handle"))))
		util_strlcpy(r->cert_handle, h, sizeof(r->cert_handle));
	advance(r);
}

/* Opens the session a stage needs. Before the commit AMT still shows its self-signed
 * certificate (PROVISIONING mode, with the provisioning certificate); after it, the device
 * serves the certificate the site's CA issued, checked with the CA's CRL (R-REV-01): the
 * second stage, and a commit re-run asking whether the firmware committed already. */
static int open_session(struct stage_run *r, struct amtprov_error *err)
{
	struct flow *f = r->f;
	struct amtprov_transport_target tgt;
	const struct store_device *d = engine_job_device(r->job);

	if (flow_device_accounts(f, r->fqdn, &r->accounts, err) != AMTPROV_OK)
		return err->code;
	amtprov_error_clear(err);
	memset(&tgt, 0, sizeof(tgt));
	tgt.struct_size = sizeof(tgt);
	tgt.device = &r->info;
	tgt.address = d->wired_ip[0] ? d->wired_ip : d->fqdn;
	tgt.port = FLOW_AMT_TLS_PORT;
	tgt.accounts = r->accounts.list;
	tgt.n_accounts = r->accounts.n;
	if (r->stage == STAGE_SECOND || r->stage == STAGE_8021X || r->commit_check) {
		struct store_cert_filter flt = {.device_id = r->device_id};
		struct active_cert a = {0};
		uint8_t *der = NULL;
		size_t len = 0;

		store_cert_list(site_store(f->site), &flt, newest_web_cert, &a, err);
		if (!a.found || store_cert_data_get(site_store(f->site), a.id, &der, &len,
						    &r->ca_bundle, err) != AMTPROV_OK)
			return err->code ? err->code
					 : amtprov_error_set(err, AMTPROV_E_NOT_FOUND, r->fqdn,
							     "no web server certificate recorded");
		r->crl_url = flow_crl_url(f, der, len);
		free(der);
		tgt.mode = AMTPROV_TRANSPORT_MANAGED;
		tgt.ca_bundle_pem = r->ca_bundle;
		tgt.crl_url = r->crl_url;
	} else {
		tgt.mode = AMTPROV_TRANSPORT_PROVISIONING;
		tgt.client_chain_pem = f->chain_pem;
		tgt.client_key_pem = f->key_pem;
	}
	return tloop_session_open(f->tloop, &tgt, &r->session, err);
}

static void start_stage(struct engine_job *job, struct flow *f, enum stage stage)
{
	const struct store_device *d = engine_job_device(job);
	struct stage_run *r = calloc(1, sizeof(*r));
	struct amtprov_error err;
	int major = 0, minor = 0;

	if (!r) {
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	r->f = f;
	r->job = job;
	r->stage = stage;
	engine_job_set_abort(job, run_abort, r);
	r->device_id = d->id;
	util_strlcpy(r->fqdn, d->fqdn, sizeof(r->fqdn));
	util_strlcpy(r->uuid, d->uuid, sizeof(r->uuid));
	flow_admin_cred_name(r->fqdn, r->admin_cred, sizeof(r->admin_cred));
	snprintf(r->admin_pending, sizeof(r->admin_pending), "%s.pending", r->admin_cred);
	sscanf(d->amt_version, "%d.%d", &major, &minor);
	r->info = (struct amtprov_device_info){.struct_size = sizeof(r->info), .fqdn = r->fqdn,
					       .uuid = r->uuid, .amt_major = major,
					       .amt_minor = minor,
					       .wired_ip = d->wired_ip[0] ? d->wired_ip : NULL,
					       .wireless_capable = d->wireless_capable};
	amtprov_error_clear(&err);
	if (open_session(r, &err) != AMTPROV_OK) {
		run_end(r, DS_INVALID, err.code ? err.code : AMTPROV_E_INTERNAL, err.msg);
		return;
	}
	advance(r);
}

void flow_step_first_stage(struct engine_job *job, void *ctx)
{
	start_stage(job, ctx, STAGE_FIRST);
}

void flow_step_commit(struct engine_job *job, void *ctx)
{
	start_stage(job, ctx, STAGE_COMMIT);
}

void flow_step_second_stage(struct engine_job *job, void *ctx)
{
	start_stage(job, ctx, STAGE_SECOND);
}

void flow_step_8021x(struct engine_job *job, void *ctx)
{
	struct flow *f = ctx;

	/* A site without 802.1X has nothing to do here. */
	if (!site_manifest(f->site)->ieee8021x) {
		flow_end(job, FLOW_DONE);
		return;
	}
	start_stage(job, f, STAGE_8021X);
}
