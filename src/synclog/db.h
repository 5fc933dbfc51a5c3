/*
 * synclog/db.h: the sync log's writers, one per database type, behind one const ops
 * table (docs/internals/export.md "Sync logs in the warehouse").
 *
 * A destination with options.syncLogAppId writes what each run did into two tables of
 * a database the user names (an app of type postgres, mysql or sqlite, opened here
 * for writing; the source connectors' sessions are read-only):
 *
 *   <prefix>sync_runs     one row per run and destination (the summary)
 *   <prefix>sync_records  one row per record outcome Braze answered (or a row that
 *                         failed before it was sent)
 *   <prefix>sync_meta     the log schema's version (SYNCLOG_SCHEMA_VERSION)
 *
 * Order of calls, all on one thread:
 *   ops = synclog_db_for_app(app->type);
 *   ops->connect(app, root, prefix, &c, &err);   -- connects, creates missing tables
 *   ops->write_records(c, rows, n, &err);        -- one transaction; idempotent
 *   ops->write_run(c, &run, &err);               -- upsert of the summary
 *   ops->purge(c, dest, before_ms, limit, &n, &err);  -- retention, one bounded chunk
 *   ops->close(c);
 *
 * Reading back (joey serve's record page), on any thread, its own short connection:
 *   ops->read_key(app, root, prefix, dest, key, limit, fn, ctx, &err);
 *
 * Idempotence: (destination, run_id, record_key, attempt) is unique (PostgreSQL: the
 * primary key; SQLite and MySQL: a unique index beside a rowid / AUTO_INCREMENT id, so
 * the rows themselves are appended), and rows already there are skipped (ON CONFLICT
 * DO NOTHING / ON DUPLICATE KEY), so writing the same rows again, after a crash,
 * changes nothing. A summary is keyed by
 * (destination, run_id) and replaced.
 * Every failure is JERR_IO naming the app and the table, with the database's message as
 * detail; the connection may be unusable afterwards (close it and connect again).
 */
#ifndef JOEY_SYNCLOG_DB_H
#define JOEY_SYNCLOG_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "config/config.h"

#define SYNCLOG_SCHEMA_VERSION 1
/* Rows per INSERT statement (a transaction holds all the rows of one call). */
#define SYNCLOG_INSERT_ROWS 500
/* The hint of a log server that cannot be reached: the read-back's, and the writer's. */
#define SYNCLOG_CONNECT_HINT "check that the server is running and the app's host, port, user and password"
#define SYNCLOG_WRITE_CONNECT_HINT SYNCLOG_CONNECT_HINT "; the rows are kept and written by a later run"

/* One record outcome (everything borrowed for the call). */
struct synclog_row {
	int64_t run_id;
	const char *destination;
	struct slice key;       /* the record key as text */
	const char *operation;  /* create, update, delete, unsubscribe, enrich */
	const char *changed;    /* JSON array of changed fields, or NULL */
	const char *status;     /* sent, failed, not_in_braze */
	const char *error_code; /* NULL unless failed */
	const char *error;      /* NULL unless failed */
	int attempt;            /* 1 + failed attempts before this one */
	int64_t at_ms;          /* when joey learnt the outcome (epoch ms) */
};

/* A run's summary (borrowed for the call). */
struct synclog_run {
	int64_t run_id;
	const char *destination, *model, *trigger, *status;
	int64_t started_ms, finished_ms; /* finished 0: still running (NULL) */
	int64_t records_read;            /* < 0: unknown (NULL) */
	uint64_t created, updated, deleted, unsubscribed, unchanged, failed, not_in_braze;
	uint64_t requests, retries;
	const char *error;      /* NULL: none */
	const char *log_status; /* "writing", "complete", "incomplete" */
	uint64_t log_rows;      /* record rows of this run handed to the log so far */
};

/*
 * One row of a record's history read back from sync_records (read_key), with the
 * run's trigger from sync_runs; strings borrowed for the callback, NULL for SQL NULL.
 */
struct synclog_hit {
	int64_t run_id;
	int attempt;
	const char *operation, *changed, *status, *error_code, *error;
	int64_t at_ms;       /* logged_at */
	const char *trigger; /* sync_runs.run_trigger; NULL when the summary has none (yet) */
};
typedef enum jerr (*synclog_hit_fn)(void *ctx, const struct synclog_hit *h, struct jerror *err);
/* A read (connect and query together) gives up after about this long. */
#define SYNCLOG_READ_TIMEOUT_MS 3000

struct synclog_db;

struct synclog_db_ops {
	const char *app_type;
	/*
	 * Connect to app (borrowed; file paths relative to root) for writing and create the
	 * tables named prefix + sync_runs/sync_records/sync_meta if they are missing. A
	 * log schema newer than SYNCLOG_SCHEMA_VERSION is refused. On failure *out is NULL.
	 */
	enum jerr (*connect)(const struct cfg_app *app, const char *root, const char *prefix,
			     struct synclog_db **out, struct jerror *err);
	/* Insert rows (skipping those already there) in one transaction, all or nothing. */
	enum jerr (*write_records)(struct synclog_db *c, const struct synclog_row *rows, size_t n,
				   struct jerror *err);
	/* Insert or replace the summary of (run->destination, run->run_id). */
	enum jerr (*write_run)(struct synclog_db *c, const struct synclog_run *run, struct jerror *err);
	/*
	 * Retention: delete the runs of destination (borrowed) that started before
	 * before_ms, oldest first: their record rows (found by the unique key's prefix, no
	 * other index needed) and then their summary; at most limit rows in all per call,
	 * each statement its own transaction. *deleted says how many went; call again while
	 * it is limit.
	 */
	enum jerr (*purge)(struct synclog_db *c, const char *destination, int64_t before_ms, size_t limit,
			   uint64_t *deleted, struct jerror *err);
	void (*close)(struct synclog_db *c);
	/*
	 * The newest rows (at most limit) of record key (its text, borrowed) of destination
	 * (borrowed) in the log of app (borrowed), newest first, to fn; on a connection of
	 * its own, read-only (nothing is created: a log whose tables or SQLite file do not
	 * exist yet has no rows), the key a bound parameter, connect and query bounded by
	 * about SYNCLOG_READ_TIMEOUT_MS. Keys are compared as the writer stored them
	 * (cleaned text; MySQL: cut at 512 bytes). Failure: JERR_IO naming the app (the
	 * database's message as detail), or what fn returned; rows already given stay given.
	 */
	enum jerr (*read_key)(const struct cfg_app *app, const char *root, const char *prefix,
			      const char *destination, struct slice key, size_t limit, synclog_hit_fn fn,
			      void *ctx, struct jerror *err);
};

extern const struct synclog_db_ops synclog_db_sqlite, synclog_db_postgres, synclog_db_mysql;

/* The writer for an app type ("sqlite", "postgres", "mysql"), or NULL. */
const struct synclog_db_ops *synclog_db_for_app(const char *app_type);

/* ---- shared by the writers (db.c) ---- */

/* "2026-12-06 22:10:00.123" (UTC) for epoch ms, into buf (at least 32 bytes). */
void synclog_time_text(int64_t ms, char *buf, size_t size);
/*
 * text made valid UTF-8 without NUL bytes (each bad byte becomes '?'), into sb: what a
 * PostgreSQL or MySQL text column can hold. Appends.
 */
void synclog_clean_text(struct strbuf *sb, const char *s, size_t len);
/* A table prefix is letters, digits and '_', starting with a letter or '_', at most 40. */
bool synclog_prefix_ok(const char *prefix);
/* Now, as epoch milliseconds (wall clock). */
int64_t synclog_now_ms(void);
/* An app option as text: strings as they are, numbers and booleans as their JSON text; NULL if unset or empty. */
const char *synclog_app_opt(const struct cfg_app *app, const char *key);

/* The columns of the tables, in the order the writers bind them. */
#define SYNCLOG_RECORD_COLS 10
extern const char *const synclog_record_cols[SYNCLOG_RECORD_COLS];
#define SYNCLOG_RUN_COLS 21
extern const char *const synclog_run_cols[SYNCLOG_RUN_COLS];
/* Scratch space for the text of one row's values. */
struct synclog_vals {
	const char *v[SYNCLOG_RUN_COLS]; /* NULL: SQL NULL */
	char num[SYNCLOG_RUN_COLS][32];
	struct strbuf clean[4];          /* cleaned text (synclog_clean_text) */
};
void synclog_vals_init(struct synclog_vals *x);
void synclog_vals_release(struct synclog_vals *x);
/*
 * The values of a record row or a summary as text, in column order, into x (valid
 * until the next call on x). clean: make text valid UTF-8 (PostgreSQL, MySQL).
 * Times are synclog_time_text; now_ms is the summary's logged_at.
 */
void synclog_record_values(const struct synclog_row *r, bool clean, struct synclog_vals *x);
void synclog_run_values(const struct synclog_run *r, int64_t now_ms, bool clean, struct synclog_vals *x);
/* Appends "INSERT INTO <prefix><table> (<cols[0]>, ..." (without the closing parenthesis). */
void synclog_add_insert_head(struct strbuf *sb, const char *prefix, const char *table, const char *const *cols,
			     int n);
/*
 * The read of read_key: "SELECT run_id, attempt, operation, changed_fields, status,
 * error_code, error_message, <at>, run_trigger FROM ... WHERE destination = <ph[0]> AND
 * record_key = <ph[1]> ORDER BY ... LIMIT <ph[2]>", at: the dialect's expression of
 * r.logged_at as synclog_time_text's text. Appends.
 */
#define SYNCLOG_HIT_COLS 9
void synclog_add_read_sql(struct strbuf *sb, const char *prefix, const char *at, const char *const ph[3]);
/* A row of that read as text (v[i] NULL: SQL NULL) into *h (borrowing v); false: not a row of ours. */
bool synclog_hit_from_text(const char *const v[SYNCLOG_HIT_COLS], struct synclog_hit *h);
/* synclog_time_text's text (more or fewer fraction digits allowed) to epoch ms; false: not one. */
bool synclog_time_parse(const char *s, int64_t *ms);
/* Appends the summary's upsert: "<col> = excluded.<col>, ..." for every column after the key (PostgreSQL, SQLite). */
void synclog_add_run_excluded(struct strbuf *sb);
/*
 * The schema version read from <prefix>sync_meta of the log database at where (a
 * server's name): JERR_OK when this joey writes that version or a later one, else
 * JERR_IO, err saying so with a hint.
 */
enum jerr synclog_check_version(const char *app_id, const char *prefix, const char *where, int version,
				struct jerror *err) JOEY_WUR;

#endif
