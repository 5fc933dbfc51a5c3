/*
 * postgres_rows.c: reading a PostgreSQL source's rows (postgres.c's design note): the
 * cursor (open, next, close), values from the types' text output, and the statement
 * with bound values in single-row mode (COPY is postgres_copy.c). The cursor owns its
 * fields, types, arena and, when the app's connection was streaming, a connection of
 * its own. Called through source_postgres / source_redshift (postgres.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "source/postgres_internal.h"
#include "source/source.h"
#include "source/sqlgen.h"

/* type OIDs (pg_type.dat; stable across versions) */
#define BOOLOID 16
#define INT8OID 20
#define INT2OID 21
#define INT4OID 23
#define OIDOID 26
#define FLOAT4OID 700
#define FLOAT8OID 701
#define NUMERICOID 1700
#define DATEOID 1082
#define TIMESTAMPOID 1114
#define TIMESTAMPTZOID 1184

/* Whether a since value of a column of type t cannot be a mark (source_since_unordered). */
static bool since_unordered(Oid t, const char *s, size_t n)
{
	return (t == DATEOID || t == TIMESTAMPOID || t == TIMESTAMPTZOID || t == FLOAT4OID || t == FLOAT8OID ||
		t == NUMERICOID) &&
	       source_since_unordered(s, n);
}

/* Field idx of the current row as a value of prop's type; false if invalid. */
static bool field_value(struct pg_cursor *cur, int idx, const struct cfg_property *prop,
			struct value *v)
{
	const struct pg_field *f = &cur->fields[idx];
	const char *s = f->s;
	size_t n = f->len;
	Oid t = cur->types[idx];

	*v = VALUE_NULL;
	if (f->null)
		return true;
	if (prop->is_array && !(cur->rs.src->is_query && prop->query))
		return sql_decode_array(prop, s, n, &cur->rs.arena, v, &cur->rs.row.n_invalid);
	if (t == BOOLOID) {
		bool b = s[0] == 't';
		if (!sql_is_text_type(prop->type))
			return sql_value_from_int(prop->type, b, v);
		s = b ? "true" : "false";
		n = strlen(s);
	} else if (!sql_is_text_type(prop->type) &&
		   (t == INT2OID || t == INT4OID || t == INT8OID || t == OIDOID ||
		    t == FLOAT4OID || t == FLOAT8OID || t == NUMERICOID)) {
		return sql_value_from_number_text(prop->type, s, n, v);
	}
	return sql_value_from_text(prop->type, s, n, &cur->rs.arena, v); /* the row lives until the next one */
}

enum jerr pgsrc_result_error(struct pg_cursor *cur, PGresult *res, struct jerror *err)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = res ? PQresultErrorMessage(res) : "";
	snprintf(cur->sqlstate, sizeof(cur->sqlstate), "%s", state ? state : "");
	jerror_set(err, JERR_SOURCE, "source \"%s\": query failed", sql_source_id(cur->rs.src));
	pgsrc_detail(err, NULL, *msg ? msg : PQerrorMessage(cur->conn->pg));
	if (state && !strncmp(state, "42501", 5))
		jerror_hint(err, "grant the app's user SELECT on the table (app \"%s\")",
			    cur->conn->app->id);
	return JERR_SOURCE;
}

/* rc, or the watcher's error when it cancelled the statement (timeout, stop). */
static enum jerr cancelled_error(struct pg_cursor *cur, enum jerr rc, struct jerror *err)
{
	return source_watch_rc(&cur->conn->watch, rc, "source", sql_source_id(cur->rs.src), err);
}

/*
 * Read what is left of the running statement's results, leaving the connection idle.
 * The first error becomes the cursor's unless rc already is one.
 */
enum jerr pgsrc_drain(struct pg_cursor *cur, enum jerr rc, struct jerror *err)
{
	PGresult *res;
	cur->done = true;
	for (;;) {
		source_wait_begin(&cur->conn->watch);
		res = PQgetResult(cur->conn->pg);
		source_wait_end(&cur->conn->watch);
		if (!res)
			break;
		ExecStatusType st = PQresultStatus(res);
		if (!rc && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
		    st != PGRES_SINGLE_TUPLE && st != PGRES_COPY_OUT)
			rc = pgsrc_result_error(cur, res, err);
		PQclear(res);
		if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
			break; /* a COPY cut short by a lost connection: nothing more comes */
	}
	return rc;
}

/* The current row's storage (its fields point into it), freed. */
static void row_release(struct pg_cursor *cur)
{
	PQclear(cur->res);
	cur->res = NULL;
	if (cur->copy_row)
		PQfreemem(cur->copy_row);
	cur->copy_row = NULL;
}

/* The row layout, from the statement's description or its first row: types per column. */
enum jerr pgsrc_set_columns(struct pg_cursor *cur, const PGresult *res, struct jerror *err)
{
	int need = 1 + (int)cur->rs.src->n_properties + (cur->rs.grouped ? 1 : 0) +
		   (cur->rs.since_col ? 1 : 0);
	if (PQnfields(res) != need)
		return jerror_set(err, JERR_SOURCE,
				  "source \"%s\": the query has %d columns, not %d",
				  sql_source_id(cur->rs.src), PQnfields(res), need);
	cur->n_fields = need;
	cur->types = xcalloc((size_t)need, sizeof(Oid));
	cur->fields = xcalloc((size_t)need, sizeof(struct pg_field));
	for (int i = 0; i < need; i++)
		cur->types[i] = PQftype(res, i);
	return JERR_OK;
}

/* The next row of the running statement into cur->fields (*got), or its end. */
static enum jerr fetch(struct pg_cursor *cur, bool *got, struct jerror *err)
{
	PGconn *pg = cur->conn->pg;
	*got = false;
	if (cur->copy)
		return pgsrc_fetch_copy(cur, got, err);
	for (;;) {
		source_wait_begin(&cur->conn->watch);
		PGresult *res = PQgetResult(pg);
		source_wait_end(&cur->conn->watch);
		if (!res) {
			cur->done = true;
			return JERR_OK;
		}
		switch (PQresultStatus(res)) {
		case PGRES_SINGLE_TUPLE:
			if (!cur->types) {
				enum jerr rc = pgsrc_set_columns(cur, res, err);
				if (rc) {
					PQclear(res);
					return pgsrc_drain(cur, rc, err);
				}
			}
			cur->res = res;
			for (int i = 0; i < cur->n_fields; i++)
				cur->fields[i] = (struct pg_field){
					PQgetvalue(res, 0, i), (size_t)PQgetlength(res, 0, i),
					PQgetisnull(res, 0, i) != 0 };
			*got = true;
			return JERR_OK;
		case PGRES_TUPLES_OK:
			if (PQntuples(res) > 0) {
				/* rows not in single-row mode (it could not be set): never dropped
				 * as if the result had ended, which would delete their records */
				jerror_set(err, JERR_SOURCE, "source \"%s\": the rows came all at once, not one by one",
					   sql_source_id(cur->rs.src));
				jerror_detail(err, "%d rows in one result: single-row mode was not set", PQntuples(res));
				jerror_hint(err, "run again; nothing was changed for these records");
				PQclear(res);
				return pgsrc_drain(cur, JERR_SOURCE, err);
			}
			PQclear(res); /* end of rows; NULL follows */
			continue;
		default: {
			enum jerr rc = pgsrc_result_error(cur, res, err);
			PQclear(res);
			return pgsrc_drain(cur, rc, err);
		}
		}
	}
}

static enum jerr pg_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	struct pg_cursor *cur = (struct pg_cursor *)base;
	struct source_row *r = &cur->rs.row;
	enum jerr rc;

	*row = NULL;
	for (;;) {
		if (cur->pending) {
			cur->pending = false;
		} else {
			bool got;
			row_release(cur);
			if (cur->done)
				return JERR_OK;
			if ((rc = fetch(cur, &got, err)))
				return cancelled_error(cur, rc, err);
			if (!got)
				return JERR_OK;
		}
		const struct pg_field *f = cur->fields;
		arena_reset(&cur->rs.arena);
		if (f[0].null) {
			cur->rs.null_keys += cur->rs.grouped ? sql_null_key_rows(f[cur->rs.count_col].s, f[cur->rs.count_col].len) : 1;
			continue;
		}
		r->n_invalid = 0;
		/* an integer column's text is canonical already */
		bool canonical = cur->types[0] == INT8OID || cur->types[0] == INT4OID || cur->types[0] == INT2OID;
		if ((rc = sql_row_key(cur->rs.src, cur->rs.key_column, cur->rs.int_key, f[0].s, f[0].len, canonical,
				      &cur->rs.arena, &r->key, err)))
			return rc;
		for (size_t i = 0; i < r->n_values; i++) {
			if (!field_value(cur, (int)i + 1, cur->rs.src->properties[i], &r->values[i]))
				sql_row_invalid(&cur->base, r, i, f[i + 1].s, f[i + 1].len);
		}
		r->since = (struct slice){ "", 0 };
		if (cur->rs.since_col && !f[cur->rs.since_col].null &&
		    !since_unordered(cur->types[cur->rs.since_col], f[cur->rs.since_col].s, f[cur->rs.since_col].len))
			r->since = (struct slice){ f[cur->rs.since_col].s, f[cur->rs.since_col].len };
		*row = r;
		return JERR_OK;
	}
}

static void pg_close(struct source_cursor *base)
{
	struct pg_cursor *cur = (struct pg_cursor *)base;
	sql_warn_null_keys(cur->rs.src, cur->rs.null_keys, cur->rs.key_column);
	row_release(cur);
	if (!cur->done) {
		/* stop the server sending the rest, then drain */
		PGcancel *cancel = PQgetCancel(cur->conn->pg);
		char buf[256], *row;
		if (cancel) {
			PQcancel(cancel, buf, sizeof(buf));
			PQfreeCancel(cancel);
		}
		source_wait_begin(&cur->conn->watch);
		if (cur->copy)
			while (PQgetCopyData(cur->conn->pg, &row, 0) > 0)
				PQfreemem(row);
		source_wait_end(&cur->conn->watch);
		(void)pgsrc_drain(cur, JERR_SOURCE, NULL); /* the cancel's error is expected */
	}
	if (cur->in_tx)
		pgsrc_rollback(cur->conn);
	if (cur->conn)
		cur->conn->streaming = false;
	pgsrc_disconnect(cur->own);
	sql_cursor_state_release(&cur->rs);
	free(cur->fields);
	free(cur->types);
	free(cur);
}

static const struct source_cursor_ops pg_cursor_ops = { pg_next, pg_close };

enum jerr pgsrc_send_failed(struct pg_cursor *cur, struct jerror *err)
{
	jerror_set(err, JERR_SOURCE, "source \"%s\": query failed", sql_source_id(cur->rs.src));
	pgsrc_detail(err, NULL, PQerrorMessage(cur->conn->pg));
	return JERR_SOURCE;
}

/* A statement with bound values: sent with them, rows in single-row mode. */
static enum jerr start_bound(struct pg_cursor *cur, const struct sql_plan *p, struct jerror *err)
{
	PGconn *pg = cur->conn->pg;
	const char **values = xcalloc(p->n_binds, sizeof(*values));
	for (size_t i = 0; i < p->n_binds; i++)
		values[i] = p->binds[i].s; /* the text form; the server infers the type */
	pgsrc_guard(cur->conn, p->sql.buf);
	int sent = PQsendQueryParams(pg, p->sql.buf, (int)p->n_binds, NULL, values, NULL, NULL, 0);
	free(values);
	if (!sent)
		return pgsrc_send_failed(cur, err);
	cur->conn->streaming = true;
	cur->done = false;
	if (!PQsetSingleRowMode(pg))
		log_warn("source \"%s\": single-row mode unavailable", sql_source_id(cur->rs.src));
	return JERR_OK;
}

enum jerr pgsrc_open_cursor(void *conn, const struct cfg_source *src,
				const struct source_read *read, struct source_cursor **out,
				struct jerror *err)
{
	struct pg_conn *c = conn, *own = NULL;
	struct sql_plan p;
	struct pg_cursor *cur = NULL;
	enum jerr rc;
	bool got = false;

	*out = NULL;
	sql_plan_init(&p);
	if (c->streaming) {
		void *h;
		if ((rc = pgsrc_connect(c->app, c->config_dir, &h, err)))
			goto out;
		c = own = h;
	}
	rc = sql_plan_build(c->d, c, src, read, &p, err);
	if (rc)
		goto out;

	cur = xcalloc(1, sizeof(*cur));
	cur->base.ops = &pg_cursor_ops;
	cur->base.source = src;
	strbuf_init(&cur->base.prev_text, 0);
	cur->conn = c;
	cur->own = own;
	own = NULL;
	cur->done = true; /* nothing running yet */
	sql_cursor_state_init(&cur->rs, src, &p);

	/* the first row (or the error) now, so open_cursor reports a broken query */
	if ((rc = pgsrc_begin(c, sql_source_id(src), err)))
		goto out;
	cur->in_tx = true;
	/* Redshift has no COPY TO STDOUT: every statement in single-row mode */
	rc = p.n_binds || c->redshift ? start_bound(cur, &p, err) : pgsrc_start_copy(cur, &p, err);
	if (!rc)
		rc = fetch(cur, &got, err);
	rc = cancelled_error(cur, rc, err);
	if (rc) {
		/* a missing table/column: say which, with did-you-mean */
		struct jerror cerr = JERROR_INIT;
		bool missing = !strcmp(cur->sqlstate, "42P01") || !strcmp(cur->sqlstate, "42703");
		if (missing && err && cur->done && cur->in_tx) {
			pgsrc_rollback(c); /* the failed transaction first: pgsrc_check starts its own */
			cur->in_tx = false;
		}
		if (missing && err && cur->done && pgsrc_check(c, src, &cerr) != JERR_OK) {
			jerror_release(err);
			*err = cerr;
			rc = err->code;
		} else {
			jerror_release(&cerr);
		}
		goto out;
	}
	cur->pending = got;
	*out = &cur->base;
	cur = NULL;
out:
	if (cur) {
		strbuf_release(&cur->base.prev_text);
		pg_close(&cur->base);
	}
	pgsrc_disconnect(own);
	sql_plan_release(&p);
	return rc;
}

