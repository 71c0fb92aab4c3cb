/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca_http.c - serves ca-local's CRL over HTTP (libmicrohttpd) at
 * http://<crl_listen>/<instance>.crl, for CRL checkers that follow the CRL distribution
 * point of the certificates (FreeRADIUS, amtprov's transport, R-REV-01, R-8021X-07).
 *
 * The daemon binds exactly the configured numeric address (normally loopback), never the
 * wildcard address, answers GET and HEAD only, and serves nothing but the CRL. Its thread
 * takes ca->lock only to refresh a CRL that is due, and otherwise reads the published bytes
 * under crl_lock.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "ca_local.h"

struct cl_http {
	struct ca_local *ca;
	struct MHD_Daemon *d;
	char path[96]; /* "/<instance>.crl" */
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct cl_http *h = cls;
	char line[256];

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	h->ca->host->log(h->ca->host, AMTPROV_LOG_WARNING, "CRL endpoint: %s", line);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const void *body,
			     size_t len, const char *type)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result r;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	static const char not_found[] = "not found\n";
	static const char bad_method[] = "method not allowed\n";
	struct cl_http *h = cls;
	struct ca_local *ca = h->ca;
	struct amtprov_error err;
	uint8_t *der = NULL;
	size_t len = 0;
	enum MHD_Result r;

	(void)version;
	(void)upload_data;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, bad_method, sizeof(bad_method) - 1,
			     "text/plain");
	if (strcmp(url, h->path) != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, not_found, sizeof(not_found) - 1,
			     "text/plain");
	amtprov_error_clear(&err);
	/* A CRL past half its life is replaced before it is served, so checkers that cache
	 * until nextUpdate never hold an expired one while ca-local runs. */
	pthread_mutex_lock(&ca->lock);
	if (ca->started && cl_crl_refresh_if_due(ca, &err) != AMTPROV_OK)
		ca->host->log(ca->host, AMTPROV_LOG_ERROR, "cannot refresh the CRL: %s", err.msg);
	pthread_mutex_unlock(&ca->lock);
	amtprov_error_clear(&err);
	if (cl_crl_copy(ca, &der, &len, &err) != AMTPROV_OK)
		return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, strlen(err.msg),
			     "text/plain");
	r = reply(conn, MHD_HTTP_OK, der, len, "application/pkix-crl");
	free(der);
	return r;
}

int cl_http_start(struct ca_local *ca, struct cl_http **out, int *port,
		  struct amtprov_error *err)
{
	struct cl_http *h = calloc(1, sizeof(*h));
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	/* epoll, not select: a fleet's transport sessions fetch the CRL at once, and select
	 * cannot hold more than FD_SETSIZE connections. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;

	if (!h)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CL_NAME, "out of memory");
	h->ca = ca;
	snprintf(h->path, sizeof(h->path), "/%s.crl", ca->host->instance_name(ca->host));
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ca->listen_host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)ca->listen_port);
	} else if (inet_pton(AF_INET6, ca->listen_host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)ca->listen_port);
		flags |= MHD_USE_IPv6;
	} else {
		free(h);
		return amtprov_error_set(err, AMTPROV_E_CONFIG, "/crl_listen",
					 "'%s' is not a numeric IP address", ca->listen_host);
	}
	/* The logger first, so MHD's own start-up messages go through it too. The limit is
	 * high: a CRL fetch refused here fails a device closed (R-REV-01). */
	h->d = MHD_start_daemon(flags, (uint16_t)ca->listen_port, NULL, NULL, on_request, h,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	if (!h->d) {
		free(h);
		return amtprov_error_set(err, AMTPROV_E_IO, "/crl_listen",
					 "cannot serve the CRL on %s port %d (address in use or "
					 "not local?)",
					 ca->listen_host, ca->listen_port);
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	*port = info && info->port ? (int)info->port : ca->listen_port;
	*out = h;
	return AMTPROV_OK;
}

void cl_http_stop(struct cl_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
