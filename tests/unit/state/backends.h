/*
 * backends.h: the state tests' view of each back end (included by the tests in tests/unit/state).
 *
 * A test asks the current back end (B) for a fresh store (a path or a URL that does
 * not exist yet), opens it through state.h, and checks what the database holds with a
 * connection of its own (tb_exec, tb_int). SQLite stores are files in one temporary
 * directory; PostgreSQL stores are schemas "joey_ut_<pid>_<n>" in the database of
 * $JOEY_PG_URL, dropped by tb_cleanup. Without JOEY_PG_URL the PostgreSQL back end is
 * not available (tb_pg_url() is NULL) and its tests are skipped.
 */
#ifndef JOEY_TEST_STATE_BACKENDS_H
#define JOEY_TEST_STATE_BACKENDS_H

#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "state/state.h"

#define TB_UNUSED __attribute__((unused))

#define IK(n) ((struct rkey){ true, (n), SLICE_LIT(#n) })
#define TK(s) ((struct rkey){ false, 0, SLICE_LIT(s) })

enum tb_kind { TB_SQLITE, TB_PG };

struct tb {
	enum tb_kind kind;
	const char *name;
};

static const struct tb tb_sqlite = { TB_SQLITE, "sqlite" };
static const struct tb tb_pg = { TB_PG, "postgres" };

/* The back end the tests run against (set by main before each group). */
static const struct tb *B = &tb_sqlite;

static char *tb_dir;        /* SQLite stores live here */
static int tb_counter;
static char *tb_schemas[256]; /* PostgreSQL schemas to drop */
static int tb_n_schemas;

TB_UNUSED static const char *tb_pg_url(void)
{
	const char *u = getenv("JOEY_PG_URL");
	return u && *u ? u : NULL;
}

/* The schema name of a PostgreSQL store URL (after "schema="). */
TB_UNUSED static const char *tb_schema_of(const char *url)
{
	const char *s = strstr(url, "schema=");
	return s ? s + 7 : "joey";
}

/* A connection to $JOEY_PG_URL with search_path set to store's schema. */
TB_UNUSED static PGconn *tb_pg_connect(const char *store)
{
	PGconn *pg = PQconnectdb(tb_pg_url());
	struct strbuf sql = STRBUF_INIT;
	PGresult *r;
	if (PQstatus(pg) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(pg));
	strbuf_addf(&sql, "SET search_path = %s; SET client_min_messages = warning",
		    store ? tb_schema_of(store) : "public");
	r = PQexec(pg, sql.buf);
	PQclear(r);
	strbuf_release(&sql);
	return pg;
}

/* A fresh store of B that does not exist yet (malloc'd). */
TB_UNUSED static char *tb_fresh(void)
{
	struct strbuf sb = STRBUF_INIT;
	tb_counter++;
	if (B->kind == TB_SQLITE) {
		if (!tb_dir)
			tb_dir = tu_mkdtemp();
		strbuf_addf(&sb, "%s/s%d/state.db", tb_dir, tb_counter);
	} else {
		const char *url = tb_pg_url();
		strbuf_addf(&sb, "%s%sschema=joey_ut_%ld_%d", url, strchr(url, '?') ? "&" : "?",
			    (long)getpid(), tb_counter);
		if (tb_n_schemas < (int)ARRAY_SIZE(tb_schemas))
			tb_schemas[tb_n_schemas++] = xstrdup(tb_schema_of(sb.buf));
	}
	return strbuf_detach(&sb, NULL);
}

/* Run sql on store with a connection of its own (fails the test on error). */
TB_UNUSED static void tb_exec(const char *store, const char *sql)
{
	if (B->kind == TB_SQLITE) {
		sqlite3 *db = NULL;
		char *msg = NULL;
		assert_int_equal(sqlite3_open(store, &db), SQLITE_OK);
		sqlite3_busy_timeout(db, 5000);
		if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
			fail_msg("%s: %s", sql, msg);
		sqlite3_close(db);
	} else {
		PGconn *pg = tb_pg_connect(store);
		PGresult *r = PQexec(pg, sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("%s: %s", sql, PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(pg);
	}
}

/* First column of the first row of sql on store as an integer; -1 if no row. */
TB_UNUSED static int64_t tb_int(const char *store, const char *sql)
{
	int64_t v = -1;
	if (B->kind == TB_SQLITE) {
		sqlite3 *db = NULL;
		sqlite3_stmt *s = NULL;
		assert_int_equal(sqlite3_open(store, &db), SQLITE_OK);
		if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
			fail_msg("%s: %s", sql, sqlite3_errmsg(db));
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
		sqlite3_close(db);
	} else {
		PGconn *pg = tb_pg_connect(store);
		PGresult *r = PQexec(pg, sql);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("%s: %s", sql, PQresultErrorMessage(r));
		if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		PQfinish(pg);
	}
	return v;
}

/* The store exists: the file, or the schema. */
TB_UNUSED static bool tb_exists(const char *store)
{
	if (B->kind == TB_SQLITE) {
		struct stat sb;
		return stat(store, &sb) == 0;
	} else {
		struct strbuf sql = STRBUF_INIT;
		int64_t n;
		strbuf_addf(&sql, "SELECT count(*) FROM pg_namespace WHERE nspname = '%s'",
			    tb_schema_of(store));
		n = tb_int(NULL, sql.buf);
		strbuf_release(&sql);
		return n > 0;
	}
}

/* Tables and indexes of the store. */
TB_UNUSED static int64_t tb_objects(const char *store)
{
	if (B->kind == TB_SQLITE)
		return tb_int(store, "SELECT count(*) FROM sqlite_master");
	struct strbuf sql = STRBUF_INIT;
	int64_t n;
	strbuf_addf(&sql, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid ="
			  " c.relnamespace WHERE n.nspname = '%s'", tb_schema_of(store));
	n = tb_int(store, sql.buf);
	strbuf_release(&sql);
	return n;
}

/* Make store look like one written by a joey with schema version `version`. */
TB_UNUSED static void tb_make_version(const char *store, int version)
{
	struct strbuf sql = STRBUF_INIT;
	if (B->kind == TB_SQLITE) {
		strbuf_addf(&sql, "PRAGMA application_id = 0x4a4f4559; CREATE TABLE meta(key PRIMARY"
				  " KEY, value); INSERT INTO meta VALUES('schema_version', %d);",
			    version);
		char *dir = xstrdup(store);
		*strrchr(dir, '/') = '\0';
		mkdir(dir, 0755);
		free(dir);
	} else {
		const char *s = tb_schema_of(store);
		strbuf_addf(&sql, "CREATE SCHEMA %s; CREATE TABLE %s.meta(key TEXT PRIMARY KEY, value"
				  " TEXT NOT NULL); INSERT INTO %s.meta VALUES ('application_id',"
				  " '1246709081'), ('schema_version', '%d');",
			    s, s, s, version);
	}
	tb_exec(store, sql.buf);
	strbuf_release(&sql);
}

TB_UNUSED static struct state *tb_open(const char *store, enum state_open_mode mode)
{
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	if (state_open(store, mode, &st, &err) != JERR_OK)
		fail_msg("state_open(%s): %s / %s / %s", store, err.msg.buf, err.detail.buf,
			 err.hint.buf);
	jerror_release(&err);
	assert_non_null(st);
	return st;
}

TB_UNUSED static void tb_put(struct state *st, const char *dest, struct rkey key,
			     const char *payload, bool in_scope)
{
	struct jerror err = JERROR_INIT;
	unsigned char h[STATE_HASH_LEN];
	state_hash(payload, strlen(payload), h);
	if (state_put(st, dest, &key, slice_of(payload), h, in_scope, &err) != JERR_OK)
		fail_msg("state_put: %s / %s", err.msg.buf, err.detail.buf);
	jerror_release(&err);
}

/* ---- export and import ---- */

/* Every row of a dump as text lines, "table|v1|v2|..." (hashes and keys typed). */
TB_UNUSED static enum jerr dump_line(void *ctx, const struct state_table *t, const struct state_value *row,
			   struct jerror *err)
{
	struct strbuf *out = ctx;
	(void)err;
	strbuf_addstr(out, t->name);
	for (size_t i = 0; i < t->n_cols; i++) {
		const struct state_value *v = &row[i];
		strbuf_addch(out, '|');
		if (v->kind == STATE_VAL_NULL)
			strbuf_addstr(out, "NULL");
		else if (v->kind == STATE_VAL_INT)
			strbuf_addf(out, "#%lld", (long long)v->i);
		else if (t->cols[i].type == STATE_COL_HASH)
			for (size_t j = 0; j < v->s.len; j++)
				strbuf_addf(out, "%02x", (unsigned char)v->s.ptr[j]);
		else
			strbuf_addf(out, "'%.*s'", (int)v->s.len, v->s.ptr);
	}
	strbuf_addch(out, '\n');
	return JERR_OK;
}

struct loader {
	struct state *st;
	int n;
};

TB_UNUSED static enum jerr load_line(void *ctx, const struct state_table *t, const struct state_value *row,
			   struct jerror *err)
{
	struct loader *l = ctx;
	l->n++;
	return state_load_row(l->st, t, row, err);
}

/* A store with something in every table. */
TB_UNUSED static void fill(struct state *st)
{
	struct jerror err = JERROR_INIT;
	struct rkey k2 = IK(2), kx = TK("x\xc3\xa9"), k10 = IK(-10);
	struct run_counts c = { .created = 2, .failed = 1, .data_points = 7 };
	int64_t run = 0;
	tb_put(st, "d", IK(2), "{\"a\":1}", true);
	tb_put(st, "d", TK("b"), "{\"b\":\"\xc3\xa9\"}", false);
	tb_put(st, "d", TK("10"), "{}", true);
	tb_put(st, "a", IK(1), "{}", true);
	assert_int_equal(state_mark_failed(st, "d", &k2, "HTTP 500", (struct slice){ NULL, 0 }, &err), JERR_OK);
	assert_int_equal(state_mark_failed(st, "d", &kx, "bad email", (struct slice){ NULL, 0 }, &err), JERR_OK);
	assert_int_equal(state_set_exists(st, "e", &k10, false, 1234, &err), JERR_OK);
	assert_int_equal(state_run_start(st, "d", "run", &run, &err), JERR_OK);
	assert_int_equal(state_ledger_add(st, run, "d", &kx, "bad email", 1, &err), JERR_OK);
	assert_int_equal(state_ledger_add(st, 0, "d", &k2, "HTTP 500", 2, &err), JERR_OK);
	assert_int_equal(state_run_finish(st, run, RUN_FAILED, &c, "1 failed", &err), JERR_OK);
	assert_int_equal(state_run_start(st, "a", "plan", &run, &err), JERR_OK);
	assert_int_equal(state_lock_acquire(st, "d", "joey run pid 1", &err), JERR_OK);
	assert_int_equal(state_mark_set(st, "sched", "2024-01-01T00:00:00Z", NULL, &err), JERR_OK);
	jerror_release(&err);
}

/* Remove every store made so far (files and schemas). */
TB_UNUSED static void tb_cleanup(void)
{
	if (tb_dir) {
		tu_rmtree(tb_dir);
		free(tb_dir);
		tb_dir = NULL;
	}
	if (tb_n_schemas && tb_pg_url()) {
		PGconn *pg = tb_pg_connect(NULL);
		for (int i = 0; i < tb_n_schemas; i++) {
			struct strbuf sql = STRBUF_INIT;
			PGresult *r;
			strbuf_addf(&sql, "DROP SCHEMA IF EXISTS %s CASCADE", tb_schemas[i]);
			r = PQexec(pg, sql.buf);
			PQclear(r);
			strbuf_release(&sql);
		}
		PQfinish(pg);
	}
	for (int i = 0; i < tb_n_schemas; i++)
		free(tb_schemas[i]);
	tb_n_schemas = 0;
}

/* Run tests against SQLite, then against PostgreSQL when JOEY_PG_URL is set. */
TB_UNUSED static int tb_run_both(const char *name, const struct CMUnitTest *tests, size_t n)
{
	int failed;
	struct strbuf g = STRBUF_INIT;
	B = &tb_sqlite;
	strbuf_addf(&g, "%s (sqlite)", name);
	failed = _cmocka_run_group_tests(g.buf, tests, n, NULL, NULL);
	tb_cleanup();
	strbuf_reset(&g);
	strbuf_addf(&g, "%s (postgres)", name);
	if (tb_pg_url()) {
		B = &tb_pg;
		failed += _cmocka_run_group_tests(g.buf, tests, n, NULL, NULL);
		tb_cleanup();
	} else {
		printf("[  SKIPPED ] %s: JOEY_PG_URL is not set\n", g.buf);
	}
	strbuf_release(&g);
	return failed;
}

#endif
