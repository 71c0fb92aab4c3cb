/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_transport_wsman.c - every amt-transport operation's response handling (WS-Man, AMT
 * 11): the first input byte picks the op, then NUL-separated answers (a status selector byte
 * and a body each) go through at_check_response and the op's step machine.
 */
#include <libxml/parser.h>

#ifndef FT_AMT_MAJOR
#define FT_AMT_MAJOR 11
#endif

#include "fuzz_transport.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	xmlInitParser();
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	return ft_fuzz_one(data, size, FT_AMT_MAJOR);
}
