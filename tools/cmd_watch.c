/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `amtprov device list --watch`: a read-only view of the site database, read again every
 * interval. Throughput is what changed between readings: devices that reached PROVISIONED
 * or FAILED (a drop in either, an update or a retry, counts as no progress, never as
 * negative), per second over the last interval and since the watch began; with the devices
 * still on their way, an estimate of the time left at the overall rate.
 */
#include "cmd_watch.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "device_state.h"
#include "exit_codes.h"
#include "store.h"
#include "util.h"

struct reading {
	int64_t n[DS_COUNT];
	int64_t total;
};

static int count_state(void *ctx, const char *state, int64_t count)
{
	struct reading *r = ctx;

	if (strcmp(state, STORE_DEVICE_DELETED) == 0)
		return 0; /* deleted: no longer in the inventory */
	r->n[device_state_parse(state)] += count; /* unknown names land in DS_INVALID */
	r->total += count;
	return 0;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_seconds(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Devices still on their way: neither at rest (PROVISIONED, FAILED, BLOCKED,
 * UNPROVISIONED) nor unknown. */
static int64_t on_the_way(const struct reading *r)
{
	int64_t n = 0;

	for (int s = DS_INVALID + 1; s < DS_COUNT; s++)
		if (s != DS_PROVISIONED && s != DS_FAILED && s != DS_BLOCKED &&
		    s != DS_UNPROVISIONED)
			n += r->n[s];
	return n;
}

static int64_t gained(int64_t now, int64_t before)
{
	return now > before ? now - before : 0;
}

int cmd_watch(struct store *st, double interval, long count, int json)
{
	struct reading first = {.total = 0}, prev = {.total = 0}, cur;
	double t0 = now_seconds(), tprev = t0;
	int64_t done_total = 0, failed_total = 0;
	int tty = !json && isatty(STDOUT_FILENO);

	for (long i = 0; count == 0 || i < count; i++) {
		struct amtprov_error err;
		double t, dt, since;
		int64_t done, failed, left;
		char when[32], iso[32];
		time_t wall = time(NULL);
		struct tm tm;

		if (i > 0)
			sleep_seconds(interval);
		memset(&cur, 0, sizeof(cur));
		amtprov_error_clear(&err);
		if (store_device_count_by_state(st, count_state, &cur, &err) != AMTPROV_OK) {
			fprintf(stderr, "amtprov: %s\n", err.msg);
			return tool_exit_code(&err);
		}
		t = now_seconds();
		if (i == 0)
			first = prev = cur;
		done = gained(cur.n[DS_PROVISIONED], prev.n[DS_PROVISIONED]);
		failed = gained(cur.n[DS_FAILED], prev.n[DS_FAILED]);
		done_total += done;
		failed_total += failed;
		dt = t - tprev;
		since = t - t0;
		left = on_the_way(&cur);
		localtime_r(&wall, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		if (json) {
			json_t *o = json_object(), *states = json_object();

			for (int s = DS_INVALID + 1; s < DS_COUNT; s++)
				if (cur.n[s])
					json_object_set_new(states,
							    device_state_name((enum device_state)s),
							    json_integer(cur.n[s]));
			/* ISO 8601 UTC, as every time in --json */
			json_object_set_new(o, "at", json_string(util_fmt_time(util_now(), iso,
										sizeof(iso))));
			json_object_set_new(o, "total", json_integer(cur.total));
			json_object_set_new(o, "states", states);
			json_object_set_new(o, "on_the_way", json_integer(left));
			json_object_set_new(o, "provisioned", json_integer(done_total));
			json_object_set_new(o, "failed", json_integer(failed_total));
			json_object_set_new(o, "seconds", json_real(since));
			json_object_set_new(o, "provisioned_per_second",
					    json_real(dt > 0 ? (double)done / dt : 0));
			json_object_set_new(o, "provisioned_per_second_overall",
					    json_real(since > 0 ? (double)done_total / since : 0));
			json_dumpf(o, stdout, JSON_COMPACT | JSON_SORT_KEYS);
			json_decref(o);
			putchar('\n');
		} else {
			if (tty)
				fputs("\033[H\033[J", stdout); /* redraw in place */
			printf("%s  %lld devices, %lld on the way\n", when, (long long)cur.total,
			       (long long)left);
			for (int s = DS_INVALID + 1; s < DS_COUNT; s++) {
				int64_t d = cur.n[s] - first.n[s];

				if (cur.n[s] || d)
					printf("  %-28s %6lld  (%+lld)\n",
					       device_state_name((enum device_state)s),
					       (long long)cur.n[s], (long long)d);
			}
			if (cur.n[DS_INVALID])
				printf("  %-28s %6lld\n", "(unknown state)",
				       (long long)cur.n[DS_INVALID]);
			printf("  provisioned %lld, failed %lld since the watch began (%.0f s); "
			       "%.2f/s now, %.2f/s overall",
			       (long long)done_total, (long long)failed_total, since,
			       dt > 0 ? (double)done / dt : 0.0,
			       since > 0 ? (double)done_total / since : 0.0);
			if (left && done_total && since > 0)
				printf("; about %.0f s left", (double)left * since / (double)done_total);
			printf("\n%s", tty ? "" : "\n");
		}
		fflush(stdout);
		prev = cur;
		tprev = t;
	}
	return EXIT_OK;
}
