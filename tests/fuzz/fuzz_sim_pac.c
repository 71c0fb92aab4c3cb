/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sim_pac.c - amtsim's reader of a Kerberos ticket's PAC logon information
 * (sim/pac.c, MS-PAC KERB_VALIDATION_INFO in NDR): the SIDs a Windows user and its groups
 * bring, which the simulated firmware checks against its ACL. The input is the buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "pac.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static char sids[64][PAC_SID_STR];
	int n = pac_logon_sids(data, size, sids, 64);

	if (n > 64)
		abort();
	for (int i = 0; i < n; i++)
		if (strncmp(sids[i], "S-1-", 4) != 0 || !memchr(sids[i], '\0', PAC_SID_STR))
			abort();
	return 0;
}
