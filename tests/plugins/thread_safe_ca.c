/* SPDX-License-Identifier: Apache-2.0 */
/*
 * thread_safe_ca.c - a CA that sets AMTPROV_PLUGIN_THREAD_SAFE.
 *
 * submit() is a rendezvous: it waits (up to timeout_ms) until `rendezvous` callers are inside
 * it at the same time and answers REJECTED with message "concurrent" if they met, "alone"
 * otherwise. Only a core that honours the flag (no per-instance lock) lets them meet, so a
 * test can observe the flag's effect, not just read it back.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include <amtprov/ca.h>

struct ts_cfg {
	long long rendezvous;
	long long timeout_ms;
};

static const struct amtprov_config_field ts_table[] = {
	{"rendezvous", AMTPROV_CFG_INT, offsetof(struct ts_cfg, rendezvous), 0, "2", 1, 64,
	 "how many concurrent submit calls to wait for"},
	{"timeout_ms", AMTPROV_CFG_INT, offsetof(struct ts_cfg, timeout_ms), 0, "5000", 1, 60000,
	 "how long submit waits for the others"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

struct ts_ca {
	const struct amtprov_host *host;
	struct ts_cfg cfg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	long long inside;
	long long arrived;
};

static int ts_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
	struct ts_ca *ca = calloc(1, sizeof(*ca));
	int rc;

	if (!ca)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	ca->host = host;
	rc = host->config_parse(host, config, ts_table, &ca->cfg, err);
	if (rc != AMTPROV_OK) {
		host->config_free(host, ts_table, &ca->cfg);
		free(ca);
		return rc;
	}
	pthread_mutex_init(&ca->lock, NULL);
	pthread_cond_init(&ca->cond, NULL);
	*instance = ca;
	return AMTPROV_OK;
}

static void ts_destroy(void *instance)
{
	struct ts_ca *ca = instance;

	if (!ca)
		return;
	pthread_cond_destroy(&ca->cond);
	pthread_mutex_destroy(&ca->lock);
	ca->host->config_free(ca->host, ts_table, &ca->cfg);
	free(ca);
}

static int ts_submit(void *instance, const struct amtprov_ca_request *req,
		     struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct ts_ca *ca = instance;
	struct timespec until;
	int met;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(ca->cfg.timeout_ms / 1000);
	until.tv_nsec += (long)(ca->cfg.timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ca->lock);
	ca->inside++;
	ca->arrived++;
	pthread_cond_broadcast(&ca->cond);
	/* `arrived` rather than `inside`: the first one to meet the others may leave before a
	 * slower one wakes up, and that one met them too. */
	while (ca->arrived < ca->cfg.rendezvous &&
	       pthread_cond_timedwait(&ca->cond, &ca->lock, &until) != ETIMEDOUT)
		;
	met = ca->arrived >= ca->cfg.rendezvous;
	ca->inside--;
	pthread_mutex_unlock(&ca->lock);
	res->outcome = AMTPROV_CA_REJECTED;
	snprintf(res->message, sizeof(res->message), "%s", met ? "concurrent" : "alone");
	return AMTPROV_OK;
}

static const struct amtprov_ca_ops ts_ops = {
	.struct_size = sizeof(struct amtprov_ca_ops),
	.submit = ts_submit,
};

static const char *const ts_caps[] = {AMTPROV_CAP_CA_SUBMIT, NULL};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_CA, .name = "thread-safe-ca", .version = "0.1.0",
		      .flags = AMTPROV_PLUGIN_THREAD_SAFE,
		      .description = "CA whose submit may run on several threads at once",
		      .capabilities = ts_caps, .create = ts_create, .destroy = ts_destroy,
		      .ops = &ts_ops, .config_table = ts_table);
