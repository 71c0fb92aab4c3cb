/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ad_drive.c - a test driver for tests/integration/test_directory_ad.sh: opens a site
 * (its credential store gives the plugin its bind password, as in amtprovd), and calls one
 * directory op of one instance through the real plugin loader.
 *
 *   ad_drive SITE.json INSTANCE create FQDN ACCOUNT CONTAINER|- PWFILE|- SPN...
 *   ad_drive SITE.json INSTANCE delete FQDN
 *   ad_drive SITE.json INSTANCE keyinfo FQDN      prints realm, salt, kvno, enctypes
 *   ad_drive SITE.json INSTANCE sid NAME          prints the SID
 *
 * CONTAINER "-" is the manifest's amt.directory_container, as amtprovd passes it.
 * create writes the account password the plugin returned to PWFILE (0600), for the test's
 * kinit. Exit 0 on success; otherwise it prints "error E_NAME: message" and exits 1.
 * The ABI 1.2 slots are called through the descriptor's ops, as the core will.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <amtprov/directory.h>

#include "log.h"
#include "plugin_host.h"
#include "site.h"
#include "util.h"

static int call(struct site *s, struct plugin_instance *pi, int argc, char **argv,
		struct amtprov_error *err)
{
	const struct amtprov_directory_ops *o = plugin_instance_desc(pi)->ops;
	void *h = plugin_instance_handle(pi);
	const char *op = argv[0];

	if (!strcmp(op, "create") && argc >= 5) {
		struct amtprov_directory_account a = {
			.struct_size = sizeof(a),
			.fqdn = argv[1],
			.account_name = argv[2],
			.container = strcmp(argv[3], "-") ? argv[3]
							   : site_manifest(s)->directory_container,
			.spns = (const char *const *)&argv[5],
		};
		struct amtprov_secret *pw = NULL;
		int rc = pi_directory_create(pi, argv[1], &a, &pw, err);

		if (rc == AMTPROV_OK && pw && strcmp(argv[4], "-")) {
			int fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0600);

			if (fd < 0 || write(fd, pw->data, pw->len) != (ssize_t)pw->len)
				rc = amtprov_error_set(err, AMTPROV_E_IO, argv[4], "cannot write");
			if (fd >= 0)
				close(fd);
		}
		if (rc == AMTPROV_OK && !pw)
			rc = amtprov_error_set(err, AMTPROV_E_INTERNAL, argv[1], "no password");
		util_secret_free(pw);
		return rc;
	}
	if (!strcmp(op, "delete") && argc == 2)
		return pi_directory_delete(pi, argv[1], argv[1], err);
	if (!strcmp(op, "keyinfo") && argc == 2) {
		struct amtprov_directory_keyinfo k = {.struct_size = sizeof(k)};
		int rc;

		if (!AMTPROV_HAS_SLOT(o, struct amtprov_directory_ops, account_keyinfo))
			return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, op, "no slot");
		rc = o->account_keyinfo(h, argv[1], &k, err);
		if (rc == AMTPROV_OK)
			printf("realm %s\nsalt %s\nkvno %u\nenctypes %u\n", k.realm, k.salt, k.kvno,
			       k.enctypes);
		return rc;
	}
	if (!strcmp(op, "sid") && argc == 2) {
		char sid[200];
		int rc;

		if (!AMTPROV_HAS_SLOT(o, struct amtprov_directory_ops, resolve_sid))
			return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, op, "no slot");
		rc = o->resolve_sid(h, argv[1], sid, sizeof(sid), err);
		if (rc == AMTPROV_OK)
			printf("%s\n", sid);
		return rc;
	}
	return amtprov_error_set(err, AMTPROV_E_INVALID, op, "usage: see ad_drive.c");
}

int main(int argc, char **argv)
{
	struct alog *log = alog_new("ad_drive", AMTPROV_LOG_INFO, ALOG_STDERR);
	struct site_options so = {.flags = SITE_NO_DB, .log = log};
	struct site *s = NULL;
	struct plugin_instance *pi = NULL;
	struct amtprov_error err;
	int rc;

	amtprov_error_clear(&err);
	if (argc < 5) {
		fprintf(stderr, "usage: ad_drive SITE.json INSTANCE OP ARGS...\n");
		alog_free(log);
		return 2;
	}
	so.manifest = argv[1];
	rc = site_open(&so, &s, NULL, &err);
	if (rc == AMTPROV_OK) {
		pi = plugin_host_find(site_plugins(s), argv[2]);
		if (!pi || plugin_instance_kind(pi) != AMTPROV_KIND_DIRECTORY)
			rc = amtprov_error_set(&err, AMTPROV_E_NOT_FOUND, argv[2],
					       "not a directory instance");
	}
	if (rc == AMTPROV_OK)
		rc = plugin_host_start_all(site_plugins(s), &err);
	if (rc == AMTPROV_OK)
		rc = call(s, pi, argc - 3, argv + 3, &err);
	if (rc != AMTPROV_OK)
		printf("error %s: %s\n", amtprov_status_name(rc), err.msg);
	site_close(s);
	alog_free(log);
	return rc == AMTPROV_OK ? 0 : 1;
}
