/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file krb_keys.h
 * @brief Kerberos long-term keys from an account password, the way Active Directory's KDC
 *        derives them (R-ACC-01): what amtprov gives AMT so it can decrypt service tickets.
 *
 * RC4-HMAC (enctype 23, RFC 4757): MD4 of the password in UTF-16LE (the NT hash).
 * AES128/AES256-CTS-HMAC-SHA1-96 (enctypes 17/18, RFC 3962 section 4): PBKDF2-HMAC-SHA1 of the
 * UTF-8 password with the account's salt, then DK(tkey, "kerberos") (RFC 3961 section 5.1).
 */
#ifndef AMTPROV_CORE_KRB_KEYS_H
#define AMTPROV_CORE_KRB_KEYS_H

#include <stddef.h>

#define KRB_ENCTYPE_AES128 17
#define KRB_ENCTYPE_AES256 18
#define KRB_ENCTYPE_RC4_HMAC 23

/** RFC 3962's default iteration count, the one AD uses. */
#define KRB_AES_ITERATIONS 4096

/**
 * RC4-HMAC key of a UTF-8 password.
 * @return 0, or -1 when the password is not valid UTF-8 or MD4 is unavailable
 */
int krb_key_rc4(const char *password, size_t len, unsigned char key[16]);

/**
 * AES string-to-key (RFC 3962).
 * @param key_len 16 (AES128) or 32 (AES256)
 * @return 0, or -1 on a bad argument or a crypto failure
 */
int krb_key_aes(const char *password, size_t len, const char *salt, unsigned iterations,
		unsigned char *key, size_t key_len);

#endif /* AMTPROV_CORE_KRB_KEYS_H */
