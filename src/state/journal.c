/*
 * journal.c: the sent-keys journal of a run (state.h "The sent-keys journal"). Before
 * a request that changes Braze is sent, the keys of its rows are appended to a file
 * (beside an SQLite store; for a PostgreSQL store in this host's $XDG_STATE_HOME/joey
 * or ~/.local/state/joey) with one plain write(): no fsync, as a write() is in the
 * page cache once it returns and survives the process's kill -9; a machine that
 * crashed or rebooted is told by the boot id in the header, and its journals are not
 * trusted. When a run is found abandoned (state.c state_runs_abandon, through the back
 * ends' abandon_keys), the records its journal names are the only ones it may have sent:
 * only they are made pending, instead of every record of the destination. A run
 * abandoned on another host than the one it ran on has no journal there: every record.
 *
 * File: <store>-sent-<run id>, or pg-<XXH3-64 of the store's URL without its password,
 * hex>-sent-<run id> in the directory (made 0700), mode 0600. Header (text):
 *   "joey sent keys 1\n" "boot <boot id>\n" "run <run id>\n" "at <the run's started_at>\n"
 * then one entry per key: 'i' and 8 bytes (int64, little-endian), or 't', 4 bytes of
 * length (little-endian) and the bytes. A run that ends removes its journal after
 * state_run_finish; one that cannot write it removes it (so its abandon falls back to
 * every record) and goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "state/backend.h"

#define JOURNAL_MAGIC "joey sent keys 1\n"
#define BOOT_ID_LEN 36

struct state_journal {
	int fd;
	char *path;
	struct strbuf buf;
};

/* This boot's id (/proc/sys/kernel/random/boot_id) into out (BOOT_ID_LEN + 1); false if unknown. */
static bool boot_id(char out[BOOT_ID_LEN + 1])
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return false;
	bool ok = fgets(out, BOOT_ID_LEN + 1, f) && strlen(out) == BOOT_ID_LEN;
	fclose(f);
	return ok;
}

/*
 * Where a PostgreSQL store's journals are on this host: $XDG_STATE_HOME/joey, else
 * ~/.local/state/joey (appended to out); false without either.
 */
static bool pg_journal_dir(struct strbuf *out)
{
	const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	if (x && *x == '/')
		strbuf_addf(out, "%s/joey", x);
	else if (home && *home == '/')
		strbuf_addf(out, "%s/.local/state/joey", home);
	else
		return false;
	return true;
}

bool state_journal_path(const struct state *st, int64_t run_id, struct strbuf *out)
{
	strbuf_reset(out);
	if (st->ops == &state_pg) {
		/* this host's directory; the store named by its URL without the password */
		if (!st->path || !pg_journal_dir(out))
			return false;
		strbuf_addf(out, "/pg-%016llx-sent-%" PRId64, (unsigned long long)XXH3_64bits(st->path, strlen(st->path)),
			    run_id);
		return true;
	}
	/* a file beside a store file (not one in memory, nor an SQLite URI) */
	if (st->ops != &state_sqlite || !st->location || !*st->location || !strcmp(st->location, ":memory:") ||
	    !strncmp(st->location, "file:", 5))
		return false;
	strbuf_addf(out, "%s-sent-%" PRId64, st->location, run_id);
	return true;
}

/* mkdir -p of the directory of path, each part 0700 when made; false on failure (errno). */
static bool make_parents(const char *path)
{
	char *p = xstrdup(path), *slash = strrchr(p, '/');
	bool ok = true;
	if (slash && slash != p) {
		*slash = '\0';
		for (char *q = p + 1; ok; q++) {
			if (*q != '/' && *q)
				continue;
			char c = *q;
			*q = '\0';
			ok = mkdir(p, 0700) == 0 || errno == EEXIST;
			*q = c;
			if (!c)
				break;
		}
	}
	free(p);
	return ok;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* runs.started_at of a run (exec's row callback; ctx: int64_t, -1 until found). */
static enum jerr started_row(void *ctx, const struct state_value *row, size_t n, struct jerror *err)
{
	(void)err;
	if (n == 1 && row[0].kind == STATE_VAL_INT)
		*(int64_t *)ctx = row[0].i;
	return JERR_OK;
}

struct state_journal *state_journal_start(struct state *st, int64_t run_id)
{
	struct strbuf path = STRBUF_INIT, head = STRBUF_INIT;
	struct state_value id = state_val_int(run_id);
	struct jerror err = JERROR_INIT;
	char boot[BOOT_ID_LEN + 1];
	struct state_journal *j = NULL;
	int64_t started_at = -1;
	int fd;

	if (st->readonly || !state_journal_path(st, run_id, &path) || !boot_id(boot)) {
		strbuf_release(&path);
		return NULL;
	}
	/*
	 * The run's own start, not the clock: a store imported later may hold a run of
	 * this id that started earlier (another store's, killed), and this journal is
	 * not that run's. The reading trusts only a journal whose "at" is its run's start.
	 */
	if (st->ops->exec(st, "read the start of a run", "SELECT started_at FROM runs WHERE id = $1", &id, 1,
			  started_row, &started_at, NULL, &err) ||
	    started_at < 0) {
		log_warn("could not start the sent-keys journal \"%s\": %s; if this run is killed, its "
			 "destination's next run re-sends every record", path.buf,
			 err.msg.len ? err.msg.buf : "the run is not in the store");
		jerror_release(&err);
		strbuf_release(&path);
		return NULL;
	}
	/* a PostgreSQL store's are in a directory of this host's that may not be there yet */
	if (st->ops == &state_pg && !make_parents(path.buf)) {
		log_warn("could not make the directory of the sent-keys journal \"%s\": %s; if this run is killed, "
			 "its destination's next run re-sends every record", path.buf, strerror(errno));
		strbuf_release(&path);
		return NULL;
	}
	/* a file of that name is another store's (the store was made again): not this run's */
	if (unlink(path.buf) && errno != ENOENT) {
		log_warn("could not remove the old sent-keys journal \"%s\": %s; if this run is killed, its "
			 "destination's next run re-sends every record", path.buf, strerror(errno));
		strbuf_release(&path);
		return NULL;
	}
	fd = open(path.buf, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	strbuf_addf(&head, JOURNAL_MAGIC "boot %s\nrun %" PRId64 "\nat %" PRId64 "\n", boot, run_id, started_at);
	if (fd < 0 || !write_all(fd, head.buf, head.len)) {
		log_warn("could not write the sent-keys journal \"%s\": %s; if this run is killed, its "
			 "destination's next run re-sends every record", path.buf, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(path.buf);
		}
		strbuf_release(&path);
		strbuf_release(&head);
		return NULL;
	}
	strbuf_release(&head);
	j = xcalloc(1, sizeof(*j));
	j->fd = fd;
	j->path = strbuf_detach(&path, NULL);
	strbuf_init(&j->buf, 0);
	return j;
}

/* v as n little-endian bytes at p; p + n. */
static unsigned char *put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	return p + n;
}

enum jerr state_journal_add(struct state_journal *j, const struct rkey *const *keys, size_t n, struct jerror *err)
{
	size_t size = 0;
	if (!j || j->fd < 0)
		return JERR_OK;
	for (size_t i = 0; i < n; i++)
		size += keys[i]->is_int ? 9 : 5 + keys[i]->text.len;
	/* the entries encoded in place: one strbuf_addch per byte was most of a run's journal cost */
	strbuf_reset(&j->buf);
	strbuf_grow(&j->buf, size);
	unsigned char *p = (unsigned char *)j->buf.buf;
	for (size_t i = 0; i < n; i++) {
		const struct rkey *k = keys[i];
		if (k->is_int) {
			*p++ = 'i';
			p = put_le(p, (uint64_t)k->i, 8);
		} else {
			*p++ = 't';
			p = put_le(p, (uint64_t)k->text.len, 4);
			if (k->text.len)
				memcpy(p, k->text.ptr, k->text.len);
			p += k->text.len;
		}
	}
	strbuf_setlen(&j->buf, size);
	if (write_all(j->fd, j->buf.buf, j->buf.len)) {
		/* taken by another run's abandon (this run's lock was taken over): send no more */
		struct stat sb;
		if (fstat(j->fd, &sb) == 0 && sb.st_nlink > 0)
			return JERR_OK;
		jerror_set(err, JERR_STATE, "this run's sent-keys journal \"%s\" was taken by another run", j->path);
		jerror_detail(err, "another run of the destination took its lock (no heartbeat for too long) and made "
				   "what this run sent pending");
		jerror_hint(err, "nothing more is sent; the destination's next run sends what this one did not");
		return JERR_STATE;
	}
	/* a journal that misses keys must not be trusted: without it, every record is re-sent */
	int e = errno;
	close(j->fd);
	j->fd = -1;
	if (unlink(j->path) == 0 || errno == ENOENT) {
		log_warn("could not write the sent-keys journal \"%s\": %s; it is removed, so if this run is "
			 "killed, its destination's next run re-sends every record", j->path, strerror(e));
		return JERR_OK;
	}
	jerror_set(err, JERR_IO, "could not write the sent-keys journal \"%s\": %s", j->path, strerror(e));
	jerror_detail(err, "removing it failed too: %s", strerror(errno));
	jerror_hint(err, "free space in the state store's directory, or remove the file; nothing more is sent "
			 "until then");
	return JERR_IO;
}

void state_journal_finish(struct state_journal *j, bool remove)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	if (remove && unlink(j->path) && errno != ENOENT)
		log_warn("could not remove the sent-keys journal \"%s\": %s", j->path, strerror(errno));
	free(j->path);
	strbuf_release(&j->buf);
	free(j);
}

/* uint of n little-endian bytes at p */
static uint64_t get_le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* The value of header line "<name> <value>\n" at *p (advanced past it); false if not there. */
static bool header_line(const char **p, const char *end, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);
	const char *eol = memchr(*p, '\n', (size_t)(end - *p));
	if (!eol || (size_t)(eol - *p) <= nl + 1 || memcmp(*p, name, nl) || (*p)[nl] != ' ' ||
	    (size_t)(eol - *p - (ptrdiff_t)nl - 1) >= size)
		return false;
	memcpy(out, *p + nl + 1, (size_t)(eol - *p) - nl - 1);
	out[(size_t)(eol - *p) - nl - 1] = '\0';
	*p = eol + 1;
	return true;
}

enum journal_read state_journal_read(const struct state *st, int64_t run_id, int64_t started_at,
				     state_journal_key_fn fn, void *ctx)
{
	struct strbuf path = STRBUF_INIT, data = STRBUF_INIT;
	char boot[BOOT_ID_LEN + 1], v[64];
	enum journal_read ret = JOURNAL_UNTRUSTED;
	int fd = -1;

	if (!state_journal_path(st, run_id, &path) || !boot_id(boot))
		goto out;
	fd = open(path.buf, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = errno == ENOENT ? JOURNAL_MISSING : JOURNAL_UNTRUSTED;
		goto out;
	}
	/*
	 * Taken before it is read: a run still alive (its lock was taken over) writes each
	 * request's keys and then finds its journal gone, so it sends nothing it did not
	 * write before this (state_journal_add), and all that is read below.
	 */
	if (unlink(path.buf) && errno != ENOENT)
		goto out;
	for (;;) {
		strbuf_grow(&data, 65536);
		ssize_t r = read(fd, data.buf + data.len, 65536);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto out;
		if (r == 0)
			break;
		strbuf_setlen(&data, data.len + (size_t)r);
	}
	const char *p = data.buf, *end = data.buf + data.len;
	char *e;
	if (data.len < strlen(JOURNAL_MAGIC) || memcmp(p, JOURNAL_MAGIC, strlen(JOURNAL_MAGIC)))
		goto out;
	p += strlen(JOURNAL_MAGIC);
	/* another boot: the page cache it was written to may be gone (a crash, a power loss) */
	if (!header_line(&p, end, "boot", v, sizeof(v)) || strcmp(v, boot))
		goto out;
	if (!header_line(&p, end, "run", v, sizeof(v)) || strtoll(v, &e, 10) != run_id || *e)
		goto out;
	/* another start: another store's run of the same id (one made again, or imported) */
	if (!header_line(&p, end, "at", v, sizeof(v)) || strtoll(v, &e, 10) != started_at || *e)
		goto out;
	/* the entries; a cut last one was being written when the process died: not sent */
	while (p < end) {
		const unsigned char *q = (const unsigned char *)p;
		struct rkey k = { 0 };
		size_t left = (size_t)(end - p);
		if (*q == 'i') {
			if (left < 9)
				break;
			k.is_int = true;
			k.i = (int64_t)get_le(q + 1, 8);
			p += 9;
		} else if (*q == 't') {
			if (left < 5 || get_le(q + 1, 4) > left - 5)
				break;
			size_t len = (size_t)get_le(q + 1, 4);
			k.text = (struct slice){ p + 5, len };
			p += 5 + len;
		} else {
			goto out; /* not an entry: not a journal joey wrote */
		}
		if (fn(ctx, &k))
			goto out;
	}
	ret = JOURNAL_OK;
out:
	if (fd >= 0)
		close(fd);
	strbuf_release(&path);
	strbuf_release(&data);
	return ret;
}

void state_journal_remove(const struct state *st, int64_t run_id)
{
	struct strbuf path = STRBUF_INIT;
	if (state_journal_path(st, run_id, &path) && unlink(path.buf) && errno != ENOENT)
		log_warn("could not remove the sent-keys journal \"%s\": %s", path.buf, strerror(errno));
	strbuf_release(&path);
}
