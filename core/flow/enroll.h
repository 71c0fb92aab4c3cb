/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the flow: the one enrollment sub-machine (certmonger-like) every certificate
 * amtprov asks a CA for goes through, whatever it is for (web server, 802.1X client) and
 * whichever step asks (provisioning, 802.1X, update, renewal):
 *
 *   key placement -> request -> submit -> WAIT/poll -> CA contract -> record
 *
 * - Key placement, by the manifest's key_source (R-PROV-06): inside AMT (GenerateKeyPair,
 *   or the key an interrupted run had AMT make, adopted from its record; AMT signs the
 *   request, which is checked) or made by amtprov and stored write-ahead in the credential
 *   store. Supersede/revoke is the caller's, through revoke.c, once the new certificate is
 *   in use.
 * - One set of pending operations per purpose (names kept from the first schema, so a
 *   device half-way under older code resumes): "submit" (the request is at the CA),
 *   "poll" (a WAIT answer's cookie) and "amt-key" (the request key inside AMT).
 * - One WAIT semantics: the poll record names the state whose step polls again
 *   ("resume"); the caller defers the device to CA_WAITING until the poll time, so a
 *   device waiting for a CA shows it in its state whatever the certificate is for.
 */
#ifndef AMTPROV_CORE_ENROLL_H
#define AMTPROV_CORE_ENROLL_H

#include <stdint.h>

#include <amtprov/error.h>

#include "device_state.h"
#include "store.h"

struct flow;
struct engine_job;
struct enroll;

/** What one enrollment came to; handed to the caller's enroll_done_fn. */
enum enroll_outcome {
	ENROLL_ISSUED, /**< checked against the CA contract and recorded: cert_id */
	ENROLL_WAIT,   /**< the CA keeps the request: its poll record is written; poll at @c at */
	ENROLL_REKEY,  /**< the CA wants a new key: the next request makes one */
	ENROLL_FAILED, /**< rc and why; @c final: not worth retrying (engine_job_fail) */
};

struct enroll_result {
	enum enroll_outcome outcome;
	int rc;
	int final;
	int64_t cert_id;
	int64_t at;
	char why[STORE_TEXT_SIZE];
};

/** Called exactly once, on the loop thread; the enroll is freed before the call. */
typedef void (*enroll_done_fn)(void *ctx, const struct enroll_result *res);
/** Opens the AMT session a key inside AMT needs, when the caller has none open yet. */
typedef int (*enroll_session_fn)(void *ctx, void **session, struct amtprov_error *err);

struct enroll_spec {
	uint32_t purpose;          /**< AMTPROV_PURPOSE_WEB_SERVER or _CLIENT_8021X */
	const char *profile;       /**< 802.1X: the profile the certificate is for; else NULL */
	const char *ca;            /**< CA instance (a poll goes to the one on record) */
	const char *template_name; /**< may be NULL */
	int key_bits;              /**< manifest_crypto_for(): raised for newer firmware */
	int digest_bits;           /**< 256 or 384: the SHA-2 the certificate must be signed
				    *   with (0: 256); asked of the CA, checked in its answer */
	int key_in_amt;            /**< 1: the key is made inside AMT (flow_key_source) */
	int amt_auto;              /**< key_source auto: amtprov's key when AMT cannot */
	enum device_state resume;  /**< WAIT: the state whose step polls again; DS_INVALID:
				    *   CA_WAITING polls (provisioning's web server certificate) */
	void *session;             /**< an open AMT session (borrowed), or NULL */
	enroll_session_fn open_session; /**< used when session is NULL and AMT is needed */
	void *open_ctx;
};

/**
 * Enrolls one certificate for the job's device: polls the request on record for the
 * purpose and profile when there is one, else makes a new request. Ends in @p done
 * (possibly before returning). The caller keeps @p *out to free it (enroll_free) if its
 * job is aborted before @p done; the enroll sets no abort hook of its own.
 */
void enroll_start(struct flow *f, struct engine_job *job, const struct enroll_spec *spec,
		  enroll_done_fn done, void *ctx, struct enroll **out);
/** Releases an enrollment that will not finish (its job was aborted). Accepts NULL. */
void enroll_free(struct enroll *e);

/** The poll record of the device that CA_WAITING looks at (the earliest made), as
 * purpose, profile (@p profile, @p psize) and resume state. @return 1 if there is one. */
int enroll_waiting(struct flow *f, int64_t device_id, uint32_t *purpose, char *profile,
		   size_t psize, enum device_state *resume);

/** An 802.1X profile's pending key becomes its current key (the pending record goes). */
int enroll_key_promote(struct flow *f, const char *fqdn, const char *profile,
		       struct amtprov_error *err);

/* Key placement's helpers used elsewhere keep their flow_int.h names: flow_key_source,
 * flow_web_key_name, flow_8021x_key_name, flow_web_key_in_amt, flow_web_key_committed. */

#endif /* AMTPROV_CORE_ENROLL_H */
