/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Firmware rules that both management interfaces reach: the WS-Management methods
 * (wsman*.c) and the legacy EOI SOAP operations of AMT < 9 (soap_legacy*.c) change the same
 * device the same way. Each function returns the PT_STATUS / ReturnValue AMT answers
 * (AMT-PROTOCOL.md §5.4) and writes the device's audit.
 */
#ifndef AMTSIM_SETUP_OPS_H
#define AMTSIM_SETUP_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "device.h"

/* The PT_STATUS values the simulator answers with (AMT-PROTOCOL.md §5.4). */
enum pt_status {
	PT_SUCCESS = 0x0,
	PT_INTERNAL_ERROR = 0x1,
	PT_INVALID_NAME = 0xC,
	PT_NOT_PERMITTED = 0x10,
	PT_MAX_LIMIT_REACHED = 0x17,
	PT_INVALID_DOMAIN_NAME = 0x1C,
	PT_INVALID_PARAMETER = 0x24,
	PT_FLASH_WRITE_LIMIT_EXCEEDED = 0x26,
	PT_INVALID_HANDLE = 0x805,
	PT_INVALID_PASSWORD = 0x806,
	PT_DATA_MISSING = 0x809,
	PT_DUPLICATE = 0x80A,
	PT_INVALID_KEY = 0x80E,
	PT_INVALID_CERT = 0x80F,
	PT_CERT_KEY_NOT_MATCH = 0x810,
	PT_UNSUPPORTED = 0x812,
};

/** AMT's strong-password rule (AMT-PROTOCOL.md §10). */
bool setup_strong_password(const char *p);

/** AMT's user-name rule (§10): 1..16 printable characters, none of `:,<>&"`, no `$$`. */
bool setup_valid_username(const char *u);

/** Host or domain name characters (letters, digits, '-', '.'), at most @p max long. */
bool setup_valid_dns_name(const char *s, size_t max);

/** CommitChanges: fault injection, flash limit, staged TLS settings, in -> post + ACM. */
int setup_commit(struct device *d);

/** SetMEBxPassword(Password). */
int setup_set_mebx(struct device *d, const char *password);

/** The device clock the firmware reports (GetLowAccuracyTimeSynch Ta0). */
long long setup_device_time(const struct device *d);

/** SetHighAccuracyTimeSynch(Ta0, Tm1, Tm2) with the decimal strings as received. */
int setup_set_time(struct device *d, const char *ta0, const char *tm1, const char *tm2);

/** The admin entry: user name and HA1 (32 lower-case hex) as SetAdminAclEntry(Ex) set it. */
int setup_set_admin(struct device *d, const char *user, const char ha1[33], const char *via);

#endif
