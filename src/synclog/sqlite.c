/* sqlite.c: the sync log writer for an SQLite database (an app of type sqlite, opened read-write). */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "config/paths.h"
#include "synclog/db.h"

struct synclog_db {
	sqlite3 *db;
	char *path, *app_id, *prefix;
	sqlite3_stmt *ins_record, *ins_run;
};

static enum jerr db_err(struct synclog_db *c, struct jerror *err, const char *what)
{
	jerror_set(err, JERR_IO, "sync log app \"%s\": could not %s in \"%s\"", c->app_id, what, c->path);
	jerror_detail(err, "SQLite: %s", sqlite3_errmsg(c->db));
	if (sqlite3_errcode(c->db) == SQLITE_FULL)
		jerror_hint(err, "the disk is full: free space, or lower syncLogRetentionDays");
	else if (sqlite3_errcode(c->db) == SQLITE_BUSY)
		jerror_hint(err, "another process holds the database's write lock; the rows are written by a later run");
	return JERR_IO;
}

static enum jerr exec(struct synclog_db *c, const char *sql, const char *what, struct jerror *err)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(c, err, what);
	return JERR_OK;
}

/* Appends "INSERT INTO <prefix><table> (<cols>) VALUES (?1, ..., ?n) ": the conflict clause is the caller's. */
static void add_insert(struct strbuf *sql, const char *prefix, const char *table, const char *const *cols, int n)
{
	synclog_add_insert_head(sql, prefix, table, cols, n);
	strbuf_addstr(sql, ") VALUES (");
	for (int i = 0; i < n; i++)
		strbuf_addf(sql, "%s?%d", i ? ", " : "", i + 1);
	strbuf_addstr(sql, ") ");
}

/* sql (an insert of the log) prepared into *st, kept for the connection. */
static enum jerr prepare_insert(struct synclog_db *c, const struct strbuf *sql, sqlite3_stmt **st, struct jerror *err)
{
	if (sqlite3_prepare_v2(c->db, sql->buf, -1, st, NULL) != SQLITE_OK)
		return db_err(c, err, "prepare the insert into the sync log");
	return JERR_OK;
}

static void sq_close(struct synclog_db *c)
{
	if (!c)
		return;
	sqlite3_finalize(c->ins_record);
	sqlite3_finalize(c->ins_run);
	if (c->db && !sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(c->db);
	free(c->path);
	free(c->app_id);
	free(c->prefix);
	free(c);
}

static enum jerr sq_connect(const struct cfg_app *app, const char *root, const char *prefix, struct synclog_db **out,
			    struct jerror *err)
{
	const char *file = cfg_options_str(&app->options, "file");
	struct synclog_db *c = xcalloc(1, sizeof(*c));
	struct strbuf sql = STRBUF_INIT, path = STRBUF_INIT;
	enum jerr rc = JERR_OK;
	const char *P = prefix;

	*out = NULL;
	c->app_id = xstrdup(app->id);
	c->prefix = xstrdup(prefix);
	if (!file || !*file) {
		c->path = xstrdup("");
		rc = jerror_set(err, JERR_CONFIG, "sync log app \"%s\": option \"file\" is required", app->id);
		goto out;
	}
	config_add_path(&path, root, file);
	c->path = strbuf_detach(&path, NULL);
	if (sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		rc = jerror_set(err, JERR_IO, "sync log app \"%s\": cannot open database \"%s\" for writing", app->id,
				c->path);
		jerror_detail(err, "%s", c->db ? sqlite3_errmsg(c->db) : "out of memory");
		jerror_hint(err, "the file (or its directory, to create it) must be writable by joey");
		goto out;
	}
	sqlite3_busy_timeout(c->db, 5000);
	/*
	 * Rows arrive in joey's key order, which is not text order ('10' < '9'): the unique
	 * index takes them all over its range. A 32 MiB page cache (this connection's) holds
	 * the index of a few million rows, so inserts do not wait for reads.
	 */
	sqlite3_exec(c->db, "PRAGMA cache_size = -32768", NULL, NULL, NULL);
	strbuf_addf(&sql,
		    "CREATE TABLE IF NOT EXISTS %ssync_meta (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);\n"
		    "INSERT OR IGNORE INTO %ssync_meta VALUES ('schema_version', '%d');\n"
		    "CREATE TABLE IF NOT EXISTS %ssync_runs (\n"
		    "  destination TEXT NOT NULL, run_id INTEGER NOT NULL, model TEXT, run_trigger TEXT,\n"
		    "  status TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, records_read INTEGER,\n"
		    "  created INTEGER NOT NULL, updated INTEGER NOT NULL, deleted INTEGER NOT NULL,\n"
		    "  unsubscribed INTEGER NOT NULL, unchanged INTEGER NOT NULL, failed INTEGER NOT NULL,\n"
		    "  not_in_braze INTEGER NOT NULL, requests INTEGER NOT NULL, retries INTEGER NOT NULL,\n"
		    "  error TEXT, log_status TEXT NOT NULL, log_rows INTEGER NOT NULL, logged_at TEXT NOT NULL,\n"
		    "  PRIMARY KEY (destination, run_id));\n"
		    "CREATE TABLE IF NOT EXISTS %ssync_records (\n"
		    "  destination TEXT NOT NULL, run_id INTEGER NOT NULL, record_key TEXT NOT NULL,\n"
		    "  attempt INTEGER NOT NULL, operation TEXT NOT NULL, changed_fields TEXT, status TEXT NOT NULL,\n"
		    "  error_code TEXT, error_message TEXT, logged_at TEXT NOT NULL,\n"
		    "  UNIQUE (destination, run_id, record_key, attempt));\n",
		    P, P, SYNCLOG_SCHEMA_VERSION, P, P);
	if ((rc = exec(c, "BEGIN IMMEDIATE", "start a transaction", err)))
		goto out;
	if ((rc = exec(c, sql.buf, "create the sync log tables", err))) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	if ((rc = exec(c, "COMMIT", "create the sync log tables", err)))
		goto out;
	/* the version the tables were made at */
	sqlite3_stmt *s = NULL;
	strbuf_reset(&sql);
	strbuf_addf(&sql, "SELECT value FROM %ssync_meta WHERE name = 'schema_version'", P);
	if (sqlite3_prepare_v2(c->db, sql.buf, -1, &s, NULL) != SQLITE_OK) {
		rc = db_err(c, err, "read the sync log schema version");
		goto out;
	}
	int version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_finalize(s);
	if (version > SYNCLOG_SCHEMA_VERSION) {
		rc = jerror_set(err, JERR_IO, "sync log app \"%s\": table %ssync_meta in \"%s\" says schema version %d, "
				"this joey writes version %d", app->id, P, c->path, version, SYNCLOG_SCHEMA_VERSION);
		jerror_hint(err, "upgrade joey, or set syncLogTablePrefix to log into other tables");
		goto out;
	}
	strbuf_reset(&sql);
	add_insert(&sql, P, "sync_records", synclog_record_cols, SYNCLOG_RECORD_COLS);
	strbuf_addstr(&sql, "ON CONFLICT (destination, run_id, record_key, attempt) DO NOTHING");
	if ((rc = prepare_insert(c, &sql, &c->ins_record, err)))
		goto out;
	strbuf_reset(&sql);
	add_insert(&sql, P, "sync_runs", synclog_run_cols, SYNCLOG_RUN_COLS);
	strbuf_addstr(&sql, "ON CONFLICT (destination, run_id) DO UPDATE SET ");
	synclog_add_run_excluded(&sql);
	if ((rc = prepare_insert(c, &sql, &c->ins_run, err)))
		goto out;
	*out = c;
	c = NULL;
out:
	strbuf_release(&sql);
	strbuf_release(&path);
	sq_close(c);
	return rc;
}

static void bind_vals(sqlite3_stmt *s, const struct synclog_vals *x, int n)
{
	for (int i = 0; i < n; i++)
		if (x->v[i])
			sqlite3_bind_text(s, i + 1, x->v[i], -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, i + 1);
}

/* Bind text or NULL (borrowed until the step). */
static void bind_opt(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

static enum jerr sq_write_records(struct synclog_db *c, const struct synclog_row *rows, size_t n, struct jerror *err)
{
	sqlite3_stmt *s = c->ins_record;
	enum jerr rc;
	char what[64], at[32];
	snprintf(what, sizeof(what), "write to table %ssync_records", c->prefix);
	if ((rc = exec(c, "BEGIN IMMEDIATE", what, err)))
		return rc;
	/* the values as they are, in synclog_record_cols order (SQLite text holds any bytes) */
	for (size_t i = 0; i < n && !rc; i++) {
		const struct synclog_row *r = &rows[i];
		synclog_time_text(r->at_ms, at, sizeof(at));
		sqlite3_bind_text(s, 1, r->destination, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, r->run_id);
		sqlite3_bind_text(s, 3, r->key.ptr ? r->key.ptr : "", (int)r->key.len, SQLITE_STATIC);
		sqlite3_bind_int(s, 4, r->attempt);
		sqlite3_bind_text(s, 5, r->operation, -1, SQLITE_STATIC);
		bind_opt(s, 6, r->changed);
		sqlite3_bind_text(s, 7, r->status, -1, SQLITE_STATIC);
		bind_opt(s, 8, r->error_code);
		bind_opt(s, 9, r->error);
		sqlite3_bind_text(s, 10, at, -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE)
			rc = db_err(c, err, what);
		sqlite3_reset(s);
	}
	if (rc) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	if ((rc = exec(c, "COMMIT", what, err)))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static enum jerr sq_write_run(struct synclog_db *c, const struct synclog_run *run, struct jerror *err)
{
	struct synclog_vals x;
	enum jerr rc = JERR_OK;
	char what[64];
	snprintf(what, sizeof(what), "write to table %ssync_runs", c->prefix);
	synclog_vals_init(&x);
	synclog_run_values(run, synclog_now_ms(), false, &x);
	bind_vals(c->ins_run, &x, SYNCLOG_RUN_COLS);
	if (sqlite3_step(c->ins_run) != SQLITE_DONE)
		rc = db_err(c, err, what);
	sqlite3_reset(c->ins_run);
	sqlite3_clear_bindings(c->ins_run);
	synclog_vals_release(&x);
	return rc;
}

static enum jerr sq_purge(struct synclog_db *c, const char *destination, int64_t before_ms, size_t limit,
			  uint64_t *deleted, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	sqlite3_stmt *old = NULL, *recs = NULL, *run = NULL;
	char before[32];
	enum jerr rc = JERR_OK;
	const char *P = c->prefix;
	*deleted = 0;
	synclog_time_text(before_ms, before, sizeof(before));
	strbuf_addf(&sql, "SELECT run_id FROM %ssync_runs WHERE destination = ?1 AND started_at < ?2 ORDER BY run_id LIMIT 1", P);
	if (sqlite3_prepare_v2(c->db, sql.buf, -1, &old, NULL) != SQLITE_OK)
		goto fail;
	strbuf_reset(&sql);
	strbuf_addf(&sql, "DELETE FROM %ssync_records WHERE rowid IN (SELECT rowid FROM %ssync_records WHERE "
			  "destination = ?1 AND run_id = ?2 LIMIT ?3)", P, P);
	if (sqlite3_prepare_v2(c->db, sql.buf, -1, &recs, NULL) != SQLITE_OK)
		goto fail;
	strbuf_reset(&sql);
	strbuf_addf(&sql, "DELETE FROM %ssync_runs WHERE destination = ?1 AND run_id = ?2", P);
	if (sqlite3_prepare_v2(c->db, sql.buf, -1, &run, NULL) != SQLITE_OK)
		goto fail;
	while (*deleted < limit) {
		sqlite3_bind_text(old, 1, destination, -1, SQLITE_STATIC);
		sqlite3_bind_text(old, 2, before, -1, SQLITE_STATIC);
		int step = sqlite3_step(old);
		int64_t run_id = step == SQLITE_ROW ? sqlite3_column_int64(old, 0) : 0;
		sqlite3_reset(old);
		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW)
			goto fail;
		size_t want = limit - (size_t)*deleted;
		sqlite3_bind_text(recs, 1, destination, -1, SQLITE_STATIC);
		sqlite3_bind_int64(recs, 2, run_id);
		sqlite3_bind_int64(recs, 3, (sqlite3_int64)want);
		if (sqlite3_step(recs) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(recs);
		size_t n = (size_t)sqlite3_changes(c->db);
		*deleted += n;
		if (n == want)
			break; /* the run may have more: the next call goes on */
		sqlite3_bind_text(run, 1, destination, -1, SQLITE_STATIC);
		sqlite3_bind_int64(run, 2, run_id);
		if (sqlite3_step(run) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(run);
		*deleted += 1;
	}
	goto out;
fail:
	rc = db_err(c, err, "delete old rows (syncLogRetentionDays)");
out:
	sqlite3_finalize(old);
	sqlite3_finalize(recs);
	sqlite3_finalize(run);
	strbuf_release(&sql);
	return rc;
}

/* The read's deadline (sqlite3_progress_handler): non-zero stops the statement. */
static int past_deadline(void *arg)
{
	return synclog_now_ms() > *(const int64_t *)arg;
}

static enum jerr sq_read_key(const struct cfg_app *app, const char *root, const char *prefix, const char *destination,
			     struct slice key, size_t limit, synclog_hit_fn fn, void *ctx, struct jerror *err)
{
	const char *file = cfg_options_str(&app->options, "file");
	struct strbuf path = STRBUF_INIT, sql = STRBUF_INIT;
	static const char *const ph[3] = { "?1", "?2", "?3" };
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	enum jerr rc = JERR_OK;
	int64_t deadline = synclog_now_ms() + SYNCLOG_READ_TIMEOUT_MS;
	int step;

	if (!file || !*file)
		return jerror_set(err, JERR_CONFIG, "sync log app \"%s\": option \"file\" is required", app->id);
	config_add_path(&path, root, file);
	if (access(path.buf, F_OK) && errno == ENOENT)
		goto out; /* no run has written the log yet */
	if (sqlite3_open_v2(path.buf, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = jerror_set(err, JERR_IO, "sync log app \"%s\": cannot open database \"%s\" for reading", app->id,
				path.buf);
		jerror_detail(err, "%s", db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(db, SYNCLOG_READ_TIMEOUT_MS / 3);
	sqlite3_progress_handler(db, 1000, past_deadline, &deadline);
	synclog_add_read_sql(&sql, prefix, "r.logged_at", ph);
	if (sqlite3_prepare_v2(db, sql.buf, -1, &s, NULL) != SQLITE_OK) {
		if (!strncmp(sqlite3_errmsg(db), "no such table", 13))
			goto out; /* the tables are made by a run's first write */
		goto fail;
	}
	sqlite3_bind_text(s, 1, destination, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key.ptr ? key.ptr : "", (int)key.len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		const char *v[SYNCLOG_HIT_COLS];
		struct synclog_hit h;
		for (int i = 0; i < SYNCLOG_HIT_COLS; i++)
			v[i] = (const char *)sqlite3_column_text(s, i);
		if (!synclog_hit_from_text(v, &h))
			continue; /* a row a person wrote by hand: not ours to show */
		if ((rc = fn(ctx, &h, err)))
			goto out;
	}
	if (step == SQLITE_DONE)
		goto out;
fail:
	if (sqlite3_errcode(db) == SQLITE_INTERRUPT)
		rc = jerror_set(err, JERR_IO, "sync log app \"%s\": reading table %ssync_records in \"%s\" took more "
				"than %d ms", app->id, prefix, path.buf, SYNCLOG_READ_TIMEOUT_MS);
	else
		rc = jerror_set(err, JERR_IO, "sync log app \"%s\": could not read table %ssync_records in \"%s\"",
				app->id, prefix, path.buf);
	jerror_detail(err, "SQLite: %s", sqlite3_errmsg(db));
	if (sqlite3_errcode(db) == SQLITE_INTERRUPT)
		jerror_hint(err, "an index on (destination, record_key) of the table makes this read fast");
out:
	sqlite3_finalize(s);
	sqlite3_close(db);
	strbuf_release(&sql);
	strbuf_release(&path);
	return rc;
}

const struct synclog_db_ops synclog_db_sqlite = {
	.app_type = "sqlite",
	.connect = sq_connect,
	.write_records = sq_write_records,
	.write_run = sq_write_run,
	.purge = sq_purge,
	.close = sq_close,
	.read_key = sq_read_key,
};
