/* SPDX-License-Identifier: Apache-2.0 */
/* Enrollment secrets, the site's name policy and the address allow-list (see authz.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "authz.h"
#include "device_input.h"
#include "util.h"

/* Domain separation: this key computes nothing but these MACs, and the version lets a later
 * format never collide with this one. */
static const char mac_label[] = "amtprov enrollment secret v1";

#define MAC_LEN 32

static int mac(const struct amtprov_secret *key, const char *fqdn, const char *uuid,
	       unsigned char out[MAC_LEN])
{
	unsigned char msg[sizeof(mac_label) + STORE_FQDN_SIZE + 40 + 2];
	size_t n = 0, fl = strlen(fqdn), ul = strlen(uuid);
	unsigned int olen = 0;
	int ok;

	if (fl >= STORE_FQDN_SIZE || ul >= 40)
		return -1;
	memcpy(msg, mac_label, sizeof(mac_label)); /* with its NUL */
	n = sizeof(mac_label);
	for (size_t i = 0; i < fl; i++)
		msg[n++] = (unsigned char)tolower((unsigned char)fqdn[i]);
	msg[n++] = '\0';
	for (size_t i = 0; i < ul; i++)
		msg[n++] = (unsigned char)tolower((unsigned char)uuid[i]);
	ok = HMAC(EVP_sha256(), key->data, (int)key->len, msg, n, out, &olen) != NULL &&
	     olen == MAC_LEN;
	OPENSSL_cleanse(msg, sizeof(msg));
	return ok ? 0 : -1;
}

int authz_secret_mint(const struct amtprov_secret *key, const char *fqdn, const char *uuid,
		      char *out, size_t size, struct amtprov_error *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char m[MAC_LEN];
	char f[STORE_FQDN_SIZE], u[40] = "";
	int n;

	if (!key || key->len < AUTHZ_KEY_MIN)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "the site registration key "
				       "is shorter than %d bytes", AUTHZ_KEY_MIN);
	if (!device_input_fqdn_valid(fqdn) || strlen(fqdn) >= sizeof(f))
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL,
					 "'%s' is not a fully qualified domain name", fqdn);
	if (uuid && !device_input_uuid_valid(uuid))
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL,
					 "'%s' is not a UUID (8-4-4-4-12 hex digits)", uuid);
	util_strlcpy(f, fqdn, sizeof(f));
	util_lower(f);
	if (uuid) {
		util_strlcpy(u, uuid, sizeof(u));
		util_lower(u);
	}
	if (mac(key, f, u, m) < 0)
		return amtprov_error_set(err, AMTPROV_E_CRYPTO, NULL, "HMAC-SHA256 failed");
	n = snprintf(out, size, "%s%s_%s_", AUTHZ_SECRET_PREFIX, f, u);
	if (n < 0 || (size_t)n + 2 * MAC_LEN >= size) {
		OPENSSL_cleanse(m, sizeof(m));
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "the secret is too long");
	}
	for (size_t i = 0; i < MAC_LEN; i++) {
		out[n++] = hex[m[i] >> 4];
		out[n++] = hex[m[i] & 15];
	}
	out[n] = '\0';
	OPENSSL_cleanse(m, sizeof(m));
	return AMTPROV_OK;
}

int authz_secret_like(const char *token, size_t len)
{
	size_t pl = sizeof(AUTHZ_SECRET_PREFIX) - 1;

	return len >= pl && strncmp(token, AUTHZ_SECRET_PREFIX, pl) == 0;
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

int authz_secret_verify(struct amtprov_secret *const *keys, size_t n_keys, const char *token,
			size_t len, struct authz_host *host, const char **why)
{
	size_t pl = sizeof(AUTHZ_SECRET_PREFIX) - 1, fl, ul;
	const char *f, *u, *x, *end = token + len;
	unsigned char want[MAC_LEN], got[MAC_LEN];
	int ok = 0;

	memset(host, 0, sizeof(*host));
	if (!authz_secret_like(token, len) || memchr(token, '\0', len)) {
		*why = "not an enrollment secret";
		return 0;
	}
	f = token + pl;
	u = memchr(f, '_', (size_t)(end - f));
	x = u ? memchr(u + 1, '_', (size_t)(end - u - 1)) : NULL;
	if (!x || (size_t)(end - x - 1) != 2 * MAC_LEN) {
		*why = "malformed enrollment secret";
		return 0;
	}
	fl = (size_t)(u - f);
	ul = (size_t)(x - u - 1);
	if (fl == 0 || fl >= sizeof(host->fqdn) || ul >= sizeof(host->uuid)) {
		*why = "malformed enrollment secret";
		return 0;
	}
	memcpy(host->fqdn, f, fl);
	memcpy(host->uuid, u + 1, ul);
	util_lower(host->fqdn);
	util_lower(host->uuid);
	if (!device_input_fqdn_valid(host->fqdn) || (ul && !device_input_uuid_valid(host->uuid))) {
		*why = "malformed enrollment secret";
		goto no;
	}
	for (size_t i = 0; i < MAC_LEN; i++) {
		int hi = hexval(x[1 + 2 * i]), lo = hexval(x[2 + 2 * i]);

		if (hi < 0 || lo < 0) {
			*why = "malformed enrollment secret";
			goto no;
		}
		got[i] = (unsigned char)(hi << 4 | lo);
	}
	/* Every key is tried, without stopping at a match: which key verified (an old one
	 * during a rotation) does not show in the time taken. */
	for (size_t k = 0; k < n_keys; k++) {
		if (mac(keys[k], host->fqdn, host->uuid, want) < 0)
			continue;
		ok |= CRYPTO_memcmp(want, got, MAC_LEN) == 0;
	}
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(got, sizeof(got));
	if (ok)
		return 1;
	*why = "the enrollment secret does not verify";
no:
	memset(host, 0, sizeof(*host));
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Name policy                                                                              */
/* ---------------------------------------------------------------------------------------- */

int authz_glob_match(const char *p, const char *s)
{
	const char *star = NULL, *resume = NULL;

	/* The classic backtracking match, with '*' and '?' never crossing a label boundary:
	 * "*.contoso.com" is every host directly below contoso.com, not a.b.contoso.com. */
	while (*s) {
		char c = (char)tolower((unsigned char)*s);

		if (*p == '*') {
			star = p++;
			resume = s;
		} else if (*p == c || (*p == '?' && c != '.')) {
			p++;
			s++;
		} else if (star && *resume != '.') {
			p = star + 1;
			s = ++resume;
		} else {
			return 0;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

int authz_name_allowed(const struct manifest *m, const char *fqdn, int below_suffix,
		       char *why, size_t size)
{
	size_t fl = strlen(fqdn), sl = m->dns_suffix ? strlen(m->dns_suffix) : 0;

	if (!m->dns_suffix)
		return 1; /* an invalid manifest, already refused at load */
	/* R-PC-05: AMT trusts its provisioning server only within its DNS suffix, and a name
	 * outside the site's domain is no device of the site's. */
	if (below_suffix && (fl <= sl + 1 || fqdn[fl - sl - 1] != '.' ||
			     strcasecmp(fqdn + fl - sl, m->dns_suffix))) {
		snprintf(why, size, "%s is not a name below the site's DNS suffix %s (R-PC-05)", fqdn,
			 m->dns_suffix);
		return 0;
	}
	/* The service point's name certifies the site itself (R-PC-02): no device takes it. */
	if (m->service_point_fqdn && strcasecmp(fqdn, m->service_point_fqdn) == 0) {
		snprintf(why, size, "%s is the site's service point, not a device", fqdn);
		return 0;
	}
	if (m->n_fqdn_patterns == 0)
		return 1;
	for (size_t i = 0; i < m->n_fqdn_patterns; i++)
		if (authz_glob_match(m->fqdn_patterns[i], fqdn))
			return 1;
	snprintf(why, size, "%s matches none of the site's fqdn_patterns (%s%s)", fqdn,
		 m->fqdn_patterns[0], m->n_fqdn_patterns > 1 ? ", ..." : "");
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Address allow-list                                                                       */
/* ---------------------------------------------------------------------------------------- */

int authz_cidr_parse(const char *s, struct manifest_cidr *out, const char **why)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	long long prefix;
	int max;

	memset(out, 0, sizeof(*out));
	if (hl == 0 || hl >= sizeof(host)) {
		*why = "not an IP address or network";
		return -1;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		*why = "not an IPv4 or IPv6 address (names are not resolved here)";
		return -1;
	}
	if (!slash) {
		prefix = max;
	} else if (util_parse_ll(slash + 1, 0, max, &prefix) < 0) {
		*why = max == 32 ? "the prefix length is not 0 to 32" : "the prefix length is not 0 "
									 "to 128";
		return -1;
	}
	out->prefix = (int)prefix;
	/* Host bits set mean a typo more often than intent ("10.0.0.5/8"): refused. */
	for (int bit = out->prefix; bit < max; bit++) {
		if (out->addr[bit / 8] & (0x80 >> (bit % 8))) {
			*why = "host bits are set after the prefix length";
			return -1;
		}
	}
	return 0;
}

int authz_cidr_contains(const struct manifest_cidr *list, size_t n, const char *ip)
{
	unsigned char a[16];
	int family;

	if (inet_pton(AF_INET, ip, a) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, ip, a) == 1)
		family = AF_INET6;
	else
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct manifest_cidr *c = &list[i];
		int full = c->prefix / 8, rest = c->prefix % 8;

		if (c->family != family || memcmp(a, c->addr, (size_t)full) != 0)
			continue;
		if (rest && ((a[full] ^ c->addr[full]) & (0xff << (8 - rest)) & 0xff))
			continue;
		return 1;
	}
	return 0;
}
