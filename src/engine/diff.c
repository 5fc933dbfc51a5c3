/* diff.c: merge-join of the record stream with the state store, one cursor per destination. */
#include "engine/diff.h"

#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "engine/payload.h"

static const char *const action_names[] = { "create", "update", "delete", "unsubscribe", "unchanged" };

const char *diff_action_name(enum diff_action a)
{
	return (unsigned)a < DIFF__COUNT ? action_names[a] : "unknown";
}

struct dest_pass {
	const struct cfg_destination *dest;
	struct payload_spec spec;
	struct state_cursor *cur;
	struct state_row *row; /* current state row, NULL at end */
	bool done;
};

static enum jerr advance(struct dest_pass *dp, struct jerror *err)
{
	enum jerr rc = state_cursor_next(dp->cur, &dp->row, err);
	if (rc)
		return rc;
	if (!dp->row)
		dp->done = true;
	return JERR_OK;
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

/* A state row whose record is no longer desired. */
static enum jerr emit_gone(struct dest_pass *dp, const struct diff_visitor *v, struct strbuf *buf,
			   struct jerror *err)
{
	const struct state_row *row = dp->row;
	struct diff_item it = { .dest = dp->dest, .key = &row->key, .old_payload = row->payload,
				.pending = row->pending, .attempts = row->attempts };
	unsigned char hash[STATE_HASH_LEN];
	enum jerr rc;

	/*
	 * A placeholder of a failed create: Braze may have applied it (a timeout), so in
	 * Sync mode the delete is sent anyway (deleting an unknown id is harmless).
	 */
	if (!row->payload.len) {
		if (row->pending && dp->dest->sync_mode == SYNC_SYNC) {
			it.action = DIFF_DELETE;
			return v->item(v->ctx, &it, err);
		}
		return JERR_OK;
	}
	/* already released */
	if (!row->in_scope)
		return JERR_OK;
	if (dp->dest->sync_mode == SYNC_SYNC) {
		it.action = DIFF_DELETE;
		return v->item(v->ctx, &it, err);
	}
	rc = released_payload(row->payload, buf, err);
	if (rc)
		return rc;
	state_hash(buf->buf, buf->len, hash);
	it.action = DIFF_UNSUBSCRIBE;
	it.new_payload = (struct slice){ buf->buf, buf->len };
	it.new_hash = hash;
	it.in_scope = false;
	return v->item(v->ctx, &it, err);
}

static enum jerr emit_desired(struct dest_pass *dp, const struct record *rec, const struct state_row *row,
			      const struct diff_visitor *v, struct strbuf *buf, struct jerror *err)
{
	unsigned char hash[STATE_HASH_LEN];
	struct diff_item it = { .dest = dp->dest, .key = &rec->key, .rec = rec, .in_scope = true };

	strbuf_reset(buf);
	payload_build(&dp->spec, rec, buf);
	state_hash(buf->buf, buf->len, hash);
	it.new_payload = (struct slice){ buf->buf, buf->len };
	it.new_hash = hash;
	if (!row || !row->payload.len) {
		it.action = DIFF_CREATE;
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
	/* partial: state rows between the records read were simply not read */
	bool partial = read && read->since_column && read->since_value;
	struct record_reader *rr = NULL;
	struct dest_pass *dps = xcalloc(n_dests ? n_dests : 1, sizeof(*dps));
	struct strbuf buf = STRBUF_INIT;
	const struct record *rec;
	enum jerr rc;
	size_t i;

	memset(stats, 0, sizeof(*stats));
	for (i = 0; i < n_dests; i++) {
		dps[i].dest = dests[i];
		payload_spec_init(&dps[i].spec, dests[i]);
		rc = state_cursor_open(st, dests[i]->id, &dps[i].cur, err);
		if (rc)
			goto out;
		rc = advance(&dps[i], err);
		if (rc)
			goto out;
	}
	if (since)
		strbuf_reset(since);
	rc = record_reader_open(cfg, model, read, &rr, err);
	if (rc)
		goto out;

	while ((rc = record_reader_next(rr, &rec, err)) == JERR_OK && rec) {
		for (i = 0; i < n_dests; i++) {
			struct dest_pass *dp = &dps[i];
			while (!dp->done && key_compare(&dp->row->key, &rec->key) < 0) {
				if ((!partial && (rc = emit_gone(dp, v, &buf, err))) ||
				    (rc = advance(dp, err)))
					goto out;
			}
			bool have = !dp->done && key_compare(&dp->row->key, &rec->key) == 0;
			if (payload_in_scope(dp->dest, rec))
				rc = emit_desired(dp, rec, have ? dp->row : NULL, v, &buf, err);
			else if (have)
				rc = emit_gone(dp, v, &buf, err);
			if (rc)
				goto out;
			if (have && (rc = advance(dp, err)))
				goto out;
		}
	}
	if (rc)
		goto out;
	for (i = 0; i < n_dests && !partial; i++) {
		struct dest_pass *dp = &dps[i];
		while (!dp->done) {
			if ((rc = emit_gone(dp, v, &buf, err)) || (rc = advance(dp, err)))
				goto out;
		}
	}
out:
	if (rr) {
		*stats = *record_reader_stats(rr);
		if (since)
			strbuf_addslice(since, record_reader_since(rr));
		record_reader_close(rr);
	}
	for (i = 0; i < n_dests; i++) {
		if (dps[i].cur)
			state_cursor_close(dps[i].cur);
		payload_spec_release(&dps[i].spec);
	}
	free(dps);
	strbuf_release(&buf);
	return rc;
}
