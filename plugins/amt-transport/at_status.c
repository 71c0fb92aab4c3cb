/* SPDX-License-Identifier: Apache-2.0 */
/*
 * at_status.c - names of AMT return values: the PT_STATUS table shared by legacy SOAP
 * StatusCode and most WS-Man ReturnValues (AMT-PROTOCOL.md 5.4), and the methods whose
 * ReturnValues are CIM job codes or method-specific small numbers instead (8.4, 8.8, 4, 13.2).
 */
#include <string.h>

#include "at_internal.h"

struct rv_name {
	long v;
	const char *name;
};

static const struct rv_name pt_status[] = {
	{0x0, "SUCCESS"}, {0x1, "INTERNAL_ERROR"}, {0x2, "NOT_READY"}, {0x3, "INVALID_PT_MODE"},
	{0x4, "INVALID_MESSAGE_LENGTH"}, {0x5, "TABLE_FINGERPRINT_NOT_AVAILABLE"},
	{0x6, "INTEGRITY_CHECK_FAILED"}, {0x7, "UNSUPPORTED_ISVS_VERSION"},
	{0x8, "APPLICATION_NOT_REGISTERED"}, {0x9, "INVALID_REGISTRATION_DATA"},
	{0xA, "APPLICATION_DOES_NOT_EXIST"}, {0xB, "NOT_ENOUGH_STORAGE"}, {0xC, "INVALID_NAME"},
	{0xD, "BLOCK_DOES_NOT_EXIST"}, {0xE, "INVALID_BYTE_OFFSET"}, {0xF, "INVALID_BYTE_COUNT"},
	{0x10, "NOT_PERMITTED"}, {0x11, "NOT_OWNER"}, {0x12, "BLOCK_LOCKED_BY_OTHER"},
	{0x13, "BLOCK_NOT_LOCKED"}, {0x14, "INVALID_GROUP_PERMISSIONS"},
	{0x15, "GROUP_DOES_NOT_EXIST"}, {0x16, "INVALID_MEMBER_COUNT"},
	{0x17, "MAX_LIMIT_REACHED"}, {0x18, "INVALID_AUTH_TYPE"}, {0x19, "AUTHENTICATION_FAILED"},
	{0x1A, "INVALID_DHCP_MODE"}, {0x1B, "INVALID_IP_ADDRESS"}, {0x1C, "INVALID_DOMAIN_NAME"},
	{0x1D, "UNSUPPORTED_VERSION"}, {0x1E, "REQUEST_UNEXPECTED"}, {0x1F, "INVALID_TABLE_TYPE"},
	{0x20, "INVALID_PROVISIONING_STATE"}, {0x21, "UNSUPPORTED_OBJECT"}, {0x22, "INVALID_TIME"},
	{0x23, "INVALID_INDEX"}, {0x24, "INVALID_PARAMETER"}, {0x25, "INVALID_NETMASK"},
	{0x26, "FLASH_WRITE_LIMIT_EXCEEDED"}, {0x27, "INVALID_IMAGE_LENGTH"},
	{0x28, "INVALID_IMAGE_SIGNATURE"}, {0x29, "PROPOSE_ANOTHER_VERSION"},
	{0x2A, "INVALID_PID_FORMAT"}, {0x2B, "INVALID_PPS_FORMAT"}, {0x2C, "BIST_COMMAND_BLOCKED"},
	{0x2D, "CONNECTION_FAILED"}, {0x2E, "CONNECTION_TOO_MANY"},
	{0x2F, "RNG_GENERATION_IN_PROGRESS"}, {0x30, "RNG_NOT_READY"},
	{0x31, "CERTIFICATE_NOT_READY"}, {0x400, "DISABLED_BY_POLICY"},
	{0x800, "NETWORK_IF_ERROR_BASE"}, {0x801, "UNSUPPORTED_OEM_NUMBER"},
	{0x802, "UNSUPPORTED_BOOT_OPTION"}, {0x803, "INVALID_COMMAND"},
	{0x804, "INVALID_SPECIAL_COMMAND"}, {0x805, "INVALID_HANDLE"}, {0x806, "INVALID_PASSWORD"},
	{0x807, "INVALID_REALM"}, {0x808, "STORAGE_ACL_ENTRY_IN_USE"}, {0x809, "DATA_MISSING"},
	{0x80A, "DUPLICATE"}, {0x80B, "EVENTLOG_FROZEN"}, {0x80C, "PKI_MISSING_KEYS"},
	{0x80D, "PKI_GENERATING_KEYS"}, {0x80E, "INVALID_KEY"}, {0x80F, "INVALID_CERT"},
	{0x810, "CERT_KEY_NOT_MATCH"}, {0x811, "MAX_KERB_DOMAIN_REACHED"}, {0x812, "UNSUPPORTED"},
	{0x813, "INVALID_PRIORITY"}, {0x814, "NOT_FOUND"}, {0x815, "INVALID_CREDENTIALS"},
	{0x816, "INVALID_PASSPHRASE"}, {0x818, "NO_ASSOCIATION"}, {0x81B, "AUDIT_FAIL"},
	{0x81C, "BLOCKING_COMPONENT"}, {0x821, "USER_CONSENT_REQUIRED"},
	{0x822, "OPERATION_IN_PROGRESS"},
	{-1, NULL},
};

/* CIM_EnabledLogicalElement.RequestStateChange and power/redirection methods (8.8, 8.11). */
static const struct rv_name cim_job[] = {
	{0, "COMPLETED"}, {1, "NOT_SUPPORTED"}, {2, "UNKNOWN_ERROR"}, {3, "TIMEOUT"},
	{4, "FAILED"}, {5, "INVALID_PARAMETER"}, {6, "IN_USE"}, {4096, "JOB_STARTED"},
	{4097, "INVALID_STATE_TRANSITION"}, {4098, "TIMEOUT_PARAMETER_NOT_SUPPORTED"},
	{4099, "BUSY"}, {-1, NULL},
};

/* AMT_KerberosSettingData Put (8.4). */
static const struct rv_name kerberos[] = {
	{0, "SUCCESS"}, {1, "NOT_SUPPORTED"}, {2, "UNSPECIFIED_ERROR"},
	{3, "UNSUPPORTED_PARAMETER"}, {4, "NO_REALM"}, {5, "NO_SPN"}, {6, "NO_SPN_PROTOCOL"},
	{7, "NO_KEY_VERSION"}, {8, "NO_ENCRYPTION_ALGORITHM"}, {9, "NO_MASTER_KEY"},
	{10, "NO_CLOCK_TOLERANCE"}, {11, "NO_KRB_ENABLED"}, {12, "NO_PASSPHRASE"}, {13, "NO_SALT"},
	{14, "NO_ITERATION_COUNT"}, {-1, NULL},
};

/* AMT_WiFiPortConfigurationService.AddWiFiSettings (13.2). */
static const struct rv_name wifi[] = {
	{0, "COMPLETED"}, {1, "NOT_SUPPORTED"}, {2, "FAILED"}, {3, "INVALID_PARAMETER"},
	{4, "INVALID_REFERENCE"}, {-1, NULL},
};

/* IPS_HostBasedSetupService.AddNextCertInChain (4). */
static const struct rv_name chain[] = {
	{0, "SUCCESS"}, {1, "INVALID_PARAMETER"}, {2, "INTERNAL_ERROR"}, {3, "INVALID_STATE"},
	{4, "CERTIFICATE_VERIFY_FAILED"}, {5, "CHAIN_LENGTH_EXCEEDED"}, {-1, NULL},
};

static const char *lookup(const struct rv_name *t, long v)
{
	for (; t->name; t++)
		if (t->v == v)
			return t->name;
	return NULL;
}

const char *at_pt_status_name(long v)
{
	const char *n = lookup(pt_status, v);

	return n ? n : "UNKNOWN_STATUS";
}

const char *at_return_name(const char *method, long v)
{
	const char *n = NULL;

	if (method && (!strcmp(method, "RequestStateChange") ||
		       !strcmp(method, "RequestPowerStateChange") ||
		       !strcmp(method, "SetPowerScheme")))
		n = lookup(cim_job, v);
	else if (method && !strcmp(method, "Put:AMT_KerberosSettingData"))
		n = lookup(kerberos, v);
	else if (method && !strcmp(method, "AddWiFiSettings"))
		n = lookup(wifi, v);
	else if (method && !strcmp(method, "AddNextCertInChain"))
		n = lookup(chain, v);
	return n ? n : at_pt_status_name(v);
}
