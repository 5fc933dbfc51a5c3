/* sqlite.c: the state store in an SQLite file: open and migrate, records, runs, ledger, locks. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/fsutil.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "state/backend.h"
#include "state/schema.h"

/*
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
	S_COUNT_RANGE,
	S_MARK_GET,
	S_MARK_SET,
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

#define ROW_COLUMNS                                                                        \
	"key, payload, hash, in_scope, pending, attempts, last_error, braze_exists, "      \
	"checked_at, confirmed_at, updated_at"

static const char *const stmt_sql[S__COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_GET] = "SELECT " ROW_COLUMNS " FROM records WHERE dest_id = ?1 AND key = ?2",
	[S_COUNT] = "SELECT count(*) FROM records WHERE dest_id = ?1 AND in_scope = 1",
	[S_PUT] = "INSERT INTO records (dest_id, key, payload, hash, in_scope, pending, attempts,"
		  " last_error, confirmed_at, updated_at)"
		  " VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, NULL, ?6, ?6)"
		  " ON CONFLICT (dest_id, key) DO UPDATE SET payload = excluded.payload,"
		  " hash = excluded.hash, in_scope = excluded.in_scope, pending = 0, attempts = 0,"
		  " last_error = NULL, confirmed_at = excluded.confirmed_at,"
		  " updated_at = excluded.updated_at",
	[S_DELETE] = "DELETE FROM records WHERE dest_id = ?1 AND key = ?2",
	[S_FAIL] = "INSERT INTO records (dest_id, key, payload, hash, in_scope, pending, attempts,"
		   " last_error, updated_at)"
		   " VALUES (?1, ?2, '', zeroblob(16), 0, 1, 1, ?3, ?4)"
		   " ON CONFLICT (dest_id, key) DO UPDATE SET pending = 1,"
		   " attempts = attempts + 1, last_error = excluded.last_error,"
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
	/* NULL bound: open (keys are never NULL) */
	[S_COUNT_RANGE] = "SELECT count(*) FROM records WHERE dest_id = ?1 AND in_scope = 1"
			  " AND (?2 IS NULL OR key >= ?2) AND (?3 IS NULL OR key < ?3)",
	[S_MARK_GET] = "SELECT value FROM marks WHERE schedule_id = ?1",
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

/* Columns of ROW_COLUMNS. */
enum { C_KEY, C_PAYLOAD, C_HASH, C_IN_SCOPE, C_PENDING, C_ATTEMPTS, C_LAST_ERROR,
       C_EXISTS, C_CHECKED_AT, C_CONFIRMED_AT, C_UPDATED_AT };

struct sq_state {
	struct state base; /* first: a struct state * is a struct sq_state * */
	sqlite3 *db;
	sqlite3_stmt *stmt[S__COUNT];
	sqlite3_stmt *load[STATE_MAX_TABLES]; /* state_load_row, per table */
};

static struct sq_state *sq_of(struct state *st)
{
	return (struct sq_state *)st;
}

/* ---- small helpers ---- */

/* The directory part of path ("." if none). */
static void dir_of(const char *path, struct strbuf *out)
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

static bool is_perm_errno(int e) { return e == EACCES || e == EPERM || e == EROFS; }

static void hint_read_only(struct sq_state *sq, struct jerror *err)
{
	struct strbuf dir = STRBUF_INIT;
	dir_of(sq->base.path, &dir);
	jerror_hint(err, "make the directory \"%s\" and the files in it writable by this user, "
			 "or pass --state with a writable path", dir.buf);
	strbuf_release(&dir);
}

/*
 * Fill err from SQLite result rc: the caller's message (which names the file),
 * followed by what went wrong in words the user can act on; SQLite's own message is
 * the detail. Returns the code set (JERR_STATE or JERR_STATE_BUSY).
 */
static enum jerr db_error(struct sq_state *sq, int rc, struct jerror *err, const char *fmt, ...)
	JOEY_PRINTF(4, 5);
static enum jerr db_error(struct sq_state *sq, int rc, struct jerror *err, const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT, sqlmsg = STRBUF_INIT;
	int sys = sq->db ? sqlite3_system_errno(sq->db) : 0;
	enum jerr code = JERR_STATE;
	enum { R_OTHER, R_FULL, R_READONLY, R_BUSY, R_CORRUPT } reason = R_OTHER;
	va_list ap;

	strbuf_addstr(&sqlmsg, sq->db ? sqlite3_errmsg(sq->db) : sqlite3_errstr(rc));
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);

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
		else if (is_perm_errno(sys))
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
		hint_read_only(sq, err);
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

static enum jerr get_stmt(struct sq_state *sq, enum stmt_id id, sqlite3_stmt **out,
			  struct jerror *err)
{
	int rc;
	*out = NULL;
	if (!sq->stmt[id]) {
		rc = sqlite3_prepare_v3(sq->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					&sq->stmt[id], NULL);
		if (rc != SQLITE_OK)
			return db_error(sq, rc, err, "could not prepare a query on state store \"%s\"",
					sq->base.path);
	}
	*out = sq->stmt[id];
	return JERR_OK;
}

/* Make a cached statement ready for its next use. */
static void stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

static void bind_key(sqlite3_stmt *s, int idx, const struct rkey *key)
{
	if (key->is_int)
		sqlite3_bind_int64(s, idx, key->i);
	else
		sqlite3_bind_text(s, idx, key->text.ptr ? key->text.ptr : "", (int)key->text.len,
				  SQLITE_STATIC);
}

static void bind_str(sqlite3_stmt *s, int idx, const char *str)
{
	if (str)
		sqlite3_bind_text(s, idx, str, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, idx);
}

/* Step a write statement to completion; on failure err gets what, key and dest. */
static enum jerr step_write(struct sq_state *sq, sqlite3_stmt *s, const char *what,
			    const char *dest_id, const struct rkey *key, struct jerror *err)
{
	int rc = sqlite3_step(s);
	enum jerr ret = JERR_OK;
	if (rc != SQLITE_DONE) {
		struct strbuf k = STRBUF_INIT;
		if (key)
			ret = db_error(sq, rc, err,
				       "could not %s record \"%s\" of destination \"%s\" in state store \"%s\"",
				       what, state_key_str(key, &k), dest_id, sq->base.path);
		else
			ret = db_error(sq, rc, err, "could not %s in state store \"%s\"", what,
				       sq->base.path);
		strbuf_release(&k);
	}
	stmt_done(s);
	return ret;
}

static void decode_key(sqlite3_stmt *s, int col, struct rkey *k, char *buf)
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

static int64_t column_time(sqlite3_stmt *s, int col)
{
	return sqlite3_column_type(s, col) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, col);
}

/* Fill row from the current result of s (ROW_COLUMNS); row borrows s's memory. */
static void decode_row(sqlite3_stmt *s, struct state_row *row, char *keybuf)
{
	const void *hash;
	const char *t;

	decode_key(s, C_KEY, &row->key, keybuf);
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
	t = (const char *)sqlite3_column_text(s, C_LAST_ERROR);
	row->last_error = (struct slice){ t ? t : "", t ? (size_t)sqlite3_column_bytes(s, C_LAST_ERROR) : 0 };
	row->braze_exists = sqlite3_column_type(s, C_EXISTS) == SQLITE_NULL ? -1
			    : sqlite3_column_int(s, C_EXISTS) != 0;
	row->checked_at = column_time(s, C_CHECKED_AT);
	row->confirmed = sqlite3_column_type(s, C_CONFIRMED_AT) != SQLITE_NULL;
	row->confirmed_at = column_time(s, C_CONFIRMED_AT);
	row->updated_at = column_time(s, C_UPDATED_AT);
}

/* ---- open, identify, migrate ---- */

static enum jerr exec_sql(struct sq_state *sq, const char *sql, struct jerror *err, const char *what)
{
	int rc = sqlite3_exec(sq->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return db_error(sq, rc, err, "could not %s state store \"%s\"", what, sq->base.path);
	return JERR_OK;
}

/* A one-integer query; *found false when it returns no row. */
static int query_int(struct sq_state *sq, const char *sql, int64_t *out, bool *found)
{
	sqlite3_stmt *s = NULL;
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

/*
 * The schema version recorded in meta (0 if there is no meta table yet).
 * *invalid is set when meta exists but holds no sensible version.
 */
static int read_version(struct sq_state *sq, int64_t *version, bool *invalid)
{
	int64_t n = 0;
	bool found;
	int rc = query_int(sq, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
			   &n, &found);
	*version = 0;
	*invalid = false;
	if (rc != SQLITE_OK || n == 0)
		return rc;
	rc = query_int(sq, "SELECT value FROM meta WHERE key = 'schema_version'", version, &found);
	if (rc == SQLITE_OK && (!found || *version < 1))
		*invalid = true;
	return rc;
}

/*
 * Check that the file is a joey state store (or a fresh, empty database) and read its
 * schema version. *fresh: an empty database with no application id and no tables.
 */
static enum jerr identify(struct sq_state *sq, int64_t *version, bool *fresh, struct jerror *err)
{
	const char *path = sq->base.path;
	int64_t app_id = 0, n_tables = 0;
	bool found, invalid;
	int rc;

	*fresh = false;
	rc = query_int(sq, "PRAGMA application_id", &app_id, &found);
	if (rc == SQLITE_OK)
		rc = query_int(sq, "SELECT count(*) FROM sqlite_master", &n_tables, &found);
	if ((rc & 0xff) == SQLITE_NOTADB) {
		jerror_set(err, JERR_STATE, "\"%s\" is not a joey state store", path);
		jerror_detail(err, "SQLite: %s", sqlite3_errmsg(sq->db));
		jerror_hint(err, "pass --state with the path of a joey state store, or move this "
				 "file away to start afresh");
		return JERR_STATE;
	}
	if (rc != SQLITE_OK)
		return db_error(sq, rc, err, "could not open state store \"%s\"", path);
	if (app_id == 0 && n_tables == 0) {
		*fresh = true;
		*version = 0;
		return JERR_OK;
	}
	if (app_id != STATE_APPLICATION_ID) {
		jerror_set(err, JERR_STATE, "\"%s\" is not a joey state store", path);
		jerror_detail(err, "it is an SQLite database with application_id 0x%08" PRIx64
				   " and %" PRId64 " tables (a joey state store has 0x%08x)",
			      (uint64_t)(uint32_t)app_id, n_tables, STATE_APPLICATION_ID);
		jerror_hint(err, "pass --state with the path of a joey state store, or move this "
				 "file away to start afresh");
		return JERR_STATE;
	}
	rc = read_version(sq, version, &invalid);
	if (rc != SQLITE_OK)
		return db_error(sq, rc, err, "could not read the schema version of state store \"%s\"",
				path);
	if (invalid) {
		jerror_set(err, JERR_STATE, "state store \"%s\" has no valid schema version", path);
		jerror_detail(err, "table meta has no positive integer \"schema_version\"");
		jerror_hint(err, "restore it from a backup, or move it away to start afresh "
				 "(the next run then re-sends every record)");
		return JERR_STATE;
	}
	if (*version > STATE_SCHEMA_VERSION) {
		jerror_set(err, JERR_STATE_VERSION,
			   "state store \"%s\" was written by a newer joey (schema version %" PRId64
			   ", this joey knows up to %d)",
			   path, *version, STATE_SCHEMA_VERSION);
		jerror_hint(err, "upgrade joey, or pass --state with another file");
		return JERR_STATE_VERSION;
	}
	return JERR_OK;
}

/* Apply every migration step after version from, one transaction each. */
static enum jerr migrate(struct sq_state *sq, int64_t from, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	enum jerr ret = JERR_OK;
	int64_t v = from;

	while (v < (int64_t)state_n_migrations) {
		int64_t cur;
		bool invalid;
		int rc = sqlite3_exec(sq->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = read_version(sq, &cur, &invalid); /* another process may have done it */
		if (rc == SQLITE_OK && cur > v) {
			rc = sqlite3_exec(sq->db, "COMMIT", NULL, NULL, NULL);
			v = cur;
			if (rc == SQLITE_OK)
				continue;
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(sq->db, state_migrations[v], NULL, NULL, NULL);
		if (rc == SQLITE_OK) {
			strbuf_reset(&sql);
			strbuf_addf(&sql,
				    "INSERT INTO meta (key, value) VALUES ('schema_version', %" PRId64 ")"
				    " ON CONFLICT (key) DO UPDATE SET value = excluded.value;"
				    " PRAGMA application_id = %d;",
				    v + 1, STATE_APPLICATION_ID);
			rc = sqlite3_exec(sq->db, sql.buf, NULL, NULL, NULL);
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(sq->db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			ret = db_error(sq, rc, err,
				       "could not upgrade state store \"%s\" to schema version %" PRId64,
				       sq->base.path, v + 1);
			if (!sqlite3_get_autocommit(sq->db))
				sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL);
			break;
		}
		v++;
	}
	strbuf_release(&sql);
	return ret;
}

/*
 * mkdir -p of path's directory. The directories made are 0700: the store holds the
 * emails and names of every synced user (an existing directory is left as it is).
 */
static enum jerr make_parent_dirs(const char *path, struct jerror *err)
{
	struct strbuf failed = STRBUF_INIT;
	int e = make_file_dirs(path, 0700, 0700, &failed);
	if (e) {
		jerror_set(err, JERR_STATE, "could not create directory \"%s\" for state store \"%s\": %s", failed.buf,
			   path, strerror(e));
		if (is_perm_errno(e))
			jerror_hint(err, "the state directory is read-only: make it writable, "
					 "or pass --state with a writable path");
	}
	strbuf_release(&failed);
	return e ? JERR_STATE : JERR_OK;
}

/*
 * Only the owner may read the store: the file is made 0600 before SQLite opens it, so
 * the -wal and -shm files SQLite makes beside it get the same mode (SQLite gives them
 * the main file's permissions). An existing file, or -wal/-shm/-journal left by an
 * older joey, that group or others may read is brought down to the owner's bits (with
 * a warning). Best effort: what fails here (a read-only file, no such directory) is
 * left to sqlite3_open_v2 to report.
 */
static void make_private(const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	struct strbuf p = STRBUF_INIT;
	struct stat sb;

	if (!strcmp(path, ":memory:") || !strncmp(path, "file:", 5))
		return;
	/*
	 * By name only: no descriptor on an existing file. Closing any descriptor of the
	 * database, -wal or -shm file drops every POSIX lock this process holds on it,
	 * those of its other SQLite connections too (a job's, serve's alert thread's); the
	 * locks gone, another process's last connection may checkpoint and remove the WAL
	 * under them, and the store is corrupt ("database disk image is malformed").
	 * A file that does not exist yet has no descriptor and no lock to lose.
	 */
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		strbuf_reset(&p);
		strbuf_addf(&p, "%s%s", path, suffixes[i]);
		if (lstat(p.buf, &sb) != 0) {
			if (!i && errno == ENOENT) {
				int fd = open(p.buf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_CREAT | O_EXCL, 0600);
				if (fd >= 0)
					close(fd);
			}
			continue;
		}
		if (S_ISREG(sb.st_mode) && (sb.st_mode & 077) && sb.st_uid == geteuid()) {
			if (chmod(p.buf, sb.st_mode & 0700) == 0)
				log_warn("state store \"%s\": %s was readable by other users; now mode %04o",
					 path, p.buf, (unsigned)(sb.st_mode & 0700));
		}
	}
	strbuf_release(&p);
}

static void close_db(struct sq_state *sq)
{
	for (int i = 0; i < S__COUNT; i++) {
		sqlite3_finalize(sq->stmt[i]);
		sq->stmt[i] = NULL;
	}
	for (size_t i = 0; i < STATE_MAX_TABLES; i++) {
		sqlite3_finalize(sq->load[i]);
		sq->load[i] = NULL;
	}
	if (sq->db) {
		if (!sqlite3_get_autocommit(sq->db))
			sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL);
		if (sqlite3_close(sq->db) != SQLITE_OK) {
			log_error("state store \"%s\": %s", sq->base.path, sqlite3_errmsg(sq->db));
			sqlite3_close_v2(sq->db);
		}
		sq->db = NULL;
	}
}

static enum jerr connect_db(struct sq_state *sq, const char *file, int flags, struct jerror *err)
{
	int rc = sqlite3_open_v2(file, &sq->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return db_error(sq, rc, err, "could not open state store \"%s\"", sq->base.path);
	sqlite3_extended_result_codes(sq->db, 1);
	sqlite3_busy_timeout(sq->db, STATE_BUSY_TIMEOUT_MS);
	return JERR_OK;
}

/*
 * Reading a WAL database needs its -shm file, which a read-only directory cannot get.
 * If the directory is not writable by us and there is no -wal file, no WAL writer
 * can be at work (it would need both files) and the main file holds every commit,
 * so it is opened immutable (no locks, no -shm). *uri receives the URI, or stays
 * empty when the ordinary open applies.
 */
static void readonly_uri(const char *path, struct strbuf *uri)
{
	struct strbuf dir = STRBUF_INIT, wal = STRBUF_INIT;
	struct stat sb;
	strbuf_reset(uri);
	dir_of(path, &dir);
	strbuf_addf(&wal, "%s-wal", path);
	if (access(dir.buf, W_OK) != 0 && stat(wal.buf, &sb) != 0 && errno == ENOENT) {
		strbuf_addstr(uri, "file:");
		for (const char *p = path; *p; p++) {
			if (*p == '%' || *p == '?' || *p == '#')
				strbuf_addf(uri, "%%%02X", (unsigned char)*p);
			else
				strbuf_addch(uri, *p);
		}
		strbuf_addstr(uri, "?immutable=1");
	}
	strbuf_release(&dir);
	strbuf_release(&wal);
}

/* An empty store in memory, refusing writes (READONLY_OR_EMPTY on a missing file). */
static enum jerr open_empty_db(struct sq_state *sq, struct jerror *err)
{
	enum jerr ret;
	close_db(sq);
	ret = connect_db(sq, ":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err);
	if (!ret)
		ret = exec_sql(sq, "PRAGMA foreign_keys = ON", err, "configure");
	if (!ret)
		ret = migrate(sq, 0, err);
	sq->base.readonly = true;
	return ret;
}

static void sq_close(struct state *st)
{
	struct sq_state *sq = sq_of(st);
	close_db(sq);
	state_base_release(&sq->base);
	free(sq);
}

static struct sq_state *sq_new(const char *name)
{
	struct sq_state *sq = xcalloc(1, sizeof(*sq));
	state_base_init(&sq->base, &state_sqlite, name);
	return sq;
}

static enum jerr sq_open_empty(const char *name, struct state **out, struct jerror *err)
{
	struct sq_state *sq = sq_new(name);
	enum jerr ret = open_empty_db(sq, err);
	*out = NULL;
	if (ret) {
		sq_close(&sq->base);
		return ret;
	}
	sq->base.version = STATE_SCHEMA_VERSION;
	*out = &sq->base;
	return JERR_OK;
}

static enum jerr sq_open(const char *path, enum state_open_mode mode, struct state **out,
			 struct jerror *err)
{
	struct sq_state *sq = sq_new(path);
	bool create = mode == STATE_OPEN_CREATE, fresh = false;
	int64_t version = 0;
	enum jerr ret;
	struct stat sb;

	*out = NULL;
	if (!create && strcmp(path, ":memory:") != 0 && stat(path, &sb) != 0) {
		if (errno == ENOENT && mode == STATE_OPEN_READONLY_OR_EMPTY) {
			ret = open_empty_db(sq, err);
			goto done;
		}
		if (errno == ENOENT) {
			ret = jerror_set(err, JERR_STATE, "state store \"%s\" does not exist", path);
			jerror_hint(err, "run 'joey run' once, or pass --state");
		} else {
			ret = jerror_set(err, JERR_STATE, "could not open state store \"%s\": %s", path,
					 strerror(errno));
		}
		goto done;
	}
	if (create && (ret = make_parent_dirs(path, err)))
		goto done;
	if (create) {
		make_private(path);
		ret = connect_db(sq, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err);
	} else {
		struct strbuf uri = STRBUF_INIT;
		readonly_uri(path, &uri);
		ret = connect_db(sq, uri.len ? uri.buf : path,
				 SQLITE_OPEN_READONLY | (uri.len ? SQLITE_OPEN_URI : 0), err);
		strbuf_release(&uri);
	}
	if (ret)
		goto done;
	if (create && sqlite3_db_readonly(sq->db, "main") == 1) {
		ret = jerror_set(err, JERR_STATE, "could not open state store \"%s\" for writing: "
						  "the state store is read-only", path);
		hint_read_only(sq, err);
		goto done;
	}
	if ((ret = identify(sq, &version, &fresh, err)))
		goto done;
	if (!create) {
		sq->base.readonly = true;
		if (fresh) {
			if (mode == STATE_OPEN_READONLY_OR_EMPTY) {
				ret = open_empty_db(sq, err);
			} else {
				ret = jerror_set(err, JERR_STATE, "state store \"%s\" is empty", path);
				jerror_hint(err, "run 'joey run' once, or pass --state");
			}
			goto done;
		}
		if (version < 1) {
			ret = jerror_set(err, JERR_STATE,
					 "state store \"%s\" has schema version %" PRId64
					 ", this joey needs %d",
					 path, version, STATE_SCHEMA_VERSION);
			jerror_hint(err, "run 'joey run' once to upgrade it");
			goto done;
		}
		/* an older schema is read as it is (state_mark_get copes with no marks) */
		ret = exec_sql(sq, "PRAGMA foreign_keys = ON", err, "configure");
		if (!ret)
			sq->base.version = (int)version;
		goto done_version;
	}
	/*
	 * A new file gets 16 KiB pages (SQLite's default is 4 KiB): a store is mostly
	 * records of a few hundred bytes written in key order, and every page is written
	 * twice (WAL, then checkpoint), one system call each. A quarter of the calls cut
	 * the CPU of writing a first sync's records by about a quarter (bench/state_put.c).
	 * The size is fixed when the first page is written, so older files keep theirs.
	 */
	if (fresh && (ret = exec_sql(sq, "PRAGMA page_size = 16384", err, "configure")))
		goto done;
	/* synchronous=NORMAL is safe with WAL: see the design note at the top. */
	if ((ret = exec_sql(sq, "PRAGMA journal_mode = WAL", err, "configure")) ||
	    (ret = exec_sql(sq, "PRAGMA synchronous = NORMAL", err, "configure")) ||
	    (ret = exec_sql(sq, "PRAGMA foreign_keys = ON", err, "configure")))
		goto done;
	ret = migrate(sq, version, err);
done:
	if (!ret)
		sq->base.version = STATE_SCHEMA_VERSION;
done_version:
	if (ret) {
		sq_close(&sq->base);
		return ret;
	}
	*out = &sq->base;
	return JERR_OK;
}

static void sq_display(const char *path, struct strbuf *out)
{
	strbuf_addstr(out, path);
}

static enum jerr sq_limit_size(struct state *st, uint64_t max_bytes, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	struct strbuf sql = STRBUF_INIT;
	int64_t page_size = 4096;
	bool found;
	enum jerr ret;
	int rc = query_int(sq, "PRAGMA page_size", &page_size, &found);
	if (rc != SQLITE_OK)
		return db_error(sq, rc, err, "could not read the page size of state store \"%s\"",
				st->path);
	strbuf_addf(&sql, "PRAGMA max_page_count = %" PRIu64,
		    max_bytes / (uint64_t)(page_size > 0 ? page_size : 4096) + 1);
	ret = exec_sql(sq, sql.buf, err, "limit the size of");
	strbuf_release(&sql);
	return ret;
}

/* ---- reading ---- */

static enum jerr sq_cursor_fill(struct state_cursor *cur, bool *end, struct jerror *err)
{
	struct sq_state *sq = sq_of(cur->st);
	sqlite3_stmt *s = NULL;
	/* a seek and a range's first batch start at a key (inclusive), a walk after the last */
	const struct rkey *at = cur->has_seek ? &cur->seek : cur->have_last ? NULL : cur->has_from ? &cur->from : NULL;
	enum jerr ret = get_stmt(sq, at ? S_CUR_FROM : cur->have_last ? S_CUR_NEXT : S_CUR_FIRST, &s, err);
	char keybuf[STATE_KEYBUF_SIZE];
	int rc = SQLITE_DONE;

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, cur->dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, (int)cur->want);
	if (at)
		bind_key(s, 3, at);
	else if (cur->have_last)
		bind_key(s, 3, &cur->last);
	while (!state_cursor_full(cur) && cur->n < cur->want && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct state_row r;
		decode_row(s, &r, keybuf);
		state_cursor_push(cur, &r);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_error(sq, rc, err,
			       "could not read records of destination \"%s\" from state store \"%s\"",
			       cur->dest_id, cur->st->path);
	/* a short batch that ran to SQLITE_DONE was the last one */
	*end = rc == SQLITE_DONE && cur->n < cur->want;
	stmt_done(s);
	return ret;
}

static enum jerr sq_count(struct state *st, const char *dest_id, uint64_t *in_scope,
			  struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret = get_stmt(sq, S_COUNT, &s, err);
	int rc;
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*in_scope = (uint64_t)sqlite3_column_int64(s, 0);
	else
		ret = db_error(sq, rc, err,
			       "could not count records of destination \"%s\" in state store \"%s\"",
			       dest_id, st->path);
	stmt_done(s);
	return ret;
}

static enum jerr sq_count_range(struct state *st, const char *dest_id, const struct rkey *lo,
				const struct rkey *hi, uint64_t *in_scope, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret = get_stmt(sq, S_COUNT_RANGE, &s, err);
	int rc;
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	if (lo)
		bind_key(s, 2, lo);
	if (hi)
		bind_key(s, 3, hi);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*in_scope = (uint64_t)sqlite3_column_int64(s, 0);
	else
		ret = db_error(sq, rc, err,
			       "could not count records of destination \"%s\" in state store \"%s\"",
			       dest_id, st->path);
	stmt_done(s);
	return ret;
}

static enum jerr sq_get(struct state *st, const char *dest_id, const struct rkey *key,
			bool *found, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret = get_stmt(sq, S_GET, &s, err);
	int rc;

	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 2, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		char keybuf[STATE_KEYBUF_SIZE];
		struct state_row r;
		decode_row(s, &r, keybuf);
		state_keep_row(st, &r); /* the statement is reset below */
		*found = true;
	} else if (rc != SQLITE_DONE) {
		struct strbuf k = STRBUF_INIT;
		ret = db_error(sq, rc, err,
			       "could not read record \"%s\" of destination \"%s\" from state store \"%s\"",
			       state_key_str(key, &k), dest_id, st->path);
		strbuf_release(&k);
	}
	stmt_done(s);
	return ret;
}

/* ---- transactions ---- */

static bool sq_in_transaction(struct state *st)
{
	struct sq_state *sq = sq_of(st);
	return sq->db && !sqlite3_get_autocommit(sq->db);
}

static enum jerr sq_begin(struct state *st, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_BEGIN, &s, err)))
		return ret;
	return step_write(sq, s, "start a transaction", NULL, NULL, err);
}

static void sq_rollback(struct state *st)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	struct jerror e = JERROR_INIT;
	if (!sq_in_transaction(st))
		return;
	if (get_stmt(sq, S_ROLLBACK, &s, &e) ||
	    step_write(sq, s, "roll back a transaction", NULL, NULL, &e)) {
		log_error("%s", e.msg.buf);
		/* last resort: nothing of the transaction may survive */
		sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL);
	}
	jerror_release(&e);
}

static enum jerr sq_commit(struct state *st, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_COMMIT, &s, err)))
		return ret;
	ret = step_write(sq, s, "commit a transaction", NULL, NULL, err);
	if (ret)
		sq_rollback(st);
	return ret;
}

/* ---- writes ---- */

static enum jerr sq_put(struct state *st, const char *dest_id, const struct rkey *key,
			struct slice payload, const unsigned char hash[STATE_HASH_LEN],
			bool in_scope, int64_t now, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_PUT, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 2, key);
	sqlite3_bind_text(s, 3, payload.ptr ? payload.ptr : "", (int)payload.len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, hash, STATE_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int(s, 5, in_scope);
	sqlite3_bind_int64(s, 6, now);
	return step_write(sq, s, "store", dest_id, key, err);
}

static enum jerr sq_del(struct state *st, const char *dest_id, const struct rkey *key,
			struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_DELETE, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 2, key);
	return step_write(sq, s, "delete", dest_id, key, err);
}

static enum jerr sq_mark_failed(struct state *st, const char *dest_id, const struct rkey *key,
				const char *error, int64_t now, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_FAIL, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 2, key);
	bind_str(s, 3, error);
	sqlite3_bind_int64(s, 4, now);
	return step_write(sq, s, "mark as failed", dest_id, key, err);
}

static enum jerr sq_set_exists(struct state *st, const char *dest_id, const struct rkey *key,
			       bool exists, int64_t checked_at, int64_t now, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_EXISTS, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 2, key);
	sqlite3_bind_int(s, 3, exists);
	sqlite3_bind_int64(s, 4, checked_at);
	sqlite3_bind_int64(s, 5, now);
	return step_write(sq, s, "record whether Braze has", dest_id, key, err);
}

/* ---- runs and ledger ---- */

static enum jerr sq_run_start(struct state *st, const char *dest_id, const char *kind,
			      int64_t now, int64_t *run_id, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	struct strbuf what = STRBUF_INIT;

	if ((ret = get_stmt(sq, S_RUN_START, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_str(s, 2, kind);
	sqlite3_bind_int64(s, 3, now);
	strbuf_addf(&what, "record the start of a %s of destination \"%s\"", kind, dest_id);
	ret = step_write(sq, s, what.buf, NULL, NULL, err);
	if (!ret)
		*run_id = sqlite3_last_insert_rowid(sq->db);
	strbuf_release(&what);
	return ret;
}

static enum jerr sq_run_finish(struct state *st, int64_t run_id, enum run_status status,
			       const struct run_counts *c, const char *error, int64_t now,
			       bool *found, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	struct strbuf what = STRBUF_INIT;
	const uint64_t counts[] = { c->created, c->updated, c->deleted, c->unsubscribed,
				    c->unchanged, c->failed, c->skipped, c->requests,
				    c->retries, c->throttled, c->data_points };

	if ((ret = get_stmt(sq, S_RUN_FINISH, &s, err)))
		return ret;
	sqlite3_bind_int64(s, 1, run_id);
	bind_str(s, 2, run_status_name(status));
	sqlite3_bind_int64(s, 3, now);
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		sqlite3_bind_int64(s, 4 + (int)i, counts[i] > INT64_MAX ? INT64_MAX : (int64_t)counts[i]);
	bind_str(s, 15, error);
	strbuf_addf(&what, "record the end of run %" PRId64, run_id);
	ret = step_write(sq, s, what.buf, NULL, NULL, err);
	*found = !ret && sqlite3_changes(sq->db) > 0;
	strbuf_release(&what);
	return ret;
}

static enum jerr sq_runs_abandon(struct state *st, const char *dest_id, int64_t now, uint64_t *n,
				 struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	int rc;

	rc = sqlite3_prepare_v2(sq->db,
				"UPDATE runs SET status = 'interrupted', finished_at = ?2, "
				"error = '" STATE_ABANDONED_ERROR "' "
				"WHERE dest_id = ?1 AND status = 'running'",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_error(sq, rc, err, "could not update the run history of state store \"%s\"",
				st->path);
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		*n = (uint64_t)sqlite3_changes(sq->db);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_error(sq, rc, err, "could not update the run history of state store \"%s\"",
				st->path);
	return JERR_OK;
}

static enum jerr sq_run_progress(struct state *st, int64_t run_id, const struct run_counts *c,
				 struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	struct strbuf what = STRBUF_INIT;
	const uint64_t counts[] = { c->created, c->updated, c->deleted, c->unsubscribed,
				    c->unchanged, c->failed, c->skipped, c->requests,
				    c->retries, c->throttled, c->data_points };

	if ((ret = get_stmt(sq, S_RUN_PROGRESS, &s, err)))
		return ret;
	sqlite3_bind_int64(s, 1, run_id);
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		sqlite3_bind_int64(s, 2 + (int)i, counts[i] > INT64_MAX ? INT64_MAX : (int64_t)counts[i]);
	strbuf_addf(&what, "record the progress of run %" PRId64, run_id);
	ret = step_write(sq, s, what.buf, NULL, NULL, err);
	strbuf_release(&what);
	return ret;
}

static enum jerr sq_runs_running(struct state *st, struct strbuf *ids, size_t *n, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(sq->db, "SELECT DISTINCT dest_id FROM runs WHERE status = 'running'", -1, &s,
				    NULL);
	*n = 0;
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 0);
		strbuf_add(ids, id ? id : "", id ? strlen(id) + 1 : 1);
		(*n)++;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_error(sq, rc, err, "could not read the run history of state store \"%s\"", st->path);
	return JERR_OK;
}

static enum jerr sq_ledger_add(struct state *st, int64_t run_id, const char *dest_id,
			       const struct rkey *key, const char *error, int attempts, int64_t now,
			       struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_LEDGER_ADD, &s, err)))
		return ret;
	if (run_id > 0)
		sqlite3_bind_int64(s, 1, run_id);
	else
		sqlite3_bind_null(s, 1);
	sqlite3_bind_text(s, 2, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 3, key);
	bind_str(s, 4, error);
	sqlite3_bind_int(s, 5, attempts);
	sqlite3_bind_int64(s, 6, now);
	return step_write(sq, s, "add to the error ledger the", dest_id, key, err);
}

static uint64_t column_count(sqlite3_stmt *s, int col)
{
	int64_t v = sqlite3_column_int64(s, col);
	return v > 0 ? (uint64_t)v : 0;
}

/* Step s, handing each row to decode; shared by the listings. */
static enum jerr list_rows(struct sq_state *sq, sqlite3_stmt *s, const char *what,
			   enum jerr (*each)(sqlite3_stmt *s, void *arg, struct jerror *err),
			   void *arg, struct jerror *err)
{
	enum jerr ret = JERR_OK;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if ((ret = each(s, arg, err)))
			break;
	if (!ret && rc != SQLITE_DONE)
		ret = db_error(sq, rc, err, "could not list %s in state store \"%s\"", what,
			       sq->base.path);
	sqlite3_finalize(s);
	return ret;
}

struct run_list_arg {
	state_run_fn fn;
	void *ctx;
};

static enum jerr each_run(sqlite3_stmt *s, void *varg, struct jerror *err)
{
	struct run_list_arg *a = varg;
	struct state_run_info r = { 0 };
	r.id = sqlite3_column_int64(s, 0);
	r.dest_id = (const char *)sqlite3_column_text(s, 1);
	r.kind = (const char *)sqlite3_column_text(s, 2);
	r.status = state_run_status_parse((const char *)sqlite3_column_text(s, 3));
	r.started_at = column_time(s, 4);
	r.finished_at = column_time(s, 5);
	r.counts.created = column_count(s, 6);
	r.counts.updated = column_count(s, 7);
	r.counts.deleted = column_count(s, 8);
	r.counts.unsubscribed = column_count(s, 9);
	r.counts.unchanged = column_count(s, 10);
	r.counts.failed = column_count(s, 11);
	r.counts.skipped = column_count(s, 12);
	r.counts.requests = column_count(s, 13);
	r.counts.retries = column_count(s, 14);
	r.counts.throttled = column_count(s, 15);
	r.counts.data_points = column_count(s, 16);
	r.error = (const char *)sqlite3_column_text(s, 17);
	if (!r.dest_id)
		r.dest_id = "";
	if (!r.kind)
		r.kind = "";
	return a->fn(a->ctx, &r, err);
}

static enum jerr sq_runs_list(struct state *st, const char *dest_id, size_t limit,
			      state_run_fn fn, void *ctx, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	struct strbuf sql = STRBUF_INIT;
	struct run_list_arg a = { fn, ctx };
	sqlite3_stmt *s = NULL;
	int rc;

	strbuf_addstr(&sql, "SELECT id, dest_id, kind, status, started_at, finished_at, created,"
			    " updated, deleted, unsubscribed, unchanged, failed, skipped, requests,"
			    " retries, throttled, data_points, error FROM runs");
	if (dest_id)
		strbuf_addstr(&sql, " WHERE dest_id = :dest");
	strbuf_addstr(&sql, " ORDER BY id DESC LIMIT :limit");
	rc = sqlite3_prepare_v2(sq->db, sql.buf, -1, &s, NULL);
	strbuf_release(&sql);
	if (rc != SQLITE_OK)
		return db_error(sq, rc, err, "could not list runs in state store \"%s\"", st->path);
	if (dest_id)
		sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, ":dest"), dest_id, -1,
				  SQLITE_STATIC);
	sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":limit"),
			   limit && limit < INT64_MAX ? (int64_t)limit : -1);
	return list_rows(sq, s, "runs", each_run, &a, err);
}

struct ledger_list_arg {
	state_ledger_fn fn;
	void *ctx;
	char keybuf[STATE_KEYBUF_SIZE];
};

static enum jerr each_ledger(sqlite3_stmt *s, void *varg, struct jerror *err)
{
	struct ledger_list_arg *a = varg;
	struct state_ledger_entry e = { 0 };
	e.id = sqlite3_column_int64(s, 0);
	e.run_id = column_time(s, 1);
	e.dest_id = (const char *)sqlite3_column_text(s, 2);
	decode_key(s, 3, &e.key, a->keybuf);
	e.error = (const char *)sqlite3_column_text(s, 4);
	e.attempts = sqlite3_column_int(s, 5);
	e.at = column_time(s, 6);
	if (!e.dest_id)
		e.dest_id = "";
	if (!e.error)
		e.error = "";
	return a->fn(a->ctx, &e, err);
}

static enum jerr sq_ledger_list(struct state *st, const char *dest_id, int64_t run_id,
				const struct rkey *key, size_t limit, state_ledger_fn fn, void *ctx,
				struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	struct strbuf sql = STRBUF_INIT;
	struct ledger_list_arg a = { .fn = fn, .ctx = ctx };
	const char *sep = " WHERE ";
	sqlite3_stmt *s = NULL;
	int rc;

	strbuf_addstr(&sql, "SELECT id, run_id, dest_id, key, error, attempts, at FROM ledger");
	if (dest_id) {
		strbuf_addf(&sql, "%sdest_id = :dest", sep);
		sep = " AND ";
	}
	if (key) {
		strbuf_addf(&sql, "%skey = :key", sep);
		sep = " AND ";
	}
	if (run_id > 0)
		strbuf_addf(&sql, "%srun_id = :run", sep);
	strbuf_addstr(&sql, " ORDER BY id DESC LIMIT :limit");
	rc = sqlite3_prepare_v2(sq->db, sql.buf, -1, &s, NULL);
	strbuf_release(&sql);
	if (rc != SQLITE_OK)
		return db_error(sq, rc, err, "could not list the error ledger in state store \"%s\"",
				st->path);
	if (dest_id)
		sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, ":dest"), dest_id, -1,
				  SQLITE_STATIC);
	if (key)
		bind_key(s, sqlite3_bind_parameter_index(s, ":key"), key);
	if (run_id > 0)
		sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":run"), run_id);
	sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":limit"),
			   limit && limit < INT64_MAX ? (int64_t)limit : -1);
	return list_rows(sq, s, "the error ledger", each_ledger, &a, err);
}

/* ---- locks (inside a BEGIN IMMEDIATE transaction: nobody else writes meanwhile) ---- */

static enum jerr sq_lock_get(struct state *st, const char *dest_id, struct state_lock_row *li,
			     struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret = get_stmt(sq, S_LOCK_GET, &s, err);
	int rc;
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	li->found = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW) {
		strbuf_reset(&li->holder);
		strbuf_reset(&li->host);
		strbuf_addstr(&li->holder, (const char *)sqlite3_column_text(s, 0));
		strbuf_addstr(&li->host, (const char *)sqlite3_column_text(s, 1));
		li->pid = sqlite3_column_int64(s, 2);
		li->token = sqlite3_column_int64(s, 3);
		li->acquired_at = sqlite3_column_int64(s, 4);
		li->heartbeat_at = sqlite3_column_int64(s, 5);
	} else if (rc != SQLITE_DONE) {
		ret = db_error(sq, rc, err,
			       "could not read the lock of destination \"%s\" in state store \"%s\"",
			       dest_id, st->path);
	}
	stmt_done(s);
	return ret;
}

static enum jerr sq_lock_put(struct state *st, const char *dest_id, const char *holder,
			     int64_t now, const struct state_lock_row *prev, bool *taken,
			     struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	struct strbuf what = STRBUF_INIT;
	sqlite3_stmt *s = NULL;
	enum jerr ret;

	(void)prev; /* the write lock of the transaction kept the row as it was read */
	*taken = false;
	if ((ret = get_stmt(sq, S_LOCK_SET, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_str(s, 2, holder);
	bind_str(s, 3, st->host);
	sqlite3_bind_int64(s, 4, (int64_t)getpid());
	sqlite3_bind_int64(s, 5, st->token);
	sqlite3_bind_int64(s, 6, now);
	strbuf_addf(&what, "lock destination \"%s\"", dest_id);
	ret = step_write(sq, s, what.buf, NULL, NULL, err);
	strbuf_release(&what);
	*taken = !ret;
	return ret;
}

static enum jerr sq_lock_beat(struct state *st, const char *dest_id, int64_t now, bool *held,
			      struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	struct strbuf what = STRBUF_INIT;
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_LOCK_BEAT, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, st->token);
	sqlite3_bind_int64(s, 3, now);
	strbuf_addf(&what, "refresh the lock of destination \"%s\"", dest_id);
	ret = step_write(sq, s, what.buf, NULL, NULL, err);
	strbuf_release(&what);
	*held = !ret && sqlite3_changes(sq->db) > 0;
	return ret;
}

static enum jerr sq_lock_del(struct state *st, const char *dest_id, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	struct strbuf what = STRBUF_INIT;
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_LOCK_DEL, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, st->token);
	strbuf_addf(&what, "release the lock of destination \"%s\"", dest_id);
	ret = step_write(sq, s, what.buf, NULL, NULL, err);
	strbuf_release(&what);
	return ret;
}

/* ---- the sync log's outbox and per-run status ---- */

static enum jerr sq_outbox_put(struct state *st, const char *dest_id, int64_t run_id, struct slice body, int64_t now,
			       int64_t *id, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_OUTBOX_PUT, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, run_id);
	sqlite3_bind_blob(s, 3, body.len ? body.ptr : "", (int)body.len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	ret = step_write(sq, s, "add sync log rows to the outbox", NULL, NULL, err);
	if (!ret)
		*id = sqlite3_last_insert_rowid(sq->db);
	return ret;
}

static enum jerr sq_outbox_next(struct state *st, const char *dest_id, int64_t after, int64_t *id, int64_t *run_id,
				struct strbuf *body, bool *found, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	int rc;
	if ((ret = get_stmt(sq, S_OUTBOX_NEXT, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, after);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*found = true;
		*id = sqlite3_column_int64(s, 0);
		*run_id = sqlite3_column_int64(s, 1);
		strbuf_add(body, sqlite3_column_blob(s, 2), (size_t)sqlite3_column_bytes(s, 2));
	} else if (rc != SQLITE_DONE) {
		ret = db_error(sq, rc, err, "could not read the sync log outbox of destination \"%s\" in state store \"%s\"",
			       dest_id, st->path);
	}
	stmt_done(s);
	return ret;
}

static enum jerr sq_outbox_delete(struct state *st, const char *dest_id, int64_t id, bool *deleted,
				  struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_OUTBOX_DEL, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, id);
	ret = step_write(sq, s, "delete written rows from the sync log outbox", NULL, NULL, err);
	*deleted = !ret && sqlite3_changes(sq->db) > 0;
	return ret;
}

static enum jerr sq_outbox_count(struct state *st, const char *dest_id, uint64_t *rows, uint64_t *bytes,
				 struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	int rc;
	if ((ret = get_stmt(sq, S_OUTBOX_COUNT, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*rows = column_count(s, 0);
		*bytes = column_count(s, 1);
	} else {
		ret = db_error(sq, rc, err, "could not count the sync log outbox of destination \"%s\" in state store \"%s\"",
			       dest_id, st->path);
	}
	stmt_done(s);
	return ret;
}

static enum jerr sq_synclog_set(struct state *st, const struct state_synclog_info *info, int64_t now,
				struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = get_stmt(sq, S_SYNCLOG_SET, &s, err)))
		return ret;
	sqlite3_bind_int64(s, 1, info->run_id);
	sqlite3_bind_text(s, 2, info->dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, info->status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)info->rows);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)info->pending);
	bind_str(s, 6, info->error);
	sqlite3_bind_int64(s, 7, now);
	return step_write(sq, s, "record the sync log status of a run", NULL, NULL, err);
}

static enum jerr sq_synclog_get(struct state *st, int64_t run_id, struct state_synclog_info *info,
				struct strbuf *status, struct strbuf *error, bool *found, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	int rc;
	if ((ret = get_stmt(sq, S_SYNCLOG_GET, &s, err)))
		return ret;
	sqlite3_bind_int64(s, 1, run_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*found = true;
		info->run_id = run_id;
		strbuf_add(status, sqlite3_column_text(s, 1), (size_t)sqlite3_column_bytes(s, 1));
		info->rows = column_count(s, 2);
		info->pending = column_count(s, 3);
		if (sqlite3_column_type(s, 4) != SQLITE_NULL) {
			strbuf_add(error, sqlite3_column_text(s, 4), (size_t)sqlite3_column_bytes(s, 4));
			info->error = error->buf;
		}
		info->updated_at = sqlite3_column_int64(s, 5);
		info->status = status->buf;
		info->dest_id = NULL; /* not kept: the caller knows the run's destination */
	} else if (rc != SQLITE_DONE) {
		ret = db_error(sq, rc, err, "could not read the sync log status of run %lld in state store \"%s\"",
			       (long long)run_id, st->path);
	}
	stmt_done(s);
	return ret;
}

static enum jerr sq_synclog_unfinished(struct state *st, const char *dest_id, int64_t *ids, size_t max, size_t *n,
				       struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	int rc;
	if ((ret = get_stmt(sq, S_SYNCLOG_UNFINISHED, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < max)
		ids[(*n)++] = sqlite3_column_int64(s, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_error(sq, rc, err, "could not list the sync log status of destination \"%s\" in state store \"%s\"",
			       dest_id, st->path);
	stmt_done(s);
	return ret;
}

/* ---- marks ---- */

static enum jerr sq_mark_get(struct state *st, const char *schedule_id, struct strbuf *value,
			     bool *found, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	int rc;

	if ((ret = get_stmt(sq, S_MARK_GET, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, schedule_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*found = true;
		strbuf_add(value, (const char *)sqlite3_column_text(s, 0),
			   (size_t)sqlite3_column_bytes(s, 0));
	} else if (rc != SQLITE_DONE) {
		ret = db_error(sq, rc, err,
			       "could not read the mark of schedule \"%s\" in state store \"%s\"",
			       schedule_id, st->path);
	}
	stmt_done(s);
	return ret;
}

static enum jerr sq_mark_set(struct state *st, const char *schedule_id, const char *value,
			     int64_t now, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	int rc;

	if ((ret = get_stmt(sq, S_MARK_SET, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, schedule_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = db_error(sq, rc, err,
			       "could not store the mark of schedule \"%s\" in state store \"%s\"",
			       schedule_id, st->path);
	stmt_done(s);
	return ret;
}

/* ---- export and import: the tables of state_tables, column by column ---- */

/* Decode column i of s as a value of type (borrowing s's memory). */
static void column_value(sqlite3_stmt *s, int i, enum state_col_type type, struct state_value *v)
{
	int t = sqlite3_column_type(s, i);
	*v = (struct state_value){ STATE_VAL_NULL, 0, { "", 0 } };
	if (t == SQLITE_NULL)
		return;
	if (type == STATE_COL_INT || type == STATE_COL_BOOL ||
	    (type == STATE_COL_KEY && t == SQLITE_INTEGER)) {
		v->kind = STATE_VAL_INT;
		v->i = sqlite3_column_int64(s, i);
		if (type == STATE_COL_BOOL)
			v->i = v->i != 0;
		return;
	}
	v->kind = STATE_VAL_TEXT;
	if (type == STATE_COL_HASH) {
		const void *b = sqlite3_column_blob(s, i);
		v->s = (struct slice){ b ? b : "", (size_t)sqlite3_column_bytes(s, i) };
	} else {
		const char *x = (const char *)sqlite3_column_text(s, i);
		v->s = (struct slice){ x ? x : "", (size_t)sqlite3_column_bytes(s, i) };
	}
}

static enum jerr dump_table(struct sq_state *sq, const struct state_table *t, state_dump_fn fn,
			    void *ctx, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	struct state_value vals[STATE_MAX_COLUMNS];
	sqlite3_stmt *s = NULL;
	enum jerr ret = JERR_OK;
	int rc;

	strbuf_addstr(&sql, "SELECT ");
	for (size_t i = 0; i < t->n_cols; i++)
		strbuf_addf(&sql, "%s%s", i ? ", " : "", t->cols[i].name);
	strbuf_addf(&sql, " FROM %s ORDER BY ", t->name);
	for (size_t i = 0; i < t->n_pk; i++)
		strbuf_addf(&sql, "%s%s", i ? ", " : "", t->cols[i].name);
	rc = sqlite3_prepare_v2(sq->db, sql.buf, -1, &s, NULL);
	strbuf_release(&sql);
	if (rc != SQLITE_OK)
		return db_error(sq, rc, err, "could not read table \"%s\" of state store \"%s\"",
				t->name, sq->base.path);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		for (size_t i = 0; i < t->n_cols; i++)
			column_value(s, (int)i, t->cols[i].type, &vals[i]);
		if ((ret = fn(ctx, t, vals, err)))
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = db_error(sq, rc, err, "could not read table \"%s\" of state store \"%s\"",
			       t->name, sq->base.path);
	sqlite3_finalize(s);
	return ret;
}

static enum jerr sq_dump(struct state *st, state_dump_fn fn, void *ctx, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	enum jerr ret = JERR_OK;
	bool own_tx = !sq_in_transaction(st);

	/* one read transaction: every table from the same snapshot */
	if (own_tx && (ret = exec_sql(sq, "BEGIN", err, "read")))
		return ret;
	for (size_t i = 0; i < state_n_tables && !ret; i++)
		if (state_tables[i].since <= st->version)
			ret = dump_table(sq, &state_tables[i], fn, ctx, err);
	if (own_tx)
		sqlite3_exec(sq->db, "COMMIT", NULL, NULL, NULL); /* read only: nothing to lose */
	return ret;
}

static enum jerr sq_is_empty(struct state *st, bool *empty, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	*empty = true;
	for (size_t i = 0; i < state_n_tables && *empty; i++) {
		struct strbuf sql = STRBUF_INIT;
		int64_t n = 0;
		bool found;
		int rc;
		if (state_tables[i].since > st->version)
			continue;
		strbuf_addf(&sql, "SELECT EXISTS (SELECT 1 FROM %s)", state_tables[i].name);
		rc = query_int(sq, sql.buf, &n, &found);
		strbuf_release(&sql);
		if (rc != SQLITE_OK)
			return db_error(sq, rc, err, "could not read table \"%s\" of state store \"%s\"",
					state_tables[i].name, st->path);
		*empty = n == 0;
	}
	return JERR_OK;
}

static enum jerr sq_clear(struct state *st, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	enum jerr ret = JERR_OK;
	/* backwards: the ledger before the runs it refers to */
	for (size_t i = state_n_tables; i-- > 0 && !ret;) {
		struct strbuf sql = STRBUF_INIT;
		if (state_tables[i].since > st->version)
			continue;
		strbuf_addf(&sql, "DELETE FROM %s", state_tables[i].name);
		ret = exec_sql(sq, sql.buf, err, "empty");
		strbuf_release(&sql);
	}
	return ret;
}

static enum jerr sq_load_row(struct state *st, const struct state_table *t,
			     const struct state_value *row, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	size_t ti = (size_t)(t - state_tables);
	sqlite3_stmt *s = NULL;
	int rc;

	if (ti >= state_n_tables)
		return jerror_set(err, JERR_INTERNAL, "state_load_row: not one of state_tables");
	if (!sq->load[ti]) {
		struct strbuf sql = STRBUF_INIT;
		strbuf_addf(&sql, "INSERT INTO %s (", t->name);
		for (size_t i = 0; i < t->n_cols; i++)
			strbuf_addf(&sql, "%s%s", i ? ", " : "", t->cols[i].name);
		strbuf_addstr(&sql, ") VALUES (");
		for (size_t i = 0; i < t->n_cols; i++)
			strbuf_addf(&sql, "%s?%zu", i ? ", " : "", i + 1);
		strbuf_addstr(&sql, ")");
		rc = sqlite3_prepare_v3(sq->db, sql.buf, -1, SQLITE_PREPARE_PERSISTENT, &sq->load[ti],
					NULL);
		strbuf_release(&sql);
		if (rc != SQLITE_OK)
			return db_error(sq, rc, err, "could not load table \"%s\" into state store \"%s\"",
					t->name, st->path);
	}
	s = sq->load[ti];
	for (size_t i = 0; i < t->n_cols; i++) {
		const struct state_value *v = &row[i];
		int idx = (int)i + 1;
		if (v->kind == STATE_VAL_NULL)
			sqlite3_bind_null(s, idx);
		else if (v->kind == STATE_VAL_INT)
			sqlite3_bind_int64(s, idx, v->i);
		else if (t->cols[i].type == STATE_COL_HASH)
			sqlite3_bind_blob(s, idx, v->s.ptr, (int)v->s.len, SQLITE_STATIC);
		else
			sqlite3_bind_text(s, idx, v->s.ptr ? v->s.ptr : "", (int)v->s.len,
					  SQLITE_STATIC);
	}
	rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return db_error(sq, rc, err, "could not load a row of table \"%s\" into state store \"%s\"",
				t->name, st->path);
	return JERR_OK;
}

static enum jerr sq_load_finish(struct state *st, struct jerror *err)
{
	(void)st; /* INTEGER PRIMARY KEY: new ids follow the largest one by themselves */
	(void)err;
	return JERR_OK;
}

/* ---- one statement of a module's own tables (backend.h exec) ---- */

static enum jerr sq_exec(struct state *st, const char *what, const char *sql, const struct state_value *params,
			 size_t n, enum jerr (*fn)(void *ctx, const struct state_value *row, size_t n_cols,
						   struct jerror *err),
			 void *ctx, uint64_t *changed, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	struct state_value vals[32];
	sqlite3_stmt *s = NULL;
	enum jerr ret = JERR_OK;
	int rc = sqlite3_prepare_v2(sq->db, sql, -1, &s, NULL);

	if (changed)
		*changed = 0;
	if (rc != SQLITE_OK)
		return db_error(sq, rc, err, "could not %s in state store \"%s\"", what, st->path);
	for (size_t i = 0; i < n; i++) {
		char name[24];
		snprintf(name, sizeof(name), "$%zu", i + 1);
		int idx = sqlite3_bind_parameter_index(s, name);
		if (!idx)
			continue;
		if (params[i].kind == STATE_VAL_INT)
			sqlite3_bind_int64(s, idx, params[i].i);
		else if (params[i].kind == STATE_VAL_TEXT)
			sqlite3_bind_text(s, idx, params[i].s.ptr ? params[i].s.ptr : "", (int)params[i].s.len,
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(s, idx);
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int nc = sqlite3_column_count(s);
		if (nc > (int)ARRAY_SIZE(vals))
			nc = (int)ARRAY_SIZE(vals);
		for (int c = 0; c < nc; c++) {
			int t = sqlite3_column_type(s, c);
			memset(&vals[c], 0, sizeof(vals[c]));
			if (t == SQLITE_NULL) {
				vals[c].kind = STATE_VAL_NULL;
			} else if (t == SQLITE_INTEGER) {
				vals[c].kind = STATE_VAL_INT;
				vals[c].i = sqlite3_column_int64(s, c);
			} else {
				const char *txt = (const char *)sqlite3_column_text(s, c);
				vals[c].kind = STATE_VAL_TEXT;
				vals[c].s = (struct slice){ txt ? txt : "", (size_t)sqlite3_column_bytes(s, c) };
			}
		}
		if (fn && (ret = fn(ctx, vals, (size_t)nc, err)))
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = db_error(sq, rc, err, "could not %s in state store \"%s\"", what, st->path);
	if (!ret && changed)
		*changed = (uint64_t)sqlite3_changes(sq->db);
	sqlite3_finalize(s);
	return ret;
}

const struct state_ops state_sqlite = {
	.name = "SQLite",
	.seek_rows = 2,
	.open = sq_open,
	.open_empty = sq_open_empty,
	.close = sq_close,
	.display = sq_display,
	.limit_size = sq_limit_size,
	.count = sq_count,
	.count_range = sq_count_range,
	.get = sq_get,
	.cursor_fill = sq_cursor_fill,
	.in_transaction = sq_in_transaction,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.put = sq_put,
	.del = sq_del,
	.mark_failed = sq_mark_failed,
	.set_exists = sq_set_exists,
	.run_start = sq_run_start,
	.run_finish = sq_run_finish,
	.runs_abandon = sq_runs_abandon,
	.run_progress = sq_run_progress,
	.runs_running = sq_runs_running,
	.ledger_add = sq_ledger_add,
	.runs_list = sq_runs_list,
	.ledger_list = sq_ledger_list,
	.lock_get = sq_lock_get,
	.lock_put = sq_lock_put,
	.lock_beat = sq_lock_beat,
	.lock_del = sq_lock_del,
	.mark_get = sq_mark_get,
	.mark_set = sq_mark_set,
	.dump = sq_dump,
	.is_empty = sq_is_empty,
	.clear = sq_clear,
	.load_row = sq_load_row,
	.load_finish = sq_load_finish,
	.exec = sq_exec,
	.outbox_put = sq_outbox_put,
	.outbox_next = sq_outbox_next,
	.outbox_delete = sq_outbox_delete,
	.outbox_count = sq_outbox_count,
	.synclog_set = sq_synclog_set,
	.synclog_get = sq_synclog_get,
	.synclog_unfinished = sq_synclog_unfinished,
};
