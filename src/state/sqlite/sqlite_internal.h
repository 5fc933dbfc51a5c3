/*
 * sqlite_internal.h: what the pieces of the SQLite state store (the .c files of src/state/sqlite/)
 * share: the connection struct, the cached statements, and the helpers that prepare,
 * bind, step and reset them and turn SQLite's errors into joey's. Not part of the
 * back-end interface: the rest of joey reaches this back end only through the one
 * const ops table state_sqlite (ops.c, declared in state/backend.h).
 *
 * Order of calls for one operation on a cached statement (records.c, runs.c, ...):
 *   sqlite3_stmt *s;
 *   if ((ret = sq_stmt_dest(sq, S_X, dest_id, &s, err)))   -- or sq_stmt_get; ?1 bound
 *       return ret;
 *   bind the other parameters (sq_bind_key, sq_bind_str, sqlite3_bind_*);
 *   a write:  return sq_step_write(...) or sq_step_writef(...);   -- steps, resets
 *   a read:   ret = sq_step_row(...); read the row when *row; sq_stmt_done(s);
 * Statements prepared for one use (listings, dumps) are finalized by whoever
 * prepared them (sq_list_rows finalizes the one it is given).
 *
 * Design notes.
 *
 * One connection per struct state. Every fixed statement is prepared once, on first
 * use, and kept in sq->stmt[]; after each use it is reset and its bindings cleared,
 * so no statement holds a read transaction or a pointer into the caller's memory
 * between calls. Cursors and the listings use statements of their own.
 *
 * Writes are UPSERTs keyed on (dest_id, key). The key is bound as INTEGER for
 * integer record keys and as TEXT otherwise, into a column without type affinity,
 * so SQLite keeps the type and ORDER BY key equals key_compare() (schema.c).
 *
 * Durability: WAL with synchronous=NORMAL. A commit survives a crash of joey; a power
 * loss may drop the last commits. Either way the store then says less than Braze has,
 * never more, which the next run repairs by re-sending (docs/internals/state.md).
 *
 * The connection uses SQLite's default VFS, so a test build's fault-injection VFS
 * (faultvfs.c, registered as the default) sees every write.
 */
#ifndef JOEY_STATE_SQLITE_INTERNAL_H
#define JOEY_STATE_SQLITE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "state/backend.h"

/* The fixed statements; their SQL is stmt_sql[] in stmt.c. */
enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_GET,
	S_COUNT,
	S_PUT,
	S_DELETE,
	S_FAIL,
	S_EXISTS,
	S_RUN_START,
	S_RUN_FINISH,
	S_LEDGER_ADD,
	S_LOCK_GET,
	S_LOCK_SET,
	S_LOCK_BEAT,
	S_LOCK_DEL,
	S_CUR_FIRST,
	S_CUR_NEXT,
	S_CUR_FROM,
	S_CUR_LEAN_FIRST,
	S_CUR_LEAN_NEXT,
	S_CUR_LEAN_FROM,
	S_COUNT_RANGE,
	S_MARK_GET,
	S_MARK_SET,
	S_MARK_BASIS_SET,
	S_OUTBOX_PUT,
	S_OUTBOX_NEXT,
	S_OUTBOX_DEL,
	S_OUTBOX_COUNT,
	S_SYNCLOG_SET,
	S_SYNCLOG_GET,
	S_SYNCLOG_UNFINISHED,
	S_RUN_PROGRESS,
	S__COUNT
};

/* Columns of ROW_COLUMNS (stmt.c): what S_GET and the cursor statements return. */
enum { C_KEY, C_PAYLOAD, C_HASH, C_IN_SCOPE, C_PENDING, C_ATTEMPTS, C_LAST_ERROR,
       C_EXISTS, C_CHECKED_AT, C_CONFIRMED_AT, C_UPDATED_AT };
/* Columns of LEAN_COLUMNS (stmt.c): what the S_CUR_LEAN_* statements return (state_cursor_lean). */
enum { CL_KEY, CL_PAYLOAD, CL_HASH, CL_IN_SCOPE, CL_PENDING, CL_ATTEMPTS, CL_EXISTS, CL_CHECKED_AT };
_Static_assert((int)CL_ATTEMPTS == (int)C_ATTEMPTS && (int)CL_KEY == (int)C_KEY, "LEAN_COLUMNS starts as ROW_COLUMNS does");

struct sq_pending_put; /* records.c */

/*
 * ---- compact payloads (names.c) ----
 * The field names of packed payloads a connection knows (their payload_names rows),
 * those to add after the commit that needed them, and the buffer unpacked payloads are
 * in (valid until the next unpack on the connection). Zeroed is empty.
 */
struct sq_names_entry;
struct sq_names {
	struct sq_names_entry **v;
	size_t n, alloc, last; /* last: the entry the last pack or unpack used */
	struct strbuf *pending; /* JSON arrays of names not in payload_names yet */
	size_t n_pending, alloc_pending;
	struct strbuf names, scratch;
};
void sq_names_release(struct sq_names *nm);
/* Append what the records row stores for payload to out: packed, or as it is (escaped if it starts with 0x1e). */
void sq_payload_store(struct sq_names *nm, struct slice payload, struct strbuf *out);
/* Add the names packing needed to payload_names on db (not in a transaction; failures only logged). */
void sq_names_register(struct sq_names *nm, sqlite3 *db);
/* Forget the names to add (a rollback). */
void sq_names_drop_pending(struct sq_names *nm);
/*
 * A payload as read from db's records (path names the store in messages): a packed
 * one is unpacked into nm's buffer and *payload points there; others are left as
 * they are. An error when it cannot be unpacked (its names missing: a damaged store).
 */
enum jerr sq_payload_unpack(struct sq_names *nm, sqlite3 *db, const char *path, struct slice *payload,
			    struct jerror *err) JOEY_WUR;

struct sq_state {
	struct state base; /* first: a struct state * is a struct sq_state * */
	sqlite3 *db;
	sqlite3_stmt *stmt[S__COUNT];
	sqlite3_stmt *load[STATE_MAX_TABLES]; /* state_load_row, per table */
	/* state_put inside a transaction, not written yet (records.c: sq_flush_puts) */
	struct sq_pending_put *pend;
	size_t n_pend, alloc_pend;
	struct strbuf pend_bytes; /* their dest ids, key texts and payloads */
	sqlite3_stmt *put_batch;  /* the INSERT of SQ_PUT_BATCH rows, prepared on first use */
	bool read_held;           /* a read-only connection's cursors' read transaction is open */
	/* a read-only connection on a file: what opens another (lookahead.c) */
	char *reopen;
	int reopen_flags;
	struct sq_names names;  /* compact payloads (names.c) */
	struct sq_ahead *ahead; /* the look-up worker (lookahead.c), NULL until first used */
	bool ahead_off;         /* no worker for this connection */
};

static inline struct sq_state *sq_of(struct state *st)
{
	return (struct sq_state *)st;
}

/*
 * ---- write-behind of state_put (records.c) ----
 * Inside a transaction, puts are kept and written SQ_PUT_BATCH at a time by one
 * multi-row INSERT (a quarter of SQLite's CPU per row, against one statement each),
 * the rest one by one, before any other statement runs on the connection
 * (sq_stmt_get, sq_exec_sql, sq_query_int flush first) and at the commit; a rollback
 * drops them. Nothing is written that a put one at a time would not have written.
 */
#define SQ_PUT_BATCH 256
enum jerr sq_flush_puts(struct sq_state *sq, struct jerror *err) JOEY_WUR;
/* ops->cursors_closed: end the read transaction sq_cursor_fill began (records.c). */
void sq_cursors_closed(struct state *st);
void sq_drop_puts(struct sq_state *sq);

/*
 * ---- look-ups on a worker thread (lookahead.c) ----
 * sq_ahead_lookup: ops->lookup's batch for keys[0 .. n) from the worker's answers (it
 * may hold the rows of the first keys only: the cursor asks again for the rest); false
 * when the worker does not serve this connection or these keys (the caller looks them
 * up itself). sq_ahead_end: the cursors are closed: the worker's read transaction ends.
 * sq_ahead_free: the worker stopped and freed (sq_close).
 */
bool sq_ahead_lookup(struct sq_state *sq, struct state_cursor *cur, const struct rkey *keys, size_t n);
void sq_ahead_end(struct sq_state *sq);
void sq_ahead_free(struct sq_state *sq);

/* ---- errors (stmt.c) ---- */

/* The directory part of path ("." if none) into out (reset first). */
void sq_dir_of(const char *path, struct strbuf *out);
bool sq_is_perm_errno(int e);
/* The hint for a read-only store: make its directory writable, or pass --state. */
void sq_hint_read_only(struct sq_state *sq, struct jerror *err);
/*
 * Fill err from SQLite result rc: the caller's message (which names the file),
 * followed by what went wrong in words the user can act on; SQLite's own message is
 * the detail. Returns the code set (JERR_STATE or JERR_STATE_BUSY).
 */
enum jerr sq_db_error(struct sq_state *sq, int rc, struct jerror *err, const char *fmt, ...)
	JOEY_PRINTF(4, 5);
enum jerr sq_db_verror(struct sq_state *sq, int rc, struct jerror *err, const char *fmt, va_list ap)
	JOEY_PRINTF(4, 0);

/* ---- cached statements (stmt.c) ---- */

/* The cached statement id in *out (prepared on first use); *out NULL on failure. */
enum jerr sq_stmt_get(struct sq_state *sq, enum stmt_id id, sqlite3_stmt **out, struct jerror *err);
/*
 * sq_stmt_get, then dest_id (borrowed until the statement is reset) bound to ?1; also
 * for another text first parameter (a schedule id).
 */
enum jerr sq_stmt_dest(struct sq_state *sq, enum stmt_id id, const char *dest_id, sqlite3_stmt **out,
		       struct jerror *err);
/* sq_stmt_dest, then the record key (borrowed likewise) bound to ?2. */
enum jerr sq_stmt_record(struct sq_state *sq, enum stmt_id id, const char *dest_id, const struct rkey *key,
			 sqlite3_stmt **out, struct jerror *err);
/* The SQL of cached statement id (for a statement prepared on another connection). */
const char *sq_stmt_sql(enum stmt_id id);
/* Make a cached statement ready for its next use: reset, bindings cleared. */
void sq_stmt_done(sqlite3_stmt *s);
/* Bind a record key (borrowed): INTEGER for an integer key, TEXT otherwise. */
void sq_bind_key(sqlite3_stmt *s, int idx, const struct rkey *key);
/* Bind str (borrowed), or NULL when str is NULL. */
void sq_bind_str(sqlite3_stmt *s, int idx, const char *str);
/* Bind the eleven counts of c to idx, idx+1, ... (capped at INT64_MAX). */
void sq_bind_counts(sqlite3_stmt *s, int idx, const struct run_counts *c);
/*
 * Step a write statement to completion and reset it; on failure err says "could not
 * <what> record "<key>" of destination "<dest>" in state store ..." (key given) or
 * "could not <what> in state store ..." (key NULL).
 */
enum jerr sq_step_write(struct sq_state *sq, sqlite3_stmt *s, const char *what, const char *dest_id,
			const struct rkey *key, struct jerror *err);
/* sq_step_write without a key, what formatted from fmt (only when it fails). */
enum jerr sq_step_writef(struct sq_state *sq, sqlite3_stmt *s, struct jerror *err, const char *fmt, ...)
	JOEY_PRINTF(4, 5);
/*
 * Step s once, without resetting it: SQLITE_ROW sets *row (the caller reads it, then
 * sq_stmt_done); SQLITE_DONE clears *row, and is an error only when need_row. On an
 * error err gets the message made from fmt (sq_db_error) and its code is returned.
 */
enum jerr sq_step_row(struct sq_state *sq, sqlite3_stmt *s, bool need_row, bool *row, struct jerror *err,
		      const char *fmt, ...) JOEY_PRINTF(6, 7);

/* ---- reading columns (stmt.c); what they fill borrows s's memory ---- */

/* Column col as a record key; an integer key's text goes into buf (STATE_KEYBUF_SIZE). */
void sq_decode_key(sqlite3_stmt *s, int col, struct rkey *k, char *buf);
/* Column col as epoch ms; 0 for NULL. */
int64_t sq_column_time(sqlite3_stmt *s, int col);
/* Column col as a count; 0 for NULL or negative. */
uint64_t sq_column_count(sqlite3_stmt *s, int col);
/* Fill row from the current result of s (ROW_COLUMNS); row borrows s's memory. */
void sq_decode_row(sqlite3_stmt *s, struct state_row *row, char *keybuf);

/*
 * The columns ROW_COLUMNS and LEAN_COLUMNS both start with (key .. attempts, at the same
 * indexes): into row, borrowing s's memory. Inline: it runs once per state row read.
 */
static inline void sq_decode_head(sqlite3_stmt *s, struct state_row *row, char *keybuf)
{
	const void *hash;
	const char *t;

	sq_decode_key(s, C_KEY, &row->key, keybuf);
	t = (const char *)sqlite3_column_text(s, C_PAYLOAD);
	row->payload = (struct slice){ t ? t : "", (size_t)sqlite3_column_bytes(s, C_PAYLOAD) };
	hash = sqlite3_column_blob(s, C_HASH);
	if (hash && sqlite3_column_bytes(s, C_HASH) == STATE_HASH_LEN)
		memcpy(row->hash, hash, STATE_HASH_LEN);
	else
		memset(row->hash, 0, STATE_HASH_LEN);
	row->in_scope = sqlite3_column_int(s, C_IN_SCOPE) != 0;
	row->pending = sqlite3_column_int(s, C_PENDING) != 0;
	row->attempts = sqlite3_column_int(s, C_ATTEMPTS);
}

/*
 * ---- a cached statement in one call (exec.c) ----
 * Cached statement id with v[0..n) (borrowed; state_val_int, state_val_text) bound to
 * ?1..?n, stepped to completion and reset. *changed (NULL: not wanted) tells whether it
 * changed a row; false on failure, untouched when the statement could not be prepared.
 * On failure err says "could not <what> in state store ..." (what from fmt), as
 * sq_step_writef.
 */
enum jerr sq_write(struct sq_state *sq, enum stmt_id id, const struct state_value *v, size_t n, bool *changed,
		   struct jerror *err, const char *fmt, ...) JOEY_PRINTF(7, 8);
/*
 * Cached statement id (a read of at most one row) with v bound likewise, stepped once:
 * *row is the statement on its row (the caller reads it, then sq_stmt_done(*row)), or
 * NULL when it has none (reset already; an error when need_row) or on failure. On an
 * error err gets the message made from fmt (sq_db_error), as sq_step_row.
 */
enum jerr sq_read_row(struct sq_state *sq, enum stmt_id id, const struct state_value *v, size_t n, bool need_row,
		      sqlite3_stmt **row, struct jerror *err, const char *fmt, ...) JOEY_PRINTF(8, 9);

/* ---- one-off statements (stmt.c) ---- */

/* sqlite3_exec sql; on failure "could not <what> state store ...". */
enum jerr sq_exec_sql(struct sq_state *sq, const char *sql, struct jerror *err, const char *what);
/* A one-integer query; *found false when it returns no row. Returns SQLite's code. */
int sq_query_int(struct sq_state *sq, const char *sql, int64_t *out, bool *found);
/*
 * Step s (taken: finalized here), handing each row to each; shared by the listings.
 * On a step error: "could not list <what> in state store ...".
 */
enum jerr sq_list_rows(struct sq_state *sq, sqlite3_stmt *s, const char *what,
		       enum jerr (*each)(sqlite3_stmt *s, void *arg, struct jerror *err), void *arg,
		       struct jerror *err);

/* ---- the operations of state_sqlite (ops.c), by file ---- */

/* open.c */
enum jerr sq_open(const char *path, enum state_open_mode mode, struct state **out, struct jerror *err);
enum jerr sq_open_empty(const char *name, struct state **out, struct jerror *err);
void sq_close(struct state *st);
void sq_display(const char *path, struct strbuf *out);
enum jerr sq_limit_size(struct state *st, uint64_t max_bytes, struct jerror *err);

/* records.c */
enum jerr sq_cursor_fill(struct state_cursor *cur, bool *end, struct jerror *err);
/* A row of S_CUR_LEAN_* (state_cursor_lean), decoded as sq_decode_row does the rest. */
void sq_decode_lean_row(sqlite3_stmt *s, struct state_row *row, char *keybuf);
/*
 * The row s stands on (lean or full columns) into row, its payload unpacked with nm
 * (db's names; path names the store in messages). row borrows s's memory and nm's
 * buffer until the next unpack.
 */
enum jerr sq_decode_unpacked(struct sq_names *nm, sqlite3 *db, const char *path, sqlite3_stmt *s, bool lean,
			     struct state_row *row, char *keybuf, struct jerror *err) JOEY_WUR;
enum jerr sq_cursor_lookup(struct state_cursor *cur, const struct rkey *keys, size_t n, struct jerror *err);
enum jerr sq_count(struct state *st, const char *dest_id, uint64_t *in_scope, struct jerror *err);
enum jerr sq_count_range(struct state *st, const char *dest_id, const struct rkey *lo, const struct rkey *hi,
			 uint64_t *in_scope, struct jerror *err);
enum jerr sq_get(struct state *st, const char *dest_id, const struct rkey *key, bool *found,
		 struct jerror *err);
bool sq_in_transaction(struct state *st);
enum jerr sq_begin(struct state *st, struct jerror *err);
void sq_rollback(struct state *st);
enum jerr sq_commit(struct state *st, struct jerror *err);
enum jerr sq_put(struct state *st, const char *dest_id, const struct rkey *key, struct slice payload,
		 const unsigned char hash[STATE_HASH_LEN], bool in_scope, int64_t now, struct jerror *err);
enum jerr sq_del(struct state *st, const char *dest_id, const struct rkey *key, struct jerror *err);
enum jerr sq_mark_failed(struct state *st, const char *dest_id, const struct rkey *key, const char *error, struct slice payload,
			 int64_t now, struct jerror *err);
enum jerr sq_set_exists(struct state *st, const char *dest_id, const struct rkey *key, bool exists,
			int64_t checked_at, int64_t now, struct jerror *err);

/* runs.c */
enum jerr sq_run_start(struct state *st, const char *dest_id, const char *kind, int64_t now, int64_t *run_id,
		       struct jerror *err);
enum jerr sq_run_finish(struct state *st, int64_t run_id, enum run_status status, const struct run_counts *c,
			const char *error, int64_t now, bool *found, struct jerror *err);
enum jerr sq_abandon_keys(struct state *st, const char *dest_id, int64_t now, int64_t first_start,
			  const int64_t (*runs)[2], size_t n, bool *narrowed, struct jerror *err);
enum jerr sq_runs_abandon(struct state *st, const char *dest_id, int64_t now, bool all_records, uint64_t *n,
			  struct jerror *err);
enum jerr sq_run_progress(struct state *st, int64_t run_id, const struct run_counts *c, struct jerror *err);
enum jerr sq_runs_running(struct state *st, struct strbuf *ids, size_t *n, struct jerror *err);
enum jerr sq_ledger_add(struct state *st, int64_t run_id, const char *dest_id, const struct rkey *key,
			const char *error, int attempts, int64_t now, struct jerror *err);
enum jerr sq_runs_list(struct state *st, const char *dest_id, size_t limit, state_run_fn fn, void *ctx,
		       struct jerror *err);
enum jerr sq_ledger_list(struct state *st, const char *dest_id, int64_t run_id, const struct rkey *key,
			 size_t limit, state_ledger_fn fn, void *ctx, struct jerror *err);

/* locks.c */
enum jerr sq_lock_get(struct state *st, const char *dest_id, struct state_lock_row *li, struct jerror *err);
enum jerr sq_lock_put(struct state *st, const char *dest_id, const char *holder, int64_t now,
		      const struct state_lock_row *prev, bool *taken, struct jerror *err);
enum jerr sq_lock_beat(struct state *st, const char *dest_id, int64_t now, bool *held, struct jerror *err);
enum jerr sq_lock_del(struct state *st, const char *dest_id, struct jerror *err);

/* marks.c */
enum jerr sq_mark_get(struct state *st, const char *schedule_id, struct strbuf *value, struct strbuf *basis, bool *found,
		      struct jerror *err);
enum jerr sq_mark_set(struct state *st, const char *schedule_id, const char *value, const char *basis, int64_t now,
		      struct jerror *err);

/* synclog.c */
enum jerr sq_outbox_put(struct state *st, const char *dest_id, int64_t run_id, struct slice body, int64_t now,
			int64_t *id, struct jerror *err);
enum jerr sq_outbox_next(struct state *st, const char *dest_id, int64_t after, int64_t *id, int64_t *run_id,
			 struct strbuf *body, bool *found, struct jerror *err);
enum jerr sq_outbox_delete(struct state *st, const char *dest_id, int64_t id, bool *deleted,
			   struct jerror *err);
enum jerr sq_outbox_count(struct state *st, const char *dest_id, uint64_t *rows, uint64_t *bytes,
			  struct jerror *err);
enum jerr sq_synclog_set(struct state *st, const struct state_synclog_info *info, int64_t now,
			 struct jerror *err);
enum jerr sq_synclog_get(struct state *st, int64_t run_id, struct state_synclog_info *info,
			 struct strbuf *status, struct strbuf *error, bool *found, struct jerror *err);
enum jerr sq_synclog_unfinished(struct state *st, const char *dest_id, int64_t *ids, size_t max, size_t *n,
				struct jerror *err);

/* export.c */
enum jerr sq_dump(struct state *st, state_dump_fn fn, void *ctx, struct jerror *err);
enum jerr sq_is_empty(struct state *st, bool *empty, struct jerror *err);
enum jerr sq_clear(struct state *st, struct jerror *err);
enum jerr sq_load_row(struct state *st, const struct state_table *t, const struct state_value *row,
		      struct jerror *err);
enum jerr sq_load_finish(struct state *st, struct jerror *err);

/* exec.c */
enum jerr sq_exec(struct state *st, const char *what, const char *sql, const struct state_value *params,
		  size_t n,
		  enum jerr (*fn)(void *ctx, const struct state_value *row, size_t n_cols, struct jerror *err),
		  void *ctx, uint64_t *changed, struct jerror *err);

#endif
