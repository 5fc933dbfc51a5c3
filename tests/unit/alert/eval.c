/* Tests for src/alert/eval.c (trigger verdicts) and the webhook body and signature of send.c. */
#include "support/testutil.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "alert/eval.h"
#include "alert/send.h"

static struct cfg_alert alert_off(void)
{
	struct cfg_alert a;
	memset(&a, 0, sizeof(a));
	a.id = "a";
	a.failed_rows = a.failed_rows_percent = a.records_drop_percent = -1;
	return a;
}

static struct alert_run_facts facts(enum run_status st)
{
	struct alert_run_facts f;
	memset(&f, 0, sizeof(f));
	f.run_id = 12;
	f.status = st;
	f.elapsed_ms = 500;
	f.full_read = true;
	return f;
}

static void test_trigger_off_is_unknown(void **unused)
{
	(void)unused;
	struct cfg_alert a = alert_off();
	struct alert_run_facts f = facts(RUN_FAILED);
	struct strbuf sb = STRBUF_INIT;
	f.run_error = true;
	for (int t = 0; t < AT__COUNT; t++) {
		assert_false(alert_trigger_on(&a, (enum alert_trigger)t));
		assert_int_equal(alert_eval_run(&a, (enum alert_trigger)t, &f, &sb), AV_UNKNOWN);
	}
	assert_string_equal(alert_trigger_name(AT_RECORDS_DROP), "recordsDropPercent");
	assert_null(alert_trigger_name(AT__COUNT));
	strbuf_release(&sb);
}

static void test_run_failed(void **unused)
{
	(void)unused;
	struct cfg_alert a = alert_off();
	struct strbuf sb = STRBUF_INIT;
	a.run_failed = true;
	struct alert_run_facts f = facts(RUN_FAILED);
	f.run_error = true;
	f.error = "Braze rejected the API key";
	assert_int_equal(alert_eval_run(&a, AT_RUN_FAILED, &f, &sb), AV_FIRING);
	assert_string_equal(sb.buf, "run 12 failed: Braze rejected the API key");
	/* only some rows failed: the run itself completed */
	f.run_error = false;
	f.counts.failed = 3;
	assert_int_equal(alert_eval_run(&a, AT_RUN_FAILED, &f, &sb), AV_CLEAR);
	f = facts(RUN_SUCCESS);
	assert_int_equal(alert_eval_run(&a, AT_RUN_FAILED, &f, &sb), AV_CLEAR);
	/* an interrupted run says nothing */
	f = facts(RUN_INTERRUPTED);
	f.run_error = true;
	assert_int_equal(alert_eval_run(&a, AT_RUN_FAILED, &f, &sb), AV_UNKNOWN);
	strbuf_release(&sb);
}

static void test_failed_rows(void **unused)
{
	(void)unused;
	struct cfg_alert a = alert_off();
	struct strbuf sb = STRBUF_INIT;
	a.failed_rows = 10;
	a.failed_rows_percent = 5;
	struct alert_run_facts f = facts(RUN_FAILED);
	f.counts.created = 90;
	f.counts.updated = 0;
	f.counts.failed = 10; /* 10 of 100 = 10 % */
	assert_int_equal(alert_eval_run(&a, AT_FAILED_ROWS, &f, &sb), AV_CLEAR); /* not more than 10 */
	assert_int_equal(alert_eval_run(&a, AT_FAILED_ROWS_PERCENT, &f, &sb), AV_FIRING);
	assert_non_null(strstr(sb.buf, "10 of 100 rows failed (10.0%, more than 5%)"));
	f.counts.failed = 11;
	assert_int_equal(alert_eval_run(&a, AT_FAILED_ROWS, &f, &sb), AV_FIRING);
	assert_string_equal(sb.buf, "run 12: 11 rows failed (more than 10)");
	/* exactly the threshold percentage does not fire; nothing attempted does not either */
	a.failed_rows_percent = 10;
	f.counts.failed = 10;
	assert_int_equal(alert_eval_run(&a, AT_FAILED_ROWS_PERCENT, &f, &sb), AV_CLEAR);
	f = facts(RUN_SUCCESS);
	assert_int_equal(alert_eval_run(&a, AT_FAILED_ROWS_PERCENT, &f, &sb), AV_CLEAR);
	/* a run that failed as a whole: its counts say nothing */
	f = facts(RUN_FAILED);
	f.run_error = true;
	f.counts.failed = 500;
	assert_int_equal(alert_eval_run(&a, AT_FAILED_ROWS, &f, &sb), AV_UNKNOWN);
	assert_int_equal(alert_eval_run(&a, AT_FAILED_ROWS_PERCENT, &f, &sb), AV_UNKNOWN);
	/* failedRows 0: any failed row fires */
	a.failed_rows = 0;
	f = facts(RUN_FAILED);
	f.counts.failed = 1;
	assert_int_equal(alert_eval_run(&a, AT_FAILED_ROWS, &f, &sb), AV_FIRING);
	strbuf_release(&sb);
}

static void test_delete_guard(void **unused)
{
	(void)unused;
	struct cfg_alert a = alert_off();
	struct strbuf sb = STRBUF_INIT;
	a.delete_guard = true;
	struct alert_run_facts f = facts(RUN_FAILED);
	f.run_error = true;
	f.deletes_held = 250;
	assert_int_equal(alert_eval_run(&a, AT_DELETE_GUARD, &f, &sb), AV_FIRING);
	assert_non_null(strstr(sb.buf, "held back 250 deletes"));
	f.deletes_held = 0; /* failed for another reason: unknown */
	assert_int_equal(alert_eval_run(&a, AT_DELETE_GUARD, &f, &sb), AV_UNKNOWN);
	f = facts(RUN_SUCCESS);
	assert_int_equal(alert_eval_run(&a, AT_DELETE_GUARD, &f, &sb), AV_CLEAR);
	strbuf_release(&sb);
}

static void test_records_drop(void **unused)
{
	(void)unused;
	struct cfg_alert a = alert_off();
	struct strbuf sb = STRBUF_INIT;
	a.records_drop_percent = 20;
	struct alert_run_facts f = facts(RUN_SUCCESS);
	f.records = 75;
	assert_int_equal(alert_eval_run(&a, AT_RECORDS_DROP, &f, &sb), AV_UNKNOWN); /* nothing to compare with */
	f.have_prev = true;
	f.prev_records = 100;
	assert_int_equal(alert_eval_run(&a, AT_RECORDS_DROP, &f, &sb), AV_FIRING);
	assert_non_null(strstr(sb.buf, "read 75 records, 25.0% fewer than the 100 of the previous run"));
	f.records = 80; /* exactly 20 %: not more */
	assert_int_equal(alert_eval_run(&a, AT_RECORDS_DROP, &f, &sb), AV_CLEAR);
	f.records = 150; /* growth */
	assert_int_equal(alert_eval_run(&a, AT_RECORDS_DROP, &f, &sb), AV_CLEAR);
	f.records = 0; /* everything gone */
	assert_int_equal(alert_eval_run(&a, AT_RECORDS_DROP, &f, &sb), AV_FIRING);
	f.full_read = false; /* incremental, or the read failed */
	assert_int_equal(alert_eval_run(&a, AT_RECORDS_DROP, &f, &sb), AV_UNKNOWN);
	f.full_read = true;
	f.prev_records = 0;
	assert_int_equal(alert_eval_run(&a, AT_RECORDS_DROP, &f, &sb), AV_UNKNOWN);
	strbuf_release(&sb);
}

static void test_run_longer(void **unused)
{
	(void)unused;
	struct cfg_alert a = alert_off();
	struct strbuf sb = STRBUF_INIT;
	a.run_longer_ms = 3600 * 1000;
	struct alert_run_facts f = facts(RUN_SUCCESS);
	f.elapsed_ms = 3600 * 1000 + 5 * 60000;
	assert_int_equal(alert_eval_run(&a, AT_RUN_LONGER, &f, &sb), AV_FIRING);
	assert_string_equal(sb.buf, "run 12 took 65 min (more than 60 min)");
	f.status = RUN_INTERRUPTED; /* stopped after too long: still too long */
	assert_int_equal(alert_eval_run(&a, AT_RUN_LONGER, &f, &sb), AV_FIRING);
	f.elapsed_ms = 1000;
	assert_int_equal(alert_eval_run(&a, AT_RUN_LONGER, &f, &sb), AV_UNKNOWN);
	f.status = RUN_FAILED;
	assert_int_equal(alert_eval_run(&a, AT_RUN_LONGER, &f, &sb), AV_CLEAR);
	strbuf_release(&sb);
}

static void test_no_success(void **unused)
{
	(void)unused;
	struct cfg_alert a = alert_off();
	struct strbuf sb = STRBUF_INIT;
	int64_t h = 3600 * 1000;
	a.no_success_ms = 6 * h;
	assert_int_equal(alert_eval_stale(&a, 100 * h, 0, 0, &sb), AV_UNKNOWN); /* never ran */
	assert_int_equal(alert_eval_stale(&a, 100 * h, 0, 99 * h, &sb), AV_UNKNOWN); /* failing for 1 h only */
	assert_int_equal(alert_eval_stale(&a, 100 * h, 0, 90 * h, &sb), AV_FIRING);
	assert_non_null(strstr(sb.buf, "no successful run since the first run"));
	assert_int_equal(alert_eval_stale(&a, 100 * h, 93 * h, 10 * h, &sb), AV_FIRING);
	assert_string_equal(sb.buf, "no successful run for 7 h 0 min (more than 6 h 0 min)");
	assert_int_equal(alert_eval_stale(&a, 100 * h, 95 * h, 10 * h, &sb), AV_CLEAR);
	assert_int_equal(alert_eval_stale(&a, 100 * h, 94 * h, 10 * h, &sb), AV_CLEAR); /* exactly 6 h: not more */
	a.no_success_ms = 0;
	assert_int_equal(alert_eval_stale(&a, 100 * h, 0, 1, &sb), AV_UNKNOWN);
	strbuf_release(&sb);
}

static void test_scope(void **unused)
{
	(void)unused;
	struct cfg_model m1 = { .id = "users" }, m2 = { .id = "accounts" };
	struct cfg_destination d1 = { .id = "d1", .model = &m1 }, d2 = { .id = "d2", .model = &m2 };
	struct cfg_destination *list[] = { &d2 };
	struct cfg_alert a = alert_off();
	assert_true(alert_covers(&a, &d1) && alert_covers(&a, &d2));
	a.model = &m1;
	assert_true(alert_covers(&a, &d1));
	assert_false(alert_covers(&a, &d2));
	a.model = NULL;
	a.destinations = list;
	a.n_destinations = 1;
	assert_false(alert_covers(&a, &d1));
	assert_true(alert_covers(&a, &d2));
}

static void test_durations(void **unused)
{
	(void)unused;
	struct strbuf sb = STRBUF_INIT;
	alert_duration_text(1500, &sb);
	assert_string_equal(sb.buf, "1.5 s");
	strbuf_reset(&sb);
	alert_duration_text(45000, &sb);
	assert_string_equal(sb.buf, "45 s");
	strbuf_reset(&sb);
	alert_duration_text(3 * 86400 * 1000LL + 7200 * 1000LL, &sb);
	assert_string_equal(sb.buf, "3 days 2 h");
	strbuf_release(&sb);
}

/* RFC 4231 test case 2 gives HMAC-SHA256("Jefe", "what do ya want for nothing?"); here the
 * body is joey's JSON, so the expected value is computed with OpenSSL's command line */
static void test_webhook_signature(void **unused)
{
	(void)unused;
	struct strbuf body = STRBUF_INIT, sig = STRBUF_INIT;
	char *dir = tu_mkdtemp(), cmd[1024], *out = NULL;
	alert_webhook_body("{\"event\":\"alert.opened\",\"summary\":\"run 1 failed\"}", 42, 1700000000,
			   "https://joey.example.com/#/runs/1", "s3cr3t", &body, &sig);
	assert_string_equal(body.buf, "{\"event\":\"alert.opened\",\"summary\":\"run 1 failed\",\"delivery\":42,"
				      "\"timestamp\":1700000000,\"run_url\":\"https://joey.example.com/#/runs/1\"}");
	assert_int_equal(sig.len, 7 + 64);
	assert_memory_equal(sig.buf, "sha256=", 7);
	tu_write(dir, "body", body.buf);
	snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -hmac s3cr3t -r %s/body", dir);
	assert_int_equal(tu_run(cmd, &out), 0);
	assert_memory_equal(out, sig.buf + 7, 64);
	free(out);
	/* RFC 4231 case 2, through the same code path (a body that is not an object becomes {}) */
	alert_webhook_body("not json", 1, 2, NULL, "Jefe", &body, &sig);
	assert_string_equal(body.buf, "{\"delivery\":1,\"timestamp\":2}");
	tu_rmtree(dir);
	free(dir);
	strbuf_release(&body);
	strbuf_release(&sig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trigger_off_is_unknown), cmocka_unit_test(test_run_failed),
		cmocka_unit_test(test_failed_rows),            cmocka_unit_test(test_delete_guard),
		cmocka_unit_test(test_records_drop),           cmocka_unit_test(test_run_longer),
		cmocka_unit_test(test_no_success),             cmocka_unit_test(test_scope),
		cmocka_unit_test(test_durations),              cmocka_unit_test(test_webhook_signature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
