/*
 * marks.c: the high-water marks of incremental schedules in an SQLite state store:
 * read and store one schedule's mark. Owns nothing beyond the call. Called through
 * the ops table (ops.c) by state.c.
 */
#include <sqlite3.h>

#include "state/sqlite/sqlite_internal.h"

/* ---- marks ---- */

enum jerr sq_mark_get(struct state *st, const char *schedule_id, struct strbuf *value,
		      bool *found, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	bool row;

	if ((ret = sq_stmt_dest(sq, S_MARK_GET, schedule_id, &s, err)))
		return ret;
	ret = sq_step_row(sq, s, false, &row, err,
			  "could not read the mark of schedule \"%s\" in state store \"%s\"", schedule_id,
			  st->path);
	if (row) {
		*found = true;
		strbuf_add(value, (const char *)sqlite3_column_text(s, 0),
			   (size_t)sqlite3_column_bytes(s, 0));
	}
	sq_stmt_done(s);
	return ret;
}

enum jerr sq_mark_set(struct state *st, const char *schedule_id, const char *value,
		      int64_t now, struct jerror *err)
{
	const struct state_value v[] = { state_val_text(schedule_id), state_val_text(value), state_val_int(now) };
	return sq_write(sq_of(st), S_MARK_SET, v, ARRAY_SIZE(v), NULL, err, "store the mark of schedule \"%s\"",
			schedule_id);
}
