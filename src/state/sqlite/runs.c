/*
 * runs.c: the run history and the error ledger of an SQLite state store: a run's
 * start, progress and end, runs left running by a process that died, and the
 * listings of both. Owns nothing beyond the call: the rows handed to a listing's
 * callback borrow the statement's memory for the call. Called through the ops table
 * (ops.c) by state.c.
 */
#include <inttypes.h>
#include <string.h>

#include <sqlite3.h>

#include "state/sqlite/sqlite_internal.h"

/* ---- runs and ledger ---- */

enum jerr sq_run_start(struct state *st, const char *dest_id, const char *kind,
		       int64_t now, int64_t *run_id, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	const struct state_value v[] = { state_val_text(dest_id), state_val_text(kind), state_val_int(now) };
	enum jerr ret = sq_write(sq, S_RUN_START, v, ARRAY_SIZE(v), NULL, err,
				 "record the start of a %s of destination \"%s\"", kind, dest_id);
	if (!ret)
		*run_id = sqlite3_last_insert_rowid(sq->db);
	return ret;
}

enum jerr sq_run_finish(struct state *st, int64_t run_id, enum run_status status,
			const struct run_counts *c, const char *error, int64_t now,
			bool *found, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;

	if ((ret = sq_stmt_get(sq, S_RUN_FINISH, &s, err)))
		return ret;
	sqlite3_bind_int64(s, 1, run_id);
	sq_bind_str(s, 2, run_status_name(status));
	sqlite3_bind_int64(s, 3, now);
	sq_bind_counts(s, 4, c);
	sq_bind_str(s, 15, error);
	ret = sq_step_writef(sq, s, err, "record the end of run %" PRId64, run_id);
	*found = !ret && sqlite3_changes(sq->db) > 0;
	return ret;
}

/* sq_abandon_keys' marking of one journal key (state_journal_key_fn). */
struct abandon_keys {
	sqlite3_stmt *mark;
	int rc; /* the first failed step (SQLITE_DONE: none) */
};

static int mark_key(void *vctx, const struct rkey *key)
{
	struct abandon_keys *a = vctx;
	sq_bind_key(a->mark, 3, key);
	a->rc = sqlite3_step(a->mark);
	sqlite3_reset(a->mark);
	return a->rc != SQLITE_DONE;
}

enum jerr sq_abandon_keys(struct state *st, const char *dest_id, int64_t now, int64_t first_start,
			  const int64_t (*runs)[2], size_t n, bool *narrowed, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	struct abandon_keys a = { NULL, SQLITE_DONE };
	/* one transaction for them all (or a part of the caller's): a journal may hold a million keys */
	int rc = sqlite3_exec(sq->db, "SAVEPOINT joey_abandon", NULL, NULL, NULL);
	*narrowed = false;
	if (rc != SQLITE_OK)
		return sq_db_error(sq, rc, err, "could not mark the records of an unfinished run pending in "
				   "state store \"%s\"", st->path);
	rc = sqlite3_prepare_v2(sq->db,
				    "UPDATE records SET pending = 1, last_error = '" STATE_ABANDONED_SEND_ERROR "', "
				    "updated_at = ?2 WHERE dest_id = ?1 AND key = ?3 AND pending = 0 AND confirmed_at < ?4",
				    -1, &a.mark, NULL);
	*narrowed = rc == SQLITE_OK;
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(a.mark, 1, dest_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(a.mark, 2, now);
		sqlite3_bind_int64(a.mark, 4, first_start);
	}
	for (size_t i = 0; i < n && *narrowed; i++)
		*narrowed = state_journal_read(st, runs[i][0], runs[i][1], mark_key, &a) == JOURNAL_OK;
	sqlite3_finalize(a.mark);
	if (rc == SQLITE_OK && a.rc == SQLITE_DONE)
		rc = sqlite3_exec(sq->db, "RELEASE joey_abandon", NULL, NULL, NULL);
	else if (rc == SQLITE_OK)
		rc = a.rc;
	if (rc != SQLITE_OK) {
		enum jerr ret = sq_db_error(sq, rc, err, "could not mark the records of an unfinished run pending "
					    "in state store \"%s\"", st->path);
		sqlite3_exec(sq->db, "ROLLBACK TO joey_abandon; RELEASE joey_abandon", NULL, NULL, NULL);
		return ret;
	}
	return JERR_OK;
}

enum jerr sq_runs_abandon(struct state *st, const char *dest_id, int64_t now, bool all_records, uint64_t *n,
			  struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	int rc;

	/* first the records, while the runs still say running: a crash between the
	 * statements leaves both to do again */
	if (all_records) {
		rc = sqlite3_prepare_v2(sq->db,
					"UPDATE records SET pending = 1, last_error = '" STATE_ABANDONED_SEND_ERROR "', "
					"updated_at = ?2 WHERE dest_id = ?1 AND pending = 0 AND confirmed_at < "
					"(SELECT min(started_at) FROM runs WHERE dest_id = ?1 AND status = 'running' "
					"AND kind = 'run')",
					-1, &s, NULL);
		if (rc != SQLITE_OK)
			return sq_db_error(sq, rc, err, "could not mark the records of an unfinished run pending in "
					   "state store \"%s\"", st->path);
		sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, now);
		rc = sqlite3_step(s);
		sqlite3_finalize(s);
		s = NULL;
		if (rc != SQLITE_DONE)
			return sq_db_error(sq, rc, err, "could not mark the records of an unfinished run pending in "
					   "state store \"%s\"", st->path);
	}
	rc = sqlite3_prepare_v2(sq->db,
				"UPDATE runs SET status = 'interrupted', finished_at = ?2, "
				"error = '" STATE_ABANDONED_ERROR "' "
				"WHERE dest_id = ?1 AND status = 'running'",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_db_error(sq, rc, err, "could not update the run history of state store \"%s\"",
				   st->path);
	sqlite3_bind_text(s, 1, dest_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		*n = (uint64_t)sqlite3_changes(sq->db);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sq_db_error(sq, rc, err, "could not update the run history of state store \"%s\"",
				   st->path);
	return JERR_OK;
}

enum jerr sq_run_progress(struct state *st, int64_t run_id, const struct run_counts *c,
			  struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;

	if ((ret = sq_stmt_get(sq, S_RUN_PROGRESS, &s, err)))
		return ret;
	sqlite3_bind_int64(s, 1, run_id);
	sq_bind_counts(s, 2, c);
	return sq_step_writef(sq, s, err, "record the progress of run %" PRId64, run_id);
}

enum jerr sq_runs_running(struct state *st, struct strbuf *ids, size_t *n, struct jerror *err)
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
		return sq_db_error(sq, rc, err, "could not read the run history of state store \"%s\"", st->path);
	return JERR_OK;
}

enum jerr sq_ledger_add(struct state *st, int64_t run_id, const char *dest_id,
			const struct rkey *key, const char *error, int attempts, int64_t now,
			struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	sqlite3_stmt *s = NULL;
	enum jerr ret;
	if ((ret = sq_stmt_get(sq, S_LEDGER_ADD, &s, err)))
		return ret;
	if (run_id > 0)
		sqlite3_bind_int64(s, 1, run_id);
	else
		sqlite3_bind_null(s, 1);
	sqlite3_bind_text(s, 2, dest_id, -1, SQLITE_STATIC);
	sq_bind_key(s, 3, key);
	sq_bind_str(s, 4, error);
	sqlite3_bind_int(s, 5, attempts);
	sqlite3_bind_int64(s, 6, now);
	return sq_step_write(sq, s, "add to the error ledger the", dest_id, key, err);
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
	r.started_at = sq_column_time(s, 4);
	r.finished_at = sq_column_time(s, 5);
	r.counts.created = sq_column_count(s, 6);
	r.counts.updated = sq_column_count(s, 7);
	r.counts.deleted = sq_column_count(s, 8);
	r.counts.unsubscribed = sq_column_count(s, 9);
	r.counts.unchanged = sq_column_count(s, 10);
	r.counts.failed = sq_column_count(s, 11);
	r.counts.skipped = sq_column_count(s, 12);
	r.counts.requests = sq_column_count(s, 13);
	r.counts.retries = sq_column_count(s, 14);
	r.counts.throttled = sq_column_count(s, 15);
	r.counts.data_points = sq_column_count(s, 16);
	r.error = (const char *)sqlite3_column_text(s, 17);
	if (!r.dest_id)
		r.dest_id = "";
	if (!r.kind)
		r.kind = "";
	return a->fn(a->ctx, &r, err);
}

enum jerr sq_runs_list(struct state *st, const char *dest_id, size_t limit,
		       state_run_fn fn, void *ctx, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	struct strbuf sql = STRBUF_INIT;
	struct run_list_arg a = { fn, ctx };
	sqlite3_stmt *s = NULL;
	int rc;

	strbuf_addstr(&sql, "SELECT " STATE_RUN_COLUMNS " FROM runs");
	if (dest_id)
		strbuf_addstr(&sql, " WHERE dest_id = :dest");
	strbuf_addstr(&sql, " ORDER BY id DESC LIMIT :limit");
	rc = sqlite3_prepare_v2(sq->db, sql.buf, -1, &s, NULL);
	strbuf_release(&sql);
	if (rc != SQLITE_OK)
		return sq_db_error(sq, rc, err, "could not list runs in state store \"%s\"", st->path);
	if (dest_id)
		sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, ":dest"), dest_id, -1,
				  SQLITE_STATIC);
	sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":limit"),
			   limit && limit < INT64_MAX ? (int64_t)limit : -1);
	return sq_list_rows(sq, s, "runs", each_run, &a, err);
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
	e.run_id = sq_column_time(s, 1);
	e.dest_id = (const char *)sqlite3_column_text(s, 2);
	sq_decode_key(s, 3, &e.key, a->keybuf);
	e.error = (const char *)sqlite3_column_text(s, 4);
	e.attempts = sqlite3_column_int(s, 5);
	e.at = sq_column_time(s, 6);
	if (!e.dest_id)
		e.dest_id = "";
	if (!e.error)
		e.error = "";
	return a->fn(a->ctx, &e, err);
}

enum jerr sq_ledger_list(struct state *st, const char *dest_id, int64_t run_id,
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
		return sq_db_error(sq, rc, err, "could not list the error ledger in state store \"%s\"",
				   st->path);
	if (dest_id)
		sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, ":dest"), dest_id, -1,
				  SQLITE_STATIC);
	if (key)
		sq_bind_key(s, sqlite3_bind_parameter_index(s, ":key"), key);
	if (run_id > 0)
		sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":run"), run_id);
	sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":limit"),
			   limit && limit < INT64_MAX ? (int64_t)limit : -1);
	return sq_list_rows(sq, s, "the error ledger", each_ledger, &a, err);
}
