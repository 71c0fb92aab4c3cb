/* SPDX-License-Identifier: Apache-2.0 */
/* `amtprov device list --watch` (cmd_watch.c): the fleet's count by state and throughput,
 * live while amtprovd provisions it. */
#ifndef AMTPROV_TOOLS_CMD_WATCH_H
#define AMTPROV_TOOLS_CMD_WATCH_H

#include "store.h"

/**
 * Reads the count of devices by state every @p interval seconds, @p count times (0: until
 * interrupted), and prints it with the provisioning throughput: redrawn in place on a
 * terminal, one block per reading otherwise, one JSON object per line with @p json.
 * @return an exit code (EXIT_OK; a database error's).
 */
int cmd_watch(struct store *st, double interval, long count, int json);

#endif
