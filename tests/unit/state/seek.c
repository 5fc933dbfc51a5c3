/* seek.c: tests of state_cursor_seek (src/state/cursor.c and both back ends' cursor_fill). */
#include "backends.h"

#include <stdint.h>

#include "state/backend.h"
#include "state/sqlite/sqlite_internal.h"

/* The order the store must keep, written out again: integers first, then text bytewise. */
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

static void seek_ok(struct state_cursor *cur, struct rkey k)
{
	struct jerror err = JERROR_INIT;
	assert_int_equal(state_cursor_seek(cur, &k, &err), JERR_OK);
	jerror_release(&err);
}

/* The next row's key as text ("'t'" for a text key), or "end". */
static const char *next_key(struct state_cursor *cur, struct strbuf *sb)
{
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
	jerror_release(&err);
	strbuf_reset(sb);
	if (!row)
		strbuf_addstr(sb, "end");
	else if (row->key.is_int)
		strbuf_addslice(sb, row->key.text);
	else
		strbuf_addf(sb, "'%.*s'", (int)row->key.text.len, row->key.text.ptr);
	return sb->buf;
}

static struct state_cursor *open_cur(struct state *st, const char *dest, const struct key_range *r)
{
	struct jerror err = JERROR_INIT;
	struct state_cursor *cur = NULL;
	assert_int_equal(state_cursor_open_range(st, dest, r, &cur, &err), JERR_OK);
	jerror_release(&err);
	return cur;
}

/* Integers sort before text; a seek lands on the first key at or after its target. */
static void test_seek_mixed_keys(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct strbuf sb = STRBUF_INIT;
	struct rkey keys[] = { IK(-3), IK(2), IK(10), IK(11), TK(""), TK("10"), TK("9"), TK("B"), TK("a"),
			       TK("ab"), TK("a\xc3\xa9") };
	struct state_cursor *cur;

	for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
		tb_put(st, "d", keys[k], "{}", true);
	tb_put(st, "e", IK(5), "{}", true); /* another destination: never seen */

	cur = open_cur(st, "d", NULL);
	seek_ok(cur, IK(3));
	assert_string_equal(next_key(cur, &sb), "10");
	seek_ok(cur, IK(2)); /* behind the cursor: nothing changes */
	assert_string_equal(next_key(cur, &sb), "11");
	seek_ok(cur, IK(1000)); /* past every integer: the first text key, the empty one */
	assert_string_equal(next_key(cur, &sb), "''");
	seek_ok(cur, TK("1")); /* "10" > "1" bytewise */
	assert_string_equal(next_key(cur, &sb), "'10'");
	seek_ok(cur, TK("A"));
	assert_string_equal(next_key(cur, &sb), "'B'");
	seek_ok(cur, TK("a\xc3")); /* "ab" < "a\xc3" < "a\xc3\xa9" */
	assert_string_equal(next_key(cur, &sb), "'a\xc3\xa9'");
	seek_ok(cur, TK("b")); /* beyond the last key */
	assert_string_equal(next_key(cur, &sb), "end");
	assert_string_equal(next_key(cur, &sb), "end");
	state_cursor_close(cur);

	/* a text key first: every integer is skipped */
	cur = open_cur(st, "d", NULL);
	seek_ok(cur, TK("9"));
	assert_string_equal(next_key(cur, &sb), "'9'");
	assert_string_equal(next_key(cur, &sb), "'B'");
	state_cursor_close(cur);

	/* an integer beyond the last integer, in a store of integers only */
	cur = open_cur(st, "e", NULL);
	seek_ok(cur, IK(6));
	assert_string_equal(next_key(cur, &sb), "end");
	state_cursor_close(cur);

	/* seeking within a key range: never before lo, never at or past hi */
	struct rkey lo = IK(2), hi = TK("a");
	struct key_range r = { &lo, &hi };
	cur = open_cur(st, "d", &r);
	seek_ok(cur, IK(-100));
	assert_string_equal(next_key(cur, &sb), "2");
	seek_ok(cur, TK("A"));
	assert_string_equal(next_key(cur, &sb), "'B'");
	assert_string_equal(next_key(cur, &sb), "end");
	state_cursor_close(cur);
	cur = open_cur(st, "d", &r);
	seek_ok(cur, TK("a"));
	assert_string_equal(next_key(cur, &sb), "end");
	state_cursor_close(cur);

	strbuf_release(&sb);
	state_close(st);
	free(path);
}

static void test_seek_empty_store(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct strbuf sb = STRBUF_INIT;
	struct state_cursor *cur = open_cur(st, "d", NULL);
	seek_ok(cur, IK(1));
	assert_string_equal(next_key(cur, &sb), "end");
	seek_ok(cur, TK("x"));
	assert_string_equal(next_key(cur, &sb), "end");
	state_cursor_close(cur);
	cur = open_cur(st, "d", NULL);
	seek_ok(cur, TK(""));
	assert_string_equal(next_key(cur, &sb), "end");
	state_cursor_close(cur);
	strbuf_release(&sb);
	state_close(st);
	free(path);

	/* READONLY_OR_EMPTY of a store that does not exist: the empty in-memory one */
	path = tb_fresh();
	st = tb_open(path, STATE_OPEN_READONLY_OR_EMPTY);
	cur = open_cur(st, "d", NULL);
	seek_ok(cur, IK(7));
	assert_string_equal(next_key(cur, &sb), "end");
	state_cursor_close(cur);
	strbuf_release(&sb);
	state_close(st);
	free(path);
}

/* xorshift: the same keys on every run */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	return tu_xorshift(&rnd_state);
}

struct refkey {
	struct rkey k;
	char text[24];
};

static void make_key(struct refkey *r, bool is_int)
{
	static const char alphabet[] = "09AZaz\xc3\xa9~ ";
	memset(r, 0, sizeof(*r));
	if (is_int) {
		r->k.is_int = true;
		r->k.i = (int64_t)(rnd() % 20000) - 5000;
		int n = snprintf(r->text, sizeof(r->text), "%lld", (long long)r->k.i);
		r->k.text = (struct slice){ r->text, (size_t)n };
	} else {
		size_t n = rnd() % 5;
		for (size_t j = 0; j < n; j++)
			r->text[j] = alphabet[rnd() % (sizeof(alphabet) - 1)];
		r->k.text = (struct slice){ r->text, n };
	}
}

static int cmp_refkey(const void *a, const void *b)
{
	return ref_compare(&((const struct refkey *)a)->k, &((const struct refkey *)b)->k);
}

/*
 * Random keys of both kinds and random seeks, dense (the next few keys) and sparse
 * (far ahead), mixed with plain next() calls: every row returned is the one a full
 * walk of the sorted keys says, whatever the cursor decided to read.
 */
static void test_seek_random_matches_walk(void **s)
{
	enum { N = 1500, ROUNDS = 6 };
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct refkey *keys = xcalloc(N, sizeof(*keys));
	size_t n = 0;

	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (size_t i = 0; i < N; i++) {
		make_key(&keys[n], rnd() % 3 != 0);
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++)
			dup = ref_compare(&keys[j].k, &keys[n].k) == 0;
		if (dup)
			continue;
		tb_put(st, "d", keys[n].k, "{\"a\":1}", (rnd() & 1) != 0);
		n++;
	}
	assert_int_equal(state_commit(st, &err), JERR_OK);
	qsort(keys, n, sizeof(*keys), cmp_refkey);
	for (size_t i = 0; i < n; i++) /* qsort moved the texts: point the keys at them again */
		keys[i].k.text.ptr = keys[i].text;

	/* a full walk gives the sorted keys */
	struct state_cursor *cur = open_cur(st, "d", NULL);
	struct state_row *row = NULL;
	for (size_t i = 0; i <= n; i++) {
		assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
		if (i == n) {
			assert_null(row);
			break;
		}
		assert_non_null(row);
		assert_int_equal(ref_compare(&row->key, &keys[i].k), 0);
	}
	state_cursor_close(cur);

	for (int round = 0; round < ROUNDS; round++) {
		size_t at = 0; /* index of the next row the reference walk returns */
		/* rounds differ in how far apart the targets are: dense, sparse, mixed */
		unsigned spread = round % 3 == 0 ? 3 : round % 3 == 1 ? 200 : 40;
		cur = open_cur(st, "d", NULL);
		for (;;) {
			struct refkey t;
			if (rnd() % 5 == 0) {
				/* a plain next() */
			} else {
				/* a target: an existing key ahead, or a made-up one */
				if (rnd() & 1) {
					size_t j = at + rnd() % spread;
					if (j >= n)
						j = n - 1;
					t = keys[j];
					t.k.text.ptr = t.text;
				} else {
					make_key(&t, rnd() % 3 != 0);
					t.k.text.ptr = t.text;
				}
				assert_int_equal(state_cursor_seek(cur, &t.k, &err), JERR_OK);
				/* behind the cursor: no-op; else the first key >= t */
				while (at < n && ref_compare(&keys[at].k, &t.k) < 0)
					at++;
			}
			assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
			if (at == n) {
				assert_null(row);
				break;
			}
			assert_non_null(row);
			if (ref_compare(&row->key, &keys[at].k) != 0)
				fail_msg("round %d: got %.*s, want %.*s", round, (int)row->key.text.len,
					 row->key.text.ptr, (int)keys[at].k.text.len, keys[at].k.text.ptr);
			assert_int_equal(row->key.is_int, keys[at].k.is_int);
			at++;
		}
		/* after the end, seeking anywhere stays at the end */
		struct rkey lo = IK(-1000000);
		assert_int_equal(state_cursor_seek(cur, &lo, &err), JERR_OK);
		assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
		assert_null(row);
		state_cursor_close(cur);
	}
	jerror_release(&err);
	free(keys);
	state_close(st);
	free(path);
}

/*
 * Writes between seeks (the engine commits Braze's answers while it reads): keys
 * still come strictly increasing and a row seen is not seen again.
 */
static void test_seek_interleaved_writes(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct strbuf sb = STRBUF_INIT;
	struct state_cursor *cur;

	for (int i = 0; i < 600; i++) {
		char t[16];
		int n = snprintf(t, sizeof(t), "%d", i * 10);
		tb_put(st, "d", (struct rkey){ true, i * 10, { t, (size_t)n } }, "{}", true);
	}
	cur = open_cur(st, "d", NULL);
	for (int i = 0; i < 600; i += 7) {
		char t[16];
		int n = snprintf(t, sizeof(t), "%d", i * 10);
		struct rkey k = { true, i * 10, { t, (size_t)n } };
		seek_ok(cur, k);
		assert_string_equal(next_key(cur, &sb), t);
		/* rewrite the row just read and add one behind the cursor */
		tb_put(st, "d", k, "{\"b\":2}", true);
		n = snprintf(t, sizeof(t), "%d", i * 10 - 5);
		tb_put(st, "d", (struct rkey){ true, i * 10 - 5, { t, (size_t)n } }, "{}", true);
	}
	state_cursor_close(cur);
	strbuf_release(&sb);
	state_close(st);
	free(path);
}

/*
 * state_cursor_expect (PostgreSQL looks the announced keys up in one query once seeks
 * are sparse): seeks to announced keys, to keys not announced, behind the cursor, and
 * plain next() calls in between all return what a full walk says.
 */
static void test_seek_expect_matches_walk(void **s)
{
	enum { N = 3000, ROUNDS = 6, CHUNK = 40 };
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct refkey *keys = xcalloc(N, sizeof(*keys));
	struct refkey *targets = xcalloc(N, sizeof(*targets));
	struct rkey *ann = xcalloc(N, sizeof(*ann));
	struct state_row *row = NULL;
	size_t n = 0;

	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (size_t i = 0; i < N; i++) {
		make_key(&keys[n], rnd() % 4 != 0);
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++)
			dup = ref_compare(&keys[j].k, &keys[n].k) == 0;
		if (dup)
			continue;
		tb_put(st, "d", keys[n].k, "{\"a\":1}", true);
		n++;
	}
	assert_int_equal(state_commit(st, &err), JERR_OK);
	qsort(keys, n, sizeof(*keys), cmp_refkey);
	for (size_t i = 0; i < n; i++)
		keys[i].k.text.ptr = keys[i].text;

	/*
	 * The rounds on the writable connection, then on a read-only one (SQLite answers
	 * its look-ups on a worker thread and the main thread: lookahead.c), then one
	 * without that worker, then one whose main thread answers all it can.
	 */
	for (int round = 0; round < 4 * ROUNDS; round++) {
		if (round && round % ROUNDS == 0) {
			state_close(st);
			if (round == 2 * ROUNDS)
				setenv("JOEY_STATE_LOOKAHEAD", "0", 1);
			if (round == 3 * ROUNDS)
				setenv("JOEY_STATE_LOOKAHEAD", "main", 1);
			st = tb_open(path, STATE_OPEN_READONLY);
		}
		unsigned spread = round % 3 == 0 ? 60 : round % 3 == 1 ? 8 : 25;
		size_t nt = 0;
		/* ascending targets: existing keys ahead, and made-up keys between them */
		for (size_t j = rnd() % spread; j < n; j += 1 + rnd() % spread) {
			if (rnd() % 4 == 0) {
				make_key(&targets[nt], rnd() % 4 != 0);
				targets[nt].k.text.ptr = targets[nt].text;
				if (nt && ref_compare(&targets[nt].k, &targets[nt - 1].k) <= 0)
					continue;
				if (ref_compare(&targets[nt].k, &keys[j].k) > 0)
					continue;
				nt++;
			}
			targets[nt] = keys[j];
			targets[nt].k.text.ptr = targets[nt].text;
			if (!nt || ref_compare(&targets[nt].k, &targets[nt - 1].k) > 0)
				nt++;
		}
		struct state_cursor *cur = open_cur(st, "d", NULL);
		size_t at = 0;
		for (size_t t = 0; t < nt; t++) {
			if (t % CHUNK == 0) {
				/* announce the next chunk, now and then leaving one out */
				size_t na = 0;
				for (size_t j = t; j < nt && j < t + CHUNK; j++)
					if (rnd() % 10)
						ann[na++] = targets[j].k;
				state_cursor_expect(cur, ann, na);
			}
			if (rnd() % 8 == 0) {
				/* a plain next() */
				assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
				if (at == n) {
					assert_null(row);
					break;
				}
				assert_non_null(row);
				assert_int_equal(ref_compare(&row->key, &keys[at].k), 0);
				at++;
			}
			const struct rkey *k = &targets[t].k;
			if (rnd() % 10 == 0 && t) /* behind the cursor: nothing changes */
				k = &targets[t - 1].k;
			assert_int_equal(state_cursor_seek(cur, k, &err), JERR_OK);
			while (at < n && ref_compare(&keys[at].k, k) < 0)
				at++;
			assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
			if (at == n) {
				assert_null(row);
				break;
			}
			assert_non_null(row);
			if (ref_compare(&row->key, &keys[at].k) != 0)
				fail_msg("round %d target %zu: got %.*s, want %.*s", round, t, (int)row->key.text.len,
					 row->key.text.ptr, (int)keys[at].k.text.len, keys[at].k.text.ptr);
			at++;
		}
		/* and on to the end with next() */
		for (;;) {
			assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
			if (at == n) {
				assert_null(row);
				break;
			}
			assert_non_null(row);
			assert_int_equal(ref_compare(&row->key, &keys[at].k), 0);
			at++;
		}
		state_cursor_close(cur);
		/* the read-only connection's look-ups were the worker's */
		if (B->kind == TB_SQLITE && round >= ROUNDS)
			assert_true((((struct sq_state *)st)->ahead != NULL) == (round / ROUNDS != 2));
	}
	unsetenv("JOEY_STATE_LOOKAHEAD");
	jerror_release(&err);
	free(keys);
	free(targets);
	free(ann);
	state_close(st);
	free(path);
}

/* The keys of cur's look-up batch, as text ("'t'" for a text key), comma-separated. */
static const char *batch_keys(const struct state_cursor *cur, struct strbuf *sb)
{
	strbuf_reset(sb);
	for (size_t i = 0; i < cur->n; i++) {
		const struct state_row *r = &cur->rows[i];
		const char *t = cur->buf.buf + cur->text[i].key;
		if (r->key.is_int)
			strbuf_addf(sb, "%s%.*s", i ? "," : "", (int)r->key.text.len, t);
		else
			strbuf_addf(sb, "%s'%.*s'", i ? "," : "", (int)r->key.text.len, t);
	}
	return sb->buf;
}

/*
 * ops->lookup of keys on cur; the keys of the rows it gives (batch_keys). A batch may
 * answer the first keys only (SQLite's look-up worker): as the cursor does, the keys
 * past its last row are asked again, until a batch is empty or every key is answered.
 */
static const char *lookup_on(struct state *st, struct state_cursor *cur, const struct rkey *keys, size_t n,
			     struct strbuf *sb)
{
	struct jerror err = JERROR_INIT;
	struct strbuf part = STRBUF_INIT;
	assert_non_null(st->ops->lookup);
	strbuf_reset(sb);
	while (n) {
		cur->n = 0;
		strbuf_reset(&cur->buf);
		assert_int_equal(st->ops->lookup(cur, keys, n, &err), JERR_OK);
		if (!cur->n)
			break;
		strbuf_addf(sb, "%s%s", sb->len ? "," : "", batch_keys(cur, &part));
		struct rkey last = cur->rows[cur->n - 1].key;
		last.text.ptr = cur->buf.buf + cur->text[cur->n - 1].key;
		/* the keys the batch answered: up to its last row; out of order: the batch ended */
		size_t i = 0;
		while (i < n && ref_compare(&keys[i], &last) <= 0 && (!i || ref_compare(&keys[i], &keys[i - 1]) >= 0))
			i++;
		if (i < n && i && ref_compare(&keys[i], &keys[i - 1]) < 0)
			break;
		keys += i;
		n -= i;
	}
	jerror_release(&err);
	strbuf_release(&part);
	return sb->buf;
}

/* lookup_on a fresh cursor of "d" (lean if asked). */
static const char *lookup_keys(struct state *st, bool lean, const struct rkey *keys, size_t n, struct strbuf *sb)
{
	struct state_cursor *cur = open_cur(st, "d", NULL);
	if (lean)
		state_cursor_lean(cur);
	lookup_on(st, cur, keys, n, sb);
	state_cursor_close(cur);
	return sb->buf;
}

/*
 * The back end's look-up (ops->lookup, state_cursor_expect's batch): for each key the
 * first row at or after it, each row once, in key order; nothing skipped for a key the
 * store does not have (the row after it), nothing repeated for keys that find the same
 * row; keys out of order end the batch (SQLite; PostgreSQL sorts them), never a row
 * out of order. On a writable and on a read-only connection.
 */
static void test_lookup_batch(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct strbuf sb = STRBUF_INIT;
	struct rkey have[] = { IK(10), IK(20), IK(30), IK(40), IK(50), TK("b"), TK("d") };
	for (size_t i = 0; i < ARRAY_SIZE(have); i++)
		tb_put(st, "d", have[i], "{}", true);
	/* 70's payload is bigger than a batch's bytes (STATE_BATCH_BYTES) */
	struct strbuf big = STRBUF_INIT;
	strbuf_addstr(&big, "{\"a\":\"");
	while (big.len < STATE_BATCH_BYTES + 1000)
		strbuf_addch(&big, 'a');
	strbuf_addstr(&big, "\"}");
	tb_put(st, "d", IK(60), "{}", true);
	tb_put(st, "d", IK(70), big.buf, true);
	tb_put(st, "d", IK(80), "{}", true);
	strbuf_release(&big);
	tb_put(st, "c", IK(25), "{}", true); /* another destination's: never found */
	tb_put(st, "e", IK(25), "{}", true);

	for (int ro = 0; ro < 2; ro++) {
		if (ro) {
			state_close(st);
			st = tb_open(path, STATE_OPEN_READONLY);
		}
		for (int lean = 0; lean < 2; lean++) {
			/* present keys */
			struct rkey k1[] = { IK(10), IK(30), IK(50) };
			assert_string_equal(lookup_keys(st, lean, k1, ARRAY_SIZE(k1), &sb), "10,30,50");
			/* absent keys between present ones: the row after each, once */
			struct rkey k2[] = { IK(11), IK(12), IK(20), IK(25), IK(26), IK(40) };
			assert_string_equal(lookup_keys(st, lean, k2, ARRAY_SIZE(k2), &sb), "20,30,40");
			/* before the first, between integers, past them, between and past the texts */
			struct rkey k3[] = { IK(-5), IK(51), IK(81), TK("c"), TK("e") };
			assert_string_equal(lookup_keys(st, lean, k3, ARRAY_SIZE(k3), &sb), "10,60,'b','d'");
			/* a key behind the one before it ends the batch: no row out of order */
			struct rkey k4[] = { IK(20), IK(40), IK(30), IK(50) };
			const char *got = lookup_keys(st, lean, k4, ARRAY_SIZE(k4), &sb);
			if (B->kind == TB_SQLITE)
				assert_string_equal(got, "20,40");
			/* a key repeated: its row once */
			struct rkey k5[] = { IK(30), IK(30), IK(31) };
			assert_string_equal(lookup_keys(st, lean, k5, ARRAY_SIZE(k5), &sb), "30,40");
			/* past the last row: nothing */
			struct rkey k6[] = { TK("z") };
			assert_string_equal(lookup_keys(st, lean, k6, ARRAY_SIZE(k6), &sb), "");
			/* a row bigger than a look-up batch (SQLite's worker cannot hold it) */
			struct rkey k7[] = { IK(60), IK(70), IK(80) };
			assert_string_equal(lookup_keys(st, lean, k7, ARRAY_SIZE(k7), &sb), "60,70,80");
		}
	}
	strbuf_release(&sb);
	state_close(st);
	free(path);
}

/* The largest and smallest integer keys come back with their digits (state_key_digits). */
static void test_seek_extreme_integers(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct strbuf sb = STRBUF_INIT;
	struct state_cursor *cur;
	tb_put(st, "d", (struct rkey){ true, INT64_MIN, SLICE_LIT("-9223372036854775808") }, "{}", true);
	tb_put(st, "d", (struct rkey){ true, INT64_MAX, SLICE_LIT("9223372036854775807") }, "{}", true);
	tb_put(st, "d", IK(0), "{}", true);
	tb_put(st, "d", IK(-1), "{}", true);
	cur = open_cur(st, "d", NULL);
	assert_string_equal(next_key(cur, &sb), "-9223372036854775808");
	assert_string_equal(next_key(cur, &sb), "-1");
	seek_ok(cur, IK(1));
	assert_string_equal(next_key(cur, &sb), "9223372036854775807");
	assert_string_equal(next_key(cur, &sb), "end");
	state_cursor_close(cur);
	cur = open_cur(st, "d", NULL);
	seek_ok(cur, IK(0));
	assert_string_equal(next_key(cur, &sb), "0");
	state_cursor_close(cur);
	strbuf_release(&sb);
	state_close(st);
	free(path);
}

/*
 * Two look-ups on one cursor whose keys share the first and the last but not the ones
 * between: the second is answered for its own keys (SQLite's look-up worker once took
 * it for the rest of the first job and gave 20 for 30, skipping 35).
 */
static void test_lookup_again_other_keys(void **s)
{
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct strbuf sb = STRBUF_INIT;
	struct rkey have[] = { IK(10), IK(20), IK(25), IK(35), IK(40) };
	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(have); i++)
		tb_put(st, "d", have[i], "{}", true);
	for (int ro = 0; ro < 2; ro++) {
		if (ro) {
			state_close(st);
			st = tb_open(path, STATE_OPEN_READONLY);
		}
		struct state_cursor *cur = open_cur(st, "d", NULL);
		struct rkey k1[] = { IK(10), IK(20), IK(40) }, k2[] = { IK(10), IK(30), IK(40) };
		assert_string_equal(lookup_on(st, cur, k1, ARRAY_SIZE(k1), &sb), "10,20,40");
		assert_string_equal(lookup_on(st, cur, k2, ARRAY_SIZE(k2), &sb), "10,35,40");
		state_cursor_close(cur);
	}
	strbuf_release(&sb);
	state_close(st);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup_again_other_keys),
		cmocka_unit_test(test_seek_mixed_keys),
		cmocka_unit_test(test_seek_empty_store),
		cmocka_unit_test(test_seek_random_matches_walk),
		cmocka_unit_test(test_seek_interleaved_writes),
		cmocka_unit_test(test_seek_extreme_integers),
		cmocka_unit_test(test_seek_expect_matches_walk),
		cmocka_unit_test(test_lookup_batch),
	};
	return tb_run_both("state seek", tests, ARRAY_SIZE(tests));
}
