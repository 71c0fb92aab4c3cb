/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP Negotiate (RFC 4559) on a simulated device with Kerberos enabled, as AMT does it:
 * the service ticket is decrypted with the MasterKey amtprov wrote (AMT_KerberosSettingData,
 * one key for every SPN, tagged with KeyVersion), through an MIT krb5 GSSAPI acceptor over
 * an in-memory keytab; the client is then authorized by the SIDs in the ticket's PAC
 * (logon information: user and groups) against the device's ACL entries (KerberosUserSid).
 * Built only with MIT krb5's GSSAPI (AMTSIM_HAVE_GSSAPI); without it Negotiate is refused.
 */
#ifndef AMTSIM_NEGOTIATE_H
#define AMTSIM_NEGOTIATE_H

#include <stddef.h>

#include "device.h"

/** 1 if @p authorization is a Negotiate header and @p d has Kerberos enabled. */
int negotiate_applies(const struct device *d, const char *authorization);

/**
 * Accepts and authorizes the token of "Authorization: Negotiate <base64>". @return 0 with
 * the client principal in @p user (cut to @p usize) when the ticket decrypts with the
 * device's key and a SID of the PAC has an ACL entry; -1 with the reason in @p why.
 */
int negotiate_check(struct device *d, const char *authorization, char *user, size_t usize,
		    char *why, size_t wsz);

#endif
