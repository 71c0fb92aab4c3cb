/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.h - adcssim's running state and the endpoints it serves: CEP (MS-XCEP), CES
 * (MS-WSTEP), the WinRM shell for certutil -revoke (MS-WSMV) over HTTPS, and the CRL
 * and CA certificate over plain HTTP.
 */
#ifndef ADCSSIM_SERVER_H
#define ADCSSIM_SERVER_H

#include <time.h>

#include <libxml/tree.h>

#include "ca.h"
#include "db.h"
#include "httpd.h"
#include "seed.h"
#include "soap.h"

/* XCEP clientAuthentication values [MS-XCEP 3.1.4.1.3.5]. */
enum { AUTH_ANONYMOUS = 1, AUTH_KERBEROS = 2, AUTH_USERNAME = 4, AUTH_CERTIFICATE = 8 };

/* Another enterprise CA of the forest that this server's CEP publishes too (serve --peer-ca
 * DIR: a second adcssim's state). Its CES, key and RequestIDs are the other server's. */
struct adcs_peer {
	struct seed seed;     /* its templates (by name) and accounts */
	X509 *cert;           /* its CA certificate */
	char https_base[300];
	unsigned ces_priority;
};
#define ADCS_MAX_PEERS 4

struct adcs {
	struct seed seed;
	struct ca ca;
	struct db *db;
	char dir[512];
	char https_base[300]; /* https://host:port */
	time_t last_update;   /* XCEP LastUpdateTime: when the seed (policy) last changed */
	struct winrm_shells *shells;
	unsigned ces_priority; /* the priority of this CA's first CES URI in the policy */
	struct adcs_peer peers[ADCS_MAX_PEERS];
	int n_peers;
};

/* The HTTPS and HTTP request handler (routes by path, case-insensitively like IIS). */
void adcs_handle(void *ctx, const struct http_req *req, struct http_resp *resp);

/* Envelope helpers (server.c). */
void adcs_envelope_open(struct sb *b, const char *action, const char *relates_to);
void adcs_envelope_close(struct sb *b);
/* A SOAP 1.2 fault answered with HTTP 500. detail: inner XML of s:Detail or NULL. */
void adcs_fault(struct http_resp *resp, const char *action, const char *relates_to,
		const char *code, const char *subcode_ns, const char *subcode, const char *reason,
		const char *detail);
void adcs_reply_xml(struct http_resp *resp, int status, struct sb *b);

/* xcep.c / wstep.c: the authenticated account and how it authenticated. */
void xcep_get_policies(struct adcs *s, xmlDocPtr doc, const char *msgid,
		       const struct seed_account *who, struct http_resp *resp);
void wstep_request(struct adcs *s, xmlDocPtr doc, const char *msgid, const char *self_url,
		   const struct seed_account *who, struct http_resp *resp);
/* winrm.c */
void winrm_handle(struct adcs *s, xmlDocPtr doc, const struct seed_account *who,
		  struct http_resp *resp);
void winrm_free(struct adcs *s);

/* admin.c: officer operations shared by `adcssim admin` and the WinRM certutil. They print
 * certutil-like output into out and return the process exit code (0 success). */
int admin_resubmit(struct adcs *s, long id, struct sb *out);
int admin_deny(struct adcs *s, long id, struct sb *out);
int admin_revoke(struct adcs *s, const char *serial, const char *reason, const char *by,
		 struct sb *out);
int admin_list_json(struct adcs *s, struct sb *out);

/* Issues a stored request now (status becomes issued or stays on failure). */
int adcs_issue_stored(struct adcs *s, struct db_req *r, char *err, size_t errsz);

#endif
