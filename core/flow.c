/* SPDX-License-Identifier: Apache-2.0 */
#include "flow.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "util.h"

struct flow {
	struct site *site;
};

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
	engine_job_done(job, m->directory ? DS_NEED_DIRECTORY_ACCOUNT : DS_NEED_DEVICE_CHECK,
			AMTPROV_OK, NULL);
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
};

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

	/* The account password is not needed by amtprov: AMT's Kerberos keys come from
	 * the realm settings. Wipe it. */
	util_secret_free(pw);
	return rc;
}

static void dir_done(struct engine_job *job, int rc, const struct amtprov_error *err, void *arg)
{
	struct dir_call *c = arg;
	char why[STORE_TEXT_SIZE + STORE_FQDN_SIZE + AMTPROV_ERROR_MSG_SIZE];

	if (rc == AMTPROV_OK) {
		free(c);
		engine_job_done(job, DS_NEED_DEVICE_CHECK, AMTPROV_OK, NULL);
		return;
	}
	snprintf(why, sizeof(why), "directory account for %s: %s", c->fqdn,
		 err->msg[0] ? err->msg : amtprov_strerror(rc));
	free(c);
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
	if (engine_job_blocking(job, dir_create, dir_done, c, &err) != AMTPROV_OK) {
		free(c);
		engine_job_done(job, DS_INVALID, err.code, err.msg);
	}
}

struct flow *flow_new(struct site *site)
{
	struct flow *f = calloc(1, sizeof(*f));

	if (f)
		f->site = site;
	return f;
}

void flow_free(struct flow *f)
{
	free(f);
}

int flow_register(struct engine *e, struct flow *f, struct amtprov_error *err)
{
	if (!e || !f)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no engine or flow");
	engine_set_handler(e, DS_REGISTERED, step_registered, f);
	engine_set_handler(e, DS_NEED_DIRECTORY_ACCOUNT, step_directory, f);
	return AMTPROV_OK;
}
