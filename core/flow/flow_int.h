/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the flow's files (flow.c, flow_cert.c, flow_stage.c, flow_8021x.c, ...). */
#ifndef AMTPROV_CORE_FLOW_INT_H
#define AMTPROV_CORE_FLOW_INT_H

#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include <amtprov/ca.h>

#include "flow.h"
#include "flow_table.h"
#include "preflight.h"
#include "transport_loop.h"

/* A Digest account for provisioning (R-PROV-09), its password loaded once. */
struct flow_account {
	char *user;
	struct amtprov_secret *password;
};

struct flow {
	struct site *site;
	/* The AMT steps; set when the site has a transport and a usable provisioning
	 * certificate (otherwise devices wait in NEED_DEVICE_CHECK, and a status says why). */
	struct tloop *tloop;
	struct preflight *pf;
	char *chain_pem;                 /* R-PROV-07: leaf -> root */
	struct amtprov_secret *key_pem;
	struct flow_account *accounts;
	struct amtprov_transport_account *tr_accounts;
	size_t n_accounts;
	/* flow_crl_url's cache: the CRL URL of recorded certificates by thumbprint. */
	struct flow_crl_slot *crl_urls;
	size_t n_crl_urls;
	uint64_t crl_clock;
};


/* The CRL URL (first CRL distribution point) of the certificate @p der: malloc'd, NULL
 * when it names none (or does not parse). Remembered by the DER's SHA-256, so a managed
 * session does not parse the recorded certificate again for it (an OpenSSL 3 key decode per
 * session): recording a certificate notes it (flow_crl_url_note), a miss parses @p der. A
 * bounded cache (a miss costs only the parse). Loop thread. */
char *flow_crl_url(struct flow *f, const uint8_t *der, size_t len);
/* Notes the CRL URL of @p x, parsed from @p der, as it is recorded. */
void flow_crl_url_note(struct flow *f, const uint8_t *der, size_t len, X509 *x);

/* flow_cert.c: NEED_CERTIFICATE and CA_WAITING (R-PROV-06), through enroll.c. */
void flow_step_certificate(struct engine_job *job, void *ctx);
/* The same request for another step, such as renewal: the key where the manifest's
 * key_source puts it (inside AMT, with the amt-key record, over a MANAGED session verified
 * with certificate @p verify_cert_id; or made by amtprov and stored write-ahead), CSR
 * checked, CA, certificate recorded with its DER. Instead of moving the device on, @p done
 * gets on the loop thread the new certificate's id, or (rc AMTPROV_OK, cert_id 0) the time
 * @p wait_at a CA that answered WAIT is to be polled (its record names NEED_RENEWAL, the
 * step that polls), or the failure (AMTPROV_E_CONFIG when key_source cannot be honoured).
 * @p done must end the job. If the job ends before @p done is called (shutdown), @p
 * arg_free (may be NULL) frees @p arg. */
typedef void (*flow_cert_done_fn)(struct engine_job *job, int rc, int64_t cert_id,
				  int64_t wait_at, const char *why, void *arg);
void flow_cert_request(struct flow *f, struct engine_job *job, int64_t verify_cert_id,
		       flow_cert_done_fn done, void *arg, void (*arg_free)(void *));
void flow_step_ca_waiting(struct engine_job *job, void *ctx);
/* flow_stage.c: NEED_FIRST_STAGE, NEED_COMMIT, NEED_SECOND_STAGE (R-PROV-10/11). */
void flow_step_first_stage(struct engine_job *job, void *ctx);
void flow_step_commit(struct engine_job *job, void *ctx);
void flow_step_second_stage(struct engine_job *job, void *ctx);
/* flow_stage.c: NEED_8021X, the second stage's 802.1X part as its own state (R-PROV-11 3). */
void flow_step_8021x(struct engine_job *job, void *ctx);
/* The credential-store record that holds a device's admin password (R-PROV-12). */
/** AMT's TLS port: every session the flow opens, and what it tells the transport is idle. */
#define FLOW_AMT_TLS_PORT 16993

void flow_admin_cred_name(const char *fqdn, char *out, size_t size);
/** A random admin password of @p len (8..32) characters that AMT's strong-password rule
 * accepts (flow_stage.c); NULL on a bad length or no randomness. */
struct amtprov_secret *flow_random_password(int len);
/* The Digest accounts to try for a device, in order (R-PROV-09): admin with this device's
 * stored password and with a pending one (set just before a crash), then the site's
 * provisioning accounts. Free with flow_device_accounts_free. */
struct flow_device_accounts {
	struct amtprov_transport_account *list;
	size_t n;
	struct amtprov_secret *current;
	struct amtprov_secret *pending;
};
int flow_device_accounts(struct flow *f, const char *fqdn, struct flow_device_accounts *out,
			 struct amtprov_error *err);
void flow_device_accounts_free(struct flow_device_accounts *a);
/* enroll.c: the credential-store record that holds a device's web server key (made by
 * amtprov). */
void flow_web_key_name(const char *fqdn, char *out, size_t size);
/* The target of a provisioning-mode session to @p d (R-PROV-07), over its wired address
 * (R-PROV-02). Pointers borrow from @p f, @p d, @p accounts and @p info. */
/** The reason for a provisioning TLS handshake the device refused (R-PROV-07): which R-PC
 * checks the certificate fails or passes, the likely cause and the command that checks it,
 * then @p transport_msg; never cut mid-word. */
void flow_tls_refusal_reason(struct flow *f, const char *fqdn, const char *transport_msg,
			     char *out, size_t size);
void flow_provisioning_target(struct flow *f, const struct store_device *d,
			      const struct flow_device_accounts *accounts,
			      struct amtprov_device_info *info, struct amtprov_transport_target *tgt);
/* 1 when the device's web server key was generated inside AMT and AMT holds it (flow_cert.c
 * recorded its handle): the first stage then adds only the certificate, no key. */
int flow_web_key_in_amt(struct flow *f, int64_t device_id);
/* The commit made the first stage's (or a renewal's) work final: the record of the key AMT
 * holds is dropped (pending_ops holds only unfinished work). */
void flow_web_key_committed(struct flow *f, int64_t device_id);

/* enroll.c's parts for a key generated inside AMT (and key names), used around the flow. */
/* Where a key is made, by the manifest's /certificates/web_server/key_source (R-PROV-06):
 * 1 inside AMT, 0 by amtprov, -1 not possible (@p why says so, naming @p what). *@p
 * amt_auto is 1 for 'auto': amtprov's key when AMT cannot generate one. */
int flow_key_source(struct flow *f, const struct store_device *d, const char *what,
		    int *amt_auto, char *why, size_t n);
/* What to do about the key of a request, given its record (payload {"before": [handles]}
 * or {"handle", "discard"?}, may be NULL) and the key pairs AMT holds, @p items (LIST_KEYS:
 * {"key_handle","public_key_b64"?}). The
 * handles AMT holds are appended to @p before_out; *@p item is the key to adopt or
 * delete. */
enum flow_amt_key_move {
	FLOW_AMT_KEY_GENERATE,  /* none to adopt: record the intent, GenerateKeyPair */
	FLOW_AMT_KEY_ADOPT,     /* the recorded key */
	FLOW_AMT_KEY_ADOPT_NEW, /* a key an interrupted GenerateKeyPair made: record it */
	FLOW_AMT_KEY_DELETE,    /* the recorded key, which the CA wanted replaced */
};
enum flow_amt_key_move flow_amt_key_choose(const json_t *record, const json_t *items,
					   json_t *before_out, const json_t **item);
/* The DER of @p tmpl (around @p pub, AMT's key) with a null signature of the key's size,
 * base64, for GeneratePKCS10RequestEx; NULL on failure. Free after OPENSSL_cleanse. */
char *flow_amt_template_b64(X509_REQ *tmpl, EVP_PKEY *pub);
/* The request AMT signed (@p b64) must be @p tmpl signed by @p pub (key @p handle); on
 * success its DER replaces *@p csr_der (malloc'd). */
int flow_amt_check_signed(const char *fqdn, X509_REQ *tmpl, EVP_PKEY *pub, const char *handle,
			  const char *b64, uint8_t **csr_der, size_t *csr_len,
			  struct amtprov_error *err);
/* Replaces the pending record of a key AMT holds (*@p record, id *@p record_id, both
 * updated) by @p payload (stolen) of @p kind: the new one is written before the old one
 * goes, so there is never none on disk. */
int flow_key_record_replace(struct flow *f, int64_t device_id, const char *kind,
			    const char *fqdn, json_t *payload, json_t **record, int64_t *record_id,
			    struct amtprov_error *err);
/* The device refused GenerateKeyPair as not supported (key_source auto falls back). */
int flow_amt_unsupported(int rc, const struct amtprov_error *err);
/* The CA contract (ca_contract.h) on an ISSUED answer @p res of CA @p ca for @p fqdn, whose
 * request certified @p key, at least @p min_key_bits and signed with at least a
 * @p min_digest_bits SHA-2 (manifest_crypto_for), with the site's settings; a broken rule is reported (status
 * CA_CONTRACT_VIOLATED) and returned as AMTPROV_E_VERIFY, before anything reaches AMT.
 * Loop thread. */
struct plugin_instance;
int flow_ca_contract(struct flow *f, struct plugin_instance *ca, uint32_t purpose,
		     const char *fqdn, EVP_PKEY *key, int min_key_bits, int min_digest_bits,
		     const struct amtprov_ca_result *res, struct amtprov_error *err);

/* flow_8021x.c: 802.1X, the second stage's last step (R-PROV-11 3, R-8021X). */
struct x8021x;
/* How it ended, called exactly once (possibly from within flow_8021x_start): rc AMTPROV_OK
 * with outcome @p o: FLOW_DONE, FLOW_WAIT (a CA answered WAIT: poll at @p at) or FLOW_AGAIN
 * (a CA answered NEED_REKEY); else the failure (rc, why) for engine_job_done. On success
 * @p why, when not NULL, says what the step deleted from AMT's store (handles). The x8021x is
 * freed before the call. */
typedef void (*flow_8021x_done_fn)(void *ctx, enum flow_outcome o, int rc, const char *why,
				   int64_t at);
/* Starts the step on the stage's open @p session (borrowed; kept open until done). */
int flow_8021x_start(struct flow *f, struct engine_job *job, void *session,
		     const struct amtprov_device_info *info, int64_t device_id,
		     flow_8021x_done_fn done, void *ctx, struct x8021x **out,
		     struct amtprov_error *err);
/* Releases a step that will not finish (its job was aborted). Accepts NULL. */
void flow_8021x_free(struct x8021x *x);
/* The credential-store record of a device's 802.1X key for @p profile: the key of the
 * certificate in use, or (@p pending) the key of a request not yet answered. */
void flow_8021x_key_name(const char *fqdn, const char *profile, int pending, char *out,
			 size_t size);

#endif
