/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ad_util.c - the directory-ad plugin's pure helpers: SIDs, the Kerberos salt, DN and filter
 * escaping, name forms, passwords. No LDAP here, so each is unit-tested alone.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "ad.h"

int ad_sid_to_string(const uint8_t *sid, size_t len, char *out, size_t size)
{
	uint64_t auth = 0;
	size_t n, used;
	int w;

	/* MS-DTYP 2.4.2: revision, sub-authority count, 48-bit big-endian authority, then
	 * the count of 32-bit little-endian sub-authorities. */
	if (!sid || len < 8 || sid[0] != 1)
		return -1;
	n = sid[1];
	if (n > 15 || len != 8 + 4 * n)
		return -1;
	for (int i = 2; i < 8; i++)
		auth = (auth << 8) | sid[i];
	w = snprintf(out, size, "S-1-%llu", (unsigned long long)auth);
	if (w < 0 || (size_t)w >= size)
		return -1;
	used = (size_t)w;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = sid + 8 + 4 * i;
		uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			     (uint32_t)p[3] << 24;

		w = snprintf(out + used, size - used, "-%lu", (unsigned long)v);
		if (w < 0 || (size_t)w >= size - used)
			return -1;
		used += (size_t)w;
	}
	return 0;
}

static void lower_into(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
}

int ad_computer_salt(const char *realm, const char *sam, const char *dns_domain, char *out,
		     size_t size)
{
	size_t rl = strlen(realm), sl = strlen(sam), dl = strlen(dns_domain), need;

	if (sl && sam[sl - 1] == '$')
		sl--;
	need = rl + 4 + sl + 1 + dl + 1;
	if (!rl || !sl || !dl || need > size)
		return -1;
	for (size_t i = 0; i < rl; i++)
		out[i] = (char)toupper((unsigned char)realm[i]);
	memcpy(out + rl, "host", 4);
	lower_into(out + rl + 4, sam, sl);
	out[rl + 4 + sl] = '.';
	lower_into(out + rl + 5 + sl, dns_domain, dl);
	out[need - 1] = '\0';
	return 0;
}

enum esc { ESC_NONE, ESC_BACKSLASH, ESC_HEX };

/* Copies @p in to @p out, each character as @p how says: itself, after a backslash, or as
 * a backslash and two hex digits. */
static int escape(const char *in, char *out, size_t size,
		  enum esc (*how)(const unsigned char *in, size_t i, size_t n))
{
	size_t o = 0, n = strlen(in);

	for (size_t i = 0; i < n; i++) {
		enum esc e = how((const unsigned char *)in, i, n);
		size_t need = e == ESC_HEX ? 3 : e == ESC_BACKSLASH ? 2 : 1;

		if (o + need + 1 > size)
			return -1;
		if (e == ESC_HEX) {
			snprintf(out + o, 4, "\\%02x", (unsigned char)in[i]);
		} else {
			if (e == ESC_BACKSLASH)
				out[o] = '\\';
			out[o + need - 1] = in[i];
		}
		o += need;
	}
	if (o + 1 > size)
		return -1;
	out[o] = '\0';
	return 0;
}

/* RFC 4514 2.4: the specials, a leading blank or '#', a trailing blank; controls in hex. */
static enum esc dn_how(const unsigned char *in, size_t i, size_t n)
{
	unsigned char c = in[i];

	if (c < 0x20 || c == 0x7f)
		return ESC_HEX;
	if ((i == 0 && (c == ' ' || c == '#')) || (i == n - 1 && c == ' ') ||
	    strchr(",+\"\\<>;=", c))
		return ESC_BACKSLASH;
	return ESC_NONE;
}

int ad_dn_escape(const char *in, char *out, size_t size)
{
	return escape(in, out, size, dn_how);
}

/* RFC 4515 3: '*', '(', ')', '\\' and NUL in hex (controls too, for readable filters). */
static enum esc filter_how(const unsigned char *in, size_t i, size_t n)
{
	unsigned char c = in[i];

	(void)n;
	return c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 ? ESC_HEX : ESC_NONE;
}

int ad_filter_escape(const char *in, char *out, size_t size)
{
	return escape(in, out, size, filter_how);
}

int ad_dn_to_dns(const char *dn, char *out, size_t size)
{
	size_t o = 0;
	const char *p = dn;

	while (*p) {
		const char *end;
		size_t n;

		while (*p == ' ' || *p == ',')
			p++;
		end = p;
		while (*end && !(*end == ',' && end[-1] != '\\'))
			end++;
		if (end - p > 3 && strncasecmp(p, "DC=", 3) == 0) {
			n = (size_t)(end - p - 3);
			if (o + n + 2 > size)
				return -1;
			if (o)
				out[o++] = '.';
			lower_into(out + o, p + 3, n);
			o += n;
		}
		p = end;
	}
	if (!o || o >= size)
		return -1;
	out[o] = '\0';
	return 0;
}

static int copy_part(const char *s, size_t n, char *out, size_t size)
{
	if (!n || n >= size)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int ad_parse_name(const char *name, char *user, size_t user_size, char *domain,
		  size_t domain_size)
{
	const char *bs, *at;

	if (!name || !*name || domain_size < 1)
		return -1;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return -1;
	bs = strchr(name, '\\');
	at = strchr(name, '@');
	if ((bs && at) || (bs && strchr(bs + 1, '\\')) || (at && strchr(at + 1, '@')))
		return -1;
	domain[0] = '\0';
	if (bs) {
		if (copy_part(name, (size_t)(bs - name), domain, domain_size) < 0 ||
		    copy_part(bs + 1, strlen(bs + 1), user, user_size) < 0)
			return -1;
		return AD_NAME_NETBIOS;
	}
	if (at) {
		if (copy_part(name, (size_t)(at - name), user, user_size) < 0 ||
		    copy_part(at + 1, strlen(at + 1), domain, domain_size) < 0)
			return -1;
		return AD_NAME_UPN;
	}
	if (copy_part(name, strlen(name), user, user_size) < 0)
		return -1;
	return AD_NAME_BARE;
}

int ad_sam_name(const char *account_name, char *out, size_t size)
{
	size_t n = strlen(account_name);

	while (n && account_name[n - 1] == '$')
		n--;
	/* AD's limit for a computer's sAMAccountName: 15 characters before the '$'. */
	if (!n || n > 15 || n + 2 > size)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)account_name[i];

		if (!isalnum(c) && c != '-' && c != '_')
			return -1;
		out[i] = (char)toupper(c);
	}
	out[n] = '$';
	out[n + 1] = '\0';
	return 0;
}

int ad_random_password(char *out, size_t len)
{
	static const char *const classes[] = {
		"ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "!#%+-.:=?@_~",
	};
	static const char all[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
				  "!#%+-.:=?@_~";
	uint8_t r[128];

	if (len < 16 || len > 120)
		return -1;
	for (;;) {
		int seen[4] = {0, 0, 0, 0};

		if (RAND_bytes(r, (int)len) != 1)
			return -1;
		for (size_t i = 0; i < len; i++) {
			/* Rejection would be uniform; 256 % 69 bias is negligible next to
			 * 120+ bits of entropy and keeps the loop bounded. */
			out[i] = all[r[i] % (sizeof(all) - 1)];
			for (int k = 0; k < 4; k++)
				if (strchr(classes[k], out[i]))
					seen[k] = 1;
		}
		out[len] = '\0';
		if (seen[0] && seen[1] && seen[2] && seen[3])
			break;
	}
	memset(r, 0, sizeof(r));
	return 0;
}

long ad_unicode_pwd(const char *pw, uint8_t *out, size_t size)
{
	size_t n = strlen(pw), o = 0;

	if (2 * (n + 2) > size)
		return -1;
	out[o++] = '"';
	out[o++] = 0;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)pw[i] >= 0x80)
			return -1;
		out[o++] = (uint8_t)pw[i];
		out[o++] = 0;
	}
	out[o++] = '"';
	out[o++] = 0;
	return (long)o;
}

/* Next significant character of a DN for comparison: blanks around ',' and '=' skipped. */
static const char *dn_norm_next(const char *p, char *c)
{
	while (*p == ' ')
		p++;
	*c = (char)tolower((unsigned char)*p);
	if (!*p)
		return p;
	p++;
	if (*c == ',' || *c == '=')
		while (*p == ' ')
			p++;
	return p;
}

int ad_dn_equal(const char *a, const char *b)
{
	char ca, cb;

	do {
		a = dn_norm_next(a, &ca);
		b = dn_norm_next(b, &cb);
		if (ca != cb)
			return 0;
	} while (ca);
	return 1;
}

const char *ad_dn_parent(const char *dn)
{
	for (const char *p = dn; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (*p == ',') {
			p++;
			while (*p == ' ')
				p++;
			return p;
		}
	}
	return "";
}
