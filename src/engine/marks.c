/* marks.c: a model's schedules and their marks decide how a pass reads it (marks.h). */
#include "engine/marks.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "source/source.h"

static size_t source_index(const struct cfg_model *model, const struct cfg_source *src)
{
	for (size_t i = 0; i < model->n_sources; i++)
		if (model->sources[i] == src)
			return i;
	return model->n_sources;
}

/* A schedule an incremental read can use: JERR_CONFIG naming it on a query source. */
static enum jerr usable(const struct cfg_schedule *sc, struct jerror *err)
{
	if (!sc->source->is_query)
		return JERR_OK;
	jerror_set(err, JERR_CONFIG,
		   "schedule \"%s\": incremental reads need a table source, and "
		   "source \"%s\" is a query source",
		   sc->id, sc->source->id);
	jerror_hint(err, "set \"incremental\": false on the schedule (every run then "
			 "reads the whole query)");
	return JERR_CONFIG;
}

enum jerr marks_primary_schedule(const struct config *cfg, const struct cfg_model *model,
				 const struct cfg_schedule **out, struct jerror *err)
{
	*out = NULL;
	for (size_t i = 0; i < cfg->n_schedules; i++) {
		const struct cfg_schedule *sc = cfg->schedules[i];
		const char *col = cfg_options_str(&sc->options, "column");
		if (!sc->source || sc->source->model != model || !sc->incremental || !col || !*col)
			continue;
		if (sc->source != model->primary_source)
			continue;
		if (usable(sc, err))
			return JERR_CONFIG;
		*out = sc;
	}
	return JERR_OK;
}

void marks_basis(const struct cfg_schedule *sc, struct strbuf *out)
{
	const char *col = cfg_options_str(&sc->options, "column");
	strbuf_reset(out);
	strbuf_addf(out, "source %s, column %s", sc->source ? sc->source->id : "", col ? col : "");
}

enum jerr marks_store(struct state *st, const struct cfg_schedule *sc, const char *value, struct jerror *err)
{
	struct strbuf basis = STRBUF_INIT;
	marks_basis(sc, &basis);
	enum jerr rc = state_mark_set(st, sc->id, value, basis.buf, err);
	strbuf_release(&basis);
	return rc;
}

enum jerr marks_store_id(struct state *st, const struct config *cfg, const char *schedule_id, const char *value,
			 struct jerror *err)
{
	for (size_t i = 0; i < cfg->n_schedules; i++)
		if (!strcmp(cfg->schedules[i]->id, schedule_id))
			return marks_store(st, cfg->schedules[i], value, err);
	return state_mark_set(st, schedule_id, value, NULL, err); /* gone from the config */
}

/*
 * Where a load takes the schedules' marks from: the state store, or a job's marks.
 * *other: a mark was stored but for another basis (a changed column), so not found.
 */
typedef enum jerr (*mark_get_fn)(void *ctx, const struct cfg_schedule *sc, struct strbuf *value, bool *found,
				 bool *other, struct jerror *err);

static enum jerr mark_from_store(void *ctx, const struct cfg_schedule *sc, struct strbuf *value, bool *found,
				 bool *other, struct jerror *err)
{
	struct strbuf stored = STRBUF_INIT, now = STRBUF_INIT;
	enum jerr rc = state_mark_get(ctx, sc->id, value, &stored, found, err);
	marks_basis(sc, &now);
	/* a mark stored before bases were (empty) is taken as it is */
	if (!rc && *found && stored.len && strcmp(stored.buf, now.buf)) {
		*found = false;
		*other = true;
		strbuf_reset(value);
	}
	strbuf_release(&stored);
	strbuf_release(&now);
	return rc;
}

static enum jerr load_marks(const struct config *cfg, const struct cfg_model *model, mark_get_fn get, void *ctx,
			    bool full, struct model_marks *m, struct jerror *err)
{
	size_t n = model->n_sources;
	const struct cfg_schedule *whole = NULL; /* a schedule that re-reads its whole source */
	const struct cfg_schedule *moved = NULL; /* one whose mark is of another column */
	const struct cfg_schedule *odd = NULL;   /* one whose mark is infinity or NaN */
	size_t n_sched = 0, n_marked = 0;
	enum jerr rc;

	memset(m, 0, sizeof(*m));
	m->model = model;
	m->n = n;
	m->sched = xcalloc(n ? n : 1, sizeof(*m->sched));
	m->column = xcalloc(n ? n : 1, sizeof(*m->column));
	m->value = xcalloc(n ? n : 1, sizeof(*m->value));
	m->mark = xcalloc(n ? n : 1, sizeof(*m->mark));
	m->seen = xcalloc(n ? n : 1, sizeof(*m->seen));
	m->saved = xcalloc(n ? n : 1, sizeof(*m->saved));
	for (size_t i = 0; i < n; i++) {
		strbuf_init(&m->mark[i], 0);
		strbuf_init(&m->seen[i], 0);
	}
	for (size_t k = 0; k < cfg->n_schedules; k++) {
		const struct cfg_schedule *sc = cfg->schedules[k];
		const char *col = cfg_options_str(&sc->options, "column");
		size_t i;
		if (!sc->source || sc->source->model != model)
			continue;
		i = source_index(model, sc->source);
		if (i == n)
			continue;
		if (!sc->incremental || !col || !*col) {
			if (!whole)
				whole = sc;
			continue;
		}
		if (usable(sc, err))
			return JERR_CONFIG;
		if (m->sched[i])
			continue; /* one schedule per source (validated); keep the first */
		m->sched[i] = sc;
		m->column[i] = col;
		n_sched++;
		bool found = false, other = false;
		if ((rc = get(ctx, sc, &m->mark[i], &found, &other, err)))
			return rc;
		if (found && source_since_unordered(m->mark[i].buf, m->mark[i].len)) {
			/*
			 * infinity or NaN, stored before such a value was no mark
			 * (source_since_unordered): read from it, a run read only that row (or
			 * nothing) and kept it, skipping every change for good. Read everything
			 * once instead; the read then stores a usable mark.
			 */
			found = false;
			strbuf_reset(&m->mark[i]);
			if (!odd)
				odd = sc;
		}
		n_marked += found;
		if (other && !moved)
			moved = sc;
	}
	m->any = n_sched > 0;
	/* per-source tracking only when a secondary source has a schedule (it keeps the
	 * warehouse diff, which reads no secondary marks, for the other models) */
	if (n_sched > (m->sched[0] ? 1u : 0u))
		m->scope.since_column = m->column;
	if (m->sched[0]) {
		m->read.since_column = m->column[0];
		m->use_read = true;
	}
	m->incremental = !full && m->sched[0] && !whole && n_marked == n_sched;
	if (!m->incremental) {
		/* every record; the marks are what the read sees */
		if (full)
			snprintf(m->why, sizeof(m->why), "--full");
		else if (whole)
			snprintf(m->why, sizeof(m->why), "schedule \"%s\" is not incremental", whole->id);
		else if (n_sched && !m->sched[0])
			snprintf(m->why, sizeof(m->why), "the primary source has no incremental schedule");
		else if (moved)
			snprintf(m->why, sizeof(m->why), "schedule \"%s\" reads another column than its mark is of",
				 moved->id);
		else if (odd)
			snprintf(m->why, sizeof(m->why), "the mark of schedule \"%s\" is infinity or NaN", odd->id);
		else if (n_marked < n_sched)
			snprintf(m->why, sizeof(m->why), "no mark yet");
		return JERR_OK;
	}
	if (n_sched == 1) {
		/* only the primary source: read it since its mark */
		m->read.since_value = m->mark[0].buf;
		return JERR_OK;
	}
	for (size_t i = 0; i < n; i++)
		if (m->sched[i])
			m->value[i] = m->mark[i].buf;
	m->scope.since_value = m->value;
	return JERR_OK;
}

enum jerr model_marks_load(const struct config *cfg, const struct cfg_model *model, struct state *st,
			   bool full, struct model_marks *m, struct jerror *err)
{
	return load_marks(cfg, model, mark_from_store, st, full, m, err);
}

/* ---- a job's marks (work.c) ---- */

enum jerr model_marks_job_text(const struct model_marks *m, bool full, struct strbuf *out)
{
	json_t *o = json_object(), *marks = json_object();
	json_object_set_new(o, "full", json_boolean(full));
	for (size_t i = 0; i < m->n; i++)
		if (m->sched[i] && m->mark[i].len)
			json_object_set_new(marks, m->sched[i]->id, json_stringn(m->mark[i].buf, m->mark[i].len));
	json_object_set_new(o, "marks", marks);
	char *t = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	strbuf_reset(out);
	strbuf_addstr(out, t);
	free(t);
	return JERR_OK;
}

struct job_marks_ctx {
	json_t *marks;
};

static enum jerr mark_from_job(void *ctx, const struct cfg_schedule *sc, struct strbuf *value, bool *found,
			       bool *other, struct jerror *err)
{
	struct job_marks_ctx *j = ctx;
	json_t *v = json_object_get(j->marks, sc->id); /* checked against their basis when queued */
	(void)err;
	(void)other;
	*found = json_is_string(v);
	if (*found)
		strbuf_add(value, json_string_value(v), json_string_length(v));
	return JERR_OK;
}

enum jerr model_marks_load_job(const struct config *cfg, const struct cfg_model *model, const char *job_marks,
			       struct model_marks *m, struct jerror *err)
{
	json_error_t je;
	json_t *o = json_loads(job_marks, 0, &je);
	json_t *marks = json_object_get(o, "marks");
	json_t *full = json_object_get(o, "full");
	enum jerr rc;

	memset(m, 0, sizeof(*m));
	if (!json_is_object(marks) || !json_is_boolean(full)) {
		json_decref(o);
		jerror_set(err, JERR_STATE, "the marks of the job are not readable");
		jerror_detail(err, "work_jobs.marks is %.200s", job_marks);
		return JERR_STATE;
	}
	struct job_marks_ctx j = { marks };
	rc = load_marks(cfg, model, mark_from_job, &j, json_is_true(full), m, err);
	json_decref(o);
	return rc;
}

void model_marks_save(struct model_marks *m, struct state *st)
{
	for (size_t i = 0; i < m->n; i++) {
		if (!m->sched[i] || !m->seen[i].len)
			continue;
		struct jerror e = JERROR_INIT;
		if (marks_store(st, m->sched[i], m->seen[i].buf, &e))
			log_error("%s (the next run reads the same rows again)", e.msg.buf);
		else
			m->saved[i] = true;
		jerror_release(&e);
	}
}

void model_marks_release(struct model_marks *m)
{
	for (size_t i = 0; i < m->n; i++) {
		strbuf_release(&m->mark[i]);
		strbuf_release(&m->seen[i]);
	}
	free(m->sched);
	free(m->column);
	free(m->value);
	free(m->mark);
	free(m->seen);
	free(m->saved);
	memset(m, 0, sizeof(*m));
}
