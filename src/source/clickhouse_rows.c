/*
 * clickhouse_rows.c: reading a ClickHouse source's rows (clickhouse.c's design note):
 * the cursor (open, next, close) over a streamed TabSeparatedWithNamesAndTypes answer,
 * checked line by line so that a server failing mid-stream is an error, never the end
 * of the rows; values by the column's ClickHouse type. The cursor owns its request, line
 * copy, fields and arena. Called through source_clickhouse (clickhouse.c).
 */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "base/arena.h"
#include "base/xalloc.h"
#include "source/chwire.h"
#include "source/clickhouse_internal.h"
#include "source/source.h"
#include "source/sqlgen.h"

/* ---- reading rows ---- */

static bool field_value(struct ch_cursor *cur, size_t idx, const struct cfg_property *prop, struct value *v)
{
	const struct chw_field *f = &cur->fields[idx];
	enum chw_type t = cur->types[idx];

	*v = VALUE_NULL;
	if (f->null)
		return true;
	if (t == CHW_ARRAY) {
		struct chw_item *items;
		size_t n;
		if (!chw_array_items(f->s, f->len, &cur->arena, &items, &n))
			return false;
		struct value *vals = arena_alloc(&cur->arena, (n ? n : 1) * sizeof(*vals));
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			struct value iv = VALUE_NULL;
			if (items[i].null)
				continue;
			if (!value_coerce_text(prop->type, items[i].s, items[i].len, &cur->arena, &iv))
				cur->row.n_invalid++;
			else if (iv.kind != VAL_NULL)
				vals[k++] = iv;
		}
		if (!prop->is_array) /* an array column read into a scalar property: its text */
			return value_coerce_text(prop->type, f->s, f->len, &cur->arena, v);
		v->kind = VAL_ARRAY;
		v->u.arr.items = vals;
		v->u.arr.n = k;
		return true;
	}
	if (prop->is_array) {
		/* a scalar column into an array property: one item */
		struct value *one = arena_alloc(&cur->arena, sizeof(*one));
		*one = VALUE_NULL;
		if (!value_coerce_text(prop->type, f->s, f->len, &cur->arena, one))
			return false;
		v->kind = VAL_ARRAY;
		v->u.arr.items = one;
		v->u.arr.n = one->kind != VAL_NULL;
		return true;
	}
	if (!sql_is_text_type(prop->type) && (t == CHW_INT || t == CHW_FLOAT || t == CHW_DECIMAL))
		return sql_value_from_number_text(prop->type, f->s, f->len, v);
	return sql_value_from_text(prop->type, f->s, f->len, &cur->arena, v);
}

/* The next line of the streamed answer (in place, without '\n', NUL-terminated), or NULL at its end. */
static enum jerr next_line(struct ch_cursor *cur, char **line, size_t *len, struct jerror *err)
{
	struct ch_req *r = cur->req;
	size_t scanned = 0;
	*line = NULL;
	for (;;) {
		char *s = r->body.buf + r->pos;
		size_t avail = r->body.len - r->pos;
		char *nl = avail > scanned ? memchr(s + scanned, '\n', avail - scanned) : NULL;
		if (nl) {
			*len = (size_t)(nl - s);
			strbuf_reset(&cur->line);
			strbuf_add(&cur->line, s, *len + 1); /* with the '\n': room for a NUL */
			cur->line.buf[*len] = '\0';
			*line = cur->line.buf;
			r->pos += *len + 1;
			return JERR_OK;
		}
		scanned = avail;
		if (r->done)
			break;
		if (avail > CH_LINE_MAX) {
			jerror_set(err, JERR_SOURCE, "source \"%s\": a row of the result is larger than %u MiB",
				   sql_source_id(cur->src), CH_LINE_MAX >> 20);
			return JERR_SOURCE;
		}
		ch_req_step(r);
		if (r->pos == 0 && s != r->body.buf)
			scanned = 0; /* the buffer moved: search again */
		if (r->body.buf + r->pos != s)
			scanned = 0;
	}
	/* the transfer ended: a failure, an error answer, or a last line without '\n' */
	int code = 0;
	struct strbuf what = STRBUF_INIT;
	strbuf_addf(&what, "source \"%s\": query failed", sql_source_id(cur->src));
	if (r->result != CURLE_OK || r->status != 200) {
		enum jerr rc = ch_req_error(r, what.buf, &code, err);
		cur->last_code = code;
		if (r->result != CURLE_OK && r->status == 200 && rc == JERR_SOURCE)
			jerror_hint(err, "the connection ended in the middle of the result: the run stops "
					 "here, and no record it did not read is taken for deleted");
		strbuf_release(&what);
		return rc;
	}
	size_t avail = r->body.len - r->pos;
	if (avail) {
		const char *s = r->body.buf + r->pos;
		struct strbuf msg = STRBUF_INIT;
		if (chw_exception(s, avail, &code, &msg)) {
			jerror_set(err, JERR_SOURCE, "%s after %" PRIu64 " rows", what.buf, cur->base.rows);
			jerror_detail(err, "ClickHouse at %s: %s", cur->conn->base_url, msg.buf);
		} else {
			jerror_set(err, JERR_SOURCE, "%s: the result ends in an incomplete row", what.buf);
			jerror_detail(err, "%.200s", s);
		}
		jerror_hint(err, "the server failed after it had sent the first rows: the run stops "
				 "here, and no record it did not read is taken for deleted");
		cur->last_code = code;
		strbuf_release(&msg);
		strbuf_release(&what);
		return JERR_SOURCE;
	}
	strbuf_release(&what);
	return JERR_OK; /* the end */
}

/* A line that is not a row of n fields: a mid-stream exception, or garbage. */
static enum jerr bad_line(struct ch_cursor *cur, const char *line, size_t len, struct jerror *err)
{
	int code = 0;
	struct strbuf msg = STRBUF_INIT;
	const char *tag = cur->req->exc_tag;
	const char *at = tag[0] && len >= strlen(tag) ? strstr(line, tag) : NULL;
	const char *text = at ? at + strlen(tag) : line;
	while (at && (*text == '\n' || *text == ' ' || *text == '\r'))
		text++;
	/* the exception glued to a partial row: "...\tCode: 395, e.displayText() = ..." */
	const char *glued = at ? NULL : strstr(line, "Code: ");
	if (glued && glued != line && chw_exception(glued, len - (size_t)(glued - line), &code, NULL))
		text = glued;
	if (chw_exception(text, len - (size_t)(text - line), &code, &msg) || at) {
		jerror_set(err, JERR_SOURCE, "source \"%s\": query failed after %" PRIu64 " rows",
			   sql_source_id(cur->src), cur->base.rows);
		jerror_detail(err, "ClickHouse at %s: %s", cur->conn->base_url, msg.len ? msg.buf : text);
		jerror_hint(err, "the server failed after it had sent the first rows: the run stops "
				 "here, and no record it did not read is taken for deleted");
	} else {
		jerror_set(err, JERR_SOURCE, "source \"%s\": malformed row from the server", sql_source_id(cur->src));
		jerror_detail(err, "expected %zu tab-separated fields: \"%.100s\"", cur->n_fields, line);
	}
	cur->last_code = code;
	strbuf_release(&msg);
	return JERR_SOURCE;
}

/* The next row into cur->fields (*got), or the end. */
static enum jerr fetch(struct ch_cursor *cur, bool *got, struct jerror *err)
{
	char *line;
	size_t len;
	*got = false;
	enum jerr rc = next_line(cur, &line, &len, err);
	if (rc)
		return rc;
	if (!line) {
		cur->done = true;
		return JERR_OK;
	}
	const char *tag = cur->req->exc_tag;
	if ((tag[0] && strstr(line, tag)) || !chw_split_tsv(line, len, cur->fields, cur->n_fields))
		return bad_line(cur, line, len, err);
	*got = true;
	return JERR_OK;
}

/* The two header lines: names, then types (one per column, checked against need). */
static enum jerr read_header(struct ch_cursor *cur, size_t need, struct jerror *err)
{
	char *line;
	size_t len;
	enum jerr rc;
	for (int k = 0; k < 2; k++) {
		if ((rc = next_line(cur, &line, &len, err)))
			return rc;
		if (!line)
			return jerror_set(err, JERR_SOURCE, "source \"%s\": the server sent no result header",
					  sql_source_id(cur->src));
		size_t n = 1;
		for (size_t i = 0; i < len; i++)
			n += line[i] == '\t';
		if (n != need) {
			int code;
			if (chw_exception(line, len, &code, NULL))
				return bad_line(cur, line, len, err);
			return jerror_set(err, JERR_SOURCE, "source \"%s\": the query has %zu columns, not %zu",
					  sql_source_id(cur->src), n, need);
		}
		if (k == 0)
			continue;
		struct chw_field *f = xcalloc(need, sizeof(*f));
		if (!chw_split_tsv(line, len, f, need)) {
			free(f);
			return bad_line(cur, line, len, err);
		}
		for (size_t i = 0; i < need; i++) {
			bool nullable;
			const char *inner;
			size_t il;
			cur->types[i] = chw_type_parse(f[i].s, f[i].len, &nullable, &inner, &il);
			if (cur->since_col > 0 && i == (size_t)cur->since_col)
				cur->since_f32 = cur->types[i] == CHW_FLOAT && il == 7 && !memcmp(inner, "Float32", 7);
		}
		free(f);
	}
	return JERR_OK;
}

/*
 * The mark text of since field f (not NULL), in cur's arena for a Float32
 * (ch_cursor.since_f32); empty for a float's inf or nan (source_since_unordered).
 */
static struct slice since_text(struct ch_cursor *cur, const struct chw_field *f)
{
	struct slice t = { f->s, f->len };
	char buf[64], *end;
	if (cur->types[cur->since_col] == CHW_FLOAT && source_since_unordered(f->s, f->len))
		return (struct slice){ "", 0 }; /* inf, nan: never a mark */
	if (!cur->since_f32 || !f->len || f->len >= sizeof(buf))
		return t;
	memcpy(buf, f->s, f->len);
	buf[f->len] = '\0';
	float v = strtof(buf, &end);
	if (end == buf || *end || !isfinite(v))
		return t;
	return source_since_double((double)v, &cur->arena);
}

static enum jerr ch_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	struct ch_cursor *cur = (struct ch_cursor *)base;
	struct source_row *r = &cur->row;
	enum jerr rc;

	*row = NULL;
	for (;;) {
		if (cur->pending) {
			cur->pending = false;
		} else {
			bool got;
			if (cur->done)
				return JERR_OK;
			if ((rc = fetch(cur, &got, err)))
				return rc;
			if (!got)
				return JERR_OK;
		}
		const struct chw_field *f = cur->fields;
		arena_reset(&cur->arena);
		if (f[0].null) {
			cur->null_keys += cur->grouped ? sql_null_key_rows(f[cur->count_col].s, f[cur->count_col].len) : 1;
			continue;
		}
		r->n_invalid = 0;
		/* an Int column's text is canonical already unless zero-padded ("-0", "007") */
		bool canonical = cur->types[0] == CHW_INT && (f[0].s[0] != '0' || f[0].len == 1) &&
				 (f[0].s[0] != '-' || f[0].s[1] != '0');
		if ((rc = sql_row_key(cur->src, cur->key_column, cur->int_key, f[0].s, f[0].len, canonical,
				      &cur->arena, &r->key, err)))
			return rc;
		for (size_t i = 0; i < r->n_values; i++) {
			if (!field_value(cur, i + 1, cur->src->properties[i], &r->values[i]))
				sql_row_invalid(&cur->base, r, i, f[i + 1].s, f[i + 1].len);
		}
		r->since = (struct slice){ "", 0 };
		if (cur->since_col && !f[cur->since_col].null)
			r->since = since_text(cur, &f[cur->since_col]);
		*row = r;
		return JERR_OK;
	}
}

static void ch_close(struct source_cursor *base)
{
	struct ch_cursor *cur = (struct ch_cursor *)base;
	sql_warn_null_keys(cur->src, cur->null_keys, cur->key_column);
	if (cur->req) {
		bool unfinished = !cur->req->done;
		char qid[sizeof(cur->req->query_id)];
		memcpy(qid, cur->req->query_id, sizeof(qid));
		ch_req_free(cur->req); /* closes the connection of an unfinished transfer */
		cur->req = NULL;
		if (unfinished)
			ch_req_kill(cur->conn, qid);
	}
	atomic_store(&cur->conn->abort_all, 0);
	arena_release(&cur->arena);
	strbuf_release(&cur->line);
	free(cur->row.values);
	free(cur->fields);
	free(cur->types);
	free(cur);
}

static const struct source_cursor_ops ch_cursor_ops = { ch_next, ch_close };

enum jerr ch_open_cursor(void *conn, const struct cfg_source *src, const struct source_read *read,
				struct source_cursor **out, struct jerror *err)
{
	struct ch_conn *c = conn;
	struct sql_plan p;
	struct ch_cursor *cur = NULL;
	struct strbuf sql = STRBUF_INIT;
	enum jerr rc;
	bool got = false;

	*out = NULL;
	sql_plan_init(&p);
	atomic_store(&c->abort_all, 0);
	if ((rc = ch_build(c, src, read, &p, err)))
		goto out;

	cur = xcalloc(1, sizeof(*cur));
	cur->base.ops = &ch_cursor_ops;
	cur->base.source = src;
	strbuf_init(&cur->base.prev_text, 0);
	cur->conn = c;
	cur->src = src;
	cur->grouped = p.grouped;
	cur->int_key = p.int_key;
	cur->key_column = p.key_column;
	cur->count_col = src->n_properties + 1;
	cur->since_col = p.since_col;
	cur->n_fields = 1 + src->n_properties + (p.grouped ? 1 : 0) + (p.since_col ? 1 : 0);
	cur->types = xcalloc(cur->n_fields, sizeof(*cur->types));
	cur->fields = xcalloc(cur->n_fields, sizeof(*cur->fields));
	arena_init(&cur->arena);
	strbuf_init(&cur->line, 256);
	cur->row.n_values = src->n_properties;
	cur->row.values = xcalloc(src->n_properties ? src->n_properties : 1, sizeof(struct value));

	strbuf_addslice(&sql, (struct slice){ p.sql.buf, p.sql.len });
	strbuf_addstr(&sql, CH_FORMAT);
	cur->req = ch_req_start(c, sql.buf, false);
	/* the header and the first row (or the error) now, so open_cursor reports a broken query */
	rc = read_header(cur, cur->n_fields, err);
	if (!rc)
		rc = fetch(cur, &got, err);
	if (rc) {
		/* unknown table / column: the check's message, with did-you-mean */
		if (err && (cur->last_code == 60 || cur->last_code == 47 || cur->last_code == 16)) {
			struct jerror cerr = JERROR_INIT;
			if (ch_check(c, src, &cerr) == JERR_CONFIG) {
				jerror_release(err);
				*err = cerr;
				rc = JERR_CONFIG;
			} else {
				jerror_release(&cerr);
			}
		}
		goto out;
	}
	cur->pending = got;
	*out = &cur->base;
	cur = NULL;
out:
	if (cur) {
		strbuf_release(&cur->base.prev_text);
		ch_close(&cur->base);
	}
	sql_plan_release(&p);
	strbuf_release(&sql);
	return rc;
}

