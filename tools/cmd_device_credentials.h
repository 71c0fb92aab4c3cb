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
struct site;
struct amtprov_error;
/** "amtprov: WHERE: MESSAGE" on stderr. */
void cli_print_err(const struct amtprov_error *err);
/** Opens the site of @p manifest with site_open @p flags, printing every problem.
 * @return EXIT_OK, or the exit code to end with. */
int cli_site_open(const char *manifest, struct alog *log, int flags, struct site **out);
/** "cli:USER" for the audit trail: who asked, as the system knows them. */
void cli_actor_name(char *out, size_t size);

#endif
