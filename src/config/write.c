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
#include "config/guard.h"
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

bool cw_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > WRITE_MAX_ID || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)id[i]) || id[i] == '_' || id[i] == '.' || id[i] == '-'))
			return false;
	return true;
}

enum jerr cw_bad_id(struct jerror *err, const char *id)
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
enum jerr cw_parse_object(const struct cfg_write *w, json_t **out, const char **id_out,
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
			return cw_bad_id(err, w->id);
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
	if (!cw_id_ok(id)) {
		enum jerr rc = cw_bad_id(err, id);
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
bool cw_has_objects(const json_t *arr)
{
	size_t i;
	json_t *v;
	json_array_foreach((json_t *)arr, i, v)
		if (json_is_object(v) && json_object_size(v))
			return true;
	return false;
}

const char *cw_stage_getenv(const char *name, void *ctx)
{
	const struct cw_stage_env *se = ctx;
	const char *v = config_getenv(se->opts, name);
	for (size_t i = 0; !v && i < se->add->n; i++)
		if (!strcmp(se->add->items[i].name, name))
			v = se->add->items[i].value;
	return v;
}

/*
 * Pick <class dir>/<id>.json, or <id>-N.json if that name is taken by another file
 * (owned); NULL if even those are all taken.
 */
char *cw_new_file_name(const char *dir, enum cfg_class cls, const char *id)
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
enum jerr cw_stage_copy(const char *dir, const struct path_list *pl, const char *stage,
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
enum jerr cw_stage_create(const char *real, char **out, struct jerror *err)
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
/*
 * Step 5's staging copy: a new directory beside real (*stage, owned by the caller, set
 * also on failure once created) with every file of pl, then rel replaced by text
 * (NULL: rel removed). Nothing in real changes.
 */
static enum jerr stage_change(const char *real, const struct path_list *pl, const char *rel, const char *text,
			      char **stage, struct jerror *err)
{
	struct strbuf path = STRBUF_INIT;
	enum jerr rc;

	if ((rc = cw_stage_create(real, stage, err)) || (rc = cw_stage_copy(real, pl, *stage, err)))
		return rc;
	strbuf_addf(&path, "%s/%s", *stage, rel);
	unlink(path.buf);
	if (text && !(rc = cw_make_parents(*stage, rel, err)))
		rc = cw_write_plain(path.buf, text, strlen(text), 0644, err);
	strbuf_release(&path);
	return rc;
}

/*
 * The options of the staging load: the caller's (opts, borrowed; NULL: defaults), with
 * relative paths resolving from the real directory's project root, not the staging
 * copy's (*root_dir: owned by the caller, NULL when opts name a root).
 */
enum jerr cw_stage_opts_for(const char *dir, const struct config_opts *opts, struct config_opts *out,
				char **root_dir, struct jerror *err)
{
	enum jerr rc;

	memset(out, 0, sizeof(*out));
	if (opts)
		*out = *opts;
	if (!out->root) {
		if ((rc = config_project_root(dir, root_dir, err)))
			return rc;
		out->root = *root_dir;
	}
	return JERR_OK;
}

enum jerr cw_stage_load(const char *dir, const char *stage, const struct config_opts *opts,
			const struct secret_list *add, char **root_dir, struct config **cfg, struct jerror *err)
{
	struct config_opts so;
	struct cw_stage_env senv = { opts, add };
	struct jerror lerr = JERROR_INIT;
	enum jerr rc;

	if ((rc = cw_stage_opts_for(dir, opts, &so, root_dir, err)))
		return rc;
	so.getenv_fn = cw_stage_getenv;
	so.getenv_ctx = &senv;
	rc = config_load(stage, &so, cfg, &lerr);
	if (*cfg)
		(*cfg)->dir = arena_strdup(&(*cfg)->arena, dir);
	if (rc && !(rc == JERR_CONFIG && *cfg))
		cw_copy_error(rc, &lerr, err);
	jerror_release(&lerr);
	return rc;
}

/* ---- config_write, step by step ---- */

/* One config_write: what the steps hand each other; everything owned is freed by job_release. */
struct write_job {
	const char *dir;                /* as the caller named it (borrowed) */
	const struct cfg_write *w;      /* borrowed */
	const struct config_opts *opts; /* borrowed; may be NULL */
	const char *cname;              /* the class's name */
	const char *id;                 /* borrowed from obj, or w->id on DELETE */
	json_t *obj;                    /* the object as it will be stored; NULL on DELETE */
	json_t *root;                   /* the file's new top-level array, when it has one */
	char *real;                     /* realpath of dir */
	int lock_fd;                    /* the directory's flock */
	struct path_list pl;            /* the files the loader reads */
	struct found f;                 /* where the object is now */
	bool have;                      /* it exists */
	struct secret_list add;         /* secrets to put in the secrets file */
	char *stored;                   /* the object's text as stored */
	char *rel;                      /* the file that changes, relative to real */
	char *text;                     /* its new text; NULL: the file goes */
	mode_t mode;                    /* its mode */
	char *stage, *root_dir;         /* the staging copy, the staging load's root */
	struct config *cfg;             /* the config as it would be */
};

/* Step 1: the request (class, op, ids) and the object; job->id set. */
static enum jerr write_check_request(struct write_job *job, struct jerror *err)
{
	const struct cfg_write *w = job->w;

	if (w->op != CFG_WRITE_DELETE)
		return cw_parse_object(w, &job->obj, &job->id, err);
	job->id = w->id;
	return JERR_OK;
}

/* Step 2: lock the directory and find the object; creating one that exists, or changing one that does not, fails. */
static enum jerr write_locate(struct write_job *job, struct jerror *err)
{
	const struct cfg_write *w = job->w;
	enum jerr rc;

	if ((rc = cw_open_dir(job->dir, &job->real, &job->lock_fd, &job->pl, err)))
		return rc;
	job->have = cw_find_object(job->real, &job->pl, w->cls, job->id, &job->f);
	if (w->op == CFG_WRITE_CREATE && job->have) {
		rc = jerror_set(err, JERR_USAGE, "%s \"%s\" already exists", job->cname, job->id);
		jerror_detail(err, "it is defined in %s", job->f.file);
		jerror_hint(err, "ids are unique per class: choose another id, or update the existing %s", job->cname);
		return rc;
	}
	if (w->op != CFG_WRITE_CREATE && !job->have) {
		rc = jerror_set(err, JERR_USAGE, "%s \"%s\" does not exist", job->cname, job->id);
		jerror_detail(err, "no file under \"%s\" defines it", job->dir);
		if (w->op == CFG_WRITE_UPDATE)
			jerror_hint(err, "create it first");
		return rc;
	}
	return JERR_OK;
}

/* Step 3: literal secrets of the object move to job->add; they need a secrets file. */
static enum jerr write_take_secrets(struct write_job *job, struct jerror *err)
{
	enum jerr rc;

	if (job->obj && (rc = cw_take_secrets(job->obj, job->have ? job->f.obj : NULL, job->w->cls, job->id,
					      job->opts, job->real, &job->pl, &job->add, err)))
		return rc;
	if (job->add.n && !(job->opts && job->opts->secrets_path)) {
		rc = jerror_set(err, JERR_USAGE, "option value of %s \"%s\" is a secret, and no secrets file is configured",
				job->cname, job->id);
		jerror_detail(err, "secret \"%s\" would be written to the config directory", job->add.items[0].name);
		jerror_hint(err, "write \"${NAME}\" and set the environment variable NAME, or configure a secrets file");
		return rc;
	}
	return JERR_OK;
}

/* Step 4: which file changes (job->rel, job->mode) and its new text (job->text; NULL: it goes). */
static enum jerr write_new_text(struct write_job *job, struct jerror *err)
{
	const struct found *f = &job->f;
	enum cfg_class cls = job->w->cls;

	if (job->obj)
		job->stored = cw_json_text(job->obj, false);
	if (!job->have) {
		job->rel = cw_new_file_name(job->real, cls, job->id);
		if (!job->rel) {
			enum jerr rc = jerror_set(err, JERR_IO, "no free file name for %s \"%s\" under %s/", job->cname,
						  job->id, cfg_class_dir(cls));
			jerror_hint(err, "remove the stray %s/%s*.json files", cfg_class_dir(cls), job->id);
			return rc;
		}
		job->text = cw_json_text(job->obj, true);
		return JERR_OK;
	}
	struct strbuf path = STRBUF_INIT;
	struct stat st;
	job->rel = xstrdup(f->file);
	strbuf_addf(&path, "%s/%s", job->real, job->rel);
	if (stat(path.buf, &st) == 0)
		job->mode = st.st_mode & 07777;
	strbuf_release(&path);
	if (f->index < 0) {
		if (job->obj)
			job->text = cw_new_file_text(f, job->obj, job->obj);
	} else {
		job->root = cw_j5_to_json(f->root);
		if (job->obj)
			json_array_set(job->root, (size_t)f->index, job->obj);
		else
			json_array_remove(job->root, (size_t)f->index);
		if (cw_has_objects(job->root))
			job->text = cw_new_file_text(f, job->obj, job->root);
	}
	return JERR_OK;
}

/* The first error diagnostic of cfg, for the message's detail; NULL if none. */
const struct cfg_diag *cw_first_error(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_diags; i++)
		if (cfg->diags[i].severity == DIAG_ERROR)
			return &cfg->diags[i];
	return NULL;
}

/*
 * Step 5: load the directory as it would be after the change (a staging copy), with
 * the new secrets answering after the environment. JERR_CONFIG: res->cfg takes the
 * diagnostics.
 */
static enum jerr write_validate(struct write_job *job, struct cfg_write_result *res, struct jerror *err)
{
	const struct cfg_write *w = job->w;
	enum jerr rc;

	if ((rc = stage_change(job->real, &job->pl, job->rel, job->text, &job->stage, err)))
		return rc;
	rc = cw_stage_load(job->dir, job->stage, job->opts, &job->add, &job->root_dir, &job->cfg, err);
	if (rc == JERR_CONFIG && job->cfg) {
		const struct config *cfg = job->cfg;
		jerror_set(err, JERR_CONFIG, "%s \"%s\" was not %s: the config would be invalid (%zu error%s)",
			   job->cname, job->id,
			   w->op == CFG_WRITE_CREATE ? "created" : w->op == CFG_WRITE_UPDATE ? "updated" : "deleted",
			   cfg->n_errors, cfg->n_errors == 1 ? "" : "s");
		cw_invalid_detail(cfg, err);
		res->cfg = job->cfg;
		job->cfg = NULL;
	}
	return rc;
}

/* ---- the staging copy's verdict, shared with write_batch.c (write_internal.h) ---- */

void cw_invalid_detail(const struct config *cfg, struct jerror *err)
{
	const struct cfg_diag *d = cw_first_error(cfg);
	if (d)
		jerror_detail(err, "%s%s%d:%d: %s%s%s", d->pos.file ? d->pos.file : "", d->pos.file ? ":" : "",
			      d->pos.line, d->pos.col, d->field ? d->field : "", d->field ? ": " : "", d->message);
	jerror_hint(err, "nothing was changed; fix the errors listed in the diagnostics");
}

void cw_copy_error(enum jerr rc, const struct jerror *from, struct jerror *err)
{
	jerror_set(err, rc, "%s", from->msg.buf);
	if (from->detail.len)
		jerror_detail(err, "%s", from->detail.buf);
	if (from->hint.len)
		jerror_hint(err, "%s", from->hint.buf);
}

/* Step 6b: the config file: written atomically (parents created), or removed. */
static enum jerr write_commit_file(struct write_job *job, struct jerror *err)
{
	struct strbuf path = STRBUF_INIT;
	char *pdir;
	enum jerr rc = JERR_OK;

	strbuf_addf(&path, "%s/%s", job->real, job->rel);
	pdir = cw_dir_of(path.buf);
	if (job->text) {
		struct stat st;
		bool made = stat(pdir, &st) != 0;
		if (!(rc = cw_make_parents(job->real, job->rel, err)) && !(made && (rc = cw_fsync_dir(job->real, err))))
			rc = cw_write_atomic(path.buf, job->text, strlen(job->text), job->mode, err);
	} else if (unlink(path.buf) != 0) {
		rc = jerror_set(err, JERR_IO, "could not remove \"%s\": %s", path.buf, strerror(errno));
	} else {
		rc = cw_fsync_dir(pdir, err);
	}
	free(pdir);
	strbuf_release(&path);
	return rc;
}

/* Hand the config, the file and the stored object to res. */
static void write_result(struct write_job *job, struct cfg_write_result *res)
{
	res->cfg = job->cfg;
	job->cfg = NULL;
	res->file = job->rel;
	job->rel = NULL;
	res->stored_json = job->stored;
	job->stored = NULL;
}

static void job_release(struct write_job *job)
{
	if (job->stage)
		cw_remove_tree(job->stage);
	cw_unlock_dir(job->lock_fd);
	config_free(job->cfg);
	json_decref(job->obj);
	json_decref(job->root);
	cw_secret_list_release(&job->add);
	cw_path_list_release(&job->pl);
	cw_found_release(&job->f);
	free(job->root_dir);
	free(job->real);
	free(job->stage);
	free(job->rel);
	free(job->text);
	free(job->stored);
}

enum jerr config_write(const char *dir, const struct cfg_write *w, const struct config_opts *opts,
		       struct cfg_write_result *res, struct jerror *err)
{
	struct write_job job = { .dir = dir, .w = w, .opts = opts, .mode = 0644, .lock_fd = -1 };
	enum jerr rc;

	memset(res, 0, sizeof(*res));
	arena_init(&job.f.arena);
	if ((unsigned)w->cls >= CLASS__COUNT || (unsigned)w->op > CFG_WRITE_DELETE)
		return jerror_set(err, JERR_USAGE, "invalid config write request");
	job.cname = cfg_class_name(w->cls);
	if (w->op != CFG_WRITE_CREATE && !cw_id_ok(w->id))
		return cw_bad_id(err, w->id);
	if (w->id && w->op == CFG_WRITE_CREATE && !cw_id_ok(w->id))
		return cw_bad_id(err, w->id);

	if ((rc = write_check_request(&job, err)) || (rc = write_locate(&job, err)) ||
	    (rc = write_take_secrets(&job, err)) || (rc = write_new_text(&job, err)) ||
	    (rc = write_validate(&job, res, err)))
		goto out;
	if (w->dry_run) {
		write_result(&job, res);
		goto out;
	}
	/* the caller's last word on the change as it would be (destructive changes, keys) */
	if (w->approve && (rc = w->approve(w->approve_ctx, job.cfg, err)))
		goto out;
	/* 6. commit: secrets first, so the config never refers to a secret not on disk */
	if (job.add.n && (rc = cw_secrets_add(opts->secrets_path, job.lock_fd, job.add.items, job.add.n, err)))
		goto out;
	if ((rc = write_commit_file(&job, err)))
		goto out;
	if (job.have)
		cw_drop_unused_secrets(opts ? opts->secrets_path : NULL, job.lock_fd, job.f.obj, job.cfg);
	write_result(&job, res);
out:
	job_release(&job);
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
	if (!cw_id_ok(id))
		return cw_bad_id(err, id);
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

/*
 * May text, which does not parse, hold a key? The loader reads nothing from it, but its
 * text is what the file editor shows: an App file with a literal password and a stray
 * comma is still the password. True when it names a secret option in any spelling
 * (catalog_option_sensitive) or an Alert (whose url is its credential).
 */
static bool broken_text_keys(const char *text)
{
	if (catalog_option_sensitive(text))
		return true;
	for (const char *p = text; *p; p++)
		if (!strncasecmp(p, "alert", 5))
			return true;
	return false;
}

/*
 * The objects of a config file's text as the loader finds them (load.c: one object or
 * a top-level array of them; cw_class_matches for "class"): its Apps and Alerts, each
 * as {"cls": n, "obj": object} appended to *found when found is not NULL. Returns
 * whether the text holds keys: an App, an Alert, or any object with a secret option;
 * with broken, also a text that does not parse and may (broken_text_keys: what it shows
 * must not go to an editor; a new text that does not parse adds no key).
 */
static bool file_key_objects(const char *text, json_t *found, bool broken)
{
	static const enum cfg_class key_classes[] = { CLASS_APP, CLASS_ALERT };
	struct arena a;
	struct j5_node *root;
	struct j5_error je;
	bool keys = false;

	arena_init(&a);
	if (text && json5_parse(text, strlen(text), &a, &root, &je)) {
		size_t n = root->type == J5_ARRAY ? root->n : 1;
		for (size_t i = 0; i < n; i++) {
			const struct j5_node *o = root->type == J5_ARRAY ? root->items[i] : root;
			const struct j5_member *cm, *om;
			if (o->type != J5_OBJECT)
				continue;
			cm = j5_member(o, "class");
			om = j5_member(o, "options");
			for (size_t c = 0; cm && cm->value->type == J5_STRING && c < ARRAY_SIZE(key_classes); c++)
				if (cw_class_matches(cm->value->str, cm->value->len, key_classes[c])) {
					keys = true;
					if (found)
						json_array_append_new(found, json_pack("{s:i,s:o}", "cls", (int)key_classes[c],
										       "obj", cw_j5_to_json(o)));
				}
			for (size_t k = 0; om && om->value->type == J5_OBJECT && k < om->value->n; k++)
				keys = keys || catalog_option_sensitive(om->value->members[k].key);
		}
	} else if (text && broken) {
		keys = broken_text_keys(text);
	}
	arena_release(&a);
	return keys;
}

bool config_file_holds_keys(const char *rel, const char *text)
{
	if (!strncmp(rel, "apps/", 5) || !strncmp(rel, "alerts/", 7))
		return true;
	return file_key_objects(text, NULL, true);
}

/* The object of class cls and id in found (file_key_objects), or NULL. */
static json_t *key_object(json_t *found, int cls, const char *id)
{
	size_t i;
	json_t *e;
	json_array_foreach(found, i, e) {
		json_t *o = json_object_get(e, "obj");
		const char *oid = json_string_value(json_object_get(o, "id"));
		if (json_integer_value(json_object_get(e, "cls")) == cls && id && oid && !strcmp(oid, id))
			return o;
	}
	return NULL;
}

/* config_file_write's guard (config/write.h): old is the file's text on disk. */
static enum jerr file_guard(const char *dir, const char *rel, const char *old, const char *text,
			    const struct config_opts *opts, const struct cfg_file_guard *guard, struct jerror *err)
{
	json_t *before = json_array(), *after = json_array(), *e;
	bool keys = file_key_objects(old, before, true);
	enum jerr rc = JERR_OK;
	size_t i;

	keys = file_key_objects(text, after, false) || keys; /* both parsed: after is needed below */
	keys = keys || config_file_holds_keys(rel, NULL);
	if (keys && !guard->keys) {
		rc = jerror_set(err, JERR_AUTH, "config file \"%s\" holds keys: only an admin may change it", rel);
		jerror_detail(err, "it defines an App or an Alert, or an object with a secret option, before or after "
				   "the change");
		jerror_hint(err, "ask an admin to make the change");
		goto out;
	}
	json_array_foreach(after, i, e) {
		int cls = (int)json_integer_value(json_object_get(e, "cls"));
		json_t *now = json_object_get(e, "obj");
		json_t *was = key_object(before, cls, json_string_value(json_object_get(now, "id")));
		json_t *masked;
		if (was && json_equal(was, now))
			continue; /* left as it was: the operator's */
		masked = was ? json_deep_copy(was) : NULL;
		if (masked)
			cw_mask_secrets(masked, (enum cfg_class)cls);
		rc = cls == CLASS_ALERT ? config_guard_alert(dir, opts, guard->state_path, masked, now, err)
					: config_guard_app(dir, opts, guard->state_path, masked, now, err);
		json_decref(masked);
		if (rc)
			break;
	}
out:
	json_decref(before);
	json_decref(after);
	return rc;
}

enum jerr config_file_write(const char *dir, const char *rel, const char *text, const struct config_opts *opts,
			    const struct cfg_file_guard *guard, bool allow_invalid, struct cfg_write_result *res,
			    struct jerror *err)
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
	if ((rc = cw_open_dir(dir, &real, &lock_fd, &pl, err)))
		goto out;
	for (size_t i = 0; i < pl.n && !known; i++)
		known = !strcmp(pl.items[i], rel);
	if (!known) {
		rc = jerror_set(err, JERR_USAGE, "config file \"%s\" does not exist", rel);
		jerror_detail(err, "only the files the loader reads can be changed here; new objects are made in their forms");
		goto out;
	}
	strbuf_addf(&path, "%s/%s", real, rel);
	if (guard) {
		char *old = NULL;
		size_t len;
		if (!(rc = cw_read_whole(path.buf, &old, &len, err)))
			rc = file_guard(dir, rel, old, text, opts, guard, err);
		free(old);
		if (rc)
			goto out;
	}
	/* staged: the whole directory with the new text, loaded as `joey validate` would */
	if ((rc = stage_change(real, &pl, rel, text, &stage, err)) ||
	    (rc = cw_stage_opts_for(dir, opts, &stage_opts, &root_dir, err)))
		goto out;
	rc = config_load(stage, &stage_opts, &cfg, &lerr);
	if (cfg)
		cfg->dir = arena_strdup(&cfg->arena, dir);
	if (rc && rc != JERR_CONFIG) {
		cw_copy_error(rc, &lerr, err); /* with its hint, as config_write does */
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
