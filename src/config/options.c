/*
 * options.c: an object's "options": reading them (types, duplicates), resolving secrets
 * ("${NAME}", the secrets file, GROUPAROO_OPTION__ variables), checking them against the
 * connector catalog, and the public option getters of config.h. Called by the class files.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "config/config_internal.h"

/* ---- options and secrets ---- */

const char *config_getenv(const struct config_opts *opts, const char *name)
{
	if (opts && opts->getenv_fn)
		return opts->getenv_fn(name, opts->getenv_ctx);
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
void ld_load_secrets(struct loader *ld)
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
		ld_err(ld, &w, 0, 0, NULL, NULL, "could not read secrets file \"%s\": %s", path,
		       strerror(errno));
		ld->secrets_refused = true;
		return;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		ld_err(ld, &w, 0, 0, NULL, NULL, "secrets file \"%s\" is not a regular file", path);
		ld->secrets_refused = true;
		close(fd);
		return;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		ld_err(ld, &w, 0, 0, NULL, arena_printf(ld->a, "chmod 600 %s", path),
		       "secrets file \"%s\" is accessible by group or others (mode %04o)", path,
		       (unsigned)(st.st_mode & 07777));
		ld->secrets_refused = true;
		close(fd);
		return;
	}
	if ((uint64_t)st.st_size > J5_MAX_INPUT) {
		ld_err(ld, &w, 0, 0, NULL, NULL, "secrets file \"%s\" is larger than %zu MiB", path,
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
		ld_err(ld, &w, je.line, je.col, NULL, "write it as {\"NAME\": \"value\", ...}",
		       "secrets file \"%s\": syntax error: %s", path, je.msg);
		ld->secrets_refused = true;
		free(buf);
		return;
	}
	free(buf);
	if (root->type != J5_OBJECT) {
		ld_err(ld, &w, NPOS(root), NULL, "write it as {\"NAME\": \"value\", ...}",
		       "secrets file \"%s\" must hold a JSON object of strings, found %s", path,
		       ld_found_text(root));
		ld->secrets_refused = true;
		return;
	}
	for (size_t i = 0; i < root->n; i++) {
		const struct j5_member *m = &root->members[i];
		if (m->value->type != J5_STRING) {
			ld_err(ld, &w, NPOS(m->value), NULL, "write it as {\"NAME\": \"value\", ...}",
			       "secrets file \"%s\": secret \"%s\" must be a string, found %s", path,
			       m->key, ld_found_text(m->value));
			ld->secrets_refused = true;
			return;
		}
	}
	ld->secrets = root;
}

bool config_is_reference(const char *s, size_t n)
{
	return n > 3 && s[0] == '$' && s[1] == '{' && s[n - 1] == '}';
}

bool config_env_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > CONFIG_ENV_NAME_MAX || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
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
 * options it does not list (reported by ld_check_options), references stay unresolved.
 */
void ld_read_options(struct loader *ld, const struct where *w, const struct j5_node *obj,
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
			ld_err(ld, w, m->line, m->col, field, "remove one of them", "duplicate option \"%s\"",
			       m->key);
			continue;
		}
		if (v->type == J5_NULL || (v->type == J5_STRING && v->len == 0))
			continue;
		if (v->type == J5_OBJECT || v->type == J5_ARRAY) {
			ld_err(ld, w, NPOS(v), field, NULL, "expected a string, number or boolean, found %s",
			       ld_found_text(v));
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
		if (config_is_reference(v->str, v->len)) {
			const char *name = arena_strndup(ld->a, v->str + 2, v->len - 3);
			const char *val;
			if (!c)
				continue; /* unknown option or type: reported elsewhere, never resolved */
			if (!c->sensitive) {
				/* resolved here, a secret would become a table name, a path or a
				 * column, and every message naming those would print it */
				ld_err(ld, w, NPOS(v), field,
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
			if (!config_env_name_ok(name, v->len - 3)) {
				ld_err(ld, w, NPOS(v), field,
				       "write \"${NAME}\" with letters, digits and underscores only",
				       "invalid environment variable reference \"%s\"", v->str);
				opt->str = "";
				continue;
			}
			val = config_getenv(ld->opts, name);
			if (!val)
				val = secret_get(ld, name);
			if (!val) {
				const char *sp = ld->opts ? ld->opts->secrets_path : NULL;
				opt->str = "";
				if (ld->secrets_refused)
					continue; /* the secrets file is reported instead */
				ld_err(ld, w, NPOS(v), field,
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
			const char *val = config_getenv(ld->opts, envn);
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
					ld_err(ld, w, NPOS(v), field,
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
 * GROUPAROO_OPTION__APP__X) may not also set a plain app option (ld_read_options listed
 * those): the key would become a path or a host name. Runs after every app is read.
 */
void ld_check_plain_env(struct loader *ld)
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
		ld_err(ld, &u->w, u->opt->pos.line, u->opt->pos.col, arena_printf(ld->a, "options.%s", u->opt->key),
		       arena_printf(ld->a, "App \"%s\" reads its %s from it; write the value of \"%s\" itself", owner->a.id,
				    so->key, u->opt->key),
		       "option \"%s\" is not a secret and cannot be set from %s, which holds a secret", u->opt->key,
		       u->opt->env_name);
		u->opt->str = "";
	}
}

/* A string option that holds a whole number or a decimal ("42", "1.5"): made a number (true). */
static bool option_to_number(struct cfg_option *opt)
{
	char *end;
	double d = strtod(opt->str, &end);
	if (!*opt->str || *end || !isfinite(d))
		return false;
	opt->kind = OPT_NUMBER;
	opt->num = d;
	return true;
}

/*
 * Options of Grouparoo's plugins that joey does not take, each with what to write
 * instead: an error that only listed joey's options would leave a Grouparoo user
 * guessing. what is ld_check_options's.
 */
static const struct {
	const char *what, *key, *hint;
} grouparoo_only[] = {
	/* Grouparoo's CSV plugin downloaded the source's url (http) into a cache it renewed
	 * after fileAgeHours; joey reads a local file named by the csv app */
	{ "a csv-import-table source", "url",
	  "joey reads CSV files from disk, not over HTTP: download the file (e.g. curl -o data/users.csv URL, "
	  "from cron) and name it in the csv app's \"file\" option; then remove \"url\" and \"fileAgeHours\"" },
	{ "a csv-import-table source", "fileAgeHours",
	  "joey reads the csv app's \"file\" on every run and caches nothing: remove \"fileAgeHours\"" },
};

static const char *grouparoo_only_hint(const char *what, const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(grouparoo_only); i++)
		if (!strcmp(grouparoo_only[i].what, what) && !strcmp(grouparoo_only[i].key, key))
			return grouparoo_only[i].hint;
	return NULL;
}

/* Check options against a catalog table: unknown names, kinds, required ones. */
void ld_check_options(struct loader *ld, const struct where *w, const struct cfg_options *o,
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
			const char *hint = grouparoo_only_hint(what, opt->key);
			if (!hint)
				hint = ld_did_you_mean(ld, opt->key, names, n_names);
			if (!hint && n_names)
				hint = ld_quoted_list(ld, "valid options: ", names, n_names);
			ld_err(ld, w, opt->pos.line, opt->pos.col, field, hint,
			       "unknown option \"%s\" for %s", opt->key, what);
			continue;
		}
		if (c->kind == OPT_NUMBER && opt->kind == OPT_STRING && option_to_number(opt))
			continue;
		if (c->kind == OPT_NUMBER && opt->kind == OPT_STRING && opt->secret) {
			ld_err(ld, w, opt->pos.line, opt->pos.col, field, NULL,
			       "expected a number in %s", config_option_display(opt));
			continue;
		}
		if (c->kind != opt->kind)
			ld_err(ld, w, opt->pos.line, opt->pos.col, field, NULL, "expected %s, found %s",
			       c->kind == OPT_STRING ? "a string" : c->kind == OPT_NUMBER ? "a number" : "a boolean",
			       opt->kind == OPT_STRING ? "a string" : opt->kind == OPT_NUMBER ? "a number" : "a boolean");
	}
	for (const struct catalog_option *c = cat; c->name; c++)
		if (c->required && !cfg_options_get(o, c->name))
			ld_err(ld, w, line, col, arena_printf(ld->a, "options.%s", c->name), NULL,
			       "missing required option \"%s\" for %s", c->name, what);
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

bool ld_check_sql_name(struct loader *ld, const struct where *w, int line, int col, const char *field,
		       const char *name)
{
	for (const unsigned char *c = (const unsigned char *)name; c && *c; c++)
		if (*c < 0x20 || *c == 0x7f) {
			ld_err(ld, w, line, col, field,
			       "remove it: table and column names go into SQL as they are written",
			       "the name contains a control character (byte 0x%02x at offset %zu)", *c,
			       (size_t)(c - (const unsigned char *)name));
			return false;
		}
	return true;
}

void ld_check_sql_name_option(struct loader *ld, const struct where *w, const struct cfg_options *o,
			      const char *key)
{
	const struct cfg_option *opt = cfg_options_get(o, key);
	if (opt && opt->kind == OPT_STRING)
		ld_check_sql_name(ld, w, opt->pos.line, opt->pos.col, arena_printf(ld->a, "options.%s", key),
				  opt->str);
}
