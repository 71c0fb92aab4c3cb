/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_host.h - a minimal plugin host for the harnesses that drive plugin code directly: logs
 * are formatted (so bad format arguments still trip the sanitizers) and dropped, the clock is
 * fixed, and every credential-store record reads as the same short password.
 */
#ifndef AMTPROV_FUZZ_HOST_H
#define AMTPROV_FUZZ_HOST_H

#include <amtprov/plugin.h>

/** The host; static, valid for the whole run. */
const struct amtprov_host *fuzz_host(void);

#endif
