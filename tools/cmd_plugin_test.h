/* SPDX-License-Identifier: Apache-2.0 */
/* `amtprov plugin test` (cmd_plugin_test.c). */
#ifndef AMTPROV_TOOLS_CMD_PLUGIN_TEST_H
#define AMTPROV_TOOLS_CMD_PLUGIN_TEST_H

#include "log.h"

/** Runs `plugin test` with argv[0] = "test"; @p manifest may be NULL. @return exit code. */
int cmd_plugin_test(const char *manifest, int json, struct alog *log, int argc, char **argv);

#endif
