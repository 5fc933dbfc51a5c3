/* group.c: evaluation of calculated-group rules against one record. */
#include "engine/group.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#include "base/timeutil.h"
#include "config/names.h"
#include "engine/record.h"

bool like_match(const char *s, size_t slen, const char *pat, size_t plen, bool icase)
{
	size_t si = 0, pi = 0, star_p = (size_t)-1, star_s = 0;

	while (si < slen) {
		if (pi < plen && pat[pi] == '%') {
			star_p = ++pi;
			star_s = si;
			continue;
		}
		if (pi < plen) {
			char pc = pat[pi];
			size_t adv = 1;
			bool any = pc == '_';
			if (pc == '\\' && pi + 1 < plen) {
				pc = pat[pi + 1];
				adv = 2;
				any = false;
			}
			char sc = s[si];
			if (any || pc == sc ||
			    (icase && tolower((unsigned char)pc) == tolower((unsigned char)sc))) {
				pi += adv;
				si++;
				continue;
			}
		}
		if (star_p != (size_t)-1) {
			pi = star_p;
			si = ++star_s;
			continue;
		}
		return false;
	}
	while (pi < plen && pat[pi] == '%')
		pi++;
	return pi == plen;
}

static bool contains(struct slice hay, const char *needle, bool icase)
{
	size_t n = strlen(needle);
	if (n == 0)
		return true;
	for (size_t i = 0; i + n <= hay.len; i++) {
		size_t j = 0;
		for (; j < n; j++) {
			char a = hay.ptr[i + j], b = needle[j];
			if (a != b && !(icase && tolower((unsigned char)a) == tolower((unsigned char)b)))
				break;
		}
		if (j == n)
			return true;
	}
	return false;
}

static bool is_negation(enum rule_op op)
{
	return op == ROP_NE || op == ROP_NOT_LIKE || op == ROP_NOT_ILIKE || op == ROP_NOT_SUBSTRING;
}

/* The positive form of a negated op. */
static enum rule_op positive(enum rule_op op)
{
	switch (op) {
	case ROP_NE: return ROP_EQ;
	case ROP_NOT_LIKE: return ROP_LIKE;
	case ROP_NOT_ILIKE: return ROP_ILIKE;
	case ROP_NOT_SUBSTRING: return ROP_SUBSTRING;
	default: return op;
	}
}

/*
 * A number against the rule's match: an integer match of an integer property as a
 * 64-bit integer, exactly (PostgreSQL's bigint), any other as a double (float8), an
 * integer value against it without rounding the value.
 */
static int cmp_num(const struct cfg_rule *r, const struct value *v)
{
	struct value m = { .kind = VAL_FLOAT, .u.f = r->match_num };
	if (r->match_is_int) {
		m.kind = VAL_INT;
		m.u.i = r->match_int;
	}
	return value_compare(v, &m);
}

static int cmp_scalar(const struct cfg_rule *r, const struct value *v, bool *ok)
{
	*ok = true;
	switch (v->kind) {
	case VAL_INT:
	case VAL_FLOAT:
		return cmp_num(r, v);
	case VAL_DATE:
		return (v->u.i > r->match_ms) - (v->u.i < r->match_ms);
	case VAL_BOOL:
		return (int)v->u.b - (int)r->match_bool;
	case VAL_STRING: {
		struct slice m = slice_of(r->match ? r->match : "");
		int c = slice_cmp(v->u.s, m);
		return (c > 0) - (c < 0);
	}
	default:
		*ok = false;
		return 0;
	}
}

/*
 * now moved the rule's relativeMatchNumber units forward or back, as Grouparoo's
 * moment.js add()/subtract() moved it: weeks become days (n * 7), quarters and years
 * months (n * 3, n * 12), and a fraction of a day or month is rounded half away from
 * zero (moment's absRound): 1.5 days is 2 days, 1.5 weeks 11 days, 0.4 days none.
 * The config loader keeps the number within 0 < n <= REL_NUMBER_MAX.
 */
static int64_t relative_bound(const struct cfg_rule *r, int64_t now_ms, bool forward)
{
	double n = r->rel_number;
	const char *unit = "days";

	switch (r->rel_unit) {
	case REL_WEEKS:
		n *= 7;
		break;
	case REL_MONTHS:
		unit = "months";
		break;
	case REL_QUARTERS:
		n *= 3;
		unit = "months";
		break;
	case REL_YEARS:
		n *= 12;
		unit = "months";
		break;
	default:
		break;
	}
	int64_t k = (int64_t)floor(n + 0.5);
	return time_add_units(now_ms, forward ? k : -k, unit);
}

bool rule_matches_value(const struct cfg_rule *r, const struct value *v, int64_t now_ms)
{
	bool ok;
	int c;

	switch (r->op) {
	case ROP_EXISTS:
		return v->kind != VAL_NULL;
	case ROP_NOT_EXISTS:
		return v->kind == VAL_NULL;
	case ROP_EQ:
	case ROP_NE:
		if (r->match_is_null)
			return (v->kind == VAL_NULL) == (r->op == ROP_EQ);
		if (v->kind == VAL_NULL)
			return false;
		c = cmp_scalar(r, v, &ok);
		return ok && ((c == 0) == (r->op == ROP_EQ));
	case ROP_GT:
	case ROP_GTE:
	case ROP_LT:
	case ROP_LTE:
		if (v->kind == VAL_NULL || r->match_is_null)
			return false;
		c = cmp_scalar(r, v, &ok);
		if (!ok)
			return false;
		return r->op == ROP_GT ? c > 0 : r->op == ROP_GTE ? c >= 0 : r->op == ROP_LT ? c < 0 : c <= 0;
	case ROP_LIKE:
	case ROP_ILIKE:
	case ROP_NOT_LIKE:
	case ROP_NOT_ILIKE:
		if (v->kind != VAL_STRING || !r->match)
			return false;
		ok = like_match(v->u.s.ptr, v->u.s.len, r->match, strlen(r->match),
				r->op == ROP_ILIKE || r->op == ROP_NOT_ILIKE);
		return (r->op == ROP_LIKE || r->op == ROP_ILIKE) ? ok : !ok;
	case ROP_STARTS_WITH: {
		size_t n = r->match ? strlen(r->match) : 0;
		return v->kind == VAL_STRING && v->u.s.len >= n && !memcmp(v->u.s.ptr, r->match, n);
	}
	case ROP_ENDS_WITH: {
		size_t n = r->match ? strlen(r->match) : 0;
		return v->kind == VAL_STRING && v->u.s.len >= n &&
		       !memcmp(v->u.s.ptr + v->u.s.len - n, r->match, n);
	}
	case ROP_SUBSTRING:
	case ROP_NOT_SUBSTRING:
		if (v->kind != VAL_STRING || !r->match)
			return false;
		ok = contains(v->u.s, r->match, false);
		return r->op == ROP_SUBSTRING ? ok : !ok;
	case ROP_RELATIVE_GT:
	case ROP_RELATIVE_LT: {
		if (v->kind != VAL_DATE)
			return false;
		if (r->op == ROP_RELATIVE_GT)
			return v->u.i > relative_bound(r, now_ms, false) && v->u.i <= now_ms;
		return v->u.i >= now_ms && v->u.i < relative_bound(r, now_ms, true);
	}
	default:
		return false;
	}
}

static bool rule_matches(const struct cfg_rule *r, const struct record *rec, int64_t now_ms)
{
	const struct value *v;
	struct value keyval;

	if (r->property) {
		v = &rec->values[r->property->slot];
	} else {
		/* grouparooId: the record key */
		keyval.kind = rec->key.is_int ? VAL_INT : VAL_STRING;
		if (rec->key.is_int)
			keyval.u.i = rec->key.i;
		else
			keyval.u.s = rec->key.text;
		v = &keyval;
	}
	if (v->kind != VAL_ARRAY)
		return rule_matches_value(r, v, now_ms);

	/* arrays: any element matches; negations: no element matches the positive form */
	if (r->op == ROP_EXISTS)
		return v->u.arr.n > 0;
	if (r->op == ROP_NOT_EXISTS)
		return v->u.arr.n == 0;
	if (is_negation(r->op) && !(r->op == ROP_NE && r->match_is_null)) {
		struct cfg_rule pos = *r;
		pos.op = positive(r->op);
		for (size_t i = 0; i < v->u.arr.n; i++)
			if (rule_matches_value(&pos, &v->u.arr.items[i], now_ms))
				return false;
		return true;
	}
	if (r->match_is_null && (r->op == ROP_EQ || r->op == ROP_NE))
		return (v->u.arr.n == 0) == (r->op == ROP_EQ);
	for (size_t i = 0; i < v->u.arr.n; i++)
		if (rule_matches_value(r, &v->u.arr.items[i], now_ms))
			return true;
	return false;
}

bool group_matches(const struct cfg_group *g, const struct record *rec, int64_t now_ms)
{
	if (g->n_rules == 0)
		return false;
	for (size_t i = 0; i < g->n_rules; i++) {
		bool m = rule_matches(&g->rules[i], rec, now_ms);
		if (g->match_any && m)
			return true;
		if (!g->match_any && !m)
			return false;
	}
	return !g->match_any;
}
