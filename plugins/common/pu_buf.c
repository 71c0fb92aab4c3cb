/* SPDX-License-Identifier: Apache-2.0 */
/* pu_buf.c - the growable text buffer of pu_buf.h. */
#include "pu_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static int grow(struct pu_buf *b, size_t more)
{
	size_t want = b->len + more + 1;
	char *p;

	if (want < more) /* size_t overflow */
		b->oom = 1;
	if (b->oom)
		return -1;
	if (want <= b->cap)
		return 0;
	if (want < 256)
		want = 256;
	if (want < b->cap * 2)
		want = b->cap * 2;
	if (!(p = realloc(b->p, want))) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = want;
	return 0;
}

void pu_buf_addn(struct pu_buf *b, const char *s, size_t n)
{
	if (grow(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void pu_buf_add(struct pu_buf *b, const char *s)
{
	pu_buf_addn(b, s, strlen(s));
}

void pu_buf_printf(struct pu_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void pu_buf_add_xml(struct pu_buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': pu_buf_add(b, "&lt;"); break;
		case '>': pu_buf_add(b, "&gt;"); break;
		case '&': pu_buf_add(b, "&amp;"); break;
		case '"': pu_buf_add(b, "&quot;"); break;
		case '\'': pu_buf_add(b, "&apos;"); break;
		default: pu_buf_addn(b, s, 1); break;
		}
	}
}

void pu_buf_reset(struct pu_buf *b)
{
	b->len = 0;
	b->oom = 0;
	b->over = 0;
	if (b->p)
		b->p[0] = '\0';
}

void pu_buf_free(struct pu_buf *b)
{
	if (b->p)
		OPENSSL_cleanse(b->p, b->cap);
	free(b->p);
	memset(b, 0, sizeof(*b));
}

char *pu_buf_take(struct pu_buf *b)
{
	char *p = b->p;

	if (b->oom || !p) {
		pu_buf_free(b);
		return NULL;
	}
	memset(b, 0, sizeof(*b));
	return p;
}
