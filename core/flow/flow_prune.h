/* SPDX-License-Identifier: Apache-2.0 */
/* Private: superseded web server certificates and their key pairs are deleted from AMT's
 * store (AMT_PublicKeyCertificate, AMT_PublicPrivateKeyPair), so that repeated renewals do
 * not fill the firmware's small store. Only what amtprov recorded as the device's own web
 * server certificates is touched, never one a TLS or 802.1X credential context uses, and a
 * key pair only when no certificate left in AMT carries its public key. */
#ifndef AMTPROV_CORE_FLOW_PRUNE_H
#define AMTPROV_CORE_FLOW_PRUNE_H

#include "flow_int.h"

struct flow_prune;

/** How it ended, called once (never from within flow_prune_start): the numbers deleted,
 * and @p problem ("" if none) naming what could not be listed or deleted. Failures are
 * reported, not fatal: the renewal is done either way. The flow_prune is freed before. */
typedef void (*flow_prune_done_fn)(void *ctx, int certs, int keys, const char *problem);

/** Starts on the open @p session (borrowed: kept open until done). Every web server
 * certificate of @p device_id on record other than @p keep_cert_id counts as superseded. */
int flow_prune_start(struct flow *f, void *session, int64_t device_id, const char *fqdn,
		     int64_t keep_cert_id, flow_prune_done_fn done, void *ctx,
		     struct flow_prune **out, struct amtprov_error *err);
/** Releases a prune that will not finish (its job was aborted). Accepts NULL. */
void flow_prune_free(struct flow_prune *p);

#endif /* AMTPROV_CORE_FLOW_PRUNE_H */
