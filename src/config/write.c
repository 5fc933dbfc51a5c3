/*
 * write.c: change one object of the config directory (validated, atomic): the request,
 * staging, the commit, and the whole-file calls of the UI's repair editor (config/write.h).
 * The pieces it drives are in write_files.c, write_json.c and write_secrets.c
 * (write_internal.h). Called by the HTTP API (src/server/) and the CLI.
 */
#include "config/write.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/catalog.h"
#include "config/json5.h"
#include "config/paths.h"
#include "config/write_internal.h"

/*
 * Design: one write, under an exclusive flock(2) on the config directory (so two
 * writers, threads or processes, take turns):
 *  1. check the request: class, id (a safe file name), the object (strict JSON, one
 *     object, "class" and "id" agreeing with the request);
 *  2. find the object's current file by scanning the directory the way the loader
 *     does (sorted, dot-names and node_modules skipped), parsing with the JSON5 parser;
 *  3. secrets: literal values of sensitive options become "${JOEY_SECRET_<ID>_<OPT>}"
 *     and the values are set aside; "****" takes the value stored in the file;
 *  4. the new text of the one file that changes: the old text with the object's text
 *     replaced or cut out, every other byte kept (see "splicing"); NULL: the file goes;
 *  5. staging: a sibling directory ".<name>.joey-write.XXXXXX" gets a copy of every
 *     file the loader reads, then the change; config_load runs on it with the real
 *     options and the real directory's project root (config/paths.h: relative file
 *     options resolve from there, wherever the staging copy is), the new
 *     secrets answering after the environment and before the real secrets file (the
 *     order config_load itself uses once they are in that file);
 *  6. only when that has no error: secrets file (so the config never refers to a
 *     secret that is not on disk), then the config file, each by cw_write_atomic();
 *     generated secrets that only the old object used are dropped afterwards.
 * The staging directory is removed on every path. The directory is never changed
 * before step 6, so any failure before it leaves every file byte-identical.
 */

#define WRITE_MAX_ID 128

static const char *const class_dirs[CLASS__COUNT] = {
	[CLASS_APP] = "apps",           [CLASS_MODEL] = "models",
	[CLASS_SOURCE] = "sources",     [CLASS_PROPERTY] = "properties",
	[CLASS_GROUP] = "groups",       [CLASS_DESTINATION] = "destinations",
	[CLASS_SCHEDULE] = "schedules",
	[CLASS_ALERT] = "alerts",
};

const char *cfg_class_dir(enum cfg_class c)
{
	return (unsigned)c < CLASS__COUNT ? class_dirs[c] : NULL;
}

bool cfg_class_from_dir(const char *name, enum cfg_class *out)
{
	for (int c = 0; name && c < CLASS__COUNT; c++)
		if (!strcmp(class_dirs[c], name)) {
			*out = (enum cfg_class)c;
			return true;
		}
	return false;
}

/* ---- small helpers ---- */

static bool id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > WRITE_MAX_ID || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)id[i]) || id[i] == '_' || id[i] == '.' || id[i] == '-'))
			return false;
	return true;
}

static enum jerr bad_id(struct jerror *err, const char *id)
{
	jerror_set(err, JERR_USAGE, "invalid id \"%.140s\"", id ? id : "");
	jerror_hint(err, "ids may contain only letters, digits, \"_\", \"-\" and \".\" (not first), at most %d characters",
		    WRITE_MAX_ID);
	return JERR_USAGE;
}

/* ---- the request ---- */

/*
 * Parse and check w->object_json into *out (owned): one JSON object whose "class"
 * names w->cls (added after "id" when missing) and whose "id" is valid and agrees with
 * w->id (added first on UPDATE when missing). *id_out borrows the id from *out.
 */
static enum jerr parse_object(const struct cfg_write *w, json_t **out, const char **id_out,
			      struct jerror *err)
{
	const char *cname = cfg_class_name(w->cls);
	json_error_t je;
	json_t *obj, *idv, *cv;
	const char *id;

	*out = NULL;
	*id_out = NULL;
	if (!w->object_json)
		return jerror_set(err, JERR_USAGE, "no %s object given", cname);
	obj = json_loads(w->object_json, JSON_REJECT_DUPLICATES, &je);
	if (!obj) {
		jerror_set(err, JERR_USAGE, "invalid JSON in the %s object", cname);
		jerror_detail(err, "line %d, column %d: %s", je.line, je.column, je.text);
		jerror_hint(err, "send one JSON object, e.g. {\"id\": \"...\", \"class\": \"%s\", ...}", cname);
		return JERR_USAGE;
	}
	if (!json_is_object(obj)) {
		jerror_set(err, JERR_USAGE, "expected a JSON object for the %s, found %s", cname,
			   json_is_array(obj) ? "an array" : "a scalar");
		jerror_hint(err, "send one object per request");
		json_decref(obj);
		return JERR_USAGE;
	}

	idv = json_object_get(obj, "id");
	if (!idv && w->op == CFG_WRITE_UPDATE && w->id) {
		json_t *s = json_string(w->id), *o2;
		if (!s) {
			json_decref(obj);
			return bad_id(err, w->id);
		}
		o2 = cw_insert_key(obj, NULL, "id", s);
		json_decref(s);
		json_decref(obj);
		obj = o2;
		idv = json_object_get(obj, "id");
	}
	if (!idv) {
		json_decref(obj);
		jerror_set(err, JERR_USAGE, "the %s object has no \"id\"", cname);
		jerror_hint(err, "add \"id\": a name of letters, digits, \"_\" and \"-\"");
		return JERR_USAGE;
	}
	if (!json_is_string(idv)) {
		json_decref(obj);
		return jerror_set(err, JERR_USAGE, "\"id\" of the %s object must be a string", cname);
	}
	id = json_string_value(idv);
	if (!id_ok(id)) {
		enum jerr rc = bad_id(err, id);
		json_decref(obj);
		return rc;
	}
	if (w->id && strcmp(w->id, id)) {
		jerror_set(err, JERR_USAGE, "id \"%s\" in the object does not match \"%s\"", id, w->id);
		jerror_hint(err, w->op == CFG_WRITE_UPDATE ? "a rename is a delete and a create"
							   : "leave the id out of the request, or make them agree");
		json_decref(obj);
		return JERR_USAGE;
	}

	cv = json_object_get(obj, "class");
	if (!cv) {
		json_t *s = json_string(cname), *o2 = cw_insert_key(obj, "id", "class", s);
		json_decref(s);
		json_decref(obj);
		obj = o2;
	} else if (!json_is_string(cv)) {
		jerror_set(err, JERR_USAGE, "\"class\" of the %s object must be a string", cname);
		jerror_hint(err, "set \"class\": \"%s\", or leave it out", cname);
		json_decref(obj);
		return JERR_USAGE;
	} else if (!cw_class_matches(json_string_value(cv), json_string_length(cv), w->cls)) {
		jerror_set(err, JERR_USAGE, "class mismatch: the object is \"%.64s\", not %s", json_string_value(cv), cname);
		jerror_detail(err, "%s objects are written under %s/", cname, cfg_class_dir(w->cls));
		jerror_hint(err, "send it to the route of its class, or set \"class\": \"%s\"", cname);
		json_decref(obj);
		return JERR_USAGE;
	}
	*out = obj;
	*id_out = json_string_value(json_object_get(obj, "id"));
	return JERR_OK;
}

/* Does node hold at least one non-empty object (what the loader would load)? */
static bool has_objects(const json_t *arr)
{
	size_t i;
	json_t *v;
	json_array_foreach((json_t *)arr, i, v)
		if (json_is_object(v) && json_object_size(v))
			return true;
	return false;
}

/* The staging load's environment: the real one, then the secrets about to be written. */
struct stage_env {
	const struct config_opts *opts; /* the caller's, or NULL */
	const struct secret_list *add;
};

static const char *stage_getenv(const char *name, void *ctx)
{
	const struct stage_env *se = ctx;
	const char *v = cw_env_lookup(se->opts, name);
	for (size_t i = 0; !v && i < se->add->n; i++)
		if (!strcmp(se->add->items[i].name, name))
			v = se->add->items[i].value;
	return v;
}

/*
 * Pick <class dir>/<id>.json, or <id>-N.json if that name is taken by another file
 * (owned); NULL if even those are all taken.
 */
static char *new_file_name(const char *dir, enum cfg_class cls, const char *id)
{
	struct strbuf rel = STRBUF_INIT, full = STRBUF_INIT;
	struct stat st;
	bool free_name = false;
	for (int n = 1; n < 100 && !free_name; n++) {
		strbuf_reset(&rel);
		if (n == 1)
			strbuf_addf(&rel, "%s/%s.json", class_dirs[cls], id);
		else
			strbuf_addf(&rel, "%s/%s-%d.json", class_dirs[cls], id, n);
		strbuf_reset(&full);
		strbuf_addf(&full, "%s/%s", dir, rel.buf);
		free_name = lstat(full.buf, &st) != 0 && errno == ENOENT;
	}
	strbuf_release(&full);
	if (!free_name) {
		strbuf_release(&rel);
		return NULL;
	}
	return strbuf_detach(&rel, NULL);
}

/* Copy the files pl of dir into stage (created), as the loader would read them. */
static enum jerr stage_copy(const char *dir, const struct path_list *pl, const char *stage,
			    struct jerror *err)
{
	enum jerr rc = JERR_OK;
	for (size_t i = 0; i < pl->n && !rc; i++) {
		struct strbuf src = STRBUF_INIT, dst = STRBUF_INIT;
		char *buf;
		size_t len;
		strbuf_addf(&src, "%s/%s", dir, pl->items[i]);
		strbuf_addf(&dst, "%s/%s", stage, pl->items[i]);
		if (!(rc = cw_make_parents(stage, pl->items[i], err)) && !(rc = cw_read_whole(src.buf, &buf, &len, err))) {
			rc = cw_write_plain(dst.buf, buf, len, 0644, err);
			free(buf);
		}
		strbuf_release(&src);
		strbuf_release(&dst);
	}
	return rc;
}

/* "<parent>/.<name>.joey-write.XXXXXX" beside the directory real (an absolute path). */
static enum jerr stage_create(const char *real, char **out, struct jerror *err)
{
	const char *slash = strrchr(real, '/');
	struct strbuf sb = STRBUF_INIT;
	*out = NULL;
	if (!slash || !slash[1])
		return jerror_set(err, JERR_USAGE, "cannot write to config directory \"%s\"", real);
	strbuf_add(&sb, real, (size_t)(slash - real));
	strbuf_addf(&sb, "/.%s.joey-write.XXXXXX", slash + 1);
	if (!mkdtemp(sb.buf)) {
		jerror_set(err, JERR_IO, "could not create a staging directory beside \"%s\": %s", real,
			   strerror(errno));
		jerror_hint(err, "the directory that holds the config directory must be writable");
		strbuf_release(&sb);
		return JERR_IO;
	}
	*out = strbuf_detach(&sb, NULL);
	return JERR_OK;
}
enum jerr config_write(const char *dir, const struct cfg_write *w, const struct config_opts *opts,
		       struct cfg_write_result *res, struct jerror *err)
{
	struct config_opts stage_opts = { 0 };
	struct stage_env senv;
	struct path_list pl = { NULL, 0, 0 };
	struct secret_list add = { NULL, 0, 0 };
	struct found f;
	struct strbuf path = STRBUF_INIT;
	struct jerror lerr = JERROR_INIT;
	struct config *cfg = NULL;
	json_t *obj = NULL, *secrets = NULL, *root = NULL;
	const char *id = NULL, *cname;
	char *real = NULL, *stage = NULL, *rel = NULL, *text = NULL, *stored = NULL, *root_dir = NULL;
	bool have = false;
	mode_t mode = 0644;
	int lock_fd = -1, secrets_fd = -1;
	enum jerr rc;

	memset(res, 0, sizeof(*res));
	memset(&f, 0, sizeof(f));
	arena_init(&f.arena);
	if ((unsigned)w->cls >= CLASS__COUNT || (unsigned)w->op > CFG_WRITE_DELETE)
		return jerror_set(err, JERR_USAGE, "invalid config write request");
	cname = cfg_class_name(w->cls);
	if (w->op != CFG_WRITE_CREATE && !id_ok(w->id))
		return bad_id(err, w->id);
	if (w->id && w->op == CFG_WRITE_CREATE && !id_ok(w->id))
		return bad_id(err, w->id);

	/* 1. the request */
	if (w->op != CFG_WRITE_DELETE && (rc = parse_object(w, &obj, &id, err)))
		goto out;
	if (w->op == CFG_WRITE_DELETE)
		id = w->id;

	real = realpath(dir, NULL);
	if (!real) {
		rc = jerror_set(err, errno == ENOENT ? JERR_CONFIG : JERR_IO,
				"could not open config directory \"%s\": %s", dir, strerror(errno));
		goto out;
	}
	if ((rc = cw_lock_dir(real, &lock_fd, err)))
		goto out;

	/* 2. where the object is */
	cw_list_files(real, &pl);
	have = cw_find_object(real, &pl, w->cls, id, &f);
	if (w->op == CFG_WRITE_CREATE && have) {
		rc = jerror_set(err, JERR_USAGE, "%s \"%s\" already exists", cname, id);
		jerror_detail(err, "it is defined in %s", f.file);
		jerror_hint(err, "ids are unique per class: choose another id, or update the existing %s", cname);
		goto out;
	}
	if (w->op != CFG_WRITE_CREATE && !have) {
		rc = jerror_set(err, JERR_USAGE, "%s \"%s\" does not exist", cname, id);
		jerror_detail(err, "no file under \"%s\" defines it", dir);
		if (w->op == CFG_WRITE_UPDATE)
			jerror_hint(err, "create it first");
		goto out;
	}

	/* 3. secrets */
	if (obj && (rc = cw_take_secrets(obj, have ? f.obj : NULL, w->cls, id, opts, real, &pl, &add, err)))
		goto out;
	if (add.n && !(opts && opts->secrets_path)) {
		rc = jerror_set(err, JERR_USAGE, "option value of %s \"%s\" is a secret, and no secrets file is configured",
				cname, id);
		jerror_detail(err, "secret \"%s\" would be written to the config directory", add.items[0].name);
		jerror_hint(err, "write \"${NAME}\" and set the environment variable NAME, or configure a secrets file");
		goto out;
	}

	/* 4. the new text of the file */
	if (obj)
		stored = cw_json_text(obj, false);
	if (!have) {
		rel = new_file_name(real, w->cls, id);
		if (!rel) {
			rc = jerror_set(err, JERR_IO, "no free file name for %s \"%s\" under %s/", cname, id,
					cfg_class_dir(w->cls));
			jerror_hint(err, "remove the stray %s/%s*.json files", cfg_class_dir(w->cls), id);
			goto out;
		}
		text = cw_json_text(obj, true);
	} else {
		struct stat st;
		rel = xstrdup(f.file);
		strbuf_addf(&path, "%s/%s", real, rel);
		if (stat(path.buf, &st) == 0)
			mode = st.st_mode & 07777;
		strbuf_reset(&path);
		if (f.index < 0) {
			if (obj)
				text = cw_new_file_text(&f, obj, obj);
		} else {
			root = cw_j5_to_json(f.root);
			if (obj)
				json_array_set(root, (size_t)f.index, obj);
			else
				json_array_remove(root, (size_t)f.index);
			if (has_objects(root))
				text = cw_new_file_text(&f, obj, root);
		}
	}

	/* 5. staging */
	if ((rc = stage_create(real, &stage, err)) || (rc = stage_copy(real, &pl, stage, err)))
		goto out;
	strbuf_addf(&path, "%s/%s", stage, rel);
	unlink(path.buf);
	if (text && ((rc = cw_make_parents(stage, rel, err)) || (rc = cw_write_plain(path.buf, text, strlen(text), 0644, err))))
		goto out;
	strbuf_reset(&path);
	if (opts)
		stage_opts = *opts;
	/* paths resolve from the real directory's project root, not the staging copy's */
	if (!stage_opts.root) {
		if ((rc = config_project_root(dir, &root_dir, err)))
			goto out;
		stage_opts.root = root_dir;
	}
	senv.opts = opts;
	senv.add = &add;
	stage_opts.getenv_fn = stage_getenv;
	stage_opts.getenv_ctx = &senv;
	rc = config_load(stage, &stage_opts, &cfg, &lerr);
	strbuf_reset(&path);
	if (cfg)
		cfg->dir = arena_strdup(&cfg->arena, dir);
	if (rc == JERR_CONFIG && cfg) {
		const struct cfg_diag *d = NULL;
		for (size_t i = 0; i < cfg->n_diags && !d; i++)
			if (cfg->diags[i].severity == DIAG_ERROR)
				d = &cfg->diags[i];
		jerror_set(err, JERR_CONFIG, "%s \"%s\" was not %s: the config would be invalid (%zu error%s)",
			   cname, id, w->op == CFG_WRITE_CREATE ? "created" : w->op == CFG_WRITE_UPDATE ? "updated" : "deleted",
			   cfg->n_errors, cfg->n_errors == 1 ? "" : "s");
		if (d)
			jerror_detail(err, "%s%s%d:%d: %s%s%s", d->pos.file ? d->pos.file : "", d->pos.file ? ":" : "",
				      d->pos.line, d->pos.col, d->field ? d->field : "", d->field ? ": " : "", d->message);
		jerror_hint(err, "nothing was changed; fix the errors listed in the diagnostics");
		res->cfg = cfg;
		cfg = NULL;
		goto out;
	}
	if (rc) {
		jerror_set(err, rc, "%s", lerr.msg.buf);
		if (lerr.detail.len)
			jerror_detail(err, "%s", lerr.detail.buf);
		if (lerr.hint.len)
			jerror_hint(err, "%s", lerr.hint.buf);
		goto out;
	}

	if (w->dry_run) {
		res->cfg = cfg;
		cfg = NULL;
		res->file = rel;
		rel = NULL;
		res->stored_json = stored;
		stored = NULL;
		rc = JERR_OK;
		goto out;
	}

	/* the caller's last word on the change as it would be (destructive changes, keys) */
	if (w->approve && (rc = w->approve(w->approve_ctx, cfg, err)))
		goto out;

	/* 6. commit: secrets first, so the config never refers to a secret not on disk */
	if (add.n) {
		if ((rc = cw_lock_secrets(opts->secrets_path, lock_fd, &secrets_fd, err)) ||
		    (rc = cw_secrets_read(opts->secrets_path, &secrets, err)))
			goto out;
		for (size_t i = 0; i < add.n; i++)
			json_object_set_new(secrets, add.items[i].name, json_string_nocheck(add.items[i].value));
		rc = cw_secrets_write(opts->secrets_path, secrets, err);
		cw_unlock_dir(secrets_fd);
		secrets_fd = -1;
		if (rc)
			goto out;
	}
	strbuf_addf(&path, "%s/%s", real, rel);
	if (text) {
		char *pdir = cw_dir_of(path.buf);
		struct stat st;
		bool made = stat(pdir, &st) != 0;
		if ((rc = cw_make_parents(real, rel, err)) || (made && (rc = cw_fsync_dir(real, err)))) {
			free(pdir);
			goto out;
		}
		free(pdir);
		rc = cw_write_atomic(path.buf, text, strlen(text), mode, err);
	} else if (unlink(path.buf) != 0) {
		rc = jerror_set(err, JERR_IO, "could not remove \"%s\": %s", path.buf, strerror(errno));
	} else {
		char *pdir = cw_dir_of(path.buf);
		rc = cw_fsync_dir(pdir, err);
		free(pdir);
	}
	if (rc)
		goto out;
	if (have)
		cw_drop_unused_secrets(opts ? opts->secrets_path : NULL, lock_fd, f.obj, cfg);
	res->cfg = cfg;
	cfg = NULL;
	res->file = rel;
	rel = NULL;
	res->stored_json = stored;
	stored = NULL;
	rc = JERR_OK;
out:
	if (stage)
		cw_remove_tree(stage);
	cw_unlock_dir(secrets_fd);
	cw_unlock_dir(lock_fd);
	config_free(cfg);
	json_decref(obj);
	json_decref(root);
	json_decref(secrets);
	cw_secret_list_release(&add);
	cw_path_list_release(&pl);
	cw_found_release(&f);
	strbuf_release(&path);
	jerror_release(&lerr);
	free(root_dir);
	free(real);
	free(stage);
	free(rel);
	free(text);
	free(stored);
	return rc;
}

void cfg_write_result_release(struct cfg_write_result *res)
{
	if (!res)
		return;
	config_free(res->cfg);
	free(res->file);
	free(res->stored_json);
	memset(res, 0, sizeof(*res));
}

enum jerr config_read_object(const char *dir, enum cfg_class cls, const char *id, char **json,
			     char **file, struct jerror *err)
{
	struct path_list pl;
	struct found f;
	json_t *obj;

	*json = NULL;
	*file = NULL;
	if ((unsigned)cls >= CLASS__COUNT)
		return jerror_set(err, JERR_USAGE, "invalid config class");
	if (!id_ok(id))
		return bad_id(err, id);
	cw_list_files(dir, &pl);
	if (!cw_find_object(dir, &pl, cls, id, &f)) {
		cw_path_list_release(&pl);
		cw_found_release(&f);
		jerror_set(err, JERR_USAGE, "%s \"%s\" does not exist", cfg_class_name(cls), id);
		jerror_detail(err, "no file under \"%s\" defines it", dir);
		return JERR_USAGE;
	}
	obj = cw_j5_to_json(f.obj);
	cw_mask_secrets(obj, cls);
	*json = cw_json_text(obj, false);
	*file = f.file;
	f.file = NULL;
	json_decref(obj);
	cw_path_list_release(&pl);
	cw_found_release(&f);
	return JERR_OK;
}

/* ---- whole files (the UI's repair editor) ---- */

enum jerr config_files_list(const char *dir, char ***files, size_t *n, struct jerror *err)
{
	struct path_list pl;
	struct stat st;
	*files = NULL;
	*n = 0;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return jerror_set(err, JERR_CONFIG, "could not open config directory \"%s\"", dir);
	cw_list_files(dir, &pl);
	*files = pl.items;
	*n = pl.n;
	return JERR_OK;
}

void config_files_free(char **files, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
}

enum jerr config_file_read(const char *dir, const char *rel, char **text, struct jerror *err)
{
	struct path_list pl;
	bool known = false;
	size_t len;
	*text = NULL;
	cw_list_files(dir, &pl);
	for (size_t i = 0; i < pl.n && !known; i++)
		known = !strcmp(pl.items[i], rel);
	cw_path_list_release(&pl);
	if (!known) {
		jerror_set(err, JERR_USAGE, "config file \"%s\" does not exist", rel);
		jerror_detail(err, "only the files the loader reads (*.json, *.js under \"%s\") can be read here", dir);
		return JERR_USAGE;
	}
	struct strbuf path = STRBUF_INIT;
	strbuf_addf(&path, "%s/%s", dir, rel);
	enum jerr rc = cw_read_whole(path.buf, text, &len, err);
	strbuf_release(&path);
	return rc;
}

enum jerr config_file_write(const char *dir, const char *rel, const char *text, const struct config_opts *opts,
			    bool allow_invalid, struct cfg_write_result *res, struct jerror *err)
{
	struct path_list pl = { NULL, 0, 0 };
	struct strbuf path = STRBUF_INIT;
	struct jerror lerr = JERROR_INIT;
	struct config_opts stage_opts = { 0 };
	struct config *cfg = NULL;
	char *real = NULL, *stage = NULL, *root_dir = NULL;
	int lock_fd = -1;
	bool known = false;
	mode_t mode = 0644;
	struct stat st;
	enum jerr rc;

	memset(res, 0, sizeof(*res));
	real = realpath(dir, NULL);
	if (!real)
		return jerror_set(err, JERR_CONFIG, "could not open config directory \"%s\": %s", dir, strerror(errno));
	if ((rc = cw_lock_dir(real, &lock_fd, err)))
		goto out;
	cw_list_files(real, &pl);
	for (size_t i = 0; i < pl.n && !known; i++)
		known = !strcmp(pl.items[i], rel);
	if (!known) {
		rc = jerror_set(err, JERR_USAGE, "config file \"%s\" does not exist", rel);
		jerror_detail(err, "only the files the loader reads can be changed here; new objects are made in their forms");
		goto out;
	}
	/* staged: the whole directory with the new text, loaded as `joey validate` would */
	if ((rc = stage_create(real, &stage, err)) || (rc = stage_copy(real, &pl, stage, err)))
		goto out;
	strbuf_addf(&path, "%s/%s", stage, rel);
	if ((rc = cw_write_plain(path.buf, text, strlen(text), 0644, err)))
		goto out;
	strbuf_reset(&path);
	if (opts)
		stage_opts = *opts;
	if (!stage_opts.root) {
		if ((rc = config_project_root(dir, &root_dir, err)))
			goto out;
		stage_opts.root = root_dir;
	}
	rc = config_load(stage, &stage_opts, &cfg, &lerr);
	if (cfg)
		cfg->dir = arena_strdup(&cfg->arena, dir);
	if (rc && rc != JERR_CONFIG) {
		jerror_set(err, rc, "%s", lerr.msg.buf);
		if (lerr.detail.len)
			jerror_detail(err, "%s", lerr.detail.buf);
		goto out;
	}
	if (rc == JERR_CONFIG && !allow_invalid) {
		jerror_set(err, JERR_CONFIG, "config file \"%s\" was not saved: the config would be invalid (%zu error%s)", rel,
			   cfg ? cfg->n_errors : 0, cfg && cfg->n_errors == 1 ? "" : "s");
		jerror_hint(err, "nothing was changed; fix the errors listed in the diagnostics");
		res->cfg = cfg;
		cfg = NULL;
		goto out;
	}
	strbuf_addf(&path, "%s/%s", real, rel);
	if (stat(path.buf, &st) == 0)
		mode = st.st_mode & 07777;
	if ((rc = cw_write_atomic(path.buf, text, strlen(text), mode, err)))
		goto out;
	res->cfg = cfg;
	cfg = NULL;
	res->file = xstrdup(rel);
	rc = JERR_OK;
out:
	if (stage)
		cw_remove_tree(stage);
	cw_unlock_dir(lock_fd);
	config_free(cfg);
	cw_path_list_release(&pl);
	strbuf_release(&path);
	jerror_release(&lerr);
	free(root_dir);
	free(real);
	free(stage);
	return rc;
}
