/* sqlite.c: tests of what only the SQLite state store has (src/state/sqlite/): the file. */
#include "support/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>
#include <xxhash.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "state/backend.h"
#include "state/state.h"

#define IK(n) ((struct rkey){ true, (n), SLICE_LIT(#n) })
#define TK(s) ((struct rkey){ false, 0, SLICE_LIT(s) })

static char *path_in(const char *dir, const char *rel)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s/%s", dir, rel);
	return strbuf_detach(&sb, NULL);
}

static bool file_exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* Run SQL on the file with a separate plain SQLite connection. */
static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t v = -1;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* First column of the first row as text (malloc'd), or NULL. */
static char *raw_text(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char *v = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
		v = xstrdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* SQLite finds the file at path whole (PRAGMA integrity_check). */
static void assert_integrity_ok(const char *path)
{
	char *check = raw_text(path, "PRAGMA integrity_check");
	assert_string_equal(check, "ok");
	free(check);
}

static struct state *open_ok(const char *path, enum state_open_mode mode)
{
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	if (state_open(path, mode, &st, &err) != JERR_OK)
		fail_msg("state_open(%s): %s / %s", path, err.msg.buf, err.detail.buf);
	jerror_release(&err);
	assert_non_null(st);
	return st;
}

static void put_ok(struct state *st, const char *dest, struct rkey key, const char *payload,
		   bool in_scope)
{
	struct jerror err = JERROR_INIT;
	unsigned char h[STATE_HASH_LEN];
	state_hash(payload, strlen(payload), h);
	if (state_put(st, dest, &key, slice_of(payload), h, in_scope, &err) != JERR_OK)
		fail_msg("state_put: %s / %s", err.msg.buf, err.detail.buf);
	jerror_release(&err);
}

/* ---- open, create, migrate, refuse ---- */

static void test_create_nested_and_reopen(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "a/b/c/state.db");
	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	assert_true(file_exists(path));
	assert_int_equal(state_schema_version(st), STATE_SCHEMA_VERSION);
	assert_string_equal(state_path(st), path);
	put_ok(st, "d", IK(1), "{\"a\":1}", true);
	state_close(st);

	assert_int_equal(raw_int(path, "PRAGMA application_id"), STATE_APPLICATION_ID);
	assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"),
			 STATE_SCHEMA_VERSION);
	{
		char *mode = raw_text(path, "PRAGMA journal_mode");
		assert_string_equal(mode, "wal");
		free(mode);
	}

	st = open_ok(path, STATE_OPEN_READONLY);
	{
		uint64_t n = 0;
		struct jerror err = JERROR_INIT;
		assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
		assert_int_equal(n, 1);
	}
	state_close(st);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

static unsigned mode_of(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		fail_msg("stat(%s): %s", path, strerror(errno));
	return (unsigned)(sb.st_mode & 07777);
}

/*
 * Opening the store again in the same process (serve: a job, the alert thread, an API
 * request) must not drop the locks the first connection holds: closing any descriptor
 * of the file drops all of the process's POSIX locks on it, and another process could
 * then write (or checkpoint and remove the WAL) under the first connection. Here the
 * first connection holds the write lock; after a second open, another process must
 * still see its locks on the -shm file (F_GETLK).
 */
static void test_second_open_keeps_locks(void **s)
{
	(void)s;
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct state *a = NULL, *b = NULL;
	struct jerror err = JERROR_INIT;
	int status = -1;

	assert_int_equal(state_open(path, STATE_OPEN_CREATE, &a, &err), JERR_OK);
	assert_int_equal(state_begin(a, &err), JERR_OK); /* BEGIN IMMEDIATE: the write lock */
	assert_int_equal(state_open(path, STATE_OPEN_CREATE, &b, &err), JERR_OK);
	pid_t pid = fork();
	if (pid == 0) {
		/* the parent's locks on the -shm file (WAL: the write lock, the readers'
		 * marks), as another process sees them */
		char shm[4096];
		snprintf(shm, sizeof(shm), "%s-shm", path);
		int fd = open(shm, O_RDWR);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
		if (fd < 0 || fcntl(fd, F_GETLK, &fl) != 0)
			_exit(2);
		_exit(fl.l_type != F_UNLCK && fl.l_pid == getppid() ? 0 : 1);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("after a second open, another process sees none of the first connection's locks on the -shm file");
	state_rollback(a);
	state_close(b);
	state_close(a);
	jerror_release(&err);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/*
 * The store holds every synced user's email and name: the directories joey makes are
 * 0700 and the database files (main, -wal, -shm) 0600, whatever the umask; an older
 * store that others could read is brought down to 0600 when opened for writing.
 */
static void test_files_private(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "a/b/state.db");
	char *a = path_in(dir, "a"), *ab = path_in(dir, "a/b");
	struct strbuf side = STRBUF_INIT;
	mode_t old = umask(022);

	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	put_ok(st, "d", IK(1), "{\"email\":\"a@b.co\"}", true);
	assert_int_equal(mode_of(a), 0700);
	assert_int_equal(mode_of(ab), 0700);
	assert_int_equal(mode_of(path), 0600);
	strbuf_addf(&side, "%s-wal", path);
	assert_int_equal(mode_of(side.buf), 0600);
	strbuf_reset(&side);
	strbuf_addf(&side, "%s-shm", path);
	assert_int_equal(mode_of(side.buf), 0600);
	state_close(st);

	/* a store made by an older joey (0644): tightened at the next open for writing */
	assert_int_equal(chmod(path, 0644), 0);
	state_close(open_ok(path, STATE_OPEN_CREATE));
	assert_int_equal(mode_of(path), 0600);
	umask(old);
	strbuf_release(&side);
	free(a);
	free(ab);
	free(path);
	tu_rmtree(dir);
	free(dir);
	(void)s;
}

static void test_migrations_idempotent(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	int64_t objects;
	state_close(open_ok(path, STATE_OPEN_CREATE));
	objects = raw_int(path, "SELECT count(*) FROM sqlite_master");
	assert_true(objects >= 5);
	for (int i = 0; i < 3; i++) {
		struct state *st = open_ok(path, STATE_OPEN_CREATE);
		assert_int_equal(state_schema_version(st), STATE_SCHEMA_VERSION);
		state_close(st);
	}
	assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master"), objects);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM meta"), 1);
	/* an empty existing file is a fresh store */
	tu_write(dir, "empty.db", "");
	free(path);
	path = path_in(dir, "empty.db");
	state_close(open_ok(path, STATE_OPEN_CREATE));
	assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master"), objects);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

static void test_not_a_state_store(void **s)
{
	char *dir = tu_mkdtemp();
	char *garbage = path_in(dir, "garbage.db");
	char *foreign = path_in(dir, "foreign.db");
	struct strbuf want = STRBUF_INIT;
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	char junk[4096];

	memset(junk, 'x', sizeof(junk));
	junk[sizeof(junk) - 1] = '\0';
	tu_write(dir, "garbage.db", junk);
	assert_int_equal(state_open(garbage, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	assert_null(st);
	strbuf_addf(&want, "\"%s\" is not a joey state store", garbage);
	assert_string_equal(err.msg.buf, want.buf);
	assert_non_null(strstr(err.detail.buf, "not a database"));
	assert_true(err.hint.len > 0);
	assert_int_equal(state_open(garbage, STATE_OPEN_READONLY_OR_EMPTY, &st, &err), JERR_STATE);
	assert_string_equal(err.msg.buf, want.buf);
	/* short text file, as in the e2e test */
	tu_write(dir, "garbage.db", "not a database\n");
	assert_int_equal(state_open(garbage, STATE_OPEN_READONLY, &st, &err), JERR_STATE);
	assert_string_equal(err.msg.buf, want.buf);

	/* an SQLite database of some other program */
	raw_exec(foreign, "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);");
	assert_int_equal(state_open(foreign, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	strbuf_reset(&want);
	strbuf_addf(&want, "\"%s\" is not a joey state store", foreign);
	assert_string_equal(err.msg.buf, want.buf);
	assert_non_null(strstr(err.detail.buf, "application_id 0x00000000 and 1 tables"));
	/* nothing was added to it */
	assert_int_equal(raw_int(foreign, "SELECT count(*) FROM sqlite_master"), 1);

	strbuf_release(&want);
	jerror_release(&err);
	free(garbage);
	free(foreign);
	tu_rmtree(dir);
	free(dir);
}

/* ---- records ---- */

static void test_memory_store(void **s)
{
	struct state *st = open_ok(":memory:", STATE_OPEN_CREATE);
	struct state *ro = NULL;
	struct jerror err = JERROR_INIT;
	struct rkey k = IK(1);
	struct state_row *row = NULL;
	bool found = false;
	put_ok(st, "d", k, "{\"a\":1}", true);
	assert_int_equal(state_get(st, "d", &k, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_string_equal(state_path(st), ":memory:");
	assert_string_equal(state_backend_name(st), "SQLite");
	state_close(st);
	/* every :memory: store is a new one */
	ro = open_ok(":memory:", STATE_OPEN_READONLY_OR_EMPTY);
	assert_int_equal(state_get(ro, "d", &k, &row, &found, &err), JERR_OK);
	assert_false(found);
	state_close(ro);
	jerror_release(&err);
}

/* The sent-keys journal (state/journal.c): written, read back, taken. */
static int collect_key(void *ctx, const struct rkey *key)
{
	struct strbuf *sb = ctx;
	if (key->is_int)
		strbuf_addf(sb, "%" PRId64 ";", key->i);
	else
		strbuf_addf(sb, "'%.*s';", (int)key->text.len, key->text.ptr);
	return 0;
}

static void test_sent_keys_journal(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "journal.db");
	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct strbuf keys = STRBUF_INIT, jpath = STRBUF_INIT;
	int64_t run_id = 0, started_at;
	char sql[96];
	struct rkey k1 = IK(7), k2 = TK("00a");
	const struct rkey *batch[] = { &k1, &k2 };

	assert_int_equal(state_run_start(st, "d", "run", &run_id, &err), JERR_OK);
	assert_true(state_journal_path(st, run_id, &jpath));
	struct state_journal *j = state_journal_start(st, run_id);
	assert_non_null(j);
	assert_int_equal(access(jpath.buf, F_OK), 0);
	assert_int_equal(state_journal_add(j, batch, 2, &err), JERR_OK);
	/* read back for that run's start only (another start: another store's run of that id) */
	snprintf(sql, sizeof(sql), "SELECT started_at FROM runs WHERE id = %" PRId64, run_id);
	started_at = raw_int(path, sql);
	assert_int_equal(state_journal_read(st, run_id, started_at + 1, collect_key, &keys), JOURNAL_UNTRUSTED);
	assert_int_equal(access(jpath.buf, F_OK), -1); /* taken, even when not trusted */
	state_journal_finish(j, true);

	/* every kind of key read back as written: integers (negative too), texts (empty, longer than 255) */
	char long_text[300];
	memset(long_text, 'x', sizeof(long_text));
	struct rkey k3 = IK(-5), k4 = TK(""), k5 = { .is_int = false, .text = { long_text, sizeof(long_text) } };
	const struct rkey *all[] = { &k1, &k2, &k3, &k4, &k5 };
	j = state_journal_start(st, run_id);
	assert_non_null(j);
	assert_int_equal(state_journal_add(j, all, 2, &err), JERR_OK);
	assert_int_equal(state_journal_add(j, all + 2, 3, &err), JERR_OK);
	strbuf_reset(&keys);
	assert_int_equal(state_journal_read(st, run_id, started_at, collect_key, &keys), JOURNAL_OK);
	assert_int_equal(keys.len, strlen("7;'00a';-5;'';''") + sizeof(long_text) + 1);
	assert_memory_equal(keys.buf, "7;'00a';-5;'';'", 15);
	assert_memory_equal(keys.buf + 15, long_text, sizeof(long_text));
	state_journal_finish(j, true);

	/* taken by another run's abandon: the run that wrote it may send nothing more */
	j = state_journal_start(st, run_id);
	assert_non_null(j);
	assert_int_equal(state_journal_add(j, batch, 1, &err), JERR_OK);
	strbuf_reset(&keys);
	assert_int_equal(state_journal_read(st, run_id, started_at, collect_key, &keys), JOURNAL_OK);
	assert_string_equal(keys.buf, "7;");
	assert_int_equal(state_journal_add(j, batch + 1, 1, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "was taken by another run"));
	state_journal_finish(j, true);
	assert_int_equal(state_journal_read(st, run_id, started_at, collect_key, &keys), JOURNAL_MISSING);

	/* a store in memory keeps none */
	struct state *mem = open_ok(":memory:", STATE_OPEN_CREATE);
	assert_false(state_journal_path(mem, 1, &jpath));
	assert_null(state_journal_start(mem, 1));
	state_close(mem);

	strbuf_release(&keys);
	strbuf_release(&jpath);
	jerror_release(&err);
	state_close(st);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

static void test_cursor_needs_no_sort(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	sqlite3 *db;
	sqlite3_stmt *q;
	struct strbuf plan = STRBUF_INIT;

	state_close(open_ok(path, STATE_OPEN_CREATE));
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT key FROM records"
						" WHERE dest_id = 'd' ORDER BY key",
					    -1, &q, NULL),
			 SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW)
		strbuf_addf(&plan, "%s\n", (const char *)sqlite3_column_text(q, 3));
	sqlite3_finalize(q);
	sqlite3_close(db);
	assert_null(strstr(plan.buf, "TEMP B-TREE"));
	assert_non_null(strstr(plan.buf, "USING PRIMARY KEY"));
	strbuf_release(&plan);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

/* Read a cursor of dest on st to its end; the number of rows. */
static size_t walk_count(struct state_cursor *cur)
{
	struct jerror err = JERROR_INIT;
	struct state_row *row = NULL;
	size_t n = 0;
	for (;;) {
		assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
		if (!row)
			break;
		n++;
	}
	jerror_release(&err);
	return n;
}

/*
 * A read-only connection's cursors read one snapshot (records.c: hold_read) from their
 * first batch until the last of them is closed: a row another connection writes between
 * two batches is not seen, and it is seen by a cursor opened after.
 */
static void test_read_only_cursor_snapshot(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct jerror err = JERROR_INIT;
	struct state_cursor *cur = NULL;
	struct state_row *row = NULL;
	char key[16];

	struct state *w = open_ok(path, STATE_OPEN_CREATE);
	for (int i = 1; i <= 3 * STATE_BATCH_ROWS; i++) {
		snprintf(key, sizeof(key), "%d", i);
		put_ok(w, "d", (struct rkey){ true, i, { key, strlen(key) } }, "{\"a\":1}", true);
	}
	struct state *ro = open_ok(path, STATE_OPEN_READONLY);
	assert_int_equal(state_cursor_open(ro, "d", &cur, &err), JERR_OK);
	assert_int_equal(state_cursor_next(cur, &row, &err), JERR_OK);
	assert_non_null(row); /* the first batch is read */
	put_ok(w, "d", IK(100000), "{\"a\":2}", true); /* past every batch read so far */
	assert_int_equal(1 + walk_count(cur), 3 * STATE_BATCH_ROWS);
	state_cursor_close(cur);
	assert_int_equal(state_cursor_open(ro, "d", &cur, &err), JERR_OK);
	assert_int_equal(walk_count(cur), 3 * STATE_BATCH_ROWS + 1);
	state_cursor_close(cur);
	/* the read is over: the writer can checkpoint, and the reader's next cursor sees it */
	put_ok(w, "d", IK(100001), "{\"a\":3}", true);
	assert_int_equal(state_cursor_open(ro, "d", &cur, &err), JERR_OK);
	assert_int_equal(walk_count(cur), 3 * STATE_BATCH_ROWS + 2);
	state_cursor_close(cur);
	jerror_release(&err);
	state_close(ro);
	state_close(w);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

/* ---- failures of the file system ---- */

static void test_read_only_directory(void **s)
{
	char *dir = tu_mkdtemp();
	char *sub = path_in(dir, "ro");
	char *path = path_in(dir, "ro/state.db");
	char *nested = path_in(dir, "ro/deeper/state.db");
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	enum jerr rc;

	state_close(open_ok(path, STATE_OPEN_CREATE));
	assert_int_equal(chmod(sub, 0555), 0);
	if (geteuid() == 0) {
		/* root ignores permissions: nothing to observe */
		assert_int_equal(chmod(sub, 0755), 0);
		free(sub);
		free(path);
		free(nested);
		tu_rmtree(dir);
		free(dir);
		skip();
	}
	/* a new store under a read-only directory */
	assert_int_equal(state_open(nested, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "could not create directory"));
	assert_non_null(strstr(err.hint.buf, "read-only"));

	/* an existing store in a read-only directory: WAL needs to create files beside it */
	rc = state_open(path, STATE_OPEN_CREATE, &st, &err);
	if (rc == JERR_OK) {
		struct rkey k = IK(1);
		rc = state_mark_failed(st, "d", &k, "x", (struct slice){ NULL, 0 }, &err);
		state_close(st);
	}
	assert_int_equal(rc, JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "read-only"));
	assert_non_null(strstr(err.hint.buf, "writable"));
	/* but `joey plan` can read it (immutable: no -shm needed) */
	{
		uint64_t n = 9;
		st = open_ok(path, STATE_OPEN_READONLY_OR_EMPTY);
		assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
		assert_int_equal(n, 0);
		state_close(st);
	}

	/* a read-only file in a writable directory */
	assert_int_equal(chmod(sub, 0755), 0);
	assert_int_equal(chmod(path, 0444), 0);
	assert_int_equal(state_open(path, STATE_OPEN_CREATE, &st, &err), JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "read-only"));
	/* reading it is fine */
	state_close(open_ok(path, STATE_OPEN_READONLY));

	jerror_release(&err);
	free(sub);
	free(path);
	free(nested);
	tu_rmtree(dir);
	free(dir);
}

static void test_disk_full(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct strbuf big = STRBUF_INIT;
	struct state_row *row = NULL;
	unsigned char h[STATE_HASH_LEN] = { 1 };
	struct rkey k1 = IK(1);
	bool found = false;
	uint64_t n = 0;
	enum jerr rc = JERR_OK;

	put_ok(st, "d", k1, "{\"committed\":true}", true);
	assert_int_equal(state_limit_size(st, 64 * 1024, &err), JERR_OK);
	for (int i = 0; i < 2000; i++)
		strbuf_addstr(&big, "0123456789abcdef");
	assert_int_equal(state_begin(st, &err), JERR_OK);
	for (int64_t i = 100; i < 200 && !rc; i++) {
		struct rkey k = { true, i, SLICE_LIT("big") };
		rc = state_put(st, "d", &k, (struct slice){ big.buf, big.len }, h, true, &err);
	}
	/* puts in a transaction are written behind (sqlite_internal.h): the failure
	 * surfaces at the next statement, here the commit, which rolls back */
	assert_int_equal(rc, JERR_OK);
	rc = state_commit(st, &err);
	assert_int_equal(rc, JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "the disk is full"));
	assert_non_null(strstr(err.msg.buf, path));
	assert_non_null(strstr(err.msg.buf, "record \"big\" of destination \"d\""));
	assert_non_null(strstr(err.hint.buf, "free space"));
	assert_true(err.detail.len > 0);
	state_rollback(st);

	/* the committed state is intact, and the store still works */
	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(state_get(st, "d", &k1, &row, &found, &err), JERR_OK);
	assert_true(found);
	assert_true(slice_eq_str(row->payload, "{\"committed\":true}"));
	put_ok(st, "d", IK(2), "{}", true);

	/* a full batch of kept puts (one multi-row INSERT) that does not fit: the put after
	 * it fails with the disk full, naming how many rows and the destination */
	strbuf_reset(&big);
	for (int i = 0; i < 40; i++)
		strbuf_addstr(&big, "0123456789abcdef");
	assert_int_equal(state_begin(st, &err), JERR_OK);
	rc = JERR_OK;
	for (int64_t i = 1000; i < 1000 + 257 && !rc; i++) {
		struct rkey k = { true, i, { NULL, 0 } };
		rc = state_put(st, "d", &k, (struct slice){ big.buf, big.len }, h, true, &err);
	}
	assert_int_equal(rc, JERR_STATE);
	assert_non_null(strstr(err.msg.buf, "could not store 256 records of destination \"d\""));
	assert_non_null(strstr(err.msg.buf, "the disk is full"));
	state_rollback(st);
	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 2);
	state_close(st);

	st = open_ok(path, STATE_OPEN_READONLY);
	assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
	assert_int_equal(n, 2);
	state_close(st);
	assert_integrity_ok(path);
	strbuf_release(&big);
	jerror_release(&err);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

/*
 * A batch that rewrites many big rows: its statement journal (the pages the statement
 * changes, kept until it ends) passes the spill threshold and goes to a temporary
 * file. With a threshold of 16 MiB every such spill failed as "the disk is full"
 * (open.c: sq_config_process), whatever the disk held, and the destination could
 * never store that batch. Here 300 records of 70 KB each (five overflow pages each)
 * are written, then all rewritten in one transaction: both commit and read back.
 */
static void test_big_statement_journal(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	struct jerror err = JERROR_INIT;
	struct strbuf big = STRBUF_INIT;
	unsigned char h[STATE_HASH_LEN] = { 7 };
	enum { N = 300, VALUE = 70000 };

	for (int round = 0; round < 2; round++) {
		assert_int_equal(state_begin(st, &err), JERR_OK);
		for (int64_t i = 0; i < N; i++) {
			struct rkey k = { true, i, { NULL, 0 } };
			strbuf_reset(&big);
			strbuf_addf(&big, "{\"attributes\":{\"note\":\"%d:%" PRId64 ":", round, i);
			for (size_t j = 0; j < VALUE; j++)
				strbuf_addch(&big, (char)('a' + (j * 7 + (size_t)i + (size_t)round) % 26));
			strbuf_addstr(&big, "\"},\"groups\":[]}");
			if (state_put(st, "d", &k, (struct slice){ big.buf, big.len }, h, true, &err) != JERR_OK)
				fail_msg("round %d, record %" PRId64 ": %s", round, i, err.msg.buf);
		}
		if (state_commit(st, &err) != JERR_OK)
			fail_msg("round %d: %s", round, err.msg.buf);
	}
	for (int64_t i = 0; i < N; i += 37) {
		struct state_row *row = NULL;
		struct rkey k = { true, i, { NULL, 0 } };
		bool found = false;
		char head[64];
		assert_int_equal(state_get(st, "d", &k, &row, &found, &err), JERR_OK);
		assert_true(found);
		snprintf(head, sizeof(head), "{\"attributes\":{\"note\":\"1:%" PRId64 ":", i);
		assert_true(row->payload.len > VALUE);
		assert_memory_equal(row->payload.ptr, head, strlen(head));
	}
	state_close(st);
	assert_integrity_ok(path);
	strbuf_release(&big);
	jerror_release(&err);
	free(path);
	tu_rmtree(dir);
	free(dir);
	(void)s;
}

/* ---- high-water marks; a version 1 store upgrades to the current version ---- */

static void test_v1_upgrades_to_v2(void **s)
{
	char *dir = tu_mkdtemp();
	char *path = path_in(dir, "state.db");
	struct state *st = open_ok(path, STATE_OPEN_CREATE);
	struct strbuf v = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	bool found = true;

	put_ok(st, "d", IK(1), "{\"a\":1}", true);
	state_close(st);
	/* make it what joey with schema version 1 wrote */
	raw_exec(path, "DROP TABLE marks; UPDATE meta SET value = 1 WHERE key = 'schema_version';");

	/* read-only (joey plan): opened as it is, records readable, no marks */
	st = open_ok(path, STATE_OPEN_READONLY_OR_EMPTY);
	assert_int_equal(state_schema_version(st), 1);
	{
		uint64_t n = 0;
		assert_int_equal(state_count(st, "d", &n, &err), JERR_OK);
		assert_int_equal(n, 1);
	}
	assert_int_equal(state_mark_get(st, "sched", &v, NULL, &found, &err), JERR_OK);
	assert_false(found);
	state_close(st);
	assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 1);

	/* CREATE (joey run) migrates: marks exist, records kept */
	st = open_ok(path, STATE_OPEN_CREATE);
	assert_int_equal(state_schema_version(st), STATE_SCHEMA_VERSION);
	assert_int_equal(state_mark_set(st, "sched", "7", NULL, &err), JERR_OK);
	assert_int_equal(state_mark_get(st, "sched", &v, NULL, &found, &err), JERR_OK);
	assert_true(found);
	assert_string_equal(v.buf, "7");
	state_close(st);
	assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), STATE_SCHEMA_VERSION);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM records"), 1);

	jerror_release(&err);
	strbuf_release(&v);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_nested_and_reopen),
		cmocka_unit_test(test_migrations_idempotent),
		cmocka_unit_test(test_v1_upgrades_to_v2),
		cmocka_unit_test(test_not_a_state_store),
		cmocka_unit_test(test_memory_store),
		cmocka_unit_test(test_sent_keys_journal),
		cmocka_unit_test(test_cursor_needs_no_sort),
		cmocka_unit_test(test_read_only_cursor_snapshot),
		cmocka_unit_test(test_read_only_directory),
		cmocka_unit_test(test_files_private),
		cmocka_unit_test(test_second_open_keeps_locks),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_big_statement_journal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
