/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every transition a device makes, in one table (flow_table.h). Read it top to bottom to
 * follow a device: registration, provisioning, the lifecycle, and the events from outside
 * the steps. Besides these rows only the generic rules hold (device_state.c): a step
 * starts (NEED_X -> X_ING), a transient failure goes back (X_ING -> NEED_X, with backoff),
 * a permanent one to FAILED, a block from anywhere to BLOCKED, an unprovision request to
 * NEED_UNPROVISION.
 */
#include "flow_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "util.h"

struct flow_row {
	enum device_state from;
	enum flow_outcome outcome;
	enum device_state to;
	const char *what; /* why the row exists, for docs/states.md */
};

static const struct flow_row rows[] = {
	/* ---- provisioning ---- */
	{DS_REGISTERED, FLOW_DONE, DS_NEED_DEVICE_CHECK, "registered by its agent"},
	{DS_REGISTERED, FLOW_DIRECTORY, DS_NEED_DIRECTORY_ACCOUNT,
	 "the site has a directory plugin (R-PROV-04)"},
	{DS_CREATING_DIRECTORY_ACCOUNT, FLOW_DONE, DS_NEED_DEVICE_CHECK,
	 "computer account created or found"},
	{DS_CHECKING_DEVICE, FLOW_DONE, DS_NEED_CERTIFICATE,
	 "setup state, OTP and hashes checked (R-PROV-01/05)"},
	{DS_REQUESTING_CERTIFICATE, FLOW_DONE, DS_NEED_FIRST_STAGE,
	 "web server certificate issued and recorded (R-PROV-06)"},
	{DS_REQUESTING_CERTIFICATE, FLOW_WAIT, DS_CA_WAITING, "the CA answered WAIT"},
	{DS_REQUESTING_CERTIFICATE, FLOW_AGAIN, DS_NEED_CERTIFICATE,
	 "the CA answered NEED_REKEY: a new key and request"},
	{DS_CA_WAITING, FLOW_DONE, DS_NEED_FIRST_STAGE,
	 "the web server certificate polled, issued and recorded"},
	{DS_CA_WAITING, FLOW_WAIT, DS_CA_WAITING, "still pending at the CA"},
	{DS_CA_WAITING, FLOW_AGAIN, DS_NEED_CERTIFICATE,
	 "NEED_REKEY, or no request on record: ask again"},
	{DS_CA_WAITING, FLOW_RESUME, DS_NEED_8021X,
	 "the poll time of an 802.1X request: its step polls"},
	{DS_CA_WAITING, FLOW_RESUME, DS_NEED_UPDATE,
	 "the poll time of an update's 802.1X request: the update polls"},
	{DS_CA_WAITING, FLOW_RESUME, DS_NEED_RENEWAL,
	 "the poll time of a renewal's request: the renewal polls"},
	{DS_CONFIGURING_FIRST_STAGE, FLOW_DONE, DS_NEED_COMMIT,
	 "time, host name, key, certificate, TLS, passwords (R-PROV-10 1-5)"},
	{DS_COMMITTING, FLOW_DONE, DS_NEED_SECOND_STAGE,
	 "CommitChanges: AMT is post-provisioning (R-PROV-10 6)"},
	{DS_CONFIGURING_SECOND_STAGE, FLOW_DONE, DS_NEED_8021X,
	 "ACLs, Kerberos, power, redirection, ping (R-PROV-11 1-2)"},
	{DS_CONFIGURING_8021X, FLOW_DONE, DS_PROVISIONED,
	 "802.1X client certificates and profiles bound, or none configured (R-PROV-11 3)"},
	{DS_CONFIGURING_8021X, FLOW_WAIT, DS_CA_WAITING, "an 802.1X CA answered WAIT"},
	{DS_CONFIGURING_8021X, FLOW_AGAIN, DS_NEED_8021X,
	 "an 802.1X CA answered NEED_REKEY"},
	/* ---- lifecycle ---- */
	{DS_PROVISIONED, FLOW_EV_UPDATE, DS_NEED_UPDATE,
	 "the site's AMT settings changed, or an administrator asked (R-REV-03)"},
	{DS_PROVISIONED, FLOW_EV_RENEWAL, DS_NEED_RENEWAL,
	 "a certificate is due (R-WS-03, R-8021X-06)"},
	{DS_UPDATING, FLOW_DONE, DS_PROVISIONED,
	 "settings and 802.1X applied again (R-REV-03, R-REV-04)"},
	{DS_UPDATING, FLOW_WAIT, DS_CA_WAITING, "an 802.1X CA answered WAIT"},
	{DS_UPDATING, FLOW_AGAIN, DS_NEED_UPDATE, "an 802.1X CA answered NEED_REKEY"},
	{DS_RENEWING, FLOW_DONE, DS_PROVISIONED, "new certificates in AMT, the old revoked"},
	{DS_RENEWING, FLOW_KEPT, DS_PROVISIONED,
	 "nothing due, over wireless (R-WS-04), or refused by the CA: tried again later"},
	{DS_RENEWING, FLOW_WAIT, DS_CA_WAITING, "the CA answered WAIT"},
	{DS_RENEWING, FLOW_AGAIN, DS_NEED_RENEWAL, "an 802.1X CA answered NEED_REKEY"},
	{DS_UNPROVISIONING, FLOW_DONE, DS_UNPROVISIONED,
	 "AMT unprovisioned, certificates revoked, account removed (R-REV-02a)"},
	/* ---- events from outside the steps ---- */
	{DS_UNPROVISIONED, FLOW_EV_REGISTER, DS_REGISTERED, "registered again by its agent"},
	{DS_FAILED, FLOW_EV_RETRY, DS_REGISTERED, "amtprov device retry"},
	{DS_BLOCKED, FLOW_EV_UNBLOCK, DS_NEED_UNPROVISION,
	 "unblocked: AMT may hold the site's settings (R-REV-02d)"},
	{DS_BLOCKED, FLOW_EV_UNBLOCK, DS_UNPROVISIONED, "unblocked, never provisioned"},
};
#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

static const char *const outcome_names[FLOW_OUTCOME_COUNT] = {
	[FLOW_DONE] = "done",
	[FLOW_DIRECTORY] = "directory first",
	[FLOW_KEPT] = "nothing changed",
	[FLOW_AGAIN] = "again",
	[FLOW_WAIT] = "wait",
	[FLOW_RESUME] = "resume",
	[FLOW_EV_UPDATE] = "event: update",
	[FLOW_EV_RENEWAL] = "event: renewal due",
	[FLOW_EV_REGISTER] = "event: registered",
	[FLOW_EV_RETRY] = "event: retry",
	[FLOW_EV_UNBLOCK] = "event: unblock",
};

const char *flow_outcome_name(enum flow_outcome o)
{
	return (int)o > 0 && o < FLOW_OUTCOME_COUNT && outcome_names[o] ? outcome_names[o] : "?";
}

enum device_state flow_table_next(enum device_state from, enum flow_outcome o,
				  enum device_state resume)
{
	for (size_t i = 0; i < N_ROWS; i++)
		if (rows[i].from == from && rows[i].outcome == o &&
		    (o != FLOW_RESUME || rows[i].to == resume))
			return rows[i].to;
	return DS_INVALID;
}

int flow_table_allows(enum device_state from, enum device_state to)
{
	for (size_t i = 0; i < N_ROWS; i++)
		if (rows[i].from == from && rows[i].to == to)
			return 1;
	return 0;
}

char *flow_table_markdown(void)
{
	size_t cap = 256 + N_ROWS * 200, len = 0;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	len = (size_t)snprintf(out, cap, "| from | outcome | to | when |\n| --- | --- | --- | --- |\n");
	for (size_t i = 0; i < N_ROWS; i++) {
		int n = snprintf(out + len, cap - len, "| %s | %s | %s | %s |\n",
				 device_state_name(rows[i].from), flow_outcome_name(rows[i].outcome),
				 device_state_name(rows[i].to), rows[i].what);

		if (n < 0 || (size_t)n >= cap - len) {
			free(out);
			return NULL;
		}
		len += (size_t)n;
	}
	return out;
}

/* The state a job's outcome is taken from: X_ING for a NEED_X job, else the job's. */
static enum device_state job_from(struct engine_job *job)
{
	return device_state_doing(engine_job_state(job));
}

static void no_row(struct engine_job *job, enum flow_outcome o)
{
	char why[160];

	snprintf(why, sizeof(why), "the flow table has no row %s x %s",
		 device_state_name(job_from(job)), flow_outcome_name(o));
	engine_job_fail(job, AMTPROV_E_INTERNAL, why);
}

/* Ends @p job with outcome @p o (@p resume for FLOW_RESUME; @p at > 0: not before then). */
static void end(struct engine_job *job, enum flow_outcome o, enum device_state resume,
		int64_t at)
{
	enum device_state next = flow_table_next(job_from(job), o, resume);

	if (next == DS_INVALID)
		no_row(job, o);
	else if (at > 0)
		engine_job_defer(job, next, at);
	else
		engine_job_done(job, next, AMTPROV_OK, NULL);
}

void flow_end(struct engine_job *job, enum flow_outcome o)
{
	end(job, o, DS_INVALID, 0);
}

void flow_end_wait(struct engine_job *job, int64_t at)
{
	end(job, FLOW_WAIT, DS_INVALID, at > 0 ? at : 1);
}

void flow_end_resume(struct engine_job *job, enum device_state step)
{
	end(job, FLOW_RESUME, step, 0);
}
