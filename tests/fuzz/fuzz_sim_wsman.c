/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sim_wsman.c - amtsim's WS-Management handlers (sim/wsman*.c, setup_ops.c) on a
 * simulated device: first byte picks firmware version and setup state, then NUL-separated
 * request bodies are POSTed to /wsman one after another on the same device, so a sequence
 * (GenerateKeyPair, AddCertificate, CommitChanges...) can reach deep states.
 */
#include "fuzz_sim.h"
#include "wsman.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void one(struct device *d, const unsigned char *seg, size_t len)
{
	sim_fuzz_post(d, "/wsman", seg, len, wsman_handle);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	sim_fuzz_one(data, size, one);
	return 0;
}
