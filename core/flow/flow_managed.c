/* SPDX-License-Identifier: Apache-2.0 */
/* A session to a provisioned device: see flow_managed.h. */
#include "flow_managed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "pki.h"
#include "util.h"

int managed_open(struct flow *f, const struct store_device *d, int64_t cert_id,
		 struct managed *m, struct amtprov_error *err)
{
	struct amtprov_transport_target tgt;
	uint8_t *der = NULL;
	size_t len = 0;
	int major = 0, minor = 0, rc;

	memset(m, 0, sizeof(*m));
	m->f = f;
	if (!f->tloop)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/amt/transport",
					 "no transport: the site cannot reach devices");
	util_strlcpy(m->fqdn, d->fqdn, sizeof(m->fqdn));
	util_strlcpy(m->uuid, d->uuid, sizeof(m->uuid));
	/* R-PROV-02: a wireless-capable device is reached over its wired address. */
	util_strlcpy(m->address, d->wired_ip[0] ? d->wired_ip : d->fqdn, sizeof(m->address));
	sscanf(d->amt_version, "%d.%d", &major, &minor);
	m->info = (struct amtprov_device_info){.struct_size = sizeof(m->info), .fqdn = m->fqdn,
					       .uuid = m->uuid, .amt_major = major,
					       .amt_minor = minor,
					       .wired_ip = d->wired_ip[0] ? d->wired_ip : NULL,
					       .wireless_capable = d->wireless_capable};
	rc = store_cert_data_get(site_store(f->site), cert_id, &der, &len, &m->ca_bundle, err);
	if (rc)
		return rc;
	m->crl_url = flow_crl_url(f, der, len);
	free(der);
	rc = flow_device_accounts(f, m->fqdn, &m->accounts, err);
	if (rc)
		return rc;
	memset(&tgt, 0, sizeof(tgt));
	tgt.struct_size = sizeof(tgt);
	tgt.device = &m->info;
	tgt.address = m->address;
	tgt.port = FLOW_AMT_TLS_PORT;
	tgt.accounts = m->accounts.list;
	tgt.n_accounts = m->accounts.n;
	tgt.mode = AMTPROV_TRANSPORT_MANAGED;
	tgt.ca_bundle_pem = m->ca_bundle;
	tgt.crl_url = m->crl_url;
	return tloop_session_open(f->tloop, &tgt, &m->session, err);
}

void managed_close(struct managed *m)
{
	if (!m)
		return;
	if (m->session)
		tloop_session_close(m->f->tloop, m->session);
	m->session = NULL;
	flow_device_accounts_free(&m->accounts);
	free(m->ca_bundle);
	free(m->crl_url);
	m->ca_bundle = NULL;
	m->crl_url = NULL;
}

int managed_call(struct managed *m, uint32_t op, json_t *params, tloop_done_fn done, void *ctx,
		 struct amtprov_error *err)
{
	int rc = tloop_call(m->f->tloop, m->session, op, params, done, ctx, err);

	json_decref(params);
	return rc;
}

int managed_already_there(int rc, const struct amtprov_error *err)
{
	return (rc == AMTPROV_E_DEVICE || rc == AMTPROV_E_PROTOCOL) && err &&
	       (strstr(err->msg, "DUPLICATE") || strstr(err->msg, "AlreadyExists"));
}
