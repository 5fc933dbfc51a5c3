/*
 * synclog_finish.c: the end of a run's sync log (synclog_finish): what the writer has
 * not taken is drained from the outbox, earlier runs' summaries are brought up to
 * date, old rows are purged (retention), the writer is stopped and the struct synclog
 * freed. Called by the run (engine/run_dest.c) once per destination.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "engine/synclog_internal.h"

/* Earlier runs whose summary is brought up to date per run, at most. */
#define RECOVER_MAX 16

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Record rows of run_id written to the log (synclog_runs.written); 0 if unknown. */
static uint64_t rows_of(struct state *st, int64_t run_id)
{
	struct state_synclog_info info;
	struct strbuf status = STRBUF_INIT, error = STRBUF_INIT;
	struct jerror e = JERROR_INIT;
	bool found = false;
	uint64_t n = 0;
	if (!state_synclog_get(st, run_id, &info, &status, &error, &found, &e) && found)
		n = info.rows;
	strbuf_release(&status);
	strbuf_release(&error);
	jerror_release(&e);
	return n;
}

/* Delete the written rows from the outbox in a transaction of their own. */
static void flush_done(struct synclog *l, struct state *st)
{
	struct jerror e = JERROR_INIT;
	enum jerr rc = state_begin(st, &e);
	if (!rc)
		rc = synclog_delete_done(l, st, &e);
	if (!rc)
		rc = state_commit(st, &e);
	else
		state_rollback(st);
	l->n_deleting = 0;
	if (rc)
		log_warn("destination \"%s\": sync log: %s (the rows are written again by a later run)", l->dest->id,
			 e.msg.buf);
	jerror_release(&e);
}

/* The record rows the outbox holds for the destination (decoding each row's header). */
static uint64_t outbox_rows(struct synclog *l, struct state *st)
{
	struct strbuf body = STRBUF_INIT;
	struct jerror e = JERROR_INIT;
	int64_t after = 0, id, run_id;
	uint64_t rows = 0;
	bool found = true;
	while (!state_outbox_next(st, l->dest->id, after, &id, &run_id, &body, &found, &e) && found) {
		int64_t rid;
		struct slice d;
		uint32_t n = 0;
		after = id;
		if (!synclog_body_decode((struct slice){ body.buf, body.len }, &rid, &d, NULL, NULL, &n, &e))
			rows += n;
		jerror_release(&e);
		e = (struct jerror)JERROR_INIT;
	}
	jerror_release(&e);
	strbuf_release(&body);
	return rows;
}

/*
 * Every row the outbox holds for the destination to the writer, in id order (this
 * run's the writer did not take, and earlier runs'); *pending: rows left after.
 */
static void drain_outbox(struct synclog *l, struct state *st, uint64_t *pending)
{
	struct strbuf body = STRBUF_INIT;
	struct jerror e = JERROR_INIT;
	int64_t after = 0, id, run_id;
	bool found = true;
	while (found && !synclog_has_failed(l)) {
		if (state_outbox_next(st, l->dest->id, after, &id, &run_id, &body, &found, &e)) {
			synclog_fail(l, &e);
			break;
		}
		if (!found)
			break;
		after = id;
		struct item *it = xcalloc(1, sizeof(*it));
		it->kind = IT_BODY;
		it->outbox_id = id;
		strbuf_init(&it->body, body.len);
		strbuf_add(&it->body, body.buf, body.len);
		synclog_enqueue(l, it);
		pthread_mutex_lock(&l->mu);
		bool full = l->queued_bytes > QUEUE_MAX_BYTES / 4;
		pthread_mutex_unlock(&l->mu);
		if (full) {
			synclog_wait_idle(l);
			flush_done(l, st);
		}
	}
	synclog_wait_idle(l);
	flush_done(l, st);
	*pending = synclog_has_failed(l) ? outbox_rows(l, st) : 0;
	strbuf_release(&body);
	jerror_release(&e);
}

/* Summaries of earlier runs of the destination whose log was not complete, from the state store. */
struct recover_ctx {
	struct synclog *l;
	const int64_t *ids;
	size_t n;
	struct item **items;
	int64_t *done_ids;
	size_t n_items;
};

static enum jerr recover_run(void *vctx, const struct state_run_info *run, struct jerror *err)
{
	struct recover_ctx *c = vctx;
	(void)err;
	for (size_t i = 0; i < c->n; i++) {
		if (c->ids[i] != run->id || run->status == RUN_RUNNING)
			continue;
		struct synclog_summary s = { .run_id = run->id, .trigger = NULL, .started_ms = run->started_at,
					     .records_read = -1, .status = run->status, .counts = &run->counts,
					     .error = run->error };
		struct item *it = xcalloc(1, sizeof(*it));
		strbuf_init(&it->body, 0);
		synclog_summary_item(c->l, &s, run->finished_at, "complete", 0, it);
		c->items[c->n_items] = it;
		c->done_ids[c->n_items++] = run->id;
	}
	return JERR_OK;
}

static void recover_summaries(struct synclog *l, struct state *st)
{
	int64_t ids[RECOVER_MAX];
	size_t n = 0;
	struct jerror e = JERROR_INIT;
	if (state_synclog_unfinished(st, l->dest->id, ids, RECOVER_MAX, &n, &e)) {
		log_warn("destination \"%s\": sync log: %s", l->dest->id, e.msg.buf);
		jerror_release(&e);
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (ids[i] != l->run_id)
			ids[k++] = ids[i];
	if (!k)
		return;
	struct item *items[RECOVER_MAX];
	int64_t done_ids[RECOVER_MAX];
	struct recover_ctx c = { l, ids, k, items, done_ids, 0 };
	if (state_runs_list(st, l->dest->id, 0, recover_run, &c, &e)) {
		log_warn("destination \"%s\": sync log: %s", l->dest->id, e.msg.buf);
		jerror_release(&e);
	}
	for (size_t i = 0; i < c.n_items; i++) {
		/* the earlier run's rows: what its own run wrote and what this run wrote for it */
		struct state_synclog_info info;
		struct strbuf status = STRBUF_INIT, error = STRBUF_INIT;
		bool found = false;
		uint64_t before = 0;
		if (!state_synclog_get(st, done_ids[i], &info, &status, &error, &found, &e) && found)
			before = info.rows;
		jerror_release(&e);
		e = (struct jerror)JERROR_INIT;
		items[i]->run.r.log_rows = before;
		uint64_t rows = items[i]->run.r.log_rows;
		synclog_enqueue(l, items[i]);
		synclog_wait_idle(l);
		if (!synclog_has_failed(l)) {
			struct state_synclog_info set = { .run_id = done_ids[i], .dest_id = l->dest->id,
							  .status = "complete", .rows = rows };
			if (state_synclog_set(st, &set, &e))
				log_warn("destination \"%s\": sync log: %s", l->dest->id, e.msg.buf);
			jerror_release(&e);
			e = (struct jerror)JERROR_INIT;
		}
		strbuf_release(&status);
		strbuf_release(&error);
	}
	jerror_release(&e);
}

void synclog_finish(struct synclog *l, struct state *st, const struct synclog_summary *s,
		    struct synclog_result *res)
{
	memset(res, 0, sizeof(*res));
	strbuf_init(&res->error, 0);
	res->status = "complete";
	if (!l)
		return;
	synclog_rolled_back(l); /* nothing should be staged; if it is, its transaction is gone */
	synclog_items_free(l->kept); /* likewise kept rows that never reached a transaction */
	l->kept = NULL;
	double t0 = mono_s();
	synclog_wait_idle(l);
	log_info("destination \"%s\": sync log: waited %.3f s for the writer at the end of the run", l->dest->id,
		  mono_s() - t0);
	flush_done(l, st);
	/* stopping (SIGTERM): no more than what the writer had; the rest waits in the outbox */
	bool stopping = s->stop && *s->stop;
	if (synclog_has_failed(l) && l->thread_started && !stopping) {
		/* one more try for what the writer could not write (a database back meanwhile) */
		pthread_mutex_lock(&l->mu);
		log_info("destination \"%s\": sync log: %s; trying again", l->dest->id, l->error.msg.buf);
		l->failed = false;
		jerror_release(&l->error);
		l->error = (struct jerror)JERROR_INIT;
		if (l->db)
			l->ops->close(l->db);
		l->db = NULL;
		pthread_mutex_unlock(&l->mu);
	}
	uint64_t pending = 0;
	if (!l->thread_started) {
		struct jerror e = JERROR_INIT;
		jerror_set(&e, JERR_INTERNAL, "could not start the sync log's writer thread");
		synclog_fail(l, &e);
		jerror_release(&e);
	}
	if (stopping)
		pending = outbox_rows(l, st);
	else
		drain_outbox(l, st, &pending);
	res->rows = rows_of(st, l->run_id);
	res->pending = pending;
	if (!l->part) {
		bool ok = !synclog_has_failed(l) && !pending;
		struct item *it = xcalloc(1, sizeof(*it));
		strbuf_init(&it->body, 0);
		synclog_summary_item(l, s, synclog_now_ms(), ok ? "complete" : "pending", res->rows, it);
		synclog_enqueue(l, it);
		synclog_wait_idle(l);
	}
	/* earlier runs' summaries (a worker job's are written by the next job's items) */
	if (!synclog_has_failed(l) && !pending && !stopping)
		recover_summaries(l, st);
	if (!synclog_has_failed(l) && !stopping && l->dest->sync_log_retention_days > 0) {
		struct item *it = xcalloc(1, sizeof(*it));
		strbuf_init(&it->body, 0);
		it->kind = IT_PURGE;
		it->before_ms = synclog_now_ms() - (int64_t)l->dest->sync_log_retention_days * 86400000;
		synclog_enqueue(l, it);
		synclog_wait_idle(l);
	}
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->mu);
	if (l->thread_started)
		pthread_join(l->thread, NULL);
	if (l->failed || pending) {
		res->status = "pending";
		if (l->error.msg.len) {
			strbuf_addstr(&res->error, l->error.msg.buf);
			if (l->error.detail.len)
				strbuf_addf(&res->error, " (%s)", l->error.detail.buf);
		} else {
			strbuf_addf(&res->error, "%llu rows wait in the outbox", (unsigned long long)pending);
		}
	}
	if (!l->part) {
		struct jerror e = JERROR_INIT;
		struct state_synclog_info info = { .run_id = l->run_id, .dest_id = l->dest->id, .status = res->status,
						   .rows = res->rows, .pending = res->pending,
						   .error = res->error.len ? res->error.buf : NULL };
		if (state_synclog_set(st, &info, &e))
			log_warn("destination \"%s\": sync log: %s", l->dest->id, e.msg.buf);
		jerror_release(&e);
	}
	if (l->db)
		l->ops->close(l->db);
	synclog_items_free(l->head);
	l->head = NULL;
	jerror_release(&l->error);
	free(l->done);
	free(l->deleting);
	synclog_body_release(&l->body);
	strbuf_release(&l->encoded);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->wake);
	pthread_cond_destroy(&l->idle);
	free(l);
}
