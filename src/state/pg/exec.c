/*
 * exec.c: one statement of a module's own tables in a PostgreSQL state store
 * (backend.h's exec: the alerts and run notes keep their rows through it), its rows
 * handed to a callback as state_values that borrow the result until it returns. Owns
 * nothing past a call; called through state_pg (ops.c).
 */
#include "state/pg/pg_internal.h"

enum jerr pg_exec(struct state *st, const char *what, const char *sql, const struct state_value *params,
		  size_t n, enum jerr (*fn)(void *ctx, const struct state_value *row, size_t n_cols,
						   struct jerror *err),
		  void *ctx, uint64_t *changed, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	struct state_value vals[32];
	struct strbuf text = STRBUF_INIT;
	enum jerr ret;
	PGresult *r;

	if (changed)
		*changed = 0;
	if (n > MAX_PARAMS)
		return jerror_set(err, JERR_INTERNAL, "could not %s: too many parameters", what);
	if ((ret = pg_flush_puts(ps, err)))
		return ret;
	for (size_t i = 0; i < n; i++) {
		if (params[i].kind == STATE_VAL_INT)
			p_int(&p, params[i].i);
		else if (params[i].kind == STATE_VAL_TEXT)
			p_bytes(&p, params[i].s.ptr, params[i].s.len); /* TEXT's binary form is its bytes */
		else
			p_text(&p, NULL);
	}
	if ((ret = pg_sql_run(ps, sql, &p, &r, err, "could not %s in state store \"%s\"", what,
			      st->path)))
		return ret;
	int nc = PQnfields(r);
	if (nc > (int)ARRAY_SIZE(vals))
		nc = (int)ARRAY_SIZE(vals);
	for (int row = 0; fn && row < PQntuples(r) && !ret; row++) {
		for (int c = 0; c < nc; c++) {
			Oid t = PQftype(r, c);
			memset(&vals[c], 0, sizeof(vals[c]));
			if (PQgetisnull(r, row, c)) {
				vals[c].kind = STATE_VAL_NULL;
			} else if (t == 20 || t == 21 || t == 23) { /* int8, int2, int4 */
				vals[c].kind = STATE_VAL_INT;
				vals[c].i = get_int(r, row, c);
			} else if (t == 16) { /* bool */
				vals[c].kind = STATE_VAL_INT;
				vals[c].i = get_bool(r, row, c);
			} else {
				vals[c].kind = STATE_VAL_TEXT;
				vals[c].s = (struct slice){ PQgetvalue(r, row, c), (size_t)PQgetlength(r, row, c) };
			}
		}
		ret = fn(ctx, vals, (size_t)nc, err);
	}
	if (!ret && changed)
		*changed = changes(r);
	PQclear(r);
	strbuf_release(&text);
	return ret;
}
