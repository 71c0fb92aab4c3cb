/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the agent asks the firmware, one AMTHI call at a time over mei_dev, with every
 * failure sorted into the agent's exit classes (docs/agent.md, "Exit status").
 */
#ifndef AMTPROV_AGENT_AMT_HOST_H
#define AMTPROV_AGENT_AMT_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mei_dev.h"
#include "mei_msg.h"

/* Exit status of amtprov-agent (docs/man/amtprov-agent.8). */
enum agent_exit {
	AGENT_OK = 0,
	AGENT_FAIL = 1,        /* the operation failed (a malformed answer, server unreachable) */
	AGENT_USAGE = 2,
	AGENT_NO_MEI = 3,      /* no MEI device or driver (or not allowed to open it) */
	AGENT_DISABLED = 4,    /* AMT is not there or is disabled (no AMTHI client, empty answers) */
	AGENT_PROVISIONED = 5, /* AMT is already provisioned (R-PROV-01) */
	AGENT_BUSY = 6,        /* firmware or server busy: try again later */
	AGENT_REFUSED = 7,     /* the server refused the registration */
};

struct amt_host {
	struct mei_dev dev;
	char err[600];
};

struct amt_info {
	struct amthi_code_versions cv;
	uint32_t state;           /* 0 pre, 1 in, 2 post */
	uint32_t mode;            /* 0 none, 1 CCM, 2 ACM */
	bool mode_known;          /* GetControlMode exists from AMT 7.0 */
	char uuid[37];
	char dns_suffix[AMTHI_DNS_SUFFIX_MAX + 1];
	struct amthi_lan lan[2];  /* wired, wireless */
	bool lan_known[2];
	unsigned n_hashes;
	struct amthi_hash_entry hashes[AMTHI_HASH_MAX];
};

/** Opens PATH and connects to the AMTHI client. @return an agent_exit, message in h->err. */
int ah_open(struct amt_host *h, const char *path, int timeout_ms);
void ah_close(struct amt_host *h);

/** One request; on AGENT_OK *@p status and the body (inside @p resp) are set. An empty
 * answer is AGENT_DISABLED, a malformed one AGENT_FAIL. */
int ah_call(struct amt_host *h, const uint8_t *req, size_t len, uint32_t command,
	    uint8_t resp[AMTHI_MAX_MSG], uint32_t *status, const uint8_t **body, size_t *blen);

/** The exit class of a failure status (NOT_READY and the RNG/certificate-not-ready ones are
 * AGENT_BUSY, INVALID_AMT_MODE AGENT_PROVISIONED when @p mode_means_provisioned). */
int ah_status_class(uint32_t status, bool mode_means_provisioned);

/** Reads everything `info` shows (hashes only when @p hashes). @return an agent_exit. */
int ah_info(struct amt_host *h, struct amt_info *info, bool hashes);

/** A call whose answer is a status only (SetProvisioningServerOTP, Start/StopConfiguration).
 * @return AGENT_OK and *@p status (maybe a failure status), or a transport/format class. */
int ah_status_call(struct amt_host *h, const uint8_t *req, size_t len, uint32_t command,
		   uint32_t *status);

const char *ah_state_name(uint32_t state);  /* "pre", "in", "post" */
const char *ah_mode_name(uint32_t mode);    /* "none", "ccm", "acm" */

#endif
