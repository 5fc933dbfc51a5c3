/*
 * fields.c: generic checks of a config object's fields (known keys, duplicate keys, value
 * types, required strings, enum values) and the getters the class files read fields with.
 * Borrows the parsed JSON5 nodes; reports through diag.c.
 */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "config/names.h"
#include "config/config_internal.h"

const char *ld_article(const char *type)
{
	return strchr("aeio", type[0]) ? "an" : "a";
}

static unsigned type_bit(enum j5_type t)
{
	switch (t) {
	case J5_STRING: return T_STR;
	case J5_NUMBER: return T_NUM;
	case J5_BOOL: return T_BOOL;
	case J5_OBJECT: return T_OBJ;
	case J5_ARRAY: return T_ARR;
	case J5_NULL: return 0;
	}
	return 0;
}

static const char *types_text(unsigned types)
{
	switch (types) {
	case T_STR: return "a string";
	case T_NUM: return "a number";
	case T_BOOL: return "a boolean";
	case T_OBJ: return "an object";
	case T_ARR: return "an array";
	case T_STR | T_NUM | T_BOOL: return "a string, number or boolean";
	case T_STR | T_ARR: return "a string or an array";
	case T_STR | T_NUM: return "a string or a number";
	default: return "another type";
	}
}

const char *ld_found_text(const struct j5_node *n)
{
	switch (n->type) {
	case J5_STRING: return "a string";
	case J5_NUMBER: return "a number";
	case J5_BOOL: return "a boolean";
	case J5_OBJECT: return "an object";
	case J5_ARRAY: return "an array";
	case J5_NULL: return "null";
	}
	return "a value";
}

static const char *join_field(struct loader *ld, const char *prefix, const char *name)
{
	return prefix ? arena_printf(ld->a, "%s.%s", prefix, name) : name;
}

/*
 * Check obj's keys against specs: unknown keys (with did-you-mean), duplicate keys,
 * value types, required fields and deprecated fields. null values count as absent.
 */
void ld_check_fields(struct loader *ld, const struct where *w, const struct j5_node *obj,
		     const struct field_spec *specs, size_t n_specs, const char *prefix,
		     const char *what)
{
	const char **names = xmalloc((n_specs ? n_specs : 1) * sizeof(*names));
	for (size_t i = 0; i < n_specs; i++)
		names[i] = specs[i].name;

	for (size_t i = 0; i < obj->n; i++) {
		const struct j5_member *m = &obj->members[i];
		const struct field_spec *s = NULL;
		const char *field = join_field(ld, prefix, m->key);

		if (obj->n <= 256)
			for (size_t j = 0; j < i; j++)
				if (!strcmp(obj->members[j].key, m->key)) {
					ld_err(ld, w, m->line, m->col, field, "remove one of them",
					       "duplicate key \"%s\" (first at line %d)", m->key,
					       obj->members[j].line);
					break;
				}
		for (size_t j = 0; j < n_specs; j++)
			if (!strcmp(specs[j].name, m->key))
				s = &specs[j];
		if (!s) {
			static const char *const db_cols[] = { "state", "locked", "createdAt", "updatedAt" };
			const char *hint = ld_did_you_mean(ld, m->key, names, n_specs);
			if (!prefix && names_find(db_cols, ARRAY_SIZE(db_cols), m->key) >= 0)
				hint = "this is a Grouparoo database column, not a config field: remove it";
			ld_err(ld, w, m->line, m->col, field, hint, "unknown field \"%s\" for %s", m->key,
			       what);
			continue;
		}
		if (m->value->type == J5_NULL)
			continue;
		if (!(type_bit(m->value->type) & s->types)) {
			ld_err(ld, w, NPOS(m->value), field, NULL, "expected %s, found %s",
			       types_text(s->types), ld_found_text(m->value));
			continue;
		}
		if (s->flags & F_WARN)
			ld_warn(ld, w, m->line, m->col, field, s->hint, "%s", s->warning);
	}
	free(names);
}

/* Member key if present, not null and of one of types; else NULL (already reported). */
const struct j5_member *ld_get_m(const struct j5_node *obj, const char *key, unsigned types)
{
	const struct j5_member *m = j5_member(obj, key);
	if (!m || !(type_bit(m->value->type) & types))
		return NULL;
	return m;
}

const char *ld_get_str(const struct j5_node *obj, const char *key)
{
	const struct j5_member *m = ld_get_m(obj, key, T_STR);
	return m ? m->value->str : NULL;
}

bool ld_get_bool(const struct j5_node *obj, const char *key, bool dflt)
{
	const struct j5_member *m = ld_get_m(obj, key, T_BOOL);
	return m ? m->value->b : dflt;
}

/* A required string field: reports it missing (at the object) and returns NULL. */
const char *ld_req_str(struct loader *ld, const struct where *w, const struct j5_node *obj,
		       const char *key, const struct j5_member **mo)
{
	const struct j5_member *m = j5_member(obj, key);
	if (mo)
		*mo = NULL;
	if (!m || m->value->type == J5_NULL) {
		ld_err(ld, w, NPOS(obj), NULL, NULL, "missing required field \"%s\"", key);
		return NULL;
	}
	if (m->value->type != J5_STRING)
		return NULL; /* reported by ld_check_fields */
	if (mo)
		*mo = m;
	return m->value->str;
}

bool ld_known_type(struct loader *ld, const struct where *w, const struct j5_member *tm, const char *type,
		   const char *what, bool known, const char *const *(*types)(size_t *n))
{
	size_t n;
	const char *const *names = types(&n);
	if (!known)
		ld_err(ld, w, NPOS(tm->value), "type", ld_did_you_mean(ld, type, names, n), "unknown %s type \"%s\"",
		       what, type);
	return known;
}

const char *ld_renamed_type(struct loader *ld, const struct where *w, const struct j5_member *tm, const char *type,
			    const char *what, const char *renamed_to)
{
	if (!renamed_to)
		return type;
	ld_warn(ld, w, NPOS(tm->value), "type", arena_printf(ld->a, "write \"%s\"", renamed_to),
		"%s type \"%s\" was renamed to \"%s\"", what, type, renamed_to);
	return renamed_to;
}

bool ld_id_str(struct loader *ld, const struct where *w, const struct j5_node *v, const char *field, const char *what)
{
	if (v->type == J5_STRING)
		return true;
	ld_err(ld, w, NPOS(v), field, NULL, "expected a %s id (a string), found %s", what, ld_found_text(v));
	return false;
}

/* An enum field: index in names, dflt if absent, -1 (reported) if invalid. */
int ld_get_enum(struct loader *ld, const struct where *w, const struct j5_node *obj,
		const char *key, const char *field, const char *const *names, size_t n, int dflt)
{
	const struct j5_member *m = ld_get_m(obj, key, T_STR);
	int i;
	if (!m)
		return j5_member(obj, key) && j5_member(obj, key)->value->type != J5_NULL ? -1 : dflt;
	i = names_find(names, n, m->value->str);
	if (i < 0) {
		const char *hint = ld_did_you_mean(ld, m->value->str, names, n);
		if (!hint)
			hint = ld_quoted_list(ld, "use one of: ", names, n);
		ld_err(ld, w, NPOS(m->value), field ? field : key, hint, "invalid value \"%s\"",
		       m->value->str);
	}
	return i;
}

void ld_add_obj(struct loader *ld, enum cfg_class c, void *obj)
{
	ALLOC_GROW(ld->objs[c], ld->n_objs[c] + 1, ld->alloc_objs[c]);
	ld->objs[c][ld->n_objs[c]++] = obj;
}

static const struct j5_node EMPTY_OBJECT = { .type = J5_OBJECT };

const struct j5_node *ld_get_obj(const struct j5_node *obj, const char *key)
{
	const struct j5_member *m = ld_get_m(obj, key, T_OBJ);
	return m ? m->value : &EMPTY_OBJECT;
}

/* The fields every class object read by ld_read_head has, before its own (in this order:
 * did-you-mean takes the first of equally close names). */
static const struct field_spec head_fields[] = {
	{ "id", T_STR, 0, NULL, NULL },
	{ "class", T_STR, 0, NULL, NULL },
	{ "name", T_STR, 0, NULL, NULL },
};

void ld_read_head(struct loader *ld, const struct where *w, const struct j5_node *o, const struct field_spec *specs,
		  size_t n_specs, const char *what, const char **id, const char **name, struct cfg_pos *pos)
{
	size_t n_head = ARRAY_SIZE(head_fields);
	struct field_spec *all = xmalloc((n_head + n_specs) * sizeof(*all));
	memcpy(all, head_fields, sizeof(head_fields));
	memcpy(all + n_head, specs, n_specs * sizeof(*specs));
	ld_check_fields(ld, w, o, all, n_head + n_specs, NULL, what);
	free(all);
	*id = w->id;
	*name = ld_get_str(o, "name");
	*pos = (struct cfg_pos){ w->file, o->line, o->col };
}
