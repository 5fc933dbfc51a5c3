/*
 * group.c: the Group class: reading a group object, and linking its model and rules
 * (properties, operators by property type, match values, relative dates) in pass 3.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/timeutil.h"
#include "config/names.h"
#include "config/config_internal.h"

static const struct field_spec group_fields[] = {
	{ "modelId", T_STR, 0, NULL, NULL },
	{ "rules", T_ARR, 0, NULL, NULL },
	{ "matchType", T_STR, 0, NULL, NULL },
	{ "type", T_STR, 0, NULL, NULL },
};
static const struct field_spec rule_fields[] = {
	{ "propertyId", T_STR, 0, NULL, NULL },
	{ "op", T_STR, 0, NULL, NULL },
	{ "match", T_STR | T_NUM | T_BOOL, 0, NULL, NULL },
	{ "relativeMatchNumber", T_NUM | T_STR, 0, NULL, NULL }, /* "8" too, as Grouparoo (read below) */
	{ "relativeMatchUnit", T_STR, 0, NULL, NULL },
	{ "relativeMatchDirection", T_STR, 0, NULL, NULL },
};

void ld_load_group(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order)
{
	struct group_x *x = arena_zalloc(ld->a, sizeof(*x));
	const char *gt;
	const struct j5_member *gm;
	static const char *const match_types[] = { "all", "any" };
	x->w = *w;
	x->order = order;
	x->node = o;
	ld_read_head(ld, w, o, group_fields, ARRAY_SIZE(group_fields), "a Group", &x->g.id, &x->g.name, &x->g.pos);
	x->model_id = ld_req_str(ld, w, o, "modelId", &x->model_m);
	gm = ld_get_m(o, "type", T_STR);
	gt = gm ? gm->value->str : NULL;
	if (gt && !strcmp(gt, "manual"))
		ld_err(ld, w, NPOS(gm->value), "type",
		       "express membership with rules (e.g. on a boolean property)",
		       "manual groups are not supported (Grouparoo removed them in 0.8)");
	else if (gt)
		ld_warn(ld, w, NPOS(gm->value), "type", "remove it",
			"group \"type\" is deprecated and ignored");
	if (ld_get_enum(ld, w, o, "matchType", NULL, match_types, 2, 0) == 1) {
		x->g.match_any = true;
		ld_warn(ld, w, NPOS(j5_member(o, "matchType")->value), "matchType",
			"Grouparoo ignored \"matchType\" in config files and always matched all rules",
			"joey honours \"matchType\": \"any\" (a record needs to match only one rule)");
	}
	ld_add_obj(ld, CLASS_GROUP, x);
}

static void parse_rule_match(struct loader *ld, const struct where *w, struct cfg_rule *r,
			     enum prop_type t, const struct j5_member *mm, const char *field)
{
	const struct j5_node *v = mm->value;
	const char *s = v->type == J5_BOOL ? (v->b ? "true" : "false") : v->str;
	r->match = s;
	if (!strcasecmp(s, "null")) {
		r->match_is_null = true;
		return;
	}
	switch (t) {
	case PROP_INTEGER:
	case PROP_FLOAT: {
		char *end;
		double d = strtod(s, &end);
		if (!*s || *end || !isfinite(d)) {
			ld_err(ld, w, NPOS(v), field, NULL, "match \"%s\" is not a valid %s", s, prop_type_names[t]);
			return;
		}
		r->match_num = d;
		r->match_ms = (int64_t)d;
		/* whole numbers compare as 64-bit integers (Grouparoo: CAST(rawValue AS bigint)),
		 * not as doubles, which are one above 2^53 */
		if (t == PROP_INTEGER) {
			errno = 0;
			long long i = strtoll(s, &end, 10);
			if (!*end && errno != ERANGE) {
				r->match_is_int = true;
				r->match_int = (int64_t)i;
			}
		}
		break;
	}
	case PROP_BOOLEAN:
		if (!strcasecmp(s, "true") || !strcmp(s, "1"))
			r->match_bool = true;
		else if (!strcasecmp(s, "false") || !strcmp(s, "0"))
			r->match_bool = false;
		else
			ld_err(ld, w, NPOS(v), field, "use true or false", "match \"%s\" is not a valid boolean", s);
		break;
	case PROP_DATE:
		if (!time_parse(s, strlen(s), &r->match_ms))
			ld_err(ld, w, NPOS(v), field, "write dates in ISO-8601, e.g. \"2021-03-04T05:06:07Z\"",
			       "match \"%s\" is not a valid date", s);
		r->match_num = (double)r->match_ms;
		break;
	default:
		break;
	}
}

/*
 * The property a rule reads (propertyId: a property of the group's model, or the
 * pseudo property grouparooId for the primary key): *t and *have_type get its type when
 * known. false: the rule is dropped (reported).
 */
static bool link_rule_property(struct loader *ld, struct group_x *gx, const struct j5_node *ro, struct cfg_rule *r,
			       const char *prefix, void *const *props, size_t n_props, enum prop_type *t,
			       bool *have_type)
{
	struct cfg_group *g = &gx->g;
	const struct where *w = &gx->w;
	const struct j5_member *pm = ld_get_m(ro, "propertyId", T_STR);

	if (!j5_member(ro, "propertyId")) {
		ld_err(ld, w, NPOS(ro), prefix, NULL, "missing required field \"propertyId\"");
		return false;
	}
	if (!pm)
		return false;
	if (!strcmp(pm->value->str, "grouparooCreatedAt")) {
		r->pseudo_created_at = true;
		ld_err(ld, w, NPOS(pm->value), arena_printf(ld->a, "%s.propertyId", prefix),
		       "joey does not track when records were created; use a date property from the source instead",
		       "\"grouparooCreatedAt\" is not supported by joey");
		return false;
	}
	if (!strcmp(pm->value->str, "grouparooId")) {
		if (g->model && g->model->primary_key) {
			*t = g->model->primary_key->type;
			*have_type = true;
		}
		return true;
	}
	struct property_x *px = ld_resolve(ld, w, pm, pm->value->str, arena_printf(ld->a, "%s.propertyId", prefix),
					   CLASS_PROPERTY, props, n_props);
	if (!px)
		return false;
	r->property = &px->p;
	if (g->model && px->p.source && px->p.source->model && px->p.source->model != g->model) {
		ld_err_other_model(ld, w, pm->value, arena_printf(ld->a, "%s.propertyId", prefix),
				   "a group can only use properties of its own model", "property", px->p.id,
				   px->p.source->model, g->model);
		return false;
	}
	*t = px->p.type;
	*have_type = !px->type_bad;
	return true;
}

/* A rule's operator (op), allowed for the property's type when known: its index, or -1 (reported). */
static int link_rule_op(struct loader *ld, const struct where *w, const struct j5_node *ro, struct cfg_rule *r,
			const char *prefix, const char *opf, enum prop_type t, bool have_type)
{
	const struct j5_member *om = ld_get_m(ro, "op", T_STR);
	int op;

	if (!j5_member(ro, "op")) {
		ld_err(ld, w, NPOS(ro), prefix, NULL, "missing required field \"op\"");
		return -1;
	}
	if (!om)
		return -1;
	op = names_find(rule_op_names, ROP__COUNT, om->value->str);
	if (op < 0) {
		ld_err(ld, w, NPOS(om->value), opf, ld_did_you_mean(ld, om->value->str, rule_op_names, ROP__COUNT),
		       "unknown operator \"%s\"", om->value->str);
		return -1;
	}
	r->op = (enum rule_op)op;
	if (have_type && !rule_op_allowed(r->op, t)) {
		struct strbuf sb = STRBUF_INIT;
		strbuf_addf(&sb, "operators for %s properties: ", prop_type_names[t]);
		for (int k = 0, first = 1; k < ROP__COUNT; k++)
			if (rule_op_allowed((enum rule_op)k, t)) {
				strbuf_addf(&sb, "%s%s", first ? "" : ", ", rule_op_names[k]);
				first = 0;
			}
		ld_err(ld, w, NPOS(om->value), opf, sb.buf, "operator \"%s\" cannot be used with a property of type %s",
		       rule_op_names[op], prop_type_names[t]);
		strbuf_release(&sb);
		return -1;
	}
	return op;
}

/* relative_gt / relative_lt: number, unit and direction. false: not usable (reported). */
static bool link_rule_relative(struct loader *ld, const struct where *w, const struct j5_node *ro, struct cfg_rule *r,
			       const char *prefix, int op)
{
	static const char *const dirs[] = { "add", "subtract" };
	const struct j5_member *nm = ld_get_m(ro, "relativeMatchNumber", T_NUM | T_STR);
	int u, d;
	bool ok = true;
	if (!j5_member(ro, "relativeMatchNumber")) {
		ld_err(ld, w, NPOS(ro), prefix, "add e.g. \"relativeMatchNumber\": 30",
		       "missing required field \"relativeMatchNumber\" for operator \"%s\"", rule_op_names[op]);
		ok = false;
	} else if (nm) {
		/* Grouparoo: 0 (falsy) is "either match or relativeMatch is required" */
		const char *f = arena_printf(ld->a, "%s.relativeMatchNumber", prefix);
		double num = nm->value->num;
		if (nm->value->type == J5_STRING) {
			/* Grouparoo stored "8" (its own tests' fixtures write it so) in an integer column as 8 */
			char *end;
			const char *s = nm->value->str;
			num = strtod(s, &end);
			if (!*s || *end || !isfinite(num)) {
				ld_err(ld, w, NPOS(nm->value), f, "give the number of units, e.g. \"relativeMatchNumber\": 30",
				       "relativeMatchNumber \"%s\" is not a number", s);
				return false;
			}
		}
		r->rel_number = num;
		if (!(num > 0)) {
			ld_err(ld, w, NPOS(nm->value), f, "give the number of units, e.g. \"relativeMatchNumber\": 30",
			       "relativeMatchNumber must be greater than 0");
			ok = false;
		} else if (num > REL_NUMBER_MAX) {
			ld_err(ld, w, NPOS(nm->value), f, NULL, "relativeMatchNumber must be at most %d",
			       REL_NUMBER_MAX);
			ok = false;
		}
	}
	if (!j5_member(ro, "relativeMatchUnit")) {
		ld_err(ld, w, NPOS(ro), prefix,
		       "add \"relativeMatchUnit\": \"days\", \"weeks\", \"months\", \"quarters\" or \"years\"",
		       "missing required field \"relativeMatchUnit\" for operator \"%s\"", rule_op_names[op]);
		ok = false;
	} else {
		u = ld_get_enum(ld, w, ro, "relativeMatchUnit", arena_printf(ld->a, "%s.relativeMatchUnit", prefix),
				rel_unit_names, 5, 0);
		if (u < 0)
			ok = false;
		else
			r->rel_unit = (enum rel_unit)u;
	}
	d = ld_get_enum(ld, w, ro, "relativeMatchDirection", arena_printf(ld->a, "%s.relativeMatchDirection", prefix),
			dirs, 2, r->op == ROP_RELATIVE_LT ? 0 : 1);
	if (d < 0) {
		ok = false;
	} else {
		int natural = r->op == ROP_RELATIVE_LT ? 0 : 1;
		const struct j5_member *dm = j5_member(ro, "relativeMatchDirection");
		if (d != natural && dm)
			ld_warn(ld, w, NPOS(dm->value), arena_printf(ld->a, "%s.relativeMatchDirection", prefix),
				"remove it: relative_gt counts back from now, relative_lt forward",
				"\"relativeMatchDirection\": \"%s\" is ignored for \"%s\", as Grouparoo ignored it", dirs[d],
				rule_op_names[op]);
		r->rel_add = natural == 0;
	}
	return ok;
}

/* Rule i of the group (ro) into r. true: the rule is kept; false: dropped (reported). */
static bool link_rule(struct loader *ld, struct group_x *gx, const struct j5_node *ro, size_t i, struct cfg_rule *r,
		      void *const *props, size_t n_props)
{
	const struct where *w = &gx->w;
	const char *prefix = arena_printf(ld->a, "rules[%zu]", i);
	const char *opf = arena_printf(ld->a, "rules[%zu].op", i);
	const struct j5_member *mm;
	enum prop_type t = PROP_STRING;
	bool have_type = false;
	int op;

	if (ro->type != J5_OBJECT) {
		ld_err(ld, w, NPOS(ro), prefix, NULL, "expected an object, found %s", ld_found_text(ro));
		return false;
	}
	r->pos = (struct cfg_pos){ w->file, ro->line, ro->col };
	ld_check_fields(ld, w, ro, rule_fields, ARRAY_SIZE(rule_fields), prefix, "a group rule");
	if (!link_rule_property(ld, gx, ro, r, prefix, props, n_props, &t, &have_type))
		return false;
	op = link_rule_op(ld, w, ro, r, prefix, opf, t, have_type);
	if (op < 0)
		return false;
	mm = ld_get_m(ro, "match", T_STR | T_NUM | T_BOOL);
	if (r->op == ROP_EXISTS || r->op == ROP_NOT_EXISTS)
		return true;
	if (r->op == ROP_RELATIVE_GT || r->op == ROP_RELATIVE_LT)
		return link_rule_relative(ld, w, ro, r, prefix, op);
	if (!mm) {
		if (!j5_member(ro, "match") || j5_member(ro, "match")->value->type == J5_NULL)
			ld_err(ld, w, NPOS(ro), prefix, NULL, "missing required field \"match\" for operator \"%s\"",
			       rule_op_names[op]);
		return false;
	}
	if (have_type)
		parse_rule_match(ld, w, r, t, mm, arena_printf(ld->a, "%s.match", prefix));
	else
		r->match = mm->value->type == J5_BOOL ? (mm->value->b ? "true" : "false") : mm->value->str;
	return true;
}

static void link_group_rules(struct loader *ld, struct group_x *gx, void *const *props, size_t n_props)
{
	struct cfg_group *g = &gx->g;
	const struct where *w = &gx->w;
	const struct j5_member *rm = ld_get_m(gx->node, "rules", T_ARR);
	const struct j5_node *arr;
	size_t n = 0;

	g->rules = NULL;
	g->n_rules = 0;
	if (!rm) {
		if (!j5_member(gx->node, "rules"))
			ld_warn(ld, w, NPOS(gx->node), NULL, "add \"rules\"", "group has no rules and so no members");
		return;
	}
	arr = rm->value;
	if (arr->n == 0)
		ld_warn(ld, w, NPOS(arr), "rules", "add rules", "group has no rules and so no members");
	if (arr->n > MAX_RULES) {
		ld_err(ld, w, NPOS(arr), "rules", "split the group or simplify its rules",
		       "too many group rules: %zu (at most %d)", arr->n, MAX_RULES);
		return;
	}
	g->rules = arena_zalloc(ld->a, (arr->n ? arr->n : 1) * sizeof(*g->rules));
	for (size_t i = 0; i < arr->n; i++)
		if (link_rule(ld, gx, arr->items[i], i, &g->rules[n], props, n_props))
			n++;
	g->n_rules = n;
}

/* Pass 3: groups -> model, then their rules. */
void ld_link_groups(struct loader *ld, const struct link_set *ls)
{
	for (size_t i = 0; i < ls->ng; i++) {
		struct model_x *mx = ld_resolve(ld, &ls->groups[i]->w, ls->groups[i]->model_m, ls->groups[i]->model_id, "modelId",
						CLASS_MODEL, (void **)ls->models, ls->nm);
		ls->groups[i]->g.model = mx ? &mx->m : NULL;
	}
	for (size_t i = 0; i < ls->ng; i++)
		link_group_rules(ld, ls->groups[i], (void **)ls->props, ls->np);

}

