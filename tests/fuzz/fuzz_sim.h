/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sim.h - shared set-up of the amtsim harnesses: a key pool (so GenerateKeyPair works
 * as in a fleet) and simulated devices of several firmware versions and setup states.
 */
#ifndef AMTPROV_FUZZ_SIM_H
#define AMTPROV_FUZZ_SIM_H

#include <stddef.h>

#include "device.h"

/** Once per process: libxml2 and a two-key pool for the WS-Man handlers. */
void sim_fuzz_init(void);
/** A fresh device; @p sel picks the firmware version and setup state (PRE/IN/POST). */
void sim_fuzz_device(struct device *d, unsigned char sel);
/** The selector for version index @p v (see fuzz_sim.c) and state @p state. */
unsigned char sim_fuzz_selector(int v, int state);

/** Splits @p data at NUL bytes: calls @p fn on each segment. */
void sim_fuzz_segments(const unsigned char *data, size_t size,
		       void (*fn)(void *ctx, const unsigned char *seg, size_t len), void *ctx);

#endif
