/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CUnit runner for every unit suite. `amtprov_unit` runs them all; `amtprov_unit NAME`
 * runs one (ctest registers one test per suite). Exit status is non-zero when any test
 * failed, so ctest and CI see failures.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#define SUITE(name) void register_##name##_tests(void);
#include "suites.h"
#undef SUITE

struct suite_reg {
	const char *name;
	void (*reg)(void);
};

static const struct suite_reg suites[] = {
#define SUITE(name) {#name, register_##name##_tests},
#include "suites.h"
#undef SUITE
};

int main(int argc, char **argv)
{
	unsigned failed;
	int found = 0;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (argc > 1 && strcmp(argv[1], suites[i].name) != 0)
			continue;
		suites[i].reg();
		found++;
	}
	if (!found) {
		fprintf(stderr, "amtprov_unit: no suite named '%s'\n", argv[1]);
		CU_cleanup_registry();
		return 2;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
