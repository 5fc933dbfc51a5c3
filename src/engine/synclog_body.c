/*
 * synclog_body.c: the sync log's names (operations, statuses, error codes) and the
 * binary body format of an outbox row: a synclog_body collects a batch's entries and
 * encodes them; synclog_body_decode reads one back. Pure functions over the caller's
 * buffers; called by the run's side (synclog.c), the writer and the outbox tools.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "engine/synclog_internal.h"

/* ---- names ---- */

const char *synclog_op_name(enum synclog_op op)
{
	static const char *const names[] = { "create", "update", "delete", "unsubscribe", "enrich" };
	return (unsigned)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

const char *synclog_status_name(enum synclog_status s)
{
	static const char *const names[] = { "confirmed", "failed", "not_in_braze" };
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

const char *synclog_error_code(const char *msg, bool local, char buf[16])
{
	if (local)
		return "local";
	if (!msg)
		return "rejected";
	if (strstr(msg, "gave up"))
		return "retries_exhausted";
	const char *h = strstr(msg, "HTTP ");
	if (h && h[5] >= '1' && h[5] <= '5' && h[6] >= '0' && h[6] <= '9' && h[7] >= '0' && h[7] <= '9') {
		snprintf(buf, 16, "http_%c%c%c", h[5], h[6], h[7]);
		return buf;
	}
	return "rejected";
}

/* ---- the body format ---- */

/*
 * A body is the log rows of one batch: "JL", version 1, flags 0; the run id (8 bytes);
 * the destination (4-byte length, bytes); a dictionary of strings (count, then length
 * and bytes each) that the rows refer to by index (a batch's rows share their changed
 * fields and errors); then the rows (count; each: op, status, key kind, local flag,
 * key integer, key text, attempt, time, changed and error indexes, NONE for none).
 * Integers are little-endian.
 */
#define BODY_VERSION 1
#define NONE 0xffffffffu

static void put_u32(struct strbuf *sb, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			       (unsigned char)(v >> 24) };
	strbuf_add(sb, b, 4);
}

static void put_u64(struct strbuf *sb, uint64_t v)
{
	put_u32(sb, (uint32_t)v);
	put_u32(sb, (uint32_t)(v >> 32));
}

void synclog_body_begin(struct synclog_body *b)
{
	memset(b, 0, sizeof(*b));
	strbuf_init(&b->rows, 0);
	strbuf_init(&b->strings, 0);
}

void synclog_body_release(struct synclog_body *b)
{
	strbuf_release(&b->rows);
	strbuf_release(&b->strings);
	free(b->dict);
	memset(b, 0, sizeof(*b));
}

/* Index of s in the dictionary, added if new; NONE for an empty s. */
static uint32_t intern(struct synclog_body *b, struct slice s)
{
	if (!s.len)
		return NONE;
	for (uint32_t i = 0; i < b->n_strings; i++)
		if (slice_eq(b->dict[i], s))
			return i;
	put_u32(&b->strings, (uint32_t)s.len);
	strbuf_add(&b->strings, s.ptr, s.len);
	ALLOC_GROW(b->dict, (size_t)b->n_strings + 1, b->dict_alloc);
	b->dict[b->n_strings] = s; /* borrowed from the caller until the body ends */
	return b->n_strings++;
}

void synclog_body_add(struct synclog_body *b, const struct synclog_entry *e)
{
	unsigned char head[4] = { (unsigned char)e->op, (unsigned char)e->status, e->key.is_int ? 1 : 0,
				  e->local ? 1 : 0 };
	uint32_t changed = intern(b, e->changed), error = intern(b, e->error);
	if (e->status == SYNCLOG_FAILED && !e->error.len)
		error = NONE;
	strbuf_add(&b->rows, head, 4);
	put_u64(&b->rows, (uint64_t)e->key.i);
	put_u32(&b->rows, (uint32_t)e->key.text.len);
	strbuf_add(&b->rows, e->key.text.ptr, e->key.text.len);
	put_u32(&b->rows, (uint32_t)e->attempt);
	put_u64(&b->rows, (uint64_t)e->at_ms);
	put_u32(&b->rows, changed);
	put_u32(&b->rows, error);
	b->n_rows++;
}

void synclog_body_end(struct synclog_body *b, int64_t run_id, const char *dest_id, struct strbuf *out)
{
	static const unsigned char magic[4] = { 'J', 'L', BODY_VERSION, 0 };
	strbuf_reset(out);
	strbuf_add(out, magic, 4);
	put_u64(out, (uint64_t)run_id);
	put_u32(out, (uint32_t)strlen(dest_id));
	strbuf_addstr(out, dest_id);
	put_u32(out, b->n_strings);
	strbuf_add(out, b->strings.buf, b->strings.len);
	put_u32(out, b->n_rows);
	strbuf_add(out, b->rows.buf, b->rows.len);
	strbuf_reset(&b->rows);
	strbuf_reset(&b->strings);
	b->n_rows = b->n_strings = 0;
}

struct reader {
	const unsigned char *p, *end;
	bool bad;
};

/* The run id in a body's header (0 for a body too short to have one). */
int64_t synclog_body_run_id(struct slice body)
{
	const unsigned char *p = (const unsigned char *)body.ptr + 4;
	uint64_t v = 0;
	if (body.len < 12)
		return 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return (int64_t)v;
}

static uint32_t get_u32(struct reader *r)
{
	if (r->end - r->p < 4) {
		r->bad = true;
		r->p = r->end;
		return 0;
	}
	uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
	r->p += 4;
	return v;
}

static uint64_t get_u64(struct reader *r)
{
	uint64_t lo = get_u32(r);
	return lo | (uint64_t)get_u32(r) << 32;
}

static struct slice get_bytes(struct reader *r, uint32_t n)
{
	if ((size_t)(r->end - r->p) < n) {
		r->bad = true;
		r->p = r->end;
		return (struct slice){ "", 0 };
	}
	struct slice s = { (const char *)r->p, n };
	r->p += n;
	return s;
}

enum jerr synclog_body_decode(struct slice body, int64_t *run_id, struct slice *dest,
			      enum jerr (*fn)(void *ctx, const struct synclog_entry *e, struct jerror *err), void *ctx,
			      uint32_t *n_rows, struct jerror *err)
{
	struct reader r = { (const unsigned char *)body.ptr, (const unsigned char *)body.ptr + body.len, false };
	struct slice *dict = NULL;
	enum jerr rc = JERR_OK;
	char num[24];

	*n_rows = 0;
	if (body.len < 4 || memcmp(body.ptr, "JL", 2) || (unsigned char)body.ptr[2] != BODY_VERSION)
		return jerror_set(err, JERR_STATE, "a sync log outbox row is not in this joey's format (version %d)",
				  body.len >= 3 ? (unsigned char)body.ptr[2] : 0);
	r.p += 4;
	*run_id = (int64_t)get_u64(&r);
	*dest = get_bytes(&r, get_u32(&r));
	uint32_t ns = get_u32(&r);
	if (ns > body.len)
		r.bad = true;
	dict = xcalloc(ns ? ns : 1, sizeof(*dict));
	for (uint32_t i = 0; i < ns && !r.bad; i++)
		dict[i] = get_bytes(&r, get_u32(&r));
	uint32_t n = get_u32(&r);
	for (uint32_t i = 0; i < n && !r.bad && !rc; i++) {
		struct synclog_entry e = { 0 };
		struct slice head = get_bytes(&r, 4);
		if (r.bad)
			break;
		e.op = (enum synclog_op)(unsigned char)head.ptr[0];
		e.status = (enum synclog_status)(unsigned char)head.ptr[1];
		e.key.is_int = head.ptr[2] != 0;
		e.local = head.ptr[3] != 0;
		e.key.i = (int64_t)get_u64(&r);
		e.key.text = get_bytes(&r, get_u32(&r));
		e.attempt = (int)get_u32(&r);
		e.at_ms = (int64_t)get_u64(&r);
		uint32_t c = get_u32(&r), x = get_u32(&r);
		if (r.bad || (c != NONE && c >= ns) || (x != NONE && x >= ns) || e.op > SYNCLOG_ENRICH ||
		    e.status > SYNCLOG_NOT_IN_BRAZE) {
			r.bad = true;
			break;
		}
		if (e.key.is_int && !e.key.text.len) {
			int k = snprintf(num, sizeof(num), "%" PRId64, e.key.i);
			e.key.text = (struct slice){ num, (size_t)k };
		}
		e.changed = c == NONE ? (struct slice){ "", 0 } : dict[c];
		e.error = x == NONE ? (struct slice){ "", 0 } : dict[x];
		(*n_rows)++;
		if (fn)
			rc = fn(ctx, &e, err);
	}
	free(dict);
	if (!rc && r.bad)
		rc = jerror_set(err, JERR_STATE, "a sync log outbox row is damaged (%zu bytes)", body.len);
	return rc;
}
