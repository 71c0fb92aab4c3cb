/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_mscert_reply.c - ca-mscert's readers of what a Microsoft CA's web services answer
 * (ms_xml.c, ms_policy.c, ms_winrm.c). A CA or anything posing as one on the network path
 * must not crash or hang amtprovd, so every answer is read as hostile. First byte % 3:
 *   0  the rest is a GetPoliciesResponse (MS-XCEP); when it parses, every template the
 *      policy names goes through the template rules for each purpose, and the CA choice
 *      and CES URI lookups run over it, as the plugin does at start and at enrollment;
 *   1  the rest is an RSTRC or fault from CES (MS-WSTEP);
 *   2  the rest is a WinRM ReceiveResponse (certutil's output and exit code).
 * Seeds: the specs' examples (adcssim/tests/fixtures/spec) and the unit test's answers
 * (tests/fuzz/corpus/fuzz_mscert_reply).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "ms.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	xmlInitParser();
	return 0;
}

static void ignore_check(void *ctx, int ok, const char *rule, const char *what,
			 const char *expected, const char *actual, const char *fix)
{
	size_t *n = ctx;

	/* Touch every string the rules hand out: a dangling or unterminated one shows. */
	*n += (size_t)ok + strlen(rule) + strlen(what) + (expected ? strlen(expected) : 0) +
	      (actual ? strlen(actual) : 0) + (fix ? strlen(fix) : 0);
}

static void policy(const char *xml, size_t len)
{
	static const uint32_t purposes[] = {
		AMTPROV_PURPOSE_WEB_SERVER, AMTPROV_PURPOSE_CLIENT_8021X,
		AMTPROV_PURPOSE_PROVISIONING,
	};
	static const unsigned auths[] = { MS_AUTH_KERBEROS, MS_AUTH_USERNAME,
					  MS_AUTH_CERTIFICATE };
	struct ms_policy p;
	char why[256];
	size_t seen = 0;

	memset(&p, 0, sizeof(p));
	if (ms_parse_policies(xml, len, &p, why, sizeof(why)) != 0) {
		ms_policy_free(&p);
		return;
	}
	for (int t = 0; t < p.n_tmpl; t++) {
		const struct ms_ca *cas[MS_MAX_CA];

		for (size_t u = 0; u < sizeof(purposes) / sizeof(purposes[0]); u++)
			ms_check_template(&p, p.tmpl[t].name, purposes[u], ignore_check, &seen);
		for (size_t a = 0; a < sizeof(auths) / sizeof(auths[0]); a++) {
			int n = ms_template_cas(&p, &p.tmpl[t], auths[a], cas, MS_MAX_CA);

			for (int i = 0; i < n; i++)
				seen += strlen(cas[i]->name);
		}
	}
	for (int c = 0; c < p.n_ca; c++) {
		const char *uris[MS_MAX_URI];

		for (size_t a = 0; a < sizeof(auths) / sizeof(auths[0]); a++) {
			int n = ms_ca_ces_list(&p.ca[c], auths[a], uris, MS_MAX_URI);

			for (int i = 0; i < n; i++)
				seen += strlen(uris[i]);
		}
		if (ms_policy_ca(&p, p.ca[c].name) == NULL)
			abort(); /* a CA the policy lists must be found by its own name */
	}
	for (size_t a = 0; a < sizeof(auths) / sizeof(auths[0]); a++) {
		const char *ces = ms_policy_ces(&p, auths[a]);

		seen += ces ? strlen(ces) : 0;
	}
	(void)seen;
	ms_policy_free(&p);
}

static void rstr(const char *xml, size_t len)
{
	struct ms_rstr r;
	char why[256];

	memset(&r, 0, sizeof(r));
	if (ms_parse_rstr(xml, len, &r, why, sizeof(why)) == 0 &&
	    (strnlen(r.request_id, sizeof(r.request_id)) == sizeof(r.request_id) ||
	     strnlen(r.reason, sizeof(r.reason)) == sizeof(r.reason)))
		abort(); /* the fixed-size fields stay NUL-terminated */
	ms_rstr_free(&r);
}

static void receive(const char *xml, size_t len)
{
	struct ms_winrm_result res = { .exit_code = -1 };
	int done = 0;

	if (ms_winrm_parse_receive(xml, len, &res, &done) == 0 &&
	    strnlen(res.out, sizeof(res.out)) == sizeof(res.out))
		abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *xml;

	if (size < 1 || size > 256 * 1024)
		return 0;
	/* The plugin hands the parsers the HTTP body as received, with its length, and the
	 * parsers must not read past it: a private copy without a terminator lets ASan see it. */
	xml = malloc(size - 1 ? size - 1 : 1);
	if (!xml)
		return 0;
	memcpy(xml, data + 1, size - 1);
	switch (data[0] % 3) {
	case 0: policy(xml, size - 1); break;
	case 1: rstr(xml, size - 1); break;
	default: receive(xml, size - 1); break;
	}
	free(xml);
	return 0;
}
