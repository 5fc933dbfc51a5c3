/* cron.c: tests for src/sched/cron.c. */
#include "support/testutil.h"

#include <string.h>

#include "base/strbuf.h"
#include "base/timeutil.h"
#include "base/cron.h"

static int64_t at(const char *iso)
{
	int64_t ms;
	assert_true(time_parse(iso, strlen(iso), &ms));
	return ms;
}

static void expect_next(const char *expr, const char *after, const char *want)
{
	struct cron c;
	struct jerror err = JERROR_INIT;
	struct strbuf sb = STRBUF_INIT;
	if (cron_parse(expr, &c, &err))
		fail_msg("%s: %s", expr, err.msg.buf);
	int64_t n = cron_next(&c, at(after));
	time_format_iso(&sb, n);
	if (strcmp(sb.buf, want))
		fail_msg("%s after %s: got %s, want %s", expr, after, sb.buf, want);
	strbuf_release(&sb);
	jerror_release(&err);
}

static void test_next_times(void **s)
{
	expect_next("* * * * *", "2026-11-24T10:00:00Z", "2026-11-24T10:01:00.000Z");
	expect_next("* * * * *", "2026-11-24T10:00:30Z", "2026-11-24T10:01:00.000Z");
	expect_next("*/15 * * * *", "2026-11-24T10:07:00Z", "2026-11-24T10:15:00.000Z");
	expect_next("0 9-17 * * mon-fri", "2026-11-27T17:30:00Z", "2026-11-30T09:00:00.000Z"); /* Fri -> Mon */
	expect_next("30 2 1 * *", "2026-11-24T00:00:00Z", "2026-12-01T02:30:00.000Z");
	expect_next("0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00.000Z"); /* leap day */
	expect_next("0 12 * * 7", "2026-11-24T00:00:00Z", "2026-11-29T12:00:00.000Z"); /* 7 = Sunday */
	expect_next("@daily", "2026-11-24T23:59:00Z", "2026-11-25T00:00:00.000Z");
	expect_next("@hourly", "2026-11-24T10:00:00Z", "2026-11-24T11:00:00.000Z");
	expect_next("5/20 * * * *", "2026-11-24T10:06:00Z", "2026-11-24T10:25:00.000Z");
	expect_next("0 0 1,15 * *", "2026-11-02T00:00:00Z", "2026-11-15T00:00:00.000Z");
	/* both day fields restricted: either matches (the 13th, or any Friday) */
	expect_next("0 0 13 * fri", "2026-11-24T00:00:00Z", "2026-11-27T00:00:00.000Z");
	expect_next("0 0 * jan,JUL *", "2026-11-24T00:00:00Z", "2027-01-01T00:00:00.000Z");
}

static void test_parse_errors(void **s)
{
	static const struct {
		const char *expr, *msg;
	} bad[] = {
		{ "* * * *", "cron expression \"* * * *\" needs 5 fields, found 4" },
		{ "* * * * * *", "cron expression \"* * * * * *\" needs 5 fields, found 6" },
		{ "60 * * * *", "cron expression \"60 * * * *\": minute field: \"60\" is outside 0-59" },
		{ "* 5-2 * * *", "cron expression \"* 5-2 * * *\": hour field: \"5-2\" is outside 0-23" },
		{ "* * 0 * *", "cron expression \"* * 0 * *\": day of month field: \"0\" is outside 1-31" },
		{ "* * * foo *", "cron expression \"* * * foo *\": month field: \"foo\" is not a valid value" },
		{ "*/0 * * * *", "cron expression \"*/0 * * * *\": minute field: \"*/0\" has an invalid step" },
		{ "1,,2 * * * *", "cron expression \"1,,2 * * * *\": minute field: \"1,,2\" is not a valid value" },
		{ "1x * * * *", "cron expression \"1x * * * *\": minute field: \"1x\" has unexpected text \"x\"" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cron c;
		struct jerror err = JERROR_INIT;
		assert_int_equal(cron_parse(bad[i].expr, &c, &err), JERR_CONFIG);
		assert_string_equal(err.msg.buf, bad[i].msg);
		jerror_release(&err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next_times),
		cmocka_unit_test(test_parse_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
