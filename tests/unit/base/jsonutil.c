/* jsonutil.c: tests for src/base/jsonutil.c's json_skip_value. */
#include "support/testutil.h"

#include <string.h>

#include "base/jsonutil.h"

/* json_skip_value over text: how many bytes the value took, or -1 for NULL. */
static long skipped(const char *text)
{
	const char *end = text + strlen(text);
	const char *q = json_skip_value(text, end);
	return q ? (long)(q - text) : -1;
}

static void test_skip_value_kinds(void **s)
{
	/* scalars end before the ',', ']' or '}' after them, or at the end */
	assert_int_equal(skipped("19,\"b\":1"), 2);
	assert_int_equal(skipped("true}"), 4);
	assert_int_equal(skipped("-1.5e3]"), 6);
	assert_int_equal(skipped("null"), 4);
	/* strings: an escaped quote is inside, an escaped backslash is not an escape */
	assert_int_equal(skipped("\"Paris\",x"), 7);
	assert_int_equal(skipped("\"a\\\"b\"}"), 6);
	assert_int_equal(skipped("\"a\\\\\"}"), 5);
	assert_int_equal(skipped("\",}]{\"x"), 6);
	/* arrays of scalars, strings and arrays, with the brackets inside strings ignored */
	assert_int_equal(skipped("[]}"), 2);
	assert_int_equal(skipped("[1,\"a]\",[2,[3]],null],"), 21);
	(void)s;
}

static void test_skip_value_refuses(void **s)
{
	assert_int_equal(skipped(""), -1);
	assert_int_equal(skipped("{\"a\":1}"), -1);     /* an object */
	assert_int_equal(skipped("[1,{\"a\":1}]"), -1); /* an object inside an array */
	assert_int_equal(skipped("]"), -1);
	assert_int_equal(skipped("}"), -1);
	assert_int_equal(skipped("\"open"), -1);        /* a string that does not end */
	assert_int_equal(skipped("\"a\\\""), -1);       /* its last quote escaped */
	assert_int_equal(skipped("[1,[2]"), -1);        /* an array that does not end */
	/* the end given is the end: a value past it is not read */
	static const char abc[] = "\"abc\"";
	assert_null(json_skip_value(abc, abc + 3));
	(void)s;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_skip_value_kinds),
		cmocka_unit_test(test_skip_value_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
