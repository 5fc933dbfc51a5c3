/*
 * names.c: tests of packed payloads (src/state/sqlite/names.c) through state.h, on every
 * back end (PostgreSQL keeps payloads as they are: the same tests must pass there).
 *
 * Random canonical payloads (and some that cannot be packed: an object value, a 0x1e
 * byte, a name that needs an escape) are put in one transaction, then in a second (by
 * then their names are known: the SQLite store packs them), and must read back byte for
 * byte through every reader: state_get, a cursor (full and lean), the look-ups of a
 * read-only store with and without its worker thread, and state_dump (an export).
 * Also: a rollback adds no names; a damaged store (names gone, a malformed packed
 * payload) is an error, not a wrong payload; a store of schema 8 upgrades and keeps
 * its records; a payload that starts with 0x1e (put or imported) reads back as it was.
 */
#include "backends.h"

#include <stdint.h>

#include "state/backend.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	return tu_xorshift(&rng);
}

/* Pieces of string values: escapes, and what would confuse a splitter that is not JSON-aware. */
static const char *const pieces[] = {
	"plain", "\\\"", "\\\\", "\\u00e9", ",\\\"city\\\":", "]", "[", "{", "}", ":", ",", "\xc3\xa9", " ", "\\n", "\\/",
};

static void add_string(struct strbuf *sb)
{
	strbuf_addch(sb, '"');
	for (int n = (int)(rnd() % 4); n > 0; n--)
		strbuf_addstr(sb, pieces[rnd() % ARRAY_SIZE(pieces)]);
	strbuf_addch(sb, '"');
}

/* A random JSON value of a payload attribute (depth: arrays within arrays). */
static void add_value(struct strbuf *sb, int depth)
{
	switch (rnd() % 9) {
	case 0:
		strbuf_addf(sb, "%lld", (long long)(rnd() % 2000000) - 1000000);
		break;
	case 1:
		strbuf_addstr(sb, rnd() % 2 ? "0.30000000000000004" : "-1.5e-07");
		break;
	case 2:
		strbuf_addstr(sb, rnd() % 3 == 0 ? "null" : rnd() % 2 ? "true" : "false");
		break;
	case 3:
	case 4:
		if (depth < 2) {
			strbuf_addch(sb, '[');
			for (int n = (int)(rnd() % 4), i = 0; i < n; i++) {
				if (i)
					strbuf_addch(sb, ',');
				add_value(sb, depth + 1);
			}
			strbuf_addch(sb, ']');
			break;
		}
		/* fall through */
	default:
		add_string(sb);
	}
}

/* Name lists the payloads use (sorted, as canonical payloads are); the last needs escapes. */
static const char *const lists[][6] = {
	{ "age", "city", "email", "external_id", "vip", NULL },
	{ "external_id", "first_name", NULL },
	{ "a", "b_c", "external_id", "z\xc3\xa9", "zz", "zzz" },
	{ "external_id", "q\\\"uote", NULL },
};

/* A payload: mostly canonical of one of lists, now and then one packing must leave alone. */
static void make_payload(struct strbuf *sb)
{
	size_t l = rnd() % ARRAY_SIZE(lists);
	unsigned odd = (unsigned)(rnd() % 12);
	strbuf_reset(sb);
	strbuf_addstr(sb, "{\"attributes\":{");
	for (size_t i = 0; i < 6 && lists[l][i]; i++) {
		strbuf_addf(sb, "%s\"%s\":", i ? "," : "", lists[l][i]);
		if (odd == 0 && i == 1)
			strbuf_addstr(sb, "{\"k\":1,\"city\":2}"); /* an object value */
		else if (odd == 1 && i == 0)
			strbuf_addstr(sb, "\"a\x1e" "b\""); /* the separator itself */
		else
			add_value(sb, 0);
	}
	strbuf_addstr(sb, "},\"groups\":[");
	for (int n = (int)(rnd() % 3), i = 0; i < n; i++) {
		if (i)
			strbuf_addch(sb, ',');
		add_string(sb);
	}
	strbuf_addstr(sb, "]}");
}

#define N 400

struct rec {
	struct rkey key;
	char text[16];
	struct strbuf payload;
};

static void put_all(struct state *st, struct rec *r, size_t n, bool some)
{
	struct jerror err = JERROR_INIT;
	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (size_t i = 0; i < n; i++) {
		if (some && rnd() % 3 == 0)
			continue;
		make_payload(&r[i].payload);
		tb_put(st, "d", r[i].key, r[i].payload.buf, true);
	}
	assert_int_equal(state_commit(st, &err), JERR_OK);
	jerror_release(&err);
}

static void init_recs(struct rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		strbuf_init(&r[i].payload, 0);
		if (i % 3) {
			r[i].key = (struct rkey){ true, (int64_t)i * 7, { r[i].text, 0 } };
			r[i].key.text.len = (size_t)snprintf(r[i].text, sizeof(r[i].text), "%lld", (long long)i * 7);
		} else {
			r[i].key = (struct rkey){ false, 0, { r[i].text, 0 } };
			r[i].key.text.len = (size_t)snprintf(r[i].text, sizeof(r[i].text), "k%05zu", i);
		}
	}
}

static void release_recs(struct rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		strbuf_release(&r[i].payload);
}

static void check_payload(const struct rec *w, struct slice got, const char *how)
{
	if (!slice_eq(got, (struct slice){ w->payload.buf, w->payload.len }))
		fail_msg("%s, key %s: got %.*s, want %s", how, w->text, (int)got.len, got.ptr, w->payload.buf);
}

/* key put with payload in a transaction of its own, committed (the names a put needs are added after its commit). */
static void put_committed(struct state *st, const char *dest, struct rkey key, const char *payload)
{
	struct jerror err = JERROR_INIT;
	assert_int_equal(state_begin(st, &err), JERR_OK);
	tb_put(st, dest, key, payload, true);
	assert_int_equal(state_commit(st, &err), JERR_OK);
	jerror_release(&err);
}

/* The payload of dest's row key, which must exist (borrowed until the next state call). */
static struct slice payload_of(struct state *st, const char *dest, const struct rkey *key)
{
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	bool found = false;
	assert_int_equal(state_get(st, dest, key, &row, &found, &err), JERR_OK);
	assert_true(found);
	jerror_release(&err);
	return row->payload;
}

/* The records in key order (integers first, then text): what a cursor returns. */
static size_t in_key_order(const struct rec *r, size_t n, size_t k)
{
	/* integer keys are the i % 3 != 0 ones, ascending with i; then the text ones, ascending with i */
	size_t n_int = n - (n + 2) / 3;
	if (k < n_int)
		return (k / 2) * 3 + 1 + k % 2;
	return (k - n_int) * 3;
	(void)r;
}

/* Every reader gives back every payload byte for byte. */
static void check_readers(const char *path, struct rec *r, size_t n)
{
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	struct state_cursor *cur = NULL;

	for (size_t i = 0; i < n; i++) {
		check_payload(&r[i], payload_of(st, "d", &r[i].key), "state_get");
	}
	for (int lean = 0; lean < 2; lean++) {
		assert_int_equal(state_cursor_open_range(st, "d", NULL, &cur, &err), JERR_OK);
		if (lean)
			state_cursor_lean(cur);
		for (size_t k = 0; k < n; k++) {
			assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
			assert_non_null(row);
			check_payload(&r[in_key_order(r, n, k)], row->payload, lean ? "lean cursor" : "cursor");
		}
		assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
		assert_null(row);
		state_cursor_close(cur);
	}
	state_close(st);

	/* a read-only store's look-ups: with the worker thread, the main thread's side, none */
	static const char *const modes[] = { NULL, "main", "0" };
	for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
		struct rkey keys[N];
		if (modes[m])
			setenv("JOEY_STATE_LOOKAHEAD", modes[m], 1);
		else
			unsetenv("JOEY_STATE_LOOKAHEAD");
		st = tb_open(path, STATE_OPEN_READONLY);
		assert_int_equal(state_cursor_open_range(st, "d", NULL, &cur, &err), JERR_OK);
		for (size_t k = 0; k < n; k += 2)
			keys[k / 2] = r[in_key_order(r, n, k)].key;
		state_cursor_expect(cur, keys, (n + 1) / 2);
		for (size_t k = 0; k < n; k += 2) {
			const struct rec *w = &r[in_key_order(r, n, k)];
			assert_int_equal(state_cursor_seek(cur, &w->key, &err), JERR_OK);
			assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
			assert_non_null(row);
			check_payload(w, row->payload, "look-up");
		}
		state_cursor_close(cur);
		state_close(st);
	}
	unsetenv("JOEY_STATE_LOOKAHEAD");
	jerror_release(&err);
}

struct dumped {
	struct rec *r;
	size_t n, seen;
};

static enum jerr on_dump(void *ctx, const struct state_table *t, const struct state_value *row, struct jerror *err)
{
	struct dumped *d = ctx;
	(void)err;
	if (strcmp(t->name, "records"))
		return JERR_OK;
	/* columns: dest_id, key, payload, ... */
	for (size_t i = 0; i < d->n; i++) {
		const struct rec *w = &d->r[i];
		bool same = w->key.is_int ? row[1].kind == STATE_VAL_INT && row[1].i == w->key.i
					  : row[1].kind == STATE_VAL_TEXT && slice_eq(row[1].s, w->key.text);
		if (same) {
			check_payload(w, row[2].s, "state_dump");
			d->seen++;
		}
	}
	return JERR_OK;
}

/* Random payloads, put twice (the second time packed on SQLite), read back by every reader. */
static void test_payloads_read_back(void **s)
{
	struct rec r[N];
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;

	init_recs(r, N);
	put_all(st, r, N, false);
	if (B->kind == TB_SQLITE) {
		/* the first transaction cannot refer to names it adds: nothing packed yet */
		assert_int_equal(tb_int(path, "SELECT count(*) FROM records WHERE payload LIKE char(30) || '%'"), 0);
		/* the lists without escapes, each once */
		assert_int_equal(tb_int(path, "SELECT count(*) FROM payload_names"), 3);
	}
	put_all(st, r, N, true);
	state_close(st);
	if (B->kind == TB_SQLITE) {
		int64_t packed = tb_int(path, "SELECT count(*) FROM records WHERE payload LIKE char(30) || '%'");
		if (packed < N / 3)
			fail_msg("%lld of %d rows packed", (long long)packed, N);
		assert_int_equal(tb_int(path, "SELECT count(*) FROM payload_names"), 3);
	}
	check_readers(path, r, N);

	st = tb_open(path, STATE_OPEN_CREATE);
	struct dumped d = { r, N, 0 };
	assert_int_equal(state_dump(st, on_dump, &d, &err), JERR_OK);
	assert_int_equal(d.seen, N);

	/* puts outside a transaction: packed when their names are known, else added at once */
	struct rec one[1];
	init_recs(one, 1);
	one[0].key = TK("solo");
	strbuf_addstr(&one[0].payload, "{\"attributes\":{\"external_id\":\"solo\",\"new_name\":[1,\"]\"]},\"groups\":[]}");
	tb_put(st, "d", one[0].key, one[0].payload.buf, true);
	tb_put(st, "d", TK("solo2"), one[0].payload.buf, true);
	if (B->kind == TB_SQLITE) {
		assert_int_equal(tb_int(path, "SELECT count(*) FROM payload_names"), 4);
		assert_int_equal(tb_int(path, "SELECT payload LIKE char(30) || '%' FROM records WHERE key = 'solo'"), 0);
		assert_int_equal(tb_int(path, "SELECT payload LIKE char(30) || '%' FROM records WHERE key = 'solo2'"), 1);
	}
	check_payload(&one[0], payload_of(st, "d", &TK("solo2")), "a put outside a transaction");
	state_close(st);
	release_recs(one, 1);
	release_recs(r, N);
	jerror_release(&err);
	free(path);
	(void)s;
}

/* A rolled-back transaction adds no names, and its packed rows are gone with it. */
static void test_rollback_adds_no_names(void **s)
{
	static const char p[] = "{\"attributes\":{\"a\":1,\"external_id\":\"1\"},\"groups\":[\"G\"]}";
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	bool found = true;

	assert_int_equal(state_begin(st, &err), JERR_OK);
	tb_put(st, "d", IK(1), p, true);
	state_rollback(st);
	if (B->kind == TB_SQLITE)
		assert_int_equal(tb_int(path, "SELECT count(*) FROM payload_names"), 0);
	assert_int_equal(state_get(st, "d", &IK(1), &row, &found, &err), JERR_OK);
	assert_false(found);

	put_committed(st, "d", IK(1), p);
	/* known now: a packed row in a transaction rolled back leaves nothing */
	assert_int_equal(state_begin(st, &err), JERR_OK);
	tb_put(st, "d", IK(2), p, true);
	state_rollback(st);
	assert_int_equal(state_get(st, "d", &IK(2), &row, &found, &err), JERR_OK);
	assert_false(found);
	put_committed(st, "d", IK(3), p);
	if (B->kind == TB_SQLITE) {
		assert_int_equal(tb_int(path, "SELECT count(*) FROM payload_names"), 1);
		assert_int_equal(tb_int(path, "SELECT payload LIKE char(30) || '%' FROM records WHERE key = 1"), 0);
		assert_int_equal(tb_int(path, "SELECT payload LIKE char(30) || '%' FROM records WHERE key = 3"), 1);
	}
	assert_true(slice_eq_str(payload_of(st, "d", &IK(3)), p));
	state_close(st);
	jerror_release(&err);
	free(path);
	(void)s;
}

/* A packed payload that cannot be unpacked is an error naming the store, never a wrong payload. */
static void test_damaged_store_is_an_error(void **s)
{
	static const char p[] = "{\"attributes\":{\"a\":1,\"external_id\":\"1\"},\"groups\":[]}";
	static const char *const damage[] = {
		"DELETE FROM payload_names",
		"UPDATE payload_names SET names = 'not a list'",
		"UPDATE records SET payload = char(30) || 'x' || char(30) || '1' WHERE key = 2",
		"UPDATE records SET payload = payload || char(30) || '5' WHERE key = 2",
		"UPDATE records SET payload = substr(payload, 1, instr(substr(payload, 2), char(30))) WHERE key = 2",
	};
	if (B->kind != TB_SQLITE)
		skip();
	for (size_t d = 0; d < ARRAY_SIZE(damage); d++) {
		char *path = tb_fresh();
		struct state *st = tb_open(path, STATE_OPEN_CREATE);
		struct jerror err = JERROR_INIT;
		struct state_row *row = NULL;
		struct state_cursor *cur = NULL;
		bool found = false;
		for (int k = 1; k <= 2; k++) {
			put_committed(st, "d", k == 1 ? IK(1) : IK(2), p);
		}
		state_close(st);
		assert_int_equal(tb_int(path, "SELECT payload LIKE char(30) || '%' FROM records WHERE key = 2"), 1);
		tb_exec(path, damage[d]);
		st = tb_open(path, STATE_OPEN_CREATE);
		assert_int_equal(state_get(st, "d", &IK(2), &row, &found, &err), JERR_STATE);
		assert_non_null(strstr(err.msg.buf, "payload"));
		assert_non_null(strstr(err.msg.buf, path));
		jerror_release(&err);
		/* a cursor reads key 1 (stored as it was) and 2 in one batch: the batch fails */
		assert_int_equal(state_cursor_open_range(st, "d", NULL, &cur, &err), JERR_OK);
		assert_int_equal(state_cursor_next(cur, &row, &err), JERR_STATE);
		assert_non_null(strstr(err.msg.buf, "payload"));
		state_cursor_close(cur);
		jerror_release(&err);
		assert_true(slice_eq_str(payload_of(st, "d", &IK(1)), p));
		state_close(st);
		jerror_release(&err);
		free(path);
	}
	(void)s;
}

/* A store of schema 8 (no payload_names, every payload as it was) upgrades and keeps its records. */
static void test_schema_8_upgrades(void **s)
{
	static const char p[] = "{\"attributes\":{\"a\":[1,2],\"external_id\":\"1\"},\"groups\":[]}";
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;

	put_committed(st, "d", IK(1), p);
	state_close(st);
	if (B->kind == TB_SQLITE)
		/* with rows a schema 8 store could hold that start with 0x1e: they must not read as packed */
		tb_exec(path, "DROP TABLE payload_names; UPDATE meta SET value = 8 WHERE key = 'schema_version';"
			      "INSERT INTO records (dest_id, key, payload, hash, in_scope, updated_at) VALUES"
			      " ('d', 9, char(30) || '1' || char(30) || '7' || char(30) || '[]', zeroblob(16), 1, 1),"
			      " ('d', 10, char(30) || char(30) || 'x', zeroblob(16), 1, 1)");
	else
		tb_exec(path, "DROP TABLE payload_names; UPDATE meta SET value = '8' WHERE key = 'schema_version'");
	st = tb_open(path, STATE_OPEN_CREATE);
	assert_int_equal(state_schema_version(st), STATE_SCHEMA_VERSION);
	assert_true(slice_eq_str(payload_of(st, "d", &IK(1)), p));
	if (B->kind == TB_SQLITE) {
		/* names id 1 of one name: key 9's bytes would unpack to {"attributes":{"external_id":7},...} */
		static const char one[] = "{\"attributes\":{\"external_id\":\"1\"},\"groups\":[]}";
		put_committed(st, "d", IK(8), one);
		assert_int_equal(tb_int(path, "SELECT id FROM payload_names WHERE names = '[\"external_id\"]'"), 1);
		assert_true(slice_eq(payload_of(st, "d", &IK(9)), SLICE_LIT("\x1e" "1\x1e" "7\x1e[]")));
		assert_true(slice_eq(payload_of(st, "d", &IK(10)), SLICE_LIT("\x1e\x1e" "x")));
	}
	for (int k = 2; k <= 3; k++) {
		put_committed(st, "d", k == 2 ? IK(2) : IK(3), p);
	}
	state_close(st);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM records"), B->kind == TB_SQLITE ? 6 : 3);
	assert_int_equal(tb_int(path, "SELECT count(*) FROM payload_names"), B->kind == TB_SQLITE ? 2 : 0);
	if (B->kind == TB_SQLITE)
		assert_int_equal(tb_int(path, "SELECT payload LIKE char(30) || '%' FROM records WHERE key = 3"), 1);
	jerror_release(&err);
	free(path);
	(void)s;
}

/*
 * What an export holds comes back in an import: a payload that starts with 0x1e (never a
 * canonical one; the store keeps any bytes) is escaped, not taken for a packed one; a
 * canonical one is read back as it was; and so are puts of such bytes.
 */
static void test_payloads_starting_with_0x1e(void **s)
{
	static const struct slice odd[] = { SLICE_LIT("\x1e" "1\x1e" "5\x1e[]"), SLICE_LIT("\x1e"),
					    SLICE_LIT("\x1e\x1e" "x") };
	char *path = tb_fresh();
	struct state *st = tb_open(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	const struct state_table *t = NULL;
	for (size_t i = 0; i < state_n_tables; i++)
		if (!strcmp(state_tables[i].name, "records"))
			t = &state_tables[i];
	assert_non_null(t);
	/* names of key 1's list known first, so that "1" could be taken for their id */
	for (int k = 1; k <= 2; k++) {
		put_committed(st, "d", k == 1 ? IK(1) : IK(2), "{\"attributes\":{\"external_id\":\"1\"},\"groups\":[]}");
	}
	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (size_t j = 0; j < ARRAY_SIZE(odd); j++) {
		struct state_value row[STATE_MAX_COLUMNS];
		for (size_t i = 0; i < t->n_cols; i++)
			row[i] = t->cols[i].nullable ? (struct state_value){ STATE_VAL_NULL, 0, { "", 0 } }
				 : t->cols[i].type == STATE_COL_TEXT ? state_val_text("")
								     : state_val_int(0);
		row[0] = state_val_text("imp");
		row[1] = state_val_int((int64_t)j);
		row[2] = (struct state_value){ STATE_VAL_TEXT, 0, odd[j] };
		row[3] = (struct state_value){ STATE_VAL_TEXT, 0, SLICE_LIT("0123456789abcdef") };
		assert_int_equal(state_load_row(st, t, row, &err), JERR_OK);
	}
	assert_int_equal(state_commit(st, &err), JERR_OK);
	for (size_t j = 0; j < ARRAY_SIZE(odd); j++) {
		unsigned char h[STATE_HASH_LEN];
		struct rkey k = { true, (int64_t)j + 10, SLICE_LIT("") };
		state_hash(odd[j].ptr, odd[j].len, h);
		assert_int_equal(state_begin(st, &err), JERR_OK);
		assert_int_equal(state_put(st, "put", &k, odd[j], h, true, &err), JERR_OK);
		assert_int_equal(state_commit(st, &err), JERR_OK);
	}
	for (size_t j = 0; j < ARRAY_SIZE(odd); j++) {
		struct rkey k = { true, (int64_t)j, SLICE_LIT("") };
		assert_true(slice_eq(payload_of(st, "imp", &k), odd[j]));
		k.i += 10;
		assert_true(slice_eq(payload_of(st, "put", &k), odd[j]));
	}
	state_close(st);
	jerror_release(&err);
	free(path);
	(void)s;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payloads_read_back),
		cmocka_unit_test(test_rollback_adds_no_names),
		cmocka_unit_test(test_damaged_store_is_an_error),
		cmocka_unit_test(test_schema_8_upgrades),
		cmocka_unit_test(test_payloads_starting_with_0x1e),
	};
	return tb_run_both("state names", tests, ARRAY_SIZE(tests));
}
