/*
 * snowflake.c: tests for src/source/snowflake.c's answer decoding (SQL API v2 value
 * encodings), and its sample / sample_query (the UI's editors) against warehouse-fake.
 */
#include "support/testutil.h"

#include <string.h>

#include "base/arena.h"
#include "source/source.h"
#include "source/warehouse_decode.h"
#include "wfake.h"

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
	"{\"resultSetMetaData\":{\"numRows\":3,\"format\":\"jsonv2\",\"partitionInfo\":[{\"rowCount\":3}],\"rowType\":["
	"{\"name\":\"ID\",\"type\":\"fixed\",\"scale\":0},{\"name\":\"N\",\"type\":\"fixed\",\"scale\":0},"
	"{\"name\":\"AMT\",\"type\":\"fixed\",\"scale\":2},{\"name\":\"F\",\"type\":\"real\"},"
	"{\"name\":\"B\",\"type\":\"boolean\"},{\"name\":\"D\",\"type\":\"date\"},"
	"{\"name\":\"TS\",\"type\":\"timestamp_ntz\"},{\"name\":\"TZ\",\"type\":\"TIMESTAMP_TZ\"},"
	"{\"name\":\"S\",\"type\":\"text\"},{\"name\":\"A\",\"type\":\"array\"},{\"name\":\"DS\",\"type\":\"date\"}]},"
	"\"data\":["
	"[\"9007199254740993\",\"9007199254740993\",\"12.50\",\"259.12\",\"true\",\"18293\",\"1580559194.123456789\","
	"\"1580559194.000000000 1020\",\"h\\u00e9\",\"[\\n  \\\"pen\\\",\\n  \\\"book\\\"\\n]\",\"18293\"],"
	"[\"2\",null,null,null,\"false\",\"-1\",\"-0.5\",null,\"\",\"[]\",null],"
	"[\"10\",\"-7\",\"-0.01\",\"1e3\",\"false\",\"0\",\"0.000000000\",null,\"x\",null,\"0\"]]}";

static const enum prop_type types[] = { PROP_INTEGER, PROP_FLOAT, PROP_FLOAT, PROP_BOOLEAN, PROP_DATE, PROP_DATE,
					 PROP_DATE, PROP_STRING, PROP_STRING, PROP_STRING };
static const bool arrays[] = { false, false, false, false, false, false, false, false, true, false };

static void test_encodings(void **state)
{
	(void)state;
	struct seen s = { STRBUF_INIT, 0 };
	struct jerror err = JERROR_INIT;
	struct warehouse_decode_spec spec = { true, types, arrays, 10 };
	assert_int_equal(source_snowflake_decode(body, sizeof(body) - 1, &spec, on_row, &s, &err), JERR_OK);
	assert_int_equal(s.rows, 3);
	/* 64-bit integers exactly; scale applied; dates at midnight UTC; timestamps to ms
	 * (truncated); TZ values are epoch seconds whatever the offset; arrays from JSON text;
	 * a date read by a string property as YYYY-MM-DD */
	assert_string_equal(s.out.buf,
			    "9007199254740993 i:9007199254740993 f:12.5 f:259.12 b:true d:1580515200000 "
			    "d:1580559194123 d:1580559194000 s:h\xc3\xa9 [s:pen,s:book] s:2020-02-01\n"
			    "2 null null null b:false d:-86400000 d:-500 null null [] null\n"
			    "10 i:-7 f:-0.01 f:1000 b:false d:0 d:0 null s:x null s:1970-01-01\n");
	strbuf_release(&s.out);
}

static void test_errors(void **state)
{
	(void)state;
	struct seen s = { STRBUF_INIT, 0 };
	struct jerror err = JERROR_INIT;
	enum prop_type one[] = { PROP_STRING };
	struct warehouse_decode_spec spec = { true, one, NULL, 1 };
	const char *nonint = "{\"resultSetMetaData\":{\"rowType\":[{\"name\":\"ID\",\"type\":\"text\"},{\"name\":\"S\",\"type\":"
			     "\"text\"}]},\"data\":[[\"x1\",\"a\"]]}";
	assert_int_equal(source_snowflake_decode(nonint, strlen(nonint), &spec, on_row, &s, &err), JERR_SOURCE_DATA);
	assert_non_null(strstr(err.msg.buf, "non-integer value \"x1\""));
	jerror_release(&err);
	const char *ragged = "{\"resultSetMetaData\":{\"rowType\":[{\"name\":\"ID\",\"type\":\"fixed\"},{\"name\":\"S\",\"type\":"
			     "\"text\"}]},\"data\":[[\"1\"]]}";
	assert_int_equal(source_snowflake_decode(ragged, strlen(ragged), &spec, on_row, &s, &err), JERR_SOURCE);
	assert_non_null(strstr(err.msg.buf, "malformed row 1"));
	jerror_release(&err);
	assert_int_equal(source_snowflake_decode("{\"data\":[]}", 11, &spec, on_row, &s, &err), JERR_SOURCE);
	assert_non_null(strstr(err.msg.buf, "not a result set"));
	jerror_release(&err);
	assert_int_equal(source_snowflake_decode("[", 1, &spec, on_row, &s, &err), JERR_SOURCE);
	jerror_release(&err);
	/* a value that does not fit its property is NULL and counted, not an error */
	enum prop_type i1[] = { PROP_INTEGER };
	struct warehouse_decode_spec spec2 = { false, i1, NULL, 1 };
	const char *bad = "{\"resultSetMetaData\":{\"rowType\":[{\"name\":\"K\",\"type\":\"text\"},{\"name\":\"N\",\"type\":"
			  "\"real\"}]},\"data\":[[\"k\",\"2.5\"],[null,\"1\"]]}";
	assert_int_equal(source_snowflake_decode(bad, strlen(bad), &spec2, on_row, &s, &err), JERR_OK);
	assert_string_equal(s.out.buf, "k null\n"); /* and the NULL key is skipped */
	strbuf_release(&s.out);
}

static void test_json_numbers_read_as_strings(void **state)
{
	(void)state;
	/* Snowflake sends text; a cell sent as a JSON number or boolean still decodes, and a
	 * string property keeps its own copy (it used to point into a stack buffer) */
	struct seen s = { STRBUF_INIT, 0 };
	struct jerror err = JERROR_INIT;
	enum prop_type t[] = { PROP_STRING, PROP_STRING, PROP_STRING };
	struct warehouse_decode_spec spec = { true, t, NULL, 3 };
	const char *b = "{\"resultSetMetaData\":{\"rowType\":[{\"name\":\"ID\",\"type\":\"fixed\"},{\"name\":\"N\",\"type\":"
			"\"fixed\"},{\"name\":\"F\",\"type\":\"real\"},{\"name\":\"B\",\"type\":\"boolean\"}]},"
			"\"data\":[[\"1\",4242424242,2.5,true],[\"2\",-7,1e300,false]]}";
	assert_int_equal(source_snowflake_decode(b, strlen(b), &spec, on_row, &s, &err), JERR_OK);
	assert_string_equal(s.out.buf, "1 s:4242424242 s:2.5 s:true\n2 s:-7 s:1.0000000000000001e+300 s:false\n");
	strbuf_release(&s.out);
}

/* ---- sample and sample_query through warehouse-fake ---- */

static const char sample_db[] =
	"CREATE TABLE \"USERS\" (\"ID\" NUMBER(38,0), \"EMAIL\" VARCHAR, \"NAME\" VARCHAR);"
	"INSERT INTO \"USERS\" VALUES (1, 'a@x.io', 'Al'), (2, 'b@x.io', NULL), (3, 'c@x.io', 'Cy'), (4, 'd@x.io', 'Di'),"
	" (5, 'e@x.io', 'Ed');"
	"CREATE TABLE \"ORDERS\" (\"USER_ID\" NUMBER(38,0));"
	"CREATE TABLE \"Mixed Case\" (\"x\" VARCHAR); INSERT INTO \"Mixed Case\" VALUES ('quoted');";

/* A snowflake app (programmatic access token) pointed at the fake. */
static struct cfg_app *sf_app(struct arena *a, const struct wfake *w)
{
	static const char *const kv[][2] = { { "account", "test" }, { "username", "joey" }, { "password", "good-pat" },
					      { "warehouse", "compute_wh" }, { "database", "shop" } };
	struct cfg_option *o = arena_zalloc(a, 6 * sizeof(*o));
	for (size_t i = 0; i < 5; i++)
		o[i] = (struct cfg_option){ .key = kv[i][0], .kind = OPT_STRING, .str = kv[i][1] };
	o[5] = (struct cfg_option){ .key = "endpoint", .kind = OPT_STRING, .str = arena_strdup(a, w->url) };
	struct cfg_app *app = arena_zalloc(a, sizeof(*app));
	*app = (struct cfg_app){ .id = "sf", .name = "sf", .type = "snowflake" };
	app->options = (struct cfg_options){ o, 6 };
	return app;
}

static void test_sample(void **state)
{
	(void)state;
	struct wfake w;
	if (!wfake_start(&w, "snowflake", "SHOP", sample_db))
		skip();
	struct arena a;
	arena_init(&a);
	struct jerror err = JERROR_INIT;
	struct source_sample smp = { 0 };
	void *conn = NULL;
	assert_int_equal(source_snowflake.connect(sf_app(&a, &w), "/", &conn, &err), JERR_OK);

	assert_int_equal(source_snowflake.sample(conn, NULL, 5, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_tables, 3);
	assert_string_equal(smp.tables[0], "Mixed Case");
	assert_string_equal(smp.tables[1], "ORDERS");
	assert_string_equal(smp.tables[2], "USERS");
	assert_int_equal(smp.n_columns, 0);
	source_sample_release(&smp);

	/* 4 rows across result partitions of 3; NULL stays NULL */
	memset(&smp, 0, sizeof(smp));
	assert_int_equal(source_snowflake.sample(conn, "USERS", 4, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_columns, 3);
	assert_string_equal(smp.columns[0], "ID");
	assert_string_equal(smp.columns[2], "NAME");
	assert_int_equal(smp.n_rows, 4);
	assert_string_equal(smp.cells[0], "1");
	assert_string_equal(smp.cells[1], "a@x.io");
	assert_null(smp.cells[1 * 3 + 2]);
	assert_string_equal(smp.cells[3 * 3 + 2], "Di");
	source_sample_release(&smp);

	memset(&smp, 0, sizeof(smp));
	assert_int_equal(source_snowflake.sample(conn, "Mixed Case", 10, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_rows, 1);
	assert_string_equal(smp.cells[0], "quoted");
	source_sample_release(&smp);

	/* names are case-sensitive; a name is never SQL */
	static const char *const bad[] = { "users", "USERS\" LIMIT 1; DROP TABLE \"USERS", "" };
	for (size_t i = 0; i < 3; i++) {
		memset(&smp, 0, sizeof(smp));
		assert_int_equal(source_snowflake.sample(conn, bad[i], 10, &smp, &err), JERR_CONFIG);
		assert_non_null(strstr(err.msg.buf, "sf"));
		source_sample_release(&smp);
	}
	source_snowflake.disconnect(conn);
	jerror_release(&err);
	arena_release(&a);
	wfake_stop(&w);
}

static void test_sample_query(void **state)
{
	(void)state;
	struct wfake w;
	if (!wfake_start(&w, "snowflake", "SHOP", sample_db))
		skip();
	struct arena a;
	arena_init(&a);
	struct jerror err = JERROR_INIT;
	struct source_sample smp = { 0 };
	void *conn = NULL;
	assert_int_equal(source_snowflake.connect(sf_app(&a, &w), "/", &conn, &err), JERR_OK);

	assert_int_equal(source_snowflake.sample_query(conn, "SELECT \"EMAIL\" AS \"e\", NULL AS \"n\" FROM \"USERS\" "
							  "ORDER BY \"ID\" DESC;",
						 2, &smp, &err),
			 JERR_OK);
	assert_int_equal(smp.n_columns, 2);
	assert_string_equal(smp.columns[0], "e");
	assert_int_equal(smp.n_rows, 2);
	assert_string_equal(smp.cells[0], "e@x.io");
	assert_null(smp.cells[1]);
	assert_string_equal(smp.cells[2], "d@x.io");
	assert_false(smp.columns_cut);
	source_sample_release(&smp);

	/* more than SOURCE_SAMPLE_MAX_COLUMNS columns: cut, and said so; a long value cut */
	struct strbuf q = STRBUF_INIT;
	strbuf_addstr(&q, "SELECT printf('%.300c', 'x') AS \"long\"");
	for (int i = 1; i < 120; i++)
		strbuf_addf(&q, ", %d AS \"c%d\"", i, i);
	memset(&smp, 0, sizeof(smp));
	assert_int_equal(source_snowflake.sample_query(conn, q.buf, 1000, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_columns, SOURCE_SAMPLE_MAX_COLUMNS);
	assert_true(smp.columns_cut);
	assert_int_equal(smp.n_rows, 1);
	assert_int_equal(strlen(smp.cells[0]), SOURCE_SAMPLE_MAX_VALUE + strlen("\u2026"));
	assert_string_equal(smp.cells[99], "99");
	source_sample_release(&smp);
	strbuf_release(&q);

	/* a write or a second statement: refused, in plain words, nothing changed */
	static const char *const bad[] = { "DELETE FROM \"USERS\"", "SELECT 1) AS x; DELETE FROM \"USERS\"; SELECT (1",
					   "SELECT nope FROM \"USERS\"" };
	for (size_t i = 0; i < 3; i++) {
		memset(&smp, 0, sizeof(smp));
		assert_int_equal(source_snowflake.sample_query(conn, bad[i], 5, &smp, &err), JERR_SOURCE);
		assert_string_equal(err.msg.buf, "app \"sf\": the query cannot be read");
		assert_true(err.detail.len > 0);
		assert_true(err.hint.len > 0);
		source_sample_release(&smp);
	}
	sqlite3 *s;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(wfake_db(&w, "SHOP"), &s), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s, "SELECT count(*) FROM \"USERS\"", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 5);
	sqlite3_finalize(st);
	sqlite3_close(s);

	/* Snowflake out of reach: a source error naming the app, nothing half-filled */
	kill(w.pid, SIGTERM);
	waitpid(w.pid, NULL, 0);
	w.pid = 0;
	memset(&smp, 0, sizeof(smp));
	assert_int_not_equal(source_snowflake.sample(conn, NULL, 5, &smp, &err), JERR_OK);
	assert_non_null(strstr(err.msg.buf, "app \"sf\""));
	assert_int_equal(smp.n_rows, 0);
	source_sample_release(&smp);
	source_snowflake.disconnect(conn);
	jerror_release(&err);
	arena_release(&a);
	wfake_stop(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encodings),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_json_numbers_read_as_strings),
		cmocka_unit_test(test_sample),
		cmocka_unit_test(test_sample_query),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
