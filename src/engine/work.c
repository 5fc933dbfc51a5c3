/* work.c: jobs split into key-range work items for workers (queueing, running, closing). */
#include "engine/work.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "engine/marks.h"
#include "engine/record.h"
#include "state/confgen.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the key sample ---- */

/*
 * Every stride-th distinct key is kept. When the sample is full, every other kept key
 * is dropped and the stride doubles, so the kept keys stay evenly spaced over all the
 * keys seen while memory stays at SAMPLE_MAX keys.
 */
#define SAMPLE_MAX 4096

struct sample_key {
	bool is_int;
	int64_t i;
	char *text;
	size_t len;
};

struct work_sample {
	struct sample_key *keys;
	size_t n;
	uint64_t seen, stride;
	struct rkey *bounds; /* work_sample_bounds' answer */
	bool have_last;      /* the last key added, to skip repeats */
	struct rkey last;
	struct strbuf last_text;
};

struct work_sample *work_sample_new(void)
{
	struct work_sample *s = xcalloc(1, sizeof(*s));
	s->keys = xcalloc(SAMPLE_MAX, sizeof(*s->keys));
	s->stride = 1;
	strbuf_init(&s->last_text, 0);
	return s;
}

void work_sample_add(struct work_sample *s, const struct rkey *k)
{
	if (s->have_last) {
		s->last.text = (struct slice){ s->last_text.buf, s->last_text.len };
		if (key_compare(&s->last, k) == 0)
			return;
	}
	s->have_last = true;
	s->last = *k;
	strbuf_reset(&s->last_text);
	strbuf_addslice(&s->last_text, k->text);
	if (s->seen++ % s->stride)
		return;
	if (s->n == SAMPLE_MAX) {
		for (size_t i = 0; i < s->n; i++) {
			if (i % 2)
				free(s->keys[i].text);
			else
				s->keys[i / 2] = s->keys[i];
		}
		s->n /= 2;
		s->stride *= 2;
		if ((s->seen - 1) % s->stride)
			return;
	}
	struct sample_key *x = &s->keys[s->n++];
	x->is_int = k->is_int;
	x->i = k->i;
	x->len = k->text.len;
	x->text = xmalloc(k->text.len + 1);
	memcpy(x->text, k->text.ptr, k->text.len);
	x->text[k->text.len] = 0;
}

enum jerr work_sample_keys(const struct config *cfg, const struct cfg_model *model,
			   const struct source_read *read, struct work_sample **out, struct jerror *err)
{
	const struct cfg_source *src = model->primary_source;
	const struct source_ops *ops = NULL;
	struct work_sample *s = work_sample_new();
	struct source_cursor *cur = NULL;
	struct source_row *row;
	void *conn = NULL;
	enum jerr rc;

	*out = NULL;
	if (!src) {
		rc = jerror_set(err, JERR_CONFIG, "model \"%s\" has no primary source", model->id);
		goto out;
	}
	ops = source_ops_for_app(src->app->type);
	if (!ops) {
		rc = jerror_set(err, JERR_CONFIG, "app \"%s\" of type \"%s\" cannot be read as a source",
				src->app->id, src->app->type);
		goto out;
	}
	if ((rc = ops->connect(src->app, cfg->root, &conn, err)))
		goto out;
	/*
	 * The keys only: the same source without its properties. Such a statement is not
	 * grouped, so a key with several rows comes several times (in order): the rows
	 * are read with the connector's own next, without the duplicate check.
	 */
	struct cfg_source keys_only = *src;
	keys_only.properties = NULL;
	keys_only.n_properties = 0;
	if ((rc = ops->open_cursor(conn, &keys_only, read, &cur, err)))
		goto out;
	while ((rc = cur->ops->next(cur, &row, err)) == JERR_OK && row)
		work_sample_add(s, &row->key);
out:
	if (cur)
		source_cursor_close(cur);
	if (conn)
		ops->disconnect(conn);
	if (rc) {
		work_sample_free(s);
		return rc;
	}
	*out = s;
	return JERR_OK;
}

uint64_t work_sample_count(const struct work_sample *s)
{
	return s ? s->seen : 0;
}

size_t work_sample_bounds(const struct work_sample *s, size_t n, const struct rkey **bounds)
{
	struct work_sample *w = (struct work_sample *)s;
	size_t k = 0;
	*bounds = NULL;
	if (!s || n < 2 || s->n < 2)
		return 0;
	if (n > s->n)
		n = s->n;
	free(w->bounds);
	w->bounds = xcalloc(n, sizeof(*w->bounds));
	for (size_t i = 1; i < n; i++) {
		const struct sample_key *x = &s->keys[i * s->n / n];
		struct rkey b = { .is_int = x->is_int, .i = x->i, .text = { x->text, x->len } };
		if (k && key_compare(&b, &w->bounds[k - 1]) <= 0)
			continue; /* strictly increasing */
		w->bounds[k++] = b;
	}
	*bounds = w->bounds;
	return k;
}

void work_sample_free(struct work_sample *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->keys[i].text);
	free(s->keys);
	free(s->bounds);
	strbuf_release(&s->last_text);
	free(s);
}

/* ---- one config for a job ---- */

enum jerr work_publish_config(const struct config *cfg, struct state *st, const char *origin, struct jerror *err)
{
	const char *owner = NULL;
	const struct cfg_option *lit = config_literal_secret(cfg, &owner);
	char why[512], host[256] = "?", by[400];
	gethostname(host, sizeof(host) - 1);
	snprintf(by, sizeof(by), "%s:%ld %s", host, (long)getpid(), origin);
	if (lit)
		snprintf(why, sizeof(why),
			 "option \"%s\" of \"%s\" is a secret written in the config files (%s:%d), and the state store "
			 "never holds secrets",
			 lit->key, owner ? owner : "?", lit->pos.file ? lit->pos.file : "?", lit->pos.line);
	return state_config_publish(st, cfg->generation, lit ? NULL : cfg->snapshot, cfg->snapshot_len,
				    lit ? why : NULL, by, err);
}

/* A short form of a generation for messages: its first 12 hex digits. */
#define GEN_SHORT(g) 12, (g)

/* Load dir (or the snapshot snap) into *out; keep it only when it is generation gen. */
static bool load_generation(const struct config *cfg, const struct config_opts *co, const char *gen,
			    const struct strbuf *snap, struct config **out, struct strbuf *failed)
{
	struct config_opts o = co ? *co : (struct config_opts){ 0 };
	struct config *c = NULL;
	struct jerror e = JERROR_INIT;
	if (snap) {
		o.snapshot = snap->buf;
		o.snapshot_len = snap->len;
		o.root = cfg->root;
	}
	enum jerr rc = config_load(cfg->dir, &o, &c, &e);
	*out = NULL;
	if (!rc && !strcmp(c->generation, gen)) {
		*out = c;
	} else if (snap && c && rc == JERR_CONFIG) {
		/* the first error says what is missing here (a secret, most likely) */
		for (size_t i = 0; i < c->n_diags; i++)
			if (c->diags[i].severity == DIAG_ERROR) {
				strbuf_addf(failed, "%s:%d: %s", c->diags[i].pos.file ? c->diags[i].pos.file : "?",
					    c->diags[i].pos.line, c->diags[i].message);
				if (c->diags[i].hint)
					strbuf_addf(failed, " (hint: %s)", c->diags[i].hint);
				break;
			}
		if (c->n_errors > 1)
			strbuf_addf(failed, "; %zu errors in all", c->n_errors);
	} else if (snap) {
		strbuf_addstr(failed, rc ? e.msg.buf : "it loaded as another generation");
	}
	if (!*out)
		config_free(c);
	jerror_release(&e);
	return *out != NULL;
}

enum jerr work_item_config(const struct config *cfg, const struct config_opts *co, struct state *st,
			   const struct state_work_item *it, struct config **cache, const struct config **use,
			   struct jerror *why, struct jerror *err)
{
	const char *gen = it->config_gen.buf;
	struct strbuf snap = STRBUF_INIT, withheld = STRBUF_INIT, failed = STRBUF_INIT;
	struct config *c = NULL;
	bool found = false;
	enum jerr rc = JERR_OK;

	*use = NULL;
	if (!it->config_gen.len || !strcmp(gen, cfg->generation)) {
		*use = cfg;
		return JERR_OK;
	}
	if (*cache && !strcmp((*cache)->generation, gen)) {
		*use = *cache;
		return JERR_OK;
	}
	if (load_generation(cfg, co, gen, NULL, &c, &failed)) {
		log_warn("job %" PRId64 " was queued with config generation %.*s, which is what config directory \"%s\" "
			 "holds now, but not what this worker loaded (%.*s): running its items with the files as they "
			 "are now; reload this worker (SIGHUP) to use them for everything",
			 it->job_id, GEN_SHORT(gen), cfg->dir, GEN_SHORT(cfg->generation));
		goto got;
	}
	if ((rc = state_config_fetch(st, gen, &snap, &withheld, &found, err)))
		goto out;
	if (found && snap.len && load_generation(cfg, co, gen, &snap, &c, &failed)) {
		log_warn("job %" PRId64 " was queued with config generation %.*s; this worker's config directory \"%s\" "
			 "holds %.*s: running its items with the job's config from the state store",
			 it->job_id, GEN_SHORT(gen), cfg->dir, GEN_SHORT(cfg->generation));
		goto got;
	}
	jerror_set(why, JERR_CONFIG,
		   "work item %d/%d of job %" PRId64 " not run: it was queued with config generation %.*s, and this "
		   "worker has %.*s and cannot load the job's",
		   it->part + 1, it->n_parts, it->job_id, GEN_SHORT(gen), GEN_SHORT(cfg->generation));
	if (!found)
		jerror_detail(why, "the state store has no copy of generation %.*s (dropped after %d newer ones, or "
				   "queued by a joey that did not record it)",
			      GEN_SHORT(gen), STATE_CONFIG_KEEP);
	else if (!snap.len)
		jerror_detail(why, "the state store holds no snapshot of it: %s", withheld.buf);
	else
		jerror_detail(why, "its snapshot from the state store does not load here: %s", failed.buf);
	jerror_hint(why, "give every worker the same config files and secrets (send them SIGHUP after a change), "
			 "or keep secrets in \"${NAME}\" references; then run the destination again");
	goto out;
got:
	config_free(*cache);
	*cache = c;
	*use = c;
out:
	strbuf_release(&snap);
	strbuf_release(&withheld);
	strbuf_release(&failed);
	return rc;
}

/*
 * Before a job is queued with cfg: say so when the store's most recent generation is
 * another (the files changed on another machine, and this process was not reloaded).
 * The job still runs with cfg, on every worker; this is a warning for the operator.
 */
static void note_other_config(const struct config *cfg, struct state *st, const struct cfg_model *model)
{
	struct strbuf gen = STRBUF_INIT, origin = STRBUF_INIT;
	struct jerror e = JERROR_INIT;
	int64_t at = 0;
	bool found = false;
	if (!state_config_latest(st, &gen, &origin, &at, &found, &e) && found && strcmp(gen.buf, cfg->generation))
		log_warn("model \"%s\": the state store's most recent config generation is %.*s (recorded by %s), "
			 "not this process's %.*s; the job is queued with %.*s and runs with it on every worker; if "
			 "the config changed elsewhere, reload this process (SIGHUP) to queue with it",
			 model->id, GEN_SHORT(gen.buf), origin.buf, GEN_SHORT(cfg->generation),
			 GEN_SHORT(cfg->generation));
	strbuf_release(&gen);
	strbuf_release(&origin);
	jerror_release(&e);
}

/* ---- queueing ---- */

static int dest_partitions(const struct work_request *req, const struct cfg_destination *d)
{
	int n = req->partitions > 0 ? req->partitions : d->partitions;
	return n < 1 ? 1 : n > WORK_MAX_PARTITIONS ? WORK_MAX_PARTITIONS : n;
}

/* Whether destination d is one req runs: of its model, and named (or none named). */
static bool request_has(const struct work_request *req, const struct cfg_destination *d)
{
	bool wanted = !req->dest_ids;
	for (size_t k = 0; k < req->n_dests && !wanted; k++)
		wanted = !strcmp(req->dest_ids[k], d->id);
	return wanted && d->model == req->model;
}

enum jerr work_enqueue(const struct config *cfg, struct state *st, const struct work_request *req,
		       int64_t *job_id, bool *duplicate, struct jerror *err)
{
	const struct cfg_model *model = req->model;
	const struct cfg_schedule *sched = NULL;
	const struct cfg_destination **dests = xcalloc(cfg->n_destinations + 1, sizeof(*dests));
	struct state_work_part *parts = NULL;
	struct work_sample *sample = NULL;
	struct strbuf since = STRBUF_INIT, marks = STRBUF_INIT;
	struct model_marks mk;
	size_t n_dests = 0, n_parts = 0, alloc_parts = 0;
	bool have_since = false, in_tx = false;
	int max_n = 1;
	enum jerr rc;

	*job_id = 0;
	*duplicate = false;
	memset(&mk, 0, sizeof(mk));
	if ((rc = state_work_supported(st, err)))
		goto out;
	for (size_t i = 0; i < cfg->n_destinations; i++) {
		const struct cfg_destination *d = cfg->destinations[i];
		if (!request_has(req, d))
			continue;
		dests[n_dests++] = d;
		if (dest_partitions(req, d) > max_n)
			max_n = dest_partitions(req, d);
	}
	if (!n_dests) {
		rc = jerror_set(err, JERR_USAGE, "model \"%s\" has no destination to run", model->id);
		goto out;
	}
	/* every schedule's mark now: each item reads as a single run would (marks.h) */
	if ((rc = model_marks_load(cfg, model, st, req->full, &mk, err)) ||
	    (rc = model_marks_job_text(&mk, req->full, &marks)))
		goto out;
	sched = mk.sched[0] ? mk.sched[0] : NULL;
	if (sched && mk.incremental) {
		/* for the primary source's schedule (what older workers read) and the sample */
		strbuf_add(&since, mk.mark[0].buf, mk.mark[0].len);
		have_since = true;
	}
	if (max_n > 1) {
		/* the bounds: quantiles of the keys the job reads; a changed-records read (a
		 * secondary schedule) may read any key, so every key of the primary source */
		struct source_read read = { 0 };
		if (sched && have_since && !mk.scope.since_value) {
			read.since_column = mk.column[0];
			read.since_value = since.buf;
		}
		double t0 = now_s();
		if ((rc = work_sample_keys(cfg, model, read.since_column ? &read : NULL, &sample, err)))
			goto out;
		log_info("model \"%s\": sampled %" PRIu64 " keys for the partitions in %.2f s", model->id,
			 work_sample_count(sample), now_s() - t0);
	}

	/* the destinations' locks and run rows, then the items, in one transaction */
	if ((rc = state_begin(st, err)))
		goto out;
	in_tx = true;
	for (size_t i = 0; i < n_dests; i++) {
		const struct cfg_destination *d = dests[i];
		const struct rkey *bounds = NULL;
		size_t nb = work_sample_bounds(sample, (size_t)dest_partitions(req, d), &bounds);
		uint64_t abandoned;
		int64_t run_id;
		if ((rc = state_lock_acquire(st, d->id, "joey job (being queued)", err)))
			goto out;
		if ((rc = state_runs_abandon(st, d->id, &abandoned, err)) ||
		    (rc = state_run_start(st, d->id, "run", &run_id, err)))
			goto out;
		if (abandoned)
			log_warn("destination \"%s\": %llu earlier run%s ended without finishing; marked interrupted",
				 d->id, (unsigned long long)abandoned, abandoned == 1 ? "" : "s");
		for (size_t p = 0; p <= nb; p++) {
			ALLOC_GROW(parts, n_parts + 1, alloc_parts);
			parts[n_parts++] = (struct state_work_part){
				.dest_id = d->id,
				.run_id = run_id,
				.part = (int)p,
				.n_parts = (int)nb + 1,
				.range = { p ? &bounds[p - 1] : NULL, p < nb ? &bounds[p] : NULL },
			};
		}
	}
	struct state_work_spec spec = {
		.model_id = model->id,
		.schedule_id = sched ? sched->id : NULL,
		.since = have_since ? since.buf : NULL,
		.dedup = req->dedup,
		.force = req->force,
		.max_delete_percent = req->max_delete_percent,
		.config_gen = cfg->generation,
		.marks = marks.buf,
	};
	note_other_config(cfg, st, model);
	if ((rc = work_publish_config(cfg, st, "job", err)) ||
	    (rc = state_work_enqueue(st, &spec, parts, n_parts, job_id, duplicate, err)))
		goto out;
	if (*duplicate) {
		state_rollback(st);
		in_tx = false;
		log_info("model \"%s\": job \"%s\" was queued already", model->id, req->dedup ? req->dedup : "");
		goto out;
	}
	in_tx = false;
	if ((rc = state_commit(st, err)))
		goto out;
	log_info("job %" PRId64 " queued: model \"%s\", %zu destination%s, %zu work item%s%s%s", *job_id, model->id,
		 n_dests, n_dests == 1 ? "" : "s", n_parts, n_parts == 1 ? "" : "s",
		 have_since ? ", incremental since " : "", have_since ? since.buf : "");
out:
	if (in_tx)
		state_rollback(st);
	if (rc)
		*job_id = 0;
	work_sample_free(sample);
	strbuf_release(&since);
	strbuf_release(&marks);
	model_marks_release(&mk);
	free(parts);
	free(dests);
	return rc;
}

bool work_enqueue_failure_is_run(const struct jerror *why)
{
	switch (why->code) {
	case JERR_CONFIG:
	case JERR_IO:
	case JERR_SOURCE:
	case JERR_SOURCE_DATA:
	case JERR_HTTP:
	case JERR_AUTH:
	case JERR_REMOTE:
		return true;
	default:
		return false; /* the store, a lock held, the request, a stop: no run to speak of */
	}
}

void work_enqueue_failed(const struct config *cfg, struct state *st, const struct work_request *req,
			 const struct jerror *why, struct run *r)
{
	memset(r, 0, sizeof(*r));
	r->dests = xcalloc(cfg->n_destinations + 1, sizeof(*r->dests));
	for (size_t i = 0; i < cfg->n_destinations; i++) {
		const struct cfg_destination *d = cfg->destinations[i];
		struct jerror e = JERROR_INIT;
		struct run_counts none = { 0 };
		struct strbuf msg = STRBUF_INIT;
		uint64_t abandoned;
		int64_t run_id = 0;
		if (!request_has(req, d))
			continue;
		if (state_lock_acquire(st, d->id, "joey job (not queued)", &e))
			goto next; /* running elsewhere (or the store failed): that run speaks for it */
		strbuf_addstr(&msg, why->msg.buf);
		if (why->detail.len)
			strbuf_addf(&msg, " (%s)", why->detail.buf);
		if (!state_runs_abandon(st, d->id, &abandoned, &e) && !state_run_start(st, d->id, "run", &run_id, &e) &&
		    !state_run_finish(st, run_id, RUN_FAILED, &none, msg.buf, &e)) {
			struct run_dest *rd = &r->dests[r->n_dests++];
			rd->dest = d;
			rd->run_id = run_id;
			rd->status = RUN_FAILED;
			rd->max_delete_percent = d->max_delete_percent;
			rd->err = (struct jerror)JERROR_INIT;
			jerror_set(&rd->err, why->code, "%s", why->msg.buf);
			if (why->detail.len)
				jerror_detail(&rd->err, "%s", why->detail.buf);
		} else {
			log_error("the failed run of destination \"%s\" was not recorded: %s", d->id, e.msg.buf);
		}
		state_lock_release(st, d->id);
	next:
		strbuf_release(&msg);
		jerror_release(&e);
	}
}

/* ---- running an item ---- */

void work_outcome_release(struct work_outcome *out)
{
	strbuf_release(&out->seen);
	strbuf_release(&out->error);
	memset(out, 0, sizeof(*out));
}

static void outcome_fail(struct work_outcome *out, const char *fmt, ...) JOEY_PRINTF(2, 3);
static void outcome_fail(struct work_outcome *out, const char *fmt, ...)
{
	va_list ap;
	out->res.status = RUN_FAILED;
	strbuf_reset(&out->error);
	va_start(ap, fmt);
	strbuf_vaddf(&out->error, fmt, ap);
	va_end(ap);
	out->res.error = out->error.buf;
}

enum jerr work_run_item(const struct config *cfg, struct state *st, const struct state_work_item *it,
			const struct run_opts *ro, struct work_outcome *out, struct jerror *err)
{
	const struct cfg_destination *d = NULL;
	struct run r = { 0 };
	struct run_opts o = *ro;
	struct run_part part = { it->range, it->run_id, it->has_since ? it->since.buf : NULL,
				 it->marks.len ? it->marks.buf : NULL };
	double t0 = now_s();
	enum jerr rc;

	memset(out, 0, sizeof(*out));
	strbuf_init(&out->seen, 0);
	strbuf_init(&out->error, 0);
	for (size_t i = 0; i < cfg->n_destinations; i++)
		if (!strcmp(cfg->destinations[i]->id, it->dest_id.buf))
			d = cfg->destinations[i];
	if (!d || strcmp(d->model->id, it->model_id.buf)) {
		outcome_fail(out, "destination \"%s\" of model \"%s\" is not in this worker's config", it->dest_id.buf,
			     it->model_id.buf);
		return JERR_OK;
	}
	if (it->claims > WORK_MAX_CLAIMS) {
		outcome_fail(out, "work item %d of %d was claimed %d times: its workers kept ending without "
				  "finishing it (killed, out of memory?)",
			     it->part + 1, it->n_parts, it->claims - 1);
		return JERR_OK;
	}
	o.only_dest = d->id;
	o.only_dests = NULL;
	o.n_only_dests = 0;
	o.force = it->force;
	o.full = !it->has_since;
	o.max_delete_percent = it->max_delete_percent;
	o.part = &part;
	rc = run_execute(&r, cfg, st, &o, err);
	out->elapsed_s = now_s() - t0;
	if (rc) {
		run_release(&r);
		return rc;
	}
	const struct run_dest *rd = &r.dests[0];
	out->res.status = rd->status;
	out->res.counts = rd->counts;
	out->res.deletes_held = rd->deletes_held;
	out->stats = rd->stats;
	out->interrupted = rd->status == RUN_INTERRUPTED;
	out->res.read_ok = true;
	if (part.marks) {
		/* every schedule's largest value: {"<schedule id>": "<value>", ...} (job_seen_add) */
		json_t *by = json_object();
		for (size_t m = 0; m < r.n_models; m++) {
			out->res.read_ok &= r.models[m].read_ok;
			if (r.models[m].seen.len)
				json_object_set_new(by, r.models[m].schedule->id,
						    json_stringn(r.models[m].seen.buf, r.models[m].seen.len));
		}
		if (json_object_size(by)) {
			char *t = json_dumps(by, JSON_COMPACT | JSON_SORT_KEYS);
			strbuf_addstr(&out->seen, t);
			free(t);
		}
		json_decref(by);
	} else {
		for (size_t m = 0; m < r.n_models; m++) {
			out->res.read_ok = r.models[m].read_ok;
			strbuf_addslice(&out->seen, (struct slice){ r.models[m].seen.buf, r.models[m].seen.len });
		}
	}
	out->res.seen = out->seen.len ? out->seen.buf : NULL;
	if (rd->err.msg.len) {
		strbuf_addstr(&out->error, rd->err.msg.buf);
		if (rd->err.detail.len)
			strbuf_addf(&out->error, " (%s)", rd->err.detail.buf);
	}
	out->res.error = out->error.len ? out->error.buf : NULL;
	run_release(&r);
	return JERR_OK;
}

/* ---- closing a job ---- */

/* One destination of a job, summed over its items. */
struct job_dest {
	char *dest_id;
	int64_t run_id;
	struct run_counts counts;
	uint64_t deletes_held;
	size_t items, finished, succeeded;
	size_t held_items;  /* items whose guard held their deletes back */
	char *error;        /* the first item error */
	char *other_error;  /* the first error of an item that held nothing back */
	bool unsubscribe;   /* what the guard held: unsubscribes, not deletes */
};

/* A schedule's largest value over a job's items (jobs with marks). */
struct job_seen {
	char *schedule_id;
	struct strbuf seen;
};

struct job_sum {
	struct job_dest *dests;
	size_t n, alloc;
	bool read_ok;
	struct strbuf seen; /* the largest since value (jobs without marks) */
	bool per_schedule;  /* items' seen are {"<schedule id>": "<value>"} objects */
	struct job_seen *scheds;
	size_t n_scheds, alloc_scheds;
	bool seen_bad;      /* an item's seen did not parse: no mark moves */
};

/* Fold one item's per-schedule values (its seen, a JSON object) into s. */
static void job_seen_add(struct job_sum *s, const char *text)
{
	json_t *o = json_loads(text, 0, NULL);
	const char *id;
	json_t *v;
	if (!json_is_object(o)) {
		s->seen_bad = true;
		json_decref(o);
		return;
	}
	json_object_foreach(o, id, v) {
		struct job_seen *x = NULL;
		if (!json_is_string(v))
			continue;
		struct slice val = { json_string_value(v), json_string_length(v) };
		for (size_t i = 0; i < s->n_scheds && !x; i++)
			if (!strcmp(s->scheds[i].schedule_id, id))
				x = &s->scheds[i];
		if (!x) {
			ALLOC_GROW(s->scheds, s->n_scheds + 1, s->alloc_scheds);
			x = &s->scheds[s->n_scheds++];
			x->schedule_id = xstrdup(id);
			strbuf_init(&x->seen, 0);
		}
		if (!x->seen.len || source_since_compare(val, (struct slice){ x->seen.buf, x->seen.len }) > 0) {
			strbuf_reset(&x->seen);
			strbuf_addslice(&x->seen, val);
		}
	}
	json_decref(o);
}

static enum jerr sum_item(void *ctx, const struct state_work_item_info *it, struct jerror *err)
{
	struct job_sum *s = ctx;
	struct job_dest *d = NULL;
	(void)err;
	for (size_t i = 0; i < s->n && !d; i++)
		if (!strcmp(s->dests[i].dest_id, it->dest_id))
			d = &s->dests[i];
	if (!d) {
		ALLOC_GROW(s->dests, s->n + 1, s->alloc);
		d = &s->dests[s->n++];
		memset(d, 0, sizeof(*d));
		d->dest_id = xstrdup(it->dest_id);
		d->run_id = it->run_id;
	}
	d->items++;
	run_counts_add(&d->counts, &it->counts);
	d->deletes_held += it->deletes_held;
	if (!strcmp(it->status, "finished")) {
		d->finished++;
		if (it->run_status == RUN_SUCCESS)
			d->succeeded++;
		if (!it->read_ok)
			s->read_ok = false;
	}
	if (it->error && !d->error)
		d->error = xstrdup(it->error);
	if (it->deletes_held) {
		d->held_items++;
		if (it->error && !strncmp(it->error, "refusing to unsubscribe ", 24))
			d->unsubscribe = true;
	} else if (it->error && !d->other_error) {
		d->other_error = xstrdup(it->error);
	}
	if (s->per_schedule) {
		if (it->seen && *it->seen)
			job_seen_add(s, it->seen);
	} else if (it->seen && *it->seen &&
	    (!s->seen.len || source_since_compare(slice_of(it->seen), (struct slice){ s->seen.buf, s->seen.len }) > 0)) {
		strbuf_reset(&s->seen);
		strbuf_addstr(&s->seen, it->seen);
	}
	return JERR_OK;
}

static void job_sum_release(struct job_sum *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->dests[i].dest_id);
		free(s->dests[i].error);
		free(s->dests[i].other_error);
	}
	free(s->dests);
	strbuf_release(&s->seen);
	for (size_t i = 0; i < s->n_scheds; i++) {
		free(s->scheds[i].schedule_id);
		strbuf_release(&s->scheds[i].seen);
	}
	free(s->scheds);
}

/*
 * The run row's error of a destination whose items' guards held deletes back and that
 * failed for nothing else: the guard's words for the whole job (what the API shows as
 * held, and what an approval lets through), not those of its first key range. The
 * records in scope before the job are the store's count now with the job's own creates
 * taken out and its deletes and unsubscribes put back (its locks kept everyone else
 * out). Appends to msg; on failure msg is unchanged.
 */
static enum jerr job_guard_message(struct state *st, const struct job_dest *d, struct strbuf *msg,
				   struct jerror *err)
{
	uint64_t now;
	enum jerr rc = state_count(st, d->dest_id, &now, err);
	if (rc)
		return rc;
	uint64_t of = now + d->counts.deleted + d->counts.unsubscribed;
	of = of > d->counts.created ? of - d->counts.created : 0;
	if (of < d->deletes_held)
		of = d->deletes_held;
	strbuf_addf(msg, "refusing to %s %" PRIu64 " of %" PRIu64 " records (%.1f%%) of destination \"%s\"",
		    d->unsubscribe ? "unsubscribe" : "delete", d->deletes_held, of,
		    100.0 * (double)d->deletes_held / (double)of, d->dest_id);
	strbuf_addf(msg, " (%zu of %zu key ranges went over the mass-delete guard, which each range applies to its "
			 "own records, and held their %s back; creates and updates were sent)",
		    d->held_items, d->items, d->unsubscribe ? "unsubscribes" : "deletes");
	return JERR_OK;
}

/* Inside the finisher's transaction: run rows, the mark, the job's status and locks. */
static enum jerr close_job(const struct config *cfg, struct state *st, const struct state_work_item *it,
			   struct jerror *err)
{
	struct job_sum s = { .read_ok = true, .per_schedule = it->marks.len > 0 };
	struct strbuf set = STRBUF_INIT; /* the marks moved, for the job's row and the log */
	const char *mark = NULL;
	bool ok = true;
	enum jerr rc;

	strbuf_init(&s.seen, 0);
	if ((rc = state_work_items(st, it->job_id, sum_item, &s, err)))
		goto out;
	for (size_t i = 0; i < s.n && !rc; i++) {
		struct job_dest *d = &s.dests[i];
		bool d_ok = d->succeeded == d->items;
		const char *msg = d->error ? d->error : d->counts.failed ? RUN_ERROR_ROWS_FAILED : NULL;
		struct strbuf guard = STRBUF_INIT;
		if (d->other_error)
			msg = d->other_error;
		else if (d->deletes_held && !(rc = job_guard_message(st, d, &guard, err)))
			msg = guard.buf;
		ok &= d_ok;
		if (!rc)
			rc = state_run_finish(st, d->run_id, d_ok ? RUN_SUCCESS : RUN_FAILED, &d->counts, msg, err);
		strbuf_release(&guard);
	}
	if (rc)
		goto out;
	/* the mark: every item of every destination of the model succeeded and read to the end */
	const struct cfg_model *model = NULL;
	for (size_t m = 0; m < cfg->n_models; m++)
		if (!strcmp(cfg->models[m]->id, it->model_id.buf))
			model = cfg->models[m];
	bool all_dests = model != NULL;
	for (size_t i = 0; all_dests && i < cfg->n_destinations; i++) {
		const struct cfg_destination *d = cfg->destinations[i];
		bool in_job = false;
		if (d->model != model)
			continue;
		for (size_t k = 0; k < s.n && !in_job; k++)
			in_job = !strcmp(s.dests[k].dest_id, d->id);
		all_dests = in_job;
	}
	if (s.per_schedule && ok && s.read_ok && !s.seen_bad && all_dests) {
		/* each schedule's mark: the largest value its source showed in any item */
		for (size_t i = 0; i < s.n_scheds; i++) {
			if ((rc = marks_store_id(st, cfg, s.scheds[i].schedule_id, s.scheds[i].seen.buf, err)))
				goto out;
			strbuf_addf(&set, "%s%s=%s", set.len ? ", " : "", s.scheds[i].schedule_id, s.scheds[i].seen.buf);
		}
		mark = set.len ? set.buf : NULL;
	} else if (!s.per_schedule && it->schedule_id.len && ok && s.read_ok && s.seen.len && all_dests) {
		if ((rc = marks_store_id(st, cfg, it->schedule_id.buf, s.seen.buf, err)))
			goto out;
		mark = s.seen.buf;
	}
	rc = state_work_close(st, it->job_id, ok ? RUN_SUCCESS : RUN_FAILED, mark, err);
	if (!rc)
		log_info("job %" PRId64 " %s: model \"%s\", %zu destination%s%s%s", it->job_id,
			 ok ? "succeeded" : "failed", it->model_id.buf, s.n, s.n == 1 ? "" : "s",
			 mark ? (s.per_schedule ? ", marks now " : ", mark now ") : "", mark ? mark : "");
out:
	job_sum_release(&s);
	strbuf_release(&set);
	return rc;
}

enum jerr work_finish_item(const struct config *cfg, struct state *st, const struct state_work_item *it,
			   const char *worker, const struct work_outcome *out, bool *held, bool *closed,
			   struct jerror *err)
{
	bool job_done = false;
	enum jerr rc;

	*held = *closed = false;
	if ((rc = state_begin(st, err)))
		return rc;
	rc = state_work_finish(st, it->id, worker, &out->res, held, &job_done, err);
	if (!rc && *held && job_done) {
		rc = close_job(cfg, st, it, err);
		*closed = !rc;
	}
	if (rc) {
		state_rollback(st);
		*held = *closed = false;
		return rc;
	}
	return state_commit(st, err);
}

/* ---- a job as a struct run ---- */

enum jerr work_job_result(const struct config *cfg, struct state *st, int64_t job_id, struct run *r,
			  enum run_status *status, struct jerror *err)
{
	struct job_sum s = { .read_ok = true };
	bool found = false;
	enum jerr rc;

	memset(r, 0, sizeof(*r));
	strbuf_init(&s.seen, 0);
	if ((rc = state_work_job_status(st, job_id, status, NULL, &found, err)))
		goto out;
	if (!found) {
		rc = jerror_set(err, JERR_STATE, "state store \"%s\" has no job %" PRId64, state_path(st), job_id);
		goto out;
	}
	if ((rc = state_work_items(st, job_id, sum_item, &s, err)))
		goto out;
	r->dests = xcalloc(s.n ? s.n : 1, sizeof(*r->dests));
	r->models = xcalloc(1, sizeof(*r->models));
	for (size_t i = 0; i < s.n; i++) {
		const struct job_dest *d = &s.dests[i];
		const struct cfg_destination *cd = NULL;
		for (size_t k = 0; k < cfg->n_destinations; k++)
			if (!strcmp(cfg->destinations[k]->id, d->dest_id))
				cd = cfg->destinations[k];
		if (!cd)
			continue;
		struct run_dest *rd = &r->dests[r->n_dests++];
		/* records read, as far as the finished items tell: the records they settled */
		uint64_t settled = d->counts.created + d->counts.updated + d->counts.unchanged + d->counts.skipped +
				   d->counts.failed;
		if (settled > r->records)
			r->records = settled;
		rd->dest = cd;
		rd->counts = d->counts;
		rd->deletes_held = d->deletes_held;
		rd->run_id = d->run_id;
		rd->max_delete_percent = cd->max_delete_percent;
		rd->err = (struct jerror)JERROR_INIT;
		rd->status = d->finished < d->items ? RUN_RUNNING : d->succeeded == d->items ? RUN_SUCCESS : RUN_FAILED;
		struct strbuf guard = STRBUF_INIT;
		struct jerror gerr = JERROR_INIT; /* the count failed: the first range's words then */
		if (rd->status == RUN_FAILED && !d->other_error && d->deletes_held &&
		    !job_guard_message(st, d, &guard, &gerr))
			jerror_set(&rd->err, JERR_GUARD, "%s", guard.buf);
		else if (d->error)
			jerror_set(&rd->err, JERR_REMOTE, "%s", d->other_error ? d->other_error : d->error);
		strbuf_release(&guard);
		jerror_release(&gerr);
	}
out:
	job_sum_release(&s);
	return rc;
}
