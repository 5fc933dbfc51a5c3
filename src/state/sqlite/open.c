/*
 * open.c: opening and closing an SQLite state store: the file made private, the
 * connection, checking that the file is a joey store, migrating its schema, the
 * read-only and empty-in-memory opens, and the size limit. Owns the struct sq_state
 * and its connection from sq_open/sq_open_empty to sq_close. Called through the ops
 * table (ops.c) by state_open and state_close (state.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include "state/schema.h"
#include "state/sqlite/sqlite_internal.h"

/*
 * Set before SQLite starts (sqlite3_config refuses, harmlessly, once it has):
 * - SQLite counts every allocation under a global mutex for sqlite3_memory_used(),
 *   which joey never asks: off, it takes a twentieth of the CPU of writing a first
 *   sync's state rows.
 * - A statement that writes many rows keeps a statement journal (the pages it changed),
 *   spilled to a temporary file past 64 KiB; the write-behind's INSERT of 256 rows
 *   (records.c) passed that on most statements. It may stay in memory up to
 *   SQ_STMTJRNL_SPILL, and no further: the spill writes what memory held in one call,
 *   and SQLite's unix VFS writes at most 0x1ffff bytes a call (os_unix.c,
 *   seekAndWriteFd; the rest of a longer write is lost), so with a threshold of 128 KiB
 *   or more a spill could fail as SQLITE_FULL, "database or disk is full", with the
 *   disk far from full: with 16 MiB every spill did (tests/unit/state/sqlite.c:
 *   test_big_statement_journal). Writing a first sync's rows (bench/state_put.c) costs
 *   about 5% more CPU with 128 KiB - 1 than with 16 MiB, and 8% more with 64 KiB.
 */
#define SQ_STMTJRNL_SPILL (128 * 1024 - 1)
_Static_assert(SQ_STMTJRNL_SPILL <= 0x1ffff, "a statement journal's spill is one write: at most 0x1ffff bytes");

__attribute__((constructor)) static void sq_config_process(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	(void)sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, SQ_STMTJRNL_SPILL);
}

/* ---- identify, migrate ---- */

/*
 * The schema version recorded in meta (0 if there is no meta table yet).
 * *invalid is set when meta exists but holds no sensible version.
 */
static int read_version(struct sq_state *sq, int64_t *version, bool *invalid)
{
	int64_t n = 0;
	bool found;
	int rc = sq_query_int(sq, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
			      &n, &found);
	*version = 0;
	*invalid = false;
	if (rc != SQLITE_OK || n == 0)
		return rc;
	rc = sq_query_int(sq, "SELECT value FROM meta WHERE key = 'schema_version'", version, &found);
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
	rc = sq_query_int(sq, "PRAGMA application_id", &app_id, &found);
	if (rc == SQLITE_OK)
		rc = sq_query_int(sq, "SELECT count(*) FROM sqlite_master", &n_tables, &found);
	if ((rc & 0xff) == SQLITE_NOTADB) {
		jerror_set(err, JERR_STATE, "\"%s\" is not a joey state store", path);
		jerror_detail(err, "SQLite: %s", sqlite3_errmsg(sq->db));
		jerror_hint(err, "pass --state with the path of a joey state store, or move this "
				 "file away to start afresh");
		return JERR_STATE;
	}
	if (rc != SQLITE_OK)
		return sq_db_error(sq, rc, err, "could not open state store \"%s\"", path);
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
		return sq_db_error(sq, rc, err, "could not read the schema version of state store \"%s\"",
				   path);
	if (invalid) {
		jerror_set(err, JERR_STATE, "state store \"%s\" has no valid schema version", path);
		jerror_detail(err, "table meta has no positive integer \"schema_version\"");
		jerror_hint(err, "restore it from a backup, or move it away to start afresh "
				 "(the next run then re-sends every record)");
		return JERR_STATE;
	}
	return state_check_newer(path, *version, "file", err);
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
			ret = sq_db_error(sq, rc, err,
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
		if (sq_is_perm_errno(e))
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
	sq_ahead_free(sq);
	free(sq->reopen);
	sq->reopen = NULL;
	sq_drop_puts(sq); /* a transaction not committed: never written */
	sq_names_release(&sq->names); /* what this connection knew */
	sqlite3_finalize(sq->put_batch);
	sq->put_batch = NULL;
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
		return sq_db_error(sq, rc, err, "could not open state store \"%s\"", sq->base.path);
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
	sq_dir_of(path, &dir);
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
		ret = sq_exec_sql(sq, "PRAGMA foreign_keys = ON", err, "configure");
	if (!ret)
		ret = migrate(sq, 0, err);
	sq->base.readonly = true;
	return ret;
}

void sq_close(struct state *st)
{
	struct sq_state *sq = sq_of(st);
	close_db(sq);
	free(sq->pend);
	strbuf_release(&sq->pend_bytes);
	state_base_release(&sq->base);
	free(sq);
}

static struct sq_state *sq_new(const char *name)
{
	struct sq_state *sq = xcalloc(1, sizeof(*sq));
	state_base_init(&sq->base, &state_sqlite, name);
	strbuf_init(&sq->pend_bytes, 0);
	return sq;
}

enum jerr sq_open_empty(const char *name, struct state **out, struct jerror *err)
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

enum jerr sq_open(const char *path, enum state_open_mode mode, struct state **out,
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
		if (!ret && strcmp(path, ":memory:") != 0) {
			sq->reopen = xstrdup(uri.len ? uri.buf : path);
			sq->reopen_flags = SQLITE_OPEN_READONLY | (uri.len ? SQLITE_OPEN_URI : 0);
		}
		strbuf_release(&uri);
	}
	if (ret)
		goto done;
	if (create && sqlite3_db_readonly(sq->db, "main") == 1) {
		ret = jerror_set(err, JERR_STATE, "could not open state store \"%s\" for writing: "
						  "the state store is read-only", path);
		sq_hint_read_only(sq, err);
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
		ret = sq_exec_sql(sq, "PRAGMA foreign_keys = ON", err, "configure");
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
	if (fresh && (ret = sq_exec_sql(sq, "PRAGMA page_size = 16384", err, "configure")))
		goto done;
	/* synchronous=NORMAL is safe with WAL: see the design notes in sqlite_internal.h. */
	if ((ret = sq_exec_sql(sq, "PRAGMA journal_mode = WAL", err, "configure")) ||
	    (ret = sq_exec_sql(sq, "PRAGMA synchronous = NORMAL", err, "configure")) ||
	    (ret = sq_exec_sql(sq, "PRAGMA foreign_keys = ON", err, "configure")))
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

void sq_display(const char *path, struct strbuf *out)
{
	strbuf_addstr(out, path);
}

enum jerr sq_limit_size(struct state *st, uint64_t max_bytes, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	struct strbuf sql = STRBUF_INIT;
	int64_t page_size = 4096;
	bool found;
	enum jerr ret;
	int rc = sq_query_int(sq, "PRAGMA page_size", &page_size, &found);
	if (rc != SQLITE_OK)
		return sq_db_error(sq, rc, err, "could not read the page size of state store \"%s\"",
				   st->path);
	strbuf_addf(&sql, "PRAGMA max_page_count = %" PRIu64,
		    max_bytes / (uint64_t)(page_size > 0 ? page_size : 4096) + 1);
	ret = sq_exec_sql(sq, sql.buf, err, "limit the size of");
	strbuf_release(&sql);
	return ret;
}

