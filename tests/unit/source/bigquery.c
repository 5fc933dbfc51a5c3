/*
 * bigquery.c: tests for src/source/bigquery.c's answer decoding (REST v2 rows, int64
 * timestamps), and its sample / sample_query (the UI's editors) against warehouse-fake.
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

/* ---- sample and sample_query through warehouse-fake ---- */

static const char sample_db[] =
	"CREATE TABLE users (id INT64, email STRING, signup TIMESTAMP);"
	"INSERT INTO users VALUES (1, 'a@x.io', '2024-01-02 03:04:05.678'), (2, 'b@x.io', NULL), (3, 'c@x.io', NULL),"
	" (4, 'd@x.io', NULL), (5, 'e@x.io', NULL);"
	"CREATE TABLE orders (user_id INT64, amount NUMERIC); INSERT INTO orders VALUES (1, 2.5);"
	"CREATE TABLE `Big Table` (x STRING); INSERT INTO `Big Table` VALUES ('quoted');";

/* A bigquery app (service account) pointed at the fake. */
static struct cfg_app *bq_app(struct arena *a, const struct wfake *w)
{
	struct cfg_option *o = arena_zalloc(a, 5 * sizeof(*o));
	o[0] = (struct cfg_option){ .key = "project_id", .kind = OPT_STRING, .str = "test-project" };
	o[1] = (struct cfg_option){ .key = "dataset", .kind = OPT_STRING, .str = "crm" };
	o[2] = (struct cfg_option){ .key = "client_email", .kind = OPT_STRING,
				    .str = "joey@test-project.iam.gserviceaccount.com" };
	o[3] = (struct cfg_option){ .key = "private_key", .kind = OPT_STRING, .str = arena_strdup(a, w->private_pem) };
	o[4] = (struct cfg_option){ .key = "endpoint", .kind = OPT_STRING, .str = arena_strdup(a, w->url) };
	struct cfg_app *app = arena_zalloc(a, sizeof(*app));
	*app = (struct cfg_app){ .id = "bq", .name = "bq", .type = "bigquery" };
	app->options = (struct cfg_options){ o, 5 };
	return app;
}

static void test_sample(void **state)
{
	(void)state;
	struct wfake w;
	if (!wfake_start(&w, "bigquery", "crm", sample_db))
		skip();
	struct arena a;
	arena_init(&a);
	struct jerror err = JERROR_INIT;
	struct source_sample smp = { 0 };
	void *conn = NULL;
	assert_int_equal(source_bigquery.connect(bq_app(&a, &w), "/", &conn, &err), JERR_OK);

	assert_int_equal(source_bigquery.sample(conn, NULL, 5, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_tables, 3);
	assert_string_equal(smp.tables[0], "Big Table");
	assert_string_equal(smp.tables[1], "orders");
	assert_string_equal(smp.tables[2], "users");
	source_sample_release(&smp);

	/* 4 rows across pages of 3; a TIMESTAMP as ISO text; NULL stays NULL */
	memset(&smp, 0, sizeof(smp));
	assert_int_equal(source_bigquery.sample(conn, "users", 4, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_columns, 3);
	assert_string_equal(smp.columns[2], "signup");
	assert_int_equal(smp.n_rows, 4);
	assert_string_equal(smp.cells[0], "1");
	assert_string_equal(smp.cells[2], "2024-01-02T03:04:05.678Z");
	assert_null(smp.cells[5]);
	assert_string_equal(smp.cells[3 * 3 + 1], "d@x.io");
	source_sample_release(&smp);

	memset(&smp, 0, sizeof(smp));
	assert_int_equal(source_bigquery.sample(conn, "Big Table", 10, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_rows, 1);
	assert_string_equal(smp.cells[0], "quoted");
	source_sample_release(&smp);

	static const char *const bad[] = { "user", "users` LIMIT 1; DELETE FROM `users", "" };
	for (size_t i = 0; i < 3; i++) {
		memset(&smp, 0, sizeof(smp));
		assert_int_equal(source_bigquery.sample(conn, bad[i], 10, &smp, &err), JERR_CONFIG);
		source_sample_release(&smp);
	}
	source_bigquery.disconnect(conn);
	jerror_release(&err);
	arena_release(&a);
	wfake_stop(&w);
}

static void test_sample_query(void **state)
{
	(void)state;
	struct wfake w;
	if (!wfake_start(&w, "bigquery", "crm", sample_db))
		skip();
	struct arena a;
	arena_init(&a);
	struct jerror err = JERROR_INIT;
	struct source_sample smp = { 0 };
	void *conn = NULL;
	assert_int_equal(source_bigquery.connect(bq_app(&a, &w), "/", &conn, &err), JERR_OK);

	assert_int_equal(source_bigquery.sample_query(conn, "SELECT email AS e, NULL AS n FROM users ORDER BY id DESC;", 2,
						 &smp, &err),
			 JERR_OK);
	assert_int_equal(smp.n_columns, 2);
	assert_string_equal(smp.columns[0], "e");
	assert_int_equal(smp.n_rows, 2);
	assert_string_equal(smp.cells[0], "e@x.io");
	assert_null(smp.cells[1]);
	assert_string_equal(smp.cells[2], "d@x.io");
	assert_false(smp.columns_cut);
	source_sample_release(&smp);

	struct strbuf q = STRBUF_INIT;
	strbuf_addstr(&q, "SELECT 0 AS c0");
	for (int i = 1; i < 120; i++)
		strbuf_addf(&q, ", %d AS c%d", i, i);
	memset(&smp, 0, sizeof(smp));
	assert_int_equal(source_bigquery.sample_query(conn, q.buf, 1000, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_columns, SOURCE_SAMPLE_MAX_COLUMNS);
	assert_true(smp.columns_cut);
	assert_string_equal(smp.cells[99], "99");
	source_sample_release(&smp);
	strbuf_release(&q);

	static const char *const bad[] = { "DELETE FROM users WHERE true",
					   "SELECT 1) AS x; DELETE FROM users WHERE true; SELECT (1", "SELECT nope FROM users" };
	for (size_t i = 0; i < 3; i++) {
		memset(&smp, 0, sizeof(smp));
		assert_int_equal(source_bigquery.sample_query(conn, bad[i], 5, &smp, &err), JERR_SOURCE);
		assert_string_equal(err.msg.buf, "app \"bq\": the query cannot be read");
		assert_true(err.detail.len > 0);
		source_sample_release(&smp);
	}
	sqlite3 *s;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(wfake_db(&w, "crm"), &s), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s, "SELECT count(*) FROM users", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 5);
	sqlite3_finalize(st);
	sqlite3_close(s);

	/* BigQuery out of reach: an error naming the app */
	kill(w.pid, SIGTERM);
	waitpid(w.pid, NULL, 0);
	w.pid = 0;
	memset(&smp, 0, sizeof(smp));
	assert_int_not_equal(source_bigquery.sample(conn, NULL, 5, &smp, &err), JERR_OK);
	assert_non_null(strstr(err.msg.buf, "app \"bq\""));
	source_sample_release(&smp);
	source_bigquery.disconnect(conn);
	jerror_release(&err);
	arena_release(&a);
	wfake_stop(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encodings),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_sample),
		cmocka_unit_test(test_sample_query),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
