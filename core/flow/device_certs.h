/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file device_certs.h
 * @brief What the site database says about a device's certificates: shared by the
 *        provisioning steps (flow/) and the lifecycle steps above them (lifecycle/).
 */
#ifndef AMTPROV_CORE_DEVICE_CERTS_H
#define AMTPROV_CORE_DEVICE_CERTS_H

#include <stdint.h>

#include <amtprov/error.h>

#include "site.h"
#include "store.h"



/** The device's newest web server certificate with stored data; @p active_only. 0: none. */
int64_t device_certs_web(struct site *s, int64_t device_id, int active_only);
/** 1 when the device is reached over a wireless connection (R-WS-04): wireless-capable
 * and no wired address was registered (R-PROV-02). */
int device_certs_over_wireless(const struct store_device *d);

/** 1 when certificate @p c has renew_within_days (manifest, default 42) or fewer days left
 * at the site's clock: due for renewal (R-WS-03, R-8021X-06). */
int device_certs_due(struct site *s, const struct store_cert *c);
/** How many active 802.1X client certificates of the device are due for renewal; the one
 * that expires first is copied to @p first (may be NULL). */
int device_certs_client_due(struct site *s, int64_t device_id, struct store_cert *first);

/** The pending operation an update request leaves for the 802.1X step (R-REV-04):
 * {"from_id":N}, the client certificates recorded before id N are replaced. */
#define DEVICE_CERTS_8021X_UPDATE_KIND "8021x-update"
/** Leaves the mark for the certificates the device has now (older marks go). */
int device_certs_8021x_mark_update(struct site *s, int64_t device_id, struct amtprov_error *err);
/** The from_id of the device's newest update mark (0: none); @p remove drops its marks. */
int64_t device_certs_8021x_update_mark(struct site *s, int64_t device_id, int remove);

#endif /* AMTPROV_CORE_DEVICE_CERTS_H */
