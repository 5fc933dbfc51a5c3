/*
 * export.c: an SQLite state store's tables as export and import see them
 * (state_tables, schema.c): every row of every table column by column, whether the
 * store is empty, emptying it, and loading rows. Owns the per-table INSERT statements
 * it caches in sq->load[] (finalized by close in open.c). Called through the ops
 * table (ops.c) by state.c for `joey state export` and `joey state import`.
 */
#include <sqlite3.h>
#include <string.h>

#include "state/sqlite/sqlite_internal.h"


/* Decode column i of s as a value of type (borrowing s's memory). */
static void column_value(sqlite3_stmt *s, int i, enum state_col_type type, struct state_value *v)
{
	int t = sqlite3_column_type(s, i);
	*v = (struct state_value){ STATE_VAL_NULL, 0, { "", 0 } };
	if (t == SQLITE_NULL)
		return;
	if (type == STATE_COL_INT || type == STATE_COL_BOOL ||
	    (type == STATE_COL_KEY && t == SQLITE_INTEGER)) {
		v->kind = STATE_VAL_INT;
		v->i = sqlite3_column_int64(s, i);
		if (type == STATE_COL_BOOL)
			v->i = v->i != 0;
		return;
	}
	v->kind = STATE_VAL_TEXT;
	if (type == STATE_COL_HASH) {
		const void *b = sqlite3_column_blob(s, i);
		v->s = (struct slice){ b ? b : "", (size_t)sqlite3_column_bytes(s, i) };
	} else {
		const char *x = (const char *)sqlite3_column_text(s, i);
		v->s = (struct slice){ x ? x : "", (size_t)sqlite3_column_bytes(s, i) };
	}
}

/* The index of t's packed column (records.payload, names.c), or t->n_cols when it has none. */
static size_t payload_col(const struct state_table *t)
{
	size_t i = 0;
	if (strcmp(t->name, "records"))
		return t->n_cols;
	while (i < t->n_cols && strcmp(t->cols[i].name, "payload"))
		i++;
	return i;
}

static enum jerr dump_table(struct sq_state *sq, const struct state_table *t, state_dump_fn fn,
			    void *ctx, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	struct state_value vals[STATE_MAX_COLUMNS];
	sqlite3_stmt *s = NULL;
	enum jerr ret = JERR_OK;
	int rc;

	strbuf_addstr(&sql, "SELECT ");
	for (size_t i = 0; i < t->n_cols; i++)
		strbuf_addf(&sql, "%s%s", i ? ", " : "", t->cols[i].name);
	strbuf_addf(&sql, " FROM %s ORDER BY ", t->name);
	for (size_t i = 0; i < t->n_pk; i++)
		strbuf_addf(&sql, "%s%s", i ? ", " : "", t->cols[i].name);
	rc = sqlite3_prepare_v2(sq->db, sql.buf, -1, &s, NULL);
	strbuf_release(&sql);
	if (rc != SQLITE_OK)
		return sq_db_error(sq, rc, err, "could not read table \"%s\" of state store \"%s\"",
				   t->name, sq->base.path);
	size_t packed = payload_col(t);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		for (size_t i = 0; i < t->n_cols; i++)
			column_value(s, (int)i, t->cols[i].type, &vals[i]);
		/* a records payload as joey reads it, never packed: another store may number names otherwise */
		if (packed < t->n_cols && vals[packed].kind == STATE_VAL_TEXT &&
		    (ret = sq_payload_unpack(&sq->names, sq->db, sq->base.path, &vals[packed].s, err)))
			break;
		if ((ret = fn(ctx, t, vals, err)))
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sq_db_error(sq, rc, err, "could not read table \"%s\" of state store \"%s\"",
				  t->name, sq->base.path);
	sqlite3_finalize(s);
	return ret;
}

enum jerr sq_dump(struct state *st, state_dump_fn fn, void *ctx, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	enum jerr ret = JERR_OK;
	bool own_tx = !sq_in_transaction(st);

	/* one read transaction: every table from the same snapshot */
	if (own_tx && (ret = sq_exec_sql(sq, "BEGIN", err, "read")))
		return ret;
	for (size_t i = 0; i < state_n_tables && !ret; i++)
		if (state_tables[i].since <= st->version)
			ret = dump_table(sq, &state_tables[i], fn, ctx, err);
	if (own_tx)
		sqlite3_exec(sq->db, "COMMIT", NULL, NULL, NULL); /* read only: nothing to lose */
	return ret;
}

enum jerr sq_is_empty(struct state *st, bool *empty, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	*empty = true;
	for (size_t i = 0; i < state_n_tables && *empty; i++) {
		struct strbuf sql = STRBUF_INIT;
		int64_t n = 0;
		bool found;
		int rc;
		if (state_tables[i].since > st->version)
			continue;
		strbuf_addf(&sql, "SELECT EXISTS (SELECT 1 FROM %s)", state_tables[i].name);
		rc = sq_query_int(sq, sql.buf, &n, &found);
		strbuf_release(&sql);
		if (rc != SQLITE_OK)
			return sq_db_error(sq, rc, err, "could not read table \"%s\" of state store \"%s\"",
					   state_tables[i].name, st->path);
		*empty = n == 0;
	}
	return JERR_OK;
}

/* sq_clear's statements, through sq_exec_sql ("could not empty state store ..."). */
static enum jerr empty_sql(struct state *st, const char *sql, struct jerror *err)
{
	return sq_exec_sql(sq_of(st), sql, err, "empty");
}

enum jerr sq_clear(struct state *st, struct jerror *err)
{
	return state_delete_tables(st, empty_sql, err);
}

enum jerr sq_load_row(struct state *st, const struct state_table *t,
		      const struct state_value *row, struct jerror *err)
{
	struct sq_state *sq = sq_of(st);
	size_t ti = (size_t)(t - state_tables);
	sqlite3_stmt *s = NULL;
	int rc;

	if (ti >= state_n_tables)
		return jerror_set(err, JERR_INTERNAL, "state_load_row: not one of state_tables");
	if (!sq->load[ti]) {
		struct strbuf sql = STRBUF_INIT;
		strbuf_addf(&sql, "INSERT INTO %s (", t->name);
		for (size_t i = 0; i < t->n_cols; i++)
			strbuf_addf(&sql, "%s%s", i ? ", " : "", t->cols[i].name);
		strbuf_addstr(&sql, ") VALUES (");
		for (size_t i = 0; i < t->n_cols; i++)
			strbuf_addf(&sql, "%s?%zu", i ? ", " : "", i + 1);
		strbuf_addstr(&sql, ")");
		rc = sqlite3_prepare_v3(sq->db, sql.buf, -1, SQLITE_PREPARE_PERSISTENT, &sq->load[ti],
					NULL);
		strbuf_release(&sql);
		if (rc != SQLITE_OK)
			return sq_db_error(sq, rc, err, "could not load table \"%s\" into state store \"%s\"",
					   t->name, st->path);
	}
	s = sq->load[ti];
	size_t packed = payload_col(t);
	for (size_t i = 0; i < t->n_cols; i++) {
		const struct state_value *v = &row[i];
		int idx = (int)i + 1;
		if (v->kind == STATE_VAL_NULL)
			sqlite3_bind_null(s, idx);
		else if (v->kind == STATE_VAL_INT)
			sqlite3_bind_int64(s, idx, v->i);
		else if (t->cols[i].type == STATE_COL_HASH)
			sqlite3_bind_blob(s, idx, v->s.ptr, (int)v->s.len, SQLITE_STATIC);
		else if (i == packed) {
			/* stored as a put stores it (names.c): one that starts with 0x1e escaped */
			struct strbuf stored = STRBUF_INIT;
			sq_payload_store(&sq->names, v->s, &stored);
			sqlite3_bind_text(s, idx, stored.buf, (int)stored.len, SQLITE_TRANSIENT);
			strbuf_release(&stored);
		} else
			sqlite3_bind_text(s, idx, v->s.ptr ? v->s.ptr : "", (int)v->s.len,
					  SQLITE_STATIC);
	}
	rc = sqlite3_step(s);
	sq_stmt_done(s);
	if (rc != SQLITE_DONE)
		return sq_db_error(sq, rc, err, "could not load a row of table \"%s\" into state store \"%s\"",
				   t->name, st->path);
	return JERR_OK;
}

enum jerr sq_load_finish(struct state *st, struct jerror *err)
{
	(void)st; /* INTEGER PRIMARY KEY: new ids follow the largest one by themselves */
	(void)err;
	return JERR_OK;
}
