/* clickhouse.c: tests for src/source/chwire.c (always) and src/source/clickhouse.c against a real server ($JOEY_CLICKHOUSE_URL). */
#include "support/testutil.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/strbuf.h"
#include "source/chwire.h"
#include "source/source.h"

/*
 * JOEY_CLICKHOUSE_URL=http://user:password@host:port/database names a server where the
 * user may create databases (scripts/test-servers.sh start: also the users joey_ro and
 * joey_limited). The server tests work in a fresh database joey_unit_ch, dropped at
 * teardown; without the variable they skip (with CI=true they fail).
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

/* ---- chwire: no server ---- */

static void expect_url(const char *host, const char *port, const char *want)
{
	struct strbuf url = STRBUF_INIT, why = STRBUF_INIT;
	bool ok = chw_base_url(host, port, &url, &why);
	if (!want) {
		if (ok)
			fail_msg("host %s port %s: expected an error, got %s", host ? host : "(none)", port ? port : "(none)", url.buf);
		assert_true(why.len > 0);
	} else {
		if (!ok)
			fail_msg("host %s port %s: %s", host ? host : "(none)", port ? port : "(none)", why.buf);
		assert_string_equal(url.buf, want);
	}
	strbuf_release(&url);
	strbuf_release(&why);
}

static void test_url_rule(void **s)
{
	(void)s;
	/* warehouses.md 5.1: Grouparoo's rule */
	expect_url(NULL, NULL, "http://localhost:8123/");
	expect_url("", NULL, "http://localhost:8123/");
	expect_url(NULL, "9000", "http://localhost:9000/");
	expect_url("localhost", NULL, "http://localhost:8123/");
	expect_url("LocalHost", "18123", "http://LocalHost:18123/");
	expect_url("localhost:9999", NULL, "http://localhost:9999/");
	expect_url("127.0.0.1", NULL, "https://127.0.0.1:443/");
	expect_url("ch.example.com", "8443", "https://ch.example.com:8443/");
	expect_url("http://10.0.0.5", NULL, "http://10.0.0.5:8123/");
	expect_url("HTTP://10.0.0.5:8124", NULL, "http://10.0.0.5:8124/");
	expect_url("http://10.0.0.5:8124", "8125", "http://10.0.0.5:8125/");
	expect_url("https://x.io:9440", NULL, "https://x.io:443/"); /* the library dropped it */
	expect_url("https://x.io", "9440", "https://x.io:9440/");
	expect_url("https://x.io/", NULL, "https://x.io:443/");
	expect_url("http://[::1]:8123", NULL, "http://[::1]:8123/");
	/* refused with a reason */
	expect_url("httpd.internal", NULL, NULL);
	expect_url("http://user:pw@h", NULL, NULL);
	{
		/* a URL pasted with its credentials: the reason never quotes them */
		struct strbuf url = STRBUF_INIT, why = STRBUF_INIT;
		assert_false(chw_base_url("http://joey:S3cret@ch.example.com:8123", NULL, &url, &why));
		if (strstr(why.buf, "S3cret"))
			fail_msg("the password is in the message: %s", why.buf);
		assert_non_null(strstr(why.buf, "ch.example.com:8123"));
		strbuf_release(&url);
		strbuf_release(&why);
	}
	expect_url("http://h/path", NULL, NULL);
	expect_url("http://h?x=1", NULL, NULL);
	expect_url("h", "0", NULL);
	expect_url("h", "70000", NULL);
	expect_url("h", "80a", NULL);
	expect_url("http://h:x", NULL, NULL);
	expect_url("a host", NULL, NULL);
	expect_url("http://", NULL, NULL);
}

static void test_string_literal(void **s)
{
	(void)s;
	struct strbuf sb = STRBUF_INIT;
	const char in[] = "a'b\\c\nd\te\001f\0g";
	chw_add_string_literal(&sb, in, sizeof(in) - 1);
	assert_string_equal(sb.buf, "'a\\'b\\\\c\\nd\\te\\x01f\\0g'");
	strbuf_release(&sb);
}

static void test_split_tsv(void **s)
{
	(void)s;
	struct chw_field f[4];
	char l1[] = "1\ta\\tb\\\\c\\'d\t\\N\tx\\ny\n";
	assert_true(chw_split_tsv(l1, strlen(l1) - 1, f, 4));
	assert_string_equal(f[0].s, "1");
	assert_int_equal(f[1].len, 7);
	assert_memory_equal(f[1].s, "a\tb\\c'd", 7);
	assert_true(f[2].null);
	assert_string_equal(f[3].s, "x\ny");
	char l2[] = "1\t2\t3\n";
	assert_false(chw_split_tsv(l2, strlen(l2) - 1, f, 4)); /* too few */
	char l3[] = "1\t2\t3\t4\t5\n";
	assert_false(chw_split_tsv(l3, strlen(l3) - 1, f, 4)); /* too many */
	char l4[] = "1\t2\t3\tend\\\n";
	assert_false(chw_split_tsv(l4, strlen(l4) - 1, f, 4)); /* a lone backslash */
	char l5[] = "\\N\t\t\\x41\\0\t\\Nx\n";
	assert_true(chw_split_tsv(l5, strlen(l5) - 1, f, 4));
	assert_true(f[0].null);
	assert_false(f[1].null);
	assert_int_equal(f[1].len, 0);
	assert_int_equal(f[2].len, 2);
	assert_memory_equal(f[2].s, "A\0", 2);
	assert_false(f[3].null); /* \Nx is not NULL */
	assert_string_equal(f[3].s, "Nx");
}

static void test_exception_text(void **s)
{
	(void)s;
	struct strbuf msg = STRBUF_INIT;
	int code = 0;
	const char *old = "Code: 60, e.displayText() = DB::Exception: Table joey.nope doesn't exist., "
			  "e.what() = DB::Exception\n";
	assert_true(chw_exception(old, strlen(old), &code, &msg));
	assert_int_equal(code, 60);
	assert_string_equal(msg.buf, "Table joey.nope doesn't exist.");
	strbuf_reset(&msg);
	const char *cur = "Code: 60. DB::Exception: Table default.nope does not exist. (UNKNOWN_TABLE) "
			  "(version 23.8.1.1)\n";
	assert_true(chw_exception(cur, strlen(cur), &code, &msg));
	assert_int_equal(code, 60);
	assert_string_equal(msg.buf, "Table default.nope does not exist.");
	strbuf_reset(&msg);
	const char *mid = "Code: 396. DB::Exception: Limit for result exceeded, max rows: 5.00 thousand: "
			  "While executing Limits. (TOO_MANY_ROWS_OR_BYTES) (version 25.3.2.39 (official build))";
	assert_true(chw_exception(mid, strlen(mid), &code, &msg));
	assert_int_equal(code, 396);
	assert_string_equal(msg.buf,
			    "Limit for result exceeded, max rows: 5.00 thousand: While executing Limits.");
	assert_false(chw_exception("Code: x", 7, &code, NULL));
	assert_false(chw_exception("Codes: 1, x", 11, &code, NULL));
	assert_false(chw_exception("Code: 12 x", 10, &code, NULL));
	assert_false(chw_exception("1\tCode: 5, x", 12, &code, NULL));
	strbuf_release(&msg);
}

static enum chw_type ty(const char *t, bool *nullable, const char **inner)
{
	size_t il;
	return chw_type_parse(t, strlen(t), nullable, inner, &il);
}

static void test_type_names(void **s)
{
	(void)s;
	bool n;
	const char *in;
	assert_int_equal(ty("Int64", &n, &in), CHW_INT);
	assert_false(n);
	assert_int_equal(ty("Nullable(UInt8)", &n, &in), CHW_INT);
	assert_true(n);
	assert_int_equal(ty("UInt256", &n, &in), CHW_INT);
	assert_int_equal(ty("LowCardinality(Nullable(String))", &n, &in), CHW_STRING);
	assert_true(n);
	assert_int_equal(ty("FixedString(16)", &n, &in), CHW_STRING);
	assert_int_equal(ty("Float32", &n, &in), CHW_FLOAT);
	assert_int_equal(ty("Decimal(10, 2)", &n, &in), CHW_DECIMAL);
	assert_int_equal(ty("Decimal64(3)", &n, &in), CHW_DECIMAL);
	assert_int_equal(ty("Date", &n, &in), CHW_DATE);
	assert_int_equal(ty("Date32", &n, &in), CHW_DATE);
	assert_int_equal(ty("DateTime", &n, &in), CHW_DATETIME);
	assert_int_equal(ty("DateTime('Europe/Berlin')", &n, &in), CHW_DATETIME);
	assert_int_equal(ty("Nullable(DateTime64(3, 'UTC'))", &n, &in), CHW_DATETIME);
	assert_true(n);
	assert_int_equal(ty("Bool", &n, &in), CHW_BOOL);
	assert_int_equal(ty("UUID", &n, &in), CHW_UUID);
	assert_int_equal(ty("Enum8('a' = 1, 'b' = 2)", &n, &in), CHW_ENUM);
	assert_int_equal(ty("Array(Nullable(String))", &n, &in), CHW_ARRAY);
	assert_false(n);
	assert_int_equal(ty("Map(String, UInt64)", &n, &in), CHW_OTHER);
	assert_int_equal(ty("Tuple(UInt8, String)", &n, &in), CHW_OTHER);
	assert_int_equal(ty("IntervalDay", &n, &in), CHW_OTHER);
	assert_int_equal(ty("Int", &n, &in), CHW_OTHER);
}

static void test_array_text(void **s)
{
	(void)s;
	struct arena a;
	struct chw_item *it;
	size_t n;
	arena_init(&a);
	assert_true(chw_array_items("['a','b\\'c','']", 15, &a, &it, &n));
	assert_int_equal(n, 3);
	assert_string_equal(it[0].s, "a");
	assert_string_equal(it[1].s, "b'c");
	assert_int_equal(it[2].len, 0);
	const char *nums = "[1,-2.5,NULL,3]";
	assert_true(chw_array_items(nums, strlen(nums), &a, &it, &n));
	assert_int_equal(n, 4);
	assert_string_equal(it[1].s, "-2.5");
	assert_true(it[2].null);
	assert_true(chw_array_items("[]", 2, &a, &it, &n));
	assert_int_equal(n, 0);
	const char *nested = "[['x',']'],['y']]";
	assert_true(chw_array_items(nested, strlen(nested), &a, &it, &n));
	assert_int_equal(n, 2);
	assert_string_equal(it[0].s, "['x',']']");
	const char *tup = "[(1,'a'),(2,'b')]";
	assert_true(chw_array_items(tup, strlen(tup), &a, &it, &n));
	assert_int_equal(n, 2);
	assert_string_equal(it[1].s, "(2,'b')");
	/* more than the first allocation */
	const char *many = "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]";
	assert_true(chw_array_items(many, strlen(many), &a, &it, &n));
	assert_int_equal(n, 17);
	assert_string_equal(it[16].s, "17");
	assert_false(chw_array_items("['a'", 4, &a, &it, &n));
	assert_false(chw_array_items("[1,]", 4, &a, &it, &n));
	assert_false(chw_array_items("['a','b]", 8, &a, &it, &n));
	assert_false(chw_array_items("1,2", 3, &a, &it, &n));
	assert_false(chw_array_items("[1,,2]", 6, &a, &it, &n));
	arena_release(&a);
}

/* ---- a real server ---- */

static bool parse_url(const char *url)
{
	const char *p = strstr(url, "://");
	return p && sscanf(p + 3, "%127[^:]:%127[^@]@%127[^:]:%15[^/]/%127s", F.user, F.password, F.host, F.port,
			   F.database) == 5;
}

static size_t sink(char *d, size_t sz, size_t n, void *ud)
{
	strbuf_add(ud, d, sz * n);
	return sz * n;
}

static void ch_exec(const char *db, const char *sql)
{
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT, h1 = STRBUF_INIT, h2 = STRBUF_INIT;
	struct curl_slist *hs = NULL;
	long status = 0;
	CURL *e = curl_easy_init();
	strbuf_addf(&url, "http://%s:%s/?database=%s", F.host, F.port, db);
	strbuf_addf(&h1, "X-ClickHouse-User: %s", F.user);
	strbuf_addf(&h2, "X-ClickHouse-Key: %s", F.password);
	hs = curl_slist_append(hs, h1.buf);
	hs = curl_slist_append(hs, h2.buf);
	curl_easy_setopt(e, CURLOPT_URL, url.buf);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, sql);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
	CURLcode rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK || status != 200)
		fail_msg("%s: HTTP %ld %s", sql, status, body.buf);
	curl_slist_free_all(hs);
	curl_easy_cleanup(e);
	strbuf_release(&url);
	strbuf_release(&body);
	strbuf_release(&h1);
	strbuf_release(&h2);
}

static struct cfg_option *opt(struct cfg_option *o, const char *key, enum opt_kind kind, const char *str)
{
	o->key = key;
	o->kind = kind;
	o->str = str;
	return o + 1;
}

static void make_app(struct cfg_app *app, const char *host, const char *port, const char *database,
		     const char *user, const char *password, const char *timeout)
{
	struct cfg_option *items = arena_zalloc(&F.a, 8 * sizeof(*items)), *o = items;
	o = opt(o, "host", OPT_STRING, host);
	o = opt(o, "port", OPT_NUMBER, port);
	o = opt(o, "database", OPT_STRING, database);
	o = opt(o, "user", OPT_STRING, user);
	o = opt(o, "password", OPT_STRING, password);
	if (timeout) {
		o->num = atof(timeout);
		o = opt(o, "statementTimeout", OPT_NUMBER, timeout);
	}
	*app = (struct cfg_app){ .id = "ch", .name = "ch", .type = "clickhouse" };
	app->options = (struct cfg_options){ items, (size_t)(o - items) };
}

static const char *http_host(void)
{
	return arena_printf(&F.a, "http://%s", F.host);
}

static int setup(void **s)
{
	(void)s;
	memset(&F, 0, sizeof(F));
	F.url = getenv("JOEY_CLICKHOUSE_URL");
	if (!F.url || !*F.url || !parse_url(F.url)) {
		F.url = NULL; /* each server test skips */
		return 0;
	}
	arena_init(&F.a);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ch_exec("default", "DROP DATABASE IF EXISTS joey_unit_ch");
	ch_exec("default", "CREATE DATABASE joey_unit_ch");
	ch_exec("joey_unit_ch", "CREATE TABLE users (id Int64, email Nullable(String), name String, age Nullable(Int32), "
				"score Nullable(Float64), active Nullable(UInt8), born Nullable(Date), "
				"created Nullable(DateTime), tags Array(String), big Int64, price Decimal(10, 2)) "
				"ENGINE = MergeTree ORDER BY id");
	ch_exec("joey_unit_ch", "INSERT INTO users VALUES "
				"(3, 'c@x.io', 'Cy\\'s', 40, 1.5, 1, '2001-02-03', '2001-02-03 04:05:06', ['b','a'], 9007199254740993, 3.50),"
				"(1, 'a@x.io', 'Al\\tTab', 30, 2.25, 0, '1990-01-01', NULL, [], -5, 1),"
				"(2, 'bad-email', 'Bo', 25, NULL, NULL, NULL, '1970-01-01 00:00:01', ['x'], 0, 0)");
	ch_exec("joey_unit_ch", "CREATE TABLE purchases (uid Nullable(Int64), amount Nullable(Float64), item String, "
				"ts DateTime, state String) ENGINE = MergeTree ORDER BY tuple()");
	ch_exec("joey_unit_ch", "INSERT INTO purchases VALUES (1, 10, 'hat', '2020-01-01 00:01:40', 'paid'),"
				"(1, 5, 'cap', '2020-01-01 00:05:00', 'paid'), (1, 7, 'bag', '2020-01-01 00:03:20', 'refunded'),"
				"(3, 1, 'pin', '2020-01-01 00:00:50', 'paid'), (NULL, 99, 'orphan', '2020-01-01 00:00:01', 'paid'),"
				"(3, NULL, 'pen', '2020-01-01 00:01:00', 'paid')");
	make_app(&F.app, http_host(), F.port, "joey_unit_ch", F.user, F.password, NULL);
	F.model = (struct cfg_model){ .id = "users", .name = "users", .type = "profile" };
	struct jerror err = JERROR_INIT;
	enum jerr rc = source_clickhouse.connect(&F.app, "/", &F.conn, &err);
	if (rc)
		jerror_print(stderr, &err);
	assert_int_equal(rc, JERR_OK);
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	if (!F.url)
		return 0;
	source_clickhouse.disconnect(F.conn);
	ch_exec("default", "DROP DATABASE IF EXISTS joey_unit_ch");
	arena_release(&F.a);
	return 0;
}

#define FIXTURE_OPS source_clickhouse
#define FIXTURE_TYPE "clickhouse-import-table"
#include "fixture.h"

#define NEED_SERVER()                                                                                 \
	do {                                                                                          \
		if (!F.url) {                                                                         \
			if (getenv("CI") && !strcmp(getenv("CI"), "true"))                            \
				fail_msg("JOEY_CLICKHOUSE_URL is not set and CI=true");               \
			skip();                                                                       \
		}                                                                                     \
	} while (0)

static void test_values_and_types(void **s)
{
	(void)s;
	NEED_SERVER();
	struct cfg_source *src = source("users_src", "users", "id", true, PROP_INTEGER, 10,
					prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL),
					prop("name", PROP_STRING, "name", AGG_EXACT, NULL),
					prop("age", PROP_INTEGER, "age", AGG_EXACT, NULL),
					prop("score", PROP_FLOAT, "score", AGG_EXACT, NULL),
					prop("active", PROP_BOOLEAN, "active", AGG_EXACT, NULL),
					prop("born", PROP_DATE, "born", AGG_EXACT, NULL),
					prop("created", PROP_DATE, "created", AGG_EXACT, NULL),
					prop("big", PROP_STRING, "big", AGG_EXACT, NULL),
					prop("bigi", PROP_INTEGER, "big", AGG_EXACT, NULL),
					prop("price", PROP_FLOAT, "price", AGG_EXACT, NULL));
	struct cfg_property *tags = prop("tags", PROP_STRING, "tags", AGG_EXACT, NULL);
	tags->is_array = true;
	(void)tags;
	EXPECT_ROWS(src, "#1:[\"a@x.io\",\"Al\\tTab\",30,2.25,false,\"1990-01-01T00:00:00.000Z\",null,\"-5\",-5,1]\n"
			 "#2:[null,\"Bo\",25,null,null,null,\"1970-01-01T00:00:01.000Z\",\"0\",0,0]!1\n"
			 "#3:[\"c@x.io\",\"Cy's\",40,1.5,true,\"2001-02-03T00:00:00.000Z\",\"2001-02-03T04:05:06.000Z\","
			 "\"9007199254740993\",9007199254740993,3.5]\n");
}

static void test_arrays(void **s)
{
	(void)s;
	NEED_SERVER();
	struct cfg_property *items = prop("items", PROP_STRING, "item", AGG_MOST_RECENT, "ts");
	items->is_array = true;
	struct cfg_property *all = prop("all_items", PROP_STRING, "item", AGG_EXACT, NULL);
	all->is_array = true;
	struct cfg_source *src = source("buys", "purchases", "uid", false, PROP_INTEGER, 2, items, all);
	EXPECT_ROWS(src, "#1:[[\"cap\",\"bag\",\"hat\"],[\"bag\",\"cap\",\"hat\"]]\n"
			 "#3:[[\"pen\",\"pin\"],[\"pen\",\"pin\"]]\n");
	/* an Array column read into a plain string property: its text */
	struct cfg_source *u = source("users_src", "users", "id", true, PROP_INTEGER, 1,
				      prop("tags", PROP_STRING, "tags", AGG_EXACT, NULL));
	EXPECT_ROWS(u, "#1:[\"[]\"]\n#2:[\"['x']\"]\n#3:[\"['b','a']\"]\n");
}

static void test_aggregations_and_filters(void **s)
{
	(void)s;
	NEED_SERVER();
	struct cfg_property *paid_sum = prop("paid", PROP_FLOAT, "amount", AGG_SUM, NULL);
	filter(paid_sum, "state", FOP_EQ, "paid");
	struct cfg_property *late = prop("late", PROP_STRING, "item", AGG_MOST_RECENT, "ts");
	filter(late, "ts", FOP_LT, "2020-01-01T00:04:00Z"); /* an ISO text against a DateTime */
	struct cfg_property *big = prop("big", PROP_INTEGER, "amount", AGG_COUNT, NULL);
	struct cfg_filter *f = filter(big, "amount", FOP_GTE, "6"); /* text "6" against a Float64 */
	(void)f;
	struct cfg_property *sub = prop("has_a", PROP_STRING, "item", AGG_LEAST_RECENT, "ts");
	filter(sub, "item", FOP_SUBSTRING, "A"); /* case-insensitive, exact substring */
	struct cfg_property *pct = prop("pct", PROP_INTEGER, "amount", AGG_COUNT, NULL);
	filter(pct, "item", FOP_SUBSTRING, "%");
	struct cfg_property *avg = prop("avg", PROP_FLOAT, "amount", AGG_AVERAGE, NULL);
	struct cfg_property *inl = prop("inl", PROP_INTEGER, "amount", AGG_COUNT, NULL);
	struct cfg_filter *fi = filter(inl, "item", FOP_IN, NULL);
	static const char *const list[] = { "hat", "pin", "it's" };
	fi->match_list = (const char **)list;
	fi->n_match_list = 3;
	struct cfg_property *mn = prop("first", PROP_DATE, "ts", AGG_MIN, NULL);
	struct cfg_source *src = source("buys", "purchases", "uid", false, PROP_INTEGER, 8, paid_sum, late, big, sub,
					pct, avg, inl, mn);
	/* 18.16 prints Float64 with 15 significant digits (newer servers: shortest exact) */
	EXPECT_ROWS(src, "#1:[15,\"bag\",2,\"hat\",0,7.33333333333333,1,\"2020-01-01T00:01:40.000Z\"]\n"
			 "#3:[1,\"pen\",0,null,0,1,1,\"2020-01-01T00:00:50.000Z\"]\n");
}

/* Keys read since a mark of column col, "k;k;...". */
static void since_keys(const struct cfg_source *src, const char *col, const char *mark, const char *want)
{
	struct source_read rd = { .since_column = col, .since_value = mark };
	struct source_cursor *cur;
	struct source_row *row;
	struct jerror err = JERROR_INIT;
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(source_clickhouse.open_cursor(F.conn, src, &rd, &cur, &err), JERR_OK);
	while (source_cursor_next(cur, &row, &err) == JERR_OK && row)
		strbuf_addf(&out, "%" PRId64 ";", row->key.i);
	assert_int_equal(err.code, JERR_OK);
	source_cursor_close(cur);
	assert_string_equal(out.buf, want);
	strbuf_release(&out);
	jerror_release(&err);
}

/*
 * A number mark on a String column compares as numbers (source_since_compare): quoted
 * as a string literal, '1000' >= '999' was false and rows past a mark of 999 were never
 * read. Text that is not a number is read again, never skipped; NULL is not read; a
 * number column keeps col >= mark.
 */
static void test_incremental_number_mark_on_text(void **s)
{
	(void)s;
	NEED_SERVER();
	ch_exec("joey_unit_ch", "CREATE TABLE inc (id UInt32, email String, ver String, nv Nullable(String), "
				"fs FixedString(6), n Int64) ENGINE = Memory");
	ch_exec("joey_unit_ch", "INSERT INTO inc VALUES (1,'a@x.com','998','998','998',998),"
				"(2,'b@x.com','999','999','999',999),(3,'new@x.com','1000','1000','1000',1000),"
				"(4,'d@x.com','abc',NULL,'abc',-1),(5,'e@x.com','1.5e3','1.5e3','1.5e3',1500)");
	struct cfg_source *src = source("inc", "inc", "id", true, PROP_INTEGER, 1,
					prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL));
	since_keys(src, "ver", "999", "2;3;4;5;");
	since_keys(src, "nv", "999", "2;3;5;");
	since_keys(src, "fs", "999.5", "3;4;5;");
	since_keys(src, "n", "999", "2;3;5;");
}

static void test_key_order_and_incremental(void **s)
{
	(void)s;
	NEED_SERVER();
	ch_exec("joey_unit_ch", "CREATE TABLE acct (code String, n Nullable(Int64), at DateTime) ENGINE = Memory");
	ch_exec("joey_unit_ch", "INSERT INTO acct VALUES ('b',1,'2020-01-01 00:00:00'),('A',2,'2020-01-02 00:00:00'),"
				"('10',3,'2020-01-03 00:00:00'),('9',4,'2020-01-04 00:00:00'),('a',5,'2020-01-05 00:00:00')");
	struct cfg_source *src = source("acct", "acct", "code", true, PROP_STRING, 1,
					prop("n", PROP_INTEGER, "n", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "10:[3]\n9:[4]\nA:[2]\na:[5]\nb:[1]\n");
	/* since a mark: rows with at >= the mark, and the mark of each row */
	struct source_read rd = { .since_column = "at", .since_value = "2020-01-03 00:00:00" };
	struct source_cursor *cur;
	struct source_row *row;
	struct jerror err = JERROR_INIT;
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(source_clickhouse.open_cursor(F.conn, src, &rd, &cur, &err), JERR_OK);
	while (source_cursor_next(cur, &row, &err) == JERR_OK && row)
		strbuf_addf(&out, "%.*s@%.*s;", (int)row->key.text.len, row->key.text.ptr, (int)row->since.len,
			    row->since.ptr);
	source_cursor_close(cur);
	assert_string_equal(out.buf, "10@2020-01-03 00:00:00;9@2020-01-04 00:00:00;a@2020-01-05 00:00:00;");
	/* a key range */
	struct rkey lo = { .text = slice_of("9") }, hi = { .text = slice_of("a") };
	struct key_range range = { &lo, &hi };
	struct source_read rr = { .range = &range };
	strbuf_reset(&out);
	assert_int_equal(source_clickhouse.open_cursor(F.conn, src, &rr, &cur, &err), JERR_OK);
	while (source_cursor_next(cur, &row, &err) == JERR_OK && row)
		strbuf_addf(&out, "%.*s;", (int)row->key.text.len, row->key.text.ptr);
	source_cursor_close(cur);
	assert_string_equal(out.buf, "9;A;");
	strbuf_release(&out);
	jerror_release(&err);
}

static void test_describe_shape(void **s)
{
	(void)s;
	NEED_SERVER();
	struct cfg_property *late = prop("late", PROP_STRING, "item", AGG_MOST_RECENT, "ts");
	filter(late, "state", FOP_EQ, "pa'id");
	struct cfg_source *src = source("buys", "joey_unit_ch.purchases", "uid", false, PROP_INTEGER, 1, late);
	struct strbuf out = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_clickhouse.describe(F.conn, src, &out, &err), JERR_OK);
	assert_non_null(strstr(out.buf, "FROM `joey_unit_ch`.`purchases`"));
	assert_non_null(strstr(out.buf, "argMaxIf(tuple(`item`)"));
	assert_non_null(strstr(out.buf, "`state` = 'pa\\'id'"));
	assert_null(strstr(out.buf, "OVER ("));
	strbuf_release(&out);
	/* a Grouparoo property query cannot be correlated in ClickHouse */
	struct cfg_source *q = source("q", NULL, "id", false, PROP_INTEGER, 1,
				      prop("n", PROP_INTEGER, NULL, AGG_EXACT, NULL));
	q->is_query = true;
	q->query = "SELECT id FROM users";
	q->properties[0]->query = "SELECT count() FROM purchases WHERE uid = {{{ user_id }}}";
	struct source_cursor *cur = NULL;
	assert_int_equal(source_clickhouse.open_cursor(F.conn, q, NULL, &cur, &err), JERR_CONFIG);
	assert_non_null(strstr(err.msg.buf, "not supported on ClickHouse"));
	jerror_release(&err);
}

static void test_check_did_you_mean(void **s)
{
	(void)s;
	NEED_SERVER();
	struct jerror err = JERROR_INIT;
	struct cfg_source *src = source("users_src", "users", "id", true, PROP_INTEGER, 1,
					prop("email", PROP_EMAIL, "emial", AGG_EXACT, NULL));
	assert_int_equal(source_clickhouse.check(F.conn, src, &err), JERR_CONFIG);
	assert_non_null(strstr(err.hint.buf, "did you mean \"email\"?"));
	jerror_release(&err);
	struct source_cursor *cur = NULL;
	assert_int_equal(source_clickhouse.open_cursor(F.conn, src, NULL, &cur, &err), JERR_CONFIG);
	assert_non_null(strstr(err.msg.buf, "column \"emial\" does not exist"));
	jerror_release(&err);
	struct cfg_source *t = source("t", "userz", "id", true, PROP_INTEGER, 0);
	assert_int_equal(source_clickhouse.check(F.conn, t, &err), JERR_CONFIG);
	assert_non_null(strstr(err.msg.buf, "table \"userz\" does not exist"));
	assert_non_null(strstr(err.hint.buf, "did you mean \"users\"?"));
	jerror_release(&err);
}

/* An error the server sends after the first MiB of a 200 answer is an error, never the end. */
static void test_error_mid_stream(void **s)
{
	(void)s;
	NEED_SERVER();
	struct cfg_app app;
	void *conn = NULL;
	struct jerror err = JERROR_INIT;
	make_app(&app, http_host(), F.port, "joey_unit_ch", "joey_limited", F.password, NULL);
	assert_int_equal(source_clickhouse.connect(&app, "/", &conn, &err), JERR_OK);
	struct cfg_source *src = source("wide", NULL, "id", true, PROP_INTEGER, 1,
					prop("pad", PROP_STRING, "pad", AGG_EXACT, NULL));
	src->is_query = true;
	src->query = "SELECT number AS id, arrayStringConcat(arrayMap(x -> 'x', range(300))) AS pad "
		     "FROM system.numbers LIMIT 6000";
	struct source_cursor *cur = NULL;
	struct source_row *row;
	enum jerr rc = source_clickhouse.open_cursor(conn, src, NULL, &cur, &err);
	assert_int_equal(rc, JERR_OK); /* the first rows arrive with status 200 */
	uint64_t n = 0;
	while ((rc = source_cursor_next(cur, &row, &err)) == JERR_OK && row)
		n++;
	assert_int_equal(rc, JERR_SOURCE);
	assert_true(n > 0 && n < 6000);
	assert_non_null(strstr(err.msg.buf, "query failed after"));
	assert_non_null(strstr(err.detail.buf, "Limit for result exceeded"));
	source_cursor_close(cur);
	jerror_release(&err);
	source_clickhouse.disconnect(conn);
}

/* Two sources of one app read side by side on one connection; one closed early. */
static void test_two_cursors_and_early_close(void **s)
{
	(void)s;
	NEED_SERVER();
	struct cfg_source *a = source("a", NULL, "id", true, PROP_INTEGER, 1, prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	a->is_query = true;
	a->query = "SELECT number AS id, concat('a', toString(number)) AS v FROM system.numbers LIMIT 200000";
	struct cfg_source *b = source("b", NULL, "id", false, PROP_INTEGER, 1, prop("w", PROP_STRING, "w", AGG_EXACT, NULL));
	b->is_query = true;
	b->query = "SELECT number AS id, concat('b', toString(number)) AS w FROM system.numbers LIMIT 200000";
	struct source_cursor *ca, *cb;
	struct source_row *ra, *rb;
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_clickhouse.open_cursor(F.conn, a, NULL, &ca, &err), JERR_OK);
	assert_int_equal(source_clickhouse.open_cursor(F.conn, b, NULL, &cb, &err), JERR_OK);
	for (int64_t i = 0; i < 200000; i++) {
		assert_int_equal(source_cursor_next(ca, &ra, &err), JERR_OK);
		assert_int_equal(source_cursor_next(cb, &rb, &err), JERR_OK);
		assert_non_null(ra);
		assert_non_null(rb);
		assert_int_equal(ra->key.i, i);
		assert_int_equal(rb->key.i, i);
		/* the row of a stays valid while b is driven */
		assert_int_equal(ra->values[0].u.s.ptr[0], 'a');
		assert_int_equal(rb->values[0].u.s.ptr[0], 'b');
		if (i == 1000) {
			source_cursor_close(cb); /* early: the rest is not read */
			cb = NULL;
			break;
		}
	}
	uint64_t n = 1001;
	while (source_cursor_next(ca, &ra, &err) == JERR_OK && ra)
		n++;
	assert_int_equal(n, 200000);
	source_cursor_close(ca);
	/* the connection still works */
	struct cfg_source *u = source("users_src", "users", "id", true, PROP_INTEGER, 1,
				      prop("age", PROP_INTEGER, "age", AGG_EXACT, NULL));
	EXPECT_ROWS(u, "#1:[30]\n#2:[25]\n#3:[40]\n");
	jerror_release(&err);
}

static void test_statement_timeout(void **s)
{
	(void)s;
	NEED_SERVER();
	struct cfg_app app;
	void *conn = NULL;
	struct jerror err = JERROR_INIT;
	make_app(&app, http_host(), F.port, "joey_unit_ch", F.user, F.password, "1");
	assert_int_equal(source_clickhouse.connect(&app, "/", &conn, &err), JERR_OK);
	struct cfg_source *src = source("slow", NULL, "id", true, PROP_INTEGER, 1,
					prop("z", PROP_INTEGER, "z", AGG_EXACT, NULL));
	src->is_query = true;
	src->query = "SELECT number AS id, sleepEachRow(1) AS z FROM system.numbers LIMIT 3";
	struct source_cursor *cur = NULL;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	enum jerr rc = source_clickhouse.open_cursor(conn, src, NULL, &cur, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(rc, JERR_SOURCE);
	assert_non_null(strstr(err.detail.buf, "statementTimeout"));
	assert_non_null(strstr(err.msg.buf, "query cancelled"));
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	jerror_release(&err);
	source_clickhouse.disconnect(conn);
}

static void expect_connect_error(const char *host, const char *port, const char *db, const char *password,
				 const char *in_msg, const char *in_hint)
{
	struct cfg_app app;
	void *conn = NULL;
	struct jerror err = JERROR_INIT;
	make_app(&app, host, port, db, F.user, password, NULL);
	assert_int_equal(source_clickhouse.connect(&app, "/", &conn, &err), JERR_SOURCE);
	assert_null(conn);
	struct strbuf all = STRBUF_INIT;
	strbuf_addf(&all, "%s|%s|%s", err.msg.buf, err.detail.buf, err.hint.buf);
	if (!strstr(all.buf, in_msg) || !strstr(err.hint.buf, in_hint))
		fail_msg("expected \"%s\" and hint \"%s\", got: %s", in_msg, in_hint, all.buf);
	assert_null(strstr(all.buf, password)); /* never echoed */
	strbuf_release(&all);
	jerror_release(&err);
}

static void test_connect_errors(void **s)
{
	(void)s;
	NEED_SERVER();
	expect_connect_error(http_host(), F.port, "joey_unit_ch", "wrong-pw-123", "cannot connect to ClickHouse",
			     "\"password\"");
	expect_connect_error(http_host(), F.port, "no_such_db", F.password, "no_such_db", "\"database\" option");
	expect_connect_error(http_host(), "1", "joey_unit_ch", F.password, ":1/", "\"host\" and \"port\"");
}

static void test_readonly_profile(void **s)
{
	(void)s;
	NEED_SERVER();
	struct cfg_app app;
	void *conn = NULL;
	struct jerror err = JERROR_INIT;
	make_app(&app, http_host(), F.port, "joey_unit_ch", "joey_ro", F.password, NULL);
	enum jerr rc = source_clickhouse.connect(&app, "/", &conn, &err);
	if (rc)
		jerror_print(stderr, &err);
	assert_int_equal(rc, JERR_OK);
	void *keep = F.conn;
	F.conn = conn;
	struct cfg_source *u = source("users_src", "users", "id", true, PROP_INTEGER, 1,
				      prop("age", PROP_INTEGER, "age", AGG_EXACT, NULL));
	EXPECT_ROWS(u, "#1:[30]\n#2:[25]\n#3:[40]\n");
	F.conn = keep;
	source_clickhouse.disconnect(conn);
}

/* sample: the database's tables, then one table's first rows (the UI's source editor). */
static void test_sample(void **s)
{
	(void)s;
	NEED_SERVER();
	struct source_sample smp = { 0 };
	struct jerror err = JERROR_INIT;
	/* a view is listed; a materialized view's inner table is not */
	ch_exec("joey_unit_ch", "CREATE MATERIALIZED VIEW totals ENGINE = Memory AS SELECT uid FROM purchases");
	assert_int_equal(source_clickhouse.sample(F.conn, NULL, 5, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_tables, 3);
	assert_string_equal(smp.tables[0], "purchases");
	assert_string_equal(smp.tables[1], "totals");
	assert_string_equal(smp.tables[2], "users");
	assert_int_equal(smp.n_columns, 0);
	source_sample_release(&smp);
	assert_int_equal(source_clickhouse.sample(F.conn, "users", 2, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_tables, 3);
	assert_int_equal(smp.n_columns, 11);
	assert_string_equal(smp.columns[0], "id");
	assert_string_equal(smp.columns[10], "price");
	assert_false(smp.columns_cut);
	assert_int_equal(smp.n_rows, 2);
	source_sample_release(&smp);
	/* every row, values unescaped, NULL as NULL, whatever limit is asked */
	assert_int_equal(source_clickhouse.sample(F.conn, "users", 1000, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_rows, 3);
	bool tab = false, null = false;
	for (size_t i = 0; i < smp.n_rows * smp.n_columns; i++) {
		tab |= smp.cells[i] && !strcmp(smp.cells[i], "Al\tTab");
		null |= !smp.cells[i];
	}
	assert_true(tab);
	assert_true(null);
	source_sample_release(&smp);
	/* a table name is an identifier, and must be one of the tables */
	assert_int_equal(source_clickhouse.sample(F.conn, "users; DROP TABLE users", 2, &smp, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, "app \"ch\" has no table \"users; DROP TABLE users\"");
	jerror_release(&err);
	source_sample_release(&smp);
	assert_int_equal(source_clickhouse.sample(F.conn, "user", 2, &smp, &err), JERR_CONFIG);
	assert_non_null(strstr(err.hint.buf, "users"));
	jerror_release(&err);
	source_sample_release(&smp);
}

/* sample_query: a query's first rows; a write changes nothing (readonly=1, one statement). */
static void test_sample_query(void **s)
{
	(void)s;
	NEED_SERVER();
	struct source_sample smp = { 0 };
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_clickhouse.sample_query(F.conn, "SELECT id, name AS who FROM users ORDER BY id;", 2,
							&smp, &err), JERR_OK);
	assert_int_equal(smp.n_tables, 0);
	assert_int_equal(smp.n_columns, 2);
	assert_string_equal(smp.columns[1], "who");
	assert_int_equal(smp.n_rows, 2);
	assert_string_equal(smp.cells[0], "1");
	assert_string_equal(smp.cells[1], "Al\tTab");
	assert_string_equal(smp.cells[2], "2");
	source_sample_release(&smp);
	/* long values are cut, columns past SOURCE_SAMPLE_MAX_COLUMNS dropped */
	struct strbuf q = STRBUF_INIT;
	strbuf_addstr(&q, "SELECT '");
	for (int i = 0; i < 300; i++)
		strbuf_addch(&q, 'x');
	strbuf_addstr(&q, "' AS long_value, NULL AS nothing");
	for (int i = 0; i < SOURCE_SAMPLE_MAX_COLUMNS; i++)
		strbuf_addf(&q, ", %d AS c%d", i, i);
	if (source_clickhouse.sample_query(F.conn, q.buf, 5, &smp, &err))
		fail_msg("%s: %s", err.msg.buf, err.detail.buf);
	strbuf_release(&q);
	assert_int_equal(smp.n_columns, SOURCE_SAMPLE_MAX_COLUMNS);
	assert_true(smp.columns_cut);
	assert_int_equal(smp.n_rows, 1);
	assert_int_equal(strlen(smp.cells[0]), SOURCE_SAMPLE_MAX_VALUE + 3);
	assert_non_null(strstr(smp.cells[0], "\xe2\x80\xa6"));
	assert_null(smp.cells[1]);
	source_sample_release(&smp);
	static const char *const writes[] = {
		"INSERT INTO users (id, name) VALUES (9, 'z')",
		"SELECT 1) AS a; INSERT INTO users (id, name) VALUES (9, 'z'); SELECT * FROM (SELECT 1",
		"SELECT 1 AS one) AS a; DROP TABLE purchases; --",
		"SELECT * FROM users SETTINGS readonly = 0",
		"SELECT * FROM users) AS a SETTINGS readonly = 0; CREATE TABLE t (x Int8) ENGINE = Memory; --",
	};
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		assert_int_equal(source_clickhouse.sample_query(F.conn, writes[i], 5, &smp, &err), JERR_SOURCE);
		assert_string_equal(err.msg.buf, "app \"ch\": the query cannot be read");
		assert_true(err.detail.len > 0);
		assert_true(err.hint.len > 0);
		jerror_release(&err);
		source_sample_release(&smp);
	}
	/* nothing changed */
	assert_int_equal(source_clickhouse.sample_query(F.conn, "SELECT count() AS n FROM users", 5, &smp, &err),
			 JERR_OK);
	assert_string_equal(smp.cells[0], "3");
	source_sample_release(&smp);
	assert_int_equal(source_clickhouse.sample(F.conn, NULL, 5, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_tables, 2);
	source_sample_release(&smp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_rule),
		cmocka_unit_test(test_string_literal),
		cmocka_unit_test(test_split_tsv),
		cmocka_unit_test(test_exception_text),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_array_text),
		cmocka_unit_test_setup_teardown(test_values_and_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arrays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aggregations_and_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_order_and_incremental, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental_number_mark_on_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_describe_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_did_you_mean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_mid_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_cursors_and_early_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statement_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_profile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample_query, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
