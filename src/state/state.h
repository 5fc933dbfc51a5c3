/*
 * state.h: the state store, the only place that says what Braze has.
 *
 * Two back ends behind this one interface (state_open picks by the path):
 *   - an SQLite file (WAL mode), default `.joey/state.db` beside the config directory;
 *   - a PostgreSQL schema, when the path is a libpq URI starting with postgres:// or
 *     postgresql:// (`?schema=NAME` picks the schema, default "joey"; the password
 *     comes from the URI or PGPASSWORD and is never printed).
 * Per destination and record key it holds the last payload Braze confirmed (canonical
 * JSON, see engine/payload.h), its XXH3-128 hash, whether the record is still in the
 * destination's scope, and a pending marker with attempts and the last error; plus run
 * history, the per-row error ledger and per-destination locks.
 * Schema, back ends and crash-safety argument: docs/internals/state.md.
 *
 * Order of calls:
 *   state_open(path, STATE_OPEN_CREATE, &st, &err);  -- creates/migrates the schema;
 *                                                        a newer schema is JERR_STATE_VERSION
 *   reading (plan):  state_cursor_open(st, dest_id, &cur, &err);
 *                    while (state_cursor_next(cur, &row, &err) == JERR_OK && row) ...;
 *                    state_cursor_close(cur);
 *   locking (run):   state_lock_acquire(st, dest_id, holder, &err); ... state_lock_release
 *   writing (run):   state_begin(st, &err); state_put/... ; state_commit(st, &err)
 *                    (or state_rollback) -- one transaction per answered batch
 *   history:         state_run_start ... state_ledger_add ... state_run_finish
 *   marks:           state_mark_get / state_mark_set (incremental schedules)
 *   export/import:   state_dump; state_begin, state_load_row..., state_load_finish, state_commit
 *   workers:         state_work_* (the work queue), state_leader_try, state_rate_take
 *                    (PostgreSQL only; see below)
 *   state_close(st);
 *
 * Cursor rows come in ascending key order as defined by key_compare() in
 * source/source.h: integer keys numerically and before text keys, text keys
 * bytewise. Rows are borrowed until the next call.
 * All functions leave the store unchanged on failure (a failed write inside a
 * transaction is undone by state_rollback).
 *
 * All times stored are Unix epoch milliseconds of the wall clock.
 * One struct state is used by one thread at a time.
 */
#ifndef JOEY_STATE_H
#define JOEY_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "source/source.h"

#define STATE_SCHEMA_VERSION 9
#define STATE_HASH_LEN 16
/* PRAGMA application_id of a joey state store: "JOEY" (PostgreSQL: meta.application_id). */
#define STATE_APPLICATION_ID 0x4a4f4559
/*
 * How long a statement waits for another process's write lock (SQLite busy timeout,
 * PostgreSQL lock_timeout) before JERR_STATE_BUSY.
 */
#define STATE_BUSY_TIMEOUT_MS 10000
/* A destination lock whose heartbeat is older than this is stale (state_lock_acquire). */
#define STATE_LOCK_STALE_MS (30 * 60 * 1000)

struct state;
struct state_cursor;

enum state_open_mode {
	STATE_OPEN_READONLY, /* fail with a clear error if the file does not exist */
	STATE_OPEN_CREATE,   /* create the file and its directory if needed */
	/*
	 * Like READONLY, but a missing file (or an existing empty one) opens an empty
	 * in-memory store instead: every read succeeds with no rows. For `joey plan`,
	 * which must work before the first run and must not create anything.
	 */
	STATE_OPEN_READONLY_OR_EMPTY,
};

struct state_row {
	struct rkey key;
	/*
	 * canonical JSON last confirmed by Braze; a placeholder's (!confirmed) is empty, or
	 * what failed creates may have set, for their groups (state_mark_failed's payload)
	 */
	struct slice payload;
	unsigned char hash[STATE_HASH_LEN]; /* all zero if !confirmed (state_row_placeholder) */
	bool in_scope;  /* false: kept in Braze but no longer managed (additive/enrich) */
	bool pending;   /* last attempt failed; retried on the next run */
	int attempts;   /* failed attempts since the last success */
	struct slice last_error; /* empty if none */
	/*
	 * false: a placeholder row, made by state_mark_failed or state_set_exists for a
	 * key Braze never confirmed: hash zero, in_scope false, payload empty or the
	 * groups failed creates may have added. Readers treat it as "Braze has nothing
	 * confirmed from us for this key", never as a confirmed payload.
	 */
	bool confirmed;
	int braze_exists;     /* Enrich mode: -1 unknown, 0 Braze has no such user, 1 it has */
	int64_t checked_at;   /* when braze_exists was learnt; 0 if never */
	int64_t confirmed_at; /* when Braze last confirmed payload; 0 if !confirmed */
	int64_t updated_at;   /* last change of this row */
};

/*
 * Is row a placeholder (never confirmed by Braze)? Its hash is all zero, which a
 * confirmed row's never is; every cursor and look-up reads the hash, so this holds
 * whichever columns the reader decoded (the diff's lean cursor has no confirmed_at).
 */
static inline bool state_row_placeholder(const struct state_row *row)
{
	for (size_t i = 0; i < STATE_HASH_LEN; i++)
		if (row->hash[i])
			return false;
	return true;
}

/*
 * path is borrowed: a file (":memory:" opens a private in-memory store), or a
 * PostgreSQL URI (state_path_is_url). On failure *out is NULL and err says which store
 * and why: JERR_STATE (missing, not a joey state store, corrupt, read-only directory,
 * disk full, server unreachable), JERR_STATE_VERSION (written by a newer joey),
 * JERR_STATE_BUSY (another process holds the write lock too long).
 * A store opened READONLY or READONLY_OR_EMPTY refuses every write with JERR_STATE.
 * A store with an older schema is migrated by CREATE; READONLY* open it as it is
 * (state_schema_version says which), and what it lacks reads as empty (no marks).
 * On PostgreSQL, a missing schema is what a missing file is on SQLite.
 */
enum jerr state_open(const char *path, enum state_open_mode mode, struct state **out,
		     struct jerror *err) JOEY_WUR;
/* Close every cursor first. An open transaction is rolled back. st may be NULL. */
void state_close(struct state *st);
/* The schema version of the open store. */
int state_schema_version(const struct state *st);
/*
 * The store as messages name it (borrowed from st): the path given to state_open, or
 * for PostgreSQL the URL without its password (postgresql://user@host:port/db?schema=s).
 */
const char *state_path(const struct state *st);
/*
 * The path or URL exactly as given to state_open (borrowed from st), password
 * included: for opening another connection to the same store (the warehouse diff),
 * never for messages. NULL for a store state_open did not make.
 */
const char *state_location(const struct state *st);
/*
 * A PostgreSQL store's URL split as the store splits it: what libpq gets (conninfo: the
 * URL without joey's own ?schema=) and the schema (default "joey"). false if the schema
 * is not a usable name. Both buffers owned by the caller (reset first).
 */
bool state_pg_split_url(const char *url, struct strbuf *conninfo, struct strbuf *schema);
/* "SQLite" or "PostgreSQL". */
const char *state_backend_name(const struct state *st);
/* path (borrowed) names a PostgreSQL store: it starts with postgres:// or postgresql://. */
bool state_path_is_url(const char *path);
/* Append path as it may be shown to people: a URL loses its password. */
void state_path_display(const char *path, struct strbuf *out);

/*
 * Rows of dest_id (borrowed) in key order, placeholders included (see confirmed).
 * A cursor reads in bounded batches and holds no SQLite statement or transaction
 * between calls: several may be open at once, writes through the same struct state
 * may be interleaved with reading, and memory is constant in the number of rows.
 * Keys come strictly increasing: a row already returned is never returned again.
 * Rows ahead of the cursor may or may not reflect writes made after it was opened
 * (it is not a snapshot; the engine only writes keys it has passed). state_cursor_next gives
 * JERR_OK with *row NULL at the end; *row is borrowed until the next call on that
 * cursor. Close cursors before state_close; state_cursor_close accepts NULL.
 */
enum jerr state_cursor_open(struct state *st, const char *dest_id, struct state_cursor **cur,
			    struct jerror *err) JOEY_WUR;
enum jerr state_cursor_next(struct state_cursor *cur, struct state_row **row,
			    struct jerror *err) JOEY_WUR;
void state_cursor_close(struct state_cursor *cur);
/*
 * Skip to key (borrowed): the next state_cursor_next returns the first row whose key is
 * >= key (key_compare order), or the end; the rows before it are not returned, and
 * those past the current batch are not read at all. A key at or before the last row
 * returned changes nothing (keys still come strictly increasing). For partial reads
 * (an incremental pass looks up the keys it read): the cursor walks when the keys
 * sought are dense and seeks (one small query per key) when they are sparse, deciding
 * as it goes. Reads nothing itself (the next state_cursor_next does, and fails as it
 * does); returns JERR_OK.
 */
enum jerr state_cursor_seek(struct state_cursor *cur, const struct rkey *key,
			    struct jerror *err) JOEY_WUR;
/*
 * A hint: the caller will seek keys (borrowed, copied; ascending; the first
 * STATE_BATCH_ROWS) next, in this order, replacing any earlier hint. When seeks are
 * sparse, a back end that can look many keys up in one query (PostgreSQL: one round
 * trip instead of one per key) does. Results are the same with or without it.
 */
void state_cursor_expect(struct state_cursor *cur, const struct rkey *keys, size_t n);
/*
 * Read only what the diff compares: the rows come without last_error (empty),
 * confirmed_at and updated_at (0), and confirmed says whether the payload is
 * non-empty (what a confirmed row always has). Fewer columns read per row is less of
 * the plan's time (issue #15). Call before the first state_cursor_next; a back end may
 * read whole rows anyway.
 */
void state_cursor_lean(struct state_cursor *cur);
/*
 * state_cursor_open limited to the keys of range (copied; NULL: every key): the rows
 * with lo <= key < hi in key order. A worker's partition reads its state this way.
 */
enum jerr state_cursor_open_range(struct state *st, const char *dest_id, const struct key_range *range,
				  struct state_cursor **cur, struct jerror *err) JOEY_WUR;

/* Number of in-scope rows of a destination (for the mass-delete guard). */
enum jerr state_count(struct state *st, const char *dest_id, uint64_t *in_scope,
		      struct jerror *err) JOEY_WUR;
/* state_count of the keys in range (borrowed; NULL: every key). */
enum jerr state_count_range(struct state *st, const char *dest_id, const struct key_range *range,
			    uint64_t *in_scope, struct jerror *err) JOEY_WUR;
/* One row by key; *found false if absent. Row borrowed until the next state call. */
enum jerr state_get(struct state *st, const char *dest_id, const struct rkey *key,
		    struct state_row **row, bool *found, struct jerror *err) JOEY_WUR;

/*
 * Transactions (SQLite: BEGIN IMMEDIATE, the write lock is taken at once, waiting up to
 * STATE_BUSY_TIMEOUT_MS, else JERR_STATE_BUSY; PostgreSQL: BEGIN, rows are locked as
 * they are written). Writes outside a transaction commit one by one. When a write
 * inside a transaction fails, the caller calls state_rollback (always safe, also when
 * the database already rolled back, e.g. SQLite on disk full; on PostgreSQL any
 * failed statement ends the transaction's usefulness, so roll back after any error).
 * state_commit rolls the whole transaction back itself when it fails, so nothing of
 * it is stored and no transaction is left open.
 */
enum jerr state_begin(struct state *st, struct jerror *err) JOEY_WUR;
enum jerr state_commit(struct state *st, struct jerror *err) JOEY_WUR;
void state_rollback(struct state *st);

/*
 * Writes. dest_id, key, payload and error are borrowed. A failure is JERR_STATE
 * naming the store, with the database's message as detail (JERR_STATE_BUSY when locked).
 */

/*
 * Confirmed by Braze: store payload and hash, clear pending/attempts/last_error. With
 * the all-zero hash the row is (or stays) a placeholder, confirmed_at NULL: the release
 * of a placeholder (Additive, Enrich), which Braze confirmed without saying whether it
 * had the user (engine/diff.c emit_gone).
 */
enum jerr state_put(struct state *st, const char *dest_id, const struct rkey *key,
		    struct slice payload, const unsigned char hash[STATE_HASH_LEN],
		    bool in_scope, struct jerror *err) JOEY_WUR;
/* Confirmed deleted by Braze: forget the row (no error if there is none). */
enum jerr state_delete(struct state *st, const char *dest_id, const struct rkey *key,
		       struct jerror *err) JOEY_WUR;
/*
 * An attempt failed: mark pending, attempts+1, remember error. The stored payload
 * stays as it was, unless payload is not empty: then it replaces it (the confirmed
 * payload with the groups the attempt added, or a failed create's payload,
 * dest_change.fail_payload; the hash stays). Creates a placeholder row (confirmed
 * false, hash zero, payload as given, in_scope false, attempts 1) when the key has
 * no row yet. payload is borrowed.
 */
enum jerr state_mark_failed(struct state *st, const char *dest_id, const struct rkey *key,
			    const char *error, struct slice payload, struct jerror *err) JOEY_WUR;
/*
 * Enrich mode: Braze said whether the user exists, learnt at checked_at (epoch ms).
 * Creates a placeholder row when the key has none; the payload stays as it is. The
 * look-up was answered, so an earlier failed attempt is over: pending, attempts and
 * last_error are cleared (options.enrichRecheckHours then counts from checked_at).
 */
enum jerr state_set_exists(struct state *st, const char *dest_id, const struct rkey *key,
			   bool exists, int64_t checked_at, struct jerror *err) JOEY_WUR;

/*
 * Cap the file at about max_bytes (PRAGMA max_page_count, this connection only):
 * writes past it fail as if the disk were full. For tests and bounded deployments.
 * SQLite only: on PostgreSQL it fails with JERR_STATE ("not supported").
 */
enum jerr state_limit_size(struct state *st, uint64_t max_bytes, struct jerror *err) JOEY_WUR;

/* ---- run history and error ledger ---- */

enum run_status { RUN_RUNNING, RUN_SUCCESS, RUN_FAILED, RUN_INTERRUPTED };
/* "running", "success", "failed", "interrupted": what runs.status holds. */
const char *run_status_name(enum run_status s);

struct run_counts {
	uint64_t created, updated, deleted, unsubscribed, unchanged, failed, skipped;
	uint64_t requests, retries, throttled, data_points;
};
/* a += b, every count. */
void run_counts_add(struct run_counts *a, const struct run_counts *b);

/* Start a run of dest_id; kind is "run" or "plan"; *run_id receives its id (> 0). */
enum jerr state_run_start(struct state *st, const char *dest_id, const char *kind,
			  int64_t *run_id, struct jerror *err) JOEY_WUR;
/* Finish it with status, counts and an optional error message (borrowed; NULL: none). */
enum jerr state_run_finish(struct state *st, int64_t run_id, enum run_status status,
			   const struct run_counts *counts, const char *error,
			   struct jerror *err) JOEY_WUR;
/*
 * Runs of dest_id still marked running whose process is gone: call only while holding
 * the destination's lock (so none of them can still be alive). They become interrupted;
 * *n receives how many. When one of them is a run (not a plan), every record of dest_id
 * confirmed before the first of them started, and not pending, becomes pending first
 * (last_error STATE_ABANDONED_SEND_ERROR): the run may have sent any of them, and Braze
 * may have applied a request whose answer was never recorded (a field set, a group
 * removed), so the stored payload is no longer known to be what Braze has; the next run
 * that reads the record re-sends it in full. A record the run itself confirmed is what
 * Braze has (a run sends a record once). On failure the runs may still say running.
 * It narrows "every record" to the keys in each run's sent-keys journal (below) when
 * every one of them has a journal it can trust on this host; their journals are then
 * removed.
 */
enum jerr state_runs_abandon(struct state *st, const char *dest_id, uint64_t *n,
			     struct jerror *err) JOEY_WUR;
/*
 * The sent-keys journal of a run (state/journal.c: a file beside an SQLite store, or in
 * this host's $XDG_STATE_HOME/joey for a PostgreSQL one): the keys of every request that
 * may change Braze, written before it is sent, so that state_runs_abandon makes pending
 * only what a killed run may have sent.
 *   j = state_journal_start(st, run_id);          -- after state_run_start; NULL: none
 *   state_journal_add(j, keys, n, &err);          -- before each such request is sent
 *   state_journal_finish(j, remove);              -- remove once state_run_finish
 *                                                    recorded the run's end
 * NULL (a store in memory, a directory that cannot be written, no HOME, no boot id) is a run
 * without a journal: killed, its destination's next run re-sends every record.
 * state_journal_add with NULL does nothing. A journal that cannot be written is
 * removed (logged) and the run goes on without it; JERR_IO only when it can be neither
 * written nor removed, JERR_STATE when another run's state_runs_abandon took it (this
 * run's lock was taken over): then nothing more may be sent. keys are borrowed.
 */
struct state_journal;
struct state_journal *state_journal_start(struct state *st, int64_t run_id);
enum jerr state_journal_add(struct state_journal *j, const struct rkey *const *keys, size_t n,
			    struct jerror *err) JOEY_WUR;
void state_journal_finish(struct state_journal *j, bool remove);
/*
 * Store the counts of run run_id so far (a running run only; nothing happens to one
 * that has ended). Called in the transaction that commits a batch's answers, so the
 * run row always counts what the store holds: a run whose process dies keeps them.
 */
enum jerr state_run_progress(struct state *st, int64_t run_id, const struct run_counts *counts,
			     struct jerror *err) JOEY_WUR;
/*
 * At the start of `joey serve` / `joey worker`: every run still marked running whose
 * destination lock is free, or held by a process of this host that is gone (kill -9,
 * a crash), becomes interrupted with the counts it had committed (state_run_progress);
 * the lock is taken for that and released. Runs whose lock a live process holds, or a
 * work job (docs/scaling.md), or another host, are left alone. Returns how many runs
 * it marked; never fails: problems are logged (the store is not writable, ...), and
 * the destination's next run does the same anyway (state_runs_abandon). holder
 * (borrowed) names the caller in the lock while it holds it.
 */
uint64_t state_runs_recover(struct state *st, const char *holder);
/* Append to the error ledger. run_id 0: not part of a run. */
enum jerr state_ledger_add(struct state *st, int64_t run_id, const char *dest_id,
			   const struct rkey *key, const char *error, int attempts,
			   struct jerror *err) JOEY_WUR;

/*
 * Listings for `joey status`, newest first; limit 0 means no limit. The callback gets
 * each entry (borrowed, valid during the call); returning anything but JERR_OK stops
 * the listing, and that code is returned (the callback fills err). The callback may
 * call other state functions, but not the state_*_list ones.
 */
struct state_run_info {
	int64_t id;
	const char *dest_id;
	const char *kind;       /* "run" or "plan" */
	enum run_status status;
	int64_t started_at;
	int64_t finished_at;    /* 0 while running */
	struct run_counts counts;
	const char *error;      /* NULL if none */
};
typedef enum jerr (*state_run_fn)(void *ctx, const struct state_run_info *run,
				  struct jerror *err);
/* Runs of dest_id (borrowed), or of every destination if NULL. */
enum jerr state_runs_list(struct state *st, const char *dest_id, size_t limit, state_run_fn fn,
			  void *ctx, struct jerror *err) JOEY_WUR;

struct state_ledger_entry {
	int64_t id;
	int64_t run_id;         /* 0 if none */
	const char *dest_id;
	struct rkey key;
	const char *error;
	int attempts;
	int64_t at;
};
typedef enum jerr (*state_ledger_fn)(void *ctx, const struct state_ledger_entry *e,
				     struct jerror *err);
/* Ledger entries filtered by dest_id (NULL: all), run_id (0: all), key (NULL: all). */
enum jerr state_ledger_list(struct state *st, const char *dest_id, int64_t run_id,
			    const struct rkey *key, size_t limit, state_ledger_fn fn, void *ctx,
			    struct jerror *err) JOEY_WUR;

/* ---- per-destination locks: one run per destination at a time ---- */

/*
 * Take the lock of dest_id for this struct state, atomically. holder (borrowed) is
 * what a refused caller is shown ("joey run pid 123"). A lock is stale, and taken
 * over, when its heartbeat is older than stale_ms or its process (same host) is gone.
 * Held by anyone else, or already by this struct state: JERR_STATE_BUSY naming the
 * holder. Inside a transaction the lock is part of it; otherwise it commits at once.
 * state_lock_acquire uses STATE_LOCK_STALE_MS.
 */
enum jerr state_lock_acquire(struct state *st, const char *dest_id, const char *holder,
			     struct jerror *err) JOEY_WUR;
enum jerr state_lock_acquire_stale(struct state *st, const char *dest_id, const char *holder,
				   int64_t stale_ms, struct jerror *err) JOEY_WUR;
/* Refresh the heartbeat; call well within the stale time. JERR_STATE_BUSY if lost. */
enum jerr state_lock_heartbeat(struct state *st, const char *dest_id, struct jerror *err) JOEY_WUR;
/* Release a lock this struct state holds; nothing otherwise (a failure is logged). */
void state_lock_release(struct state *st, const char *dest_id);

/* ---- high-water marks of incremental schedules (docs/config.md) ---- */

/*
 * The mark of schedule_id (borrowed): *found and its text in value (reset first), and
 * when basis is not NULL, the basis stored with it in basis (reset first; empty when
 * none was: a mark stored before bases were). Not found when none was stored, also in
 * a store older than schema version 2.
 */
enum jerr state_mark_get(struct state *st, const char *schedule_id, struct strbuf *value,
			 struct strbuf *basis, bool *found, struct jerror *err) JOEY_WUR;
/*
 * Store value (borrowed, copied) as the mark of schedule_id, replacing any, and basis
 * (borrowed; NULL: leave the stored one) with it: what the value was read from (the
 * schedule's source and column, engine/marks.c), so that a mark of another column is
 * not used. The value is written first: if the basis then fails, the old basis makes
 * the next run read everything.
 */
enum jerr state_mark_set(struct state *st, const char *schedule_id, const char *value,
			 const char *basis, struct jerror *err) JOEY_WUR;

/* ---- the work queue of `joey worker` (PostgreSQL only; docs/scaling.md) ---- */

/*
 * Workers on any number of machines share one PostgreSQL store. A job is one run of
 * some destinations of a model; it is split into work items, one per destination and
 * key range (partition). Each item is claimed by one worker at a time with SELECT ...
 * FOR UPDATE SKIP LOCKED and a lease (expires_at, on the database's clock) that the
 * worker renews; an item whose lease ran out (its worker died) is claimed again by
 * another worker, which resumes it: what Braze confirmed is committed per batch, so it
 * is not sent again.
 *
 *   enqueue (any process), in one transaction:
 *     state_begin; state_lock_acquire(each destination); state_run_start(each);
 *     state_work_enqueue(...)            -- adopts the locks: the job holds them now
 *     state_commit
 *   work (each worker): state_work_claim -> run the item -> in one transaction:
 *     state_work_finish; if *job_done: state_work_items (sum up), state_run_finish,
 *     state_mark_set, state_work_close   -- releases the job's locks
 *   keep alive (each worker, its own connection, every lease/3): state_work_heartbeat
 *
 * On SQLite every function here fails with JERR_STATE ("workers need a PostgreSQL
 * state store"). Strings given are borrowed.
 */

/* JERR_OK when the store has the work queue; else JERR_STATE saying workers need PostgreSQL. */
enum jerr state_work_supported(struct state *st, struct jerror *err) JOEY_WUR;

/* What a job is (state_work_enqueue). */
struct state_work_spec {
	const char *model_id;
	const char *schedule_id; /* incremental schedule whose mark the job advances; NULL none */
	const char *since;       /* the mark its reads start from; NULL: a full read */
	const char *dedup;       /* unique among all jobs (e.g. schedule + fire time); NULL none */
	bool force;              /* send deletes past the mass-delete guard */
	double max_delete_percent; /* < 0: each destination's own */
	const char *config_gen;  /* the config generation it is queued with (state/confgen.h); NULL none */
	const char *marks;       /* every schedule's mark at queue time, a JSON object; NULL none */
};

/* One work item: a destination's key range. */
struct state_work_part {
	const char *dest_id;
	int64_t run_id; /* the destination's row in runs (state_run_start) */
	int part, n_parts;
	struct key_range range;
};

/*
 * Store a job and its items, queued. Call inside the transaction that took the
 * destinations' locks (this struct state's): they pass to the job (holder "joey job
 * N", no pid, so only their heartbeat keeps them; workers refresh it). *duplicate:
 * a job with spec->dedup exists already (nothing stored; roll back).
 */
enum jerr state_work_enqueue(struct state *st, const struct state_work_spec *spec,
			     const struct state_work_part *parts, size_t n_parts, int64_t *job_id,
			     bool *duplicate, struct jerror *err) JOEY_WUR;

/* A claimed item and what its job says (owned: state_work_item_release). */
struct state_work_item {
	int64_t id, job_id, run_id;
	int part, n_parts;
	int claims; /* times it was claimed and not given back, this one included (> 1: a worker died on it) */
	struct strbuf dest_id, model_id, schedule_id, since; /* empty: none */
	struct strbuf config_gen, marks; /* the job's (state_work_spec); empty: none */
	bool has_since, force;
	double max_delete_percent;
	struct rkey lo, hi; /* the range's bounds (their text in lo_text, hi_text) */
	struct strbuf lo_text, hi_text;
	struct key_range range; /* points at lo/hi, or NULL bounds */
};
void state_work_item_init(struct state_work_item *it);
void state_work_item_release(struct state_work_item *it);

/*
 * Claim the oldest claimable item (queued, or running with its lease expired) of a
 * running job whose locks are still its own, for worker (an id unique per process),
 * with a lease of lease_ms; only_job > 0 limits it to that job. *found false: none.
 */
enum jerr state_work_claim(struct state *st, const char *worker, int64_t lease_ms, int64_t only_job,
			   struct state_work_item *it, bool *found, struct jerror *err) JOEY_WUR;

/*
 * Renew the leases of worker's running items by lease_ms, and the heartbeat of the
 * destination locks of every running job. held (may be NULL) is called with each item
 * still worker's; an item missing from them was taken over after its lease ran out.
 */
enum jerr state_work_heartbeat(struct state *st, const char *worker, int64_t lease_ms,
			       void (*held)(void *ctx, int64_t item_id), void *ctx,
			       struct jerror *err) JOEY_WUR;

/* How an item ended (state_work_finish). */
struct state_work_result {
	enum run_status status;  /* RUN_SUCCESS, RUN_FAILED */
	struct run_counts counts;
	uint64_t deletes_held;
	const char *seen;        /* largest since value read; NULL none */
	bool read_ok;            /* the source was read to the end */
	const char *error;       /* NULL none */
};

/*
 * Inside a transaction: record the result of item_id if worker still holds it (*held;
 * otherwise nothing changes: another worker took it over), serialised with the other
 * finishers of its job. *job_done: no item of the (still running) job is queued or
 * running any more; the caller then closes the job in the same transaction.
 */
enum jerr state_work_finish(struct state *st, int64_t item_id, const char *worker,
			    const struct state_work_result *res, bool *held, bool *job_done,
			    struct jerror *err) JOEY_WUR;
/*
 * The counts so far of item_id while worker runs it (for the live view of its job;
 * state_work_finish writes the final ones); nothing if the item is no longer worker's.
 */
enum jerr state_work_progress(struct state *st, int64_t item_id, const char *worker,
			      const struct run_counts *counts, struct jerror *err) JOEY_WUR;
/*
 * Give a claimed item back to the queue (the worker is stopping); nothing if not held.
 * That claim is not counted (claims - 1): only workers that ended without a word count.
 */
enum jerr state_work_requeue(struct state *st, int64_t item_id, const char *worker,
			     struct jerror *err) JOEY_WUR;

/* An item as stored (state_work_items); strings borrowed for the call. */
struct state_work_item_info {
	int64_t id;
	const char *dest_id;
	int64_t run_id;
	int part, n_parts, claims;
	const char *status;      /* "queued", "running", "finished" */
	enum run_status run_status; /* of a finished item */
	struct run_counts counts;
	uint64_t deletes_held;
	const char *seen;        /* NULL none */
	bool read_ok;
	const char *error;       /* NULL none */
	const char *worker;      /* NULL none */
};
typedef enum jerr (*state_work_item_fn)(void *ctx, const struct state_work_item_info *it,
					struct jerror *err);
/* The items of job_id in (destination, part) order. */
enum jerr state_work_items(struct state *st, int64_t job_id, state_work_item_fn fn, void *ctx,
			   struct jerror *err) JOEY_WUR;

/* A job's status (RUN_RUNNING until closed) and its model; *found false if none. */
enum jerr state_work_job_status(struct state *st, int64_t job_id, enum run_status *status,
				struct strbuf *model_id, bool *found, struct jerror *err) JOEY_WUR;
/*
 * Inside the finisher's transaction: the job ended with status; mark (NULL: none) is
 * what it stored as its schedule's mark. Releases the destination locks it holds.
 */
enum jerr state_work_close(struct state *st, int64_t job_id, enum run_status status,
			   const char *mark, struct jerror *err) JOEY_WUR;

/*
 * Housekeeping (the leader, now and then): a running job whose destination locks are
 * gone (taken over as stale while no worker ran for the lock's stale time) can never
 * finish: it becomes interrupted (*closed says how many). Jobs that ended more than
 * keep_ms ago are deleted with their items.
 */
enum jerr state_work_sweep(struct state *st, int64_t keep_ms, uint64_t *closed,
			   struct jerror *err) JOEY_WUR;

/*
 * Leadership (one scheduler at a time): try to become the leader of name (e.g.
 * "scheduler") on this struct state's connection; once it is, it stays until the
 * connection ends (the process dies, or state_close). Called again, it checks that the
 * connection is alive. Use a struct state for nothing else: its connection is the lease.
 */
enum jerr state_leader_try(struct state *st, const char *name, bool *leader,
			   struct jerror *err) JOEY_WUR;

/*
 * A token bucket shared by every process using the store (one Braze workspace's rate
 * limit, docs/scaling.md): refill key's bucket (created full) at rate_per_ms up to
 * capacity, on the database's clock, then take up to want whole tokens. *got: how
 * many were taken (0..want); when 0, *wait_ms says when one will be there.
 */
enum jerr state_rate_take(struct state *st, const char *key, double capacity, double rate_per_ms,
			  int want, int *got, int64_t *wait_ms, struct jerror *err) JOEY_WUR;

/* ---- the sync log's outbox (engine/synclog.h; schema version 6) ---- */

/*
 * A destination with a sync log puts the log rows of each batch of Braze's answers
 * into the outbox, in the transaction that commits those answers, so the outbox holds
 * exactly what the store says was answered; the rows leave it once they are in the
 * log database. dest_id and body are borrowed. In a store older than version 6
 * (opened read-only) the outbox reads as empty.
 */
enum jerr state_outbox_put(struct state *st, const char *dest_id, int64_t run_id, struct slice body,
			   int64_t *id, struct jerror *err) JOEY_WUR;
/* The row of dest_id with the smallest id > after: *found, its id, run_id and body (reset first). */
enum jerr state_outbox_next(struct state *st, const char *dest_id, int64_t after, int64_t *id, int64_t *run_id,
			    struct strbuf *body, bool *found, struct jerror *err) JOEY_WUR;
/* Delete row id of dest_id; *deleted: it was there (none: no error). */
enum jerr state_outbox_delete(struct state *st, const char *dest_id, int64_t id, bool *deleted,
			      struct jerror *err) JOEY_WUR;
/* How many rows dest_id has in the outbox and the bytes of their bodies. */
enum jerr state_outbox_count(struct state *st, const char *dest_id, uint64_t *rows, uint64_t *bytes,
			     struct jerror *err) JOEY_WUR;

/* Whether the sync log of a run was written (synclog_runs); strings borrowed. */
struct state_synclog_info {
	int64_t run_id;
	const char *dest_id;
	const char *status; /* "writing", "complete", "pending" (engine/synclog.h) */
	uint64_t rows;      /* record rows of the run written to the log */
	uint64_t pending;   /* record rows of the run's destination still in the outbox */
	const char *error;  /* why the log is not complete; NULL none */
	int64_t updated_at;
};
/* Insert or replace the row of info->run_id. */
enum jerr state_synclog_set(struct state *st, const struct state_synclog_info *info, struct jerror *err) JOEY_WUR;
/*
 * The row of run_id: *found, and its fields, with status and error copied into
 * status and error (reset first); info's strings point into them.
 */
enum jerr state_synclog_get(struct state *st, int64_t run_id, struct state_synclog_info *info,
			    struct strbuf *status, struct strbuf *error, bool *found, struct jerror *err) JOEY_WUR;
/* Up to max runs of dest_id whose log is not "complete", oldest first, into ids; *n how many. */
enum jerr state_synclog_unfinished(struct state *st, const char *dest_id, int64_t *ids, size_t max, size_t *n,
				   struct jerror *err) JOEY_WUR;

/* ---- export and import: every table as values (`joey state export|import`) ---- */

/*
 * The tables as export and import see them, at STATE_SCHEMA_VERSION, the same on every
 * back end (schema.c): records, runs, ledger, locks, marks, in that order (runs before
 * ledger, which refers to it). meta is not among them; the schema version is.
 */
enum state_col_type {
	STATE_COL_INT,  /* 64-bit integer */
	STATE_COL_BOOL, /* 0 or 1 */
	STATE_COL_TEXT, /* text (UTF-8) */
	STATE_COL_HASH, /* STATE_HASH_LEN bytes */
	STATE_COL_KEY,  /* a record key: integer or text (records.key, ledger.key) */
};
struct state_column {
	const char *name;
	enum state_col_type type;
	bool nullable;
};
struct state_table {
	const char *name;
	int since;    /* schema version that added it */
	size_t n_pk;  /* the first n_pk columns are the primary key */
	size_t n_cols;
	const struct state_column *cols;
};
extern const struct state_table state_tables[];
extern const size_t state_n_tables;

/* One value: NULL, an integer (INT, BOOL, integer KEY) or bytes (TEXT, HASH, text KEY). */
struct state_value {
	enum { STATE_VAL_NULL, STATE_VAL_INT, STATE_VAL_TEXT } kind;
	int64_t i;
	struct slice s; /* borrowed */
};

/*
 * Every row of every table, read in one snapshot: the tables in state_tables order,
 * each in primary-key order (records by dest_id bytewise, then key order; runs and
 * ledger by id; locks and marks by their text key bytewise), so equal stores dump
 * equal. fn gets the table and one value per column (borrowed, valid during the call);
 * anything but JERR_OK stops the dump and is returned. fn must not call state
 * functions. Tables newer than the store's schema have no rows.
 */
typedef enum jerr (*state_dump_fn)(void *ctx, const struct state_table *t,
				   const struct state_value *row, struct jerror *err);
enum jerr state_dump(struct state *st, state_dump_fn fn, void *ctx, struct jerror *err) JOEY_WUR;
/* *empty: no table holds a row. */
enum jerr state_is_empty(struct state *st, bool *empty, struct jerror *err) JOEY_WUR;
/* Delete every row of every table (import --replace; inside its transaction). */
enum jerr state_clear(struct state *st, struct jerror *err) JOEY_WUR;
/*
 * Insert one row of t exactly as given (ids and times kept; row has t->n_cols values,
 * borrowed). Call inside a transaction, rows of runs before the ledger rows that refer
 * to them, then state_load_finish (which makes new ids follow the loaded ones) and
 * state_commit. A value of the wrong kind, or a row that clashes, is JERR_STATE.
 */
enum jerr state_load_row(struct state *st, const struct state_table *t,
			 const struct state_value *row, struct jerror *err) JOEY_WUR;
enum jerr state_load_finish(struct state *st, struct jerror *err) JOEY_WUR;

/* Hash of a canonical payload: XXH3-128, big-endian (high 64 bits first). */
void state_hash(const void *data, size_t len, unsigned char out[STATE_HASH_LEN]);

#endif
