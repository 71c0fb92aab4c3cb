/* SPDX-License-Identifier: Apache-2.0 */
/* The status message catalog: stable IDs, the seed's 7210/7211 (R-PC-06). */
#include <string.h>

#include <CUnit/CUnit.h>

#include <amtprov/error.h>

#include "provcert.h"
#include "status.h"

/* R-PC-06: 7210 is the expiry warning, 7211 the expiry error, as in the seed. */
static void test_seed_ids_have_seed_meaning(void)
{
	const struct status_entry *w = status_lookup(7210), *e = status_lookup(7211);

	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(w->severity, STORE_SEV_WARNING);
	CU_ASSERT_EQUAL(e->severity, STORE_SEV_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(w->text, "40 days"));
	CU_ASSERT_PTR_NOT_NULL(strstr(e->text, "15 days"));
}

static void test_catalog_sorted_unique_and_complete(void)
{
	size_t n;
	const struct status_entry *cat = status_catalog(&n);

	CU_ASSERT_TRUE(n > 20);
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_PTR_NOT_NULL(cat[i].name);
		CU_ASSERT_PTR_NOT_NULL(cat[i].text);
		CU_ASSERT_TRUE(cat[i].severity >= STORE_SEV_INFO && cat[i].severity <= STORE_SEV_ERROR);
		if (i)
			CU_ASSERT_TRUE(cat[i - 1].id < cat[i].id); /* binary search needs order */
		CU_ASSERT_PTR_EQUAL(status_lookup(cat[i].id), &cat[i]);
		for (size_t j = 0; j < i; j++)
			CU_ASSERT_STRING_NOT_EQUAL(cat[i].name, cat[j].name);
	}
}

static void test_unknown_id_is_not_found(void)
{
	CU_ASSERT_PTR_NULL(status_lookup(0));
	CU_ASSERT_PTR_NULL(status_lookup(7212));
	CU_ASSERT_PTR_NULL(status_lookup(99999));
}

static void test_severity_names_round_trip(void)
{
	for (int s = STORE_SEV_INFO; s <= STORE_SEV_ERROR; s++)
		CU_ASSERT_EQUAL(status_severity_parse(status_severity_name(s)), s);
	CU_ASSERT_EQUAL(status_severity_parse("fatal"), -1);
	CU_ASSERT_EQUAL(status_severity_parse(NULL), -1);
}

/* R-PC-06's day boundaries: 7210 at 40 days or fewer, 7211 below 15. */
static void test_provcert_expiry_days(void)
{
	CU_ASSERT_EQUAL(provcert_expiry_status(41, 40, 15), 0);
	CU_ASSERT_EQUAL(provcert_expiry_status(40, 40, 15), STATUS_PROVCERT_EXPIRING);
	CU_ASSERT_EQUAL(provcert_expiry_status(16, 40, 15), STATUS_PROVCERT_EXPIRING);
	CU_ASSERT_EQUAL(provcert_expiry_status(15, 40, 15), STATUS_PROVCERT_EXPIRING);
	CU_ASSERT_EQUAL(provcert_expiry_status(14, 40, 15), STATUS_PROVCERT_EXPIRING_SOON);
	CU_ASSERT_EQUAL(provcert_expiry_status(-3, 40, 15), STATUS_PROVCERT_EXPIRING_SOON);
	CU_ASSERT_EQUAL(provcert_expiry_status(400, 40, 15), 0);
}

/* Issue 17: an error too long for its buffer ends at a word boundary, marked, never
 * mid-word ("...SSL routines::sslv"). */
static void test_long_error_cut_at_word(void)
{
	struct amtprov_error e;
	char words[600] = "";
	size_t len;

	for (size_t n = 0; n < sizeof(words) - 40;)
		n += (size_t)snprintf(words + n, sizeof(words) - n, "handshake failure alert ");
	amtprov_error_clear(&e);
	amtprov_error_set(&e, AMTPROV_E_DENIED, "pc1", "refused: %s[SSL routines::sslv3]", words);
	len = strlen(e.msg);
	CU_ASSERT(len < sizeof(e.msg));
	CU_ASSERT(len > sizeof(e.msg) / 2);
	CU_ASSERT_STRING_EQUAL(e.msg + len - 4, " ...");
	/* What comes before the marker is whole words of the original. */
	CU_ASSERT_EQUAL(strncmp(e.msg, "refused: handshake failure alert ", 33), 0);
	CU_ASSERT(e.msg[len - 5] == 'e' || e.msg[len - 5] == 't');
	/* One word longer than the buffer is still cut, marked. */
	memset(words, 'x', sizeof(words) - 1);
	words[sizeof(words) - 1] = '\0';
	amtprov_error_clear(&e);
	amtprov_error_set(&e, AMTPROV_E_DENIED, NULL, "%s", words);
	CU_ASSERT_EQUAL(strlen(e.msg), sizeof(e.msg) - 1);
	CU_ASSERT_STRING_EQUAL(e.msg + sizeof(e.msg) - 5, " ...");
	/* A message that fits is untouched. */
	amtprov_error_clear(&e);
	amtprov_error_set(&e, AMTPROV_E_DENIED, NULL, "short %s", "enough");
	CU_ASSERT_STRING_EQUAL(e.msg, "short enough");
}

void register_status_tests(void);
void register_status_tests(void)
{
	CU_pSuite s = CU_add_suite("status", NULL, NULL);

	CU_add_test(s, "7210 warns and 7211 errors on provisioning-certificate expiry (R-PC-06)",
		    test_seed_ids_have_seed_meaning);
	CU_add_test(s, "R-PC-06: 7210 at 41/40/16/15 days and 7211 at 14 fall on the right days",
		    test_provcert_expiry_days);
	CU_add_test(s, "catalog is sorted, unique and complete", test_catalog_sorted_unique_and_complete);
	CU_add_test(s, "unknown status IDs are not found", test_unknown_id_is_not_found);
	CU_add_test(s, "severity names round-trip", test_severity_names_round_trip);
	CU_add_test(s, "a long error is cut at a word boundary, marked, never mid-word",
		    test_long_error_cut_at_word);
}
