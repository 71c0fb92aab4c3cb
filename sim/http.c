/* SPDX-License-Identifier: Apache-2.0 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "hostile.h"
#include "negotiate.h"

/* CONN_DELAYED: a response waits on a timer (modelled firmware latency); CONN_DROP: fault
 * injection closes the connection without an answer; CONN_HANG: fault injection never
 * answers and keeps the connection open (until the client or the idle timeout ends it);
 * CONN_DRIP: fault injection sends the answer one byte per timer tick, then closes. */
enum conn_state {
	CONN_HEADERS, CONN_BODY, CONN_CLOSING, CONN_DELAYED, CONN_DROP, CONN_HANG, CONN_DRIP
};

struct conn {
	struct conn *prev, *next; /* the server's list, so shutdown frees every connection */
	struct sim_server *srv;
	struct device *dev;
	struct bufferevent *bev;
	bool tls;
	bool handshake_done;
	enum conn_state state;
	size_t header_bytes;
	bool have_request_line;
	struct http_request req;
	char peer[64];
	struct event *delay_timer;
	struct http_response pending;
	char pending_auth[384];
	bool pending_has_auth;
	unsigned served;           /* requests read on this connection */
	struct evbuffer *drip;     /* CONN_DRIP: what is still to send */
	struct event *drip_timer;
};

struct listen_arg {
	struct sim_server *srv;
	struct device *dev;
	bool tls;
};

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Request Entity Too Large";
	case 415: return "Unsupported Media Type";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	default: return "Unknown";
	}
}

static void conn_free(struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (c->srv->conns == c)
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->delay_timer)
		event_free(c->delay_timer);
	if (c->drip_timer)
		event_free(c->drip_timer);
	if (c->drip)
		evbuffer_free(c->drip);
	sbuf_free(&c->pending.body);
	free(c->req.body);
	free(c);
}

static void conn_reset(struct conn *c)
{
	free(c->req.body);
	memset(&c->req, 0, sizeof(c->req));
	c->state = CONN_HEADERS;
	c->header_bytes = 0;
	c->have_request_line = false;
}

static void write_response_to(struct conn *c, struct evbuffer *out, struct http_response *r,
			      const char *www_auth)
{
	struct device *d = c->dev;
	bool chunked = c->req.minor >= 1 && r->body.len > 0;

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", r->status, http_reason(r->status));
	if (www_auth)
		evbuffer_add_printf(out, "WWW-Authenticate: %s\r\n", www_auth);
	evbuffer_add_printf(out, "Server: Intel(R) Active Management Technology %s\r\n", d->version);
	if (r->body.len)
		evbuffer_add_printf(out, "Content-Type: %s\r\n",
				    r->content_type ? r->content_type : "text/plain");
	if (!c->req.keep_alive)
		evbuffer_add_printf(out, "Connection: close\r\n");
	if (chunked) {
		evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n\r\n");
		/* Several chunks, like the firmware: clients must reassemble. */
		for (size_t off = 0; off < r->body.len; off += 4096) {
			size_t n = r->body.len - off < 4096 ? r->body.len - off : 4096;

			evbuffer_add_printf(out, "%zx\r\n", n);
			evbuffer_add(out, r->body.data + off, n);
			evbuffer_add(out, "\r\n", 2);
		}
		evbuffer_add(out, "0\r\n\r\n", 5);
	} else {
		evbuffer_add_printf(out, "Content-Length: %zu\r\n\r\n", r->body.len);
		if (r->body.len)
			evbuffer_add(out, r->body.data, r->body.len);
	}
	if (!c->req.keep_alive)
		c->state = CONN_CLOSING;
}

static void write_response(struct conn *c, struct http_response *r, const char *www_auth)
{
	write_response_to(c, bufferevent_get_output(c->bev), r, www_auth);
}

static void drip_arm(struct conn *c)
{
	unsigned ms = c->dev->faults.hostile_drip_ms ? c->dev->faults.hostile_drip_ms : 500;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (long)(ms % 1000) * 1000};

	evtimer_add(c->drip_timer, &tv);
}

static void on_drip(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	evbuffer_remove_buffer(c->drip, bufferevent_get_output(c->bev), 1);
	if (evbuffer_get_length(c->drip) == 0) {
		c->state = CONN_CLOSING; /* conn_write frees it once the last byte is out */
		return;
	}
	drip_arm(c);
}

/* Fault "hostile": "slow_drip": the whole answer, one byte per tick, then the connection
 * closes. The rest of the fleet is served meanwhile. */
static void start_drip(struct conn *c, struct http_response *r)
{
	c->req.keep_alive = false;
	c->drip = evbuffer_new();
	c->drip_timer = evtimer_new(c->srv->base, on_drip, c);
	if (!c->drip || !c->drip_timer) {
		write_response(c, r, NULL);
		return;
	}
	write_response_to(c, c->drip, r, NULL);
	c->state = CONN_DRIP;
	drip_arm(c);
}

static void simple_error(struct conn *c, int status, const char *msg)
{
	struct http_response r = {.status = status, .content_type = "text/plain"};

	c->req.keep_alive = false;
	sbuf_add(&r.body, msg);
	write_response(c, &r, NULL);
	sbuf_free(&r.body);
}

static bool ha1_lookup(void *arg, const char *user, char ha1[33])
{
	struct device *d = arg;

	if (!strcmp(user, d->admin_user)) {
		sim_strlcpy(ha1, d->admin_ha1, 33);
		return true;
	}
	for (int i = 0; i < d->n_users; i++) {
		if (d->users[i].enabled && !strcmp(d->users[i].username, user) && d->users[i].ha1[0]) {
			sim_strlcpy(ha1, d->users[i].ha1, 33);
			return true;
		}
	}
	return false;
}

/* While remote configuration is in progress (state in) the setup session's credentials,
 * admin with the empty password, stay valid until CommitChanges even after the admin
 * password was set: MeshCentral's provisioning server (MC-PROV) sets the admin password and
 * then enumerates and commits with admin/"" over the same session. */
static bool setup_ha1_lookup(void *arg, const char *user, char ha1[33])
{
	struct device *d = arg;

	if (d->prov_state != DEV_IN || strcmp(user, "admin") != 0)
		return false;
	device_ha1("admin", d->realm, "", ha1);
	return true;
}

static void conn_read(struct bufferevent *bev, void *arg);

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	write_response(c, &c->pending, c->pending_has_auth ? c->pending_auth : NULL);
	sbuf_free(&c->pending.body);
	memset(&c->pending, 0, sizeof(c->pending));
	if (c->state == CONN_CLOSING)
		return;
	conn_reset(c);
	/* A client may have sent its next request already. */
	conn_read(c->bev, c);
}

/* Sends @p r now, or after the device's modelled latency (the event loop keeps serving
 * every other device meanwhile). Takes the body. */
static void respond(struct conn *c, struct http_response *r, const char *www_auth)
{
	unsigned ms = r->delay_ms + device_fault_latency(c->dev);
	struct timeval tv;

	if (!ms) {
		write_response(c, r, www_auth);
		sbuf_free(&r->body);
		return;
	}
	if (!c->delay_timer)
		c->delay_timer = evtimer_new(c->srv->base, on_delay, c);
	if (!c->delay_timer) {
		write_response(c, r, www_auth);
		sbuf_free(&r->body);
		return;
	}
	c->pending = *r;
	memset(&r->body, 0, sizeof(r->body));
	c->pending_has_auth = www_auth != NULL;
	if (www_auth)
		sim_strlcpy(c->pending_auth, www_auth, sizeof(c->pending_auth));
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (long)(ms % 1000) * 1000;
	evtimer_add(c->delay_timer, &tv);
	c->state = CONN_DELAYED;
}

static void handle_request(struct conn *c)
{
	struct device *d = c->dev;
	struct sim_dev_rt *rt = d->runtime;
	struct http_response r = {.status = 500};
	char user[256] = "", chal[384], why[256];
	time_t now = time(NULL);
	enum digest_result dr;
	int hostile;

	rt->requests++;
	c->req.tls = c->tls;
	/* The modelled per-connection request limit: the answer that reaches it says
	 * "Connection: close" and the connection ends after it; the client reconnects. */
	if (d->max_requests_per_conn && ++c->served >= d->max_requests_per_conn &&
	    c->req.keep_alive) {
		c->req.keep_alive = false;
		rt->limit_closes++;
	}
	if (device_fault_drop(d)) {
		device_audit(d, "fault injection: connection from %s dropped on request %lu", c->peer,
			     d->faults.requests);
		c->state = CONN_DROP;
		return;
	}
	if (device_fault_hang(d)) {
		device_audit(d, "fault injection: request %lu from %s left unanswered (hang)",
			     d->faults.requests, c->peer);
		c->state = CONN_HANG;
		return;
	}
	/* Kerberos, when configured, next to Digest (AMT offers both) */
	if (negotiate_applies(d, c->req.authorization)) {
		if (negotiate_check(d, c->req.authorization, user, sizeof(user), why,
				    sizeof(why)) == 0) {
			dr = DIGEST_OK;
			goto authenticated;
		}
		rt->auth_failures++;
		device_audit(d, "http negotiate refused from %s: %s", c->peer, why);
		c->req.authorization[0] = '\0';
	}
	dr = digest_check(&rt->digest, d->realm, c->req.method,
			  c->req.authorization[0] ? c->req.authorization : NULL, ha1_lookup, d, user,
			  sizeof(user), now);
	if ((dr == DIGEST_BAD_RESPONSE || dr == DIGEST_BAD_USER) && d->prov_state == DEV_IN) {
		enum digest_result setup = digest_check(&rt->digest, d->realm, c->req.method,
							c->req.authorization, setup_ha1_lookup, d,
							user, sizeof(user), now);

		if (setup != DIGEST_BAD_RESPONSE && setup != DIGEST_BAD_USER)
			dr = setup;
	}
	if (dr == DIGEST_OK && device_fault_digest(d)) {
		device_audit(d, "fault injection: correct Digest credentials refused");
		dr = DIGEST_BAD_RESPONSE;
	}
	if (dr != DIGEST_OK) {
		if (dr != DIGEST_MISSING) {
			rt->auth_failures++;
			device_audit(d, "http digest refused from %s: %s", c->peer, digest_result_name(dr));
		}
		/* Every 401 carries a new nonce; stale=true tells the client to retry silently. */
		rt->challenges++;
		if (d->kerberos.enabled) {
			/* both schemes, as two WWW-Authenticate headers */
			size_t k = (size_t)snprintf(chal, sizeof(chal),
						    "Negotiate\r\nWWW-Authenticate: ");

			digest_challenge(&rt->digest, d->realm, dr == DIGEST_STALE, chal + k,
					 sizeof(chal) - k, now);
		} else {
			digest_challenge(&rt->digest, d->realm, dr == DIGEST_STALE, chal,
					 sizeof(chal), now);
		}
		r.status = 401;
		respond(c, &r, chal);
		return;
	}
authenticated:
	c->req.user = user;
	hostile = device_fault_hostile(d, c->req.body);
	c->srv->handler(c->srv, d, &c->req, &r);
	if (hostile) {
		hostile_rewrite(d, &c->req, &r, hostile);
		if (hostile == HOSTILE_SLOW_DRIP) {
			start_drip(c, &r);
			sbuf_free(&r.body);
			return;
		}
	}
	respond(c, &r, NULL);
}

static int parse_request_line(struct conn *c, const char *line)
{
	char ver[16];
	const char *sp1 = strchr(line, ' '), *sp2;

	if (!sp1 || (size_t)(sp1 - line) >= sizeof(c->req.method))
		return -1;
	sp2 = strchr(sp1 + 1, ' ');
	if (!sp2 || (size_t)(sp2 - sp1 - 1) >= sizeof(c->req.path))
		return -1;
	memcpy(c->req.method, line, (size_t)(sp1 - line));
	memcpy(c->req.path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	if (sim_strlcpy(ver, sp2 + 1, sizeof(ver)) != 0)
		return -1;
	if (!strcmp(ver, "HTTP/1.1"))
		c->req.minor = 1;
	else if (!strcmp(ver, "HTTP/1.0"))
		c->req.minor = 0;
	else
		return -1;
	c->req.keep_alive = c->req.minor == 1;
	return 0;
}

static int parse_header(struct conn *c, char *line)
{
	char *colon = strchr(line, ':'), *v;

	if (!colon)
		return -1;
	*colon = '\0';
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (!strcasecmp(line, "Authorization")) {
		sim_strlcpy(c->req.authorization, v, sizeof(c->req.authorization));
	} else if (!strcasecmp(line, "Content-Type")) {
		sim_strlcpy(c->req.content_type, v, sizeof(c->req.content_type));
	} else if (!strcasecmp(line, "SOAPAction")) {
		sim_strlcpy(c->req.soap_action, v, sizeof(c->req.soap_action));
	} else if (!strcasecmp(line, "Content-Length")) {
		long long n;

		if (sim_parse_ll(v, 0, HTTP_MAX_BODY, &n) != 0)
			return -2;
		c->req.content_length = (size_t)n;
	} else if (!strcasecmp(line, "Transfer-Encoding")) {
		return -3; /* chunked request bodies: not supported yet */
	} else if (!strcasecmp(line, "Connection")) {
		if (strcasestr(v, "close"))
			c->req.keep_alive = false;
		else if (strcasestr(v, "keep-alive"))
			c->req.keep_alive = true;
	}
	return 0;
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (c->state != CONN_CLOSING && c->state != CONN_DELAYED && c->state != CONN_DROP &&
	       c->state != CONN_HANG && c->state != CONN_DRIP) {
		if (c->state == CONN_HEADERS) {
			size_t len;
			char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
			int rc;

			if (!line) {
				if (evbuffer_get_length(in) > HTTP_MAX_HEADER)
					simple_error(c, 413, "header too large\n");
				return;
			}
			c->header_bytes += len + 2;
			if (c->header_bytes > HTTP_MAX_HEADER) {
				free(line);
				simple_error(c, 413, "header too large\n");
				return;
			}
			if (!c->have_request_line) {
				if (len == 0) { /* tolerate stray CRLF between requests */
					free(line);
					continue;
				}
				rc = parse_request_line(c, line);
				free(line);
				if (rc) {
					simple_error(c, 400, "bad request line\n");
					return;
				}
				c->have_request_line = true;
				continue;
			}
			if (len > 0) {
				rc = parse_header(c, line);
				free(line);
				if (rc == -2) {
					simple_error(c, 413, "body too large\n");
					return;
				}
				if (rc == -3) {
					simple_error(c, 501, "chunked request bodies are not supported\n");
					return;
				}
				if (rc) {
					simple_error(c, 400, "bad header\n");
					return;
				}
				continue;
			}
			free(line);
			c->state = CONN_BODY;
		}
		if (c->state == CONN_BODY) {
			if (evbuffer_get_length(in) < c->req.content_length)
				return;
			c->req.body = malloc(c->req.content_length + 1);
			if (!c->req.body) {
				simple_error(c, 500, "out of memory\n");
				return;
			}
			evbuffer_remove(in, c->req.body, c->req.content_length);
			c->req.body[c->req.content_length] = '\0';
			c->req.body_len = c->req.content_length;
			handle_request(c);
			if (c->state == CONN_DROP) {
				conn_free(c);
				return;
			}
			if (c->state == CONN_CLOSING || c->state == CONN_DELAYED ||
			    c->state == CONN_HANG || c->state == CONN_DRIP)
				return;
			conn_reset(c);
		}
	}
}

static void conn_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state == CONN_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(c);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		struct sim_dev_rt *rt = c->dev->runtime;
		SSL *ssl = bufferevent_openssl_get_ssl(bev);

		c->handshake_done = true;
		if (ssl && SSL_session_reused(ssl))
			rt->resumed++;
		else
			rt->handshakes++;
		return;
	}
	if ((what & BEV_EVENT_ERROR) && c->tls && !c->handshake_done) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		char buf[256] = "connection closed during handshake";
		struct sim_dev_rt *rt = c->dev->runtime;

		if (e)
			ERR_error_string_n(e, buf, sizeof(buf));
		rt->handshake_failures++;
		device_audit(c->dev, "TLS handshake with %s failed: %s", c->peer, buf);
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_free(c);
}

/* The certificate to serve changed (CommitChanges): load it for new connections. */
static void reload_identity(struct device *d)
{
	struct sim_dev_rt *rt = d->runtime;
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) *chain;

	if (tls_load_active_identity(d, &cert, &key, &chain) != 0)
		return;
	X509_free(rt->cert);
	EVP_PKEY_free(rt->key);
	sk_X509_pop_free(rt->chain, X509_free);
	rt->cert = cert;
	rt->key = key;
	rt->chain = chain;
	rt->tls_generation = d->tls_generation;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct listen_arg *la = arg;
	struct sim_server *srv = la->srv;
	struct device *d = la->dev;
	struct sim_dev_rt *rt = d->runtime;
	struct conn *c = calloc(1, sizeof(*c));
	struct timeval idle = {d->keepalive_s ? (time_t)d->keepalive_s : 120, 0};
	int one = 1;

	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->srv = srv;
	c->dev = d;
	c->tls = la->tls;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, c->peer,
			  sizeof(c->peer));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	srv->connections++;
	/* After CommitChanges enabled TLS with AcceptNonSecureConnections=false, the non-TLS
	 * port no longer answers. */
	if (!la->tls && d->prov_state == DEV_POST && d->tls_remote.enabled &&
	    !d->tls_remote.accept_non_secure) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	if (la->tls && rt->tls_generation != d->tls_generation)
		reload_identity(d);
	if (la->tls) {
		SSL *ssl = SSL_new(srv->ssl_ctx);

		if (!ssl || tls_setup_ssl(ssl, d, rt->cert, rt->key, rt->chain) != 0) {
			SSL_free(ssl);
			evutil_closesocket(fd);
			free(c);
			return;
		}
		c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
							BEV_OPT_CLOSE_ON_FREE);
	} else {
		c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
		c->handshake_done = true;
	}
	if (!c->bev) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next = srv->conns;
	if (c->next)
		c->next->prev = c;
	srv->conns = c;
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	(void)l;
	(void)salen;
}

static struct evconnlistener *listen_on(struct sim_server *srv, struct device *d, int port,
					bool tls, void **arg_out, char *err, size_t errlen)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct listen_arg *la;
	struct evconnlistener *l;

	if (inet_pton(AF_INET, d->address, &sin.sin_addr) != 1 ||
	    (ntohl(sin.sin_addr.s_addr) >> 24) != 127) {
		snprintf(err, errlen, "%s: address %s is not in 127.0.0.0/8", d->id, d->address);
		return NULL;
	}
	la = calloc(1, sizeof(*la));
	if (!la)
		return NULL;
	la->srv = srv;
	la->dev = d;
	la->tls = tls;
	l = evconnlistener_new_bind(srv->base, on_accept, la,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
				    (struct sockaddr *)&sin, sizeof(sin));
	if (!l) {
		snprintf(err, errlen, "%s: cannot listen on %s:%d: %s", d->id, d->address, port,
			 strerror(errno));
		free(la);
		return NULL;
	}
	*arg_out = la;
	return l;
}

static void free_listener(struct evconnlistener *l, void *arg)
{
	if (l)
		evconnlistener_free(l);
	free(arg);
}

int http_device_listen(struct sim_server *srv, struct device *d, int tls_port, int plain_port,
		       char *err, size_t errlen)
{
	struct sim_dev_rt *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return -1;
	d->runtime = rt;
	rt->digest.lifetime = d->nonce_lifetime ? (int)d->nonce_lifetime : srv->nonce_lifetime;
	rt->tls_generation = d->tls_generation;
	if (tls_load_active_identity(d, &rt->cert, &rt->key, &rt->chain) != 0) {
		snprintf(err, errlen, "%s: no TLS identity", d->id);
		goto fail;
	}
	if (tls_port > 0) {
		rt->tls_listener = listen_on(srv, d, tls_port, true, &rt->tls_arg, err, errlen);
		if (!rt->tls_listener)
			goto fail;
	}
	if (plain_port > 0) {
		rt->plain_listener = listen_on(srv, d, plain_port, false, &rt->plain_arg, err, errlen);
		if (!rt->plain_listener)
			goto fail;
	}
	return 0;
fail:
	http_device_stop(d);
	return -1;
}

void http_device_stop(struct device *d)
{
	struct sim_dev_rt *rt = d->runtime;

	if (!rt)
		return;
	free_listener(rt->tls_listener, rt->tls_arg);
	free_listener(rt->plain_listener, rt->plain_arg);
	X509_free(rt->cert);
	EVP_PKEY_free(rt->key);
	sk_X509_pop_free(rt->chain, X509_free);
	free(rt);
	d->runtime = NULL;
}

void http_server_close_all(struct sim_server *srv)
{
	while (srv->conns)
		conn_free(srv->conns);
}
