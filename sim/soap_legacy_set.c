/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The first-stage write operations of the legacy EOI SOAP services (AMT < 9, R-PROV-10):
 * time, host and domain name, TLS key + certificate, TLS on, admin password, MEBx
 * password, CommitChanges (and Unprovision, which amt-transport can send). Operation and parameter names follow AMT-PROTOCOL.md §5.3, where
 * most of them are marked [recall] (no public WSDL was reachable); docs/amtsim.md lists the
 * choices. The semantics are the ones the WS-Man methods have (setup_ops.c): one device,
 * two interfaces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "setup_ops.h"
#include "soap_legacy_int.h"
#include "wsman.h"
#include "x509util.h"

/* Every write through the legacy interface is audited with its answer. */
static long audited(struct lcall *c, const char *op, long st)
{
	device_audit(c->d, "legacy SOAP %s: StatusCode %ld", op, st);
	return st;
}

/* ---- NetworkTime ---- */

static long op_get_time(struct lcall *c)
{
	lout_num(c, "Ta0", (unsigned long long)setup_device_time(c->d));
	return PT_SUCCESS;
}

static long op_set_time(struct lcall *c)
{
	char ta0[24], tm1[24], tm2[24];

	larg(c, "Ta0", ta0, sizeof(ta0));
	larg(c, "Tm1", tm1, sizeof(tm1));
	larg(c, "Tm2", tm2, sizeof(tm2));
	return audited(c, "SetHighAccuracyTimeSynch", setup_set_time(c->d, ta0, tm1, tm2));
}

const struct lop ltim_ops[] = {
	{"GetLowAccuracyTimeSynch", op_get_time},
	{"SetHighAccuracyTimeSynch", op_set_time},
	{NULL, NULL},
};

/* ---- NetworkAdministration ---- */

static long set_name(struct lcall *c, const char *param, size_t max, long bad, char *dst,
		     size_t dstsize)
{
	char v[256];
	xmlNodePtr n = xml_child(c->in, NULL, param);

	xml_text(n, v, sizeof(v));
	if (!n || !setup_valid_dns_name(v, max) || (!v[0] && bad == PT_INVALID_NAME))
		return bad;
	if (!device_flash_write(c->d))
		return PT_FLASH_WRITE_LIMIT_EXCEEDED;
	if (strcmp(dst, v)) {
		device_audit(c->d, "%s: \"%s\" -> \"%s\"", param, dst, v);
		sim_strlcpy(dst, v, dstsize);
		c->d->dirty = true;
	}
	return PT_SUCCESS;
}

static long op_set_host(struct lcall *c)
{
	return audited(c, "SetHostName", set_name(c, "HostName", 63, PT_INVALID_NAME,
						  c->d->host_name, sizeof(c->d->host_name)));
}

static long op_set_domain(struct lcall *c)
{
	/* An empty domain name is allowed: it clears the setting. */
	return audited(c, "SetDomainName", set_name(c, "DomainName", 191, PT_INVALID_DOMAIN_NAME,
						    c->d->domain_name, sizeof(c->d->domain_name)));
}

const struct lop lnet_set_ops[] = {
	{"SetHostName", op_set_host},
	{"SetDomainName", op_set_domain},
	{NULL, NULL},
};

/* ---- SecurityAdministration: the TLS identity ---- */

static int find_key(const struct device *d, const EVP_PKEY *k)
{
	for (int i = 0; i < d->n_keys; i++) {
		EVP_PKEY *s = sim_key_from_pem(d->keys[i].pem);
		int eq = s ? EVP_PKEY_eq(s, k) : 0;

		EVP_PKEY_free(s);
		if (eq == 1)
			return i;
	}
	return -1;
}

static int find_cert(const struct device *d, const char *b64)
{
	for (int i = 0; i < d->n_certs; i++)
		if (!strcmp(d->certs[i].der_b64, b64))
			return i;
	return -1;
}

/* The parsed request: the key and the chain (leaf first) as base64 DER. */
struct tls_identity {
	EVP_PKEY *key;
	char *certs[8];
	int n;
};

static void identity_free(struct tls_identity *t)
{
	EVP_PKEY_free(t->key);
	for (int i = 0; i < t->n; i++)
		free(t->certs[i]);
	memset(t, 0, sizeof(*t));
}

static long parse_identity(struct lcall *c, struct tls_identity *t)
{
	xmlChar *k = xmlNodeGetContent(xml_child(c->in, NULL, "PrivateKey"));
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t n = 0;
	long st = PT_SUCCESS;
	X509 *leaf = NULL;

	if (!k)
		return PT_INVALID_PARAMETER;
	if (sim_b64_decode((const char *)k, &der, &n) == 0 && n && n < 0x7fffffff) {
		p = der;
		t->key = d2i_AutoPrivateKey(NULL, &p, (long)n);
	}
	if (der)
		OPENSSL_cleanse(der, n);
	free(der);
	xmlFree(k);
	if (!t->key || EVP_PKEY_base_id(t->key) != EVP_PKEY_RSA)
		return PT_INVALID_KEY;
	for (xmlNodePtr e = c->in->children; e && st == PT_SUCCESS; e = e->next) {
		xmlChar *b;
		X509 *x;

		if (e->type != XML_ELEMENT_NODE || strcmp((const char *)e->name, "CertificateChain"))
			continue;
		if (t->n >= (int)(sizeof(t->certs) / sizeof(t->certs[0])))
			return PT_INVALID_PARAMETER;
		b = xmlNodeGetContent(e);
		x = b ? sim_x509_from_b64((const char *)b) : NULL;
		xmlFree(b);
		if (!x)
			return PT_INVALID_CERT;
		t->certs[t->n++] = sim_x509_to_b64(x);
		if (!t->certs[t->n - 1])
			st = PT_INTERNAL_ERROR;
		if (t->n == 1)
			leaf = x;
		else
			X509_free(x);
	}
	if (st == PT_SUCCESS && !leaf)
		st = PT_INVALID_PARAMETER; /* no certificate at all */
	/* The first certificate is the device's own: it must belong to the key. */
	if (st == PT_SUCCESS && EVP_PKEY_eq(X509_get0_pubkey(leaf), t->key) != 1)
		st = PT_CERT_KEY_NOT_MATCH;
	X509_free(leaf);
	return st;
}

/* Key, leaf and issuers go into the one certificate store WS-Man shows too, and the leaf
 * becomes the TLS credential: like a WS-Man AddKey + AddCertificate + TLS credential
 * context, it is served once CommitChanges applied it. */
static long install_identity(struct device *d, struct tls_identity *t)
{
	int new_certs = 0, ki = find_key(d, t->key), ctx = -1;
	uint32_t leaf_handle = 0;

	for (int i = 0; i < t->n; i++)
		new_certs += find_cert(d, t->certs[i]) < 0;
	for (int i = 0; i < d->n_ctx && ctx < 0; i++)
		if (!strcmp(d->ctxs[i].type, "TLS"))
			ctx = i;
	if (d->n_certs + new_certs > DEV_MAX_CERTS || (ki < 0 && d->n_keys >= DEV_MAX_KEYS) ||
	    (ctx < 0 && d->n_ctx >= DEV_MAX_CTX))
		return PT_MAX_LIMIT_REACHED;
	if (!device_flash_write(d))
		return PT_FLASH_WRITE_LIMIT_EXCEEDED;
	if (ki < 0) {
		char *pem = sim_key_to_pem(t->key);

		if (!pem)
			return PT_INTERNAL_ERROR;
		ki = d->n_keys++;
		d->keys[ki].handle = d->next_handle++;
		d->keys[ki].pem = pem;
	}
	for (int i = 0; i < t->n; i++) {
		int ci = find_cert(d, t->certs[i]);

		if (ci < 0) {
			ci = d->n_certs++;
			memset(&d->certs[ci], 0, sizeof(d->certs[ci]));
			d->certs[ci].handle = d->next_handle++;
			d->certs[ci].der_b64 = t->certs[i];
			t->certs[i] = NULL;
		}
		if (i == 0)
			leaf_handle = d->certs[ci].handle;
	}
	if (ctx < 0) {
		ctx = d->n_ctx++;
		memset(&d->ctxs[ctx], 0, sizeof(d->ctxs[ctx]));
		sim_strlcpy(d->ctxs[ctx].type, "TLS", sizeof(d->ctxs[ctx].type));
		sim_strlcpy(d->ctxs[ctx].providing, "TLSProtocolEndpoint Instances Collection",
			    sizeof(d->ctxs[ctx].providing));
	}
	d->ctxs[ctx].cert_handle = leaf_handle;
	d->dirty = true;
	device_audit(d, "SetTLSKeyAndCertificate: key handle %u, certificate handle %u, %d "
		     "issuer(s) (applies at CommitChanges)", d->keys[ki].handle, leaf_handle,
		     t->n - 1);
	return PT_SUCCESS;
}

static long op_set_tls_identity(struct lcall *c)
{
	struct tls_identity t = {0};
	long st = parse_identity(c, &t);

	if (st == PT_SUCCESS)
		st = install_identity(c->d, &t);
	identity_free(&t);
	return audited(c, "SetTLSKeyAndCertificate", st);
}

static long op_set_tls_enabled(struct lcall *c)
{
	struct device *d = c->d;
	struct dev_tls_settings t = d->tls_pending ? d->tls_remote_pending : d->tls_remote;
	char v[16];
	bool on, have_ctx = false;

	larg(c, "Enabled", v, sizeof(v));
	if (!strcmp(v, "true") || !strcmp(v, "1"))
		on = true;
	else if (!strcmp(v, "false") || !strcmp(v, "0"))
		on = false;
	else
		return audited(c, "SetTlsEnabled", PT_INVALID_PARAMETER);
	for (int i = 0; i < d->n_ctx; i++)
		have_ctx = have_ctx || !strcmp(d->ctxs[i].type, "TLS");
	/* Nothing to serve TLS with: refused at once (the WS-Man path refuses at commit). */
	if (on && !have_ctx)
		return audited(c, "SetTlsEnabled", PT_DATA_MISSING);
	if (!d->tls_pending)
		d->tls_local_pending = d->tls_local;
	t.enabled = on;
	t.mutual_auth = false; /* the EOI call has no mutual-authentication switch */
	d->tls_remote_pending = t;
	d->tls_pending = true;
	d->dirty = true;
	device_audit(d, "SetTlsEnabled: %s (applies at CommitChanges)", on ? "true" : "false");
	return audited(c, "SetTlsEnabled", PT_SUCCESS);
}

/* ---- SecurityAdministration: passwords and commit ---- */

static long op_set_admin(struct lcall *c)
{
	char user[64], pw[64], ha1[33];
	long st;

	larg(c, "Username", user, sizeof(user));
	larg(c, "Password", pw, sizeof(pw));
	if (!setup_valid_username(user))
		st = PT_INVALID_NAME;
	else if (!setup_strong_password(pw))
		st = PT_INVALID_PASSWORD;
	else {
		/* The firmware keeps only the digest of the clear-text password it receives. */
		device_ha1(user, c->d->realm, pw, ha1);
		st = setup_set_admin(c->d, user, ha1, "SetAdminAclEntry");
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	return audited(c, "SetAdminAclEntry", st);
}

static long op_set_mebx(struct lcall *c)
{
	char pw[64];
	long st;

	larg(c, "Password", pw, sizeof(pw));
	st = setup_set_mebx(c->d, pw);
	OPENSSL_cleanse(pw, sizeof(pw));
	return audited(c, "SetMEBxPassword", st);
}

static long op_commit(struct lcall *c)
{
	return audited(c, "CommitChanges", setup_commit(c->d));
}

static long op_unprovision(struct lcall *c)
{
	char mode[16];
	long long m;

	larg(c, "ProvisioningMode", mode, sizeof(mode));
	if (sim_parse_ll(mode, 0, 4, &m) != 0)
		return audited(c, "Unprovision", PT_INVALID_PARAMETER);
	device_unprovision(c->d);
	return audited(c, "Unprovision", PT_SUCCESS);
}

const struct lop lsai_set_ops[] = {
	{"SetTLSKeyAndCertificate", op_set_tls_identity},
	{"SetTlsEnabled", op_set_tls_enabled},
	{"SetAdminAclEntry", op_set_admin},
	{"SetMEBxPassword", op_set_mebx},
	{"CommitChanges", op_commit},
	{"Unprovision", op_unprovision},
	{NULL, NULL},
};
