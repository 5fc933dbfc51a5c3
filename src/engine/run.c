/* run.c: `joey run`: diff items to connector changes, outcomes to state, run history. */
#include "engine/run.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "base/xalloc.h"
#include "engine/diff.h"
#include "engine/marks.h"
#include "engine/payload.h"
#include "engine/synclog.h"
#include "state/runnotes.h"

struct batch;

struct dest_ctx {
	struct run_dest *rd;
	struct state *st;
	struct batch *batch; /* Braze's answers not yet written (shared: one store) */
	size_t batched;      /* of them, this destination's */
	const struct run_opts *opts;
	const struct dest_ops *ops;
	void *h;
	FILE *spool;          /* held-back deletes */
	uint64_t n_spooled;
	bool failed, locked, started;
	double last_heartbeat;
	struct arena arena;
	struct pass *pass; /* for progress reports while the connector waits */
	struct synclog *log; /* the destination's sync log, or NULL */
	int64_t started_ms;
};

struct pass {
	struct dest_ctx **ctx; /* by destination of the current model */
	size_t n;
	struct run *r;
	const struct run_opts *opts;
	uint64_t items;
	double t0, last_progress;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress(struct pass *p, bool final)
{
	uint64_t sent = 0, failed = 0, unchanged = 0;
	double t = now_s();
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

/* ---- outcomes → state ---- */

static enum jerr batch_flush(struct batch *b, struct jerror *err);

/*
 * Keep the destination's lock fresh during long runs (every minute at most). The
 * answers kept so far are written first, while the lock is known to be ours: once it
 * is lost, nothing more is written (another run may own the records now).
 */
static enum jerr heartbeat(struct dest_ctx *dc, struct jerror *err)
{
	enum jerr rc;
	if (!dc->locked || now_s() - dc->last_heartbeat < 60)
		return JERR_OK;
	dc->last_heartbeat = now_s();
	if ((rc = batch_flush(dc->batch, err)))
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

static void fail_dest(struct dest_ctx *dc, const struct jerror *e);

struct held {
	struct dest_ctx *dc;
	enum dest_result result;
	enum dest_op op;
	bool in_scope, is_int;
	int attempts;
	int64_t key_int, at;             /* at: epoch ms of the answer */
	size_t key, key_len, payload, payload_len, error; /* offsets into batch.bytes */
	unsigned char hash[STATE_HASH_LEN];
};

struct batch {
	struct state *st;
	struct dest_ctx *all; /* the run's destinations */
	size_t n_all;
	struct held *v;
	size_t n, alloc;
	struct strbuf bytes;
	double t0; /* when the oldest kept answer came */
};

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
		b->t0 = now_s();
	ALLOC_GROW(b->v, b->n + 1, b->alloc);
	struct held *h = &b->v[b->n++];
	memset(h, 0, sizeof(*h));
	h->dc = dc;
	h->result = o->result;
	h->op = o->op;
	h->in_scope = o->in_scope;
	h->is_int = o->key.is_int;
	h->attempts = o->attempts;
	h->key_int = o->key.i;
	h->at = at;
	h->key = batch_bytes(b, o->key.is_int ? NULL : o->key.text.ptr, o->key.is_int ? 0 : o->key.text.len);
	h->key_len = o->key.is_int ? 0 : o->key.text.len;
	h->payload = batch_bytes(b, o->new_payload.ptr, o->new_payload.len);
	h->payload_len = o->new_payload.len;
	const char *e = o->error ? o->error : "failed";
	h->error = batch_bytes(b, e, strlen(e));
	if (o->new_hash)
		memcpy(h->hash, o->new_hash, STATE_HASH_LEN);
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
		rc = state_mark_failed(b->st, did, &key, bytes + h->error, err);
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
static enum jerr batch_flush(struct batch *b, struct jerror *err)
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
			fail_dest(&b->all[k], err);
		b->all[k].batched = 0;
	}
	b->n = 0;
	strbuf_reset(&b->bytes);
	return rc;
}

/* Flush when the oldest kept answer is BATCH_SECONDS old (failures fail destinations). */
static void batch_flush_old(struct batch *b)
{
	struct jerror e = JERROR_INIT;
	if (b->n && now_s() - b->t0 >= BATCH_SECONDS)
		(void)batch_flush(b, &e);
	jerror_release(&e);
}

static enum jerr on_tick(void *vctx, struct jerror *err)
{
	struct dest_ctx *dc = vctx;
	if (dc->pass)
		progress(dc->pass, false);
	batch_flush_old(dc->batch);
	return heartbeat(vctx, err);
}

static enum jerr on_outcomes(void *vctx, const struct dest_outcome *o, size_t n, struct jerror *err)
{
	struct dest_ctx *dc = vctx;
	struct run_dest *rd = dc->rd;
	struct batch *b = dc->batch;
	enum jerr rc;
	int64_t at = time_now_ms();

	if ((rc = heartbeat(dc, err)))
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
	if (b->n >= BATCH_ROWS || now_s() - b->t0 >= BATCH_SECONDS)
		return batch_flush(b, err);
	return JERR_OK;
}

/* ---- diff items → changes ---- */

static void fail_dest(struct dest_ctx *dc, const struct jerror *e)
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
static void fail_dest_connector(struct dest_ctx *dc, const struct jerror *e)
{
	struct jerror le = JERROR_INIT;
	struct strbuf msg = STRBUF_INIT;
	bool first = !dc->failed;
	fail_dest(dc, e);
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

/*
 * Deletes and unsubscribes are held back until the pass is over, for the mass-delete
 * guard. Each is spooled binary-safe: a header, then the key text and both payloads.
 */
struct spool_head {
	uint8_t action, is_int;
	int64_t i;
	uint32_t key_len, old_len, new_len;
	int32_t attempts;
};

static enum jerr spool_item(struct dest_ctx *dc, const struct diff_item *it, struct jerror *err)
{
	struct spool_head h = { (uint8_t)it->action, it->key->is_int, it->key->i, (uint32_t)it->key->text.len,
				(uint32_t)it->old_payload.len, (uint32_t)it->new_payload.len, it->attempts };
	if (!dc->spool) {
		dc->spool = tmpfile();
		if (!dc->spool)
			return jerror_set(err, JERR_IO, "could not create a temporary file for held-back deletes");
	}
	if (fwrite(&h, sizeof(h), 1, dc->spool) != 1 ||
	    (h.key_len && fwrite(it->key->text.ptr, 1, h.key_len, dc->spool) != h.key_len) ||
	    (h.old_len && fwrite(it->old_payload.ptr, 1, h.old_len, dc->spool) != h.old_len) ||
	    (h.new_len && fwrite(it->new_payload.ptr, 1, h.new_len, dc->spool) != h.new_len))
		return jerror_set(err, JERR_IO, "could not write held-back deletes to a temporary file");
	dc->n_spooled++;
	return JERR_OK;
}

/*
 * The sync log's changed fields of a change (arena-owned): a JSON array of the Braze
 * fields sent, then the memberships added ("+name") and removed ("-name").
 */
static struct slice changed_fields(struct arena *a, const struct dest_field *fields, size_t nf,
				   const struct payload_diff *d)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addch(&sb, '[');
	for (size_t i = 0; i < nf; i++) {
		const char *n = fields[i].name;
		size_t len = strlen(n);
		bool plain = true; /* most field names need no escaping */
		for (size_t k = 0; k < len && plain; k++)
			plain = n[k] >= 0x20 && n[k] < 0x7f && n[k] != '"' && n[k] != '\\';
		if (sb.len > 1)
			strbuf_addch(&sb, ',');
		if (plain) {
			strbuf_addch(&sb, '"');
			strbuf_add(&sb, n, len);
			strbuf_addch(&sb, '"');
		} else {
			strbuf_add_json_string(&sb, n, len);
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		const char *const *g = pass ? d->groups_removed : d->groups_added;
		size_t n = pass ? d->n_removed : d->n_added;
		for (size_t i = 0; i < n; i++) {
			struct strbuf name = STRBUF_INIT;
			strbuf_addch(&name, pass ? '-' : '+');
			strbuf_addstr(&name, g[i]);
			if (sb.len > 1)
				strbuf_addch(&sb, ',');
			strbuf_add_json_string(&sb, name.buf, name.len);
			strbuf_release(&name);
		}
	}
	strbuf_addch(&sb, ']');
	char *p = arena_alloc(a, sb.len + 1);
	memcpy(p, sb.buf, sb.len + 1);
	struct slice out = { p, sb.len };
	strbuf_release(&sb);
	return out;
}

static enum jerr push_item(struct dest_ctx *dc, const struct diff_item *it, struct jerror *err)
{
	struct payload_diff d;
	struct dest_change c = { 0 };
	enum jerr rc;

	arena_reset(&dc->arena);
	rc = (it->full ? payload_diff_full : payload_diff)(it->old_payload, it->new_payload, &dc->arena, &d, err);
	if (rc)
		return rc;
	struct dest_field *fields = arena_alloc(&dc->arena, (d.n_changes + 1) * sizeof(*fields));
	size_t nf = 0;
	for (size_t i = 0; i < d.n_changes; i++) {
		if (!strcmp(d.changes[i].field, "external_id"))
			continue;
		fields[nf++] = (struct dest_field){ d.changes[i].field, d.changes[i].new_json };
	}
	c.op = it->action == DIFF_CREATE && it->dest->sync_mode == SYNC_ENRICH ? DEST_ENRICH_NEW : DEST_UPSERT;
	c.key = it->key;
	c.create = it->action == DIFF_CREATE;
	c.fields = fields;
	c.n_fields = nf;
	c.groups_added = d.groups_added;
	c.n_added = d.n_added;
	c.groups_removed = d.groups_removed;
	c.n_removed = d.n_removed;
	c.new_payload = it->new_payload;
	c.new_hash = it->new_hash;
	c.in_scope = it->in_scope;
	c.attempts = it->attempts;
	if (it->action == DIFF_DELETE)
		c.op = DEST_DELETE;
	else if (dc->log)
		c.changed = changed_fields(&dc->arena, fields, nf, &d);
	return dc->ops->push(dc->h, &c, err);
}

/* One row failed locally (nothing was sent): mark it pending with the reason. */
static enum jerr record_row_failure(struct dest_ctx *dc, const struct rkey *key, int attempts, const char *why,
				    struct jerror *err)
{
	char *msg = xstrdup(why);
	enum jerr rc = state_begin(dc->st, err);
	if (!rc)
		rc = state_mark_failed(dc->st, dc->rd->dest->id, key, msg, err);
	if (!rc)
		rc = state_ledger_add(dc->st, dc->rd->run_id, dc->rd->dest->id, key, msg, attempts + 1, err);
	if (!rc && dc->log)
		rc = synclog_stage_local(dc->log, dc->st, key, attempts, msg, err);
	rc = rc ? (state_rollback(dc->st), rc) : state_commit(dc->st, err);
	if (dc->log)
		(rc ? synclog_rolled_back : synclog_committed)(dc->log);
	free(msg);
	if (!rc)
		dc->rd->counts.failed++;
	return rc;
}

static enum jerr visit(void *vctx, const struct diff_item *it, struct jerror *err)
{
	struct pass *p = vctx;
	struct dest_ctx *dc = NULL;
	struct jerror e = JERROR_INIT;
	enum jerr rc = JERR_OK;

	for (size_t i = 0; i < p->n; i++)
		if (p->ctx[i]->rd->dest == it->dest)
			dc = p->ctx[i];
	if (p->opts->stop && *p->opts->stop)
		return jerror_set(err, JERR_INTERRUPTED, "run interrupted");
	if ((++p->items & 63) == 0)
		progress(p, false);
	if (p->n)
		batch_flush_old(p->ctx[0]->batch);
	if (!dc || dc->failed)
		return JERR_OK;
	if ((rc = heartbeat(dc, &e))) {
		fail_dest(dc, &e);
		jerror_release(&e);
		return JERR_OK;
	}
	switch (it->action) {
	case DIFF_UNCHANGED:
		if (it->absent)
			dc->rd->counts.skipped++; /* not in Braze at the last look-up: not looked up again yet */
		else
			dc->rd->counts.unchanged++;
		if (it->state_only) {
			/* back in scope with nothing to send: only the state row changes */
			if (!(rc = state_begin(dc->st, &e))) {
				rc = state_put(dc->st, it->dest->id, it->key, it->new_payload, it->new_hash, true, &e);
				rc = rc ? (state_rollback(dc->st), rc) : state_commit(dc->st, &e);
			}
		}
		break;
	case DIFF_DELETE:
	case DIFF_UNSUBSCRIBE:
		rc = spool_item(dc, it, &e);
		break;
	default:
		rc = push_item(dc, it, &e);
		if (rc == JERR_STATE) {
			/* this record's payload cannot be read: fail the row, not the destination */
			rc = record_row_failure(dc, it->key, it->attempts, e.msg.buf, &e);
		}
		break;
	}
	if (rc) {
		if (rc == JERR_INTERRUPTED) {
			jerror_release(&e);
			return jerror_set(err, JERR_INTERRUPTED, "run interrupted");
		}
		fail_dest_connector(dc, &e);
	}
	jerror_release(&e);
	return JERR_OK;
}

/* The warehouse diff found n records unchanged without reading them. */
static enum jerr visit_unchanged(void *vctx, const struct cfg_destination *dest, uint64_t n, struct jerror *err)
{
	struct pass *p = vctx;
	(void)err;
	for (size_t i = 0; i < p->n; i++)
		if (p->ctx[i]->rd->dest == dest && !p->ctx[i]->failed)
			p->ctx[i]->rd->counts.unchanged += n;
	return JERR_OK;
}

/* Send the held-back deletes and unsubscribes if the guard allows them. */
static void send_held(struct dest_ctx *dc)
{
	struct run_dest *rd = dc->rd;
	struct jerror e = JERROR_INIT;
	struct strbuf key = STRBUF_INIT, oldp = STRBUF_INIT, newp = STRBUF_INIT;
	const char *what = rd->dest->sync_mode == SYNC_SYNC ? "delete" : "unsubscribe";

	if (!dc->n_spooled || dc->failed)
		return;
	bool over = rd->state_records > 0 &&
		    (double)dc->n_spooled * 100.0 > rd->max_delete_percent * (double)rd->state_records;
	if (over && !dc->opts->force) {
		rd->deletes_held = dc->n_spooled;
		jerror_set(&e, JERR_GUARD, "refusing to %s %llu of %llu records (%.1f%%) of destination \"%s\"", what,
			   (unsigned long long)dc->n_spooled, (unsigned long long)rd->state_records,
			   100.0 * (double)dc->n_spooled / (double)rd->state_records, rd->dest->id);
		jerror_detail(&e, "the mass-delete guard allows at most %g%% per run; creates and updates were sent",
			      rd->max_delete_percent);
		jerror_hint(&e, "check the source (an empty or truncated table looks like this); if this is intended, "
				"run again with --force or raise maxDeletePercent");
		fail_dest(dc, &e);
		jerror_release(&e);
		return;
	}
	fflush(dc->spool);
	rewind(dc->spool);
	struct spool_head h;
	while (!dc->failed && fread(&h, sizeof(h), 1, dc->spool) == 1) {
		strbuf_reset(&key);
		strbuf_reset(&oldp);
		strbuf_reset(&newp);
		strbuf_grow(&key, h.key_len);
		strbuf_grow(&oldp, h.old_len);
		strbuf_grow(&newp, h.new_len);
		if (fread(key.buf, 1, h.key_len, dc->spool) != h.key_len ||
		    fread(oldp.buf, 1, h.old_len, dc->spool) != h.old_len ||
		    fread(newp.buf, 1, h.new_len, dc->spool) != h.new_len) {
			jerror_set(&e, JERR_IO, "could not read held-back deletes back from their temporary file");
			fail_dest(dc, &e);
			break;
		}
		strbuf_setlen(&key, h.key_len);
		strbuf_setlen(&oldp, h.old_len);
		strbuf_setlen(&newp, h.new_len);
		struct rkey k = { .is_int = h.is_int, .i = h.i, .text = { key.buf, key.len } };
		unsigned char hash[STATE_HASH_LEN];
		struct diff_item it = { .dest = rd->dest, .action = (enum diff_action)h.action, .key = &k,
					.old_payload = { oldp.buf, oldp.len }, .new_payload = { newp.buf, newp.len },
					.attempts = h.attempts };
		if (newp.len) {
			state_hash(newp.buf, newp.len, hash);
			it.new_hash = hash;
		}
		if (dc->opts->stop && *dc->opts->stop)
			break;
		if (push_item(dc, &it, &e))
			fail_dest_connector(dc, &e);
	}
	strbuf_release(&key);
	strbuf_release(&oldp);
	strbuf_release(&newp);
	jerror_release(&e);
}

static const char *log_trigger(const struct run_opts *opts)
{
	return opts->trigger ? opts->trigger : opts->part ? "worker" : "cli";
}

static enum jerr start_dest(struct dest_ctx *dc, const struct config *cfg, struct jerror *err)
{
	struct run_dest *rd = dc->rd;
	struct jerror e = JERROR_INIT;
	struct dest_sink sink = { .outcomes = on_outcomes, .tick = on_tick, .ctx = dc };
	enum jerr rc;
	char holder[64];

	if (dc->opts->part) {
		/* a work item: its job holds the lock and the run row */
		rd->run_id = dc->opts->part->run_id;
		if ((rc = state_count_range(dc->st, rd->dest->id, &dc->opts->part->range, &rd->state_records, err)))
			return rc;
		goto open;
	}
	snprintf(holder, sizeof(holder), "joey run pid %ld", (long)getpid());
	rc = state_lock_acquire(dc->st, rd->dest->id, holder, &e);
	if (rc) {
		fail_dest(dc, &e);
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
	dc->last_heartbeat = now_s();
	uint64_t abandoned;
	if ((rc = state_runs_abandon(dc->st, rd->dest->id, &abandoned, err)))
		return rc;
	if (abandoned)
		log_warn("destination \"%s\": %llu earlier run%s ended without finishing; marked interrupted",
			 rd->dest->id, (unsigned long long)abandoned, abandoned == 1 ? "" : "s");
	if ((rc = state_count(dc->st, rd->dest->id, &rd->state_records, err)) ||
	    (rc = state_run_start(dc->st, rd->dest->id, "run", &rd->run_id, err)))
		return rc;
	dc->started = true;
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
		fail_dest(dc, &e);
		jerror_release(&e);
		return JERR_OK;
	}
	if (dc->ops->open(rd->dest->app, rd->dest, &dc->opts->dest, &sink, &dc->h, &e))
		fail_dest(dc, &e);
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

static void end_dest(struct dest_ctx *dc, double elapsed)
{
	struct run_dest *rd = dc->rd;
	struct jerror e = JERROR_INIT;
	double t_in = now_s(); /* finish waits for the batches in flight: their time counts too */

	if (dc->h) {
		if (!dc->failed)
			send_held(dc);
		if (dc->ops->finish(dc->h, &e) && !dc->failed) {
			if (e.code == JERR_INTERRUPTED) {
				rd->status = RUN_INTERRUPTED;
				dc->failed = true;
				jerror_set(&rd->err, e.code, "%s", e.msg.buf);
			} else {
				fail_dest_connector(dc, &e);
			}
		}
		dc->ops->stats(dc->h, &rd->stats);
		dc->ops->close(dc->h);
		dc->h = NULL;
	}
	/* its last answers (a failure fails the destinations whose answers were kept) */
	if (batch_flush(dc->batch, &e))
		jerror_release(&e);
	rd->counts.requests = rd->stats.requests;
	rd->counts.retries = rd->stats.retries;
	rd->counts.throttled = rd->stats.throttled;
	if (!dc->failed)
		rd->status = rd->counts.failed || rd->unreadable ? RUN_FAILED : RUN_SUCCESS;
	rd->elapsed_s = elapsed + (now_s() - t_in);
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
		if (state_run_finish(dc->st, rd->run_id, rd->status, &rd->counts, msg, &e))
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
	if (dc->locked)
		state_lock_release(dc->st, rd->dest->id);
	if (dc->spool)
		fclose(dc->spool);
	arena_release(&dc->arena);
	jerror_release(&e);
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
		if (state_mark_set(st, rm->schedule->id, rm->seen.buf, &e))
			log_error("%s (the next run reads the same rows again)", e.msg.buf);
		else
			rm->mark_saved = true;
		jerror_release(&e);
	}
}

enum jerr run_execute(struct run *r, const struct config *cfg, struct state *st,
		      const struct run_opts *opts, struct jerror *err)
{
	struct dest_ctx *all;
	struct pass p = { .r = r, .opts = opts };
	struct batch batch = { .st = st, .bytes = STRBUF_INIT };
	enum jerr rc = JERR_OK;
	double t0 = now_s();

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
		if ((rc = start_dest(&all[i], cfg, err)))
			goto out;
	progress(&p, false); /* the run ids exist now */

	for (size_t m = 0; m < cfg->n_models && !rc; m++) {
		const struct cfg_model *model = cfg->models[m];
		struct cfg_destination **dests = xcalloc(r->n_dests ? r->n_dests : 1, sizeof(*dests));
		size_t n = 0;
		p.n = 0;
		for (size_t i = 0; i < r->n_dests; i++) {
			if (r->dests[i].dest->model != model || all[i].failed)
				continue;
			dests[n++] = (struct cfg_destination *)r->dests[i].dest;
			p.ctx[p.n++] = &all[i];
		}
		if (n) {
			struct record_stats stats = { 0 };
			struct diff_visitor v = { visit, &p };
			const struct cfg_schedule *sched = NULL;
			struct source_read read = { 0 };
			struct run_model *rm = NULL;
			struct model_marks mk;
			struct strbuf unread = STRBUF_INIT;
			size_t first_rm = r->n_models;
			bool marks = !opts->part;
			memset(&mk, 0, sizeof(mk));
			if (marks) {
				/* every schedule of the model counts (marks.h) */
				rc = model_marks_load(cfg, model, st, opts->full, &mk, err);
				for (size_t i = 0; !rc && i < mk.n; i++) {
					if (!mk.sched[i])
						continue;
					rm = &r->models[r->n_models++];
					rm->model = model;
					rm->schedule = mk.sched[i];
					strbuf_init(&rm->since, 0);
					strbuf_init(&rm->seen, 0);
					rm->incremental = mk.incremental;
					if (mk.incremental)
						strbuf_addstr(&rm->since, mk.mark[i].buf);
				}
			} else {
				/* a work item reads from its job's mark, on its primary source */
				rc = marks_primary_schedule(cfg, model, &sched, err);
				if (!rc && sched) {
					rm = &r->models[r->n_models++];
					rm->model = model;
					rm->schedule = sched;
					strbuf_init(&rm->since, 0);
					strbuf_init(&rm->seen, 0);
					read.since_column = cfg_options_str(&sched->options, "column");
					if (opts->part->since) {
						strbuf_addstr(&rm->since, opts->part->since);
						read.since_value = rm->since.buf;
						rm->incremental = true;
					}
				}
				read.range = &opts->part->range;
			}
			struct diff_opts dopts = { .read = marks ? (mk.use_read ? &mk.read : NULL) : &read,
						   .unchanged = visit_unchanged, .write_digests = true,
						   .scope = marks && mk.scope.since_column ? &mk.scope : NULL,
						   .since_at = marks ? mk.seen : NULL, .unreadable_at = &unread };
			uint64_t *held = xcalloc(n, sizeof(*held));
			dopts.held = held;
			struct diff_report drep;
			dopts.mode = diff_mode_choose(dests, n, opts->diff_set ? &opts->diff : NULL);
			if (!rc)
				rc = diff_model_opts(cfg, model, dests, n, st, &dopts, &v, &stats,
						     !marks && rm ? &rm->seen : NULL, &drep, err);
			if (!rc && dopts.mode != DIFF_MODE_STREAM) {
				r->diff_asked = true;
				r->warehouse_models += drep.warehouse;
				r->records_read += drep.read;
				r->candidates += drep.candidates;
				r->digests += drep.digests;
			}
			for (size_t k = first_rm; k < r->n_models; k++) {
				struct run_model *x = &r->models[k];
				x->read_ok = !rc;
				for (size_t i = 0; marks && i < mk.n; i++)
					if (mk.sched[i] == x->schedule)
						strbuf_addstr(&x->seen, mk.seen[i].buf);
			}
			if (!rc && stats.unreadable) {
				/* records unknown this run: the model's destinations end partial */
				for (size_t i = 0; i < p.n; i++) {
					struct run_dest *rd = p.ctx[i]->rd;
					rd->unreadable = stats.unreadable;
					rd->doubt_held = held[i];
					strbuf_addstr(&rd->unreadable_at, unread.buf);
				}
			}
			strbuf_release(&unread);
			free(held);
			model_marks_release(&mk);
			r->records += stats.records;
			for (size_t i = 0; i < p.n; i++)
				p.ctx[i]->rd->records_read += stats.records;
			if (rc && rc != JERR_INTERRUPTED) {
				/* the source failed: every destination of this model fails with it */
				for (size_t i = 0; i < p.n; i++)
					fail_dest(p.ctx[i], err);
				rc = JERR_OK;
			}
		}
		free(dests);
	}
	if (rc == JERR_INTERRUPTED) {
		for (size_t i = 0; i < r->n_dests; i++)
			if (!all[i].failed) {
				all[i].failed = true;
				r->dests[i].status = RUN_INTERRUPTED;
				jerror_set(&r->dests[i].err, JERR_INTERRUPTED, "run interrupted");
			}
		rc = JERR_OK;
	}
out:
	for (size_t i = 0; i < r->n_dests; i++)
		end_dest(&all[i], now_s() - t0);
	/* end_dest wrote every answer: the marks come after them, outside their transactions */
	free(batch.v);
	strbuf_release(&batch.bytes);
	if (!rc && !opts->part)
		save_marks(r, cfg, st);
	progress(&p, true);
	free(all);
	free(p.ctx);
	source_set_stop(prev_stop);
	return rc;
}

bool run_ok(const struct run *r)
{
	for (size_t i = 0; i < r->n_dests; i++)
		if (r->dests[i].status != RUN_SUCCESS)
			return false;
	return true;
}

void run_print_text(const struct run *r, FILE *out)
{
	for (size_t i = 0; i < r->n_dests; i++) {
		const struct run_dest *rd = &r->dests[i];
		const struct run_counts *c = &rd->counts;
		fprintf(out, "destination \"%s\": %s\n", rd->dest->id, run_status_name(rd->status));
		fprintf(out, "  created %llu, updated %llu, deleted %llu, unsubscribed %llu, unchanged %llu, failed %llu",
			(unsigned long long)c->created, (unsigned long long)c->updated, (unsigned long long)c->deleted,
			(unsigned long long)c->unsubscribed, (unsigned long long)c->unchanged,
			(unsigned long long)c->failed);
		if (c->skipped)
			fprintf(out, ", not in Braze %llu", (unsigned long long)c->skipped);
		fprintf(out, "\n  requests %llu, 429s %llu, retries %llu, data points %llu, %.2f s\n",
			(unsigned long long)c->requests, (unsigned long long)c->throttled,
			(unsigned long long)c->retries, (unsigned long long)c->data_points, rd->elapsed_s);
		if (rd->stats.inflight_peak > 1)
			fprintf(out, "  up to %u requests in flight (window %u of at most %u; latency %.0f ms)\n",
				rd->stats.inflight_peak, rd->stats.window_peak, rd->stats.window_max,
				rd->stats.latency_srtt_ms);
		if (rd->err.msg.len) {
			fprintf(out, "  error: %s\n", rd->err.msg.buf);
			if (rd->err.detail.len)
				fprintf(out, "  detail: %s\n", rd->err.detail.buf);
			if (rd->err.hint.len)
				fprintf(out, "  hint: %s\n", rd->err.hint.buf);
		}
		if (rd->unreadable) {
			fprintf(out, "  completed with %llu rows unreadable: their records are unknown, so %llu deletes, "
				     "unsubscribes or group exits were held back\n",
				(unsigned long long)rd->unreadable, (unsigned long long)rd->doubt_held);
			fprintf(out, "  hint: fix the rows named above (and in 'joey status --destination %s'); the next "
				     "run reads them again\n",
				rd->dest->id);
		}
		if (c->failed)
			fprintf(out, "  hint: 'joey status --destination %s' lists the failed records; the next run retries them\n",
				rd->dest->id);
		if (rd->sync_log && rd->sync_log_status && !strcmp(rd->sync_log_status, "complete"))
			fprintf(out, "  sync log: complete, %llu record rows written to app \"%s\"\n",
				(unsigned long long)rd->sync_log_rows, rd->dest->sync_log_app->id);
		else if (rd->sync_log && rd->sync_log_status)
			fprintf(out, "  sync log: pending, %llu record rows written to app \"%s\", %llu wait in the state store "
				     "for a later run: %s\n",
				(unsigned long long)rd->sync_log_rows, rd->dest->sync_log_app->id,
				(unsigned long long)rd->sync_log_pending, rd->sync_log_error.buf);
	}
	for (size_t m = 0; m < r->n_models; m++) {
		const struct run_model *rm = &r->models[m];
		fprintf(out, "model \"%s\": ", rm->model->id);
		if (rm->incremental)
			fprintf(out, "incremental since %s", rm->since.buf);
		else
			fputs("full read", out);
		fprintf(out, " (schedule \"%s\"); ", rm->schedule->id);
		if (rm->mark_saved)
			fprintf(out, "mark now %s\n", rm->seen.buf);
		else if (rm->read_ok && !rm->seen.len)
			fputs("no rows read, mark unchanged\n", out);
		else
			fputs("mark unchanged: the rows are read again by the next run\n", out);
	}
	if (r->diff_asked)
		fprintf(out, "warehouse diff: %llu model%s compared in the database, %llu of %llu records read (%llu may have "
			     "changed), %llu digests stored\n",
			(unsigned long long)r->warehouse_models, r->warehouse_models == 1 ? "" : "s",
			(unsigned long long)r->records_read, (unsigned long long)r->records,
			(unsigned long long)r->candidates, (unsigned long long)r->digests);
}

void run_print_json(const struct run *r, FILE *out)
{
	fputs("{\"destinations\":[", out);
	for (size_t i = 0; i < r->n_dests; i++) {
		const struct run_dest *rd = &r->dests[i];
		const struct run_counts *c = &rd->counts;
		struct strbuf sb = STRBUF_INIT;
		strbuf_addf(&sb, "%s{\"id\":", i ? "," : "");
		strbuf_add_json_string(&sb, rd->dest->id, strlen(rd->dest->id));
		strbuf_addf(&sb, ",\"run_id\":%lld,\"status\":\"%s\",\"counts\":{\"created\":%llu,\"updated\":%llu,"
				 "\"deleted\":%llu,\"unsubscribed\":%llu,\"unchanged\":%llu,\"failed\":%llu,\"skipped\":%llu},"
				 "\"requests\":%llu,\"throttled\":%llu,\"retries\":%llu,\"data_points\":%llu,"
				 "\"deletes_held\":%llu,\"unreadable\":%llu,\"doubt_held\":%llu,\"elapsed_s\":%.3f,\"error\":",
			    (long long)rd->run_id, run_status_name(rd->status), (unsigned long long)c->created,
			    (unsigned long long)c->updated, (unsigned long long)c->deleted,
			    (unsigned long long)c->unsubscribed, (unsigned long long)c->unchanged,
			    (unsigned long long)c->failed, (unsigned long long)c->skipped,
			    (unsigned long long)c->requests, (unsigned long long)c->throttled,
			    (unsigned long long)c->retries, (unsigned long long)c->data_points,
			    (unsigned long long)rd->deletes_held, (unsigned long long)rd->unreadable,
			    (unsigned long long)rd->doubt_held, rd->elapsed_s);
		/* the connector's window of requests in flight (dest/window.h), before "error" */
		strbuf_setlen(&sb, sb.len - strlen(",\"error\":"));
		strbuf_addf(&sb, ",\"window\":{\"peak\":%u,\"last\":%u,\"max\":%u,\"inflight_peak\":%u,"
				 "\"decreases\":%llu,\"latency_ms\":%.1f},\"error\":",
			    rd->stats.window_peak, rd->stats.window_last, rd->stats.window_max, rd->stats.inflight_peak,
			    (unsigned long long)rd->stats.window_decreases, rd->stats.latency_srtt_ms);
		if (rd->err.msg.len) {
			strbuf_addstr(&sb, "{\"message\":");
			strbuf_add_json_string(&sb, rd->err.msg.buf, rd->err.msg.len);
			strbuf_addstr(&sb, ",\"detail\":");
			strbuf_add_json_string(&sb, rd->err.detail.buf, rd->err.detail.len);
			strbuf_addstr(&sb, ",\"hint\":");
			strbuf_add_json_string(&sb, rd->err.hint.buf, rd->err.hint.len);
			strbuf_addstr(&sb, "}");
		} else {
			strbuf_addstr(&sb, "null");
		}
		strbuf_addstr(&sb, ",\"sync_log\":");
		if (rd->sync_log && rd->sync_log_status) {
			strbuf_addf(&sb, "{\"status\":\"%s\",\"rows\":%llu,\"pending\":%llu,\"error\":", rd->sync_log_status,
				    (unsigned long long)rd->sync_log_rows, (unsigned long long)rd->sync_log_pending);
			if (rd->sync_log_error.len)
				strbuf_add_json_string(&sb, rd->sync_log_error.buf, rd->sync_log_error.len);
			else
				strbuf_addstr(&sb, "null");
			strbuf_addch(&sb, '}');
		} else {
			strbuf_addstr(&sb, "null");
		}
		strbuf_addstr(&sb, "}");
		fputs(sb.buf, out);
		strbuf_release(&sb);
	}
	fputs("],\"models\":[", out);
	for (size_t m = 0; m < r->n_models; m++) {
		const struct run_model *rm = &r->models[m];
		struct strbuf sb = STRBUF_INIT;
		strbuf_addf(&sb, "%s{\"id\":", m ? "," : "");
		strbuf_add_json_string(&sb, rm->model->id, strlen(rm->model->id));
		strbuf_addstr(&sb, ",\"schedule\":");
		strbuf_add_json_string(&sb, rm->schedule->id, strlen(rm->schedule->id));
		strbuf_addf(&sb, ",\"incremental\":%s,\"since\":", rm->incremental ? "true" : "false");
		if (rm->incremental)
			strbuf_add_json_string(&sb, rm->since.buf, rm->since.len);
		else
			strbuf_addstr(&sb, "null");
		strbuf_addstr(&sb, ",\"mark\":");
		if (rm->mark_saved)
			strbuf_add_json_string(&sb, rm->seen.buf, rm->seen.len);
		else
			strbuf_addstr(&sb, "null");
		strbuf_addf(&sb, ",\"mark_saved\":%s}", rm->mark_saved ? "true" : "false");
		fputs(sb.buf, out);
		strbuf_release(&sb);
	}
	fputs("],", out);
	if (r->diff_asked)
		fprintf(out, "\"diff\":{\"warehouse_models\":%llu,\"read\":%llu,\"candidates\":%llu,\"digests\":%llu},",
			(unsigned long long)r->warehouse_models, (unsigned long long)r->records_read,
			(unsigned long long)r->candidates, (unsigned long long)r->digests);
	fprintf(out, "\"records\":%llu,\"ok\":%s}\n", (unsigned long long)r->records, run_ok(r) ? "true" : "false");
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
