/* source.c: connector registry, record-key order checks and Grouparoo value coercion. */
#include "base/log.h"
#include "source/source.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/arena.h"
#include "base/timeutil.h"

/* Every connector; postgres/mysql/csv each add one line here. */
static const struct source_ops *const connectors[] = {
	&source_sqlite,
	&source_csv,
	&source_postgres,
	&source_mysql,
};

int key_compare(const struct rkey *a, const struct rkey *b)
{
	if (a->is_int && b->is_int)
		return (a->i > b->i) - (a->i < b->i);
	if (a->is_int != b->is_int)
		return a->is_int ? -1 : 1; /* integers before text */
	return slice_cmp(a->text, b->text);
}

bool key_in_range(const struct key_range *r, const struct rkey *k)
{
	return !r || ((!r->lo || key_compare(k, r->lo) >= 0) && (!r->hi || key_compare(k, r->hi) < 0));
}

const struct source_ops *source_ops_for_app(const char *app_type)
{
	if (!app_type)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(connectors); i++)
		if (!strcmp(connectors[i]->app_type, app_type))
			return connectors[i];
	return NULL;
}

const struct source_ops *source_ops_for_source_type(const char *source_type)
{
	if (!source_type)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(connectors); i++)
		for (const char *const *t = connectors[i]->source_types; t && *t; t++)
			if (!strcmp(*t, source_type))
				return connectors[i];
	return NULL;
}

/* s as a number (a copy is parsed: slices are not NUL-terminated); false if it is not one. */
static bool since_number(struct slice s, bool *is_int, int64_t *i, double *f)
{
	char buf[64];
	char *end;
	if (!s.len || s.len >= sizeof(buf))
		return false;
	if (decimal_to_int64(s.ptr, s.len, i)) {
		*is_int = true;
		*f = (double)*i;
		return true;
	}
	memcpy(buf, s.ptr, s.len);
	buf[s.len] = '\0';
	if (isspace((unsigned char)buf[0]))
		return false;
	errno = 0;
	*f = strtod(buf, &end);
	if (end == buf || *end || errno || !isfinite(*f))
		return false;
	*is_int = false;
	return true;
}

int source_since_compare(struct slice a, struct slice b)
{
	bool ai, bi;
	int64_t ia, ib;
	double fa, fb;
	if (since_number(a, &ai, &ia, &fa) && since_number(b, &bi, &ib, &fb)) {
		if (ai && bi)
			return (ia > ib) - (ia < ib);
		return (fa > fb) - (fa < fb);
	}
	return slice_cmp(a, b);
}

/* Append a key for a message: at most 200 bytes of it. */
static void key_text(struct strbuf *sb, const struct rkey *k)
{
	if (k->is_int) {
		strbuf_addf(sb, "%" PRId64, k->i);
		return;
	}
	size_t n = k->text.len > 200 ? 200 : k->text.len;
	strbuf_add(sb, k->text.ptr, n);
	if (n < k->text.len)
		strbuf_addstr(sb, "...");
}

enum jerr source_cursor_next(struct source_cursor *cur, struct source_row **row,
			     struct jerror *err)
{
	enum jerr rc = cur->ops->next(cur, row, err);
	if (rc || !*row)
		return rc;

	const struct rkey *k = &(*row)->key;
	if (cur->have_prev) {
		int c = key_compare(&cur->prev, k);
		if (c >= 0) {
			struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
			const char *sid = cur->source && cur->source->id ? cur->source->id : "?";
			key_text(&a, &cur->prev);
			key_text(&b, k);
			if (c == 0) {
				jerror_set(err, JERR_SOURCE_DATA,
					   "duplicate primary key \"%s\" in source \"%s\"", b.buf, sid);
				jerror_detail(err, "two rows of the source map to the same record key");
				jerror_hint(err, "make the mapping column unique in the source, or map "
						 "the source through a secondary source that aggregates");
			} else {
				jerror_set(err, JERR_SOURCE_DATA,
					   "source \"%s\" returned keys out of order", sid);
				jerror_detail(err, "key \"%s\" came after key \"%s\"", b.buf, a.buf);
				jerror_hint(err, "the connector must order rows by the record key "
						 "(integers numerically, text bytewise)");
			}
			strbuf_release(&a);
			strbuf_release(&b);
			*row = NULL;
			return JERR_SOURCE_DATA;
		}
	}
	/* remember the key: its text lives in the row, which the next call recycles */
	strbuf_reset(&cur->prev_text);
	strbuf_add(&cur->prev_text, k->text.ptr, k->text.len);
	cur->prev = *k;
	cur->prev.text = (struct slice){ cur->prev_text.buf, cur->prev_text.len };
	cur->have_prev = true;
	cur->rows++;
	return JERR_OK;
}

#define INVALID_LOGGED 5

void source_note_invalid(struct source_cursor *cur, const struct cfg_property *p, const struct rkey *key,
			 const char *raw, size_t len)
{
	if (++cur->invalid > INVALID_LOGGED)
		return;
	log_warn("source \"%s\": record \"%.*s\": property \"%s\": \"%.*s\" is not a valid %s; sent as empty",
		 cur->source->id, (int)(key->text.len > 200 ? 200 : key->text.len), key->text.ptr, p->id,
		 (int)(len > 100 ? 100 : len), raw ? raw : "", prop_type_name(p->type));
}

void source_cursor_close(struct source_cursor *cur)
{
	if (!cur)
		return;
	if (cur->invalid > INVALID_LOGGED)
		log_warn("source \"%s\": %llu values in all did not fit their property's type (first %d shown)",
			 cur->source->id, (unsigned long long)cur->invalid, INVALID_LOGGED);
	struct strbuf prev = cur->prev_text;
	cur->ops->close(cur); /* frees cur */
	strbuf_release(&prev);
}

/* ---- coercion ---- */

static void trim(const char **s, size_t *len)
{
	while (*len && isspace((unsigned char)(*s)[0]))
		(*s)++, (*len)--;
	while (*len && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

/* Whole number, optionally written with a zero fraction ("12", "-3", "12.0"). */
static bool parse_int(const char *s, size_t len, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	uint64_t v = 0;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	size_t start = i;
	for (; i < len && isdigit((unsigned char)s[i]); i++) {
		unsigned dgt = (unsigned)(s[i] - '0');
		if (v > (UINT64_C(9223372036854775808) - dgt) / 10)
			return false;
		v = v * 10 + dgt;
	}
	if (i == start)
		return false;
	if (i < len && s[i] == '.') {
		for (i++; i < len && s[i] == '0'; i++)
			;
	}
	if (i != len)
		return false;
	if (!neg && v > INT64_MAX)
		return false;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

static bool parse_float(const char *s, size_t len, double *out)
{
	char buf[64];
	char *end;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	/* no hex floats, no inf/nan words */
	for (size_t i = 0; i < len; i++)
		if (!strchr("0123456789+-.eE", buf[i]))
			return false;
	errno = 0;
	double f = strtod(buf, &end);
	if (end != buf + len || !isfinite(f))
		return false;
	*out = f;
	return true;
}

static bool is_label_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c >= 0x80;
}

/* host.tld: dot-separated non-empty labels, a final label of 2+ letters. */
static bool looks_like_domain(const char *s, size_t len)
{
	size_t label = 0, last_start = 0;
	bool dot = false;

	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (!label)
				return false;
			label = 0;
			last_start = i + 1;
			dot = true;
		} else if (is_label_char(c)) {
			label++;
		} else {
			return false;
		}
	}
	if (!dot || label < 2)
		return false;
	for (size_t i = last_start; i < len; i++)
		if (isdigit((unsigned char)s[i]) || s[i] == '-')
			return false;
	return true;
}

static bool looks_like_email(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);
	if (!at || at == s)
		return false;
	size_t local = (size_t)(at - s);
	if (memchr(at + 1, '@', len - local - 1))
		return false;
	for (size_t i = 0; i < local; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '(' || c == ')' || c == ',' || c == ':' || c == ';' ||
		    c == '<' || c == '>' || c == '[' || c == ']' || c == '\\' || c == '"')
			return false;
	}
	if (s[0] == '.' || s[local - 1] == '.')
		return false;
	return looks_like_domain(at + 1, len - local - 1);
}

/* scheme://host[...] or host.tld[/...]; no whitespace. s is already lower case. */
static bool looks_like_url(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (isspace((unsigned char)s[i]) || (unsigned char)s[i] < 0x20)
			return false;
	const char *p = s, *end = s + len;
	const char *sep = NULL;
	for (size_t i = 0; i + 3 <= len && !sep; i++)
		if (!memcmp(s + i, "://", 3))
			sep = s + i;
	if (sep) {
		if (sep == s || !isalpha((unsigned char)s[0]))
			return false;
		for (const char *q = s; q < sep; q++)
			if (!isalnum((unsigned char)*q) && *q != '+' && *q != '-' && *q != '.')
				return false;
		p = sep + 3;
	}
	/* authority: up to / ? # ; strip userinfo and port */
	const char *host_end = p;
	while (host_end < end && *host_end != '/' && *host_end != '?' && *host_end != '#')
		host_end++;
	const char *at = NULL;
	for (const char *q = p; q < host_end; q++)
		if (*q == '@')
			at = q;
	if (at)
		p = at + 1;
	const char *colon = memchr(p, ':', (size_t)(host_end - p));
	if (colon) {
		for (const char *q = colon + 1; q < host_end; q++)
			if (!isdigit((unsigned char)*q))
				return false;
		host_end = colon;
	}
	size_t hl = (size_t)(host_end - p);
	if (sep && hl == 9 && !memcmp(p, "localhost", 9))
		return true;
	return looks_like_domain(p, hl);
}

bool value_coerce_text(enum prop_type t, const char *s, size_t len, struct arena *arena,
		       struct value *out)
{
	*out = VALUE_NULL;
	if (!s || !len)
		return true; /* empty is NULL, and valid */
	if (t != PROP_STRING)
		trim(&s, &len);
	if (!len)
		return true;

	switch (t) {
	case PROP_STRING:
	case PROP_PHONE: /* no libphonenumber: joey passes phone numbers through, trimmed */
		out->kind = VAL_STRING;
		out->u.s = (struct slice){ arena_strndup(arena, s, len), len };
		return true;
	case PROP_INTEGER:
		if (!parse_int(s, len, &out->u.i))
			return false;
		out->kind = VAL_INT;
		return true;
	case PROP_FLOAT:
		if (!parse_float(s, len, &out->u.f))
			return false;
		out->kind = VAL_FLOAT;
		return true;
	case PROP_BOOLEAN:
		if ((len == 1 && s[0] == '1') || (len == 4 && !strncasecmp(s, "true", 4)))
			out->u.b = true;
		else if ((len == 1 && s[0] == '0') || (len == 5 && !strncasecmp(s, "false", 5)))
			out->u.b = false;
		else
			return false;
		out->kind = VAL_BOOL;
		return true;
	case PROP_DATE:
		if (!time_parse(s, len, &out->u.i))
			return false;
		out->kind = VAL_DATE;
		return true;
	case PROP_EMAIL:
		if (!looks_like_email(s, len))
			return false;
		out->kind = VAL_STRING;
		out->u.s = (struct slice){ arena_strndup(arena, s, len), len };
		return true;
	case PROP_URL: {
		char *p = arena_strndup(arena, s, len);
		for (size_t i = 0; i < len; i++)
			p[i] = (char)tolower((unsigned char)p[i]);
		if (!looks_like_url(p, len))
			return false;
		out->kind = VAL_STRING;
		out->u.s = (struct slice){ p, len };
		return true;
	}
	default:
		return false;
	}
}
