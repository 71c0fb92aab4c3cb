/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file types.h
 * @brief Value types shared by every plugin kind.
 *
 * No OpenSSL, libxml2 or Jansson type appears in the ABI except `const struct json_t *` for
 * a plugin's configuration section. Certificates and requests cross as DER buffers.
 */
#ifndef AMTPROV_TYPES_H
#define AMTPROV_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Jansson's json_t, forward-declared so this header needs no Jansson headers. A plugin that
 * reads its configuration includes <jansson.h> itself. */
struct json_t;

/**
 * A secret (password, PKCS#12 passphrase, key material). Always allocated by
 * `host->secret_new()` and released with `host->secret_free()`, which wipes it. `data` is
 * NUL-terminated for convenience (data[len] == '\0'); `len` excludes the NUL.
 * Never format `data` into a log line or an error message.
 */
struct amtprov_secret {
	size_t len;
	char *data;
};

/** Events for struct amtprov_wait. */
#define AMTPROV_WAIT_READ 0x1u
#define AMTPROV_WAIT_WRITE 0x2u

/**
 * What an asynchronous operation that returned AMTPROV_AGAIN waits for: readiness of a file
 * descriptor and/or a timeout. The core calls the operation's progress slot when either
 * happens. fd = -1 means "timeout only"; timeout_ms = -1 means "no timeout".
 */
struct amtprov_wait {
	int fd;
	uint32_t events;
	int64_t timeout_ms;
};

/** Purposes of certificates amtprov handles. Values are stored; they are stable. */
enum amtprov_cert_purpose {
	AMTPROV_PURPOSE_WEB_SERVER = 1,   /**< AMT TLS server certificate (R-WS-01) */
	AMTPROV_PURPOSE_CLIENT_8021X = 2, /**< 802.1X client certificate (R-8021X-02) */
	AMTPROV_PURPOSE_PROVISIONING = 3, /**< provisioning certificate (R-PC-01) */
};

/**
 * What the core knows of a device, handed to plugins. All strings are borrowed and valid
 * only for the duration of the call they are passed to; copy what you keep.
 */
struct amtprov_device_info {
	uint32_t struct_size; /**< sizeof(struct amtprov_device_info) as the core built it */
	const char *fqdn;     /**< device FQDN, lower case */
	const char *uuid;     /**< SMBIOS UUID, canonical 8-4-4-4-12 lower case */
	int amt_major;        /**< AMT firmware major version (e.g. 11) */
	int amt_minor;
	const char *wired_ip; /**< wired IPv4/IPv6 address used for provisioning; may be NULL */
	int wireless_capable; /**< 1 if the device has a wireless AMT port */
	int via_wireless;     /**< 1 if the device is currently reached over wireless (R-WS-04) */
};

/** Field types for the declarative configuration tables (see host->config_parse). */
enum amtprov_config_type {
	AMTPROV_CFG_STRING = 1,      /**< char *, malloc'd copy; freed by host->config_free */
	AMTPROV_CFG_INT = 2,         /**< long long, range-checked against min/max */
	AMTPROV_CFG_BOOL = 3,        /**< int, 0 or 1 */
	AMTPROV_CFG_STRING_LIST = 4, /**< char ** NULL-terminated, malloc'd; freed by config_free */
	AMTPROV_CFG_CREDENTIAL = 5,  /**< char *, the *name* of a credential-store record */
};

/**
 * One row of a plugin's configuration table. A table ends with a row whose name is NULL.
 * The core fills the plugin's struct at `offset`, reports every bad or missing key with its
 * JSON path, and refuses keys the table does not list.
 */
struct amtprov_config_field {
	const char *name;      /**< JSON key */
	int type;              /**< enum amtprov_config_type */
	size_t offset;         /**< offsetof(struct plugin_cfg, member) */
	int required;          /**< 1: missing key is an error */
	const char *def;       /**< default as text ("42", "true", "x"); NULL: zero/NULL */
	long long min, max;    /**< AMTPROV_CFG_INT bounds, inclusive; ignored when min > max */
	const char *help;      /**< one line, shown by `amtprov plugin show` */
};

#ifdef __cplusplus
}
#endif

#endif /* AMTPROV_TYPES_H */
