/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

struct alog {
	char *ident;
	int level;
	int sink;
	alog_cb cb;
	void *cb_ctx;
	pthread_mutex_t lock; /* one line at a time, never interleaved */
};

static _Thread_local struct alog_ctx tls_ctx;

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug",
					  "private"};

struct alog *alog_new(const char *ident, int level, int sink)
{
	struct alog *lg = calloc(1, sizeof(*lg));

	if (!lg)
		return NULL;
	lg->ident = strdup(ident ? ident : "amtprov");
	if (!lg->ident) {
		free(lg);
		return NULL;
	}
	lg->level = level;
	lg->sink = sink;
	pthread_mutex_init(&lg->lock, NULL);
	if (sink == ALOG_SYSLOG)
		openlog(lg->ident, LOG_PID, LOG_DAEMON);
	return lg;
}

void alog_free(struct alog *lg)
{
	if (!lg)
		return;
	if (lg->sink == ALOG_SYSLOG)
		closelog();
	pthread_mutex_destroy(&lg->lock);
	free(lg->ident);
	free(lg);
}

void alog_set_callback(struct alog *lg, alog_cb cb, void *ctx)
{
	if (!lg)
		return;
	lg->sink = ALOG_CALLBACK;
	lg->cb = cb;
	lg->cb_ctx = ctx;
}

int alog_level_parse(const char *name)
{
	for (size_t i = 0; name && i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *alog_level_name(int level)
{
	if (level < 0 || level > AMTPROV_LOG_PRIVATE)
		return "?";
	return level_names[level];
}

struct alog_ctx alog_ctx_set(const char *instance, const char *device)
{
	struct alog_ctx prev = tls_ctx;

	tls_ctx.instance = instance;
	tls_ctx.device = device;
	return prev;
}

void alog_ctx_restore(struct alog_ctx prev)
{
	tls_ctx = prev;
}

struct alog_ctx alog_ctx_get(void)
{
	return tls_ctx;
}

static int syslog_priority(int level)
{
	switch (level) {
	case AMTPROV_LOG_ERROR: return LOG_ERR;
	case AMTPROV_LOG_WARNING: return LOG_WARNING;
	case AMTPROV_LOG_NOTICE: return LOG_NOTICE;
	case AMTPROV_LOG_INFO: return LOG_INFO;
	default: return LOG_DEBUG;
	}
}

void alogv(struct alog *lg, int level, const char *fmt, va_list ap)
{
	char msg[2048], prefix[512] = "", line[2600], ts[32];
	size_t n = 0;

#ifndef AMTPROV_ENABLE_PRIVATE_LOG
	/* Protocol bodies never leave the process unless the build allows it. */
	if (level >= AMTPROV_LOG_PRIVATE)
		return;
#endif
	if (!lg || level > lg->level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* One line per record: a newline inside a message (from a peer's error text) would let
	 * the peer forge log lines. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (tls_ctx.instance)
		n += (size_t)snprintf(prefix + n, sizeof(prefix) - n, "[%s] ", tls_ctx.instance);
	if (tls_ctx.device && n < sizeof(prefix))
		snprintf(prefix + n, sizeof(prefix) - n, "[%s] ", tls_ctx.device);

	pthread_mutex_lock(&lg->lock);
	switch (lg->sink) {
	case ALOG_SYSLOG:
		syslog(syslog_priority(level), "%s%s", prefix, msg);
		break;
	case ALOG_CALLBACK:
		snprintf(line, sizeof(line), "%s: %s%s", alog_level_name(level), prefix, msg);
		if (lg->cb)
			lg->cb(lg->cb_ctx, level, line);
		break;
	default:
		fprintf(stderr, "%s %s[%d]: %s: %s%s\n", util_fmt_time(util_now(), ts, sizeof(ts)),
			lg->ident, (int)getpid(), alog_level_name(level), prefix, msg);
		break;
	}
	pthread_mutex_unlock(&lg->lock);
}

void alog(struct alog *lg, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	alogv(lg, level, fmt, ap);
	va_end(ap);
}

int alog_limit_allow(struct alog_limit *l, unsigned long *held_back)
{
	int64_t now = util_monotonic_ms() / 1000 / (l->period ? l->period : 1);

	if (now != l->window) {
		l->window = now;
		l->used = 0;
	}
	if (l->used >= l->burst) {
		l->held_back++;
		return 0;
	}
	l->used++;
	*held_back = l->held_back;
	l->held_back = 0;
	return 1;
}
