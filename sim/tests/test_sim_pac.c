/* SPDX-License-Identifier: Apache-2.0 */
/* The PAC logon information's SIDs (sim/pac.c), what amtsim authorizes a Kerberos user by
 * (R-ACC-01): a well-formed buffer (the fuzz seed, built by the layout of MS-PAC 2.5) gives
 * the user, its groups and extra SIDs; every truncation of it is refused, never read past. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "pac.h"

void register_sim_pac_tests(void);

static unsigned char *seed(size_t *len)
{
	FILE *f = fopen(AMTSIM_PAC_SEED, "rb");
	unsigned char *b = malloc(4096);

	*len = f && b ? fread(b, 1, 4096, f) : 0;
	if (f)
		fclose(f);
	return b;
}

static void test_logon_info_sids(void)
{
	char sids[8][PAC_SID_STR];
	size_t len;
	unsigned char *b = seed(&len);

	CU_ASSERT_FATAL(len > 100);
	CU_ASSERT_EQUAL_FATAL(pac_logon_sids(b, len, sids, 8), 4);
	CU_ASSERT_STRING_EQUAL(sids[0], "S-1-5-21-1-2-3-1105"); /* the user */
	CU_ASSERT_STRING_EQUAL(sids[1], "S-1-5-21-1-2-3-513");  /* Domain Users */
	CU_ASSERT_STRING_EQUAL(sids[2], "S-1-5-21-1-2-3-1103"); /* a group */
	CU_ASSERT_STRING_EQUAL(sids[3], "S-1-18-1");            /* an extra SID */
	CU_ASSERT_EQUAL(pac_logon_sids(b, len, sids, 2), 2);    /* capped, not overrun */
	for (size_t n = 0; n < len; n++)
		CU_ASSERT_EQUAL(pac_logon_sids(b, n, sids, 8), -1);
	b[1] = 0x00; /* big-endian NDR is not what a KDC sends */
	CU_ASSERT_EQUAL(pac_logon_sids(b, len, sids, 8), -1);
	free(b);
}

static void test_sid_string(void)
{
	static const unsigned char admins[] = {1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0};
	char s[PAC_SID_STR];

	CU_ASSERT_EQUAL(pac_sid_string(admins, sizeof(admins), s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "S-1-5-32-544");
	CU_ASSERT_EQUAL(pac_sid_string(admins, sizeof(admins) - 1, s, sizeof(s)), -1);
	CU_ASSERT_EQUAL(pac_sid_string(admins, sizeof(admins), s, 8), -1);
}

void register_sim_pac_tests(void)
{
	CU_pSuite s = CU_add_suite("sim_pac", NULL, NULL);

	CU_add_test(s, "PAC logon info: user, groups, extra SIDs; truncations refused",
		    test_logon_info_sids);
	CU_add_test(s, "binary SID to string", test_sid_string);
}
