/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file plugin_host.h
 * @brief Loads plugins, checks their descriptors, creates and runs their instances, and
 *        wraps every call into them (capability and slot checks, per-instance locking for
 *        plugins that are not thread-safe, log context).
 *
 * Search order for a plugin named N: each added directory in order (the manifest's
 * plugin_path), then each directory of $AMTPROV_PLUGIN_PATH (colon-separated), then the
 * install directory (<dir of libamtprov>/amtprov/plugins, then AMTPROV_PLUGINDIR). The
 * first "<dir>/N.so" that exists is used; a symlink, or a file or directory writable by
 * group or others, is refused rather than skipped.
 */
#ifndef AMTPROV_CORE_PLUGIN_HOST_H
#define AMTPROV_CORE_PLUGIN_HOST_H

#include <pthread.h>
#include <stddef.h>

#include <jansson.h>

#include <amtprov/amtprov.h>

#include "log.h"

struct plugin_host;
struct plugin_instance;

/** What the core provides behind the host API. Borrowed by the plugin host. */
struct host_env {
	struct alog *log;
	/** Wall clock (seconds); NULL: real time. Tests inject a fake clock here. */
	int64_t (*now)(void *ctx);
	void *now_ctx;
	/** Stores and logs a status message; NULL: only logged. */
	int (*emit_status)(void *ctx, uint32_t id, const char *device, const char *detail);
	void *status_ctx;
	/** Root under which each instance gets "<root>/plugins/<instance>" (0700); NULL:
	 * state_dir() returns NULL. */
	const char *state_root;
	/** Base JSON path of plugin config sections, e.g. "/plugins". */
	const char *config_base;
	/** Nonzero: instances are created only to validate (host->check_only); nothing is
	 * created on disk, not even state directories. */
	int check_only;
};

struct plugin_host *plugin_host_new(const struct host_env *env);
/** Stops started instances, destroys all instances, then unloads modules, in reverse
 * order of creation. Accepts NULL. */
void plugin_host_free(struct plugin_host *ph);

/** Appends a search directory (copied). Order matters: earlier directories win. */
int plugin_host_add_dir(struct plugin_host *ph, const char *dir, struct amtprov_error *err);

/**
 * Finds and loads plugin @p name (or reuses it if loaded) and checks its descriptor.
 * @param[out] desc the checked descriptor (borrowed, valid while the host lives)
 * @param[out] path where it was found (borrowed); may be NULL
 */
int plugin_host_load(struct plugin_host *ph, const char *name,
		     const struct amtprov_plugin **desc, const char **path,
		     struct amtprov_error *err);

/**
 * Creates instance @p instance of plugin @p plugin from @p config (borrowed for the call).
 * @param expected_kind 0 for any, else the kind the manifest needs (checked)
 */
int plugin_host_create(struct plugin_host *ph, const char *instance, const char *plugin,
		       const json_t *config, int expected_kind, struct plugin_instance **out,
		       struct amtprov_error *err);

/** Calls ops->start on every instance not yet started, in creation order, and stops at the
 * first failure (err names the instance and its file). Optional instances are handled
 * earlier: one that fails to load or create is never added to the host. */
int plugin_host_start_all(struct plugin_host *ph, struct amtprov_error *err);
/** Starts one instance (ops->start) if not yet started: a tool that needs only the
 * credential store leaves the others (a CA's listener) to amtprovd. */
int plugin_host_start_one(struct plugin_instance *pi, struct amtprov_error *err);
/** Calls ops->stop on started instances in reverse order. */
void plugin_host_stop_all(struct plugin_host *ph);

/** Finds an instance by name; NULL if absent. */
struct plugin_instance *plugin_host_find(struct plugin_host *ph, const char *instance);
size_t plugin_host_count(const struct plugin_host *ph);
struct plugin_instance *plugin_host_at(struct plugin_host *ph, size_t i);

/** Makes @p pi the site's credential store behind host->secret_get/put for all instances
 * (NULL: none). It must be of kind CREDSTORE. */
int plugin_host_set_credstore(struct plugin_host *ph, struct plugin_instance *pi,
			      struct amtprov_error *err);

/** "ca", "transport", "credstore", "netprofile", "directory" or "unknown". */
const char *plugin_kind_name(uint32_t kind);

/* Instance accessors. */
const char *plugin_instance_name(const struct plugin_instance *pi);
const struct amtprov_plugin *plugin_instance_desc(const struct plugin_instance *pi);
const char *plugin_instance_path(const struct plugin_instance *pi);
int plugin_instance_kind(const struct plugin_instance *pi);
int plugin_instance_has_cap(const struct plugin_instance *pi, const char *cap);
const struct amtprov_host *plugin_instance_host(const struct plugin_instance *pi);
void *plugin_instance_handle(const struct plugin_instance *pi);

/* ---- Checked calls (plugin_calls.c). Each checks kind, slot presence (struct_size and
 * non-NULL) and declared capability, takes the instance lock for non-thread-safe plugins,
 * and sets the log context. A missing slot gives AMTPROV_E_NOT_SUPPORTED naming the
 * instance; for CA calls an absent optional slot yields outcome NOT_SUPPORTED. ---- */

int pi_ca_submit(struct plugin_instance *pi, const char *device,
		 const struct amtprov_ca_request *req, struct amtprov_ca_result *res,
		 struct amtprov_error *err);
/* ABI 1.1: the attributes the CA wants inside the request (ca.h); *attrs NULL if none. */
int pi_ca_csr_attributes(struct plugin_instance *pi, const char *device,
			 const struct amtprov_ca_request *req, struct amtprov_secret **attrs,
			 struct amtprov_error *err);
int pi_ca_poll(struct plugin_instance *pi, const char *device,
	       const struct amtprov_ca_request *req, const char *cookie,
	       struct amtprov_ca_result *res, struct amtprov_error *err);
int pi_ca_revoke(struct plugin_instance *pi, const char *device,
		 const struct amtprov_ca_revocation *rev, struct amtprov_ca_result *res,
		 struct amtprov_error *err);
int pi_ca_fetch_crl(struct plugin_instance *pi, uint8_t **der, size_t *len,
		    struct amtprov_error *err);
int pi_ca_fetch_roots(struct plugin_instance *pi, char **pem, struct amtprov_error *err);
int pi_ca_list_templates(struct plugin_instance *pi, amtprov_ca_template_cb cb, void *ctx,
			 struct amtprov_error *err);
/** Frees the buffers a CA result may hold and zeroes them. */
void pi_ca_result_release(struct amtprov_ca_result *res);

int pi_credstore_get(struct plugin_instance *pi, const char *name,
		     struct amtprov_secret **out, struct amtprov_error *err);
int pi_credstore_put(struct plugin_instance *pi, const char *name,
		     const struct amtprov_secret *value, struct amtprov_error *err);
int pi_credstore_remove(struct plugin_instance *pi, const char *name,
			struct amtprov_error *err);
int pi_credstore_list(struct plugin_instance *pi, amtprov_credstore_name_cb cb, void *ctx,
		      struct amtprov_error *err);
/** Re-encrypts every record under a new key (capability credstore:rotate). */
int pi_credstore_rotate(struct plugin_instance *pi, struct amtprov_error *err);

/* Transport: non-blocking calls, run on the loop thread (see transport_loop.h). */
int pi_transport_session_open(struct plugin_instance *pi,
			      const struct amtprov_transport_target *target, void **session,
			      struct amtprov_error *err);
void pi_transport_session_close(struct plugin_instance *pi, void *session);
/** The device's flow paused or ended (transport op device_idle, ABI 1.4); a no-op for a
 * transport without the slot. */
void pi_transport_device_idle(struct plugin_instance *pi, const char *address, uint16_t port);
/** Starts op; AMTPROV_AGAIN when running (then exactly one done callback follows). */
int pi_transport_begin(struct plugin_instance *pi, void *session, uint32_t op,
		       const json_t *params, amtprov_transport_done_cb done, void *cb_ctx,
		       struct amtprov_error *err);
int pi_transport_get_wait(struct plugin_instance *pi, struct amtprov_wait *wait,
			  struct amtprov_error *err);
int pi_transport_drive(struct plugin_instance *pi, struct amtprov_error *err);
/** Collects a finished op; @p result is a new reference on AMTPROV_OK. */
int pi_transport_finish(struct plugin_instance *pi, void *session, json_t **result,
			struct amtprov_error *err);

int pi_directory_create(struct plugin_instance *pi, const char *device,
			const struct amtprov_directory_account *acct,
			struct amtprov_secret **password, struct amtprov_error *err);
int pi_directory_delete(struct plugin_instance *pi, const char *device, const char *fqdn,
			struct amtprov_error *err);
/* ABI 1.2, optional in the plugin: AMTPROV_E_NOT_SUPPORTED when it lacks them. */
int pi_directory_keyinfo(struct plugin_instance *pi, const char *fqdn,
			 struct amtprov_directory_keyinfo *out, struct amtprov_error *err);
int pi_directory_resolve_sid(struct plugin_instance *pi, const char *device, const char *name,
			     char *sid, size_t sid_size, struct amtprov_error *err);

/* Network profiles (802.1X, R-PROV-11 3): pure computations, any thread. render's
 * @p params is a new reference on AMTPROV_OK (an object). */
int pi_netprofile_cert_needs(struct plugin_instance *pi, const json_t *profiles,
			     const struct amtprov_device_info *device,
			     amtprov_netprofile_need_cb cb, void *ctx, struct amtprov_error *err);
int pi_netprofile_render(struct plugin_instance *pi, const json_t *profiles,
			 const struct amtprov_device_info *device,
			 const struct amtprov_netprofile_cert *certs, size_t n_certs,
			 json_t **params, struct amtprov_error *err);

#endif /* AMTPROV_CORE_PLUGIN_HOST_H */
