/* SPDX-License-Identifier: Apache-2.0 */
/* `amtprov device credentials` (cmd_device_credentials.c). */
#ifndef AMTPROV_TOOLS_CMD_DEVICE_CREDENTIALS_H
#define AMTPROV_TOOLS_CMD_DEVICE_CREDENTIALS_H

#include <stdio.h>

#include "log.h"

/** Runs `device credentials` with argv[0] = "credentials". @return exit code. */
int cmd_device_credentials(const char *manifest, int json, struct alog *log, int argc,
			   char **argv);
/** Its usage text. */
void device_credentials_usage(FILE *out);
/** "cli:USER" for the audit trail: who asked, as the system knows them. */
void cli_actor_name(char *out, size_t size);

#endif
