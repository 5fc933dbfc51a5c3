/* strbuf.c: tests for src/base/strbuf.c and src/base/arena.c basics. */
#include "support/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/strbuf.h"

static void test_strbuf_grows_and_detaches(void **s)
{
	struct strbuf sb = STRBUF_INIT;
	assert_string_equal(sb.buf, "");
	for (int i = 0; i < 1000; i++)
		strbuf_addf(&sb, "%d,", i);
	assert_true(sb.len > 2000);
	assert_memory_equal(sb.buf, "0,1,2,", 6);
	size_t len;
	char *p = strbuf_detach(&sb, &len);
	assert_int_equal(strlen(p), len);
	assert_string_equal(sb.buf, "");
	free(p);
	strbuf_release(&sb);
}

static void test_strbuf_json_string_escapes(void **s)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_add_json_string(&sb, "a\"b\\c\n\x01\xc3\xa9", 9);
	assert_string_equal(sb.buf, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
	strbuf_release(&sb);
}

static void test_strbuf_json_string_always_valid(void **s)
{
	struct strbuf sb = STRBUF_INIT;
	/* NUL dropped, lone continuation byte, overlong '/', truncated sequence, surrogate */
	static const char in[] = "a\0b" "\x80" "c" "\xc0\xaf" "d" "\xe2\x82" "e" "\xed\xa0\x80" "\xf0\x9f\x98\x80";
	strbuf_add_json_string(&sb, in, sizeof(in) - 1);
	assert_string_equal(sb.buf, "\"ab" "\xef\xbf\xbd" "c" "\xef\xbf\xbd\xef\xbf\xbd" "d"
				    "\xef\xbf\xbd\xef\xbf\xbd" "e" "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
				    "\xf0\x9f\x98\x80" "\"");
	strbuf_release(&sb);
}

/*
 * Strings that need no escape take a shortcut (one copy between the quotes), and
 * strbuf_add / strbuf_addch grow inline: every length across the buffer's growth
 * steps, appended after what is there, gives the same bytes as the long way.
 */
static void test_strbuf_json_plain_and_inline_growth(void **s)
{
	struct strbuf sb = STRBUF_INIT, want = STRBUF_INIT;
	char plain[300];
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (char)('a' + i % 26);
	for (size_t n = 0; n <= sizeof(plain); n++) {
		strbuf_add_json_string(&sb, plain, n);
		strbuf_addch(&sb, ',');
		strbuf_add(&sb, plain, n % 7);
		/* the long way: quote, bytes one by one, quote */
		strbuf_grow(&want, n + 3 + n % 7);
		want.buf[want.len++] = '"';
		for (size_t k = 0; k < n; k++)
			want.buf[want.len++] = plain[k];
		want.buf[want.len++] = '"';
		want.buf[want.len++] = ',';
		for (size_t k = 0; k < n % 7; k++)
			want.buf[want.len++] = plain[k];
		want.buf[want.len] = '\0';
		assert_int_equal(sb.len, want.len);
		assert_int_equal(strlen(sb.buf), sb.len);
		assert_memory_equal(sb.buf, want.buf, want.len);
	}
	/* one byte to escape at the end still takes the long way */
	strbuf_reset(&sb);
	strbuf_add_json_string(&sb, "abc\"", 4);
	assert_string_equal(sb.buf, "\"abc\\\"\"");
	strbuf_reset(&sb);
	strbuf_add_json_string(&sb, "", 0);
	assert_string_equal(sb.buf, "\"\"");
	strbuf_release(&sb);
	strbuf_release(&want);
}

static void test_strbuf_sql_ident_quotes(void **s)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_add_sql_ident(&sb, "us\"ers; DROP TABLE x");
	assert_string_equal(sb.buf, "\"us\"\"ers; DROP TABLE x\"");
	strbuf_release(&sb);
}

static void test_slice_cmp_bytewise(void **s)
{
	assert_true(slice_cmp(slice_of("10"), slice_of("9")) < 0);
	assert_true(slice_cmp(slice_of("a"), slice_of("B")) > 0);
	assert_true(slice_cmp(slice_of("ab"), slice_of("abc")) < 0);
	assert_int_equal(slice_cmp(slice_of(""), slice_of("")), 0);
	assert_true(slice_eq_str(slice_of("x"), "x"));
}

static void test_decimal_to_int64_whole_range(void **s)
{
	int64_t v = 7;
	(void)s;
	assert_true(decimal_to_int64("9223372036854775807", 19, &v));
	assert_true(v == INT64_MAX);
	assert_true(decimal_to_int64("-9223372036854775808", 20, &v));
	assert_true(v == INT64_MIN);
	assert_true(decimal_to_int64("+42", 3, &v) && v == 42);
	v = 7;
	assert_false(decimal_to_int64("9223372036854775808", 19, &v));
	assert_false(decimal_to_int64("-9223372036854775809", 20, &v));
	assert_false(decimal_to_int64("99999999999999999999", 20, &v));
	assert_false(decimal_to_int64("12a", 3, &v));
	assert_false(decimal_to_int64("-", 1, &v));
	assert_false(decimal_to_int64("", 0, &v));
	assert_true(v == 7); /* left alone */
}

static void test_arena_alloc_reset_release(void **s)
{
	struct arena a;
	arena_init(&a);
	char *big = arena_alloc(&a, 1 << 20);
	memset(big, 'x', 1 << 20);
	for (int i = 0; i < 10000; i++) {
		char *p = arena_printf(&a, "item %d", i);
		assert_int_equal(((uintptr_t)p) % 16, 0);
	}
	assert_string_equal(arena_strndup(&a, "hello world", 5), "hello");
	arena_reset(&a);
	assert_int_equal(a.used_total, 0);
	int *z = arena_zalloc(&a, 64 * sizeof(int));
	for (int i = 0; i < 64; i++)
		assert_int_equal(z[i], 0);
	arena_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strbuf_grows_and_detaches),
		cmocka_unit_test(test_strbuf_json_string_escapes),
		cmocka_unit_test(test_strbuf_json_string_always_valid),
		cmocka_unit_test(test_strbuf_json_plain_and_inline_growth),
		cmocka_unit_test(test_strbuf_sql_ident_quotes),
		cmocka_unit_test(test_decimal_to_int64_whole_range),
		cmocka_unit_test(test_slice_cmp_bytewise),
		cmocka_unit_test(test_arena_alloc_reset_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
