/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file device_state.h
 * @brief The persisted per-device provisioning states and their allowed transitions.
 *
 * Names follow certmonger's convention: NEED_X is "X is to be done", an -ING state is "X is
 * being done". On restart every -ING state rewinds to its NEED_ state, so no step resumes
 * half done; each step must therefore be safe to run again (R-PROV-13). The names are
 * stored in the site database: they are stable. See docs/states.md.
 */
#ifndef AMTPROV_CORE_DEVICE_STATE_H
#define AMTPROV_CORE_DEVICE_STATE_H

#include <stddef.h>

enum device_state {
	DS_INVALID = 0,
	DS_REGISTERED,                 /**< registered by its agent; waiting to start */
	DS_NEED_DIRECTORY_ACCOUNT,     /**< R-PROV-04 */
	DS_CREATING_DIRECTORY_ACCOUNT,
	DS_NEED_DEVICE_CHECK,          /**< setup state (R-PROV-01), OTP (R-PROV-05), hashes */
	DS_CHECKING_DEVICE,
	DS_NEED_CERTIFICATE,           /**< R-PROV-06 */
	DS_REQUESTING_CERTIFICATE,
	DS_CA_WAITING,                 /**< CA said WAIT: its cookie is persisted; poll later */
	DS_NEED_FIRST_STAGE,           /**< R-PROV-10 (1)-(5) */
	DS_CONFIGURING_FIRST_STAGE,
	DS_NEED_COMMIT,                /**< R-PROV-10 (6); passwords stored first */
	DS_COMMITTING,
	DS_NEED_SECOND_STAGE,          /**< R-PROV-11 */
	DS_CONFIGURING_SECOND_STAGE,
	DS_PROVISIONED,                /**< monitored by maintenance tasks */
	DS_NEED_UPDATE,                /**< re-apply AMT settings (R-REV-03) */
	DS_UPDATING,
	DS_NEED_RENEWAL,               /**< R-WS-03 */
	DS_RENEWING,
	DS_NEED_UNPROVISION,           /**< R-REV-02a */
	DS_UNPROVISIONING,
	DS_UNPROVISIONED,
	DS_BLOCKED,                    /**< R-REV-02d */
	DS_FAILED,                     /**< stopped with a reason; retry or unprovision */
	DS_NEED_8021X,                 /**< R-PROV-11 (3): 802.1X, provisioning's last step */
	DS_CONFIGURING_8021X,
	DS_COUNT
};

/** Stable name ("NEED_CERTIFICATE"); "INVALID" for out-of-range values. */
const char *device_state_name(enum device_state s);
/** Parses a name; DS_INVALID if unknown. */
enum device_state device_state_parse(const char *name);
/** 1 for -ING states (work in progress, rewound on restart). */
int device_state_in_progress(enum device_state s);
/** For an -ING state, its NEED_ state; for a NEED_ state, its -ING state; else itself. */
enum device_state device_state_rewind(enum device_state s);
enum device_state device_state_doing(enum device_state s);
/** 1 if the engine has work to do in @p s (NEED_ states, REGISTERED, CA_WAITING). */
int device_state_runnable(enum device_state s);
/** 1 if @p from -> @p to is an allowed transition. */
int device_state_allowed(enum device_state from, enum device_state to);

#endif /* AMTPROV_CORE_DEVICE_STATE_H */
