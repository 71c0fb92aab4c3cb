/* SPDX-License-Identifier: Apache-2.0 */
#include "device_state.h"

#include <string.h>

#include "flow_table.h"

static const char *const names[DS_COUNT] = {
	[DS_INVALID] = "INVALID",
	[DS_REGISTERED] = "REGISTERED",
	[DS_NEED_DIRECTORY_ACCOUNT] = "NEED_DIRECTORY_ACCOUNT",
	[DS_CREATING_DIRECTORY_ACCOUNT] = "CREATING_DIRECTORY_ACCOUNT",
	[DS_NEED_DEVICE_CHECK] = "NEED_DEVICE_CHECK",
	[DS_CHECKING_DEVICE] = "CHECKING_DEVICE",
	[DS_NEED_CERTIFICATE] = "NEED_CERTIFICATE",
	[DS_REQUESTING_CERTIFICATE] = "REQUESTING_CERTIFICATE",
	[DS_CA_WAITING] = "CA_WAITING",
	[DS_NEED_FIRST_STAGE] = "NEED_FIRST_STAGE",
	[DS_CONFIGURING_FIRST_STAGE] = "CONFIGURING_FIRST_STAGE",
	[DS_NEED_COMMIT] = "NEED_COMMIT",
	[DS_COMMITTING] = "COMMITTING",
	[DS_NEED_SECOND_STAGE] = "NEED_SECOND_STAGE",
	[DS_CONFIGURING_SECOND_STAGE] = "CONFIGURING_SECOND_STAGE",
	[DS_PROVISIONED] = "PROVISIONED",
	[DS_NEED_UPDATE] = "NEED_UPDATE",
	[DS_UPDATING] = "UPDATING",
	[DS_NEED_RENEWAL] = "NEED_RENEWAL",
	[DS_RENEWING] = "RENEWING",
	[DS_NEED_UNPROVISION] = "NEED_UNPROVISION",
	[DS_UNPROVISIONING] = "UNPROVISIONING",
	[DS_UNPROVISIONED] = "UNPROVISIONED",
	[DS_BLOCKED] = "BLOCKED",
	[DS_FAILED] = "FAILED",
	[DS_NEED_8021X] = "NEED_8021X",
	[DS_CONFIGURING_8021X] = "CONFIGURING_8021X",
};

/* NEED_ -> -ING pairs. */
static const enum device_state pairs[][2] = {
	{DS_NEED_DIRECTORY_ACCOUNT, DS_CREATING_DIRECTORY_ACCOUNT},
	{DS_NEED_DEVICE_CHECK, DS_CHECKING_DEVICE},
	{DS_NEED_CERTIFICATE, DS_REQUESTING_CERTIFICATE},
	{DS_NEED_FIRST_STAGE, DS_CONFIGURING_FIRST_STAGE},
	{DS_NEED_COMMIT, DS_COMMITTING},
	{DS_NEED_SECOND_STAGE, DS_CONFIGURING_SECOND_STAGE},
	{DS_NEED_8021X, DS_CONFIGURING_8021X},
	{DS_NEED_UPDATE, DS_UPDATING},
	{DS_NEED_RENEWAL, DS_RENEWING},
	{DS_NEED_UNPROVISION, DS_UNPROVISIONING},
};
#define N_PAIRS (sizeof(pairs) / sizeof(pairs[0]))

/* The flow's own transitions are the rows of flow_table.c, the one place they are defined. */

const char *device_state_name(enum device_state s)
{
	if ((int)s <= DS_INVALID || s >= DS_COUNT)
		return names[DS_INVALID];
	return names[s];
}

enum device_state device_state_parse(const char *name)
{
	for (int i = DS_INVALID + 1; name && i < DS_COUNT; i++)
		if (strcmp(names[i], name) == 0)
			return (enum device_state)i;
	return DS_INVALID;
}

int device_state_in_progress(enum device_state s)
{
	for (size_t i = 0; i < N_PAIRS; i++)
		if (pairs[i][1] == s)
			return 1;
	return 0;
}

enum device_state device_state_rewind(enum device_state s)
{
	for (size_t i = 0; i < N_PAIRS; i++)
		if (pairs[i][1] == s)
			return pairs[i][0];
	return s;
}

enum device_state device_state_doing(enum device_state s)
{
	for (size_t i = 0; i < N_PAIRS; i++)
		if (pairs[i][0] == s)
			return pairs[i][1];
	return s;
}

int device_state_runnable(enum device_state s)
{
	if (s == DS_REGISTERED || s == DS_CA_WAITING)
		return 1;
	for (size_t i = 0; i < N_PAIRS; i++)
		if (pairs[i][0] == s)
			return 1;
	return 0;
}

int device_state_allowed(enum device_state from, enum device_state to)
{
	if ((int)from <= DS_INVALID || from >= DS_COUNT || (int)to <= DS_INVALID || to >= DS_COUNT)
		return 0;
	/* Starting a step, rewinding one, failing, retrying in place. */
	if (device_state_doing(from) == to && to != from)
		return 1;
	if (device_state_in_progress(from) && device_state_rewind(from) == to)
		return 1;
	if (from == to && device_state_runnable(from))
		return 1;
	if (to == DS_FAILED && from != DS_FAILED && from != DS_UNPROVISIONED)
		return 1;
	/* Block from anywhere but unprovisioned/blocked (R-REV-02d); unprovision any device
	 * that may hold AMT settings or certificates (R-REV-02a). */
	if (to == DS_BLOCKED && from != DS_BLOCKED)
		return 1;
	if (to == DS_NEED_UNPROVISION && from != DS_UNPROVISIONED && from != DS_NEED_UNPROVISION &&
	    from != DS_UNPROVISIONING)
		return 1;
	return flow_table_allows(from, to);
}
