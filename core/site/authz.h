/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file authz.h
 * @brief Who may register what (docs/api.md "Who may do what", docs/design.md "Threat
 *        model"): the per-host enrollment secrets of the registration API, the site's name
 *        policy (which FQDNs may be registered and certified at all) and the address
 *        allow-list.
 *
 * An enrollment secret is minted by an administrator for one host (`amtprov enroll-secret`)
 * and is the only credential that host holds. It names the FQDN (and optionally the UUID)
 * it is for and carries HMAC-SHA256 under a site registration key, which lives in the
 * credential store only:
 *
 *     amtprov-e1_<fqdn>_<uuid or empty>_<64 hex digits>
 *     MAC = HMAC-SHA256(key, "amtprov enrollment secret v1" NUL fqdn NUL uuid)
 *
 * '_' is in neither an LDH name nor a UUID, so the parts split unambiguously; the FQDN and
 * the UUID are lower case in the message, whatever the spelling presented. Nothing per host
 * is stored: the server recomputes the MAC.
 */
#ifndef AMTPROV_CORE_AUTHZ_H
#define AMTPROV_CORE_AUTHZ_H

#include <stddef.h>

#include "manifest.h"
#include "store.h"
#include <amtprov/types.h>

#define AUTHZ_SECRET_PREFIX "amtprov-e1_"
/** The longest secret: prefix, FQDN, UUID, two separators, MAC. */
#define AUTHZ_SECRET_SIZE (sizeof(AUTHZ_SECRET_PREFIX) + STORE_FQDN_SIZE + 40 + 2 + 64 + 1)
/** The shortest registration key accepted: a key shorter than the MAC weakens it. */
#define AUTHZ_KEY_MIN 32

/** The host an enrollment secret is for. */
struct authz_host {
	char fqdn[STORE_FQDN_SIZE]; /**< lower case */
	char uuid[40];              /**< lower case; "" when the secret binds no UUID */
};

/**
 * Mints the secret for @p fqdn (and @p uuid, or NULL) under @p key into @p out.
 * Both must be valid (device_input_*_valid); they are lower-cased.
 * @return AMTPROV_OK; AMTPROV_E_INVALID for a bad name, UUID or too short a key.
 */
int authz_secret_mint(const struct amtprov_secret *key, const char *fqdn, const char *uuid,
		      char *out, size_t size, struct amtprov_error *err);

/**
 * Checks a presented bearer credential of @p len bytes against every key of @p keys (all
 * compared, in constant time per key). 1 and @p host filled when it verifies; 0 with the
 * reason in @p why (a static string) when it does not.
 */
int authz_secret_verify(struct amtprov_secret *const *keys, size_t n_keys, const char *token,
			size_t len, struct authz_host *host, const char **why);

/** 1 when @p token looks like an enrollment secret (its prefix), whatever else it holds. */
int authz_secret_like(const char *token, size_t len);

/**
 * The site's name policy (R-PC-05, site.fqdn_patterns): 1 when @p fqdn is not the service
 * point's own name, matches one of the patterns when there are any and, with
 * @p below_suffix, is a name below dns_suffix. 0 with why in @p why otherwise.
 * Registration leaves @p below_suffix 0, so that the device check can still explain a
 * namespace mismatch (R-PC-05, status 8112); minting a secret and every CA request set it.
 */
int authz_name_allowed(const struct manifest *m, const char *fqdn, int below_suffix,
		       char *why, size_t size);

/** Glob match of a lower-case @p pattern on @p name (compared case-insensitively): '*' is
 * any run and '?' any one character, neither ever a '.'. */
int authz_glob_match(const char *pattern, const char *name);

/** Parses "A.B.C.D[/N]" or "V6[/N]"; the host bits must be zero. 0 or -1 (@p why set). */
int authz_cidr_parse(const char *s, struct manifest_cidr *out, const char **why);

/** 1 when the IP literal @p ip is in one of @p list. */
int authz_cidr_contains(const struct manifest_cidr *list, size_t n, const char *ip);

#endif /* AMTPROV_CORE_AUTHZ_H */
