/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seed.h - adcssim's directory and CA configuration, read from a JSON seed file
 * (docs/adcssim.md): the CA, the accounts that may authenticate, the certificate
 * templates with the AD attributes MS-CRTD defines.
 */
#ifndef ADCSSIM_SEED_H
#define ADCSSIM_SEED_H

#include <stddef.h>

/* msPKI-Certificate-Name-Flag and msPKI-Enrollment-Flag bits the CA acts on [MS-CRTD]. */
#define CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT 0x00000001u
#define CT_FLAG_SUBJECT_ALT_REQUIRE_DNS 0x08000000u
#define CT_FLAG_SUBJECT_REQUIRE_DNS_AS_CN 0x10000000u
#define CT_FLAG_PEND_ALL_REQUESTS 0x00000002u

#define SEED_MAX_LIST 8

struct seed_template {
	char name[64];         /* cn: what enrollment names */
	char display[96];
	char oid[128];         /* msPKI-Cert-Template-OID */
	unsigned schema;       /* 1, 2 or 3 */
	unsigned major, minor; /* revision, msPKI-Template-Minor-Revision */
	unsigned name_flags, enroll_flags, pkey_flags, general_flags;
	unsigned min_key;      /* msPKI-Minimal-Key-Size */
	unsigned key_spec;     /* pKIDefaultKeySpec */
	unsigned long validity_s, renewal_s;
	char eku[SEED_MAX_LIST][64];
	size_t n_eku;
	unsigned key_usage;    /* first byte of the KU BIT STRING, e.g. 0xa0 */
	int ku_critical;
	char hash[16];         /* v3 only: the template's hash algorithm, "" = the CA's */
	char enroll[SEED_MAX_LIST][64], autoenroll[SEED_MAX_LIST][64];
	size_t n_enroll, n_autoenroll;
};

struct seed_account {
	char name[64];
	char password[128];
	char cert_cn[128];     /* TLS client certificate CN that authenticates as this account */
	char dns[256];         /* dNSHostName (machine accounts); "" when none */
	int officer;           /* "Issue and Manage Certificates" */
};

struct seed {
	char ca_name[64];
	int standalone;
	int standalone_issue;  /* stand-alone policy module: REQDISP_ISSUE instead of PENDINGFIRST */
	char ca_hash[16];
	char policy_id[64], policy_name[96];
	unsigned next_update_hours;
	int version_filter;     /* apply requestFilter clientVersion/serverVersion */
	int nil_versions_empty; /* reproduce the CEP that returns no policy when versions are nil */
	struct seed_account *accounts;
	size_t n_accounts;
	struct seed_template *templates;
	size_t n_templates;
};

int seed_load(struct seed *s, const char *path, char *err, size_t errsz);
void seed_free(struct seed *s);
const struct seed_template *seed_template(const struct seed *s, const char *name);
const struct seed_template *seed_template_by_oid(const struct seed *s, const char *oid);
/* Accepts "name", "DOMAIN\name" and "name@realm". */
const struct seed_account *seed_account(const struct seed *s, const char *user);
const struct seed_account *seed_account_by_cn(const struct seed *s, const char *cn);
int seed_may_enroll(const struct seed_template *t, const char *account);
int seed_may_autoenroll(const struct seed_template *t, const char *account);

#endif
