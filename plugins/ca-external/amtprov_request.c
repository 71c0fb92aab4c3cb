/* SPDX-License-Identifier: Apache-2.0 */
/*
 * amtprov-request - the administrator's side of the request-file workflow for the
 * provisioning certificate, whose key amtprov (not AMT) holds (R-PC-01, R-CA-03):
 *
 *   amtprov-request new --cn oob.contoso.com --key prov.key --csr prov.csr
 *                       [--marker oid|ou|both] [--bits 2048] [--org NAME]
 *                       [--challenge-file FILE]
 *   amtprov-request import --key prov.key --in answer.pem|answer.p12
 *                       [--password-file FILE] --out provisioning.pem
 *
 * "new" writes a fresh RSA key (0600) and a PKCS#10 request with CN = the service point FQDN
 * and the AMT markers; "import" takes what the external CA sent back (PEM chain in any
 * order, or PKCS#12), checks that it is for the key, and writes leaf + chain as PEM.
 * Passwords are read from files, never from the command line (which `ps` shows).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ce.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: amtprov-request new --cn FQDN --key FILE --csr FILE [--marker "
		"oid|ou|both]\n"
		"                           [--bits N] [--org NAME] [--challenge-file FILE]\n"
		"       amtprov-request import --key FILE --in FILE [--password-file FILE] --out "
		"FILE\n");
	return 2;
}

static int fail(const struct amtprov_error *err)
{
	fprintf(stderr, "amtprov-request: %s%s%s\n", err->where[0] ? err->where : "",
		err->where[0] ? ": " : "", err->msg);
	return 1;
}

/* First line of a file, for passwords; caller cleanses and frees. */
static char *read_secret(const char *path, struct amtprov_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;

	if (ce_read_file(path, &data, &len, err) != AMTPROV_OK)
		return NULL;
	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n' || data[i] == '\r') {
			data[i] = '\0';
			break;
		}
	return (char *)data;
}

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static int write_pem(const char *path, unsigned mode, int (*put)(BIO *, void *), void *obj,
		     struct amtprov_error *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int rc;

	if (!bio || !put(bio, obj)) {
		BIO_free(bio);
		return ce_crypto_error(err, "encoding PEM");
	}
	n = BIO_get_mem_data(bio, &data);
	rc = ce_write_file(path, data, (size_t)n, mode, err);
	OPENSSL_cleanse(data, (size_t)n);
	BIO_free(bio);
	return rc;
}

static int put_key(BIO *b, void *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int put_req(BIO *b, void *r)
{
	return PEM_write_bio_X509_REQ(b, r);
}

static int cmd_new(int argc, char **argv)
{
	static const struct option opts[] = {
		{"cn", required_argument, NULL, 'c'},	  {"key", required_argument, NULL, 'k'},
		{"csr", required_argument, NULL, 'r'},	  {"marker", required_argument, NULL, 'm'},
		{"bits", required_argument, NULL, 'b'},	  {"org", required_argument, NULL, 'o'},
		{"challenge-file", required_argument, NULL, 'C'}, {NULL, 0, NULL, 0},
	};
	struct ce_request_opts o = {.marker = CE_MARK_BOTH, .bits = 2048};
	const char *key_path = NULL, *csr_path = NULL, *chal_path = NULL;
	struct amtprov_error err;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	char *challenge = NULL, *end;
	int c, rc;

	amtprov_error_clear(&err);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': o.cn = optarg; break;
		case 'k': key_path = optarg; break;
		case 'r': csr_path = optarg; break;
		case 'o': o.org = optarg; break;
		case 'C': chal_path = optarg; break;
		case 'm':
			o.marker = strcmp(optarg, "oid") == 0  ? CE_MARK_OID
				   : strcmp(optarg, "ou") == 0 ? CE_MARK_OU
				   : strcmp(optarg, "both") == 0 ? CE_MARK_BOTH
								 : 0;
			if (!o.marker)
				return usage();
			break;
		case 'b':
			o.bits = (int)strtol(optarg, &end, 10);
			if (*end || o.bits < 2048 || o.bits > 8192) {
				fprintf(stderr, "amtprov-request: --bits must be 2048..8192\n");
				return 2;
			}
			break;
		default: return usage();
		}
	}
	if (!o.cn || !key_path || !csr_path || optind != argc)
		return usage();
	if (chal_path && !(challenge = read_secret(chal_path, &err)))
		return fail(&err);
	o.challenge = challenge;
	rc = ce_request_new(&o, &key, &req, &err);
	free_secret(challenge);
	if (rc == AMTPROV_OK)
		rc = write_pem(key_path, 0600, put_key, key, &err);
	if (rc == AMTPROV_OK)
		rc = write_pem(csr_path, 0644, put_req, req, &err);
	EVP_PKEY_free(key);
	X509_REQ_free(req);
	if (rc != AMTPROV_OK)
		return fail(&err);
	printf("key %s (0600), request %s for CN=%s: send the request to the CA\n", key_path,
	       csr_path, o.cn);
	return 0;
}

static int cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"in", required_argument, NULL, 'i'},
		{"password-file", required_argument, NULL, 'p'},
		{"out", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const char *key_path = NULL, *in_path = NULL, *pw_path = NULL, *out_path = NULL;
	struct amtprov_error err;
	STACK_OF(X509) *certs = NULL;
	EVP_PKEY *key = NULL;
	X509 *leaf = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	char *pw = NULL, *chain = NULL, *all = NULL;
	BIO *bio;
	int c, rc;

	amtprov_error_clear(&err);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key_path = optarg; break;
		case 'i': in_path = optarg; break;
		case 'p': pw_path = optarg; break;
		case 'o': out_path = optarg; break;
		default: return usage();
		}
	}
	if (!key_path || !in_path || !out_path || optind != argc)
		return usage();
	if ((rc = ce_read_file(key_path, &data, &len, &err)) != AMTPROV_OK)
		return fail(&err);
	bio = BIO_new_mem_buf(data, (int)len);
	key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	OPENSSL_cleanse(data, len);
	free(data);
	if (!key) {
		ce_crypto_error(&err, "reading the key");
		return fail(&err);
	}
	if (pw_path && !(pw = read_secret(pw_path, &err))) {
		EVP_PKEY_free(key);
		return fail(&err);
	}
	rc = ce_read_file(in_path, &data, &len, &err);
	if (rc == AMTPROV_OK)
		rc = pw ? ce_p12_load(data, len, pw, in_path, &certs, NULL, &err)
			: ce_certs_load(data, len, in_path, &certs, &err);
	free_secret(pw);
	free(data);
	if (rc == AMTPROV_OK)
		rc = ce_pick_leaf(certs, key, &leaf, &chain, &err);
	if (rc == AMTPROV_OK && ce_pem_append(&all, leaf) < 0)
		rc = amtprov_error_set(&err, AMTPROV_E_NOMEM, NULL, "out of memory");
	if (rc == AMTPROV_OK && chain) {
		char *grown = realloc(all, strlen(all) + strlen(chain) + 1);

		if (!grown)
			rc = amtprov_error_set(&err, AMTPROV_E_NOMEM, NULL, "out of memory");
		else
			memcpy((all = grown) + strlen(grown), chain, strlen(chain) + 1);
	}
	if (rc == AMTPROV_OK)
		rc = ce_write_file(out_path, all, strlen(all), 0644, &err);
	sk_X509_pop_free(certs, X509_free);
	X509_free(leaf);
	EVP_PKEY_free(key);
	free(chain);
	free(all);
	if (rc != AMTPROV_OK)
		return fail(&err);
	printf("%s: certificate matches the key; leaf and chain written\n", out_path);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "new") == 0)
		return cmd_new(argc - 1, argv + 1);
	if (strcmp(argv[1], "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	return usage();
}
