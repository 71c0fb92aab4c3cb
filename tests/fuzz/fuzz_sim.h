/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sim.h - shared set-up of the amtsim harnesses: a key pool (so GenerateKeyPair works
 * as in a fleet) and simulated devices of several firmware versions and setup states.
 */
#ifndef AMTPROV_FUZZ_SIM_H
#define AMTPROV_FUZZ_SIM_H

#include <stddef.h>

#include "device.h"
#include "digest.h"
#include "http.h"

/* A fixed realm and nonce, so a seed can carry an Authorization header that passes. */
#define SIM_FUZZ_REALM "Digest:F0220000000000000000000000000000"
#define SIM_FUZZ_NONCE "ZnV6ei1ub25jZS1mdXp6LW5vbmNlLWZ1"

/** Once per process: libxml2 and a two-key pool for the WS-Man handlers. The sim harnesses'
 * LLVMFuzzerInitialize (in fuzz_sim.c) calls it. */
void sim_fuzz_init(void);
int LLVMFuzzerInitialize(int *argc, char ***argv);
/** A fresh device; @p sel picks the firmware version and setup state (PRE/IN/POST). */
void sim_fuzz_device(struct device *d, unsigned char sel);
/** The selector for version index @p v (see fuzz_sim.c) and state @p state. */
unsigned char sim_fuzz_selector(int v, int state);

/** Gives @p d the fixed realm and @p st the fixed nonce, valid from now, nc unused. */
void sim_fuzz_known_auth(struct device *d, struct digest_state *st);
/** An Authorization value for the provisioning session (admin, empty password) with the fixed
 * realm and nonce; @p nc counts the requests on the nonce from 1. */
void sim_fuzz_authorization(const char *method, const char *uri, unsigned nc, char *out,
			    size_t size);

/** A handler of amtsim's (wsman_handle, soap_legacy_handle). */
typedef void (*sim_fuzz_handler)(struct device *d, const struct http_request *req,
				 struct http_response *resp);
/** POSTs @p body to @p path on @p d through @p handler, as http.c hands a request over
 * (NUL-terminated body, authenticated as admin), and checks the status is an HTTP one. */
void sim_fuzz_post(struct device *d, const char *path, const unsigned char *body, size_t len,
		   sim_fuzz_handler handler);
/** The sim harnesses' entry: a fresh device from byte 0, then @p fn on every NUL-separated
 * segment of the rest, in order, on that device. */
void sim_fuzz_one(const unsigned char *data, size_t size,
		  void (*fn)(struct device *d, const unsigned char *seg, size_t len));

#endif
