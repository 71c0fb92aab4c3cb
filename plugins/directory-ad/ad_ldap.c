/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ad_ldap.c - the directory-ad plugin's LDAP session: one connection per call, TLS always
 * (ldaps://, or ldap:// with StartTLS that must succeed), the DC's certificate verified
 * against the configured CA file, then a simple bind. A password never travels in clear:
 * the bind happens only once TLS is in place. LDAP result codes become amtprov codes here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "ad_ldap.h"

/* The diagnostic text the server (or libldap) left on the session, or "". */
static const char *diag(LDAP *ld, char *buf, size_t size)
{
	char *msg = NULL;

	buf[0] = '\0';
	if (ld && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) == LDAP_OPT_SUCCESS &&
	    msg) {
		if (*msg)
			snprintf(buf, size, " (%s)", msg);
		ldap_memfree(msg);
	}
	return buf;
}

int ad_ldap_code(int lrc)
{
	switch (lrc) {
	case LDAP_SUCCESS: return AMTPROV_OK;
	case LDAP_SERVER_DOWN:
	case LDAP_CONNECT_ERROR:
	case LDAP_TIMEOUT:
	case LDAP_TIMELIMIT_EXCEEDED:
	case LDAP_UNAVAILABLE:
	case LDAP_BUSY: return AMTPROV_E_UNREACHABLE;
	case LDAP_INVALID_CREDENTIALS:
	case LDAP_STRONG_AUTH_REQUIRED:
	case LDAP_CONFIDENTIALITY_REQUIRED:
	case LDAP_INAPPROPRIATE_AUTH: return AMTPROV_E_AUTH;
	case LDAP_INSUFFICIENT_ACCESS:
	case LDAP_UNWILLING_TO_PERFORM: return AMTPROV_E_DENIED;
	case LDAP_NO_SUCH_OBJECT: return AMTPROV_E_NOT_FOUND;
	case LDAP_ALREADY_EXISTS:
	case LDAP_TYPE_OR_VALUE_EXISTS:
	case LDAP_CONSTRAINT_VIOLATION: return AMTPROV_E_EXISTS;
	case LDAP_NO_MEMORY: return AMTPROV_E_NOMEM;
	default: return AMTPROV_E_PROTOCOL;
	}
}

int ad_ldap_fail(struct ad_session *s, int lrc, int code, const char *where,
		 struct amtprov_error *err, const char *fmt, ...)
{
	char what[AMTPROV_ERROR_MSG_SIZE], d[AMTPROV_ERROR_MSG_SIZE / 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return amtprov_error_set(err, code ? code : ad_ldap_code(lrc), where, "%s: %s%s", what,
				 ldap_err2string(lrc), diag(s ? s->ld : NULL, d, sizeof(d)));
}

static int set_opts(LDAP *ld, const struct ad_conn_opts *o)
{
	struct timeval tv = {.tv_sec = o->timeout_s, .tv_usec = 0};
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND;
	int min = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, zero = 0;

	/* Per-session TLS context (NEWCTX last): other users of libldap in the process keep
	 * theirs. */
	return ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != LDAP_OPT_SUCCESS ||
	       ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
	       ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
	       ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
	       ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, o->ca_file) != LDAP_OPT_SUCCESS ||
	       /* ca_file is the only trust anchor, whatever ldap.conf says. */
	       ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTDIR, NULL) != LDAP_OPT_SUCCESS ||
	       ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS ||
	       ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min) != LDAP_OPT_SUCCESS ||
	       ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != LDAP_OPT_SUCCESS;
}

int ad_session_open(struct ad_session *s, const struct ad_conn_opts *o,
		    const struct amtprov_secret *password, struct amtprov_error *err)
{
	struct berval cred;
	int lrc, starttls = strncasecmp(o->url, "ldap://", 7) == 0;

	memset(s, 0, sizeof(*s));
	s->url = o->url;
	if (!starttls && strncasecmp(o->url, "ldaps://", 8) != 0)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/url",
					 "'%s' is neither ldaps:// nor ldap:// (with StartTLS)",
					 o->url);
	lrc = ldap_initialize(&s->ld, o->url);
	if (lrc != LDAP_SUCCESS)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/url", "'%s': %s", o->url,
					 ldap_err2string(lrc));
	if (set_opts(s->ld, o)) {
		ad_session_close(s);
		return amtprov_error_set(err, AMTPROV_E_INTERNAL, AD_NAME,
					 "cannot set the LDAP TLS options for %s (ca_file '%s')",
					 o->url, o->ca_file);
	}
	if (starttls) {
		lrc = ldap_start_tls_s(s->ld, NULL, NULL);
		if (lrc != LDAP_SUCCESS) {
			int rc = ad_ldap_fail(s, lrc, AMTPROV_E_UNREACHABLE, o->url, err,
					      "StartTLS with %s failed (the password is never "
					      "sent without TLS; is ca_file '%s' the CA of the "
					      "DC's certificate, and does the URL's host name "
					      "match it?)",
					      o->url, o->ca_file);
			ad_session_close(s);
			return rc;
		}
	} else {
		lrc = ldap_connect(s->ld);
		if (lrc != LDAP_SUCCESS) {
			int rc = ad_ldap_fail(s, lrc, AMTPROV_E_UNREACHABLE, o->url, err,
					      "cannot open a verified TLS connection to %s (is ca_file "
				     "'%s' the CA of the DC's certificate, and does the URL's "
				     "host name match it?)",
				     o->url, o->ca_file);
			ad_session_close(s);
			return rc;
		}
	}
	/* Belt and braces: never bind unless TLS is really in place. */
	if (!ldap_tls_inplace(s->ld)) {
		ad_session_close(s);
		return amtprov_error_set(err, AMTPROV_E_UNREACHABLE, o->url,
					 "no TLS on the connection to %s: refusing to send the "
					 "bind password", o->url);
	}
	cred.bv_val = password->data;
	cred.bv_len = password->len;
	lrc = ldap_sasl_bind_s(s->ld, o->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	if (lrc != LDAP_SUCCESS) {
		int rc = ad_ldap_fail(s, lrc, 0, o->url, err, "bind as '%s' to %s", o->bind_dn,
				      o->url);

		ad_session_close(s);
		return rc;
	}
	return AMTPROV_OK;
}

void ad_session_close(struct ad_session *s)
{
	if (s->ld)
		ldap_unbind_ext_s(s->ld, NULL, NULL);
	s->ld = NULL;
}

int ad_search(struct ad_session *s, const char *base, int scope, const char *filter,
	      const char *const *attrs, LDAPMessage **res, struct amtprov_error *err)
{
	int lrc = ldap_search_ext_s(s->ld, base, scope, filter, (char **)attrs, 0, NULL, NULL,
				    NULL, 0, res);

	if (lrc != LDAP_SUCCESS) {
		if (*res) {
			ldap_msgfree(*res);
			*res = NULL;
		}
		return ad_ldap_fail(s, lrc, 0, base, err, "search %s under '%s' on %s", filter, base,
				    s->url);
	}
	return AMTPROV_OK;
}

int ad_first_value(LDAP *ld, LDAPMessage *e, const char *attr, char *out, size_t size)
{
	struct berval **v = ldap_get_values_len(ld, e, attr);
	int ok = v && v[0] && v[0]->bv_len < size;

	if (ok) {
		memcpy(out, v[0]->bv_val, v[0]->bv_len);
		out[v[0]->bv_len] = '\0';
	} else if (size) {
		out[0] = '\0';
	}
	ldap_value_free_len(v);
	return ok ? 0 : -1;
}
