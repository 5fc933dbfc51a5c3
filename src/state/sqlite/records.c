/*
 * records.c: the records of an SQLite state store (what Braze has, per destination
 * and key): the cursor's batches, counts, one record's read, the transactions that
 * group writes, and the writes themselves (store, delete, mark failed, Braze has it).
 * Owns nothing beyond the call: rows it hands out borrow the statement's memory until
 * the next call (sq_get keeps its row with state_keep_row). Called through the ops
 * table (ops.c) by state.c.
 */
#include <sqlite3.h>
#include <string.h>

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "state/sqlite/sqlite_internal.h"

/* ---- reading ---- */

/*
 * A row of the S_CUR_LEAN_* statements (state_cursor_lean): what the diff compares,
 * with fewer calls into SQLite than sq_decode_row (a NULL time reads as 0).
 */
void sq_decode_lean_row(sqlite3_stmt *s, struct state_row *row, char *keybuf)
{
	sq_decode_head(s, row, keybuf);
	row->last_error = (struct slice){ "", 0 };
	row->braze_exists = sqlite3_column_type(s, CL_EXISTS) == SQLITE_NULL ? -1
			    : sqlite3_column_int(s, CL_EXISTS) != 0;
	row->checked_at = sqlite3_column_int64(s, CL_CHECKED_AT);
	row->confirmed = !state_row_placeholder(row);
	row->confirmed_at = 0;
	row->updated_at = 0;
}

/*
 * A read-only connection's cursors (`joey plan`, the API's reads) read in one read
 * transaction, from the first batch until the last cursor is closed: every batch and
 * seek sees the same snapshot, and SQLite does not take and drop its file locks, check
 * the file and revalidate its page cache per statement (100k fcntl and 50k fstat calls
 * for 50k seeks). Writable connections keep their own transactions (nothing changes).
 */
static void hold_read(struct sq_state *sq)
{
	if (sq->read_held || !sqlite3_get_autocommit(sq->db) || sqlite3_db_readonly(sq->db, "main") != 1)
		return;
	sq->read_held = sqlite3_exec(sq->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
}

void sq_cursors_closed(struct state *st)
{
	struct sq_state *sq = sq_of(st);
	sq_ahead_end(sq);
	if (!sq->read_held)
		return;
	sq->read_held = false;
	if (!sqlite3_get_autocommit(sq->db) && sqlite3_exec(sq->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		(void)sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL); /* a read: nothing to lose */
}

enum jerr sq_decode_unpacked(struct sq_names *nm, sqlite3 *db, const char *path, sqlite3_stmt *s, bool lean,
			     struct state_row *row, char *keybuf, struct jerror *err)
{
	if (lean)
		sq_decode_lean_row(s, row, keybuf);
	else
		sq_decode_row(s, row, keybuf);
	return sq_payload_unpack(nm, db, path, &row->payload, err);
}

/* Push the row s stands on to cur, decoded as the cursor reads (lean or full), its payload unpacked. */
static enum jerr push_row(struct state_cursor *cur, sqlite3_stmt *s, char *keybuf, struct jerror *err)
{
	struct sq_state *sq = sq_of(cur->st);
	struct state_row r;
	enum jerr ret = sq_decode_unpacked(&sq->names, sq->db, sq->base.path, s, cur->lean, &r, keybuf, err);
	if (!ret)
		state_cursor_push(cur, &r);
	return ret;
}

enum jerr sq_cursor_fill(struct state_cursor *cur, bool *end, struct jerror *err)
{
	struct sq_state *sq = sq_of(cur->st);
	sqlite3_stmt *s = NULL;
	/* a seek and a range's first batch start at a key (inclusive), a walk after the last */
	const struct rkey *at = cur->has_seek ? &cur->seek : cur->have_last ? NULL : cur->has_from ? &cur->from : NULL;
	enum stmt_id id = at ? S_CUR_FROM : cur->have_last ? S_CUR_NEXT : S_CUR_FIRST;
	if (cur->lean)
		id = at ? S_CUR_LEAN_FROM : cur->have_last ? S_CUR_LEAN_NEXT : S_CUR_LEAN_FIRST;
	hold_read(sq);
	enum jerr ret = sq_stmt_get(sq, id, &s, err);
	char keybuf[STATE_KEYBUF_SIZE];
	int rc = SQLITE_DONE;

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, cur->dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, (int)cur->want);
	if (at)
		sq_bind_key(s, 3, at);
	else if (cur->have_last)
		sq_bind_key(s, 3, &cur->last);
	while (!ret && !state_cursor_full(cur) && cur->n < cur->want && (rc = sqlite3_step(s)) == SQLITE_ROW)
		ret = push_row(cur, s, keybuf, err);
	if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sq_db_error(sq, rc, err,
				  "could not read records of destination \"%s\" from state store \"%s\"",
				  cur->dest_id, cur->st->path);
	/* a short batch that ran to SQLITE_DONE was the last one */
	*end = rc == SQLITE_DONE && cur->n < cur->want;
	sq_stmt_done(s);
	return ret;
}

/*
 * ops->lookup: the first row at or after each of keys[0 .. n) (ascending), each row
 * once, by one B-tree seek per key with the cursor's own statement (LIMIT 1) in the
 * read transaction of its batches. A key at or before the row found for the key before
 * it gets that row again: no seek (a key repeated too). A key before the key before it
 * (the caller's contract broken) ends the batch there: the cursor then seeks the rest
 * one at a time, and no row comes out of order.
 */
enum jerr sq_cursor_lookup(struct state_cursor *cur, const struct rkey *keys, size_t n, struct jerror *err)
{
	struct sq_state *sq = sq_of(cur->st);
	sqlite3_stmt *s = NULL;
	char keybuf[STATE_KEYBUF_SIZE];
	enum jerr ret;
	int rc = SQLITE_DONE;

	hold_read(sq);
	if (sq_ahead_lookup(sq, cur, keys, n))
		return JERR_OK;
	if ((ret = sq_stmt_get(sq, cur->lean ? S_CUR_LEAN_FROM : S_CUR_FROM, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, cur->dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, 1);
	for (size_t i = 0; i < n && !state_cursor_full(cur); i++) {
		if (i && key_compare(&keys[i], &keys[i - 1]) < 0)
			break;
		if (cur->n) {
			/* the row pushed last, its text where the buffer holds it now */
			struct rkey last = cur->rows[cur->n - 1].key;
			last.text.ptr = cur->buf.buf + cur->text[cur->n - 1].key;
			if (key_compare(&last, &keys[i]) >= 0)
				continue; /* the first row at or after keys[i] too */
		}
		sq_bind_key(s, 3, &keys[i]);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			if ((ret = push_row(cur, s, keybuf, err)))
				break;
			rc = sqlite3_reset(s);
		}
		if (rc != SQLITE_OK && rc != SQLITE_DONE)
			break;
		if (rc == SQLITE_DONE) {
			rc = SQLITE_OK;
			break; /* no row at or after keys[i]: none after the keys that follow */
		}
	}
	if (!ret && rc != SQLITE_OK && rc != SQLITE_DONE)
		ret = sq_db_error(sq, rc, err, "could not read records of destination \"%s\" from state store \"%s\"",
				  cur->dest_id, cur->st->path);
	sq_stmt_done(s);
	return ret;
}

/* Step a bound count statement into *in_scope and reset it (sq_count, sq_count_range). */
static enum jerr count_step(struct sq_state *sq, sqlite3_stmt *s, const char *dest_id, uint64_t *in_scope,
			    struct jerror *err)
{
	bool row;
	enum jerr ret = sq_step_row(sq, s, true, &row, err,
				    "could not count records of destination \"%s\" in state store \"%s\"",
				    dest_id, sq->base.path);
	if (row)
		*in_scope = (uint64_t)sqlite3_column_int64(s, 0);
	sq_stmt_done(s);
	return ret;
}

enum jerr sq_count(struct state *st, const char *dest_id, uint64_t *in_scope, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret = sq_stmt_dest(sq, S_COUNT, dest_id, &s, err);
	return ret ? ret : count_step(sq, s, dest_id, in_scope, err);
}

enum jerr sq_count_range(struct state *st, const char *dest_id, const struct rkey *lo, const struct rkey *hi,
			 uint64_t *in_scope, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret = sq_stmt_dest(sq, S_COUNT_RANGE, dest_id, &s, err);
	if (ret)
		return ret;
	if (lo)
		sq_bind_key(s, 2, lo);
	if (hi)
		sq_bind_key(s, 3, hi);
	return count_step(sq, s, dest_id, in_scope, err);
}

enum jerr sq_get(struct state *st, const char *dest_id, const struct rkey *key,
		 bool *found, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret = sq_stmt_record(sq, S_GET, dest_id, key, &s, err);
	int rc;

	if (ret)
		return ret;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		char keybuf[STATE_KEYBUF_SIZE];
		struct state_row r;
		if (!(ret = sq_decode_unpacked(&sq->names, sq->db, st->path, s, false, &r, keybuf, err))) {
			state_keep_row(st, &r); /* the statement is reset below */
			*found = true;
		}
	} else if (rc != SQLITE_DONE) {
		struct strbuf k = STRBUF_INIT;
		ret = sq_db_error(sq, rc, err,
				  "could not read record \"%s\" of destination \"%s\" from state store \"%s\"",
				  state_key_str(key, &k), dest_id, st->path);
		strbuf_release(&k);
	}
	sq_stmt_done(s);
	return ret;
}

/* ---- transactions ---- */

bool sq_in_transaction(struct state *st)
{
	struct sq_state *sq = sq_of(st);
	return sq->db && !sqlite3_get_autocommit(sq->db);
}

enum jerr sq_begin(struct state *st, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = sq_stmt_get(sq, S_BEGIN, &s, err)))
		return ret;
	return sq_step_write(sq, s, "start a transaction", NULL, NULL, err);
}

void sq_rollback(struct state *st)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	struct jerror e = JERROR_INIT;
	sq_drop_puts(sq); /* never written */
	sq_names_drop_pending(&sq->names); /* their rows were not kept */
	if (!sq_in_transaction(st))
		return;
	if (sq_stmt_get(sq, S_ROLLBACK, &s, &e) ||
	    sq_step_write(sq, s, "roll back a transaction", NULL, NULL, &e)) {
		log_error("%s", e.msg.buf);
		/* last resort: nothing of the transaction may survive */
		sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL);
	}
	jerror_release(&e);
}

enum jerr sq_commit(struct state *st, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	/* the kept puts first: if one fails, nothing of the transaction is stored */
	if ((ret = sq_flush_puts(sq, err)) || (ret = sq_stmt_get(sq, S_COMMIT, &s, err))) {
		sq_rollback(st);
		return ret;
	}
	ret = sq_step_write(sq, s, "commit a transaction", NULL, NULL, err);
	if (ret)
		sq_rollback(st);
	else
		sq_names_register(&sq->names, sq->db); /* the next transactions' rows may refer to them */
	return ret;
}

/* ---- writes ---- */

/* One put now, by the single-row statement. */
static enum jerr put_one(struct sq_state *sq, const char *dest_id, const struct rkey *key, struct slice payload,
			 const unsigned char hash[STATE_HASH_LEN], bool in_scope, int64_t now, struct jerror *err)
{
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = sq_stmt_record(sq, S_PUT, dest_id, key, &s, err)))
		return ret;
	sqlite3_bind_text(s, 3, payload.ptr ? payload.ptr : "", (int)payload.len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, hash, STATE_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int(s, 5, in_scope);
	sqlite3_bind_int64(s, 6, now);
	return sq_step_write(sq, s, "store", dest_id, key, err);
}

/* A put outside a transaction: stored as sq_payload_store says, now, then the names it needed added. */
static enum jerr put_now(struct sq_state *sq, const char *dest_id, const struct rkey *key, struct slice payload,
			 const unsigned char hash[STATE_HASH_LEN], bool in_scope, int64_t now, struct jerror *err)
{
	struct strbuf packed = STRBUF_INIT;
	enum jerr ret;
	sq_payload_store(&sq->names, payload, &packed);
	ret = put_one(sq, dest_id, key, (struct slice){ packed.buf, packed.len }, hash, in_scope, now, err);
	strbuf_release(&packed);
	if (sq->db)
		sq_names_register(&sq->names, sq->db);
	return ret;
}

/* ---- write-behind of puts (sqlite_internal.h) ---- */

struct sq_pending_put {
	size_t dest, dest_len, key, key_len, payload, payload_len; /* into pend_bytes */
	bool is_int, in_scope;
	int64_t key_int, now;
	unsigned char hash[STATE_HASH_LEN];
};

static size_t pend_add(struct sq_state *sq, const void *p, size_t n)
{
	size_t at = sq->pend_bytes.len;
	strbuf_add(&sq->pend_bytes, p, n);
	strbuf_addch(&sq->pend_bytes, 0);
	return at;
}

static struct rkey pend_key(const struct sq_state *sq, const struct sq_pending_put *x)
{
	return (struct rkey){ .is_int = x->is_int, .i = x->key_int,
			      .text = { sq->pend_bytes.buf + x->key, x->key_len } };
}

void sq_drop_puts(struct sq_state *sq)
{
	sq->n_pend = 0;
	strbuf_reset(&sq->pend_bytes);
}

/* The statement writing SQ_PUT_BATCH rows: S_PUT's, its VALUES row repeated. */
static enum jerr put_batch_stmt(struct sq_state *sq, sqlite3_stmt **out, struct jerror *err)
{
	if (!sq->put_batch) {
		struct strbuf sql = STRBUF_INIT;
		strbuf_addstr(&sql, "INSERT INTO records (dest_id, key, payload, hash, in_scope, pending, attempts,"
				    " last_error, confirmed_at, updated_at) VALUES ");
		for (int i = 0; i < SQ_PUT_BATCH; i++) {
			int k = i * 6;
			strbuf_addf(&sql, "%s(?%d, ?%d, ?%d, ?%d, ?%d, 0, 0, NULL, CASE WHEN ?%d = zeroblob(16) THEN NULL ELSE ?%d END, ?%d)",
				    i ? ", " : "", k + 1, k + 2, k + 3, k + 4, k + 5, k + 4, k + 6, k + 6);
		}
		strbuf_addstr(&sql, " ON CONFLICT (dest_id, key) DO UPDATE SET payload = excluded.payload,"
				    " hash = excluded.hash, in_scope = excluded.in_scope, pending = 0, attempts = 0,"
				    " last_error = NULL, confirmed_at = excluded.confirmed_at,"
				    " updated_at = excluded.updated_at");
		int rc = sqlite3_prepare_v3(sq->db, sql.buf, -1, SQLITE_PREPARE_PERSISTENT, &sq->put_batch, NULL);
		strbuf_release(&sql);
		if (rc != SQLITE_OK)
			return sq_db_error(sq, rc, err, "could not prepare a query on state store \"%s\"",
					   sq->base.path);
	}
	*out = sq->put_batch;
	return JERR_OK;
}

/*
 * Write the kept puts: a full batch by one statement (rows of one INSERT apply in
 * order, so a key put twice ends as its last put, as one at a time), the rest one by
 * one. Kept puts are written once, whatever happens: on failure err says what failed
 * and the caller's transaction fails (its commit is not reached, or rolls back).
 */
enum jerr sq_flush_puts(struct sq_state *sq, struct jerror *err)
{
	size_t n = sq->n_pend;
	enum jerr ret = JERR_OK;
	const char *b = sq->pend_bytes.buf;
	if (!n)
		return JERR_OK;
	sq->n_pend = 0;
	if (!sq->db || sqlite3_get_autocommit(sq->db)) {
		/* the transaction they were put in has ended (SQLite rolls back on some errors): none is written */
		ret = jerror_set(err, JERR_STATE, "could not store %zu records of destination \"%s\" in state store \"%s\"",
				 n, b + sq->pend[0].dest, sq->base.path);
		jerror_detail(err, "the transaction they belong to ended before they were written");
		goto out;
	}
	if (n == SQ_PUT_BATCH) {
		sqlite3_stmt *s = NULL;
		if ((ret = put_batch_stmt(sq, &s, err)))
			goto out;
		for (size_t i = 0; i < n; i++) {
			const struct sq_pending_put *x = &sq->pend[i];
			int k = (int)i * 6;
			struct rkey key = pend_key(sq, x);
			sqlite3_bind_text(s, k + 1, b + x->dest, (int)x->dest_len, SQLITE_STATIC);
			sq_bind_key(s, k + 2, &key);
			sqlite3_bind_text(s, k + 3, b + x->payload, (int)x->payload_len, SQLITE_STATIC);
			sqlite3_bind_blob(s, k + 4, x->hash, STATE_HASH_LEN, SQLITE_STATIC);
			sqlite3_bind_int(s, k + 5, x->in_scope);
			sqlite3_bind_int64(s, k + 6, x->now);
		}
		int rc = sqlite3_step(s);
		if (rc != SQLITE_DONE)
			ret = sq_db_error(sq, rc, err, "could not store %zu records of destination \"%s\" in state store \"%s\"",
					  n, b + sq->pend[0].dest, sq->base.path);
		sqlite3_reset(s); /* every parameter is bound again next time */
		goto out;
	}
	for (size_t i = 0; i < n && !ret; i++) {
		const struct sq_pending_put *x = &sq->pend[i];
		struct rkey key = pend_key(sq, x);
		ret = put_one(sq, b + x->dest, &key, (struct slice){ b + x->payload, x->payload_len }, x->hash,
			      x->in_scope, x->now, err);
	}
out:
	strbuf_reset(&sq->pend_bytes);
	return ret;
}

enum jerr sq_put(struct state *st, const char *dest_id, const struct rkey *key,
		 struct slice payload, const unsigned char hash[STATE_HASH_LEN],
		 bool in_scope, int64_t now, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	enum jerr ret;
	if (!sq->db || sqlite3_get_autocommit(sq->db)) /* no transaction: now */
		return put_now(sq, dest_id, key, payload, hash, in_scope, now, err);
	if (sq->n_pend == SQ_PUT_BATCH && (ret = sq_flush_puts(sq, err)))
		return ret;
	ALLOC_GROW(sq->pend, sq->n_pend + 1, sq->alloc_pend);
	struct sq_pending_put *x = &sq->pend[sq->n_pend++];
	x->dest = pend_add(sq, dest_id, strlen(dest_id));
	x->dest_len = strlen(dest_id);
	x->is_int = key->is_int;
	x->key_int = key->i;
	/* the text of an integer key too: messages name a key as a put one at a time does */
	x->key = pend_add(sq, key->text.ptr ? key->text.ptr : "", key->text.len);
	x->key_len = key->text.len;
	x->payload = sq->pend_bytes.len;
	sq_payload_store(&sq->names, payload, &sq->pend_bytes);
	x->payload_len = sq->pend_bytes.len - x->payload;
	strbuf_addch(&sq->pend_bytes, 0);
	memcpy(x->hash, hash, STATE_HASH_LEN);
	x->in_scope = in_scope;
	x->now = now;
	return JERR_OK;
}

enum jerr sq_del(struct state *st, const char *dest_id, const struct rkey *key,
		 struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = sq_stmt_record(sq, S_DELETE, dest_id, key, &s, err)))
		return ret;
	return sq_step_write(sq, s, "delete", dest_id, key, err);
}

enum jerr sq_mark_failed(struct state *st, const char *dest_id, const struct rkey *key,
			 const char *error, struct slice payload, int64_t now, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = sq_stmt_record(sq, S_FAIL, dest_id, key, &s, err)))
		return ret;
	sq_bind_str(s, 3, error);
	sqlite3_bind_int64(s, 4, now);
	/* canonical (read as it is): packing is for the many rows of a sync, not these */
	sqlite3_bind_text(s, 5, payload.ptr ? payload.ptr : "", (int)payload.len, SQLITE_STATIC);
	return sq_step_write(sq, s, "mark as failed", dest_id, key, err);
}

enum jerr sq_set_exists(struct state *st, const char *dest_id, const struct rkey *key,
			bool exists, int64_t checked_at, int64_t now, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = sq_stmt_record(sq, S_EXISTS, dest_id, key, &s, err)))
		return ret;
	sqlite3_bind_int(s, 3, exists);
	sqlite3_bind_int64(s, 4, checked_at);
	sqlite3_bind_int64(s, 5, now);
	return sq_step_write(sq, s, "record whether Braze has", dest_id, key, err);
}

