/* SPDX-License-Identifier: Apache-2.0 */
#include "setup_ops.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "simutil.h"
#include "wsman_int.h" /* wm_commit_tls: CommitChanges' TLS part, with the certificate store */

bool setup_strong_password(const char *p)
{
	size_t n = strlen(p);
	bool dg = false, lo = false, up = false, sp = false;

	if (n < 8 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 32 || c > 126 || c == ':' || c == ',' || c == '"')
			return false;
		if (isdigit(c))
			dg = true;
		else if (islower(c))
			lo = true;
		else if (isupper(c))
			up = true;
		else if (c != '_' && c != ' ')
			sp = true; /* '_' and space are allowed but do not count as special */
	}
	return dg && lo && up && sp;
}

bool setup_valid_username(const char *u)
{
	size_t n = strlen(u);

	if (!n || n > 16 || !strncmp(u, "$$", 2))
		return false;
	for (size_t i = 0; i < n; i++)
		if (u[i] < 33 || u[i] > 126 || strchr(":,<>&\"", u[i]))
			return false;
	return true;
}

bool setup_valid_dns_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

int setup_commit(struct device *d)
{
	int rv;

	if (d->faults.commit_fail) {
		device_audit(d, "CommitChanges: fault injection, ReturnValue %d", d->faults.commit_fail);
		return d->faults.commit_fail;
	}
	if (!device_flash_write(d)) {
		device_audit(d, "CommitChanges: flash write limit exceeded");
		return PT_FLASH_WRITE_LIMIT_EXCEEDED;
	}
	rv = wm_commit_tls(d);
	if (rv) {
		device_audit(d, "CommitChanges: ReturnValue %d (TLS enabled without a credential context)", rv);
		return rv;
	}
	if (d->prov_state == DEV_IN) {
		d->prov_state = DEV_POST;
		d->control_mode = DEV_CM_ACM;
		d->otp[0] = '\0';
		device_audit(d, "CommitChanges: provisioned (state post, ACM)");
	} else {
		device_audit(d, "CommitChanges");
	}
	d->dirty = true;
	return PT_SUCCESS;
}

int setup_set_mebx(struct device *d, const char *pw)
{
	if (d->prov_state == DEV_POST && !d->mebx_password_default)
		return PT_NOT_PERMITTED;
	if (!setup_strong_password(pw))
		return PT_INVALID_PASSWORD;
	if (!device_flash_write(d))
		return PT_FLASH_WRITE_LIMIT_EXCEEDED;
	sim_strlcpy(d->mebx_password, pw, sizeof(d->mebx_password));
	d->mebx_password_default = false;
	d->dirty = true;
	device_audit(d, "SetMEBxPassword");
	return PT_SUCCESS;
}

long long setup_device_time(const struct device *d)
{
	return (long long)time(NULL) + d->clock_offset;
}

int setup_set_time(struct device *d, const char *ta0, const char *tm1, const char *tm2)
{
	const char *s[3] = {ta0, tm1, tm2};
	long long v[3];
	long long now = (long long)time(NULL);

	for (int i = 0; i < 3; i++)
		if (sim_parse_ll(s[i], 0, 0xffffffffLL, &v[i]) != 0)
			return PT_INVALID_PARAMETER;
	/* Ta0 must be a value this device handed out (not in its future), and the server's
	 * two timestamps must be ordered. */
	if (v[0] > now + d->clock_offset || v[2] < v[1])
		return PT_INVALID_PARAMETER;
	/* The console's clock becomes the device's: Tm1 was taken when it sent the request. */
	d->clock_offset = (int)(v[1] - now);
	d->dirty = true;
	device_audit(d, "SetHighAccuracyTimeSynch: clock offset now %d s", d->clock_offset);
	return PT_SUCCESS;
}

int setup_set_admin(struct device *d, const char *user, const char ha1[33], const char *via)
{
	if (!device_flash_write(d))
		return PT_FLASH_WRITE_LIMIT_EXCEEDED;
	sim_strlcpy(d->admin_user, user, sizeof(d->admin_user));
	sim_strlcpy(d->admin_ha1, ha1, sizeof(d->admin_ha1));
	d->dirty = true;
	device_audit(d, "%s: admin user \"%s\"", via, user);
	return PT_SUCCESS;
}
