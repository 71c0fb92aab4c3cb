/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file amt_password.h
 * @brief AMT's strong-password rule, once: what the random Remote Admin passwords are
 *        checked against (flow_random_password) and what the passwords an administrator
 *        gives are checked against before any device is touched (docs/manifest.md
 *        "AMT passwords").
 *
 * The rule (AMT-PROTOCOL.md section 10, "Strong password (MEBx, admin, AMT users)"; section
 * 8.2 SetMEBxPassword "(strong, 8-32)"; section 8.3 AddUserAclEntryEx): 8 to 32
 * characters, each 7-bit printable ASCII (32..126) other than ':' ',' '"'; at least one
 * digit, one lower-case and one upper-case letter and one non-alphanumeric symbol, where '_'
 * and space are accepted but do not count as the symbol. AMT answers a password that breaks
 * it with 2054 INVALID_PASSWORD.
 */
#ifndef AMTPROV_CORE_AMT_PASSWORD_H
#define AMTPROV_CORE_AMT_PASSWORD_H

#include <stddef.h>

#include "manifest.h"

#define AMT_PASSWORD_MIN 8  /**< characters, inclusive */
#define AMT_PASSWORD_MAX 32 /**< characters, inclusive */

/** The clauses of the rule a password breaks (amt_password_check), one bit each. */
enum amt_password_fault {
	AMT_PW_SHORT = 1 << 0,     /**< fewer than AMT_PASSWORD_MIN characters */
	AMT_PW_LONG = 1 << 1,      /**< more than AMT_PASSWORD_MAX characters */
	AMT_PW_CHARACTER = 1 << 2, /**< a character outside 32..126, or ':' ',' '"' */
	AMT_PW_NO_DIGIT = 1 << 3,
	AMT_PW_NO_LOWER = 1 << 4,
	AMT_PW_NO_UPPER = 1 << 5,
	AMT_PW_NO_SYMBOL = 1 << 6, /**< no symbol other than '_' and space */
};

/** 0 when AMT accepts the @p len bytes at @p pw as a password; else the AMT_PW_* bits of
 * every clause it breaks. */
unsigned amt_password_check(const char *pw, size_t len);

/** Writes what @p faults (amt_password_check) say in words into @p buf, e.g. "no digit, no
 * symbol ('_' and space do not count)": the clauses only, never a character of the
 * password. */
void amt_password_faults(unsigned faults, char *buf, size_t size);

/** Called once per credential record the site sets on AMT as a password: @p where is the
 * manifest's JSON pointer, @p name the record. Nonzero stops the walk. */
typedef int (*amt_password_use_cb)(void *ctx, const char *where, const char *name);

/**
 * Every password the site sets on AMT from its manifest: credentials.mebx_password when
 * mebx_password_policy lets provisioning set it (R-PROV-10 step 5), and the password of each
 * Digest account in amt.user_accounts (R-PROV-11 step 1). Not provisioning_accounts (what
 * a device has already, often a factory "admin"), nor 802.1X or PKCS#12 passwords (other
 * rules). @return the first nonzero @p cb result, or 0.
 */
int amt_password_uses(const struct manifest *m, amt_password_use_cb cb, void *ctx);

#endif /* AMTPROV_CORE_AMT_PASSWORD_H */
