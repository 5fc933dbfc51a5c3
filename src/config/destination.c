/*
 * destination.c: the Destination class: reading a destination object (sync mode, collection,
 * options such as maxDeletePercent, partitions and the sync log), and linking its app,
 * model, group, Braze field mapping and group memberships in pass 3.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/names.h"
#include "config/config_internal.h"

static const struct field_spec dest_fields[] = {
	{ "type", T_STR, 0, NULL, NULL },
	{ "appId", T_STR, 0, NULL, NULL },
	{ "modelId", T_STR, 0, NULL, NULL },
	{ "syncMode", T_STR, 0, NULL, NULL },
	{ "collection", T_STR, 0, NULL, NULL },
	{ "groupId", T_STR, 0, NULL, NULL },
	{ "options", T_OBJ, 0, NULL, NULL },
	{ "mapping", T_OBJ, 0, NULL, NULL },
	{ "destinationGroupMemberships", T_OBJ, 0, NULL, NULL },
	{ "subscriptionGroupNames", T_OBJ, 0, NULL, NULL },
};

/*
 * options.enrichRecheckHours of d (an enrich destination): hours before a user Braze
 * did not have is looked up again, 0 to 8,760 (a year); 0 looks up on every run.
 */
static void check_enrich_recheck(struct loader *ld, const struct where *w, struct cfg_destination *d)
{
	const struct cfg_option *rh = cfg_options_get(&d->options, "enrichRecheckHours");
	if (!rh || rh->kind != OPT_NUMBER)
		return;
	if (!(rh->num >= 0 && rh->num <= 8760)) {
		ld_err(ld, w, rh->pos.line, rh->pos.col, "options.enrichRecheckHours",
		       "hours before a user Braze did not have is looked up again; 0 looks up on every run",
		       "enrichRecheckHours must be between 0 and 8760 (a year), found %s", config_option_display(rh));
		return;
	}
	d->enrich_recheck_ms = (int64_t)(rh->num * 3600 * 1000 + 0.5);
	if (d->sync_mode != SYNC_ENRICH)
		ld_warn(ld, w, rh->pos.line, rh->pos.col, "options.enrichRecheckHours",
			"remove it, or set \"syncMode\": \"enrich\"",
			"enrichRecheckHours has no effect: only enrich destinations look users up");
}

/*
 * A destination's sync log options (engine/synclog.h): the prefix, the retention; the
 * app is linked later (link_sync_log).
 */
static void check_sync_log_options(struct loader *ld, const struct where *w, struct cfg_destination *d)
{
	static const char *const dependent[] = { "syncLogTablePrefix", "syncLogRetentionDays", "syncLogAllowSourceApp" };
	const struct cfg_option *app = cfg_options_get(&d->options, "syncLogAppId");
	const struct cfg_option *px = cfg_options_get(&d->options, "syncLogTablePrefix");
	const struct cfg_option *rd = cfg_options_get(&d->options, "syncLogRetentionDays");

	d->sync_log_prefix = "joey_";
	d->sync_log_retention_days = 90;
	for (size_t i = 0; !app && i < ARRAY_SIZE(dependent); i++) {
		const struct cfg_option *o = cfg_options_get(&d->options, dependent[i]);
		if (o)
			ld_err(ld, w, o->pos.line, o->pos.col, arena_printf(ld->a, "options.%s", dependent[i]),
			       "add \"syncLogAppId\": the id of the app (postgres, mysql or sqlite) to write the log to",
			       "option \"%s\" needs \"syncLogAppId\"", dependent[i]);
	}
	if (px && px->kind == OPT_STRING && px->str) {
		size_t n = strlen(px->str);
		bool ok = n <= 40;
		for (size_t i = 0; ok && i < n; i++) {
			char c = px->str[i];
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i && c >= '0' && c <= '9');
		}
		if (ok)
			d->sync_log_prefix = px->str;
		else
			ld_err(ld, w, px->pos.line, px->pos.col, "options.syncLogTablePrefix",
			       "use letters, digits and '_' (not first), at most 40 characters, e.g. \"joey_\"",
			       "syncLogTablePrefix must be a table name prefix, found \"%s\"", config_option_display(px));
	}
	if (rd && rd->kind == OPT_NUMBER) {
		if (rd->num < 0 || rd->num > 36500 || rd->num != (double)(int)rd->num)
			ld_err(ld, w, rd->pos.line, rd->pos.col, "options.syncLogRetentionDays",
			       "days the log keeps rows; 0 keeps every row",
			       "syncLogRetentionDays must be a whole number from 0 to 36500, found %s",
			       config_option_display(rd));
		else
			d->sync_log_retention_days = (int)rd->num;
	}
}

void ld_load_destination(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order)
{
	struct dest_x *x = arena_zalloc(ld->a, sizeof(*x));
	const struct j5_member *tm;
	const char *type;
	const struct catalog_destination *cat = NULL;
	int v;
	x->w = *w;
	x->order = order;
	x->node = o;
	ld_read_head(ld, w, o, dest_fields, ARRAY_SIZE(dest_fields), "a Destination", &x->d.id, &x->d.name, &x->d.pos);
	type = ld_req_str(ld, w, o, "type", &tm);
	x->d.type = type;
	if (ld_skip_export_only(ld, w, tm, type, "destination is"))
		return;
	ld_read_options(ld, w, ld_get_obj(o, "options"), "DESTINATION",
			catalog_destination(type) ? catalog_destination(type)->options : NULL, &x->d.options);
	x->app_id = ld_req_str(ld, w, o, "appId", &x->app_m);
	x->model_id = ld_req_str(ld, w, o, "modelId", &x->model_m);
	if (type) {
		cat = catalog_destination(type);
		if (ld_known_type(ld, w, tm, type, "destination", cat, catalog_destination_types))
			x->d.type = ld_renamed_type(ld, w, tm, type, "destination", cat->renamed_to);
	}
	x->d.max_delete_percent = 10;
	x->d.partitions = 1;
	x->d.enrich_recheck_ms = (int64_t)CFG_ENRICH_RECHECK_HOURS * 3600 * 1000;
	if (cat) {
		const struct cfg_option *mdp;
		ld_check_options(ld, w, &x->d.options, cat->options,
				 arena_printf(ld->a, "a %s destination", x->d.type), o->line, o->col);
		mdp = cfg_options_get(&x->d.options, "maxDeletePercent");
		if (mdp && mdp->kind == OPT_NUMBER) {
			if (mdp->num < 0 || mdp->num > 100)
				ld_err(ld, w, mdp->pos.line, mdp->pos.col, "options.maxDeletePercent", NULL,
				       "maxDeletePercent must be between 0 and 100, found %s", config_option_display(mdp));
			else
				x->d.max_delete_percent = mdp->num;
		}
		const struct cfg_option *dm = cfg_options_get(&x->d.options, "diff");
		if (dm && dm->kind == OPT_STRING && dm->str && strcmp(dm->str, "stream") &&
		    strcmp(dm->str, "warehouse") && strcmp(dm->str, "auto"))
			ld_err(ld, w, dm->pos.line, dm->pos.col, "options.diff",
			       "\"stream\" (joey compares), \"warehouse\" (the database compares) or \"auto\"",
			       "diff must be \"stream\", \"warehouse\" or \"auto\", found \"%s\"", config_option_display(dm));
		const struct cfg_option *np = cfg_options_get(&x->d.options, "partitions");
		if (np && np->kind == OPT_NUMBER) {
			if (np->num < 1 || np->num > 1024 || np->num != (double)(int)np->num)
				ld_err(ld, w, np->pos.line, np->pos.col, "options.partitions",
				       "workers split a run of the destination into this many key ranges",
				       "partitions must be a whole number from 1 to 1024, found %s", config_option_display(np));
			else
				x->d.partitions = (int)np->num;
		}
		check_sync_log_options(ld, w, &x->d);
	}
	if (!j5_member(o, "syncMode") || j5_member(o, "syncMode")->value->type == J5_NULL)
		ld_warn(ld, w, NPOS(o), "syncMode", "add \"syncMode\": \"sync\", \"additive\" or \"enrich\"",
			"no syncMode given, using \"sync\" (create, update and delete)");
	v = ld_get_enum(ld, w, o, "syncMode", NULL, sync_mode_names, 3, 0);
	x->d.sync_mode = v < 0 ? SYNC_SYNC : (enum sync_mode)v;
	if (cat)
		check_enrich_recheck(ld, w, &x->d);
	v = ld_get_enum(ld, w, o, "collection", NULL, collection_names, 3, 0);
	x->d.collection = v < 0 ? COLL_NONE : (enum collection)v;
	x->collection_bad = v < 0;
	if (v == 0)
		ld_warn(ld, w, NPOS(o), "collection",
			"set \"collection\" to \"model\" or \"group\" to export records",
			"collection is \"none\": this destination exports nothing (and removes records it exported before)");
	x->group_id = ld_get_str(o, "groupId");
	x->group_m = ld_get_m(o, "groupId", T_STR);
	ld_add_obj(ld, CLASS_DESTINATION, x);
}

static int cmp_mapping(const void *a, const void *b)
{
	return strcmp(((const struct cfg_mapping *)a)->remote, ((const struct cfg_mapping *)b)->remote);
}

static int cmp_group_map(const void *a, const void *b)
{
	return strcmp(((const struct cfg_group_map *)a)->remote, ((const struct cfg_group_map *)b)->remote);
}

static bool field_accepts(enum prop_type field, enum prop_type prop)
{
	switch (field) {
	case PROP_STRING: return true;
	case PROP_EMAIL: return prop == PROP_EMAIL || prop == PROP_STRING;
	case PROP_PHONE: return prop == PROP_PHONE || prop == PROP_STRING;
	case PROP_BOOLEAN: return prop == PROP_BOOLEAN || prop == PROP_STRING;
	default: return field == prop;
	}
}

/* A Braze subscription group id: a UUID, 8-4-4-4-12 hexadecimal digits (as dest_is_subscription_group). */
static bool is_uuid(const char *s, size_t len)
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* Shaped like a UUID with a typo (hexadecimal digits and dashes, about its length): a
 * name that would otherwise go to the groups attribute instead of a subscription group. */
static bool near_uuid(const char *s, size_t len)
{
	size_t dashes = 0;
	if (len < 30 || len > 42 || is_uuid(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '-')
			dashes++;
		else if (!isxdigit((unsigned char)s[i]))
			return false;
	}
	return dashes >= 3;
}

/* collection "group": groupId names a group of the destination's model; else no groupId. */
static void link_dest_group(struct loader *ld, struct dest_x *dx, void *const *groups, size_t n_groups)
{
	struct cfg_destination *d = &dx->d;
	const struct where *w = &dx->w;

	if (d->collection == COLL_GROUP) {
		if (!j5_member(dx->node, "groupId"))
			ld_err(ld, w, NPOS(dx->node), NULL, "add \"groupId\" or use \"collection\": \"model\"",
			       "missing required field \"groupId\" for collection \"group\"");
		struct group_x *gx = ld_resolve(ld, w, dx->group_m, dx->group_id, "groupId", CLASS_GROUP, groups, n_groups);
		if (gx) {
			d->group = &gx->g;
			if (d->model && gx->g.model && gx->g.model != d->model) {
				ld_err_other_model(ld, w, dx->group_m->value, "groupId", NULL, "group", gx->g.id, gx->g.model,
						   d->model);
				d->group = NULL;
			}
		}
	} else if (dx->group_m && !dx->collection_bad) {
		ld_err(ld, w, NPOS(dx->group_m->value), "groupId", "set \"collection\": \"group\" or remove \"groupId\"",
		       "groupId is only used with collection \"group\", not \"%s\"", collection_name(d->collection));
	}
}

/*
 * Entry i of "mapping" (Braze field -> property id) into d->mapping: the name Braze
 * accepts, the property of the model, the field's type. *have_external is set when the
 * entry is external_id (even if its property is unknown).
 */
static void link_dest_mapping_entry(struct loader *ld, struct dest_x *dx, const struct j5_node *mo, size_t i,
				    void *const *props, size_t n_props, bool *have_external)
{
	struct cfg_destination *d = &dx->d;
	const struct where *w = &dx->w;
	const struct j5_member *e = &mo->members[i];
	const char *field = arena_printf(ld->a, "mapping.%.255s", e->key);
	const struct catalog_field *cf;
	struct property_x *px;
	bool dup = false;

	for (size_t j = 0; j < i && mo->n <= 256; j++)
		if (!strcmp(mo->members[j].key, e->key))
			dup = true;
	if (dup) {
		ld_err(ld, w, e->line, e->col, field, "remove one of them", "duplicate mapping for \"%s\"", e->key);
		return;
	}
	if (e->key[0] == '$' || e->key_len == 0) {
		ld_err(ld, w, e->line, e->col, field, "Braze reserves names starting with \"$\"",
		       "invalid Braze field name \"%s\"", e->key);
		return;
	}
	if (e->key_len > 255) {
		ld_err(ld, w, e->line, e->col, field, NULL, "Braze field name is longer than 255 characters");
		return;
	}
	/*
	 * Names that are not attributes in a /users/track object: joey writes groups (from
	 * destinationGroupMemberships, as Grouparoo did) and _update_existing_only itself,
	 * the others are Braze's flags, identifiers (one per object: external_id) and its
	 * subscription array; a copy from data made a duplicate key or a rejected object.
	 */
	static const char *const reserved[] = { "groups", "subscription_groups", "_update_existing_only",
						"_merge_objects", "push_token_import", "braze_id", "user_alias" };
	for (size_t r = 0; r < sizeof(reserved) / sizeof(reserved[0]); r++)
		if (!strcmp(e->key, reserved[r])) {
			ld_err(ld, w, e->line, e->col, field,
			       !strcmp(e->key, "groups") ? "joey sends groups from destinationGroupMemberships; "
							 "map the property under another name"
							 : "map the property under another name",
			       "Braze field \"%s\" is not an attribute joey can send from a property", e->key);
			return;
		}
	if (!ld_id_str(ld, w, e->value, field, "property"))
		return;
	px = ld_resolve(ld, w, e, e->value->str, field, CLASS_PROPERTY, props, n_props);
	if (!strcmp(e->key, "external_id"))
		*have_external = true;
	if (!px)
		return;
	if (d->model && px->p.source && px->p.source->model && px->p.source->model != d->model) {
		ld_err_other_model(ld, w, e->value, field, "a destination can only export properties of its model",
				   "property", px->p.id, px->p.source->model, d->model);
		return;
	}
	cf = catalog_braze_field(e->key);
	if (!strcmp(e->key, "external_id")) {
		if (d->model && d->model->primary_key && &px->p != d->model->primary_key)
			ld_err(ld, w, NPOS(e->value), field,
			       arena_printf(ld->a, "map \"external_id\" to \"%s\"", d->model->primary_key->id),
			       "external_id must map to the primary key property \"%s\" of model \"%s\", not \"%s\"",
			       d->model->primary_key->id, d->model->id, px->p.id);
	} else if (cf && !px->type_bad) {
		if (!field_accepts(cf->type, px->p.type))
			ld_err(ld, w, NPOS(e->value), field,
			       arena_printf(ld->a, "map a property of type %s%s", prop_type_names[cf->type],
					    cf->type == PROP_STRING ? "" : " or string"),
			       "Braze field \"%s\" takes %s values, but property \"%s\" is of type %s", e->key,
			       prop_type_names[cf->type], px->p.id, prop_type_names[px->p.type]);
		else if (px->p.is_array)
			ld_err(ld, w, NPOS(e->value), field, "map it to a custom attribute (any other field name) instead",
			       "Braze field \"%s\" takes a single value, but property \"%s\" is an array", e->key,
			       px->p.id);
	}
	d->mapping[d->n_mapping++] = (struct cfg_mapping){ e->key, &px->p, { w->file, e->line, e->col } };
}

/* "mapping": every entry, sorted by Braze field; Braze needs external_id. */
static void link_dest_mapping(struct loader *ld, struct dest_x *dx, void *const *props, size_t n_props)
{
	struct cfg_destination *d = &dx->d;
	const struct where *w = &dx->w;
	const struct j5_member *mm = ld_get_m(dx->node, "mapping", T_OBJ);
	bool have_external = false;

	if (!mm) {
		if (!j5_member(dx->node, "mapping"))
			ld_err(ld, w, NPOS(dx->node), NULL, "add \"mapping\": {\"external_id\": \"<primary key property id>\"}",
			       "missing required field \"mapping\"");
	} else {
		const struct j5_node *mo = mm->value;
		d->mapping = arena_zalloc(ld->a, (mo->n ? mo->n : 1) * sizeof(*d->mapping));
		for (size_t i = 0; i < mo->n; i++)
			link_dest_mapping_entry(ld, dx, mo, i, props, n_props, &have_external);
		qsort(d->mapping, d->n_mapping, sizeof(*d->mapping), cmp_mapping);
	}
	/* an unknown destination type is reported as such, not as a Braze mapping problem */
	if (mm && !have_external && d->type && catalog_destination(d->type)) {
		const char *h = d->model && d->model->primary_key
					? arena_printf(ld->a, "add \"external_id\": \"%s\" to \"mapping\"", d->model->primary_key->id)
					: "add \"external_id\": \"<primary key property id>\" to \"mapping\"";
		ld_err(ld, w, NPOS(mm->value), "mapping", h, "Braze requires a mapping for \"external_id\"");
	}
}

/*
 * Two "groups" values for one group (d->group_maps in file order): Grouparoo's loader
 * keyed the memberships by group id, so only the last name of a group was ever sent;
 * joey sends every one. Warned at each earlier name.
 */
static void warn_group_named_twice(struct loader *ld, struct dest_x *dx)
{
	const struct cfg_destination *d = &dx->d;

	for (size_t i = 0; i < d->n_group_maps; i++) {
		const struct cfg_group_map *a = &d->group_maps[i];
		const struct cfg_group_map *last = NULL;
		if (is_uuid(a->remote, strlen(a->remote)))
			continue;
		for (size_t k = i + 1; k < d->n_group_maps; k++)
			if (d->group_maps[k].group == a->group &&
			    !is_uuid(d->group_maps[k].remote, strlen(d->group_maps[k].remote)))
				last = &d->group_maps[k];
		if (!last)
			continue;
		ld_warn(ld, &dx->w, a->pos.line, a->pos.col,
			arena_printf(ld->a, "destinationGroupMemberships.%.255s", a->remote),
			"keep one name per group, unless members should carry both",
			"group \"%s\" is also named \"%.64s\": joey adds both values to \"groups\", "
			"Grouparoo sent only the last name",
			a->group->id, last->remote);
	}
}

/* "destinationGroupMemberships": Braze group name (or subscription group id) -> group id. */
static void link_dest_group_maps(struct loader *ld, struct dest_x *dx, void *const *groups, size_t n_groups)
{
	struct cfg_destination *d = &dx->d;
	const struct where *w = &dx->w;
	const struct j5_member *gm = ld_get_m(dx->node, "destinationGroupMemberships", T_OBJ);

	if (!gm)
		return;
	const struct j5_node *go = gm->value;
	d->group_maps = arena_zalloc(ld->a, (go->n ? go->n : 1) * sizeof(*d->group_maps));
	for (size_t i = 0; i < go->n; i++) {
		const struct j5_member *e = &go->members[i];
		const char *field = arena_printf(ld->a, "destinationGroupMemberships.%.255s", e->key);
		struct group_x *gx;
		if (e->key_len == 0) {
			ld_err(ld, w, e->line, e->col, field, NULL, "empty remote group name");
			continue;
		}
		if (near_uuid(e->key, e->key_len)) {
			ld_err(ld, w, e->line, e->col, field,
			       "a subscription group ID has 36 characters, 8-4-4-4-12 hexadecimal digits: copy it again "
			       "from Braze (Audience > Subscriptions)",
			       "\"%.64s\" looks like a Braze subscription group ID but is not one; it would become a value "
			       "of the \"groups\" attribute",
			       e->key);
			continue;
		}
		if (!ld_id_str(ld, w, e->value, field, "group"))
			continue;
		gx = ld_resolve(ld, w, e, e->value->str, field, CLASS_GROUP, groups, n_groups);
		if (!gx)
			continue;
		if (d->model && gx->g.model && gx->g.model != d->model) {
			ld_err_other_model(ld, w, e->value, field, NULL, "group", gx->g.id, gx->g.model, d->model);
			continue;
		}
		d->group_maps[d->n_group_maps++] = (struct cfg_group_map){ e->key, &gx->g, { w->file, e->line, e->col },
									   NULL };
	}
	warn_group_named_twice(ld, dx);
	qsort(d->group_maps, d->n_group_maps, sizeof(*d->group_maps), cmp_group_map);
}

/* joey's own: names of the subscription groups, for people (the UI, the plan) */
static void link_dest_subscription_names(struct loader *ld, struct dest_x *dx)
{
	struct cfg_destination *d = &dx->d;
	const struct where *w = &dx->w;
	const struct j5_member *sn = ld_get_m(dx->node, "subscriptionGroupNames", T_OBJ);

	for (size_t i = 0; sn && i < sn->value->n; i++) {
		const struct j5_member *e = &sn->value->members[i];
		const char *field = arena_printf(ld->a, "subscriptionGroupNames.%.255s", e->key);
		if (!is_uuid(e->key, e->key_len)) {
			ld_err(ld, w, e->line, e->col, field,
			       "the keys are subscription group IDs: 36 characters, 8-4-4-4-12 hexadecimal digits",
			       "\"%.64s\" is not a Braze subscription group ID", e->key);
			continue;
		}
		if (e->value->type != J5_STRING || !e->value->str[0]) {
			ld_err(ld, w, NPOS(e->value), field, NULL, "expected the subscription group's name (a string), found %s",
			       ld_found_text(e->value));
			continue;
		}
		bool used = false;
		for (size_t k = 0; k < d->n_group_maps; k++)
			if (!strcasecmp(d->group_maps[k].remote, e->key)) {
				d->group_maps[k].label = e->value->str;
				used = true;
			}
		if (!used)
			ld_warn(ld, w, e->line, e->col, field, "map a group to it in \"destinationGroupMemberships\", or remove the name",
				"subscription group \"%.64s\" has a name but no group is mapped to it", e->key);
	}
}

static void link_destination(struct loader *ld, struct dest_x *dx, void *const *props, size_t n_props,
			     void *const *groups, size_t n_groups)
{
	link_dest_group(ld, dx, groups, n_groups);
	link_dest_mapping(ld, dx, props, n_props);
	link_dest_group_maps(ld, dx, groups, n_groups);
	link_dest_subscription_names(ld, dx);
}

/*
 * options.syncLogAppId: an app joey can write a log to (postgres, mysql, sqlite), not
 * one a source reads from unless syncLogAllowSourceApp says so (sources' sessions are
 * read-only and should use a user that may only read; the log needs one that writes).
 */
static void link_sync_log(struct loader *ld, struct dest_x *x, struct app_x **apps, size_t na,
			  struct source_x **srcs, size_t ns)
{
	static const char *const types[] = { "postgres", "mysql", "sqlite" };
	const struct cfg_option *o = cfg_options_get(&x->d.options, "syncLogAppId");
	const struct cfg_option *allow = cfg_options_get(&x->d.options, "syncLogAllowSourceApp");
	bool ok = false;
	if (!o || o->kind != OPT_STRING || !o->str)
		return;
	struct app_x *ax = ld_find_id((void *const *)apps, na, o->str);
	if (!ax) {
		ld_err(ld, &x->w, o->pos.line, o->pos.col, "options.syncLogAppId",
		       ld_did_you_mean_id(ld, o->str, (void *const *)apps, na), "unknown App \"%s\"", o->str);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		ok |= ax->a.type && !strcmp(ax->a.type, types[i]);
	if (!ok) {
		ld_err(ld, &x->w, o->pos.line, o->pos.col, "options.syncLogAppId",
		       "name an app of type postgres, mysql or sqlite that joey may write to",
		       "app \"%s\" of type \"%s\" cannot hold a sync log", ax->a.id, ax->a.type ? ax->a.type : "?");
		return;
	}
	for (size_t i = 0; i < ns; i++) {
		if (srcs[i]->s.app != &ax->a || (allow && allow->kind == OPT_BOOL && allow->b))
			continue;
		ld_err(ld, &x->w, o->pos.line, o->pos.col, "options.syncLogAppId",
		       "give the log an app of its own (it may name the same database, with a user that may write), "
		       "or set \"syncLogAllowSourceApp\": true",
		       "app \"%s\" is the app source \"%s\" reads from; the sync log needs a separate, writable app",
		       ax->a.id, srcs[i]->s.id);
		return;
	}
	x->d.sync_log_app = &ax->a;
}

/* Pass 3: destinations -> app, model, group, mapping, sync log. */
void ld_link_destinations(struct loader *ld, const struct link_set *ls)
{
	for (size_t i = 0; i < ls->nd; i++) {
		struct dest_x *x = ls->dests[i];
		struct app_x *ax = ld_resolve(ld, &x->w, x->app_m, x->app_id, "appId", CLASS_APP, (void **)ls->apps, ls->na);
		struct model_x *mx = ld_resolve(ld, &x->w, x->model_m, x->model_id, "modelId", CLASS_MODEL, (void **)ls->models, ls->nm);
		const struct catalog_destination *cat = catalog_destination(x->d.type);
		x->d.app = ax ? &ax->a : NULL;
		x->d.model = mx ? &mx->m : NULL;
		if (cat)
			ld_check_app_type(ld, &x->w, x->app_m, ax, "destination", x->d.type, cat->app_type);
		link_destination(ld, x, (void **)ls->props, ls->np, (void **)ls->groups, ls->ng);
		link_sync_log(ld, x, ls->apps, ls->na, ls->srcs, ls->ns);
	}

}

