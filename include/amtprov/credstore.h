/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file credstore.h
 * @brief The credential-store plugin vtable (kind AMTPROV_KIND_CREDSTORE).
 *
 * A credential store keeps the site's secrets (MEBx, Remote Admin, AMT user and provisioning
 * account passwords, CA credentials, PKCS#12 passphrases) encrypted at rest (R-ACC-02).
 * put() is durable when it returns: the core writes a new admin or MEBx password here
 * *before* it tells the firmware to commit it, so a crash never loses a device's password.
 */
#ifndef AMTPROV_CREDSTORE_H
#define AMTPROV_CREDSTORE_H

#include <amtprov/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Callback for list(); @p name borrowed for the call. Return non-zero to stop early. */
typedef int (*amtprov_credstore_name_cb)(void *ctx, const char *name);

/**
 * Mandatory: struct_size, get, put, remove. Optional: start, stop, list, rotate_key
 * (capability credstore:rotate).
 */
struct amtprov_credstore_ops {
	uint32_t struct_size;

	int (*start)(void *instance, struct amtprov_error *err);
	void (*stop)(void *instance);

	/**
	 * Reads a record.
	 * @param[in]  name  borrowed
	 * @param[out] out   new secret from host->secret_new; caller frees with secret_free
	 * @return AMTPROV_OK, AMTPROV_E_NOT_FOUND, AMTPROV_E_VERIFY (tampered record, wrong key)
	 */
	int (*get)(void *instance, const char *name, struct amtprov_secret **out,
		   struct amtprov_error *err);

	/** Creates or replaces a record, atomically and durably. Both arguments borrowed. */
	int (*put)(void *instance, const char *name, const struct amtprov_secret *value,
		   struct amtprov_error *err);

	/** Deletes a record. @return AMTPROV_OK or AMTPROV_E_NOT_FOUND. */
	int (*remove)(void *instance, const char *name, struct amtprov_error *err);

	/** Lists record names (never values). */
	int (*list)(void *instance, amtprov_credstore_name_cb cb, void *ctx,
		    struct amtprov_error *err);

	/** Re-encrypts every record under a new key, atomically. */
	int (*rotate_key)(void *instance, struct amtprov_error *err);
	/* --- end of ABI 1.0 --- */
};

#ifdef __cplusplus
}
#endif

#endif /* AMTPROV_CREDSTORE_H */
