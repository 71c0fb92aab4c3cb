/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core/metrics.c: observations land in one series per label set (whatever thread records
 * them), histograms are written cumulative with +Inf equal to _count, label values are
 * escaped as the Prometheus text format wants, and AMT operations get their names.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include <amtprov/transport.h>

#include "metrics.h"
#include "test_util.h"

void register_metrics_tests(void);

static char *render(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_EQUAL(metrics_write(f), 0);
	fclose(f);
	return text;
}

static void *record(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++) {
		metrics_ca_call("lab-ca", "submit", "ISSUED", 0.02);
		metrics_amt_call(AMTPROV_AMT_COMMIT, 0, 0.2);
	}
	return NULL;
}

static void test_threads_one_series(void)
{
	pthread_t t[4];
	char *text;

	metrics_reset();
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, record, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	text = render();
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "amtprov_ca_call_duration_seconds_count{instance=\"lab-ca\","
					    "op=\"submit\",answer=\"ISSUED\"} 4000\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "amtprov_amt_calls_total{op=\"commit\",result=\"OK\"} 4000\n"));
	/* One series, not one per call: the label set appears once per bucket line. */
	CU_ASSERT_PTR_NULL(strstr(strstr(text, "_count{instance=\"lab-ca\"") + 1,
				  "_count{instance=\"lab-ca\""));
	free(text);
}

static void test_histogram_cumulative(void)
{
	char *text;

	metrics_reset();
	metrics_step("NEED_CERTIFICATE", "ok", 0.003);
	metrics_step("NEED_CERTIFICATE", "ok", 0.3);
	metrics_step("NEED_CERTIFICATE", "ok", 3000);
	text = render();
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "{step=\"NEED_CERTIFICATE\",outcome=\"ok\",le=\"0.005\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "{step=\"NEED_CERTIFICATE\",outcome=\"ok\",le=\"0.25\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "{step=\"NEED_CERTIFICATE\",outcome=\"ok\",le=\"0.5\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "{step=\"NEED_CERTIFICATE\",outcome=\"ok\",le=\"60\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "{step=\"NEED_CERTIFICATE\",outcome=\"ok\",le=\"+Inf\"} 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "_count{step=\"NEED_CERTIFICATE\",outcome=\"ok\"} 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE amtprov_step_duration_seconds histogram\n"));
	free(text);
}

static void test_labels_escaped(void)
{
	char *text;
	char buf[16];

	metrics_reset();
	metrics_ca_call("a\"b\\c\nd", "poll", "error", 1);
	metrics_outcome("failed", 7);
	text = render();
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "instance=\"a\\\"b\\\\c\\nd\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "amtprov_provisioning_outcomes_total{outcome=\"failed\","
					    "reason=\"E_VERIFY\"} 1\n"));
	free(text);
	CU_ASSERT_STRING_EQUAL(metrics_amt_op_name(AMTPROV_AMT_GET_SETUP_STATE, buf, sizeof(buf)),
			       "get_setup_state");
	CU_ASSERT_STRING_EQUAL(metrics_amt_op_name(AMTPROV_AMT_DELETE_WIFI_PROFILE, buf, sizeof(buf)),
			       "delete_wifi_profile");
	CU_ASSERT_STRING_EQUAL(metrics_amt_op_name(999, buf, sizeof(buf)), "op_999");
	metrics_reset();
}

/* The registration API's closings under its limits: one counter, labelled by the limit. */
static void test_api_closed(void)
{
	char *text;

	metrics_reset();
	metrics_api_closed("max_connections_per_address");
	metrics_api_closed("max_connections_per_address");
	metrics_api_closed("request_deadline");
	text = render();
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE amtprov_api_connections_closed_total counter\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "amtprov_api_connections_closed_total{reason=\"max_"
					    "connections_per_address\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "amtprov_api_connections_closed_total{reason=\"request_"
					    "deadline\"} 1\n"));
	CU_ASSERT_PTR_NULL(strstr(text, "{reason=\"max_connections\"}"));
	free(text);
	metrics_reset();
}

void register_metrics_tests(void)
{
	CU_pSuite s = CU_add_suite("metrics", NULL, NULL);

	CU_add_test(s, "threads record into one series per label set", test_threads_one_series);
	CU_add_test(s, "histograms are cumulative, +Inf is _count", test_histogram_cumulative);
	CU_add_test(s, "label values escaped; status and AMT operation names",
		    test_labels_escaped);
	CU_add_test(s, "API connections closed, by limit", test_api_closed);
}
