/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file scep_stub.h
 * @brief A small SCEP responder (RFC 8894) for the ca-external tests.
 *
 * Debian's scepserver (micromdm/scep) never answers PENDING and has no CertPoll, so the
 * plugin's pending path needs a responder whose decisions the test controls. The stub is an
 * HTTP/1.1 server on 127.0.0.1 (ephemeral port, one thread, one connection at a time) with
 * its own RSA CA. It answers GetCACaps, GetCACert and PKIOperation: a PKCSReq is answered
 * PENDING; each CertPoll (GetCertInitial) is answered PENDING while the transaction has
 * pending polls left, then FAILURE (if configured) or SUCCESS with the issued certificate
 * in a degenerate PKCS#7 enveloped to the client's transient signer certificate.
 */
#ifndef SCEP_STUB_H
#define SCEP_STUB_H

#include <openssl/x509.h>

struct scep_stub;

/** What the next CertRep gets wrong on purpose (then the stub is honest again). */
enum scep_stub_forge {
	SCEP_FORGE_NONE = 0,
	SCEP_FORGE_RECIPIENT_NONCE, /**< recipientNonce is not the client's senderNonce */
	SCEP_FORGE_TRANSACTION_ID,  /**< transactionID of another transaction */
	SCEP_FORGE_SIGNER,          /**< signed by a key that only claims the CA's name */
};

/** What the stub has seen; a copy, taken under the stub's lock. */
struct scep_stub_stats {
	int caps;           /**< GetCACaps requests */
	int cacert;         /**< GetCACert requests */
	int pkcsreq;        /**< PKCSReq (messageType 19) */
	int certpoll;       /**< CertPoll / GetCertInitial (messageType 20) */
	int bad;            /**< pkiMessages the stub could not accept (see last_error) */
	int signer_changed; /**< CertPolls signed by another key than the PKCSReq */
	int names_wrong;    /**< CertPolls whose IssuerAndSubject does not match */
	int issued;         /**< SUCCESS answers sent */
	int gets;           /**< PKIOperations that came by GET (base64 in the query) */
	char cipher[32];    /**< cipher of the last request envelope, e.g. "AES-128-CBC" */
	char digest[32];    /**< digest of the last request signature, e.g. "SHA256" */
	char last_tid[80];  /**< transactionID of the last pkiMessage */
	char last_error[160];
};

/** Makes the CA, binds 127.0.0.1:0 and starts the server thread; NULL on failure. */
struct scep_stub *scep_stub_start(void);
/** Stops the thread, closes the socket and frees everything; NULL is fine. */
void scep_stub_stop(struct scep_stub *s);

int scep_stub_port(const struct scep_stub *s);
/** The stub's CA certificate (borrowed, valid until scep_stub_stop). */
X509 *scep_stub_ca(const struct scep_stub *s);

/** The GetCACaps answer (default "POSTPKIOperation\nAES\nSHA-256\nSCEPStandard\n");
 * "" makes a client fall back to GET with base64, 3DES and SHA-1. Copied. */
void scep_stub_set_caps(struct scep_stub *s, const char *caps);
/** CertPolls answered PENDING before the decision, for transactions created from now on. */
void scep_stub_set_pending_polls(struct scep_stub *s, int n);
/** failInfo (0 badAlg .. 4 badCertId) for the decision instead of SUCCESS; -1: SUCCESS. */
void scep_stub_set_fail_info(struct scep_stub *s, int fail_info);
/** Forges the next CertRep. */
void scep_stub_forge_next(struct scep_stub *s, enum scep_stub_forge forge);
void scep_stub_stats(struct scep_stub *s, struct scep_stub_stats *out);

#endif /* SCEP_STUB_H */
