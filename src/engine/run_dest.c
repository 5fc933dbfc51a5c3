/*
 * run_dest.c: one destination's life in a run: run_start_dest (lock, run row, sync log,
 * connector), run_fail_dest / run_fail_dest_connector (its error, once in the ledger),
 * run_end_dest (held-back deletes, the connector's finish, the last answers, the run
 * row, the sync log's summary, the lock). Called by the driver (run.c) and the other
 * run_*.c pieces; the struct dest_ctx is the driver's.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "engine/run_internal.h"
#include "state/runnotes.h"

/* ---- failures ---- */

void run_fail_dest(struct dest_ctx *dc, const struct jerror *e)
{
	if (dc->failed)
		return;
	dc->failed = true;
	dc->rd->status = RUN_FAILED;
	jerror_set(&dc->rd->err, e->code, "%s", e->msg.buf);
	if (e->detail.len)
		jerror_detail(&dc->rd->err, "%s", e->detail.buf);
	if (e->hint.len)
		jerror_hint(&dc->rd->err, "%s", e->hint.buf);
}

/* The key of the ledger row that holds an error of the whole destination, not of a record. */
#define LEDGER_DEST_KEY "(destination)"

/*
 * The connector stopped the destination (a rejected key, an unknown endpoint, Braze
 * unreachable: JERR_AUTH, JERR_REMOTE, JERR_HTTP; other errors just fail it): the
 * destination fails with that error, and the ledger gets it once, as
 * one row keyed LEDGER_DEST_KEY, not one per record left unsent (those get no outcome:
 * they stay as the state store has them, and the next run sends them).
 */
void run_fail_dest_connector(struct dest_ctx *dc, const struct jerror *e)
{
	struct jerror le = JERROR_INIT;
	struct strbuf msg = STRBUF_INIT;
	bool first = !dc->failed;
	run_fail_dest(dc, e);
	if (!first || dc->rd->run_id <= 0 ||
	    (e->code != JERR_HTTP && e->code != JERR_AUTH && e->code != JERR_REMOTE))
		return; /* not Braze's answer (e.g. the state store failed): nothing for the ledger */
	strbuf_addstr(&msg, e->msg.buf);
	if (e->detail.len)
		strbuf_addf(&msg, " (%s)", e->detail.buf);
	struct rkey k = { .text = SLICE_LIT(LEDGER_DEST_KEY) };
	if (state_ledger_add(dc->st, dc->rd->run_id, dc->rd->dest->id, &k, msg.buf, 0, &le))
		log_error("%s", le.msg.buf);
	jerror_release(&le);
	strbuf_release(&msg);
}

/* ---- start and end ---- */

static const char *log_trigger(const struct run_opts *opts)
{
	return opts->trigger ? opts->trigger : opts->part ? "worker" : "cli";
}

enum jerr run_start_dest(struct dest_ctx *dc, const struct config *cfg, struct jerror *err)
{
	struct run_dest *rd = dc->rd;
	struct jerror e = JERROR_INIT;
	struct dest_sink sink = { .outcomes = run_on_outcomes, .tick = run_on_tick, .sending = run_on_sending,
				  .ctx = dc };
	enum jerr rc;
	char holder[64];

	if (dc->opts->part) {
		/* a work item: its job holds the lock and the run row */
		rd->run_id = dc->opts->part->run_id;
		if ((rc = state_count_range(dc->st, rd->dest->id, &dc->opts->part->range, &rd->state_records, err)))
			return rc;
		dc->counted = true;
		goto open;
	}
	snprintf(holder, sizeof(holder), "joey run pid %ld", (long)getpid());
	rc = state_lock_acquire(dc->st, rd->dest->id, holder, &e);
	if (rc) {
		run_fail_dest(dc, &e);
		if (rc == JERR_STATE_BUSY) { /* this destination only: the others go on */
			jerror_release(&e);
			return JERR_OK;
		}
		/* the store failed (I/O error, disk full): the caller reports it from err */
		jerror_release(err);
		*err = e;
		return rc;
	}
	dc->locked = true;
	dc->last_heartbeat = run_now_s();
	uint64_t abandoned;
	if ((rc = state_runs_abandon(dc->st, rd->dest->id, &abandoned, err)))
		return rc;
	if (abandoned)
		log_warn("destination \"%s\": %llu earlier run%s ended without finishing; marked interrupted",
			 rd->dest->id, (unsigned long long)abandoned, abandoned == 1 ? "" : "s");
	/* the guard's count: the pass takes it (run.c, count_for_guard), not a scan here */
	if ((rc = state_run_start(dc->st, rd->dest->id, "run", &rd->run_id, err)))
		return rc;
	dc->started = true;
	/* what this run may send goes on record first: killed, only that is re-sent (state.h) */
	dc->journal = state_journal_start(dc->st, rd->run_id);
open:
	dc->started_ms = time_now_ms();
	if (rd->dest->sync_log_app) {
		struct synclog_summary ls = { .run_id = rd->run_id, .trigger = log_trigger(dc->opts),
					      .started_ms = dc->started_ms, .records_read = -1, .status = RUN_RUNNING,
					      .counts = &rd->counts, .part = dc->opts->part != NULL };
		dc->log = synclog_start(cfg, rd->dest, dc->st, &ls);
		rd->sync_log = dc->log != NULL;
	}
	dc->ops = dest_ops_for_app(rd->dest->app->type);
	if (!dc->ops) {
		jerror_set(&e, JERR_CONFIG, "app \"%s\" of type \"%s\" cannot receive exports", rd->dest->app->id,
			   rd->dest->app->type);
		run_fail_dest(dc, &e);
		jerror_release(&e);
		return JERR_OK;
	}
	if (dc->ops->open(rd->dest->app, rd->dest, &dc->opts->dest, &sink, &dc->h, &e))
		run_fail_dest(dc, &e);
	jerror_release(&e);
	return JERR_OK;
}

/*
 * The source rows that could not be read go to the error ledger, keyed by where
 * they are (their record key is unknown).
 */
static void ledger_unreadable(struct dest_ctx *dc)
{
	struct run_dest *rd = dc->rd;
	const char *p = rd->unreadable_at.buf;
	struct jerror e = JERROR_INIT;
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		struct strbuf line = STRBUF_INIT, msg = STRBUF_INIT;
		strbuf_add(&line, p, len);
		strbuf_addf(&msg, "unreadable source row (%s): its record is unknown this run, so it was "
				  "not deleted or unsubscribed; fix the row and run again", line.buf);
		struct rkey k = { .text = { line.buf, line.len } };
		if (state_ledger_add(dc->st, rd->run_id, rd->dest->id, &k, msg.buf, 0, &e)) {
			log_error("%s", e.msg.buf);
			jerror_release(&e);
			e = (struct jerror)JERROR_INIT;
		}
		strbuf_release(&line);
		strbuf_release(&msg);
		p += len + (nl ? 1 : 0);
	}
	jerror_release(&e);
}

enum jerr run_count_late(struct dest_ctx *dc, struct jerror *err)
{
	struct run_dest *rd = dc->rd;
	uint64_t now = 0, added = rd->counts.created + rd->counts.updated;
	enum jerr rc = state_count(dc->st, rd->dest->id, &now, err);
	if (rc)
		return rc;
	rd->state_records = now > added ? now - added : 0;
	dc->counted = true;
	return JERR_OK;
}

void run_end_dest(struct dest_ctx *dc, double elapsed)
{
	struct run_dest *rd = dc->rd;
	struct jerror e = JERROR_INIT;
	double t_in = run_now_s(); /* finish waits for the batches in flight: their time counts too */

	if (dc->h) {
		/* the guard decides on a count: never held-back deletes without one */
		if (!dc->failed && dc->n_spooled && !dc->counted && run_count_late(dc, &e)) {
			run_fail_dest(dc, &e);
			jerror_release(&e);
			e = (struct jerror)JERROR_INIT;
		}
		if (!dc->failed)
			run_send_held(dc);
		if (dc->ops->finish(dc->h, &e) && !dc->failed) {
			if (e.code == JERR_INTERRUPTED) {
				rd->status = RUN_INTERRUPTED;
				dc->failed = true;
				jerror_set(&rd->err, e.code, "%s", e.msg.buf);
			} else {
				run_fail_dest_connector(dc, &e);
			}
		}
		dc->ops->stats(dc->h, &rd->stats);
		dc->ops->close(dc->h);
		dc->h = NULL;
	}
	/* its last answers (a failure fails the destinations whose answers were kept) */
	if (run_batch_flush(dc->batch, &e))
		jerror_release(&e);
	rd->counts.requests = rd->stats.requests;
	rd->counts.retries = rd->stats.retries;
	rd->counts.throttled = rd->stats.throttled;
	if (!dc->failed)
		rd->status = rd->counts.failed || rd->unreadable ? RUN_FAILED : RUN_SUCCESS;
	rd->elapsed_s = elapsed + (run_now_s() - t_in);
	if (dc->started && rd->unreadable)
		ledger_unreadable(dc);
	if (dc->started) {
		char unread[160];
		snprintf(unread, sizeof(unread),
			 "completed with %llu rows unreadable; %llu deletes, unsubscribes or group exits held back",
			 (unsigned long long)rd->unreadable, (unsigned long long)rd->doubt_held);
		const char *msg = rd->err.msg.len ? rd->err.msg.buf
				  : rd->unreadable ? unread
				  : rd->counts.failed ? RUN_ERROR_ROWS_FAILED : NULL;
		bool ended = !state_run_finish(dc->st, rd->run_id, rd->status, &rd->counts, msg, &e);
		/* no longer running: its journal is not needed (else kept for the abandon) */
		state_journal_finish(dc->journal, ended);
		dc->journal = NULL;
		if (!ended)
			log_error("could not record the end of the run of \"%s\": %s", rd->dest->id, e.msg.buf);
		/* what started it and what it read, for the history (a work item's job is noted by serve) */
		else if (!dc->opts->part &&
			 state_run_note_set(dc->st, rd->run_id, log_trigger(dc->opts), (int64_t)rd->records_read, &e))
			log_warn("could not note how run %lld of \"%s\" started: %s", (long long)rd->run_id, rd->dest->id,
				 e.msg.buf);
	}
	if (dc->log) {
		struct synclog_result lr;
		const char *msg = rd->err.msg.len ? rd->err.msg.buf
				  : rd->counts.failed ? "some records failed; see the error ledger" : NULL;
		struct synclog_summary ls = { .run_id = rd->run_id, .trigger = log_trigger(dc->opts),
					      .started_ms = dc->started_ms, .records_read = (int64_t)rd->records_read,
					      .status = rd->status, .counts = &rd->counts, .error = msg,
					      .part = dc->opts->part != NULL, .stop = dc->opts->stop };
		synclog_finish(dc->log, dc->st, &ls, &lr);
		dc->log = NULL;
		rd->sync_log_status = lr.status;
		rd->sync_log_rows = lr.rows;
		rd->sync_log_pending = lr.pending;
		strbuf_addstr(&rd->sync_log_error, lr.error.buf);
		if (strcmp(lr.status, "complete"))
			log_warn("destination \"%s\": the sync log of run %lld was not written to app \"%s\": %s; "
				 "%llu rows wait in the state store and are written by a later run",
				 rd->dest->id, (long long)rd->run_id, rd->dest->sync_log_app->id, lr.error.buf,
				 (unsigned long long)lr.pending);
		synclog_result_release(&lr);
	}
	state_journal_finish(dc->journal, false); /* not started: none (or the run row was never ended) */
	dc->journal = NULL;
	if (dc->locked)
		state_lock_release(dc->st, rd->dest->id);
	if (dc->spool)
		fclose(dc->spool);
	arena_release(&dc->arena);
	jerror_release(&e);
}
