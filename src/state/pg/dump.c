/*
 * dump.c: export and import of a PostgreSQL state store, table by table as
 * state_tables (schema.c) lists them: the export through a server-side cursor in one
 * read-only snapshot, whether the store is empty, emptying it, loading rows and
 * moving the id sequences past them. Values handed to the export's callback borrow
 * the result and ps->tmp until it returns. Called through state_pg (ops.c).
 */
#include "state/pg/pg_internal.h"

/* The PostgreSQL columns of column c (a record key is three). */
static void add_columns(struct strbuf *sql, const struct state_column *c, bool order)
{
	if (c->type == STATE_COL_KEY)
		strbuf_addstr(sql, "key_kind, key_int, key_text");
	else if (order && c->type == STATE_COL_TEXT)
		strbuf_addf(sql, "%s COLLATE \"C\"", c->name);
	else
		strbuf_addstr(sql, c->name);
}

/* One fetched row of t into vals; text and hashes borrow res, keys and hashes ps->tmp. */
static void dump_values(struct pg_state *ps, const struct state_table *t, const PGresult *res,
			int r, struct state_value *vals)
{
	size_t at[STATE_MAX_COLUMNS];
	int col = 0;

	strbuf_reset(&ps->tmp);
	for (size_t i = 0; i < t->n_cols; i++) {
		const struct state_column *c = &t->cols[i];
		struct state_value *v = &vals[i];
		*v = (struct state_value){ STATE_VAL_NULL, 0, { "", 0 } };
		at[i] = SIZE_MAX;
		if (c->type == STATE_COL_KEY) {
			if (get_int(res, r, col) == 0) {
				v->kind = STATE_VAL_INT;
				v->i = get_int(res, r, col + 1);
			} else {
				v->kind = STATE_VAL_TEXT;
				at[i] = ps->tmp.len;
				get_bytes(res, r, col + 2, &ps->tmp);
				v->s.len = ps->tmp.len - at[i];
			}
			col += 3;
			continue;
		}
		if (!PQgetisnull(res, r, col)) {
			switch (c->type) {
			case STATE_COL_INT:
				v->kind = STATE_VAL_INT;
				v->i = get_int(res, r, col);
				break;
			case STATE_COL_BOOL:
				v->kind = STATE_VAL_INT;
				v->i = get_bool(res, r, col);
				break;
			case STATE_COL_HASH:
				v->kind = STATE_VAL_TEXT;
				at[i] = ps->tmp.len;
				get_bytes(res, r, col, &ps->tmp);
				v->s.len = ps->tmp.len - at[i];
				break;
			case STATE_COL_TEXT:
			case STATE_COL_KEY:
				v->kind = STATE_VAL_TEXT;
				v->s = (struct slice){ PQgetvalue(res, r, col),
						       (size_t)PQgetlength(res, r, col) };
				break;
			}
		}
		col++;
	}
	/* ps->tmp is complete: point the decoded values into it */
	for (size_t i = 0; i < t->n_cols; i++)
		if (at[i] != SIZE_MAX)
			vals[i].s.ptr = ps->tmp.buf + at[i];
}

static enum jerr dump_table(struct pg_state *ps, const struct state_table *t, state_dump_fn fn,
			    void *ctx, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT, fetch = STRBUF_INIT;
	struct state_value vals[STATE_MAX_COLUMNS];
	enum jerr ret;

	strbuf_addstr(&sql, "DECLARE joey_dump NO SCROLL CURSOR FOR SELECT ");
	for (size_t i = 0; i < t->n_cols; i++) {
		if (i)
			strbuf_addstr(&sql, ", ");
		add_columns(&sql, &t->cols[i], false);
	}
	strbuf_addf(&sql, " FROM %s ORDER BY ", t->name);
	for (size_t i = 0; i < t->n_pk; i++) {
		if (i)
			strbuf_addstr(&sql, ", ");
		add_columns(&sql, &t->cols[i], true);
	}
	strbuf_addf(&fetch, "FETCH %d FROM joey_dump", PG_LIST_BATCH);
	ret = pg_exec_sql(ps, sql.buf, err, "read");
	while (!ret) {
		PGresult *res;
		int n;
		if ((ret = pg_sql_run(ps, fetch.buf, NULL, &res, err,
				      "could not read table \"%s\" of state store \"%s\"", t->name,
				      ps->base.path)))
			break;
		n = PQntuples(res);
		for (int i = 0; i < n && !ret; i++) {
			dump_values(ps, t, res, i, vals);
			ret = fn(ctx, t, vals, err);
		}
		PQclear(res);
		if (n < PG_LIST_BATCH)
			break;
	}
	if (!ret)
		ret = pg_exec_sql(ps, "CLOSE joey_dump", err, "read");
	strbuf_release(&sql);
	strbuf_release(&fetch);
	return ret;
}

enum jerr pg_dump(struct state *st, state_dump_fn fn, void *ctx, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	enum jerr fr = pg_flush_puts(ps, err);
	if (fr)
		return fr;
	bool own_tx = !pg_in_transaction(st);
	enum jerr ret = JERR_OK;

	/* one snapshot for every table */
	if (own_tx && (ret = pg_exec_sql(ps, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err,
					 "read")))
		return ret;
	for (size_t i = 0; i < state_n_tables && !ret; i++)
		if (state_tables[i].since <= st->version)
			ret = dump_table(ps, &state_tables[i], fn, ctx, err);
	if (own_tx) {
		PGresult *r = PQexec(ps->pg, ret ? "ROLLBACK" : "COMMIT");
		PQclear(r);
	}
	return ret;
}

enum jerr pg_is_empty(struct state *st, bool *empty, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	enum jerr fr = pg_flush_puts(ps, err);
	if (fr)
		return fr;
	struct strbuf sql = STRBUF_INIT;
	enum jerr ret = JERR_OK;
	const char *sep = "";
	PGresult *r;

	strbuf_addstr(&sql, "SELECT NOT (");
	for (size_t i = 0; i < state_n_tables; i++) {
		if (state_tables[i].since > st->version)
			continue;
		strbuf_addf(&sql, "%sEXISTS (SELECT 1 FROM %s)", sep, state_tables[i].name);
		sep = " OR ";
	}
	strbuf_addstr(&sql, ")");
	r = PQexec(ps->pg, sql.buf);
	if (!res_ok(r) || PQntuples(r) != 1)
		ret = pg_error(ps, r, err, "could not read state store \"%s\"", st->path);
	else
		*empty = get_bool(r, 0, 0);
	PQclear(r);
	strbuf_release(&sql);
	return ret;
}

/* pg_clear's statements, through pg_exec_sql ("could not empty state store ..."). */
static enum jerr empty_sql(struct state *st, const char *sql, struct jerror *err)
{
	return pg_exec_sql(ps_of(st), sql, err, "empty");
}

enum jerr pg_clear(struct state *st, struct jerror *err)
{
	enum jerr ret = JERR_OK;
	/* the work queue refers to runs and locks that are about to go */
	if (st->version >= 3)
		ret = empty_sql(st, "DELETE FROM work_items; DELETE FROM work_jobs; DELETE FROM rate_buckets", err);
	return ret ? ret : state_delete_tables(st, empty_sql, err);
}

enum jerr pg_load_row(struct state *st, const struct state_table *t,
		      const struct state_value *row, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	enum jerr fr = pg_flush_puts(ps, err);
	if (fr)
		return fr;
	size_t ti = (size_t)(t - state_tables);
	struct params p = { 0 };
	char name[32];
	PGresult *res;
	enum jerr ret = JERR_OK;

	if (ti >= state_n_tables)
		return jerror_set(err, JERR_INTERNAL, "state_load_row: not one of state_tables");
	snprintf(name, sizeof(name), "joey_l%zu", ti);
	if (!ps->load_prepared[ti]) {
		struct strbuf sql = STRBUF_INIT;
		int n = 0;
		strbuf_addf(&sql, "INSERT INTO %s (", t->name);
		for (size_t i = 0; i < t->n_cols; i++) {
			if (i)
				strbuf_addstr(&sql, ", ");
			add_columns(&sql, &t->cols[i], false);
			n += t->cols[i].type == STATE_COL_KEY ? 3 : 1;
		}
		strbuf_addstr(&sql, ") VALUES (");
		for (int i = 0; i < n; i++)
			strbuf_addf(&sql, "%s$%d", i ? ", " : "", i + 1);
		strbuf_addstr(&sql, ")");
		res = PQprepare(ps->pg, name, sql.buf, 0, NULL);
		strbuf_release(&sql);
		if (!res_ok(res)) {
			ret = pg_error(ps, res, err, "could not load table \"%s\" into state store \"%s\"",
				       t->name, st->path);
			PQclear(res);
			return ret;
		}
		PQclear(res);
		ps->load_prepared[ti] = true;
	}
	for (size_t i = 0; i < t->n_cols; i++) {
		const struct state_value *v = &row[i];
		switch (t->cols[i].type) {
		case STATE_COL_KEY: {
			struct rkey k = { v->kind == STATE_VAL_INT, v->i, v->s };
			p_key(&p, &k);
			break;
		}
		case STATE_COL_BOOL:
			if (v->kind == STATE_VAL_NULL)
				p_text(&p, NULL);
			else
				p_bool(&p, v->i != 0);
			break;
		case STATE_COL_INT:
			if (v->kind == STATE_VAL_NULL)
				p_text(&p, NULL);
			else
				p_int(&p, v->i);
			break;
		case STATE_COL_TEXT:
		case STATE_COL_HASH:
			if (v->kind == STATE_VAL_NULL)
				p_text(&p, NULL);
			else
				p_bytes(&p, v->s.ptr, v->s.len);
			break;
		}
	}
	res = PQexecPrepared(ps->pg, name, p.n, p.v, p.len, p.fmt, 0);
	if (!res_ok(res))
		ret = pg_error(ps, res, err, "could not load a row of table \"%s\" into state store "
			       "\"%s\"",
			       t->name, st->path);
	PQclear(res);
	return ret;
}

/* New ids follow the largest loaded one (identity columns do not notice explicit ids). */
enum jerr pg_load_finish(struct state *st, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	enum jerr ret = JERR_OK;
	for (size_t i = 0; i < state_n_tables && !ret; i++) {
		const struct state_table *t = &state_tables[i];
		struct strbuf sql = STRBUF_INIT;
		if (t->since > st->version || t->n_pk != 1 || strcmp(t->cols[0].name, "id") != 0)
			continue;
		strbuf_addf(&sql, "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence("
				  "pg_catalog.quote_ident(pg_catalog.current_schema()) || '.%s', 'id'),"
				  " coalesce(max(id), 0) + 1, false) FROM %s",
			    t->name, t->name);
		ret = pg_exec_sql(ps, sql.buf, err, "load");
		strbuf_release(&sql);
	}
	return ret;
}
