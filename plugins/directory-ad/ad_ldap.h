/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ad_ldap.h - the directory-ad plugin's LDAP session over TLS (ad_ldap.c).
 */
#ifndef AMTPROV_DIRECTORY_AD_LDAP_H
#define AMTPROV_DIRECTORY_AD_LDAP_H

#include <ldap.h>

#include "ad.h"

struct ad_conn_opts {
	const char *url;     /* ldaps://HOST or ldap://HOST (StartTLS) */
	const char *ca_file; /* PEM: the CA(s) of the DC's certificate */
	const char *bind_dn; /* DN or user@domain of the site account */
	long timeout_s;
};

struct ad_session {
	LDAP *ld;
	const char *url;
};

/** Connects with verified TLS and binds; on failure the session is closed and @p err set. */
int ad_session_open(struct ad_session *s, const struct ad_conn_opts *o,
		    const struct amtprov_secret *password, struct amtprov_error *err);
void ad_session_close(struct ad_session *s);

/** The amtprov code for an LDAP result code. */
int ad_ldap_code(int lrc);

/** Sets @p err to "<fmt>: <LDAP error> (<server diagnostic>)" with @p code, or the mapped
 * code of @p lrc when @p code is 0. @return the code. */
int ad_ldap_fail(struct ad_session *s, int lrc, int code, const char *where,
		 struct amtprov_error *err, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/** Synchronous search; @p *res is the caller's (ldap_msgfree) on success. */
int ad_search(struct ad_session *s, const char *base, int scope, const char *filter,
	      const char *const *attrs, LDAPMessage **res, struct amtprov_error *err);

/** The first value of @p attr as a string; -1 (and "") when absent or too long. */
int ad_first_value(LDAP *ld, LDAPMessage *e, const char *attr, char *out, size_t size);

#endif /* AMTPROV_DIRECTORY_AD_LDAP_H */
