/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto_floor: the CPU that the unavoidable public-key operations of provisioning one device
 * cost on this machine (issue 5 item 6), so bench_provision.sh can print amtprovd's CPU per
 * device beside it. Each primitive is timed over many iterations (CPU time of this process,
 * one thread); the per-device floor is the sum of the counts below times those costs.
 *
 * What one device costs amtprovd at least (the handshakes the flow needs, not the ones it
 * happens to make: issue 13):
 *   - 2 TLS handshakes, one per phase: before CommitChanges (the device is "in provisioning"
 *     and demands the provisioning certificate, so the client signs its CertificateVerify with
 *     the provisioning key, RSA-2048) and after it (managed: no client certificate). Each has
 *     one ECDHE (X25519 key generation + derivation) and one RSA-2048 verification of the
 *     device's handshake signature;
 *   - 1 signature of the web server certificate by the embedded CA (ca-local) with the key
 *     the site's CA actually has: ca-local's default is RSA-3072 (key_type/key_bits/curve),
 *     given here as CA_KEY "rsa:BITS" or "ec:CURVE";
 *   - when AMT generates the key (key_source "auto" on AMT >= 9, R-PROV-06): 1 RSA-2048
 *     verification of AMT's signature on the request (floor_ms_amt_key);
 *   - when amtprov makes the key (key_source "amtprov", and AMT < 9): 1 RSA-2048 key
 *     generation (reported separately, it dominates) and 1 RSA-2048 signature of the CSR
 *     (floor_ms; floor_ms_without_keygen without the generation).
 * Chain and certificate verifications that OpenSSL may add (the device certificate's own
 * signature, the issued certificate checked against the CA) are not counted: a floor must
 * not include what a cleverer implementation could skip.
 *
 * usage: crypto_floor [SECONDS_PER_PRIMITIVE [CA_KEY]]   (default 0.5 rsa:3072)
 * Prints key=value lines (milliseconds of CPU).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#define TLS_HANDSHAKES 2   /* one per phase */
#define TLS_CLIENT_SIGNS 1 /* the provisioning phase's CertificateVerify */

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

static EVP_PKEY *rsa_key, *ca_key;
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

/* The CA's signature of a certificate (its TBS hash; RSA PKCS#1 or ECDSA, SHA-256). */
static void op_ca_sign(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char csig[1024];
	size_t n = sizeof(csig);

	if (!c || EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, ca_key) != 1 ||
	    EVP_DigestSign(c, csig, &n, msg, sizeof(msg)) != 1)
		die("CA sign");
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
	double budget = 0.5, keygen, sign, verify, ecdhe, ca_sign, handshakes, floor_amt_key;
	const char *ca = argc > 2 ? argv[2] : "rsa:3072";
	char *end;

	if (argc > 1) {
		budget = strtod(argv[1], &end);
		if (*end || budget <= 0 || budget > 60) {
			fprintf(stderr, "usage: crypto_floor [SECONDS_PER_PRIMITIVE (0..60) "
				"[CA_KEY (rsa:BITS or ec:CURVE, default rsa:3072)]]\n");
			return 2;
		}
	}
	if (!strncmp(ca, "rsa:", 4)) {
		long bits = strtol(ca + 4, &end, 10);

		if (*end || bits < 1024 || bits > 8192) {
			fprintf(stderr, "crypto_floor: CA_KEY rsa:BITS, 1024..8192\n");
			return 2;
		}
		ca_key = EVP_RSA_gen((unsigned)bits);
	} else if (!strncmp(ca, "ec:", 3)) {
		ca_key = EVP_EC_gen(ca + 3);
	} else {
		fprintf(stderr, "crypto_floor: CA_KEY is rsa:BITS or ec:CURVE, not %s\n", ca);
		return 2;
	}
	rsa_key = EVP_RSA_gen(2048);
	peer_x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	if (!rsa_key || !peer_x25519 || !ca_key)
		die("key setup");
	op_sign(); /* a signature for op_verify */
	/* Key generation varies a lot (prime search): give it four times the budget. */
	keygen = time_op(op_keygen, budget * 4);
	sign = time_op(op_sign, budget);
	verify = time_op(op_verify, budget);
	ecdhe = time_op(op_ecdhe, budget);
	ca_sign = time_op(op_ca_sign, budget);
	handshakes = TLS_HANDSHAKES * (ecdhe + verify) + TLS_CLIENT_SIGNS * sign;
	printf("ca_key=%s\n", ca);
	printf("rsa2048_keygen_ms=%.3f\n", keygen);
	printf("rsa2048_sign_ms=%.3f\n", sign);
	printf("rsa2048_verify_ms=%.4f\n", verify);
	printf("x25519_ecdhe_ms=%.4f\n", ecdhe);
	printf("ca_sign_ms=%.3f\n", ca_sign);
	printf("count_handshakes=%d count_client_signs=%d count_ca_signs=1\n", TLS_HANDSHAKES,
	       TLS_CLIENT_SIGNS);
	printf("handshakes_ms=%.3f\n", handshakes);
	floor_amt_key = handshakes + ca_sign + verify;
	printf("floor_ms_amt_key=%.3f\n", floor_amt_key);
	printf("floor_ms_without_keygen=%.3f\n", handshakes + ca_sign + sign);
	printf("floor_ms=%.3f\n", handshakes + ca_sign + sign + keygen);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(peer_x25519);
	return 0;
}
