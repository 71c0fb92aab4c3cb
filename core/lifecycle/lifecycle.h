/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file lifecycle.h
 * @brief What happens to a device after provisioning (seed 000, docs/lifecycle.md):
 *        unprovision, block, unblock, update, renewal.
 *
 * An operator's request (CLI or API) is only a state change written to the site database
 * (compare-and-set, with its audit record): amtprovd's engine sees the NEED_ state and
 * does the work with the transport, CA and directory it holds. Blocking needs no device
 * work: its revocations are queued at once and the revocation task does them.
 */
#ifndef AMTPROV_CORE_LIFECYCLE_H
#define AMTPROV_CORE_LIFECYCLE_H

#include <amtprov/error.h>

#include "engine.h"
#include "flow.h"
#include "site.h"
#include "store.h"

enum lifecycle_op {
	LC_UNPROVISION, /**< any configured device -> NEED_UNPROVISION (R-REV-02a) */
	LC_BLOCK,       /**< -> BLOCKED, certificates revoked Superseded (R-REV-02d, R-REV-04) */
	LC_UNBLOCK,     /**< BLOCKED -> NEED_UNPROVISION (it holds a revoked certificate) or
			 *   UNPROVISIONED (it never got one) */
	LC_UPDATE,      /**< PROVISIONED -> NEED_UPDATE: the second stage again (R-REV-03) */
};

/** "unprovision", "block", "unblock", "update"; -1 if unknown. */
int lifecycle_op_parse(const char *name);
const char *lifecycle_op_name(enum lifecycle_op op);

/**
 * Records an operator's request for a device (FQDN or UUID).
 * @param[out] out  the device after the change; may be NULL
 * @return AMTPROV_OK; AMTPROV_E_NOT_FOUND (no such device); AMTPROV_E_STATE (not allowed
 *         in its state: err says which state and what is allowed)
 */
int lifecycle_request(struct site *s, const char *device, enum lifecycle_op op,
		      const char *actor, struct store_device *out, struct amtprov_error *err);

/**
 * Removes the secrets amtprov keeps for a device from the site's credential store (which
 * must be started): its admin password and the pending one, web server key, Kerberos keys
 * and 802.1X client keys. A record that is missing is fine.
 * @return how many records could not be removed (the first error in @p err, may be NULL)
 */
int lifecycle_clear_secrets(struct site *s, int64_t device_id, const char *fqdn,
			    struct amtprov_error *err);

/** 1 when the credential store (started) holds the device's AMT admin password: amtprov
 * gave it to AMT in the first stage, and no unprovision has removed it since. */
int lifecycle_admin_password_on_record(struct site *s, const char *fqdn);

/** Registers the NEED_UNPROVISION, NEED_UPDATE and NEED_RENEWAL handlers (after
 * flow_register, which they build on). */
int lifecycle_register(struct engine *e, struct flow *f, struct amtprov_error *err);

/* Step handlers (lifecycle.c, flow_renew.c). */
void flow_step_renewal(struct engine_job *job, void *ctx);

#endif /* AMTPROV_CORE_LIFECYCLE_H */
