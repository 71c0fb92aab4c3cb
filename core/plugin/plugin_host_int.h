/* SPDX-License-Identifier: Apache-2.0 */
/* Private to plugin_host.c, host_api.c and plugin_calls.c. */
#ifndef AMTPROV_CORE_PLUGIN_HOST_INT_H
#define AMTPROV_CORE_PLUGIN_HOST_INT_H

#include "dl.h"
#include "plugin_host.h"

struct plugin_module {
	char *name;
	char *path;
	struct adl *dl;
	const struct amtprov_plugin *desc;
};

/* The host API handed to one instance; `api` first so a host pointer maps back. */
struct host_impl {
	struct amtprov_host api;
	struct plugin_instance *pi;
};

struct plugin_instance {
	char *name;
	char *label;          /* "plugin/instance", the log prefix */
	char *state_dir;      /* created on first use */
	struct plugin_module *mod;
	struct plugin_host *ph;
	void *handle;
	int started;
	int thread_safe;
	pthread_mutex_t lock; /* serializes calls into non-thread-safe plugins */
	struct host_impl host;
};

struct plugin_host {
	struct host_env env;
	char **dirs;
	size_t n_dirs;
	struct plugin_module **mods;
	size_t n_mods;
	struct plugin_instance **insts;
	size_t n_insts;
	struct plugin_instance *credstore;
	pthread_mutex_t state_dir_lock; /* state_dir() may be called from plugin threads */
};

/* host_api.c */
void host_api_init(struct plugin_instance *pi);

/* Enter/leave a plugin call: lock if needed, set log context (device may be NULL). */
struct pi_call {
	struct plugin_instance *pi;
	struct alog_ctx prev;
};
void pi_enter(struct pi_call *c, struct plugin_instance *pi, const char *device);
void pi_leave(struct pi_call *c);

#endif /* AMTPROV_CORE_PLUGIN_HOST_INT_H */
