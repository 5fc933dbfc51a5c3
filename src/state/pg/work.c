/*
 * work.c: the work queue that workers sharing a PostgreSQL state store take parts of
 * a run from: queueing a job (which takes over its destinations' locks), claiming an
 * item under a lease on the database's clock, heartbeats, finishing, requeueing,
 * reading a job's items and status, closing a job and sweeping old ones. Owns nothing
 * past a call; what a claim reads is copied into the caller's struct. Called through
 * state_pg (ops.c).
 */
#include "state/pg/pg_internal.h"

/* A job's own lock token, derived from this struct state's (never 0, never ours). */
static int64_t job_token(const struct state *st, int64_t job_id)
{
	uint64_t t = (uint64_t)st->token ^ ((uint64_t)job_id * 0x9e3779b97f4a7c15u);
	t ^= t >> 29;
	t &= INT64_MAX;
	return t && (int64_t)t != st->token ? (int64_t)t : (int64_t)(t + 1);
}

enum jerr pg_work_enqueue(struct state *st, const struct state_work_spec *spec,
			  const struct state_work_part *parts, size_t n, int64_t now,
			  int64_t *job_id, bool *duplicate, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	char mdp[32], holder[64];
	PGresult *res;
	enum jerr ret;

	p_text(&p, spec->dedup);
	p_text(&p, spec->model_id);
	p_text(&p, spec->schedule_id);
	p_text(&p, spec->since);
	p_bool(&p, spec->force);
	snprintf(mdp, sizeof(mdp), "%.17g", spec->max_delete_percent);
	p_text(&p, spec->max_delete_percent >= 0 ? mdp : NULL);
	p_int(&p, now);
	p_text(&p, spec->config_gen);
	p_text(&p, spec->marks);
	ret = pg_run_row(ps, S_WORK_JOB_INSERT, &p, &res, err, "could not queue a job in state store \"%s\"",
			 st->path);
	if (ret)
		return ret;
	if (!res) {
		*duplicate = true;
		return JERR_OK;
	}
	*job_id = get_int(res, 0, 0);
	PQclear(res);
	int64_t token = job_token(st, *job_id);
	p = (struct params){ 0 };
	p_int(&p, *job_id);
	p_int(&p, token);
	if ((ret = pg_run_write(ps, S_WORK_JOB_TOKEN, &p, NULL, err,
				"could not queue a job in state store \"%s\"", st->path)))
		return ret;
	snprintf(holder, sizeof(holder), "joey job %" PRId64, *job_id);
	for (size_t i = 0; i < n; i++) {
		const struct state_work_part *w = &parts[i];
		bool first = true;
		for (size_t k = 0; k < i && first; k++)
			first = strcmp(parts[k].dest_id, w->dest_id) != 0;
		if (first) {
			p = (struct params){ 0 };
			p_text(&p, w->dest_id);
			p_int(&p, st->token);
			p_int(&p, token);
			p_text(&p, holder);
			uint64_t adopted;
			if ((ret = pg_run_write(ps, S_WORK_ADOPT, &p, &adopted, err,
						"could not hand the lock of destination \"%s\" to job %" PRId64
						" in state store \"%s\"",
						w->dest_id, *job_id, st->path)))
				return ret;
			if (adopted != 1)
				return jerror_set(err, JERR_INTERNAL,
						  "state_work_enqueue: destination \"%s\" is not locked by the caller",
						  w->dest_id);
		}
		p = (struct params){ 0 };
		p_int(&p, *job_id);
		p_text(&p, w->dest_id);
		p_int(&p, w->run_id);
		p_int(&p, w->part);
		p_int(&p, w->n_parts);
		p_bound(&p, w->range.lo);
		p_bound(&p, w->range.hi);
		if ((ret = pg_run_write(ps, S_WORK_ITEM_INSERT, &p, NULL, err,
					"could not queue a work item in state store \"%s\"", st->path)))
			return ret;
	}
	return JERR_OK;
}

/* A bound from columns col (kind), col + 1 (int), col + 2 (bytes); false when open. */
static bool get_bound(const PGresult *res, int col, struct rkey *k, struct strbuf *text)
{
	strbuf_reset(text);
	memset(k, 0, sizeof(*k));
	if (PQgetisnull(res, 0, col))
		return false;
	k->is_int = get_int(res, 0, col) == 0;
	if (k->is_int) {
		k->i = get_int(res, 0, col + 1);
		strbuf_addf(text, "%" PRId64, k->i);
	} else {
		get_bytes(res, 0, col + 2, text);
	}
	k->text = (struct slice){ text->buf, text->len };
	return true;
}

enum jerr pg_work_claim(struct state *st, const char *worker, int64_t lease_ms, int64_t only_job,
			struct state_work_item *it, bool *found, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;

	p_text(&p, worker);
	p_int(&p, lease_ms);
	p_int(&p, only_job > 0 ? only_job : 0);
	ret = pg_run_row(ps, S_WORK_CLAIM, &p, &res, err, "could not claim a work item in state store \"%s\"",
			 st->path);
	if (ret || !res)
		return ret;
	*found = true;
	it->id = get_int(res, 0, 0);
	it->job_id = get_int(res, 0, 1);
	it->run_id = get_int(res, 0, 2);
	strbuf_reset(&it->dest_id);
	strbuf_addstr(&it->dest_id, PQgetvalue(res, 0, 3));
	it->part = (int)get_int(res, 0, 4);
	it->n_parts = (int)get_int(res, 0, 5);
	it->claims = (int)get_int(res, 0, 6);
	it->range.lo = get_bound(res, 7, &it->lo, &it->lo_text) ? &it->lo : NULL;
	it->range.hi = get_bound(res, 10, &it->hi, &it->hi_text) ? &it->hi : NULL;
	strbuf_reset(&it->model_id);
	strbuf_addstr(&it->model_id, PQgetvalue(res, 0, 13));
	strbuf_reset(&it->schedule_id);
	strbuf_addstr(&it->schedule_id, PQgetvalue(res, 0, 14));
	strbuf_reset(&it->since);
	strbuf_addstr(&it->since, PQgetvalue(res, 0, 15));
	it->has_since = !PQgetisnull(res, 0, 15);
	it->force = get_bool(res, 0, 16);
	it->max_delete_percent = PQgetisnull(res, 0, 17) ? -1 : strtod(PQgetvalue(res, 0, 17), NULL);
	strbuf_reset(&it->config_gen);
	strbuf_addstr(&it->config_gen, PQgetvalue(res, 0, 18));
	strbuf_reset(&it->marks);
	strbuf_addstr(&it->marks, PQgetvalue(res, 0, 19));
	PQclear(res);
	return JERR_OK;
}

enum jerr pg_work_heartbeat(struct state *st, const char *worker, int64_t lease_ms, int64_t now,
			    void (*held)(void *ctx, int64_t item_id), void *ctx, struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;

	p_text(&p, worker);
	p_int(&p, lease_ms);
	ret = pg_run(ps, S_WORK_BEAT, &p, &res, err, "could not renew the leases of worker \"%s\" in state store \"%s\"",
		     worker, st->path);
	if (ret)
		return ret;
	for (int i = 0; held && i < PQntuples(res); i++)
		held(ctx, get_int(res, i, 0));
	PQclear(res);
	p = (struct params){ 0 };
	p_int(&p, now);
	return pg_run_write(ps, S_WORK_BEAT_LOCKS, &p, NULL, err,
			    "could not refresh the destination locks of running jobs in state store \"%s\"",
			    st->path);
}

enum jerr pg_work_finish(struct state *st, int64_t item_id, const char *worker,
			 const struct state_work_result *r, bool *held, bool *job_done,
			 struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct strbuf clean = STRBUF_INIT;
	struct params p = { 0 };
	PGresult *res;
	int64_t job_id;
	bool running;
	enum jerr ret;

	p_int(&p, item_id);
	if ((ret = pg_run_row(ps, S_WORK_JOB_LOCK, &p, &res, err,
			      "could not lock the job of work item %" PRId64 " in state store \"%s\"", item_id,
			      st->path)))
		return ret;
	if (!res)
		return JERR_OK; /* no such item: not held */
	job_id = get_int(res, 0, 0);
	running = !strcmp(PQgetvalue(res, 0, 1), "running");
	PQclear(res);

	const uint64_t *c[] = { &r->counts.created, &r->counts.updated, &r->counts.deleted,
				&r->counts.unsubscribed, &r->counts.unchanged, &r->counts.failed,
				&r->counts.skipped, &r->counts.requests, &r->counts.retries,
				&r->counts.throttled, &r->counts.data_points, &r->deletes_held };
	p = (struct params){ 0 };
	p_int(&p, item_id);
	p_text(&p, worker);
	p_text(&p, run_status_name(r->status));
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		p_int(&p, (int64_t)*c[i]);
	p_text(&p, r->seen);
	p_bool(&p, r->read_ok);
	p_text(&p, r->error ? pg_clean_text(r->error, &clean) : NULL);
	ret = pg_run_changed(ps, S_WORK_FINISH, &p, held, err,
			     "could not record the end of work item %" PRId64 " in state store \"%s\"", item_id,
			     st->path);
	strbuf_release(&clean);
	if (ret)
		return ret;
	if (!*held || !running)
		return JERR_OK;
	p = (struct params){ 0 };
	p_int(&p, job_id);
	if ((ret = pg_run(ps, S_WORK_OPEN, &p, &res, err,
			  "could not read the work items of job %" PRId64 " in state store \"%s\"", job_id, st->path)))
		return ret;
	*job_done = PQntuples(res) == 1 && get_int(res, 0, 0) == 0;
	PQclear(res);
	return JERR_OK;
}

enum jerr pg_work_requeue(struct state *st, int64_t item_id, const char *worker, struct jerror *err)
{
	struct params p = { 0 };
	p_int(&p, item_id);
	p_text(&p, worker);
	return pg_run_write(ps_of(st), S_WORK_REQUEUE, &p, NULL, err,
			    "could not give work item %" PRId64 " back to the queue of state store \"%s\"",
			    item_id, st->path);
}

enum jerr pg_work_progress(struct state *st, int64_t item_id, const char *worker,
			   const struct run_counts *c, struct jerror *err)
{
	const uint64_t *v[] = { &c->created, &c->updated, &c->deleted, &c->unsubscribed, &c->unchanged,
				&c->failed, &c->skipped, &c->requests, &c->retries, &c->throttled,
				&c->data_points };
	struct params p = { 0 };
	p_int(&p, item_id);
	p_text(&p, worker);
	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		p_int(&p, (int64_t)*v[i]);
	return pg_run_write(ps_of(st), S_WORK_PROGRESS, &p, NULL, err,
			    "could not record the progress of work item %" PRId64 " in state store \"%s\"", item_id,
			    st->path);
}

enum jerr pg_work_items(struct state *st, int64_t job_id, state_work_item_fn fn, void *ctx,
			struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_int(&p, job_id);
	ret = pg_run(ps_of(st), S_WORK_ITEMS, &p, &res, err,
		     "could not read the work items of job %" PRId64 " in state store \"%s\"", job_id, st->path);
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res) && !ret; i++) {
		struct state_work_item_info it = { 0 };
		uint64_t *c[] = { &it.counts.created, &it.counts.updated, &it.counts.deleted,
				  &it.counts.unsubscribed, &it.counts.unchanged, &it.counts.failed,
				  &it.counts.skipped, &it.counts.requests, &it.counts.retries,
				  &it.counts.throttled, &it.counts.data_points, &it.deletes_held };
		it.id = get_int(res, i, 0);
		it.dest_id = PQgetvalue(res, i, 1);
		it.run_id = get_int(res, i, 2);
		it.part = (int)get_int(res, i, 3);
		it.n_parts = (int)get_int(res, i, 4);
		it.claims = (int)get_int(res, i, 5);
		it.status = PQgetvalue(res, i, 6);
		it.run_status = PQgetisnull(res, i, 7) ? RUN_RUNNING : state_run_status_parse(PQgetvalue(res, i, 7));
		for (size_t k = 0; k < ARRAY_SIZE(c); k++) {
			int64_t v = get_int(res, i, 8 + (int)k);
			*c[k] = v > 0 ? (uint64_t)v : 0;
		}
		it.seen = PQgetisnull(res, i, 20) ? NULL : PQgetvalue(res, i, 20);
		it.read_ok = get_bool(res, i, 21);
		it.error = PQgetisnull(res, i, 22) ? NULL : PQgetvalue(res, i, 22);
		it.worker = PQgetisnull(res, i, 23) ? NULL : PQgetvalue(res, i, 23);
		ret = fn(ctx, &it, err);
	}
	PQclear(res);
	return ret;
}

enum jerr pg_work_job_status(struct state *st, int64_t job_id, enum run_status *status,
			     struct strbuf *model_id, bool *found, struct jerror *err)
{
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_int(&p, job_id);
	ret = pg_run_row(ps_of(st), S_WORK_JOB_STATUS, &p, &res, err,
			 "could not read job %" PRId64 " in state store \"%s\"", job_id, st->path);
	if (ret)
		return ret;
	if (res) {
		*found = true;
		*status = state_run_status_parse(PQgetvalue(res, 0, 0));
		if (model_id) {
			strbuf_reset(model_id);
			strbuf_addstr(model_id, PQgetvalue(res, 0, 1));
		}
	}
	PQclear(res);
	return JERR_OK;
}

enum jerr pg_work_close(struct state *st, int64_t job_id, enum run_status status, const char *mark,
			struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	PGresult *res;
	enum jerr ret;
	p_int(&p, job_id);
	p_text(&p, run_status_name(status));
	p_text(&p, mark);
	ret = pg_run_row(ps, S_WORK_CLOSE, &p, &res, err, "could not close job %" PRId64 " in state store \"%s\"",
			 job_id, st->path);
	if (ret || !res)
		return ret; /* !res: closed already */
	int64_t token = get_int(res, 0, 0);
	PQclear(res);
	p = (struct params){ 0 };
	p_int(&p, token);
	return pg_run_write(ps, S_WORK_UNLOCK, &p, NULL, err,
			    "could not release the destination locks of job %" PRId64 " in state store \"%s\"",
			    job_id, st->path);
}

enum jerr pg_work_sweep(struct state *st, int64_t keep_ms, int64_t now, uint64_t *closed,
			struct jerror *err)
{
	struct pg_state *ps = ps_of(st);
	struct params p = { 0 };
	enum jerr ret;
	p_int(&p, now - 60000); /* a minute's grace for a job being queued right now */
	ret = pg_run_write(ps, S_WORK_SWEEP, &p, closed, err,
			   "could not tidy the work queue of state store \"%s\"", st->path);
	if (ret)
		return ret;
	p = (struct params){ 0 };
	p_int(&p, keep_ms);
	return pg_run_write(ps, S_WORK_PRUNE, &p, NULL, err,
			    "could not tidy the work queue of state store \"%s\"", st->path);
}
