/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ce_reqfile.c - the request-file workflow: requests go out as files, answers come back as
 * files.
 *
 *   submit: <outbox>/<id>.csr (PEM) + <outbox>/<id>.json (purpose, template, subject), and a
 *           private copy <state>/<id>.csr so a poll after a restart still knows the key.
 *   poll:   <inbox>/<id>.rejected            -> REJECTED with the file's first line
 *           <inbox>/<id>.pem|.crt|.cer       -> chain in any order; the certificate for the
 *                                               request's key is the leaf
 *           <inbox>/<id>.p12|.pfx            -> PKCS#12, password from the credential store
 *           nothing yet                      -> WAIT again
 * An imported answer is renamed to <name>.imported so it is never imported twice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "ce.h"

static const char *purpose_name(uint32_t p)
{
	switch (p) {
	case AMTPROV_PURPOSE_WEB_SERVER: return "web-server";
	case AMTPROV_PURPOSE_CLIENT_8021X: return "8021x-client";
	case AMTPROV_PURPOSE_PROVISIONING: return "provisioning";
	default: return "unknown";
	}
}

/* "<fqdn>-<16 hex>": readable for the administrator who carries the file to the CA, unique
 * without a counter, and safe as a file name whatever the FQDN holds. */
static int make_id(const char *fqdn, char *id, size_t size)
{
	uint8_t rnd[8];
	char hex[17], stem[64];
	size_t n = 0;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	ce_hex(rnd, sizeof(rnd), hex);
	for (const char *p = fqdn ? fqdn : ""; *p && n < 40; p++) {
		char c = *p;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')
			stem[n++] = c;
	}
	stem[n] = '\0';
	snprintf(id, size, "%s-%s", n && stem[0] != '.' ? stem : "request", hex);
	return 0;
}

static int csr_pem(X509_REQ *req, char **pem, size_t *len, struct amtprov_error *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;

	if (!bio || !PEM_write_bio_X509_REQ(bio, req)) {
		BIO_free(bio);
		return ce_crypto_error(err, "encoding the request as PEM");
	}
	n = BIO_get_mem_data(bio, &data);
	*pem = malloc((size_t)n + 1);
	if (!*pem) {
		BIO_free(bio);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	}
	memcpy(*pem, data, (size_t)n);
	(*pem)[n] = '\0';
	*len = (size_t)n;
	BIO_free(bio);
	return AMTPROV_OK;
}

static void set_wait(struct ca_external *ce, struct amtprov_ca_result *res, const char *id)
{
	res->outcome = ce->cfg.poll_interval > 0 ? AMTPROV_CA_WAIT_WITH_DELAY : AMTPROV_CA_WAIT;
	res->delay_seconds = (uint32_t)ce->cfg.poll_interval;
	snprintf(res->cookie, sizeof(res->cookie), "%s", id);
	snprintf(res->request_id, sizeof(res->request_id), "%.63s", id);
}

static int write_meta(struct ca_external *ce, const struct amtprov_ca_request *req,
		      const char *id, X509_REQ *csr, struct amtprov_error *err)
{
	char *path = pu_path(ce->outbox, id, ".json"), *text = NULL, subject[256];
	json_t *o = json_object();
	int rc;

	X509_NAME_oneline(X509_REQ_get_subject_name(csr), subject, sizeof(subject));
	if (o) {
		json_object_set_new(o, "request_id", json_string(id));
		json_object_set_new(o, "purpose", json_string(purpose_name(req->purpose)));
		if (req->template_name)
			json_object_set_new(o, "template", json_string(req->template_name));
		if (req->subject_fqdn)
			json_object_set_new(o, "subject_fqdn", json_string(req->subject_fqdn));
		json_object_set_new(o, "subject", json_string(subject));
		if (req->device_uuid)
			json_object_set_new(o, "device_uuid", json_string(req->device_uuid));
		if (req->netprofile)
			json_object_set_new(o, "netprofile", json_string(req->netprofile));
		json_object_set_new(o, "created", json_integer(ce->host->now(ce->host)));
		json_object_set_new(o, "answer_in",
				    json_string("put <request_id>.pem (chain), <request_id>.p12 "
						"or <request_id>.rejected into the inbox"));
		text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	}
	json_decref(o);
	if (!path || !text)
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	else
		rc = ce_write_file(path, text, strlen(text), 0644, err);
	free(text);
	free(path);
	return rc;
}

int ce_rf_submit(struct ca_external *ce, const struct amtprov_ca_request *req,
		 struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct amtprov_error perr;
	X509_REQ *csr;
	char id[64], *pem = NULL, *out = NULL, *priv = NULL;
	size_t len = 0;
	int rc;

	amtprov_error_clear(&perr);
	csr = ce_csr_parse(req->csr_der, req->csr_len, &perr);
	if (!csr) {
		res->outcome = AMTPROV_CA_REJECTED;
		snprintf(res->message, sizeof(res->message), "%s: %.200s", CE_NAME, perr.msg);
		return AMTPROV_OK;
	}
	if (make_id(req->subject_fqdn, id, sizeof(id)) < 0) {
		X509_REQ_free(csr);
		return ce_crypto_error(err, "random request id");
	}
	out = pu_path(ce->outbox, id, ".csr");
	priv = pu_path(ce->state, id, ".csr");
	if (!out || !priv)
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	else if ((rc = csr_pem(csr, &pem, &len, err)) != AMTPROV_OK)
		;
	/* The private copy first: once the outbox file exists someone may act on it, and the
	 * answer must then be importable. */
	else if ((rc = ce_write_file(priv, pem, len, 0600, err)) != AMTPROV_OK)
		;
	else if ((rc = write_meta(ce, req, id, csr, err)) != AMTPROV_OK)
		;
	else
		rc = ce_write_file(out, pem, len, 0644, err);
	if (rc == AMTPROV_OK) {
		set_wait(ce, res, id);
		snprintf(res->message, sizeof(res->message),
			 "request written to the outbox as %.60s.csr; waiting for .pem or .p12",
			 id);
		ce->host->log(ce->host, AMTPROV_LOG_NOTICE,
			      "%s request for '%s' written to %s", purpose_name(req->purpose),
			      req->subject_fqdn ? req->subject_fqdn : "", out);
	} else if (priv) {
		unlink(priv);
	}
	X509_REQ_free(csr);
	free(pem);
	free(out);
	free(priv);
	return rc;
}

/* The request's key: from the call, else from the private copy written at submit. */
static int request_key(struct ca_external *ce, const struct amtprov_ca_request *req,
		       const char *id, EVP_PKEY **pub, struct amtprov_error *err)
{
	X509_REQ *csr = NULL;
	uint8_t *data = NULL;
	size_t len;
	char *path;
	int rc = AMTPROV_OK;

	if (req && req->csr_der && req->csr_len) {
		csr = ce_csr_parse(req->csr_der, req->csr_len, err);
	} else {
		if (!(path = pu_path(ce->state, id, ".csr")))
			return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
		rc = ce_read_file(path, &data, &len, err);
		free(path);
		if (rc != AMTPROV_OK)
			return rc;
		csr = ce_csr_parse_any(data, len, err);
		free(data);
	}
	if (!csr)
		return err && err->code ? err->code : AMTPROV_E_PARSE;
	*pub = X509_REQ_get_pubkey(csr);
	X509_REQ_free(csr);
	if (!*pub)
		return ce_crypto_error(err, "the request's public key");
	return AMTPROV_OK;
}

/* First line of a .rejected file: the external CA's (or administrator's) reason. */
static void read_reason(const uint8_t *data, size_t len, char *out, size_t size)
{
	size_t n = 0;

	while (len && (*data == ' ' || *data == '\n' || *data == '\r' || *data == '\t')) {
		data++;
		len--;
	}
	while (n < len && n + 1 < size && data[n] != '\n' && data[n] != '\r') {
		out[n] = (data[n] >= 0x20 && data[n] != 0x7f) ? (char)data[n] : '?';
		n++;
	}
	out[n] = '\0';
}

static const char *const chain_suffixes[] = {".pem", ".crt", ".cer", NULL};
static const char *const p12_suffixes[] = {".p12", ".pfx", NULL};

/* The first existing "<inbox>/<id><suffix>", malloc'd, or NULL. */
static char *find_answer(struct ca_external *ce, const char *id, const char *const *suffixes)
{
	for (size_t i = 0; suffixes[i]; i++) {
		char *p = pu_path(ce->inbox, id, suffixes[i]);

		if (p && access(p, F_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

static int load_p12(struct ca_external *ce, const char *path, const uint8_t *data, size_t len,
		    STACK_OF(X509) **certs, struct amtprov_ca_result *res,
		    struct amtprov_error *err)
{
	const struct amtprov_host *h = ce->host;
	struct amtprov_secret *pw = NULL;
	struct amtprov_error e2;
	int rc;

	if (!ce->cfg.p12_password || !*ce->cfg.p12_password) {
		res->outcome = AMTPROV_CA_UNCONFIGURED;
		snprintf(res->message, sizeof(res->message),
			 "%s: a PKCS#12 answer arrived but no p12_password credential is "
			 "configured", CE_NAME);
		return AMTPROV_OK;
	}
	amtprov_error_clear(&e2);
	rc = h->secret_get(h, ce->cfg.p12_password, &pw, &e2);
	if (rc != AMTPROV_OK) {
		res->outcome = AMTPROV_CA_UNCONFIGURED;
		snprintf(res->message, sizeof(res->message),
			 "%s: cannot read credential '%.60s' (PKCS#12 password): %.100s", CE_NAME,
			 ce->cfg.p12_password, e2.msg);
		return AMTPROV_OK;
	}
	amtprov_error_clear(&e2);
	rc = ce_p12_load(data, len, pw->data, path, certs, NULL, &e2);
	h->secret_free(h, pw);
	if (rc == AMTPROV_E_AUTH) {
		/* Not final: the administrator can fix the credential and the next poll
		 * imports the same file. */
		res->outcome = AMTPROV_CA_UNCONFIGURED;
		snprintf(res->message, sizeof(res->message),
			 "%s: %.63s.p12: wrong password in credential '%.60s'", CE_NAME, res->cookie,
			 ce->cfg.p12_password);
		return AMTPROV_OK;
	}
	if (rc != AMTPROV_OK) {
		res->outcome = AMTPROV_CA_REJECTED;
		snprintf(res->message, sizeof(res->message), "%s: %.200s", CE_NAME, e2.msg);
		return AMTPROV_OK;
	}
	(void)err;
	return AMTPROV_OK;
}

int ce_rf_poll(struct ca_external *ce, const struct amtprov_ca_request *req,
	       const char *cookie, struct amtprov_ca_result *res, struct amtprov_error *err)
{
	STACK_OF(X509) *certs = NULL;
	EVP_PKEY *pub = NULL;
	X509 *leaf = NULL;
	char *path = NULL, *done = NULL, *priv = NULL, *chain = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	struct amtprov_error e2;
	int rc = AMTPROV_OK, is_p12 = 0;

	snprintf(res->cookie, sizeof(res->cookie), "%s", cookie ? cookie : "");
	if (!ce_id_ok(cookie)) {
		res->outcome = AMTPROV_CA_REJECTED;
		snprintf(res->message, sizeof(res->message), "%s: '%.64s' is not a request id",
			 CE_NAME, cookie ? cookie : "");
		return AMTPROV_OK;
	}
	snprintf(res->request_id, sizeof(res->request_id), "%s", cookie);
	if ((path = find_answer(ce, cookie, (const char *const[]){".rejected", NULL}))) {
		char reason[160];

		if ((rc = ce_read_file(path, &data, &len, err)) != AMTPROV_OK)
			goto out;
		read_reason(data, len, reason, sizeof(reason));
		res->outcome = AMTPROV_CA_REJECTED;
		snprintf(res->message, sizeof(res->message), "%s: the external CA refused: %s",
			 CE_NAME, reason[0] ? reason : "(no reason given)");
		goto consumed;
	}
	if (!(path = find_answer(ce, cookie, chain_suffixes))) {
		path = find_answer(ce, cookie, p12_suffixes);
		is_p12 = 1;
	}
	if (!path) {
		set_wait(ce, res, cookie);
		snprintf(res->message, sizeof(res->message), "no answer in the inbox yet for %s",
			 cookie);
		goto out;
	}
	if ((rc = request_key(ce, req, cookie, &pub, err)) != AMTPROV_OK)
		goto out;
	if ((rc = ce_read_file(path, &data, &len, err)) != AMTPROV_OK)
		goto out;
	amtprov_error_clear(&e2);
	if (is_p12) {
		if ((rc = load_p12(ce, path, data, len, &certs, res, err)) != AMTPROV_OK ||
		    !certs)
			goto out;
	} else if (ce_certs_load(data, len, path, &certs, &e2) != AMTPROV_OK) {
		res->outcome = AMTPROV_CA_REJECTED;
		snprintf(res->message, sizeof(res->message), "%s: %.60s: %.160s", CE_NAME,
			 strrchr(path, '/') + 1, e2.msg);
		goto consumed;
	}
	amtprov_error_clear(&e2);
	if (ce_pick_leaf(certs, pub, &leaf, &chain, &e2) != AMTPROV_OK) {
		if (e2.code != AMTPROV_E_VERIFY) {
			rc = amtprov_error_set(err, e2.code, e2.where, "%s", e2.msg);
			goto out;
		}
		res->outcome = AMTPROV_CA_REJECTED;
		snprintf(res->message, sizeof(res->message),
			 "%s: certificate does not match the request key (%.60s)", CE_NAME,
			 strrchr(path, '/') + 1);
		goto consumed;
	}
	{
		time_t now = (time_t)ce->host->now(ce->host);

		if (X509_cmp_time(X509_get0_notAfter(leaf), &now) < 0) {
			res->outcome = AMTPROV_CA_REJECTED;
			snprintf(res->message, sizeof(res->message),
				 "%s: the returned certificate has expired", CE_NAME);
			goto consumed;
		}
	}
	if ((rc = ce_cert_der(leaf, &res->cert_der, &res->cert_len, err)) != AMTPROV_OK)
		goto out;
	res->chain_pem = chain;
	chain = NULL;
	res->outcome = AMTPROV_CA_ISSUED;
	ce->host->log(ce->host, AMTPROV_LOG_NOTICE, "imported the answer to %s from %s", cookie,
		      path);
consumed:
	/* Renamed, not deleted: the administrator keeps what the CA sent, and the next poll
	 * does not import (or refuse) it a second time. */
	if (asprintf(&done, "%s.imported", path) < 0)
		done = NULL;
	if (done && rename(path, done) < 0)
		ce->host->log(ce->host, AMTPROV_LOG_WARNING, "cannot rename %s: %s", path,
			      strerror(errno));
	if ((priv = pu_path(ce->state, cookie, ".csr")))
		unlink(priv);
	if (res->outcome == AMTPROV_CA_REJECTED)
		ce->host->log(ce->host, AMTPROV_LOG_WARNING, "request %s: %s", cookie,
			      res->message);
out:
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	X509_free(leaf);
	EVP_PKEY_free(pub);
	free(chain);
	free(data);
	free(path);
	free(done);
	free(priv);
	return rc;
}
