/* group.c: tests for src/engine/group.c (rule operators, arrays, match any/all). */
#include "support/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "engine/group.h"
#include "engine/record.h"

#define DAY 86400000LL

static struct value str(const char *s) { return (struct value){ .kind = VAL_STRING, .u.s = slice_of(s) }; }
static struct value num(int64_t i) { return (struct value){ .kind = VAL_INT, .u.i = i }; }
static struct value date(int64_t ms) { return (struct value){ .kind = VAL_DATE, .u.i = ms }; }

static bool match(enum rule_op op, const char *m, struct value v)
{
	struct cfg_rule r = { .op = op, .match = m };
	if (m && !strcmp(m, "null"))
		r.match_is_null = true;
	else if (m) {
		r.match_num = strtod(m, NULL);
		r.match_bool = !strcmp(m, "true");
	}
	return rule_matches_value(&r, &v, 0);
}

static void test_like_match(void **s)
{
	assert_true(like_match("hello", 5, "h%o", 3, false));
	assert_true(like_match("hello", 5, "h_llo", 5, false));
	assert_false(like_match("hello", 5, "H%", 2, false));
	assert_true(like_match("hello", 5, "H%", 2, true));
	assert_true(like_match("", 0, "%", 1, false));
	assert_false(like_match("", 0, "_", 1, false));
	assert_true(like_match("a%b", 3, "a\\%b", 4, false));
	assert_false(like_match("axb", 3, "a\\%b", 4, false));
	assert_true(like_match("mississippi", 11, "%iss%pi", 7, false));
}

static void test_string_ops(void **s)
{
	assert_true(match(ROP_EQ, "Ann", str("Ann")));
	assert_false(match(ROP_EQ, "Ann", str("ann")));
	assert_true(match(ROP_NE, "Ann", str("Bob")));
	assert_false(match(ROP_NE, "Ann", (struct value){ 0 })); /* NULL is not != "Ann" (SQL) */
	assert_true(match(ROP_STARTS_WITH, "An", str("Ann")));
	assert_true(match(ROP_ENDS_WITH, "nn", str("Ann")));
	assert_false(match(ROP_ENDS_WITH, "Annie", str("Ann")));
	assert_true(match(ROP_SUBSTRING, "n", str("Ann")));
	assert_true(match(ROP_NOT_SUBSTRING, "x", str("Ann")));
	assert_true(match(ROP_ILIKE, "a%", str("Ann")));
	assert_false(match(ROP_LIKE, "a%", str("Ann")));
	assert_true(match(ROP_NOT_ILIKE, "b%", str("Ann")));
}

static void test_null_and_exists(void **s)
{
	assert_true(match(ROP_EXISTS, NULL, str("")));
	assert_false(match(ROP_EXISTS, NULL, (struct value){ 0 }));
	assert_true(match(ROP_NOT_EXISTS, NULL, (struct value){ 0 }));
	assert_true(match(ROP_EQ, "null", (struct value){ 0 }));
	assert_true(match(ROP_NE, "null", num(1)));
}

static void test_numeric_ops(void **s)
{
	assert_true(match(ROP_GT, "5", num(6)));
	assert_false(match(ROP_GT, "5", num(5)));
	assert_true(match(ROP_GTE, "5", num(5)));
	assert_true(match(ROP_LT, "5.5", (struct value){ .kind = VAL_FLOAT, .u.f = 5.25 }));
	assert_true(match(ROP_LTE, "5", num(5)));
	assert_false(match(ROP_LT, "5", (struct value){ 0 }));
}

static void test_relative_dates(void **s)
{
	int64_t now = 1000 * DAY;
	struct cfg_rule past = { .op = ROP_RELATIVE_GT, .rel_number = 30, .rel_unit = REL_DAYS };
	struct cfg_rule future = { .op = ROP_RELATIVE_LT, .rel_number = 1, .rel_unit = REL_WEEKS, .rel_add = true };
	struct value v = date(now - 10 * DAY);
	assert_true(rule_matches_value(&past, &v, now));
	v = date(now - 31 * DAY);
	assert_false(rule_matches_value(&past, &v, now));
	v = date(now + DAY); /* the future is not "in the past 30 days" */
	assert_false(rule_matches_value(&past, &v, now));
	assert_true(rule_matches_value(&future, &v, now));
	v = date(now + 8 * DAY);
	assert_false(rule_matches_value(&future, &v, now));
}

/*
 * A fraction of a unit is rounded as moment.js's add()/subtract() rounded it in
 * Grouparoo (absRound, after weeks become days and quarters and years months):
 * 1.5 days is 2 days, 1.5 weeks 11 days, 1.5 quarters 5 months, 0.4 days none.
 */
static void test_relative_fractions(void **s)
{
	int64_t now = 1000 * DAY;
	struct cfg_rule r = { .op = ROP_RELATIVE_GT, .rel_number = 1.5, .rel_unit = REL_DAYS };
	struct value v = date(now - DAY - DAY / 2 - 1000); /* 1.5 days and a second ago */
	assert_true(rule_matches_value(&r, &v, now));
	v = date(now - 2 * DAY);
	assert_false(rule_matches_value(&r, &v, now)); /* gt: the bound itself is out */
	v = date(now - 2 * DAY + 1);
	assert_true(rule_matches_value(&r, &v, now));

	r.rel_unit = REL_WEEKS; /* 10.5 days: 11 */
	v = date(now - 10 * DAY - DAY / 2 - 1000);
	assert_true(rule_matches_value(&r, &v, now));
	v = date(now - 11 * DAY);
	assert_false(rule_matches_value(&r, &v, now));

	r.rel_number = 0.4; /* rounds to none: only now itself, which gt leaves out */
	r.rel_unit = REL_DAYS;
	v = date(now);
	assert_false(rule_matches_value(&r, &v, now));

	/* 1.5 quarters forward from 2021-01-15: 4.5 months, 5: before 2021-06-15 */
	struct cfg_rule f = { .op = ROP_RELATIVE_LT, .rel_number = 1.5, .rel_unit = REL_QUARTERS, .rel_add = true };
	int64_t jan15 = 1610668800000LL; /* 2021-01-15T00:00:00Z */
	v = date(1623628800000LL); /* 2021-06-14T00:00:00Z */
	assert_true(rule_matches_value(&f, &v, jan15));
	v = date(1623715200000LL); /* 2021-06-15T00:00:00Z */
	assert_false(rule_matches_value(&f, &v, jan15));
	f.rel_number = 1.5;
	f.rel_unit = REL_YEARS; /* 18 months: before 2022-07-15 */
	v = date(1657756800000LL); /* 2022-07-14T00:00:00Z */
	assert_true(rule_matches_value(&f, &v, jan15));
}

static void test_group_arrays_and_match_type(void **s)
{
	struct cfg_property p = { .id = "tags", .type = PROP_STRING, .is_array = true, .slot = 0 };
	struct cfg_rule has_vip = { .property = &p, .op = ROP_EQ, .match = "vip" };
	struct cfg_rule not_vip = { .property = &p, .op = ROP_NE, .match = "vip" };
	struct cfg_group g = { .id = "g", .rules = &has_vip, .n_rules = 1 };
	struct value items[] = { str("new"), str("vip") };
	struct value arr = { .kind = VAL_ARRAY, .u.arr = { items, 2 } };
	bool groups[1];
	struct record rec = { .values = &arr, .groups = groups, .key = { .is_int = true, .i = 1, .text = SLICE_LIT("1") } };

	assert_true(group_matches(&g, &rec, 0));
	g.rules = &not_vip; /* negation on arrays: no element may match */
	assert_false(group_matches(&g, &rec, 0));
	items[1] = str("old");
	assert_true(group_matches(&g, &rec, 0));

	struct cfg_rule two[] = { has_vip, not_vip };
	g.rules = two;
	g.n_rules = 2;
	g.match_any = false;
	assert_false(group_matches(&g, &rec, 0)); /* has_vip fails */
	g.match_any = true;
	assert_true(group_matches(&g, &rec, 0));
	g.n_rules = 0;
	assert_false(group_matches(&g, &rec, 0)); /* no rules, no members */
}

static void test_grouparoo_id_pseudo_property(void **s)
{
	struct cfg_rule r = { .property = NULL, .op = ROP_GT, .match = "5", .match_num = 5 };
	struct cfg_group g = { .id = "g", .rules = &r, .n_rules = 1 };
	bool groups[1];
	struct record rec = { .groups = groups, .key = { .is_int = true, .i = 7, .text = SLICE_LIT("7") } };
	assert_true(group_matches(&g, &rec, 0));
	rec.key.i = 3;
	assert_false(group_matches(&g, &rec, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_like_match),
		cmocka_unit_test(test_string_ops),
		cmocka_unit_test(test_null_and_exists),
		cmocka_unit_test(test_numeric_ops),
		cmocka_unit_test(test_relative_dates),
		cmocka_unit_test(test_relative_fractions),
		cmocka_unit_test(test_group_arrays_and_match_type),
		cmocka_unit_test(test_grouparoo_id_pseudo_property),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
