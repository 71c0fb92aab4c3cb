/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file evlog.h
 * @brief libevent's own messages (accept failures, internal warnings) go through amtprov's
 *        logger, rate limited, instead of straight to stderr: a descriptor shortage once made
 *        libevent print millions of identical lines in seconds.
 */
#ifndef AMTPROV_CORE_EVLOG_H
#define AMTPROV_CORE_EVLOG_H

#include "log.h"

/**
 * Routes libevent's messages and fatal errors to @p lg (NULL: back to libevent's default).
 * At most a few lines per second are written; the next line written says how many were
 * dropped. Process-wide: libevent has one log callback.
 */
void evlog_route(struct alog *lg);

#endif /* AMTPROV_CORE_EVLOG_H */
