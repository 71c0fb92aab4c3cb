/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file manifest.h
 * @brief The site manifest: one JSON file per site, validated completely at load.
 *
 * The format is documented in docs/manifest.md and as a JSON Schema in
 * docs/manifest.schema.json. manifest_load() reports *every* error at once, each with its
 * JSON path (RFC 6901 pointer, e.g. "/ieee8021x/wireless/3/ssid"), and refuses unknown keys.
 * Relative file paths in the manifest are resolved against the manifest's directory.
 */
#ifndef AMTPROV_CORE_MANIFEST_H
#define AMTPROV_CORE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include <amtprov/error.h>
#include <amtprov/types.h>

/** The manifest_version this build reads. */
#define MANIFEST_VERSION 1

/** One validation problem. */
struct manifest_problem {
	char path[AMTPROV_ERROR_WHERE_SIZE]; /**< JSON pointer, "" for the document */
	char msg[AMTPROV_ERROR_MSG_SIZE];
	int warning;                         /**< 1: a warning (load still succeeds) */
};

/** All problems found by one load. Caller-owned; free with manifest_problems_free. */
struct manifest_problems {
	size_t count;                /**< errors + warnings */
	size_t errors;               /**< how many are errors */
	struct manifest_problem *items;
};

void manifest_problems_free(struct manifest_problems *p);
/** Prints "FILE: PATH: MSG" (errors) and "FILE: PATH: warning: MSG" lines to @p out. */
void manifest_problems_print(const struct manifest_problems *p, const char *file, FILE *out);

/** A plugin instance declared under "plugins". */
struct manifest_plugin {
	const char *instance;     /**< the key under "plugins" */
	const char *plugin;       /**< plugin (file stem), e.g. "ca-local" */
	int required;             /**< default 1; 0: a load failure is a warning */
	const json_t *config;     /**< "config" object (empty object if absent); borrowed */
	int expected_kind;        /**< enum amtprov_plugin_kind implied by where the manifest
				       references it; 0 if unreferenced */
};

/** A CA reference: which CA instance and template issue one kind of certificate. */
struct manifest_ca_ref {
	const char *ca;           /**< CA plugin instance name; NULL if not configured */
	const char *template_name;/**< may be NULL */
	int key_bits;             /**< default 2048 */
	int key_source;           /**< enum manifest_key_source; default AUTO */
};

/** The key size and signature digest that devices from one AMT major version up need in
 * their certificates (issue 17 item 11: AMT 22 deprecates SHA-256 and RSA 2048 in favour
 * of SHA-384 and RSA 3072). */
struct manifest_crypto_rule {
	int amt_from;             /**< AMT major version, inclusive */
	int key_bits;             /**< 2048, 3072 or 4096 */
	int digest_bits;          /**< signature digest, SHA-2 of 256 or 384 bits */
};

#define MANIFEST_MAX_CRYPTO_RULES 8

/** Where a certificate's key is made (R-PROV-06): "auto" picks AMT's own key generation
 * (GenerateKeyPair + GeneratePKCS10RequestEx) where amtprov's first stage can use it (AMT
 * 9.0 and later), else a key made by amtprov. */
enum manifest_key_source {
	MANIFEST_KEY_AUTO = 0,
	MANIFEST_KEY_AMT = 1,
	MANIFEST_KEY_AMTPROV = 2,
};

/** An AMT user account for the ACLs of R-PROV-11 (1). */
struct manifest_amt_account {
	const char *name;         /**< Kerberos: "DOMAIN\\group"/SID; Digest: user name */
	int kerberos;             /**< 1: Kerberos (AD) account; 0: Digest */
	const char *password;     /**< Digest only: credential record name; NULL for Kerberos */
	const char *const *realms;/**< NULL-terminated AMT realm names */
	const char *access;       /**< "network", "local" or "any" */
};

/** A Digest account tried during provisioning (R-PROV-09). */
struct manifest_prov_account {
	const char *user;
	const char *password;     /**< credential record name; NULL means empty password */
};

/** Maintenance schedule (R-WS-03, R-PC-06). */
struct manifest_maintenance {
	int evaluate_interval_days;   /**< default 7 */
	int renew_within_days;        /**< default 42 */
	int provcert_check_hours;     /**< default 24 */
	int provcert_warning_days;    /**< default 40 */
	int provcert_error_days;      /**< default 15 */
};

/** Engine tuning. */
struct manifest_engine {
	int max_in_flight;            /**< devices provisioned concurrently; default 256 */
	int max_starting;             /**< the ramp: devices the scan started in a flow at
				       *   once (engine_config.max_starting); default 256 */
	int ca_workers;               /**< worker threads for blocking plugin calls; default 4 */
	int retry_base_seconds;       /**< default 60 */
	int retry_max_seconds;        /**< default 3600 */
	int max_attempts;             /**< default 10; then the device stays FAILED */
	int crash_loop_limit;         /**< default 3; restarts with a step in flight (R-PROV-13) */
	int lease_seconds;            /**< default 60; a device lease's life (several hosts) */
};

/** How the wired IP a host agent reports is checked (api.address_check, docs/api.md). */
enum manifest_address_check {
	MANIFEST_ADDR_DNS_OR_ALLOW_LIST = 0, /**< in the allow-list, or an address of the FQDN */
	MANIFEST_ADDR_DNS,                   /**< an address of the FQDN (system resolver) */
	MANIFEST_ADDR_ALLOW_LIST,            /**< in the allow-list */
	MANIFEST_ADDR_OFF,                   /**< not checked (labs) */
};

/** An IPv4 or IPv6 network (api.address_allow): "10.1.0.0/16", "fd00::/8", "10.0.0.7". */
struct manifest_cidr {
	int family;                   /**< AF_INET or AF_INET6 */
	unsigned char addr[16];       /**< network address, host bits zero */
	int prefix;                   /**< 0..32 or 0..128 */
};

/** The registration API (docs/api.md); enabled = 0 when the manifest has no "api". */
struct manifest_api {
	int enabled;
	char *host;                   /**< IP literal to listen on (IPv6 without brackets) */
	int port;
	char *certificate;            /**< PEM server chain, leaf first; absolute */
	char *key;                    /**< PEM private key; absolute */
	char *client_ca;              /**< PEM CA bundle for mutual TLS, or NULL; absolute */
	/* Scopes (docs/api.md "Who may do what"): administrators and host agents never share a
	 * credential. At least one of the two lists is set. */
	const char **admin_tokens;    /**< credential names of the administrators' bearer tokens,
				       *   NULL-terminated; NULL when none */
	size_t n_admin_tokens;
	const char **monitor_tokens;  /**< credential names of monitoring tokens: GET /metrics
				       *   only (docs/operations.md "Monitoring"); NULL when none */
	size_t n_monitor_tokens;
	const char **registration_keys; /**< credential names of the site registration keys
					 *   (enrollment secrets are HMACs under them); the first
					 *   mints, every one verifies; NULL when none */
	size_t n_registration_keys;
	enum manifest_address_check address_check; /**< default DNS_OR_ALLOW_LIST */
	struct manifest_cidr *address_allow; /**< api.address_allow */
	size_t n_address_allow;
	int max_body;                 /**< largest request body in bytes; default 65536 */
	int max_connections;          /**< open connections at most; 0: from the fd limit */
	int max_connections_per_address; /**< open connections from one IPv4 address or IPv6 /64
					  *   at most; 0: no such limit; -1 (the default): a
					  *   quarter of the cap in force, at most 32 */
	int request_deadline_seconds; /**< a request read and answered within; default 10 */
};

/** monitoring (docs/operations.md "Monitoring"): a metrics-only listener besides the API. */
struct manifest_monitoring {
	char *metrics_host;           /**< IP literal of monitoring.metrics_listen; NULL: GET
				       *   /metrics is served by the API only */
	int metrics_port;
	const char **metrics_tokens;  /**< credential names of bearer tokens the listener asks
				       *   for; NULL: unauthenticated (loopback addresses only) */
	size_t n_metrics_tokens;
};

/** A file the site reads (certificate, key, CA bundle), with the JSON path that names it. */
struct manifest_input {
	char *file;                          /**< absolute */
	char path[AMTPROV_ERROR_WHERE_SIZE]; /**< JSON pointer of the key that names it */
	int secret;                          /**< must be ours and mode 0600 (a password) */
};

/** A loaded, validated manifest. Everything is owned by it; borrowed by callers. */
struct manifest {
	char *file;                   /**< absolute path of the manifest */
	char *dir;                    /**< its directory */
	json_t *root;                 /**< the whole document (kept alive for config borrows) */

	const char *site_name;
	const char *service_point_fqdn;
	const char *dns_suffix;
	/** site.fqdn_patterns: lower-case globs under dns_suffix ('*' and '?' stay inside one
	 * label); NULL-terminated, NULL when absent (any name under dns_suffix). */
	const char **fqdn_patterns;
	size_t n_fqdn_patterns;
	char *database_path;          /**< SQLite: absolute path, default <state_dir>/site.db;
				       *   PostgreSQL: database.url as given (no password) */
	char *database_password_file; /**< database.password_file (absolute) or NULL */
	char *state_dir;              /**< absolute; default <manifest dir>/state */
	char **plugin_path;           /**< absolute dirs, NULL-terminated */

	struct manifest_plugin *plugins;
	size_t n_plugins;

	const char *credstore;        /**< credential-store instance or NULL */
	const char *mebx_password;    /**< credential name or NULL */
	struct manifest_prov_account *prov_accounts;
	size_t n_prov_accounts;

	/* provisioning certificate (R-PC-07: only what the manifest names counts) */
	char *provcert_file;          /**< PEM chain, leaf first; absolute; or NULL */
	char *provcert_key_file;      /**< PEM key; absolute; or NULL */
	char *provcert_pkcs12_file;   /**< alternative to the two above; absolute */
	const char *provcert_pkcs12_password; /**< credential name */

	struct manifest_ca_ref web_server;    /**< R-WS-01 */
	/** certificates.amt_crypto_policy; default: AMT 22 and later, RSA 3072 and SHA-384 */
	struct manifest_crypto_rule crypto_rules[MANIFEST_MAX_CRYPTO_RULES];
	size_t n_crypto_rules;

	/* AMT settings (R-PROV-10/11) */
	const char *transport;        /**< transport instance */
	const char *directory;        /**< directory instance or NULL (R-PROV-04) */
	const char *directory_container;
	int mebx_policy;              /**< 0 never, 1 if-default, 2 always */
	int admin_password_length;    /**< default 16 (8..32) */
	struct manifest_amt_account *amt_accounts;
	size_t n_amt_accounts;
	int kerberos;                 /**< -1 unset, 0/1 */
	const char *power_policy;     /**< e.g. "always-on"; NULL leave as is */
	int web_ui, sol, ider, ping;  /**< -1 unset, 0/1 */

	/* 802.1X (R-8021X) */
	const char *netprofile;       /**< netprofile instance or NULL */
	const json_t *ieee8021x;      /**< the validated "ieee8021x" object or NULL; borrowed */

	struct manifest_maintenance maintenance;
	struct manifest_monitoring monitoring;
	struct manifest_engine engine;
	struct manifest_api api;

	/** Every input file the manifest names (not the state it creates). */
	struct manifest_input *inputs;
	size_t n_inputs;
};

/**
 * Loads and validates a manifest.
 * @param[in]  path     manifest file
 * @param[out] out      the manifest on success (caller frees with manifest_free)
 * @param[out] problems every error and warning (caller frees); may be NULL
 * @param[out] err      first error, summarised ("N errors in FILE"), where = file
 * @return AMTPROV_OK (warnings possible); AMTPROV_E_NOT_FOUND/AMTPROV_E_IO for the file,
 *         AMTPROV_E_PARSE for bad JSON (with line and column), AMTPROV_E_CONFIG otherwise.
 */
int manifest_load(const char *path, struct manifest **out, struct manifest_problems *problems,
		  struct amtprov_error *err);

/**
 * Checks that every input file the manifest names (provisioning certificate, key or
 * PKCS#12, API certificate, key and client CA, 802.1X server CA) is a readable regular
 * file; adds one error per file that is not, at its JSON path. Reads and creates nothing
 * else. @return the number of errors added
 */
size_t manifest_check_inputs(const struct manifest *m, struct manifest_problems *problems);

/** Same, from a string; @p name is used in messages and to resolve relative paths (its
 * directory). */
int manifest_load_string(const char *json, const char *name, struct manifest **out,
			 struct manifest_problems *problems, struct amtprov_error *err);

void manifest_free(struct manifest *m);

/** Finds a plugin instance by name; NULL if absent. */
const struct manifest_plugin *manifest_plugin_find(const struct manifest *m,
						   const char *instance);

/**
 * Calls @p cb(ctx, instance, capability, json_path) for every capability the manifest needs
 * from an instance (e.g. the web-server CA needs "ca:submit", "ca:purpose-web-server" and
 * "ca:revoke"), so the plugin host can check them at load time. Stops early when cb returns
 * non-zero and returns that value.
 */
int manifest_required_caps(const struct manifest *m,
			   int (*cb)(void *ctx, const char *instance, const char *cap,
				     const char *json_path),
			   void *ctx);

/**
 * The declarative configuration-table parser behind host->config_parse (see
 * struct amtprov_config_field). @p base_path prefixes every JSON path in messages (e.g.
 * "/plugins/lab-ca/config"). All problems are collected in @p problems (may be NULL) and
 * summarised in @p err.
 */
int config_table_parse(const json_t *config, const struct amtprov_config_field *table,
		       void *out, const char *base_path, struct manifest_problems *problems,
		       struct amtprov_error *err);
void config_table_free(const struct amtprov_config_field *table, void *out);

/**
 * The key size and signature digest a certificate for a device with firmware
 * @p amt_version ("22.0.10") needs: @p base_bits (the purpose's own key_bits) and SHA-256
 * (@p digest_bits 256),
 * raised by every crypto rule whose amt_from the version reaches. An unknown version gets
 * the base.
 */
void manifest_crypto_for(const struct manifest *m, const char *amt_version, int base_bits,
			 int *bits, int *digest_bits);

#endif /* AMTPROV_CORE_MANIFEST_H */
