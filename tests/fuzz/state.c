/*
 * state.c: libFuzzer target for what the state store reads back (src/state/state.c)
 * and the engine makes of it (payload_diff in src/engine/payload.c): the rows of a
 * state file as a corrupt or older file may hold them (keys of any SQLite type,
 * payloads that are not JSON or not text, hashes of any length, out-of-range flags,
 * runs of hundreds of rows and rows of 64 KB to cross the cursor's batch limits),
 * read through state_cursor_*, state_get and state_count; then what state_put stores
 * must read back byte for byte.
 *
 * Input: a list of row groups, each
 *   flags  bits 0-1 key type (integer, text, real, blob), bit 2 destination "a"/"b",
 *          bits 3-4 payload (input text, input blob, 64 KB of filler, placeholder ''),
 *          bit 5 a run of rows (count in the next byte), bit 6 a short hash,
 *          bit 7 in_scope 7 (outside the CHECK)
 *   klen, key bytes, plen, payload bytes [, count]
 * The store is one file in a temporary directory made once per process (removed at
 * exit); rows are written through a second SQLite connection that ignores CHECKs.
 * A row whose payload starts with 0x1e is a packed payload (src/state/sqlite/names.c)
 * to the store, damaged unless it happens to fit names the store knows: like a key of
 * another type, it may end a read in a clear error. round_trip's puts are packed once
 * their names are known (after the first commit that used them), so canonical inputs
 * (the corpus's packed_*) check that packing and unpacking give the payload back.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "base/arena.h"
#include "engine/payload.h"
#include "state/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ROWS 600 /* past two cursor batches of 256 */
#define FILLER_BYTES (64 * 1024)
#define MAX_FILLER_ROWS 18 /* 1.1 MB: past the cursor's 1 MB batch limit */

static char dir[64], path[96];
static struct state *st;
static sqlite3 *raw;
static sqlite3_stmt *ins, *cnt;
static char *filler;

static void cleanup(void)
{
	char p[128];
	sqlite3_finalize(ins);
	sqlite3_finalize(cnt);
	sqlite3_close(raw);
	state_close(st);
	free(filler);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	rmdir(dir);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	struct jerror err = JERROR_INIT;
	snprintf(dir, sizeof(dir), "%s/joeyfuzz.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/state.db", dir);
	if (state_open(path, STATE_OPEN_CREATE, &st, &err))
		abort();
	if (sqlite3_open(path, &raw) != SQLITE_OK ||
	    sqlite3_exec(raw, "PRAGMA ignore_check_constraints = ON; PRAGMA synchronous = OFF",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(raw,
			       "INSERT OR REPLACE INTO records (dest_id, key, payload, hash, in_scope,"
			       " pending, attempts, last_error, braze_exists, checked_at, confirmed_at,"
			       " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1)",
			       -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(raw, "SELECT count(*), count(*) FILTER (WHERE typeof(key) NOT IN"
				    " ('integer', 'text') OR substr(CAST(payload AS BLOB), 1, 1) = x'1e')"
				    " FROM records WHERE dest_id = ?1",
			       -1, &cnt, NULL) != SQLITE_OK)
		abort();
	filler = malloc(FILLER_BYTES);
	if (!filler)
		abort();
	memset(filler, 'x', FILLER_BYTES);
	filler[0] = '{';
	atexit(cleanup);
}

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t take_byte(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static struct slice take(struct input *in, size_t len)
{
	struct slice s = { (const char *)in->p, len < in->n ? len : in->n };
	in->p += s.len;
	in->n -= s.len;
	return s;
}

/* Write the input's rows; returns how many statements ran. */
static size_t write_rows(struct input *in)
{
	size_t rows = 0, fillers = 0;
	char kbuf[64];
	while (in->n && rows < MAX_ROWS) {
		uint8_t f = take_byte(in);
		struct slice key = take(in, take_byte(in) % 24);
		struct slice pl = take(in, take_byte(in));
		size_t count = (f & 0x20) ? 1 + (size_t)take_byte(in) * 2 : 1;
		static const unsigned char hash[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
		int64_t base = 0;
		for (size_t i = 0; i < key.len && i < 8; i++)
			base = (int64_t)((uint64_t)base << 8 | (uint8_t)key.ptr[i]);
		for (size_t i = 0; i < count && rows < MAX_ROWS; i++, rows++) {
			sqlite3_reset(ins);
			sqlite3_bind_text(ins, 1, (f & 4) ? "b" : "a", 1, SQLITE_STATIC);
			switch (f & 3) {
			case 0:
				sqlite3_bind_int64(ins, 2, (int64_t)((uint64_t)base + i));
				break;
			case 1:
			case 3: {
				size_t n = key.len < 40 ? key.len : 40;
				memcpy(kbuf, key.ptr, n);
				n += (size_t)snprintf(kbuf + n, sizeof(kbuf) - n, "%zu", i);
				if ((f & 3) == 1)
					sqlite3_bind_text(ins, 2, kbuf, (int)n, SQLITE_TRANSIENT);
				else
					sqlite3_bind_blob(ins, 2, kbuf, (int)n, SQLITE_TRANSIENT);
				break;
			}
			case 2:
				sqlite3_bind_double(ins, 2, (double)(base % 100000) + (double)i + 0.5);
				break;
			}
			switch (f >> 3 & 3) {
			case 0:
				sqlite3_bind_text(ins, 3, pl.ptr, (int)pl.len, SQLITE_STATIC);
				break;
			case 1:
				sqlite3_bind_blob(ins, 3, pl.len ? pl.ptr : "", (int)pl.len, SQLITE_STATIC);
				break;
			case 2:
				if (fillers++ < MAX_FILLER_ROWS)
					sqlite3_bind_text(ins, 3, filler, FILLER_BYTES, SQLITE_STATIC);
				else
					sqlite3_bind_text(ins, 3, pl.ptr, (int)pl.len, SQLITE_STATIC);
				break;
			case 3:
				sqlite3_bind_text(ins, 3, "", 0, SQLITE_STATIC);
				break;
			}
			sqlite3_bind_blob(ins, 4, hash, (f & 0x40) ? 3 : 16, SQLITE_STATIC);
			sqlite3_bind_int(ins, 5, (f & 0x80) ? 7 : (int)(i & 1));
			sqlite3_bind_int(ins, 6, (int)(f >> 1 & 1));
			sqlite3_bind_int64(ins, 7, (int64_t)i - 1);
			if (pl.len & 1)
				sqlite3_bind_text(ins, 8, pl.ptr, (int)pl.len, SQLITE_STATIC);
			else
				sqlite3_bind_null(ins, 8);
			if (f & 0x40)
				sqlite3_bind_int(ins, 9, (int)(f & 3));
			else
				sqlite3_bind_null(ins, 9);
			sqlite3_bind_int64(ins, 10, base);
			if ((f >> 3 & 3) == 3)
				sqlite3_bind_null(ins, 11);
			else
				sqlite3_bind_int64(ins, 11, 2);
			if (sqlite3_step(ins) != SQLITE_DONE)
				abort();
		}
	}
	sqlite3_reset(ins);
	sqlite3_clear_bindings(ins);
	return rows;
}

static void count_rows(const char *dest_id, int64_t *all, int64_t *odd)
{
	sqlite3_reset(cnt);
	sqlite3_bind_text(cnt, 1, dest_id, -1, SQLITE_STATIC);
	if (sqlite3_step(cnt) != SQLITE_ROW)
		abort();
	*all = sqlite3_column_int64(cnt, 0);
	*odd = sqlite3_column_int64(cnt, 1);
	sqlite3_reset(cnt);
}

/* A stored payload compared with itself changes nothing, whatever it holds. */
static void check_payload(struct slice payload, struct arena *a)
{
	struct payload_diff d;
	struct jerror err = JERROR_INIT;
	if (payload_diff(payload, payload, a, &d, &err) == JERR_OK) {
		FUZZ_CHECK(!d.n_changes && !d.n_added && !d.n_removed);
	} else {
		FUZZ_CHECK(err.code == JERR_STATE && err.msg.len);
	}
	jerror_release(&err);
	(void)payload_diff(SLICE_LIT(""), payload, a, &d, &err);
	jerror_release(&err);
	(void)payload_diff_full(payload, SLICE_LIT(""), a, &d, &err);
	jerror_release(&err);
}

/* Read one destination through a cursor and by key. */
static void read_dest(const char *dest_id, struct arena *a)
{
	struct state_cursor *cur;
	struct state_row *row;
	struct jerror err = JERROR_INIT;
	struct rkey prev = { 0 };
	struct strbuf prev_text = STRBUF_INIT, k = STRBUF_INIT;
	int64_t all, odd, seen = 0;
	uint64_t in_scope;

	count_rows(dest_id, &all, &odd);
	FUZZ_CHECK(state_count(st, dest_id, &in_scope, &err) == JERR_OK && in_scope <= (uint64_t)all);
	FUZZ_CHECK(state_cursor_open(st, dest_id, &cur, &err) == JERR_OK);
	while (state_cursor_next(cur, &row, &err) == JERR_OK && row) {
		/*
		 * Never a row twice, keys strictly increasing: in a damaged file (keys of
		 * other SQLite types) the cursor stops with JERR_STATE rather than loop.
		 */
		FUZZ_CHECK(++seen <= all);
		if (seen > 1) {
			prev.text = (struct slice){ prev_text.buf, prev_text.len };
			FUZZ_CHECK(key_compare(&prev, &row->key) < 0);
		}
		prev.is_int = row->key.is_int;
		prev.i = row->key.i;
		strbuf_reset(&prev_text);
		strbuf_addslice(&prev_text, row->key.text);
		FUZZ_CHECK(row->payload.ptr || !row->payload.len);
		if (row->payload.len < FILLER_BYTES) { /* the filler is not worth diffing */
			check_payload(row->payload, a);
			arena_reset(a);
		}

		/* the same row by key (keys of a valid type only: the others read as text) */
		if (!odd) {
			struct state_row *got;
			bool found;
			strbuf_reset(&k);
			strbuf_addslice(&k, row->key.text);
			struct rkey key = { row->key.is_int, row->key.i, { k.buf, k.len } };
			size_t plen = row->payload.len;
			FUZZ_CHECK(state_get(st, dest_id, &key, &got, &found, &err) == JERR_OK && found);
			FUZZ_CHECK(got->payload.len == plen && got->key.is_int == key.is_int);
		}
	}
	/* a damaged store (keys of other types) may end in a clear error, a valid one never */
	FUZZ_CHECK(err.code == JERR_OK || (odd && err.code == JERR_STATE && err.msg.len));
	/* every row of a valid type is read, and nothing else */
	FUZZ_CHECK(odd || seen == all);
	state_cursor_close(cur);
	strbuf_release(&prev_text);
	strbuf_release(&k);
	jerror_release(&err);
}

/* What state_put stores reads back the same; then a failure keeps it, a delete drops it. */
static void round_trip(const uint8_t *data, size_t size)
{
	struct jerror err = JERROR_INIT;
	struct state_row *got;
	bool found;
	unsigned char hash[STATE_HASH_LEN];
	size_t klen = size ? data[0] % 16 : 0;
	if (klen > size - (size ? 1 : 0))
		klen = size ? size - 1 : 0;
	struct rkey key = { .is_int = size && (data[0] & 0x80), .i = (int64_t)size * 7919 - 40000,
			    .text = { size ? (const char *)data + 1 : "", klen } };
	struct slice payload = { size > klen + 1 ? (const char *)data + 1 + klen : "",
				 size > klen + 1 ? size - 1 - klen : 0 };
	char ibuf[24];
	if (key.is_int) {
		int n = snprintf(ibuf, sizeof(ibuf), "%" PRId64, key.i);
		key.text = (struct slice){ ibuf, (size_t)n };
	}
	state_hash(payload.ptr, payload.len, hash);
	FUZZ_CHECK(state_begin(st, &err) == JERR_OK);
	FUZZ_CHECK(state_put(st, "c", &key, payload, hash, true, &err) == JERR_OK);
	FUZZ_CHECK(state_commit(st, &err) == JERR_OK);
	FUZZ_CHECK(state_get(st, "c", &key, &got, &found, &err) == JERR_OK && found);
	FUZZ_CHECK(got->confirmed && got->in_scope && !got->pending && got->payload.len == payload.len);
	FUZZ_CHECK(!memcmp(got->payload.ptr, payload.ptr, payload.len));
	FUZZ_CHECK(!memcmp(got->hash, hash, STATE_HASH_LEN));
	FUZZ_CHECK(state_mark_failed(st, "c", &key, "fuzz", (struct slice){ NULL, 0 }, &err) == JERR_OK);
	FUZZ_CHECK(state_get(st, "c", &key, &got, &found, &err) == JERR_OK && found);
	FUZZ_CHECK(got->pending && got->attempts == 1 && got->payload.len == payload.len);
	FUZZ_CHECK(state_delete(st, "c", &key, &err) == JERR_OK);
	FUZZ_CHECK(state_get(st, "c", &key, &got, &found, &err) == JERR_OK && !found);
	jerror_release(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct arena a;

	if (!st)
		setup();
	if (sqlite3_exec(raw, "BEGIN; DELETE FROM records", NULL, NULL, NULL) != SQLITE_OK)
		abort();
	write_rows(&in);
	if (sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		abort();
	arena_init(&a);
	read_dest("a", &a);
	read_dest("b", &a);
	arena_release(&a);
	round_trip(data, size);
	return 0;
}
