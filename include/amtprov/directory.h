/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file directory.h
 * @brief The directory plugin vtable (kind AMTPROV_KIND_DIRECTORY), for R-PROV-04.
 *
 * Before provisioning, the site creates a directory (e.g. Active Directory) account for the
 * device in the configured container and sets its service principal names, so Kerberos
 * consoles can reach AMT. Unprovisioning removes both. Calls may block; the core runs them
 * on its worker pool.
 */
#ifndef AMTPROV_DIRECTORY_H
#define AMTPROV_DIRECTORY_H

#include <amtprov/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An account to create. Borrowed for the duration of the call. */
struct amtprov_directory_account {
	uint32_t struct_size;
	const char *fqdn;            /**< device FQDN */
	const char *account_name;    /**< sAMAccountName-like short name (<= 15 chars in AD) */
	const char *container;       /**< e.g. "OU=AMT,DC=contoso,DC=com"; NULL: plugin default */
	const char *const *spns;     /**< NULL-terminated, e.g. "HTTP/host.contoso.com:16993" */
	/* --- end of ABI 1.0 --- */
};

/**
 * The Kerberos facts of a device's account (ABI 1.2), what amtprov needs to give AMT the same
 * long-term keys the KDC holds (R-ACC-01): the keys are derived from the account password
 * returned by create_account, with this salt, and tagged with this key version.
 */
struct amtprov_directory_keyinfo {
	uint32_t struct_size;
	char realm[256];   /**< Kerberos realm, upper case, e.g. "CONTOSO.COM" */
	char salt[512];    /**< the AES string-to-key salt the KDC uses for this account */
	uint32_t kvno;     /**< key version number (msDS-KeyVersionNumber) after the last password set */
	uint32_t enctypes; /**< msDS-SupportedEncryptionTypes: 0x4 RC4-HMAC, 0x8 AES128, 0x10 AES256 */
	/* --- end of ABI 1.2 --- */
};

/** Mandatory: struct_size, create_account, delete_account. */
struct amtprov_directory_ops {
	uint32_t struct_size;

	int (*start)(void *instance, struct amtprov_error *err);
	void (*stop)(void *instance);

	/**
	 * Creates (or updates, if it exists for the same device) the account and its SPNs.
	 * @param[out] password  optional: the account's password if the plugin set one, as a
	 *                       host->secret_new secret the caller frees; may be left NULL
	 * @return AMTPROV_OK; AMTPROV_E_EXISTS when an SPN belongs to another account;
	 *         AMTPROV_E_DENIED for missing rights; AMTPROV_E_UNREACHABLE
	 */
	int (*create_account)(void *instance, const struct amtprov_directory_account *acct,
			      struct amtprov_secret **password, struct amtprov_error *err);

	/** Deletes the device's account and SPNs. AMTPROV_E_NOT_FOUND if there was none. */
	int (*delete_account)(void *instance, const char *fqdn, struct amtprov_error *err);
	/* --- end of ABI 1.0 --- */

	/**
	 * Optional (ABI 1.2): the Kerberos facts of the device's account, read back from the
	 * directory after create_account (never guessed). @p out->struct_size is set by the
	 * caller. AMTPROV_E_NOT_FOUND if the account does not exist.
	 */
	int (*account_keyinfo)(void *instance, const char *fqdn,
			       struct amtprov_directory_keyinfo *out, struct amtprov_error *err);

	/**
	 * Optional (ABI 1.2): resolves a user or group name ("CONTOSO\\amt-admins",
	 * "amt-admins@contoso.com" or a bare sAMAccountName) to its SID in string form
	 * ("S-1-5-21-...") for AMT's Kerberos ACL entries. AMTPROV_E_NOT_FOUND when no such
	 * object exists; AMTPROV_E_INVALID when the name is ambiguous.
	 */
	int (*resolve_sid)(void *instance, const char *name, char *sid, size_t sid_size,
			   struct amtprov_error *err);
	/* --- end of ABI 1.2 --- */
};

#ifdef __cplusplus
}
#endif

#endif /* AMTPROV_DIRECTORY_H */
