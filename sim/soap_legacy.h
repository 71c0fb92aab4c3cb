/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The legacy AMT SOAP ("EOI") services of firmware below 9.0: SOAP 1.1 POSTs to
 * /<Service>Service, answered with a PT_STATUS StatusCode first (what amttool reads).
 */
#ifndef AMTSIM_SOAP_LEGACY_H
#define AMTSIM_SOAP_LEGACY_H

#include <stdbool.h>

#include "device.h"
#include "http.h"

/** True when @p path names a legacy service this simulator knows. */
bool soap_legacy_path(const char *path);

/** Answers a legacy SOAP request (the caller checked the device has legacy SOAP). */
void soap_legacy_handle(struct device *d, const struct http_request *req,
			struct http_response *resp);

#endif
