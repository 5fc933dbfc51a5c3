/*
 * wrows.c: the rows of a warehouse answer (Snowflake, BigQuery) as joey keys and
 * values, the part both connectors read alike (wrows.h); and the synthetic source of
 * the body-alone decoders (warehouse_decode.h). Owns nothing beyond a cursor's arena
 * and value array; called by snowflake_rows.c and bigquery_rows.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "source/sqlgen.h"
#include "source/warehouse_decode.h"
#include "source/wrows.h"

void wrows_init(struct wrows *w, const struct source_cursor_ops *ops, const struct cfg_source *src, bool grouped,
		bool int_key, const char *key_column, int since_col)
{
	w->base.ops = ops;
	w->base.source = src;
	strbuf_init(&w->base.prev_text, 0);
	w->src = src;
	w->grouped = grouped;
	w->int_key = int_key;
	w->key_column = key_column;
	w->count_col = (int)src->n_properties + 1;
	w->since_col = since_col;
	arena_init(&w->arena);
	w->row.n_values = src->n_properties;
	w->row.values = xcalloc(src->n_properties ? src->n_properties : 1, sizeof(struct value));
}

void wrows_release(struct wrows *w)
{
	if (w->null_keys)
		log_warn("source \"%s\": skipped %" PRIu64 " rows with a NULL key column \"%s\"", sql_source_id(w->src),
			 w->null_keys, w->key_column);
	arena_release(&w->arena);
	free(w->row.values);
}

/* A statement's answer has n_cols columns: JERR_SOURCE unless the plan expects that many. */
static enum jerr wrows_check_width(const struct wrows *w, size_t n_cols, struct jerror *err)
{
	size_t need = 1 + w->src->n_properties + (w->grouped ? 1 : 0) + (w->since_col ? 1 : 0);
	if (n_cols != need)
		return jerror_set(err, JERR_SOURCE, "source \"%s\": the query has %zu columns, not %zu",
				  sql_source_id(w->src), n_cols, need);
	return JERR_OK;
}

enum jerr wrows_opened(struct wrows *w, enum jerr rc, size_t n_cols, struct source_cursor **out,
		       struct jerror *err)
{
	if (!rc)
		rc = wrows_check_width(w, n_cols, err);
	if (rc) {
		strbuf_release(&w->base.prev_text);
		w->base.ops->close(&w->base);
		return rc;
	}
	*out = &w->base;
	return JERR_OK;
}

/* A row with a NULL key: counted (count_text: the grouped row's count, or NULL). */
static void wrows_null_key(struct wrows *w, const char *count_text)
{
	int64_t nk = 1;
	if (w->grouped && count_text)
		decimal_to_int64(count_text, strlen(count_text), &nk);
	w->null_keys += (uint64_t)nk;
}

/*
 * The row's key from ks (borrowed; lives as long as the answer page): resets the row's
 * invalid count, parses an integer key. JERR_SOURCE_DATA for a non-integer one, with
 * detail (may be NULL) as the error's detail.
 */
static enum jerr wrows_key(struct wrows *w, const char *ks, const char *detail, struct jerror *err)
{
	struct source_row *r = &w->row;
	r->n_invalid = 0;
	r->key.is_int = w->int_key;
	r->key.i = 0;
	r->key.text = (struct slice){ ks, strlen(ks) };
	if (w->int_key) {
		int64_t i;
		if (!decimal_to_int64(ks, strlen(ks), &i)) {
			jerror_set(err, JERR_SOURCE_DATA, "source \"%s\": key column \"%s\" holds a non-integer value \"%.100s\"",
				   sql_source_id(w->src), w->key_column, ks);
			if (detail)
				jerror_detail(err, "%s", detail);
			jerror_hint(err, "clean the column, or make the primary key property a string");
			return JERR_SOURCE_DATA;
		}
		r->key.i = i;
		r->key.text.ptr = sql_fmt_i64(&w->arena, i, &r->key.text.len);
	}
	return JERR_OK;
}

/* Value i of the row did not fit its property: NULL, counted and reported with raw. */
static void wrows_invalid(struct wrows *w, size_t i, const char *raw)
{
	w->row.values[i] = VALUE_NULL;
	w->row.n_invalid++;
	source_note_invalid(&w->base, w->src->properties[i], &w->row.key, raw, strlen(raw));
}

/* The row's high-water mark: a copy of text (NULL: none) in the row's arena. */
static void wrows_since(struct wrows *w, const char *text, size_t len)
{
	w->row.since = (struct slice){ "", 0 };
	if (text) {
		w->row.since.ptr = arena_strndup(&w->arena, text, len);
		w->row.since.len = len;
	}
}

enum jerr wrows_next(struct wrows *w, const struct wrows_cells_ops *ops, struct source_row **row,
		     struct jerror *err)
{
	struct source_row *r = &w->row;
	struct strbuf what = STRBUF_INIT;
	enum jerr rc = JERR_OK;

	*row = NULL;
	strbuf_addf(&what, "source \"%s\"", sql_source_id(w->src));
	for (;;) {
		json_t *cells;
		if ((rc = ops->fetch(w, &cells, what.buf, err)) || !cells)
			break;
		arena_reset(&w->arena);
		json_t *k = ops->cell(cells, 0);
		if (!k || json_is_null(k)) {
			wrows_null_key(w, json_string_value(ops->cell(cells, (size_t)w->count_col)));
			continue;
		}
		const char *ks = json_string_value(k);
		if (!ks) {
			rc = jerror_set(err, JERR_SOURCE_DATA, "source \"%s\": key column \"%s\" is %s", sql_source_id(w->src),
					w->key_column, ops->key_not_text);
			break;
		}
		if ((rc = wrows_key(w, ks, ops->key_detail, err)))
			break;
		for (size_t i = 0; i < r->n_values; i++) {
			json_t *cell = ops->cell(cells, i + 1);
			if (!ops->value(w, i + 1, cell, w->src->properties[i], &r->values[i]))
				wrows_invalid(w, i, json_string_value(cell) ? json_string_value(cell) : "?");
		}
		const char *ss = w->since_col ? json_string_value(ops->cell(cells, (size_t)w->since_col)) : NULL;
		struct strbuf t = STRBUF_INIT;
		if (ss)
			ops->since_text(w, (size_t)w->since_col, ss, &t);
		wrows_since(w, ss ? t.buf : NULL, t.len);
		strbuf_release(&t);
		*row = r;
		break;
	}
	strbuf_release(&what);
	return rc;
}

enum jerr wrows_decode_rows(struct wrows *w, enum jerr rc, size_t n_cols, warehouse_row_fn on_row, void *ctx,
			    struct jerror *err)
{
	struct source_row *row;
	if (!rc && n_cols != w->src->n_properties + 1)
		rc = jerror_set(err, JERR_SOURCE, "source \"decode\": %zu columns, not %zu", n_cols,
				w->src->n_properties + 1);
	while (!rc && !(rc = w->base.ops->next(&w->base, &row, err)) && row)
		on_row(ctx, row);
	strbuf_release(&w->base.prev_text);
	w->base.ops->close(&w->base);
	return rc;
}

bool wrows_number(enum prop_type t, const char *s, size_t n, struct value *v)
{
	int64_t i;
	if (sql_int_of_number_text(s, n, &i)) /* "9007199254740993.00" too: a double would round it */
		return sql_value_from_int(t, i, v);
	char *end;
	double d = strtod(s, &end);
	if (end == s || *end)
		return false;
	return sql_value_from_real(t, d, v);
}

bool wrows_text(struct wrows *w, enum prop_type t, const struct strbuf *text, struct value *v)
{
	char *copy = arena_strndup(&w->arena, text->buf, text->len);
	return value_coerce_text(t, copy, text->len, &w->arena, v);
}

/* ---- the synthetic source of the body-alone decoders (warehouse_decode.h) ---- */

struct cfg_source *warehouse_decode_source(const struct warehouse_decode_spec *spec)
{
	struct cfg_source *src = xcalloc(1, sizeof(*src));
	src->id = "decode";
	src->mapping_column = "key";
	src->n_properties = spec->n;
	src->properties = xcalloc(spec->n ? spec->n : 1, sizeof(*src->properties));
	for (size_t i = 0; i < spec->n; i++) {
		struct cfg_property *p = xcalloc(1, sizeof(*p));
		char id[24];
		snprintf(id, sizeof(id), "p%zu", i);
		p->id = xstrdup(id);
		p->type = spec->types[i];
		p->is_array = spec->arrays && spec->arrays[i];
		p->source = src;
		src->properties[i] = p;
	}
	return src;
}

void warehouse_decode_source_free(struct cfg_source *src)
{
	for (size_t i = 0; src && i < src->n_properties; i++) {
		free((char *)src->properties[i]->id);
		free(src->properties[i]);
	}
	if (src)
		free(src->properties);
	free(src);
}

/* ---- the UI's previews (wrows.h) ---- */

size_t wrows_sample_limit(size_t limit)
{
	return limit > SOURCE_SAMPLE_MAX_ROWS ? (size_t)SOURCE_SAMPLE_MAX_ROWS : limit;
}

enum jerr wrows_sample_refused(enum jerr rc, const char *app_id, struct jerror *err)
{
	static const char tail[] = ": query failed";
	size_t n = sizeof(tail) - 1;
	if (rc != JERR_SOURCE || !err || err->msg.len < n || strcmp(err->msg.buf + err->msg.len - n, tail))
		return rc;
	/* the database refused it: say so as the other connectors do, its words in the detail */
	strbuf_reset(&err->msg);
	strbuf_addf(&err->msg, "app \"%s\": the query cannot be read", app_id);
	if (!err->hint.len)
		jerror_hint(err, SQL_SAMPLE_QUERY_HINT);
	return rc;
}

enum jerr wrows_sample_table(void *conn, wrows_sample_list_fn list, wrows_sample_run_fn run, const char *app_id,
			     const struct sql_dialect *d, const char *table, size_t limit, struct source_sample *out,
			     struct jerror *err)
{
	struct strbuf what = STRBUF_INIT, sql = STRBUF_INIT;
	enum jerr rc;

	strbuf_addf(&what, "app \"%s\"", app_id);
	rc = list(conn, out, what.buf, err);
	if (rc || !table || (rc = sql_sample_table_known(app_id, table, out->tables, out->n_tables, err))) {
		strbuf_release(&what);
		return rc;
	}
	sql_sample_table_sql(&sql, d, table, limit);
	strbuf_addf(&what, ": table \"%s\"", table);
	rc = run(conn, sql.buf, false, wrows_sample_limit(limit), out, what.buf, err);
	strbuf_release(&sql);
	strbuf_release(&what);
	return rc;
}

enum jerr wrows_sample_query(void *conn, wrows_sample_run_fn run, const char *app_id, const char *query,
			     size_t limit, struct source_sample *out, struct jerror *err)
{
	struct strbuf what = STRBUF_INIT, sql = STRBUF_INIT;
	enum jerr rc;

	strbuf_addf(&what, "app \"%s\"", app_id);
	sql_sample_query_sql(&sql, query, wrows_sample_limit(limit));
	rc = run(conn, sql.buf, true, wrows_sample_limit(limit), out, what.buf, err);
	strbuf_release(&sql);
	strbuf_release(&what);
	return rc;
}
