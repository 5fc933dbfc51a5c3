/*
 * write.h: change the config directory (the API's config writes) and the secrets file.
 *
 *   struct cfg_write_result res;
 *   rc = config_write(dir, &w, &opts, &res, &err);
 *   JERR_OK:     the change is on disk (atomically); res.cfg is the new, valid config
 *   JERR_CONFIG: the change would make the directory invalid; nothing on disk changed;
 *                res.cfg holds the diagnostics (config_print_diags / cfg->diags)
 *   other:       err says what failed (JERR_USAGE: bad object, unknown id, id taken,
 *                class mismatch; JERR_IO: a file could not be read or written)
 *   cfg_write_result_release(&res);
 *
 * Validation uses the same rules as `joey validate`: the whole directory is loaded as
 * it would be after the change (a staging copy in a temporary directory beside it) by
 * config_load. Only when that has no error is the real directory touched: the new file
 * is written to a temporary file in the same directory, fsync'ed, renamed over the old
 * one, and the directory fsync'ed. Only the changed object's text changes: every other
 * byte of its file (comments, JSON5, the other objects of an array) is kept; an update
 * puts the object's new text (pretty JSON, indented as the old one) in its place, a
 * delete removes it with one separating comma; a file left with no object is removed. A new object goes to <dir>/<class dir>/<id>.json
 * (apps/, models/, sources/, properties/, groups/, destinations/, schedules/), or
 * <id>-2.json, ... when another file already has that name.
 * Ids must match [A-Za-z0-9_.-]{1,128} and not start with '.', so a file name made
 * from one never leaves the directory (the loader's own rule, which has no '.', then
 * applies as a validation error). Ids are unique per class, as in the loader.
 * Writers take turns: config_write holds an exclusive flock on dir while it works.
 *
 * Objects are Grouparoo config objects (JSON text). Option values are kept exactly as
 * sent, "${ENV}" references included, except secrets (catalog_option_sensitive keys
 * of options, e.g. apiKey, password): a literal secret is moved to the secrets file
 * under the name JOEY_SECRET_<ID>_<OPTION> (upper case, other characters as _) and the
 * config gets "${JOEY_SECRET_...}"; the value "****" means "keep the stored value"
 * (as written in the file). Grouparoo's form ("NAME" with GROUPAROO_OPTION__<TOPIC>__NAME
 * set) is a reference too and is kept. Options the connector catalog marks sensitive
 * count as secrets as well. A generated secret that no object refers to any more after
 * an update or delete is removed from the secrets file.
 * On JERR_CONFIG the secrets file is not changed either.
 *
 * Secrets file: a JSON object {"NAME": "value", ...}, mode 0600, written atomically;
 * config_load resolves "${NAME}" from the environment first, then from this file
 * (config_opts.secrets_path). config_load refuses a secrets file that group or others
 * can read (error naming the file, hint: chmod 600).
 */
#ifndef JOEY_CONFIG_WRITE_H
#define JOEY_CONFIG_WRITE_H

#include <stdbool.h>

#include "base/compat.h"
#include "base/error.h"
#include "config/config.h"

enum cfg_write_op { CFG_WRITE_CREATE, CFG_WRITE_UPDATE, CFG_WRITE_DELETE };

struct cfg_write {
	enum cfg_write_op op;
	enum cfg_class cls;
	const char *id;          /* UPDATE, DELETE: the object's id (borrowed); CREATE: NULL,
				    or must equal the object's "id" */
	const char *object_json; /* CREATE, UPDATE: the whole object (borrowed); its "id"
				    must equal id on UPDATE (a rename is delete + create;
				    left out, it is taken from id); "class" may be left
				    out (it is added after "id") */
	/*
	 * Optional: called once the change validated, before anything is written, with the
	 * config as it would be (borrowed for the call; its dir is the real directory).
	 * Anything but JERR_OK stops the write (nothing on disk changes) and config_write
	 * returns that code with err as the callback filled it. The directory lock is held
	 * meanwhile, so what it approved is what gets written. NULL: none.
	 */
	enum jerr (*approve)(void *ctx, const struct config *staged, struct jerror *err);
	void *approve_ctx;
	bool dry_run;            /* validate only (steps 1-5): on JERR_OK res->cfg is the
				    config as it would be and res->stored_json the object,
				    res->file where it would go; nothing on disk changes
				    (the UI's previews of unsaved objects) */
};

struct cfg_write_result {
	struct config *cfg; /* the config after the change (JERR_OK), or with diagnostics
			       (JERR_CONFIG); NULL otherwise; owned, freed by release */
	char *file;         /* path written or removed, relative to dir (owned) */
	char *stored_json;  /* the object as written, secrets as "${...}" (owned; NULL on DELETE) */
};

/* dir and opts borrowed; opts->secrets_path says where literal secrets go. */
enum jerr config_write(const char *dir, const struct cfg_write *w, const struct config_opts *opts,
		       struct cfg_write_result *res, struct jerror *err) JOEY_WUR;
void cfg_write_result_release(struct cfg_write_result *res);

/*
 * The object (cls, id) as written in its file: *json (owned, JSON text, pretty) with
 * literal secret values replaced by "****" and references kept; *file its path
 * relative to dir (owned). JERR_USAGE "... does not exist" when absent.
 */
enum jerr config_read_object(const char *dir, enum cfg_class cls, const char *id, char **json,
			     char **file, struct jerror *err) JOEY_WUR;

/*
 * Whole config files, for the UI's repair editor. config_files_list: the files the
 * loader reads (relative paths, sorted; free with config_files_free). config_file_read:
 * the text of one of them (*text owned; JERR_USAGE "... does not exist" for any other
 * path, so a path never leaves the directory). config_file_write: replace one of them
 * with text (borrowed), after loading the directory as it would be (a staging copy, as
 * config_write). When that config has errors: with allow_invalid false, JERR_CONFIG and
 * nothing written (res->cfg holds the diagnostics); with allow_invalid true (a directory
 * already broken, being repaired) the file is written anyway and JERR_OK returned with
 * res->cfg holding the errors (res->cfg->n_errors). JERR_OK: res->cfg is the config
 * after the write, res->file the path.
 *
 * guard (borrowed; NULL: none, the file's owner writing) is joey serve's: before
 * anything is staged, under the directory lock, the file's text on disk and the new
 * text are parsed as the loader parses them (JSON5; "class" trimmed, any case), and
 *  - without guard->keys, a file whose old text holds keys (config_file_holds_keys),
 *    or whose new text defines them, is refused: JERR_AUTH, nothing written;
 *  - every App and Alert of the new text that is not the same as before (same class
 *    and id in the old text, equal JSON) goes through config_guard_app or
 *    config_guard_alert (config/guard.h) as if it were sent to config_write: before
 *    is the object of that id in the old text with its literal secrets masked as
 *    config_read_object masks them (NULL when the file did not hold it), after the
 *    object as the new text holds it. A refusal is JERR_USAGE with err as the guard
 *    set it, nothing written.
 */
struct cfg_file_guard {
	bool keys;              /* the writer may add, change or remove objects holding keys (an admin) */
	const char *state_path; /* the state store, for the guards (a path or URL; may be NULL) */
};

enum jerr config_files_list(const char *dir, char ***files, size_t *n, struct jerror *err) JOEY_WUR;
void config_files_free(char **files, size_t n);
enum jerr config_file_read(const char *dir, const char *rel, char **text, struct jerror *err) JOEY_WUR;
enum jerr config_file_write(const char *dir, const char *rel, const char *text, const struct config_opts *opts,
			    const struct cfg_file_guard *guard, bool allow_invalid, struct cfg_write_result *res,
			    struct jerror *err) JOEY_WUR;

/*
 * Does config file rel with text (both borrowed; text may be NULL) hold keys, so that
 * only an admin may read or change it? True when it lies under apps/ or alerts/, or
 * its text, parsed as the loader parses it, defines an App or an Alert or an object
 * with a secret option (catalog_option_sensitive). A text that does not parse defines
 * nothing (the loader reads nothing from it), but holds keys when it names a secret
 * option in any spelling or an Alert: its text may still be an App's with a literal key.
 */
bool config_file_holds_keys(const char *rel, const char *text);

/* "apps", "models", ... <-> enum cfg_class; false if unknown. */
bool cfg_class_from_dir(const char *name, enum cfg_class *out);
const char *cfg_class_dir(enum cfg_class c);

/* Set NAME=value in the secrets file at path (created 0600 if missing), atomically. */
enum jerr secrets_set(const char *path, const char *name, const char *value,
		      struct jerror *err) JOEY_WUR;

/*
 * Several objects in one write (the API's POST /api/v1/config): every item is applied,
 * in order, to ONE staging copy of the directory under the same flock as config_write
 * (each as config_write would: the request's checks, secrets, splicing into its file),
 * the staging copy is loaded once as `joey validate` would, and only when it has no
 * error are the changed files committed, each atomically. All or nothing: when writing
 * a later file fails, the files already replaced get their old text back (new ones are
 * removed) and the secrets file its old content, and JERR_IO says so.
 *   JERR_OK:     every object is on disk; res->cfg the new config, res->items[i] what
 *                was done with item i
 *   JERR_CONFIG: res->cfg holds the diagnostics (each names its class and id); nothing changed
 *   JERR_USAGE:  res->failed is the index of the item at fault (-1: the batch itself),
 *                err says what (bad object, duplicate, exists / does not exist)
 * Only creates and updates; at most CFG_BATCH_MAX items; an object appears once.
 */
#define CFG_BATCH_MAX 100

enum cfg_batch_mode {
	CFG_BATCH_UPSERT, /* create what does not exist, update what does */
	CFG_BATCH_CREATE, /* every object must be new */
	CFG_BATCH_UPDATE, /* every object must exist */
};

struct cfg_batch_item {
	enum cfg_class cls;
	const char *object_json; /* the whole object, "id" required (borrowed) */
};

struct cfg_batch {
	const struct cfg_batch_item *items; /* borrowed */
	size_t n;
	enum cfg_batch_mode mode;
	/* As cfg_write.approve, once per item (index, what is done, its id), in order. */
	enum jerr (*approve)(void *ctx, size_t index, enum cfg_write_op op, const char *id,
			     const struct config *staged, struct jerror *err);
	void *approve_ctx;
	bool dry_run; /* validate only; res as on JERR_OK, nothing on disk changes */
};

struct cfg_batch_done {
	enum cfg_write_op op; /* CREATE or UPDATE */
	char *id;             /* owned */
	char *file;           /* relative to dir (owned) */
	char *stored_json;    /* the object as written, secrets as "${...}" (owned) */
};

struct cfg_batch_result {
	struct config *cfg;          /* as cfg_write_result.cfg (owned) */
	struct cfg_batch_done *items; /* n of them on JERR_OK (owned) */
	size_t n;
	long failed;                 /* JERR_USAGE / approve refusal: the item's index; else -1 */
};

/* dir, b and opts borrowed; res released by cfg_batch_result_release. */
enum jerr config_write_batch(const char *dir, const struct cfg_batch *b, const struct config_opts *opts,
			     struct cfg_batch_result *res, struct jerror *err) JOEY_WUR;
void cfg_batch_result_release(struct cfg_batch_result *res);
/*
 * Tests: make the n-th file the next config_write_batch commits (1-based) fail as a
 * failed write would (JERR_IO, nothing written to it); 0: none. Once.
 */
void config_write_batch_fail_at(int n);

#endif
