/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_seed.c - see fuzz_seed.h. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_seed.h"

void fuzz_write_seed(const char *dir, const char *name, unsigned char first, const void *p,
		     size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")) || fwrite(&first, 1, 1, f) != 1 ||
	    (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
		perror(path);
		abort();
	}
}
