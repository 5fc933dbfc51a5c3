/*
 * config.h: the loaded, validated configuration (Grouparoo config-as-code classes).
 *
 * Order of calls:
 *   struct config *cfg;
 *   config_load(dir, &opts, &cfg, &err);   -- reads every *.json under dir (JSON5),
 *                                              resolves secrets, validates everything,
 *                                              links references
 *   ... use cfg->models etc. (read-only) ...
 *   config_free(cfg);
 *
 * config_load collects *all* problems in one pass into cfg->diags (errors and
 * warnings, each with file, line, column, class, id, field, message, hint). It returns
 * JERR_CONFIG when any diagnostic is an error; cfg is still returned so the caller can
 * print the diagnostics, but its object graph must then not be used. Every pointer in
 * the graph (strings, cross-references) is owned by cfg's arena and lives until
 * config_free().
 *
 * Secrets: in an option the connector catalog marks secret (apiKey, password, ssl_key:
 * catalog_option.sensitive), a value written "${NAME}" is replaced by the environment
 * variable NAME, else by NAME in the secrets file (config_opts.secrets_path; missing
 * from both: a validation error naming it). In any other option "${NAME}" is a
 * validation error and is never resolved, so no table, column or path can be made to
 * hold a secret that a message would then print. A value equal to NAME is replaced by
 * GROUPAROO_OPTION__<TOPIC>__NAME when that variable is set (Grouparoo's rule, for
 * every option), except that a non-secret app option may not take a variable that a
 * secret option of the config reads or whose name says it is a secret (KEY, PASSWORD,
 * TOKEN, SECRET). Options filled from the environment or the secrets file are flagged
 * `secret` and must never be printed: build every message with config_option_display().
 */
#ifndef JOEY_CONFIG_H
#define JOEY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/arena.h"
#include "base/compat.h"
#include "base/error.h"

/* ---- positions and diagnostics ---- */

struct cfg_pos {
	const char *file; /* path relative to the config dir; NULL if unknown */
	int line, col;    /* 1-based; 0 if unknown */
};

enum diag_severity { DIAG_ERROR, DIAG_WARNING };

struct cfg_diag {
	enum diag_severity severity;
	struct cfg_pos pos;
	const char *class_name; /* "Property", or NULL */
	const char *id;         /* object id, or NULL */
	const char *field;      /* "options.column", or NULL */
	const char *message;    /* PostgreSQL style: lower case, no final period */
	const char *hint;       /* or NULL */
};

/* ---- enums shared by all classes ---- */

enum cfg_class {
	CLASS_APP,
	CLASS_MODEL,
	CLASS_SOURCE,
	CLASS_PROPERTY,
	CLASS_GROUP,
	CLASS_DESTINATION,
	CLASS_SCHEDULE,
	CLASS_ALERT, /* joey's own class (src/alert): who hears about a sync going wrong */
	CLASS__COUNT
};

enum prop_type {
	PROP_STRING,
	PROP_INTEGER,
	PROP_FLOAT,
	PROP_BOOLEAN,
	PROP_DATE,
	PROP_EMAIL,
	PROP_PHONE, /* "phoneNumber" */
	PROP_URL,
	PROP__COUNT
};

enum agg_method {
	AGG_EXACT,
	AGG_COUNT,
	AGG_SUM,
	AGG_AVERAGE,
	AGG_MIN,
	AGG_MAX,
	AGG_MOST_RECENT,  /* "most recent value" */
	AGG_LEAST_RECENT, /* "least recent value" */
	AGG__COUNT
};

/* Property / schedule filters (Grouparoo FilterOperation). */
enum filter_op {
	FOP_EQ,
	FOP_NE,
	FOP_GT,
	FOP_GTE,
	FOP_LT,
	FOP_LTE,
	FOP_SUBSTRING,
	FOP_NOT_SUBSTRING,
	FOP_IN,
	FOP_EXISTS,
	FOP_NOT_EXISTS,
	FOP__COUNT
};

/* Group rule operators (Grouparoo ruleOpsDictionary). */
enum rule_op {
	ROP_EXISTS,
	ROP_NOT_EXISTS,
	ROP_EQ,
	ROP_NE,
	ROP_GT,
	ROP_GTE,
	ROP_LT,
	ROP_LTE,
	ROP_LIKE,
	ROP_NOT_LIKE,
	ROP_ILIKE,
	ROP_NOT_ILIKE,
	ROP_STARTS_WITH,
	ROP_ENDS_WITH,
	ROP_SUBSTRING,
	ROP_NOT_SUBSTRING,
	ROP_RELATIVE_GT, /* "in the past": within the last N units */
	ROP_RELATIVE_LT, /* "in the future": within the next N units */
	ROP__COUNT
};

enum sync_mode { SYNC_SYNC, SYNC_ADDITIVE, SYNC_ENRICH };
enum collection { COLL_NONE, COLL_GROUP, COLL_MODEL };

/* Names as written in config files ("phoneNumber", "most recent value", "startsWith"). */
const char *prop_type_name(enum prop_type t);
const char *agg_method_name(enum agg_method m);
const char *filter_op_name(enum filter_op op);
const char *rule_op_name(enum rule_op op);
const char *sync_mode_name(enum sync_mode m);
const char *collection_name(enum collection c);
const char *cfg_class_name(enum cfg_class c); /* "App", "Model", ... */
/* Is op allowed on a property of type t (Grouparoo's table)? */
bool rule_op_allowed(enum rule_op op, enum prop_type t);

/* ---- options ---- */

enum opt_kind { OPT_STRING, OPT_NUMBER, OPT_BOOL };

struct cfg_option {
	const char *key;
	enum opt_kind kind;
	const char *str; /* resolved value for OPT_STRING (secret resolved); JSON text for others */
	double num;
	bool b;
	bool secret;     /* came from the environment or the secrets file: never print str */
	bool sensitive;  /* the catalog marks the option secret (apiKey, password, ssl_key) */
	const char *ref; /* as written ("${BRAZE_KEY}" / "BRAZE_KEY"), or NULL */
	const char *env_name; /* secrets: the variable read ("BRAZE_KEY" / "GROUPAROO_OPTION__APP__BRAZE_KEY") */
	struct cfg_pos pos;
};

struct cfg_options {
	struct cfg_option *items;
	size_t n;
};

/* The option named key, or NULL. */
const struct cfg_option *cfg_options_get(const struct cfg_options *o, const char *key);
/* Its string value, or NULL if absent or not a string. */
const char *cfg_options_str(const struct cfg_options *o, const char *key);
/* What may be shown for an option: the value, or "${NAME}"/"****" for secrets (borrowed). */
const char *config_option_display(const struct cfg_option *opt);
/*
 * Is s[0..n) written as a reference "${NAME}" (any text between the braces: the loader
 * reports a bad name, config_env_name_ok)?
 */
bool config_is_reference(const char *s, size_t n);
/*
 * Is s[0..n) a name "${NAME}" may refer to: letters, digits and underscores, not starting
 * with a digit, at most CONFIG_ENV_NAME_MAX characters? The loader's check of a
 * reference, and the secrets file's of a secret's name.
 */
#define CONFIG_ENV_NAME_MAX 255
bool config_env_name_ok(const char *s, size_t n);

/* ---- classes ---- */

struct cfg_model;
struct cfg_schedule;
struct cfg_source;
struct cfg_property;
struct cfg_group;

struct cfg_app {
	const char *id, *name, *type; /* type: "sqlite", "braze", ... */
	struct cfg_options options;
	struct cfg_pos pos;
	/* options.file lies outside the data directory (config_opts.data_dir): messages
	 * never quote the file's content (a CSV header's column names) */
	bool file_unlisted;
};

struct cfg_model {
	const char *id, *name, *type; /* type: profile|account|event|custom */
	struct cfg_pos pos;
	struct cfg_property *primary_key; /* the property the primary source maps to */
	struct cfg_source *primary_source;
	/* all properties of this model, in a stable order; slot i == properties[i]->slot */
	struct cfg_property **properties;
	size_t n_properties;
	struct cfg_source **sources; /* primary first */
	size_t n_sources;
	struct cfg_group **groups;
	size_t n_groups;
	struct cfg_destination **destinations;
	size_t n_destinations;
};

struct cfg_filter {
	const char *key; /* source column */
	enum filter_op op;
	/* match: scalar as text (numbers/bools rendered as JSON text), or for FOP_IN a list */
	const char *match;
	const char **match_list;
	size_t n_match_list;
	bool match_is_number; /* the JSON value was a number */
	struct cfg_pos pos;
};

struct cfg_source {
	const char *id, *name, *type; /* "sqlite-import-table" / "sqlite-import-query" */
	struct cfg_app *app;
	struct cfg_model *model;
	struct cfg_options options; /* {table} or {query} */
	bool is_query;              /* custom-query source type */
	const char *table;          /* options.table (table sources), else NULL */
	const char *query;          /* options.query (query sources), else NULL */
	const char *mapping_column;              /* source column of `mapping` */
	struct cfg_property *mapping_property;   /* what it maps to */
	bool is_primary; /* mapping_property->source == this source */
	struct cfg_property **properties;        /* properties read from this source */
	size_t n_properties;
	const struct cfg_schedule *schedule;     /* its schedule (the first), or NULL */
	struct cfg_pos pos;
};

struct cfg_property {
	const char *id, *key;
	enum prop_type type;
	struct cfg_source *source;
	bool unique, is_array, is_primary_key;
	size_t slot; /* index in model->properties */
	/* table sources */
	const char *column;
	enum agg_method agg;
	const char *sort_column; /* or NULL */
	/* query sources */
	const char *query;
	struct cfg_filter *filters;
	size_t n_filters;
	struct cfg_options options;
	struct cfg_pos pos;
};

enum rel_unit { REL_DAYS, REL_WEEKS, REL_MONTHS, REL_QUARTERS, REL_YEARS };
/* A rule's relativeMatchUnit as written: "days", "weeks", "months", "quarters", "years". */
const char *rel_unit_name(enum rel_unit u);

/* The largest relativeMatchNumber: a million years is past every date joey reads
 * (0000-9999), and keeps now +- n units within 64-bit milliseconds. */
#define REL_NUMBER_MAX 1000000

struct cfg_rule {
	struct cfg_property *property; /* NULL for the pseudo properties below */
	bool pseudo_created_at;        /* grouparooCreatedAt (not supported: validation error) */
	enum rule_op op;
	const char *match;  /* as text; NULL for exists/notExists/relative; "null" means NULL */
	/* match parsed for the property's type (numbers, dates as epoch ms, booleans) */
	bool match_is_null;
	bool match_is_int; /* an integer property's match written as a 64-bit integer: match_int */
	int64_t match_int;
	double match_num;
	int64_t match_ms;
	bool match_bool;
	double rel_number; /* relativeMatchNumber: 0 < n <= REL_NUMBER_MAX, fractions allowed */
	enum rel_unit rel_unit;
	bool rel_add; /* relativeMatchDirection "add" (future) vs "subtract" (past) */
	struct cfg_pos pos;
};

struct cfg_group {
	const char *id, *name;
	struct cfg_model *model;
	bool match_any; /* matchType "any" (default "all") */
	struct cfg_rule *rules;
	size_t n_rules;
	size_t index; /* index in model->groups: membership bit */
	struct cfg_pos pos;
};

struct cfg_mapping {
	const char *remote;            /* Braze field name */
	struct cfg_property *property; /* mapped property */
	struct cfg_pos pos;
};

struct cfg_group_map {
	const char *remote;      /* Braze subscription group id or `groups` value */
	struct cfg_group *group;
	struct cfg_pos pos;
	const char *label;       /* the subscription group's name (subscriptionGroupNames), or NULL */
};

/* Default of options.enrichRecheckHours (docs/config.md says why). */
#define CFG_ENRICH_RECHECK_HOURS 24

struct cfg_destination {
	const char *id, *name, *type; /* "braze-export-users" */
	struct cfg_app *app;
	struct cfg_model *model;
	enum sync_mode sync_mode;
	enum collection collection;
	struct cfg_group *group; /* collection == COLL_GROUP */
	struct cfg_mapping *mapping; /* sorted by remote name */
	size_t n_mapping;
	struct cfg_group_map *group_maps; /* sorted by remote name */
	size_t n_group_maps;
	struct cfg_options options;
	double max_delete_percent; /* mass-delete guard; options.maxDeletePercent, default 10 */
	int partitions; /* key ranges a worker job splits it into; options.partitions, default 1 */
	/* enrich: a user Braze did not have is not looked up again for this long (ms);
	 * options.enrichRecheckHours, default 24 h (CFG_ENRICH_RECHECK_HOURS); 0: every run */
	int64_t enrich_recheck_ms;
	/* the sync log (engine/synclog.h): options.syncLogAppId's app, NULL when off */
	struct cfg_app *sync_log_app;
	const char *sync_log_prefix;  /* options.syncLogTablePrefix, default "joey_" */
	int sync_log_retention_days;  /* options.syncLogRetentionDays, default 90; 0: keep every row */
	struct cfg_pos pos;
};

struct cfg_schedule {
	const char *id, *name;
	struct cfg_source *source;
	bool recurring, incremental, confirm_records, refresh_enabled;
	int64_t recurring_frequency_ms;
	const char *cron; /* options.cron, validated (base/cron.h); NULL if none */
	struct cfg_options options;
	struct cfg_filter *filters;
	size_t n_filters;
	struct cfg_pos pos;
};

/*
 * Alert (joey's class, docs/config.md "Alerts"): tell someone through a channel (type)
 * when a trigger fires for a destination in scope; src/alert evaluates and delivers.
 */
enum alert_channel { ALERT_WEBHOOK, ALERT_SLACK, ALERT_EMAIL };

struct cfg_alert {
	const char *id, *name, *type; /* type: "webhook", "slack", "email" */
	enum alert_channel channel;
	/* scope: these destinations (destinationIds), else every destination of model
	 * (modelId), else every destination */
	struct cfg_destination **destinations;
	size_t n_destinations;
	struct cfg_model *model;
	/* triggers (docs/config.md); a trigger that is off is false / < 0 / 0 */
	bool run_failed;            /* triggers.runFailed */
	bool delete_guard;          /* triggers.deleteGuard */
	double failed_rows;         /* triggers.failedRows: more than N; -1 off */
	double failed_rows_percent; /* triggers.failedRowsPercent: more than N %; -1 off */
	double records_drop_percent; /* triggers.recordsDropPercent; -1 off */
	int64_t no_success_ms;      /* triggers.noSuccessFor; 0 off */
	int64_t run_longer_ms;      /* triggers.runLongerThan; 0 off */
	struct cfg_options options; /* the channel's (url, secret, host, ...) */
	struct cfg_pos pos;
};

struct config {
	struct arena arena; /* owns everything below */
	const char *dir;    /* the config directory as given */
	/* the project root: the directory holding the config directory, absolute, without
	 * symlinks (config/paths.h); relative file options are resolved from it */
	const char *root;
	struct cfg_app **apps;
	size_t n_apps;
	struct cfg_model **models;
	size_t n_models;
	struct cfg_source **sources;
	size_t n_sources;
	struct cfg_property **properties;
	size_t n_properties;
	struct cfg_group **groups;
	size_t n_groups;
	struct cfg_destination **destinations;
	size_t n_destinations;
	struct cfg_schedule **schedules;
	size_t n_schedules;
	struct cfg_alert **alerts; /* sorted by id */
	size_t n_alerts;
	struct cfg_diag *diags;
	size_t n_diags, alloc_diags;
	size_t n_errors, n_warnings;
	size_t n_files;   /* JSON files read */
	size_t n_objects; /* config objects read */
	/*
	 * The config's generation (docs/scaling.md, "One config"): the SHA-256, in hex, of
	 * snapshot. snapshot holds every config file read, in name order, each as
	 * "<path>\0<length in decimal>\0<its bytes>" (path relative to dir); loaded back
	 * with config_opts.snapshot it gives the same config and generation. It holds the
	 * files as written: "${NAME}" references, not the secrets they resolve to (but a
	 * secret written literally in a file, config_literal_secret). Arena-owned.
	 */
	char generation[65];
	const char *snapshot;
	size_t snapshot_len;
};

struct config_opts {
	/* Look up an environment variable; NULL means getenv. Tests inject their own. */
	const char *(*getenv_fn)(const char *name, void *ctx);
	void *getenv_ctx;
	/* The secrets file (borrowed path; NULL: none): a JSON object {"NAME": "value"}
	 * that "${NAME}" falls back to when the environment has no NAME. A missing file
	 * holds no secrets; one that group or others can access, or that is not an object
	 * of strings, is a validation error. See config/write.h for how it is written. */
	const char *secrets_path;
	/* The project root (borrowed), or NULL: the directory holding dir, computed by
	 * config_project_root (config/paths.h). config_write sets it when it validates a
	 * staging copy, so that paths keep resolving from the real directory's root. */
	const char *root;
	/* Also check that the files options name exist (SQLite databases, CSV files or
	 * directories), as errors at the option: `joey validate` does, runs find out
	 * when they connect. */
	bool check_files;
	/* `joey serve`: the operator's limits on changes made through the API
	 * (config/guard.h), borrowed, NULL: none (the CLI, whose user has the files and
	 * the keys already).
	 *  data_dir: where a file option set through the API may point (relative: from
	 *    the project root); an app whose file lies outside it is file_unlisted.
	 *  allow_endpoints: Braze endpoints beside Braze's own hosts that the API may
	 *    set, "URL[,URL...]" (http://127.0.0.1:4710, https://proxy.example/braze,
	 *    port "*" for any port). */
	const char *data_dir;
	const char *allow_endpoints;
	/* Read the config files from this snapshot (struct config.snapshot; borrowed)
	 * instead of walking dir; dir still names the config directory, so the project
	 * root and the files options name resolve as for the directory. NULL: dir. */
	const char *snapshot;
	size_t snapshot_len;
};

/* The environment variable name as opts (may be NULL) see it: their getenv_fn, else getenv. Borrowed; NULL: unset. */
const char *config_getenv(const struct config_opts *opts, const char *name);

/*
 * Load and validate the config directory dir (borrowed). On return *out always
 * holds a config (free with config_free), even on failure, unless the directory
 * cannot be read at all (then *out is NULL and err says why, JERR_CONFIG/JERR_IO).
 * Returns JERR_OK when there are no error diagnostics, JERR_CONFIG otherwise.
 */
enum jerr config_load(const char *dir, const struct config_opts *opts, struct config **out,
		      struct jerror *err) JOEY_WUR;
void config_free(struct config *cfg);

/*
 * The first secret option (catalog: apiKey, password, ...) of an App or Alert that a
 * file holds as a literal value rather than a "${NAME}" reference, or NULL; *owner
 * (may be NULL) gets its object's id. Such a config's snapshot holds the secret.
 */
const struct cfg_option *config_literal_secret(const struct config *cfg, const char **owner);

/* Print diagnostics, one per paragraph: "file:line:col: error: Class "id": field: msg\nhint: ...". */
void config_print_diags(const struct config *cfg, FILE *out);

/* Look-ups by id; NULL if absent. */
struct cfg_model *config_model(const struct config *cfg, const char *id);
struct cfg_destination *config_destination(const struct config *cfg, const char *id);
struct cfg_app *config_app(const struct config *cfg, const char *id);
struct cfg_alert *config_alert(const struct config *cfg, const char *id);

#endif
