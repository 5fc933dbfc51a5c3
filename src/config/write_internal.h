/*
 * write_internal.h: what the pieces of config/write*.c share; not part of the config
 * interface (callers use config/write.h alone).
 *
 *   write.c          config_write and the whole-file calls: the request, staging, commit
 *   write_files.c    files (read, atomic write, locks) and finding an object as the loader does
 *   write_json.c     JSON5 nodes to jansson, the pretty printer, splicing a change into a file
 *   write_secrets.c  secret options: moving them to the secrets file, masking, dropping
 *
 * cw_ names are shared between these files only. Order of calls in a write (write.c):
 * cw_open_dir (cw_lock_dir, cw_list_files), cw_find_object, cw_take_secrets, cw_new_file_text,
 * staging (cw_make_parents, cw_write_plain), then cw_lock_secrets / cw_secrets_read /
 * cw_secrets_write, cw_write_atomic, cw_drop_unused_secrets; cw_remove_tree and the
 * _release calls on every path.
 */
#ifndef JOEY_CONFIG_WRITE_INTERNAL_H
#define JOEY_CONFIG_WRITE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/arena.h"
#include "base/error.h"
#include "config/config.h"
#include "config/json5.h"
#include "config/write.h"

/* ---- write_files.c ---- */

struct path_list {
	char **items; /* relative paths (owned) */
	size_t n, alloc;
};

struct found {
	char *file;                /* relative to dir (owned); NULL: not found */
	char *text;                /* the file as read (owned, NUL-terminated) */
	size_t len;
	struct arena arena;        /* holds root */
	struct j5_node *root;      /* the whole file */
	long index;                /* position in the top-level array; -1: the root itself */
	const struct j5_node *obj; /* the object */
};

/* Does the class string s (as written) name class c? Case-insensitive, trimmed, as the loader. */
bool cw_class_matches(const char *s, size_t len, enum cfg_class c);
/* The directory part of path (owned): "." when there is none. */
char *cw_dir_of(const char *path);
/* Read the whole file at path (owned, NUL-terminated) into *buf; ENOENT is JERR_IO too. */
enum jerr cw_read_whole(const char *path, char **buf, size_t *len, struct jerror *err);
/* fsync the directory dir (borrowed); JERR_IO naming it on failure. */
enum jerr cw_fsync_dir(const char *dir, struct jerror *err);
/*
 * Replace path (borrowed) with data[0..len) atomically: a temporary file ".<name>.XXXXXX"
 * in the same directory (a dot-file, so the loader skips one left by a crash), written,
 * given mode, fsync'ed, renamed over path; then the directory is fsync'ed. On failure the
 * temporary file is removed and path is unchanged.
 */
enum jerr cw_write_atomic(const char *path, const char *data, size_t len, mode_t mode, struct jerror *err);
/* Plain write for the staging copy (no fsync: it is thrown away). */
enum jerr cw_write_plain(const char *path, const char *data, size_t len, mode_t mode, struct jerror *err);
/* Create every missing parent directory of root/rel (rel borrowed). */
enum jerr cw_make_parents(const char *root, const char *rel, struct jerror *err);
/* Remove a directory tree this module created (dirs and regular files only). */
void cw_remove_tree(const char *path);
/* An exclusive flock on a directory; released by cw_unlock_dir (-1: nothing held). */
enum jerr cw_lock_dir(const char *dir, int *fd_out, struct jerror *err);
void cw_unlock_dir(int fd);
/* Every *.json and *.js file under root (what config_load reads), relative paths, sorted. */
void cw_list_files(const char *root, struct path_list *pl);
void cw_path_list_release(struct path_list *pl);
/*
 * The config directory dir of a write, opened: *real its realpath (owned), locked
 * (*lock_fd, cw_lock_dir) and its files listed in *pl (cw_list_files). What is set
 * stays set on failure, for the caller's release.
 */
enum jerr cw_open_dir(const char *dir, char **real, int *lock_fd, struct path_list *pl, struct jerror *err);
/*
 * Find object (cls, id) in the files pl of dir: the first one in path order, as the
 * loader sees it (files that do not parse are skipped: validation reports them).
 * Returns true with *f filled (release with cw_found_release), false if absent.
 */
bool cw_find_object(const char *dir, const struct path_list *pl, enum cfg_class cls, const char *id,
		    struct found *f);
void cw_found_release(struct found *f);

/* ---- write_json.c ---- */

/* A new jansson value (owned) for n (borrowed). */
json_t *cw_j5_to_json(const struct j5_node *n);
/* Pretty text of v (owned), with a final newline when nl. */
char *cw_json_text(const json_t *v, bool nl);
/* obj (borrowed) with key inserted after the key `after` (NULL: first): a new object (owned). */
json_t *cw_insert_key(json_t *obj, const char *after, const char *key, json_t *val);
/*
 * The new text of f's file: spliced (obj replaces the object, or NULL: it goes), checked
 * to read back as want (the whole file's new value); else want as plain JSON. Owned.
 */
char *cw_new_file_text(const struct found *f, const json_t *obj, const json_t *want);

/* ---- write_secrets.c ---- */

struct secret {
	char *name, *value; /* owned */
};

struct secret_list {
	struct secret *items;
	size_t n, alloc;
};

void cw_secret_list_release(struct secret_list *l);
/*
 * Secrets of obj (a new or replacing object, modified in place; old: the stored one or
 * NULL): a literal value of a sensitive option is moved to *add and replaced by
 * "${JOEY_SECRET_...}"; "****" takes the stored value as written; references ("${X}",
 * or Grouparoo's "X" when GROUPAROO_OPTION__<TOPIC>__X is set) and "" are kept.
 */
enum jerr cw_take_secrets(json_t *obj, const struct j5_node *old, enum cfg_class cls, const char *id,
			  const struct config_opts *opts, const char *root, const struct path_list *pl,
			  struct secret_list *add, struct jerror *err);
/* Mask literal secrets of obj (in place) with "****"; references are kept. */
void cw_mask_secrets(json_t *obj, enum cfg_class cls);
/*
 * Read the secrets file at path (missing: an empty object) into *out (owned): a JSON
 * (or JSON5) object of strings, anything else is JERR_IO naming the file.
 */
enum jerr cw_secrets_read(const char *path, json_t **out, struct jerror *err);
/* Write secrets (borrowed) to path atomically with mode 0600, creating its directory. */
enum jerr cw_secrets_write(const char *path, const json_t *secrets, struct jerror *err);
/*
 * Lock the directory of the secrets file, unless it is the directory held by
 * held_fd (the config directory's lock: flock would wait for itself). *fd is -1
 * when nothing was locked.
 */
enum jerr cw_lock_secrets(const char *path, int held_fd, int *fd, struct jerror *err);
/*
 * Set items[0..n) (borrowed) in the secrets file at path (created 0600 if missing),
 * atomically, under cw_lock_secrets (held_fd: the config directory's lock, or -1).
 * On failure the file is unchanged.
 */
enum jerr cw_secrets_add(const char *path, int held_fd, const struct secret *items, size_t n, struct jerror *err);
/*
 * After a committed change: drop the generated secrets (JOEY_SECRET_*) that the old
 * object referred to and the new config no longer uses. Failing here is only logged.
 */
void cw_drop_unused_secrets(const char *path, int held_fd, const struct j5_node *old, const struct config *cfg);

/* ---- write.c: the steps config_write_batch (write_batch.c) shares ---- */

/* Is id a safe object id ([A-Za-z0-9_.-]{1,128}, not starting with '.')? */
bool cw_id_ok(const char *id);
/* JERR_USAGE "invalid id ..." with the rule as hint. */
enum jerr cw_bad_id(struct jerror *err, const char *id);
/*
 * Parse and check w->object_json into *out (owned): one JSON object whose "class"
 * names w->cls (added after "id" when missing) and whose "id" is valid and agrees with
 * w->id. *id_out borrows the id from *out.
 */
enum jerr cw_parse_object(const struct cfg_write *w, json_t **out, const char **id_out, struct jerror *err);
/* Does the array hold at least one non-empty object (what the loader would load)? */
bool cw_has_objects(const json_t *arr);
/* The staging load's environment: the real one, then the secrets about to be written. */
struct cw_stage_env {
	const struct config_opts *opts; /* the caller's, or NULL */
	const struct secret_list *add;
};
/* A config_opts getenv_fn over struct cw_stage_env (ctx). */
const char *cw_stage_getenv(const char *name, void *ctx);
/* <class dir>/<id>.json, or <id>-N.json when taken under dir (owned); NULL if all are taken. */
char *cw_new_file_name(const char *dir, enum cfg_class cls, const char *id);
/* A new staging directory beside real (*out owned), copy of the files pl of dir into it. */
enum jerr cw_stage_create(const char *real, char **out, struct jerror *err);
enum jerr cw_stage_copy(const char *dir, const struct path_list *pl, const char *stage, struct jerror *err);
/* The staging load's options: opts (NULL: defaults) rooted at dir's project root (*root_dir owned). */
enum jerr cw_stage_opts_for(const char *dir, const struct config_opts *opts, struct config_opts *out,
			    char **root_dir, struct jerror *err);
/*
 * Load the staging copy stage as config_load would load dir: opts (borrowed; NULL:
 * defaults) rooted as cw_stage_opts_for roots them (*root_dir owned by the caller), the
 * secrets add (borrowed) answering after the environment, *cfg (owned) named dir. Returns
 * config_load's answer; every failure but an invalid config (JERR_CONFIG with *cfg, its
 * diagnostics: the caller's message) is copied into err.
 */
enum jerr cw_stage_load(const char *dir, const char *stage, const struct config_opts *opts,
			const struct secret_list *add, char **root_dir, struct config **cfg, struct jerror *err);
/* The first error diagnostic of cfg, or NULL. */
const struct cfg_diag *cw_first_error(const struct config *cfg);
/* A staging copy that would not validate: err's detail names its first error (file,
 * line, column, field) and its hint says nothing changed. */
void cw_invalid_detail(const struct config *cfg, struct jerror *err);
/* Any other failure of the staging load: from's message, detail and hint into err as rc. */
void cw_copy_error(enum jerr rc, const struct jerror *from, struct jerror *err);

#endif
