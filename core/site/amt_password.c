/* SPDX-License-Identifier: Apache-2.0 */
#include "amt_password.h"

#include <stdio.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

unsigned amt_password_check(const char *pw, size_t len)
{
	unsigned faults = AMT_PW_NO_DIGIT | AMT_PW_NO_LOWER | AMT_PW_NO_UPPER | AMT_PW_NO_SYMBOL;

	if (len < AMT_PASSWORD_MIN)
		faults |= AMT_PW_SHORT;
	if (len > AMT_PASSWORD_MAX)
		faults |= AMT_PW_LONG;
	for (size_t i = 0; pw && i < len; i++) {
		unsigned char c = (unsigned char)pw[i];

		/* ASCII by value, not <ctype.h>: the locale must not change what AMT accepts. */
		if (c < 32 || c > 126 || c == ':' || c == ',' || c == '"')
			faults |= AMT_PW_CHARACTER;
		else if (c >= '0' && c <= '9')
			faults &= ~(unsigned)AMT_PW_NO_DIGIT;
		else if (c >= 'a' && c <= 'z')
			faults &= ~(unsigned)AMT_PW_NO_LOWER;
		else if (c >= 'A' && c <= 'Z')
			faults &= ~(unsigned)AMT_PW_NO_UPPER;
		else if (c != '_' && c != ' ')
			faults &= ~(unsigned)AMT_PW_NO_SYMBOL;
	}
	return faults;
}

void amt_password_faults(unsigned faults, char *buf, size_t size)
{
	static const struct {
		unsigned bit;
		const char *text;
	} clauses[] = {
		{AMT_PW_SHORT, "fewer than " STR(AMT_PASSWORD_MIN) " characters"},
		{AMT_PW_LONG, "more than " STR(AMT_PASSWORD_MAX) " characters"},
		{AMT_PW_CHARACTER, "a character that is not printable ASCII, or is one of : , \""},
		{AMT_PW_NO_DIGIT, "no digit"},
		{AMT_PW_NO_LOWER, "no lower-case letter"},
		{AMT_PW_NO_UPPER, "no upper-case letter"},
		{AMT_PW_NO_SYMBOL, "no symbol ('_' and space do not count)"},
	};
	size_t used = 0;

	if (!size)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(clauses) / sizeof(clauses[0]); i++) {
		int n;

		if (!(faults & clauses[i].bit))
			continue;
		n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", clauses[i].text);
		if (n < 0 || (size_t)n >= size - used) {
			buf[used] = '\0'; /* whole clauses only, never half of one */
			return;
		}
		used += (size_t)n;
	}
}

int amt_password_uses(const struct manifest *m, amt_password_use_cb cb, void *ctx)
{
	char where[AMTPROV_ERROR_WHERE_SIZE];
	int rc;

	/* R-PROV-10 (5): set on AMT only when the policy lets provisioning set it. */
	if (m->mebx_password && m->mebx_policy != 0 &&
	    (rc = cb(ctx, "/credentials/mebx_password", m->mebx_password)) != 0)
		return rc;
	/* R-PROV-11 (1): AddUserAclEntryEx with each Digest account's password. */
	for (size_t i = 0; i < m->n_amt_accounts; i++) {
		const struct manifest_amt_account *a = &m->amt_accounts[i];

		if (a->kerberos || !a->password)
			continue;
		snprintf(where, sizeof(where), "/amt/user_accounts/%zu/password", i);
		if ((rc = cb(ctx, where, a->password)) != 0)
			return rc;
	}
	return 0;
}
