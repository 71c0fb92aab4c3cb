/* SPDX-License-Identifier: Apache-2.0 */
/*
 * at_plugin.c - the amt-transport plugin: descriptor, configuration, and the asynchronous
 * engine. One libcurl multi handle per instance drives every session; curl's sockets are
 * mirrored into one epoll fd (CURLMOPT_SOCKETFUNCTION) and its timer into get_wait()'s
 * timeout (CURLMOPT_TIMERFUNCTION), so the core polls a single fd for thousands of devices.
 * Each session uses a link (at_link.c): one easy handle, so one kept-alive TLS connection and
 * one Digest state, kept from session to session of the same device and phase.
 *
 * Digest (R-PROV-08/09): libcurl sends the first request of a link without credentials,
 * answers the 401 challenge with Digest and reuses the nonce afterwards, counting nc up (a
 * stale nonce is re-challenged with stale=true and answered by libcurl alone). A 401 after
 * that means the account is wrong: the same request is resent with the next configured
 * account, in order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "at_internal.h"

static const struct amtprov_config_field at_table[] = {
	{"timeout_ms", AMTPROV_CFG_INT, offsetof(struct at_cfg, timeout_ms), 0, "60000", 100,
	 3600000, "default time limit of one operation (all its requests), ms"},
	{"connect_timeout_ms", AMTPROV_CFG_INT, offsetof(struct at_cfg, connect_timeout_ms), 0,
	 "10000", 100, 600000, "time limit of one TCP+TLS connection set-up, ms"},
	{"max_sessions", AMTPROV_CFG_INT, offsetof(struct at_cfg, max_sessions), 0, "20000", 1,
	 1000000, "sessions open at once in this instance"},
	{"crl_cache_seconds", AMTPROV_CFG_INT, offsetof(struct at_cfg, crl_cache_seconds), 0,
	 "300", 0, 86400, "how long a fetched CRL is reused (never past its nextUpdate)"},
	{"max_pulls", AMTPROV_CFG_INT, offsetof(struct at_cfg, max_pulls), 0, "64", 1, 10000,
	 "WS-Man Pull rounds per enumeration before giving up"},
	{"verbose_wire", AMTPROV_CFG_BOOL, offsetof(struct at_cfg, verbose_wire), 0, "false", 0, 0,
	 "log SOAP bodies at the PRIVATE level (bodies carrying secrets are never logged)"},
	{"crl_check", AMTPROV_CFG_BOOL, offsetof(struct at_cfg, crl_check), 0, "true", 0, 0,
	 "MANAGED mode: check the device certificate against its CRL, failing closed (R-REV-01)"},
	{"self_signed_name_check", AMTPROV_CFG_BOOL,
	 offsetof(struct at_cfg, self_signed_name_check), 0, "true", 0, 0,
	 "PROVISIONING mode: AMT's self-signed certificate must name the session's address"},
	{"precheck_provisioning_cert", AMTPROV_CFG_BOOL,
	 offsetof(struct at_cfg, precheck_provisioning_cert), 0, "true", 0, 0,
	 "refuse a provisioning certificate without the AMT OID/OU or serverAuth before connecting"},
	{"legacy_tls", AMTPROV_CFG_BOOL, offsetof(struct at_cfg, legacy_tls), 0, "true", 0, 0,
	 "allow TLS 1.0/1.1 for devices below AMT 12 (their only versions)"},
	{"keep_alive_ms", AMTPROV_CFG_INT, offsetof(struct at_cfg, keep_alive_ms), 0, "60000", 0,
	 600000, "how long a device's connection (TLS session, Digest nonce) is kept after its "
	 "session closed, for the next session of the same phase; 0: closed with the session"},
	{"max_idle_links", AMTPROV_CFG_INT, offsetof(struct at_cfg, max_idle_links), 0, "512", 0,
	 1000000, "device connections kept open between sessions at most (oldest closed first)"},
	{"odca_roots", AMTPROV_CFG_STRING, offsetof(struct at_cfg, odca_roots), 0, NULL, 0, 0,
	 "PEM file of the On-Die CA roots (Intel's) that AMT's pre-provisioning TLS chain (AMT 19+) "
	 "must verify to; unset: such a chain is checked for its shape and pinned, not verified"},
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

static void at_session_close(void *instance, void *session);

static int64_t now_ms(struct at_instance *in)
{
	return in->host->monotonic_ms(in->host);
}

/* ---- curl <-> epoll ---- */

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct at_instance *in = userp;
	struct epoll_event ev = {0};

	(void)easy;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(in->epfd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	ev.data.fd = fd;
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(in->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
		epoll_ctl(in->epfd, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct at_instance *in = userp;

	(void)multi;
	in->timer_at = timeout_ms < 0 ? -1 : now_ms(in) + timeout_ms;
	return 0;
}

/* ---- instance ---- */

static void crl_cache_free(struct at_instance *in)
{
	while (in->crls) {
		struct at_crl_entry *e = in->crls;

		in->crls = e->next;
		X509_CRL_free(e->crl);
		free(e->url);
		free(e);
	}
}

static void at_destroy(void *instance)
{
	struct at_instance *in = instance;

	if (!in)
		return;
	while (in->sessions) {
		at_session_close(in, in->sessions);
	}
	at_links_free(in);
	crl_cache_free(in);
	if (in->multi)
		curl_multi_cleanup(in->multi);
	at_idents_free(in);
	free(in->fd_owner);
	if (in->epfd >= 0)
		close(in->epfd);
	in->host->config_free(in->host, at_table, &in->cfg);
	free(in);
	curl_global_cleanup();
}

static int at_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
	struct at_instance *in;
	int rc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return amtprov_error_set(err, AMTPROV_E_INTERNAL, NULL, "libcurl did not initialize");
	in = calloc(1, sizeof(*in));
	if (!in) {
		curl_global_cleanup();
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	in->host = host;
	in->epfd = -1;
	in->timer_at = -1;
	rc = host->config_parse(host, config, at_table, &in->cfg, err);
	if (rc != AMTPROV_OK) {
		host->config_free(host, at_table, &in->cfg);
		free(in);
		curl_global_cleanup();
		return rc;
	}
	rc = at_odca_load(in, err);
	if (rc != AMTPROV_OK) {
		host->config_free(host, at_table, &in->cfg);
		free(in);
		curl_global_cleanup();
		return rc;
	}
	in->epfd = epoll_create1(EPOLL_CLOEXEC);
	in->multi = curl_multi_init();
	if (in->epfd < 0 || !in->multi || at_links_init(in) != 0) {
		at_destroy(in);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL,
					 "cannot create the epoll fd or the curl multi handle");
	}
	curl_multi_setopt(in->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(in->multi, CURLMOPT_SOCKETDATA, in);
	curl_multi_setopt(in->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(in->multi, CURLMOPT_TIMERDATA, in);
	/* libcurl's own cache limit is four connections per transfer in flight: whenever a
	 * transfer ended with more open it closed the longest unused, walking the whole cache
	 * to find it, so a device whose requests came between others' (fewer requests in
	 * flight than devices in a flow) met a new TLS handshake (issue 13). The links decide
	 * which connections live (at_link.c): at most one per open session and one per parked
	 * link. */
	curl_multi_setopt(in->multi, CURLMOPT_MAXCONNECTS,
			  (long)(in->cfg.max_sessions + in->cfg.max_idle_links));
	*instance = in;
	return AMTPROV_OK;
}

/* ---- completion queue ---- */

static void complete(struct at_session *s, int rc)
{
	struct at_instance *in = s->in;

	s->rc = rc;
	if (rc != AMTPROV_OK && s->err.code == AMTPROV_OK)
		amtprov_error_set(&s->err, rc, s->address, "%s", amtprov_strerror(rc));
	if (rc != AMTPROV_OK && !strstr(s->err.msg, at_op_name(s->op))) {
		/* Every error names the operation (the caller's step), however deep it arose. */
		char msg[sizeof(s->err.msg)];
		int n = snprintf(msg, sizeof(msg), "%s: ", at_op_name(s->op));

		if (n > 0 && (size_t)n < sizeof(msg)) {
			/* Longer with the prefix: cut at a word, never mid-word. */
			if (snprintf(msg + n, sizeof(msg) - (size_t)n, "%s", s->err.msg) >=
			    (int)(sizeof(msg) - (size_t)n))
				amtprov_error_cut(msg, sizeof(msg));
			memcpy(s->err.msg, msg, sizeof(msg));
		}
	}
	if (rc != AMTPROV_OK) {
		json_decref(s->result);
		s->result = NULL;
	}
	/* The phase ended (AMT applies its new TLS set-up): no later session may reuse it. */
	if (s->link && rc == AMTPROV_OK &&
	    (s->op == AMTPROV_AMT_COMMIT || s->op == AMTPROV_AMT_UNPROVISION))
		s->link->retire = 1;
	s->finished = 1;
	if (s->pending)
		return;
	s->pending = 1;
	s->pend_next = NULL;
	if (in->pend_tail)
		in->pend_tail->pend_next = s;
	else
		in->pend_head = s;
	in->pend_tail = s;
}

static void unqueue(struct at_session *s)
{
	struct at_instance *in = s->in;
	struct at_session **pp = &in->pend_head, *prev = NULL;

	if (!s->pending)
		return;
	while (*pp && *pp != s) {
		prev = *pp;
		pp = &(*pp)->pend_next;
	}
	if (*pp)
		*pp = s->pend_next;
	if (in->pend_tail == s)
		in->pend_tail = prev;
	s->pending = 0;
}

/* ---- requests ---- */

size_t at_write_cb(char *p, size_t size, size_t n, void *userp)
{
	struct at_buf *b = userp;

	if (!b)
		return 0;

	if (b->len + size * n > AT_MAX_RESPONSE) {
		b->over = 1;
		return 0; /* a runaway peer: stop reading */
	}
	at_buf_addn(b, p, size * n);
	return b->oom ? 0 : size * n;
}

static void set_account(struct at_session *s)
{
	struct at_account *a = &s->accounts[s->account];

	curl_easy_setopt(s->easy, CURLOPT_USERNAME, a->user);
	curl_easy_setopt(s->easy, CURLOPT_PASSWORD, a->password ? a->password->data : "");
}

static int send_request(struct at_session *s)
{
	struct at_instance *in = s->in;
	char url[512];
	int64_t left = s->deadline - now_ms(in);
	const char *ctype = s->proto == AT_SOAP ? "Content-Type: text/xml; charset=utf-8"
						 : "Content-Type: application/soap+xml;charset=UTF-8";
	char action_hdr[256];

	if (left <= 0)
		return amtprov_error_set(&s->err, AMTPROV_E_TIMEOUT, s->address,
					 "operation %s did not finish within %lld ms",
					 at_op_name(s->op), (long long)s->timeout_ms);
	curl_slist_free_all(s->hdrs);
	s->hdrs = curl_slist_append(NULL, ctype);
	s->hdrs = curl_slist_append(s->hdrs, "Expect:");
	if (s->proto == AT_SOAP) {
		snprintf(action_hdr, sizeof(action_hdr), "SOAPAction: %s", s->soap_action);
		s->hdrs = curl_slist_append(s->hdrs, action_hdr);
	}
	if (!s->hdrs)
		return amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory");
	snprintf(url, sizeof(url), "https://%s:%u%s", s->url_host, (unsigned)s->port, s->path);
	curl_easy_setopt(s->easy, CURLOPT_URL, url);
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->req.p);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)s->req.len);
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)left);
	set_account(s);
	/* The last answer was read (its step built this request): its text and parse tree
	 * would wait with the device for the next answer (issue 13 item 4). */
	if (s->doc)
		xmlFreeDoc(s->doc);
	s->doc = NULL;
	s->body = NULL;
	at_buf_free(&s->resp);
	s->http_code = 0;
	s->tls_why[0] = '\0';
	s->curl_err[0] = '\0';
	if (in->cfg.verbose_wire)
		in->host->log(in->host, AMTPROV_LOG_PRIVATE, "%s -> %s%s: %s", s->address, s->path,
			      s->method[0] ? "" : "", s->req_sensitive ? "(body withheld: secret)"
								   : s->req.p);
	if (curl_multi_add_handle(in->multi, s->easy) != CURLM_OK)
		return amtprov_error_set(&s->err, AMTPROV_E_INTERNAL, s->address,
					 "curl_multi_add_handle failed");
	s->easy_added = 1;
	return AMTPROV_AGAIN;
}

static int start_crl_fetch(struct at_session *s)
{
	struct at_instance *in = s->in;
	int64_t left = s->deadline - now_ms(in);

	s->crl_easy = curl_easy_init();
	if (!s->crl_easy)
		return amtprov_error_set(&s->err, AMTPROV_E_NOMEM, NULL, "out of memory");
	at_buf_reset(&s->crl_buf);
	curl_easy_setopt(s->crl_easy, CURLOPT_URL, s->crl_url);
	curl_easy_setopt(s->crl_easy, CURLOPT_PRIVATE, s);
	curl_easy_setopt(s->crl_easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->crl_easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(s->crl_easy, CURLOPT_WRITEFUNCTION, at_write_cb);
	curl_easy_setopt(s->crl_easy, CURLOPT_WRITEDATA, &s->crl_buf);
	curl_easy_setopt(s->crl_easy, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(s->crl_easy, CURLOPT_TIMEOUT_MS, (long)(left > 0 ? left : 1));
	curl_easy_setopt(s->crl_easy, CURLOPT_CONNECTTIMEOUT_MS, (long)in->cfg.connect_timeout_ms);
	curl_easy_setopt(s->crl_easy, CURLOPT_ERRORBUFFER, s->curl_err);
	s->curl_err[0] = '\0';
	if (curl_multi_add_handle(in->multi, s->crl_easy) != CURLM_OK)
		return amtprov_error_set(&s->err, AMTPROV_E_INTERNAL, NULL,
					 "curl_multi_add_handle failed");
	return AMTPROV_AGAIN;
}

static X509_CRL *crl_cached(struct at_instance *in, const char *url)
{
	int64_t now = in->host->now(in->host);

	for (struct at_crl_entry *e = in->crls; e; e = e->next)
		if (!strcmp(e->url, url) && e->expires > now)
			return e->crl;
	return NULL;
}

static void crl_store(struct at_instance *in, const char *url, X509_CRL *crl)
{
	struct at_crl_entry *e, **pp;
	int64_t now = in->host->now(in->host), exp = now + in->cfg.crl_cache_seconds;
	const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);
	int day = 0, sec = 0;

	if (nu && ASN1_TIME_diff(&day, &sec, NULL, nu)) {
		int64_t until = now + (int64_t)day * 86400 + sec;

		if (until < exp)
			exp = until;
	}
	for (pp = &in->crls; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->url, url)) {
			X509_CRL_free((*pp)->crl);
			(*pp)->crl = crl;
			(*pp)->expires = exp;
			return;
		}
	}
	e = calloc(1, sizeof(*e));
	if (e)
		e->url = strdup(url);
	if (!e || !e->url) {
		free(e);
		X509_CRL_free(crl);
		return;
	}
	e->crl = crl;
	e->expires = exp;
	e->next = in->crls;
	in->crls = e;
}

/* Runs the operation forward: next step, then send or complete. */
static void advance(struct at_session *s)
{
	int rc = at_op_step(s);

	if (rc == AMTPROV_AGAIN)
		rc = send_request(s);
	if (rc != AMTPROV_AGAIN)
		complete(s, rc);
}

static int curl_error(struct at_session *s, CURLcode cc)
{
	struct at_instance *in = s->in;
	const char *what = s->curl_err[0] ? s->curl_err : curl_easy_strerror(cc);

	if (s->tls_why[0])
		return amtprov_error_set(&s->err, AMTPROV_E_VERIFY, s->address, "TLS: %s",
					 s->tls_why);
	if (s->resp.over)
		return amtprov_error_set(&s->err, AMTPROV_E_PROTOCOL, s->address,
					 "the answer to %s (%s) exceeded %u MiB: reading stopped",
					 s->method[0] ? s->method : s->path, at_op_name(s->op),
					 AT_MAX_RESPONSE / (1024 * 1024));
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return amtprov_error_set(&s->err, AMTPROV_E_TIMEOUT, s->address,
					 "%s:%u did not answer %s in time (%s)", s->address,
					 (unsigned)s->port, at_op_name(s->op), what);
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		return amtprov_error_set(&s->err, AMTPROV_E_UNREACHABLE, s->address,
					 "cannot connect to %s:%u: %s", s->address,
					 (unsigned)s->port, what);
	case CURLE_PEER_FAILED_VERIFICATION:
		return amtprov_error_set(&s->err, AMTPROV_E_VERIFY, s->address,
					 "device TLS certificate not trusted: %s", what);
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CRL_BADFILE:
		return amtprov_error_set(&s->err, AMTPROV_E_CRYPTO, s->address,
					 "TLS set-up failed: %s", what);
	default:
		break;
	}
	if (s->mode == AMTPROV_TRANSPORT_PROVISIONING && s->ident &&
	    (cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_RECV_ERROR ||
	     cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING) &&
	    !s->tls_ok)
		return amtprov_error_set(&s->err, AMTPROV_E_DENIED, s->address,
					 "the device refused the provisioning TLS handshake: AMT wants "
					 "serverAuth with EKU 2.16.840.1.113741.1.2.3 or OU \"Intel(R) "
					 "Client Setup Certificate\", a CN in its DNS suffix, a root in "
					 "its hash table (R-PC-01..05) [%s]", what);
	(void)in;
	return amtprov_error_set(&s->err, AMTPROV_E_UNREACHABLE, s->address,
				 "transfer to %s:%u failed: %s", s->address, (unsigned)s->port, what);
}

static void on_crl_done(struct at_session *s, CURLcode cc)
{
	struct at_instance *in = s->in;
	X509_CRL *crl;

	curl_multi_remove_handle(in->multi, s->crl_easy);
	curl_easy_cleanup(s->crl_easy);
	s->crl_easy = NULL;
	if (cc != CURLE_OK) {
		amtprov_error_set(&s->err, AMTPROV_E_VERIFY, s->address,
				  "the CRL %s could not be fetched (%s): refusing to trust the "
				  "device certificate without it (fail closed, R-REV-01)",
				  s->crl_url, s->curl_err[0] ? s->curl_err : curl_easy_strerror(cc));
		complete(s, AMTPROV_E_VERIFY);
		return;
	}
	crl = at_crl_parse(s->crl_buf.p, s->crl_buf.len);
	at_buf_free(&s->crl_buf);
	if (!crl) {
		amtprov_error_set(&s->err, AMTPROV_E_VERIFY, s->address,
				  "the document at %s is not a CRL (DER or PEM): refusing to trust "
				  "the device certificate (fail closed, R-REV-01)", s->crl_url);
		complete(s, AMTPROV_E_VERIFY);
		return;
	}
	X509_CRL_up_ref(crl);
	s->crl = crl;
	crl_store(in, s->crl_url, crl);
	s->crl_wait = 0;
	{
		int rc = send_request(s);

		if (rc != AMTPROV_AGAIN)
			complete(s, rc);
	}
}

static void on_http_done(struct at_session *s, CURLcode cc)
{
	struct at_instance *in = s->in;
	int rc;

	curl_multi_remove_handle(in->multi, s->easy);
	s->easy_added = 0;
	if (cc != CURLE_OK) {
		/* Whatever state the connection is in, the next session starts afresh. */
		s->link->retire = 1;
		complete(s, curl_error(s, cc));
		return;
	}
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->http_code);
	if (in->cfg.verbose_wire) {
		/* Responses carry secrets too (ProvisioningServerOTP): masked, never raw. */
		struct at_buf m = {0};

		at_wire_mask(s->resp.p ? s->resp.p : "", s->resp.len, &m);
		in->host->log(in->host, AMTPROV_LOG_PRIVATE, "%s <- HTTP %ld: %s", s->address,
			      s->http_code, m.p ? m.p : "");
		at_buf_free(&m);
	}
	if (s->http_code == 401) {
		/* R-PROV-09: the same request again with the next account, in order. */
		if (s->account + 1 < s->n_accounts) {
			s->account++;
			in->host->log(in->host, AMTPROV_LOG_INFO,
				      "%s: Digest refused account %zu of %zu, trying the next",
				      s->address, s->account, s->n_accounts);
			rc = send_request(s);
			if (rc != AMTPROV_AGAIN)
				complete(s, rc);
			return;
		}
		s->link->retire = 1;
		complete(s, amtprov_error_set(&s->err, AMTPROV_E_AUTH, s->address,
					      "Digest authentication failed with all %zu configured "
					      "account(s) (R-PROV-09)", s->n_accounts));
		return;
	}
	s->good_account = (int)s->account;
	s->tls_ok = 1;
	rc = at_check_response(s);
	if (rc != AMTPROV_OK) {
		complete(s, rc);
		return;
	}
	advance(s);
}

/* ---- sessions ---- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void at_session_close(void *instance, void *session)
{
	struct at_instance *in = instance;
	struct at_session *s = session;

	if (!s)
		return;
	unqueue(s);
	if (s->link) {
		if (s->easy_added) {
			/* Closed mid-request: the connection is not reusable. */
			curl_multi_remove_handle(in->multi, s->easy);
			s->link->retire = 1;
		}
		at_link_detach(s);
	}
	if (s->crl_easy) {
		curl_multi_remove_handle(in->multi, s->crl_easy);
		curl_easy_cleanup(s->crl_easy);
	}
	if (s->prev)
		s->prev->next = s->next;
	else if (in->sessions == s)
		in->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	in->n_sessions--;
	for (size_t i = 0; i < s->n_accounts; i++) {
		free(s->accounts[i].user);
		in->host->secret_free(in->host, s->accounts[i].password);
	}
	free(s->accounts);
	X509_CRL_free(s->crl);
	OPENSSL_free(s->peer_der);
	json_decref(s->params);
	json_decref(s->result);
	json_decref(s->scratch);
	curl_slist_free_all(s->hdrs);
	if (s->doc)
		xmlFreeDoc(s->doc);
	at_buf_free(&s->req);
	at_buf_free(&s->resp);
	at_buf_free(&s->crl_buf);
	free(s->address);
	free(s->fqdn);
	free(s->url_host);
	free(s->ca_bundle_pem);
	free(s->crl_url);
	free(s);
}

static int at_session_open(void *instance, const struct amtprov_transport_target *t,
			   void **session, struct amtprov_error *err)
{
	struct at_instance *in = instance;
	struct at_session *s;
	int rc;

	if (!t || !t->address || !t->address[0] || !t->accounts || !t->n_accounts)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL,
					 "a session needs an address and at least one account");
	if (t->mode != AMTPROV_TRANSPORT_PROVISIONING && t->mode != AMTPROV_TRANSPORT_MANAGED)
		return amtprov_error_set(err, AMTPROV_E_INVALID, "mode", "unknown mode %u",
					 (unsigned)t->mode);
	if (t->mode == AMTPROV_TRANSPORT_PROVISIONING && (!t->client_chain_pem || !t->client_key_pem))
		return amtprov_error_set(err, AMTPROV_E_INVALID, "client_chain_pem",
					 "PROVISIONING mode needs the provisioning certificate chain "
					 "and its key (R-PROV-07)");
	if (t->mode == AMTPROV_TRANSPORT_MANAGED && (!t->ca_bundle_pem || !t->ca_bundle_pem[0]))
		return amtprov_error_set(err, AMTPROV_E_INVALID, "ca_bundle_pem",
					 "MANAGED mode needs the CA bundle to verify the device");
	if (t->mode == AMTPROV_TRANSPORT_MANAGED && in->cfg.crl_check &&
	    (!t->crl_url || !t->crl_url[0]))
		return amtprov_error_set(err, AMTPROV_E_VERIFY, "crl_url",
					 "MANAGED mode checks the device certificate's CRL and no CRL "
					 "URL was given: refusing (fail closed, R-REV-01)");
	if ((long long)in->n_sessions >= in->cfg.max_sessions)
		return amtprov_error_set(err, AMTPROV_E_BUSY, NULL,
					 "%zu sessions open: max_sessions reached", in->n_sessions);
	s = calloc(1, sizeof(*s));
	if (!s)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	s->in = in;
	s->good_account = -1;
	s->tolerate_rv = -1;
	s->next = in->sessions;
	if (in->sessions)
		in->sessions->prev = s;
	in->sessions = s;
	in->n_sessions++;
	s->mode = t->mode;
	s->port = t->port ? t->port : 16993;
	s->timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : in->cfg.timeout_ms;
	s->address = strdup(t->address);
	if (t->device && t->device->fqdn && t->device->fqdn[0])
		s->fqdn = strdup(t->device->fqdn);
	s->amt_major = t->device ? t->device->amt_major : 0;
	s->ca_bundle_pem = dup_or_null(t->ca_bundle_pem);
	s->crl_url = in->cfg.crl_check ? dup_or_null(t->crl_url) : NULL;
	/* MANAGED: the certificate was issued for the FQDN; PROVISIONING: the address. */
	if (s->mode == AMTPROV_TRANSPORT_MANAGED && s->fqdn)
		s->url_host = strdup(s->fqdn);
	else if (strchr(t->address, ':') && t->address[0] != '[') {
		size_t n = strlen(t->address) + 3;

		s->url_host = malloc(n);
		if (s->url_host)
			snprintf(s->url_host, n, "[%s]", t->address);
	} else {
		s->url_host = strdup(t->address);
	}
	s->accounts = calloc(t->n_accounts, sizeof(*s->accounts));
	if (!s->address || !s->url_host || !s->accounts ||
	    (t->ca_bundle_pem && !s->ca_bundle_pem)) {
		at_session_close(in, s);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	for (size_t i = 0; i < t->n_accounts; i++) {
		const struct amtprov_secret *pw = t->accounts[i].password;

		s->n_accounts++;
		s->accounts[i].user = strdup(t->accounts[i].user ? t->accounts[i].user : "admin");
		s->accounts[i].password = in->host->secret_new(in->host, pw ? pw->len : 0);
		if (!s->accounts[i].user || !s->accounts[i].password) {
			at_session_close(in, s);
			return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		}
		if (pw && pw->len)
			memcpy(s->accounts[i].password->data, pw->data, pw->len);
	}
	if (s->mode == AMTPROV_TRANSPORT_PROVISIONING) {
		rc = at_ident_get(in, t->client_chain_pem, t->client_key_pem, &s->ident, err);
		if (rc != AMTPROV_OK) {
			at_session_close(in, s);
			return rc;
		}
	}
	rc = at_link_attach(s, err);
	if (rc != AMTPROV_OK) {
		at_session_close(in, s);
		return rc;
	}
	*session = s;
	return AMTPROV_OK;
}

static void op_reset(struct at_session *s)
{
	json_decref(s->params);
	json_decref(s->result);
	json_decref(s->scratch);
	s->params = s->result = s->scratch = NULL;
	if (s->doc)
		xmlFreeDoc(s->doc);
	s->doc = NULL;
	s->body = NULL;
	s->busy = s->finished = 0;
	s->step = 0;
	s->rc = AMTPROV_OK;
	s->req_sensitive = 0;
	amtprov_error_clear(&s->err);
}

static int at_begin(void *instance, void *session, uint32_t op, const struct json_t *params,
		    amtprov_transport_done_cb done, void *cb_ctx, struct amtprov_error *err)
{
	struct at_instance *in = instance;
	struct at_session *s = session;
	int rc;

	if (!s)
		return amtprov_error_set(err, AMTPROV_E_INVALID, NULL, "no session");
	if (s->busy)
		return amtprov_error_set(err, AMTPROV_E_STATE, s->address,
					 "session busy with %s", at_op_name(s->op));
	if (!at_op_known(op))
		return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, s->address,
					 "amt-transport: operation %u is not implemented",
					 (unsigned)op);
	op_reset(s);
	at_session_known_begin(s, op);
	s->op = op;
	s->params = params ? json_deep_copy(params) : json_object();
	if (!s->params)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	s->done = done;
	s->cb_ctx = cb_ctx;
	s->deadline = now_ms(in) + s->timeout_ms;
	rc = at_op_step(s);
	if (rc != AMTPROV_AGAIN && rc != AMTPROV_OK) {
		/* Refused before any I/O (bad parameters): no done() follows. */
		if (err && err->code == AMTPROV_OK)
			*err = s->err;
		op_reset(s);
		return rc;
	}
	s->busy = 1;
	if (rc == AMTPROV_OK) {
		complete(s, AMTPROV_OK);
		return AMTPROV_AGAIN;
	}
	if (s->mode == AMTPROV_TRANSPORT_MANAGED && s->crl_url && !s->crl) {
		X509_CRL *c = crl_cached(in, s->crl_url);

		if (c) {
			X509_CRL_up_ref(c);
			s->crl = c;
		}
	}
	if (s->mode == AMTPROV_TRANSPORT_MANAGED && s->crl_url && !s->crl) {
		s->crl_wait = 1;
		rc = start_crl_fetch(s);
	} else {
		rc = send_request(s);
	}
	if (rc != AMTPROV_AGAIN)
		complete(s, rc);
	return AMTPROV_AGAIN;
}

static int at_get_wait(void *instance, struct amtprov_wait *wait, struct amtprov_error *err)
{
	struct at_instance *in = instance;
	int64_t t;

	int64_t now = now_ms(in), at = in->timer_at;

	wait->fd = in->epfd;
	wait->events = AMTPROV_WAIT_READ;
	/* A parked link's keep-alive ending is a deadline too. */
	if (in->idle_head && (at < 0 || in->idle_head->idle_until < at))
		at = in->idle_head->idle_until;
	if (in->pend_head) {
		wait->timeout_ms = 0;
	} else if (at < 0) {
		wait->timeout_ms = -1;
	} else {
		t = at - now;
		wait->timeout_ms = t < 0 ? 0 : t;
	}
	return AMTPROV_OK;
}

static int at_drive(void *instance, struct amtprov_error *err)
{
	struct at_instance *in = instance;
	struct epoll_event evs[256];
	int running = 0, n, left;
	CURLMsg *m;

	n = epoll_wait(in->epfd, evs, 256, 0);
	for (int i = 0; i < n; i++) {
		int mask = 0;

		if (evs[i].events & EPOLLIN)
			mask |= CURL_CSELECT_IN;
		if (evs[i].events & EPOLLOUT)
			mask |= CURL_CSELECT_OUT;
		if (evs[i].events & (EPOLLERR | EPOLLHUP))
			mask |= CURL_CSELECT_ERR;
		curl_multi_socket_action(in->multi, evs[i].data.fd, mask, &running);
	}
	if (in->timer_at >= 0 && now_ms(in) >= in->timer_at) {
		in->timer_at = -1;
		curl_multi_socket_action(in->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	at_links_expire(in, now_ms(in));
	while ((m = curl_multi_info_read(in->multi, &left))) {
		struct at_session *s = NULL;
		CURL *e = m->easy_handle;
		CURLcode cc = m->data.result;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
		if (!s)
			continue;
		if (e == s->crl_easy)
			on_crl_done(s, cc);
		else
			on_http_done(s, cc);
	}
	/* done() may close or restart sessions: pop one at a time. */
	while (in->pend_head) {
		struct at_session *s = in->pend_head;

		in->pend_head = s->pend_next;
		if (!in->pend_head)
			in->pend_tail = NULL;
		s->pending = 0;
		if (s->done)
			s->done(s->cb_ctx);
	}
	return AMTPROV_OK;
}

static int at_finish(void *instance, void *session, struct json_t **result,
		     struct amtprov_error *err)
{
	struct at_session *s = session;
	int rc;

	if (!s || !s->busy || !s->finished)
		return amtprov_error_set(err, AMTPROV_E_STATE, s ? s->address : NULL,
					 "no finished operation to collect");
	rc = s->rc;
	if (rc == AMTPROV_OK) {
		*result = s->result ? s->result : json_object();
		s->result = NULL;
	} else if (err) {
		if (err->code == AMTPROV_OK)
			*err = s->err;
	}
	op_reset(s);
	return rc;
}

static int at_session_account(void *instance, void *session)
{
	struct at_session *s = session;

	return s ? s->good_account : -1;
}

static int at_start(void *instance, struct amtprov_error *err)
{
	return AMTPROV_OK;
}

static void at_stop(void *instance)
{
}

static void at_device_idle(void *instance, const char *address, uint16_t port)
{
	if (instance && address)
		at_links_device_idle(instance, address, port);
}

static const struct amtprov_transport_ops at_ops = {
	.struct_size = sizeof(struct amtprov_transport_ops),
	.start = at_start,
	.stop = at_stop,
	.session_open = at_session_open,
	.session_close = at_session_close,
	.begin = at_begin,
	.get_wait = at_get_wait,
	.drive = at_drive,
	.finish = at_finish,
	.session_account = at_session_account,
	.device_idle = at_device_idle,
};

static const char *const at_caps[] = {
	AMTPROV_CAP_TRANSPORT_SOAP,
	AMTPROV_CAP_TRANSPORT_WSMAN,
	AMTPROV_CAP_TRANSPORT_CRL_CHECK, /* unless "crl_check": false */
	NULL,
};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_TRANSPORT, .name = "amt-transport",
		      .version = "0.1.0",
		      .description = "Intel AMT over HTTPS + Digest (libcurl): legacy SOAP and "
				     "WS-Management",
		      .capabilities = at_caps, .create = at_create, .destroy = at_destroy,
		      .ops = &at_ops, .config_table = at_table);
