/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file pu_buf.h
 * @brief A growable text buffer for the messages amtprov's own plugins build (SOAP, WS-Man)
 *        and the answers they read. Not part of the plugin ABI.
 */
#ifndef AMTPROV_PU_BUF_H
#define AMTPROV_PU_BUF_H

#include <stddef.h>

/**
 * Always NUL-terminated once written to. When memory runs out the text stays as it was and
 * @p oom is set (later appends do nothing), so a builder checks once at the end.
 */
struct pu_buf {
	char *p;
	size_t len, cap;
	int oom;
	int over; /* for readers: the text outgrew the reader's limit and reading stopped */
};

void pu_buf_addn(struct pu_buf *b, const char *s, size_t n);
void pu_buf_add(struct pu_buf *b, const char *s);
void pu_buf_printf(struct pu_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends @p s (may be NULL) with the five XML special characters escaped. */
void pu_buf_add_xml(struct pu_buf *b, const char *s);
/** Empties the text, keeps the memory. */
void pu_buf_reset(struct pu_buf *b);
/** Wipes (the text may hold a password) and frees; the buffer is empty again. */
void pu_buf_free(struct pu_buf *b);
/** The finished text, the caller's to free; NULL (and the buffer freed) when memory ran out. */
char *pu_buf_take(struct pu_buf *b);

#endif /* AMTPROV_PU_BUF_H */
