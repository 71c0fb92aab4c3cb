/* SPDX-License-Identifier: Apache-2.0 */
/*
 * at_link.c - the device connections of the amt-transport plugin. The core opens several
 * sessions per device and phase (device check, certificate step, first stage; then the
 * managed second stage), each for a few operations. A link carries what is worth keeping
 * from one session to the next of the same device and phase: the libcurl easy handle with
 * its kept-alive TLS connection, its TLS session (resumed if the connection has to be made
 * again and the firmware offers resumption) and its Digest state (the nonce, with nc counted
 * up, so only the first request of the phase meets a 401).
 *
 * A session attaches to a parked link with the same address, port, mode and trust (the same
 * provisioning identity, or the same CA bundle and CRL URL), else to a new one. When the
 * session closes its link is parked for keep_alive_ms, then closed. A link is retired -
 * closed as soon as its session closes - after COMMIT or UNPROVISION (the phase ended and AMT
 * changes its TLS set-up), after a transport failure, and when a session of the other mode
 * opens for the same address.
 *
 * Closing a link closes its connection: libcurl keeps finished connections in the multi
 * handle's cache and offers no call to close one, so the link knows its socket (libcurl's
 * open/close socket callbacks) and shuts it down; libcurl then finds the connection dead
 * and closes it on its next cache sweep, and the device sees the connection end at once.
 * The socket stays open (and owned by libcurl) until then, so its number cannot be reused
 * under the link's feet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "at_internal.h"

static int64_t now_ms(struct at_instance *in)
{
	return in->host->monotonic_ms(in->host);
}

static unsigned bucket_of(const char *address)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *address; address++)
		h = (h ^ (unsigned char)*address) * 16777619u;
	return h % AT_LINK_BUCKETS;
}

int at_links_init(struct at_instance *in)
{
	in->link_hash = calloc(AT_LINK_BUCKETS, sizeof(*in->link_hash));
	return in->link_hash ? 0 : -1;
}

/* ---- sockets: which link owns which connection ---- */

static void fd_set_owner(struct at_instance *in, int fd, struct at_link *l)
{
	if (fd < 0)
		return;
	if (fd >= in->fd_cap) {
		int cap = in->fd_cap ? in->fd_cap : 1024;
		struct at_link **p;

		while (cap <= fd)
			cap *= 2;
		p = realloc(in->fd_owner, (size_t)cap * sizeof(*p));
		if (!p)
			return; /* the link just cannot close its socket early */
		memset(p + in->fd_cap, 0, (size_t)(cap - in->fd_cap) * sizeof(*p));
		in->fd_owner = p;
		in->fd_cap = cap;
	}
	in->fd_owner[fd] = l;
}

static curl_socket_t open_sock(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct at_link *l = clientp;
	int fd;

	(void)purpose;
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd < 0)
		return CURL_SOCKET_BAD;
	if (l->fd >= 0 && l->fd < l->in->fd_cap && l->in->fd_owner[l->fd] == l)
		l->in->fd_owner[l->fd] = NULL; /* a reconnect: the old one is libcurl's to close */
	l->fd = fd;
	fd_set_owner(l->in, fd, l);
	return fd;
}

static int close_sock(void *clientp, curl_socket_t fd)
{
	struct at_instance *in = clientp;

	if (fd >= 0 && fd < in->fd_cap && in->fd_owner[fd]) {
		if (in->fd_owner[fd]->fd == fd)
			in->fd_owner[fd]->fd = -1;
		in->fd_owner[fd] = NULL;
	}
	return close(fd);
}

/* ---- the link table ---- */

static void idle_unlink(struct at_link *l)
{
	struct at_instance *in = l->in;

	if (!l->parked)
		return;
	if (l->idle_prev)
		l->idle_prev->idle_next = l->idle_next;
	else
		in->idle_head = l->idle_next;
	if (l->idle_next)
		l->idle_next->idle_prev = l->idle_prev;
	else
		in->idle_tail = l->idle_prev;
	l->idle_prev = l->idle_next = NULL;
	l->parked = 0;
	in->n_idle--;
}

static void link_free(struct at_link *l)
{
	struct at_instance *in = l->in;
	struct at_link **pp;

	idle_unlink(l);
	for (pp = &in->link_hash[bucket_of(l->address)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == l) {
			*pp = l->hnext;
			break;
		}
	}
	if (l->fd >= 0 && l->fd < in->fd_cap && in->fd_owner[l->fd] == l) {
		/* The device sees the connection end now; libcurl closes the socket when it
		 * next sweeps its cache and finds it dead. */
		shutdown(l->fd, SHUT_RDWR);
		in->fd_owner[l->fd] = NULL;
	}
	if (l->easy)
		curl_easy_cleanup(l->easy);
	at_anchors_put(l->anchors);
	curl_slist_free_all(l->connect_to);
	OPENSSL_free(l->peer_der);
	free(l->address);
	free(l->url_host);
	free(l->crl_url);
	free(l);
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void ca_digest(const char *pem, unsigned char out[32])
{
	unsigned int n = 0;

	memset(out, 0, 32);
	if (pem)
		EVP_Digest(pem, strlen(pem), out, &n, EVP_sha256(), NULL);
}

static int link_matches(const struct at_link *l, const struct at_session *s,
			const unsigned char ca_id[32])
{
	return !l->cur && !l->retire && l->mode == s->mode && l->port == s->port &&
	       l->amt_major == s->amt_major && !strcmp(l->address, s->address) &&
	       !strcmp(l->url_host, s->url_host) && l->ident == s->ident &&
	       same_str(l->crl_url, s->crl_url) &&
	       (s->mode != AMTPROV_TRANSPORT_MANAGED || !memcmp(l->ca_id, ca_id, 32));
}

/* The easy handle's fixed settings, once per link. */
static int link_setup(struct at_link *l, struct at_session *s, struct amtprov_error *err)
{
	struct at_instance *in = l->in;
	CURL *e = curl_easy_init();
	struct curl_blob blob = {0};
	struct at_buf cab = {0};

	if (!e)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	l->easy = e;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_DIGEST);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)in->cfg.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	/* Memory per device in flight (issue 13 item 4): libcurl 7.88 holds a 64 KiB upload
	 * buffer for every HTTPS request while it waits for the answer (the request is copied
	 * into it, freed when the transfer ends) and a 16 KiB receive buffer for the life of
	 * the handle. AMT's requests and answers are a few KiB: the smallest upload buffer
	 * libcurl takes (16 KiB) and a 4 KiB receive buffer save ~60 KiB per device (a longer
	 * answer is read in more pieces; OpenSSL still reads whole records). */
	curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, AT_UPLOAD_BUFFER);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, AT_RECV_BUFFER);
	curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, at_tls_ctx_cb);
	curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, l);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_sock);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, l);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_sock);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, in);
	/* Only the anchors given here: never the system store. */
	curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	/* TLS session resumption, within the link only: libcurl keeps the session in this easy
	 * handle, so a reconnect of the same device and phase resumes (when the firmware
	 * offers it) the session our verify callback accepted, and nothing else can. */
	curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 1L);
	/* libcurl would parse a CA blob into a new X509_STORE for every connection (issue 13):
	 * the callback (at_tls.c) replaces that store with one of up-references to certificates
	 * parsed once (the provisioning identity needs no anchor; a CA bundle is parsed once
	 * per instance). The blob stays, for one thing: libcurl compares blobs byte for byte
	 * before reusing a connection, so a link never reuses a connection another link
	 * verified (and pinned) under other rules. Its first line names this link (PEM readers
	 * skip it); the rest is the instance's key CRL, which libcurl's loader needs (it
	 * refuses a blob without a certificate or CRL) and parses without a public key. */
	at_buf_printf(&cab, "amt-transport link %llu %p\n", ++in->link_serial, (void *)l);
	if (at_link_key(in, &cab) != AMTPROV_OK) {
		at_buf_free(&cab);
		return amtprov_error_set(err, AMTPROV_E_CRYPTO, NULL,
					 "cannot make the transport's connection key");
	}
	if (l->mode == AMTPROV_TRANSPORT_PROVISIONING) {
		/* Trust is decided by the verify callback (one self-signed certificate naming
		 * this address, or AMT's On-Die CA chain): no anchor at all. */
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		if (at_anchors_get(in, s->ca_bundle_pem, l->ca_id, &l->anchors) != AMTPROV_OK) {
			at_buf_free(&cab);
			return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		}
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
		if (strcmp(s->url_host, s->address) != 0) {
			char m[600];

			/* Verify the FQDN the certificate was issued for, connect to the address. */
			snprintf(m, sizeof(m), "%s:%u:%s%s%s:%u", s->url_host, (unsigned)s->port,
				 strchr(s->address, ':') ? "[" : "", s->address,
				 strchr(s->address, ':') ? "]" : "", (unsigned)s->port);
			l->connect_to = curl_slist_append(NULL, m);
			if (!l->connect_to) {
				at_buf_free(&cab);
				return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
			}
			curl_easy_setopt(e, CURLOPT_CONNECT_TO, l->connect_to);
		}
	}
	if (cab.oom) {
		at_buf_free(&cab);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	blob.data = cab.p;
	blob.len = cab.len;
	blob.flags = CURL_BLOB_COPY;
	curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
	at_buf_free(&cab);
	return AMTPROV_OK;
}

/* A new phase for this address: links of the other mode will not be used again. */
static void retire_other_mode(struct at_instance *in, const struct at_session *s)
{
	struct at_link **pp = &in->link_hash[bucket_of(s->address)];

	while (*pp) {
		struct at_link *l = *pp;

		if (l->mode != s->mode && !strcmp(l->address, s->address)) {
			l->retire = 1;
			if (!l->cur) {
				link_free(l); /* unhooks *pp */
				continue;
			}
		}
		pp = &l->hnext;
	}
}

int at_link_attach(struct at_session *s, struct amtprov_error *err)
{
	struct at_instance *in = s->in;
	unsigned b = bucket_of(s->address);
	unsigned char ca_id[32];
	struct at_link *l;
	int rc;

	ca_digest(s->mode == AMTPROV_TRANSPORT_MANAGED ? s->ca_bundle_pem : NULL, ca_id);
	retire_other_mode(in, s);
	for (l = in->link_hash[b]; l; l = l->hnext)
		if (link_matches(l, s, ca_id))
			break;
	if (l) {
		idle_unlink(l);
	} else {
		l = calloc(1, sizeof(*l));
		if (!l)
			return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		l->in = in;
		l->fd = -1;
		l->mode = s->mode;
		l->port = s->port;
		l->amt_major = s->amt_major;
		l->ident = s->ident;
		memcpy(l->ca_id, ca_id, 32);
		l->address = strdup(s->address);
		l->url_host = strdup(s->url_host);
		l->crl_url = s->crl_url ? strdup(s->crl_url) : NULL;
		l->hnext = in->link_hash[b];
		in->link_hash[b] = l;
		if (!l->address || !l->url_host || (s->crl_url && !l->crl_url)) {
			link_free(l);
			return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
		}
		rc = link_setup(l, s, err);
		if (rc != AMTPROV_OK) {
			link_free(l);
			return rc;
		}
	}
	l->cur = s;
	s->link = l;
	s->easy = l->easy;
	/* The session's own buffers for what libcurl writes. */
	curl_easy_setopt(l->easy, CURLOPT_PRIVATE, s);
	curl_easy_setopt(l->easy, CURLOPT_WRITEFUNCTION, at_write_cb);
	curl_easy_setopt(l->easy, CURLOPT_WRITEDATA, &s->resp);
	curl_easy_setopt(l->easy, CURLOPT_ERRORBUFFER, s->curl_err);
	if (l->peer_der) {
		s->peer_der = OPENSSL_memdup(l->peer_der, (size_t)l->peer_der_len);
		s->peer_der_len = s->peer_der ? l->peer_der_len : 0;
	}
	return AMTPROV_OK;
}

void at_link_detach(struct at_session *s)
{
	struct at_instance *in = s->in;
	struct at_link *l = s->link;

	if (!l)
		return;
	s->link = NULL;
	s->easy = NULL;
	l->cur = NULL;
	curl_easy_setopt(l->easy, CURLOPT_PRIVATE, NULL);
	curl_easy_setopt(l->easy, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(l->easy, CURLOPT_ERRORBUFFER, NULL);
	if (l->retire || in->cfg.keep_alive_ms <= 0 || in->cfg.max_idle_links <= 0) {
		link_free(l);
		return;
	}
	l->idle_until = now_ms(in) + in->cfg.keep_alive_ms;
	l->parked = 1;
	l->idle_next = NULL;
	l->idle_prev = in->idle_tail;
	if (in->idle_tail)
		in->idle_tail->idle_next = l;
	else
		in->idle_head = l;
	in->idle_tail = l;
	in->n_idle++;
	while ((long long)in->n_idle > in->cfg.max_idle_links)
		link_free(in->idle_head);
}

void at_links_device_idle(struct at_instance *in, const char *address, uint16_t port)
{
	struct at_link **pp = &in->link_hash[bucket_of(address)];

	while (*pp) {
		struct at_link *l = *pp;

		if (l->parked && l->port == port && strcmp(l->address, address) == 0) {
			link_free(l); /* unlinks it: *pp is the next one now */
			continue;
		}
		pp = &l->hnext;
	}
}

int64_t at_links_expire(struct at_instance *in, int64_t now)
{
	/* Parked in order and all with the same keep-alive: the head expires first. */
	while (in->idle_head && in->idle_head->idle_until <= now)
		link_free(in->idle_head);
	return in->idle_head ? in->idle_head->idle_until : -1;
}

void at_links_free(struct at_instance *in)
{
	if (!in->link_hash)
		return;
	for (unsigned b = 0; b < AT_LINK_BUCKETS; b++)
		while (in->link_hash[b])
			link_free(in->link_hash[b]);
	free(in->link_hash);
	in->link_hash = NULL;
}
