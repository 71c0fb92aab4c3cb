/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registration API's connections (api_conn.h). evhttp creates and frees its connections
 * itself; what it offers to hook is the bufferevent callback (every accepted connection)
 * and the listener. A connection's record hangs off its SSL object (ex data) and goes with
 * it, which is the one free evhttp cannot skip.
 *
 * Per client address (api_addr.h): evhttp's bufferevent callback comes before evhttp gives
 * the connection its socket, so a connection is "placed" (its peer read, counted against its
 * address) right after: at the next accept, or from an event made active at once for the
 * last of a burst. Placing happens before the next connection takes room under the global
 * cap, so a flooding address is held to its own limit before it can crowd out the others.
 */
#include "api_conn.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/crypto.h>

#include "api_addr.h"
#include "metrics.h"

#define API_ACCEPT_PAUSE_MS 250    /* no accepting for this long after accept() failed */
#define API_AUTO_MAX_CONNECTIONS 1024
#define API_BACKLOG 1024           /* pending connections the kernel queues for accept */
#define API_AUTO_PER_ADDRESS 32    /* at most, by default; see connection_cap_per_address */

/* One accepted connection, from its accept to the free of its TLS object. */
struct api_conn {
	struct api_conns *a;          /* NULL once closing or the server is freed */
	struct bufferevent *bev;
	struct event *deadline;       /* the whole request must be in and answered by then */
	struct api_addr *addr;        /* its client, once placed; NULL when not counted */
	/* Its places in a->all and in addr->conns, least recently active first. */
	struct {
		struct api_conn *prev, *next;
	} link[2];
};

enum { ALL, BY_ADDR }; /* api_conn.link[] */

struct api_conns {
	SSL_CTX *tls;
	struct alog *log;
	struct api_conn_list all;     /* every connection counted, least recently active first */
	int n_conns, max_conns;
	struct api_addrs *addrs;      /* clients with connections open; NULL: no such limit */
	int max_per_addr;
	struct api_conn *unplaced;    /* the newest connection, not yet counted to its client */
	struct event *place;          /* places it once evhttp gave it its socket */
	struct timeval deadline;
	struct evconnlistener *listener;
	struct event *resume;         /* accepting again after a pause */
	/* Lines an abuser could otherwise repeat at will, each kind limited on its own. */
	struct alog_limit log_full, log_deadline, log_accept, log_addr;
	unsigned long evicted, expired, pauses, addr_evicted;
	struct api_conns *next_server; /* running */
};

/* The listener's error callback gets evhttp's argument, not ours: the servers of the
 * process (one, or two across a reload), found by their listener. */
static struct api_conns *running;

static int conn_slot = -1; /* SSL ex data index of the struct api_conn */
static pthread_once_t conn_slot_once = PTHREAD_ONCE_INIT;

static void list_unlink(struct api_conn_list *l, struct api_conn *c, int k)
{
	struct api_conn *prev = c->link[k].prev, *next = c->link[k].next;

	if (prev)
		prev->link[k].next = next;
	else
		l->oldest = next;
	if (next)
		next->link[k].prev = prev;
	else
		l->newest = prev;
	c->link[k].prev = c->link[k].next = NULL;
}

static void list_append(struct api_conn_list *l, struct api_conn *c, int k)
{
	c->link[k].prev = l->newest;
	c->link[k].next = NULL;
	if (l->newest)
		l->newest->link[k].next = c;
	else
		l->oldest = c;
	l->newest = c;
}

static struct api_conn *conn_of(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;

	return ssl ? SSL_get_ex_data(ssl, conn_slot) : NULL;
}

/* Stops counting a connection: it is closing (its free, and conn_ex_free, come later:
 * libevent finalizes bufferevents from its loop). */
static void conn_detach(struct api_conn *c)
{
	struct api_conns *a = c->a;

	if (!a)
		return;
	list_unlink(&a->all, c, ALL);
	a->n_conns--;
	if (a->unplaced == c)
		a->unplaced = NULL;
	if (c->addr) {
		list_unlink(&c->addr->conns, c, BY_ADDR);
		if (--c->addr->n == 0)
			api_addrs_drop(a->addrs, c->addr);
		c->addr = NULL;
	}
	c->a = NULL;
	if (c->deadline)
		event_free(c->deadline);
	c->deadline = NULL;
}

/* Called by SSL_free for every SSL of the process; only the API's carry a connection. */
static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			 void *argp)
{
	struct api_conn *c = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (!c)
		return;
	conn_detach(c);
	free(c);
}

static void conn_slot_init(void)
{
	conn_slot = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
}

/* Closes a connection whatever it is doing. evhttp's callbacks on the bufferevent carry
 * its connection; evhttp_free() closes its connections the same way. */
static void conn_close(struct api_conn *c)
{
	void *evcon = NULL;

	conn_detach(c);
	bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
	if (evcon)
		evhttp_connection_free(evcon);
	/* else not attached to evhttp (only while evhttp itself tears it down): its free
	 * follows. */
}

static void conn_peer(struct api_conn *c, char *buf, size_t size)
{
	void *evcon = NULL;
	char *addr = NULL;
	ev_uint16_t port = 0;

	bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
	if (evcon)
		evhttp_connection_get_peer(evcon, &addr, &port);
	snprintf(buf, size, "%s", addr ? addr : "?");
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct api_conn *c = arg;
	struct api_conns *a = c->a;
	unsigned long held = 0;
	char peer[64];

	(void)fd, (void)what;
	a->expired++;
	if (alog_limit_allow(&a->log_deadline, &held)) {
		conn_peer(c, peer, sizeof(peer));
		alog(a->log, AMTPROV_LOG_INFO,
		     "api: closed the connection from %s: no whole request within %ld s "
		     "(%lu closed so far; %lu such lines suppressed)",
		     peer, (long)a->deadline.tv_sec, a->expired, held);
	}
	metrics_api_closed("request_deadline");
	conn_close(c);
}

/* When full, the connection that has been quiet longest makes room: an attacker holding
 * many slow connections loses them one by one to clients that finish their requests. */
static void conn_make_room(struct api_conns *a)
{
	unsigned long held = 0;

	while (a->n_conns >= a->max_conns && a->all.oldest) {
		a->evicted++;
		if (alog_limit_allow(&a->log_full, &held))
			alog(a->log, AMTPROV_LOG_NOTICE,
			     "api: %d connections open (api.max_connections): closing the least "
			     "recently active (%lu closed so far; %lu such lines suppressed)",
			     a->n_conns, a->evicted, held);
		metrics_api_closed("max_connections");
		conn_close(a->all.oldest);
	}
}

/* Counts @p c, whose socket evhttp has set by now, against its client, and holds the client
 * to its limit: over it, the client's own least recently active connection is closed, never
 * another client's. (Refusing the new one instead would let a flooder holding its limit in
 * slow connections lock out everyone behind the same address, a NAT's honest hosts
 * included, until its deadlines ran out; closing the oldest lets those hosts' new requests
 * through, as the global cap does.) */
static void conn_place(struct api_conns *a, struct api_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	struct api_addr_key k;
	struct api_addr *e;
	unsigned long held = 0;
	char who[API_ADDR_STRLEN];

	/* Gone already, not IP, or no memory: the global cap still counts it. */
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    api_addr_key_of((struct sockaddr *)&ss, len, &k) < 0)
		return;
	e = api_addrs_get(a->addrs, &k);
	if (!e)
		return;
	c->addr = e;
	list_append(&e->conns, c, BY_ADDR);
	if (++e->n <= a->max_per_addr)
		return;
	a->addr_evicted++;
	if (alog_limit_allow(&a->log_addr, &held))
		alog(a->log, AMTPROV_LOG_NOTICE,
		     "api: %s has %d connections open (api.max_connections_per_address): closing "
		     "its least recently active (%lu closed so far; %lu such lines suppressed)",
		     api_addr_key_str(&k, who, sizeof(who)), e->n - 1, a->addr_evicted, held);
	/* c is the newest and the limit at least 1: never c itself, and e stays. */
	while (e->n > a->max_per_addr) {
		metrics_api_closed("max_connections_per_address");
		conn_close(e->conns.oldest);
	}
}

static void conn_place_pending(struct api_conns *a)
{
	struct api_conn *c = a->unplaced;

	if (!c)
		return;
	a->unplaced = NULL;
	conn_place(a, c);
}

static void on_place(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	conn_place_pending(arg);
}

/* evhttp's bufferevent callback: runs for every accepted connection, before its first
 * byte is read. On NULL (out of memory) evhttp falls back to plain HTTP:
 * api_conns_request() refuses requests on such a connection. */
static struct bufferevent *new_tls_bev(struct event_base *base, void *arg)
{
	struct api_conns *a = arg;
	struct api_conn *c;
	struct bufferevent *bev;
	SSL *ssl;

	/* The previous connection of a burst first: its client may be the one at its limit. */
	conn_place_pending(a);
	conn_make_room(a);
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->deadline = evtimer_new(base, on_deadline, c);
	ssl = c->deadline ? SSL_new(a->tls) : NULL;
	if (!ssl || !SSL_set_ex_data(ssl, conn_slot, c)) {
		SSL_free(ssl);
		if (c->deadline)
			event_free(c->deadline);
		free(c);
		return NULL;
	}
	/* From here the SSL owns the record (conn_ex_free). */
	c->a = a;
	list_append(&a->all, c, ALL);
	a->n_conns++;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	c->bev = bev;
	if (a->addrs) {
		a->unplaced = c;
		event_active(a->place, EV_TIMEOUT, 1);
	}
	/* Many clients close without close_notify; that is not an attack on a request that
	 * already got its full answer. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	/* The TLS handshake counts against the deadline too. */
	evtimer_add(c->deadline, &a->deadline);
	return bev;
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct api_conns *a = arg;

	(void)fd, (void)what;
	evconnlistener_enable(a->listener);
}

/* accept() failed for a reason other than a client gone away: most often EMFILE/ENFILE.
 * The listening socket stays readable, so accepting again at once would spin (and make
 * libevent log each failure); pause, and free a descriptor of our own meanwhile. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct api_conns *a = running;
	int e = EVUTIL_SOCKET_ERROR();
	struct timeval pause = {0, API_ACCEPT_PAUSE_MS * 1000};
	unsigned long held = 0;

	(void)arg;
	while (a && a->listener != lev)
		a = a->next_server;
	evconnlistener_disable(lev);
	if (!a)
		return;
	evtimer_add(a->resume, &pause);
	a->pauses++;
	if (alog_limit_allow(&a->log_accept, &held))
		alog(a->log, AMTPROV_LOG_WARNING,
		     "api: cannot accept connections: %s (%d open): pausing %d ms (%lu pauses so "
		     "far; %lu such lines suppressed)",
		     evutil_socket_error_to_string(e), a->n_conns, API_ACCEPT_PAUSE_MS, a->pauses,
		     held);
	if (a->all.oldest) {
		metrics_api_closed("descriptors");
		conn_close(a->all.oldest);
	}
}

/* api.max_connections, or a quarter of the open-files limit: the engine's device, CA and
 * database connections need descriptors too. */
static int connection_cap(const struct manifest_api *m, struct alog *log)
{
	struct rlimit rl;
	long files = 4096, cap;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		files = (long)rl.rlim_cur;
	if (m->max_connections) {
		if (m->max_connections > files - 64)
			alog(log, AMTPROV_LOG_WARNING,
			     "api: max_connections %d is close to the open-files limit %ld: the "
			     "process may run out of descriptors (accepting then pauses)",
			     m->max_connections, files);
		return m->max_connections;
	}
	cap = files / 4;
	if (cap > API_AUTO_MAX_CONNECTIONS)
		cap = API_AUTO_MAX_CONNECTIONS;
	return cap < 8 ? 8 : (int)cap;
}

/* api.max_connections_per_address, or a quarter of the cap, at most 32: host agents
 * register once each and need one connection at a time, but a NAT or proxy may put many
 * hosts behind one address (all of them registering after a mass rollout), and going over
 * costs an honest client little (its own idlest connection). A quarter still keeps one
 * address from taking most of the cap. */
static int connection_cap_per_address(const struct manifest_api *m, int cap, struct alog *log)
{
	int n = m->max_connections_per_address;

	if (n < 0) {
		n = cap / 4;
		if (n > API_AUTO_PER_ADDRESS)
			n = API_AUTO_PER_ADDRESS;
		return n < 1 ? 1 : n;
	}
	if (n >= cap)
		alog(log, AMTPROV_LOG_WARNING,
		     "api: max_connections_per_address %d is not below the connection cap %d: one "
		     "address can fill it", n, cap);
	return n;
}

struct api_conns *api_conns_new(struct evhttp *http, struct event_base *base, SSL_CTX *tls,
				const struct manifest_api *m, struct alog *log)
{
	struct api_conns *a;

	pthread_once(&conn_slot_once, conn_slot_init);
	if (conn_slot < 0)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->resume = evtimer_new(base, on_resume, a);
	if (!a->resume) {
		free(a);
		return NULL;
	}
	a->tls = tls;
	a->log = log;
	a->log_full = a->log_deadline = a->log_accept = a->log_addr =
		(struct alog_limit){.burst = 2, .period = 10};
	a->max_conns = connection_cap(m, log);
	a->max_per_addr = connection_cap_per_address(m, a->max_conns, log);
	if (a->max_per_addr) {
		a->addrs = api_addrs_new((size_t)a->max_conns);
		a->place = a->addrs ? event_new(base, -1, 0, on_place, a) : NULL;
		if (!a->place) {
			api_addrs_free(a->addrs);
			event_free(a->resume);
			free(a);
			return NULL;
		}
	}
	a->deadline.tv_sec = m->request_deadline_seconds;
	evhttp_set_bevcb(http, new_tls_bev, a);
	return a;
}

void api_conns_listen(struct api_conns *a, struct evhttp_bound_socket *sock)
{
	a->listener = evhttp_bound_socket_get_listener(sock);
	a->next_server = running;
	running = a;
	evconnlistener_set_error_cb(a->listener, on_accept_error);
	/* evhttp listens with a backlog of 128: a burst of clients would overflow it and
	 * wait for SYN retries (a second or more), well-behaved ones included. */
	listen(evhttp_bound_socket_get_fd(sock), API_BACKLOG);
}

int api_conns_request(struct api_conns *a, struct evhttp_request *req)
{
	struct api_conn *c = conn_of(evhttp_request_get_connection(req));

	if (!c)
		return -1;
	if (c->a == a) {
		if (a->unplaced == c)
			conn_place_pending(a);
		list_unlink(&a->all, c, ALL);
		list_append(&a->all, c, ALL);
		if (c->addr) {
			list_unlink(&c->addr->conns, c, BY_ADDR);
			list_append(&c->addr->conns, c, BY_ADDR);
		}
		evtimer_add(c->deadline, &a->deadline);
	}
	return 0;
}

int api_conns_max(const struct api_conns *a)
{
	return a->max_conns;
}

int api_conns_max_per_address(const struct api_conns *a)
{
	return a->max_per_addr;
}

void api_conns_free(struct api_conns *a)
{
	if (!a)
		return;
	for (struct api_conns **p = &running; *p; p = &(*p)->next_server)
		if (*p == a) {
			*p = a->next_server;
			break;
		}
	/* Connections whose bufferevents libevent has yet to finalize: their records must not
	 * point here, nor their timers outlive the event base. */
	while (a->all.oldest)
		conn_detach(a->all.oldest);
	if (a->place)
		event_free(a->place);
	api_addrs_free(a->addrs);
	event_free(a->resume);
	free(a);
}
