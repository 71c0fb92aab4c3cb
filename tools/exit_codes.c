/* SPDX-License-Identifier: Apache-2.0 */
#include "exit_codes.h"

#include <string.h>

int tool_exit_code(const struct amtprov_error *err)
{
	/* A configuration error is one wherever it happened: a plugin refusing its own
	 * configuration at create or start reports it with its file as the place. */
	if (err->code == AMTPROV_E_CONFIG || err->code == AMTPROV_E_PARSE)
		return EXIT_CONFIG;
	/* Otherwise where the error happened decides first: a plugin file or the database. */
	if (strstr(err->where, ".so"))
		return EXIT_PLUGIN;
	switch (err->code) {
	case AMTPROV_OK: return EXIT_OK;
	case AMTPROV_E_CONFIG:
	case AMTPROV_E_PARSE: return EXIT_CONFIG;
	case AMTPROV_E_CORRUPT:
	case AMTPROV_E_BUSY: return EXIT_DB;
	case AMTPROV_E_ABI: return EXIT_PLUGIN;
	case AMTPROV_E_NOT_FOUND:
		if (strstr(err->msg, "plugin"))
			return EXIT_PLUGIN;
		if (strstr(err->msg, "database"))
			return EXIT_DB;
		return EXIT_FAIL;
	case AMTPROV_E_IO:
		if (strstr(err->where, ".db"))
			return EXIT_DB;
		return EXIT_FAIL;
	default: return EXIT_FAIL;
	}
}
