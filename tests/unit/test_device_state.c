/* SPDX-License-Identifier: Apache-2.0 */
/* The persisted device states and the transition rules (R-PROV-13). */
#include <CUnit/CUnit.h>

#include "device_state.h"

static void test_names_round_trip(void)
{
	for (int s = DS_INVALID + 1; s < DS_COUNT; s++)
		CU_ASSERT_EQUAL(device_state_parse(device_state_name((enum device_state)s)), s);
	CU_ASSERT_EQUAL(device_state_parse("NOPE"), DS_INVALID);
	CU_ASSERT_EQUAL(device_state_parse(NULL), DS_INVALID);
	CU_ASSERT_STRING_EQUAL(device_state_name((enum device_state)999), "INVALID");
}

/* R-PROV-13: every -ING state rewinds to its NEED_ state, so nothing resumes half done. */
static void test_every_in_progress_state_rewinds_to_a_runnable_need_state(void)
{
	int n = 0;

	for (int s = DS_INVALID + 1; s < DS_COUNT; s++) {
		enum device_state ds = (enum device_state)s;

		if (!device_state_in_progress(ds))
			continue;
		n++;
		CU_ASSERT_NOT_EQUAL(device_state_rewind(ds), ds);
		CU_ASSERT_TRUE(device_state_runnable(device_state_rewind(ds)));
		CU_ASSERT_EQUAL(device_state_doing(device_state_rewind(ds)), ds);
		CU_ASSERT_TRUE(device_state_allowed(ds, device_state_rewind(ds)));
		CU_ASSERT_FALSE(device_state_runnable(ds));
	}
	CU_ASSERT_EQUAL(n, 10);
}

/* The happy path of seed 003, in order, is allowed edge by edge. */
static void test_provisioning_path_is_allowed(void)
{
	static const enum device_state path[] = {
		DS_REGISTERED, DS_NEED_DIRECTORY_ACCOUNT, DS_CREATING_DIRECTORY_ACCOUNT,
		DS_NEED_DEVICE_CHECK, DS_CHECKING_DEVICE, DS_NEED_CERTIFICATE,
		DS_REQUESTING_CERTIFICATE, DS_CA_WAITING, DS_NEED_FIRST_STAGE,
		DS_CONFIGURING_FIRST_STAGE, DS_NEED_COMMIT, DS_COMMITTING, DS_NEED_SECOND_STAGE,
		DS_CONFIGURING_SECOND_STAGE, DS_NEED_8021X, DS_CONFIGURING_8021X, DS_PROVISIONED,
		DS_NEED_RENEWAL, DS_RENEWING,
		DS_PROVISIONED, DS_NEED_UNPROVISION, DS_UNPROVISIONING, DS_UNPROVISIONED,
		DS_REGISTERED};

	for (size_t i = 1; i < sizeof(path) / sizeof(path[0]); i++)
		CU_ASSERT_TRUE(device_state_allowed(path[i - 1], path[i]));
}

static void test_forbidden_transitions_are_refused(void)
{
	/* Skipping the commit, jumping to PROVISIONED, leaving FAILED except by retry. */
	CU_ASSERT_FALSE(device_state_allowed(DS_CONFIGURING_FIRST_STAGE, DS_NEED_SECOND_STAGE));
	CU_ASSERT_FALSE(device_state_allowed(DS_REGISTERED, DS_PROVISIONED));
	CU_ASSERT_FALSE(device_state_allowed(DS_NEED_CERTIFICATE, DS_NEED_FIRST_STAGE));
	CU_ASSERT_FALSE(device_state_allowed(DS_FAILED, DS_PROVISIONED));
	CU_ASSERT_FALSE(device_state_allowed(DS_UNPROVISIONED, DS_FAILED));
	CU_ASSERT_FALSE(device_state_allowed(DS_PROVISIONED, DS_PROVISIONED));
	CU_ASSERT_FALSE(device_state_allowed(DS_INVALID, DS_REGISTERED));
	CU_ASSERT_TRUE(device_state_allowed(DS_FAILED, DS_REGISTERED));    /* retry */
	CU_ASSERT_TRUE(device_state_allowed(DS_COMMITTING, DS_FAILED));
	CU_ASSERT_TRUE(device_state_allowed(DS_PROVISIONED, DS_BLOCKED));  /* R-REV-02d */
	CU_ASSERT_TRUE(device_state_allowed(DS_PROVISIONED, DS_NEED_UPDATE)); /* R-REV-03 */
}

void register_device_state_tests(void);
void register_device_state_tests(void)
{
	CU_pSuite s = CU_add_suite("device_state", NULL, NULL);

	CU_add_test(s, "state names round-trip", test_names_round_trip);
	CU_add_test(s, "every in-progress state rewinds to its NEED state (R-PROV-13)",
		    test_every_in_progress_state_rewinds_to_a_runnable_need_state);
	CU_add_test(s, "the seed 003 provisioning path is allowed edge by edge (R-PROV-10/11)",
		    test_provisioning_path_is_allowed);
	CU_add_test(s, "forbidden transitions are refused", test_forbidden_transitions_are_refused);
}
