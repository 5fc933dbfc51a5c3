/* bigquery.c: tests for src/source/bigquery.c's answer decoding (REST v2 rows, int64 timestamps). */
#include "support/testutil.h"

#include <string.h>

#include "source/warehouse_decode.h"

/* What on_row saw: the rows' keys and values as text, one line per row. */
struct seen {
	struct strbuf out;
	size_t rows;
};

static void add_value(struct strbuf *sb, const struct value *v)
{
	switch (v->kind) {
	case VAL_NULL: strbuf_addstr(sb, "null"); break;
	case VAL_STRING: strbuf_addf(sb, "s:%.*s", (int)v->u.s.len, v->u.s.ptr); break;
	case VAL_INT: strbuf_addf(sb, "i:%lld", (long long)v->u.i); break;
	case VAL_FLOAT: strbuf_addf(sb, "f:%.17g", v->u.f); break;
	case VAL_BOOL: strbuf_addstr(sb, v->u.b ? "b:true" : "b:false"); break;
	case VAL_DATE: strbuf_addf(sb, "d:%lld", (long long)v->u.i); break;
	case VAL_ARRAY:
		strbuf_addch(sb, '[');
		for (size_t i = 0; i < v->u.arr.n; i++) {
			if (i)
				strbuf_addch(sb, ',');
			add_value(sb, &v->u.arr.items[i]);
		}
		strbuf_addch(sb, ']');
		break;
	}
}

static void on_row(void *ctx, const struct source_row *row)
{
	struct seen *s = ctx;
	s->rows++;
	strbuf_addf(&s->out, "%.*s", (int)row->key.text.len, row->key.text.ptr);
	for (size_t i = 0; i < row->n_values; i++) {
		strbuf_addch(&s->out, ' ');
		add_value(&s->out, &row->values[i]);
	}
	strbuf_addch(&s->out, '\n');
}

static const char body[] =
	"{\"kind\":\"bigquery#queryResponse\",\"schema\":{\"fields\":["
	"{\"name\":\"id\",\"type\":\"INTEGER\",\"mode\":\"NULLABLE\"},{\"name\":\"n\",\"type\":\"INT64\"},"
	"{\"name\":\"amt\",\"type\":\"NUMERIC\"},{\"name\":\"f\",\"type\":\"FLOAT\"},{\"name\":\"b\",\"type\":\"BOOLEAN\"},"
	"{\"name\":\"d\",\"type\":\"DATE\"},{\"name\":\"ts\",\"type\":\"TIMESTAMP\"},{\"name\":\"dt\",\"type\":\"DATETIME\"},"
	"{\"name\":\"s\",\"type\":\"STRING\"},{\"name\":\"a\",\"type\":\"STRING\",\"mode\":\"REPEATED\"},"
	"{\"name\":\"tss\",\"type\":\"TIMESTAMP\"},{\"name\":\"ai\",\"type\":\"INTEGER\",\"mode\":\"REPEATED\"}]},"
	"\"rows\":["
	"{\"f\":[{\"v\":\"9007199254740993\"},{\"v\":\"9007199254740993\"},{\"v\":\"12.50\"},{\"v\":\"259.12\"},"
	"{\"v\":\"true\"},{\"v\":\"2020-02-01\"},{\"v\":\"1580559194123456\"},{\"v\":\"2020-02-01T12:13:14\"},"
	"{\"v\":\"h\\u00e9\"},{\"v\":[{\"v\":\"pen\"},{\"v\":\"book\"}]},{\"v\":\"1580559194123456\"},"
	"{\"v\":[{\"v\":\"3\"},{\"v\":\"9007199254740993\"}]}]},"
	"{\"f\":[{\"v\":\"2\"},{\"v\":null},{\"v\":null},{\"v\":\"NaN\"},{\"v\":\"false\"},{\"v\":null},{\"v\":\"-1000\"},"
	"{\"v\":null},{\"v\":\"\"},{\"v\":[]},{\"v\":null},{\"v\":null}]}],"
	"\"totalRows\":\"2\",\"jobComplete\":true}";

static const enum prop_type types[] = { PROP_INTEGER, PROP_FLOAT, PROP_FLOAT, PROP_BOOLEAN, PROP_DATE, PROP_DATE,
					 PROP_DATE, PROP_STRING, PROP_STRING, PROP_STRING, PROP_INTEGER };
static const bool arrays[] = { false, false, false, false, false, false, false, false, true, false, true };

static void test_encodings(void **state)
{
	(void)state;
	struct seen s = { STRBUF_INIT, 0 };
	struct jerror err = JERROR_INIT;
	struct warehouse_decode_spec spec = { true, types, arrays, 11 };
	assert_int_equal(source_bigquery_decode(body, sizeof(body) - 1, &spec, on_row, &s, &err), JERR_OK);
	assert_int_equal(s.rows, 2);
	/* INT64 exactly (also inside arrays); int64 microsecond timestamps to ms; DATETIME as
	 * UTC; a TIMESTAMP read by a string property as ISO 8601; REPEATED to arrays, NULL or
	 * none to an empty list; NaN does not fit a float property */
	assert_string_equal(s.out.buf,
			    "9007199254740993 i:9007199254740993 f:12.5 f:259.12 b:true d:1580515200000 d:1580559194123 "
			    "d:1580559194000 s:h\xc3\xa9 [s:pen,s:book] s:2020-02-01T12:13:14.123Z [i:3,i:9007199254740993]\n"
			    "2 null null null b:false null d:-1 null null [] null []\n");
	strbuf_release(&s.out);
}

static void test_errors(void **state)
{
	(void)state;
	struct seen s = { STRBUF_INIT, 0 };
	struct jerror err = JERROR_INIT;
	enum prop_type one[] = { PROP_STRING };
	struct warehouse_decode_spec spec = { true, one, NULL, 1 };
	const char *nonint = "{\"schema\":{\"fields\":[{\"name\":\"id\",\"type\":\"STRING\"},{\"name\":\"s\",\"type\":\"STRING\"}]},"
			     "\"rows\":[{\"f\":[{\"v\":\"x1\"},{\"v\":\"a\"}]}]}";
	assert_int_equal(source_bigquery_decode(nonint, strlen(nonint), &spec, on_row, &s, &err), JERR_SOURCE_DATA);
	assert_non_null(strstr(err.msg.buf, "non-integer value \"x1\""));
	jerror_release(&err);
	const char *ragged = "{\"schema\":{\"fields\":[{\"name\":\"id\",\"type\":\"INTEGER\"},{\"name\":\"s\",\"type\":\"STRING\"}]},"
			     "\"rows\":[{\"f\":[{\"v\":\"1\"}]}]}";
	assert_int_equal(source_bigquery_decode(ragged, strlen(ragged), &spec, on_row, &s, &err), JERR_SOURCE);
	assert_non_null(strstr(err.msg.buf, "malformed row 1"));
	jerror_release(&err);
	assert_int_equal(source_bigquery_decode("{\"rows\":[]}", 11, &spec, on_row, &s, &err), JERR_SOURCE);
	assert_non_null(strstr(err.msg.buf, "no schema"));
	jerror_release(&err);
	const char *badrows = "{\"schema\":{\"fields\":[{\"name\":\"id\",\"type\":\"INTEGER\"},{\"name\":\"s\",\"type\":\"STRING\"}]},"
			      "\"rows\":{}}";
	assert_int_equal(source_bigquery_decode(badrows, strlen(badrows), &spec, on_row, &s, &err), JERR_SOURCE);
	jerror_release(&err);
	assert_int_equal(source_bigquery_decode("nope", 4, &spec, on_row, &s, &err), JERR_SOURCE);
	jerror_release(&err);
	assert_int_equal(s.rows, 0);
	strbuf_release(&s.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encodings),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
