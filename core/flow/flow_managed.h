/* SPDX-License-Identifier: Apache-2.0 */
/* Private: a session to a provisioned device, for the lifecycle steps (renewal, unprovision).
 * The device is verified against the chain of the certificate it serves, checked with that
 * certificate's CRL (R-REV-01, fail closed). */
#ifndef AMTPROV_CORE_FLOW_MANAGED_H
#define AMTPROV_CORE_FLOW_MANAGED_H

#include "flow_int.h"

struct managed {
	struct flow *f;
	void *session;
	struct flow_device_accounts accounts;
	struct amtprov_device_info info;
	char fqdn[STORE_FQDN_SIZE];
	char uuid[STORE_UUID_SIZE];
	char address[STORE_FQDN_SIZE];
	char *ca_bundle;
	char *crl_url;
};

/** Opens a MANAGED session to @p d, verifying with certificate @p cert_id's chain and CRL.
 * @p m is zeroed first; close it with managed_close whatever the result. */
int managed_open(struct flow *f, const struct store_device *d, int64_t cert_id,
		 struct managed *m, struct amtprov_error *err);
void managed_close(struct managed *m);
/** tloop_call on the session. */
int managed_call(struct managed *m, uint32_t op, json_t *params, tloop_done_fn done, void *ctx,
		 struct amtprov_error *err);
/** 1 when a failed AMT call means "it is there already" (a re-run after a restart). */
int managed_already_there(int rc, const struct amtprov_error *err);

#endif
