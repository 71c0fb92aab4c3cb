/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's firmware calls (amt_host.h). */
#include "amt_host.h"

#include <stdio.h>
#include <string.h>

int ah_open(struct amt_host *h, const char *path, int timeout_ms)
{
	int rc;

	memset(h, 0, sizeof(*h));
	rc = mei_open(&h->dev, path, timeout_ms, h->err, sizeof(h->err));
	switch (rc) {
	case MEI_OK:
		return AGENT_OK;
	case MEI_ENODEV:
	case MEI_EACCES:
		return AGENT_NO_MEI;
	case MEI_ENOCLIENT:
		return AGENT_DISABLED;
	case MEI_EBUSY:
		return AGENT_BUSY;
	default:
		return AGENT_FAIL;
	}
}

void ah_close(struct amt_host *h)
{
	mei_close(&h->dev);
}

int ah_call(struct amt_host *h, const uint8_t *req, size_t len, uint32_t command,
	    uint8_t resp[AMTHI_MAX_MSG], uint32_t *status, const uint8_t **body, size_t *blen)
{
	char why[300];
	size_t n = 0;
	int rc;

	if (!len) {
		snprintf(h->err, sizeof(h->err), "cannot encode command 0x%08x", command);
		return AGENT_FAIL;
	}
	rc = mei_call(&h->dev, req, len, resp, AMTHI_MAX_MSG, &n, why, sizeof(why));
	if (rc != MEI_OK) {
		snprintf(h->err, sizeof(h->err), "command 0x%08x: %s", command, why);
		return rc == MEI_EBUSY || rc == MEI_ETIMEDOUT ? AGENT_BUSY : AGENT_FAIL;
	}
	if (n == 0) {
		/* What the kernel's mei-amt-version sample reads as "Intel AMT: DISABLED". */
		snprintf(h->err, sizeof(h->err), "the firmware answered command 0x%08x with an "
			 "empty message: AMT is disabled (BIOS or MEBx)", command);
		return AGENT_DISABLED;
	}
	if (amthi_parse_response(resp, n, command, status, body, blen, why, sizeof(why))) {
		snprintf(h->err, sizeof(h->err), "malformed answer to command 0x%08x: %s", command,
			 why);
		return AGENT_FAIL;
	}
	return AGENT_OK;
}

int ah_status_class(uint32_t status, bool mode_means_provisioned)
{
	switch (status) {
	case AMT_STATUS_SUCCESS:
		return AGENT_OK;
	case AMT_STATUS_NOT_READY:
	case AMT_STATUS_RNG_GENERATION_IN_PROGRESS:
	case AMT_STATUS_RNG_NOT_READY:
	case AMT_STATUS_CERTIFICATE_NOT_READY:
		return AGENT_BUSY;
	case AMT_STATUS_INVALID_AMT_MODE:
		return mode_means_provisioned ? AGENT_PROVISIONED : AGENT_FAIL;
	default:
		return AGENT_FAIL;
	}
}

/* A call whose success body the caller decodes; a failure status is an error here. */
static int get(struct amt_host *h, const uint8_t *req, size_t len, uint32_t command,
	       uint8_t resp[AMTHI_MAX_MSG], const uint8_t **body, size_t *blen, uint32_t *status)
{
	char sn[32];
	int rc = ah_call(h, req, len, command, resp, status, body, blen);

	if (rc != AGENT_OK || *status == AMT_STATUS_SUCCESS)
		return rc;
	snprintf(h->err, sizeof(h->err), "command 0x%08x failed: %s%s", command,
		 amthi_status_name(*status, sn, sizeof(sn)),
		 *status == AMT_STATUS_NOT_READY ? " (the firmware is busy: try again later)" : "");
	return ah_status_class(*status, false);
}

static int decoded(struct amt_host *h, int bad, const char *what, const char *why)
{
	if (!bad)
		return AGENT_OK;
	snprintf(h->err, sizeof(h->err), "malformed %s answer: %s", what, why);
	return AGENT_FAIL;
}

int ah_info(struct amt_host *h, struct amt_info *info, bool hashes)
{
	uint8_t req[64], resp[AMTHI_MAX_MSG];
	const uint8_t *b;
	size_t bl, n;
	uint32_t st;
	char why[300];
	int rc;

	memset(info, 0, sizeof(*info));
#define GET(cmd, reqlen)                                                              \
	do {                                                                          \
		rc = get(h, req, (reqlen), (cmd), resp, &b, &bl, &st);                \
		if (rc != AGENT_OK)                                                   \
			return rc;                                                    \
	} while (0)
	GET(AMTHI_CMD_GET_CODE_VERSIONS, amthi_req_simple(AMTHI_CMD_GET_CODE_VERSIONS, req, 64));
	rc = decoded(h, amthi_dec_code_versions(b, bl, &info->cv, why, sizeof(why)),
		     "GetCodeVersions", why);
	if (rc)
		return rc;
	GET(AMTHI_CMD_GET_PROVISIONING_STATE,
	    amthi_req_simple(AMTHI_CMD_GET_PROVISIONING_STATE, req, 64));
	rc = decoded(h, amthi_dec_u32(b, bl, &info->state, why, sizeof(why)) || info->state > 2,
		     "GetProvisioningState", info->state > 2 ? "state is not 0, 1 or 2" : why);
	if (rc)
		return rc;
	GET(AMTHI_CMD_GET_UUID, amthi_req_simple(AMTHI_CMD_GET_UUID, req, 64));
	rc = decoded(h, amthi_dec_uuid(b, bl, info->uuid, why, sizeof(why)), "GetUUID", why);
	if (rc)
		return rc;
	/* Control mode (AMT 7.0+), PKI DNS suffix and the wireless port may be missing. */
	n = amthi_req_simple(AMTHI_CMD_GET_CONTROL_MODE, req, 64);
	rc = ah_call(h, req, n, AMTHI_CMD_GET_CONTROL_MODE, resp, &st, &b, &bl);
	if (rc != AGENT_OK)
		return rc;
	if (st == AMT_STATUS_SUCCESS) {
		rc = decoded(h, amthi_dec_u32(b, bl, &info->mode, why, sizeof(why)),
			     "GetControlMode", why);
		if (rc)
			return rc;
		info->mode_known = true;
	}
	n = amthi_req_simple(AMTHI_CMD_GET_PKI_FQDN_SUFFIX, req, 64);
	rc = ah_call(h, req, n, AMTHI_CMD_GET_PKI_FQDN_SUFFIX, resp, &st, &b, &bl);
	if (rc != AGENT_OK)
		return rc;
	if (st == AMT_STATUS_SUCCESS &&
	    (rc = decoded(h, amthi_dec_ansi_string(b, bl, AMTHI_DNS_SUFFIX_MAX, info->dns_suffix,
						    sizeof(info->dns_suffix), why, sizeof(why)),
			  "GetPkiFQDNSuffix", why)))
		return rc;
	for (uint32_t i = 0; i < 2; i++) {
		n = amthi_req_lan(i, req, 64);
		rc = ah_call(h, req, n, AMTHI_CMD_GET_LAN_INTERFACE_SETTINGS, resp, &st, &b, &bl);
		if (rc != AGENT_OK)
			return rc;
		if (st != AMT_STATUS_SUCCESS)
			continue;
		rc = decoded(h, amthi_dec_lan(b, bl, &info->lan[i], why, sizeof(why)),
			     "GetLANInterfaceSettings", why);
		if (rc)
			return rc;
		info->lan_known[i] = true;
	}
	if (!hashes)
		return AGENT_OK;
	{
		struct amthi_hash_handles hh;

		GET(AMTHI_CMD_ENUMERATE_HASH_HANDLES,
		    amthi_req_simple(AMTHI_CMD_ENUMERATE_HASH_HANDLES, req, 64));
		rc = decoded(h, amthi_dec_hash_handles(b, bl, &hh, why, sizeof(why)),
			     "EnumerateHashHandles", why);
		if (rc)
			return rc;
		for (unsigned i = 0; i < hh.n; i++) {
			GET(AMTHI_CMD_GET_CERTHASH_ENTRY, amthi_req_hash_entry(hh.h[i], req, 64));
			rc = decoded(h, amthi_dec_hash_entry(b, bl, &info->hashes[i], why,
							     sizeof(why)),
				     "GetCertHashEntry", why);
			if (rc)
				return rc;
			info->n_hashes = i + 1;
		}
	}
#undef GET
	return AGENT_OK;
}

int ah_status_call(struct amt_host *h, const uint8_t *req, size_t len, uint32_t command,
		   uint32_t *status)
{
	uint8_t resp[AMTHI_MAX_MSG];
	const uint8_t *b;
	size_t bl;
	int rc = ah_call(h, req, len, command, resp, status, &b, &bl);

	if (rc == AGENT_OK && bl != 0) {
		snprintf(h->err, sizeof(h->err), "malformed answer to command 0x%08x: %zu bytes "
			 "after the status", command, bl);
		return AGENT_FAIL;
	}
	return rc;
}

const char *ah_state_name(uint32_t state)
{
	return state == 0 ? "pre" : state == 1 ? "in" : state == 2 ? "post" : "unknown";
}

const char *ah_mode_name(uint32_t mode)
{
	return mode == 0 ? "none" : mode == 1 ? "ccm" : mode == 2 ? "acm" : "unknown";
}
