/* SPDX-License-Identifier: Apache-2.0 */
#include "credentials.h"

#include <stdio.h>
#include <string.h>

#include "flow_int.h"
#include "plugin_host.h"
#include "status.h"
#include "util.h"

int device_credentials_reveal(struct site *s, struct plugin_instance *credstore,
			      const char *device, const char *actor,
			      struct device_credentials *out, struct amtprov_error *err)
{
	struct manifest *m = site_manifest(s);
	char detail[STORE_TEXT_SIZE];
	int rc;

	memset(out, 0, sizeof(*out));
	rc = store_device_find(site_store(s), device, &out->dev, err);
	if (rc)
		return rc;
	out->admin_user = "admin";
	flow_admin_cred_name(out->dev.fqdn, out->admin_credential, sizeof(out->admin_credential));
	rc = pi_credstore_get(credstore, out->admin_credential, &out->admin_password, err);
	if (rc == AMTPROV_E_NOT_FOUND) {
		amtprov_error_clear(err); /* the store's words name a file, not the device */
		return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, out->dev.fqdn,
					 "no AMT admin password on record (device is %s): the first "
					 "stage sets one, unprovisioning removes it", out->dev.state);
	}
	if (rc)
		return rc;
	/* The MEBx password is the site's (credentials.mebx_password); the first stage sets it
	 * on devices as mebx_password_policy says. */
	if (m->mebx_password && m->mebx_policy) {
		struct amtprov_error e2;

		amtprov_error_clear(&e2);
		out->mebx_credential = m->mebx_password;
		if (pi_credstore_get(credstore, m->mebx_password, &out->mebx_password, &e2) !=
		    AMTPROV_OK)
			out->mebx_password = NULL;
	}
	snprintf(detail, sizeof(detail), "AMT credentials (%s%s) revealed to %.60s",
		 out->admin_credential, out->mebx_password ? ", MEBx" : "", actor);
	rc = store_audit_add(site_store(s), actor, out->dev.id, "credentials.reveal", detail,
			     site_now(s), err);
	if (rc == AMTPROV_OK)
		rc = site_status(s, STATUS_CREDENTIALS_REVEALED, out->dev.fqdn, detail);
	if (rc != AMTPROV_OK) {
		/* No record of the reveal, no secret. */
		device_credentials_free(out);
		if (!err->msg[0])
			amtprov_error_set(err, rc, out->dev.fqdn, "the reveal could not be recorded");
	}
	return rc;
}

void device_credentials_free(struct device_credentials *c)
{
	util_secret_free(c->admin_password);
	util_secret_free(c->mebx_password);
	c->admin_password = c->mebx_password = NULL;
}
