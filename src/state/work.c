/*
 * work.c: the work queue, leader election and shared rate buckets of `joey worker`
 * (state_work_*, state_leader_try, state_rate_take of state.h): the checks that do
 * not depend on the database (the back end has workers, the store is writable, a
 * transaction is open), then the back end's ops. Only PostgreSQL stores have workers;
 * on others every call fails with a message that says how to move the state there.
 * Owns nothing beyond the call. Called by the worker, serve and run --partitions.
 */
#include <string.h>

#include "state/backend.h"
#include "state/state.h"
#include "state/state_internal.h"

/* ---- workers (PostgreSQL only) ---- */

static enum jerr need_workers(struct state *st, struct jerror *err)
{
	jerror_set(err, JERR_STATE, "workers need a PostgreSQL state store");
	jerror_detail(err, "state store \"%s\" is %s; joey worker, joey serve --worker and joey run "
			   "--partitions share their work through a PostgreSQL state store",
		      st->path, st->ops->name);
	jerror_hint(err, "pass --state postgresql://USER@HOST/DATABASE (or set JOEY_STATE_URL); "
			 "'joey state export' and 'joey state import' move the state there");
	return JERR_STATE;
}

/* The back end has the operation (supported) and the store is writable: JERR_OK. */
static enum jerr can_write_work(struct state *st, bool supported, struct jerror *err)
{
	return supported ? state_refuse_readonly(st, err) : need_workers(st, err);
}

enum jerr state_work_supported(struct state *st, struct jerror *err)
{
	return st->ops->work_enqueue ? JERR_OK : need_workers(st, err);
}

void state_work_item_init(struct state_work_item *it)
{
	memset(it, 0, sizeof(*it));
	strbuf_init(&it->dest_id, 0);
	strbuf_init(&it->model_id, 0);
	strbuf_init(&it->schedule_id, 0);
	strbuf_init(&it->since, 0);
	strbuf_init(&it->config_gen, 0);
	strbuf_init(&it->marks, 0);
	strbuf_init(&it->lo_text, 0);
	strbuf_init(&it->hi_text, 0);
}

void state_work_item_release(struct state_work_item *it)
{
	strbuf_release(&it->dest_id);
	strbuf_release(&it->model_id);
	strbuf_release(&it->schedule_id);
	strbuf_release(&it->since);
	strbuf_release(&it->config_gen);
	strbuf_release(&it->marks);
	strbuf_release(&it->lo_text);
	strbuf_release(&it->hi_text);
	memset(it, 0, sizeof(*it));
}

enum jerr state_work_enqueue(struct state *st, const struct state_work_spec *spec,
			     const struct state_work_part *parts, size_t n_parts, int64_t *job_id,
			     bool *duplicate, struct jerror *err)
{
	enum jerr ret;
	*job_id = 0;
	*duplicate = false;
	if ((ret = can_write_work(st, st->ops->work_enqueue != NULL, err)))
		return ret;
	if (!st->ops->in_transaction(st))
		return jerror_set(err, JERR_INTERNAL, "state_work_enqueue needs a transaction");
	return st->ops->work_enqueue(st, spec, parts, n_parts, state_now_ms(), job_id, duplicate, err);
}

enum jerr state_work_claim(struct state *st, const char *worker, int64_t lease_ms, int64_t only_job,
			   struct state_work_item *it, bool *found, struct jerror *err)
{
	enum jerr ret;
	*found = false;
	if ((ret = can_write_work(st, st->ops->work_claim != NULL, err)))
		return ret;
	return st->ops->work_claim(st, worker, lease_ms, only_job, it, found, err);
}

enum jerr state_work_heartbeat(struct state *st, const char *worker, int64_t lease_ms,
			       void (*held)(void *ctx, int64_t item_id), void *ctx, struct jerror *err)
{
	enum jerr ret;
	if ((ret = can_write_work(st, st->ops->work_heartbeat != NULL, err)))
		return ret;
	return st->ops->work_heartbeat(st, worker, lease_ms, state_now_ms(), held, ctx, err);
}

enum jerr state_work_finish(struct state *st, int64_t item_id, const char *worker,
			    const struct state_work_result *res, bool *held, bool *job_done,
			    struct jerror *err)
{
	enum jerr ret;
	*held = *job_done = false;
	if ((ret = can_write_work(st, st->ops->work_finish != NULL, err)))
		return ret;
	if (!st->ops->in_transaction(st))
		return jerror_set(err, JERR_INTERNAL, "state_work_finish needs a transaction");
	return st->ops->work_finish(st, item_id, worker, res, held, job_done, err);
}

enum jerr state_work_requeue(struct state *st, int64_t item_id, const char *worker, struct jerror *err)
{
	enum jerr ret;
	if ((ret = can_write_work(st, st->ops->work_requeue != NULL, err)))
		return ret;
	return st->ops->work_requeue(st, item_id, worker, err);
}

enum jerr state_work_progress(struct state *st, int64_t item_id, const char *worker,
			      const struct run_counts *counts, struct jerror *err)
{
	enum jerr ret;
	if ((ret = can_write_work(st, st->ops->work_progress != NULL, err)))
		return ret;
	return st->ops->work_progress(st, item_id, worker, counts, err);
}

enum jerr state_work_items(struct state *st, int64_t job_id, state_work_item_fn fn, void *ctx,
			   struct jerror *err)
{
	if (!st->ops->work_items)
		return need_workers(st, err);
	return st->ops->work_items(st, job_id, fn, ctx, err);
}

enum jerr state_work_job_status(struct state *st, int64_t job_id, enum run_status *status,
				struct strbuf *model_id, bool *found, struct jerror *err)
{
	*found = false;
	*status = RUN_FAILED;
	if (!st->ops->work_job_status)
		return need_workers(st, err);
	return st->ops->work_job_status(st, job_id, status, model_id, found, err);
}

enum jerr state_work_close(struct state *st, int64_t job_id, enum run_status status, const char *mark,
			   struct jerror *err)
{
	enum jerr ret;
	if ((ret = can_write_work(st, st->ops->work_close != NULL, err)))
		return ret;
	return st->ops->work_close(st, job_id, status, mark, err);
}

enum jerr state_work_sweep(struct state *st, int64_t keep_ms, uint64_t *closed, struct jerror *err)
{
	enum jerr ret;
	*closed = 0;
	if ((ret = can_write_work(st, st->ops->work_sweep != NULL, err)))
		return ret;
	return st->ops->work_sweep(st, keep_ms, state_now_ms(), closed, err);
}

enum jerr state_leader_try(struct state *st, const char *name, bool *leader, struct jerror *err)
{
	*leader = false;
	if (!st->ops->leader_try)
		return need_workers(st, err);
	return st->ops->leader_try(st, name, leader, err);
}

enum jerr state_rate_take(struct state *st, const char *key, double capacity, double rate_per_ms,
			  int want, int *got, int64_t *wait_ms, struct jerror *err)
{
	enum jerr ret;
	*got = 0;
	*wait_ms = 0;
	if ((ret = can_write_work(st, st->ops->rate_take != NULL, err)))
		return ret;
	if (want < 1 || capacity < 1 || !(rate_per_ms > 0))
		return jerror_set(err, JERR_INTERNAL, "state_rate_take: bad bucket (want %d, capacity %g, rate %g)",
				  want, capacity, rate_per_ms);
	return st->ops->rate_take(st, key, capacity, rate_per_ms, want, got, wait_ms, err);
}
