/* payload.c: canonical per-destination payloads and field-level comparison. */
#include "engine/payload.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/timeutil.h"
#include "base/xalloc.h"

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

static void add_value(struct strbuf *out, enum braze_kind k, const struct value *v)
{
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
			bool t = slice_eq_str(scalar->u.s, "true");
			bool f = slice_eq_str(scalar->u.s, "false");
			strbuf_addstr(out, t ? "true" : f ? "false" : "null");
			return;
		}
		value_to_json(out, scalar);
		return;
	default:
		value_to_json(out, v);
	}
}

void payload_spec_init(struct payload_spec *spec, const struct cfg_destination *dest)
{
	spec->dest = dest;
	spec->kinds = xcalloc(dest->n_mapping ? dest->n_mapping : 1, 1);
	for (size_t i = 0; i < dest->n_mapping; i++) {
		const char *f = dest->mapping[i].remote;
		spec->kinds[i] = (unsigned char)(!strcmp(f, "external_id") ? BK_EXTERNAL_ID : field_kind(f));
	}
}

void payload_spec_release(struct payload_spec *spec)
{
	free(spec->kinds);
	spec->kinds = NULL;
}

void payload_build(const struct payload_spec *spec, const struct record *rec, struct strbuf *out)
{
	const struct cfg_destination *dest = spec->dest;
	strbuf_addstr(out, "{\"attributes\":{");
	for (size_t i = 0; i < dest->n_mapping; i++) {
		const struct cfg_mapping *m = &dest->mapping[i];
		if (i)
			strbuf_addch(out, ',');
		strbuf_add_json_string(out, m->remote, strlen(m->remote));
		strbuf_addch(out, ':');
		if (spec->kinds[i] == BK_EXTERNAL_ID)
			strbuf_add_json_string(out, rec->key.text.ptr, rec->key.text.len);
		else
			add_value(out, (enum braze_kind)spec->kinds[i], &rec->values[m->property->slot]);
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

/* ---- comparison ---- */

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

static enum jerr diff_impl(struct slice old_payload, struct slice new_payload, struct arena *arena,
			   struct payload_diff *d, bool full, struct jerror *err)
{
	json_t *o = NULL, *n = NULL;
	enum jerr rc;

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
			/* unchanged, or unset and never set: nothing to send */
			if ((ov && json_equal(ov, v) && !(full && !json_is_null(v))) ||
			    ((!ov || json_is_null(ov)) && json_is_null(v)))
				continue;
			d->changes[d->n_changes++] = (struct payload_change){
				arena_strdup(arena, key), dump(arena, ov), dump(arena, v) };
		}
	}
	/* a field no longer mapped is left alone in Braze: not a change */
	qsort(d->changes, d->n_changes, sizeof(*d->changes), cmp_change);
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
