/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registration API (docs/api.md): libevent's evhttp over TLS (bufferevent_openssl) on
 * the engine's event base. Endpoints:
 *   GET  /v1/health                 unauthenticated; {"status":"ok"} and nothing else
 *   POST /v1/devices                a host's enrollment secret (its own FQDN only) or an
 *                                   administrator token; registers a device, new or known
 *                                   (R-PROV-01/02/03, registration.h)
 *   GET  /v1/devices/{fqdn-or-uuid} administrator token, or the device's own enrollment
 *                                   secret; its state and last error
 *   DELETE /v1/devices/{fqdn-or-uuid} administrator token; 'amtprov device delete'
 *   POST /v1/devices/{fqdn-or-uuid}/{unprovision|block|unblock|update}
 *                                   administrator token; records the request
 *                                   (lifecycle.h), 202
 *   GET  /metrics                   administrator or monitoring token; Prometheus text
 *                                   (api_metrics.h)
 *   GET  /, GET /v1/status          administrator token or a status session: the status
 *                                   page and its JSON (api_status.h)
 *   POST /v1/sessions               administrator token; a one-time login link for the page
 *   GET  /login?t=...               the link: opens a session (cookie), 303 to /
 * Everything else is 404 (unknown path) or 405 (known path, other method). Who may do what:
 * docs/api.md and authz.h.
 *
 * Under abuse (docs/api.md, "Limits under abuse"): api_conn.c caps connections and gives
 * each request a deadline; here, device keys no FQDN or UUID can be and requests whose
 * framing is ambiguous are refused.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "api.h"
#include "api_conn.h"
#include "api_metrics.h"
#include "api_status.h"
#include "device_delete.h"
#include "authz.h"
#include "credentials.h"
#include "device_input.h"
#include "lifecycle.h"
#include "registration.h"
#include "status.h"
#include "util.h"

#define API_MAX_HEADERS 8192       /* request line + headers */
#define API_TIMEOUT_SECONDS 30     /* an idle or slow connection is closed */
#define TOKEN_HASH_LEN 32          /* SHA-256 */
#define API_MAX_LOOKUPS 64         /* address checks waiting for the resolver at once; they
				    * share the worker pool with the CA calls */

struct api {
	struct site *site;
	struct engine *engine;
	struct alog *log;
	SSL_CTX *tls;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	/* Only SHA-256 digests of the tokens are kept: comparing digests is constant time
	 * whatever the presented token's length, and the tokens themselves leave memory as
	 * soon as they are read. */
	unsigned char (*token_hash)[TOKEN_HASH_LEN];
	int *token_scope;    /* SCOPE_ADMIN or SCOPE_MONITOR, per digest */
	size_t n_tokens;     /* token digests filled (administrators', then monitors') */
	size_t n_admin;      /* of which administrator tokens */
	size_t n_alloc;      /* digests allocated */
	/* The site registration keys: enrollment secrets are recomputed, never stored. */
	struct amtprov_secret **reg_keys;
	size_t n_reg_keys;
	struct lookup *lookups; /* registrations waiting for their address check */
	size_t n_lookups;
	int port;
	struct api_conns *conns;     /* docs/api.md#limits-under-abuse */
	struct alog_limit log_framing; /* refusals a client could repeat at will */
	struct api_sessions *sessions; /* the status page's login links and sessions */
};

/* What a request's bearer credential allows (docs/api.md "Who may do what"). */
enum scope {
	SCOPE_ADMIN = 1,     /* an administrator token: every device, every operation */
	SCOPE_HOST = 2,      /* an enrollment secret: register and read one FQDN */
	SCOPE_MONITOR = 4,   /* a monitoring token: GET /metrics only, nothing of a device */
};

struct caller {
	enum scope scope;
	struct authz_host host; /* SCOPE_HOST: the FQDN (and UUID) the secret is for */
};

/* ---------------------------------------------------------------------------------------- */
/* TLS                                                                                      */
/* ---------------------------------------------------------------------------------------- */

static int tls_error(struct amtprov_error *err, const char *where, const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		util_strlcpy(buf, "unknown TLS error", sizeof(buf));
	ERR_clear_error();
	return amtprov_error_set(err, AMTPROV_E_CONFIG, where, "%s: %s", what, buf);
}

static SSL_CTX *tls_new(const struct manifest_api *m, struct amtprov_error *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		tls_error(err, NULL, "cannot create a TLS context");
		return NULL;
	}
	/* TLS 1.2 is the oldest version without known protocol weaknesses. */
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		tls_error(err, NULL, "cannot require TLS 1.2");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				      SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, m->certificate) != 1) {
		tls_error(err, m->certificate, "cannot load the API certificate chain");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, m->key, SSL_FILETYPE_PEM) != 1) {
		tls_error(err, m->key, "cannot load the API private key");
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, m->key, "the API key does not match its certificate");
		goto fail;
	}
	if (m->client_ca) {
		/* Mutual TLS comes on top of the bearer token, never instead of it. */
		if (SSL_CTX_load_verify_locations(ctx, m->client_ca, NULL) != 1) {
			tls_error(err, m->client_ca, "cannot load the client CA bundle");
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Responses                                                                                */
/* ---------------------------------------------------------------------------------------- */

static void peer_name(struct evhttp_request *req, char *buf, size_t size)
{
	struct evhttp_connection *con = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (con)
		evhttp_connection_get_peer(con, &addr, &port);
	snprintf(buf, size, "%s", addr ? addr : "?");
}

static void reply_json(struct evhttp_request *req, int code, const char *reason, json_t *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (out && text) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
	}
	evhttp_send_reply(req, code, reason, out);
	if (out)
		evbuffer_free(out);
	free(text);
	json_decref(body);
}

/* {"error": msg[, "field": field]} */
static void reply_error(struct evhttp_request *req, int code, const char *reason,
			const char *msg, const char *field)
{
	json_t *b = json_pack("{s:s}", "error", msg);

	if (b && field)
		json_object_set_new(b, "field", json_string(field));
	reply_json(req, code, reason, b);
}

/* ---------------------------------------------------------------------------------------- */
/* Authentication                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* 1 when the request carries a credential of the site: an administrator token (every
 * stored digest is compared, without stopping at a match, so timing says nothing about
 * which one) or a host's enrollment secret (authz.h), with what it allows in @p who. */
static int authorized(struct api *a, struct evhttp_request *req, struct caller *who,
		      const char **why)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
					   "Authorization");
	unsigned char md[TOKEN_HASH_LEN];
	unsigned int mdlen = 0;
	size_t len;
	int ok = 0;

	memset(who, 0, sizeof(*who));
	if (!h) {
		*why = "no Authorization header";
		return 0;
	}
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		*why = "not a Bearer credential";
		return 0;
	}
	h += 7;
	while (*h == ' ')
		h++;
	len = strlen(h);
	while (len && h[len - 1] == ' ')
		len--;
	if (len == 0) {
		*why = "empty bearer token";
		return 0;
	}
	if (authz_secret_like(h, len)) {
		if (a->n_reg_keys == 0) {
			*why = "enrollment secrets are not accepted here (no api.registration_keys)";
			return 0;
		}
		if (!authz_secret_verify(a->reg_keys, a->n_reg_keys, h, len, &who->host, why))
			return 0;
		who->scope = SCOPE_HOST;
		return 1;
	}
	if (EVP_Digest(h, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != TOKEN_HASH_LEN) {
		*why = "cannot hash the token";
		return 0;
	}
	/* Which scope matched is gathered without a branch on the comparison. */
	for (size_t i = 0; i < a->n_tokens; i++)
		ok |= -(CRYPTO_memcmp(md, a->token_hash[i], TOKEN_HASH_LEN) == 0) &
		      a->token_scope[i];
	OPENSSL_cleanse(md, sizeof(md));
	if (!ok) {
		*why = "wrong bearer token";
		return 0;
	}
	/* A token listed as both is an administrator's. */
	who->scope = (ok & SCOPE_ADMIN) ? SCOPE_ADMIN : SCOPE_MONITOR;
	return 1;
}

static void reply_unauthorized(struct api *a, struct evhttp_request *req, const char *why,
			       const char *method, const char *path)
{
	char peer[64];
	json_t *b;

	peer_name(req, peer, sizeof(peer));
	/* The token is never logged, right or wrong: a wrong one may be a typo of a right one. */
	alog(a->log, AMTPROV_LOG_WARNING, "api: %s %s from %s refused: %s", method, path, peer,
	     why);
	evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
			  strcmp(why, "no Authorization header") == 0
				  ? "Bearer realm=\"amtprov\""
				  : "Bearer realm=\"amtprov\", error=\"invalid_token\"");
	b = json_pack("{s:s,s:s}", "error", "a valid bearer credential is required", "reason",
		      why);
	reply_json(req, 401, "Unauthorized", b);
}

/* 403: the credential is good but does not allow this. Nothing was read or written. */
static void reply_forbidden(struct api *a, struct evhttp_request *req, const struct caller *who,
			    const char *method, const char *path, const char *reason,
			    const char *field)
{
	char peer[64];
	json_t *b;

	peer_name(req, peer, sizeof(peer));
	alog(a->log, AMTPROV_LOG_WARNING, "api: %s %s from %s (%s%s) refused: %s", method, path,
	     peer,
	     who->scope == SCOPE_HOST      ? "enrollment secret of "
	     : who->scope == SCOPE_MONITOR ? "monitoring token"
					   : "administrator",
	     who->scope == SCOPE_HOST ? who->host.fqdn : "", reason);
	evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
			  "Bearer realm=\"amtprov\", error=\"insufficient_scope\"");
	b = json_pack("{s:s,s:s,s:s}", "error", "forbidden", "reason", reason, "scope",
		      who->scope == SCOPE_HOST      ? "register"
		      : who->scope == SCOPE_MONITOR ? "monitor"
						    : "admin");
	if (b && field)
		json_object_set_new(b, "field", json_string(field));
	reply_json(req, 403, "Forbidden", b);
}

/* ---------------------------------------------------------------------------------------- */
/* Handlers                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* The device key of a path segment, URL-decoded into @p key (STORE_FQDN_SIZE bytes). What
 * no FQDN or UUID holds is refused with 400 and -1: NUL (%00, else "pc1%00junk" would reach
 * pc1), '/' (%2F), control characters, an empty or over-long key. */
static int device_key(struct evhttp_request *req, const char *raw, char *key)
{
	size_t len = 0;
	char *k = evhttp_uridecode(raw, 0, &len);
	const char *why = NULL;

	if (!k) {
		reply_error(req, 500, "Internal Server Error", "out of memory", NULL);
		return -1;
	}
	if (len == 0)
		why = "the device key is empty";
	else if (len >= STORE_FQDN_SIZE)
		why = "the device key is too long";
	for (size_t i = 0; !why && i < len; i++) {
		unsigned char ch = (unsigned char)k[i];

		if (ch == '\0')
			why = "the device key contains NUL (%00)";
		else if (ch == '/')
			why = "the device key contains '/'";
		else if (ch < 0x20 || ch == 0x7f)
			why = "the device key contains a control character";
	}
	if (why)
		reply_error(req, 400, "Bad Request", why, "device");
	else
		memcpy(key, k, len + 1);
	free(k);
	return why ? -1 : 0;
}

/* Two Content-Length headers that disagree, or one next to Transfer-Encoding: evhttp reads
 * the body by the first (or by the chunks) and would take the rest as the next request,
 * where a proxy in front may have split the stream differently (request smuggling). */
static const char *ambiguous_framing(struct evhttp_request *req)
{
	const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const struct evkeyval *kv;
	const char *length = NULL;
	int chunked = 0;

	for (kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, "Content-Length") == 0) {
			if (length && strcmp(length, kv->value) != 0)
				return "conflicting Content-Length headers";
			length = kv->value;
		} else if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
			chunked = 1;
		}
	}
	return length && chunked ? "Content-Length together with Transfer-Encoding" : NULL;
}

/* "application/json", optionally with parameters ("; charset=utf-8"). */
static int json_content_type(struct evhttp_request *req)
{
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	size_t n = strlen("application/json");

	return ct && strncasecmp(ct, "application/json", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The answer to a registration (docs/api.md): 201 new, 200 re-registered or nothing to do,
 * 422 not Not Provisioned (R-PROV-01), 403 blocked, 409 busy (with Retry-After), unprovision
 * pending or another identity. */
static void reply_registration(struct api *a, struct evhttp_request *req,
			       const struct registration *reg, const char *peer,
			       const struct caller *who)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	const struct store_device *dev = &reg->dev;
	char loc[STORE_FQDN_SIZE + 16];
	const char *why = reg->message, *fqdn = dev->fqdn;
	json_t *body;
	int code;
	const char *reason, *error;

	switch (reg->verdict) {
	case REG_ADDED:
	case REG_REREGISTERED:
	case REG_UNCHANGED:
		alog(a->log, AMTPROV_LOG_INFO, "api: %s %s (id %lld) from %s: %s",
		     registration_verdict_name(reg->verdict), dev->fqdn, (long long)dev->id, peer,
		     dev->state);
		/* Provisioning starts now rather than at the engine's next scan. */
		if (reg->verdict != REG_UNCHANGED)
			engine_kick(a->engine);
		snprintf(loc, sizeof(loc), "/v1/devices/%s", dev->fqdn);
		evhttp_add_header(h, "Location", loc);
		body = json_pack("{s:I,s:s,s:s,s:s,s:s}", "id", (json_int_t)dev->id, "fqdn",
				 dev->fqdn, "uuid", dev->uuid, "state", dev->state, "result",
				 registration_verdict_name(reg->verdict));
		if (body && reg->previous_state[0])
			json_object_set_new(body, "previous_state",
					    json_string(reg->previous_state));
		if (body && reg->verdict == REG_UNCHANGED)
			json_object_set_new(body, "reason", json_string(reg->message));
		if (reg->verdict == REG_ADDED)
			reply_json(req, 201, "Created", body);
		else
			reply_json(req, 200, "OK", body);
		return;
	case REG_NOT_PROVISIONABLE:
		code = 422, reason = "Unprocessable Entity", error = "device refused";
		break;
	case REG_BLOCKED:
		code = 403, reason = "Forbidden", error = "device blocked";
		break;
	case REG_BUSY:
		code = 409, reason = "Conflict", error = "device busy";
		break;
	case REG_STATE:
		code = 409, reason = "Conflict", error = "unprovision pending";
		break;
	case REG_NAME:
		code = 403, reason = "Forbidden", error = "name refused";
		break;
	default: /* REG_IDENTITY, REG_TWO_DEVICES */
		code = 409, reason = "Conflict", error = "identity conflict";
		/* A host learns nothing about another device: not its name, not its state. */
		if (who->scope == SCOPE_HOST && strcmp(dev->fqdn, who->host.fqdn) != 0) {
			why = "the UUID belongs to another registered device: if this computer was "
			      "renamed, an administrator confirms with 'amtprov device add --replace'";
			fqdn = who->host.fqdn;
		}
		break;
	}
	alog(a->log, AMTPROV_LOG_NOTICE, "api: registration of %s from %s refused: %s",
	     dev->fqdn, peer, reg->message);
	body = json_pack("{s:s,s:s,s:s,s:s,s:i}", "error", error, "reason", why, "fqdn", fqdn,
			 "result", registration_verdict_name(reg->verdict), "status",
			 (int)reg->status_id);
	if (body && reg->previous_state[0] && fqdn == dev->fqdn)
		json_object_set_new(body, "state", json_string(reg->previous_state));
	if (body && reg->field)
		json_object_set_new(body, "field", json_string(reg->field));
	if (reg->retry_after > 0) {
		char secs[16];

		snprintf(secs, sizeof(secs), "%d", reg->retry_after);
		evhttp_add_header(h, "Retry-After", secs);
		if (body)
			json_object_set_new(body, "retry_after", json_integer(reg->retry_after));
	}
	reply_json(req, code, reason, body);
}

/* Registers @p di (checked, and allowed for @p who) and answers. */
static void finish_registration(struct api *a, struct evhttp_request *req,
				const struct caller *who, const struct device_input *di,
				const char *peer)
{
	char actor[STORE_SHORT_SIZE];
	struct registration reg;
	struct amtprov_error err;
	int rc;

	snprintf(actor, sizeof(actor), "api:%s", peer);
	amtprov_error_clear(&err);
	/* The API never confirms a changed identity (replace = 0): that is an administrator's
	 * decision on the site database (device add --replace). */
	rc = registration_apply(a->site, di, 0, actor, &reg, &err);
	if (rc != AMTPROV_OK) {
		alog(a->log, AMTPROV_LOG_ERROR, "api: cannot register %s: %s", di->fqdn, err.msg);
		reply_error(req, rc == AMTPROV_E_BUSY ? 503 : 500,
			    rc == AMTPROV_E_BUSY ? "Service Unavailable" : "Internal Server Error",
			    "the device could not be stored", NULL);
		return;
	}
	reply_registration(a, req, &reg, peer, who);
}

/* A host's registration waiting for the DNS lookup of its address check, which runs on the
 * engine's worker pool: the system resolver may block for many seconds, the loop never. */
struct lookup {
	struct lookup *next;
	struct api *a;               /* NULL once the API is freed: the answer is dropped */
	struct evhttp_request *req;  /* likewise, and NULL once its connection freed it */
	struct evhttp_connection *con; /* req's, to recognise it when it closes */
	json_t *body;                /* keeps di's strings */
	struct device_input di;
	struct caller who;
	char peer[48];
	/* the worker's result */
	int matched;
	char found[192];             /* the addresses the resolver gave */
	char gai[128];               /* the resolver's error, "" when it answered */
};

static void lookup_free(struct lookup *l)
{
	json_decref(l->body);
	free(l);
}

static void lookup_unlink(struct lookup *l)
{
	for (struct lookup **p = &l->a->lookups; *p; p = &(*p)->next)
		if (*p == l) {
			*p = l->next;
			l->a->n_lookups--;
			break;
		}
}

/* Worker thread: getaddrinfo() through the system resolver (NSS: /etc/hosts, DNS, ...). */
static int lookup_run(void *arg, struct amtprov_error *err)
{
	struct lookup *l = arg;
	struct addrinfo hints, *res = NULL;
	unsigned char want[16];
	int family = inet_pton(AF_INET, l->di.wired_ip, want) == 1 ? AF_INET : AF_INET6, rc;
	size_t n = 0;

	(void)err;
	if (family == AF_INET6 && inet_pton(AF_INET6, l->di.wired_ip, want) != 1)
		return AMTPROV_OK; /* checked already; never matched */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(l->di.fqdn, NULL, &hints, &res);
	if (rc != 0) {
		snprintf(l->gai, sizeof(l->gai), "%s", gai_strerror(rc));
		return AMTPROV_OK;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		const void *got = NULL;
		char text[INET6_ADDRSTRLEN];

		if (ai->ai_family == AF_INET)
			got = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			got = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
		if (!got)
			continue;
		if (ai->ai_family == family &&
		    memcmp(got, want, family == AF_INET ? 4 : 16) == 0)
			l->matched = 1;
		if (inet_ntop(ai->ai_family, got, text, sizeof(text)) && n < sizeof(l->found))
			n += (size_t)snprintf(l->found + n, sizeof(l->found) - n, "%s%s",
					      n ? ", " : "", text);
	}
	freeaddrinfo(res);
	return AMTPROV_OK;
}

/* Why @p l's address is refused, for the agent and the log. */
static void address_refusal(const struct lookup *l, int allow_list, char *buf, size_t size)
{
	if (l->gai[0])
		snprintf(buf, size, "wired_ip %s is not taken on the host's word: %s does not "
				    "resolve (%s)%s", l->di.wired_ip, l->di.fqdn, l->gai,
			 allow_list ? " and the address is not in api.address_allow" : "");
	else
		snprintf(buf, size, "wired_ip %s is not an address of %s (the resolver gives %s)%s",
			 l->di.wired_ip, l->di.fqdn, l->found[0] ? l->found : "none",
			 allow_list ? " nor in api.address_allow" : "");
}

/*
 * evhttp's close callback of a connection whose request waits for a lookup. The connection
 * is being freed: by api_conn.c (deadline, cap) or evhttp_free(), with the request still
 * attached, which frees it too; or after the client went away, when evhttp has detached the
 * request first and it survives until answered (evhttp_send_reply() then frees it).
 */
static void lookup_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct api *a = arg;

	for (struct lookup *l = a->lookups; l; l = l->next)
		if (l->con == evcon && l->req && evhttp_request_get_connection(l->req) == evcon)
			l->req = NULL;
}

/* Loop thread: the lookup is over. */
static void lookup_done(int rc, const struct amtprov_error *err, void *arg)
{
	struct lookup *l = arg;
	char why[512];

	(void)rc;
	(void)err;
	if (l->a) {
		lookup_unlink(l);
		if (!l->req) {
			/* Closed meanwhile (deadline or cap): nobody to answer, nothing recorded;
			 * the agent registers again. */
			alog(l->a->log, AMTPROV_LOG_INFO, "api: registration of %s from %s dropped: "
			     "its connection closed during the address check", l->di.fqdn, l->peer);
		} else if (l->matched) {
			finish_registration(l->a, l->req, &l->who, &l->di, l->peer);
		} else {
			address_refusal(l, site_manifest(l->a->site)->api.address_check ==
						   MANIFEST_ADDR_DNS_OR_ALLOW_LIST,
					why, sizeof(why));
			reply_forbidden(l->a, l->req, &l->who, "POST", "/v1/devices", why,
					"wired_ip");
		}
	}
	lookup_free(l);
}

/* The engine shut down before the lookup ran. */
static void lookup_abort(void *arg)
{
	struct lookup *l = arg;

	if (l->a) {
		lookup_unlink(l);
		if (l->req)
			reply_error(l->req, 503, "Service Unavailable", "amtprovd is shutting down",
				    NULL);
	}
	lookup_free(l);
}

/*
 * The address a host reports is where amtprovd will connect and send the AMT credentials
 * (docs/design.md "Threat model"): it is not taken on the host's word alone. 0 to register
 * now, 1 when a DNS lookup now holds the request (and @p body), -1 when answered.
 */
static int address_check(struct api *a, struct evhttp_request *req, const struct caller *who,
			 json_t *body, const struct device_input *di, const char *peer)
{
	const struct manifest_api *m = &site_manifest(a->site)->api;
	struct amtprov_error err;
	struct lookup *l;
	char why[256];

	/* An administrator's registration is the administrator's word, as with 'device add';
	 * without a wired IP amtprovd reaches the device by its name. */
	if (who->scope != SCOPE_HOST || m->address_check == MANIFEST_ADDR_OFF || !di->wired_ip)
		return 0;
	if (m->address_check != MANIFEST_ADDR_DNS &&
	    authz_cidr_contains(m->address_allow, m->n_address_allow, di->wired_ip))
		return 0;
	if (m->address_check == MANIFEST_ADDR_ALLOW_LIST) {
		snprintf(why, sizeof(why), "wired_ip %s is not in api.address_allow", di->wired_ip);
		reply_forbidden(a, req, who, "POST", "/v1/devices", why, "wired_ip");
		return -1;
	}
	if (a->n_lookups >= API_MAX_LOOKUPS) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "10");
		reply_error(req, 503, "Service Unavailable",
			    "too many address checks under way; register again later", NULL);
		return -1;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		reply_error(req, 500, "Internal Server Error", "out of memory", NULL);
		return -1;
	}
	l->a = a;
	l->req = req;
	l->body = json_incref(body);
	l->di = *di;
	l->who = *who;
	util_strlcpy(l->peer, peer, sizeof(l->peer));
	amtprov_error_clear(&err);
	if (engine_offload(a->engine, lookup_run, lookup_done, lookup_abort, l, &err) !=
	    AMTPROV_OK) {
		alog(a->log, AMTPROV_LOG_ERROR, "api: cannot check the address of %s: %s",
		     di->fqdn, err.msg);
		reply_error(req, 503, "Service Unavailable", "the address cannot be checked now",
			    NULL);
		lookup_free(l);
		return -1;
	}
	l->con = evhttp_request_get_connection(req);
	if (l->con)
		evhttp_connection_set_closecb(l->con, lookup_conn_closed, a);
	l->next = a->lookups;
	a->lookups = l;
	a->n_lookups++;
	return 1;
}

static void register_device(struct api *a, struct evhttp_request *req, const struct caller *who)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *field = NULL;
	char msg[512], peer[48];
	struct device_input di;
	json_error_t jerr;
	json_t *body;
	unsigned char *data;

	peer_name(req, peer, sizeof(peer));
	if (!json_content_type(req)) {
		reply_error(req, 415, "Unsupported Media Type",
			    "the body must be JSON (Content-Type: application/json)", NULL);
		return;
	}
	if (len == 0) {
		reply_error(req, 400, "Bad Request", "the body is empty", "");
		return;
	}
	data = evbuffer_pullup(in, (ev_ssize_t)len);
	if (!data) {
		reply_error(req, 500, "Internal Server Error", "out of memory", NULL);
		return;
	}
	/* Duplicate keys are refused: which of two "fqdn" values wins is not something the
	 * agent and the server should disagree on. */
	body = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!body) {
		snprintf(msg, sizeof(msg), "malformed JSON at line %d, column %d: %s", jerr.line,
			 jerr.column, jerr.text);
		reply_error(req, 400, "Bad Request", msg, "");
		return;
	}
	if (device_input_from_json(body, &di, &field, msg, sizeof(msg)) != AMTPROV_OK ||
	    device_input_check(&di, &field, msg, sizeof(msg)) != AMTPROV_OK) {
		alog(a->log, AMTPROV_LOG_NOTICE, "api: registration from %s refused: %s", peer, msg);
		reply_error(req, 400, "Bad Request", msg, field);
		goto out;
	}
	/* An enrollment secret registers the one host it was minted for: its FQDN, and its
	 * UUID when the administrator bound one. Everything the CA will see comes from the
	 * checked FQDN (core/flow/flow_cert.c), so no other name can reach a certificate request. */
	if (who->scope == SCOPE_HOST && strcasecmp(di.fqdn, who->host.fqdn) != 0) {
		snprintf(msg, sizeof(msg), "this enrollment secret is for %s and registers that "
					   "name only", who->host.fqdn);
		reply_forbidden(a, req, who, "POST", "/v1/devices", msg, "fqdn");
		goto out;
	}
	if (who->scope == SCOPE_HOST && who->host.uuid[0] &&
	    strcasecmp(di.uuid, who->host.uuid) != 0) {
		snprintf(msg, sizeof(msg), "this enrollment secret is for %s with UUID %s only",
			 who->host.fqdn, who->host.uuid);
		reply_forbidden(a, req, who, "POST", "/v1/devices", msg, "uuid");
		goto out;
	}
	switch (address_check(a, req, who, body, &di, peer)) {
	case 0:
		finish_registration(a, req, who, &di, peer);
		break;
	default: /* answered, or the lookup holds the request */
		break;
	}
out:
	json_decref(body);
}

/* SCOPE_HOST reads only its own device: 1 to go on, 0 when answered (403, or 404 for its own
 * name not registered yet). Any other key is 403 whether or not it exists, so a host learns
 * nothing about other devices. */
static int host_may_read(struct api *a, struct evhttp_request *req, const struct caller *who,
			 const char *raw_key)
{
	char *key = evhttp_uridecode(raw_key, 0, NULL);
	struct store_device dev;
	struct amtprov_error err;
	int rc = AMTPROV_E_NOT_FOUND, own = 0;

	if (!key) {
		reply_error(req, 500, "Internal Server Error", "out of memory", NULL);
		return 0;
	}
	amtprov_error_clear(&err);
	if (*key && strlen(key) < STORE_FQDN_SIZE && !strchr(key, '/'))
		rc = store_device_find(site_store(a->site), key, &dev, &err);
	if (rc != AMTPROV_OK && rc != AMTPROV_E_NOT_FOUND) {
		free(key);
		alog(a->log, AMTPROV_LOG_ERROR, "api: device lookup failed: %s", err.msg);
		reply_error(req, 500, "Internal Server Error", "the device could not be read", NULL);
		return 0;
	}
	own = rc == AMTPROV_OK && strcmp(dev.fqdn, who->host.fqdn) == 0;
	if (!own && rc == AMTPROV_E_NOT_FOUND && strcasecmp(key, who->host.fqdn) == 0) {
		free(key);
		reply_error(req, 404, "Not Found", "no such device", NULL);
		return 0;
	}
	free(key);
	if (own)
		return 1;
	reply_forbidden(a, req, who, "GET", "/v1/devices/{device}",
			"an enrollment secret reads its own device only", NULL);
	return 0;
}

static void show_device(struct api *a, struct evhttp_request *req, const char *raw_key)
{
	char key[STORE_FQDN_SIZE];
	struct store_device dev;
	struct amtprov_error err;
	int rc;

	if (device_key(req, raw_key, key) < 0)
		return;
	amtprov_error_clear(&err);
	rc = store_device_find(site_store(a->site), key, &dev, &err);
	if (rc == AMTPROV_E_NOT_FOUND) {
		reply_error(req, 404, "Not Found", "no such device", NULL);
		return;
	}
	if (rc != AMTPROV_OK) {
		alog(a->log, AMTPROV_LOG_ERROR, "api: device lookup failed: %s", err.msg);
		reply_error(req, 500, "Internal Server Error", "the device could not be read", NULL);
		return;
	}
	/* Never the OTP hash: the API reports progress, not what the device proved. */
	reply_json(req, 200, "OK",
		   json_pack("{s:I,s:s,s:s,s:s,s:s,s:o,s:i,s:s,s:i,s:b}", "id", (json_int_t)dev.id,
			     "fqdn", dev.fqdn, "uuid", dev.uuid, "amt_version", dev.amt_version,
			     "state", dev.state, "state_since", api_json_time(dev.state_since),
			     "last_error_code", dev.last_error_code, "last_error", dev.last_error,
			     "attempts", dev.attempts, "blocked", dev.blocked));
}

/* POST /v1/devices/{key}/{op}: the same requests as 'amtprov device OP' (lifecycle.h);
 * amtprovd's engine does the device work, so the answer is 202 with the new state. */
/* POST /v1/devices/{device}/credentials (administrator token only, route() checks it):
 * the device's AMT credentials, audited with status 8120 (docs/operations.md
 * "Credentials"). The answer is never cached (reply_json: Cache-Control no-store). */
static void reveal_credentials(struct api *a, struct evhttp_request *req, const char *key)
{
	struct manifest *m = site_manifest(a->site);
	struct plugin_instance *cs =
		m->credstore ? plugin_host_find(site_plugins(a->site), m->credstore) : NULL;
	struct device_credentials c;
	struct amtprov_error err;
	char peer[48], actor[STORE_SHORT_SIZE];
	json_t *body;
	int rc;

	if (!cs) {
		reply_error(req, 404, "Not Found", "the site has no credential store", NULL);
		return;
	}
	peer_name(req, peer, sizeof(peer));
	snprintf(actor, sizeof(actor), "api:%s", peer);
	amtprov_error_clear(&err);
	rc = device_credentials_reveal(a->site, cs, key, actor, &c, &err);
	if (rc == AMTPROV_E_NOT_FOUND) {
		reply_error(req, 404, "Not Found", err.msg, NULL);
		return;
	}
	if (rc != AMTPROV_OK) {
		alog(a->log, AMTPROV_LOG_ERROR, "api: credentials of %s: %s", key, err.msg);
		reply_error(req, 500, "Internal Server Error", "the credentials could not be read",
			    NULL);
		return;
	}
	body = json_pack("{s:s,s:s,s:s,s:s%}", "fqdn", c.dev.fqdn, "state", c.dev.state, "user",
			 c.admin_user, "password", c.admin_password->data, c.admin_password->len);
	if (body && c.mebx_password)
		json_object_set_new(body, "mebx_password",
				    json_stringn(c.mebx_password->data, c.mebx_password->len));
	device_credentials_free(&c);
	reply_json(req, 200, "OK", body);
}

static void device_operation(struct api *a, struct evhttp_request *req, const char *raw_key,
			     const char *op_name)
{
	int op = lifecycle_op_parse(op_name);
	char key[STORE_FQDN_SIZE], peer[48], actor[STORE_SHORT_SIZE];
	struct store_device dev;
	struct amtprov_error err;
	int rc;

	if (device_key(req, raw_key, key) < 0)
		return;
	if (strcmp(op_name, "credentials") == 0) {
		reveal_credentials(a, req, key);
		return;
	}
	if (op < 0) {
		reply_error(req, 404, "Not Found", "no such resource", NULL);
		return;
	}
	peer_name(req, peer, sizeof(peer));
	snprintf(actor, sizeof(actor), "api:%s", peer);
	amtprov_error_clear(&err);
	rc = lifecycle_request(a->site, key, (enum lifecycle_op)op, actor, &dev, &err);
	if (rc == AMTPROV_E_NOT_FOUND) {
		reply_error(req, 404, "Not Found", "no such device", NULL);
		return;
	}
	if (rc == AMTPROV_E_STATE) {
		reply_error(req, 409, "Conflict", err.msg, NULL);
		return;
	}
	if (rc != AMTPROV_OK) {
		alog(a->log, AMTPROV_LOG_ERROR, "api: %s failed: %s", op_name, err.msg);
		reply_error(req, rc == AMTPROV_E_BUSY ? 503 : 500,
			    rc == AMTPROV_E_BUSY ? "Service Unavailable" : "Internal Server Error",
			    "the request could not be recorded", NULL);
		return;
	}
	alog(a->log, AMTPROV_LOG_INFO, "api: %s %s from %s: now %s", op_name, dev.fqdn, peer,
	     dev.state);
	engine_kick(a->engine);
	reply_json(req, 202, "Accepted",
		   json_pack("{s:I,s:s,s:s,s:s,s:b}", "id", (json_int_t)dev.id, "fqdn", dev.fqdn,
			     "operation", op_name, "state", dev.state, "blocked", dev.blocked));
}

/* A boolean query parameter of DELETE: absent 0, "true"/"1" 1, "false"/"0" 0, else -1. */
static int query_flag(const struct evkeyvalq *q, const char *name)
{
	const char *v = evhttp_find_header(q, name);

	if (!v || !strcmp(v, "false") || !strcmp(v, "0"))
		return 0;
	return !strcmp(v, "true") || !strcmp(v, "1") ? 1 : -1;
}

/* DELETE /v1/devices/{device}[?revoke=true][&force=true] (administrator token only,
 * route() checks it): 'amtprov device delete', device_delete.h. */
static void delete_device(struct api *a, struct evhttp_request *req, const char *raw_key)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq q;
	struct device_delete_opts o = {0};
	struct device_delete_result res;
	char key[STORE_FQDN_SIZE], peer[48], actor[STORE_SHORT_SIZE];
	struct amtprov_error err;
	json_t *body;
	int rc;

	if (device_key(req, raw_key, key) < 0)
		return;
	TAILQ_INIT(&q);
	if (query && evhttp_parse_query_str(query, &q) != 0) {
		reply_error(req, 400, "Bad Request", "the query string does not parse", NULL);
		return;
	}
	o.revoke = query_flag(&q, "revoke");
	o.force = query_flag(&q, "force");
	evhttp_clear_headers(&q);
	if (o.revoke < 0 || o.force < 0) {
		reply_error(req, 400, "Bad Request", "revoke and force are true or false",
			    o.revoke < 0 ? "revoke" : "force");
		return;
	}
	peer_name(req, peer, sizeof(peer));
	snprintf(actor, sizeof(actor), "api:%s", peer);
	o.actor = actor;
	amtprov_error_clear(&err);
	rc = device_delete(a->site, key, &o, &res, &err);
	if (rc == AMTPROV_E_NOT_FOUND) {
		reply_error(req, 404, "Not Found", "no such device", NULL);
		return;
	}
	if (rc == AMTPROV_E_STATE || rc == AMTPROV_E_BUSY) {
		reply_error(req, 409, "Conflict", err.msg, NULL);
		return;
	}
	if (rc != AMTPROV_OK) {
		alog(a->log, AMTPROV_LOG_ERROR, "api: delete %s failed: %s", key, err.msg);
		reply_error(req, 500, "Internal Server Error", "the device could not be deleted",
			    NULL);
		return;
	}
	alog(a->log, AMTPROV_LOG_INFO, "api: delete %s from %s: kept as %s", res.dev.fqdn, peer,
	     res.tombstone);
	if (res.secrets_failed)
		alog(a->log, AMTPROV_LOG_WARNING, "api: delete %s: %d credential records not "
		     "removed: %s", res.dev.fqdn, res.secrets_failed, res.secrets_error);
	if (res.revocations_queued)
		engine_kick(a->engine);
	body = json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:b}", "fqdn", res.dev.fqdn, "uuid",
			 res.dev.uuid, "state", res.dev.state, "record", res.tombstone,
			 "certificates_kept", res.certificates, "revocations_queued",
			 res.revocations_queued, "secrets_removed", !res.secrets_failed);
	if (body)
		json_object_set_new(body, "directory_account_left",
				    res.account_left ? json_string(res.account) : json_null());
	reply_json(req, 200, "OK", body);
}

/* GET /metrics: the exposition is built in memory, then sent in one reply. */
static void show_metrics(struct api *a, struct evhttp_request *req)
{
	api_metrics_reply(a->site, req);
}

/* The status page and its JSON: a live session cookie (read-only) or an administrator
 * token. 1 to go on; 0 when answered (401, 403). */
static int status_allowed(struct api *a, struct evhttp_request *req, const char *method,
			  const char *path)
{
	const char *cookie = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
	const char *why = NULL;
	struct caller who;

	if (api_sessions_check(a->sessions, util_now(), cookie))
		return 1;
	if (!authorized(a, req, &who, &why)) {
		reply_unauthorized(a, req, why, method, path);
		return 0;
	}
	if (who.scope != SCOPE_ADMIN) {
		reply_forbidden(a, req, &who, method, path,
				"the status page needs an administrator token or its login link",
				NULL);
		return 0;
	}
	return 1;
}

/* Headers of the page and the login redirect: nothing cached, framed, sniffed or referred. */
static void page_headers(struct evkeyvalq *h)
{
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

static void show_page(struct api *a, struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	const char *page = api_status_page(), *csp = api_status_csp();
	struct evbuffer *out = evbuffer_new();

	(void)a;
	if (!page || !csp || !out) {
		if (out)
			evbuffer_free(out);
		reply_error(req, 500, "Internal Server Error", "out of memory", NULL);
		return;
	}
	evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
	evhttp_add_header(h, "Content-Security-Policy", csp);
	page_headers(h);
	evbuffer_add(out, page, strlen(page));
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static void show_status(struct api *a, struct evhttp_request *req)
{
	struct amtprov_error err;
	json_t *body = NULL;

	amtprov_error_clear(&err);
	if (api_status_json(a->site, util_now(), &body, &err) != AMTPROV_OK) {
		alog(a->log, AMTPROV_LOG_ERROR, "api: status: %s", err.msg);
		reply_error(req, 500, "Internal Server Error", "the status could not be read", NULL);
		return;
	}
	reply_json(req, 200, "OK", body);
}

/* POST /v1/sessions: a one-time login link for the status page, for an administrator. */
static void mint_login(struct api *a, struct evhttp_request *req)
{
	char hex[API_STATUS_SECRET_HEX], url[96], peer[48];
	int rc = api_sessions_mint_link(a->sessions, util_now(), hex);

	if (rc != AMTPROV_OK) {
		reply_error(req, rc == AMTPROV_E_BUSY ? 503 : 500,
			    rc == AMTPROV_E_BUSY ? "Service Unavailable" : "Internal Server Error",
			    rc == AMTPROV_E_BUSY ? "too many open login links and sessions"
						 : "cannot make a login link",
			    NULL);
		return;
	}
	snprintf(url, sizeof(url), "/login?t=%s", hex);
	OPENSSL_cleanse(hex, sizeof(hex));
	peer_name(req, peer, sizeof(peer));
	alog(a->log, AMTPROV_LOG_INFO, "api: status page login link made for %s", peer);
	reply_json(req, 201, "Created",
		   json_pack("{s:s,s:i}", "login_url", url, "expires_in",
			     API_STATUS_LINK_SECONDS));
	OPENSSL_cleanse(url, sizeof(url));
}

/* GET /login?t=...: uses the link once, sets the session cookie and sends the browser to
 * the page. */
static void login(struct api *a, struct evhttp_request *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq q = {0};
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char hex[API_STATUS_SECRET_HEX], cookie[160], peer[48];
	int rc = AMTPROV_E_AUTH;

	TAILQ_INIT(&q);
	if (query && evhttp_parse_query_str(query, &q) == 0)
		rc = api_sessions_login(a->sessions, util_now(), evhttp_find_header(&q, "t"), hex);
	evhttp_clear_headers(&q);
	peer_name(req, peer, sizeof(peer));
	if (rc != AMTPROV_OK) {
		alog(a->log, AMTPROV_LOG_WARNING, "api: status page login from %s refused: %s",
		     peer, rc == AMTPROV_E_AUTH ? "unknown, used or expired link" : "no room");
		reply_error(req, rc == AMTPROV_E_AUTH ? 401 : 503,
			    rc == AMTPROV_E_AUTH ? "Unauthorized" : "Service Unavailable",
			    rc == AMTPROV_E_AUTH ? "the login link is unknown, used or expired"
						 : "too many open sessions",
			    NULL);
		return;
	}
	/* The cookie opens the read-only page only; it is never sent cross-site, never read
	 * by script, never sent over plain HTTP. */
	snprintf(cookie, sizeof(cookie),
		 API_STATUS_COOKIE "=%s; Path=/; Max-Age=%d; Secure; HttpOnly; SameSite=Strict", hex,
		 API_STATUS_SESSION_SECONDS);
	OPENSSL_cleanse(hex, sizeof(hex));
	evhttp_add_header(h, "Set-Cookie", cookie);
	OPENSSL_cleanse(cookie, sizeof(cookie));
	evhttp_add_header(h, "Location", "/");
	page_headers(h);
	alog(a->log, AMTPROV_LOG_INFO, "api: status page session opened for %s", peer);
	evhttp_send_reply(req, 303, "See Other", NULL);
}

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "?";
	}
}

static void method_not_allowed(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	reply_error(req, 405, "Method Not Allowed", "method not allowed here", NULL);
}

#define MONITOR_ONLY "a monitoring token reads the metrics only"

/* One method, bearer credentials of @p scopes (a mask): 1 to go on, 0 when answered (405,
 * 401, or 403 with @p refusal). */
static int gate(struct api *a, struct evhttp_request *req, enum evhttp_cmd_type want,
		int scopes, const char *path, const char *refusal)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const char *why = NULL;
	struct caller who;

	if (m != want) {
		method_not_allowed(req, method_name(want));
		return 0;
	}
	if (!authorized(a, req, &who, &why)) {
		reply_unauthorized(a, req, why, method_name(m), path);
		return 0;
	}
	if (!(who.scope & scopes)) {
		reply_forbidden(a, req, &who, method_name(m), path, refusal, NULL);
		return 0;
	}
	return 1;
}

static void route(struct api *a, struct evhttp_request *req)
{
	static const char devices[] = "/v1/devices";
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const char *why = NULL;
	struct caller who;

	if (!path)
		path = "";
	if (strcmp(path, "/v1/health") == 0) {
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD)
			method_not_allowed(req, "GET, HEAD");
		else
			reply_json(req, 200, "OK", json_pack("{s:s}", "status", "ok"));
		return;
	}
	if (strcmp(path, "/") == 0 || strcmp(path, "/v1/status") == 0) {
		if (m != EVHTTP_REQ_GET)
			method_not_allowed(req, "GET");
		else if (!status_allowed(a, req, method_name(m), path))
			return; /* answered */
		else if (path[1])
			show_status(a, req);
		else
			show_page(a, req);
		return;
	}
	if (strcmp(path, "/login") == 0) {
		if (m != EVHTTP_REQ_GET)
			method_not_allowed(req, "GET");
		else
			login(a, req);
		return;
	}
	if (strcmp(path, "/v1/sessions") == 0) {
		if (gate(a, req, EVHTTP_REQ_POST, SCOPE_ADMIN, path,
			 "login links need an administrator token"))
			mint_login(a, req);
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		if (gate(a, req, EVHTTP_REQ_GET, SCOPE_ADMIN | SCOPE_MONITOR, path,
			 "the metrics need an administrator or monitoring token"))
			show_metrics(a, req);
		return;
	}
	if (strcmp(path, devices) == 0) {
		if (m != EVHTTP_REQ_POST)
			method_not_allowed(req, "POST");
		else if (!authorized(a, req, &who, &why))
			reply_unauthorized(a, req, why, method_name(m), devices);
		else if (who.scope == SCOPE_MONITOR)
			reply_forbidden(a, req, &who, method_name(m), devices, MONITOR_ONLY, NULL);
		else
			register_device(a, req, &who);
		return;
	}
	if (strncmp(path, devices, sizeof(devices) - 1) == 0 && path[sizeof(devices) - 1] == '/' &&
	    path[sizeof(devices)] != '\0' && strchr(path + sizeof(devices), '/')) {
		/* /v1/devices/{device}/{operation} */
		const char *key = path + sizeof(devices), *slash = strchr(key, '/');
		char dev[STORE_FQDN_SIZE * 3];

		if (strchr(slash + 1, '/') || (size_t)(slash - key) >= sizeof(dev)) {
			reply_error(req, 404, "Not Found", "no such resource", NULL);
		} else if (m != EVHTTP_REQ_POST) {
			method_not_allowed(req, "POST");
		} else if (!authorized(a, req, &who, &why)) {
			reply_unauthorized(a, req, why, method_name(m),
					   "/v1/devices/{device}/{operation}");
		} else if (who.scope == SCOPE_MONITOR) {
			reply_forbidden(a, req, &who, method_name(m),
					"/v1/devices/{device}/{operation}", MONITOR_ONLY, NULL);
		} else if (who.scope != SCOPE_ADMIN) {
			/* Administrator credentials are never on managed hosts (docs/api.md). */
			reply_forbidden(a, req, &who, method_name(m),
					"/v1/devices/{device}/{operation}",
					"device operations need an administrator token; an "
					"enrollment secret only registers its own device", NULL);
		} else {
			memcpy(dev, key, (size_t)(slash - key));
			dev[slash - key] = '\0';
			device_operation(a, req, dev, slash + 1);
		}
		return;
	}
	if (strncmp(path, devices, sizeof(devices) - 1) == 0 && path[sizeof(devices) - 1] == '/' &&
	    path[sizeof(devices)] != '\0' && m == EVHTTP_REQ_DELETE) {
		if (gate(a, req, EVHTTP_REQ_DELETE, SCOPE_ADMIN, "/v1/devices/{device}",
			 "deleting a device needs an administrator token"))
			delete_device(a, req, path + sizeof(devices));
		return;
	}
	if (strncmp(path, devices, sizeof(devices) - 1) == 0 && path[sizeof(devices) - 1] == '/' &&
	    path[sizeof(devices)] != '\0') {
		if (m != EVHTTP_REQ_GET)
			method_not_allowed(req, "GET, DELETE");
		else if (!authorized(a, req, &who, &why))
			reply_unauthorized(a, req, why, method_name(m), "/v1/devices/{device}");
		else if (who.scope == SCOPE_MONITOR)
			reply_forbidden(a, req, &who, method_name(m), "/v1/devices/{device}",
					MONITOR_ONLY, NULL);
		else if (who.scope == SCOPE_ADMIN ||
			 host_may_read(a, req, &who, path + sizeof(devices)))
			show_device(a, req, path + sizeof(devices));
		return;
	}
	reply_error(req, 404, "Not Found", "no such resource", NULL);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct api *a = arg;
	const char *why;
	unsigned long held = 0;
	char peer[48];

	if (api_conns_request(a->conns, req) < 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		evhttp_send_reply(req, 500, "Internal Server Error", NULL);
		return;
	}
	why = ambiguous_framing(req);
	if (why) {
		if (alog_limit_allow(&a->log_framing, &held)) {
			peer_name(req, peer, sizeof(peer));
			alog(a->log, AMTPROV_LOG_NOTICE,
			     "api: request from %s refused: %s (%lu such lines suppressed)", peer,
			     why, held);
		}
		/* What follows on the connection cannot be trusted to be a request. */
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		reply_error(req, 400, "Bad Request", why, NULL);
		return;
	}
	route(a, req);
}

/* ---------------------------------------------------------------------------------------- */
/* Life cycle                                                                               */
/* ---------------------------------------------------------------------------------------- */

/* Reads credential @p name, at least @p min bytes long. */
static int read_credential(struct plugin_instance *cs, const char *name, const char *where,
			   size_t min, const char *what, struct amtprov_secret **out,
			   struct amtprov_error *err)
{
	int rc = pi_credstore_get(cs, name, out, err);

	if (rc != AMTPROV_OK) {
		/* A credential the API cannot read is a configuration problem of the site. */
		char why[AMTPROV_ERROR_MSG_SIZE];

		util_strlcpy(why, err->msg, sizeof(why));
		return amtprov_error_set(err, AMTPROV_E_CONFIG, where, "cannot read %s '%s': %s",
					 what, name, why);
	}
	/* Short tokens can be guessed over the network; a short key weakens every MAC. */
	if ((*out)->len < min) {
		util_secret_free(*out);
		*out = NULL;
		return amtprov_error_set(err, AMTPROV_E_CONFIG, where, "credential '%s' holds %s "
					 "shorter than %zu bytes", name, what, min);
	}
	return AMTPROV_OK;
}

static int load_tokens(struct api *a, const struct manifest *m, struct amtprov_error *err)
{
	struct plugin_instance *cs =
		m->credstore ? plugin_host_find(site_plugins(a->site), m->credstore) : NULL;

	if (!cs)
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/api",
					 "the API needs the credential store (credentials.store)");
	a->n_alloc = m->api.n_admin_tokens + m->api.n_monitor_tokens + 1;
	a->token_hash = calloc(a->n_alloc, sizeof(*a->token_hash));
	a->token_scope = calloc(a->n_alloc, sizeof(*a->token_scope));
	a->reg_keys = calloc(m->api.n_registration_keys + 1, sizeof(*a->reg_keys));
	if (!a->token_hash || !a->token_scope || !a->reg_keys)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	for (size_t i = 0; i < m->api.n_admin_tokens + m->api.n_monitor_tokens; i++) {
		int admin = i < m->api.n_admin_tokens;
		const char *name = admin ? m->api.admin_tokens[i]
					 : m->api.monitor_tokens[i - m->api.n_admin_tokens];
		const char *where = admin ? "/api/admin_tokens" : "/api/monitor_tokens";
		struct amtprov_secret *s = NULL;
		unsigned int mdlen = 0;
		int rc = read_credential(cs, name, where, 16,
					 admin ? "an administrator token" : "a monitoring token", &s,
					 err);

		if (rc != AMTPROV_OK)
			return rc;
		/* Told apart by their prefix, a token must never look like an enrollment
		 * secret. */
		if (authz_secret_like(s->data, s->len)) {
			util_secret_free(s);
			return amtprov_error_set(err, AMTPROV_E_CONFIG, where,
						 "credential '%s' holds an enrollment secret, not a "
						 "bearer token", name);
		}
		rc = EVP_Digest(s->data, s->len, a->token_hash[i], &mdlen, EVP_sha256(), NULL);
		util_secret_free(s);
		if (rc != 1 || mdlen != TOKEN_HASH_LEN)
			return amtprov_error_set(err, AMTPROV_E_CRYPTO, NULL, "cannot hash a token");
		a->token_scope[i] = admin ? SCOPE_ADMIN : SCOPE_MONITOR;
		a->n_tokens++;
		a->n_admin += admin;
	}
	for (size_t i = 0; i < m->api.n_registration_keys; i++) {
		int rc = read_credential(cs, m->api.registration_keys[i], "/api/registration_keys",
					 AUTHZ_KEY_MIN, "a site registration key",
					 &a->reg_keys[i], err);

		if (rc != AMTPROV_OK)
			return rc;
		a->n_reg_keys++;
	}
	return AMTPROV_OK;
}

int api_start(struct site *site, struct engine *engine, struct api **out,
	      struct amtprov_error *err)
{
	const struct manifest *m = site_manifest(site);
	struct event_base *base = engine_base(engine);
	struct api *a;
	int rc;

	*out = NULL;
	if (!m->api.enabled)
		return AMTPROV_OK;
	a = calloc(1, sizeof(*a));
	if (!a)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	a->site = site;
	a->engine = engine;
	a->log = site_log(site);
	a->log_framing = (struct alog_limit){.burst = 2, .period = 10};
	a->sessions = api_sessions_new();
	if (!a->sessions) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		goto fail;
	}
	rc = load_tokens(a, m, err);
	if (rc)
		goto fail;
	a->tls = tls_new(&m->api, err);
	if (!a->tls) {
		rc = err->code ? err->code : AMTPROV_E_CONFIG;
		goto fail;
	}
	a->http = evhttp_new(base);
	if (!a->http) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "cannot create the HTTP server");
		goto fail;
	}
	a->conns = api_conns_new(a->http, base, a->tls, &m->api, a->log);
	if (!a->conns) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		goto fail;
	}
	evhttp_set_gencb(a->http, on_request, a);
	/* A body over the limit is refused with 413 before it is read in full. */
	evhttp_set_max_body_size(a->http, (ev_ssize_t)m->api.max_body);
	evhttp_set_max_headers_size(a->http, API_MAX_HEADERS);
	evhttp_set_timeout(a->http, API_TIMEOUT_SECONDS);
	/* Let every method reach on_request, which answers 405 with an Allow header. */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	a->sock = evhttp_bind_socket_with_handle(a->http, m->api.host, (ev_uint16_t)m->api.port);
	if (!a->sock) {
		rc = amtprov_error_set(err, AMTPROV_E_IO, "/api/listen", "cannot listen on %s port %d",
				       m->api.host, m->api.port);
		goto fail;
	}
	api_conns_listen(a->conns, a->sock);
	{
		struct sockaddr_storage ss;
		ev_socklen_t sl = sizeof(ss);
		evutil_socket_t fd = evhttp_bound_socket_get_fd(a->sock);

		a->port = m->api.port;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			if (ss.ss_family == AF_INET)
				a->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			else if (ss.ss_family == AF_INET6)
				a->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	{
		char monitors[48] = "", per_addr[48] = "no per-address limit";
		size_t n_mon = a->n_tokens - a->n_admin;

		if (api_conns_max_per_address(a->conns))
			snprintf(per_addr, sizeof(per_addr), "%d per address",
				 api_conns_max_per_address(a->conns));

		if (n_mon)
			snprintf(monitors, sizeof(monitors), ", %zu monitoring token%s", n_mon,
				 n_mon == 1 ? "" : "s");
		alog(a->log, AMTPROV_LOG_NOTICE, "api: listening on https://%s%s%s:%d (%zu "
		     "administrator token%s%s, %zu registration key%s%s; at most %d connections, "
		     "%s, %d s per request)",
		     strchr(m->api.host, ':') ? "[" : "", m->api.host,
		     strchr(m->api.host, ':') ? "]" : "", a->port, a->n_admin,
		     a->n_admin == 1 ? "" : "s", monitors, a->n_reg_keys,
		     a->n_reg_keys == 1 ? "" : "s",
		     m->api.client_ca ? ", client certificates required" : "",
		     api_conns_max(a->conns), per_addr, m->api.request_deadline_seconds);
	}
	*out = a;
	return AMTPROV_OK;
fail:
	api_free(a);
	return rc;
}

void api_free(struct api *a)
{
	if (!a)
		return;
	/* A lookup still on the worker pool belongs to the engine: it finds its request gone
	 * (evhttp_free frees it) and drops its answer. */
	for (struct lookup *l = a->lookups; l; l = l->next) {
		l->a = NULL;
		l->req = NULL;
	}
	if (a->http)
		evhttp_free(a->http);
	api_conns_free(a->conns);
	SSL_CTX_free(a->tls);
	if (a->token_hash)
		OPENSSL_cleanse(a->token_hash, a->n_alloc * sizeof(*a->token_hash));
	free(a->token_hash);
	free(a->token_scope);
	api_sessions_free(a->sessions);
	for (size_t i = 0; a->reg_keys && i < a->n_reg_keys; i++)
		util_secret_free(a->reg_keys[i]);
	free(a->reg_keys);
	free(a);
}

int api_port(const struct api *a)
{
	return a ? a->port : 0;
}
