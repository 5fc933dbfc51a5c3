/* value.c: tests for src/base/value.c. */
#include "support/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/value.h"

static void expect_json(struct value v, const char *want)
{
	struct strbuf sb = STRBUF_INIT;
	value_to_json(&sb, &v);
	assert_string_equal(sb.buf, want);
	strbuf_release(&sb);
}

static struct value F(double f)
{
	return (struct value){ .kind = VAL_FLOAT, .u.f = f };
}

static struct value I(int64_t i)
{
	return (struct value){ .kind = VAL_INT, .u.i = i };
}

static struct value S(const char *s)
{
	return (struct value){ .kind = VAL_STRING, .u.s = slice_of(s) };
}

static void test_to_json(void **s)
{
	expect_json(VALUE_NULL, "null");
	expect_json(S("a\"b\n"), "\"a\\\"b\\n\"");
	expect_json(I(-42), "-42");
	expect_json(I(INT64_MIN), "-9223372036854775808");
	expect_json(F(3.0), "3");
	expect_json(F(0.1), "0.1");
	expect_json(F(2.5), "2.5");
	expect_json(F(1.0 / 3), "0.333333333333333");
	expect_json(F(99.99 + 0.5 + 15), "115.49"); /* binary noise rounded away */
	expect_json(F(1e15 + 0.125), "1000000000000000"); /* rounded to a whole number: its digits, not "1e+15" */
	expect_json(F(1e15), "1000000000000000");
	expect_json(F(-1e-7), "-1e-07");
	expect_json(F(1e21), "1e+21");
	expect_json(F(123456789012.5), "123456789012.5");
	expect_json(F(NAN), "null");
	expect_json(F(INFINITY), "null");
	expect_json((struct value){ .kind = VAL_BOOL, .u.b = true }, "true");
	expect_json((struct value){ .kind = VAL_DATE, .u.i = INT64_C(1614834367123) },
		    "\"2021-03-04T05:06:07.123Z\"");
	struct value items[] = { I(1), S("x"), VALUE_NULL, F(1.5) };
	expect_json((struct value){ .kind = VAL_ARRAY, .u.arr = { items, 4 } }, "[1,\"x\",null,1.5]");
	expect_json((struct value){ .kind = VAL_ARRAY, .u.arr = { NULL, 0 } }, "[]");
}

static void test_shortest_round_trip(void **s)
{
	/* values with at most 15 significant digits round-trip exactly */
	const double xs[] = { 1e-300, 123.456, -0.5, 123456789012345.0, 0.000123456789012345 };
	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
		struct strbuf sb = STRBUF_INIT;
		struct value v = F(xs[i]);
		value_to_json(&sb, &v);
		assert_true(strtod(sb.buf, NULL) == xs[i]);
		strbuf_release(&sb);
	}
	expect_json(F(0.1 + 0.2), "0.3");
	/* the largest double must not round up to infinity */
	struct strbuf sb = STRBUF_INIT;
	struct value big = F(1.7976931348623157e308);
	value_to_json(&sb, &big);
	assert_true(strtod(sb.buf, NULL) == 1.7976931348623157e308);
	strbuf_release(&sb);
}

static void test_compare(void **s)
{
	struct value n = VALUE_NULL;
	struct value a = I(2), b = F(2.5), c = I(3), d = F(2.0);
	assert_true(value_compare(&n, &a) < 0);
	assert_true(value_compare(&a, &n) > 0);
	assert_true(value_compare(&a, &b) < 0);
	assert_true(value_compare(&b, &c) < 0);
	assert_int_equal(value_compare(&a, &d), 0);
	struct value big = I(INT64_C(9007199254740993)), bigf = F(9007199254740992.0);
	assert_true(value_compare(&big, &bigf) > 0);
	struct value x = S("10"), y = S("9"), z = S("B"), w = S("a");
	assert_true(value_compare(&x, &y) < 0);
	assert_true(value_compare(&z, &w) < 0);
	struct value t = { .kind = VAL_BOOL, .u.b = true }, f = { .kind = VAL_BOOL, .u.b = false };
	assert_true(value_compare(&f, &t) < 0);
	struct value d1 = { .kind = VAL_DATE, .u.i = 1 }, d2 = { .kind = VAL_DATE, .u.i = 2 };
	assert_true(value_compare(&d1, &d2) < 0);
	assert_int_equal(value_compare(&n, &n), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_to_json),
		cmocka_unit_test(test_shortest_round_trip),
		cmocka_unit_test(test_compare),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
