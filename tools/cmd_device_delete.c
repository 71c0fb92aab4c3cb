/* SPDX-License-Identifier: Apache-2.0 */
/*
 * amtprov device delete DEVICE [--revoke] [--force]: an administrator removes a device
 * record (a retired machine, a mistyped registration). The semantics are device_delete.h's;
 * docs/lifecycle.md "Deleting a device" explains them.
 */
#include "cmd_device_delete.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cmd_device_credentials.h"
#include "device_delete.h"
#include "exit_codes.h"
#include "plugin_host.h"
#include "site.h"

void device_delete_usage(FILE *out)
{
	fputs("Usage: amtprov -m FILE device delete DEVICE [--revoke] [--force]\n"
	      "Removes a device from the inventory: its FQDN and UUID are free for a new\n"
	      "registration and its secrets leave the credential store. Its history stays: the\n"
	      "record is kept as 'deleted-ID:FQDN' in state DELETED with its certificates and\n"
	      "audit trail ('amtprov device list --state DELETED', 'device show deleted-ID:FQDN').\n"
	      "Refused, saying what to do, when the device may still hold something live:\n"
	      "  a step in progress (exit 6: try again);\n"
	      "  a state other than REGISTERED, FAILED or UNPROVISIONED, where AMT may hold\n"
	      "    the site's settings ('amtprov device unprovision' cleans up first);\n"
	      "  FAILED with its AMT admin password on record (failed after the first stage);\n"
	      "  a certificate not revoked;\n"
	      "  a directory computer account created since its last unprovision.\n"
	      "  --revoke   queue the revocation of its unrevoked certificates\n"
	      "             (cessationOfOperation); amtprovd's revocation task does it\n"
	      "  --force    delete in any state but a step in progress, and with a directory\n"
	      "             account left (named in the output); never skips --revoke\n"
	      "Exit status: 0 deleted (1 if some secrets could not be removed: named on\n"
	      "stderr), 1 no such device or refused, 2 usage, 3 configuration, 4 database,\n"
	      "5 plugin, 6 busy: try again.\n",
	      out);
}

int cmd_device_delete(const char *manifest, int json, struct alog *log, int argc, char **argv)
{
	static const struct option opts[] = {{"revoke", no_argument, NULL, 'r'},
					     {"force", no_argument, NULL, 'f'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct device_delete_opts opt = {0};
	struct device_delete_result res;
	struct plugin_instance *cs;
	struct amtprov_error err;
	struct site *s = NULL;
	char actor[STORE_SHORT_SIZE];
	int o, rc;

	optind = 0; /* a full re-initialisation: main() parsed with "+" */
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (o == 'r') {
			opt.revoke = 1;
		} else if (o == 'f') {
			opt.force = 1;
		} else if (o == 'h') {
			device_delete_usage(stdout);
			return EXIT_OK;
		} else {
			device_delete_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		device_delete_usage(stderr);
		return EXIT_USAGE;
	}
	if (!manifest) {
		fprintf(stderr, "amtprov: no manifest: use -m FILE or set AMTPROV_MANIFEST\n");
		return EXIT_USAGE;
	}
	rc = cli_site_open(manifest, log, 0, &s);
	if (rc != EXIT_OK)
		return rc;
	amtprov_error_clear(&err);
	/* Only the credential store is started: the device's secrets go with it. */
	cs = site_manifest(s)->credstore
		     ? plugin_host_find(site_plugins(s), site_manifest(s)->credstore) : NULL;
	if (cs && plugin_host_start_one(cs, &err) != AMTPROV_OK) {
		cli_print_err(&err);
		site_close(s);
		return tool_exit_code(&err);
	}
	cli_actor_name(actor, sizeof(actor));
	opt.actor = actor;
	rc = device_delete(s, argv[optind], &opt, &res, &err);
	if (rc != AMTPROV_OK) {
		cli_print_err(&err);
		site_close(s);
		return rc == AMTPROV_E_BUSY ? EXIT_RETRY
		       : rc == AMTPROV_E_NOT_FOUND || rc == AMTPROV_E_STATE ? EXIT_FAIL
									      : tool_exit_code(&err);
	}
	if (json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:b}", "fqdn", res.dev.fqdn, "uuid",
				      res.dev.uuid, "state", res.dev.state, "record", res.tombstone,
				      "certificates_kept", res.certificates, "revocations_queued",
				      res.revocations_queued, "secrets_removed",
				      !res.secrets_failed);

		json_object_set_new(j, "directory_account_left",
				    res.account_left ? json_string(res.account) : json_null());
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(j);
	} else {
		printf("%s: deleted (was %s); kept as %s with %d certificate%s and its audit trail\n",
		       res.dev.fqdn, res.dev.state, res.tombstone, res.certificates,
		       res.certificates == 1 ? "" : "s");
		if (res.revocations_queued)
			printf("%d certificate%s queued for revocation (amtprovd's revocation-queue "
			       "task; 'amtprov cert list --status revoke-pending')\n",
			       res.revocations_queued, res.revocations_queued == 1 ? "" : "s");
		if (res.account_left)
			printf("directory computer account %s was left: remove it in the directory\n",
			       res.account);
	}
	if (res.secrets_failed)
		fprintf(stderr, "amtprov: %s: %d credential record%s not removed: %s\n",
			res.dev.fqdn, res.secrets_failed, res.secrets_failed == 1 ? "" : "s",
			res.secrets_error);
	site_close(s);
	return res.secrets_failed ? EXIT_FAIL : EXIT_OK;
}
