/*
 * bigquery_rows.c: BigQuery's answer cells as joey values (int64 timestamps, numbers,
 * REPEATED fields as arrays), the BigQuery cursor (bq_cursor_ops) and the body-alone
 * decoder (warehouse_decode.h). Owns the cursor it is handed to close. Called through
 * bq_cursor_ops (bigquery.c opens the cursor) and by tests and fuzzers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/timeutil.h"
#include "base/xalloc.h"
#include "source/bigquery_internal.h"
#include "source/warehouse_decode.h"

/* ---- values ---- */

/* Cell i of a row: its "v" (a string, null, or an array for REPEATED fields). */
static json_t *cell_v(json_t *cells, size_t i)
{
	return json_object_get(json_array_get(cells, i), "v");
}

/* Integer microseconds since the epoch (useInt64Timestamp) as ms; false if malformed. */
static bool micros_ms(const char *s, int64_t *ms, int64_t *us)
{
	int64_t v;
	if (!decimal_to_int64(s, strlen(s), &v))
		return false;
	*us = v;
	*ms = v >= 0 ? v / 1000 : -((-v + 999) / 1000);
	return true;
}

/* A scalar cell as text: timestamps ISO 8601 UTC with milliseconds, the rest as sent. */
void bq_cell_text(enum bq_type t, const char *s, struct strbuf *sb)
{
	int64_t ms, us;
	if (t == BQ_TIMESTAMP && micros_ms(s, &ms, &us)) {
		time_format_iso(sb, ms);
		return;
	}
	strbuf_addstr(sb, s);
}

/*
 * The high-water mark of a TIMESTAMP: "YYYY-MM-DD HH:MM:SS.ffffff+00", accepted back as a
 * TIMESTAMP; nothing for a FLOAT64's NaN or Infinity (source_since_unordered).
 */
static void bq_since_text(enum bq_type t, const char *s, struct strbuf *sb)
{
	if ((t == BQ_FLOAT || t == BQ_NUMERIC) && source_since_unordered(s, strlen(s)))
		return; /* NaN, Infinity: never a mark */
	int64_t ms, us;
	if (t == BQ_TIMESTAMP && micros_ms(s, &ms, &us) && us >= 0) {
		struct strbuf iso = STRBUF_INIT;
		time_format_iso(&iso, (us / 1000000) * 1000);
		strbuf_add(sb, iso.buf, 10);
		strbuf_addch(sb, ' ');
		strbuf_add(sb, iso.buf + 11, 8);
		strbuf_addf(sb, ".%06" PRId64 "+00", us % 1000000);
		strbuf_release(&iso);
		return;
	}
	strbuf_addstr(sb, s);
}

static bool bq_value(struct bq_cursor *cur, const struct bq_col *col, json_t *v, const struct cfg_property *prop,
		     struct value *out)
{
	*out = VALUE_NULL;
	if (!v || json_is_null(v)) {
		if (prop->is_array && !(cur->w.src->is_query && prop->query)) {
			out->kind = VAL_ARRAY; /* no value at all: an empty list, as the other connectors */
			out->u.arr.items = NULL;
			out->u.arr.n = 0;
		}
		return true;
	}
	if (prop->is_array && !(cur->w.src->is_query && prop->query)) {
		if (!json_is_array(v))
			return false;
		/* [{"v": "a"}, ...] -> ["a", ...] (timestamps as ISO text) */
		json_t *arr = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			json_t *ev = json_object_get(e, "v");
			if (json_is_string(ev)) {
				struct strbuf t = STRBUF_INIT;
				bq_cell_text(col->type, json_string_value(ev), &t);
				json_t *num = NULL;
				if ((col->type == BQ_INT || col->type == BQ_FLOAT || col->type == BQ_NUMERIC) &&
				    !sql_is_text_type(prop->type))
					num = json_loads(t.buf, JSON_DECODE_ANY, NULL); /* 64-bit integers stay exact */
				json_array_append_new(arr, num ? num : json_stringn(t.buf, t.len));
				strbuf_release(&t);
			}
		}
		char *text = json_dumps(arr, JSON_COMPACT);
		bool ok = sql_decode_array(prop, text, strlen(text), &cur->w.arena, out, &cur->w.row.n_invalid);
		free(text);
		json_decref(arr);
		return ok;
	}
	const char *s = json_string_value(v);
	if (!s)
		return false;
	size_t n = strlen(s);
	if (!sql_is_text_type(prop->type)) {
		int64_t ms, us;
		switch (col->type) {
		case BQ_INT:
		case BQ_FLOAT:
		case BQ_NUMERIC:
			return wrows_number(prop->type, s, n, out);
		case BQ_BOOL:
			return sql_value_from_int(prop->type, !strcmp(s, "true"), out);
		case BQ_TIMESTAMP:
			if (prop->type == PROP_DATE && micros_ms(s, &ms, &us)) {
				out->kind = VAL_DATE;
				out->u.i = ms;
				return true;
			}
			break;
		default:
			break;
		}
	}
	if (prop->type == PROP_STRING && col->type != BQ_TIMESTAMP) {
		if (n) {
			out->kind = VAL_STRING;
			out->u.s = (struct slice){ s, n };
		}
		return true;
	}
	struct strbuf t = STRBUF_INIT;
	bq_cell_text(col->type, s, &t);
	bool ok = wrows_text(&cur->w, prop->type, &t, out);
	strbuf_release(&t);
	return ok;
}

/* ---- cursor ---- */

static enum jerr bq_fetch(struct wrows *w, json_t **cells, const char *what, struct jerror *err)
{
	struct bq_cursor *cur = (struct bq_cursor *)w;
	return bq_result_next(cur->conn, &cur->res, cells, what, err);
}

static bool bq_cell_value(struct wrows *w, size_t col, json_t *cell, const struct cfg_property *prop, struct value *v)
{
	struct bq_cursor *cur = (struct bq_cursor *)w;
	return bq_value(cur, &cur->res.cols[col], cell, prop, v);
}

static void bq_cell_since(struct wrows *w, size_t col, const char *s, struct strbuf *sb)
{
	bq_since_text(((struct bq_cursor *)w)->res.cols[col].type, s, sb);
}

static const struct wrows_cells_ops bq_cells = {
	.fetch = bq_fetch,
	.cell = cell_v,
	.value = bq_cell_value,
	.since_text = bq_cell_since,
	.key_not_text = "not a scalar",
	.key_detail = NULL,
};

static enum jerr bq_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	return wrows_next(&((struct bq_cursor *)base)->w, &bq_cells, row, err);
}

static void bq_close(struct source_cursor *base)
{
	struct bq_cursor *cur = (struct bq_cursor *)base;
	wrows_release(&cur->w);
	bq_result_release(&cur->res);
	free(cur);
}

const struct source_cursor_ops bq_cursor_ops = { bq_next, bq_close };

/* ---- decoding a body alone (warehouse_decode.h) ---- */

enum jerr source_bigquery_decode(const char *body, size_t len, const struct warehouse_decode_spec *spec,
				 warehouse_row_fn on_row, void *ctx, struct jerror *err)
{
	struct cfg_source *src = warehouse_decode_source(spec);
	struct bq_cursor *cur = xcalloc(1, sizeof(*cur));
	enum jerr rc;

	wrows_init(&cur->w, &bq_cursor_ops, src, false, spec->int_key, "key", 0);
	json_t *j = json_loadb(body, len, 0, NULL);
	rc = json_is_object(j) ? bq_take_page(&cur->res, j, "source \"decode\"", err)
			       : jerror_set(err, JERR_SOURCE, "source \"decode\": not a JSON object");
	json_decref(j);
	free(cur->res.page_token); /* this body only */
	cur->res.page_token = NULL;
	cur->res.has_total = false;
	rc = wrows_decode_rows(&cur->w, rc, cur->res.n_cols, on_row, ctx, err);
	warehouse_decode_source_free(src);
	return rc;
}
