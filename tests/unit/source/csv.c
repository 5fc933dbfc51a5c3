/* csv.c: tests for src/source/csv.c and csvread.c (RFC 4180 parsing, bad rows, SQLite-equal results). */
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/strbuf.h"
#include "source/csvread.h"
#include "source/source.h"

extern const struct source_ops source_csv;

struct fx {
	struct arena a;
	char *dir;
	struct cfg_app app;
	struct cfg_model model;
	void *conn;
};

static struct fx F;

static int setup(void **s)
{
	memset(&F, 0, sizeof(F));
	arena_init(&F.a);
	F.dir = tu_mkdtemp();
	F.model = (struct cfg_model){ .id = "users", .name = "users", .type = "profile" };
	return 0;
}

static int teardown(void **s)
{
	if (F.conn)
		source_csv.disconnect(F.conn);
	tu_rmtree(F.dir);
	free(F.dir);
	arena_release(&F.a);
	return 0;
}

/* Set F.app to a csv app over file (relative to F.dir) with optional delimiter/badRows. */
static void app(const char *file, const char *delim, const char *bad)
{
	struct cfg_option *o = arena_zalloc(&F.a, 3 * sizeof(*o));
	size_t n = 0;
	o[n++] = (struct cfg_option){ .key = "file", .kind = OPT_STRING, .str = file };
	if (delim)
		o[n++] = (struct cfg_option){ .key = "delimiter", .kind = OPT_STRING, .str = delim };
	if (bad)
		o[n++] = (struct cfg_option){ .key = "badRows", .kind = OPT_STRING, .str = bad };
	F.app = (struct cfg_app){ .id = "files", .name = "files", .type = "csv" };
	F.app.options = (struct cfg_options){ o, n };
}

static enum jerr connect_app(const char *file, const char *delim, const char *bad,
			     struct jerror *err)
{
	if (F.conn)
		source_csv.disconnect(F.conn);
	F.conn = NULL;
	app(file, delim, bad);
	return source_csv.connect(&F.app, F.dir, &F.conn, err);
}

static void connect_ok(const char *file)
{
	struct jerror err = JERROR_INIT;
	enum jerr rc = connect_app(file, NULL, NULL, &err);
	if (rc)
		jerror_print(stderr, &err);
	assert_int_equal(rc, JERR_OK);
	jerror_release(&err);
}

/* stderr into a file while a block runs */
static int saved_fd = -1;
static char *cap_path;

static void capture_begin(void)
{
	fflush(stderr);
	cap_path = arena_printf(&F.a, "%s/stderr.txt", F.dir);
	saved_fd = dup(2);
	FILE *f = fopen(cap_path, "w");
	assert_non_null(f);
	dup2(fileno(f), 2);
	fclose(f);
}

static char *capture_end(void)
{
	fflush(stderr);
	dup2(saved_fd, 2);
	close(saved_fd);
	return tu_read(cap_path);
}

#define FIXTURE_OPS source_csv
#define FIXTURE_TYPE "csv-import-table"
#include "fixture.h"

/* The same data as tests/unit/source/sqlite.c, as CSV: results must be the same. */
static const char users_csv[] =
	"id,email,name,age,score,active,born,site\n"
	"3,c@x.io,Cy,40,1.5,1,2001-02-03,HTTP://C.io\n"
	"1,a@x.io,Al,30,2.25,0,1990-01-01T00:00:00Z,a.io\n"
	"2,bad-email,Bo,25,,1,nope,x y\n";
static const char purchases_csv[] =
	"pid,uid,amount,item,ts,state\n"
	"1,1,10,hat,100,paid\n"
	"2,1,5,cap,300,paid\n"
	"3,1,7,bag,200,refunded\n"
	"4,3,1,pin,50,paid\n"
	"5,,99,orphan,1,paid\n"
	"6,,98,orphan2,2,paid\n"
	"7,3,,pen,60,paid\n";

/* ---- the reader ---- */

static void test_reader_quoting(void **s)
{
	static const char in[] = "\xef\xbb\xbf"
				 "a,\"b,1\",\"say \"\"hi\"\"\"\r\n"
				 "\r\n"
				 "x,\"multi\nline\",\r"
				 "\"\",,\"z\"";
	struct csv_reader r;
	csv_reader_init(&r, ',');
	csv_reader_set_mem(&r, in, sizeof(in) - 1);
	assert_int_equal(csv_reader_next(&r), CSV_RECORD);
	assert_int_equal(r.n_fields, 3);
	assert_string_equal(r.row.buf + r.off[0], "a");
	assert_string_equal(r.row.buf + r.off[1], "b,1");
	assert_string_equal(r.row.buf + r.off[2], "say \"hi\"");
	assert_int_equal(r.line, 1);
	assert_int_equal(csv_reader_next(&r), CSV_RECORD); /* the empty line is skipped */
	assert_int_equal(r.line, 3);
	assert_int_equal(r.n_fields, 3);
	assert_string_equal(r.row.buf + r.off[1], "multi\nline");
	assert_int_equal(r.len[2], 0);
	assert_int_equal(r.pos[1].line, 3);
	assert_int_equal(r.pos[1].col, 3);
	assert_int_equal(csv_reader_next(&r), CSV_RECORD); /* lone CR ended the line */
	assert_int_equal(r.line, 5);
	assert_int_equal(r.n_fields, 3);
	assert_int_equal(r.len[0], 0);
	assert_string_equal(r.row.buf + r.off[2], "z");
	assert_int_equal(csv_reader_next(&r), CSV_EOF);
	csv_reader_release(&r);
}

static void test_reader_bad_records(void **s)
{
	static const char in[] = "ok,1\n"
				 "ab\"c,2\n"
				 "\"x\"y,3\n"
				 "\xff,4\n"
				 "fine,5\n"
				 "\"open,6\n";
	struct csv_reader r;
	csv_reader_init(&r, ',');
	csv_reader_set_mem(&r, in, sizeof(in) - 1);
	assert_int_equal(csv_reader_next(&r), CSV_RECORD);
	assert_int_equal(csv_reader_next(&r), CSV_BAD);
	assert_int_equal(r.bad_line, 2);
	assert_int_equal(r.bad_col, 3);
	assert_int_equal(r.bad_field, 1);
	assert_string_equal(r.bad_reason, "quote inside an unquoted field");
	assert_int_equal(csv_reader_next(&r), CSV_BAD);
	assert_int_equal(r.bad_line, 3);
	assert_int_equal(r.bad_col, 4);
	assert_string_equal(r.bad_reason, "unexpected character after a closing quote");
	assert_int_equal(csv_reader_next(&r), CSV_BAD);
	assert_int_equal(r.bad_line, 4);
	assert_int_equal(r.bad_col, 1);
	assert_string_equal(r.bad_reason, "field is not valid UTF-8");
	assert_int_equal(csv_reader_next(&r), CSV_RECORD);
	assert_string_equal(r.row.buf + r.off[0], "fine");
	assert_int_equal(r.line, 5);
	assert_int_equal(csv_reader_next(&r), CSV_BAD);
	assert_int_equal(r.bad_line, 6);
	assert_string_equal(r.bad_reason, "quoted field is not terminated");
	assert_int_equal(csv_reader_next(&r), CSV_EOF);
	csv_reader_release(&r);

	/* limits and NUL */
	csv_reader_init(&r, ';');
	r.max_field = 4;
	static const char in2[] = "abcd;abcde\nx\0y;1\nend;2";
	csv_reader_set_mem(&r, in2, sizeof(in2) - 1);
	assert_int_equal(csv_reader_next(&r), CSV_BAD);
	assert_int_equal(r.bad_field, 2);
	assert_int_equal(r.bad_col, 6);
	assert_string_equal(r.bad_reason, "field is longer than the limit");
	assert_int_equal(csv_reader_next(&r), CSV_BAD);
	assert_string_equal(r.bad_reason, "NUL byte in field");
	assert_int_equal(r.bad_line, 2);
	assert_int_equal(r.bad_col, 2);
	assert_int_equal(csv_reader_next(&r), CSV_RECORD);
	assert_string_equal(r.row.buf + r.off[0], "end");
	assert_int_equal(csv_reader_next(&r), CSV_EOF);
	csv_reader_release(&r);

	size_t bad = 0;
	assert_true(csv_utf8_valid("h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10, &bad));
	assert_false(csv_utf8_valid("a\xc0\xaf", 3, &bad)); /* overlong */
	assert_int_equal(bad, 1);
	assert_false(csv_utf8_valid("ab\xed\xa0\x80", 5, &bad)); /* surrogate */
	assert_int_equal(bad, 2);
	assert_false(csv_utf8_valid("\xe2\x82", 2, &bad)); /* truncated */
}

/* ---- the connector ---- */

static void test_primary_exact_and_coercion(void **s)
{
	tu_write(F.dir, "users.csv", users_csv);
	connect_ok("users.csv");
	struct cfg_source *src = source(
		"users_src", "users", "id", true, PROP_INTEGER, 7,
		prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL),
		prop("age", PROP_INTEGER, "age", AGG_EXACT, NULL),
		prop("score", PROP_FLOAT, "score", AGG_EXACT, NULL),
		prop("active", PROP_BOOLEAN, "active", AGG_EXACT, NULL),
		prop("born", PROP_DATE, "born", AGG_EXACT, NULL),
		prop("site", PROP_URL, "site", AGG_EXACT, NULL),
		prop("age_s", PROP_STRING, "age", AGG_EXACT, NULL));
	/* exactly the SQLite connector's result for the same table (score empty: NULL) */
	EXPECT_ROWS(src, "#1:[\"a@x.io\",30,2.25,false,\"1990-01-01T00:00:00.000Z\",\"a.io\",\"30\"]\n"
			 "#2:[null,25,null,true,null,null,\"25\"]!3\n"
			 "#3:[\"c@x.io\",40,1.5,true,\"2001-02-03T00:00:00.000Z\",\"http://c.io\",\"40\"]\n");

	/* the source may leave table out, or must name the CSV table */
	src->table = NULL;
	EXPECT_ROWS(src, "#1:[\"a@x.io\",30,2.25,false,\"1990-01-01T00:00:00.000Z\",\"a.io\",\"30\"]\n"
			 "#2:[null,25,null,true,null,null,\"25\"]!3\n"
			 "#3:[\"c@x.io\",40,1.5,true,\"2001-02-03T00:00:00.000Z\",\"http://c.io\",\"40\"]\n");
	src->table = "people";
	struct jerror err = JERROR_INIT;
	struct source_cursor *cur = NULL;
	assert_int_equal(source_csv.open_cursor(F.conn, src, NULL, &cur, &err), JERR_CONFIG);
	assert_null(cur);
	assert_string_equal(err.msg.buf, "source \"users_src\": table \"people\" is not the table "
					 "of CSV app \"files\"");
	assert_string_equal(err.hint.buf, "set options.table to \"users\" or leave it out");
	jerror_release(&err);
	assert_int_equal(source_csv.check(F.conn, src, &err), JERR_CONFIG);
	jerror_release(&err);
}

/* A look-up by value (source_read.match_column): the file is loaded whole (a CSV file
 * has no index), then filtered in the statement like the SQL connectors. */
static void test_sample(void **s)
{
	tu_write(F.dir, "users.csv", users_csv);
	connect_ok("users.csv");
	struct source_sample smp = { 0 };
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_csv.sample(F.conn, "users", 2, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_tables, 1);
	assert_string_equal(smp.tables[0], "users");
	assert_string_equal(smp.columns[0], "id");
	assert_int_equal(smp.n_rows, 2);
	source_sample_release(&smp);
	assert_int_equal(source_csv.sample(F.conn, "people", 2, &smp, &err), JERR_CONFIG);
	assert_string_equal(err.hint.buf, "its table is \"users\"");
	jerror_release(&err);
	/* a file outside joey serve's data directory: never shown */
	F.app.file_unlisted = true;
	assert_int_equal(source_csv.sample(F.conn, "users", 2, &smp, &err), JERR_CONFIG);
	assert_int_equal(smp.n_rows, 0);
	assert_string_equal(err.msg.buf, "app \"files\": the file is not shown");
	jerror_release(&err);
	F.app.file_unlisted = false;
}

static void test_match_value(void **s)
{
	tu_write(F.dir, "users.csv", users_csv);
	connect_ok("users.csv");
	struct cfg_source *src = source("users_src", "users", "id", true, PROP_INTEGER, 1,
					prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL));
	struct source_read by_email = { .match_column = "email", .match_value = "c@x.io" };
	EXPECT_READ_ROWS(src, &by_email, "#3:[\"c@x.io\"]\n");
	struct source_read none = { .match_column = "email", .match_value = "x' OR '1'='1" };
	EXPECT_READ_ROWS(src, &none, "");
	struct source_read age = { .match_column = "age", .match_value = "25", .match_is_number = true };
	EXPECT_READ_ROWS(src, &age, "#2:[null]!1\n");
}

static void test_text_kept_exactly(void **s)
{
	tu_write(F.dir, "t.csv", "k,v\n"
				 "a,007\nb,+5\nc,1.50\nd,2.5\ne, 3\nf,12.0\ng,-0\nh,1e3\n"
				 "i,99999999999999999999\nj,-42\n");
	connect_ok("t.csv");
	struct cfg_source *src = source("t", NULL, "k", true, PROP_STRING, 2,
					prop("s", PROP_STRING, "v", AGG_EXACT, NULL),
					prop("f", PROP_FLOAT, "v", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "a:[\"007\",7]\nb:[\"+5\",5]\nc:[\"1.50\",1.5]\nd:[\"2.5\",2.5]\n"
			 "e:[\" 3\",3]\nf:[\"12.0\",12]\ng:[\"-0\",0]\nh:[\"1e3\",1000]\n"
			 "i:[\"99999999999999999999\",1e+20]\nj:[\"-42\",-42]\n");
}

static void test_quoting_bom_crlf(void **s)
{
	tu_write(F.dir, "q.csv", "\xef\xbb\xbfid,name,note\r\n"
				 "2,\"Smith, Jo\",\"said \"\"hi\"\"\"\r\n"
				 "1,\"Multi\r\nLine\",\"caf\xc3\xa9\"\r\n");
	connect_ok("q.csv");
	struct cfg_source *src = source("q", "q", "id", true, PROP_INTEGER, 2,
					prop("name", PROP_STRING, "name", AGG_EXACT, NULL),
					prop("note", PROP_STRING, "note", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#1:[\"Multi\\r\\nLine\",\"caf\xc3\xa9\"]\n"
			 "#2:[\"Smith, Jo\",\"said \\\"hi\\\"\"]\n");
}

static void test_secondary_aggregations(void **s)
{
	tu_write(F.dir, "purchases.csv", purchases_csv);
	connect_ok("purchases.csv");
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
	capture_begin();
	EXPECT_ROWS(src, "#1:[3,22,7.33333333333333,5,10,\"cap\",\"hat\",\"hat\"]\n"
			 "#3:[1,1,1,1,1,\"pen\",\"pin\",\"pin\"]\n");
	char *log = capture_end();
	assert_string_equal(log, "joey: warning: source \"purchases\": skipped 2 rows with a NULL "
				 "key column \"uid\"\n");
	free(log);

	/* numbers compare as numbers: max of 9 and 10 is 10, sorted by a numeric column */
	tu_write(F.dir, "n.csv", "uid,v,ts\n1,9,9\n1,10,10\n1,2,2\n");
	connect_ok("n.csv");
	src = source("n", NULL, "uid", false, PROP_INTEGER, 3,
		     prop("max", PROP_INTEGER, "v", AGG_MAX, NULL),
		     prop("min", PROP_INTEGER, "v", AGG_MIN, NULL),
		     prop("last", PROP_INTEGER, "v", AGG_MOST_RECENT, "ts"));
	EXPECT_ROWS(src, "#1:[10,2,10]\n");

	/* arrays, in file order without a sortColumn */
	tu_write(F.dir, "purchases.csv", purchases_csv);
	connect_ok("purchases.csv");
	struct cfg_property *items = prop("items", PROP_STRING, "item", AGG_EXACT, NULL);
	items->is_array = true;
	struct cfg_property *amounts = prop("amounts", PROP_INTEGER, "amount", AGG_EXACT, "ts");
	amounts->is_array = true;
	src = source("purchases", NULL, "uid", false, PROP_INTEGER, 2, items, amounts);
	capture_begin();
	EXPECT_ROWS(src, "#1:[[\"hat\",\"cap\",\"bag\"],[10,7,5]]\n#3:[[\"pin\",\"pen\"],[1]]\n");
	free(capture_end());
}

/*
 * Numbers the file writes in a form SQLite would not print back (17 digits, exponents,
 * -0.0, "1.50") are TEXT cells, yet compare, order and MIN/MAX as numbers: the
 * randomized differential test (tests/diff) found "min(3.0, 0.30000000000000004)" read
 * as 3 and "score lt 100" false for 0.30000000000000004.
 */
static void test_numbers_written_as_text(void **s)
{
	tu_write(F.dir, "w.csv", "uid,v,ts\n"
				 "1,3.0,1\n1,0.30000000000000004,9\n1,1e+308,1e1\n"
				 "2,-0.0,1\n2,1.50,2.5\n2,-1e-300,3\n"
				 "3,abc,1\n3,2,2\n3,007,3\n");
	connect_ok("w.csv");
	struct cfg_property *lt = prop("lt", PROP_INTEGER, "v", AGG_COUNT, NULL);
	filter(lt, "v", FOP_LT, "1")->match_is_number = true;
	struct cfg_property *gt = prop("gt", PROP_INTEGER, "v", AGG_COUNT, NULL);
	filter(gt, "v", FOP_GT, "2.9"); /* typed from a JSON string */
	struct cfg_source *src = source(
		"w", NULL, "uid", false, PROP_INTEGER, 7,
		prop("min", PROP_FLOAT, "v", AGG_MIN, NULL),
		prop("max", PROP_FLOAT, "v", AGG_MAX, NULL),
		prop("last", PROP_STRING, "v", AGG_MOST_RECENT, "ts"),
		prop("first", PROP_STRING, "v", AGG_LEAST_RECENT, "ts"),
		prop("smin", PROP_STRING, "v", AGG_MIN, NULL), lt, gt);
	/*
	 * The dump prints 15 digits (0.3). A string property's MIN and a filter on text
	 * keep SQLite's order, numbers before text: "abc" is the MAX of #3 and greater
	 * than 2.9, as is "007", a whole number written as text on purpose (a zip code).
	 */
	capture_begin();
	EXPECT_ROWS(src, "#1:[0.3,1e+308,\"1e+308\",\"3.0\",\"3.0\",1,2]\n"
			 "#2:[-1e-300,1.5,\"-1e-300\",\"-0.0\",\"-0.0\",2,0]\n"
			 "#3:[2,null,\"007\",\"abc\",\"2\",0,2]!1\n");
	free(capture_end());
}

static void test_filters_each_op(void **s)
{
	tu_write(F.dir, "purchases.csv", purchases_csv);
	connect_ok("purchases.csv");
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
		/* odd ones as JSON numbers, even ones as JSON strings "7": same result */
		f->match_is_number = i >= 2 && i <= 5 && (i & 1);
		if (ops[i] == FOP_IN) {
			static const char *list[] = { "hat", "pin", "pen" };
			f->match_list = list;
			f->n_match_list = 3;
		}
	}
	struct cfg_source *src = source("purchases", "purchases", "uid", false, PROP_INTEGER, 11,
					p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8],
					p[9], p[10]);
	capture_begin();
	EXPECT_ROWS(src, "#1:[2,1,1,2,1,2,3,0,1,3,0]\n"
			 "#3:[1,0,0,0,1,1,0,1,1,1,0]\n");
	free(capture_end());

	/* eq on a numeric-looking text keeps text equality: "007" is not 7 */
	tu_write(F.dir, "z.csv", "uid,zip\n1,007\n2,7\n3,12\n");
	connect_ok("z.csv");
	struct cfg_property *a = prop("a", PROP_STRING, "zip", AGG_EXACT, NULL);
	filter(a, "zip", FOP_EQ, "007");
	struct cfg_property *b = prop("b", PROP_STRING, "zip", AGG_EXACT, NULL);
	filter(b, "zip", FOP_EQ, "7");
	struct cfg_property *c = prop("c", PROP_STRING, "zip", AGG_EXACT, NULL);
	filter(c, "zip", FOP_GT, "9");
	src = source("z", NULL, "uid", true, PROP_INTEGER, 3, a, b, c);
	EXPECT_ROWS(src, "#1:[\"007\",null,\"007\"]\n#2:[null,\"7\",null]\n#3:[null,null,\"12\"]\n");
}

static void test_key_order(void **s)
{
	tu_write(F.dir, "k.csv", "id,v\nb,1\n10,2\na,3\n9,4\n\xc3\xa9,5\nB,6\n");
	connect_ok("k.csv");
	struct cfg_source *src = source("k", NULL, "id", true, PROP_STRING, 1,
					prop("v", PROP_INTEGER, "v", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "10:[2]\n9:[4]\nB:[6]\na:[3]\nb:[1]\n\xc3\xa9:[5]\n");

	tu_write(F.dir, "i.csv", "id,v\n10,a\n9,b\n100,c\n-1,d\n");
	connect_ok("i.csv");
	src = source("i", NULL, "id", true, PROP_INTEGER, 1,
		     prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#-1:[\"d\"]\n#9:[\"b\"]\n#10:[\"a\"]\n#100:[\"c\"]\n");

	/* a secondary source over unsorted text keys */
	src = source("i2", NULL, "v", false, PROP_STRING, 1,
		     prop("n", PROP_INTEGER, "id", AGG_COUNT, NULL));
	EXPECT_ROWS(src, "a:[1]\nb:[1]\nc:[1]\nd:[1]\n");

	/* a duplicate key is the contract's error */
	tu_write(F.dir, "d.csv", "id,v\n1,a\n1,b\n");
	connect_ok("d.csv");
	src = source("d", NULL, "id", true, PROP_INTEGER, 1,
		     prop("v", PROP_STRING, "v", AGG_EXACT, NULL));
	struct strbuf out = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	assert_int_equal(dump(src, &out, &err), JERR_SOURCE_DATA);
	assert_string_equal(err.msg.buf, "duplicate primary key \"1\" in source \"d\"");
	strbuf_release(&out);
	jerror_release(&err);
}

static void test_bad_rows_skipped(void **s)
{
	struct strbuf big = STRBUF_INIT;
	strbuf_addstr(&big, "id,name\n1,ok\n2,too,many\n3\n4,ab\"c\n5,\xff\n6,");
	for (size_t i = 0; i < CSV_DEFAULT_MAX_FIELD + 1; i++)
		strbuf_addch(&big, 'x');
	strbuf_addstr(&big, "\n7,fine\n");
	tu_write(F.dir, "b.csv", big.buf);
	strbuf_release(&big);

	struct jerror err = JERROR_INIT;
	capture_begin();
	enum jerr rc = connect_app("b.csv", NULL, NULL, &err);
	char *log = capture_end();
	assert_int_equal(rc, JERR_OK);
	const char *d = F.dir;
	char *want = arena_printf(
		&F.a,
		"joey: warning: %s/b.csv:3:7: bad row skipped: expected 2 fields, found 3\n"
		"joey: warning: %s/b.csv:4:1: bad row skipped: expected 2 fields, found 1\n"
		"joey: warning: %s/b.csv:5:5: bad row skipped: field 2: quote inside an unquoted field\n"
		"joey: warning: %s/b.csv:6:3: bad row skipped: field 2: field is not valid UTF-8\n"
		"joey: warning: %s/b.csv:7:3: bad row skipped: field 2: field is longer than the limit\n"
		"joey: warning: app \"files\": skipped 5 bad rows in \"%s/b.csv\" (2 rows loaded)\n",
		d, d, d, d, d, d);
	assert_string_equal(log, want);
	free(log);
	struct cfg_source *src = source("b", NULL, "id", true, PROP_INTEGER, 1,
					prop("name", PROP_STRING, "name", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#1:[\"ok\"]\n#7:[\"fine\"]\n");

	struct strbuf desc = STRBUF_INIT;
	assert_int_equal(source_csv.describe(F.conn, src, &desc, &err), JERR_OK);
	want = arena_printf(&F.a, "-- CSV \"%s/b.csv\" (2 rows, 5 bad rows skipped) loaded into a "
				  "temporary SQLite table \"b\"\n"
				  "SELECT \"id\", \"name\" FROM \"b\" AS \"joey$src\" ORDER BY "
				  "CAST(\"id\" AS INTEGER)\n",
			    d);
	assert_string_equal(desc.buf, want);
	strbuf_release(&desc);
}

static void test_bad_rows_fail(void **s)
{
	tu_write(F.dir, "b.csv", "id,name\n1,ok\n\n2,\"x\"y\n");
	struct jerror err = JERROR_INIT;
	assert_int_equal(connect_app("b.csv", NULL, "fail", &err), JERR_SOURCE_DATA);
	assert_null(F.conn);
	char *want = arena_printf(&F.a, "%s/b.csv:4:6: bad row: field 2: unexpected character "
					"after a closing quote",
				  F.dir);
	assert_string_equal(err.msg.buf, want);
	assert_string_equal(err.detail.buf, "app \"files\" has badRows \"fail\"");
	jerror_release(&err);
}

static void test_header_errors(void **s)
{
	struct {
		const char *text, *msg;
	} cases[] = {
		{ "", ": the CSV file is empty" },
		{ "\xef\xbb\xbf", ": the CSV file is empty" },
		{ "id,,x\n1,2,3\n", ":1:4: header column 2 has no name" },
		{ "id,Name,name\n", ":1:9: duplicate header column \"name\"" },
		{ "id,\"na\"me\n", ":1:8: bad header row: field 2: unexpected character "
				   "after a closing quote" },
		{ "id,n\xc3\n", ":1:4: bad header row: field 2: field is not valid UTF-8" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jerror err = JERROR_INIT;
		tu_write(F.dir, "h.csv", cases[i].text);
		assert_int_not_equal(connect_app("h.csv", NULL, NULL, &err), JERR_OK);
		assert_string_equal(err.msg.buf, arena_printf(&F.a, "%s/h.csv%s", F.dir, cases[i].msg));
		jerror_release(&err);
	}
}

static void test_directory(void **s)
{
	tu_write(F.dir, "users/b.csv", "id,name\n4,Dee\n2,Bo\n");
	tu_write(F.dir, "users/a.csv", "\xef\xbb\xbfid,name\r\n3,Cy\r\n1,Al\r\n");
	tu_write(F.dir, "users/notes.txt", "not,csv\n");
	tu_write(F.dir, "users/C.CSV", "id,name\n5,Ed");
	connect_ok("users/");
	struct cfg_source *src = source("u", "users", "id", true, PROP_INTEGER, 1,
					prop("name", PROP_STRING, "name", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#1:[\"Al\"]\n#2:[\"Bo\"]\n#3:[\"Cy\"]\n#4:[\"Dee\"]\n#5:[\"Ed\"]\n");

	/* exact without a sortColumn: the first row in file order (files in name order) */
	tu_write(F.dir, "ev/2.csv", "uid,what\n1,late\n");
	tu_write(F.dir, "ev/1.csv", "uid,what\n1,early\n1,mid\n");
	connect_ok("ev");
	src = source("ev", NULL, "uid", false, PROP_INTEGER, 1,
		     prop("first", PROP_STRING, "what", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#1:[\"early\"]\n");

	/* the headers must agree */
	tu_write(F.dir, "users/d.csv", "id,nom\n6,Fay\n");
	struct jerror err = JERROR_INIT;
	assert_int_equal(connect_app("users", NULL, NULL, &err), JERR_SOURCE_DATA);
	assert_string_equal(err.msg.buf,
			    arena_printf(&F.a, "%s/users/d.csv: header differs from the first "
					       "file of the directory",
					 F.dir));
	jerror_release(&err);

	/* an empty directory */
	tu_write(F.dir, "empty/readme.txt", "x");
	assert_int_equal(connect_app("empty", NULL, NULL, &err), JERR_SOURCE);
	assert_string_equal(err.msg.buf, arena_printf(&F.a, "app \"files\": directory \"%s/empty\" "
							    "has no *.csv files",
						      F.dir));
	jerror_release(&err);
}

static void test_options_and_missing_files(void **s)
{
	struct jerror err = JERROR_INIT;
	assert_int_equal(connect_app("nope.csv", NULL, NULL, &err), JERR_SOURCE);
	assert_string_equal(err.msg.buf, arena_printf(&F.a, "app \"files\": CSV file or directory "
							    "\"%s/nope.csv\" does not exist",
						      F.dir));
	jerror_release(&err);
	assert_int_equal(connect_app("", NULL, NULL, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, "app \"files\": option \"file\" is required");
	jerror_release(&err);

	tu_write(F.dir, "s.csv", "id;name\n2;\"B;o\"\n1;Al\n");
	assert_int_equal(connect_app("s.csv", ";;", NULL, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, "app \"files\": invalid delimiter \";;\"");
	jerror_release(&err);
	assert_int_equal(connect_app("s.csv", NULL, "ignore", &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, "app \"files\": invalid badRows \"ignore\"");
	jerror_release(&err);

	assert_int_equal(connect_app("s.csv", ";", "skip", &err), JERR_OK);
	struct cfg_source *src = source("s", "s", "id", true, PROP_INTEGER, 1,
					prop("name", PROP_STRING, "name", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#1:[\"Al\"]\n#2:[\"B;o\"]\n");

	tu_write(F.dir, "t.tsv", "id\tname\n1\tA l\n");
	assert_int_equal(connect_app("t.tsv", "\t", NULL, &err), JERR_OK);
	src = source("s", "t.tsv", "id", true, PROP_INTEGER, 1,
		     prop("name", PROP_STRING, "name", AGG_EXACT, NULL));
	EXPECT_ROWS(src, "#1:[\"A l\"]\n");

	/* check names a missing column with a suggestion */
	src = source("s", NULL, "id", true, PROP_INTEGER, 1,
		     prop("name", PROP_STRING, "nmae", AGG_EXACT, NULL));
	assert_int_equal(source_csv.check(F.conn, src, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, "source \"s\": column \"nmae\" does not exist in table \"t.tsv\"");
	assert_string_equal(err.hint.buf, "did you mean \"name\"?");
	jerror_release(&err);

	assert_ptr_equal(source_ops_for_app("csv"), &source_csv);
	assert_ptr_equal(source_ops_for_source_type("csv-import-table"), &source_csv);
}

static void test_many_rows_stream(void **s)
{
	char *path = arena_printf(&F.a, "%s/big.csv", F.dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("id,email,amount,note\n", f);
	/* keys in descending order: the connector must sort */
	for (int i = 200000; i >= 1; i--)
		fprintf(f, "%d,user%d@example.com,%d.5,\"note, %d\"\n", i, i, i % 1000, i);
	fclose(f);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	connect_ok("big.csv");
	struct cfg_source *src = source("big", NULL, "id", true, PROP_INTEGER, 3,
					prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL),
					prop("amount", PROP_FLOAT, "amount", AGG_EXACT, NULL),
					prop("note", PROP_STRING, "note", AGG_EXACT, NULL));
	struct source_cursor *cur;
	struct source_row *row;
	struct jerror err = JERROR_INIT;
	int64_t n = 0;
	assert_int_equal(source_csv.open_cursor(F.conn, src, NULL, &cur, &err), JERR_OK);
	while (source_cursor_next(cur, &row, &err) == JERR_OK && row) {
		n++;
		assert_int_equal(row->key.i, n);
		assert_int_equal(row->n_invalid, 0);
	}
	assert_int_equal(n, 200000);
	source_cursor_close(cur);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* about 0.5 s in a release build; generous for sanitizers */
	if (secs > 30)
		fail_msg("200k rows took %.1f s", secs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_quoting),
		cmocka_unit_test(test_reader_bad_records),
		cmocka_unit_test_setup_teardown(test_primary_exact_and_coercion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_kept_exactly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quoting_bom_crlf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secondary_aggregations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_numbers_written_as_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters_each_op, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_rows_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_rows_fail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_options_and_missing_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_rows_stream, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
