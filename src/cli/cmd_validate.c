/* cmd_validate.c: `joey validate`: load the config directory and report every problem. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert/eval.h"
#include "cli/cli.h"
#include "dest/dest.h"
#include "source/source.h"
#include "config/config.h"

static void usage(FILE *out)
{
	fputs("usage: joey validate [--config DIR] [--json] [--check-apps]\n"
	      "\n"
	      "Check every *.json file under the config directory (default ./config, or\n"
	      "$JOEY_CONFIG) and report all problems at once.\n"
	      "\n"
	      "  --config DIR   the config directory\n"
	      "  --json         print the result as JSON (errors, warnings, resolved config\n"
	      "                 with secrets masked)\n"
	      "  --check-apps   also connect to each source's database and check that its\n"
	      "                 tables and columns exist (the schedules' options.column\n"
	      "                 too), and call each Braze app with a harmless request to\n"
	      "                 prove its API key, endpoint and permissions work\n"
	      "  -v, --verbose  more logging\n"
	      "\n"
	      "Exit status: 0 valid, 1 invalid, 2 usage error.\n",
	      out);
}

static json_t *jstr(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *diag_json(const struct cfg_diag *d)
{
	json_t *o = json_object();
	json_object_set_new(o, "file", jstr(d->pos.file));
	json_object_set_new(o, "line", d->pos.line ? json_integer(d->pos.line) : json_null());
	json_object_set_new(o, "column", d->pos.col ? json_integer(d->pos.col) : json_null());
	json_object_set_new(o, "class", jstr(d->class_name));
	json_object_set_new(o, "id", jstr(d->id));
	json_object_set_new(o, "field", jstr(d->field));
	json_object_set_new(o, "message", jstr(d->message));
	json_object_set_new(o, "hint", jstr(d->hint));
	return o;
}

static json_t *options_json(const struct cfg_options *o)
{
	json_t *j = json_object();
	for (size_t i = 0; i < o->n; i++) {
		const struct cfg_option *opt = &o->items[i];
		const char *shown = config_option_display(opt);
		json_t *v;
		if (opt->secret || shown != opt->str)
			v = json_string(shown); /* masked: never the value */
		else if (opt->kind == OPT_NUMBER)
			v = json_real(opt->num);
		else if (opt->kind == OPT_BOOL)
			v = json_boolean(opt->b);
		else
			v = json_string(opt->str);
		json_object_set_new(j, opt->key, v ? v : json_null());
	}
	return j;
}

#define ID_OF(p) ((p) ? jstr((p)->id) : json_null())

static json_t *filters_json(const struct cfg_filter *f, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "key", jstr(f[i].key));
		json_object_set_new(o, "op", json_string(filter_op_name(f[i].op)));
		if (f[i].match_list) {
			json_t *l = json_array();
			for (size_t k = 0; k < f[i].n_match_list; k++)
				json_array_append_new(l, jstr(f[i].match_list[k]));
			json_object_set_new(o, "match", l);
		} else if (f[i].match) {
			json_object_set_new(o, "match", json_string(f[i].match));
		}
		json_array_append_new(a, o);
	}
	return a;
}

/* The config's apps (class App) as a JSON array. */
static json_t *apps_json(const struct config *cfg)
{
	json_t *a = json_array();
	for (size_t i = 0; i < cfg->n_apps; i++) {
		const struct cfg_app *x = cfg->apps[i];
		json_t *o = json_object();
		json_object_set_new(o, "id", jstr(x->id));
		json_object_set_new(o, "name", jstr(x->name));
		json_object_set_new(o, "type", jstr(x->type));
		json_object_set_new(o, "options", options_json(&x->options));
		json_array_append_new(a, o);
	}
	return a;
}

/* The config's models (class Model) as a JSON array. */
static json_t *models_json(const struct config *cfg)
{
	json_t *a = json_array();
	for (size_t i = 0; i < cfg->n_models; i++) {
		const struct cfg_model *x = cfg->models[i];
		json_t *o = json_object();
		json_object_set_new(o, "id", jstr(x->id));
		json_object_set_new(o, "name", jstr(x->name));
		json_object_set_new(o, "type", jstr(x->type));
		json_object_set_new(o, "primaryKey", ID_OF(x->primary_key));
		json_object_set_new(o, "primarySource", ID_OF(x->primary_source));
		json_array_append_new(a, o);
	}
	return a;
}

/* The config's sources (class Source) as a JSON array. */
static json_t *sources_json(const struct config *cfg)
{
	json_t *a = json_array();
	for (size_t i = 0; i < cfg->n_sources; i++) {
		const struct cfg_source *x = cfg->sources[i];
		json_t *o = json_object(), *props = json_array();
		json_object_set_new(o, "id", jstr(x->id));
		json_object_set_new(o, "name", jstr(x->name));
		json_object_set_new(o, "type", jstr(x->type));
		json_object_set_new(o, "appId", ID_OF(x->app));
		json_object_set_new(o, "modelId", ID_OF(x->model));
		json_object_set_new(o, "options", options_json(&x->options));
		json_object_set_new(o, "primary", json_boolean(x->is_primary));
		if (x->mapping_column) {
			json_t *m = json_object();
			json_object_set_new(m, x->mapping_column, ID_OF(x->mapping_property));
			json_object_set_new(o, "mapping", m);
		}
		for (size_t k = 0; x->properties && k < x->n_properties; k++)
			json_array_append_new(props, jstr(x->properties[k]->id));
		json_object_set_new(o, "properties", props);
		json_array_append_new(a, o);
	}
	return a;
}

/* The config's properties (class Property) as a JSON array. */
static json_t *properties_json(const struct config *cfg)
{
	json_t *a = json_array();
	for (size_t i = 0; i < cfg->n_properties; i++) {
		const struct cfg_property *x = cfg->properties[i];
		json_t *o = json_object();
		json_object_set_new(o, "id", jstr(x->id));
		json_object_set_new(o, "key", jstr(x->key));
		json_object_set_new(o, "type", json_string(prop_type_name(x->type)));
		json_object_set_new(o, "sourceId", ID_OF(x->source));
		json_object_set_new(o, "unique", json_boolean(x->unique));
		json_object_set_new(o, "isArray", json_boolean(x->is_array));
		json_object_set_new(o, "primaryKey", json_boolean(x->is_primary_key));
		json_object_set_new(o, "aggregationMethod", json_string(agg_method_name(x->agg)));
		json_object_set_new(o, "options", options_json(&x->options));
		json_object_set_new(o, "filters", filters_json(x->filters, x->n_filters));
		json_array_append_new(a, o);
	}
	return a;
}

/* The config's groups (class Group) as a JSON array. */
static json_t *groups_json(const struct config *cfg)
{
	json_t *a = json_array();
	for (size_t i = 0; i < cfg->n_groups; i++) {
		const struct cfg_group *x = cfg->groups[i];
		json_t *o = json_object(), *rules = json_array();
		json_object_set_new(o, "id", jstr(x->id));
		json_object_set_new(o, "name", jstr(x->name));
		json_object_set_new(o, "modelId", ID_OF(x->model));
		json_object_set_new(o, "matchType", json_string(x->match_any ? "any" : "all"));
		for (size_t k = 0; k < x->n_rules; k++) {
			const struct cfg_rule *r = &x->rules[k];
			json_t *ro = json_object();
			json_object_set_new(ro, "propertyId", r->property ? jstr(r->property->id) : json_string("grouparooId"));
			json_object_set_new(ro, "op", json_string(rule_op_name(r->op)));
			if (r->match)
				json_object_set_new(ro, "match", json_string(r->match));
			if (r->op == ROP_RELATIVE_GT || r->op == ROP_RELATIVE_LT) {
				json_object_set_new(ro, "relativeMatchNumber", json_real(r->rel_number));
				json_object_set_new(ro, "relativeMatchUnit", json_string(rel_unit_name(r->rel_unit)));
				json_object_set_new(ro, "relativeMatchDirection", json_string(r->rel_add ? "add" : "subtract"));
			}
			json_array_append_new(rules, ro);
		}
		json_object_set_new(o, "rules", rules);
		json_array_append_new(a, o);
	}
	return a;
}

/* The config's destinations (class Destination) as a JSON array. */
static json_t *destinations_json(const struct config *cfg)
{
	json_t *a = json_array();
	for (size_t i = 0; i < cfg->n_destinations; i++) {
		const struct cfg_destination *x = cfg->destinations[i];
		json_t *o = json_object(), *m = json_object(), *g = json_object();
		json_object_set_new(o, "id", jstr(x->id));
		json_object_set_new(o, "name", jstr(x->name));
		json_object_set_new(o, "type", jstr(x->type));
		json_object_set_new(o, "appId", ID_OF(x->app));
		json_object_set_new(o, "modelId", ID_OF(x->model));
		json_object_set_new(o, "syncMode", json_string(sync_mode_name(x->sync_mode)));
		json_object_set_new(o, "collection", json_string(collection_name(x->collection)));
		json_object_set_new(o, "groupId", ID_OF(x->group));
		json_object_set_new(o, "maxDeletePercent", json_real(x->max_delete_percent));
		for (size_t k = 0; k < x->n_mapping; k++)
			json_object_set_new(m, x->mapping[k].remote, ID_OF(x->mapping[k].property));
		for (size_t k = 0; k < x->n_group_maps; k++)
			json_object_set_new(g, x->group_maps[k].remote, ID_OF(x->group_maps[k].group));
		json_object_set_new(o, "mapping", m);
		json_object_set_new(o, "destinationGroupMemberships", g);
		json_object_set_new(o, "options", options_json(&x->options));
		json_array_append_new(a, o);
	}
	return a;
}

/* The config's schedules (class Schedule) as a JSON array. */
static json_t *schedules_json(const struct config *cfg)
{
	json_t *a = json_array();
	for (size_t i = 0; i < cfg->n_schedules; i++) {
		const struct cfg_schedule *x = cfg->schedules[i];
		json_t *o = json_object();
		json_object_set_new(o, "id", jstr(x->id));
		json_object_set_new(o, "name", jstr(x->name));
		json_object_set_new(o, "sourceId", ID_OF(x->source));
		json_object_set_new(o, "recurring", json_boolean(x->recurring));
		json_object_set_new(o, "recurringFrequency", json_integer(x->recurring_frequency_ms));
		json_object_set_new(o, "incremental", json_boolean(x->incremental));
		json_object_set_new(o, "confirmRecords", json_boolean(x->confirm_records));
		json_object_set_new(o, "refreshEnabled", json_boolean(x->refresh_enabled));
		json_object_set_new(o, "options", options_json(&x->options));
		json_object_set_new(o, "filters", filters_json(x->filters, x->n_filters));
		json_array_append_new(a, o);
	}
	return a;
}

/* The config's alerts (class Alert) as a JSON array. */
static json_t *alerts_json(const struct config *cfg)
{
	json_t *a = json_array();
	for (size_t i = 0; i < cfg->n_alerts; i++) {
		const struct cfg_alert *x = cfg->alerts[i];
		json_t *o = json_object();
		json_object_set_new(o, "id", jstr(x->id));
		json_object_set_new(o, "name", jstr(x->name));
		json_object_set_new(o, "type", jstr(x->type));
		if (x->n_destinations) {
			json_t *d = json_array();
			for (size_t k = 0; k < x->n_destinations; k++)
				json_array_append_new(d, ID_OF(x->destinations[k]));
			json_object_set_new(o, "destinationIds", d);
		}
		json_object_set_new(o, "modelId", ID_OF(x->model));
		json_object_set_new(o, "triggers", alert_triggers_json(x));
		json_object_set_new(o, "options", options_json(&x->options));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *config_json(const struct config *cfg)
{
	json_t *root = json_object();

	json_object_set_new(root, "apps", apps_json(cfg));
	json_object_set_new(root, "models", models_json(cfg));
	json_object_set_new(root, "sources", sources_json(cfg));
	json_object_set_new(root, "properties", properties_json(cfg));
	json_object_set_new(root, "groups", groups_json(cfg));
	json_object_set_new(root, "destinations", destinations_json(cfg));
	json_object_set_new(root, "schedules", schedules_json(cfg));
	json_object_set_new(root, "alerts", alerts_json(cfg));
	return root;
}

static void print_json(const struct config *cfg)
{
	json_t *root = json_object(), *errs = json_array(), *warns = json_array();
	char *text;

	for (size_t i = 0; i < cfg->n_diags; i++)
		json_array_append_new(cfg->diags[i].severity == DIAG_ERROR ? errs : warns,
				      diag_json(&cfg->diags[i]));
	json_object_set_new(root, "valid", json_boolean(cfg->n_errors == 0));
	json_object_set_new(root, "errors", errs);
	json_object_set_new(root, "warnings", warns);
	json_object_set_new(root, "config", config_json(cfg));
	text = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2));
	if (text) {
		puts(text);
		free(text);
	}
	json_decref(root);
}

/* How each destinationGroupMemberships key will be written to Braze. */
static void print_group_readings(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_destinations; i++) {
		const struct cfg_destination *d = cfg->destinations[i];
		for (size_t j = 0; j < d->n_group_maps; j++) {
			const struct cfg_group_map *gm = &d->group_maps[j];
			if (dest_is_subscription_group(gm->remote))
				printf("destination \"%s\": \"%s\" is a Braze subscription group: members of group \"%s\" "
				       "are subscribed, leavers unsubscribed\n",
				       d->id, gm->remote, gm->group->id);
			else
				printf("destination \"%s\": \"%s\" is a value of the \"groups\" custom attribute: added for "
				       "members of group \"%s\", removed for leavers (Grouparoo's behaviour)\n",
				       d->id, gm->remote, gm->group->id);
		}
	}
}

/* Prove every app joey exports to answers with the configured key. */
static int check_apps(const struct config *cfg)
{
	int failed = 0;
	struct dest_opts opts;
	dest_opts_defaults(&opts);
	for (size_t i = 0; i < cfg->n_apps; i++) {
		const struct cfg_app *app = cfg->apps[i];
		const struct dest_ops *ops = dest_ops_for_app(app->type);
		struct jerror err = JERROR_INIT;
		if (!ops)
			continue;
		if (ops->check(app, &opts, &err)) {
			jerror_print(stderr, &err);
			failed = 1;
		} else {
			printf("app \"%s\": connection ok (%s)\n", app->id, cfg_options_str(&app->options, "restEndpoint"));
		}
		jerror_release(&err);
	}
	return failed;
}

/*
 * A source check that failed, as a config problem: at the schedule's options.column
 * when that is the column missing, else at the source. On stderr, like check_apps.
 */
static void print_source_problem(const struct cfg_source *src, const struct jerror *err)
{
	struct cfg_pos pos = src->pos;
	const struct cfg_option *col = src->schedule ? cfg_options_get(&src->schedule->options, "column") : NULL;
	char used[300];

	snprintf(used, sizeof(used), "used by schedule \"%s\"", src->schedule ? src->schedule->id : "");
	if (col && col->pos.file && err->detail.len && !strncmp(err->detail.buf, used, strlen(used)))
		pos = col->pos;
	if (pos.file)
		fprintf(stderr, "%s:%d:%d: ", pos.file, pos.line, pos.col);
	fprintf(stderr, "error: %s\n", err->msg.len ? err->msg.buf : "source check failed");
	if (err->detail.len)
		fprintf(stderr, "detail: %s\n", err->detail.buf);
	if (err->hint.len)
		fprintf(stderr, "hint: %s\n", err->hint.buf);
}

/*
 * Prove every source can be read as configured: its app connects, its table exists,
 * and so do the columns its mapping, properties (column, sortColumn, filters) and
 * schedule (options.column, the high-water mark) name, with did-you-mean hints.
 */
static int check_sources(const struct config *cfg)
{
	int failed = 0;
	for (size_t i = 0; i < cfg->n_apps; i++) {
		const struct cfg_app *app = cfg->apps[i];
		const struct source_ops *ops = source_ops_for_app(app->type);
		struct jerror err = JERROR_INIT;
		void *conn = NULL;
		size_t n = 0;
		if (!ops)
			continue;
		for (size_t k = 0; k < cfg->n_sources; k++)
			n += cfg->sources[k]->app == app;
		if (!n)
			continue;
		if (ops->connect(app, cfg->root, &conn, &err)) {
			jerror_print(stderr, &err);
			jerror_release(&err);
			failed = 1;
			continue;
		}
		for (size_t k = 0; k < cfg->n_sources; k++) {
			const struct cfg_source *src = cfg->sources[k];
			const char *col = src->schedule ? cfg_options_str(&src->schedule->options, "column") : NULL;
			if (src->app != app)
				continue;
			if (ops->check(conn, src, &err)) {
				print_source_problem(src, &err);
				failed = 1;
			} else if (col && !src->is_query) {
				printf("source \"%s\": ok (%zu propert%s, schedule column \"%s\")\n", src->id,
				       src->n_properties, src->n_properties == 1 ? "y" : "ies", col);
			} else {
				printf("source \"%s\": ok (%zu propert%s)\n", src->id, src->n_properties,
				       src->n_properties == 1 ? "y" : "ies");
			}
			jerror_release(&err);
		}
		ops->disconnect(conn);
	}
	return failed;
}

int cmd_validate(int argc, char **argv)
{
	struct cli_common c = { 0 };
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;
	enum jerr rc;
	int status;
	bool check = false;

	const struct cli_flag flags[] = { { "--check-apps", &check }, { NULL, NULL } };

	int r = cli_opt_loop(&c, argc, argv, usage, flags, "validate", NULL, NULL); /* none of its own */
	if (r != CLI_OPT_DONE)
		return r;
	cli_common_finish(&c);
	char *secrets = cli_secrets_path(&c); /* the store itself is not opened */
	struct config_opts opts = { .secrets_path = secrets, .check_files = true };
	cli_common_release(&c);

	cli_protect_memory(); /* the secrets are resolved into memory, and --check-apps may wait long */
	rc = config_load(c.config_dir, &opts, &cfg, &err);
	free(secrets);
	if (!cfg) {
		if (c.json) {
			json_t *root = json_object(), *errs = json_array(), *e = json_object();
			char *text;
			json_object_set_new(e, "message", json_string(err.msg.buf));
			json_array_append_new(errs, e);
			json_object_set_new(root, "valid", json_false());
			json_object_set_new(root, "errors", errs);
			json_object_set_new(root, "warnings", json_array());
			text = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2));
			if (text)
				puts(text);
			free(text);
			json_decref(root);
		} else {
			jerror_print(stderr, &err);
		}
		jerror_release(&err);
		return 1;
	}
	if (c.json) {
		print_json(cfg);
	} else {
		config_print_diags(cfg, stdout);
		if (rc == JERR_OK)
			print_group_readings(cfg);
		if (rc == JERR_OK)
			printf("config \"%s\" is valid: %zu object%s in %zu file%s (%zu warning%s)\n", c.config_dir,
			       cfg->n_objects, cfg->n_objects == 1 ? "" : "s", cfg->n_files,
			       cfg->n_files == 1 ? "" : "s", cfg->n_warnings, cfg->n_warnings == 1 ? "" : "s");
		else
			printf("config \"%s\" is invalid: %zu error%s, %zu warning%s\n", c.config_dir,
			       cfg->n_errors, cfg->n_errors == 1 ? "" : "s", cfg->n_warnings,
			       cfg->n_warnings == 1 ? "" : "s");
	}
	status = rc == JERR_OK ? 0 : 1;
	if (!status && check) {
		status = check_sources(cfg);
		status |= check_apps(cfg);
	}
	config_free(cfg);
	jerror_release(&err);
	return status;
}
