/* write.c: change one object of the config directory (validated, atomic) and the secrets file. */
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
 *     secret that is not on disk), then the config file, each by write_atomic();
 *     generated secrets that only the old object used are dropped afterwards.
 * The staging directory is removed on every path. The directory is never changed
 * before step 6, so any failure before it leaves every file byte-identical.
 */

#define WRITE_MAX_ID 128
#define MAX_WALK_DEPTH 32 /* as the loader */
#define MAX_ENV_NAME 255  /* as the loader's "${NAME}" check */

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

static bool env_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > MAX_ENV_NAME || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

/* "${NAME}" (any text between the braces: the loader reports a bad name). */
static bool is_reference(const char *s, size_t len)
{
	return len > 3 && s[0] == '$' && s[1] == '{' && s[len - 1] == '}';
}

/* Does the class string s (as written) name class c? Case-insensitive, trimmed, as the loader. */
static bool class_matches(const char *s, size_t len, enum cfg_class c)
{
	const char *name = cfg_class_name(c);
	while (len && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	return len == strlen(name) && !strncasecmp(s, name, len);
}

static const char *env_lookup(const struct config_opts *opts, const char *name)
{
	if (opts && opts->getenv_fn)
		return opts->getenv_fn(name, opts->getenv_ctx);
	return getenv(name);
}

/* The directory part of path (owned): "." when there is none. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* ---- files ---- */

/* Read the whole file at path (owned, NUL-terminated) into *buf; ENOENT is JERR_IO too. */
static enum jerr read_whole(const char *path, char **buf, size_t *len, struct jerror *err)
{
	struct stat st;
	size_t n = 0;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return jerror_set(err, JERR_IO, "could not read \"%s\": %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		jerror_set(err, JERR_IO, "could not read \"%s\": %s", path, strerror(errno));
		close(fd);
		return JERR_IO;
	}
	if ((uint64_t)st.st_size > J5_MAX_INPUT) {
		close(fd);
		return jerror_set(err, JERR_IO, "could not read \"%s\": larger than %zu MiB", path,
				  J5_MAX_INPUT >> 20);
	}
	*buf = xmalloc((size_t)st.st_size + 1);
	while (n < (size_t)st.st_size && (got = read(fd, *buf + n, (size_t)st.st_size - n)) > 0)
		n += (size_t)got;
	close(fd);
	(*buf)[n] = '\0';
	*len = n;
	return JERR_OK;
}

static enum jerr fsync_dir(const char *dir, struct jerror *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		jerror_set(err, JERR_IO, "could not sync directory \"%s\": %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return JERR_IO;
	}
	close(fd);
	return JERR_OK;
}

/*
 * Replace path (borrowed) with data[0..len) atomically: a temporary file ".<name>.XXXXXX"
 * in the same directory (a dot-file, so the loader skips one left by a crash), written,
 * given mode, fsync'ed, renamed over path; then the directory is fsync'ed. On failure the
 * temporary file is removed and path is unchanged.
 */
static enum jerr write_atomic(const char *path, const char *data, size_t len, mode_t mode,
			      struct jerror *err)
{
	char *dir = dir_of(path);
	const char *base = strrchr(path, '/');
	struct strbuf tmp = STRBUF_INIT;
	enum jerr rc = JERR_OK;
	size_t off = 0;
	int fd;

	base = base ? base + 1 : path;
	strbuf_addf(&tmp, "%s/.%s.XXXXXX", dir, base);
	fd = mkstemp(tmp.buf);
	if (fd < 0) {
		rc = jerror_set(err, JERR_IO, "could not create a file in \"%s\": %s", dir, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off < len || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
		rc = jerror_set(err, JERR_IO, "could not write \"%s\": %s", tmp.buf, strerror(errno));
		close(fd);
		unlink(tmp.buf);
		goto out;
	}
	if (close(fd) != 0 || rename(tmp.buf, path) != 0) {
		rc = jerror_set(err, JERR_IO, "could not replace \"%s\": %s", path, strerror(errno));
		unlink(tmp.buf);
		goto out;
	}
	rc = fsync_dir(dir, err);
out:
	strbuf_release(&tmp);
	free(dir);
	return rc;
}

/* Plain write for the staging copy (no fsync: it is thrown away). */
static enum jerr write_plain(const char *path, const char *data, size_t len, mode_t mode,
			     struct jerror *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t off = 0;
	if (fd < 0)
		return jerror_set(err, JERR_IO, "could not create \"%s\": %s", path, strerror(errno));
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off < len || close(fd) != 0) {
		if (off < len)
			close(fd);
		return jerror_set(err, JERR_IO, "could not write \"%s\": %s", path, strerror(errno));
	}
	return JERR_OK;
}

/* Create every missing parent directory of root/rel (rel borrowed). */
static enum jerr make_parents(const char *root, const char *rel, struct jerror *err)
{
	struct strbuf p = STRBUF_INIT;
	enum jerr rc = JERR_OK;
	strbuf_addf(&p, "%s/%s", root, rel);
	for (size_t i = strlen(root) + 1; i < p.len; i++) {
		if (p.buf[i] != '/')
			continue;
		p.buf[i] = '\0';
		if (mkdir(p.buf, 0755) != 0 && errno != EEXIST) {
			rc = jerror_set(err, JERR_IO, "could not create directory \"%s\": %s", p.buf,
					strerror(errno));
			break;
		}
		p.buf[i] = '/';
	}
	strbuf_release(&p);
	return rc;
}

/* Remove a directory tree this module created (dirs and regular files only). */
static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	if (d) {
		while ((de = readdir(d))) {
			struct strbuf child = STRBUF_INIT;
			struct stat st;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			strbuf_addf(&child, "%s/%s", path, de->d_name);
			if (lstat(child.buf, &st) == 0 && S_ISDIR(st.st_mode))
				remove_tree(child.buf);
			else
				unlink(child.buf);
			strbuf_release(&child);
		}
		closedir(d);
	}
	if (rmdir(path) != 0 && errno != ENOENT)
		log_warn("could not remove staging directory \"%s\": %s", path, strerror(errno));
}

/* An exclusive flock on a directory; released by close. */
static enum jerr lock_dir(const char *dir, int *fd_out, struct jerror *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*fd_out = -1;
	if (fd < 0)
		return jerror_set(err, errno == ENOENT ? JERR_CONFIG : JERR_IO,
				  "could not open config directory \"%s\": %s", dir, strerror(errno));
	while (flock(fd, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		jerror_set(err, JERR_IO, "could not lock \"%s\": %s", dir, strerror(errno));
		close(fd);
		return JERR_IO;
	}
	*fd_out = fd;
	return JERR_OK;
}

static void unlock_dir(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* ---- walking the directory as the loader does ---- */

struct path_list {
	char **items; /* relative paths (owned) */
	size_t n, alloc;
};

static void path_list_release(struct path_list *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		free(pl->items[i]);
	free(pl->items);
	memset(pl, 0, sizeof(*pl));
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && !strcmp(s + n - k, suffix);
}

/* Every *.json and *.js file under root (what config_load reads), relative paths. */
/* seen: directories entered, so a symbolic link loop is entered once (as the loader) */
static void walk(const char *root, const char *rel, int depth, struct path_list *pl, struct dir_seen *seen)
{
	struct strbuf path = STRBUF_INIT;
	DIR *d;
	struct dirent *de;

	strbuf_addstr(&path, root);
	if (*rel)
		strbuf_addf(&path, "/%s", rel);
	d = opendir(path.buf);
	strbuf_release(&path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct strbuf child = STRBUF_INIT, full = STRBUF_INIT;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (*rel)
			strbuf_addf(&child, "%s/", rel);
		strbuf_addstr(&child, de->d_name);
		strbuf_addf(&full, "%s/%s", root, child.buf);
		if (stat(full.buf, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				if (depth < MAX_WALK_DEPTH && strcmp(de->d_name, "node_modules") && !dir_seen_check(seen, &st))
					walk(root, child.buf, depth + 1, pl, seen);
			} else if (S_ISREG(st.st_mode) &&
				   (ends_with(de->d_name, ".json") || ends_with(de->d_name, ".js"))) {
				ALLOC_GROW(pl->items, pl->n + 1, pl->alloc);
				pl->items[pl->n++] = strbuf_detach(&child, NULL);
			}
		}
		strbuf_release(&child);
		strbuf_release(&full);
	}
	closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_files(const char *root, struct path_list *pl)
{
	struct dir_seen seen = { NULL, 0, 0 };
	struct stat st;
	memset(pl, 0, sizeof(*pl));
	if (stat(root, &st) == 0 && !dir_seen_check(&seen, &st))
		walk(root, "", 0, pl, &seen);
	dir_seen_release(&seen);
	qsort(pl->items, pl->n, sizeof(char *), cmp_str);
}

/* ---- finding an object ---- */

struct found {
	char *file;                /* relative to dir (owned); NULL: not found */
	char *text;                /* the file as read (owned, NUL-terminated) */
	size_t len;
	struct arena arena;        /* holds root */
	struct j5_node *root;      /* the whole file */
	long index;                /* position in the top-level array; -1: the root itself */
	const struct j5_node *obj; /* the object */
};

static bool is_the_object(const struct j5_node *o, enum cfg_class cls, const char *id)
{
	const struct j5_member *cm, *im;
	if (o->type != J5_OBJECT)
		return false;
	cm = j5_member(o, "class");
	im = j5_member(o, "id");
	return cm && im && cm->value->type == J5_STRING && im->value->type == J5_STRING &&
	       !strcmp(im->value->str, id) && class_matches(cm->value->str, cm->value->len, cls);
}

/*
 * Find object (cls, id) in the files pl of dir: the first one in path order, as the
 * loader sees it (files that do not parse are skipped: validation reports them).
 * Returns true with *f filled (release with found_release), false if absent.
 */
static bool find_object(const char *dir, const struct path_list *pl, enum cfg_class cls,
			const char *id, struct found *f)
{
	memset(f, 0, sizeof(*f));
	arena_init(&f->arena);
	for (size_t i = 0; i < pl->n; i++) {
		struct strbuf full = STRBUF_INIT;
		struct jerror ignore = JERROR_INIT;
		struct j5_error je;
		struct j5_node *root;
		char *buf;
		size_t len;
		bool hit = false;

		if (!ends_with(pl->items[i], ".json"))
			continue;
		strbuf_addf(&full, "%s/%s", dir, pl->items[i]);
		if (read_whole(full.buf, &buf, &len, &ignore)) {
			strbuf_release(&full);
			jerror_release(&ignore);
			continue;
		}
		strbuf_release(&full);
		if (!memchr(buf, '{', len) || !json5_parse(buf, len, &f->arena, &root, &je)) {
			free(buf);
			arena_reset(&f->arena);
			continue;
		}
		if (is_the_object(root, cls, id)) {
			f->index = -1;
			f->obj = root;
			hit = true;
		} else if (root->type == J5_ARRAY) {
			for (size_t k = 0; k < root->n && !hit; k++)
				if (is_the_object(root->items[k], cls, id)) {
					f->index = (long)k;
					f->obj = root->items[k];
					hit = true;
				}
		}
		if (hit) {
			f->root = root;
			f->file = xstrdup(pl->items[i]);
			f->text = buf;
			f->len = len;
			return true;
		}
		free(buf);
		arena_reset(&f->arena);
	}
	return false;
}

static void found_release(struct found *f)
{
	free(f->file);
	free(f->text);
	arena_release(&f->arena);
	memset(f, 0, sizeof(*f));
}

/* ---- JSON: JSON5 nodes to jansson, and the pretty printer ---- */

/* A new jansson value (owned) for n (borrowed). */
static json_t *j5_to_json(const struct j5_node *n)
{
	json_t *v;
	switch (n->type) {
	case J5_NULL: return json_null();
	case J5_BOOL: return json_boolean(n->b);
	case J5_NUMBER:
		if (n->is_int && fabs(n->num) < 9007199254740992.0)
			return json_integer((json_int_t)n->num);
		return json_real(n->num); /* finite: the parser rejects the rest */
	case J5_STRING: return json_stringn_nocheck(n->str, n->len);
	case J5_ARRAY:
		v = json_array();
		for (size_t i = 0; i < n->n; i++)
			json_array_append_new(v, j5_to_json(n->items[i]));
		return v;
	case J5_OBJECT:
		v = json_object();
		for (size_t i = 0; i < n->n; i++)
			json_object_set_new_nocheck(v, n->members[i].key, j5_to_json(n->members[i].value));
		return v;
	}
	return json_null();
}

static void add_indent(struct strbuf *sb, int depth)
{
	for (int i = 0; i < depth; i++)
		strbuf_add(sb, "  ", 2);
}

/*
 * The shortest text that reads back as d, kept a real ("2.0"). json_dumps prints 17
 * significant digits ("0.10000000000000001"), which would turn a hand-written 0.1 in
 * an untouched object of an array file into noise.
 */
static void add_real(struct strbuf *sb, double d)
{
	char buf[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	strbuf_addstr(sb, buf);
	if (!strpbrk(buf, ".eE"))
		strbuf_add(sb, ".0", 2);
}

/* Pretty JSON like json_dumps(JSON_INDENT(2) | JSON_PRESERVE_ORDER), reals shortest. */
static void dump_json(struct strbuf *sb, const json_t *v, int depth)
{
	const char *key;
	json_t *val;
	size_t i, n;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (!json_object_size(v)) {
			strbuf_add(sb, "{}", 2);
			break;
		}
		strbuf_add(sb, "{\n", 2);
		n = 0;
		json_object_foreach((json_t *)v, key, val) {
			if (n++)
				strbuf_add(sb, ",\n", 2);
			add_indent(sb, depth + 1);
			strbuf_add_json_string(sb, key, strlen(key));
			strbuf_add(sb, ": ", 2);
			dump_json(sb, val, depth + 1);
		}
		strbuf_addch(sb, '\n');
		add_indent(sb, depth);
		strbuf_addch(sb, '}');
		break;
	case JSON_ARRAY:
		if (!json_array_size(v)) {
			strbuf_add(sb, "[]", 2);
			break;
		}
		strbuf_add(sb, "[\n", 2);
		json_array_foreach((json_t *)v, i, val) {
			if (i)
				strbuf_add(sb, ",\n", 2);
			add_indent(sb, depth + 1);
			dump_json(sb, val, depth + 1);
		}
		strbuf_addch(sb, '\n');
		add_indent(sb, depth);
		strbuf_addch(sb, ']');
		break;
	case JSON_STRING:
		strbuf_add_json_string(sb, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		strbuf_addf(sb, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL: add_real(sb, json_real_value(v)); break;
	case JSON_TRUE: strbuf_add(sb, "true", 4); break;
	case JSON_FALSE: strbuf_add(sb, "false", 5); break;
	case JSON_NULL: strbuf_add(sb, "null", 4); break;
	}
}

/* Pretty text of v (owned), with a final newline when nl. */
static char *json_text(const json_t *v, bool nl)
{
	struct strbuf sb = STRBUF_INIT;
	dump_json(&sb, v, 0);
	if (nl)
		strbuf_addch(&sb, '\n');
	return strbuf_detach(&sb, NULL);
}

/* obj (borrowed) with key inserted after the key `after` (NULL: first): a new object (owned). */
static json_t *insert_key(json_t *obj, const char *after, const char *key, json_t *val)
{
	json_t *out = json_object(), *v;
	const char *k;
	if (!after)
		json_object_set(out, key, val);
	json_object_foreach(obj, k, v) {
		json_object_set(out, k, v);
		if (after && !strcmp(k, after))
			json_object_set(out, key, val);
	}
	if (after && !json_object_get(out, key))
		json_object_set(out, key, val);
	return out;
}

/* ---- splicing: a change keeps every byte of the file outside its object ---- */

/*
 * Users keep the config in git, with comments and JSON5: a write replaces the text of
 * the one object it changes (or removes it and one comma beside it) and leaves every
 * other byte as it was. The result is parsed again and must equal what a rewrite of the
 * whole file would hold; if it does not (some layout this code does not foresee), the
 * file is rewritten as plain JSON, as before, with a warning.
 */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Past whitespace (the JSON5 set) and comments from pos: what lies between two values. */
static size_t skip_gap(const char *s, size_t len, size_t pos)
{
	while (pos < len) {
		const unsigned char *u = (const unsigned char *)s + pos;
		size_t left = len - pos;
		if (is_blank(s[pos]) || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\v' || s[pos] == '\f') {
			pos++;
		} else if (left >= 2 && u[0] == 0xC2 && u[1] == 0xA0) {
			pos += 2;
		} else if (left >= 3 && ((u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) ||
					 (u[0] == 0xE2 && u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9)))) {
			pos += 3;
		} else if (left >= 2 && s[pos] == '/' && s[pos + 1] == '/') {
			while (pos < len && s[pos] != '\n' && s[pos] != '\r')
				pos++;
		} else if (left >= 2 && s[pos] == '/' && s[pos + 1] == '*') {
			pos += 2;
			while (pos < len && !(s[pos] == '*' && pos + 1 < len && s[pos + 1] == '/'))
				pos++;
			pos = pos < len ? pos + 2 : len;
		} else {
			break;
		}
	}
	return pos;
}

static size_t line_start(const char *s, size_t pos)
{
	while (pos && s[pos - 1] != '\n')
		pos--;
	return pos;
}

/* text, each line after the first opened by indent[0..n), line ends written as eol. */
static void add_indented(struct strbuf *sb, const char *text, const char *indent, size_t n, const char *eol)
{
	for (const char *p = text; *p; p++) {
		if (*p == '\n') {
			strbuf_addstr(sb, eol);
			strbuf_add(sb, indent, n);
		} else {
			strbuf_addch(sb, *p);
		}
	}
}

/*
 * The text of f's file with its object replaced by obj's pretty text (indented as the
 * object was), or (obj NULL) removed from the top-level array with one separating comma
 * (and its lines, when it had them to itself). Owned; NULL when the layout is not one
 * this can splice.
 */
static char *splice_text(const struct found *f, const json_t *obj)
{
	const char *src = f->text;
	size_t len = f->len;
	const struct j5_node *v = f->obj;
	const char *eol = strstr(src, "\r\n") ? "\r\n" : "\n";
	struct strbuf sb = STRBUF_INIT;
	size_t a = v->start, b = v->end, comma = SIZE_MAX;

	if (v->end > len || v->start >= v->end)
		return NULL;
	if (obj) {
		size_t ls = line_start(src, a), n = 0;
		char *t = json_text(obj, false);
		while (ls + n < a && is_blank(src[ls + n]))
			n++;
		strbuf_add(&sb, src, a);
		add_indented(&sb, t, src + ls, n, eol);
		strbuf_add(&sb, src + b, len - b);
		free(t);
		return strbuf_detach(&sb, NULL);
	}
	if (f->index < 0)
		return NULL;
	size_t after = skip_gap(src, len, v->end);
	bool tidy = true;
	if (after < len && src[after] == ',') {
		b = after + 1; /* the object and the comma after it */
	} else if (f->index > 0) {
		/* the last element without a trailing comma: the comma before it goes */
		const struct j5_node *prev = f->root->items[f->index - 1];
		size_t pc = skip_gap(src, len, prev->end);
		if (pc >= len || src[pc] != ',' || pc > a)
			return NULL;
		if (!memchr(src + prev->end, '/', a - prev->end)) {
			a = prev->end; /* no comment between: from the end of the one before */
			tidy = false;
		} else {
			comma = pc;
		}
	}
	if (tidy) {
		size_t ls = line_start(src, a), e = b, k = ls;
		while (k < a && is_blank(src[k]))
			k++;
		while (e < len && is_blank(src[e]))
			e++;
		if (k == a && (e == len || src[e] == '\n' || src[e] == '\r')) {
			a = ls; /* alone on its lines: the lines go */
			b = e;
			if (b < len && src[b] == '\r')
				b++;
			if (b < len && src[b] == '\n')
				b++;
		} else {
			b = e;
		}
	}
	if (comma != SIZE_MAX) {
		strbuf_add(&sb, src, comma);
		strbuf_add(&sb, src + comma + 1, a - comma - 1);
	} else {
		strbuf_add(&sb, src, a);
	}
	strbuf_add(&sb, src + b, len - b);
	return strbuf_detach(&sb, NULL);
}

/* Does text parse (JSON5) to exactly want? */
static bool text_holds(const char *text, const json_t *want)
{
	struct arena arena;
	struct j5_node *root;
	struct j5_error je;
	bool same = false;
	arena_init(&arena);
	if (json5_parse(text, strlen(text), &arena, &root, &je)) {
		json_t *got = j5_to_json(root);
		same = json_equal(got, want);
		json_decref(got);
	}
	arena_release(&arena);
	return same;
}

/*
 * The new text of f's file: spliced (obj replaces the object, or NULL: it goes), checked
 * to read back as want (the whole file's new value); else want as plain JSON. Owned.
 */
static char *new_file_text(const struct found *f, const json_t *obj, const json_t *want)
{
	char *t = splice_text(f, obj);
	if (t && text_holds(t, want))
		return t;
	free(t);
	log_warn("%s: the change could not keep the file's comments and layout; it is rewritten as JSON", f->file);
	return json_text(want, true);
}

/* ---- secrets ---- */

struct secret {
	char *name, *value; /* owned */
};

struct secret_list {
	struct secret *items;
	size_t n, alloc;
};

static void secret_list_release(struct secret_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].value);
	}
	free(l->items);
	memset(l, 0, sizeof(*l));
}

/* Is option key of an object of class cls and type (may be NULL) a secret? */
static bool option_sensitive(enum cfg_class cls, const char *type, const char *key)
{
	const struct catalog_option *opts = NULL;
	if (catalog_option_sensitive(key))
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
		if (read_whole(path.buf, &buf, &len, &ignored))
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
static enum jerr take_secrets(json_t *obj, const struct j5_node *old, enum cfg_class cls,
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
		if (len == 0 || is_reference(s, len))
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
			json_object_iter_set_new(options, it, j5_to_json(m->value));
			continue;
		}
		if (len <= MAX_ENV_NAME && !strchr(s, '=')) {
			struct strbuf envn = STRBUF_INIT;
			const char *cn = cfg_class_name(cls);
			strbuf_addstr(&envn, "GROUPAROO_OPTION__");
			for (const char *p = cn; *p; p++)
				strbuf_addch(&envn, toupper((unsigned char)*p));
			strbuf_addf(&envn, "__%s", s);
			if (env_lookup(opts, envn.buf)) {
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
		if (strlen(name) > MAX_ENV_NAME) {
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
static void mask_secrets(json_t *obj, enum cfg_class cls)
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
		    is_reference(json_string_value(v), json_string_length(v)))
			continue;
		json_object_iter_set_new(options, it, json_string("****"));
	}
}

/*
 * Read the secrets file at path (missing: an empty object) into *out (owned): a JSON
 * (or JSON5) object of strings, anything else is JERR_IO naming the file.
 */
static enum jerr secrets_read(const char *path, json_t **out, struct jerror *err)
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
	if ((rc = read_whole(path, &buf, &len, err)))
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
	*out = j5_to_json(root);
out:
	free(buf);
	arena_release(&a);
	return rc;
}

/* Write secrets (borrowed) to path atomically with mode 0600, creating its directory. */
static enum jerr secrets_write(const char *path, const json_t *secrets, struct jerror *err)
{
	char *dir = dir_of(path);
	char *text = json_text(secrets, true);
	enum jerr rc = JERR_OK;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		rc = jerror_set(err, JERR_IO, "could not create directory \"%s\": %s", dir, strerror(errno));
	else
		rc = write_atomic(path, text, strlen(text), 0600, err);
	free(text);
	free(dir);
	return rc;
}

/*
 * Lock the directory of the secrets file, unless it is the directory held by
 * held_fd (the config directory's lock: flock would wait for itself). *fd is -1
 * when nothing was locked.
 */
static enum jerr lock_secrets(const char *path, int held_fd, int *fd, struct jerror *err)
{
	char *dir = dir_of(path);
	struct stat a, b;
	enum jerr rc = JERR_OK;

	*fd = -1;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = jerror_set(err, JERR_IO, "could not create directory \"%s\": %s", dir, strerror(errno));
	} else if (held_fd >= 0 && fstat(held_fd, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev &&
		   a.st_ino == b.st_ino) {
		/* same directory: already locked */
	} else if ((rc = lock_dir(dir, fd, err))) {
		jerror_prefix(err, "secrets file: ");
	}
	free(dir);
	return rc;
}

enum jerr secrets_set(const char *path, const char *name, const char *value, struct jerror *err)
{
	json_t *secrets = NULL;
	enum jerr rc;
	int fd = -1;

	if (!path)
		return jerror_set(err, JERR_USAGE, "no secrets file is configured");
	if (!env_name_ok(name)) {
		jerror_set(err, JERR_USAGE, "invalid secret name \"%.100s\"", name ? name : "");
		jerror_hint(err, "use letters, digits and underscores, not starting with a digit");
		return JERR_USAGE;
	}
	if (!value)
		return jerror_set(err, JERR_USAGE, "secret \"%s\" needs a value", name);
	if ((rc = lock_secrets(path, -1, &fd, err)))
		return rc;
	if (!(rc = secrets_read(path, &secrets, err))) {
		json_object_set_new(secrets, name, json_string_nocheck(value));
		rc = secrets_write(path, secrets, err);
	}
	json_decref(secrets);
	unlock_dir(fd);
	return rc;
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
		o2 = insert_key(obj, NULL, "id", s);
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
		json_t *s = json_string(cname), *o2 = insert_key(obj, "id", "class", s);
		json_decref(s);
		json_decref(obj);
		obj = o2;
	} else if (!json_is_string(cv)) {
		jerror_set(err, JERR_USAGE, "\"class\" of the %s object must be a string", cname);
		jerror_hint(err, "set \"class\": \"%s\", or leave it out", cname);
		json_decref(obj);
		return JERR_USAGE;
	} else if (!class_matches(json_string_value(cv), json_string_length(cv), w->cls)) {
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
	const char *v = env_lookup(se->opts, name);
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
		if (!(rc = make_parents(stage, pl->items[i], err)) && !(rc = read_whole(src.buf, &buf, &len, err))) {
			rc = write_plain(dst.buf, buf, len, 0644, err);
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
	for (size_t i = 0; i < cfg->n_apps; i++)
		if (options_use(&cfg->apps[i]->options, name))
			return true;
	for (size_t i = 0; i < cfg->n_sources; i++)
		if (options_use(&cfg->sources[i]->options, name))
			return true;
	for (size_t i = 0; i < cfg->n_properties; i++)
		if (options_use(&cfg->properties[i]->options, name))
			return true;
	for (size_t i = 0; i < cfg->n_destinations; i++)
		if (options_use(&cfg->destinations[i]->options, name))
			return true;
	for (size_t i = 0; i < cfg->n_schedules; i++)
		if (options_use(&cfg->schedules[i]->options, name))
			return true;
	for (size_t i = 0; i < cfg->n_alerts; i++)
		if (options_use(&cfg->alerts[i]->options, name))
			return true;
	return false;
}

/*
 * After a committed change: drop the generated secrets (JOEY_SECRET_*) that the old
 * object referred to and the new config no longer uses. Failing here is only logged:
 * the change itself is on disk, and an unused secret does no harm.
 */
static void drop_unused_secrets(const char *path, int held_fd, const struct j5_node *old,
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
		if (v->type != J5_STRING || !is_reference(v->str, v->len) || strncmp(v->str, "${JOEY_SECRET_", 14))
			continue;
		name = xstrndup(v->str + 2, v->len - 3);
		if (!cfg_uses_name(cfg, name)) {
			if (!secrets && (lock_secrets(path, held_fd, &fd, &err) || secrets_read(path, &secrets, &err))) {
				free(name);
				goto out;
			}
			if (!json_object_del(secrets, name))
				dropped++;
		}
		free(name);
	}
	if (dropped)
		(void)secrets_write(path, secrets, &err);
out:
	if (err.code)
		log_warn("could not drop unused secrets from \"%s\": %s", path, err.msg.buf);
	json_decref(secrets);
	unlock_dir(fd);
	jerror_release(&err);
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
	if ((rc = lock_dir(real, &lock_fd, err)))
		goto out;

	/* 2. where the object is */
	list_files(real, &pl);
	have = find_object(real, &pl, w->cls, id, &f);
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
	if (obj && (rc = take_secrets(obj, have ? f.obj : NULL, w->cls, id, opts, real, &pl, &add, err)))
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
		stored = json_text(obj, false);
	if (!have) {
		rel = new_file_name(real, w->cls, id);
		if (!rel) {
			rc = jerror_set(err, JERR_IO, "no free file name for %s \"%s\" under %s/", cname, id,
					cfg_class_dir(w->cls));
			jerror_hint(err, "remove the stray %s/%s*.json files", cfg_class_dir(w->cls), id);
			goto out;
		}
		text = json_text(obj, true);
	} else {
		struct stat st;
		rel = xstrdup(f.file);
		strbuf_addf(&path, "%s/%s", real, rel);
		if (stat(path.buf, &st) == 0)
			mode = st.st_mode & 07777;
		strbuf_reset(&path);
		if (f.index < 0) {
			if (obj)
				text = new_file_text(&f, obj, obj);
		} else {
			root = j5_to_json(f.root);
			if (obj)
				json_array_set(root, (size_t)f.index, obj);
			else
				json_array_remove(root, (size_t)f.index);
			if (has_objects(root))
				text = new_file_text(&f, obj, root);
		}
	}

	/* 5. staging */
	if ((rc = stage_create(real, &stage, err)) || (rc = stage_copy(real, &pl, stage, err)))
		goto out;
	strbuf_addf(&path, "%s/%s", stage, rel);
	unlink(path.buf);
	if (text && ((rc = make_parents(stage, rel, err)) || (rc = write_plain(path.buf, text, strlen(text), 0644, err))))
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
		if ((rc = lock_secrets(opts->secrets_path, lock_fd, &secrets_fd, err)) ||
		    (rc = secrets_read(opts->secrets_path, &secrets, err)))
			goto out;
		for (size_t i = 0; i < add.n; i++)
			json_object_set_new(secrets, add.items[i].name, json_string_nocheck(add.items[i].value));
		rc = secrets_write(opts->secrets_path, secrets, err);
		unlock_dir(secrets_fd);
		secrets_fd = -1;
		if (rc)
			goto out;
	}
	strbuf_addf(&path, "%s/%s", real, rel);
	if (text) {
		char *pdir = dir_of(path.buf);
		struct stat st;
		bool made = stat(pdir, &st) != 0;
		if ((rc = make_parents(real, rel, err)) || (made && (rc = fsync_dir(real, err)))) {
			free(pdir);
			goto out;
		}
		free(pdir);
		rc = write_atomic(path.buf, text, strlen(text), mode, err);
	} else if (unlink(path.buf) != 0) {
		rc = jerror_set(err, JERR_IO, "could not remove \"%s\": %s", path.buf, strerror(errno));
	} else {
		char *pdir = dir_of(path.buf);
		rc = fsync_dir(pdir, err);
		free(pdir);
	}
	if (rc)
		goto out;
	if (have)
		drop_unused_secrets(opts ? opts->secrets_path : NULL, lock_fd, f.obj, cfg);
	res->cfg = cfg;
	cfg = NULL;
	res->file = rel;
	rel = NULL;
	res->stored_json = stored;
	stored = NULL;
	rc = JERR_OK;
out:
	if (stage)
		remove_tree(stage);
	unlock_dir(secrets_fd);
	unlock_dir(lock_fd);
	config_free(cfg);
	json_decref(obj);
	json_decref(root);
	json_decref(secrets);
	secret_list_release(&add);
	path_list_release(&pl);
	found_release(&f);
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
	list_files(dir, &pl);
	if (!find_object(dir, &pl, cls, id, &f)) {
		path_list_release(&pl);
		found_release(&f);
		jerror_set(err, JERR_USAGE, "%s \"%s\" does not exist", cfg_class_name(cls), id);
		jerror_detail(err, "no file under \"%s\" defines it", dir);
		return JERR_USAGE;
	}
	obj = j5_to_json(f.obj);
	mask_secrets(obj, cls);
	*json = json_text(obj, false);
	*file = f.file;
	f.file = NULL;
	json_decref(obj);
	path_list_release(&pl);
	found_release(&f);
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
	list_files(dir, &pl);
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
	list_files(dir, &pl);
	for (size_t i = 0; i < pl.n && !known; i++)
		known = !strcmp(pl.items[i], rel);
	path_list_release(&pl);
	if (!known) {
		jerror_set(err, JERR_USAGE, "config file \"%s\" does not exist", rel);
		jerror_detail(err, "only the files the loader reads (*.json, *.js under \"%s\") can be read here", dir);
		return JERR_USAGE;
	}
	struct strbuf path = STRBUF_INIT;
	strbuf_addf(&path, "%s/%s", dir, rel);
	enum jerr rc = read_whole(path.buf, text, &len, err);
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
	if ((rc = lock_dir(real, &lock_fd, err)))
		goto out;
	list_files(real, &pl);
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
	if ((rc = write_plain(path.buf, text, strlen(text), 0644, err)))
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
	if ((rc = write_atomic(path.buf, text, strlen(text), mode, err)))
		goto out;
	res->cfg = cfg;
	cfg = NULL;
	res->file = xstrdup(rel);
	rc = JERR_OK;
out:
	if (stage)
		remove_tree(stage);
	unlock_dir(lock_fd);
	config_free(cfg);
	path_list_release(&pl);
	strbuf_release(&path);
	jerror_release(&lerr);
	free(root_dir);
	free(real);
	free(stage);
	return rc;
}
