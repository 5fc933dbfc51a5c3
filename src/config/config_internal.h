/*
 * config_internal.h: what the pieces of the config loader (src/config/config.c and the
 * files it calls, listed in src/config/README.md) share. Not part of the config
 * interface: callers outside src/config use config.h alone.
 *
 * Design: three passes, driven by config_load (config.c).
 *  1. files (load.c): every *.json under dir (sorted, dot-directories skipped) is
 *     parsed with the JSON5 parser into cfg's arena; each top-level object goes to
 *     ld_load_object, which reads its class and id and hands it to its class.
 *  2. objects (app.c, model.c, source.c, property.c, group.c, destination.c,
 *     schedule.c, alert.c): each raw object is checked on its own (keys, value types,
 *     enum values, option shapes and secrets through options.c) and becomes a wrapper
 *     struct (the public cfg_* struct plus the unresolved reference ids), registered
 *     with ld_add_obj.
 *  3. links (link.c): per class, objects are sorted by id (duplicates reported), then
 *     every reference is resolved in dependency order (alerts, sources, properties,
 *     primary keys, groups, destinations, schedules) and the model arrays are filled;
 *     each class file holds the ld_link_* steps of its class.
 * A failed reference leaves the pointer NULL and dependent checks are skipped, so one
 * mistake produces one diagnostic. Diagnostics are sorted by file/line/column at the end
 * (diag.c).
 *
 * Ownership: every string and wrapper lives in the config's arena (ld->a) unless a
 * comment says otherwise; struct loader's own lists are xrealloc'd and freed by
 * config_load.
 */
#ifndef JOEY_CONFIG_INTERNAL_H
#define JOEY_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "config/catalog.h"
#include "config/config.h"
#include "config/json5.h"
#include "config/paths.h"

#define MAX_DIR_DEPTH 32
#define MAX_RULES 10
#define MAX_ID_LEN 191

/* ---- loader state ---- */

/* Who a diagnostic is about: file (relative), class name and id, each may be NULL. */
struct where {
	const char *file;
	const char *cls;
	const char *id;
};

/* The wrappers: each starts with its public cfg_* struct (so with the id), then where
 * and the file order; the rest is what pass 3 needs to link it. */
struct app_x {
	struct cfg_app a;
	struct where w;
	const struct catalog_app *cat;
	size_t order;
};
struct model_x {
	struct cfg_model m;
	struct where w;
	size_t order;
};
struct source_x {
	struct cfg_source s;
	struct where w;
	size_t order;
	const struct j5_node *node;
	const char *app_id, *model_id;
	const struct j5_member *app_m, *model_m;
	const struct j5_member *mapping; /* the single mapping entry */
	const struct catalog_source *cat;
};
struct property_x {
	struct cfg_property p;
	struct where w;
	size_t order;
	const struct j5_node *node;
	const char *source_id;
	const struct j5_member *source_m;
	bool type_bad; /* type missing or invalid (reported): skip type-dependent checks */
};
struct group_x {
	struct cfg_group g;
	struct where w;
	size_t order;
	const struct j5_node *node;
	const char *model_id;
	const struct j5_member *model_m;
};
struct dest_x {
	struct cfg_destination d;
	struct where w;
	size_t order;
	const struct j5_node *node;
	const char *app_id, *model_id, *group_id;
	const struct j5_member *app_m, *model_m, *group_m;
	bool collection_bad;
};
struct schedule_x {
	struct cfg_schedule s;
	struct where w;
	size_t order;
	const struct j5_node *node;
	const char *source_id;
	const struct j5_member *source_m;
};

struct alert_x {
	struct cfg_alert al;
	struct where w;
	size_t order;
	const struct j5_node *node;
	const char *model_id;
	const struct j5_member *model_m;
	const struct j5_member *dests_m; /* destinationIds (an array), or NULL */
};

struct plain_env_use;

struct loader {
	struct config *cfg;
	struct arena *a;
	const struct config_opts *opts;
	size_t order;
	/* per-class object lists before de-duplication (xrealloc'd, freed at the end) */
	void **objs[CLASS__COUNT];
	size_t n_objs[CLASS__COUNT], alloc_objs[CLASS__COUNT];
	/* ids of objects that were rejected before registration (unknown class, bad id):
	 * references to them are not reported again */
	const char **broken_ids;
	size_t n_broken, alloc_broken;
	/* the secrets file (opts->secrets_path): an arena-owned object of strings, or NULL */
	const struct j5_node *secrets;
	/* the secrets file was refused (reported once): references it would have resolved
	 * are not reported again */
	bool secrets_refused;
	/* plain app options set from GROUPAROO_OPTION__APP__ variables (ld_check_plain_env) */
	struct plain_env_use **plain_env;
	size_t n_plain_env, alloc_plain_env;
	/* opts->data_dir resolved (owned; NULL: none or missing), once data_checked */
	char *data_real;
	bool data_checked;
	/* every file read, as config.snapshot holds them (load.c) */
	struct strbuf snap;
};

/*
 * The de-duplicated objects of every class (arena arrays of wrappers, sorted by id),
 * as pass 3 hands them from step to step (link.c).
 */
struct link_set {
	struct app_x **apps;
	struct model_x **models;
	struct source_x **srcs;
	struct property_x **props;
	struct group_x **groups;
	struct dest_x **dests;
	struct schedule_x **scheds;
	struct alert_x **alerts;
	size_t na, nm, ns, np, ng, nd, nsc, nal;
};

/* ---- diagnostics (diag.c) ---- */

#define NPOS(n) (n)->line, (n)->col

/* Add an error (warning) about w at line:col; field and hint (copied) may be NULL. */
void ld_err(struct loader *ld, const struct where *w, int line, int col, const char *field,
	    const char *hint, const char *fmt, ...) JOEY_PRINTF(7, 8);
void ld_warn(struct loader *ld, const struct where *w, int line, int col, const char *field,
	     const char *hint, const char *fmt, ...) JOEY_PRINTF(7, 8);
/* "did you mean "x"?" for word among names, or NULL (arena-owned). */
const char *ld_did_you_mean(struct loader *ld, const char *word, const char *const *names, size_t n);
/* Did-you-mean over the ids of a class array (every cfg_* struct starts with its id). */
const char *ld_did_you_mean_id(struct loader *ld, const char *word, void *const *arr, size_t n);
/* "use one of: "a", "b"" -- prefix then the names quoted, comma-separated (arena-owned). */
const char *ld_quoted_list(struct loader *ld, const char *prefix, const char *const *names, size_t n);
/* Sort cfg's diagnostics by rank, file, line, column, then the order they were made. */
void ld_sort_diags(struct config *cfg);

/* ---- generic field checking (fields.c) ---- */

enum { T_STR = 1, T_NUM = 2, T_BOOL = 4, T_OBJ = 8, T_ARR = 16 };
enum { F_REQ = 1, F_WARN = 2 };

struct field_spec {
	const char *name;
	unsigned types;
	unsigned flags;
	const char *warning; /* F_WARN: the message */
	const char *hint;
};

/* "a" or "an" for a type name. */
const char *ld_article(const char *type);
/* "a string", "null", ...: what node n is, for messages (static). */
const char *ld_found_text(const struct j5_node *n);
/*
 * Check obj's keys against specs: unknown keys (with did-you-mean), duplicate keys,
 * value types, required fields and deprecated fields. null values count as absent.
 */
void ld_check_fields(struct loader *ld, const struct where *w, const struct j5_node *obj,
		     const struct field_spec *specs, size_t n_specs, const char *prefix, const char *what);
/* Member key if present, not null and of one of types; else NULL (already reported). */
const struct j5_member *ld_get_m(const struct j5_node *obj, const char *key, unsigned types);
const char *ld_get_str(const struct j5_node *obj, const char *key);
bool ld_get_bool(const struct j5_node *obj, const char *key, bool dflt);
/* The object member key, or an empty object (static) when absent or not an object. */
const struct j5_node *ld_get_obj(const struct j5_node *obj, const char *key);
/* A required string field: reports it missing (at the object) and returns NULL. */
const char *ld_req_str(struct loader *ld, const struct where *w, const struct j5_node *obj, const char *key,
		       const struct j5_member **mo);
/*
 * The "type" field of a what ("app", "source", "destination", "alert"): type, the value
 * of member tm, against its catalog. known: the catalog has it; an unknown type is an
 * error with a did-you-mean over the catalog's names (types()). Returns known.
 */
bool ld_known_type(struct loader *ld, const struct where *w, const struct j5_member *tm, const char *type,
		   const char *what, bool known, const char *const *(*types)(size_t *n));
/*
 * A known type the catalog renamed (renamed_to; NULL: not renamed) is a warning at tm.
 * Returns the type to use: renamed_to, else type.
 */
const char *ld_renamed_type(struct loader *ld, const struct where *w, const struct j5_member *tm, const char *type,
			    const char *what, const char *renamed_to);
/*
 * A reference to an object of another class: is v (the value of field) a string, an id
 * of what ("property")? Anything else is reported and false returned.
 */
bool ld_id_str(struct loader *ld, const struct where *w, const struct j5_node *v, const char *field, const char *what);
/* An enum field: index in names, dflt if absent, -1 (reported) if invalid. */
int ld_get_enum(struct loader *ld, const struct where *w, const struct j5_node *obj, const char *key,
		const char *field, const char *const *names, size_t n, int dflt);
/*
 * What every class object starts with: its fields checked against "id", "class" and
 * "name" (every class's) then specs (the class's own; what: "an App"), then its id (from
 * w), "name" and position into the cfg struct's fields.
 */
void ld_read_head(struct loader *ld, const struct where *w, const struct j5_node *o, const struct field_spec *specs,
		  size_t n_specs, const char *what, const char **id, const char **name, struct cfg_pos *pos);
/* Register a wrapper of class c for pass 3. */
void ld_add_obj(struct loader *ld, enum cfg_class c, void *obj);

/* ---- options and secrets (options.c) ---- */

/*
 * Read the secrets file, if one is configured and exists, into ld->secrets; anything
 * wrong with it is one error diagnostic naming the file (ld->secrets_refused).
 */
void ld_load_secrets(struct loader *ld);
/*
 * Read obj (an "options" object) into o: string/number/boolean values, null and ""
 * dropped, references resolved. topic is "APP", "SOURCE", ... for GROUPAROO_OPTION__.
 * cat (borrowed, may be NULL) is the catalog of the object's options.
 */
void ld_read_options(struct loader *ld, const struct where *w, const struct j5_node *obj, const char *topic,
		     const struct catalog_option *cat, struct cfg_options *o);
/* Check options against a catalog table: unknown names, kinds, required ones. */
void ld_check_options(struct loader *ld, const struct where *w, const struct cfg_options *o,
		      const struct catalog_option *cat, const char *what, int line, int col);
/* A plain app option may not read a variable a secret option reads (after every app). */
void ld_check_plain_env(struct loader *ld);
/*
 * name (a table or column name, NULL: none) goes into SQL as an identifier: a control
 * character (below 0x20, or 0x7f) in it is an error at line:col on field. Returns
 * whether it is clean.
 */
bool ld_check_sql_name(struct loader *ld, const struct where *w, int line, int col, const char *field,
		       const char *name);
/* The same for the string option key of o, at the option, field "options.<key>". */
void ld_check_sql_name_option(struct loader *ld, const struct where *w, const struct cfg_options *o,
			      const char *key);

/* ---- pass 1: files and objects (load.c) ---- */

/*
 * Read every config file under dir (st: dir's stat) and hand each object to its
 * class; files that cannot be read or parsed are diagnostics.
 */
void ld_load_files(struct loader *ld, const char *dir, const struct stat *st);
/* The same from a snapshot of the files (config_opts.snapshot) instead of the directory. */
void ld_load_snapshot(struct loader *ld, const char *snap, size_t len);

/* ---- pass 2: one function per class, o borrowed from the file's parse ---- */

void ld_load_app(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order);
void ld_load_model(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order);
void ld_load_source(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order);
void ld_load_property(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order);
void ld_load_group(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order);
void ld_load_destination(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order);
void ld_load_schedule(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order);
void ld_load_alert(struct loader *ld, const struct where *w, const struct j5_node *o, size_t order);

/*
 * An app or destination of one of Grouparoo's destination-only plugins (catalog.h):
 * skipped with a warning instead of refused (app.c).
 */
bool ld_skip_export_only(struct loader *ld, const struct where *w, const struct j5_member *tm,
			 const char *type, const char *what);
/*
 * The app ax (resolved from appId, at app_m; NULL: nothing to check) of a source or
 * destination (what) of type type, checked against the app type its catalog entry wants
 * (app_type): 'source type "X" needs a Y app, but app "Z" is of type "W"' (app.c). A
 * snowflake-keypair app serves where a snowflake app is wanted; an unsupported app type
 * is reported elsewhere.
 */
void ld_check_app_type(struct loader *ld, const struct where *w, const struct j5_member *app_m,
		       const struct app_x *ax, const char *what, const char *type, const char *app_type);
/* filters: [{key, op, match}] of obj into *out (arena), *n_out (property.c). */
void ld_read_filters(struct loader *ld, const struct where *w, const struct j5_node *obj, struct cfg_filter **out,
		     size_t *n_out);
/* Files named by app options (config_opts.check_files), after pass 3 (app.c). */
void ld_check_files(struct loader *ld);

/* ---- pass 3: links (link.c and the class files) ---- */

void ld_add_broken(struct loader *ld, const char *id);
bool ld_is_broken(const struct loader *ld, const char *id);
/* The wrapper with this id in a sorted class array, or NULL. */
void *ld_find_id(void *const *arr, size_t n, const char *id);
/* Resolve a reference field: reports a dangling id (with did-you-mean). */
void *ld_resolve(struct loader *ld, const struct where *w, const struct j5_member *m, const char *id,
		 const char *field, enum cfg_class target, void *const *arr, size_t n);
/* Report a reference to an object of another model: "property "x" belongs to model ..." */
void ld_err_other_model(struct loader *ld, const struct where *w, const struct j5_node *at, const char *field,
			const char *hint, const char *what, const char *id, const struct cfg_model *own,
			const struct cfg_model *want);
/* Pass 3 as a whole: de-duplicate, publish the arrays in ld->cfg, link every class. */
void ld_link_all(struct loader *ld);

void ld_link_alerts(struct loader *ld, const struct link_set *ls);
void ld_link_sources(struct loader *ld, const struct link_set *ls);
void ld_link_properties(struct loader *ld, const struct link_set *ls);
void ld_link_primary_keys(struct loader *ld, const struct link_set *ls);
void ld_link_groups(struct loader *ld, const struct link_set *ls);
void ld_link_destinations(struct loader *ld, const struct link_set *ls);
void ld_link_schedules(struct loader *ld, const struct link_set *ls);
void ld_fill_model_arrays(struct loader *ld, const struct link_set *ls);
void ld_fill_source_properties(struct loader *ld, const struct link_set *ls);

#endif
