/*
 * names.c: the compact form of the payloads an SQLite state store keeps.
 *
 * A canonical payload (engine/payload.h) repeats its destination's field names in
 * every row: `{"attributes":{"age":19,"city":"Paris",...},"groups":[]}`. About half of a
 * row's bytes were those names, and writing a row's bytes (the WAL, then the
 * checkpoint) is most of what a first sync costs joey. So a row stores
 *     \x1e <id> \x1e <value 1> \x1e ... \x1e <value n> \x1e <groups>
 * where id names a row of payload_names, which holds the field names as a JSON array
 * (`["age","city",...]`), and each value and the groups are the canonical payload's
 * bytes, unchanged. Reading puts the names back: the payload read is byte for byte the
 * payload written. Anything else is stored as it is (canonical payloads start with
 * '{', the failed and enrich rows' payloads are empty), so rows of older stores and
 * payloads this form cannot hold (a name that needs an escape, an object value, a
 * 0x1e byte anywhere) need no migration and are read as before; one that starts with
 * 0x1e itself (never a canonical payload, but the store keeps any bytes) gets another
 * 0x1e in front, which reading takes off (a packed payload has a digit there).
 *
 * A names row is added only after the commit that first needed it, in a statement of
 * its own, and never removed or changed (state import leaves payload_names alone): a
 * row that refers to names id is written in a later transaction than the one that
 * made id, so every snapshot that sees the row sees its names, and no rollback can
 * take names away that a kept row refers to. Until then (the first transaction of a
 * destination's first run, a mapping just changed), its rows are stored canonical.
 *
 * One struct sq_names per connection (the worker's in lookahead.c has its own): the
 * names it knows, those to add after the commit, and the buffer a decoded payload is
 * in. Owns them until sq_names_release. Called by records.c, lookahead.c, export.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jsonutil.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "state/sqlite/sqlite_internal.h"

#define SEP '\x1e'
static const char head[] = "{\"attributes\":{";
static const char tail[] = "},\"groups\":";
#define HEAD_LEN (sizeof(head) - 1)
#define TAIL_LEN (sizeof(tail) - 1)

/* One list of names: toks holds `"name":` for the first, `,"name":` for the others. */
struct sq_names_entry {
	int64_t id;
	char id_text[24]; /* SEP and id in decimal, as a packed payload starts */
	size_t id_len;
	size_t n;
	struct strbuf toks;
	size_t *tok_end; /* tok i is toks.buf[i ? tok_end[i - 1] : 0 .. tok_end[i]) */
};

void sq_names_release(struct sq_names *nm)
{
	for (size_t i = 0; i < nm->n; i++) {
		strbuf_release(&nm->v[i]->toks);
		free(nm->v[i]->tok_end);
		free(nm->v[i]);
	}
	free(nm->v);
	sq_names_drop_pending(nm);
	free(nm->pending);
	strbuf_release(&nm->scratch);
	strbuf_release(&nm->names);
	memset(nm, 0, sizeof(*nm));
}

void sq_names_drop_pending(struct sq_names *nm)
{
	for (size_t i = 0; i < nm->n_pending; i++)
		strbuf_release(&nm->pending[i]);
	nm->n_pending = 0;
}

/* ---- scanning a canonical payload ---- */

/* Do a and b start with the same n bytes? (Inline: the tokens are short, a call costs more.) */
static inline bool same(const char *a, const char *b, size_t n)
{
	for (; n >= 8; a += 8, b += 8, n -= 8) {
		uint64_t x, y;
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		if (x != y)
			return false;
	}
	while (n--)
		if (*a++ != *b++)
			return false;
	return true;
}

/* Do the payload's last bytes, from p (after the tail) to end, hold just the groups array and its '}'? */
static bool groups_end_ok(const char *p, const char *end)
{
	return end - p >= 3 && *p == '[' && end[-1] == '}' && json_skip_value(p, end) == end - 1;
}

/* Is the name from p to q (the bytes between its quotes) one that needs no escape? */
static bool plain_name(const char *p, const char *q)
{
	for (; p < q; p++)
		if ((unsigned char)*p < 0x20 || *p == '\\')
			return false;
	return true;
}

/* ---- the names a connection knows ---- */

static struct sq_names_entry *entry_new(struct sq_names *nm, int64_t id, const char *json, size_t len)
{
	struct sq_names_entry *e = xcalloc(1, sizeof(*e));
	const char *p = json, *end = json + len;
	strbuf_init(&e->toks, len + 8);
	e->id = id;
	e->id_len = (size_t)snprintf(e->id_text, sizeof(e->id_text), "%c%lld", SEP, (long long)id);
	/* json is ["a","b",...] of plain names (what names_of made, or a store's row) */
	if (p == end || *p++ != '[')
		goto bad;
	while (p < end && *p != ']') {
		const char *q;
		if (*p != '"' || !(q = memchr(p + 1, '"', (size_t)(end - p - 1))))
			goto bad;
		if (!plain_name(p + 1, q))
			goto bad;
		if (e->n)
			strbuf_addch(&e->toks, ',');
		strbuf_add(&e->toks, p, (size_t)(q + 1 - p));
		strbuf_addch(&e->toks, ':');
		e->tok_end = xrealloc(e->tok_end, (e->n + 1) * sizeof(*e->tok_end));
		e->tok_end[e->n++] = e->toks.len;
		p = q + 1;
		if (p < end && *p == ',')
			p++;
		else if (p < end && *p != ']')
			goto bad;
	}
	if (p + 1 != end || !e->n)
		goto bad;
	ALLOC_GROW(nm->v, nm->n + 1, nm->alloc);
	nm->v[nm->n++] = e;
	return e;
bad:
	strbuf_release(&e->toks);
	free(e->tok_end);
	free(e);
	return NULL;
}

static struct sq_names_entry *entry_by_id(struct sq_names *nm, int64_t id)
{
	if (nm->last < nm->n && nm->v[nm->last]->id == id)
		return nm->v[nm->last];
	for (size_t i = 0; i < nm->n; i++)
		if (nm->v[i]->id == id)
			return nm->v[nm->last = i];
	return NULL;
}

/* ---- packing ---- */

/* Pack payload p .. end (a canonical one) with e's names into out; false if they differ. */
static bool pack_with(const struct sq_names_entry *e, const char *p, const char *end, struct strbuf *out)
{
	size_t at = out->len;
	p += HEAD_LEN;
	strbuf_grow(out, (size_t)(end - p) + e->id_len + e->n + 2); /* no growing per value */
	strbuf_add(out, e->id_text, e->id_len);
	for (size_t i = 0; i < e->n; i++) {
		size_t from = i ? e->tok_end[i - 1] : 0, len = e->tok_end[i] - from;
		const char *v;
		if ((size_t)(end - p) < len || !same(p, e->toks.buf + from, len))
			goto differ;
		v = p + len;
		if (!(p = json_skip_value(v, end)))
			goto differ;
		strbuf_addch(out, SEP);
		strbuf_add(out, v, (size_t)(p - v));
	}
	if ((size_t)(end - p) < TAIL_LEN || !same(p, tail, TAIL_LEN) || !groups_end_ok(p + TAIL_LEN, end))
		goto differ;
	p += TAIL_LEN;
	strbuf_addch(out, SEP);
	strbuf_add(out, p, (size_t)(end - 1 - p));
	return true;
differ:
	strbuf_setlen(out, at);
	return false;
}

/* The names of a canonical payload as payload_names holds them, into out; false if it cannot be packed. */
static bool names_of(const char *p, const char *end, struct strbuf *out)
{
	strbuf_reset(out);
	strbuf_addch(out, '[');
	p += HEAD_LEN;
	while (p < end && *p == '"') {
		const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
		if (!q || q + 1 >= end || q[1] != ':')
			return false;
		if (!plain_name(p + 1, q))
			return false;
		if (out->len > 1)
			strbuf_addch(out, ',');
		strbuf_add(out, p, (size_t)(q + 1 - p));
		if (!(p = json_skip_value(q + 2, end)))
			return false;
		if (p < end && *p == ',' && p + 1 < end && p[1] == '"')
			p++;
		else
			break; /* the tail must follow (as pack_with wants): a `,}` is not canonical */
	}
	strbuf_addch(out, ']');
	return out->len > 2 && (size_t)(end - p) >= TAIL_LEN && !memcmp(p, tail, TAIL_LEN) &&
	       groups_end_ok(p + TAIL_LEN, end);
}

/* Append payload's packed form to out: true; false (out unchanged) when it cannot be packed. */
static bool payload_pack(struct sq_names *nm, struct slice payload, struct strbuf *out)
{
	const char *p = payload.ptr, *end = p + payload.len;
	if (payload.len < HEAD_LEN + TAIL_LEN + 3 || memcmp(p, head, HEAD_LEN) || memchr(p, SEP, payload.len))
		return false;
	if (nm->last < nm->n && pack_with(nm->v[nm->last], p, end, out))
		return true;
	for (size_t i = 0; i < nm->n; i++)
		if (i != nm->last && pack_with(nm->v[i], p, end, out)) {
			nm->last = i;
			return true;
		}
	/* names this connection does not know (yet): add them after the commit */
	if (!names_of(p, end, &nm->names))
		return false;
	for (size_t i = 0; i < nm->n_pending; i++)
		if (!strcmp(nm->pending[i].buf, nm->names.buf))
			return false;
	ALLOC_GROW(nm->pending, nm->n_pending + 1, nm->alloc_pending);
	strbuf_init(&nm->pending[nm->n_pending], 0);
	strbuf_add(&nm->pending[nm->n_pending++], nm->names.buf, nm->names.len);
	return false;
}

void sq_payload_store(struct sq_names *nm, struct slice payload, struct strbuf *out)
{
	if (payload_pack(nm, payload, out))
		return;
	if (payload.len && payload.ptr[0] == SEP)
		strbuf_addch(out, SEP); /* not canonical, but kept byte for byte: escaped */
	strbuf_add(out, payload.ptr ? payload.ptr : "", payload.len);
}

/*
 * The id of names json in payload_names (added if new) on db; false on any failure.
 * Looked up first: most names are there already (another process, a connection
 * before), and a read needs no write lock.
 */
static bool register_one(sqlite3 *db, const struct strbuf *json, int64_t *id)
{
	static const char sql[] = "SELECT id FROM payload_names WHERE names = ?1;"
				  "INSERT INTO payload_names (names) VALUES (?1) ON CONFLICT (names) DO NOTHING;"
				  "SELECT id FROM payload_names WHERE names = ?1";
	const char *rest = sql;
	bool ok = true, found = false;
	while (ok && !found && rest && *rest) {
		sqlite3_stmt *s = NULL;
		if (sqlite3_prepare_v2(db, rest, -1, &s, &rest) != SQLITE_OK) {
			ok = false;
			break;
		}
		if (!s)
			break;
		sqlite3_bind_text(s, 1, json->buf, (int)json->len, SQLITE_STATIC);
		int rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*id = sqlite3_column_int64(s, 0);
			found = true;
		} else if (rc != SQLITE_DONE) {
			ok = false;
		}
		sqlite3_finalize(s);
	}
	return ok && found;
}

void sq_names_register(struct sq_names *nm, sqlite3 *db)
{
	for (size_t i = 0; i < nm->n_pending; i++) {
		int64_t id = 0;
		if (!register_one(db, &nm->pending[i], &id))
			log_debug("state: could not add payload names %s: %s", nm->pending[i].buf, sqlite3_errmsg(db));
		else if (!entry_by_id(nm, id))
			(void)entry_new(nm, id, nm->pending[i].buf, nm->pending[i].len);
	}
	sq_names_drop_pending(nm);
}

/* ---- unpacking ---- */

static enum jerr unpack_error(struct jerror *err, const char *path, const char *what)
{
	jerror_set(err, JERR_STATE, "could not read a record's payload in state store \"%s\"", path);
	jerror_detail(err, "%s", what);
	jerror_hint(err, "The store was changed outside joey or is damaged: restore it from a backup, or move it"
			 " aside so that the next run sends every record again.");
	return JERR_STATE;
}

/* The names of id: known, or read from db's payload_names. */
static enum jerr names_by_id(struct sq_names *nm, sqlite3 *db, int64_t id, const char *path,
			     struct sq_names_entry **out, struct jerror *err)
{
	sqlite3_stmt *s = NULL;
	int rc;
	if ((*out = entry_by_id(nm, id)))
		return JERR_OK;
	rc = sqlite3_prepare_v2(db, "SELECT names FROM payload_names WHERE id = ?1", -1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, id);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			*out = entry_new(nm, id, (const char *)sqlite3_column_text(s, 0),
					 (size_t)sqlite3_column_bytes(s, 0));
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		jerror_set(err, JERR_STATE, "could not read the field names of a record's payload in state store \"%s\"",
			   path);
		jerror_detail(err, "%s", sqlite3_errmsg(db));
		return JERR_STATE;
	}
	if (!*out)
		return unpack_error(err, path, rc == SQLITE_ROW ? "its field names are not a list of names"
								: "it refers to field names the store does not have");
	nm->last = nm->n - 1;
	return JERR_OK;
}

enum jerr sq_payload_unpack(struct sq_names *nm, sqlite3 *db, const char *path, struct slice *payload,
			    struct jerror *err)
{
	const char *p = payload->ptr, *end = p + payload->len, *q;
	struct sq_names_entry *e;
	int64_t id = 0;
	enum jerr ret;
	if (!payload->len || *p != SEP)
		return JERR_OK; /* stored as it is */
	if (payload->len > 1 && p[1] == SEP) {
		*payload = (struct slice){ p + 1, payload->len - 1 }; /* escaped (sq_payload_store) */
		return JERR_OK;
	}
	for (q = p + 1; q < end && *q >= '0' && *q <= '9' && id < INT64_MAX / 10 - 9; q++)
		id = id * 10 + (*q - '0');
	if (q == p + 1 || q == end || *q != SEP)
		return unpack_error(err, path, "it starts like a compact payload but has no field names id");
	if ((ret = names_by_id(nm, db, id, path, &e, err)))
		return ret;
	strbuf_reset(&nm->scratch);
	strbuf_add(&nm->scratch, head, HEAD_LEN);
	p = q + 1;
	for (size_t i = 0; i < e->n; i++) {
		size_t from = i ? e->tok_end[i - 1] : 0;
		if (!(q = memchr(p, SEP, (size_t)(end - p))))
			return unpack_error(err, path, "it has fewer values than its field names");
		strbuf_add(&nm->scratch, e->toks.buf + from, e->tok_end[i] - from);
		strbuf_add(&nm->scratch, p, (size_t)(q - p));
		p = q + 1;
	}
	if (memchr(p, SEP, (size_t)(end - p)))
		return unpack_error(err, path, "it has more values than its field names");
	strbuf_add(&nm->scratch, tail, TAIL_LEN);
	strbuf_add(&nm->scratch, p, (size_t)(end - p));
	strbuf_addch(&nm->scratch, '}');
	*payload = (struct slice){ nm->scratch.buf, nm->scratch.len };
	return JERR_OK;
}
