/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The flow table (core/flow/flow_table.c), the one place a device's transitions are defined:
 * every step has a "done" row, provisioning walks REGISTERED -> PROVISIONED by "done"
 * alone through 802.1X as its own state (R-PROV-11 3), every CA WAIT shows as CA_WAITING
 * whatever the step, CA_WAITING resumes only the steps that ask a CA, the engine's
 * transition check (device_state_allowed) is the table, and docs/states.md carries the
 * table as rendered (this test fails when they disagree).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "device_state.h"
#include "flow_table.h"
#include "test_util.h"

void register_flow_table_tests(void);

static void test_every_step_has_done(void)
{
	for (int s = DS_INVALID + 1; s < DS_COUNT; s++) {
		enum device_state ds = (enum device_state)s;

		if (!device_state_in_progress(ds))
			continue;
		if (flow_table_next(ds, FLOW_DONE, DS_INVALID) == DS_INVALID)
			CU_FAIL_FATAL("an -ING state without a 'done' row");
	}
	CU_ASSERT_EQUAL(flow_table_next(DS_REGISTERED, FLOW_DONE, DS_INVALID),
			DS_NEED_DEVICE_CHECK);
}

static void test_provisioning_walk(void)
{
	static const enum device_state want[] = {
		DS_REGISTERED, DS_NEED_DEVICE_CHECK, DS_NEED_CERTIFICATE, DS_NEED_FIRST_STAGE,
		DS_NEED_COMMIT, DS_NEED_SECOND_STAGE, DS_NEED_8021X, DS_PROVISIONED,
	};
	enum device_state s = DS_REGISTERED;

	for (size_t i = 1; i < sizeof(want) / sizeof(want[0]); i++) {
		/* the engine starts the step (NEED_X -> X_ING), the step ends "done" */
		s = flow_table_next(device_state_doing(s), FLOW_DONE, DS_INVALID);
		CU_ASSERT_EQUAL(s, want[i]);
	}
	/* with a directory, it comes first */
	CU_ASSERT_EQUAL(flow_table_next(DS_REGISTERED, FLOW_DIRECTORY, DS_INVALID),
			DS_NEED_DIRECTORY_ACCOUNT);
	CU_ASSERT_EQUAL(flow_table_next(DS_CREATING_DIRECTORY_ACCOUNT, FLOW_DONE, DS_INVALID),
			DS_NEED_DEVICE_CHECK);
	/* 802.1X is a state of its own, a runnable one */
	CU_ASSERT_TRUE(device_state_runnable(DS_NEED_8021X));
	CU_ASSERT_EQUAL(device_state_doing(DS_NEED_8021X), DS_CONFIGURING_8021X);
	CU_ASSERT_STRING_EQUAL(device_state_name(DS_NEED_8021X), "NEED_8021X");
	CU_ASSERT_EQUAL(device_state_parse("CONFIGURING_8021X"), DS_CONFIGURING_8021X);
}

static void test_wait_and_resume(void)
{
	static const enum device_state asking[] = {
		DS_REQUESTING_CERTIFICATE, DS_CONFIGURING_8021X, DS_UPDATING, DS_RENEWING,
		DS_CA_WAITING,
	};

	/* One WAIT semantics: every step that asks a CA waits visibly in CA_WAITING. */
	for (size_t i = 0; i < sizeof(asking) / sizeof(asking[0]); i++)
		CU_ASSERT_EQUAL(flow_table_next(asking[i], FLOW_WAIT, DS_INVALID), DS_CA_WAITING);
	/* A step that asks no CA has no WAIT row. */
	CU_ASSERT_EQUAL(flow_table_next(DS_COMMITTING, FLOW_WAIT, DS_INVALID), DS_INVALID);
	/* CA_WAITING hands the device back to the steps that ask, and to no other. */
	CU_ASSERT_EQUAL(flow_table_next(DS_CA_WAITING, FLOW_RESUME, DS_NEED_8021X), DS_NEED_8021X);
	CU_ASSERT_EQUAL(flow_table_next(DS_CA_WAITING, FLOW_RESUME, DS_NEED_UPDATE),
			DS_NEED_UPDATE);
	CU_ASSERT_EQUAL(flow_table_next(DS_CA_WAITING, FLOW_RESUME, DS_NEED_RENEWAL),
			DS_NEED_RENEWAL);
	CU_ASSERT_EQUAL(flow_table_next(DS_CA_WAITING, FLOW_RESUME, DS_NEED_COMMIT), DS_INVALID);
	CU_ASSERT_EQUAL(flow_table_next(DS_CA_WAITING, FLOW_RESUME, DS_PROVISIONED), DS_INVALID);
	/* NEED_REKEY starts the request over */
	CU_ASSERT_EQUAL(flow_table_next(DS_CA_WAITING, FLOW_AGAIN, DS_INVALID),
			DS_NEED_CERTIFICATE);
	CU_ASSERT_EQUAL(flow_table_next(DS_CONFIGURING_8021X, FLOW_AGAIN, DS_INVALID),
			DS_NEED_8021X);
	/* a renewal that changed nothing leaves the device provisioned */
	CU_ASSERT_EQUAL(flow_table_next(DS_RENEWING, FLOW_KEPT, DS_INVALID), DS_PROVISIONED);
}

static void test_allowed_is_the_table(void)
{
	/* the table's rows */
	CU_ASSERT_TRUE(device_state_allowed(DS_CONFIGURING_SECOND_STAGE, DS_NEED_8021X));
	CU_ASSERT_TRUE(device_state_allowed(DS_CONFIGURING_8021X, DS_CA_WAITING));
	CU_ASSERT_TRUE(device_state_allowed(DS_PROVISIONED, DS_NEED_RENEWAL));
	CU_ASSERT_TRUE(device_state_allowed(DS_FAILED, DS_REGISTERED));
	/* the generic rules: start, rewind, fail */
	CU_ASSERT_TRUE(device_state_allowed(DS_NEED_8021X, DS_CONFIGURING_8021X));
	CU_ASSERT_TRUE(device_state_allowed(DS_CONFIGURING_8021X, DS_NEED_8021X));
	CU_ASSERT_TRUE(device_state_allowed(DS_CONFIGURING_8021X, DS_FAILED));
	/* nothing else: provisioning no longer skips its 802.1X state */
	CU_ASSERT_FALSE(device_state_allowed(DS_CONFIGURING_SECOND_STAGE, DS_PROVISIONED));
	CU_ASSERT_FALSE(device_state_allowed(DS_CHECKING_DEVICE, DS_PROVISIONED));
	CU_ASSERT_FALSE(device_state_allowed(DS_CA_WAITING, DS_NEED_COMMIT));
}

/* docs/states.md holds the table between its markers exactly as rendered. */
static void test_docs_match_table(void)
{
	char path[1024];
	FILE *fp;
	char *doc = NULL, *table = flow_table_markdown(), *begin, *end;
	long n;

	snprintf(path, sizeof(path), "%s/docs/states.md", AMTPROV_SOURCE_DIR);
	fp = fopen(path, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(table);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	doc = calloc(1, (size_t)n + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	CU_ASSERT_EQUAL(fread(doc, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	begin = strstr(doc, "<!-- flow-table:begin -->\n");
	end = begin ? strstr(begin, "<!-- flow-table:end -->") : NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(end);
	begin += strlen("<!-- flow-table:begin -->\n");
	*end = 0;
	if (strcmp(begin, table) != 0) {
		fprintf(stderr, "\ndocs/states.md disagrees with core/flow/flow_table.c; the table "
			"between the flow-table markers must read:\n%s\n", table);
		CU_FAIL("docs/states.md is not the flow table");
	}
	free(doc);
	free(table);
}

void register_flow_table_tests(void)
{
	CU_pSuite s = CU_add_suite("flow_table", NULL, NULL);

	CU_add_test(s, "every step has a 'done' row", test_every_step_has_done);
	CU_add_test(s, "provisioning by 'done' alone, 802.1X its own state",
		    test_provisioning_walk);
	CU_add_test(s, "every CA WAIT is CA_WAITING; it resumes the asking steps only",
		    test_wait_and_resume);
	CU_add_test(s, "device_state_allowed is the table plus the generic rules",
		    test_allowed_is_the_table);
	CU_add_test(s, "docs/states.md carries the table", test_docs_match_table);
}
