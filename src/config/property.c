/*
 * property.c: the Property class: reading a property object and its filters, linking it
 * to its source (options by source kind, aggregation) and checking {{{ id }}} placeholders
 * of property queries. ld_read_filters serves schedules too.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config/names.h"
#include "config/config_internal.h"

static const struct field_spec property_fields[] = {
	{ "id", T_STR, 0, NULL, NULL },
	{ "class", T_STR, 0, NULL, NULL },
	{ "key", T_STR, 0, NULL, NULL },
	{ "name", T_STR, F_WARN, "\"name\" is a deprecated alias of \"key\"", "rename it to \"key\"" },
	{ "type", T_STR, 0, NULL, NULL },
	{ "sourceId", T_STR, 0, NULL, NULL },
	{ "unique", T_BOOL, 0, NULL, NULL },
	{ "isArray", T_BOOL, 0, NULL, NULL },
	{ "options", T_OBJ, 0, NULL, NULL },
	{ "filters", T_ARR, 0, NULL, NULL },
	{ "identifying", T_BOOL, F_WARN, "\"identifying\" was removed in Grouparoo 0.8 and is ignored",
	  "remove it" },
};
static const struct field_spec filter_fields[] = {
	{ "key", T_STR, 0, NULL, NULL },
	{ "op", T_STR, 0, NULL, NULL },
	{ "match", T_STR | T_NUM | T_BOOL | T_ARR, 0, NULL, NULL },
};

/* filters: [{key, op, match}] */
void ld_read_filters(struct loader *ld, const struct where *w, const struct j5_node *obj,
		     struct cfg_filter **out, size_t *n_out)
{
	const struct j5_member *fm = ld_get_m(obj, "filters", T_ARR);
	const struct j5_node *arr;
	size_t n = 0;

	*out = NULL;
	*n_out = 0;
	if (!fm)
		return;
	arr = fm->value;
	*out = arena_zalloc(ld->a, (arr->n ? arr->n : 1) * sizeof(**out));
	for (size_t i = 0; i < arr->n; i++) {
		const struct j5_node *f = arr->items[i];
		const char *prefix = arena_printf(ld->a, "filters[%zu]", i);
		struct cfg_filter *cf;
		int op;
		const struct j5_member *mm;

		if (f->type != J5_OBJECT) {
			ld_err(ld, w, NPOS(f), prefix, NULL, "expected an object, found %s", ld_found_text(f));
			continue;
		}
		ld_check_fields(ld, w, f, filter_fields, ARRAY_SIZE(filter_fields), prefix, "a filter");
		cf = &(*out)[n];
		cf->pos = (struct cfg_pos){ w->file, f->line, f->col };
		cf->key = ld_get_str(f, "key");
		if (!j5_member(f, "key"))
			ld_err(ld, w, NPOS(f), prefix, NULL, "missing required field \"key\"");
		else if (cf->key)
			ld_check_sql_name(ld, w, NPOS(j5_member(f, "key")->value),
					  arena_printf(ld->a, "%s.key", prefix), cf->key);
		if (!j5_member(f, "op")) {
			ld_err(ld, w, NPOS(f), prefix, NULL, "missing required field \"op\"");
			continue;
		}
		op = ld_get_enum(ld, w, f, "op", arena_printf(ld->a, "%s.op", prefix), filter_op_names,
				 FOP__COUNT, -1);
		if (op < 0)
			continue;
		cf->op = (enum filter_op)op;
		mm = j5_member(f, "match");
		if (op == FOP_EXISTS || op == FOP_NOT_EXISTS) {
			n++;
			continue;
		}
		if (!mm || mm->value->type == J5_NULL) {
			ld_err(ld, w, NPOS(f), prefix, NULL, "missing required field \"match\" for op \"%s\"",
			       filter_op_names[op]);
			continue;
		}
		if (mm->value->type == J5_ARRAY) {
			const struct j5_node *a = mm->value;
			if (op != FOP_IN) {
				ld_err(ld, w, NPOS(a), arena_printf(ld->a, "%s.match", prefix), NULL,
				       "only op \"in\" takes an array");
				continue;
			}
			cf->match_list = arena_zalloc(ld->a, (a->n ? a->n : 1) * sizeof(char *));
			for (size_t k = 0; k < a->n; k++) {
				const struct j5_node *e = a->items[k];
				if (e->type != J5_STRING && e->type != J5_NUMBER && e->type != J5_BOOL) {
					ld_err(ld, w, NPOS(e), arena_printf(ld->a, "%s.match[%zu]", prefix, k), NULL,
					       "expected a string, number or boolean, found %s", ld_found_text(e));
					continue;
				}
				cf->match_list[cf->n_match_list++] =
					e->type == J5_BOOL ? (e->b ? "true" : "false") : e->str;
			}
		} else if (mm->value->type == J5_STRING || mm->value->type == J5_NUMBER || mm->value->type == J5_BOOL) {
			const struct j5_node *v = mm->value;
			cf->match = v->type == J5_BOOL ? (v->b ? "true" : "false") : v->str;
			cf->match_is_number = v->type == J5_NUMBER;
			if (op == FOP_IN) {
				/* comma-separated list */
				size_t cnt = 1;
				for (const char *p = cf->match; *p; p++)
					cnt += *p == ',';
				cf->match_list = arena_zalloc(ld->a, cnt * sizeof(char *));
				const char *p = cf->match;
				for (;;) {
					const char *e = strchr(p, ',');
					size_t len = e ? (size_t)(e - p) : strlen(p);
					while (len && isspace((unsigned char)*p)) {
						p++;
						len--;
					}
					while (len && isspace((unsigned char)p[len - 1]))
						len--;
					cf->match_list[cf->n_match_list++] = arena_strndup(ld->a, p, len);
					if (!e)
						break;
					p = e + 1;
				}
			}
		} else {
			continue;
		}
		n++;
	}
	*n_out = n;
}

void ld_load_property(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order)
{
	struct property_x *x = arena_zalloc(ld->a, sizeof(*x));
	int t;
	x->w = *w;
	x->order = order;
	x->node = o;
	ld_check_fields(ld, w, o, property_fields, ARRAY_SIZE(property_fields), NULL, "a Property");
	x->p.id = w->id;
	x->p.key = ld_get_str(o, "key");
	if (!x->p.key)
		x->p.key = ld_get_str(o, "name");
	if (!x->p.key)
		x->p.key = w->id;
	x->p.pos = (struct cfg_pos){ w->file, o->line, o->col };
	x->source_id = ld_req_str(ld, w, o, "sourceId", &x->source_m);
	x->type_bad = true;
	if (ld_req_str(ld, w, o, "type", NULL)) {
		t = ld_get_enum(ld, w, o, "type", NULL, prop_type_names, PROP__COUNT, 0);
		x->p.type = t < 0 ? PROP_STRING : (enum prop_type)t;
		x->type_bad = t < 0;
	}
	x->p.unique = ld_get_bool(o, "unique", false);
	x->p.is_array = ld_get_bool(o, "isArray", false);
	if (x->p.unique && x->p.is_array)
		ld_err(ld, w, NPOS(j5_member(o, "isArray")->value), "isArray",
		       "remove \"isArray\" or \"unique\"", "unique properties cannot be arrays");
	/* the query sources' table lists every property option (none is secret) */
	ld_read_options(ld, w, ld_get_obj(o, "options"), "PROPERTY", catalog_property_options(true),
			&x->p.options);
	ld_read_filters(ld, w, o, &x->p.filters, &x->p.n_filters);
	ld_add_obj(ld, CLASS_PROPERTY, x);
}

/* Check {{{ id }}} placeholders of a property query against the model's properties. */
static void check_mustache(struct loader *ld, const struct where *w, const struct cfg_option *q,
			   struct cfg_model *model, struct property_x *const *props, size_t n_props)
{
	const char *p = q->str;
	while ((p = strstr(p, "{{"))) {
		const char *s = p + 2, *e;
		while (*s == '{')
			s++;
		e = strstr(s, "}}");
		if (!e)
			break;
		while (*s == ' ')
			s++;
		size_t len = (size_t)(e - s);
		while (len && s[len - 1] == ' ')
			len--;
		char *name = arena_strndup(ld->a, s, len);
		bool found = false;
		for (size_t i = 0; i < n_props && !found; i++)
			if (props[i]->p.source && props[i]->p.source->model == model &&
			    (!strcmp(props[i]->p.id, name) || !strcmp(props[i]->p.key, name)))
				found = true;
		if (!found)
			ld_err(ld, w, q->pos.line, q->pos.col, "options.query",
			       ld_did_you_mean_id(ld, name, (void *const *)props, n_props),
			       "query refers to unknown property \"%s\"", name);
		p = e + 2;
	}
}

/* Pass 3: properties -> source; options by source kind; queries' placeholders. */
void ld_link_properties(struct loader *ld, const struct link_set *ls)
{
	for (size_t i = 0; i < ls->np; i++) {
		struct property_x *x = ls->props[i];
		struct source_x *sx = ld_resolve(ld, &x->w, x->source_m, x->source_id, "sourceId", CLASS_SOURCE, (void **)ls->srcs, ls->ns);
		struct cfg_property *p = &x->p;
		int agg;
		if (!sx)
			continue;
		p->source = &sx->s;
		if (!sx->cat)
			continue;
		ld_check_options(ld, &x->w, &p->options, catalog_property_options(sx->s.is_query),
				 arena_printf(ld->a, "a property of a %s source", sx->s.type), x->node->line, x->node->col);
		p->column = cfg_options_str(&p->options, "column");
		p->sort_column = cfg_options_str(&p->options, "sortColumn");
		p->query = cfg_options_str(&p->options, "query");
		ld_check_sql_name_option(ld, &x->w, &p->options, "column");
		ld_check_sql_name_option(ld, &x->w, &p->options, "sortColumn");
		if (sx->s.is_query && !p->query && !p->column)
			ld_err(ld, &x->w, NPOS(x->node), "options",
			       "set \"query\" (a query returning one value per record) or \"column\" (a column of the source query)",
			       "a property of a query source needs option \"query\" or \"column\"");
		if (p->query && p->column)
			ld_err(ld, &x->w, NPOS(x->node), "options", "remove one of them",
			       "options \"query\" and \"column\" cannot be used together");
		agg = AGG_EXACT;
		{
			const struct cfg_option *ao = cfg_options_get(&p->options, "aggregationMethod");
			if (ao && ao->kind == OPT_STRING) {
				agg = names_find(agg_method_names, AGG__COUNT, ao->str);
				if (agg < 0) {
					ld_err(ld, &x->w, ao->pos.line, ao->pos.col, "options.aggregationMethod",
					       ld_did_you_mean(ld, ao->str, agg_method_names, AGG__COUNT),
					       "unknown aggregation method \"%s\"", ao->str);
					agg = AGG_EXACT;
				}
			}
			if ((agg == AGG_MOST_RECENT || agg == AGG_LEAST_RECENT) && !p->sort_column)
				ld_err(ld, &x->w, ao->pos.line, ao->pos.col, "options.sortColumn",
				       "add \"sortColumn\": the column that orders the rows (e.g. a timestamp)",
				       "aggregation method \"%s\" needs option \"sortColumn\"", agg_method_names[agg]);
		}
		p->agg = (enum agg_method)agg;
	}
	/* property queries may reference other properties of the model */
	for (size_t i = 0; i < ls->np; i++) {
		const struct cfg_option *q = cfg_options_get(&ls->props[i]->p.options, "query");
		if (q && q->kind == OPT_STRING && ls->props[i]->p.source && ls->props[i]->p.source->model)
			check_mustache(ld, &ls->props[i]->w, q, ls->props[i]->p.source->model, ls->props, ls->np);
	}
}

