/* payload.c: canonical per-destination payloads and field-level comparison. */
#include "engine/payload.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/jsonutil.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "base/xalloc.h"
#include "source/source.h"

enum braze_kind { BK_CUSTOM, BK_STRING, BK_BOOL, BK_DOB, BK_EXTERNAL_ID };

/* Braze profile fields that are not custom attributes, with what they accept. */
static const struct {
	const char *name;
	enum braze_kind kind;
} braze_fields[] = {
	{ "country", BK_STRING },
	{ "date_of_first_session", BK_STRING },
	{ "date_of_last_session", BK_STRING },
	{ "dob", BK_DOB },
	{ "email", BK_STRING },
	{ "email_click_tracking_disabled", BK_BOOL },
	{ "email_open_tracking_disabled", BK_BOOL },
	{ "email_subscribe", BK_STRING },
	{ "facebook", BK_STRING },
	{ "first_name", BK_STRING },
	{ "gender", BK_STRING },
	{ "home_city", BK_STRING },
	{ "image_url", BK_STRING },
	{ "language", BK_STRING },
	{ "last_name", BK_STRING },
	{ "marked_email_as_spam_at", BK_STRING },
	{ "phone", BK_STRING },
	{ "push_subscribe", BK_STRING },
	{ "time_zone", BK_STRING },
	{ "twitter", BK_STRING },
};

static enum braze_kind field_kind(const char *name)
{
	size_t lo = 0, hi = sizeof(braze_fields) / sizeof(braze_fields[0]);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, braze_fields[mid].name);
		if (!c)
			return braze_fields[mid].kind;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return BK_CUSTOM;
}

bool payload_in_scope(const struct cfg_destination *dest, const struct record *rec)
{
	switch (dest->collection) {
	case COLL_MODEL:
		return true;
	case COLL_GROUP:
		return dest->group && rec->groups[dest->group->index];
	default:
		return false;
	}
}

static void add_as_string(struct strbuf *out, const struct value *v, bool dob)
{
	struct strbuf tmp = STRBUF_INIT;
	switch (v->kind) {
	case VAL_STRING:
		strbuf_add_json_string(out, v->u.s.ptr, v->u.s.len);
		return;
	case VAL_DATE:
		time_format_iso(&tmp, v->u.i);
		if (dob && tmp.len >= 10)
			strbuf_setlen(&tmp, 10);
		break;
	case VAL_BOOL:
		strbuf_addstr(&tmp, v->u.b ? "true" : "false");
		break;
	case VAL_INT:
	case VAL_FLOAT:
		value_to_json(&tmp, v);
		break;
	case VAL_ARRAY:
		if (v->u.arr.n) {
			add_as_string(out, &v->u.arr.items[0], dob);
			return;
		}
		/* fall through */
	default:
		strbuf_addstr(out, "null");
		return;
	}
	strbuf_add_json_string(out, tmp.buf, tmp.len);
	strbuf_release(&tmp);
}

/* Warned per spec (a destination's pass): as many as a source warns of invalid values. */
#define BAD_BOOLS_LOGGED 5

/*
 * A string sent to a Braze boolean field, read as a boolean property reads text
 * (value_coerce_text: true/false in any case, 1/0, spaces around trimmed); anything
 * else is null, with a warning.
 */
static void add_bool_text(struct strbuf *out, const struct payload_spec *spec, size_t i,
			  const struct record *rec, struct slice s)
{
	struct value b;
	bool ok = value_coerce_text(PROP_BOOLEAN, s.ptr, s.len, NULL, &b);
	if (ok && b.kind == VAL_BOOL) {
		strbuf_addstr(out, b.u.b ? "true" : "false");
		return;
	}
	strbuf_addstr(out, "null");
	if (ok || !spec->bad_bools || atomic_fetch_add(spec->bad_bools, 1) >= BAD_BOOLS_LOGGED)
		return;
	log_warn("destination \"%s\": record \"%.*s\": field \"%s\": \"%.*s\" is not a boolean "
		 "(true, false, 1 or 0); sent as null",
		 spec->dest->id, (int)(rec->key.text.len > 200 ? 200 : rec->key.text.len), rec->key.text.ptr,
		 spec->dest->mapping[i].remote, (int)(s.len > 200 ? 200 : s.len), s.ptr);
}

static void add_value(struct strbuf *out, const struct payload_spec *spec, size_t i,
		      const struct record *rec, const struct value *v)
{
	enum braze_kind k = (enum braze_kind)spec->kinds[i];
	const struct value *scalar = v;

	if (k != BK_CUSTOM && v->kind == VAL_ARRAY)
		scalar = v->u.arr.n ? &v->u.arr.items[0] : &(struct value){ .kind = VAL_NULL };
	switch (k) {
	case BK_STRING:
	case BK_DOB:
		add_as_string(out, scalar, k == BK_DOB);
		return;
	case BK_BOOL:
		if (scalar->kind == VAL_STRING) {
			add_bool_text(out, spec, i, rec, scalar->u.s);
			return;
		}
		value_to_json(out, scalar);
		return;
	default:
		value_to_json(out, v);
	}
}

/* s has no byte strbuf_add_json_string would escape (nor one it might: all plain ASCII). */
static bool plain_name(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s >= 0x7f || *s == '"' || *s == '\\')
			return false;
	return true;
}

void payload_spec_init(struct payload_spec *spec, const struct cfg_destination *dest)
{
	spec->dest = dest;
	spec->bad_bools = xcalloc(1, sizeof(*spec->bad_bools));
	spec->order = xcalloc(dest->n_mapping ? dest->n_mapping : 1, sizeof(*spec->order));
	spec->plain = true;
	for (size_t i = 0; i < dest->n_mapping; i++) {
		/* insertion sort: a handful of entries, once per run */
		size_t j = i;
		while (j && strcmp(dest->mapping[spec->order[j - 1]].remote, dest->mapping[i].remote) > 0) {
			spec->order[j] = spec->order[j - 1];
			j--;
		}
		spec->order[j] = i;
		spec->plain = spec->plain && plain_name(dest->mapping[i].remote);
	}
	for (size_t i = 0; i < dest->n_group_maps; i++)
		spec->plain = spec->plain && plain_name(dest->group_maps[i].remote);
	spec->kinds = xcalloc(dest->n_mapping ? dest->n_mapping : 1, 1);
	spec->key_end = xcalloc(dest->n_mapping ? dest->n_mapping : 1, sizeof(*spec->key_end));
	spec->name_len = xcalloc(dest->n_mapping ? dest->n_mapping : 1, sizeof(*spec->name_len));
	strbuf_init(&spec->keys, 0);
	for (size_t i = 0; i < dest->n_mapping; i++) {
		const char *f = dest->mapping[i].remote;
		spec->kinds[i] = (unsigned char)(!strcmp(f, "external_id") ? BK_EXTERNAL_ID : field_kind(f));
		spec->name_len[i] = strlen(f);
		strbuf_addch(&spec->keys, ',');
		strbuf_add_json_string(&spec->keys, f, spec->name_len[i]);
		strbuf_addch(&spec->keys, ':');
		spec->key_end[i] = spec->keys.len;
	}
}

void payload_spec_release(struct payload_spec *spec)
{
	if (spec->bad_bools && *spec->bad_bools > BAD_BOOLS_LOGGED)
		log_warn("destination \"%s\": %lu values in all were sent as null to boolean fields (first %d shown)",
			 spec->dest->id, (unsigned long)*spec->bad_bools, BAD_BOOLS_LOGGED);
	free((void *)spec->bad_bools);
	spec->bad_bools = NULL;
	free(spec->kinds);
	free(spec->key_end);
	free(spec->name_len);
	spec->name_len = NULL;
	free(spec->order);
	spec->order = NULL;
	strbuf_release(&spec->keys);
	spec->kinds = NULL;
	spec->key_end = NULL;
}

void payload_build_spans(const struct payload_spec *spec, const struct record *rec, struct strbuf *out,
			 size_t *spans)
{
	const struct cfg_destination *dest = spec->dest;
	size_t base = out->len;
	strbuf_addstr(out, "{\"attributes\":{");
	for (size_t i = 0; i < dest->n_mapping; i++) {
		const struct cfg_mapping *m = &dest->mapping[i];
		size_t from = i ? spec->key_end[i - 1] : 1; /* the first entry without its ',' */
		strbuf_add(out, spec->keys.buf + from, spec->key_end[i] - from);
		if (spans)
			spans[2 * i] = out->len - base;
		if (spec->kinds[i] == BK_EXTERNAL_ID)
			strbuf_add_json_string(out, rec->key.text.ptr, rec->key.text.len);
		else
			add_value(out, spec, i, rec, &rec->values[m->property->slot]);
		if (spans)
			spans[2 * i + 1] = out->len - base;
	}
	strbuf_addstr(out, "},\"groups\":[");
	bool first = true;
	for (size_t i = 0; i < dest->n_group_maps; i++) {
		const struct cfg_group_map *gm = &dest->group_maps[i];
		if (!rec->groups[gm->group->index])
			continue;
		if (!first)
			strbuf_addch(out, ',');
		first = false;
		strbuf_add_json_string(out, gm->remote, strlen(gm->remote));
	}
	strbuf_addstr(out, "]}");
}

void payload_build(const struct payload_spec *spec, const struct record *rec, struct strbuf *out)
{
	payload_build_spans(spec, rec, out, NULL);
}

/* ---- comparison ---- */

/* The groups array of a canonical payload (after its "},\"groups\":[" marker), or empty. */
static struct slice payload_groups(struct slice p)
{
	static const char marker[] = "},\"groups\":[";
	for (size_t i = 0; i + sizeof(marker) - 1 <= p.len; i++)
		if (!memcmp(p.ptr + i, marker, sizeof(marker) - 1)) {
			size_t at = i + sizeof(marker) - 1;
			return (struct slice){ p.ptr + at, p.len - at };
		}
	return (struct slice){ "", 0 };
}

/* The next JSON string token of a groups array at *pos, or false at its end. */
static bool next_group(struct slice a, size_t *pos, struct slice *tok)
{
	size_t i = *pos;
	while (i < a.len && a.ptr[i] != '"' && a.ptr[i] != ']')
		i++;
	if (i >= a.len || a.ptr[i] == ']')
		return false;
	size_t start = i++;
	while (i < a.len && a.ptr[i] != '"')
		i += a.ptr[i] == '\\' ? 2 : 1;
	if (i >= a.len)
		return false;
	*tok = (struct slice){ a.ptr + start, i + 1 - start };
	*pos = i + 1;
	return true;
}

/*
 * Does going from payload old to new take the record out of a group (a subscription
 * group or a value of the groups attribute)? Canonical payloads write each group as
 * the same JSON string, so tokens compare bytewise.
 */
bool payload_drops_group(struct slice old, struct slice new)
{
	struct slice og = payload_groups(old), ng = payload_groups(new), a, b;
	size_t i = 0;
	while (next_group(og, &i, &a)) {
		bool found = false;
		size_t k = 0;
		while (!found && next_group(ng, &k, &b))
			found = a.len == b.len && !memcmp(a.ptr, b.ptr, a.len);
		if (!found)
			return true;
	}
	return false;
}

bool payload_with_added_groups(struct slice old, struct slice new, struct strbuf *out)
{
	struct slice og = payload_groups(old), ng = payload_groups(new), a, b;
	size_t i = 0;
	bool any = false;

	strbuf_reset(out);
	if (!og.len || old.len < 2 || memcmp(old.ptr + old.len - 2, "]}", 2))
		return false; /* not canonical: nothing to add to */
	while (next_group(ng, &i, &a)) {
		bool found = false;
		size_t k = 0;
		while (!found && next_group(og, &k, &b))
			found = a.len == b.len && !memcmp(a.ptr, b.ptr, a.len);
		if (found)
			continue;
		if (!any) {
			strbuf_add(out, old.ptr, old.len - 2);
			any = true;
		}
		if (out->buf[out->len - 1] != '[')
			strbuf_addch(out, ',');
		strbuf_add(out, a.ptr, a.len);
	}
	if (any)
		strbuf_addstr(out, "]}");
	return any;
}


static enum jerr parse(struct slice p, json_t **out, struct jerror *err)
{
	json_error_t je;
	*out = NULL;
	if (!p.len)
		return JERR_OK;
	*out = json_loadb(p.ptr, p.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!*out || !json_is_object(*out))
		return jerror_set(err, JERR_STATE, "stored payload is not valid JSON: %s", je.text);
	return JERR_OK;
}

static const char *dump(struct arena *a, json_t *v)
{
	if (!v)
		return "null";
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
	const char *r = arena_strdup(a, s ? s : "null");
	free(s);
	return r;
}

static int cmp_change(const void *a, const void *b)
{
	return strcmp(((const struct payload_change *)a)->field, ((const struct payload_change *)b)->field);
}

/* Sort d's changes by field; canonical payloads have them in order already. */
static void sort_changes(struct payload_diff *d)
{
	for (size_t i = 1; i < d->n_changes; i++)
		if (strcmp(d->changes[i - 1].field, d->changes[i].field) > 0) {
			qsort(d->changes, d->n_changes, sizeof(*d->changes), cmp_change);
			return;
		}
}

static bool in_array(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), s))
			return true;
	return false;
}

static void group_delta(json_t *from, json_t *to, struct arena *a, const char ***out, size_t *n)
{
	size_t i, k = 0;
	json_t *v;
	*out = arena_alloc(a, (json_array_size(from) + 1) * sizeof(char *));
	json_array_foreach(from, i, v)
		if (json_is_string(v) && !in_array(to, json_string_value(v)))
			(*out)[k++] = arena_strdup(a, json_string_value(v));
	*n = k;
}

/*
 * Fast path: payloads written by payload_build have one fixed shape, so they are
 * split into (field, raw value) pairs without building a JSON tree (jansson costs a
 * third of a first sync's CPU). Values compare as bytes: the writer is canonical.
 * Anything not in that shape falls back to the general (jansson) path below.
 */
struct canon {
	const char **keys;
	struct slice *vals;
	size_t n;
	const char **groups;
	size_t n_groups;
	bool present;
};

static void put_utf8(char **w, uint32_t cp)
{
	char *o = *w;
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | (cp >> 6));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | (cp >> 12));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | (cp >> 18));
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	*w = o;
}

static int hex4(const char *p, const char *end, uint32_t *out)
{
	uint32_t v = 0;
	if (end - p < 4)
		return 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return 0;
	}
	*out = v;
	return 1;
}

/*
 * A JSON string at *p (on its opening quote) of scan_canonical's writable copy: its
 * decoded text (no NULs), decoded where it stands and NUL-terminated there (a decoded
 * string is never longer than its JSON text, so the bytes written trail the bytes read).
 */
static const char *scan_string(char **p, const char *end)
{
	char *s = *p + 1;
	char *q = memchr(s, '"', (size_t)(end - s));
	/* most strings have no escapes: terminated as they are (memchr beats a byte loop here) */
	if (q && !memchr(s, '\\', (size_t)(q - s))) {
		*q = '\0';
		*p = q + 1;
		return s;
	}
	char *buf = s, *w = buf;
	while (s < end && *s != '"') {
		if (*s != '\\') {
			*w++ = *s++;
			continue;
		}
		if (++s >= end)
			return NULL;
		switch (*s++) {
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		case '/': *w++ = '/'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u': {
			uint32_t cp, lo;
			if (!hex4(s, end, &cp))
				return NULL;
			s += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && end - s >= 6 && s[0] == '\\' && s[1] == 'u' &&
			    hex4(s + 2, end, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				s += 6;
			}
			if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
				return NULL; /* NULs and lone surrogates: let the general path decide */
			put_utf8(&w, cp);
			break;
		}
		default:
			return NULL;
		}
	}
	if (s >= end)
		return NULL;
	*w = '\0';
	*p = s + 1;
	return buf;
}

/*
 * The n-th string of a comma-separated list at *p (a comma comes before every one but
 * the first), as scan_string; NULL if the list is malformed there.
 */
static const char *scan_list_string(char **p, const char *end, size_t n)
{
	if (n && *(*p)++ != ',')
		return NULL;
	if (*p >= end || **p != '"')
		return NULL;
	return scan_string(p, end);
}

/*
 * Split pl into c, or false if it is not in payload_build's shape. The keys, values and
 * group names are in one copy of pl in a, each NUL-terminated where it stands: the
 * strings' closing quotes and the bytes after the values (',' or '}') become NULs once
 * they are read, so c's values are C strings without a copy each.
 */
static bool scan_canonical(struct slice pl, struct arena *a, struct canon *c)
{
	static const char head[] = "{\"attributes\":{", mid[] = "},\"groups\":[";
	char *p, *end;
	size_t cap = 8;

	memset(c, 0, sizeof(*c));
	if (!pl.len)
		return true; /* (pl.ptr may be NULL: no arithmetic on it) */
	if (pl.len < sizeof(head) || memcmp(pl.ptr, head, sizeof(head) - 1))
		return false;
	/* a NUL byte is never in a payload joey wrote (a corrupt row): the general path
	 * decides, and the values' lengths stay their strlen (payload_change.new_len) */
	if (memchr(pl.ptr, '\0', pl.len))
		return false;
	p = arena_alloc(a, pl.len + 1);
	memcpy(p, pl.ptr, pl.len);
	p[pl.len] = '\0';
	end = p + pl.len;
	p += sizeof(head) - 1;
	c->present = true;
	c->keys = arena_alloc(a, cap * sizeof(*c->keys));
	c->vals = arena_alloc(a, cap * sizeof(*c->vals));
	while (p < end && *p != '}') {
		const char *k = scan_list_string(&p, end, c->n);
		if (!k || p >= end || *p++ != ':')
			return false;
		const char *v = p, *after = json_skip_value(p, end);
		if (!after)
			return false;
		p += after - v;
		if (c->n == cap) {
			const char **nk = arena_alloc(a, 2 * cap * sizeof(*nk));
			struct slice *nv = arena_alloc(a, 2 * cap * sizeof(*nv));
			memcpy(nk, c->keys, cap * sizeof(*nk));
			memcpy(nv, c->vals, cap * sizeof(*nv));
			c->keys = nk;
			c->vals = nv;
			cap *= 2;
		}
		c->keys[c->n] = k;
		c->vals[c->n++] = (struct slice){ v, (size_t)(p - v) };
	}
	if ((size_t)(end - p) < sizeof(mid) - 1 || memcmp(p, mid, sizeof(mid) - 1))
		return false;
	char *attrs_end = p; /* the '}' after the last value */
	p += sizeof(mid) - 1;
	c->groups = arena_alloc(a, ((size_t)(end - p) / 2 + 1) * sizeof(*c->groups));
	while (p < end && *p != ']') {
		const char *g = scan_list_string(&p, end, c->n_groups);
		if (!g)
			return false;
		c->groups[c->n_groups++] = g;
	}
	if (!(end - p == 2 && p[0] == ']' && p[1] == '}'))
		return false;
	/* every value ends before a ',' or the attributes' '}' (read by now): terminate it there */
	for (size_t i = 0; i < c->n; i++) {
		char *after = (char *)c->vals[i].ptr + c->vals[i].len;
		if (after > attrs_end)
			return false;
		*after = '\0';
	}
	return true;
}

static bool raw_null(struct slice v)
{
	return v.len == 4 && !memcmp(v.ptr, "null", 4);
}

static bool canon_has_group(const struct canon *c, const char *g)
{
	for (size_t i = 0; i < c->n_groups; i++)
		if (!strcmp(c->groups[i], g))
			return true;
	return false;
}

static bool diff_fast(struct slice old_payload, struct slice new_payload, struct arena *arena,
		      struct payload_diff *d, bool full)
{
	struct canon o, n;
	if (!scan_canonical(old_payload, arena, &o) || !scan_canonical(new_payload, arena, &n))
		return false;
	/* a first export sets every mapped field, null included (Braze may hold a stale one) */
	bool first = old_payload.len == 0;
	memset(d, 0, sizeof(*d));
	d->changes = arena_alloc(arena, (n.n + 1) * sizeof(*d->changes));
	for (size_t i = 0; i < n.n; i++) {
		struct slice v = n.vals[i], ov = { NULL, 0 };
		bool have_old = false;
		for (size_t j = 0; j < o.n; j++)
			if (!strcmp(o.keys[j], n.keys[i])) {
				ov = o.vals[j];
				have_old = true;
				break;
			}
		if (!raw_null(v))
			d->n_new_fields++;
		if (!full && ((have_old && slice_eq(ov, v)) || (!first && (!have_old || raw_null(ov)) && raw_null(v))))
			continue;
		/* the values are C strings in the scans' copies (scan_canonical) */
		d->changes[d->n_changes++] = (struct payload_change){ .field = n.keys[i],
								      .old_json = have_old ? ov.ptr : "null",
								      .new_json = v.ptr, .new_len = v.len };
	}
	sort_changes(d);
	d->groups_added = arena_alloc(arena, (n.n_groups + 1) * sizeof(char *));
	d->groups_removed = arena_alloc(arena, (o.n_groups + 1) * sizeof(char *));
	for (size_t i = 0; i < n.n_groups; i++)
		if (full || !canon_has_group(&o, n.groups[i]))
			d->groups_added[d->n_added++] = n.groups[i];
	for (size_t i = 0; i < o.n_groups; i++)
		if (!canon_has_group(&n, o.groups[i]))
			d->groups_removed[d->n_removed++] = o.groups[i];
	return true;
}

static enum jerr diff_impl(struct slice old_payload, struct slice new_payload, struct arena *arena,
			   struct payload_diff *d, bool full, struct jerror *err)
{
	json_t *o = NULL, *n = NULL;
	enum jerr rc;

	if (diff_fast(old_payload, new_payload, arena, d, full))
		return JERR_OK;
	memset(d, 0, sizeof(*d));
	if ((rc = parse(old_payload, &o, err)) || (rc = parse(new_payload, &n, err)))
		goto out;

	json_t *oa = o ? json_object_get(o, "attributes") : NULL;
	json_t *na = n ? json_object_get(n, "attributes") : NULL;
	json_t *og = o ? json_object_get(o, "groups") : NULL;
	json_t *ng = n ? json_object_get(n, "groups") : NULL;
	json_t *empty = json_array();
	size_t cap = json_object_size(oa) + json_object_size(na) + 1;
	const char *key;
	json_t *v;

	d->changes = arena_alloc(arena, cap * sizeof(*d->changes));
	if (na) {
		json_object_foreach(na, key, v) {
			json_t *ov = oa ? json_object_get(oa, key) : NULL;
			if (!json_is_null(v))
				d->n_new_fields++;
			/* unchanged, or unset and never set: nothing to send (but a first export
			 * and a full re-send set every field, null included) */
			if (!full && ((ov && json_equal(ov, v)) || (o && (!ov || json_is_null(ov)) && json_is_null(v))))
				continue;
			const char *nj = dump(arena, v);
			d->changes[d->n_changes++] = (struct payload_change){ .field = arena_strdup(arena, key),
									      .old_json = dump(arena, ov),
									      .new_json = nj, .new_len = strlen(nj) };
		}
	}
	/* a field no longer mapped is left alone in Braze: not a change */
	sort_changes(d);
	group_delta(ng ? ng : empty, full ? empty : og ? og : empty, arena, &d->groups_added, &d->n_added);
	group_delta(og ? og : empty, ng ? ng : empty, arena, &d->groups_removed, &d->n_removed);
	json_decref(empty);
out:
	json_decref(o);
	json_decref(n);
	return rc;
}

enum jerr payload_diff(struct slice old_payload, struct slice new_payload, struct arena *arena,
		       struct payload_diff *d, struct jerror *err)
{
	return diff_impl(old_payload, new_payload, arena, d, false, err);
}

enum jerr payload_diff_full(struct slice old_payload, struct slice new_payload, struct arena *arena,
			    struct payload_diff *d, struct jerror *err)
{
	return diff_impl(old_payload, new_payload, arena, d, true, err);
}

bool payload_diff_first(const struct payload_spec *spec, const struct record *rec, struct slice payload,
			const size_t *spans, struct arena *arena, struct payload_diff *d)
{
	const struct cfg_destination *dest = spec->dest;
	if (!spec->plain)
		return false; /* the scanned names would be the decoded escapes: let payload_diff decode */
	memset(d, 0, sizeof(*d));
	d->changes = arena_alloc(arena, (dest->n_mapping + 1) * sizeof(*d->changes));
	for (size_t k = 0; k < dest->n_mapping; k++) {
		size_t i = spec->order[k];
		/* in place: no copy to terminate each value (new_len is its length) */
		struct slice v = { payload.ptr + spans[2 * i], spans[2 * i + 1] - spans[2 * i] };
		if (!raw_null(v))
			d->n_new_fields++;
		/* a first export sets every mapped field, null included (as diff_fast) */
		size_t from = i ? spec->key_end[i - 1] : 0;
		d->changes[d->n_changes++] = (struct payload_change){ dest->mapping[i].remote, "null", v.ptr, v.len,
								      spec->name_len[i], spec->keys.buf + from,
								      spec->key_end[i] - from };
	}
	d->groups_added = arena_alloc(arena, (dest->n_group_maps + 1) * sizeof(char *));
	d->groups_removed = arena_alloc(arena, sizeof(char *));
	for (size_t i = 0; i < dest->n_group_maps; i++)
		if (rec->groups[dest->group_maps[i].group->index])
			d->groups_added[d->n_added++] = dest->group_maps[i].remote;
	return true;
}
