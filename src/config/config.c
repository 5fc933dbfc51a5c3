/* config.c: load a Grouparoo config directory, validate every object, link references. */
#include "base/cron.h"
#include "config/config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/suggest.h"
#include "base/timeutil.h"
#include "base/xalloc.h"
#include "config/catalog.h"
#include "config/json5.h"
#include "config/paths.h"
#include "config/names.h"

/*
 * Design: three passes.
 *  1. files: every *.json under dir (sorted, dot-directories skipped) is parsed with
 *     the JSON5 parser into cfg's arena; top-level objects are collected as `raw`.
 *  2. objects: each raw object is checked on its own (class, id, keys, value types,
 *     enum values, option shapes, secrets) and becomes a wrapper struct (the public
 *     cfg_* struct plus the unresolved reference ids).
 *  3. links: per class, objects are sorted by id (duplicates reported), then every
 *     reference is resolved in dependency order (apps, models, sources, properties,
 *     primary keys, groups, destinations, schedules) and the model arrays are filled.
 * A failed reference leaves the pointer NULL and dependent checks are skipped, so one
 * mistake produces one diagnostic. Diagnostics are sorted by file/line/column at the end.
 */

#define MAX_DIR_DEPTH 32
#define MAX_RULES 10
#define MAX_ID_LEN 191

/* ---- loader state ---- */

struct where {
	const char *file;
	const char *cls;
	const char *id;
};

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
	/* plain app options set from GROUPAROO_OPTION__APP__ variables (check_plain_env) */
	struct plain_env_use **plain_env;
	size_t n_plain_env, alloc_plain_env;
	/* opts->data_dir resolved (owned; NULL: none or missing), once data_checked */
	char *data_real;
	bool data_checked;
};

static void add_broken(struct loader *ld, const char *id)
{
	if (!id)
		return;
	ALLOC_GROW(ld->broken_ids, ld->n_broken + 1, ld->alloc_broken);
	ld->broken_ids[ld->n_broken++] = id;
}

static bool is_broken(const struct loader *ld, const char *id)
{
	for (size_t i = 0; i < ld->n_broken; i++)
		if (!strcmp(ld->broken_ids[i], id))
			return true;
	return false;
}

#define WHERE(x) (&(x)->w)

/* ---- diagnostics ---- */

JOEY_PRINTF(8, 0)
static void vdiag(struct loader *ld, enum diag_severity sev, const struct where *w, int line,
		  int col, const char *field, const char *hint, const char *fmt, va_list ap)
{
	struct config *cfg = ld->cfg;
	struct cfg_diag *d;
	struct strbuf sb = STRBUF_INIT;

	ALLOC_GROW(cfg->diags, cfg->n_diags + 1, cfg->alloc_diags);
	d = &cfg->diags[cfg->n_diags++];
	memset(d, 0, sizeof(*d));
	d->severity = sev;
	d->pos.file = w ? w->file : NULL;
	d->pos.line = line;
	d->pos.col = col;
	d->class_name = w ? w->cls : NULL;
	d->id = w ? w->id : NULL;
	d->field = field ? arena_strdup(ld->a, field) : NULL;
	strbuf_vaddf(&sb, fmt, ap);
	d->message = arena_strdup(ld->a, sb.buf);
	strbuf_release(&sb);
	d->hint = hint ? arena_strdup(ld->a, hint) : NULL;
	if (sev == DIAG_ERROR)
		cfg->n_errors++;
	else
		cfg->n_warnings++;
}

static void err_at(struct loader *ld, const struct where *w, int line, int col, const char *field,
		   const char *hint, const char *fmt, ...) JOEY_PRINTF(7, 8);
static void err_at(struct loader *ld, const struct where *w, int line, int col, const char *field,
		   const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdiag(ld, DIAG_ERROR, w, line, col, field, hint, fmt, ap);
	va_end(ap);
}

static void warn_at(struct loader *ld, const struct where *w, int line, int col, const char *field,
		    const char *hint, const char *fmt, ...) JOEY_PRINTF(7, 8);
static void warn_at(struct loader *ld, const struct where *w, int line, int col, const char *field,
		    const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdiag(ld, DIAG_WARNING, w, line, col, field, hint, fmt, ap);
	va_end(ap);
}

#define NPOS(n) (n)->line, (n)->col

/* "did you mean "x"?" for word among names, or NULL (arena-owned). */
static const char *did_you_mean(struct loader *ld, const char *word, const char *const *names, size_t n)
{
	const char *best;
	if (!word || !n)
		return NULL;
	best = suggest_closest(word, names, n);
	return best ? arena_printf(ld->a, "did you mean \"%s\"?", best) : NULL;
}

/* Did-you-mean over the ids of a class array (every cfg_* struct starts with its id). */
static const char *did_you_mean_id(struct loader *ld, const char *word, void *const *arr, size_t n)
{
	const char **names;
	const char *h;
	if (!n)
		return NULL;
	names = xmalloc(n * sizeof(*names));
	for (size_t i = 0; i < n; i++)
		names[i] = *(const char *const *)arr[i];
	h = did_you_mean(ld, word, names, n);
	free(names);
	return h;
}

static const char *article(const char *type)
{
	return strchr("aeio", type[0]) ? "an" : "a";
}

/* ---- generic field checking ---- */

enum { T_STR = 1, T_NUM = 2, T_BOOL = 4, T_OBJ = 8, T_ARR = 16 };
enum { F_REQ = 1, F_WARN = 2 };

struct field_spec {
	const char *name;
	unsigned types;
	unsigned flags;
	const char *warning; /* F_WARN: the message */
	const char *hint;
};

static unsigned type_bit(enum j5_type t)
{
	switch (t) {
	case J5_STRING: return T_STR;
	case J5_NUMBER: return T_NUM;
	case J5_BOOL: return T_BOOL;
	case J5_OBJECT: return T_OBJ;
	case J5_ARRAY: return T_ARR;
	case J5_NULL: return 0;
	}
	return 0;
}

static const char *types_text(unsigned types)
{
	switch (types) {
	case T_STR: return "a string";
	case T_NUM: return "a number";
	case T_BOOL: return "a boolean";
	case T_OBJ: return "an object";
	case T_ARR: return "an array";
	case T_STR | T_NUM | T_BOOL: return "a string, number or boolean";
	case T_STR | T_ARR: return "a string or an array";
	case T_STR | T_NUM: return "a string or a number";
	default: return "another type";
	}
}

static const char *found_text(const struct j5_node *n)
{
	switch (n->type) {
	case J5_STRING: return "a string";
	case J5_NUMBER: return "a number";
	case J5_BOOL: return "a boolean";
	case J5_OBJECT: return "an object";
	case J5_ARRAY: return "an array";
	case J5_NULL: return "null";
	}
	return "a value";
}

static const char *join_field(struct loader *ld, const char *prefix, const char *name)
{
	return prefix ? arena_printf(ld->a, "%s.%s", prefix, name) : name;
}

/*
 * Check obj's keys against specs: unknown keys (with did-you-mean), duplicate keys,
 * value types, required fields and deprecated fields. null values count as absent.
 */
static void check_fields(struct loader *ld, const struct where *w, const struct j5_node *obj,
			 const struct field_spec *specs, size_t n_specs, const char *prefix,
			 const char *what)
{
	const char **names = xmalloc((n_specs ? n_specs : 1) * sizeof(*names));
	for (size_t i = 0; i < n_specs; i++)
		names[i] = specs[i].name;

	for (size_t i = 0; i < obj->n; i++) {
		const struct j5_member *m = &obj->members[i];
		const struct field_spec *s = NULL;
		const char *field = join_field(ld, prefix, m->key);

		if (obj->n <= 256)
			for (size_t j = 0; j < i; j++)
				if (!strcmp(obj->members[j].key, m->key)) {
					err_at(ld, w, m->line, m->col, field, "remove one of them",
					       "duplicate key \"%s\" (first at line %d)", m->key,
					       obj->members[j].line);
					break;
				}
		for (size_t j = 0; j < n_specs; j++)
			if (!strcmp(specs[j].name, m->key))
				s = &specs[j];
		if (!s) {
			static const char *const db_cols[] = { "state", "locked", "createdAt", "updatedAt" };
			const char *hint = did_you_mean(ld, m->key, names, n_specs);
			if (!prefix && names_find(db_cols, ARRAY_SIZE(db_cols), m->key) >= 0)
				hint = "this is a Grouparoo database column, not a config field: remove it";
			err_at(ld, w, m->line, m->col, field, hint, "unknown field \"%s\" for %s", m->key,
			       what);
			continue;
		}
		if (m->value->type == J5_NULL)
			continue;
		if (!(type_bit(m->value->type) & s->types)) {
			err_at(ld, w, NPOS(m->value), field, NULL, "expected %s, found %s",
			       types_text(s->types), found_text(m->value));
			continue;
		}
		if (s->flags & F_WARN)
			warn_at(ld, w, m->line, m->col, field, s->hint, "%s", s->warning);
	}
	free(names);
}

/* Member key if present, not null and of one of types; else NULL (already reported). */
static const struct j5_member *get_m(const struct j5_node *obj, const char *key, unsigned types)
{
	const struct j5_member *m = j5_member(obj, key);
	if (!m || !(type_bit(m->value->type) & types))
		return NULL;
	return m;
}

static const char *get_str(const struct j5_node *obj, const char *key)
{
	const struct j5_member *m = get_m(obj, key, T_STR);
	return m ? m->value->str : NULL;
}

static bool get_bool(const struct j5_node *obj, const char *key, bool dflt)
{
	const struct j5_member *m = get_m(obj, key, T_BOOL);
	return m ? m->value->b : dflt;
}

/* A required string field: reports it missing (at the object) and returns NULL. */
static const char *req_str(struct loader *ld, const struct where *w, const struct j5_node *obj,
			   const char *key, const struct j5_member **mo)
{
	const struct j5_member *m = j5_member(obj, key);
	if (mo)
		*mo = NULL;
	if (!m || m->value->type == J5_NULL) {
		err_at(ld, w, NPOS(obj), NULL, NULL, "missing required field \"%s\"", key);
		return NULL;
	}
	if (m->value->type != J5_STRING)
		return NULL; /* reported by check_fields */
	if (mo)
		*mo = m;
	return m->value->str;
}

/* An enum field: index in names, dflt if absent, -1 (reported) if invalid. */
static int get_enum(struct loader *ld, const struct where *w, const struct j5_node *obj,
		    const char *key, const char *field, const char *const *names, size_t n, int dflt)
{
	const struct j5_member *m = get_m(obj, key, T_STR);
	int i;
	if (!m)
		return j5_member(obj, key) && j5_member(obj, key)->value->type != J5_NULL ? -1 : dflt;
	i = names_find(names, n, m->value->str);
	if (i < 0) {
		struct strbuf sb = STRBUF_INIT;
		const char *hint = did_you_mean(ld, m->value->str, names, n);
		if (!hint) {
			strbuf_addstr(&sb, "use one of: ");
			for (size_t k = 0; k < n; k++)
				strbuf_addf(&sb, "%s\"%s\"", k ? ", " : "", names[k]);
			hint = arena_strdup(ld->a, sb.buf);
			strbuf_release(&sb);
		}
		err_at(ld, w, NPOS(m->value), field ? field : key, hint, "invalid value \"%s\"",
		       m->value->str);
	}
	return i;
}

/* ---- options and secrets ---- */

static const char *env_get(struct loader *ld, const char *name)
{
	if (ld->opts && ld->opts->getenv_fn)
		return ld->opts->getenv_fn(name, ld->opts->getenv_ctx);
	return getenv(name);
}

/* NAME from the secrets file (borrowed from the arena), or NULL. */
static const char *secret_get(struct loader *ld, const char *name)
{
	const struct j5_member *m = ld->secrets ? j5_member(ld->secrets, name) : NULL;
	return m ? m->value->str : NULL;
}

/*
 * Read the secrets file, if one is configured and exists. It must be a regular file
 * that only its owner can access (like ssh keys) holding a JSON object of strings;
 * anything else is one error diagnostic naming the file.
 */
static void load_secrets(struct loader *ld)
{
	const char *path = ld->opts ? ld->opts->secrets_path : NULL;
	struct where w = { NULL, NULL, NULL };
	struct stat st;
	struct j5_node *root;
	struct j5_error je;
	char *buf;
	ssize_t got;
	size_t len = 0;
	int fd;

	if (!path)
		return;
	w.file = arena_strdup(ld->a, path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return; /* no secrets written yet */
		err_at(ld, &w, 0, 0, NULL, NULL, "could not read secrets file \"%s\": %s", path,
		       strerror(errno));
		ld->secrets_refused = true;
		return;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		err_at(ld, &w, 0, 0, NULL, NULL, "secrets file \"%s\" is not a regular file", path);
		ld->secrets_refused = true;
		close(fd);
		return;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		err_at(ld, &w, 0, 0, NULL, arena_printf(ld->a, "chmod 600 %s", path),
		       "secrets file \"%s\" is accessible by group or others (mode %04o)", path,
		       (unsigned)(st.st_mode & 07777));
		ld->secrets_refused = true;
		close(fd);
		return;
	}
	if ((uint64_t)st.st_size > J5_MAX_INPUT) {
		err_at(ld, &w, 0, 0, NULL, NULL, "secrets file \"%s\" is larger than %zu MiB", path,
		       J5_MAX_INPUT >> 20);
		ld->secrets_refused = true;
		close(fd);
		return;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size && (got = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)got;
	close(fd);
	if (!json5_parse(buf, len, ld->a, &root, &je)) {
		err_at(ld, &w, je.line, je.col, NULL, "write it as {\"NAME\": \"value\", ...}",
		       "secrets file \"%s\": syntax error: %s", path, je.msg);
		ld->secrets_refused = true;
		free(buf);
		return;
	}
	free(buf);
	if (root->type != J5_OBJECT) {
		err_at(ld, &w, NPOS(root), NULL, "write it as {\"NAME\": \"value\", ...}",
		       "secrets file \"%s\" must hold a JSON object of strings, found %s", path,
		       found_text(root));
		ld->secrets_refused = true;
		return;
	}
	for (size_t i = 0; i < root->n; i++) {
		const struct j5_member *m = &root->members[i];
		if (m->value->type != J5_STRING) {
			err_at(ld, &w, NPOS(m->value), NULL, "write it as {\"NAME\": \"value\", ...}",
			       "secrets file \"%s\": secret \"%s\" must be a string, found %s", path,
			       m->key, found_text(m->value));
			ld->secrets_refused = true;
			return;
		}
	}
	ld->secrets = root;
}

static bool is_env_name(const char *s, size_t n)
{
	if (n == 0 || n > 255 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

/* The catalog row of option key in cat (NULL-terminated; cat may be NULL), or NULL. */
static const struct catalog_option *cat_find(const struct catalog_option *cat, const char *key)
{
	for (; cat && cat->name; cat++)
		if (!strcmp(cat->name, key))
			return cat;
	return NULL;
}

/* "apiKey, password, ssl_key": the secret options of cat, for hints (arena-owned). */
static const char *secret_names(struct loader *ld, const struct catalog_option *cat)
{
	struct strbuf sb = STRBUF_INIT;
	const char *out;
	for (; cat && cat->name; cat++)
		if (cat->sensitive)
			strbuf_addf(&sb, "%s%s", sb.len ? ", " : "", cat->name);
	out = arena_strdup(ld->a, sb.len ? sb.buf : "this object has none");
	strbuf_release(&sb);
	return out;
}

/*
 * Does a GROUPAROO_OPTION__ variable name (the part after the topic) say it holds a
 * secret? "BRAZE_API_KEY", "PG_PASSWORD", "X_TOKEN": the name without '_' and '-'
 * contains a word of catalog_option_sensitive, or ends in "KEY".
 */
static bool env_name_secret(const char *name)
{
	char flat[256];
	size_t n = 0;
	for (const char *p = name; *p && n + 1 < sizeof(flat); p++)
		if (*p != '_' && *p != '-')
			flat[n++] = *p;
	flat[n] = '\0';
	return catalog_option_sensitive(flat) ||
	       (n >= 3 && !strcasecmp(flat + n - 3, "key"));
}

/* A non-secret app option set from a GROUPAROO_OPTION__APP__ variable (checked at the end). */
struct plain_env_use {
	struct cfg_option *opt;
	struct where w;
};

/*
 * Read obj (an "options" object) into o: string/number/boolean values, null and ""
 * dropped, references resolved. topic is "APP", "SOURCE", ... for GROUPAROO_OPTION__.
 * cat (borrowed, may be NULL) is the catalog of the object's options: "${NAME}" is
 * resolved only in an option it marks sensitive, and is an error in any other option
 * it lists; with no catalog (an unknown or unsupported type, reported elsewhere) and in
 * options it does not list (reported by check_options), references stay unresolved.
 */
static void read_options(struct loader *ld, const struct where *w, const struct j5_node *obj,
			 const char *topic, const struct catalog_option *cat, struct cfg_options *o)
{
	size_t n = 0;
	o->items = arena_zalloc(ld->a, (obj->n ? obj->n : 1) * sizeof(*o->items));
	o->n = 0;
	for (size_t i = 0; i < obj->n; i++) {
		const struct j5_member *m = &obj->members[i];
		const struct j5_node *v = m->value;
		const struct catalog_option *c = cat_find(cat, m->key);
		struct cfg_option *opt;
		const char *field = arena_printf(ld->a, "options.%s", m->key);
		bool dup = false;

		for (size_t j = 0; j < n && obj->n <= 256; j++)
			if (!strcmp(o->items[j].key, m->key))
				dup = true;
		if (dup) {
			err_at(ld, w, m->line, m->col, field, "remove one of them", "duplicate option \"%s\"",
			       m->key);
			continue;
		}
		if (v->type == J5_NULL || (v->type == J5_STRING && v->len == 0))
			continue;
		if (v->type == J5_OBJECT || v->type == J5_ARRAY) {
			err_at(ld, w, NPOS(v), field, NULL, "expected a string, number or boolean, found %s",
			       found_text(v));
			continue;
		}
		opt = &o->items[n++];
		opt->key = m->key;
		opt->sensitive = c && c->sensitive;
		opt->pos = (struct cfg_pos){ w->file, v->line, v->col };
		if (v->type == J5_NUMBER) {
			opt->kind = OPT_NUMBER;
			opt->num = v->num;
			opt->str = v->str;
			continue;
		}
		if (v->type == J5_BOOL) {
			opt->kind = OPT_BOOL;
			opt->b = v->b;
			opt->str = v->b ? "true" : "false";
			continue;
		}
		opt->kind = OPT_STRING;
		opt->str = v->str;
		if (v->len > 3 && v->str[0] == '$' && v->str[1] == '{' && v->str[v->len - 1] == '}') {
			const char *name = arena_strndup(ld->a, v->str + 2, v->len - 3);
			const char *val;
			if (!c)
				continue; /* unknown option or type: reported elsewhere, never resolved */
			if (!c->sensitive) {
				/* resolved here, a secret would become a table name, a path or a
				 * column, and every message naming those would print it */
				err_at(ld, w, NPOS(v), field,
				       arena_printf(ld->a,
						    "write the value itself: \"${NAME}\" is resolved only in secret options (%s); "
						    "to take it from the environment write \"NAME\" and set GROUPAROO_OPTION__%s__NAME",
						    secret_names(ld, cat), topic),
				       "option \"%s\" is not a secret and cannot refer to \"%s\"", m->key, v->str);
				opt->str = "";
				continue;
			}
			opt->ref = v->str;
			opt->secret = true;
			opt->env_name = name;
			if (!is_env_name(name, v->len - 3)) {
				err_at(ld, w, NPOS(v), field,
				       "write \"${NAME}\" with letters, digits and underscores only",
				       "invalid environment variable reference \"%s\"", v->str);
				opt->str = "";
				continue;
			}
			val = env_get(ld, name);
			if (!val)
				val = secret_get(ld, name);
			if (!val) {
				const char *sp = ld->opts ? ld->opts->secrets_path : NULL;
				opt->str = "";
				if (ld->secrets_refused)
					continue; /* the secrets file is reported instead */
				err_at(ld, w, NPOS(v), field,
				       sp ? arena_printf(ld->a, "export %s=... before running joey, or add it to the secrets file \"%s\"",
							 name, sp)
					  : arena_printf(ld->a, "export %s=... before running joey", name),
				       "environment variable \"%s\" is not set", name);
				continue;
			}
			opt->str = arena_strdup(ld->a, val);
			continue;
		}
		if (v->len <= 255 && !strchr(v->str, '=')) {
			const char *envn = arena_printf(ld->a, "GROUPAROO_OPTION__%s__%s", topic, v->str);
			const char *val = env_get(ld, envn);
			if (!val)
				continue;
			opt->ref = v->str;
			opt->secret = true;
			opt->env_name = envn;
			if (!strcmp(topic, "APP") && c && !c->sensitive) {
				/* app options are the only ones with secrets beside them: a plain one
				 * must not read a variable meant for a key (it would end up in a
				 * path, a host name or a message) */
				if (env_name_secret(v->str)) {
					err_at(ld, w, NPOS(v), field,
					       arena_printf(ld->a, "write the value of \"%s\" itself, or give the variable a name "
								   "that does not say it holds a secret", m->key),
					       "option \"%s\" is not a secret and cannot be set from %s, whose name says it holds one",
					       m->key, envn);
					opt->str = "";
					continue;
				}
				struct plain_env_use *u = arena_zalloc(ld->a, sizeof(*u));
				u->opt = opt;
				u->w = *w;
				ALLOC_GROW(ld->plain_env, ld->n_plain_env + 1, ld->alloc_plain_env);
				ld->plain_env[ld->n_plain_env++] = u;
			}
			opt->str = arena_strdup(ld->a, val);
		}
	}
	o->n = n;
}

/*
 * A variable that a secret option reads (apiKey "${X}" or "X" with
 * GROUPAROO_OPTION__APP__X) may not also set a plain app option (read_options listed
 * those): the key would become a path or a host name. Runs after every app is read.
 */
static void check_plain_env(struct loader *ld)
{
	for (size_t i = 0; i < ld->n_plain_env; i++) {
		struct plain_env_use *u = ld->plain_env[i];
		const struct app_x *owner = NULL;
		const struct cfg_option *so = NULL;
		for (size_t a = 0; a < ld->n_objs[CLASS_APP] && !so; a++) {
			const struct app_x *x = ld->objs[CLASS_APP][a];
			for (size_t k = 0; k < x->a.options.n && !so; k++) {
				const struct cfg_option *o = &x->a.options.items[k];
				if (o->sensitive && o->env_name && !strcmp(o->env_name, u->opt->env_name)) {
					so = o;
					owner = x;
				}
			}
		}
		if (!so)
			continue;
		err_at(ld, &u->w, u->opt->pos.line, u->opt->pos.col, arena_printf(ld->a, "options.%s", u->opt->key),
		       arena_printf(ld->a, "App \"%s\" reads its %s from it; write the value of \"%s\" itself", owner->a.id,
				    so->key, u->opt->key),
		       "option \"%s\" is not a secret and cannot be set from %s, which holds a secret", u->opt->key,
		       u->opt->env_name);
		u->opt->str = "";
	}
}

/* Check options against a catalog table: unknown names, kinds, required ones. */
static void check_options(struct loader *ld, const struct where *w, const struct cfg_options *o,
			  const struct catalog_option *cat, const char *what, int line, int col)
{
	const char *names[32];
	size_t n_names = 0;
	for (const struct catalog_option *c = cat; c->name && n_names < ARRAY_SIZE(names); c++)
		names[n_names++] = c->name;

	for (size_t i = 0; i < o->n; i++) {
		struct cfg_option *opt = &o->items[i];
		const struct catalog_option *c = NULL;
		const char *field = arena_printf(ld->a, "options.%s", opt->key);
		for (size_t j = 0; cat[j].name; j++)
			if (!strcmp(cat[j].name, opt->key))
				c = &cat[j];
		if (!c) {
			const char *hint = did_you_mean(ld, opt->key, names, n_names);
			if (!hint && n_names) {
				struct strbuf sb = STRBUF_INIT;
				strbuf_addstr(&sb, "valid options: ");
				for (size_t k = 0; k < n_names; k++)
					strbuf_addf(&sb, "%s\"%s\"", k ? ", " : "", names[k]);
				hint = arena_strdup(ld->a, sb.buf);
				strbuf_release(&sb);
			}
			err_at(ld, w, opt->pos.line, opt->pos.col, field, hint,
			       "unknown option \"%s\" for %s", opt->key, what);
			continue;
		}
		if (c->kind == OPT_NUMBER && opt->kind == OPT_STRING && !opt->secret) {
			char *end;
			double d = strtod(opt->str, &end);
			if (*opt->str && !*end && isfinite(d)) {
				opt->kind = OPT_NUMBER;
				opt->num = d;
				continue;
			}
		}
		if (c->kind == OPT_NUMBER && opt->kind == OPT_STRING && opt->secret) {
			char *end;
			double d = strtod(opt->str, &end);
			if (*opt->str && !*end && isfinite(d)) {
				opt->kind = OPT_NUMBER;
				opt->num = d;
				continue;
			}
			err_at(ld, w, opt->pos.line, opt->pos.col, field, NULL,
			       "expected a number in %s", config_option_display(opt));
			continue;
		}
		if (c->kind != opt->kind)
			err_at(ld, w, opt->pos.line, opt->pos.col, field, NULL, "expected %s, found %s",
			       c->kind == OPT_STRING ? "a string" : c->kind == OPT_NUMBER ? "a number" : "a boolean",
			       opt->kind == OPT_STRING ? "a string" : opt->kind == OPT_NUMBER ? "a number" : "a boolean");
	}
	for (const struct catalog_option *c = cat; c->name; c++)
		if (c->required && !cfg_options_get(o, c->name))
			err_at(ld, w, line, col, arena_printf(ld->a, "options.%s", c->name), NULL,
			       "missing required option \"%s\" for %s", c->name, what);
}

/* ---- pass 2: objects ---- */

static const struct field_spec app_fields[] = {
	{ "id", T_STR, 0, NULL, NULL },
	{ "class", T_STR, 0, NULL, NULL },
	{ "name", T_STR, 0, NULL, NULL },
	{ "type", T_STR, 0, NULL, NULL },
	{ "options", T_OBJ, 0, NULL, NULL },
	{ "refresh", T_OBJ, F_WARN, "app refresh queries are ignored by joey",
	  "use a schedule's \"recurringFrequency\" or \"cron\" option instead" },
};
static const struct field_spec model_fields[] = {
	{ "id", T_STR, 0, NULL, NULL },
	{ "class", T_STR, 0, NULL, NULL },
	{ "name", T_STR, 0, NULL, NULL },
	{ "type", T_STR, 0, NULL, NULL },
};
static const struct field_spec source_fields[] = {
	{ "id", T_STR, 0, NULL, NULL },
	{ "class", T_STR, 0, NULL, NULL },
	{ "name", T_STR, 0, NULL, NULL },
	{ "type", T_STR, 0, NULL, NULL },
	{ "appId", T_STR, 0, NULL, NULL },
	{ "modelId", T_STR, 0, NULL, NULL },
	{ "options", T_OBJ, 0, NULL, NULL },
	{ "mapping", T_OBJ, 0, NULL, NULL },
};
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
static const struct field_spec group_fields[] = {
	{ "id", T_STR, 0, NULL, NULL },
	{ "class", T_STR, 0, NULL, NULL },
	{ "name", T_STR, 0, NULL, NULL },
	{ "modelId", T_STR, 0, NULL, NULL },
	{ "rules", T_ARR, 0, NULL, NULL },
	{ "matchType", T_STR, 0, NULL, NULL },
	{ "type", T_STR, 0, NULL, NULL },
};
static const struct field_spec rule_fields[] = {
	{ "propertyId", T_STR, 0, NULL, NULL },
	{ "op", T_STR, 0, NULL, NULL },
	{ "match", T_STR | T_NUM | T_BOOL, 0, NULL, NULL },
	{ "relativeMatchNumber", T_NUM, 0, NULL, NULL },
	{ "relativeMatchUnit", T_STR, 0, NULL, NULL },
	{ "relativeMatchDirection", T_STR, 0, NULL, NULL },
};
static const struct field_spec filter_fields[] = {
	{ "key", T_STR, 0, NULL, NULL },
	{ "op", T_STR, 0, NULL, NULL },
	{ "match", T_STR | T_NUM | T_BOOL | T_ARR, 0, NULL, NULL },
};
static const struct field_spec dest_fields[] = {
	{ "id", T_STR, 0, NULL, NULL },
	{ "class", T_STR, 0, NULL, NULL },
	{ "name", T_STR, 0, NULL, NULL },
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
static const struct field_spec schedule_fields[] = {
	{ "id", T_STR, 0, NULL, NULL },
	{ "class", T_STR, 0, NULL, NULL },
	{ "name", T_STR, 0, NULL, NULL },
	{ "sourceId", T_STR, 0, NULL, NULL },
	{ "recurring", T_BOOL, 0, NULL, NULL },
	{ "recurringFrequency", T_NUM, 0, NULL, NULL },
	{ "incremental", T_BOOL, 0, NULL, NULL },
	{ "confirmRecords", T_BOOL, 0, NULL, NULL },
	{ "confirmProfiles", T_BOOL, F_WARN, "\"confirmProfiles\" is a deprecated alias of \"confirmRecords\"",
	  "rename it to \"confirmRecords\"" },
	{ "refreshEnabled", T_BOOL, 0, NULL, NULL },
	{ "options", T_OBJ, 0, NULL, NULL },
	{ "filters", T_ARR, 0, NULL, NULL },
};

static const struct field_spec alert_fields[] = {
	{ "id", T_STR, 0, NULL, NULL },
	{ "class", T_STR, 0, NULL, NULL },
	{ "name", T_STR, 0, NULL, NULL },
	{ "type", T_STR, 0, NULL, NULL },
	{ "destinationIds", T_ARR, 0, NULL, NULL },
	{ "modelId", T_STR, 0, NULL, NULL },
	{ "triggers", T_OBJ, 0, NULL, NULL },
	{ "options", T_OBJ, 0, NULL, NULL },
};

static const struct field_spec alert_trigger_fields[] = {
	{ "runFailed", T_BOOL, 0, NULL, NULL },
	{ "failedRows", T_NUM, 0, NULL, NULL },
	{ "failedRowsPercent", T_NUM, 0, NULL, NULL },
	{ "noSuccessFor", T_STR | T_NUM, 0, NULL, NULL },
	{ "deleteGuard", T_BOOL, 0, NULL, NULL },
	{ "recordsDropPercent", T_NUM, 0, NULL, NULL },
	{ "runLongerThan", T_STR | T_NUM, 0, NULL, NULL },
};

static void add_obj(struct loader *ld, enum cfg_class c, void *obj)
{
	ALLOC_GROW(ld->objs[c], ld->n_objs[c] + 1, ld->alloc_objs[c]);
	ld->objs[c][ld->n_objs[c]++] = obj;
}

static const struct j5_node EMPTY_OBJECT = { .type = J5_OBJECT };

static const struct j5_node *get_obj(const struct j5_node *obj, const char *key)
{
	const struct j5_member *m = get_m(obj, key, T_OBJ);
	return m ? m->value : &EMPTY_OBJECT;
}

/* filters: [{key, op, match}] */
static void read_filters(struct loader *ld, const struct where *w, const struct j5_node *obj,
			 struct cfg_filter **out, size_t *n_out)
{
	const struct j5_member *fm = get_m(obj, "filters", T_ARR);
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
			err_at(ld, w, NPOS(f), prefix, NULL, "expected an object, found %s", found_text(f));
			continue;
		}
		check_fields(ld, w, f, filter_fields, ARRAY_SIZE(filter_fields), prefix, "a filter");
		cf = &(*out)[n];
		cf->pos = (struct cfg_pos){ w->file, f->line, f->col };
		cf->key = get_str(f, "key");
		if (!j5_member(f, "key"))
			err_at(ld, w, NPOS(f), prefix, NULL, "missing required field \"key\"");
		if (!j5_member(f, "op")) {
			err_at(ld, w, NPOS(f), prefix, NULL, "missing required field \"op\"");
			continue;
		}
		op = get_enum(ld, w, f, "op", arena_printf(ld->a, "%s.op", prefix), filter_op_names,
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
			err_at(ld, w, NPOS(f), prefix, NULL, "missing required field \"match\" for op \"%s\"",
			       filter_op_names[op]);
			continue;
		}
		if (mm->value->type == J5_ARRAY) {
			const struct j5_node *a = mm->value;
			if (op != FOP_IN) {
				err_at(ld, w, NPOS(a), arena_printf(ld->a, "%s.match", prefix), NULL,
				       "only op \"in\" takes an array");
				continue;
			}
			cf->match_list = arena_zalloc(ld->a, (a->n ? a->n : 1) * sizeof(char *));
			for (size_t k = 0; k < a->n; k++) {
				const struct j5_node *e = a->items[k];
				if (e->type != J5_STRING && e->type != J5_NUMBER && e->type != J5_BOOL) {
					err_at(ld, w, NPOS(e), arena_printf(ld->a, "%s.match[%zu]", prefix, k), NULL,
					       "expected a string, number or boolean, found %s", found_text(e));
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

static bool valid_id(const char *id, size_t len)
{
	if (len == 0 || len > MAX_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(isalnum((unsigned char)id[i]) || id[i] == '_' || id[i] == '-'))
			return false;
	return true;
}


/*
 * An app or destination of one of Grouparoo's destination-only plugins (catalog.h):
 * skipped with a warning instead of refused. what: "app and its destinations are".
 */
static bool skip_export_only(struct loader *ld, const struct where *w, const struct j5_member *tm,
			     const char *type, const char *what)
{
	if (!catalog_export_only(type))
		return false;
	warn_at(ld, w, NPOS(tm->value), "type", "joey exports to Braze only; delete the file to silence this warning",
		"type \"%s\" belongs to a Grouparoo destination plugin joey does not export to: the %s skipped",
		type, what);
	return true;
}

/*
 * Does the file option opt (of an app that reads files) lie outside the data directory
 * (config_opts.data_dir, `joey serve`)? Then messages never quote the file's content.
 * Without a data directory (the CLI) every file may be quoted.
 */
static bool file_unlisted(struct loader *ld, const struct cfg_option *opt)
{
	const char *why;
	char *path;
	bool out;
	if (!ld->opts || !ld->opts->data_dir || !opt || opt->kind != OPT_STRING || !*opt->str)
		return false;
	if (!ld->data_checked) {
		ld->data_real = config_data_dir(ld->cfg->root, ld->opts->data_dir);
		ld->data_checked = true;
	}
	if (!ld->data_real)
		return true;
	path = config_resolve_path(ld->cfg->root, opt->str);
	out = !config_path_inside(path, ld->data_real, &why);
	free(path);
	return out;
}

/*
 * A duration: a number of milliseconds (Grouparoo's unit), or a string "90s", "15m",
 * "6h", "2d". Reports a bad one at m and returns 0; at least one second.
 */
static int64_t read_duration(struct loader *ld, const struct where *w, const struct j5_member *m,
			     const char *field)
{
	const struct j5_node *v = m->value;
	double ms = -1;
	if (v->type == J5_NUMBER) {
		ms = v->num;
	} else if (v->type == J5_STRING && v->len >= 2) {
		char *end;
		double n = strtod(v->str, &end);
		static const struct {
			char unit;
			double ms;
		} units[] = { { 's', 1000 }, { 'm', 60000 }, { 'h', 3600000 }, { 'd', 86400000 } };
		if (end != v->str && end[0] && !end[1] && isfinite(n) && !isspace((unsigned char)v->str[0]))
			for (size_t i = 0; i < ARRAY_SIZE(units); i++)
				if (end[0] == units[i].unit)
					ms = n * units[i].ms;
	}
	if (!(ms >= 1000 && ms <= 366.0 * 86400000)) {
		err_at(ld, w, NPOS(v), field,
		       "write a duration of at least one second and at most a year: \"90s\", \"15m\", \"6h\", \"2d\" or a number of milliseconds",
		       "invalid duration %s%s%s", v->type == J5_STRING ? "\"" : "", v->str ? v->str : "?",
		       v->type == J5_STRING ? "\"" : "");
		return 0;
	}
	return (int64_t)ms;
}

static bool host_is_loopback(const char *h)
{
	return h && (!strcmp(h, "127.0.0.1") || !strcasecmp(h, "localhost") || !strcmp(h, "::1") ||
		     !strcmp(h, "[::1]"));
}

/* An Alert's url option: http(s), plain http only on loopback. */
static void check_alert_url(struct loader *ld, const struct where *w, const struct cfg_option *u)
{
	const char *s = u->str, *h, *hint = "use an https:// URL";
	size_t hl;
	char host[256];
	if (!s || !*s)
		return;
	if (!strncasecmp(s, "https://", 8)) {
		h = s + 8;
	} else if (!strncasecmp(s, "http://", 7)) {
		h = s + 7;
	} else {
		err_at(ld, w, u->pos.line, u->pos.col, "options.url", hint, "URL %s is not an http:// or https:// URL",
		       config_option_display(u));
		return;
	}
	if (h[0] == '[')
		hl = strcspn(h, "]") + 1;
	else
		hl = strcspn(h, ":/?#");
	if (!hl || hl >= sizeof(host) || memchr(h, '@', strcspn(h, "/?#")) || strpbrk(s, " \t\r\n")) {
		err_at(ld, w, u->pos.line, u->pos.col, "options.url", "write scheme://host[:port]/path, without a user part or spaces",
		       "URL %s is not valid", config_option_display(u));
		return;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (!strncasecmp(s, "http://", 7) && !host_is_loopback(host))
		err_at(ld, w, u->pos.line, u->pos.col, "options.url", hint,
		       "plain http URL %s is only allowed for 127.0.0.1 and localhost", config_option_display(u));
}

/* "a@b.example, c@d.example": every address has one '@' and none of <>, quotes, line breaks. */
static bool addresses_ok(const char *s, bool many)
{
	size_t n = 0;
	while (*s) {
		size_t len;
		s += strspn(s, ", ");
		len = strcspn(s, ",");
		while (len && s[len - 1] == ' ')
			len--;
		if (!len)
			break;
		const char *at = memchr(s, '@', len);
		if (!at || at == s || at == s + len - 1 || memchr(at + 1, '@', (size_t)(s + len - at - 1)))
			return false;
		for (size_t i = 0; i < len; i++)
			if (strchr("<>\"'()[]\\;: \t\r\n", s[i]) || (unsigned char)s[i] < 0x20)
				return false;
		n++;
		s += len;
		s += strcspn(s, ",");
	}
	return n > 0 && (many || n == 1);
}

static void load_alert(struct loader *ld, const struct where *w0, const struct j5_node *o, size_t order)
{
	struct alert_x *x = arena_zalloc(ld->a, sizeof(*x));
	const struct where *w = &x->w;
	const struct j5_member *tm, *trg;
	const struct catalog_app *cat = NULL;
	const char *type;
	bool any = false;

	x->w = *w0;
	x->order = order;
	x->node = o;
	check_fields(ld, w, o, alert_fields, ARRAY_SIZE(alert_fields), NULL, "an Alert");
	x->al.id = w0->id;
	x->al.name = get_str(o, "name");
	x->al.pos = (struct cfg_pos){ w0->file, o->line, o->col };
	x->al.failed_rows = x->al.failed_rows_percent = x->al.records_drop_percent = -1;
	type = req_str(ld, w, o, "type", &tm);
	x->al.type = type;
	if (type) {
		size_t n;
		const char *const *names = catalog_alert_types(&n);
		cat = catalog_alert(type);
		if (!cat)
			err_at(ld, w, NPOS(tm->value), "type", did_you_mean(ld, type, names, n),
			       "unknown alert type \"%s\"", type);
		else
			x->al.channel = (enum alert_channel)(cat - catalog_alert(names[0]));
	}
	read_options(ld, w, get_obj(o, "options"), "ALERT", cat ? cat->options : NULL, &x->al.options);
	if (cat) {
		check_options(ld, w, &x->al.options, cat->options, arena_printf(ld->a, "%s %s alert", article(type), type),
			      o->line, o->col);
		const struct cfg_option *u = cfg_options_get(&x->al.options, "url");
		if (u && u->kind == OPT_STRING)
			check_alert_url(ld, w, u);
		if (x->al.channel == ALERT_EMAIL) {
			const struct cfg_option *h = cfg_options_get(&x->al.options, "host");
			const struct cfg_option *port = cfg_options_get(&x->al.options, "port");
			const struct cfg_option *tls = cfg_options_get(&x->al.options, "starttls");
			const struct cfg_option *from = cfg_options_get(&x->al.options, "from");
			const struct cfg_option *to = cfg_options_get(&x->al.options, "to");
			if (h && h->kind == OPT_STRING && (strpbrk(h->str, "/@ \t\r\n?#") || !*h->str))
				err_at(ld, w, h->pos.line, h->pos.col, "options.host", "write the SMTP server's name or address only, e.g. \"smtp.example.com\"",
				       "host \"%s\" is not a host name", config_option_display(h));
			if (port && port->kind == OPT_NUMBER && (port->num < 1 || port->num > 65535 || port->num != floor(port->num)))
				err_at(ld, w, port->pos.line, port->pos.col, "options.port", "587 (submission with STARTTLS) is usual",
				       "port must be a whole number from 1 to 65535, found %s", config_option_display(port));
			if (tls && tls->kind == OPT_BOOL && !tls->b && !(h && h->kind == OPT_STRING && host_is_loopback(h->str)))
				err_at(ld, w, tls->pos.line, tls->pos.col, "options.starttls",
				       "remove it: mail to another machine is always sent over TLS (STARTTLS); only a relay on 127.0.0.1 or localhost may be spoken to in plain text",
				       "starttls false is only allowed for a server on 127.0.0.1 or localhost");
			if (from && from->kind == OPT_STRING && !addresses_ok(from->str, false))
				err_at(ld, w, from->pos.line, from->pos.col, "options.from", "write one address such as \"joey@example.com\"",
				       "from \"%s\" is not an email address", config_option_display(from));
			if (to && to->kind == OPT_STRING && !addresses_ok(to->str, true))
				err_at(ld, w, to->pos.line, to->pos.col, "options.to",
				       "write addresses separated by commas: \"ops@example.com, data@example.com\"",
				       "to \"%s\" is not a list of email addresses", config_option_display(to));
		}
	}
	trg = j5_member(o, "triggers");
	if (!trg || trg->value->type == J5_NULL) {
		err_at(ld, w, NPOS(o), NULL, "add \"triggers\": {\"runFailed\": true} (docs/config.md lists every trigger)",
		       "missing required field \"triggers\"");
	} else if (trg->value->type == J5_OBJECT) {
		const struct j5_node *t = trg->value;
		const struct j5_member *m;
		check_fields(ld, w, t, alert_trigger_fields, ARRAY_SIZE(alert_trigger_fields), "triggers", "triggers");
		x->al.run_failed = get_bool(t, "runFailed", false);
		x->al.delete_guard = get_bool(t, "deleteGuard", false);
		static const struct {
			const char *key;
			double max;
		} nums[] = { { "failedRows", 1e15 }, { "failedRowsPercent", 100 }, { "recordsDropPercent", 100 } };
		double *slot[] = { &x->al.failed_rows, &x->al.failed_rows_percent, &x->al.records_drop_percent };
		for (size_t i = 0; i < ARRAY_SIZE(nums); i++) {
			if (!(m = get_m(t, nums[i].key, T_NUM)))
				continue;
			const char *field = arena_printf(ld->a, "triggers.%s", nums[i].key);
			if (m->value->num < 0 || m->value->num > nums[i].max || (i == 0 && m->value->num != floor(m->value->num)))
				err_at(ld, w, NPOS(m->value), field, i == 0 ? "a whole number of rows: the alert fires when more rows than this fail"
									    : "a percentage from 0 to 100: the alert fires above it",
				       "%s must be %s, found %s", nums[i].key, i == 0 ? "a whole number of at least 0" : "between 0 and 100",
				       m->value->str);
			else
				*slot[i] = m->value->num;
		}
		if ((m = get_m(t, "noSuccessFor", T_STR | T_NUM)))
			x->al.no_success_ms = read_duration(ld, w, m, "triggers.noSuccessFor");
		if ((m = get_m(t, "runLongerThan", T_STR | T_NUM)))
			x->al.run_longer_ms = read_duration(ld, w, m, "triggers.runLongerThan");
		any = x->al.run_failed || x->al.delete_guard || x->al.failed_rows >= 0 || x->al.failed_rows_percent >= 0 ||
		      x->al.records_drop_percent >= 0 || x->al.no_success_ms > 0 || x->al.run_longer_ms > 0;
		if (!any)
			err_at(ld, w, NPOS(t), "triggers",
			       "add at least one: runFailed, failedRows, failedRowsPercent, noSuccessFor, deleteGuard, recordsDropPercent, runLongerThan",
			       "an alert needs at least one trigger");
	}
	x->model_id = get_str(o, "modelId");
	x->model_m = get_m(o, "modelId", T_STR);
	x->dests_m = get_m(o, "destinationIds", T_ARR);
	if (x->dests_m && x->model_m)
		err_at(ld, w, NPOS(x->model_m->value), "modelId", "keep one: destinationIds names the destinations, modelId takes all of a model's",
		       "an alert takes destinationIds or modelId, not both");
	add_obj(ld, CLASS_ALERT, x);
}

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
		err_at(ld, w, rh->pos.line, rh->pos.col, "options.enrichRecheckHours",
		       "hours before a user Braze did not have is looked up again; 0 looks up on every run",
		       "enrichRecheckHours must be between 0 and 8760 (a year), found %s", config_option_display(rh));
		return;
	}
	d->enrich_recheck_ms = (int64_t)(rh->num * 3600 * 1000 + 0.5);
	if (d->sync_mode != SYNC_ENRICH)
		warn_at(ld, w, rh->pos.line, rh->pos.col, "options.enrichRecheckHours",
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
			err_at(ld, w, o->pos.line, o->pos.col, arena_printf(ld->a, "options.%s", dependent[i]),
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
			err_at(ld, w, px->pos.line, px->pos.col, "options.syncLogTablePrefix",
			       "use letters, digits and '_' (not first), at most 40 characters, e.g. \"joey_\"",
			       "syncLogTablePrefix must be a table name prefix, found \"%s\"", config_option_display(px));
	}
	if (rd && rd->kind == OPT_NUMBER) {
		if (rd->num < 0 || rd->num > 36500 || rd->num != (double)(int)rd->num)
			err_at(ld, w, rd->pos.line, rd->pos.col, "options.syncLogRetentionDays",
			       "days the log keeps rows; 0 keeps every row",
			       "syncLogRetentionDays must be a whole number from 0 to 36500, found %s",
			       config_option_display(rd));
		else
			d->sync_log_retention_days = (int)rd->num;
	}
}

static void load_object(struct loader *ld, const char *file, const struct j5_node *o)
{
	static const char *const known[] = { "app", "model", "source", "property", "group",
					     "destination", "schedule", "alert", "setting", "apikey", "team",
					     "teammember", "record", "profile" };
	static const char *const display[] = { "App", "Model", "Source", "Property", "Group",
					       "Destination", "Schedule", "Alert", "Setting", "ApiKey", "Team",
					       "TeamMember", "Record", "Profile" };
	_Static_assert(CLASS__COUNT == 8, "known[] lists the classes first, then the ignored ones");
	struct where w0 = { file, NULL, NULL };
	const struct j5_member *cm = j5_member(o, "class"), *im = j5_member(o, "id");
	char lower[32];
	size_t len, k = 0;
	const char *cs;
	int ci;
	const char *id;

	ld->cfg->n_objects++;
	if (im && im->value->type == J5_STRING)
		w0.id = im->value->str;
	if (!cm || cm->value->type == J5_NULL) {
		err_at(ld, &w0, NPOS(o), NULL,
		       "add \"class\": one of App, Model, Source, Property, Group, Destination, Schedule, Alert",
		       "missing required field \"class\"");
		return;
	}
	if (cm->value->type != J5_STRING) {
		err_at(ld, &w0, NPOS(cm->value), "class", NULL, "expected a string, found %s",
		       found_text(cm->value));
		add_broken(ld, w0.id);
		return;
	}
	cs = cm->value->str;
	len = cm->value->len;
	while (len && isspace((unsigned char)*cs)) {
		cs++;
		len--;
	}
	while (len && isspace((unsigned char)cs[len - 1]))
		len--;
	if (len < sizeof(lower)) {
		for (k = 0; k < len; k++)
			lower[k] = (char)tolower((unsigned char)cs[k]);
	}
	lower[len < sizeof(lower) ? len : 0] = '\0';
	ci = names_find(known, ARRAY_SIZE(known), lower);
	if (ci < 0) {
		err_at(ld, &w0, NPOS(cm->value), "class", did_you_mean(ld, cm->value->str, display, CLASS__COUNT),
		       "unknown class \"%s\"", cm->value->str);
		add_broken(ld, w0.id);
		return;
	}
	w0.cls = display[ci];
	if (ci >= CLASS__COUNT) {
		if (ci >= CLASS__COUNT + 4)
			warn_at(ld, &w0, NPOS(o), NULL, "sample records are only used by Grouparoo's UI",
				"%s objects are ignored by joey", display[ci]);
		else
			warn_at(ld, &w0, NPOS(o), NULL, NULL, "%s objects are ignored by joey", display[ci]);
		return;
	}
	w0.cls = class_names[ci];
	if (!im || im->value->type == J5_NULL) {
		const char *name = get_str(o, "name");
		if (name)
			err_at(ld, &w0, NPOS(o), NULL, NULL, "object \"%s\" is missing required field \"id\"", name);
		else
			err_at(ld, &w0, NPOS(o), NULL, NULL, "missing required field \"id\"");
		return;
	}
	if (im->value->type != J5_STRING) {
		err_at(ld, &w0, NPOS(im->value), "id", NULL, "expected a string, found %s", found_text(im->value));
		return;
	}
	id = im->value->str;
	if (!valid_id(id, im->value->len)) {
		add_broken(ld, id);
		w0.id = NULL;
		err_at(ld, &w0, NPOS(im->value), "id",
		       "ids may contain only letters, digits, \"_\" and \"-\" (at most 191 characters)",
		       "invalid id \"%.200s\"", id);
		return;
	}

	struct where w = { file, class_names[ci], id };
	const char *type;
	const struct j5_member *tm;
	size_t order = ld->order++;

	switch ((enum cfg_class)ci) {
	case CLASS_APP: {
		struct app_x *x = arena_zalloc(ld->a, sizeof(*x));
		x->w = w;
		x->order = order;
		check_fields(ld, &w, o, app_fields, ARRAY_SIZE(app_fields), NULL, "an App");
		x->a.id = id;
		x->a.name = get_str(o, "name");
		x->a.pos = (struct cfg_pos){ file, o->line, o->col };
		type = req_str(ld, &w, o, "type", &tm);
		x->a.type = type;
		if (skip_export_only(ld, &w, tm, type, "app and its destinations are"))
			break;
		x->cat = catalog_app(type);
		read_options(ld, &w, get_obj(o, "options"), "APP", x->cat && x->cat->supported ? x->cat->options : NULL,
			     &x->a.options);
		if (type) {
			size_t n;
			const char *const *names = catalog_app_types(&n);
			x->cat = catalog_app(type);
			if (!x->cat)
				err_at(ld, &w, NPOS(tm->value), "type", did_you_mean(ld, type, names, n),
				       "unknown app type \"%s\"", type);
			else if (!x->cat->supported) {
				struct strbuf hint = STRBUF_INIT;
				strbuf_addstr(&hint, "joey supports these app types:");
				for (size_t t = 0; t < n; t++) {
					const struct catalog_app *ca = catalog_app(names[t]);
					if (ca && ca->supported)
						strbuf_addf(&hint, " \"%s\"", names[t]);
				}
				err_at(ld, &w, NPOS(tm->value), "type", arena_strdup(ld->a, hint.buf),
				       "app type \"%s\" is not supported yet by joey", type);
				strbuf_release(&hint);
			}
		}
		if (x->cat && x->cat->supported) {
			check_options(ld, &w, &x->a.options, x->cat->options,
				      arena_printf(ld->a, "%s %s app", article(type), type), o->line, o->col);
			if (!strcmp(type, "braze")) {
				const struct cfg_option *key = cfg_options_get(&x->a.options, "apiKey");
				bool key_ok = true;
				for (const char *c = key && key->kind == OPT_STRING ? key->str : ""; *c; c++)
					key_ok &= *c > ' ' && *c < 0x7f;
				if (!key_ok) /* it goes into an HTTP header: no spaces, controls or line breaks */
					err_at(ld, &w, key->pos.line, key->pos.col, "options.apiKey",
					       "copy the key again from Braze's dashboard (Settings > APIs and Identifiers)",
					       "the API key %s contains spaces, line breaks or other characters an API key cannot have",
					       config_option_display(key));
				const struct cfg_option *rl = cfg_options_get(&x->a.options, "rateLimits");
				int64_t rl_n, rl_w;
				const char *rl_bad = NULL;
				if (rl && rl->kind == OPT_STRING && !catalog_rate_limit(rl->str, "", &rl_n, &rl_w, &rl_bad) &&
				    rl_bad)
					err_at(ld, &w, rl->pos.line, rl->pos.col, "options.rateLimits",
					       "write ENDPOINT=REQUESTS/SECONDS, comma-separated, e.g. \"track=3000/3,delete=20000/60\" "
					       "(endpoints: track, delete, export_ids, subscription)",
					       "rateLimits \"%s\" is not valid%s%s%s", config_option_display(rl),
					       rl->secret ? "" : " at \"", rl->secret ? "" : rl_bad, rl->secret ? "" : "\"");
				struct cfg_option *ep = (struct cfg_option *)cfg_options_get(&x->a.options, "restEndpoint");
				if (ep && ep->kind == OPT_STRING && *ep->str) {
					const char *s = ep->str;
					if (!strncmp(s, "https://", 8)) {
						/* fine */
					} else if (!strncmp(s, "http://", 7)) {
						const char *h = s + 7;
						size_t hl = strcspn(h, ":/");
						if (!((hl == 9 && !strncmp(h, "127.0.0.1", 9)) ||
						      (hl == 9 && !strncmp(h, "localhost", 9))))
							err_at(ld, &w, ep->pos.line, ep->pos.col, "options.restEndpoint",
							       "use an https:// endpoint such as \"https://rest.iad-01.braze.com\"",
							       "plain http endpoint \"%s\" is only allowed for 127.0.0.1 and localhost",
							       config_option_display(ep));
					} else if (strstr(s, "://")) {
						err_at(ld, &w, ep->pos.line, ep->pos.col, "options.restEndpoint",
						       "use an https:// endpoint such as \"https://rest.iad-01.braze.com\"",
						       "unsupported URL scheme in endpoint \"%s\"", config_option_display(ep));
					} else {
						ep->str = arena_printf(ld->a, "https://%s", s);
					}
				}
			}
			x->a.file_unlisted = file_unlisted(ld, cfg_options_get(&x->a.options, "file"));
		}
		add_obj(ld, CLASS_APP, x);
		break;
	}
	case CLASS_MODEL: {
		static const char *const types[] = { "profile", "account", "event", "custom" };
		struct model_x *x = arena_zalloc(ld->a, sizeof(*x));
		x->w = w;
		x->order = order;
		check_fields(ld, &w, o, model_fields, ARRAY_SIZE(model_fields), NULL, "a Model");
		x->m.id = id;
		x->m.name = get_str(o, "name");
		x->m.pos = (struct cfg_pos){ file, o->line, o->col };
		x->m.type = req_str(ld, &w, o, "type", NULL);
		if (x->m.type)
			get_enum(ld, &w, o, "type", NULL, types, ARRAY_SIZE(types), 0);
		add_obj(ld, CLASS_MODEL, x);
		break;
	}
	case CLASS_SOURCE: {
		struct source_x *x = arena_zalloc(ld->a, sizeof(*x));
		const struct j5_member *mm;
		x->w = w;
		x->order = order;
		x->node = o;
		check_fields(ld, &w, o, source_fields, ARRAY_SIZE(source_fields), NULL, "a Source");
		x->s.id = id;
		x->s.name = get_str(o, "name");
		x->s.pos = (struct cfg_pos){ file, o->line, o->col };
		type = req_str(ld, &w, o, "type", &tm);
		x->s.type = type;
		read_options(ld, &w, get_obj(o, "options"), "SOURCE",
			     catalog_source(type) ? catalog_source(type)->options : NULL, &x->s.options);
		x->app_id = req_str(ld, &w, o, "appId", &x->app_m);
		x->model_id = req_str(ld, &w, o, "modelId", &x->model_m);
		if (type) {
			size_t n;
			const char *const *names = catalog_source_types(&n);
			x->cat = catalog_source(type);
			if (!x->cat) {
				err_at(ld, &w, NPOS(tm->value), "type", did_you_mean(ld, type, names, n),
				       "unknown source type \"%s\"", type);
			} else if (x->cat->renamed_to) {
				warn_at(ld, &w, NPOS(tm->value), "type",
					arena_printf(ld->a, "write \"%s\"", x->cat->renamed_to),
					"source type \"%s\" was renamed to \"%s\"", type, x->cat->renamed_to);
				x->s.type = x->cat->renamed_to;
			}
			if (x->cat) {
				x->s.is_query = x->cat->is_query;
				check_options(ld, &w, &x->s.options, x->cat->options,
					      arena_printf(ld->a, "a %s source", x->s.type), o->line, o->col);
				x->s.table = x->s.is_query ? NULL : cfg_options_str(&x->s.options, "table");
				x->s.query = x->s.is_query ? cfg_options_str(&x->s.options, "query") : NULL;
			}
		}
		mm = j5_member(o, "mapping");
		if (!mm || mm->value->type == J5_NULL) {
			err_at(ld, &w, NPOS(o), NULL,
			       "add \"mapping\": {\"<source column>\": \"<property id>\"}",
			       "missing required field \"mapping\"");
		} else if (mm->value->type == J5_OBJECT) {
			if (mm->value->n != 1) {
				err_at(ld, &w, NPOS(mm->value), "mapping",
				       "map exactly one source column to a property: {\"<column>\": \"<property id>\"}",
				       "mapping must have exactly one entry, found %zu", mm->value->n);
			} else if (mm->value->members[0].value->type != J5_STRING) {
				const struct j5_member *e = &mm->value->members[0];
				err_at(ld, &w, NPOS(e->value), arena_printf(ld->a, "mapping.%s", e->key), NULL,
				       "expected a property id (a string), found %s", found_text(e->value));
			} else {
				x->mapping = &mm->value->members[0];
				x->s.mapping_column = x->mapping->key;
			}
		}
		add_obj(ld, CLASS_SOURCE, x);
		break;
	}
	case CLASS_PROPERTY: {
		struct property_x *x = arena_zalloc(ld->a, sizeof(*x));
		int t;
		x->w = w;
		x->order = order;
		x->node = o;
		check_fields(ld, &w, o, property_fields, ARRAY_SIZE(property_fields), NULL, "a Property");
		x->p.id = id;
		x->p.key = get_str(o, "key");
		if (!x->p.key)
			x->p.key = get_str(o, "name");
		if (!x->p.key)
			x->p.key = id;
		x->p.pos = (struct cfg_pos){ file, o->line, o->col };
		x->source_id = req_str(ld, &w, o, "sourceId", &x->source_m);
		x->type_bad = true;
		if (req_str(ld, &w, o, "type", NULL)) {
			t = get_enum(ld, &w, o, "type", NULL, prop_type_names, PROP__COUNT, 0);
			x->p.type = t < 0 ? PROP_STRING : (enum prop_type)t;
			x->type_bad = t < 0;
		}
		x->p.unique = get_bool(o, "unique", false);
		x->p.is_array = get_bool(o, "isArray", false);
		if (x->p.unique && x->p.is_array)
			err_at(ld, &w, NPOS(j5_member(o, "isArray")->value), "isArray",
			       "remove \"isArray\" or \"unique\"", "unique properties cannot be arrays");
		/* the query sources' table lists every property option (none is secret) */
		read_options(ld, &w, get_obj(o, "options"), "PROPERTY", catalog_property_options(true),
			     &x->p.options);
		read_filters(ld, &w, o, &x->p.filters, &x->p.n_filters);
		add_obj(ld, CLASS_PROPERTY, x);
		break;
	}
	case CLASS_GROUP: {
		struct group_x *x = arena_zalloc(ld->a, sizeof(*x));
		const char *gt;
		const struct j5_member *gm;
		static const char *const match_types[] = { "all", "any" };
		x->w = w;
		x->order = order;
		x->node = o;
		check_fields(ld, &w, o, group_fields, ARRAY_SIZE(group_fields), NULL, "a Group");
		x->g.id = id;
		x->g.name = get_str(o, "name");
		x->g.pos = (struct cfg_pos){ file, o->line, o->col };
		x->model_id = req_str(ld, &w, o, "modelId", &x->model_m);
		gm = get_m(o, "type", T_STR);
		gt = gm ? gm->value->str : NULL;
		if (gt && !strcmp(gt, "manual"))
			err_at(ld, &w, NPOS(gm->value), "type",
			       "express membership with rules (e.g. on a boolean property)",
			       "manual groups are not supported (Grouparoo removed them in 0.8)");
		else if (gt)
			warn_at(ld, &w, NPOS(gm->value), "type", "remove it",
				"group \"type\" is deprecated and ignored");
		if (get_enum(ld, &w, o, "matchType", NULL, match_types, 2, 0) == 1) {
			x->g.match_any = true;
			warn_at(ld, &w, NPOS(j5_member(o, "matchType")->value), "matchType",
				"Grouparoo ignored \"matchType\" in config files and always matched all rules",
				"joey honours \"matchType\": \"any\" (a record needs to match only one rule)");
		}
		add_obj(ld, CLASS_GROUP, x);
		break;
	}
	case CLASS_DESTINATION: {
		static const char *const sync_modes[] = { "sync", "additive", "enrich" };
		static const char *const colls[] = { "none", "group", "model" };
		struct dest_x *x = arena_zalloc(ld->a, sizeof(*x));
		const struct catalog_destination *cat = NULL;
		int v;
		x->w = w;
		x->order = order;
		x->node = o;
		check_fields(ld, &w, o, dest_fields, ARRAY_SIZE(dest_fields), NULL, "a Destination");
		x->d.id = id;
		x->d.name = get_str(o, "name");
		x->d.pos = (struct cfg_pos){ file, o->line, o->col };
		type = req_str(ld, &w, o, "type", &tm);
		x->d.type = type;
		if (skip_export_only(ld, &w, tm, type, "destination is"))
			break;
		read_options(ld, &w, get_obj(o, "options"), "DESTINATION",
			     catalog_destination(type) ? catalog_destination(type)->options : NULL, &x->d.options);
		x->app_id = req_str(ld, &w, o, "appId", &x->app_m);
		x->model_id = req_str(ld, &w, o, "modelId", &x->model_m);
		if (type) {
			size_t n;
			const char *const *names = catalog_destination_types(&n);
			cat = catalog_destination(type);
			if (!cat) {
				err_at(ld, &w, NPOS(tm->value), "type", did_you_mean(ld, type, names, n),
				       "unknown destination type \"%s\"", type);
			} else if (cat->renamed_to) {
				warn_at(ld, &w, NPOS(tm->value), "type",
					arena_printf(ld->a, "write \"%s\"", cat->renamed_to),
					"destination type \"%s\" was renamed to \"%s\"", type, cat->renamed_to);
				x->d.type = cat->renamed_to;
			}
		}
		x->d.max_delete_percent = 10;
		x->d.partitions = 1;
		x->d.enrich_recheck_ms = (int64_t)CFG_ENRICH_RECHECK_HOURS * 3600 * 1000;
		if (cat) {
			const struct cfg_option *mdp;
			check_options(ld, &w, &x->d.options, cat->options,
				      arena_printf(ld->a, "a %s destination", x->d.type), o->line, o->col);
			mdp = cfg_options_get(&x->d.options, "maxDeletePercent");
			if (mdp && mdp->kind == OPT_NUMBER) {
				if (mdp->num < 0 || mdp->num > 100)
					err_at(ld, &w, mdp->pos.line, mdp->pos.col, "options.maxDeletePercent", NULL,
					       "maxDeletePercent must be between 0 and 100, found %s", config_option_display(mdp));
				else
					x->d.max_delete_percent = mdp->num;
			}
			const struct cfg_option *dm = cfg_options_get(&x->d.options, "diff");
			if (dm && dm->kind == OPT_STRING && dm->str && strcmp(dm->str, "stream") &&
			    strcmp(dm->str, "warehouse") && strcmp(dm->str, "auto"))
				err_at(ld, &w, dm->pos.line, dm->pos.col, "options.diff",
				       "\"stream\" (joey compares), \"warehouse\" (the database compares) or \"auto\"",
				       "diff must be \"stream\", \"warehouse\" or \"auto\", found \"%s\"", config_option_display(dm));
			const struct cfg_option *np = cfg_options_get(&x->d.options, "partitions");
			if (np && np->kind == OPT_NUMBER) {
				if (np->num < 1 || np->num > 1024 || np->num != (double)(int)np->num)
					err_at(ld, &w, np->pos.line, np->pos.col, "options.partitions",
					       "workers split a run of the destination into this many key ranges",
					       "partitions must be a whole number from 1 to 1024, found %s", config_option_display(np));
				else
					x->d.partitions = (int)np->num;
			}
			check_sync_log_options(ld, &w, &x->d);
		}
		if (!j5_member(o, "syncMode") || j5_member(o, "syncMode")->value->type == J5_NULL)
			warn_at(ld, &w, NPOS(o), "syncMode", "add \"syncMode\": \"sync\", \"additive\" or \"enrich\"",
				"no syncMode given, using \"sync\" (create, update and delete)");
		v = get_enum(ld, &w, o, "syncMode", NULL, sync_modes, 3, 0);
		x->d.sync_mode = v < 0 ? SYNC_SYNC : (enum sync_mode)v;
		if (cat)
			check_enrich_recheck(ld, &w, &x->d);
		v = get_enum(ld, &w, o, "collection", NULL, colls, 3, 0);
		x->d.collection = v < 0 ? COLL_NONE : (enum collection)v;
		x->collection_bad = v < 0;
		if (v == 0)
			warn_at(ld, &w, NPOS(o), "collection",
				"set \"collection\" to \"model\" or \"group\" to export records",
				"collection is \"none\": this destination exports nothing (and removes records it exported before)");
		x->group_id = get_str(o, "groupId");
		x->group_m = get_m(o, "groupId", T_STR);
		add_obj(ld, CLASS_DESTINATION, x);
		break;
	}
	case CLASS_SCHEDULE: {
		struct schedule_x *x = arena_zalloc(ld->a, sizeof(*x));
		const struct j5_member *fm;
		x->w = w;
		x->order = order;
		x->node = o;
		check_fields(ld, &w, o, schedule_fields, ARRAY_SIZE(schedule_fields), NULL, "a Schedule");
		x->s.id = id;
		x->s.name = get_str(o, "name");
		x->s.pos = (struct cfg_pos){ file, o->line, o->col };
		x->source_id = req_str(ld, &w, o, "sourceId", &x->source_m);
		x->s.recurring = get_bool(o, "recurring", false);
		x->s.confirm_records = get_bool(o, "confirmRecords", get_bool(o, "confirmProfiles", false));
		x->s.refresh_enabled = get_bool(o, "refreshEnabled", true);
		fm = get_m(o, "recurringFrequency", T_NUM);
		if (fm) {
			double f = fm->value->num;
			if (f < 0 || f != floor(f) || f > 9.2e18)
				err_at(ld, &w, NPOS(fm->value), "recurringFrequency", NULL,
				       "recurringFrequency must be a whole number of milliseconds, found %s",
				       fm->value->str);
			else
				x->s.recurring_frequency_ms = (int64_t)f;
		}
		read_options(ld, &w, get_obj(o, "options"), "SCHEDULE", catalog_schedule_options(true),
			     &x->s.options);
		const struct cfg_option *cron_opt = cfg_options_get(&x->s.options, "cron");
		if (cron_opt && cron_opt->kind == OPT_STRING) {
			struct cron c;
			struct jerror cerr = JERROR_INIT;
			if (!cron_parse(cron_opt->str, &c, &cerr))
				x->s.cron = cron_opt->str;
			else if (cron_opt->secret) /* from the environment: never its value */
				err_at(ld, &w, cron_opt->pos.line, cron_opt->pos.col, "options.cron",
				       cerr.hint.len ? cerr.hint.buf : NULL, "the cron expression in %s is not valid",
				       config_option_display(cron_opt));
			else
				err_at(ld, &w, cron_opt->pos.line, cron_opt->pos.col, "options.cron",
				       cerr.hint.len ? cerr.hint.buf : NULL, "%s", cerr.msg.buf);
			jerror_release(&cerr);
		}
		if (x->s.recurring && x->s.recurring_frequency_ms < 60000 && !cron_opt) {
			if (fm)
				err_at(ld, &w, NPOS(fm->value), "recurringFrequency",
				       "recurringFrequency is in milliseconds: 60000 is one minute",
				       "recurring frequency must be at least one minute (60000 ms), found %s",
				       fm->value->str);
			else if (!j5_member(o, "recurringFrequency"))
				err_at(ld, &w, NPOS(o), NULL, "add \"recurringFrequency\" in milliseconds (at least 60000)",
				       "missing required field \"recurringFrequency\" for a recurring schedule");
		}
		read_filters(ld, &w, o, &x->s.filters, &x->s.n_filters);
		add_obj(ld, CLASS_SCHEDULE, x);
		break;
	}
	case CLASS_ALERT:
		load_alert(ld, &w, o, order);
		break;
	case CLASS__COUNT:
		break;
	}
}

/* ---- pass 1: files ---- */

struct path_list {
	char **items;
	size_t n, alloc;
};

static bool config_name(const char *name)
{
	size_t nl = strlen(name);
	return (nl > 5 && !strcmp(name + nl - 5, ".json")) || (nl > 3 && !strcmp(name + nl - 3, ".js"));
}

/* The target of symbolic link path, for messages (arena-owned), or "?" */
static const char *link_target(struct loader *ld, const char *path)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	return n < 0 ? "?" : arena_strndup(ld->a, buf, (size_t)n);
}

/*
 * Collect the config files under root/rel into pl. seen holds the directories entered
 * so far (by device and inode): a directory reached again through a symbolic link
 * (a loop such as config/loop -> .) is skipped with a warning instead of being walked
 * to the depth limit, every loop doubling the work. A symbolic link named like a
 * config file that leads nowhere is a warning too, not silence.
 */
static void walk(struct loader *ld, const char *root, const char *rel, int depth, struct path_list *pl,
		 struct dir_seen *seen)
{
	struct strbuf path = STRBUF_INIT;
	DIR *d;
	struct dirent *de;

	strbuf_addstr(&path, root);
	if (*rel) {
		strbuf_addch(&path, '/');
		strbuf_addstr(&path, rel);
	}
	d = opendir(path.buf);
	if (!d) {
		strbuf_release(&path);
		return;
	}
	while ((de = readdir(d))) {
		struct strbuf child = STRBUF_INIT, full = STRBUF_INIT;
		struct stat st;
		int e;

		if (de->d_name[0] == '.')
			continue; /* ., .., dot-directories (.joey, .git) and dot-files */
		if (*rel) {
			strbuf_addstr(&child, rel);
			strbuf_addch(&child, '/');
		}
		strbuf_addstr(&child, de->d_name);
		strbuf_addf(&full, "%s/%s", root, child.buf);
		if (stat(full.buf, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				if (depth >= MAX_DIR_DEPTH || !strcmp(de->d_name, "node_modules")) {
					/* not read */
				} else if (dir_seen_check(seen, &st)) {
					struct where w = { arena_strdup(ld->a, child.buf), NULL, NULL };
					warn_at(ld, &w, 0, 0, NULL,
						"remove the link, or point it outside the config directory",
						"directory already read through another path (symbolic link to \"%s\"): skipped",
						link_target(ld, full.buf));
				} else {
					walk(ld, root, child.buf, depth + 1, pl, seen);
				}
			} else if (S_ISREG(st.st_mode) && config_name(de->d_name)) {
				ALLOC_GROW(pl->items, pl->n + 1, pl->alloc);
				pl->items[pl->n++] = strbuf_detach(&child, NULL);
			}
		} else if (e = errno, config_name(de->d_name) && lstat(full.buf, &st) == 0 && S_ISLNK(st.st_mode)) {
			struct where w = { arena_strdup(ld->a, child.buf), NULL, NULL };
			warn_at(ld, &w, 0, 0, NULL, "fix or remove the link",
				"symbolic link to \"%s\" cannot be followed (%s): skipped", link_target(ld, full.buf),
				strerror(e));
		}
		strbuf_release(&child);
		strbuf_release(&full);
	}
	closedir(d);
	strbuf_release(&path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_file(struct loader *ld, const char *dir, const char *rel)
{
	struct strbuf full = STRBUF_INIT;
	const char *file = arena_strdup(ld->a, rel);
	struct where w = { file, NULL, NULL };
	size_t rl = strlen(rel);
	FILE *f;
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	struct j5_node *root;
	struct j5_error je;
	bool has_brace = false;

	if (rl > 3 && !strcmp(rel + rl - 3, ".js")) {
		const char *base = strrchr(rel, '/');
		base = base ? base + 1 : rel;
		err_at(ld, &w, 0, 0, NULL,
		       arena_printf(ld->a,
				    "convert it to JSON, e.g. node -e 'console.log(JSON.stringify(require(\"./%s\"),null,2))' > %.*s.json",
				    base, (int)(strlen(base) - 3), base),
		       "joey cannot execute JavaScript config files");
		return;
	}
	strbuf_addf(&full, "%s/%s", dir, rel);
	f = fopen(full.buf, "rb");
	if (!f || fstat(fileno(f), &st) != 0) {
		err_at(ld, &w, 0, 0, NULL, NULL, "could not read file: %s", strerror(errno));
		if (f)
			fclose(f);
		strbuf_release(&full);
		return;
	}
	if ((uint64_t)st.st_size > J5_MAX_INPUT) {
		err_at(ld, &w, 0, 0, NULL, "split the config into several files",
		       "file is larger than %zu MiB", J5_MAX_INPUT >> 20);
		fclose(f);
		strbuf_release(&full);
		return;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	len = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	ld->cfg->n_files++;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '{') {
			has_brace = true;
			break;
		}
	if (!has_brace) {
		struct stat lst;
		/* Grouparoo: a file without '{' is empty. A link to one is more likely a link to
		 * the wrong file: say so */
		if (lstat(full.buf, &lst) == 0 && S_ISLNK(lst.st_mode))
			warn_at(ld, &w, 0, 0, NULL, "point the link at a config file, or remove it",
				"symbolic link to \"%s\" holds no config object (no '{'): skipped",
				link_target(ld, full.buf));
		strbuf_release(&full);
		free(buf);
		return;
	}
	strbuf_release(&full);
	if (!json5_parse(buf, len, ld->a, &root, &je)) {
		err_at(ld, &w, je.line, je.col, NULL, NULL, "syntax error: %s", je.msg);
		free(buf);
		return;
	}
	free(buf);
	if (root->type == J5_OBJECT) {
		if (root->n)
			load_object(ld, file, root);
	} else if (root->type == J5_ARRAY) {
		for (size_t i = 0; i < root->n; i++) {
			const struct j5_node *e = root->items[i];
			if (e->type == J5_NULL)
				err_at(ld, &w, NPOS(e), NULL, "remove it", "null entry in the top-level array");
			else if (e->type != J5_OBJECT)
				err_at(ld, &w, NPOS(e), NULL, NULL,
				       "expected a config object in the top-level array, found %s", found_text(e));
			else if (e->n)
				load_object(ld, file, e);
		}
	} else {
		err_at(ld, &w, NPOS(root), NULL, NULL,
		       "expected a config object or an array of objects, found %s", found_text(root));
	}
}

/* ---- pass 3: links ---- */

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

/* id and order of a wrapper: every wrapper starts with its cfg struct (id first), then where, order. */
static size_t order_of(enum cfg_class c, void *o)
{
	switch (c) {
	case CLASS_APP: return ((struct app_x *)o)->order;
	case CLASS_MODEL: return ((struct model_x *)o)->order;
	case CLASS_SOURCE: return ((struct source_x *)o)->order;
	case CLASS_PROPERTY: return ((struct property_x *)o)->order;
	case CLASS_GROUP: return ((struct group_x *)o)->order;
	case CLASS_DESTINATION: return ((struct dest_x *)o)->order;
	case CLASS_SCHEDULE: return ((struct schedule_x *)o)->order;
	case CLASS_ALERT: return ((struct alert_x *)o)->order;
	case CLASS__COUNT: break;
	}
	return 0;
}

static const struct where *where_of(enum cfg_class c, void *o)
{
	switch (c) {
	case CLASS_APP: return &((struct app_x *)o)->w;
	case CLASS_MODEL: return &((struct model_x *)o)->w;
	case CLASS_SOURCE: return &((struct source_x *)o)->w;
	case CLASS_PROPERTY: return &((struct property_x *)o)->w;
	case CLASS_GROUP: return &((struct group_x *)o)->w;
	case CLASS_DESTINATION: return &((struct dest_x *)o)->w;
	case CLASS_SCHEDULE: return &((struct schedule_x *)o)->w;
	case CLASS_ALERT: return &((struct alert_x *)o)->w;
	case CLASS__COUNT: break;
	}
	return NULL;
}

static const struct cfg_pos *pos_of(enum cfg_class c, void *o)
{
	switch (c) {
	case CLASS_APP: return &((struct app_x *)o)->a.pos;
	case CLASS_MODEL: return &((struct model_x *)o)->m.pos;
	case CLASS_SOURCE: return &((struct source_x *)o)->s.pos;
	case CLASS_PROPERTY: return &((struct property_x *)o)->p.pos;
	case CLASS_GROUP: return &((struct group_x *)o)->g.pos;
	case CLASS_DESTINATION: return &((struct dest_x *)o)->d.pos;
	case CLASS_SCHEDULE: return &((struct schedule_x *)o)->s.pos;
	case CLASS_ALERT: return &((struct alert_x *)o)->al.pos;
	case CLASS__COUNT: break;
	}
	return NULL;
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
			err_at(ld, where_of(c, items[i].obj), p->line, p->col, "id",
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

static void *find_id(void *const *arr, size_t n, const char *id)
{
	void *const *p;
	if (!id || !n)
		return NULL;
	p = bsearch(id, arr, n, sizeof(void *), cmp_id_key);
	return p ? *p : NULL;
}

/* Resolve a reference field: reports a dangling id (with did-you-mean). */
static void *resolve(struct loader *ld, const struct where *w, const struct j5_member *m,
		     const char *id, const char *field, enum cfg_class target, void *const *arr, size_t n)
{
	void *o;
	if (!id)
		return NULL;
	o = find_id(arr, n, id);
	if (!o && !is_broken(ld, id)) {
		int line = m ? m->value->line : 0, col = m ? m->value->col : 0;
		err_at(ld, w, line, col, field, did_you_mean_id(ld, id, arr, n), "unknown %s \"%s\"",
		       class_names[target], id);
	}
	return o;
}

static int cmp_prop_ptr(const void *a, const void *b)
{
	return strcmp((*(struct cfg_property *const *)a)->id, (*(struct cfg_property *const *)b)->id);
}

static int cmp_mapping(const void *a, const void *b)
{
	return strcmp(((const struct cfg_mapping *)a)->remote, ((const struct cfg_mapping *)b)->remote);
}

static int cmp_group_map(const void *a, const void *b)
{
	return strcmp(((const struct cfg_group_map *)a)->remote, ((const struct cfg_group_map *)b)->remote);
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
			err_at(ld, w, q->pos.line, q->pos.col, "options.query",
			       did_you_mean_id(ld, name, (void *const *)props, n_props),
			       "query refers to unknown property \"%s\"", name);
		p = e + 2;
	}
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
			err_at(ld, w, NPOS(v), field, NULL, "match \"%s\" is not a valid %s", s, prop_type_names[t]);
			return;
		}
		r->match_num = d;
		r->match_ms = (int64_t)d;
		break;
	}
	case PROP_BOOLEAN:
		if (!strcasecmp(s, "true") || !strcmp(s, "1"))
			r->match_bool = true;
		else if (!strcasecmp(s, "false") || !strcmp(s, "0"))
			r->match_bool = false;
		else
			err_at(ld, w, NPOS(v), field, "use true or false", "match \"%s\" is not a valid boolean", s);
		break;
	case PROP_DATE:
		if (!time_parse(s, strlen(s), &r->match_ms))
			err_at(ld, w, NPOS(v), field, "write dates in ISO-8601, e.g. \"2021-03-04T05:06:07Z\"",
			       "match \"%s\" is not a valid date", s);
		r->match_num = (double)r->match_ms;
		break;
	default:
		break;
	}
}

static void link_group_rules(struct loader *ld, struct group_x *gx, void *const *props, size_t n_props)
{
	struct cfg_group *g = &gx->g;
	const struct where *w = &gx->w;
	const struct j5_member *rm = get_m(gx->node, "rules", T_ARR);
	const struct j5_node *arr;
	size_t n = 0;

	g->rules = NULL;
	g->n_rules = 0;
	if (!rm) {
		if (!j5_member(gx->node, "rules"))
			warn_at(ld, w, NPOS(gx->node), NULL, "add \"rules\"", "group has no rules and so no members");
		return;
	}
	arr = rm->value;
	if (arr->n == 0)
		warn_at(ld, w, NPOS(arr), "rules", "add rules", "group has no rules and so no members");
	if (arr->n > MAX_RULES) {
		err_at(ld, w, NPOS(arr), "rules", "split the group or simplify its rules",
		       "too many group rules: %zu (at most %d)", arr->n, MAX_RULES);
		return;
	}
	g->rules = arena_zalloc(ld->a, (arr->n ? arr->n : 1) * sizeof(*g->rules));
	for (size_t i = 0; i < arr->n; i++) {
		const struct j5_node *ro = arr->items[i];
		const char *prefix = arena_printf(ld->a, "rules[%zu]", i);
		const char *opf = arena_printf(ld->a, "rules[%zu].op", i);
		struct cfg_rule *r = &g->rules[n];
		const struct j5_member *pm, *om, *mm;
		enum prop_type t = PROP_STRING;
		bool have_type = false;
		int op;

		if (ro->type != J5_OBJECT) {
			err_at(ld, w, NPOS(ro), prefix, NULL, "expected an object, found %s", found_text(ro));
			continue;
		}
		r->pos = (struct cfg_pos){ w->file, ro->line, ro->col };
		check_fields(ld, w, ro, rule_fields, ARRAY_SIZE(rule_fields), prefix, "a group rule");
		pm = get_m(ro, "propertyId", T_STR);
		if (!j5_member(ro, "propertyId")) {
			err_at(ld, w, NPOS(ro), prefix, NULL, "missing required field \"propertyId\"");
			continue;
		}
		if (!pm)
			continue;
		if (!strcmp(pm->value->str, "grouparooCreatedAt")) {
			r->pseudo_created_at = true;
			err_at(ld, w, NPOS(pm->value), arena_printf(ld->a, "%s.propertyId", prefix),
			       "joey does not track when records were created; use a date property from the source instead",
			       "\"grouparooCreatedAt\" is not supported by joey");
			continue;
		}
		if (!strcmp(pm->value->str, "grouparooId")) {
			if (g->model && g->model->primary_key) {
				t = g->model->primary_key->type;
				have_type = true;
			}
		} else {
			struct property_x *px = resolve(ld, w, pm, pm->value->str,
							arena_printf(ld->a, "%s.propertyId", prefix),
							CLASS_PROPERTY, props, n_props);
			if (!px)
				continue;
			r->property = &px->p;
			if (g->model && px->p.source && px->p.source->model && px->p.source->model != g->model) {
				err_at(ld, w, NPOS(pm->value), arena_printf(ld->a, "%s.propertyId", prefix),
				       "a group can only use properties of its own model",
				       "property \"%s\" belongs to model \"%s\", not \"%s\"", px->p.id,
				       px->p.source->model->id, g->model->id);
				continue;
			}
			t = px->p.type;
			have_type = !px->type_bad;
		}
		om = get_m(ro, "op", T_STR);
		if (!j5_member(ro, "op")) {
			err_at(ld, w, NPOS(ro), prefix, NULL, "missing required field \"op\"");
			continue;
		}
		if (!om)
			continue;
		op = names_find(rule_op_names, ROP__COUNT, om->value->str);
		if (op < 0) {
			err_at(ld, w, NPOS(om->value), opf,
			       did_you_mean(ld, om->value->str, rule_op_names, ROP__COUNT),
			       "unknown operator \"%s\"", om->value->str);
			continue;
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
			err_at(ld, w, NPOS(om->value), opf, sb.buf,
			       "operator \"%s\" cannot be used with a property of type %s", rule_op_names[op],
			       prop_type_names[t]);
			strbuf_release(&sb);
			continue;
		}
		mm = get_m(ro, "match", T_STR | T_NUM | T_BOOL);
		if (r->op == ROP_EXISTS || r->op == ROP_NOT_EXISTS) {
			n++;
			continue;
		}
		if (r->op == ROP_RELATIVE_GT || r->op == ROP_RELATIVE_LT) {
			static const char *const dirs[] = { "add", "subtract" };
			const struct j5_member *nm = get_m(ro, "relativeMatchNumber", T_NUM);
			int u, d;
			bool ok = true;
			if (!j5_member(ro, "relativeMatchNumber")) {
				err_at(ld, w, NPOS(ro), prefix, "add e.g. \"relativeMatchNumber\": 30",
				       "missing required field \"relativeMatchNumber\" for operator \"%s\"",
				       rule_op_names[op]);
				ok = false;
			} else if (nm) {
				r->rel_number = nm->value->num;
				if (nm->value->num < 0)
					err_at(ld, w, NPOS(nm->value), arena_printf(ld->a, "%s.relativeMatchNumber", prefix),
					       NULL, "relativeMatchNumber must not be negative");
			}
			if (!j5_member(ro, "relativeMatchUnit")) {
				err_at(ld, w, NPOS(ro), prefix,
				       "add \"relativeMatchUnit\": \"days\", \"weeks\", \"months\", \"quarters\" or \"years\"",
				       "missing required field \"relativeMatchUnit\" for operator \"%s\"",
				       rule_op_names[op]);
				ok = false;
			} else {
				u = get_enum(ld, w, ro, "relativeMatchUnit",
					     arena_printf(ld->a, "%s.relativeMatchUnit", prefix), rel_unit_names, 5, 0);
				if (u < 0)
					ok = false;
				else
					r->rel_unit = (enum rel_unit)u;
			}
			d = get_enum(ld, w, ro, "relativeMatchDirection",
				     arena_printf(ld->a, "%s.relativeMatchDirection", prefix), dirs, 2,
				     r->op == ROP_RELATIVE_LT ? 0 : 1);
			if (d < 0) {
				ok = false;
			} else {
				int natural = r->op == ROP_RELATIVE_LT ? 0 : 1;
				const struct j5_member *dm = j5_member(ro, "relativeMatchDirection");
				if (d != natural && dm)
					warn_at(ld, w, NPOS(dm->value),
						arena_printf(ld->a, "%s.relativeMatchDirection", prefix),
						"remove it: relative_gt counts back from now, relative_lt forward",
						"\"relativeMatchDirection\": \"%s\" is ignored for \"%s\", as Grouparoo ignored it",
						dirs[d], rule_op_names[op]);
				r->rel_add = natural == 0;
			}
			if (ok)
				n++;
			continue;
		}
		if (!mm) {
			if (!j5_member(ro, "match") || j5_member(ro, "match")->value->type == J5_NULL)
				err_at(ld, w, NPOS(ro), prefix, NULL, "missing required field \"match\" for operator \"%s\"",
				       rule_op_names[op]);
			continue;
		}
		if (have_type)
			parse_rule_match(ld, w, r, t, mm, arena_printf(ld->a, "%s.match", prefix));
		else
			r->match = mm->value->type == J5_BOOL ? (mm->value->b ? "true" : "false") : mm->value->str;
		n++;
	}
	g->n_rules = n;
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

static void link_destination(struct loader *ld, struct dest_x *dx, void *const *props, size_t n_props,
			     void *const *groups, size_t n_groups)
{
	struct cfg_destination *d = &dx->d;
	const struct where *w = &dx->w;
	const struct j5_member *mm = get_m(dx->node, "mapping", T_OBJ);
	const struct j5_member *gm = get_m(dx->node, "destinationGroupMemberships", T_OBJ);
	bool have_external = false;

	if (d->collection == COLL_GROUP) {
		if (!j5_member(dx->node, "groupId"))
			err_at(ld, w, NPOS(dx->node), NULL, "add \"groupId\" or use \"collection\": \"model\"",
			       "missing required field \"groupId\" for collection \"group\"");
		struct group_x *gx = resolve(ld, w, dx->group_m, dx->group_id, "groupId", CLASS_GROUP, groups, n_groups);
		if (gx) {
			d->group = &gx->g;
			if (d->model && gx->g.model && gx->g.model != d->model) {
				err_at(ld, w, NPOS(dx->group_m->value), "groupId", NULL,
				       "group \"%s\" belongs to model \"%s\", not \"%s\"", gx->g.id,
				       gx->g.model->id, d->model->id);
				d->group = NULL;
			}
		}
	} else if (dx->group_m && !dx->collection_bad) {
		err_at(ld, w, NPOS(dx->group_m->value), "groupId",
		       "set \"collection\": \"group\" or remove \"groupId\"",
		       "groupId is only used with collection \"group\", not \"%s\"", collection_name(d->collection));
	}

	if (!mm) {
		if (!j5_member(dx->node, "mapping"))
			err_at(ld, w, NPOS(dx->node), NULL, "add \"mapping\": {\"external_id\": \"<primary key property id>\"}",
			       "missing required field \"mapping\"");
	} else {
		const struct j5_node *mo = mm->value;
		d->mapping = arena_zalloc(ld->a, (mo->n ? mo->n : 1) * sizeof(*d->mapping));
		for (size_t i = 0; i < mo->n; i++) {
			const struct j5_member *e = &mo->members[i];
			const char *field = arena_printf(ld->a, "mapping.%.255s", e->key);
			const struct catalog_field *cf;
			struct property_x *px;
			bool dup = false;

			for (size_t j = 0; j < i && mo->n <= 256; j++)
				if (!strcmp(mo->members[j].key, e->key))
					dup = true;
			if (dup) {
				err_at(ld, w, e->line, e->col, field, "remove one of them", "duplicate mapping for \"%s\"", e->key);
				continue;
			}
			if (e->key[0] == '$' || e->key_len == 0) {
				err_at(ld, w, e->line, e->col, field, "Braze reserves names starting with \"$\"",
				       "invalid Braze field name \"%s\"", e->key);
				continue;
			}
			if (e->key_len > 255) {
				err_at(ld, w, e->line, e->col, field, NULL,
				       "Braze field name is longer than 255 characters");
				continue;
			}
			if (e->value->type != J5_STRING) {
				err_at(ld, w, NPOS(e->value), field, NULL, "expected a property id (a string), found %s",
				       found_text(e->value));
				continue;
			}
			px = resolve(ld, w, e, e->value->str, field, CLASS_PROPERTY, props, n_props);
			if (!strcmp(e->key, "external_id"))
				have_external = true;
			if (!px)
				continue;
			if (d->model && px->p.source && px->p.source->model && px->p.source->model != d->model) {
				err_at(ld, w, NPOS(e->value), field, "a destination can only export properties of its model",
				       "property \"%s\" belongs to model \"%s\", not \"%s\"", px->p.id,
				       px->p.source->model->id, d->model->id);
				continue;
			}
			cf = catalog_braze_field(e->key);
			if (!strcmp(e->key, "external_id")) {
				if (d->model && d->model->primary_key && &px->p != d->model->primary_key)
					err_at(ld, w, NPOS(e->value), field,
					       arena_printf(ld->a, "map \"external_id\" to \"%s\"", d->model->primary_key->id),
					       "external_id must map to the primary key property \"%s\" of model \"%s\", not \"%s\"",
					       d->model->primary_key->id, d->model->id, px->p.id);
			} else if (cf && !px->type_bad) {
				if (!field_accepts(cf->type, px->p.type))
					err_at(ld, w, NPOS(e->value), field,
					       arena_printf(ld->a, "map a property of type %s%s", prop_type_names[cf->type],
							    cf->type == PROP_STRING ? "" : " or string"),
					       "Braze field \"%s\" takes %s values, but property \"%s\" is of type %s",
					       e->key, prop_type_names[cf->type], px->p.id, prop_type_names[px->p.type]);
				else if (px->p.is_array)
					err_at(ld, w, NPOS(e->value), field,
					       "map it to a custom attribute (any other field name) instead",
					       "Braze field \"%s\" takes a single value, but property \"%s\" is an array",
					       e->key, px->p.id);
			}
			d->mapping[d->n_mapping++] = (struct cfg_mapping){ e->key, &px->p,
									   { w->file, e->line, e->col } };
		}
		qsort(d->mapping, d->n_mapping, sizeof(*d->mapping), cmp_mapping);
	}
	/* an unknown destination type is reported as such, not as a Braze mapping problem */
	if (mm && !have_external && d->type && catalog_destination(d->type)) {
		const char *h = d->model && d->model->primary_key
					? arena_printf(ld->a, "add \"external_id\": \"%s\" to \"mapping\"", d->model->primary_key->id)
					: "add \"external_id\": \"<primary key property id>\" to \"mapping\"";
		err_at(ld, w, NPOS(mm->value), "mapping", h, "Braze requires a mapping for \"external_id\"");
	}

	if (gm) {
		const struct j5_node *go = gm->value;
		d->group_maps = arena_zalloc(ld->a, (go->n ? go->n : 1) * sizeof(*d->group_maps));
		for (size_t i = 0; i < go->n; i++) {
			const struct j5_member *e = &go->members[i];
			const char *field = arena_printf(ld->a, "destinationGroupMemberships.%.255s", e->key);
			struct group_x *gx;
			if (e->key_len == 0) {
				err_at(ld, w, e->line, e->col, field, NULL, "empty remote group name");
				continue;
			}
			if (near_uuid(e->key, e->key_len)) {
				err_at(ld, w, e->line, e->col, field,
				       "a subscription group ID has 36 characters, 8-4-4-4-12 hexadecimal digits: copy it again "
				       "from Braze (Audience > Subscriptions)",
				       "\"%.64s\" looks like a Braze subscription group ID but is not one; it would become a value "
				       "of the \"groups\" attribute",
				       e->key);
				continue;
			}
			if (e->value->type != J5_STRING) {
				err_at(ld, w, NPOS(e->value), field, NULL, "expected a group id (a string), found %s",
				       found_text(e->value));
				continue;
			}
			gx = resolve(ld, w, e, e->value->str, field, CLASS_GROUP, groups, n_groups);
			if (!gx)
				continue;
			if (d->model && gx->g.model && gx->g.model != d->model) {
				err_at(ld, w, NPOS(e->value), field, NULL, "group \"%s\" belongs to model \"%s\", not \"%s\"",
				       gx->g.id, gx->g.model->id, d->model->id);
				continue;
			}
			d->group_maps[d->n_group_maps++] = (struct cfg_group_map){ e->key, &gx->g,
										   { w->file, e->line, e->col }, NULL };
		}
		qsort(d->group_maps, d->n_group_maps, sizeof(*d->group_maps), cmp_group_map);
	}

	/* joey's own: names of the subscription groups, for people (the UI, the plan) */
	const struct j5_member *sn = get_m(dx->node, "subscriptionGroupNames", T_OBJ);
	for (size_t i = 0; sn && i < sn->value->n; i++) {
		const struct j5_member *e = &sn->value->members[i];
		const char *field = arena_printf(ld->a, "subscriptionGroupNames.%.255s", e->key);
		if (!is_uuid(e->key, e->key_len)) {
			err_at(ld, w, e->line, e->col, field,
			       "the keys are subscription group IDs: 36 characters, 8-4-4-4-12 hexadecimal digits",
			       "\"%.64s\" is not a Braze subscription group ID", e->key);
			continue;
		}
		if (e->value->type != J5_STRING || !e->value->str[0]) {
			err_at(ld, w, NPOS(e->value), field, NULL, "expected the subscription group's name (a string), found %s",
			       found_text(e->value));
			continue;
		}
		bool used = false;
		for (size_t k = 0; k < d->n_group_maps; k++)
			if (!strcasecmp(d->group_maps[k].remote, e->key)) {
				d->group_maps[k].label = e->value->str;
				used = true;
			}
		if (!used)
			warn_at(ld, w, e->line, e->col, field, "map a group to it in \"destinationGroupMemberships\", or remove the name",
				"subscription group \"%.64s\" has a name but no group is mapped to it", e->key);
	}
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
	struct app_x *ax = find_id((void *const *)apps, na, o->str);
	if (!ax) {
		err_at(ld, &x->w, o->pos.line, o->pos.col, "options.syncLogAppId",
		       did_you_mean_id(ld, o->str, (void *const *)apps, na), "unknown App \"%s\"", o->str);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		ok |= ax->a.type && !strcmp(ax->a.type, types[i]);
	if (!ok) {
		err_at(ld, &x->w, o->pos.line, o->pos.col, "options.syncLogAppId",
		       "name an app of type postgres, mysql or sqlite that joey may write to",
		       "app \"%s\" of type \"%s\" cannot hold a sync log", ax->a.id, ax->a.type ? ax->a.type : "?");
		return;
	}
	for (size_t i = 0; i < ns; i++) {
		if (srcs[i]->s.app != &ax->a || (allow && allow->kind == OPT_BOOL && allow->b))
			continue;
		err_at(ld, &x->w, o->pos.line, o->pos.col, "options.syncLogAppId",
		       "give the log an app of its own (it may name the same database, with a user that may write), "
		       "or set \"syncLogAllowSourceApp\": true",
		       "app \"%s\" is the app source \"%s\" reads from; the sync log needs a separate, writable app",
		       ax->a.id, srcs[i]->s.id);
		return;
	}
	x->d.sync_log_app = &ax->a;
}

static void link_all(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	size_t na, nm, ns, np, ng, nd, nsc;
	struct app_x **apps = (struct app_x **)dedupe(ld, CLASS_APP, &na);
	struct model_x **models = (struct model_x **)dedupe(ld, CLASS_MODEL, &nm);
	struct source_x **srcs = (struct source_x **)dedupe(ld, CLASS_SOURCE, &ns);
	struct property_x **props = (struct property_x **)dedupe(ld, CLASS_PROPERTY, &np);
	struct group_x **groups = (struct group_x **)dedupe(ld, CLASS_GROUP, &ng);
	struct dest_x **dests = (struct dest_x **)dedupe(ld, CLASS_DESTINATION, &nd);
	struct schedule_x **scheds = (struct schedule_x **)dedupe(ld, CLASS_SCHEDULE, &nsc);
	size_t nal;
	struct alert_x **alerts = (struct alert_x **)dedupe(ld, CLASS_ALERT, &nal);

	/* the public arrays point at the cfg structs, which start the wrappers */
	cfg->apps = (struct cfg_app **)apps;
	cfg->n_apps = na;
	cfg->models = (struct cfg_model **)models;
	cfg->n_models = nm;
	cfg->sources = (struct cfg_source **)srcs;
	cfg->n_sources = ns;
	cfg->properties = (struct cfg_property **)props;
	cfg->n_properties = np;
	cfg->groups = (struct cfg_group **)groups;
	cfg->n_groups = ng;
	cfg->destinations = (struct cfg_destination **)dests;
	cfg->n_destinations = nd;
	cfg->schedules = (struct cfg_schedule **)scheds;
	cfg->n_schedules = nsc;
	cfg->alerts = (struct cfg_alert **)alerts;
	cfg->n_alerts = nal;

	/* alerts -> destinations or model */
	for (size_t i = 0; i < nal; i++) {
		struct alert_x *x = alerts[i];
		struct model_x *mx = resolve(ld, &x->w, x->model_m, x->model_id, "modelId", CLASS_MODEL, (void **)models, nm);
		x->al.model = mx ? &mx->m : NULL;
		if (!x->dests_m)
			continue;
		const struct j5_node *arr = x->dests_m->value;
		x->al.destinations = arena_zalloc(ld->a, (arr->n ? arr->n : 1) * sizeof(void *));
		if (!arr->n)
			err_at(ld, &x->w, NPOS(arr), "destinationIds", "name at least one destination, or leave destinationIds out for all of them",
			       "destinationIds is empty");
		for (size_t k = 0; k < arr->n; k++) {
			const struct j5_node *e = arr->items[k];
			const char *field = arena_printf(ld->a, "destinationIds[%zu]", k);
			if (e->type != J5_STRING) {
				err_at(ld, &x->w, NPOS(e), field, NULL, "expected a destination id (a string), found %s", found_text(e));
				continue;
			}
			struct dest_x *dx = find_id((void **)dests, nd, e->str);
			if (!dx) {
				if (!is_broken(ld, e->str))
					err_at(ld, &x->w, NPOS(e), field, did_you_mean_id(ld, e->str, (void **)dests, nd),
					       "unknown Destination \"%s\"", e->str);
				continue;
			}
			bool dup = false;
			for (size_t j = 0; j < x->al.n_destinations; j++)
				dup |= x->al.destinations[j] == &dx->d;
			if (dup)
				warn_at(ld, &x->w, NPOS(e), field, "remove the repetition", "destination \"%s\" is listed twice", e->str);
			else
				x->al.destinations[x->al.n_destinations++] = &dx->d;
		}
	}

	/* sources -> app, model */
	for (size_t i = 0; i < ns; i++) {
		struct source_x *x = srcs[i];
		struct app_x *ax = resolve(ld, &x->w, x->app_m, x->app_id, "appId", CLASS_APP, (void **)apps, na);
		struct model_x *mx = resolve(ld, &x->w, x->model_m, x->model_id, "modelId", CLASS_MODEL, (void **)models, nm);
		x->s.app = ax ? &ax->a : NULL;
		x->s.model = mx ? &mx->m : NULL;
		if (ax && ax->cat && ax->cat->supported && x->cat && strcmp(ax->a.type, x->cat->app_type) &&
		    !(!strcmp(x->cat->app_type, "snowflake") && !strcmp(ax->a.type, "snowflake-keypair")))
			err_at(ld, &x->w, NPOS(x->app_m->value), "appId", NULL,
			       "source type \"%s\" needs %s %s app, but app \"%s\" is of type \"%s\"", x->s.type,
			       article(x->cat->app_type), x->cat->app_type, ax->a.id, ax->a.type);
	}
	/* properties -> source; options by source kind */
	for (size_t i = 0; i < np; i++) {
		struct property_x *x = props[i];
		struct source_x *sx = resolve(ld, &x->w, x->source_m, x->source_id, "sourceId", CLASS_SOURCE, (void **)srcs, ns);
		struct cfg_property *p = &x->p;
		int agg;
		if (!sx)
			continue;
		p->source = &sx->s;
		if (!sx->cat)
			continue;
		check_options(ld, &x->w, &p->options, catalog_property_options(sx->s.is_query),
			      arena_printf(ld->a, "a property of a %s source", sx->s.type), x->node->line, x->node->col);
		p->column = cfg_options_str(&p->options, "column");
		p->sort_column = cfg_options_str(&p->options, "sortColumn");
		p->query = cfg_options_str(&p->options, "query");
		if (sx->s.is_query && !p->query && !p->column)
			err_at(ld, &x->w, NPOS(x->node), "options",
			       "set \"query\" (a query returning one value per record) or \"column\" (a column of the source query)",
			       "a property of a query source needs option \"query\" or \"column\"");
		if (p->query && p->column)
			err_at(ld, &x->w, NPOS(x->node), "options", "remove one of them",
			       "options \"query\" and \"column\" cannot be used together");
		agg = AGG_EXACT;
		{
			const struct cfg_option *ao = cfg_options_get(&p->options, "aggregationMethod");
			if (ao && ao->kind == OPT_STRING) {
				agg = names_find(agg_method_names, AGG__COUNT, ao->str);
				if (agg < 0) {
					err_at(ld, &x->w, ao->pos.line, ao->pos.col, "options.aggregationMethod",
					       did_you_mean(ld, ao->str, agg_method_names, AGG__COUNT),
					       "unknown aggregation method \"%s\"", ao->str);
					agg = AGG_EXACT;
				}
			}
			if ((agg == AGG_MOST_RECENT || agg == AGG_LEAST_RECENT) && !p->sort_column)
				err_at(ld, &x->w, ao->pos.line, ao->pos.col, "options.sortColumn",
				       "add \"sortColumn\": the column that orders the rows (e.g. a timestamp)",
				       "aggregation method \"%s\" needs option \"sortColumn\"", agg_method_names[agg]);
		}
		p->agg = (enum agg_method)agg;
	}
	/* property queries may reference other properties of the model */
	for (size_t i = 0; i < np; i++) {
		const struct cfg_option *q = cfg_options_get(&props[i]->p.options, "query");
		if (q && q->kind == OPT_STRING && props[i]->p.source && props[i]->p.source->model)
			check_mustache(ld, &props[i]->w, q, props[i]->p.source->model, props, np);
	}
	/* source mappings, in file order: the first source mapping to its own property is
	 * the model's primary source */
	struct source_x **by_order = xmalloc((ns ? ns : 1) * sizeof(*by_order));
	memcpy(by_order, srcs, ns * sizeof(*by_order));
	qsort(by_order, ns, sizeof(*by_order), cmp_source_order);
	for (size_t i = 0; i < ns; i++) {
		struct source_x *x = by_order[i];
		struct property_x *px;
		const char *field;
		if (!x->mapping)
			continue;
		field = arena_printf(ld->a, "mapping.%s", x->mapping->key);
		px = resolve(ld, &x->w, x->mapping, x->mapping->value->str, field, CLASS_PROPERTY, (void **)props, np);
		if (!px)
			continue;
		x->s.mapping_property = &px->p;
		if (px->p.source && x->s.model && px->p.source->model && px->p.source->model != x->s.model) {
			err_at(ld, &x->w, NPOS(x->mapping->value), field, "map a property of the source's own model",
			       "property \"%s\" belongs to model \"%s\", not \"%s\"", px->p.id,
			       px->p.source->model->id, x->s.model->id);
			x->s.mapping_property = NULL;
			continue;
		}
		if (px->p.source != &x->s)
			continue;
		x->s.is_primary = true;
		if (!px->p.unique)
			err_at(ld, &x->w, NPOS(x->mapping->value), field,
			       arena_printf(ld->a, "add \"unique\": true to property \"%s\"", px->p.id),
			       "property \"%s\" needs to be unique to be the primary key of source \"%s\"", px->p.id,
			       x->s.id);
		if (px->p.is_array)
			err_at(ld, &x->w, NPOS(x->mapping->value), field, "remove \"isArray\" from the property",
			       "property \"%s\" cannot be an array: it is the primary key of source \"%s\"", px->p.id,
			       x->s.id);
		if (!px->type_bad && !pk_type_ok(px->p.type))
			err_at(ld, &x->w, NPOS(x->mapping->value), field,
			       "use a property of type string, integer, email, url or phoneNumber",
			       "primary key property \"%s\" cannot be of type %s", px->p.id, prop_type_names[px->p.type]);
		if (x->s.model) {
			struct cfg_model *m = x->s.model;
			if (m->primary_source) {
				err_at(ld, &x->w, NPOS(x->mapping->value), field,
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
	for (size_t i = 0; i < ns; i++) {
		struct source_x *x = srcs[i];
		struct cfg_property *mp = x->s.mapping_property;
		struct cfg_model *m = x->s.model;
		if (!mp || x->s.is_primary || !m || mp->source == &x->s)
			continue;
		if (!m->primary_key)
			continue; /* reported on the model */
		if (mp == m->primary_key)
			continue;
		if (mp->unique)
			err_at(ld, &x->w, NPOS(x->mapping->value), arena_printf(ld->a, "mapping.%s", x->mapping->key),
			       arena_printf(ld->a, "map a column holding \"%s\" values to \"%s\"", m->primary_key->id,
					    m->primary_key->id),
			       "joey does not support joining a source on unique property \"%s\" yet, only on the primary key \"%s\"",
			       mp->id, m->primary_key->id);
		else
			err_at(ld, &x->w, NPOS(x->mapping->value), arena_printf(ld->a, "mapping.%s", x->mapping->key),
			       arena_printf(ld->a, "map the source to the primary key \"%s\"", m->primary_key->id),
			       "source mapping must point at a unique property, and \"%s\" is not unique", mp->id);
	}
	for (size_t i = 0; i < nm; i++) {
		struct cfg_model *m = &models[i]->m;
		bool unsure = false; /* a source of m has a broken mapping: already reported */
		for (size_t j = 0; j < ns; j++)
			if (srcs[j]->s.model == m && (!srcs[j]->s.mapping_property || !srcs[j]->s.mapping_property->source))
				unsure = true;
		if (!m->primary_source && !unsure)
			err_at(ld, &models[i]->w, m->pos.line, m->pos.col, NULL,
			       "give one source a \"mapping\" {\"<column>\": \"<property id>\"} pointing at a unique property read from that same source",
			       "no primary key: no source of model \"%s\" maps a column to a property read from that same source", m->id);
	}

	/* groups */
	for (size_t i = 0; i < ng; i++) {
		struct model_x *mx = resolve(ld, &groups[i]->w, groups[i]->model_m, groups[i]->model_id, "modelId",
					     CLASS_MODEL, (void **)models, nm);
		groups[i]->g.model = mx ? &mx->m : NULL;
	}
	for (size_t i = 0; i < ng; i++)
		link_group_rules(ld, groups[i], (void **)props, np);

	/* destinations */
	for (size_t i = 0; i < nd; i++) {
		struct dest_x *x = dests[i];
		struct app_x *ax = resolve(ld, &x->w, x->app_m, x->app_id, "appId", CLASS_APP, (void **)apps, na);
		struct model_x *mx = resolve(ld, &x->w, x->model_m, x->model_id, "modelId", CLASS_MODEL, (void **)models, nm);
		const struct catalog_destination *cat = catalog_destination(x->d.type);
		x->d.app = ax ? &ax->a : NULL;
		x->d.model = mx ? &mx->m : NULL;
		if (ax && ax->cat && ax->cat->supported && cat && strcmp(ax->a.type, cat->app_type))
			err_at(ld, &x->w, NPOS(x->app_m->value), "appId", NULL,
			       "destination type \"%s\" needs %s %s app, but app \"%s\" is of type \"%s\"", x->d.type,
			       article(cat->app_type), cat->app_type, ax->a.id, ax->a.type);
		link_destination(ld, x, (void **)props, np, (void **)groups, ng);
		link_sync_log(ld, x, apps, na, srcs, ns);
	}

	/* schedules */
	for (size_t i = 0; i < nsc; i++) {
		struct schedule_x *x = scheds[i];
		struct source_x *sx = resolve(ld, &x->w, x->source_m, x->source_id, "sourceId", CLASS_SOURCE, (void **)srcs, ns);
		if (!sx)
			continue;
		x->s.source = &sx->s;
		x->s.incremental = get_bool(x->node, "incremental", !sx->s.is_query);
		if (!sx->s.schedule)
			sx->s.schedule = &x->s;
		for (size_t j = 0; j < i; j++)
			if (scheds[j]->s.source == &sx->s) {
				err_at(ld, &x->w, NPOS(x->source_m->value), "sourceId", "remove one of the schedules",
				       "source \"%s\" already has schedule \"%s\"; a source has at most one", sx->s.id,
				       scheds[j]->s.id);
				break;
			}
		if (sx->cat)
			check_options(ld, &x->w, &x->s.options, catalog_schedule_options(sx->s.is_query),
				      arena_printf(ld->a, "a schedule of a %s source", sx->s.type), x->node->line,
				      x->node->col);
		/* Grouparoo's redshift query source had no getRows: properties only */
		if (sx->s.is_query && sx->s.type && !strncmp(sx->s.type, "redshift-", 9))
			err_at(ld, &x->w, NPOS(x->source_m->value), "sourceId",
			       "read the rows with a redshift-import-table source, or put the schedule on one",
			       "source \"%s\" (%s) cannot have a schedule", sx->s.id, sx->s.type);
	}

	/* model arrays */
	for (size_t i = 0; i < nm; i++) {
		struct cfg_model *m = &models[i]->m;
		size_t k;
		for (size_t j = 0; j < np; j++)
			if (props[j]->p.source && props[j]->p.source->model == m)
				m->n_properties++;
		m->properties = arena_alloc(ld->a, (m->n_properties ? m->n_properties : 1) * sizeof(void *));
		k = 0;
		for (size_t j = 0; j < np; j++)
			if (props[j]->p.source && props[j]->p.source->model == m) {
				props[j]->p.slot = k;
				m->properties[k++] = &props[j]->p;
			}
		for (size_t j = 0; j < ns; j++)
			if (srcs[j]->s.model == m)
				m->n_sources++;
		m->sources = arena_alloc(ld->a, (m->n_sources ? m->n_sources : 1) * sizeof(void *));
		k = 0;
		if (m->primary_source)
			m->sources[k++] = m->primary_source;
		for (size_t j = 0; j < ns; j++)
			if (srcs[j]->s.model == m && &srcs[j]->s != m->primary_source)
				m->sources[k++] = &srcs[j]->s;
		for (size_t j = 0; j < ng; j++)
			if (groups[j]->g.model == m)
				m->n_groups++;
		m->groups = arena_alloc(ld->a, (m->n_groups ? m->n_groups : 1) * sizeof(void *));
		k = 0;
		for (size_t j = 0; j < ng; j++)
			if (groups[j]->g.model == m) {
				groups[j]->g.index = k;
				m->groups[k++] = &groups[j]->g;
			}
		for (size_t j = 0; j < nd; j++)
			if (dests[j]->d.model == m)
				m->n_destinations++;
		m->destinations = arena_alloc(ld->a, (m->n_destinations ? m->n_destinations : 1) * sizeof(void *));
		k = 0;
		for (size_t j = 0; j < nd; j++)
			if (dests[j]->d.model == m)
				m->destinations[k++] = &dests[j]->d;
	}
	for (size_t i = 0; i < ns; i++) {
		struct cfg_source *s = &srcs[i]->s;
		size_t k = 0;
		for (size_t j = 0; j < np; j++)
			if (props[j]->p.source == s)
				s->n_properties++;
		s->properties = arena_alloc(ld->a, (s->n_properties ? s->n_properties : 1) * sizeof(void *));
		for (size_t j = 0; j < np; j++)
			if (props[j]->p.source == s)
				s->properties[k++] = &props[j]->p;
		qsort(s->properties, s->n_properties, sizeof(void *), cmp_prop_ptr);
	}
}

/* ---- files named by options (config_opts.check_files) ---- */

/*
 * An SQLite app that only holds sync logs (no source reads it) may name a file that
 * does not exist yet, in a directory that does: the log writer creates it.
 */
static bool sync_log_file_ok(const struct config *cfg, const struct cfg_app *app)
{
	const struct cfg_option *opt = cfg_options_get(&app->options, "file");
	bool log = false, ok = false;
	struct stat sb;
	for (size_t i = 0; i < cfg->n_destinations; i++)
		log |= cfg->destinations[i]->sync_log_app == app;
	for (size_t i = 0; i < cfg->n_sources; i++)
		if (cfg->sources[i]->app == app)
			return false;
	if (!log || !app->type || strcmp(app->type, "sqlite") || !opt || opt->kind != OPT_STRING || !opt->str ||
	    !*opt->str || !cfg->root)
		return false;
	char *path = config_resolve_path(cfg->root, opt->str);
	if (stat(path, &sb) != 0) {
		char *slash = strrchr(path, '/');
		if (slash && slash != path) {
			*slash = 0;
			ok = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
		}
	}
	free(path);
	return ok;
}

static void check_files(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	struct strbuf msg = STRBUF_INIT, hint = STRBUF_INIT;

	for (size_t i = 0; i < cfg->n_apps; i++) {
		struct app_x *x = (struct app_x *)cfg->apps[i];
		const struct cfg_option *opt = cfg_options_get(&x->a.options, "file");
		if (!x->cat || !x->cat->supported || !opt)
			continue;
		strbuf_reset(&msg);
		strbuf_reset(&hint);
		if (sync_log_file_ok(cfg, &x->a))
			continue;
		if (config_file_problem(cfg, &x->a, &msg, &hint))
			err_at(ld, &x->w, opt->pos.line, opt->pos.col, "options.file", hint.len ? hint.buf : NULL,
			       "%s", msg.buf);
	}
	strbuf_release(&msg);
	strbuf_release(&hint);
}

/* ---- diagnostics order and printing ---- */

struct diag_sort {
	struct cfg_diag d;
	size_t seq;
};

/* A file that does not parse comes first: what it defines is missing, so the errors
 * about references to it elsewhere follow from it (one stray comma, many errors). */
static int diag_rank(const struct cfg_diag *d)
{
	return d->severity == DIAG_ERROR && d->message && !strncmp(d->message, "syntax error", 12) ? 0 : 1;
}

static int cmp_diag(const void *a, const void *b)
{
	const struct diag_sort *x = a, *y = b;
	int rx = diag_rank(&x->d), ry = diag_rank(&y->d);
	if (rx != ry)
		return rx < ry ? -1 : 1;
	const char *fx = x->d.pos.file ? x->d.pos.file : "", *fy = y->d.pos.file ? y->d.pos.file : "";
	int c = strcmp(fx, fy);
	if (c)
		return c;
	if (x->d.pos.line != y->d.pos.line)
		return x->d.pos.line < y->d.pos.line ? -1 : 1;
	if (x->d.pos.col != y->d.pos.col)
		return x->d.pos.col < y->d.pos.col ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

static void sort_diags(struct config *cfg)
{
	struct diag_sort *t;
	if (cfg->n_diags < 2)
		return;
	t = xmalloc(cfg->n_diags * sizeof(*t));
	for (size_t i = 0; i < cfg->n_diags; i++) {
		t[i].d = cfg->diags[i];
		t[i].seq = i;
	}
	qsort(t, cfg->n_diags, sizeof(*t), cmp_diag);
	for (size_t i = 0; i < cfg->n_diags; i++)
		cfg->diags[i] = t[i].d;
	free(t);
}

void config_print_diags(const struct config *cfg, FILE *out)
{
	for (size_t i = 0; cfg && i < cfg->n_diags; i++) {
		const struct cfg_diag *d = &cfg->diags[i];
		if (d->pos.file) {
			fputs(d->pos.file, out);
			if (d->pos.line > 0)
				fprintf(out, ":%d:%d", d->pos.line, d->pos.col);
			fputs(": ", out);
		}
		fputs(d->severity == DIAG_ERROR ? "error: " : "warning: ", out);
		if (d->class_name) {
			fputs(d->class_name, out);
			if (d->id)
				fprintf(out, " \"%s\"", d->id);
			fputs(": ", out);
		}
		if (d->field)
			fprintf(out, "%s: ", d->field);
		fprintf(out, "%s\n", d->message);
		if (d->hint)
			fprintf(out, "hint: %s\n", d->hint);
	}
}

/* ---- public API ---- */

enum jerr config_load(const char *dir, const struct config_opts *opts, struct config **out,
		      struct jerror *err)
{
	struct config *cfg;
	struct loader ld;
	struct path_list pl = { NULL, 0, 0 };
	struct dir_seen seen = { NULL, 0, 0 };
	struct stat st;
	char *root = NULL;

	*out = NULL;
	if (stat(dir, &st) != 0)
		return jerror_set(err, errno == ENOENT ? JERR_CONFIG : JERR_IO,
				  "could not open config directory \"%s\": %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return jerror_set(err, JERR_CONFIG, "config path \"%s\" is not a directory", dir);

	if (opts && opts->root) {
		root = xstrdup(opts->root);
	} else if (config_project_root(dir, &root, err)) {
		return err->code;
	}

	cfg = xcalloc(1, sizeof(*cfg));
	arena_init(&cfg->arena);
	cfg->dir = arena_strdup(&cfg->arena, dir);
	cfg->root = arena_strdup(&cfg->arena, root);
	free(root);
	memset(&ld, 0, sizeof(ld));
	ld.cfg = cfg;
	ld.a = &cfg->arena;
	ld.opts = opts;

	load_secrets(&ld);
	if (!dir_seen_check(&seen, &st)) /* the config directory itself: a link to it is a loop */
		walk(&ld, dir, "", 0, &pl, &seen);
	dir_seen_release(&seen);
	if (pl.n) /* an empty directory has no list at all */
		qsort(pl.items, pl.n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < pl.n; i++) {
		load_file(&ld, dir, pl.items[i]);
		free(pl.items[i]);
	}
	free(pl.items);

	check_plain_env(&ld);
	link_all(&ld);
	if (opts && opts->check_files)
		check_files(&ld);
	for (int c = 0; c < CLASS__COUNT; c++)
		free(ld.objs[c]);
	free(ld.broken_ids);
	free(ld.plain_env);
	free(ld.data_real);
	sort_diags(cfg);

	*out = cfg;
	if (cfg->n_errors) {
		jerror_set(err, JERR_CONFIG, "config \"%s\" is invalid: %zu error%s", dir, cfg->n_errors,
			   cfg->n_errors == 1 ? "" : "s");
		return JERR_CONFIG;
	}
	return JERR_OK;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->diags);
	arena_release(&cfg->arena);
	free(cfg);
}

const struct cfg_option *cfg_options_get(const struct cfg_options *o, const char *key)
{
	for (size_t i = 0; o && i < o->n; i++)
		if (!strcmp(o->items[i].key, key))
			return &o->items[i];
	return NULL;
}

const char *cfg_options_str(const struct cfg_options *o, const char *key)
{
	const struct cfg_option *opt = cfg_options_get(o, key);
	return opt && opt->kind == OPT_STRING ? opt->str : NULL;
}

const char *config_option_display(const struct cfg_option *opt)
{
	if (!opt)
		return NULL;
	if (opt->secret) {
		if (opt->ref && opt->ref[0] == '$')
			return opt->ref;
		return opt->env_name ? opt->env_name : "****";
	}
	if (opt->kind == OPT_STRING && (opt->sensitive || catalog_option_sensitive(opt->key)))
		return "****";
	return opt->str;
}

static void *find_public(void *const *arr, size_t n, const char *id)
{
	return find_id(arr, n, id);
}

struct cfg_model *config_model(const struct config *cfg, const char *id)
{
	return find_public((void *const *)cfg->models, cfg->n_models, id);
}

struct cfg_destination *config_destination(const struct config *cfg, const char *id)
{
	return find_public((void *const *)cfg->destinations, cfg->n_destinations, id);
}

struct cfg_app *config_app(const struct config *cfg, const char *id)
{
	return find_public((void *const *)cfg->apps, cfg->n_apps, id);
}

struct cfg_alert *config_alert(const struct config *cfg, const char *id)
{
	return find_public((void *const *)cfg->alerts, cfg->n_alerts, id);
}
