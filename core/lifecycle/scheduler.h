/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file scheduler.h
 * @brief Maintenance tasks: each has a name, a schedule from the manifest and a run
 *        function; amtprovd runs them when due and on demand. Every run is recorded in the
 *        site database (maintenance_tasks: last run, result, detail, next run).
 *
 * On-demand runs ("amtprov task run NAME") are requests written to the database
 * (store_task_request); amtprovd's scheduler sees them within a second and runs the task in
 * its own process, where the plugins, transport and engine live. The CLI therefore never
 * runs a task itself and is safe to use while amtprovd runs. docs/lifecycle.md.
 *
 * Several hosts on one site database (issue 16): a due task is claimed first
 * (store_task_claim, a lease of engine.lease_seconds on its record), then its record is
 * read again (another host may have just run it) and only then run; the lease is renewed
 * every third of its life while a run goes on off the loop and given back when the run is
 * recorded. A host that dies mid-run stops renewing: another host runs the task once the
 * lease has run out. docs/database.md, "Several hosts".
 */
#ifndef AMTPROV_CORE_SCHEDULER_H
#define AMTPROV_CORE_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include <amtprov/error.h>

#include "engine.h"
#include "site.h"

#define TASK_EVALUATE_CERTS "evaluate-certificates"      /**< R-WS-03, R-8021X-06 */
#define TASK_PROVCERT_CHECK "provisioning-certificate"   /**< R-PC-06/07/08 */
#define TASK_REVOCATION_QUEUE "revocation-queue"         /**< R-REV-02..04 */

/** What a task reports back. */
struct task_result {
	int code;                       /**< AMTPROV_OK or the failure */
	int worked;                     /**< 1: it changed something (status 8300 is sent) */
	/** 1: the task goes on off the loop (engine_offload) and reports through
	 * sched_task_done(); only allowed when the env has a scheduler */
	int pending;
	char detail[STORE_TEXT_SIZE];
};

struct sched;

/** The context a task runs in (amtprovd's loop thread). */
struct task_env {
	struct site *site;
	struct engine *engine;          /**< kicked when a task queues device work; may be NULL */
	/** the scheduler that runs it; NULL (unit tests): every task finishes synchronously */
	struct sched *sched;
	/** this host's lease owner id (engine_config.host_id); NULL or "": no task leases
	 * (unit tests) */
	const char *host_id;
};

struct task_def {
	const char *name;
	const char *title;              /**< "Evaluate Provisioned AMT Computer Certificates" */
	void (*run)(const struct task_env *env, struct task_result *out);
};

/** The tasks (fixed order). */
const struct task_def *sched_tasks(size_t *count);
/** By name; NULL if unknown. */
const struct task_def *sched_task_find(const char *name);
/** A task's interval in seconds under @p m. */
int64_t sched_interval(const struct manifest *m, const char *name);

/** Due: never ran, next_run reached, or an on-demand request not yet served. */
int sched_is_due(const struct store_task *rec, int have_rec, int64_t now);

/**
 * Runs every due task once, in order, recording each run (a pending one when it reports
 * through sched_task_done). A task still running is not started again.
 * @return how many ran
 */
int sched_run_due(const struct task_env *env);

/** Checks for due tasks every second on the engine's event base (amtprovd). */
struct sched *sched_start(const struct task_env *env, struct amtprov_error *err);
/** The env the scheduler runs its tasks with (for amtprovd --once). */
const struct task_env *sched_env(struct sched *s);
/** A task that answered pending reports its result (on the loop thread). A run the
 * engine abandoned at shutdown never reports: it is simply due again after a restart. */
void sched_task_done(struct sched *s, const char *name, const struct task_result *res);
void sched_free(struct sched *s);

/* The tasks themselves (task_*.c, revoke.c). */
void task_evaluate_certificates(const struct task_env *env, struct task_result *out);
void task_provisioning_certificate(const struct task_env *env, struct task_result *out);
void task_revocation_queue(const struct task_env *env, struct task_result *out);

#endif /* AMTPROV_CORE_SCHEDULER_H */
