/* value.c: JSON rendering and ordering of typed property values. */
#include "base/value.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/timeutil.h"

/* Shortest %.*g text that reads back as exactly f (f finite). */
/* Decimal digits of v, no printf (this runs for every number of every record). */
static void add_u64(struct strbuf *out, uint64_t v)
{
	char b[24];
	size_t i = sizeof(b);
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	strbuf_add(out, b + i, sizeof(b) - i);
}

static void add_i64(struct strbuf *out, int64_t v)
{
	if (v < 0) {
		strbuf_addch(out, '-');
		add_u64(out, (uint64_t)0 - (uint64_t)v);
	} else {
		add_u64(out, (uint64_t)v);
	}
}

static void add_double(struct strbuf *out, double f)
{
	char buf[40];
	static const double pow10[] = { 1, 10, 100, 1e3, 1e4, 1e5, 1e6 };

	/*
	 * Fast path for the usual money/score values: f has at most 6 decimals and
	 * |f| < 2^53/1e6. r / 10^k is correctly rounded, so when it equals f the k-digit
	 * decimal is exactly what strtod maps back to f, as the slow loop below would find.
	 */
	if (fabs(f) < 9e9 && f != floor(f)) {
		for (int k = 1; k <= 6; k++) {
			double r = round(f * pow10[k]);
			if (r / pow10[k] != f)
				continue;
			int64_t ri = (int64_t)r;
			uint64_t a = ri < 0 ? (uint64_t)0 - (uint64_t)ri : (uint64_t)ri;
			uint64_t ip = a / (uint64_t)pow10[k], fp = a % (uint64_t)pow10[k];
			char frac[8];
			int len = k;
			for (int j = k - 1; j >= 0; j--) {
				frac[j] = (char)('0' + fp % 10);
				fp /= 10;
			}
			while (len > 0 && frac[len - 1] == '0')
				len--;
			if (f < 0)
				strbuf_addch(out, '-');
			add_u64(out, ip);
			strbuf_addch(out, '.');
			strbuf_add(out, frac, (size_t)len);
			return;
		}
	}

	if (f == floor(f) && fabs(f) < 1e17) {
		/* integral: plain digits ("3", not "3.0" or "1e+01") */
		add_i64(out, (int64_t)f);
		return;
	}
	/*
	 * The shortest form of at most 15 significant digits: a sum such as
	 * 99.99 + 0.5 + 15 prints as 115.49, not 115.48999999999999 (binary noise
	 * Braze and people should not see, and which would flap between engines).
	 */
	for (int prec = 1; prec <= 15; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, f);
		if (strtod(buf, NULL) == f)
			break;
	}
	double back = strtod(buf, NULL);
	if (!isfinite(back)) {
		snprintf(buf, sizeof(buf), "%.17g", f); /* rounding up past DBL_MAX */
	} else if (back != f && back == floor(back) && fabs(back) < 1e17) {
		/* rounded to a whole number (1e15 + 0.1 -> "1e+15"): the same digits as that
		 * number itself, or one value would have two texts and a changed hash */
		add_i64(out, (int64_t)back);
		return;
	}
	strbuf_addstr(out, buf);
}

void value_to_json(struct strbuf *out, const struct value *v)
{
	switch (v->kind) {
	case VAL_STRING:
		strbuf_add_json_string(out, v->u.s.ptr, v->u.s.len);
		return;
	case VAL_INT:
		add_i64(out, v->u.i);
		return;
	case VAL_FLOAT:
		if (!isfinite(v->u.f))
			strbuf_addstr(out, "null");
		else
			add_double(out, v->u.f);
		return;
	case VAL_BOOL:
		strbuf_addstr(out, v->u.b ? "true" : "false");
		return;
	case VAL_DATE:
		strbuf_addch(out, '"');
		time_format_iso(out, v->u.i);
		strbuf_addch(out, '"');
		return;
	case VAL_ARRAY:
		strbuf_addch(out, '[');
		for (size_t i = 0; i < v->u.arr.n; i++) {
			if (i)
				strbuf_addch(out, ',');
			value_to_json(out, &v->u.arr.items[i]);
		}
		strbuf_addch(out, ']');
		return;
	case VAL_NULL:
	default:
		strbuf_addstr(out, "null");
		return;
	}
}

static int cmp_i64(int64_t a, int64_t b)
{
	return (a > b) - (a < b);
}

/* int vs double without losing precision for large integers. */
static int cmp_int_double(int64_t a, double b)
{
	if (isnan(b))
		return 1; /* NaN sorts first among numbers */
	if (b >= 9223372036854775808.0)
		return -1;
	if (b < -9223372036854775808.0)
		return 1;
	double fb = floor(b);
	int64_t ib = (int64_t)fb;
	if (a != ib)
		return a < ib ? -1 : 1;
	return fb < b ? -1 : 0;
}

static int cmp_double(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(b) - isnan(a);
	return (a > b) - (a < b);
}

static bool is_number(enum value_kind k)
{
	return k == VAL_INT || k == VAL_FLOAT;
}

int value_compare(const struct value *a, const struct value *b)
{
	if (is_number(a->kind) && is_number(b->kind)) {
		if (a->kind == VAL_INT && b->kind == VAL_INT)
			return cmp_i64(a->u.i, b->u.i);
		if (a->kind == VAL_FLOAT && b->kind == VAL_FLOAT)
			return cmp_double(a->u.f, b->u.f);
		if (a->kind == VAL_INT)
			return cmp_int_double(a->u.i, b->u.f);
		return -cmp_int_double(b->u.i, a->u.f);
	}
	if (a->kind != b->kind) {
		/* different kinds: NULL first, then by kind (numbers share one rank) */
		int ka = a->kind == VAL_FLOAT ? VAL_INT : (int)a->kind;
		int kb = b->kind == VAL_FLOAT ? VAL_INT : (int)b->kind;
		return (ka > kb) - (ka < kb);
	}
	switch (a->kind) {
	case VAL_STRING:
		return slice_cmp(a->u.s, b->u.s);
	case VAL_BOOL:
		return (int)a->u.b - (int)b->u.b;
	case VAL_DATE:
		return cmp_i64(a->u.i, b->u.i);
	case VAL_ARRAY:
		for (size_t i = 0; i < a->u.arr.n && i < b->u.arr.n; i++) {
			int c = value_compare(&a->u.arr.items[i], &b->u.arr.items[i]);
			if (c)
				return c;
		}
		return (a->u.arr.n > b->u.arr.n) - (a->u.arr.n < b->u.arr.n);
	case VAL_NULL:
	default:
		return 0;
	}
}
