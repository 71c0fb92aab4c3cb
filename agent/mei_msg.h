/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AMT host interface (AMTHI, "PTHI") messages provisioning needs: encoders for the
 * requests and strict decoders for the answers. Byte layouts and their public sources are in
 * docs/agent.md. Everything is little-endian and packed. A decoder never trusts a length
 * the firmware sends: an answer that is short, long, or inconsistent is refused with a
 * reason, never read past.
 *
 * Shared by amtprov-agent and amtsim's simulated MEI (sim/mei.c), so both sides of the
 * socket agree on one definition of every layout.
 */
#ifndef AMTPROV_AGENT_MEI_MSG_H
#define AMTPROV_AGENT_MEI_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Header: u8 major, u8 minor, u16 reserved, u32 command, u32 length (of what follows). */
#define AMTHI_HDR_LEN 12
#define AMTHI_VER_MAJOR 1
#define AMTHI_VER_MINOR 1
/* Bit 23 of the command marks the answer (Operation:23, IsResponse:1, Class:8). */
#define AMTHI_RESPONSE_BIT 0x00800000u
/* Largest message either side accepts (GetCodeVersions' answer is at most 2,297 bytes). */
#define AMTHI_MAX_MSG 4096

/* Commands (class 0x04 = configuration). */
#define AMTHI_CMD_GET_PROVISIONING_STATE 0x04000011u
#define AMTHI_CMD_GET_CODE_VERSIONS 0x0400001Au
#define AMTHI_CMD_START_CONFIGURATION 0x04000029u
#define AMTHI_CMD_SET_PROVISIONING_SERVER_OTP 0x0400002Au
#define AMTHI_CMD_ENUMERATE_HASH_HANDLES 0x0400002Cu
#define AMTHI_CMD_GET_CERTHASH_ENTRY 0x0400002Du
#define AMTHI_CMD_GET_PKI_FQDN_SUFFIX 0x04000036u
#define AMTHI_CMD_GET_LAN_INTERFACE_SETTINGS 0x04000048u
#define AMTHI_CMD_GET_UUID 0x0400005Cu
#define AMTHI_CMD_STOP_CONFIGURATION 0x0400005Eu
#define AMTHI_CMD_START_CONFIGURATION_EX 0x04000062u
#define AMTHI_CMD_GET_CONTROL_MODE 0x0400006Bu

/* AMT_STATUS values the agent tells apart. */
enum amthi_status {
	AMT_STATUS_SUCCESS = 0,
	AMT_STATUS_INTERNAL_ERROR = 1,
	AMT_STATUS_NOT_READY = 2,
	AMT_STATUS_INVALID_AMT_MODE = 3,
	AMT_STATUS_INVALID_MESSAGE_LENGTH = 4,
	AMT_STATUS_NOT_PERMITTED = 16,
	AMT_STATUS_MAX_LIMIT_REACHED = 23,
	AMT_STATUS_INVALID_PARAMETER = 36,
	AMT_STATUS_RNG_GENERATION_IN_PROGRESS = 47,
	AMT_STATUS_RNG_NOT_READY = 48,
	AMT_STATUS_CERTIFICATE_NOT_READY = 49,
	AMT_STATUS_INVALID_HANDLE = 2053,
	AMT_STATUS_NOT_FOUND = 2068,
};

/* Field sizes of the fixed layouts. */
#define AMTHI_BIOS_VERSION_LEN 65
#define AMTHI_VERSIONS_MAX 50
#define AMTHI_UNICODE_LEN 20       /* AMT_UNICODE_STRING: u16 length + 20 bytes */
#define AMTHI_VERSION_TYPE_LEN 44  /* description + version */
#define AMTHI_HASH_MAX 33          /* CERT_HASH_MAX_NUMBER */
#define AMTHI_HASH_FIELD 64        /* CERT_HASH_MAX_LENGTH */
#define AMTHI_HASH_NAME_MAX 255    /* our bound for a hash entry's name */
#define AMTHI_OTP_MIN 8
#define AMTHI_OTP_MAX 32
#define AMTHI_DNS_SUFFIX_MAX 255   /* our bound; AMT's PKI suffix is at most 223 */
#define AMTHI_LAN_LEN 20

/* The AMTHI client's GUID 12f80028-b4b7-4b2d-aca8-46e0ff65814c, in the byte order of the
 * kernel's uuid_le (first three groups little-endian), as the connect ioctl takes it. */
extern const uint8_t AMTHI_GUID[16];

/* Socket framing (docs/agent.md): every frame is a u32 LE length and that many bytes; the
 * first frame is the connect request (the GUID), answered by a 6-byte frame: result
 * (below), u32 LE max message length, u8 protocol version. */
enum { MEI_SOCK_CONNECTED = 0, MEI_SOCK_NO_CLIENT = 1, MEI_SOCK_BUSY = 2 };
#define MEI_SOCK_CONNECT_ANSWER_LEN 6

/* Decoder results. */
enum { AMTHI_OK = 0, AMTHI_EBADMSG = -1 };

struct amthi_version {
	char description[AMTHI_UNICODE_LEN + 1];
	char version[AMTHI_UNICODE_LEN + 1];
};

struct amthi_code_versions {
	char bios[AMTHI_BIOS_VERSION_LEN + 1];
	unsigned n;
	struct amthi_version v[AMTHI_VERSIONS_MAX];
};

struct amthi_lan {
	uint32_t enabled;
	uint32_t ipv4;          /* 0x01020304 is 1.2.3.4 */
	uint32_t dhcp_enabled;
	uint8_t dhcp_mode;      /* 1 active, 2 passive */
	uint8_t link_up;
	uint8_t mac[6];
};

struct amthi_hash_handles {
	unsigned n;
	uint32_t h[AMTHI_HASH_MAX];
};

/* HashAlgorithm: 0 MD5, 1 SHA-1, 2 SHA-256, 3 SHA-384, 4 SHA-224, 5 SHA-512. */
struct amthi_hash_entry {
	uint32_t is_default;
	uint32_t is_active;
	uint8_t hash[AMTHI_HASH_FIELD];
	uint8_t algorithm;
	char name[AMTHI_HASH_NAME_MAX + 1];
};

/* Little-endian accessors (also used by the simulator). */
uint16_t amthi_get16(const uint8_t *p);
uint32_t amthi_get32(const uint8_t *p);
void amthi_put16(uint8_t *p, uint16_t v);
void amthi_put32(uint8_t *p, uint32_t v);

/** Writes header + @p body (may be NULL when @p body_len is 0) for @p command into @p out.
 * @return the message length, or 0 when it does not fit @p outsz. */
size_t amthi_encode(uint32_t command, const uint8_t *body, size_t body_len, uint8_t *out,
		    size_t outsz);

/* Requests. Each returns the message length, 0 on a bad argument or a short buffer. */
size_t amthi_req_simple(uint32_t command, uint8_t *out, size_t outsz); /* no body */
size_t amthi_req_lan(uint32_t interface_index, uint8_t *out, size_t outsz);
size_t amthi_req_hash_entry(uint32_t handle, uint8_t *out, size_t outsz);
size_t amthi_req_set_otp(const char *otp, uint8_t *out, size_t outsz);
size_t amthi_req_start_configuration_ex(bool ipv6, uint8_t *out, size_t outsz);

/** Checks an answer to @p request_command: length >= header + status, version 1.x with
 * x >= 1, reserved 0, command = request | response bit, header length = what follows.
 * Sets @p status, and @p body / @p body_len to what follows the status.
 * @return AMTHI_OK or AMTHI_EBADMSG with the reason in @p err. */
int amthi_parse_response(const uint8_t *msg, size_t len, uint32_t request_command,
			 uint32_t *status, const uint8_t **body, size_t *body_len, char *err,
			 size_t errlen);

/* Body decoders (what follows a SUCCESS status). Exact lengths: trailing bytes are refused. */
int amthi_dec_u32(const uint8_t *b, size_t len, uint32_t *v, char *err, size_t errlen);
int amthi_dec_code_versions(const uint8_t *b, size_t len, struct amthi_code_versions *cv,
			    char *err, size_t errlen);
int amthi_dec_uuid(const uint8_t *b, size_t len, char out[37], char *err, size_t errlen);
int amthi_dec_ansi_string(const uint8_t *b, size_t len, size_t max, char *out, size_t outsz,
			  char *err, size_t errlen);
int amthi_dec_lan(const uint8_t *b, size_t len, struct amthi_lan *lan, char *err,
		  size_t errlen);
int amthi_dec_hash_handles(const uint8_t *b, size_t len, struct amthi_hash_handles *hh,
			   char *err, size_t errlen);
int amthi_dec_hash_entry(const uint8_t *b, size_t len, struct amthi_hash_entry *e, char *err,
			 size_t errlen);

/** The value of the code-versions entry named @p description ("AMT", "Sku", ...) or NULL. */
const char *amthi_version_of(const struct amthi_code_versions *cv, const char *description);

/** Bytes of a hash of @p algorithm (0 when unknown) and its name ("SHA256", ...). */
size_t amthi_hash_size(unsigned algorithm);
const char *amthi_hash_name(unsigned algorithm);

/** SMBIOS byte order (first three groups little-endian) <-> canonical lower-case text.
 * amthi_uuid_from_text @return 0, or -1 when @p s is not 8-4-4-4-12 hex. */
void amthi_uuid_to_text(const uint8_t raw[16], char out[37]);
int amthi_uuid_from_text(const char *s, uint8_t raw[16]);

/** A short name for an AMT_STATUS ("AMT_STATUS_NOT_READY", or "status N" in @p buf). */
const char *amthi_status_name(uint32_t status, char *buf, size_t bufsz);

#endif
