/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file registration.h
 * @brief A device's registration, new or known (R-PROV-01/02/03, docs/states.md
 *        "Re-registration"): the one place that decides whether a host agent's report is
 *        stored, for `amtprov device add` and the HTTPS API (`POST /v1/devices`) alike.
 *
 * A computer that is re-imaged, or whose AMT was reset locally in the MEBx, runs its agent
 * again: a new OTP, AMT status Not Provisioned. The known device record goes back to
 * REGISTERED with the new report, and provisioning starts over; the certificates of its
 * earlier provisioning are found then and revoked Superseded (R-REV-02b, R-REV-04).
 */
#ifndef AMTPROV_CORE_REGISTRATION_H
#define AMTPROV_CORE_REGISTRATION_H

#include <stdint.h>

#include "device_input.h"
#include "device_state.h"
#include "site.h"
#include "store.h"

/** What became of a registration. The HTTP code and exit status of each: docs/api.md. */
enum registration_verdict {
	REG_ADDED = 0,        /**< a new device, REGISTERED (8100) */
	REG_REREGISTERED,     /**< a known device, back to REGISTERED with the new report (8113) */
	REG_UNCHANGED,        /**< a known device amtprov configured reports 'post': nothing to do */
	REG_NOT_PROVISIONABLE,/**< AMT is not Not Provisioned (R-PROV-01, 8101) */
	REG_BLOCKED,          /**< the device is blocked (R-REV-02d, 8114) */
	REG_BUSY,             /**< a step or a CA request is under way: register later (8115) */
	REG_STATE,            /**< an unprovision is pending: register once it is done (8114) */
	REG_IDENTITY,         /**< the FQDN is known with another UUID or the reverse (8114) */
	REG_TWO_DEVICES,      /**< the FQDN and the UUID belong to two devices (8114) */
	REG_NAME,             /**< the FQDN is outside the site's name policy (authz.h):
			       *   nothing stored, no status message */
};

/** How a known device's state answers a registration with AMT Not Provisioned. */
enum registration_rule {
	REG_RULE_ACCEPT = 0,  /**< back to REGISTERED */
	REG_RULE_BUSY,        /**< amtprovd is at work on it: try again later */
	REG_RULE_REFUSE,      /**< NEED_UNPROVISION (an administrator's unprovision comes
			       *   first) or a state this build does not know */
	REG_RULE_BLOCKED,
};

/** The outcome, for the caller to report. */
struct registration {
	enum registration_verdict verdict;
	/** The record after a success; the known record (unchanged) after a refusal. */
	struct store_device dev;
	char previous_state[STORE_STATE_SIZE]; /**< the known device's state, "" if new */
	const char *field;                     /**< "fqdn" or "uuid" (REG_IDENTITY), else NULL */
	uint32_t status_id;                    /**< the status message raised, 0 if none */
	int retry_after;                       /**< seconds (REG_BUSY), else 0 */
	char message[STORE_TEXT_SIZE];         /**< what happened and why, for people */
};

/** The rule for a known device in state @p s (blocked: its `blocked` flag). */
enum registration_rule registration_rule(enum device_state s, int blocked);

/** 1 when a device in @p s holds amtprov's AMT configuration (committed): its agent's
 * 'post' report is expected and changes nothing. */
int registration_configured(enum device_state s);

/**
 * Registers @p in (already checked with device_input_check()): a new device is added, a
 * known one re-registered when its state allows, each in one transaction with its audit
 * records and its status message. @p replace is the administrator's confirmation that a
 * known FQDN now has another UUID (board replaced) or a known UUID another FQDN (renamed);
 * the API never sets it. A name outside the site's policy (the service point's own name,
 * or none of site.fqdn_patterns) is REG_NAME before anything is read or written.
 * @p out is filled whatever the verdict.
 * @return AMTPROV_OK when a verdict was reached (a refusal included); a store error
 *         (AMTPROV_E_BUSY, AMTPROV_E_IO, ...) in @p err otherwise, nothing changed.
 */
int registration_apply(struct site *s, const struct device_input *in, int replace,
		       const char *actor, struct registration *out, struct amtprov_error *err);

/** "added", "re-registered", "unchanged", "refused", "blocked", "busy", ... */
const char *registration_verdict_name(enum registration_verdict v);

#endif /* AMTPROV_CORE_REGISTRATION_H */
