/* SPDX-License-Identifier: Apache-2.0 */
/*
 * der.h - the few DER pieces adcssim builds and reads by hand: the CMC PKIResponse
 * (RFC 5272) and Microsoft's template extensions, which OpenSSL has no types for.
 */
#ifndef ADCSSIM_DER_H
#define ADCSSIM_DER_H

#include <stddef.h>
#include <stdint.h>

struct der_buf {
	unsigned char *p;
	size_t len, cap;
	int oom;
};

/* Makes room for need more bytes after len in a realloc'd buffer of *cap bytes (doubling
 * from first_cap); sets *oom and returns -1 when memory runs out. Shared with soap.c. */
int buf_reserve(void **p, size_t *cap, size_t len, size_t need, size_t first_cap, int *oom);

void der_free(struct der_buf *b);
/* Appends one TLV whose contents are the bytes given. */
void der_put(struct der_buf *b, unsigned tag, const void *content, size_t len);
/* Appends one TLV whose contents are another buffer (a constructed element). */
void der_wrap(struct der_buf *b, unsigned tag, const struct der_buf *inner);
void der_int(struct der_buf *b, long v);
/* Dotted OID text -> OBJECT IDENTIFIER TLV; returns -1 on a malformed OID. */
int der_oid(struct der_buf *b, const char *dotted);
void der_utf8(struct der_buf *b, const char *s);
/* ASCII -> BMPString (UCS-2 big endian), how Windows writes template names. */
void der_bmp(struct der_buf *b, const char *s);

/* Reader: one TLV at *p (end at end). Returns 0 and sets tag/content/clen, advances *p. */
int der_next(const unsigned char **p, const unsigned char *end, unsigned *tag,
	     const unsigned char **content, size_t *clen);
/* OID contents -> dotted text. */
int der_oid_text(const unsigned char *c, size_t len, char *out, size_t outsz);
/* INTEGER contents -> long (small values only). */
int der_int_value(const unsigned char *c, size_t len, long *out);

#endif
