/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the unit suites. */
#ifndef AMTPROV_TEST_UTIL_H
#define AMTPROV_TEST_UTIL_H

#include <stddef.h>

/** Makes a fresh private directory under $TMPDIR (or /tmp); caller frees the string and
 * removes the tree with tu_rmrf. NULL on failure. */
char *tu_mkdtemp(const char *tag);
/** Removes a directory tree (best effort). */
void tu_rmrf(const char *path);
/** Writes @p content to dir/name (0600). Returns the malloc'd path or NULL. */
char *tu_write(const char *dir, const char *name, const char *content);
/** 1 if @p haystack contains @p needle. */
int tu_contains(const char *haystack, const char *needle);

#endif
