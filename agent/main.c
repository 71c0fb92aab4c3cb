/* SPDX-License-Identifier: Apache-2.0 */
/*
 * amtprov-agent: the AMT computer's own side of provisioning (seed 003 steps 1-3,
 * R-PROV-01..03; docs/agent.md). `info` shows what the firmware reports over MEI;
 * `register` checks that AMT is Not Provisioned, sets a random one-time password in the
 * firmware, starts remote configuration and registers the device with amtprovd's API under
 * this host's enrollment secret, then optionally waits until amtprovd has provisioned it.
 *
 * The OTP exists only in this process and in the firmware: it is never printed or logged;
 * amtprovd gets its SHA-256 and compares it with the OTP it reads from AMT (R-PROV-05).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "amt_host.h"
#include "register.h"

#ifndef AMTPROV_VERSION
#define AMTPROV_VERSION "dev"
#endif

struct opts {
	const char *mei;
	bool json;
	int mei_timeout_ms;
	/* register */
	const char *server, *fqdn, *secret_file, *ca_bundle, *dmi_dir;
	const char *manufacturer, *model;
	bool wait;
	long timeout_s, interval_s;
};

static void usage(FILE *out)
{
	fputs("Usage: amtprov-agent [--mei PATH] [--json] info\n"
	      "       amtprov-agent [--mei PATH] [--json] register --server URL --fqdn FQDN\n"
	      "                     --secret-file FILE [--ca-bundle FILE] [--wait [--timeout S]]\n"
	      "\n"
	      "The AMT computer's side of provisioning (amtprov, docs/agent.md).\n"
	      "  info       what the firmware reports: versions, SKU, provisioning state and\n"
	      "             control mode, UUID, DNS suffix, wired and wireless MAC and IP,\n"
	      "             root certificate hashes\n"
	      "  register   AMT must be Not Provisioned: sets a random one-time password in the\n"
	      "             firmware, starts remote configuration and registers this device\n"
	      "             (FQDN, UUID, AMT version, manufacturer and model, the OTP's SHA-256,\n"
	      "             wired IP) with amtprovd's API under this host's enrollment secret\n"
	      "             ('amtprov enroll-secret' on the site server); the OTP itself is\n"
	      "             never printed\n"
	      "\n"
	      "Options:\n"
	      "  --mei PATH          the MEI device (default /dev/mei0), or a Unix socket that\n"
	      "                      carries the same messages (amtsim --mei-dir)\n"
	      "  --mei-timeout MS    how long to wait for each firmware answer (default 10000)\n"
	      "  --json              machine-readable output on stdout\n"
	      "  --server URL        amtprovd's API, https://HOST:PORT\n"
	      "  --fqdn FQDN         this computer's name, as its enrollment secret names it\n"
	      "  --secret-file FILE  the enrollment secret (one line; the file must not be\n"
	      "                      readable by group or others)\n"
	      "  --ca-bundle FILE    CA certificates that sign the API's certificate\n"
	      "  --wait              wait until amtprovd reports the device provisioned,\n"
	      "                      printing each state it passes on stderr\n"
	      "  --timeout S         give up waiting after S seconds (default 900)\n"
	      "  --interval S        seconds between status queries while waiting (default 5)\n"
	      "  --manufacturer S, --model S\n"
	      "                      instead of /sys/class/dmi/id/sys_vendor and product_name\n"
	      "  --dmi-dir DIR       read those two files from DIR instead\n"
	      "  -h, --help          this text;  --version  the version\n"
	      "\n"
	      "Exit status: 0 success; 1 failed (malformed firmware answer, server unreachable,\n"
	      "provisioning failed or did not finish in time); 2 usage; 3 no MEI device or\n"
	      "driver; 4 AMT not present or disabled in the BIOS/MEBx; 5 AMT already provisioned\n"
	      "(R-PROV-01); 6 busy (firmware or server): try again later; 7 the server refused the\n"
	      "registration (its reason is printed).\n",
	      out);
}

static const char *or_dash(const char *s)
{
	return s ? s : "-";
}

static void fail(const char *what)
{
	fprintf(stderr, "amtprov-agent: %s\n", what);
}

static int print_json(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

	if (!s)
		return AGENT_FAIL;
	puts(s);
	free(s);
	return AGENT_OK;
}

static void ipv4_text(uint32_t v, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255);
}

static void mac_text(const uint8_t m[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static json_t *lan_json(const struct amthi_lan *l)
{
	char ip[16], mac[18];

	ipv4_text(l->ipv4, ip);
	mac_text(l->mac, mac);
	return json_pack("{s:b,s:b,s:b,s:s,s:s?}", "enabled", l->enabled != 0, "dhcp",
			 l->dhcp_enabled != 0, "link_up", l->link_up != 0, "mac", mac, "ipv4",
			 l->ipv4 ? ip : NULL);
}

static json_t *info_json(const struct amt_info *in)
{
	json_t *o, *v = json_object(), *hs = json_array();
	const char *amt = amthi_version_of(&in->cv, "AMT");

	for (unsigned i = 0; i < in->cv.n; i++)
		json_object_set_new(v, in->cv.v[i].description, json_string(in->cv.v[i].version));
	for (unsigned i = 0; i < in->n_hashes; i++) {
		const struct amthi_hash_entry *e = &in->hashes[i];
		char hex[2 * AMTHI_HASH_FIELD + 1];
		size_t n = amthi_hash_size(e->algorithm);

		for (size_t k = 0; k < n; k++)
			snprintf(hex + 2 * k, 3, "%02x", e->hash[k]);
		hex[2 * n] = '\0';
		json_array_append_new(hs, json_pack("{s:s,s:s,s:s,s:b,s:b}", "name", e->name,
						    "algorithm", amthi_hash_name(e->algorithm),
						    "hash", hex, "default", e->is_default != 0,
						    "active", e->is_active != 0));
	}
	o = json_pack("{s:s?,s:s?,s:s?,s:s,s:o,s:s,s:s?,s:s,s:s,s:o,s:o,s:o}", "amt_version", amt,
		      "build", amthi_version_of(&in->cv, "Build Number"), "sku",
		      amthi_version_of(&in->cv, "Sku"), "bios", in->cv.bios, "versions", v,
		      "provisioning_state", ah_state_name(in->state), "control_mode",
		      in->mode_known ? ah_mode_name(in->mode) : NULL, "uuid", in->uuid,
		      "dns_suffix", in->dns_suffix, "wired",
		      in->lan_known[0] ? lan_json(&in->lan[0]) : json_null(), "wireless",
		      in->lan_known[1] ? lan_json(&in->lan[1]) : json_null(), "hashes", hs);
	return o;
}

static void print_lan(const char *name, const struct amthi_lan *l, bool known)
{
	char ip[16], mac[18];

	if (!known) {
		printf("%-20s not present\n", name);
		return;
	}
	ipv4_text(l->ipv4, ip);
	mac_text(l->mac, mac);
	printf("%-20s %s, %s, link %s, MAC %s, IP %s\n", name, l->enabled ? "enabled" : "disabled",
	       l->dhcp_enabled ? "DHCP" : "static", l->link_up ? "up" : "down", mac,
	       l->ipv4 ? ip : "none");
}

static int cmd_info(const struct opts *o)
{
	static struct amt_info in;
	struct amt_host h;
	int rc = ah_open(&h, o->mei, o->mei_timeout_ms);

	if (rc == AGENT_OK)
		rc = ah_info(&h, &in, true);
	if (rc != AGENT_OK) {
		fail(h.err);
		ah_close(&h);
		return rc;
	}
	ah_close(&h);
	if (o->json) {
		json_t *j = info_json(&in);

		rc = print_json(j);
		json_decref(j);
		return rc;
	}
	printf("%-20s %s\n", "AMT version", or_dash(amthi_version_of(&in.cv, "AMT")));
	printf("%-20s %s\n", "Build number", or_dash(amthi_version_of(&in.cv, "Build Number")));
	printf("%-20s %s\n", "SKU", or_dash(amthi_version_of(&in.cv, "Sku")));
	printf("%-20s %s\n", "BIOS", in.cv.bios);
	printf("%-20s %s%s\n", "Provisioning state", ah_state_name(in.state),
	       in.state == 0 ? " (Not Provisioned)" : in.state == 1 ? " (in provisioning)" : "");
	printf("%-20s %s\n", "Control mode", in.mode_known ? ah_mode_name(in.mode) : "-");
	printf("%-20s %s\n", "UUID", in.uuid);
	printf("%-20s %s\n", "DNS suffix", in.dns_suffix[0] ? in.dns_suffix : "(none)");
	print_lan("Wired", &in.lan[0], in.lan_known[0]);
	print_lan("Wireless", &in.lan[1], in.lan_known[1]);
	printf("%-20s %u\n", "Certificate hashes", in.n_hashes);
	for (unsigned i = 0; i < in.n_hashes; i++) {
		const struct amthi_hash_entry *e = &in.hashes[i];

		printf("  %s (%s%s%s): ", e->name, amthi_hash_name(e->algorithm),
		       e->is_default ? ", default" : "", e->is_active ? ", active" : ", inactive");
		for (size_t k = 0; k < amthi_hash_size(e->algorithm); k++)
			printf("%02x", e->hash[k]);
		putchar('\n');
	}
	return AGENT_OK;
}

/* ---- register ----------------------------------------------------------------------- */

/* The enrollment secret: one line, at most 4 KiB, in a file only its owner can read. */
static char *read_secret(const char *path)
{
	struct stat st;
	char *buf;
	size_t n;
	FILE *f = fopen(path, "re");

	if (!f || fstat(fileno(f), &st) != 0) {
		fprintf(stderr, "amtprov-agent: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return NULL;
	}
	if (st.st_mode & 077) {
		fprintf(stderr, "amtprov-agent: %s: readable by group or others (mode %03o); "
			"chmod 600 it\n", path, (unsigned)(st.st_mode & 0777));
		fclose(f);
		return NULL;
	}
	buf = calloc(1, 4097);
	n = buf ? fread(buf, 1, 4096, f) : 0;
	fclose(f);
	if (!buf)
		return NULL;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (!n || strlen(buf) != n || strpbrk(buf, "\r\n")) {
		fprintf(stderr, "amtprov-agent: %s: the secret must be one non-empty line\n", path);
		OPENSSL_cleanse(buf, 4097);
		free(buf);
		return NULL;
	}
	return buf;
}

/* 16 characters, uniform over an alphabet without look-alikes (~93 bits). */
static int make_otp(char otp[17])
{
	static const char alpha[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
	const unsigned n = sizeof(alpha) - 1, limit = 256 - 256 % n;
	unsigned char r[64];
	int k = 0;

	while (k < 16) {
		if (RAND_bytes(r, sizeof(r)) != 1)
			return -1;
		for (size_t i = 0; i < sizeof(r) && k < 16; i++)
			if (r[i] < limit) /* rejection: no modulo bias */
				otp[k++] = alpha[r[i] % n];
	}
	otp[16] = '\0';
	OPENSSL_cleanse(r, sizeof(r));
	return 0;
}

/* DMI text (manufacturer, model): trimmed, 1..63 printable ASCII, else NULL. */
static char *dmi_value(const char *dir, const char *name, char *buf, size_t bufsz)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	n = fread(buf, 1, bufsz - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	if (n == 0 || n > 63)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return NULL;
	return buf;
}

static void to_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* Undoes StartConfiguration after a registration that did not happen: AMT would otherwise
 * stay in setup with an OTP nobody holds. */
static void stop_configuration(struct amt_host *h)
{
	uint8_t req[16];
	uint32_t st = 0;
	size_t n = amthi_req_simple(AMTHI_CMD_STOP_CONFIGURATION, req, sizeof(req));

	if (ah_status_call(h, req, n, AMTHI_CMD_STOP_CONFIGURATION, &st) != AGENT_OK ||
	    st != AMT_STATUS_SUCCESS)
		fprintf(stderr, "amtprov-agent: could not stop remote configuration again (%s); "
			"AMT stays in setup until its provisioning window ends\n",
			st ? "firmware refused" : h->err);
}

/* Waits for amtprovd to finish (R-PROV-10..11 on the server side), printing each state. */
static int wait_provisioned(const struct opts *o, const struct api_client *c)
{
	char path[600], err[600], last[64] = "";
	time_t end = time(NULL) + o->timeout_s;

	snprintf(path, sizeof(path), "/v1/devices/%s", o->fqdn);
	for (;;) {
		json_t *a = NULL;
		long code = 0;
		const char *st;

		if (api_request(c, path, NULL, &code, &a, err, sizeof(err)) == 0 && code == 200) {
			st = json_string_value(json_object_get(a, "state"));
			if (st && strcmp(st, last) != 0) {
				fprintf(stderr, "amtprov-agent: %s: %s\n", o->fqdn, st);
				snprintf(last, sizeof(last), "%s", st);
			}
			if (st && !strcmp(st, "PROVISIONED")) {
				json_decref(a);
				return AGENT_OK;
			}
			if (st && (!strcmp(st, "FAILED") || !strcmp(st, "BLOCKED"))) {
				const char *why = json_string_value(json_object_get(a, "last_error"));

				fprintf(stderr, "amtprov-agent: %s: provisioning %s: %s\n", o->fqdn,
					!strcmp(st, "FAILED") ? "failed" : "blocked",
					why ? why : "(no reason)");
				json_decref(a);
				return AGENT_FAIL;
			}
		} else if (code) {
			fprintf(stderr, "amtprov-agent: status query: HTTP %ld\n", code);
		} else {
			fprintf(stderr, "amtprov-agent: status query: %s\n", err);
		}
		json_decref(a);
		if (time(NULL) + o->interval_s > end) {
			fprintf(stderr, "amtprov-agent: %s: not provisioned after %ld s (state %s)\n",
				o->fqdn, o->timeout_s, last[0] ? last : "unknown");
			return AGENT_FAIL;
		}
		sleep((unsigned)o->interval_s);
	}
}

/* What a refusal means for the exit status (docs/api.md, "Endpoints"). */
static int refusal_class(long code, json_t *a)
{
	const char *result = json_string_value(json_object_get(a, "result"));

	if (code == 503 || (code == 409 && result && !strcmp(result, "busy")))
		return AGENT_BUSY;
	if (code == 422)
		return AGENT_PROVISIONED;
	return AGENT_REFUSED;
}

static int cmd_register(const struct opts *o)
{
	static struct amt_info in;
	struct amt_host h;
	struct api_client c = {.server = o->server, .ca_bundle = o->ca_bundle};
	char otp[17] = "", hash[65], fqdn[256], err[600], ip[16], man[128], mod[128];
	const char *amt, *manufacturer, *model;
	unsigned char md[32];
	unsigned mdlen = 0;
	uint8_t req[64];
	uint32_t st = 0;
	bool started = false;
	char *secret = NULL, *body = NULL;
	json_t *jb = NULL, *a = NULL;
	long code = 0;
	int rc;

	if (!o->server || !o->fqdn || !o->secret_file) {
		fail("register needs --server, --fqdn and --secret-file");
		return AGENT_USAGE;
	}
	if (strncasecmp(o->server, "https://", 8) != 0) {
		fail("--server must be an https:// URL: the secret never crosses the network in "
		     "the clear");
		return AGENT_USAGE;
	}
	if (strlen(o->fqdn) >= sizeof(fqdn) || !strchr(o->fqdn, '.')) {
		fail("--fqdn must be this computer's fully qualified name");
		return AGENT_USAGE;
	}
	snprintf(fqdn, sizeof(fqdn), "%s", o->fqdn);
	to_lower(fqdn);
	secret = read_secret(o->secret_file);
	if (!secret)
		return AGENT_USAGE;
	c.secret = secret;

	/* Seed 003 step 1: the MEI driver is there and AMT is Not Provisioned. */
	rc = ah_open(&h, o->mei, o->mei_timeout_ms);
	if (rc == AGENT_OK)
		rc = ah_info(&h, &in, false);
	if (rc != AGENT_OK) {
		fail(h.err);
		goto out;
	}
	amt = amthi_version_of(&in.cv, "AMT");
	if (!amt || !amt[0]) {
		fail("the firmware reports no AMT version (GetCodeVersions has no \"AMT\" entry)");
		rc = AGENT_FAIL;
		goto out;
	}
	if (in.state == 2) {
		fprintf(stderr, "amtprov-agent: AMT %s is already provisioned (control mode %s): "
			"nothing to register (R-PROV-01)\n", amt,
			in.mode_known ? ah_mode_name(in.mode) : "unknown");
		rc = AGENT_PROVISIONED;
		goto out;
	}
	/* Step 2: a random OTP into the firmware; only its hash leaves this process. */
	if (make_otp(otp) != 0) {
		fail("no random bytes (RAND_bytes failed)");
		rc = AGENT_FAIL;
		goto out;
	}
	rc = ah_status_call(&h, req, amthi_req_set_otp(otp, req, sizeof(req)),
			    AMTHI_CMD_SET_PROVISIONING_SERVER_OTP, &st);
	OPENSSL_cleanse(req, sizeof(req));
	if (rc == AGENT_OK && st != AMT_STATUS_SUCCESS) {
		char sn[32];

		rc = ah_status_class(st, true);
		/* In setup already, AMT takes a new OTP only once its provisioning window has
		 * elapsed (AMT-PROTOCOL.md 3): later, not never. */
		if (st == AMT_STATUS_INVALID_AMT_MODE && in.state == 1)
			rc = AGENT_BUSY;
		fprintf(stderr, "amtprov-agent: SetProvisioningServerOTP failed: %s%s\n",
			amthi_status_name(st, sn, sizeof(sn)),
			rc == AGENT_PROVISIONED ? " (AMT is provisioned)"
			: in.state == 1 && rc == AGENT_BUSY
				? " (AMT is in setup and keeps its OTP until its provisioning "
				  "window ends: try again later)"
			: rc == AGENT_BUSY ? " (firmware busy: try again later)" : "");
	} else if (rc != AGENT_OK) {
		fail(h.err);
	}
	if (rc != AGENT_OK)
		goto out;
	if (!EVP_Digest(otp, strlen(otp), md, &mdlen, EVP_sha256(), NULL)) {
		fail("SHA-256 failed");
		rc = AGENT_FAIL;
		goto out;
	}
	OPENSSL_cleanse(otp, sizeof(otp));
	for (int i = 0; i < 32; i++)
		snprintf(hash + 2 * i, 3, "%02x", md[i]);
	/* Activate the network interface before registering: amtprovd starts the device
	 * check as soon as the registration is stored, and AMT shows the OTP only in setup. */
	if (in.state == 0) {
		/* StartConfigurationEx came with AMT 6.0 (AMT-PROTOCOL.md 12.2). */
		uint32_t cmd = strtol(amt, NULL, 10) >= 6 ? AMTHI_CMD_START_CONFIGURATION_EX
							  : AMTHI_CMD_START_CONFIGURATION;
		size_t n = cmd == AMTHI_CMD_START_CONFIGURATION_EX
				   ? amthi_req_start_configuration_ex(false, req, sizeof(req))
				   : amthi_req_simple(cmd, req, sizeof(req));

		rc = ah_status_call(&h, req, n, cmd, &st);
		if (rc == AGENT_OK && st != AMT_STATUS_SUCCESS) {
			char sn[32];

			rc = ah_status_class(st, true);
			fprintf(stderr, "amtprov-agent: %s failed: %s%s\n",
				cmd == AMTHI_CMD_START_CONFIGURATION ? "StartConfiguration"
								     : "StartConfigurationEx",
				amthi_status_name(st, sn, sizeof(sn)),
				rc == AGENT_BUSY ? " (firmware not ready: try again later)" : "");
		} else if (rc != AGENT_OK) {
			fail(h.err);
		}
		if (rc != AGENT_OK)
			goto out;
		started = true;
	}
	/* Step 2-3: the registration (docs/api.md). */
	manufacturer = o->manufacturer ? o->manufacturer
				       : dmi_value(o->dmi_dir, "sys_vendor", man, sizeof(man));
	model = o->model ? o->model : dmi_value(o->dmi_dir, "product_name", mod, sizeof(mod));
	ipv4_text(in.lan[0].ipv4, ip);
	jb = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:s*,s:s*,s:s*}", "fqdn", fqdn, "uuid", in.uuid,
		       "amt_version", amt, "otp_hash", hash, "provisioning_state", "in",
		       "wireless", in.lan_known[1] && in.lan[1].enabled, "wired_ip",
		       in.lan_known[0] && in.lan[0].ipv4 ? ip : NULL, "manufacturer",
		       manufacturer, "model", model);
	body = jb ? json_dumps(jb, JSON_COMPACT) : NULL;
	if (!body) {
		fail("out of memory");
		rc = AGENT_FAIL;
		goto undo;
	}
	if (api_request(&c, "/v1/devices", body, &code, &a, err, sizeof(err)) != 0) {
		fprintf(stderr, "amtprov-agent: cannot reach the registration API: %s\n", err);
		rc = AGENT_FAIL;
		goto undo;
	}
	if (code != 200 && code != 201) {
		const char *e = json_string_value(json_object_get(a, "error"));
		const char *why = json_string_value(json_object_get(a, "reason"));

		rc = refusal_class(code, a);
		fprintf(stderr, "amtprov-agent: the server refused %s (HTTP %ld): %s%s%s\n", fqdn,
			code, e ? e : "(no detail)", why ? ": " : "", why ? why : "");
		goto undo;
	}
	if (o->json) {
		json_t *r = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s?,s:b}", "fqdn", fqdn, "uuid",
				      in.uuid, "amt_version", amt, "wired_ip",
				      json_string_value(json_object_get(jb, "wired_ip")), "result",
				      json_string_value(json_object_get(a, "result")), "state",
				      json_string_value(json_object_get(a, "state")),
				      "configuration_started", started);

		print_json(r);
		json_decref(r);
	} else {
		printf("registered %s (AMT %s, UUID %s, %s); remote configuration %s\n", fqdn, amt,
		       in.uuid, or_dash(json_string_value(json_object_get(a, "result"))),
		       started ? "started" : "already under way");
	}
	fflush(stdout);
	rc = o->wait ? wait_provisioned(o, &c) : AGENT_OK;
	goto out;
undo:
	if (started)
		stop_configuration(&h);
out:
	OPENSSL_cleanse(otp, sizeof(otp));
	if (secret) {
		OPENSSL_cleanse(secret, strlen(secret));
		free(secret);
	}
	ah_close(&h);
	free(body);
	json_decref(jb);
	json_decref(a);
	return rc;
}

static int parse_positive(const char *s, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"mei", required_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'j'},
		{"server", required_argument, NULL, 's'},
		{"fqdn", required_argument, NULL, 'f'},
		{"secret-file", required_argument, NULL, 'S'},
		{"ca-bundle", required_argument, NULL, 'C'},
		{"wait", no_argument, NULL, 'w'},
		{"timeout", required_argument, NULL, 't'},
		{"interval", required_argument, NULL, 'i'},
		{"manufacturer", required_argument, NULL, 'M'},
		{"model", required_argument, NULL, 'O'},
		{"dmi-dir", required_argument, NULL, 'D'},
		{"mei-timeout", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {.mei = "/dev/mei0", .mei_timeout_ms = 10000, .timeout_s = 900,
			 .interval_s = 5, .dmi_dir = "/sys/class/dmi/id"};
	const char *cmd;
	int c, rc;

	/* Options may come before or after the command (GNU getopt permutes). */
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'm': o.mei = optarg; break;
		case 'j': o.json = true; break;
		case 's': o.server = optarg; break;
		case 'f': o.fqdn = optarg; break;
		case 'S': o.secret_file = optarg; break;
		case 'C': o.ca_bundle = optarg; break;
		case 'w': o.wait = true; break;
		case 'M': o.manufacturer = optarg; break;
		case 'O': o.model = optarg; break;
		case 'D': o.dmi_dir = optarg; break;
		case 'T': {
			long s;

			if (parse_positive(optarg, 600000, &s)) {
				fail("--mei-timeout: milliseconds, 1..600000");
				return AGENT_USAGE;
			}
			o.mei_timeout_ms = (int)s;
			break;
		}
		case 't':
		case 'i':
			if (parse_positive(optarg, c == 't' ? 86400 : 3600,
					  c == 't' ? &o.timeout_s : &o.interval_s)) {
				fprintf(stderr, "amtprov-agent: --%s: a number of seconds, 1..%d\n",
					c == 't' ? "timeout" : "interval", c == 't' ? 86400 : 3600);
				return AGENT_USAGE;
			}
			break;
		case 'h': usage(stdout); return AGENT_OK;
		case 'V': printf("amtprov-agent %s\n", AMTPROV_VERSION); return AGENT_OK;
		default: usage(stderr); return AGENT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return AGENT_USAGE;
	}
	if ((o.manufacturer && (!o.manufacturer[0] || strlen(o.manufacturer) > 63)) ||
	    (o.model && (!o.model[0] || strlen(o.model) > 63))) {
		fail("--manufacturer and --model: 1 to 63 characters");
		return AGENT_USAGE;
	}
	cmd = argv[optind];
	if (!strcmp(cmd, "info"))
		return cmd_info(&o);
	if (strcmp(cmd, "register") != 0) {
		fprintf(stderr, "amtprov-agent: unknown command '%s'\n", cmd);
		usage(stderr);
		return AGENT_USAGE;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fail("cannot initialise libcurl");
		return AGENT_FAIL;
	}
	rc = cmd_register(&o);
	curl_global_cleanup();
	return rc;
}
