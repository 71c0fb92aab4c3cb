/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file provcert.h
 * @brief The provisioning certificate the site configuration names (R-PC-07): its expiry
 *        (R-PC-06: 7210/7211) and whether it is known to be revoked (R-PC-08).
 *
 * AMT cannot check the provisioning certificate's revocation, so amtprov keeps the list:
 * "amtprov cert revoked --cert FILE" records a certificate as revoked (purpose
 * provisioning); while the manifest names a recorded one, provisioning is stopped with
 * status 8207 and the daily check repeats it. docs/lifecycle.md.
 */
#ifndef AMTPROV_CORE_PROVCERT_H
#define AMTPROV_CORE_PROVCERT_H

#include <stdint.h>

#include <amtprov/error.h>

#include "site.h"
#include "store.h"

struct provcert_info {
	char sha256[STORE_HASH_SIZE];   /**< leaf thumbprint, upper-case hex */
	char subject[STORE_DN_SIZE];
	char serial_hex[STORE_SHORT_SIZE * 2];
	int64_t not_after;
};

/** The leaf of a PEM chain (leaf first). */
int provcert_from_pem(const char *pem, size_t len, struct provcert_info *out,
		      struct amtprov_error *err);
/** The leaf the manifest names (AMTPROV_E_CONFIG when it names none). */
int provcert_configured(struct site *s, struct provcert_info *out, struct amtprov_error *err);
/** 1 when a certificate with this thumbprint is recorded revoked (R-PC-08). */
int provcert_known_revoked(struct site *s, const char *sha256);

/**
 * Which expiry message applies (R-PC-06) with @p days_left whole days left: 7211 below
 * @p error_days, 7210 at @p warning_days or fewer, else 0.
 */
uint32_t provcert_expiry_status(int64_t days_left, int warning_days, int error_days);

#endif /* AMTPROV_CORE_PROVCERT_H */
