/*
 * puts.c: tests of the write-behind of state_put inside a transaction, on every back end
 * (src/state/sqlite/records.c keeps multi-row INSERTs, src/state/pg/tx.c one INSERT
 * from binary arrays): every column of every row lands where it belongs, whatever its
 * value (empty, NUL bytes, extreme integers), batches bigger than one statement (in
 * rows, in bytes) with keys put again, and a batch the server refuses.
 */
#include "state/backends.h"

#include "base/timeutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A put with its own hash (not state_hash of the payload): the hash column is checked too. */
static void put_hashed(struct state *st, const char *dest, struct rkey key, struct slice payload,
		       const unsigned char hash[STATE_HASH_LEN], bool in_scope)
{
	struct jerror err = JERROR_INIT;
	if (state_put(st, dest, &key, payload, hash, in_scope, &err) != JERR_OK)
		fail_msg("state_put: %s / %s", err.msg.buf, err.detail.buf);
	jerror_release(&err);
}

struct want {
	const char *dest;
	struct rkey key;
	struct slice payload;
	unsigned char hash[STATE_HASH_LEN];
	bool in_scope;
};

static void check_row(struct state *st, const struct want *w, int64_t t0)
{
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	bool found = false;
	assert_int_equal(state_get(st, w->dest, &w->key, &row, &found, &err), JERR_OK);
	if (!found)
		fail_msg("no row for destination \"%s\", key %s%" PRId64 " (%zu text bytes)", w->dest,
			 w->key.is_int ? "int " : "text ", w->key.i, w->key.text.len);
	assert_int_equal(row->key.is_int, w->key.is_int);
	if (w->key.is_int)
		assert_int_equal(row->key.i, w->key.i);
	else
		assert_true(slice_eq(row->key.text, w->key.text));
	assert_int_equal(row->payload.len, w->payload.len);
	assert_memory_equal(row->payload.ptr ? row->payload.ptr : "", w->payload.ptr, w->payload.len);
	assert_memory_equal(row->hash, w->hash, STATE_HASH_LEN);
	assert_int_equal(row->in_scope, w->in_scope);
	assert_false(row->pending);
	assert_int_equal(row->attempts, 0);
	assert_int_equal(row->last_error.len, 0);
	assert_true(row->confirmed);
	assert_true(row->confirmed_at >= t0 - 1000 && row->confirmed_at <= time_now_ms() + 1000);
	assert_int_equal(row->updated_at, row->confirmed_at);
	jerror_release(&err);
}

/*
 * Every column of rows that differ in every column, put in one transaction (one batch):
 * a swapped column, an empty text or bytes value sent as NULL or with a wrong length, an
 * integer in the wrong byte order or width, would read back differently. A row that Braze
 * had refused before (pending, attempts, last error) is cleared by the put, and what was
 * learnt of Braze (braze_exists) stays.
 */
static void test_put_every_column(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	bool found = false;
	int64_t t0 = time_now_ms();
	static const char nul_key[] = { 'a', '\0', 'b' };
	static const char high_key[] = { '\xff', '\x00', '\x01' };
	struct want w[] = {
		{ "d", { true, 0, { NULL, 0 } }, SLICE_LIT(""), { 0 }, false },
		{ "d", { false, 0, SLICE_LIT("") }, SLICE_LIT("{\"empty text key\":true}"), { 0 }, true },
		{ "d", { true, INT64_MIN, { NULL, 0 } }, SLICE_LIT("{\"min\":1}"), { 0 }, true },
		{ "d", { true, INT64_MAX, { NULL, 0 } }, SLICE_LIT("{\"max\":1}"), { 0 }, false },
		{ "d", { true, -1, { NULL, 0 } }, SLICE_LIT("{\"minus one\":1}"), { 0 }, true },
		{ "d", { true, 0x0102030405060708, { NULL, 0 } }, SLICE_LIT("{\"bytes\":\"\xc3\xa9\\\"\\\\\"}"),
		  { 0 }, true },
		{ "d", { false, 0, { nul_key, sizeof(nul_key) } }, SLICE_LIT("[]"), { 0 }, false },
		{ "d", { false, 0, { high_key, sizeof(high_key) } }, SLICE_LIT("{}"), { 0 }, true },
		{ "d", { false, 0, SLICE_LIT("0") }, SLICE_LIT("\"text zero\""), { 0 }, true },
		{ "", { true, 7, { NULL, 0 } }, SLICE_LIT("{\"empty dest\":7}"), { 0 }, true },
		{ "a much longer destination id, with spaces and \xc3\xa9", { false, 0, SLICE_LIT("k") },
		  SLICE_LIT("{\"long dest\":1}"), { 0 }, false },
		{ "e", { true, 42, { NULL, 0 } }, SLICE_LIT("{\"was failed\":1}"), { 0 }, true },
	};
	const size_t n = ARRAY_SIZE(w);
	for (size_t i = 0; i < n; i++) /* a distinct hash per row, with zero and 0xff bytes */
		for (int b = 0; b < STATE_HASH_LEN; b++)
			w[i].hash[b] = (unsigned char)(b % 5 == 0 ? 0 : b % 5 == 1 ? 0xff : i * 31 + b);

	/* the last row was refused by Braze twice and Braze is known to have the user */
	struct rkey k42 = IK(42);
	assert_int_equal(state_mark_failed(st, "e", &k42, "HTTP 500", (struct slice){ NULL, 0 }, &err), JERR_OK);
	assert_int_equal(state_mark_failed(st, "e", &k42, "HTTP 500", (struct slice){ NULL, 0 }, &err), JERR_OK);
	assert_int_equal(state_set_exists(st, "e", &k42, true, 1234, &err), JERR_OK);

	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (size_t i = 0; i < n; i++)
		put_hashed(st, w[i].dest, w[i].key, w[i].payload, w[i].hash, w[i].in_scope);
	assert_int_equal(state_commit(st, &err), JERR_OK);

	for (size_t i = 0; i < n; i++)
		check_row(st, &w[i], t0);
	assert_int_equal(state_get(st, "e", &k42, &row, &found, &err), JERR_OK);
	assert_int_equal(row->braze_exists, 1);
	assert_int_equal(row->checked_at, 1234);
	uint64_t count = 0;
	assert_int_equal(tb_int(path, "SELECT count(*) FROM records WHERE dest_id = 'd'"), 9);
	assert_int_equal(state_count(st, "d", &count, &err), JERR_OK);
	assert_int_equal(count, 6); /* in scope */

	/* the same from another connection, column by column where the back ends agree */
	if (B->kind == TB_PG) {
		assert_int_equal(tb_int(path, "SELECT count(*) FROM records WHERE dest_id = 'd' AND key_kind = 1"
					      " AND key_int = 0 AND key_text = '\\x610062'::bytea AND payload = '[]'"
					      " AND NOT in_scope"),
				 1);
		assert_int_equal(tb_int(path, "SELECT count(*) FROM records WHERE dest_id = 'd' AND key_kind = 0"
					      " AND key_int = 0 AND key_text = ''::bytea AND payload = ''"
					      " AND payload IS NOT NULL AND NOT in_scope"),
				 1);
		assert_int_equal(tb_int(path, "SELECT count(*) FROM records WHERE dest_id = 'd' AND key_kind = 0"
					      " AND key_int = 72623859790382856 AND length(hash) = 16"),
				 1);
		assert_int_equal(tb_int(path, "SELECT count(*) FROM records WHERE confirmed_at <> updated_at"
					      " OR last_error IS NOT NULL OR pending OR attempts <> 0"),
				 0);
	} else {
		assert_int_equal(tb_int(path, "SELECT count(*) FROM records WHERE dest_id = 'd' AND key = 0"
					      " AND typeof(key) = 'integer' AND payload = '' AND NOT in_scope"),
				 1);
		assert_int_equal(tb_int(path, "SELECT count(*) FROM records WHERE dest_id = 'd' AND key = ''"
					      " AND typeof(key) = 'text'"),
				 1);
		assert_int_equal(tb_int(path, "SELECT count(*) FROM records WHERE confirmed_at <> updated_at"
					      " OR last_error IS NOT NULL OR pending OR attempts <> 0"),
				 0);
	}
	state_close(st);
	jerror_release(&err);
	free(path);
}

/* What the i-th put of test_put_more_than_a_batch writes: its key and payload. */
static void big_put(int i, struct rkey *key, char *keybuf, size_t keylen, char *payload, size_t plen)
{
	/* put i writes key i, but every 7th put the key of put i - 1, 2, 4, ..., 4096 */
	int repeat = 1 << (i % 13), k = i % 7 == 0 && i > repeat ? i - repeat : i;
	if (k % 3 == 0) {
		snprintf(keybuf, keylen, "t%d", k);
		*key = (struct rkey){ false, 0, slice_of(keybuf) };
	} else {
		*key = (struct rkey){ true, k, { NULL, 0 } };
	}
	snprintf(payload, plen, "{\"n\":%d,\"put\":%d}", k, i);
}

/*
 * More puts in one transaction than one statement of either back end takes (SQLite 256
 * rows, PostgreSQL 4,096), with keys put again at every distance from the last put to
 * more than a whole batch back, text and integer keys, and one key put on every 500th
 * put: each row ends as its last put, none is lost or doubled.
 */
static void test_put_more_than_a_batch(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	bool found = false;
	enum { N = 13000 };
	static int last[N + 1]; /* the put that wrote each key last */
	char keybuf[32], payload[64], want[96];
	int64_t t0 = time_now_ms();
	int hot = 0;

	memset(last, 0, sizeof(last));
	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (int i = 1; i <= N; i++) {
		struct rkey key;
		big_put(i, &key, keybuf, sizeof(keybuf), payload, sizeof(payload));
		last[key.is_int ? key.i : atoi(keybuf + 1)] = i;
		tb_put(st, "d", key, payload, i % 2 == 0);
		if (i % 500 == 0) {
			snprintf(payload, sizeof(payload), "{\"hot\":%d}", ++hot);
			tb_put(st, "d", TK("hot"), payload, true);
		}
	}
	assert_int_equal(state_commit(st, &err), JERR_OK);

	uint64_t count = 0, keys = 1, in_scope = 1; /* "hot" */
	for (int k = 1; k <= N; k++) {
		keys += last[k] != 0;
		in_scope += last[k] && last[k] % 2 == 0;
	}
	assert_int_equal(tb_int(path, "SELECT count(*) FROM records WHERE dest_id = 'd'"), keys);
	assert_int_equal(state_count(st, "d", &count, &err), JERR_OK);
	assert_int_equal(count, in_scope);
	for (int k = 1; k <= N; k++) {
		if (!last[k])
			continue;
		struct rkey key = { true, k, { NULL, 0 } };
		if (k % 3 == 0) {
			snprintf(keybuf, sizeof(keybuf), "t%d", k);
			key = (struct rkey){ false, 0, slice_of(keybuf) };
		}
		assert_int_equal(state_get(st, "d", &key, &row, &found, &err), JERR_OK);
		if (!found)
			fail_msg("key %d (last put %d) is missing", k, last[k]);
		snprintf(want, sizeof(want), "{\"n\":%d,\"put\":%d}", k, last[k]);
		assert_true(slice_eq_str(row->payload, want));
		assert_int_equal(row->in_scope, last[k] % 2 == 0);
		assert_true(row->confirmed && row->confirmed_at >= t0 - 1000);
	}
	snprintf(want, sizeof(want), "{\"hot\":%d}", hot);
	struct rkey hk = TK("hot");
	assert_int_equal(state_get(st, "d", &hk, &row, &found, &err), JERR_OK);
	assert_true(found && slice_eq_str(row->payload, want));
	state_close(st);
	jerror_release(&err);
	free(path);
}

/*
 * Large payloads in one transaction: more bytes than one PostgreSQL statement takes
 * (16 MiB of payloads), with a key put again across a flush: every row whole, as last
 * put.
 */
static void test_put_large_payloads(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	bool found = false;
	enum { N = 50, SIZE = 512 * 1024 };
	char *p = xmalloc(SIZE + 64);

	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (int i = 0; i < N; i++) {
		int k = i == 30 || i == 45 ? 3 : i; /* key 3 again, after a flush and in the same batch */
		size_t len = (size_t)SIZE + (size_t)i;
		int n = snprintf(p, 64, "{\"k\":%d,\"i\":%d,\"x\":\"", k, i);
		memset(p + n, 'a' + i % 26, len - (size_t)n - 2);
		memcpy(p + len - 2, "\"}", 2);
		unsigned char h[STATE_HASH_LEN];
		state_hash(p, len, h);
		put_hashed(st, "d", (struct rkey){ true, k, { NULL, 0 } }, (struct slice){ p, len }, h, true);
	}
	assert_int_equal(state_commit(st, &err), JERR_OK);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM records"), N - 2);
	for (int k = 0; k < N; k++) {
		if (k == 30 || k == 45)
			continue;
		int i = k == 3 ? 45 : k;
		struct rkey key = { true, k, { NULL, 0 } };
		char head[64];
		assert_int_equal(state_get(st, "d", &key, &row, &found, &err), JERR_OK);
		assert_true(found);
		assert_int_equal(row->payload.len, (size_t)SIZE + (size_t)i);
		int n = snprintf(head, sizeof(head), "{\"k\":%d,\"i\":%d,\"x\":\"", k, i);
		assert_memory_equal(row->payload.ptr, head, (size_t)n);
		assert_int_equal(row->payload.ptr[row->payload.len - 3], 'a' + i % 26);
		unsigned char h[STATE_HASH_LEN];
		state_hash(row->payload.ptr, row->payload.len, h);
		assert_memory_equal(row->hash, h, STATE_HASH_LEN);
	}
	free(p);
	state_close(st);
	jerror_release(&err);
	free(path);
}

/*
 * A batch the server refuses (PostgreSQL: a payload that is not UTF-8) fails at the
 * statement that sends it, here the commit, after a full batch already went: the commit
 * fails and nothing of the transaction is stored; the next transaction works. SQLite
 * stores any bytes, so this is PostgreSQL's.
 */
static void test_put_refused_batch(void **s)
{
	if (B->kind != TB_PG)
		skip();
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	char payload[32];

	tb_put(st, "d", IK(1), "{\"before\":1}", true);
	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (int i = 2; i <= 5000; i++) {
		snprintf(payload, sizeof(payload), "{\"n\":%d}", i);
		tb_put(st, "d", (struct rkey){ true, i, { NULL, 0 } }, payload, true);
	}
	tb_put(st, "d", IK(1), "{\"bad\":\"\xff\xfe\"}", true); /* kept: not sent yet */
	assert_int_equal(state_commit(st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "could not store"));
	assert_non_null(strstr(err.detail.buf, "SQLSTATE 22021"));
	jerror_release(&err);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM records"), 1);
	struct rkey k1 = IK(1);
	struct state_row *row = NULL;
	bool found = false;
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_true(found && slice_eq_str(row->payload, "{\"before\":1}"));

	assert_int_equal(state_begin(st, &err), JERR_OK);
	tb_put(st, "d", IK(2), "{\"after\":2}", true);
	assert_int_equal(state_commit(st, &err), JERR_OK);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM records"), 2);
	state_close(st);
	jerror_release(&err);
	free(path);
}

/*
 * An empty text key given as { NULL, 0 } (a key may be empty; its bytes need not exist),
 * put twice in one transaction: the second put finds the first without reading through
 * the NULL pointer (UBSan aborts this test if it does), and the last put wins.
 */
static void test_put_empty_key_twice(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	bool found = false;
	struct rkey empty = { false, 0, { NULL, 0 } };
	(void)s;

	assert_int_equal(state_begin(st, &err), JERR_OK);
	tb_put(st, "d", empty, "{\"n\":1}", true);
	tb_put(st, "d", empty, "{\"n\":2}", false);
	assert_int_equal(state_commit(st, &err), JERR_OK);
	assert_int_equal(state_get(st, "d", &empty, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_true(slice_eq_str(row->payload, "{\"n\":2}"));
	assert_false(row->in_scope);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM records WHERE dest_id = 'd'"), 1);
	state_close(st);
	jerror_release(&err);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_every_column),
		cmocka_unit_test(test_put_more_than_a_batch),
		cmocka_unit_test(test_put_large_payloads),
		cmocka_unit_test(test_put_refused_batch),
		cmocka_unit_test(test_put_empty_key_twice),
	};
	return tb_run_both("state puts", tests, ARRAY_SIZE(tests));
}
