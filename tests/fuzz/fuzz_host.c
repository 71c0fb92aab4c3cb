/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_host.c - see fuzz_host.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_host.h"

static void h_log(const struct amtprov_host *host, int level, const char *fmt, ...)
	AMTPROV_PRINTF(3, 4);
static int h_status(const struct amtprov_host *host, uint32_t id, const char *device,
		    const char *fmt, ...) AMTPROV_PRINTF(4, 5);

/* Formats and drops: the sanitizers still see every argument the format reads. */
static void discard(const char *fmt, va_list ap) AMTPROV_PRINTF(1, 0);
static void discard(const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
}

static void h_log(const struct amtprov_host *host, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	discard(fmt, ap);
	va_end(ap);
	(void)host;
	(void)level;
}

static int h_status(const struct amtprov_host *host, uint32_t id, const char *device,
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	discard(fmt, ap);
	va_end(ap);
	(void)host;
	(void)id;
	(void)device;
	return AMTPROV_OK;
}

static int64_t h_now(const struct amtprov_host *host)
{
	(void)host;
	return 1798675200; /* 2027-01-01, so certificates made at start-up are valid */
}

static int64_t h_mono(const struct amtprov_host *host)
{
	(void)host;
	return 1000;
}

static struct amtprov_secret *h_secret_new(const struct amtprov_host *host, size_t len)
{
	struct amtprov_secret *s = calloc(1, sizeof(*s));

	(void)host;
	if (!s || !(s->data = calloc(1, len + 1))) {
		free(s);
		return NULL;
	}
	s->len = len;
	return s;
}

static void h_secret_free(const struct amtprov_host *host, struct amtprov_secret *s)
{
	(void)host;
	if (!s)
		return;
	if (s->data)
		memset(s->data, 0, s->len);
	free(s->data);
	free(s);
}

static int h_secret_get(const struct amtprov_host *host, const char *name,
			struct amtprov_secret **out, struct amtprov_error *err)
{
	static const char pw[] = "P@ssw0rd-fuzz";

	(void)name;
	*out = h_secret_new(host, sizeof(pw) - 1);
	if (!*out)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	memcpy((*out)->data, pw, sizeof(pw) - 1);
	return AMTPROV_OK;
}

static int h_secret_put(const struct amtprov_host *host, const char *name,
			const struct amtprov_secret *secret, struct amtprov_error *err)
{
	(void)host;
	(void)name;
	(void)secret;
	(void)err;
	return AMTPROV_OK;
}

static const char *h_state_dir(const struct amtprov_host *host)
{
	(void)host;
	return "/nonexistent/amtprov-fuzz";
}

static const char *h_instance(const struct amtprov_host *host)
{
	(void)host;
	return "fuzz";
}

const struct amtprov_host *fuzz_host(void)
{
	static const struct amtprov_host h = {
		.struct_size = sizeof(struct amtprov_host),
		.abi_major = AMTPROV_ABI_MAJOR,
		.abi_minor = AMTPROV_ABI_MINOR,
		.log = h_log,
		.status = h_status,
		.now = h_now,
		.monotonic_ms = h_mono,
		.secret_new = h_secret_new,
		.secret_free = h_secret_free,
		.secret_get = h_secret_get,
		.secret_put = h_secret_put,
		.state_dir = h_state_dir,
		.instance_name = h_instance,
	};

	return &h;
}
