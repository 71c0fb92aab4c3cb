/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_netprofile.c - the smallest valid network-profile plugin (kind NETPROFILE): it
 * needs no client certificates and renders an empty 802.1X configuration.
 */
#include <jansson.h>

#include <amtprov/netprofile.h>

static const struct amtprov_config_field fn_table[] = {
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

static int fn_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
	char none;
	int rc = host->config_parse(host, config, fn_table, &none, err);

	if (rc != AMTPROV_OK)
		return rc;
	*instance = (void *)host;
	return AMTPROV_OK;
}

static void fn_destroy(void *instance)
{
}

static int fn_cert_needs(void *instance, const struct json_t *profiles,
			 const struct amtprov_device_info *device, amtprov_netprofile_need_cb cb,
			 void *ctx, struct amtprov_error *err)
{
	return AMTPROV_OK;
}

static int fn_render(void *instance, const struct json_t *profiles,
		     const struct amtprov_device_info *device,
		     const struct amtprov_netprofile_cert *certs, size_t n_certs,
		     struct json_t **params, struct amtprov_error *err)
{
	json_t *p = json_pack("{s:n, s:[]}", "wired", "wireless");

	if (!p)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	*params = p;
	return AMTPROV_OK;
}

static const struct amtprov_netprofile_ops fn_ops = {
	.struct_size = sizeof(struct amtprov_netprofile_ops),
	.cert_needs = fn_cert_needs,
	.render = fn_render,
};

static const char *const fn_caps[] = {AMTPROV_CAP_NETPROFILE_WIRED, NULL};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_NETPROFILE, .name = "fake-netprofile",
		      .version = "0.1.0", .description = "network profiles that need nothing",
		      .capabilities = fn_caps, .create = fn_create, .destroy = fn_destroy,
		      .ops = &fn_ops, .config_table = fn_table);
