/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.c - request decoding, template lookup and template checks of an enterprise CA.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "der.h"
#include "rules.h"

static void fail(struct rule_result *r, long hr, const char *msg)
{
	r->hresult = hr;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
}

static X509_REQ *whole_req(const unsigned char *p, size_t len)
{
	const unsigned char *q = p;
	X509_REQ *req = d2i_X509_REQ(NULL, &q, (long)len);

	if (req && q != p + len) {
		X509_REQ_free(req);
		req = NULL;
	}
	ERR_clear_error();
	return req;
}

/* PKIData { controlSequence, reqSequence { [0] { bodyPartID, CertificationRequest } }, ..} */
static X509_REQ *from_pkidata(const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len, *c, *rs, *rend, *tr, *trend;
	unsigned tag;
	size_t cl;

	if (der_next(&p, end, &tag, &c, &cl) || tag != 0x30)
		return NULL;
	p = c;
	end = c + cl;
	if (der_next(&p, end, &tag, &c, &cl) || tag != 0x30 ||   /* controlSequence */
	    der_next(&p, end, &tag, &rs, &cl) || tag != 0x30)    /* reqSequence */
		return NULL;
	rend = rs + cl;
	if (der_next(&rs, rend, &tag, &tr, &cl) || tag != 0xa0)
		return NULL;
	trend = tr + cl;
	if (der_next(&tr, trend, &tag, &c, &cl) || tag != 0x02)  /* bodyPartID */
		return NULL;
	return whole_req(tr, (size_t)(trend - tr));
}

X509_REQ *rules_decode_request(const unsigned char *der, size_t len, struct rule_result *r)
{
	X509_REQ *req = whole_req(der, len);
	const unsigned char *q = der;
	CMS_ContentInfo *cms = NULL;
	ASN1_OCTET_STRING **content;

	memset(r, 0, sizeof(*r));
	if (!req) {
		cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
		content = cms ? CMS_get0_content(cms) : NULL;
		if (content && *content) {
			req = whole_req((*content)->data, (size_t)(*content)->length);
			if (!req)
				req = from_pkidata((*content)->data, (size_t)(*content)->length);
		}
		CMS_ContentInfo_free(cms);
		ERR_clear_error();
	}
	if (!req) {
		fail(r, CRYPT_E_ASN1_BADTAG, "the request is neither PKCS #10 nor CMS/CMC");
		return NULL;
	}
	if (X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1) {
		ERR_clear_error();
		X509_REQ_free(req);
		fail(r, NTE_BAD_SIGNATURE, "the request's signature does not verify");
		return NULL;
	}
	return req;
}

/* BMPString (ASCII only), UTF8String, or a SEQUENCE holding one of them. */
static int text_value(const unsigned char *p, size_t len, char *out, size_t outsz)
{
	const unsigned char *c;
	unsigned tag;
	size_t cl, i, o = 0;

	if (der_next(&p, p + len, &tag, &c, &cl))
		return -1;
	if (tag == 0x30)
		return text_value(c, cl, out, outsz);
	if (tag == 0x0c || tag == 0x13 || tag == 0x16) {
		if (cl >= outsz)
			return -1;
		memcpy(out, c, cl);
		out[cl] = '\0';
		return memchr(out, 0, cl) ? -1 : 0;
	}
	if (tag != 0x1e || cl % 2 || cl / 2 >= outsz)
		return -1;
	for (i = 0; i < cl; i += 2) {
		if (c[i] != 0 || c[i + 1] == 0)
			return -1;
		out[o++] = (char)c[i + 1];
	}
	out[o] = '\0';
	return 0;
}

static const ASN1_OCTET_STRING *ext_data(STACK_OF(X509_EXTENSION) *exts, const char *oid)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	int i = o ? X509v3_get_ext_by_OBJ(exts, o, -1) : -1;

	ASN1_OBJECT_free(o);
	return i >= 0 ? X509_EXTENSION_get_data(X509v3_get_ext(exts, i)) : NULL;
}

/* Records one source's answer; returns -1 on a conflict. */
static int agree(const struct seed_template **found, const struct seed_template *t)
{
	if (*found && t != *found)
		return -1;
	*found = t;
	return 0;
}

struct tmpl_version {
	long major, minor;
	int present;
};

static int template_info(const ASN1_OCTET_STRING *d, char *oid, size_t oidsz,
			 struct tmpl_version *v)
{
	const unsigned char *p = d->data, *end = p + d->length, *c;
	unsigned tag;
	size_t cl;

	if (der_next(&p, end, &tag, &c, &cl) || tag != 0x30)
		return -1;
	p = c;
	end = c + cl;
	if (der_next(&p, end, &tag, &c, &cl) || tag != 0x06 || der_oid_text(c, cl, oid, oidsz))
		return -1;
	v->present = 1;
	if (p < end && (der_next(&p, end, &tag, &c, &cl) || tag != 0x02 ||
			der_int_value(c, cl, &v->major)))
		return -1;
	if (p < end && (der_next(&p, end, &tag, &c, &cl) || tag != 0x02 ||
			der_int_value(c, cl, &v->minor)))
		return -1;
	return 0;
}

/* The 1.3.6.1.4.1.311.13.2.1 attribute: SET { SEQ { BMPString name, BMPString value } }. */
static int name_value_template(X509_REQ *req, char *out, size_t outsz)
{
	ASN1_OBJECT *o = OBJ_txt2obj("1.3.6.1.4.1.311.13.2.1", 1);
	int i = o ? X509_REQ_get_attr_by_OBJ(req, o, -1) : -1, n, found = 0;
	X509_ATTRIBUTE *a;
	char name[64];

	ASN1_OBJECT_free(o);
	for (; i >= 0; i = -1) {
		a = X509_REQ_get_attr(req, i);
		for (n = 0; n < X509_ATTRIBUTE_count(a); n++) {
			ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(a, n);
			const unsigned char *p, *end, *c, *first, *x;
			unsigned tag;
			size_t cl, xl;

			if (!t || t->type != V_ASN1_SEQUENCE)
				continue;
			p = t->value.sequence->data;
			end = p + t->value.sequence->length;
			/* SEQ { name, value } */
			if (der_next(&p, end, &tag, &c, &cl) || tag != 0x30)
				continue;
			first = c;
			end = c + cl;
			if (der_next(&c, end, &tag, &x, &xl) ||
			    text_value(first, (size_t)(c - first), name, sizeof(name)))
				continue;
			if (strcasecmp(name, "CertificateTemplate") == 0 &&
			    text_value(c, (size_t)(end - c), out, outsz) == 0)
				found = 1;
		}
	}
	return found;
}

const struct seed_template *rules_find_template(const struct seed *s, X509_REQ *req,
						 const char *ctx_template, struct rule_result *r)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	const ASN1_OCTET_STRING *d;
	const struct seed_template *found = NULL, *t;
	struct tmpl_version v = { 0 };
	char name[128], oid[128];
	int any = 0, unknown = 0, conflict = 0;

	memset(r, 0, sizeof(*r));
	if ((d = ext_data(exts, "1.3.6.1.4.1.311.20.2"))) {
		any = 1;
		if (text_value(d->data, (size_t)d->length, name, sizeof(name)) ||
		    !(t = seed_template(s, name)))
			unknown = 1;
		else
			conflict |= agree(&found, t);
	}
	if ((d = ext_data(exts, "1.3.6.1.4.1.311.21.7"))) {
		any = 1;
		if (template_info(d, oid, sizeof(oid), &v) || !(t = seed_template_by_oid(s, oid)))
			unknown = 1;
		else
			conflict |= agree(&found, t);
	}
	if (name_value_template(req, name, sizeof(name))) {
		any = 1;
		if (!(t = seed_template(s, name)))
			unknown = 1;
		else
			conflict |= agree(&found, t);
	}
	if (ctx_template) {
		any = 1;
		if (!(t = seed_template(s, ctx_template)))
			unknown = 1;
		else
			conflict |= agree(&found, t);
	}
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (!any || unknown) {
		fail(r, CERTSRV_E_UNSUPPORTED_CERT_TYPE, any ?
		     "The requested certificate template is not supported by this CA." :
		     "The request contains no certificate template information.");
		return NULL;
	}
	if (conflict) {
		fail(r, CERTSRV_E_TEMPLATE_CONFLICT,
		     "The request contains conflicting template information.");
		return NULL;
	}
	if (v.present && (v.major > (long)found->major ||
			  (v.major == (long)found->major && v.minor > (long)found->minor))) {
		fail(r, CERTSRV_E_BAD_TEMPLATE_VERSION,
		     "The request was made for a newer version of the certificate template.");
		return NULL;
	}
	return found;
}

static int csr_has_san(X509_REQ *req)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	int has = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1) >= 0;

	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return has;
}

int rules_check(const struct seed_template *t, const struct seed_account *who, X509_REQ *req,
		struct issue_plan *plan, struct rule_result *r)
{
	EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
	char msg[160];

	memset(plan, 0, sizeof(*plan));
	memset(r, 0, sizeof(*r));
	if (!seed_may_enroll(t, who->name)) {
		fail(r, CERTSRV_E_TEMPLATE_DENIED,
		     "The permissions on the certificate template do not allow the current user to "
		     "enroll for this type of certificate.");
		return -1;
	}
	if (!pub || EVP_PKEY_get_bits(pub) < (int)t->min_key) {
		snprintf(msg, sizeof(msg), "The public key does not meet the minimum size required "
			 "by the specified certificate template (%u bits).", t->min_key);
		fail(r, CERTSRV_E_KEY_LENGTH, msg);
		return -1;
	}
	if (t->name_flags & CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT) {
		/* "Supply in the request": subject and SAN from the CSR. */
		if (X509_NAME_entry_count(X509_REQ_get_subject_name(req)) == 0 && !csr_has_san(req)) {
			fail(r, CERTSRV_E_BAD_REQUESTSUBJECT, "The request subject name is invalid "
			     "or too long.");
			return -1;
		}
		plan->subject = X509_NAME_dup(X509_REQ_get_subject_name(req));
		plan->copy_san = 1;
	} else {
		/* Built from the directory; the CSR's subject and SAN are ignored. */
		if ((t->name_flags & (CT_FLAG_SUBJECT_ALT_REQUIRE_DNS |
				      CT_FLAG_SUBJECT_REQUIRE_DNS_AS_CN)) && !who->dns[0]) {
			fail(r, CERTSRV_E_SUBJECT_DNS_REQUIRED, "The DNS name is unavailable and "
			     "cannot be added to the Subject Alternate name.");
			return -1;
		}
		plan->subject = X509_NAME_new();
		if (plan->subject && (t->name_flags & CT_FLAG_SUBJECT_REQUIRE_DNS_AS_CN))
			X509_NAME_add_entry_by_txt(plan->subject, "CN", MBSTRING_UTF8,
						   (const unsigned char *)who->dns, -1, -1, 0);
		else if (plan->subject)
			X509_NAME_add_entry_by_txt(plan->subject, "CN", MBSTRING_UTF8,
						   (const unsigned char *)who->name, -1, -1, 0);
		if (t->name_flags & CT_FLAG_SUBJECT_ALT_REQUIRE_DNS)
			snprintf(plan->san_dns, sizeof(plan->san_dns), "%s", who->dns);
	}
	if (!plan->subject) {
		fail(r, E_INVALIDARG, "out of memory");
		return -1;
	}
	plan->pend = (t->enroll_flags & CT_FLAG_PEND_ALL_REQUESTS) != 0;
	return 0;
}

void rules_plan_free(struct issue_plan *plan)
{
	X509_NAME_free(plan->subject);
	plan->subject = NULL;
}
