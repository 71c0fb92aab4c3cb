/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ms.h - internals of the ca-mscert plugin: certificates from a Microsoft enterprise CA
 * through its Certificate Enrollment Policy (MS-XCEP) and Certificate Enrollment (MS-WSTEP)
 * web services, revocation through WinRM running certutil (MS-WSMV). See docs/ca-mscert.md.
 *
 * ms_xml.c builds and reads the SOAP messages (no network, no entities, no DTD), ms_http.c
 * posts them with libcurl, ms_policy.c applies the template rules, ms_winrm.c revokes,
 * ca_mscert.c is the plugin.
 */
#ifndef AMTPROV_MS_H
#define AMTPROV_MS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

#include <amtprov/ca.h>
#include <amtprov/plugin.h>

#include "pu_buf.h" /* the text buffer the messages are built in */

#define MS_NAME "ca-mscert"

/* XCEP clientAuthentication values (MS-XCEP 3.1.4.1.3.5). */
#define MS_AUTH_KERBEROS 2
#define MS_AUTH_USERNAME 4
#define MS_AUTH_CERTIFICATE 8

#define MS_MAX_EKU 8
#define MS_MAX_URI 8
#define MS_MAX_CA 8               /* enterprise CAs in one policy (more are refused) */

/* HRESULTs the CA answers with (MS-WCCE 3.2). */
#define MS_E_TEMPLATE_DENIED 0x80094012u
#define MS_E_UNSUPPORTED_CERT_TYPE 0x80094800u
#define MS_E_TEMPLATE_CONFLICT 0x80094802u
#define MS_E_BAD_TEMPLATE_VERSION 0x80094807u

struct ms_template {
	char name[128];          /* commonName: what enrollment names */
	char oid[128];           /* msPKI-Cert-Template-OID (group 9) */
	int schema;              /* policySchema */
	int enroll;              /* permission/enroll for the calling account */
	unsigned min_key;        /* privateKeyAttributes/minimalKeyLength */
	uint32_t name_flags;     /* subjectNameFlags */
	uint32_t enroll_flags;   /* enrollmentFlags (0x2: pend all requests) */
	char eku[MS_MAX_EKU][64];
	int n_eku;
	int ca_ref[MS_MAX_CA];   /* policy/cAs/cAReference: the CAs that issue it */
	int n_ca_ref;            /* 0: cAs nil, every CA of the policy issues it */
};

struct ms_uri {
	unsigned auth;           /* clientAuthentication */
	unsigned priority;       /* lower first */
	int renewal_only;
	char uri[512];
};

/* One enterprise CA of the policy (GetPoliciesResponse/cAs/cA). */
struct ms_ca {
	int ref;                 /* cAReferenceID */
	int enroll;              /* enrollPermission */
	char name[128];          /* CN of its certificate: the AD CS CA name */
	uint8_t *der;            /* the CA's signing certificate */
	size_t len;
	struct ms_uri uris[MS_MAX_URI];
	int n_uri;
};

struct ms_policy {
	char policy_id[128];
	unsigned next_update_hours;
	int not_changed;         /* policiesNotChanged */
	struct ms_template *tmpl;
	int n_tmpl;
	struct ms_ca ca[MS_MAX_CA]; /* in the policy's order */
	int n_ca;                /* 0: no enterprise CA published (stand-alone, R-CA-01) */
};
void ms_policy_free(struct ms_policy *p);

/* An RSTRC or a fault from CES, read. */
struct ms_rstr {
	int fault;               /* a SOAP fault */
	uint8_t *cert_der;       /* issued: the X509v3 token */
	size_t cert_len;
	uint8_t *pkcs7;          /* the CMC full PKI response (chain), when given */
	size_t pkcs7_len;
	char request_id[64];
	char reference[512];     /* pending: SecurityTokenReference/Reference URI */
	char disposition[128];
	/* fault */
	int has_error_code;
	uint32_t error_code;     /* HRESULT */
	int invalid_request;
	char reason[200];
	char subcode[80];        /* local name of s:Subcode/s:Value, e.g. InvalidSecurity */
};
void ms_rstr_free(struct ms_rstr *r);

struct ms_auth {
	unsigned mode;           /* MS_AUTH_* */
	const char *user;        /* UsernameToken only */
	const char *password;    /* UsernameToken only; never logged */
};

/* ---- ms_xml.c ---- */
xmlDocPtr ms_xml_parse(const char *buf, size_t len);
/* First element child of @p n in namespace @p ns (NULL: any) named @p local. */
xmlNodePtr ms_xml_child(xmlNodePtr n, const char *ns, const char *local);
/* First descendant (or @p n itself) named @p local in @p ns. */
xmlNodePtr ms_xml_find(xmlNodePtr n, const char *ns, const char *local);
int ms_xml_is_nil(xmlNodePtr n);
/* Base64 text with whitespace (and CRs from &#xD;) skipped; malloc'd. @return -1 if bad. */
int ms_b64_decode(const char *text, uint8_t **out, size_t *len);
char *ms_b64_encode(const uint8_t *data, size_t len);
void ms_uuid(char out[37]);

char *ms_build_get_policies(const char *to, const struct ms_auth *auth);
char *ms_build_rst_issue(const char *to, const struct ms_auth *auth, const uint8_t *csr,
			 size_t csr_len, const char *template_name);
char *ms_build_rst_query(const char *to, const struct ms_auth *auth, const char *request_id);
/* @return 0 with @p out filled, else -1 with @p why. */
int ms_parse_policies(const char *xml, size_t len, struct ms_policy *out, char *why,
		      size_t why_size);
int ms_parse_rstr(const char *xml, size_t len, struct ms_rstr *out, char *why, size_t why_size);

/* ---- ms_http.c ---- */
struct ms_http_opts {
	const char *ca_bundle;   /* PEM the HTTPS server must chain to */
	const char *client_cert; /* TLS client certificate (PEM), or NULL */
	const char *client_key;
	const char *basic_user;  /* HTTP Basic (WinRM), or NULL */
	const char *basic_password;
	const char *const *resolve; /* curl --resolve entries, NULL-terminated, or NULL */
	int negotiate;           /* HTTP Negotiate (SPNEGO/Kerberos) with the process's ticket */
	long timeout_s;
};
struct ms_http_resp {
	long status;
	char *body;
	size_t len;
};
/* POSTs a SOAP 1.2 body. @return 0 (any HTTP status) or -1 with @p why. */
int ms_http_post(const struct ms_http_opts *o, const char *url, const char *body,
		 struct ms_http_resp *resp, char *why, size_t why_size);
void ms_http_resp_free(struct ms_http_resp *r);

/* ---- ms_policy.c ---- */
/* One check of a template rule; @p ok 0 means the configuration is refused, and @p fix
 * says what the CA administrator changes; @p ok MS_CHECK_SKIP: a CA of the policy is left
 * out (a warning), the others still serve the template. */
#define MS_CHECK_SKIP 2
typedef void (*ms_check_cb)(void *ctx, int ok, const char *rule, const char *what,
			    const char *expected, const char *actual, const char *fix);
/* Applies the rules (R-CA-01..04, EKU per purpose, AMT's key length) to the template a
 * purpose names. @return number of failed checks. */
int ms_check_template(const struct ms_policy *p, const char *template_name, uint32_t purpose,
		      ms_check_cb cb, void *ctx);
const struct ms_template *ms_policy_template(const struct ms_policy *p, const char *name);
/* The CES URIs of CA @p ca for @p auth, best first (lowest priority value; renewal-only
 * ones left out), at most @p max of them into @p out. @return how many. */
int ms_ca_ces_list(const struct ms_ca *ca, unsigned auth, const char **out, int max);
/* Best CES URI of any CA of the policy for @p auth (CAs in priority order), or NULL. */
const char *ms_policy_ces(const struct ms_policy *p, unsigned auth);
/* Does CA @p ca issue template @p t (its cAReferences, or every CA when it has none)? */
int ms_ca_issues(const struct ms_ca *ca, const struct ms_template *t);
/* The CAs that issue @p t, with enroll permission and a CES URI for @p auth, best first
 * (by their best CES priority; equal priorities keep the policy's order). @return how many. */
int ms_template_cas(const struct ms_policy *p, const struct ms_template *t, unsigned auth,
		    const struct ms_ca **out, int max);
/* The CA named @p name (AD CS CA name, case-insensitive), or NULL. */
const struct ms_ca *ms_policy_ca(const struct ms_policy *p, const char *name);

/* ---- ms_winrm.c ---- */
struct ms_winrm_result {
	int exit_code;           /* -1: none received */
	char out[512];           /* stdout then stderr, trimmed */
};
/* Runs certutil [-config CA] -revoke SERIAL REASON in a WinRM cmd shell. @return 0 when the
 * command ran (see exit_code), -1 with @p why when the shell could not be used. */
int ms_winrm_revoke(const struct ms_http_opts *o, const char *url, const char *ca_config,
		    const char *serial, unsigned reason, struct ms_winrm_result *res, char *why,
		    size_t why_size);
/* Exported for the unit test: the WS-Management envelope. */
char *ms_winrm_envelope(const char *url, const char *action, const char *shell_id,
			const char *body);
int ms_winrm_parse_receive(const char *xml, size_t len, struct ms_winrm_result *res, int *done);

#endif /* AMTPROV_MS_H */
