/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file device_input.h
 * @brief Validation of a device registration (R-PROV-01/02/03), shared by
 *        `amtprov device add`, `amtprov device register` and the HTTPS API (core/api/api.c), so
 *        a device is accepted or refused by the same rules whichever way it arrives.
 */
#ifndef AMTPROV_CORE_DEVICE_INPUT_H
#define AMTPROV_CORE_DEVICE_INPUT_H

#include <stddef.h>

#include <jansson.h>

#include "store.h"

/** The longest manufacturer or model string accepted (R-PROV-03). */
#define DEVICE_INPUT_TEXT_MAX 63

/** A registration as the host agent reports it. Strings are borrowed; NULL = absent. */
struct device_input {
	const char *fqdn;               /**< required */
	const char *uuid;               /**< required, 8-4-4-4-12 hex */
	const char *amt_version;        /**< required, "11.8.50" */
	const char *wired_ip;           /**< IPv4 or IPv6 (R-PROV-02) */
	const char *otp_hash;           /**< SHA-1/256/384/512 hex (R-PROV-02) */
	const char *provisioning_state; /**< "pre", "in" or "post"; NULL means "pre" */
	int wireless;                   /**< wireless-capable */
	const char *manufacturer;       /**< R-PROV-03 manufacturing information */
	const char *model;
};

int device_input_fqdn_valid(const char *s);
int device_input_uuid_valid(const char *s);
/** 2 to 4 dot-separated decimal numbers. */
int device_input_version_valid(const char *s);
/** 40, 64, 96 or 128 hex digits. */
int device_input_hash_valid(const char *s);
int device_input_ip_valid(const char *s);
/** Printable ASCII, 1..DEVICE_INPUT_TEXT_MAX characters. */
int device_input_text_valid(const char *s);

/**
 * Checks every field. On failure returns AMTPROV_E_INVALID, sets *@p field to the JSON
 * name of the first bad field ("fqdn", "uuid", ...) and writes why into @p msg. The message
 * quotes the value only for fields that are not secret (never the OTP hash).
 */
int device_input_check(const struct device_input *in, const char **field, char *msg,
		       size_t size);

/**
 * Reads @p obj (a JSON object, as the host agent prints it) into @p in, strictly: unknown
 * keys and wrong types are refused (AMTPROV_E_INVALID with *@p field and @p msg). Strings
 * stay borrowed from @p obj. Does not run device_input_check().
 */
int device_input_from_json(const json_t *obj, struct device_input *in, const char **field,
			   char *msg, size_t size);

/**
 * R-PROV-01: 1 if the device must be refused because its AMT is not Not Provisioned
 * ('post'), with the reason in @p why; 0 for 'pre' and 'in' (remote configuration pending).
 */
int device_input_refused(const struct device_input *in, char *why, size_t size);

/** Fills @p dev (zeroed first) from a checked input, lower-cased. Its state is left empty:
 * that is the registration's to set (registration.c). */
void device_input_to_record(const struct device_input *in, struct store_device *dev);

/** The detail of status 8100 (never the OTP hash): "AMT 11.8.50, wired IP ..., ...". */
void device_input_summary(const struct device_input *in, char *buf, size_t size);

#endif /* AMTPROV_CORE_DEVICE_INPUT_H */
