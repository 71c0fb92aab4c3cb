/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the flow's files (flow.c, flow_cert.c, flow_stage.c). */
#ifndef AMTPROV_CORE_FLOW_INT_H
#define AMTPROV_CORE_FLOW_INT_H

#include "flow.h"
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
};


/* flow_cert.c: NEED_CERTIFICATE and CA_WAITING (R-PROV-06). */
void flow_step_certificate(struct engine_job *job, void *ctx);
void flow_step_ca_waiting(struct engine_job *job, void *ctx);
/* flow_stage.c: NEED_FIRST_STAGE, NEED_COMMIT, NEED_SECOND_STAGE (R-PROV-10/11). */
void flow_step_first_stage(struct engine_job *job, void *ctx);
void flow_step_commit(struct engine_job *job, void *ctx);
void flow_step_second_stage(struct engine_job *job, void *ctx);
/* The credential-store record that holds a device's admin password (R-PROV-12). */
void flow_admin_cred_name(const char *fqdn, char *out, size_t size);
/* The Digest accounts to try for a device, in order (R-PROV-09): the site's provisioning
 * accounts, then admin with this device's stored password and with a pending one (set just
 * before a crash). Free with flow_device_accounts_free. */
struct flow_device_accounts {
	struct amtprov_transport_account *list;
	size_t n;
	struct amtprov_secret *current;
	struct amtprov_secret *pending;
};
int flow_device_accounts(struct flow *f, const char *fqdn, struct flow_device_accounts *out,
			 struct amtprov_error *err);
void flow_device_accounts_free(struct flow_device_accounts *a);
/* The credential-store record that holds a device's web server key (made by amtprov). */
void flow_web_key_name(const char *fqdn, char *out, size_t size);
/* The target of a provisioning-mode session to @p d (R-PROV-07), over its wired address
 * (R-PROV-02). Pointers borrow from @p f, @p d, @p accounts and @p info. */
void flow_provisioning_target(struct flow *f, const struct store_device *d,
			      const struct flow_device_accounts *accounts,
			      struct amtprov_device_info *info, struct amtprov_transport_target *tgt);
/* 1 when the device's web server key was generated inside AMT and AMT holds it (flow_cert.c
 * recorded its handle): the first stage then adds only the certificate, no key. */
int flow_web_key_in_amt(struct flow *f, int64_t device_id);

#endif
