/*
 * state.h: the state store, the only place that says what Braze has.
 *
 * One SQLite file (WAL mode), default `.joey/state.db` beside the config directory.
 * Per destination and record key it holds the last payload Braze confirmed (canonical
 * JSON, see engine/payload.h), its XXH3-128 hash, whether the record is still in the
 * destination's scope, and a pending marker with attempts and the last error; plus run
 * history and the per-row error ledger. Schema: docs/internals/state.md.
 *
 * Order of calls:
 *   state_open(path, STATE_OPEN_CREATE, &st, &err);  -- creates/migrates the schema;
 *                                                        a newer schema is JERR_STATE_VERSION
 *   reading (plan):  state_cursor_open(st, dest_id, &cur, &err);
 *                    while (state_cursor_next(cur, &row, &err) == JERR_OK && row) ...;
 *                    state_cursor_close(cur);
 *   writing (run):   state_begin(st, &err); state_put/... ; state_commit(st, &err)
 *                    (or state_rollback) -- one transaction per answered batch
 *   state_close(st);
 *
 * Cursor rows come in ascending key order as defined by key_compare() in
 * source/source.h: integer keys (stored as SQLite INTEGER) numerically and before
 * text keys, text keys bytewise. Rows are borrowed until the next call.
 * All functions leave the store unchanged on failure (a failed write inside a
 * transaction is undone by state_rollback).
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

#define STATE_SCHEMA_VERSION 1
#define STATE_HASH_LEN 16

struct state;
struct state_cursor;

enum state_open_mode {
	STATE_OPEN_READONLY, /* fail with a clear error if the file does not exist */
	STATE_OPEN_CREATE,   /* create the file and its directory if needed */
};

struct state_row {
	struct rkey key;
	struct slice payload; /* canonical JSON last confirmed by Braze */
	unsigned char hash[STATE_HASH_LEN];
	bool in_scope;  /* false: kept in Braze but no longer managed (additive/enrich) */
	bool pending;   /* last attempt failed; retried on the next run */
	int attempts;   /* failed attempts since the last success */
	struct slice last_error;
};

/* path is borrowed. On failure *out is NULL and err says which file and why. */
enum jerr state_open(const char *path, enum state_open_mode mode, struct state **out,
		     struct jerror *err) JOEY_WUR;
void state_close(struct state *st);
/* The schema version of the open file. */
int state_schema_version(const struct state *st);

/* Rows of dest_id (borrowed) in key order. */
enum jerr state_cursor_open(struct state *st, const char *dest_id, struct state_cursor **cur,
			    struct jerror *err) JOEY_WUR;
enum jerr state_cursor_next(struct state_cursor *cur, struct state_row **row,
			    struct jerror *err) JOEY_WUR;
void state_cursor_close(struct state_cursor *cur);

/* Number of in-scope rows of a destination (for the mass-delete guard). */
enum jerr state_count(struct state *st, const char *dest_id, uint64_t *in_scope,
		      struct jerror *err) JOEY_WUR;
/* One row by key; *found false if absent. Row borrowed until the next state call. */
enum jerr state_get(struct state *st, const char *dest_id, const struct rkey *key,
		    struct state_row **row, bool *found, struct jerror *err) JOEY_WUR;

/* Transactions (BEGIN IMMEDIATE). */
enum jerr state_begin(struct state *st, struct jerror *err) JOEY_WUR;
enum jerr state_commit(struct state *st, struct jerror *err) JOEY_WUR;
void state_rollback(struct state *st);

/* Confirmed by Braze: store payload (borrowed) and hash, clear pending/attempts. */
enum jerr state_put(struct state *st, const char *dest_id, const struct rkey *key,
		    struct slice payload, const unsigned char hash[STATE_HASH_LEN],
		    bool in_scope, struct jerror *err) JOEY_WUR;
/* Confirmed deleted by Braze: forget the row. */
enum jerr state_delete(struct state *st, const char *dest_id, const struct rkey *key,
		       struct jerror *err) JOEY_WUR;
/*
 * An attempt failed: mark pending, attempts+1, remember error (borrowed). The
 * confirmed payload stays as it was. Creates a placeholder row (empty payload,
 * in_scope false) when the key has no confirmed payload yet.
 */
enum jerr state_mark_failed(struct state *st, const char *dest_id, const struct rkey *key,
			    const char *error, struct jerror *err) JOEY_WUR;

/* ---- run history and error ledger ---- */

enum run_status { RUN_RUNNING, RUN_SUCCESS, RUN_FAILED, RUN_INTERRUPTED };
const char *run_status_name(enum run_status s);

struct run_counts {
	uint64_t created, updated, deleted, unsubscribed, unchanged, failed, skipped;
	uint64_t requests, retries, throttled, data_points;
};

/* Start a run of dest_id; *run_id receives its id. */
enum jerr state_run_start(struct state *st, const char *dest_id, const char *kind,
			  int64_t *run_id, struct jerror *err) JOEY_WUR;
/* Finish it with status, counts and an optional error message (borrowed). */
enum jerr state_run_finish(struct state *st, int64_t run_id, enum run_status status,
			   const struct run_counts *counts, const char *error,
			   struct jerror *err) JOEY_WUR;
/* Append to the error ledger. */
enum jerr state_ledger_add(struct state *st, int64_t run_id, const char *dest_id,
			   const struct rkey *key, const char *error, int attempts,
			   struct jerror *err) JOEY_WUR;

/* Hash of a canonical payload. */
void state_hash(const void *data, size_t len, unsigned char out[STATE_HASH_LEN]);

#endif
