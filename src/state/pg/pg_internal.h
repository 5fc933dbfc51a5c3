/*
 * pg_internal.h: what the pieces of the PostgreSQL state store (the .c files of
 * src/state/pg/) share: the connection struct, the fixed statements, statement parameters and the
 * helpers that run a statement and turn a failure into a message. Not an interface:
 * the rest of joey reaches this back end only through state_pg (backend.h), whose one
 * const ops table is in pg/ops.c.
 *
 * Order of calls: pg_open (conn.c) connects, configures the session and identifies or
 * migrates the schema (migrate.c); every op then binds its parameters with p_*() and
 * runs a fixed statement through pg_run (reads rows back) or pg_run_write (reads
 * only the affected rows), or a statement built at run time through pg_sql_run;
 * pg_close rolls back what is open and frees the struct.
 *
 * Design notes.
 *
 * The store is one schema ("joey", or ?schema=NAME in the URL, which is taken out
 * before the URL goes to libpq) in any database the user may create a schema in.
 * search_path is set to it, so every statement names its tables unqualified, and
 * meta, records, runs, ledger, locks and marks are the same tables as on SQLite
 * (schema.c says how the columns differ, and why).
 *
 * One connection per struct state, in autocommit unless a transaction is open. Fixed
 * statements are prepared once per connection, on first use. Every statement is run
 * to completion before the call returns (PQexecPrepared/PQexecParams: the whole
 * result, which is bounded), so no statement stays open between calls: cursors and
 * listings read in bounded batches with keyset pagination, the export through a
 * server-side cursor inside its own read-only snapshot.
 *
 * Concurrency. Writers do not exclude each other as SQLite's BEGIN IMMEDIATE does:
 * rows are locked as they are written, and lock_timeout (STATE_BUSY_TIMEOUT_MS)
 * turns a long wait into JERR_STATE_BUSY. Runs of different destinations therefore
 * write at once. A destination lock is taken by reading its row FOR UPDATE and then
 * writing it only if it is still as read (INSERT ... ON CONFLICT DO NOTHING for an
 * absent row, UPDATE ... WHERE token = the old token for a stale one), so two
 * processes never both believe they hold it. Migrations take a transaction-level
 * advisory lock on the schema's name, so two processes creating a fresh store at
 * once apply each step once.
 *
 * Errors name the store as postgresql://user@host:port/database (never the
 * password), and carry the server's message and SQLSTATE as detail. After any failed
 * statement inside a transaction PostgreSQL refuses the rest of it; the caller rolls
 * back, as state.h asks for every back end.
 *
 * Text: the database must use UTF8 (or SQL_ASCII): payloads are UTF-8 JSON. Error
 * messages (which may quote a server's response) are cleaned of invalid UTF-8 and
 * NUL before they are stored; record keys are stored as bytes (BYTEA), unchanged.
 */
#ifndef JOEY_STATE_PG_INTERNAL_H
#define JOEY_STATE_PG_INTERNAL_H

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/compat.h"
#include "source/pgmsg.h"
#include "state/backend.h"

#define PG_DEFAULT_SCHEMA "joey"
/* Rows per round trip of the listings and the export. */
#define PG_LIST_BATCH 500
/* Migrations take the advisory lock (PG_LOCK_KEY, hashtext(schema)): joey's, per schema. */
#define PG_LOCK_KEY "1246709081"
_Static_assert(STATE_APPLICATION_ID == 1246709081, "PG_LOCK_KEY is STATE_APPLICATION_ID");

/* The fixed statements (pg_stmts in statements.c), prepared once per connection. */
enum stmt_id {
	S_GET,
	S_COUNT,
	S_PUT,
	S_DELETE,
	S_FAIL,
	S_EXISTS,
	S_RUN_START,
	S_RUN_FINISH,
	S_RUNS_ABANDON,
	S_RECORDS_ABANDON,
	S_RUN_PROGRESS,
	S_RUNS_RUNNING,
	S_RECORD_ABANDON_KEY,
	S_LEDGER_ADD,
	S_LOCK_GET,
	S_LOCK_INSERT,
	S_LOCK_TAKE,
	S_LOCK_BEAT,
	S_LOCK_DEL,
	S_CUR_FIRST,
	S_CUR_NEXT,
	S_MARK_GET,
	S_MARK_SET,
	S_MARK_BASIS_SET,
	S_CUR_FROM,
	S_COUNT_RANGE,
	S_WORK_JOB_INSERT,
	S_WORK_JOB_TOKEN,
	S_WORK_ADOPT,
	S_WORK_ITEM_INSERT,
	S_WORK_CLAIM,
	S_WORK_BEAT,
	S_WORK_BEAT_LOCKS,
	S_WORK_JOB_LOCK,
	S_WORK_FINISH,
	S_WORK_OPEN,
	S_WORK_REQUEUE,
	S_WORK_PROGRESS,
	S_WORK_ITEMS,
	S_WORK_JOB_STATUS,
	S_WORK_CLOSE,
	S_WORK_UNLOCK,
	S_WORK_SWEEP,
	S_WORK_PRUNE,
	S_LEADER_TRY,
	S_PING,
	S_RATE_TAKE,
	S_OUTBOX_PUT,
	S_OUTBOX_NEXT,
	S_OUTBOX_DEL,
	S_OUTBOX_COUNT,
	S_SYNCLOG_SET,
	S_SYNCLOG_GET,
	S_SYNCLOG_UNFINISHED,
	S_CUR_LOOKUP,
	S__COUNT
};

struct pg_stmt {
	const char *sql;
	int n_params;
};
extern const struct pg_stmt pg_stmts[S__COUNT];

/* A record row as the statements that read records select it (pg_decode_row reads it). */
#define ROW_COLUMNS                                                                        \
	"key_kind, key_int, key_text, payload, hash, in_scope, pending, attempts, last_error," \
	" braze_exists, checked_at, confirmed_at, updated_at"
/* Columns of ROW_COLUMNS. */
enum { C_KIND, C_INT, C_TEXT, C_PAYLOAD, C_HASH, C_IN_SCOPE, C_PENDING, C_ATTEMPTS,
       C_LAST_ERROR, C_EXISTS, C_CHECKED_AT, C_CONFIRMED_AT, C_UPDATED_AT };

struct pending_put; /* tx.c */
#define PG_PEND_SLOTS 8192 /* a power of two, over twice tx.c's PUT_BATCH_MAX */
/* The all-zero hash of a placeholder (state_row_placeholder), as an SQL expression. */
#define PG_ZERO_HASH "decode(repeat('00', 16), 'hex')"
#define PG_PUT_COLUMNS 8   /* the array parameters of tx.c's joey_put_rows */

struct pg_state {
	struct state base; /* first: a struct state * is a struct pg_state * */
	PGconn *pg;
	char *schema;
	char *host, *port, *database; /* for messages */
	bool prepared[S__COUNT];
	bool load_prepared[STATE_MAX_TABLES];
	bool leader; /* holds the leader's advisory lock (state_leader_try) */
	/* state_put inside a transaction, not sent yet (pg_flush_puts) */
	struct pending_put *pend;
	size_t n_pend, alloc_pend;
	/* their columns, each a binary array parameter of joey_put_rows being built */
	struct strbuf put_col[PG_PUT_COLUMNS];
	bool put_rows_prepared; /* joey_put_rows is prepared on this connection */
	bool puts_lost;         /* a flush failed inside the open transaction: no commit */
	uint16_t pend_slot[PG_PEND_SLOTS]; /* the pending puts by key hash: index + 1, 0 empty */
	struct strbuf tmp; /* decoded bytes of the row being read */
};

static inline struct pg_state *ps_of(struct state *st)
{
	return (struct pg_state *)st;
}

/* ---- parameters: text, or binary for bytes that need not end in NUL ---- */

#define MAX_PARAMS 20

/* A statement's parameters; each borrows what it is given until the statement has run. */
struct params {
	int n;
	const char *v[MAX_PARAMS];
	int len[MAX_PARAMS];
	int fmt[MAX_PARAMS];
	char num[MAX_PARAMS][STATE_KEYBUF_SIZE];
};

static inline void p_text(struct params *p, const char *s) /* NULL: SQL NULL */
{
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static inline void p_int(struct params *p, int64_t i)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%" PRId64, i);
	p_text(p, p->num[p->n]);
}

static inline void p_bool(struct params *p, bool b)
{
	p_text(p, b ? "t" : "f");
}

/* Bytes as they are: binary format (BYTEA, or TEXT whose binary form is its bytes). */
static inline void p_bytes(struct params *p, const void *b, size_t n)
{
	p->v[p->n] = b ? b : "";
	p->len[p->n] = (int)n;
	p->fmt[p->n] = 1;
	p->n++;
}

/* A record key: key_kind, key_int, key_text. */
static inline void p_key(struct params *p, const struct rkey *k)
{
	p_int(p, k->is_int ? 0 : 1);
	p_int(p, k->is_int ? k->i : 0);
	if (k->is_int)
		p_bytes(p, "", 0);
	else
		p_bytes(p, k->text.ptr, k->text.len);
}

/* A bound of a key range: key_kind, key_int, key_text, or three NULLs when open. */
static inline void p_bound(struct params *p, const struct rkey *k)
{
	if (k) {
		p_key(p, k);
		return;
	}
	p_text(p, NULL);
	p_text(p, NULL);
	p_text(p, NULL);
}

/* ---- reading results ---- */

/* Whether res is the success it should be; res may be NULL. */
static inline bool res_ok(const PGresult *res)
{
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* A result's affected rows (UPDATE/DELETE/INSERT). */
static inline uint64_t changes(PGresult *res)
{
	const char *n = PQcmdTuples(res);
	return n && *n ? strtoull(n, NULL, 10) : 0;
}

static inline int64_t get_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static inline bool get_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

static inline int hex_val(int c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* BYTEA in hex output ("\x0a1b...") appended to out as bytes. */
static inline void get_bytes(const PGresult *res, int row, int col, struct strbuf *out)
{
	const char *v = PQgetvalue(res, row, col);
	size_t n = (size_t)PQgetlength(res, row, col);
	if (n >= 2 && v[0] == '\\' && v[1] == 'x') {
		for (size_t i = 2; i + 1 < n; i += 2)
			strbuf_addch(out, (char)(hex_val(v[i]) * 16 + hex_val(v[i + 1])));
	}
}

/* ---- query.c: running statements, messages ---- */

/* The server's (or libpq's) message on one line: pgmsg_add (source/pgmsg.h). */
/*
 * Fill err for a failed statement (res may be NULL: no result at all): the caller's
 * message (naming the store), turned into words the user can act on; the server's
 * message and SQLSTATE are the detail. Returns JERR_STATE or JERR_STATE_BUSY.
 */
enum jerr pg_error(struct pg_state *ps, const PGresult *res, struct jerror *err,
		   const char *fmt, ...) JOEY_PRINTF(4, 5);
/* Copy s into out (reset first), replacing NUL and invalid UTF-8 by '?'; returns out->buf. */
const char *pg_clean_text(const char *s, struct strbuf *out);
/*
 * Send the puts kept back (tx.c), then run fixed statement id with p (borrowed); on
 * success *res holds the result (the caller PQclears it). On failure *res is NULL and
 * err says what (fmt, naming the store, is the start of the message).
 */
enum jerr pg_run(struct pg_state *ps, enum stmt_id id, const struct params *p, PGresult **res,
		 struct jerror *err, const char *fmt, ...) JOEY_PRINTF(6, 7) JOEY_WUR;
/*
 * pg_run for a statement whose rows are not read: on success *changed (NULL: not
 * wanted) gets its affected rows; the result is cleared either way. On failure
 * *changed is left as it was.
 */
enum jerr pg_run_write(struct pg_state *ps, enum stmt_id id, const struct params *p,
		       uint64_t *changed, struct jerror *err, const char *fmt, ...)
	JOEY_PRINTF(6, 7) JOEY_WUR;
/*
 * pg_run_write for a statement that names one row by its key: on success *changed tells
 * whether it changed that row; on failure *changed is left as it was.
 */
enum jerr pg_run_changed(struct pg_state *ps, enum stmt_id id, const struct params *p, bool *changed,
			 struct jerror *err, const char *fmt, ...) JOEY_PRINTF(6, 7) JOEY_WUR;
/*
 * pg_run for a statement that reads one number: *v is the first column of its one
 * row, 0 when it returns no row or a NULL; the result is cleared. On failure *v is
 * left as it was.
 */
enum jerr pg_run_int(struct pg_state *ps, enum stmt_id id, const struct params *p, int64_t *v,
		     struct jerror *err, const char *fmt, ...) JOEY_PRINTF(6, 7) JOEY_WUR;
/*
 * pg_run for a statement that reads at most one row: on success *row holds the result
 * when it has that row (the caller PQclears it), NULL when it has none (the result
 * cleared). On failure *row is NULL and err says what (fmt).
 */
enum jerr pg_run_row(struct pg_state *ps, enum stmt_id id, const struct params *p, PGresult **row,
		     struct jerror *err, const char *fmt, ...) JOEY_PRINTF(6, 7) JOEY_WUR;
/* pg_run_row for a statement whose one parameter is key (text, borrowed; NULL: SQL NULL). */
enum jerr pg_run_key(struct pg_state *ps, enum stmt_id id, const char *key, PGresult **row,
		     struct jerror *err, const char *fmt, ...) JOEY_PRINTF(6, 7) JOEY_WUR;
/*
 * Run sql (borrowed) as it is, without sending the kept puts first: with p NULL
 * through PQexec (no parameters, maybe several statements), else with p's
 * parameters. On success *res holds the result for the caller to PQclear, or it is
 * cleared when res is NULL; on failure err says what (fmt) and *res is NULL.
 */
enum jerr pg_sql_run(struct pg_state *ps, const char *sql, const struct params *p, PGresult **res,
		     struct jerror *err, const char *fmt, ...) JOEY_PRINTF(6, 7) JOEY_WUR;
/*
 * Send the puts kept back, then run sql (no parameters, maybe several statements);
 * JERR_OK, or err filled as "could not <what> state store ...".
 */
enum jerr pg_exec_sql(struct pg_state *ps, const char *sql, struct jerror *err,
		      const char *what) JOEY_WUR;
/*
 * Row r of res (ROW_COLUMNS) into row. The row borrows res and ps->tmp (text of a
 * text key) and keybuf (digits of an integer key).
 */
void pg_decode_row(struct pg_state *ps, const PGresult *res, int r, struct state_row *row,
		   char *keybuf);

/* ---- url.c: the store's URL and its name in messages ---- */

/* postgresql://user@host:port/database[?schema=s] (parts that are NULL left out) onto out. */
void pg_display_name(struct strbuf *out, const char *user, const char *host, const char *port,
		     const char *db, const char *schema);
/* The URL's split into conninfo and schema: state_pg_split_url (state.h). */
/* JERR_OK if libpq can parse conninfo; else err says so, with the password masked. */
enum jerr pg_check_url(struct pg_state *ps, const char *url, const char *conninfo,
		       struct jerror *err);

/* ---- migrate.c: which schema version the store has, and bringing it up to date ---- */

/*
 * Is the schema a joey state store, and of which version? *fresh: the schema is
 * missing (*missing) or holds nothing. err filled when it is not a usable store.
 */
enum jerr pg_identify(struct pg_state *ps, int64_t *version, bool *fresh, bool *missing,
		      struct jerror *err) JOEY_WUR;
/* Bring the schema from version `from` to STATE_SCHEMA_VERSION, one step per transaction. */
enum jerr pg_migrate(struct pg_state *ps, int64_t from, struct jerror *err) JOEY_WUR;

/* ---- tx.c: the write-behind of state_put ---- */

/* Send the puts kept by pg_put as one statement (nothing kept: JERR_OK). */
enum jerr pg_flush_puts(struct pg_state *ps, struct jerror *err) JOEY_WUR;
/* Keep a put for one statement with the rest of the batch (inside a transaction only). */
enum jerr pg_put_keep(struct pg_state *ps, const char *dest_id, const struct rkey *key,
		      struct slice payload, const unsigned char hash[STATE_HASH_LEN], bool in_scope,
		      int64_t now, struct jerror *err) JOEY_WUR;

/* ---- records.c ---- */

/* Run a record write; err names what, the key and the destination. */
enum jerr pg_write_record(struct pg_state *ps, enum stmt_id id, const struct params *p,
			  const char *what, const char *dest_id, const struct rkey *key,
			  struct jerror *err) JOEY_WUR;

/* ---- the ops of state_pg (ops.c), by file; backend.h says what each does ---- */

/* conn.c */
enum jerr pg_open(const char *path, enum state_open_mode mode, struct state **out,
		  struct jerror *err);
enum jerr pg_open_empty(const char *name, struct state **out, struct jerror *err);
void pg_close(struct state *st);
enum jerr pg_limit_size(struct state *st, uint64_t max_bytes, struct jerror *err);
/* url.c */
void pg_display(const char *path, struct strbuf *out);
/* tx.c */
bool pg_in_transaction(struct state *st);
enum jerr pg_begin(struct state *st, struct jerror *err);
void pg_rollback(struct state *st);
enum jerr pg_commit(struct state *st, struct jerror *err);
/* records.c */
enum jerr pg_cursor_fill(struct state_cursor *cur, bool *end, struct jerror *err);
enum jerr pg_cursor_lookup(struct state_cursor *cur, const struct rkey *keys, size_t n,
			   struct jerror *err);
enum jerr pg_count(struct state *st, const char *dest_id, uint64_t *in_scope, struct jerror *err);
enum jerr pg_count_range(struct state *st, const char *dest_id, const struct rkey *lo,
			 const struct rkey *hi, uint64_t *in_scope, struct jerror *err);
enum jerr pg_get(struct state *st, const char *dest_id, const struct rkey *key, bool *found,
		 struct jerror *err);
enum jerr pg_put(struct state *st, const char *dest_id, const struct rkey *key,
		 struct slice payload, const unsigned char hash[STATE_HASH_LEN], bool in_scope,
		 int64_t now, struct jerror *err);
enum jerr pg_del(struct state *st, const char *dest_id, const struct rkey *key,
		 struct jerror *err);
enum jerr pg_mark_failed(struct state *st, const char *dest_id, const struct rkey *key,
			 const char *error, struct slice payload, int64_t now, struct jerror *err);
enum jerr pg_set_exists(struct state *st, const char *dest_id, const struct rkey *key,
			bool exists, int64_t checked_at, int64_t now, struct jerror *err);
/* runs.c */
enum jerr pg_run_start(struct state *st, const char *dest_id, const char *kind, int64_t now,
		       int64_t *run_id, struct jerror *err);
enum jerr pg_run_finish(struct state *st, int64_t run_id, enum run_status status,
			const struct run_counts *c, const char *error, int64_t now, bool *found,
			struct jerror *err);
enum jerr pg_abandon_keys(struct state *st, const char *dest_id, int64_t now, int64_t first_start,
			  const int64_t (*runs)[2], size_t n, bool *narrowed, struct jerror *err);
enum jerr pg_runs_abandon(struct state *st, const char *dest_id, int64_t now, bool all_records, uint64_t *n,
			  struct jerror *err);
enum jerr pg_run_progress(struct state *st, int64_t run_id, const struct run_counts *c,
			  struct jerror *err);
enum jerr pg_runs_running(struct state *st, struct strbuf *ids, size_t *n, struct jerror *err);
enum jerr pg_ledger_add(struct state *st, int64_t run_id, const char *dest_id,
			const struct rkey *key, const char *error, int attempts, int64_t now,
			struct jerror *err);
enum jerr pg_runs_list(struct state *st, const char *dest_id, size_t limit, state_run_fn fn,
		       void *ctx, struct jerror *err);
enum jerr pg_ledger_list(struct state *st, const char *dest_id, int64_t run_id,
			 const struct rkey *key, size_t limit, state_ledger_fn fn, void *ctx,
			 struct jerror *err);
/* locks.c */
enum jerr pg_lock_get(struct state *st, const char *dest_id, struct state_lock_row *li,
		      struct jerror *err);
enum jerr pg_lock_put(struct state *st, const char *dest_id, const char *holder, int64_t now,
		      const struct state_lock_row *prev, bool *taken, struct jerror *err);
enum jerr pg_lock_beat(struct state *st, const char *dest_id, int64_t now, bool *held,
		       struct jerror *err);
enum jerr pg_lock_del(struct state *st, const char *dest_id, struct jerror *err);
enum jerr pg_leader_try(struct state *st, const char *name, bool *leader, struct jerror *err);
/* marks.c */
enum jerr pg_mark_get(struct state *st, const char *schedule_id, struct strbuf *value, struct strbuf *basis,
		      bool *found, struct jerror *err);
enum jerr pg_mark_set(struct state *st, const char *schedule_id, const char *value, const char *basis, int64_t now,
		      struct jerror *err);
/* dump.c */
enum jerr pg_dump(struct state *st, state_dump_fn fn, void *ctx, struct jerror *err);
enum jerr pg_is_empty(struct state *st, bool *empty, struct jerror *err);
enum jerr pg_clear(struct state *st, struct jerror *err);
enum jerr pg_load_row(struct state *st, const struct state_table *t,
		      const struct state_value *row, struct jerror *err);
enum jerr pg_load_finish(struct state *st, struct jerror *err);
/* work.c */
enum jerr pg_work_enqueue(struct state *st, const struct state_work_spec *spec,
			  const struct state_work_part *parts, size_t n, int64_t now,
			  int64_t *job_id, bool *duplicate, struct jerror *err);
enum jerr pg_work_claim(struct state *st, const char *worker, int64_t lease_ms, int64_t only_job,
			struct state_work_item *it, bool *found, struct jerror *err);
enum jerr pg_work_heartbeat(struct state *st, const char *worker, int64_t lease_ms, int64_t now,
			    void (*held)(void *ctx, int64_t item_id), void *ctx, struct jerror *err);
enum jerr pg_work_finish(struct state *st, int64_t item_id, const char *worker,
			 const struct state_work_result *r, bool *held, bool *job_done,
			 struct jerror *err);
enum jerr pg_work_requeue(struct state *st, int64_t item_id, const char *worker,
			  struct jerror *err);
enum jerr pg_work_progress(struct state *st, int64_t item_id, const char *worker,
			   const struct run_counts *c, struct jerror *err);
enum jerr pg_work_items(struct state *st, int64_t job_id, state_work_item_fn fn, void *ctx,
			struct jerror *err);
enum jerr pg_work_job_status(struct state *st, int64_t job_id, enum run_status *status,
			     struct strbuf *model_id, bool *found, struct jerror *err);
enum jerr pg_work_close(struct state *st, int64_t job_id, enum run_status status,
			const char *mark, struct jerror *err);
enum jerr pg_work_sweep(struct state *st, int64_t keep_ms, int64_t now, uint64_t *closed,
			struct jerror *err);
/* budget.c */
enum jerr pg_rate_take(struct state *st, const char *key, double capacity, double rate_per_ms,
		       int want, int *got, int64_t *wait_ms, struct jerror *err);
/* synclog.c */
enum jerr pg_outbox_put(struct state *st, const char *dest_id, int64_t run_id, struct slice body,
			int64_t now, int64_t *id, struct jerror *err);
enum jerr pg_outbox_next(struct state *st, const char *dest_id, int64_t after, int64_t *id,
			 int64_t *run_id, struct strbuf *body, bool *found, struct jerror *err);
enum jerr pg_outbox_delete(struct state *st, const char *dest_id, int64_t id, bool *deleted,
			   struct jerror *err);
enum jerr pg_outbox_count(struct state *st, const char *dest_id, uint64_t *rows, uint64_t *bytes,
			  struct jerror *err);
enum jerr pg_synclog_set(struct state *st, const struct state_synclog_info *info, int64_t now,
			 struct jerror *err);
enum jerr pg_synclog_get(struct state *st, int64_t run_id, struct state_synclog_info *info,
			 struct strbuf *status, struct strbuf *error, bool *found,
			 struct jerror *err);
enum jerr pg_synclog_unfinished(struct state *st, const char *dest_id, int64_t *ids, size_t max,
				size_t *n, struct jerror *err);
/* exec.c */
enum jerr pg_exec(struct state *st, const char *what, const char *sql,
		  const struct state_value *params, size_t n,
		  enum jerr (*fn)(void *ctx, const struct state_value *row, size_t n_cols,
				  struct jerror *err),
		  void *ctx, uint64_t *changed, struct jerror *err);

#endif
