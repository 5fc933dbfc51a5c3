/* sched.c: due schedules, one wanted/running mark per destination, jobs by model. */
#include "sched/sched.h"

#include <stdlib.h>
#include <string.h>

#include "base/cron.h"
#include "base/xalloc.h"

/*
 * Design note: each destination is in one of four states, made of two marks.
 *
 *            request                 take                   done
 *   idle ------------> wanted ------------> running -------------------> idle
 *                        ^                     |
 *                        |                     | request (any number)
 *                        |       done          v
 *                        +------------- running + wanted
 *
 * `wanted` is a single bit plus the merged request (oldest trigger and time, OR-ed
 * flags), so requests never stack: the queue holds at most one entry per destination
 * and is bounded by the number of destinations. sched_take clears `wanted` and sets
 * `running`; sched_done clears `running` and leaves `wanted` alone, so a destination
 * asked for during its run becomes takeable again.
 *
 * A reload rebuilds the destination array in config order, moving the entries of
 * destinations that still exist. A removed destination that is running stays, with
 * in_config false and its wanted mark cleared (it can never be handed out again), until
 * sched_done drops it. Removed destinations that are not running are freed at once.
 *
 * Schedules keep their state by id across reloads. Frequency schedules have no stored
 * due time: it is derived on every look from the last fire and the oldest of the last
 * run starts of the model's destinations (both survive reloads), so sched_set_last_run
 * and sched_take move it without any bookkeeping. The oldest, not the latest: a
 * schedule is there to run every destination of its model, so it is due a frequency
 * after the time since which each of them has started a run. A run of one destination
 * (the API, a retry) then never postpones the others (with the latest, an API run of
 * one destination every 35 s kept a 60 s schedule from ever firing for the rest),
 * while a run of all of them (the schedule's own, or the API's for the model) still
 * does, so a schedule does not fire right after one. Cron schedules store their next
 * matching minute.
 */

enum timing { TIMING_NONE, TIMING_FREQUENCY, TIMING_CRON };

struct dest {
	char *id;
	char *model_id;
	bool in_config; /* false: removed by a reload, kept only until its run ends */
	bool running, wanted;
	uint64_t job_seq; /* while running: the seq of the job it runs in */
	int64_t last_run; /* latest start of a run, -1 if unknown */
	/* the merged request, meaningful while wanted */
	enum sched_trigger trigger; /* of the oldest request */
	int64_t requested_at;       /* oldest request */
	int64_t sched_at;           /* time of the oldest schedule request, for schedule_id */
	char *schedule_id;          /* oldest schedule that fired for it, or NULL */
	bool full, force;
};

struct schedule {
	char *id;
	char *model_id; /* NULL when the source has no model: then timing is TIMING_NONE */
	enum timing timing;
	int64_t freq_ms;
	char *cron_expr;
	struct cron cron;
	int64_t loaded_at;  /* when this timing was first seen: a never-run frequency schedule is due then */
	int64_t last_fired; /* -1 if never */
	int64_t cron_due;   /* cron: next matching minute, -1 if none */
};

struct sched {
	struct dest *dests; /* in config order; removed-but-running ones at the end */
	size_t n_dests;
	struct schedule *scheds;
	size_t n_scheds;
	char **models; /* ids of the config's models */
	size_t n_models;
	uint64_t last_seq; /* of the last job handed out */
};

static const char *const trigger_names[] = { "schedule", "api", "retry" };

const char *sched_trigger_name(enum sched_trigger t)
{
	if ((unsigned)t >= ARRAY_SIZE(trigger_names))
		return "unknown";
	return trigger_names[t];
}

static int64_t add_sat(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

static char *dup_or_null(const char *str)
{
	return str ? xstrdup(str) : NULL;
}

static bool same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return !strcmp(a, b);
}

/* ---- lifetime ---- */

struct sched *sched_new(void)
{
	return xcalloc(1, sizeof(struct sched));
}

static void dest_release(struct dest *d)
{
	free(d->id);
	free(d->model_id);
	free(d->schedule_id);
	memset(d, 0, sizeof(*d));
}

static void schedule_release(struct schedule *sc)
{
	free(sc->id);
	free(sc->model_id);
	free(sc->cron_expr);
	memset(sc, 0, sizeof(*sc));
}

static void free_models(struct sched *s)
{
	for (size_t i = 0; i < s->n_models; i++)
		free(s->models[i]);
	free(s->models);
	s->models = NULL;
	s->n_models = 0;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_dests; i++)
		dest_release(&s->dests[i]);
	free(s->dests);
	for (size_t i = 0; i < s->n_scheds; i++)
		schedule_release(&s->scheds[i]);
	free(s->scheds);
	free_models(s);
	free(s);
}

/* ---- look-ups ---- */

/* Any entry with this id, current or removed-but-running; NULL if none. */
static struct dest *find_dest(const struct sched *s, const char *id)
{
	if (!id)
		return NULL;
	for (size_t i = 0; i < s->n_dests; i++)
		if (s->dests[i].id && !strcmp(s->dests[i].id, id))
			return &s->dests[i];
	return NULL;
}

static struct schedule *find_schedule(const struct sched *s, const char *id)
{
	if (!id)
		return NULL;
	for (size_t i = 0; i < s->n_scheds; i++)
		if (s->scheds[i].id && !strcmp(s->scheds[i].id, id))
			return &s->scheds[i];
	return NULL;
}

static bool model_known(const struct sched *s, const char *model_id)
{
	for (size_t i = 0; i < s->n_models; i++)
		if (!strcmp(s->models[i], model_id))
			return true;
	return false;
}

/*
 * The oldest of the last run starts of model_id's destinations (removed ones left out):
 * every destination of the model has started a run since. -1 if a destination never
 * ran (or its run is unknown), or the model has none.
 */
static int64_t model_covered_since(const struct sched *s, const char *model_id)
{
	int64_t oldest = -1;
	bool any = false;
	if (!model_id)
		return -1;
	for (size_t i = 0; i < s->n_dests; i++) {
		const struct dest *d = &s->dests[i];
		if (!d->in_config || !d->model_id || strcmp(d->model_id, model_id))
			continue;
		if (d->last_run < 0)
			return -1;
		if (!any || d->last_run < oldest)
			oldest = d->last_run;
		any = true;
	}
	return oldest;
}

static int64_t schedule_due(const struct sched *s, const struct schedule *sc)
{
	int64_t base;

	switch (sc->timing) {
	case TIMING_CRON:
		return sc->cron_due;
	case TIMING_FREQUENCY:
		base = model_covered_since(s, sc->model_id);
		if (sc->last_fired > base)
			base = sc->last_fired;
		return base < 0 ? sc->loaded_at : add_sat(base, sc->freq_ms);
	case TIMING_NONE:
		break;
	}
	return -1;
}

/* ---- config ---- */

/* The timing a config schedule asks for; *c is filled for TIMING_CRON. */
static enum timing timing_of(const struct cfg_schedule *cs, struct cron *c)
{
	if (!cs->source || !cs->source->model || !cs->source->model->id)
		return TIMING_NONE;
	if (cs->cron) {
		struct jerror err = JERROR_INIT;
		enum jerr rc = cron_parse(cs->cron, c, &err);
		jerror_release(&err);
		if (rc == JERR_OK)
			return TIMING_CRON;
	}
	if (cs->recurring && cs->recurring_frequency_ms > 0)
		return TIMING_FREQUENCY;
	return TIMING_NONE;
}

static bool same_timing(const struct schedule *sc, enum timing t, const struct cfg_schedule *cs)
{
	if (sc->timing != t)
		return false;
	if (t == TIMING_FREQUENCY)
		return sc->freq_ms == cs->recurring_frequency_ms;
	if (t == TIMING_CRON)
		return same_str(sc->cron_expr, cs->cron);
	return true;
}

static void set_dests(struct sched *s, const struct config *cfg)
{
	struct dest *nd = NULL;
	size_t n = 0, alloc = 0;

	for (size_t i = 0; cfg && i < cfg->n_models; i++) {
		const struct cfg_model *m = cfg->models[i];
		if (!m || !m->id)
			continue;
		for (size_t j = 0; j < m->n_destinations; j++) {
			const struct cfg_destination *cd = m->destinations[j];
			bool dup = false;
			if (!cd || !cd->id)
				continue;
			for (size_t k = 0; k < n && !dup; k++)
				dup = !strcmp(nd[k].id, cd->id);
			if (dup)
				continue;
			ALLOC_GROW(nd, n + 1, alloc);
			struct dest *old = find_dest(s, cd->id);
			if (old) {
				nd[n] = *old;
				memset(old, 0, sizeof(*old)); /* moved */
				free(nd[n].model_id);
			} else {
				memset(&nd[n], 0, sizeof(nd[n]));
				nd[n].id = xstrdup(cd->id);
				nd[n].last_run = -1;
			}
			nd[n].model_id = xstrdup(m->id);
			nd[n].in_config = true;
			n++;
		}
	}
	for (size_t i = 0; i < s->n_dests; i++) {
		struct dest *d = &s->dests[i];
		if (!d->id)
			continue; /* moved */
		if (!d->running) {
			dest_release(d);
			continue;
		}
		/* removed while running: kept (never handed out again) until sched_done */
		ALLOC_GROW(nd, n + 1, alloc);
		nd[n] = *d;
		nd[n].in_config = false;
		nd[n].wanted = false;
		free(nd[n].schedule_id);
		nd[n].schedule_id = NULL;
		n++;
	}
	free(s->dests);
	s->dests = nd;
	s->n_dests = n;
}

static void set_schedules(struct sched *s, const struct config *cfg, int64_t now_ms)
{
	struct schedule *ns = NULL;
	size_t n = 0, alloc = 0;

	for (size_t i = 0; cfg && i < cfg->n_schedules; i++) {
		const struct cfg_schedule *cs = cfg->schedules[i];
		struct cron c;
		bool dup = false;
		if (!cs || !cs->id)
			continue;
		for (size_t k = 0; k < n && !dup; k++)
			dup = !strcmp(ns[k].id, cs->id);
		if (dup)
			continue;
		memset(&c, 0, sizeof(c));
		enum timing t = timing_of(cs, &c);
		struct schedule *old = find_schedule(s, cs->id);
		ALLOC_GROW(ns, n + 1, alloc);
		struct schedule *sc = &ns[n++];
		if (old && same_timing(old, t, cs)) {
			*sc = *old; /* keeps last_fired, loaded_at and the cron due time */
			memset(old, 0, sizeof(*old)); /* moved */
		} else {
			memset(sc, 0, sizeof(*sc));
			sc->id = xstrdup(cs->id);
			sc->timing = t;
			sc->freq_ms = t == TIMING_FREQUENCY ? cs->recurring_frequency_ms : 0;
			sc->cron_expr = t == TIMING_CRON ? xstrdup(cs->cron) : NULL;
			sc->cron = c;
			sc->loaded_at = now_ms;
			sc->last_fired = old ? old->last_fired : -1;
			sc->cron_due = t == TIMING_CRON ? cron_next(&c, now_ms) : -1;
		}
		free(sc->model_id);
		sc->model_id = dup_or_null(cs->source && cs->source->model ? cs->source->model->id : NULL);
	}
	for (size_t i = 0; i < s->n_scheds; i++)
		schedule_release(&s->scheds[i]); /* moved entries are all zero */
	free(s->scheds);
	s->scheds = ns;
	s->n_scheds = n;
}

void sched_set_config(struct sched *s, const struct config *cfg, int64_t now_ms)
{
	free_models(s);
	if (cfg && cfg->n_models) {
		s->models = xcalloc(cfg->n_models, sizeof(*s->models));
		for (size_t i = 0; i < cfg->n_models; i++)
			if (cfg->models[i] && cfg->models[i]->id)
				s->models[s->n_models++] = xstrdup(cfg->models[i]->id);
	}
	set_dests(s, cfg);
	set_schedules(s, cfg, now_ms);
}

void sched_restart_schedules(struct sched *s, const struct config *cfg, int64_t now_ms)
{
	set_schedules(s, NULL, now_ms);
	set_schedules(s, cfg, now_ms);
}

void sched_set_last_run(struct sched *s, const char *dest_id, int64_t started_at_ms)
{
	struct dest *d = find_dest(s, dest_id);
	if (d && started_at_ms > d->last_run)
		d->last_run = started_at_ms;
}

/* ---- requests ---- */

static void want(struct dest *d, enum sched_trigger trigger, const char *schedule_id, bool full,
		 bool force, int64_t now_ms, struct sched_request_result *res)
{
	if (d->running)
		res->n_queued++;
	else
		res->n_started++;
	if (!d->wanted) {
		d->wanted = true;
		d->trigger = trigger;
		d->requested_at = now_ms;
		d->full = full;
		d->force = force;
		free(d->schedule_id);
		d->schedule_id = dup_or_null(schedule_id);
		d->sched_at = now_ms;
		return;
	}
	if (now_ms < d->requested_at) {
		d->trigger = trigger;
		d->requested_at = now_ms;
	}
	if (schedule_id && (!d->schedule_id || now_ms < d->sched_at)) {
		free(d->schedule_id);
		d->schedule_id = xstrdup(schedule_id);
		d->sched_at = now_ms;
	}
	d->full |= full;
	d->force |= force;
}

static bool request(struct sched *s, const char *model_id, const char *dest_id,
		    enum sched_trigger trigger, const char *schedule_id, bool full, bool force,
		    int64_t now_ms, struct sched_request_result *res)
{
	struct sched_request_result dummy;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	if (model_id && !model_known(s, model_id))
		return false;
	if (dest_id) {
		struct dest *d = find_dest(s, dest_id);
		if (!d || !d->in_config || (model_id && strcmp(d->model_id, model_id)))
			return false;
		want(d, trigger, schedule_id, full, force, now_ms, res);
		return true;
	}
	for (size_t i = 0; i < s->n_dests; i++) {
		struct dest *d = &s->dests[i];
		if (d->in_config && (!model_id || !strcmp(d->model_id, model_id)))
			want(d, trigger, schedule_id, full, force, now_ms, res);
	}
	return true;
}

bool sched_request(struct sched *s, const char *model_id, const char *dest_id,
		   enum sched_trigger trigger, bool full, bool force, int64_t now_ms,
		   struct sched_request_result *res)
{
	return request(s, model_id, dest_id, trigger, NULL, full, force, now_ms, res);
}

/*
 * Times noted past now_ms: the wall clock went back (an NTP step, a clock that had been
 * set wrong). They count as now_ms, so a frequency schedule waits one frequency and a
 * cron schedule its next matching minute, not until the clock is back where it was.
 */
static void clock_went_back(struct sched *s, int64_t now_ms)
{
	for (size_t i = 0; i < s->n_dests; i++)
		if (s->dests[i].last_run > now_ms)
			s->dests[i].last_run = now_ms;
	for (size_t i = 0; i < s->n_scheds; i++) {
		struct schedule *sc = &s->scheds[i];
		if (sc->last_fired <= now_ms && sc->loaded_at <= now_ms)
			continue;
		if (sc->last_fired > now_ms)
			sc->last_fired = now_ms;
		if (sc->loaded_at > now_ms)
			sc->loaded_at = now_ms;
		if (sc->timing == TIMING_CRON) {
			int64_t next = cron_next(&sc->cron, now_ms);
			if (next >= 0 && (sc->cron_due < 0 || next < sc->cron_due))
				sc->cron_due = next;
		}
	}
}

int64_t sched_tick(struct sched *s, int64_t now_ms)
{
	int64_t wait = -1;

	clock_went_back(s, now_ms);
	for (size_t i = 0; i < s->n_scheds; i++) {
		struct schedule *sc = &s->scheds[i];
		int64_t due = schedule_due(s, sc);
		if (due >= 0 && due <= now_ms) {
			(void)request(s, sc->model_id, NULL, SCHED_TRIGGER_SCHEDULE, sc->id, false, false,
				      now_ms, NULL);
			sc->last_fired = now_ms;
			if (sc->timing == TIMING_CRON)
				sc->cron_due = cron_next(&sc->cron, now_ms);
			due = schedule_due(s, sc);
		}
		if (due < 0)
			continue;
		int64_t w = due > now_ms ? add_sat(due, -now_ms) : 0;
		if (wait < 0 || w < wait)
			wait = w;
	}
	return wait;
}

bool sched_any_due(const struct sched *s, int64_t now_ms)
{
	for (size_t i = 0; i < s->n_scheds; i++) {
		int64_t due = schedule_due(s, &s->scheds[i]);
		if (due >= 0 && due <= now_ms)
			return true;
	}
	return false;
}

/* ---- jobs ---- */

static bool takeable(const struct dest *d)
{
	return d->in_config && d->wanted && !d->running;
}

bool sched_take(struct sched *s, int64_t now_ms, struct sched_job *job)
{
	const struct dest *first = NULL;
	const struct dest *oldest_sched = NULL;
	size_t n = 0;

	memset(job, 0, sizeof(*job));
	/* the model of the oldest request goes first; ties in config order */
	for (size_t i = 0; i < s->n_dests; i++)
		if (takeable(&s->dests[i]) && (!first || s->dests[i].requested_at < first->requested_at))
			first = &s->dests[i];
	if (!first)
		return false;
	job->seq = ++s->last_seq;
	job->model_id = xstrdup(first->model_id);
	job->trigger = first->trigger;
	job->requested_at = first->requested_at;
	for (size_t i = 0; i < s->n_dests; i++)
		if (takeable(&s->dests[i]) && !strcmp(s->dests[i].model_id, job->model_id))
			n++;
	job->dest_ids = xcalloc(n, sizeof(*job->dest_ids));
	for (size_t i = 0; i < s->n_dests; i++) {
		struct dest *d = &s->dests[i];
		if (!takeable(d) || strcmp(d->model_id, job->model_id))
			continue;
		job->dest_ids[job->n_dests++] = xstrdup(d->id);
		job->full |= d->full;
		job->force |= d->force;
		if (d->schedule_id && (!oldest_sched || d->sched_at < oldest_sched->sched_at))
			oldest_sched = d;
	}
	job->schedule_id = oldest_sched ? xstrdup(oldest_sched->schedule_id) : NULL;
	for (size_t i = 0; i < s->n_dests; i++) {
		struct dest *d = &s->dests[i];
		if (!takeable(d) || strcmp(d->model_id, job->model_id))
			continue;
		d->wanted = false;
		d->running = true;
		d->job_seq = job->seq;
		d->full = d->force = false;
		free(d->schedule_id);
		d->schedule_id = NULL;
		if (now_ms > d->last_run)
			d->last_run = now_ms;
	}
	return true;
}

void sched_done(struct sched *s, const struct sched_job *job, int64_t now_ms)
{
	for (size_t i = 0; i < job->n_dests; i++) {
		struct dest *d = find_dest(s, job->dest_ids[i]);
		if (!d || !d->running || d->job_seq != job->seq)
			continue;
		d->running = false;
		if (!d->in_config) {
			size_t at = (size_t)(d - s->dests);
			dest_release(d);
			memmove(d, d + 1, (s->n_dests - at - 1) * sizeof(*d));
			s->n_dests--;
		}
	}
}

void sched_job_release(struct sched_job *job)
{
	free(job->model_id);
	for (size_t i = 0; i < job->n_dests; i++)
		free(job->dest_ids[i]);
	free(job->dest_ids);
	free(job->schedule_id);
	memset(job, 0, sizeof(*job));
}

/* ---- introspection ---- */

bool sched_dest_running(const struct sched *s, const char *dest_id)
{
	const struct dest *d = find_dest(s, dest_id);
	return d && d->running;
}

bool sched_dest_queued(const struct sched *s, const char *dest_id)
{
	const struct dest *d = find_dest(s, dest_id);
	return d && d->in_config && d->wanted;
}

size_t sched_queue_depth(const struct sched *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n_dests; i++)
		if (takeable(&s->dests[i]))
			n++;
	return n;
}

int64_t sched_next_due(const struct sched *s, const char *schedule_id)
{
	const struct schedule *sc = find_schedule(s, schedule_id);
	return sc ? schedule_due(s, sc) : -1;
}

int64_t sched_last_fired(const struct sched *s, const char *schedule_id)
{
	const struct schedule *sc = find_schedule(s, schedule_id);
	return sc ? sc->last_fired : -1;
}
