/*
 * audiences.c: the routes of /api/v1 behind the UI's Audiences and Records pages
 * (docs/api.md): a group's members before it is saved, and records listed, searched
 * and shown one at a time.
 *
 * Cost is bounded on every route: a preview or a list reads the model's sources once,
 * stops at PREVIEW_TIMEOUT_MS (answering what it counted, "complete": false), returns at
 * most PREVIEW_MAX_SAMPLE / RECORDS_MAX_PAGE records, and at most PREVIEW_MAX_RUNNING of
 * them run at a time (429 beyond). A look-up by key or by a unique property never scans
 * the source: the key or the value is pushed into the statement (source.h:
 * source_read.in_keys, match_column).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/jsonutil.h"
#include "base/strbuf.h"
#include "base/timeutil.h"
#include "base/value.h"
#include "base/xalloc.h"
#include "config/write.h"
#include "engine/group.h"
#include "engine/payload.h"
#include "engine/record.h"
#include "server/serverp.h"

#define PREVIEW_TIMEOUT_MS 10000
#define PREVIEW_MAX_SAMPLE 50
#define PREVIEW_DEFAULT_SAMPLE 10
#define PREVIEW_MAX_RUNNING 2
#define RECORDS_MAX_PAGE 100
#define RECORDS_DEFAULT_PAGE 25
#define SEARCH_MAX_KEYS 50
/* The id an unsaved group is validated under when the body gives none. */
#define PREVIEW_ID "joey-unsaved-preview"

static atomic_int running;

/* Take one of PREVIEW_MAX_RUNNING slots; false: 429 set. */
static bool slot_take(struct reply *out)
{
	if (atomic_fetch_add(&running, 1) >= PREVIEW_MAX_RUNNING) {
		atomic_fetch_sub(&running, 1);
		out->retry_after = 1;
		reply_error(out, 429, "too many previews at once", "other previews or record lists are reading the sources",
			    "try again in a moment");
		return false;
	}
	return true;
}

static void slot_give(void)
{
	atomic_fetch_sub(&running, 1);
}

/*
 * A read's time limit: a thread that sets a stop flag at the deadline. The reading
 * thread hands the flag to its source reads (source_set_stop), so a statement the
 * database is still working on is cancelled too (source.h), not only the rows after it.
 */
struct deadline {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	volatile int stop;
	int64_t at; /* epoch ms */
	pthread_t thread;
	bool live;
	volatile int *prev; /* the thread's stop flag before */
};

static void *deadline_main(void *arg)
{
	struct deadline *d = arg;
	pthread_mutex_lock(&d->lock);
	while (!d->done) {
		int64_t left = d->at - time_now_ms();
		if (left <= 0) {
			d->stop = 1;
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(left / 1000);
		ts.tv_nsec += (long)(left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&d->cond, &d->lock, &ts);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Start the clock: ms from now the calling thread's source reads stop. */
static void deadline_start(struct deadline *d, int64_t ms)
{
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->done = false;
	d->stop = 0;
	d->at = time_now_ms() + ms;
	d->live = pthread_create(&d->thread, NULL, deadline_main, d) == 0;
	d->prev = source_set_stop(&d->stop);
}

/* Stop the clock (before the reads' connections are gone is fine: the flag outlives them). */
static void deadline_end(struct deadline *d)
{
	source_set_stop(d->prev);
	pthread_mutex_lock(&d->lock);
	d->done = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (d->live)
		pthread_join(d->thread, NULL);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
}

json_t *value_json(const struct value *v)
{
	struct strbuf b = STRBUF_INIT;
	value_to_json(&b, v);
	json_t *j = json_loadb(b.buf, b.len, JSON_DECODE_ANY, NULL);
	strbuf_release(&b);
	return j ? j : json_null();
}

static json_t *key_json(const struct rkey *k)
{
	return json_stringn(k->text.ptr, k->text.len);
}

/* The properties of rec: every one (all == true), or those of props (NULL-ended). */
static json_t *props_json(const struct record *rec, const struct cfg_property *const *props, size_t n)
{
	json_t *o = json_object();
	const struct cfg_model *m = rec->model;
	if (!props) {
		for (size_t i = 0; i < m->n_properties; i++)
			json_object_set_new(o, m->properties[i]->key, value_json(&rec->values[i]));
		return o;
	}
	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, props[i]->key, value_json(&rec->values[props[i]->slot]));
	return o;
}

static json_t *groups_json(const struct record *rec)
{
	json_t *a = json_array();
	for (size_t g = 0; g < rec->model->n_groups; g++)
		if (rec->groups[g])
			json_array_append_new(a, json_string(rec->model->groups[g]->id));
	return a;
}

/* 422 with the staging load's diagnostics, as the config write routes answer. */
static void reply_invalid(struct reply *out, const struct config *cfg)
{
	json_t *j = json_object();
	json_object_set_new(j, "error", json_string("the group is not valid"));
	struct strbuf d = STRBUF_INIT;
	strbuf_addf(&d, "%zu error%s", cfg->n_errors, cfg->n_errors == 1 ? "" : "s");
	json_object_set_new(j, "detail", json_string(d.buf));
	strbuf_release(&d);
	json_object_set_new(j, "hint", json_string("see diagnostics: each names the field and the problem"));
	json_object_set_new(j, "diagnostics", server_diags_json(cfg));
	reply_json(out, 422, j);
}

/* ---- POST /api/v1/models/{model}/groups/preview ---- */

/* The body of a preview: "group" (an object, as it would be saved) and "limit" (the sample
 * size, capped at PREVIEW_MAX_SAMPLE; *limit keeps its default when absent or null).
 * false: the request is answered with a 400. */
static bool parse_preview_body(json_t *body, struct reply *out, json_t **group, json_int_t *limit)
{
	*group = json_object_get(body, "group");
	if (!json_is_object(*group)) {
		reply_error(out, 400, "field \"group\" must be an object", NULL,
			    "send the group as it would be saved: {\"name\", \"rules\", \"matchType\", ...}");
		return false;
	}
	json_t *lim = json_object_get(body, "limit");
	if (lim && !json_is_null(lim)) {
		if (!json_is_integer(lim) || json_integer_value(lim) < 0) {
			reply_error(out, 400, "field \"limit\" must be a whole number >= 0", NULL, NULL);
			return false;
		}
		*limit = json_integer_value(lim);
		if (*limit > PREVIEW_MAX_SAMPLE)
			*limit = PREVIEW_MAX_SAMPLE; /* capped, not refused */
	}
	return true;
}

/* What a sample shows: the key, the unique properties (4 at most), the rules' properties
 * (8 in all at most), into show[8]; returns how many. */
static size_t sample_properties(const struct cfg_model *pm, const struct cfg_group *g, const struct cfg_property *show[8])
{
	size_t n_show = 0;
	for (size_t i = 0; i < pm->n_properties && n_show < 4; i++)
		if (pm->properties[i]->unique)
			show[n_show++] = pm->properties[i];
	for (size_t i = 0; i < g->n_rules && n_show < 8; i++) {
		const struct cfg_property *p = g->rules[i].property;
		bool have = false;
		for (size_t k = 0; p && k < n_show; k++)
			have |= show[k] == p;
		if (p && !have)
			show[n_show++] = p;
	}
	return n_show;
}

/* Count the members of the validated group g of pm (in the validated config vcfg) within
 * PREVIEW_TIMEOUT_MS, with a sample of limit of them; the reply is the count, or the error.
 * gid: the "id" the request gave (NULL: the placeholder id, taken out of the stored object). */
static void reply_group_count(const struct config *vcfg, const struct cfg_model *pm, const struct cfg_group *g,
			      const json_t *gid, const char *id, json_int_t limit, const char *stored_json,
			      struct jerror *err, struct reply *out)
{
	struct record_reader *rr = NULL;
	const struct cfg_property *show[8];
	size_t n_show = sample_properties(pm, g, show);

	int64_t t0 = time_now_ms();
	uint64_t count = 0, read = 0;
	bool complete = true;
	json_t *sample = json_array();
	const struct record *rec;
	struct deadline dl;
	deadline_start(&dl, PREVIEW_TIMEOUT_MS);
	enum jerr rc = record_reader_open(vcfg, pm, NULL, &rr, err);
	while (!rc && (rc = record_reader_next(rr, &rec, err)) == JERR_OK && rec) {
		read++;
		if (rec->groups[g->index]) {
			if (json_array_size(sample) < (size_t)limit)
				json_array_append_new(sample, json_pack("{s:o,s:o}", "key", key_json(&rec->key),
									"properties", props_json(rec, show, n_show)));
			count++;
		}
	}
	record_reader_close(rr);
	deadline_end(&dl);
	if (rc == JERR_INTERRUPTED && dl.stop && read) {
		/* out of time: what was counted so far */
		complete = false;
		rc = JERR_OK;
	} else if (rc == JERR_INTERRUPTED && dl.stop) {
		json_decref(sample);
		reply_error(out, 504, "the sources did not answer in time", "no record came within 10 s",
			    "preview again when the database is less busy; saving does not need a preview");
		return;
	}
	if (rc) {
		json_decref(sample);
		reply_jerror(out, rc == JERR_SOURCE || rc == JERR_SOURCE_DATA ? 502 : 500, err);
		return;
	}
	json_t *stored = stored_json ? json_loads(stored_json, 0, NULL) : NULL;
	if (stored && !gid)
		json_object_del(stored, "id"); /* the placeholder id is not the user's */
	reply_json(out, 200,
		   json_pack("{s:s,s:o,s:I,s:I,s:b,s:I,s:I,s:o,s:o}", "model", pm->id, "group",
			     gid ? json_string(id) : json_null(), "count", (json_int_t)count, "records_read",
			     (json_int_t)read, "complete", complete, "took_ms", (json_int_t)(time_now_ms() - t0), "limit",
			     limit, "sample", sample, "object", stored ? stored : json_null()));
}

void act_group_preview(struct req *r, struct reply *out)
{
	static const char *const fields[] = { "group", "limit", NULL };
	json_t *body = req_json_body(r, out), *group;
	struct cfg_ref *ref = NULL;
	struct cfg_write_result res = { 0 };
	struct jerror err = JERROR_INIT;
	char *text = NULL;
	bool slot = false;
	json_int_t limit = PREVIEW_DEFAULT_SAMPLE;

	if (!body || !req_check_fields(body, fields, out) || !parse_preview_body(body, out, &group, &limit))
		goto out;
	ref = server_cfg_get(r->s);
	const struct cfg_model *m = req_param_model(r, out, ref->cfg);
	if (!m)
		goto out;
	json_t *mid = json_object_get(group, "modelId");
	if (mid && (!json_is_string(mid) || strcmp(json_string_value(mid), m->id))) {
		reply_error(out, 400, "the group belongs to another model", json_is_string(mid) ? json_string_value(mid) : NULL,
			    "preview a group on its own model's route");
		goto out;
	}
	json_t *gid = json_object_get(group, "id");
	if (gid && !json_is_string(gid)) {
		reply_error(out, 400, "field \"group.id\" must be a string", NULL, NULL);
		goto out;
	}
	const char *id = gid ? json_string_value(gid) : PREVIEW_ID;
	bool exists = false;
	for (size_t i = 0; i < ref->cfg->n_groups; i++)
		if (!strcmp(ref->cfg->groups[i]->id, id)) {
			if (ref->cfg->groups[i]->model != m) {
				reply_error(out, 400, "the group belongs to another model", ref->cfg->groups[i]->model->id,
					    "preview a group on its own model's route");
				goto out;
			}
			exists = true;
		}
	json_t *copy = json_deep_copy(group);
	json_object_set_new(copy, "id", json_string(id));
	json_object_set_new(copy, "class", json_string("Group"));
	json_object_set_new(copy, "modelId", json_string(m->id));
	text = json_dumps(copy, JSON_PRESERVE_ORDER);
	json_decref(copy);

	/* the same rules as `joey validate`: the directory as it would be, loaded */
	struct cfg_write w = { .op = exists ? CFG_WRITE_UPDATE : CFG_WRITE_CREATE, .cls = CLASS_GROUP,
			       .id = exists ? id : NULL, .object_json = text, .dry_run = true };
	enum jerr rc = config_write(r->s->opts.config_dir, &w, &r->s->opts.cfg, &res, &err);
	if (rc == JERR_CONFIG && res.cfg) {
		reply_invalid(out, res.cfg);
		goto out;
	}
	if (rc) {
		reply_jerror(out, rc == JERR_USAGE ? 400 : 500, &err);
		goto out;
	}
	const struct cfg_model *pm = config_model(res.cfg, m->id);
	const struct cfg_group *g = NULL;
	for (size_t i = 0; pm && i < pm->n_groups; i++)
		if (!strcmp(pm->groups[i]->id, id))
			g = pm->groups[i];
	if (!g) {
		reply_error(out, 500, "the validated group was not found", id, NULL);
		goto out;
	}
	if (!(slot = slot_take(out)))
		goto out;

	reply_group_count(res.cfg, pm, g, gid, id, limit, res.stored_json, &err, out);
out:
	if (slot)
		slot_give();
	cfg_write_result_release(&res);
	server_cfg_put(r->s, ref);
	jerror_release(&err);
	free(text);
	json_decref(body);
}

/* ---- GET /api/v1/records/{model} ---- */

static int rkey_cmp(const void *a, const void *b)
{
	return key_compare(a, b);
}

/* Can q be a value of property p (so that the database would not refuse the comparison)? */
static bool value_fits(const struct cfg_property *p, const char *q)
{
	char *end;
	switch (p->type) {
	case PROP_INTEGER:
		(void)strtoll(q, &end, 10);
		return *q && !*end;
	case PROP_FLOAT:
		(void)strtod(q, &end);
		return *q && !*end;
	case PROP_BOOLEAN:
	case PROP_DATE:
		return false;
	default:
		return true;
	}
}

/*
 * The keys of the records whose unique property p equals q: one statement on p's source
 * with WHERE <column> = ? (never a scan of the table on the SQL connectors). Keys are
 * added to *keys (texts in arena).
 */
static enum jerr keys_by_value(const struct config *cfg, const struct cfg_property *p, const char *q,
			       struct rkey **keys, size_t *n, size_t *alloc, struct arena *arena, struct jerror *err)
{
	const struct cfg_source *src = p->source;
	const struct source_ops *ops = source_ops_for_app(src->app->type);
	void *conn = NULL;
	struct source_cursor *cur = NULL;
	struct source_row *row;
	enum jerr rc;
	if (!ops)
		return jerror_set(err, JERR_CONFIG, "app \"%s\" of type \"%s\" cannot be read as a source", src->app->id,
				  src->app->type);
	struct source_read read = { .match_column = p->column, .match_value = q,
				    .match_is_number = p->type == PROP_INTEGER || p->type == PROP_FLOAT };
	if ((rc = ops->connect(src->app, cfg->root, &conn, err)))
		return rc;
	rc = ops->open_cursor(conn, src, &read, &cur, err);
	while (!rc && (rc = source_cursor_next(cur, &row, err)) == JERR_OK && row && *n < SEARCH_MAX_KEYS) {
		ALLOC_GROW(*keys, *n + 1, *alloc);
		struct rkey *k = &(*keys)[(*n)++];
		*k = row->key;
		char *t = arena_alloc(arena, row->key.text.len + 1);
		memcpy(t, row->key.text.ptr, row->key.text.len);
		t[row->key.text.len] = 0;
		k->text = (struct slice){ t, row->key.text.len };
	}
	source_cursor_close(cur);
	ops->disconnect(conn);
	return rc;
}

/* A search (?q=): the keys of the records whose primary key or unique property (every one,
 * or the one named pname) is q, each looked up in its source's statement; sorted, without
 * duplicates, into *keys (texts in arena). The keys of the properties searched are added to
 * searched. true: the request is answered (an error, or the empty page: nothing matched). */
static bool search_keys(const struct config *cfg, const struct cfg_model *m, const char *q, const char *pname,
			json_t *searched, struct rkey **keys, size_t *n_keys, size_t *alloc, struct arena *arena,
			struct jerror *err, struct reply *out)
{
	enum jerr rc = JERR_OK;
	bool any = false;
	for (size_t i = 0; i < m->n_properties && !rc; i++) {
		const struct cfg_property *p = m->properties[i];
		if (pname ? strcmp(p->key, pname) : !p->unique && p != m->primary_key)
			continue;
		any = true;
		if (pname && !p->unique && p != m->primary_key) {
			reply_error(out, 400, "records are searched by a unique property", pname,
				    "mark the property \"unique\", or search by the primary key");
			return true;
		}
		if (p == m->primary_key) {
			struct rkey k;
			json_array_append_new(searched, json_string(p->key));
			if (!record_key_parse(m, q, &k))
				continue;
			ALLOC_GROW(*keys, *n_keys + 1, *alloc);
			char *t = arena_alloc(arena, k.text.len + 1);
			memcpy(t, k.text.ptr, k.text.len);
			t[k.text.len] = 0;
			k.text = (struct slice){ t, k.text.len };
			(*keys)[(*n_keys)++] = k;
			continue;
		}
		if (!p->column || p->source->is_query || !value_fits(p, q))
			continue;
		json_array_append_new(searched, json_string(p->key));
		rc = keys_by_value(cfg, p, q, keys, n_keys, alloc, arena, err);
	}
	if (!any) {
		reply_error(out, 404, "no such property in this model", pname, "GET /api/v1/properties?model= lists them");
		return true;
	}
	if (rc) {
		reply_jerror(out, rc == JERR_SOURCE || rc == JERR_SOURCE_DATA ? 502 : 500, err);
		return true;
	}
	if (*n_keys)
		qsort(*keys, *n_keys, sizeof(**keys), rkey_cmp);
	size_t w = 0;
	for (size_t i = 0; i < *n_keys; i++)
		if (!w || key_compare(&(*keys)[w - 1], &(*keys)[i]))
			(*keys)[w++] = (*keys)[i];
	*n_keys = w;
	if (!*n_keys) {
		reply_json(out, 200, json_pack("{s:o,s:n,s:b,s:O}", "items", json_array(), "next", "complete", 1,
					       "searched", searched));
		return true;
	}
	return false;
}

/* One page of records (limit at most) after the key after (when after_text), of the group
 * g (when not NULL), of the keys found by a search (when n_keys), read within
 * PREVIEW_TIMEOUT_MS; the reply is the page, or the error. */
static void reply_records_page(const struct config *cfg, const struct cfg_model *m, const struct cfg_group *g,
			       const char *after_text, const struct rkey *after, const struct rkey *keys,
			       size_t n_keys, uint64_t limit, json_t *searched, struct jerror *err, struct reply *out)
{
	struct record_reader *rr = NULL;
	enum jerr rc;
	struct key_range range = { after_text ? after : NULL, NULL };
	struct source_read read = { .range = after_text ? &range : NULL, .in_keys = keys, .n_in_keys = n_keys };
	json_t *items = json_array();
	json_t *next = json_null();
	bool complete = true;
	struct strbuf last = STRBUF_INIT; /* the last key read */
	const struct record *rec;
	struct deadline dl;
	deadline_start(&dl, PREVIEW_TIMEOUT_MS);
	rc = record_reader_open(cfg, m, after_text || n_keys ? &read : NULL, &rr, err);
	while (!rc && (rc = record_reader_next(rr, &rec, err)) == JERR_OK && rec) {
		strbuf_reset(&last);
		strbuf_addslice(&last, rec->key.text);
		if (after_text && !key_compare(&rec->key, after))
			continue;
		if (g && !rec->groups[g->index])
			continue;
		if (json_array_size(items) == limit) {
			json_decref(next);
			next = json_string(json_string_value(json_object_get(json_array_get(items, limit - 1), "key")));
			break;
		}
		json_array_append_new(items, json_pack("{s:o,s:o,s:o}", "key", key_json(&rec->key), "properties",
						       props_json(rec, NULL, 0), "groups", groups_json(rec)));
	}
	record_reader_close(rr);
	deadline_end(&dl);
	if (rc == JERR_INTERRUPTED && dl.stop && last.len) {
		/* out of time (a sparse group): the next page goes on from the last key read */
		complete = false;
		rc = JERR_OK;
		json_decref(next);
		next = json_stringn(last.buf, last.len);
	} else if (rc == JERR_INTERRUPTED && dl.stop) {
		strbuf_release(&last);
		json_decref(items);
		json_decref(next);
		reply_error(out, 504, "the sources did not answer in time", "no record came within 10 s",
			    "try again when the database is less busy");
		return;
	}
	strbuf_release(&last);
	if (rc) {
		json_decref(items);
		json_decref(next);
		reply_jerror(out, rc == JERR_SOURCE || rc == JERR_SOURCE_DATA ? 502 : 500, err);
		return;
	}
	reply_json(out, 200,
		   json_pack("{s:o,s:o,s:b,s:O}", "items", items, "next", next, "complete", complete, "searched",
			     searched));
}

void api_records(struct req *r, struct reply *out)
{
	static const char *const allowed[] = { "q", "property", "group", "limit", "after", NULL };
	uint64_t limit;
	struct cfg_ref *ref = NULL;
	struct jerror err = JERROR_INIT;
	struct arena arena;
	struct rkey *keys = NULL, after;
	size_t n_keys = 0, alloc = 0;
	bool slot = false;
	json_t *searched = json_array();

	arena_init(&arena);
	if (!req_check_query(r, out, allowed) || !req_query_uint(r, out, "limit", RECORDS_DEFAULT_PAGE, RECORDS_MAX_PAGE, &limit))
		goto out;
	if (!limit)
		limit = RECORDS_DEFAULT_PAGE;
	ref = server_cfg_get(r->s);
	const struct config *cfg = ref->cfg;
	const struct cfg_model *m = req_param_model(r, out, cfg);
	if (!m)
		goto out;
	const char *q = req_query(r, "q"), *pname = req_query(r, "property"), *gname = req_query(r, "group");
	const char *after_text = req_query(r, "after");
	const struct cfg_group *g = NULL;
	if (gname) {
		for (size_t i = 0; i < m->n_groups; i++)
			if (!strcmp(m->groups[i]->id, gname))
				g = m->groups[i];
		if (!g) {
			reply_error(out, 404, "no such group in this model", gname, "GET /api/v1/groups?model= lists them");
			goto out;
		}
	}
	if (after_text && !record_key_parse(m, after_text, &after)) {
		reply_error(out, 400, "invalid value for query parameter \"after\"", after_text,
			    "give the key of the last record of the previous page");
		goto out;
	}
	if (q && !*q) {
		reply_error(out, 400, "query parameter \"q\" is empty", NULL, "give a key or a unique property's value");
		goto out;
	}
	if (pname && !q) {
		reply_error(out, 400, "query parameter \"property\" needs \"q\"", pname, NULL);
		goto out;
	}
	/* a search: the primary key and every unique property (or the one named), each
	 * pushed into its source's statement */
	if (q && search_keys(cfg, m, q, pname, searched, &keys, &n_keys, &alloc, &arena, &err, out))
		goto out;
	if (!(slot = slot_take(out)))
		goto out;
	reply_records_page(cfg, m, g, after_text, &after, keys, n_keys, limit, searched, &err, out);
out:
	if (slot)
		slot_give();
	json_decref(searched);
	free(keys);
	arena_release(&arena);
	server_cfg_put(r->s, ref);
	jerror_release(&err);
}

/*
 * A sample's columns, rows, the limit asked for and the key column a source would most
 * likely map ("id", else the first column) set on j (borrowed; smp borrowed, copied).
 */
static void sample_rows_json(const struct source_sample *smp, uint64_t limit, json_t *j)
{
	json_t *cols = json_array(), *rows = json_array();
	for (size_t i = 0; i < smp->n_columns; i++)
		json_array_append_new(cols, json_string_lossy(smp->columns[i]));
	for (size_t k = 0; k < smp->n_rows; k++) {
		json_t *row = json_array();
		for (size_t i = 0; i < smp->n_columns; i++) {
			const char *v = smp->cells[k * smp->n_columns + i];
			json_array_append_new(row, v ? json_string_lossy(v) : json_null());
		}
		json_array_append_new(rows, row);
	}
	const char *guess = NULL;
	for (size_t i = 0; i < smp->n_columns && !guess; i++)
		if (!strcmp(smp->columns[i], "id"))
			guess = smp->columns[i];
	if (!guess && smp->n_columns)
		guess = smp->columns[0];
	json_object_set_new(j, "columns", cols);
	json_object_set_new(j, "rows", rows);
	json_object_set_new(j, "limit", json_integer((json_int_t)limit));
	json_object_set_new(j, "key_guess", guess ? json_string_lossy(guess) : json_null());
}

/* An operator's file outside the data directory is never shown (config/guard.h): 403. */
static bool file_hidden(const struct cfg_app *app, struct reply *out)
{
	if (!app->file_unlisted)
		return false;
	reply_error(out, 403, "the app's file is not shown here",
		    "it is outside the data directory of joey serve (--data-dir)",
		    "joey validate --check-apps reads it on the command line");
	return true;
}

/*
 * An app read for a preview (its tables, or a query): the config it is read under, its
 * connector and connection, the preview slot, the sample and the error. Zeroed with
 * APP_READ_INIT; app_read_release frees what it holds.
 */
struct app_read {
	struct cfg_ref *ref;
	const struct cfg_app *app;
	const struct source_ops *ops;
	void *conn;
	bool slot;
	struct source_sample smp;
	struct jerror err;
};
#define APP_READ_INIT { .err = JERROR_INIT }

/*
 * The app r names, under the current config, if it can be read here: it exists (404),
 * its connector reads a query (query) or tables (else 400: cannot, the app type, hint),
 * its file is shown (403) and a preview slot is free (429). false: replied.
 */
static bool app_read_open(struct req *r, struct reply *out, struct app_read *ar, bool query, const char *cannot,
			  const char *hint)
{
	ar->ref = server_cfg_get(r->s);
	ar->app = config_app(ar->ref->cfg, r->params[0]);
	if (!ar->app) {
		reply_error(out, 404, "no such app", r->params[0], "GET /api/v1/apps lists them");
		return false;
	}
	ar->ops = source_ops_for_app(ar->app->type);
	if (!ar->ops || !(query ? ar->ops->sample_query : ar->ops->sample)) {
		reply_error(out, 400, cannot, ar->app->type, hint);
		return false;
	}
	if (file_hidden(ar->app, out))
		return false;
	ar->slot = slot_take(out);
	return ar->slot;
}

static void app_read_release(struct server *s, struct app_read *ar)
{
	if (ar->conn)
		ar->ops->disconnect(ar->conn);
	if (ar->slot)
		slot_give();
	source_sample_release(&ar->smp);
	server_cfg_put(s, ar->ref);
	jerror_release(&ar->err);
}

/* ---- GET /api/v1/apps/{app}/tables[?table=T&limit=N] ---- */

void api_app_tables(struct req *r, struct reply *out)
{
	static const char *const allowed[] = { "table", "limit", NULL };
	uint64_t limit;
	struct app_read ar = APP_READ_INIT;

	if (!req_check_query(r, out, allowed) || !req_query_uint(r, out, "limit", 10, UINT32_MAX, &limit))
		return;
	if (limit > SOURCE_SAMPLE_MAX_ROWS)
		limit = SOURCE_SAMPLE_MAX_ROWS; /* capped, not refused */
	const char *table = req_query(r, "table");
	if (!app_read_open(r, out, &ar, false, "this app holds no tables", "tables are read from database and file apps"))
		goto out;
	enum jerr rc = ar.ops->connect(ar.app, ar.ref->cfg->root, &ar.conn, &ar.err);
	if (!rc)
		rc = ar.ops->sample(ar.conn, table, (size_t)limit, &ar.smp, &ar.err);
	if (rc) {
		reply_jerror(out, rc == JERR_CONFIG ? 404 : 502, &ar.err);
		goto out;
	}
	json_t *tables = json_array();
	for (size_t i = 0; i < ar.smp.n_tables; i++)
		json_array_append_new(tables, json_string(ar.smp.tables[i]));
	json_t *j = json_pack("{s:s,s:s,s:o}", "app", ar.app->id, "type", ar.app->type, "tables", tables);
	if (table) {
		json_object_set_new(j, "table", json_string(table));
		sample_rows_json(&ar.smp, limit, j);
	}
	reply_json(out, 200, j);
out:
	app_read_release(r->s, &ar);
}

/* ---- POST /api/v1/apps/{app}/preview ---- */

/* The body of a query preview: "query" (SQL text, bounded) and "limit" (default 20). */
static bool parse_query_body(json_t *body, struct reply *out, const char **query, uint64_t *limit)
{
	static const char *const fields[] = { "query", "limit", NULL };
	if (!req_check_fields(body, fields, out))
		return false;
	json_t *q = json_object_get(body, "query"), *l = json_object_get(body, "limit");
	if (!json_is_string(q) || !json_string_length(q) || strspn(json_string_value(q), " \t\r\n;") == json_string_length(q)) {
		reply_error(out, 422, "the query is empty", "field \"query\" must hold the SQL text of a SELECT",
			    "e.g. {\"query\": \"SELECT id, email FROM users\"}");
		return false;
	}
	if (json_string_length(q) > SOURCE_SAMPLE_MAX_QUERY || strlen(json_string_value(q)) != json_string_length(q)) {
		reply_error(out, 422, "the query is too long or holds a NUL byte", NULL, "a query may hold 65536 bytes");
		return false;
	}
	*limit = 20;
	if (l && (!json_is_integer(l) || json_integer_value(l) < 1)) {
		reply_error(out, 422, "field \"limit\" must be a positive integer", NULL, "leave it out for 20 rows");
		return false;
	}
	if (l)
		*limit = json_integer_value(l) > SOURCE_SAMPLE_MAX_ROWS ? SOURCE_SAMPLE_MAX_ROWS : (uint64_t)json_integer_value(l);
	*query = json_string_value(q);
	return true;
}

/*
 * The columns and first rows of an SQL query as a query source of the app would read
 * them (source_ops.sample_query: a derived table, one statement, read-only and rolled
 * back, under the app's statementTimeout). The query is untrusted text.
 */
void act_app_preview(struct req *r, struct reply *out)
{
	json_t *body = req_json_body(r, out);
	struct app_read ar = APP_READ_INIT;
	const char *query = NULL;
	uint64_t limit = 20;

	if (!body || !parse_query_body(body, out, &query, &limit))
		goto out;
	if (!app_read_open(r, out, &ar, true, "this app cannot preview a query here",
			   "query previews are read from database and warehouse apps (SQLite, PostgreSQL, MySQL, Redshift, "
			   "ClickHouse, Snowflake, BigQuery)"))
		goto out;
	enum jerr rc = ar.ops->connect(ar.app, ar.ref->cfg->root, &ar.conn, &ar.err);
	if (rc) {
		reply_jerror(out, 502, &ar.err);
		goto out;
	}
	if ((rc = ar.ops->sample_query(ar.conn, query, (size_t)limit, &ar.smp, &ar.err))) {
		reply_jerror(out, 422, &ar.err);
		goto out;
	}
	json_t *j = json_pack("{s:s,s:s,s:b}", "app", ar.app->id, "type", ar.app->type, "columns_cut", ar.smp.columns_cut);
	sample_rows_json(&ar.smp, limit, j);
	reply_json(out, 200, j);
out:
	app_read_release(r->s, &ar);
	json_decref(body);
}

/* ---- GET /api/v1/records/{model}/{key} ---- */

/*
 * One destination's view of a record: what Braze holds (the last confirmed payload),
 * whether the record is in the destination's scope now (from the record as the sources
 * have it: a failed first attempt leaves a placeholder state row that says nothing
 * about scope), what the next run would send and why.
 */
static json_t *dest_view(const struct cfg_destination *d, const struct record *rec, const struct state_row *row,
			 bool found)
{
	bool confirmed = found && row->confirmed;
	json_t *o = json_pack("{s:s,s:b,s:b}", "id", d->id, "known", found, "confirmed", confirmed);
	json_t *payload = confirmed ? json_loadb(row->payload.ptr, row->payload.len, 0, NULL) : NULL;
	json_object_set_new(o, "payload", payload ? payload : json_null());
	bool in_scope = rec ? payload_in_scope(d, rec) : confirmed && row->in_scope;
	json_object_set_new(o, "in_scope", json_boolean(in_scope));
	json_object_set_new(o, "pending", json_boolean(found && row->pending));
	json_object_set_new(o, "attempts", json_integer(found ? row->attempts : 0));
	json_object_set_new(o, "last_error",
			    found && row->last_error.len ? json_stringn(row->last_error.ptr, row->last_error.len) : json_null());
	json_object_set_new(o, "confirmed_at", confirmed ? json_integer(row->confirmed_at) : json_null());
	json_object_set_new(o, "updated_at", found && row->updated_at ? json_integer(row->updated_at) : json_null());

	/* what happens next, and why */
	const char *next, *why;
	json_t *would = json_null();
	if (rec && in_scope) {
		struct payload_spec spec;
		struct strbuf b = STRBUF_INIT;
		payload_spec_init(&spec, d);
		payload_build(&spec, rec, &b);
		payload_spec_release(&spec);
		bool same = confirmed && row->payload.len == b.len && !memcmp(row->payload.ptr, b.buf, b.len);
		json_decref(would);
		would = json_loadb(b.buf, b.len, 0, NULL);
		if (!would)
			would = json_null();
		strbuf_release(&b);
		if (found && row->pending) {
			next = "retry";
			why = "the last attempt failed; the next run sends it again";
		} else if (same) {
			next = "none";
			why = "Braze holds what the sources have";
		} else if (confirmed) {
			next = "update";
			why = "the sources changed since Braze last confirmed it; the next run sends the change";
		} else {
			next = "create";
			why = "never sent to Braze; the next run sends it";
		}
	} else if (rec) {
		if (confirmed && row->in_scope) {
			next = d->sync_mode == SYNC_SYNC ? "remove" : "release";
			why = d->sync_mode == SYNC_SYNC ? "it left the destination's group; the next run removes it from Braze"
							: "it left the destination's group; Braze keeps it, joey stops updating it";
		} else {
			next = "none";
			why = "outside the destination's group: not sent";
		}
	} else {
		next = confirmed && row->in_scope && d->sync_mode == SYNC_SYNC ? "remove" : "none";
		why = confirmed ? "the sources no longer have this record" : "no such record in the sources";
	}
	json_object_set_new(o, "next", json_string(next));
	json_object_set_new(o, "why", json_string(why));
	json_object_set_new(o, "would_send", would);
	return o;
}

void api_record(struct req *r, struct reply *out)
{
	static const char *const no_params[] = { NULL };
	if (!req_check_query(r, out, no_params))
		return;
	struct cfg_ref *ref = server_cfg_get(r->s);
	const struct config *cfg = ref->cfg;
	const struct cfg_model *m = req_param_model(r, out, cfg);
	struct record_reader *rr = NULL;
	struct state *st = NULL;
	struct jerror err = JERROR_INIT;
	json_t *j = NULL;
	struct rkey key;
	enum jerr rc;

	if (!m)
		goto done;
	if (!record_key_parse(m, r->params[1], &key)) {
		reply_error(out, 400, "invalid record key", r->params[1],
			    "this model's primary key is an integer; search by another property with "
			    "GET /api/v1/records/{model}?q=");
		goto done;
	}
	/* the key pushed into every source's statement: no scan */
	struct source_read read = { .in_keys = &key, .n_in_keys = 1 };
	const struct record *rec = NULL;
	rc = record_reader_open(cfg, m, &read, &rr, &err);
	if (!rc && (rc = record_reader_next(rr, &rec, &err)) == JERR_OK && rec && key_compare(&rec->key, &key))
		rec = NULL;
	if (rc) {
		reply_jerror(out, 502, &err);
		goto done;
	}
	j = json_pack("{s:s,s:s}", "model", m->id, "key", r->params[1]);
	json_object_set_new(j, "found", json_boolean(rec != NULL));
	json_object_set_new(j, "properties", rec ? props_json(rec, NULL, 0) : json_object());
	json_object_set_new(j, "groups", rec ? groups_json(rec) : json_array());

	json_t *dests = json_array();
	json_object_set_new(j, "destinations", dests);
	if ((rc = server_state_read(r->s, &st, &err))) {
		json_decref(j);
		reply_jerror(out, 500, &err);
		goto done;
	}
	for (size_t i = 0; i < m->n_destinations; i++) {
		const struct cfg_destination *d = m->destinations[i];
		struct state_row *row;
		bool found;
		if ((rc = state_get(st, d->id, &key, &row, &found, &err))) {
			json_decref(j);
			reply_jerror(out, 500, &err);
			goto done;
		}
		json_array_append_new(dests, dest_view(d, rec, row, found));
	}
	json_t *history;
	if ((rc = record_history(cfg, m, st, &key, dests, &history, &err))) {
		json_decref(j);
		reply_jerror(out, 500, &err);
		goto done;
	}
	json_object_set_new(j, "history", history);
	reply_json(out, 200, j);
done:
	record_reader_close(rr);
	state_close(st);
	jerror_release(&err);
	server_cfg_put(r->s, ref);
}
