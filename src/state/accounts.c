/*
 * accounts.c: users, sessions, API tokens and the audit log of `joey serve`, in an
 * SQLite file (accounts.h). Passwords: Argon2id through libsodium's crypto_pwhash_str
 * (its interactive limits); cookie values and tokens: random bytes from
 * randombytes_buf, stored as their BLAKE2b-256 hash, so a copy of the file lets nobody
 * in. Times are epoch milliseconds.
 */
#include "state/accounts.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "base/jsonutil.h"
#include "base/strbuf.h"
#include "base/timeutil.h"
#include "base/xalloc.h"

struct accounts {
	sqlite3 *db;
	char *path;
	pthread_mutex_t lock;
	char dummy_hash[crypto_pwhash_STRBYTES]; /* verified for unknown users */
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS users (\n"
	"  name TEXT PRIMARY KEY,\n"
	"  role TEXT NOT NULL,\n"
	"  pw_hash TEXT NOT NULL,\n"
	"  created_at INTEGER NOT NULL,\n"
	"  updated_at INTEGER NOT NULL,\n"
	"  last_login_at INTEGER\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS sessions (\n"
	"  id_hash TEXT PRIMARY KEY,\n"
	"  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,\n"
	"  csrf TEXT NOT NULL,\n"
	"  addr TEXT,\n"
	"  created_at INTEGER NOT NULL,\n"
	"  last_seen_at INTEGER NOT NULL\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS api_tokens (\n"
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	"  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,\n"
	"  label TEXT NOT NULL,\n"
	"  role TEXT NOT NULL,\n"
	"  token_hash TEXT NOT NULL UNIQUE,\n"
	"  prefix TEXT NOT NULL,\n"
	"  created_at INTEGER NOT NULL,\n"
	"  last_used_at INTEGER,\n"
	"  revoked_at INTEGER\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS audit (\n"
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	"  at INTEGER NOT NULL,\n"
	"  actor TEXT NOT NULL,\n"
	"  via TEXT NOT NULL,\n"
	"  addr TEXT,\n"
	"  action TEXT NOT NULL,\n"
	"  object_class TEXT,\n"
	"  object_id TEXT,\n"
	"  before TEXT,\n"
	"  after TEXT\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);\n"
	"CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens(user);\n";

static const char *const role_names[] = { "none", "viewer", "editor", "admin" };

const char *acct_role_name(enum acct_role r)
{
	return (unsigned)r < 4 ? role_names[r] : "none";
}

enum acct_role acct_role_parse(const char *s)
{
	for (int i = 1; s && i < 4; i++)
		if (!strcmp(s, role_names[i]))
			return (enum acct_role)i;
	return ROLE_NONE;
}

bool acct_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (!n || n > ACCT_NAME_MAX || name[0] == '-' || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '.' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

const char *acct_password_problem(const char *pw)
{
	size_t n = pw ? strlen(pw) : 0;
	if (n < ACCT_PASSWORD_MIN)
		return "a password needs at least 10 characters";
	if (n > ACCT_PASSWORD_MAX)
		return "a password can have at most 1024 characters";
	return NULL;
}

char *accounts_path_for(const char *secrets_path)
{
	const char *env = getenv("JOEY_ACCOUNTS");
	if (env && *env)
		return xstrdup(env);
	struct strbuf sb = STRBUF_INIT;
	const char *slash = secrets_path ? strrchr(secrets_path, '/') : NULL;
	if (slash)
		strbuf_add(&sb, secrets_path, (size_t)(slash - secrets_path + 1));
	strbuf_addstr(&sb, "accounts.db");
	return strbuf_detach(&sb, NULL);
}

/* ---- helpers ---- */

static enum jerr db_fail(struct accounts *a, struct jerror *err, const char *what)
{
	jerror_set(err, JERR_STATE, "accounts store \"%s\": %s failed", a->path, what);
	jerror_detail(err, "%s", sqlite3_errmsg(a->db));
	return JERR_STATE;
}

static sqlite3_stmt *prep(struct accounts *a, const char *sql, struct jerror *err)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_fail(a, err, "a query");
		return NULL;
	}
	return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* Run a statement that returns no rows; JERR_OK or a state error. */
static enum jerr step_done(struct accounts *a, sqlite3_stmt *st, const char *what, struct jerror *err)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(a, err, what);
	return JERR_OK;
}

/*
 * Prepare sql and bind its parameters in order from ap by types: 't' a text (const char *,
 * NULL binds NULL), 'i' an int64_t. NULL (err set) if it cannot be prepared.
 */
static sqlite3_stmt *prep_bound(struct accounts *a, struct jerror *err, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st = prep(a, sql, err);
	for (int i = 0; st && types[i]; i++) {
		if (types[i] == 't')
			bind_text(st, i + 1, va_arg(ap, const char *));
		else
			sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
	}
	return st;
}

/* prep_bound with the parameters as arguments. */
static sqlite3_stmt *prep_args(struct accounts *a, struct jerror *err, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	sqlite3_stmt *st = prep_bound(a, err, sql, types, ap);
	va_end(ap);
	return st;
}

/*
 * Read at most one row (the lock held): prepare sql, bind as prep_bound, step once. *row is
 * the statement on its row (the caller reads it, then finalizes it), or NULL when there is
 * none (finalized here) or on failure: JERR_STATE, err saying "<what> failed" (or that the
 * query could not be prepared).
 */
static enum jerr read_row(struct accounts *a, sqlite3_stmt **row, const char *what, struct jerror *err,
			  const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	sqlite3_stmt *st = prep_bound(a, err, sql, types, ap);
	va_end(ap);
	*row = NULL;
	if (!st)
		return JERR_STATE;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*row = st;
		return JERR_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? JERR_OK : db_fail(a, err, what);
}

/* Run one statement that returns no rows (the lock held), binds as prep_bound. */
static enum jerr exec_sql(struct accounts *a, const char *what, struct jerror *err, const char *sql, const char *types,
			  ...)
{
	va_list ap;
	va_start(ap, types);
	sqlite3_stmt *st = prep_bound(a, err, sql, types, ap);
	va_end(ap);
	return st ? step_done(a, st, what, err) : JERR_STATE;
}

/* Every row of st (bound, finalized here) as row() makes it, into a new array *out. */
static enum jerr collect_rows(struct accounts *a, sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *st), const char *what,
			      json_t **out, struct jerror *err)
{
	*out = NULL;
	if (!st)
		return JERR_STATE;
	json_t *arr = json_array();
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *j = row(st);
		/* a row that cannot be shown still counts: a hole would end the paging early */
		json_array_append_new(arr, j ? j : json_pack("{s:I,s:s}", "id", (json_int_t)sqlite3_column_int64(st, 0),
							     "error", "this row could not be read"));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return db_fail(a, err, what);
	}
	*out = arr;
	return JERR_OK;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = 0;
}

void acct_random_hex(char *out, size_t nbytes)
{
	unsigned char raw[32];
	if (nbytes > sizeof(raw))
		nbytes = sizeof(raw);
	randombytes_buf(raw, nbytes);
	to_hex(raw, nbytes, out);
	sodium_memzero(raw, sizeof(raw));
}

void acct_hash_hex(const char *s, char *out)
{
	unsigned char h[32];
	crypto_generichash(h, sizeof(h), (const unsigned char *)s, strlen(s), NULL, 0);
	to_hex(h, sizeof(h), out);
}

static void lock_open(struct accounts *a)
{
	pthread_mutex_lock(&a->lock);
}

static void unlock(struct accounts *a)
{
	pthread_mutex_unlock(&a->lock);
}

/*
 * Take the lock, then read_row sql, whose one parameter is the hash of secret (into h, for
 * the caller's later statements). The caller unlocks.
 */
static enum jerr lock_read_hashed(struct accounts *a, const char *secret, char h[65], const char *what,
				  const char *sql, sqlite3_stmt **row, struct jerror *err)
{
	acct_hash_hex(secret, h);
	lock_open(a);
	return read_row(a, row, what, err, sql, "t", h);
}

/* ---- open / close ---- */

/* The file's directory: parents made 0755, the last one 0700. */
static enum jerr make_dir_of(const char *path, struct jerror *err)
{
	struct strbuf failed = STRBUF_INIT;
	int e = make_file_dirs(path, 0755, 0700, &failed);
	if (e)
		jerror_set(err, JERR_IO, "could not create directory \"%s\": %s", failed.buf, strerror(e));
	strbuf_release(&failed);
	return e ? JERR_IO : JERR_OK;
}

enum jerr accounts_open(const char *path, bool create, struct accounts **out, struct jerror *err)
{
	*out = NULL;
	if (sodium_init() < 0)
		return jerror_set(err, JERR_INTERNAL, "libsodium could not be initialised");
	struct stat sb;
	if (stat(path, &sb) == 0) {
		if (sb.st_mode & 077) {
			jerror_set(err, JERR_CONFIG, "accounts file \"%s\" can be read by other users", path);
			jerror_detail(err, "it holds password hashes and session keys");
			jerror_hint(err, "chmod 600 %s", path);
			return JERR_CONFIG;
		}
	} else if (!create) {
		jerror_set(err, JERR_STATE, "accounts file \"%s\" does not exist", path);
		jerror_hint(err, "create the first admin with: joey user add NAME --role admin");
		return JERR_STATE;
	} else {
		enum jerr rc = make_dir_of(path, err);
		if (rc)
			return rc;
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			jerror_set(err, JERR_IO, "could not create accounts file \"%s\": %s", path, strerror(errno));
			jerror_hint(err, "make the state directory writable, or set JOEY_ACCOUNTS to another path");
			return JERR_IO;
		}
		close(fd);
	}
	struct accounts *a = xcalloc(1, sizeof(*a));
	a->path = xstrdup(path);
	pthread_mutex_init(&a->lock, NULL);
	/* the -wal and -shm files SQLite creates take the main file's mode (0600) */
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;
	if (sqlite3_open_v2(path, &a->db, flags, NULL) != SQLITE_OK) {
		db_fail(a, err, "opening");
		accounts_close(a);
		return JERR_STATE;
	}
	sqlite3_busy_timeout(a->db, 5000);
	char *msg = NULL;
	if (sqlite3_exec(a->db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;", NULL,
			 NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(a->db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
		jerror_set(err, JERR_STATE, "accounts store \"%s\": could not create its tables", path);
		jerror_detail(err, "%s", msg ? msg : sqlite3_errmsg(a->db));
		sqlite3_free(msg);
		accounts_close(a);
		return JERR_STATE;
	}
	/* an unknown user costs as much as a known one */
	static const char dummy[] = "not a password of anyone";
	if (crypto_pwhash_str(a->dummy_hash, dummy, sizeof(dummy) - 1, crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		accounts_close(a);
		return jerror_set(err, JERR_INTERNAL, "could not hash a password (out of memory?)");
	}
	*out = a;
	return JERR_OK;
}

void accounts_close(struct accounts *a)
{
	if (!a)
		return;
	if (a->db)
		sqlite3_close(a->db);
	pthread_mutex_destroy(&a->lock);
	free(a->path);
	free(a);
}

/* ---- users ---- */

/* The hash of pw, name's new password, into out; JERR_USAGE when pw is refused (acct_password_problem). */
static enum jerr hash_new_password(const char *name, const char *pw, char *out, struct jerror *err)
{
	const char *why = acct_password_problem(pw);
	if (why)
		return jerror_set(err, JERR_USAGE, "password for \"%s\" refused: %s", name, why);
	if (crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return jerror_set(err, JERR_INTERNAL, "could not hash a password (out of memory?)");
	return JERR_OK;
}

/* The role of name, ROLE_NONE if no such user (lock held). */
static enum jerr user_role_locked(struct accounts *a, const char *name, enum acct_role *role, struct jerror *err)
{
	*role = ROLE_NONE;
	sqlite3_stmt *st;
	enum jerr rc = read_row(a, &st, "reading a user", err, "SELECT role FROM users WHERE name = ?", "t", name);
	if (st) {
		*role = acct_role_parse((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	return rc;
}

/*
 * One transaction for a check and the writes that depend on it (the last admin), also
 * against another process (joey user beside serve): BEGIN IMMEDIATE takes the write lock.
 */
static enum jerr tx_begin(struct accounts *a, struct jerror *err)
{
	return exec_sql(a, "starting a transaction", err, "BEGIN IMMEDIATE", "");
}

/* COMMIT when rc is JERR_OK, else ROLLBACK; the first error wins. */
static enum jerr tx_end(struct accounts *a, enum jerr rc, struct jerror *err)
{
	if (rc) {
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return exec_sql(a, "committing", err, "COMMIT", "");
}

static enum jerr count_admins_locked(struct accounts *a, int64_t *n, struct jerror *err)
{
	sqlite3_stmt *st = prep(a, "SELECT count(*) FROM users WHERE role = 'admin'", err);
	if (!st)
		return JERR_STATE;
	int rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? JERR_OK : db_fail(a, err, "counting admins");
}

static enum jerr no_such_user(struct jerror *err, const char *name)
{
	jerror_set(err, JERR_USAGE, "no user \"%s\"", name);
	jerror_hint(err, "joey user list shows the users");
	return JERR_USAGE;
}

/*
 * User name exists (its role in *have), else no_such_user; and when it is an admin
 * that loses_admin, it is not the last admin (lock held; a transaction when loses_admin).
 */
static enum jerr user_may_change(struct accounts *a, const char *name, bool loses_admin, enum acct_role *have,
				 struct jerror *err)
{
	int64_t admins = 0;
	enum jerr rc;
	if ((rc = user_role_locked(a, name, have, err)))
		return rc;
	if (*have == ROLE_NONE)
		return no_such_user(err, name);
	if (*have == ROLE_ADMIN && loses_admin) {
		if ((rc = count_admins_locked(a, &admins, err)))
			return rc;
		if (admins <= 1) {
			rc = jerror_set(err, JERR_USAGE, "\"%s\" is the last admin", name);
			jerror_hint(err, "make another user admin first");
			return rc;
		}
	}
	return JERR_OK;
}

/* Take the lock and begin a transaction (tx_begin); on failure the lock is released. */
static enum jerr lock_tx_begin(struct accounts *a, struct jerror *err)
{
	lock_open(a);
	enum jerr rc = tx_begin(a, err);
	if (rc)
		unlock(a);
	return rc;
}

enum jerr accounts_user_add(struct accounts *a, const char *name, enum acct_role role, const char *password,
			    struct jerror *err)
{
	if (!acct_name_valid(name)) {
		jerror_set(err, JERR_USAGE, "invalid user name \"%s\"", name ? name : "");
		jerror_hint(err, "use 1 to 64 letters, digits, '_', '.', '@' or '-'");
		return JERR_USAGE;
	}
	if (role == ROLE_NONE)
		return jerror_set(err, JERR_USAGE, "a user needs a role: admin, editor or viewer");
	char hash[crypto_pwhash_STRBYTES];
	enum jerr rc = hash_new_password(name, password, hash, err);
	if (rc)
		return rc;
	lock_open(a);
	enum acct_role have;
	if ((rc = user_role_locked(a, name, &have, err)))
		goto out;
	if (have != ROLE_NONE) {
		rc = jerror_set(err, JERR_USAGE, "user \"%s\" already exists", name);
		jerror_hint(err, "change it with joey user passwd / joey user role");
		goto out;
	}
	int64_t now = time_now_ms();
	rc = exec_sql(a, "adding a user", err,
		      "INSERT INTO users(name, role, pw_hash, created_at, updated_at) VALUES (?,?,?,?,?)", "tttii", name,
		      acct_role_name(role), hash, now, now);
out:
	unlock(a);
	sodium_memzero(hash, sizeof(hash));
	return rc;
}

/* DELETE ... WHERE user = ? (lock held). */
static enum jerr delete_for_user(struct accounts *a, const char *sql, const char *name, struct jerror *err)
{
	return exec_sql(a, "removing a user's rows", err, sql, "t", name);
}

enum jerr accounts_user_passwd(struct accounts *a, const char *name, const char *password, struct jerror *err)
{
	char hash[crypto_pwhash_STRBYTES];
	enum jerr rc = hash_new_password(name, password, hash, err);
	if (rc)
		return rc;
	lock_open(a);
	enum acct_role have;
	if ((rc = user_may_change(a, name, false, &have, err)))
		goto out;
	if (!(rc = exec_sql(a, "setting a password", err, "UPDATE users SET pw_hash = ?, updated_at = ? WHERE name = ?",
			    "tit", hash, time_now_ms(), name)))
		rc = delete_for_user(a, "DELETE FROM sessions WHERE user = ?", name, err);
out:
	unlock(a);
	sodium_memzero(hash, sizeof(hash));
	return rc;
}

enum jerr accounts_user_role(struct accounts *a, const char *name, enum acct_role role, struct jerror *err)
{
	if (role == ROLE_NONE)
		return jerror_set(err, JERR_USAGE, "a user needs a role: admin, editor or viewer");
	enum acct_role have;
	enum jerr rc = lock_tx_begin(a, err);
	if (rc)
		return rc;
	if ((rc = user_may_change(a, name, role != ROLE_ADMIN, &have, err)))
		goto out;
	if ((rc = exec_sql(a, "changing a role", err, "UPDATE users SET role = ?, updated_at = ? WHERE name = ?", "tit",
			   acct_role_name(role), time_now_ms(), name)))
		goto out;
	if (role < have) {
		if ((rc = delete_for_user(a, "DELETE FROM sessions WHERE user = ?", name, err)))
			goto out;
		rc = exec_sql(a, "revoking tokens", err,
			      "UPDATE api_tokens SET revoked_at = ? WHERE user = ? AND revoked_at IS NULL AND "
			      "(role = 'admin' OR (role = 'editor' AND ? = 'viewer'))",
			      "itt", time_now_ms(), name, acct_role_name(role));
	}
out:
	rc = tx_end(a, rc, err);
	unlock(a);
	return rc;
}

enum jerr accounts_user_remove(struct accounts *a, const char *name, struct jerror *err)
{
	enum acct_role have;
	enum jerr rc = lock_tx_begin(a, err);
	if (rc)
		return rc;
	if ((rc = user_may_change(a, name, true, &have, err)))
		goto out;
	if ((rc = delete_for_user(a, "DELETE FROM sessions WHERE user = ?", name, err)) ||
	    (rc = delete_for_user(a, "DELETE FROM api_tokens WHERE user = ?", name, err)) ||
	    (rc = delete_for_user(a, "DELETE FROM users WHERE name = ?", name, err)))
		goto out;
out:
	rc = tx_end(a, rc, err);
	unlock(a);
	return rc;
}

static json_t *col_int_or_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : json_integer(sqlite3_column_int64(st, i));
}

static json_t *col_text_or_null(sqlite3_stmt *st, int i)
{
	const char *t = (const char *)sqlite3_column_text(st, i);
	return t ? json_string_lossy(t) : json_null();
}

static json_t *user_row(sqlite3_stmt *st)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o}", "name", col_text_or_null(st, 0), "role", col_text_or_null(st, 1),
			 "created_at", col_int_or_null(st, 2), "updated_at", col_int_or_null(st, 3), "last_login_at",
			 col_int_or_null(st, 4));
}

enum jerr accounts_user_list(struct accounts *a, json_t **out, struct jerror *err)
{
	lock_open(a);
	enum jerr rc = collect_rows(
		a, prep(a, "SELECT name, role, created_at, updated_at, last_login_at FROM users ORDER BY name", err),
		user_row, "listing users", out, err);
	unlock(a);
	return rc;
}

enum jerr accounts_user_get(struct accounts *a, const char *name, enum acct_role *role, struct jerror *err)
{
	lock_open(a);
	enum jerr rc = user_role_locked(a, name, role, err);
	unlock(a);
	return rc;
}

enum jerr accounts_user_count(struct accounts *a, int64_t *n, struct jerror *err)
{
	lock_open(a);
	sqlite3_stmt *st = prep(a, "SELECT count(*) FROM users", err);
	enum jerr rc = JERR_STATE;
	if (st) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			*n = sqlite3_column_int64(st, 0);
			rc = JERR_OK;
		} else {
			db_fail(a, err, "counting users");
		}
		sqlite3_finalize(st);
	}
	unlock(a);
	return rc;
}

enum jerr accounts_login(struct accounts *a, const char *name, const char *password, bool *ok, enum acct_role *role,
			 struct jerror *err)
{
	*ok = false;
	*role = ROLE_NONE;
	char hash[crypto_pwhash_STRBYTES] = "";
	enum acct_role r = ROLE_NONE;
	lock_open(a);
	sqlite3_stmt *st;
	enum jerr rc = read_row(a, &st, "reading a user", err, "SELECT role, pw_hash FROM users WHERE name = ?", "t",
				name);
	if (st) {
		r = acct_role_parse((const char *)sqlite3_column_text(st, 0));
		const char *h = (const char *)sqlite3_column_text(st, 1);
		snprintf(hash, sizeof(hash), "%s", h ? h : "");
		sqlite3_finalize(st);
	}
	unlock(a);
	if (rc)
		return rc;
	size_t pwlen = password ? strlen(password) : 0;
	if (pwlen > ACCT_PASSWORD_MAX)
		pwlen = ACCT_PASSWORD_MAX; /* the work stays bounded; such a password never matches */
	/* the slow part outside the lock: logins of different users run side by side */
	bool match = crypto_pwhash_str_verify(r != ROLE_NONE ? hash : a->dummy_hash, password ? password : "",
					      pwlen) == 0;
	if (!match || r == ROLE_NONE || (password && strlen(password) > ACCT_PASSWORD_MAX)) {
		sodium_memzero(hash, sizeof(hash));
		return JERR_OK;
	}
	/* the password may have changed while it was checked: the login counts only if the
	 * hash it was checked against is still the user's (one statement, under the lock) */
	lock_open(a);
	enum jerr e = exec_sql(a, "recording a login", err,
			       "UPDATE users SET last_login_at = ? WHERE name = ? AND pw_hash = ?", "itt", time_now_ms(),
			       name, hash);
	bool still = !e && sqlite3_changes(a->db) == 1;
	unlock(a);
	sodium_memzero(hash, sizeof(hash));
	if (!e && !still)
		return JERR_OK;
	if (e)
		return e;
	*ok = true;
	*role = r;
	return JERR_OK;
}

/* ---- sessions ---- */

enum jerr accounts_session_create(struct accounts *a, const char *user, const char *addr, char *cookie, char *csrf,
				  struct jerror *err)
{
	char h[65];
	acct_random_hex(cookie, 32);
	acct_random_hex(csrf, 32);
	acct_hash_hex(cookie, h);
	int64_t now = time_now_ms();
	lock_open(a);
	enum jerr rc = exec_sql(a, "creating a session", err,
				"INSERT INTO sessions(id_hash, user, csrf, addr, created_at, last_seen_at) "
				"VALUES (?,?,?,?,?,?)",
				"ttttii", h, user, csrf, addr, now, now);
	unlock(a);
	return rc;
}

static bool hex64(const char *s)
{
	if (!s || strlen(s) != ACCT_SECRET_HEX)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

enum jerr accounts_session_get(struct accounts *a, const char *cookie, int64_t now, int64_t idle_ms, int64_t max_ms,
			       struct acct_principal *p, bool *found, struct jerror *err)
{
	*found = false;
	if (!hex64(cookie))
		return JERR_OK;
	char h[65];
	sqlite3_stmt *st;
	enum jerr rc = lock_read_hashed(a, cookie, h, "reading a session",
					"SELECT s.user, u.role, s.csrf, s.created_at, s.last_seen_at FROM sessions s "
					"JOIN users u ON u.name = s.user WHERE s.id_hash = ?",
					&st, err);
	if (!st)
		goto out;
	int64_t created = sqlite3_column_int64(st, 3), seen = sqlite3_column_int64(st, 4);
	bool expired = now - seen > idle_ms || now - created > max_ms;
	if (!expired) {
		memset(p, 0, sizeof(*p));
		snprintf(p->user, sizeof(p->user), "%s", (const char *)sqlite3_column_text(st, 0));
		p->role = acct_role_parse((const char *)sqlite3_column_text(st, 1));
		snprintf(p->csrf, sizeof(p->csrf), "%s", (const char *)sqlite3_column_text(st, 2));
		p->via = "session";
	}
	sqlite3_finalize(st);
	if (expired)
		rc = exec_sql(a, "ending a session", err, "DELETE FROM sessions WHERE id_hash = ?", "t", h);
	else
		rc = exec_sql(a, "updating a session", err, "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", "it",
			      now, h);
	if (rc)
		goto out;
	*found = !expired && p->role != ROLE_NONE;
out:
	unlock(a);
	return rc;
}

enum jerr accounts_session_delete(struct accounts *a, const char *cookie, struct jerror *err)
{
	if (!hex64(cookie))
		return JERR_OK;
	char h[65];
	acct_hash_hex(cookie, h);
	lock_open(a);
	enum jerr rc = exec_sql(a, "ending a session", err, "DELETE FROM sessions WHERE id_hash = ?", "t", h);
	unlock(a);
	return rc;
}

/* ---- API tokens ---- */

enum jerr accounts_token_create(struct accounts *a, const char *user, const char *label, enum acct_role role,
				char *plaintext, int64_t *id, struct jerror *err)
{
	size_t ll = label ? strlen(label) : 0;
	if (!ll || ll > 100) {
		jerror_set(err, JERR_USAGE, "a token needs a label of 1 to 100 characters");
		jerror_hint(err, "say what it is for, e.g. \"nightly CI\"");
		return JERR_USAGE;
	}
	if (role == ROLE_NONE)
		return jerror_set(err, JERR_USAGE, "a token needs a role: admin, editor or viewer");
	lock_open(a);
	enum acct_role owner;
	enum jerr rc = user_may_change(a, user, false, &owner, err);
	if (rc)
		goto out;
	if (role > owner) {
		rc = jerror_set(err, JERR_USAGE, "a token of %s cannot have role %s", acct_role_name(owner),
				acct_role_name(role));
		jerror_detail(err, "a token's role is at most its owner's");
		goto out;
	}
	memcpy(plaintext, ACCT_TOKEN_PREFIX, 5);
	acct_random_hex(plaintext + 5, 24);
	char h[65], prefix[16];
	acct_hash_hex(plaintext, h);
	snprintf(prefix, sizeof(prefix), "%.13s", plaintext); /* "joey_" and 8 hex digits */
	if (!(rc = exec_sql(a, "creating a token", err,
			    "INSERT INTO api_tokens(user, label, role, token_hash, prefix, created_at) VALUES (?,?,?,?,?,?)",
			    "ttttti", user, label, acct_role_name(role), h, prefix, time_now_ms())))
		*id = sqlite3_last_insert_rowid(a->db);
out:
	unlock(a);
	return rc;
}

enum jerr accounts_token_get(struct accounts *a, const char *plaintext, struct acct_principal *p, bool *found,
			     struct jerror *err)
{
	*found = false;
	if (!plaintext || strlen(plaintext) != ACCT_TOKEN_LEN || strncmp(plaintext, ACCT_TOKEN_PREFIX, 5))
		return JERR_OK;
	char h[65];
	sqlite3_stmt *st;
	enum jerr rc = lock_read_hashed(a, plaintext, h, "reading a token",
					"SELECT t.id, t.user, t.role, u.role FROM api_tokens t JOIN users u ON u.name = t.user "
					"WHERE t.token_hash = ? AND t.revoked_at IS NULL",
					&st, err);
	if (!st)
		goto out;
	memset(p, 0, sizeof(*p));
	p->token_id = sqlite3_column_int64(st, 0);
	snprintf(p->user, sizeof(p->user), "%s", (const char *)sqlite3_column_text(st, 1));
	enum acct_role tr = acct_role_parse((const char *)sqlite3_column_text(st, 2));
	enum acct_role ur = acct_role_parse((const char *)sqlite3_column_text(st, 3));
	p->role = tr < ur ? tr : ur;
	p->via = "token";
	sqlite3_finalize(st);
	if (!(rc = exec_sql(a, "recording a token's use", err, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
			    "ii", time_now_ms(), p->token_id)))
		*found = p->role != ROLE_NONE;
out:
	unlock(a);
	return rc;
}

static json_t *token_row(sqlite3_stmt *st)
{
	return json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id", (json_int_t)sqlite3_column_int64(st, 0), "user",
			 col_text_or_null(st, 1), "label", col_text_or_null(st, 2), "role", col_text_or_null(st, 3),
			 "prefix", col_text_or_null(st, 4), "created_at", col_int_or_null(st, 5), "last_used_at",
			 col_int_or_null(st, 6), "revoked_at", col_int_or_null(st, 7));
}

enum jerr accounts_token_list(struct accounts *a, const char *user, json_t **out, struct jerror *err)
{
	lock_open(a);
	sqlite3_stmt *st = prep_args(
		a, err,
		"SELECT id, user, label, role, prefix, created_at, last_used_at, revoked_at FROM api_tokens "
		"WHERE ?1 IS NULL OR user = ?1 ORDER BY id",
		"t", user);
	enum jerr rc = collect_rows(a, st, token_row, "listing tokens", out, err);
	unlock(a);
	return rc;
}

enum jerr accounts_token_revoke(struct accounts *a, int64_t id, const char *user, bool *found, struct jerror *err)
{
	*found = false;
	lock_open(a);
	enum jerr rc = exec_sql(a, "revoking a token", err,
				"UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2 AND (?3 IS NULL OR user = ?3) "
				"AND revoked_at IS NULL",
				"iit", time_now_ms(), id, user);
	if (!rc)
		*found = sqlite3_changes(a->db) > 0;
	unlock(a);
	return rc;
}

/* ---- the audit log ---- */

enum jerr accounts_audit_add(struct accounts *a, const struct acct_principal *p, const char *addr, const char *action,
			     const char *object_class, const char *object_id, const json_t *before,
			     const json_t *after, struct jerror *err)
{
	char *b = before ? json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
	char *f = after ? json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
	lock_open(a);
	enum jerr rc = exec_sql(a, "writing the audit log", err,
				"INSERT INTO audit(at, actor, via, addr, action, object_class, object_id, before, after) "
				"VALUES (?,?,?,?,?,?,?,?,?)",
				"itttttttt", time_now_ms(), p && *p->user ? p->user : "system",
				p && p->via ? p->via : "system", addr, action, object_class, object_id, b, f);
	unlock(a);
	free(b);
	free(f);
	return rc;
}

/* A stored JSON text back as JSON (the text itself if it does not parse). */
static json_t *col_json(sqlite3_stmt *st, int i)
{
	const char *t = (const char *)sqlite3_column_text(st, i);
	if (!t)
		return json_null();
	json_t *j = json_loads(t, JSON_DECODE_ANY, NULL);
	return j ? j : json_string(t);
}

static json_t *audit_row(sqlite3_stmt *st)
{
	return json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id", (json_int_t)sqlite3_column_int64(st, 0), "at",
			 col_int_or_null(st, 1), "actor", col_text_or_null(st, 2), "via", col_text_or_null(st, 3), "addr",
			 col_text_or_null(st, 4), "action", col_text_or_null(st, 5), "class", col_text_or_null(st, 6),
			 "object", col_text_or_null(st, 7), "before", col_json(st, 8), "after", col_json(st, 9));
}

enum jerr accounts_audit_list(struct accounts *a, int64_t limit, int64_t before_id, json_t **out, struct jerror *err)
{
	lock_open(a);
	sqlite3_stmt *st = prep_args(
		a, err,
		"SELECT id, at, actor, via, addr, action, object_class, object_id, before, after FROM audit "
		"WHERE ?1 <= 0 OR id < ?1 ORDER BY id DESC LIMIT ?2",
		"ii", before_id, limit);
	enum jerr rc = collect_rows(a, st, audit_row, "reading the audit log", out, err);
	unlock(a);
	return rc;
}
