/* timeutil.c: tests for src/base/timeutil.c. */
#include "support/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "base/timeutil.h"

static int64_t P(const char *s)
{
	int64_t ms = INT64_MIN;
	assert_true(time_parse(s, strlen(s), &ms));
	return ms;
}

static void expect_iso(int64_t ms, const char *want)
{
	struct strbuf sb = STRBUF_INIT;
	time_format_iso(&sb, ms);
	assert_string_equal(sb.buf, want);
	strbuf_release(&sb);
}

static void test_parse(void **s)
{
	int64_t ms;
	assert_int_equal(P("1970-01-01"), 0);
	assert_int_equal(P("2021-03-04"), INT64_C(1614816000000));
	assert_int_equal(P("2021-03-04T05:06:07.123Z"), INT64_C(1614834367123));
	assert_int_equal(P("2021-03-04 05:06:07+02:00"), INT64_C(1614827167000));
	assert_int_equal(P("2021-03-04T05:06:07-0130"), INT64_C(1614839767000));
	assert_int_equal(P("2021-03-04T05:06"), INT64_C(1614834360000));
	assert_int_equal(P("2021-03-04T05:06:07.5"), INT64_C(1614834367500));
	assert_int_equal(P("1614816000"), INT64_C(1614816000000));    /* seconds */
	assert_int_equal(P("1614816000123"), INT64_C(1614816000123)); /* ms */
	assert_int_equal(P("-86400"), INT64_C(-86400000));
	assert_int_equal(P(" 2000-02-29 "), INT64_C(951782400000));
	assert_false(time_parse("2001-02-29", 10, &ms));
	assert_false(time_parse("2021-13-01", 10, &ms));
	assert_false(time_parse("2021-03-04T25:00", 16, &ms));
	assert_false(time_parse("2021-03-04X", 11, &ms));
	assert_false(time_parse("nope", 4, &ms));
	assert_false(time_parse("", 0, &ms));
}

static void test_format(void **s)
{
	expect_iso(0, "1970-01-01T00:00:00.000Z");
	expect_iso(INT64_C(1614834367123), "2021-03-04T05:06:07.123Z");
	expect_iso(-1, "1969-12-31T23:59:59.999Z");
	expect_iso(INT64_C(951782400000), "2000-02-29T00:00:00.000Z");
	assert_int_equal(time_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(time_days_from_civil(2000, 3, 1), 11017);
	assert_int_equal(time_days_from_civil(1969, 12, 31), -1);
}

static void test_now_pinned(void **s)
{
	setenv("JOEY_NOW", "2021-03-04T05:06:07.123Z", 1);
	assert_int_equal(time_now_ms(), INT64_C(1614834367123));
	setenv("JOEY_NOW", "1614834367123", 1);
	assert_int_equal(time_now_ms(), INT64_C(1614834367123));
	setenv("JOEY_NOW", "1000", 1); /* epoch ms, even when small */
	assert_int_equal(time_now_ms(), 1000);
	unsetenv("JOEY_NOW");
	assert_true(time_now_ms() > INT64_C(1600000000000));
}

static void test_add_units(void **s)
{
	int64_t jan31 = P("2021-01-31T10:00:00Z");
	expect_iso(time_add_units(jan31, 1, "months"), "2021-02-28T10:00:00.000Z");
	expect_iso(time_add_units(P("2020-01-31T10:00:00Z"), 1, "months"), "2020-02-29T10:00:00.000Z");
	expect_iso(time_add_units(jan31, -2, "months"), "2020-11-30T10:00:00.000Z");
	expect_iso(time_add_units(jan31, 1, "quarters"), "2021-04-30T10:00:00.000Z");
	expect_iso(time_add_units(P("2020-02-29"), 1, "years"), "2021-02-28T00:00:00.000Z");
	expect_iso(time_add_units(P("2020-02-29"), -4, "years"), "2016-02-29T00:00:00.000Z");
	expect_iso(time_add_units(jan31, 30, "days"), "2021-03-02T10:00:00.000Z");
	expect_iso(time_add_units(jan31, -2, "weeks"), "2021-01-17T10:00:00.000Z");
	expect_iso(time_add_units(jan31, 1, "day"), "2021-02-01T10:00:00.000Z");
	expect_iso(time_add_units(jan31, 13, "months"), "2022-02-28T10:00:00.000Z");
	assert_int_equal(time_add_units(jan31, 5, "fortnights"), jan31);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_now_pinned),
		cmocka_unit_test(test_add_units),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
