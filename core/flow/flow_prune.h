/* SPDX-License-Identifier: Apache-2.0 */
/* Private: superseded certificates and their key pairs are deleted from AMT's store
 * (AMT_PublicKeyCertificate, AMT_PublicPrivateKeyPair), so that repeated renewals do not
 * fill the firmware's small store: web server certificates after a renewal or a replaced TLS
 * context (R-REV-02c), 802.1X client certificates after the 802.1X step replaced them
 * (R-REV-04, R-8021X-06). Only what amtprov recorded as the device's own certificates of
 * that purpose is touched, never one a TLS or 802.1X credential context uses, and a key pair
 * only when no certificate left in AMT and no current certificate carries its public key. A
 * key pair whose certificate already left AMT (a prune or the 802.1X step interrupted
 * between the two deletions) is still known by the certificate's record, and goes at the
 * next prune (R-PROV-13). */
#ifndef AMTPROV_CORE_FLOW_PRUNE_H
#define AMTPROV_CORE_FLOW_PRUNE_H

#include <openssl/evp.h>

#include "flow_int.h"

struct flow_prune;

/** How it ended, called once (never from within flow_prune_start): the numbers deleted,
 * @p deleted ("" if nothing) saying what by AMT handle (also written to the device's audit
 * trail, action "amt.store-pruned"), and @p problem ("" if none) naming what could not be
 * listed or deleted. Failures are reported, not fatal: the renewal is done either way. The
 * flow_prune is freed before. */
typedef void (*flow_prune_done_fn)(void *ctx, int certs, int keys, const char *deleted,
				   const char *problem);

/** What a prune deletes. */
struct flow_prune_spec {
	int purpose;          /**< AMTPROV_PURPOSE_WEB_SERVER or _CLIENT_8021X */
	const int64_t *keep;  /**< the current certificates of the purpose (record ids) */
	size_t n_keep;
	const json_t *also;   /**< NULL, or AMT handles of certificates to delete as well
			       *   (unless in use), e.g. ones the old 802.1X links used; copied */
};

/** Starts on the open @p session (borrowed: kept open until done). Every certificate of
 * @p device_id and the spec's purpose on record, in any status, other than the current ones
 * counts as superseded. */
int flow_prune_start(struct flow *f, void *session, int64_t device_id, const char *fqdn,
		     const struct flow_prune_spec *spec, flow_prune_done_fn done, void *ctx,
		     struct flow_prune **out, struct amtprov_error *err);
/** What a prune sees: AMT's lists and the device's record. */
struct flow_prune_view {
	const json_t *in_use;      /**< handles of certificates a context uses; NULL: unknown */
	const json_t *certs;       /**< LIST_CERTIFICATES items */
	const json_t *keys;        /**< LIST_KEYS items */
	const json_t *superseded;  /**< SHA-256 (upper-case hex) of the device's other recorded
				    *   certificates of the purpose */
	EVP_PKEY *const *recorded; /**< their public keys, from the record (DER on record) */
	size_t n_recorded;
	EVP_PKEY *const *current;  /**< the current certificates' public keys (one for the web
				    *   server, one per 802.1X profile); a NULL entry: unknown */
	size_t n_current;
	const json_t *also;        /**< handles that go like superseded ones; NULL: none */
};

/** Chooses what goes (no I/O): the handles of the superseded certificates (and of those
 * named in @p v->also) no context uses into @p del_certs, and into @p del_keys each key pair such a certificate carries, or a
 * superseded certificate on record carries even when it left AMT already, provided no
 * certificate left in AMT (of any purpose) and no current one carries it. Nothing when the
 * bindings are unknown, nothing known only from the record while a current key is unknown,
 * and no key pair when a certificate's key cannot be read. */
void flow_prune_choose(const struct flow_prune_view *v, json_t *del_certs, json_t *del_keys);

/** Releases a prune that will not finish (its job was aborted). Accepts NULL. */
void flow_prune_free(struct flow_prune *p);

#endif /* AMTPROV_CORE_FLOW_PRUNE_H */
