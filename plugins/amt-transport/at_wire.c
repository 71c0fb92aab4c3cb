/* SPDX-License-Identifier: Apache-2.0 */
/*
 * at_wire.c - what the private wire log (verbose_wire) may show of a response: the body with
 * the text of every element that can carry a secret replaced by "(secret)". The scan is
 * textual, not a parse: a malformed or truncated body is masked just as well (an unclosed
 * secret element hides everything after it).
 */
#include <string.h>

#include "at_internal.h"

/* Local names of elements whose text is a secret, in requests or responses (OTP, passwords,
 * password hashes, keys, pre-shared keys). */
static const char *const secret_names[] = {
	"ProvisioningServerOTP", "OTP", "Password", "DigestPassword", "MEBxPassword",
	"AdminPassword", "PrivateKey", "KeyBlob", "PSKValue", "PSKPassPhrase", "PassPhrase",
	"SharedSecret", "ClientPrivateKey",
};

static int secret_name(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof(secret_names) / sizeof(secret_names[0]); i++)
		if (strlen(secret_names[i]) == n && !memcmp(secret_names[i], name, n))
			return 1;
	return 0;
}

void at_wire_mask(const char *body, size_t len, struct at_buf *out)
{
	size_t i = 0;

	while (i < len) {
		const char *lt = memchr(body + i, '<', len - i);
		size_t tag, name, end, gt;

		if (!lt) {
			at_buf_addn(out, body + i, len - i);
			return;
		}
		tag = (size_t)(lt - body);
		at_buf_addn(out, body + i, tag - i);
		/* The tag's name: after '<', up to space, '/', '>'; its local part after ':'. */
		name = tag + 1;
		end = name;
		while (end < len && !strchr(" \t\r\n/>", body[end]))
			end++;
		for (size_t k = name; k < end; k++)
			if (body[k] == ':')
				name = k + 1;
		gt = end;
		while (gt < len && body[gt] != '>')
			gt++;
		if (gt >= len) {
			at_buf_addn(out, body + tag, len - tag);
			return;
		}
		at_buf_addn(out, body + tag, gt + 1 - tag);
		i = gt + 1;
		if (body[tag + 1] == '/' || body[gt - 1] == '/' || !secret_name(body + name, end - name))
			continue;
		/* An opened secret element: hide everything up to the next closing tag (CDATA and
		 * nested elements included). */
		at_buf_add(out, "(secret)");
		lt = memmem(body + i, len - i, "</", 2);
		i = lt ? (size_t)(lt - body) : len;
	}
}
