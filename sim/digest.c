/* SPDX-License-Identifier: Apache-2.0 */
#include "digest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "simutil.h"

static void md5_hex(const char *s, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (EVP_Digest(s, strlen(s), md, &n, EVP_md5(), NULL) == 1 && n == 16)
		sim_hex(md, 16, out, false);
}

void digest_response(const char *ha1, const char *nonce, const char *nc, const char *cnonce,
		     const char *qop, const char *method, const char *uri, char out[33])
{
	char a2[1200], ha2[33], all[1400];

	snprintf(a2, sizeof(a2), "%s:%s", method, uri);
	md5_hex(a2, ha2);
	if (qop && *qop)
		snprintf(all, sizeof(all), "%s:%s:%s:%s:%s:%s", ha1, nonce, nc, cnonce, qop, ha2);
	else
		snprintf(all, sizeof(all), "%s:%s:%s", ha1, nonce, ha2);
	md5_hex(all, out);
}

/* Parses comma/space separated key=value pairs, values quoted or bare. Some AMT clients
 * omit spaces after commas, some use spaces only, so both are separators. */
int digest_parse(const char *header, struct digest_auth *a)
{
	char *p;

	memset(a, 0, sizeof(*a));
	while (*header == ' ' || *header == '\t')
		header++;
	if (strncasecmp(header, "Digest", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
		return -1;
	if (sim_strlcpy(a->buf, header + 7, sizeof(a->buf)) != 0)
		return -1;
	p = a->buf;
	for (;;) {
		char *key, *val;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		key = p;
		while (*p && *p != '=' && *p != ' ' && *p != ',')
			p++;
		if (*p != '=')
			return -1;
		*p++ = '\0';
		if (*p == '"') {
			val = ++p;
			char *w = p;

			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				*w++ = *p++;
			}
			if (*p != '"')
				return -1;
			p++;
			*w = '\0';
		} else {
			val = p;
			while (*p && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			if (*p)
				*p++ = '\0';
		}
		if (!strcasecmp(key, "username"))
			a->username = val;
		else if (!strcasecmp(key, "realm"))
			a->realm = val;
		else if (!strcasecmp(key, "nonce"))
			a->nonce = val;
		else if (!strcasecmp(key, "uri"))
			a->uri = val;
		else if (!strcasecmp(key, "response"))
			a->response = val;
		else if (!strcasecmp(key, "qop"))
			a->qop = val;
		else if (!strcasecmp(key, "nc"))
			a->nc = val;
		else if (!strcasecmp(key, "cnonce"))
			a->cnonce = val;
		else if (!strcasecmp(key, "algorithm"))
			a->algorithm = val;
	}
	if (!a->username || !a->realm || !a->nonce || !a->uri || !a->response)
		return -1;
	return 0;
}

static struct digest_nonce *find_nonce(struct digest_state *st, const char *v)
{
	for (int i = 0; i < DIGEST_NONCES; i++)
		if (st->nonces[i].value[0] && !strcmp(st->nonces[i].value, v))
			return &st->nonces[i];
	return NULL;
}

enum digest_result digest_check(struct digest_state *st, const char *realm, const char *method,
				const char *header, digest_ha1_fn lookup, void *arg,
				char *user_out, size_t user_size, time_t now)
{
	struct digest_auth a;
	char ha1[33], want[33];
	struct digest_nonce *n;
	unsigned long nc = 0;
	char *end;

	if (!header)
		return DIGEST_MISSING;
	if (strncasecmp(header, "Digest", 6) != 0)
		return DIGEST_MISSING;
	if (digest_parse(header, &a) != 0)
		return DIGEST_MALFORMED;
	if (a.algorithm && strcasecmp(a.algorithm, "MD5") != 0)
		return DIGEST_MALFORMED;
	if (strcmp(a.realm, realm) != 0)
		return DIGEST_BAD_RESPONSE;
	/* AMT only offers qop=auth; RFC 2069 (no qop) and auth-int are refused. */
	if (!a.qop || strcmp(a.qop, "auth") != 0 || !a.nc || !a.cnonce)
		return DIGEST_MALFORMED;
	if (strlen(a.nc) != 8)
		return DIGEST_MALFORMED;
	nc = strtoul(a.nc, &end, 16);
	if (*end || nc == 0)
		return DIGEST_MALFORMED;
	if (!lookup(arg, a.username, ha1))
		return DIGEST_BAD_USER;
	digest_response(ha1, a.nonce, a.nc, a.cnonce, a.qop, method, a.uri, want);
	/* The empty response="" of CVE-2017-5689 fails here: lengths differ. */
	if (strlen(a.response) != 32 || CRYPTO_memcmp(want, a.response, 32) != 0)
		return DIGEST_BAD_RESPONSE;
	n = find_nonce(st, a.nonce);
	if (!n || now - n->created > st->lifetime)
		return DIGEST_STALE;
	if (nc <= n->last_nc)
		return DIGEST_REPLAY;
	n->last_nc = (uint32_t)nc;
	if (user_out)
		sim_strlcpy(user_out, a.username, user_size);
	return DIGEST_OK;
}

void digest_challenge(struct digest_state *st, const char *realm, bool stale, char *out,
		      size_t size, time_t now)
{
	unsigned char r[24];
	char *b64;
	struct digest_nonce *n = &st->nonces[st->next++ % DIGEST_NONCES];

	if (sim_random(r, sizeof(r)) != 0)
		memset(r, 0, sizeof(r));
	b64 = sim_b64_encode(r, sizeof(r)); /* 32 characters, like AMT's nonces */
	sim_strlcpy(n->value, b64 ? b64 : "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", sizeof(n->value));
	free(b64);
	n->created = now;
	n->last_nc = 0;
	snprintf(out, size, "Digest realm=\"%s\", nonce=\"%s\",stale=\"%s\",qop=\"auth\"", realm,
		 n->value, stale ? "true" : "false");
}

const char *digest_result_name(enum digest_result r)
{
	switch (r) {
	case DIGEST_OK: return "ok";
	case DIGEST_MISSING: return "no credentials";
	case DIGEST_MALFORMED: return "malformed Authorization header";
	case DIGEST_BAD_USER: return "unknown user";
	case DIGEST_BAD_RESPONSE: return "wrong digest response";
	case DIGEST_STALE: return "stale nonce";
	case DIGEST_REPLAY: return "nonce count replayed";
	}
	return "?";
}
