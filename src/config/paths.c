/* paths.c: the project root (the directory holding the config directory) and option files. */
#include "config/paths.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/xalloc.h"

/* realpath(path) or an error naming what: owned. */
static char *real_or_err(const char *path, const char *what, struct jerror *err)
{
	char *r = realpath(path, NULL);
	if (!r)
		jerror_set(err, errno == ENOENT || errno == ENOTDIR ? JERR_CONFIG : JERR_IO,
			   "could not resolve the %s \"%s\": %s", what, path, strerror(errno));
	return r;
}

/* The parent of an absolute, resolved path: "/a/b" -> "/a", "/a" -> "/", "/" -> "/". */
static void cut_last(char *abs)
{
	char *slash = strrchr(abs, '/');
	if (!slash)
		return;
	if (slash == abs)
		slash[1] = '\0';
	else
		*slash = '\0';
}

enum jerr config_project_root(const char *dir, char **root, struct jerror *err)
{
	size_t n = strlen(dir), start;
	char *parent, *r;

	*root = NULL;
	if (!n)
		dir = ".", n = 1;
	while (n > 1 && dir[n - 1] == '/')
		n--;
	start = n;
	while (start > 0 && dir[start - 1] != '/')
		start--;
	/* "/", ".", "..", "x/.": resolve the directory itself, take its parent */
	if ((n == 1 && dir[0] == '/') || (n - start == 1 && dir[start] == '.') ||
	    (n - start == 2 && dir[start] == '.' && dir[start + 1] == '.')) {
		char *d = xstrndup(dir, n);
		r = real_or_err(d, "config directory", err);
		free(d);
		if (r)
			cut_last(r);
		*root = r;
		return r ? JERR_OK : err->code;
	}
	/* the directory holding the last component, as named: its symlinks resolved */
	if (start == 0) {
		parent = xstrdup(".");
	} else {
		size_t p = start;
		while (p > 1 && dir[p - 1] == '/')
			p--;
		parent = xstrndup(dir, p);
	}
	r = real_or_err(parent, "directory holding the config directory", err);
	free(parent);
	*root = r;
	return r ? JERR_OK : err->code;
}

char *config_resolve_path(const char *root, const char *file)
{
	struct strbuf sb = STRBUF_INIT;
	if (file[0] == '/' || !root || !*root) {
		strbuf_addstr(&sb, file);
	} else {
		strbuf_addstr(&sb, root);
		if (sb.len && sb.buf[sb.len - 1] != '/')
			strbuf_addch(&sb, '/');
		strbuf_addstr(&sb, file);
	}
	return strbuf_detach(&sb, NULL);
}

enum file_need { NEED_FILE, NEED_FILE_OR_DIR };

/* Does path exist as needed? */
static bool usable(const char *path, enum file_need need, bool *is_dir)
{
	struct stat st;
	*is_dir = false;
	if (stat(path, &st) != 0)
		return false;
	*is_dir = S_ISDIR(st.st_mode);
	if (need == NEED_FILE)
		return S_ISREG(st.st_mode);
	return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode);
}

/*
 * The hint when the file is where joey's old rule looked (relative to the config
 * directory): what to write so that it is found from the root. The candidate's real
 * path, relative to the root when it lies under it, else absolute.
 */
static bool old_rule_hint(const struct config *cfg, const char *file, enum file_need need,
			  struct strbuf *hint)
{
	char *cand = config_resolve_path(cfg->dir, file), *real = NULL;
	const char *write;
	size_t rl = strlen(cfg->root);
	bool dir, found = false;

	if (!usable(cand, need, &dir) || !(real = realpath(cand, NULL)))
		goto out;
	write = real;
	if (!strncmp(real, cfg->root, rl) && (real[rl] == '/' || (rl == 1 && cfg->root[0] == '/')))
		write = real + rl + (real[rl] == '/');
	strbuf_addf(hint,
		    "\"%s\" exists; paths are relative to the project root %s (the directory holding the "
		    "config directory); write \"%s\" or an absolute path",
		    write, cfg->root, write);
	found = true;
out:
	free(real);
	free(cand);
	return found;
}

bool config_file_problem(const struct config *cfg, const struct cfg_app *app, struct strbuf *msg,
			 struct strbuf *hint)
{
	const struct cfg_option *opt;
	enum file_need need;
	const char *what;
	char *path;
	bool dir, bad = false;

	if (!app->type || !cfg->root)
		return false;
	if (!strcmp(app->type, "sqlite")) {
		need = NEED_FILE;
		what = "SQLite database";
	} else if (!strcmp(app->type, "csv")) {
		need = NEED_FILE_OR_DIR;
		what = "CSV file or directory";
	} else {
		return false;
	}
	opt = cfg_options_get(&app->options, "file");
	if (!opt || opt->kind != OPT_STRING || !opt->str || !*opt->str)
		return false; /* required options are reported elsewhere */
	if (need == NEED_FILE && !strcmp(opt->str, ":memory:")) {
		strbuf_addf(msg, "in-memory SQLite databases are not supported");
		strbuf_addstr(hint, "set options.file to the path of a SQLite database file");
		return true;
	}
	path = config_resolve_path(cfg->root, opt->str);
	if (usable(path, need, &dir))
		goto out;
	bad = true;
	if (opt->secret)
		strbuf_addf(msg, "%s named by %s %s", what, config_option_display(opt),
			    dir ? "is a directory" : "does not exist");
	else
		strbuf_addf(msg, "%s \"%s\" %s", what, path, dir ? "is a directory" : "does not exist");
	if (dir)
		strbuf_addstr(hint, "set options.file to the database file, not its directory");
	else if (opt->str[0] != '/' && (opt->secret || !old_rule_hint(cfg, opt->str, need, hint)))
		strbuf_addf(hint,
			    "relative paths are resolved from the project root %s (the directory holding the "
			    "config directory)",
			    cfg->root);
out:
	free(path);
	return bad;
}

bool dir_seen_check(struct dir_seen *s, const struct stat *st)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ids[i].dev == st->st_dev && s->ids[i].ino == st->st_ino)
			return true;
	ALLOC_GROW(s->ids, s->n + 1, s->alloc);
	s->ids[s->n].dev = st->st_dev;
	s->ids[s->n].ino = st->st_ino;
	s->n++;
	return false;
}

void dir_seen_release(struct dir_seen *s)
{
	free(s->ids);
	memset(s, 0, sizeof(*s));
}

char *config_data_dir(const char *root, const char *data_dir)
{
	char *p, *r;
	if (!data_dir || !*data_dir)
		return NULL;
	p = config_resolve_path(root, data_dir);
	r = realpath(p, NULL);
	free(p);
	return r;
}

/* Is real (absolute, no symlinks) real_dir or below it, with no dot-name below it? */
static bool under(const char *real, const char *real_dir, const char **why)
{
	size_t dl = strlen(real_dir);
	const char *rest;
	if (dl == 1 && real_dir[0] == '/')
		dl = 0; /* "/": every path is below */
	if (strncmp(real, real_dir, dl) || (real[dl] && real[dl] != '/')) {
		*why = "it is outside the data directory";
		return false;
	}
	for (rest = real + dl; *rest; rest++)
		if (rest[0] == '/' && rest[1] == '.') {
			*why = "a name in it starts with \".\" (hidden files and directories such as .joey/ and .git/ hold state, keys and history)";
			return false;
		}
	return true;
}

bool config_path_inside(const char *path, const char *real_dir, const char **why)
{
	char *real = realpath(path, NULL), *head;
	struct strbuf sb = STRBUF_INIT;
	const char *tail;
	bool ok;

	*why = NULL;
	if (real) {
		ok = under(real, real_dir, why);
		free(real);
		return ok;
	}
	/* not there yet: the deepest existing directory, and plain names below it */
	head = xstrdup(path);
	for (;;) {
		char *slash = strrchr(head, '/');
		if (!slash) {
			free(head);
			*why = "it does not resolve to a directory that exists";
			return false;
		}
		*slash = '\0';
		tail = path + (slash - head); /* "/name/..." below the directory tried */
		if ((real = realpath(slash == head ? "/" : head, NULL)))
			break;
	}
	for (const char *p = tail; *p; p++)
		if (p[0] == '/' && (p[1] == '.' || p[1] == '/' || !p[1])) {
			free(head);
			free(real);
			*why = p[1] == '.' ? "a name in it starts with \".\" (or is \"..\")" : "it has an empty name";
			return false;
		}
	if (real[0] == '/' && !real[1])
		tail++; /* "/" + "/x" */
	strbuf_addf(&sb, "%s%s", real, tail);
	ok = under(sb.buf, real_dir, why);
	strbuf_release(&sb);
	free(head);
	free(real);
	return ok;
}

void config_add_path(struct strbuf *sb, const char *root, const char *file)
{
	if (file[0] != '/' && root && *root)
		strbuf_addf(sb, "%s/%s", root, file);
	else
		strbuf_addstr(sb, file);
}
