/* SPDX-License-Identifier: Apache-2.0 */
/* Exit codes shared by amtprov and amtprovd (documented in their man pages and README). */
#ifndef AMTPROV_TOOLS_EXIT_CODES_H
#define AMTPROV_TOOLS_EXIT_CODES_H

#include <amtprov/error.h>

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,   /* the operation failed (not found, refused, ...) */
	EXIT_USAGE = 2,  /* bad command line */
	EXIT_CONFIG = 3, /* manifest or plugin configuration invalid */
	EXIT_DB = 4,     /* site database missing, corrupt or busy */
	EXIT_PLUGIN = 5, /* a plugin could not be loaded */
	EXIT_RETRY = 6,  /* temporary: the device (or server) is busy, try again later */
};

/** The exit code for a failure described by @p err (code, message, location). */
int tool_exit_code(const struct amtprov_error *err);

#endif
