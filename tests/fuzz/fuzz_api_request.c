/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_api_request.c - what the registration API (core/api/api.c) takes from a client, through
 * the functions api.c calls on it. First byte even: the rest is a POST /v1/devices body,
 * parsed as api.c parses it, then read and checked (core/site/device_input.c) and, when accepted,
 * turned into the record and the status text registration_apply() stores. Odd: the rest is a
 * request target; its /v1/devices/{device}[/{operation}] parts are decoded as
 * show_device() and device_operation() decode them.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

#include "device_input.h"
#include "lifecycle.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void body_case(const unsigned char *data, size_t size)
{
	struct device_input in;
	struct store_device dev;
	const char *field = NULL;
	json_error_t jerr;
	char msg[256], why[256], summary[512];
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);

	if (!body)
		return;
	memset(&in, 0, sizeof(in));
	if (device_input_from_json(body, &in, &field, msg, sizeof(msg)) != AMTPROV_OK ||
	    device_input_check(&in, &field, msg, sizeof(msg)) != AMTPROV_OK) {
		if (!field || !msg[0])
			abort(); /* a 400 must name the field and say why */
		json_decref(body);
		return;
	}
	(void)device_input_refused(&in, why, sizeof(why));
	device_input_to_record(&in, &dev);
	device_input_summary(&in, summary, sizeof(summary));
	json_decref(body);
}

static void path_case(const unsigned char *data, size_t size)
{
	static const char devices[] = "/v1/devices/";
	char *text = malloc(size + 1), *key = NULL;
	struct evhttp_uri *uri;
	const char *path, *slash;

	if (!text)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	uri = evhttp_uri_parse_with_flags(text, 0);
	path = uri ? evhttp_uri_get_path(uri) : NULL;
	if (path && !strncmp(path, devices, sizeof(devices) - 1)) {
		const char *raw = path + sizeof(devices) - 1;
		char dev[STORE_FQDN_SIZE * 3];

		slash = strchr(raw, '/');
		if (slash && (size_t)(slash - raw) < sizeof(dev)) {
			memcpy(dev, raw, (size_t)(slash - raw));
			dev[slash - raw] = '\0';
			(void)lifecycle_op_parse(slash + 1);
			key = evhttp_uridecode(dev, 0, NULL);
		} else if (!slash) {
			key = evhttp_uridecode(raw, 0, NULL);
		}
		if (key && strlen(key) < STORE_FQDN_SIZE)
			(void)device_input_fqdn_valid(key);
		free(key);
	}
	if (uri)
		evhttp_uri_free(uri);
	free(text);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		path_case(data + 1, size - 1);
	else
		body_case(data + 1, size - 1);
	return 0;
}
