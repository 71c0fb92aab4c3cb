/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file flow_krb.h
 * @brief Kerberos for AMT (R-PROV-04, R-ACC-01): what the directory step keeps and what the
 *        second stage writes from it.
 *
 * NEED_DIRECTORY_ACCOUNT (worker thread): with the account the directory plugin made, its
 * Kerberos facts (account_keyinfo) and its password give the long-term keys the KDC holds
 * (krb_keys.h); the password is wiped, the keys go to the credential store, encrypted:
 *   device/<fqdn>/kerberos             JSON: realm, kvno, enctypes, salt, the AES keys (hex),
 *                                      "sids": {name: SID} for the manifest's Kerberos
 *                                      accounts given by name (resolve_sid)
 *   device/<fqdn>/kerberos-master-key  the 16-byte RC4-HMAC key AMT's MasterKey takes
 * NEED_SECOND_STAGE (loop thread): the ACL entries by SID and the Kerberos settings from
 * those records. Nothing here is logged.
 */
#ifndef AMTPROV_CORE_FLOW_KRB_H
#define AMTPROV_CORE_FLOW_KRB_H

#include <jansson.h>

#include <amtprov/error.h>

#include "manifest.h"
#include "plugin_host.h"

/** What the directory step needs from the manifest, copied for the worker thread. */
struct flow_krb_prep;

/**
 * NULL when there is nothing to do: Kerberos not enabled and no Kerberos account named by
 * a name (a SID needs no lookup). @p *err is set (and NULL returned) on out of memory.
 */
struct flow_krb_prep *flow_krb_prep_new(const struct manifest *m, struct plugin_instance *dir,
					struct plugin_instance *cs, const char *fqdn,
					struct amtprov_error *err);
void flow_krb_prep_free(struct flow_krb_prep *p);

/** Worker thread: derives and stores the keys from @p password (borrowed; may be NULL,
 * which fails when Kerberos is enabled), resolves the names to SIDs, writes the records. */
int flow_krb_store(struct flow_krb_prep *p, const struct amtprov_secret *password,
		   struct amtprov_error *err);

/** The record names for @p fqdn. */
void flow_krb_info_name(const char *fqdn, char *out, size_t size);
void flow_krb_key_name(const char *fqdn, char *out, size_t size);

/**
 * Loop thread: the device's stored Kerberos record (a new reference), or NULL with @p err
 * set (AMTPROV_E_NOT_FOUND when the directory step stored none).
 */
json_t *flow_krb_load(struct plugin_instance *cs, const char *fqdn, struct amtprov_error *err);

/** SET_KERBEROS params for @p fqdn from its record @p info (enabled), or NULL + @p err. */
json_t *flow_krb_settings(const json_t *info, const char *fqdn, struct amtprov_error *err);

/** The SID (S-1-...) of a manifest Kerberos account: @p name itself if it is one, else the
 * one resolved into @p info; NULL if neither. */
const char *flow_krb_sid(const json_t *info, const char *name);

/** 1 if @p s is a SID in string form that fits AMT's ACL entries (at most 5 sub-authorities,
 * 28 bytes in binary form). */
int flow_krb_is_sid(const char *s);

#endif /* AMTPROV_CORE_FLOW_KRB_H */
