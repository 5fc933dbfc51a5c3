/* record.c: k-way merge of a model's source cursors into records, with group membership. */
#include "engine/record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "base/xalloc.h"
#include "engine/group.h"

struct conn {
	const struct cfg_app *app;
	const struct source_ops *ops;
	void *handle;
};

struct input {
	const struct cfg_source *source;
	struct conn *conn;
	struct source_cursor *cur;
	struct source_row *row; /* current row (secondary: first row with key >= last record) */
	bool done;
	struct strbuf since;    /* largest since value of this source's rows (secondary) */
	uint64_t unreadable;    /* rows its connector could not read (source_cursor) */
	char **unreadable_at;   /* copies of the cursor's, which closes before the end */
	size_t n_unreadable_at;
};

struct record_reader {
	const struct config *cfg;
	const struct cfg_model *model;
	struct conn *conns;
	size_t n_conns;
	struct input *inputs; /* [0] is the primary source */
	size_t n_inputs;
	struct record rec;
	struct value *defaults; /* per property, what it takes with no row (default_value) */
	struct record_stats stats;
	int64_t now_ms;
	bool partial;         /* the primary source was read since a mark, or for some keys */
	bool digest;          /* rows carry digests (read->digest), not since values */
	struct strbuf since;  /* largest primary row since value so far */
	struct source_read read; /* the caller's read (copied; its pointers borrowed) */
	bool has_read;
	const struct record_scope *scope; /* borrowed; NULL: none */
	/* a changed-records read (record_scope.since_value): their keys, in chunks */
	bool changed;
	/*
	 * The since values are those of the rows the listing found (collect_changed: each
	 * source's rows at or past its mark), not of the rows then read for their keys: a
	 * row read because another source named its key may lie below this source's
	 * mark, and a schedule whose listing found no row keeps its mark (Grouparoo: the
	 * next run starts from the last run that listed a row).
	 */
	bool listed;
	struct rkey *keys;
	size_t n_keys, next_key;
	struct arena key_arena;
};

static struct value default_value(const struct cfg_property *p);

/* Keys per statement of a changed-records read. */
#define RECORD_KEYS_CHUNK 500
/* More changed keys than this: read every record instead (memory stays bounded). */
#define RECORD_KEYS_MAX ((size_t)1 << 21)

static struct conn *get_conn(struct record_reader *rr, const struct cfg_app *app,
			     enum jerr *rc, struct jerror *err)
{
	for (size_t i = 0; i < rr->n_conns; i++)
		if (rr->conns[i].app == app)
			return &rr->conns[i];
	const struct source_ops *ops = source_ops_for_app(app->type);
	if (!ops) {
		*rc = jerror_set(err, JERR_CONFIG, "app \"%s\" of type \"%s\" cannot be read as a source",
				 app->id, app->type);
		return NULL;
	}
	struct conn *c = &rr->conns[rr->n_conns];
	c->app = app;
	c->ops = ops;
	c->handle = NULL;
	*rc = ops->connect(app, rr->cfg->root, &c->handle, err);
	if (*rc)
		return NULL;
	rr->n_conns++;
	return c;
}

static void note_since(struct strbuf *best, struct slice v)
{
	if (v.len && (!best->len || source_since_compare(v, (struct slice){ best->buf, best->len }) > 0)) {
		strbuf_reset(best);
		strbuf_addslice(best, v);
	}
}

/*
 * The most rows one cursor of in found unreadable (a CSV cursor knows them when it
 * opens, a SQL cursor finds bad keys as it reads): called after opening and reading.
 */
static void note_unreadable(struct input *in, const struct source_cursor *cur)
{
	if (!cur || cur->unreadable <= in->unreadable)
		return;
	in->unreadable = cur->unreadable;
	for (size_t k = 0; k < in->n_unreadable_at; k++)
		free(in->unreadable_at[k]);
	free(in->unreadable_at);
	in->unreadable_at = xcalloc(cur->n_unreadable_at ? cur->n_unreadable_at : 1, sizeof(char *));
	for (size_t k = 0; k < cur->n_unreadable_at; k++)
		in->unreadable_at[k] = xstrdup(cur->unreadable_at[k]);
	in->n_unreadable_at = cur->n_unreadable_at;
}

/* Note every open cursor's unreadable rows; the sum so far. */
static uint64_t note_all_unreadable(struct record_reader *rr)
{
	uint64_t n = 0;
	for (size_t i = 0; i < rr->n_inputs; i++) {
		note_unreadable(&rr->inputs[i], rr->inputs[i].cur);
		n += rr->inputs[i].unreadable;
	}
	return n;
}

static const char *scope_at(const char *const *a, size_t i)
{
	return a && a[i] && *a[i] ? a[i] : NULL;
}

/* Open every source's cursor, limited to keys[0..n) when keys is not NULL. */
static enum jerr open_inputs(struct record_reader *rr, const struct rkey *keys, size_t n, struct jerror *err)
{
	const struct source_read *read = rr->has_read ? &rr->read : NULL;
	enum jerr rc = JERR_OK;

	for (size_t i = 0; i < rr->n_inputs && !rc; i++) {
		struct input *in = &rr->inputs[i];
		const struct cfg_source *src = in->source;
		/* sources[0] is the primary source: the only one read since a mark by `read`;
		 * a key range (a worker's partition) limits every source, and so do the
		 * warehouse diff's keys and digests and a changed-records read's keys */
		struct source_read one = { .range = read ? read->range : NULL };
		if (i == 0 && read)
			one = *read;
		if (read) {
			one.keys = read->keys;
			one.n_keys = read->n_keys;
			one.digest = read->digest;
		}
		if (i > 0 && !rr->changed && !one.digest && rr->scope)
			one.since_column = scope_at(rr->scope->since_column, i);
		if (keys) {
			one.in_keys = keys;
			one.n_in_keys = n;
		} else if (read && read->in_keys) {
			/* a look-up of some records (the API's record page): every source */
			one.in_keys = read->in_keys;
			one.n_in_keys = read->n_in_keys;
		}
		bool any = (i == 0 && read) || one.range || one.keys || one.digest || one.since_column ||
			   one.in_keys;
		in->row = NULL;
		in->done = false;
		rc = in->conn->ops->open_cursor(in->conn->handle, src, any ? &one : NULL, &in->cur, err);
		if (!rc)
			note_unreadable(in, in->cur);
	}
	return rc;
}

static void close_inputs(struct record_reader *rr)
{
	note_all_unreadable(rr);
	for (size_t i = 0; i < rr->n_inputs; i++) {
		source_cursor_close(rr->inputs[i].cur);
		rr->inputs[i].cur = NULL;
	}
}

static int rkey_cmp(const void *a, const void *b)
{
	return key_compare(a, b);
}

/*
 * A changed-records read: the keys of the rows of each scheduled source changed since
 * its mark, sorted and without duplicates, in rr->keys.
 */
static enum jerr collect_changed(struct record_reader *rr, struct jerror *err)
{
	const struct source_read *read = rr->has_read ? &rr->read : NULL;
	size_t alloc = 0;
	enum jerr rc = JERR_OK;

	for (size_t i = 0; i < rr->n_inputs && !rc; i++) {
		struct input *in = &rr->inputs[i];
		const char *col = scope_at(rr->scope->since_column, i);
		const char *val = scope_at(rr->scope->since_value, i);
		struct source_cursor *cur = NULL;
		struct source_row *row;
		if (!col || !val)
			continue;
		struct source_read one = { .since_column = col, .since_value = val,
					   .range = read ? read->range : NULL };
		rc = in->conn->ops->open_cursor(in->conn->handle, in->source, &one, &cur, err);
		if (rc)
			break;
		note_unreadable(in, cur);
		while (!(rc = source_cursor_next(cur, &row, err)) && row) {
			struct strbuf *best = i == 0 ? &rr->since : &in->since;
			note_since(best, row->since);
			if (rr->n_keys == RECORD_KEYS_MAX)
				continue; /* too many: every record is read (below) */
			ALLOC_GROW(rr->keys, rr->n_keys + 1, alloc);
			struct rkey *k = &rr->keys[rr->n_keys++];
			*k = row->key;
			char *t = arena_alloc(&rr->key_arena, row->key.text.len + 1);
			memcpy(t, row->key.text.ptr, row->key.text.len);
			t[row->key.text.len] = 0;
			k->text = (struct slice){ t, row->key.text.len };
		}
		note_unreadable(in, cur);
		source_cursor_close(cur);
	}
	if (rc)
		return rc;
	if (rr->n_keys == RECORD_KEYS_MAX) {
		log_info("model \"%s\": more than %zu records changed; reading every record",
			 rr->model->id, RECORD_KEYS_MAX);
		free(rr->keys);
		rr->keys = NULL;
		rr->n_keys = 0;
		rr->changed = false;
		return JERR_OK;
	}
	if (rr->n_keys)
		qsort(rr->keys, rr->n_keys, sizeof(*rr->keys), rkey_cmp);
	size_t w = 0;
	for (size_t r = 0; r < rr->n_keys; r++)
		if (!w || key_compare(&rr->keys[w - 1], &rr->keys[r]))
			rr->keys[w++] = rr->keys[r];
	rr->n_keys = w;
	return JERR_OK;
}

/* Open the cursors for the next chunk of changed keys; false when none is left. */
static enum jerr next_chunk(struct record_reader *rr, bool *opened, struct jerror *err)
{
	size_t n = rr->n_keys - rr->next_key;
	*opened = false;
	close_inputs(rr);
	if (!n)
		return JERR_OK;
	if (n > RECORD_KEYS_CHUNK)
		n = RECORD_KEYS_CHUNK;
	enum jerr rc = open_inputs(rr, rr->keys + rr->next_key, n, err);
	rr->next_key += n;
	*opened = !rc;
	return rc;
}

enum jerr record_reader_open(const struct config *cfg, const struct cfg_model *model,
			     const struct source_read *read, struct record_reader **out,
			     struct jerror *err)
{
	return record_reader_open_scope(cfg, model, read, NULL, out, err);
}

enum jerr record_reader_open_scope(const struct config *cfg, const struct cfg_model *model,
				   const struct source_read *read, const struct record_scope *scope,
				   struct record_reader **out, struct jerror *err)
{
	struct record_reader *rr = xcalloc(1, sizeof(*rr));
	enum jerr rc = JERR_OK;

	*out = NULL;
	strbuf_init(&rr->since, 0);
	arena_init(&rr->key_arena);
	rr->digest = read && read->digest;
	rr->cfg = cfg;
	rr->model = model;
	rr->scope = scope;
	if (read) {
		rr->read = *read;
		rr->has_read = true;
	}
	for (size_t i = 0; scope && scope->since_value && i < model->n_sources; i++)
		if (scope_at(scope->since_value, i) && scope_at(scope->since_column, i))
			rr->changed = true;
	if (rr->changed && rr->digest) {
		rc = jerror_set(err, JERR_CONFIG, "model \"%s\": a changed-records read cannot ask for digests",
				model->id);
		goto out;
	}
	rr->partial = rr->changed || (read && ((read->since_column && read->since_value) || read->keys || read->in_keys));
	rr->now_ms = time_now_ms();
	rr->conns = xcalloc(model->n_sources ? model->n_sources : 1, sizeof(*rr->conns));
	rr->inputs = xcalloc(model->n_sources ? model->n_sources : 1, sizeof(*rr->inputs));
	rr->rec.model = model;
	rr->rec.values = xcalloc(model->n_properties ? model->n_properties : 1, sizeof(struct value));
	/* worked out once: filling each record from here is a copy */
	rr->defaults = xcalloc(model->n_properties ? model->n_properties : 1, sizeof(struct value));
	for (size_t i = 0; i < model->n_properties; i++)
		rr->defaults[i] = default_value(model->properties[i]);
	rr->rec.groups = xcalloc(model->n_groups ? model->n_groups : 1, sizeof(bool));
	if (rr->digest)
		rr->rec.digests = xcalloc(model->n_sources ? model->n_sources : 1, sizeof(struct slice));

	if (!model->primary_source) {
		rc = jerror_set(err, JERR_CONFIG, "model \"%s\" has no primary source", model->id);
		goto out;
	}
	for (size_t i = 0; i < model->n_sources; i++) {
		const struct cfg_source *src = model->sources[i];
		struct conn *c = get_conn(rr, src->app, &rc, err);
		if (!c)
			goto out;
		struct input *in = &rr->inputs[rr->n_inputs++];
		in->source = src;
		in->conn = c;
		strbuf_init(&in->since, 0);
	}
	if (rr->changed) {
		bool opened;
		if ((rc = collect_changed(rr, err)))
			goto out;
		rr->listed = true;
		if (rr->changed) {
			if ((rc = next_chunk(rr, &opened, err)))
				goto out;
			if (!opened)
				rr->inputs[0].done = true; /* nothing changed */
			goto done;
		}
	}
	if ((rc = open_inputs(rr, NULL, 0, err)))
		goto out;
done:
	*out = rr;
	rr = NULL;
out:
	if (rr)
		record_reader_close(rr);
	return rc;
}

/* The value a property takes when its secondary source has no row for the record. */
static struct value default_value(const struct cfg_property *p)
{
	struct value v = VALUE_NULL;
	if (p->is_array || (p->agg != AGG_COUNT && p->agg != AGG_SUM))
		return v;
	if (p->type == PROP_FLOAT) {
		v.kind = VAL_FLOAT;
		v.u.f = 0;
	} else {
		v.kind = VAL_INT;
		v.u.i = 0;
	}
	return v;
}

static void take_row(struct record *rec, const struct cfg_source *src, const struct source_row *row)
{
	for (size_t i = 0; i < src->n_properties && i < row->n_values; i++)
		rec->values[src->properties[i]->slot] = row->values[i];
	rec->n_invalid += row->n_invalid;
}

enum jerr record_reader_next(struct record_reader *rr, const struct record **out, struct jerror *err)
{
	struct record *rec = &rr->rec;
	struct input *primary = &rr->inputs[0];
	enum jerr rc;

	*out = NULL;
	if (primary->done)
		return JERR_OK;
	rc = source_cursor_next(primary->cur, &primary->row, err);
	if (rc)
		return rc;
	while (!primary->row && rr->changed && rr->next_key < rr->n_keys) {
		/* this chunk of changed keys is read: on to the next */
		bool opened;
		if ((rc = next_chunk(rr, &opened, err)))
			return rc;
		if ((rc = source_cursor_next(primary->cur, &primary->row, err)))
			return rc;
	}
	if (!primary->row) {
		primary->done = true;
		/* count the secondary rows nobody claimed */
		for (size_t i = 1; i < rr->n_inputs; i++) {
			struct input *in = &rr->inputs[i];
			while (!in->done) {
				if (in->row && !rr->partial)
					rr->stats.orphans++;
				rc = source_cursor_next(in->cur, &in->row, err);
				if (rc)
					return rc;
				if (!in->row)
					in->done = true;
				else if (!rr->digest && !rr->listed)
					note_since(&in->since, in->row->since);
			}
		}
		note_all_unreadable(rr);
		return JERR_OK;
	}

	const struct cfg_model *model = rr->model;
	rec->key = primary->row->key;
	rec->n_invalid = 0;
	memcpy(rec->values, rr->defaults, model->n_properties * sizeof(*rec->values));
	take_row(rec, primary->source, primary->row);
	if (rr->digest) {
		for (size_t i = 0; i < rr->n_inputs; i++)
			rec->digests[i] = (struct slice){ "", 0 };
		rec->digests[0] = primary->row->since;
	} else if (!rr->listed) {
		note_since(&rr->since, primary->row->since);
	}

	for (size_t i = 1; i < rr->n_inputs; i++) {
		struct input *in = &rr->inputs[i];
		for (;;) {
			if (in->done)
				break;
			if (!in->row) {
				rc = source_cursor_next(in->cur, &in->row, err);
				if (rc)
					return rc;
				if (!in->row) {
					in->done = true;
					break;
				}
				if (!rr->digest && !rr->listed)
					note_since(&in->since, in->row->since);
			}
			int c = key_compare(&in->row->key, &rec->key);
			if (c < 0) {
				if (!rr->partial)
					rr->stats.orphans++;
				in->row = NULL; /* consume it */
				continue;
			}
			if (c == 0) {
				take_row(rec, in->source, in->row);
				if (rr->digest)
					rec->digests[i] = in->row->since;
				/* consumed on the next record's turn */
			}
			break;
		}
	}
	/* a secondary row equal to this key was used; drop it so the next call advances */
	for (size_t i = 1; i < rr->n_inputs; i++) {
		struct input *in = &rr->inputs[i];
		if (in->row && key_compare(&in->row->key, &rec->key) == 0)
			in->row = NULL;
	}

	for (size_t g = 0; g < model->n_groups; g++)
		rec->groups[g] = group_matches(model->groups[g], rec, rr->now_ms);

	rr->stats.records++;
	rr->stats.invalid_values += rec->n_invalid;
	rec->unreadable = note_all_unreadable(rr);
	*out = rec;
	return JERR_OK;
}

const struct record_stats *record_reader_stats(const struct record_reader *rr)
{
	return &rr->stats;
}

struct slice record_reader_since(const struct record_reader *rr)
{
	return (struct slice){ rr->since.buf, rr->since.len };
}

struct slice record_reader_since_at(const struct record_reader *rr, size_t i)
{
	if (i == 0)
		return record_reader_since(rr);
	if (i >= rr->n_inputs)
		return (struct slice){ "", 0 };
	return (struct slice){ rr->inputs[i].since.buf, rr->inputs[i].since.len };
}

bool record_reader_partial(const struct record_reader *rr)
{
	return rr->partial;
}

uint64_t record_reader_unreadable(const struct record_reader *rr, struct strbuf *where)
{
	uint64_t n = 0;
	for (size_t i = 0; i < rr->n_inputs; i++) {
		const struct input *in = &rr->inputs[i];
		n += in->unreadable;
		for (size_t k = 0; where && k < in->n_unreadable_at; k++)
			strbuf_addf(where, "source \"%s\": %s\n", in->source->id, in->unreadable_at[k]);
	}
	return n;
}

void record_reader_close(struct record_reader *rr)
{
	if (!rr)
		return;
	for (size_t i = 0; i < rr->n_inputs; i++) {
		source_cursor_close(rr->inputs[i].cur);
		strbuf_release(&rr->inputs[i].since);
		for (size_t k = 0; k < rr->inputs[i].n_unreadable_at; k++)
			free(rr->inputs[i].unreadable_at[k]);
		free(rr->inputs[i].unreadable_at);
	}
	free(rr->keys);
	arena_release(&rr->key_arena);
	for (size_t i = 0; i < rr->n_conns; i++)
		if (rr->conns[i].handle)
			rr->conns[i].ops->disconnect(rr->conns[i].handle);
	free(rr->conns);
	free(rr->inputs);
	free(rr->rec.values);
	free(rr->defaults);
	free(rr->rec.groups);
	free(rr->rec.digests);
	strbuf_release(&rr->since);
	free(rr);
}

bool record_key_parse(const struct cfg_model *model, const char *text, struct rkey *k)
{
	memset(k, 0, sizeof(*k));
	k->text = slice_of(text);
	if (model->primary_key && model->primary_key->type == PROP_INTEGER) {
		char *end;
		errno = 0;
		long long v = strtoll(text, &end, 10);
		if (*end || end == text || errno)
			return false;
		k->is_int = true;
		k->i = v;
	}
	return true;
}
