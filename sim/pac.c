/* SPDX-License-Identifier: Apache-2.0 */
/* PAC_LOGON_INFO's SIDs (pac.h). Layout from MS-PAC 2.5 and the NDR rules of [C706] ch. 14
 * (little-endian, 4-byte alignment, deferred pointer referents in field order). */
#include "pac.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct rd {
	const unsigned char *p;
	size_t len, off;
	int bad;
};

static uint32_t u32(struct rd *r)
{
	uint32_t v;

	if (r->bad || r->len - r->off < 4 || r->off > r->len) {
		r->bad = 1;
		return 0;
	}
	v = (uint32_t)r->p[r->off] | (uint32_t)r->p[r->off + 1] << 8 |
	    (uint32_t)r->p[r->off + 2] << 16 | (uint32_t)r->p[r->off + 3] << 24;
	r->off += 4;
	return v;
}

static void skip(struct rd *r, size_t n)
{
	if (r->bad || r->off > r->len || r->len - r->off < n)
		r->bad = 1;
	else
		r->off += n;
}

static void align4(struct rd *r)
{
	skip(r, (4 - r->off % 4) % 4);
}

int pac_sid_string(const unsigned char *sid, size_t len, char *out, size_t size)
{
	unsigned long long auth = 0;
	int n, w;
	size_t used;

	if (len < 8 || sid[0] != 1 || (n = sid[1]) > 15 || len != 8 + 4 * (size_t)n)
		return -1;
	for (int i = 0; i < 6; i++)
		auth = auth << 8 | sid[2 + i];
	w = snprintf(out, size, "S-1-%llu", auth);
	if (w < 0 || (size_t)w >= size)
		return -1;
	used = (size_t)w;
	for (int i = 0; i < n; i++) {
		const unsigned char *s = sid + 8 + 4 * i;
		uint32_t v = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 |
			     (uint32_t)s[3] << 24;

		w = snprintf(out + used, size - used, "-%u", v);
		if (w < 0 || (size_t)w >= size - used)
			return -1;
		used += (size_t)w;
	}
	return 0;
}

/* A deferred RPC_SID: conformance count, then the SID itself. */
static int read_sid(struct rd *r, unsigned char *sid, size_t *sid_len)
{
	uint32_t max = u32(r);
	size_t n;

	if (r->bad || max > 15 || r->len - r->off < 8)
		return -1;
	n = 8 + 4 * (size_t)r->p[r->off + 1];
	if (r->p[r->off + 1] != max || r->len - r->off < n)
		return -1;
	memcpy(sid, r->p + r->off, n);
	*sid_len = n;
	r->off += n;
	return 0;
}

/* A deferred RPC_UNICODE_STRING buffer: max, offset, actual count, UTF-16 units. */
static void skip_string(struct rd *r)
{
	uint32_t max = u32(r), offset = u32(r), actual = u32(r);

	if (offset || actual > max)
		r->bad = 1;
	skip(r, (size_t)actual * 2);
	align4(r);
}

static int add(char (*sids)[PAC_SID_STR], int *n, int max, const unsigned char *sid,
	       size_t len, const uint32_t *rid)
{
	unsigned char full[8 + 4 * 16];

	if (*n >= max)
		return 0;
	memcpy(full, sid, len);
	if (rid) {
		if (full[1] >= 15)
			return -1;
		for (int i = 0; i < 4; i++)
			full[len + (size_t)i] = (unsigned char)(*rid >> (8 * i));
		full[1]++;
		len += 4;
	}
	if (pac_sid_string(full, len, sids[*n], PAC_SID_STR))
		return -1;
	(*n)++;
	return 0;
}

int pac_logon_sids(const unsigned char *buf, size_t len, char (*sids)[PAC_SID_STR], int max)
{
	struct rd r = {buf, len, 0, 0};
	uint32_t strs[6], user_rid, group_count, groups_ptr, server, domain, domain_ptr;
	uint32_t sid_count, extra_ptr, res_dom_ptr, res_count, res_ptr;
	unsigned char dom[8 + 4 * 15], sid[8 + 4 * 15];
	size_t dom_len = 0, sid_len, groups_at = 0;
	int n = 0;

	/* common header (version 1, little-endian 0x10, length 8) and private header */
	if (len < 16 || buf[0] != 1 || buf[1] != 0x10)
		return -1;
	skip(&r, 16);
	if (!u32(&r)) /* the top-level pointer to the structure */
		return -1;
	skip(&r, 6 * 8); /* six FILETIMEs */
	for (int i = 0; i < 6; i++) {
		skip(&r, 4); /* Length, MaximumLength */
		strs[i] = u32(&r);
	}
	skip(&r, 4); /* LogonCount, BadPasswordCount */
	user_rid = u32(&r);
	skip(&r, 4); /* PrimaryGroupId */
	group_count = u32(&r);
	groups_ptr = u32(&r);
	skip(&r, 4 + 16); /* UserFlags, UserSessionKey */
	skip(&r, 4);
	server = u32(&r);
	skip(&r, 4);
	domain = u32(&r);
	domain_ptr = u32(&r);
	skip(&r, 8 + 4 + 4 + 8 + 8 + 4 + 4); /* Reserved1 .. Reserved3 */
	sid_count = u32(&r);
	extra_ptr = u32(&r);
	res_dom_ptr = u32(&r);
	res_count = u32(&r);
	res_ptr = u32(&r);
	if (r.bad || !domain_ptr || group_count > 4096 || sid_count > 4096 || res_count > 4096)
		return -1;
	/* the deferred referents, in field order */
	for (int i = 0; i < 6; i++)
		if (strs[i])
			skip_string(&r);
	if (groups_ptr) {
		if (u32(&r) != group_count)
			return -1;
		groups_at = r.off;
		skip(&r, (size_t)group_count * 8);
	}
	if (server)
		skip_string(&r);
	if (domain)
		skip_string(&r);
	if (r.bad || read_sid(&r, dom, &dom_len))
		return -1;
	align4(&r);
	if (add(sids, &n, max, dom, dom_len, &user_rid))
		return -1;
	/* the group RIDs are relative to the logon domain, which comes after them */
	for (uint32_t i = 0; groups_ptr && i < group_count; i++) {
		struct rd g = {buf, len, groups_at + 8 * (size_t)i, 0};
		uint32_t rid = u32(&g);

		if (g.bad || add(sids, &n, max, dom, dom_len, &rid))
			return -1;
	}
	if (extra_ptr) {
		uint32_t ptrs[4096];

		if (u32(&r) != sid_count)
			return -1;
		for (uint32_t i = 0; i < sid_count; i++) {
			ptrs[i] = u32(&r);
			skip(&r, 4); /* Attributes */
		}
		for (uint32_t i = 0; i < sid_count; i++) {
			if (!ptrs[i])
				continue;
			if (read_sid(&r, sid, &sid_len))
				return -1;
			align4(&r);
			if (add(sids, &n, max, sid, sid_len, NULL))
				return -1;
		}
	}
	if (res_dom_ptr) {
		if (read_sid(&r, sid, &sid_len))
			return -1;
		align4(&r);
		if (res_ptr) {
			if (u32(&r) != res_count)
				return -1;
			for (uint32_t i = 0; i < res_count; i++) {
				uint32_t rid = u32(&r);

				skip(&r, 4);
				if (r.bad || add(sids, &n, max, sid, sid_len, &rid))
					return -1;
			}
		}
	}
	return r.bad ? -1 : n;
}
