/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_transport.c - the smallest valid transport plugin (kind TRANSPORT): every mandatory
 * slot is present so the loader's kind and slot checks accept it, but begin() knows no
 * operation and answers AMTPROV_E_NOT_SUPPORTED, as the ABI says an unknown op must.
 */
#include <stdlib.h>

#include <amtprov/transport.h>

struct ft_session {
	int unused;
};

static const struct amtprov_config_field ft_table[] = {
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

static int ft_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
	char none;
	int rc = host->config_parse(host, config, ft_table, &none, err);

	if (rc != AMTPROV_OK)
		return rc;
	/* The host pointer is the whole state: enough for log lines. */
	*instance = (void *)host;
	return AMTPROV_OK;
}

static void ft_destroy(void *instance)
{
}

static int ft_session_open(void *instance, const struct amtprov_transport_target *target,
			   void **session, struct amtprov_error *err)
{
	struct ft_session *s = calloc(1, sizeof(*s));

	if (!s)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	*session = s;
	return AMTPROV_OK;
}

static void ft_session_close(void *instance, void *session)
{
	free(session);
}

static int ft_begin(void *instance, void *session, uint32_t op, const struct json_t *params,
		    amtprov_transport_done_cb done, void *cb_ctx, struct amtprov_error *err)
{
	return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, NULL,
				 "fake-transport: operation %u is not implemented", (unsigned)op);
}

static int ft_get_wait(void *instance, struct amtprov_wait *wait, struct amtprov_error *err)
{
	wait->fd = -1;
	wait->events = 0;
	wait->timeout_ms = -1;
	return AMTPROV_OK;
}

static int ft_drive(void *instance, struct amtprov_error *err)
{
	return AMTPROV_OK;
}

static int ft_finish(void *instance, void *session, struct json_t **result,
		     struct amtprov_error *err)
{
	return amtprov_error_set(err, AMTPROV_E_STATE, NULL,
				 "fake-transport: no operation has finished");
}

static const struct amtprov_transport_ops ft_ops = {
	.struct_size = sizeof(struct amtprov_transport_ops),
	.session_open = ft_session_open,
	.session_close = ft_session_close,
	.begin = ft_begin,
	.get_wait = ft_get_wait,
	.drive = ft_drive,
	.finish = ft_finish,
};

static const char *const ft_caps[] = {AMTPROV_CAP_TRANSPORT_WSMAN, NULL};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_TRANSPORT, .name = "fake-transport",
		      .version = "0.1.0", .description = "transport that supports no operation",
		      .capabilities = ft_caps, .create = ft_create, .destroy = ft_destroy,
		      .ops = &ft_ops, .config_table = ft_table);
