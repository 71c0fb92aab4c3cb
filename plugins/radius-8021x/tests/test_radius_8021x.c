/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the radius-8021x plugin, loaded from the build directory through the real plugin
 * host (pi_netprofile_* wrappers): which client certificates a device needs (R-8021X-01),
 * the template warning (R-8021X-03), and the rendering that binds each profile to its own
 * certificate (R-8021X-04).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "log.h"
#include "plugin_host.h"

#define PLUGIN_DIR AMTPROV_PLUGIN_BUILD_DIR

struct fx {
	struct alog *log;
	struct plugin_host *ph;
	struct plugin_instance *pi;
	char root[256];
	int statuses_8209;
	char last_status[512];
};

static struct fx fx;

static int on_status(void *ctx, uint32_t id, const char *device, const char *detail)
{
	struct fx *f = ctx;

	if (id == 8209) {
		f->statuses_8209++;
		snprintf(f->last_status, sizeof(f->last_status), "%s", detail ? detail : "");
	}
	return AMTPROV_OK;
}

static void fx_open(const char *config)
{
	struct host_env env = {.config_base = "/plugins", .emit_status = on_status,
			       .status_ctx = &fx};
	struct amtprov_error err;
	json_t *cfg = config ? json_loads(config, 0, NULL) : NULL;

	memset(&fx, 0, sizeof(fx));
	fx.log = alog_new("radius-8021x-test", AMTPROV_LOG_DEBUG, ALOG_CALLBACK);
	env.log = fx.log;
	snprintf(fx.root, sizeof(fx.root), "/tmp/r8021x-test.XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(fx.root));
	env.state_root = fx.root;
	fx.ph = plugin_host_new(&env);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx.ph);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(plugin_host_add_dir(fx.ph, PLUGIN_DIR, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL_FATAL(plugin_host_create(fx.ph, "dot1x", "radius-8021x", cfg,
						 AMTPROV_KIND_NETPROFILE, &fx.pi, &err),
			      AMTPROV_OK);
	json_decref(cfg);
}

static void fx_close(void)
{
	plugin_host_free(fx.ph);
	alog_free(fx.log);
	rmdir(fx.root);
}

/* A manifest section as the manifest loader hands it over (validated). */
static const char *const PROFILES =
	"{\"plugin\":\"dot1x\","
	" \"wired\":{\"name\":\"lan\",\"eap\":\"eap-tls\",\"server_name\":\"radius.contoso.com\","
	"           \"client_certificate\":{\"ca\":\"lab-ca\",\"template\":\"AMT802.1XClient\"}},"
	" \"wireless\":["
	"  {\"name\":\"wifi1\",\"ssid\":\"corp\",\"priority\":1,\"security\":\"wpa2-enterprise\","
	"   \"eap\":\"eap-tls\",\"client_certificate\":{\"ca\":\"lab-ca\",\"template\":\"AMT802.1XClient\"}},"
	"  {\"name\":\"wifi2\",\"ssid\":\"guest\",\"priority\":2,\"security\":\"wpa2-enterprise\","
	"   \"eap\":\"peap-mschapv2\",\"username\":\"amt\",\"password\":\"wifi2-pw\"}]}";

struct needs {
	char profile[8][32];
	int wireless[8];
	char ca[8][32], tmpl[8][64];
	size_t n;
};

static int collect(void *ctx, const struct amtprov_netprofile_cert_need *need)
{
	struct needs *n = ctx;

	if (n->n >= 8)
		return AMTPROV_E_INTERNAL;
	snprintf(n->profile[n->n], sizeof(n->profile[0]), "%s", need->profile);
	snprintf(n->ca[n->n], sizeof(n->ca[0]), "%s", need->ca_instance ? need->ca_instance : "");
	snprintf(n->tmpl[n->n], sizeof(n->tmpl[0]), "%s",
		 need->template_name ? need->template_name : "");
	n->wireless[n->n++] = need->wireless;
	return AMTPROV_OK;
}

static struct amtprov_device_info dev(int wireless)
{
	return (struct amtprov_device_info){.struct_size = sizeof(struct amtprov_device_info),
					    .fqdn = "pc1.contoso.com", .uuid = "u", .amt_major = 12,
					    .wireless_capable = wireless};
}

/* R-8021X-01: one certificate per profile that asks for one; wireless only when capable. */
static void test_needs(void)
{
	json_t *p = json_loads(PROFILES, 0, NULL);
	struct amtprov_device_info d = dev(1);
	struct amtprov_error err;
	struct needs n = {0};

	fx_open(NULL);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_netprofile_cert_needs(fx.pi, p, &d, collect, &n, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(n.n, 2);
	CU_ASSERT_STRING_EQUAL(n.profile[0], "lan");
	CU_ASSERT_EQUAL(n.wireless[0], 0);
	CU_ASSERT_STRING_EQUAL(n.profile[1], "wifi1");
	CU_ASSERT_EQUAL(n.wireless[1], 1);
	CU_ASSERT_STRING_EQUAL(n.ca[1], "lab-ca");
	CU_ASSERT_STRING_EQUAL(n.tmpl[1], "AMT802.1XClient");
	CU_ASSERT_EQUAL(fx.statuses_8209, 0); /* one template: no warning */

	memset(&n, 0, sizeof(n));
	d = dev(0);
	CU_ASSERT_EQUAL(pi_netprofile_cert_needs(fx.pi, p, &d, collect, &n, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(n.n, 1);
	CU_ASSERT_STRING_EQUAL(n.profile[0], "lan");
	json_decref(p);
	fx_close();
}

/* R-8021X-03: different templates work but raise status 8209 naming them. */
static void test_template_warning(void)
{
	json_t *p = json_loads(PROFILES, 0, NULL);
	struct amtprov_device_info d = dev(1);
	struct amtprov_error err;
	struct needs n = {0};

	json_object_set_new(json_object_get(json_object_get(p, "wired"), "client_certificate"),
			    "template", json_string("WiredClient"));
	fx_open(NULL);
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_netprofile_cert_needs(fx.pi, p, &d, collect, &n, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(fx.statuses_8209, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(fx.last_status, "WiredClient"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fx.last_status, "AMT802.1XClient"));
	json_decref(p);
	fx_close();
}

/* R-8021X-04: each profile carries its own certificate's handle, never another's; a profile
 * whose certificate is missing is refused rather than left unbound. */
static void test_render(void)
{
	json_t *p = json_loads(PROFILES, 0, NULL), *out = NULL, *w, *wl;
	struct amtprov_device_info d = dev(1);
	struct amtprov_error err;
	struct amtprov_netprofile_cert certs[2] = {
		{.struct_size = sizeof(certs[0]), .profile = "wifi1",
		 .cert_handle = "Intel(r) AMT Certificate: Handle: 7"},
		{.struct_size = sizeof(certs[0]), .profile = "lan",
		 .cert_handle = "Intel(r) AMT Certificate: Handle: 5"},
	};

	fx_open("{\"pxe_timeout\": 60}");
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(pi_netprofile_render(fx.pi, p, &d, certs, 2, &out, &err), AMTPROV_OK);
	w = json_object_get(out, "wired");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(w, "client_cert_handle")),
			       "Intel(r) AMT Certificate: Handle: 5");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(w, "settings"),
							   "AuthenticationProtocol")), 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(w, "settings"),
							   "PxeTimeout")), 60);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(w, "settings"),
							   "Enabled")), 2);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(w, "settings"),
								 "ServerCertificateName")),
			       "radius.contoso.com");
	wl = json_object_get(out, "wireless");
	CU_ASSERT_EQUAL_FATAL(json_array_size(wl), 2);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(wl, 0),
								 "client_cert_handle")),
			       "Intel(r) AMT Certificate: Handle: 7");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(
				json_object_get(json_array_get(wl, 0), "settings"),
				"AuthenticationMethod")), 7);
	/* PEAP without a certificate: no binding, the password as a credential name only. */
	CU_ASSERT_PTR_NULL(json_object_get(json_array_get(wl, 1), "client_cert_handle"));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(wl, 1),
								 "password_credential")),
			       "wifi2-pw");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(
				json_object_get(json_array_get(wl, 1), "ieee8021x"),
				"AuthenticationProtocol")), 2);
	json_decref(out);

	/* The wired profile's certificate missing: refused, naming the profile. */
	out = NULL;
	amtprov_error_clear(&err);
	CU_ASSERT_EQUAL(pi_netprofile_render(fx.pi, p, &d, certs, 1, &out, &err),
			AMTPROV_E_INVALID);
	CU_ASSERT_PTR_NULL(out);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "lan"));

	/* Not wireless-capable: no wireless profile is rendered. */
	d = dev(0);
	CU_ASSERT_EQUAL(pi_netprofile_render(fx.pi, p, &d, certs, 2, &out, &err), AMTPROV_OK);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(out, "wireless")), 0);
	json_decref(out);
	json_decref(p);
	fx_close();
}

static void test_bad_config(void)
{
	struct host_env env = {.config_base = "/plugins"};
	struct amtprov_error err;
	struct plugin_host *ph;
	struct plugin_instance *pi = NULL;
	struct alog *lg = alog_new("radius-8021x-test", AMTPROV_LOG_DEBUG, ALOG_CALLBACK);
	json_t *cfg = json_loads("{\"server_name_match\":\"prefix\"}", 0, NULL);

	env.log = lg;
	ph = plugin_host_new(&env);
	amtprov_error_clear(&err);
	plugin_host_add_dir(ph, PLUGIN_DIR, &err);
	CU_ASSERT_NOT_EQUAL(plugin_host_create(ph, "dot1x", "radius-8021x", cfg,
					       AMTPROV_KIND_NETPROFILE, &pi, &err),
			    AMTPROV_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "server_name_match"));
	json_decref(cfg);
	plugin_host_free(ph);
	alog_free(lg);
}

int main(void)
{
	CU_pSuite su;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	su = CU_add_suite("radius_8021x", NULL, NULL);
	CU_add_test(su, "certificate needs (R-8021X-01)", test_needs);
	CU_add_test(su, "template warning (R-8021X-03)", test_template_warning);
	CU_add_test(su, "render binds each profile (R-8021X-04)", test_render);
	CU_add_test(su, "bad config refused", test_bad_config);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
