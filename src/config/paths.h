/*
 * paths.h: the project root, and the files that config options name.
 *
 * Grouparoo runs from its project root (the directory of package.json, whose config
 * directory is <root>/config) and opens a relative SQLite `file` from there
 * (plugins/@grouparoo/sqlite connect(): path.join(getParentPath(), file)). joey has
 * no package.json, so its project root is the directory that holds the config
 * directory:
 *
 *   the config path as named (--config, $JOEY_CONFIG, ./config), trailing slashes
 *   dropped, minus its last component, made absolute with symlinks resolved
 *   (realpath). A config directory that is itself a symlink is not followed: the
 *   root is the directory holding the link. When the last component is "." or ".."
 *   (--config .), the config directory is resolved first and the root is its parent.
 *
 *   --config config, --config ./config/, --config /p/config   ->  <cwd>, <cwd>, /p
 *   --config .   (run inside /p/config)                        ->  /p
 *   --config /p/settings/config                                ->  /p/settings
 *
 * Relative `file` options (sqlite and csv apps) and joey's certificate file options
 * are resolved from the root after GROUPAROO_OPTION__ values (a file option cannot be a
 * "${ENV}" reference: config.h); absolute paths are kept.
 *
 * Order of calls: config_load computes cfg->root once with config_project_root (or
 * takes config_opts.root: a staging copy of the config directory must resolve paths
 * from the real directory's root); connectors get cfg->root and call
 * config_resolve_path; `joey validate` asks config_load to check the files
 * (config_opts.check_files), which uses config_file_problem.
 */
#ifndef JOEY_CONFIG_PATHS_H
#define JOEY_CONFIG_PATHS_H

#include <stdbool.h>
#include <sys/stat.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "config/config.h"

/*
 * The project root of config directory dir (borrowed), as an absolute path without
 * symlinks: *root is owned by the caller (free). On failure *root is NULL and err
 * says why (JERR_CONFIG when a directory does not exist, JERR_IO otherwise).
 */
enum jerr config_project_root(const char *dir, char **root, struct jerror *err) JOEY_WUR;

/* file (borrowed) resolved from root (borrowed; NULL or "": as is): owned, free it. */
char *config_resolve_path(const char *root, const char *file);
/*
 * file (borrowed) appended to sb as the connectors and sync log writers open it: after
 * root (borrowed) and a '/' when file is relative and root is set (NULL or "": file as
 * is). Unlike config_resolve_path the '/' is always added.
 */
void config_add_path(struct strbuf *sb, const char *root, const char *file);

/*
 * Does the file that app's option `file` names exist as its connector needs it (a
 * SQLite database: a file; CSV: a file or a directory)? False when there is nothing
 * to check (no such option, another app type, or fine). True when it does not:
 * msg gets the message and hint the hint (both appended; hint may stay empty), naming
 * the path tried, and the file under the config directory when it is there (joey's
 * old rule) with what to write instead. Values read from the environment or the
 * secrets file are not printed: the message names the reference.
 */
bool config_file_problem(const struct config *cfg, const struct cfg_app *app, struct strbuf *msg,
			 struct strbuf *hint);

/*
 * The data directory data_dir (config_opts.data_dir; relative: from root) as an
 * absolute path without symlinks (owned), or NULL when it does not exist (then no
 * file is inside it).
 */
char *config_data_dir(const char *root, const char *data_dir);

/*
 * Does path (absolute, as config_resolve_path made it) lie inside real_dir (absolute,
 * no symlinks), counting what the path really names? The path is resolved with its
 * symlinks (a link inside real_dir to a file elsewhere is outside); a path that does
 * not exist yet is judged by its deepest existing directory and the names below it,
 * which may not be "." or "..". Below real_dir no name may start with '.': .joey/,
 * .git/ and .env hold the state store, keys and history. real_dir itself counts as
 * inside (a CSV directory). False with *why set (static text) otherwise.
 */
bool config_path_inside(const char *path, const char *real_dir, const char **why);

/*
 * The directories a walk of the config directory has entered, by (device, inode), so
 * that a symbolic link back up the tree (ln -s . config/loop) is entered once, not
 * until the depth limit with every branch doubled. Zero-initialise; release after.
 */
struct dir_seen {
	struct dir_seen_id {
		dev_t dev;
		ino_t ino;
	} *ids;
	size_t n, alloc;
};

/* Was the directory st (from stat) entered before? If not, it is remembered: false. */
bool dir_seen_check(struct dir_seen *s, const struct stat *st);
void dir_seen_release(struct dir_seen *s);

#endif
