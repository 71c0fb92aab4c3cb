/* SPDX-License-Identifier: Apache-2.0 */
/*
 * amtprovd: the host process of a site. Loads the manifest, plugins and site database,
 * rewinds steps a crash interrupted, then runs the provisioning engine until SIGTERM or
 * SIGINT. SIGHUP reloads the manifest: a valid new one replaces the running
 * configuration; an invalid one is reported (status 8003) and the old one stays.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "api_metrics.h"
#include "engine.h"
#include "evlog.h"
#include "exit_codes.h"
#include "flow.h"
#include "lifecycle.h"
#include "log.h"
#include "scheduler.h"
#include "site.h"
#include "status.h"
#include "util.h"


struct daemon {
	const char *manifest;
	const char *pid_file;
	int once;
	int64_t once_timeout_ms;
	struct alog *log;
	struct site *site;
	struct engine *engine;
	struct flow *flow;
	struct api *api;
	struct metrics_listener *metrics; /* monitoring.metrics_listen */
	struct sched *sched;
	int reload;
	int stop;
	int fatal;       /* a reload left nothing running: exit 1 */
	struct event *sig_ev;
};

/* Signals are caught once for the whole process and turned into bytes on a pipe that each
 * engine's loop watches. Handlers are never reset while engines are swapped on reload, so
 * no signal is lost or falls back to its default action in between. */
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t got_stop, got_hup;

static void catch_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = sig;
	if (write(sig_pipe[1], &c, 1) < 0) {
		/* Pipe full: the flags above already carry the signal. */
	}
	errno = saved;
}

static int install_signals(void)
{
	struct sigaction sa;

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = catch_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* Moves caught signals into the daemon's state; true if the loop must stop. */
static int take_signals(struct daemon *d)
{
	char buf[64];

	while (read(sig_pipe[0], buf, sizeof(buf)) > 0)
		;
	if (got_hup) {
		got_hup = 0;
		d->reload = 1;
		alog(d->log, AMTPROV_LOG_NOTICE, "SIGHUP: reloading %s", d->manifest);
	}
	if (got_stop && !d->stop) {
		d->stop = 1;
		alog(d->log, AMTPROV_LOG_NOTICE, "signal %d: stopping", (int)got_stop);
	}
	return d->reload || d->stop;
}

static void usage(FILE *out)
{
	fputs("Usage: amtprovd -m MANIFEST [OPTIONS]\n"
	      "Runs the amtprov provisioning engine for one site.\n"
	      "\n"
	      "  -m, --manifest FILE     site manifest (default: $AMTPROV_MANIFEST)\n"
	      "  -l, --log-level LEVEL   error, warning, notice, info (default), debug\n"
	      "  -s, --syslog            log to syslog instead of stderr\n"
	      "  -p, --pid-file FILE     write the process ID to FILE (removed on exit)\n"
	      "      --once[=SECONDS]    run due maintenance tasks and work until nothing is due,\n"
	      "                          then exit (default limit 600 s)\n"
	      "  -h, --help              show this help and exit\n"
	      "  -V, --version           show the version and exit\n"
	      "\n"
	      "Signals: SIGTERM/SIGINT stop cleanly; SIGHUP reloads the manifest.\n"
	      "Tests only: AMTPROV_TEST_CLOCK_FILE names a file holding the Unix time to use.\n"
	      "The site database is created on first start if it does not exist.\n"
	      "Exit status: 0 clean stop, 1 failure, 2 usage, 3 invalid manifest, 4 database\n"
	      "error, 5 plugin could not be loaded. Exit status 6 (busy, try again later) is\n"
	      "amtprov's only: amtprovd never exits with it.\n",
	      out);
}

/* Opens the site and everything that hangs off it. */
/* Opens (validates, loads plugins, creates instances) without starting the plugins. */
static int open_site_unstarted(struct daemon *d, struct site **site, struct amtprov_error *err)
{
	/* The passwords the site sets on AMT are read and checked now, at start and at every
	 * reload, before any device is touched (docs/manifest.md "AMT passwords"). */
	struct site_options opt = {
		.manifest = d->manifest,
		.flags = SITE_CREATE_DB | SITE_CHECK_AMT_PASSWORDS,
		.log = d->log};
	struct manifest_problems probs = {0};
	int rc;

	rc = site_open(&opt, site, &probs, err);
	for (size_t i = 0; i < probs.count; i++)
		alog(d->log, probs.items[i].warning ? AMTPROV_LOG_WARNING : AMTPROV_LOG_ERROR,
		     "%s: %s: %s", d->manifest, probs.items[i].path[0] ? probs.items[i].path : "(document)",
		     probs.items[i].msg);
	manifest_problems_free(&probs);
	return rc;
}

static int start_site(struct daemon *d, struct site **site, struct amtprov_error *err)
{
	int rc = open_site_unstarted(d, site, err);

	if (rc)
		return rc;
	rc = plugin_host_start_all(site_plugins(*site), err);
	if (rc) {
		site_close(*site);
		*site = NULL;
	}
	return rc;
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	if (take_signals(d))
		engine_stop(d->engine);
}

static void drop_signals(struct daemon *d)
{
	if (d->sig_ev)
		event_free(d->sig_ev);
	d->sig_ev = NULL;
}

static void engine_status(void *site, uint32_t id, const char *device, const char *detail)
{
	site_status(site, id, device, detail);
}

static int start_engine(struct daemon *d, struct amtprov_error *err)
{
	struct manifest *m = site_manifest(d->site);
	static char host_id[STORE_SHORT_SIZE];
	struct engine_config cfg = {
		.max_in_flight = m->engine.max_in_flight,
		.max_starting = m->engine.max_starting,
		.workers = m->engine.ca_workers,
		.retry_base_seconds = m->engine.retry_base_seconds,
		.retry_max_seconds = m->engine.retry_max_seconds,
		.max_attempts = m->engine.max_attempts,
		.crash_loop_limit = m->engine.crash_loop_limit,
		.actor = "amtprovd",
		.host_id = host_id,
		.lease_seconds = m->engine.lease_seconds,
	};
	struct event_base *base;
	int rewound = 0, rc;

	/* The lease owner: unique per host on a shared database (docs/database.md). */
	if (getenv("AMTPROV_HOST_ID") && getenv("AMTPROV_HOST_ID")[0])
		util_strlcpy(host_id, getenv("AMTPROV_HOST_ID"), sizeof(host_id));
	else if (gethostname(host_id, sizeof(host_id) - 1) != 0 || !host_id[0])
		util_strlcpy(host_id, "amtprovd", sizeof(host_id));
	alog(d->log, AMTPROV_LOG_INFO, "host id (device and task leases): %s", host_id);

	d->engine = engine_new(site_store(d->site), d->log, &cfg, site_clock, d->site,
			       engine_status, d->site, err);
	if (!d->engine)
		return err->code ? err->code : AMTPROV_E_NOMEM;
	d->flow = flow_new(d->site);
	if (!d->flow)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	rc = flow_register(d->engine, d->flow, err);
	if (rc == AMTPROV_OK)
		rc = lifecycle_register(d->engine, d->flow, err);
	if (rc)
		return rc;
	rc = engine_recover(d->engine, &rewound, err);
	if (rc)
		return rc;
	if (rewound)
		alog(d->log, AMTPROV_LOG_NOTICE, "rewound %d interrupted step%s", rewound,
		     rewound == 1 ? "" : "s");
	base = engine_base(d->engine);
	d->sig_ev = event_new(base, sig_pipe[0], EV_READ | EV_PERSIST, on_signal, d);
	if (!d->sig_ev || event_add(d->sig_ev, NULL) < 0)
		return amtprov_error_set(err, AMTPROV_E_INTERNAL, NULL, "cannot watch for signals");
	/* Maintenance tasks are checked every second on the engine's base (docs/lifecycle.md). */
	{
		struct task_env env = {.site = d->site, .engine = d->engine, .host_id = host_id};

		d->sched = sched_start(&env, err);
		if (!d->sched)
			return err->code ? err->code : AMTPROV_E_NOMEM;
	}
	/* The registration API lives on the engine's event base and kicks the engine, so it
	 * starts after the engine (and is freed before it, in stop_engine); so does the metrics
	 * listener. */
	rc = api_start(d->site, d->engine, &d->api, err);
	if (rc == AMTPROV_OK)
		rc = metrics_listener_start(d->site, base, &d->metrics, err);
	return rc;
}

static void stop_engine(struct daemon *d)
{
	drop_signals(d);
	/* The API first: its connections live on the engine's base and its handlers call the
	 * engine, so no request may arrive once the engine starts going away. */
	api_free(d->api);
	d->api = NULL;
	metrics_listener_free(d->metrics);
	d->metrics = NULL;
	sched_free(d->sched);
	d->sched = NULL;
	/* Jobs still in flight stay in their -ING state, rewound by the next recover. The flow
	 * (and its transport loop, which watches the engine's event base) goes before the
	 * engine frees that base. */
	engine_shutdown(d->engine);
	flow_free(d->flow);
	d->flow = NULL;
	engine_free(d->engine);
	d->engine = NULL;
}

/* Every API client, device session and database handle is a descriptor, and the soft
 * limit is often 1024: raise it to the hard limit, as servers commonly do. The API's
 * default connection cap is sized from the result (docs/api.md). */
static void raise_file_limit(struct alog *log)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		alog(log, AMTPROV_LOG_WARNING, "cannot raise the open-files limit: %s",
		     strerror(errno));
	else
		alog(log, AMTPROV_LOG_DEBUG, "open-files limit raised from %llu to %llu",
		     (unsigned long long)was, (unsigned long long)rl.rlim_cur);
}

static int write_pid_file(const char *path)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

	if (fd < 0)
		return -1;
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/*
 * SIGHUP: the new manifest must load in full before the running one is dropped. Plugins
 * hand over: the new instances are created first (configuration checked), then the running
 * ones stop and the new ones start, so a listener (ca-local's CRL port) is free when its
 * successor binds it. If a new instance cannot start, the running ones start again.
 */
static void do_reload(struct daemon *d)
{
	struct site *fresh = NULL;
	struct amtprov_error err;
	char msg[512];

	amtprov_error_clear(&err);
	stop_engine(d);
	if (open_site_unstarted(d, &fresh, &err) != AMTPROV_OK)
		goto failed;
	plugin_host_stop_all(site_plugins(d->site));
	if (plugin_host_start_all(site_plugins(fresh), &err) != AMTPROV_OK) {
		struct amtprov_error again;

		site_close(fresh); /* stops what did start */
		fresh = NULL;
		amtprov_error_clear(&again);
		if (plugin_host_start_all(site_plugins(d->site), &again) != AMTPROV_OK) {
			alog(d->log, AMTPROV_LOG_ERROR,
			     "reload failed and the running configuration cannot start again: "
			     "%s: %s", again.where, again.msg);
			d->stop = d->fatal = 1;
		}
		goto failed;
	}
	site_close(d->site);
	d->site = fresh;
	site_status(d->site, STATUS_DAEMON_RELOADED, NULL, d->manifest);
	goto restart;
failed:
	snprintf(msg, sizeof(msg), "%s: %s", err.where, err.msg);
	alog(d->log, AMTPROV_LOG_ERROR, "reload failed, keeping the running configuration: %s",
	     msg);
	site_status(d->site, STATUS_RELOAD_FAILED, NULL, msg);
	if (d->stop)
		return;
restart:
	amtprov_error_clear(&err);
	if (start_engine(d, &err) != AMTPROV_OK) {
		alog(d->log, AMTPROV_LOG_ERROR, "cannot restart the engine: %s", err.msg);
		d->stop = d->fatal = 1;
	}
}

/* --once: due maintenance tasks, then the engine until idle; again while a round started
 * new work (a task queues devices, a step queues revocations), a few rounds at most. */
static int run_once(struct daemon *d)
{
	struct amtprov_error err;

	for (int round = 0; round < 4; round++) {
		int ran = sched_run_due(sched_env(d->sched));

		amtprov_error_clear(&err);
		if (engine_run_until_idle(d->engine, d->once_timeout_ms, &err) != AMTPROV_OK) {
			alog(d->log, AMTPROV_LOG_ERROR, "%s", err.msg);
			return EXIT_FAIL;
		}
		if (round > 0 && !ran)
			break;
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"manifest", required_argument, NULL, 'm'},
					     {"log-level", required_argument, NULL, 'l'},
					     {"syslog", no_argument, NULL, 's'},
					     {"pid-file", required_argument, NULL, 'p'},
					     {"once", optional_argument, NULL, 'o'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {0}};
	struct daemon d = {.manifest = getenv("AMTPROV_MANIFEST"), .once_timeout_ms = 600000};
	struct amtprov_error err;
	int level = AMTPROV_LOG_INFO, use_syslog = 0, o, rc = EXIT_OK;
	long long secs;

	while ((o = getopt_long(argc, argv, "m:l:sp:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'm': d.manifest = optarg; break;
		case 'l':
			level = alog_level_parse(optarg);
			if (level < 0 || level > AMTPROV_LOG_DEBUG) {
				fprintf(stderr, "amtprovd: unknown log level '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 's': use_syslog = 1; break;
		case 'p': d.pid_file = optarg; break;
		case 'o':
			d.once = 1;
			if (optarg) {
				if (util_parse_ll(optarg, 1, 86400, &secs) < 0) {
					fprintf(stderr, "amtprovd: --once takes seconds (1..86400)\n");
					return EXIT_USAGE;
				}
				d.once_timeout_ms = secs * 1000;
			}
			break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': printf("amtprovd %s (plugin ABI %d.%d)\n", AMTPROV_VERSION, AMTPROV_ABI_MAJOR,
				 AMTPROV_ABI_MINOR);
			return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc || !d.manifest || !*d.manifest) {
		if (optind != argc)
			fprintf(stderr, "amtprovd: unexpected argument '%s'\n", argv[optind]);
		else
			fprintf(stderr, "amtprovd: no manifest: use -m FILE or set AMTPROV_MANIFEST\n");
		return EXIT_USAGE;
	}
	d.log = alog_new("amtprovd", level, use_syslog ? ALOG_SYSLOG : ALOG_STDERR);
	if (!d.log)
		return EXIT_FAIL;
	evlog_route(d.log);
	raise_file_limit(d.log);
	if (install_signals() < 0) {
		alog(d.log, AMTPROV_LOG_ERROR, "cannot install signal handlers: %s", strerror(errno));
		alog_free(d.log);
		return EXIT_FAIL;
	}
	amtprov_error_clear(&err);
	if (start_site(&d, &d.site, &err) != AMTPROV_OK) {
		alog(d.log, AMTPROV_LOG_ERROR, "%s%s%s", err.where, err.where[0] ? ": " : "", err.msg);
		rc = tool_exit_code(&err);
		goto out;
	}
	if (start_engine(&d, &err) != AMTPROV_OK) {
		alog(d.log, AMTPROV_LOG_ERROR, "%s%s%s", err.where, err.where[0] ? ": " : "",
		     err.msg);
		rc = err.code == AMTPROV_E_CONFIG ? EXIT_CONFIG : EXIT_FAIL;
		goto out;
	}
	if (d.pid_file && write_pid_file(d.pid_file) < 0)
		alog(d.log, AMTPROV_LOG_WARNING, "cannot write pid file %s: %s", d.pid_file,
		     strerror(errno));
	site_status(d.site, STATUS_DAEMON_STARTED, NULL, d.manifest);
	alog(d.log, AMTPROV_LOG_NOTICE, "site %s: serving (database %s)",
	     site_manifest(d.site)->site_name, site_manifest(d.site)->database_path);

	while (!d.stop) {
		/* A signal that arrived while no loop was watching (during a reload). */
		take_signals(&d);
		if (d.stop)
			break;
		if (d.reload) {
			d.reload = 0;
			do_reload(&d);
			continue;
		}
		amtprov_error_clear(&err);
		if (d.once) {
			rc = run_once(&d);
			break;
		}
		if (engine_run(d.engine, &err) != AMTPROV_OK) {
			alog(d.log, AMTPROV_LOG_ERROR, "%s", err.msg);
			rc = EXIT_FAIL;
			break;
		}
	}
	if (d.fatal)
		rc = EXIT_FAIL;
	site_status(d.site, STATUS_DAEMON_STOPPED, NULL, "");
out:
	if (d.engine)
		stop_engine(&d);
	if (d.site)
		plugin_host_stop_all(site_plugins(d.site));
	site_close(d.site);
	if (d.pid_file)
		unlink(d.pid_file);
	evlog_route(NULL);
	alog_free(d.log);
	return rc;
}
