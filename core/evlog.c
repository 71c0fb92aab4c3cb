/* SPDX-License-Identifier: Apache-2.0 */
#include "evlog.h"

#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>

#define EVLOG_LINES_PER_SECOND 5

static pthread_mutex_t evlog_lock = PTHREAD_MUTEX_INITIALIZER;
static struct alog *evlog_target;
static struct alog_limit evlog_limit = {.burst = EVLOG_LINES_PER_SECOND};

static int level_of(int severity)
{
	switch (severity) {
	case EVENT_LOG_DEBUG: return AMTPROV_LOG_DEBUG;
	case EVENT_LOG_MSG: return AMTPROV_LOG_INFO;
	case EVENT_LOG_WARN: return AMTPROV_LOG_WARNING;
	default: return AMTPROV_LOG_ERROR;
	}
}

/* libevent may log from any thread that runs a base (the engine's CA workers do). */
static void on_event_log(int severity, const char *msg)
{
	unsigned long held = 0;

	pthread_mutex_lock(&evlog_lock);
	if (evlog_target && alog_limit_allow(&evlog_limit, &held)) {
		if (held)
			alog(evlog_target, level_of(severity),
			     "libevent: %s (%lu earlier messages suppressed)", msg, held);
		else
			alog(evlog_target, level_of(severity), "libevent: %s", msg);
	}
	pthread_mutex_unlock(&evlog_lock);
}

/* libevent calls this when its own state is broken; it must not return. The message that
 * explains the error went through on_event_log just before. */
static void on_event_fatal(int err)
{
	struct alog *lg = evlog_target;

	if (lg)
		alog(lg, AMTPROV_LOG_ERROR, "libevent: fatal internal error %d: aborting", err);
	abort();
}

void evlog_route(struct alog *lg)
{
	pthread_mutex_lock(&evlog_lock);
	evlog_target = lg;
	pthread_mutex_unlock(&evlog_lock);
	event_set_log_callback(lg ? on_event_log : NULL);
	event_set_fatal_callback(lg ? on_event_fatal : NULL);
}
