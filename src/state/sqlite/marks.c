/*
 * marks.c: the high-water marks of incremental schedules in an SQLite state store:
 * read and store one schedule's mark. Owns nothing beyond the call. Called through
 * the ops table (ops.c) by state.c.
 */
#include <sqlite3.h>

#include "state/sqlite/sqlite_internal.h"

/* ---- marks ---- */

enum jerr sq_mark_get(struct state *st, const char *schedule_id, struct strbuf *value, struct strbuf *basis,
		      bool *found, struct jerror *err)
{
	const struct state_value v[] = { state_val_text(schedule_id) };
	sqlite3_stmt *s;
	enum jerr ret = sq_read_row(sq_of(st), S_MARK_GET, v, ARRAY_SIZE(v), false, &s, err,
				    "could not read the mark of schedule \"%s\" in state store \"%s\"", schedule_id,
				    st->path);
	if (!s)
		return ret;
	*found = true;
	strbuf_add(value, (const char *)sqlite3_column_text(s, 0), (size_t)sqlite3_column_bytes(s, 0));
	if (basis && sqlite3_column_type(s, 1) != SQLITE_NULL)
		strbuf_add(basis, (const char *)sqlite3_column_text(s, 1), (size_t)sqlite3_column_bytes(s, 1));
	sq_stmt_done(s);
	return JERR_OK;
}

enum jerr sq_mark_set(struct state *st, const char *schedule_id, const char *value, const char *basis,
		      int64_t now, struct jerror *err)
{
	const struct state_value v[] = { state_val_text(schedule_id), state_val_text(value), state_val_int(now) };
	enum jerr ret = sq_write(sq_of(st), S_MARK_SET, v, ARRAY_SIZE(v), NULL, err,
				 "store the mark of schedule \"%s\"", schedule_id);
	if (ret || !basis)
		return ret;
	const struct state_value b[] = { state_val_text(schedule_id), state_val_text(basis) };
	return sq_write(sq_of(st), S_MARK_BASIS_SET, b, ARRAY_SIZE(b), NULL, err,
			"store the mark of schedule \"%s\"", schedule_id);
}
