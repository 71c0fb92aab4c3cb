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
};

#ifdef __cplusplus
}
#endif

#endif /* AMTPROV_DIRECTORY_H */
