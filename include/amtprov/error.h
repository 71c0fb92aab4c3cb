/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file error.h
 * @brief Status codes and the caller-owned error buffer used across the amtprov ABI.
 *
 * Every fallible call in the ABI returns an `int` that is one of `enum amtprov_status`
 * (0 = success) and, on failure, fills a caller-owned `struct amtprov_error`. Foreign
 * conventions (OpenSSL's 1/0, errno, libxml2's -1) stop at the plugin's own wrappers.
 *
 * Everything here is header-only (static inline), so a plugin never links libamtprov.
 */
#ifndef AMTPROV_ERROR_H
#define AMTPROV_ERROR_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Status codes. Values are stable: they are stored in the site database and printed in
 * logs. New codes are only appended.
 */
enum amtprov_status {
	AMTPROV_OK = 0,
	AMTPROV_E_INVALID = 1,        /**< bad argument or malformed input */
	AMTPROV_E_NOMEM = 2,          /**< out of memory */
	AMTPROV_E_NOT_FOUND = 3,      /**< no such object (device, secret, plugin, file) */
	AMTPROV_E_NOT_SUPPORTED = 4,  /**< operation or slot not provided */
	AMTPROV_E_IO = 5,             /**< file or socket I/O failed */
	AMTPROV_E_PARSE = 6,          /**< could not parse (JSON, XML, DER, PEM) */
	AMTPROV_E_VERIFY = 7,         /**< a certificate, signature or integrity check failed */
	AMTPROV_E_STATE = 8,          /**< not valid in the object's current state */
	AMTPROV_E_UNREACHABLE = 9,    /**< peer cannot be reached now; retry later */
	AMTPROV_E_AUTH = 10,          /**< authentication failed */
	AMTPROV_E_DENIED = 11,        /**< refused by the peer or by policy */
	AMTPROV_E_TIMEOUT = 12,       /**< the peer did not answer in time */
	AMTPROV_E_PROTOCOL = 13,      /**< the peer broke the protocol */
	AMTPROV_E_ABI = 14,           /**< plugin ABI mismatch */
	AMTPROV_E_CONFIG = 15,        /**< configuration error (manifest, plugin section) */
	AMTPROV_E_EXISTS = 16,        /**< object already exists */
	AMTPROV_E_DEVICE = 17,        /**< AMT returned a failure return value */
	AMTPROV_E_CRYPTO = 18,        /**< a cryptographic library call failed */
	AMTPROV_E_INTERNAL = 19,      /**< a bug: an invariant did not hold */
	AMTPROV_E_BUSY = 20,          /**< resource busy (database locked, device in use) */
	AMTPROV_E_CORRUPT = 21,       /**< stored data is damaged (database, credential store) */
	AMTPROV_AGAIN = 100,          /**< not an error: call again when the wait is ready */
};

/** Size of the human-readable message in struct amtprov_error, NUL included. */
#define AMTPROV_ERROR_MSG_SIZE 256
/** Size of the location (file, JSON path, device) in struct amtprov_error, NUL included. */
#define AMTPROV_ERROR_WHERE_SIZE 128

/**
 * An error: a code, a message a person can act on, and where it happened (a file name, a
 * JSON path such as `/ca/0/template`, or a device FQDN).
 *
 * Ownership: always caller-owned (usually on the stack); the callee only writes into it.
 * The first error set wins: amtprov_error_set() leaves a buffer that already holds an
 * error untouched, so the innermost, most specific cause is what the user sees.
 */
struct amtprov_error {
	int code;
	char msg[AMTPROV_ERROR_MSG_SIZE];
	char where[AMTPROV_ERROR_WHERE_SIZE];
};

/** Resets @p err to "no error". Accepts NULL. */
static inline void amtprov_error_clear(struct amtprov_error *err)
{
	if (err) {
		err->code = AMTPROV_OK;
		err->msg[0] = '\0';
		err->where[0] = '\0';
	}
}

/**
 * Sets @p err unless it already holds an error.
 *
 * @param[out] err   the buffer to fill; may be NULL (then only the code is returned)
 * @param[in]  code  an amtprov_status other than AMTPROV_OK
 * @param[in]  where location (copied, truncated to fit); may be NULL
 * @param[in]  fmt   printf format for the message (copied; a message longer than
 *                   AMTPROV_ERROR_MSG_SIZE - 1 ends at a word boundary with " ...")
 * @return @p code, so callers can write `return amtprov_error_set(err, ...)`.
 */
/**
 * Ends a message that did not fit in @p size bytes at a word boundary, marked " ...", so
 * a reader sees that text is missing and never a word cut in two. Used by
 * amtprov_error_set(); @p msg holds size - 1 characters.
 */
static inline void amtprov_error_cut(char *msg, size_t size)
{
	size_t end = size - 5, i = end; /* room for " ..." and the NUL */

	while (i > end / 2 && msg[i] != ' ')
		i--;
	if (msg[i] != ' ')
		i = end; /* one word longer than half the buffer: cut it, marked */
	memcpy(msg + i, " ...", 5);
}

static inline int amtprov_error_set(struct amtprov_error *err, int code, const char *where,
				    const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

static inline int amtprov_error_set(struct amtprov_error *err, int code, const char *where,
				    const char *fmt, ...)
{
	va_list ap;

	if (!err || err->code != AMTPROV_OK)
		return code;
	err->code = code;
	snprintf(err->where, sizeof(err->where), "%s", where ? where : "");
	va_start(ap, fmt);
	if (vsnprintf(err->msg, sizeof(err->msg), fmt, ap) >= (int)sizeof(err->msg))
		amtprov_error_cut(err->msg, sizeof(err->msg));
	va_end(ap);
	return code;
}

/** Generic text for a status code; never NULL, static storage. */
static inline const char *amtprov_strerror(int code)
{
	switch (code) {
	case AMTPROV_OK: return "success";
	case AMTPROV_E_INVALID: return "invalid argument or input";
	case AMTPROV_E_NOMEM: return "out of memory";
	case AMTPROV_E_NOT_FOUND: return "not found";
	case AMTPROV_E_NOT_SUPPORTED: return "not supported";
	case AMTPROV_E_IO: return "input/output error";
	case AMTPROV_E_PARSE: return "parse error";
	case AMTPROV_E_VERIFY: return "verification failed";
	case AMTPROV_E_STATE: return "invalid state for this operation";
	case AMTPROV_E_UNREACHABLE: return "unreachable";
	case AMTPROV_E_AUTH: return "authentication failed";
	case AMTPROV_E_DENIED: return "denied";
	case AMTPROV_E_TIMEOUT: return "timed out";
	case AMTPROV_E_PROTOCOL: return "protocol error";
	case AMTPROV_E_ABI: return "plugin ABI mismatch";
	case AMTPROV_E_CONFIG: return "configuration error";
	case AMTPROV_E_EXISTS: return "already exists";
	case AMTPROV_E_DEVICE: return "AMT device reported a failure";
	case AMTPROV_E_CRYPTO: return "cryptographic operation failed";
	case AMTPROV_E_INTERNAL: return "internal error";
	case AMTPROV_E_BUSY: return "busy";
	case AMTPROV_E_CORRUPT: return "stored data is corrupt";
	case AMTPROV_AGAIN: return "in progress";
	default: return "unknown error";
	}
}

/** Stable symbolic name of a status code ("E_NOT_FOUND"); never NULL. */
static inline const char *amtprov_status_name(int code)
{
	switch (code) {
	case AMTPROV_OK: return "OK";
	case AMTPROV_E_INVALID: return "E_INVALID";
	case AMTPROV_E_NOMEM: return "E_NOMEM";
	case AMTPROV_E_NOT_FOUND: return "E_NOT_FOUND";
	case AMTPROV_E_NOT_SUPPORTED: return "E_NOT_SUPPORTED";
	case AMTPROV_E_IO: return "E_IO";
	case AMTPROV_E_PARSE: return "E_PARSE";
	case AMTPROV_E_VERIFY: return "E_VERIFY";
	case AMTPROV_E_STATE: return "E_STATE";
	case AMTPROV_E_UNREACHABLE: return "E_UNREACHABLE";
	case AMTPROV_E_AUTH: return "E_AUTH";
	case AMTPROV_E_DENIED: return "E_DENIED";
	case AMTPROV_E_TIMEOUT: return "E_TIMEOUT";
	case AMTPROV_E_PROTOCOL: return "E_PROTOCOL";
	case AMTPROV_E_ABI: return "E_ABI";
	case AMTPROV_E_CONFIG: return "E_CONFIG";
	case AMTPROV_E_EXISTS: return "E_EXISTS";
	case AMTPROV_E_DEVICE: return "E_DEVICE";
	case AMTPROV_E_CRYPTO: return "E_CRYPTO";
	case AMTPROV_E_INTERNAL: return "E_INTERNAL";
	case AMTPROV_E_BUSY: return "E_BUSY";
	case AMTPROV_E_CORRUPT: return "E_CORRUPT";
	case AMTPROV_AGAIN: return "AGAIN";
	default: return "E_UNKNOWN";
	}
}

#ifdef __cplusplus
}
#endif

#endif /* AMTPROV_ERROR_H */
