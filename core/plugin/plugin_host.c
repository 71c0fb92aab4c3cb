/* SPDX-License-Identifier: Apache-2.0 */
#include "plugin_host.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plugin_host_int.h"
#include "util.h"

/* The 1.0 descriptor ends after config_table: anything shorter is not a 1.x plugin. */
#define DESC_MIN_SIZE                                      \
	(offsetof(struct amtprov_plugin, config_table) +   \
	 sizeof(((struct amtprov_plugin *)0)->config_table))

struct plugin_host *plugin_host_new(const struct host_env *env)
{
	struct plugin_host *ph = calloc(1, sizeof(*ph));

	if (!ph)
		return NULL;
	if (env)
		ph->env = *env;
	pthread_mutex_init(&ph->state_dir_lock, NULL);
	return ph;
}

static void module_free(struct plugin_module *m)
{
	if (!m)
		return;
	adl_close(m->dl);
	free(m->name);
	free(m->path);
	free(m);
}

static void instance_free(struct plugin_instance *pi)
{
	if (!pi)
		return;
	pthread_mutex_destroy(&pi->lock);
	free(pi->name);
	free(pi->label);
	free(pi->state_dir);
	free(pi);
}

void plugin_host_free(struct plugin_host *ph)
{
	if (!ph)
		return;
	plugin_host_stop_all(ph);
	/* Instances before modules: never unload code an object still points into. */
	for (size_t i = ph->n_insts; i-- > 0;) {
		struct plugin_instance *pi = ph->insts[i];
		struct pi_call c;

		pi_enter(&c, pi, NULL);
		pi->mod->desc->destroy(pi->handle);
		pi_leave(&c);
		instance_free(pi);
	}
	for (size_t i = ph->n_mods; i-- > 0;)
		module_free(ph->mods[i]);
	for (size_t i = 0; i < ph->n_dirs; i++)
		free(ph->dirs[i]);
	free(ph->dirs);
	free(ph->mods);
	free(ph->insts);
	pthread_mutex_destroy(&ph->state_dir_lock);
	free(ph);
}

static int grow(void **arr, size_t n, size_t elem)
{
	void *p = realloc(*arr, (n + 1) * elem);

	if (!p)
		return -1;
	*arr = p;
	return 0;
}

int plugin_host_add_dir(struct plugin_host *ph, const char *dir, struct amtprov_error *err)
{
	char *copy;

	if (!dir || !*dir)
		return amtprov_error_set(err, AMTPROV_E_INVALID, "plugin_path", "empty directory");
	copy = strdup(dir);
	if (!copy || grow((void **)&ph->dirs, ph->n_dirs, sizeof(char *)) < 0) {
		free(copy);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, dir, "out of memory");
	}
	ph->dirs[ph->n_dirs++] = copy;
	return AMTPROV_OK;
}

static int valid_plugin_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 48)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* Checks one candidate "<dir>/<name>.so". Returns AMTPROV_E_NOT_FOUND when absent (try
 * the next directory), AMTPROV_OK when usable, another error when present but refused. */
static int check_candidate(const char *dir, const char *path, struct amtprov_error *err)
{
	struct stat st;
	int rc;

	if (lstat(path, &st) < 0)
		return AMTPROV_E_NOT_FOUND;
	if (S_ISLNK(st.st_mode))
		return amtprov_error_set(err, AMTPROV_E_DENIED, path,
					 "refusing to load a plugin through a symbolic link");
	if (!S_ISREG(st.st_mode))
		return amtprov_error_set(err, AMTPROV_E_INVALID, path, "not a regular file");
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return amtprov_error_set(err, AMTPROV_E_DENIED, path,
					 "plugin file is writable by group or others (mode %03o)",
					 (unsigned)(st.st_mode & 0777));
	rc = util_check_private_dir(dir, err);
	return rc;
}

/* "<dir of libamtprov>/amtprov/plugins" when the core runs from libamtprov (malloc'd), so
 * an installed tree finds its own plugins whatever its prefix; NULL otherwise. */
static char *lib_plugin_dir(void)
{
	Dl_info info;
	struct stat st;
	char *copy, *dir = NULL;

	if (!dladdr((void *)lib_plugin_dir, &info) || !info.dli_fname ||
	    !strstr(info.dli_fname, "/libamtprov.so"))
		return NULL;
	copy = strdup(info.dli_fname);
	if (copy && asprintf(&dir, "%s/amtprov/plugins", dirname(copy)) < 0)
		dir = NULL;
	free(copy);
	if (dir && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
		free(dir);
		dir = NULL;
	}
	return dir;
}

/* Builds the search list: added dirs, $AMTPROV_PLUGIN_PATH, the plugin directory beside
 * libamtprov, the configured install dir. */
static int find_plugin(struct plugin_host *ph, const char *name, char **found,
		       struct amtprov_error *err)
{
	const char *env = getenv("AMTPROV_PLUGIN_PATH");
	char *envcopy = env ? strdup(env) : NULL;
	char **dirs = NULL, *libdir = NULL;
	size_t n = 0;
	int rc = AMTPROV_E_NOT_FOUND;
	char tried[AMTPROV_ERROR_MSG_SIZE] = "";
	size_t tlen = 0;

	for (size_t i = 0; i < ph->n_dirs; i++) {
		if (grow((void **)&dirs, n, sizeof(char *)) < 0)
			goto oom;
		dirs[n++] = ph->dirs[i];
	}
	if (envcopy) {
		char *save = NULL;

		for (char *d = strtok_r(envcopy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
			if (!*d)
				continue;
			if (grow((void **)&dirs, n, sizeof(char *)) < 0)
				goto oom;
			dirs[n++] = d;
		}
	}
	libdir = lib_plugin_dir();
	if (libdir && strcmp(libdir, AMTPROV_PLUGINDIR) != 0) {
		if (grow((void **)&dirs, n, sizeof(char *)) < 0)
			goto oom;
		dirs[n++] = libdir;
	}
	if (grow((void **)&dirs, n, sizeof(char *)) < 0)
		goto oom;
	dirs[n++] = (char *)AMTPROV_PLUGINDIR;

	for (size_t i = 0; i < n; i++) {
		char *path = NULL;

		if (asprintf(&path, "%s/%s.so", dirs[i], name) < 0)
			goto oom;
		rc = check_candidate(dirs[i], path, err);
		if (rc == AMTPROV_OK) {
			*found = path;
			break;
		}
		free(path);
		if (rc != AMTPROV_E_NOT_FOUND)
			break;
		if (tlen < sizeof(tried))
			tlen += (size_t)snprintf(tried + tlen, sizeof(tried) - tlen, "%s%s",
						 tlen ? ", " : "", dirs[i]);
	}
	if (rc == AMTPROV_E_NOT_FOUND)
		amtprov_error_set(err, AMTPROV_E_NOT_FOUND, name,
				  "plugin '%s' not found (looked for %s.so in: %s)", name, name,
				  tried);
	free(dirs);
	free(envcopy);
	free(libdir);
	return rc;
oom:
	free(dirs);
	free(envcopy);
	free(libdir);
	return amtprov_error_set(err, AMTPROV_E_NOMEM, name, "out of memory");
}

static const char *kind_name(uint32_t kind)
{
	switch (kind) {
	case AMTPROV_KIND_CA: return "ca";
	case AMTPROV_KIND_TRANSPORT: return "transport";
	case AMTPROV_KIND_CREDSTORE: return "credstore";
	case AMTPROV_KIND_NETPROFILE: return "netprofile";
	case AMTPROV_KIND_DIRECTORY: return "directory";
	default: return "unknown";
	}
}

const char *plugin_kind_name(uint32_t kind)
{
	return kind_name(kind);
}

static int has_cap(const struct amtprov_plugin *d, const char *cap)
{
	for (const char *const *c = d->capabilities; c && *c; c++)
		if (strcmp(*c, cap) == 0)
			return 1;
	return 0;
}

/* Mandatory slots per kind, and slots that must agree with declared capabilities. A
 * vtable's own struct_size must cover every slot we read from it. */
#define OPS_HAS(ops, type, member) \
	((ops)->struct_size >= offsetof(type, member) + sizeof(((type *)0)->member) && (ops)->member)

static int check_ops(const struct amtprov_plugin *d, const char *path, struct amtprov_error *err)
{
	const uint32_t *size = d->ops;

	if (*size < sizeof(uint32_t) * 2)
		return amtprov_error_set(err, AMTPROV_E_ABI, path,
					 "plugin '%s': ops table too small (%u bytes)", d->name,
					 (unsigned)*size);
	switch (d->kind) {
	case AMTPROV_KIND_CA: {
		const struct amtprov_ca_ops *o = d->ops;

		if (!OPS_HAS(o, struct amtprov_ca_ops, submit))
			return amtprov_error_set(err, AMTPROV_E_ABI, path,
						 "CA plugin '%s' has no submit slot", d->name);
		if (has_cap(d, AMTPROV_CAP_CA_POLL) && !OPS_HAS(o, struct amtprov_ca_ops, poll))
			goto capslot;
		if (has_cap(d, AMTPROV_CAP_CA_REVOKE) && !OPS_HAS(o, struct amtprov_ca_ops, revoke))
			goto capslot;
		if (has_cap(d, AMTPROV_CAP_CA_CRL) && !OPS_HAS(o, struct amtprov_ca_ops, fetch_crl))
			goto capslot;
		if (has_cap(d, AMTPROV_CAP_CA_ROOTS) &&
		    !OPS_HAS(o, struct amtprov_ca_ops, fetch_roots))
			goto capslot;
		if (has_cap(d, AMTPROV_CAP_CA_TEMPLATES) &&
		    !OPS_HAS(o, struct amtprov_ca_ops, list_templates))
			goto capslot;
		break;
	}
	case AMTPROV_KIND_CREDSTORE: {
		const struct amtprov_credstore_ops *o = d->ops;

		if (!OPS_HAS(o, struct amtprov_credstore_ops, get) ||
		    !OPS_HAS(o, struct amtprov_credstore_ops, put) ||
		    !OPS_HAS(o, struct amtprov_credstore_ops, remove))
			return amtprov_error_set(err, AMTPROV_E_ABI, path,
						 "credential-store plugin '%s' lacks get/put/remove",
						 d->name);
		if (has_cap(d, AMTPROV_CAP_CREDSTORE_ROTATE) &&
		    !OPS_HAS(o, struct amtprov_credstore_ops, rotate_key))
			goto capslot;
		break;
	}
	case AMTPROV_KIND_TRANSPORT: {
		const struct amtprov_transport_ops *o = d->ops;

		if (!OPS_HAS(o, struct amtprov_transport_ops, session_open) ||
		    !OPS_HAS(o, struct amtprov_transport_ops, session_close) ||
		    !OPS_HAS(o, struct amtprov_transport_ops, begin) ||
		    !OPS_HAS(o, struct amtprov_transport_ops, get_wait) ||
		    !OPS_HAS(o, struct amtprov_transport_ops, drive) ||
		    !OPS_HAS(o, struct amtprov_transport_ops, finish))
			return amtprov_error_set(err, AMTPROV_E_ABI, path,
						 "transport plugin '%s' lacks a mandatory slot",
						 d->name);
		break;
	}
	case AMTPROV_KIND_NETPROFILE: {
		const struct amtprov_netprofile_ops *o = d->ops;

		if (!OPS_HAS(o, struct amtprov_netprofile_ops, cert_needs) ||
		    !OPS_HAS(o, struct amtprov_netprofile_ops, render))
			return amtprov_error_set(err, AMTPROV_E_ABI, path,
						 "netprofile plugin '%s' lacks cert_needs/render",
						 d->name);
		break;
	}
	case AMTPROV_KIND_DIRECTORY: {
		const struct amtprov_directory_ops *o = d->ops;

		if (!OPS_HAS(o, struct amtprov_directory_ops, create_account) ||
		    !OPS_HAS(o, struct amtprov_directory_ops, delete_account))
			return amtprov_error_set(err, AMTPROV_E_ABI, path,
						 "directory plugin '%s' lacks create/delete_account",
						 d->name);
		break;
	}
	}
	return AMTPROV_OK;
capslot:
	return amtprov_error_set(err, AMTPROV_E_ABI, path,
				 "plugin '%s' declares a capability whose slot is missing", d->name);
}

/* Checks a descriptor read from @p path before any plugin function runs. */
static int check_descriptor(const struct amtprov_plugin *d, const char *name, const char *path,
			    struct amtprov_error *err)
{
	if (d->magic != AMTPROV_PLUGIN_MAGIC)
		return amtprov_error_set(err, AMTPROV_E_ABI, path,
					 "symbol '%s' is not an amtprov plugin descriptor "
					 "(bad magic 0x%016llx)",
					 AMTPROV_PLUGIN_SYMBOL, (unsigned long long)d->magic);
	if (d->abi_major != AMTPROV_ABI_MAJOR)
		return amtprov_error_set(err, AMTPROV_E_ABI, path,
					 "plugin built for ABI %u.%u; this amtprov supports ABI "
					 "%d.x: rebuild it against this SDK",
					 d->abi_major, d->abi_minor, AMTPROV_ABI_MAJOR);
	if (d->struct_size < DESC_MIN_SIZE)
		return amtprov_error_set(err, AMTPROV_E_ABI, path,
					 "plugin descriptor too small (%u bytes, need %zu)",
					 (unsigned)d->struct_size, (size_t)DESC_MIN_SIZE);
	if (d->kind < AMTPROV_KIND_CA || d->kind > AMTPROV_KIND_DIRECTORY)
		return amtprov_error_set(err, AMTPROV_E_ABI, path, "unknown plugin kind %u",
					 (unsigned)d->kind);
	if (!d->name || strcmp(d->name, name) != 0)
		return amtprov_error_set(err, AMTPROV_E_ABI, path,
					 "descriptor names the plugin '%s' but the file is '%s.so'",
					 d->name ? d->name : "(null)", name);
	if (!d->create || !d->destroy || !d->ops)
		return amtprov_error_set(err, AMTPROV_E_ABI, path,
					 "plugin '%s' lacks create, destroy or ops", name);
	return check_ops(d, path, err);
}

int plugin_host_load(struct plugin_host *ph, const char *name,
		     const struct amtprov_plugin **desc, const char **path,
		     struct amtprov_error *err)
{
	struct plugin_module *m;
	char *file = NULL;
	const struct amtprov_plugin *d;
	int rc;

	if (!valid_plugin_name(name))
		return amtprov_error_set(err, AMTPROV_E_INVALID, name ? name : "",
					 "invalid plugin name (use a-z, 0-9, '-', '_')");
	for (size_t i = 0; i < ph->n_mods; i++) {
		if (strcmp(ph->mods[i]->name, name) == 0) {
			*desc = ph->mods[i]->desc;
			if (path)
				*path = ph->mods[i]->path;
			return AMTPROV_OK;
		}
	}
	rc = find_plugin(ph, name, &file, err);
	if (rc)
		return rc;
	m = calloc(1, sizeof(*m));
	if (!m) {
		free(file);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, name, "out of memory");
	}
	m->path = file;
	m->name = strdup(name);
	rc = adl_open(file, &m->dl, err);
	if (rc)
		goto fail;
	d = adl_sym(m->dl, AMTPROV_PLUGIN_SYMBOL);
	if (!d) {
		rc = amtprov_error_set(err, AMTPROV_E_ABI, file,
				       "no '%s' symbol: not an amtprov plugin (or built without "
				       "AMTPROV_PLUGIN_DEFINE)",
				       AMTPROV_PLUGIN_SYMBOL);
		goto fail;
	}
	rc = check_descriptor(d, name, file, err);
	if (rc)
		goto fail;
	/* A second file may not claim a name already loaded from elsewhere. */
	for (size_t i = 0; i < ph->n_mods; i++) {
		if (ph->mods[i]->desc == d || strcmp(ph->mods[i]->desc->name, d->name) == 0) {
			rc = amtprov_error_set(err, AMTPROV_E_EXISTS, file,
					       "duplicate plugin '%s': already loaded from %s",
					       d->name, ph->mods[i]->path);
			goto fail;
		}
	}
	if (!m->name || grow((void **)&ph->mods, ph->n_mods, sizeof(*ph->mods)) < 0) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, name, "out of memory");
		goto fail;
	}
	m->desc = d;
	ph->mods[ph->n_mods++] = m;
	alog(ph->env.log, AMTPROV_LOG_INFO, "loaded plugin %s %s (%s, ABI %u.%u) from %s", d->name,
	     d->version ? d->version : "?", kind_name(d->kind), d->abi_major, d->abi_minor, file);
	*desc = d;
	if (path)
		*path = m->path;
	return AMTPROV_OK;
fail:
	module_free(m);
	return rc;
}

static int valid_instance_name(const char *name)
{
	return valid_plugin_name(name);
}

int plugin_host_create(struct plugin_host *ph, const char *instance, const char *plugin,
		       const json_t *config, int expected_kind, struct plugin_instance **out,
		       struct amtprov_error *err)
{
	const struct amtprov_plugin *d;
	const char *path = NULL;
	struct plugin_instance *pi;
	struct plugin_module *mod = NULL;
	json_t *empty = NULL;
	int rc;

	if (!valid_instance_name(instance))
		return amtprov_error_set(err, AMTPROV_E_INVALID, instance ? instance : "",
					 "invalid plugin instance name");
	if (plugin_host_find(ph, instance))
		return amtprov_error_set(err, AMTPROV_E_EXISTS, instance,
					 "duplicate plugin instance '%s'", instance);
	rc = plugin_host_load(ph, plugin, &d, &path, err);
	if (rc)
		return rc;
	if (expected_kind && (uint32_t)expected_kind != d->kind)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, path,
					 "instance '%s' is used as a %s plugin, but '%s' is a %s "
					 "plugin",
					 instance, kind_name((uint32_t)expected_kind), plugin,
					 kind_name(d->kind));
	for (size_t i = 0; i < ph->n_mods; i++)
		if (ph->mods[i]->desc == d)
			mod = ph->mods[i];
	pi = calloc(1, sizeof(*pi));
	if (!pi)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, instance, "out of memory");
	pi->name = strdup(instance);
	if (asprintf(&pi->label, "%s/%s", plugin, instance) < 0)
		pi->label = NULL;
	if (!pi->name || !pi->label ||
	    grow((void **)&ph->insts, ph->n_insts, sizeof(*ph->insts)) < 0) {
		instance_free(pi);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, instance, "out of memory");
	}
	pi->mod = mod;
	pi->ph = ph;
	pi->thread_safe = (d->flags & AMTPROV_PLUGIN_THREAD_SAFE) != 0;
	pthread_mutex_init(&pi->lock, NULL);
	host_api_init(pi);

	if (!config)
		config = empty = json_object();
	{
		struct pi_call c;
		struct amtprov_error perr;

		amtprov_error_clear(&perr);
		pi_enter(&c, pi, NULL);
		rc = d->create(&pi->host.api, config, &pi->handle, &perr);
		pi_leave(&c);
		if (rc != AMTPROV_OK) {
			/* The plugin's own message, located at its manifest section. */
			char where[AMTPROV_ERROR_WHERE_SIZE * 2 + 80];

			snprintf(where, sizeof(where), "%s/%s/config%s%s",
				 ph->env.config_base ? ph->env.config_base : "/plugins", instance,
				 perr.where[0] && perr.where[0] != '/' ? "/" : "", perr.where);
			amtprov_error_set(err, rc == AMTPROV_AGAIN ? AMTPROV_E_INTERNAL : rc, where,
					  "plugin %s (instance '%s') refused its configuration: %s",
					  plugin, instance, perr.msg[0] ? perr.msg : amtprov_strerror(rc));
			json_decref(empty);
			instance_free(pi);
			return rc == AMTPROV_AGAIN ? AMTPROV_E_INTERNAL : rc;
		}
	}
	json_decref(empty);
	ph->insts[ph->n_insts++] = pi;
	if (out)
		*out = pi;
	return AMTPROV_OK;
}

#define KIND_OPS_START(pi)                                                          \
	((const struct amtprov_ca_ops *)(pi)->mod->desc->ops) /* start/stop share offsets */

int plugin_host_start_one(struct plugin_instance *pi, struct amtprov_error *err)
{
	/* Every kind's vtable begins struct_size, start, stop: read them generically. */
	const struct amtprov_ca_ops *o = KIND_OPS_START(pi);
	struct amtprov_error perr;
	struct pi_call c;
	int rc = AMTPROV_OK;

	if (pi->started)
		return AMTPROV_OK;
	amtprov_error_clear(&perr);
	if (OPS_HAS(o, struct amtprov_ca_ops, start)) {
		pi_enter(&c, pi, NULL);
		rc = o->start(pi->handle, &perr);
		pi_leave(&c);
	}
	if (rc != AMTPROV_OK)
		return amtprov_error_set(err, rc, pi->mod->path,
					 "plugin instance '%s' failed to start: %s", pi->name,
					 perr.msg[0] ? perr.msg : amtprov_strerror(rc));
	pi->started = 1;
	return AMTPROV_OK;
}

int plugin_host_start_all(struct plugin_host *ph, struct amtprov_error *err)
{
	for (size_t i = 0; i < ph->n_insts; i++) {
		int rc = plugin_host_start_one(ph->insts[i], err);

		if (rc != AMTPROV_OK)
			return rc;
	}
	return AMTPROV_OK;
}

void plugin_host_stop_all(struct plugin_host *ph)
{
	if (!ph)
		return;
	for (size_t i = ph->n_insts; i-- > 0;) {
		struct plugin_instance *pi = ph->insts[i];
		const struct amtprov_ca_ops *o = KIND_OPS_START(pi);
		struct pi_call c;

		if (!pi->started)
			continue;
		if (OPS_HAS(o, struct amtprov_ca_ops, stop)) {
			pi_enter(&c, pi, NULL);
			o->stop(pi->handle);
			pi_leave(&c);
		}
		pi->started = 0;
	}
}

struct plugin_instance *plugin_host_find(struct plugin_host *ph, const char *instance)
{
	for (size_t i = 0; ph && instance && i < ph->n_insts; i++)
		if (strcmp(ph->insts[i]->name, instance) == 0)
			return ph->insts[i];
	return NULL;
}

size_t plugin_host_count(const struct plugin_host *ph)
{
	return ph ? ph->n_insts : 0;
}

struct plugin_instance *plugin_host_at(struct plugin_host *ph, size_t i)
{
	return ph && i < ph->n_insts ? ph->insts[i] : NULL;
}

int plugin_host_set_credstore(struct plugin_host *ph, struct plugin_instance *pi,
			      struct amtprov_error *err)
{
	if (pi && pi->mod->desc->kind != AMTPROV_KIND_CREDSTORE)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, pi->name,
					 "instance '%s' is not a credential store", pi->name);
	ph->credstore = pi;
	return AMTPROV_OK;
}

const char *plugin_instance_name(const struct plugin_instance *pi)
{
	return pi->name;
}

const struct amtprov_plugin *plugin_instance_desc(const struct plugin_instance *pi)
{
	return pi->mod->desc;
}

const char *plugin_instance_path(const struct plugin_instance *pi)
{
	return pi->mod->path;
}

int plugin_instance_kind(const struct plugin_instance *pi)
{
	return (int)pi->mod->desc->kind;
}

int plugin_instance_has_cap(const struct plugin_instance *pi, const char *cap)
{
	return has_cap(pi->mod->desc, cap);
}

const struct amtprov_host *plugin_instance_host(const struct plugin_instance *pi)
{
	return &pi->host.api;
}

void *plugin_instance_handle(const struct plugin_instance *pi)
{
	return pi->handle;
}

void pi_enter(struct pi_call *c, struct plugin_instance *pi, const char *device)
{
	c->pi = pi;
	if (!pi->thread_safe)
		pthread_mutex_lock(&pi->lock);
	c->prev = alog_ctx_set(pi->label, device ? device : alog_ctx_get().device);
}

void pi_leave(struct pi_call *c)
{
	alog_ctx_restore(c->prev);
	if (!c->pi->thread_safe)
		pthread_mutex_unlock(&c->pi->lock);
}
