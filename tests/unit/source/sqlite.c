/* sqlite.c: tests for src/source/sqlite.c (SQL shapes, ordering, filters, checks). */
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "base/arena.h"
#include "base/strbuf.h"
#include "source/source.h"
#include "source/sqlgen.h"

struct fx {
	struct arena a;
	char *dir;
	char *dbfile;
	struct cfg_app app;
	struct cfg_model model;
	void *conn;
};

static struct fx F;

static void db_exec(const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;
	assert_int_equal(sqlite3_open(F.dbfile, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "sql failed: %s\n", msg);
		fail();
	}
	sqlite3_close(db);
}

static int setup(void **s)
{
	memset(&F, 0, sizeof(F));
	arena_init(&F.a);
	F.dir = tu_mkdtemp();
	F.dbfile = arena_printf(&F.a, "%s/w.db", F.dir);
	db_exec("CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT, name TEXT, age INT, "
		"score REAL, active INT, born TEXT, site TEXT);"
		"INSERT INTO users VALUES"
		" (3, 'c@x.io', 'Cy', 40, 1.5, 1, '2001-02-03', 'HTTP://C.io'),"
		" (1, 'a@x.io', 'Al', 30, 2.25, 0, '1990-01-01T00:00:00Z', 'a.io'),"
		" (2, 'bad-email', 'Bo', 25, NULL, 1, 'nope', 'x y');"
		"CREATE TABLE purchases(pid INTEGER PRIMARY KEY, uid INT, amount REAL, "
		"item TEXT, ts INT, state TEXT);"
		"INSERT INTO purchases(uid, amount, item, ts, state) VALUES"
		" (1, 10, 'hat', 100, 'paid'), (1, 5, 'cap', 300, 'paid'),"
		" (1, 7, 'bag', 200, 'refunded'), (3, 1, 'pin', 50, 'paid'),"
		" (NULL, 99, 'orphan', 1, 'paid'), (NULL, 98, 'orphan2', 2, 'paid'),"
		" (3, NULL, 'pen', 60, 'paid');");
	F.app = (struct cfg_app){ .id = "warehouse", .name = "warehouse", .type = "sqlite" };
	struct cfg_option *o = arena_zalloc(&F.a, sizeof(*o));
	o->key = "file";
	o->kind = OPT_STRING;
	o->str = "w.db";
	F.app.options = (struct cfg_options){ o, 1 };
	F.model = (struct cfg_model){ .id = "users", .name = "users", .type = "profile" };
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_sqlite.connect(&F.app, F.dir, &F.conn, &err), JERR_OK);
	return 0;
}

static int teardown(void **s)
{
	source_sqlite.disconnect(F.conn);
	tu_rmtree(F.dir);
	free(F.dir);
	arena_release(&F.a);
	return 0;
}

#define FIXTURE_OPS source_sqlite
#define FIXTURE_TYPE "sqlite-import-table"
#include "fixture.h"

static void test_primary_exact_and_coercion(void **s)
{
	struct cfg_source *src = source(
		"users_src", "users", "id", true, PROP_INTEGER, 7,
		prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL),
		prop("age", PROP_INTEGER, "age", AGG_EXACT, NULL),
		prop("score", PROP_FLOAT, "score", AGG_EXACT, NULL),
		prop("active", PROP_BOOLEAN, "active", AGG_EXACT, NULL),
		prop("born", PROP_DATE, "born", AGG_EXACT, NULL),
		prop("site", PROP_URL, "site", AGG_EXACT, NULL),
		prop("age_s", PROP_STRING, "age", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#1:[\"a@x.io\",30,2.25,false,\"1990-01-01T00:00:00.000Z\",\"a.io\",\"30\"]\n"
			 "#2:[null,25,null,true,null,null,\"25\"]!3\n"
			 "#3:[\"c@x.io\",40,1.5,true,\"2001-02-03T00:00:00.000Z\",\"http://c.io\",\"40\"]\n");

	/* INTEGER PRIMARY KEY ordered by itself: no sort, no CAST */
	struct strbuf sql = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_sqlite.describe(F.conn, src, &sql, &err), JERR_OK);
	assert_string_equal(sql.buf, "SELECT \"id\", \"email\", \"age\", \"score\", \"active\", "
				     "\"born\", \"site\", \"age\" FROM \"users\" AS \"joey$src\" "
				     "ORDER BY \"id\"\n");
	strbuf_release(&sql);
}

/*
 * A number read natively as a date is held to the years 0000 to 9999 as the same number
 * as text is: microseconds (1614834367000000) printed "53142-01-24T..." before.
 */
static void test_native_number_dates_in_range(void **s)
{
	db_exec("CREATE TABLE epochs(id INTEGER PRIMARY KEY, d);"
		"INSERT INTO epochs VALUES (1, 1614834367000000), (2, -62167219200001), (3, 253402300800000),"
		" (4, 1614834367000000.0), (5, '1614834367000000'), (6, 1614834367), (7, 253402300799999),"
		" (8, -62167219200000), (9, 1614834367.5);");
	struct cfg_source *src = source("epochs_src", "epochs", "id", true, PROP_INTEGER, 1,
					prop("d", PROP_DATE, "d", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#1:[null]!1\n#2:[null]!1\n#3:[null]!1\n#4:[null]!1\n#5:[null]!1\n"
			 "#6:[\"2021-03-04T05:06:07.000Z\"]\n#7:[\"9999-12-31T23:59:59.999Z\"]\n"
			 "#8:[\"0000-01-01T00:00:00.000Z\"]\n#9:[\"2021-03-04T05:06:07.500Z\"]\n");
}

static void test_secondary_aggregations(void **s)
{
	struct cfg_source *src = source(
		"purchases", "purchases", "uid", false, PROP_INTEGER, 8,
		prop("n", PROP_INTEGER, "amount", AGG_COUNT, NULL),
		prop("total", PROP_FLOAT, "amount", AGG_SUM, NULL),
		prop("avg", PROP_FLOAT, "amount", AGG_AVERAGE, NULL),
		prop("min", PROP_FLOAT, "amount", AGG_MIN, NULL),
		prop("max", PROP_FLOAT, "amount", AGG_MAX, NULL),
		prop("last", PROP_STRING, "item", AGG_MOST_RECENT, "ts"),
		prop("first", PROP_STRING, "item", AGG_LEAST_RECENT, "ts"),
		prop("any", PROP_STRING, "item", AGG_EXACT, NULL));
	/* user 2 has no purchases: absent; NULL uid rows skipped */
	EXPECT_ROWS(src, "#1:[3,22,7.33333333333333,5,10,\"cap\",\"hat\",\"hat\"]\n"
			 "#3:[1,1,1,1,1,\"pen\",\"pin\",\"pin\"]\n");
}

static void test_filters_each_op(void **s)
{
	struct cfg_property *p[11];
	const enum filter_op ops[] = { FOP_EQ, FOP_NE, FOP_GT, FOP_GTE, FOP_LT, FOP_LTE,
				       FOP_SUBSTRING, FOP_NOT_SUBSTRING, FOP_IN, FOP_EXISTS,
				       FOP_NOT_EXISTS };
	const char *col[] = { "state", "state", "amount", "amount", "amount", "amount",
			      "item", "item", "item", "amount", "amount" };
	const char *match[] = { "paid", "paid", "7", "7", "7", "7", "A", "A", NULL, NULL, NULL };
	for (int i = 0; i < 11; i++) {
		p[i] = prop(filter_op_name(ops[i]), PROP_INTEGER, "amount", AGG_COUNT, NULL);
		struct cfg_filter *f = filter(p[i], col[i], ops[i], match[i]);
		f->match_is_number = i >= 2 && i <= 5;
		if (ops[i] == FOP_IN) {
			static const char *list[] = { "hat", "pin", "pen" };
			f->match_list = list;
			f->n_match_list = 3;
		}
	}
	struct cfg_source *src = source("purchases", "purchases", "uid", false, PROP_INTEGER, 11,
					p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8],
					p[9], p[10]);
	/* uid 1: hat 10 paid, cap 5 paid, bag 7 refunded; uid 3: pin 1 paid, pen NULL paid
	 * (COUNT counts non-null amounts) */
	EXPECT_ROWS(src, "#1:[2,1,1,2,1,2,3,0,1,3,0]\n"
			 "#3:[1,0,0,0,1,1,0,1,1,1,0]\n");
}

static void test_filters_on_primary_and_average(void **s)
{
	struct cfg_property *email = prop("email", PROP_STRING, "email", AGG_EXACT, NULL);
	filter(email, "age", FOP_GTE, "30")->match_is_number = true;
	struct cfg_source *src = source("users_src", "users", "id", true, PROP_INTEGER, 1, email);
	EXPECT_ROWS(src, "#1:[\"a@x.io\"]\n#2:[null]\n#3:[\"c@x.io\"]\n");

	struct cfg_property *avg = prop("avg_paid", PROP_FLOAT, "amount", AGG_AVERAGE, NULL);
	filter(avg, "state", FOP_EQ, "refunded");
	struct cfg_property *sum = prop("sum_paid", PROP_INTEGER, "amount", AGG_SUM, NULL);
	filter(sum, "state", FOP_EQ, "refunded");
	struct cfg_property *last = prop("last_paid", PROP_STRING, "item", AGG_MOST_RECENT, "ts");
	filter(last, "state", FOP_EQ, "paid");
	src = source("purchases", "purchases", "uid", false, PROP_INTEGER, 3, avg, sum, last);
	/* no refunded rows for 3: average NULL (Grouparoo filtered in WHERE), sum 0 */
	EXPECT_ROWS(src, "#1:[7,7,\"cap\"]\n#3:[null,0,\"pen\"]\n");
}

static void test_arrays(void **s)
{
	struct cfg_property *items = prop("items", PROP_STRING, "item", AGG_EXACT, "ts");
	items->is_array = true;
	struct cfg_property *amounts = prop("amounts", PROP_FLOAT, "amount", AGG_EXACT, NULL);
	amounts->is_array = true;
	filter(amounts, "state", FOP_EQ, "paid");
	struct cfg_property *recent = prop("recent", PROP_STRING, "item", AGG_MOST_RECENT, "ts");
	recent->is_array = true;
	struct cfg_source *src =
		source("purchases", "purchases", "uid", false, PROP_INTEGER, 3, items, amounts, recent);
	EXPECT_ROWS(src, "#1:[[\"hat\",\"bag\",\"cap\"],[10,5],[\"cap\",\"bag\",\"hat\"]]\n"
			 "#3:[[\"pin\",\"pen\"],[1],[\"pen\",\"pin\"]]\n");
}

static void test_text_vs_integer_key_order(void **s)
{
	db_exec("CREATE TABLE k(id, v TEXT); INSERT INTO k VALUES (9, 'nine'), (10, 'ten'), "
		"('2', 'two');");
	struct cfg_source *src =
		source("k_text", "k", "id", true, PROP_STRING, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "10:[\"ten\"]\n2:[\"two\"]\n9:[\"nine\"]\n");
	src = source("k_int", "k", "id", true, PROP_INTEGER, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#2:[\"two\"]\n#9:[\"nine\"]\n#10:[\"ten\"]\n");
	/* a secondary source grouped by a text key */
	src = source("k_text2", "k", "id", false, PROP_STRING, 1,
		     prop("n", PROP_INTEGER, "v", AGG_COUNT, NULL));
	EXPECT_ROWS(src, "10:[1]\n2:[1]\n9:[1]\n");
}

/*
 * A text key its type makes NULL (empty; an email or url that is not one) is skipped as
 * a NULL key is (outside review: '' and 'not-an-email' were sent as external_ids). A key
 * the type would only change (spaces around an email) is kept as it is; a key Braze
 * cannot receive (a NUL byte, invalid UTF-8) is unreadable, counted in the cursor.
 */
static void test_keys_null_by_type_and_unsendable(void **s)
{
	db_exec("CREATE TABLE ek(id TEXT, v TEXT); INSERT INTO ek VALUES (' bob@x.com ', 'spaced'), "
		"('not-an-email', 'bad'), ('', 'empty'), ('a@x.io', 'ok'), (NULL, 'null'), ('   ', 'blank'),"
		" ('c' || char(0) || '@x.io', 'nul'), (CAST(x'63ff40782e696f' AS TEXT), 'ff');");
	struct cfg_source *src =
		source("ek", "ek", "id", true, PROP_EMAIL, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	EXPECT_ROWS(src, " bob@x.com :[\"spaced\"]\na@x.io:[\"ok\"]\n");
	/* the email key's unreadable rows: not an email, only spaces, a NUL, not UTF-8 */
	{
		struct source_cursor *ec;
		struct source_row *er;
		struct jerror ee = JERROR_INIT;
		assert_int_equal(source_sqlite.open_cursor(F.conn, src, NULL, &ec, &ee), JERR_OK);
		while (source_cursor_next(ec, &er, &ee) == JERR_OK && er)
			;
		assert_int_equal(ec->unreadable, 4);
		assert_int_equal(ec->null_keys, 1); /* the empty one */
		bool named = false;
		for (size_t i = 0; i < ec->n_unreadable_at; i++)
			named |= !strcmp(ec->unreadable_at[i], "record key \"not-an-email\": it is not a valid email (the "
								"primary key's type): fix the value, or make the key a "
								"string property");
		assert_true(named);
		source_cursor_close(ec);
	}
	/* a string key: only the empty one is NULL ("   " is a string like any other) */
	src = source("sk", "ek", "id", true, PROP_STRING, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "   :[\"blank\"]\n bob@x.com :[\"spaced\"]\na@x.io:[\"ok\"]\nnot-an-email:[\"bad\"]\n");

	/* the unreadable rows: counted and described by the cursor */
	struct source_cursor *cur;
	struct source_row *row;
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_sqlite.open_cursor(F.conn, src, NULL, &cur, &err), JERR_OK);
	while (source_cursor_next(cur, &row, &err) == JERR_OK && row)
		;
	assert_int_equal(cur->unreadable, 2);
	assert_int_equal(cur->n_unreadable_at, 2);
	assert_int_equal(cur->null_keys, 1);
	assert_string_equal(cur->unreadable_at[0], "record key \"c\\x00@x.io\": it holds a NUL byte, so Braze "
						   "cannot receive it as an external_id");
	assert_string_equal(cur->unreadable_at[1], "record key \"c\\xff@x.io\": it is not valid UTF-8, so Braze "
						   "cannot receive it as an external_id");
	source_cursor_close(cur);
}

static void test_non_integer_key_is_an_error(void **s)
{
	db_exec("CREATE TABLE bk(id, v); INSERT INTO bk VALUES (1, 'a'), ('x1', 'b');");
	struct cfg_source *src =
		source("bk", "bk", "id", true, PROP_INTEGER, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	struct strbuf out = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	assert_int_equal(dump(src, &out, &err), JERR_SOURCE_DATA);
	assert_string_equal(err.msg.buf,
			    "source \"bk\": key column \"id\" holds a non-integer value \"x1\"");
	strbuf_release(&out);
	jerror_release(&err);
}

static void test_duplicate_key_and_null_keys(void **s)
{
	db_exec("CREATE TABLE d(id TEXT, v TEXT); INSERT INTO d VALUES ('a', '1'), (NULL, 'n'), "
		"('b', '2'), ('b', '3');");
	struct cfg_source *src =
		source("dups", "d", "id", true, PROP_STRING, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	struct strbuf out = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	assert_int_equal(dump(src, &out, &err), JERR_SOURCE_DATA);
	assert_string_equal(err.msg.buf, "duplicate primary key \"b\" in source \"dups\"");
	assert_true(err.hint.len > 0);
	assert_string_equal(out.buf, "a:[\"1\"]\nb:[\"2\"]\n");
	strbuf_release(&out);
	jerror_release(&err);
}

/* A connector that returns keys out of order: source_cursor_next must refuse it. */
struct fake_cursor {
	struct source_cursor base;
	struct source_row row;
	int i;
};

static enum jerr fake_next(struct source_cursor *c, struct source_row **row, struct jerror *err)
{
	struct fake_cursor *f = (struct fake_cursor *)c;
	static const char *const keys[] = { "b", "a" };
	if (f->i == 2) {
		*row = NULL;
		return JERR_OK;
	}
	f->row.key.text = slice_of(keys[f->i++]);
	*row = &f->row;
	return JERR_OK;
}

static void fake_close(struct source_cursor *c)
{
	free(c);
}

static void test_out_of_order_protection(void **s)
{
	static const struct source_cursor_ops ops = { fake_next, fake_close };
	struct fake_cursor *f = calloc(1, sizeof(*f));
	struct source_row *row;
	struct jerror err = JERROR_INIT;
	f->base.ops = &ops;
	f->base.source = source("weird", "t", "id", true, PROP_STRING, 0);
	assert_int_equal(source_cursor_next(&f->base, &row, &err), JERR_OK);
	assert_int_equal(source_cursor_next(&f->base, &row, &err), JERR_SOURCE_DATA);
	assert_string_equal(err.msg.buf, "source \"weird\" returned keys out of order");
	assert_string_equal(err.detail.buf, "key \"a\" came after key \"b\"");
	source_cursor_close(&f->base);
	jerror_release(&err);
}

static void test_check_missing_table_and_column(void **s)
{
	struct jerror err = JERROR_INIT;
	struct cfg_source *src =
		source("users_src", "usrs", "id", true, PROP_INTEGER, 1, prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL));
	assert_int_equal(source_sqlite.check(F.conn, src, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, "source \"users_src\": table \"usrs\" does not exist");
	assert_string_equal(err.hint.buf, "did you mean \"users\"?");
	jerror_release(&err);

	src = source("users_src", "users", "id", true, PROP_INTEGER, 1,
		     prop("email", PROP_EMAIL, "emial", AGG_EXACT, NULL));
	assert_int_equal(source_sqlite.check(F.conn, src, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf,
			    "source \"users_src\": column \"emial\" does not exist in table \"users\"");
	assert_string_equal(err.detail.buf, "used by property \"email\" (options.column)");
	assert_string_equal(err.hint.buf, "did you mean \"email\"?");
	jerror_release(&err);

	/* open_cursor reports the same thing rather than SQLite's bare message */
	struct source_cursor *cur = NULL;
	assert_int_equal(source_sqlite.open_cursor(F.conn, src, NULL, &cur, &err), JERR_CONFIG);
	assert_null(cur);
	assert_string_equal(err.hint.buf, "did you mean \"email\"?");
	jerror_release(&err);

	struct cfg_property *p = prop("last", PROP_STRING, "item", AGG_MOST_RECENT, "tss");
	src = source("purchases", "purchases", "uid", false, PROP_INTEGER, 1, p);
	assert_int_equal(source_sqlite.check(F.conn, src, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf,
			    "source \"purchases\": column \"tss\" does not exist in table \"purchases\"");
	assert_string_equal(err.detail.buf, "used by property \"last\" (options.sortColumn)");
	assert_string_equal(err.hint.buf, "did you mean \"ts\"?");
	jerror_release(&err);

	p = prop("n", PROP_INTEGER, "amount", AGG_COUNT, NULL);
	filter(p, "zzzzzz", FOP_EXISTS, NULL);
	src = source("purchases", "purchases", "uid", false, PROP_INTEGER, 1, p);
	assert_int_equal(source_sqlite.check(F.conn, src, &err), JERR_CONFIG);
	assert_string_equal(err.hint.buf, "the table's columns are: \"pid\", \"uid\", \"amount\", "
					  "\"item\", \"ts\", \"state\"");
	jerror_release(&err);

	src = source("users_src", "users", "id", true, PROP_INTEGER, 1,
		     prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL));
	assert_int_equal(source_sqlite.check(F.conn, src, &err), JERR_OK);
}

/*
 * A database another process holds a write lock on (past the 5 s busy timeout) is
 * locked, not missing its table: the error said 'table "users" does not exist' with
 * "the database's tables are: (none)" before.
 */
static void test_locked_database(void **s)
{
	struct jerror err = JERROR_INIT;
	struct source_cursor *cur = NULL;
	sqlite3 *w;
	struct cfg_source *src =
		source("users_src", "users", "id", true, PROP_INTEGER, 1, prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL));

	assert_int_equal(sqlite3_open(F.dbfile, &w), SQLITE_OK);
	assert_int_equal(sqlite3_exec(w, "BEGIN EXCLUSIVE; DELETE FROM users", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(source_sqlite.open_cursor(F.conn, src, NULL, &cur, &err), JERR_SOURCE);
	assert_null(cur);
	assert_string_equal(err.msg.buf, "source \"users_src\": the database is locked");
	assert_non_null(strstr(err.detail.buf, "database is locked"));
	jerror_release(&err);
	sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(w);
	assert_int_equal(source_sqlite.open_cursor(F.conn, src, NULL, &cur, &err), JERR_OK);
	source_cursor_close(cur);
}

static void test_sql_injection_is_quoted_and_bound(void **s)
{
	struct jerror err = JERROR_INIT;
	struct cfg_source *src = source("evil", "users\"; DROP TABLE users; --", "id", true,
					PROP_INTEGER, 1, prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL));
	assert_int_equal(source_sqlite.check(F.conn, src, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf,
			    "source \"evil\": table \"users\"; DROP TABLE users; --\" does not exist");
	jerror_release(&err);
	struct source_cursor *cur = NULL;
	assert_int_equal(source_sqlite.open_cursor(F.conn, src, NULL, &cur, &err), JERR_CONFIG);
	jerror_release(&err);

	struct cfg_property *p = prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL);
	filter(p, "name", FOP_EQ, "x' OR '1'='1");
	struct cfg_property *q = prop("name", PROP_STRING, "name", AGG_EXACT, NULL);
	filter(q, "name", FOP_SUBSTRING, "%");
	src = source("users_src", "users", "id", true, PROP_INTEGER, 2, p, q);
	EXPECT_ROWS(src, "#1:[null,null]\n#2:[null,null]\n#3:[null,null]\n");
	struct strbuf sql = STRBUF_INIT;
	assert_int_equal(source_sqlite.describe(F.conn, src, &sql, &err), JERR_OK);
	*strchr(sql.buf, '\n') = '\0';
	assert_null(strstr(sql.buf, "OR '1'"));
	sql.buf[strlen(sql.buf)] = '\n';
	assert_non_null(strstr(sql.buf, "-- ?1 = \"x' OR '1'='1\"\n"));
	strbuf_release(&sql);
	/* the table is still there */
	EXPECT_ROWS(source("users_src", "users", "id", true, PROP_INTEGER, 0), "#1:[]\n#2:[]\n#3:[]\n");
}

static void test_query_sources(void **s)
{
	/* joey extension: options.query as a derived table */
	struct cfg_source *src = source("big_spenders", NULL, "uid", false, PROP_INTEGER, 2,
					prop("total", PROP_FLOAT, "amount", AGG_SUM, NULL),
					prop("last", PROP_STRING, "item", AGG_MOST_RECENT, "ts"));
	src->is_query = true;
	src->type = "sqlite-import-query";
	src->query = "SELECT uid, amount, item, ts FROM purchases WHERE amount > 1;";
	EXPECT_ROWS(src, "#1:[22,\"cap\"]\n");
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_sqlite.check(F.conn, src, &err), JERR_OK);

	/* Grouparoo-style property queries: one correlated subquery per property */
	struct cfg_property *name = prop("name", PROP_STRING, NULL, AGG_EXACT, NULL);
	name->query = "SELECT name FROM users WHERE id = {{{ user_id }}}";
	struct cfg_property *spent = prop("spent", PROP_FLOAT, NULL, AGG_EXACT, NULL);
	spent->query = "SELECT SUM(amount) FROM purchases WHERE CAST(uid AS TEXT) = '{{ user_id }}';";
	src = source("q", NULL, "id", true, PROP_INTEGER, 2, name, spent);
	src->is_query = true;
	src->query = "SELECT id FROM users";
	EXPECT_ROWS(src, "#1:[\"Al\",22]\n#2:[\"Bo\",null]\n#3:[\"Cy\",1]\n");

	/* without options.query the keys come from the primary table source */
	struct cfg_source *primary = source("users_src", "users", "id", true, PROP_INTEGER, 0);
	F.model.primary_source = primary;
	struct cfg_property *spent2 = prop("spent2", PROP_FLOAT, NULL, AGG_EXACT, NULL);
	spent2->query = "SELECT SUM(amount) FROM purchases WHERE uid = {{{user_id}}}";
	src = source("q2", NULL, "id", false, PROP_INTEGER, 1, spent2);
	src->is_query = true;
	EXPECT_ROWS(src, "#1:[22]\n#2:[null]\n#3:[1]\n");
	F.model.primary_source = NULL;

	/* a placeholder naming another property cannot be one statement */
	struct cfg_property *bad = prop("bad", PROP_STRING, NULL, AGG_EXACT, NULL);
	bad->query = "SELECT 1 WHERE x = {{{ email }}}";
	src = source("q3", NULL, "id", true, PROP_INTEGER, 1, bad);
	src->is_query = true;
	src->query = "SELECT id FROM users";
	struct source_cursor *cur = NULL;
	assert_int_equal(source_sqlite.open_cursor(F.conn, src, NULL, &cur, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, "property \"bad\": query placeholder \"{{{ email }}}\" "
					 "does not name the record key");
	jerror_release(&err);

	/* a broken source query: SQLite's message in the detail */
	src = source("q4", NULL, "id", true, PROP_INTEGER, 0);
	src->is_query = true;
	src->query = "SELEC id FROM users";
	assert_int_equal(source_sqlite.check(F.conn, src, &err), JERR_SOURCE);
	assert_string_equal(err.msg.buf, "source \"q4\": the source query is invalid");
	assert_non_null(strstr(err.detail.buf, "syntax error"));
	jerror_release(&err);
}

static void test_connect_errors(void **s)
{
	struct jerror err = JERROR_INIT;
	void *conn = NULL;
	struct cfg_option o = { .key = "file", .kind = OPT_STRING, .str = "missing.db" };
	struct cfg_app app = { .id = "wh", .type = "sqlite", .options = { &o, 1 } };
	assert_int_equal(source_sqlite.connect(&app, "/nonexistent-dir", &conn, &err), JERR_SOURCE);
	assert_null(conn);
	assert_string_equal(err.msg.buf,
			    "app \"wh\": database file \"/nonexistent-dir/missing.db\" does not exist");
	jerror_release(&err);
	app.options.n = 0;
	assert_int_equal(source_sqlite.connect(&app, "/", &conn, &err), JERR_CONFIG);
	jerror_release(&err);
	assert_ptr_equal(source_ops_for_app("sqlite"), &source_sqlite);
	assert_ptr_equal(source_ops_for_source_type("sqlite-import-query"), &source_sqlite);
	assert_null(source_ops_for_app("oracle"));
	assert_null(source_ops_for_source_type("oracle-import-table"));
}

static void test_many_rows_stream(void **s)
{
	db_exec("CREATE TABLE big(id INTEGER PRIMARY KEY, a TEXT, b REAL);"
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) "
		"INSERT INTO big SELECT x, 'v' || x, x * 0.5 FROM c;");
	struct cfg_source *src = source("big", "big", "id", true, PROP_INTEGER, 2,
					prop("a", PROP_STRING, "a", AGG_EXACT, NULL),
					prop("b", PROP_FLOAT, "b", AGG_EXACT, NULL));
	struct source_cursor *cur;
	struct source_row *row;
	struct jerror err = JERROR_INIT;
	int64_t n = 0;
	assert_int_equal(source_sqlite.open_cursor(F.conn, src, NULL, &cur, &err), JERR_OK);
	while (source_cursor_next(cur, &row, &err) == JERR_OK && row) {
		n++;
		assert_int_equal(row->key.i, n);
	}
	assert_int_equal(n, 20000);
	assert_int_equal(cur->rows, 20000);
	source_cursor_close(cur);
}

/* ---- incremental reads (source_read) ---- */

/* Like dump, with read, each line ending in "@since". */
static enum jerr dump_read(const struct cfg_source *src, const struct source_read *read,
			   struct strbuf *out, struct jerror *err)
{
	struct source_cursor *cur;
	struct source_row *row;
	enum jerr rc = source_sqlite.open_cursor(F.conn, src, read, &cur, err);
	if (rc)
		return rc;
	while ((rc = source_cursor_next(cur, &row, err)) == JERR_OK && row) {
		strbuf_addf(out, "%.*s:[", (int)row->key.text.len, row->key.text.ptr);
		for (size_t i = 0; i < row->n_values; i++) {
			if (i)
				strbuf_addch(out, ',');
			value_to_json(out, &row->values[i]);
		}
		strbuf_addf(out, "]@%.*s\n", (int)row->since.len, row->since.ptr);
	}
	source_cursor_close(cur);
	return rc;
}

#define EXPECT_READ(src, read, text)                                            \
	do {                                                                    \
		struct strbuf out_ = STRBUF_INIT;                               \
		struct jerror err_ = JERROR_INIT;                               \
		enum jerr rc_ = dump_read((src), (read), &out_, &err_);         \
		if (rc_)                                                        \
			jerror_print(stderr, &err_);                            \
		assert_int_equal(rc_, JERR_OK);                                 \
		assert_string_equal(out_.buf, (text));                          \
		strbuf_release(&out_);                                          \
		jerror_release(&err_);                                          \
	} while (0)

/* The SQLite dialect's essentials, to see the statement sql_plan_build makes. */
static const struct sql_dialect test_dialect = {
	.name = "test", .quote = '"', .params = SQL_PARAM_QNUM, .pick = SQL_PICK_WINDOW,
	.text_type = "TEXT", .int_type = "INTEGER", .key_collate = "", .text_order = " COLLATE BINARY",
	.natural_text_order = "", .like_escape = " ESCAPE '\\'", .true_sql = "1", .false_sql = "0",
	.asc_nulls = "", .desc_nulls = "",
};

static void expect_sql(const struct cfg_source *src, const struct source_read *read,
		       const char *want)
{
	struct sql_plan p;
	struct strbuf out = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	sql_plan_init(&p);
	assert_int_equal(sql_plan_build(&test_dialect, NULL, src, read, &p, &err), JERR_OK);
	sql_plan_describe(&test_dialect, &p, &out);
	assert_string_equal(out.buf, want);
	strbuf_release(&out);
	sql_plan_release(&p);
	jerror_release(&err);
}

static void test_incremental_primary(void **s)
{
	struct cfg_source *src = source("users_src", "users", "id", true, PROP_INTEGER, 1,
					prop("name", PROP_STRING, "name", AGG_EXACT, NULL));
	struct source_read full = { .since_column = "age" }, since = { .since_column = "age", .since_value = "30" }, text = { .since_column = "born", .since_value = "2001" };

	/* the since column only: every row, with its value */
	EXPECT_READ(src, &full, "1:[\"Al\"]@30\n2:[\"Bo\"]@25\n3:[\"Cy\"]@40\n");
	/* >= the mark: the boundary row is read again; a number binds as a number */
	EXPECT_READ(src, &since, "1:[\"Al\"]@30\n3:[\"Cy\"]@40\n");
	/* text compares as text: "nope" > "2001" > "1990-..." */
	EXPECT_READ(src, &text, "2:[\"Bo\"]@nope\n3:[\"Cy\"]@2001-02-03\n");
	/* no since column: the ordinary read, row->since empty */
	EXPECT_READ(src, NULL, "1:[\"Al\"]@\n2:[\"Bo\"]@\n3:[\"Cy\"]@\n");

	expect_sql(src, &since,
		   "SELECT \"id\", \"name\", \"age\" FROM \"users\" AS \"joey$src\" "
		   "WHERE \"age\" >= ?1 ORDER BY CAST(\"id\" AS INTEGER)\n-- ?1 = 30\n");
	expect_sql(src, &full,
		   "SELECT \"id\", \"name\", \"age\" FROM \"users\" AS \"joey$src\" "
		   "ORDER BY CAST(\"id\" AS INTEGER)\n");
	/* an identifier with a quote is quoted, the value bound, never inlined */
	struct source_read evil = { .since_column = "a\"b", .since_value = "x'; DROP TABLE users; --" };
	expect_sql(src, &evil,
		   "SELECT \"id\", \"name\", \"a\"\"b\" FROM \"users\" AS \"joey$src\" "
		   "WHERE \"a\"\"b\" >= ?1 ORDER BY CAST(\"id\" AS INTEGER)\n"
		   "-- ?1 = \"x'; DROP TABLE users; --\"\n");
}

static void test_incremental_grouped(void **s)
{
	/* a grouped (aggregating) source filters keys, so the sum covers every row of a key */
	struct cfg_source *src = source("purchases_src", "purchases", "uid", true, PROP_INTEGER, 1,
					prop("total", PROP_FLOAT, "amount", AGG_SUM, NULL));
	struct source_read since = { .since_column = "ts", .since_value = "250" }, full = { .since_column = "ts" };

	EXPECT_READ(src, &since, "1:[22]@300\n");
	EXPECT_READ(src, &full, "1:[22]@300\n3:[1]@60\n");
	expect_sql(src, &since,
		   "SELECT \"uid\", COALESCE(SUM(\"amount\"), 0), COUNT(*), MAX(\"ts\") FROM "
		   "\"purchases\" AS \"joey$src\" WHERE \"uid\" IN (SELECT \"uid\" FROM \"purchases\" "
		   "WHERE \"ts\" >= ?1) GROUP BY \"uid\" ORDER BY CAST(\"uid\" AS INTEGER)\n-- ?1 = 250\n");

	/* with a window layer the filter goes inside it */
	struct cfg_source *w = source("purchases_w", "purchases", "uid", true, PROP_INTEGER, 1,
				      prop("last_item", PROP_STRING, "item", AGG_MOST_RECENT, "ts"));
	EXPECT_READ(w, &since, "1:[\"cap\"]@300\n");
}

/*
 * A REAL mark is the text that reads back as the same double: sqlite3_column_text gave
 * 15 significant digits, 1714557600.12346 (above the row), so the rows at the mark were
 * skipped by the next read (outside review).
 */
static void test_incremental_real_mark(void **s)
{
	db_exec("CREATE TABLE ev(id INTEGER PRIMARY KEY, uid INT, updated_at REAL);"
		"INSERT INTO ev VALUES (1, 1, 1714557600.123456), (2, 2, 1714557500.0), (3, 2, 0.1);");
	struct cfg_source *src = source("ev_src", "ev", "id", true, PROP_INTEGER, 1,
					prop("uid", PROP_INTEGER, "uid", AGG_EXACT, NULL));
	struct source_read full = { .since_column = "updated_at" },
			   since = { .since_column = "updated_at", .since_value = "1714557600.123456" };

	/* shortest exact text; ".0" kept on an integral value, as SQLite prints it */
	EXPECT_READ(src, &full, "1:[1]@1714557600.123456\n2:[2]@1714557500.0\n3:[2]@0.1\n");
	/* the mark read back finds its row again */
	EXPECT_READ(src, &since, "1:[1]@1714557600.123456\n");

	/* grouped: MAX(col) too */
	struct cfg_source *g = source("ev_g", "ev", "uid", true, PROP_INTEGER, 1,
				      prop("n", PROP_INTEGER, "id", AGG_COUNT, NULL));
	EXPECT_READ(g, &full, "1:[1]@1714557600.123456\n2:[2]@1714557500.0\n");
	EXPECT_READ(g, &since, "1:[1]@1714557600.123456\n");
}

/*
 * A number mark on a TEXT column compares as joey orders marks (numbers as numbers,
 * other text as text): bound as a number, SQLite made it text and '1000' >= '999' was
 * false, so the row was never read (outside review). A text mark, and a number on a
 * column of another type, keep column >= mark, which an index serves.
 */
static void test_incremental_number_mark_on_text(void **s)
{
	db_exec("CREATE TABLE tx(id INTEGER PRIMARY KEY, uid INT, v TEXT, at VARCHAR(20));"
		"INSERT INTO tx VALUES (1, 1, '998', '2024-01-01'), (2, 2, '999', '2024-01-02'),"
		" (3, 2, '1000', '2024-01-03'), (4, 3, 'x', NULL);");
	struct cfg_source *src = source("tx_src", "tx", "id", true, PROP_INTEGER, 1,
					prop("uid", PROP_INTEGER, "uid", AGG_EXACT, NULL));
	struct source_read num = { .since_column = "v", .since_value = "999" },
			   text = { .since_column = "at", .since_value = "2024-01-02" };

	/* 'x' is not a number: it compares as text, past "999" */
	EXPECT_READ(src, &num, "2:[2]@999\n3:[2]@1000\n4:[3]@x\n");
	EXPECT_READ(src, &text, "2:[2]@2024-01-02\n3:[2]@2024-01-03\n");
	/* grouped: the keys' subquery too (MAX of the text: '999') */
	struct cfg_source *g = source("tx_g", "tx", "uid", true, PROP_INTEGER, 1,
				      prop("n", PROP_INTEGER, "id", AGG_COUNT, NULL));
	EXPECT_READ(g, &num, "2:[2]@999\n3:[1]@x\n");
}

static void test_incremental_query_source_refused(void **s)
{
	struct cfg_source *src = source("q", NULL, "id", true, PROP_INTEGER, 1,
					prop("name", PROP_STRING, "name", AGG_EXACT, NULL));
	struct source_read since = { .since_column = "age", .since_value = "1" };
	struct source_cursor *cur = NULL;
	struct jerror err = JERROR_INIT;
	src->is_query = true;
	src->query = "SELECT id, name, age FROM users";
	src->type = "sqlite-import-query";
	assert_int_equal(source_sqlite.open_cursor(F.conn, src, &since, &cur, &err), JERR_CONFIG);
	assert_null(cur);
	assert_string_equal(err.msg.buf, "source \"q\": incremental reads need a table source");
	jerror_release(&err);
}

/* ---- key ranges (a worker's partition): WHERE key >= lo AND key < hi, in key order ---- */

static void test_key_range(void **s)
{
	struct rkey i2 = { true, 2, SLICE_LIT("2") }, i3 = { true, 3, SLICE_LIT("3") };
	struct key_range lo2 = { &i2, NULL }, below3 = { NULL, &i3 }, two = { &i2, &i3 };
	struct source_read r_lo2 = { .range = &lo2 }, r_below3 = { .range = &below3 }, r_two = { .range = &two };
	struct cfg_source *src = source("users_src", "users", "id", true, PROP_INTEGER, 1,
					prop("name", PROP_STRING, "name", AGG_EXACT, NULL));

	EXPECT_READ(src, &r_lo2, "2:[\"Bo\"]@\n3:[\"Cy\"]@\n");
	EXPECT_READ(src, &r_below3, "1:[\"Al\"]@\n2:[\"Bo\"]@\n");
	EXPECT_READ(src, &r_two, "2:[\"Bo\"]@\n");
	expect_sql(src, &r_two,
		   "SELECT \"id\", \"name\" FROM \"users\" AS \"joey$src\" WHERE CAST(\"id\" AS INTEGER) >= ?1 "
		   "AND CAST(\"id\" AS INTEGER) < ?2 ORDER BY CAST(\"id\" AS INTEGER)\n-- ?1 = 2\n-- ?2 = 3\n");
	/* with a since mark too; a grouped source keeps every row of its keys in range */
	struct source_read both = { .since_column = "age", .since_value = "30", .range = &lo2 };
	EXPECT_READ(src, &both, "3:[\"Cy\"]@40\n");
	struct cfg_source *g = source("purchases_src", "purchases", "uid", true, PROP_INTEGER, 1,
				      prop("total", PROP_FLOAT, "amount", AGG_SUM, NULL));
	EXPECT_READ(g, &r_lo2, "3:[1]@\n");
	struct cfg_source *w = source("purchases_w", "purchases", "uid", true, PROP_INTEGER, 1,
				      prop("last_item", PROP_STRING, "item", AGG_MOST_RECENT, "ts"));
	EXPECT_READ(w, &r_below3, "1:[\"cap\"]@\n");

	/* text keys compare bytewise, as key_compare: "10" < "2" < "9" < "a" */
	db_exec("CREATE TABLE k(id, v TEXT); INSERT INTO k VALUES (9, 'nine'), (10, 'ten'), ('2', 'two'), "
		"('a', 'A'), ('B', 'b');");
	struct rkey t2 = { false, 0, SLICE_LIT("2") }, ta = { false, 0, SLICE_LIT("a") };
	struct key_range tr = { &t2, &ta };
	struct source_read r_text = { .range = &tr };
	struct cfg_source *kt =
		source("k_text", "k", "id", true, PROP_STRING, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	EXPECT_READ(kt, &r_text, "2:[\"two\"]@\n9:[\"nine\"]@\nB:[\"b\"]@\n");
	expect_sql(kt, &r_text,
		   "SELECT CAST(\"id\" AS TEXT), \"v\" FROM \"k\" AS \"joey$src\" WHERE CAST(\"id\" AS TEXT) COLLATE BINARY"
		   " >= ?1 AND CAST(\"id\" AS TEXT) COLLATE BINARY < ?2 ORDER BY CAST(\"id\" AS TEXT) COLLATE BINARY\n"
		   "-- ?1 = \"2\"\n-- ?2 = \"a\"\n");
}

/* The statement's query plan in SQLite (EXPLAIN QUERY PLAN), one detail per line. */
static void query_plan(const char *sql, const struct sql_plan *p, struct strbuf *out)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	struct strbuf q = STRBUF_INIT;
	strbuf_addf(&q, "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_open(F.dbfile, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, q.buf, -1, &st, NULL), SQLITE_OK);
	for (size_t i = 0; i < p->n_binds; i++)
		sqlite3_bind_text(st, (int)i + 1, p->binds[i].s, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW)
		strbuf_addf(out, "%s\n", (const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	sqlite3_close(db);
	strbuf_release(&q);
}

/* source_read.match_column: a record looked up by a unique property's value, in the statement. */
static void test_sample(void **s)
{
	struct source_sample smp = { 0 };
	struct jerror err = JERROR_INIT;
	assert_int_equal(FIXTURE_OPS.sample(F.conn, NULL, 5, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_tables, 2);
	assert_string_equal(smp.tables[0], "purchases");
	assert_string_equal(smp.tables[1], "users");
	assert_int_equal(smp.n_columns, 0);
	source_sample_release(&smp);
	assert_int_equal(FIXTURE_OPS.sample(F.conn, "users", 2, &smp, &err), JERR_OK);
	assert_true(smp.n_columns >= 8);
	assert_string_equal(smp.columns[0], "id");
	assert_string_equal(smp.columns[1], "email");
	assert_int_equal(smp.n_rows, 2);
	source_sample_release(&smp);
	/* a table name is an identifier, and must be one of the tables */
	assert_int_equal(FIXTURE_OPS.sample(F.conn, "users; DROP TABLE users", 2, &smp, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, "app \"warehouse\" has no table \"users; DROP TABLE users\"");
	jerror_release(&err);
	source_sample_release(&smp);
	assert_int_equal(FIXTURE_OPS.sample(F.conn, "users", 1000, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_rows, 3);
	source_sample_release(&smp);
}

/* sample_query: a query's columns and first rows, one read-only SELECT as a derived table. */
static void test_sample_query(void **s)
{
	struct source_sample smp = { 0 };
	struct jerror err = JERROR_INIT;
	assert_int_equal(FIXTURE_OPS.sample_query(F.conn, "SELECT id, email AS mail FROM users ORDER BY id;; \n", 2,
						  &smp, &err), JERR_OK);
	assert_int_equal(smp.n_tables, 0);
	assert_int_equal(smp.n_columns, 2);
	assert_string_equal(smp.columns[1], "mail");
	assert_int_equal(smp.n_rows, 2);
	assert_string_equal(smp.cells[0], "1");
	assert_string_equal(smp.cells[3], "bad-email");
	assert_false(smp.columns_cut);
	source_sample_release(&smp);
	/* rows capped at SOURCE_SAMPLE_MAX_ROWS, columns at SOURCE_SAMPLE_MAX_COLUMNS */
	struct strbuf wide = STRBUF_INIT;
	strbuf_addstr(&wide, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80) SELECT i");
	for (int i = 0; i < SOURCE_SAMPLE_MAX_COLUMNS + 5; i++)
		strbuf_addf(&wide, ", %d AS c%d", i, i);
	strbuf_addstr(&wide, " FROM n -- a comment at the end");
	assert_int_equal(FIXTURE_OPS.sample_query(F.conn, wide.buf, 1000, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_rows, SOURCE_SAMPLE_MAX_ROWS);
	assert_int_equal(smp.n_columns, SOURCE_SAMPLE_MAX_COLUMNS);
	assert_true(smp.columns_cut);
	source_sample_release(&smp);
	strbuf_release(&wide);
	/* a write is a syntax error inside the derived table */
	assert_int_equal(FIXTURE_OPS.sample_query(F.conn, "DELETE FROM users", 5, &smp, &err), JERR_SOURCE);
	assert_string_equal(err.msg.buf, "app \"warehouse\": the query cannot be read");
	assert_string_equal(err.detail.buf, "near \"DELETE\": syntax error");
	jerror_release(&err);
	source_sample_release(&smp);
	/* a second statement smuggled after a closing parenthesis never runs */
	assert_int_equal(FIXTURE_OPS.sample_query(F.conn, "SELECT 1) AS a; DELETE FROM users; --", 5, &smp, &err),
			 JERR_SOURCE);
	assert_string_equal(err.msg.buf, "app \"warehouse\": the query is more than one statement");
	jerror_release(&err);
	source_sample_release(&smp);
	assert_int_equal(FIXTURE_OPS.sample_query(F.conn, "SELECT COUNT(*) AS n FROM users", 5, &smp, &err), JERR_OK);
	assert_string_equal(smp.cells[0], "3");
	source_sample_release(&smp);
}

static void test_match_value(void **s)
{
	struct jerror err = JERROR_INIT;
	struct cfg_source *src = source("users_src", "users", "id", true, PROP_INTEGER, 2,
					prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL),
					prop("name", PROP_STRING, "name", AGG_EXACT, NULL));
	struct source_read by_email = { .match_column = "email", .match_value = "c@x.io" };
	EXPECT_READ(src, &by_email, "3:[\"c@x.io\",\"Cy\"]@\n");
	expect_sql(src, &by_email,
		   "SELECT \"id\", \"email\", \"name\" FROM \"users\" AS \"joey$src\" WHERE \"email\" = ?1 "
		   "ORDER BY CAST(\"id\" AS INTEGER)\n-- ?1 = \"c@x.io\"\n");
	/* no such value: no row; SQL in the value is a value */
	struct source_read none = { .match_column = "email", .match_value = "x' OR '1'='1" };
	EXPECT_READ(src, &none, "");
	/* SQL in the column name is an identifier: no such column, nothing run */
	struct source_read evil = { .match_column = "email\" OR 1=1 --", .match_value = "a" };
	struct source_cursor *cur = NULL;
	assert_int_not_equal(source_sqlite.open_cursor(F.conn, src, &evil, &cur, &err), JERR_OK);
	assert_null(cur);
	assert_string_equal(err.detail.buf, "no such column: email\" OR 1=1 --");
	jerror_release(&err);
	EXPECT_ROWS(source("users_src", "users", "id", true, PROP_INTEGER, 0), "#1:[]\n#2:[]\n#3:[]\n");
	struct source_read age = { .match_column = "age", .match_value = "30", .match_is_number = true };
	EXPECT_READ(src, &age, "1:[\"a@x.io\",\"Al\"]@\n");
	/* with the keys of a look-up too */
	struct rkey k1 = { true, 1, SLICE_LIT("1") };
	struct source_read both = { .match_column = "name", .match_value = "Al", .in_keys = &k1, .n_in_keys = 1 };
	EXPECT_READ(src, &both, "1:[\"a@x.io\",\"Al\"]@\n");
	/* a grouped source: the matching rows only, aggregated */
	struct cfg_source *g = source("purchases_src", "purchases", "uid", true, PROP_INTEGER, 1,
				      prop("total", PROP_FLOAT, "amount", AGG_SUM, NULL));
	struct source_read hat = { .match_column = "item", .match_value = "hat" };
	EXPECT_READ(g, &hat, "1:[10]@\n");
	/* and a window (most recent value) */
	struct cfg_source *w = source("purchases_w", "purchases", "uid", true, PROP_INTEGER, 1,
				      prop("last_item", PROP_STRING, "item", AGG_MOST_RECENT, "ts"));
	struct source_read pin = { .match_column = "item", .match_value = "pin" };
	EXPECT_READ(w, &pin, "3:[\"pin\"]@\n");

	/* not a scan: with an index on the column, SQLite searches it */
	db_exec("CREATE INDEX users_email ON users(email);");
	struct sql_plan p;
	struct strbuf plan = STRBUF_INIT;
	sql_plan_init(&p);
	assert_int_equal(sql_plan_build(&test_dialect, NULL, src, &by_email, &p, &err), JERR_OK);
	query_plan(p.sql.buf, &p, &plan);
	assert_non_null(strstr(plan.buf, "USING INDEX users_email (email=?)"));
	assert_null(strstr(plan.buf, "SCAN users"));
	sql_plan_release(&p);
	strbuf_release(&plan);

	/* a query source cannot take the condition */
	struct cfg_source *qs = source("users_q", NULL, "id", true, PROP_INTEGER, 1,
				       prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL));
	qs->is_query = true;
	qs->query = "SELECT id, email FROM users";
	assert_int_equal(source_sqlite.open_cursor(F.conn, qs, &by_email, &cur, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, "source \"users_q\": a lookup by value needs a table source");
	jerror_release(&err);
}

/* The `?` dialects (MySQL, BigQuery, Snowflake) reorder binds by the markers' numbers. */
static const struct sql_dialect qmark_dialect = {
	.name = "qmark", .quote = '`', .params = SQL_PARAM_QMARK, .pick = SQL_PICK_WINDOW,
	.text_type = "CHAR", .int_type = "SIGNED", .key_collate = "", .text_order = "",
	.natural_text_order = "", .like_escape = " ESCAPE '\\'", .true_sql = "TRUE", .false_sql = "FALSE",
	.asc_nulls = "", .desc_nulls = "",
};

static void expect_plan_error(const struct cfg_source *src, const struct source_read *read, enum jerr want,
			      const char *msg)
{
	struct sql_plan p;
	struct jerror err = JERROR_INIT;
	sql_plan_init(&p);
	assert_int_equal(sql_plan_build(&qmark_dialect, NULL, src, read, &p, &err), want);
	assert_string_equal(err.msg.buf, msg);
	assert_true(err.hint.len > 0);
	sql_plan_release(&p);
	jerror_release(&err);
}

/* A name that holds a parameter marker (\001<n>\002) is refused, never read as one. */
static void test_marker_in_names(void **s)
{
	struct cfg_property *name = prop("name", PROP_STRING, "name", AGG_EXACT, NULL);
	struct cfg_source *src = source("users_src", "users", "id", true, PROP_INTEGER, 1, name);
	struct source_read since = { .since_column = "age", .since_value = "30" };

	/* the config's names: a config error, before any SQL is written */
	name->column = "a\0019999\002";
	expect_plan_error(src, NULL, JERR_CONFIG, "property \"name\": column contains control characters");
	name->column = "name";
	name->sort_column = "t\001";
	expect_plan_error(src, NULL, JERR_CONFIG, "property \"name\": sortColumn contains control characters");
	name->sort_column = NULL;
	filter(name, "k\0012\002", FOP_EQ, "x");
	expect_plan_error(src, NULL, JERR_CONFIG, "property \"name\": filters.key contains control characters");
	name->n_filters = 0;
	src->table = "users\002";
	expect_plan_error(src, NULL, JERR_CONFIG, "source \"users_src\": table contains control characters");
	src->table = "users";

	/* a marker out of range, without digits or unclosed: an internal error, no bind read */
	const char *bad[] = { "a\0019999\002", "a\0010\002", "a\001\002", "a\001", "a\0011x\002",
			      "a\00199999999999999999999\002" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		since.since_column = bad[i];
		expect_plan_error(src, &since, JERR_INTERNAL,
				  "source \"users_src\": the statement has a malformed parameter marker");
	}
	/* and the plain names still build */
	since.since_column = "age";
	struct sql_plan p;
	struct jerror err = JERROR_INIT;
	sql_plan_init(&p);
	assert_int_equal(sql_plan_build(&qmark_dialect, NULL, src, &since, &p, &err), JERR_OK);
	assert_string_equal(p.sql.buf, "SELECT `id`, `name`, `age` FROM `users` AS `joey$src` WHERE `age` >= ? "
				       "ORDER BY CAST(`id` AS SIGNED)");
	assert_int_equal(p.n_binds, 1);
	sql_plan_release(&p);
}

static void test_since_compare(void **s)
{
	assert_true(source_since_compare(SLICE_LIT("9"), SLICE_LIT("10")) < 0);
	assert_true(source_since_compare(SLICE_LIT("9.5"), SLICE_LIT("10")) < 0);
	assert_true(source_since_compare(SLICE_LIT("-1"), SLICE_LIT("0")) < 0);
	assert_int_equal(source_since_compare(SLICE_LIT("10"), SLICE_LIT("10.0")), 0);
	assert_true(source_since_compare(SLICE_LIT("2024-01-02 00:00:00"),
					 SLICE_LIT("2024-01-10 00:00:00")) < 0);
	assert_true(source_since_compare(SLICE_LIT("9"), SLICE_LIT("a")) < 0);
	assert_true(source_since_compare(SLICE_LIT("1700000000001"), SLICE_LIT("1700000000000")) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_primary_exact_and_coercion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_native_number_dates_in_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secondary_aggregations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters_each_op, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters_on_primary_and_average, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arrays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_vs_integer_key_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_null_by_type_and_unsendable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_integer_key_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_key_and_null_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order_protection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_missing_table_and_column, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sql_injection_is_quoted_and_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_rows_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental_primary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental_grouped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental_real_mark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental_number_mark_on_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental_query_source_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample_query, setup, teardown),
		cmocka_unit_test(test_since_compare),
		cmocka_unit_test_setup_teardown(test_marker_in_names, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
