/* source.c: tests for src/source/source.c (key order, registry, coercion rules, the watcher). */
#include "support/testutil.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "source/source.h"
#include "source/sqlgen.h"
#include "source/wrows.h"

static struct rkey ikey(int64_t i, const char *t)
{
	return (struct rkey){ true, i, slice_of(t) };
}

static struct rkey tkey(const char *t)
{
	return (struct rkey){ false, 0, slice_of(t) };
}

static void test_key_compare(void **s)
{
	struct rkey a = ikey(9, "9"), b = ikey(10, "10"), c = tkey("10"), d = tkey("9");
	assert_true(key_compare(&a, &b) < 0);  /* 9 < 10 as integers */
	assert_true(key_compare(&c, &d) < 0);  /* "10" < "9" as text */
	assert_true(key_compare(&b, &c) < 0);  /* integers before text */
	assert_true(key_compare(&d, &a) > 0);
	assert_int_equal(key_compare(&a, &a), 0);
	struct rkey e = tkey("a"), f = tkey("ab"), g = tkey("B");
	assert_true(key_compare(&e, &f) < 0);
	assert_true(key_compare(&g, &e) < 0); /* bytewise: 'B' < 'a' */
	struct rkey n1 = ikey(-5, "-5"), n2 = ikey(INT64_MAX, "9223372036854775807");
	assert_true(key_compare(&n1, &n2) < 0);
}

/* A fake connector cursor yielding fixed keys. */
struct fake {
	struct source_cursor base;
	struct source_row row;
	const char *const *keys;
	size_t i, n;
};

static enum jerr fake_next(struct source_cursor *c, struct source_row **row, struct jerror *err)
{
	struct fake *f = (struct fake *)c;
	if (f->i == f->n) {
		*row = NULL;
		return JERR_OK;
	}
	f->row.key = tkey(f->keys[f->i++]);
	*row = &f->row;
	return JERR_OK;
}

static void fake_close(struct source_cursor *c)
{
	(void)c;
}

static const struct source_cursor_ops fake_ops = { fake_next, fake_close };

static enum jerr run_keys(const char *const *keys, size_t n, struct jerror *err, uint64_t *rows)
{
	struct cfg_source src = { .id = "s" };
	struct fake f = { .keys = keys, .n = n };
	struct source_row *row;
	enum jerr rc;
	f.base.ops = &fake_ops;
	f.base.source = &src;
	while ((rc = source_cursor_next(&f.base, &row, err)) == JERR_OK && row)
		;
	*rows = f.base.rows;
	strbuf_release(&f.base.prev_text);
	return rc;
}

static void test_order_checks(void **s)
{
	struct jerror err = JERROR_INIT;
	uint64_t rows;
	static const char *const ok[] = { "1", "10", "9", "a" };
	assert_int_equal(run_keys(ok, 4, &err, &rows), JERR_OK);
	assert_int_equal(rows, 4);

	static const char *const dup[] = { "a", "b", "b" };
	assert_int_equal(run_keys(dup, 3, &err, &rows), JERR_SOURCE_DATA);
	assert_string_equal(err.msg.buf, "duplicate primary key \"b\" in source \"s\"");
	assert_int_equal(rows, 2);
	jerror_release(&err);

	static const char *const back[] = { "a", "c", "b" };
	assert_int_equal(run_keys(back, 3, &err, &rows), JERR_SOURCE_DATA);
	assert_string_equal(err.msg.buf, "source \"s\" returned keys out of order");
	assert_string_equal(err.detail.buf, "key \"b\" came after key \"c\"");
	jerror_release(&err);
}

static void test_registry(void **s)
{
	assert_ptr_equal(source_ops_for_app("sqlite"), &source_sqlite);
	assert_null(source_ops_for_app(NULL));
	assert_ptr_equal(source_ops_for_source_type("sqlite-import-table"), &source_sqlite);
	assert_ptr_equal(source_ops_for_source_type("csv-import-table"), &source_csv);
	assert_ptr_equal(source_ops_for_source_type("snowflake-import-table"), &source_snowflake);
	assert_ptr_equal(source_ops_for_app("snowflake-keypair"), &source_snowflake_keypair);
	assert_ptr_equal(source_ops_for_source_type("bigquery-import-query"), &source_bigquery);
	assert_null(source_ops_for_source_type("mongo-import-table"));
}

struct ccase {
	enum prop_type t;
	const char *in;
	bool ok;
	const char *json; /* value_to_json of the result */
};

static void test_coercion_table(void **s)
{
	static const struct ccase cases[] = {
		{ PROP_STRING, "", true, "null" },
		{ PROP_STRING, " a b ", true, "\" a b \"" },
		{ PROP_INTEGER, "12", true, "12" },
		{ PROP_INTEGER, " -7 ", true, "-7" },
		{ PROP_INTEGER, "12.0", true, "12" },
		{ PROP_INTEGER, "12.5", false, "null" },
		{ PROP_INTEGER, "12abc", false, "null" },
		{ PROP_INTEGER, "", true, "null" },
		{ PROP_INTEGER, "9223372036854775807", true, "9223372036854775807" },
		{ PROP_INTEGER, "9223372036854775808", false, "null" },
		{ PROP_FLOAT, "2.5", true, "2.5" },
		{ PROP_FLOAT, "1e3", true, "1000" },
		{ PROP_FLOAT, "nan", false, "null" },
		{ PROP_FLOAT, "x", false, "null" },
		{ PROP_BOOLEAN, "TRUE", true, "true" },
		{ PROP_BOOLEAN, "0", true, "false" },
		{ PROP_BOOLEAN, "False", true, "false" },
		{ PROP_BOOLEAN, "yes", false, "null" },
		{ PROP_DATE, "2021-03-04", true, "\"2021-03-04T00:00:00.000Z\"" },
		{ PROP_DATE, "2021-03-04 05:06:07+02:00", true, "\"2021-03-04T03:06:07.000Z\"" },
		{ PROP_DATE, "1614816000", true, "\"2021-03-04T00:00:00.000Z\"" },
		{ PROP_DATE, "2021-02-30", false, "null" },
		{ PROP_EMAIL, "a.b+c@example.co.uk", true, "\"a.b+c@example.co.uk\"" },
		{ PROP_EMAIL, "no-at.example.com", false, "null" },
		{ PROP_EMAIL, "a@b", false, "null" },
		{ PROP_EMAIL, "a@@b.com", false, "null" },
		{ PROP_EMAIL, "a b@c.com", false, "null" },
		{ PROP_URL, "HTTPS://Example.COM/Path", true, "\"https://example.com/path\"" },
		{ PROP_URL, "www.x.io", true, "\"www.x.io\"" },
		{ PROP_URL, "http://localhost:8080/", true, "\"http://localhost:8080/\"" },
		{ PROP_URL, "not a url", false, "null" },
		{ PROP_URL, "justword", false, "null" },
		{ PROP_PHONE, " +1 412-555-0100 ", true, "\"+1 412-555-0100\"" },
	};
	struct arena a;
	arena_init(&a);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ccase *c = &cases[i];
		struct value v;
		struct strbuf sb = STRBUF_INIT;
		bool ok = value_coerce_text(c->t, c->in, strlen(c->in), &a, &v);
		value_to_json(&sb, &v);
		if (ok != c->ok || strcmp(sb.buf, c->json))
			fail_msg("case %zu (%s \"%s\"): got %d %s", i, prop_type_name(c->t), c->in, ok,
				 sb.buf);
		strbuf_release(&sb);
	}
	arena_release(&a);
}

/*
 * Every byte where the coercions test a character class (blanks around a number or a
 * date, digits, an e-mail domain's letters) behaves as <ctype.h> says in the C locale,
 * which joey runs in: the classes are written out by hand for speed.
 */
static void test_byte_classes(void **s)
{
	struct arena a;
	arena_init(&a);
	for (int c = 0; c < 256; c++) {
		struct value v;
		char in[32];
		bool blank = isspace(c) != 0;
		/* blanks around a number are trimmed; anything else there is invalid */
		snprintf(in, sizeof(in), "%c12%c", c, c);
		bool ok = value_coerce_text(PROP_INTEGER, in, 4, &a, &v);
		if (ok != (blank || isdigit(c)))
			fail_msg("integer with byte %d around it: %d", c, ok);
		/* a date: blanks trimmed */
		snprintf(in, sizeof(in), "%c2021-03-04%c", c, c);
		ok = value_coerce_text(PROP_DATE, in, 12, &a, &v);
		if (c && ok != blank)
			fail_msg("date with byte %d around it: %d", c, ok);
		/* a digit in the date */
		snprintf(in, sizeof(in), "2021-03-0%c", c);
		ok = value_coerce_text(PROP_DATE, in, 10, &a, &v);
		if (c && ok != (isdigit(c) && c != '0'))
			fail_msg("date with byte %d as its last digit: %d", c, ok);
		/* an e-mail domain: letters, digits, '-', '.' and bytes over 0x7f */
		snprintf(in, sizeof(in), "a@b%cx.com", c);
		ok = value_coerce_text(PROP_EMAIL, in, 9, &a, &v);
		if (c && ok != (isalnum(c) || c == '-' || c == '.' || c >= 0x80))
			fail_msg("e-mail with byte %d in its domain: %d", c, ok);
		/* the last label of a domain has no digit */
		snprintf(in, sizeof(in), "a@b.c%c", c);
		ok = value_coerce_text(PROP_EMAIL, in, 6, &a, &v);
		if (c && !isspace(c) && ok != (isalpha(c) || c >= 0x80))
			fail_msg("e-mail with byte %d in its last label: %d", c, ok);
		arena_reset(&a);
	}
	arena_release(&a);
}

static int cancels;
static void count_cancel(struct source_watch *w)
{
	(void)w;
	cancels++;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/*
 * The watcher tells waits apart by their count (seq): many short waits, each well under
 * the limit but together longer than it, are never cancelled; one wait past the limit is,
 * once. A count that did not move with each wait would make the short ones one long wait.
 */
static void test_watch_counts_waits(void **s)
{
	static struct source_watch w;
	cancels = 0;
	source_watch_register(&w, count_cancel, 250, "app");
	for (int i = 0; i < 100; i++) { /* ~500 ms of 5 ms waits */
		source_wait_begin(&w);
		sleep_ms(5);
		source_wait_end(&w);
	}
	assert_int_equal(atomic_load(&w.seq), 100);
	assert_int_equal(cancels, 0);
	assert_int_equal(source_watch_cancelled(&w), SOURCE_CANCEL_NONE);
	source_wait_begin(&w);
	for (int i = 0; i < 100 && !cancels; i++)
		sleep_ms(20);
	source_wait_end(&w);
	assert_int_equal(cancels, 1);
	assert_int_equal(source_watch_cancelled(&w), SOURCE_CANCEL_TIMEOUT);
	assert_int_equal(atomic_load(&w.seq), 101);
	source_watch_unregister(&w);
}

/*
 * A decimal column's number with a fraction of only zeros is an integer, exactly:
 * ClickHouse Decimal(38,2) and Snowflake NUMBER(p,2) cells "9007199254740993.00" went
 * through a double and reached Braze as 9007199254740992. A non-zero fraction is still
 * a float.
 */
/* The spellings of infinity and NaN that PostgreSQL, ClickHouse, Snowflake and BigQuery print. */
static void test_since_unordered(void **s)
{
	static const char *const odd[] = { "inf", "-inf", "+inf", "Infinity", "-Infinity", "infinity", "NaN", "nan",
					   "-nan", "INF" };
	static const char *const ordered[] = { "", "-", "1", "info", "nana", "Inf1", "infinit", "2026-01-01", "-1e308" };
	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(odd); i++)
		assert_true(source_since_unordered(odd[i], strlen(odd[i])));
	for (size_t i = 0; i < ARRAY_SIZE(ordered); i++)
		assert_false(source_since_unordered(ordered[i], strlen(ordered[i])));
	assert_false(source_since_unordered("infinity!", 8 + 1));
	assert_true(source_since_unordered("infinity!", 8)); /* a slice: its length counts, not a NUL */
}

static void test_number_text_zero_fraction(void **s)
{
	(void)s;
	static const char *const in[] = { "9007199254740993.00", "-9007199254740993.0", "12.", "7" };
	static const int64_t want[] = { INT64_C(9007199254740993), INT64_C(-9007199254740993), 12, 7 };
	struct value v;
	for (size_t k = 0; k < 4; k++) {
		memset(&v, 0, sizeof(v));
		assert_true(sql_value_from_number_text(PROP_INTEGER, in[k], strlen(in[k]), &v));
		assert_int_equal(v.kind, VAL_INT);
		assert_true(v.u.i == want[k]);
		memset(&v, 0, sizeof(v));
		assert_true(wrows_number(PROP_INTEGER, in[k], strlen(in[k]), &v));
		assert_int_equal(v.kind, VAL_INT);
		assert_true(v.u.i == want[k]);
	}
	/* a non-zero fraction: a float property keeps it */
	assert_true(sql_value_from_number_text(PROP_FLOAT, "2.50", 4, &v));
	assert_int_equal(v.kind, VAL_FLOAT);
	assert_true(v.u.f == 2.5);
	assert_true(wrows_number(PROP_FLOAT, "2.05", 4, &v));
	assert_int_equal(v.kind, VAL_FLOAT);
	assert_true(v.u.f == 2.05);
	/* not a number */
	assert_false(sql_value_from_number_text(PROP_INTEGER, "1.0x", 4, &v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_compare),
		cmocka_unit_test(test_number_text_zero_fraction),
		cmocka_unit_test(test_since_unordered),
		cmocka_unit_test(test_order_checks),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_coercion_table),
		cmocka_unit_test(test_byte_classes),
		cmocka_unit_test(test_watch_counts_waits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
