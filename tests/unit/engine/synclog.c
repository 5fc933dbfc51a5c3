/* synclog.c: tests of src/engine/synclog.c (the outbox format, the run's log) and the SQLite writer of src/synclog/. */
#include "support/testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/synclog.h"
#include "synclog/db.h"

/* ---- the outbox body ---- */

struct got {
	struct synclog_entry e[8];
	char keys[8][32], changed[8][64], error[8][64];
	int n;
};

static enum jerr collect(void *ctx, const struct synclog_entry *e, struct jerror *err)
{
	struct got *g = ctx;
	(void)err;
	assert_true(g->n < 8);
	g->e[g->n] = *e;
	memcpy(g->keys[g->n], e->key.text.ptr, e->key.text.len);
	memcpy(g->changed[g->n], e->changed.ptr, e->changed.len);
	memcpy(g->error[g->n], e->error.ptr, e->error.len);
	g->n++;
	return JERR_OK;
}

static void test_body_round_trip(void **state)
{
	struct synclog_body b;
	struct strbuf out = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	const char bin[] = { 'a', 0, 'b' }; /* a text key with a NUL byte */
	struct synclog_entry in[] = {
		{ SYNCLOG_CREATE, SYNCLOG_CONFIRMED, { true, 42, SLICE_LIT("42") }, 1, 1700000000123, SLICE_LIT("[\"email\"]"), { "", 0 }, false },
		{ SYNCLOG_UPDATE, SYNCLOG_FAILED, { false, 0, { bin, 3 } }, 3, 1700000000124, SLICE_LIT("[\"email\"]"), SLICE_LIT("HTTP 400: bad"), false },
		{ SYNCLOG_DELETE, SYNCLOG_FAILED, { false, 0, SLICE_LIT("x") }, 1, 5, { "", 0 }, SLICE_LIT("HTTP 400: bad"), true },
		{ SYNCLOG_ENRICH, SYNCLOG_NOT_IN_BRAZE, { true, -7, SLICE_LIT("-7") }, 2, 6, { "", 0 }, { "", 0 }, false },
	};
	synclog_body_begin(&b);
	for (size_t i = 0; i < 4; i++)
		synclog_body_add(&b, &in[i]);
	synclog_body_end(&b, 77, "dest-1", &out);
	/* the two rows share one error string in the dictionary */
	assert_int_equal(b.n_rows, 0);
	int64_t run_id = 0;
	struct slice dest;
	uint32_t n = 0;
	struct got g = { 0 };
	assert_int_equal(synclog_body_decode((struct slice){ out.buf, out.len }, &run_id, &dest, collect, &g, &n, &err),
			 JERR_OK);
	assert_int_equal(run_id, 77);
	assert_true(slice_eq_str(dest, "dest-1"));
	assert_int_equal(n, 4);
	assert_int_equal(g.n, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(g.e[i].op, in[i].op);
		assert_int_equal(g.e[i].status, in[i].status);
		assert_int_equal(g.e[i].key.is_int, in[i].key.is_int);
		assert_int_equal(g.e[i].key.i, in[i].key.i);
		assert_int_equal(g.e[i].key.text.len, in[i].key.text.len);
		assert_memory_equal(g.keys[i], in[i].key.text.ptr, in[i].key.text.len);
		assert_int_equal(g.e[i].attempt, in[i].attempt);
		assert_int_equal(g.e[i].at_ms, in[i].at_ms);
		assert_int_equal(g.e[i].changed.len, in[i].changed.len);
		assert_int_equal(g.e[i].error.len, in[i].error.len);
		assert_int_equal(g.e[i].local, in[i].local);
	}
	assert_string_equal(g.error[1], "HTTP 400: bad");
	assert_string_equal(g.changed[0], "[\"email\"]");

	/* every truncation is refused, never read past the end */
	for (size_t cut = 0; cut < out.len; cut++) {
		struct got h = { 0 };
		assert_int_equal(synclog_body_decode((struct slice){ out.buf, cut }, &run_id, &dest, collect, &h, &n, &err),
				 JERR_STATE);
		jerror_release(&err);
		err = (struct jerror)JERROR_INIT;
	}
	/* another format version */
	out.buf[2] = 9;
	assert_int_equal(synclog_body_decode((struct slice){ out.buf, out.len }, &run_id, &dest, NULL, NULL, &n, &err),
			 JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "not in this joey's format"));
	jerror_release(&err);
	synclog_body_release(&b);
	strbuf_release(&out);
}

static void test_error_codes(void **state)
{
	char b[16];
	assert_string_equal(synclog_error_code("POST /users/track: HTTP 503 (gave up after 5 attempts)", false, b),
			    "retries_exhausted");
	assert_string_equal(synclog_error_code("HTTP 400: invalid", false, b), "http_400");
	assert_string_equal(synclog_error_code("HTTP 4x0: invalid", false, b), "rejected");
	assert_string_equal(synclog_error_code("EMAIL_BAD_FORMAT", false, b), "rejected");
	assert_string_equal(synclog_error_code(NULL, false, b), "rejected");
	assert_string_equal(synclog_error_code("anything", true, b), "local");
}

/* ---- the SQLite writer ---- */

static struct cfg_option file_opt;
static struct cfg_app log_app;

static void make_app(const char *file)
{
	file_opt = (struct cfg_option){ .key = "file", .kind = OPT_STRING, .str = file };
	log_app = (struct cfg_app){ .id = "logdb", .type = "sqlite", .options = { &file_opt, 1 } };
}

static long long q(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	long long v = -1;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void test_sqlite_writer(void **state)
{
	char *dir = tu_mkdtemp();
	char path[512];
	struct synclog_db *c = NULL;
	struct jerror err = JERROR_INIT;
	const struct synclog_db_ops *ops = synclog_db_for_app("sqlite");
	snprintf(path, sizeof(path), "%s/log.db", dir);
	make_app("log.db");
	assert_non_null(ops);
	assert_ptr_equal(synclog_db_for_app("postgres"), &synclog_db_postgres);
	assert_null(synclog_db_for_app("braze"));
	assert_int_equal(ops->connect(&log_app, dir, "t_", &c, &err), JERR_OK);

	struct synclog_row rows[1200];
	char keys[1200][16];
	for (int i = 0; i < 1200; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%d", i);
		rows[i] = (struct synclog_row){ .run_id = 3, .destination = "d", .key = slice_of(keys[i]),
						.operation = "create", .changed = "[\"email\"]", .status = "confirmed",
						.attempt = 1, .at_ms = (int64_t)i * 86400000 };
	}
	rows[5].status = "failed";
	rows[5].error_code = "rejected";
	rows[5].error = "bad email";
	assert_int_equal(ops->write_records(c, rows, 1200, &err), JERR_OK);
	/* written again (after a crash): nothing changes */
	assert_int_equal(ops->write_records(c, rows, 700, &err), JERR_OK);
	assert_int_equal(q(path, "SELECT count(*) FROM t_sync_records"), 1200);
	assert_int_equal(q(path, "SELECT count(*) FROM t_sync_records WHERE status = 'failed' AND error_code = 'rejected' "
				 "AND error_message = 'bad email' AND record_key = '5'"), 1);
	/* another attempt of the same key is another row */
	rows[5].attempt = 2;
	assert_int_equal(ops->write_records(c, &rows[5], 1, &err), JERR_OK);
	assert_int_equal(q(path, "SELECT count(*) FROM t_sync_records WHERE record_key = '5'"), 2);

	struct synclog_run run = { .run_id = 3, .destination = "d", .model = "users", .trigger = "cli",
				   .status = "running", .started_ms = 1000, .records_read = -1, .log_status = "writing" };
	assert_int_equal(ops->write_run(c, &run, &err), JERR_OK);
	run.status = "success";
	run.finished_ms = 2000;
	run.created = 1199;
	run.failed = 1;
	run.records_read = 1200;
	run.log_status = "complete";
	run.log_rows = 1201;
	assert_int_equal(ops->write_run(c, &run, &err), JERR_OK);
	assert_int_equal(q(path, "SELECT count(*) FROM t_sync_runs"), 1);
	assert_int_equal(q(path, "SELECT created * 1000000 + failed * 10000 + log_rows FROM t_sync_runs WHERE status = "
				 "'success' AND log_status = 'complete' AND records_read = 1200 AND finished_at = "
				 "'1970-01-01 00:00:02.000'"), 1199011201LL);

	/* retention: runs that started before the cut, oldest first, in bounded chunks, only this destination's */
	struct synclog_run old = { .run_id = 1, .destination = "d", .status = "success", .started_ms = 1000,
				   .records_read = -1, .log_status = "complete" };
	assert_int_equal(ops->write_run(c, &old, &err), JERR_OK);
	old.destination = "other";
	assert_int_equal(ops->write_run(c, &old, &err), JERR_OK);
	for (int i = 0; i < 150; i++) {
		rows[i].run_id = 1;
		rows[i].destination = i < 140 ? "d" : "other";
	}
	assert_int_equal(ops->write_records(c, rows, 150, &err), JERR_OK);
	uint64_t n = 0;
	int64_t cut = 10LL * 86400000; /* run 3 started at 1000 ms too, but run 1 goes first */
	run.started_ms = 20LL * 86400000;
	assert_int_equal(ops->write_run(c, &run, &err), JERR_OK);
	assert_int_equal(ops->purge(c, "d", cut, 100, &n, &err), JERR_OK);
	assert_int_equal(n, 100);
	assert_int_equal(ops->purge(c, "d", cut, 100, &n, &err), JERR_OK);
	assert_int_equal(n, 40 + 1); /* the rest of run 1, and its summary */
	assert_int_equal(ops->purge(c, "d", cut, 100, &n, &err), JERR_OK);
	assert_int_equal(n, 0);
	assert_int_equal(q(path, "SELECT count(*) FROM t_sync_records WHERE destination = 'd' AND run_id = 1"), 0);
	assert_int_equal(q(path, "SELECT count(*) FROM t_sync_records WHERE destination = 'd' AND run_id = 3"), 1201);
	assert_int_equal(q(path, "SELECT count(*) FROM t_sync_records WHERE destination = 'other'"), 10);
	assert_int_equal(q(path, "SELECT count(*) FROM t_sync_runs"), 2);
	ops->close(c);

	/* a log written by a newer joey is refused */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE t_sync_meta SET value = '99'", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(ops->connect(&log_app, dir, "t_", &c, &err), JERR_IO);
	assert_null(c);
	assert_non_null(strstr(err.msg.buf, "schema version 99"));
	assert_non_null(strstr(err.hint.buf, "syncLogTablePrefix"));
	jerror_release(&err);
	/* another prefix is another set of tables */
	assert_int_equal(ops->connect(&log_app, dir, "u_", &c, &err), JERR_OK);
	ops->close(c);
	/* a directory that does not exist: a clear error */
	make_app("missing/log.db");
	assert_int_equal(ops->connect(&log_app, dir, "t_", &c, &err), JERR_IO);
	assert_non_null(strstr(err.msg.buf, "cannot open database"));
	assert_non_null(strstr(err.msg.buf, "logdb"));
	jerror_release(&err);
	tu_rmtree(dir);
	free(dir);
}

/* ---- a run's log: outbox, writer, end of the run ---- */

static struct cfg_model model = { .id = "users" };

static void stage(struct synclog *l, struct state *st, int from, int n, enum dest_result res)
{
	struct dest_outcome o[100];
	char keys[100][16];
	struct jerror err = JERROR_INIT;
	assert_true(n <= 100);
	for (int i = 0; i < n; i++) {
		int k = snprintf(keys[i], sizeof(keys[i]), "%d", from + i);
		o[i] = (struct dest_outcome){ .result = res, .op = DEST_UPSERT, .key = { true, from + i, { keys[i], (size_t)k } },
					      .in_scope = true, .create = true, .changed = SLICE_LIT("[\"email\"]"),
					      .error = res == DEST_FAILED ? "HTTP 500 (gave up after 5 attempts)" : NULL };
	}
	assert_int_equal(state_begin(st, &err), JERR_OK);
	assert_int_equal(synclog_stage(l, st, o, (size_t)n, &err), JERR_OK);
	assert_int_equal(state_commit(st, &err), JERR_OK);
	synclog_committed(l);
}

static void test_run_log(void **state)
{
	char *dir = tu_mkdtemp();
	char path[512], statepath[512];
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	struct config cfg = { .root = dir };
	struct cfg_destination d = { .id = "d", .model = &model, .sync_log_app = &log_app, .sync_log_prefix = "joey_",
				     .sync_log_retention_days = 0 };
	struct run_counts counts = { .created = 250, .failed = 10 };
	struct synclog_result res;
	snprintf(path, sizeof(path), "%s/log.db", dir);
	snprintf(statepath, sizeof(statepath), "%s/state.db", dir);
	assert_int_equal(state_open(statepath, STATE_OPEN_CREATE, &st, &err), JERR_OK);

	/* the log database cannot be written: the rows stay in the outbox */
	make_app("nodir/log.db");
	struct synclog_summary s = { .run_id = 1, .trigger = "cli", .started_ms = 1000, .records_read = 260,
				     .status = RUN_RUNNING, .counts = &counts };
	struct synclog *l = synclog_start(&cfg, &d, st, &s);
	assert_non_null(l);
	stage(l, st, 0, 100, DEST_OK);
	stage(l, st, 100, 100, DEST_OK);
	stage(l, st, 200, 50, DEST_OK);
	stage(l, st, 250, 10, DEST_FAILED);
	s.status = RUN_FAILED;
	synclog_finish(l, st, &s, &res);
	assert_string_equal(res.status, "pending");
	assert_int_equal(res.rows, 0);
	assert_int_equal(res.pending, 260);
	assert_non_null(strstr(res.error.buf, "cannot open database"));
	synclog_result_release(&res);
	uint64_t rows, bytes;
	assert_int_equal(state_outbox_count(st, "d", &rows, &bytes, &err), JERR_OK);
	assert_int_equal(rows, 4);
	assert_true(bytes > 0 && bytes < 260 * 48);

	/* the next run writes them, under run 1, and its own */
	make_app("log.db");
	s.run_id = 2;
	s.status = RUN_RUNNING;
	l = synclog_start(&cfg, &d, st, &s);
	stage(l, st, 1000, 20, DEST_OK);
	s.status = RUN_SUCCESS;
	synclog_finish(l, st, &s, &res);
	assert_string_equal(res.status, "complete");
	assert_int_equal(res.rows, 20);
	assert_int_equal(res.pending, 0);
	synclog_result_release(&res);
	assert_int_equal(q(path, "SELECT count(*) FROM joey_sync_records WHERE run_id = 1"), 260);
	assert_int_equal(q(path, "SELECT count(*) FROM joey_sync_records WHERE run_id = 1 AND status = 'failed' AND "
				 "error_code = 'retries_exhausted'"), 10);
	assert_int_equal(q(path, "SELECT count(*) FROM joey_sync_records WHERE run_id = 2"), 20);
	assert_int_equal(q(path, "SELECT log_rows FROM joey_sync_runs WHERE run_id = 2 AND log_status = 'complete' AND "
				 "run_trigger = 'cli' AND model = 'users'"), 20);
	assert_int_equal(state_outbox_count(st, "d", &rows, &bytes, &err), JERR_OK);
	assert_int_equal(rows, 0);
	struct state_synclog_info info;
	struct strbuf status = STRBUF_INIT, error = STRBUF_INIT;
	bool found = false;
	assert_int_equal(state_synclog_get(st, 1, &info, &status, &error, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(info.rows, 260);
	assert_int_equal(state_synclog_get(st, 2, &info, &status, &error, &found, &err), JERR_OK);
	assert_string_equal(status.buf, "complete");
	assert_int_equal(info.rows, 20);
	strbuf_release(&status);
	strbuf_release(&error);
	/* a rolled back batch leaves nothing behind */
	s.run_id = 3;
	l = synclog_start(&cfg, &d, st, &s);
	struct dest_outcome o = { .result = DEST_OK, .op = DEST_DELETE, .key = { false, 0, SLICE_LIT("gone") } };
	assert_int_equal(state_begin(st, &err), JERR_OK);
	assert_int_equal(synclog_stage(l, st, &o, 1, &err), JERR_OK);
	state_rollback(st);
	synclog_rolled_back(l);
	synclog_finish(l, st, &s, &res);
	assert_string_equal(res.status, "complete");
	assert_int_equal(res.rows, 0);
	synclog_result_release(&res);
	assert_int_equal(q(path, "SELECT count(*) FROM joey_sync_records WHERE run_id = 3"), 0);
	/* no log: nothing */
	d.sync_log_app = NULL;
	assert_null(synclog_start(&cfg, &d, st, &s));
	state_close(st);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_round_trip),
		cmocka_unit_test(test_error_codes),
		cmocka_unit_test(test_sqlite_writer),
		cmocka_unit_test(test_run_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
