/* diff.c: merge-join of the record stream with the state store, one cursor per destination. */
#include "engine/diff.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "base/xalloc.h"
#include "engine/payload.h"
#include "engine/readahead.h"
#include "engine/warehouse.h"

static const char *const action_names[] = { "create", "update", "delete", "unsubscribe", "unchanged" };

const char *diff_action_name(enum diff_action a)
{
	return (unsigned)a < DIFF__COUNT ? action_names[a] : "unknown";
}

struct dest_pass {
	const struct cfg_destination *dest;
	struct payload_spec spec;
	size_t *spans; /* payload_build_spans's for a payload built on the diff thread (2 per entry) */
	struct state_cursor *cur;
	struct state_row *row; /* current state row, NULL at end (partial pass: or not read yet) */
	bool done;
	uint64_t held;         /* changes held back in doubt (diff_stream) */
	uint64_t in_scope;     /* state rows in scope read so far */
};

static enum jerr advance(struct dest_pass *dp, struct jerror *err)
{
	enum jerr rc = state_cursor_next(dp->cur, &dp->row, err);
	if (rc)
		return rc;
	if (!dp->row)
		dp->done = true;
	else
		dp->in_scope += dp->row->in_scope;
	return JERR_OK;
}

/*
 * A partial pass: make dp->row the first state row at or after key, skipping (not
 * reading, where the cursor can seek) the rows before it: they are not gone, only not
 * read this pass.
 */
static enum jerr seek_to(struct dest_pass *dp, const struct rkey *key, struct jerror *err)
{
	enum jerr rc;
	if (dp->done || (dp->row && key_compare(&dp->row->key, key) >= 0))
		return JERR_OK;
	if ((rc = state_cursor_seek(dp->cur, key, err)))
		return rc;
	return advance(dp, err);
}

/*
 * What the read-ahead thread works out for a record beside reading it, per destination
 * (in the pass's order): whether the record is in its scope and, if it is, its payload
 * and hash. The diff thread then only compares.
 */
struct desired {
	bool in_scope;
	struct slice payload;
	size_t *spans; /* where payload's values are (payload_build_spans); NULL: out of scope */
	unsigned char hash[STATE_HASH_LEN];
};

struct prep_ctx {
	const struct dest_pass *dps;
	size_t n;
	struct strbuf buf; /* the thread's */
};

static void prepare(void *ctx, const struct record *rec, struct arena *a, void **out)
{
	struct prep_ctx *pc = ctx;
	struct desired *d = arena_alloc(a, (pc->n ? pc->n : 1) * sizeof(*d));
	for (size_t i = 0; i < pc->n; i++) {
		d[i].in_scope = payload_in_scope(pc->dps[i].dest, rec);
		d[i].payload = (struct slice){ "", 0 };
		d[i].spans = NULL;
		if (!d[i].in_scope)
			continue;
		strbuf_reset(&pc->buf);
		size_t n_map = pc->dps[i].dest->n_mapping;
		d[i].spans = arena_alloc(a, (n_map ? 2 * n_map : 1) * sizeof(*d[i].spans));
		payload_build_spans(&pc->dps[i].spec, rec, &pc->buf, d[i].spans);
		state_hash(pc->buf.buf, pc->buf.len, d[i].hash);
		char *p = arena_alloc(a, pc->buf.len + 1);
		memcpy(p, pc->buf.buf, pc->buf.len + 1);
		d[i].payload = (struct slice){ p, pc->buf.len };
	}
	*out = d;
}

/*
 * A partial pass with the records read ahead: at the first record of each batch, tell
 * the state cursors the keys the pass will seek next (keys: READAHEAD_BATCH of room),
 * so a back end that can look them up in one query does (state_cursor_expect).
 */
static void expect_batch(const struct readahead *ra, struct dest_pass *dps, size_t n_dests, struct rkey *keys)
{
	const struct record *recs;
	size_t at, n = readahead_batch(ra, &recs, &at);
	if (!n || at)
		return;
	for (size_t j = 0; j < n; j++)
		keys[j] = recs[j].key;
	for (size_t i = 0; i < n_dests; i++)
		state_cursor_expect(dps[i].cur, keys, n);
}

/* The records: from the read-ahead thread when there is one, else from the reader. */
static enum jerr next_record(struct record_reader *rr, struct readahead *ra, const struct record **rec,
			     const struct desired **desired, struct jerror *err)
{
	void *extra = NULL;
	enum jerr rc = ra ? readahead_next(ra, rec, &extra, err) : record_reader_next(rr, rec, err);
	*desired = extra;
	return rc;
}

/*
 * The payload after releasing a record: the same attributes, no groups. Built by
 * editing the canonical text (groups is its last member, and the marker cannot occur
 * inside a JSON string, whose quotes are escaped), so it stays byte-identical to what
 * payload_build would write.
 */
static enum jerr released_payload(struct slice old, struct strbuf *out, struct jerror *err)
{
	static const char marker[] = "},\"groups\":[";
	const char *m = NULL;
	for (size_t i = 0; i + sizeof(marker) - 1 <= old.len; i++)
		if (!memcmp(old.ptr + i, marker, sizeof(marker) - 1)) {
			m = old.ptr + i;
			break;
		}
	if (!m || old.len < 2 || old.ptr[old.len - 1] != '}')
		return jerror_set(err, JERR_STATE, "stored payload is not in joey's canonical form");
	strbuf_reset(out);
	strbuf_add(out, old.ptr, (size_t)(m - old.ptr) + sizeof(marker) - 1);
	strbuf_addstr(out, "]}");
	return JERR_OK;
}


/* Does a canonical payload name a group? (groups is its last member: `"groups":[]}` when none) */
static bool payload_has_groups(struct slice p)
{
	static const char none[] = "\"groups\":[]}";
	return p.len >= sizeof(none) - 1 && memcmp(p.ptr + p.len - (sizeof(none) - 1), none, sizeof(none) - 1) &&
	       p.ptr[p.len - 1] == '}' && memchr(p.ptr, '[', p.len);
}

/*
 * A state row (row, borrowed) whose record is no longer desired: gone from the
 * sources (rec NULL) or read but out of the destination's scope (rec). Additive and
 * Enrich release the user: its groups are removed and, when the record was read, its
 * mapped fields are brought up to date in the same export, as Grouparoo's leave export
 * does (app-templates exportRecords: the last export of a record carries its current
 * properties).
 */
static enum jerr emit_gone(struct dest_pass *dp, const struct state_row *row, const struct record *rec,
			   const struct diff_visitor *v, struct strbuf *buf, struct jerror *err)
{
	struct diff_item it = { .dest = dp->dest, .key = &row->key, .old_payload = row->payload,
				.pending = row->pending, .attempts = row->attempts };
	unsigned char hash[STATE_HASH_LEN];
	enum jerr rc;

	/*
	 * A placeholder of a failed create: Braze may have applied it (a timeout), so in
	 * Sync mode the delete is sent anyway (deleting an unknown id is harmless). Additive
	 * and Enrich release it when the failed attempt added groups (its payload holds
	 * them, state_mark_failed): as an update of a user Braze may not have, which must
	 * not create it (update_only); confirmed, the row stays a placeholder (zero hash),
	 * no longer pending and without the groups, so a record back in scope is created
	 * in full again.
	 */
	bool placeholder = state_row_placeholder(row);
	if (placeholder) {
		if (row->pending && dp->dest->sync_mode == SYNC_SYNC) {
			it.action = DIFF_DELETE;
			return v->item(v->ctx, &it, err);
		}
		if (!row->pending || !row->payload.len || !payload_has_groups(row->payload))
			return JERR_OK;
	} else if (!row->in_scope) {
		return JERR_OK; /* already released */
	} else if (dp->dest->sync_mode == SYNC_SYNC) {
		it.action = DIFF_DELETE;
		return v->item(v->ctx, &it, err);
	}
	if (rec) {
		struct strbuf cur = STRBUF_INIT;
		payload_build(&dp->spec, rec, &cur);
		rc = released_payload((struct slice){ cur.buf, cur.len }, buf, err);
		strbuf_release(&cur);
	} else {
		rc = released_payload(row->payload, buf, err);
	}
	if (rc)
		return rc;
	if (placeholder)
		memset(hash, 0, sizeof(hash)); /* it stays one */
	else
		state_hash(buf->buf, buf->len, hash);
	it.action = DIFF_UNSUBSCRIBE;
	it.new_payload = (struct slice){ buf->buf, buf->len };
	it.new_hash = hash;
	it.in_scope = false;
	it.update_only = placeholder;
	return v->item(v->ctx, &it, err);
}

/*
 * Enrich: the placeholder row says Braze had no such user at a look-up less than
 * options.enrichRecheckHours ago (now: time_now_ms, so JOEY_NOW pins it), so the
 * user is not looked up again on this run (a failed attempt is always retried).
 */
static bool absent_recently(const struct cfg_destination *dest, const struct state_row *row)
{
	if (dest->sync_mode != SYNC_ENRICH || row->braze_exists != 0 || row->pending || !row->checked_at ||
	    dest->enrich_recheck_ms <= 0)
		return false;
	return time_now_ms() - row->checked_at < dest->enrich_recheck_ms;
}

/*
 * rec in the destination's scope; hash_out (may be NULL) receives its payload's hash.
 * With doubt (some source rows could not be read this pass) an update that takes the
 * record out of a group is held: nothing is sent and the state row stays as it is.
 */
static enum jerr emit_desired(struct dest_pass *dp, const struct record *rec, const struct state_row *row,
			      const struct diff_visitor *v, struct strbuf *buf, unsigned char *hash_out,
			      bool doubt, uint64_t *held, const struct desired *pre, struct jerror *err)
{
	unsigned char hash[STATE_HASH_LEN];
	/* every member named: a partial initializer zeroed the whole item with `rep stos`
	 * first, which cost as much as the rest of this function */
	struct diff_item it = { .dest = dp->dest, .action = DIFF_CREATE, .key = &rec->key, .rec = rec,
				.old_payload = { NULL, 0 }, .new_payload = { NULL, 0 }, .new_hash = NULL,
				.new_spans = NULL, .spec = &dp->spec, .in_scope = true, .state_only = false,
				.full = false, .pending = false, .absent = false, .update_only = false, .attempts = 0 };

	if (pre) {
		/* built on the read-ahead thread (prepare) */
		memcpy(hash, pre->hash, STATE_HASH_LEN);
		it.new_payload = pre->payload;
		it.new_spans = pre->spans;
	} else {
		strbuf_reset(buf);
		if (!dp->spans)
			dp->spans = xcalloc(dp->dest->n_mapping ? 2 * dp->dest->n_mapping : 1, sizeof(*dp->spans));
		payload_build_spans(&dp->spec, rec, buf, dp->spans);
		state_hash(buf->buf, buf->len, hash);
		it.new_payload = (struct slice){ buf->buf, buf->len };
		it.new_spans = dp->spans;
	}
	it.new_hash = hash;
	if (row && state_row_placeholder(row) && absent_recently(dp->dest, row)) {
		/* enrich: Braze did not have the user lately; no look-up before the interval */
		it.action = DIFF_UNCHANGED;
		it.absent = true;
	} else if (!row || state_row_placeholder(row)) {
		it.action = DIFF_CREATE;
		if (row && row->payload.len) {
			/*
			 * Failed creates may have been applied (a timeout): the groups they
			 * added that the record has left since are removed (payload_diff_full).
			 */
			it.old_payload = row->payload;
			it.full = true;
		}
	} else {
		it.old_payload = row->payload;
		if (row->pending) {
			/*
			 * The last attempt failed, and a timeout may have been applied by Braze
			 * after all: what Braze holds is unknown, so everything is sent again.
			 */
			it.action = DIFF_UPDATE;
			it.full = true;
		} else if (!memcmp(hash, row->hash, STATE_HASH_LEN)) {
			it.action = DIFF_UNCHANGED;
			it.state_only = !row->in_scope; /* back in scope: only the state row changes */
		} else {
			it.action = DIFF_UPDATE;
		}
	}
	if (row) {
		it.pending = row->pending;
		it.attempts = row->attempts;
	}
	if (hash_out)
		memcpy(hash_out, hash, STATE_HASH_LEN);
	if (doubt && it.action == DIFF_UPDATE && row && row->in_scope &&
	    payload_drops_group(row->payload, it.new_payload)) {
		if (held)
			(*held)++;
		return JERR_OK;
	}
	return v->item(v->ctx, &it, err);
}

enum jerr diff_model(const struct config *cfg, const struct cfg_model *model,
		     struct cfg_destination *const *dests, size_t n_dests, struct state *st,
		     const struct diff_visitor *v, struct record_stats *stats, struct jerror *err)
{
	return diff_model_read(cfg, model, dests, n_dests, st, NULL, v, stats, NULL, err);
}

enum jerr diff_model_read(const struct config *cfg, const struct cfg_model *model,
			  struct cfg_destination *const *dests, size_t n_dests, struct state *st,
			  const struct source_read *read, const struct diff_visitor *v,
			  struct record_stats *stats, struct strbuf *since, struct jerror *err)
{
	struct diff_opts o = { .read = read };
	return diff_stream(cfg, model, dests, n_dests, st, &o, v, stats, since, err);
}

/* Say that n source rows of model could not be read; true (the pass is in doubt). */
static bool warn_doubt(const struct cfg_model *model, uint64_t n)
{
	log_warn("model \"%s\": %llu source rows could not be read: their records are unknown "
		 "this run, so nothing is deleted or unsubscribed and no group is left",
		 model->id, (unsigned long long)n);
	return true;
}

enum jerr diff_stream(const struct config *cfg, const struct cfg_model *model,
		      struct cfg_destination *const *dests, size_t n_dests, struct state *st,
		      const struct diff_opts *o, const struct diff_visitor *v,
		      struct record_stats *stats, struct strbuf *since, struct jerror *err)
{
	const struct source_read *read = o->read;
	/* partial: state rows between the records read were simply not read */
	bool partial = read && read->since_column && read->since_value;
	/* doubt: some source rows could not be read, so a missing record may exist */
	bool doubt = false;
	struct record_reader *rr = NULL;
	struct readahead *ra = NULL;
	struct dest_pass *dps = xcalloc(n_dests ? n_dests : 1, sizeof(*dps));
	struct prep_ctx pc = { .dps = dps, .n = n_dests, .buf = STRBUF_INIT };
	struct rkey *keys = NULL; /* a batch's keys (expect_batch) */
	struct strbuf buf = STRBUF_INIT;
	const struct record *rec;
	enum jerr rc;
	size_t i;

	memset(stats, 0, sizeof(*stats));
	for (i = 0; i < n_dests; i++) {
		dps[i].dest = dests[i];
		payload_spec_init(&dps[i].spec, dests[i]);
		/* a worker's partition (read->range) reads its keys only, on both sides */
		rc = state_cursor_open_range(st, dests[i]->id, read ? read->range : NULL, &dps[i].cur, err);
		if (rc)
			goto out;
		state_cursor_lean(dps[i].cur); /* the diff reads no error text or times */
	}
	if (since)
		strbuf_reset(since);
	rc = record_reader_open_scope(cfg, model, read, o->scope, &rr, err);
	if (rc)
		goto out;
	partial = partial || record_reader_partial(rr); /* e.g. a changed-records read */
	/*
	 * A full pass walks every state row; a partial one seeks each record's key
	 * (seek_to), so it reads about as many state rows as records.
	 */
	for (i = 0; i < n_dests && !partial; i++)
		if ((rc = advance(&dps[i], err)))
			goto out;
	uint64_t unreadable = record_reader_unreadable(rr, NULL);
	if (unreadable)
		doubt = warn_doubt(model, unreadable);
	bool keep_gone = partial || doubt;

	/*
	 * The sources are read, and the payloads built, on a thread of their own while
	 * this one reads the state and compares (readahead.h).
	 */
	struct readahead_prep prep = { prepare, &pc, .shared = true };
	const struct desired *desired = NULL;
	if (partial)
		keys = xcalloc(READAHEAD_BATCH, sizeof(*keys));
	if (readahead_enabled() && (rc = readahead_start(rr, &prep, &ra, err))) {
		log_warn("%s: reading the sources on this thread", err->msg.buf);
		jerror_release(err);
		rc = JERR_OK;
	}
	while ((rc = next_record(rr, ra, &rec, &desired, err)) == JERR_OK && rec) {
		/*
		 * A row whose key Braze cannot receive is found as it is read, before the
		 * records after it: the state rows before this record are not yet compared.
		 */
		if (rec->unreadable && !doubt)
			doubt = keep_gone = true;
		if (partial && ra)
			expect_batch(ra, dps, n_dests, keys);
		for (i = 0; i < n_dests; i++) {
			struct dest_pass *dp = &dps[i];
			if (partial && (rc = seek_to(dp, &rec->key, err)))
				goto out;
			while (!dp->done && key_compare(&dp->row->key, &rec->key) < 0) {
				if (!keep_gone && (rc = emit_gone(dp, dp->row, NULL, v, &buf, err)))
					goto out;
				if (doubt && !partial && dp->row->in_scope && dp->row->payload.len)
					dp->held++;
				if ((rc = advance(dp, err)))
					goto out;
			}
			bool have = !dp->done && key_compare(&dp->row->key, &rec->key) == 0;
			const struct desired *pre = desired ? &desired[i] : NULL;
			if (pre ? pre->in_scope : payload_in_scope(dp->dest, rec))
				rc = emit_desired(dp, rec, have ? dp->row : NULL, v, &buf, NULL, doubt, &dp->held, pre, err);
			else if (have && doubt)
				dp->held += dp->row->in_scope && dp->row->payload.len;
			else if (have)
				rc = emit_gone(dp, dp->row, rec, v, &buf, err);
			if (rc)
				goto out;
			if (have && partial)
				dp->row = NULL; /* used: the next record seeks past it */
			else if (have && (rc = advance(dp, err)))
				goto out;
		}
	}
	if (rc)
		goto out;
	/* every record is read: the reader is this thread's again, with its final count */
	readahead_stop(ra);
	ra = NULL;
	if (!unreadable && (unreadable = record_reader_unreadable(rr, NULL)))
		doubt = warn_doubt(model, unreadable);
	for (i = 0; i < n_dests && !partial; i++) {
		struct dest_pass *dp = &dps[i];
		while (!dp->done) {
			if (doubt)
				dp->held += dp->row->in_scope && dp->row->payload.len;
			else if ((rc = emit_gone(dp, dp->row, NULL, v, &buf, err)))
				goto out;
			if ((rc = advance(dp, err)))
				goto out;
		}
	}
out:
	readahead_stop(ra); /* the reader is this thread's again */
	strbuf_release(&pc.buf);
	free(keys);
	for (i = 0; o->in_scope && i < n_dests; i++)
		o->in_scope[i] = !rc && !partial ? dps[i].in_scope : DIFF_NOT_COUNTED;
	if (rr) {
		*stats = *record_reader_stats(rr);
		stats->unreadable = record_reader_unreadable(rr, o->unreadable_at);
		for (i = 0; i < n_dests; i++) {
			stats->held += dps[i].held;
			if (o->held)
				o->held[i] = dps[i].held;
		}
		if (since)
			strbuf_addslice(since, record_reader_since(rr));
		for (i = 0; o->since_at && i < model->n_sources; i++) {
			strbuf_reset(&o->since_at[i]);
			strbuf_addslice(&o->since_at[i], record_reader_since_at(rr, i));
		}
		record_reader_close(rr);
	}
	for (i = 0; i < n_dests; i++) {
		if (dps[i].cur)
			state_cursor_close(dps[i].cur);
		payload_spec_release(&dps[i].spec);
		free(dps[i].spans);
	}
	free(dps);
	strbuf_release(&buf);
	return rc;
}

/* ---- the warehouse diff (warehouse.h) ---- */

static const char *const mode_names[] = { "stream", "auto", "warehouse" };

const char *diff_mode_name(enum diff_mode m)
{
	return (unsigned)m < DIFF_MODE__COUNT ? mode_names[m] : "unknown";
}

bool diff_mode_parse(const char *s, enum diff_mode *out)
{
	for (int m = 0; s && m < DIFF_MODE__COUNT; m++)
		if (!strcmp(s, mode_names[m])) {
			*out = (enum diff_mode)m;
			return true;
		}
	return false;
}

enum diff_mode diff_mode_choose(struct cfg_destination *const *dests, size_t n_dests,
				const enum diff_mode *forced)
{
	enum diff_mode best = DIFF_MODE_STREAM, m;
	if (forced)
		return *forced;
	for (size_t i = 0; i < n_dests; i++) {
		if (!diff_mode_parse(cfg_options_str(&dests[i]->options, "diff"), &m))
			continue;
		if (m == DIFF_MODE_STREAM)
			return DIFF_MODE_STREAM;
		if (m == DIFF_MODE_WAREHOUSE || best == DIFF_MODE_STREAM)
			best = m;
	}
	return best;
}

struct wh_pass {
	struct warehouse *w;
	struct dest_pass *dps;
	size_t n;
	const struct diff_visitor *v;
	struct strbuf buf;
};

/* A candidate whose record was read. */
static enum jerr wh_present(struct wh_pass *wp, const struct wh_candidate *c, const struct record *rec,
			    struct jerror *err)
{
	unsigned char hash[STATE_HASH_LEN];
	enum jerr rc;
	for (size_t j = 0; j < wp->n; j++) {
		struct dest_pass *dp = &wp->dps[j];
		const struct state_row *row = c->dests[j].present ? &c->dests[j].row : NULL;
		if (payload_in_scope(dp->dest, rec)) {
			if ((rc = emit_desired(dp, rec, row, wp->v, &wp->buf, hash, false, NULL, NULL, err)) ||
			    (rc = warehouse_digest(wp->w, c, j, rec, hash, err)))
				return rc;
			continue;
		}
		if ((row && (rc = emit_gone(dp, row, rec, wp->v, &wp->buf, err))) ||
		    (rc = warehouse_digest(wp->w, c, j, rec, NULL, err)))
			return rc;
	}
	return JERR_OK;
}

/* A candidate the sources do not have (any more). */
static enum jerr wh_absent(struct wh_pass *wp, const struct wh_candidate *c, struct jerror *err)
{
	enum jerr rc;
	for (size_t j = 0; j < wp->n; j++)
		if (c->dests[j].present && (rc = emit_gone(&wp->dps[j], &c->dests[j].row, NULL, wp->v, &wp->buf, err)))
			return rc;
	return JERR_OK;
}

/*
 * The pass when the database compares: the candidates come in key order, chunk by
 * chunk; their records are read (only theirs when the summary says the candidates are
 * few, else every record, skipping the others) and merge-joined with them exactly as
 * the streaming pass joins records and state rows.
 */
static enum jerr diff_warehouse(const struct config *cfg, const struct cfg_model *model,
				struct cfg_destination *const *dests, size_t n_dests, struct warehouse *w,
				const struct diff_opts *o, const struct diff_visitor *v,
				struct record_stats *stats, struct diff_report *rep, struct jerror *err)
{
	const struct wh_summary *sum = warehouse_summary(w);
	struct wh_pass wp = { .w = w, .n = n_dests, .v = v, .buf = STRBUF_INIT };
	struct record_reader *rr = NULL;
	const struct record *rec = NULL;
	struct source_read rd = { .digest = true };
	struct rkey *keys = NULL;
	const struct wh_candidate *cands;
	size_t nc;
	enum jerr rc = JERR_OK;

	wp.dps = xcalloc(n_dests ? n_dests : 1, sizeof(*wp.dps));
	for (size_t j = 0; j < n_dests; j++) {
		wp.dps[j].dest = dests[j];
		payload_spec_init(&wp.dps[j].spec, dests[j]);
	}
	stats->records = sum->records;
	stats->orphans = sum->orphans;
	rep->candidates = sum->candidates;
	for (size_t j = 0; j < n_dests; j++)
		if (sum->unchanged[j] && (rc = o->unchanged(v->ctx, dests[j], sum->unchanged[j], err)))
			goto out;
	if (!sum->limited) {
		if ((rc = record_reader_open(cfg, model, &rd, &rr, err)) ||
		    (rc = record_reader_next(rr, &rec, err)))
			goto out;
	} else {
		keys = xcalloc(WAREHOUSE_CHUNK, sizeof(*keys));
	}
	while ((rc = warehouse_next_chunk(w, &cands, &nc, err)) == JERR_OK && nc) {
		if (sum->limited) {
			size_t nk = 0;
			for (size_t i = 0; i < nc; i++)
				if (cands[i].in_source)
					keys[nk++] = cands[i].key;
			if (nk) {
				rd.keys = keys;
				rd.n_keys = nk;
				if ((rc = record_reader_open(cfg, model, &rd, &rr, err)) ||
				    (rc = record_reader_next(rr, &rec, err)))
					goto out;
			}
		}
		for (size_t i = 0; i < nc; i++) {
			const struct wh_candidate *c = &cands[i];
			while (rec && key_compare(&rec->key, &c->key) < 0)
				if ((rc = record_reader_next(rr, &rec, err)))
					goto out;
			if (rec && key_compare(&rec->key, &c->key) == 0) {
				if ((rc = wh_present(&wp, c, rec, err)) || (rc = record_reader_next(rr, &rec, err)))
					goto out;
			} else if ((rc = wh_absent(&wp, c, err))) {
				goto out;
			}
		}
		if (sum->limited && rr) {
			const struct record_stats *rs = record_reader_stats(rr);
			stats->invalid_values += rs->invalid_values;
			rep->read += rs->records;
			record_reader_close(rr);
			rr = NULL;
			rec = NULL;
		}
	}
	if (rc)
		goto out;
	rc = warehouse_finish(w, err);
out:
	if (rr) {
		const struct record_stats *rs = record_reader_stats(rr);
		stats->invalid_values += rs->invalid_values;
		rep->read += rs->records;
		record_reader_close(rr);
	}
	rep->digests = warehouse_digests_written(w);
	for (size_t j = 0; j < n_dests; j++) {
		payload_spec_release(&wp.dps[j].spec);
		free(wp.dps[j].spans);
	}
	free(wp.dps);
	free(keys);
	strbuf_release(&wp.buf);
	return rc;
}

enum jerr diff_model_opts(const struct config *cfg, const struct cfg_model *model,
			  struct cfg_destination *const *dests, size_t n_dests, struct state *st,
			  const struct diff_opts *o, const struct diff_visitor *v,
			  struct record_stats *stats, struct strbuf *since, struct diff_report *rep,
			  struct jerror *err)
{
	struct diff_report local;
	struct strbuf why = STRBUF_INIT;
	const struct source_read *read = o ? o->read : NULL;
	enum jerr rc;

	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	if (o && o->mode != DIFF_MODE_STREAM) {
		struct warehouse *w = NULL;
		if (!o->unchanged)
			strbuf_addstr(&why, "the caller cannot take counts of unchanged records");
		else if (o->scope && o->scope->since_column)
			strbuf_addstr(&why, "a schedule on a secondary source reads the records whose "
					    "rows changed there");
		else if (warehouse_check(cfg, model, dests, n_dests, st, read, &why)) {
			struct jerror e = JERROR_INIT;
			/* a failed query has sent nothing yet: the streaming diff can still serve */
			if (warehouse_open(cfg, model, dests, n_dests, st, o->write_digests, &w, &why, &e)) {
				strbuf_reset(&why);
				strbuf_addstr(&why, e.msg.buf);
				if (e.detail.len)
					strbuf_addf(&why, " (%s)", e.detail.buf);
			}
			jerror_release(&e);
		}
		if (w) {
			for (size_t i = 0; o->in_scope && i < n_dests; i++)
				o->in_scope[i] = DIFF_NOT_COUNTED;
			memset(stats, 0, sizeof(*stats));
			if (since)
				strbuf_reset(since);
			rep->warehouse = true;
			rc = diff_warehouse(cfg, model, dests, n_dests, w, o, v, stats, rep, err);
			warehouse_close(w);
			log_info("model \"%s\": warehouse diff: %llu of %llu records may have changed, %llu read, "
				 "%llu digests stored",
				 model->id, (unsigned long long)rep->candidates, (unsigned long long)stats->records,
				 (unsigned long long)rep->read, (unsigned long long)rep->digests);
			goto out;
		}
		snprintf(rep->why, sizeof(rep->why), "%s", why.buf);
		log_msg(o->mode == DIFF_MODE_WAREHOUSE ? LOG_WARN : LOG_INFO,
			"model \"%s\": streaming diff instead of the warehouse diff: %s", model->id, why.buf);
	}
	if (o) {
		rc = diff_stream(cfg, model, dests, n_dests, st, o, v, stats, since, err);
	} else {
		struct diff_opts plain = { .read = read };
		rc = diff_stream(cfg, model, dests, n_dests, st, &plain, v, stats, since, err);
	}
	rep->read = stats->records;
out:
	strbuf_release(&why);
	return rc;
}
