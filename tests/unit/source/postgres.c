/* postgres.c: tests for src/source/postgres.c against a real server ($JOEY_PG_URL; skipped without). */
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "base/arena.h"
#include "base/strbuf.h"
#include "source/source.h"
#include "source/sqlgen.h"

/*
 * JOEY_PG_URL=postgresql://user:password@host:port/database names a server where the
 * user may create schemas (scripts/test-servers.sh start). Each test works in a fresh
 * schema "joey_unit", dropped at teardown.
 */

struct fx {
	struct arena a;
	char *url;
	char user[128], password[128], host[128], port[16], database[128];
	struct cfg_app app;
	struct cfg_model model;
	void *conn;
};

static struct fx F;

static bool parse_url(const char *url)
{
	/* postgresql://user:password@host:port/database (no escapes needed for tests) */
	const char *p = strstr(url, "://");
	if (!p)
		return false;
	return sscanf(p + 3, "%127[^:]:%127[^@]@%127[^:]:%15[^/]/%127s", F.user, F.password, F.host,
		      F.port, F.database) == 5;
}

static void db_exec(const char *sql)
{
	PGconn *pg = PQconnectdb(F.url);
	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	PGresult *r = PQexec(pg, "SET search_path = joey_unit; SET client_min_messages = warning");
	PQclear(r);
	r = PQexec(pg, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "sql failed: %s\n", PQresultErrorMessage(r));
		fail();
	}
	PQclear(r);
	PQfinish(pg);
}

static struct cfg_option *opt(struct cfg_option *o, const char *key, enum opt_kind kind,
			      const char *str)
{
	o->key = key;
	o->kind = kind;
	o->str = str;
	return o + 1;
}

static void make_app(struct cfg_app *app, const char *host, const char *port, const char *password)
{
	struct cfg_option *items = arena_zalloc(&F.a, 8 * sizeof(*items)), *o = items;
	o = opt(o, "host", OPT_STRING, host);
	o = opt(o, "port", OPT_NUMBER, port);
	o = opt(o, "database", OPT_STRING, F.database);
	o = opt(o, "user", OPT_STRING, F.user);
	o = opt(o, "password", OPT_STRING, password);
	o = opt(o, "schema", OPT_STRING, "joey_unit");
	*app = (struct cfg_app){ .id = "warehouse", .name = "warehouse", .type = "postgres" };
	app->options = (struct cfg_options){ items, (size_t)(o - items) };
}

static int setup(void **s)
{
	memset(&F, 0, sizeof(F));
	F.url = getenv("JOEY_PG_URL");
	if (!F.url || !*F.url || !parse_url(F.url)) {
		F.url = NULL; /* each test skips */
		return 0;
	}
	arena_init(&F.a);
	db_exec("DROP SCHEMA IF EXISTS joey_unit CASCADE; CREATE SCHEMA joey_unit;"
		"CREATE TABLE joey_unit.users(id INTEGER PRIMARY KEY, email TEXT, name TEXT, age INT, "
		"score DOUBLE PRECISION, active BOOLEAN, born TEXT, site TEXT, "
		"created TIMESTAMPTZ, price NUMERIC(10,2));"
		"INSERT INTO joey_unit.users VALUES"
		" (3, 'c@x.io', 'Cy', 40, 1.5, true, '2001-02-03', 'HTTP://C.io', '2001-02-03 04:05:06+02', 3.50),"
		" (1, 'a@x.io', 'Al', 30, 2.25, false, '1990-01-01T00:00:00Z', 'a.io', NULL, 1),"
		" (2, 'bad-email', 'Bo', 25, NULL, true, 'nope', 'x y', '1970-01-01 00:00:01+00', NULL);"
		"CREATE TABLE joey_unit.purchases(pid SERIAL PRIMARY KEY, uid INT, amount REAL, "
		"item TEXT, ts INT, state TEXT);"
		"INSERT INTO joey_unit.purchases(uid, amount, item, ts, state) VALUES"
		" (1, 10, 'hat', 100, 'paid'), (1, 5, 'cap', 300, 'paid'),"
		" (1, 7, 'bag', 200, 'refunded'), (3, 1, 'pin', 50, 'paid'),"
		" (NULL, 99, 'orphan', 1, 'paid'), (NULL, 98, 'orphan2', 2, 'paid'),"
		" (3, NULL, 'pen', 60, 'paid');");
	make_app(&F.app, F.host, F.port, F.password);
	F.model = (struct cfg_model){ .id = "users", .name = "users", .type = "profile" };
	struct jerror err = JERROR_INIT;
	enum jerr rc = source_postgres.connect(&F.app, "/", &F.conn, &err);
	if (rc)
		jerror_print(stderr, &err);
	assert_int_equal(rc, JERR_OK);
	return 0;
}

static int teardown(void **s)
{
	if (!F.url)
		return 0;
	source_postgres.disconnect(F.conn);
	db_exec("DROP SCHEMA IF EXISTS joey_unit CASCADE");
	arena_release(&F.a);
	return 0;
}

#define FIXTURE_OPS source_postgres
#define FIXTURE_TYPE "postgres-import-table"
#include "fixture.h"

static void test_primary_exact_and_coercion(void **s)
{
	if (!F.url)
		skip();
	struct cfg_source *src = source(
		"users_src", "users", "id", true, PROP_INTEGER, 10,
		prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL),
		prop("age", PROP_INTEGER, "age", AGG_EXACT, NULL),
		prop("score", PROP_FLOAT, "score", AGG_EXACT, NULL),
		prop("active", PROP_BOOLEAN, "active", AGG_EXACT, NULL),
		prop("born", PROP_DATE, "born", AGG_EXACT, NULL),
		prop("site", PROP_URL, "site", AGG_EXACT, NULL),
		prop("age_s", PROP_STRING, "age", AGG_EXACT, NULL),
		prop("created", PROP_DATE, "created", AGG_EXACT, NULL),
		prop("active_s", PROP_STRING, "active", AGG_EXACT, NULL),
		prop("price", PROP_FLOAT, "price", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#1:[\"a@x.io\",30,2.25,false,\"1990-01-01T00:00:00.000Z\",\"a.io\",\"30\",null,\"false\",1]\n"
			 "#2:[null,25,null,true,null,null,\"25\",\"1970-01-01T00:00:01.000Z\",\"true\",null]!3\n"
			 "#3:[\"c@x.io\",40,1.5,true,\"2001-02-03T00:00:00.000Z\",\"http://c.io\",\"40\",\"2001-02-03T02:05:06.000Z\",\"true\",3.5]\n");

	struct strbuf sql = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_postgres.describe(F.conn, src, &sql, &err), JERR_OK);
	assert_non_null(strstr(sql.buf, "FROM \"users\" AS \"joey$src\" ORDER BY \"id\"\n"));
	strbuf_release(&sql);
	assert_int_equal(source_postgres.check(F.conn, src, &err), JERR_OK);
}

static void test_secondary_aggregations(void **s)
{
	if (!F.url)
		skip();
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
	EXPECT_ROWS(src, "#1:[3,22,7.33333333333333,5,10,\"cap\",\"hat\",\"hat\"]\n"
			 "#3:[1,1,1,1,1,\"pen\",\"pin\",\"pin\"]\n");
}

static void test_filters_each_op(void **s)
{
	if (!F.url)
		skip();
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
	EXPECT_ROWS(src, "#1:[2,1,1,2,1,2,3,0,1,3,0]\n"
			 "#3:[1,0,0,0,1,1,0,1,1,1,0]\n");

	/* substring is an exact substring: % and _ are not wildcards */
	struct cfg_property *q = prop("pct", PROP_INTEGER, "amount", AGG_COUNT, NULL);
	filter(q, "item", FOP_SUBSTRING, "%");
	EXPECT_ROWS(source("purchases", "purchases", "uid", false, PROP_INTEGER, 1, q),
		    "#1:[0]\n#3:[0]\n");
}

static void test_filters_on_primary_and_average(void **s)
{
	if (!F.url)
		skip();
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
	struct cfg_property *act = prop("is_active", PROP_BOOLEAN, "active", AGG_EXACT, NULL);
	filter(act, "active", FOP_EQ, "true");
	src = source("purchases", "purchases", "uid", false, PROP_INTEGER, 3, avg, sum, last);
	EXPECT_ROWS(src, "#1:[7,7,\"cap\"]\n#3:[null,0,\"pen\"]\n");
	/* a boolean column picked in a grouped query (no MAX(boolean) in PostgreSQL) */
	src = source("users2", "users", "id", false, PROP_INTEGER, 1, act);
	EXPECT_ROWS(src, "#1:[null]\n#2:[true]\n#3:[true]\n");
}

static void test_arrays(void **s)
{
	if (!F.url)
		skip();
	struct cfg_property *items = prop("items", PROP_STRING, "item", AGG_EXACT, "ts");
	items->is_array = true;
	struct cfg_property *amounts = prop("amounts", PROP_FLOAT, "amount", AGG_EXACT, NULL);
	amounts->is_array = true;
	filter(amounts, "state", FOP_EQ, "paid");
	struct cfg_property *recent = prop("recent", PROP_STRING, "item", AGG_MOST_RECENT, "ts");
	recent->is_array = true;
	struct cfg_property *none = prop("none", PROP_STRING, "item", AGG_EXACT, "ts");
	none->is_array = true;
	filter(none, "state", FOP_EQ, "lost");
	struct cfg_source *src = source("purchases", "purchases", "uid", false, PROP_INTEGER, 4,
					items, amounts, recent, none);
	EXPECT_ROWS(src, "#1:[[\"hat\",\"bag\",\"cap\"],[10,5],[\"cap\",\"bag\",\"hat\"],[]]\n"
			 "#3:[[\"pin\",\"pen\"],[1],[\"pen\",\"pin\"],[]]\n");
}

static void test_text_vs_integer_key_order(void **s)
{
	if (!F.url)
		skip();
	db_exec("CREATE TABLE k(id TEXT, v TEXT); INSERT INTO k VALUES ('9', 'nine'), ('10', 'ten'), "
		"('2', 'two'), ('B', 'upper'), ('a', 'lower'), ('é', 'accent');"
		"CREATE TABLE ki(id BIGINT, v TEXT); INSERT INTO ki VALUES (9, 'nine'), (10, 'ten'), "
		"(-2, 'minus');");
	struct cfg_source *src =
		source("k_text", "k", "id", true, PROP_STRING, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	/* bytewise: digits < upper case < lower case < UTF-8 multibyte */
	EXPECT_ROWS(src, "10:[\"ten\"]\n2:[\"two\"]\n9:[\"nine\"]\nB:[\"upper\"]\na:[\"lower\"]\n"
			 "\xc3\xa9:[\"accent\"]\n");
	src = source("k_int", "ki", "id", true, PROP_INTEGER, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#-2:[\"minus\"]\n#9:[\"nine\"]\n#10:[\"ten\"]\n");
	src = source("k_text2", "k", "id", false, PROP_STRING, 1,
		     prop("n", PROP_INTEGER, "v", AGG_COUNT, NULL));
	EXPECT_ROWS(src, "10:[1]\n2:[1]\n9:[1]\nB:[1]\na:[1]\n\xc3\xa9:[1]\n");
	/* an integer key over a text column of digits: ordered numerically */
	db_exec("DELETE FROM k WHERE id !~ '^[0-9]+$'");
	src = source("k_int2", "k", "id", true, PROP_INTEGER, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#2:[\"two\"]\n#9:[\"nine\"]\n#10:[\"ten\"]\n");
}

/* Keys of src as read (read: since a mark, a key range...), "k k ...". */
static void read_keys(const struct cfg_source *src, const struct source_read *read, const char *want)
{
	struct source_cursor *cur;
	struct source_row *row;
	struct strbuf out = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_postgres.open_cursor(F.conn, src, read, &cur, &err), JERR_OK);
	while (source_cursor_next(cur, &row, &err) == JERR_OK && row)
		strbuf_addf(&out, "%s%.*s", out.len ? " " : "", (int)row->key.text.len, row->key.text.ptr);
	assert_int_equal(err.code, JERR_OK);
	source_cursor_close(cur);
	assert_string_equal(out.buf, want);
	strbuf_release(&out);
	jerror_release(&err);
}

/* Keys of src read since a mark of column col, "k k ...". */
static void since_keys(const struct cfg_source *src, const char *col, const char *mark, const char *want)
{
	struct source_read read = { .since_column = col, .since_value = mark };
	read_keys(src, &read, want);
}

/*
 * A number mark on a text column compares as numbers (source_since_compare): bound
 * untyped, PostgreSQL compared it as text and '1000' >= '999' was false, so rows past a
 * mark of 999 were never read. Text that is not a number is read again, never skipped;
 * NULL is not read; a number column and a text mark keep col >= mark.
 */
static void test_incremental_number_mark_on_text(void **s)
{
	if (!F.url)
		skip();
	db_exec("CREATE TABLE inc(id INT, ver VARCHAR(20), chr CHAR(6), n INT, t TEXT); INSERT INTO inc VALUES "
		"(1, '998', '998', 998, 'a'), (2, '999', '999', 999, 'b'), (3, '1000', '1000', 1000, 'c'), "
		"(4, 'abc', 'abc', NULL, NULL), (5, NULL, NULL, NULL, NULL), (6, '1.5e3', '1.5e3', 1500, 'd'), "
		"(7, '9e999', '9e999', NULL, NULL), (8, '-5', '-5', -5, NULL)");
	struct cfg_source *src = source("inc", "inc", "id", true, PROP_INTEGER, 1,
					prop("t", PROP_STRING, "t", AGG_EXACT, NULL));
	since_keys(src, "ver", "999", "2 3 4 6 7");
	since_keys(src, "chr", "999", "2 3 4 6 7");
	since_keys(src, "ver", "999.5", "3 4 6 7");
	since_keys(src, "n", "999", "2 3 6");
	since_keys(src, "t", "b", "2 3 6");
	/* a number column keeps the comparison an index serves */
	struct source_read read = { .since_column = "n", .since_value = "999" };
	struct sql_plan p;
	struct jerror err = JERROR_INIT;
	sql_plan_init(&p);
	assert_int_equal(sql_plan_build(&source_postgres_dialect, F.conn, src, &read, &p, &err), JERR_OK);
	assert_non_null(strstr(p.sql.buf, "\"n\" >= $1"));
	sql_plan_release(&p);
	jerror_release(&err);
}

/* Keys of src read with a key range [lo, hi) (a worker's partition), "k k ...". */
static void range_keys(const struct cfg_source *src, const struct rkey *lo, const struct rkey *hi,
		       const char *want)
{
	struct key_range r = { lo, hi };
	struct source_read read = { .range = &r };
	read_keys(src, &read, want);
}

/* A key range compares in key order: integers numerically, text bytewise (COLLATE "C"). */
static void test_key_range(void **s)
{
	if (!F.url)
		skip();
	db_exec("CREATE TABLE k(id TEXT, v TEXT); INSERT INTO k VALUES ('9', 'nine'), ('10', 'ten'), "
		"('2', 'two'), ('B', 'upper'), ('a', 'lower'), ('\xc3\xa9', 'accent');"
		"CREATE TABLE ki(id BIGINT PRIMARY KEY, v TEXT); INSERT INTO ki VALUES (9, 'nine'), (10, 'ten'), "
		"(-2, 'minus'), (3, 'three');"
		"CREATE TABLE kg(uid BIGINT, amount INT); INSERT INTO kg VALUES (1, 1), (1, 2), (5, 3), (7, 4);");
	struct rkey t2 = { false, 0, SLICE_LIT("2") }, ta = { false, 0, SLICE_LIT("a") };
	struct rkey i3 = { true, 3, SLICE_LIT("3") }, i10 = { true, 10, SLICE_LIT("10") }, i5 = { true, 5, SLICE_LIT("5") };
	struct cfg_source *src =
		source("k_text", "k", "id", true, PROP_STRING, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	range_keys(src, &t2, &ta, "2 9 B");
	range_keys(src, &ta, NULL, "a \xc3\xa9");
	range_keys(src, NULL, &t2, "10");
	src = source("k_int", "ki", "id", true, PROP_INTEGER, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	range_keys(src, &i3, &i10, "3 9");
	range_keys(src, NULL, &i3, "-2");
	range_keys(src, &i10, NULL, "10");
	/* a grouped source: every row of the keys in range */
	src = source("k_sum", "kg", "uid", true, PROP_INTEGER, 1, prop("n", PROP_INTEGER, "amount", AGG_SUM, NULL));
	range_keys(src, NULL, &i5, "1");
	range_keys(src, &i5, NULL, "5 7");
}

static void test_duplicate_key_and_null_keys(void **s)
{
	if (!F.url)
		skip();
	db_exec("CREATE TABLE d(id TEXT, v TEXT); INSERT INTO d VALUES ('a', '1'), (NULL, 'n'), "
		"('b', '2'), ('b', '3');");
	struct cfg_source *src =
		source("dups", "d", "id", true, PROP_STRING, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	struct strbuf out = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	assert_int_equal(dump(src, &out, &err), JERR_SOURCE_DATA);
	assert_string_equal(err.msg.buf, "duplicate primary key \"b\" in source \"dups\"");
	assert_true(err.hint.len > 0);
	assert_true(!strcmp(out.buf, "a:[\"1\"]\nb:[\"2\"]\n") || !strcmp(out.buf, "a:[\"1\"]\nb:[\"3\"]\n"));
	strbuf_release(&out);
	jerror_release(&err);
	/* NULL keys are skipped (and counted) in grouped queries too */
	src = source("dups2", "d", "id", false, PROP_STRING, 1, prop("n", PROP_INTEGER, "v", AGG_COUNT, NULL));
	EXPECT_ROWS(src, "a:[1]\nb:[2]\n");
}

static void test_check_missing_table_and_column(void **s)
{
	if (!F.url)
		skip();
	struct jerror err = JERROR_INIT;
	struct cfg_source *src =
		source("users_src", "usrs", "id", true, PROP_INTEGER, 1, prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL));
	assert_int_equal(source_postgres.check(F.conn, src, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, "source \"users_src\": table \"usrs\" does not exist");
	assert_string_equal(err.hint.buf, "did you mean \"users\"?");
	jerror_release(&err);
	struct source_cursor *cur = NULL;
	assert_int_equal(source_postgres.open_cursor(F.conn, src, NULL, &cur, &err), JERR_CONFIG);
	assert_null(cur);
	assert_string_equal(err.hint.buf, "did you mean \"users\"?");
	jerror_release(&err);

	src = source("users_src", "users", "id", true, PROP_INTEGER, 1,
		     prop("email", PROP_EMAIL, "emial", AGG_EXACT, NULL));
	assert_int_equal(source_postgres.check(F.conn, src, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf,
			    "source \"users_src\": column \"emial\" does not exist in table \"users\"");
	assert_string_equal(err.detail.buf, "used by property \"email\" (options.column)");
	assert_string_equal(err.hint.buf, "did you mean \"email\"?");
	jerror_release(&err);
	assert_int_equal(source_postgres.open_cursor(F.conn, src, NULL, &cur, &err), JERR_CONFIG);
	assert_null(cur);
	assert_string_equal(err.hint.buf, "did you mean \"email\"?");
	jerror_release(&err);

	/* the connection is still usable after a failed query */
	EXPECT_ROWS(source("users_src", "users", "id", true, PROP_INTEGER, 0), "#1:[]\n#2:[]\n#3:[]\n");
}

static void test_permission_error_names_table(void **s)
{
	if (!F.url)
		skip();
	/* a table the app's user may not read: owned by another role */
	PGconn *pg = PQconnectdb(F.url);
	PGresult *r = PQexec(pg, "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user");
	bool can = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	PQfinish(pg);
	if (!can) {
		/* revoke from ourselves is not possible as owner; use a view over a revoked function instead */
		db_exec("CREATE TABLE secret(id INT, v TEXT); INSERT INTO secret VALUES (1, 'x');"
			"REVOKE ALL ON secret FROM PUBLIC; REVOKE SELECT ON secret FROM CURRENT_USER;");
	} else {
		db_exec("CREATE TABLE secret(id INT, v TEXT); REVOKE SELECT ON secret FROM CURRENT_USER;");
	}
	struct cfg_source *src = source("secret_src", "secret", "id", true, PROP_INTEGER, 1,
					prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	struct strbuf out = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	assert_int_equal(dump(src, &out, &err), JERR_SOURCE);
	assert_string_equal(err.msg.buf, "source \"secret_src\": query failed");
	assert_non_null(strstr(err.detail.buf, "permission denied for table secret"));
	strbuf_release(&out);
	jerror_release(&err);
}

static void test_sql_injection_is_quoted_and_bound(void **s)
{
	if (!F.url)
		skip();
	struct jerror err = JERROR_INIT;
	struct cfg_source *src = source("evil", "users\"; DROP TABLE users; --", "id", true,
					PROP_INTEGER, 1, prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL));
	assert_int_equal(source_postgres.check(F.conn, src, &err), JERR_CONFIG);
	jerror_release(&err);
	struct cfg_property *p = prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL);
	filter(p, "name", FOP_EQ, "x' OR '1'='1");
	src = source("users_src", "users", "id", true, PROP_INTEGER, 1, p);
	EXPECT_ROWS(src, "#1:[null]\n#2:[null]\n#3:[null]\n");
	struct strbuf sql = STRBUF_INIT;
	assert_int_equal(source_postgres.describe(F.conn, src, &sql, &err), JERR_OK);
	assert_non_null(strstr(sql.buf, "\"name\" = $1"));
	assert_non_null(strstr(sql.buf, "-- $1 = \"x' OR '1'='1\"\n"));
	strbuf_release(&sql);
	EXPECT_ROWS(source("users_src", "users", "id", true, PROP_INTEGER, 0), "#1:[]\n#2:[]\n#3:[]\n");
}

static void test_sample(void **s)
{
	if (!F.url)
		skip();
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

/* sample_query: a query's first rows; a write or a smuggled second statement changes nothing. */
static void test_sample_query(void **s)
{
	if (!F.url)
		skip();
	struct source_sample smp = { 0 };
	struct jerror err = JERROR_INIT;
	assert_int_equal(FIXTURE_OPS.sample_query(F.conn, "SELECT id, email AS mail FROM users ORDER BY id;", 2, &smp, &err),
			 JERR_OK);
	assert_int_equal(smp.n_columns, 2);
	assert_string_equal(smp.columns[1], "mail");
	assert_int_equal(smp.n_rows, 2);
	assert_string_equal(smp.cells[0], "1");
	source_sample_release(&smp);
	static const char *const writes[] = {
		"DELETE FROM users",
		"SELECT 1) AS a; DELETE FROM users; SELECT * FROM (SELECT 1",
		"SELECT 1 AS one) AS a; DELETE FROM users; --",
	};
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		assert_int_equal(FIXTURE_OPS.sample_query(F.conn, writes[i], 5, &smp, &err), JERR_SOURCE);
		assert_string_equal(err.msg.buf, "app \"warehouse\": the query cannot be read");
		assert_true(err.detail.len > 0);
		jerror_release(&err);
		source_sample_release(&smp);
	}
	assert_int_equal(FIXTURE_OPS.sample_query(F.conn, "SELECT COUNT(*) AS n FROM users", 5, &smp, &err), JERR_OK);
	assert_string_equal(smp.cells[0], "3");
	source_sample_release(&smp);
}

static void test_match_value(void **s)
{
	if (!F.url)
		skip();
	/* source_read.match_column: a record looked up by a unique property's value */
	struct cfg_source *src = source("users_src", "users", "id", true, PROP_INTEGER, 2,
					prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL),
					prop("name", PROP_STRING, "name", AGG_EXACT, NULL));
	struct source_read by_email = { .match_column = "email", .match_value = "c@x.io" };
	EXPECT_READ_ROWS(src, &by_email, "#3:[\"c@x.io\",\"Cy\"]\n");
	/* bytewise: another case is another value */
	struct source_read upper = { .match_column = "email", .match_value = "C@X.IO" };
	EXPECT_READ_ROWS(src, &upper, "");
	/* an integer column compared with the text of a number */
	struct source_read age = { .match_column = "age", .match_value = "30", .match_is_number = true };
	EXPECT_READ_ROWS(src, &age, "#1:[\"a@x.io\",\"Al\"]\n");
	/* SQL in the value is a value; in the column name an identifier (no such column) */
	struct source_read none = { .match_column = "email", .match_value = "x' OR '1'='1" };
	EXPECT_READ_ROWS(src, &none, "");
	struct source_read evil = { .match_column = "email\" OR 1=1 --", .match_value = "a" };
	struct source_cursor *cur = NULL;
	struct source_row *row = NULL;
	struct jerror err = JERROR_INIT;
	enum jerr rc = FIXTURE_OPS.open_cursor(F.conn, src, &evil, &cur, &err);
	if (!rc)
		rc = source_cursor_next(cur, &row, &err);
	assert_int_not_equal(rc, JERR_OK);
	source_cursor_close(cur);
	jerror_release(&err);
	EXPECT_ROWS(source("users_src", "users", "id", true, PROP_INTEGER, 0), "#1:[]\n#2:[]\n#3:[]\n");
	/* a grouped source: the matching rows only, aggregated; with the keys of a look-up */
	struct cfg_source *g = source("purchases_src", "purchases", "uid", true, PROP_INTEGER, 1,
				      prop("total", PROP_FLOAT, "amount", AGG_SUM, NULL));
	struct rkey k1 = { true, 1, SLICE_LIT("1") };
	struct source_read hat = { .match_column = "item", .match_value = "hat", .in_keys = &k1, .n_in_keys = 1 };
	EXPECT_READ_ROWS(g, &hat, "#1:[10]\n");
}

static void test_query_sources(void **s)
{
	if (!F.url)
		skip();
	struct cfg_source *src = source("big_spenders", NULL, "uid", false, PROP_INTEGER, 2,
					prop("total", PROP_FLOAT, "amount", AGG_SUM, NULL),
					prop("last", PROP_STRING, "item", AGG_MOST_RECENT, "ts"));
	src->is_query = true;
	src->type = "postgres-import-query";
	src->query = "SELECT uid, amount, item, ts FROM purchases WHERE amount > 1;";
	EXPECT_ROWS(src, "#1:[22,\"cap\"]\n");
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_postgres.check(F.conn, src, &err), JERR_OK);

	struct cfg_property *name = prop("name", PROP_STRING, NULL, AGG_EXACT, NULL);
	name->query = "SELECT name FROM users WHERE id = {{{ user_id }}}";
	struct cfg_property *spent = prop("spent", PROP_FLOAT, NULL, AGG_EXACT, NULL);
	spent->query = "SELECT SUM(amount) FROM purchases WHERE CAST(uid AS TEXT) = '{{ user_id }}';";
	src = source("q", NULL, "id", true, PROP_INTEGER, 2, name, spent);
	src->is_query = true;
	src->query = "SELECT id FROM users";
	EXPECT_ROWS(src, "#1:[\"Al\",22]\n#2:[\"Bo\",null]\n#3:[\"Cy\",1]\n");

	src = source("q4", NULL, "id", true, PROP_INTEGER, 0);
	src->is_query = true;
	src->query = "SELEC id FROM users";
	assert_int_equal(source_postgres.check(F.conn, src, &err), JERR_SOURCE);
	assert_string_equal(err.msg.buf, "source \"q4\": the source query is invalid");
	assert_non_null(strstr(err.detail.buf, "syntax error"));
	jerror_release(&err);
}

static void test_non_utf8_and_huge_text(void **s)
{
	if (!F.url)
		skip();
	/* 4 MB value, streamed in one row */
	db_exec("CREATE TABLE big(id INT, v TEXT); INSERT INTO big VALUES (1, repeat('x', 4194304)), (2, 'small');");
	struct cfg_source *src = source("big", "big", "id", true, PROP_INTEGER, 1,
					prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	struct source_cursor *cur;
	struct source_row *row;
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_postgres.open_cursor(F.conn, src, NULL, &cur, &err), JERR_OK);
	assert_int_equal(source_cursor_next(cur, &row, &err), JERR_OK);
	assert_non_null(row);
	assert_int_equal(row->values[0].u.s.len, 4194304);
	assert_int_equal(source_cursor_next(cur, &row, &err), JERR_OK);
	assert_int_equal(row->values[0].u.s.len, 5);
	source_cursor_close(cur);

	/* a LATIN1 database: the server converts to UTF-8 for us */
	PGconn *pg = PQconnectdb(F.url);
	PGresult *r = PQexec(pg, "SELECT 1 FROM pg_database WHERE datname = 'joey_latin1'");
	bool have = PQntuples(r) == 1;
	PQclear(r);
	PQfinish(pg);
	if (!have)
		return;
	struct cfg_app app;
	make_app(&app, F.host, F.port, F.password);
	for (size_t i = 0; i < app.options.n; i++)
		if (!strcmp(app.options.items[i].key, "database"))
			app.options.items[i].str = "joey_latin1";
		else if (!strcmp(app.options.items[i].key, "schema"))
			app.options.items[i].str = "public";
	char url[600];
	snprintf(url, sizeof(url), "postgresql://%s:%s@%s:%s/joey_latin1", F.user, F.password, F.host, F.port);
	pg = PQconnectdb(url);
	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	PQsetClientEncoding(pg, "LATIN1");
	r = PQexec(pg, "DROP TABLE IF EXISTS l1; CREATE TABLE l1(id INT, v TEXT); "
		       "INSERT INTO l1 VALUES (1, E'caf\\xe9')");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	void *conn = NULL;
	assert_int_equal(source_postgres.connect(&app, "/", &conn, &err), JERR_OK);
	src = source("l1", "l1", "id", true, PROP_INTEGER, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	src->app = &app;
	assert_int_equal(source_postgres.open_cursor(conn, src, NULL, &cur, &err), JERR_OK);
	assert_int_equal(source_cursor_next(cur, &row, &err), JERR_OK);
	assert_int_equal(row->values[0].u.s.len, 5);
	assert_memory_equal(row->values[0].u.s.ptr, "caf\xc3\xa9", 5);
	source_cursor_close(cur);
	source_postgres.disconnect(conn);
	r = PQexec(pg, "DROP TABLE l1");
	PQclear(r);
	PQfinish(pg);
}

static void test_connect_errors(void **s)
{
	if (!F.url)
		skip();
	struct jerror err = JERROR_INIT;
	void *conn = NULL;
	struct cfg_app app;

	/* wrong password: the server's message, never the password, no retries */
	make_app(&app, F.host, F.port, "not-the-Password-42");
	assert_int_equal(source_postgres.connect(&app, "/", &conn, &err), JERR_SOURCE);
	assert_null(conn);
	char want[400];
	snprintf(want, sizeof(want), "app \"warehouse\": cannot connect to PostgreSQL at %s:%s, database \"%s\"",
		 F.host, F.port, F.database);
	assert_string_equal(err.msg.buf, want);
	assert_non_null(strstr(err.detail.buf, "password authentication failed"));
	assert_null(strstr(err.msg.buf, "not-the-Password-42"));
	assert_null(strstr(err.detail.buf, "not-the-Password-42"));
	assert_null(strstr(err.hint.buf, "not-the-Password-42"));
	assert_null(strstr(err.detail.buf, F.password));
	jerror_release(&err);

	/* nothing listening: retried with backoff, then host:port and the message */
	make_app(&app, "127.0.0.1", "1", F.password);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(source_postgres.connect(&app, "/", &conn, &err), JERR_SOURCE);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_string_equal(err.msg.buf, "app \"warehouse\": cannot connect to PostgreSQL at 127.0.0.1:1, "
					 "database \"joey\"");
	assert_non_null(strstr(err.detail.buf, "Connection refused"));
	assert_non_null(strstr(err.hint.buf, "gave up after 3 tries"));
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 700);
	jerror_release(&err);

	/* a port that is not a number */
	make_app(&app, F.host, "54x", F.password);
	assert_int_equal(source_postgres.connect(&app, "/", &conn, &err), JERR_CONFIG);
	jerror_release(&err);

	assert_ptr_equal(source_ops_for_app("postgres"), &source_postgres);
	assert_ptr_equal(source_ops_for_source_type("postgres-import-query"), &source_postgres);
}

static void test_many_rows_stream_and_early_close(void **s)
{
	if (!F.url)
		skip();
	db_exec("CREATE TABLE many(id INT PRIMARY KEY, a TEXT, b REAL);"
		"INSERT INTO many SELECT x, 'v' || x, x * 0.5 FROM generate_series(1, 50000) x;");
	struct cfg_source *src = source("many", "many", "id", true, PROP_INTEGER, 2,
					prop("a", PROP_STRING, "a", AGG_EXACT, NULL),
					prop("b", PROP_FLOAT, "b", AGG_EXACT, NULL));
	struct source_cursor *cur;
	struct source_row *row;
	struct jerror err = JERROR_INIT;
	int64_t n = 0;
	assert_int_equal(source_postgres.open_cursor(F.conn, src, NULL, &cur, &err), JERR_OK);
	while (source_cursor_next(cur, &row, &err) == JERR_OK && row) {
		n++;
		assert_int_equal(row->key.i, n);
	}
	assert_int_equal(n, 50000);
	source_cursor_close(cur);
	/* closing in the middle cancels the rest; the connection stays usable */
	assert_int_equal(source_postgres.open_cursor(F.conn, src, NULL, &cur, &err), JERR_OK);
	assert_int_equal(source_cursor_next(cur, &row, &err), JERR_OK);
	source_cursor_close(cur);
	EXPECT_ROWS(source("users_src", "users", "id", true, PROP_INTEGER, 0), "#1:[]\n#2:[]\n#3:[]\n");
}

/*
 * COPY rows split at their tabs (postgres_copy.c: 16 bytes at a time for rows without a
 * backslash, a byte loop for the rest): fields of every length from 0 to past 40, so
 * tabs fall at every offset of a 16-byte block, rows with NULLs and escapes (tab,
 * newline, backslash inside a value), against the same rows read by libpq without
 * COPY.
 */
static void test_copy_fields_every_length(void **s)
{
	if (!F.url)
		skip();
	db_exec("CREATE TABLE lens(id INT PRIMARY KEY, a TEXT, b TEXT, c TEXT, n BIGINT);"
		"INSERT INTO lens SELECT x, repeat('a', x % 41),"
		" CASE WHEN x % 5 = 0 THEN NULL WHEN x % 7 = 0 THEN repeat('t', x % 9) || chr(9) || 'n' || chr(10)"
		" || 'b' || chr(92) || 'e' WHEN x % 11 = 0 THEN '' ELSE repeat('b', (x * 7) % 23) END,"
		" repeat('c', (x * 3) % 19) || chr(233), x * 1000003 FROM generate_series(1, 2000) x;");
	struct cfg_source *src = source("lens", "lens", "id", true, PROP_INTEGER, 4,
					prop("a", PROP_STRING, "a", AGG_EXACT, NULL),
					prop("b", PROP_STRING, "b", AGG_EXACT, NULL),
					prop("c", PROP_STRING, "c", AGG_EXACT, NULL),
					prop("n", PROP_INTEGER, "n", AGG_EXACT, NULL));
	PGconn *pg = PQconnectdb(F.url);
	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	PGresult *want = PQexec(pg, "SELECT id, a, b, c, n FROM joey_unit.lens ORDER BY id");
	assert_int_equal(PQresultStatus(want), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(want), 2000);
	struct source_cursor *cur;
	struct source_row *row;
	struct jerror err = JERROR_INIT;
	int n = 0;
	assert_int_equal(source_postgres.open_cursor(F.conn, src, NULL, &cur, &err), JERR_OK);
	while (source_cursor_next(cur, &row, &err) == JERR_OK && row) {
		assert_true(n < 2000);
		assert_int_equal(row->key.i, atoi(PQgetvalue(want, n, 0)));
		for (int c = 0; c < 3; c++) {
			const struct value *v = &row->values[c];
			if (PQgetisnull(want, n, c + 1) || !PQgetlength(want, n, c + 1)) {
				assert_int_equal(v->kind, VAL_NULL); /* NULL, and empty text, read as NULL */
				continue;
			}
			assert_int_equal(v->kind, VAL_STRING);
			assert_int_equal(v->u.s.len, PQgetlength(want, n, c + 1));
			assert_memory_equal(v->u.s.ptr, PQgetvalue(want, n, c + 1), v->u.s.len);
		}
		assert_int_equal(row->values[3].kind, VAL_INT);
		assert_int_equal(row->values[3].u.i, strtoll(PQgetvalue(want, n, 4), NULL, 10));
		n++;
	}
	assert_int_equal(n, 2000);
	source_cursor_close(cur);
	PQclear(want);
	PQfinish(pg);
	jerror_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_primary_exact_and_coercion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental_number_mark_on_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secondary_aggregations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters_each_op, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters_on_primary_and_average, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arrays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_vs_integer_key_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_key_and_null_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_missing_table_and_column, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permission_error_names_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sql_injection_is_quoted_and_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_utf8_and_huge_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_rows_stream_and_early_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_fields_every_length, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
