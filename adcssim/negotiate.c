/* SPDX-License-Identifier: Apache-2.0 */
/*
 * negotiate.c - see negotiate.h. One HTTP request carries one Negotiate token; Kerberos
 * through SPNEGO completes in that single step (a multi-leg exchange is refused, which no
 * Kerberos client needs). The acceptor takes any key of the keytab, so the SPN is whatever
 * principal the keytab holds (HTTP/<host>).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "negotiate.h"
#include "soap.h"

#ifdef ADCSSIM_HAVE_GSSAPI
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>

static int ready;

int negotiate_available(void)
{
	return ready;
}

int negotiate_init(const char *keytab, char *err, size_t errsz)
{
	if (krb5_gss_register_acceptor_identity(keytab) != GSS_S_COMPLETE) {
		snprintf(err, errsz, "keytab %s cannot be used", keytab);
		return -1;
	}
	ready = 1;
	return 0;
}

static void gss_message(OM_uint32 major, OM_uint32 minor, char *err, size_t errsz)
{
	OM_uint32 min2, ctx = 0;
	gss_buffer_desc m = GSS_C_EMPTY_BUFFER;

	gss_display_status(&min2, minor ? minor : major, minor ? GSS_C_MECH_CODE : GSS_C_GSS_CODE,
			   GSS_C_NO_OID, &ctx, &m);
	snprintf(err, errsz, "GSSAPI: %.*s", (int)m.length, m.value ? (char *)m.value : "error");
	gss_release_buffer(&min2, &m);
}

int negotiate_accept(const char *authorization, char *principal, size_t psz, char *reply_b64,
		     size_t rsz, char *err, size_t errsz)
{
	gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
	gss_buffer_desc in = GSS_C_EMPTY_BUFFER, out = GSS_C_EMPTY_BUFFER, name = GSS_C_EMPTY_BUFFER;
	gss_name_t client = GSS_C_NO_NAME;
	OM_uint32 major, minor;
	unsigned char *tok = NULL;
	size_t len;
	struct sb b = { 0 };
	int rc = -1;

	reply_b64[0] = '\0';
	if (!ready || strncasecmp(authorization, "Negotiate ", 10) ||
	    soap_b64_decode(authorization + 10, &tok, &len)) {
		snprintf(err, errsz, "no Negotiate token");
		return -1;
	}
	in.value = tok;
	in.length = len;
	major = gss_accept_sec_context(&minor, &ctx, GSS_C_NO_CREDENTIAL, &in,
				       GSS_C_NO_CHANNEL_BINDINGS, &client, NULL, &out, NULL, NULL,
				       NULL);
	if (major != GSS_S_COMPLETE) {
		if (major == GSS_S_CONTINUE_NEEDED)
			snprintf(err, errsz, "multi-leg Negotiate exchanges are not supported");
		else
			gss_message(major, minor, err, errsz);
		goto out;
	}
	major = gss_display_name(&minor, client, &name, NULL);
	if (major != GSS_S_COMPLETE || name.length >= psz) {
		snprintf(err, errsz, "client name unavailable");
		goto out;
	}
	memcpy(principal, name.value, name.length);
	principal[name.length] = '\0';
	if (out.length) {
		sb_b64(&b, out.value, out.length);
		if (b.oom || b.len >= rsz) {
			snprintf(err, errsz, "reply token too long");
			goto out;
		}
		memcpy(reply_b64, b.p, b.len + 1);
	}
	rc = 0;
out:
	sb_free(&b);
	gss_release_buffer(&minor, &out);
	gss_release_buffer(&minor, &name);
	gss_release_name(&minor, &client);
	if (ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
	free(tok);
	return rc;
}

#else /* !ADCSSIM_HAVE_GSSAPI */

int negotiate_available(void)
{
	return 0;
}

int negotiate_init(const char *keytab, char *err, size_t errsz)
{
	snprintf(err, errsz, "built without GSSAPI (libkrb5-dev): --keytab %s unusable", keytab);
	return -1;
}

int negotiate_accept(const char *authorization, char *principal, size_t psz, char *reply_b64,
		     size_t rsz, char *err, size_t errsz)
{
	snprintf(err, errsz, "built without GSSAPI");
	return -1;
}

#endif
