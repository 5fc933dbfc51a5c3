/* error.c: tests for src/base/error.c and src/base/suggest.c. */
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/suggest.h"

static void test_error_table_names(void **s)
{
	assert_string_equal(jerr_name(JERR_OK), "ok");
	assert_string_equal(jerr_name(JERR_CONFIG), "config");
	assert_string_equal(jerr_name((enum jerr)999), "unknown");
}

static void test_error_message_detail_hint(void **s)
{
	struct jerror err = JERROR_INIT;
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(jerror_set(&err, JERR_SOURCE, "table \"%s\" does not exist", "userz"), JERR_SOURCE);
	jerror_detail(&err, "source \"%s\"", "users_table");
	jerror_hint(&err, "did you mean \"%s\"?", "users");
	jerror_prefix(&err, "demo.db: ");
	FILE *f = open_memstream(&out, &len);
	jerror_print(f, &err);
	fclose(f);
	assert_string_equal(out, "joey: error: demo.db: table \"userz\" does not exist\n"
				 "detail: source \"users_table\"\n"
				 "hint: did you mean \"users\"?\n");
	free(out);
	/* setting again replaces everything */
	jerror_set(&err, JERR_IO, "x");
	assert_int_equal(err.detail.len, 0);
	assert_int_equal(err.hint.len, 0);
	jerror_release(&err);
	assert_int_equal(jerror_set(NULL, JERR_IO, "no error object"), JERR_IO);
}

static void test_suggest_closest(void **s)
{
	const char *c[] = { "email", "first_name", "last_name", "user_id" };
	assert_int_equal(suggest_distance("emial", "email"), 2);
	assert_string_equal(suggest_closest("emial", c, 4), "email");
	assert_string_equal(suggest_closest("First_Nme", c, 4), "first_name");
	assert_null(suggest_closest("zzzzzz", c, 4));
	assert_null(suggest_closest("x", NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_table_names),
		cmocka_unit_test(test_error_message_detail_hint),
		cmocka_unit_test(test_suggest_closest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
