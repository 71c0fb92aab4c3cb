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

/* A fixed realm and nonce, so a seed can carry an Authorization header that passes. */
#define SIM_FUZZ_REALM "Digest:F0220000000000000000000000000000"
#define SIM_FUZZ_NONCE "ZnV6ei1ub25jZS1mdXp6LW5vbmNlLWZ1"

/** Once per process: libxml2 and a two-key pool for the WS-Man handlers. */
void sim_fuzz_init(void);
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

/** Splits @p data at NUL bytes: calls @p fn on each segment. */
void sim_fuzz_segments(const unsigned char *data, size_t size,
		       void (*fn)(void *ctx, const unsigned char *seg, size_t len), void *ctx);

#endif
