/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ad.h - internals of the directory-ad plugin: the pure helpers (ad_util.c, unit-tested on
 * their own) and the LDAP connection (ad_ldap.c). Not part of the plugin ABI.
 */
#ifndef AMTPROV_DIRECTORY_AD_H
#define AMTPROV_DIRECTORY_AD_H

#include <stddef.h>
#include <stdint.h>

#include <amtprov/directory.h>

#define AD_NAME "directory-ad"

/* userAccountControl WORKSTATION_TRUST_ACCOUNT (MS-ADTS 2.2.16): a domain member computer. */
#define AD_UAC_WORKSTATION 0x1000u
/* msDS-SupportedEncryptionTypes bits (MS-KILE 2.2.7). */
#define AD_ENC_RC4 0x4u
#define AD_ENC_AES128 0x8u
#define AD_ENC_AES256 0x10u
/* Accounts amtprov made carry this description prefix, then the device FQDN: an account
 * without it is someone else's and is never changed or deleted. */
#define AD_MARK "amtprov AMT device "

/* ---- pure helpers (ad_util.c) ---- */

/** Binary objectSid -> "S-1-5-21-...". @return 0, or -1 when malformed or @p size too small. */
int ad_sid_to_string(const uint8_t *sid, size_t len, char *out, size_t size);

/**
 * The AES string-to-key salt AD uses for a computer account (MS-KILE 3.1.1.2): REALM, "host",
 * the account name lower-cased without its '$', ".", the domain's DNS name lower-cased.
 * @return 0, or -1 when @p size is too small.
 */
int ad_computer_salt(const char *realm, const char *sam, const char *dns_domain, char *out,
		     size_t size);

/** RFC 4514 escaping of one attribute value for a DN. @return 0, or -1 when too long. */
int ad_dn_escape(const char *in, char *out, size_t size);

/** RFC 4515 escaping of an assertion value for a search filter. @return 0 or -1. */
int ad_filter_escape(const char *in, char *out, size_t size);

/** "DC=contoso,DC=test" (any case, other RDNs before them ignored) -> "contoso.test". */
int ad_dn_to_dns(const char *dn, char *out, size_t size);

/** Name forms resolve_sid accepts. */
enum ad_name_form { AD_NAME_BARE, AD_NAME_NETBIOS, AD_NAME_UPN };

/**
 * Splits "DOMAIN\\name", "name@domain" or "name" into @p user and @p domain (empty for a
 * bare name). @return the form, or -1 for an empty or malformed name (empty parts, both
 * separators, more than one of either, control characters).
 */
int ad_parse_name(const char *name, char *user, size_t user_size, char *domain,
		  size_t domain_size);

/** The sAMAccountName for @p account_name: upper-cased, with exactly one trailing '$'. */
int ad_sam_name(const char *account_name, char *out, size_t size);

/**
 * A random password of @p len (16..120) characters with upper and lower case letters, digits
 * and punctuation (AD's complexity rule), from OpenSSL's DRBG. @return 0 or -1.
 */
int ad_random_password(char *out, size_t len);

/** unicodePwd's value for @p pw: the password in double quotes as UTF-16LE (ASCII only).
 * @p out holds 2 * (strlen(pw) + 2) bytes. @return the length, or -1 for non-ASCII. */
long ad_unicode_pwd(const char *pw, uint8_t *out, size_t size);

/** Case-insensitive DN comparison after removing blanks around ',' and '='. */
int ad_dn_equal(const char *a, const char *b);

/** The parent of @p dn (after its first unescaped ','), or "" for none. */
const char *ad_dn_parent(const char *dn);

#endif /* AMTPROV_DIRECTORY_AD_H */
