/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by amtsim's modules: a growable string buffer (every response body is
 * built in one), bounded string copies, hex/base64, randomness and atomic file writes.
 * amtsim does not link the amtprov core on purpose: the simulator plays the firmware and must
 * not share code paths with the client it tests.
 */
#ifndef AMTSIM_SIMUTIL_H
#define AMTSIM_SIMUTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A growable NUL-terminated buffer. Zero-initialise, append, then sbuf_free(). */
struct sbuf {
	char *data;
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed: the content is truncated */
};

void sbuf_add(struct sbuf *b, const char *s);
void sbuf_addn(struct sbuf *b, const char *s, size_t n);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends @p s with XML's five special characters escaped. */
void sbuf_add_xml(struct sbuf *b, const char *s);
void sbuf_free(struct sbuf *b);

/** Copies @p src into @p dst (size @p size), always NUL-terminated. @return 0, or -1 if cut. */
int sim_strlcpy(char *dst, const char *src, size_t size);

/** Writes @p n bytes as lower- or upper-case hex into @p out (2n+1 bytes). */
void sim_hex(const unsigned char *in, size_t n, char *out, bool upper);

/** Parses 2n hex digits into @p out. @return number of bytes, or -1. */
int sim_unhex(const char *hex, unsigned char *out, size_t max);

/** Base64 (no newlines). Caller frees. */
char *sim_b64_encode(const unsigned char *in, size_t n);

/** Decodes base64 (whitespace ignored). Caller frees *out. @return 0 or -1. */
int sim_b64_decode(const char *in, unsigned char **out, size_t *outlen);

/** Cryptographically random bytes. @return 0 or -1. */
int sim_random(void *buf, size_t n);

/** Parses a whole decimal string in [min,max]. @return 0 or -1. */
int sim_parse_ll(const char *s, long long min, long long max, long long *out);

/** Writes @p len bytes to @p path via a temp file + fsync + rename, mode 0600. @return 0/-1. */
int sim_write_atomic(const char *path, const void *data, size_t len);

/** Reads a whole file (NUL-terminated). Caller frees. NULL on error. */
char *sim_read_file(const char *path, size_t *len);

#endif
