/*
 * snowflake_rows.c: Snowflake's answer cells as joey values (dates, timestamps, times,
 * numbers, VARIANT/ARRAY text), the Snowflake cursor (sf_cursor_ops) and the
 * body-alone decoder (warehouse_decode.h). Owns the cursor it is handed to close.
 * Called through sf_cursor_ops (snowflake.c opens the cursor) and by tests and fuzzers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/timeutil.h"
#include "base/xalloc.h"
#include "source/snowflake_internal.h"
#include "source/warehouse_decode.h"

/* ---- values ---- */

/* Dates and timestamps beyond year 9999 (either way) are not values: the millisecond
 * arithmetic would overflow (the fuzzer found "15899999990559194" seconds). */
#define SF_MAX_SECONDS INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define SF_MAX_DAYS INT64_C(2932896)         /* 9999-12-31 */

/* "seconds[.fraction]" (possibly negative) as epoch milliseconds, truncated. */
static bool sf_seconds_ms(const char *s, int64_t *ms)
{
	const char *dot = strchr(s, '.');
	size_t n = dot ? (size_t)(dot - s) : strcspn(s, " ");
	int64_t sec;
	if (!decimal_to_int64(s, n, &sec) || sec > SF_MAX_SECONDS || sec < -SF_MAX_SECONDS)
		return false;
	int64_t frac = 0;
	int digits = 0;
	if (dot)
		for (const char *p = dot + 1; *p >= '0' && *p <= '9'; p++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0'), digits++;
	while (digits < 3)
		frac *= 10, digits++;
	bool neg = s[0] == '-';
	*ms = sec * 1000 + (neg ? -frac : frac);
	return true;
}

/* "YYYY-MM-DD" of a day number. */
static void fmt_day(struct strbuf *sb, int64_t days)
{
	struct strbuf iso = STRBUF_INIT;
	time_format_iso(&iso, days * 86400000);
	strbuf_add(sb, iso.buf, 10 < iso.len ? 10 : iso.len);
	strbuf_release(&iso);
}

/*
 * A cell as text a person (or a string property) reads: dates YYYY-MM-DD, timestamps
 * ISO 8601 in UTC, booleans true/false, numbers and text as sent. Appends to sb.
 */
static void sf_cell_text(const struct sf_col *col, const char *s, struct strbuf *sb)
{
	int64_t v, ms;
	switch (col->type) {
	case SF_DATE:
		if (decimal_to_int64(s, strlen(s), &v) && v <= SF_MAX_DAYS && v >= -SF_MAX_DAYS) {
			fmt_day(sb, v);
			return;
		}
		break;
	case SF_TS_NTZ:
	case SF_TS_LTZ:
	case SF_TS_TZ:
		if (sf_seconds_ms(s, &ms)) {
			time_format_iso(sb, ms);
			return;
		}
		break;
	case SF_TIME:
		if (sf_seconds_ms(s, &ms)) {
			int64_t t = ms / 1000;
			strbuf_addf(sb, "%02" PRId64 ":%02" PRId64 ":%02" PRId64, t / 3600, t / 60 % 60, t % 60);
			return;
		}
		break;
	default:
		break;
	}
	strbuf_addstr(sb, s);
}

/*
 * The high-water mark text of a since cell: comparable as text or number
 * (source_since_compare) and accepted back as a TEXT bind against the column:
 * dates YYYY-MM-DD, timestamps YYYY-MM-DD HH:MM:SS.fffffffff (UTC), nothing for a
 * number's inf or NaN (source_since_unordered), else as sent.
 */
static void sf_since_text(const struct sf_col *col, const char *s, struct strbuf *sb)
{
	if ((col->type == SF_REAL || col->type == SF_FIXED) && source_since_unordered(s, strlen(s)))
		return; /* inf, NaN: never a mark */
	if (col->type == SF_TS_NTZ || col->type == SF_TS_LTZ || col->type == SF_TS_TZ) {
		const char *dot = strchr(s, '.');
		int64_t sec;
		if (decimal_to_int64(s, dot ? (size_t)(dot - s) : strcspn(s, " "), &sec) && s[0] != '-' &&
		    sec <= SF_MAX_SECONDS) {
			struct strbuf iso = STRBUF_INIT;
			time_format_iso(&iso, sec * 1000);
			strbuf_add(sb, iso.buf, 10);
			strbuf_addch(sb, ' ');
			strbuf_add(sb, iso.buf + 11, 8);
			strbuf_addch(sb, '.');
			size_t k = 0;
			for (const char *p = dot ? dot + 1 : ""; *p >= '0' && *p <= '9' && k < 9; p++, k++)
				strbuf_addch(sb, *p);
			for (; k < 9; k++)
				strbuf_addch(sb, '0');
			strbuf_release(&iso);
			return;
		}
	}
	sf_cell_text(col, s, sb);
}

/* A cell as a value of prop's type; false if it does not fit. */
static bool sf_value(struct sf_cursor *cur, const struct sf_col *col, json_t *cell, const struct cfg_property *prop,
		     struct value *v)
{
	char num[64];
	const char *s;
	*v = VALUE_NULL;
	if (json_is_null(cell) || !cell)
		return true;
	if (json_is_string(cell)) {
		s = json_string_value(cell);
	} else if (json_is_integer(cell)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(cell));
		s = num;
	} else if (json_is_real(cell)) {
		snprintf(num, sizeof(num), "%.17g", json_real_value(cell));
		s = num;
	} else if (json_is_boolean(cell)) {
		s = json_is_true(cell) ? "true" : "false";
	} else {
		return false;
	}
	size_t n = strlen(s);
	if (prop->is_array && !(cur->w.src->is_query && prop->query)) {
		if (col->type == SF_ARRAY || col->type == SF_VARIANT)
			return sql_decode_array(prop, s, n, &cur->w.arena, v, &cur->w.row.n_invalid);
		return false;
	}
	if (!sql_is_text_type(prop->type)) {
		int64_t i, ms;
		switch (col->type) {
		case SF_FIXED:
		case SF_REAL:
			return wrows_number(prop->type, s, n, v);
		case SF_BOOLEAN:
			return sql_value_from_int(prop->type, !strcmp(s, "true") || !strcmp(s, "1"), v);
		case SF_DATE:
			if (prop->type == PROP_DATE && decimal_to_int64(s, n, &i) && i <= SF_MAX_DAYS && i >= -SF_MAX_DAYS) {
				v->kind = VAL_DATE;
				v->u.i = i * 86400000;
				return true;
			}
			break;
		case SF_TS_NTZ:
		case SF_TS_LTZ:
		case SF_TS_TZ:
			if (prop->type == PROP_DATE && sf_seconds_ms(s, &ms)) {
				v->kind = VAL_DATE;
				v->u.i = ms;
				return true;
			}
			break;
		default:
			break;
		}
	}
	/* borrowed from the answer only when s is the answer's own text, not num's stack copy
	 * of a JSON number (which wrows_text copies below) */
	if (prop->type == PROP_STRING && s != num && (col->type == SF_TEXT || col->type == SF_FIXED || col->type == SF_REAL ||
					  col->type == SF_BOOLEAN || col->type == SF_VARIANT || col->type == SF_OTHER)) {
		if (n) {
			v->kind = VAL_STRING;
			v->u.s = (struct slice){ s, n }; /* lives as long as the partition: past next() */
		}
		return true;
	}
	struct strbuf t = STRBUF_INIT;
	sf_cell_text(col, s, &t);
	bool ok = wrows_text(&cur->w, prop->type, &t, v);
	strbuf_release(&t);
	return ok;
}

/* ---- cursor ---- */

static enum jerr sf_fetch(struct wrows *w, json_t **cells, const char *what, struct jerror *err)
{
	struct sf_cursor *cur = (struct sf_cursor *)w;
	return sf_result_next(cur->conn, &cur->res, cells, what, err);
}

static json_t *sf_cell(json_t *cells, size_t i)
{
	return json_array_get(cells, i);
}

static bool sf_cell_value(struct wrows *w, size_t col, json_t *cell, const struct cfg_property *prop, struct value *v)
{
	struct sf_cursor *cur = (struct sf_cursor *)w;
	return sf_value(cur, &cur->res.cols[col], cell, prop, v);
}

static void sf_cell_since(struct wrows *w, size_t col, const char *s, struct strbuf *sb)
{
	sf_since_text(&((struct sf_cursor *)w)->res.cols[col], s, sb);
}

static const struct wrows_cells_ops sf_cells = {
	.fetch = sf_fetch,
	.cell = sf_cell,
	.value = sf_cell_value,
	.since_text = sf_cell_since,
	.key_not_text = "not text in Snowflake's answer",
	.key_detail = "the record key (primary key property) is an integer",
};

static enum jerr sf_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	return wrows_next(&((struct sf_cursor *)base)->w, &sf_cells, row, err);
}

static void sf_close(struct source_cursor *base)
{
	struct sf_cursor *cur = (struct sf_cursor *)base;
	wrows_release(&cur->w);
	sf_result_release(&cur->res);
	free(cur);
}

const struct source_cursor_ops sf_cursor_ops = { sf_next, sf_close };

/* ---- decoding a body alone (warehouse_decode.h) ---- */

enum jerr source_snowflake_decode(const char *body, size_t len, const struct warehouse_decode_spec *spec,
				  warehouse_row_fn on_row, void *ctx, struct jerror *err)
{
	struct cfg_source *src = warehouse_decode_source(spec);
	struct sf_cursor *cur = xcalloc(1, sizeof(*cur));
	struct strbuf b = STRBUF_INIT;
	enum jerr rc;

	strbuf_add(&b, body, len);
	wrows_init(&cur->w, &sf_cursor_ops, src, false, spec->int_key, "key", 0);
	rc = sf_result_take(&cur->res, &b, "source \"decode\"", err);
	cur->res.n_parts = 1; /* this body only */
	cur->res.has_total = false;
	rc = wrows_decode_rows(&cur->w, rc, cur->res.n_cols, on_row, ctx, err);
	strbuf_release(&b);
	warehouse_decode_source_free(src);
	return rc;
}
