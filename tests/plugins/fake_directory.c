/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_directory.c - a directory plugin (kind DIRECTORY) that keeps accounts in memory.
 *
 * Config:
 *   fail_with  "" (default), "unreachable", "denied" or "exists": every create_account and
 *              delete_account fails with that error, so engine tests can drive each path
 *   delay_ms   sleep this long in each call; blocking is allowed here because directory
 *              calls run on the engine's worker pool, and tests use it to prove that
 * Kerberos (ABI 1.2), a test double of what a real directory reads back (the Kerberos
 * integration test makes the same account in a real KDC with these values):
 *   password   the account password create_account returns
 *   realm, salt, kvno, enctypes   what account_keyinfo reports for every account
 *   sids       "name=S-1-...,name2=S-1-..." what resolve_sid answers; other names are
 *              AMTPROV_E_NOT_FOUND
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <amtprov/directory.h>

struct dir_cfg {
	char *fail_with;
	long long delay_ms;
	char *password, *realm, *salt, *sids;
	long long kvno, enctypes;
};

static const struct amtprov_config_field dir_table[] = {
	{"fail_with", AMTPROV_CFG_STRING, offsetof(struct dir_cfg, fail_with), 0, "", 0, 0,
	 "\"\", \"unreachable\", \"denied\" or \"exists\": fail every call with it"},
	{"delay_ms", AMTPROV_CFG_INT, offsetof(struct dir_cfg, delay_ms), 0, "0", 0, 60000,
	 "milliseconds each call sleeps"},
	{"password", AMTPROV_CFG_STRING, offsetof(struct dir_cfg, password), 0,
	 "Fake-Dir-Passw0rd!", 0, 0, "the account password create_account returns"},
	{"realm", AMTPROV_CFG_STRING, offsetof(struct dir_cfg, realm), 0, "EXAMPLE.TEST", 0, 0,
	 "account_keyinfo's realm"},
	{"salt", AMTPROV_CFG_STRING, offsetof(struct dir_cfg, salt), 0, "", 0, 0,
	 "account_keyinfo's AES salt"},
	{"kvno", AMTPROV_CFG_INT, offsetof(struct dir_cfg, kvno), 0, "1", 1, 0x7fffffff,
	 "account_keyinfo's key version"},
	{"enctypes", AMTPROV_CFG_INT, offsetof(struct dir_cfg, enctypes), 0, "28", 0, 0xff,
	 "account_keyinfo's msDS-SupportedEncryptionTypes"},
	{"sids", AMTPROV_CFG_STRING, offsetof(struct dir_cfg, sids), 0, "", 0, 0,
	 "name=SID pairs, comma-separated, resolve_sid answers"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

struct dir_account {
	char *fqdn;
	char *account_name;
	size_t n_spns;
};

struct fake_dir {
	const struct amtprov_host *host;
	struct dir_cfg cfg;
	int fail_code;
	struct dir_account *accts;
	size_t n;
	unsigned long creates, deletes;
};

static void dir_destroy(void *instance)
{
	struct fake_dir *d = instance;

	if (!d)
		return;
	d->host->log(d->host, AMTPROV_LOG_INFO, "destroy (%lu creates, %lu deletes)", d->creates,
		     d->deletes);
	for (size_t i = 0; i < d->n; i++) {
		free(d->accts[i].fqdn);
		free(d->accts[i].account_name);
	}
	free(d->accts);
	d->host->config_free(d->host, dir_table, &d->cfg);
	free(d);
}

static int dir_create(const struct amtprov_host *host, const struct json_t *config,
		      void **instance, struct amtprov_error *err)
{
	struct fake_dir *d = calloc(1, sizeof(*d));
	const char *f;
	int rc;

	if (!d)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	d->host = host;
	rc = host->config_parse(host, config, dir_table, &d->cfg, err);
	f = d->cfg.fail_with ? d->cfg.fail_with : "";
	if (rc == AMTPROV_OK) {
		if (strcmp(f, "") == 0)
			d->fail_code = AMTPROV_OK;
		else if (strcmp(f, "unreachable") == 0)
			d->fail_code = AMTPROV_E_UNREACHABLE;
		else if (strcmp(f, "denied") == 0)
			d->fail_code = AMTPROV_E_DENIED;
		else if (strcmp(f, "exists") == 0)
			d->fail_code = AMTPROV_E_EXISTS;
		else
			rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "/fail_with",
					       "must be \"\", \"unreachable\", \"denied\" or "
					       "\"exists\", not \"%s\"",
					       f);
	}
	if (rc != AMTPROV_OK) {
		host->config_free(host, dir_table, &d->cfg);
		free(d);
		return rc;
	}
	*instance = d;
	return AMTPROV_OK;
}

static void dir_sleep(const struct fake_dir *d)
{
	struct timespec ts = {(time_t)(d->cfg.delay_ms / 1000),
			      (long)(d->cfg.delay_ms % 1000) * 1000000L};

	while (d->cfg.delay_ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int dir_fail(const struct fake_dir *d, const char *fqdn, struct amtprov_error *err)
{
	switch (d->fail_code) {
	case AMTPROV_E_UNREACHABLE:
		return amtprov_error_set(err, AMTPROV_E_UNREACHABLE, fqdn,
					 "fake directory: domain controller unreachable");
	case AMTPROV_E_DENIED:
		return amtprov_error_set(err, AMTPROV_E_DENIED, fqdn,
					 "fake directory: insufficient rights on the container");
	case AMTPROV_E_EXISTS:
		return amtprov_error_set(err, AMTPROV_E_EXISTS, fqdn,
					 "fake directory: SPN already registered to another "
					 "account");
	default:
		return AMTPROV_OK;
	}
}

static struct dir_account *find(struct fake_dir *d, const char *fqdn)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->accts[i].fqdn, fqdn) == 0)
			return &d->accts[i];
	return NULL;
}

static const char *d_password(void *instance)
{
	const struct fake_dir *d = instance;

	return d->cfg.password ? d->cfg.password : "";
}

static int dir_create_account(void *instance, const struct amtprov_directory_account *acct,
			      struct amtprov_secret **password, struct amtprov_error *err)
{
	const char *pw = d_password(instance);
	struct fake_dir *d = instance;
	struct dir_account *a, *grown;
	size_t n_spns = 0;

	if (!acct || !acct->fqdn || !acct->account_name)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no account");
	dir_sleep(d);
	if (d->fail_code)
		return dir_fail(d, acct->fqdn, err);
	for (const char *const *s = acct->spns; s && *s; s++)
		n_spns++;
	d->creates++;
	d->host->log(d->host, AMTPROV_LOG_INFO, "create_account %s (%s, %zu SPNs)", acct->fqdn,
		     acct->account_name, n_spns);
	a = find(d, acct->fqdn);
	if (a) {
		/* Same device again: an update, as the ABI allows. */
		a->n_spns = n_spns;
	} else {
		grown = realloc(d->accts, (d->n + 1) * sizeof(*grown));
		if (!grown)
			return amtprov_error_set(err, AMTPROV_E_NOMEM, acct->fqdn, "out of memory");
		d->accts = grown;
		a = &d->accts[d->n];
		a->fqdn = strdup(acct->fqdn);
		a->account_name = strdup(acct->account_name);
		a->n_spns = n_spns;
		if (!a->fqdn || !a->account_name) {
			free(a->fqdn);
			free(a->account_name);
			return amtprov_error_set(err, AMTPROV_E_NOMEM, acct->fqdn, "out of memory");
		}
		d->n++;
	}
	if (password) {
		*password = d->host->secret_new(d->host, strlen(pw));
		if (!*password)
			return amtprov_error_set(err, AMTPROV_E_NOMEM, acct->fqdn, "out of memory");
		memcpy((*password)->data, pw, strlen(pw));
	}
	return AMTPROV_OK;
}

static int dir_delete_account(void *instance, const char *fqdn, struct amtprov_error *err)
{
	struct fake_dir *d = instance;
	struct dir_account *a;

	if (!fqdn)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no FQDN");
	dir_sleep(d);
	if (d->fail_code)
		return dir_fail(d, fqdn, err);
	a = find(d, fqdn);
	if (!a)
		return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, fqdn,
					 "fake directory: no account for %s", fqdn);
	d->deletes++;
	d->host->log(d->host, AMTPROV_LOG_INFO, "delete_account %s", fqdn);
	free(a->fqdn);
	free(a->account_name);
	*a = d->accts[--d->n];
	return AMTPROV_OK;
}

static void copy(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= size)
		n = size - 1;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

static int dir_keyinfo(void *instance, const char *fqdn, struct amtprov_directory_keyinfo *out,
		       struct amtprov_error *err)
{
	struct fake_dir *d = instance;

	if (d->fail_code)
		return dir_fail(d, fqdn, err);
	if (!find(d, fqdn))
		return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, fqdn,
					 "fake directory: no account for %s", fqdn);
	copy(out->realm, sizeof(out->realm), d->cfg.realm);
	copy(out->salt, sizeof(out->salt), d->cfg.salt);
	out->kvno = (uint32_t)d->cfg.kvno;
	out->enctypes = (uint32_t)d->cfg.enctypes;
	return AMTPROV_OK;
}

static int dir_resolve_sid(void *instance, const char *name, char *sid, size_t sid_size,
			   struct amtprov_error *err)
{
	struct fake_dir *d = instance;
	size_t nl = strlen(name);

	for (const char *p = d->cfg.sids; p && *p;) {
		const char *eq = strchr(p, '='), *end = strchr(p, ',');

		if (!end)
			end = p + strlen(p);
		if (eq && eq < end && (size_t)(eq - p) == nl && !strncmp(p, name, nl)) {
			if ((size_t)(end - eq - 1) >= sid_size)
				return amtprov_error_set(err, AMTPROV_E_INVALID, name,
							 "SID too long");
			memcpy(sid, eq + 1, (size_t)(end - eq - 1));
			sid[end - eq - 1] = '\0';
			return AMTPROV_OK;
		}
		p = *end ? end + 1 : end;
	}
	return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, name,
				 "fake directory: no user or group '%s'", name);
}

static const struct amtprov_directory_ops dir_ops = {
	.struct_size = sizeof(struct amtprov_directory_ops),
	.create_account = dir_create_account,
	.delete_account = dir_delete_account,
	.account_keyinfo = dir_keyinfo,
	.resolve_sid = dir_resolve_sid,
};

static const char *const dir_caps[] = {AMTPROV_CAP_DIRECTORY_ACCOUNT, NULL};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_DIRECTORY, .name = "fake-directory",
		      .version = "0.1.0", .description = "in-memory directory for tests",
		      .capabilities = dir_caps, .create = dir_create, .destroy = dir_destroy,
		      .ops = &dir_ops, .config_table = dir_table);
