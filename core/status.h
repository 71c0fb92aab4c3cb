/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file status.h
 * @brief The status message catalog: stable numeric IDs, severity and text.
 *
 * 7210 and 7211 keep Configuration Manager's IDs and meaning (seed 000, R-PC-06) so that
 * monitoring rules written for it carry over. amtprov's own messages use 8000-8999.
 * IDs are never reused or renumbered; see docs/status-messages.md.
 */
#ifndef AMTPROV_CORE_STATUS_H
#define AMTPROV_CORE_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum status_id {
	STATUS_PROVCERT_EXPIRING = 7210,      /**< warning: <= 40 days left (R-PC-06) */
	STATUS_PROVCERT_EXPIRING_SOON = 7211, /**< error: < 15 days left (R-PC-06) */

	STATUS_DAEMON_STARTED = 8000,
	STATUS_DAEMON_STOPPED = 8001,
	STATUS_DAEMON_RELOADED = 8002,
	STATUS_RELOAD_FAILED = 8003,
	STATUS_PLUGIN_OPTIONAL_FAILED = 8010,
	STATUS_SITE_INCOMPLETE = 8011,        /**< a step's configuration is missing: it waits */

	STATUS_DEVICE_REGISTERED = 8100,
	STATUS_DEVICE_REFUSED = 8101,         /**< not in Not Provisioned state (R-PROV-01) */
	STATUS_PROVISIONING_STARTED = 8102,
	STATUS_DEVICE_PROVISIONED = 8103,
	STATUS_PROVISIONING_FAILED = 8104,
	STATUS_PROVISIONING_RETRY = 8105,
	STATUS_STATE_RESUMED = 8106,          /**< an interrupted step was rewound on restart */
	STATUS_DEVICE_BLOCKED = 8107,
	STATUS_DEVICE_UNBLOCKED = 8108,
	STATUS_DEVICE_UNPROVISIONED = 8109,
	STATUS_DEVICE_UPDATED = 8110,
	STATUS_OTP_MISMATCH = 8111,           /**< R-PROV-05 */
	STATUS_NAMESPACE_MISMATCH = 8112,     /**< R-PC-05 */
	STATUS_DEVICE_REREGISTERED = 8113,    /**< a known device registered again (its AMT reset) */
	STATUS_REREGISTRATION_REFUSED = 8114, /**< blocked, another identity, unprovision pending */
	STATUS_REREGISTRATION_DEFERRED = 8115, /**< a step is running: the agent tries again */
	STATUS_CRASH_LOOP = 8116,             /**< a step was in flight at too many crashes */
	STATUS_FIRMWARE_FEATURE_MISSING = 8125, /**< the device's AMT release lacks what the site asks */
	STATUS_CREDENTIALS_REVEALED = 8120,   /**< an administrator read a device's AMT password */
	STATUS_DEVICE_DELETED = 8121,         /**< amtprov device delete (docs/lifecycle.md) */

	STATUS_CERT_ISSUED = 8200,
	STATUS_CERT_REJECTED = 8201,
	STATUS_CA_UNREACHABLE = 8202,
	STATUS_CERT_REVOKED = 8203,
	STATUS_REVOCATION_QUEUED = 8204,
	STATUS_CERT_RENEWED = 8205,
	STATUS_RENEWAL_SKIPPED_WIRELESS = 8206, /**< R-WS-04 */
	STATUS_PROVCERT_REVOKED = 8207,         /**< R-PC-08 */
	STATUS_PROVCERT_INVALID = 8208,
	STATUS_8021X_TEMPLATES = 8209,          /**< R-8021X-03 warning */
	STATUS_CERT_MAYBE_UNTRACKED = 8210,     /**< a crash after a CA request: check the CA */
	STATUS_CA_CONTRACT_VIOLATED = 8211,     /**< ISSUED answer refused (ca_contract.h) */

	STATUS_TASK_COMPLETED = 8300,
	STATUS_TASK_FAILED = 8301,
};

struct status_entry {
	uint32_t id;
	int severity;          /**< enum store_severity */
	const char *name;      /**< stable symbolic name, e.g. "PROVCERT_EXPIRING" */
	const char *text;      /**< what it means, one sentence */
};

/** The entry for @p id, or NULL. */
const struct status_entry *status_lookup(uint32_t id);
/** The whole catalog (sorted by ID) and its length. */
const struct status_entry *status_catalog(size_t *count);
/** "info", "warning", "error". */
const char *status_severity_name(int severity);
/** Parses a severity name; -1 if unknown. */
int status_severity_parse(const char *name);

#endif /* AMTPROV_CORE_STATUS_H */
