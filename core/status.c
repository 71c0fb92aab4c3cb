/* SPDX-License-Identifier: Apache-2.0 */
#include "status.h"

#include <string.h>

static const struct status_entry catalog[] = {
	{7210, STORE_SEV_WARNING, "PROVCERT_EXPIRING",
	 "The provisioning certificate in use expires in 40 days or fewer; replace it and name "
	 "the new one in the site manifest"},
	{7211, STORE_SEV_ERROR, "PROVCERT_EXPIRING_SOON",
	 "The provisioning certificate in use expires in fewer than 15 days; provisioning will "
	 "fail when it expires"},
	{8000, STORE_SEV_INFO, "DAEMON_STARTED", "amtprovd started"},
	{8001, STORE_SEV_INFO, "DAEMON_STOPPED", "amtprovd stopped"},
	{8002, STORE_SEV_INFO, "DAEMON_RELOADED", "amtprovd reloaded the site manifest"},
	{8003, STORE_SEV_ERROR, "RELOAD_FAILED",
	 "Reloading the site manifest failed; the previous configuration stays in force"},
	{8010, STORE_SEV_WARNING, "PLUGIN_OPTIONAL_FAILED",
	 "An optional plugin could not be loaded or started; features that need it are off"},
	{8011, STORE_SEV_ERROR, "SITE_INCOMPLETE",
	 "Part of the site configuration a provisioning step needs is missing; devices wait at "
	 "that step until it is configured"},
	{8100, STORE_SEV_INFO, "DEVICE_REGISTERED", "A device was registered for provisioning"},
	{8101, STORE_SEV_ERROR, "DEVICE_REFUSED",
	 "A device was refused: its AMT status is not Not Provisioned"},
	{8102, STORE_SEV_INFO, "PROVISIONING_STARTED", "Provisioning of a device started"},
	{8103, STORE_SEV_INFO, "DEVICE_PROVISIONED", "A device was provisioned"},
	{8104, STORE_SEV_ERROR, "PROVISIONING_FAILED",
	 "Provisioning of a device failed; see the reason and retry with 'amtprov device retry'"},
	{8105, STORE_SEV_WARNING, "PROVISIONING_RETRY",
	 "A provisioning step failed for a reason that may pass; it will be retried"},
	{8106, STORE_SEV_WARNING, "STATE_RESUMED",
	 "A step interrupted by a restart was rewound and will run again"},
	{8107, STORE_SEV_INFO, "DEVICE_BLOCKED", "A device was blocked"},
	{8108, STORE_SEV_INFO, "DEVICE_UNBLOCKED", "A device was unblocked"},
	{8109, STORE_SEV_INFO, "DEVICE_UNPROVISIONED", "A device was unprovisioned"},
	{8110, STORE_SEV_INFO, "DEVICE_UPDATED", "A device's AMT settings were updated"},
	{8111, STORE_SEV_ERROR, "OTP_MISMATCH",
	 "The one-time password hash reported by the firmware does not match the registered one"},
	{8112, STORE_SEV_ERROR, "NAMESPACE_MISMATCH",
	 "The device FQDN and the service point FQDN do not share a DNS namespace"},
	{8113, STORE_SEV_WARNING, "DEVICE_REREGISTERED",
	 "A known device registered again with a new one-time password (its AMT was reset or the "
	 "computer re-imaged); it is provisioned again and its earlier certificates are revoked "
	 "Superseded"},
	{8114, STORE_SEV_ERROR, "REREGISTRATION_REFUSED",
	 "A registration of a known device was refused: the device is blocked, an unprovision is "
	 "pending, or it claims another device's FQDN or UUID"},
	{8115, STORE_SEV_WARNING, "REREGISTRATION_DEFERRED",
	 "A known device registered again while amtprovd is working on it or a CA request is "
	 "pending; its agent must register again later"},
	{8116, STORE_SEV_ERROR, "CRASH_LOOP",
	 "A device's step was in flight each time amtprovd stopped, more often than "
	 "engine.crash_loop_limit allows; the device is set aside as FAILED so the others go on"},
	{8120, STORE_SEV_WARNING, "CREDENTIALS_REVEALED",
	 "An administrator read a device's AMT credentials (Remote Admin, MEBx); the audit "
	 "trail names who"},
	{8121, STORE_SEV_WARNING, "DEVICE_DELETED",
	 "An administrator deleted a device record; its certificates and audit trail are kept "
	 "under the record's tombstone"},
	{8125, STORE_SEV_WARNING, "FIRMWARE_FEATURE_MISSING",
	 "The device's AMT release lacks a feature the site's manifest asks for (e.g. keys "
	 "generated inside AMT before 6.2); the message names the device, its version, the "
	 "feature and what amtprov does instead"},
	{8200, STORE_SEV_INFO, "CERT_ISSUED", "A certificate was issued"},
	{8201, STORE_SEV_ERROR, "CERT_REJECTED", "The CA rejected a certificate request"},
	{8202, STORE_SEV_WARNING, "CA_UNREACHABLE", "The CA could not be reached; will retry"},
	{8203, STORE_SEV_INFO, "CERT_REVOKED", "A certificate was revoked"},
	{8204, STORE_SEV_WARNING, "REVOCATION_QUEUED",
	 "A revocation could not be done now; it is queued and will be retried"},
	{8205, STORE_SEV_INFO, "CERT_RENEWED", "A certificate was renewed"},
	{8206, STORE_SEV_WARNING, "RENEWAL_SKIPPED_WIRELESS",
	 "Renewal skipped: the device is reached over wireless; it will be retried"},
	{8207, STORE_SEV_ERROR, "PROVCERT_REVOKED",
	 "The provisioning certificate is revoked; provisioning is stopped until a valid one is "
	 "configured"},
	{8208, STORE_SEV_ERROR, "PROVCERT_INVALID",
	 "The provisioning certificate fails a check; provisioning would fail"},
	{8209, STORE_SEV_WARNING, "8021X_TEMPLATES",
	 "802.1X profiles use more than one certificate template; one is best practice"},
	{8210, STORE_SEV_WARNING, "CERT_MAYBE_UNTRACKED",
	 "A certificate request was interrupted by a restart after it reached the CA; the CA may "
	 "hold a certificate amtprov never received: check it and revoke it"},
	{8211, STORE_SEV_ERROR, "CA_CONTRACT_VIOLATED",
	 "A CA plugin answered ISSUED with a certificate that breaks the CA contract (wrong key, "
	 "subject, EKU, chain or CRL distribution point); the request failed before anything "
	 "reached the device: fix the CA's template or plugin, then 'amtprov device retry'"},
	{8300, STORE_SEV_INFO, "TASK_COMPLETED", "A maintenance task completed"},
	{8301, STORE_SEV_ERROR, "TASK_FAILED", "A maintenance task failed"},
};

const struct status_entry *status_lookup(uint32_t id)
{
	size_t lo = 0, hi = sizeof(catalog) / sizeof(catalog[0]);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (catalog[mid].id == id)
			return &catalog[mid];
		if (catalog[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct status_entry *status_catalog(size_t *count)
{
	*count = sizeof(catalog) / sizeof(catalog[0]);
	return catalog;
}

const char *status_severity_name(int severity)
{
	switch (severity) {
	case STORE_SEV_INFO: return "info";
	case STORE_SEV_WARNING: return "warning";
	case STORE_SEV_ERROR: return "error";
	default: return "?";
	}
}

int status_severity_parse(const char *name)
{
	if (!name)
		return -1;
	if (strcmp(name, "info") == 0)
		return STORE_SEV_INFO;
	if (strcmp(name, "warning") == 0)
		return STORE_SEV_WARNING;
	if (strcmp(name, "error") == 0)
		return STORE_SEV_ERROR;
	return -1;
}
