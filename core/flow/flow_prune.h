/* SPDX-License-Identifier: Apache-2.0 */
/* Private: superseded web server certificates and their key pairs are deleted from AMT's
 * store (AMT_PublicKeyCertificate, AMT_PublicPrivateKeyPair), so that repeated renewals do
 * not fill the firmware's small store. Only what amtprov recorded as the device's own web
 * server certificates is touched, never one a TLS or 802.1X credential context uses, and a
 * key pair only when no certificate left in AMT carries its public key. A key pair whose
 * certificate already left AMT (a prune interrupted between the two deletions) is still
 * known by the certificate's record, and goes at the next prune. */
#ifndef AMTPROV_CORE_FLOW_PRUNE_H
#define AMTPROV_CORE_FLOW_PRUNE_H

#include <openssl/evp.h>

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
/** What a prune sees: AMT's lists and the device's record. */
struct flow_prune_view {
	const json_t *in_use;      /**< handles of certificates a context uses; NULL: unknown */
	const json_t *certs;       /**< LIST_CERTIFICATES items */
	const json_t *keys;        /**< LIST_KEYS items */
	const json_t *superseded;  /**< SHA-256 (upper-case hex) of the device's other recorded
				    *   web server certificates */
	EVP_PKEY *const *recorded; /**< their public keys, from the record (DER on record) */
	size_t n_recorded;
	EVP_PKEY *current;         /**< the current certificate's public key; NULL: unknown */
};

/** Chooses what goes (no I/O): the handles of the superseded certificates no context uses
 * into @p del_certs, and into @p del_keys each key pair such a certificate carries, or a
 * superseded certificate on record carries even when it left AMT already, provided no
 * certificate left in AMT and not the current one carries it. Nothing when the bindings or
 * the current key are unknown, and no key pair when a certificate's key cannot be read. */
void flow_prune_choose(const struct flow_prune_view *v, json_t *del_certs, json_t *del_keys);

/** Releases a prune that will not finish (its job was aborted). Accepts NULL. */
void flow_prune_free(struct flow_prune *p);

#endif /* AMTPROV_CORE_FLOW_PRUNE_H */
