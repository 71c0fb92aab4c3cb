/* SPDX-License-Identifier: Apache-2.0 */
/* The host API: what a plugin instance may ask of the core. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "manifest.h"
#include "plugin_host_int.h"
#include "store_sync.h"
#include "util.h"

static struct plugin_instance *instance_of(const struct amtprov_host *host)
{
	return ((const struct host_impl *)host)->pi;
}

static void h_log(const struct amtprov_host *host, int level, const char *fmt, ...)
{
	struct plugin_instance *pi = instance_of(host);
	/* Calls from plugin threads outside pi_enter (e.g. a worker the plugin owns) still
	 * get attributed to the instance. */
	struct alog_ctx prev = alog_ctx_set(pi->label, alog_ctx_get().device);
	va_list ap;

	va_start(ap, fmt);
	alogv(pi->ph->env.log, level, fmt, ap);
	va_end(ap);
	alog_ctx_restore(prev);
}

static int h_status(const struct amtprov_host *host, uint32_t id, const char *device,
		    const char *fmt, ...)
{
	struct plugin_instance *pi = instance_of(host);
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt ? fmt : "", ap);
	va_end(ap);
	if (!pi->ph->env.emit_status) {
		alog(pi->ph->env.log, AMTPROV_LOG_NOTICE, "status %u: %s", (unsigned)id, detail);
		return AMTPROV_OK;
	}
	return pi->ph->env.emit_status(pi->ph->env.status_ctx, id, device, detail);
}

static int64_t h_now(const struct amtprov_host *host)
{
	struct plugin_instance *pi = instance_of(host);

	if (pi->ph->env.now)
		return pi->ph->env.now(pi->ph->env.now_ctx);
	return util_now();
}

static int64_t h_monotonic_ms(const struct amtprov_host *host)
{
	return util_monotonic_ms();
}

static struct amtprov_secret *h_secret_new(const struct amtprov_host *host, size_t len)
{
	return util_secret_new(len);
}

static void h_secret_free(const struct amtprov_host *host, struct amtprov_secret *s)
{
	util_secret_free(s);
}

static int h_secret_get(const struct amtprov_host *host, const char *name,
			struct amtprov_secret **out, struct amtprov_error *err)
{
	struct plugin_instance *pi = instance_of(host);
	struct plugin_instance *cs = pi->ph->credstore;

	/* A credential store never reads through itself (or another store). */
	if (!cs || pi->mod->desc->kind == AMTPROV_KIND_CREDSTORE)
		return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, name,
					 "no credential store is configured for this site "
					 "(manifest /credentials/store)");
	return pi_credstore_get(cs, name, out, err);
}

static int h_secret_put(const struct amtprov_host *host, const char *name,
			const struct amtprov_secret *secret, struct amtprov_error *err)
{
	struct plugin_instance *pi = instance_of(host);
	struct plugin_instance *cs = pi->ph->credstore;

	if (!cs || pi->mod->desc->kind == AMTPROV_KIND_CREDSTORE)
		return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, name,
					 "no credential store is configured for this site "
					 "(manifest /credentials/store)");
	return pi_credstore_put(cs, name, secret, err);
}

static int h_config_parse(const struct amtprov_host *host, const struct json_t *config,
			  const struct amtprov_config_field *table, void *out,
			  struct amtprov_error *err)
{
	/* Paths relative to the instance's config section: plugin_host_create prefixes
	 * "/plugins/<instance>/config" when it reports a create() failure. */
	return config_table_parse(config, table, out, "", NULL, err);
}

static void h_config_free(const struct amtprov_host *host,
			  const struct amtprov_config_field *table, void *out)
{
	config_table_free(table, out);
}

static const char *h_state_dir(const struct amtprov_host *host)
{
	struct plugin_instance *pi = instance_of(host);
	struct amtprov_error err;
	char *dir = NULL;
	const char *res = NULL;

	pthread_mutex_lock(&pi->ph->state_dir_lock);
	if (pi->state_dir || !pi->ph->env.state_root) {
		res = pi->state_dir;
		goto out;
	}
	if (asprintf(&dir, "%s/plugins/%s", pi->ph->env.state_root, pi->name) < 0)
		goto out;
	if (pi->ph->env.check_only) {
		/* Named, not created: a check leaves the state directory as it was. */
		pi->state_dir = dir;
		res = dir;
		goto out;
	}
	amtprov_error_clear(&err);
	if (util_mkdir_p(dir, 0700, &err) != AMTPROV_OK || chmod(dir, 0700) < 0) {
		alog(pi->ph->env.log, AMTPROV_LOG_ERROR, "%s: %s", err.where[0] ? err.where : dir,
		     err.msg[0] ? err.msg : strerror(errno));
		free(dir);
		goto out;
	}
	pi->state_dir = dir;
	res = dir;
out:
	pthread_mutex_unlock(&pi->ph->state_dir_lock);
	return res;
}

static int h_check_only(const struct amtprov_host *host)
{
	return instance_of(host)->ph->env.check_only;
}

static int h_sync_later(const struct amtprov_host *host, const char *path)
{
	(void)host;
	if (!path || store_sync_later(path) != 0)
		return AMTPROV_E_NOT_SUPPORTED;
	return AMTPROV_OK;
}

static const char *h_instance_name(const struct amtprov_host *host)
{
	return instance_of(host)->name;
}

void host_api_init(struct plugin_instance *pi)
{
	struct amtprov_host *h = &pi->host.api;

	pi->host.pi = pi;
	h->struct_size = sizeof(*h);
	h->abi_major = AMTPROV_ABI_MAJOR;
	h->abi_minor = AMTPROV_ABI_MINOR;
	h->log = h_log;
	h->status = h_status;
	h->now = h_now;
	h->monotonic_ms = h_monotonic_ms;
	h->secret_new = h_secret_new;
	h->secret_free = h_secret_free;
	h->secret_get = h_secret_get;
	h->secret_put = h_secret_put;
	h->config_parse = h_config_parse;
	h->config_free = h_config_free;
	h->state_dir = h_state_dir;
	h->instance_name = h_instance_name;
	h->check_only = h_check_only;
	h->sync_later = h_sync_later;
}
