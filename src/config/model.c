/*
 * model.c: the Model class: reading a model object, finding each model's primary source and
 * primary key from the source mappings (pass 3), and filling the model's arrays.
 */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "config/names.h"
#include "config/config_internal.h"

static const struct field_spec model_fields[] = {
	{ "type", T_STR, 0, NULL, NULL },
};

void ld_load_model(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order)
{
	static const char *const types[] = { "profile", "account", "event", "custom" };
	struct model_x *x = arena_zalloc(ld->a, sizeof(*x));
	x->w = *w;
	x->order = order;
	ld_read_head(ld, w, o, model_fields, ARRAY_SIZE(model_fields), "a Model", &x->m.id, &x->m.name, &x->m.pos);
	x->m.type = ld_req_str(ld, w, o, "type", NULL);
	if (x->m.type)
		ld_get_enum(ld, w, o, "type", NULL, types, ARRAY_SIZE(types), 0);
	ld_add_obj(ld, CLASS_MODEL, x);
}

static int cmp_source_order(const void *a, const void *b)
{
	size_t x = (*(struct source_x *const *)a)->order, y = (*(struct source_x *const *)b)->order;
	return (x > y) - (x < y);
}

static bool pk_type_ok(enum prop_type t)
{
	return t == PROP_STRING || t == PROP_INTEGER || t == PROP_EMAIL || t == PROP_URL || t == PROP_PHONE;
}

/* source mappings, in file order: the first source mapping to its own property is
 * the model's primary source */
static void link_source_mappings(struct loader *ld, const struct link_set *ls)
{
	struct source_x **by_order = xmalloc((ls->ns ? ls->ns : 1) * sizeof(*by_order));
	memcpy(by_order, ls->srcs, ls->ns * sizeof(*by_order));
	qsort(by_order, ls->ns, sizeof(*by_order), cmp_source_order);
	for (size_t i = 0; i < ls->ns; i++) {
		struct source_x *x = by_order[i];
		struct property_x *px;
		const char *field;
		if (!x->mapping)
			continue;
		field = arena_printf(ld->a, "mapping.%s", x->mapping->key);
		px = ld_resolve(ld, &x->w, x->mapping, x->mapping->value->str, field, CLASS_PROPERTY, (void **)ls->props, ls->np);
		if (!px)
			continue;
		x->s.mapping_property = &px->p;
		if (px->p.source && x->s.model && px->p.source->model && px->p.source->model != x->s.model) {
			ld_err_other_model(ld, &x->w, x->mapping->value, field, "map a property of the source's own model",
					   "property", px->p.id, px->p.source->model, x->s.model);
			x->s.mapping_property = NULL;
			continue;
		}
		if (px->p.source != &x->s)
			continue;
		x->s.is_primary = true;
		if (!px->p.unique)
			ld_err(ld, &x->w, NPOS(x->mapping->value), field,
			       arena_printf(ld->a, "add \"unique\": true to property \"%s\"", px->p.id),
			       "property \"%s\" needs to be unique to be the primary key of source \"%s\"", px->p.id,
			       x->s.id);
		if (px->p.is_array)
			ld_err(ld, &x->w, NPOS(x->mapping->value), field, "remove \"isArray\" from the property",
			       "property \"%s\" cannot be an array: it is the primary key of source \"%s\"", px->p.id,
			       x->s.id);
		if (!px->type_bad && !pk_type_ok(px->p.type))
			ld_err(ld, &x->w, NPOS(x->mapping->value), field,
			       "use a property of type string, integer, email, url or phoneNumber",
			       "primary key property \"%s\" cannot be of type %s", px->p.id, prop_type_names[px->p.type]);
		if (x->s.model) {
			struct cfg_model *m = x->s.model;
			if (m->primary_source) {
				ld_err(ld, &x->w, NPOS(x->mapping->value), field,
				       arena_printf(ld->a, "map source \"%s\" to the primary key \"%s\" instead",
						    x->s.id, m->primary_key->id),
				       "model \"%s\" already has primary source \"%s\"; a model has exactly one",
				       m->id, m->primary_source->id);
				x->s.is_primary = false;
			} else {
				m->primary_source = &x->s;
				m->primary_key = &px->p;
				px->p.is_primary_key = true;
			}
		}
	}
	free(by_order);
}

/* A secondary source joins on the model's primary key, through a unique property. */
static void check_source_joins(struct loader *ld, const struct link_set *ls)
{
	for (size_t i = 0; i < ls->ns; i++) {
		struct source_x *x = ls->srcs[i];
		struct cfg_property *mp = x->s.mapping_property;
		struct cfg_model *m = x->s.model;
		if (!mp || x->s.is_primary || !m || mp->source == &x->s)
			continue;
		if (!m->primary_key)
			continue; /* reported on the model */
		if (mp == m->primary_key)
			continue;
		if (mp->unique)
			ld_err(ld, &x->w, NPOS(x->mapping->value), arena_printf(ld->a, "mapping.%s", x->mapping->key),
			       arena_printf(ld->a, "map a column holding \"%s\" values to \"%s\"", m->primary_key->id,
					    m->primary_key->id),
			       "joey does not support joining a source on unique property \"%s\" yet, only on the primary key \"%s\"",
			       mp->id, m->primary_key->id);
		else
			ld_err(ld, &x->w, NPOS(x->mapping->value), arena_printf(ld->a, "mapping.%s", x->mapping->key),
			       arena_printf(ld->a, "map the source to the primary key \"%s\"", m->primary_key->id),
			       "source mapping must point at a unique property, and \"%s\" is not unique", mp->id);
	}
}

/* Every model has a primary key (unless a broken mapping was reported). */
static void check_models_have_key(struct loader *ld, const struct link_set *ls)
{
	for (size_t i = 0; i < ls->nm; i++) {
		struct cfg_model *m = &ls->models[i]->m;
		bool unsure = false; /* a source of m has a broken mapping: already reported */
		for (size_t j = 0; j < ls->ns; j++)
			if (ls->srcs[j]->s.model == m && (!ls->srcs[j]->s.mapping_property || !ls->srcs[j]->s.mapping_property->source))
				unsure = true;
		if (!m->primary_source && !unsure)
			ld_err(ld, &ls->models[i]->w, m->pos.line, m->pos.col, NULL,
			       "give one source a \"mapping\" {\"<column>\": \"<property id>\"} pointing at a unique property read from that same source",
			       "no primary key: no source of model \"%s\" maps a column to a property read from that same source", m->id);
	}

}

/* Pass 3: each model's primary source and key from the source mappings. */
void ld_link_primary_keys(struct loader *ld, const struct link_set *ls)
{
	link_source_mappings(ld, ls);
	check_source_joins(ld, ls);
	check_models_have_key(ld, ls);
}

/* Pass 3, last: each model's properties, sources (primary first), groups and destinations. */
void ld_fill_model_arrays(struct loader *ld, const struct link_set *ls)
{
	for (size_t i = 0; i < ls->nm; i++) {
		struct cfg_model *m = &ls->models[i]->m;
		size_t k;
		for (size_t j = 0; j < ls->np; j++)
			if (ls->props[j]->p.source && ls->props[j]->p.source->model == m)
				m->n_properties++;
		m->properties = arena_alloc(ld->a, (m->n_properties ? m->n_properties : 1) * sizeof(void *));
		k = 0;
		for (size_t j = 0; j < ls->np; j++)
			if (ls->props[j]->p.source && ls->props[j]->p.source->model == m) {
				ls->props[j]->p.slot = k;
				m->properties[k++] = &ls->props[j]->p;
			}
		for (size_t j = 0; j < ls->ns; j++)
			if (ls->srcs[j]->s.model == m)
				m->n_sources++;
		m->sources = arena_alloc(ld->a, (m->n_sources ? m->n_sources : 1) * sizeof(void *));
		k = 0;
		if (m->primary_source)
			m->sources[k++] = m->primary_source;
		for (size_t j = 0; j < ls->ns; j++)
			if (ls->srcs[j]->s.model == m && &ls->srcs[j]->s != m->primary_source)
				m->sources[k++] = &ls->srcs[j]->s;
		for (size_t j = 0; j < ls->ng; j++)
			if (ls->groups[j]->g.model == m)
				m->n_groups++;
		m->groups = arena_alloc(ld->a, (m->n_groups ? m->n_groups : 1) * sizeof(void *));
		k = 0;
		for (size_t j = 0; j < ls->ng; j++)
			if (ls->groups[j]->g.model == m) {
				ls->groups[j]->g.index = k;
				m->groups[k++] = &ls->groups[j]->g;
			}
		for (size_t j = 0; j < ls->nd; j++)
			if (ls->dests[j]->d.model == m)
				m->n_destinations++;
		m->destinations = arena_alloc(ld->a, (m->n_destinations ? m->n_destinations : 1) * sizeof(void *));
		k = 0;
		for (size_t j = 0; j < ls->nd; j++)
			if (ls->dests[j]->d.model == m)
				m->destinations[k++] = &ls->dests[j]->d;
	}
}
