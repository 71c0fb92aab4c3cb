/* SPDX-License-Identifier: Apache-2.0 */
/* The device model: version rules, realm, unprovision, JSON round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "device.h"

void register_sim_device_tests(void);

static void test_version_rules(void)
{
	struct device d;

	CU_ASSERT_EQUAL(device_init(&d, "a", "8.1.40"), 0);
	CU_ASSERT_TRUE(device_has_legacy_soap(&d));
	CU_ASSERT_FALSE(device_refuses_sha1_and_small_rsa(&d));
	CU_ASSERT_TRUE(device_has_default_sha1_hashes(&d));
	CU_ASSERT_EQUAL(device_set_version(&d, "9.0.30"), 0);
	CU_ASSERT_FALSE(device_has_legacy_soap(&d));
	CU_ASSERT_EQUAL(device_set_version(&d, "12.0.45"), 0);
	CU_ASSERT_EQUAL(device_max_tls_version(&d), 0x0303);
	CU_ASSERT_EQUAL(device_set_version(&d, "16.1.25"), 0);
	CU_ASSERT_TRUE(device_refuses_sha1_and_small_rsa(&d));
	CU_ASSERT_FALSE(device_allows_non_tls(&d));
	CU_ASSERT_EQUAL(device_min_tls_version(&d), 0x0303);
	CU_ASSERT_NOT_EQUAL(device_set_version(&d, "x.1"), 0);
	device_clear(&d);
}

static void test_realm_and_defaults(void)
{
	struct device d;
	int sha1 = 0;

	CU_ASSERT_EQUAL(device_init(&d, "a", "11.8.50"), 0);
	CU_ASSERT_EQUAL(strlen(d.realm), 39);
	CU_ASSERT_EQUAL(strncmp(d.realm, "Digest:", 7), 0);
	for (int i = 7; i < 39; i++)
		CU_ASSERT_TRUE((d.realm[i] >= '0' && d.realm[i] <= '9') ||
			       (d.realm[i] >= 'A' && d.realm[i] <= 'F'));
	CU_ASSERT_EQUAL(d.prov_state, DEV_PRE);
	for (int i = 0; i < d.n_hashes; i++)
		sha1 += d.hashes[i].algo == DEV_HASH_SHA1;
	CU_ASSERT_EQUAL(sha1, 0); /* 11.0 removed the SHA-1 defaults */
	CU_ASSERT_TRUE(d.n_hashes > 0);
	device_clear(&d);
}

static void test_unprovision_and_otp(void)
{
	struct device d;
	unsigned char h[32] = {1, 2, 3};
	int before;

	device_init(&d, "a", "11.8.50");
	before = d.n_hashes;
	CU_ASSERT_EQUAL(device_add_hash(&d, "test", DEV_HASH_SHA256, h, false, true), 0);
	CU_ASSERT_EQUAL(device_add_hash(&d, "test", DEV_HASH_SHA256, h, false, true), -2);
	CU_ASSERT_EQUAL(d.n_hashes, before + 1);
	CU_ASSERT_NOT_EQUAL(device_set_otp(&d, "short"), 0);
	CU_ASSERT_EQUAL(device_set_otp(&d, "Abcdefgh1234"), 0);
	d.prov_state = DEV_POST;
	CU_ASSERT_NOT_EQUAL(device_set_otp(&d, "Abcdefgh5678"), 0);
	device_unprovision(&d);
	CU_ASSERT_EQUAL(d.n_hashes, before);
	CU_ASSERT_EQUAL(d.prov_state, DEV_PRE);
	CU_ASSERT_EQUAL(d.otp[0], '\0');
	CU_ASSERT_TRUE(d.audit_len >= 2);
	device_clear(&d);
}

static void test_json_round_trip(void)
{
	struct device d, e;
	char path[] = "/tmp/amtsim-unit-XXXXXX", err[256];
	int fd = mkstemp(path);
	unsigned char h[48] = {9, 9, 9};

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	device_init(&d, "dev-1", "15.0.10");
	snprintf(d.host_name, sizeof(d.host_name), "host1");
	snprintf(d.pki_dns_suffix, sizeof(d.pki_dns_suffix), "contoso.com");
	d.prov_state = DEV_IN;
	device_add_hash(&d, "user384", DEV_HASH_SHA384, h, false, false);
	d.n_wifi = 1;
	memset(&d.wifi[0], 0, sizeof(d.wifi[0]));
	snprintf(d.wifi[0].ssid, sizeof(d.wifi[0].ssid), "CORP");
	d.wifi[0].auth_method = 7;
	device_audit(&d, "hello %d", 42);
	CU_ASSERT_EQUAL(device_save(&d, path), 0);
	device_init(&e, "dev-1", "1.0.0");
	CU_ASSERT_EQUAL_FATAL(device_load(&e, path, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(e.version, "15.0.10");
	CU_ASSERT_STRING_EQUAL(e.uuid, d.uuid);
	CU_ASSERT_STRING_EQUAL(e.realm, d.realm);
	CU_ASSERT_STRING_EQUAL(e.admin_ha1, d.admin_ha1);
	CU_ASSERT_STRING_EQUAL(e.pki_dns_suffix, "contoso.com");
	CU_ASSERT_EQUAL(e.prov_state, DEV_IN);
	CU_ASSERT_EQUAL(e.n_hashes, d.n_hashes);
	CU_ASSERT_FALSE(e.hashes[e.n_hashes - 1].enabled);
	CU_ASSERT_EQUAL(e.n_wifi, 1);
	CU_ASSERT_STRING_EQUAL(e.wifi[0].ssid, "CORP");
	CU_ASSERT_EQUAL(e.audit_len, d.audit_len);
	unlink(path);
	device_clear(&d);
	device_clear(&e);
}

void register_sim_device_tests(void)
{
	CU_pSuite s = CU_add_suite("sim.device", NULL, NULL);

	CU_add_test(s, "version rules", test_version_rules);
	CU_add_test(s, "realm and default hashes", test_realm_and_defaults);
	CU_add_test(s, "unprovision and OTP", test_unprovision_and_otp);
	CU_add_test(s, "JSON round trip", test_json_round_trip);
}
