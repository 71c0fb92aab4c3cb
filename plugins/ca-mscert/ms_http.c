/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ms_http.c - SOAP over HTTPS for ca-mscert, with libcurl. Blocking, which CA calls may be
 * (the core runs them on its worker pool); each call has its own easy handle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "plugin_util.h"

#include "ms.h"

/* A policy with many templates is some hundred kilobytes; more is not a CEP/CES. */
#define MS_HTTP_MAX (8u << 20)

int ms_http_post(const struct ms_http_opts *o, const char *url, const char *body,
		 struct ms_http_resp *resp, char *why, size_t why_size)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL, *resolve = NULL;
	struct pu_sink s = {.max = MS_HTTP_MAX};
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode cc;

	memset(resp, 0, sizeof(*resp));
	if (!c) {
		snprintf(why, why_size, "cannot initialise libcurl");
		return -1;
	}
	hdrs = curl_slist_append(NULL, "Content-Type: application/soap+xml; charset=utf-8");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, pu_sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout_s);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->timeout_s < 10 ? o->timeout_s : 10L);
	/* Passwords travel in the body (UsernameToken) or in Basic: HTTPS only, the CA's
	 * server certificate checked against the configured bundle, no redirects. */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_bundle)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_bundle);
	if (o->client_cert) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, o->client_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, o->client_key);
	}
	for (size_t i = 0; o->resolve && o->resolve[i]; i++)
		resolve = curl_slist_append(resolve, o->resolve[i]);
	if (resolve)
		curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	if (o->negotiate) {
		/* SPNEGO through GSSAPI with the ticket of the process (KRB5CCNAME): the user
		 * name and password libcurl wants here are empty on purpose. */
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_NEGOTIATE);
		curl_easy_setopt(c, CURLOPT_USERPWD, ":");
	}
	if (o->basic_user) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, o->basic_user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, o->basic_password ? o->basic_password : "");
	}
	curl_easy_setopt(c, CURLOPT_USERAGENT, "amtprov-ca-mscert/0.1");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		snprintf(why, why_size, "%s: %s", url,
			 s.too_big ? "answer larger than 8 MiB" : errbuf[0] ? errbuf
									    : curl_easy_strerror(cc));
		free(s.buf);
		curl_slist_free_all(hdrs);
		curl_slist_free_all(resolve);
		curl_easy_cleanup(c);
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->body = s.buf ? s.buf : calloc(1, 1);
	resp->len = s.len;
	curl_slist_free_all(hdrs);
	curl_slist_free_all(resolve);
	curl_easy_cleanup(c);
	if (!resp->body) {
		snprintf(why, why_size, "out of memory");
		return -1;
	}
	return 0;
}

void ms_http_resp_free(struct ms_http_resp *r)
{
	if (r) {
		free(r->body);
		r->body = NULL;
		r->len = 0;
	}
}
