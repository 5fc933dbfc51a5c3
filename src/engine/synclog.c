/*
 * synclog.c: a destination's sync log, the run's side: synclog_start (the writer
 * thread, the run's summary row), the log rows of each batch staged in the outbox
 * inside the run's own transactions, and handed to the writer once committed.
 * Owns the struct synclog until synclog_finish (synclog_finish.c) frees it; the
 * writer is synclog_writer.c, the body format synclog_body.c. Called by engine/run*.c.
 */
#include "engine/synclog.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "engine/synclog_internal.h"

/* Outbox rows written are deleted once this many have gathered (and at the end). */
#define DELETE_EVERY 32

/* ---- the run's side ---- */

/* The list it (through next) in the opposite order; returns its new head. */
static struct item *reversed(struct item *it)
{
	struct item *rev = NULL;
	while (it) {
		struct item *next = it->next;
		it->next = rev;
		rev = it;
		it = next;
	}
	return rev;
}

void synclog_summary_item(struct synclog *l, const struct synclog_summary *s, int64_t finished_ms,
			 const char *log_status, uint64_t log_rows, struct item *it)
{
	const struct run_counts *c = s->counts;
	static const struct run_counts zero;
	if (!c)
		c = &zero;
	it->kind = IT_RUN;
	it->run.model = xstrdup(l->dest->model ? l->dest->model->id : "");
	it->run.trigger = s->trigger ? xstrdup(s->trigger) : NULL;
	it->run.error = s->error ? xstrdup(s->error) : NULL;
	it->run.r = (struct synclog_run){
		.run_id = s->run_id, .destination = l->dest->id, .model = it->run.model, .trigger = it->run.trigger,
		.status = run_status_name(s->status), .started_ms = s->started_ms, .finished_ms = finished_ms,
		.records_read = s->records_read, .created = c->created, .updated = c->updated, .deleted = c->deleted,
		.unsubscribed = c->unsubscribed, .unchanged = c->unchanged, .failed = c->failed,
		.not_in_braze = c->skipped, .requests = c->requests, .retries = c->retries, .error = it->run.error,
		.log_status = log_status, .log_rows = log_rows,
	};
}

struct synclog *synclog_start(const struct config *cfg, const struct cfg_destination *dest, struct state *st,
			      const struct synclog_summary *s)
{
	if (!dest->sync_log_app)
		return NULL;
	const struct synclog_db_ops *ops = synclog_db_for_app(dest->sync_log_app->type);
	if (!ops)
		return NULL; /* config validation refuses such an app */
	struct synclog *l = xcalloc(1, sizeof(*l));
	l->cfg = cfg;
	l->dest = dest;
	l->ops = ops;
	l->run_id = s->run_id;
	l->part = s->part;
	l->error = (struct jerror)JERROR_INIT;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->wake, NULL);
	pthread_cond_init(&l->idle, NULL);
	synclog_body_begin(&l->body);
	strbuf_init(&l->encoded, 0);
	if (pthread_create(&l->thread, NULL, synclog_writer_main, l) == 0) {
		l->thread_started = true;
	} else {
		struct jerror e = JERROR_INIT;
		jerror_set(&e, JERR_INTERNAL, "could not start the sync log's writer thread");
		synclog_fail(l, &e);
		jerror_release(&e);
	}
	if (!s->part) {
		struct item *it = xcalloc(1, sizeof(*it));
		strbuf_init(&it->body, 0);
		synclog_summary_item(l, s, 0, "writing", 0, it);
		synclog_enqueue(l, it);
		struct jerror e = JERROR_INIT;
		struct state_synclog_info info = { .run_id = s->run_id, .dest_id = dest->id, .status = "writing" };
		if (state_synclog_set(st, &info, &e))
			log_warn("destination \"%s\": %s", dest->id, e.msg.buf);
		jerror_release(&e);
	}
	return l;
}

/*
 * Delete from the outbox, in the caller's transaction, what the writer has written,
 * and count those rows as written (synclog_runs.written of their runs) in the same
 * transaction: a row is counted once, however often a crash made it written.
 */
enum jerr synclog_delete_done(struct synclog *l, struct state *st, struct jerror *err)
{
	enum jerr rc = JERR_OK;
	pthread_mutex_lock(&l->mu);
	ALLOC_GROW(l->deleting, l->n_deleting + l->n_done, l->deleting_alloc);
	if (l->n_done)
		memcpy(l->deleting + l->n_deleting, l->done, l->n_done * sizeof(*l->done));
	size_t from = l->n_deleting;
	l->n_deleting += l->n_done;
	l->n_done = 0;
	pthread_mutex_unlock(&l->mu);
	/* a row another process deleted first (a worker's drain) is not counted twice */
	for (size_t i = from; i < l->n_deleting && !rc; i++) {
		bool gone = false;
		rc = state_outbox_delete(st, l->dest->id, l->deleting[i].id, &gone, err);
		if (!gone)
			l->deleting[i].rows = 0;
	}
	/* the rows per run: a batch's deletes are of one or two runs, a drain's of a few */
	for (size_t i = from; i < l->n_deleting && !rc; i++) {
		int64_t run_id = l->deleting[i].run_id;
		uint64_t add = 0;
		bool seen = false;
		for (size_t k = from; k < i && !seen; k++)
			seen = l->deleting[k].run_id == run_id;
		if (seen)
			continue;
		for (size_t k = i; k < l->n_deleting; k++)
			if (l->deleting[k].run_id == run_id)
				add += l->deleting[k].rows;
		if (!add)
			continue;
		struct state_synclog_info info;
		struct strbuf status = STRBUF_INIT, error = STRBUF_INIT;
		bool found = false;
		rc = state_synclog_get(st, run_id, &info, &status, &error, &found, err);
		if (!rc) {
			struct state_synclog_info set = { .run_id = run_id, .dest_id = l->dest->id,
							  .status = found ? info.status : "writing",
							  .rows = (found ? info.rows : 0) + add,
							  .pending = found ? info.pending : 0,
							  .error = found ? info.error : NULL };
			rc = state_synclog_set(st, &set, err);
		}
		strbuf_release(&status);
		strbuf_release(&error);
	}
	return rc;
}

/* The staged body (l->body) into the outbox, kept for the writer. */
/* The rows added to l->body so far, encoded (their borrowed strings copied), as an item. */
static struct item *body_item(struct synclog *l)
{
	synclog_body_end(&l->body, l->run_id, l->dest->id, &l->encoded);
	struct item *it = xcalloc(1, sizeof(*it));
	it->kind = IT_BODY;
	strbuf_init(&it->body, l->encoded.len);
	strbuf_add(&it->body, l->encoded.buf, l->encoded.len);
	return it;
}

/* Put it (owned) into the outbox, inside the open transaction, and onto l->staged. */
static enum jerr stage_item(struct synclog *l, struct state *st, struct item *it, struct jerror *err)
{
	enum jerr rc = state_outbox_put(st, l->dest->id, l->run_id, (struct slice){ it->body.buf, it->body.len },
					&it->outbox_id, err);
	if (rc) {
		synclog_item_free(it);
		return rc;
	}
	it->next = l->staged;
	l->staged = it;
	return JERR_OK;
}

/* After staging: written rows leave the outbox a few dozen batches at a time. */
static enum jerr stage_done(struct synclog *l, struct state *st, struct jerror *err)
{
	pthread_mutex_lock(&l->mu);
	bool many = l->n_done >= DELETE_EVERY;
	pthread_mutex_unlock(&l->mu);
	return many ? synclog_delete_done(l, st, err) : JERR_OK;
}

static enum jerr stage_body(struct synclog *l, struct state *st, struct jerror *err)
{
	enum jerr rc = stage_item(l, st, body_item(l), err);
	return rc ? rc : stage_done(l, st, err);
}

/* The log rows of outcomes o[0..n) into l->body (strings borrowed until body_end). */
static void add_outcomes(struct synclog *l, const struct dest_outcome *o, size_t n)
{
	int64_t now = synclog_now_ms();
	for (size_t i = 0; i < n; i++) {
		const struct dest_outcome *x = &o[i];
		struct synclog_entry e = {
			.key = x->key,
			.attempt = x->attempts + 1,
			.at_ms = now,
			.changed = x->changed,
		};
		e.op = x->op == DEST_DELETE ? SYNCLOG_DELETE
		       : !x->in_scope	    ? SYNCLOG_UNSUBSCRIBE
		       : x->op == DEST_ENRICH_NEW ? SYNCLOG_ENRICH
		       : x->create		    ? SYNCLOG_CREATE
						    : SYNCLOG_UPDATE;
		e.status = x->result == DEST_OK ? SYNCLOG_CONFIRMED
			   : x->result == DEST_FAILED ? SYNCLOG_FAILED
						      : SYNCLOG_NOT_IN_BRAZE;
		if (x->result == DEST_FAILED)
			e.error = slice_of(x->error ? x->error : "failed");
		if (x->result == DEST_NOT_FOUND) /* nothing was sent */
			e.changed = (struct slice){ "", 0 };
		synclog_body_add(&l->body, &e);
	}
}

enum jerr synclog_stage(struct synclog *l, struct state *st, const struct dest_outcome *o, size_t n,
			struct jerror *err)
{
	add_outcomes(l, o, n);
	return n ? stage_body(l, st, err) : JERR_OK;
}

void synclog_keep(struct synclog *l, const struct dest_outcome *o, size_t n)
{
	if (!n)
		return;
	add_outcomes(l, o, n);
	struct item *it = body_item(l);
	it->next = l->kept;
	l->kept = it;
}

enum jerr synclog_stage_kept(struct synclog *l, struct state *st, struct jerror *err)
{
	struct item *it = l->kept, *rev = NULL;
	enum jerr rc = JERR_OK;
	if (!it)
		return JERR_OK;
	l->kept = NULL;
	rev = reversed(it); /* kept newest first: stage in the order they came */
	for (it = rev; it;) {
		struct item *next = it->next;
		if (!rc)
			rc = stage_item(l, st, it, err);
		else
			synclog_item_free(it); /* the transaction fails: the run fails these rows' destination */
		it = next;
	}
	return rc ? rc : stage_done(l, st, err);
}

enum jerr synclog_stage_local(struct synclog *l, struct state *st, const struct rkey *key, int attempts,
			      const char *why, struct jerror *err)
{
	struct synclog_entry e = { .op = SYNCLOG_UPDATE, .status = SYNCLOG_FAILED, .key = *key, .attempt = attempts + 1,
				   .at_ms = synclog_now_ms(), .error = slice_of(why), .local = true };
	synclog_body_add(&l->body, &e);
	return stage_body(l, st, err);
}

void synclog_committed(struct synclog *l)
{
	struct item *it = l->staged, *rev = NULL;
	l->staged = NULL;
	l->n_deleting = 0;
	rev = reversed(it); /* staged newest first: restore the order */
	for (it = rev; it;) {
		struct item *next = it->next;
		pthread_mutex_lock(&l->mu);
		bool room = l->queued_bytes + it->body.len <= QUEUE_MAX_BYTES && !l->failed;
		if (!room)
			l->overflow++;
		pthread_mutex_unlock(&l->mu);
		if (room)
			synclog_enqueue(l, it);
		else
			synclog_item_free(it); /* it waits in the outbox: synclog_finish writes it */
		it = next;
	}
}

void synclog_rolled_back(struct synclog *l)
{
	synclog_items_free(l->staged);
	l->staged = NULL;
	/* the deletes were undone: those rows are still in the outbox, and written (idempotent) again */
	l->n_deleting = 0;
}

void synclog_result_release(struct synclog_result *res)
{
	strbuf_release(&res->error);
}
