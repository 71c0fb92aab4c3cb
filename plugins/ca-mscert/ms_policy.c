/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ms_policy.c - the template rules ca-mscert applies to the enrollment policy, at start and
 * again whenever the policy is read anew (REQUIREMENTS R-CA-01..04). Each check reports
 * what it expected and what the policy says, so `amtprov plugin test` and the log show an
 * administrator exactly which template setting to change.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ms.h"

#define EKU_SERVER "1.3.6.1.5.5.7.3.1"
#define EKU_CLIENT "1.3.6.1.5.5.7.3.2"
/* AMT generates 2048-bit RSA keys: a template that wants more can never issue to it. */
#define AMT_KEY_BITS 2048u

const struct ms_template *ms_policy_template(const struct ms_policy *p, const char *name)
{
	for (int i = 0; p && name && i < p->n_tmpl; i++)
		if (!strcasecmp(p->tmpl[i].name, name)) /* cn, compared like AD does */
			return &p->tmpl[i];
	return NULL;
}

int ms_ca_ces_list(const struct ms_ca *ca, unsigned auth, const char **out, int max)
{
	const struct ms_uri *u[MS_MAX_URI];
	int n = 0;

	for (int i = 0; ca && i < ca->n_uri && n < MS_MAX_URI; i++)
		if (ca->uris[i].auth == auth && !ca->uris[i].renewal_only)
			u[n++] = &ca->uris[i];
	/* Insertion sort by priority, stable: equal priorities keep the policy's order. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && u[j]->priority < u[j - 1]->priority; j--) {
			const struct ms_uri *t = u[j];

			u[j] = u[j - 1];
			u[j - 1] = t;
		}
	for (int i = 0; i < n && i < max; i++)
		out[i] = u[i]->uri;
	return n < max ? n : max;
}

/* The CA's best (lowest) CES priority for @p auth; UINT32_MAX+1 when it has none. */
static unsigned long long best_priority(const struct ms_ca *ca, unsigned auth)
{
	unsigned long long best = 1ull << 32;

	for (int i = 0; i < ca->n_uri; i++)
		if (ca->uris[i].auth == auth && !ca->uris[i].renewal_only &&
		    ca->uris[i].priority < best)
			best = ca->uris[i].priority;
	return best;
}

/* The CAs of @p p (those issuing @p t, when given; with enroll permission, when
 * @p need_enroll) with a CES URI for @p auth, by best CES priority (stable). */
static int ca_order(const struct ms_policy *p, const struct ms_template *t, unsigned auth,
		    int need_enroll, const struct ms_ca **out, int max)
{
	const struct ms_ca *c[MS_MAX_CA];
	int n = 0;

	for (int i = 0; p && i < p->n_ca && i < MS_MAX_CA; i++)
		if ((!t || ms_ca_issues(&p->ca[i], t)) && (!need_enroll || p->ca[i].enroll) &&
		    best_priority(&p->ca[i], auth) < (1ull << 32))
			c[n++] = &p->ca[i];
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && best_priority(c[j], auth) < best_priority(c[j - 1], auth);
		     j--) {
			const struct ms_ca *x = c[j];

			c[j] = c[j - 1];
			c[j - 1] = x;
		}
	for (int i = 0; i < n && i < max; i++)
		out[i] = c[i];
	return n < max ? n : max;
}

const char *ms_policy_ces(const struct ms_policy *p, unsigned auth)
{
	const struct ms_ca *ca = NULL;
	const char *best = NULL;

	if (ca_order(p, NULL, auth, 0, &ca, 1) != 1)
		return NULL;
	return ms_ca_ces_list(ca, auth, &best, 1) ? best : NULL;
}

int ms_ca_issues(const struct ms_ca *ca, const struct ms_template *t)
{
	if (!t->n_ca_ref)
		return 1;
	for (int i = 0; i < t->n_ca_ref; i++)
		if (t->ca_ref[i] == ca->ref)
			return 1;
	return 0;
}

int ms_template_cas(const struct ms_policy *p, const struct ms_template *t, unsigned auth,
		    const struct ms_ca **out, int max)
{
	return ca_order(p, t, auth, 1, out, max);
}

const struct ms_ca *ms_policy_ca(const struct ms_policy *p, const char *name)
{
	for (int i = 0; p && name && i < p->n_ca && i < MS_MAX_CA; i++)
		if (!strcasecmp(p->ca[i].name, name))
			return &p->ca[i];
	return NULL;
}

static int has_eku(const struct ms_template *t, const char *oid)
{
	for (int i = 0; i < t->n_eku; i++)
		if (!strcmp(t->eku[i], oid))
			return 1;
	return 0;
}

/* An EKU outside PKIX's id-kp arc (e.g. AMT's 2.16.840.1.113741.1.2.3) is a custom one. */
static int has_custom_eku(const struct ms_template *t, char *which, size_t size)
{
	for (int i = 0; i < t->n_eku; i++)
		if (strncmp(t->eku[i], "1.3.6.1.5.5.7.3.", 16)) {
			snprintf(which, size, "%s", t->eku[i]);
			return 1;
		}
	return 0;
}

static void eku_list(const struct ms_template *t, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (int i = 0; i < t->n_eku && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%s", i ? "," : "", t->eku[i]);
	if (!t->n_eku)
		snprintf(out, size, "none");
}

int ms_check_template(const struct ms_policy *p, const char *name, uint32_t purpose,
		      ms_check_cb cb, void *ctx)
{
	const struct ms_template *t;
	char act[256], exp[128], what[200];
	int bad = 0, ok, issuers;

#define CHECK(cond, rule, w, e, a, fix)                 \
	do {                                            \
		ok = (cond);                            \
		bad += !ok;                             \
		cb(ctx, ok, rule, w, e, a, fix);        \
	} while (0)
#define WARN(rule, w, e, a, fix) cb(ctx, MS_CHECK_SKIP, rule, w, e, a, fix)

	snprintf(act, sizeof(act), "%d CA(s), %d template(s)", p->n_ca, p->n_tmpl);
	CHECK(p->n_ca > 0 && p->n_tmpl > 0, "R-CA-01",
	      "enterprise CA publishing templates (a stand-alone CA has none)",
	      "at least 1 CA and 1 template", act,
	      "use the CEP of an enterprise CA (cep_url)");
	if (!ok)
		return bad;
	snprintf(what, sizeof(what), "template '%s' published by the policy", name);
	t = ms_policy_template(p, name);
	CHECK(t != NULL, "template", what, "present", t ? "present" : "absent",
	      "publish the template on the CA, or correct its name");
	if (!t)
		return bad;
	snprintf(what, sizeof(what), "template '%s' schema version", t->name);
	snprintf(act, sizeof(act), "%d", t->schema);
	CHECK(t->schema == 1 || t->schema == 2, "R-CA-02", what,
	      "1 or 2 (version 3 CNG templates are refused)", act,
	      "duplicate it with compatibility Windows Server 2003 (version 2)");
	snprintf(what, sizeof(what), "template '%s' custom OID needs schema version 2", t->name);
	if (has_custom_eku(t, act, sizeof(act)))
		snprintf(act + strlen(act), sizeof(act) - strlen(act), " on version %d", t->schema);
	else
		snprintf(act, sizeof(act), "no custom OID");
	CHECK(!has_custom_eku(t, exp, sizeof(exp)) || t->schema >= 2, "R-CA-03", what,
	      "custom OIDs only on version 2", act,
	      "duplicate it with compatibility Windows Server 2003 (version 2)");
	snprintf(what, sizeof(what), "Read/Enroll permission on template '%s'", t->name);
	CHECK(t->enroll, "R-CA-04", what, "enroll true", t->enroll ? "enroll true" : "enroll false",
	      "give the site's account Read and Enroll on the template");
	/* Per CA of the policy (MS-XCEP cAs): the ones that issue the template and let the
	 * site's account request certificates serve it; the others are left out with a
	 * warning, and only a template no usable CA issues is refused. */
	issuers = 0;
	for (int i = 0; i < p->n_ca && i < MS_MAX_CA; i++) {
		const struct ms_ca *c = &p->ca[i];
		int any = 0;

		for (int k = 0; k < p->n_tmpl; k++)
			any |= ms_ca_issues(c, &p->tmpl[k]);
		if (!any) {
			/* What a stand-alone CA looks like in a policy: no template is on it. */
			snprintf(what, sizeof(what), "CA '%s' publishes templates", c->name);
			WARN("R-CA-01", what, "an enterprise CA with templates", "none: skipped",
			     "publish the templates on it, or take it out of the policy (a "
			     "stand-alone CA cannot serve templates)");
			continue;
		}
		if (!ms_ca_issues(c, t))
			continue; /* another template's CA: not a problem */
		snprintf(what, sizeof(what), "Enroll permission on CA '%.80s' (issues '%.80s')", c->name,
			 t->name);
		if (c->enroll)
			cb(ctx, 1, "R-CA-04", what, "enrollPermission true", "enrollPermission true",
			   "give the site's account Request Certificates on the CA");
		else
			WARN("R-CA-04", what, "enrollPermission true", "enrollPermission false: skipped",
			     "give the site's account Request Certificates on the CA");
		issuers += c->enroll;
	}
	snprintf(what, sizeof(what), "CAs issuing template '%s' with Enroll permission", t->name);
	snprintf(act, sizeof(act), "%d", issuers);
	CHECK(issuers > 0, "R-CA-04", what, "at least 1", act,
	      "publish the template on an enterprise CA that gives the site's account Request "
	      "Certificates");
	snprintf(what, sizeof(what), "template '%s' minimal key length fits AMT's RSA keys",
		 t->name);
	snprintf(act, sizeof(act), "%u bits", t->min_key);
	snprintf(exp, sizeof(exp), "at most %u bits", AMT_KEY_BITS);
	CHECK(t->min_key <= AMT_KEY_BITS, "key", what, exp, act,
	      "set the template's Minimum key size to 2048 or less");
	eku_list(t, act, sizeof(act));
	if (purpose == AMTPROV_PURPOSE_CLIENT_8021X) {
		snprintf(what, sizeof(what), "template '%s' EKU fits an 802.1X client", t->name);
		CHECK(has_eku(t, EKU_CLIENT) && !has_eku(t, EKU_SERVER), "eku", what,
		      "clientAuth " EKU_CLIENT ", not serverAuth", act,
		      "application policies: Client Authentication, not Server Authentication");
	} else {
		snprintf(what, sizeof(what), "template '%s' EKU fits a web server", t->name);
		CHECK(has_eku(t, EKU_SERVER), "eku", what, "serverAuth " EKU_SERVER, act,
		      "add Server Authentication to its application policies");
	}
	/* The CA needs the device's FQDN from the request: AMT keys are not AD accounts. */
	snprintf(what, sizeof(what), "template '%s' takes the subject from the request", t->name);
	snprintf(act, sizeof(act), "subjectNameFlags 0x%08x", (unsigned)t->name_flags);
	CHECK(t->name_flags & 0x1u, "subject", what,
	      "CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT (0x1)", act,
	      "set its Subject Name to Supply in the request");
#undef CHECK
#undef WARN
	return bad;
}
