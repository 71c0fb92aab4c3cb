/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_transport_soap.c - fuzz_transport_wsman.c for firmware below 9.0 (AMT 8), where the
 * first-stage operations speak legacy EOI SOAP (R-PROV-10). Same input format.
 */
#define FT_AMT_MAJOR 8
#include "fuzz_transport_wsman.c"
