/*
 * write_secrets.c: secret options of config writes and the secrets file: moving literal
 * secrets to JOEY_SECRET_* names, masking them for reading, reading, locking and
 * writing the secrets file (secrets_set, config/write.h), and dropping generated
 * secrets no object uses any more. Called by write.c (write_internal.h).
 */
#include "config/write_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/catalog.h"
#include "config/write.h"

/* ---- secrets ---- */

void cw_secret_list_release(struct secret_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].value);
	}
	free(l->items);
	memset(l, 0, sizeof(*l));
}

/*
 * Is option key of an object of class cls and type (may be NULL) a secret? Every option
 * of an App or Alert whose type joey does not read (a Grouparoo plugin the loader skips,
 * mongo's uri, a typo): only the plugin knows which of its options are keys (Datadog's appKey).
 */
static bool option_sensitive(enum cfg_class cls, const char *type, const char *key)
{
	const struct catalog_option *opts = NULL;
	if (catalog_option_sensitive(key))
		return true;
	if ((cls == CLASS_APP && !(type && catalog_app(type) && catalog_app(type)->supported)) ||
	    (cls == CLASS_ALERT && !(type && catalog_alert(type))))
		return true;
	if (type && cls == CLASS_APP && catalog_app(type))
		opts = catalog_app(type)->options;
	else if (type && cls == CLASS_SOURCE && catalog_source(type))
		opts = catalog_source(type)->options;
	else if (type && cls == CLASS_DESTINATION && catalog_destination(type))
		opts = catalog_destination(type)->options;
	else if (type && cls == CLASS_ALERT && catalog_alert(type))
		opts = catalog_alert(type)->options;
	for (; opts && opts->name; opts++)
		if (!strcmp(opts->name, key))
			return opts->sensitive;
	return false;
}

/* JOEY_SECRET_<ID>_<OPTION>, upper case, other characters as '_' (owned). */
static char *secret_name(const char *id, const char *option)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "JOEY_SECRET_");
	for (const char *p = id; *p; p++)
		strbuf_addch(&sb, isalnum((unsigned char)*p) ? toupper((unsigned char)*p) : '_');
	strbuf_addch(&sb, '_');
	for (const char *p = option; *p; p++)
		strbuf_addch(&sb, isalnum((unsigned char)*p) ? toupper((unsigned char)*p) : '_');
	return strbuf_detach(&sb, NULL);
}

/* How many times "${name}" occurs in the config files of pl under root. */
static size_t name_references(const char *root, const struct path_list *pl, const char *name)
{
	struct strbuf ref = STRBUF_INIT, path = STRBUF_INIT;
	struct jerror ignored = JERROR_INIT;
	size_t n = 0;

	strbuf_addf(&ref, "${%s}", name);
	for (size_t i = 0; i < pl->n; i++) {
		char *buf;
		size_t len;
		strbuf_reset(&path);
		strbuf_addf(&path, "%s/%s", root, pl->items[i]);
		if (cw_read_whole(path.buf, &buf, &len, &ignored))
			continue;
		for (const char *p = buf; (p = strstr(p, ref.buf)); p += ref.len)
			n++;
		free(buf);
	}
	strbuf_release(&ref);
	strbuf_release(&path);
	jerror_release(&ignored);
	return n;
}

/*
 * A free secret name for option of object id: secret_name(), or with "_2", "_3", ...
 * when another object already refers to it (ids "prod-braze" and "prod_braze" map to
 * the same name; writing one must never replace the other's secret). The old object's
 * own reference to the name (old_ref) does not count. Owned; NULL if none is free.
 */
static char *free_secret_name(const char *root, const struct path_list *pl, const char *id, const char *option,
			      const struct j5_node *old_ref)
{
	char *base = secret_name(id, option);
	struct strbuf name = STRBUF_INIT;

	strbuf_addstr(&name, base);
	for (int k = 2; k < 100; k++) {
		size_t own = old_ref && old_ref->type == J5_STRING && old_ref->len == name.len + 3 &&
			     !memcmp(old_ref->str, "${", 2) && !memcmp(old_ref->str + 2, name.buf, name.len) &&
			     old_ref->str[name.len + 2] == '}';
		if (name_references(root, pl, name.buf) <= own) {
			free(base);
			return strbuf_detach(&name, NULL);
		}
		strbuf_reset(&name);
		strbuf_addf(&name, "%s_%d", base, k);
	}
	strbuf_release(&name);
	free(base);
	return NULL;
}

static const char *json_str_member(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * Secrets of obj (a new or replacing object, modified in place; old: the stored one or
 * NULL): a literal value of a sensitive option is moved to *add and replaced by
 * "${JOEY_SECRET_...}"; "****" takes the stored value as written; references ("${X}",
 * or Grouparoo's "X" when GROUPAROO_OPTION__<TOPIC>__X is set) and "" are kept.
 */
enum jerr cw_take_secrets(json_t *obj, const struct j5_node *old, enum cfg_class cls,
			      const char *id, const struct config_opts *opts, const char *root,
			      const struct path_list *pl, struct secret_list *add, struct jerror *err)
{
	json_t *options = json_object_get(obj, "options");
	const struct j5_member *old_opts = old ? j5_member(old, "options") : NULL;
	const char *type = json_str_member(obj, "type");
	void *it;

	if (!json_is_object(options))
		return JERR_OK;
	for (it = json_object_iter(options); it; it = json_object_iter_next(options, it)) {
		const char *key = json_object_iter_key(it);
		json_t *v = json_object_iter_value(it);
		const char *s;
		size_t len;
		char *name;

		if (!json_is_string(v) || !option_sensitive(cls, type, key))
			continue;
		s = json_string_value(v);
		len = json_string_length(v);
		if (len == 0 || config_is_reference(s, len))
			continue;
		if (!strcmp(s, "****")) {
			const struct j5_member *m = old_opts && old_opts->value->type == J5_OBJECT
							    ? j5_member(old_opts->value, key)
							    : NULL;
			if (!m) {
				jerror_set(err, JERR_USAGE, "option \"%s\" of %s \"%s\" is \"****\" but no value is stored",
					   key, cfg_class_name(cls), id);
				jerror_hint(err, "send the secret itself, or a \"${NAME}\" reference to an environment variable");
				return JERR_USAGE;
			}
			json_object_iter_set_new(options, it, cw_j5_to_json(m->value));
			continue;
		}
		if (len <= CONFIG_ENV_NAME_MAX && !strchr(s, '=')) {
			struct strbuf envn = STRBUF_INIT;
			const char *cn = cfg_class_name(cls);
			strbuf_addstr(&envn, "GROUPAROO_OPTION__");
			for (const char *p = cn; *p; p++)
				strbuf_addch(&envn, toupper((unsigned char)*p));
			strbuf_addf(&envn, "__%s", s);
			if (config_getenv(opts, envn.buf)) {
				strbuf_release(&envn);
				continue; /* Grouparoo's reference form, resolved by the loader */
			}
			strbuf_release(&envn);
		}
		{
			const struct j5_member *m = old_opts && old_opts->value->type == J5_OBJECT
							    ? j5_member(old_opts->value, key)
							    : NULL;
			/* an Alert's secrets get their own prefix: an App and an Alert may share an id */
			struct strbuf sid = STRBUF_INIT;
			strbuf_addf(&sid, "%s%s", cls == CLASS_ALERT ? "ALERT_" : "", id);
			name = free_secret_name(root, pl, sid.buf, key, m ? m->value : NULL);
			strbuf_release(&sid);
		}
		if (!name) {
			jerror_set(err, JERR_USAGE, "option \"%.100s\" of %s \"%s\": no free secret name", key,
				   cfg_class_name(cls), id);
			jerror_detail(err, "the generated name and its variants _2 to _99 are all referred to by other objects");
			jerror_hint(err, "use a \"${NAME}\" reference to an environment variable");
			return JERR_USAGE;
		}
		if (strlen(name) > CONFIG_ENV_NAME_MAX) {
			free(name);
			jerror_set(err, JERR_USAGE, "option \"%.100s\" of %s \"%s\": the secret name would be too long",
				   key, cfg_class_name(cls), id);
			jerror_hint(err, "use a shorter id, or a \"${NAME}\" reference to an environment variable");
			return JERR_USAGE;
		}
		for (size_t i = 0; i < add->n; i++)
			if (!strcmp(add->items[i].name, name)) {
				jerror_set(err, JERR_USAGE, "options of %s \"%s\" give secret \"%s\" twice", cfg_class_name(cls),
					   id, name);
				jerror_detail(err, "option \"%s\" maps to the same name as an earlier option", key);
				jerror_hint(err, "remove one of them");
				free(name);
				return JERR_USAGE;
			}
		ALLOC_GROW(add->items, add->n + 1, add->alloc);
		add->items[add->n].name = name;
		add->items[add->n].value = xstrndup(s, len);
		add->n++;
		{
			struct strbuf ref = STRBUF_INIT;
			strbuf_addf(&ref, "${%s}", name);
			json_object_iter_set_new(options, it, json_string(ref.buf));
			strbuf_release(&ref);
		}
	}
	return JERR_OK;
}

/* Mask literal secrets of obj (in place) with "****"; references are kept. */
void cw_mask_secrets(json_t *obj, enum cfg_class cls)
{
	json_t *options = json_object_get(obj, "options");
	const char *type = json_str_member(obj, "type");
	void *it;
	if (!json_is_object(options))
		return;
	for (it = json_object_iter(options); it; it = json_object_iter_next(options, it)) {
		json_t *v = json_object_iter_value(it);
		if (!json_is_string(v) || !json_string_length(v) ||
		    !option_sensitive(cls, type, json_object_iter_key(it)) ||
		    config_is_reference(json_string_value(v), json_string_length(v)))
			continue;
		json_object_iter_set_new(options, it, json_string("****"));
	}
}

/*
 * Read the secrets file at path (missing: an empty object) into *out (owned): a JSON
 * (or JSON5) object of strings, anything else is JERR_IO naming the file.
 */
enum jerr cw_secrets_read(const char *path, json_t **out, struct jerror *err)
{
	struct arena a;
	struct j5_node *root;
	struct j5_error je;
	char *buf;
	size_t len;
	enum jerr rc;

	*out = NULL;
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		*out = json_object();
		return JERR_OK;
	}
	if ((rc = cw_read_whole(path, &buf, &len, err)))
		return rc;
	arena_init(&a);
	if (!json5_parse(buf, len, &a, &root, &je)) {
		jerror_set(err, JERR_IO, "secrets file \"%s\" is not valid JSON", path);
		jerror_detail(err, "%s:%d:%d: %s", path, je.line, je.col, je.msg);
		jerror_hint(err, "fix or remove the file; it must hold {\"NAME\": \"value\", ...}");
		rc = JERR_IO;
		goto out;
	}
	if (root->type != J5_OBJECT) {
		jerror_set(err, JERR_IO, "secrets file \"%s\" must hold a JSON object of strings", path);
		jerror_hint(err, "fix or remove the file; it must hold {\"NAME\": \"value\", ...}");
		rc = JERR_IO;
		goto out;
	}
	for (size_t i = 0; i < root->n; i++)
		if (root->members[i].value->type != J5_STRING) {
			jerror_set(err, JERR_IO, "secrets file \"%s\": secret \"%s\" must be a string", path,
				   root->members[i].key);
			jerror_hint(err, "fix the file; it must hold {\"NAME\": \"value\", ...}");
			rc = JERR_IO;
			goto out;
		}
	*out = cw_j5_to_json(root);
out:
	free(buf);
	arena_release(&a);
	return rc;
}

/* Write secrets (borrowed) to path atomically with mode 0600, creating its directory. */
enum jerr cw_secrets_write(const char *path, const json_t *secrets, struct jerror *err)
{
	char *dir = cw_dir_of(path);
	char *text = cw_json_text(secrets, true);
	enum jerr rc = JERR_OK;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		rc = jerror_set(err, JERR_IO, "could not create directory \"%s\": %s", dir, strerror(errno));
	else
		rc = cw_write_atomic(path, text, strlen(text), 0600, err);
	free(text);
	free(dir);
	return rc;
}

/*
 * Lock the directory of the secrets file, unless it is the directory held by
 * held_fd (the config directory's lock: flock would wait for itself). *fd is -1
 * when nothing was locked.
 */
enum jerr cw_lock_secrets(const char *path, int held_fd, int *fd, struct jerror *err)
{
	char *dir = cw_dir_of(path);
	struct stat a, b;
	enum jerr rc = JERR_OK;

	*fd = -1;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = jerror_set(err, JERR_IO, "could not create directory \"%s\": %s", dir, strerror(errno));
	} else if (held_fd >= 0 && fstat(held_fd, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev &&
		   a.st_ino == b.st_ino) {
		/* same directory: already locked */
	} else if ((rc = cw_lock_dir(dir, fd, err))) {
		jerror_prefix(err, "secrets file: ");
	}
	free(dir);
	return rc;
}

enum jerr cw_secrets_add(const char *path, int held_fd, const struct secret *items, size_t n, struct jerror *err)
{
	json_t *secrets = NULL;
	enum jerr rc;
	int fd = -1;

	if ((rc = cw_lock_secrets(path, held_fd, &fd, err)))
		return rc;
	if (!(rc = cw_secrets_read(path, &secrets, err))) {
		for (size_t i = 0; i < n; i++)
			json_object_set_new(secrets, items[i].name, json_string_nocheck(items[i].value));
		rc = cw_secrets_write(path, secrets, err);
	}
	json_decref(secrets);
	cw_unlock_dir(fd);
	return rc;
}

enum jerr secrets_set(const char *path, const char *name, const char *value, struct jerror *err)
{
	/* borrowed for the call: cw_secrets_add only reads them */
	struct secret one = { .name = (char *)name, .value = (char *)value };

	if (!path)
		return jerror_set(err, JERR_USAGE, "no secrets file is configured");
	if (!name || !config_env_name_ok(name, strlen(name))) {
		jerror_set(err, JERR_USAGE, "invalid secret name \"%.100s\"", name ? name : "");
		jerror_hint(err, "use letters, digits and underscores, not starting with a digit");
		return JERR_USAGE;
	}
	if (!value)
		return jerror_set(err, JERR_USAGE, "secret \"%s\" needs a value", name);
	return cw_secrets_add(path, -1, &one, 1, err);
}

static bool options_use(const struct cfg_options *o, const char *name)
{
	for (size_t k = 0; k < o->n; k++)
		if (o->items[k].env_name && !strcmp(o->items[k].env_name, name))
			return true;
	return false;
}

/* Does any option of cfg refer to secret name? */
static bool cfg_uses_name(const struct config *cfg, const char *name)
{
	/* every class with options: its array of objects and how many */
#define USES(arr, n)                                                \
	for (size_t i = 0; i < cfg->n; i++)                         \
		if (options_use(&cfg->arr[i]->options, name))       \
			return true;
	USES(apps, n_apps)
	USES(sources, n_sources)
	USES(properties, n_properties)
	USES(destinations, n_destinations)
	USES(schedules, n_schedules)
	USES(alerts, n_alerts)
#undef USES
	return false;
}

/*
 * After a committed change: drop the generated secrets (JOEY_SECRET_*) that the old
 * object referred to and the new config no longer uses. Failing here is only logged:
 * the change itself is on disk, and an unused secret does no harm.
 */
void cw_drop_unused_secrets(const char *path, int held_fd, const struct j5_node *old,
				const struct config *cfg)
{
	const struct j5_member *om = old ? j5_member(old, "options") : NULL;
	struct jerror err = JERROR_INIT;
	json_t *secrets = NULL;
	size_t dropped = 0;
	int fd = -1;

	if (!path || !om || om->value->type != J5_OBJECT)
		return;
	for (size_t i = 0; i < om->value->n; i++) {
		const struct j5_node *v = om->value->members[i].value;
		char *name;
		if (v->type != J5_STRING || !config_is_reference(v->str, v->len) || strncmp(v->str, "${JOEY_SECRET_", 14))
			continue;
		name = xstrndup(v->str + 2, v->len - 3);
		if (!cfg_uses_name(cfg, name)) {
			if (!secrets && (cw_lock_secrets(path, held_fd, &fd, &err) || cw_secrets_read(path, &secrets, &err))) {
				free(name);
				goto out;
			}
			if (!json_object_del(secrets, name))
				dropped++;
		}
		free(name);
	}
	if (dropped)
		(void)cw_secrets_write(path, secrets, &err);
out:
	if (err.code)
		log_warn("could not drop unused secrets from \"%s\": %s", path, err.msg.buf);
	json_decref(secrets);
	cw_unlock_dir(fd);
	jerror_release(&err);
}

