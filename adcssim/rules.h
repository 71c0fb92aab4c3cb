/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.h - an enterprise CA's request processing rules [MS-WCCE 3.2.2.6.2.1.4,
 * MS-WSTEP 3.1.4.2.1.1], apart from any transport so the unit tests can call them.
 */
#ifndef ADCSSIM_RULES_H
#define ADCSSIM_RULES_H

#include <stddef.h>

#include <openssl/x509.h>

#include "seed.h"

/* HRESULTs from winerror.h that the CA returns. */
#define CERTSRV_E_BAD_REQUESTSUBJECT 0x80094001L
#define CERTSRV_E_TEMPLATE_DENIED 0x80094012L
#define CERTSRV_E_ADMIN_DENIED_REQUEST 0x80094014L
#define CERTSRV_E_UNSUPPORTED_CERT_TYPE 0x80094800L
#define CERTSRV_E_TEMPLATE_CONFLICT 0x80094802L
#define CERTSRV_E_BAD_TEMPLATE_VERSION 0x80094807L
#define CERTSRV_E_SUBJECT_DNS_REQUIRED 0x8009480FL
#define CERTSRV_E_KEY_LENGTH 0x80094811L
#define NTE_BAD_SIGNATURE 0x80090006L
#define CRYPT_E_ASN1_BADTAG 0x8009310BL
#define E_INVALIDARG 0x80070057L

struct rule_result {
	long hresult;  /* 0 when the rule passed */
	char msg[256];
};

/* The PKCS#10 inside a request blob: bare PKCS#10, CMS-wrapped PKCS#10, or CMC PKIData
 * [MS-WCCE 2.2.2.6]. NULL (and r set) when none is found or its signature is wrong. */
X509_REQ *rules_decode_request(const unsigned char *der, size_t len, struct rule_result *r);

/* Finds the one template the request names: CSR extensions 1.3.6.1.4.1.311.20.2 and
 * 1.3.6.1.4.1.311.21.7, the 1.3.6.1.4.1.311.13.2.1 name-value attribute, and the
 * CertificateTemplate request attribute (ctx_template, NULL when absent). All must agree. */
const struct seed_template *rules_find_template(const struct seed *s, X509_REQ *req,
						 const char *ctx_template,
						 struct rule_result *r);

struct issue_plan {
	X509_NAME *subject;  /* owned */
	int copy_san;
	char san_dns[256];
	int pend;
};

/* Permissions, key length, subject rules and the pend flag of an enterprise template. */
int rules_check(const struct seed_template *t, const struct seed_account *who, X509_REQ *req,
		struct issue_plan *plan, struct rule_result *r);
void rules_plan_free(struct issue_plan *plan);

#endif
