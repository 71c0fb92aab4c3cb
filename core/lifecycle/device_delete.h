/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file device_delete.h
 * @brief Deleting a device record (amtprov device delete, DELETE /v1/devices/{device}).
 *
 * What an administrator deletes is the device's place in the inventory, not its history
 * (docs/lifecycle.md, "Deleting a device"). The record stays as a tombstone (state
 * DELETED, store_device_delete) so its certificates, audit trail and queued revocations
 * keep their device; its FQDN and UUID are free for a new registration; its secrets leave
 * the credential store. A device that may still hold something live is refused, and the
 * refusal says what to do:
 *  - in an -ING step: AMTPROV_E_BUSY (amtprovd is working on it; try again);
 *  - not REGISTERED, FAILED or UNPROVISIONED (AMT may hold the site's settings, or it is
 *    BLOCKED, which a new registration would lift): AMTPROV_E_STATE unless @c force;
 *    'amtprov device unprovision' is the way that cleans AMT up first;
 *  - FAILED with its AMT admin password on record (it failed after the first stage):
 *    AMTPROV_E_STATE unless @c force;
 *  - an active certificate: AMTPROV_E_STATE unless @c revoke, which queues its revocation
 *    (cessationOfOperation) for amtprovd's revocation task; never left valid silently;
 *  - a directory account created since the last unprovision: AMTPROV_E_STATE unless
 *    @c force (the result names the account left behind).
 */
#ifndef AMTPROV_CORE_DEVICE_DELETE_H
#define AMTPROV_CORE_DEVICE_DELETE_H

#include <amtprov/error.h>

#include "site.h"
#include "store.h"

struct device_delete_opts {
	int revoke;        /**< queue the revocation of active certificates */
	int force;         /**< any state but an -ING one; a directory account may be left */
	const char *actor; /**< "cli:USER", "api:PEER" */
};

struct device_delete_result {
	struct store_device dev;            /**< the device as it was */
	char tombstone[STORE_FQDN_SIZE];    /**< the record's name now ("deleted-ID:FQDN") */
	int certificates;                   /**< certificates kept with the tombstone */
	int revocations_queued;             /**< by @c revoke */
	int account_left;                   /**< a directory account may remain (force) */
	char account[STORE_SHORT_SIZE];     /**< its name */
	int secrets_failed;                 /**< credential records not removed */
	char secrets_error[STORE_TEXT_SIZE];
};

/**
 * Deletes device @p key (FQDN or UUID). The credential store, when the site has one, must
 * be started. AMTPROV_OK also when some secrets could not be removed (result says so).
 * @return AMTPROV_OK; AMTPROV_E_NOT_FOUND; AMTPROV_E_STATE (refused: err says why and
 *         what to do); AMTPROV_E_BUSY; a store error
 */
int device_delete(struct site *s, const char *key, const struct device_delete_opts *o,
		  struct device_delete_result *out, struct amtprov_error *err);

#endif /* AMTPROV_CORE_DEVICE_DELETE_H */
