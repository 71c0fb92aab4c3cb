/* SPDX-License-Identifier: Apache-2.0 */
/*
 * amtprov: the command line for a site. Results go to stdout (text, or JSON with --json);
 * diagnostics go to stderr. Exit codes are documented in docs/man/amtprov.1 and below.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "amt_password.h"
#include "authz.h"
#include "device_input.h"
#include "cmd_device_credentials.h"
#include "cmd_device_delete.h"
#include "cmd_plugin_test.h"
#include "cmd_watch.h"
#include "device_state.h"
#include "exit_codes.h"
#include "lifecycle.h"
#include "log.h"
#include "manifest.h"
#include "plugin_host.h"
#include "preflight.h"
#include "provcert.h"
#include "registration.h"
#include "scheduler.h"
#include "site.h"
#include "status.h"
#include "store.h"
#include "util.h"


struct cli {
	const char *manifest;
	int json;
	int verbose;
	struct alog *log;
	char **plugin_dirs;
	size_t n_plugin_dirs;
};

static void usage(FILE *out)
{
	fputs("Usage: amtprov [OPTIONS] COMMAND [ARGS]\n"
	      "Manage an amtprov site: its manifest, database, devices and certificates.\n"
	      "\n"
	      "Options:\n"
	      "  -m, --manifest FILE   site manifest (default: $AMTPROV_MANIFEST)\n"
	      "  -j, --json            machine-readable JSON on stdout\n"
	      "  -v, --verbose         more diagnostics on stderr (repeat for debug)\n"
	      "  -h, --help            show this help and exit\n"
	      "  -V, --version         show the version and exit\n"
	      "\n"
	      "Commands:\n"
	      "  manifest check [--no-plugins]   validate the manifest (every error, with its\n"
	      "                                  JSON path) and load its plugins\n"
	      "  db init                         create the site database\n"
	      "  db check                        check the database's integrity\n"
	      "  device add OPTIONS              register a device, or a known one again\n"
	      "                                  (see 'amtprov device add -h')\n"
	      "  device list [--state STATE]     list devices\n"
	      "  device list --watch[=SECONDS] [--count N]\n"
	      "                                  live count by state and throughput\n"
	      "  device show DEVICE              one device, its certificates and audit trail\n"
	      "  device retry DEVICE             put a FAILED device back to REGISTERED\n"
	      "  device unprovision DEVICE       full unprovision in AMT, certificates revoked,\n"
	      "                                  directory account and secrets removed\n"
	      "  device block DEVICE             block it; its certificates are revoked\n"
	      "  device unblock DEVICE           unblock it (it is unprovisioned next)\n"
	      "  device delete DEVICE [--revoke] [--force]   remove the record, keep its\n"
	      "                                  history (see 'amtprov device delete -h')\n"
	      "  device update DEVICE            apply the site's AMT settings again\n"
	      "                                  (amtprovd does the device work)\n"
	      "  device register OPTIONS         register through amtprovd's HTTPS API, as a\n"
	      "                                  host agent does (see 'amtprov device register -h')\n"
	      "  cred set NAME (--from-file FILE | --stdin)   store a secret in the site's\n"
	      "                                  credential store (never printed)\n"
	      "  cred list                       credential record names\n"
	      "  cred rotate                     re-encrypt every credential under a new key\n"
	      "  enroll-secret --fqdn FQDN [--uuid UUID]   a host agent's registration\n"
	      "                                  credential for its own name (docs/api.md)\n"
	      "  cert list [FILTERS]             issued certificates (see 'amtprov cert list -h')\n"
	      "  cert check [OPTIONS]            preflight the provisioning certificate: every\n"
	      "                                  check, expected vs actual, root thumbprints\n"
	      "  cert import OPTIONS             check and copy a provisioning certificate into\n"
	      "                                  the state directory (see 'amtprov cert import -h')\n"
	      "  cert revoked --cert FILE        record a provisioning certificate as revoked:\n"
	      "                                  provisioning stops while it is configured\n"
	      "  task list                       maintenance tasks: schedule, last and next run\n"
	      "  task run NAME [--wait[=SECONDS]]  ask amtprovd to run a task now\n"
	      "  status [FILTERS]                status messages (see 'amtprov status -h')\n"
	      "  status catalog                  every status message ID with its meaning\n"
	      "  plugin list                     the site's plugin instances\n"
	      "  plugin show [--plugin-dir DIR] NAME   load a plugin and show its descriptor\n"
	      "  plugin test [OPTIONS] NAME      drive a CA plugin through submit, poll and\n"
	      "                                  revoke and check the CA contract (see -h)\n"
	      "  states                          the provisioning states and their meaning\n"
	      "  report                          one line per device: state, certificate, reason\n"
	      "\n"
	      "DEVICE is an FQDN or a UUID.\n"
	      "Exit status: 0 success, 1 operation failed, 2 usage error, 3 invalid manifest or\n"
	      "configuration, 4 database error, 5 plugin could not be loaded, 6 busy: try again\n"
	      "later (device add/register/delete of a device amtprovd is working on).\n",
	      out);
}

static int exit_for(int code)
{
	struct amtprov_error e = {.code = code};

	return tool_exit_code(&e);
}

static void print_error(const struct amtprov_error *err)
{
	if (err->where[0])
		fprintf(stderr, "amtprov: %s: %s\n", err->where, err->msg);
	else
		fprintf(stderr, "amtprov: %s\n", err->msg[0] ? err->msg : amtprov_strerror(err->code));
}

static void emit_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	fputc('\n', stdout);
	json_decref(j);
}

/* Opens the site; on failure prints every problem and returns an exit code. */
static int open_site(struct cli *c, int flags, struct site **out)
{
	struct site_options opt = {
		.manifest = c->manifest, .flags = flags, .log = c->log};
	struct manifest_problems probs = {0};
	struct amtprov_error err;
	int rc;

	if (!c->manifest) {
		fprintf(stderr, "amtprov: no manifest: use -m FILE or set AMTPROV_MANIFEST\n");
		return EXIT_USAGE;
	}
	amtprov_error_clear(&err);
	rc = site_open(&opt, out, &probs, &err);
	if (probs.count)
		manifest_problems_print(&probs, c->manifest, stderr);
	manifest_problems_free(&probs);
	if (rc != AMTPROV_OK) {
		if (rc != AMTPROV_E_CONFIG || !probs.count)
			print_error(&err);
		return tool_exit_code(&err);
	}
	return EXIT_OK;
}

/* ---------------- manifest ---------------- */

static int cmd_manifest(struct cli *c, int argc, char **argv)
{
	int no_plugins = 0, rc;
	struct site *s = NULL;
	static const struct option opts[] = {
		{"no-plugins", no_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'}, {0}};
	int o;

	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		fprintf(stderr, "amtprov: usage: amtprov -m FILE manifest check [--no-plugins]\n");
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	/* 0, not 1: glibc then re-reads the option string, so NAME may come after --stdin
	 * (main parsed with '+', which stops at the first non-option). */
	optind = 0;
	while ((o = getopt_long(argc, argv, "nh", opts, NULL)) != -1) {
		if (o == 'n')
			no_plugins = 1;
		else if (o == 'h') {
			puts("Usage: amtprov -m FILE manifest check [--no-plugins]\n"
			     "Validates the manifest completely (every error with its JSON path),\n"
			     "checks that every file it names is readable, then loads its plugins\n"
			     "and checks their capabilities. Nothing is created or changed.");
			return EXIT_OK;
		} else
			return EXIT_USAGE;
	}
	if (optind < argc)
		c->manifest = argv[optind];
	/* With the plugins, the passwords the site sets on AMT are read from the credential
	 * store and checked against AMT's rule, as amtprovd does at start. */
	rc = open_site(c, SITE_NO_DB | SITE_CHECK_ONLY |
				  (no_plugins ? SITE_NO_PLUGINS : SITE_CHECK_AMT_PASSWORDS),
		       &s);
	if (rc == EXIT_OK) {
		struct manifest_problems probs = {0};

		/* The files the site reads must be there now, not at the first device. */
		if (manifest_check_inputs(site_manifest(s), &probs)) {
			manifest_problems_print(&probs, c->manifest, stderr);
			rc = EXIT_CONFIG;
		}
		manifest_problems_free(&probs);
	}
	if (rc == EXIT_OK) {
		struct manifest *m = site_manifest(s);

		if (c->json) {
			json_t *j = json_pack("{s:b,s:s,s:s,s:s,s:s,s:i}", "valid", 1, "site",
					      m->site_name, "service_point_fqdn",
					      m->service_point_fqdn, "dns_suffix", m->dns_suffix,
					      "database", m->database_path, "plugins",
					      (int)m->n_plugins);
			emit_json(j);
		} else {
			printf("%s: valid (site %s, service point %s, %zu plugin instance%s%s)\n",
			       c->manifest, m->site_name, m->service_point_fqdn, m->n_plugins,
			       m->n_plugins == 1 ? "" : "s", no_plugins ? ", plugins not loaded" : " loaded");
		}
	} else if (c->json) {
		emit_json(json_pack("{s:b}", "valid", 0));
	}
	site_close(s);
	return rc;
}

/* ---------------- db ---------------- */

static int cmd_db(struct cli *c, int argc, char **argv)
{
	struct site *s = NULL;
	struct amtprov_error err;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "amtprov: usage: amtprov db init|check\n");
		return EXIT_USAGE;
	}
	amtprov_error_clear(&err);
	if (strcmp(argv[1], "init") == 0) {
		rc = open_site(c, SITE_CREATE_DB | SITE_NO_PLUGINS, &s);
		if (rc)
			return rc;
		if (c->json)
			emit_json(json_pack("{s:s,s:i}", "database", store_path(site_store(s)),
					    "schema_version", store_schema_version(site_store(s))));
		else
			printf("site database %s ready (schema %d)\n", store_path(site_store(s)),
			       store_schema_version(site_store(s)));
		site_close(s);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "check") == 0) {
		rc = open_site(c, SITE_NO_PLUGINS | SITE_READONLY_DB, &s);
		if (rc)
			return rc;
		rc = store_check(site_store(s), &err);
		if (rc) {
			print_error(&err);
			site_close(s);
			return EXIT_DB;
		}
		if (c->json)
			emit_json(json_pack("{s:s,s:b}", "database", store_path(site_store(s)), "ok", 1));
		else
			printf("%s: ok\n", store_path(site_store(s)));
		site_close(s);
		return EXIT_OK;
	}
	fprintf(stderr, "amtprov: unknown db command '%s'\n", argv[1]);
	return EXIT_USAGE;
}

/* ---------------- devices ---------------- */

/* The options `device add` and `device register` share, and what they were given. */
struct dev_args {
	struct device_input in;
	const char *from_json;
	json_t *jin;             /* keeps --from-json strings alive */
	const char *url;         /* register only */
	const char *token_file;  /* register only */
	const char *cacert;      /* register only */
	int replace;             /* add only: an administrator confirms a changed identity */
};

static void device_add_usage(FILE *out)
{
	fputs("Usage: amtprov -m FILE device add --fqdn FQDN --uuid UUID --amt-version VER\n"
	      "                [--wired-ip IP] [--otp-hash HEX] [--wireless]\n"
	      "                [--provisioning-state pre|in|post]\n"
	      "                [--manufacturer TEXT] [--model TEXT]\n"
	      "                [--replace]\n"
	      "       amtprov -m FILE device add --from-json FILE [--replace]\n"
	      "Registers a device for provisioning (R-PROV-02/03). A device whose AMT is\n"
	      "already provisioned ('post') is refused (R-PROV-01); 'pre' and 'in' (waiting\n"
	      "for remote configuration) are accepted.\n"
	      "A known device (same FQDN and UUID) registers again when its AMT was reset or\n"
	      "the computer re-imaged: the new report replaces the old and provisioning starts\n"
	      "over from REGISTERED; its earlier certificates are revoked Superseded then\n"
	      "(R-REV-02b). Refused while BLOCKED or NEED_UNPROVISION; deferred (exit 6) while\n"
	      "amtprovd is working on it (an -ING state or CA_WAITING). See docs/states.md.\n"
	      "  --replace   confirm that a known FQDN now has another UUID (system board\n"
	      "              replaced) or a known UUID another FQDN (computer renamed)\n"
	      "Exit status: 0 registered, re-registered or nothing to do (a known device that\n"
	      "amtprov configured reports 'post'), 1 refused (R-PROV-01, blocked, unprovision\n"
	      "pending, another device's FQDN or UUID), 2 usage error, 3 invalid manifest,\n"
	      "4 database error, 6 the device is busy: register again later.\n",
	      out);
}

static void device_register_usage(FILE *out)
{
	fputs("Usage: amtprov device register --url https://HOST:PORT --token-file FILE\n"
	      "                [--cacert FILE] (--from-json FILE | DEVICE OPTIONS)\n"
	      "Registers a device through amtprovd's HTTPS API, as a host agent does. DEVICE\n"
	      "OPTIONS are those of 'amtprov device add'. The token file holds the host's\n"
	      "enrollment secret ('amtprov enroll-secret', for this FQDN only) or an\n"
	      "administrator token (one trailing newline is ignored). No manifest is needed.\n"
	      "A known device registers again as with 'amtprov device add' (the server never\n"
	      "accepts another device's FQDN or UUID: that takes 'device add --replace').\n"
	      "Exit status: 0 registered, re-registered or nothing to do, 1 refused (R-PROV-01,\n"
	      "blocked, unprovision pending, another device's FQDN or UUID, a name or address\n"
	      "the site refuses, a secret for another FQDN), rejected token or\n"
	      "server unreachable, 2 usage error or input the server found invalid, 6 the\n"
	      "device or the server is busy: register again later (Retry-After).\n",
	      out);
}

/* Parses the options; returns -1 to go on, else an exit code. */
static int device_args(int argc, char **argv, int reg, struct dev_args *a)
{
	static const struct option opts[] = {
		{"fqdn", required_argument, NULL, 'f'},
		{"uuid", required_argument, NULL, 'u'},
		{"amt-version", required_argument, NULL, 'a'},
		{"wired-ip", required_argument, NULL, 'i'},
		{"otp-hash", required_argument, NULL, 'o'},
		{"wireless", no_argument, NULL, 'w'},
		{"provisioning-state", required_argument, NULL, 'p'},
		{"manufacturer", required_argument, NULL, 'M'},
		{"model", required_argument, NULL, 'D'},
		{"from-json", required_argument, NULL, 'J'},
		{"url", required_argument, NULL, 'U'},
		{"token-file", required_argument, NULL, 'T'},
		{"cacert", required_argument, NULL, 'C'},
		{"replace", no_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{0}};
	void (*help)(FILE *) = reg ? device_register_usage : device_add_usage;
	const char *field = NULL;
	char msg[256];
	int o;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'f': a->in.fqdn = optarg; break;
		case 'u': a->in.uuid = optarg; break;
		case 'a': a->in.amt_version = optarg; break;
		case 'i': a->in.wired_ip = optarg; break;
		case 'o': a->in.otp_hash = optarg; break;
		case 'w': a->in.wireless = 1; break;
		case 'p': a->in.provisioning_state = optarg; break;
		case 'M': a->in.manufacturer = optarg; break;
		case 'D': a->in.model = optarg; break;
		case 'J': a->from_json = optarg; break;
		case 'U': if (!reg) goto bad_opt; a->url = optarg; break;
		case 'T': if (!reg) goto bad_opt; a->token_file = optarg; break;
		case 'C': if (!reg) goto bad_opt; a->cacert = optarg; break;
		case 'R':
			if (reg) {
				/* A changed identity is an administrator's decision, confirmed on
				 * the site database only. */
				fprintf(stderr, "amtprov: --replace is for 'amtprov -m FILE device add' "
						"on the site; the API never replaces\n");
				return EXIT_USAGE;
			}
			a->replace = 1;
			break;
		case 'h': help(stdout); return EXIT_OK;
		default: help(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "amtprov: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (a->from_json) {
		json_error_t jerr;

		if (a->in.fqdn || a->in.uuid || a->in.amt_version || a->in.wired_ip ||
		    a->in.otp_hash || a->in.wireless || a->in.provisioning_state ||
		    a->in.manufacturer || a->in.model) {
			fprintf(stderr, "amtprov: --from-json replaces the device options\n");
			return EXIT_USAGE;
		}
		a->jin = json_load_file(a->from_json, JSON_REJECT_DUPLICATES, &jerr);
		if (!a->jin) {
			fprintf(stderr, "amtprov: %s:%d:%d: %s\n", a->from_json, jerr.line,
				jerr.column, jerr.text);
			return EXIT_USAGE;
		}
		if (device_input_from_json(a->jin, &a->in, &field, msg, sizeof(msg)) != AMTPROV_OK) {
			fprintf(stderr, "amtprov: %s: %s\n", a->from_json, msg);
			return EXIT_USAGE;
		}
	} else if (!a->in.fqdn || !a->in.uuid || !a->in.amt_version) {
		fprintf(stderr, "amtprov: device %s needs --fqdn, --uuid and --amt-version\n",
			reg ? "register" : "add");
		return EXIT_USAGE;
	}
	/* The same checks as the API's (core/site/device_input.c), before anything is opened. */
	if (device_input_check(&a->in, &field, msg, sizeof(msg)) != AMTPROV_OK) {
		fprintf(stderr, "amtprov: %s: %s\n", field, msg);
		return EXIT_USAGE;
	}
	return -1;
bad_opt:
	help(stderr);
	return EXIT_USAGE;
}

static int cmd_device_add(struct cli *c, int argc, char **argv)
{
	struct dev_args a;
	struct registration reg;
	struct site *s = NULL;
	struct amtprov_error err;
	const struct store_device *dev = &reg.dev;
	int rc;

	rc = device_args(argc, argv, 0, &a);
	if (rc >= 0)
		goto out;
	rc = open_site(c, SITE_NO_PLUGINS, &s);
	if (rc)
		goto out;
	amtprov_error_clear(&err);
	if (registration_apply(s, &a.in, a.replace, "cli", &reg, &err) != AMTPROV_OK) {
		print_error(&err);
		rc = exit_for(err.code);
		goto out;
	}
	switch (reg.verdict) {
	case REG_ADDED:
	case REG_REREGISTERED:
	case REG_UNCHANGED:
		if (c->json) {
			json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:s}", "id", (json_int_t)dev->id,
					      "fqdn", dev->fqdn, "uuid", dev->uuid, "state",
					      dev->state, "result",
					      registration_verdict_name(reg.verdict));

			if (j && reg.previous_state[0])
				json_object_set_new(j, "previous_state",
						    json_string(reg.previous_state));
			emit_json(j);
		} else if (reg.verdict == REG_ADDED) {
			printf("registered %s (id %lld, AMT %s)\n", dev->fqdn, (long long)dev->id,
			       dev->amt_version);
		} else if (reg.verdict == REG_REREGISTERED) {
			printf("re-registered %s (id %lld, AMT %s, was %s, now %s)\n", dev->fqdn,
			       (long long)dev->id, dev->amt_version, reg.previous_state, dev->state);
		} else {
			printf("%s\n", reg.message);
		}
		rc = EXIT_OK;
		break;
	default:
		fprintf(stderr, "amtprov: refused %s%s%s%s: %s\n", a.in.fqdn,
			reg.field ? " (" : "", reg.field ? reg.field : "", reg.field ? ")" : "",
			reg.message);
		rc = reg.verdict == REG_BUSY ? EXIT_RETRY : EXIT_FAIL;
		break;
	}
out:
	site_close(s);
	json_decref(a.jin);
	return rc;
}

/* ---- device register: the host agent's side of the API (docs/api.md) ---- */

struct http_body {
	char *data;
	size_t len;
};

static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
	struct http_body *b = arg;
	size_t add = size * n;
	char *p;

	/* An answer is a few hundred bytes; anything huge is not this API. */
	if (b->len + add > 65536)
		return 0;
	p = realloc(b->data, b->len + add + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, ptr, add);
	b->len += add;
	p[b->len] = '\0';
	b->data = p;
	return add;
}

/* Reads a token or secret file: at most @p max bytes, one trailing newline dropped. */
static struct amtprov_secret *read_secret(const char *file, FILE *stream, size_t max)
{
	struct amtprov_secret *sec;
	struct amtprov_error err;
	char *data = NULL;
	size_t len = 0;

	amtprov_error_clear(&err);
	if (file) {
		if (util_read_file(file, max, &data, &len, &err) != AMTPROV_OK) {
			print_error(&err);
			return NULL;
		}
	} else {
		size_t cap = 4096, n;

		data = malloc(cap + 1);
		while (data && (n = fread(data + len, 1, cap - len, stream)) > 0) {
			len += n;
			if (len == cap) {
				char *bigger;

				if (cap >= max) {
					fprintf(stderr, "amtprov: the secret is longer than %zu bytes\n",
						max);
					util_wipe(data, len);
					free(data);
					return NULL;
				}
				/* Grow by copying, so no stale copy of the secret is left behind. */
				bigger = malloc(cap * 2 + 1);
				if (bigger)
					memcpy(bigger, data, len);
				util_wipe(data, len);
				free(data);
				data = bigger;
				cap *= 2;
			}
		}
		if (!data) {
			fprintf(stderr, "amtprov: out of memory\n");
			return NULL;
		}
	}
	if (len && data[len - 1] == '\n')
		len--;
	if (len && data[len - 1] == '\r')
		len--;
	sec = len ? util_secret_new(len) : NULL;
	if (sec)
		memcpy(sec->data, data, len);
	else
		fprintf(stderr, "amtprov: %s%sthe secret is empty\n", file ? file : "",
			file ? ": " : "");
	util_wipe(data, len);
	free(data);
	return sec;
}

static int cmd_device_register(struct cli *c, int argc, char **argv)
{
	struct dev_args a;
	struct amtprov_secret *tok = NULL;
	struct curl_slist *hdrs = NULL;
	struct http_body resp = {0};
	char *body = NULL, url[2048], errbuf[CURL_ERROR_SIZE];
	json_t *jb = NULL, *jr = NULL;
	const char *msg, *result, *why;
	long code = 0;
	CURL *curl = NULL;
	CURLcode cc;
	size_t ulen;
	int rc, global = 0;

	rc = device_args(argc, argv, 1, &a);
	if (rc >= 0)
		goto out;
	rc = EXIT_USAGE;
	if (!a.url || !a.token_file) {
		fprintf(stderr, "amtprov: device register needs --url and --token-file\n");
		goto out;
	}
	/* The token must never cross the network in the clear. */
	if (strncasecmp(a.url, "https://", 8) != 0) {
		fprintf(stderr, "amtprov: --url must be an https:// URL\n");
		goto out;
	}
	ulen = strlen(a.url);
	while (ulen > 8 && a.url[ulen - 1] == '/')
		ulen--;
	if ((size_t)snprintf(url, sizeof(url), "%.*s/v1/devices", (int)ulen, a.url) >= sizeof(url)) {
		fprintf(stderr, "amtprov: --url is too long\n");
		goto out;
	}
	tok = read_secret(a.token_file, NULL, 4096);
	if (!tok) {
		rc = EXIT_FAIL;
		goto out;
	}
	jb = json_pack("{s:s,s:s,s:s,s:b,s:s}", "fqdn", a.in.fqdn, "uuid", a.in.uuid,
		       "amt_version", a.in.amt_version, "wireless", a.in.wireless,
		       "provisioning_state",
		       a.in.provisioning_state ? a.in.provisioning_state : "pre");
	if (jb && a.in.wired_ip)
		json_object_set_new(jb, "wired_ip", json_string(a.in.wired_ip));
	if (jb && a.in.otp_hash)
		json_object_set_new(jb, "otp_hash", json_string(a.in.otp_hash));
	if (jb && a.in.manufacturer)
		json_object_set_new(jb, "manufacturer", json_string(a.in.manufacturer));
	if (jb && a.in.model)
		json_object_set_new(jb, "model", json_string(a.in.model));
	body = jb ? json_dumps(jb, JSON_COMPACT) : NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "amtprov: cannot initialise libcurl\n");
		rc = EXIT_FAIL;
		goto out;
	}
	global = 1;
	curl = curl_easy_init();
	if (!body || !curl) {
		fprintf(stderr, "amtprov: out of memory\n");
		rc = EXIT_FAIL;
		goto out;
	}
	if (strlen(tok->data) != tok->len || strpbrk(tok->data, "\r\n")) {
		fprintf(stderr, "amtprov: %s: the token must be one line\n", a.token_file);
		goto out;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	/* libcurl builds the Authorization header itself: no copy of the token is left in a
	 * header list this program cannot wipe. */
	curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
	curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, tok->data);
	errbuf[0] = '\0';
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (a.cacert)
		curl_easy_setopt(curl, CURLOPT_CAINFO, a.cacert);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		fprintf(stderr, "amtprov: %s: %s\n", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		rc = EXIT_FAIL;
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	jr = resp.data ? json_loads(resp.data, 0, NULL) : NULL;
	msg = jr ? json_string_value(json_object_get(jr, "error")) : NULL;
	result = jr ? json_string_value(json_object_get(jr, "result")) : NULL;
	if (code == 201 || code == 200) {
		if (c->json && jr) {
			emit_json(jr);
			jr = NULL;
		} else {
			const char *f = json_string_value(json_object_get(jr, "fqdn"));
			const char *st = json_string_value(json_object_get(jr, "state"));
			const char *was = json_string_value(json_object_get(jr, "previous_state"));

			printf("%s %s (id %lld, state %s%s%s)\n",
			       code == 201 ? "registered" : result ? result : "registered",
			       f ? f : a.in.fqdn,
			       (long long)json_integer_value(json_object_get(jr, "id")), st ? st : "?",
			       was ? ", was " : "", was ? was : "");
		}
		rc = EXIT_OK;
		goto out;
	}
	why = jr ? json_string_value(json_object_get(jr, "reason")) : NULL;
	if (code == 422 || code == 403 || (code == 409 && result))
		fprintf(stderr, "amtprov: refused %s: %s\n", a.in.fqdn, why ? why : "(no reason)");
	else
		fprintf(stderr, "amtprov: %s: HTTP %ld: %s%s%s\n", url, code,
			msg ? msg : "(no detail)", why ? ": " : "", why ? why : "");
	/* Busy: the device is in a step, or the server's database is (Retry-After). */
	rc = code == 400					       ? EXIT_USAGE
	     : code == 503 || (result && !strcmp(result, "busy")) ? EXIT_RETRY
								       : EXIT_FAIL;
out:
	if (curl)
		curl_easy_cleanup(curl);
	curl_slist_free_all(hdrs);
	if (global)
		curl_global_cleanup();
	util_secret_free(tok);
	free(body);
	free(resp.data);
	json_decref(jr);
	json_decref(jb);
	json_decref(a.jin);
	return rc;
}

/* A time in --json: ISO 8601 UTC as in the text output; null for "never" (0). */
static json_t *json_time(int64_t t)
{
	char buf[32];

	return t ? json_string(util_fmt_time(t, buf, sizeof(buf))) : json_null();
}

static json_t *device_json(const struct store_device *d)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:i,s:s,s:i,s:o,s:b,s:b,s:o,s:o,s:i}",
			 "id",
			 (json_int_t)d->id, "fqdn", d->fqdn, "uuid", d->uuid, "amt_version",
			 d->amt_version, "wired_ip", d->wired_ip, "otp_hash", d->otp_hash, "state",
			 d->state, "state_since", json_time(d->state_since), "last_error_code",
			 d->last_error_code, "last_error", d->last_error, "attempts", d->attempts,
			 "next_attempt_at", json_time(d->next_attempt_at), "wireless_capable",
			 d->wireless_capable, "blocked", d->blocked, "created_at",
			 json_time(d->created_at), "updated_at", json_time(d->updated_at),
			 "in_flight", d->in_flight);
}

struct list_ctx {
	struct cli *c;
	json_t *arr;
	int n;
	int deleted; /* list the tombstones of deleted devices (--state DELETED) */
};

static int list_device(void *ctx, const struct store_device *d)
{
	struct list_ctx *l = ctx;

	if (!l->deleted && strcmp(d->state, STORE_DEVICE_DELETED) == 0)
		return 0; /* no longer in the inventory; their history is kept */
	if (l->arr) {
		json_array_append_new(l->arr, device_json(d));
	} else {
		if (l->n == 0)
			printf("%-6s %-36s %-10s %-28s %s\n", "ID", "FQDN", "AMT", "STATE", "LAST ERROR");
		printf("%-6lld %-36s %-10s %-28s %s\n", (long long)d->id, d->fqdn, d->amt_version,
		       d->state, d->last_error);
	}
	l->n++;
	return 0;
}

static int cmd_device_list(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"state", required_argument, NULL, 's'},
					     {"watch", optional_argument, NULL, 'w'},
					     {"count", required_argument, NULL, 'c'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	const char *state = NULL;
	char state_uc[64];
	double watch = 0;
	long count = 0;
	char *end;
	struct list_ctx l = {.c = c};
	struct site *s = NULL;
	struct amtprov_error err;
	int o, rc;

	optind = 1;
	while ((o = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		if (o == 's') {
			state = optarg;
		} else if (o == 'w') {
			/* --watch[=SECONDS]: 2 s unless said, at least 0.1 s, at most a day. */
			watch = optarg ? strtod(optarg, &end) : 2.0;
			if ((optarg && (*end || end == optarg)) || !(watch >= 0.1 && watch <= 86400)) {
				fprintf(stderr, "amtprov: --watch takes seconds, 0.1 to 86400\n");
				return EXIT_USAGE;
			}
		} else if (o == 'c') {
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || count < 1) {
				fprintf(stderr, "amtprov: --count takes a positive number\n");
				return EXIT_USAGE;
			}
		} else if (o == 'h') {
			puts("Usage: amtprov -m FILE device list [--state STATE|DELETED]\n"
			     "       amtprov -m FILE device list --watch[=SECONDS] [--count N]\n"
			     "--watch shows the count of devices by state and the provisioning\n"
			     "throughput, read again every SECONDS (2); --count stops after N readings\n"
			     "(default: until interrupted). With --json, one JSON object per reading.\n"
			     "Deleted devices ('device delete') are listed only with --state DELETED.");
			return EXIT_OK;
		} else {
			return EXIT_USAGE;
		}
	}
	if (count && !watch) {
		fprintf(stderr, "amtprov: --count goes with --watch\n");
		return EXIT_USAGE;
	}
	if (watch && state) {
		fprintf(stderr, "amtprov: --watch counts every state; it takes no --state\n");
		return EXIT_USAGE;
	}
	if (state) {
		/* States are upper case in the database; "failed" means FAILED. */
		size_t i;

		for (i = 0; state[i] && i < sizeof(state_uc) - 1; i++)
			state_uc[i] = (char)toupper((unsigned char)state[i]);
		state_uc[i] = '\0';
		l.deleted = strcmp(state_uc, STORE_DEVICE_DELETED) == 0;
		if (state[i] || (device_state_parse(state_uc) == DS_INVALID && !l.deleted)) {
			fprintf(stderr, "amtprov: unknown state '%s' (see 'amtprov states')\n",
				state);
			return EXIT_USAGE;
		}
		state = state_uc;
	}
	rc = open_site(c, SITE_NO_PLUGINS | SITE_READONLY_DB, &s);
	if (rc)
		return rc;
	if (watch) {
		rc = cmd_watch(site_store(s), watch, count, c->json);
		site_close(s);
		return rc;
	}
	if (c->json)
		l.arr = json_array();
	amtprov_error_clear(&err);
	rc = store_device_list(site_store(s), state, list_device, &l, &err);
	if (rc) {
		print_error(&err);
		json_decref(l.arr);
		site_close(s);
		return exit_for(rc);
	}
	if (l.arr)
		emit_json(l.arr);
	else if (l.n == 0)
		printf("no devices%s%s\n", state ? " in state " : "", state ? state : "");
	site_close(s);
	return EXIT_OK;
}

static const char *purpose_name(int p)
{
	switch (p) {
	case AMTPROV_PURPOSE_WEB_SERVER: return "web-server";
	case AMTPROV_PURPOSE_CLIENT_8021X: return "8021x-client";
	case AMTPROV_PURPOSE_PROVISIONING: return "provisioning";
	default: return "?";
	}
}

static int purpose_parse(const char *s)
{
	if (strcmp(s, "web-server") == 0)
		return AMTPROV_PURPOSE_WEB_SERVER;
	if (strcmp(s, "8021x-client") == 0)
		return AMTPROV_PURPOSE_CLIENT_8021X;
	if (strcmp(s, "provisioning") == 0)
		return AMTPROV_PURPOSE_PROVISIONING;
	return -1;
}

static json_t *cert_json(const struct store_cert *x)
{
	return json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:s,s:i,s:o}", "id",
			 (json_int_t)x->id, "device_id", (json_int_t)x->device_id, "serial",
			 x->serial_hex, "issuer", x->issuer, "subject", x->subject, "purpose",
			 purpose_name(x->purpose), "profile", x->profile, "template",
			 x->template_name, "ca", x->ca_instance, "sha256", x->sha256, "not_before",
			 json_time(x->not_before), "not_after", json_time(x->not_after), "status",
			 x->status, "revocation_reason", x->revocation_reason, "revoked_at",
			 json_time(x->revoked_at));
}

struct cert_ctx {
	json_t *arr;
	int n;
	int64_t now;
};

static int list_cert(void *ctx, const struct store_cert *x)
{
	struct cert_ctx *l = ctx;
	char na[32];

	if (l->arr) {
		json_array_append_new(l->arr, cert_json(x));
	} else {
		if (l->n == 0)
			printf("%-6s %-32s %-13s %-15s %-21s %6s %s\n", "ID", "SERIAL", "PURPOSE",
			       "STATUS", "NOT AFTER", "DAYS", "SUBJECT");
		printf("%-6lld %-32s %-13s %-15s %-21s %6lld %s\n", (long long)x->id,
		       x->serial_hex, purpose_name(x->purpose), x->status,
		       util_fmt_time(x->not_after, na, sizeof(na)),
		       (long long)((x->not_after - l->now) / 86400), x->subject);
	}
	l->n++;
	return 0;
}

/* ---------------- provisioning certificate: check and import ---------------- */

/* Where the certificate comes from, and what the checks need besides it. */
struct pc_args {
	const char *cert, *key, *pkcs12, *pw_cred, *pw_file;
	const char **crls;
	size_t n_crls;
	const char *device, *device_hashes, *device_suffix, *device_ad;
	const char *service_point, *force_name;
	long long now;
	int have_now;
	int amt_major;
};

static void cert_check_usage(FILE *out)
{
	fputs("Usage: amtprov [-m FILE] cert check [--cert FILE [--key FILE] | --pkcs12 FILE\n"
	      "                [--password-credential NAME | --password-file FILE]] [--crl FILE]...\n"
	      "                [--device FQDN [--device-hashes FILE] [--device-suffix SUFFIX]\n"
	      "                [--device-ad-domain DOMAIN]] [--service-point FQDN]\n"
	      "                [--now UNIX_SECONDS] [--amt-version MAJOR]\n"
	      "Checks the provisioning certificate the manifest names (R-PC-07), or the one given,\n"
	      "against R-PC-01..08 and the CSME 16 rules: every check with PASS/WARN/FAIL, expected\n"
	      "and actual, and the root thumbprints to add to AMT (R-PC-04). With --device, also\n"
	      "the device's namespace (R-PC-05), trusted DNS suffix and reported root hashes\n"
	      "(--device-hashes: lines 'sha256 HEX'). --amt-version 22 (the newest firmware the\n"
	      "chain must serve) warns when AMT 22's RSA 3072 and SHA-384 are not met.\n"
	      "Exit 0 when nothing fails, 1 otherwise.\n",
	      out);
}

static void cert_import_usage(FILE *out)
{
	fputs("Usage: amtprov -m FILE cert import (--cert FILE [--key FILE] | --pkcs12 FILE\n"
	      "                (--password-credential NAME | --password-file FILE))\n"
	      "                [--force-name NAME] [--crl FILE]... [--now UNIX_SECONDS]\n"
	      "Runs every 'cert check' check; refuses (exit 1, reasons printed) when one fails;\n"
	      "otherwise copies the chain (leaf -> root) and key (0600) into\n"
	      "<state_dir>/provisioning/ and prints the manifest snippet that names them. The\n"
	      "manifest is not edited: the certificate takes effect once it names it (R-PC-07).\n",
	      out);
}

/* Parses the options shared by check and import. @return -1 to continue, else an exit. */
static int pc_parse(int argc, char **argv, int import, struct pc_args *a)
{
	static const struct option opts[] = {
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"pkcs12", required_argument, NULL, 'p'},
		{"password-credential", required_argument, NULL, 'P'},
		{"password-file", required_argument, NULL, 'F'},
		{"crl", required_argument, NULL, 'r'},
		{"device", required_argument, NULL, 'd'},
		{"device-hashes", required_argument, NULL, 'H'},
		{"device-suffix", required_argument, NULL, 'S'},
		{"device-ad-domain", required_argument, NULL, 'A'},
		{"service-point", required_argument, NULL, 's'},
		{"force-name", required_argument, NULL, 'N'},
		{"now", required_argument, NULL, 'n'},
		{"amt-version", required_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{0}};
	void (*use)(FILE *) = import ? cert_import_usage : cert_check_usage;
	int o;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': a->cert = optarg; break;
		case 'k': a->key = optarg; break;
		case 'p': a->pkcs12 = optarg; break;
		case 'P': a->pw_cred = optarg; break;
		case 'F': a->pw_file = optarg; break;
		case 'r': {
			const char **v = realloc(a->crls, (a->n_crls + 1) * sizeof(*v));

			if (!v)
				return EXIT_FAIL;
			a->crls = v;
			a->crls[a->n_crls++] = optarg;
			break;
		}
		case 'd': a->device = optarg; break;
		case 'H': a->device_hashes = optarg; break;
		case 'S': a->device_suffix = optarg; break;
		case 'A': a->device_ad = optarg; break;
		case 's': a->service_point = optarg; break;
		case 'N': a->force_name = optarg; break;
		case 'n':
			if (util_parse_ll(optarg, 0, INT64_MAX / 2, &a->now) < 0) {
				fprintf(stderr, "amtprov: --now takes Unix seconds\n");
				return EXIT_USAGE;
			}
			a->have_now = 1;
			break;
		case 'V': {
			long long v;

			if (util_parse_ll(optarg, 1, 99, &v) < 0) {
				fprintf(stderr, "amtprov: --amt-version takes an AMT major version, "
						"e.g. 22\n");
				return EXIT_USAGE;
			}
			a->amt_major = (int)v;
			break;
		}
		case 'h': use(stdout); return EXIT_OK;
		default: use(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "amtprov: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (a->cert && a->pkcs12) {
		fprintf(stderr, "amtprov: --cert and --pkcs12 are mutually exclusive\n");
		return EXIT_USAGE;
	}
	if (a->key && !a->cert) {
		fprintf(stderr, "amtprov: --key goes with --cert\n");
		return EXIT_USAGE;
	}
	if ((a->pw_cred || a->pw_file) && !a->pkcs12) {
		fprintf(stderr, "amtprov: --password-credential/--password-file go with --pkcs12\n");
		return EXIT_USAGE;
	}
	if (a->pw_cred && a->pw_file) {
		fprintf(stderr, "amtprov: give --password-credential or --password-file, not both\n");
		return EXIT_USAGE;
	}
	if ((a->device_hashes || a->device_suffix || a->device_ad) && !a->device) {
		fprintf(stderr, "amtprov: the --device-* options need --device FQDN\n");
		return EXIT_USAGE;
	}
	if (import && !a->cert && !a->pkcs12) {
		fprintf(stderr, "amtprov: cert import needs --cert FILE or --pkcs12 FILE\n");
		return EXIT_USAGE;
	}
	if (a->force_name && (!*a->force_name || a->force_name[0] == '.' ||
			      strchr(a->force_name, '/') || strlen(a->force_name) > 100)) {
		fprintf(stderr, "amtprov: --force-name must be a plain file name (no '/', not "
				"starting with '.')\n");
		return EXIT_USAGE;
	}
	return -1;
}

/* Reads a password file (first line, without the newline) into a NUL-terminated secret. */
static int read_password_file(const char *file, struct amtprov_secret **out,
			      struct amtprov_error *err)
{
	char *d = NULL;
	size_t l = 0;
	int rc = util_read_file(file, 4096, &d, &l, err);

	if (rc != AMTPROV_OK)
		return rc;
	*out = util_secret_new(l + 1);
	if (*out) {
		size_t n = 0;

		while (n < l && d[n] != '\n' && d[n] != '\r')
			n++;
		memcpy((*out)->data, d, n);
		(*out)->len = n;
	}
	util_wipe(d, l);
	free(d);
	return *out ? AMTPROV_OK : amtprov_error_set(err, AMTPROV_E_NOMEM, file, "out of memory");
}

/*
 * Loads the certificate from the command line or, without one, from the manifest
 * (R-PC-07). The PKCS#12 password comes from the site's credential store or a file and is
 * never printed. @return an exit code.
 */
static int pc_load(struct site *s, const struct pc_args *a, struct preflight **pf)
{
	struct manifest *m = s ? site_manifest(s) : NULL;
	struct plugin_instance *cs = NULL;
	struct amtprov_secret *pw = NULL;
	struct amtprov_error err;
	int rc;

	amtprov_error_clear(&err);
	if (m && m->credstore)
		cs = plugin_host_find(site_plugins(s), m->credstore);
	if (a->cert) {
		rc = preflight_load_files(a->cert, a->key, pf, &err);
	} else if (a->pkcs12) {
		char *pass = NULL;

		rc = AMTPROV_OK;
		if (a->pw_file) {
			rc = read_password_file(a->pw_file, &pw, &err);
		} else if (a->pw_cred) {
			if (!cs)
				rc = amtprov_error_set(&err, AMTPROV_E_CONFIG, "/credentials/store",
						       "the site has no credential store to read "
						       "'%s' from", a->pw_cred);
			else
				rc = pi_credstore_get(cs, a->pw_cred, &pw, &err);
		}
		if (rc == AMTPROV_OK && pw) {
			pass = calloc(1, pw->len + 1);
			if (pass)
				memcpy(pass, pw->data, pw->len);
			else
				rc = amtprov_error_set(&err, AMTPROV_E_NOMEM, NULL, "out of memory");
		}
		if (rc == AMTPROV_OK)
			rc = preflight_load_pkcs12_file(a->pkcs12, pass, pf, &err);
		if (pass) {
			util_wipe(pass, pw->len);
			free(pass);
		}
		util_secret_free(pw);
	} else if (m) {
		rc = preflight_load_manifest(m, cs, pf, &err);
		if (rc != AMTPROV_OK) {
			print_error(&err);
			return rc == AMTPROV_E_AUTH ? EXIT_FAIL : tool_exit_code(&err);
		}
	} else {
		fprintf(stderr, "amtprov: no certificate: use -m FILE (the manifest's provisioning "
				"certificate), --cert FILE or --pkcs12 FILE\n");
		return EXIT_USAGE;
	}
	if (rc != AMTPROV_OK) {
		print_error(&err);
		return rc == AMTPROV_E_CONFIG ? EXIT_CONFIG : EXIT_FAIL;
	}
	for (size_t i = 0; i < a->n_crls; i++) {
		amtprov_error_clear(&err);
		if (preflight_add_crl_file(*pf, a->crls[i], &err) != AMTPROV_OK) {
			print_error(&err);
			preflight_free(*pf);
			*pf = NULL;
			return EXIT_FAIL;
		}
	}
	preflight_add_cdp_crls(*pf);
	return EXIT_OK;
}

/* Opens the site when there is a manifest: with plugins only when a credential is needed. */
static int pc_open(struct cli *c, const struct pc_args *a, int required, struct site **s)
{
	int need_cs = 0;

	*s = NULL;
	if (!c->manifest) {
		if (!required && (a->cert || (a->pkcs12 && !a->pw_cred)))
			return EXIT_OK;
		return open_site(c, SITE_NO_DB | SITE_NO_PLUGINS, s); /* prints "no manifest" */
	}
	if (a->pw_cred) {
		need_cs = 1;
	} else if (!a->cert && !a->pkcs12) {
		/* The manifest's own certificate: its PKCS#12 password is a credential. */
		struct manifest *m = NULL;
		struct amtprov_error err;

		amtprov_error_clear(&err);
		if (manifest_load(c->manifest, &m, NULL, &err) == AMTPROV_OK) {
			need_cs = m->provcert_pkcs12_password != NULL;
			manifest_free(m);
		}
	}
	return open_site(c, SITE_NO_DB | (need_cs ? 0 : SITE_NO_PLUGINS), s);
}

static int pc_run(struct site *s, const struct pc_args *a, struct preflight *pf,
		  struct pf_report *r)
{
	struct manifest *m = s ? site_manifest(s) : NULL;
	struct pf_options opt = {0};
	struct pf_hash *hashes = NULL;
	struct amtprov_error err;
	int rc;

	opt.service_point_fqdn = a->service_point ? a->service_point
				 : m		  ? m->service_point_fqdn
						  : NULL;
	opt.now = a->have_now ? a->now : (s ? site_now(s) : util_now());
	opt.amt_major = a->amt_major;
	if (m) {
		opt.warning_days = m->maintenance.provcert_warning_days;
		opt.error_days = m->maintenance.provcert_error_days;
	}
	if (preflight_run(pf, &opt, r) != AMTPROV_OK)
		return EXIT_FAIL;
	if (a->device) {
		struct pf_device dev = {.fqdn = a->device, .ad_domain = a->device_ad,
					.trusted_dns_suffix = a->device_suffix};

		amtprov_error_clear(&err);
		if (a->device_hashes) {
			char *text = NULL;
			size_t len = 0;

			rc = util_read_file(a->device_hashes, 1u << 20, &text, &len, &err);
			if (rc == AMTPROV_OK)
				rc = preflight_parse_hashes(text, a->device_hashes, &hashes,
							    &dev.n_hashes, &err);
			free(text);
			if (rc != AMTPROV_OK) {
				print_error(&err);
				return EXIT_USAGE;
			}
			dev.hashes = hashes;
			dev.hashes_known = 1;
		}
		rc = preflight_device(pf, &opt, &dev, r);
		free(hashes);
		if (rc != AMTPROV_OK)
			return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int cmd_cert_check(struct cli *c, int argc, char **argv)
{
	struct pc_args a = {0};
	struct site *s = NULL;
	struct preflight *pf = NULL;
	struct pf_report r = {0};
	int rc = pc_parse(argc, argv, 0, &a);

	if (rc >= 0)
		goto out;
	rc = pc_open(c, &a, 0, &s);
	if (rc)
		goto out;
	rc = pc_load(s, &a, &pf);
	if (rc)
		goto out;
	rc = pc_run(s, &a, pf, &r);
	if (rc)
		goto out;
	if (c->json)
		emit_json(pf_report_json(&r));
	else
		pf_report_print(&r, stdout, c->verbose);
	rc = r.failed ? EXIT_FAIL : EXIT_OK;
out:
	pf_report_free(&r);
	preflight_free(pf);
	site_close(s);
	free(a.crls);
	return rc;
}

/* Writes @p len bytes to a new file (never replaces one) with @p mode. */
static int write_new_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	size_t off = 0;

	if (fd < 0) {
		fprintf(stderr, "amtprov: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "amtprov: %s: %s\n", path, strerror(errno));
			close(fd);
			unlink(path);
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fprintf(stderr, "amtprov: %s: %s\n", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

static int cmd_cert_import(struct cli *c, int argc, char **argv)
{
	struct pc_args a = {0};
	struct site *s = NULL;
	struct preflight *pf = NULL;
	struct pf_report r = {0};
	struct amtprov_secret *key = NULL;
	struct amtprov_error err;
	char *chain = NULL, *dir = NULL, *cpath = NULL, *kpath = NULL;
	char base[128], t[32];
	size_t clen = 0;
	int rc = pc_parse(argc, argv, 1, &a);

	if (rc >= 0)
		goto out;
	rc = pc_open(c, &a, 1, &s);
	if (rc)
		goto out;
	rc = pc_load(s, &a, &pf);
	if (rc)
		goto out;
	rc = pc_run(s, &a, pf, &r);
	if (rc)
		goto out;
	if (r.failed) {
		/* Refused: the reasons on stdout (as for check), a one-line verdict on stderr. */
		if (c->json) {
			json_t *j = pf_report_json(&r);

			json_object_set_new(j, "imported", json_false());
			emit_json(j);
		} else {
			pf_report_print(&r, stdout, 0);
		}
		fprintf(stderr, "amtprov: refused: %zu check%s failed:", r.failed,
			r.failed == 1 ? "" : "s");
		for (size_t i = 0; i < r.n; i++)
			if (!r.items[i].ok)
				fprintf(stderr, " %s", r.items[i].id);
		fputc('\n', stderr);
		rc = EXIT_FAIL;
		goto out;
	}
	amtprov_error_clear(&err);
	rc = EXIT_FAIL;
	if (preflight_chain_pem(pf, &chain, &clen, &err) != AMTPROV_OK ||
	    preflight_key_pem(pf, &key, &err) != AMTPROV_OK) {
		print_error(&err);
		goto out;
	}
	dir = util_path_join(site_manifest(s)->state_dir, "provisioning");
	if (!dir || util_mkdir_p(dir, 0700, &err) != AMTPROV_OK) {
		print_error(&err);
		goto out;
	}
	if (a.force_name) {
		util_strlcpy(base, a.force_name, sizeof(base));
	} else {
		/* provcert-YYYYMMDDTHHMMSSZ: sorts by time, no ':' for file systems that mind. */
		size_t o = 0;

		util_fmt_time(a.have_now ? a.now : site_now(s), t, sizeof(t));
		o = (size_t)snprintf(base, sizeof(base), "provcert-");
		for (const char *p = t; *p && o + 1 < sizeof(base); p++)
			if (*p != '-' && *p != ':')
				base[o++] = *p;
		base[o] = '\0';
	}
	{
		char cn[160], kn[160];

		snprintf(cn, sizeof(cn), "%s.pem", base);
		snprintf(kn, sizeof(kn), "%s.key", base);
		cpath = util_path_join(dir, cn);
		kpath = util_path_join(dir, kn);
	}
	if (!cpath || !kpath)
		goto out;
	if (access(cpath, F_OK) == 0 || access(kpath, F_OK) == 0) {
		fprintf(stderr, "amtprov: %s already exists: choose another --force-name\n",
			access(cpath, F_OK) == 0 ? cpath : kpath);
		goto out;
	}
	if (write_new_file(kpath, key->data, key->len, 0600) < 0)
		goto out;
	if (write_new_file(cpath, chain, clen, 0644) < 0) {
		unlink(kpath);
		goto out;
	}
	if (c->json) {
		json_t *j = pf_report_json(&r);

		json_object_set_new(j, "imported", json_true());
		json_object_set_new(j, "certificate", json_string(cpath));
		json_object_set_new(j, "key", json_string(kpath));
		emit_json(j);
	} else {
		pf_report_print(&r, stdout, 0);
		printf("imported: chain %s, key %s (0600)\n"
		       "To use it, name it in %s (R-PC-07); it takes effect when the site reloads:\n"
		       "  \"provisioning_certificate\": {\n"
		       "    \"certificate\": \"%s\",\n"
		       "    \"key\": \"%s\"\n"
		       "  }\n",
		       cpath, kpath, site_manifest(s)->file, cpath, kpath);
	}
	rc = EXIT_OK;
out:
	util_secret_free(key);
	free(chain);
	free(dir);
	free(cpath);
	free(kpath);
	pf_report_free(&r);
	preflight_free(pf);
	site_close(s);
	free(a.crls);
	return rc;
}

static int cmd_cert_revoked(struct cli *c, int argc, char **argv);

static int cmd_cert(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"device", required_argument, NULL, 'd'},
					     {"purpose", required_argument, NULL, 'p'},
					     {"status", required_argument, NULL, 's'},
					     {"expiring-within", required_argument, NULL, 'e'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct store_cert_filter f = {0};
	const char *device = NULL;
	long long days = -1;
	struct cert_ctx l = {0};
	struct site *s = NULL;
	struct amtprov_error err;
	int o, rc;

	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return cmd_cert_check(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "import") == 0)
		return cmd_cert_import(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "revoked") == 0)
		return cmd_cert_revoked(c, argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "list") != 0) {
		fprintf(stderr, "amtprov: usage: amtprov cert list|check|import|revoked ...\n");
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	/* 0, not 1: glibc then re-reads the option string, so NAME may come after --stdin
	 * (main parsed with '+', which stops at the first non-option). */
	optind = 0;
	while ((o = getopt_long(argc, argv, "d:p:s:e:h", opts, NULL)) != -1) {
		switch (o) {
		case 'd': device = optarg; break;
		case 'p':
			f.purpose = purpose_parse(optarg);
			if (f.purpose < 0) {
				fprintf(stderr, "amtprov: --purpose is web-server, 8021x-client or "
						"provisioning\n");
				return EXIT_USAGE;
			}
			break;
		case 's': f.status = optarg; break;
		case 'e':
			if (util_parse_ll(optarg, 0, 36500, &days) < 0) {
				fprintf(stderr, "amtprov: --expiring-within takes a number of days\n");
				return EXIT_USAGE;
			}
			break;
		case 'h':
			puts("Usage: amtprov -m FILE cert list [--device DEVICE] [--purpose web-server|"
			     "8021x-client|provisioning]\n"
			     "                               [--status active|revoke-pending|revoked|"
			     "expired] [--expiring-within DAYS]");
			return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	rc = open_site(c, SITE_NO_PLUGINS | SITE_READONLY_DB, &s);
	if (rc)
		return rc;
	amtprov_error_clear(&err);
	l.now = site_now(s);
	if (device) {
		struct store_device d;

		if (store_device_find(site_store(s), device, &d, &err) != AMTPROV_OK) {
			print_error(&err);
			site_close(s);
			return EXIT_FAIL;
		}
		f.device_id = d.id;
	}
	if (days >= 0)
		f.not_after_before = l.now + days * 86400 + 1;
	if (c->json)
		l.arr = json_array();
	rc = store_cert_list(site_store(s), &f, list_cert, &l, &err);
	if (rc) {
		print_error(&err);
		json_decref(l.arr);
		site_close(s);
		return exit_for(rc);
	}
	if (l.arr)
		emit_json(l.arr);
	else if (!l.n)
		puts("no certificates");
	site_close(s);
	return EXIT_OK;
}

struct show_ctx {
	json_t *arr;
};

static int show_audit(void *ctx, const struct store_audit *a)
{
	struct show_ctx *sc = ctx;
	char t[32];

	if (sc->arr)
		json_array_append_new(sc->arr, json_pack("{s:o,s:s,s:s,s:s}", "at", json_time(a->at),
							 "actor", a->actor, "action", a->action,
							 "detail", a->detail));
	else
		printf("  %s  %-10s %-14s %s\n", util_fmt_time(a->at, t, sizeof(t)), a->actor,
		       a->action, a->detail);
	return 0;
}

static int cmd_device_show(struct cli *c, int argc, char **argv)
{
	struct store_device d;
	struct site *s = NULL;
	struct amtprov_error err;
	struct show_ctx sc = {0};
	struct cert_ctx cc = {0};
	struct store_cert_filter f = {0};
	int rc;

	if (argc != 2) {
		fprintf(stderr, "amtprov: usage: amtprov device show FQDN|UUID\n");
		return EXIT_USAGE;
	}
	rc = open_site(c, SITE_NO_PLUGINS | SITE_READONLY_DB, &s);
	if (rc)
		return rc;
	amtprov_error_clear(&err);
	if (store_device_find(site_store(s), argv[1], &d, &err) != AMTPROV_OK) {
		print_error(&err);
		site_close(s);
		return EXIT_FAIL;
	}
	f.device_id = d.id;
	cc.now = site_now(s);
	if (c->json) {
		json_t *j = device_json(&d);

		sc.arr = json_array();
		cc.arr = json_array();
		store_audit_list(site_store(s), d.id, 0, show_audit, &sc, &err);
		store_cert_list(site_store(s), &f, list_cert, &cc, &err);
		json_object_set_new(j, "audit", sc.arr);
		json_object_set_new(j, "certificates", cc.arr);
		emit_json(j);
	} else {
		char t[32];

		printf("device      %s\nuuid        %s\nAMT         %s\nwired IP    %s\n"
		       "wireless    %s\nstate       %s (since %s)\n",
		       d.fqdn, d.uuid, d.amt_version, d.wired_ip[0] ? d.wired_ip : "-",
		       d.wireless_capable ? "capable" : "no", d.state,
		       util_fmt_time(d.state_since, t, sizeof(t)));
		if (d.blocked)
			puts("blocked     yes");
		if (d.last_error[0])
			printf("last error  %s (%s)\n", d.last_error, amtprov_status_name(d.last_error_code));
		if (d.next_attempt_at > cc.now)
			printf("next try    %s\n", util_fmt_time(d.next_attempt_at, t, sizeof(t)));
		if (strcmp(d.state, "NEED_DEVICE_CHECK") == 0)
			puts("note        the AMT steps run when an amt-transport instance is "
			     "configured (amt.transport)");
		puts("certificates:");
		store_cert_list(site_store(s), &f, list_cert, &cc, &err);
		if (!cc.n)
			puts("  none");
		puts("audit trail:");
		store_audit_list(site_store(s), d.id, 0, show_audit, &sc, &err);
	}
	site_close(s);
	return EXIT_OK;
}

static int cmd_device_retry(struct cli *c, int argc, char **argv)
{
	struct store_device d;
	struct site *s = NULL;
	struct amtprov_error err;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "amtprov: usage: amtprov device retry FQDN|UUID\n");
		return EXIT_USAGE;
	}
	rc = open_site(c, SITE_NO_PLUGINS, &s);
	if (rc)
		return rc;
	amtprov_error_clear(&err);
	rc = store_device_find(site_store(s), argv[1], &d, &err);
	if (rc == AMTPROV_OK && strcmp(d.state, "FAILED") != 0)
		rc = amtprov_error_set(&err, AMTPROV_E_STATE, d.fqdn,
				       "device is %s, not FAILED: nothing to retry", d.state);
	if (rc == AMTPROV_OK)
		rc = store_device_transition(site_store(s), d.id, "FAILED", "REGISTERED", 0, "", 0,
					     "cli", site_now(s), &err);
	if (rc) {
		print_error(&err);
		site_close(s);
		return EXIT_FAIL;
	}
	if (c->json)
		emit_json(json_pack("{s:s,s:s}", "fqdn", d.fqdn, "state", "REGISTERED"));
	else
		printf("%s: FAILED -> REGISTERED; amtprovd will provision it again\n", d.fqdn);
	site_close(s);
	return EXIT_OK;
}

/* unprovision, block, unblock, update: recorded here; amtprovd does the device work. */
static int cmd_device_lifecycle(struct cli *c, int op, int argc, char **argv)
{
	struct store_device d;
	struct site *s = NULL;
	struct amtprov_error err;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "amtprov: usage: amtprov device %s FQDN|UUID\n",
			lifecycle_op_name((enum lifecycle_op)op));
		return EXIT_USAGE;
	}
	rc = open_site(c, SITE_NO_PLUGINS, &s);
	if (rc)
		return rc;
	amtprov_error_clear(&err);
	rc = lifecycle_request(s, argv[1], (enum lifecycle_op)op, "cli", &d, &err);
	if (rc) {
		print_error(&err);
		site_close(s);
		return rc == AMTPROV_E_NOT_FOUND || rc == AMTPROV_E_STATE ? EXIT_FAIL : exit_for(rc);
	}
	if (c->json)
		emit_json(json_pack("{s:s,s:s,s:s,s:b}", "fqdn", d.fqdn, "operation",
				    lifecycle_op_name((enum lifecycle_op)op), "state", d.state,
				    "blocked", d.blocked));
	else
		printf("%s: %s requested; now %s%s\n", d.fqdn,
		       lifecycle_op_name((enum lifecycle_op)op), d.state,
		       device_state_runnable(device_state_parse(d.state))
			       ? " (amtprovd does the rest)" : "");
	site_close(s);
	return EXIT_OK;
}

static void device_usage(FILE *out)
{
	fputs("Usage: amtprov -m FILE device add OPTIONS        (see 'device add -h')\n"
	      "       amtprov device register OPTIONS           (see 'device register -h')\n"
	      "       amtprov -m FILE device list [--state STATE]\n"
	      "       amtprov -m FILE device show DEVICE\n"
	      "       amtprov -m FILE device retry DEVICE\n"
	      "       amtprov -m FILE device unprovision|block|unblock|update DEVICE\n"
	      "       amtprov -m FILE device credentials DEVICE [--reveal]\n"
	      "       amtprov -m FILE device delete DEVICE [--revoke] [--force]\n"
	      "DEVICE is an FQDN or a UUID. retry puts a FAILED device back to REGISTERED.\n"
	      "unprovision, block, unblock and update are requests that amtprovd carries out\n"
	      "(docs/lifecycle.md): unprovision does a full unprovision in AMT and revokes the\n"
	      "device's certificates; block revokes them and refuses the device until it is\n"
	      "unblocked (then unprovisioned); update applies the site's AMT settings again and\n"
	      "keeps the web server certificate (R-REV-03). credentials names the device's AMT\n"
	      "admin account; --reveal prints its password, audited (see 'device credentials\n"
	      "-h'). delete removes the record and keeps its history (see 'device delete -h').\n"
	      "--json works with all of them.\n"
	      "Exit status: 0 done, 1 refused or failed, 2 usage, 3 configuration, 4 database,\n"
	      "5 plugin, 6 busy: try again (add, register or delete of a device in a step).\n",
	      out);
}

/* -h/--help anywhere after a subcommand that has no help of its own. */
static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	return 0;
}

static int cmd_device(struct cli *c, int argc, char **argv)
{
	int op;

	if (argc < 2) {
		device_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    (strcmp(argv[1], "add") && strcmp(argv[1], "register") &&
	     strcmp(argv[1], "credentials") && strcmp(argv[1], "delete") &&
	     wants_help(argc, argv))) {
		device_usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "add") == 0)
		return cmd_device_add(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "register") == 0)
		return cmd_device_register(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return cmd_device_list(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return cmd_device_show(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "retry") == 0)
		return cmd_device_retry(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "credentials") == 0)
		return cmd_device_credentials(c->manifest, c->json, c->log, argc - 1, argv + 1);
	if (strcmp(argv[1], "delete") == 0)
		return cmd_device_delete(c->manifest, c->json, c->log, argc - 1, argv + 1);
	if ((op = lifecycle_op_parse(argv[1])) >= 0)
		return cmd_device_lifecycle(c, op, argc - 1, argv + 1);
	fprintf(stderr, "amtprov: unknown device command '%s'\n", argv[1]);
	return EXIT_USAGE;
}

/* ---------------- credentials ---------------- */

static void cred_usage(FILE *out)
{
	fputs("Usage: amtprov -m FILE cred set NAME (--from-file FILE | --stdin)\n"
	      "       amtprov -m FILE cred list\n"
	      "       amtprov -m FILE cred rotate\n"
	      "Stores a secret in the site's credential store (credentials.store), lists the\n"
	      "record names, or re-encrypts every record under a new key (rotate). A secret\n"
	      "is never printed. One trailing newline of the input\n"
	      "is dropped, so 'echo TOKEN | amtprov cred set NAME --stdin' stores TOKEN.\n"
	      "A record the manifest names as a password amtprov sets on AMT\n"
	      "(credentials.mebx_password, a Digest user account's password) must pass AMT's\n"
	      "strong-password rule (docs/manifest.md \"AMT passwords\"), or it is refused.\n"
	      "Exit status: 0 done, 1 failed or refused (nothing stored), 2 usage error,\n"
	      "3 invalid manifest or no credential store, 5 plugin could not be loaded.\n",
	      out);
}

/* Opens the site with its plugins started (or only the credential store, @p only_store)
 * and finds the credential store. */
static int open_credstore(struct cli *c, struct site **s, struct plugin_instance **cs,
			  int only_store)
{
	struct amtprov_error err;
	const char *name;
	int rc = open_site(c, SITE_NO_DB, s);

	if (rc)
		return rc;
	name = site_manifest(*s)->credstore;
	*cs = name ? plugin_host_find(site_plugins(*s), name) : NULL;
	if (!*cs) {
		fprintf(stderr, "amtprov: %s: no credential store (credentials.store)\n",
			c->manifest);
		return EXIT_CONFIG;
	}
	amtprov_error_clear(&err);
	if ((only_store ? plugin_host_start_one(*cs, &err)
			: plugin_host_start_all(site_plugins(*s), &err)) != AMTPROV_OK) {
		print_error(&err);
		return tool_exit_code(&err);
	}
	return EXIT_OK;
}

static int print_cred_name(void *ctx, const char *name)
{
	json_t *arr = ctx;

	if (arr)
		json_array_append_new(arr, json_string(name));
	else
		printf("%s\n", name);
	return 0;
}

/* amt_password_uses: where the manifest uses record @p name as a password set on AMT. */
struct amt_use {
	const char *name;
	char where[AMTPROV_ERROR_WHERE_SIZE];
};

static int find_amt_use(void *ctx, const char *where, const char *name)
{
	struct amt_use *u = ctx;

	if (strcmp(name, u->name) != 0)
		return 0;
	util_strlcpy(u->where, where, sizeof(u->where));
	return 1;
}

/* A record the site sets on AMT as a password must pass AMT's rule, or every device would
 * fail with INVALID_PASSWORD: refused before it is stored (docs/manifest.md "AMT passwords").
 * The message names the field, the record and the broken clauses, never the value. */
static int refuse_weak_amt_password(struct cli *c, struct site *s, const char *name,
				    const struct amtprov_secret *sec)
{
	struct amt_use u = {.name = name};
	char clauses[160];
	unsigned faults;

	if (!amt_password_uses(site_manifest(s), find_amt_use, &u))
		return 0;
	faults = amt_password_check(sec->data, sec->len);
	if (!faults)
		return 0;
	amt_password_faults(faults, clauses, sizeof(clauses));
	fprintf(stderr, "amtprov: %s: %s: credential '%s' is a password the site sets on AMT, "
		"and AMT refuses this value (INVALID_PASSWORD): %s; nothing stored (see "
		"docs/manifest.md \"AMT passwords\")\n", c->manifest, u.where, name, clauses);
	return 1;
}

static int cmd_cred(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"from-file", required_argument, NULL, 'f'},
					     {"stdin", no_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	const char *file = NULL, *name;
	int use_stdin = 0, o, rc;
	struct site *s = NULL;
	struct plugin_instance *cs = NULL;
	struct amtprov_secret *sec = NULL;
	struct amtprov_error err;
	json_t *arr = NULL;

	if (argc < 2 || (strcmp(argv[1], "set") && strcmp(argv[1], "list") &&
			 strcmp(argv[1], "rotate"))) {
		cred_usage(argc >= 2 && !strcmp(argv[1], "-h") ? stdout : stderr);
		return argc >= 2 && !strcmp(argv[1], "-h") ? EXIT_OK : EXIT_USAGE;
	}
	argc--;
	argv++;
	/* 0, not 1: glibc then re-reads the option string, so NAME may come after --stdin
	 * (main parsed with '+', which stops at the first non-option). */
	optind = 0;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'f': file = optarg; break;
		case 's': use_stdin = 1; break;
		case 'h': cred_usage(stdout); return EXIT_OK;
		default: cred_usage(stderr); return EXIT_USAGE;
		}
	}
	amtprov_error_clear(&err);
	if (strcmp(argv[0], "rotate") == 0) {
		if (optind != argc || file || use_stdin) {
			cred_usage(stderr);
			return EXIT_USAGE;
		}
		rc = open_credstore(c, &s, &cs, 0);
		if (rc)
			goto out;
		if (pi_credstore_rotate(cs, &err) != AMTPROV_OK) {
			print_error(&err);
			rc = exit_for(err.code);
			goto out;
		}
		if (c->json)
			emit_json(json_pack("{s:b}", "rotated", 1));
		else
			printf("every record re-encrypted under a new key\n");
		rc = EXIT_OK;
		goto out;
	}
	if (strcmp(argv[0], "list") == 0) {
		if (optind != argc || file || use_stdin) {
			cred_usage(stderr);
			return EXIT_USAGE;
		}
		rc = open_credstore(c, &s, &cs, 0);
		if (rc)
			goto out;
		arr = c->json ? json_array() : NULL;
		if (pi_credstore_list(cs, print_cred_name, arr, &err) != AMTPROV_OK) {
			print_error(&err);
			rc = exit_for(err.code);
			goto out;
		}
		if (arr) {
			emit_json(arr);
			arr = NULL;
		}
		rc = EXIT_OK;
		goto out;
	}
	if (optind + 1 != argc || (!file) == (!use_stdin)) {
		fprintf(stderr, "amtprov: cred set takes NAME and one of --from-file or --stdin\n");
		return EXIT_USAGE;
	}
	name = argv[optind];
	sec = read_secret(file, stdin, 1024 * 1024);
	if (!sec)
		return EXIT_FAIL;
	rc = open_credstore(c, &s, &cs, 0);
	if (rc)
		goto out;
	if (refuse_weak_amt_password(c, s, name, sec)) {
		rc = EXIT_FAIL;
		goto out;
	}
	if (pi_credstore_put(cs, name, sec, &err) != AMTPROV_OK) {
		print_error(&err);
		rc = exit_for(err.code);
		goto out;
	}
	/* The name and the length only: never the value. */
	if (c->json)
		emit_json(json_pack("{s:s,s:I}", "name", name, "length", (json_int_t)sec->len));
	else
		printf("stored %s (%zu bytes)\n", name, sec->len);
	rc = EXIT_OK;
out:
	util_secret_free(sec);
	json_decref(arr);
	if (s)
		plugin_host_stop_all(site_plugins(s));
	site_close(s);
	return rc;
}

/* ---- enroll-secret: a host's registration credential (docs/api.md) ---- */

static void enroll_usage(FILE *out)
{
	fputs("Usage: amtprov -m FILE enroll-secret --fqdn FQDN [--uuid UUID]\n"
	      "Prints the enrollment secret of one host: the only credential its agent needs to\n"
	      "register (and re-register) that FQDN through amtprovd's API ('amtprov device\n"
	      "register --token-file'). It is HMAC-SHA256 over the FQDN (and the UUID, when\n"
	      "given) under the site registration key, the first of api.registration_keys in\n"
	      "the credential store; nothing is stored. The FQDN must be a name the site may\n"
	      "register (below site.dns_suffix, not the service point, site.fqdn_patterns).\n"
	      "  --fqdn FQDN   the host's name; the secret registers this name only\n"
	      "  --uuid UUID   bind the secret to the host's SMBIOS UUID as well\n"
	      "The secret is printed on stdout (with --json: {fqdn, uuid, secret, key}); hand\n"
	      "it to the host like a password. Exit status: 0 printed, 1 the name is outside\n"
	      "the site's policy, 2 usage error, 3 no registration key (api.registration_keys)\n"
	      "or one shorter than 32 bytes.\n",
	      out);
}

static int cmd_enroll_secret(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"fqdn", required_argument, NULL, 'f'},
					     {"uuid", required_argument, NULL, 'u'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	const char *fqdn = NULL, *uuid = NULL;
	char secret[AUTHZ_SECRET_SIZE], why[512];
	struct site *s = NULL;
	struct plugin_instance *cs = NULL;
	struct amtprov_secret *key = NULL;
	struct amtprov_error err;
	const struct manifest *m;
	int o, rc;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'f': fqdn = optarg; break;
		case 'u': uuid = optarg; break;
		case 'h': enroll_usage(stdout); return EXIT_OK;
		default: enroll_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc || !fqdn) {
		enroll_usage(stderr);
		return EXIT_USAGE;
	}
	if (!device_input_fqdn_valid(fqdn) || strlen(fqdn) >= STORE_FQDN_SIZE) {
		fprintf(stderr, "amtprov: '%s' is not a fully qualified domain name\n", fqdn);
		return EXIT_USAGE;
	}
	if (uuid && !device_input_uuid_valid(uuid)) {
		fprintf(stderr, "amtprov: '%s' is not a UUID (8-4-4-4-12 hex digits)\n", uuid);
		return EXIT_USAGE;
	}
	rc = open_credstore(c, &s, &cs, 1);
	if (rc)
		goto out;
	m = site_manifest(s);
	if (m->api.n_registration_keys == 0) {
		fprintf(stderr, "amtprov: %s: /api/registration_keys: the site has no registration "
				"key; add one (docs/api.md)\n", c->manifest);
		rc = EXIT_CONFIG;
		goto out;
	}
	/* The same policy registration and the CA request apply: a secret for a name the site
	 * never registers would only mislead. */
	if (!authz_name_allowed(m, fqdn, 1, why, sizeof(why))) {
		fprintf(stderr, "amtprov: refused: %s\n", why);
		rc = EXIT_FAIL;
		goto out;
	}
	amtprov_error_clear(&err);
	rc = pi_credstore_get(cs, m->api.registration_keys[0], &key, &err);
	if (rc == AMTPROV_OK)
		rc = authz_secret_mint(key, fqdn, uuid, secret, sizeof(secret), &err);
	util_secret_free(key);
	if (rc != AMTPROV_OK) {
		fprintf(stderr, "amtprov: /api/registration_keys/0 ('%s'): %s\n",
			m->api.registration_keys[0], err.msg);
		rc = rc == AMTPROV_E_NOMEM || rc == AMTPROV_E_CRYPTO ? EXIT_FAIL : EXIT_CONFIG;
		goto out;
	}
	if (c->json) {
		json_t *j = json_pack("{s:s,s:s,s:s}", "secret", secret, "key",
				      m->api.registration_keys[0], "fqdn", fqdn);

		if (j)
			json_object_set_new(j, "uuid", uuid ? json_string(uuid) : json_null());
		emit_json(j);
	} else {
		printf("%s\n", secret);
	}
	util_wipe(secret, sizeof(secret));
	rc = EXIT_OK;
out:
	site_close(s);
	return rc;
}

/* ---------------- status ---------------- */

struct status_ctx {
	json_t *arr;
	int n;
};

static int list_status(void *ctx, const struct store_status_msg *m)
{
	struct status_ctx *sc = ctx;
	const struct status_entry *e = status_lookup(m->msg_id);
	char t[32];

	if (sc->arr)
		json_array_append_new(sc->arr,
				      json_pack("{s:I,s:i,s:s,s:s,s:s,s:s,s:o}", "id", (json_int_t)m->id,
						"msg_id", (int)m->msg_id, "name", e ? e->name : "?",
						"severity", status_severity_name(m->severity),
						"device", m->device, "text", m->text, "at",
						json_time(m->created_at)));
	else
		printf("%s %5u %-7s %-24s %s%s%s\n", util_fmt_time(m->created_at, t, sizeof(t)),
		       (unsigned)m->msg_id, status_severity_name(m->severity), e ? e->name : "?",
		       m->device[0] ? m->device : "", m->device[0] ? ": " : "", m->text);
	sc->n++;
	return 0;
}

static int cmd_status(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"id", required_argument, NULL, 'i'},
					     {"severity", required_argument, NULL, 's'},
					     {"device", required_argument, NULL, 'd'},
					     {"since", required_argument, NULL, 'S'},
					     {"until", required_argument, NULL, 'U'},
					     {"limit", required_argument, NULL, 'l'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct store_status_filter f = {.min_severity = -1};
	struct status_ctx sc = {0};
	struct site *s = NULL;
	struct amtprov_error err;
	long long v;
	int o, rc;

	if (argc >= 2 && strcmp(argv[1], "catalog") == 0) {
		size_t n;
		const struct status_entry *cat = status_catalog(&n);
		json_t *arr = c->json ? json_array() : NULL;

		for (size_t i = 0; i < n; i++) {
			if (arr)
				json_array_append_new(arr, json_pack("{s:i,s:s,s:s,s:s}", "id",
								     (int)cat[i].id, "name", cat[i].name,
								     "severity",
								     status_severity_name(cat[i].severity),
								     "text", cat[i].text));
			else
				printf("%5u %-7s %-24s %s\n", (unsigned)cat[i].id,
				       status_severity_name(cat[i].severity), cat[i].name, cat[i].text);
		}
		if (arr)
			emit_json(arr);
		return EXIT_OK;
	}
	optind = 1;
	while ((o = getopt_long(argc, argv, "i:s:d:S:U:l:h", opts, NULL)) != -1) {
		switch (o) {
		case 'i':
			if (util_parse_ll(optarg, 1, 99999, &v) < 0)
				return EXIT_USAGE;
			f.msg_id = (uint32_t)v;
			break;
		case 's':
			f.min_severity = status_severity_parse(optarg);
			if (f.min_severity < 0) {
				fprintf(stderr, "amtprov: --severity is info, warning or error\n");
				return EXIT_USAGE;
			}
			break;
		case 'd': f.device = optarg; break;
		case 'S':
			if (util_parse_ll(optarg, 0, INT64_MAX / 2, &v) < 0) {
				fprintf(stderr, "amtprov: --since takes Unix seconds\n");
				return EXIT_USAGE;
			}
			f.since = v;
			break;
		case 'U':
			if (util_parse_ll(optarg, 1, INT64_MAX / 2, &v) < 0) {
				fprintf(stderr, "amtprov: --until takes Unix seconds\n");
				return EXIT_USAGE;
			}
			f.until = v;
			break;
		case 'l':
			if (util_parse_ll(optarg, 1, 1000000, &v) < 0)
				return EXIT_USAGE;
			f.limit = (int)v;
			break;
		case 'h':
			puts("Usage: amtprov -m FILE status [--id N] [--severity info|warning|error]\n"
			     "                             [--device FQDN] [--since UNIX_SECONDS] "
			     "[--until UNIX_SECONDS] [--limit N]\n"
			     "       amtprov status catalog");
			return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	rc = open_site(c, SITE_NO_PLUGINS | SITE_READONLY_DB, &s);
	if (rc)
		return rc;
	if (c->json)
		sc.arr = json_array();
	amtprov_error_clear(&err);
	rc = store_status_list(site_store(s), &f, list_status, &sc, &err);
	if (rc) {
		print_error(&err);
		json_decref(sc.arr);
		site_close(s);
		return exit_for(rc);
	}
	if (sc.arr)
		emit_json(sc.arr);
	else if (!sc.n)
		puts("no status messages");
	site_close(s);
	return EXIT_OK;
}

/* ---------------- plugins ---------------- */

static json_t *desc_json(const struct amtprov_plugin *d, const char *path)
{
	json_t *caps = json_array(), *cfg = json_array();
	char abi[16];

	snprintf(abi, sizeof(abi), "%u.%u", d->abi_major, d->abi_minor);
	for (const char *const *cp = d->capabilities; cp && *cp; cp++)
		json_array_append_new(caps, json_string(*cp));
	for (const struct amtprov_config_field *f = d->config_table; f && f->name; f++)
		json_array_append_new(cfg, json_pack("{s:s,s:b,s:s?,s:s?}", "key", f->name, "required",
						     f->required, "default", f->def, "help", f->help));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:o,s:o,s:s}", "name", d->name, "kind",
			 plugin_kind_name(d->kind), "version", d->version ? d->version : "",
			 "description", d->description ? d->description : "", "abi", abi,
			 "thread_safe", (d->flags & AMTPROV_PLUGIN_THREAD_SAFE) != 0,
			 "capabilities", caps, "config", cfg, "path", path);
}

static void print_desc(const struct amtprov_plugin *d, const char *path)
{
	printf("plugin       %s %s\nkind         %s\nABI          %u.%u\nfile         %s\n"
	       "thread-safe  %s\ndescription  %s\ncapabilities",
	       d->name, d->version ? d->version : "", plugin_kind_name(d->kind), d->abi_major,
	       d->abi_minor, path, (d->flags & AMTPROV_PLUGIN_THREAD_SAFE) ? "yes" : "no",
	       d->description ? d->description : "");
	for (const char *const *cp = d->capabilities; cp && *cp; cp++)
		printf(" %s", *cp);
	putchar('\n');
	for (const struct amtprov_config_field *f = d->config_table; f && f->name; f++)
		printf("config       %-20s %s%s%s%s%s\n", f->name, f->required ? "(required) " : "",
		       f->def ? "[default " : "", f->def ? f->def : "", f->def ? "] " : "",
		       f->help ? f->help : "");
}

static int cmd_plugin(struct cli *c, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "show") == 0) {
		static const struct option opts[] = {{"plugin-dir", required_argument, NULL, 'd'},
						     {"help", no_argument, NULL, 'h'},
						     {0}};
		struct host_env env = {.log = c->log};
		struct plugin_host *ph;
		const struct amtprov_plugin *d;
		const char *path;
		struct amtprov_error err;
		int o, rc;

		argc--;
		argv++;
		optind = 1;
		ph = plugin_host_new(&env);
		if (!ph)
			return EXIT_FAIL;
		amtprov_error_clear(&err);
		while ((o = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
			if (o == 'd') {
				plugin_host_add_dir(ph, optarg, &err);
			} else if (o == 'h') {
				puts("Usage: amtprov [-m FILE] plugin show [--plugin-dir DIR]... NAME\n"
				     "Loads plugin NAME (searching DIR..., the manifest's plugin_path,\n"
				     "$AMTPROV_PLUGIN_PATH, then the install directory), checks its\n"
				     "descriptor and prints it.");
				plugin_host_free(ph);
				return EXIT_OK;
			} else {
				plugin_host_free(ph);
				return EXIT_USAGE;
			}
		}
		if (optind != argc - 1) {
			fprintf(stderr, "amtprov: usage: amtprov plugin show [--plugin-dir DIR] NAME\n");
			plugin_host_free(ph);
			return EXIT_USAGE;
		}
		/* With a manifest, its plugin_path is searched too (after --plugin-dir). */
		if (c->manifest) {
			struct manifest *m = NULL;
			struct manifest_problems probs = {0};

			rc = manifest_load(c->manifest, &m, &probs, &err);
			if (probs.count)
				manifest_problems_print(&probs, c->manifest, stderr);
			manifest_problems_free(&probs);
			if (rc) {
				if (!probs.count)
					print_error(&err);
				plugin_host_free(ph);
				return tool_exit_code(&err);
			}
			for (char **dir = m->plugin_path; dir && *dir; dir++)
				plugin_host_add_dir(ph, *dir, &err);
			manifest_free(m);
		}
		rc = plugin_host_load(ph, argv[optind], &d, &path, &err);
		if (rc) {
			print_error(&err);
			plugin_host_free(ph);
			return EXIT_PLUGIN;
		}
		if (c->json) {
			emit_json(desc_json(d, path));
		} else {
			print_desc(d, path);
		}
		plugin_host_free(ph);
		return EXIT_OK;
	}
	if (argc >= 2 && strcmp(argv[1], "test") == 0)
		return cmd_plugin_test(c->manifest, c->json, c->log, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "list") == 0) {
		struct site *s = NULL;
		json_t *arr;
		/* Check-only: listing the plugins creates no plugin state. */
		int rc = open_site(c, SITE_NO_DB | SITE_CHECK_ONLY, &s);

		if (rc)
			return rc;
		arr = c->json ? json_array() : NULL;
		for (size_t i = 0; i < plugin_host_count(site_plugins(s)); i++) {
			struct plugin_instance *pi = plugin_host_at(site_plugins(s), i);
			const struct amtprov_plugin *d = plugin_instance_desc(pi);

			if (arr) {
				json_t *j = desc_json(d, plugin_instance_path(pi));

				json_object_set_new(j, "instance", json_string(plugin_instance_name(pi)));
				json_array_append_new(arr, j);
			} else {
				printf("%-16s %-18s %-10s %s\n", plugin_instance_name(pi), d->name,
				       plugin_kind_name(d->kind), plugin_instance_path(pi));
			}
		}
		if (arr)
			emit_json(arr);
		site_close(s);
		return EXIT_OK;
	}
	fprintf(stderr, "amtprov: usage: amtprov plugin list | plugin show NAME | plugin test NAME\n");
	return EXIT_USAGE;
}

/* ---------------- maintenance tasks ---------------- */

static const char *fmt_or_dash(int64_t t, char *buf, size_t size)
{
	if (!t) {
		util_strlcpy(buf, "-", size);
		return buf;
	}
	return util_fmt_time(t, buf, size);
}

static int cmd_task_list(struct cli *c)
{
	struct site *s = NULL;
	size_t n;
	const struct task_def *t = sched_tasks(&n);
	json_t *arr = c->json ? json_array() : NULL;
	int rc = open_site(c, SITE_NO_PLUGINS | SITE_READONLY_DB, &s);

	if (rc) {
		json_decref(arr);
		return rc;
	}
	if (!arr)
		printf("%-26s %-10s %-21s %-14s %-21s %s\n", "TASK", "EVERY", "LAST RUN", "RESULT",
		       "NEXT RUN", "DETAIL");
	for (size_t i = 0; i < n; i++) {
		struct store_task rec;
		struct amtprov_error err;
		int64_t every = sched_interval(site_manifest(s), t[i].name);
		int have;
		char a[32], b[32], ev[24];

		amtprov_error_clear(&err);
		have = store_task_get(site_store(s), t[i].name, &rec, &err) == AMTPROV_OK;
		if (!have)
			memset(&rec, 0, sizeof(rec));
		/* A live task lease: the host running it now (several hosts, database.md). */
		if (rec.lease_until < util_now())
			rec.lease_owner[0] = '\0';
		if (arr) {
			json_array_append_new(
				arr, json_pack("{s:s,s:s,s:I,s:o,s:s,s:s,s:o,s:b,s:I,s:s}", "name",
					       t[i].name, "title", t[i].title, "interval_seconds",
					       (json_int_t)every, "last_run", json_time(rec.last_run),
					       "last_result",
					       rec.last_run ? amtprov_status_name(rec.last_result) : "",
					       "last_detail", rec.last_detail, "next_run",
					       json_time(have ? rec.next_run : 0), "requested",
					       rec.requests > rec.served, "requests",
					       (json_int_t)rec.requests, "running_on",
					       rec.lease_owner));
			continue;
		}
		if (every % 86400 == 0)
			snprintf(ev, sizeof(ev), "%lldd", (long long)(every / 86400));
		else if (every % 3600 == 0)
			snprintf(ev, sizeof(ev), "%lldh", (long long)(every / 3600));
		else
			snprintf(ev, sizeof(ev), "%llds", (long long)every);
		printf("%-26s %-10s %-21s %-14s %-21s %s%s%s%s%s\n", t[i].name, ev,
		       fmt_or_dash(rec.last_run, a, sizeof(a)),
		       rec.last_run ? amtprov_status_name(rec.last_result) : "-",
		       rec.requests > rec.served ? "requested"
		       : have                    ? fmt_or_dash(rec.next_run, b, sizeof(b))
						 : "at start",
		       rec.lease_owner[0] ? "[running on " : "", rec.lease_owner,
		       rec.lease_owner[0] ? "] " : "", rec.last_detail,
		       rec.last_run ? "" : t[i].title);
	}
	if (arr)
		emit_json(arr);
	site_close(s);
	return EXIT_OK;
}

/* Asks amtprovd (through the database) to run a task now; --wait until it has. */
static int cmd_task_run(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {{"wait", optional_argument, NULL, 'w'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct site *s = NULL;
	struct amtprov_error err;
	long long wait = 0;
	int64_t req = 0;
	int o, rc;

	optind = 0;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'w':
			wait = 60;
			if (optarg && util_parse_ll(optarg, 1, 86400, &wait) < 0) {
				fprintf(stderr, "amtprov: --wait takes seconds (1..86400)\n");
				return EXIT_USAGE;
			}
			break;
		case 'h':
			puts("Usage: amtprov -m FILE task run NAME [--wait[=SECONDS]]\n"
			     "Asks amtprovd to run the task now (it looks every second). Without\n"
			     "amtprovd running, the task runs when it starts.");
			return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "amtprov: usage: amtprov task run NAME [--wait[=SECONDS]]\n");
		return EXIT_USAGE;
	}
	if (!sched_task_find(argv[optind])) {
		size_t n;
		const struct task_def *t = sched_tasks(&n);

		fprintf(stderr, "amtprov: unknown task '%s'; tasks:", argv[optind]);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %s", t[i].name);
		fputc('\n', stderr);
		return EXIT_USAGE;
	}
	rc = open_site(c, SITE_NO_PLUGINS, &s);
	if (rc)
		return rc;
	amtprov_error_clear(&err);
	rc = store_task_request(site_store(s), argv[optind], &req, &err);
	for (long long waited = 0; rc == AMTPROV_OK && wait && waited < wait * 10; waited++) {
		struct store_task t;

		if (store_task_get(site_store(s), argv[optind], &t, &err) == AMTPROV_OK &&
		    t.served >= req) {
			if (c->json)
				emit_json(json_pack("{s:s,s:s,s:s}", "name", t.name, "result",
						    amtprov_status_name(t.last_result), "detail",
						    t.last_detail));
			else
				printf("%s: %s: %s\n", t.name, amtprov_status_name(t.last_result),
				       t.last_detail);
			site_close(s);
			return t.last_result == AMTPROV_OK ? EXIT_OK : EXIT_FAIL;
		}
		usleep(100000);
	}
	if (rc) {
		print_error(&err);
		site_close(s);
		return exit_for(rc);
	}
	site_close(s);
	if (wait) {
		fprintf(stderr, "amtprov: %s: not run within %lld s: is amtprovd running?\n",
			argv[optind], wait);
		return EXIT_FAIL;
	}
	if (c->json)
		emit_json(json_pack("{s:s,s:I}", "name", argv[optind], "request", (json_int_t)req));
	else
		printf("%s: requested; amtprovd runs it within a second (or when it starts)\n",
		       argv[optind]);
	return EXIT_OK;
}

static int cmd_task(struct cli *c, int argc, char **argv)
{
	if (wants_help(argc, argv) && !(argc >= 2 && strcmp(argv[1], "run") == 0)) {
		fputs("Usage: amtprov -m FILE task list\n"
		      "       amtprov -m FILE task run NAME [--wait[=SECONDS]]\n"
		      "Maintenance tasks (docs/lifecycle.md): evaluate-certificates,\n"
		      "provisioning-certificate, revocation-queue. 'list' shows each one's schedule,\n"
		      "last run, result and next run (--json for machines); 'run' asks amtprovd to\n"
		      "run one now (see 'task run -h').\n",
		      stdout);
		return EXIT_OK;
	}
	if (argc >= 2 && strcmp(argv[1], "list") == 0 && argc == 2)
		return cmd_task_list(c);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return cmd_task_run(c, argc - 1, argv + 1);
	fprintf(stderr, "amtprov: usage: amtprov task list | task run NAME [--wait[=SECONDS]]\n");
	return EXIT_USAGE;
}

/* R-PC-08: a provisioning certificate known to be revoked is recorded so; while the
 * manifest names it, provisioning stops. */
static int cmd_cert_revoked(struct cli *c, int argc, char **argv)
{
	struct provcert_info pc;
	struct store_cert rec;
	struct site *s = NULL;
	struct amtprov_error err;
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (argc != 3 || strcmp(argv[1], "--cert") != 0) {
		fprintf(stderr, "amtprov: usage: amtprov cert revoked --cert FILE\n"
				"(a PEM provisioning certificate, leaf first, known to be revoked)\n");
		return EXIT_USAGE;
	}
	amtprov_error_clear(&err);
	if (util_read_file(argv[2], 1 << 20, &pem, &len, &err) != AMTPROV_OK ||
	    provcert_from_pem(pem, len, &pc, &err) != AMTPROV_OK) {
		free(pem);
		if (!err.where[0])
			util_strlcpy(err.where, argv[2], sizeof(err.where));
		print_error(&err);
		return EXIT_FAIL;
	}
	free(pem);
	rc = open_site(c, SITE_NO_PLUGINS, &s);
	if (rc)
		return rc;
	memset(&rec, 0, sizeof(rec));
	util_strlcpy(rec.serial_hex, pc.serial_hex, sizeof(rec.serial_hex));
	util_strlcpy(rec.subject, pc.subject, sizeof(rec.subject));
	util_strlcpy(rec.sha256, pc.sha256, sizeof(rec.sha256));
	util_strlcpy(rec.status, STORE_CERT_REVOKED, sizeof(rec.status));
	rec.purpose = AMTPROV_PURPOSE_PROVISIONING;
	rec.not_before = 0;
	rec.not_after = pc.not_after;
	rec.revocation_reason = AMTPROV_REVOKE_UNSPECIFIED;
	rec.revoked_at = site_now(s);
	rc = store_cert_add(site_store(s), &rec, site_now(s), &err);
	if (rc == AMTPROV_E_EXISTS) {
		rc = amtprov_error_set(&err, AMTPROV_E_EXISTS, argv[2],
				       "this certificate is recorded already");
	}
	if (rc) {
		print_error(&err);
		site_close(s);
		return EXIT_FAIL;
	}
	site_status(s, STATUS_PROVCERT_REVOKED, NULL,
		    "R-PC-08: a provisioning certificate was recorded as revoked; provisioning "
		    "stops while the manifest names it");
	printf("recorded %s (serial %s) as revoked; while the manifest names it, amtprovd does "
	       "not provision (R-PC-08)\n", pc.subject, pc.serial_hex);
	site_close(s);
	return EXIT_OK;
}

/* ---------------- report ---------------- */

struct report_ctx {
	struct site *s;
	json_t *arr;
	int n;
};

static int newest_cert(void *ctx, const struct store_cert *x)
{
	struct store_cert *out = ctx;

	if (x->purpose == AMTPROV_PURPOSE_WEB_SERVER && strcmp(x->status, STORE_CERT_ACTIVE) == 0)
		*out = *x;
	return 0;
}

/* When provisioning last started: the device left REGISTERED (the audit trail's last
 * "REGISTERED -> ..." record); 0 when the trail has none. */
static int provisioning_start(void *ctx, const struct store_audit *a)
{
	int64_t *at = ctx;

	if (strcmp(a->action, "state") == 0 && strncmp(a->detail, "REGISTERED -> ", 14) == 0)
		*at = a->at;
	return 0;
}

static int report_device(void *ctx, const struct store_device *d)
{
	struct report_ctx *r = ctx;
	struct store_cert_filter f = {.device_id = d->id};
	struct store_cert cert;
	struct amtprov_error err;
	char exp[32] = "-", took[32] = "-";

	if (strcmp(d->state, STORE_DEVICE_DELETED) == 0)
		return 0; /* deleted: 'device list --state DELETED' lists them */
	memset(&cert, 0, sizeof(cert));
	amtprov_error_clear(&err);
	store_cert_list(site_store(r->s), &f, newest_cert, &cert, &err);
	if (cert.id)
		util_fmt_time(cert.not_after, exp, sizeof(exp));
	if (strcmp(d->state, "PROVISIONED") == 0) {
		int64_t start = 0;

		/* TOOK is the provisioning itself, not the wait for amtprovd after registration. */
		store_audit_list(site_store(r->s), d->id, 0, provisioning_start, &start, &err);
		snprintf(took, sizeof(took), "%llds",
			 (long long)(d->state_since - (start ? start : d->created_at)));
	}
	if (r->arr) {
		json_array_append_new(r->arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "fqdn", d->fqdn,
							"amt_version", d->amt_version, "state",
							d->state, "cert_serial", cert.serial_hex,
							"cert_expires", cert.id ? exp : "", "reason",
							d->last_error));
	} else {
		if (r->n == 0)
			printf("%-24s %-9s %-18s %-32s %-11s %-6s %s\n", "DEVICE", "AMT", "STATE",
			       "CERT SERIAL", "CERT EXPIRY", "TOOK", "REASON");
		printf("%-24s %-9s %-18s %-32s %-11.10s %-6s %s\n", d->fqdn, d->amt_version,
		       d->state, cert.id ? cert.serial_hex : "-", exp, took, d->last_error);
	}
	r->n++;
	return 0;
}

/* One line per device: where it is, its certificate, and why it stopped if it did. */
static int cmd_report(struct cli *c)
{
	struct report_ctx r = {0};
	struct amtprov_error err;
	int rc = open_site(c, SITE_NO_PLUGINS | SITE_READONLY_DB, &r.s);

	if (rc)
		return rc;
	if (c->json)
		r.arr = json_array();
	amtprov_error_clear(&err);
	rc = store_device_list(site_store(r.s), NULL, report_device, &r, &err);
	if (rc) {
		print_error(&err);
		json_decref(r.arr);
		site_close(r.s);
		return exit_for(rc);
	}
	if (r.arr)
		emit_json(r.arr);
	else if (!r.n)
		puts("no devices");
	site_close(r.s);
	return EXIT_OK;
}

static int cmd_states(struct cli *c)
{
	json_t *arr = c->json ? json_array() : NULL;

	for (int s = DS_INVALID + 1; s < DS_COUNT; s++) {
		enum device_state ds = (enum device_state)s;

		if (arr)
			json_array_append_new(arr, json_pack("{s:s,s:b,s:b}", "state",
							     device_state_name(ds), "runnable",
							     device_state_runnable(ds), "in_progress",
							     device_state_in_progress(ds)));
		else
			printf("%-28s %s\n", device_state_name(ds),
			       device_state_in_progress(ds) ? "in progress (rewound on restart)"
			       : device_state_runnable(ds)  ? "waiting for amtprovd"
							    : "");
	}
	if (arr)
		emit_json(arr);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"manifest", required_argument, NULL, 'm'},
					     {"json", no_argument, NULL, 'j'},
					     {"verbose", no_argument, NULL, 'v'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {0}};
	struct cli c = {.manifest = getenv("AMTPROV_MANIFEST")};
	int o, rc;
	const char *cmd;

	/* '+': stop at the command, so each command parses its own options. */
	while ((o = getopt_long(argc, argv, "+m:jvhV", opts, NULL)) != -1) {
		switch (o) {
		case 'm': c.manifest = optarg; break;
		case 'j': c.json = 1; break;
		case 'v': c.verbose++; break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': printf("amtprov %s (plugin ABI %d.%d)\n", AMTPROV_VERSION,
				 AMTPROV_ABI_MAJOR, AMTPROV_ABI_MINOR);
			return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (c.manifest && !*c.manifest)
		c.manifest = NULL;
	c.log = alog_new("amtprov", c.verbose >= 2 ? AMTPROV_LOG_DEBUG
				    : c.verbose ? AMTPROV_LOG_INFO
						: AMTPROV_LOG_WARNING,
			 ALOG_STDERR);
	argc -= optind;
	argv += optind;
	cmd = argv[0];
	if (strcmp(cmd, "manifest") == 0)
		rc = cmd_manifest(&c, argc, argv);
	else if (strcmp(cmd, "db") == 0)
		rc = cmd_db(&c, argc, argv);
	else if (strcmp(cmd, "device") == 0)
		rc = cmd_device(&c, argc, argv);
	else if (strcmp(cmd, "cert") == 0)
		rc = cmd_cert(&c, argc, argv);
	else if (strcmp(cmd, "status") == 0)
		rc = cmd_status(&c, argc, argv);
	else if (strcmp(cmd, "cred") == 0)
		rc = cmd_cred(&c, argc, argv);
	else if (strcmp(cmd, "enroll-secret") == 0)
		rc = cmd_enroll_secret(&c, argc, argv);
	else if (strcmp(cmd, "plugin") == 0)
		rc = cmd_plugin(&c, argc, argv);
	else if (strcmp(cmd, "states") == 0)
		rc = cmd_states(&c);
	else if (strcmp(cmd, "report") == 0)
		rc = cmd_report(&c);
	else if (strcmp(cmd, "task") == 0)
		rc = cmd_task(&c, argc, argv);
	else {
		fprintf(stderr, "amtprov: unknown command '%s' (see amtprov --help)\n", cmd);
		rc = EXIT_USAGE;
	}
	alog_free(c.log);
	return rc;
}
