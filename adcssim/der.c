/* SPDX-License-Identifier: Apache-2.0 */
/*
 * der.c - a minimal DER writer and reader (definite lengths only, as DER requires).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "der.h"

void der_free(struct der_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

int buf_reserve(void **p, size_t *cap, size_t len, size_t need, size_t first_cap, int *oom)
{
	size_t c;
	void *n;

	if (*oom)
		return -1;
	if (len + need <= *cap)
		return 0;
	c = *cap ? *cap : first_cap;
	while (c < len + need)
		c *= 2;
	n = realloc(*p, c);
	if (!n) {
		*oom = 1;
		return -1;
	}
	*p = n;
	*cap = c;
	return 0;
}

static void grow(struct der_buf *b, size_t need)
{
	void *p = b->p;

	buf_reserve(&p, &b->cap, b->len, need, 64, &b->oom);
	b->p = p;
}

static void put_raw(struct der_buf *b, const void *d, size_t n)
{
	grow(b, n);
	if (b->oom)
		return;
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

void der_put(struct der_buf *b, unsigned tag, const void *content, size_t len)
{
	unsigned char hdr[8];
	size_t h = 0, i, n = 0;

	hdr[h++] = (unsigned char)tag;
	if (len < 0x80) {
		hdr[h++] = (unsigned char)len;
	} else {
		for (i = len; i; i >>= 8)
			n++;
		hdr[h++] = (unsigned char)(0x80 | n);
		for (i = n; i > 0; i--)
			hdr[h++] = (unsigned char)(len >> (8 * (i - 1)));
	}
	put_raw(b, hdr, h);
	put_raw(b, content, len);
}

void der_wrap(struct der_buf *b, unsigned tag, const struct der_buf *inner)
{
	if (inner->oom)
		b->oom = 1;
	der_put(b, tag, inner->p, inner->len);
}

void der_int(struct der_buf *b, long v)
{
	unsigned char c[sizeof(long) + 1];
	size_t n = 0, i;
	unsigned long u = (unsigned long)v;

	/* Big endian, minimal, with a sign byte when the top bit would say negative. */
	for (i = sizeof(long); i > 0; i--)
		c[n++] = (unsigned char)(u >> (8 * (i - 1)));
	i = 0;
	while (i < n - 1 && ((c[i] == 0 && !(c[i + 1] & 0x80)) ||
			     (c[i] == 0xff && (c[i + 1] & 0x80))))
		i++;
	der_put(b, 0x02, c + i, n - i);
}

int der_oid(struct der_buf *b, const char *dotted)
{
	unsigned char c[64];
	size_t n = 0;
	unsigned long arcs[32];
	size_t na = 0, i;
	const char *s = dotted;
	char *e;

	while (*s && na < 32) {
		arcs[na++] = strtoul(s, &e, 10);
		if (e == s || (*e && *e != '.'))
			return -1;
		s = *e ? e + 1 : e;
	}
	if (na < 2 || *s)
		return -1;
	arcs[1] += arcs[0] * 40;
	for (i = 1; i < na; i++) {
		unsigned char t[10];
		size_t k = 0;
		unsigned long v = arcs[i];

		do {
			t[k++] = (unsigned char)(v & 0x7f);
			v >>= 7;
		} while (v);
		if (n + k > sizeof(c))
			return -1;
		while (k > 0) {
			k--;
			c[n++] = (unsigned char)(t[k] | (k ? 0x80 : 0));
		}
	}
	der_put(b, 0x06, c, n);
	return 0;
}

void der_utf8(struct der_buf *b, const char *s)
{
	der_put(b, 0x0c, s, strlen(s));
}

void der_bmp(struct der_buf *b, const char *s)
{
	size_t n = strlen(s), i;
	unsigned char *c = malloc(2 * n + 1);

	if (!c) {
		b->oom = 1;
		return;
	}
	for (i = 0; i < n; i++) {
		c[2 * i] = 0;
		c[2 * i + 1] = (unsigned char)s[i];
	}
	der_put(b, 0x1e, c, 2 * n);
	free(c);
}

int der_next(const unsigned char **p, const unsigned char *end, unsigned *tag,
	     const unsigned char **content, size_t *clen)
{
	const unsigned char *q = *p;
	size_t len = 0, n, i;

	if (end - q < 2)
		return -1;
	*tag = *q++;
	if ((*tag & 0x1f) == 0x1f)
		return -1; /* high tag numbers: never in what we read */
	if (*q < 0x80) {
		len = *q++;
	} else {
		n = *q++ & 0x7f;
		if (n == 0 || n > 4 || (size_t)(end - q) < n)
			return -1;
		for (i = 0; i < n; i++)
			len = (len << 8) | *q++;
	}
	if ((size_t)(end - q) < len)
		return -1;
	*content = q;
	*clen = len;
	*p = q + len;
	return 0;
}

int der_oid_text(const unsigned char *c, size_t len, char *out, size_t outsz)
{
	size_t i, o = 0;
	unsigned long v = 0;
	int first = 1, w;

	if (len == 0 || outsz == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (v > (~0UL >> 8))
			return -1;
		v = (v << 7) | (c[i] & 0x7f);
		if (c[i] & 0x80)
			continue;
		if (first) {
			unsigned long a = v < 80 ? v / 40 : 2;

			w = snprintf(out + o, outsz - o, "%lu.%lu", a, v - a * 40);
			first = 0;
		} else {
			w = snprintf(out + o, outsz - o, ".%lu", v);
		}
		if (w < 0 || (size_t)w >= outsz - o)
			return -1;
		o += (size_t)w;
		v = 0;
	}
	return (c[len - 1] & 0x80) ? -1 : 0;
}

int der_int_value(const unsigned char *c, size_t len, long *out)
{
	long v;
	size_t i;

	if (len == 0 || len > sizeof(long) - 1)
		return -1;
	v = (c[0] & 0x80) ? -1 : 0;
	for (i = 0; i < len; i++)
		v = (long)(((unsigned long)v << 8) | c[i]);
	*out = v;
	return 0;
}
