/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_transport_soap.c - fuzz_transport_wsman.c for firmware below 9.0 (AMT 8), where the
 * first-stage operations speak legacy EOI SOAP (R-PROV-10). Same input format.
 */
#include <libxml/parser.h>

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
	return ft_fuzz_one(data, size, 8);
}
