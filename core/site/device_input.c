/* SPDX-License-Identifier: Apache-2.0 */
/* Registration checks shared by the command line and the HTTPS API (see device_input.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "device_input.h"
#include <amtprov/log.h>

#include "util.h"

int device_input_fqdn_valid(const char *s)
{
	size_t len, label = 0;
	int dots = 0;

	if (!s)
		return 0;
	len = strlen(s);
	if (len == 0 || len > 253 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return 0;
			dots++;
			label = 0;
			continue;
		}
		if (!(isalnum((unsigned char)*p) || *p == '-') || (label == 0 && *p == '-'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return dots >= 1 && s[len - 1] != '-';
}

int device_input_uuid_valid(const char *s)
{
	static const int dash[] = {8, 13, 18, 23};

	if (!s || strlen(s) != 36)
		return 0;
	for (int i = 0, d = 0; i < 36; i++) {
		if (d < 4 && i == dash[d]) {
			if (s[i] != '-')
				return 0;
			d++;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

int device_input_version_valid(const char *s)
{
	int parts = 0;
	const char *p = s;

	/* The record holds STORE_SHORT_SIZE - 1 characters: longer would be cut silently. */
	if (!s || !*s || strlen(s) >= STORE_SHORT_SIZE)
		return 0;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
		parts++;
		if (*p == '.')
			p++;
		else if (*p)
			return 0;
	}
	return parts >= 2 && parts <= 4 && s[strlen(s) - 1] != '.';
}

int device_input_hash_valid(const char *s)
{
	size_t n;

	if (!s)
		return 0;
	n = strlen(s);
	if (n != 40 && n != 64 && n != 96 && n != 128)
		return 0;
	for (const char *p = s; *p; p++)
		if (!isxdigit((unsigned char)*p))
			return 0;
	return 1;
}

int device_input_ip_valid(const char *s)
{
	unsigned char buf[16];

	if (!s || strlen(s) >= STORE_SHORT_SIZE)
		return 0;
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int device_input_text_valid(const char *s)
{
	size_t n;

	if (!s)
		return 0;
	n = strlen(s);
	if (n == 0 || n > DEVICE_INPUT_TEXT_MAX)
		return 0;
	/* Printable ASCII only: the text goes into status messages and log lines, where a
	 * control character could forge a line. */
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return 0;
	return 1;
}

/* Quotes at most 64 characters of an untrusted value, replacing anything unprintable, so a
 * message about it is safe to log. */
static void quote(char *buf, size_t size, const char *s)
{
	size_t n = 0;

	if (size == 0)
		return;
	for (; *s && n + 1 < size && n < 64; s++, n++)
		buf[n] = ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) ? '?' : *s;
	buf[n] = '\0';
	if (*s && n >= 3) /* cut: say so */
		buf[n - 1] = buf[n - 2] = buf[n - 3] = '.';
}

static int bad(const char **field, const char *name, char *msg, size_t size, const char *fmt,
	       ...) AMTPROV_PRINTF(5, 6);

static int bad(const char **field, const char *name, char *msg, size_t size, const char *fmt,
	       ...)
{
	va_list ap;

	*field = name;
	va_start(ap, fmt);
	vsnprintf(msg, size, fmt, ap);
	va_end(ap);
	return AMTPROV_E_INVALID;
}

int device_input_check(const struct device_input *in, const char **field, char *msg,
		       size_t size)
{
	const char *ps = in->provisioning_state ? in->provisioning_state : "pre";
	char q[80];

	if (!in->fqdn)
		return bad(field, "fqdn", msg, size, "fqdn is required");
	if (!in->uuid)
		return bad(field, "uuid", msg, size, "uuid is required");
	if (!in->amt_version)
		return bad(field, "amt_version", msg, size, "amt_version is required");
	if (!device_input_fqdn_valid(in->fqdn)) {
		quote(q, sizeof(q), in->fqdn);
		return bad(field, "fqdn", msg, size, "'%s' is not a fully qualified domain name", q);
	}
	if (!device_input_uuid_valid(in->uuid)) {
		quote(q, sizeof(q), in->uuid);
		return bad(field, "uuid", msg, size, "'%s' is not a UUID (8-4-4-4-12 hex digits)", q);
	}
	if (!device_input_version_valid(in->amt_version)) {
		quote(q, sizeof(q), in->amt_version);
		return bad(field, "amt_version", msg, size, "'%s' is not a version like 11.8.50", q);
	}
	if (in->wired_ip && !device_input_ip_valid(in->wired_ip)) {
		quote(q, sizeof(q), in->wired_ip);
		return bad(field, "wired_ip", msg, size, "'%s' is not an IPv4 or IPv6 address", q);
	}
	/* The value is never quoted: a near-miss OTP hash is still sensitive. */
	if (in->otp_hash && !device_input_hash_valid(in->otp_hash))
		return bad(field, "otp_hash", msg, size,
			   "otp_hash must be a SHA-1/256/384/512 hash in hex");
	if (strcmp(ps, "pre") && strcmp(ps, "in") && strcmp(ps, "post")) {
		quote(q, sizeof(q), ps);
		return bad(field, "provisioning_state", msg, size,
			   "provisioning_state '%s' is not pre, in or post", q);
	}
	if (in->manufacturer && !device_input_text_valid(in->manufacturer))
		return bad(field, "manufacturer", msg, size,
			   "manufacturer must be 1 to 63 printable ASCII characters");
	if (in->model && !device_input_text_valid(in->model))
		return bad(field, "model", msg, size,
			   "model must be 1 to 63 printable ASCII characters");
	return AMTPROV_OK;
}

static int get_str(const json_t *obj, const char *key, const char **out, const char **field,
		   char *msg, size_t size)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return AMTPROV_OK;
	if (!json_is_string(v)) {
		*field = key;
		snprintf(msg, size, "%s must be a string", key);
		return AMTPROV_E_INVALID;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		*field = key;
		snprintf(msg, size, "%s must not contain a NUL character", key);
		return AMTPROV_E_INVALID;
	}
	*out = json_string_value(v);
	return AMTPROV_OK;
}

int device_input_from_json(const json_t *obj, struct device_input *in, const char **field,
			   char *msg, size_t size)
{
	static const char *const keys[] = {"fqdn", "uuid", "amt_version", "wired_ip",
					   "otp_hash", "provisioning_state", "wireless",
					   "manufacturer", "model", NULL};
	const char *key;
	json_t *v;
	int rc;

	memset(in, 0, sizeof(*in));
	if (!json_is_object(obj)) {
		*field = "";
		snprintf(msg, size, "the body must be a JSON object");
		return AMTPROV_E_INVALID;
	}
	json_object_foreach((json_t *)obj, key, v) {
		int known = 0;

		for (size_t i = 0; keys[i]; i++)
			if (strcmp(keys[i], key) == 0)
				known = 1;
		if (!known) {
			char q[80];

			*field = "";
			quote(q, sizeof(q), key);
			snprintf(msg, size, "unknown key '%s'", q);
			return AMTPROV_E_INVALID;
		}
	}
	if ((rc = get_str(obj, "fqdn", &in->fqdn, field, msg, size)) ||
	    (rc = get_str(obj, "uuid", &in->uuid, field, msg, size)) ||
	    (rc = get_str(obj, "amt_version", &in->amt_version, field, msg, size)) ||
	    (rc = get_str(obj, "wired_ip", &in->wired_ip, field, msg, size)) ||
	    (rc = get_str(obj, "otp_hash", &in->otp_hash, field, msg, size)) ||
	    (rc = get_str(obj, "provisioning_state", &in->provisioning_state, field, msg, size)) ||
	    (rc = get_str(obj, "manufacturer", &in->manufacturer, field, msg, size)) ||
	    (rc = get_str(obj, "model", &in->model, field, msg, size)))
		return rc;
	v = json_object_get(obj, "wireless");
	if (v) {
		if (!json_is_boolean(v)) {
			*field = "wireless";
			snprintf(msg, size, "wireless must be true or false");
			return AMTPROV_E_INVALID;
		}
		in->wireless = json_is_true(v);
	}
	return AMTPROV_OK;
}

int device_input_refused(const struct device_input *in, char *why, size_t size)
{
	const char *ps = in->provisioning_state ? in->provisioning_state : "pre";

	/* R-PROV-01: only a device that is not provisioned starts the flow. 'pre' and 'in' (set
	 * up for remote configuration, waiting for it) both qualify. */
	if (strcmp(ps, "post") != 0)
		return 0;
	snprintf(why, size, "AMT provisioning state is '%s': already provisioned, not Not "
			    "Provisioned (R-PROV-01)", ps);
	return 1;
}

void device_input_to_record(const struct device_input *in, struct store_device *dev)
{
	memset(dev, 0, sizeof(*dev));
	util_strlcpy(dev->fqdn, in->fqdn, sizeof(dev->fqdn));
	util_lower(dev->fqdn);
	util_strlcpy(dev->uuid, in->uuid, sizeof(dev->uuid));
	util_lower(dev->uuid);
	util_strlcpy(dev->amt_version, in->amt_version, sizeof(dev->amt_version));
	util_strlcpy(dev->wired_ip, in->wired_ip ? in->wired_ip : "", sizeof(dev->wired_ip));
	util_strlcpy(dev->otp_hash, in->otp_hash ? in->otp_hash : "", sizeof(dev->otp_hash));
	util_lower(dev->otp_hash);
	dev->wireless_capable = in->wireless ? 1 : 0;
}

void device_input_summary(const struct device_input *in, char *buf, size_t size)
{
	snprintf(buf, size, "AMT %s%s%s%s%s%s%s", in->amt_version,
		 in->wired_ip ? ", wired IP " : "", in->wired_ip ? in->wired_ip : "",
		 in->manufacturer ? ", " : "", in->manufacturer ? in->manufacturer : "",
		 in->model ? " " : "", in->model ? in->model : "");
}
