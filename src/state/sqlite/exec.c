/*
 * exec.c: statements with struct state_value parameters in an SQLite state store: one
 * statement of a module's own tables (the exec operation of backend.h: accounts, alerts,
 * run notes), with $1..$n parameters and each row handed to a callback; and sq_write, a
 * cached statement with ?1..?n in one call, sq_write and sq_read_row (locks.c, marks.c,
 * runs.c, synclog.c). Owns the
 * exec statement for the call only; a row borrows its memory for the callback. Called
 * through the ops table (ops.c) and by the files named.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "state/sqlite/sqlite_internal.h"

/* v (borrowed until s is reset or finalized) bound to parameter idx of s. */
static void bind_value(sqlite3_stmt *s, int idx, const struct state_value *v)
{
	if (v->kind == STATE_VAL_INT)
		sqlite3_bind_int64(s, idx, v->i);
	else if (v->kind == STATE_VAL_TEXT)
		sqlite3_bind_text(s, idx, v->s.ptr ? v->s.ptr : "", (int)v->s.len, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, idx);
}

/* ---- one statement of a module's own tables (backend.h exec) ---- */

enum jerr sq_exec(struct state *st, const char *what, const char *sql, const struct state_value *params,
		  size_t n, enum jerr (*fn)(void *ctx, const struct state_value *row, size_t n_cols,
		  struct jerror *err),
		  void *ctx, uint64_t *changed, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	struct state_value vals[32];
	sqlite3_stmt *s = NULL;
	enum jerr ret = JERR_OK;
	if (changed)
		*changed = 0;
	if (sq->n_pend && (ret = sq_flush_puts(sq, err))) /* kept puts first (sqlite_internal.h) */
		return ret;
	int rc = sqlite3_prepare_v2(sq->db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return sq_db_error(sq, rc, err, "could not %s in state store \"%s\"", what, st->path);
	for (size_t i = 0; i < n; i++) {
		char name[24];
		snprintf(name, sizeof(name), "$%zu", i + 1);
		int idx = sqlite3_bind_parameter_index(s, name);
		if (idx)
			bind_value(s, idx, &params[i]);
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
		ret = sq_db_error(sq, rc, err, "could not %s in state store \"%s\"", what, st->path);
	if (!ret && changed)
		*changed = (uint64_t)sqlite3_changes(sq->db);
	sqlite3_finalize(s);
	return ret;
}


/* ---- a cached statement in one call (sqlite_internal.h sq_write, sq_read_row) ---- */

/* Cached statement id in *s with v[0..n) bound to ?1..?n; *s NULL on failure. */
static enum jerr stmt_bound(struct sq_state *sq, enum stmt_id id, const struct state_value *v, size_t n,
			    sqlite3_stmt **s, struct jerror *err)
{
	enum jerr ret = sq_stmt_get(sq, id, s, err);
	for (size_t i = 0; !ret && i < n; i++)
		bind_value(*s, (int)i + 1, &v[i]);
	return ret;
}

enum jerr sq_write(struct sq_state *sq, enum stmt_id id, const struct state_value *v, size_t n, bool *changed,
		   struct jerror *err, const char *fmt, ...)
{
	struct strbuf what = STRBUF_INIT;
	sqlite3_stmt *s;
	va_list ap;
	enum jerr ret = stmt_bound(sq, id, v, n, &s, err);
	if (ret)
		return ret;
	va_start(ap, fmt);
	strbuf_vaddf(&what, fmt, ap);
	va_end(ap);
	ret = sq_step_writef(sq, s, err, "%s", what.buf);
	strbuf_release(&what);
	if (changed)
		*changed = !ret && sqlite3_changes(sq->db) > 0;
	return ret;
}

enum jerr sq_read_row(struct sq_state *sq, enum stmt_id id, const struct state_value *v, size_t n, bool need_row,
		      sqlite3_stmt **row, struct jerror *err, const char *fmt, ...)
{
	sqlite3_stmt *s;
	va_list ap;
	enum jerr ret = stmt_bound(sq, id, v, n, &s, err);
	*row = NULL;
	if (ret)
		return ret;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*row = s;
		return JERR_OK;
	}
	if (rc != SQLITE_DONE || need_row) {
		va_start(ap, fmt);
		ret = sq_db_verror(sq, rc, err, fmt, ap);
		va_end(ap);
	}
	sq_stmt_done(s);
	return ret;
}
