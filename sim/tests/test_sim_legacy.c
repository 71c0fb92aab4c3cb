/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Legacy EOI SOAP (AMT < 9, R-PROV-10): each first-stage write operation with its good case
 * and its refusals, as amt-transport sends them (SOAP 1.1, operation element in the
 * service namespace, StatusCode first in the answer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "device.h"
#include "http.h"
#include "simutil.h"
#include "soap_legacy.h"
#include "tls.h"

void register_sim_legacy_tests(void);

static EVP_PKEY *key_a, *key_b;
static X509 *ca_cert, *leaf_a;

static X509 *mk_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, bool ca)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	X509_sign(x, ikey ? ikey : key, EVP_sha256());
	X509_NAME_free(n);
	return x;
}

static int suite_init(void)
{
	key_a = EVP_RSA_gen(2048);
	key_b = EVP_RSA_gen(2048);
	if (!key_a || !key_b)
		return -1;
	ca_cert = mk_cert("Legacy Test CA", key_b, NULL, NULL, true);
	leaf_a = mk_cert("pc8.contoso.com", key_a, ca_cert, key_b, false);
	return ca_cert && leaf_a ? 0 : -1;
}

static int suite_clean(void)
{
	EVP_PKEY_free(key_a);
	EVP_PKEY_free(key_b);
	X509_free(ca_cert);
	X509_free(leaf_a);
	return 0;
}

static char *b64_cert(X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	char *s = sim_b64_encode(der, (size_t)n);

	OPENSSL_free(der);
	return s;
}

static char *b64_key(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	int n = i2d_PrivateKey(k, &der);
	char *s = sim_b64_encode(der, (size_t)n);

	OPENSSL_free(der);
	return s;
}

/* Posts one operation the way amt-transport's at_soap_call builds it; returns the
 * StatusCode (-1 for no StatusCode) and leaves the answer in @p body when asked. */
static long soap(struct device *d, const char *service, const char *op, const char *args,
		 char **body)
{
	struct sbuf buf = {0};
	struct http_request q;
	struct http_response r;
	char path[64], tag[160];
	const char *p;
	long st = -1;

	snprintf(path, sizeof(path), "/%sService", service);
	sbuf_printf(&buf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SOAP-ENV:Envelope "
			  "xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" "
			  "xmlns:h=\"http://schemas.intel.com/platform/client/%s/2004/01\">"
			  "<SOAP-ENV:Body><h:%s>%s</h:%s></SOAP-ENV:Body></SOAP-ENV:Envelope>",
		    service, op, args ? args : "", op);
	memset(&q, 0, sizeof(q));
	memset(&r, 0, sizeof(r));
	snprintf(q.path, sizeof(q.path), "%s", path);
	q.body = buf.data;
	q.body_len = buf.len;
	CU_ASSERT_TRUE(soap_legacy_path(path));
	soap_legacy_handle(d, &q, &r);
	sbuf_free(&buf);
	snprintf(tag, sizeof(tag), ":%sResponse><", op);
	if (r.status == 200 && r.body.data && strstr(r.body.data, tag) &&
	    (p = strstr(r.body.data, ":StatusCode>")))
		st = strtol(p + strlen(":StatusCode>"), NULL, 10);
	if (body)
		*body = r.body.data;
	else
		sbuf_free(&r.body);
	return st;
}

static bool audit_has(const struct device *d, const char *text)
{
	for (int i = 0; i < d->audit_len; i++)
		if (strstr(d->audit[(d->audit_start + i) % DEV_AUDIT_MAX].event, text))
			return true;
	return false;
}

static void test_time(void)
{
	struct device d;
	char *body = NULL, args[160];
	const char *p;
	long long ta0, now = (long long)time(NULL);

	device_init(&d, "t", "8.1.40");
	d.clock_offset = -5000;
	CU_ASSERT_EQUAL(soap(&d, "NetworkTime", "GetLowAccuracyTimeSynch", NULL, &body), 0);
	p = body ? strstr(body, ":Ta0>") : NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	ta0 = strtoll(p + 5, NULL, 10);
	CU_ASSERT_TRUE(ta0 <= now - 4990 && ta0 >= now - 5010);
	free(body);
	/* Good: the server's clock becomes the device's. */
	snprintf(args, sizeof(args), "<h:Ta0>%lld</h:Ta0><h:Tm1>%lld</h:Tm1><h:Tm2>%lld</h:Tm2>",
		 ta0, now, now);
	CU_ASSERT_EQUAL(soap(&d, "NetworkTime", "SetHighAccuracyTimeSynch", args, NULL), 0);
	CU_ASSERT_TRUE(d.clock_offset >= -2 && d.clock_offset <= 2);
	CU_ASSERT_TRUE(audit_has(&d, "legacy SOAP SetHighAccuracyTimeSynch: StatusCode 0"));
	/* Refused: a Ta0 from the device's future, Tm2 before Tm1, a missing value. */
	snprintf(args, sizeof(args), "<h:Ta0>%lld</h:Ta0><h:Tm1>%lld</h:Tm1><h:Tm2>%lld</h:Tm2>",
		 now + 3600, now, now);
	CU_ASSERT_EQUAL(soap(&d, "NetworkTime", "SetHighAccuracyTimeSynch", args, NULL), 0x24);
	snprintf(args, sizeof(args), "<h:Ta0>%lld</h:Ta0><h:Tm1>%lld</h:Tm1><h:Tm2>%lld</h:Tm2>",
		 now, now, now - 10);
	CU_ASSERT_EQUAL(soap(&d, "NetworkTime", "SetHighAccuracyTimeSynch", args, NULL), 0x24);
	CU_ASSERT_EQUAL(soap(&d, "NetworkTime", "SetHighAccuracyTimeSynch", "<h:Ta0>1</h:Ta0>", NULL),
			0x24);
	device_clear(&d);
}

static void test_host_and_domain(void)
{
	struct device d;
	char *body = NULL;

	device_init(&d, "n", "8.1.40");
	CU_ASSERT_EQUAL(soap(&d, "NetworkAdministration", "SetHostName",
			     "<h:HostName>pc8</h:HostName>", NULL), 0);
	CU_ASSERT_EQUAL(soap(&d, "NetworkAdministration", "SetDomainName",
			     "<h:DomainName>contoso.com</h:DomainName>", NULL), 0);
	CU_ASSERT_STRING_EQUAL(d.host_name, "pc8");
	CU_ASSERT_STRING_EQUAL(d.domain_name, "contoso.com");
	CU_ASSERT_EQUAL(soap(&d, "NetworkAdministration", "GetHostName", NULL, &body), 0);
	CU_ASSERT_PTR_NOT_NULL(body && strstr(body, "<net:HostName>pc8</net:HostName>"));
	free(body);
	/* Refused: characters a DNS name cannot have, an empty host name, no parameter. */
	CU_ASSERT_EQUAL(soap(&d, "NetworkAdministration", "SetHostName",
			     "<h:HostName>pc 8</h:HostName>", NULL), 0xC);
	CU_ASSERT_EQUAL(soap(&d, "NetworkAdministration", "SetHostName",
			     "<h:HostName></h:HostName>", NULL), 0xC);
	CU_ASSERT_EQUAL(soap(&d, "NetworkAdministration", "SetDomainName",
			     "<h:DomainName>contoso_com</h:DomainName>", NULL), 0x1C);
	CU_ASSERT_EQUAL(soap(&d, "NetworkAdministration", "SetDomainName", NULL, NULL), 0x1C);
	CU_ASSERT_STRING_EQUAL(d.host_name, "pc8");
	CU_ASSERT_STRING_EQUAL(d.domain_name, "contoso.com");
	device_clear(&d);
}

static void test_tls(void)
{
	struct device d;
	char *kb = b64_key(key_a), *kb_other = b64_key(key_b), *lb = b64_cert(leaf_a),
	     *cb = b64_cert(ca_cert);
	struct sbuf args = {0};

	device_init(&d, "s", "8.1.40");
	d.prov_state = DEV_IN;
	/* Refused: TLS on before there is anything to serve it with. */
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetTlsEnabled",
			     "<h:Enabled>true</h:Enabled>", NULL), 0x809);
	/* Refused: no key, a broken key, no certificate, a broken certificate, a leaf that
	 * is not the key's, a key that is not RSA-shaped base64. */
	sbuf_printf(&args, "<h:CertificateChain>%s</h:CertificateChain>", lb);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetTLSKeyAndCertificate", args.data, NULL),
			0x24);
	sbuf_free(&args);
	sbuf_printf(&args, "<h:PrivateKey>AAAA</h:PrivateKey><h:CertificateChain>%s</h:CertificateChain>", lb);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetTLSKeyAndCertificate", args.data, NULL),
			0x80E);
	sbuf_free(&args);
	sbuf_printf(&args, "<h:PrivateKey>%s</h:PrivateKey>", kb);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetTLSKeyAndCertificate", args.data, NULL),
			0x24);
	sbuf_free(&args);
	sbuf_printf(&args, "<h:PrivateKey>%s</h:PrivateKey><h:CertificateChain>bm90IGEgY2VydA==</h:CertificateChain>", kb);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetTLSKeyAndCertificate", args.data, NULL),
			0x80F);
	sbuf_free(&args);
	sbuf_printf(&args, "<h:PrivateKey>%s</h:PrivateKey><h:CertificateChain>%s</h:CertificateChain>",
		    kb_other, lb);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetTLSKeyAndCertificate", args.data, NULL),
			0x810);
	sbuf_free(&args);
	CU_ASSERT_EQUAL(d.n_certs, 0);
	CU_ASSERT_EQUAL(d.n_keys, 0);

	/* Good: key, leaf and issuer stored; the leaf is the TLS credential. */
	sbuf_printf(&args, "<h:PrivateKey>%s</h:PrivateKey><h:CertificateChain>%s</h:CertificateChain>"
			   "<h:CertificateChain>%s</h:CertificateChain>", kb, lb, cb);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetTLSKeyAndCertificate", args.data, NULL),
			0);
	CU_ASSERT_EQUAL(d.n_keys, 1);
	CU_ASSERT_EQUAL_FATAL(d.n_certs, 2);
	CU_ASSERT_STRING_EQUAL(d.certs[0].der_b64, lb);
	CU_ASSERT_EQUAL_FATAL(d.n_ctx, 1);
	CU_ASSERT_EQUAL(d.ctxs[0].cert_handle, d.certs[0].handle);
	/* The same identity again (a re-run after a crash) is taken, not duplicated. */
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetTLSKeyAndCertificate", args.data, NULL),
			0);
	CU_ASSERT_EQUAL(d.n_keys, 1);
	CU_ASSERT_EQUAL(d.n_certs, 2);
	CU_ASSERT_EQUAL(d.n_ctx, 1);
	sbuf_free(&args);

	/* TLS on waits for CommitChanges. */
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetTlsEnabled",
			     "<h:Enabled>maybe</h:Enabled>", NULL), 0x24);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetTlsEnabled",
			     "<h:Enabled>true</h:Enabled>", NULL), 0);
	CU_ASSERT_FALSE(d.tls_remote.enabled);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "CommitChanges", NULL, NULL), 0);
	CU_ASSERT_TRUE(d.tls_remote.enabled);
	CU_ASSERT_EQUAL(d.tls_remote.cert_handle, d.certs[0].handle);
	CU_ASSERT_EQUAL(d.prov_state, DEV_POST);
	CU_ASSERT_TRUE(audit_has(&d, "CommitChanges: provisioned"));
	free(kb);
	free(kb_other);
	free(lb);
	free(cb);
	device_clear(&d);
}

static void test_passwords(void)
{
	struct device d;
	char ha1[33];

	device_init(&d, "p", "8.1.40");
	d.prov_state = DEV_IN;
	/* Good: HA1 of the clear-text password the EOI call carries. */
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetAdminAclEntry",
			     "<h:Username>admin</h:Username><h:Password>N3w!Passw0rd</h:Password>",
			     NULL), 0);
	device_ha1("admin", d.realm, "N3w!Passw0rd", ha1);
	CU_ASSERT_STRING_EQUAL(d.admin_ha1, ha1);
	/* Refused: a weak password, a bad user name; the admin entry stays. */
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetAdminAclEntry",
			     "<h:Username>admin</h:Username><h:Password>password</h:Password>",
			     NULL), 0x806);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetAdminAclEntry",
			     "<h:Username>ad:min</h:Username><h:Password>N3w!Passw0rd</h:Password>",
			     NULL), 0xC);
	CU_ASSERT_STRING_EQUAL(d.admin_ha1, ha1);

	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetMEBxPassword",
			     "<h:Password>weak</h:Password>", NULL), 0x806);
	CU_ASSERT_TRUE(d.mebx_password_default);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetMEBxPassword",
			     "<h:Password>Mebx!Pass1</h:Password>", NULL), 0);
	CU_ASSERT_FALSE(d.mebx_password_default);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "CommitChanges", NULL, NULL), 0);
	/* Once changed and provisioned, the MEBx password is the user's: NOT_PERMITTED. */
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetMEBxPassword",
			     "<h:Password>Mebx!Pass2</h:Password>", NULL), 0x10);
	device_clear(&d);
}

static void test_commit_faults_and_unknown(void)
{
	struct device d;
	char *body = NULL;

	device_init(&d, "c", "8.1.40");
	d.prov_state = DEV_IN;
	d.faults.commit_fail = 38;
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "CommitChanges", NULL, NULL), 38);
	CU_ASSERT_EQUAL(d.prov_state, DEV_IN);
	d.faults.commit_fail = 0;
	d.faults.flash_writes = 1;
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetMEBxPassword",
			     "<h:Password>Mebx!Pass1</h:Password>", NULL), 0);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "CommitChanges", NULL, NULL), 0x26);
	CU_ASSERT_EQUAL(d.prov_state, DEV_IN);
	/* Unprovision: a bad mode is refused; a full unprovision returns to PRE. */
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "Unprovision",
			     "<h:ProvisioningMode>x</h:ProvisioningMode>", NULL), 0x24);
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "Unprovision",
			     "<h:ProvisioningMode>1</h:ProvisioningMode>", NULL), 0);
	CU_ASSERT_EQUAL(d.prov_state, DEV_PRE);
	/* An operation amtsim does not know is a SOAP 1.1 Client fault, not a StatusCode. */
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "SetNothing", NULL, &body), -1);
	CU_ASSERT_PTR_NOT_NULL(body && strstr(body, "<faultcode>SOAP-ENV:Client</faultcode>"));
	free(body);
	/* Answers carry the service's gSOAP prefix. */
	CU_ASSERT_EQUAL(soap(&d, "SecurityAdministration", "GetCoreVersion", NULL, &body), 0);
	CU_ASSERT_PTR_NOT_NULL(body && strstr(body, "<sai:Version>8.1.40</sai:Version>"));
	free(body);
	device_clear(&d);
}

void register_sim_legacy_tests(void)
{
	CU_pSuite s = CU_add_suite("sim.legacy", suite_init, suite_clean);

	CU_add_test(s, "R-PROV-10 (1) NetworkTime get/set and refusals", test_time);
	CU_add_test(s, "R-PROV-10 (2) SetHostName/SetDomainName and refusals", test_host_and_domain);
	CU_add_test(s, "R-PROV-10 (3) SetTLSKeyAndCertificate + SetTlsEnabled and refusals", test_tls);
	CU_add_test(s, "R-PROV-10 (4,5) SetAdminAclEntry, SetMEBxPassword and refusals", test_passwords);
	CU_add_test(s, "R-PROV-10 (6) CommitChanges faults, unknown operation", test_commit_faults_and_unknown);
}
