/* SPDX-License-Identifier: Apache-2.0 */
/*
 * directory_ad.c - the directory-ad plugin (R-PROV-04): an Active Directory computer account
 * for each AMT device, with its SPNs, encryption types and a random password set over TLS;
 * read back for Kerberos (key version, realm, salt); names resolved to SIDs for AMT's ACL
 * (R-ACC-01). OpenLDAP's libldap; see ad_ldap.c for the session and docs/directory-ad.md.
 *
 * Every call finds before it writes, so a retry (after a crash too) updates the account it
 * made instead of making a second one. An account amtprov did not make (its description is
 * not AD_MARK + the FQDN) is never changed or deleted. Not thread-safe (the domain facts are
 * cached in the instance): the core serializes calls per instance.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ad_ldap.h"

struct ad_cfg {
	char *url;
	char *ca_file;
	char *bind_dn;
	char *bind_password; /* credential record name */
	char *base_dn;
	char *container;
	long long encryption_types;
	long long password_length;
	long long timeout_seconds;
};

#define F(name, type, req, dflt, lo, hi, help) \
	{#name, type, offsetof(struct ad_cfg, name), req, dflt, lo, hi, help}
static const struct amtprov_config_field ad_table[] = {
	F(url, AMTPROV_CFG_STRING, 1, NULL, 0, 0,
	  "ldaps://DC (or ldap://DC, then StartTLS is required); the host name must match the "
	  "DC's certificate"),
	F(ca_file, AMTPROV_CFG_STRING, 1, NULL, 0, 0,
	  "PEM file with the CA(s) the DC's LDAP certificate chains to"),
	F(bind_dn, AMTPROV_CFG_STRING, 1, NULL, 0, 0,
	  "the site account: a DN or user@domain, with the rights of docs/directory-ad.md"),
	F(bind_password, AMTPROV_CFG_CREDENTIAL, 1, NULL, 0, 0,
	  "credential record with the site account's password"),
	F(base_dn, AMTPROV_CFG_STRING, 0, "", 0, 0,
	  "the domain's DN, e.g. DC=contoso,DC=com; default: the DC's defaultNamingContext"),
	F(container, AMTPROV_CFG_STRING, 0, "", 0, 0,
	  "container for device accounts when the manifest's amt.directory_container is not "
	  "set; default CN=Computers,<base_dn>"),
	F(encryption_types, AMTPROV_CFG_INT, 0, "28", 4, 28,
	  "msDS-SupportedEncryptionTypes: sum of 4 (RC4-HMAC), 8 (AES128), 16 (AES256); "
	  "4 with amt.kerberos (AMT holds the RC4-HMAC key only)"),
	F(password_length, AMTPROV_CFG_INT, 0, "32", 16, 120,
	  "length of the random account password"),
	F(timeout_seconds, AMTPROV_CFG_INT, 0, "30", 1, 600,
	  "network timeout per LDAP operation"),
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};
#undef F

struct dir_ad {
	const struct amtprov_host *host;
	struct ad_cfg cfg;
	/* Domain facts, read once from the DC's root DSE (or the configuration). */
	char base[512];
	char dns[256];
	char netbios[64];
};

#define DN_MAX 1024
#define FILTER_MAX 1536

static int is_set(const char *s)
{
	return s && *s;
}

static void ad_destroy(void *instance)
{
	struct dir_ad *ad = instance;

	if (!ad)
		return;
	ad->host->config_free(ad->host, ad_table, &ad->cfg);
	free(ad);
}

static int validate(struct dir_ad *ad, struct amtprov_error *err)
{
	struct ad_cfg *c = &ad->cfg;

	if (strncasecmp(c->url, "ldaps://", 8) != 0 && strncasecmp(c->url, "ldap://", 7) != 0)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/url",
					 "must be ldaps://HOST or ldap://HOST (StartTLS), not '%s': "
					 "the password must travel encrypted", c->url);
	if (strpbrk(c->url, " \t\r\n"))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/url", "one URL, no blanks");
	if (access(c->ca_file, R_OK) != 0)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/ca_file",
					 "cannot read '%s'", c->ca_file);
	if (!is_set(c->bind_dn))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/bind_dn", "must not be empty");
	if (c->encryption_types & ~(long long)(AD_ENC_RC4 | AD_ENC_AES128 | AD_ENC_AES256))
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/encryption_types",
					 "only 4 (RC4-HMAC), 8 (AES128) and 16 (AES256) may be "
					 "combined, not %lld", c->encryption_types);
	if (is_set(c->base_dn)) {
		if (ad_dn_to_dns(c->base_dn, ad->dns, sizeof(ad->dns)) < 0)
			return amtprov_error_set(err, AMTPROV_E_CONFIG, "/base_dn",
						 "'%s' has no DC= components", c->base_dn);
		snprintf(ad->base, sizeof(ad->base), "%s", c->base_dn);
	}
	return AMTPROV_OK;
}

static int ad_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
	struct dir_ad *ad = calloc(1, sizeof(*ad));
	int rc;

	if (!ad)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	ad->host = host;
	rc = host->config_parse(host, config, ad_table, &ad->cfg, err);
	if (rc == AMTPROV_OK)
		rc = validate(ad, err);
	if (rc != AMTPROV_OK) {
		ad_destroy(ad);
		return rc;
	}
	*instance = ad;
	return AMTPROV_OK;
}

/* ---- session and domain facts ---- */

/* The domain DN, its DNS name and NetBIOS name, from the root DSE and the crossRef. */
static int domain_facts(struct dir_ad *ad, struct ad_session *s, struct amtprov_error *err)
{
	static const char *const root_attrs[] = {"defaultNamingContext",
						 "configurationNamingContext", NULL};
	static const char *const nb_attrs[] = {"nETBIOSName", NULL};
	char conf[512], part[600], filter[FILTER_MAX], esc[1024];
	LDAPMessage *res = NULL, *e;
	int rc;

	if (ad->netbios[0])
		return AMTPROV_OK;
	rc = ad_search(s, "", LDAP_SCOPE_BASE, "(objectClass=*)", root_attrs, &res, err);
	if (rc != AMTPROV_OK)
		return rc;
	e = ldap_first_entry(s->ld, res);
	if (!ad->base[0] &&
	    (!e || ad_first_value(s->ld, e, "defaultNamingContext", ad->base, sizeof(ad->base)) ||
	     ad_dn_to_dns(ad->base, ad->dns, sizeof(ad->dns)) < 0)) {
		ldap_msgfree(res);
		ad->base[0] = '\0';
		return amtprov_error_set(err, AMTPROV_E_PROTOCOL, s->url,
					 "%s names no defaultNamingContext with DC= components: "
					 "is it an Active Directory DC? (set base_dn)", s->url);
	}
	if (!e || ad_first_value(s->ld, e, "configurationNamingContext", conf, sizeof(conf))) {
		ldap_msgfree(res);
		return amtprov_error_set(err, AMTPROV_E_PROTOCOL, s->url,
					 "%s names no configurationNamingContext: is it an Active "
					 "Directory DC?", s->url);
	}
	ldap_msgfree(res);
	res = NULL;
	snprintf(part, sizeof(part), "CN=Partitions,%s", conf);
	if (ad_filter_escape(ad->base, esc, sizeof(esc)) < 0)
		return amtprov_error_set(err, AMTPROV_E_INVALID, "/base_dn", "too long");
	snprintf(filter, sizeof(filter), "(&(objectClass=crossRef)(nCName=%s))", esc);
	rc = ad_search(s, part, LDAP_SCOPE_ONELEVEL, filter, nb_attrs, &res, err);
	if (rc != AMTPROV_OK)
		return rc;
	e = ldap_first_entry(s->ld, res);
	if (!e || ad_first_value(s->ld, e, "nETBIOSName", ad->netbios, sizeof(ad->netbios))) {
		ldap_msgfree(res);
		return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, ad->base,
					 "no crossRef with a nETBIOSName for '%s' under '%s'",
					 ad->base, part);
	}
	ldap_msgfree(res);
	return AMTPROV_OK;
}

static int session_begin(struct dir_ad *ad, struct ad_session *s, struct amtprov_error *err)
{
	struct ad_conn_opts o = {
		.url = ad->cfg.url,
		.ca_file = ad->cfg.ca_file,
		.bind_dn = ad->cfg.bind_dn,
		.timeout_s = (long)ad->cfg.timeout_seconds,
	};
	struct amtprov_secret *pw = NULL;
	struct amtprov_error e;
	int rc;

	amtprov_error_clear(&e);
	rc = ad->host->secret_get(ad->host, ad->cfg.bind_password, &pw, &e);
	if (rc != AMTPROV_OK)
		return amtprov_error_set(err, rc == AMTPROV_E_NOT_SUPPORTED ? AMTPROV_E_CONFIG : rc,
					 "/bind_password", "credential '%s' (bind_password): %s",
					 ad->cfg.bind_password, e.msg);
	rc = ad_session_open(s, &o, pw, err);
	ad->host->secret_free(ad->host, pw);
	if (rc != AMTPROV_OK)
		return rc;
	rc = domain_facts(ad, s, err);
	if (rc != AMTPROV_OK)
		ad_session_close(s);
	return rc;
}

/* ---- finding a device's account ---- */

struct found {
	int n;
	char dn[DN_MAX];
	char other[DN_MAX];   /* a second match, when n > 1 */
	char sam[64];
	char dns_host[256];
	char desc[512];
};

static int is_ours(const struct found *f, const char *fqdn)
{
	size_t m = strlen(AD_MARK);

	return strncmp(f->desc, AD_MARK, m) == 0 && strcasecmp(f->desc + m, fqdn) == 0;
}

/* Objects whose sAMAccountName is @p sam (when given) or whose dNSHostName is @p fqdn. */
static int find_account(struct dir_ad *ad, struct ad_session *s, const char *sam,
			const char *fqdn, struct found *f, struct amtprov_error *err)
{
	static const char *const attrs[] = {"sAMAccountName", "dNSHostName", "description", NULL};
	char es[128], ef[600], filter[FILTER_MAX];
	LDAPMessage *res = NULL;
	int rc;

	memset(f, 0, sizeof(*f));
	if (ad_filter_escape(fqdn, ef, sizeof(ef)) < 0 ||
	    (sam && ad_filter_escape(sam, es, sizeof(es)) < 0))
		return amtprov_error_set(err, AMTPROV_E_INVALID, fqdn, "name too long");
	if (sam)
		snprintf(filter, sizeof(filter), "(|(sAMAccountName=%s)(dNSHostName=%s))", es, ef);
	else
		snprintf(filter, sizeof(filter), "(&(objectClass=computer)(dNSHostName=%s))", ef);
	rc = ad_search(s, ad->base, LDAP_SCOPE_SUBTREE, filter, attrs, &res, err);
	if (rc != AMTPROV_OK)
		return rc;
	for (LDAPMessage *e = ldap_first_entry(s->ld, res); e; e = ldap_next_entry(s->ld, e)) {
		char *dn = ldap_get_dn(s->ld, e);

		if (f->n == 0) {
			snprintf(f->dn, sizeof(f->dn), "%s", dn ? dn : "");
			ad_first_value(s->ld, e, "sAMAccountName", f->sam, sizeof(f->sam));
			ad_first_value(s->ld, e, "dNSHostName", f->dns_host, sizeof(f->dns_host));
			ad_first_value(s->ld, e, "description", f->desc, sizeof(f->desc));
		} else if (f->n == 1) {
			snprintf(f->other, sizeof(f->other), "%s", dn ? dn : "");
		}
		f->n++;
		ldap_memfree(dn);
	}
	ldap_msgfree(res);
	return AMTPROV_OK;
}

/* AMTPROV_E_EXISTS when an SPN is held by an object other than @p own_dn ("" for none). */
static int check_spns(struct dir_ad *ad, struct ad_session *s, const char *fqdn,
		      const char *const *spns, const char *own_dn, struct amtprov_error *err)
{
	static const char *const attrs[] = {"1.1", NULL};
	char esc[600], filter[FILTER_MAX];

	for (const char *const *p = spns; p && *p; p++) {
		LDAPMessage *res = NULL, *e;
		int rc;

		if (ad_filter_escape(*p, esc, sizeof(esc)) < 0)
			return amtprov_error_set(err, AMTPROV_E_INVALID, fqdn, "SPN too long");
		snprintf(filter, sizeof(filter), "(servicePrincipalName=%s)", esc);
		rc = ad_search(s, ad->base, LDAP_SCOPE_SUBTREE, filter, attrs, &res, err);
		if (rc != AMTPROV_OK)
			return rc;
		for (e = ldap_first_entry(s->ld, res); e; e = ldap_next_entry(s->ld, e)) {
			char *dn = ldap_get_dn(s->ld, e);

			if (dn && !ad_dn_equal(dn, own_dn)) {
				rc = amtprov_error_set(err, AMTPROV_E_EXISTS, fqdn,
						       "device %s: SPN %s is already held by %s; "
						       "remove it there first (setspn -D / "
						       "samba-tool spn delete)",
						       fqdn, *p, dn);
				ldap_memfree(dn);
				ldap_msgfree(res);
				return rc;
			}
			ldap_memfree(dn);
		}
		ldap_msgfree(res);
	}
	return AMTPROV_OK;
}

/* ---- create_account ---- */

struct mods {
	LDAPMod m[10];
	LDAPMod *list[11];
	int n;
	char *vals[10][3];
	struct berval pwd_bv;
	struct berval *pwd_bvs[2];
};

static void mod_str(struct mods *ms, int op, const char *attr, const char *v)
{
	ms->vals[ms->n][0] = (char *)v;
	ms->vals[ms->n][1] = NULL;
	ms->m[ms->n] = (LDAPMod){.mod_op = op, .mod_type = (char *)attr,
				 .mod_values = ms->vals[ms->n]};
	ms->list[ms->n] = &ms->m[ms->n];
	ms->n++;
	ms->list[ms->n] = NULL;
}

static void mod_strs(struct mods *ms, int op, const char *attr, const char *const *v)
{
	ms->m[ms->n] = (LDAPMod){.mod_op = op, .mod_type = (char *)attr,
				 .mod_values = (char **)v};
	ms->list[ms->n] = &ms->m[ms->n];
	ms->n++;
	ms->list[ms->n] = NULL;
}

static void mod_pwd(struct mods *ms, int op, uint8_t *val, size_t len)
{
	ms->pwd_bv.bv_val = (char *)val;
	ms->pwd_bv.bv_len = len;
	ms->pwd_bvs[0] = &ms->pwd_bv;
	ms->pwd_bvs[1] = NULL;
	ms->m[ms->n] = (LDAPMod){.mod_op = op | LDAP_MOD_BVALUES, .mod_type = "unicodePwd",
				 .mod_bvalues = ms->pwd_bvs};
	ms->list[ms->n] = &ms->m[ms->n];
	ms->n++;
	ms->list[ms->n] = NULL;
}

/* The error of a failed add or modify of @p dn, in words an AD administrator acts on. */
static int write_failed(struct dir_ad *ad, struct ad_session *s, int lrc, const char *fqdn,
			const char *dn, const char *container, int adding,
			struct amtprov_error *err)
{
	switch (lrc) {
	case LDAP_NO_SUCH_OBJECT:
		return ad_ldap_fail(s, lrc, AMTPROV_E_CONFIG, fqdn, err,
				    "device %s: the container '%s' does not exist in %s (create "
				    "the OU or fix amt.directory_container)",
				    fqdn, container, ad->cfg.url);
	case LDAP_INSUFFICIENT_ACCESS:
		if (adding)
			return ad_ldap_fail(s, lrc, AMTPROV_E_DENIED, fqdn, err,
					    "device %s: '%s' may not create computer objects in "
					    "'%s' (grant it the rights of docs/directory-ad.md "
					    "there)", fqdn, ad->cfg.bind_dn, container);
		return ad_ldap_fail(s, lrc, AMTPROV_E_DENIED, fqdn, err,
				    "device %s: '%s' may not change '%s' (grant it the rights "
				    "of docs/directory-ad.md on '%s')",
				    fqdn, ad->cfg.bind_dn, dn, container);
	case LDAP_CONSTRAINT_VIOLATION:
	case LDAP_ALREADY_EXISTS:
		return ad_ldap_fail(s, lrc, AMTPROV_E_EXISTS, fqdn, err,
				    "device %s: %s '%s' refused (an SPN or name is already "
				    "held by another object, or the password policy refused "
				    "the password)",
				    fqdn, adding ? "adding" : "changing", dn);
	default:
		return ad_ldap_fail(s, lrc, 0, fqdn, err, "device %s: %s '%s'", fqdn,
				    adding ? "adding" : "changing", dn);
	}
}

struct new_pw {
	char text[128];
	uint8_t uni[2 * (128 + 2)];
	long uni_len;
};

static int make_password(struct dir_ad *ad, struct new_pw *pw, const char *fqdn,
			 struct amtprov_error *err)
{
	if (ad_random_password(pw->text, (size_t)ad->cfg.password_length) < 0)
		return amtprov_error_set(err, AMTPROV_E_CRYPTO, fqdn,
					 "no random bytes for the account password");
	pw->uni_len = ad_unicode_pwd(pw->text, pw->uni, sizeof(pw->uni));
	if (pw->uni_len < 0)
		return amtprov_error_set(err, AMTPROV_E_INTERNAL, fqdn, "password encoding");
	return AMTPROV_OK;
}

static int add_account(struct dir_ad *ad, struct ad_session *s, const char *dn,
		       const char *container, const char *sam, const char *fqdn,
		       const char *const *spns, const char *enc, const char *desc,
		       struct new_pw *pw, struct amtprov_error *err)
{
	static const char *const classes[] = {"top", "person", "organizationalPerson", "user",
					      "computer", NULL};
	char uac[16];
	struct mods ms = {.n = 0};
	int lrc;

	snprintf(uac, sizeof(uac), "%u", AD_UAC_WORKSTATION);
	mod_strs(&ms, LDAP_MOD_ADD, "objectClass", classes);
	mod_str(&ms, LDAP_MOD_ADD, "sAMAccountName", sam);
	mod_str(&ms, LDAP_MOD_ADD, "userAccountControl", uac);
	mod_str(&ms, LDAP_MOD_ADD, "dNSHostName", fqdn);
	if (spns && spns[0])
		mod_strs(&ms, LDAP_MOD_ADD, "servicePrincipalName", spns);
	mod_str(&ms, LDAP_MOD_ADD, "msDS-SupportedEncryptionTypes", enc);
	mod_str(&ms, LDAP_MOD_ADD, "description", desc);
	mod_pwd(&ms, LDAP_MOD_ADD, pw->uni, (size_t)pw->uni_len);
	lrc = ldap_add_ext_s(s->ld, dn, ms.list, NULL, NULL);
	if (lrc != LDAP_SUCCESS)
		return write_failed(ad, s, lrc, fqdn, dn, container, 1, err);
	ad->host->log(ad->host, AMTPROV_LOG_INFO, "created %s (%s) for %s", dn, sam, fqdn);
	return AMTPROV_OK;
}

/* Our account exists: move it to @p container if elsewhere, then set every attribute we own
 * (the same values again are harmless) and a new password. */
static int update_account(struct dir_ad *ad, struct ad_session *s, struct found *f,
			  const char *container, const char *sam, const char *fqdn,
			  const char *const *spns, const char *enc, struct new_pw *pw,
			  struct amtprov_error *err)
{
	char uac[16], rdn[170], cn[64];
	struct mods ms = {.n = 0};
	int lrc;

	if (!ad_dn_equal(ad_dn_parent(f->dn), container)) {
		char moved[DN_MAX], ecn[160];

		snprintf(cn, sizeof(cn), "%.*s", (int)strlen(f->sam) - 1, f->sam);
		if (ad_dn_escape(cn, ecn, sizeof(ecn)) < 0 ||
		    snprintf(rdn, sizeof(rdn), "CN=%s", ecn) >= (int)sizeof(rdn) ||
		    snprintf(moved, sizeof(moved), "%s,%s", rdn, container) >= (int)sizeof(moved))
			return amtprov_error_set(err, AMTPROV_E_INVALID, fqdn, "DN too long");
		lrc = ldap_rename_s(s->ld, f->dn, rdn, container, 1, NULL, NULL);
		if (lrc != LDAP_SUCCESS)
			return write_failed(ad, s, lrc, fqdn, f->dn, container, 0, err);
		ad->host->log(ad->host, AMTPROV_LOG_INFO, "moved %s to %s", f->dn, moved);
		memcpy(f->dn, moved, sizeof(f->dn));
	}
	snprintf(uac, sizeof(uac), "%u", AD_UAC_WORKSTATION);
	if (strcasecmp(f->sam, sam) != 0)
		mod_str(&ms, LDAP_MOD_REPLACE, "sAMAccountName", sam);
	mod_str(&ms, LDAP_MOD_REPLACE, "userAccountControl", uac);
	mod_str(&ms, LDAP_MOD_REPLACE, "dNSHostName", fqdn);
	mod_strs(&ms, LDAP_MOD_REPLACE, "servicePrincipalName", spns);
	mod_str(&ms, LDAP_MOD_REPLACE, "msDS-SupportedEncryptionTypes", enc);
	mod_pwd(&ms, LDAP_MOD_REPLACE, pw->uni, (size_t)pw->uni_len);
	lrc = ldap_modify_ext_s(s->ld, f->dn, ms.list, NULL, NULL);
	if (lrc != LDAP_SUCCESS)
		return write_failed(ad, s, lrc, fqdn, f->dn, container, 0, err);
	ad->host->log(ad->host, AMTPROV_LOG_INFO, "updated %s (%s) for %s, new password", f->dn,
		      sam, fqdn);
	return AMTPROV_OK;
}

static int ad_create_account(void *instance, const struct amtprov_directory_account *acct,
			     struct amtprov_secret **password, struct amtprov_error *err)
{
	static const char *const no_spns[] = {NULL};
	struct dir_ad *ad = instance;
	struct ad_session s;
	struct found f;
	struct new_pw pw;
	char sam[32], fqdn[256], container[DN_MAX], dn[DN_MAX], cn[64], ecn[160];
	char enc[16], desc[300];
	const char *const *spns;
	int rc;

	if (!acct || !acct->fqdn || !acct->account_name)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no account");
	spns = acct->spns ? acct->spns : no_spns;
	if (ad_sam_name(acct->account_name, sam, sizeof(sam)) < 0)
		return amtprov_error_set(err, AMTPROV_E_INVALID, acct->fqdn,
					 "device %s: account name '%s' is not 1 to 15 letters, "
					 "digits, '-' or '_' (+ '$')",
					 acct->fqdn, acct->account_name);
	if (snprintf(fqdn, sizeof(fqdn), "%s", acct->fqdn) >= (int)sizeof(fqdn))
		return amtprov_error_set(err, AMTPROV_E_INVALID, acct->fqdn, "FQDN too long");
	for (char *p = fqdn; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	rc = session_begin(ad, &s, err);
	if (rc != AMTPROV_OK)
		return rc;
	if (is_set(acct->container))
		snprintf(container, sizeof(container), "%s", acct->container);
	else if (is_set(ad->cfg.container))
		snprintf(container, sizeof(container), "%s", ad->cfg.container);
	else
		snprintf(container, sizeof(container), "CN=Computers,%s", ad->base);
	snprintf(enc, sizeof(enc), "%lld", ad->cfg.encryption_types);
	snprintf(desc, sizeof(desc), "%s%s", AD_MARK, fqdn);

	rc = find_account(ad, &s, sam, fqdn, &f, err);
	if (rc != AMTPROV_OK)
		goto out;
	if (f.n > 1) {
		rc = amtprov_error_set(err, AMTPROV_E_EXISTS, fqdn,
				       "device %s: both '%s' and '%s' have its account name %s or "
				       "dNSHostName; remove one", fqdn, f.dn, f.other, sam);
		goto out;
	}
	if (f.n == 1 && !is_ours(&f, fqdn)) {
		rc = amtprov_error_set(err, AMTPROV_E_EXISTS, fqdn,
				       "device %s: '%s' (sAMAccountName %s, dNSHostName %s) "
				       "exists and was not created by amtprov for it (its "
				       "description is not '%s'); it is left alone",
				       fqdn, f.dn, f.sam, f.dns_host[0] ? f.dns_host : "none",
				       desc);
		goto out;
	}
	rc = check_spns(ad, &s, fqdn, spns, f.n ? f.dn : "", err);
	if (rc != AMTPROV_OK)
		goto out;
	rc = make_password(ad, &pw, fqdn, err);
	if (rc != AMTPROV_OK)
		goto wipe;
	if (f.n == 0) {
		snprintf(cn, sizeof(cn), "%.*s", (int)strlen(sam) - 1, sam);
		if (ad_dn_escape(cn, ecn, sizeof(ecn)) < 0 ||
		    snprintf(dn, sizeof(dn), "CN=%s,%s", ecn, container) >= (int)sizeof(dn)) {
			rc = amtprov_error_set(err, AMTPROV_E_INVALID, fqdn, "DN too long");
			goto wipe;
		}
		rc = add_account(ad, &s, dn, container, sam, fqdn, spns, enc, desc, &pw, err);
	} else {
		rc = update_account(ad, &s, &f, container, sam, fqdn, spns, enc, &pw, err);
	}
	if (rc == AMTPROV_OK && password) {
		size_t n = strlen(pw.text);

		*password = ad->host->secret_new(ad->host, n);
		if (!*password)
			rc = amtprov_error_set(err, AMTPROV_E_NOMEM, fqdn, "out of memory");
		else
			memcpy((*password)->data, pw.text, n);
	}
wipe:
	OPENSSL_cleanse(&pw, sizeof(pw));
out:
	ad_session_close(&s);
	return rc;
}

/* ---- delete_account ---- */

static int ad_delete_account(void *instance, const char *fqdn, struct amtprov_error *err)
{
	struct dir_ad *ad = instance;
	struct ad_session s;
	struct found f;
	int rc, lrc;

	if (!fqdn || !*fqdn)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no FQDN");
	rc = session_begin(ad, &s, err);
	if (rc != AMTPROV_OK)
		return rc;
	rc = find_account(ad, &s, NULL, fqdn, &f, err);
	if (rc != AMTPROV_OK)
		goto out;
	if (f.n == 0) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, fqdn,
				       "device %s: no computer account with this dNSHostName", fqdn);
		goto out;
	}
	if (f.n > 1 || !is_ours(&f, fqdn)) {
		rc = amtprov_error_set(err, AMTPROV_E_DENIED, fqdn,
				       "device %s: '%s'%s was not created by amtprov for it; not "
				       "deleted", fqdn, f.dn, f.n > 1 ? " (and others)" : "");
		goto out;
	}
	lrc = ldap_delete_ext_s(s.ld, f.dn, NULL, NULL);
	if (lrc == LDAP_NOT_ALLOWED_ON_NONLEAF) {
		/* Objects below the account (e.g. stored recovery data): AD's tree delete. */
		LDAPControl tree = {.ldctl_oid = LDAP_CONTROL_X_TREE_DELETE, .ldctl_iscritical = 1};
		LDAPControl *ctrls[] = {&tree, NULL};

		lrc = ldap_delete_ext_s(s.ld, f.dn, ctrls, NULL);
	}
	if (lrc == LDAP_INSUFFICIENT_ACCESS)
		rc = ad_ldap_fail(&s, lrc, AMTPROV_E_DENIED, fqdn, err,
				  "device %s: '%s' may not delete '%s' (grant it Delete on "
				  "computer objects of the OU)", fqdn, ad->cfg.bind_dn, f.dn);
	else if (lrc != LDAP_SUCCESS)
		rc = ad_ldap_fail(&s, lrc, 0, fqdn, err, "device %s: deleting '%s'", fqdn, f.dn);
	else
		ad->host->log(ad->host, AMTPROV_LOG_INFO, "deleted %s for %s", f.dn, fqdn);
out:
	ad_session_close(&s);
	return rc;
}

/* ---- account_keyinfo ---- */

static int ad_account_keyinfo(void *instance, const char *fqdn,
			      struct amtprov_directory_keyinfo *out, struct amtprov_error *err)
{
	static const char *const attrs[] = {"sAMAccountName", "msDS-KeyVersionNumber",
					    "msDS-SupportedEncryptionTypes", NULL};
	struct dir_ad *ad = instance;
	struct ad_session s;
	LDAPMessage *res = NULL, *e;
	char ef[600], filter[FILTER_MAX], sam[64], num[32], dns[256];
	char *dn = NULL;
	int rc;

	if (!fqdn || !*fqdn || !out || out->struct_size < sizeof(*out))
		return amtprov_error_set(err, AMTPROV_E_INVALID, fqdn, "no FQDN or result");
	if (ad_filter_escape(fqdn, ef, sizeof(ef)) < 0)
		return amtprov_error_set(err, AMTPROV_E_INVALID, fqdn, "FQDN too long");
	rc = session_begin(ad, &s, err);
	if (rc != AMTPROV_OK)
		return rc;
	snprintf(filter, sizeof(filter), "(&(objectClass=computer)(dNSHostName=%s))", ef);
	rc = ad_search(&s, ad->base, LDAP_SCOPE_SUBTREE, filter, attrs, &res, err);
	if (rc != AMTPROV_OK)
		goto out;
	e = ldap_first_entry(s.ld, res);
	if (!e) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, fqdn,
				       "device %s: no computer account with this dNSHostName", fqdn);
		goto out;
	}
	if (ldap_next_entry(s.ld, e)) {
		rc = amtprov_error_set(err, AMTPROV_E_INVALID, fqdn,
				       "device %s: more than one computer account has this "
				       "dNSHostName", fqdn);
		goto out;
	}
	dn = ldap_get_dn(s.ld, e);
	/* The realm is the DNS name of the domain holding the account. */
	if (!dn || ad_dn_to_dns(dn, dns, sizeof(dns)) < 0 ||
	    ad_first_value(s.ld, e, "sAMAccountName", sam, sizeof(sam))) {
		rc = amtprov_error_set(err, AMTPROV_E_PROTOCOL, fqdn,
				       "device %s: account '%s' has no sAMAccountName or domain",
				       fqdn, dn ? dn : "?");
		goto out;
	}
	for (size_t i = 0; dns[i] && i < sizeof(out->realm) - 1; i++)
		out->realm[i] = (char)toupper((unsigned char)dns[i]);
	out->realm[sizeof(out->realm) - 1] = '\0';
	if (ad_computer_salt(out->realm, sam, dns, out->salt, sizeof(out->salt)) < 0) {
		rc = amtprov_error_set(err, AMTPROV_E_INVALID, fqdn, "salt too long");
		goto out;
	}
	if (ad_first_value(s.ld, e, "msDS-KeyVersionNumber", num, sizeof(num))) {
		rc = amtprov_error_set(err, AMTPROV_E_PROTOCOL, fqdn,
				       "device %s: '%s' has no msDS-KeyVersionNumber (is %s an "
				       "AD DC of Windows Server 2003 or later?)",
				       fqdn, dn, ad->cfg.url);
		goto out;
	}
	out->kvno = (uint32_t)strtoul(num, NULL, 10);
	out->enctypes = ad_first_value(s.ld, e, "msDS-SupportedEncryptionTypes", num,
				       sizeof(num))
				? 0
				: (uint32_t)strtoul(num, NULL, 10);
out:
	ldap_memfree(dn);
	ldap_msgfree(res);
	ad_session_close(&s);
	return rc;
}

/* ---- resolve_sid ---- */

static int ad_resolve_sid(void *instance, const char *name, char *sid, size_t sid_size,
			  struct amtprov_error *err)
{
	static const char *const attrs[] = {"objectSid", NULL};
	struct dir_ad *ad = instance;
	struct ad_session s;
	LDAPMessage *res = NULL, *e;
	struct berval **v = NULL;
	char user[256], domain[256], eu[800], full[600], efull[1800], filter[FILTER_MAX * 2];
	int form, rc, n;

	form = ad_parse_name(name, user, sizeof(user), domain, sizeof(domain));
	if (form < 0)
		return amtprov_error_set(err, AMTPROV_E_INVALID, name,
					 "'%s' is not DOMAIN\\name, name@domain or a bare name",
					 name ? name : "");
	rc = session_begin(ad, &s, err);
	if (rc != AMTPROV_OK)
		return rc;
	snprintf(full, sizeof(full), "%s@%s", user, domain);
	if (ad_filter_escape(user, eu, sizeof(eu)) < 0 ||
	    ad_filter_escape(full, efull, sizeof(efull)) < 0) {
		rc = amtprov_error_set(err, AMTPROV_E_INVALID, name, "name too long");
		goto out;
	}
	if (form == AD_NAME_NETBIOS && strcasecmp(domain, ad->netbios) != 0 &&
	    strcasecmp(domain, ad->dns) != 0) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, name,
				       "'%s': domain %s is not this directory's (%s, %s)", name,
				       domain, ad->netbios, ad->dns);
		goto out;
	}
	if (form == AD_NAME_UPN && strcasecmp(domain, ad->dns) == 0)
		snprintf(filter, sizeof(filter), "(|(userPrincipalName=%s)(sAMAccountName=%s))",
			 efull, eu);
	else if (form == AD_NAME_UPN)
		snprintf(filter, sizeof(filter), "(userPrincipalName=%s)", efull);
	else
		snprintf(filter, sizeof(filter), "(sAMAccountName=%s)", eu);
	rc = ad_search(&s, ad->base, LDAP_SCOPE_SUBTREE, filter, attrs, &res, err);
	if (rc != AMTPROV_OK)
		goto out;
	n = ldap_count_entries(s.ld, res);
	if (n == 0) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, name, "no object named '%s' in %s",
				       name, ad->dns);
		goto out;
	}
	if (n > 1) {
		rc = amtprov_error_set(err, AMTPROV_E_INVALID, name,
				       "'%s' names %d objects in %s; use DOMAIN\\name", name, n,
				       ad->dns);
		goto out;
	}
	e = ldap_first_entry(s.ld, res);
	v = e ? ldap_get_values_len(s.ld, e, "objectSid") : NULL;
	if (!v || !v[0] ||
	    ad_sid_to_string((const uint8_t *)v[0]->bv_val, v[0]->bv_len, sid, sid_size) < 0)
		rc = amtprov_error_set(err, AMTPROV_E_PROTOCOL, name,
				       "'%s' has no valid objectSid (or the buffer is too small)",
				       name);
out:
	ldap_value_free_len(v);
	ldap_msgfree(res);
	ad_session_close(&s);
	return rc;
}

static const struct amtprov_directory_ops ad_ops = {
	.struct_size = sizeof(struct amtprov_directory_ops),
	.create_account = ad_create_account,
	.delete_account = ad_delete_account,
	.account_keyinfo = ad_account_keyinfo,
	.resolve_sid = ad_resolve_sid,
};

static const char *const ad_caps[] = {AMTPROV_CAP_DIRECTORY_ACCOUNT, NULL};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_DIRECTORY, .name = AD_NAME, .version = "1.0.0",
		      .description = "Active Directory computer accounts and SPNs over LDAPS "
				     "(OpenLDAP libldap)",
		      .capabilities = ad_caps, .create = ad_create, .destroy = ad_destroy,
		      .ops = &ad_ops, .config_table = ad_table);
