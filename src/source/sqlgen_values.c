/*
 * sqlgen_values.c: the dialect-independent pieces of reading rows (sqlgen.h "values"):
 * native integers and reals as property values, JSON arrays, integer key text. Values
 * go to arenas the caller hands in; the key error and NULL-key warning every SQL
 * connector's row reader gives. Called by the SQL connectors' row readers.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "source/sqlgen.h"

/* ---- values ---- */

static const int64_t i64_abs_limit = INT64_C(100000000000); /* epoch seconds vs ms */

bool sql_is_text_type(enum prop_type t)
{
	return t == PROP_STRING || t == PROP_EMAIL || t == PROP_URL || t == PROP_PHONE;
}

bool sql_value_from_int(enum prop_type t, int64_t i, struct value *v)
{
	switch (t) {
	case PROP_INTEGER:
		v->kind = VAL_INT;
		v->u.i = i;
		return true;
	case PROP_FLOAT:
		v->kind = VAL_FLOAT;
		v->u.f = (double)i;
		return true;
	case PROP_BOOLEAN:
		if (i != 0 && i != 1)
			return false;
		v->kind = VAL_BOOL;
		v->u.b = i == 1;
		return true;
	case PROP_DATE:
		/* epoch seconds or ms, as time_parse reads the same number as text, and in its range */
		v->u.i = (i <= i64_abs_limit && i >= -i64_abs_limit) ? i * 1000 : i;
		if (!time_in_range(v->u.i))
			return false;
		v->kind = VAL_DATE;
		return true;
	default:
		return false; /* strings: the caller uses the text form */
	}
}

bool sql_value_from_real(enum prop_type t, double f, struct value *v)
{
	switch (t) {
	case PROP_INTEGER:
	case PROP_BOOLEAN:
		/* a whole number in range reads as that integer (a boolean: 0 or 1) */
		if (!(f >= -9.2e18 && f <= 9.2e18) || f != floor(f))
			return false;
		return sql_value_from_int(t, (int64_t)f, v);
	case PROP_FLOAT:
		if (!isfinite(f))
			return false;
		v->kind = VAL_FLOAT;
		v->u.f = f;
		return true;
	case PROP_DATE:
		if (!(f >= -9e15 && f <= 9e15))
			return false;
		v->u.i = (f <= 1e11 && f >= -1e11) ? (int64_t)llround(f * 1000) : (int64_t)f;
		if (!time_in_range(v->u.i))
			return false;
		v->kind = VAL_DATE;
		return true;
	default:
		return false;
	}
}

bool sql_decode_array(const struct cfg_property *prop, const char *text, size_t len,
		      struct arena *a, struct value *out, size_t *n_invalid)
{
	json_error_t jerrbuf;
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &jerrbuf);
	if (!j || !json_is_array(j)) {
		json_decref(j);
		return false;
	}
	size_t n = json_array_size(j), k = 0;
	struct value *items = arena_alloc(a, (n ? n : 1) * sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(j, i);
		struct value v = VALUE_NULL;
		bool ok;
		char buf[32];
		if (json_is_string(e)) {
			ok = value_coerce_text(prop->type, json_string_value(e), json_string_length(e),
					       a, &v);
		} else if (json_is_integer(e)) {
			ok = sql_value_from_int(prop->type, json_integer_value(e), &v);
			if (!ok && sql_is_text_type(prop->type)) {
				int m = snprintf(buf, sizeof(buf), "%" PRId64,
						 (int64_t)json_integer_value(e));
				ok = value_coerce_text(prop->type, buf, (size_t)m, a, &v);
			}
		} else if (json_is_real(e)) {
			ok = sql_value_from_real(prop->type, json_real_value(e), &v);
			if (!ok && sql_is_text_type(prop->type)) {
				int m = snprintf(buf, sizeof(buf), "%.17g", json_real_value(e));
				ok = value_coerce_text(prop->type, buf, (size_t)m, a, &v);
			}
		} else if (json_is_boolean(e)) {
			ok = sql_value_from_int(prop->type, json_is_true(e), &v);
			if (!ok && sql_is_text_type(prop->type))
				ok = value_coerce_text(prop->type, json_is_true(e) ? "true" : "false",
						       json_is_true(e) ? 4 : 5, a, &v);
		} else {
			continue; /* null */
		}
		if (!ok)
			(*n_invalid)++;
		if (v.kind != VAL_NULL)
			items[k++] = v;
	}
	json_decref(j);
	out->kind = VAL_ARRAY;
	out->u.arr.items = items;
	out->u.arr.n = k;
	return true;
}

char *sql_fmt_i64(struct arena *a, int64_t i, size_t *len)
{
	char tmp[24], *e = tmp + sizeof(tmp), *p = e;
	uint64_t u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (i < 0)
		*--p = '-';
	*len = (size_t)(e - p);
	char *out = arena_alloc(a, *len + 1);
	memcpy(out, p, *len);
	out[*len] = '\0';
	return out;
}

/*
 * A plain decimal ("-12.375": at most 15 digits, no exponent) as the double strtod
 * would give, without strtod: the digits as an integer and the power of ten are both
 * exact doubles (< 2^53, <= 10^15), so one division rounds correctly (Clinger's fast
 * path). False for anything else (the caller falls back to strtod).
 */
static bool simple_decimal(const char *s, size_t n, double *out)
{
	static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
					1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
	size_t i = 0, digits = 0, frac = 0;
	bool neg = false, point = false;
	uint64_t m = 0;

	if (n && s[0] == '-')
		neg = true, i++;
	for (; i < n; i++) {
		if (s[i] == '.' && !point) {
			point = true;
			continue;
		}
		if (s[i] < '0' || s[i] > '9' || ++digits > 15)
			return false;
		m = m * 10 + (uint64_t)(s[i] - '0');
		frac += point;
	}
	if (!digits)
		return false;
	double d = (double)m / pow10[frac];
	*out = neg ? -d : d;
	return true;
}

bool sql_int_of_number_text(const char *s, size_t n, int64_t *i)
{
	const char *dot = memchr(s, '.', n);
	if (!dot)
		return decimal_to_int64(s, n, i);
	for (const char *c = dot + 1; c < s + n; c++)
		if (*c != '0')
			return false;
	return dot > s && decimal_to_int64(s, (size_t)(dot - s), i);
}

bool sql_value_from_number_text(enum prop_type t, const char *s, size_t n, struct value *v)
{
	int64_t i;
	double d;
	if (sql_int_of_number_text(s, n, &i))
		return sql_value_from_int(t, i, v);
	if (!simple_decimal(s, n, &d)) {
		char *end;
		d = strtod(s, &end);
		if (end == s || *end)
			return false;
	}
	return sql_value_from_real(t, d, v);
}

bool sql_value_from_text(enum prop_type t, const char *s, size_t n, struct arena *a, struct value *v)
{
	if (t == PROP_STRING) {
		/* no copy: the row lives until the next one */
		if (n) {
			v->kind = VAL_STRING;
			v->u.s = (struct slice){ s, n };
		}
		return true;
	}
	return value_coerce_text(t, s, n, a, v);
}

/* ---- reading rows ---- */

uint64_t sql_null_key_rows(const char *count, size_t n)
{
	int64_t k = 1;
	decimal_to_int64(count, n, &k);
	return (uint64_t)k;
}

void sql_row_invalid(struct source_cursor *cur, struct source_row *r, size_t i, const char *s, size_t n)
{
	r->values[i] = VALUE_NULL;
	r->n_invalid++;
	source_note_invalid(cur, cur->source->properties[i], &r->key, s, n);
}

enum jerr sql_key_not_integer(const struct cfg_source *src, const char *key_column, const char *text,
			      struct jerror *err)
{
	jerror_set(err, JERR_SOURCE_DATA,
		   "source \"%s\": key column \"%s\" holds a non-integer value \"%.100s\"",
		   sql_source_id(src), key_column, text ? text : "");
	jerror_detail(err, "the record key (primary key property) is an integer");
	jerror_hint(err, "clean the column, or make the primary key property a string");
	return JERR_SOURCE_DATA;
}

enum jerr sql_row_key(const struct cfg_source *src, const char *key_column, bool int_key, const char *s,
		      size_t n, bool canonical, struct arena *a, struct rkey *key, struct jerror *err)
{
	key->is_int = int_key;
	if (!int_key) {
		key->i = 0;
		key->text = (struct slice){ s, n };
		return JERR_OK;
	}
	int64_t i;
	if (!decimal_to_int64(s, n, &i))
		return sql_key_not_integer(src, key_column, s, err);
	key->i = i;
	if (canonical)
		key->text = (struct slice){ s, n };
	else
		key->text.ptr = sql_fmt_i64(a, i, &key->text.len);
	return JERR_OK;
}

void sql_warn_null_keys(const struct cfg_source *src, uint64_t n, const char *key_column)
{
	if (n)
		log_warn("source \"%s\": skipped %" PRIu64 " rows with a NULL key column \"%s\"",
			 sql_source_id(src), n, key_column);
}
