/* store.c: braze-sim's user store: string maps, profiles, attribute values, JSON views. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"

/* ---- string map: open addressing, linear probing, backward-shift deletion ---- */

uint64_t smap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static size_t smap_find(const struct smap *m, const char *key, uint64_t h)
{
	size_t mask = m->cap - 1, i = h & mask;
	while (m->e[i].key) {
		if (m->e[i].hash == h && strcmp(m->e[i].key, key) == 0)
			return i;
		i = (i + 1) & mask;
	}
	return i;
}

static void smap_grow(struct smap *m)
{
	struct smap_ent *old = m->e;
	size_t oldcap = m->cap;
	m->cap = oldcap ? oldcap * 2 : 1024;
	m->e = xcalloc(m->cap, sizeof(*m->e));
	for (size_t i = 0; i < oldcap; i++) {
		if (!old[i].key)
			continue;
		size_t j = old[i].hash & (m->cap - 1);
		while (m->e[j].key)
			j = (j + 1) & (m->cap - 1);
		m->e[j] = old[i];
	}
	free(old);
}

void *smap_get(const struct smap *m, const char *key)
{
	if (!m->n)
		return NULL;
	size_t i = smap_find(m, key, smap_hash(key));
	return m->e[i].key ? m->e[i].val : NULL;
}

void smap_put(struct smap *m, const char *key, void *val)
{
	if ((m->n + 1) * 2 > m->cap)
		smap_grow(m);
	uint64_t h = smap_hash(key);
	size_t i = smap_find(m, key, h);
	if (!m->e[i].key)
		m->n++;
	m->e[i] = (struct smap_ent){ key, h, val };
}

void smap_del(struct smap *m, const char *key)
{
	if (!m->n)
		return;
	size_t mask = m->cap - 1, i = smap_find(m, key, smap_hash(key));
	if (!m->e[i].key)
		return;
	m->e[i].key = NULL;
	m->n--;
	/* shift later members of the cluster back so lookups never stop early */
	for (size_t j = (i + 1) & mask; m->e[j].key; j = (j + 1) & mask) {
		size_t home = m->e[j].hash & mask;
		bool between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (between)
			continue;
		m->e[i] = m->e[j];
		m->e[j].key = NULL;
		i = j;
	}
}

void smap_release(struct smap *m)
{
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* ---- store ---- */

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void store_init(struct store *st, bool seeded, uint64_t seed)
{
	memset(st, 0, sizeof(*st));
	st->seeded = seeded;
	st->seed = seed;
	st->rng = seeded ? seed : (uint64_t)sim_now_ms() ^ ((uint64_t)getpid() << 32);
}

static void user_free(struct user *u)
{
	free(u->external_id);
	for (uint32_t i = 0; i < u->n_old; i++)
		free(u->old_ids[i]);
	free(u->old_ids);
	for (uint32_t i = 0; i < u->n_aliases; i++) {
		free(u->aliases[i].name);
		free(u->aliases[i].label);
		free(u->aliases[i].mapkey);
	}
	free(u->aliases);
	for (uint32_t i = 0; i < u->n_attrs; i++) {
		if (u->attrs[i].type == V_STR)
			free(u->attrs[i].u.s);
		else if (u->attrs[i].type == V_JSON)
			json_decref(u->attrs[i].u.j);
	}
	free(u->attrs);
	free(u->groups);
	free(u);
}

void store_release(struct store *st)
{
	for (size_t i = 0; i < st->by_braze.cap; i++)
		if (st->by_braze.e[i].key)
			user_free(st->by_braze.e[i].val);
	for (size_t i = 0; i < st->interned.cap; i++)
		if (st->interned.e[i].key)
			free(st->interned.e[i].val);
	smap_release(&st->by_ext);
	smap_release(&st->by_braze);
	smap_release(&st->by_alias);
	smap_release(&st->interned);
}

size_t store_count(const struct store *st)
{
	return st->by_braze.n;
}

const char *store_intern(struct store *st, const char *key)
{
	char *k = smap_get(&st->interned, key);
	if (!k) {
		k = xstrdup(key);
		smap_put(&st->interned, k, k);
	}
	return k;
}

void store_prefetch_ext(const struct store *st, const char *id)
{
	if (st->by_ext.cap)
		__builtin_prefetch(&st->by_ext.e[smap_hash(id) & (st->by_ext.cap - 1)]);
}

struct user *store_find_ext(struct store *st, const char *id)
{
	return smap_get(&st->by_ext, id);
}

struct user *store_find_braze(struct store *st, const char *id)
{
	return smap_get(&st->by_braze, id);
}

static char *alias_key(const char *name, const char *label)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s\x1f%s", label, name);
	return strbuf_detach(&sb, NULL);
}

struct user *store_find_alias(struct store *st, const char *name, const char *label)
{
	char *k = alias_key(name, label);
	struct user *u = smap_get(&st->by_alias, k);
	free(k);
	return u;
}

static const char *user_str(struct user *u, const char *field)
{
	struct attr *a = user_attr(u, field);
	return a && a->type == V_STR ? a->u.s : NULL;
}

struct user *store_find_by(struct store *st, const char *field, const char *value)
{
	struct user *best = NULL;
	for (size_t i = 0; i < st->by_braze.cap; i++) {
		struct user *u = st->by_braze.e[i].key ? st->by_braze.e[i].val : NULL;
		const char *v = u ? user_str(u, field) : NULL;
		if (!v || strcmp(v, value) != 0)
			continue;
		if (!best || (u->external_id && !best->external_id) ||
		    (!!u->external_id == !!best->external_id && u->updated_seq > best->updated_seq))
			best = u;
	}
	return best;
}

struct user **store_find_all_by(struct store *st, const char *field, const char *value, size_t *n)
{
	struct user **out = NULL;
	size_t alloc = 0;
	*n = 0;
	for (size_t i = 0; i < st->by_braze.cap; i++) {
		struct user *u = st->by_braze.e[i].key ? st->by_braze.e[i].val : NULL;
		const char *v = u ? user_str(u, field) : NULL;
		if (!v || strcmp(v, value) != 0)
			continue;
		ALLOC_GROW(out, *n + 1, alloc);
		out[(*n)++] = u;
	}
	return out;
}

struct user *store_create(struct store *st, const char *external_id)
{
	struct user *u = xcalloc(1, sizeof(*u));
	uint64_t r1, r2;

	st->n_created++;
	u->created_ms = st->seeded ? 1704067200000LL + (int64_t)st->n_created * 1000 : sim_now_ms();
	do { /* ObjectId-like: 4 bytes of seconds, 8 random bytes ("%08x%016llx") */
		static const char hex[] = "0123456789abcdef";
		uint32_t secs = (uint32_t)(u->created_ms / 1000);
		r1 = rng_next(&st->rng);
		for (int i = 0; i < 8; i++)
			u->braze_id[i] = hex[(secs >> (28 - 4 * i)) & 15];
		for (int i = 0; i < 16; i++)
			u->braze_id[8 + i] = hex[(r1 >> (60 - 4 * i)) & 15];
		u->braze_id[24] = 0;
		if (st->by_braze.cap) /* its slot loads while the external id is filed */
			__builtin_prefetch(&st->by_braze.e[smap_hash(u->braze_id) & (st->by_braze.cap - 1)]);
		if (external_id && !u->external_id) {
			u->external_id = xstrdup(external_id);
			smap_put(&st->by_ext, u->external_id, u);
		}
	} while (smap_get(&st->by_braze, u->braze_id));
	r2 = rng_next(&st->rng);
	u->random_bucket = (uint16_t)(r2 % 10000);
	u->email_sub = u->push_sub = SUB_SUBSCRIBED;
	smap_put(&st->by_braze, u->braze_id, u);
	store_touch(st, u);
	return u;
}

void store_touch(struct store *st, struct user *u)
{
	u->updated_seq = ++st->seq;
}

void store_delete(struct store *st, struct user *u)
{
	if (u->external_id)
		smap_del(&st->by_ext, u->external_id);
	for (uint32_t i = 0; i < u->n_old; i++)
		smap_del(&st->by_ext, u->old_ids[i]);
	for (uint32_t i = 0; i < u->n_aliases; i++)
		smap_del(&st->by_alias, u->aliases[i].mapkey);
	smap_del(&st->by_braze, u->braze_id);
	user_free(u);
}

void store_rename(struct store *st, struct user *u, const char *new_id)
{
	if (u->external_id) {
		u->old_ids = xrealloc(u->old_ids, (u->n_old + 1) * sizeof(char *));
		u->old_ids[u->n_old++] = u->external_id; /* the map entry keeps pointing at it */
	}
	u->external_id = xstrdup(new_id);
	smap_put(&st->by_ext, u->external_id, u);
	store_touch(st, u);
}

bool store_remove_deprecated(struct store *st, const char *id)
{
	struct user *u = store_find_ext(st, id);
	if (!u || (u->external_id && strcmp(u->external_id, id) == 0))
		return false;
	for (uint32_t i = 0; i < u->n_old; i++) {
		if (strcmp(u->old_ids[i], id) != 0)
			continue;
		smap_del(&st->by_ext, u->old_ids[i]);
		free(u->old_ids[i]);
		u->old_ids[i] = u->old_ids[--u->n_old];
		return true;
	}
	return false;
}

void store_add_alias(struct store *st, struct user *u, const char *name, const char *label)
{
	for (uint32_t i = 0; i < u->n_aliases; i++) {
		if (strcmp(u->aliases[i].label, label) != 0)
			continue;
		/* one name per label: replace */
		smap_del(&st->by_alias, u->aliases[i].mapkey);
		free(u->aliases[i].name);
		free(u->aliases[i].mapkey);
		u->aliases[i].name = xstrdup(name);
		u->aliases[i].mapkey = alias_key(name, label);
		smap_put(&st->by_alias, u->aliases[i].mapkey, u);
		return;
	}
	u->aliases = xrealloc(u->aliases, (u->n_aliases + 1) * sizeof(*u->aliases));
	struct alias *a = &u->aliases[u->n_aliases++];
	a->name = xstrdup(name);
	a->label = xstrdup(label);
	a->mapkey = alias_key(name, label);
	smap_put(&st->by_alias, a->mapkey, u);
}

void store_merge(struct store *st, struct user *dst, struct user *src)
{
	if (dst == src)
		return;
	for (uint32_t i = 0; i < src->n_attrs; i++) {
		struct attr *a = &src->attrs[i];
		if (user_attr(dst, a->key))
			continue;
		json_t *v = attr_json(a);
		user_set(st, dst, a->key, a->custom, v);
		json_decref(v);
	}
	for (uint32_t i = 0; i < src->n_groups; i++)
		if (user_group_state(dst, src->groups[i].id) < 0)
			user_set_group(dst, src->groups[i].id, src->groups[i].subscribed);
	/* aliases move unless dst already has one with that label */
	struct alias *al = src->aliases;
	uint32_t nal = src->n_aliases;
	for (uint32_t i = 0; i < nal; i++)
		smap_del(&st->by_alias, al[i].mapkey);
	src->n_aliases = 0;
	for (uint32_t i = 0; i < nal; i++) {
		bool clash = false;
		for (uint32_t k = 0; k < dst->n_aliases; k++)
			clash |= strcmp(dst->aliases[k].label, al[i].label) == 0;
		if (!clash)
			store_add_alias(st, dst, al[i].name, al[i].label);
		free(al[i].name);
		free(al[i].label);
		free(al[i].mapkey);
	}
	free(al);
	src->aliases = NULL;
	if (src->created_ms < dst->created_ms)
		dst->created_ms = src->created_ms;
	store_touch(st, dst);
	store_delete(st, src);
}

static int user_cmp(const void *pa, const void *pb)
{
	const struct user *a = *(struct user *const *)pa, *b = *(struct user *const *)pb;
	if (a->external_id && b->external_id)
		return strcmp(a->external_id, b->external_id);
	if (a->external_id || b->external_id)
		return a->external_id ? -1 : 1;
	return strcmp(a->braze_id, b->braze_id);
}

struct user **store_sorted(struct store *st, size_t *n)
{
	struct user **out = xmalloc((st->by_braze.n + 1) * sizeof(*out));
	*n = 0;
	for (size_t i = 0; i < st->by_braze.cap; i++)
		if (st->by_braze.e[i].key)
			out[(*n)++] = st->by_braze.e[i].val;
	qsort(out, *n, sizeof(*out), user_cmp);
	return out;
}

/* ---- attributes ---- */

struct attr *user_attr(struct user *u, const char *key)
{
	/* attribute keys are interned in the one store: compare pointers */
	const char *k = smap_get(&sim.store.interned, key);
	return k ? user_attr_k(u, k) : NULL;
}

struct attr *user_attr_k(struct user *u, const char *ikey)
{
	for (uint32_t i = 0; i < u->n_attrs; i++)
		if (u->attrs[i].key == ikey)
			return &u->attrs[i];
	return NULL;
}

void user_reserve(struct user *u, uint32_t n)
{
	if (u->a_attrs - u->n_attrs >= n)
		return;
	u->a_attrs = u->n_attrs + n;
	u->attrs = xrealloc(u->attrs, u->a_attrs * sizeof(*u->attrs));
}

static void attr_clear(struct attr *a)
{
	if (a->type == V_STR)
		free(a->u.s);
	else if (a->type == V_JSON)
		json_decref(a->u.j);
	a->type = V_INT;
}

void user_set(struct store *st, struct user *u, const char *key, bool custom, json_t *v)
{
	user_set_k(u, store_intern(st, key), custom, v);
}

void user_set_k(struct user *u, const char *ikey, bool custom, json_t *v)
{
	struct attr *a = user_attr_k(u, ikey);
	if (!a) {
		if (u->n_attrs == u->a_attrs) { /* grow by 4: profiles hold few attributes */
			u->a_attrs += 4;
			u->attrs = xrealloc(u->attrs, u->a_attrs * sizeof(*u->attrs));
		}
		a = &u->attrs[u->n_attrs++];
		a->key = ikey;
		a->type = V_INT;
	} else {
		attr_clear(a);
	}
	a->custom = custom;
	switch (json_typeof(v)) {
	case JSON_STRING:
		a->type = V_STR;
		a->u.s = xstrndup(json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		a->type = V_INT;
		a->u.i = json_integer_value(v);
		break;
	case JSON_REAL:
		a->type = V_REAL;
		a->u.d = json_real_value(v);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		a->type = V_BOOL;
		a->u.b = json_is_true(v);
		break;
	default:
		a->type = V_JSON;
		a->u.j = json_deep_copy(v);
		break;
	}
}

void user_unset(struct user *u, const char *key)
{
	struct attr *a = user_attr(u, key);
	if (!a)
		return;
	attr_clear(a);
	*a = u->attrs[--u->n_attrs];
}

json_t *attr_json(const struct attr *a)
{
	switch (a->type) {
	case V_STR:
		return json_string(a->u.s);
	case V_INT:
		return json_integer(a->u.i);
	case V_REAL:
		return json_real(a->u.d);
	case V_BOOL:
		return json_boolean(a->u.b);
	default:
		return json_deep_copy(a->u.j);
	}
}

void user_set_group(struct user *u, const char *id, bool subscribed)
{
	for (uint32_t i = 0; i < u->n_groups; i++) {
		if (strcmp(u->groups[i].id, id) == 0) {
			u->groups[i].subscribed = subscribed;
			return;
		}
	}
	u->groups = xrealloc(u->groups, (u->n_groups + 1) * sizeof(*u->groups));
	snprintf(u->groups[u->n_groups].id, sizeof(u->groups[0].id), "%s", id);
	u->groups[u->n_groups++].subscribed = subscribed;
}

int user_group_state(const struct user *u, const char *id)
{
	for (uint32_t i = 0; i < u->n_groups; i++)
		if (strcmp(u->groups[i].id, id) == 0)
			return u->groups[i].subscribed;
	return -1;
}

const char *sub_state_name(int s)
{
	return s == SUB_OPTED_IN ? "opted_in" : s == SUB_UNSUBSCRIBED ? "unsubscribed" : "subscribed";
}

int sub_state_parse(const char *s)
{
	if (!strcmp(s, "subscribed"))
		return SUB_SUBSCRIBED;
	if (!strcmp(s, "opted_in"))
		return SUB_OPTED_IN;
	if (!strcmp(s, "unsubscribed"))
		return SUB_UNSUBSCRIBED;
	return -1;
}

/* ---- JSON views ---- */

static void iso_ms(char *out, size_t n, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static bool wanted(const json_t *fields, const char *name)
{
	size_t i;
	json_t *f;
	if (!fields)
		return true;
	json_array_foreach(fields, i, f)
		if (json_is_string(f) && strcmp(json_string_value(f), name) == 0)
			return true;
	return false;
}

json_t *user_to_json(const struct user *u, const json_t *fields, bool dump, bool dob_iso)
{
	json_t *o = json_object(), *custom = json_object();
	char buf[96];

	if (u->external_id && wanted(fields, "external_id"))
		json_object_set_new(o, "external_id", json_string(u->external_id));
	if (wanted(fields, "user_aliases")) {
		json_t *arr = json_array();
		for (uint32_t i = 0; i < u->n_aliases; i++)
			json_array_append_new(arr, json_pack("{s:s,s:s}", "alias_name", u->aliases[i].name,
							     "alias_label", u->aliases[i].label));
		json_object_set_new(o, "user_aliases", arr);
	}
	if (wanted(fields, "braze_id"))
		json_object_set_new(o, "braze_id", json_string(u->braze_id));
	if (wanted(fields, "created_at")) {
		iso_ms(buf, sizeof(buf), u->created_ms);
		json_object_set_new(o, "created_at", json_string(buf));
	}
	if (wanted(fields, "random_bucket"))
		json_object_set_new(o, "random_bucket", json_integer(u->random_bucket));
	if (wanted(fields, "total_revenue") && !dump)
		json_object_set_new(o, "total_revenue", json_integer(0));
	if (wanted(fields, "email_subscribe"))
		json_object_set_new(o, "email_subscribe", json_string(sub_state_name(u->email_sub)));
	if (wanted(fields, "push_subscribe"))
		json_object_set_new(o, "push_subscribe", json_string(sub_state_name(u->push_sub)));
	for (uint32_t i = 0; i < u->n_attrs; i++) {
		const struct attr *a = &u->attrs[i];
		if (a->custom) {
			json_object_set_new(custom, a->key, attr_json(a));
			continue;
		}
		if (!dump && strcmp(a->key, "current_location") == 0) {
			if (wanted(fields, "last_coordinates"))
				json_object_set_new(o, "last_coordinates",
						    json_pack("[OO]", json_object_get(a->u.j, "longitude"),
							      json_object_get(a->u.j, "latitude")));
			continue;
		}
		if (!wanted(fields, a->key))
			continue;
		if (!dump && dob_iso && strcmp(a->key, "dob") == 0 && a->type == V_STR) {
			snprintf(buf, sizeof(buf), "%.10sT00:00:00.000Z", a->u.s);
			json_object_set_new(o, "dob", json_string(buf));
			continue;
		}
		json_object_set_new(o, a->key, attr_json(a));
	}
	if (json_object_size(custom) && wanted(fields, "custom_attributes"))
		json_object_set_new(o, "custom_attributes", custom);
	else
		json_decref(custom);
	if (dump) {
		json_t *g = json_array();
		for (uint32_t i = 0; i < u->n_groups; i++)
			json_array_append_new(g, json_pack("{s:s,s:s}", "subscription_group_id", u->groups[i].id,
							   "subscription_state",
							   u->groups[i].subscribed ? "subscribed" : "unsubscribed"));
		json_object_set_new(o, "subscription_groups", g);
		if (u->n_old) {
			json_t *d = json_array();
			for (uint32_t i = 0; i < u->n_old; i++)
				json_array_append_new(d, json_string(u->old_ids[i]));
			json_object_set_new(o, "deprecated_external_ids", d);
		}
	}
	return o;
}
