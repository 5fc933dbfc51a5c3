/*
 * synclog.c: the sync log's tables in a PostgreSQL state store: the outbox of rows
 * waiting to be written to the sync log (add, next, delete, count) and each run's
 * sync log status. Owns nothing past a call; what is read is copied into the caller's
 * strbufs. Called through state_pg (ops.c).
 */
#include "state/pg/pg_internal.h"

enum jerr pg_outbox_put(struct state *st, const char *dest_id, int64_t run_id, struct slice body, int64_t now,
			int64_t *id, struct jerror *err)
{
	struct params p = { 0 };
	p_text(&p, dest_id);
	p_int(&p, run_id);
	p_bytes(&p, body.ptr, body.len);
	p_int(&p, now);
	/* RETURNING id of one row: one row, never NULL */
	return pg_run_int(ps_of(st), S_OUTBOX_PUT, &p, id, err,
			  "could not add sync log rows of destination \"%s\" to the outbox in state store \"%s\"",
			  dest_id, st->path);
}

enum jerr pg_outbox_next(struct state *st, const char *dest_id, int64_t after, int64_t *id, int64_t *run_id,
			 struct strbuf *body, bool *found, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	p_int(&p, after);
	ret = pg_run_row(ps_of(st), S_OUTBOX_NEXT, &p, &res, err,
			 "could not read the sync log outbox of destination \"%s\" in state store \"%s\"", dest_id,
			 st->path);
	if (ret)
		return ret;
	if (res) {
		size_t n = 0;
		unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 2), &n);
		if (!b) {
			PQclear(res);
			return jerror_set(err, JERR_STATE, "could not decode the sync log outbox of destination \"%s\" "
					  "in state store \"%s\"", dest_id, st->path);
		}
		*found = true;
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*run_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		strbuf_add(body, b, n);
		PQfreemem(b);
	}
	PQclear(res);
	return JERR_OK;
}

enum jerr pg_outbox_delete(struct state *st, const char *dest_id, int64_t id, bool *deleted,
			   struct jerror *err)
{
	struct params p = { 0 };
	p_text(&p, dest_id);
	p_int(&p, id);
	*deleted = false;
	return pg_run_changed(ps_of(st), S_OUTBOX_DEL, &p, deleted, err,
			      "could not delete written rows from the sync log outbox of destination \"%s\" in state store \"%s\"",
			      dest_id, st->path);
}

enum jerr pg_outbox_count(struct state *st, const char *dest_id, uint64_t *rows, uint64_t *bytes,
			  struct jerror *err)
{
	PGresult *res;
	/* count(*): always one row */
	enum jerr ret = pg_run_key(ps_of(st), S_OUTBOX_COUNT, dest_id, &res, err,
				   "could not count the sync log outbox of destination \"%s\" in state store \"%s\"",
				   dest_id, st->path);
	if (ret)
		return ret;
	*rows = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	*bytes = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return JERR_OK;
}

enum jerr pg_synclog_set(struct state *st, const struct state_synclog_info *info, int64_t now,
			 struct jerror *err)
{
	struct params p = { 0 };
	struct strbuf e = STRBUF_INIT;
	enum jerr ret;
	p_int(&p, info->run_id);
	p_text(&p, info->dest_id);
	p_text(&p, info->status);
	p_int(&p, (int64_t)info->rows);
	p_int(&p, (int64_t)info->pending);
	p_text(&p, info->error ? pg_clean_text(info->error, &e) : NULL);
	p_int(&p, now);
	ret = pg_run_write(ps_of(st), S_SYNCLOG_SET, &p, NULL, err,
			   "could not record the sync log status of run %lld in state store \"%s\"",
			   (long long)info->run_id, st->path);
	strbuf_release(&e);
	return ret;
}

enum jerr pg_synclog_get(struct state *st, int64_t run_id, struct state_synclog_info *info,
			 struct strbuf *status, struct strbuf *error, bool *found, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_int(&p, run_id);
	ret = pg_run_row(ps_of(st), S_SYNCLOG_GET, &p, &res, err,
			 "could not read the sync log status of run %lld in state store \"%s\"", (long long)run_id,
			 st->path);
	if (ret)
		return ret;
	if (res) {
		*found = true;
		info->run_id = run_id;
		strbuf_addstr(status, PQgetvalue(res, 0, 1));
		info->status = status->buf;
		info->rows = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
		info->pending = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
		if (!PQgetisnull(res, 0, 4)) {
			strbuf_addstr(error, PQgetvalue(res, 0, 4));
			info->error = error->buf;
		}
		info->updated_at = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	}
	PQclear(res);
	return JERR_OK;
}

enum jerr pg_synclog_unfinished(struct state *st, const char *dest_id, int64_t *ids, size_t max, size_t *n,
				struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_text(&p, dest_id);
	p_int(&p, (int64_t)max);
	ret = pg_run(ps_of(st), S_SYNCLOG_UNFINISHED, &p, &res, err,
		     "could not list the sync log status of destination \"%s\" in state store \"%s\"", dest_id,
		     st->path);
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res) && *n < max; i++)
		ids[(*n)++] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	return JERR_OK;
}
