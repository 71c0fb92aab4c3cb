/* SPDX-License-Identifier: Apache-2.0 */
/*
 * negotiate.h - HTTP Negotiate (SPNEGO/Kerberos, RFC 4559) for the "Kerberos" CEP and CES
 * endpoints [MS-WSTEP 3.1.1.1.1]: a GSSAPI acceptor with the keytab of the HTTP service
 * principal. Built only when MIT krb5's GSSAPI is found (ADCSSIM_HAVE_GSSAPI).
 */
#ifndef ADCSSIM_NEGOTIATE_H
#define ADCSSIM_NEGOTIATE_H

#include <stddef.h>

/* Uses this keytab for every later negotiate_accept; 0 on success. */
int negotiate_init(const char *keytab, char *err, size_t errsz);

/* Accepts the token of an "Authorization: Negotiate <base64>" header. Returns 0 and the
 * client principal ("user@REALM") and the base64 reply token ("" when none) when the
 * context is complete; -1 when the token is refused. */
int negotiate_accept(const char *authorization, char *principal, size_t psz, char *reply_b64,
		     size_t rsz, char *err, size_t errsz);

int negotiate_available(void);

#endif
