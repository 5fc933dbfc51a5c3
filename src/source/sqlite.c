/* sqlite.c: the SQLite connector: one ordered, aggregated query per source per run. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>
#include <sqlite3.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/suggest.h"
#include "base/timeutil.h"
#include "base/xalloc.h"
#include "config/paths.h"
#include "source/source.h"
#include "source/sqlcursor.h"
#include "source/sqlgen.h"

/*
 * The statement for a source is built by sqlgen.c (design note there, shapes in
 * docs/internals/sources.md); this file holds the SQLite dialect, connection, checks
 * and row reading.
 */

struct sq_conn {
	sqlite3 *db;
	/* sqlite_dialect, with num_fn set for CSV (source_sqlite_number_fn) */
	struct sql_dialect dialect;
	const struct cfg_app *app;
	char *path;
	/*
	 * Stopping (source.h): a step is interrupted when joey stops. No statementTimeout:
	 * the database is a local file opened read-only (SQLITE_OPEN_READONLY: no write,
	 * and ATTACH cannot be part of a source's SELECT).
	 */
	struct source_watch watch;
};

static const struct sql_dialect sqlite_dialect; /* below, after its table_info */

/* The watcher's cancel: sqlite3_interrupt may be called from any thread while the connection is open. */
static void sq_interrupt(struct source_watch *w)
{
	struct sq_conn *c = (struct sq_conn *)(void *)((char *)w - offsetof(struct sq_conn, watch));
	sqlite3_interrupt(c->db);
}

struct sq_cursor {
	struct source_cursor base; /* first */
	sqlite3_stmt *stmt;
	struct sq_conn *conn;
	struct sql_cursor_state rs; /* src, the plan's shape, the current row and its arena */
};

static const char *const sqlite_source_types[] = {
	"sqlite-import-table", "sqlite-import-query", "sqlite-table-import",
	"sqlite-query-import", NULL,
};
static const char *const sqlite_app_options[] = { "file", NULL };

/* ---- connection ---- */

#define SQ_SINCE_FN "joey_since"

/*
 * joey_since(column, mark): whether the column's value is at or past the mark as joey
 * orders marks (source_since_compare: as numbers when both are numbers, otherwise as
 * text); NULL when either is. A TEXT column's incremental read with a number mark goes
 * through it (sqlgen.h since_fn): SQLite made the bound number text, and '1000' >=
 * '999' is false, so rows past the mark were never read.
 */
static void since_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	const char *a = (const char *)sqlite3_value_text(argv[0]);
	int na = sqlite3_value_bytes(argv[0]);
	const char *b = (const char *)sqlite3_value_text(argv[1]);
	int nb = sqlite3_value_bytes(argv[1]);
	if (!a || !b) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	sqlite3_result_int(ctx, source_since_compare((struct slice){ a, (size_t)na },
						     (struct slice){ b, (size_t)nb }) >= 0);
}

static enum jerr sq_connect(const struct cfg_app *app, const char *config_dir, void **out,
			    struct jerror *err)
{
	const char *file = cfg_options_str(&app->options, "file");
	struct sq_conn *c;
	struct strbuf path = STRBUF_INIT;
	struct stat st;

	*out = NULL;
	if (!file || !*file) {
		jerror_set(err, JERR_CONFIG, "app \"%s\": option \"file\" is required", app->id);
		jerror_hint(err, "set options.file to the path of the SQLite database");
		return JERR_CONFIG;
	}
	config_add_path(&path, config_dir, file);
	if (stat(path.buf, &st) != 0) {
		jerror_set(err, JERR_SOURCE, "app \"%s\": database file \"%s\" does not exist",
			   app->id, path.buf);
		jerror_hint(err, "check options.file; relative paths are resolved from the "
				 "project root, the directory holding the config directory");
		strbuf_release(&path);
		return JERR_SOURCE;
	}
	c = xcalloc(1, sizeof(*c));
	c->dialect = sqlite_dialect;
	c->app = app;
	c->path = strbuf_detach(&path, NULL);
	if (sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		jerror_set(err, JERR_SOURCE, "app \"%s\": cannot open database \"%s\"", app->id,
			   c->path);
		jerror_detail(err, "%s", c->db ? sqlite3_errmsg(c->db) : "out of memory");
		sqlite3_close(c->db);
		free(c->path);
		free(c);
		return JERR_SOURCE;
	}
	sqlite3_busy_timeout(c->db, 5000);
	if (sqlite3_create_function_v2(c->db, SQ_SINCE_FN, 2,
				       SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
				       since_fn, NULL, NULL, NULL) != SQLITE_OK) {
		jerror_set(err, JERR_SOURCE, "app \"%s\": cannot add the SQL function %s to \"%s\"",
			   app->id, SQ_SINCE_FN, c->path);
		jerror_detail(err, "%s", sqlite3_errmsg(c->db));
		sqlite3_close(c->db);
		free(c->path);
		free(c);
		return JERR_SOURCE;
	}
	/* a misspelt "column" must be an error, not a string literal */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);
	source_watch_register(&c->watch, sq_interrupt, 0, app->id);
	*out = c;
	return JERR_OK;
}

enum jerr source_sqlite_number_fn(void *conn, const char *name,
				  void (*fn)(struct sqlite3_context *, int, struct sqlite3_value **),
				  struct jerror *err)
{
	struct sq_conn *c = conn;
	if (sqlite3_create_function_v2(c->db, name, 1,
				       SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL, fn,
				       NULL, NULL, NULL) != SQLITE_OK) {
		jerror_set(err, JERR_SOURCE, "app \"%s\": cannot add the SQL function %s to \"%s\"",
			   c->app->id, name, c->path);
		jerror_detail(err, "%s", sqlite3_errmsg(c->db));
		return JERR_SOURCE;
	}
	c->dialect.num_fn = name;
	return JERR_OK;
}

static void sq_disconnect(void *conn)
{
	struct sq_conn *c = conn;
	if (!c)
		return;
	source_watch_unregister(&c->watch);
	sqlite3_close(c->db);
	free(c->path);
	free(c);
}

/* ---- dialect ---- */

static bool decl_has(const char *decl, const char *word)
{
	size_t n = strlen(word);
	for (const char *d = decl; d && *d; d++)
		if (!strncasecmp(d, word, n))
			return true;
	return false;
}

static bool table_has_rowid(sqlite3 *db, const char *table)
{
	return sqlite3_table_column_metadata(db, NULL, table, "rowid", NULL, NULL, NULL, NULL,
					     NULL) == SQLITE_OK;
}

/* SQLite's affinity rules: a declared type with INT is INTEGER, else one with CHAR, CLOB
 * or TEXT is TEXT. */
static bool decl_is_text(const char *decl)
{
	return !decl_has(decl, "INT") &&
	       (decl_has(decl, "CHAR") || decl_has(decl, "CLOB") || decl_has(decl, "TEXT"));
}

/* An INTEGER column orders an integer key, a TEXT BINARY column a text key. */
static void sq_table_info(void *conn, const char *table, const char *K, bool int_key,
			  bool *natural, const char **rowid_col)
{
	struct sq_conn *c = conn;
	const char *decl = NULL, *coll = NULL;

	*natural = false;
	*rowid_col = table_has_rowid(c->db, table) ? "rowid" : NULL;
	if (sqlite3_table_column_metadata(c->db, NULL, table, K, &decl, &coll, NULL, NULL,
					  NULL) != SQLITE_OK)
		return;
	if (int_key)
		*natural = decl_has(decl, "INT");
	else
		*natural = decl_is_text(decl) && coll && !strcasecmp(coll, "BINARY");
}

/* A column of TEXT affinity: a number compared with it becomes text (since_fn). */
static bool sq_text_column(void *conn, const char *table, const char *column)
{
	struct sq_conn *c = conn;
	const char *decl = NULL;

	if (!c || sqlite3_table_column_metadata(c->db, NULL, table, column, &decl, NULL, NULL,
						NULL, NULL) != SQLITE_OK)
		return false;
	return decl_is_text(decl);
}

static const struct sql_dialect sqlite_dialect = {
	.name = "sqlite",
	.quote = '"',
	.params = SQL_PARAM_QNUM,
	.pick = SQL_PICK_WINDOW,
	.text_type = "TEXT",
	.int_type = "INTEGER",
	.key_collate = "",
	.text_order = " COLLATE BINARY",
	.natural_text_order = "",
	.like_escape = " ESCAPE '\\'",
	.true_sql = "1",
	.false_sql = "0",
	.concat_fn = false,
	.cast_text_params = false,
	.avg_cast = NULL,
	.asc_nulls = "",
	.desc_nulls = "",
	.table_info = sq_table_info,
	.text_column = sq_text_column,
	.since_fn = SQ_SINCE_FN,
};

static void bind_all(sqlite3_stmt *st, const struct sql_plan *p)
{
	for (size_t i = 0; i < p->n_binds; i++) {
		const struct sql_bind *b = &p->binds[i];
		int n = (int)i + 1;
		if (b->kind == SQL_BIND_INT)
			sqlite3_bind_int64(st, n, b->i);
		else if (b->kind == SQL_BIND_REAL)
			sqlite3_bind_double(st, n, b->f);
		else
			sqlite3_bind_text(st, n, b->s, -1, SQLITE_TRANSIENT); /* copied: the plan (and its arena) goes before the rows are read */
	}
}

/* ---- check ---- */

/* Column names of a relation (a quoted table or a parenthesised query). */
static int relation_columns(sqlite3 *db, const char *relation, char ***names, size_t *n)
{
	struct strbuf sql = STRBUF_INIT;
	sqlite3_stmt *st = NULL;

	strbuf_addf(&sql, "SELECT * FROM %s LIMIT 0", relation);
	int rc = sqlite3_prepare_v2(db, sql.buf, (int)sql.len, &st, NULL);
	strbuf_release(&sql);
	*names = NULL;
	*n = 0;
	if (rc != SQLITE_OK)
		return rc;
	int nc = sqlite3_column_count(st);
	*names = xcalloc((size_t)nc + 1, sizeof(char *));
	for (int i = 0; i < nc; i++)
		(*names)[i] = xstrdup(sqlite3_column_name(st, i));
	*n = (size_t)nc;
	sqlite3_finalize(st);
	return SQLITE_OK;
}

/* Whether the last call on db failed because another connection holds a lock (busy_timeout passed). */
static bool sq_locked(sqlite3 *db)
{
	int e = sqlite3_errcode(db) & 0xff;
	return e == SQLITE_BUSY || e == SQLITE_LOCKED;
}

/* The error of a statement that could not start for a lock: not a missing table. */
static enum jerr sq_locked_error(const struct sq_conn *c, const struct cfg_source *src, struct jerror *err)
{
	jerror_set(err, JERR_SOURCE, "source \"%s\": the database is locked", sql_source_id(src));
	jerror_detail(err, "app \"%s\", database \"%s\": %s", c->app->id, c->path, sqlite3_errmsg(c->db));
	jerror_hint(err, "another process held a write lock for more than 5 s; run again when it is "
			 "done (in WAL mode, PRAGMA journal_mode=WAL, readers do not wait for a writer)");
	return JERR_SOURCE;
}

static enum jerr sq_check(void *conn, const struct cfg_source *src, struct jerror *err)
{
	struct sq_conn *c = conn;
	struct strbuf rel = STRBUF_INIT;
	struct sql_plan p;
	char **names = NULL;
	size_t n = 0;
	enum jerr rc = JERR_OK;
	sqlite3_stmt *st = NULL;

	sql_plan_init(&p);
	if (!src->is_query && src->table) {
		strbuf_add_sql_ident(&rel, src->table);
		int e = relation_columns(c->db, rel.buf, &names, &n);
		if (e != SQLITE_OK && sq_locked(c->db)) {
			rc = sq_locked_error(c, src, err);
			goto out;
		}
		if (e != SQLITE_OK) {
			char **tables = NULL;
			size_t nt = 0;
			rc = sql_check_no_table(src, err);
			jerror_detail(err, "app \"%s\", database \"%s\": %s", c->app->id, c->path,
				      sqlite3_errmsg(c->db));
			/* did you mean: the tables and views of the database */
			sqlite3_stmt *ts = NULL;
			size_t alloc = 0;
			if (sqlite3_prepare_v2(c->db,
					       "SELECT name FROM sqlite_master WHERE type IN "
					       "('table','view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
					       "ORDER BY name",
					       -1, &ts, NULL) == SQLITE_OK) {
				while (sqlite3_step(ts) == SQLITE_ROW) {
					ALLOC_GROW(tables, nt + 1, alloc);
					tables[nt++] = xstrdup((const char *)sqlite3_column_text(ts, 0));
				}
			}
			sqlite3_finalize(ts);
			sql_hint_names(err, src->table, (const char *const *)tables, nt, "the database's tables are");
			sql_free_names(tables, nt);
			goto out;
		}
	} else if (src->is_query && src->query) {
		strbuf_addch(&rel, '(');
		sql_add_query_text(&rel, src->query);
		strbuf_addch(&rel, ')');
		int e = relation_columns(c->db, rel.buf, &names, &n);
		if (e != SQLITE_OK && sq_locked(c->db)) {
			rc = sq_locked_error(c, src, err);
			goto out;
		}
		if (e != SQLITE_OK) {
			rc = sql_check_bad_query(src, err);
			jerror_detail(err, "%s", sqlite3_errmsg(c->db));
			goto out;
		}
	}

	if (names) {
		rc = sql_check_columns(src, src->is_query ? NULL : src->table,
				       (const char *const *)names, n, err);
		if (rc)
			goto out;
	}

	/* finally the statement itself (property queries, window functions) */
	rc = sql_plan_build(&c->dialect, c, src, NULL, &p, err);
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(c->db, p.sql.buf, (int)p.sql.len, &st, NULL) != SQLITE_OK) {
		rc = jerror_set(err, JERR_SOURCE, "source \"%s\": query failed to prepare", sql_source_id(src));
		jerror_detail(err, "%s", sqlite3_errmsg(c->db));
	}
out:
	sqlite3_finalize(st);
	sql_free_names(names, n);
	strbuf_release(&rel);
	sql_plan_release(&p);
	return rc;
}

/* ---- describe ---- */

static enum jerr sq_describe(void *conn, const struct cfg_source *src, struct strbuf *out,
			     struct jerror *err)
{
	struct sq_conn *c = conn;
	return sql_describe_source(&c->dialect, conn, src, out, err);
}

/* ---- reading rows ---- */

/* Column idx of the current row as a value of prop's type; false if invalid. */
/*
 * One column of the current row as prop's value. The column is fetched once
 * (sqlite3_column_value) and read with the sqlite3_value_* calls: each sqlite3_column_*
 * call looks the column up again and checks the statement's error state, and with
 * three or four of them per column that was a tenth of the reader thread's CPU on a
 * first sync. The value is the statement's (valid until the next step); the cursor's
 * thread is the only one using the statement, which is all that sqlite3_column_value's
 * caveat asks.
 */
/*
 * The mark text of column idx (not NULL), in a (valid until its reset). A REAL is the
 * shortest text that reads back as the same double (as SQLite, ".0" kept on an integral
 * value): sqlite3_column_text prints 15 significant digits, so 1714557600.123456 became
 * the mark 1714557600.12346, above the row, and the rows at the mark were skipped. A
 * REAL infinity is no mark (source_since_unordered): its text "Inf" was, and SQLite
 * orders every number below text, so `column >= 'Inf'` read nothing again.
 */
static struct slice since_text(sqlite3_stmt *st, int idx, struct arena *a)
{
	if (sqlite3_column_type(st, idx) == SQLITE_FLOAT)
		return source_since_double(sqlite3_column_double(st, idx), a); /* empty if not finite */
	return (struct slice){ (const char *)sqlite3_column_text(st, idx),
			       (size_t)sqlite3_column_bytes(st, idx) };
}

static bool column_value(struct sq_cursor *cur, int idx, const struct cfg_property *prop,
			 struct value *v)
{
	sqlite3_value *cv = sqlite3_column_value(cur->stmt, idx);
	int t = sqlite3_value_type(cv);

	*v = VALUE_NULL;
	if (t == SQLITE_NULL)
		return true;
	if (prop->is_array && !(cur->rs.src->is_query && prop->query)) {
		const char *s = (const char *)sqlite3_value_text(cv);
		size_t n = (size_t)sqlite3_value_bytes(cv);
		return sql_decode_array(prop, s, n, &cur->rs.arena, v, &cur->rs.row.n_invalid);
	}
	if (t == SQLITE_INTEGER && !sql_is_text_type(prop->type))
		return sql_value_from_int(prop->type, sqlite3_value_int64(cv), v);
	if (t == SQLITE_FLOAT && !sql_is_text_type(prop->type))
		return sql_value_from_real(prop->type, sqlite3_value_double(cv), v);
	const char *s = (const char *)sqlite3_value_text(cv);
	size_t n = (size_t)sqlite3_value_bytes(cv);
	return sql_value_from_text(prop->type, s, n, &cur->rs.arena, v); /* sqlite keeps s until the next step */
}

static enum jerr sq_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	struct sq_cursor *cur = (struct sq_cursor *)base;
	sqlite3_stmt *st = cur->stmt;
	struct source_row *r = &cur->rs.row;

	*row = NULL;
	if (!st)
		return JERR_OK;
	for (;;) {
		source_wait_begin(&cur->conn->watch);
		int rc = sqlite3_step(st);
		source_wait_end(&cur->conn->watch);
		if (rc == SQLITE_DONE) {
			sqlite3_finalize(cur->stmt);
			cur->stmt = NULL;
			return JERR_OK;
		}
		if (rc != SQLITE_ROW) {
			jerror_set(err, JERR_SOURCE, "source \"%s\": query failed", sql_source_id(cur->rs.src));
			jerror_detail(err, "%s", sqlite3_errmsg(cur->conn->db));
			if (source_watch_cancelled(&cur->conn->watch) == SOURCE_CANCEL_STOP) {
				struct strbuf what = STRBUF_INIT;
				strbuf_addf(&what, "source \"%s\"", sql_source_id(cur->rs.src));
				enum jerr code = source_watch_error(&cur->conn->watch, what.buf, err);
				strbuf_release(&what);
				return code;
			}
			return JERR_SOURCE;
		}
		arena_reset(&cur->rs.arena);
		int kt = sqlite3_column_type(st, 0);
		if (kt == SQLITE_NULL) {
			cur->rs.null_keys += cur->rs.grouped ? (uint64_t)sqlite3_column_int64(st, cur->rs.count_col)
						       : 1;
			continue;
		}
		r->n_invalid = 0;
		r->key.is_int = cur->rs.int_key;
		if (cur->rs.int_key) {
			bool ok = true;
			int64_t i = 0;
			if (kt == SQLITE_INTEGER) {
				i = sqlite3_column_int64(st, 0);
			} else if (kt == SQLITE_FLOAT) {
				double f = sqlite3_column_double(st, 0);
				ok = f == floor(f) && f >= -9.2e18 && f <= 9.2e18;
				i = (int64_t)f;
			} else {
				const char *s = (const char *)sqlite3_column_text(st, 0);
				ok = decimal_to_int64(s, (size_t)sqlite3_column_bytes(st, 0), &i);
			}
			if (!ok)
				return sql_key_not_integer(cur->rs.src, cur->rs.key_column,
							   (const char *)sqlite3_column_text(st, 0), err);
			r->key.i = i;
			r->key.text.ptr = sql_fmt_i64(&cur->rs.arena, i, &r->key.text.len);
		} else {
			r->key.i = 0;
			r->key.text.ptr = (const char *)sqlite3_column_text(st, 0);
			r->key.text.len = (size_t)sqlite3_column_bytes(st, 0);
		}
		for (size_t i = 0; i < r->n_values; i++) {
			if (!column_value(cur, (int)i + 1, cur->rs.src->properties[i], &r->values[i]))
				sql_row_invalid(&cur->base, r, i, (const char *)sqlite3_column_text(st, (int)i + 1),
						(size_t)sqlite3_column_bytes(st, (int)i + 1));
		}
		r->since = (struct slice){ "", 0 };
		if (cur->rs.since_col && sqlite3_column_type(st, cur->rs.since_col) != SQLITE_NULL)
			r->since = since_text(st, cur->rs.since_col, &cur->rs.arena);
		*row = r;
		return JERR_OK;
	}
}

static void sq_close(struct source_cursor *base)
{
	struct sq_cursor *cur = (struct sq_cursor *)base;
	sql_warn_null_keys(cur->rs.src, cur->rs.null_keys, cur->rs.key_column);
	sqlite3_finalize(cur->stmt);
	sql_cursor_state_release(&cur->rs);
	free(cur);
}

static const struct source_cursor_ops sq_cursor_ops = { sq_next, sq_close };

static enum jerr sq_open_cursor(void *conn, const struct cfg_source *src,
				const struct source_read *read, struct source_cursor **out,
				struct jerror *err)
{
	struct sq_conn *c = conn;
	struct sql_plan p;
	sqlite3_stmt *st = NULL;
	enum jerr rc;

	*out = NULL;
	sql_plan_init(&p);
	rc = sql_plan_build(&c->dialect, c, src, read, &p, err);
	if (rc)
		goto out;
	if (sqlite3_prepare_v3(c->db, p.sql.buf, (int)p.sql.len, SQLITE_PREPARE_PERSISTENT, &st,
			       NULL) != SQLITE_OK) {
		/* name the missing table/column if that is the cause */
		struct strbuf msg = STRBUF_INIT;
		strbuf_addstr(&msg, sqlite3_errmsg(c->db));
		rc = sq_locked(c->db) ? sq_locked_error(c, src, err) : sq_check(c, src, err);
		if (!rc) {
			rc = jerror_set(err, JERR_SOURCE, "source \"%s\": query failed to prepare",
					sql_source_id(src));
			jerror_detail(err, "%s", msg.buf);
		}
		strbuf_release(&msg);
		goto out;
	}
	bind_all(st, &p);

	struct sq_cursor *cur = xcalloc(1, sizeof(*cur));
	cur->base.ops = &sq_cursor_ops;
	cur->base.source = src;
	strbuf_init(&cur->base.prev_text, 0);
	cur->stmt = st;
	st = NULL;
	cur->conn = c;
	sql_cursor_state_init(&cur->rs, src, &p);
	*out = &cur->base;
out:
	sqlite3_finalize(st);
	sql_plan_release(&p);
	return rc;
}

/* ---- sample (the UI's editors) ---- */

/*
 * A sample's columns (at most SOURCE_SAMPLE_MAX_COLUMNS) and rows from a prepared
 * statement, under the watcher; returns SQLITE_DONE when every row was read (or there
 * are no columns to read), else the failing step's code.
 */
static int sample_rows(struct sq_conn *c, sqlite3_stmt *st, struct source_sample *out)
{
	size_t alloc = 0;
	sql_sample_columns(out, (size_t)sqlite3_column_count(st));
	for (size_t i = 0; i < out->n_columns; i++)
		out->columns[i] = xstrdup(sqlite3_column_name(st, (int)i));
	if (!out->n_columns)
		return SQLITE_DONE;
	source_wait_begin(&c->watch);
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		char **cells = sql_sample_add_row(out, &alloc);
		for (size_t i = 0; i < out->n_columns; i++) {
			const char *v = (const char *)sqlite3_column_text(st, (int)i);
			cells[i] = sql_sample_value(v, v ? (size_t)sqlite3_column_bytes(st, (int)i) : 0);
		}
	}
	source_wait_end(&c->watch);
	return step;
}

static enum jerr sq_sample(void *conn, const char *table, size_t limit, struct source_sample *out,
			   struct jerror *err)
{
	struct sq_conn *c = conn;
	sqlite3_stmt *st = NULL;
	size_t alloc = 0;
	enum jerr rc = JERR_OK;

	if (sqlite3_prepare_v2(c->db, "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
				      "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while (sqlite3_step(st) == SQLITE_ROW) {
		ALLOC_GROW(out->tables, out->n_tables + 1, alloc);
		out->tables[out->n_tables++] = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	st = NULL;
	if (!table)
		return JERR_OK;
	if ((rc = sql_sample_table_known(c->app->id, table, out->tables, out->n_tables, err)))
		return rc;
	struct strbuf sql = STRBUF_INIT;
	sql_sample_table_sql(&sql, &sqlite_dialect, table, limit);
	int prc = sqlite3_prepare_v2(c->db, sql.buf, (int)sql.len, &st, NULL);
	strbuf_release(&sql);
	if (prc != SQLITE_OK)
		goto fail;
	if (sample_rows(c, st, out) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	return JERR_OK;
fail:
	sql_sample_unreadable(c->app->id, table, err);
	jerror_detail(err, "%s", sqlite3_errmsg(c->db));
	sqlite3_finalize(st);
	return JERR_SOURCE;
}

/*
 * A query's columns and first rows (source_ops.sample_query). The database is open
 * read-only (SQLITE_OPEN_READONLY), the query is a derived table so ATTACH and every
 * write are syntax errors, and a second statement after it (sqlite3_prepare_v2 would
 * silently compile only the first) is refused.
 */
static enum jerr sq_sample_query(void *conn, const char *query, size_t limit, struct source_sample *out,
				 struct jerror *err)
{
	struct sq_conn *c = conn;
	struct strbuf sql = STRBUF_INIT;
	sqlite3_stmt *st = NULL, *more = NULL;
	const char *tail = NULL;
	enum jerr rc = JERR_OK;

	sql_sample_query_sql(&sql, query, limit);
	source_wait_begin(&c->watch);
	int prc = sqlite3_prepare_v2(c->db, sql.buf, (int)sql.len, &st, &tail);
	source_wait_end(&c->watch);
	if (prc != SQLITE_OK)
		goto fail;
	if (tail && *tail) {
		/* whitespace and comments compile to no statement; anything else is one more */
		int trc = sqlite3_prepare_v2(c->db, tail, -1, &more, NULL);
		sqlite3_finalize(more);
		if (trc != SQLITE_OK || more) {
			rc = jerror_set(err, JERR_SOURCE, "app \"%s\": the query is more than one statement", c->app->id);
			jerror_hint(err, "a query source reads one SELECT; remove what follows it");
			goto out;
		}
	}
	if (sample_rows(c, st, out) == SQLITE_DONE)
		goto out;
fail:
	rc = sql_sample_query_unreadable(c->app->id, err);
	jerror_detail(err, "%s", sqlite3_errmsg(c->db));
	rc = source_watch_rc(&c->watch, rc, "app", c->app->id, err);
out:
	sqlite3_finalize(st);
	strbuf_release(&sql);
	return rc;
}

const struct source_ops source_sqlite = {
	.app_type = "sqlite",
	.source_types = sqlite_source_types,
	.app_options = sqlite_app_options,
	.required_app_options = sqlite_app_options,
	.connect = sq_connect,
	.check = sq_check,
	.open_cursor = sq_open_cursor,
	.describe = sq_describe,
	.disconnect = sq_disconnect,
	.sample = sq_sample,
	.sample_query = sq_sample_query,
};