/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file log.h (core)
 * @brief The core's logger: level filter, stderr or syslog, and a per-thread context
 *        (plugin instance, device) that prefixes every line, so plugins never pass it.
 */
#ifndef AMTPROV_CORE_LOG_H
#define AMTPROV_CORE_LOG_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include <amtprov/log.h>

/** Where lines go. */
enum alog_sink {
	ALOG_STDERR = 0,
	ALOG_SYSLOG = 1,
	ALOG_CALLBACK = 2, /**< tests: every formatted line goes to a callback */
};

typedef void (*alog_cb)(void *ctx, int level, const char *line);

struct alog;

/** Creates a logger. @p ident names the program in syslog and stderr lines. */
struct alog *alog_new(const char *ident, int level, int sink);
void alog_free(struct alog *lg);
void alog_set_callback(struct alog *lg, alog_cb cb, void *ctx);
/** Parses "error", "warning", "notice", "info", "debug", "private"; -1 if unknown. */
int alog_level_parse(const char *name);
const char *alog_level_name(int level);

void alog(struct alog *lg, int level, const char *fmt, ...) AMTPROV_PRINTF(3, 4);
void alogv(struct alog *lg, int level, const char *fmt, va_list ap) AMTPROV_PRINTF(3, 0);

/**
 * A rate limit for lines a peer or a failing system call can repeat without end: at most
 * @c burst lines per @c period seconds (0: 1); the rest are counted and reported by the
 * next line allowed. Zero-initialise with .burst (and .period) set. Not locked: callers
 * serialise.
 */
struct alog_limit {
	unsigned burst;
	unsigned period;
	int64_t window;          /**< the monotonic period being counted */
	unsigned used;           /**< lines allowed in that second */
	unsigned long held_back; /**< lines refused since the last one allowed */
};
/** 1 when a line may be written now; then *held_back is how many were refused before it
 * (to mention in that line) and the count restarts. 0 when the line must be dropped. */
int alog_limit_allow(struct alog_limit *l, unsigned long *held_back);

/** Per-thread context that prefixes lines. Strings are borrowed: keep them alive until
 * the matching restore. */
struct alog_ctx {
	const char *instance; /**< "plugin/instance" or NULL */
	const char *device;   /**< device FQDN or NULL */
};
/** Sets the thread's context and returns the previous one (restore it afterwards). */
struct alog_ctx alog_ctx_set(const char *instance, const char *device);
void alog_ctx_restore(struct alog_ctx prev);
struct alog_ctx alog_ctx_get(void);

#endif /* AMTPROV_CORE_LOG_H */
