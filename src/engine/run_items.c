/*
 * run_items.c: diff items to connector changes: run_visit (the diff's visitor) pushes
 * creates and updates, spools deletes and unsubscribes to a temporary file for the
 * mass-delete guard, and run_send_held sends them after the pass. Borrows the run's
 * contexts (run_internal.h); each destination context owns its spool file and arena.
 */
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/xalloc.h"
#include "engine/payload.h"
#include "engine/run_internal.h"

/*
 * Deletes and unsubscribes are held back until the pass is over, for the mass-delete
 * guard. Each is spooled binary-safe: a header, then the key text and both payloads.
 */
struct spool_head {
	uint8_t action, is_int, update_only;
	int64_t i;
	uint32_t key_len, old_len, new_len;
	int32_t attempts;
};

static enum jerr spool_item(struct dest_ctx *dc, const struct diff_item *it, struct jerror *err)
{
	struct spool_head h = { (uint8_t)it->action, it->key->is_int, it->update_only, it->key->i,
				(uint32_t)it->key->text.len,
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
	dc->n_unguarded += it->update_only;
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
		size_t len = fields[i].name_len ? fields[i].name_len : strlen(n);
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
	struct dest_change c; /* every member set below (a `= { 0 }` cost a `rep stos` per record) */
	enum jerr rc;

	arena_reset(&dc->arena);
	/* a first export's changes are every entry: taken from where the payload's values are */
	bool first = it->action == DIFF_CREATE && !it->old_payload.len && !it->full && it->new_spans && it->rec &&
		     payload_diff_first(it->spec, it->rec, it->new_payload, it->new_spans, &dc->arena, &d);
	if (!first &&
	    (rc = (it->full ? payload_diff_full : payload_diff)(it->old_payload, it->new_payload, &dc->arena, &d, err)))
		return rc;
	struct dest_field *fields = arena_alloc(&dc->arena, (d.n_changes + 1) * sizeof(*fields));
	size_t nf = 0;
	for (size_t i = 0; i < d.n_changes; i++) {
		const struct payload_change *ch = &d.changes[i];
		size_t len = ch->field_len ? ch->field_len : strlen(ch->field);
		if (len == sizeof("external_id") - 1 && !memcmp(ch->field, "external_id", len))
			continue;
		fields[nf++] = (struct dest_field){ ch->field, ch->new_json, ch->new_len, len, ch->key, ch->key_len };
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
	c.fail_payload = (struct slice){ NULL, 0 };
	if (d.n_added && it->action == DIFF_CREATE && !it->old_payload.len) {
		/* if this fails, Braze may still have applied it: its placeholder keeps the groups */
		c.fail_payload = it->new_payload;
	} else if (d.n_added && (it->action == DIFF_UPDATE || it->action == DIFF_CREATE) && it->old_payload.len) {
		/* if this fails, Braze may still have applied it: keep the groups it adds */
		struct strbuf kept = STRBUF_INIT;
		if (payload_with_added_groups(it->old_payload, it->new_payload, &kept)) {
			char *p = arena_alloc(&dc->arena, kept.len);
			memcpy(p, kept.buf, kept.len);
			c.fail_payload = (struct slice){ p, kept.len };
		}
		strbuf_release(&kept);
	}
	c.in_scope = it->in_scope;
	c.update_only = it->update_only;
	c.resend = it->pending && it->in_scope && it->action != DIFF_DELETE;
	c.attempts = it->attempts;
	c.changed = (struct slice){ NULL, 0 };
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
		rc = state_mark_failed(dc->st, dc->rd->dest->id, key, msg, (struct slice){ NULL, 0 }, err);
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

enum jerr run_visit(void *vctx, const struct diff_item *it, struct jerror *err)
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
	/* the clocks (progress, the answers' age, the lock's heartbeat) every 16 records:
	 * reading one per record was a fiftieth of a first sync's CPU */
	bool clocks = (++p->items & 15) == 0;
	if ((p->items & 63) == 0)
		run_progress(p, false);
	if (p->n && clocks)
		run_batch_flush_old(p->ctx[0]->batch);
	if (!dc || dc->failed)
		return JERR_OK;
	if (clocks && (rc = run_heartbeat(dc, &e))) {
		run_fail_dest(dc, &e);
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
		run_fail_dest_connector(dc, &e);
	}
	jerror_release(&e);
	return JERR_OK;
}

/* The warehouse diff found n records unchanged without reading them. */
enum jerr run_visit_unchanged(void *vctx, const struct cfg_destination *dest, uint64_t n, struct jerror *err)
{
	struct pass *p = vctx;
	(void)err;
	for (size_t i = 0; i < p->n; i++)
		if (p->ctx[i]->rd->dest == dest && !p->ctx[i]->failed)
			p->ctx[i]->rd->counts.unchanged += n;
	return JERR_OK;
}

/* Send the held-back deletes and unsubscribes if the guard allows them. */
void run_send_held(struct dest_ctx *dc)
{
	struct run_dest *rd = dc->rd;
	struct jerror e = JERROR_INIT;
	struct strbuf key = STRBUF_INIT, oldp = STRBUF_INIT, newp = STRBUF_INIT;
	const char *what = rd->dest->sync_mode == SYNC_SYNC ? "delete" : "unsubscribe";

	if (!dc->n_spooled || dc->failed)
		return;
	/*
	 * Releases of placeholders (update_only) do not count: their users were never
	 * confirmed in Braze, nor are they in the in-scope count they would be weighed
	 * against (a few lost creates that left could be "300%" of a small destination);
	 * held back with the rest when the others trip the guard.
	 */
	uint64_t weighed = dc->n_spooled - dc->n_unguarded;
	bool over = rd->state_records > 0 && weighed > 0 &&
		    (double)weighed * 100.0 > rd->max_delete_percent * (double)rd->state_records;
	if (over && !dc->opts->force) {
		rd->deletes_held = dc->n_spooled;
		jerror_set(&e, JERR_GUARD, "refusing to %s %llu of %llu records (%.1f%%) of destination \"%s\"", what,
			   (unsigned long long)weighed, (unsigned long long)rd->state_records,
			   100.0 * (double)weighed / (double)rd->state_records, rd->dest->id);
		jerror_detail(&e, "the mass-delete guard allows at most %g%% per run; creates and updates were sent",
			      rd->max_delete_percent);
		jerror_hint(&e, "check the source (an empty or truncated table looks like this); if this is intended, "
				"run again with --force or raise maxDeletePercent");
		run_fail_dest(dc, &e);
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
			run_fail_dest(dc, &e);
			break;
		}
		strbuf_setlen(&key, h.key_len);
		strbuf_setlen(&oldp, h.old_len);
		strbuf_setlen(&newp, h.new_len);
		struct rkey k = { .is_int = h.is_int, .i = h.i, .text = { key.buf, key.len } };
		unsigned char hash[STATE_HASH_LEN];
		struct diff_item it = { .dest = rd->dest, .action = (enum diff_action)h.action, .key = &k,
					.old_payload = { oldp.buf, oldp.len }, .new_payload = { newp.buf, newp.len },
					.attempts = h.attempts, .update_only = h.update_only };
		if (h.update_only) {
			memset(hash, 0, sizeof(hash)); /* it stays a placeholder (emit_gone) */
			it.new_hash = hash;
		} else if (newp.len) {
			state_hash(newp.buf, newp.len, hash);
			it.new_hash = hash;
		}
		if (dc->opts->stop && *dc->opts->stop)
			break;
		if (push_item(dc, &it, &e))
			run_fail_dest_connector(dc, &e);
	}
	strbuf_release(&key);
	strbuf_release(&oldp);
	strbuf_release(&newp);
	jerror_release(&e);
}
