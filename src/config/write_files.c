/*
 * write_files.c: the file side of config writes: reading whole files, atomic and plain
 * writes, directory locks, and walking and searching the config directory the way
 * config_load does. Owns nothing beyond each call (results are handed to the caller,
 * see write_internal.h). Called by write.c and write_secrets.c.
 */
#include "config/write_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "config/paths.h"

#define MAX_WALK_DEPTH 32 /* as the loader */

/* Does the class string s (as written) name class c? Case-insensitive, trimmed, as the loader. */
bool cw_class_matches(const char *s, size_t len, enum cfg_class c)
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

/* The directory part of path (owned): "." when there is none. */
char *cw_dir_of(const char *path)
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
enum jerr cw_read_whole(const char *path, char **buf, size_t *len, struct jerror *err)
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

enum jerr cw_fsync_dir(const char *dir, struct jerror *err)
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
 * Write data[0..len) to fd, again after EINTR and short writes; returns how many bytes
 * were written (less than len: errno says why, or 0 bytes were taken).
 */
static size_t write_all(int fd, const char *data, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	return off;
}

/*
 * Replace path (borrowed) with data[0..len) atomically: a temporary file ".<name>.XXXXXX"
 * in the same directory (a dot-file, so the loader skips one left by a crash), written,
 * given mode, fsync'ed, renamed over path; then the directory is fsync'ed. On failure the
 * temporary file is removed and path is unchanged.
 */
enum jerr cw_write_atomic(const char *path, const char *data, size_t len, mode_t mode,
			      struct jerror *err)
{
	char *dir = cw_dir_of(path);
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
	off = write_all(fd, data, len);
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
	rc = cw_fsync_dir(dir, err);
out:
	strbuf_release(&tmp);
	free(dir);
	return rc;
}

/* Plain write for the staging copy (no fsync: it is thrown away). */
enum jerr cw_write_plain(const char *path, const char *data, size_t len, mode_t mode,
			     struct jerror *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t off = 0;
	if (fd < 0)
		return jerror_set(err, JERR_IO, "could not create \"%s\": %s", path, strerror(errno));
	off = write_all(fd, data, len);
	if (off < len || close(fd) != 0) {
		if (off < len)
			close(fd);
		return jerror_set(err, JERR_IO, "could not write \"%s\": %s", path, strerror(errno));
	}
	return JERR_OK;
}

/* Create every missing parent directory of root/rel (rel borrowed). */
enum jerr cw_make_parents(const char *root, const char *rel, struct jerror *err)
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
void cw_remove_tree(const char *path)
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
				cw_remove_tree(child.buf);
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
enum jerr cw_lock_dir(const char *dir, int *fd_out, struct jerror *err)
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

enum jerr cw_open_dir(const char *dir, char **real, int *lock_fd, struct path_list *pl, struct jerror *err)
{
	enum jerr rc;

	*real = realpath(dir, NULL);
	if (!*real)
		return jerror_set(err, errno == ENOENT ? JERR_CONFIG : JERR_IO,
				  "could not open config directory \"%s\": %s", dir, strerror(errno));
	if ((rc = cw_lock_dir(*real, lock_fd, err)))
		return rc;
	cw_list_files(*real, pl);
	return JERR_OK;
}

void cw_unlock_dir(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* ---- walking the directory as the loader does ---- */

void cw_path_list_release(struct path_list *pl)
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

void cw_list_files(const char *root, struct path_list *pl)
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

static bool is_the_object(const struct j5_node *o, enum cfg_class cls, const char *id)
{
	const struct j5_member *cm, *im;
	if (o->type != J5_OBJECT)
		return false;
	cm = j5_member(o, "class");
	im = j5_member(o, "id");
	return cm && im && cm->value->type == J5_STRING && im->value->type == J5_STRING &&
	       !strcmp(im->value->str, id) && cw_class_matches(cm->value->str, cm->value->len, cls);
}

/*
 * Find object (cls, id) in the files pl of dir: the first one in path order, as the
 * loader sees it (files that do not parse are skipped: validation reports them).
 * Returns true with *f filled (release with found_release), false if absent.
 */
bool cw_find_object(const char *dir, const struct path_list *pl, enum cfg_class cls,
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
		if (cw_read_whole(full.buf, &buf, &len, &ignore)) {
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

void cw_found_release(struct found *f)
{
	free(f->file);
	free(f->text);
	arena_release(&f->arena);
	memset(f, 0, sizeof(*f));
}

