/*
 * api.c: the read routes of /api/v1 (docs/api.md) and the route table.
 *
 * Every handler takes a config snapshot (server_cfg_get) for its whole answer and
 * opens the state store read-only when it needs it; nothing here writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cron.h"
#include "base/strbuf.h"
#include "base/value.h"
#include "base/xalloc.h"
#include "config/catalog.h"
#include "config/write.h"
#include "dest/dest.h"
#include "engine/record.h"
#include "server/serverp.h"
#include "state/runnotes.h"

const struct route api_routes[] = {
	{ "GET", "/api/v1/session", api_session, ROLE_NONE },
	{ "POST", "/api/v1/session", act_login, ROLE_NONE },
	{ "DELETE", "/api/v1/session", act_logout, ROLE_NONE },
	{ "POST", "/api/v1/session/password", act_password, ROLE_VIEWER },
	{ "POST", "/api/v1/setup", act_setup, ROLE_NONE },
	{ "GET", "/api/v1/users", api_users, ROLE_ADMIN },
	{ "POST", "/api/v1/users", act_user_add, ROLE_ADMIN },
	{ "PUT", "/api/v1/users/{}", act_user_update, ROLE_ADMIN },
	{ "DELETE", "/api/v1/users/{}", act_user_remove, ROLE_ADMIN },
	{ "GET", "/api/v1/tokens", api_tokens, ROLE_VIEWER },
	{ "POST", "/api/v1/tokens", act_token_create, ROLE_VIEWER },
	{ "DELETE", "/api/v1/tokens/{}", act_token_revoke, ROLE_VIEWER },
	{ "GET", "/api/v1/audit", api_audit, ROLE_ADMIN },
	{ "GET", "/api/v1/status", api_status, ROLE_VIEWER },
	{ "GET", "/api/v1/catalog", api_catalog, ROLE_VIEWER },
	{ "GET", "/api/v1/models", api_models, ROLE_VIEWER },
	{ "GET", "/api/v1/models/{}", api_model, ROLE_VIEWER },
	{ "GET", "/api/v1/models/{}/samples", api_samples, ROLE_VIEWER },
	{ "GET", "/api/v1/apps", api_apps, ROLE_VIEWER },
	{ "POST", "/api/v1/apps/{}/test", act_app_test, ROLE_ADMIN },
	{ "GET", "/api/v1/apps/{}/tables", api_app_tables, ROLE_EDITOR },
	{ "POST", "/api/v1/apps/{}/preview", act_app_preview, ROLE_EDITOR },
	{ "GET", "/api/v1/sources", api_list_objects, ROLE_VIEWER },
	{ "GET", "/api/v1/properties", api_list_objects, ROLE_VIEWER },
	{ "GET", "/api/v1/groups", api_list_objects, ROLE_VIEWER },
	{ "GET", "/api/v1/destinations", api_list_objects, ROLE_VIEWER },
	{ "GET", "/api/v1/schedules", api_list_objects, ROLE_VIEWER },
	{ "GET", "/api/v1/cron", api_cron, ROLE_VIEWER },
	{ "GET", "/api/v1/runs", api_runs, ROLE_VIEWER },
	{ "POST", "/api/v1/runs", act_runs, ROLE_EDITOR },
	{ "GET", "/api/v1/runs/{}", api_run, ROLE_VIEWER },
	{ "POST", "/api/v1/runs/{}/approve", act_run_approve, ROLE_EDITOR },
	{ "GET", "/api/v1/errors", api_errors, ROLE_VIEWER },
	{ "GET", "/api/v1/records/{}", api_records, ROLE_VIEWER },
	{ "GET", "/api/v1/records/{}/{}", api_record, ROLE_VIEWER },
	{ "POST", "/api/v1/models/{}/groups/preview", act_group_preview, ROLE_EDITOR },
	{ "POST", "/api/v1/plan", act_plan, ROLE_EDITOR },
	{ "POST", "/api/v1/retry", act_retry, ROLE_EDITOR },
	{ "POST", "/api/v1/reload", act_reload, ROLE_EDITOR },
	{ "GET", "/api/v1/alerts", api_alerts, ROLE_VIEWER },
	{ "GET", "/api/v1/alerts/incidents", api_alert_incidents, ROLE_VIEWER },
	{ "GET", "/api/v1/alerts/deliveries", api_alert_deliveries, ROLE_VIEWER },
	{ "POST", "/api/v1/alerts/{}/test", act_alert_test, ROLE_ADMIN },
	/* config files as text (repair editor); files holding apps need admin: files.c checks */
	{ "GET", "/api/v1/files", api_files, ROLE_EDITOR },
	{ "GET", "/api/v1/files/{}", api_file, ROLE_EDITOR },
	{ "PUT", "/api/v1/files/{}", act_file_write, ROLE_EDITOR },
	/* apps (keys) need admin: act_config_* check the class */
	{ "POST", "/api/v1/config", act_config_batch, ROLE_EDITOR }, /* several objects; no apps or alerts */
	{ "POST", "/api/v1/config/{}", act_config_write, ROLE_EDITOR },
	{ "GET", "/api/v1/config/{}/{}", api_config_get, ROLE_VIEWER },
	{ "PUT", "/api/v1/config/{}/{}", act_config_write, ROLE_EDITOR },
	{ "DELETE", "/api/v1/config/{}/{}", act_config_write, ROLE_EDITOR },
	{ NULL, NULL, NULL, ROLE_NONE },
};

static const char *const no_params[] = { NULL };
static const char *const model_param[] = { "model", NULL };

/* ---- JSON of config objects ---- */

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *options_json(const struct cfg_options *o)
{
	json_t *j = json_object();
	for (size_t i = 0; i < o->n; i++) {
		const struct cfg_option *opt = &o->items[i];
		json_t *v;
		if (opt->kind == OPT_NUMBER)
			v = json_real(opt->num);
		else if (opt->kind == OPT_BOOL)
			v = json_boolean(opt->b);
		else
			v = json_string(config_option_display(opt));
		if (opt->kind == OPT_NUMBER && opt->num == (double)(json_int_t)opt->num) {
			json_decref(v);
			v = json_integer((json_int_t)opt->num);
		}
		json_object_set_new(j, opt->key, v);
	}
	return j;
}

static json_t *model_summary(const struct cfg_model *m, const struct config *cfg)
{
	size_t n_sched = 0;
	for (size_t i = 0; i < cfg->n_schedules; i++)
		n_sched += cfg->schedules[i]->source && cfg->schedules[i]->source->model == m;
	return json_pack("{s:s,s:o,s:o,s:o,s:{s:I,s:I,s:I,s:I,s:I}}", "id", m->id, "name", jstr(m->name), "type",
			 jstr(m->type), "primary_key", m->primary_key ? json_string(m->primary_key->key) : json_null(),
			 "counts", "sources", (json_int_t)m->n_sources, "properties", (json_int_t)m->n_properties,
			 "groups", (json_int_t)m->n_groups, "destinations", (json_int_t)m->n_destinations, "schedules",
			 (json_int_t)n_sched);
}

static json_t *filters_json(const struct cfg_filter *f, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_pack("{s:s,s:s}", "key", f[i].key, "op", filter_op_name(f[i].op));
		if (f[i].n_match_list) {
			json_t *l = json_array();
			for (size_t k = 0; k < f[i].n_match_list; k++)
				json_array_append_new(l, json_string(f[i].match_list[k]));
			json_object_set_new(o, "match", l);
		} else {
			json_object_set_new(o, "match", jstr(f[i].match));
		}
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *source_json(const struct cfg_source *s)
{
	json_t *mapping = json_object();
	if (s->mapping_column && s->mapping_property)
		json_object_set_new(mapping, s->mapping_column, json_string(s->mapping_property->key));
	json_t *props = json_array();
	for (size_t i = 0; i < s->n_properties; i++)
		json_array_append_new(props, json_string(s->properties[i]->id));
	return json_pack("{s:s,s:o,s:s,s:o,s:o,s:b,s:o,s:o,s:o}", "id", s->id, "name", jstr(s->name), "type", s->type,
			 "app", s->app ? json_string(s->app->id) : json_null(), "model",
			 s->model ? json_string(s->model->id) : json_null(), "primary", s->is_primary, "mapping", mapping,
			 "options", options_json(&s->options), "properties", props);
}

static json_t *property_json(const struct cfg_property *p)
{
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:b,s:b,s:b,s:o,s:o}", "id", p->id, "key", p->key, "type",
			 prop_type_name(p->type), "source", p->source ? json_string(p->source->id) : json_null(), "model",
			 p->source && p->source->model ? json_string(p->source->model->id) : json_null(), "unique",
			 p->unique, "is_array", p->is_array, "primary_key", p->is_primary_key, "options",
			 options_json(&p->options), "filters", filters_json(p->filters, p->n_filters));
}

static json_t *group_json(struct server *s, const struct cfg_group *g)
{
	json_t *rules = json_array();
	for (size_t i = 0; i < g->n_rules; i++) {
		const struct cfg_rule *r = &g->rules[i];
		json_t *o = json_pack("{s:o,s:s,s:o}", "key",
				      r->property ? json_string(r->property->key) : json_string("grouparooCreatedAt"),
				      "operator", rule_op_name(r->op), "match", jstr(r->match));
		if (r->op == ROP_RELATIVE_GT || r->op == ROP_RELATIVE_LT) {
			json_object_set_new(o, "relative_match_number", json_real(r->rel_number));
			json_object_set_new(o, "relative_match_unit", json_string(rel_unit_name(r->rel_unit)));
			json_object_set_new(o, "relative_match_direction", json_string(r->rel_add ? "add" : "subtract"));
		}
		json_array_append_new(rules, o);
	}
	int64_t at;
	pthread_mutex_lock(&s->lock);
	int64_t n = server_group_count(s, g->id, &at);
	pthread_mutex_unlock(&s->lock);
	return json_pack("{s:s,s:o,s:s,s:s,s:o,s:o,s:o}", "id", g->id, "name", jstr(g->name), "model", g->model->id,
			 "match_type", g->match_any ? "any" : "all", "rules", rules, "member_count",
			 n < 0 ? json_null() : json_integer(n), "counted_at", n < 0 ? json_null() : json_integer(at));
}

static json_t *destination_json(const struct cfg_destination *d)
{
	json_t *mapping = json_object(), *gm = json_object();
	for (size_t i = 0; i < d->n_mapping; i++)
		json_object_set_new(mapping, d->mapping[i].remote,
				    d->mapping[i].property ? json_string(d->mapping[i].property->key) : json_null());
	for (size_t i = 0; i < d->n_group_maps; i++)
		if (d->group_maps[i].group)
			json_object_set_new(gm, d->group_maps[i].group->id, json_string(d->group_maps[i].remote));
	json_t *j = json_pack("{s:s,s:o,s:s,s:o,s:s,s:s,s:s,s:o,s:o,s:o,s:f,s:o}", "id", d->id, "name", jstr(d->name),
			 "type", d->type, "app", d->app ? json_string(d->app->id) : json_null(), "model", d->model->id,
			 "sync_mode", sync_mode_name(d->sync_mode), "collection", collection_name(d->collection), "group",
			 d->group ? json_string(d->group->id) : json_null(), "mapping", mapping, "group_mapping", gm,
			 "max_delete_percent", d->max_delete_percent, "options", options_json(&d->options));
	/* every membership, with what it is and its name (subscriptionGroupNames) */
	json_t *ms = json_array();
	for (size_t i = 0; i < d->n_group_maps; i++) {
		const struct cfg_group_map *g = &d->group_maps[i];
		bool sub = dest_is_subscription_group(g->remote);
		json_array_append_new(ms, json_pack("{s:s,s:o,s:s,s:o}", "remote", g->remote, "group",
						    g->group ? json_string(g->group->id) : json_null(), "kind",
						    sub ? "subscription_group" : "groups_value", "name",
						    g->label ? json_string(g->label) : sub ? json_null() : json_string(g->remote)));
	}
	json_object_set_new(j, "memberships", ms);
	return j;
}

static int64_t epoch_now_ms(void);

static json_t *schedule_json(struct server *s, const struct cfg_schedule *sc)
{
	const struct cfg_model *m = sc->source ? sc->source->model : NULL;
	pthread_mutex_lock(&s->lock);
	int64_t next = sched_next_due(s->sched, sc->id), last = sched_last_fired(s->sched, sc->id);
	pthread_mutex_unlock(&s->lock);
	const char *column = cfg_options_str(&sc->options, "column");
	json_t *j = json_pack("{s:s,s:o,s:o,s:o,s:b,s:o,s:o,s:b,s:o,s:b,s:o,s:o}", "id", sc->id, "name", jstr(sc->name),
			 "source", sc->source ? json_string(sc->source->id) : json_null(), "model",
			 m ? json_string(m->id) : json_null(), "recurring", sc->recurring, "frequency_ms",
			 sc->recurring_frequency_ms ? json_integer(sc->recurring_frequency_ms) : json_null(), "cron",
			 jstr(sc->cron), "incremental", sc->incremental, "column", jstr(column), "confirm_records",
			 sc->confirm_records, "next_run_at", next < 0 ? json_null() : json_integer(next), "last_run_at",
			 last < 0 ? json_null() : json_integer(last));
	/* the next three runs, for "in words" displays */
	json_t *nx = json_array();
	struct cron c;
	struct jerror e = JERROR_INIT;
	if (sc->cron && !cron_parse(sc->cron, &c, &e)) {
		int64_t t = next >= 0 ? next - 1 : epoch_now_ms();
		for (int i = 0; i < 3 && (t = cron_next(&c, t)) >= 0; i++)
			json_array_append_new(nx, json_integer(t));
	} else if (sc->recurring && sc->recurring_frequency_ms > 0 && next >= 0) {
		for (int i = 0; i < 3; i++)
			json_array_append_new(nx, json_integer(next + i * sc->recurring_frequency_ms));
	}
	jerror_release(&e);
	json_object_set_new(j, "next_runs", nx);
	return j;
}

static int64_t epoch_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* GET /api/v1/cron?expr=E[&count=N]: is E a valid schedule, and its next N runs (UTC). */
void api_cron(struct req *r, struct reply *out)
{
	static const char *const allowed[] = { "expr", "count", NULL };
	uint64_t count;
	if (!req_check_query(r, out, allowed) || !req_query_uint(r, out, "count", 3, 20, &count))
		return;
	const char *expr = req_query(r, "expr");
	if (!expr) {
		reply_error(out, 400, "query parameter \"expr\" is required", NULL, "e.g. ?expr=0%203%20*%20*%20*");
		return;
	}
	struct cron c;
	struct jerror err = JERROR_INIT;
	if (cron_parse(expr, &c, &err)) {
		reply_json(out, 200, json_pack("{s:b,s:s,s:o}", "valid", 0, "error", err.msg.buf, "detail",
					       err.detail.len ? json_string(err.detail.buf) : json_null()));
	} else {
		json_t *nx = json_array();
		int64_t t = epoch_now_ms();
		for (uint64_t i = 0; i < (count ? count : 3) && (t = cron_next(&c, t)) >= 0; i++)
			json_array_append_new(nx, json_integer(t));
		reply_json(out, 200, json_pack("{s:b,s:o}", "valid", 1, "next", nx));
	}
	jerror_release(&err);
}

/*
 * The kinds of objects a model has, and their names in the API: the path of their
 * listing (GET /api/v1/sources) and their key in a model's JSON (api_model).
 */
enum listing { L_SOURCES, L_PROPERTIES, L_GROUPS, L_DESTINATIONS, L_SCHEDULES };
static const char *const listing_names[L_SCHEDULES + 1] = { "sources", "properties", "groups", "destinations",
						     "schedules" };

/* The objects of one kind, of model m (NULL: of every model). */
static json_t *objects_of(struct server *s, const struct config *cfg, const struct cfg_model *m, enum listing what)
{
	json_t *a = json_array();
	switch (what) {
	case L_SOURCES:
		for (size_t i = 0; i < cfg->n_sources; i++)
			if (!m || cfg->sources[i]->model == m)
				json_array_append_new(a, source_json(cfg->sources[i]));
		break;
	case L_PROPERTIES:
		for (size_t i = 0; i < cfg->n_properties; i++)
			if (!m || (cfg->properties[i]->source && cfg->properties[i]->source->model == m))
				json_array_append_new(a, property_json(cfg->properties[i]));
		break;
	case L_GROUPS:
		for (size_t i = 0; i < cfg->n_groups; i++)
			if (!m || cfg->groups[i]->model == m)
				json_array_append_new(a, group_json(s, cfg->groups[i]));
		break;
	case L_DESTINATIONS:
		for (size_t i = 0; i < cfg->n_destinations; i++)
			if (!m || cfg->destinations[i]->model == m)
				json_array_append_new(a, destination_json(cfg->destinations[i]));
		break;
	case L_SCHEDULES:
		for (size_t i = 0; i < cfg->n_schedules; i++)
			if (!m || (cfg->schedules[i]->source && cfg->schedules[i]->source->model == m))
				json_array_append_new(a, schedule_json(s, cfg->schedules[i]));
		break;
	}
	return a;
}

/* ?model=ID: the model, or NULL with a 404 set. *none true when not given. */
static bool model_filter(struct req *r, struct reply *out, const struct config *cfg, const struct cfg_model **m)
{
	const char *id = req_query(r, "model");
	*m = NULL;
	if (!id)
		return true;
	*m = config_model(cfg, id);
	if (!*m) {
		reply_error(out, 404, "no such model", id, "GET /api/v1/models lists them");
		return false;
	}
	return true;
}

/* ---- routes ---- */

void api_status(struct req *r, struct reply *out)
{
	if (!req_check_query(r, out, no_params))
		return;
	struct server *s = r->s;
	struct strbuf shown = STRBUF_INIT;
	state_path_display(s->opts.state_path, &shown); /* a URL without its password */
	pthread_mutex_lock(&s->lock);
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:b,s:I,s:O,s:I}", "version", JOEY_VERSION, "config_dir",
			      s->opts.config_dir, "state_path", shown.buf, "listen", s->listen_desc,
			      "auth_required", true, "config_loaded_at", (json_int_t)s->cfg->loaded_at,
			      "config_error", s->config_error ? s->config_error : json_null(), "queue_depth",
			      (json_int_t)sched_queue_depth(s->sched));
	json_object_set_new(j, "repair", json_boolean(s->repair));
	pthread_mutex_unlock(&s->lock);
	strbuf_release(&shown);
	reply_json(out, 200, j);
}

void api_catalog(struct req *r, struct reply *out)
{
	if (!req_check_query(r, out, no_params))
		return;
	size_t n;
	json_t *modes = json_pack(
		"[{s:s,s:s,s:s},{s:s,s:s,s:s},{s:s,s:s,s:s}]", "id", "sync", "label", "Sync", "help",
		"Create, update and delete Braze users so that Braze mirrors the model.", "id", "additive", "label",
		"Additive", "help", "Create and update Braze users; never delete any.", "id", "enrich", "label", "Enrich",
		"help", "Only update users that already exist in Braze; never create or delete.");
	json_t *fields = json_array();
	const struct catalog_field *f = catalog_braze_fields(&n);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(fields, json_pack("{s:s,s:s,s:b}", "name", f[i].name, "type",
							prop_type_name(f[i].type), "billable",
							dest_field_billable(f[i].name)));
	json_t *apps = json_array(), *sources = json_array(), *dests = json_array(), *app_opts = json_object();
	const char *const *names = catalog_app_types(&n);
	for (size_t i = 0; i < n; i++) {
		const struct catalog_app *a = catalog_app(names[i]);
		if (!a || !a->supported)
			continue;
		json_array_append_new(apps, json_string(names[i]));
		/* the app form's fields: each option, its kind, whether required, whether a secret */
		json_t *os = json_array();
		for (const struct catalog_option *c = a->options; c && c->name; c++)
			json_array_append_new(os, json_pack("{s:s,s:s,s:b,s:b}", "name", c->name, "kind",
							    c->kind == OPT_NUMBER ? "number" : c->kind == OPT_BOOL ? "bool"
													 : "string",
							    "required", c->required, "secret",
							    c->sensitive || catalog_option_sensitive(c->name)));
		json_object_set_new(app_opts, names[i], os);
	}
	names = catalog_source_types(&n);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(sources, json_string(names[i]));
	names = catalog_destination_types(&n);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(dests, json_string(names[i]));
	json_t *types = json_array();
	for (int t = 0; t < PROP__COUNT; t++)
		json_array_append_new(types, json_string(prop_type_name((enum prop_type)t)));
	reply_json(out, 200,
		   json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "sync_modes", modes, "braze_fields", fields, "app_types", apps,
			     "app_options", app_opts, "source_types", sources, "destination_types", dests, "property_types",
			     types));
}

void api_models(struct req *r, struct reply *out)
{
	if (!req_check_query(r, out, no_params))
		return;
	struct cfg_ref *ref = server_cfg_get(r->s);
	json_t *a = json_array();
	for (size_t i = 0; i < ref->cfg->n_models; i++)
		json_array_append_new(a, model_summary(ref->cfg->models[i], ref->cfg));
	server_cfg_put(r->s, ref);
	reply_json(out, 200, a);
}

void api_model(struct req *r, struct reply *out)
{
	if (!req_check_query(r, out, no_params))
		return;
	struct cfg_ref *ref = server_cfg_get(r->s);
	const struct config *cfg = ref->cfg;
	const struct cfg_model *m = req_param_model(r, out, cfg);
	if (!m) {
		server_cfg_put(r->s, ref);
		return;
	}
	json_t *j = model_summary(m, cfg);
	for (int what = L_SOURCES; what <= L_SCHEDULES; what++)
		json_object_set_new(j, listing_names[what], objects_of(r->s, cfg, m, (enum listing)what));
	server_cfg_put(r->s, ref);
	reply_json(out, 200, j);
}

void api_apps(struct req *r, struct reply *out)
{
	if (!req_check_query(r, out, no_params))
		return;
	struct cfg_ref *ref = server_cfg_get(r->s);
	const struct config *cfg = ref->cfg;
	json_t *a = json_array();
	for (size_t i = 0; i < cfg->n_apps; i++) {
		const struct cfg_app *app = cfg->apps[i];
		json_t *used = json_array();
		for (size_t k = 0; k < cfg->n_sources; k++)
			if (cfg->sources[k]->app == app)
				json_array_append_new(used, json_string(cfg->sources[k]->id));
		for (size_t k = 0; k < cfg->n_destinations; k++)
			if (cfg->destinations[k]->app == app)
				json_array_append_new(used, json_string(cfg->destinations[k]->id));
		json_array_append_new(a, json_pack("{s:s,s:o,s:s,s:o,s:o}", "id", app->id, "name", jstr(app->name),
						   "type", app->type, "options", options_json(&app->options),
						   "used_by", used));
	}
	server_cfg_put(r->s, ref);
	reply_json(out, 200, a);
}

/* GET /sources|/properties|/groups|/destinations|/schedules with ?model=: the path names the kind */
void api_list_objects(struct req *r, struct reply *out)
{
	const char *kind = strrchr(r->path, '/') + 1;
	int what = L_SOURCES;
	while (what < L_SCHEDULES && strcmp(listing_names[what], kind))
		what++;
	if (!req_check_query(r, out, model_param))
		return;
	struct cfg_ref *ref = server_cfg_get(r->s);
	const struct cfg_model *m;
	if (model_filter(r, out, ref->cfg, &m))
		reply_json(out, 200, objects_of(r->s, ref->cfg, m, (enum listing)what));
	server_cfg_put(r->s, ref);
}

/* ---- runs ---- */

static json_t *counts_json(const struct run_counts *c)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "created", (json_int_t)c->created, "updated",
			 (json_int_t)c->updated, "deleted", (json_int_t)c->deleted, "unsubscribed",
			 (json_int_t)c->unsubscribed, "unchanged", (json_int_t)c->unchanged, "failed",
			 (json_int_t)c->failed, "skipped", (json_int_t)c->skipped, "requests", (json_int_t)c->requests,
			 "retries", (json_int_t)c->retries, "throttled", (json_int_t)c->throttled, "data_points",
			 (json_int_t)c->data_points);
}

struct runs_ctx {
	struct server *s;
	const struct config *cfg;
	json_t *items;
	int64_t before; /* 0: none */
	int64_t only_id; /* 0: all */
	size_t limit;
	int64_t next;
	struct state *st; /* for each run's sync log status (set after the positional fields) */
};

/*
 * Whether the sync log of run was written (engine/synclog.h): {"status", "rows",
 * "pending", "error"}, or null when the run had no sync log.
 */
static json_t *sync_log_json(struct state *st, const struct state_run_info *run)
{
	struct state_synclog_info info;
	struct strbuf status = STRBUF_INIT, error = STRBUF_INIT;
	struct jerror err = JERROR_INIT;
	bool found = false;
	json_t *o = json_null();
	if (st && !state_synclog_get(st, run->id, &info, &status, &error, &found, &err) && found)
		o = json_pack("{s:s,s:I,s:I,s:o}", "status", info.status, "rows", (json_int_t)info.rows, "pending",
			      (json_int_t)info.pending, "error", info.error ? json_string(info.error) : json_null());
	strbuf_release(&status);
	strbuf_release(&error);
	jerror_release(&err);
	return o;
}

/*
 * What a finished run means for a person: a run whose only trouble is rows Braze
 * refused "completed_with_failures" (amber: everything else went out), a run the
 * mass-delete guard stopped "held" (with what it held and who may approve it).
 */
static void run_outcome(json_t *o, const struct state_run_info *run)
{
	json_object_set_new(o, "failed_rows", json_integer((json_int_t)run->counts.failed));
	json_object_set_new(o, "held", json_null());
	if (run->status != RUN_FAILED || !run->error)
		return;
	if (!strcmp(run_outcome_name(run->status, run->error, &run->counts), "completed_with_failures")) {
		json_object_set_new(o, "status", json_string("completed_with_failures"));
		return;
	}
	char what[32];
	unsigned long long n, of;
	double pct;
	if (sscanf(run->error, "refusing to %31s %llu of %llu records (%lf%%)", what, &n, &of, &pct) != 4) {
		/* a run that stopped: why, in plain words (explain.c) */
		const struct explanation *x = explain_error(run->error);
		if (strcmp(x->code, "unknown"))
			json_object_set_new(o, "explanation", explain_json(x));
		return;
	}
	json_object_set_new(o, "held",
				    json_pack("{s:s,s:I,s:I,s:f,s:[ss]}", "action", what, "count", (json_int_t)n, "of",
					      (json_int_t)of, "percent", pct, "approvers", "admin", "editor"));
}

static json_t *run_json(struct server *s, const struct config *cfg, const struct state_run_info *run)
{
	const struct cfg_destination *d = config_destination(cfg, run->dest_id);
	json_t *o = json_pack("{s:I,s:s,s:o,s:s,s:s,s:I,s:o,s:o,s:o,s:o,s:o}", "id", (json_int_t)run->id,
			      "destination", run->dest_id, "model", d ? json_string(d->model->id) : json_null(), "kind",
			      run->kind, "status", run_status_name(run->status), "started_at", (json_int_t)run->started_at,
			      "finished_at", run->finished_at ? json_integer(run->finished_at) : json_null(), "counts",
			      counts_json(&run->counts), "error", jstr(run->error), "trigger", json_null(),
			      "records_read", json_null());
	run_outcome(o, run);
	if (run->status != RUN_RUNNING) {
		const struct finished_run *fr = server_finished_run(s, run->id);
		if (fr) {
			json_object_set_new(o, "trigger", json_string(sched_trigger_name(fr->trigger)));
			json_object_set_new(o, "records_read", json_integer((json_int_t)fr->records_read));
			return o;
		}
		/* a job the workers closed, before this process's follower noticed: as it
		 * last saw it (the live run panel keeps its summary) */
		for (struct active_job *aj = s->jobs; aj; aj = aj->next)
			for (size_t i = 0; i < aj->job.n_dests; i++)
				if (aj->dests[i].run_id == run->id && !strcmp(aj->dests[i].dest_id, run->dest_id)) {
					/* records read as work_job_result counts them: the records settled */
					const struct run_counts *c = &run->counts;
					uint64_t settled = c->created + c->updated + c->unchanged + c->skipped + c->failed;
					json_object_set_new(o, "records_read",
							    json_integer((json_int_t)(settled > aj->records_read
											     ? settled
											     : aj->records_read)));
					json_object_set_new(o, "trigger", json_string(sched_trigger_name(aj->job.trigger)));
				}
		return o;
	}
	/* a running run of this process: its live counts */
	for (struct active_job *aj = s->jobs; aj; aj = aj->next)
		for (size_t i = 0; i < aj->job.n_dests; i++)
			if (aj->dests[i].run_id == run->id && !strcmp(aj->dests[i].dest_id, run->dest_id)) {
				json_object_set_new(o, "counts", counts_json(&aj->dests[i].counts));
				json_object_set_new(o, "records_read", json_integer((json_int_t)aj->records_read));
				json_object_set_new(o, "trigger", json_string(sched_trigger_name(aj->job.trigger)));
			}
	return o;
}

static enum jerr runs_fn(void *ctx, const struct state_run_info *run, struct jerror *err)
{
	(void)err;
	struct runs_ctx *c = ctx;
	if (c->only_id && run->id != c->only_id)
		return JERR_OK;
	if (c->before && run->id >= c->before)
		return JERR_OK;
	if (json_array_size(c->items) >= c->limit) {
		c->next = (int64_t)json_integer_value(
			json_object_get(json_array_get(c->items, json_array_size(c->items) - 1), "id"));
		return JERR_INTERRUPTED;
	}
	json_t *log = sync_log_json(c->st, run);
	/* a finished run's trigger and records read, as the state store noted them */
	struct strbuf trig = STRBUF_INIT;
	struct jerror nerr = JERROR_INIT;
	int64_t read = -1;
	bool noted = false;
	if (run->status != RUN_RUNNING && c->st && state_run_note_get(c->st, run->id, &trig, &read, &noted, &nerr))
		noted = false;
	jerror_release(&nerr);
	pthread_mutex_lock(&c->s->lock);
	json_t *o = run_json(c->s, c->cfg, run);
	json_object_set_new(o, "sync_log", log);
	if (noted && json_is_null(json_object_get(o, "trigger")) && trig.len)
		json_object_set_new(o, "trigger", json_string(trig.buf));
	if (noted && json_is_null(json_object_get(o, "records_read")) && read >= 0)
		json_object_set_new(o, "records_read", json_integer((json_int_t)read));
	strbuf_release(&trig);
	json_array_append_new(c->items, o);
	pthread_mutex_unlock(&c->s->lock);
	return JERR_OK;
}

/* Does items hold a running run of dest_id (its row written, its id not yet told)? */
static bool has_running_row(json_t *items, const char *dest_id)
{
	size_t i;
	json_t *it;
	json_array_foreach (items, i, it) {
		const char *d = json_string_value(json_object_get(it, "destination"));
		const char *st = json_string_value(json_object_get(it, "status"));
		if (d && st && !strcmp(d, dest_id) && !strcmp(st, "running"))
			return true;
	}
	return false;
}

/* Queued destinations and runs starting (no run row yet), first page only. Under s->lock. */
static void add_queued_locked(struct server *s, const struct config *cfg, const char *dest_id, json_t *items)
{
	for (struct active_job *aj = s->jobs; aj; aj = aj->next) {
		for (size_t i = 0; i < aj->job.n_dests && !aj->finished; i++) {
			const struct live_dest *ld = &aj->dests[i];
			if (ld->run_id || (dest_id && strcmp(dest_id, ld->dest_id)) || has_running_row(items, ld->dest_id))
				continue;
			json_array_insert_new(items, 0,
					      json_pack("{s:n,s:s,s:s,s:s,s:s,s:I,s:n,s:o,s:n,s:s,s:I}", "id", "destination",
							ld->dest_id, "model", aj->job.model_id, "kind", "run", "status",
							"running", "started_at", (json_int_t)aj->started_at, "finished_at",
							"counts", counts_json(&ld->counts), "error", "trigger",
							sched_trigger_name(aj->job.trigger), "records_read",
							(json_int_t)aj->records_read));
		}
	}
	for (size_t i = 0; i < cfg->n_destinations; i++) {
		const struct cfg_destination *d = cfg->destinations[i];
		if (dest_id && strcmp(dest_id, d->id))
			continue;
		if (!sched_dest_queued(s->sched, d->id))
			continue;
		json_array_insert_new(items, 0,
				      json_pack("{s:n,s:s,s:s,s:s,s:s,s:n,s:n,s:o,s:n,s:n,s:n}", "id", "destination",
						d->id, "model", d->model->id, "kind", "run", "status", "queued",
						"started_at", "finished_at", "counts", counts_json(&(struct run_counts){ 0 }),
						"error", "trigger", "records_read"));
	}
}

void api_runs(struct req *r, struct reply *out)
{
	static const char *const allowed[] = { "destination", "limit", "before", NULL };
	uint64_t limit, before;
	if (!req_query_page(r, out, allowed, &limit, &before))
		return;
	struct cfg_ref *ref = server_cfg_get(r->s);
	const char *dest = req_query(r, "destination");
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	if (dest && !config_destination(ref->cfg, dest)) {
		reply_error(out, 404, "no such destination", dest, "GET /api/v1/destinations lists them");
		goto done;
	}
	/*
	 * The store is read without the server's lock, so a run can get its row, or end,
	 * between that read and the look at the jobs of this process: it would then be in
	 * neither (a run just asked for missing from the list). When that happened
	 * (runs_gen moved) the store is read again.
	 */
	struct runs_ctx c;
	for (int attempt = 0;; attempt++) {
		pthread_mutex_lock(&r->s->lock);
		uint64_t gen = r->s->runs_gen;
		pthread_mutex_unlock(&r->s->lock);
		c = (struct runs_ctx){ r->s, ref->cfg, json_array(), (int64_t)before, 0, limit, 0, NULL };
		enum jerr rc = server_state_read(r->s, &st, &err);
		c.st = st;
		if (!rc)
			rc = state_runs_list(st, dest, 0, runs_fn, &c, &err);
		if (reply_read_failed(out, rc, c.items, &err))
			goto done;
		if (before)
			break;
		pthread_mutex_lock(&r->s->lock);
		bool same = r->s->runs_gen == gen;
		if (same || attempt == 4)
			add_queued_locked(r->s, ref->cfg, dest, c.items);
		pthread_mutex_unlock(&r->s->lock);
		if (same || attempt == 4)
			break;
		json_decref(c.items);
		state_close(st);
		st = NULL;
	}
	reply_items(out, c.items, c.next);
done:
	state_close(st);
	jerror_release(&err);
	server_cfg_put(r->s, ref);
}

void api_run(struct req *r, struct reply *out)
{
	long long id;
	if (!req_check_query(r, out, no_params) ||
	    !req_param_id(r, out, "invalid run id", "run ids are positive integers", &id))
		return;
	struct cfg_ref *ref = server_cfg_get(r->s);
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	struct runs_ctx c = { r->s, ref->cfg, json_array(), 0, id, 1, 0, NULL };
	enum jerr rc = server_state_read(r->s, &st, &err);
	c.st = st;
	if (!rc)
		rc = state_runs_list(st, NULL, 0, runs_fn, &c, &err);
	if (rc && rc != JERR_INTERRUPTED)
		reply_jerror(out, 500, &err);
	else if (!json_array_size(c.items))
		reply_error(out, 404, "no such run", r->params[0], NULL);
	else
		reply_json(out, 200, json_incref(json_array_get(c.items, 0)));
	json_decref(c.items);
	state_close(st);
	jerror_release(&err);
	server_cfg_put(r->s, ref);
}

/* ---- error ledger ---- */

struct ledger_ctx {
	json_t *items;
	int64_t before;
	size_t limit;
	int64_t next;
	struct state *st;
	const struct config *cfg;
	int only_pending; /* -1: all, 0: resolved only, 1: still failing only */
};

/* Is the record of a ledger entry still failing (pending in the state store)? */
static enum jerr still_pending(struct ledger_ctx *c, const struct state_ledger_entry *e, bool *pending,
			       struct jerror *err)
{
	struct state_row *row;
	bool found;
	*pending = false;
	enum jerr rc = state_get(c->st, e->dest_id, &e->key, &row, &found, err);
	if (!rc && found)
		*pending = row->pending;
	return rc;
}

static enum jerr ledger_fn(void *ctx, const struct state_ledger_entry *e, struct jerror *err)
{
	(void)err;
	struct ledger_ctx *c = ctx;
	bool pending;
	if (c->before && e->id >= c->before)
		return JERR_OK;
	enum jerr rc = still_pending(c, e, &pending, err);
	if (rc)
		return rc;
	if (c->only_pending >= 0 && pending != (c->only_pending == 1))
		return JERR_OK;
	if (json_array_size(c->items) >= c->limit) {
		c->next = (int64_t)json_integer_value(
			json_object_get(json_array_get(c->items, json_array_size(c->items) - 1), "id"));
		return JERR_INTERRUPTED;
	}
	json_array_append_new(c->items,
			      json_pack("{s:I,s:o,s:s,s:s%,s:s,s:i,s:I,s:b}", "id", (json_int_t)e->id, "run_id",
					e->run_id ? json_integer(e->run_id) : json_null(), "destination", e->dest_id, "key",
					e->key.text.ptr, e->key.text.len, "error", e->error ? e->error : "", "attempts",
					e->attempts, "at", (json_int_t)e->at, "pending", pending));
	json_object_set_new(json_array_get(c->items, json_array_size(c->items) - 1), "explanation",
			    explain_json(explain_error(e->error)));
	return JERR_OK;
}

void api_errors(struct req *r, struct reply *out)
{
	static const char *const allowed[] = { "destination", "run", "limit", "before", "pending", NULL };
	uint64_t limit, before, run;
	const char *pend = req_query(r, "pending");
	int only_pending = -1;
	if (pend && strcmp(pend, "true") && strcmp(pend, "false")) {
		reply_error(out, 400, "invalid value for query parameter \"pending\"", pend, "give true or false");
		return;
	}
	if (pend)
		only_pending = !strcmp(pend, "true");
	if (!req_query_page(r, out, allowed, &limit, &before) || !req_query_uint(r, out, "run", 0, INT64_MAX, &run))
		return;
	struct cfg_ref *ref = server_cfg_get(r->s);
	const char *dest = req_query(r, "destination");
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	if (dest && !config_destination(ref->cfg, dest)) {
		reply_error(out, 404, "no such destination", dest, "GET /api/v1/destinations lists them");
		goto done;
	}
	struct ledger_ctx c = { json_array(), (int64_t)before, limit, 0, NULL, ref->cfg, only_pending };
	enum jerr rc = server_state_read(r->s, &st, &err);
	c.st = st;
	if (!rc)
		rc = state_ledger_list(st, dest, (int64_t)run, NULL, 0, ledger_fn, &c, &err);
	if (reply_read_failed(out, rc, c.items, &err))
		goto done;
	reply_items(out, c.items, c.next);
done:
	state_close(st);
	jerror_release(&err);
	server_cfg_put(r->s, ref);
}

/* one record: audiences.c */

/* ---- sample values (forms: "e.g. ada@example.com") ---- */

/*
 * GET /api/v1/models/{id}/samples[?limit=N]: the first N records (key order, default 3,
 * at most 10) as {properties: {key: [values]}}: a few values of each property, for
 * people choosing what to map. Reads the sources and stops after N records.
 */
void api_samples(struct req *r, struct reply *out)
{
	static const char *const allowed[] = { "limit", NULL };
	uint64_t limit;
	if (!req_check_query(r, out, allowed) || !req_query_uint(r, out, "limit", 3, 10, &limit))
		return;
	if (!limit)
		limit = 3;
	struct cfg_ref *ref = server_cfg_get(r->s);
	const struct cfg_model *m = req_param_model(r, out, ref->cfg);
	struct record_reader *rr = NULL;
	struct jerror err = JERROR_INIT;
	const struct record *rec = NULL;
	enum jerr rc;
	if (!m)
		goto done;
	json_t *props = json_object();
	for (size_t i = 0; i < m->n_properties; i++)
		json_object_set_new(props, m->properties[i]->key, json_array());
	uint64_t n = 0;
	rc = record_reader_open(ref->cfg, m, NULL, &rr, &err);
	while (!rc && n < limit && (rc = record_reader_next(rr, &rec, &err)) == JERR_OK && rec) {
		for (size_t i = 0; i < m->n_properties; i++)
			if (rec->values[i].kind != VAL_NULL)
				json_array_append_new(json_object_get(props, m->properties[i]->key), value_json(&rec->values[i]));
		n++;
	}
	if (rc) {
		json_decref(props);
		reply_jerror(out, 502, &err);
		goto done;
	}
	reply_json(out, 200, json_pack("{s:s,s:I,s:o}", "model", m->id, "records", (json_int_t)n, "properties", props));
done:
	record_reader_close(rr);
	jerror_release(&err);
	server_cfg_put(r->s, ref);
}

/* ---- raw config objects ---- */

void api_config_get(struct req *r, struct reply *out)
{
	if (!req_check_query(r, out, no_params))
		return;
	enum cfg_class cls;
	char *text = NULL, *file = NULL;
	struct jerror err = JERROR_INIT;
	if (!cfg_class_from_dir(r->params[0], &cls)) {
		reply_error(out, 404, "no such config class", r->params[0],
			    "use apps, models, sources, properties, groups, destinations, schedules or alerts");
		return;
	}
	if (config_read_object(r->s->opts.config_dir, cls, r->params[1], &text, &file, &err)) {
		reply_jerror(out, err.code == JERR_USAGE ? 404 : 500, &err);
	} else {
		json_t *j = json_loads(text, 0, NULL);
		if (!j) {
			reply_error(out, 500, "stored object could not be read back", file, NULL);
		} else {
			json_object_set_new(j, "file", json_string(file));
			server_object_etag(r->s, cls, text, out->etag); /* its version, for If-Match */
			reply_json(out, 200, j);
		}
	}
	free(text);
	free(file);
	jerror_release(&err);
}
