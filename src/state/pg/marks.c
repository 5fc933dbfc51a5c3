/*
 * marks.c: the marks of a PostgreSQL state store: each schedule's high-water mark
 * (the value of its last complete incremental read), read and stored. Owns nothing;
 * called through state_pg (ops.c).
 */
#include "state/pg/pg_internal.h"

enum jerr pg_mark_get(struct state *st, const char *schedule_id, struct strbuf *value, struct strbuf *basis,
		      bool *found, struct jerror *err)
{
	PGresult *res;
	enum jerr ret = pg_run_key(ps_of(st), S_MARK_GET, schedule_id, &res, err,
				   "could not read the mark of schedule \"%s\" in state store \"%s\"", schedule_id,
				   st->path);
	if (ret)
		return ret;
	if (res) {
		*found = true;
		strbuf_add(value, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
		if (basis && !PQgetisnull(res, 0, 1))
			strbuf_add(basis, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
	}
	PQclear(res);
	return JERR_OK;
}

enum jerr pg_mark_set(struct state *st, const char *schedule_id, const char *value, const char *basis,
		      int64_t now, struct jerror *err)
{
	struct params p = { 0 }, b = { 0 };
	p_text(&p, schedule_id);
	p_text(&p, value);
	p_int(&p, now);
	enum jerr ret = pg_run_write(ps_of(st), S_MARK_SET, &p, NULL, err,
				     "could not store the mark of schedule \"%s\" in state store \"%s\"", schedule_id,
				     st->path);
	if (ret || !basis)
		return ret;
	p_text(&b, schedule_id);
	p_text(&b, basis);
	return pg_run_write(ps_of(st), S_MARK_BASIS_SET, &b, NULL, err,
			    "could not store the mark of schedule \"%s\" in state store \"%s\"", schedule_id,
			    st->path);
}
