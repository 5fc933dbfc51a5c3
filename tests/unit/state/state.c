/* state.c: tests for src/state/state.c (the SQLite state store). */
#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>
#include <xxhash.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "state/state.h"

#define IK(n) ((struct rkey){ true, (n), SLICE_LIT(#n) })
#define TK(s) ((struct rkey){ false, 0, SLICE_LIT(s) })

static char *path_in(const char *dir, const char *rel)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s/%s", dir, rel);
	return strbuf_detach(&sb, NULL);
}

static bool file_exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* Run SQL on the file with a separate plain SQLite connection. */
static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t v = -1;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* First column of the first row as text (malloc'd), or NULL. */
static char *raw_text(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char *v = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
		v = xstrdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static struct state *open_ok(const char *path, enum state_open_mode mode)
{
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	if (state_open(path, mode, &st, &err) != JERR_OK)
		fail_msg("state_open(%s): %s / %s", path, err.msg.buf, err.detail.buf);
	jerror_release(&err);
	assert_non_null(st);
	return st;
}

static void put_ok(struct state *st, const char *dest, struct rkey key, const char *payload,
		   bool in_scope)
{
	struct jerror err = JERROR_INIT;
	unsigned char h[STATE_HASH_LEN];
	state_hash(payload, strlen(payload), h);
	if (state_put(st, dest, &key, slice_of(payload), h, in_scope, &err) != JERR_OK)
		fail_msg("state_put: %s / %s", err.msg.buf, err.detail.buf);
	jerror_release(&err);
}

/* The reference order of source.h, to check the store against (key_compare's contract). */
static int ref_compare(const struct rkey *a, const struct rkey *b)
{
	if (a->is_int != b->is_int)
		return a->is_int ? -1 : 1;
	if (a->is_int)
		return a->i < b->i ? -1 : a->i > b->i;
	size_t n = a->text.len < b->text.len ? a->text.len : b->text.len;
	int c = n ? memcmp(a->text.ptr, b->text.ptr, n) : 0;
	if (c)
		return c;
	return a->text.len < b->text.len ? -1 : a->text.len > b->text.len;
}

/* ---- open, create, migrate, refuse ---- */

static void test_create_nested_and_reopen(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "a/b/c/state.db");
	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	assert_true(file_exists(path));
	assert_int_equal(state_schema_version(st), STATE_SCHEMA_VERSION);
	assert_string_equal(state_path(st), path);
	put_ok(st, "d", IK(1), "{\"a\":1}", true);
	state_close(st);

	assert_int_equal(raw_int(path, "PRAGMA application_id"), STATE_APPLICATION_ID);
	assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"),
			 STATE_SCHEMA_VERSION);
	{
		char *mode = raw_text(path, "PRAGMA journal_mode");
		assert_string_equal(mode, "wal");
		free(mode);
	}

	st = open_ok(path, STATE_OPEN_READONLY);
	{
		uint64_t n = 0;
		struct jerror err = JERROR_INIT;
		assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
		assert_int_equal(n, 1);
	}
	state_close(st);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

static void test_migrations_idempotent(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	int64_t objects;
	state_close(open_ok(path, STATE_OPEN_CREATE));
	objects = raw_int(path, "SELECT count(*) FROM sqlite_master");
	assert_true(objects >= 5);
	for (int i = 0; i < 3; i++) {
		struct state *st = open_ok(path, STATE_OPEN_CREATE);
		assert_int_equal(state_schema_version(st), STATE_SCHEMA_VERSION);
		state_close(st);
	}
	assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master"), objects);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM meta"), 1);
	/* an empty existing file is a fresh store */
	tu_write(dir, "empty.db", "");
	free(path);
	path = path_in(dir, "empty.db");
	state_close(open_ok(path, STATE_OPEN_CREATE));
	assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master"), objects);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

static void test_newer_version_refused(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct strbuf want = STRBUF_INIT;
	enum state_open_mode modes[] = { STATE_OPEN_CREATE, STATE_OPEN_READONLY,
					 STATE_OPEN_READONLY_OR_EMPTY };
	raw_exec(path, "PRAGMA application_id = 0x4a4f4559; CREATE TABLE meta(key PRIMARY KEY, value);"
		       " INSERT INTO meta VALUES('schema_version', 999);");
	strbuf_addf(&want, "state store \"%s\" was written by a newer joey (schema version 999, "
			   "this joey knows up to %d)", path, STATE_SCHEMA_VERSION);
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		struct state *st = (struct state *)1;
		struct jerror err = JERROR_INIT;
		assert_int_equal(state_open(path, modes[i], &st, &err), JERR_STATE_VERSION);
		assert_null(st);
		assert_int_equal(err.code, JERR_STATE_VERSION);
		assert_string_equal(err.msg.buf, want.buf);
		assert_non_null(strstr(err.hint.buf, "upgrade joey"));
		jerror_release(&err);
	}
	/* the file was not touched */
	assert_int_equal(raw_int(path, "SELECT value FROM meta"), 999);
	strbuf_release(&want);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

static void test_not_a_state_store(void **s)
{
	char *dir = tu_mkdtemp();
	char *garbage = path_in(dir, "garbage.db");
	char *foreign = path_in(dir, "foreign.db");
	struct strbuf want = STRBUF_INIT;
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	char junk[4096];

	memset(junk, 'x', sizeof(junk));
	junk[sizeof(junk) - 1] = '\0';
	tu_write(dir, "garbage.db", junk);
	assert_int_equal(state_open(garbage, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	assert_null(st);
	strbuf_addf(&want, "\"%s\" is not a joey state store", garbage);
	assert_string_equal(err.msg.buf, want.buf);
	assert_non_null(strstr(err.detail.buf, "not a database"));
	assert_true(err.hint.len > 0);
	assert_int_equal(state_open(garbage, STATE_OPEN_READONLY_OR_EMPTY, &st, &err), JERR_STATE);
	assert_string_equal(err.msg.buf, want.buf);
	/* short text file, as in the e2e test */
	tu_write(dir, "garbage.db", "not a database\n");
	assert_int_equal(state_open(garbage, STATE_OPEN_READONLY, &st, &err), JERR_STATE);
	assert_string_equal(err.msg.buf, want.buf);

	/* an SQLite database of some other program */
	raw_exec(foreign, "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);");
	assert_int_equal(state_open(foreign, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	strbuf_reset(&want);
	strbuf_addf(&want, "\"%s\" is not a joey state store", foreign);
	assert_string_equal(err.msg.buf, want.buf);
	assert_non_null(strstr(err.detail.buf, "application_id 0x00000000 and 1 tables"));
	/* nothing was added to it */
	assert_int_equal(raw_int(foreign, "SELECT count(*) FROM sqlite_master"), 1);

	strbuf_release(&want);
	jerror_release(&err);
	free(garbage);
	free(foreign);
	tu_rmtree(dir);
	free(dir);
}

static void test_readonly_missing_and_empty(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "sub/state.db");
	struct strbuf want = STRBUF_INIT;
	struct state *st = NULL;
	struct state_cursor *cur = NULL;
	struct state_row *row = (struct state_row *)1;
	struct jerror err = JERROR_INIT;
	uint64_t n = 7;
	bool found = true;

	assert_int_equal(state_open(path, STATE_OPEN_READONLY, &st, &err), JERR_STATE);
	assert_null(st);
	strbuf_addf(&want, "state store \"%s\" does not exist", path);
	assert_string_equal(err.msg.buf, want.buf);
	assert_string_equal(err.hint.buf, "run 'joey run' once, or pass --state");

	/* plan before any run: an empty store, nothing created */
	st = open_ok(path, STATE_OPEN_READONLY_OR_EMPTY);
	assert_false(file_exists(path));
	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 0);
	assert_int_equal(state_cursor_open(st, "d", &cur, &err), JERR_OK);
	assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
	assert_null(row);
	state_cursor_close(cur);
	{
		struct rkey k = IK(1);
		struct state_row *r = NULL;
		assert_int_equal(state_get(st, "d", &k, &r, &found, &err), JERR_OK);
		assert_false(found);
		assert_int_equal(state_mark_failed(st, "d", &k, "x", &err), JERR_STATE);
		assert_non_null(strstr(err.msg.buf, "is open read-only"));
	}
	assert_int_equal(state_begin(st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "is open read-only"));
	state_close(st);
	assert_false(file_exists(path));

	/* a real store opened read-only refuses writes too */
	state_close(open_ok(path, STATE_OPEN_CREATE));
	st = open_ok(path, STATE_OPEN_READONLY);
	assert_int_equal(state_begin(st, &err), JERR_STATE);
	{
		int64_t id;
		assert_int_equal(state_run_start(st, "d", "plan", &id, &err), JERR_STATE);
	}
	state_close(st);

	strbuf_release(&want);
	jerror_release(&err);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

/* ---- records ---- */

static void test_put_get_delete(void **s)
{
	struct state *st = open_ok(":memory:", STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	struct rkey k7 = IK(7), t7 = TK("7");
	unsigned char h[STATE_HASH_LEN];
	bool found = false;
	uint64_t n = 0;

	put_ok(st, "d", k7, "{\"n\":7}", true);
	put_ok(st, "d", TK("abc"), "{\"s\":\"abc\"}", false);
	put_ok(st, "other", k7, "{\"o\":1}", true);

	assert_int_equal(state_get(st, "d", &k7, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_true(row->key.is_int);
	assert_int_equal(row->key.i, 7);
	assert_true(slice_eq_str(row->key.text, "7"));
	assert_true(slice_eq_str(row->payload, "{\"n\":7}"));
	state_hash("{\"n\":7}", 7, h);
	assert_memory_equal(row->hash, h, STATE_HASH_LEN);
	assert_true(row->in_scope);
	assert_false(row->pending);
	assert_int_equal(row->attempts, 0);
	assert_int_equal(row->last_error.len, 0);
	assert_true(row->confirmed);
	assert_int_equal(row->braze_exists, -1);
	assert_true(row->confirmed_at > 0);
	assert_true(row->updated_at >= row->confirmed_at);

	/* the text key "7" is a different key from the integer 7 */
	assert_int_equal(state_get(st, "d", &t7, &row, &found, &err), JERR_OK);
	assert_false(found);
	assert_null(row);

	/* update in place */
	put_ok(st, "d", k7, "{\"n\":8}", false);
	assert_int_equal(state_get(st, "d", &k7, &row, &found, &err), JERR_OK);
	assert_true(slice_eq_str(row->payload, "{\"n\":8}"));
	assert_false(row->in_scope);

	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 0); /* both out of scope now */
	put_ok(st, "d", k7, "{\"n\":9}", true);
	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 1);

	assert_int_equal(state_delete(st, "d", &k7, &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &k7, &row, &found, &err), JERR_OK);
	assert_false(found);
	assert_int_equal(state_delete(st, "d", &k7, &err), JERR_OK); /* absent: fine */
	/* the other destination kept its row */
	assert_int_equal(state_get(st, "other", &k7, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_true(slice_eq_str(row->payload, "{\"o\":1}"));

	jerror_release(&err);
	state_close(st);
}

static void test_cursor_order_mixed_keys(void **s)
{
	struct state *st = open_ok(":memory:", STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_cursor *cur = NULL;
	struct state_row *row = NULL;
	struct rkey keys[] = { TK("a"), IK(10), TK("9"), TK("B"), IK(2), TK("10"), IK(-3),
			       TK(""), TK("a\xc3\xa9"), TK("ab") };
	const char *want[] = { "-3", "2", "10", "", "10", "9", "B", "a", "ab", "a\xc3\xa9" };
	const bool want_int[] = { true, true, true, false, false, false, false, false, false, false };
	struct rkey prev = { 0 };
	struct strbuf prev_text = STRBUF_INIT;
	size_t i = 0;

	for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
		put_ok(st, "d", keys[k], "{}", true);
	put_ok(st, "e", TK("0"), "{}", true); /* another destination: not listed */

	assert_int_equal(state_cursor_open(st, "d", &cur, &err), JERR_OK);
	while (state_cursor_next(cur, &row, &err) == JERR_OK && row) {
		assert_true(i < ARRAY_SIZE(want));
		assert_int_equal(row->key.is_int, want_int[i]);
		assert_int_equal(row->key.text.len, strlen(want[i]));
		assert_memory_equal(row->key.text.ptr, want[i], row->key.text.len);
		if (i > 0) {
			prev.text = (struct slice){ prev_text.buf, prev_text.len };
			assert_true(ref_compare(&prev, &row->key) < 0);
		}
		prev.is_int = row->key.is_int;
		prev.i = row->key.i;
		strbuf_reset(&prev_text);
		strbuf_addslice(&prev_text, row->key.text);
		i++;
	}
	assert_int_equal(err.code, JERR_OK);
	assert_int_equal(i, ARRAY_SIZE(want));
	/* next after the end stays at the end */
	assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
	assert_null(row);
	state_cursor_close(cur);
	state_cursor_close(NULL);
	strbuf_release(&prev_text);
	jerror_release(&err);
	state_close(st);
}

static void test_cursor_needs_no_sort(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	sqlite3 *db;
	sqlite3_stmt *q;
	struct strbuf plan = STRBUF_INIT;

	state_close(open_ok(path, STATE_OPEN_CREATE));
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT key FROM records"
						" WHERE dest_id = 'd' ORDER BY key",
					    -1, &q, NULL),
			 SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW)
		strbuf_addf(&plan, "%s\n", (const char *)sqlite3_column_text(q, 3));
	sqlite3_finalize(q);
	sqlite3_close(db);
	assert_null(strstr(plan.buf, "TEMP B-TREE"));
	assert_non_null(strstr(plan.buf, "USING PRIMARY KEY"));
	strbuf_release(&plan);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

static void test_two_cursors_and_interleaved_writes(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_cursor *a = NULL, *b = NULL;
	struct state_row *ra = NULL, *rb = NULL;
	int na = 0, nb = 0;

	for (int i = 1; i <= 600; i++) { /* several batches */
		char key[16];
		struct rkey k = { true, i, { key, 0 } };
		k.text.len = (size_t)snprintf(key, sizeof(key), "%d", i);
		put_ok(st, "A", k, "{\"a\":1}", true);
		if (i % 2)
			put_ok(st, "B", k, "{\"b\":1}", true);
	}
	assert_int_equal(state_cursor_open(st, "A", &a, &err), JERR_OK);
	assert_int_equal(state_cursor_open(st, "B", &b, &err), JERR_OK);
	for (;;) {
		assert_int_equal(state_cursor_next(a, &ra, &err), JERR_OK);
		assert_int_equal(state_cursor_next(b, &rb, &err), JERR_OK);
		if (ra) {
			na++;
			assert_int_equal(ra->key.i, na);
			assert_true(slice_eq_str(ra->payload, "{\"a\":1}") ||
				    slice_eq_str(ra->payload, "{\"a\":2}"));
			/* the engine writes what Braze confirmed while the diff still reads */
			if (na % 10 == 0) {
				struct rkey k = ra->key;
				char kb[16];
				k.text.len = (size_t)snprintf(kb, sizeof(kb), "%d", na);
				k.text.ptr = kb;
				assert_int_equal(state_begin(st, &err), JERR_OK);
				put_ok(st, "A", k, "{\"a\":2}", true);
				if (na % 20 == 0) {
					state_rollback(st);
				} else {
					assert_int_equal(state_commit(st, &err), JERR_OK);
				}
			}
		}
		if (rb) {
			nb++;
			assert_int_equal(rb->key.i, 2 * nb - 1);
			assert_true(slice_eq_str(rb->payload, "{\"b\":1}"));
		}
		if (!ra && !rb)
			break;
	}
	assert_int_equal(na, 600);
	assert_int_equal(nb, 300);
	state_cursor_close(a);
	state_cursor_close(b);

	/* writes ahead of a cursor never break its order (they may or may not be seen) */
	assert_int_equal(state_cursor_open(st, "B", &b, &err), JERR_OK);
	assert_int_equal(state_cursor_next(b, &rb, &err), JERR_OK);
	assert_int_equal(rb->key.i, 1);
	{
		struct rkey k3 = IK(3), k2 = IK(2), k600 = IK(600), k599 = IK(599);
		int64_t prev = 1;
		nb = 1;
		assert_int_equal(state_delete(st, "B", &k3, &err), JERR_OK);
		put_ok(st, "B", k2, "{\"b\":2}", true);
		put_ok(st, "B", k600, "{\"b\":600}", true); /* beyond the first batch: seen */
		assert_int_equal(state_delete(st, "B", &k599, &err), JERR_OK); /* likewise: gone */
		while (state_cursor_next(b, &rb, &err) == JERR_OK && rb) {
			assert_true(rb->key.i > prev);
			prev = rb->key.i;
			nb++;
		}
		assert_int_equal(prev, 600);
		assert_int_equal(nb, 300); /* 300 odd keys - 599 + 600, as read from batch 1 */
	}
	state_cursor_close(b);
	{
		struct rkey k10 = IK(10), k20 = IK(20);
		struct state_row *r;
		bool found;
		assert_int_equal(state_get(st, "A", &k10, &r, &found, &err), JERR_OK);
		assert_true(slice_eq_str(r->payload, "{\"a\":2}"));
		assert_int_equal(state_get(st, "A", &k20, &r, &found, &err), JERR_OK);
		assert_true(slice_eq_str(r->payload, "{\"a\":1}"));
	}
	jerror_release(&err);
	state_close(st);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

static void test_cursor_large_payloads(void **s)
{
	struct state *st = open_ok(":memory:", STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_cursor *cur = NULL;
	struct state_row *row = NULL;
	struct strbuf big = STRBUF_INIT;
	int n = 0;

	for (int i = 0; i < 300 * 1024; i++)
		strbuf_addch(&big, (char)('a' + i % 26));
	for (int i = 0; i < 12; i++) {
		char name[16];
		struct rkey k = { false, 0, { name, 0 } };
		unsigned char h[STATE_HASH_LEN] = { 0 };
		k.text.len = (size_t)snprintf(name, sizeof(name), "k%02d", i);
		big.buf[0] = (char)('A' + i);
		assert_int_equal(state_put(st, "d", &k, (struct slice){ big.buf, big.len }, h, true, &err),
				 JERR_OK);
	}
	assert_int_equal(state_cursor_open(st, "d", &cur, &err), JERR_OK);
	while (state_cursor_next(cur, &row, &err) == JERR_OK && row) {
		char name[16];
		snprintf(name, sizeof(name), "k%02d", n);
		assert_true(slice_eq_str(row->key.text, name));
		assert_int_equal(row->payload.len, big.len);
		assert_int_equal(row->payload.ptr[0], 'A' + n);
		assert_memory_equal(row->payload.ptr + 1, big.buf + 1, big.len - 1);
		n++;
	}
	assert_int_equal(n, 12);
	state_cursor_close(cur);
	strbuf_release(&big);
	jerror_release(&err);
	state_close(st);
}

static void test_mark_failed(void **s)
{
	struct state *st = open_ok(":memory:", STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	struct rkey k1 = IK(1), kx = TK("x");
	bool found = false;
	uint64_t n = 0;

	put_ok(st, "d", k1, "{\"v\":1}", true);
	assert_int_equal(state_mark_failed(st, "d", &k1, "HTTP 500", &err), JERR_OK);
	assert_int_equal(state_mark_failed(st, "d", &k1, "HTTP 503", &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_true(row->pending);
	assert_int_equal(row->attempts, 2);
	assert_true(slice_eq_str(row->last_error, "HTTP 503"));
	assert_true(slice_eq_str(row->payload, "{\"v\":1}")); /* confirmed payload kept */
	assert_true(row->confirmed);
	assert_true(row->in_scope);

	/* success clears the marker */
	put_ok(st, "d", k1, "{\"v\":2}", true);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_false(row->pending);
	assert_int_equal(row->attempts, 0);
	assert_int_equal(row->last_error.len, 0);

	/* never confirmed: a placeholder */
	assert_int_equal(state_mark_failed(st, "d", &kx, "bad email", &err), JERR_OK);
	assert_int_equal(state_mark_failed(st, "d", &kx, "bad email", &err), JERR_OK);
	assert_int_equal(state_mark_failed(st, "d", &kx, "bad email!", &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &kx, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_false(row->confirmed);
	assert_int_equal(row->payload.len, 0);
	assert_false(row->in_scope);
	assert_true(row->pending);
	assert_int_equal(row->attempts, 3);
	assert_int_equal(row->confirmed_at, 0);
	assert_true(slice_eq_str(row->last_error, "bad email!"));
	{
		unsigned char zero[STATE_HASH_LEN] = { 0 };
		assert_memory_equal(row->hash, zero, STATE_HASH_LEN);
	}
	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 1); /* placeholders are not in scope */
	/* confirming it later turns it into a normal row */
	put_ok(st, "d", kx, "{\"x\":1}", true);
	assert_int_equal(state_get(st, "d", &kx, &row, &found, &err), JERR_OK);
	assert_true(row->confirmed);
	assert_int_equal(row->attempts, 0);

	jerror_release(&err);
	state_close(st);
}

static void test_set_exists(void **s)
{
	struct state *st = open_ok(":memory:", STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	struct rkey k1 = IK(1), k2 = IK(2);
	bool found = false;

	put_ok(st, "d", k1, "{\"v\":1}", true);
	assert_int_equal(state_set_exists(st, "d", &k1, true, 1234, &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_int_equal(row->braze_exists, 1);
	assert_int_equal(row->checked_at, 1234);
	assert_true(slice_eq_str(row->payload, "{\"v\":1}"));
	assert_true(row->confirmed);
	/* a later put keeps what we know about existence */
	put_ok(st, "d", k1, "{\"v\":2}", true);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_int_equal(row->braze_exists, 1);

	assert_int_equal(state_set_exists(st, "d", &k2, false, 99, &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &k2, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(row->braze_exists, 0);
	assert_false(row->confirmed);
	assert_false(row->in_scope);
	assert_false(row->pending);
	jerror_release(&err);
	state_close(st);
}

static void test_rollback_leaves_nothing(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	struct rkey k1 = IK(1), k2 = IK(2);
	bool found = true;
	uint64_t n = 9;

	put_ok(st, "d", k1, "{\"v\":1}", true);
	assert_int_equal(state_begin(st, &err), JERR_OK);
	assert_int_equal(state_begin(st, &err), JERR_INTERNAL); /* no nesting */
	put_ok(st, "d", k1, "{\"v\":2}", true);
	put_ok(st, "d", k2, "{\"v\":2}", true);
	assert_int_equal(state_mark_failed(st, "d", &k1, "e", &err), JERR_OK);
	assert_int_equal(state_delete(st, "d", &k1, &err), JERR_OK);
	state_rollback(st);
	state_rollback(st); /* harmless */

	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_true(slice_eq_str(row->payload, "{\"v\":1}"));
	assert_false(row->pending);
	assert_int_equal(state_get(st, "d", &k2, &row, &found, &err), JERR_OK);
	assert_false(found);
	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(state_commit(st, &err), JERR_STATE); /* nothing open */

	/* a transaction after a rollback works, and commits */
	assert_int_equal(state_begin(st, &err), JERR_OK);
	put_ok(st, "d", k2, "{\"v\":3}", true);
	assert_int_equal(state_commit(st, &err), JERR_OK);
	/* an open transaction is rolled back by close */
	assert_int_equal(state_begin(st, &err), JERR_OK);
	assert_int_equal(state_delete(st, "d", &k2, &err), JERR_OK);
	state_close(st);
	st = open_ok(path, STATE_OPEN_READONLY);
	assert_int_equal(state_get(st, "d", &k2, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_true(slice_eq_str(row->payload, "{\"v\":3}"));
	state_close(st);

	jerror_release(&err);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

/* ---- runs and ledger ---- */

struct collected {
	int n;
	int64_t ids[16];
	char text[16][64];
	int stop_after;
};

static enum jerr collect_run(void *ctx, const struct state_run_info *r, struct jerror *err)
{
	struct collected *c = ctx;
	if (c->stop_after && c->n == c->stop_after)
		return jerror_set(err, JERR_INTERRUPTED, "stop");
	c->ids[c->n] = r->id;
	snprintf(c->text[c->n], sizeof(c->text[0]), "%s %s %s c%llu u%llu f%llu dp%llu %s %s",
		 r->dest_id, r->kind, run_status_name(r->status), (unsigned long long)r->counts.created,
		 (unsigned long long)r->counts.updated, (unsigned long long)r->counts.failed,
		 (unsigned long long)r->counts.data_points, r->finished_at ? "done" : "open",
		 r->error ? r->error : "-");
	c->n++;
	return JERR_OK;
}

static void test_runs(void **s)
{
	struct state *st = open_ok(":memory:", STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct run_counts counts = { .created = 3, .updated = 2, .failed = 1, .data_points = 40 };
	struct run_counts zero = { 0 };
	struct collected c = { 0 };
	int64_t r1 = 0, r2 = 0, r3 = 0;

	assert_int_equal(state_run_start(st, "braze", "run", &r1, &err), JERR_OK);
	assert_int_equal(state_run_start(st, "other", "plan", &r2, &err), JERR_OK);
	assert_int_equal(state_run_start(st, "braze", "run", &r3, &err), JERR_OK);
	assert_true(r1 > 0 && r2 > r1 && r3 > r2);
	assert_int_equal(state_run_finish(st, r1, RUN_FAILED, &counts, "some records failed", &err),
			 JERR_OK);
	assert_int_equal(state_run_finish(st, r2, RUN_SUCCESS, &zero, NULL, &err), JERR_OK);
	assert_int_equal(state_run_finish(st, 999, RUN_SUCCESS, &zero, NULL, &err), JERR_INTERNAL);
	assert_int_equal(state_run_start(st, "braze", "bogus", &r2, &err), JERR_STATE);

	assert_int_equal(state_runs_list(st, NULL, 0, collect_run, &c, &err), JERR_OK);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.ids[0], r3);
	assert_string_equal(c.text[0], "braze run running c0 u0 f0 dp0 open -");
	assert_string_equal(c.text[1], "other plan success c0 u0 f0 dp0 done -");
	assert_string_equal(c.text[2], "braze run failed c3 u2 f1 dp40 done some records failed");

	memset(&c, 0, sizeof(c));
	assert_int_equal(state_runs_list(st, "braze", 1, collect_run, &c, &err), JERR_OK);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], r3);

	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	assert_int_equal(state_runs_list(st, NULL, 0, collect_run, &c, &err), JERR_INTERRUPTED);
	assert_int_equal(c.n, 1);
	assert_string_equal(run_status_name(RUN_INTERRUPTED), "interrupted");

	/* a run left "running" by a killed process becomes interrupted; others stay as they are */
	uint64_t n = 0;
	assert_int_equal(state_runs_abandon(st, "other", &n, &err), JERR_OK);
	assert_int_equal(n, 0);
	assert_int_equal(state_runs_abandon(st, "braze", &n, &err), JERR_OK);
	assert_int_equal(n, 1);
	memset(&c, 0, sizeof(c));
	assert_int_equal(state_runs_list(st, "braze", 1, collect_run, &c, &err), JERR_OK);
	static const char want[] = "braze run interrupted c0 u0 f0 dp0 done the process running it";
	assert_memory_equal(c.text[0], want, sizeof(want) - 1); /* collected text is truncated */
	jerror_release(&err);
	state_close(st);
}

static enum jerr collect_ledger(void *ctx, const struct state_ledger_entry *e, struct jerror *err)
{
	struct collected *c = ctx;
	c->ids[c->n] = e->run_id;
	snprintf(c->text[c->n], sizeof(c->text[0]), "%s %s%.*s %s x%d", e->dest_id,
		 e->key.is_int ? "#" : "", (int)e->key.text.len, e->key.text.ptr, e->error,
		 e->attempts);
	c->n++;
	return JERR_OK;
}

static void test_ledger(void **s)
{
	struct state *st = open_ok(":memory:", STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct collected c = { 0 };
	struct rkey k5 = IK(5), t5 = TK("5");
	int64_t run = 0;

	assert_int_equal(state_run_start(st, "d", "run", &run, &err), JERR_OK);
	assert_int_equal(state_ledger_add(st, run, "d", &k5, "HTTP 400: bad email", 1, &err), JERR_OK);
	assert_int_equal(state_ledger_add(st, run, "d", &t5, "HTTP 500", 2, &err), JERR_OK);
	assert_int_equal(state_ledger_add(st, 0, "e", &k5, "timeout", 3, &err), JERR_OK);
	assert_int_equal(state_ledger_add(st, run, "d", &k5, "HTTP 400 again", 2, &err), JERR_OK);

	assert_int_equal(state_ledger_list(st, NULL, 0, NULL, 0, collect_ledger, &c, &err), JERR_OK);
	assert_int_equal(c.n, 4);
	assert_string_equal(c.text[0], "d #5 HTTP 400 again x2");
	assert_string_equal(c.text[1], "e #5 timeout x3");
	assert_int_equal(c.ids[1], 0);
	assert_string_equal(c.text[3], "d #5 HTTP 400: bad email x1");

	memset(&c, 0, sizeof(c));
	assert_int_equal(state_ledger_list(st, "d", 0, &k5, 0, collect_ledger, &c, &err), JERR_OK);
	assert_int_equal(c.n, 2);
	memset(&c, 0, sizeof(c));
	assert_int_equal(state_ledger_list(st, "d", 0, &t5, 0, collect_ledger, &c, &err), JERR_OK);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.text[0], "d 5 HTTP 500 x2");
	memset(&c, 0, sizeof(c));
	assert_int_equal(state_ledger_list(st, NULL, run, NULL, 2, collect_ledger, &c, &err), JERR_OK);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], run);
	jerror_release(&err);
	state_close(st);
}

/* ---- locks ---- */

static void test_locks(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct state *a = open_ok(path, STATE_OPEN_CREATE);
	struct state *b = open_ok(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	pid_t child;
	struct strbuf sql = STRBUF_INIT;

	assert_int_equal(state_lock_acquire(a, "braze", "joey run pid 1", &err), JERR_OK);
	assert_int_equal(state_lock_acquire(a, "other", "joey run pid 1", &err), JERR_OK);
	/* a second holder is refused, naming the first */
	assert_int_equal(state_lock_acquire(b, "braze", "joey run pid 2", &err), JERR_STATE_BUSY);
	assert_string_equal(err.msg.buf, "destination \"braze\" is locked by another run");
	assert_non_null(strstr(err.detail.buf, "held by \"joey run pid 1\""));
	assert_true(err.hint.len > 0);
	/* not re-entrant either */
	assert_int_equal(state_lock_acquire(a, "braze", "again", &err), JERR_STATE_BUSY);
	/* only the holder releases */
	state_lock_release(b, "braze");
	assert_int_equal(state_lock_acquire(b, "braze", "joey run pid 2", &err), JERR_STATE_BUSY);
	assert_int_equal(state_lock_heartbeat(a, "braze", &err), JERR_OK);
	state_lock_release(a, "braze");
	assert_int_equal(state_lock_acquire(b, "braze", "joey run pid 2", &err), JERR_OK);

	/* stale by heartbeat: b's lock of "braze" is an hour old */
	raw_exec(path, "UPDATE locks SET heartbeat_at = heartbeat_at - 3600000 WHERE dest_id = 'braze'");
	assert_int_equal(state_lock_acquire_stale(a, "braze", "joey run pid 1", 60000, &err), JERR_OK);
	/* b notices it lost the lock */
	assert_int_equal(state_lock_heartbeat(b, "braze", &err), JERR_STATE_BUSY);
	assert_non_null(strstr(err.msg.buf, "lost the lock"));
	state_lock_release(b, "braze"); /* does not release a's lock */
	assert_int_equal(state_lock_acquire(b, "braze", "joey run pid 2", &err), JERR_STATE_BUSY);

	/* stale because its process is gone (same host) */
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	strbuf_addf(&sql, "UPDATE locks SET pid = %ld WHERE dest_id = 'other'", (long)child);
	raw_exec(path, sql.buf);
	assert_int_equal(state_lock_acquire(b, "other", "joey run pid 2", &err), JERR_OK);

	/* inside a caller's transaction the lock is part of it */
	assert_int_equal(state_begin(b, &err), JERR_OK);
	assert_int_equal(state_lock_acquire(b, "third", "joey run pid 2", &err), JERR_OK);
	state_rollback(b);
	assert_int_equal(state_lock_acquire(a, "third", "joey run pid 1", &err), JERR_OK);

	strbuf_release(&sql);
	jerror_release(&err);
	state_close(a);
	state_close(b);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

/* ---- failures of the file system ---- */

static void test_read_only_directory(void **s)
{
	char *dir = tu_mkdtemp();
	char *sub = path_in(dir, "ro");
	char *path = path_in(dir, "ro/state.db");
	char *nested = path_in(dir, "ro/deeper/state.db");
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	enum jerr rc;

	state_close(open_ok(path, STATE_OPEN_CREATE));
	assert_int_equal(chmod(sub, 0555), 0);
	if (geteuid() == 0) {
		/* root ignores permissions: nothing to observe */
		assert_int_equal(chmod(sub, 0755), 0);
		free(sub);
		free(path);
		free(nested);
		tu_rmtree(dir);
		free(dir);
		skip();
	}
	/* a new store under a read-only directory */
	assert_int_equal(state_open(nested, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "could not create directory"));
	assert_non_null(strstr(err.hint.buf, "read-only"));

	/* an existing store in a read-only directory: WAL needs to create files beside it */
	rc = state_open(path, STATE_OPEN_CREATE, &st, &err);
	if (rc == JERR_OK) {
		struct rkey k = IK(1);
		rc = state_mark_failed(st, "d", &k, "x", &err);
		state_close(st);
	}
	assert_int_equal(rc, JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "read-only"));
	assert_non_null(strstr(err.hint.buf, "writable"));
	/* but `joey plan` can read it (immutable: no -shm needed) */
	{
		uint64_t n = 9;
		st = open_ok(path, STATE_OPEN_READONLY_OR_EMPTY);
		assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
		assert_int_equal(n, 0);
		state_close(st);
	}

	/* a read-only file in a writable directory */
	assert_int_equal(chmod(sub, 0755), 0);
	assert_int_equal(chmod(path, 0444), 0);
	assert_int_equal(state_open(path, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "read-only"));
	/* reading it is fine */
	state_close(open_ok(path, STATE_OPEN_READONLY));

	jerror_release(&err);
	free(sub);
	free(path);
	free(nested);
	tu_rmtree(dir);
	free(dir);
}

static void test_disk_full(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct strbuf big = STRBUF_INIT;
	struct state_row *row = NULL;
	unsigned char h[STATE_HASH_LEN] = { 1 };
	struct rkey k1 = IK(1);
	bool found = false;
	uint64_t n = 0;
	enum jerr rc = JERR_OK;

	put_ok(st, "d", k1, "{\"committed\":true}", true);
	assert_int_equal(state_limit_size(st, 64 * 1024, &err), JERR_OK);
	for (int i = 0; i < 2000; i++)
		strbuf_addstr(&big, "0123456789abcdef");
	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (int64_t i = 100; i < 200 && !rc; i++) {
		struct rkey k = { true, i, SLICE_LIT("big") };
		rc = state_put(st, "d", &k, (struct slice){ big.buf, big.len }, h, true, &err);
	}
	assert_int_equal(rc, JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "the disk is full"));
	assert_non_null(strstr(err.msg.buf, path));
	assert_non_null(strstr(err.msg.buf, "record \"big\" of destination \"d\""));
	assert_non_null(strstr(err.hint.buf, "free space"));
	assert_true(err.detail.len > 0);
	state_rollback(st);

	/* the committed state is intact, and the store still works */
	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_true(slice_eq_str(row->payload, "{\"committed\":true}"));
	put_ok(st, "d", IK(2), "{}", true);
	state_close(st);

	st = open_ok(path, STATE_OPEN_READONLY);
	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 2);
	state_close(st);
	{
		char *check = raw_text(path, "PRAGMA integrity_check");
		assert_string_equal(check, "ok");
		free(check);
	}
	strbuf_release(&big);
	jerror_release(&err);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

static void test_hash(void **s)
{
	unsigned char out[STATE_HASH_LEN];
	XXH128_hash_t h = XXH3_128bits("{\"a\":1}", 7);
	state_hash("{\"a\":1}", 7, out);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(out[i], (unsigned char)(h.high64 >> (56 - 8 * i)));
		assert_int_equal(out[8 + i], (unsigned char)(h.low64 >> (56 - 8 * i)));
	}
	/* known value of the empty input */
	state_hash("", 0, out);
	assert_memory_equal(out,
			    "\x99\xaa\x06\xd3\x01\x47\x98\xd8\x60\x01\xc3\x24\x46\x8d\x49\x7f",
			    STATE_HASH_LEN);
}

/* ---- high-water marks; a version 1 store upgrades to version 2 ---- */

static void test_marks(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	struct strbuf v = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	bool found = true;

	strbuf_addstr(&v, "stale");
	assert_int_equal(state_mark_get(st, "sched", &v, &found, &err), JERR_OK);
	assert_false(found);
	assert_int_equal(v.len, 0);
	assert_int_equal(state_mark_set(st, "sched", "2024-01-01T00:00:00Z", &err), JERR_OK);
	assert_int_equal(state_mark_set(st, "other", "42", &err), JERR_OK);
	assert_int_equal(state_mark_set(st, "sched", "2024-02-01T00:00:00Z", &err), JERR_OK);
	assert_int_equal(state_mark_get(st, "sched", &v, &found, &err), JERR_OK);
	assert_true(found);
	assert_string_equal(v.buf, "2024-02-01T00:00:00Z");
	/* inside a rolled-back transaction the mark does not change */
	assert_int_equal(state_begin(st, &err), JERR_OK);
	assert_int_equal(state_mark_set(st, "other", "43", &err), JERR_OK);
	state_rollback(st);
	assert_int_equal(state_mark_get(st, "other", &v, &found, &err), JERR_OK);
	assert_string_equal(v.buf, "42");
	state_close(st);

	/* read-only: readable, not writable */
	st = open_ok(path, STATE_OPEN_READONLY);
	assert_int_equal(state_mark_get(st, "sched", &v, &found, &err), JERR_OK);
	assert_true(found);
	assert_string_equal(v.buf, "2024-02-01T00:00:00Z");
	assert_int_equal(state_mark_set(st, "sched", "x", &err), JERR_STATE);
	jerror_release(&err);
	state_close(st);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM marks"), 2);

	strbuf_release(&v);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

static void test_v1_upgrades_to_v2(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	struct strbuf v = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	bool found = true;

	put_ok(st, "d", IK(1), "{\"a\":1}", true);
	state_close(st);
	/* make it what joey with schema version 1 wrote */
	raw_exec(path, "DROP TABLE marks; UPDATE meta SET value = 1 WHERE key = 'schema_version';");

	/* read-only (joey plan): opened as it is, records readable, no marks */
	st = open_ok(path, STATE_OPEN_READONLY_OR_EMPTY);
	assert_int_equal(state_schema_version(st), 1);
	{
		uint64_t n = 0;
		assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
		assert_int_equal(n, 1);
	}
	assert_int_equal(state_mark_get(st, "sched", &v, &found, &err), JERR_OK);
	assert_false(found);
	state_close(st);
	assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 1);

	/* CREATE (joey run) migrates: marks exist, records kept */
	st = open_ok(path, STATE_OPEN_CREATE);
	assert_int_equal(state_schema_version(st), 2);
	assert_int_equal(state_mark_set(st, "sched", "7", &err), JERR_OK);
	assert_int_equal(state_mark_get(st, "sched", &v, &found, &err), JERR_OK);
	assert_true(found);
	assert_string_equal(v.buf, "7");
	state_close(st);
	assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 2);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM records"), 1);

	jerror_release(&err);
	strbuf_release(&v);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_nested_and_reopen),
		cmocka_unit_test(test_migrations_idempotent),
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_v1_upgrades_to_v2),
		cmocka_unit_test(test_newer_version_refused),
		cmocka_unit_test(test_not_a_state_store),
		cmocka_unit_test(test_readonly_missing_and_empty),
		cmocka_unit_test(test_put_get_delete),
		cmocka_unit_test(test_cursor_order_mixed_keys),
		cmocka_unit_test(test_cursor_needs_no_sort),
		cmocka_unit_test(test_two_cursors_and_interleaved_writes),
		cmocka_unit_test(test_cursor_large_payloads),
		cmocka_unit_test(test_mark_failed),
		cmocka_unit_test(test_set_exists),
		cmocka_unit_test(test_rollback_leaves_nothing),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_ledger),
		cmocka_unit_test(test_locks),
		cmocka_unit_test(test_read_only_directory),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
