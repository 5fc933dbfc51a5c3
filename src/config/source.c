/*
 * source.c: the Source class: reading a source object (type, options, its one mapping),
 * linking it to its app and model, and listing its properties (pass 3).
 */
#include <stdlib.h>
#include <string.h>

#include "config/names.h"
#include "config/config_internal.h"

static const struct field_spec source_fields[] = {
	{ "type", T_STR, 0, NULL, NULL },
	{ "appId", T_STR, 0, NULL, NULL },
	{ "modelId", T_STR, 0, NULL, NULL },
	{ "options", T_OBJ, 0, NULL, NULL },
	{ "mapping", T_OBJ, 0, NULL, NULL },
};

void ld_load_source(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order)
{
	struct source_x *x = arena_zalloc(ld->a, sizeof(*x));
	const struct j5_member *mm;
	const struct j5_member *tm;
	const char *type;
	x->w = *w;
	x->order = order;
	x->node = o;
	ld_read_head(ld, w, o, source_fields, ARRAY_SIZE(source_fields), "a Source", &x->s.id, &x->s.name, &x->s.pos);
	type = ld_req_str(ld, w, o, "type", &tm);
	x->s.type = type;
	ld_read_options(ld, w, ld_get_obj(o, "options"), "SOURCE",
			catalog_source(type) ? catalog_source(type)->options : NULL, &x->s.options);
	x->app_id = ld_req_str(ld, w, o, "appId", &x->app_m);
	x->model_id = ld_req_str(ld, w, o, "modelId", &x->model_m);
	if (type) {
		x->cat = catalog_source(type);
		if (ld_known_type(ld, w, tm, type, "source", x->cat, catalog_source_types)) {
			x->s.type = ld_renamed_type(ld, w, tm, type, "source", x->cat->renamed_to);
			x->s.is_query = x->cat->is_query;
			ld_check_options(ld, w, &x->s.options, x->cat->options,
					 arena_printf(ld->a, "a %s source", x->s.type), o->line, o->col);
			x->s.table = x->s.is_query ? NULL : cfg_options_str(&x->s.options, "table");
			if (x->s.table)
				ld_check_sql_name_option(ld, w, &x->s.options, "table");
			x->s.query = x->s.is_query ? cfg_options_str(&x->s.options, "query") : NULL;
		}
	}
	mm = j5_member(o, "mapping");
	if (!mm || mm->value->type == J5_NULL) {
		ld_err(ld, w, NPOS(o), NULL,
		       "add \"mapping\": {\"<source column>\": \"<property id>\"}",
		       "missing required field \"mapping\"");
	} else if (mm->value->type == J5_OBJECT) {
		if (mm->value->n != 1) {
			ld_err(ld, w, NPOS(mm->value), "mapping",
			       "map exactly one source column to a property: {\"<column>\": \"<property id>\"}",
			       "mapping must have exactly one entry, found %zu", mm->value->n);
		} else if (ld_id_str(ld, w, mm->value->members[0].value,
				     arena_printf(ld->a, "mapping.%s", mm->value->members[0].key), "property")) {
			x->mapping = &mm->value->members[0];
			x->s.mapping_column = x->mapping->key;
			ld_check_sql_name(ld, w, NPOS(mm->value), "mapping", x->s.mapping_column);
		}
	}
	ld_add_obj(ld, CLASS_SOURCE, x);
}

static int cmp_prop_ptr(const void *a, const void *b)
{
	return strcmp((*(struct cfg_property *const *)a)->id, (*(struct cfg_property *const *)b)->id);
}

/* Pass 3: sources -> app, model. */
void ld_link_sources(struct loader *ld, const struct link_set *ls)
{
	for (size_t i = 0; i < ls->ns; i++) {
		struct source_x *x = ls->srcs[i];
		struct app_x *ax = ld_resolve(ld, &x->w, x->app_m, x->app_id, "appId", CLASS_APP, (void **)ls->apps, ls->na);
		struct model_x *mx = ld_resolve(ld, &x->w, x->model_m, x->model_id, "modelId", CLASS_MODEL, (void **)ls->models, ls->nm);
		x->s.app = ax ? &ax->a : NULL;
		x->s.model = mx ? &mx->m : NULL;
		if (x->cat)
			ld_check_app_type(ld, &x->w, x->app_m, ax, "source", x->s.type, x->cat->app_type);
	}
}

/* Pass 3, last: each source's properties, sorted by id. */
void ld_fill_source_properties(struct loader *ld, const struct link_set *ls)
{
	for (size_t i = 0; i < ls->ns; i++) {
		struct cfg_source *s = &ls->srcs[i]->s;
		size_t k = 0;
		for (size_t j = 0; j < ls->np; j++)
			if (ls->props[j]->p.source == s)
				s->n_properties++;
		s->properties = arena_alloc(ld->a, (s->n_properties ? s->n_properties : 1) * sizeof(void *));
		for (size_t j = 0; j < ls->np; j++)
			if (ls->props[j]->p.source == s)
				s->properties[k++] = &ls->props[j]->p;
		qsort(s->properties, s->n_properties, sizeof(void *), cmp_prop_ptr);
	}
}
