/* SPDX-License-Identifier: Apache-2.0 */
/* The registration API client (register.h). */
#include "register.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "plugin_util.h"

int api_request(const struct api_client *c, const char *path,
		const char *body, long *code, json_t **answer, char *err, size_t errlen)
{
	char url[2048], ebuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs = NULL;
	/* The API's answers are small; a huge one is not amtprovd. */
	struct pu_sink s = {.max = 65536};
	size_t ulen = strlen(c->server);
	CURL *curl;
	CURLcode cc;
	int rc = -1;

	*code = 0;
	*answer = NULL;
	while (ulen > 8 && c->server[ulen - 1] == '/')
		ulen--;
	if ((size_t)snprintf(url, sizeof(url), "%.*s%s", (int)ulen, c->server, path) >=
	    sizeof(url)) {
		snprintf(err, errlen, "the server URL is too long");
		return -1;
	}
	curl = curl_easy_init();
	if (!curl) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -1;
	}
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	/* libcurl builds the Authorization header itself: no copy of the secret in a list. */
	curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
	curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, c->secret);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_bundle)
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca_bundle);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	if (body)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	else
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, pu_sink_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
	ebuf[0] = '\0';
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", url, ebuf[0] ? ebuf : curl_easy_strerror(cc));
	} else {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, code);
		*answer = s.buf ? json_loads(s.buf, 0, NULL) : NULL;
		rc = 0;
	}
	curl_easy_cleanup(curl);
	curl_slist_free_all(hdrs);
	free(s.buf);
	return rc;
}
