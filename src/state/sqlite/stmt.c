/*
 * stmt.c: the SQLite state store's statements and errors: the SQL of the cached
 * statements, preparing, binding, stepping and resetting them, reading their columns,
 * one-off queries, and SQLite's result codes turned into messages a user can act on.
 * Owns the statements it caches in struct sq_state (finalized by close in open.c).
 * Called by every other file of src/state/sqlite/ (sqlite_internal.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "state/schema.h"
#include "state/sqlite/sqlite_internal.h"

#define ROW_COLUMNS                                                                        \
	"key, payload, hash, in_scope, pending, attempts, last_error, braze_exists, "      \
	"checked_at, confirmed_at, updated_at"

/* The columns of a row the diff compares (state_cursor_lean; CL_* in sqlite_internal.h). */
#define LEAN_COLUMNS "key, payload, hash, in_scope, pending, attempts, braze_exists, checked_at"

static const char *const stmt_sql[S__COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_GET] = "SELECT " ROW_COLUMNS " FROM records WHERE dest_id = ?1 AND key = ?2",
	[S_COUNT] = "SELECT count(*) FROM records WHERE dest_id = ?1 AND in_scope = 1",
	[S_PUT] = "INSERT INTO records (dest_id, key, payload, hash, in_scope, pending, attempts,"
		  " last_error, confirmed_at, updated_at)"
		  " VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, NULL, CASE WHEN ?4 = zeroblob(16) THEN NULL ELSE ?6 END, ?6)"
		  " ON CONFLICT (dest_id, key) DO UPDATE SET payload = excluded.payload,"
		  " hash = excluded.hash, in_scope = excluded.in_scope, pending = 0, attempts = 0,"
		  " last_error = NULL, confirmed_at = excluded.confirmed_at,"
		  " updated_at = excluded.updated_at",
	[S_DELETE] = "DELETE FROM records WHERE dest_id = ?1 AND key = ?2",
	[S_FAIL] = "INSERT INTO records (dest_id, key, payload, hash, in_scope, pending, attempts,"
		   " last_error, updated_at)"
		   " VALUES (?1, ?2, ?5, zeroblob(16), 0, 1, 1, ?3, ?4)"
		   " ON CONFLICT (dest_id, key) DO UPDATE SET pending = 1,"
		   " attempts = attempts + 1, last_error = excluded.last_error,"
		   " payload = CASE WHEN ?5 = '' THEN payload ELSE ?5 END,"
		   " updated_at = excluded.updated_at",
	[S_EXISTS] = "INSERT INTO records (dest_id, key, payload, hash, in_scope, braze_exists,"
		     " checked_at, updated_at)"
		     " VALUES (?1, ?2, '', zeroblob(16), 0, ?3, ?4, ?5)"
		     " ON CONFLICT (dest_id, key) DO UPDATE SET"
		     " braze_exists = excluded.braze_exists, checked_at = excluded.checked_at,"
		     " pending = 0, attempts = 0, last_error = NULL,"
		     " updated_at = excluded.updated_at",
	[S_RUN_START] = "INSERT INTO runs (dest_id, kind, status, started_at)"
			" VALUES (?1, ?2, 'running', ?3)",
	[S_RUN_FINISH] = "UPDATE runs SET status = ?2, finished_at = ?3, created = ?4,"
			 " updated = ?5, deleted = ?6, unsubscribed = ?7, unchanged = ?8,"
			 " failed = ?9, skipped = ?10, requests = ?11, retries = ?12,"
			 " throttled = ?13, data_points = ?14, error = ?15 WHERE id = ?1",
	[S_LEDGER_ADD] = "INSERT INTO ledger (run_id, dest_id, key, error, attempts, at)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[S_LOCK_GET] = "SELECT holder, host, pid, token, acquired_at, heartbeat_at"
		       " FROM locks WHERE dest_id = ?1",
	[S_LOCK_SET] = "INSERT OR REPLACE INTO locks (dest_id, holder, host, pid, token,"
		       " acquired_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
	[S_LOCK_BEAT] = "UPDATE locks SET heartbeat_at = ?3 WHERE dest_id = ?1 AND token = ?2",
	[S_LOCK_DEL] = "DELETE FROM locks WHERE dest_id = ?1 AND token = ?2",
	[S_CUR_FIRST] = "SELECT " ROW_COLUMNS " FROM records WHERE dest_id = ?1"
			" ORDER BY key LIMIT ?2",
	[S_CUR_NEXT] = "SELECT " ROW_COLUMNS " FROM records WHERE dest_id = ?1 AND key > ?3"
		       " ORDER BY key LIMIT ?2",
	[S_CUR_FROM] = "SELECT " ROW_COLUMNS " FROM records WHERE dest_id = ?1 AND key >= ?3"
		       " ORDER BY key LIMIT ?2",
	[S_CUR_LEAN_FIRST] = "SELECT " LEAN_COLUMNS " FROM records WHERE dest_id = ?1"
			     " ORDER BY key LIMIT ?2",
	[S_CUR_LEAN_NEXT] = "SELECT " LEAN_COLUMNS " FROM records WHERE dest_id = ?1 AND key > ?3"
			    " ORDER BY key LIMIT ?2",
	[S_CUR_LEAN_FROM] = "SELECT " LEAN_COLUMNS " FROM records WHERE dest_id = ?1 AND key >= ?3"
			    " ORDER BY key LIMIT ?2",
	/* NULL bound: open (keys are never NULL) */
	[S_COUNT_RANGE] = "SELECT count(*) FROM records WHERE dest_id = ?1 AND in_scope = 1"
			  " AND (?2 IS NULL OR key >= ?2) AND (?3 IS NULL OR key < ?3)",
	[S_MARK_GET] = "SELECT value, (SELECT value FROM meta WHERE key = 'mark basis ' || ?1)"
		       " FROM marks WHERE schedule_id = ?1",
	[S_MARK_BASIS_SET] = "INSERT INTO meta (key, value) VALUES ('mark basis ' || ?1, ?2)"
			     " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[S_MARK_SET] = "INSERT INTO marks (schedule_id, value, updated_at) VALUES (?1, ?2, ?3)"
		       " ON CONFLICT (schedule_id) DO UPDATE SET value = excluded.value,"
		       " updated_at = excluded.updated_at",
	[S_OUTBOX_PUT] = "INSERT INTO synclog_outbox (dest_id, run_id, body, created_at) VALUES (?1, ?2, ?3, ?4)",
	[S_OUTBOX_NEXT] = "SELECT id, run_id, body FROM synclog_outbox WHERE dest_id = ?1 AND id > ?2 ORDER BY id LIMIT 1",
	[S_OUTBOX_DEL] = "DELETE FROM synclog_outbox WHERE dest_id = ?1 AND id = ?2",
	[S_OUTBOX_COUNT] = "SELECT count(*), coalesce(sum(length(body)), 0) FROM synclog_outbox WHERE dest_id = ?1",
	[S_SYNCLOG_SET] = "INSERT INTO synclog_runs (run_id, dest_id, status, written, pending, error, updated_at)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (run_id) DO UPDATE SET"
			  " dest_id = excluded.dest_id, status = excluded.status, written = excluded.written,"
			  " pending = excluded.pending, error = excluded.error, updated_at = excluded.updated_at",
	[S_SYNCLOG_GET] = "SELECT dest_id, status, written, pending, error, updated_at FROM synclog_runs WHERE run_id = ?1",
	[S_SYNCLOG_UNFINISHED] = "SELECT run_id FROM synclog_runs WHERE dest_id = ?1 AND status <> 'complete'"
				 " ORDER BY run_id LIMIT ?2",
	[S_RUN_PROGRESS] = "UPDATE runs SET created = ?2, updated = ?3, deleted = ?4, unsubscribed = ?5,"
			   " unchanged = ?6, failed = ?7, skipped = ?8, requests = ?9, retries = ?10,"
			   " throttled = ?11, data_points = ?12 WHERE id = ?1 AND status = 'running'",
};


const char *sq_stmt_sql(enum stmt_id id)
{
	return stmt_sql[id];
}

/* ---- errors ---- */

void sq_dir_of(const char *path, struct strbuf *out)
{
	const char *slash = strrchr(path, '/');
	strbuf_reset(out);
	if (!slash)
		strbuf_addstr(out, ".");
	else if (slash == path)
		strbuf_addstr(out, "/");
	else
		strbuf_add(out, path, (size_t)(slash - path));
}

bool sq_is_perm_errno(int e) { return e == EACCES || e == EPERM || e == EROFS; }
		      
		      void sq_hint_read_only(struct sq_state *sq, struct jerror *err)
{
	struct strbuf dir = STRBUF_INIT;
	sq_dir_of(sq->base.path, &dir);
	jerror_hint(err, "make the directory \"%s\" and the files in it writable by this user, "
			 "or pass --state with a writable path", dir.buf);
	strbuf_release(&dir);
}

/* See sqlite_internal.h; the message is made from fmt and ap. */
enum jerr sq_db_verror(struct sq_state *sq, int rc, struct jerror *err, const char *fmt, va_list ap)
{
	struct strbuf msg = STRBUF_INIT, sqlmsg = STRBUF_INIT;
	int sys = sq->db ? sqlite3_system_errno(sq->db) : 0;
	enum jerr code = JERR_STATE;
	enum { R_OTHER, R_FULL, R_READONLY, R_BUSY, R_CORRUPT } reason = R_OTHER;

	strbuf_addstr(&sqlmsg, sq->db ? sqlite3_errmsg(sq->db) : sqlite3_errstr(rc));
	strbuf_vaddf(&msg, fmt, ap);

	switch (rc & 0xff) {
	case SQLITE_FULL:
		reason = R_FULL;
		break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		reason = R_READONLY;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		reason = R_BUSY;
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		reason = R_CORRUPT;
		break;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
		if (sys == ENOSPC)
			reason = R_FULL;
		else if (sq_is_perm_errno(sys))
			reason = R_READONLY;
		break;
	default:
		break;
	}
	switch (reason) {
	case R_FULL:
		jerror_set(err, code, "%s: the disk is full", msg.buf);
		jerror_detail(err, "SQLite: %s", sqlmsg.buf);
		jerror_hint(err, "free space on the disk holding the state store; what was "
				 "committed before stays intact, and the next run re-sends the rest");
		break;
	case R_READONLY:
		jerror_set(err, code, "%s: the state store is read-only", msg.buf);
		jerror_detail(err, "SQLite: %s%s%s", sqlmsg.buf, sys ? "; " : "",
			      sys ? strerror(sys) : "");
		sq_hint_read_only(sq, err);
		break;
	case R_BUSY:
		code = JERR_STATE_BUSY;
		jerror_set(err, code, "%s: it is locked by another process", msg.buf);
		jerror_detail(err, "SQLite: %s (waited %d ms)", sqlmsg.buf, STATE_BUSY_TIMEOUT_MS);
		jerror_hint(err, "another joey process is writing the state store; try again "
				 "when it is done");
		break;
	case R_CORRUPT:
		jerror_set(err, code, "%s: the file is corrupt or not a joey state store", msg.buf);
		jerror_detail(err, "SQLite: %s", sqlmsg.buf);
		jerror_hint(err, "restore it from a backup, or move it away to start afresh "
				 "(the next run then re-sends every record)");
		break;
	case R_OTHER:
		jerror_set(err, code, "%s", msg.buf);
		jerror_detail(err, "SQLite: %s (error %d)%s%s", sqlmsg.buf, rc, sys ? "; " : "",
			      sys ? strerror(sys) : "");
		break;
	}
	strbuf_release(&msg);
	strbuf_release(&sqlmsg);
	return code;
}

enum jerr sq_db_error(struct sq_state *sq, int rc, struct jerror *err, const char *fmt, ...)
{
	enum jerr code;
	va_list ap;
	va_start(ap, fmt);
	code = sq_db_verror(sq, rc, err, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- cached statements ---- */

enum jerr sq_stmt_get(struct sq_state *sq, enum stmt_id id, sqlite3_stmt **out,
		      struct jerror *err)
{
	int rc;
	enum jerr ret;
	*out = NULL;
	/* the puts kept so far go first: every other statement sees them */
	if (id != S_PUT && id != S_ROLLBACK && sq->n_pend && (ret = sq_flush_puts(sq, err)))
		return ret;
	if (!sq->stmt[id]) {
		rc = sqlite3_prepare_v3(sq->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					&sq->stmt[id], NULL);
		if (rc != SQLITE_OK)
			return sq_db_error(sq, rc, err, "could not prepare a query on state store \"%s\"",
					   sq->base.path);
	}
	*out = sq->stmt[id];
	return JERR_OK;
}

enum jerr sq_stmt_dest(struct sq_state *sq, enum stmt_id id, const char *dest_id, sqlite3_stmt **out,
		       struct jerror *err)
{
	enum jerr ret = sq_stmt_get(sq, id, out, err);
	if (!ret)
		sqlite3_bind_text(*out, 1, dest_id, -1, SQLITE_STATIC);
	return ret;
}

enum jerr sq_stmt_record(struct sq_state *sq, enum stmt_id id, const char *dest_id, const struct rkey *key,
			 sqlite3_stmt **out, struct jerror *err)
{
	enum jerr ret = sq_stmt_dest(sq, id, dest_id, out, err);
	if (!ret)
		sq_bind_key(*out, 2, key);
	return ret;
}

void sq_stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

void sq_bind_key(sqlite3_stmt *s, int idx, const struct rkey *key)
{
	if (key->is_int)
		sqlite3_bind_int64(s, idx, key->i);
	else
		sqlite3_bind_text(s, idx, key->text.ptr ? key->text.ptr : "", (int)key->text.len,
				  SQLITE_STATIC);
}

void sq_bind_str(sqlite3_stmt *s, int idx, const char *str)
{
	if (str)
		sqlite3_bind_text(s, idx, str, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, idx);
}

void sq_bind_counts(sqlite3_stmt *s, int idx, const struct run_counts *c)
{
	const uint64_t counts[] = { c->created, c->updated, c->deleted, c->unsubscribed,
				    c->unchanged, c->failed, c->skipped, c->requests,
				    c->retries, c->throttled, c->data_points };
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		sqlite3_bind_int64(s, idx + (int)i, counts[i] > INT64_MAX ? INT64_MAX : (int64_t)counts[i]);
}

enum jerr sq_step_write(struct sq_state *sq, sqlite3_stmt *s, const char *what,
			const char *dest_id, const struct rkey *key, struct jerror *err)
{
	int rc = sqlite3_step(s);
	enum jerr ret = JERR_OK;
	if (rc != SQLITE_DONE) {
		struct strbuf k = STRBUF_INIT;
		if (key)
			ret = sq_db_error(sq, rc, err,
					  "could not %s record \"%s\" of destination \"%s\" in state store \"%s\"",
					  what, state_key_str(key, &k), dest_id, sq->base.path);
		else
			ret = sq_db_error(sq, rc, err, "could not %s in state store \"%s\"", what,
					  sq->base.path);
		strbuf_release(&k);
	}
	sq_stmt_done(s);
	return ret;
}

enum jerr sq_step_writef(struct sq_state *sq, sqlite3_stmt *s, struct jerror *err, const char *fmt, ...)
{
	int rc = sqlite3_step(s);
	enum jerr ret = JERR_OK;
	if (rc != SQLITE_DONE) {
		struct strbuf what = STRBUF_INIT;
		va_list ap;
		va_start(ap, fmt);
		strbuf_vaddf(&what, fmt, ap);
		va_end(ap);
		ret = sq_db_error(sq, rc, err, "could not %s in state store \"%s\"", what.buf, sq->base.path);
		strbuf_release(&what);
	}
	sq_stmt_done(s);
	return ret;
}

enum jerr sq_step_row(struct sq_state *sq, sqlite3_stmt *s, bool need_row, bool *row, struct jerror *err,
		      const char *fmt, ...)
{
	int rc = sqlite3_step(s);
	enum jerr ret = JERR_OK;
	va_list ap;
	*row = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW || (rc == SQLITE_DONE && !need_row))
		return JERR_OK;
	va_start(ap, fmt);
	ret = sq_db_verror(sq, rc, err, fmt, ap);
	va_end(ap);
	return ret;
}

/* ---- reading columns ---- */

void sq_decode_key(sqlite3_stmt *s, int col, struct rkey *k, char *buf)
{
	if (sqlite3_column_type(s, col) == SQLITE_INTEGER) {
		k->is_int = true;
		k->i = sqlite3_column_int64(s, col);
		k->text = (struct slice){ buf, state_key_digits(k->i, buf) };
	} else {
		const char *t = (const char *)sqlite3_column_text(s, col);
		k->is_int = false;
		k->i = 0;
		k->text = (struct slice){ t ? t : "", (size_t)sqlite3_column_bytes(s, col) };
	}
}

int64_t sq_column_time(sqlite3_stmt *s, int col)
{
	return sqlite3_column_type(s, col) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, col);
}

void sq_decode_row(sqlite3_stmt *s, struct state_row *row, char *keybuf)
{
	const char *t;

	sq_decode_head(s, row, keybuf);
	t = (const char *)sqlite3_column_text(s, C_LAST_ERROR);
	row->last_error = (struct slice){ t ? t : "", t ? (size_t)sqlite3_column_bytes(s, C_LAST_ERROR) : 0 };
	row->braze_exists = sqlite3_column_type(s, C_EXISTS) == SQLITE_NULL ? -1
			    : sqlite3_column_int(s, C_EXISTS) != 0;
	row->checked_at = sq_column_time(s, C_CHECKED_AT);
	row->confirmed = sqlite3_column_type(s, C_CONFIRMED_AT) != SQLITE_NULL;
	row->confirmed_at = sq_column_time(s, C_CONFIRMED_AT);
	row->updated_at = sq_column_time(s, C_UPDATED_AT);
}

/* ---- one-off statements ---- */

enum jerr sq_exec_sql(struct sq_state *sq, const char *sql, struct jerror *err, const char *what)
{
	enum jerr ret;
	if (sq->n_pend && (ret = sq_flush_puts(sq, err)))
		return ret;
	int rc = sqlite3_exec(sq->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sq_db_error(sq, rc, err, "could not %s state store \"%s\"", what, sq->base.path);
	return JERR_OK;
}

int sq_query_int(struct sq_state *sq, const char *sql, int64_t *out, bool *found)
{
	sqlite3_stmt *s = NULL;
	struct jerror e = JERROR_INIT;
	if (sq->n_pend && sq_flush_puts(sq, &e)) { /* a failed write: the transaction fails */
		jerror_release(&e);
		*found = false;
		return SQLITE_ERROR;
	}
	int rc = sqlite3_prepare_v2(sq->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	*found = false;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*found = true;
		if (sqlite3_column_type(s, 0) != SQLITE_INTEGER)
			*found = false, *out = -1;
		else
			*out = sqlite3_column_int64(s, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	return rc;
}
uint64_t sq_column_count(sqlite3_stmt *s, int col)
{
	int64_t v = sqlite3_column_int64(s, col);
	return v > 0 ? (uint64_t)v : 0;
}

enum jerr sq_list_rows(struct sq_state *sq, sqlite3_stmt *s, const char *what,
		       enum jerr (*each)(sqlite3_stmt *s, void *arg, struct jerror *err),
		       void *arg, struct jerror *err)
{
	enum jerr ret = JERR_OK;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if ((ret = each(s, arg, err)))
			break;
	if (!ret && rc != SQLITE_DONE)
		ret = sq_db_error(sq, rc, err, "could not list %s in state store \"%s\"", what,
				  sq->base.path);
	sqlite3_finalize(s);
	return ret;
}

struct run_list_arg {
	state_run_fn fn;
	void *ctx;
};
