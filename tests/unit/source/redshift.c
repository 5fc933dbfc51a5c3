/* redshift.c: tests for the Redshift connector (src/source/postgres.c with the Redshift dialect) and sql_redshift_lint; on the PostgreSQL test server ($JOEY_PG_URL) in strict mode. */
#include "support/testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/arena.h"
#include "base/strbuf.h"
#include "source/source.h"
#include "source/sqlgen.h"

/*
 * There is no local Redshift (warehouses.md 4.3): the connector runs against
 * $JOEY_PG_URL with JOEY_REDSHIFT_STRICT=1, where every statement it sends is linted
 * first and one using what Redshift lacks aborts the process. Tests work in a fresh
 * schema "joey_rs_unit"; without the URL the server tests skip.
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

/* ---- the lint: no server ---- */

static void test_lint(void **s)
{
	(void)s;
	static const struct {
		const char *sql, *found;
	} cases[] = {
		{ "COPY (SELECT 1) TO STDOUT", "COPY" },
		{ "copy (select 1) to stdout", "COPY" },
		{ "SELECT DISTINCT ON (a) a FROM t", "DISTINCT ON" },
		{ "SELECT DISTINCT\n  ON (a) a FROM t", "DISTINCT ON" },
		{ "SELECT string_agg(a, ',') FROM t", "STRING_AGG" },
		{ "SELECT (ARRAY_AGG(a ORDER BY b))[1] FROM t", "ARRAY_AGG" },
		{ "SELECT json_agg(a) FROM t", "json_agg" },
		{ "SELECT ARRAY[1,2]", "an array constructor" },
		{ "SELECT 1 WHERE a = ANY($1)", "= ANY(array)" },
		{ "SELECT 1 WHERE a = any ($1)", "= ANY(array)" },
		{ "SELECT (x)[1] FROM t", "an array subscript" },
		{ "SELECT COUNT(*) FILTER (WHERE a) FROM t", "an aggregate FILTER clause" },
		{ "SELECT ROW_NUMBER() OVER (ORDER BY a DESC NULLS LAST) FROM t", "NULLS LAST" },
		{ "SELECT 1 ORDER BY a NULLS FIRST", "NULLS FIRST" },
		{ "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", "ON CONFLICT" },
		{ "SELECT a::text FROM t", "::text (VARCHAR(256) in Redshift)" },
		{ "SELECT CAST(a AS TEXT) FROM t", "CAST(... AS TEXT) (VARCHAR(256) in Redshift)" },
		{ "SELECT a FROM t ORDER BY a COLLATE \"C\"", "COLLATE" },
		{ "DECLARE c CURSOR FOR SELECT 1", "a cursor" },
		{ "SELECT generate_series(1, 3)", "GENERATE_SERIES" },
		{ "SELECT 1 WHERE a IS DISTINCT FROM b", "IS DISTINCT FROM" },
		{ "SELECT ctid FROM t", "ctid" },
		{ "SELECT md5(CAST(r AS VARCHAR)) FROM t r", "a row digest" },
		{ "SET client_connection_check_interval = 10000", "client_connection_check_interval" },
		{ "SELECT $32768", "more than 32767 parameters" },
		/* not flagged: literals, quoted identifiers, comments, longer words */
		{ "SELECT 'COPY (x) TO STDOUT, string_agg, ARRAY[1]' FROM t", NULL },
		{ "SELECT \"copy\", \"ctid\", \"array_agg\" FROM t", NULL },
		{ "SELECT a -- COPY DISTINCT ON\nFROM t", NULL },
		{ "SELECT a /* string_agg( */ FROM t", NULL },
		{ "SELECT copy_count, my_ctid, arrayish FROM t", NULL },
		{ "SELECT 'it''s COPY' FROM t", NULL },
		{ "SELECT CAST(a AS VARCHAR(65535)) FROM t WHERE b = $32767", NULL },
		{ "SELECT a FROM t UNION ALL (SELECT b FROM u)", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = sql_redshift_lint(cases[i].sql);
		if ((got == NULL) != (cases[i].found == NULL) || (got && strcmp(got, cases[i].found)))
			fail_msg("lint(%s): expected %s, got %s", cases[i].sql, cases[i].found ? cases[i].found : "nothing",
				 got ? got : "nothing");
	}
}

/* ---- the PostgreSQL server, Redshift mode ---- */

static bool parse_url(const char *url)
{
	const char *p = strstr(url, "://");
	return p && sscanf(p + 3, "%127[^:]:%127[^@]@%127[^:]:%15[^/]/%127s", F.user, F.password, F.host, F.port,
			   F.database) == 5;
}

static void db_exec(const char *sql)
{
	PGconn *pg = PQconnectdb(F.url);
	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	PQclear(PQexec(pg, "SET client_min_messages = warning"));
	PGresult *r = PQexec(pg, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("sql failed: %s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(pg);
}

static struct cfg_option *opt(struct cfg_option *o, const char *key, enum opt_kind kind, const char *str)
{
	o->key = key;
	o->kind = kind;
	o->str = str;
	return o + 1;
}

static void make_app(struct cfg_app *app, const char *port, const char *database, const char *password)
{
	struct cfg_option *items = arena_zalloc(&F.a, 8 * sizeof(*items)), *o = items;
	o = opt(o, "host", OPT_STRING, F.host);
	if (port)
		o = opt(o, "port", OPT_NUMBER, port);
	o = opt(o, "database", OPT_STRING, database);
	o = opt(o, "user", OPT_STRING, F.user);
	o = opt(o, "password", OPT_STRING, password);
	o = opt(o, "schema", OPT_STRING, "joey_rs_unit");
	*app = (struct cfg_app){ .id = "rs", .name = "rs", .type = "redshift" };
	app->options = (struct cfg_options){ items, (size_t)(o - items) };
}

static int setup(void **s)
{
	(void)s;
	memset(&F, 0, sizeof(F));
	F.url = getenv("JOEY_PG_URL");
	if (!F.url || !*F.url || !parse_url(F.url)) {
		F.url = NULL;
		return 0;
	}
	setenv("JOEY_REDSHIFT_STRICT", "1", 1);
	arena_init(&F.a);
	db_exec("DROP SCHEMA IF EXISTS joey_rs_unit CASCADE; CREATE SCHEMA joey_rs_unit;"
		"CREATE TABLE joey_rs_unit.users(id INTEGER, email VARCHAR(100), name VARCHAR(100), active BOOLEAN, "
		"score DOUBLE PRECISION, created TIMESTAMP, price NUMERIC(10,2));"
		"INSERT INTO joey_rs_unit.users VALUES"
		" (3, 'c@x.io', 'Cy', true, 1.5, '2001-02-03 04:05:06', 3.50),"
		" (1, 'a@x.io', 'Al', false, 2.25, NULL, 1),"
		" (2, 'bad-email', 'Bo', NULL, NULL, '1970-01-01 00:00:01', NULL);"
		"CREATE TABLE joey_rs_unit.events(uid INTEGER, flag BOOLEAN, item VARCHAR(20), ts INTEGER);"
		"INSERT INTO joey_rs_unit.events VALUES (1, true, 'hat', 100), (1, false, 'cap', 300),"
		" (1, true, 'bag', NULL), (3, false, 'pin', 50), (3, true, 'pen', 50), (NULL, true, 'x', 1);");
	make_app(&F.app, F.port, F.database, F.password);
	F.model = (struct cfg_model){ .id = "users", .name = "users", .type = "profile" };
	struct jerror err = JERROR_INIT;
	enum jerr rc = source_redshift.connect(&F.app, "/", &F.conn, &err);
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
	source_redshift.disconnect(F.conn);
	db_exec("DROP SCHEMA IF EXISTS joey_rs_unit CASCADE");
	arena_release(&F.a);
	unsetenv("JOEY_REDSHIFT_STRICT");
	return 0;
}

#define FIXTURE_OPS source_redshift
#define FIXTURE_TYPE "redshift-import-table"
#include "fixture.h"

#define NEED_SERVER()         \
	do {                  \
		if (!F.url)   \
			skip(); \
	} while (0)

static void test_rows_and_picks(void **s)
{
	(void)s;
	NEED_SERVER();
	struct cfg_source *u = source("users_src", "users", "id", true, PROP_INTEGER, 5,
				      prop("email", PROP_EMAIL, "email", AGG_EXACT, NULL),
				      prop("active", PROP_BOOLEAN, "active", AGG_EXACT, NULL),
				      prop("score", PROP_FLOAT, "score", AGG_EXACT, NULL),
				      prop("created", PROP_DATE, "created", AGG_EXACT, NULL),
				      prop("price", PROP_FLOAT, "price", AGG_EXACT, NULL));
	EXPECT_ROWS(u, "#1:[\"a@x.io\",false,2.25,null,1]\n"
		       "#2:[null,null,null,\"1970-01-01T00:00:01.000Z\",null]!1\n"
		       "#3:[\"c@x.io\",true,1.5,\"2001-02-03T04:05:06.000Z\",3.5]\n");
	/* a boolean pick (no MAX(boolean)), NULL sort keys smallest, ties broken by the value */
	struct cfg_property *last_flag = prop("last_flag", PROP_BOOLEAN, "flag", AGG_MOST_RECENT, "ts");
	struct cfg_property *first_item = prop("first_item", PROP_STRING, "item", AGG_LEAST_RECENT, "ts");
	struct cfg_property *hat = prop("hat", PROP_STRING, "item", AGG_MOST_RECENT, "ts");
	filter(hat, "item", FOP_SUBSTRING, "A");
	struct cfg_property *n = prop("n", PROP_INTEGER, "item", AGG_COUNT, NULL);
	filter(n, "flag", FOP_EQ, "true");
	struct cfg_property *any = prop("exact", PROP_STRING, "item", AGG_EXACT, NULL);
	struct cfg_source *ev = source("events", "events", "uid", false, PROP_INTEGER, 5, last_flag, first_item, hat,
				       n, any);
	EXPECT_ROWS(ev, "#1:[false,\"bag\",\"cap\",2,\"bag\"]\n"
			"#3:[true,\"pen\",null,1,\"pen\"]\n");
	/* no array aggregate in Redshift: a clear config error */
	struct cfg_property *arr = prop("items", PROP_STRING, "item", AGG_EXACT, NULL);
	arr->is_array = true;
	struct cfg_source *ea = source("events", "events", "uid", false, PROP_INTEGER, 1, arr);
	struct source_cursor *cur = NULL;
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_redshift.open_cursor(F.conn, ea, NULL, &cur, &err), JERR_CONFIG);
	assert_non_null(strstr(err.msg.buf, "array properties are not supported on Redshift"));
	jerror_release(&err);
}

static void test_statements_pass_the_lint(void **s)
{
	(void)s;
	NEED_SERVER();
	struct cfg_property *p1 = prop("a", PROP_STRING, "item", AGG_MOST_RECENT, "ts");
	filter(p1, "item", FOP_NOT_SUBSTRING, "x%_\\");
	struct cfg_property *p2 = prop("b", PROP_FLOAT, "ts", AGG_AVERAGE, NULL);
	filter(p2, "flag", FOP_NE, NULL);
	struct cfg_property *p3 = prop("c", PROP_INTEGER, "ts", AGG_SUM, NULL);
	struct cfg_filter *f = filter(p3, "item", FOP_IN, NULL);
	static const char *const list[] = { "hat", "pin" };
	f->match_list = (const char **)list;
	f->n_match_list = 2;
	struct cfg_property *p4 = prop("d", PROP_STRING, "item", AGG_EXACT, "ts");
	struct cfg_source *ev = source("events", "events", "uid", false, PROP_INTEGER, 4, p1, p2, p3, p4);
	struct strbuf out = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	assert_int_equal(source_redshift.describe(F.conn, ev, &out, &err), JERR_OK);
	const char *bad = sql_redshift_lint(out.buf);
	if (bad)
		fail_msg("the Redshift statement uses %s: %s", bad, out.buf);
	assert_non_null(strstr(out.buf, "ROW_NUMBER() OVER (PARTITION BY"));
	assert_non_null(strstr(out.buf, "VARCHAR(65535)"));
	assert_null(strstr(out.buf, "ctid"));
	/* and it runs, incremental and ranged too */
	struct source_read rd = { .since_column = "ts", .since_value = "100" };
	struct source_cursor *cur = NULL;
	struct source_row *row;
	assert_int_equal(source_redshift.open_cursor(F.conn, ev, &rd, &cur, &err), JERR_OK);
	int rows = 0;
	while (source_cursor_next(cur, &row, &err) == JERR_OK && row)
		rows++;
	source_cursor_close(cur);
	assert_int_equal(rows, 1);
	/* a number mark on a VARCHAR column compares as numbers ('1000' >= 999), in the lint */
	db_exec("CREATE TABLE joey_rs_unit.inc(id INTEGER, ver VARCHAR(20)); INSERT INTO joey_rs_unit.inc VALUES "
		"(1, '998'), (2, '999'), (3, '1000'), (4, NULL)");
	struct cfg_source *inc = source("inc", "inc", "id", true, PROP_INTEGER, 1,
					prop("ver", PROP_STRING, "ver", AGG_EXACT, NULL));
	struct source_read ri = { .since_column = "ver", .since_value = "999" };
	assert_int_equal(source_redshift.open_cursor(F.conn, inc, &ri, &cur, &err), JERR_OK);
	rows = 0;
	while (source_cursor_next(cur, &row, &err) == JERR_OK && row)
		rows++;
	source_cursor_close(cur);
	assert_int_equal(rows, 2);
	/* the warehouse diff needs PostgreSQL's arrays and row digests: refused */
	struct rkey k = { .is_int = true, .i = 1, .text = slice_of("1") };
	struct source_read wh = { .keys = &k, .n_keys = 1 };
	assert_int_equal(source_redshift.open_cursor(F.conn, ev, &wh, &cur, &err), JERR_CONFIG);
	strbuf_release(&out);
	jerror_release(&err);
}

/* Strict mode is real: a statement with a construct Redshift lacks stops the process. */
static void test_strict_mode_aborts(void **s)
{
	(void)s;
	NEED_SERVER();
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 2);
		struct cfg_source *q = source("q", NULL, "uid", true, PROP_INTEGER, 1,
					      prop("items", PROP_STRING, "items", AGG_EXACT, NULL));
		q->is_query = true;
		q->query = "SELECT uid, string_agg(item, ',') AS items FROM events GROUP BY uid";
		struct source_cursor *cur = NULL;
		struct jerror err = JERROR_INIT;
		(void)source_redshift.open_cursor(F.conn, q, NULL, &cur, &err);
		_exit(0); /* not reached in strict mode */
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void expect_connect_error(const char *port, const char *db, const char *password, const char *in_msg,
				 const char *in_hint)
{
	struct cfg_app app;
	void *conn = NULL;
	struct jerror err = JERROR_INIT;
	make_app(&app, port, db, password);
	assert_int_equal(source_redshift.connect(&app, "/", &conn, &err), JERR_SOURCE);
	struct strbuf all = STRBUF_INIT;
	strbuf_addf(&all, "%s|%s|%s", err.msg.buf, err.detail.buf, err.hint.buf);
	if (!strstr(all.buf, in_msg) || !strstr(err.hint.buf, in_hint))
		fail_msg("expected \"%s\" and hint \"%s\", got: %s", in_msg, in_hint, all.buf);
	assert_null(strstr(all.buf, password));
	strbuf_release(&all);
	jerror_release(&err);
}

static void test_connect_errors(void **s)
{
	(void)s;
	NEED_SERVER();
	expect_connect_error(F.port, F.database, "wrong-pw-123", "cannot connect to Redshift", "\"password\"");
	expect_connect_error(F.port, "no_such_db", F.password, "database \"no_such_db\"", "\"database\" option");
	/* no port: Redshift's 5439 (PGPORT unset), named in the message */
	const char *pgport = getenv("PGPORT");
	char *keep = pgport ? strdup(pgport) : NULL;
	unsetenv("PGPORT");
	expect_connect_error(NULL, F.database, F.password, ":5439", "host and port");
	if (keep) {
		setenv("PGPORT", keep, 1);
		free(keep);
	}
}

/*
 * sample and sample_query (the UI's source editor) under strict mode: their statements
 * pass the lint (a COLLATE would abort here), and a write through a preview changes nothing.
 */
static void test_sample(void **s)
{
	(void)s;
	NEED_SERVER();
	struct source_sample smp = { 0 };
	struct jerror err = JERROR_INIT;
	assert_non_null(source_redshift.sample);
	assert_non_null(source_redshift.sample_query);
	assert_int_equal(source_redshift.sample(F.conn, NULL, 5, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_tables, 2);
	assert_string_equal(smp.tables[0], "events");
	assert_string_equal(smp.tables[1], "users");
	source_sample_release(&smp);
	assert_int_equal(source_redshift.sample(F.conn, "users", 2, &smp, &err), JERR_OK);
	assert_int_equal(smp.n_columns, 7);
	assert_string_equal(smp.columns[0], "id");
	assert_int_equal(smp.n_rows, 2);
	source_sample_release(&smp);
	assert_int_equal(source_redshift.sample(F.conn, "nope", 2, &smp, &err), JERR_CONFIG);
	assert_string_equal(err.msg.buf, "app \"rs\" has no table \"nope\"");
	jerror_release(&err);
	source_sample_release(&smp);
	assert_int_equal(source_redshift.sample_query(F.conn, "SELECT id, name AS who FROM users ORDER BY id", 2, &smp,
						      &err), JERR_OK);
	assert_int_equal(smp.n_columns, 2);
	assert_string_equal(smp.columns[1], "who");
	assert_int_equal(smp.n_rows, 2);
	assert_string_equal(smp.cells[0], "1");
	assert_string_equal(smp.cells[1], "Al");
	source_sample_release(&smp);
	static const char *const writes[] = {
		"DELETE FROM users",
		"SELECT 1) AS a; DELETE FROM users; SELECT * FROM (SELECT 1",
	};
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		assert_int_equal(source_redshift.sample_query(F.conn, writes[i], 5, &smp, &err), JERR_SOURCE);
		assert_string_equal(err.msg.buf, "app \"rs\": the query cannot be read");
		jerror_release(&err);
		source_sample_release(&smp);
	}
	assert_int_equal(source_redshift.sample_query(F.conn, "SELECT COUNT(*) AS n FROM users", 5, &smp, &err),
			 JERR_OK);
	assert_string_equal(smp.cells[0], "3");
	source_sample_release(&smp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lint),
		cmocka_unit_test_setup_teardown(test_rows_and_picks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statements_pass_the_lint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_mode_aborts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
