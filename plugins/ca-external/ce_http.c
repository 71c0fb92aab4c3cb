/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ce_http.c - the few HTTP exchanges SCEP needs, over libcurl. Blocking, which CA plugins
 * may be: the core runs them on its worker pool. Each call uses its own easy handle, so
 * calls from several workers never share state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "plugin_util.h"

#include "ce.h"

/* SCEP answers are a certificate or two; anything bigger is not a SCEP server. */
#define CE_HTTP_MAX (1u << 20)

int ce_http(const char *url, const uint8_t *body, size_t body_len, const char *ctype,
	    long timeout_s, struct ce_http_resp *resp, char *why, size_t why_size)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	struct pu_sink s = {.max = CE_HTTP_MAX};
	char errbuf[CURL_ERROR_SIZE] = "", hdr[160];
	const char *ct = NULL;
	CURLcode cc;

	memset(resp, 0, sizeof(*resp));
	if (!c) {
		snprintf(why, why_size, "cannot initialise libcurl");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, pu_sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout_s < 10 ? timeout_s : 10L);
	/* SCEP runs over plain HTTP by design (the messages are signed and encrypted);
	 * https:// URLs also work. No redirects to other hosts: the CA is configured. */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "amtprov-ca-external/1.0");
	if (body) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype ? ctype : "application/octet-stream");
		hdrs = curl_slist_append(NULL, hdr);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		snprintf(why, why_size, "%s", s.too_big ? "answer larger than 1 MiB"
				: errbuf[0] ? errbuf : curl_easy_strerror(cc));
		free(s.buf);
		curl_slist_free_all(hdrs);
		curl_easy_cleanup(c);
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		snprintf(resp->ctype, sizeof(resp->ctype), "%s", ct);
	if (!s.buf)
		s.buf = calloc(1, 1);
	resp->body = (uint8_t *)s.buf;
	resp->len = s.len;
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	if (!resp->body) {
		snprintf(why, why_size, "out of memory");
		return -1;
	}
	return 0;
}

void ce_http_resp_free(struct ce_http_resp *resp)
{
	if (resp) {
		free(resp->body);
		resp->body = NULL;
		resp->len = 0;
	}
}

char *ce_urlencode(const char *s)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = digits[c >> 4];
			*o++ = digits[c & 15];
		}
	}
	*o = '\0';
	return out;
}
