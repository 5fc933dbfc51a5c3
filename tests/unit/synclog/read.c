/*
 * read.c: tests of the sync log readers (src/synclog/db.h read_key) on SQLite always, and
 * on PostgreSQL ($JOEY_PG_URL) and MySQL/MariaDB ($JOEY_MYSQL_URL) when they are given
 * (scripts/test-servers.sh start): rows, limits, bound keys, absent tables, unreachable
 * servers, a read stopped at its time limit; the times they parse (synclog_time_parse).
 */
#include "support/testutil.h"

#include <libpq-fe.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "synclog/db.h"

#define KEY "o'brien \"\xc3\xbc\" \xe5\x90\x8d"
#define EVIL "x' OR '1'='1"

struct got {
	int n;
	int64_t run[32];
	int attempt[32];
	char op[32][16], status[32][16], changed[32][64], error[32][64], trigger[32][16];
	int64_t at[32];
	int stop_after; /* > 0: the callback fails at that row */
};

static enum jerr collect(void *ctx, const struct synclog_hit *h, struct jerror *err)
{
	struct got *g = ctx;
	if (g->stop_after && g->n == g->stop_after)
		return jerror_set(err, JERR_INTERRUPTED, "enough");
	assert_true(g->n < 32);
	g->run[g->n] = h->run_id;
	g->attempt[g->n] = h->attempt;
	g->at[g->n] = h->at_ms;
	snprintf(g->op[g->n], 16, "%s", h->operation);
	snprintf(g->status[g->n], 16, "%s", h->status);
	snprintf(g->changed[g->n], 64, "%s", h->changed ? h->changed : "NULL");
	snprintf(g->error[g->n], 64, "%s", h->error ? h->error : "NULL");
	snprintf(g->trigger[g->n], 16, "%s", h->trigger ? h->trigger : "NULL");
	g->n++;
	return JERR_OK;
}

/* 2026-12-06 10:00:00.000 UTC plus s seconds */
#define T0 1796551200000LL
#define AT(s) (T0 + (int64_t)(s) * 1000 + 123)

/* Write the rows every back end is tested with, through its writer. */
static void write_rows(const struct synclog_db_ops *ops, const struct cfg_app *app, const char *root,
		       const char *prefix)
{
	struct synclog_db *c = NULL;
	struct jerror err = JERROR_INIT;
	if (ops->connect(app, root, prefix, &c, &err)) {
		jerror_print(stderr, &err);
		fail();
	}
	struct synclog_row rows[] = {
		{ 1, "d", slice_of(KEY), "create", "[\"email\",\"+VIP\"]", "confirmed", NULL, NULL, 1, AT(1) },
		{ 2, "d", slice_of(KEY), "update", "[\"email\"]", "confirmed", NULL, NULL, 1, AT(2) },
		{ 3, "d", slice_of(KEY), "update", "[\"ltv\"]", "failed", "rejected", "bad ltv", 1, AT(3) },
		{ 4, "d", slice_of(KEY), "update", "[\"ltv\"]", "confirmed", NULL, NULL, 2, AT(4) },
		{ 5, "d", slice_of(KEY), "delete", NULL, "confirmed", NULL, NULL, 1, AT(5) },
		/* not K's, or not d's */
		{ 5, "other", slice_of(KEY), "delete", NULL, "confirmed", NULL, NULL, 1, AT(6) },
		{ 5, "d", slice_of("o'brien"), "update", NULL, "confirmed", NULL, NULL, 1, AT(7) },
		{ 5, "d", slice_of(EVIL), "create", "[]", "confirmed", NULL, NULL, 1, AT(8) },
	};
	if (ops->write_records(c, rows, sizeof(rows) / sizeof(rows[0]), &err)) {
		jerror_print(stderr, &err);
		fail();
	}
	struct synclog_run run = { .run_id = 2, .destination = "d", .model = "users", .trigger = "schedule",
				   .status = "success", .started_ms = AT(0), .finished_ms = AT(3), .records_read = 10,
				   .log_status = "complete" };
	assert_int_equal(ops->write_run(c, &run, &err), JERR_OK);
	ops->close(c);
	jerror_release(&err);
}

/* What every back end must read back (the tables written by write_rows). */
static void check_reads(const struct synclog_db_ops *ops, const struct cfg_app *app, const char *root,
			const char *prefix)
{
	struct jerror err = JERROR_INIT;
	struct got g = { 0 };

	/* before anything was written: no rows, no error */
	assert_int_equal(ops->read_key(app, root, prefix, "d", slice_of(KEY), 20, collect, &g, &err), JERR_OK);
	assert_int_equal(g.n, 0);

	write_rows(ops, app, root, prefix);
	if (ops->read_key(app, root, prefix, "d", slice_of(KEY), 20, collect, &g, &err)) {
		jerror_print(stderr, &err);
		fail();
	}
	/* K's rows of d only, newest first */
	assert_int_equal(g.n, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(g.run[i], 5 - i);
		assert_int_equal(g.at[i], AT(5 - i));
	}
	assert_string_equal(g.op[0], "delete");
	assert_string_equal(g.changed[0], "NULL");
	assert_int_equal(g.attempt[1], 2);
	assert_string_equal(g.status[2], "failed");
	assert_string_equal(g.error[2], "bad ltv");
	assert_string_equal(g.changed[3], "[\"email\"]");
	assert_string_equal(g.trigger[3], "schedule"); /* run 2 has a summary */
	assert_string_equal(g.trigger[0], "NULL");
	assert_string_equal(g.op[4], "create");
	assert_string_equal(g.changed[4], "[\"email\",\"+VIP\"]");

	/* the limit */
	memset(&g, 0, sizeof(g));
	assert_int_equal(ops->read_key(app, root, prefix, "d", slice_of(KEY), 2, collect, &g, &err), JERR_OK);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.run[1], 4);

	/* a key that is SQL is a value: its own row only */
	memset(&g, 0, sizeof(g));
	assert_int_equal(ops->read_key(app, root, prefix, "d", slice_of(EVIL), 20, collect, &g, &err), JERR_OK);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.op[0], "create");
	memset(&g, 0, sizeof(g));
	assert_int_equal(ops->read_key(app, root, prefix, "d' OR '1'='1", slice_of(KEY), 20, collect, &g, &err),
			 JERR_OK);
	assert_int_equal(g.n, 0);

	/* the callback's failure stops the read and is returned */
	memset(&g, 0, sizeof(g));
	g.stop_after = 2;
	assert_int_equal(ops->read_key(app, root, prefix, "d", slice_of(KEY), 20, collect, &g, &err),
			 JERR_INTERRUPTED);
	assert_int_equal(g.n, 2);
	jerror_release(&err);
}

/*
 * A log whose read takes far longer than SYNCLOG_READ_TIMEOUT_MS (the caller made
 * <prefix>sync_records a view that sleeps or counts for long): JERR_IO within a few
 * seconds, saying so.
 */
static void check_slow(const struct synclog_db_ops *ops, const struct cfg_app *app, const char *root,
		       const char *prefix, const char *says)
{
	struct jerror err = JERROR_INIT;
	struct got g = { 0 };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ops->read_key(app, root, prefix, "d", slice_of("k"), 20, collect, &g, &err), JERR_IO);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "%s: a slow read stopped after %.2f s: %s (%s)\n", app->type, took, err.msg.buf,
		err.detail.buf ? err.detail.buf : "");
	assert_true(took < 8);
	assert_non_null(strstr(err.msg.buf, app->id));
	if (says)
		assert_non_null(strstr(err.detail.len ? err.detail.buf : err.msg.buf, says));
	jerror_release(&err);
}

static struct cfg_option *opt(struct cfg_option *o, const char *key, enum opt_kind kind, const char *str)
{
	*o = (struct cfg_option){ .key = key, .kind = kind, .str = str };
	return o + 1;
}

/* ---- SQLite ---- */

static void test_sqlite(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp();
	struct cfg_option items[1];
	opt(items, "file", OPT_STRING, "log.db");
	struct cfg_app app = { .id = "logdb", .type = "sqlite", .options = { items, 1 } };
	const struct synclog_db_ops *ops = synclog_db_for_app("sqlite");
	struct jerror err = JERROR_INIT;
	struct got g = { 0 };
	check_reads(ops, &app, dir, "t_");

	/* a file that is not a database: JERR_IO naming it */
	tu_write(dir, "junk.db", "this is not an SQLite database, only some text that is long enough to be read");
	/* a read that takes too long is stopped */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "sqlite3 %s/slow.db \"CREATE TABLE s_sync_runs (destination, run_id, run_trigger); "
		 "CREATE VIEW s_sync_records AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
		 "WHERE i < 2000000000) SELECT 'd' AS destination, i AS run_id, 'x' || i AS record_key, 1 AS attempt, "
		 "'update' AS operation, NULL AS changed_fields, 'confirmed' AS status, NULL AS error_code, "
		 "NULL AS error_message, '2026-01-01 00:00:00.000' AS logged_at FROM c\"", dir);
	assert_int_equal(tu_run(cmd, NULL), 0);
	items[0].str = "slow.db";
	check_slow(ops, &app, dir, "s_", "interrupted");
	items[0].str = "junk.db";
	assert_int_equal(ops->read_key(&app, dir, "t_", "d", slice_of(KEY), 20, collect, &g, &err), JERR_IO);
	assert_non_null(strstr(err.msg.buf, "junk.db"));
	assert_non_null(strstr(err.msg.buf, "sync log app \"logdb\""));
	/* a file that is not there: no run wrote the log yet, and reading does not create it */
	items[0].str = "none.db";
	assert_int_equal(ops->read_key(&app, dir, "t_", "d", slice_of(KEY), 20, collect, &g, &err), JERR_OK);
	char path[512];
	snprintf(path, sizeof(path), "%s/none.db", dir);
	assert_null(tu_read(path));
	assert_int_equal(g.n, 0);
	jerror_release(&err);
	tu_rmtree(dir);
	free(dir);
}

/* ---- PostgreSQL ---- */

static char pg_user[128], pg_password[128], pg_host[128], pg_port[16], pg_db[128];

static bool pg_url(void)
{
	const char *url = getenv("JOEY_PG_URL"), *p = url ? strstr(url, "://") : NULL;
	return p && sscanf(p + 3, "%127[^:]:%127[^@]@%127[^:]:%15[^/]/%127[^?]", pg_user, pg_password, pg_host,
			   pg_port, pg_db) == 5;
}

static void pg_sql(const char *sql)
{
	PGconn *pg = PQconnectdb(getenv("JOEY_PG_URL"));
	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	PGresult *r = PQexec(pg, sql);
	assert_true(PQresultStatus(r) == PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(pg);
}

static void test_postgres(void **state)
{
	(void)state;
	if (!pg_url())
		skip();
	pg_sql("SET client_min_messages = warning; DROP SCHEMA IF EXISTS joey_unit_logread CASCADE; "
	       "CREATE SCHEMA joey_unit_logread");
	struct cfg_option items[6], *o = items;
	o = opt(o, "host", OPT_STRING, pg_host);
	o = opt(o, "port", OPT_NUMBER, pg_port);
	o = opt(o, "database", OPT_STRING, pg_db);
	o = opt(o, "user", OPT_STRING, pg_user);
	o = opt(o, "password", OPT_STRING, pg_password);
	o = opt(o, "schema", OPT_STRING, "joey_unit_logread");
	struct cfg_app app = { .id = "pglog", .type = "postgres", .options = { items, (size_t)(o - items) } };
	const struct synclog_db_ops *ops = synclog_db_for_app("postgres");
	check_reads(ops, &app, NULL, "t_");
	pg_sql("CREATE TABLE joey_unit_logread.s_sync_runs (destination TEXT, run_id BIGINT, run_trigger TEXT); "
	       "CREATE VIEW joey_unit_logread.s_sync_records AS SELECT 'd'::text AS destination, 1::bigint AS run_id, "
	       "'k'::text AS record_key, 1 AS attempt, 'update'::text AS operation, NULL::text AS changed_fields, "
	       "'confirmed'::text AS status, NULL::text AS error_code, NULL::text AS error_message, now() AS logged_at "
	       "FROM pg_sleep(30)");
	check_slow(ops, &app, NULL, "s_", "57014");

	/* a server that is not there: JERR_IO at once, naming the app */
	struct jerror err = JERROR_INIT;
	struct got g = { 0 };
	items[1].str = "1";
	time_t t0 = time(NULL);
	assert_int_equal(ops->read_key(&app, NULL, "t_", "d", slice_of(KEY), 20, collect, &g, &err), JERR_IO);
	assert_true(time(NULL) - t0 < 5);
	assert_non_null(strstr(err.msg.buf, "cannot connect to PostgreSQL"));
	jerror_release(&err);
	pg_sql("SET client_min_messages = warning; DROP SCHEMA joey_unit_logread CASCADE");
}

/* ---- MySQL / MariaDB ---- */

static char my_user[128], my_password[128], my_host[128], my_port[16], my_db[128];

static bool my_url(void)
{
	const char *url = getenv("JOEY_MYSQL_URL"), *p = url ? strstr(url, "://") : NULL;
	return p && sscanf(p + 3, "%127[^:]:%127[^@]@%127[^:]:%15[^/]/%127[^?]", my_user, my_password, my_host,
			   my_port, my_db) == 5;
}

static void my_sql(const char *sql)
{
	MYSQL *my = mysql_init(NULL);
	assert_non_null(mysql_real_connect(my, my_host, my_user, my_password, my_db,
					   (unsigned)strtoul(my_port, NULL, 10), NULL, 0));
	assert_int_equal(mysql_query(my, sql), 0);
	mysql_close(my);
}

static void test_mysql(void **state)
{
	(void)state;
	if (!my_url())
		skip();
	my_sql("DROP TABLE IF EXISTS ut_read_sync_records");
	my_sql("DROP TABLE IF EXISTS ut_read_sync_runs");
	my_sql("DROP TABLE IF EXISTS ut_read_sync_meta");
	struct cfg_option items[5], *o = items;
	o = opt(o, "host", OPT_STRING, my_host);
	o = opt(o, "port", OPT_NUMBER, my_port);
	o = opt(o, "database", OPT_STRING, my_db);
	o = opt(o, "user", OPT_STRING, my_user);
	o = opt(o, "password", OPT_STRING, my_password);
	struct cfg_app app = { .id = "mylog", .type = "mysql", .options = { items, (size_t)(o - items) } };
	const struct synclog_db_ops *ops = synclog_db_for_app("mysql");
	check_reads(ops, &app, NULL, "ut_read_");
	my_sql("DROP VIEW IF EXISTS ut_slow_sync_records");
	my_sql("DROP TABLE IF EXISTS ut_slow_sync_runs");
	my_sql("CREATE TABLE ut_slow_sync_runs (destination VARCHAR(191), run_id BIGINT, run_trigger VARCHAR(32))");
	my_sql("CREATE VIEW ut_slow_sync_records AS SELECT 'd' AS destination, 1 AS run_id, 'k' AS record_key, "
	       "1 AS attempt, 'update' AS operation, NULL AS changed_fields, 'confirmed' AS status, NULL AS error_code, "
	       "NULL AS error_message, NOW(3) AS logged_at FROM (SELECT SLEEP(30) AS z) s");
	check_slow(ops, &app, NULL, "ut_slow_", NULL);
	my_sql("DROP VIEW ut_slow_sync_records");
	my_sql("DROP TABLE ut_slow_sync_runs");

	struct jerror err = JERROR_INIT;
	struct got g = { 0 };
	items[1].str = "1";
	time_t t0 = time(NULL);
	assert_int_equal(ops->read_key(&app, NULL, "ut_read_", "d", slice_of(KEY), 20, collect, &g, &err), JERR_IO);
	assert_true(time(NULL) - t0 < 5);
	assert_non_null(strstr(err.msg.buf, "cannot connect to MySQL"));
	jerror_release(&err);
	my_sql("DROP TABLE ut_read_sync_records");
	my_sql("DROP TABLE ut_read_sync_runs");
	my_sql("DROP TABLE ut_read_sync_meta");
}

/* ---- times ---- */

static void test_time_parse(void **state)
{
	(void)state;
	char buf[32];
	int64_t ms;
	const int64_t cases[] = { 0, 1, 999, 86400000LL - 1, T0, AT(59), 951782400000LL /* 2000-02-29 */,
				  4102444799999LL /* 2099-12-31 23:59:59.999 */ };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		synclog_time_text(cases[i], buf, sizeof(buf));
		assert_true(synclog_time_parse(buf, &ms));
		assert_int_equal(ms, cases[i]);
	}
	/* MySQL's six fraction digits, PostgreSQL's zone, none at all */
	assert_true(synclog_time_parse("2026-12-06 10:00:00.123456", &ms));
	assert_int_equal(ms, T0 + 123);
	assert_true(synclog_time_parse("2026-12-06 10:00:00.5+00", &ms));
	assert_int_equal(ms, T0 + 500);
	assert_true(synclog_time_parse("2026-12-06 10:00:00", &ms));
	assert_int_equal(ms, T0);
	assert_false(synclog_time_parse("2026-13-06 10:00:00", &ms));
	assert_false(synclog_time_parse("2026-12-06 10:00", &ms));
	assert_false(synclog_time_parse("2026-12-06 10:00:00+02", &ms));
	assert_false(synclog_time_parse("yesterday", &ms));
	assert_false(synclog_time_parse(NULL, &ms));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_sqlite),
		cmocka_unit_test(test_postgres),
		cmocka_unit_test(test_mysql),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
