/* SPDX-License-Identifier: Apache-2.0 */
/* `amtprov device credentials DEVICE [--reveal]`: how an administrator gets into a
 * provisioned device (issue 17 item 7, docs/operations.md "Credentials"). Without --reveal
 * it names the account and the credential records, and shows no secret; with it, it prints
 * the passwords and the core audits the reveal (status 8120). */
#include "cmd_device_credentials.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "credentials.h"
#include "exit_codes.h"
#include "plugin_host.h"
#include "site.h"
#include "util.h"

void device_credentials_usage(FILE *out)
{
	fputs("Usage: amtprov -m FILE device credentials DEVICE [--reveal]\n"
	      "Names the AMT accounts amtprov set on DEVICE (FQDN or UUID) and where their\n"
	      "passwords are kept. --reveal prints the Remote Admin password (user 'admin',\n"
	      "HTTP Digest) and the site's MEBx password: only someone who can read the site's\n"
	      "credential store (the amtprovd user or root) can, each reveal is recorded in the\n"
	      "device's audit trail and as status 8120 CREDENTIALS_REVEALED, and the password is\n"
	      "written to standard output only. See docs/operations.md \"Credentials\".\n"
	      "Exit status: 0 done, 1 no such device or no password on record, 2 usage,\n"
	      "3 configuration (no credential store), 4 database, 5 plugin.\n",
	      out);
}

void cli_print_err(const struct amtprov_error *err)
{
	if (err->where[0])
		fprintf(stderr, "amtprov: %s: %s\n", err->where, err->msg);
	else
		fprintf(stderr, "amtprov: %s\n", err->msg[0] ? err->msg : amtprov_strerror(err->code));
}

int cli_site_open(const char *manifest, struct alog *log, int flags, struct site **out)
{
	struct site_options so = {.manifest = manifest, .log = log, .flags = flags};
	struct manifest_problems probs = {0};
	struct amtprov_error err;
	int rc;

	amtprov_error_clear(&err);
	rc = site_open(&so, out, &probs, &err);
	if (probs.count)
		manifest_problems_print(&probs, manifest, stderr);
	manifest_problems_free(&probs);
	if (rc != AMTPROV_OK) {
		if (rc != AMTPROV_E_CONFIG || !probs.count)
			cli_print_err(&err);
		return tool_exit_code(&err);
	}
	return EXIT_OK;
}

/* "cli:NAME" for the audit trail: who asked, as the system knows them. */
void cli_actor_name(char *out, size_t size)
{
	const struct passwd *pw = getpwuid(geteuid());

	if (pw && pw->pw_name)
		snprintf(out, size, "cli:%s", pw->pw_name);
	else
		snprintf(out, size, "cli:uid%lu", (unsigned long)geteuid());
}

static void print_text(const struct device_credentials *c, int reveal)
{
	printf("device      %s (%s)\n", c->dev.fqdn, c->dev.state);
	printf("user        %s (AMT's Remote Admin account, HTTP Digest)\n", c->admin_user);
	printf("password    %.*s\n", reveal ? (int)c->admin_password->len : 0,
	       reveal ? c->admin_password->data : "");
	if (!reveal)
		printf("            (credential '%s'; --reveal prints it, audited)\n",
		       c->admin_credential);
	if (c->mebx_credential)
		printf("MEBx        %.*s%s(site credential '%s')\n",
		       reveal && c->mebx_password ? (int)c->mebx_password->len : 0,
		       reveal && c->mebx_password ? c->mebx_password->data : "",
		       reveal && c->mebx_password ? " " : "", c->mebx_credential);
	printf("WS-Man      https://%s:16993/wsman (curl --digest -u %s ...; "
	       "see docs/operations.md)\n", c->dev.fqdn, c->admin_user);
}

/* Without --reveal: the account and the record names, no secret, no credential store. */
static int describe(struct site *s, const char *device, int json)
{
	struct device_credentials c;
	struct manifest *m = site_manifest(s);
	struct amtprov_error err;

	memset(&c, 0, sizeof(c));
	amtprov_error_clear(&err);
	if (store_device_find(site_store(s), device, &c.dev, &err) != AMTPROV_OK) {
		cli_print_err(&err);
		return EXIT_FAIL;
	}
	c.admin_user = "admin";
	snprintf(c.admin_credential, sizeof(c.admin_credential), "device/%s/admin", c.dev.fqdn);
	c.mebx_credential = m->mebx_password && m->mebx_policy ? m->mebx_password : NULL;
	if (json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "fqdn", c.dev.fqdn, "state", c.dev.state,
				      "user", c.admin_user, "credential", c.admin_credential);

		if (c.mebx_credential)
			json_object_set_new(j, "mebx_credential", json_string(c.mebx_credential));
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(j);
	} else {
		print_text(&c, 0);
	}
	return EXIT_OK;
}

int cmd_device_credentials(const char *manifest, int json, struct alog *log, int argc,
			   char **argv)
{
	static const struct option opts[] = {{"reveal", no_argument, NULL, 'r'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct device_credentials c;
	struct plugin_instance *cs;
	struct amtprov_error err;
	struct site *s = NULL;
	char actor[STORE_SHORT_SIZE];
	int reveal = 0, o, rc;

	optind = 0; /* a full re-initialisation: main() parsed with "+" */
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (o == 'r') {
			reveal = 1;
		} else if (o == 'h') {
			device_credentials_usage(stdout);
			return EXIT_OK;
		} else {
			device_credentials_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		device_credentials_usage(stderr);
		return EXIT_USAGE;
	}
	if (!manifest) {
		fprintf(stderr, "amtprov: no manifest: use -m FILE or set AMTPROV_MANIFEST\n");
		return EXIT_USAGE;
	}
	/* Only the credential store is started: nothing else of the site runs for this. */
	rc = cli_site_open(manifest, log, reveal ? 0 : SITE_NO_PLUGINS | SITE_READONLY_DB, &s);
	if (rc != EXIT_OK)
		return rc;
	if (!reveal) {
		rc = describe(s, argv[optind], json);
		site_close(s);
		return rc;
	}
	cs = site_manifest(s)->credstore
		     ? plugin_host_find(site_plugins(s), site_manifest(s)->credstore) : NULL;
	if (!cs) {
		fprintf(stderr, "amtprov: %s: no credential store (credentials.store)\n", manifest);
		site_close(s);
		return EXIT_CONFIG;
	}
	if (plugin_host_start_one(cs, &err) != AMTPROV_OK) {
		cli_print_err(&err);
		fprintf(stderr, "amtprov: only the site's administrator, who can read its "
				"credential store, can reveal a device's credentials\n");
		site_close(s);
		return tool_exit_code(&err);
	}
	cli_actor_name(actor, sizeof(actor));
	rc = device_credentials_reveal(s, cs, argv[optind], actor, &c, &err);
	if (rc != AMTPROV_OK) {
		cli_print_err(&err);
		site_close(s);
		return rc == AMTPROV_E_NOT_FOUND ? EXIT_FAIL : tool_exit_code(&err);
	}
	if (json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s%}", "fqdn", c.dev.fqdn, "state",
				      c.dev.state, "user", c.admin_user, "credential",
				      c.admin_credential, "password", c.admin_password->data,
				      c.admin_password->len);

		if (c.mebx_credential)
			json_object_set_new(j, "mebx_credential", json_string(c.mebx_credential));
		if (c.mebx_password)
			json_object_set_new(j, "mebx_password",
					    json_stringn(c.mebx_password->data, c.mebx_password->len));
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(j);
	} else {
		print_text(&c, 1);
	}
	device_credentials_free(&c);
	site_close(s);
	return EXIT_OK;
}
