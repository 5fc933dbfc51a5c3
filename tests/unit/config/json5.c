/* Tests for src/config/json5.c: syntax, positions, limits and every error. */
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/json5.h"

static struct j5_node *parse_ok(struct arena *a, const char *text)
{
	struct j5_node *n = NULL;
	struct j5_error e;
	if (!json5_parse(text, strlen(text), a, &n, &e))
		fail_msg("unexpected error at %d:%d: %s (input %s)", e.line, e.col, e.msg, text);
	return n;
}

/* Expect an error at line:col whose message contains what. */
static void parse_err(const char *text, size_t len, int line, int col, const char *what)
{
	struct arena a;
	struct j5_node *n = (struct j5_node *)1;
	struct j5_error e;
	arena_init(&a);
	if (json5_parse(text, len, &a, &n, &e))
		fail_msg("expected an error for %s", text);
	assert_null(n);
	if (!strstr(e.msg, what) || e.line != line || e.col != col)
		fail_msg("input %s: got %d:%d %s, want %d:%d ...%s...", text, e.line, e.col, e.msg, line, col, what);
	arena_release(&a);
}
#define ERR(text, line, col, what) parse_err(text, strlen(text), line, col, what)

static void test_basic_json(void **state)
{
	struct arena a;
	arena_init(&a);
	struct j5_node *n = parse_ok(&a, "{\"a\": [1, -2.5, true, false, null, \"x\"], \"b\": {}}");
	assert_int_equal(n->type, J5_OBJECT);
	assert_int_equal(n->n, 2);
	assert_string_equal(n->members[0].key, "a");
	const struct j5_node *arr = n->members[0].value;
	assert_int_equal(arr->type, J5_ARRAY);
	assert_int_equal(arr->n, 6);
	assert_true(arr->items[0]->is_int);
	assert_string_equal(arr->items[0]->str, "1");
	assert_false(arr->items[1]->is_int);
	assert_true(arr->items[1]->num == -2.5);
	assert_true(arr->items[2]->b);
	assert_int_equal(arr->items[4]->type, J5_NULL);
	assert_string_equal(arr->items[5]->str, "x");
	assert_int_equal(n->members[1].value->n, 0);
	assert_ptr_equal(j5_member(n, "b"), &n->members[1]);
	assert_null(j5_member(n, "c"));
	arena_release(&a);
}

static void test_json5_features(void **state)
{
	struct arena a;
	arena_init(&a);
	const char *text = "// header comment\n"
			   "/* block\n comment */ {\n"
			   "  unquoted: 'single \"quoted\"',\n"
			   "  $dollar_1: 0x1F,\n"
			   "  trailing: [1, 2,],\n"
			   "  lead: .5, trail: 5., plus: +3,\n"
			   "  multi: 'line one \\\n"
			   "line two',\n"
			   "  esc: \"\\x41\\u00e9\\uD83D\\uDE00\\t\\v\",\n"
			   "}\n// trailing comment";
	struct j5_node *n = parse_ok(&a, text);
	assert_string_equal(j5_member(n, "unquoted")->value->str, "single \"quoted\"");
	assert_true(j5_member(n, "$dollar_1")->value->num == 31);
	assert_true(j5_member(n, "$dollar_1")->value->is_int);
	assert_int_equal(j5_member(n, "trailing")->value->n, 2);
	assert_true(j5_member(n, "lead")->value->num == 0.5);
	assert_true(j5_member(n, "trail")->value->num == 5);
	assert_true(j5_member(n, "plus")->value->num == 3);
	assert_string_equal(j5_member(n, "multi")->value->str, "line one line two");
	assert_string_equal(j5_member(n, "esc")->value->str, "A\xc3\xa9\xf0\x9f\x98\x80\t\v");
	arena_release(&a);
}

static void test_positions(void **state)
{
	struct arena a;
	arena_init(&a);
	const char *text = "{\n  \"a\": 1,\n  b:\n    [ true ],\n\t\"\xc3\xa9t\xc3\xa9\": 'x'\r\n}";
	struct j5_node *n = parse_ok(&a, text);
	assert_int_equal(n->line, 1);
	assert_int_equal(n->col, 1);
	assert_int_equal(n->members[0].line, 2);
	assert_int_equal(n->members[0].col, 3);
	assert_int_equal(n->members[0].value->line, 2);
	assert_int_equal(n->members[0].value->col, 8);
	assert_int_equal(n->members[1].line, 3);
	assert_int_equal(n->members[1].value->line, 4);
	assert_int_equal(n->members[1].value->col, 5);
	assert_int_equal(n->members[1].value->items[0]->col, 7);
	/* columns count characters: "été" is 3 wide */
	assert_int_equal(n->members[2].line, 5);
	assert_int_equal(n->members[2].col, 2);
	assert_int_equal(n->members[2].value->col, 9);
	arena_release(&a);
}

static void test_errors(void **state)
{
	ERR("", 1, 1, "expected a value, found end of input");
	ERR("   \n  ", 2, 3, "expected a value, found end of input");
	ERR("{\"a\" 1}", 1, 6, "expected ':' after the object key, found '1'");
	ERR("{\"a\": 1 \"b\": 2}", 1, 9, "expected ',' or '}' after an object member");
	ERR("[1 2]", 1, 4, "expected ',' or ']' after an array element");
	ERR("{,}", 1, 2, "expected a key or '}'");
	ERR("[,]", 1, 2, "expected a value, found ','");
	ERR("{\"a\": 'abc}", 1, 7, "unterminated string");
	ERR("\"a\nb\"", 1, 3, "unescaped line break in string");
	ERR("{} x", 1, 4, "expected end of input after the top-level value");
	ERR("/* open", 1, 1, "unterminated comment");
	ERR("/x", 1, 1, "expected \"//\" or \"/*\"");
	ERR("Infinity", 1, 1, "Infinity and NaN are not supported");
	ERR("-Infinity", 1, 1, "Infinity and NaN are not supported");
	ERR("NaN", 1, 1, "Infinity and NaN are not supported");
	ERR("012", 1, 1, "leading zeros");
	ERR("1e", 1, 3, "expected a digit in the exponent");
	ERR("0x", 1, 3, "expected a hexadecimal digit");
	ERR("0xFFFFFFFFFFFFFFFFF", 1, 1, "hexadecimal number too large");
	ERR("-", 1, 1, "expected a digit in number");
	ERR("12abc", 1, 3, "expected the end of the number");
	ERR("1e999", 1, 1, "number out of range");
	ERR("undefined", 1, 1, "strings must be quoted");
	ERR("{a: tru}", 1, 5, "strings must be quoted");
	ERR("\"\\x4\"", 1, 2, "invalid \\x escape");
	ERR("\"\\u12G4\"", 1, 2, "invalid \\u escape");
	ERR("\"\\uD800\"", 1, 2, "unpaired UTF-16 surrogate");
	ERR("\"\\uDC00\"", 1, 2, "unpaired UTF-16 surrogate");
	ERR("\"\\u0000\"", 1, 2, "NUL character");
	ERR("\"\\0\"", 1, 2, "NUL character");
	ERR("\"\\1\"", 1, 2, "invalid escape");
	ERR("\"abc\\", 1, 1, "unterminated string");
	parse_err("\"a\0b\"", 5, 1, 3, "NUL character in string");
	parse_err("[1,\0]", 5, 1, 4, "byte 0x00");
}

static void test_depth_limit(void **state)
{
	char buf[200];
	struct arena a;
	arena_init(&a);
	/* 64 levels are fine */
	memset(buf, '[', 64);
	memset(buf + 64, ']', 64);
	buf[128] = '\0';
	parse_ok(&a, buf);
	arena_release(&a);
	memset(buf, '[', 65);
	memset(buf + 65, ']', 65);
	buf[130] = '\0';
	ERR(buf, 1, 65, "nesting deeper than 64 levels");
}

static void test_size_limits(void **state)
{
	struct arena a;
	struct j5_node *n;
	struct j5_error e;
	size_t big = J5_MAX_STRING + 10;
	char *s = malloc(big + 3);
	arena_init(&a);
	s[0] = '"';
	memset(s + 1, 'a', big);
	s[big + 1] = '"';
	assert_false(json5_parse(s, big + 2, &a, &n, &e));
	assert_non_null(strstr(e.msg, "string longer than"));
	free(s);
	/* input size limit: checked before reading */
	assert_false(json5_parse("{}", J5_MAX_INPUT + 1, &a, &n, &e));
	assert_non_null(strstr(e.msg, "MiB"));
	arena_release(&a);
}

static void test_not_nul_terminated(void **state)
{
	/* the parser must stop at len even when the buffer continues */
	struct arena a;
	struct j5_node *n;
	struct j5_error e;
	const char text[] = "{\"a\": 1}garbage";
	arena_init(&a);
	assert_true(json5_parse(text, 8, &a, &n, &e));
	assert_false(json5_parse(text, 7, &a, &n, &e));
	assert_non_null(strstr(e.msg, "end of input"));
	/* every prefix of a valid document is handled without reading past len */
	const char *doc = "{a:'x\\u00e9',b:[1,2.5e3,0x1f],/*c*/d:\"\\\n\"}";
	size_t dl = strlen(doc);
	for (size_t i = 0; i <= dl; i++) {
		char *copy = malloc(i ? i : 1);
		memcpy(copy, doc, i);
		(void)json5_parse(copy, i, &a, &n, &e);
		free(copy);
	}
	arena_release(&a);
}

static void test_pseudo_random_bytes(void **state)
{
	/* a tiny in-process fuzz: mutate a document and parse it (ASan checks bounds) */
	const char *doc = "{\"class\":\"App\",id:'db',options:{file:\"x.db\"},n:[1,-2,.5,0x1F,true,null]}";
	size_t dl = strlen(doc);
	unsigned seed = 12345;
	struct arena a;
	arena_init(&a);
	for (int iter = 0; iter < 20000; iter++) {
		char *copy = malloc(dl);
		struct j5_node *n;
		struct j5_error e;
		memcpy(copy, doc, dl);
		for (int k = 0; k < 3; k++) {
			seed = seed * 1103515245 + 12345;
			copy[(seed >> 8) % dl] = (char)(seed >> 16);
		}
		(void)json5_parse(copy, dl, &a, &n, &e);
		free(copy);
		if (iter % 1000 == 0)
			arena_reset(&a);
	}
	arena_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_json),
		cmocka_unit_test(test_json5_features),
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_pseudo_random_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
