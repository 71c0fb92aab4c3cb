/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AMT host interface messages (docs/agent.md, "Message layouts"). Encoders write bytes one
 * by one (no packed structs, so alignment and host byte order never matter); decoders check
 * every length before they read.
 */
#include "mei_msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const uint8_t AMTHI_GUID[16] = {0x28, 0x00, 0xf8, 0x12, 0xb7, 0xb4, 0x2d, 0x4b,
				0xac, 0xa8, 0x46, 0xe0, 0xff, 0x65, 0x81, 0x4c};

uint16_t amthi_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t amthi_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

void amthi_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void amthi_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return AMTHI_EBADMSG;
}

size_t amthi_encode(uint32_t command, const uint8_t *body, size_t body_len, uint8_t *out,
		    size_t outsz)
{
	if (body_len > AMTHI_MAX_MSG - AMTHI_HDR_LEN || outsz < AMTHI_HDR_LEN + body_len)
		return 0;
	out[0] = AMTHI_VER_MAJOR;
	out[1] = AMTHI_VER_MINOR;
	amthi_put16(out + 2, 0);
	amthi_put32(out + 4, command);
	amthi_put32(out + 8, (uint32_t)body_len);
	if (body_len)
		memcpy(out + AMTHI_HDR_LEN, body, body_len);
	return AMTHI_HDR_LEN + body_len;
}

size_t amthi_req_simple(uint32_t command, uint8_t *out, size_t outsz)
{
	return amthi_encode(command, NULL, 0, out, outsz);
}

static size_t req_u32(uint32_t command, uint32_t v, uint8_t *out, size_t outsz)
{
	uint8_t b[4];

	amthi_put32(b, v);
	return amthi_encode(command, b, sizeof(b), out, outsz);
}

size_t amthi_req_lan(uint32_t interface_index, uint8_t *out, size_t outsz)
{
	return req_u32(AMTHI_CMD_GET_LAN_INTERFACE_SETTINGS, interface_index, out, outsz);
}

size_t amthi_req_hash_entry(uint32_t handle, uint8_t *out, size_t outsz)
{
	return req_u32(AMTHI_CMD_GET_CERTHASH_ENTRY, handle, out, outsz);
}

size_t amthi_req_set_otp(const char *otp, uint8_t *out, size_t outsz)
{
	uint8_t b[2 + AMTHI_OTP_MAX];
	size_t n = otp ? strlen(otp) : 0;
	size_t len;

	/* AMT_ANSI_STRING: u16 length, then the characters (no NUL). */
	if (n < AMTHI_OTP_MIN || n > AMTHI_OTP_MAX)
		return 0;
	amthi_put16(b, (uint16_t)n);
	memcpy(b + 2, otp, n);
	len = amthi_encode(AMTHI_CMD_SET_PROVISIONING_SERVER_OTP, b, 2 + n, out, outsz);
	memset(b, 0, sizeof(b));
	return len;
}

size_t amthi_req_start_configuration_ex(bool ipv6, uint8_t *out, size_t outsz)
{
	uint8_t b = ipv6 ? 1 : 0; /* one byte: a C++ bool in Intel's LMS */

	return amthi_encode(AMTHI_CMD_START_CONFIGURATION_EX, &b, 1, out, outsz);
}

int amthi_parse_response(const uint8_t *msg, size_t len, uint32_t request_command,
			 uint32_t *status, const uint8_t **body, size_t *body_len, char *err,
			 size_t errlen)
{
	uint32_t cmd, hlen;

	if (!msg || len == 0)
		return bad(err, errlen, "empty answer");
	if (len < AMTHI_HDR_LEN + 4)
		return bad(err, errlen, "answer of %zu bytes is shorter than a header and status",
			    len);
	if (len > AMTHI_MAX_MSG)
		return bad(err, errlen, "answer of %zu bytes is longer than %d", len, AMTHI_MAX_MSG);
	if (msg[0] != AMTHI_VER_MAJOR || msg[1] < AMTHI_VER_MINOR)
		return bad(err, errlen, "answer has header version %u.%u, not 1.1", msg[0], msg[1]);
	if (amthi_get16(msg + 2) != 0)
		return bad(err, errlen, "answer has a non-zero reserved field");
	cmd = amthi_get32(msg + 4);
	if (cmd != (request_command | AMTHI_RESPONSE_BIT))
		return bad(err, errlen, "answer is for command 0x%08x, not 0x%08x", cmd,
			   request_command | AMTHI_RESPONSE_BIT);
	hlen = amthi_get32(msg + 8);
	if (hlen != len - AMTHI_HDR_LEN)
		return bad(err, errlen, "answer header says %u bytes follow, %zu do", hlen,
			   len - AMTHI_HDR_LEN);
	*status = amthi_get32(msg + AMTHI_HDR_LEN);
	*body = msg + AMTHI_HDR_LEN + 4;
	*body_len = len - AMTHI_HDR_LEN - 4;
	return AMTHI_OK;
}

int amthi_dec_u32(const uint8_t *b, size_t len, uint32_t *v, char *err, size_t errlen)
{
	if (len != 4)
		return bad(err, errlen, "expected 4 bytes, got %zu", len);
	*v = amthi_get32(b);
	return AMTHI_OK;
}

/* Copies an AMT_UNICODE_STRING (u16 length + 20 bytes; despite the name, ASCII) at @p p. */
static int unicode_string(const uint8_t *p, char out[AMTHI_UNICODE_LEN + 1], const char *what,
			  unsigned i, char *err, size_t errlen)
{
	uint16_t n = amthi_get16(p);

	if (n > AMTHI_UNICODE_LEN)
		return bad(err, errlen, "version %u: %s length %u is over %d", i, what, n,
			   AMTHI_UNICODE_LEN);
	for (uint16_t k = 0; k < n; k++) {
		/* A trailing NUL inside the length is common; anything else must print. */
		if (p[2 + k] == 0 && k == n - 1)
			break;
		if (p[2 + k] < 0x20 || p[2 + k] > 0x7e)
			return bad(err, errlen, "version %u: %s has byte 0x%02x", i, what, p[2 + k]);
	}
	memcpy(out, p + 2, n);
	out[n] = '\0';
	return AMTHI_OK;
}

int amthi_dec_code_versions(const uint8_t *b, size_t len, struct amthi_code_versions *cv,
			    char *err, size_t errlen)
{
	size_t fixed = AMTHI_BIOS_VERSION_LEN + 4, i;
	uint32_t n;

	memset(cv, 0, sizeof(*cv));
	if (len < fixed)
		return bad(err, errlen, "code versions: %zu bytes, need at least %zu", len, fixed);
	n = amthi_get32(b + AMTHI_BIOS_VERSION_LEN);
	if (n > AMTHI_VERSIONS_MAX)
		return bad(err, errlen, "code versions: count %u is over %d", n, AMTHI_VERSIONS_MAX);
	if (len != fixed + (size_t)n * AMTHI_VERSION_TYPE_LEN)
		return bad(err, errlen, "code versions: %zu bytes for %u versions (want %zu)", len,
			   n, fixed + (size_t)n * AMTHI_VERSION_TYPE_LEN);
	/* The BIOS version is NUL-padded; keep what prints up to the first NUL. */
	for (i = 0; i < AMTHI_BIOS_VERSION_LEN && b[i]; i++) {
		if (b[i] < 0x20 || b[i] > 0x7e)
			return bad(err, errlen, "code versions: BIOS version has byte 0x%02x", b[i]);
		cv->bios[i] = (char)b[i];
	}
	cv->bios[i] = '\0';
	for (uint32_t k = 0; k < n; k++) {
		const uint8_t *p = b + fixed + (size_t)k * AMTHI_VERSION_TYPE_LEN;

		if (unicode_string(p, cv->v[k].description, "description", k, err, errlen) ||
		    unicode_string(p + 2 + AMTHI_UNICODE_LEN, cv->v[k].version, "version", k, err,
				   errlen))
			return AMTHI_EBADMSG;
	}
	cv->n = n;
	return AMTHI_OK;
}

void amthi_uuid_to_text(const uint8_t r[16], char out[37])
{
	/* SMBIOS order: time_low, time_mid, time_hi little-endian; the rest as stored. */
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[3], r[2],
		 r[1], r[0], r[5], r[4], r[7], r[6], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
		 r[15]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int amthi_uuid_from_text(const char *s, uint8_t raw[16])
{
	static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	uint8_t canon[16];
	int k = 0;

	if (!s || strlen(s) != 36)
		return -1;
	for (int i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -1;
			i++;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		canon[k++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	for (int i = 0; i < 16; i++)
		raw[order[i]] = canon[i];
	return 0;
}

int amthi_dec_uuid(const uint8_t *b, size_t len, char out[37], char *err, size_t errlen)
{
	if (len != 16)
		return bad(err, errlen, "UUID: expected 16 bytes, got %zu", len);
	amthi_uuid_to_text(b, out);
	return AMTHI_OK;
}

int amthi_dec_ansi_string(const uint8_t *b, size_t len, size_t max, char *out, size_t outsz,
			  char *err, size_t errlen)
{
	uint16_t n;

	if (len < 2)
		return bad(err, errlen, "string: %zu bytes, need a 2-byte length", len);
	n = amthi_get16(b);
	if (n > max || (size_t)n + 1 > outsz)
		return bad(err, errlen, "string: length %u is over %zu", n, max);
	if (len != 2 + (size_t)n)
		return bad(err, errlen, "string: %zu bytes for a length of %u", len, n);
	for (uint16_t i = 0; i < n; i++)
		if (b[2 + i] < 0x20 || b[2 + i] > 0x7e)
			return bad(err, errlen, "string: byte %u is 0x%02x", i, b[2 + i]);
	memcpy(out, b + 2, n);
	out[n] = '\0';
	return AMTHI_OK;
}

int amthi_dec_lan(const uint8_t *b, size_t len, struct amthi_lan *lan, char *err,
		  size_t errlen)
{
	if (len != AMTHI_LAN_LEN)
		return bad(err, errlen, "LAN settings: expected %d bytes, got %zu", AMTHI_LAN_LEN,
			   len);
	lan->enabled = amthi_get32(b);
	lan->ipv4 = amthi_get32(b + 4);
	lan->dhcp_enabled = amthi_get32(b + 8);
	lan->dhcp_mode = b[12];
	lan->link_up = b[13];
	memcpy(lan->mac, b + 14, 6);
	return AMTHI_OK;
}

int amthi_dec_hash_handles(const uint8_t *b, size_t len, struct amthi_hash_handles *hh,
			   char *err, size_t errlen)
{
	uint32_t n;

	memset(hh, 0, sizeof(*hh));
	if (len < 4)
		return bad(err, errlen, "hash handles: %zu bytes, need a count", len);
	n = amthi_get32(b);
	if (n > AMTHI_HASH_MAX)
		return bad(err, errlen, "hash handles: count %u is over %d", n, AMTHI_HASH_MAX);
	if (len != 4 + 4 * (size_t)n)
		return bad(err, errlen, "hash handles: %zu bytes for %u handles", len, n);
	for (uint32_t i = 0; i < n; i++)
		hh->h[i] = amthi_get32(b + 4 + 4 * i);
	hh->n = n;
	return AMTHI_OK;
}

size_t amthi_hash_size(unsigned algorithm)
{
	static const size_t sz[] = {16, 20, 32, 48, 28, 64};

	return algorithm < sizeof(sz) / sizeof(sz[0]) ? sz[algorithm] : 0;
}

const char *amthi_hash_name(unsigned algorithm)
{
	static const char *const nm[] = {"MD5", "SHA1", "SHA256", "SHA384", "SHA224", "SHA512"};

	return algorithm < sizeof(nm) / sizeof(nm[0]) ? nm[algorithm] : "unknown";
}

int amthi_dec_hash_entry(const uint8_t *b, size_t len, struct amthi_hash_entry *e, char *err,
			 size_t errlen)
{
	/* IsDefault u32, IsActive u32, CertificateHash[64], HashAlgorithm u8, Name. */
	const size_t name_at = 4 + 4 + AMTHI_HASH_FIELD + 1;

	memset(e, 0, sizeof(*e));
	if (len < name_at + 2)
		return bad(err, errlen, "hash entry: %zu bytes, need at least %zu", len,
			   name_at + 2);
	e->is_default = amthi_get32(b);
	e->is_active = amthi_get32(b + 4);
	memcpy(e->hash, b + 8, AMTHI_HASH_FIELD);
	e->algorithm = b[8 + AMTHI_HASH_FIELD];
	if (!amthi_hash_size(e->algorithm))
		return bad(err, errlen, "hash entry: unknown hash algorithm %u", e->algorithm);
	if (amthi_dec_ansi_string(b + name_at, len - name_at, AMTHI_HASH_NAME_MAX, e->name,
				  sizeof(e->name), err, errlen))
		return AMTHI_EBADMSG;
	return AMTHI_OK;
}

const char *amthi_version_of(const struct amthi_code_versions *cv, const char *description)
{
	for (unsigned i = 0; i < cv->n; i++)
		if (!strcmp(cv->v[i].description, description))
			return cv->v[i].version;
	return NULL;
}

const char *amthi_status_name(uint32_t status, char *buf, size_t bufsz)
{
	static const struct {
		uint32_t v;
		const char *n;
	} names[] = {
		{AMT_STATUS_SUCCESS, "AMT_STATUS_SUCCESS"},
		{AMT_STATUS_INTERNAL_ERROR, "AMT_STATUS_INTERNAL_ERROR"},
		{AMT_STATUS_NOT_READY, "AMT_STATUS_NOT_READY"},
		{AMT_STATUS_INVALID_AMT_MODE, "AMT_STATUS_INVALID_AMT_MODE"},
		{AMT_STATUS_INVALID_MESSAGE_LENGTH, "AMT_STATUS_INVALID_MESSAGE_LENGTH"},
		{AMT_STATUS_NOT_PERMITTED, "AMT_STATUS_NOT_PERMITTED"},
		{AMT_STATUS_MAX_LIMIT_REACHED, "AMT_STATUS_MAX_LIMIT_REACHED"},
		{AMT_STATUS_INVALID_PARAMETER, "AMT_STATUS_INVALID_PARAMETER"},
		{AMT_STATUS_RNG_GENERATION_IN_PROGRESS, "AMT_STATUS_RNG_GENERATION_IN_PROGRESS"},
		{AMT_STATUS_RNG_NOT_READY, "AMT_STATUS_RNG_NOT_READY"},
		{AMT_STATUS_CERTIFICATE_NOT_READY, "AMT_STATUS_CERTIFICATE_NOT_READY"},
		{AMT_STATUS_INVALID_HANDLE, "AMT_STATUS_INVALID_HANDLE"},
		{AMT_STATUS_NOT_FOUND, "AMT_STATUS_NOT_FOUND"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].v == status)
			return names[i].n;
	snprintf(buf, bufsz, "AMT status %u", status);
	return buf;
}
