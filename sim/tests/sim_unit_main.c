/* SPDX-License-Identifier: Apache-2.0 */
/* CUnit runner for amtsim's suites: `amtsim_unit NAME` runs one (one ctest per suite). */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#define SIM_SUITES X(device) X(digest) X(provcert) X(wsman) X(pki) X(net) X(faults) X(legacy) X(mei) X(pac)

#define X(n) void register_sim_##n##_tests(void);
SIM_SUITES
#undef X

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*reg)(void);
	} suites[] = {
#define X(n) {#n, register_sim_##n##_tests},
		SIM_SUITES
#undef X
	};
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
		fprintf(stderr, "amtsim_unit: no suite named '%s'\n", argv[1]);
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
