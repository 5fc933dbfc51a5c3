/*
 * write_batch.c: several config objects in one write, all or nothing (config_write_batch,
 * contract in config/write.h). Called by the HTTP API (POST /api/v1/config, src/server/).
 * Owns nothing between calls; every buffer of a batch is freed by batch_release.
 *
 * Design: under the directory's flock (as config_write):
 *  1. a staging copy of every file the loader reads, beside the directory;
 *  2. each item in order, against the staging copy: the request's checks (as
 *     config_write), duplicates in the batch, found or not as the mode wants, secrets
 *     set aside, the new text of its file spliced and written to the staging copy (so a
 *     later item in the same file splices into the text the earlier one left);
 *  3. the staging copy loaded once, as `joey validate` would (the set-aside secrets
 *     answering after the environment); any error: nothing on disk changes;
 *  4. the approve callback for each item (the server's destructive-change check);
 *  5. commit: the old text of every file that changes is kept in memory; the secrets
 *     file (old content kept), then each changed file atomically; when one fails, the
 *     ones already replaced are written back (new ones removed) and the secrets file
 *     restored, so the directory is as it was.
 */
#include "config/write.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "config/write_internal.h"

static int fail_at; /* config_write_batch_fail_at */

void config_write_batch_fail_at(int n)
{
	fail_at = n;
}

/* One item as applied to the staging copy. */
struct batch_item {
	json_t *obj;     /* as it will be stored (owned) */
	const char *id;  /* borrowed from obj */
	struct found f;  /* where it was (the old object, for secrets), when it existed */
	bool have;
	char *rel;       /* its file, relative to the directory (owned) */
	char *stored;    /* its text as stored (owned) */
};

/* A file the batch changes: its new text, and what to restore. */
struct touched {
	char *rel;     /* owned */
	char *text;    /* new text (owned) */
	char *old;     /* old text (owned); NULL: the file is new */
	size_t old_len;
	mode_t mode;
	bool new_dir;  /* its directory did not exist either (removed again by the rollback) */
	bool written;  /* replaced in the real directory (for the rollback) */
};

struct batch {
	const char *dir;
	const struct cfg_batch *b;
	const struct config_opts *opts;
	char *real, *stage, *root_dir;
	int lock_fd;
	struct path_list pl; /* the real directory's files */
	struct batch_item *items;
	struct touched *files;
	size_t n_files;
	struct secret_list add;
	bool secrets_kept;   /* the secrets file changes: what follows is what to restore */
	char *old_secrets;   /* its old bytes; NULL: it did not exist */
	size_t old_secrets_len;
	bool secrets_new_dir; /* its directory did not exist either */
	struct config *cfg;
};

static void batch_release(struct batch *bt)
{
	if (bt->stage)
		cw_remove_tree(bt->stage);
	cw_unlock_dir(bt->lock_fd);
	for (size_t i = 0; bt->items && i < bt->b->n; i++) {
		json_decref(bt->items[i].obj);
		cw_found_release(&bt->items[i].f);
		free(bt->items[i].rel);
		free(bt->items[i].stored);
	}
	free(bt->items);
	for (size_t i = 0; i < bt->n_files; i++) {
		free(bt->files[i].rel);
		free(bt->files[i].text);
		free(bt->files[i].old);
	}
	free(bt->files);
	cw_secret_list_release(&bt->add);
	cw_path_list_release(&bt->pl);
	free(bt->old_secrets);
	config_free(bt->cfg);
	free(bt->root_dir);
	free(bt->real);
	free(bt->stage);
}

/* Mark item i as the one at fault (the API names it by its index); rc passes through. */
static enum jerr item_error(struct cfg_batch_result *res, size_t i, enum jerr rc)
{
	res->failed = (long)i;
	return rc;
}

/* Record rel's new text (text: owned, taken) among the touched files. */
static void touch(struct batch *bt, const char *rel, char *text)
{
	for (size_t i = 0; i < bt->n_files; i++)
		if (!strcmp(bt->files[i].rel, rel)) {
			free(bt->files[i].text);
			bt->files[i].text = text;
			return;
		}
	bt->files = xrealloc(bt->files, (bt->n_files + 1) * sizeof(*bt->files));
	bt->files[bt->n_files++] = (struct touched){ .rel = xstrdup(rel), .text = text, .mode = 0644 };
}

/* Move the secrets of one item (add, emptied) to the batch's list. */
static void take_added(struct batch *bt, struct secret_list *add)
{
	for (size_t i = 0; i < add->n; i++) {
		if (bt->add.n == bt->add.alloc) {
			bt->add.alloc = bt->add.alloc ? 2 * bt->add.alloc : 4;
			bt->add.items = xrealloc(bt->add.items, bt->add.alloc * sizeof(*bt->add.items));
		}
		bt->add.items[bt->add.n++] = add->items[i];
	}
	add->n = 0;
	cw_secret_list_release(add);
}

/* Step 2 for item i: check it, find it in the staging copy, splice its file there. */
static enum jerr apply_item(struct batch *bt, size_t i, struct cfg_batch_result *res, struct jerror *err)
{
	const struct cfg_batch_item *it = &bt->b->items[i];
	struct batch_item *bi = &bt->items[i];
	struct cfg_write w = { .op = CFG_WRITE_CREATE, .cls = it->cls, .object_json = it->object_json };
	struct path_list spl;
	struct secret_list add = { NULL, 0, 0 };
	const char *cname;
	char *text = NULL;
	enum jerr rc;

	if ((unsigned)it->cls >= CLASS__COUNT)
		return item_error(res, i, jerror_set(err, JERR_USAGE, "invalid config class"));
	cname = cfg_class_name(it->cls);
	if ((rc = cw_parse_object(&w, &bi->obj, &bi->id, err)))
		return item_error(res, i, rc);
	for (size_t k = 0; k < i; k++)
		if (bt->b->items[k].cls == it->cls && !strcmp(bt->items[k].id, bi->id)) {
			jerror_set(err, JERR_USAGE, "%s \"%s\" appears twice (objects %zu and %zu)", cname, bi->id, k, i);
			jerror_hint(err, "send each object once");
			return item_error(res, i, JERR_USAGE);
		}
	cw_list_files(bt->stage, &spl);
	bi->have = cw_find_object(bt->stage, &spl, it->cls, bi->id, &bi->f);
	if (bi->have && bt->b->mode == CFG_BATCH_CREATE) {
		rc = jerror_set(err, JERR_USAGE, "%s \"%s\" already exists", cname, bi->id);
		jerror_detail(err, "it is defined in %s", bi->f.file);
		jerror_hint(err, "ids are unique per class: choose another id, or update the existing %s", cname);
	} else if (!bi->have && bt->b->mode == CFG_BATCH_UPDATE) {
		rc = jerror_set(err, JERR_USAGE, "%s \"%s\" does not exist", cname, bi->id);
		jerror_detail(err, "no file under \"%s\" defines it", bt->dir);
		jerror_hint(err, "create it first");
	} else if (!(rc = cw_take_secrets(bi->obj, bi->have ? bi->f.obj : NULL, it->cls, bi->id, bt->opts, bt->stage,
					  &spl, &add, err)) &&
		   add.n && !(bt->opts && bt->opts->secrets_path)) {
		rc = jerror_set(err, JERR_USAGE,
				"option value of %s \"%s\" is a secret, and no secrets file is configured", cname, bi->id);
		jerror_hint(err, "write \"${NAME}\" and set the environment variable NAME, or configure a secrets file");
	}
	cw_path_list_release(&spl);
	take_added(bt, &add);
	if (rc)
		return item_error(res, i, rc);

	bi->stored = cw_json_text(bi->obj, false);
	if (!bi->have) {
		struct strbuf real = STRBUF_INIT;
		struct stat st;
		bi->rel = cw_new_file_name(bt->stage, it->cls, bi->id);
		if (bi->rel)
			strbuf_addf(&real, "%s/%s", bt->real, bi->rel);
		if (!bi->rel || lstat(real.buf, &st) == 0) {
			strbuf_release(&real);
			rc = jerror_set(err, JERR_IO, "no free file name for %s \"%s\" under %s/", cname, bi->id,
					cfg_class_dir(it->cls));
			jerror_hint(err, "remove the stray %s/%s*.json files", cfg_class_dir(it->cls), bi->id);
			return item_error(res, i, rc);
		}
		strbuf_release(&real);
		text = cw_json_text(bi->obj, true);
	} else if (bi->f.index < 0) {
		bi->rel = xstrdup(bi->f.file);
		text = cw_new_file_text(&bi->f, bi->obj, bi->obj);
	} else {
		json_t *root = cw_j5_to_json(bi->f.root);
		bi->rel = xstrdup(bi->f.file);
		json_array_set(root, (size_t)bi->f.index, bi->obj);
		text = cw_new_file_text(&bi->f, bi->obj, root);
		json_decref(root);
	}
	struct strbuf path = STRBUF_INIT;
	strbuf_addf(&path, "%s/%s", bt->stage, bi->rel);
	if (!(rc = cw_make_parents(bt->stage, bi->rel, err)))
		rc = cw_write_plain(path.buf, text, strlen(text), 0644, err);
	strbuf_release(&path);
	touch(bt, bi->rel, text);
	return rc;
}

/* Step 3: load the staging copy. JERR_CONFIG: res->cfg takes the diagnostics. */
static enum jerr batch_validate(struct batch *bt, struct cfg_batch_result *res, struct jerror *err)
{
	enum jerr rc = cw_stage_load(bt->dir, bt->stage, bt->opts, &bt->add, &bt->root_dir, &bt->cfg, err);

	if (rc == JERR_CONFIG && bt->cfg) {
		jerror_set(err, JERR_CONFIG, "the %zu object%s were not written: the config would be invalid (%zu error%s)",
			   bt->b->n, bt->b->n == 1 ? "" : "s", bt->cfg->n_errors, bt->cfg->n_errors == 1 ? "" : "s");
		cw_invalid_detail(bt->cfg, err);
		res->cfg = bt->cfg;
		bt->cfg = NULL;
	}
	return rc;
}

/* The old text and mode of every file that changes (absent: a new file). */
static enum jerr keep_old_texts(struct batch *bt, struct jerror *err)
{
	for (size_t i = 0; i < bt->n_files; i++) {
		struct touched *t = &bt->files[i];
		struct strbuf path = STRBUF_INIT;
		struct stat st;
		enum jerr rc = JERR_OK;
		strbuf_addf(&path, "%s/%s", bt->real, t->rel);
		if (stat(path.buf, &st) == 0) {
			t->mode = st.st_mode & 07777;
			rc = cw_read_whole(path.buf, &t->old, &t->old_len, err);
		} else {
			char *pdir = cw_dir_of(path.buf);
			t->new_dir = stat(pdir, &st) != 0;
			free(pdir);
		}
		strbuf_release(&path);
		if (rc)
			return rc;
	}
	return JERR_OK;
}

/* Write file t to the real directory (parents created), or fail as the test hook asks. */
static enum jerr commit_one(struct batch *bt, struct touched *t, int nth, struct jerror *err)
{
	struct strbuf path = STRBUF_INIT;
	enum jerr rc;

	strbuf_addf(&path, "%s/%s", bt->real, t->rel);
	if (fail_at && nth == fail_at) {
		fail_at = 0;
		rc = jerror_set(err, JERR_IO, "could not write \"%s\": %s", path.buf, strerror(EIO));
	} else if (!(rc = cw_make_parents(bt->real, t->rel, err))) {
		rc = cw_write_atomic(path.buf, t->text, strlen(t->text), t->mode, err);
	}
	strbuf_release(&path);
	return rc;
}

/* Put back every file already replaced, and the secrets file; what fails is logged. */
static size_t rollback(struct batch *bt)
{
	size_t failed = 0;
	for (size_t i = 0; i < bt->n_files; i++) {
		struct touched *t = &bt->files[i];
		struct strbuf path = STRBUF_INIT;
		struct jerror e = JERROR_INIT;
		if (!t->written)
			continue;
		strbuf_addf(&path, "%s/%s", bt->real, t->rel);
		if (t->old ? cw_write_atomic(path.buf, t->old, t->old_len, t->mode, &e) != JERR_OK
			   : unlink(path.buf) != 0 && errno != ENOENT) {
			log_error("config write: could not restore \"%s\": %s", path.buf,
				  e.msg.len ? e.msg.buf : strerror(errno));
			failed++;
		} else if (t->new_dir) {
			char *pdir = cw_dir_of(path.buf);
			rmdir(pdir); /* fails, as it should, when something else is in it now */
			free(pdir);
		}
		jerror_release(&e);
		strbuf_release(&path);
	}
	if (bt->secrets_kept) {
		const char *sp = bt->opts->secrets_path;
		struct jerror e = JERROR_INIT;
		if (bt->old_secrets ? cw_write_atomic(sp, bt->old_secrets, bt->old_secrets_len, 0600, &e) != JERR_OK
				    : unlink(sp) != 0 && errno != ENOENT) {
			log_error("config write: could not restore the secrets file \"%s\": %s", sp,
				  e.msg.len ? e.msg.buf : strerror(errno));
			failed++;
		} else if (bt->secrets_new_dir) {
			char *pdir = cw_dir_of(sp);
			rmdir(pdir);
			free(pdir);
		}
		jerror_release(&e);
	}
	return failed;
}

/* Step 5: the secrets file, then every changed file; on a failure everything goes back. */
static enum jerr batch_commit(struct batch *bt, struct jerror *err)
{
	enum jerr rc;

	if ((rc = keep_old_texts(bt, err)))
		return rc;
	if (bt->add.n) { /* its old bytes, to put back as they were */
		const char *sp = bt->opts->secrets_path;
		struct stat st;
		if (stat(sp, &st) == 0) {
			if ((rc = cw_read_whole(sp, &bt->old_secrets, &bt->old_secrets_len, err)))
				return rc;
		} else {
			char *pdir = cw_dir_of(sp);
			bt->secrets_new_dir = stat(pdir, &st) != 0;
			free(pdir);
		}
		bt->secrets_kept = true;
		if ((rc = cw_secrets_add(sp, bt->lock_fd, bt->add.items, bt->add.n, err)))
			return rc;
	}
	for (size_t i = 0; i < bt->n_files; i++) {
		if (!(rc = commit_one(bt, &bt->files[i], (int)i + 1, err))) {
			bt->files[i].written = true;
			continue;
		}
		size_t lost = rollback(bt);
		if (lost)
			jerror_detail(err, "%zu of the %zu files already written could not be restored (see the log)", lost, i);
		else
			jerror_detail(err, "nothing was changed: the %zu file%s already written %s restored", i,
				      i == 1 ? "" : "s", i == 1 ? "was" : "were");
		return rc;
	}
	struct jerror e = JERROR_INIT; /* new class directories: make their names durable too */
	if (cw_fsync_dir(bt->real, &e) != JERR_OK)
		log_warn("config write: %s", e.msg.buf);
	jerror_release(&e);
	return JERR_OK;
}

/* Hand the config and what was done with each item to res. */
static void batch_result(struct batch *bt, struct cfg_batch_result *res)
{
	res->cfg = bt->cfg;
	bt->cfg = NULL;
	res->n = bt->b->n;
	res->items = xcalloc(res->n ? res->n : 1, sizeof(*res->items));
	for (size_t i = 0; i < res->n; i++) {
		struct batch_item *bi = &bt->items[i];
		res->items[i] = (struct cfg_batch_done){ .op = bi->have ? CFG_WRITE_UPDATE : CFG_WRITE_CREATE,
							 .id = xstrdup(bi->id), .file = bi->rel,
							 .stored_json = bi->stored };
		bi->rel = NULL;
		bi->stored = NULL;
	}
}

enum jerr config_write_batch(const char *dir, const struct cfg_batch *b, const struct config_opts *opts,
			     struct cfg_batch_result *res, struct jerror *err)
{
	struct batch bt = { .dir = dir, .b = b, .opts = opts, .lock_fd = -1 };
	enum jerr rc;

	memset(res, 0, sizeof(*res));
	res->failed = -1;
	if (!b->n)
		return jerror_set(err, JERR_USAGE, "no objects given");
	if (b->n > CFG_BATCH_MAX) {
		jerror_set(err, JERR_USAGE, "too many objects: %zu", b->n);
		jerror_hint(err, "write at most %d objects at a time", CFG_BATCH_MAX);
		return JERR_USAGE;
	}
	bt.items = xcalloc(b->n, sizeof(*bt.items));
	for (size_t i = 0; i < b->n; i++)
		arena_init(&bt.items[i].f.arena);
	if ((rc = cw_open_dir(dir, &bt.real, &bt.lock_fd, &bt.pl, err)))
		goto out;
	if ((rc = cw_stage_create(bt.real, &bt.stage, err)) || (rc = cw_stage_copy(bt.real, &bt.pl, bt.stage, err)))
		goto out;
	for (size_t i = 0; i < b->n; i++)
		if ((rc = apply_item(&bt, i, res, err)))
			goto out;
	if ((rc = batch_validate(&bt, res, err)))
		goto out;
	for (size_t i = 0; !b->dry_run && b->approve && i < b->n; i++) {
		enum cfg_write_op op = bt.items[i].have ? CFG_WRITE_UPDATE : CFG_WRITE_CREATE;
		if ((rc = b->approve(b->approve_ctx, i, op, bt.items[i].id, bt.cfg, err))) {
			res->failed = (long)i;
			goto out;
		}
	}
	if (!b->dry_run && (rc = batch_commit(&bt, err)))
		goto out;
	for (size_t i = 0; !b->dry_run && i < b->n; i++)
		if (bt.items[i].have)
			cw_drop_unused_secrets(opts ? opts->secrets_path : NULL, bt.lock_fd, bt.items[i].f.obj, bt.cfg);
	batch_result(&bt, res);
out:
	batch_release(&bt);
	return rc;
}

void cfg_batch_result_release(struct cfg_batch_result *res)
{
	if (!res)
		return;
	config_free(res->cfg);
	for (size_t i = 0; i < res->n; i++) {
		free(res->items[i].id);
		free(res->items[i].file);
		free(res->items[i].stored_json);
	}
	free(res->items);
	memset(res, 0, sizeof(*res));
	res->failed = -1;
}
