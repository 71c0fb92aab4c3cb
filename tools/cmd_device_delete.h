/* SPDX-License-Identifier: Apache-2.0 */
/* `amtprov device delete` (cmd_device_delete.c). */
#ifndef AMTPROV_TOOLS_CMD_DEVICE_DELETE_H
#define AMTPROV_TOOLS_CMD_DEVICE_DELETE_H

#include <stdio.h>

#include "log.h"

/** Runs `device delete` with argv[0] = "delete". @return exit code. */
int cmd_device_delete(const char *manifest, int json, struct alog *log, int argc, char **argv);
/** Its usage text. */
void device_delete_usage(FILE *out);

#endif
