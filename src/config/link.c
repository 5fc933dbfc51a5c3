/*
 * link.c: pass 3 of the config loader: sorting each class by id (duplicates reported),
 * resolving references by id (with did-you-mean), and running the class files' link steps
 * in dependency order (ld_link_all). Called by config_load (config.c).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "config/names.h"
#include "config/config_internal.h"

void ld_add_broken(struct loader *ld, const char *id)
{
	if (!id)
		return;
	ALLOC_GROW(ld->broken_ids, ld->n_broken + 1, ld->alloc_broken);
	ld->broken_ids[ld->n_broken++] = id;
}

bool ld_is_broken(const struct loader *ld, const char *id)
{
	for (size_t i = 0; i < ld->n_broken; i++)
		if (!strcmp(ld->broken_ids[i], id))
			return true;
	return false;
}

struct sort_item {
	void *obj;
	const char *id;
	size_t order;
};

static int cmp_sort_item(const void *a, const void *b)
{
	const struct sort_item *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	if (c)
		return c;
	return (x->order > y->order) - (x->order < y->order);
}

/*
 * Where each class's wrapper keeps its where, its file order and its position (every
 * wrapper starts with its cfg struct, id first: config_internal.h).
 */
static const struct {
	size_t where, order, pos;
} wrapper_layout[CLASS__COUNT] = {
	[CLASS_APP] = { offsetof(struct app_x, w), offsetof(struct app_x, order), offsetof(struct app_x, a.pos) },
	[CLASS_MODEL] = { offsetof(struct model_x, w), offsetof(struct model_x, order), offsetof(struct model_x, m.pos) },
	[CLASS_SOURCE] = { offsetof(struct source_x, w), offsetof(struct source_x, order),
			   offsetof(struct source_x, s.pos) },
	[CLASS_PROPERTY] = { offsetof(struct property_x, w), offsetof(struct property_x, order),
			     offsetof(struct property_x, p.pos) },
	[CLASS_GROUP] = { offsetof(struct group_x, w), offsetof(struct group_x, order), offsetof(struct group_x, g.pos) },
	[CLASS_DESTINATION] = { offsetof(struct dest_x, w), offsetof(struct dest_x, order), offsetof(struct dest_x, d.pos) },
	[CLASS_SCHEDULE] = { offsetof(struct schedule_x, w), offsetof(struct schedule_x, order),
			     offsetof(struct schedule_x, s.pos) },
	[CLASS_ALERT] = { offsetof(struct alert_x, w), offsetof(struct alert_x, order), offsetof(struct alert_x, al.pos) },
};

static size_t order_of(enum cfg_class c, void *o)
{
	return *(const size_t *)((const char *)o + wrapper_layout[c].order);
}

static const struct where *where_of(enum cfg_class c, void *o)
{
	return (const struct where *)((const char *)o + wrapper_layout[c].where);
}

static const struct cfg_pos *pos_of(enum cfg_class c, void *o)
{
	return (const struct cfg_pos *)((const char *)o + wrapper_layout[c].pos);
}

/* Sort class c by id, report and drop duplicates; returns an arena array of wrappers. */
static void **dedupe(struct loader *ld, enum cfg_class c, size_t *n_out)
{
	size_t n = ld->n_objs[c], k = 0;
	struct sort_item *items = xmalloc((n ? n : 1) * sizeof(*items));
	void **out = arena_alloc(ld->a, (n ? n : 1) * sizeof(void *));

	for (size_t i = 0; i < n; i++) {
		items[i].obj = ld->objs[c][i];
		items[i].id = *(const char **)items[i].obj;
		items[i].order = order_of(c, items[i].obj);
	}
	qsort(items, n, sizeof(*items), cmp_sort_item);
	for (size_t i = 0; i < n; i++) {
		if (k && !strcmp(items[i].id, *(const char **)out[k - 1])) {
			const struct cfg_pos *first = pos_of(c, out[k - 1]);
			const struct cfg_pos *p = pos_of(c, items[i].obj);
			ld_err(ld, where_of(c, items[i].obj), p->line, p->col, "id",
			       arena_printf(ld->a, "the first %s \"%s\" is at %s:%d:%d; ids must be unique per class",
					    class_names[c], items[i].id, first->file, first->line, first->col),
			       "duplicate id \"%s\"", items[i].id);
			continue;
		}
		out[k++] = items[i].obj;
	}
	free(items);
	*n_out = k;
	return out;
}

static int cmp_id_key(const void *key, const void *elem)
{
	return strcmp((const char *)key, **(const char *const *const *)elem);
}

void *ld_find_id(void *const *arr, size_t n, const char *id)
{
	void *const *p;
	if (!id || !n)
		return NULL;
	p = bsearch(id, arr, n, sizeof(void *), cmp_id_key);
	return p ? *p : NULL;
}

/* Resolve a reference field: reports a dangling id (with did-you-mean). */
void *ld_resolve(struct loader *ld, const struct where *w, const struct j5_member *m,
		 const char *id, const char *field, enum cfg_class target, void *const *arr, size_t n)
{
	void *o;
	if (!id)
		return NULL;
	o = ld_find_id(arr, n, id);
	if (!o && !ld_is_broken(ld, id)) {
		int line = m ? m->value->line : 0, col = m ? m->value->col : 0;
		ld_err(ld, w, line, col, field, ld_did_you_mean_id(ld, id, arr, n), "unknown %s \"%s\"",
		       class_names[target], id);
	}
	return o;
}

/* Pass 3: de-duplicate every class, publish the arrays in cfg, then link in dependency order. */
void ld_link_all(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	struct link_set ls;

	ls.apps = (struct app_x **)dedupe(ld, CLASS_APP, &ls.na);
	ls.models = (struct model_x **)dedupe(ld, CLASS_MODEL, &ls.nm);
	ls.srcs = (struct source_x **)dedupe(ld, CLASS_SOURCE, &ls.ns);
	ls.props = (struct property_x **)dedupe(ld, CLASS_PROPERTY, &ls.np);
	ls.groups = (struct group_x **)dedupe(ld, CLASS_GROUP, &ls.ng);
	ls.dests = (struct dest_x **)dedupe(ld, CLASS_DESTINATION, &ls.nd);
	ls.scheds = (struct schedule_x **)dedupe(ld, CLASS_SCHEDULE, &ls.nsc);
	ls.alerts = (struct alert_x **)dedupe(ld, CLASS_ALERT, &ls.nal);

	/* the public arrays point at the cfg structs, which start the wrappers */
	cfg->apps = (struct cfg_app **)ls.apps;
	cfg->n_apps = ls.na;
	cfg->models = (struct cfg_model **)ls.models;
	cfg->n_models = ls.nm;
	cfg->sources = (struct cfg_source **)ls.srcs;
	cfg->n_sources = ls.ns;
	cfg->properties = (struct cfg_property **)ls.props;
	cfg->n_properties = ls.np;
	cfg->groups = (struct cfg_group **)ls.groups;
	cfg->n_groups = ls.ng;
	cfg->destinations = (struct cfg_destination **)ls.dests;
	cfg->n_destinations = ls.nd;
	cfg->schedules = (struct cfg_schedule **)ls.scheds;
	cfg->n_schedules = ls.nsc;
	cfg->alerts = (struct cfg_alert **)ls.alerts;
	cfg->n_alerts = ls.nal;

	ld_link_alerts(ld, &ls);
	ld_link_sources(ld, &ls);
	ld_link_properties(ld, &ls);
	ld_link_primary_keys(ld, &ls);
	ld_link_groups(ld, &ls);
	ld_link_destinations(ld, &ls);
	ld_link_schedules(ld, &ls);
	ld_fill_model_arrays(ld, &ls);
	ld_fill_source_properties(ld, &ls);
}

void ld_err_other_model(struct loader *ld, const struct where *w, const struct j5_node *at, const char *field,
			const char *hint, const char *what, const char *id, const struct cfg_model *own,
			const struct cfg_model *want)
{
	ld_err(ld, w, NPOS(at), field, hint, "%s \"%s\" belongs to model \"%s\", not \"%s\"", what, id, own->id,
	       want->id);
}
