/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file dl.h
 * @brief The only place libltdl is used. lt_dlerror() is process-wide and libltdl is not
 *        reliable with threads, so these are called from the main thread at startup only.
 */
#ifndef AMTPROV_CORE_DL_H
#define AMTPROV_CORE_DL_H

#include <amtprov/error.h>

struct adl;

/** Opens the shared object at @p path (an exact file, never searched). */
int adl_open(const char *path, struct adl **out, struct amtprov_error *err);
/** Looks up a symbol; NULL if absent. */
void *adl_sym(struct adl *dl, const char *name);
/** Closes. Accepts NULL. */
void adl_close(struct adl *dl);

#endif /* AMTPROV_CORE_DL_H */
