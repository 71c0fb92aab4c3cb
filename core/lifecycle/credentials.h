/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file credentials.h
 * @brief An administrator's way into a provisioned device (docs/operations.md
 *        "Credentials"): one device's AMT credentials read back from the credential store,
 *        each reveal audited and announced (status 8120), the secret itself never logged
 *        or recorded (R-ACC-02).
 *
 * Who may call it is the caller's business: the CLI runs as someone who can read the
 * site's credential store (the amtprovd user or root), the API only for an administrator
 * token. The core records who asked.
 */
#ifndef AMTPROV_CORE_CREDENTIALS_H
#define AMTPROV_CORE_CREDENTIALS_H

#include <amtprov/error.h>
#include <amtprov/types.h>

#include "site.h"
#include "store.h"

/** What a reveal hands back; free with device_credentials_free. */
struct device_credentials {
	struct store_device dev;
	const char *admin_user;            /**< "admin": AMT's Remote Admin account (Digest) */
	char admin_credential[STORE_FQDN_SIZE + 48]; /**< its record in the credential store */
	struct amtprov_secret *admin_password;
	const char *mebx_credential;       /**< the site's MEBx record, or NULL */
	struct amtprov_secret *mebx_password; /**< NULL when the site sets none */
};

/**
 * Reads @p device's AMT credentials (FQDN or UUID) from the started credential store
 * @p credstore, then writes an audit record ("credentials.reveal", by @p actor) and status
 * 8120 CREDENTIALS_REVEALED naming the device and the actor, never the secret.
 * @return AMTPROV_OK; AMTPROV_E_NOT_FOUND (no such device, or no admin password on record:
 *         err says the device's state); the store's or credential store's error otherwise.
 *         Nothing is audited unless a secret is handed back.
 */
int device_credentials_reveal(struct site *s, struct plugin_instance *credstore,
			      const char *device, const char *actor,
			      struct device_credentials *out, struct amtprov_error *err);

/** Wipes and frees the secrets of @p c. Accepts a zeroed struct. */
void device_credentials_free(struct device_credentials *c);

#endif /* AMTPROV_CORE_CREDENTIALS_H */
