/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file flow_table.h
 * @brief The one table of a device's transitions (flow_table.c): state x outcome -> next.
 *
 * A step handler (engine.h) runs for a runnable state; the engine first moves NEED_X to
 * X_ING. The handler ends with an outcome, never with a state: flow_end() (done, nothing
 * changed, again, the directory first), flow_end_wait() (a CA answered WAIT) or
 * flow_end_resume() (CA_WAITING hands the device back to the step that asked); the table
 * gives the next state. Failures stay engine_job_done(job, DS_INVALID, rc, why) (retried
 * with backoff when transient: back to NEED_X) and engine_job_fail() (FAILED). Events from
 * outside the steps (an administrator, the agent, the lifecycle tasks) are rows too, so
 * device_state_allowed() accepts exactly what the table holds plus the generic rules
 * (start, rewind, retry in place, fail, block, unprovision).
 * docs/states.md carries the table as rendered by flow_table_markdown() (unit test
 * flow_table checks that they agree).
 */
#ifndef AMTPROV_CORE_FLOW_TABLE_H
#define AMTPROV_CORE_FLOW_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "device_state.h"

struct engine_job;

enum flow_outcome {
	FLOW_DONE = 1,  /**< the step did its work: on to the next */
	FLOW_DIRECTORY, /**< REGISTERED: the site puts devices in a directory first */
	FLOW_KEPT,      /**< a lifecycle step changed nothing (refused, wireless, not due) */
	FLOW_AGAIN,     /**< the step's work must start over (a CA answered NEED_REKEY) */
	FLOW_WAIT,      /**< a CA answered WAIT: until the poll time */
	FLOW_RESUME,    /**< CA_WAITING: back to the step that asked, named by the request */
	/* events from outside the steps */
	FLOW_EV_UPDATE,     /**< the site's settings changed, or an administrator asked */
	FLOW_EV_RENEWAL,    /**< a certificate is due (evaluation task) */
	FLOW_EV_REGISTER,   /**< the agent registered the device again */
	FLOW_EV_RETRY,      /**< amtprov device retry */
	FLOW_EV_UNBLOCK,    /**< amtprov device unblock */
	FLOW_OUTCOME_COUNT
};

/** The state after @p from (an -ING state, REGISTERED, CA_WAITING or a resting state for
 * events) on @p o. For FLOW_RESUME, @p resume names the step, which must be in a row.
 * DS_INVALID when the table has no such row. */
enum device_state flow_table_next(enum device_state from, enum flow_outcome o,
				  enum device_state resume);
/** 1 when some row goes from @p from to @p to. */
int flow_table_allows(enum device_state from, enum device_state to);
/** The outcome's name as the table shows it ("done", "wait", ...). */
const char *flow_outcome_name(enum flow_outcome o);
/** The table as a Markdown table, malloc'd (docs/states.md holds it). NULL out of memory. */
char *flow_table_markdown(void);

/** Ends @p job with outcome @p o (FLOW_DONE, FLOW_DIRECTORY, FLOW_KEPT, FLOW_AGAIN). */
void flow_end(struct engine_job *job, enum flow_outcome o);
/** Ends @p job: a CA answered WAIT; the device waits until @p at. */
void flow_end_wait(struct engine_job *job, int64_t at);
/** Ends a CA_WAITING job: back to @p step, the state of the step that asked. */
void flow_end_resume(struct engine_job *job, enum device_state step);

#endif /* AMTPROV_CORE_FLOW_TABLE_H */
