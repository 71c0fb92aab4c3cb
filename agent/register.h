/* SPDX-License-Identifier: Apache-2.0 */
/* amtprovd's registration API as the agent uses it (docs/api.md): HTTPS with libcurl. */
#ifndef AMTPROV_AGENT_REGISTER_H
#define AMTPROV_AGENT_REGISTER_H

#include <stddef.h>

#include <jansson.h>

struct api_client {
	const char *server;    /* https://host:port */
	const char *secret;    /* this host's enrollment secret (one line) */
	const char *ca_bundle; /* may be NULL: the system's CAs */
};

/** GET @p path ("/v1/devices/..."), or POST @p body to it when @p body is not NULL. Sets *@p code and
 * *@p answer (the JSON answer, or NULL). @return 0, or -1 when no HTTP answer came, with
 * the reason in @p err. */
int api_request(const struct api_client *c, const char *path,
		const char *body, long *code, json_t **answer, char *err, size_t errlen);

#endif
