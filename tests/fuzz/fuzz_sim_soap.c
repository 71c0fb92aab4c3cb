/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sim_soap.c - amtsim's legacy EOI SOAP services (sim/soap_legacy*.c): first byte picks
 * firmware version and setup state, then NUL-separated requests, each a byte that picks the
 * service path and a SOAP 1.1 body, go to the same device one after another.
 */
#include "fuzz_sim.h"
#include "soap_legacy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* The services amtsim serves, and one it does not (the unknown-service fault). */
static const char *const paths[] = {
	"/SecurityAdministrationService", "/NetworkAdministrationService", "/NetworkTimeService",
	"/RemoteControlService", "/GeneralInfoService", "/NoSuchService",
};
#define N_PATHS (sizeof(paths) / sizeof(paths[0]))

static void one(struct device *d, const unsigned char *seg, size_t len)
{
	if (len >= 1)
		sim_fuzz_post(d, paths[seg[0] % N_PATHS], seg + 1, len - 1, soap_legacy_handle);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	sim_fuzz_one(data, size, one);
	return 0;
}
