/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto_floor: the CPU that the unavoidable public-key operations of provisioning one device
 * cost on this machine (issue 5 item 6), so bench_provision.sh can print amtprovd's CPU per
 * device beside it. Each primitive is timed over many iterations (CPU time of this process,
 * one thread); the per-device floor is the sum of the counts below times those costs.
 *
 * What one device costs amtprovd at least, when amtprov makes the web server key itself
 * (key_source "amtprov", and AMT < 9):
 *   - 1 RSA-2048 key generation (core/flow_cert.c) — reported separately, it dominates;
 *   - 1 RSA-2048 signature for the CSR, 1 for the certificate by the embedded CA (ca-local);
 *   - per TLS session (device check, first stage, commit, second stage = 4): one ECDHE
 *     (X25519 key generation + derivation) and one RSA-2048 verification of the device's
 *     handshake signature; in the three sessions before CommitChanges the device is "in
 *     provisioning" and demands the provisioning certificate, so the client signs its
 *     CertificateVerify with RSA-2048 there.
 * When AMT generates the key (key_source "auto" on AMT >= 9, R-PROV-06), there is no key
 * generation and no CSR signature in amtprov; it verifies AMT's signature on the request
 * instead: 4 signatures (CA certificate + 3 CertificateVerify), 5 verifications, 4 ECDHE
 * (floor_ms_amt_key).
 * Chain and certificate verifications that OpenSSL may add (the device certificate's own
 * signature, the issued certificate checked against the CA) are not counted: a floor must
 * not include what a cleverer implementation could skip.
 *
 * usage: crypto_floor [SECONDS_PER_PRIMITIVE]   (default 0.5)
 * Prints key=value lines (milliseconds of CPU).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#define TLS_SESSIONS 4
#define TLS_CLIENT_SIGNS 3
#define DEVICE_SIGNS 2 /* CSR + CA certificate */
#define AMT_KEY_SIGNS 1 /* CA certificate: AMT signs the CSR */
#define AMT_KEY_VERIFIES 1 /* amtprov checks AMT's signature on the CSR */

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "crypto_floor: %s failed\n", what);
	exit(1);
}

static EVP_PKEY *rsa_key;
static unsigned char sig[512];
static size_t sig_len;
static const unsigned char msg[] = "amtprov crypto floor: a TLS 1.2 transcript hash stand-in";

static void op_keygen(void)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);

	if (!k)
		die("RSA key generation");
	EVP_PKEY_free(k);
}

static void op_sign(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	sig_len = sizeof(sig);
	if (!c || EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, rsa_key) != 1 ||
	    EVP_DigestSign(c, sig, &sig_len, msg, sizeof(msg)) != 1)
		die("RSA sign");
	EVP_MD_CTX_free(c);
}

static void op_verify(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c || EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, rsa_key) != 1 ||
	    EVP_DigestVerify(c, sig, sig_len, msg, sizeof(msg)) != 1)
		die("RSA verify");
	EVP_MD_CTX_free(c);
}

/* One side of an ECDHE exchange: a fresh key pair and the shared secret with the peer's. */
static EVP_PKEY *peer_x25519;

static void op_ecdhe(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	EVP_PKEY_CTX *c = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
	unsigned char secret[64];
	size_t len = sizeof(secret);

	if (!c || EVP_PKEY_derive_init(c) != 1 || EVP_PKEY_derive_set_peer(c, peer_x25519) != 1 ||
	    EVP_PKEY_derive(c, secret, &len) != 1)
		die("X25519 ECDHE");
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(k);
}

/* Milliseconds of CPU per call, over at least `budget` seconds (and at least 3 calls). */
static double time_op(void (*op)(void), double budget)
{
	double t0 = cpu_now(), t;
	long n = 0;

	do {
		op();
		n++;
		t = cpu_now() - t0;
	} while (t < budget || n < 3);
	return t * 1000.0 / (double)n;
}

int main(int argc, char **argv)
{
	double budget = 0.5, keygen, sign, verify, ecdhe, floor_no_keygen, floor_amt_key;

	if (argc > 1) {
		char *end;

		budget = strtod(argv[1], &end);
		if (*end || budget <= 0 || budget > 60) {
			fprintf(stderr, "usage: crypto_floor [SECONDS_PER_PRIMITIVE (0..60)]\n");
			return 2;
		}
	}
	rsa_key = EVP_RSA_gen(2048);
	peer_x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	if (!rsa_key || !peer_x25519)
		die("key setup");
	op_sign(); /* a signature for op_verify */
	/* Key generation varies a lot (prime search): give it four times the budget. */
	keygen = time_op(op_keygen, budget * 4);
	sign = time_op(op_sign, budget);
	verify = time_op(op_verify, budget);
	ecdhe = time_op(op_ecdhe, budget);
	floor_no_keygen = (DEVICE_SIGNS + TLS_CLIENT_SIGNS) * sign + TLS_SESSIONS * verify +
			  TLS_SESSIONS * ecdhe;
	printf("rsa2048_keygen_ms=%.3f\n", keygen);
	printf("rsa2048_sign_ms=%.3f\n", sign);
	printf("rsa2048_verify_ms=%.4f\n", verify);
	printf("x25519_ecdhe_ms=%.4f\n", ecdhe);
	printf("count_signs=%d count_verifies=%d count_ecdhe=%d count_keygen=1\n",
	       DEVICE_SIGNS + TLS_CLIENT_SIGNS, TLS_SESSIONS, TLS_SESSIONS);
	floor_amt_key = (AMT_KEY_SIGNS + TLS_CLIENT_SIGNS) * sign +
			(TLS_SESSIONS + AMT_KEY_VERIFIES) * verify + TLS_SESSIONS * ecdhe;
	printf("floor_ms_without_keygen=%.3f\n", floor_no_keygen);
	printf("floor_ms_amt_key=%.3f\n", floor_amt_key);
	printf("floor_ms=%.3f\n", floor_no_keygen + keygen);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(peer_x25519);
	return 0;
}
