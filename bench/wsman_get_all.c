/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wsman_get_all: the load driver of bench_amtsim_fleet.sh. Sends one WS-Man Get of
 * AMT_GeneralSettings (HTTPS + Digest) to every address listed in a file, many transfers in
 * flight at once through libcurl's multi interface, and reports how many devices answered
 * with the instance and how long that took. TLS verification is off: this is a benchmark of
 * the simulator's fleet mode, not of certificate handling (the devices use self-signed
 * certificates). Addresses must be loopback (127.0.0.0/8); others are refused.
 *
 * usage: wsman_get_all [-c CONCURRENCY] [-u USER] [-p PASSWORD] [-P PORT] [-t SECONDS] FILE
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define GS_URI "http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings"

struct xfer {
	CURL *h;
	char url[96];
	char *body;
	size_t len;
	bool in_use;
};

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t add = sz * n;
	char *nb;

	/* Only the first 64 KiB are kept: enough to find the class in the answer. */
	if (x->len + add > 65536)
		return add;
	nb = realloc(x->body, x->len + add + 1);
	if (!nb)
		return 0;
	x->body = nb;
	memcpy(x->body + x->len, p, add);
	x->len += add;
	x->body[x->len] = '\0';
	return add;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long parse_long(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < lo || v > hi) {
		fprintf(stderr, "wsman_get_all: %s: %ld..%ld\n", what, lo, hi);
		exit(2);
	}
	return v;
}

static const char envelope[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	"<Envelope xmlns=\"http://www.w3.org/2003/05/soap-envelope\" "
	"xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" "
	"xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\"><Header>"
	"<a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>"
	"<a:To>/wsman</a:To><w:ResourceURI>" GS_URI "</w:ResourceURI>"
	"<a:MessageID>uuid:00000000-8086-8086-8086-000000000001</a:MessageID>"
	"<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
	"</a:Address></a:ReplyTo><w:OperationTimeout>PT60S</w:OperationTimeout></Header>"
	"<Body></Body></Envelope>";

int main(int argc, char **argv)
{
	const char *user = "admin", *pass = "P@ssw0rd1";
	long conc = 500, port = 16993, timeout = 60;
	char **addrs = NULL, line[128];
	size_t n_addr = 0, cap = 0, next = 0, done = 0, ok = 0, failed_shown = 0;
	struct xfer *xs;
	struct curl_slist *hdr;
	CURLM *m;
	FILE *fp;
	double t0;
	int c, running;

	while ((c = getopt(argc, argv, "c:u:p:P:t:")) != -1) {
		switch (c) {
		case 'c': conc = parse_long(optarg, 1, 16000, "-c"); break;
		case 'u': user = optarg; break;
		case 'p': pass = optarg; break;
		case 'P': port = parse_long(optarg, 1, 65535, "-P"); break;
		case 't': timeout = parse_long(optarg, 1, 3600, "-t"); break;
		default:
			fprintf(stderr, "usage: wsman_get_all [-c N] [-u USER] [-p PASS] [-P PORT] "
					"[-t SECONDS] FILE\n");
			return 2;
		}
	}
	if (optind + 1 != argc || !(fp = fopen(argv[optind], "r"))) {
		fprintf(stderr, "wsman_get_all: need one readable address file\n");
		return 2;
	}
	while (fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		if (strncmp(line, "127.", 4) != 0) {
			fprintf(stderr, "wsman_get_all: %s: only 127.0.0.0/8 addresses\n", line);
			return 2;
		}
		if (n_addr == cap) {
			char **na = realloc(addrs, (cap = cap ? cap * 2 : 1024) * sizeof(*addrs));

			if (!na)
				return 1;
			addrs = na;
		}
		addrs[n_addr] = strdup(line);
		if (!addrs[n_addr++])
			return 1;
	}
	fclose(fp);
	if ((size_t)conc > n_addr)
		conc = n_addr ? (long)n_addr : 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	xs = calloc((size_t)conc, sizeof(*xs));
	hdr = curl_slist_append(NULL, "Content-Type: application/soap+xml;charset=UTF-8");
	if (!m || !xs || !hdr)
		return 1;
	t0 = now_s();
	for (;;) {
		CURLMsg *msg;
		int left;

		/* Keep CONCURRENCY transfers in flight until every address had its turn. */
		for (long i = 0; i < conc && next < n_addr; i++) {
			struct xfer *x = &xs[i];

			if (x->in_use)
				continue;
			if (!x->h && !(x->h = curl_easy_init()))
				return 1;
			curl_easy_reset(x->h);
			snprintf(x->url, sizeof(x->url), "https://%s:%ld/wsman", addrs[next++], port);
			x->len = 0;
			curl_easy_setopt(x->h, CURLOPT_URL, x->url);
			curl_easy_setopt(x->h, CURLOPT_HTTPAUTH, (long)CURLAUTH_DIGEST);
			curl_easy_setopt(x->h, CURLOPT_USERNAME, user);
			curl_easy_setopt(x->h, CURLOPT_PASSWORD, pass);
			curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, envelope);
			curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, hdr);
			/* Benchmark only: the devices' certificates are self-signed. */
			curl_easy_setopt(x->h, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(x->h, CURLOPT_SSL_VERIFYHOST, 0L);
			curl_easy_setopt(x->h, CURLOPT_TIMEOUT, timeout);
			curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_data);
			curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
			curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
			curl_easy_setopt(x->h, CURLOPT_FORBID_REUSE, 1L);
			x->in_use = true;
			curl_multi_add_handle(m, x->h);
		}
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			struct xfer *x = NULL;
			long code = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			if (msg->data.result == CURLE_OK && code == 200 && x->body &&
			    strstr(x->body, "AMT_GeneralSettings"))
				ok++;
			else if (failed_shown++ < 5)
				fprintf(stderr, "wsman_get_all: %s: %s (HTTP %ld)\n", x->url,
					curl_easy_strerror(msg->data.result), code);
			curl_multi_remove_handle(m, msg->easy_handle);
			x->in_use = false;
			done++;
		}
		if (done == n_addr)
			break;
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	printf("get_all_devices=%zu get_all_answered=%zu get_all_seconds=%.3f\n", n_addr, ok,
	       now_s() - t0);
	for (long i = 0; i < conc; i++) {
		if (xs[i].h)
			curl_easy_cleanup(xs[i].h);
		free(xs[i].body);
	}
	for (size_t i = 0; i < n_addr; i++)
		free(addrs[i]);
	free(addrs);
	free(xs);
	curl_slist_free_all(hdr);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	return ok == n_addr ? 0 : 1;
}
