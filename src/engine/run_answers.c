/*
 * run_answers.c: Braze's answers (the connector's outcomes) to the state store, kept
 * in a struct batch and written in one transaction per batch, with the sync log's rows
 * and the run rows' counts; the destination lock's heartbeat. Borrows the run's
 * contexts (run_internal.h); called by the connector through run_on_outcomes /
 * run_on_tick and by the driver and run_items.c to flush.
 */
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "base/xalloc.h"
#include "engine/run_internal.h"

/*
 * Keep the destination's lock fresh during long runs (every minute at most). The
 * answers kept so far are written first, while the lock is known to be ours: once it
 * is lost, nothing more is written (another run may own the records now).
 */
enum jerr run_heartbeat(struct dest_ctx *dc, struct jerror *err)
{
	enum jerr rc;
	if (!dc->locked || run_now_s() - dc->last_heartbeat < 60)
		return JERR_OK;
	dc->last_heartbeat = run_now_s();
	if ((rc = run_batch_flush(dc->batch, err)))
		return rc;
	return state_lock_heartbeat(dc->st, dc->rd->dest->id, err);
}

/*
 * Braze's answers are written to the state store in batches: the outcomes of many
 * responses (of every destination of the run: they share the store) are kept, copied,
 * and written in one transaction once BATCH_ROWS are kept or the oldest is
 * BATCH_SECONDS old, when a destination ends, and when the run ends. One transaction
 * per response (75 rows) made commits, WAL writes and checkpoints most of joey's CPU
 * in a first sync. No transaction stays open between batches, so the store is never
 * held while Braze or the source is waited for. Crash safety is unchanged
 * (docs/internals/state.md): only what Braze confirmed is written, a batch commits
 * whole (with the run rows' counts) or not at all, and answers not yet written when
 * joey dies are not claimed by the store, so the next run sends them again.
 */
#define BATCH_ROWS 4096
#define BATCH_SECONDS 0.5

static size_t batch_bytes(struct batch *b, const char *p, size_t n)
{
	size_t at = b->bytes.len;
	strbuf_add(&b->bytes, p ? p : "", n);
	strbuf_addch(&b->bytes, 0);
	return at;
}

/* Keep a copy of one answer (o's memory is the connector's). */
static void batch_keep(struct batch *b, struct dest_ctx *dc, const struct dest_outcome *o, int64_t at)
{
	if (!b->n)
		b->t0 = run_now_s();
	ALLOC_GROW(b->v, b->n + 1, b->alloc);
	struct held *h = &b->v[b->n++];
	h->dc = dc; /* every member set (a memset cost a `rep stos` per answer) */
	h->result = o->result;
	h->op = o->op;
	h->in_scope = o->in_scope;
	h->is_int = o->key.is_int;
	h->attempts = o->attempts;
	h->key_int = o->key.i;
	h->at = at;
	h->key = batch_bytes(b, o->key.is_int ? NULL : o->key.text.ptr, o->key.is_int ? 0 : o->key.text.len);
	h->key_len = o->key.is_int ? 0 : o->key.text.len;
	/* a failed row keeps its fail payload (dest_change.fail_payload), if any */
	struct slice p = o->result == DEST_FAILED ? o->fail_payload : o->new_payload;
	h->payload = batch_bytes(b, p.ptr, p.len);
	h->payload_len = p.len;
	h->error = 0;
	if (o->result == DEST_FAILED) { /* the only outcome whose error is written */
		const char *e = o->error ? o->error : "failed";
		h->error = batch_bytes(b, e, strlen(e));
	}
	if (o->new_hash)
		memcpy(h->hash, o->new_hash, STATE_HASH_LEN);
	else
		memset(h->hash, 0, STATE_HASH_LEN);
	dc->batched++;
}

static enum jerr write_held(struct batch *b, const struct held *h, struct jerror *err)
{
	struct dest_ctx *dc = h->dc;
	const char *did = dc->rd->dest->id, *bytes = b->bytes.buf;
	struct rkey key = { .is_int = h->is_int, .i = h->key_int, .text = { bytes + h->key, h->key_len } };
	enum jerr rc = JERR_OK;

	switch (h->result) {
	case DEST_OK:
		if (h->op == DEST_DELETE)
			return state_delete(b->st, did, &key, err);
		rc = state_put(b->st, did, &key, (struct slice){ bytes + h->payload, h->payload_len }, h->hash,
			       h->in_scope, err);
		if (!rc && dc->rd->dest->sync_mode == SYNC_ENRICH)
			rc = state_set_exists(b->st, did, &key, true, h->at, err);
		return rc;
	case DEST_FAILED:
		rc = state_mark_failed(b->st, did, &key, bytes + h->error,
				       (struct slice){ bytes + h->payload, h->payload_len }, err);
		if (!rc)
			rc = state_ledger_add(b->st, dc->rd->run_id, did, &key, bytes + h->error, h->attempts + 1, err);
		return rc;
	case DEST_NOT_FOUND:
		return state_set_exists(b->st, did, &key, false, h->at, err);
	}
	return rc;
}

/*
 * Write what b keeps in one transaction, with the run rows' counts. On failure nothing
 * of it is stored: every destination with answers in it fails (the next run sends
 * them again), and err says what failed.
 */
enum jerr run_batch_flush(struct batch *b, struct jerror *err)
{
	const struct dest_ctx *at = NULL; /* whose row or run failed */
	enum jerr rc;
	if (!b->n)
		return JERR_OK;
	rc = state_begin(b->st, err);
	for (size_t i = 0; i < b->n && !rc; i++)
		if ((rc = write_held(b, &b->v[i], err)))
			at = b->v[i].dc;
	/* the sync log's rows of these answers, in the same transaction (engine/synclog.h) */
	for (size_t k = 0; k < b->n_all && !rc; k++) {
		struct dest_ctx *dc = &b->all[k];
		if (dc->batched && dc->log && (rc = synclog_stage_kept(dc->log, b->st, err)))
			at = dc;
	}
	/* the run row counts what this transaction commits (a work item's job sums its items at the end) */
	for (size_t k = 0; k < b->n_all && !rc; k++) {
		struct dest_ctx *dc = &b->all[k];
		if (dc->batched && dc->started && !dc->opts->part &&
		    (rc = state_run_progress(b->st, dc->rd->run_id, &dc->rd->counts, err)))
			at = dc;
	}
	if (rc)
		state_rollback(b->st);
	else
		rc = state_commit(b->st, err);
	for (size_t k = 0; k < b->n_all; k++) {
		struct dest_ctx *dc = &b->all[k];
		if (dc->batched && dc->log)
			(rc ? synclog_rolled_back : synclog_committed)(dc->log);
	}
	if (rc && at)
		jerror_prefix(err, "could not record Braze's answer for destination \"%s\": ", at->rd->dest->id);
	else if (rc)
		jerror_prefix(err, "could not record Braze's answers: ");
	for (size_t k = 0; k < b->n_all; k++) {
		if (rc && b->all[k].batched)
			run_fail_dest(&b->all[k], err);
		b->all[k].batched = 0;
	}
	b->n = 0;
	strbuf_reset(&b->bytes);
	return rc;
}

/* Flush when the oldest kept answer is BATCH_SECONDS old (failures fail destinations). */
void run_batch_flush_old(struct batch *b)
{
	struct jerror e = JERROR_INIT;
	if (b->n && run_now_s() - b->t0 >= BATCH_SECONDS)
		(void)run_batch_flush(b, &e);
	jerror_release(&e);
}

enum jerr run_on_tick(void *vctx, struct jerror *err)
{
	struct dest_ctx *dc = vctx;
	if (dc->pass)
		run_progress(dc->pass, false);
	run_batch_flush_old(dc->batch);
	return run_heartbeat(vctx, err);
}

/* Before a request that may change Braze is first sent: its keys to the run's journal. */
enum jerr run_on_sending(void *vctx, const struct rkey *const *keys, size_t n, struct jerror *err)
{
	struct dest_ctx *dc = vctx;
	return state_journal_add(dc->journal, keys, n, err);
}

enum jerr run_on_outcomes(void *vctx, const struct dest_outcome *o, size_t n, struct jerror *err)
{
	struct dest_ctx *dc = vctx;
	struct run_dest *rd = dc->rd;
	struct batch *b = dc->batch;
	enum jerr rc;
	int64_t at = time_now_ms();

	if ((rc = run_heartbeat(dc, err)))
		return rc;
	if (dc->log) /* its log rows, encoded now (o is borrowed), staged with the batch */
		synclog_keep(dc->log, o, n);
	for (size_t i = 0; i < n; i++) {
		const struct dest_outcome *x = &o[i];
		batch_keep(b, dc, x, at);
		switch (x->result) {
		case DEST_OK:
			if (x->op == DEST_DELETE) {
				rd->counts.deleted++;
				break;
			}
			if (!x->in_scope)
				rd->counts.unsubscribed++;
			else if (x->create && rd->dest->sync_mode != SYNC_ENRICH)
				rd->counts.created++;
			else
				rd->counts.updated++;
			rd->counts.data_points += x->data_points;
			break;
		case DEST_FAILED:
			rd->counts.failed++;
			break;
		case DEST_NOT_FOUND:
			rd->counts.skipped++;
			break;
		}
	}
	if (b->n >= BATCH_ROWS || run_now_s() - b->t0 >= BATCH_SECONDS)
		return run_batch_flush(b, err);
	return JERR_OK;
}
