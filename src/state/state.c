/* state.c: the state store on SQLite: open and migrate, records, runs, ledger, locks. */
#include "state/state.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <xxhash.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "state/schema.h"

/*
 * Design notes.
 *
 * One connection per struct state. Every fixed statement is prepared once, on first
 * use, and kept in st->stmt[]; after each use it is reset and its bindings cleared,
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
	S_MARK_GET,
	S_MARK_SET,
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
	[S_MARK_GET] = "SELECT value FROM marks WHERE schedule_id = ?1",
	[S_MARK_SET] = "INSERT INTO marks (schedule_id, value, updated_at) VALUES (?1, ?2, ?3)"
		       " ON CONFLICT (schedule_id) DO UPDATE SET value = excluded.value,"
		       " updated_at = excluded.updated_at",
};

/* Columns of ROW_COLUMNS. */
enum { C_KEY, C_PAYLOAD, C_HASH, C_IN_SCOPE, C_PENDING, C_ATTEMPTS, C_LAST_ERROR,
       C_EXISTS, C_CHECKED_AT, C_CONFIRMED_AT, C_UPDATED_AT };

#define KEYBUF_SIZE 24 /* "-9223372036854775808" + NUL */

struct state {
	sqlite3 *db;
	char *path;     /* as given to state_open, for messages */
	int version;
	bool readonly;  /* opened READONLY*: every write is refused */
	int64_t token;  /* identifies this struct state's locks */
	char host[256];
	int n_cursors;  /* open cursors (they hold no SQLite resources; for debugging) */
	sqlite3_stmt *stmt[S__COUNT];
	/* state_get's row and the memory it borrows */
	struct state_row get_row;
	struct strbuf get_payload, get_error, get_key;
};

/*
 * A cursor reads its destination in batches (keyset pagination: key > last key
 * read, ORDER BY key, LIMIT). Each batch is stepped to its end, copied into the
 * cursor and the statement reset at once. So a cursor holds no statement and no read
 * transaction between calls, any number may be open, and writes between calls are
 * well defined: a row already returned is never returned again, rows ahead show the
 * writes or not depending on the batch they fall in (SQLite leaves a
 * statement that outlives a write to its table undefined, and an UPSERT into a
 * WITHOUT ROWID table does make an open statement return the row twice).
 * Memory: at most CURSOR_BATCH_ROWS rows or about CURSOR_BATCH_BYTES of text.
 */
#define CURSOR_BATCH_ROWS 256
#define CURSOR_BATCH_BYTES (1024 * 1024)

struct cursor_text {
	size_t key, payload, last_error; /* offsets into the batch buffer */
};

struct state_cursor {
	struct state *st;
	char *dest_id;
	bool exhausted;       /* the last batch was the end */
	size_t n, pos;        /* rows in the batch, next row to return */
	struct state_row rows[CURSOR_BATCH_ROWS];
	struct cursor_text text[CURSOR_BATCH_ROWS];
	struct strbuf buf;    /* key texts, payloads and errors of the batch */
	bool have_last;       /* last key read (the lower bound of the next batch) */
	struct rkey last;
	struct strbuf last_text;
};

/* ---- small helpers ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add_time(struct strbuf *sb, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32];
	if (gmtime_r(&t, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		strbuf_addstr(sb, buf);
	else
		strbuf_addf(sb, "%" PRId64, ms);
}

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

/* A record key for messages: the text, or the number if the text is missing. */
static const char *key_str(const struct rkey *key, struct strbuf *sb)
{
	strbuf_reset(sb);
	if (key->text.len || !key->is_int)
		strbuf_addslice(sb, key->text);
	else
		strbuf_addf(sb, "%" PRId64, key->i);
	return sb->buf;
}

static bool is_perm_errno(int e) { return e == EACCES || e == EPERM || e == EROFS; }

static void hint_read_only(struct state *st, struct jerror *err)
{
	struct strbuf dir = STRBUF_INIT;
	dir_of(st->path, &dir);
	jerror_hint(err, "make the directory \"%s\" and the files in it writable by this user, "
			 "or pass --state with a writable path", dir.buf);
	strbuf_release(&dir);
}

/*
 * Fill err from SQLite result rc: the caller's message (which names the file),
 * followed by what went wrong in words the user can act on; SQLite's own message is
 * the detail. Returns the code set (JERR_STATE or JERR_STATE_BUSY).
 */
static enum jerr db_error(struct state *st, int rc, struct jerror *err, const char *fmt, ...)
	JOEY_PRINTF(4, 5);
static enum jerr db_error(struct state *st, int rc, struct jerror *err, const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT, sqlmsg = STRBUF_INIT;
	int sys = st->db ? sqlite3_system_errno(st->db) : 0;
	enum jerr code = JERR_STATE;
	enum { R_OTHER, R_FULL, R_READONLY, R_BUSY, R_CORRUPT } reason = R_OTHER;
	va_list ap;

	strbuf_addstr(&sqlmsg, st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
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
		hint_read_only(st, err);
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

static enum jerr refuse_readonly(struct state *st, struct jerror *err)
{
	if (!st->readonly)
		return JERR_OK;
	jerror_set(err, JERR_STATE, "state store \"%s\" is open read-only", st->path);
	jerror_detail(err, "this command only reads the state store");
	return JERR_STATE;
}

static enum jerr get_stmt(struct state *st, enum stmt_id id, sqlite3_stmt **out,
			  struct jerror *err)
{
	int rc;
	if (!st->stmt[id]) {
		rc = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					&st->stmt[id], NULL);
		if (rc != SQLITE_OK)
			return db_error(st, rc, err, "could not prepare a query on state store \"%s\"",
					st->path);
	}
	*out = st->stmt[id];
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
static enum jerr step_write(struct state *st, sqlite3_stmt *s, const char *what,
			    const char *dest_id, const struct rkey *key, struct jerror *err)
{
	int rc = sqlite3_step(s);
	enum jerr ret = JERR_OK;
	if (rc != SQLITE_DONE) {
		struct strbuf k = STRBUF_INIT;
		if (key)
			ret = db_error(st, rc, err,
				       "could not %s record \"%s\" of destination \"%s\" in state store \"%s\"",
				       what, key_str(key, &k), dest_id, st->path);
		else
			ret = db_error(st, rc, err, "could not %s in state store \"%s\"", what, st->path);
		strbuf_release(&k);
	}
	stmt_done(s);
	return ret;
}

static void decode_key(sqlite3_stmt *s, int col, struct rkey *k, char *buf)
{
	if (sqlite3_column_type(s, col) == SQLITE_INTEGER) {
		int n;
		k->is_int = true;
		k->i = sqlite3_column_int64(s, col);
		n = snprintf(buf, KEYBUF_SIZE, "%" PRId64, k->i);
		k->text = (struct slice){ buf, (size_t)n };
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

static enum jerr exec_sql(struct state *st, const char *sql, struct jerror *err, const char *what)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return db_error(st, rc, err, "could not %s state store \"%s\"", what, st->path);
	return JERR_OK;
}

/* A one-integer query; *found false when it returns no row. */
static int query_int(struct state *st, const char *sql, int64_t *out, bool *found)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
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
static int read_version(struct state *st, int64_t *version, bool *invalid)
{
	int64_t n = 0;
	bool found;
	int rc = query_int(st, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
			   &n, &found);
	*version = 0;
	*invalid = false;
	if (rc != SQLITE_OK || n == 0)
		return rc;
	rc = query_int(st, "SELECT value FROM meta WHERE key = 'schema_version'", version, &found);
	if (rc == SQLITE_OK && (!found || *version < 1))
		*invalid = true;
	return rc;
}

/*
 * Check that the file is a joey state store (or a fresh, empty database) and read its
 * schema version. *fresh: an empty database with no application id and no tables.
 */
static enum jerr identify(struct state *st, int64_t *version, bool *fresh, struct jerror *err)
{
	int64_t app_id = 0, n_tables = 0;
	bool found, invalid;
	int rc;

	*fresh = false;
	rc = query_int(st, "PRAGMA application_id", &app_id, &found);
	if (rc == SQLITE_OK)
		rc = query_int(st, "SELECT count(*) FROM sqlite_master", &n_tables, &found);
	if ((rc & 0xff) == SQLITE_NOTADB) {
		jerror_set(err, JERR_STATE, "\"%s\" is not a joey state store", st->path);
		jerror_detail(err, "SQLite: %s", sqlite3_errmsg(st->db));
		jerror_hint(err, "pass --state with the path of a joey state store, or move this "
				 "file away to start afresh");
		return JERR_STATE;
	}
	if (rc != SQLITE_OK)
		return db_error(st, rc, err, "could not open state store \"%s\"", st->path);
	if (app_id == 0 && n_tables == 0) {
		*fresh = true;
		*version = 0;
		return JERR_OK;
	}
	if (app_id != STATE_APPLICATION_ID) {
		jerror_set(err, JERR_STATE, "\"%s\" is not a joey state store", st->path);
		jerror_detail(err, "it is an SQLite database with application_id 0x%08" PRIx64
				   " and %" PRId64 " tables (a joey state store has 0x%08x)",
			      (uint64_t)(uint32_t)app_id, n_tables, STATE_APPLICATION_ID);
		jerror_hint(err, "pass --state with the path of a joey state store, or move this "
				 "file away to start afresh");
		return JERR_STATE;
	}
	rc = read_version(st, version, &invalid);
	if (rc != SQLITE_OK)
		return db_error(st, rc, err, "could not read the schema version of state store \"%s\"",
				st->path);
	if (invalid) {
		jerror_set(err, JERR_STATE, "state store \"%s\" has no valid schema version", st->path);
		jerror_detail(err, "table meta has no positive integer \"schema_version\"");
		jerror_hint(err, "restore it from a backup, or move it away to start afresh "
				 "(the next run then re-sends every record)");
		return JERR_STATE;
	}
	if (*version > STATE_SCHEMA_VERSION) {
		jerror_set(err, JERR_STATE_VERSION,
			   "state store \"%s\" was written by a newer joey (schema version %" PRId64
			   ", this joey knows up to %d)",
			   st->path, *version, STATE_SCHEMA_VERSION);
		jerror_hint(err, "upgrade joey, or pass --state with another file");
		return JERR_STATE_VERSION;
	}
	return JERR_OK;
}

/* Apply every migration step after version from, one transaction each. */
static enum jerr migrate(struct state *st, int64_t from, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	enum jerr ret = JERR_OK;
	int64_t v = from;

	while (v < (int64_t)state_n_migrations) {
		int64_t cur;
		bool invalid;
		int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = read_version(st, &cur, &invalid); /* another process may have done it */
		if (rc == SQLITE_OK && cur > v) {
			rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
			v = cur;
			if (rc == SQLITE_OK)
				continue;
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(st->db, state_migrations[v], NULL, NULL, NULL);
		if (rc == SQLITE_OK) {
			strbuf_reset(&sql);
			strbuf_addf(&sql,
				    "INSERT INTO meta (key, value) VALUES ('schema_version', %" PRId64 ")"
				    " ON CONFLICT (key) DO UPDATE SET value = excluded.value;"
				    " PRAGMA application_id = %d;",
				    v + 1, STATE_APPLICATION_ID);
			rc = sqlite3_exec(st->db, sql.buf, NULL, NULL, NULL);
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			ret = db_error(st, rc, err,
				       "could not upgrade state store \"%s\" to schema version %" PRId64,
				       st->path, v + 1);
			if (!sqlite3_get_autocommit(st->db))
				sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			break;
		}
		v++;
	}
	strbuf_release(&sql);
	return ret;
}

/* mkdir -p of path's directory. */
static enum jerr make_parent_dirs(const char *path, struct jerror *err)
{
	struct strbuf dir = STRBUF_INIT;
	enum jerr ret = JERR_OK;
	struct stat sb;

	dir_of(path, &dir);
	if (stat(dir.buf, &sb) == 0)
		goto out;
	for (char *p = dir.buf + 1;; p++) {
		char c = *p;
		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(dir.buf, 0777) != 0 && errno != EEXIST) {
			int e = errno;
			ret = jerror_set(err, JERR_STATE,
					 "could not create directory \"%s\" for state store \"%s\": %s",
					 dir.buf, path, strerror(e));
			if (is_perm_errno(e))
				jerror_hint(err, "the state directory is read-only: make it writable, "
						 "or pass --state with a writable path");
			goto out;
		}
		*p = c;
		if (!c)
			break;
	}
out:
	strbuf_release(&dir);
	return ret;
}

static int64_t make_token(void)
{
	uint64_t t = 0;
	FILE *f = fopen("/dev/urandom", "rb");
	if (f) {
		if (fread(&t, sizeof(t), 1, f) != 1)
			t = 0;
		fclose(f);
	}
	t ^= (uint64_t)now_ms() * 0x9e3779b97f4a7c15u ^ (uint64_t)getpid() << 32 ^ (uintptr_t)&t;
	t &= INT64_MAX;
	return t ? (int64_t)t : 1;
}

static void close_db(struct state *st)
{
	for (int i = 0; i < S__COUNT; i++) {
		sqlite3_finalize(st->stmt[i]);
		st->stmt[i] = NULL;
	}
	if (st->db) {
		if (!sqlite3_get_autocommit(st->db))
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		if (sqlite3_close(st->db) != SQLITE_OK) {
			log_error("state store \"%s\": %s", st->path, sqlite3_errmsg(st->db));
			sqlite3_close_v2(st->db);
		}
		st->db = NULL;
	}
}

static enum jerr connect_db(struct state *st, const char *file, int flags, struct jerror *err)
{
	int rc = sqlite3_open_v2(file, &st->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return db_error(st, rc, err, "could not open state store \"%s\"", st->path);
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STATE_BUSY_TIMEOUT_MS);
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
static enum jerr open_empty(struct state *st, struct jerror *err)
{
	enum jerr ret;
	close_db(st);
	ret = connect_db(st, ":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err);
	if (!ret)
		ret = exec_sql(st, "PRAGMA foreign_keys = ON", err, "configure");
	if (!ret)
		ret = migrate(st, 0, err);
	st->readonly = true;
	return ret;
}

enum jerr state_open(const char *path, enum state_open_mode mode, struct state **out,
		     struct jerror *err)
{
	struct state *st = xcalloc(1, sizeof(*st));
	bool create = mode == STATE_OPEN_CREATE, fresh = false;
	int64_t version = 0;
	enum jerr ret;
	struct stat sb;

	*out = NULL;
	st->path = xstrdup(path);
	st->token = make_token();
	strbuf_init(&st->get_payload, 0);
	strbuf_init(&st->get_error, 0);
	strbuf_init(&st->get_key, 0);
	if (gethostname(st->host, sizeof(st->host) - 1) != 0)
		snprintf(st->host, sizeof(st->host), "unknown");

	if (!create && strcmp(path, ":memory:") != 0 && stat(path, &sb) != 0) {
		if (errno == ENOENT && mode == STATE_OPEN_READONLY_OR_EMPTY) {
			ret = open_empty(st, err);
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
		ret = connect_db(st, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err);
	} else {
		struct strbuf uri = STRBUF_INIT;
		readonly_uri(path, &uri);
		ret = connect_db(st, uri.len ? uri.buf : path,
				 SQLITE_OPEN_READONLY | (uri.len ? SQLITE_OPEN_URI : 0), err);
		strbuf_release(&uri);
	}
	if (ret)
		goto done;
	if (create && sqlite3_db_readonly(st->db, "main") == 1) {
		ret = jerror_set(err, JERR_STATE, "could not open state store \"%s\" for writing: "
						  "the state store is read-only", path);
		hint_read_only(st, err);
		goto done;
	}
	if ((ret = identify(st, &version, &fresh, err)))
		goto done;
	if (!create) {
		st->readonly = true;
		if (fresh) {
			if (mode == STATE_OPEN_READONLY_OR_EMPTY) {
				ret = open_empty(st, err);
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
		ret = exec_sql(st, "PRAGMA foreign_keys = ON", err, "configure");
		if (!ret)
			st->version = (int)version;
		goto done_version;
	}
	/* synchronous=NORMAL is safe with WAL: see the design note at the top. */
	if ((ret = exec_sql(st, "PRAGMA journal_mode = WAL", err, "configure")) ||
	    (ret = exec_sql(st, "PRAGMA synchronous = NORMAL", err, "configure")) ||
	    (ret = exec_sql(st, "PRAGMA foreign_keys = ON", err, "configure")))
		goto done;
	ret = migrate(st, version, err);
done:
	if (!ret)
		st->version = STATE_SCHEMA_VERSION;
done_version:
	if (ret) {
		state_close(st);
		return ret;
	}
	*out = st;
	return JERR_OK;
}

void state_close(struct state *st)
{
	if (!st)
		return;
	close_db(st);
	strbuf_release(&st->get_payload);
	strbuf_release(&st->get_error);
	strbuf_release(&st->get_key);
	free(st->path);
	free(st);
}

int state_schema_version(const struct state *st)
{
	return st->version;
}

const char *state_path(const struct state *st)
{
	return st->path;
}

enum jerr state_limit_size(struct state *st, uint64_t max_bytes, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	int64_t page_size = 4096;
	bool found;
	enum jerr ret;
	int rc = query_int(st, "PRAGMA page_size", &page_size, &found);
	if (rc != SQLITE_OK)
		return db_error(st, rc, err, "could not read the page size of state store \"%s\"",
				st->path);
	strbuf_addf(&sql, "PRAGMA max_page_count = %" PRIu64,
		    max_bytes / (uint64_t)(page_size > 0 ? page_size : 4096) + 1);
	ret = exec_sql(st, sql.buf, err, "limit the size of");
	strbuf_release(&sql);
	return ret;
}

/* ---- reading ---- */

enum jerr state_cursor_open(struct state *st, const char *dest_id, struct state_cursor **out,
			    struct jerror *err)
{
	struct state_cursor *cur = xcalloc(1, sizeof(*cur));
	(void)err;
	cur->st = st;
	cur->dest_id = xstrdup(dest_id);
	strbuf_init(&cur->buf, 0);
	strbuf_init(&cur->last_text, 0);
	st->n_cursors++;
	*out = cur;
	return JERR_OK;
}

/* Read the next batch of rows after cur->last. */
static enum jerr cursor_fill(struct state_cursor *cur, struct jerror *err)
{
	struct state *st = cur->st;
	sqlite3_stmt *s;
	enum jerr ret = get_stmt(st, cur->have_last ? S_CUR_NEXT : S_CUR_FIRST, &s, err);
	char keybuf[KEYBUF_SIZE];
	int rc = SQLITE_DONE;

	cur->n = cur->pos = 0;
	strbuf_reset(&cur->buf);
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, cur->dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, CURSOR_BATCH_ROWS);
	if (cur->have_last) {
		cur->last.text = (struct slice){ cur->last_text.buf, cur->last_text.len };
		bind_key(s, 3, &cur->last);
	}
	while (cur->n < CURSOR_BATCH_ROWS && cur->buf.len < CURSOR_BATCH_BYTES &&
	       (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct state_row *r = &cur->rows[cur->n];
		struct cursor_text *t = &cur->text[cur->n];
		decode_row(s, r, keybuf);
		t->key = cur->buf.len;
		strbuf_addslice(&cur->buf, r->key.text);
		t->payload = cur->buf.len;
		strbuf_addslice(&cur->buf, r->payload);
		t->last_error = cur->buf.len;
		strbuf_addslice(&cur->buf, r->last_error);
		cur->n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_error(st, rc, err,
			       "could not read records of destination \"%s\" from state store \"%s\"",
			       cur->dest_id, st->path);
	/* a short batch that ran to SQLITE_DONE was the last one */
	cur->exhausted = rc == SQLITE_DONE && cur->n < CURSOR_BATCH_ROWS;
	stmt_done(s);
	if (ret) {
		cur->n = 0;
		return ret;
	}
	/* the buffer is complete: point the rows into it */
	for (size_t i = 0; i < cur->n; i++) {
		struct state_row *r = &cur->rows[i];
		const struct cursor_text *t = &cur->text[i];
		r->key.text.ptr = cur->buf.buf + t->key;
		r->payload.ptr = cur->buf.buf + t->payload;
		r->last_error.ptr = cur->buf.buf + t->last_error;
	}
	if (cur->n) {
		const struct rkey *k = &cur->rows[cur->n - 1].key;
		cur->have_last = true;
		cur->last.is_int = k->is_int;
		cur->last.i = k->i;
		strbuf_reset(&cur->last_text);
		strbuf_addslice(&cur->last_text, k->text);
	}
	return JERR_OK;
}

enum jerr state_cursor_next(struct state_cursor *cur, struct state_row **row, struct jerror *err)
{
	enum jerr ret;
	*row = NULL;
	if (cur->pos == cur->n) {
		if (cur->exhausted)
			return JERR_OK;
		if ((ret = cursor_fill(cur, err)))
			return ret;
		if (cur->n == 0) {
			cur->exhausted = true;
			return JERR_OK;
		}
	}
	*row = &cur->rows[cur->pos++];
	return JERR_OK;
}

void state_cursor_close(struct state_cursor *cur)
{
	if (!cur)
		return;
	cur->st->n_cursors--;
	strbuf_release(&cur->buf);
	strbuf_release(&cur->last_text);
	free(cur->dest_id);
	free(cur);
}

enum jerr state_count(struct state *st, const char *dest_id, uint64_t *in_scope,
		      struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret = get_stmt(st, S_COUNT, &s, err);
	int rc;
	*in_scope = 0;
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*in_scope = (uint64_t)sqlite3_column_int64(s, 0);
	else
		ret = db_error(st, rc, err,
			       "could not count records of destination \"%s\" in state store \"%s\"",
			       dest_id, st->path);
	stmt_done(s);
	return ret;
}

enum jerr state_get(struct state *st, const char *dest_id, const struct rkey *key,
		    struct state_row **row, bool *found, struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret = get_stmt(st, S_GET, &s, err);
	struct state_row *r = &st->get_row;
	int rc;

	*row = NULL;
	*found = false;
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 2, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		char keybuf[KEYBUF_SIZE];
		decode_row(s, r, keybuf);
		/* copy what the row borrows: the statement is reset below */
		strbuf_reset(&st->get_key);
		strbuf_addslice(&st->get_key, r->key.text);
		r->key.text = (struct slice){ st->get_key.buf, st->get_key.len };
		strbuf_reset(&st->get_payload);
		strbuf_addslice(&st->get_payload, r->payload);
		r->payload = (struct slice){ st->get_payload.buf, st->get_payload.len };
		strbuf_reset(&st->get_error);
		strbuf_addslice(&st->get_error, r->last_error);
		r->last_error = (struct slice){ st->get_error.buf, st->get_error.len };
		*row = r;
		*found = true;
	} else if (rc != SQLITE_DONE) {
		struct strbuf k = STRBUF_INIT;
		ret = db_error(st, rc, err,
			       "could not read record \"%s\" of destination \"%s\" from state store \"%s\"",
			       key_str(key, &k), dest_id, st->path);
		strbuf_release(&k);
	}
	stmt_done(s);
	return ret;
}

/* ---- transactions ---- */

enum jerr state_begin(struct state *st, struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret;
	if ((ret = refuse_readonly(st, err)))
		return ret;
	if (!sqlite3_get_autocommit(st->db))
		return jerror_set(err, JERR_INTERNAL,
				  "state store \"%s\": a transaction is already open", st->path);
	if ((ret = get_stmt(st, S_BEGIN, &s, err)))
		return ret;
	return step_write(st, s, "start a transaction", NULL, NULL, err);
}

enum jerr state_commit(struct state *st, struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret;
	if (sqlite3_get_autocommit(st->db))
		return jerror_set(err, JERR_STATE,
				  "state store \"%s\": no transaction to commit (it was rolled back "
				  "after an earlier error)", st->path);
	if ((ret = get_stmt(st, S_COMMIT, &s, err)))
		return ret;
	ret = step_write(st, s, "commit a transaction", NULL, NULL, err);
	if (ret)
		state_rollback(st);
	return ret;
}

void state_rollback(struct state *st)
{
	sqlite3_stmt *s = NULL;
	struct jerror e = JERROR_INIT;
	if (!st || sqlite3_get_autocommit(st->db))
		return;
	if (get_stmt(st, S_ROLLBACK, &s, &e) || step_write(st, s, "roll back a transaction", NULL,
							   NULL, &e)) {
		log_error("%s", e.msg.buf);
		/* last resort: nothing of the transaction may survive */
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	}
	jerror_release(&e);
}

/* ---- writes ---- */

enum jerr state_put(struct state *st, const char *dest_id, const struct rkey *key,
		    struct slice payload, const unsigned char hash[STATE_HASH_LEN],
		    bool in_scope, struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret;
	if ((ret = refuse_readonly(st, err)) || (ret = get_stmt(st, S_PUT, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 2, key);
	sqlite3_bind_text(s, 3, payload.ptr ? payload.ptr : "", (int)payload.len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, hash, STATE_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int(s, 5, in_scope);
	sqlite3_bind_int64(s, 6, now_ms());
	return step_write(st, s, "store", dest_id, key, err);
}

enum jerr state_delete(struct state *st, const char *dest_id, const struct rkey *key,
		       struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret;
	if ((ret = refuse_readonly(st, err)) || (ret = get_stmt(st, S_DELETE, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 2, key);
	return step_write(st, s, "delete", dest_id, key, err);
}

enum jerr state_mark_failed(struct state *st, const char *dest_id, const struct rkey *key,
			    const char *error, struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret;
	if ((ret = refuse_readonly(st, err)) || (ret = get_stmt(st, S_FAIL, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 2, key);
	bind_str(s, 3, error ? error : "failed");
	sqlite3_bind_int64(s, 4, now_ms());
	return step_write(st, s, "mark as failed", dest_id, key, err);
}

enum jerr state_set_exists(struct state *st, const char *dest_id, const struct rkey *key,
			   bool exists, int64_t checked_at, struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret;
	if ((ret = refuse_readonly(st, err)) || (ret = get_stmt(st, S_EXISTS, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 2, key);
	sqlite3_bind_int(s, 3, exists);
	sqlite3_bind_int64(s, 4, checked_at);
	sqlite3_bind_int64(s, 5, now_ms());
	return step_write(st, s, "record whether Braze has", dest_id, key, err);
}

/* ---- runs and ledger ---- */

static const char *const status_names[] = {
	[RUN_RUNNING] = "running",
	[RUN_SUCCESS] = "success",
	[RUN_FAILED] = "failed",
	[RUN_INTERRUPTED] = "interrupted",
};

const char *run_status_name(enum run_status s)
{
	return (unsigned)s < ARRAY_SIZE(status_names) ? status_names[s] : "unknown";
}

static enum run_status run_status_parse(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(status_names); i++)
		if (name && strcmp(name, status_names[i]) == 0)
			return (enum run_status)i;
	return RUN_FAILED;
}

enum jerr state_run_start(struct state *st, const char *dest_id, const char *kind,
			  int64_t *run_id, struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret;
	struct strbuf what = STRBUF_INIT;

	*run_id = 0;
	if ((ret = refuse_readonly(st, err)) || (ret = get_stmt(st, S_RUN_START, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_str(s, 2, kind);
	sqlite3_bind_int64(s, 3, now_ms());
	strbuf_addf(&what, "record the start of a %s of destination \"%s\"", kind, dest_id);
	ret = step_write(st, s, what.buf, NULL, NULL, err);
	if (!ret)
		*run_id = sqlite3_last_insert_rowid(st->db);
	strbuf_release(&what);
	return ret;
}

enum jerr state_run_finish(struct state *st, int64_t run_id, enum run_status status,
			   const struct run_counts *c, const char *error, struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret;
	struct strbuf what = STRBUF_INIT;
	const uint64_t counts[] = { c->created, c->updated, c->deleted, c->unsubscribed,
				    c->unchanged, c->failed, c->skipped, c->requests,
				    c->retries, c->throttled, c->data_points };

	if ((ret = refuse_readonly(st, err)) || (ret = get_stmt(st, S_RUN_FINISH, &s, err)))
		return ret;
	sqlite3_bind_int64(s, 1, run_id);
	bind_str(s, 2, run_status_name(status));
	sqlite3_bind_int64(s, 3, now_ms());
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		sqlite3_bind_int64(s, 4 + (int)i, counts[i] > INT64_MAX ? INT64_MAX : (int64_t)counts[i]);
	bind_str(s, 15, error);
	strbuf_addf(&what, "record the end of run %" PRId64, run_id);
	ret = step_write(st, s, what.buf, NULL, NULL, err);
	if (!ret && sqlite3_changes(st->db) == 0)
		ret = jerror_set(err, JERR_INTERNAL, "state store \"%s\" has no run %" PRId64,
				 st->path, run_id);
	strbuf_release(&what);
	return ret;
}

enum jerr state_runs_abandon(struct state *st, const char *dest_id, uint64_t *n, struct jerror *err)
{
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	int rc;

	*n = 0;
	if ((ret = refuse_readonly(st, err)))
		return ret;
	rc = sqlite3_prepare_v2(st->db,
				"UPDATE runs SET status = 'interrupted', finished_at = ?2, "
				"error = 'the process running it ended without finishing (killed or crashed)' "
				"WHERE dest_id = ?1 AND status = 'running'",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_error(st, rc, err, "could not update the run history of state store \"%s\"", st->path);
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now_ms());
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		*n = (uint64_t)sqlite3_changes(st->db);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_error(st, rc, err, "could not update the run history of state store \"%s\"", st->path);
	return JERR_OK;
}

enum jerr state_ledger_add(struct state *st, int64_t run_id, const char *dest_id,
			   const struct rkey *key, const char *error, int attempts,
			   struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret;
	if ((ret = refuse_readonly(st, err)) || (ret = get_stmt(st, S_LEDGER_ADD, &s, err)))
		return ret;
	if (run_id > 0)
		sqlite3_bind_int64(s, 1, run_id);
	else
		sqlite3_bind_null(s, 1);
	sqlite3_bind_text(s, 2, dest_id, -1, SQLITE_STATIC);
	bind_key(s, 3, key);
	bind_str(s, 4, error ? error : "failed");
	sqlite3_bind_int(s, 5, attempts);
	sqlite3_bind_int64(s, 6, now_ms());
	return step_write(st, s, "add to the error ledger the", dest_id, key, err);
}

static uint64_t column_count(sqlite3_stmt *s, int col)
{
	int64_t v = sqlite3_column_int64(s, col);
	return v > 0 ? (uint64_t)v : 0;
}

/* Step s, handing each row to decode; shared by the listings. */
static enum jerr list_rows(struct state *st, sqlite3_stmt *s, const char *what,
			   enum jerr (*each)(sqlite3_stmt *s, void *arg, struct jerror *err),
			   void *arg, struct jerror *err)
{
	enum jerr ret = JERR_OK;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if ((ret = each(s, arg, err)))
			break;
	if (!ret && rc != SQLITE_DONE)
		ret = db_error(st, rc, err, "could not list %s in state store \"%s\"", what, st->path);
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
	r.status = run_status_parse((const char *)sqlite3_column_text(s, 3));
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

enum jerr state_runs_list(struct state *st, const char *dest_id, size_t limit, state_run_fn fn,
			  void *ctx, struct jerror *err)
{
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
	rc = sqlite3_prepare_v2(st->db, sql.buf, -1, &s, NULL);
	strbuf_release(&sql);
	if (rc != SQLITE_OK)
		return db_error(st, rc, err, "could not list runs in state store \"%s\"", st->path);
	if (dest_id)
		sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, ":dest"), dest_id, -1,
				  SQLITE_STATIC);
	sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":limit"),
			   limit && limit < INT64_MAX ? (int64_t)limit : -1);
	return list_rows(st, s, "runs", each_run, &a, err);
}

struct ledger_list_arg {
	state_ledger_fn fn;
	void *ctx;
	char keybuf[KEYBUF_SIZE];
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

enum jerr state_ledger_list(struct state *st, const char *dest_id, int64_t run_id,
			    const struct rkey *key, size_t limit, state_ledger_fn fn, void *ctx,
			    struct jerror *err)
{
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
	rc = sqlite3_prepare_v2(st->db, sql.buf, -1, &s, NULL);
	strbuf_release(&sql);
	if (rc != SQLITE_OK)
		return db_error(st, rc, err, "could not list the error ledger in state store \"%s\"",
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
	return list_rows(st, s, "the error ledger", each_ledger, &a, err);
}

/* ---- locks ---- */

struct lock_info {
	bool found;
	struct strbuf holder, host;
	int64_t pid, token, acquired_at, heartbeat_at;
};

static enum jerr lock_read(struct state *st, const char *dest_id, struct lock_info *li,
			   struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret = get_stmt(st, S_LOCK_GET, &s, err);
	int rc;
	if (ret)
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	li->found = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW) {
		strbuf_addstr(&li->holder, (const char *)sqlite3_column_text(s, 0));
		strbuf_addstr(&li->host, (const char *)sqlite3_column_text(s, 1));
		li->pid = sqlite3_column_int64(s, 2);
		li->token = sqlite3_column_int64(s, 3);
		li->acquired_at = sqlite3_column_int64(s, 4);
		li->heartbeat_at = sqlite3_column_int64(s, 5);
	} else if (rc != SQLITE_DONE) {
		ret = db_error(st, rc, err,
			       "could not read the lock of destination \"%s\" in state store \"%s\"",
			       dest_id, st->path);
	}
	stmt_done(s);
	return ret;
}

static bool process_gone(const struct state *st, const struct lock_info *li)
{
	if (strcmp(li->host.buf, st->host) != 0 || li->pid <= 0 || li->pid > INT32_MAX)
		return false;
	return kill((pid_t)li->pid, 0) != 0 && errno == ESRCH;
}

enum jerr state_lock_acquire_stale(struct state *st, const char *dest_id, const char *holder,
				   int64_t stale_ms, struct jerror *err)
{
	struct lock_info li = { false, STRBUF_INIT, STRBUF_INIT, 0, 0, 0, 0 };
	bool own_tx;
	int64_t now = now_ms();
	sqlite3_stmt *s;
	enum jerr ret;

	if ((ret = refuse_readonly(st, err)))
		return ret;
	own_tx = sqlite3_get_autocommit(st->db);
	if (own_tx && (ret = state_begin(st, err)))
		return ret;
	if ((ret = lock_read(st, dest_id, &li, err)))
		goto out;
	if (li.found) {
		bool stale = li.token != st->token &&
			     (li.heartbeat_at < now - stale_ms || process_gone(st, &li));
		if (!stale) {
			struct strbuf d = STRBUF_INIT;
			ret = jerror_set(err, JERR_STATE_BUSY,
					 li.token == st->token ? "destination \"%s\" is already locked by this run"
							       : "destination \"%s\" is locked by another run",
					 dest_id);
			strbuf_addf(&d, "held by \"%s\" (pid %" PRId64 " on %s) since ", li.holder.buf,
				    li.pid, li.host.buf);
			add_time(&d, li.acquired_at);
			strbuf_addf(&d, "; last heartbeat %" PRId64 " s ago; state store \"%s\"",
				    (now - li.heartbeat_at) / 1000, st->path);
			jerror_detail(err, "%s", d.buf);
			jerror_hint(err, "wait for that run to finish; a lock is taken over when its "
					 "process has exited or its heartbeat is %" PRId64 " minutes old",
				    stale_ms / 60000);
			strbuf_release(&d);
			goto out;
		}
		log_warn("destination \"%s\": taking over the stale lock of \"%s\" (pid %" PRId64
			 " on %s, last heartbeat %" PRId64 " s ago)",
			 dest_id, li.holder.buf, li.pid, li.host.buf, (now - li.heartbeat_at) / 1000);
	}
	if ((ret = get_stmt(st, S_LOCK_SET, &s, err)))
		goto out;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	bind_str(s, 2, holder ? holder : "joey");
	bind_str(s, 3, st->host);
	sqlite3_bind_int64(s, 4, (int64_t)getpid());
	sqlite3_bind_int64(s, 5, st->token);
	sqlite3_bind_int64(s, 6, now);
	{
		struct strbuf what = STRBUF_INIT;
		strbuf_addf(&what, "lock destination \"%s\"", dest_id);
		ret = step_write(st, s, what.buf, NULL, NULL, err);
		strbuf_release(&what);
	}
	if (!ret && own_tx) {
		ret = state_commit(st, err);
		own_tx = false;
	}
out:
	if (own_tx)
		state_rollback(st);
	strbuf_release(&li.holder);
	strbuf_release(&li.host);
	return ret;
}

enum jerr state_lock_acquire(struct state *st, const char *dest_id, const char *holder,
			     struct jerror *err)
{
	return state_lock_acquire_stale(st, dest_id, holder, STATE_LOCK_STALE_MS, err);
}

enum jerr state_lock_heartbeat(struct state *st, const char *dest_id, struct jerror *err)
{
	sqlite3_stmt *s;
	struct strbuf what = STRBUF_INIT;
	enum jerr ret;
	if ((ret = refuse_readonly(st, err)) || (ret = get_stmt(st, S_LOCK_BEAT, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, st->token);
	sqlite3_bind_int64(s, 3, now_ms());
	strbuf_addf(&what, "refresh the lock of destination \"%s\"", dest_id);
	ret = step_write(st, s, what.buf, NULL, NULL, err);
	strbuf_release(&what);
	if (!ret && sqlite3_changes(st->db) == 0) {
		ret = jerror_set(err, JERR_STATE_BUSY, "lost the lock of destination \"%s\"", dest_id);
		jerror_detail(err, "another run took it over in state store \"%s\"", st->path);
		jerror_hint(err, "heartbeats must come more often than the stale time of the lock");
	}
	return ret;
}

void state_lock_release(struct state *st, const char *dest_id)
{
	sqlite3_stmt *s;
	struct jerror e = JERROR_INIT;
	if (!st || st->readonly)
		return;
	if (!get_stmt(st, S_LOCK_DEL, &s, &e)) {
		struct strbuf what = STRBUF_INIT;
		sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, st->token);
		strbuf_addf(&what, "release the lock of destination \"%s\"", dest_id);
		step_write(st, s, what.buf, NULL, NULL, &e); /* a failure is logged below */
		strbuf_release(&what);
	}
	if (e.code)
		log_error("%s", e.msg.buf);
	jerror_release(&e);
}

/* ---- hash ---- */

void state_hash(const void *data, size_t len, unsigned char out[STATE_HASH_LEN])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
	memcpy(out, c.digest, STATE_HASH_LEN);
}

/* ---- marks ---- */

enum jerr state_mark_get(struct state *st, const char *schedule_id, struct strbuf *value,
			 bool *found, struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret;
	int rc;

	*found = false;
	strbuf_reset(value);
	if (st->version < 2)
		return JERR_OK; /* an older store opened read-only: no marks table yet */
	if ((ret = get_stmt(st, S_MARK_GET, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, schedule_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*found = true;
		strbuf_add(value, (const char *)sqlite3_column_text(s, 0),
			   (size_t)sqlite3_column_bytes(s, 0));
	} else if (rc != SQLITE_DONE) {
		ret = db_error(st, rc, err,
			       "could not read the mark of schedule \"%s\" in state store \"%s\"",
			       schedule_id, st->path);
	}
	stmt_done(s);
	return ret;
}

enum jerr state_mark_set(struct state *st, const char *schedule_id, const char *value,
			 struct jerror *err)
{
	sqlite3_stmt *s;
	enum jerr ret;
	int rc;

	if ((ret = refuse_readonly(st, err)) || (ret = get_stmt(st, S_MARK_SET, &s, err)))
		return ret;
	sqlite3_bind_text(s, 1, schedule_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now_ms());
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = db_error(st, rc, err,
			       "could not store the mark of schedule \"%s\" in state store \"%s\"",
			       schedule_id, st->path);
	stmt_done(s);
	return ret;
}
