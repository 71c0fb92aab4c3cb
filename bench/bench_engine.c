/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Engine benchmark: how fast the core moves N devices through persisted states, and what
 * that costs in CPU and memory, with no AMT or CA work at all. Each device takes three
 * steps (one of them a blocking call on the worker pool), i.e. six committed transitions
 * with their audit rows. This is the floor under every provisioning figure: whatever the
 * transport and CA add comes on top of it.
 *
 * Usage: bench_engine [DEVICES...]   (default 1000 10000). Prints figures; asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "store.h"
#include "util.h"

static void quiet(void *ctx, int level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

static void step_registered(struct engine_job *job, void *ctx)
{
	engine_job_done(job, DS_NEED_DEVICE_CHECK, AMTPROV_OK, NULL);
}

static int blocking(void *arg, struct amtprov_error *err)
{
	return AMTPROV_OK;
}

static void blocking_done(struct engine_job *job, int rc, const struct amtprov_error *err,
			  void *arg)
{
	engine_job_done(job, DS_NEED_CERTIFICATE, rc, NULL);
}

static void step_check(struct engine_job *job, void *ctx)
{
	struct amtprov_error err;

	amtprov_error_clear(&err);
	if (engine_job_blocking(job, blocking, blocking_done, NULL, &err) != AMTPROV_OK)
		engine_job_done(job, DS_INVALID, err.code, err.msg);
}

static void step_cert(struct engine_job *job, void *ctx)
{
	engine_job_done(job, DS_NEED_FIRST_STAGE, AMTPROV_OK, NULL);
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static long max_rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static int run(int n)
{
	char dir[] = "/tmp/amtprov-bench-XXXXXX", db[64];
	struct store *st = NULL;
	struct amtprov_error err;
	struct alog *lg = alog_new("bench", AMTPROV_LOG_ERROR, ALOG_STDERR);
	struct engine_config cfg = {.max_in_flight = 256, .workers = 4, .actor = "bench"};
	struct engine *e;
	double t0, c0, secs, cpu;

	alog_set_callback(lg, quiet, NULL);
	if (!mkdtemp(dir))
		return 1;
	snprintf(db, sizeof(db), "%s/site.db", dir);
	amtprov_error_clear(&err);
	if (store_open(db, STORE_OPEN_CREATE, &st, &err) != AMTPROV_OK) {
		fprintf(stderr, "bench: %s\n", err.msg);
		return 1;
	}
	store_tx_begin(st, &err);
	for (int i = 0; i < n; i++) {
		struct store_device d;

		memset(&d, 0, sizeof(d));
		snprintf(d.fqdn, sizeof(d.fqdn), "pc%06d.contoso.com", i);
		snprintf(d.uuid, sizeof(d.uuid), "00000000-0000-4000-8000-%012d", i);
		snprintf(d.amt_version, sizeof(d.amt_version), "11.8.50");
		snprintf(d.state, sizeof(d.state), "REGISTERED");
		if (store_device_add(st, &d, "bench", util_now(), &err) != AMTPROV_OK) {
			fprintf(stderr, "bench: %s\n", err.msg);
			return 1;
		}
	}
	store_tx_commit(st, &err);
	e = engine_new(st, lg, &cfg, NULL, NULL, NULL, NULL, &err);
	engine_set_handler(e, DS_REGISTERED, step_registered, NULL);
	engine_set_handler(e, DS_NEED_DEVICE_CHECK, step_check, NULL);
	engine_set_handler(e, DS_NEED_CERTIFICATE, step_cert, NULL);
	t0 = (double)util_monotonic_ms() / 1000.0;
	c0 = cpu_seconds();
	if (engine_run_until_idle(e, 3600 * 1000, &err) != AMTPROV_OK)
		fprintf(stderr, "bench: %s\n", err.msg);
	secs = (double)util_monotonic_ms() / 1000.0 - t0;
	cpu = cpu_seconds() - c0;
	printf("engine  devices=%-6d  wall=%7.2f s  devices/s=%8.1f  transitions/s=%8.1f  "
	       "cpu/device=%6.3f ms  peak_rss=%ld KiB\n",
	       n, secs, n / secs, 6.0 * n / secs, 1000.0 * cpu / n, max_rss_kib());
	engine_free(e);
	store_close(st);
	alog_free(lg);
	unlink(db);
	snprintf(db, sizeof(db), "%s/site.db-wal", dir);
	unlink(db);
	snprintf(db, sizeof(db), "%s/site.db-shm", dir);
	unlink(db);
	rmdir(dir);
	return 0;
}

int main(int argc, char **argv)
{
	static const int defaults[] = {1000, 10000};

	printf("# amtprov engine benchmark: 3 steps (6 committed transitions + audit) per device,\n"
	       "# max_in_flight=256, 4 workers, SQLite WAL synchronous=FULL on %s\n",
	       getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			long long n;

			if (util_parse_ll(argv[i], 1, 1000000, &n) < 0) {
				fprintf(stderr, "usage: bench_engine [DEVICES...]\n");
				return 2;
			}
			if (run((int)n))
				return 1;
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (run(defaults[i]))
			return 1;
	return 0;
}
