/*
 * synclog.c: the sync log's outbox and per-run status in an SQLite state store
 * (engine/synclog.h): add, read, delete and count outbox rows, and set and read
 * whether a run's log was written. Owns nothing beyond the call. Called through the
 * ops table (ops.c) by state.c.
 */
#include <sqlite3.h>

#include "state/sqlite/sqlite_internal.h"

/* ---- the sync log's outbox and per-run status ---- */

enum jerr sq_outbox_put(struct state *st, const char *dest_id, int64_t run_id, struct slice body, int64_t now,
			int64_t *id, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = sq_stmt_dest(sq, S_OUTBOX_PUT, dest_id, &s, err)))
		return ret;
	sqlite3_bind_int64(s, 2, run_id);
	sqlite3_bind_blob(s, 3, body.len ? body.ptr : "", (int)body.len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	ret = sq_step_write(sq, s, "add sync log rows to the outbox", NULL, NULL, err);
	if (!ret)
		*id = sqlite3_last_insert_rowid(sq->db);
	return ret;
}

enum jerr sq_outbox_next(struct state *st, const char *dest_id, int64_t after, int64_t *id, int64_t *run_id,
			 struct strbuf *body, bool *found, struct jerror *err)
{
	const struct state_value v[] = { state_val_text(dest_id), state_val_int(after) };
	sqlite3_stmt *s;
	enum jerr ret = sq_read_row(sq_of(st), S_OUTBOX_NEXT, v, ARRAY_SIZE(v), false, &s, err,
				    "could not read the sync log outbox of destination \"%s\" in state store \"%s\"",
				    dest_id, st->path);
	if (!s)
		return ret;
	*found = true;
	*id = sqlite3_column_int64(s, 0);
	*run_id = sqlite3_column_int64(s, 1);
	strbuf_add(body, sqlite3_column_blob(s, 2), (size_t)sqlite3_column_bytes(s, 2));
	sq_stmt_done(s);
	return JERR_OK;
}

enum jerr sq_outbox_delete(struct state *st, const char *dest_id, int64_t id, bool *deleted,
			   struct jerror *err)
{
	const struct state_value v[] = { state_val_text(dest_id), state_val_int(id) };
	return sq_write(sq_of(st), S_OUTBOX_DEL, v, ARRAY_SIZE(v), deleted, err,
			"delete written rows from the sync log outbox");
}

enum jerr sq_outbox_count(struct state *st, const char *dest_id, uint64_t *rows, uint64_t *bytes,
			  struct jerror *err)
{
	const struct state_value v[] = { state_val_text(dest_id) };
	sqlite3_stmt *s;
	enum jerr ret = sq_read_row(sq_of(st), S_OUTBOX_COUNT, v, ARRAY_SIZE(v), true, &s, err,
				    "could not count the sync log outbox of destination \"%s\" in state store \"%s\"",
				    dest_id, st->path);
	if (!s)
		return ret;
	*rows = sq_column_count(s, 0);
	*bytes = sq_column_count(s, 1);
	sq_stmt_done(s);
	return JERR_OK;
}

enum jerr sq_synclog_set(struct state *st, const struct state_synclog_info *info, int64_t now,
			 struct jerror *err)
{
	const struct state_value v[] = { state_val_int(info->run_id), state_val_text(info->dest_id),
					 state_val_text(info->status), state_val_int((int64_t)info->rows),
					 state_val_int((int64_t)info->pending), state_val_text(info->error),
					 state_val_int(now) };
	return sq_write(sq_of(st), S_SYNCLOG_SET, v, ARRAY_SIZE(v), NULL, err, "record the sync log status of a run");
}

enum jerr sq_synclog_get(struct state *st, int64_t run_id, struct state_synclog_info *info,
			 struct strbuf *status, struct strbuf *error, bool *found, struct jerror *err)
{
	const struct state_value v[] = { state_val_int(run_id) };
	sqlite3_stmt *s;
	enum jerr ret = sq_read_row(sq_of(st), S_SYNCLOG_GET, v, ARRAY_SIZE(v), false, &s, err,
				    "could not read the sync log status of run %lld in state store \"%s\"",
				    (long long)run_id, st->path);
	if (!s)
		return ret;
	*found = true;
	info->run_id = run_id;
	strbuf_add(status, sqlite3_column_text(s, 1), (size_t)sqlite3_column_bytes(s, 1));
	info->rows = sq_column_count(s, 2);
	info->pending = sq_column_count(s, 3);
	if (sqlite3_column_type(s, 4) != SQLITE_NULL) {
		strbuf_add(error, sqlite3_column_text(s, 4), (size_t)sqlite3_column_bytes(s, 4));
		info->error = error->buf;
	}
	info->updated_at = sqlite3_column_int64(s, 5);
	info->status = status->buf;
	info->dest_id = NULL; /* not kept: the caller knows the run's destination */
	sq_stmt_done(s);
	return JERR_OK;
}

enum jerr sq_synclog_unfinished(struct state *st, const char *dest_id, int64_t *ids, size_t max, size_t *n,
				struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	int rc;
	if ((ret = sq_stmt_dest(sq, S_SYNCLOG_UNFINISHED, dest_id, &s, err)))
		return ret;
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < max)
		ids[(*n)++] = sqlite3_column_int64(s, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sq_db_error(sq, rc, err, "could not list the sync log status of destination \"%s\" in state store \"%s\"",
				  dest_id, st->path);
	sq_stmt_done(s);
	return ret;
}

