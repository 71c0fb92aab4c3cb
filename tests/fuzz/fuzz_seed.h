/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_seed.h - writing seed files (make_corpus and the harnesses that make their own). */
#ifndef AMTPROV_FUZZ_SEED_H
#define AMTPROV_FUZZ_SEED_H

#include <stddef.h>

/** Writes DIR/NAME: the selector byte @p first, then @p n bytes of @p p. Aborts on error. */
void fuzz_write_seed(const char *dir, const char *name, unsigned char first, const void *p,
		     size_t n);

#endif
