/*
 * run.c: `joey run`, the driver: picks the run's destinations, starts them, makes one
 * streaming pass per model (diff items go to run_items.c, Braze's answers to
 * run_answers.c), ends them (run_dest.c) and advances the incremental marks. It owns
 * the run's destination contexts and its batch of answers; the report is run_print.c.
 * Called by cmd_run, serve and the worker through run.h.
 */
#include "engine/run.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "engine/diff.h"
#include "engine/marks.h"
#include "engine/run_internal.h"

double run_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void run_progress(struct pass *p, bool final)
{
	uint64_t sent = 0, failed = 0, unchanged = 0;
	double t = run_now_s();
	if ((!p->opts->progress && !p->opts->on_progress) || (!final && t - p->last_progress < 0.25))
		return;
	p->last_progress = t;
	/* the connector's request counters, live: end_dest sets them for good */
	for (size_t i = 0; i < p->n; i++) {
		struct dest_ctx *dc = p->ctx[i];
		if (!dc || !dc->h)
			continue;
		dc->ops->stats(dc->h, &dc->rd->stats);
		dc->rd->counts.requests = dc->rd->stats.requests;
		dc->rd->counts.retries = dc->rd->stats.retries;
		dc->rd->counts.throttled = dc->rd->stats.throttled;
	}
	if (p->opts->on_progress)
		p->opts->on_progress(p->opts->progress_ctx, p->r);
	if (!p->opts->progress)
		return;
	for (size_t i = 0; i < p->r->n_dests; i++) {
		const struct run_counts *c = &p->r->dests[i].counts;
		sent += c->created + c->updated + c->deleted + c->unsubscribed;
		failed += c->failed;
		unchanged += c->unchanged;
	}
	fprintf(p->opts->progress, "\rjoey run: %llu records read, %llu confirmed, %llu unchanged, %llu failed, %.1f s%s",
		(unsigned long long)p->r->records, (unsigned long long)sent, (unsigned long long)unchanged,
		(unsigned long long)failed, t - p->t0, final ? "\n" : "");
	fflush(p->opts->progress);
}

/*
 * Advance the mark of each incremental model whose destinations all took part and
 * all succeeded with no failed row; keep it otherwise (the rows are read again).
 */
static void save_marks(struct run *r, const struct config *cfg, struct state *st)
{
	for (size_t m = 0; m < r->n_models; m++) {
		struct run_model *rm = &r->models[m];
		bool ok = rm->read_ok && rm->seen.len;
		for (size_t i = 0; ok && i < cfg->n_destinations; i++) {
			const struct cfg_destination *d = cfg->destinations[i];
			const struct run_dest *rd = NULL;
			if (d->model != rm->model)
				continue;
			for (size_t k = 0; k < r->n_dests; k++)
				if (r->dests[k].dest == d)
					rd = &r->dests[k];
			/* a destination left out (--destination) has not seen these rows yet */
			ok = rd && rd->status == RUN_SUCCESS && !rd->counts.failed;
		}
		if (!ok)
			continue;
		struct jerror e = JERROR_INIT;
		if (marks_store(st, rm->schedule, rm->seen.buf, &e))
			log_error("%s (the next run reads the same rows again)", e.msg.buf);
		else
			rm->mark_saved = true;
		jerror_release(&e);
	}
}


/* r's destinations: those of cfg that opts names (all without a name); r is reset first. */
static enum jerr pick_dests(struct run *r, const struct config *cfg, const struct run_opts *opts, struct jerror *err)
{
	memset(r, 0, sizeof(*r));
	r->dests = xcalloc(cfg->n_destinations ? cfg->n_destinations : 1, sizeof(*r->dests));
	/* one entry per incremental schedule */
	r->models = xcalloc(cfg->n_schedules ? cfg->n_schedules : 1, sizeof(*r->models));
	for (size_t i = 0; i < cfg->n_destinations; i++) {
		const struct cfg_destination *d = cfg->destinations[i];
		if (opts->only_dest && strcmp(opts->only_dest, d->id))
			continue;
		if (opts->n_only_dests) {
			bool wanted = false;
			for (size_t k = 0; k < opts->n_only_dests && !wanted; k++)
				wanted = !strcmp(opts->only_dests[k], d->id);
			if (!wanted)
				continue;
		}
		struct run_dest *rd = &r->dests[r->n_dests++];
		rd->dest = d;
		rd->max_delete_percent = opts->max_delete_percent >= 0 ? opts->max_delete_percent : d->max_delete_percent;
		rd->status = RUN_RUNNING;
		rd->err = (struct jerror)JERROR_INIT;
		strbuf_init(&rd->unreadable_at, 0);
		strbuf_init(&rd->sync_log_error, 0);
	}
	if (opts->only_dest && !r->n_dests)
		return jerror_set(err, JERR_USAGE, "destination \"%s\" does not exist", opts->only_dest);
	return JERR_OK;
}

/* A new entry of r->models for one schedule of model (its strings empty). */
static struct run_model *add_model(struct run *r, const struct cfg_model *model, const struct cfg_schedule *sched)
{
	struct run_model *rm = &r->models[r->n_models++];
	rm->model = model;
	rm->schedule = sched;
	strbuf_init(&rm->since, 0);
	strbuf_init(&rm->seen, 0);
	return rm;
}

/*
 * A run's pass: every schedule of the model counts (marks.h); mk is loaded, from the
 * store, or for a work item from its job's marks (then its reads keep to its range).
 */
static enum jerr load_run_marks(struct run *r, const struct config *cfg, struct state *st,
				const struct run_opts *opts, const struct cfg_model *model, struct model_marks *mk,
				struct jerror *err)
{
	enum jerr rc = opts->part ? model_marks_load_job(cfg, model, opts->part->marks, mk, err)
				  : model_marks_load(cfg, model, st, opts->full, mk, err);
	if (opts->part)
		mk->read.range = &opts->part->range; /* every source, the changed-records listing too */
	for (size_t i = 0; !rc && i < mk->n; i++) {
		if (!mk->sched[i])
			continue;
		struct run_model *rm = add_model(r, model, mk->sched[i]);
		rm->incremental = mk->incremental;
		if (mk->incremental)
			strbuf_addstr(&rm->since, mk->mark[i].buf);
	}
	return rc;
}

/* A work item of an older job (no marks): from its job's mark, on its primary source, in its key range. */
static enum jerr load_part_mark(struct run *r, const struct config *cfg, const struct run_opts *opts,
				const struct cfg_model *model, struct source_read *read, struct run_model **rmp,
				struct jerror *err)
{
	const struct cfg_schedule *sched = NULL;
	enum jerr rc = marks_primary_schedule(cfg, model, &sched, err);
	if (!rc && sched) {
		struct run_model *rm = *rmp = add_model(r, model, sched);
		read->since_column = cfg_options_str(&sched->options, "column");
		if (opts->part->since) {
			strbuf_addstr(&rm->since, opts->part->since);
			read->since_value = rm->since.buf;
			rm->incremental = true;
		}
	}
	read->range = &opts->part->range;
	return rc;
}

/* What the pass of a model found, into r: marks read, unreadable rows, records read. */
static void note_pass(struct run *r, struct pass *p, size_t first_rm, enum jerr rc, const struct model_marks *mk,
		      const struct record_stats *stats, const uint64_t *held, const struct strbuf *unread)
{
	for (size_t k = first_rm; k < r->n_models; k++) {
		struct run_model *x = &r->models[k];
		x->read_ok = !rc;
		for (size_t i = 0; mk && i < mk->n; i++)
			if (mk->sched[i] == x->schedule)
				strbuf_addstr(&x->seen, mk->seen[i].buf);
	}
	if (!rc && stats->unreadable) {
		/* records unknown this run: the model's destinations end partial */
		for (size_t i = 0; i < p->n; i++) {
			struct run_dest *rd = p->ctx[i]->rd;
			rd->unreadable = stats->unreadable;
			rd->doubt_held = held[i];
			strbuf_addstr(&rd->unreadable_at, unread->buf);
		}
	}
}

/*
 * The mass-delete guard weighs a run's deletes and unsubscribes against the
 * destination's in-scope state rows before the run. Nothing the guard holds is sent
 * before the pass is over (run_items.c spools them; run_send_held decides after), so a
 * full streaming pass counts those rows as it merges them (diff_opts.in_scope), with no
 * scan of its own; the pass writes only rows it has passed, so the count is the one
 * before the run. A partial streaming pass (incremental, changed records, keys) is not
 * counted before either: counting every state row would make it cost the whole state
 * instead of the changes. It holds what it takes out like any pass, and only if it took
 * someone out is it counted after (count_after_pass, run_count_late). A pass that
 * compares in the warehouse is counted before the pass, as a scan, while nothing has
 * been written yet.
 */
static enum jerr count_before_pass(struct pass *p, struct state *st, const struct diff_opts *o, struct jerror *err)
{
	if (o->mode == DIFF_MODE_STREAM)
		return JERR_OK;
	for (size_t i = 0; i < p->n; i++) {
		struct dest_ctx *dc = p->ctx[i];
		enum jerr rc;
		if (dc->counted)
			continue;
		if ((rc = state_count(st, dc->rd->dest->id, &dc->rd->state_records, err)))
			return rc;
		dc->counted = true;
	}
	return JERR_OK;
}

/*
 * After the pass: the count it took. A pass that did not count (a partial streaming
 * pass, or one that turned partial on its own) is counted late (run_count_late) if it
 * has anything held back.
 */
static enum jerr count_after_pass(struct pass *p, const uint64_t *in_scope, struct jerror *err)
{
	for (size_t i = 0; i < p->n; i++) {
		struct dest_ctx *dc = p->ctx[i];
		enum jerr rc;
		if (dc->counted)
			continue;
		if (in_scope[i] != DIFF_NOT_COUNTED) {
			dc->rd->state_records = in_scope[i];
			dc->counted = true;
		} else if (dc->n_spooled && !dc->failed && (rc = run_count_late(dc, err))) {
			return rc;
		}
	}
	return JERR_OK;
}

/*
 * One streaming pass over model for its destinations dests[0..n) (p->ctx): marks,
 * diff, what it found. A source error fails those destinations and returns JERR_OK;
 * only an interruption comes back.
 */
static enum jerr pass_model(struct run *r, const struct config *cfg, struct state *st, const struct run_opts *opts,
			    struct pass *p, const struct cfg_model *model, struct cfg_destination **dests, size_t n,
			    struct jerror *err)
{
	struct record_stats stats = { 0 };
	struct diff_visitor v = { run_visit, p };
	struct source_read read = { 0 };
	struct run_model *rm = NULL;
	struct model_marks mk;
	struct strbuf unread = STRBUF_INIT;
	size_t first_rm = r->n_models;
	bool marks = !opts->part || opts->part->marks;
	enum jerr rc;
	memset(&mk, 0, sizeof(mk));
	if (marks)
		rc = load_run_marks(r, cfg, st, opts, model, &mk, err);
	else
		rc = load_part_mark(r, cfg, opts, model, &read, &rm, err);
	struct diff_opts dopts = { .read = marks ? (mk.use_read || opts->part ? &mk.read : NULL) : &read,
				   .unchanged = run_visit_unchanged, .write_digests = true,
				   .scope = marks && mk.scope.since_column ? &mk.scope : NULL,
				   .since_at = marks ? mk.seen : NULL, .unreadable_at = &unread };
	uint64_t *held = xcalloc(n, sizeof(*held));
	uint64_t *in_scope = xcalloc(n, sizeof(*in_scope));
	dopts.held = held;
	dopts.in_scope = in_scope;
	struct diff_report drep;
	dopts.mode = diff_mode_choose(dests, n, opts->diff_set ? &opts->diff : NULL);
	if (!rc)
		rc = count_before_pass(p, st, &dopts, err);
	if (!rc)
		rc = diff_model_opts(cfg, model, dests, n, st, &dopts, &v, &stats, !marks && rm ? &rm->seen : NULL,
				     &drep, err);
	if (!rc)
		rc = count_after_pass(p, in_scope, err);
	if (!rc && dopts.mode != DIFF_MODE_STREAM) {
		r->diff_asked = true;
		r->warehouse_models += drep.warehouse;
		r->records_read += drep.read;
		r->candidates += drep.candidates;
		r->digests += drep.digests;
	}
	note_pass(r, p, first_rm, rc, marks ? &mk : NULL, &stats, held, &unread);
	strbuf_release(&unread);
	free(held);
	free(in_scope);
	model_marks_release(&mk);
	r->records += stats.records;
	for (size_t i = 0; i < p->n; i++)
		p->ctx[i]->rd->records_read += stats.records;
	if (rc && rc != JERR_INTERRUPTED) {
		/* the source failed: every destination of this model fails with it */
		for (size_t i = 0; i < p->n; i++)
			run_fail_dest(p->ctx[i], err);
		rc = JERR_OK;
	}
	return rc;
}

/* The destinations of model still going, into dests and p->ctx; returns how many. */
static size_t model_dests(struct run *r, const struct cfg_model *model, struct dest_ctx *all, struct pass *p,
			  struct cfg_destination **dests)
{
	size_t n = 0;
	p->n = 0;
	for (size_t i = 0; i < r->n_dests; i++) {
		if (r->dests[i].dest->model != model || all[i].failed)
			continue;
		dests[n++] = (struct cfg_destination *)r->dests[i].dest;
		p->ctx[p->n++] = &all[i];
	}
	return n;
}

/* An interrupted run: every destination still going ends RUN_INTERRUPTED. */
static void interrupt_dests(struct run *r, struct dest_ctx *all)
{
	for (size_t i = 0; i < r->n_dests; i++)
		if (!all[i].failed) {
			all[i].failed = true;
			r->dests[i].status = RUN_INTERRUPTED;
			jerror_set(&r->dests[i].err, JERR_INTERRUPTED, "run interrupted");
		}
}

enum jerr run_execute(struct run *r, const struct config *cfg, struct state *st,
		      const struct run_opts *opts, struct jerror *err)
{
	struct dest_ctx *all;
	struct pass p = { .r = r, .opts = opts };
	struct batch batch = { .st = st, .bytes = STRBUF_INIT };
	enum jerr rc = JERR_OK;
	double t0 = run_now_s();

	if ((rc = pick_dests(r, cfg, opts, err)))
		return rc;

	/* a stop cancels the warehouse statement this thread waits on (source.h) */
	volatile int *prev_stop = source_set_stop(opts->stop);
	all = xcalloc(r->n_dests ? r->n_dests : 1, sizeof(*all));
	p.ctx = xcalloc(r->n_dests ? r->n_dests : 1, sizeof(*p.ctx));
	p.t0 = t0;
	batch.all = all;
	batch.n_all = r->n_dests;
	for (size_t i = 0; i < r->n_dests; i++) {
		all[i] = (struct dest_ctx){ .rd = &r->dests[i], .st = st, .batch = &batch, .opts = opts, .pass = &p };
		arena_init(&all[i].arena);
	}
	for (size_t i = 0; i < r->n_dests; i++)
		if ((rc = run_start_dest(&all[i], cfg, err)))
			goto out;
	run_progress(&p, false); /* the run ids exist now */

	for (size_t m = 0; m < cfg->n_models && !rc; m++) {
		const struct cfg_model *model = cfg->models[m];
		struct cfg_destination **dests = xcalloc(r->n_dests ? r->n_dests : 1, sizeof(*dests));
		size_t n = model_dests(r, model, all, &p, dests);
		if (n)
			rc = pass_model(r, cfg, st, opts, &p, model, dests, n, err);
		free(dests);
	}
	if (rc == JERR_INTERRUPTED) {
		interrupt_dests(r, all);
		rc = JERR_OK;
	}
out:
	for (size_t i = 0; i < r->n_dests; i++)
		run_end_dest(&all[i], run_now_s() - t0);
	/* run_end_dest wrote every answer: the marks come after them, outside their transactions */
	free(batch.v);
	strbuf_release(&batch.bytes);
	if (!rc && !opts->part)
		save_marks(r, cfg, st);
	run_progress(&p, true);
	free(all);
	free(p.ctx);
	source_set_stop(prev_stop);
	return rc;
}

void run_release(struct run *r)
{
	for (size_t i = 0; i < r->n_dests; i++) {
		jerror_release(&r->dests[i].err);
		strbuf_release(&r->dests[i].unreadable_at);
		strbuf_release(&r->dests[i].sync_log_error);
	}
	for (size_t m = 0; m < r->n_models; m++) {
		strbuf_release(&r->models[m].since);
		strbuf_release(&r->models[m].seen);
	}
	free(r->models);
	free(r->dests);
	memset(r, 0, sizeof(*r));
}
