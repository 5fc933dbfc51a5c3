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
	struct source_cursor *cur;
	struct source_row *row; /* current row (secondary: first row with key >= last record) */
	bool done;
};

struct record_reader {
	const struct config *cfg;
	const struct cfg_model *model;
	struct conn *conns;
	size_t n_conns;
	struct input *inputs; /* [0] is the primary source */
	size_t n_inputs;
	struct record rec;
	struct record_stats stats;
	int64_t now_ms;
	bool partial;         /* the primary source was read since a mark, or for some keys */
	bool digest;          /* rows carry digests (read->digest), not since values */
	struct strbuf since;  /* largest primary row since value so far */
};

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

enum jerr record_reader_open(const struct config *cfg, const struct cfg_model *model,
			     const struct source_read *read, struct record_reader **out,
			     struct jerror *err)
{
	struct record_reader *rr = xcalloc(1, sizeof(*rr));
	enum jerr rc = JERR_OK;

	*out = NULL;
	strbuf_init(&rr->since, 0);
	rr->partial = read && ((read->since_column && read->since_value) || read->keys);
	rr->digest = read && read->digest;
	rr->cfg = cfg;
	rr->model = model;
	rr->now_ms = time_now_ms();
	rr->conns = xcalloc(model->n_sources ? model->n_sources : 1, sizeof(*rr->conns));
	rr->inputs = xcalloc(model->n_sources ? model->n_sources : 1, sizeof(*rr->inputs));
	rr->rec.model = model;
	rr->rec.values = xcalloc(model->n_properties ? model->n_properties : 1, sizeof(struct value));
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
		struct input *in = &rr->inputs[rr->n_inputs];
		in->source = src;
		/* sources[0] is the primary source: the only one read incrementally; a key
		 * range (a worker's partition) limits every source */
		struct source_read sec = { .range = read ? read->range : NULL };
		/* and so do the warehouse diff's keys and digests */
		if (read) {
			sec.keys = read->keys;
			sec.n_keys = read->n_keys;
			sec.digest = read->digest;
		}
		bool sec_any = sec.range || sec.keys || sec.digest;
		rc = c->ops->open_cursor(c->handle, src, i == 0 ? read : sec_any ? &sec : NULL, &in->cur, err);
		if (rc)
			goto out;
		rr->n_inputs++;
	}
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
			}
		}
		return JERR_OK;
	}

	const struct cfg_model *model = rr->model;
	rec->key = primary->row->key;
	rec->n_invalid = 0;
	for (size_t i = 0; i < model->n_properties; i++)
		rec->values[i] = default_value(model->properties[i]);
	take_row(rec, primary->source, primary->row);
	if (rr->digest) {
		for (size_t i = 0; i < rr->n_inputs; i++)
			rec->digests[i] = (struct slice){ "", 0 };
		rec->digests[0] = primary->row->since;
	} else if (primary->row->since.len &&
	    (!rr->since.len ||
	     source_since_compare(primary->row->since,
				  (struct slice){ rr->since.buf, rr->since.len }) > 0)) {
		strbuf_reset(&rr->since);
		strbuf_addslice(&rr->since, primary->row->since);
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

enum jerr record_incremental_schedule(const struct config *cfg, const struct cfg_model *model,
				      const struct cfg_schedule **out, struct jerror *err)
{
	*out = NULL;
	for (size_t i = 0; i < cfg->n_schedules; i++) {
		const struct cfg_schedule *sc = cfg->schedules[i];
		const char *col = cfg_options_str(&sc->options, "column");
		if (!sc->source || sc->source->model != model || !sc->incremental || !col || !*col)
			continue;
		if (sc->source != model->primary_source) {
			log_warn("schedule \"%s\": incremental reads apply to the primary source of "
				 "model \"%s\" only; source \"%s\" is read in full",
				 sc->id, model->id, sc->source->id);
			continue;
		}
		if (sc->source->is_query) {
			jerror_set(err, JERR_CONFIG,
				   "schedule \"%s\": incremental reads need a table source, and "
				   "source \"%s\" is a query source",
				   sc->id, sc->source->id);
			jerror_hint(err, "set \"incremental\": false on the schedule (every run then "
					 "reads the whole query)");
			return JERR_CONFIG;
		}
		*out = sc;
	}
	return JERR_OK;
}

void record_reader_close(struct record_reader *rr)
{
	if (!rr)
		return;
	for (size_t i = 0; i < rr->n_inputs; i++)
		source_cursor_close(rr->inputs[i].cur);
	for (size_t i = 0; i < rr->n_conns; i++)
		if (rr->conns[i].handle)
			rr->conns[i].ops->disconnect(rr->conns[i].handle);
	free(rr->conns);
	free(rr->inputs);
	free(rr->rec.values);
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
