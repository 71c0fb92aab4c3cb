/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - adcssim, an Active Directory Certificate Services test server (docs/adcssim.md):
 *   adcssim serve --dir DIR --seed FILE --listen IP:PORT --http-listen IP:PORT [--host NAME]
 *   adcssim admin --dir DIR resubmit ID | deny ID | revoke SERIAL [REASON] | list --json
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <openssl/pem.h>

#include "negotiate.h"
#include "server.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: adcssim serve --dir DIR --seed FILE --listen IP:PORT --http-listen IP:PORT\n"
		"                     [--host NAME] [--keytab FILE] [--cdp-url URL]\n"
		"                     [--ces-priority N] [--peer-ca DIR]...\n"
		"       adcssim admin --dir DIR resubmit REQUEST_ID\n"
		"       adcssim admin --dir DIR deny REQUEST_ID\n"
		"       adcssim admin --dir DIR revoke SERIAL [REASON]\n"
		"       adcssim admin --dir DIR list --json\n"
		"\n"
		"An AD CS test server: CEP (MS-XCEP) and CES (MS-WSTEP) over HTTPS with\n"
		"UsernameToken, TLS client-certificate or (with --keytab, the HTTP service key)\n"
		"Kerberos authentication, an OpenSSL enterprise or stand-alone CA with templates\n"
		"from the seed file, a WinRM shell that runs `certutil -revoke`, and the CRL over\n"
		"HTTP. `admin` acts on DIR while the server\n"
		"runs, like certutil -resubmit/-deny/-revoke. See docs/adcssim.md.\n");
}

static int split_addr(const char *s, char *ip, size_t ipsz, unsigned *port)
{
	const char *c = strrchr(s, ':');
	char *e;
	long p;

	if (!c || (size_t)(c - s) >= ipsz)
		return -1;
	memcpy(ip, s, (size_t)(c - s));
	ip[c - s] = '\0';
	p = strtol(c + 1, &e, 10);
	if (*e || p <= 0 || p > 65535)
		return -1;
	*port = (unsigned)p;
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out;
	char buf[8192];
	size_t n;
	int rc = 0;

	if (!in)
		return -1;
	out = fopen(to, "wb");
	if (!out) {
		fclose(in);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			rc = -1;
	fclose(in);
	if (fclose(out))
		rc = -1;
	chmod(to, 0600); /* it holds the accounts' passwords */
	return rc;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int read_line(const char *path, char *buf, size_t sz)
{
	FILE *f = fopen(path, "r");

	if (!f || !fgets(buf, (int)sz, f)) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/* Loads seed, CA and database from DIR (the seed copy the server left there). */
static int open_state(struct adcs *s, const char *dir, const char *seed_path)
{
	char path[700], err[512];
	struct stat st;

	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	if (seed_load(&s->seed, seed_path, err, sizeof(err))) {
		fprintf(stderr, "adcssim: %s\n", err);
		return -1;
	}
	if (stat(seed_path, &st) == 0)
		s->last_update = st.st_mtime;
	if (ca_open(&s->ca, dir, s->seed.ca_name, s->seed.ca_hash, err, sizeof(err))) {
		fprintf(stderr, "adcssim: %s\n", err);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/crl-url", dir);
	read_line(path, s->ca.crl_url, sizeof(s->ca.crl_url));
	snprintf(path, sizeof(path), "%s/https-base", dir);
	read_line(path, s->https_base, sizeof(s->https_base));
	snprintf(path, sizeof(path), "%s/ca.db", dir);
	s->db = db_open(path, err, sizeof(err));
	if (!s->db) {
		fprintf(stderr, "adcssim: %s\n", err);
		return -1;
	}
	return 0;
}

/* A peer CA from another adcssim's state directory (that server has started: it wrote its
 * https-base). Only its seed, certificate, address and CES priority are read. */
static int open_peer(struct adcs *s, const char *dir)
{
	struct adcs_peer *p = &s->peers[s->n_peers];
	char path[700], err[512], prio[32] = "";
	FILE *f;

	if (s->n_peers == ADCS_MAX_PEERS) {
		fprintf(stderr, "adcssim serve: at most %d --peer-ca\n", ADCS_MAX_PEERS);
		return -1;
	}
	memset(p, 0, sizeof(*p));
	snprintf(path, sizeof(path), "%s/seed.json", dir);
	if (seed_load(&p->seed, path, err, sizeof(err))) {
		fprintf(stderr, "adcssim serve: --peer-ca %s: %s\n", dir, err);
		return -1;
	}
	s->n_peers++; /* close_state frees its seed from here on */
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	if ((f = fopen(path, "r"))) {
		p->cert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/https-base", dir);
	if (!p->cert || read_line(path, p->https_base, sizeof(p->https_base))) {
		fprintf(stderr, "adcssim serve: --peer-ca %s: no ca.pem or https-base there (start "
			"that server first)\n", dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/ces-priority", dir);
	p->ces_priority = read_line(path, prio, sizeof(prio)) ? 1 : (unsigned)strtoul(prio, NULL, 10);
	if (!strcmp(p->seed.ca_name, s->seed.ca_name)) {
		fprintf(stderr, "adcssim serve: --peer-ca %s is the same CA (\"%s\"): two CES hosts "
			"of one CA share its --dir instead\n", dir, s->seed.ca_name);
		return -1;
	}
	return 0;
}

static void close_state(struct adcs *s)
{
	for (int i = 0; i < s->n_peers; i++) {
		seed_free(&s->peers[i].seed);
		X509_free(s->peers[i].cert);
	}
	s->n_peers = 0;
	winrm_free(s);
	db_close(s->db);
	ca_close(&s->ca);
	seed_free(&s->seed);
}

static int serve(int argc, char **argv)
{
	const char *dir = NULL, *seed = NULL, *listen_s = NULL, *http_s = NULL, *host = NULL;
	const char *keytab = NULL, *cdp = NULL, *peer[ADCS_MAX_PEERS];
	unsigned prio = 1;
	int n_peer = 0;
	char ip[64], hip[64], path[700], seed_copy[700], tls_key[700], err[512], url[600];
	char name_enc[200];
	unsigned port, hport;
	struct adcs s;
	struct httpd *h = NULL;
	SSL_CTX *tls = NULL;
	struct sigaction sa;
	size_t i, o = 0;
	int rc = 1;

	memset(&s, 0, sizeof(s));
	for (int i2 = 0; i2 < argc; i2++) {
		const char *a = argv[i2], *v = i2 + 1 < argc ? argv[i2 + 1] : NULL;

		if (!v) {
			fprintf(stderr, "adcssim serve: %s needs a value\n", a);
			return 2;
		}
		if (!strcmp(a, "--dir")) dir = v;
		else if (!strcmp(a, "--seed")) seed = v;
		else if (!strcmp(a, "--listen")) listen_s = v;
		else if (!strcmp(a, "--http-listen")) http_s = v;
		else if (!strcmp(a, "--host")) host = v;
		else if (!strcmp(a, "--keytab")) keytab = v;
		else if (!strcmp(a, "--cdp-url")) cdp = v;
		else if (!strcmp(a, "--peer-ca")) {
			if (n_peer == ADCS_MAX_PEERS) {
				fprintf(stderr, "adcssim serve: at most %d --peer-ca\n",
					ADCS_MAX_PEERS);
				return 2;
			}
			peer[n_peer++] = v;
		}
		else if (!strcmp(a, "--ces-priority")) {
			char *end;
			unsigned long n = strtoul(v, &end, 10);

			if (*end || !*v || n < 1 || n > 1000000) {
				fprintf(stderr, "adcssim serve: --ces-priority takes 1..1000000\n");
				return 2;
			}
			prio = (unsigned)n;
		} else {
			fprintf(stderr, "adcssim serve: unknown option %s\n", a);
			return 2;
		}
		i2++;
	}
	if (!dir || !seed || !listen_s || !http_s) {
		usage(stderr);
		return 2;
	}
	if (split_addr(listen_s, ip, sizeof(ip), &port) ||
	    split_addr(http_s, hip, sizeof(hip), &hport)) {
		fprintf(stderr, "adcssim serve: --listen and --http-listen take IP:PORT\n");
		return 2;
	}
	if (cdp && ((strncmp(cdp, "http://", 7) && strncmp(cdp, "https://", 8)) ||
		    strlen(cdp) >= sizeof(s.ca.crl_url) || strpbrk(cdp, " \t\r\n"))) {
		fprintf(stderr, "adcssim serve: --cdp-url takes an http(s) URL without blanks\n");
		return 2;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "adcssim serve: cannot create %s: %s\n", dir, strerror(errno));
		return 1;
	}
	snprintf(seed_copy, sizeof(seed_copy), "%s/seed.json", dir);
	if (copy_file(seed, seed_copy)) {
		fprintf(stderr, "adcssim serve: cannot copy %s to %s\n", seed, seed_copy);
		return 1;
	}
	if (!host)
		host = ip;
	if (keytab && negotiate_init(keytab, err, sizeof(err))) {
		fprintf(stderr, "adcssim serve: %s\n", err);
		return 1;
	}
	if (open_state(&s, dir, seed_copy))
		goto out;
	snprintf(s.https_base, sizeof(s.https_base), "https://%s:%u", host, port);
	s.ces_priority = prio;
	for (int k = 0; k < n_peer; k++)
		if (open_peer(&s, peer[k]))
			goto out;
	struct stat st;
	if (stat(seed, &st) == 0)
		s.last_update = st.st_mtime;
	for (i = 0; s.seed.ca_name[i] && o < sizeof(name_enc) - 4; i++) {
		if (s.seed.ca_name[i] == ' ') {
			memcpy(name_enc + o, "%20", 3);
			o += 3;
		} else {
			name_enc[o++] = s.seed.ca_name[i];
		}
	}
	name_enc[o] = '\0';
	/* AD CS's default CDP: http://<host>/CertEnroll/<CA name>.crl; --cdp-url plays the
	 * CA's CRLPublicationURLs setting, for clients that reach the CRL by another name. */
	if (cdp)
		snprintf(s.ca.crl_url, sizeof(s.ca.crl_url), "%s", cdp);
	else
		snprintf(s.ca.crl_url, sizeof(s.ca.crl_url), "http://%s:%u/CertEnroll/%s.crl",
			 !strcmp(host, ip) ? hip : host, hport, name_enc);
	snprintf(path, sizeof(path), "%s/crl-url", dir);
	snprintf(url, sizeof(url), "%s\n", s.ca.crl_url);
	if (write_text(path, url))
		goto out;
	snprintf(path, sizeof(path), "%s/https-base", dir);
	snprintf(url, sizeof(url), "%s\n", s.https_base);
	if (write_text(path, url))
		goto out;
	snprintf(path, sizeof(path), "%s/ces-priority", dir);
	snprintf(url, sizeof(url), "%u\n", prio);
	if (write_text(path, url))
		goto out;
	snprintf(path, sizeof(path), "%s/tls.pem", dir);
	snprintf(tls_key, sizeof(tls_key), "%s/tls.key", dir);
	if (access(path, R_OK) && ca_make_tls(&s.ca, dir, host, ip, err,
					      sizeof(err))) {
		fprintf(stderr, "adcssim: %s\n", err);
		goto out;
	}
	snprintf(url, sizeof(url), "%s/ca.pem", dir);
	tls = httpd_tls_ctx(path, tls_key, url, err, sizeof(err));
	h = httpd_new(adcs_handle, &s);
	if (!tls || !h) {
		fprintf(stderr, "adcssim: %s\n", tls ? "out of memory" : err);
		goto out;
	}
	if (httpd_listen(h, ip, port, tls, err, sizeof(err)) ||
	    httpd_listen(h, hip, hport, NULL, err, sizeof(err))) {
		fprintf(stderr, "adcssim: %s\n", err);
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	printf("adcssim: %s CA \"%s\" on %s, CRL at %s\n",
	       s.seed.standalone ? "stand-alone" : "enterprise", s.seed.ca_name, s.https_base,
	       s.ca.crl_url);
	fflush(stdout);
	httpd_run(h, &stop_flag);
	rc = 0;
out:
	httpd_free(h);
	SSL_CTX_free(tls);
	close_state(&s);
	return rc;
}

static int admin(int argc, char **argv)
{
	struct adcs s;
	struct sb out = { 0 };
	char seed_copy[700], *e;
	long id;
	int rc = 2;

	memset(&s, 0, sizeof(s));
	if (argc < 3 || strcmp(argv[0], "--dir")) {
		usage(stderr);
		return 2;
	}
	snprintf(seed_copy, sizeof(seed_copy), "%s/seed.json", argv[1]);
	if (open_state(&s, argv[1], seed_copy)) {
		close_state(&s);
		return 1;
	}
	argv += 2;
	argc -= 2;
	if ((!strcmp(argv[0], "resubmit") || !strcmp(argv[0], "deny")) && argc == 2) {
		id = strtol(argv[1], &e, 10);
		if (*e || id <= 0) {
			fprintf(stderr, "adcssim admin: request id \"%s\" is not a positive number\n",
				argv[1]);
		} else {
			rc = !strcmp(argv[0], "deny") ? admin_deny(&s, id, &out) :
			     admin_resubmit(&s, id, &out);
		}
	} else if (!strcmp(argv[0], "revoke") && (argc == 2 || argc == 3)) {
		rc = admin_revoke(&s, argv[1], argc == 3 ? argv[2] : NULL, "adcssim-admin", &out);
	} else if (!strcmp(argv[0], "list") && argc == 2 && !strcmp(argv[1], "--json")) {
		rc = admin_list_json(&s, &out);
	} else {
		usage(stderr);
	}
	if (out.p)
		fputs(out.p, rc ? stderr : stdout);
	sb_free(&out);
	close_state(&s);
	return rc;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	xmlInitParser();
	if (!strcmp(argv[1], "serve"))
		rc = serve(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "admin"))
		rc = admin(argc - 2, argv + 2);
	else {
		usage(stderr);
		rc = 2;
	}
	xmlCleanupParser();
	return rc;
}
