/*
 * backend.h: the state store's back ends behind one ops table (internal to src/state).
 *
 * state.c implements state.h once. It picks the back end in state_open (a path that
 * starts with postgres:// or postgresql:// is PostgreSQL, state_pg in pg/ (ops.c); anything
 * else is an SQLite file, state_sqlite in sqlite/ (ops.c)), refuses writes to a read-only
 * store, and keeps what does not depend on the database: cursor batches, the borrowed
 * row of state_get, the lock protocol (read the row, decide, write it), run status
 * names and the hash. Everything that touches the database goes through st->ops.
 *
 * A back end allocates its own struct with struct state as its first member, fills it
 * with state_base_init and frees it in close. Functions here return what state.h
 * says the public function returns; on failure err names the store (st->path) and
 * carries the database's message as detail.
 */
#ifndef JOEY_STATE_BACKEND_H
#define JOEY_STATE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "state/state.h"

/* A cursor batch holds at most this many rows, or about this much text. */
#define STATE_BATCH_ROWS 256
#define STATE_BATCH_BYTES (1024 * 1024)

/* Bounds of state_tables (schema.c checks them). */
#define STATE_MAX_TABLES 8
#define STATE_MAX_COLUMNS 24

/* runs.error of a run whose process ended without finishing it (state_runs_abandon). */
#define STATE_ABANDONED_ERROR "the process running it ended without finishing (killed or crashed)"
/*
 * records.last_error of the confirmed rows state_runs_abandon makes pending: the run
 * may have sent them, and Braze may have applied what it sent.
 */
#define STATE_ABANDONED_SEND_ERROR "a run that ended without finishing may have sent it (killed or crashed)"

/*
 * The columns of runs that runs_list reads, in the order both back ends decode them
 * (pg/runs.c runs_row, sqlite/runs.c each_run).
 */
#define STATE_RUN_COLUMNS                                                                    \
	"id, dest_id, kind, status, started_at, finished_at, created, updated, deleted,"       \
	" unsubscribed, unchanged, failed, skipped, requests, retries, throttled, data_points," \
	" error"

/* Longest decimal int64 ("-9223372036854775808") and its NUL. */
#define STATE_KEYBUF_SIZE 24

/*
 * A parameter of exec (and of the SQLite back end's sq_write): an integer, or s
 * (borrowed) as text, NULL as SQL NULL.
 */
static inline struct state_value state_val_int(int64_t i)
{
	return (struct state_value){ .kind = STATE_VAL_INT, .i = i };
}

static inline struct state_value state_val_text(const char *s)
{
	if (!s)
		return (struct state_value){ .kind = STATE_VAL_NULL };
	return (struct state_value){ .kind = STATE_VAL_TEXT, .s = { s, strlen(s) } };
}

struct state_ops;

/* What every back end's struct starts with. */
struct state {
	const struct state_ops *ops;
	char *path;     /* for messages: the file, or the URL without its password (owned) */
	char *location; /* the path or URL given to state_open, password included (owned;
			 * set by state_open, NULL for a store made otherwise) */
	int version;    /* schema version of the open store */
	bool readonly;  /* opened READONLY*: every write is refused */
	int64_t token;  /* identifies this struct state's locks */
	char host[256];
	int n_cursors;  /* open cursors (they hold no database resources; for debugging) */
	/* state_begin's time, which the record writes of its transaction carry (0: none open) */
	int64_t tx_now;
	/* state_get's row and the memory it borrows (state_keep_row) */
	struct state_row get_row;
	struct strbuf get_payload, get_error, get_key;
};

struct state_cursor_text {
	size_t key, payload, last_error; /* offsets into the batch buffer */
};

/*
 * A cursor reads its destination in batches (keyset pagination: key after the last
 * key read, in key order, bounded). Each batch is read whole and copied into the cursor
 * (state_cursor_push), so a cursor holds no statement and no transaction between calls.
 */
struct state_cursor {
	struct state *st;
	char *dest_id;
	bool exhausted;       /* the last batch was the end */
	bool lean;            /* state_cursor_lean: the diff's columns only */
	size_t n, pos;        /* rows in the batch, next row to return */
	struct state_row rows[STATE_BATCH_ROWS];
	struct state_cursor_text text[STATE_BATCH_ROWS];
	struct strbuf buf;    /* key texts, payloads and errors of the batch */
	bool have_last;       /* last: the last key read, the lower bound of the next batch */
	struct rkey last;     /* last.text points into last_text */
	struct strbuf last_text;
	/* a key range (state_cursor_open_range): the first batch starts at from (inclusive,
	 * the back end's job); rows at or after to are dropped here (cursor.c) */
	bool has_from, has_to;
	struct rkey from, to; /* text in from_text, to_text */
	struct strbuf from_text, to_text;
	/*
	 * Seeking (state_cursor_seek): the next batch starts at seek (inclusive) instead
	 * of after last. want is how many rows the next batch asks for (1 ..
	 * STATE_BATCH_ROWS): a walk reads whole batches, a seek past a batch whose rows
	 * were mostly skipped asks for fewer (down to the back end's seek_rows), one whose
	 * rows were mostly returned for more. used counts the rows of the batch returned.
	 */
	bool has_seek;
	struct rkey seek; /* text in seek_text */
	struct strbuf seek_text;
	size_t want, used;
	/*
	 * Look-ups (state_cursor_expect, ops->lookup). expect[next_expect .. n_expect) are
	 * the keys the caller said it will seek (texts at expect_at in expect_text). A
	 * lookup batch (sparse) holds, for some of them, the first row at or after each:
	 * only a seek to one of those keys (served) may be answered from it, and last is
	 * the last row returned, not the batch's last.
	 */
	struct rkey expect[STATE_BATCH_ROWS];
	size_t expect_at[STATE_BATCH_ROWS];
	struct strbuf expect_text;
	size_t n_expect, next_expect;
	bool has_lookup; /* the next batch looks up expect[next_expect ..] */
	bool sparse, served;
};

/* A destination lock as stored (locks table). */
struct state_lock_row {
	bool found;
	struct strbuf holder, host;
	int64_t pid, token, acquired_at, heartbeat_at;
};

struct state_ops {
	const char *name; /* "SQLite", "PostgreSQL" */
	/*
	 * What one more query costs, in rows read: a seek never asks for fewer rows than
	 * this (SQLite: a B-tree descent in the same process; PostgreSQL: a round trip).
	 */
	size_t seek_rows;

	/*
	 * Open path (borrowed) in mode, as state_open. READONLY_OR_EMPTY on a missing or
	 * empty store gives state_sqlite.open_empty's store.
	 */
	enum jerr (*open)(const char *path, enum state_open_mode mode, struct state **out,
			  struct jerror *err);
	/* An empty read-only store in memory, named name for messages (SQLite only). */
	enum jerr (*open_empty)(const char *name, struct state **out, struct jerror *err);
	/* Roll back an open transaction, disconnect, free st (cursors are closed). */
	void (*close)(struct state *st);
	/* Append path as it may be shown (no password). */
	void (*display)(const char *path, struct strbuf *out);
	enum jerr (*limit_size)(struct state *st, uint64_t max_bytes, struct jerror *err);

	/* ---- reading ---- */
	enum jerr (*count)(struct state *st, const char *dest_id, uint64_t *in_scope,
			   struct jerror *err);
	/* *found; a found row is handed to state_keep_row before returning. */
	enum jerr (*get)(struct state *st, const char *dest_id, const struct rkey *key,
			 bool *found, struct jerror *err);
	/* count with key >= lo and < hi (either NULL: open) */
	enum jerr (*count_range)(struct state *st, const char *dest_id, const struct rkey *lo,
				 const struct rkey *hi, uint64_t *in_scope, struct jerror *err);
	/*
	 * The next batch of cur's destination: from cur->seek inclusive when
	 * cur->has_seek, else after cur->last, else (!cur->have_last) from cur->from
	 * inclusive when cur->has_from, else from the start; in key order:
	 * state_cursor_push each row until cur->want rows or state_cursor_full.
	 * *end: no row follows the batch (false is always safe: the next call then finds
	 * no row).
	 */
	enum jerr (*cursor_fill)(struct state_cursor *cur, bool *end, struct jerror *err);
	/*
	 * The connection's last open cursor was closed (state_cursor_close); may be NULL.
	 * SQLite ends the read transaction a read-only connection's cursors read in.
	 */
	void (*cursors_closed)(struct state *st);
	/*
	 * Optional (NULL: seeks query one key at a time). The batch for keys[0 .. n)
	 * (ascending, n <= STATE_BATCH_ROWS): for each key the first row of cur's
	 * destination at or after it, each row once, in key order; state_cursor_push each
	 * until state_cursor_full. One query for them all.
	 */
	enum jerr (*lookup)(struct state_cursor *cur, const struct rkey *keys, size_t n, struct jerror *err);

	/* ---- transactions ---- */
	bool (*in_transaction)(struct state *st);
	enum jerr (*begin)(struct state *st, struct jerror *err);
	/* Commit; on failure roll back, so no transaction stays open. */
	enum jerr (*commit)(struct state *st, struct jerror *err);
	/* Roll back if a transaction is open (a failure is logged). */
	void (*rollback)(struct state *st);

	/* ---- writes (st is writable; now is the wall clock in epoch ms) ---- */
	enum jerr (*put)(struct state *st, const char *dest_id, const struct rkey *key,
			 struct slice payload, const unsigned char hash[STATE_HASH_LEN],
			 bool in_scope, int64_t now, struct jerror *err);
	enum jerr (*del)(struct state *st, const char *dest_id, const struct rkey *key,
			 struct jerror *err);
	/* payload: empty keeps the stored one (state_mark_failed) */
	enum jerr (*mark_failed)(struct state *st, const char *dest_id, const struct rkey *key,
				 const char *error, struct slice payload, int64_t now, struct jerror *err);
	enum jerr (*set_exists)(struct state *st, const char *dest_id, const struct rkey *key,
				bool exists, int64_t checked_at, int64_t now, struct jerror *err);

	/* ---- run history and ledger ---- */
	enum jerr (*run_start)(struct state *st, const char *dest_id, const char *kind,
			       int64_t now, int64_t *run_id, struct jerror *err);
	/* *found false: no run run_id (nothing changed). */
	enum jerr (*run_finish)(struct state *st, int64_t run_id, enum run_status status,
				const struct run_counts *counts, const char *error, int64_t now,
				bool *found, struct jerror *err);
	/*
	 * state_runs_abandon's two writes (state.c decides between them): abandon_keys makes
	 * pending the records of dest_id confirmed before first_start whose keys the sent-keys
	 * journals of runs[0..n) ({id, started_at}) hold, reading them with
	 * state_journal_read, in one transaction (or the caller's); *narrowed false when one
	 * is missing, untrusted or too long (what was marked stays: a subset). runs_abandon
	 * marks the runs interrupted, after making pending, when all_records, every record
	 * confirmed before the first of them started.
	 */
	enum jerr (*abandon_keys)(struct state *st, const char *dest_id, int64_t now, int64_t first_start,
				  const int64_t (*runs)[2], size_t n, bool *narrowed, struct jerror *err);
	enum jerr (*runs_abandon)(struct state *st, const char *dest_id, int64_t now, bool all_records,
				  uint64_t *n, struct jerror *err);
	/* The counts of run run_id while it is still running (nothing if it is not). */
	enum jerr (*run_progress)(struct state *st, int64_t run_id, const struct run_counts *counts,
				  struct jerror *err);
	/* The destinations with a run marked running: *n ids, each NUL-terminated, in ids. */
	enum jerr (*runs_running)(struct state *st, struct strbuf *ids, size_t *n, struct jerror *err);
	enum jerr (*ledger_add)(struct state *st, int64_t run_id, const char *dest_id,
				const struct rkey *key, const char *error, int attempts, int64_t now,
				struct jerror *err);
	enum jerr (*runs_list)(struct state *st, const char *dest_id, size_t limit,
			       state_run_fn fn, void *ctx, struct jerror *err);
	enum jerr (*ledger_list)(struct state *st, const char *dest_id, int64_t run_id,
				 const struct rkey *key, size_t limit, state_ledger_fn fn,
				 void *ctx, struct jerror *err);

	/* ---- locks (called inside a transaction) ---- */
	/* Read the lock of dest_id into row (its strbufs initialised by the caller). */
	enum jerr (*lock_get)(struct state *st, const char *dest_id, struct state_lock_row *row,
			      struct jerror *err);
	/*
	 * Store this struct state's lock of dest_id, but only if the row is still as
	 * lock_get read it: absent (!prev->found) or with prev->token. *taken false when
	 * another process changed it first (nothing written).
	 */
	enum jerr (*lock_put)(struct state *st, const char *dest_id, const char *holder,
			      int64_t now, const struct state_lock_row *prev, bool *taken,
			      struct jerror *err);
	/* Refresh our heartbeat; *held false when the row is not ours any more. */
	enum jerr (*lock_beat)(struct state *st, const char *dest_id, int64_t now, bool *held,
			       struct jerror *err);
	enum jerr (*lock_del)(struct state *st, const char *dest_id, struct jerror *err);

	/* ---- marks ---- */
	/* basis: the mark's basis (state_mark_get/set); NULL: not wanted / not stored */
	enum jerr (*mark_get)(struct state *st, const char *schedule_id, struct strbuf *value,
			      struct strbuf *basis, bool *found, struct jerror *err);
	enum jerr (*mark_set)(struct state *st, const char *schedule_id, const char *value,
			      const char *basis, int64_t now, struct jerror *err);

	/* ---- export and import (see state_dump, state_load_row) ---- */
	enum jerr (*dump)(struct state *st, state_dump_fn fn, void *ctx, struct jerror *err);
	enum jerr (*is_empty)(struct state *st, bool *empty, struct jerror *err);
	enum jerr (*clear)(struct state *st, struct jerror *err);
	enum jerr (*load_row)(struct state *st, const struct state_table *t,
			      const struct state_value *row, struct jerror *err);
	enum jerr (*load_finish)(struct state *st, struct jerror *err);

	/*
	 * ---- workers (state.h "the work queue"); NULL on a back end without them,
	 * which state.c reports as "workers need a PostgreSQL state store" ----
	 */
	enum jerr (*work_enqueue)(struct state *st, const struct state_work_spec *spec,
				  const struct state_work_part *parts, size_t n, int64_t now,
				  int64_t *job_id, bool *duplicate, struct jerror *err);
	enum jerr (*work_claim)(struct state *st, const char *worker, int64_t lease_ms,
				int64_t only_job, struct state_work_item *it, bool *found,
				struct jerror *err);
	enum jerr (*work_heartbeat)(struct state *st, const char *worker, int64_t lease_ms, int64_t now,
				    void (*held)(void *ctx, int64_t item_id), void *ctx,
				    struct jerror *err);
	enum jerr (*work_finish)(struct state *st, int64_t item_id, const char *worker,
				 const struct state_work_result *res, bool *held, bool *job_done,
				 struct jerror *err);
	enum jerr (*work_requeue)(struct state *st, int64_t item_id, const char *worker,
				  struct jerror *err);
	enum jerr (*work_progress)(struct state *st, int64_t item_id, const char *worker,
				   const struct run_counts *counts, struct jerror *err);
	enum jerr (*work_items)(struct state *st, int64_t job_id, state_work_item_fn fn, void *ctx,
				struct jerror *err);
	enum jerr (*work_job_status)(struct state *st, int64_t job_id, enum run_status *status,
				     struct strbuf *model_id, bool *found, struct jerror *err);
	enum jerr (*work_close)(struct state *st, int64_t job_id, enum run_status status,
				const char *mark, struct jerror *err);
	enum jerr (*work_sweep)(struct state *st, int64_t keep_ms, int64_t now, uint64_t *closed,
				struct jerror *err);
	enum jerr (*leader_try)(struct state *st, const char *name, bool *leader, struct jerror *err);
	enum jerr (*rate_take)(struct state *st, const char *key, double capacity, double rate_per_ms,
			       int want, int *got, int64_t *wait_ms, struct jerror *err);

	/*
	 * ---- one statement of a module's own tables (state/alerts.c) ----
	 * sql uses PostgreSQL's $1..$n placeholders (the SQLite back end binds "$N" by
	 * name, so a parameter may appear more than once) and SQL both databases accept.
	 * params (borrowed): n values, STATE_VAL_NULL, _INT or _TEXT. fn (NULL: none) gets
	 * each result row (values borrowed for the call: integer and boolean columns as
	 * STATE_VAL_INT, NULL as STATE_VAL_NULL, anything else as STATE_VAL_TEXT);
	 * anything but JERR_OK from it stops and is returned. *changed (may be NULL): the
	 * rows an INSERT, UPDATE or DELETE wrote. On failure err names the store and what.
	 */
	enum jerr (*exec)(struct state *st, const char *what, const char *sql, const struct state_value *params,
			  size_t n, enum jerr (*fn)(void *ctx, const struct state_value *row, size_t n_cols,
						    struct jerror *err),
			  void *ctx, uint64_t *changed, struct jerror *err);
	/* ---- the sync log's outbox and per-run status (schema version 6; state.h) ---- */
	enum jerr (*outbox_put)(struct state *st, const char *dest_id, int64_t run_id, struct slice body,
				int64_t now, int64_t *id, struct jerror *err);
	enum jerr (*outbox_next)(struct state *st, const char *dest_id, int64_t after, int64_t *id,
				 int64_t *run_id, struct strbuf *body, bool *found, struct jerror *err);
	enum jerr (*outbox_delete)(struct state *st, const char *dest_id, int64_t id, bool *deleted,
				   struct jerror *err);
	enum jerr (*outbox_count)(struct state *st, const char *dest_id, uint64_t *rows, uint64_t *bytes,
				  struct jerror *err);
	enum jerr (*synclog_set)(struct state *st, const struct state_synclog_info *info, int64_t now,
				 struct jerror *err);
	enum jerr (*synclog_get)(struct state *st, int64_t run_id, struct state_synclog_info *info,
				 struct strbuf *status, struct strbuf *error, bool *found, struct jerror *err);
	enum jerr (*synclog_unfinished)(struct state *st, const char *dest_id, int64_t *ids, size_t max,
					size_t *n, struct jerror *err);
};

extern const struct state_ops state_sqlite;
extern const struct state_ops state_pg;

/* ---- shared by the back ends (state.c) ---- */

/* Fill the common part: ops, a copy of display (the name for messages), token, host. */
void state_base_init(struct state *st, const struct state_ops *ops, const char *display);
/* Free what state_base_init allocated (not st itself). */
void state_base_release(struct state *st);
/* Copy row (whose memory the back end is about to reuse) into st->get_row. */
void state_keep_row(struct state *st, const struct state_row *row);
/* Append row to the cursor's batch (copying its text). */
void state_cursor_push(struct state_cursor *cur, const struct state_row *row);
/* The batch holds STATE_BATCH_ROWS rows or STATE_BATCH_BYTES of text. */
bool state_cursor_full(const struct state_cursor *cur);
/* The wall clock in epoch milliseconds. */
int64_t state_now_ms(void);
/* ---- the sent-keys journal's reading side (journal.c, for ops->abandon_keys) ---- */
/* Its file name for run_id into out; false: the store keeps no journals (PostgreSQL). */
bool state_journal_path(const struct state *st, int64_t run_id, struct strbuf *out);
enum journal_read {
	JOURNAL_OK,        /* every key it holds was given to fn */
	JOURNAL_MISSING,   /* no file: the run kept none, or it could not be written */
	JOURNAL_UNTRUSTED, /* another boot's, another run's, unreadable, or fn said stop */
};
/* Called per key (borrowed for the call); non-zero stops the reading (JOURNAL_UNTRUSTED). */
typedef int (*state_journal_key_fn)(void *ctx, const struct rkey *key);
/*
 * The keys in run_id's journal (duplicates included), if it can be trusted: written on
 * this boot (a page cache a crash emptied is not), for run_id started at started_at
 * (runs.started_at exactly: a journal that names another start is another store's
 * run of that id, e.g. of a store made again or replaced by an import). A cut last
 * entry was being written when the process died (not sent) and is skipped. The file is
 * removed before it is read, so a run that wrote it and still lives sends nothing more
 * (state_journal_add).
 */
enum journal_read state_journal_read(const struct state *st, int64_t run_id, int64_t started_at,
				     state_journal_key_fn fn, void *ctx);
/* Remove run_id's journal if there is one (a failure is logged). */
void state_journal_remove(const struct state *st, int64_t run_id);
/* The decimal digits of i in buf (STATE_KEYBUF_SIZE, NUL-terminated); returns their length. */
size_t state_key_digits(int64_t i, char *buf);
/* A record key for messages: its text, or the number (sb is reset). */
const char *state_key_str(const struct rkey *key, struct strbuf *sb);
/* "running" etc. back to the enum (unknown: RUN_FAILED). */
enum run_status state_run_status_parse(const char *name);
/*
 * The schema version read from the store at path (borrowed): JERR_OK when this joey
 * knows it, else JERR_STATE_VERSION, err naming both versions and hinting at another
 * `other` ("schema", "file") for --state.
 */
enum jerr state_check_newer(const char *path, int64_t version, const char *other, struct jerror *err) JOEY_WUR;
/*
 * The rows of every table of state_tables that st's schema version has, deleted the last
 * table first (the ledger before the runs it refers to): del runs "DELETE FROM <table>"
 * (borrowed for the call) on st; the first failure ends it. For the back ends' clear.
 */
enum jerr state_delete_tables(struct state *st,
			      enum jerr (*del)(struct state *st, const char *sql, struct jerror *err),
			      struct jerror *err) JOEY_WUR;

#endif
