/* SPDX-License-Identifier: Apache-2.0 */
/* Kerberos (HTTP Negotiate) on a simulated device (negotiate.h). */
#include "negotiate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "pac.h"
#include "simutil.h"

int negotiate_applies(const struct device *d, const char *authorization)
{
	return d->kerberos.enabled && authorization && !strncasecmp(authorization, "Negotiate ", 10);
}

#ifdef AMTSIM_HAVE_GSSAPI
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5.h>

#define MAX_TOKEN 12000 /* AD tickets with many groups are large, but not larger */
#define MAX_SIDS 1024

/* The device's MasterKey as a keytab entry per SPN (principal SPN@realm). */
static int make_keytab(krb5_context kc, const struct device *d, krb5_keytab *kt, char *name,
		       size_t nsz, char *why, size_t wsz)
{
	static unsigned long serial; /* the event loop is the only caller */
	unsigned char *key = NULL;
	size_t key_len = 0;
	int rc = -1;

	snprintf(name, nsz, "MEMORY:amtsim-%p-%lu", (const void *)d, ++serial);
	if (krb5_kt_resolve(kc, name, kt)) {
		snprintf(why, wsz, "in-memory keytab unavailable");
		return -1;
	}
	if (sim_b64_decode(d->kerberos.master_key_b64, &key, &key_len) || key_len != 16) {
		snprintf(why, wsz, "the device holds no 128-bit MasterKey");
		goto out;
	}
	for (int i = 0; i < d->kerberos.n_spn; i++) {
		krb5_keytab_entry e;
		char pname[300];

		memset(&e, 0, sizeof(e));
		snprintf(pname, sizeof(pname), strchr(d->kerberos.spn[i], '@') ? "%s" : "%s@%s",
			 d->kerberos.spn[i], d->kerberos.realm);
		if (krb5_parse_name(kc, pname, &e.principal)) {
			snprintf(why, wsz, "SPN '%.100s' is not a principal name", d->kerberos.spn[i]);
			goto out;
		}
		e.vno = (krb5_kvno)d->kerberos.key_version;
		e.key.enctype = ENCTYPE_ARCFOUR_HMAC; /* EncryptionAlgorithm 0 */
		e.key.length = 16;
		e.key.contents = key;
		krb5_error_code kerr = krb5_kt_add_entry(kc, *kt, &e);

		krb5_free_principal(kc, e.principal);
		if (kerr) {
			snprintf(why, wsz, "keytab entry refused");
			goto out;
		}
	}
	rc = 0;
out:
	if (key)
		OPENSSL_clear_free(key, key_len);
	return rc;
}

/* 1 if one of @p sids has an enabled ACL entry on @p d reachable over the network. */
static int authorized(const struct device *d, char (*sids)[PAC_SID_STR], int n)
{
	for (int u = 0; u < d->n_users; u++) {
		const struct dev_user *e = &d->users[u];
		unsigned char *bin = NULL;
		size_t len = 0;
		char s[PAC_SID_STR];
		int ok;

		if (!e->enabled || !e->kerberos_sid[0] || e->access == 0)
			continue;
		if (sim_b64_decode(e->kerberos_sid, &bin, &len))
			continue;
		ok = pac_sid_string(bin, len, s, sizeof(s)) == 0;
		free(bin);
		for (int i = 0; ok && i < n; i++)
			if (!strcmp(s, sids[i]))
				return 1;
	}
	return 0;
}

int negotiate_check(struct device *d, const char *authorization, char *user, size_t usize,
		    char *why, size_t wsz)
{
	krb5_context kc = NULL;
	krb5_keytab kt = NULL;
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
	gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
	gss_name_t client = GSS_C_NO_NAME;
	gss_buffer_desc in = GSS_C_EMPTY_BUFFER, out = GSS_C_EMPTY_BUFFER, dn = GSS_C_EMPTY_BUFFER;
	gss_buffer_desc attr = {sizeof("urn:mspac:logon-info") - 1, (void *)"urn:mspac:logon-info"};
	gss_buffer_desc val = GSS_C_EMPTY_BUFFER, disp = GSS_C_EMPTY_BUFFER;
	char (*sids)[PAC_SID_STR] = NULL, ktname[64];
	gss_key_value_element_desc ckv;
	gss_key_value_set_desc store;
	OM_uint32 major, minor;
	unsigned char *tok = NULL;
	size_t len = 0;
	int authn = 0, complete = 0, more = -1, n, rc = -1;

	user[0] = '\0';
	if (!negotiate_applies(d, authorization) || strlen(authorization + 10) > MAX_TOKEN * 4 / 3 + 4 ||
	    sim_b64_decode(authorization + 10, &tok, &len) || !len) {
		snprintf(why, wsz, "malformed Negotiate token");
		goto out;
	}
	if (krb5_init_context(&kc)) {
		snprintf(why, wsz, "krb5 unavailable");
		goto out;
	}
	if (make_keytab(kc, d, &kt, ktname, sizeof(ktname), why, wsz))
		goto out;
	/* acceptor credentials for every mechanism (SPNEGO wraps Kerberos in the token) */
	ckv.key = "keytab";
	ckv.value = ktname;
	store.count = 1;
	store.elements = &ckv;
	major = gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, GSS_C_NO_OID_SET,
				      GSS_C_ACCEPT, &store, &cred, NULL, NULL);
	if (major != GSS_S_COMPLETE) {
		snprintf(why, wsz, "acceptor credentials from the MasterKey refused");
		goto out;
	}
	in.value = tok;
	in.length = len;
	major = gss_accept_sec_context(&minor, &ctx, cred, &in, GSS_C_NO_CHANNEL_BINDINGS, &client,
				       NULL, &out, NULL, NULL, NULL);
	if (major == GSS_S_CONTINUE_NEEDED) {
		snprintf(why, wsz, "multi-leg Negotiate is not supported");
		goto out;
	}
	if (major != GSS_S_COMPLETE) {
		OM_uint32 min2, mctx = 0;
		gss_buffer_desc m = GSS_C_EMPTY_BUFFER;

		gss_display_status(&min2, minor ? minor : major,
				   minor ? GSS_C_MECH_CODE : GSS_C_GSS_CODE, GSS_C_NO_OID, &mctx, &m);
		snprintf(why, wsz, "the ticket is refused with the device's key: %.*s",
			 (int)m.length, m.value ? (const char *)m.value : "GSSAPI error");
		gss_release_buffer(&min2, &m);
		goto out;
	}
	if (gss_display_name(&minor, client, &dn, NULL) == GSS_S_COMPLETE)
		snprintf(user, usize, "%.*s", (int)dn.length, (const char *)dn.value);
	major = gss_get_name_attribute(&minor, client, &attr, &authn, &complete, &val, &disp,
				       &more);
	if (major != GSS_S_COMPLETE || !val.length) {
		snprintf(why, wsz, "%s: the ticket carries no PAC logon information (no SIDs)",
			 user);
		goto out;
	}
	sids = calloc(MAX_SIDS, sizeof(*sids));
	n = sids ? pac_logon_sids(val.value, val.length, sids, MAX_SIDS) : -1;
	if (n < 0) {
		snprintf(why, wsz, "%s: malformed PAC logon information", user);
		goto out;
	}
	if (!authorized(d, sids, n)) {
		snprintf(why, wsz, "%s: no ACL entry for the user's %d SIDs (user %s)", user, n,
			 n ? sids[0] : "-");
		goto out;
	}
	rc = 0;
out:
	free(sids);
	gss_release_buffer(&minor, &val);
	gss_release_buffer(&minor, &disp);
	gss_release_buffer(&minor, &dn);
	gss_release_buffer(&minor, &out);
	gss_release_name(&minor, &client);
	if (ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
	gss_release_cred(&minor, &cred);
	if (kt)
		krb5_kt_close(kc, kt); /* a MEMORY keytab ends with its last handle */
	if (kc)
		krb5_free_context(kc);
	free(tok);
	return rc;
}

#else /* !AMTSIM_HAVE_GSSAPI */

int negotiate_check(struct device *d, const char *authorization, char *user, size_t usize,
		    char *why, size_t wsz)
{
	(void)d;
	(void)authorization;
	user[0] = '\0';
	(void)usize;
	snprintf(why, wsz, "amtsim was built without GSSAPI (libkrb5-dev)");
	return -1;
}

#endif
