/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_skeleton.c - a complete, minimal amtprov CA plugin to start your own from.
 *
 * It implements a "manual CA" workflow, which needs no CA library at all:
 *
 *   submit  writes the device's PKCS#10 request as <outbox>/<cookie>.csr (PEM), what it is
 *           for as <outbox>/<cookie>.info (purpose, FQDN, template, profile), and answers
 *           WAIT_WITH_DELAY with that cookie; amtprov persists the cookie.
 *   (you)   sign the request with any CA and save the certificate, PEM, as
 *           <inbox>/<cookie>.pem (the leaf first, then its issuing chain if you like);
 *           or save a one-line reason as <inbox>/<cookie>.rejected to refuse it.
 *   poll    amtprov asks again every poll_seconds; the plugin answers ISSUED with the
 *           certificate once the file is there, REJECTED if refused, else WAIT again.
 *   revoke  writes the order as <outbox>/revoke-<serial>.txt; once you have revoked it (and
 *           published the CRL), confirm with <inbox>/revoke-<serial>.done: the plugin then
 *           answers ISSUED ("revoked"), until then WAIT (amtprov asks again later).
 *
 * What you sign must keep the CA contract of include/amtprov/ca.h, which amtprov checks
 * before the certificate goes anywhere: the request's key and subject, the EKU of the
 * purpose, the issuing chain up to the root in the .pem file, and for a web server a CRL
 * distribution point (README.md shows an OpenSSL command that does all of it).
 *
 * To connect a real CA, replace skel_submit/skel_poll with calls to it: keep the rules of
 * include/amtprov/ca.h (an outcome for every answer of the CA, an error code only when the
 * call itself failed) and of plugin.h (configuration through host->config_parse, logging
 * through host->log, time through host->now).
 *
 * Build against the installed SDK only (pkg-config --cflags amtprov): see README.md.
 */
/* strdup, fsync, link: POSIX, not ISO C. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <amtprov/ca.h>

/* ---- configuration: one struct, one declarative table ---- */

struct skel_cfg {
	char *inbox;
	char *outbox;
	long long poll_seconds;
};

static const struct amtprov_config_field skel_table[] = {
	{"inbox", AMTPROV_CFG_STRING, offsetof(struct skel_cfg, inbox), 1, NULL, 0, 0,
	 "absolute directory where issued certificates are dropped as <cookie>.pem"},
	{"outbox", AMTPROV_CFG_STRING, offsetof(struct skel_cfg, outbox), 0, NULL, 0, 0,
	 "absolute directory where requests are written as <cookie>.csr (default: the "
	 "instance's state directory)"},
	{"poll_seconds", AMTPROV_CFG_INT, offsetof(struct skel_cfg, poll_seconds), 0, "300", 1,
	 86400, "seconds between two looks into the inbox"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

/* Largest certificate file we read: a leaf plus a long chain fits easily. */
#define SKEL_MAX_PEM (256 * 1024)

struct skel_ca {
	const struct amtprov_host *host;
	struct skel_cfg cfg;
	const char *outbox; /* cfg.outbox or the host's state directory (borrowed) */
	unsigned long seq;
};

/* ---- PEM <-> DER without a crypto library ---- */

static int b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes base64 (whitespace ignored). @return 0, or -1 for bad input or no memory. */
static int b64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *buf = malloc(len / 4 * 3 + 3);
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	size_t n = 0;

	if (!buf)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)in[i], v;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = b64_value(c);
		if (v < 0 || pad)
			goto bad; /* not base64, or data after the padding */
		acc = ((acc << 6) | (uint32_t)v) & 0xffffffu;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (uint8_t)(acc >> bits);
		}
	}
	if (pad > 2 || n == 0)
		goto bad;
	*out = buf;
	*out_len = n;
	return 0;
bad:
	free(buf);
	return -1;
}

/* Encodes @p der as a PEM block with @p label. @return malloc'd text or NULL. */
static char *pem_encode(const char *label, const uint8_t *der, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t b64 = (len + 2) / 3 * 4, size = b64 + b64 / 64 + 2 + 2 * strlen(label) + 40, n;
	char *out = malloc(size);

	if (!out)
		return NULL;
	n = (size_t)snprintf(out, size, "-----BEGIN %s-----\n", label);
	for (size_t i = 0, col = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)der[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)der[i + 1] << 8;
		if (i + 2 < len)
			v |= der[i + 2];
		out[n++] = tab[(v >> 18) & 63];
		out[n++] = tab[(v >> 12) & 63];
		out[n++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[n++] = i + 2 < len ? tab[v & 63] : '=';
		col += 4;
		if (col == 64 || i + 3 >= len) {
			out[n++] = '\n';
			col = 0;
		}
	}
	snprintf(out + n, size - n, "-----END %s-----\n", label);
	return out;
}

/* 1 if @p der is exactly one DER SEQUENCE (what a certificate is), checked structurally. */
static int der_is_one_sequence(const uint8_t *der, size_t len)
{
	size_t hdr = 2, body;

	if (len < 2 || der[0] != 0x30)
		return 0;
	if (der[1] < 0x80) {
		body = der[1];
	} else {
		size_t nlen = der[1] & 0x7f;

		if (nlen == 0 || nlen > 4 || len < 2 + nlen)
			return 0;
		body = 0;
		for (size_t i = 0; i < nlen; i++)
			body = (body << 8) | der[2 + i];
		hdr += nlen;
	}
	return hdr + body == len;
}

/* Splits @p pem: the first certificate as DER, and what follows (the chain) as PEM. */
static int parse_cert_pem(const char *pem, uint8_t **der, size_t *der_len, char **chain)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	const char *b = strstr(pem, begin), *e, *rest;

	if (!b)
		return -1;
	b += sizeof(begin) - 1;
	e = strstr(b, end);
	if (!e || b64_decode(b, (size_t)(e - b), der, der_len) < 0)
		return -1;
	if (!der_is_one_sequence(*der, *der_len)) {
		free(*der);
		*der = NULL;
		return -1;
	}
	*chain = NULL;
	rest = strstr(e + sizeof(end) - 1, begin);
	if (rest && !(*chain = strdup(rest))) {
		free(*der);
		*der = NULL;
		return -1;
	}
	return 0;
}

/* ---- files ---- */

/* Formats into a new malloc'd string (C11 has no asprintf). @return 0, or -1. */
static int asprintf_like(char **out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(*out = malloc((size_t)n + 1)))
		return -1;
	va_start(ap, fmt);
	vsnprintf(*out, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return 0;
}

/* "<dir>/<name><ext>", malloc'd; NULL when out of memory. */
static char *path_of(const char *dir, const char *name, const char *ext)
{
	size_t size = strlen(dir) + strlen(name) + strlen(ext) + 2;
	char *p = malloc(size);

	if (p)
		snprintf(p, size, "%s/%s%s", dir, name, ext);
	return p;
}

/* Reads a whole small file. @return 0, -1 with errno (ENOENT: not there yet). */
static int read_small_file(const char *path, char **out)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return -1;
	buf = malloc(SKEL_MAX_PEM + 1);
	if (!buf) {
		fclose(f);
		errno = ENOMEM;
		return -1;
	}
	n = fread(buf, 1, SKEL_MAX_PEM, f);
	if (ferror(f) || (n == SKEL_MAX_PEM && !feof(f))) {
		fclose(f);
		free(buf);
		errno = EFBIG;
		return -1;
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	return 0;
}

/* Writes @p text to @p path (which is <dir>/<name>.csr) atomically, through <dir>/<name>.tmp:
 * a person or script watching the outbox never sees a half-written request. Fails with
 * EEXIST rather than replacing a request. */
static int write_new_file(const char *dir, const char *name, const char *path,
			  const char *text)
{
	char *tmp = path_of(dir, name, ".tmp");
	size_t len = strlen(text);
	int fd, rc = -1, saved;

	if (!tmp)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 && close(fd) == 0) {
			fd = -1;
			rc = link(tmp, path); /* unlike rename, never replaces */
		}
	}
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	errno = saved;
	return rc;
}

/* A cookie comes back from amtprov's database: check it before it becomes a file name. */
static int cookie_is_safe(const char *cookie)
{
	size_t n = strlen(cookie);

	if (n == 0 || n > 200 || cookie[0] == '.' || cookie[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = cookie[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

/* ---- lifecycle ---- */

static void skel_destroy(void *instance)
{
	struct skel_ca *ca = instance;

	if (!ca)
		return;
	ca->host->config_free(ca->host, skel_table, &ca->cfg);
	free(ca);
}

static int skel_create(const struct amtprov_host *host, const struct json_t *config,
		       void **instance, struct amtprov_error *err)
{
	struct skel_ca *ca = calloc(1, sizeof(*ca));
	int rc;

	if (!ca)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	ca->host = host;
	/* Unknown keys, wrong types and missing "inbox" are reported with their JSON path. */
	rc = host->config_parse(host, config, skel_table, &ca->cfg, err);
	if (rc == AMTPROV_OK && ca->cfg.inbox[0] != '/')
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "/inbox",
				       "must be an absolute path, not '%s'", ca->cfg.inbox);
	if (rc == AMTPROV_OK && ca->cfg.outbox && ca->cfg.outbox[0] != '/')
		rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "/outbox",
				       "must be an absolute path, not '%s'", ca->cfg.outbox);
	if (rc == AMTPROV_OK) {
		ca->outbox = ca->cfg.outbox ? ca->cfg.outbox : host->state_dir(host);
		if (!ca->outbox)
			rc = amtprov_error_set(err, AMTPROV_E_CONFIG, "/outbox",
					       "required: amtprov gave this instance no state "
					       "directory");
	}
	if (rc != AMTPROV_OK) {
		skel_destroy(ca); /* config_free is safe on a half-filled struct */
		return rc;
	}
	*instance = ca;
	return AMTPROV_OK;
}

/* start() may look at the outside world; create() must not. */
static int skel_start(void *instance, struct amtprov_error *err)
{
	struct skel_ca *ca = instance;
	const char *dirs[] = {ca->cfg.inbox, ca->outbox};
	struct stat st;

	for (size_t i = 0; i < 2; i++)
		if (stat(dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
			return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, dirs[i],
						 "ca-skeleton: %s is not a directory", dirs[i]);
	return AMTPROV_OK;
}

/* ---- CA operations ---- */

static void answer_wait(struct skel_ca *ca, struct amtprov_ca_result *res, const char *cookie)
{
	res->outcome = AMTPROV_CA_WAIT_WITH_DELAY;
	res->delay_seconds = (uint32_t)ca->cfg.poll_seconds;
	snprintf(res->cookie, sizeof(res->cookie), "%s", cookie);
	snprintf(res->request_id, sizeof(res->request_id), "%s", cookie);
}

static const char *purpose_name(uint32_t purpose)
{
	switch (purpose) {
	case AMTPROV_PURPOSE_WEB_SERVER: return "web-server";
	case AMTPROV_PURPOSE_CLIENT_8021X: return "802.1x-client";
	default: return "other";
	}
}

/* <outbox>/<cookie>.info: "key=value" lines about the request. */
static int write_info(struct skel_ca *ca, const char *cookie,
		      const struct amtprov_ca_request *req)
{
	char *path = path_of(ca->outbox, cookie, ".info"), *text = NULL, name[80];
	int rc = -1;

	snprintf(name, sizeof(name), "%s-info", cookie);
	if (path && asprintf_like(&text, "purpose=%s\nfqdn=%s\ntemplate=%s\nprofile=%s\n",
				  purpose_name(req->purpose),
				  req->subject_fqdn ? req->subject_fqdn : "",
				  req->template_name ? req->template_name : "",
				  req->netprofile ? req->netprofile : "") == 0)
		rc = write_new_file(ca->outbox, name, path, text);
	free(text);
	free(path);
	return rc;
}

static int skel_submit(void *instance, const struct amtprov_ca_request *req,
		       struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct skel_ca *ca = instance;
	/* Sized like result.request_id, so the cookie doubles as the request id. */
	char cookie[64], *pem, *path = NULL;
	int rc = -1;

	if (!req || !req->csr_der || req->csr_len == 0)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "ca-skeleton: no request");
	pem = pem_encode("CERTIFICATE REQUEST", req->csr_der, req->csr_len);
	if (!pem)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	/* Unique across restarts (the clock) and within a second (the sequence number). */
	for (int tries = 0; tries < 100 && rc < 0; tries++) {
		long long now = (long long)ca->host->now(ca->host);
		unsigned long seq = ++ca->seq;

		/* The instance name tells the operator where a request came from; drop it if
		 * it is too long to fit. */
		if (snprintf(cookie, sizeof(cookie), "%s-%lld-%lu",
			     ca->host->instance_name(ca->host), now, seq) >= (int)sizeof(cookie))
			snprintf(cookie, sizeof(cookie), "req-%lld-%lu", now, seq);
		free(path);
		path = path_of(ca->outbox, cookie, ".csr");
		if (!path)
			break;
		rc = write_new_file(ca->outbox, cookie, path, pem);
		if (rc < 0 && errno != EEXIST)
			break;
	}
	free(pem);
	/* What the request is for, next to it: the person signing needs the purpose (EKU) and
	 * the name (subjectAltName) the CA contract demands. */
	if (rc == 0)
		rc = write_info(ca, cookie, req);
	if (rc < 0) {
		int e = errno;

		rc = amtprov_error_set(err, AMTPROV_E_IO, path ? path : ca->outbox,
				       "ca-skeleton: cannot write the request: %s", strerror(e));
		free(path);
		return rc;
	}
	ca->host->log(ca->host, AMTPROV_LOG_NOTICE,
		      "request for %s written to %s; sign it and save the certificate as %s/%s.pem",
		      req->subject_fqdn ? req->subject_fqdn : "(unnamed)", path, ca->cfg.inbox,
		      cookie);
	free(path);
	answer_wait(ca, res, cookie);
	return AMTPROV_OK;
}

static int skel_poll(void *instance, const struct amtprov_ca_request *req, const char *cookie,
		     struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct skel_ca *ca = instance;
	char *path, *text = NULL;
	uint8_t *der = NULL;
	size_t der_len = 0;
	char *chain = NULL;

	if (!cookie || !cookie_is_safe(cookie)) {
		res->outcome = AMTPROV_CA_REJECTED;
		snprintf(res->message, sizeof(res->message), "ca-skeleton: malformed cookie");
		return AMTPROV_OK;
	}
	/* A refusal, if the operator wrote one: its first line is the CA's message. */
	path = path_of(ca->cfg.inbox, cookie, ".rejected");
	if (!path)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	if (read_small_file(path, &text) == 0) {
		res->outcome = AMTPROV_CA_REJECTED;
		text[strcspn(text, "\r\n")] = '\0';
		snprintf(res->message, sizeof(res->message), "%s",
			 text[0] ? text : "rejected by the operator");
		free(text);
		free(path);
		return AMTPROV_OK;
	}
	free(path);

	path = path_of(ca->cfg.inbox, cookie, ".pem");
	if (!path)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	if (read_small_file(path, &text) < 0) {
		if (errno != ENOENT)
			ca->host->log(ca->host, AMTPROV_LOG_WARNING, "cannot read %s: %s", path,
				      strerror(errno));
		free(path);
		answer_wait(ca, res, cookie); /* not signed yet */
		return AMTPROV_OK;
	}
	if (parse_cert_pem(text, &der, &der_len, &chain) < 0) {
		/* Probably a mistake the operator can fix: say so and keep waiting, rather than
		 * failing the device for good. */
		ca->host->log(ca->host, AMTPROV_LOG_WARNING,
			      "%s does not hold a PEM certificate; fix it and amtprov will look "
			      "again", path);
		free(text);
		free(path);
		answer_wait(ca, res, cookie);
		return AMTPROV_OK;
	}
	ca->host->log(ca->host, AMTPROV_LOG_NOTICE, "certificate for %s picked up from %s",
		      req && req->subject_fqdn ? req->subject_fqdn : cookie, path);
	free(text);
	free(path);
	/* malloc'd buffers become amtprov's (ca.h). */
	res->outcome = AMTPROV_CA_ISSUED;
	res->cert_der = der;
	res->cert_len = der_len;
	res->chain_pem = chain;
	snprintf(res->request_id, sizeof(res->request_id), "%s", cookie);
	return AMTPROV_OK;
}

/* A revocation order for the operator; confirmed by <inbox>/revoke-<serial>.done. */
static int skel_revoke(void *instance, const struct amtprov_ca_revocation *rev,
		       struct amtprov_ca_result *res, struct amtprov_error *err)
{
	struct skel_ca *ca = instance;
	char name[160], *order = NULL, *done = NULL, *text = NULL;
	struct stat st;
	int rc = AMTPROV_OK;

	if (!rev || !rev->serial_hex || !cookie_is_safe(rev->serial_hex) ||
	    strlen(rev->serial_hex) > 128)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL,
					 "ca-skeleton: no usable serial number");
	snprintf(name, sizeof(name), "revoke-%s", rev->serial_hex);
	order = path_of(ca->outbox, name, ".txt");
	done = path_of(ca->cfg.inbox, name, ".done");
	if (!order || !done ||
	    asprintf_like(&text, "serial=%s\nissuer=%s\nreason=%u\n", rev->serial_hex,
			  rev->issuer ? rev->issuer : "", (unsigned)rev->reason) < 0) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		goto out;
	}
	if (stat(done, &st) == 0) {
		res->outcome = AMTPROV_CA_ISSUED; /* for revoke: revoked */
		ca->host->log(ca->host, AMTPROV_LOG_NOTICE, "serial %s revoked (confirmed by %s)",
			      rev->serial_hex, done);
		goto out;
	}
	/* The order is written once; asking again only checks for the confirmation. */
	if (write_new_file(ca->outbox, name, order, text) < 0 && errno != EEXIST) {
		rc = amtprov_error_set(err, AMTPROV_E_IO, order,
				       "ca-skeleton: cannot write the revocation order: %s",
				       strerror(errno));
		goto out;
	}
	res->outcome = AMTPROV_CA_WAIT_WITH_DELAY; /* a WAIT always carries a cookie */
	res->delay_seconds = (uint32_t)ca->cfg.poll_seconds;
	snprintf(res->cookie, sizeof(res->cookie), "%s", name);
	snprintf(res->message, sizeof(res->message), "revocation of %s waits for %s",
		 rev->serial_hex, done);
out:
	free(text);
	free(order);
	free(done);
	return rc;
}

/* ---- the descriptor: the plugin's only exported symbol ---- */

static const struct amtprov_ca_ops skel_ops = {
	.struct_size = sizeof(struct amtprov_ca_ops),
	.start = skel_start,
	.submit = skel_submit,
	.poll = skel_poll,
	.revoke = skel_revoke,
};

static const char *const skel_caps[] = {
	AMTPROV_CAP_CA_SUBMIT,
	AMTPROV_CAP_CA_POLL,
	/* Sites revoke what a CA issued on renewal and re-provisioning (R-REV-02). */
	AMTPROV_CAP_CA_REVOKE,
	AMTPROV_CAP_CA_PURPOSE_WEB,
	AMTPROV_CAP_CA_PURPOSE_8021X,
	NULL,
};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_CA, .name = "ca-skeleton", .version = "1.0.0",
		      .description = "manual CA: requests to an outbox, certificates from an inbox",
		      .capabilities = skel_caps, .create = skel_create, .destroy = skel_destroy,
		      .ops = &skel_ops, .config_table = skel_table);
