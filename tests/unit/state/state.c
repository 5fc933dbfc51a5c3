/* state.c: tests of the state store's interface (src/state/state.c), on every back end. */
#include "state/backends.h"

#include "base/timeutil.h"
#include "state/confgen.h"
#include "state/runnotes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>
#include <xxhash.h>

/*
 * Each test runs twice: against an SQLite file and against a PostgreSQL schema
 * ($JOEY_PG_URL; that group is skipped without it). Tests of what only one back end
 * has (the file, WAL, disk full; the URL, the server) are in sqlite.c and pg.c.
 */

/* ---- open, create, migrate, refuse ---- */

static void test_create_and_reopen(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct strbuf name = STRBUF_INIT;
	uint64_t n = 0;
	struct jerror err = JERROR_INIT;

	assert_true(tb_exists(path));
	assert_int_equal(state_schema_version(st), STATE_SCHEMA_VERSION);
	state_path_display(path, &name);
	assert_string_equal(state_path(st), name.buf);
	assert_string_equal(state_backend_name(st), B->kind == TB_SQLITE ? "SQLite" : "PostgreSQL");
	tb_put(st, "d", IK(1), "{\"a\":1}", true);
	state_close(st);
	assert_int_equal(tb_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"),
			 STATE_SCHEMA_VERSION);

	st = tb_open(path, STATE_OPEN_READONLY);
	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 1);
	state_close(st);
	strbuf_release(&name);
	free(path);
}

static void test_migrations_idempotent(void **s)
{
	char *path = tb_fresh();
	int64_t objects;
	state_close(tb_open(path, STATE_OPEN_CREATE));
	objects = tb_objects(path);
	assert_true(objects >= 5);
	for (int i = 0; i < 3; i++) {
		struct state *st = tb_open(path, STATE_OPEN_CREATE);
		assert_int_equal(state_schema_version(st), STATE_SCHEMA_VERSION);
		state_close(st);
	}
	assert_int_equal(tb_objects(path), objects);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM meta WHERE key = 'schema_version'"), 1);
	free(path);
}

static void test_newer_version_refused(void **s)
{
	char *path = tb_fresh();
	struct strbuf want = STRBUF_INIT, name = STRBUF_INIT;
	enum state_open_mode modes[] = { STATE_OPEN_CREATE, STATE_OPEN_READONLY,
					 STATE_OPEN_READONLY_OR_EMPTY };
	tb_make_version(path, 999);
	state_path_display(path, &name);
	strbuf_addf(&want, "state store \"%s\" was written by a newer joey (schema version 999, "
			   "this joey knows up to %d)", name.buf, STATE_SCHEMA_VERSION);
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
	/* the store was not touched */
	assert_int_equal(tb_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 999);
	strbuf_release(&want);
	strbuf_release(&name);
	free(path);
}

static void test_readonly_missing_and_empty(void **s)
{
	char *path = tb_fresh();
	struct strbuf want = STRBUF_INIT, name = STRBUF_INIT;
	struct state *st = NULL;
	struct state_cursor *cur = NULL;
	struct state_row *row = (struct state_row *)1;
	struct jerror err = JERROR_INIT;
	uint64_t n = 7;
	bool found = true;

	assert_int_equal(state_open(path, STATE_OPEN_READONLY, &st, &err), JERR_STATE);
	assert_null(st);
	state_path_display(path, &name);
	strbuf_addf(&want, "state store \"%s\" does not exist", name.buf);
	assert_string_equal(err.msg.buf, want.buf);
	assert_non_null(strstr(err.hint.buf, "run 'joey run'"));
	assert_non_null(strstr(err.hint.buf, "or pass --state"));

	/* plan before any run: an empty store, nothing created */
	st = tb_open(path, STATE_OPEN_READONLY_OR_EMPTY);
	assert_false(tb_exists(path));
	assert_string_equal(state_path(st), name.buf);
	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 0);
	assert_int_equal(state_cursor_open(st, "d", &cur, &err), JERR_OK);
	assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
	assert_null(row);
	state_cursor_close(cur);
	{
		struct rkey k = IK(1);
		struct state_row *r = NULL;
		struct strbuf v = STRBUF_INIT;
		assert_int_equal(state_get(st, "d", &k, &r, &found, &err), JERR_OK);
		assert_false(found);
		assert_int_equal(state_mark_get(st, "sched", &v, NULL, &found, &err), JERR_OK);
		assert_false(found);
		assert_int_equal(state_mark_failed(st, "d", &k, "x", (struct slice){ NULL, 0 }, &err), JERR_STATE);
		assert_non_null(strstr(err.msg.buf, "is open read-only"));
		strbuf_release(&v);
	}
	assert_int_equal(state_begin(st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "is open read-only"));
	state_close(st);
	assert_false(tb_exists(path));

	/* a real store opened read-only refuses writes too */
	state_close(tb_open(path, STATE_OPEN_CREATE));
	st = tb_open(path, STATE_OPEN_READONLY);
	assert_int_equal(state_begin(st, &err), JERR_STATE);
	{
		int64_t id;
		assert_int_equal(state_run_start(st, "d", "plan", &id, &err), JERR_STATE);
	}
	state_close(st);

	strbuf_release(&want);
	strbuf_release(&name);
	jerror_release(&err);
	free(path);
}

/* ---- records ---- */

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

static void test_put_get_delete(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	struct rkey k7 = IK(7), t7 = TK("7");
	unsigned char h[STATE_HASH_LEN];
	bool found = false;
	uint64_t n = 0;

	tb_put(st, "d", k7, "{\"n\":7}", true);
	tb_put(st, "d", TK("abc"), "{\"s\":\"abc\"}", false);
	tb_put(st, "other", k7, "{\"o\":1}", true);

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
	tb_put(st, "d", k7, "{\"n\":8}", false);
	assert_int_equal(state_get(st, "d", &k7, &row, &found, &err), JERR_OK);
	assert_true(slice_eq_str(row->payload, "{\"n\":8}"));
	assert_false(row->in_scope);

	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 0); /* both out of scope now */
	tb_put(st, "d", k7, "{\"n\":9}", true);
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
	free(path);
}

static void test_cursor_order_mixed_keys(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
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
		tb_put(st, "d", keys[k], "{}", true);
	tb_put(st, "e", TK("0"), "{}", true); /* another destination: not listed */

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
	free(path);
}

/* Keys of dest d in [lo, hi) through a range cursor, as "k1 k2 ..." (a text key in quotes). */
static void range_keys(struct state *st, const struct rkey *lo, const struct rkey *hi, struct strbuf *out)
{
	struct key_range r = { lo, hi };
	struct state_cursor *cur = NULL;
	struct state_row *row = NULL;
	struct jerror err = JERROR_INIT;
	strbuf_reset(out);
	assert_int_equal(state_cursor_open_range(st, "d", &r, &cur, &err), JERR_OK);
	while (state_cursor_next(cur, &row, &err) == JERR_OK && row) {
		if (out->len)
			strbuf_addch(out, ' ');
		if (row->key.is_int)
			strbuf_addslice(out, row->key.text);
		else
			strbuf_addf(out, "'%.*s'", (int)row->key.text.len, row->key.text.ptr);
	}
	assert_int_equal(err.code, JERR_OK);
	state_cursor_close(cur);
	jerror_release(&err);
}

static uint64_t range_count(struct state *st, const struct rkey *lo, const struct rkey *hi)
{
	struct key_range r = { lo, hi };
	struct jerror err = JERROR_INIT;
	uint64_t n = 0;
	assert_int_equal(state_count_range(st, "d", &r, &n, &err), JERR_OK);
	jerror_release(&err);
	return n;
}

/* A worker's partition: [lo, hi) in key order, integers before text, open bounds. */
static void test_cursor_key_range(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct strbuf got = STRBUF_INIT;
	struct rkey keys[] = { IK(-3), IK(2), IK(10), IK(11), TK(""), TK("10"), TK("B"), TK("a"), TK("ab") };
	struct rkey k2 = IK(2), k11 = IK(11), k99 = IK(99), ta = TK("a"), tb = TK("b"), t0 = TK("");

	for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
		tb_put(st, "d", keys[k], "{}", k != 3); /* 11 is out of scope */
	tb_put(st, "e", IK(5), "{}", true);          /* another destination */
	range_keys(st, NULL, NULL, &got);
	assert_string_equal(got.buf, "-3 2 10 11 '' '10' 'B' 'a' 'ab'");
	range_keys(st, &k2, &k11, &got);
	assert_string_equal(got.buf, "2 10");
	range_keys(st, NULL, &k2, &got);
	assert_string_equal(got.buf, "-3");
	range_keys(st, &k11, NULL, &got);
	assert_string_equal(got.buf, "11 '' '10' 'B' 'a' 'ab'");
	range_keys(st, &k99, &ta, &got); /* integers above 99 and text below "a" */
	assert_string_equal(got.buf, "'' '10' 'B'");
	range_keys(st, &t0, &tb, &got);
	assert_string_equal(got.buf, "'' '10' 'B' 'a' 'ab'");
	range_keys(st, &ta, &ta, &got); /* empty */
	assert_string_equal(got.buf, "");
	/* the mass-delete guard of a partition counts its in-scope rows */
	assert_int_equal(range_count(st, NULL, NULL), 8);
	assert_int_equal(range_count(st, &k2, &k99), 2); /* 2, 10 (11 out of scope) */
	assert_int_equal(range_count(st, &k99, NULL), 5);
	assert_int_equal(range_count(st, NULL, &ta), 6);
	strbuf_release(&got);
	state_close(st);
	free(path);
}

/* A range cursor over more than one batch stops exactly at hi. */
static void test_cursor_key_range_batches(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_cursor *cur = NULL;
	struct state_row *row = NULL;
	struct rkey lo = IK(100), hi = IK(700);
	struct key_range r = { &lo, &hi };
	int64_t want = 100, n = 0;

	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (int64_t i = 0; i < 1000; i++) {
		char t[24];
		int len = snprintf(t, sizeof(t), "%lld", (long long)i);
		struct rkey k = { true, i, { t, (size_t)len } };
		unsigned char h[STATE_HASH_LEN];
		state_hash("{}", 2, h);
		assert_int_equal(state_put(st, "d", &k, SLICE_LIT("{}"), h, true, &err), JERR_OK);
	}
	assert_int_equal(state_commit(st, &err), JERR_OK);
	assert_int_equal(state_cursor_open_range(st, "d", &r, &cur, &err), JERR_OK);
	while (state_cursor_next(cur, &row, &err) == JERR_OK && row) {
		assert_int_equal(row->key.i, want);
		want++;
		n++;
	}
	assert_int_equal(n, 600);
	state_cursor_close(cur);
	jerror_release(&err);
	state_close(st);
	free(path);
}

/*
 * The engine writes Braze's answers in transactions of thousands of rows (run.c,
 * BATCH_ROWS): every row is stored as put, in order, on both back ends (PostgreSQL
 * sends them in statements of up to 256 rows, a full one prepared once), a key put
 * twice keeps its last payload, and a rolled-back transaction leaves nothing.
 */
static void test_large_transactions(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	char payload[64];
	bool found = false;
	const int n = 1000; /* three full statements of 256 and a partial one */

	for (int round = 0; round < 2; round++) {
		assert_int_equal(state_begin(st, &err), JERR_OK);
		for (int i = 1; i <= n; i++) {
			snprintf(payload, sizeof(payload), "{\"n\":%d,\"round\":%d}", i, round);
			tb_put(st, "d", (struct rkey){ true, i, { NULL, 0 } }, payload, true);
			if (i == 300) { /* keys again in the same transaction: the last put wins */
				tb_put(st, "d", (struct rkey){ true, 7, { NULL, 0 } }, "{\"again\":7}", true);
				tb_put(st, "d", (struct rkey){ true, 290, { NULL, 0 } }, "{\"again\":290}", true);
			}
		}
		assert_int_equal(state_commit(st, &err), JERR_OK);
	}
	/* a transaction rolled back after many puts leaves every row as it was */
	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (int i = 1; i <= n; i++)
		tb_put(st, "d", (struct rkey){ true, i, { NULL, 0 } }, "{\"lost\":true}", false);
	tb_put(st, "d", (struct rkey){ true, n + 1, { NULL, 0 } }, "{\"lost\":true}", false);
	state_rollback(st);

	uint64_t count = 0;
	assert_int_equal(state_count(st, "d", &count, &err), JERR_OK);
	assert_int_equal(count, n);
	for (int i = 1; i <= n + 1; i++) {
		struct rkey k = { true, i, { NULL, 0 } };
		assert_int_equal(state_get(st, "d", &k, &row, &found, &err), JERR_OK);
		if (i == n + 1) {
			assert_false(found);
			break;
		}
		assert_true(found);
		if (i == 7 || i == 290)
			snprintf(payload, sizeof(payload), "{\"again\":%d}", i);
		else
			snprintf(payload, sizeof(payload), "{\"n\":%d,\"round\":1}", i);
		assert_true(slice_eq_str(row->payload, payload));
		assert_true(row->confirmed);
		assert_true(row->in_scope);
	}
	state_close(st);
	jerror_release(&err);
	free(path);
}

/*
 * Keys that look alike in one transaction: text and integer spellings of the same
 * digits, the same key for two destinations, negative keys, a text key put again
 * (PostgreSQL finds a key already waiting in its batch by hash and sends the first
 * before the second). Every row ends as last put, and confirmed at about now.
 */
static void test_put_batch_lookalike_keys(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	char payload[64], key[32];
	bool found = false;
	const int n = 600;
	int64_t t0 = time_now_ms();

	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (int i = -n; i <= n; i++) {
		snprintf(payload, sizeof(payload), "{\"i\":%d}", i);
		tb_put(st, "d", (struct rkey){ true, i, { NULL, 0 } }, payload, true);
		snprintf(key, sizeof(key), "%d", i);
		snprintf(payload, sizeof(payload), "{\"t\":%d}", i);
		tb_put(st, "d", (struct rkey){ false, 0, slice_of(key) }, payload, true);
		snprintf(payload, sizeof(payload), "{\"e\":%d}", i);
		tb_put(st, "e", (struct rkey){ true, i, { NULL, 0 } }, payload, true);
		if (i % 97 == 0) { /* again, text and integer, in the same batch */
			snprintf(payload, sizeof(payload), "{\"t2\":%d}", i);
			tb_put(st, "d", (struct rkey){ false, 0, slice_of(key) }, payload, true);
			snprintf(payload, sizeof(payload), "{\"i2\":%d}", i);
			tb_put(st, "d", (struct rkey){ true, i, { NULL, 0 } }, payload, true);
		}
	}
	assert_int_equal(state_commit(st, &err), JERR_OK);

	uint64_t count = 0;
	assert_int_equal(state_count(st, "d", &count, &err), JERR_OK);
	assert_int_equal(count, 2 * (2 * n + 1));
	assert_int_equal(state_count(st, "e", &count, &err), JERR_OK);
	assert_int_equal(count, 2 * n + 1);
	for (int i = -n; i <= n; i++) {
		struct rkey ik = { true, i, { NULL, 0 } };
		snprintf(key, sizeof(key), "%d", i);
		struct rkey tk = { false, 0, slice_of(key) };
		assert_int_equal(state_get(st, "d", &ik, &row, &found, &err), JERR_OK);
		assert_true(found);
		snprintf(payload, sizeof(payload), i % 97 ? "{\"i\":%d}" : "{\"i2\":%d}", i);
		assert_true(slice_eq_str(row->payload, payload));
		assert_true(row->confirmed && row->confirmed_at >= t0 - 1000 && row->confirmed_at <= time_now_ms() + 1000);
		assert_int_equal(state_get(st, "d", &tk, &row, &found, &err), JERR_OK);
		assert_true(found);
		snprintf(payload, sizeof(payload), i % 97 ? "{\"t\":%d}" : "{\"t2\":%d}", i);
		assert_true(slice_eq_str(row->payload, payload));
		assert_int_equal(state_get(st, "e", &ik, &row, &found, &err), JERR_OK);
		assert_true(found);
		snprintf(payload, sizeof(payload), "{\"e\":%d}", i);
		assert_true(slice_eq_str(row->payload, payload));
	}
	state_close(st);
	jerror_release(&err);
	free(path);
}

/*
 * Puts inside a transaction are written behind, in batches (both back ends): every
 * read in the same transaction sees them (one record, counts, a cursor), a key put
 * again reads as its last put, and a rollback leaves none of them.
 */
static void test_puts_seen_in_transaction(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	char payload[32];
	bool found = false;
	uint64_t count = 0;

	tb_put(st, "d", IK(1), "{\"before\":1}", true);
	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (int i = 2; i <= 300; i++) { /* a full batch of 256 and some */
		snprintf(payload, sizeof(payload), "{\"n\":%d}", i);
		tb_put(st, "d", (struct rkey){ true, i, { NULL, 0 } }, payload, true);
	}
	tb_put(st, "d", IK(1), "{\"again\":1}", true);
	struct rkey k299 = { true, 299, { NULL, 0 } };
	assert_int_equal(state_get(st, "d", &k299, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_true(slice_eq_str(row->payload, "{\"n\":299}"));
	struct rkey k1 = IK(1);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_true(slice_eq_str(row->payload, "{\"again\":1}"));
	tb_put(st, "d", (struct rkey){ true, 301, { NULL, 0 } }, "{\"n\":301}", true);
	assert_int_equal(state_count(st, "d", &count, &err), JERR_OK);
	assert_int_equal(count, 301);
	state_rollback(st);

	assert_int_equal(state_count(st, "d", &count, &err), JERR_OK);
	assert_int_equal(count, 1);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_true(slice_eq_str(row->payload, "{\"before\":1}"));
	state_close(st);
	jerror_release(&err);
	free(path);
}

static void test_two_cursors_and_interleaved_writes(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_cursor *a = NULL, *b = NULL;
	struct state_row *ra = NULL, *rb = NULL;
	int na = 0, nb = 0;

	for (int i = 1; i <= 600; i++) { /* several batches */
		char key[16];
		struct rkey k = { true, i, { key, 0 } };
		k.text.len = (size_t)snprintf(key, sizeof(key), "%d", i);
		tb_put(st, "A", k, "{\"a\":1}", true);
		if (i % 2)
			tb_put(st, "B", k, "{\"b\":1}", true);
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
				tb_put(st, "A", k, "{\"a\":2}", true);
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
		tb_put(st, "B", k2, "{\"b\":2}", true);
		tb_put(st, "B", k600, "{\"b\":600}", true); /* beyond the first batch: seen */
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
}

static void test_cursor_large_payloads(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
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
	free(path);
}

static void test_mark_failed(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	struct rkey k1 = IK(1), kx = TK("x");
	bool found = false;
	uint64_t n = 0;

	tb_put(st, "d", k1, "{\"v\":1}", true);
	assert_int_equal(state_mark_failed(st, "d", &k1, "HTTP 500", (struct slice){ NULL, 0 }, &err), JERR_OK);
	assert_int_equal(state_mark_failed(st, "d", &k1, "HTTP 503", (struct slice){ NULL, 0 }, &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_true(row->pending);
	assert_int_equal(row->attempts, 2);
	assert_true(slice_eq_str(row->last_error, "HTTP 503"));
	assert_true(slice_eq_str(row->payload, "{\"v\":1}")); /* confirmed payload kept */
	assert_true(row->confirmed);
	assert_true(row->in_scope);
	/* a fail payload (the groups the attempt added) replaces it; the hash stays */
	{
		unsigned char before[STATE_HASH_LEN];
		const char *kept = "{\"attributes\":{\"v\":1},\"groups\":[\"G\"]}";
		memcpy(before, row->hash, STATE_HASH_LEN);
		assert_int_equal(state_mark_failed(st, "d", &k1, "timeout", (struct slice){ kept, strlen(kept) }, &err),
				 JERR_OK);
		assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
		assert_true(slice_eq_str(row->payload, kept));
		assert_memory_equal(row->hash, before, STATE_HASH_LEN);
		assert_int_equal(row->attempts, 3);
		/* and an empty one keeps what is stored */
		assert_int_equal(state_mark_failed(st, "d", &k1, "HTTP 500", (struct slice){ NULL, 0 }, &err), JERR_OK);
		assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
		assert_true(slice_eq_str(row->payload, kept));
		assert_int_equal(row->attempts, 4);
	}

	/* success clears the marker */
	tb_put(st, "d", k1, "{\"v\":2}", true);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_false(row->pending);
	assert_int_equal(row->attempts, 0);
	assert_int_equal(row->last_error.len, 0);

	/* never confirmed: a placeholder */
	assert_int_equal(state_mark_failed(st, "d", &kx, "bad email", (struct slice){ NULL, 0 }, &err), JERR_OK);
	assert_int_equal(state_mark_failed(st, "d", &kx, "bad email", (struct slice){ NULL, 0 }, &err), JERR_OK);
	assert_int_equal(state_mark_failed(st, "d", &kx, "bad email!", (struct slice){ NULL, 0 }, &err), JERR_OK);
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
	/*
	 * a failed create keeps what it may have set (for its groups): the row stays a
	 * placeholder (hash zero, no confirmed_at, not in scope), with that payload
	 */
	{
		struct rkey ky = TK("y");
		const char *a1 = "{\"attributes\":{\"v\":1},\"groups\":[\"G\"]}";
		const char *a2 = "{\"attributes\":{\"v\":1},\"groups\":[\"G\",\"H\"]}";
		assert_int_equal(state_mark_failed(st, "d", &ky, "timeout", (struct slice){ a1, strlen(a1) }, &err),
				 JERR_OK);
		assert_int_equal(state_get(st, "d", &ky, &row, &found, &err), JERR_OK);
		assert_true(found);
		assert_true(slice_eq_str(row->payload, a1));
		assert_true(state_row_placeholder(row));
		assert_false(row->confirmed);
		assert_false(row->in_scope);
		assert_true(row->pending);
		assert_int_equal(row->confirmed_at, 0);
		assert_int_equal(state_mark_failed(st, "d", &ky, "timeout", (struct slice){ a2, strlen(a2) }, &err),
				 JERR_OK);
		assert_int_equal(state_get(st, "d", &ky, &row, &found, &err), JERR_OK);
		assert_true(slice_eq_str(row->payload, a2));
		assert_true(state_row_placeholder(row));
		assert_int_equal(row->attempts, 2);
		assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
		assert_int_equal(n, 1);
		/*
		 * its release confirmed (Additive, Enrich: the record left before a create
		 * succeeded) is put with the zero hash: still a placeholder, no confirmed_at,
		 * not pending, the groups gone; alone and in a transaction (the batched puts)
		 */
		for (int in_tx = 0; in_tx < 2; in_tx++) {
			const unsigned char zero[STATE_HASH_LEN] = { 0 };
			const char *released = "{\"attributes\":{\"v\":1},\"groups\":[]}";
			assert_int_equal(state_mark_failed(st, "d", &ky, "timeout", (struct slice){ a2, strlen(a2) }, &err),
					 JERR_OK);
			if (in_tx)
				assert_int_equal(state_begin(st, &err), JERR_OK);
			assert_int_equal(state_put(st, "d", &ky, slice_of(released), zero, false, &err), JERR_OK);
			if (in_tx)
				assert_int_equal(state_commit(st, &err), JERR_OK);
			assert_int_equal(state_get(st, "d", &ky, &row, &found, &err), JERR_OK);
			assert_true(state_row_placeholder(row));
			assert_false(row->confirmed);
			assert_int_equal(row->confirmed_at, 0);
			assert_false(row->pending);
			assert_false(row->in_scope);
			assert_true(slice_eq_str(row->payload, released));
		}
		tb_put(st, "d", ky, "{\"y\":1}", true);
		assert_int_equal(state_get(st, "d", &ky, &row, &found, &err), JERR_OK);
		assert_false(state_row_placeholder(row));
		assert_true(row->confirmed);
	}
	/* confirming it later turns it into a normal row */
	tb_put(st, "d", kx, "{\"x\":1}", true);
	assert_int_equal(state_get(st, "d", &kx, &row, &found, &err), JERR_OK);
	assert_true(row->confirmed);
	assert_int_equal(row->attempts, 0);

	jerror_release(&err);
	state_close(st);
	free(path);
}

static void test_set_exists(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	struct rkey k1 = IK(1), k2 = IK(2);
	bool found = false;

	tb_put(st, "d", k1, "{\"v\":1}", true);
	assert_int_equal(state_set_exists(st, "d", &k1, true, 1234, &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_int_equal(row->braze_exists, 1);
	assert_int_equal(row->checked_at, 1234);
	assert_true(slice_eq_str(row->payload, "{\"v\":1}"));
	assert_true(row->confirmed);
	/* a later put keeps what we know about existence */
	tb_put(st, "d", k1, "{\"v\":2}", true);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_int_equal(row->braze_exists, 1);

	assert_int_equal(state_set_exists(st, "d", &k2, false, 99, &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &k2, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(row->braze_exists, 0);
	assert_false(row->confirmed);
	assert_false(row->in_scope);
	assert_false(row->pending);

	/* a look-up that failed, then was answered: the failure is over */
	struct rkey k3 = IK(3);
	assert_int_equal(state_mark_failed(st, "d", &k3, "HTTP 503", (struct slice){ NULL, 0 }, &err), JERR_OK);
	assert_int_equal(state_set_exists(st, "d", &k3, false, 777, &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &k3, &row, &found, &err), JERR_OK);
	assert_int_equal(row->braze_exists, 0);
	assert_int_equal(row->checked_at, 777);
	assert_false(row->pending);
	assert_int_equal(row->attempts, 0);
	assert_int_equal(row->last_error.len, 0);
	assert_false(row->confirmed);
	jerror_release(&err);
	state_close(st);
	free(path);
}

/* One cursor row as text: what the diff compares, and (full) the rest. */
static void row_text(const struct state_row *r, bool full, struct strbuf *out)
{
	strbuf_addf(out, "%d %lld %.*s |%.*s| ", r->key.is_int, (long long)r->key.i, (int)r->key.text.len,
		    r->key.text.ptr, (int)r->payload.len, r->payload.ptr);
	for (size_t i = 0; i < STATE_HASH_LEN; i++)
		strbuf_addf(out, "%02x", r->hash[i]);
	strbuf_addf(out, " in_scope=%d pending=%d attempts=%d exists=%d checked=%lld confirmed=%d", r->in_scope,
		    r->pending, r->attempts, r->braze_exists, (long long)r->checked_at, r->confirmed);
	if (full)
		strbuf_addf(out, " error=%.*s confirmed_at>0=%d updated_at>0=%d", (int)r->last_error.len,
			    r->last_error.ptr, r->confirmed_at > 0, r->updated_at > 0);
	strbuf_addch(out, '\n');
}

/* Every row of dest d through a cursor, lean or not, over [lo, hi) when lo is set. */
static void cursor_text(struct state *st, bool lean, const struct rkey *lo, const struct rkey *hi,
			struct strbuf *out)
{
	struct state_cursor *cur = NULL;
	struct state_row *row = NULL;
	struct jerror err = JERROR_INIT;
	struct key_range r = { lo, hi };
	assert_int_equal(state_cursor_open_range(st, "d", lo ? &r : NULL, &cur, &err), JERR_OK);
	if (lean)
		state_cursor_lean(cur);
	while (state_cursor_next(cur, &row, &err) == JERR_OK && row) {
		row_text(row, false, out);
		/* a back end may read whole rows; SQLite reads the lean ones */
		if (lean && B->kind == TB_SQLITE)
			assert_true(!row->last_error.len && !row->confirmed_at && !row->updated_at);
	}
	assert_null(row);
	state_cursor_close(cur);
	jerror_release(&err);
}

/*
 * state_cursor_lean (the diff's cursors): the same rows, keys, payloads, hashes and
 * flags as a whole-row cursor, placeholders, retried rows and Enrich look-ups included,
 * over several batches and a key range; only the error text and times are left out.
 */
static void test_cursor_lean(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct strbuf full = STRBUF_INIT, lean = STRBUF_INIT, all = STRBUF_INIT;
	char payload[64];

	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (int i = 1; i <= 700; i++) {
		char kt[16];
		snprintf(kt, sizeof(kt), "%d", i);
		struct rkey k = { true, i, { kt, strlen(kt) } };
		snprintf(payload, sizeof(payload), "{\"v\":%d}", i);
		if (i % 10 != 3)
			tb_put(st, "d", k, payload, i % 4 != 0);
		/* some placeholders keep a failed create's payload (i % 20 == 13) */
		if (i % 10 == 3 || i % 7 == 0)
			assert_int_equal(state_mark_failed(st, "d", &k, "HTTP 500",
							   i % 20 == 13 ? (struct slice){ payload, strlen(payload) }
									: (struct slice){ NULL, 0 },
							   &err),
					 JERR_OK);
		if (i % 11 == 0)
			assert_int_equal(state_set_exists(st, "d", &k, i % 2, 1000 + i, &err), JERR_OK);
	}
	tb_put(st, "d", TK("zz"), "{\"t\":1}", true);
	tb_put(st, "other", IK(5), "{\"o\":1}", true);
	assert_int_equal(state_commit(st, &err), JERR_OK);

	struct state_cursor *cur = NULL;
	struct state_row *row = NULL;
	assert_int_equal(state_cursor_open(st, "d", &cur, &err), JERR_OK);
	size_t n = 0;
	while (state_cursor_next(cur, &row, &err) == JERR_OK && row) {
		row_text(row, false, &full);
		row_text(row, true, &all);
		n++;
		/* confirmed is whether the hash is not zero, as the lean cursor says */
		assert_int_equal(row->confirmed, !state_row_placeholder(row));
		assert_int_equal(row->confirmed || row->payload.len == 0, n % 20 != 13);
		if (row->pending)
			assert_true(slice_eq_str(row->last_error, "HTTP 500"));
	}
	state_cursor_close(cur);
	assert_int_equal(n, 701);
	cursor_text(st, true, NULL, NULL, &lean);
	assert_string_equal(full.buf, lean.buf);

	struct rkey lo = IK(250), hi = IK(600);
	strbuf_reset(&full);
	strbuf_reset(&lean);
	cursor_text(st, false, &lo, &hi, &full);
	cursor_text(st, true, &lo, &hi, &lean);
	assert_string_equal(full.buf, lean.buf);
	assert_non_null(strstr(lean.buf, "1 250 250 "));
	assert_null(strstr(lean.buf, "1 600 600 "));

	strbuf_release(&full);
	strbuf_release(&lean);
	strbuf_release(&all);
	jerror_release(&err);
	state_close(st);
	free(path);
}

static void test_rollback_leaves_nothing(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	struct rkey k1 = IK(1), k2 = IK(2);
	bool found = true;
	uint64_t n = 9;

	tb_put(st, "d", k1, "{\"v\":1}", true);
	assert_int_equal(state_begin(st, &err), JERR_OK);
	assert_int_equal(state_begin(st, &err), JERR_INTERNAL); /* no nesting */
	tb_put(st, "d", k1, "{\"v\":2}", true);
	tb_put(st, "d", k2, "{\"v\":2}", true);
	assert_int_equal(state_mark_failed(st, "d", &k1, "e", (struct slice){ NULL, 0 }, &err), JERR_OK);
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
	tb_put(st, "d", k2, "{\"v\":3}", true);
	assert_int_equal(state_commit(st, &err), JERR_OK);
	/* an open transaction is rolled back by close */
	assert_int_equal(state_begin(st, &err), JERR_OK);
	assert_int_equal(state_delete(st, "d", &k2, &err), JERR_OK);
	state_close(st);
	st = tb_open(path, STATE_OPEN_READONLY);
	assert_int_equal(state_get(st, "d", &k2, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_true(slice_eq_str(row->payload, "{\"v\":3}"));
	state_close(st);

	jerror_release(&err);
	free(path);
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
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
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
	free(path);
}

/* run_notes: what started a run and what it read, kept after the process is gone. */
/* ---- config generations (state/confgen.h) ---- */

static void sha_hex(const char *buf, size_t len, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)buf, len);
	for (size_t i = 0; i < sizeof(h); i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static void test_config_generations(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct strbuf snap = STRBUF_INIT, why = STRBUF_INIT, gen = STRBUF_INIT, origin = STRBUF_INIT;
	/* a snapshot is bytes: NULs between path, length and text, any byte in the text */
	static const char s1[] = "a.json\0" "9\0" "{\"x\": 1}\n" "b.json\0" "3\0" "\xff\x01{";
	char g1[65], g2[65], g3[65];
	int64_t at = 0;
	bool found = true;

	sha_hex(s1, sizeof(s1) - 1, g1);
	sha_hex("other", 5, g2);
	sha_hex("third", 5, g3);
	/* nothing yet */
	assert_int_equal(state_config_latest(st, &gen, &origin, &at, &found, &err), JERR_OK);
	assert_false(found);
	assert_int_equal(state_config_fetch(st, g1, &snap, &why, &found, &err), JERR_OK);
	assert_false(found);

	assert_int_equal(state_config_publish(st, g1, s1, sizeof(s1) - 1, NULL, "h:1 start", &err), JERR_OK);
	assert_int_equal(state_config_fetch(st, g1, &snap, &why, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(snap.len, sizeof(s1) - 1);
	assert_memory_equal(snap.buf, s1, sizeof(s1) - 1);
	assert_int_equal((int)why.len, 0);
	assert_int_equal(state_config_latest(st, &gen, &origin, &at, &found, &err), JERR_OK);
	assert_true(found);
	assert_string_equal(gen.buf, g1);
	assert_string_equal(origin.buf, "h:1 start");
	assert_true(at > 0);

	/* withheld: no snapshot, the reason instead; it is the latest now */
	usleep(2000);
	assert_int_equal(state_config_publish(st, g2, NULL, 0, "a secret in a file", "h:2 job", &err), JERR_OK);
	assert_int_equal(state_config_fetch(st, g2, &snap, &why, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal((int)snap.len, 0);
	assert_string_equal(why.buf, "a secret in a file");
	assert_int_equal(state_config_latest(st, &gen, NULL, &at, &found, &err), JERR_OK);
	assert_string_equal(gen.buf, g2);

	/* published again: the same snapshot, the latest once more */
	usleep(2000);
	assert_int_equal(state_config_publish(st, g1, s1, sizeof(s1) - 1, NULL, "h:3 reload", &err), JERR_OK);
	assert_int_equal(state_config_latest(st, &gen, &origin, &at, &found, &err), JERR_OK);
	assert_string_equal(gen.buf, g1);
	assert_string_equal(origin.buf, "h:3 reload");
	assert_int_equal(tb_int(path, "SELECT count(*) FROM config_generations"), 2);

	/* not a generation: refused, nothing written */
	assert_int_equal(state_config_publish(st, "abc", "x", 1, NULL, "h", &err), JERR_INTERNAL);
	jerror_release(&err);
	err = (struct jerror)JERROR_INIT;

	/* a damaged copy (another config's text under g3's name) is refused, not returned */
	assert_int_equal(state_config_publish(st, g3, s1, sizeof(s1) - 1, NULL, "h:4 job", &err), JERR_OK);
	assert_int_equal(state_config_fetch(st, g3, &snap, &why, &found, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "is damaged"));
	assert_int_equal((int)snap.len, 0);
	jerror_release(&err);
	err = (struct jerror)JERROR_INIT;
	tb_exec(path, "UPDATE config_generations SET snapshot = '%%%'");
	assert_int_equal(state_config_fetch(st, g1, &snap, &why, &found, &err), JERR_STATE);
	jerror_release(&err);
	err = (struct jerror)JERROR_INIT;

	/* the store keeps the STATE_CONFIG_KEEP latest */
	for (int i = 0; i < STATE_CONFIG_KEEP + 5; i++) {
		char t[16], g[65];
		int n = snprintf(t, sizeof(t), "c%d", i);
		sha_hex(t, (size_t)n, g);
		assert_int_equal(state_config_publish(st, g, t, (size_t)n, NULL, "h", &err), JERR_OK);
	}
	assert_int_equal(tb_int(path, "SELECT count(*) FROM config_generations"), STATE_CONFIG_KEEP);
	state_close(st);

	/* read-only: fetched, not published */
	st = tb_open(path, STATE_OPEN_READONLY);
	assert_int_equal(state_config_latest(st, &gen, NULL, &at, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal(state_config_publish(st, g1, s1, sizeof(s1) - 1, NULL, "h", &err), JERR_STATE);
	jerror_release(&err);
	state_close(st);
	strbuf_release(&snap);
	strbuf_release(&why);
	strbuf_release(&gen);
	strbuf_release(&origin);
	free(path);
}

static void test_run_notes(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct strbuf trig = STRBUF_INIT;
	int64_t r1 = 0, r2 = 0, read = 0;
	bool found = true;

	assert_int_equal(state_run_start(st, "braze", "run", &r1, &err), JERR_OK);
	assert_int_equal(state_run_start(st, "braze", "run", &r2, &err), JERR_OK);
	assert_int_equal(state_run_note_get(st, r1, &trig, &read, &found, &err), JERR_OK);
	assert_false(found);
	assert_int_equal(read, -1);
	assert_int_equal(state_run_note_set(st, r1, "schedule", 3002, &err), JERR_OK);
	assert_int_equal(state_run_note_set(st, r2, NULL, -1, &err), JERR_OK);
	/* a second note replaces the first */
	assert_int_equal(state_run_note_set(st, r1, "api", 3001, &err), JERR_OK);
	state_close(st);

	st = tb_open(path, STATE_OPEN_READONLY);
	assert_int_equal(state_run_note_get(st, r1, &trig, &read, &found, &err), JERR_OK);
	assert_true(found);
	assert_string_equal(trig.buf, "api");
	assert_int_equal(read, 3001);
	assert_int_equal(state_run_note_get(st, r2, &trig, &read, &found, &err), JERR_OK);
	assert_true(found);
	assert_int_equal((int)trig.len, 0);
	assert_int_equal(read, -1);
	/* read-only: nothing written */
	assert_int_equal(state_run_note_set(st, r2, "cli", 1, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "read-only"));
	strbuf_release(&trig);
	jerror_release(&err);
	state_close(st);
	free(path);
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
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
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
	free(path);
}

static void test_locks(void **s)
{
	char *path = tb_fresh();
	struct state *a = tb_open(path, STATE_OPEN_CREATE);
	struct state *b = tb_open(path, STATE_OPEN_CREATE);
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
	tb_exec(path, "UPDATE locks SET heartbeat_at = heartbeat_at - 3600000 WHERE dest_id = 'braze'");
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
	tb_exec(path, sql.buf);
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
}

static void test_marks(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct strbuf v = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	bool found = true;

	strbuf_addstr(&v, "stale");
	assert_int_equal(state_mark_get(st, "sched", &v, NULL, &found, &err), JERR_OK);
	assert_false(found);
	assert_int_equal(v.len, 0);
	assert_int_equal(state_mark_set(st, "sched", "2024-01-01T00:00:00Z", NULL, &err), JERR_OK);
	assert_int_equal(state_mark_set(st, "other", "42", NULL, &err), JERR_OK);
	assert_int_equal(state_mark_set(st, "sched", "2024-02-01T00:00:00Z", NULL, &err), JERR_OK);
	assert_int_equal(state_mark_get(st, "sched", &v, NULL, &found, &err), JERR_OK);
	assert_true(found);
	assert_string_equal(v.buf, "2024-02-01T00:00:00Z");
	/* a basis: stored with the mark, kept by a set without one, replaced by another */
	{
		struct strbuf b = STRBUF_INIT;
		strbuf_addstr(&b, "stale");
		assert_int_equal(state_mark_get(st, "sched", &v, &b, &found, &err), JERR_OK);
		assert_int_equal(b.len, 0); /* none stored */
		assert_int_equal(state_mark_set(st, "sched", "2024-03-01", "source s, column a", &err), JERR_OK);
		assert_int_equal(state_mark_get(st, "sched", &v, &b, &found, &err), JERR_OK);
		assert_string_equal(v.buf, "2024-03-01");
		assert_string_equal(b.buf, "source s, column a");
		assert_int_equal(state_mark_set(st, "sched", "2024-03-02", NULL, &err), JERR_OK);
		assert_int_equal(state_mark_get(st, "sched", &v, &b, &found, &err), JERR_OK);
		assert_string_equal(b.buf, "source s, column a");
		assert_int_equal(state_mark_set(st, "sched", "9", "source s, column b", &err), JERR_OK);
		assert_int_equal(state_mark_get(st, "sched", &v, &b, &found, &err), JERR_OK);
		assert_string_equal(v.buf, "9");
		assert_string_equal(b.buf, "source s, column b");
		assert_int_equal(state_mark_get(st, "other", &v, &b, &found, &err), JERR_OK);
		assert_int_equal(b.len, 0);
		assert_int_equal(state_mark_set(st, "sched", "2024-02-01T00:00:00Z", NULL, &err), JERR_OK);
		strbuf_release(&b);
	}
	/* inside a rolled-back transaction the mark does not change */
	assert_int_equal(state_begin(st, &err), JERR_OK);
	assert_int_equal(state_mark_set(st, "other", "43", NULL, &err), JERR_OK);
	state_rollback(st);
	assert_int_equal(state_mark_get(st, "other", &v, NULL, &found, &err), JERR_OK);
	assert_string_equal(v.buf, "42");
	state_close(st);

	/* read-only: readable, not writable */
	st = tb_open(path, STATE_OPEN_READONLY);
	assert_int_equal(state_mark_get(st, "sched", &v, NULL, &found, &err), JERR_OK);
	assert_true(found);
	assert_string_equal(v.buf, "2024-02-01T00:00:00Z");
	assert_int_equal(state_mark_set(st, "sched", "x", NULL, &err), JERR_STATE);
	jerror_release(&err);
	state_close(st);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM marks"), 2);

	strbuf_release(&v);
	free(path);
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

/* ---- export and import ---- */

static void test_dump_and_load(void **s)
{
	char *a_path = tb_fresh(), *b_path = tb_fresh();
	struct state *a = tb_open(a_path, STATE_OPEN_CREATE);
	struct state *b = tb_open(b_path, STATE_OPEN_CREATE);
	struct strbuf da = STRBUF_INIT, db = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	struct loader l = { b, 0 };
	bool empty = false;
	int64_t next = 0;

	assert_int_equal(state_is_empty(a, &empty, &err), JERR_OK);
	assert_true(empty);
	fill(a);
	assert_int_equal(state_is_empty(a, &empty, &err), JERR_OK);
	assert_false(empty);
	assert_int_equal(state_dump(a, dump_line, &da, &err), JERR_OK);
	/* tables in order, records by dest_id then key order */
	assert_non_null(strstr(da.buf, "records|'a'|#1|'{}'|"));
	assert_true(strstr(da.buf, "records|'d'|#2|") < strstr(da.buf, "records|'d'|'10'|"));
	assert_true(strstr(da.buf, "records|'d'|'10'|") < strstr(da.buf, "records|'d'|'b'|"));
	assert_true(strstr(da.buf, "records|'d'|'b'|") < strstr(da.buf, "records|'d'|'x\xc3\xa9'|"));
	assert_true(strstr(da.buf, "records|'e'|#-10|''|00000000000000000000000000000000|#0|#0|#0|NULL|#0|#1234|NULL|"));
	assert_true(strstr(da.buf, "records|") < strstr(da.buf, "runs|"));
	assert_true(strstr(da.buf, "runs|") < strstr(da.buf, "ledger|"));
	assert_true(strstr(da.buf, "ledger|") < strstr(da.buf, "locks|"));
	assert_true(strstr(da.buf, "locks|") < strstr(da.buf, "marks|'sched'|'2024-01-01T00:00:00Z'|"));
	assert_non_null(strstr(da.buf, "|'1 failed'\n"));
	assert_non_null(strstr(da.buf, "ledger|#2|NULL|'d'|#2|'HTTP 500'|#2|"));

	/* loaded into another store, it dumps the same */
	assert_int_equal(state_begin(b, &err), JERR_OK);
	assert_int_equal(state_dump(a, load_line, &l, &err), JERR_OK);
	assert_int_equal(state_load_finish(b, &err), JERR_OK);
	assert_int_equal(state_commit(b, &err), JERR_OK);
	assert_int_equal(state_dump(b, dump_line, &db, &err), JERR_OK);
	assert_string_equal(da.buf, db.buf);
	assert_true(l.n >= 12);
	/* new ids follow the loaded ones */
	assert_int_equal(state_run_start(b, "d", "run", &next, &err), JERR_OK);
	assert_int_equal(next, 3);
	{
		struct rkey k = IK(1);
		assert_int_equal(state_ledger_add(b, next, "d", &k, "x", 1, &err), JERR_OK);
		assert_int_equal(tb_int(b_path, "SELECT max(id) FROM ledger"), 3);
	}

	/* a row that clashes fails, and the transaction rolls back whole */
	assert_int_equal(state_begin(b, &err), JERR_OK);
	l.n = 0;
	assert_int_equal(state_dump(a, load_line, &l, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "could not load a row of table \"records\""));
	state_rollback(b);

	/* a value of the wrong kind is refused before the database sees it */
	{
		struct state_value v[3] = { { STATE_VAL_TEXT, 0, SLICE_LIT("s") },
					    { STATE_VAL_INT, 1, { "", 0 } },
					    { STATE_VAL_TEXT, 0, SLICE_LIT("x") } };
		assert_int_equal(state_load_row(b, &state_tables[4], v, &err), JERR_STATE);
		assert_string_equal(err.detail.buf, "column \"value\" needs text");
	}

	/* clear empties every table */
	assert_int_equal(state_begin(b, &err), JERR_OK);
	assert_int_equal(state_clear(b, &err), JERR_OK);
	assert_int_equal(state_commit(b, &err), JERR_OK);
	assert_int_equal(state_is_empty(b, &empty, &err), JERR_OK);
	assert_true(empty);

	/* read-only stores refuse loading and clearing */
	state_close(b);
	b = tb_open(b_path, STATE_OPEN_READONLY);
	assert_int_equal(state_clear(b, &err), JERR_STATE);
	assert_int_equal(state_load_finish(b, &err), JERR_STATE);
	/* but dump */
	strbuf_reset(&db);
	assert_int_equal(state_dump(b, dump_line, &db, &err), JERR_OK);
	assert_int_equal(db.len, 0);

	state_close(a);
	state_close(b);
	strbuf_release(&da);
	strbuf_release(&db);
	jerror_release(&err);
	free(a_path);
	free(b_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_and_reopen),
		cmocka_unit_test(test_migrations_idempotent),
		cmocka_unit_test(test_newer_version_refused),
		cmocka_unit_test(test_readonly_missing_and_empty),
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_put_get_delete),
		cmocka_unit_test(test_cursor_order_mixed_keys),
		cmocka_unit_test(test_cursor_key_range),
		cmocka_unit_test(test_cursor_key_range_batches),
		cmocka_unit_test(test_two_cursors_and_interleaved_writes),
		cmocka_unit_test(test_large_transactions),
		cmocka_unit_test(test_put_batch_lookalike_keys),
		cmocka_unit_test(test_puts_seen_in_transaction),
		cmocka_unit_test(test_cursor_large_payloads),
		cmocka_unit_test(test_mark_failed),
		cmocka_unit_test(test_set_exists),
		cmocka_unit_test(test_cursor_lean),
		cmocka_unit_test(test_rollback_leaves_nothing),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_run_notes),
		cmocka_unit_test(test_config_generations),
		cmocka_unit_test(test_ledger),
		cmocka_unit_test(test_locks),
		cmocka_unit_test(test_dump_and_load),
		cmocka_unit_test(test_hash),
	};
	return tb_run_both("state", tests, ARRAY_SIZE(tests));
}
