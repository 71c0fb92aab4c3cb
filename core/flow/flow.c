/* SPDX-License-Identifier: Apache-2.0 */
#include "flow.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>

#include "ca_contract.h"
#include "pki.h"
#include "preflight.h"
#include "provcert.h"
#include "status.h"
#include "transport_loop.h"
#include "util.h"

#include "flow_int.h"
#include "flow_krb.h"

int flow_device_spns(const char *fqdn, char *buf, size_t buflen, const char **out, size_t max)
{
	static const char *const forms[][2] = {
		{"HTTP/", ":16992"}, {"HTTP/", ":16993"}, {"HTTPS/", ":16993"}, {"HTTP/", ""}};
	size_t used = 0, n = 0;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		int w;

		if (n + 1 >= max || used >= buflen)
			return -1;
		w = snprintf(buf + used, buflen - used, "%s%s%s", forms[i][0], fqdn, forms[i][1]);
		if (w < 0 || (size_t)w >= buflen - used)
			return -1;
		out[n++] = buf + used;
		used += (size_t)w + 1;
	}
	out[n] = NULL;
	return (int)n;
}

void flow_account_name(const char *fqdn, char *out, size_t size)
{
	size_t n = 0;

	for (const char *p = fqdn; *p && *p != '.' && n < 15 && n + 2 < size; p++)
		out[n++] = (char)toupper((unsigned char)*p);
	if (n + 1 < size)
		out[n++] = '$';
	out[n] = '\0';
}

/* REGISTERED: the precheck of R-PROV-01 happens at registration (only Not Provisioned
 * devices are accepted); here the flow picks its first step. */
static void step_registered(struct engine_job *job, void *ctx)
{
	struct flow *f = ctx;
	const struct store_device *dev = engine_job_device(job);
	struct manifest *m = site_manifest(f->site);

	site_status(f->site, STATUS_PROVISIONING_STARTED, dev->fqdn, "");
	flow_end(job, m->directory ? FLOW_DIRECTORY : FLOW_DONE);
}

/* NEED_DIRECTORY_ACCOUNT (R-PROV-04): runs on a worker thread; may block on LDAP. */
struct dir_call {
	struct plugin_instance *pi;
	char fqdn[STORE_FQDN_SIZE];
	char account[20];
	const char *container;
	char spn_buf[4 * (STORE_FQDN_SIZE + 16)];
	const char *spns[8];
	struct flow *f;
	struct flow_krb_prep *krb; /* Kerberos keys and SIDs to keep; NULL: none */
};

static void dir_call_free(void *arg)
{
	struct dir_call *c = arg;

	flow_krb_prep_free(c->krb);
	free(c);
}

static int dir_create(void *arg, struct amtprov_error *err)
{
	struct dir_call *c = arg;
	struct amtprov_directory_account acct = {
		.struct_size = sizeof(acct),
		.fqdn = c->fqdn,
		.account_name = c->account,
		.container = c->container,
		.spns = c->spns,
	};
	struct amtprov_secret *pw = NULL;
	int rc = pi_directory_create(c->pi, c->fqdn, &acct, &pw, err);

	/* The password itself is never kept: the Kerberos keys derived from it go to the
	 * credential store (flow_krb.c), then it is wiped. */
	if (rc == AMTPROV_OK && c->krb)
		rc = flow_krb_store(c->krb, pw, err);
	util_secret_free(pw);
	return rc;
}

static void dir_done(struct engine_job *job, int rc, const struct amtprov_error *err, void *arg)
{
	struct dir_call *c = arg;
	char why[STORE_TEXT_SIZE + STORE_FQDN_SIZE + AMTPROV_ERROR_MSG_SIZE];

	if (rc == AMTPROV_OK) {
		dir_call_free(c);
		flow_end(job, FLOW_DONE);
		return;
	}
	snprintf(why, sizeof(why), "directory account for %s: %s", c->fqdn,
		 err->msg[0] ? err->msg : amtprov_strerror(rc));
	dir_call_free(c);
	engine_job_done(job, DS_INVALID, rc, why);
}

static void step_directory(struct engine_job *job, void *ctx)
{
	struct flow *f = ctx;
	const struct store_device *dev = engine_job_device(job);
	struct manifest *m = site_manifest(f->site);
	struct plugin_instance *pi = plugin_host_find(site_plugins(f->site), m->directory);
	struct amtprov_error err;
	struct dir_call *c;

	amtprov_error_clear(&err);
	if (!pi) {
		engine_job_fail(job, AMTPROV_E_CONFIG, "directory plugin instance is not loaded");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	c->pi = pi;
	c->f = f;
	util_strlcpy(c->fqdn, dev->fqdn, sizeof(c->fqdn));
	flow_account_name(dev->fqdn, c->account, sizeof(c->account));
	c->container = m->directory_container;
	if (flow_device_spns(dev->fqdn, c->spn_buf, sizeof(c->spn_buf), c->spns, 8) < 0) {
		free(c);
		engine_job_fail(job, AMTPROV_E_INVALID, "device FQDN too long for its SPNs");
		return;
	}
	c->krb = flow_krb_prep_new(m, pi, m->credstore ? plugin_host_find(site_plugins(f->site),
									  m->credstore) : NULL,
				   dev->fqdn, &err);
	if (!c->krb && err.code) {
		free(c);
		engine_job_done(job, DS_INVALID, err.code, err.msg);
		return;
	}
	if (engine_job_blocking(job, dir_create, dir_done, c, &err) != AMTPROV_OK) {
		dir_call_free(c);
		engine_job_done(job, DS_INVALID, err.code, err.msg);
		return;
	}
	engine_job_set_abort(job, dir_call_free, c);
}

/* ---- NEED_DEVICE_CHECK: R-PROV-01 state, R-PC-05 namespace, R-PROV-05 OTP, root hash ---- */

struct check {
	struct flow *f;
	struct engine_job *job;
	void *session;
	struct flow_device_accounts accounts;
	struct amtprov_device_info info;
	char fqdn[STORE_FQDN_SIZE];
	char otp_hash[STORE_HASH_SIZE];
};

static void check_abort(void *arg)
{
	struct check *c = arg;

	if (c->session)
		tloop_session_close(c->f->tloop, c->session);
	flow_device_accounts_free(&c->accounts);
	free(c);
}

static void check_end(struct check *c, enum device_state next, int rc, const char *why,
		      int permanent)
{
	if (c->session)
		tloop_session_close(c->f->tloop, c->session);
	flow_device_accounts_free(&c->accounts);
	if (permanent)
		engine_job_fail(c->job, rc, why);
	else if (rc == AMTPROV_OK)
		flow_end(c->job, FLOW_DONE);
	else
		engine_job_done(c->job, next, rc, why);
	free(c);
}

static int hash_alg(const json_t *v)
{
	if (json_is_integer(v))
		return (int)json_integer_value(v); /* AMT's HashType: 1, 2, 3 */
	return json_is_string(v) ? pki_hash_parse(json_string_value(v)) : -1;
}

static void on_hashes(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	struct check *c = ctx;
	struct manifest *m = site_manifest(c->f->site);
	const json_t *arr = result ? json_object_get(result, "hashes") : NULL;
	struct pf_hash *hashes = NULL;
	struct pf_report r = {0};
	struct pf_options opt = {.service_point_fqdn = m->service_point_fqdn,
				 .now = site_now(c->f->site)};
	struct pf_device dev = {.fqdn = c->fqdn, .hashes_known = 1};
	const struct pf_result *bad;
	size_t n = 0, i;
	json_t *h;

	if (rc != AMTPROV_OK) {
		check_end(c, DS_INVALID, rc, err->msg, 0);
		return;
	}
	hashes = calloc(json_array_size(arr) + 1, sizeof(*hashes));
	json_array_foreach(arr, i, h) {
		const char *hex = json_string_value(json_object_get(h, "hash"));
		int alg = hash_alg(json_object_get(h, "algorithm"));

		if (hashes && hex && alg > 0) {
			hashes[n].alg = alg;
			util_strlcpy(hashes[n].hex, hex, sizeof(hashes[n].hex));
			n++;
		}
	}
	dev.hashes = hashes;
	dev.n_hashes = n;
	preflight_device(c->f->pf, &opt, &dev, &r);
	free(hashes);
	bad = pf_report_find(&r, "device-root-hash", NULL);
	if (bad && !bad->ok) {
		char why[2 * PF_TEXT_SIZE + 96];

		/* The admin's fix is in the firmware: say which hash to add (R-PC-04). */
		snprintf(why, sizeof(why), "root certificate hash not active in AMT: expected %.200s; "
			 "device reports %.200s", bad->expected, bad->actual);
		pf_report_free(&r);
		check_end(c, DS_INVALID, AMTPROV_E_VERIFY, why, 1);
		return;
	}
	pf_report_free(&r);
	check_end(c, DS_INVALID, AMTPROV_OK, NULL, 0);
}

/* R-PROV-07: AMT refuses a provisioning certificate it dislikes in the handshake and never
 * says why. Turn the refusal into what the admin can act on: the R-PC checks amtprov can
 * run here (the certificate's own, and the namespace), and the one it cannot (R-PC-04: the
 * device's root hashes, unknown until the firmware answers), with the command that checks
 * them. The transport's words come last; the whole fits the store's reason. */
static int tls_refused(int rc, const struct amtprov_error *err)
{
	return rc == AMTPROV_E_DENIED && err && strstr(err->msg, "TLS handshake");
}

void flow_tls_refusal_reason(struct flow *f, const char *fqdn, const char *transport_msg,
			     char *out, size_t size)
{
	struct manifest *m = site_manifest(f->site);
	struct pf_options opt = {.service_point_fqdn = m->service_point_fqdn,
				 .now = site_now(f->site)};
	struct pf_device dev = {.fqdn = fqdn};
	struct pf_report r = {0};
	char failed[160] = "";
	size_t n;

	if (!f->pf || preflight_run(f->pf, &opt, &r) != AMTPROV_OK ||
	    preflight_device(f->pf, &opt, &dev, &r) != AMTPROV_OK) {
		pf_report_free(&r);
		snprintf(out, size, "R-PROV-07: %s; check the provisioning certificate with "
			 "'amtprov cert check --device %s'", transport_msg, fqdn);
		return;
	}
	for (size_t i = 0; i < r.n; i++) {
		const struct pf_result *x = &r.items[i];

		n = strlen(failed);
		if (!x->ok && strncmp(x->requirement, "R-PC-", 5) == 0 && n + 64 < sizeof(failed))
			snprintf(failed + n, sizeof(failed) - n, "%s%s (%s)", n ? ", " : "",
				 x->requirement, x->id);
	}
	if (failed[0])
		n = (size_t)snprintf(out, size, "R-PROV-07: the device refused the provisioning "
				     "TLS handshake. The provisioning certificate fails %s; see "
				     "'amtprov cert check --device %s'. ", failed, fqdn);
	else
		n = (size_t)snprintf(out, size, "R-PROV-07: the device refused the provisioning "
				     "TLS handshake. The certificate passes R-PC-01/02/03/05, so the "
				     "likely cause is R-PC-04: root hash SHA-256 %s not active in the "
				     "firmware; check with 'amtprov cert check --device %s "
				     "--device-hashes FILE'. Else R-PC-05: AMT's DNS suffix is outside "
				     "%s. ",
				     r.root_sha256[0] ? r.root_sha256 : "unknown", fqdn,
				     m->dns_suffix ? m->dns_suffix : m->service_point_fqdn);
	pf_report_free(&r);
	if (n < size)
		snprintf(out + n, size - n, "Transport: %s", transport_msg);
	if (strlen(out) + 1 >= size)
		amtprov_error_cut(out, size);
}

static void on_otp(void *ctx, int rc, const json_t *result, const struct amtprov_error *err)
{
	struct check *c = ctx;
	const char *reported = result ? json_string_value(json_object_get(result, "otp_hash")) : NULL;
	struct amtprov_error e2;

	if (rc != AMTPROV_OK) {
		check_end(c, DS_INVALID, rc, err->msg, 0);
		return;
	}
	/* R-PROV-05: the hash the agent registered must be what the firmware holds. */
	if (!reported || strcasecmp(reported, c->otp_hash) != 0) {
		char why[2 * STORE_HASH_SIZE + 96];

		snprintf(why, sizeof(why), "R-PROV-05: OTP hash mismatch: registered %.130s, "
			 "firmware reports %.130s", c->otp_hash, reported ? reported : "(none)");
		site_status(c->f->site, STATUS_OTP_MISMATCH, c->fqdn, why);
		check_end(c, DS_INVALID, AMTPROV_E_VERIFY, why, 1);
		return;
	}
	amtprov_error_clear(&e2);
	if (tloop_call(c->f->tloop, c->session, AMTPROV_AMT_GET_HASHES, NULL, on_hashes, c, &e2))
		check_end(c, DS_INVALID, e2.code, e2.msg, 0);
}

static void on_setup_state(void *ctx, int rc, const json_t *result,
			   const struct amtprov_error *err)
{
	struct check *c = ctx;
	const char *state = result ? json_string_value(json_object_get(result, "state")) : NULL;
	struct amtprov_error e2;

	if (rc != AMTPROV_OK && tls_refused(rc, err)) {
		char why[STORE_TEXT_SIZE - 64]; /* the engine prefixes the step's name */

		flow_tls_refusal_reason(c->f, c->fqdn, err->msg, why, sizeof(why));
		check_end(c, DS_INVALID, rc, why, 0);
		return;
	}
	if (rc != AMTPROV_OK) {
		check_end(c, DS_INVALID, rc, err->msg, 0);
		return;
	}
	/* R-PROV-01: only a device that is not provisioned is configured. */
	if (!state || (strcmp(state, "pre") != 0 && strcmp(state, "in") != 0)) {
		char why[128];

		snprintf(why, sizeof(why), "R-PROV-01: AMT provisioning state is '%s', not "
			 "Not Provisioned", state ? state : "(unknown)");
		site_status(c->f->site, STATUS_DEVICE_REFUSED, c->fqdn, why);
		check_end(c, DS_INVALID, AMTPROV_E_STATE, why, 1);
		return;
	}
	amtprov_error_clear(&e2);
	if (tloop_call(c->f->tloop, c->session, AMTPROV_AMT_GET_OTP_HASH, NULL, on_otp, c, &e2))
		check_end(c, DS_INVALID, e2.code, e2.msg, 0);
}

static void step_device_check(struct engine_job *job, void *ctx)
{
	struct flow *f = ctx;
	const struct store_device *d = engine_job_device(job);
	struct manifest *m = site_manifest(f->site);
	struct amtprov_transport_target tgt;
	struct amtprov_error err;
	char root[STORE_FQDN_SIZE], sp_root[STORE_FQDN_SIZE];
	struct check *c;

	/* R-PC-05: AMT would refuse the provisioning certificate anyway; say why up front. */
	if (!pki_namespace_shared(d->fqdn, m->service_point_fqdn, root, sizeof(root), sp_root,
				  sizeof(sp_root))) {
		char why[2 * STORE_FQDN_SIZE + 2 * 64 + 96];

		snprintf(why, sizeof(why), "R-PC-05: device %.200s (namespace %.60s) and service "
			 "point %.200s (namespace %.60s) do not share a DNS namespace",
			 d->fqdn, root, m->service_point_fqdn, sp_root);
		site_status(f->site, STATUS_NAMESPACE_MISMATCH, d->fqdn, why);
		engine_job_fail(job, AMTPROV_E_VERIFY, why);
		return;
	}
	if (!d->otp_hash[0]) {
		engine_job_fail(job, AMTPROV_E_INVALID,
				"R-PROV-02: the device was registered without an OTP hash; "
				"register it again with its agent's OTP hash");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		engine_job_done(job, DS_INVALID, AMTPROV_E_NOMEM, "out of memory");
		return;
	}
	c->f = f;
	c->job = job;
	engine_job_set_abort(job, check_abort, c);
	util_strlcpy(c->fqdn, d->fqdn, sizeof(c->fqdn));
	util_strlcpy(c->otp_hash, d->otp_hash, sizeof(c->otp_hash));
	amtprov_error_clear(&err);
	if (flow_device_accounts(f, c->fqdn, &c->accounts, &err) != AMTPROV_OK) {
		check_end(c, DS_INVALID, err.code, err.msg, 0);
		return;
	}
	flow_provisioning_target(f, d, &c->accounts, &c->info, &tgt);
	if (tloop_session_open(f->tloop, &tgt, &c->session, &err) != AMTPROV_OK ||
	    tloop_call(f->tloop, c->session, AMTPROV_AMT_GET_SETUP_STATE, NULL, on_setup_state, c,
		       &err) != AMTPROV_OK) {
		check_end(c, DS_INVALID, err.code, err.msg, 0);
		return;
	}
}

void flow_provisioning_target(struct flow *f, const struct store_device *d,
			      const struct flow_device_accounts *accounts,
			      struct amtprov_device_info *info, struct amtprov_transport_target *tgt)
{
	int major = 0, minor = 0;

	sscanf(d->amt_version, "%d.%d", &major, &minor);
	*info = (struct amtprov_device_info){.struct_size = sizeof(*info), .fqdn = d->fqdn,
					     .uuid = d->uuid, .amt_major = major,
					     .amt_minor = minor,
					     .wired_ip = d->wired_ip[0] ? d->wired_ip : NULL,
					     .wireless_capable = d->wireless_capable};
	memset(tgt, 0, sizeof(*tgt));
	tgt->struct_size = sizeof(*tgt);
	tgt->device = info;
	/* R-PROV-02: wireless-capable devices are provisioned over their wired address. */
	tgt->address = d->wired_ip[0] ? d->wired_ip : d->fqdn;
	tgt->port = FLOW_AMT_TLS_PORT;
	tgt->mode = AMTPROV_TRANSPORT_PROVISIONING;
	tgt->client_chain_pem = f->chain_pem;
	tgt->client_key_pem = f->key_pem;
	tgt->accounts = accounts->list;
	tgt->n_accounts = accounts->n;
}

int flow_device_accounts(struct flow *f, const char *fqdn, struct flow_device_accounts *out,
			 struct amtprov_error *err)
{
	struct manifest *m = site_manifest(f->site);
	struct plugin_instance *cs =
		m->credstore ? plugin_host_find(site_plugins(f->site), m->credstore) : NULL;
	char name[STORE_FQDN_SIZE + 40];
	struct amtprov_error ignore;

	memset(out, 0, sizeof(*out));
	out->list = calloc(f->n_accounts + 2, sizeof(*out->list));
	if (!out->list)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	/* The device's own admin password first: amtprov stores one only once it set it in
	 * the first stage, and from then on the device takes it (AMT accepts it beside the
	 * setup account until CommitChanges, and only it afterwards), so a managed device is
	 * reached without a refused Digest answer. Then a pending one (set just before a
	 * crash), then the site's setup accounts: a device reset by hand since (its stored
	 * password outdated) still gets them, one refused answer later. */
	if (cs) {
		flow_admin_cred_name(fqdn, name, sizeof(name));
		amtprov_error_clear(&ignore);
		if (pi_credstore_get(cs, name, &out->current, &ignore) == AMTPROV_OK) {
			out->list[out->n].user = "admin";
			out->list[out->n++].password = out->current;
		}
		util_strlcpy(name + strlen(name), ".pending", sizeof(name) - strlen(name));
		amtprov_error_clear(&ignore);
		if (pi_credstore_get(cs, name, &out->pending, &ignore) == AMTPROV_OK) {
			out->list[out->n].user = "admin";
			out->list[out->n++].password = out->pending;
		}
	}
	memcpy(out->list + out->n, f->tr_accounts, f->n_accounts * sizeof(*out->list));
	out->n += f->n_accounts;
	return AMTPROV_OK;
}

void flow_device_accounts_free(struct flow_device_accounts *a)
{
	if (!a)
		return;
	free(a->list);
	util_secret_free(a->current);
	util_secret_free(a->pending);
	memset(a, 0, sizeof(*a));
}

struct flow *flow_new(struct site *site)
{
	struct flow *f = calloc(1, sizeof(*f));

	if (f)
		f->site = site;
	return f;
}

static void drop_amt(struct flow *f)
{
	tloop_free(f->tloop);
	f->tloop = NULL;
	preflight_free(f->pf);
	f->pf = NULL;
	free(f->chain_pem);
	f->chain_pem = NULL;
	util_secret_free(f->key_pem);
	f->key_pem = NULL;
	for (size_t i = 0; i < f->n_accounts; i++) {
		free(f->accounts[i].user);
		util_secret_free(f->accounts[i].password);
	}
	free(f->accounts);
	free(f->tr_accounts);
	f->accounts = NULL;
	f->tr_accounts = NULL;
	f->n_accounts = 0;
}

/* ---- CRL URLs of recorded certificates, by the SHA-256 of their DER (flow_crl_url) ---- */

/* Four-way set associative, the least recently used entry of a set replaced: sized for the
 * devices between their certificate's recording and their managed sessions (depth first:
 * at most max_in_flight), four slots per device in flight (at least 1024, at most 65536;
 * ~48 bytes each, plus the URL), so that a set overflows rarely. A miss costs a parse. */
#define CRL_URL_WAYS 4

struct flow_crl_slot {
	unsigned char sha256[SHA256_DIGEST_LENGTH];
	char *url;     /* NULL: empty slot; "" when the certificate names no CRL */
	uint64_t used; /* flow's crl_clock at the last use */
};

static size_t crl_slots(const struct flow *f)
{
	size_t want = 4 * (size_t)(f->site ? site_manifest(f->site)->engine.max_in_flight : 256),
	       n = 1024;

	while (n < want && n < 65536)
		n *= 2;
	return n;
}

/* The set of @p der's digest (into @p md); NULL when it cannot be had. */
static struct flow_crl_slot *crl_set(struct flow *f, const uint8_t *der, size_t len,
				     unsigned char *md)
{
	uint32_t h;

	if (!der || !len || !SHA256(der, len, md))
		return NULL;
	if (!f->crl_urls) {
		f->n_crl_urls = crl_slots(f);
		f->crl_urls = calloc(f->n_crl_urls, sizeof(*f->crl_urls));
		if (!f->crl_urls)
			return NULL;
	}
	memcpy(&h, md, sizeof(h));
	return &f->crl_urls[(h % (f->n_crl_urls / CRL_URL_WAYS)) * CRL_URL_WAYS];
}

static struct flow_crl_slot *crl_find(struct flow *f, struct flow_crl_slot *set,
				      const unsigned char *md)
{
	for (int i = 0; set && i < CRL_URL_WAYS; i++)
		if (set[i].url && memcmp(set[i].sha256, md, SHA256_DIGEST_LENGTH) == 0) {
			set[i].used = ++f->crl_clock;
			return &set[i];
		}
	return NULL;
}

static char *crl_url_of(X509 *x)
{
	char **cdp = x ? pki_cdp_urls(x) : NULL;
	char *url = cdp && cdp[0] ? strdup(cdp[0]) : NULL;

	pki_strv_free(cdp);
	return url;
}

static void crl_remember(struct flow *f, struct flow_crl_slot *set, const unsigned char *md,
			 const char *url)
{
	struct flow_crl_slot *hit = crl_find(f, set, md), *slot = hit;
	char *copy = strdup(url ? url : "");

	/* Else an empty slot of the set, else its least recently used. */
	for (int i = 0; set && !hit && i < CRL_URL_WAYS; i++)
		if (!slot || (slot->url && (!set[i].url || set[i].used < slot->used)))
			slot = &set[i];
	if (!slot || !copy) {
		free(copy);
		return;
	}
	free(slot->url);
	slot->url = copy;
	slot->used = ++f->crl_clock;
	memcpy(slot->sha256, md, sizeof(slot->sha256));
}

void flow_crl_url_note(struct flow *f, const uint8_t *der, size_t len, X509 *x)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	struct flow_crl_slot *set = crl_set(f, der, len, md);
	char *url;

	if (!set || !x)
		return;
	url = crl_url_of(x);
	crl_remember(f, set, md, url);
	free(url);
}

char *flow_crl_url(struct flow *f, const uint8_t *der, size_t len)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	struct flow_crl_slot *set = crl_set(f, der, len, md), *hit = crl_find(f, set, md);
	const unsigned char *p = der;
	X509 *x;
	char *url;

	if (hit)
		return hit->url[0] ? strdup(hit->url) : NULL;
	x = der ? d2i_X509(NULL, &p, (long)len) : NULL;
	url = crl_url_of(x);
	if (x && set) /* what does not parse is not remembered */
		crl_remember(f, set, md, url);
	X509_free(x);
	return url;
}

void flow_free(struct flow *f)
{
	if (!f)
		return;
	drop_amt(f);
	for (size_t i = 0; f->crl_urls && i < f->n_crl_urls; i++)
		free(f->crl_urls[i].url);
	free(f->crl_urls);
	free(f);
}

/* Loads what the AMT steps need once: the provisioning certificate the manifest names
 * (R-PC-07) and the Digest accounts' passwords (R-PROV-09). */
static int prepare_amt(struct engine *e, struct flow *f, struct amtprov_error *err)
{
	struct manifest *m = site_manifest(f->site);
	struct plugin_host *ph = site_plugins(f->site);
	struct plugin_instance *tr = plugin_host_find(ph, m->transport);
	struct plugin_instance *cs = m->credstore ? plugin_host_find(ph, m->credstore) : NULL;
	size_t len = 0;
	int rc;

	if (!tr)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/amt/transport",
					 "transport instance '%s' is not loaded", m->transport);
	rc = preflight_load_manifest(m, cs, &f->pf, err);
	if (rc == AMTPROV_OK)
		rc = preflight_chain_pem(f->pf, &f->chain_pem, &len, err);
	if (rc == AMTPROV_OK)
		rc = preflight_key_pem(f->pf, &f->key_pem, err);
	if (rc)
		return rc;
	f->accounts = calloc(m->n_prov_accounts ? m->n_prov_accounts : 1, sizeof(*f->accounts));
	f->tr_accounts = calloc(m->n_prov_accounts ? m->n_prov_accounts : 1,
				sizeof(*f->tr_accounts));
	if (!f->accounts || !f->tr_accounts)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	for (size_t i = 0; i < m->n_prov_accounts; i++) {
		const struct manifest_prov_account *a = &m->prov_accounts[i];
		struct flow_account *fa = &f->accounts[i];

		fa->user = strdup(a->user);
		if (!fa->user)
			return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		if (a->password) {
			if (!cs)
				return amtprov_error_set(err, AMTPROV_E_CONFIG, "/credentials/store",
							 "no credential store for account '%s'",
							 a->user);
			rc = pi_credstore_get(cs, a->password, &fa->password, err);
			if (rc)
				return rc;
		} else {
			fa->password = util_secret_new(0); /* AMT's empty provisioning password */
			if (!fa->password)
				return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		}
		f->tr_accounts[i].user = fa->user;
		f->tr_accounts[i].password = fa->password;
		f->n_accounts++;
	}
	f->tloop = tloop_new(engine_base(e), tr, site_log(f->site), err);
	return f->tloop ? AMTPROV_OK : err->code;
}

/* R-PC-08: the configured provisioning certificate is recorded as revoked. */
static int provcert_stopped(struct flow *f)
{
	struct provcert_info pc;
	struct amtprov_error err;
	char msg[STORE_TEXT_SIZE];

	amtprov_error_clear(&err);
	if (!f->chain_pem || provcert_from_pem(f->chain_pem, strlen(f->chain_pem), &pc, &err) ||
	    !provcert_known_revoked(f->site, pc.sha256))
		return 0;
	snprintf(msg, sizeof(msg), "R-PC-08: the configured provisioning certificate (serial "
		 "%.64s) is revoked: provisioning is stopped until a valid one is configured",
		 pc.serial_hex);
	site_status(f->site, STATUS_PROVCERT_REVOKED, NULL, msg);
	return 1;
}

/* The engine's idle hook: the device's steps stopped following each other, so the
 * connection the transport kept for its next session goes now rather than idling for the
 * transport's keep-alive (issue 13: finished devices' connections filled libcurl's cache,
 * which it walks on every transfer). */
static void device_idle(void *ctx, const struct store_device *dev)
{
	struct flow *f = ctx;

	if (f->tloop)
		tloop_device_idle(f->tloop, dev->wired_ip[0] ? dev->wired_ip : dev->fqdn,
				  FLOW_AMT_TLS_PORT);
}

int flow_register(struct engine *e, struct flow *f, struct amtprov_error *err)
{
	struct manifest *m;

	if (!e || !f)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no engine or flow");
	m = site_manifest(f->site);
	engine_set_handler(e, DS_REGISTERED, step_registered, f);
	engine_set_handler(e, DS_NEED_DIRECTORY_ACCOUNT, step_directory, f);
	engine_set_idle_hook(e, device_idle, f);
	if (m->transport) {
		struct amtprov_error perr;

		amtprov_error_clear(&perr);
		drop_amt(f);
		if (prepare_amt(e, f, &perr) != AMTPROV_OK) {
			/* Provisioning stops (devices wait in NEED_DEVICE_CHECK) until the site
			 * is fixed; nothing is failed for a site-wide problem. */
			char msg[AMTPROV_ERROR_MSG_SIZE + AMTPROV_ERROR_WHERE_SIZE + 4];

			snprintf(msg, sizeof(msg), "%s%s%s", perr.where, perr.where[0] ? ": " : "",
				 perr.msg);
			site_status(f->site, STATUS_PROVCERT_INVALID, NULL, msg);
			drop_amt(f);
		} else if (provcert_stopped(f)) {
			/* R-PC-08: no device is shown a revoked provisioning certificate. Devices
			 * wait at their AMT steps; provisioned ones are still maintained. */
			engine_set_handler(e, DS_NEED_SECOND_STAGE, flow_step_second_stage, f);
			engine_set_handler(e, DS_NEED_8021X, flow_step_8021x, f);
		} else {
			engine_set_handler(e, DS_NEED_DEVICE_CHECK, step_device_check, f);
			engine_set_handler(e, DS_NEED_FIRST_STAGE, flow_step_first_stage, f);
			engine_set_handler(e, DS_NEED_COMMIT, flow_step_commit, f);
			engine_set_handler(e, DS_NEED_SECOND_STAGE, flow_step_second_stage, f);
			engine_set_handler(e, DS_NEED_8021X, flow_step_8021x, f);
		}
	}
	/* R-PROV-06: the web server certificate, when the site names a CA for it; its key
	 * is kept in the credential store, so one is required. */
	if (m->web_server.ca) {
		if (!m->credstore || !plugin_host_find(site_plugins(f->site), m->credstore) ||
		    !plugin_host_find(site_plugins(f->site), m->web_server.ca)) {
			site_status(f->site, STATUS_SITE_INCOMPLETE, NULL,
				    "/certificates/web_server: a loaded CA instance and a credential "
				    "store (/credentials/store) are needed to request web server "
				    "certificates");
		} else {
			engine_set_handler(e, DS_NEED_CERTIFICATE, flow_step_certificate, f);
			engine_set_handler(e, DS_CA_WAITING, flow_step_ca_waiting, f);
		}
	}
	return AMTPROV_OK;
}

int flow_ca_contract(struct flow *f, struct plugin_instance *ca, uint32_t purpose,
		     const char *fqdn, EVP_PKEY *key, int min_key_bits, int min_digest_bits,
		     const struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct ca_contract k = {.purpose = purpose, .ca_instance = plugin_instance_name(ca),
				.fqdn = fqdn, .request_key = key, .min_key_bits = min_key_bits,
				.min_digest_bits = min_digest_bits};
	struct amtprov_error e;
	int rc;

	amtprov_error_clear(&e);
	ca_contract_from_site(site_manifest(f->site), site_plugins(f->site), &k);
	rc = ca_contract_check(&k, res, NULL, &e);
	if (rc == AMTPROV_E_VERIFY)
		site_status(f->site, STATUS_CA_CONTRACT_VIOLATED, fqdn, e.msg);
	if (rc)
		amtprov_error_set(err, rc, fqdn, "%s", e.msg);
	return rc;
}
