/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file plugin.h
 * @brief The plugin descriptor, the ABI version, and the host API the core gives plugins.
 *
 * A plugin is one shared object that exports exactly one symbol: the data descriptor
 * `amtprov_plugin`, written with AMTPROV_PLUGIN_DEFINE(). The core reads and checks the
 * descriptor (magic, ABI major, struct size, kind) before it calls any plugin function.
 *
 * Lifecycle (torn down in exact reverse order):
 *   load -> descriptor check -> create (validate config, allocate; no network)
 *        -> ops->start (may contact peers) -> operations -> ops->stop -> destroy -> unload
 *
 * Compatibility: the core refuses a plugin whose abi_major differs from AMTPROV_ABI_MAJOR
 * and accepts any abi_minor. Every vtable starts with its struct_size; the core calls a slot
 * only if struct_size covers it and it is non-NULL. Slots are only ever appended; comments
 * mark where each ABI minor ends.
 */
#ifndef AMTPROV_PLUGIN_H
#define AMTPROV_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <amtprov/error.h>
#include <amtprov/log.h>
#include <amtprov/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** "AMTPROV\x01" read as a big-endian 64-bit number. */
#define AMTPROV_PLUGIN_MAGIC 0x414d5450524f5601ULL
/** ABI major: bumped only for incompatible changes. */
#define AMTPROV_ABI_MAJOR 1
/** ABI minor: bumped when slots are appended. */
#define AMTPROV_ABI_MINOR 4

/** The symbol every plugin exports. */
#define AMTPROV_PLUGIN_SYMBOL "amtprov_plugin"

/** Plugin kinds; one vtable type per kind. */
enum amtprov_plugin_kind {
	AMTPROV_KIND_CA = 1,         /**< ops: struct amtprov_ca_ops (ca.h) */
	AMTPROV_KIND_TRANSPORT = 2,  /**< ops: struct amtprov_transport_ops (transport.h) */
	AMTPROV_KIND_CREDSTORE = 3,  /**< ops: struct amtprov_credstore_ops (credstore.h) */
	AMTPROV_KIND_NETPROFILE = 4, /**< ops: struct amtprov_netprofile_ops (netprofile.h) */
	AMTPROV_KIND_DIRECTORY = 5,  /**< ops: struct amtprov_directory_ops (directory.h) */
};

/** Descriptor flags. */
/** The plugin's ops may be called from several threads at once on one instance. Without
 * it, the core serializes all calls on an instance. */
#define AMTPROV_PLUGIN_THREAD_SAFE 0x1u

/* Well-known capability strings. A plugin lists what it provides; the core checks, when a
 * site loads, that the manifest asks each instance only for what it declared. */
#define AMTPROV_CAP_CA_SUBMIT "ca:submit"
#define AMTPROV_CAP_CA_POLL "ca:poll"
#define AMTPROV_CAP_CA_REVOKE "ca:revoke"
#define AMTPROV_CAP_CA_CRL "ca:crl"
#define AMTPROV_CAP_CA_ROOTS "ca:roots"
#define AMTPROV_CAP_CA_TEMPLATES "ca:templates"
#define AMTPROV_CAP_CA_PURPOSE_WEB "ca:purpose-web-server"
#define AMTPROV_CAP_CA_PURPOSE_8021X "ca:purpose-8021x-client"
#define AMTPROV_CAP_CA_PURPOSE_PROV "ca:purpose-provisioning"
#define AMTPROV_CAP_TRANSPORT_SOAP "transport:soap"
#define AMTPROV_CAP_TRANSPORT_WSMAN "transport:wsman"
/* The transport checks the device certificate's CRL in MANAGED mode (fail closed) unless
 * its instance configuration sets the boolean "crl_check" to false; the CA contract then
 * demands a CRL distribution point in web server certificates (ca.h). */
#define AMTPROV_CAP_TRANSPORT_CRL_CHECK "transport:crl-check"
#define AMTPROV_CAP_CREDSTORE_ROTATE "credstore:rotate"
#define AMTPROV_CAP_NETPROFILE_WIRED "netprofile:wired"
#define AMTPROV_CAP_NETPROFILE_WIFI "netprofile:wifi"
#define AMTPROV_CAP_DIRECTORY_ACCOUNT "directory:account"

struct amtprov_host;

/**
 * The one exported symbol of a plugin. Fill it with designated initializers (use
 * AMTPROV_PLUGIN_DEFINE) so fields added later default to zero.
 */
struct amtprov_plugin {
	uint64_t magic;       /**< AMTPROV_PLUGIN_MAGIC */
	uint16_t abi_major;   /**< AMTPROV_ABI_MAJOR the plugin was built with */
	uint16_t abi_minor;   /**< AMTPROV_ABI_MINOR the plugin was built with */
	uint32_t struct_size; /**< sizeof(struct amtprov_plugin) the plugin was built with */
	uint32_t kind;        /**< enum amtprov_plugin_kind */
	uint32_t flags;       /**< AMTPROV_PLUGIN_THREAD_SAFE, ... */
	const char *name;     /**< short name, e.g. "ca-local"; equals the file stem */
	const char *version;  /**< the plugin's own release, free form */
	const char *description; /**< one line */
	/** NULL-terminated list of capability strings (AMTPROV_CAP_*, or "vendor:thing"). */
	const char *const *capabilities;
	/**
	 * Creates one instance. Validates @p config and allocates; must not contact peers.
	 *
	 * @param[in]  host     the host API for this instance; borrowed, valid until destroy
	 * @param[in]  config   the instance's manifest section ("config" object); borrowed,
	 *                      valid only during this call: copy what you keep. Never NULL.
	 * @param[out] instance the new instance, opaque to the core
	 * @param[out] err      filled on failure
	 * @return AMTPROV_OK, or an error code (then *instance is untouched and nothing leaks)
	 */
	int (*create)(const struct amtprov_host *host, const struct json_t *config,
		      void **instance, struct amtprov_error *err);
	/** Destroys an instance; called once, after ops->stop. Accepts NULL. */
	void (*destroy)(void *instance);
	/** The kind's vtable, e.g. `const struct amtprov_ca_ops *`. Static storage. */
	const void *ops;
	/** Declarative configuration table (optional, may be NULL): documents the keys for
	 * `amtprov plugin show` and lets the plugin call host->config_parse with it. */
	const struct amtprov_config_field *config_table;
	/* --- end of ABI 1.0 --- */
};

/** Marks the one symbol a plugin exports (build plugins with -fvisibility=hidden). */
#if defined(__GNUC__)
#define AMTPROV_EXPORT __attribute__((visibility("default")))
#else
#define AMTPROV_EXPORT
#endif

/**
 * Defines the plugin descriptor. Use designated initializers for the rest:
 *
 *     AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_CA, .name = "ca-example", ...);
 */
#define AMTPROV_PLUGIN_DEFINE(...)                                                      \
	AMTPROV_EXPORT const struct amtprov_plugin amtprov_plugin = {                   \
		.magic = AMTPROV_PLUGIN_MAGIC,                                          \
		.abi_major = AMTPROV_ABI_MAJOR,                                         \
		.abi_minor = AMTPROV_ABI_MINOR,                                         \
		.struct_size = sizeof(struct amtprov_plugin),                           \
		__VA_ARGS__}

/**
 * The host API: the only way a plugin reaches the core. One host struct exists per plugin
 * instance, so log lines and status messages are attributed to that instance. Every
 * function pointer is non-NULL in ABI 1.0. Borrowed by the plugin, valid until destroy().
 */
struct amtprov_host {
	uint32_t struct_size; /**< sizeof(struct amtprov_host) as the core built it */
	uint16_t abi_major;
	uint16_t abi_minor;

	/** Logs a line. The core prefixes plugin, instance and the device being worked on.
	 * Never pass secrets. */
	void (*log)(const struct amtprov_host *host, int level, const char *fmt, ...)
		AMTPROV_PRINTF(3, 4);

	/**
	 * Emits a status message from the catalog (see `amtprov status catalog`): stored in
	 * the site database and logged at the catalog's severity.
	 * @param[in] id      catalog ID (e.g. 7210)
	 * @param[in] device  device FQDN or NULL for site-wide messages; copied
	 * @param[in] fmt     detail text (printf); copied
	 * @return AMTPROV_OK, AMTPROV_E_NOT_FOUND for an unknown ID
	 */
	int (*status)(const struct amtprov_host *host, uint32_t id, const char *device,
		      const char *fmt, ...) AMTPROV_PRINTF(4, 5);

	/** Wall-clock time, seconds since the Unix epoch. Injectable in tests: plugins must use
	 * it instead of time(). */
	int64_t (*now)(const struct amtprov_host *host);

	/** Monotonic clock in milliseconds, for timeouts. */
	int64_t (*monotonic_ms)(const struct amtprov_host *host);

	/**
	 * Allocates a secret of @p len bytes (+1 NUL), zero-filled; caller frees with
	 * secret_free. @return NULL when out of memory.
	 */
	struct amtprov_secret *(*secret_new)(const struct amtprov_host *host, size_t len);

	/** Wipes and frees a secret. Accepts NULL. */
	void (*secret_free)(const struct amtprov_host *host, struct amtprov_secret *secret);

	/**
	 * Reads a secret from the site's credential store.
	 * @param[in]  name  record name (e.g. "ca-local/issuing-key"); borrowed
	 * @param[out] out   new secret; caller frees with secret_free
	 * @return AMTPROV_OK, AMTPROV_E_NOT_FOUND, AMTPROV_E_NOT_SUPPORTED when the site has no
	 *         credential store (and always, for credential-store plugins themselves)
	 */
	int (*secret_get)(const struct amtprov_host *host, const char *name,
			  struct amtprov_secret **out, struct amtprov_error *err);

	/**
	 * Writes a secret to the site's credential store, durably: before returning, or, on
	 * amtprovd's event loop, before amtprovd next acts on a device or a CA (sync_later).
	 * @param[in] name   record name; copied
	 * @param[in] secret borrowed; not freed
	 */
	int (*secret_put)(const struct amtprov_host *host, const char *name,
			  const struct amtprov_secret *secret, struct amtprov_error *err);

	/**
	 * Fills @p out from @p config using @p table (see struct amtprov_config_field): every
	 * error carries its JSON path, all errors are collected into one message, unknown keys
	 * are refused.
	 * @param[in]  config  borrowed
	 * @param[out] out     the plugin's struct; strings in it are owned by it afterwards and
	 *                     released with config_free (also after a failure)
	 */
	int (*config_parse)(const struct amtprov_host *host, const struct json_t *config,
			    const struct amtprov_config_field *table, void *out,
			    struct amtprov_error *err);

	/** Frees what config_parse allocated in @p out. Accepts partially filled structs. */
	void (*config_free)(const struct amtprov_host *host,
			    const struct amtprov_config_field *table, void *out);

	/**
	 * A directory private to this plugin instance (created 0700 by the core) for state
	 * such as a CA's issuance database. Borrowed, valid until destroy().
	 */
	const char *(*state_dir)(const struct amtprov_host *host);

	/** The instance name from the manifest (e.g. "lab-ca"). Borrowed. */
	const char *(*instance_name)(const struct amtprov_host *host);
	/* --- end of ABI 1.0 --- */

	/**
	 * ABI 1.1: nonzero when the instance is created only to validate a site (amtprov
	 * manifest check): create() must then read and check what it can but create, change
	 * or delete nothing (no key files, no lock files, no directories). state_dir() returns
	 * the directory's name then, which may not exist yet. Check with AMTPROV_HAS_SLOT.
	 */
	int (*check_only)(const struct amtprov_host *host);
	/* --- end of ABI 1.1 --- */

	/**
	 * ABI 1.3: the plugin appended to the file @p path a record that must survive power
	 * loss (a credential store's journal entry) and asks the host to sync it instead of
	 * syncing it itself. AMTPROV_OK: the host syncs it, off the calling thread, before
	 * amtprovd next acts on a device or a CA (a transport call, a CA request); the record
	 * already survives a crash of the process. Anything else (a process without deferred
	 * syncing, such as the CLI, or not on amtprovd's event loop): the plugin syncs it
	 * itself, as before. Check with AMTPROV_HAS_SLOT.
	 * @param[in] path  borrowed
	 */
	int (*sync_later)(const struct amtprov_host *host, const char *path);
	/* --- end of ABI 1.3 --- */
};

/** True if a host (or any size-stamped struct) built by the other side has slot @p member. */
#define AMTPROV_HAS_SLOT(ptr, type, member) \
	((ptr)->struct_size >= offsetof(type, member) + sizeof(((type *)0)->member))

#ifdef __cplusplus
}
#endif

#endif /* AMTPROV_PLUGIN_H */
