/*
 * load.c: pass 1 of the config loader: walking the config directory, reading and parsing
 * each file, and handing each object to its class by its "class" and "id" (load_object).
 * Called by config_load (config.c).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "config/names.h"
#include "config/config_internal.h"

static bool valid_id(const char *id, size_t len)
{
	if (len == 0 || len > MAX_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(isalnum((unsigned char)id[i]) || id[i] == '_' || id[i] == '-'))
			return false;
	return true;
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
		ld_err(ld, &w0, NPOS(o), NULL,
		       "add \"class\": one of App, Model, Source, Property, Group, Destination, Schedule, Alert",
		       "missing required field \"class\"");
		return;
	}
	if (cm->value->type != J5_STRING) {
		ld_err(ld, &w0, NPOS(cm->value), "class", NULL, "expected a string, found %s",
		       ld_found_text(cm->value));
		ld_add_broken(ld, w0.id);
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
		ld_err(ld, &w0, NPOS(cm->value), "class", ld_did_you_mean(ld, cm->value->str, display, CLASS__COUNT),
		       "unknown class \"%s\"", cm->value->str);
		ld_add_broken(ld, w0.id);
		return;
	}
	w0.cls = display[ci];
	if (ci >= CLASS__COUNT) {
		if (ci >= CLASS__COUNT + 4)
			ld_warn(ld, &w0, NPOS(o), NULL, "sample records are only used by Grouparoo's UI",
				"%s objects are ignored by joey", display[ci]);
		else
			ld_warn(ld, &w0, NPOS(o), NULL, NULL, "%s objects are ignored by joey", display[ci]);
		return;
	}
	w0.cls = class_names[ci];
	if (!im || im->value->type == J5_NULL) {
		const char *name = ld_get_str(o, "name");
		if (name)
			ld_err(ld, &w0, NPOS(o), NULL, NULL, "object \"%s\" is missing required field \"id\"", name);
		else
			ld_err(ld, &w0, NPOS(o), NULL, NULL, "missing required field \"id\"");
		return;
	}
	if (im->value->type != J5_STRING) {
		ld_err(ld, &w0, NPOS(im->value), "id", NULL, "expected a string, found %s", ld_found_text(im->value));
		return;
	}
	id = im->value->str;
	if (!valid_id(id, im->value->len)) {
		ld_add_broken(ld, id);
		w0.id = NULL;
		ld_err(ld, &w0, NPOS(im->value), "id",
		       "ids may contain only letters, digits, \"_\" and \"-\" (at most 191 characters)",
		       "invalid id \"%.200s\"", id);
		return;
	}

	struct where w = { file, class_names[ci], id };
	size_t order = ld->order++;

	switch ((enum cfg_class)ci) {
	case CLASS_APP: ld_load_app(ld, &w, o, order); break;
	case CLASS_MODEL: ld_load_model(ld, &w, o, order); break;
	case CLASS_SOURCE: ld_load_source(ld, &w, o, order); break;
	case CLASS_PROPERTY: ld_load_property(ld, &w, o, order); break;
	case CLASS_GROUP: ld_load_group(ld, &w, o, order); break;
	case CLASS_DESTINATION: ld_load_destination(ld, &w, o, order); break;
	case CLASS_SCHEDULE: ld_load_schedule(ld, &w, o, order); break;
	case CLASS_ALERT: ld_load_alert(ld, &w, o, order); break;
	case CLASS__COUNT: break;
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
					ld_warn(ld, &w, 0, 0, NULL,
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
			ld_warn(ld, &w, 0, 0, NULL, "fix or remove the link",
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

/*
 * The .js refusal: joey does not execute JavaScript. The hint converts the file as
 * Grouparoo read it (configLoaders/index.ts loadConfigFile): an export object whose
 * only key is "default" stands for that value, and a function is called (Grouparoo
 * passed its config object) and its promise awaited. Most Grouparoo .js files export
 * such a function, which JSON.stringify alone prints as "undefined".
 */
static void refuse_js(struct loader *ld, const struct where *w, const char *rel)
{
	const char *base = strrchr(rel, '/');
	base = base ? base + 1 : rel;
	ld_err(ld, w, 0, 0, NULL,
	       arena_printf(ld->a,
			    "convert it to JSON once, in its directory, then delete it: node -e "
			    "'let m=require(\"./%s\");if(Object.keys(m).length==1&&m.default)m=m.default;"
			    "Promise.resolve(typeof m==\"function\"?m({}):m).then(c=>console.log(JSON.stringify(c,null,2)))'"
			    " > %.*s.json (values it reads from process.env are written into the file: see docs/config.md \"Files\")",
			    base, (int)(strlen(base) - 3), base),
	       "joey cannot execute JavaScript config files");
}

static bool is_js(const char *rel)
{
	size_t rl = strlen(rel);
	return rl > 3 && !strcmp(rel + rl - 3, ".js");
}

/* Append one file to the loader's snapshot: "path\0<length>\0<bytes>" (config.h). */
static void snap_add(struct loader *ld, const char *rel, const char *buf, size_t len)
{
	strbuf_add(&ld->snap, rel, strlen(rel) + 1);
	strbuf_addf(&ld->snap, "%zu", len);
	strbuf_addch(&ld->snap, 0);
	strbuf_add(&ld->snap, buf, len);
}

/*
 * Parse one file's text (buf, len; borrowed) and hand its objects on. full: its path on
 * disk, for the symbolic link warning, or NULL (read from a snapshot).
 */
static void load_text(struct loader *ld, const char *file, const char *full, const char *buf, size_t len)
{
	struct where w = { file, NULL, NULL };
	struct j5_node *root;
	struct j5_error je;
	bool has_brace = false;

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
		if (full && lstat(full, &lst) == 0 && S_ISLNK(lst.st_mode))
			ld_warn(ld, &w, 0, 0, NULL, "point the link at a config file, or remove it",
				"symbolic link to \"%s\" holds no config object (no '{'): skipped",
				link_target(ld, full));
		return;
	}
	if (!json5_parse(buf, len, ld->a, &root, &je)) {
		ld_err(ld, &w, je.line, je.col, NULL, NULL, "syntax error: %s", je.msg);
		return;
	}
	if (root->type == J5_OBJECT) {
		if (root->n)
			load_object(ld, file, root);
	} else if (root->type == J5_ARRAY) {
		for (size_t i = 0; i < root->n; i++) {
			const struct j5_node *e = root->items[i];
			if (e->type == J5_NULL)
				ld_err(ld, &w, NPOS(e), NULL, "remove it", "null entry in the top-level array");
			else if (e->type != J5_OBJECT)
				ld_err(ld, &w, NPOS(e), NULL, NULL,
				       "expected a config object in the top-level array, found %s", ld_found_text(e));
			else if (e->n)
				load_object(ld, file, e);
		}
	} else {
		ld_err(ld, &w, NPOS(root), NULL, NULL,
		       "expected a config object or an array of objects, found %s", ld_found_text(root));
	}
}

static void load_file(struct loader *ld, const char *dir, const char *rel)
{
	struct strbuf full = STRBUF_INIT;
	const char *file = arena_strdup(ld->a, rel);
	struct where w = { file, NULL, NULL };
	FILE *f;
	char *buf = NULL;
	size_t len = 0;
	struct stat st;

	if (is_js(rel)) {
		snap_add(ld, rel, "", 0);
		refuse_js(ld, &w, rel);
		return;
	}
	strbuf_addf(&full, "%s/%s", dir, rel);
	f = fopen(full.buf, "rb");
	if (!f || fstat(fileno(f), &st) != 0) {
		ld_err(ld, &w, 0, 0, NULL, NULL, "could not read file: %s", strerror(errno));
		if (f)
			fclose(f);
		strbuf_release(&full);
		return;
	}
	if ((uint64_t)st.st_size > J5_MAX_INPUT) {
		ld_err(ld, &w, 0, 0, NULL, "split the config into several files",
		       "file is larger than %zu MiB", J5_MAX_INPUT >> 20);
		fclose(f);
		strbuf_release(&full);
		return;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	len = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	snap_add(ld, rel, buf, len);
	load_text(ld, file, full.buf, buf, len);
	free(buf);
	strbuf_release(&full);
}

/* Pass 1: walk dir (st: its stat), then read the files in name order. */
void ld_load_files(struct loader *ld, const char *dir, const struct stat *st)
{
	struct path_list pl = { NULL, 0, 0 };
	struct dir_seen seen = { NULL, 0, 0 };

	if (!dir_seen_check(&seen, st)) /* the config directory itself: a link to it is a loop */
		walk(ld, dir, "", 0, &pl, &seen);
	dir_seen_release(&seen);
	if (pl.n) /* an empty directory has no list at all */
		qsort(pl.items, pl.n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < pl.n; i++) {
		load_file(ld, dir, pl.items[i]);
		free(pl.items[i]);
	}
	free(pl.items);
}

/*
 * Pass 1 from a snapshot (config_opts.snapshot) instead of the directory: the same
 * files in the same order, parsed as if read from disk. A snapshot that does not
 * parse is one error naming it.
 */
void ld_load_snapshot(struct loader *ld, const char *snap, size_t len)
{
	size_t at = 0;
	while (at < len) {
		const char *rel = snap + at;
		const char *nul = memchr(rel, 0, len - at);
		const char *num, *nul2, *body;
		char *end;
		unsigned long long n;
		if (!nul || nul == rel)
			goto bad;
		num = nul + 1;
		nul2 = memchr(num, 0, (size_t)(snap + len - num));
		if (!nul2 || nul2 == num)
			goto bad;
		errno = 0;
		n = strtoull(num, &end, 10);
		if (errno || end != nul2 || n > (unsigned long long)(snap + len - (nul2 + 1)))
			goto bad;
		body = nul2 + 1;
		const char *file = arena_strdup(ld->a, rel);
		struct where w = { file, NULL, NULL };
		snap_add(ld, rel, body, (size_t)n);
		if (is_js(rel))
			refuse_js(ld, &w, rel);
		else if (n > J5_MAX_INPUT)
			ld_err(ld, &w, 0, 0, NULL, "split the config into several files",
			       "file is larger than %zu MiB", J5_MAX_INPUT >> 20);
		else
			load_text(ld, file, NULL, body, (size_t)n);
		at = (size_t)(body + n - snap);
	}
	return;
bad: {
	struct where w = { "(config snapshot)", NULL, NULL };
	ld_err(ld, &w, 0, 0, NULL, "the state store's copy of the config is damaged; reload the config on a "
				   "worker that has the files (SIGHUP) to store it again",
	       "config snapshot is malformed at byte %zu of %zu", at, len);
}
}
